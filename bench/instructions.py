#!/usr/bin/env python3
"""User-space instructions per message of the example server, counted by callgrind.

usage: instructions.py [--build build] [--concurrency async] [--workloads pingpong,bulk]
                       [--proxy] [--baseline OTHER_UPPERCASE_ECHO]

Instruction counts do not depend on what else the machine is doing, so they compare two builds
(or a build with and without the PROXY layer) where timings drift. Each figure runs the server
under `valgrind --tool=callgrind` twice, with the load generator for 1 s and for 4 s (8
connections), and divides the difference in instructions by the difference in messages, so
that start-up and shutdown cancel out. Kernel time is not counted: divide by the report's
server CPU per message to see what share of it the difference is.

Variants: this build; with --proxy, this build behind a PROXY v1 sender (`--proxy-protocol
127.0.0.0/8`, the header in the first request's packet); with --baseline, an uppercase_echo
built from another commit.
"""
import argparse
import json
import pathlib
import re
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def count(server, loadgen, concurrency, workload, seconds, proxy, tmp):
    """(instructions, messages) of one run of `server` under callgrind."""
    port = free_port()
    out = pathlib.Path(tmp) / f"callgrind.{port}"
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", server, "--port", str(port),
            "--concurrency", concurrency]
    if concurrency == "async":
        argv += ["--threads", "1"]
    if proxy:
        argv += ["--proxy-protocol", "127.0.0.0/8"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:  # valgrind takes a few seconds to start the server
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    sys.exit(f"{server} did not start listening on port {port}")
                time.sleep(0.05)
        load = [loadgen, "--port", str(port), "--workload", workload, "--duration", str(seconds), "--warmup", "0",
                "--connections", "8", "--timeout", "30"]
        if proxy:
            load.append("--proxy-v1")
        done = subprocess.run(load, capture_output=True, text=True, timeout=120)
    finally:
        process.send_signal(2)
        process.wait(timeout=60)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result.get("errors"):
        sys.exit(f"{workload}: {result['errors']} wrong replies")
    instructions = int(re.search(r"^summary: (\d+)", out.read_text(), re.M).group(1))
    return instructions, result["total_messages"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default=str(ROOT / "build"))
    parser.add_argument("--concurrency", default="async")
    parser.add_argument("--workloads", default="pingpong,pipelined,bulk,churn")
    parser.add_argument("--proxy", action="store_true", help="also this build behind a PROXY v1 sender")
    parser.add_argument("--baseline", default=None, help="also an uppercase_echo built from another commit")
    args = parser.parse_args()
    build = pathlib.Path(args.build)
    variants = [("this build", str(build / "examples" / "uppercase_echo"), False)]
    if args.proxy:
        variants.append(("this build, PROXY v1", variants[0][1], True))
    if args.baseline:
        variants.append(("baseline", args.baseline, False))
    loadgen = str(build / "bench" / "loadgen")
    print(f"| workload ({args.concurrency}) | " + " | ".join(name for name, _, _ in variants) + " |")
    print("|---|" + "---:|" * len(variants))
    with tempfile.TemporaryDirectory() as tmp:
        for workload in args.workloads.split(","):
            cells = []
            for _, server, proxy in variants:
                short = count(server, loadgen, args.concurrency, workload, 1, proxy, tmp)
                long = count(server, loadgen, args.concurrency, workload, 4, proxy, tmp)
                cells.append(f"{(long[0] - short[0]) / (long[1] - short[1]):,.0f}")
            print(f"| {workload} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
