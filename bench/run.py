#!/usr/bin/env python3
"""Runs the upper-case line echo benchmark and writes docs/benchmarks.md.

Starts every server at once (pinned to core 0, each on a free port), drives one server and one
workload at a time with the bundled load generator (pinned to core 1), repeats the whole
matrix for --rounds rounds, and reports medians: messages/s and its ratio to the plain asio
reference server, p99 latency, syscalls per ping-pong message and idle memory per connection.
Also writes the raw results as JSON and a plot beside the report.

    python3 bench/run.py --build build            # the full run, about 6 minutes on 2 cores
    python3 bench/run.py --build build --smoke    # seconds: does every server answer correctly?

Standard library only. The Go and Tokio peers are built here, each skipped with a note when its
toolchain is missing.
"""

import argparse
import collections
import datetime
import json
import os
import re
import resource
import select
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORKLOADS = ["pingpong", "pipelined", "bulk", "churn", "idle"]
THROUGHPUT = ["pingpong", "pipelined", "bulk", "churn"]
REFERENCE = "asio-coro"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
DISTURBED = 0.1  # cores of other processes' work during a run, past which it is run again
UNSTEADY = 1.3  # fastest over slowest round of a cell, past which it gets extra rounds
APT_PACKAGES = ("build-essential cmake libasio-dev libfmt-dev catch2 python3 golang-go cargo librust-tokio-dev "
                "linux-perf strace python3-matplotlib")

# Why a cell is not measured; each becomes a numbered footnote in the report.
ONE_AT_A_TIME = ("`plain` serves one connection at a time, so only `churn` (one line per connection) can run on it; "
                 "the other workloads keep several connections open at once")
POOL_IDLE = "the pool serves at most `--threads` connections at once; the rest wait in its queue and get no reply"
FORK_IDLE = "one child process per connection: the server's own RSS says nothing about the memory per connection"


class Server:
    def __init__(self, name, label, argv, env=None, skip=None, kind="c++", forks=False, loadgen_args=None):
        self.name = name
        self.loadgen_args = loadgen_args or []  # what the load generator adds for this server
        self.label = label
        self.argv = argv  # without --port
        self.env = env or {}
        self.skip = skip or {}  # workload -> reason
        self.kind = kind
        self.deaths = []  # unexpected exits, each followed by a restart
        # Its connections are served by child processes, whose CPU time leaves with them when they
        # exit (unless the server happens to reap them with wait()): no CPU figures for it.
        self.forks = forks
        self.proc = None
        self.port = None
        self.log = None
        self.failed = None  # why it stopped being measured


def log(message):
    print(message, flush=True)


def run_text(argv, **kwargs):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, **kwargs)
    except (OSError, subprocess.TimeoutExpired):
        return None


def first_line(argv):
    result = run_text(argv)
    if result is None or result.returncode != 0:
        return None
    text = (result.stdout or result.stderr).strip()
    return text.splitlines()[0] if text else None


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--build", default=str(ROOT / "build"),
                        help="CMake build directory with examples/uppercase_echo and bench/ targets")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the whole matrix (at least 3)")
    parser.add_argument("--duration", type=float, default=2.0, help="measured seconds per cell")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds before each cell")
    parser.add_argument("--only", default="", help="comma-separated server names (see --list)")
    parser.add_argument("--baseline", default=None,
                        help="an uppercase_echo built from another commit: its threading and async servers run "
                             "beside this build's as before-threading and before-async, for before/after ratios "
                             "from one run")
    parser.add_argument("--list", action="store_true", help="list the server names and exit")
    parser.add_argument("--out", default=None, help="the report (default docs/benchmarks.md; a temp file with --smoke)")
    parser.add_argument("--smoke", action="store_true",
                        help="seconds-long check: tiny runs, 1 round, no peers build, no syscall count, no plot; "
                        "exits non-zero on any error")
    parser.add_argument("--connections", type=int, default=64, help="pingpong and pipelined connections")
    parser.add_argument("--depth", type=int, default=16, help="lines per write in pipelined")
    parser.add_argument("--size", type=int, default=64, help="line size in bytes, newline included")
    parser.add_argument("--bulk-connections", type=int, default=8)
    parser.add_argument("--bulk-size", type=int, default=16384, help="bulk line size in bytes, newline included")
    parser.add_argument("--churn-clients", type=int, default=16, help="churn connections in flight")
    parser.add_argument("--idle-connections", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=128,
                        help="--threads for uppercase_echo's pool and forking servers")
    parser.add_argument("--syscalls", choices=["auto", "perf", "strace", "none"], default="auto",
                        help="how to count syscalls per ping-pong message")
    parser.add_argument("--syscall-seconds", type=float, default=1.0)
    parser.add_argument("--jobs", type=int, default=1, help="parallel jobs for the Tokio build")
    parser.add_argument("--extra-rounds", type=int, default=2,
                        help=f"extra rounds, at most, for the cells whose rounds differ by more than {UNSTEADY}x")
    parser.add_argument("--retry-after", type=float, default=480,
                        help="seconds into the run after which disturbed runs are no longer done again, so that a "
                        "busy machine cannot stretch the run without end")
    parser.add_argument("--retries", type=int, default=2,
                        help=f"times a run is done again when other work took more than {DISTURBED} cores meanwhile")
    args = parser.parse_args()
    if args.smoke:
        args.rounds = 1
        args.duration = min(args.duration, 0.3)
        args.warmup = min(args.warmup, 0.1)
        args.idle_connections = min(args.idle_connections, 50)
        args.syscalls = "none"
        args.retries = args.extra_rounds = 0  # correctness, not timing: noise does not matter
    elif args.rounds < 3:
        parser.error("--rounds must be at least 3 (medians need them); use --smoke for a quick check")
    return args


# ---------------------------------------------------------------------------------------------
# Building the peers


def build_go(build_dir, notes):
    go = shutil.which("go")
    if not go:
        notes.append("Go peer skipped: no `go` on PATH (Debian package `golang-go`).")
        return None
    out = build_dir / "go_server"
    out.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GOFLAGS="-mod=mod", GOPROXY="off", GOTOOLCHAIN="local", GOCACHE=str(build_dir / "go-cache"))
    log("building the Go peer")
    result = run_text([go, "build", "-o", str(out), "."], cwd=HERE / "peers" / "go", env=env)
    if result is None or result.returncode != 0:
        notes.append("Go peer skipped: `go build` failed: " + (result.stderr.strip()[-500:] if result else "timed out"))
        return None
    return out


def cargo_toolchain():
    # Debian's cargo and rustc match Debian's packaged crates; a rustup toolchain earlier on PATH
    # would work too, but the report should name what was used.
    if Path("/usr/bin/cargo").exists() and Path("/usr/bin/rustc").exists():
        return "/usr/bin/cargo", "/usr/bin/rustc"
    cargo, rustc = shutil.which("cargo"), shutil.which("rustc")
    return (cargo, rustc) if cargo and rustc else (None, None)


