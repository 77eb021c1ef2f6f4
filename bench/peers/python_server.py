"""The Python peer for the benchmark: the upper-case line echo on Python's own
socketserver.ThreadingTCPServer, with Python's defaults (a thread per connection, listen
backlog 5, unbuffered wfile)."""

import argparse
import socketserver
import sys


class Upper(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(line.upper())  # bytes.upper() is ASCII-only


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with socketserver.ThreadingTCPServer((args.host, args.port), Upper) as server:
        host, port = server.server_address[:2]
        print(f"python_server listening on {host}:{port}", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
