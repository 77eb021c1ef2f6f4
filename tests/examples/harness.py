"""What the checks of the examples against real peers share: a server process and its log,
bounded waits, and the cleanup."""
import re
import select
import signal
import subprocess
import sys
import threading
import time

TIMEOUT = 10  # the longest any one wait may take
RESEND_AFTER = 2  # signal_once(): seconds of silence after a signal before it is sent again
PROCESSES = []  # every process started, for the cleanup
SERVERS = []  # every Server started, for their logs on failure


def fail(message):
    sys.exit(f"FAIL: {message}")


def expect(what, got, want):
    if isinstance(want, re.Pattern):
        ok = want.fullmatch(got) is not None
    else:
        ok = got == want
    if not ok:
        fail(f"{what}: got {got!r}, want {want!r}")
    print(f"ok: {what}")


class Server:
    """A server process: the port it printed, and its stderr lines, collected as they come."""

    def __init__(self, name, argv):
        self.name = name
        self.lines = []
        self.eof = False
        self.changed = threading.Condition()
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        PROCESSES.append(self.proc)
        SERVERS.append(self)
        self.reader = threading.Thread(target=self._collect, daemon=True)
        self.reader.start()
        ready, _, _ = select.select([self.proc.stdout], [], [], TIMEOUT)
        line = self.proc.stdout.readline().decode(errors="replace").strip() if ready else ""
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)( \(TLS\))?$", line)
        if not match:
            fail(f"{name}: first line {line!r}, want '... listening on 127.0.0.1:PORT'; stderr: {self.log()}")
        self.port = int(match.group(1))

    def _collect(self):
        for raw in self.proc.stderr:
            with self.changed:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self.changed.notify_all()
        with self.changed:
            self.eof = True
            self.changed.notify_all()

    def log(self):
        with self.changed:
            return "\n".join(self.lines)

    def wait_log(self, what, pattern):
        """Waits, at most TIMEOUT, for a stderr line that matches `pattern` (re.search)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + TIMEOUT
        with self.changed:
            while True:
                found = next((line for line in self.lines if regex.search(line)), None)
                if found is not None:
                    print(f"ok: {what}")
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    fail(f"{what}: no {self.name} stderr line matches {pattern!r}; it has:\n" + "\n".join(self.lines))
                self.changed.wait(left)

    def wait_log_count(self, what, pattern, count):
        """Waits, at most TIMEOUT, until `count` stderr lines match `pattern` (re.search)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + TIMEOUT
        with self.changed:
            while True:
                found = sum(1 for line in self.lines if regex.search(line))
                if found >= count:
                    return
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    fail(f"{what}: {found} of {count} {self.name} stderr lines match {pattern!r}")
                self.changed.wait(left)

    def stop(self):
        """SIGTERM; expects exit status 0 within TIMEOUT."""
        signal_once(self.proc, signal.SIGTERM)
        try:
            status = self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            fail(f"{self.name} did not exit within {TIMEOUT} s of SIGTERM")
        self.reader.join(TIMEOUT)
        if status != 0:
            fail(f"{self.name} exited with {status} on SIGTERM; its stderr ends:\n" + self.log()[-12000:])
        expect(f"{self.name} exits 0 on SIGTERM", status, 0)


def signal_once(proc, sig):
    """Sends `sig` to an example server and returns the "shutting down" line it prints on stdout
    (empty if it exited without one).

    ThreadSanitizer's runtime can lose a signal that comes as the process starts serving: its
    handler never runs, and the server serves on without a word (its loop wakes every
    poll_interval and finds no signal; seen in about 1 run in 10 of an immediate SIGINT, never
    without the sanitizer). Only then, after RESEND_AFTER of silence from a live process, is the
    signal sent once more: a server that had seen the first prints its line within milliseconds.
    RESEND_AFTER stays under limits.silent_grace (5 s), so that a client connected before the
    signal to check that it is still served is not yet closed as silent by the drain.
    """
    proc.send_signal(sig)
    for attempt in range(2):
        ready, _, _ = select.select([proc.stdout], [], [], RESEND_AFTER if attempt == 0 else TIMEOUT)
        if ready:
            line = proc.stdout.readline()
            return line.decode(errors="replace") if isinstance(line, bytes) else line
        if proc.poll() is not None or attempt == 1:
            return ""
        proc.send_signal(sig)
    return ""


def run(main):
    """Runs a check's main(), then ends every process it started, however it ended."""
    try:
        main()
    finally:
        for proc in PROCESSES:
            kill(proc)


def kill(proc, grace=0):
    """Ends `proc`: SIGTERM first when given a `grace` (a forking server then reaps its children), SIGKILL."""
    if proc.poll() is None and grace:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    if proc.poll() is None:
        proc.kill()
    try:
        proc.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pass
