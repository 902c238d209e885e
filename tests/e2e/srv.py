#!/usr/bin/env python3
"""srv.py - test servers for sluice's end-to-end tests (run in ns "u").

usage: srv.py [--dir DIR] [--ready FILE] [--lifetime SECS] -l MODE,ADDR,PORT ...

Every -l binds one listening socket (IPv4 or IPv6 address).  Modes:

  raw     one command line from the client, then:
            SEND id n   send n random bytes, close; record "n sha256" in DIR/id
            RECV id     read to EOF; record "n sha256" in DIR/id; reply it; close
            ECHO        echo everything until EOF, then close
            HALF        read to EOF, then reply "n sha256\\n" + the data; close
  http    minimal HTTP/1.1 server, one request per connection:
            GET /            a small greeting page
            GET /file/NAME   the file DIR/NAME (sendfile)
            PUT /up/ID       body is read (Content-Length); "n sha256" is
                             recorded in DIR/ID and returned as the body
  silent  accepts and never says a word (a SOCKS5 server that hangs); reads
          and discards until the client closes

The server exits by itself after --lifetime seconds (default 900), so a
forgotten one cannot outlive a test run for long.  When all sockets are bound
it writes --ready FILE.
"""

import argparse
import hashlib
import os
import socket
import sys
import threading
import time

CHUNK = 256 * 1024
IO_TIMEOUT = 300  # per-connection socket timeout, seconds
MAX_LINE = 4096
MAX_SEND = 4 << 30  # refuse absurd SEND sizes (4 GiB)

results_dir = "."


def record(ident, n, digest):
    if not ident or "/" in ident or ident.startswith("."):
        return
    path = os.path.join(results_dir, ident)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d %s\n" % (n, digest))
    os.rename(tmp, path)


def read_line(conn, buf):
    """Read one line; returns (line, rest) or (None, buf) at EOF/oversize."""
    while b"\n" not in buf:
        if len(buf) > MAX_LINE:
            return None, buf
        d = conn.recv(MAX_LINE)
        if not d:
            return None, buf
        buf += d
    line, rest = buf.split(b"\n", 1)
    return line.decode("latin-1").rstrip("\r"), rest


def drain(conn, first=b""):
    """Read until EOF; return (nbytes, sha256 hexdigest)."""
    h = hashlib.sha256(first)
    n = len(first)
    while True:
        d = conn.recv(CHUNK)
        if not d:
            break
        h.update(d)
        n += len(d)
    return n, h.hexdigest()


def send_random(conn, n):
    h = hashlib.sha256()
    left = n
    while left > 0:
        d = os.urandom(min(CHUNK, left))
        conn.sendall(d)
        h.update(d)
        left -= len(d)
    return h.hexdigest()


def serve_raw(conn):
    line, rest = read_line(conn, b"")
    if line is None:
        return
    words = line.split()
    if not words:
        return
    cmd = words[0].upper()
    if cmd == "SEND" and len(words) == 3:
        n = int(words[2])
        if n < 0 or n > MAX_SEND:
            return
        digest = send_random(conn, n)
        # record before the FIN, so it is there when the client sees EOF
        record(words[1], n, digest)
        conn.shutdown(socket.SHUT_WR)
    elif cmd == "RECV" and len(words) == 2:
        n, digest = drain(conn, rest)
        record(words[1], n, digest)
        conn.sendall(("%d %s\n" % (n, digest)).encode())
        conn.shutdown(socket.SHUT_WR)
    elif cmd == "ECHO":
        if rest:
            conn.sendall(rest)
        while True:
            d = conn.recv(CHUNK)
            if not d:
                break
            conn.sendall(d)
        conn.shutdown(socket.SHUT_WR)
    elif cmd == "HALF":
        data = bytearray(rest)
        while len(data) <= 64 << 20:
            d = conn.recv(CHUNK)
            if not d:
                break
            data += d
        digest = hashlib.sha256(data).hexdigest()
        conn.sendall(("%d %s\n" % (len(data), digest)).encode())
        conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
    else:
        return
    # linger until the peer closes (bounded by the socket timeout)
    try:
        while conn.recv(CHUNK):
            pass
    except OSError:
        pass


