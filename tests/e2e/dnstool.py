#!/usr/bin/env python3
"""dnstool.py - small peers and clients for sluice's DNS tests (dns.sh).

Every wait is bounded; each client prints one result line and the shell
harness makes the assertions.

  silent ADDR PORT READY LIFETIME   a "resolver" that accepts DNS over TCP
                                    and never answers (reads and discards);
                                    writes READY once listening, exits after
                                    LIFETIME seconds
  send HOST PORT KIND WAIT          send one UDP datagram of KIND to
                                    HOST:PORT, wait up to WAIT seconds for
                                    any reply: "noreply" | "reply N" |
                                    "reply N id ID rcode RCODE" (a reply
                                    of 12 bytes or more) | "error ERRNO"
      KIND: short     5 bytes, shorter than a DNS header
            response  a well-formed DNS response (QR set): not a query
            ones      64 bytes of 0xff
            query     a well-formed query for web.test A, ID 20818
  oneshot ADDR PORT READY LIFETIME  a resolver over TCP that answers the
                                    first query on each connection (any
                                    name: A 198.18.1.1, TTL 1) and then
                                    closes it, whatever else was sent
  hold NAME PORT READY GO MAXWAIT
                                    a long-lived flow: resolve NAME (IPv4,
                                    glibc), connect to srv.py's raw server,
                                    "ECHO", one round trip; write the peer
                                    address to READY; wait for the file GO
                                    (at most MAXWAIT seconds) with the
                                    connection open; then echo 256 KiB,
                                    half-close, read to EOF: "ok N PEER" |
                                    "bad ..."
  burst HOST PORT N TIMEOUT [any]   send N queries at once from one socket
                                    (distinct IDs; even ones for web.test A,
                                    odd ones for qN.test A, which does not
                                    exist), then collect the answers: each
                                    must carry a sent ID, that query's
                                    name, and NOERROR with an answer (even)
                                    or NXDOMAIN (odd): "ok N S" | "bad ...";
                                    with "any", NOERROR with an answer or
                                    SERVFAIL for every name:
                                    "ok N S answered A servfail F"
"""

import errno
import os
import socket
import struct
import sys
import time


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def dns_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def datagram(kind):
    q = dns_name("web.test") + struct.pack("!HH", 1, 1)
    if kind == "short":
        return b"hello"
    if kind == "response":
        # id 0x5151, QR|RD|RA, 1 question, no records
        return struct.pack("!HHHHHH", 0x5151, 0x8180, 1, 0, 0, 0) + q
    if kind == "ones":
        return b"\xff" * 64
    if kind == "query":
        return struct.pack("!HHHHHH", 0x5152, 0x0100, 1, 0, 0, 0) + q
    raise SystemExit("unknown kind %r" % kind)


def cmd_send(host, port, kind, wait):
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    s.settimeout(float(wait))
    try:
        s.sendto(datagram(kind), (host, int(port)))
        d = s.recv(65535)
        if len(d) >= 12:
            rid, flags = struct.unpack("!HH", d[:4])
            print("reply %d id %d rcode %d" % (len(d), rid, flags & 15))
        else:
            print("reply %d" % len(d))
    except socket.timeout:
        print("noreply")
    except OSError as e:
        print("error %s" % errno.errorcode.get(e.errno, e.errno))
    finally:
        s.close()
    return 0


def parse_reply(d):
    """(id, rcode, qname, ancount) of a DNS reply; raises on garbage."""
    rid, flags, qd, an = struct.unpack("!HHHH", d[:8])
    if not flags & 0x8000 or qd != 1:
        raise ValueError("not a reply with one question")
    off, labels = 12, []
    while d[off]:
        labels.append(d[off + 1:off + 1 + d[off]].decode())
        off += 1 + d[off]
    return rid, flags & 15, ".".join(labels), an


def cmd_burst(host, port, n, timeout, mode="strict"):
    if mode not in ("strict", "any"):
        raise SystemExit("burst: the last argument can only be \"any\"")
    n, timeout = int(n), float(timeout)
    answered = servfail = 0
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    s.connect((host, int(port)))
    want = {}
    base = 1000
    for i in range(n):
        name = "web.test" if i % 2 == 0 else "q%d.test" % i
        qid = base + i
        want[qid] = name
        s.send(struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) +
               dns_name(name) + struct.pack("!HH", 1, 1))
    t0 = time.monotonic()
    got = 0
    while want:
        left = timeout - (time.monotonic() - t0)
        if left <= 0:
            print("bad: %d of %d unanswered after %.1fs" % (len(want), n, timeout))
            return 1
        s.settimeout(left)
        try:
            d = s.recv(65535)
        except socket.timeout:
            continue
        except OSError as e:
            print("bad: %s" % errno.errorcode.get(e.errno, e.errno))
            return 1
        try:
            rid, rcode, qname, an = parse_reply(d)
        except (ValueError, IndexError, struct.error, UnicodeDecodeError) as e:
            print("bad: a malformed reply (%s)" % e)
            return 1
        if rid not in want:
            print("bad: a reply with ID %d, which no query (left) has" % rid)
            return 1
        if qname.lower() != want[rid]:
            print("bad: ID %d answered for %s, asked %s" % (rid, qname, want[rid]))
            return 1
        if mode == "any":
            ok = (rcode == 0 and an >= 1) or rcode == 2
            answered += rcode == 0
            servfail += rcode == 2
        elif want[rid] == "web.test":
            ok = rcode == 0 and an >= 1
        else:
            ok = rcode == 3
        if not ok:
            print("bad: %s (ID %d): rcode %d, %d answers" % (qname, rid, rcode, an))
            return 1
        del want[rid]
        got += 1
    if mode == "any":
        print("ok %d %.3f answered %d servfail %d" %
              (got, time.monotonic() - t0, answered, servfail))
    else:
        print("ok %d %.3f" % (got, time.monotonic() - t0))
    return 0