def build_tokio(build_dir, jobs, notes, crate="tokio", binary="tokio_server", crates=("tokio-1.*",),
                label="Tokio peer"):
    """Builds a Rust peer under peers/`crate` offline from Debian's crates: (its binary, Tokio's
    version), or (None, None) with a note saying why not."""
    cargo, rustc = cargo_toolchain()
    registry = Path("/usr/share/cargo/registry")
    if not cargo:
        notes.append(f"{label} skipped: no `cargo`/`rustc` (Debian package `cargo`).")
        return None, None
    missing = [pattern for pattern in crates if not any(registry.glob(pattern))]
    if missing:
        notes.append(f"{label} skipped: no {', '.join(missing)} crate in /usr/share/cargo/registry (Debian's "
                     "`librust-tokio-dev`, `librust-tokio-rustls-dev`, `librust-rustls-pemfile-dev`).")
        return None, None
    work = build_dir / crate
    (work / "src").mkdir(parents=True, exist_ok=True)
    for name in ["Cargo.toml", "src/main.rs"]:
        source, target = HERE / "peers" / crate / name, work / name
        if not target.exists() or target.read_bytes() != source.read_bytes():
            shutil.copyfile(source, target)  # only when changed, so cargo keeps its cache
    cargo_home = work / "cargo-home"
    cargo_home.mkdir(exist_ok=True)
    (cargo_home / "config.toml").write_text(
        "# Debian's packaged crates as the only registry: the build never goes online.\n"
        "[source.crates-io]\nreplace-with = \"debian-packages\"\n\n"
        f"[source.debian-packages]\ndirectory = \"{registry}\"\n\n[net]\noffline = true\n")
    env = dict(os.environ, CARGO_HOME=str(cargo_home), RUSTC=rustc)
    log(f"building the {label} (offline, Debian's crates)")
    try:
        result = subprocess.run([cargo, "build", "--offline", "--release", "-j", str(jobs)], cwd=work, env=env,
                                capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        result = None
    if result is None or result.returncode != 0:
        notes.append(f"{label} skipped: `cargo build` failed: " +
                     (result.stderr.strip()[-500:] if result else "timed out"))
        return None, None
    version = None
    lock = work / "Cargo.lock"
    if lock.exists():
        match = re.search(r'name = "tokio"\nversion = "([^"]+)"', lock.read_text())
        version = match.group(1) if match else None
    return work / "target" / "release" / binary, version


# ---------------------------------------------------------------------------------------------
# The servers


def servers_to_run(args, build, notes):
    bench_dir = build / "bench"
    servers = []
    for binary, name, label in [("asio_coro_server", "asio-coro", "asio coroutines, 1 thread (reference)"),
                                ("blocking_server", "blocking", "blocking, thread per connection (reference)")]:
        path = bench_dir / binary
        if path.exists():
            servers.append(Server(name, label, [str(path)]))
        else:
            notes.append(f"`{name}` skipped: {portable(path)} is not built "
                         f"(`cmake --build {portable(build)} --target bench`).")

    echo = build / "examples" / "uppercase_echo"
    if not echo.exists():
        notes.append(f"socketserver servers skipped: {portable(echo)} is not built.")
    else:
        help_text = run_text([str(echo), "--help"])
        help_text = (help_text.stdout + help_text.stderr) if help_text else ""
        threads = str(args.threads)
        variants = [
            ("plain", "socketserver TCPServer (one connection at a time)", [], {w: ONE_AT_A_TIME for w in WORKLOADS
                                                                                 if w != "churn"}),
            ("threading", "socketserver ThreadingTCPServer", [], {}),
            ("forking", f"socketserver ForkingTCPServer, {threads} children", ["--threads", threads],
             {"idle": FORK_IDLE}),
            ("pool", f"socketserver ThreadPoolMixIn, {threads} workers", ["--threads", threads], {"idle": POOL_IDLE}),
            ("async", "socketserver async, 1 event-loop thread", ["--threads", "1"], {}),
        ]
        if "--concurrency" in help_text:
            for concurrency, label, extra, skip in variants:
                servers.append(
                    Server(f"socketserver-{concurrency}", label,
                           [str(echo), "--host", "127.0.0.1", "--concurrency", concurrency] + extra, skip=skip,
                           forks=concurrency == "forking"))
        if "--proxy-protocol" in help_text:
            # The PROXY protocol's cost: every connection opens with a v1 header, sent with its first
            # request, as from a proxy in front.
            for concurrency, label in [("threading", "socketserver ThreadingTCPServer behind a PROXY v1 sender"),
                                       ("async", "socketserver async, 1 event-loop thread, behind a PROXY v1 sender")]:
                servers.append(
                    Server(f"proxy-{concurrency}", label,
                           [str(echo), "--host", "127.0.0.1", "--concurrency", concurrency, "--proxy-protocol",
                            "127.0.0.0/8"] + (["--threads", "1"] if concurrency == "async" else []),
                           loadgen_args=["--proxy-v1"]))
        if args.baseline:
            base = Path(args.baseline).resolve()
            for concurrency, extra in [("threading", []), ("async", ["--threads", "1"])]:
                servers.append(
                    Server(f"before-{concurrency}", f"socketserver {concurrency}, as built from {base.name}",
                           [str(base), "--host", "127.0.0.1", "--concurrency", concurrency] + extra))
        else:
            # An uppercase_echo from before --concurrency: it is the ThreadingTCPServer, as built.
            servers.append(
                Server("socketserver-threading", "socketserver ThreadingTCPServer (uppercase_echo as built)",
                       [str(echo), "--host", "127.0.0.1"]))
            notes.append("This `uppercase_echo` has no `--concurrency` option yet, so it ran as built (a "
                         "ThreadingTCPServer) and the `plain`, `forking`, `pool` and `async` variants were not run.")

    peer_dir = build / "bench" / "peers"
    if args.smoke:
        notes.append("Go and Tokio peers not built or run in `--smoke` mode.")
    else:
        go_binary = build_go(peer_dir / "go", notes) if wanted(args, "go") else None
        if go_binary:
            servers.append(Server("go", "Go net, goroutine per connection, GOMAXPROCS=1", [str(go_binary)],
                                  env={"GOMAXPROCS": "1"}, kind="go"))
        tokio_binary, tokio_version = build_tokio(peer_dir, args.jobs, notes) if wanted(args, "tokio") else (None,
                                                                                                            None)
        if tokio_binary:
            server = Server("tokio", "Tokio current_thread, task per connection", [str(tokio_binary)], kind="rust")
            server.version = tokio_version
            servers.append(server)
    python = shutil.which("python3") or sys.executable
    servers.append(Server("python", "Python socketserver.ThreadingTCPServer",
                          [python, str(HERE / "peers" / "python_server.py")], kind="python"))
    if args.only:
        servers = [s for s in servers if wanted(args, s.name)]
    return servers


def wanted(args, name):
    return not args.only or name in [n.strip() for n in args.only.split(",")]


def free_ports(count):
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def pin(cpu):
    return ["taskset", "-c", str(cpu)] if cpu is not None else []


def launch(server, port, server_cpu, log_dir):
    server.port = port
    server.log = log_dir / f"{server.name}.log"
    argv = pin(server_cpu) + server.argv + ["--port", str(port)]
    with open(server.log, "a") as out:
        # Its own session, so stopping it also stops what it forked.
        server.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                       env=dict(os.environ, **server.env), start_new_session=True)


