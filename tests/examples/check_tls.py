#!/usr/bin/env python3
"""TLS against real peers: Python's ssl module, openssl s_client and curl.

usage: check_tls.py UPPERCASE_ECHO GET_TIME [--concurrency MODE]

Makes a CA, a server certificate and client certificates with the openssl CLI, starts
UPPERCASE_ECHO with --tls-cert/--tls-key (--log-level info) and checks: echo over TLS 1.3 and
TLS 1.2, s_client's chain check and resumption (-sess_out/-sess_in), TLS 1.1 and 1.0 refused,
plaintext refused and logged, a connection closed before its ClientHello logged at info, a
dribbled ClientHello cut at --handshake-timeout, the server's close_notify answering the
client's, truncation inside a request (errc::truncated_frame) and between requests (a clean
end), the client's own checks (a wrong host name, an expired server certificate), a 100 MiB
transfer checked byte for byte, mutual TLS (required: no certificate, another CA's and an
expired one refused, a good one served), a reload on SIGHUP (new connections get the new
certificate, open ones keep going, a broken file keeps the old one), and 1,000 concurrent
handshakes held through 100 reloads. GET_TIME is checked once with curl --cacert. One
--concurrency mode a run. Every wait is bounded; every process started is stopped, also on
failure.
"""
import asyncio
import hashlib
import os
import resource
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

from harness import PROCESSES, SERVERS, TIMEOUT, Server, expect, fail, kill

CONCURRENCY = "threading"  # from --concurrency
HANDSHAKE_TIMEOUT = 1.5  # the servers' --handshake-timeout here


def openssl(*args):
    done = subprocess.run(["openssl", *args], capture_output=True, timeout=TIMEOUT)
    if done.returncode != 0:
        fail(f"openssl {' '.join(args)}: {done.stderr.decode(errors='replace')}")


def make_ca(directory, name):
    key, cert = os.path.join(directory, f"{name}.key"), os.path.join(directory, f"{name}.crt")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
            "-subj", f"/CN={name}", "-keyout", key, "-out", cert)
    return cert, key


def make_signed(directory, name, ca, cn, san):
    """A certificate for `cn` with subjectAltName `san`, signed by `ca`: (cert, key)."""
    key, csr, cert = (os.path.join(directory, f"{name}.{ext}") for ext in ("key", "csr", "crt"))
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", f"/CN={cn}",
            "-keyout", key, "-out", csr)
    extensions = os.path.join(directory, f"{name}.ext")
    with open(extensions, "w") as out:
        out.write(f"subjectAltName={san}\n")
    openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial", "-days", "2",
            "-extfile", extensions, "-out", cert)
    return cert, key


def make_expired(directory, name, ca, cn):
    """A certificate signed by `ca` that expired in 2020 (openssl ca sets its dates)."""
    key, csr, cert = (os.path.join(directory, f"{name}.{ext}") for ext in ("key", "csr", "crt"))
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", f"/CN={cn}",
            "-keyout", key, "-out", csr)
    database = os.path.join(directory, f"{name}-ca")
    os.makedirs(database, exist_ok=True)
    open(os.path.join(database, "index.txt"), "w").close()
    with open(os.path.join(database, "serial"), "w") as out:
        out.write("01\n")
    config = os.path.join(database, "ca.cnf")
    with open(config, "w") as out:
        out.write(f"[ca]\ndefault_ca = d\n[d]\ndatabase = {database}/index.txt\nnew_certs_dir = {database}\n"
                  f"serial = {database}/serial\ndefault_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n")
    openssl("ca", "-batch", "-config", config, "-cert", ca[0], "-keyfile", ca[1], "-in", csr, "-out", cert,
            "-startdate", "20200101000000Z", "-enddate", "20200102000000Z", "-notext")
    return cert, key


def start_echo(binary, cert, *options):
    return Server("uppercase_echo", [binary, "--host", "127.0.0.1", "--port", "0", "--concurrency", CONCURRENCY,
                                     "--threads", "4", "--log-level", "info", "--tls-cert", cert[0], "--tls-key",
                                     cert[1], "--handshake-timeout", str(HANDSHAKE_TIMEOUT), *options])


