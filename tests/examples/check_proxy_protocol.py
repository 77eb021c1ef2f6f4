#!/usr/bin/env python3
"""The PROXY protocol and the access list against real peers: raw sockets, then HAProxy.

usage: check_proxy_protocol.py UPPERCASE_ECHO PROXY_REPORT HAPROXY_OR_EMPTY [--concurrency MODE]

Starts UPPERCASE_ECHO on 127.0.0.1 port 0 trusting the proxy 127.0.0.2 (--proxy-protocol
127.0.0.2/32 --log-level info) and talks to it from Python sockets bound to other loopback
addresses (Linux routes all of 127/8 to lo): valid v1 and v2 headers, in one send and a byte a
send; malformed, oversized, missing, late and untrusted ones, which must be closed unanswered
with a security line on stderr. Then the access list (--allow/--deny) on a second server, then,
unless HAPROXY is empty, HAProxy in front of UPPERCASE_ECHO and PROXY_REPORT (send-proxy,
send-proxy-v2, and a TLS frontend with send-proxy-v2-ssl-cn). One --concurrency mode a run.
Every wait is bounded; every process started is stopped, also on failure.
"""
import os
import re
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

from harness import PROCESSES, SERVERS, TIMEOUT, Server, expect, fail, kill

HEADER_TIMEOUT = 5  # ProxyProtocol::header_timeout's default
MAX_TLV_SIZE = 2048  # ProxyProtocol::max_tlv_size's default
AT_ONCE = 2.5  # a refusal is "at once" well before HEADER_TIMEOUT
PROXY = "127.0.0.2"  # the trusted proxy
CONCURRENCY = "threading"  # from --concurrency


def start_echo(binary, *options):
    return Server("uppercase_echo", [binary, "--host", "127.0.0.1", "--port", "0", "--concurrency", CONCURRENCY,
                                     "--threads", "4", "--log-level", "info", *options])


# --- the PROXY protocol's bytes (HAProxy's doc/proxy-protocol.txt) ---

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
PP2_TYPE_ALPN, PP2_TYPE_AUTHORITY, PP2_TYPE_CRC32C, PP2_TYPE_NOOP, PP2_TYPE_SSL = 0x01, 0x02, 0x03, 0x04, 0x20
PP2_SUBTYPE_SSL_VERSION, PP2_SUBTYPE_SSL_CN = 0x21, 0x22


def v1(source, destination, source_port, destination_port, protocol="TCP4"):
    return f"PROXY {protocol} {source} {destination} {source_port} {destination_port}\r\n".encode()


def v2(body, command=1, family=0x11):
    """A v2 header: command 1 PROXY or 0 LOCAL; family 0x11 TCP/IPv4, 0x21 TCP/IPv6, 0 UNSPEC."""
    return V2_SIGNATURE + bytes([0x20 | command, family]) + struct.pack("!H", len(body)) + body


def inet(source, source_port, destination="198.51.100.1", destination_port=80):
    return socket.inet_aton(source) + socket.inet_aton(destination) + struct.pack("!HH", source_port, destination_port)


def inet6(source, source_port, destination="2001:db8::80", destination_port=443):
    return (socket.inet_pton(socket.AF_INET6, source) + socket.inet_pton(socket.AF_INET6, destination) +
            struct.pack("!HH", source_port, destination_port))


def tlv(kind, value):
    return bytes([kind]) + struct.pack("!H", len(value)) + value


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def with_crc32c(body, command=1, family=0x11, spoil=False):
    """A v2 header whose last TLV is PP2_TYPE_CRC32C over the whole header (§2.2.3)."""
    header = v2(body + tlv(PP2_TYPE_CRC32C, b"\0\0\0\0"), command, family)
    checksum = crc32c(header) ^ (1 if spoil else 0)
    return header[:-4] + struct.pack("!I", checksum)


# --- clients ---

