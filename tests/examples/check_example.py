#!/usr/bin/env python3
"""Runs one example server against real clients: a Python socket client and nc.

usage: check_example.py uppercase_echo|get_time BINARY NC [SERVER OPTION...]

Starts BINARY on 127.0.0.1 port 0 (with the SERVER OPTIONs, e.g. --concurrency async), reads
the address it prints, talks to it, then sends SIGTERM (and, on a second run, SIGINT) and
expects exit status 0. Every wait is bounded.
"""
import re
import select
import signal
import socket
import subprocess
import sys
import time

from harness import expect, signal_once

TIMEOUT = 10
# Exiting takes longer under a sanitizer on a loaded machine (ThreadSanitizer's exit in a
# forking server took more than 10 s once in CI); what is checked is that it exits, with 0.
EXIT_TIMEOUT = 30
SERVER_OPTIONS = []  # from the command line


def start(binary, *extra):
    proc = subprocess.Popen([binary, "--host", "127.0.0.1", "--port", "0", *SERVER_OPTIONS, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    match = re.search(r"listening on 127\.0\.0\.1:(\d+)$", line.strip())
    if not match:
        proc.kill()
        sys.exit(f"unexpected first line from {binary}: {line!r}")
    return proc, int(match.group(1))


def python_client(port, payload):
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def nc_client(nc, port, payload):
    done = subprocess.run([nc, "-N", "-w", str(TIMEOUT), "127.0.0.1", str(port)], input=payload,
                          capture_output=True, timeout=TIMEOUT)
    if done.returncode != 0:
        sys.exit(f"nc failed ({done.returncode}): {done.stderr!r}")
    return done.stdout


def stop(proc, sig):
    """Sends `sig` (None: none) and expects exit status 0 within EXIT_TIMEOUT."""
    if sig is not None:
        signal_once(proc, sig)
    try:
        status = proc.wait(timeout=EXIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=TIMEOUT)
        sys.exit(f"server did not exit within {EXIT_TIMEOUT}s of {sig}; it printed {out[-500:]!r}, {err[-2000:]!r}")
    if status != 0:
        sys.exit(f"server exited with {status} after {sig}: {proc.stderr.read()!r}")


def check_signal_with_client(binary, request, reply_pattern):
    """A signal stops accepting but lets a connected client finish; a second one ends it at once."""
    proc, port = start(binary)
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as client:
        expect("first signal announces the shutdown", "shutting down" in signal_once(proc, signal.SIGTERM), True)
        client.sendall(request)
        expect("the connected client is still served", reply_pattern.fullmatch(client.recv(4096)) is not None, True)
    stop(proc, None)  # the client has gone: the server exits by itself, with status 0
    proc, port = start(binary)
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT):
        expect("first signal announces the shutdown", "shutting down" in signal_once(proc, signal.SIGINT), True)
        proc.send_signal(signal.SIGINT)
        expect("a second signal ends it while a client is connected", proc.wait(timeout=TIMEOUT), -signal.SIGINT)


def check_uppercase(binary, nc):
    proc, port = start(binary)
    expect("python client", python_client(port, b"hello\nMixed Case 123\n"), b"HELLO\nMIXED CASE 123\n")
    expect("python client, last line without newline", python_client(port, b"abc\ndef"), b"ABC\nDEF")
    expect("nc", nc_client(nc, port, b"from nc\n"), b"FROM NC\n")
    clients = [socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) for _ in range(4)]
    if "plain" not in SERVER_OPTIONS:  # a plain server takes one connection at a time
        for i, client in enumerate(clients):
            client.sendall(b"client %d\n" % i)
        expect("four clients at once", [c.recv(4096) for c in clients], [b"CLIENT %d\n" % i for i in range(4)])
    for client in clients:
        client.close()
    stop(proc, signal.SIGTERM)
    if "plain" not in SERVER_OPTIONS:  # a plain server notices the signal only between clients
        check_signal_with_client(binary, b"still here\n", re.compile(rb"STILL HERE\n"))
    check_limit_flags(binary)