def launch_templated(server, log_dir, cpu=0, stdin=subprocess.DEVNULL):
    """Starts `server` on a free port, pinned to `cpu`: its argv names the port as {port}. The
    scenario scripts' way (bench/fanout.py, bench/tls.py); returns wait_accepting()'s answer."""
    server.port = free_ports(1)[0]
    server.log = log_dir / f"{server.name}.log"
    argv = pin(cpu) + [a.replace("{port}", str(server.port)) for a in server.argv]
    with open(server.log, "a") as out:
        server.proc = subprocess.Popen(argv, stdin=stdin, stdout=out, stderr=subprocess.STDOUT,
                                       env=dict(os.environ, **server.env), start_new_session=True)
    return wait_accepting(server, time.monotonic() + 20)


def wait_accepting(server, deadline):
    """True once the server accepts a connection; sets server.failed otherwise."""
    while True:
        if server.proc.poll() is not None:
            server.failed = f"exited with status {server.proc.returncode} at start: {tail(server.log)}"
            return False
        try:
            socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
            return True
        except OSError:
            if time.monotonic() > deadline:
                server.failed = "did not accept connections within 20 s"
                return False
            time.sleep(0.05)


def start_servers(servers, server_cpu, log_dir):
    for server, port in zip(servers, free_ports(len(servers))):
        (log_dir / f"{server.name}.log").unlink(missing_ok=True)
        launch(server, port, server_cpu, log_dir)
    deadline = time.monotonic() + 20
    for server in servers:
        if not wait_accepting(server, deadline):
            log(f"  {server.name}: {server.failed}")


def restart(server, server_cpu, log_dir):
    """A fresh process of the same server, on a new port (the old one may linger in TIME_WAIT)."""
    stop_servers([server])
    launch(server, free_ports(1)[0], server_cpu, log_dir)
    return wait_accepting(server, time.monotonic() + 20)


def tail(path, lines=5):
    try:
        return " / ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def stop_servers(servers):
    for server in servers:
        if server.proc and server.proc.poll() is None:
            try:
                os.killpg(server.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 5
    for server in servers:
        if not server.proc:
            continue
        try:
            server.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(server.proc.pid, signal.SIGKILL)  # what is left of its group, children included
        except (ProcessLookupError, PermissionError):
            pass
        try:
            server.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def descendants(pid):
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            tasks = list(Path(f"/proc/{current}/task").iterdir())
        except OSError:  # it exited meanwhile (a forking server's child)
            continue
        for task in tasks:
            try:
                todo.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:
                pass
    return found


def cpu_ticks(pids):
    """CPU clock ticks used by `pids`, all their threads: (user, kernel)."""
    user = kernel = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            user += int(fields[11])  # utime
            kernel += int(fields[12])  # stime
        except (OSError, IndexError, ValueError):
            pass
    return user, kernel


def server_ticks(server):
    """CPU ticks used by the server so far, with its children: the live ones, and through its own
    cutime/cstime those it has reaped (a forking server's children exit as connections close)."""
    pid = server.proc.pid
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        reaped = int(fields[13]), int(fields[14])  # cutime, cstime
    except (OSError, IndexError, ValueError):
        reaped = 0, 0
    user, kernel = cpu_ticks(descendants(pid))
    return user + reaped[0], kernel + reaped[1]


def wait_quiet(server, limit=15.0):
    """Waits until the server stops using CPU (threads exiting, sockets closing) and has reaped
    its exited children, so that the next cell is not billed for this one's teardown."""
    deadline = time.monotonic() + limit
    last = server_ticks(server)
    while time.monotonic() < deadline:
        time.sleep(0.15)
        now = server_ticks(server)
        if now == last and not zombies(server.proc.pid):
            return
        last = now


def zombies(pid):
    """Whether any child of `pid` has exited and is still waiting to be reaped."""
    for child in descendants(pid)[1:]:
        try:
            if Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        except (OSError, IndexError):
            pass
    return False


def spread_ratio(runs):
    rates = [r["msgs_per_s"] for r in runs if not r.get("failed") and not r.get("errors") and r.get("msgs_per_s")]
    return max(rates) / min(rates) if len(rates) >= 2 else 1.0


def foreign_ticks(servers):
    """CPU ticks used so far by every process that is not this benchmark's (this script, its load
    generators, the servers and their children) nor a kernel thread. Each process counts with
    the children it has reaped, so the difference of two readings also holds the processes that
    started and ended in between (a compiler run, say): the other work the machine was doing."""
    ours = {os.getpid()}
    for server in servers:
        if server.proc and server.proc.poll() is None:
            ours.update(descendants(server.proc.pid))
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in ours:
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) in ours or int(fields[1]) == 2 or entry.name == "2":  # our children, kernel threads
            continue
        total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return total, time.monotonic()


def vm_rss_kib(pid):
    try:
        match = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
        return int(match.group(1)) if match else None
    except OSError:
        return None


# ---------------------------------------------------------------------------------------------
# The load generator


def loadgen_argv(args, loadgen, loadgen_cpu, port, workload):
    argv = pin(loadgen_cpu) + [str(loadgen), "--port", str(port), "--workload", workload]
    if workload == "pingpong":
        argv += ["--connections", str(args.connections), "--depth", "1", "--size", str(args.size)]
    elif workload == "pipelined":
        argv += ["--connections", str(args.connections), "--depth", str(args.depth), "--size", str(args.size)]
    elif workload == "bulk":
        argv += ["--connections", str(args.bulk_connections), "--depth", "1", "--size", str(args.bulk_size)]
    elif workload == "churn":
        argv += ["--connections", str(args.churn_clients), "--depth", "1", "--size", str(args.size)]
    else:
        argv += ["--connections", str(args.idle_connections), "--depth", "1", "--size", str(args.size)]
    return argv + ["--duration", str(args.duration), "--warmup", str(args.warmup)]


def parse_result(text):
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict) and "workload" in value:
            return value
    return None


def read_json_line(proc, timeout):
    """One JSON line from a running loadgen's stdout, or None at EOF or after `timeout` s."""
    deadline = time.monotonic() + timeout
    buffer = b""
    fd = proc.stdout.fileno()
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(fd, 1)  # byte by byte: the line after this one must stay in the pipe
        if not chunk:
            break
        buffer += chunk
        if chunk == b"\n":
            try:
                return json.loads(buffer)
            except ValueError:
                buffer = b""
    return None