def client_context(ca, version=None, client_cert=None):
    context = ssl.create_default_context(cafile=ca)
    if version is not None:
        context.minimum_version = context.maximum_version = version
    if client_cert is not None:
        context.load_cert_chain(*client_cert)
    return context


def connect(port, context, server_name="localhost"):
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each record leaves at once
    try:
        return context.wrap_socket(sock, server_hostname=server_name, suppress_ragged_eofs=False)
    except BaseException:
        sock.close()
        raise


def read_exactly(sock, size):
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(min(1 << 20, size - len(data)))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def check_echo(echo, ca):
    for version, name in ((ssl.TLSVersion.TLSv1_3, "TLSv1.3"), (ssl.TLSVersion.TLSv1_2, "TLSv1.2")):
        with connect(echo.port, client_context(ca, version)) as tls:
            expect(f"negotiated {name}", tls.version(), name)
            tls.sendall(b"hello tls\nsecond\n")
            expect(f"echo over {name}", read_exactly(tls, 17), b"HELLO TLS\nSECOND\n")
            tls.unwrap()  # our close_notify; returns once the server's has come
            print(f"ok: {name}: the server answers close_notify with its own")


def check_s_client_resumption(echo, ca, directory):
    """-sess_out then -sess_in: TLS 1.2 with a ticket, and from the session cache without one (not
    under forking: each child has its own cache, which goes with it)."""
    ways = [("a ticket", [])]
    if CONCURRENCY != "forking":
        ways.append(("the session cache", ["-no_ticket"]))
    for what, extra in ways:
        session = os.path.join(directory, "session.pem")
        outputs = []
        for flag in ("-sess_out", "-sess_in"):
            done = subprocess.run(["openssl", "s_client", "-tls1_2", "-CAfile", ca, "-servername", "localhost",
                                   *extra, flag, session, "-connect", f"127.0.0.1:{echo.port}"],
                                  input=b"", capture_output=True, timeout=TIMEOUT)
            outputs.append(done.stdout.decode(errors="replace"))
        expect(f"s_client: a new TLS 1.2 session, then resumed from {what}",
               ("New, TLSv1.2" in outputs[0], "Reused, TLSv1.2" in outputs[1]), (True, True))


def check_old_versions_refused(echo):
    for flag in ("-tls1_1", "-tls1"):
        done = subprocess.run(["openssl", "s_client", flag, "-connect", f"127.0.0.1:{echo.port}"],
                              input=b"", capture_output=True, timeout=TIMEOUT)
        expect(f"s_client {flag} fails", done.returncode != 0, True)
    echo.wait_log("TLS 1.1 refused with a security line",
                  r"\[security\] warning: TLS handshake from 127\.0\.0\.1:\d+ failed: .*(unsupported protocol|"
                  r"version too low)")


