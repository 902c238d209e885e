#!/usr/bin/env python3
"""closer.py - both ends of sluice's close-order tests (tests/e2e/close.sh).

  closer.py server [--dir DIR] [--ready FILE] [--lifetime S] -l ADDR,PORT ...
  closer.py client HOST PORT ORDER ID UP DOWN TIMEOUT [DIR]

The client connects (through the tunnel), sends one line "ORDER ID UP DOWN"
and then UP random bytes; the server sends DOWN random bytes.  Who sends
when, and who closes first, is ORDER:

  client-first  client: send all, shut write, read to EOF.
                server: read to EOF, then send, shut write, close.
  server-first  server: send all and shut write at once, then read to EOF.
                client: upload in 64 KiB chunks every 20 ms meanwhile
                (it is still uploading when the server's FIN comes), then
                shut write.
  both          both send everything and shut write at once, each reading
                to EOF meanwhile.
  server-slow   server: send, shut write, then read slowly (16 KiB every
                100 ms), so that sluice still holds client data after both
                FINs.  client: send all at once, shut write, read to EOF.
  early         server: read 64 KiB, send DOWN (the "413" answer), shut
                write, then read and discard to EOF.  client as in both.
  early-rst     the same, but the server closes at once after its answer,
                with the upload unread: the kernel sends a RST.
  client-fin-server-eof
                client: send all (less than sluice's window) and shut write
                at once; when its FIN is acknowledged (FIN_WAIT2: sluice's
                stack has the whole upload and the FIN), create DIR/ID.fin;
                read to EOF.  server: read nothing until DIR/ID.fin exists
                (so the upload backs up into sluice), then send DOWN (a
                small answer), shut write, wait 0.5 s and read to EOF.
                Sluice must pass the upstream's EOF on as a FIN and still
                deliver the upload it holds when the client acknowledges
                that FIN.

Both sides hash what they send and receive.  The server records
"sent N SHA recv N SHA RECV_END" in DIR/ID when it is done (recv counts
the bytes after the first line; RECV_END as below, "-" when it did not
read to the end); the client prints one line

  sent N SHA recv N SHA RECV_END UP_END PREFIX

RECV_END is how the answer ended: "eof" (a FIN), "reset" or "timeout";
UP_END how the upload did: "done" (all sent and write shut), "reset" (a
RST or EPIPE cut it short), "stalled" (the tunnel neither took the rest nor
refused it before the time bound).  sent counts the bytes the kernel took.
In client-fin-server-eof the line ends with one more word: "fin-acked MS"
(the FIN was acknowledged MS ms after the upload began) or "fin-unacked"
(not within FIN_WAIT seconds; DIR/ID.fin is created anyway).
The server's bytes are pseudo-random from ID: PREFIX says whether what
the client got is (a prefix of) them, "prefix-ok" or "prefix-bad".
The client exits 0 when it could connect at all.  Every wait is bounded by
TIMEOUT seconds (client) or the socket timeout (server, 120 s).
"""

import argparse
import fcntl
import hashlib
import os
import random
import socket
import struct
import sys
import threading
import time

CHUNK = 64 * 1024
FIN_WAIT = 10  # client-fin-server-eof: bound on waiting for the FIN's ACK
TCP_FIN_WAIT2, TCP_TIME_WAIT = 5, 6  # tcp_info.tcpi_state
SIOCOUTQ = 0x5411  # unsent bytes in the send queue (TIOCOUTQ)
SERVER_TIMEOUT = 120
MAX_SIZE = 1 << 30
ORDERS = ("client-first", "server-first", "both", "server-slow", "early",
          "early-rst", "client-fin-server-eof")
results_dir = "."


def now():
    return time.monotonic()


def stream(seed, size):
    """The bytes the server sends for seed: pseudo-random, so the client
    can check that what it got is a prefix of them."""
    rng = random.Random(seed)
    left = size
    while left > 0:
        d = rng.randbytes(min(CHUNK, left))
        left -= len(d)
        yield d


class Sent:
    """Bytes sent in chunks, hashed; pause seconds between chunks.  Random
    bytes, or those of stream(seed) when a seed is given."""

    def __init__(self, seed=None):
        self.n = 0
        self.h = hashlib.sha256()
        self.err = None
        self.seed = seed

    def send(self, sock, size, pause=0.0, deadline=None):
        left = size
        gen = stream(self.seed, size) if self.seed is not None else None
        try:
            while left > 0:
                d = next(gen) if gen else os.urandom(min(CHUNK, left))
                sock.sendall(d)
                self.h.update(d)
                self.n += len(d)
                left -= len(d)
                if pause and left > 0:
                    time.sleep(pause)
                if deadline is not None and now() > deadline:
                    raise TimeoutError("send deadline")
        except OSError as e:
            self.err = e
            return False
        return True

    def line(self):
        return "%d %s" % (self.n, self.h.hexdigest())


