#!/usr/bin/env python3
"""Runs the HTTP benchmark and writes its section of docs/benchmarks.md.

examples/http_server (AsyncTCPServer on one event loop, and ThreadingTCPServer) against nginx (one worker, sendfile on, access log
off) serving the same directory, each pinned to core 0, wrk on core 1 with one thread: requests
per second for a 1 KiB file over 32 keep-alive connections, and MB/s for a 100 MiB file over 4.
The rounds alternate the servers, so that both meet the same machine.

    python3 bench/http.py --build build            # about 2 minutes (apt-get install wrk nginx)
    python3 bench/http.py --build build --smoke    # seconds: do both servers answer?

Standard library only.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import run as harness  # bench/run.py: server processes, pinning, the report's sections

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BEGIN, END = "<!-- http benchmark -->", "<!-- /http benchmark -->"
FILES = (("1k.bin", 1024, 32), ("100m.bin", 100 * 1024 * 1024, 4))  # name, size, connections

NGINX_CONF = """worker_processes 1;
daemon off;
pid {work}/nginx-PORT.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path {work}/nginx-body;
  types {{ application/octet-stream bin; }}
  server {{ listen 127.0.0.1:PORT; root {site}; }}
}}
"""


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default=str(ROOT / "build"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"),
                        help="the report whose HTTP section is written (the rest is kept)")
    parser.add_argument("--smoke", action="store_true", help="one short round")
    args = parser.parse_args()
    if args.smoke:
        args.rounds, args.duration = 1, 1.0
    return args


def make_site(site):
    site.mkdir(parents=True, exist_ok=True)
    for name, size, _ in FILES:
        path = site / name
        if not path.exists() or path.stat().st_size != size:
            with open(path, "wb") as out:
                left = size
                while left:
                    chunk = os.urandom(min(left, 1 << 20))
                    out.write(chunk)
                    left -= len(chunk)


def servers_for(build, work, site, nginx):
    binary = [str(build / "examples" / "http_server"), "--port", "{port}", "--directory", str(site)]
    servers = [harness.Server("socketserver async", "AsyncTCPServer, 1 event loop",
                              binary + ["--concurrency", "async", "--threads", "1"]),
               harness.Server("socketserver threading", "ThreadingTCPServer", binary + ["--concurrency", "threading"])]
    if nginx:
        template = work / "nginx.conf.in"
        template.write_text(NGINX_CONF.format(work=work, site=site))
        script = f"sed s/PORT/{{port}}/g {template} > {work}/nginx-{{port}}.conf && exec {nginx} -p {work} " \
                 f"-c {work}/nginx-{{port}}.conf"
        servers.append(harness.Server("nginx", "nginx, 1 worker, sendfile", ["sh", "-c", script]))
    return servers


UNITS = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3}


def cell(args, wrk, server, name, connections):
    argv = harness.pin(1) + [wrk, "-t1", f"-c{connections}", f"-d{args.duration:g}s",
                             f"http://127.0.0.1:{server.port}/{name}"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=args.duration + 60)
    except subprocess.TimeoutExpired:
        return harness.failure("wrk did not finish")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)(B|KB|MB|GB)", done.stdout)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", done.stdout)
    if not rate or not transfer:
        return harness.failure((done.stdout + done.stderr).strip()[-300:])
    result = {"requests_per_s": float(rate.group(1)),
              "mb_per_s": float(transfer.group(1)) * UNITS[transfer.group(2)] / 1e6}
    if errors:
        result["errors"] = 1
        result["error_samples"] = [errors.group(0)]
    return result


def main():
    args = parse_args()
    build = Path(args.build).resolve()
    wrk = shutil.which("wrk")
    if not wrk:
        sys.exit("wrk is not installed: apt-get install wrk")
    if not (build / "examples" / "http_server").exists():
        sys.exit(f"{build}/examples/http_server is not built: cmake --build {args.build} --target http_server")
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    notes = [] if nginx else ["nginx is not installed (apt-get install nginx): no reference"]
    work = Path(os.environ.get("TMPDIR", "/tmp")) / "socketserver-http-bench"
    site = work / "site"
    make_site(site)
    results = {}  # (file, server) -> [result per round]
    started = time.monotonic()
    for round_ in range(args.rounds):
        harness.log(f"round {round_ + 1}/{args.rounds}")
        for name, _, connections in FILES:
            for server in servers_for(build, work, site, nginx):
                if not harness.launch_templated(server, work):
                    notes.append(f"{server.name} did not start: {server.failed}")
                    continue
                result = cell(args, wrk, server, name, connections)
                harness.stop_servers([server])
                results.setdefault((name, server.name), []).append(result)
                if result.get("errors"):
                    notes.append(f"{server.name}, {name}: {result.get('error_samples', [''])[0]}")
    section = report(args, results, notes, time.monotonic() - started)
    print(section)
    if args.smoke:
        ours = [r for key, runs in results.items() if key[1].startswith("socketserver") for r in runs]
        sys.exit(1 if not ours or any(r.get("errors") for r in ours) else 0)
    harness.write_section(Path(args.out), BEGIN, END, section, "HTTP")


def report(args, results, notes, elapsed):
    def median(name, server, key):
        runs = results.get((name, server), [])
        if not runs or any(r.get("errors") for r in runs):
            return None
        return harness.median([r.get(key) for r in runs])

    lines = [BEGIN, "", "## HTTP file server", "",
             f"`python3 bench/http.py --build build`: {args.rounds} rounds of {args.duration:g} s per cell, the "
             f"servers alternating, medians; {elapsed / 60:.1f} minutes. `examples/http_server` "
             "(`--concurrency async --threads 1`: one event loop; `threading`: a thread per connection) and "
             "nginx (one worker process, `sendfile on`, "
             "`access_log off`) serve the same directory, each pinned to core 0; `wrk -t1` on core 1, "
             "keep-alive.", "",
             "| file | connections | server | socketserver | nginx | ratio | target |", "|---|---|---|---|---|---|---|"]
    for name, size, connections in FILES:
        key, unit, target = ("requests_per_s", "requests/s", 0.8) if size <= 1024 else ("mb_per_s", "MB/s", 0.9)
        theirs = median(name, "nginx", key)
        for server in ("socketserver async", "socketserver threading"):
            ours = median(name, server, key)
            ratio = f"**{ours / theirs:.2f}x**" if ours and theirs else ""
            shown = [f"{v:,.0f} {unit}" if v else "failed" for v in (ours, theirs)]
            label = "1 KiB" if size <= 1024 else "100 MiB"
            lines.append(f"| {label} | {connections} | {server.split()[1]} | {shown[0]} | {shown[1]} | {ratio} | "
                         f"{target:g}x |")
    lines += ["", "MB/s is 10^6 bytes a second, headers included (wrk's count). The example reads the file with "
              "pread() into a 256 KiB buffer and writes it through `wfile`, where nginx hands it to the kernel "
              "with sendfile(); for small files both make about the same system calls per request "
              "(http_server: recv, openat2, fstat, pread, close, send). On this machine nginx's sendfile() of the "
              "100 MiB file to a loopback socket came out slower than the example's pread() and send(); that is "
              "what wrk measured, and nginx's configuration is its defaults apart from the lines above. The 1 KiB "
              "figures move by about 10% from run to run here: compare the ratios of one run.", ""]
    return harness.end_section(lines, notes, END)


if __name__ == "__main__":
    main()