def check_s_client(echo, ca):
    """s_client verifies the chain, then reads our answer; it is ended once the line is back."""
    client = subprocess.Popen(["openssl", "s_client", "-tls1_3", "-quiet", "-verify_return_error", "-CAfile", ca,
                               "-servername", "localhost", "-connect", f"127.0.0.1:{echo.port}"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    PROCESSES.append(client)
    client.stdin.write(b"from s_client\n")
    client.stdin.flush()
    ready, _, _ = select.select([client.stdout], [], [], TIMEOUT)
    line = client.stdout.readline() if ready else b""
    kill(client)
    expect("s_client -tls1_3 verifies the chain and gets the echo", line, b"FROM S_CLIENT\n")


def check_plaintext_refused(echo):
    with socket.create_connection(("127.0.0.1", echo.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        try:
            while chunk := sock.recv(4096):
                data += chunk
        except ConnectionResetError:
            pass
        expect("plaintext gets no echo", b"GET" in data.upper(), False)
    echo.wait_log("plaintext refused with a security line",
                  r"\[security\] warning: TLS handshake from 127\.0\.0\.1:\d+ failed: .*http request")


def check_closed_before_hello(echo):
    sock = socket.create_connection(("127.0.0.1", echo.port), timeout=TIMEOUT)
    port = sock.getsockname()[1]
    sock.close()
    echo.wait_log("a connection closed before its ClientHello is an info line",
                  rf"\[security\] info: TLS from 127\.0\.0\.1:{port}: closed before its ClientHello")


def check_handshake_timeout(echo, ca):
    """A ClientHello dribbled a byte at a time is cut at the handshake timeout, not served."""
    hello = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_context(ca).wrap_bio(hello[0], hello[1], server_hostname="localhost")
    try:
        client.do_handshake()
    except ssl.SSLWantReadError:
        pass
    record = hello[1].read()
    with socket.create_connection(("127.0.0.1", echo.port), timeout=TIMEOUT) as sock:
        started = time.monotonic()
        closed = None
        for i in range(len(record)):  # the client's pace, bounded by the record's length
            try:
                sock.sendall(record[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                closed = time.monotonic() - started
                break
            sock.settimeout(0.25)
            try:
                if sock.recv(4096) == b"":
                    closed = time.monotonic() - started
                    break
            except socket.timeout:
                pass
            except ConnectionResetError:
                closed = time.monotonic() - started
                break
        expect("a dribbled ClientHello is cut", closed is not None, True)
        expect(f"cut after about {HANDSHAKE_TIMEOUT} s", HANDSHAKE_TIMEOUT * 0.8 < closed < HANDSHAKE_TIMEOUT + 3, True)
    echo.wait_log("the handshake timeout is logged", r"no TLS handshake within its timeout")


def check_truncation(echo, ca):
    with connect(echo.port, client_context(ca)) as tls:
        tls.sendall(b"whole\n")
        expect("a line before the cut", read_exactly(tls, 6), b"WHOLE\n")
        tls.sendall(b"partial")
        port = tls.getsockname()[1]
        tls.shutdown(socket.SHUT_RDWR)  # TCP's FIN, no close_notify
    echo.wait_log("a cut inside a line is truncated_frame",
                  rf"127\.0\.0\.1:{port}: read: the peer closed inside a request, without close_notify")
    with connect(echo.port, client_context(ca)) as tls:
        tls.sendall(b"whole\n")
        expect("a line before the close", read_exactly(tls, 6), b"WHOLE\n")
        port = tls.getsockname()[1]
        tls.shutdown(socket.SHUT_RDWR)
    echo.wait_log("a close between requests is a clean end, with an info line",
                  rf"\[security\] info: TLS from 127\.0\.0\.1:{port}: closed without close_notify, between requests")


def check_bulk(echo, ca):
    """100 MiB through the TLS echo, checked byte for byte (digits: upper-casing leaves them)."""
    line = (b"0123456789" * 6553)[:65535] + b"\n"  # under the default max_line
    count = (100 << 20) // len(line) + 1
    with connect(echo.port, client_context(ca)) as tls:
        sent, got = hashlib.sha256(), hashlib.sha256()
        received = 0
        tls.setblocking(True)
        for _ in range(count):
            tls.sendall(line)
            sent.update(line)
            chunk = read_exactly(tls, len(line))
            got.update(chunk)
            received += len(chunk)
        expect(f"{received >> 20} MiB echoed byte for byte", (received, got.hexdigest()),
               (count * len(line), sent.hexdigest()))


def check_hostname(echo, ca):
    """The client's own checks see the server's certificate as it is: a wrong name is refused."""
    try:
        with connect(echo.port, client_context(ca), server_name="not-this-host.test"):
            fail("a certificate for localhost passed as not-this-host.test")
    except ssl.SSLCertVerificationError as e:
        expect("a wrong host name fails the client's check", "Hostname mismatch" in str(e) or "match" in str(e), True)


def check_expired_server(binary, directory, ca):
    expired = make_expired(directory, "expired-server", ca, "localhost")
    echo = start_echo(binary, expired)
    try:
        with connect(echo.port, client_context(ca[0])):
            fail("an expired server certificate passed the client's check")
    except ssl.SSLCertVerificationError as e:
        expect("an expired server certificate fails the client's check", "expired" in str(e), True)
    echo.stop()


def check_mutual(binary, server_cert, ca, good_client, wrong_client, expired_client):
    echo = start_echo(binary, server_cert, "--tls-ca", ca[0], "--tls-client-auth", "required")
    with connect(echo.port, client_context(ca[0], client_cert=good_client)) as tls:
        tls.sendall(b"mutual\n")
        expect("a client certificate from the CA is served", read_exactly(tls, 7), b"MUTUAL\n")
    for what, cert in (("no client certificate", None), ("a certificate from another CA", wrong_client),
                       ("an expired client certificate", expired_client)):
        try:
            with connect(echo.port, client_context(ca[0], client_cert=cert)) as tls:
                tls.sendall(b"x\n")
                data = tls.recv(10)  # TLS 1.3: the server's verdict comes after the client's Finished
                fail(f"{what}: served ({data!r})")
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            print(f"ok: {what} refused under client auth required")
    echo.wait_log("a missing client certificate is logged", r"failed: .*peer did not return a certificate")
    echo.wait_log("a wrong CA is logged", r"failed: .*certificate verify failed")
    echo.wait_log("an expired client certificate is counted as a bad certificate",
                  r"failed: .*(certificate verify failed|certificate expired)")
    echo.stop()


def peer_common_name(port, ca):
    with connect(port, client_context(ca)) as tls:
        subject = dict(item[0] for item in tls.getpeercert()["subject"])
        return subject["commonName"]


def check_reload(binary, directory, ca):
    live_cert = os.path.join(directory, "live.crt"), os.path.join(directory, "live.key")
    first = make_signed(directory, "first", ca, "localhost", "DNS:localhost")
    second = make_signed(directory, "second", ca, "localhost-2", "DNS:localhost")
    for source, target in zip(first, live_cert):
        shutil.copyfile(source, target)
    echo = start_echo(binary, live_cert)
    expect("the first certificate", peer_common_name(echo.port, ca[0]), "localhost")
    # A plain server runs its signals between connections: it reloads with none open.
    kept = connect(echo.port, client_context(ca[0])) if CONCURRENCY != "plain" else None
    try:
        if kept is not None:
            kept.sendall(b"before\n")
            expect("an open connection before the reload", read_exactly(kept, 7), b"BEFORE\n")
        for source, target in zip(second, live_cert):
            shutil.copyfile(source, target)
        echo.proc.send_signal(signal.SIGHUP)
        echo.wait_log("SIGHUP reloads", r"SIGHUP: TLS certificate reloaded")
        expect("new connections get the new certificate", peer_common_name(echo.port, ca[0]), "localhost-2")
        if kept is not None:
            kept.sendall(b"after\n")
            expect("the open connection goes on after the reload", read_exactly(kept, 6), b"AFTER\n")
    finally:
        if kept is not None:
            kept.close()
    with open(live_cert[1], "w") as out:
        out.write("not a key\n")
    echo.proc.send_signal(signal.SIGHUP)
    echo.wait_log("a broken key fails the reload", r"SIGHUP: TLS reload failed, the old certificate stays")
    expect("the old certificate stays after a failed reload", peer_common_name(echo.port, ca[0]), "localhost-2")
    echo.stop()


def raise_open_files(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= needed


def check_many_with_reloads(binary, directory, ca, count=1000, reloads=100):
    """`count` concurrent handshakes; then `reloads` reloads with them all open; none dropped."""
    if not raise_open_files(count + 100):
        fail(f"{count} connections need {count + 100} open files; the limit allows fewer")
    live_cert = os.path.join(directory, "many.crt"), os.path.join(directory, "many.key")
    pairs = [make_signed(directory, f"many{i}", ca, "localhost", "DNS:localhost") for i in range(2)]
    for source, target in zip(pairs[0], live_cert):
        shutil.copyfile(source, target)
    echo = Server("uppercase_echo", [binary, "--host", "127.0.0.1", "--port", "0", "--concurrency", CONCURRENCY,
                                     "--threads", "2", "--log-level", "info", "--tls-cert", live_cert[0],
                                     "--tls-key", live_cert[1], "--handshake-timeout", "60"])
    context = client_context(ca[0])

    async def run():
        semaphore = asyncio.Semaphore(200)  # connects in flight at once, under the listen backlog

        async def open_one():
            async with semaphore:
                return await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", echo.port, ssl=context, server_hostname="localhost"),
                    TIMEOUT * 6)

        started = time.monotonic()
        streams = await asyncio.gather(*(open_one() for _ in range(count)))
        print(f"ok: {count} concurrent handshakes in {time.monotonic() - started:.1f} s")
        for i in range(reloads):
            for source, target in zip(pairs[(i + 1) % 2], live_cert):
                shutil.copyfile(source, target)
            echo.proc.send_signal(signal.SIGHUP)
            await asyncio.to_thread(echo.wait_log_count, "reload", r"SIGHUP: TLS certificate reloaded", i + 1)
        print(f"ok: {reloads} reloads with {count} connections open")

        async def round_trip(index, reader, writer):
            line = f"line {index}\n".encode()
            writer.write(line)
            await writer.drain()
            return await asyncio.wait_for(reader.readline(), TIMEOUT * 6) == line.upper()

        answers = await asyncio.gather(*(round_trip(i, *stream) for i, stream in enumerate(streams)))
        expect(f"all {count} connections answer after the reloads", answers.count(True), count)
        for _, writer in streams:
            writer.close()
        await asyncio.gather(*(writer.wait_closed() for _, writer in streams), return_exceptions=True)

    asyncio.run(run())
    echo.stop()


def check_curl(get_time, server_cert, ca):
    curl = shutil.which("curl")
    if curl is None:
        print("skipped: curl is not installed")
        return
    server = Server("get_time", [get_time, "--host", "127.0.0.1", "--port", "0", "--tls-cert", server_cert[0],
                                 "--tls-key", server_cert[1]])
    # get_time answers each line of curl's request and waits for more: curl stops at --max-time.
    done = subprocess.run([curl, "--silent", "--http0.9", "--max-time", "2", "--cacert", ca,
                           "--resolve", f"localhost:{server.port}:127.0.0.1", f"https://localhost:{server.port}/"],
                          capture_output=True, timeout=TIMEOUT + 5)
    expect("curl --cacert verifies get_time's certificate and gets its answer (a line per request line)",
           done.stdout.split(b"\n")[0], b"error: invalid request 'GET / HTTP/1.1', expected 'get_time'")
    server.stop()


def main():
    global CONCURRENCY
    if len(sys.argv) not in (3, 5) or (len(sys.argv) == 5 and sys.argv[3] != "--concurrency"):
        sys.exit(__doc__)
    echo_binary, get_time = sys.argv[1:3]
    if len(sys.argv) == 5:
        CONCURRENCY = sys.argv[4]
    if shutil.which("openssl") is None:
        fail("openssl not found: the tests make their certificates with it")
    started = time.monotonic()
    directory = tempfile.mkdtemp(prefix="socketserver-tls-")
    try:
        ca = make_ca(directory, "test-ca")
        other_ca = make_ca(directory, "other-ca")
        server_cert = make_signed(directory, "server", ca, "localhost", "DNS:localhost,IP:127.0.0.1")
        good_client = make_signed(directory, "client", ca, "client.test", "DNS:client.test")
        wrong_client = make_signed(directory, "stranger", other_ca, "stranger.test", "DNS:stranger.test")
        echo = start_echo(echo_binary, server_cert)
        check_echo(echo, ca[0])
        check_s_client(echo, ca[0])
        check_s_client_resumption(echo, ca[0], directory)
        check_old_versions_refused(echo)
        check_plaintext_refused(echo)
        check_closed_before_hello(echo)
        check_truncation(echo, ca[0])
        check_handshake_timeout(echo, ca[0])
        check_hostname(echo, ca[0])
        if CONCURRENCY in ("threading", "async"):  # 100 MiB: in two modes only
            check_bulk(echo, ca[0])
        echo.stop()
        check_mutual(echo_binary, server_cert, ca, good_client, wrong_client,
                     make_expired(directory, "expired-client", ca, "client.test"))
        check_expired_server(echo_binary, directory, ca)
        check_reload(echo_binary, directory, ca)
        if CONCURRENCY in ("threading", "async"):  # 1,000 connections: in two modes only
            check_many_with_reloads(echo_binary, directory, ca)
        if CONCURRENCY == "threading":  # get_time has one mode
            check_curl(get_time, server_cert, ca[0])
    except BaseException:
        for server in SERVERS:  # what the servers said, for the failure's diagnosis
            print(f"--- {server.name} stderr:\n{server.log()}", file=sys.stderr)
        raise
    finally:
        for proc in reversed(PROCESSES):
            kill(proc, grace=2)
        shutil.rmtree(directory, ignore_errors=True)
    print(f"all passed, --concurrency {CONCURRENCY}, in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