def http_reply(conn, status, body, ctype="text/plain"):
    hdr = ("HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
           "Connection: close\r\n\r\n" % (status, ctype, len(body)))
    conn.sendall(hdr.encode() + body)


def serve_http(conn):
    buf = b""
    while b"\r\n\r\n" not in buf:
        if len(buf) > 16384:
            return
        d = conn.recv(4096)
        if not d:
            return
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split()
    if len(parts) < 2:
        return
    method, path = parts[0], parts[1]
    headers = {}
    for l in lines[1:]:
        if ":" in l:
            k, v = l.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if method in ("GET", "HEAD") and path == "/":
        body = (b"<html><body><h1>hello from ns u</h1>\n"
                b"<p>this page reached you through sluice</p></body></html>\n")
        http_reply(conn, "200 OK", body, "text/html")
    elif method == "GET" and path.startswith("/file/"):
        name = path[len("/file/"):]
        fpath = os.path.join(results_dir, name)
        if "/" in name or name.startswith(".") or not os.path.isfile(fpath):
            http_reply(conn, "404 Not Found", b"not found\n")
            return
        size = os.path.getsize(fpath)
        conn.sendall(("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream"
                      "\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                      % size).encode())
        with open(fpath, "rb") as f:
            conn.sendfile(f)
    elif method == "PUT" and path.startswith("/up/"):
        ident = path[len("/up/"):]
        if headers.get("expect", "").lower() == "100-continue":
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        length = int(headers.get("content-length", "-1"))
        if length < 0:
            http_reply(conn, "411 Length Required", b"length required\n")
            return
        h = hashlib.sha256(rest[:length])
        n = len(rest[:length])
        while n < length:
            d = conn.recv(min(CHUNK, length - n))
            if not d:
                break
            h.update(d)
            n += len(d)
        digest = h.hexdigest()
        record(ident, n, digest)
        http_reply(conn, "200 OK", ("%d %s\n" % (n, digest)).encode())
    else:
        http_reply(conn, "404 Not Found", b"not found\n")
        return
    conn.shutdown(socket.SHUT_WR)
    try:
        while conn.recv(CHUNK):
            pass
    except OSError:
        pass


def serve_silent(conn):
    while conn.recv(CHUNK):
        pass


MODES = {"raw": serve_raw, "http": serve_http, "silent": serve_silent}


def handle(conn, fn):
    try:
        conn.settimeout(IO_TIMEOUT)
        fn(conn)
    except (OSError, ValueError):
        pass
    finally:
        try:
            conn.close()
        except OSError:
            pass


def accept_loop(lsock, fn):
    while True:
        try:
            conn, _ = lsock.accept()
        except OSError:
            continue
        t = threading.Thread(target=handle, args=(conn, fn), daemon=True)
        t.start()


def main():
    global results_dir
    ap = argparse.ArgumentParser()
    ap.add_argument("-l", "--listen", action="append", required=True,
                    help="MODE,ADDR,PORT")
    ap.add_argument("--dir", default=".")
    ap.add_argument("--ready")
    ap.add_argument("--lifetime", type=float, default=900)
    a = ap.parse_args()
    results_dir = a.dir
    socks = []
    for spec in a.listen:
        mode, addr, port = spec.rsplit(",", 2)
        if mode not in MODES:
            sys.exit("srv.py: unknown mode %r" % mode)
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((addr, int(port)))
        s.listen(512)
        socks.append((s, MODES[mode]))
    for s, fn in socks:
        threading.Thread(target=accept_loop, args=(s, fn), daemon=True).start()
    if a.ready:
        with open(a.ready, "w") as f:
            f.write("%d\n" % os.getpid())
    time.sleep(a.lifetime)


if __name__ == "__main__":
    main()