def failure(message):
    return {"errors": 1, "error_samples": [message], "msgs_per_s": 0.0, "failed": True}


def run_cell(args, loadgen, loadgen_cpu, server, workload):
    argv = loadgen_argv(args, loadgen, loadgen_cpu, server.port, workload) + server.loadgen_args
    limit = 60 + args.warmup + args.duration + (args.idle_connections * 0.01 if workload == "idle" else 0)
    if workload != "idle":
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=limit)
        except subprocess.TimeoutExpired:
            return failure(f"loadgen did not finish within {limit:.0f} s")
        parsed = parse_result(result.stdout)
        if parsed is None:
            return failure(f"loadgen exited with {result.returncode}: {result.stderr.strip()[-300:]}")
        return parsed
    # Idle: RSS before, N connections set up and held, RSS after, then release them.
    before = vm_rss_kib(server.proc.pid)
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        ready = read_json_line(proc, limit)
        time.sleep(0.3)  # let the server finish what the last replies started
        after = vm_rss_kib(server.proc.pid)
        out, err = proc.communicate(timeout=60)  # closes stdin: the loadgen lets go
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return failure("loadgen idle run did not finish")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    parsed = parse_result(out.decode(errors="replace"))
    if parsed is None:
        return failure(f"loadgen exited with {proc.returncode}: {err.decode(errors='replace').strip()[-300:]}")
    held = parsed.get("held", 0)
    parsed["rss_before_kib"], parsed["rss_after_kib"] = before, after
    if ready and held and before is not None and after is not None:
        parsed["kib_per_conn"] = (after - before) / held
    return parsed


# ---------------------------------------------------------------------------------------------
# Syscalls per ping-pong message