def connect(source, port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def address(sock):
    host, port = sock.getsockname()[:2]
    return f"{host}:{port}"


def send(sock, data, byte_by_byte=False):
    if not byte_by_byte:
        sock.sendall(data)
        return
    for i in range(len(data)):  # the client's pace (TCP_NODELAY is on), not synchronisation
        sock.sendall(data[i:i + 1])
        time.sleep(0.003)


def send_quietly(sock, data):
    """Sends what the server may refuse: it may close the connection before or while it arrives."""
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def read_until_closed(sock, what):
    """What arrives until the server closes the connection (a reset is a close too)."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    except socket.timeout:
        fail(f"{what}: the server did not close the connection within {TIMEOUT} s")
    return b"".join(chunks)


def access_line(client):
    return rf"\[access\] info: {re.escape(client)} closed after"


def check_served(server, what, header, client=None, byte_by_byte=False, source=PROXY):
    """`header` then a line from `source`: the line comes back upper-cased, and the access line
    names `client` (None: the real peer)."""
    with connect(source, server.port) as sock:
        peer = address(sock)
        send(sock, header + b"hello proxy\n", byte_by_byte)
        sock.shutdown(socket.SHUT_WR)
        expect(f"{what}: the line comes back upper-cased", read_until_closed(sock, what), b"HELLO PROXY\n")
    client = client or peer
    server.wait_log(f"{what}: the access line names {client}", access_line(client))
    if client != peer:
        expect(f"{what}: ... and not the proxy {peer}", re.search(access_line(peer), server.log()), None)


def check_refused(server, what, data, reason, source=PROXY, eof=False):
    """`data` from `source` (then the end of the stream if `eof`): closed at once, unanswered,
    with a security line giving `reason`."""
    with connect(source, server.port) as sock:
        peer = address(sock)
        started = time.monotonic()
        send_quietly(sock, data)
        if eof:
            sock.shutdown(socket.SHUT_WR)
        got = read_until_closed(sock, what)
        took = time.monotonic() - started
    expect(f"{what}: closed unanswered", got, b"")
    expect(f"{what}: at once ({took:.3f} s)", took < AT_ONCE, True)
    server.wait_log(f"{what}: a security line", rf"\[security\] \w+: (closed|refused) connection from "
                                                  rf"{re.escape(peer)}: .*{reason}")


# --- the cases ---

def check_headers(echo):
    check_served(echo, "v1 header and a line in one send", v1("192.0.2.10", "198.51.100.1", 5555, 80),
                 "192.0.2.10:5555")
    echo.wait_log("the security line tells proxy and client",
                  r"\[security\] info: PROXY v1 header from 127\.0\.0\.2:\d+: client 192\.0\.2\.10:5555$")
    check_served(echo, "v1 header a byte a send", v1("192.0.2.11", "198.51.100.1", 5556, 80), "192.0.2.11:5556",
                 byte_by_byte=True)
    check_served(echo, "v1 TCP6 header", v1("2001:db8::6", "2001:db8::80", 6006, 443, "TCP6"), "[2001:db8::6]:6006")
    tlvs = tlv(PP2_TYPE_ALPN, b"h2") + tlv(PP2_TYPE_AUTHORITY, b"example.com") + tlv(PP2_TYPE_NOOP, b"\0" * 7)
    check_served(echo, "v2 PROXY INET with ALPN, AUTHORITY and NOOP TLVs", v2(inet("192.0.2.12", 5557) + tlvs),
                 "192.0.2.12:5557")
    check_served(echo, "v2 header with TLVs a byte a send", v2(inet("192.0.2.13", 5558) + tlvs), "192.0.2.13:5558",
                 byte_by_byte=True)
    check_served(echo, "v2 PROXY INET6", v2(inet6("2001:db8::1", 4242), family=0x21), "[2001:db8::1]:4242")
    check_served(echo, "v2 LOCAL: the real peer", v2(b"", command=0, family=0))
    echo.wait_log("the LOCAL header is logged", r"\[security\] info: PROXY v2 LOCAL header from 127\.0\.0\.2:\d+$")
    check_served(echo, "v2 with a valid CRC32C", with_crc32c(inet("192.0.2.14", 5559)), "192.0.2.14:5559")
    # The largest header the default TLV cap admits: 16 + 216 + 2048 bytes.
    largest = v2(inet("192.0.2.15", 5560) + tlv(PP2_TYPE_NOOP, b"\0" * (216 + MAX_TLV_SIZE - 12 - 3)))
    expect("the largest header's size", len(largest), 16 + 216 + MAX_TLV_SIZE)
    check_served(echo, "v2 header of the largest size allowed", largest, "192.0.2.15:5560")


def check_bad_headers(echo):
    check_refused(echo, "v1 header without ports", b"PROXY TCP4 1.2.3.4\r\nhello\n", "invalid PROXY protocol header")
    check_refused(echo, "HTTP instead of a header", b"GET / HTTP/1.1\r\n\r\n", "invalid PROXY protocol header")
    check_refused(echo, "v1 header with a leading zero", v1("192.0.2.010", "198.51.100.1", 5555, 80) + b"hello\n",
                  "invalid PROXY protocol header")
    check_refused(echo, "v2 header with a wrong CRC32C", with_crc32c(inet("192.0.2.16", 5561), spoil=True) + b"hello\n",
                  "invalid PROXY protocol header")
    too_large = v2(inet("192.0.2.17", 5562) + tlv(PP2_TYPE_NOOP, b"\0" * (216 + MAX_TLV_SIZE + 1 - 12 - 3)))
    expect("the oversized header announces 216 + 2048 + 1 bytes", struct.unpack("!H", too_large[14:16])[0],
           216 + MAX_TLV_SIZE + 1)
    check_refused(echo, "v2 header one byte over the cap", too_large + b"hello\n", "PROXY protocol header too large")
    # Only the 16 fixed bytes of a header announcing 60,000 more: refused on them, not after a timeout.
    check_refused(echo, "v2 header announcing 60000 bytes", v2(b"")[:14] + struct.pack("!H", 60000),
                  "PROXY protocol header too large")
    check_refused(echo, "a trusted proxy that sends data but no header", b"hello\n", "invalid PROXY protocol header")
    check_refused(echo, "a trusted proxy that ends its stream inside the header", b"PROXY TCP4 192.0.2.",
                  "the connection ended first", eof=True)
    # An untrusted peer's valid header: refused before a byte is read; the header's client must
    # never appear (checked once the server has stopped, in check_never_parsed()).
    check_refused(echo, "an untrusted peer's valid header", v1("192.0.2.99", "198.51.100.1", 6666, 80) + b"hello\n",
                  "not a trusted proxy", source="127.0.0.1")


def check_closes_inside_header(echo):
    """A trusted proxy that sends half a header and stops is closed after header_timeout."""
    with connect(PROXY, echo.port) as sock:
        peer = address(sock)
        sock.sendall(v1("192.0.2.18", "198.51.100.1", 5563, 80)[:20])
        started = time.monotonic()
        got = read_until_closed(sock, "half a header")
        took = time.monotonic() - started
    expect("half a header: closed unanswered", got, b"")
    expect(f"half a header: closed after about {HEADER_TIMEOUT} s ({took:.3f} s)", 4.5 <= took <= 8, True)
    echo.wait_log("half a header: a security line",
                  rf"\[security\] \w+: closed connection from {re.escape(peer)}: .*no PROXY protocol header within")


def check_never_parsed(echo):
    log = echo.log()
    expect("the untrusted peer's header was never parsed", "192.0.2.99" in log or "header from 127.0.0.1:" in log,
           False)


def check_access_list(binary):
    echo = start_echo(binary, "--allow", "127.0.0.0/8", "--deny", "127.0.0.3/32")
    check_refused(echo, "--deny 127.0.0.3/32: a peer it names", b"hello\n", "denied by the access list",
                  source="127.0.0.3")
    check_served(echo, "--allow 127.0.0.0/8: a peer it names", b"", source="127.0.0.4")
    echo.stop()


# --- HAProxy ---

def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def make_certificates(directory):
    """A self-signed server certificate (PEM: cert and key, as haproxy wants them) and a client one."""
    openssl = shutil.which("openssl")
    if openssl is None:
        fail("openssl not found: it makes the HAProxy TLS frontend's certificate")
    paths = {}
    for name, cn in (("server", "localhost"), ("client", "test-client")):
        cert, key = os.path.join(directory, f"{name}.crt"), os.path.join(directory, f"{name}.key")
        done = subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                               "-nodes", "-days", "1", "-subj", f"/CN={cn}", "-keyout", key, "-out", cert],
                              capture_output=True, timeout=TIMEOUT)
        if done.returncode != 0:
            fail(f"openssl req failed: {done.stderr.decode(errors='replace')}")
        paths[name] = (cert, key)
    pem = os.path.join(directory, "server.pem")
    with open(pem, "wb") as out:
        for part in paths["server"]:
            with open(part, "rb") as f:
                out.write(f.read())
    return pem, paths["client"]


HAPROXY_CONFIG = """\
global
    maxconn 64

defaults
    mode tcp
    timeout connect 2s
    timeout client 5s
    timeout server 5s

# The backends connect from the trusted proxy's address, 127.0.0.2.
frontend echo_v1
    bind 127.0.0.1:{echo_v1}
    default_backend echo_v1
backend echo_v1
    server echo 127.0.0.1:{echo} source {proxy} send-proxy

frontend echo_v2
    bind 127.0.0.1:{echo_v2}
    default_backend echo_v2
backend echo_v2
    server echo 127.0.0.1:{echo} source {proxy} send-proxy-v2

frontend echo_tls
    bind 127.0.0.1:{echo_tls} ssl crt {pem} alpn x-test
    default_backend echo_tls
backend echo_tls
    server echo 127.0.0.1:{echo} source {proxy} send-proxy-v2-ssl-cn {v2_options}

frontend report_v1
    bind 127.0.0.1:{report_v1}
    default_backend report_v1
backend report_v1
    server report 127.0.0.1:{report} source {proxy} send-proxy

# A client certificate is asked for (and checked against ca-file) so that cert-cn has a CN to send.
frontend report_tls
    bind 127.0.0.1:{report_tls} ssl crt {pem} alpn x-test verify optional ca-file {client_ca}
    default_backend report_tls
backend report_tls
    server report 127.0.0.1:{report} source {proxy} send-proxy-v2-ssl-cn {v2_options}
"""
FRONTENDS = ("echo_v1", "echo_v2", "echo_tls", "report_v1", "report_tls")


def start_haproxy(haproxy, directory, echo_port, report_port, pem, client_ca):
    """haproxy -db on free ports; retried on other ports when it cannot bind. Returns it and its ports."""
    for attempt in range(3):
        ports = dict(zip(FRONTENDS, free_ports(len(FRONTENDS))))
        config = os.path.join(directory, "haproxy.cfg")
        with open(config, "w") as f:
            f.write(HAPROXY_CONFIG.format(echo=echo_port, report=report_port, proxy=PROXY, pem=pem,
                                          client_ca=client_ca, v2_options="proxy-v2-options "
                                          "ssl,cert-cn,ssl-cipher,authority,crc32c", **ports))
        output_path = os.path.join(directory, f"haproxy-{attempt}.out")
        with open(output_path, "wb") as output:
            proc = subprocess.Popen([haproxy, "-f", config, "-db"], stdin=subprocess.DEVNULL, stdout=output,
                                    stderr=subprocess.STDOUT)
        PROCESSES.append(proc)
        if wait_listening(proc, ports.values()):
            return proc, ports
        kill(proc)
        with open(output_path, "rb") as f:
            output = f.read().decode(errors="replace")
        if "bind" not in output.lower():
            fail(f"haproxy did not start: {output}")
        print(f"note: haproxy could not bind (attempt {attempt + 1}), retrying on other ports")
    fail("haproxy could not bind in 3 attempts")


def wait_listening(proc, ports):
    """A readiness check: connects to each port every 50 ms, for at most 5 s; False if haproxy exits."""
    deadline = time.monotonic() + 5
    for port in ports:
        while True:
            if proc.poll() is not None:
                return False
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.05)
    return proc.poll() is None  # still running: the ports are its own


CLIENT = "127.0.0.5"  # the client behind HAProxy


def tls_client(port, client_cert=None):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["x-test"])
    if client_cert:
        context.load_cert_chain(*client_cert)
    sock = connect(CLIENT, port)
    try:
        return context.wrap_socket(sock, server_hostname="example.test")
    except BaseException:
        sock.close()
        raise


def read_line(sock, what):
    data = b""
    try:
        while not data.endswith(b"\n") and (chunk := sock.recv(4096)):
            data += chunk
    except socket.timeout:
        fail(f"{what}: no whole line within {TIMEOUT} s (got {data!r})")
    return data


def check_through_haproxy(echo, ports, client_cert):
    for frontend, version in (("echo_v1", 1), ("echo_v2", 2), ("echo_tls", 2)):
        what = f"through haproxy {frontend}"
        sock = tls_client(ports[frontend]) if frontend == "echo_tls" else connect(CLIENT, ports[frontend])
        with sock:
            client = address(sock)
            sock.sendall(b"through haproxy\n")
            expect(f"{what}: the line comes back upper-cased", read_line(sock, what), b"THROUGH HAPROXY\n")
        echo.wait_log(f"{what}: a v{version} header from the proxy {PROXY}",
                      rf"PROXY v{version} header from {re.escape(PROXY)}:\d+: client {re.escape(client)}$")
        echo.wait_log(f"{what}: the access line names the client {CLIENT}", access_line(client))
    expect(f"no access line names the proxy {PROXY}", re.search(access_line(PROXY + ":"), echo.log()), None)

    with connect(CLIENT, ports["report_v1"]) as sock:
        client = address(sock)
        got = parse_report(read_line(sock, "report through send-proxy"))
    expect("report through send-proxy: version 1", got["version"], "1")
    expect(f"report through send-proxy: the client {CLIENT}", got["client"], client)
    expect("report through send-proxy: command proxy, no TLVs", (got["command"], got["ssl"], got["alpn"]),
           ("proxy", "0", "-"))

    with tls_client(ports["report_tls"], client_cert) as sock:
        client = address(sock)
        expect("the TLS client negotiated ALPN x-test", sock.selected_alpn_protocol(), "x-test")
        tls_version = sock.version()
        got = parse_report(read_line(sock, "report through send-proxy-v2-ssl-cn"))
    what = "report through send-proxy-v2-ssl-cn"
    expect(f"{what}: version 2", got["version"], "2")
    expect(f"{what}: the client {CLIENT}", got["client"], client)
    expect(f"{what}: command proxy", got["command"], "proxy")
    expect(f"{what}: ssl", got["ssl"], "1")
    expect(f"{what}: the TLS version", got["ssl_version"], tls_version)
    expect(f"{what}: the SNI as authority", got["authority"], "example.test")
    expect(f"{what}: the ALPN", got["alpn"], "x-test")
    expect(f"{what}: the client certificate's CN", got["cn"], "test-client")
    # The server verifies a CRC32C TLV and refuses the connection when it does not match (see
    # "v2 header with a wrong CRC32C"): a report at all means HAProxy's checksum was verified.
    expect(f"{what}: a CRC32C TLV was present (and verified)", got["crc32c"], "1")


def parse_report(line):
    fields = dict(field.split("=", 1) for field in line.decode(errors="replace").split())
    expected = {"client", "version", "command", "alpn", "authority", "ssl", "ssl_version", "cn", "crc32c"}
    if set(fields) != expected:
        fail(f"proxy_report line {line!r}: want the fields {sorted(expected)}")
    return fields


def check_report_direct(report):
    """proxy_report without HAProxy: what a hand-made v2 header's TLVs say reaches the handler."""
    ssl_tlv = tlv(PP2_TYPE_SSL, b"\x01" + struct.pack("!I", 0) + tlv(PP2_SUBTYPE_SSL_VERSION, b"TLSv1.3") +
                  tlv(PP2_SUBTYPE_SSL_CN, b"raw-cn"))
    header = with_crc32c(inet("192.0.2.20", 5570) + tlv(PP2_TYPE_ALPN, b"h2") +
                         tlv(PP2_TYPE_AUTHORITY, b"example.com") + ssl_tlv)
    with connect(PROXY, report.port) as sock:
        sock.sendall(header)
        got = read_line(sock, "report of a hand-made v2 header")
    expect("report of a hand-made v2 header", got.decode(),
           "client=192.0.2.20:5570 version=2 command=proxy alpn=h2 authority=example.com ssl=1 "
           "ssl_version=TLSv1.3 cn=raw-cn crc32c=1\n")
    with connect(PROXY, report.port) as sock:
        peer = address(sock)
        sock.sendall(v2(b"", command=0, family=0))
        got = read_line(sock, "report of a LOCAL header")
    expect("report of a LOCAL header", got.decode(),
           f"client={peer} version=2 command=local alpn=- authority=- ssl=0 ssl_version=- cn=- crc32c=0\n")


def check_haproxy(haproxy, echo_binary, report_binary):
    report = Server("proxy_report", [report_binary, "--port", "0", "--proxy-protocol", f"{PROXY}/32", "--concurrency",
                                     "async" if CONCURRENCY == "async" else "threading"])
    check_report_direct(report)
    if not haproxy:
        print("note: no haproxy: the checks through HAProxy are skipped")
        report.stop()
        return
    echo = start_echo(echo_binary, "--proxy-protocol", f"{PROXY}/32")
    with tempfile.TemporaryDirectory() as directory:
        pem, client_cert = make_certificates(directory)
        proc, ports = start_haproxy(haproxy, directory, echo.port, report.port, pem, client_cert[0])
        try:
            check_through_haproxy(echo, ports, client_cert)
        finally:
            kill(proc)  # for sure, before its directory goes
    report.stop()
    echo.stop()


def main():
    global CONCURRENCY
    if len(sys.argv) not in (4, 6) or (len(sys.argv) == 6 and sys.argv[4] != "--concurrency"):
        sys.exit(__doc__)
    echo_binary, report_binary, haproxy = sys.argv[1:4]
    if len(sys.argv) == 6:
        CONCURRENCY = sys.argv[5]
    expect("crc32c of '123456789'", crc32c(b"123456789"), 0xE3069283)
    started = time.monotonic()
    try:
        echo = start_echo(echo_binary, "--proxy-protocol", f"{PROXY}/32")
        check_headers(echo)
        check_bad_headers(echo)
        if CONCURRENCY in ("threading", "async"):  # 5 s each: in two modes only
            check_closes_inside_header(echo)
        echo.stop()
        check_never_parsed(echo)
        check_access_list(echo_binary)
        check_haproxy(haproxy, echo_binary, report_binary)
    except BaseException:
        for server in SERVERS:  # what the servers said, for the failure's diagnosis
            print(f"--- {server.name} stderr:\n{server.log()}", file=sys.stderr)
        raise
    finally:
        servers = [server.proc for server in SERVERS]
        for proc in reversed(PROCESSES):  # haproxy first, at once; then the servers stop() did not end
            kill(proc, grace=2 if proc in servers else 0)
    print(f"all passed, --concurrency {CONCURRENCY}, in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
