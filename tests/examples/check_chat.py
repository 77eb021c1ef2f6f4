#!/usr/bin/env python3
"""Runs the chat example against real clients: Python sockets, nc, and a client that never reads.

usage: check_chat.py BINARY NC [SERVER OPTION...]

Nicknames (empty and taken ones refused with ERR, then OK), lines to everyone else as
"name: text", /who, /quit, the join and leave announcements, an nc client talking to a Python
one, and a client that stops reading: it is cut at --max-queued-bytes while the others get every
line. Every wait is bounded; the server must exit 0 on SIGTERM.
"""
import socket
import subprocess
import sys

from harness import expect, fail, PROCESSES, run, Server, TIMEOUT


class Client:
    def __init__(self, port, rcvbuf=None):
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(("127.0.0.1", port))
        self.buffer = b""

    def send(self, line):
        self.sock.sendall(line.encode() + b"\n")

    def line(self):
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                fail(f"the connection ended; unread: {self.buffer!r}")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode()

    def lines(self, count):
        while self.buffer.count(b"\n") < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                fail(f"the connection ended; unread: {self.buffer[-200:]!r}")
            self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n", count)
        return [line.decode() for line in lines]

    def until_end(self):
        data = self.buffer
        while chunk := self.sock.recv(65536):
            data += chunk
        return data

    def join(self, name):
        self.send(name)
        expect(f"{name} is accepted", self.line().startswith("OK"), True)
        return self


def main():
    binary, nc = sys.argv[1], sys.argv[2]
    options = sys.argv[3:]
    server = Server("chat", [binary, "--host", "127.0.0.1", "--port", "0", "--max-queued-bytes", "65536",
                             "--log-level", "info", *options])
    port = server.port

    alice = Client(port)
    alice.send("")
    expect("an empty nickname is refused", alice.line().startswith("ERR"), True)
    alice.send("/alice")
    expect("a nickname starting with / is refused", alice.line().startswith("ERR"), True)
    alice.join("alice")
    bob = Client(port).join("bob")
    expect("alice hears bob join", alice.line(), "* bob joined")
    taken = Client(port)
    taken.send("bob")
    expect("a taken nickname is refused", taken.line().startswith("ERR"), True)
    taken.join("carol")
    expect("alice hears carol join", alice.line(), "* carol joined")
    expect("bob hears carol join", bob.line(), "* carol joined")

    alice.send("hello, room")
    expect("bob gets alice's line", bob.line(), "alice: hello, room")
    expect("carol gets alice's line", taken.line(), "alice: hello, room")
    bob.send("/who")
    expect("/who lists everyone", bob.line(), "users: alice bob carol")

    # nc talks to the room too, with CRLF lines (a telnet) and its output checked at the end.
    nc_proc = subprocess.Popen([nc, "127.0.0.1", str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    PROCESSES.append(nc_proc)
    nc_proc.stdin.write(b"dave\r\nfrom nc\r\n")
    nc_proc.stdin.flush()
    expect("alice hears dave join", alice.line(), "* dave joined")
    expect("alice gets nc's line", alice.line(), "dave: from nc")
    bob.send("hi dave")
    expect("alice gets bob's line", alice.line(), "bob: hi dave")
    nc_proc.stdin.write(b"/quit\r\n")
    nc_proc.stdin.flush()
    out, _ = nc_proc.communicate(timeout=TIMEOUT)
    # bob's broadcast may reach dave after alice, so after dave's /quit has been answered.
    lines = out.decode().splitlines()
    expect("nc saw its welcome, bob's line and its goodbye",
           lines[:1] + sorted(lines[1:]), ["OK welcome, dave", "OK bye", "bob: hi dave"])
    expect("alice hears dave leave", alice.line(), "* dave left")
    expect("bob heard dave", bob.lines(3), ["* dave joined", "dave: from nc", "* dave left"])
    expect("carol heard dave and bob", taken.lines(4),
           ["* dave joined", "dave: from nc", "bob: hi dave", "* dave left"])

    # A client that stops reading is cut; the others get every one of the lines it missed.
    slow = Client(port, rcvbuf=4096).join("slow")
    for c in (alice, bob, taken):
        expect("a member hears slow join", c.line(), "* slow joined")
    # Rounds of 400 lines (44 KB, under the 64 KiB cap), each read by bob and carol before the
    # next: they keep at most a round queued, while slow's backlog only grows, until it passes
    # the kernel's buffers (which grow to megabytes) and the cap: then it is cut, and bob and
    # carol hear it leave, between two lines. At most 200 rounds (88 MB).
    per_round, text = 400, "x" * 100
    sent = []
    cut = False
    for r in range(200):
        lines = [f"{i} {text}" for i in range(r * per_round, (r + 1) * per_round)]
        sent += lines
        alice.sock.sendall("".join(line + "\n" for line in lines).encode())
        want = [f"alice: {line}" for line in lines]
        for who, c in (("bob", bob), ("carol", taken)):
            got = c.lines(per_round)
            if "* slow left" in got:
                got.remove("* slow left")
                got += c.lines(1)
                cut = True
            if got != want:
                fail(f"round {r}: {who} got {got[:2]!r}...; log: {server.log()[-2000:]}")
        if cut:
            break
    expect(f"bob and carol get all {len(sent):,} lines in order, and hear slow leave", cut, True)
    expect("alice hears slow leave", alice.line(), "* slow left")
    server.wait_log("the slow consumer's cut is logged", r"cutting 127\.0\.0\.1:\d+: .*a slow consumer")
    rest = slow.until_end().decode()
    stream = "".join(f"alice: {line}\n" for line in sent)
    if not stream.startswith(rest) or len(rest) >= len(stream):
        first = next((i for i, (a, b) in enumerate(zip(rest, stream)) if a != b), len(rest))
        fail(f"slow got {len(rest)} bytes, not a prefix of the {len(stream)} sent: they differ at {first}: "
             f"{rest[max(0, first - 80):first + 80]!r} where the stream has {stream[max(0, first - 80):first + 80]!r}")
    expect("what slow got before the cut is a prefix of the lines, in order", True, True)

    alice.send("/quit")
    expect("/quit says goodbye", alice.line(), "OK bye")
    expect("alice's connection ends", alice.until_end(), b"")
    expect("bob hears alice leave", bob.line(), "* alice left")
    bob.send("/who")
    expect("/who after the leaves", bob.line(), "users: bob carol")
    server.stop()


if __name__ == "__main__":
    run(main)