class Recv:
    """Bytes read to EOF (or error), hashed; optional slow reading; checked
    against want (bytes), when given, as far as they came."""

    def __init__(self, first=b"", want=None):
        self.n = len(first)
        self.h = hashlib.sha256(first)
        self.end = None
        self.want = want
        self.prefix_ok = True

    def read(self, sock, chunk=1 << 18, pause=0.0, deadline=None):
        try:
            while True:
                d = sock.recv(chunk)
                if not d:
                    self.end = "eof"
                    return True
                self.h.update(d)
                if self.want is not None and \
                        self.want[self.n:self.n + len(d)] != d:
                    self.prefix_ok = False
                self.n += len(d)
                if deadline is not None and now() > deadline:
                    self.end = "timeout"
                    return False
                if pause:
                    time.sleep(pause)
        except ConnectionResetError:
            self.end = "reset"
        except socket.timeout:
            self.end = "timeout"
        except OSError as e:
            self.end = "error-%s" % type(e).__name__
        return False

    def line(self):
        return "%d %s" % (self.n, self.h.hexdigest())


def shut_wr(sock):
    try:
        sock.shutdown(socket.SHUT_WR)
        return True
    except OSError:
        return False


def in_thread(fn, *args, **kw):
    t = threading.Thread(target=fn, args=args, kwargs=kw, daemon=True)
    t.start()
    return t


# ---- server ------------------------------------------------------------------

def record(ident, sent, recv):
    if not ident or "/" in ident or ident.startswith("."):
        return
    path = os.path.join(results_dir, ident)
    with open(path + ".tmp", "w") as f:
        f.write("sent %s recv %s %s\n" % (sent.line(), recv.line(),
                                            recv.end or "-"))
    os.rename(path + ".tmp", path)


def wait_outq_empty(conn, limit):
    """Wait up to limit seconds until the kernel has sent all we wrote."""
    end = now() + limit
    while now() < end:
        try:
            left = struct.unpack("i", fcntl.ioctl(conn.fileno(), SIOCOUTQ,
                                                  b"\0" * 4))[0]
        except OSError:
            return
        if left == 0:
            return
        time.sleep(0.01)


def fin_acked(sock):
    """Our FIN is acknowledged: the socket is in FIN_WAIT2 (or later)."""
    try:
        st = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
    except OSError:
        return False
    return st in (TCP_FIN_WAIT2, TCP_TIME_WAIT)


def signal_path(ident):
    if not ident or "/" in ident or ident.startswith("."):
        return None
    return os.path.join(results_dir, ident + ".fin")


def wait_path(path, limit):
    """Wait up to limit seconds until path exists."""
    end = now() + limit
    while path and now() < end and not os.path.exists(path):
        time.sleep(0.01)


def read_header(conn):
    buf = b""
    while b"\n" not in buf:
        if len(buf) > 512:
            return None, b""
        d = conn.recv(512)
        if not d:
            return None, b""
        buf += d
    line, rest = buf.split(b"\n", 1)
    return line.decode("latin-1").split(), rest


def serve(conn):
    words, rest = read_header(conn)
    if not words or len(words) != 4 or words[0] not in ORDERS:
        return
    order, ident = words[0], words[1]
    down = int(words[3])
    if not 0 <= down <= MAX_SIZE:
        return
    sent, recv = Sent("down:" + ident), Recv(rest)
    if order == "client-first":
        recv.read(conn)
        sent.send(conn, down)
        record(ident, sent, recv)
        shut_wr(conn)
    elif order in ("server-first", "both"):
        t = in_thread(lambda: sent.send(conn, down) and shut_wr(conn))
        recv.read(conn)
        t.join(SERVER_TIMEOUT)
        record(ident, sent, recv)
    elif order == "server-slow":
        sent.send(conn, down)
        shut_wr(conn)
        recv.read(conn, chunk=16 * 1024, pause=0.1)
        record(ident, sent, recv)
    elif order == "client-fin-server-eof":
        # the upload stays unread until sluice has it all, and the FIN
        wait_path(signal_path(ident), FIN_WAIT + 5)
        sent.send(conn, down)
        shut_wr(conn)
        # sluice forwards our EOF and the client acknowledges it first
        time.sleep(0.5)
        recv.read(conn)
        record(ident, sent, recv)
    else:  # early, early-rst: answer after the first 64 KiB
        while recv.n < 64 * 1024:
            d = conn.recv(64 * 1024 - recv.n)
            if not d:
                break
            recv.h.update(d)
            recv.n += len(d)
        sent.send(conn, down)
        if order == "early-rst":
            # close with the upload unread: the kernel answers with a RST
            # (and drops what it has not sent yet: wait for that, briefly)
            record(ident, sent, recv)
            wait_outq_empty(conn, 5)
            return
        shut_wr(conn)
        recv.read(conn)
        record(ident, sent, recv)


