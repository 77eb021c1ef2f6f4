#!/usr/bin/env python3
"""Runs http_server against curl, Python's http.client, raw sockets and a headless Chromium.

usage: check_http_server.py BINARY CURL [CHROMIUM] [SERVER OPTION...]

Serves a temporary directory (text, images, a 100 MiB file, a symbolic link out of it) and
checks: the listing, MIME types, HEAD, keep-alive (curl and http.client) and pipelining, Range
(206, 416, If-Range), ETag and Last-Modified answered with 304, Cache-Control, gzip with curl
--compressed, the refusals (.., escaped or not, a link out: 403; 413, 414, 431, 501, 505), an
access line per request, TLS with curl, and Chromium loading the listing and a page with two
images. CHROMIUM may be "-" where there is none. Every wait is bounded; the server must exit 0 on SIGTERM.
"""
import email.utils
import gzip
import hashlib
import http.client
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

from harness import expect, fail, run, Server, TIMEOUT

BIG = 100 * 1024 * 1024


def png(width, height, rgb):
    raw = b"".join(b"\0" + bytes(rgb) * width for _ in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


PAGE = """<!DOCTYPE html><html><head><title>page</title></head><body>
<img src="red.png"><img src="images/blue%20sky.png">
<p id="report">waiting</p>
<script>
window.addEventListener("load", () => {
  const sizes = [...document.images].map(i => i.naturalWidth + "x" + i.naturalHeight);
  document.getElementById("report").textContent = "loaded: " + sizes.join(", ");
});
</script></body></html>
"""


def make_site(root):
    (root / "images").mkdir()
    (root / "empty").mkdir()
    (root / "page.html").write_text(PAGE)
    (root / "red.png").write_bytes(png(3, 2, (255, 0, 0)))
    (root / "images" / "blue sky.png").write_bytes(png(5, 4, (0, 0, 255)))
    (root / "style.css").write_text("body { color: black; }\n" * 200)  # 4.6 KB of text: gzipped
    (root / "small.txt").write_text("short\n")  # under the gzip threshold
    (root / "data.bin").write_bytes(bytes(range(256)) * 40)
    (root / "<odd> & name.txt").write_text("odd\n")
    with open(root / "big.bin", "wb") as out:
        for _ in range(BIG // (1 << 20)):
            out.write(os.urandom(1 << 20))
    (root / "inside").symlink_to("data.bin")
    outside = root.parent / "outside.txt"
    outside.write_text("secret\n")
    (root / "leak.txt").symlink_to(outside)


def curl(curl_binary, *args, data=False):
    done = subprocess.run([curl_binary, "-sS", "--max-time", str(TIMEOUT), *args], capture_output=True,
                          timeout=TIMEOUT * 2)
    if done.returncode != 0:
        fail(f"curl {' '.join(args)} exited {done.returncode}: {done.stderr.decode(errors='replace')}")
    return done.stdout if data else done.stdout.decode(errors="replace")


def head_of(text):
    """The status and the headers (lower-case names) of the last response in curl -i/-D output."""
    blocks = [b for b in re.split(r"\r\n\r\n", text) if b.startswith("HTTP/")]
    lines = blocks[-1].split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers


def raw_exchange(port, payload, responses=1, heads=()):
    """Sends `payload` on one connection, reads until `responses` complete responses or EOF;
    the answers numbered in `heads` are to HEAD requests (no body, whatever their length says)."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall(payload)
        data = b""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            parsed = split_responses(data, heads)
            if len(parsed) >= responses:
                return parsed
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return split_responses(data, heads)


def split_responses(data, heads=()):
    out = []
    while b"\r\n\r\n" in data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode(errors="replace").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = 0 if len(out) in heads else int(headers.get("content-length", "0"))
        if len(rest) < length:
            break
        out.append((int(lines[0].split()[1]), headers, rest[:length]))
        data = rest[length:]
    return out


def check_plain(binary, curl_binary, chromium, root, options):
    server = Server("http_server", [binary, "--host", "127.0.0.1", "--port", "0", "--directory", str(root),
                                    "--log-level", "info", *options])
    base = f"http://127.0.0.1:{server.port}"

    listing = curl(curl_binary, "-i", base + "/")
    status, headers = head_of(listing)
    expect("the listing: 200", status, 200)
    expect("the listing is HTML", headers.get("content-type"), "text/html; charset=utf-8")
    for link in ('href="images/"', 'href="big.bin"', 'href="%3Codd%3E%20%26%20name.txt"',
                 "&lt;odd&gt; &amp; name.txt"):
        expect(f"the listing has {link}", link in listing, True)
    status, headers = head_of(curl(curl_binary, "-i", base + "/images"))
    expect("a directory without its slash is redirected", (status, headers.get("location")), (301, "/images/"))
    expect("a file in a directory with a space in its name",
           curl(curl_binary, base + "/images/blue%20sky.png", data=True), (root / "images" / "blue sky.png").read_bytes())

    for name, want in (("page.html", "text/html"), ("red.png", "image/png"), ("style.css", "text/css"),
                       ("data.bin", "application/octet-stream")):
        _, headers = head_of(curl(curl_binary, "-sI", base + "/" + name))
        expect(f"{name} is {want}", headers.get("content-type"), want)
    head = curl(curl_binary, "-sI", base + "/data.bin")
    status, headers = head_of(head)
    expect("HEAD: the length of the body it leaves out", (status, headers.get("content-length")), (200, "10240"))
    expect("HEAD sends no body", head.endswith("\r\n\r\n"), True)

    # Keep-alive: one connection, five requests, in the access log as one connection.
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    for _ in range(5):
        connection.request("GET", "/small.txt")
        response = connection.getresponse()
        expect("keep-alive: each answer on the same connection", response.read(), b"short\n")
    connection.close()
    server.wait_log("the access log counts the five requests of the connection", r"closed after .*, 5 requests,")
    server.wait_log("an access line per request", r'127\.0\.0\.1:\d+ "GET /small\.txt HTTP/1\.1" 200 6$')

    # curl's keep-alive: three URLs in one run go over one connection.
    got = curl(curl_binary, base + "/small.txt", base + "/red.png", base + "/small.txt", data=True)
    expect("curl: three files in one run", got, b"short\n" + (root / "red.png").read_bytes() + b"short\n")
    server.wait_log("curl kept one connection for the three", r"closed after .*, 3 requests,")

    # Pipelining: three requests in one send, answered in order.
    pipelined = raw_exchange(server.port, b"GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n"
                             b"HEAD /data.bin HTTP/1.1\r\nHost: x\r\n\r\n"
                             b"GET /red.png HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", responses=3, heads=(1,))
    expect("pipelining: three answers in order", [(s, len(b)) for s, _, b in pipelined],
           [(200, 6), (200, 0), (200, len(png(3, 2, (255, 0, 0))))])
    expect("pipelining: the last one closes", pipelined[2][1].get("connection"), "close")
    with_body = raw_exchange(server.port, b"GET /small.txt HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
                             b"GET /small.txt HTTP/1.1\r\nConnection: close\r\n\r\n", responses=2)
    expect("a GET's body is read and dropped", [(s, b) for s, _, b in with_body], [(200, b"short\n")] * 2)

    # Range.
    data = (root / "data.bin").read_bytes()
    out = curl(curl_binary, "-i", "-r", "10-19", base + "/data.bin", data=True)
    head, _, body = out.partition(b"\r\n\r\n")
    status, headers = head_of(head.decode() + "\r\n\r\n")
    expect("Range 10-19: 206", (status, headers.get("content-range")), (206, "bytes 10-19/10240"))
    expect("Range 10-19: those bytes", body, data[10:20])
    expect("Range -100: the last 100 bytes", curl(curl_binary, "-r", "-100", base + "/data.bin", data=True), data[-100:])
    expect("Range 10000-: to the end", curl(curl_binary, "-r", "10000-", base + "/data.bin", data=True), data[10000:])
    status, headers = head_of(curl(curl_binary, "-i", "-r", "20000-30000", base + "/data.bin"))
    expect("a range past the end: 416", (status, headers.get("content-range")), (416, "bytes */10240"))
    _, headers = head_of(curl(curl_binary, "-sI", base + "/data.bin"))
    etag, modified = headers["etag"], headers["last-modified"]
    expect("If-Range with the current ETag: the range",
           curl(curl_binary, "-r", "0-3", "-H", f"If-Range: {etag}", base + "/data.bin", data=True), data[:4])
    expect("If-Range with another ETag: the whole file",
           len(curl(curl_binary, "-r", "0-3", "-H", 'If-Range: "other"', base + "/data.bin", data=True)), len(data))

    # Caching.
    expect("Cache-Control as configured", headers.get("cache-control"), "no-cache")
    status, _ = head_of(curl(curl_binary, "-i", "-H", f"If-None-Match: {etag}", base + "/data.bin"))
    expect("If-None-Match with the ETag: 304", status, 304)
    status, _ = head_of(curl(curl_binary, "-i", "-H", f"If-Modified-Since: {modified}", base + "/data.bin"))
    expect("If-Modified-Since its Last-Modified: 304", status, 304)
    status, _ = head_of(curl(curl_binary, "-i", "-z", "Sun, 06 Nov 1994 08:49:37 GMT", base + "/data.bin"))
    expect("If-Modified-Since an older date: 200", status, 200)
    later = time.time() + 5
    os.utime(root / "data.bin", (later, later))
    status, headers = head_of(curl(curl_binary, "-i", "-H", f"If-None-Match: {etag}", base + "/data.bin"))
    expect("a changed file: 200 and a new ETag", (status, headers.get("etag") != etag), (200, True))
    expect("its Last-Modified follows the file",
           email.utils.parsedate_to_datetime(headers["last-modified"]).timestamp(), float(int(later)))

    # Compression.
    css = (root / "style.css").read_bytes()
    out = curl(curl_binary, "-i", "--compressed", base + "/style.css", data=True)
    head, _, body = out.partition(b"\r\n\r\n")
    status, headers = head_of(head.decode() + "\r\n\r\n")
    expect("curl --compressed: gzip", (headers.get("content-encoding"), headers.get("vary")), ("gzip", "Accept-Encoding"))
    expect("curl --compressed: the file, decoded", body, css)
    expect("gzip shrinks it", int(headers["content-length"]) < len(css) // 10, True)
    raw = raw_exchange(server.port, b"GET /style.css HTTP/1.1\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n")
    expect("the gzip body is a gzip stream", gzip.decompress(raw[0][2]), css)
    _, headers = head_of(curl(curl_binary, "-i", "--compressed", base + "/small.txt"))
    expect("a file under the threshold is sent as it is", headers.get("content-encoding"), None)
    _, headers = head_of(curl(curl_binary, "-i", "--compressed", base + "/data.bin"))
    expect("a binary file is sent as it is", headers.get("content-encoding"), None)
    raw = raw_exchange(server.port, b"GET /style.css HTTP/1.1\r\nAccept-Encoding: gzip;q=0\r\nConnection: close\r\n\r\n")
    expect("gzip;q=0 is a refusal", raw[0][1].get("content-encoding"), None)

    # The 100 MiB file, byte for byte.
    want = hashlib.sha256((root / "big.bin").read_bytes()).hexdigest()
    got = hashlib.sha256(curl(curl_binary, "--max-time", "120", base + "/big.bin", data=True)).hexdigest()
    expect("100 MiB through curl, byte for byte", got, want)

    # Refusals.
    for path, status in (("/../outside.txt", 403), ("/%2e%2e/outside.txt", 403), ("/images/..%2F..%2Foutside.txt", 403),
                         ("/leak.txt", 403), ("/nothing", 404), ("/small.txt/", 404), ("/a%zz", 400)):
        got, _ = head_of(curl(curl_binary, "-i", "--path-as-is", base + path))
        expect(f"{path}: {status}", got, status)
    expect("a link within the directory is served", curl(curl_binary, base + "/inside", data=True), data)
    for request, status, what in (
            (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 414, "a 9 KB request line"),
            (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(101)) + b"\r\n", 431, "101 headers"),
            (b"GET / HTTP/1.1\r\nX-Big: " + b"y" * 33000 + b"\r\n\r\n", 431, "a 33 KB header"),
            (b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 501, "POST"),
            (b"GET / HTTP/1.1\r\nContent-Length: 100000\r\n\r\n" + b"z" * 100000, 413, "a 100 KB body"),
            (b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501, "a chunked body"),
            (b"GET / HTTP/2.0\r\n\r\n", 505, "HTTP/2.0"),
            (b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400, "a line without a colon"),
            (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400, "a space before the colon")):
        answers = raw_exchange(server.port, request)
        expect(f"{what}: {status}, then the connection closes",
               [(s, h.get("connection")) for s, h, _ in answers], [(status, "close")])

    if chromium != "-":
        check_chromium(chromium, base, server)
    else:
        print("skipped: Chromium (not installed; apt-get install chromium)")
    server.stop()


def check_chromium(chromium, base, server):
    with tempfile.TemporaryDirectory() as profile:
        def dom(url):
            done = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                   f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--dump-dom", url],
                                  capture_output=True, timeout=60)
            return done.stdout.decode(errors="replace")
        listing = dom(base + "/")
        expect("Chromium shows the listing", "Directory listing for /" in listing and 'href="page.html"' in listing, True)
        page = dom(base + "/page.html")
        expect("Chromium loads a page with two images", re.search(r'id="report">([^<]*)<', page).group(1),
               "loaded: 3x2, 5x4")
    server.wait_log("Chromium asked for the images", r'"GET /images/blue%20sky\.png HTTP/1\.1" 200')


def check_tls(binary, curl_binary, root):
    with tempfile.TemporaryDirectory() as keys:
        cert, key = Path(keys) / "cert.pem", Path(keys) / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=TIMEOUT)
        server = Server("http_server (TLS)", [binary, "--host", "127.0.0.1", "--port", "0", "--directory", str(root),
                                              "--tls-cert", str(cert), "--tls-key", str(key)])
        base = f"https://127.0.0.1:{server.port}"
        data = (root / "data.bin").read_bytes()
        expect("TLS: curl gets the file", curl(curl_binary, "--cacert", str(cert), base + "/data.bin", data=True), data)
        expect("TLS: a range", curl(curl_binary, "--cacert", str(cert), "-r", "5-9", base + "/data.bin", data=True),
               data[5:10])
        expect("TLS: gzip", curl(curl_binary, "--cacert", str(cert), "--compressed", base + "/style.css", data=True),
               (root / "style.css").read_bytes())
        server.stop()


def main():
    binary, curl_binary = sys.argv[1], sys.argv[2]
    chromium = sys.argv[3] if len(sys.argv) > 3 else "-"
    options = sys.argv[4:]
    with tempfile.TemporaryDirectory() as work:
        root = Path(work) / "site"
        root.mkdir()
        make_site(root)
        check_plain(binary, curl_binary, chromium, root, options)
        check_tls(binary, curl_binary, root)


if __name__ == "__main__":
    run(main)