def syscall_tool(choice):
    if choice == "none":
        return None
    if choice in ("auto", "perf") and shutil.which("perf"):
        check = run_text(["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "--", "true"])
        if check and check.returncode == 0 and re.search(r"^\d+,", check.stderr, re.M):
            return "perf"
    if choice in ("auto", "strace") and shutil.which("strace"):
        return "strace"
    return None


def count_syscalls(args, tool, loadgen, loadgen_cpu, server, work_dir):
    """A separate ping-pong run with the server's syscalls counted: the load generator connects
    first and waits, the counter attaches to the server (and any children), then the traffic."""
    argv = loadgen_argv(args, loadgen, loadgen_cpu, server.port, "pingpong")
    argv = argv[:argv.index("--duration")] + ["--duration", str(args.syscall_seconds), "--warmup", "0", "--sync"]
    argv += server.loadgen_args
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    counter = None
    output = work_dir / f"syscalls-{server.name}.txt"
    try:
        if read_json_line(proc, 60) is None:
            return {"error": "loadgen did not connect"}
        pids = descendants(server.proc.pid)
        if tool == "perf":
            command = ["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "-o", str(output), "-p",
                       ",".join(map(str, pids))]
        else:
            command = ["strace", "-f", "-c", "-o", str(output)] + [a for pid in pids for a in ("-p", str(pid))]
        counter = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # attached by then
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
        result = read_json_line(proc, 60 + args.syscall_seconds)
        counter.send_signal(signal.SIGINT)
        counter.wait(timeout=30)
        proc.stdin.close()
        proc.wait(timeout=30)
    except (subprocess.TimeoutExpired, BrokenPipeError) as e:
        return {"error": f"syscall count failed: {e}"}
    finally:
        for p in (proc, counter):
            if p and p.poll() is None:
                p.kill()
                p.wait()
    if not result or result.get("errors") or not result.get("total_messages"):
        return {"error": "the ping-pong run under the counter had errors: " + str(result and result["error_samples"])}
    text = output.read_text(errors="replace") if output.exists() else ""
    if tool == "perf":
        match = re.search(r"^(\d+),", text, re.M)
    else:
        match = re.search(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)(?:\s+\d+)?\s+total\s*$", text, re.M)
    if not match:
        return {"error": f"could not read the {tool} output"}
    calls = int(match.group(1))
    return {"syscalls": calls, "messages": result["total_messages"], "per_message": calls / result["total_messages"]}


# ---------------------------------------------------------------------------------------------
# The report


def machine_info(servers):
    info = {"cpu": None, "cores": os.cpu_count(), "kernel": os.uname().release}
    try:
        match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        info["cpu"] = match.group(1).strip() if match else None
    except OSError:
        pass
    if not info["cpu"]:
        lscpu = run_text(["lscpu"])
        match = lscpu and re.search(r"^Model name:\s*(.+)$", lscpu.stdout, re.M)
        info["cpu"] = match.group(1).strip() if match else "unknown"
    info["g++"] = first_line(["g++", "--version"])
    try:
        version = int(re.search(r"ASIO_VERSION (\d+)", Path("/usr/include/asio/version.hpp").read_text()).group(1))
        info["asio"] = f"{version // 100000}.{version // 100 % 1000}.{version % 100}"
    except (OSError, AttributeError):
        info["asio"] = None
    try:
        version = int(re.search(r"FMT_VERSION (\d+)", Path("/usr/include/fmt/core.h").read_text()).group(1))
        info["fmt"] = f"{version // 10000}.{version // 100 % 100}.{version % 100}"
    except (OSError, AttributeError):
        info["fmt"] = None
    kinds = {s.kind for s in servers}
    if "go" in kinds:
        info["go"] = first_line(["go", "version"])
    if "rust" in kinds:
        cargo, rustc = cargo_toolchain()
        info["rustc"] = first_line([rustc, "--version"])
        info["tokio"] = next((getattr(s, "version", None) for s in servers if s.kind == "rust"), None)
    python = next((s.argv[0] for s in servers if s.kind == "python"), None)
    if python:
        info["python"] = first_line([python, "--version"])
    return info


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def end_section(lines, notes, end):
    """A scenario script's section: its `lines`, the run's notes if any, then the `end` marker."""
    if notes:
        lines = lines + ["Notes:", ""] + [f"- {note}" for note in notes] + [""]
    return "\n".join(lines + [end])


def write_section(path, begin, end, section, what):
    """Puts `section` (which starts with `begin` and ends with `end`) in place of the one between
    those markers in `path`, or at its end; `what` names it in the log."""
    text = path.read_text() if path.exists() else ""
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n")
    log(f"wrote the {what} section of {path}")


def summarize(servers, results):
    summary = {}
    for server in servers:
        per = {}
        for workload in WORKLOADS:
            runs = results.get(server.name, {}).get(workload)
            if not runs:
                continue
            ok = [r for r in runs if not r.get("failed") and not r.get("errors")]  # a run with errors is no measurement
            per[workload] = {
                "msgs_per_s": median([r.get("msgs_per_s") for r in ok]),
                "msgs_per_s_min": min((r["msgs_per_s"] for r in ok), default=None),
                "msgs_per_s_max": max((r["msgs_per_s"] for r in ok), default=None),
                "mb_per_s": median([r.get("mb_per_s") for r in ok]),
                "p50_us": median([r.get("p50_us") for r in ok]),
                "p99_us": median([r.get("p99_us") for r in ok]),
                "p999_us": median([r.get("p999_us") for r in ok]),
                "max_us": max((r["max_us"] for r in ok if "max_us" in r), default=None),
                "client_cpu": median([r.get("client_cpu") for r in ok]),
                "server_cpu": median([r.get("server_cpu") for r in ok]),
                "user_ns": median([r.get("user_ns") for r in ok]),
                "kernel_ns": median([r.get("kernel_ns") for r in ok]),
                "other_cpu": median([r.get("other_cpu") for r in ok]),
                "kib_per_conn": median([r.get("kib_per_conn") for r in ok]),
                "errors": sum(r.get("errors", 0) for r in runs),
                "rounds": len(runs),
            }
        summary[server.name] = per
    reference = summary.get(REFERENCE, {})
    for name, per in summary.items():
        for workload, cell in per.items():
            base = reference.get(workload, {}).get("msgs_per_s")
            cell["ratio"] = cell["msgs_per_s"] / base if base and cell["msgs_per_s"] is not None else None
    return summary


def fmt_rate(value):
    if value is None:
        return "–"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def spread(cell):
    low, high = cell["msgs_per_s_min"], cell["msgs_per_s_max"]
    return "–" if low is None else f"{fmt_rate(low)}–{fmt_rate(high)}"


def fmt_num(value, digits=0):
    return "–" if value is None else f"{value:,.{digits}f}"


class Footnotes:
    def __init__(self):
        self.texts = []

    def mark(self, text):
        if text not in self.texts:
            self.texts.append(text)
        return f"n/a[^{self.texts.index(text) + 1}]"


def portable(arg):
    """A command-line word as the report shows it: paths inside the repository relative to its
    root, the Python interpreter as `python3`."""
    arg = str(arg)
    if arg == (shutil.which("python3") or sys.executable):
        return "python3"
    path = Path(arg)
    if path.is_absolute() and path.is_relative_to(ROOT):
        return str(path.relative_to(ROOT))
    return arg


def write_report(args, out, servers, results, summary, syscalls, tool, notes, info, started, elapsed, plot_note):
    feet = Footnotes()

    def cell_or_skip(server, workload, render):
        if workload in server.skip:
            return feet.mark(server.skip[workload])
        if server.failed and workload not in summary.get(server.name, {}):
            return "failed"
        cell = summary.get(server.name, {}).get(workload)
        if not cell or cell["msgs_per_s"] is None:
            return (f"failed ({cell['errors']} errors)" if cell["errors"] else "failed") if cell else "–"
        text = render(cell)
        return text + (f" ({cell['errors']} errors)" if cell["errors"] else "")

    lines = ["# Benchmarks", ""]
    where = ("Servers are pinned to core 0 and the load generator (`bench/loadgen.cpp`, single-threaded epoll, "
             "every reply verified) to core 1" if args.pinned else
             "Servers and the load generator (`bench/loadgen.cpp`) share the cores, unpinned")
    lines.append(f"Generated by `bench/run.py` on {started} in {elapsed / 60:.1f} minutes. Every server answers the "
                 f"same line protocol: each line a client sends comes back upper-cased. {where}; {args.rounds} "
                 f"round{'s' if args.rounds > 1 else ''}, each running every server on every workload in turn; "
                 f"the figures are medians over the rounds, with {args.duration:g} s measured after "
                 f"{args.warmup:g} s of warm-up per run.")
    lines += ["", "## Workloads", ""]
    lines += [
        f"- `pingpong`: {args.connections} connections, each sends one {args.size}-byte line and waits for its reply.",
        f"- `pipelined`: {args.connections} connections, each sends {args.depth} {args.size}-byte lines in one write "
        "and waits for all the replies.",
        f"- `bulk`: {args.bulk_connections} connections of {args.bulk_size}-byte lines, one at a time.",
        f"- `churn`: {args.churn_clients} clients at once, each connects, sends one line, reads the reply, closes; "
        "latency includes the connect.",
        f"- `idle`: {args.idle_connections} connections, one line each, then held open; the server's VmRSS before "
        "and while they are held, divided by their number.",
        "",
        "Ratios are to the plain asio coroutine server (`bench/reference/asio_coro_server.cpp`), workload by "
        "workload: above 1 is faster than it.",
        "",
        "## Throughput: messages/s (ratio to the asio reference)",
        "",
        "| server | " + " | ".join(THROUGHPUT) + " |",
        "|---|" + "---:|" * len(THROUGHPUT),
    ]
    for server in servers:
        row = [cell_or_skip(server, w, lambda c: f"{fmt_rate(c['msgs_per_s'])} (×{fmt_num(c['ratio'], 2)})")
               for w in THROUGHPUT]
        lines.append(f"| {server.label} | " + " | ".join(row) + " |")
    lines += ["", "## p99 latency (µs)", "", "| server | " + " | ".join(THROUGHPUT) + " |",
              "|---|" + "---:|" * len(THROUGHPUT)]
    for server in servers:
        row = [cell_or_skip(server, w, lambda c: fmt_num(c["p99_us"])) for w in THROUGHPUT]
        lines.append(f"| {server.label} | " + " | ".join(row) + " |")
    tool_text = {"perf": "`perf stat -e raw_syscalls:sys_enter`", "strace": "`strace -f -c`"}.get(tool)
    lines += ["", "## Syscalls and memory", ""]
    lines.append(f"Syscalls per message: the server's syscalls (all its threads and children) counted by {tool_text} "
                 f"during a separate {args.syscall_seconds:g} s `pingpong` run after its connections were set up, "
                 "divided by the messages answered. Idle memory: VmRSS growth per held connection."
                 if tool_text else "Syscalls per message were not counted: " +
                 ("`--smoke` leaves them out." if args.smoke else "neither `perf` nor `strace` works here."))
    lines += ["", "| server | syscalls per ping-pong message | idle KiB per connection |", "|---|---:|---:|"]
    for server in servers:
        if "pingpong" in server.skip:
            sys_text = feet.mark(server.skip["pingpong"])
        elif server.name in syscalls:
            entry = syscalls[server.name]
            sys_text = fmt_num(entry["per_message"], 2) if "per_message" in entry else "failed"
        else:
            sys_text = "–"
        idle = cell_or_skip(server, "idle", lambda c: fmt_num(c["kib_per_conn"], 1))
        lines.append(f"| {server.label} | {sys_text} | {idle} |")
    lines += ["", "## Server CPU per message", "",
              "The server's CPU time over a whole run (warm-up included) divided by the messages it answered, "
              "in nanoseconds: user space / kernel. The kernel part is mostly the socket calls, much alike from "
              "server to server; the user part is what the server's own code costs. (– where child processes "
              "do the work.)", "",
              "| server | " + " | ".join(THROUGHPUT) + " |", "|---|" + "---:|" * len(THROUGHPUT)]
    for server in servers:
        row = [cell_or_skip(server, w, lambda c: "–" if c.get("user_ns") is None else
                            f"{fmt_num(c['user_ns'])} / {fmt_num(c['kernel_ns'])}") for w in THROUGHPUT]
        lines.append(f"| {server.label} | " + " | ".join(row) + " |")
    if plot_note is None:
        lines += ["", f"![Throughput ratio to the asio reference per workload]({out.with_suffix('.png').name})"]
    lines += targets_section(summary, syscalls)
    lines += ["", "## Every figure", "",
              "Medians over the runs (one a round, more for a cell given extra rounds); msgs/s min–max shows the "
              "spread between runs, max µs is the slowest "
              "reply in any round. MB/s counts request and reply bytes. Client CPU is the load generator's busy "
              "share of its core during the measured seconds, server CPU the server's over the whole run (– where "
              "child processes do the work): a client near 1.00 with a server below it means the load generator "
              "set the pace and the server could do more. Other CPU is what other processes on the machine took of "
              "the two cores meanwhile (in cores): well above 0, and the server had to share its core. What happens "
              "outside the machine (other guests on a virtual machine's host) shows only in the min–max spread.", "",
              "| server | workload | runs | msgs/s | min–max | MB/s | p50 µs | p99 µs | p999 µs | max µs | client CPU "
              "| server CPU | other CPU | errors |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for server in servers:
        for workload in THROUGHPUT:
            cell = summary.get(server.name, {}).get(workload)
            if not cell:
                continue
            lines.append(f"| {server.name} | {workload} | {cell['rounds']} | {fmt_rate(cell['msgs_per_s'])} | "
                         f"{spread(cell)} | "
                         f"{fmt_num(cell['mb_per_s'], 1)} | {fmt_num(cell['p50_us'])} | {fmt_num(cell['p99_us'])} | "
                         f"{fmt_num(cell['p999_us'])} | {fmt_num(cell['max_us'])} | {fmt_num(cell['client_cpu'], 2)} | "
                         f"{fmt_num(cell['server_cpu'], 2)} | {fmt_num(cell['other_cpu'], 2)} | {cell['errors']} |")
    lines += ["", "## Machine", ""]
    lines.append(f"- CPU: {info['cpu']}, {info['cores']} cores; Linux {info['kernel']}")
    for key in ["g++", "asio", "fmt", "go", "rustc", "tokio", "python"]:
        if info.get(key):
            lines.append(f"- {key}: {info[key]}")
    lines += ["", "## Reproduce", "", "On Debian 12, as root, from a clone of the repository:", "", "```sh",
              f"apt-get update && apt-get install -y {APT_PACKAGES}",
              f"cmake -S . -B {portable(args.build)} -DCMAKE_BUILD_TYPE=Release && "
              f"cmake --build {portable(args.build)} -j2 --target bench",
              "python3 bench/run.py " + " ".join(shlex.quote(portable(a)) for a in args.argv), "```", "",
              "The servers as they were started (each under `taskset -c 0`, on a free port):", ""]
    for server in servers:
        env = " ".join(f"{k}={v}" for k, v in server.env.items())
        command = " ".join(shlex.quote(portable(a)) for a in server.argv)
        lines.append(f"- `{server.name}`: `{(env + ' ') if env else ''}{command} --port P`")
    lines += ["", "## Notes", ""]
    all_notes = list(notes)
    others = [r["other_cpu"] for per in results.values() for runs in per.values() for r in runs
              if r.get("other_cpu") is not None]
    busy = [o for o in others if o > DISTURBED]
    extra_cells = [f"`{name}` {workload}" for name, per in results.items() for workload, runs in per.items()
                   if any(str(r.get("round", "")).startswith("extra") for r in runs)]
    if extra_cells:
        all_notes.append(f"Rounds differed by more than {UNSTEADY}x in: " + ", ".join(extra_cells) + ". Those cells "
                         f"got up to {args.extra_rounds} extra rounds (`--extra-rounds`), and their median is over all "
                         "their runs.")
    again = sum(r.get("attempts", 1) - 1 for per in results.values() for runs in per.values() for r in runs)
    if again:
        all_notes.append(f"{again} runs were done again because other work on the machine took more than "
                         f"{DISTURBED} of a core meanwhile (up to {args.retries} times each; `--retries`).")
    if busy:
        all_notes.append(f"Other work still shared the machine in {len(busy)} of {len(others)} kept runs (more than "
                         f"{DISTURBED} of a core; at most {max(busy):.2f} cores): those figures are lower than a quiet "
                         "machine gives. The medians over interleaved rounds damp it; the `other CPU` column shows "
                         "where it hit.")
    bound = [f"`{name}` {workload}" for name, per in summary.items() for workload, cell in per.items()
             if (cell.get("client_cpu") or 0) >= 0.95]
    if bound:
        all_notes.append("The load generator kept its core busy (client CPU 0.95 or more) in: " + ", ".join(bound) +
                         ". There it may have set the pace: those servers could go faster, and their ratios to the "
                         "reference are squeezed toward 1.")
    if any(s.kind in ("go", "rust") for s in servers):
        all_notes.append("The Go and Tokio peers keep their libraries' default buffer sizes (`bufio` 4 KiB, Tokio's "
                         "`BufReader`/`BufWriter` 8 KiB), as most servers written with them do, so a 16 KiB `bulk` "
                         "line takes them several reads and writes; the C++ servers read 64 KiB at a time.")
    if any(s.name == "python" for s in servers):
        all_notes.append("Python's server keeps Python's defaults: Nagle's algorithm stays on (`disable_nagle_"
                         "algorithm = False`) and `wfile` is unbuffered, so in `pipelined` the second of each 16 "
                         "small writes waits for the client's delayed ACK, some 40 ms a batch, while the server sits "
                         "idle; and its listen backlog is 5, so a burst of connects beyond it waits for the kernel "
                         "to retry the handshake (1 s and more), which shows in its `churn` max µs.")
    for server in servers:
        for death in server.deaths:
            all_notes.append(f"`{server.name}` {death}; it was started again and the run went on (the run "
                             "during which it exited counts as failed).")
        if server.failed:
            all_notes.append(f"`{server.name}` {server.failed}")
    if plot_note:
        all_notes.append(plot_note)
    all_notes.append("The raw results, every round, are in "
                     f"[{out.with_suffix('.json').name}]({out.with_suffix('.json').name}).")
    lines += [f"- {n}" for n in all_notes]
    if feet.texts:
        lines.append("")
        lines += [f"[^{i + 1}]: {text}" for i, text in enumerate(feet.texts)]
    out.write_text("\n".join(lines) + "\n")


def targets_section(summary, syscalls):
    """The project's performance targets against this run's medians: met, or missed and by how much."""
    def rate(name, workload):
        return summary.get(name, {}).get(workload, {}).get("msgs_per_s")

    rows = []

    def check(what, got, want, higher_is_better=True, unit="x"):
        if got is None or want is None:
            rows.append(f"| {what} | – | {want:g}{unit} | not measured |")
            return
        met = got >= want if higher_is_better else got <= want
        rows.append(f"| {what} | {got:.2f}{unit} | {'>=' if higher_is_better else '<='} {want:g}{unit} | "
                    f"{'met' if met else f'missed by {abs(got - want) / want * 100:.0f}%'} |")

    def ratio(a, b):
        return a / b if a and b else None

    for workload in ["pingpong", "pipelined", "bulk", "churn"]:
        peers = [r for r in (rate("go", workload), rate("tokio", workload)) if r]
        check(f"async / best of Go and Tokio, {workload}", ratio(rate("socketserver-async", workload), max(peers, default=None)), 1.0)
    for workload in ["pingpong", "pipelined"]:
        check(f"async / asio reference, {workload}", ratio(rate("socketserver-async", workload), rate(REFERENCE, workload)), 1.10)
    check("async syscalls per ping-pong message", syscalls.get("socketserver-async", {}).get("per_message"), 2.1, False, "")
    for name, limit in [("socketserver-async", 1.0), ("socketserver-threading", 16.0)]:
        idle = summary.get(name, {}).get("idle", {}).get("kib_per_conn")
        check(f"idle KiB per connection, {name.split('-')[1]}", idle, limit, False, " KiB")
    for name in ["socketserver-threading", "socketserver-pool"]:
        for workload in ["pingpong", "pipelined", "bulk", "churn"]:
            check(f"{name.split('-')[1]} / blocking reference, {workload}", ratio(rate(name, workload), rate("blocking", workload)), 1.0)
    ours = [name for name in summary if name.startswith("socketserver-") and name != "socketserver-plain"]
    for workload in ["pipelined", "bulk"]:
        worst = min((ratio(rate(name, workload), rate("python", workload)) or float("inf") for name in ours), default=None)
        check(f"slowest C++ variant / Python, {workload}", None if worst == float("inf") else worst, 30.0)
    return ["", "## Targets", "",
            "The project's targets for this benchmark, checked against this run's medians. Why a target is "
            "missed, and what each server's time per message goes to: [performance.md](performance.md).", "",
            "| target | measured | wanted | |", "|---|---:|---:|---|", *rows]


def plot(json_path, png_path, summary, servers):
    """The ratio chart with /usr/bin/python3's matplotlib, else gnuplot; returns a note when
    neither could draw it."""
    plotter = HERE / "plot.py"
    for python in ["/usr/bin/python3", shutil.which("python3")]:
        if python and Path(python).exists():
            check = run_text([python, "-c", "import matplotlib"])
            if check and check.returncode == 0:
                result = run_text([python, str(plotter), str(json_path), str(png_path)])
                if result and result.returncode == 0:
                    return None
    gnuplot = shutil.which("gnuplot")
    if gnuplot:
        rows = [s for s in servers if any(summary.get(s.name, {}).get(w, {}).get("ratio") for w in THROUGHPUT)]
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "ratios.dat"
            data.write_text("server " + " ".join(THROUGHPUT) + "\n" + "".join(
                f"\"{s.name}\" " + " ".join(fmt_num(summary[s.name].get(w, {}).get("ratio"), 3).replace("–", "?")
                                            for w in THROUGHPUT) + "\n" for s in rows))
            script = Path(tmp) / "plot.gp"
            script.write_text(
                f"set terminal pngcairo size 1100,600\nset output '{png_path}'\nset style data histogram\n"
                "set style histogram clustered gap 1\nset style fill solid border -1\nset logscale y\n"
                "set ylabel 'messages/s, ratio to asio reference (log)'\nset key outside right\n"
                "set datafile missing '?'\n"
                "set xtics rotate by -30\nset title 'Throughput ratio to the asio coroutine reference, per workload'\n"
                f"plot for [i=2:{len(THROUGHPUT) + 1}] '{data}' using i:xtic(1) title columnheader(i)\n")
            result = run_text([gnuplot, str(script)])
            if result and result.returncode == 0:
                return None
    return "No plot: neither matplotlib (Debian `python3-matplotlib`) nor gnuplot could draw it."


# ---------------------------------------------------------------------------------------------


def main():
    args = parse_args()
    args.argv = sys.argv[1:]
    if args.list:
        print("asio-coro blocking socketserver-plain socketserver-threading socketserver-forking socketserver-pool "
              "socketserver-async go tokio python")
        return 0
    started_wall = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    started = time.monotonic()
    build = Path(args.build).resolve()
    loadgen = build / "bench" / "loadgen"
    if not loadgen.exists():
        print(f"run.py: {loadgen} is not built: cmake --build {args.build} --target bench", file=sys.stderr)
        return 2
    if args.out:
        out = Path(args.out).resolve()
    elif args.smoke:
        out = Path(tempfile.mkdtemp(prefix="bench-smoke-")) / "benchmarks.md"
    else:
        out = ROOT / "docs" / "benchmarks.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    work_dir = out.parent / (out.stem + "-logs") if args.smoke else build / "bench" / "run"
    work_dir.mkdir(parents=True, exist_ok=True)  # server logs and syscall counts

    # Servers and loadgen inherit this: thousands of idle connections need the descriptors.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    cpus = sorted(os.sched_getaffinity(0))
    args.pinned = len(cpus) >= 2 and shutil.which("taskset") is not None
    server_cpu, loadgen_cpu = (cpus[0], cpus[1]) if args.pinned else (None, None)
    notes = []
    if not args.pinned:
        notes.append("Not pinned: fewer than 2 cores (or no `taskset`), so servers and load generator share.")
    if args.idle_connections + 100 > hard:
        notes.append(f"RLIMIT_NOFILE's hard limit is {hard}: `idle` with {args.idle_connections} connections "
                     "may run out of descriptors.")

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    servers = []
    results, syscalls = {}, {}
    tool = None
    try:
        servers = servers_to_run(args, build, notes)
        for note in notes:
            log(f"note: {note}")
        log(f"starting {len(servers)} servers: " + ", ".join(s.name for s in servers))
        start_servers(servers, server_cpu, work_dir)
        budget_spent = []  # disturbed runs kept because --retry-after had passed

        def measure(server, workload, round_label):
            """One run of `workload` against `server`, done again while other work disturbs it."""
            for attempt in range(args.retries + 1):
                if workload == "idle" and not restart(server, server_cpu, work_dir):
                    # Memory is measured on a fresh process: what earlier runs left in its
                    # allocator would otherwise hide (or inflate) the growth per connection.
                    break
                wait_quiet(server)
                before, server_before = foreign_ticks(servers), server_ticks(server)
                result = run_cell(args, loadgen, loadgen_cpu, server, workload)
                after, server_after = foreign_ticks(servers), server_ticks(server)
                seconds = after[1] - before[1]
                result["other_cpu"] = round((after[0] - before[0]) / CLOCK_TICKS / seconds, 2)
                if workload != "idle" and not server.forks:
                    # The server's share of its core over the whole run: set-up, warm-up
                    # and drain included; and its CPU time per message answered in that run,
                    # in user space and in the kernel.
                    user, kernel = (server_after[i] - server_before[i] for i in (0, 1))
                    result["server_cpu"] = round((user + kernel) / CLOCK_TICKS / seconds, 2)
                    if result.get("total_messages"):
                        per_message_ns = 1e9 / CLOCK_TICKS / result["total_messages"]
                        result["user_ns"] = round(user * per_message_ns)
                        result["kernel_ns"] = round(kernel * per_message_ns)
                result["attempts"] = attempt + 1
                disturbed = (result.get("other_cpu") or 0) > DISTURBED
                if not disturbed or result.get("errors") or attempt == args.retries:
                    break
                if time.monotonic() - started > args.retry_after:
                    budget_spent.append(f"{server.name} {workload}")
                    break
                log(f"  {server.name:24} {workload:10} disturbed: other work took "
                    f"{result['other_cpu']:.2f} cores; running it again")
                time.sleep(1)
            if server.failed:
                log(f"  {server.name}: {server.failed}")
                return
            result["round"] = round_label
            results.setdefault(server.name, {}).setdefault(workload, []).append(result)
            if workload == "idle":
                extra = (f", {result.get('held', 0)} held, {result['kib_per_conn']:.1f} KiB/conn"
                         if "kib_per_conn" in result else "")
                result_rate = "idle"
            else:
                extra, result_rate = "", f"{result.get('msgs_per_s', 0):>12,.0f} msgs/s"
            errors = (f", {result['errors']} errors {result.get('error_samples')}"
                      if result.get("errors") else "")
            log(f"  {server.name:24} {workload:10} {result_rate:>19}, p99 {result.get('p99_us', 0):>7} us"
                f"{extra}{errors}")
            if server.proc.poll() is not None:
                # Reported, counted as errors, and started again for the rest of the run, so
                # one crash (or a stray kill) does not blank the server's remaining cells.
                death = (f"exited with status {server.proc.returncode} during `{workload}` in round "
                         f"{round_label}: {tail(server.log, 2)}")
                result.setdefault("error_samples", []).append("server " + death)
                result["errors"] = result.get("errors", 0) + 1
                server.deaths.append(death)
                log(f"  {server.name}: {death}")
                if len(server.deaths) > 2 or not restart(server, server_cpu, work_dir):
                    server.failed = server.failed or "stopped being measured after it exited three times"
                    log(f"  {server.name}: {server.failed}")

        for round_index in range(args.rounds):
            log(f"round {round_index + 1} of {args.rounds}")
            for server in servers:
                for workload in WORKLOADS:
                    if not server.failed and workload not in server.skip:
                        measure(server, workload, round_index + 1)
        # Cells whose rounds disagree by more than UNSTEADY (noise that no process on this machine
        # accounts for: a virtual machine's host, say) get extra rounds, and the median more votes.
        for extra_index in range(args.extra_rounds):
            if time.monotonic() - started > args.retry_after:
                notes.append(f"No extra rounds for unsteady cells: the run was past `--retry-after` "
                             f"({args.retry_after:g} s).")
                break
            unsteady = [(server, workload) for server in servers for workload in THROUGHPUT
                        if not server.failed and workload not in server.skip and
                        spread_ratio(results.get(server.name, {}).get(workload, [])) > UNSTEADY]
            if not unsteady:
                break
            log(f"extra round {extra_index + 1}: " + ", ".join(f"{s.name} {w}" for s, w in unsteady))
            for server, workload in unsteady:
                measure(server, workload, f"extra {extra_index + 1}")
        if budget_spent:
            notes.append(f"{len(budget_spent)} disturbed runs were kept as they were, the run being past "
                         f"`--retry-after` ({args.retry_after:g} s): " +
                         ", ".join(f"{cell} ({count}x)" if count > 1 else cell
                                   for cell, count in collections.Counter(budget_spent).items()) + ".")
        tool = syscall_tool(args.syscalls)
        if tool:
            log(f"counting syscalls per ping-pong message with {tool}")
            for server in servers:
                if server.failed or "pingpong" in server.skip:
                    continue
                wait_quiet(server)
                syscalls[server.name] = count_syscalls(args, tool, loadgen, loadgen_cpu, server, work_dir)
                entry = syscalls[server.name]
                log(f"  {server.name:24} " + (f"{entry['per_message']:.2f} syscalls/msg" if "per_message" in entry
                                               else entry["error"]))
        elif args.syscalls != "none":
            notes.append("Syscalls not counted: neither `perf` (Debian `linux-perf`) nor `strace` works here.")
    except KeyboardInterrupt:
        log("interrupted: stopping the servers")
        stop_servers(servers)
        return 130
    finally:
        stop_servers(servers)

    summary = summarize(servers, results)
    elapsed = time.monotonic() - started
    json_path, png_path = out.with_suffix(".json"), out.with_suffix(".png")
    raw = {
        "generated": started_wall,
        "seconds": round(elapsed, 1),
        "options": {k: v for k, v in vars(args).items() if k not in ("argv",)},
        "machine": machine_info(servers),
        "syscall_tool": tool,
        "servers": [{"name": s.name, "label": s.label, "command": [portable(a) for a in s.argv], "env": s.env,
                     "skipped": s.skip, "failed": s.failed} for s in servers],
        "results": results,
        "syscalls": syscalls,
        "summary": summary,
        "reference": REFERENCE,
        "workloads": THROUGHPUT,
        "notes": notes,
    }
    json_path.write_text(json.dumps(raw, indent=1) + "\n")
    plot_note = "No plot in `--smoke` mode." if args.smoke else plot(json_path, png_path, summary, servers)
    write_report(args, out, servers, results, summary, syscalls, tool, notes, raw["machine"], started_wall, elapsed,
                 plot_note)
    log(f"wrote {out} and {json_path.name}" + ("" if plot_note else f" and {png_path.name}") +
        f" in {elapsed:.0f} s")

    problems = [f"{s.name}: {s.failed}" for s in servers if s.failed]
    for name, per in results.items():
        for workload, runs in per.items():
            bad = sum(r.get("errors", 0) for r in runs)
            if bad:
                samples = next((r.get("error_samples") for r in runs if r.get("errors")), [])
                problems.append(f"{name} {workload}: {bad} errors, e.g. {samples[:2]}")
    for line in problems:
        log(f"ERROR {line}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
