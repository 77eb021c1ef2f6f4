#!/usr/bin/env python3
"""Runs the TLS benchmark and writes its section of docs/benchmarks.md.

Handshakes (full TLS 1.3 with an ECDSA P-256 and an RSA-2048 certificate, resumed TLS 1.3 and
TLS 1.2) and TLS traffic (ping-pong, pipelined, 16 KiB bulk) against uppercase_echo's async
server on one event loop, with openssl s_server (handshakes only), Go's crypto/tls and Tokio
with tokio-rustls as peers in the same run. Each server is pinned to core 0 and the load
generator (bench/loadgen --tls) to core 1; the client's handshake costs as much as the server's,
so rates are given per server core: operations over the server's CPU seconds. Also the
syscalls per TLS ping-pong message against plain TCP, and the memory per idle TLS connection.

    python3 bench/tls.py --build build             # about 8 minutes on 2 cores
    python3 bench/tls.py --build build --smoke     # seconds: does every server answer?

Standard library only; the peers are built as bench/run.py builds its own (Go, offline cargo).
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import run as harness  # bench/run.py: server processes, CPU ticks, the peers' builds

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BEGIN, END = "<!-- tls benchmark -->", "<!-- /tls benchmark -->"
HANDSHAKES = {  # name: loadgen flags
    "full TLS 1.3": ["--workload", "handshake", "--tls"],
    "resumed TLS 1.3": ["--workload", "handshake", "--tls-resume"],
    "resumed TLS 1.2": ["--workload", "handshake", "--tls-resume", "--tls-version", "1.2"],
}
TRAFFIC = {
    "ping-pong": ["--workload", "pingpong", "--tls", "--connections", "64", "--size", "64"],
    "pipelined": ["--workload", "pipelined", "--tls", "--connections", "64", "--depth", "16", "--size", "64"],
    "bulk 16 KiB": ["--workload", "bulk", "--tls", "--connections", "8", "--size", "16384"],
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default=str(ROOT / "build"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"),
                        help="the report whose TLS section is written (the rest is kept)")
    parser.add_argument("--smoke", action="store_true", help="tiny runs, one round, no peers' builds")
    args = parser.parse_args()
    if args.smoke:
        args.rounds, args.duration, args.warmup = 1, 0.3, 0.1
    return args


def make_certificate(directory, kind):
    key, cert = directory / f"{kind}.key", directory / f"{kind}.crt"
    algorithm = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if kind == "ecdsa" else ["-newkey", "rsa:2048"]
    subprocess.run(["openssl", "req", "-x509", *algorithm, "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return cert, key


class Tls(harness.Server):
    """A server whose argv holds "{port}" where its port goes."""

    def __init__(self, name, label, argv, handshakes_only=False, env=None, stdin_open=False):
        super().__init__(name, label, argv, env=env)
        self.handshakes_only = handshakes_only
        self.stdin_open = stdin_open  # s_server ends at the end of its input


def servers_for(build, cert, peers):
    echo = build / "examples" / "uppercase_echo"
    servers = [Tls("socketserver", "uppercase_echo --concurrency async --threads 1",
                   [str(echo), "--port", "{port}", "--concurrency", "async", "--threads", "1", "--log-level", "off",
                    "--tls-cert", str(cert[0]), "--tls-key", str(cert[1])])]
    if shutil.which("openssl"):
        servers.append(Tls("openssl-s_server", "openssl s_server (handshakes only)",
                           ["openssl", "s_server", "-quiet", "-accept", "127.0.0.1:{port}", "-cert", str(cert[0]),
                            "-key", str(cert[1])], handshakes_only=True, stdin_open=True))
    if peers.get("go"):
        servers.append(Tls("go-crypto-tls", "Go crypto/tls, GOMAXPROCS=1",
                           [str(peers["go"]), "-port", "{port}", "-tls-cert", str(cert[0]), "-tls-key", str(cert[1])],
                           env={"GOMAXPROCS": "1"}))
    if peers.get("tokio-rustls"):
        servers.append(Tls("tokio-rustls", "Tokio current-thread + tokio-rustls",
                           [str(peers["tokio-rustls"]), "--port", "{port}", "--tls-cert", str(cert[0]), "--tls-key",
                            str(cert[1])]))
    return servers


def cell(args, loadgen, server, flags):
    """One loadgen run: the result, with the server's CPU seconds and operations per CPU second."""
    before = harness.server_ticks(server)
    argv = harness.pin(1) + [str(loadgen), "--port", str(server.port), *flags, "--duration", str(args.duration),
                             "--warmup", str(args.warmup)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return harness.failure("loadgen did not finish")
    result = harness.parse_result(done.stdout) or harness.failure(done.stderr.strip()[-300:])
    harness.wait_quiet(server, limit=3)
    after = harness.server_ticks(server)
    cpu = (after[0] - before[0] + after[1] - before[1]) / harness.CLOCK_TICKS
    result["server_cpu_s"] = cpu
    result["per_core"] = result.get("total_messages", 0) / cpu if cpu > 0 else 0.0
    return result


def syscalls_per_message(args, loadgen, build, cert, work_dir, tls):
    """System calls per ping-pong message of uppercase_echo (async, one loop) run under `strace -f -c`
    from its start: 64 connections, their handshakes and closes included (a few hundred calls
    against tens of thousands of messages)."""
    if not shutil.which("strace"):
        return None
    output = work_dir / f"strace-{'tls' if tls else 'plain'}.txt"
    argv = ["strace", "-f", "-c", "-o", str(output), str(build / "examples" / "uppercase_echo"), "--port", "{port}",
            "--concurrency", "async", "--threads", "1", "--log-level", "off"]
    if tls:
        argv += ["--tls-cert", str(cert[0]), "--tls-key", str(cert[1])]
    server = Tls("strace", "", argv)
    if not harness.launch_templated(server, work_dir, stdin=subprocess.PIPE if server.stdin_open else subprocess.DEVNULL):
        return None
    result = cell(args, loadgen, server, TRAFFIC["ping-pong"] if tls else
                  ["--workload", "pingpong", "--connections", "64", "--size", "64"])
    os.killpg(server.proc.pid, signal.SIGINT)  # the server drains and exits; strace then writes its table
    try:
        server.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        harness.stop_servers([server])
        return None
    text = output.read_text(errors="replace") if output.exists() else ""
    match = re.search(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)(?:\s+\d+)?\s+total\s*$", text, re.M)
    if not match or not result.get("total_messages") or result.get("errors"):
        return None
    return int(match.group(1)) / result["total_messages"]


def main():
    args = parse_args()
    build = Path(args.build).resolve()
    loadgen = build / "bench" / "loadgen"
    if not loadgen.exists():
        sys.exit(f"{loadgen} is not built: cmake --build {args.build} --target bench")
    notes, peers = [], {}
    work = Path(tempfile.mkdtemp(prefix="socketserver-tls-bench-"))
    if not args.smoke:
        peers["go"] = harness.build_go(build / "bench-peers", notes)
        peers["tokio-rustls"], _ = harness.build_tokio(build / "bench-peers", 2, notes, crate="tokio_rustls",
                                                       binary="tokio_rustls_server",
                                                       crates=("tokio-1.*", "tokio-rustls-0.23*", "rustls-pemfile-1*"),
                                                       label="tokio-rustls peer")
    results = {}  # (certificate, workload, server) -> [result per round]
    memory, syscalls = {}, {}
    started = time.monotonic()
    try:
        for kind in ("ecdsa", "rsa"):
            cert = make_certificate(work, kind)
            servers = servers_for(build, cert, peers)
            for server in servers:
                if not harness.launch_templated(server, work, stdin=subprocess.PIPE if server.stdin_open else subprocess.DEVNULL):
                    notes.append(f"{server.name} ({kind}) did not start: {server.failed}")
            live = [s for s in servers if s.proc and s.proc.poll() is None and not s.failed]
            workloads = dict(HANDSHAKES) if kind == "ecdsa" else {"full TLS 1.3": HANDSHAKES["full TLS 1.3"]}
            if kind == "ecdsa":
                workloads.update(TRAFFIC)
            for round_ in range(args.rounds):
                harness.log(f"round {round_ + 1}/{args.rounds}, {kind}")
                for name, flags in workloads.items():
                    for server in live:
                        if server.handshakes_only and name in TRAFFIC:
                            continue
                        result = cell(args, loadgen, server, flags)
                        results.setdefault((kind, name, server.name), []).append(result)
                        if result.get("errors"):
                            notes.append(f"{server.name}, {name} ({kind}): {result['errors']} errors, e.g. "
                                         f"{result.get('error_samples', [''])[0]}")
            if kind == "ecdsa" and not args.smoke:
                for name, tls in (("TLS", True), ("plain TCP", False)):
                    syscalls[name] = syscalls_per_message(args, loadgen, build, cert, work, tls)
                for server in live:
                    if server.handshakes_only:
                        continue
                    idle = idle_memory(loadgen, server)
                    if idle is not None:
                        memory[server.name] = idle
            harness.stop_servers(servers)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    section = report(args, results, syscalls, memory, notes, time.monotonic() - started)
    print(section)
    if args.smoke:
        failed = [key for key, runs in results.items() if any(r.get("errors") for r in runs)]
        sys.exit(1 if failed or not results else 0)
    harness.write_section(Path(args.out), BEGIN, END, section, "TLS")


def idle_memory(loadgen, server, count=2000):
    """KiB of the server's RSS per idle TLS connection (each exchanged one line, then held)."""
    before = harness.vm_rss_kib(server.proc.pid)
    argv = harness.pin(1) + [str(loadgen), "--port", str(server.port), "--workload", "idle", "--tls", "--connections",
                             str(count)]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        ready = harness.read_json_line(proc, 120)
        time.sleep(0.3)  # the last replies' work done
        after = harness.vm_rss_kib(server.proc.pid)
        proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None
    if not ready or not ready.get("ready") or before is None or after is None:
        return None
    return (after - before) / ready["ready"]


def report(args, results, syscalls, memory, notes, elapsed):
    servers = sorted({key[2] for key in results}, key=lambda n: (n != "socketserver", n))
    lines = [BEGIN, "", "## TLS", "",
             f"`python3 bench/tls.py --build build`: {args.rounds} rounds of {args.duration:g} s per cell, medians; "
             f"{elapsed / 60:.1f} minutes. Every server pinned to core 0, the load generator (OpenSSL's client) to "
             "core 1. **Per core** is operations over the server's CPU seconds in the cell: a TLS client's handshake "
             "costs as much as the server's, so one client core cannot saturate a server core, and the rate the "
             "client saw is given beside it.", ""]
    for kind, title in (("ecdsa", "ECDSA P-256 certificate"), ("rsa", "RSA-2048 certificate")):
        workloads = [name for name in list(HANDSHAKES) + list(TRAFFIC) if any(k[0] == kind and k[1] == name
                                                                             for k in results)]
        if not workloads:
            continue
        lines += [f"### {title}", "", "| workload | " + " | ".join(servers) + " |",
                  "|---|" + "---|" * len(servers)]
        for name in workloads:
            ours = harness.median([r["per_core"] for r in results.get((kind, name, "socketserver"), [])]) or 0.0
            row = [name + (" (per core; client's rate)" if name in HANDSHAKES else " (msgs/s per core; client's)")]
            for server in servers:
                runs = results.get((kind, name, server))
                if not runs:
                    row.append("")
                    continue
                per_core = harness.median([r["per_core"] for r in runs]) or 0.0
                client = harness.median([r.get("msgs_per_s", 0.0) for r in runs]) or 0.0
                ratio = f", **{ours / per_core:.2f}x**" if server != "socketserver" and per_core else ""
                row.append(f"{per_core:,.0f}; {client:,.0f}{ratio}")
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    lines.append("A ratio is socketserver's per-core rate over that server's (above 1: socketserver does more per "
                 "core).")
    lines.append("")
    if syscalls:
        parts = [f"{name} {value:.2f}" for name, value in syscalls.items() if value is not None]
        lines += ["System calls per ping-pong message (socketserver, async, 64 connections, the server under "
                  f"`strace -f -c` from its start): {', '.join(parts)}.", ""]
    if memory:
        parts = [f"{name} {value:.1f} KiB" for name, value in sorted(memory.items())]
        lines += ["Server RSS per idle TLS connection (2,000 connections, one line each, then held): " +
                  ", ".join(parts) + ". The heap alone, counted by tests/test_async_allocation.cpp: 15.3 KiB per "
                  "connection.", ""]
    return harness.end_section(lines, notes, END)


if __name__ == "__main__":
    main()