def replied_within(client, seconds):
    """Whether `client` has something to read (a reply or end of stream) within `seconds`."""
    ready, _, _ = select.select([client], [], [], seconds)
    return bool(ready)


def check_limit_flags(binary):
    """--max-line, --idle-timeout and --max-connections reach the server's limits."""
    proc, port = start(binary, "--max-line", "16", "--idle-timeout", "0.5", "--max-connections", "2")
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as client:
        client.sendall(b"x" * 40 + b"\n")
        expect("--max-line: a longer line closes the connection unanswered", client.recv(4096), b"")
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as client:
        client.sendall(b"short\n")
        expect("--max-line: a shorter line is answered", client.recv(4096), b"SHORT\n")
        start_time = time.monotonic()
        expect("--idle-timeout: a silent client is closed", client.recv(4096), b"")
        expect("--idle-timeout: not before its time", time.monotonic() - start_time >= 0.4, True)
    if "plain" not in SERVER_OPTIONS:  # a plain server takes one connection at a time anyway
        first, second = (socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) for _ in range(2))
        for client in (first, second):
            client.sendall(b"in\n")
            expect("--max-connections: the first two are served", client.recv(4096), b"IN\n")
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as third:
            third.sendall(b"third\n")
            expect("--max-connections: a third waits while two are open", replied_within(third, 0.3), False)
            first.close()
            expect("--max-connections: ... and is served once one closes", third.recv(4096), b"THIRD\n")
        second.close()
    stop(proc, signal.SIGTERM)


def check_get_time(binary, nc):
    proc, port = start(binary)
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\n"
    before = time.strftime("%Y-%m-%d %H:%M", time.localtime()).encode()
    got = python_client(port, b"get_time\n")
    expect("python client", got, re.compile(stamp.encode()))
    after = time.strftime("%Y-%m-%d %H:%M", time.localtime()).encode()
    expect("local time", got[:16] in (before, after), True)
    expect("bare request, as the seed's client sends it", nc_client(nc, port, b"get_time"), re.compile(stamp.encode()))
    expect("invalid request", python_client(port, b"get_date\n"),
           b"error: invalid request 'get_date', expected 'get_time'\n")
    stop(proc, signal.SIGTERM)
    check_signal_with_client(binary, b"get_time\n", re.compile(stamp.encode()))


def check_help_and_errors(binary):
    done = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=TIMEOUT)
    expect("--help exits 0", done.returncode, 0)
    expect("--help names the options", all(o in done.stdout for o in
                                           ("--host", "--port", "--help", "--idle-timeout", "--max-connections",
                                            "--max-line")), True)
    done = subprocess.run([binary, "--port", "x"], capture_output=True, text=True, timeout=TIMEOUT)
    expect("a bad port exits 2", done.returncode, 2)
    if SERVER_OPTIONS:
        done = subprocess.run([binary, "--concurrency", "bogus"], capture_output=True, text=True, timeout=TIMEOUT)
        expect("an unknown concurrency exits 2", done.returncode, 2)
    # A port already in use: a clear error and status 1, not a crash.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([binary, "--port", str(port), *SERVER_OPTIONS], capture_output=True, text=True, timeout=TIMEOUT)
        expect("a busy port exits 1", done.returncode, 1)
        expect("the error names bind", "bind" in done.stderr, True)
    proc, _ = start(binary)
    stop(proc, signal.SIGINT)
    print("ok: SIGINT exits 0")


def main():
    name, binary, nc = sys.argv[1:4]
    SERVER_OPTIONS.extend(sys.argv[4:])
    {"uppercase_echo": check_uppercase, "get_time": check_get_time}[name](binary, nc)
    check_help_and_errors(binary)


if __name__ == "__main__":
    main()
