#!/usr/bin/env python3
"""Runs get_time --udp against Python datagram clients and a flood.

usage: check_get_time_udp.py BINARY

A request datagram gets the time back from the server's address; one that is not a request gets
no answer (nothing for a forged source to amplify). A flood of 5,000 datagrams from 50 sockets
keeps the server within its --threads bound (its thread count, sampled from /proc while the
flood runs), and the server still answers after it. Whether the flood meets busy threads at all
depends on the machine's speed (a sanitizer's slower reads may never do), so the drop and its log
line are checked in tests/test_udp_server.cpp, with handlers that wait. Every wait is bounded; the
server must exit 0 on SIGTERM.
"""
import re
import socket
import sys
import threading

from harness import expect, run, Server, TIMEOUT

TIME = re.compile(rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\n")
THREADS = 2


def ask(port, payload, timeout=TIMEOUT):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(payload, ("127.0.0.1", port))
        try:
            data, source = s.recvfrom(65536)
        except socket.timeout:
            return None, None
        return data, source


def threads_of(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


def main():
    binary = sys.argv[1]
    server = Server("get_time --udp", [binary, "--udp", "--host", "127.0.0.1", "--port", "0", "--threads",
                                       str(THREADS)])
    port = server.port
    data, source = ask(port, b"get_time")
    expect("a request gets the time", TIME.fullmatch(data or b"") is not None, True)
    expect("the reply comes from the server's address", source, ("127.0.0.1", port))
    data, _ = ask(port, b"get_time\n")
    expect("a request with its newline gets the time", TIME.fullmatch(data or b"") is not None, True)
    data, _ = ask(port, b"x" * 200, timeout=0.5)
    expect("a datagram that is not a request gets no answer", data, None)

    # The flood: 50 sockets, 100 datagrams each, as fast as they go, while /proc is sampled.
    baseline = threads_of(server.proc.pid)
    most = [baseline]
    flooding = threading.Event()
    flooding.set()

    def sample():
        while flooding.is_set():
            most[0] = max(most[0], threads_of(server.proc.pid))

    sampler = threading.Thread(target=sample)
    sampler.start()
    senders = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(50)]
    for _ in range(100):
        for s in senders:
            s.sendto(b"get_time", ("127.0.0.1", port))
    flooding.clear()
    sampler.join(TIMEOUT)
    for s in senders:
        s.close()
    expect(f"the flood kept the server within {THREADS} request threads (it had {baseline} before)",
           most[0] <= baseline + THREADS, True)
    # While it works off the flood's backlog a request may still meet busy threads and be
    # dropped, as any datagram may be: a client asks again.
    answered = False
    for _ in range(10):
        data, _ = ask(port, b"get_time", timeout=1)
        answered = TIME.fullmatch(data or b"") is not None
        if answered:
            break
    expect("the server answers after the flood (a client retrying)", answered, True)
    server.stop()


if __name__ == "__main__":
    run(main)
