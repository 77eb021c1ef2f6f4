#!/usr/bin/env python3
"""What a user pays to compile: socketserver translation units against hand-written asio ones.

usage: compile_time.py [--compiler g++] [--rounds 5] [--flags "-O2"] [--baseline DIR] [--json FILE]

Compiles each program below to an object file (`-c`; `-fsyntax-only` for the parse-only
pairs), round after round with the programs alternated so that drift hits all alike, and
prints each one's median CPU time (user + system, from the child's rusage) and the ratios the
targets are stated in:

- tcp_server: one TCPServer with a line-echo handler, its header-only build, against
  asio_echo, a hand-written blocking asio echo (ip/tcp, read_until, write);
- tcp_server_separate: the same TU with SOCKETSERVER_SEPARATE_COMPILATION, when the library
  offers it (the non-template code then lives in src/socketserver.cpp, built once);
- umbrella_parse: <socketserver/socketserver.hpp> alone, parsed, against asio_parse,
  <asio/io_context.hpp> + <asio/ip/tcp.hpp>;
- with --baseline DIR (another checkout of this project), tcp_server_before and
  umbrella_parse_before: the same programs against DIR/include, in the same rounds.

Run it on a quiet machine: CPU time is steadier than wall time, but a busy machine slows both.
"""
import argparse
import json
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent

PROGRAMS = {
    "tcp_server": """
#include <socketserver/stream_request_handler.hpp>
#include <socketserver/tcp_server.hpp>

struct Echo : socketserver::StreamRequestHandler {
  void handle() override {
    while (auto line = rfile.readline()) wfile.write(*line);
  }
};

int main() {
  socketserver::TCPServer<Echo> server({"127.0.0.1", 9999});
  server.serve_forever();
}
""",
    "asio_echo": """
#include <asio/buffer.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read_until.hpp>
#include <asio/streambuf.hpp>
#include <asio/write.hpp>
#include <istream>
#include <string>

int main() {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 9999});
  for (;;) {
    asio::ip::tcp::socket socket = acceptor.accept();
    asio::streambuf buffer;
    std::error_code ec;
    while (asio::read_until(socket, buffer, '\\n', ec) > 0 && !ec) {
      std::istream in(&buffer);
      std::string line;
      std::getline(in, line);
      line += '\\n';
      asio::write(socket, asio::buffer(line), ec);
      if (ec) break;
    }
  }
}
""",
    "umbrella_parse": "#include <socketserver/socketserver.hpp>\nint main() {}\n",
    "asio_parse": "#include <asio/io_context.hpp>\n#include <asio/ip/tcp.hpp>\nint main() {}\n",
}

PAIRS = [
    ("tcp_server", "asio_echo", "a TU with one TCPServer handler, header-only", 1.5),
    ("tcp_server_separate", "asio_echo", "the same TU, separately compiled", 1.0),
    ("umbrella_parse", "asio_parse", "socketserver.hpp alone, parsed", 1.2),
]


def compile_seconds(compiler, flags, source, parse_only, defines, include):
    """CPU seconds (user + system) of one compile of `source`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    argv = [compiler, "-std=c++20", *flags, "-I", str(include), *defines, str(source)]
    argv += ["-fsyntax-only"] if parse_only else ["-c", "-o", str(source.with_suffix(".o"))]
    done = subprocess.run(argv, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"compiling {source.name} failed:\n{done.stderr[-2000:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def separate_compilation_offered():
    config = ROOT / "include" / "socketserver" / "detail" / "config.hpp"
    return config.exists() and "SOCKETSERVER_SEPARATE_COMPILATION" in config.read_text()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compiler", default="g++")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--flags", default="-O2", help="optimisation flags for the object-file builds")
    parser.add_argument("--baseline", default=None,
                        help="another checkout of this project: its tcp_server and umbrella_parse too")
    parser.add_argument("--json", default=None, help="also write the medians here")
    args = parser.parse_args()
    include = {}

    runs = {"tcp_server": [], "asio_echo": [], "umbrella_parse": [], "asio_parse": []}
    separate = separate_compilation_offered()
    if separate:
        runs["tcp_server_separate"] = []
    if args.baseline:
        runs["tcp_server_before"] = []
        runs["umbrella_parse_before"] = []
        include["tcp_server_before"] = include["umbrella_parse_before"] = pathlib.Path(args.baseline) / "include"
    with tempfile.TemporaryDirectory() as tmp:
        sources = {}
        for name, text in PROGRAMS.items():
            sources[name] = pathlib.Path(tmp) / f"{name}.cpp"
            sources[name].write_text(text)
        sources["tcp_server_separate"] = sources["tcp_server_before"] = sources["tcp_server"]
        sources["umbrella_parse_before"] = sources["umbrella_parse"]
        for round_number in range(args.rounds):
            for name in runs:
                parse_only = "_parse" in name
                defines = ["-DSOCKETSERVER_SEPARATE_COMPILATION"] if name == "tcp_server_separate" else []
                flags = [] if parse_only else args.flags.split()
                runs[name].append(compile_seconds(args.compiler, flags, sources[name], parse_only, defines,
                                                  include.get(name, ROOT / "include")))
            print(f"round {round_number + 1}/{args.rounds} done", file=sys.stderr)

    medians = {name: statistics.median(times) for name, times in runs.items()}
    print(f"| program | median CPU s ({args.rounds} rounds, {args.compiler} {args.flags}) |")
    print("|---|---:|")
    for name, value in medians.items():
        print(f"| {name} | {value:.2f} |")
    print()
    print("| ratio | measured | target |")
    print("|---|---:|---:|")
    for ours, theirs, what, target in PAIRS:
        if ours not in medians:
            print(f"| {what} | (not offered) | <= {target} |")
            continue
        ratio = medians[ours] / medians[theirs]
        print(f"| {what} ({ours} / {theirs}) | {ratio:.2f}x | <= {target}x |")
    for ours, what in [("tcp_server", "the TCPServer TU"), ("umbrella_parse", "socketserver.hpp parsed")]:
        if f"{ours}_before" in medians:
            ratio = medians[ours] / medians[f"{ours}_before"]
            print(f"| {what}, this tree / --baseline ({ours} / {ours}_before) | {ratio:.2f}x | |")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"rounds": args.rounds, "medians": medians}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