def handle(conn):
    try:
        conn.settimeout(SERVER_TIMEOUT)
        serve(conn)
    except (OSError, ValueError):
        pass
    finally:
        conn.close()


def accept_loop(lsock):
    while True:
        try:
            conn, _ = lsock.accept()
        except OSError:
            continue
        in_thread(handle, conn)


def server(argv):
    global results_dir
    ap = argparse.ArgumentParser(prog="closer.py server")
    ap.add_argument("-l", "--listen", action="append", required=True,
                    help="ADDR,PORT")
    ap.add_argument("--dir", default=".")
    ap.add_argument("--ready")
    ap.add_argument("--lifetime", type=float, default=900)
    a = ap.parse_args(argv)
    results_dir = a.dir
    for spec in a.listen:
        addr, port = spec.rsplit(",", 1)
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((addr, int(port)))
        s.listen(128)
        in_thread(accept_loop, s)
    if a.ready:
        with open(a.ready, "w") as f:
            f.write("%d\n" % os.getpid())
    time.sleep(a.lifetime)
    return 0


# ---- client ------------------------------------------------------------------

def client(argv):
    global results_dir
    if len(argv) not in (7, 8) or argv[2] not in ORDERS:
        sys.exit(__doc__)
    if len(argv) == 8:
        results_dir = argv[7]
    host, port, order, ident = argv[0], int(argv[1]), argv[2], argv[3]
    up, down, timeout = int(argv[4]), int(argv[5]), float(argv[6])
    deadline = now() + timeout
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(min(timeout, 30))
    try:
        s.connect((host, port))
    except OSError as e:
        print("bad: connect: %s" % e)
        return 1
    s.settimeout(timeout)
    head = ("%s %s %d %d\n" % (order, ident, up, down)).encode()
    sent = Sent()
    recv = Recv(want=b"".join(stream("down:" + ident, down)))
    try:
        s.sendall(head)
    except OSError as e:
        print("bad: header: %s" % e)
        return 1
    pause = 0.02 if order == "server-first" else 0.0

    def upload():
        if sent.send(s, up, pause=pause, deadline=deadline):
            shut_wr(s)

    fin = ""
    if order == "client-first":
        upload()
        recv.read(s, deadline=deadline)
        stalled = False
    elif order == "client-fin-server-eof":
        t0 = now()
        upload()
        end = min(deadline, now() + FIN_WAIT)
        while not fin_acked(s) and now() < end:
            time.sleep(0.005)
        fin = " fin-acked %d" % ((now() - t0) * 1000) if fin_acked(s) \
            else " fin-unacked"
        path = signal_path(ident)
        if path:
            with open(path, "w"):
                pass
        recv.read(s, deadline=deadline)
        stalled = False
    else:
        t = in_thread(upload)
        recv.read(s, deadline=deadline)
        t.join(max(0.0, deadline - now()))
        stalled = t.is_alive()
    if stalled:
        up_end = "stalled"
    elif sent.err is None:
        up_end = "done"
    elif isinstance(sent.err, (ConnectionResetError, BrokenPipeError)):
        up_end = "reset"
    elif isinstance(sent.err, (socket.timeout, TimeoutError)):
        up_end = "stalled"
    else:
        up_end = "error-%s" % type(sent.err).__name__
    s.close()
    print("sent %s recv %s %s %s %s%s" % (
        sent.line(), recv.line(), recv.end, up_end,
        "prefix-ok" if recv.prefix_ok else "prefix-bad", fin))
    return 0


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("server", "client"):
        sys.exit(__doc__)
    if sys.argv[1] == "server":
        return server(sys.argv[2:])
    return client(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