def recv_n(s, n):
    buf = bytearray()
    while len(buf) < n:
        d = s.recv(min(65536, n - len(buf)))
        if not d:
            break
        buf += d
    return bytes(buf)


def cmd_hold(name, port, ready, go, maxwait):
    maxwait = float(maxwait)
    try:
        ai = socket.getaddrinfo(name, int(port), socket.AF_INET, socket.SOCK_STREAM)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(20)
        s.connect(ai[0][4])
        peer = s.getpeername()[0]
        s.sendall(b"ECHO\n")
        probe = b"probe-before\n"
        s.sendall(probe)
        if recv_n(s, len(probe)) != probe:
            print("bad: the first echo failed")
            return 1
    except OSError as e:
        print("bad: %s" % e)
        return 1
    with open(ready + ".tmp", "w") as f:
        f.write(peer + "\n")
    os.rename(ready + ".tmp", ready)
    t0 = time.monotonic()
    while not os.path.exists(go):
        if time.monotonic() - t0 > maxwait:
            print("bad: no go after %.0fs" % maxwait)
            return 1
        time.sleep(0.05)
    data = os.urandom(256 << 10)
    try:
        import threading

        t = threading.Thread(target=s.sendall, args=(data,), daemon=True)
        t.start()
        back = recv_n(s, len(data))
        t.join(20)
        s.shutdown(socket.SHUT_WR)
        rest = s.recv(1)
        s.close()
    except OSError as e:
        print("bad: after the go: %s" % e)
        return 1
    if back != data:
        print("bad: echoed %d of %d bytes intact" % (
            next((i for i, (a, b) in enumerate(zip(back, data)) if a != b), len(back)),
            len(data)))
        return 1
    if rest:
        print("bad: data after the echo")
        return 1
    print("ok %d %s" % (len(back), peer))
    return 0


def cmd_oneshot(addr, port, ready, lifetime):
    import threading

    ls = socket.socket(family(addr), socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, int(port)))
    ls.listen(64)

    def one(c):
        c.settimeout(30)
        try:
            buf = b""
            while len(buf) < 2 or len(buf) < 2 + struct.unpack("!H", buf[:2])[0]:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            n = struct.unpack("!H", buf[:2])[0]
            q = buf[2:2 + n]
            qid = struct.unpack("!H", q[:2])[0]
            off = 12
            while q[off]:
                off += 1 + q[off]
            question = q[12:off + 5]
            ans = (struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question +
                   b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 1, 4) +
                   socket.inet_aton("198.18.1.1"))
            c.sendall(struct.pack("!H", len(ans)) + ans)
            time.sleep(0.05)
        except (OSError, IndexError, struct.error):
            pass
        finally:
            c.close()

    def loop():
        while True:
            c, _ = ls.accept()
            threading.Thread(target=one, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    with open(ready + ".tmp", "w") as f:
        f.write("ready\n")
    os.rename(ready + ".tmp", ready)
    time.sleep(float(lifetime))
    return 0


def cmd_silent(addr, port, ready, lifetime):
    import threading

    ls = socket.socket(family(addr), socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, int(port)))
    ls.listen(64)

    def one(c):
        c.settimeout(300)
        try:
            while c.recv(65536):
                pass
        except OSError:
            pass
        c.close()

    def loop():
        while True:
            c, _ = ls.accept()
            threading.Thread(target=one, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    with open(ready + ".tmp", "w") as f:
        f.write("ready\n")
    os.rename(ready + ".tmp", ready)
    time.sleep(float(lifetime))
    return 0


# name: (function, least and most arguments)
CMDS = {"send": (cmd_send, 4, 4), "silent": (cmd_silent, 4, 4),
        "burst": (cmd_burst, 4, 5), "oneshot": (cmd_oneshot, 4, 4),
        "hold": (cmd_hold, 5, 5)}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in CMDS:
        sys.stderr.write(__doc__)
        return 2
    fn, least, most = CMDS[sys.argv[1]]
    if not least <= len(sys.argv) - 2 <= most:
        sys.stderr.write(__doc__)
        return 2
    return fn(*sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
