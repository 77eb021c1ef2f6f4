// The Go peer for the benchmark: the upper-case line echo with only the standard library. A
// goroutine per connection reads lines through a bufio.Reader, upper-cases them (ASCII) into a
// bufio.Writer, and flushes once the reader has nothing more buffered. Both keep bufio's default
// size (4 KiB), as most Go servers do. With -tls-cert and -tls-key it serves the same over
// crypto/tls, with Go's defaults (TLS 1.2 and 1.3, session tickets on). With -fanout it is the
// broadcast benchmark's peer instead (bench/fanout.py): every line a client sends goes to every
// other client, the way Go chat servers do it: a buffered channel and a writer goroutine per
// client, a mutex around the set of clients, and a full channel drops the message.
package main

import (
	"bufio"
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

type hub struct {
	mu      sync.Mutex
	clients map[*client]struct{}
}

type client struct {
	out chan []byte
}

func serveFanout(h *hub, conn net.Conn) {
	defer conn.Close()
	c := &client{out: make(chan []byte, 4096)}
	h.mu.Lock()
	h.clients[c] = struct{}{}
	h.mu.Unlock()
	done := make(chan struct{})
	go func() { // the writer: flushes once the channel is empty, so a burst goes out together
		defer close(done)
		writer := bufio.NewWriter(conn)
		for message := range c.out {
			if _, err := writer.Write(message); err != nil {
				return
			}
			if len(c.out) == 0 && writer.Flush() != nil {
				return
			}
		}
	}()
	reader := bufio.NewReader(conn)
	for {
		line, err := reader.ReadBytes('\n')
		if err != nil {
			break
		}
		h.mu.Lock()
		for other := range h.clients {
			if other != c {
				select {
				case other.out <- line:
				default: // a slow consumer misses the message
				}
			}
		}
		h.mu.Unlock()
	}
	h.mu.Lock()
	delete(h.clients, c)
	h.mu.Unlock()
	close(c.out)
	<-done
}

func serve(conn net.Conn) {
	defer conn.Close()
	reader := bufio.NewReader(conn)
	writer := bufio.NewWriter(conn)
	for {
		// A line longer than the buffer (bulk's 16 KiB) comes back in pieces (ErrBufferFull); each
		// is upper-cased and written like a whole line, so long lines need no extra copy.
		line, err := reader.ReadSlice('\n')
		for i, b := range line {
			if b >= 'a' && b <= 'z' {
				line[i] = b - 'a' + 'A'
			}
		}
		if _, werr := writer.Write(line); werr != nil {
			return
		}
		if err != nil && err != bufio.ErrBufferFull {
			writer.Flush() // end of stream: send what is left
			return
		}
		if reader.Buffered() == 0 {
			if writer.Flush() != nil {
				return
			}
		}
	}
}

func main() {
	host := flag.String("host", "127.0.0.1", "address to listen on")
	port := flag.Int("port", 0, "port to listen on (0 picks a free one)")
	certFile := flag.String("tls-cert", "", "serve TLS with this certificate (PEM)")
	keyFile := flag.String("tls-key", "", "the certificate's key (PEM)")
	fanout := flag.Bool("fanout", false, "serve the broadcast benchmark's fan-out protocol instead")
	flag.Parse()
	h := &hub{clients: map[*client]struct{}{}}
	listener, err := net.Listen("tcp", net.JoinHostPort(*host, fmt.Sprint(*port)))
	if err == nil && *certFile != "" {
		var certificate tls.Certificate
		certificate, err = tls.LoadX509KeyPair(*certFile, *keyFile)
		if err == nil {
			listener = tls.NewListener(listener, &tls.Config{Certificates: []tls.Certificate{certificate}})
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "go_server:", err)
		os.Exit(1)
	}
	fmt.Println("go_server listening on", listener.Addr())
	for {
		conn, err := listener.Accept()
		if err != nil {
			time.Sleep(50 * time.Millisecond) // out of descriptors, most likely: let some close
			continue
		}
		if *fanout {
			go serveFanout(h, conn)
		} else {
			go serve(conn) // TCP_NODELAY is Go's default
		}
	}
}
