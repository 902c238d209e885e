#!/usr/bin/env python3
"""udptool.py - UDP peers and clients for sluice's udp suite (tests/e2e/udp.sh).

Standard library only.  Every wait is bounded; every client prints one
result line of KEY=VALUE words (the shell makes the assertions) and exits 0
when it could run at all, 1 on a usage or set-up error.

  server -l ADDR,PORT ... [--ready FILE] [--lifetime S]
        echo every datagram back to its sender, on every -l socket.  A
        datagram "CONE A,P B,Q ..." is the full-cone probe: the server sends
        "FROM A,P" from its own socket A,P (and so on) to the sender, then
        "ACK <sender's address>,<port>" from the socket that got the probe.
  exchange HOST PORT [--count N] [--window K] [--window-bytes B]
        [--big SIZE:COUNT,...] [--timeout S] [--deadline S] [--seed N]
        N echo datagrams of mixed sizes, at most K (and B bytes, unless a
        single one is bigger) outstanding; every echo is checked (sequence
        number, size, pattern, source address).  Prints sent, received,
        lost, corrupt, dup, late, wrongsrc, lost bytes and lost datagrams
        per size class.
  many HOST PORT [--sockets N] [--rounds R] [--timeout S]
        N sockets at once, R rounds: each sends its own datagram and must
        get exactly that back from HOST,PORT; ports= says how many source
        ports they had (N, or the test proves nothing).
  probe HOST PORT [--until S] [--interval S]
        send a datagram every interval until its echo comes back: "ok" or
        "timeout", with the time taken and the number of tries.
  refused HOST PORT [--timeout S]
        a connected socket sends one datagram and waits: refused (the
        ECONNREFUSED an ICMP port unreachable gives), reply, timeout or
        error, with the time from the send in ms.
  cone HOST PORT OTHER_ADDR,PORT ... [--wait S]
        the full-cone probe: ack= (who answered), mapped= (the address the
        server saw), got=X for each "FROM X" that arrived with source X,
        wrongsrc=X/Y if it came from Y instead, missing=X if none came.

Clients take --bind-port P (a fixed source port, so that two runs are the
same UDP flow to sluice) and --socks ADDR,PORT (talk SOCKS5 UDP ASSOCIATE,
RFC 1928 section 7, to that proxy directly, without sluice: the suite's
check that the proxy itself relays UDP).
"""

import argparse
import errno
import os
import random
import select
import socket
import struct
import sys
import time

BUF = 4 << 20           # socket buffers (SO_*BUFFORCE: we run as root)
MAXDGRAM = 65535
HDR = 4                 # sequence number; shorter datagrams are "tiny"
PAT = random.Random(1928).randbytes(4096 + MAXDGRAM)


def now():
    return time.monotonic()


def fam(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def norm(host, port):
    """A canonical "addr,port" for an address tuple or its parts."""
    f = fam(host)
    return "%s,%d" % (socket.inet_ntop(f, socket.inet_pton(f, host)), port)


def parse_ap(s):
    a, p = s.rsplit(",", 1)
    return a, int(p)


def bufs(s):
    for opt, force in ((socket.SO_RCVBUF, 33), (socket.SO_SNDBUF, 32)):
        try:
            s.setsockopt(socket.SOL_SOCKET, force, BUF)   # SO_*BUFFORCE
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, opt, BUF)


# ---- transports: plain UDP, or through a SOCKS5 proxy's UDP relay -----------

class Direct:
    """A UDP socket of the family of HOST."""

    def __init__(self, host, bind_port=0):
        self.s = socket.socket(fam(host), socket.SOCK_DGRAM)
        bufs(self.s)
        if bind_port:
            # only here: with SO_REUSEADDR on two sockets, the kernel may
            # give both the same ephemeral port
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.s.bind(("::" if fam(host) == socket.AF_INET6 else "0.0.0.0",
                         bind_port))
        self.s.setblocking(False)

    def fileno(self):
        return self.s.fileno()

    def sendto(self, data, addr):
        self.s.sendto(data, addr)

    def recvfrom(self):
        """(data, (addr, port)) or None when nothing is waiting."""
        try:
            d, a = self.s.recvfrom(MAXDGRAM)
        except BlockingIOError:
            return None
        return d, (a[0], a[1])


def socks_addr(host, port):
    f = fam(host)
    return (bytes([1 if f == socket.AF_INET else 4]) +
            socket.inet_pton(f, host) + struct.pack(">H", port))


def recv_n(c, n):
    b = b""
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d:
            raise OSError("proxy closed the control connection")
        b += d
    return b


class Socks5(Direct):
    """SOCKS5 UDP ASSOCIATE without authentication; the control connection
    lives as long as the object."""

    def __init__(self, proxy, host, bind_port=0):
        phost, pport = parse_ap(proxy)
        self.c = socket.create_connection((phost, pport), timeout=10)
        self.c.sendall(b"\x05\x01\x00")
        if recv_n(self.c, 2) != b"\x05\x00":
            raise OSError("proxy wants authentication")
        self.c.sendall(b"\x05\x03\x00" + socks_addr(
            "0.0.0.0" if fam(phost) == socket.AF_INET else "::", 0))
        r = recv_n(self.c, 4)
        if r[1] != 0:
            raise OSError("UDP ASSOCIATE refused: reply %d" % r[1])
        alen = 4 if r[3] == 1 else 16
        a = recv_n(self.c, alen + 2)
        f = socket.AF_INET if alen == 4 else socket.AF_INET6
        self.relay = (socket.inet_ntop(f, a[:alen]),
                      struct.unpack(">H", a[alen:])[0])
        if self.relay[0] in ("0.0.0.0", "::"):
            self.relay = (phost, self.relay[1])
        Direct.__init__(self, self.relay[0], bind_port)

    def sendto(self, data, addr):
        self.s.sendto(b"\0\0\0" + socks_addr(*addr) + data, self.relay)

    def recvfrom(self):
        r = Direct.recvfrom(self)
        if r is None:
            return None
        d = r[0]
        if len(d) < 10 or d[2] != 0 or d[3] not in (1, 4):
            return b"<bad socks5 udp header>", ("0.0.0.0", 0)
        alen = 4 if d[3] == 1 else 16
        f = socket.AF_INET if alen == 4 else socket.AF_INET6
        host = socket.inet_ntop(f, d[4:4 + alen])
        port = struct.unpack(">H", d[4 + alen:6 + alen])[0]
        return d[6 + alen:], (host, port)


def transport(args, host):
    if args.socks:
        return Socks5(args.socks, host, args.bind_port)
    return Direct(host, args.bind_port)


def wait_readable(t, timeout):
    r, _, _ = select.select([t], [], [], max(0.0, timeout))
    return bool(r)


# ---- server -----------------------------------------------------------------

def cmd_server(args):
    socks = {}
    for spec in args.listen:
        a, p = parse_ap(spec)
        s = socket.socket(fam(a), socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        bufs(s)
        s.bind((a, p))
        s.setblocking(False)
        socks[norm(a, p)] = s
    byfd = {s.fileno(): (k, s) for k, s in socks.items()}
    if args.ready:
        with open(args.ready + ".tmp", "w") as f:
            f.write(" ".join(socks) + "\n")
        os.rename(args.ready + ".tmp", args.ready)
    po = select.poll()
    for fd in byfd:
        po.register(fd, select.POLLIN)
    end = now() + args.lifetime
    while now() < end:
        for fd, _ in po.poll(1000):
            key, s = byfd[fd]
            for _ in range(256):
                try:
                    d, src = s.recvfrom(MAXDGRAM)
                except BlockingIOError:
                    break
                try:
                    if d.startswith(b"CONE "):
                        cone_reply(socks, s, d, src)
                    else:
                        s.sendto(d, src)
                except OSError as e:
                    print("server %s: send to %s: %s" % (key, src, e),
                          flush=True)
    return 0


def cone_reply(socks, s, d, src):
    seen = norm(src[0], src[1])
    print("cone probe from %s for %s" % (seen, d[5:].decode()), flush=True)
    for spec in d[5:].decode().split():
        other = socks.get(norm(*parse_ap(spec)))
        if other is not None:
            other.sendto(b"FROM " + spec.encode(), src)
    s.sendto(b"ACK " + seen.encode(), src)


# ---- exchange -----------------------------------------------------------------

def plan(args):
    """The size of every datagram: edge sizes first, then uniform ones with
    the big ones of --big at random places."""
    rng = random.Random(args.seed)
    edge = [1, 2, 3, 4, 5, args.max_small - 1, args.max_small]
    if args.count < len(edge):
        raise ValueError("--count must be at least %d" % len(edge))
    sizes = edge + [rng.randint(1, args.max_small)
                    for _ in range(args.count - len(edge))]
    slots = list(range(len(edge), args.count))
    rng.shuffle(slots)
    for spec in filter(None, args.big.split(",")):
        size, n = (int(x) for x in spec.split(":"))
        if n > len(slots):
            raise ValueError("--count %d is too small for --big %s"
                             % (args.count, args.big))
        for _ in range(n):
            sizes[slots.pop()] = size
    return sizes


def payload(seq, size):
    if size < HDR:
        return bytes((0xA0 + size + i) & 0xFF for i in range(size))
    o = (seq * 7919) % 4096
    return struct.pack(">I", seq) + PAT[o:o + size - HDR]


def size_class(size, max_small):
    return "small" if size <= max_small else str(size)


def cmd_exchange(args):
    host, dst = args.host, (args.host, args.port)
    want_src = norm(*dst)
    sizes = plan(args)
    n = len(sizes)
    t = transport(args, host)
    out = {}                    # seq -> (sent at, size)
    tiny = {}                   # size -> [seq, ...] of tiny outstanding
    out_bytes = 0
    st = dict(sent=0, received=0, corrupt=0, dup=0, late=0, wrongsrc=0)
    lost = set()
    got = set()
    first_bad = None
    nxt = 0
    t0 = now()
    end = t0 + args.deadline

    def retire(seq):
        nonlocal out_bytes
        out_bytes -= out.pop(seq)[1]

    while (nxt < n or out) and now() < end:
        # send while the window has room
        while nxt < n and len(out) < args.window and (
                not out or out_bytes + sizes[nxt] <= args.window_bytes):
            size = sizes[nxt]
            try:
                t.sendto(payload(nxt, size), dst)
            except BlockingIOError:
                break
            except OSError as e:
                print("exchange: send #%d (%d bytes): %s" % (nxt, size, e),
                      file=sys.stderr)
            out[nxt] = (now(), size)
            out_bytes += size
            if size < HDR:
                tiny.setdefault(size, []).append(nxt)
            st["sent"] += 1
            nxt += 1
        # the oldest outstanding ones that waited too long are lost
        limit = now() - args.timeout
        for seq in [s for s, (ts, _) in out.items() if ts < limit]:
            retire(seq)
            lost.add(seq)
            if sizes[seq] < HDR:
                tiny[sizes[seq]].remove(seq)
        wait_readable(t, 0.05)
        while True:
            r = t.recvfrom()
            if r is None:
                break
            d, src = r
            if norm(*src) != want_src:
                st["wrongsrc"] += 1
                first_bad = first_bad or "from %s" % norm(*src)
                continue
            if len(d) < HDR:
                if d != payload(0, len(d)):
                    st["corrupt"] += 1
                    first_bad = first_bad or "tiny %r" % d
                elif tiny.get(len(d)):
                    seq = tiny[len(d)].pop(0)
                    retire(seq)
                    got.add(seq)
                    st["received"] += 1
                else:
                    st["dup"] += 1
                continue
            seq = struct.unpack(">I", d[:HDR])[0]
            if seq >= n or d != payload(seq, sizes[seq]):
                st["corrupt"] += 1
                first_bad = first_bad or "%d bytes claiming #%d" % (len(d), seq)
            elif seq in out:
                retire(seq)
                got.add(seq)
                st["received"] += 1
            elif seq in lost:
                st["late"] += 1
            else:
                st["dup"] += 1
    unsent = n - nxt
    lost |= set(out)
    el = now() - t0
    by_class = {}
    for seq in lost:
        c = size_class(sizes[seq], args.max_small)
        by_class[c] = by_class.get(c, 0) + 1
    total = {}
    for size in sizes:
        c = size_class(size, args.max_small)
        total[c] = total.get(c, 0) + 1
    words = ["%s=%d" % kv for kv in st.items()]
    words += ["lost=%d" % len(lost), "unsent=%d" % unsent,
              "bytes=%d" % sum(sizes),
              "lost_bytes=%d" % sum(sizes[s] for s in lost),
              "max=%d" % max(sizes), "seconds=%.2f" % el]
    words += ["lost_%s=%d/%d" % (c, by_class.get(c, 0), total[c])
              for c in sorted(total, key=lambda c: (c != "small", c))]
    if first_bad:
        words.append("first_bad=%s" % first_bad.replace(" ", "_"))
    print(" ".join(words))
    return 0


# ---- many, probe, refused, cone -----------------------------------------------

def cmd_many(args):
    dst = (args.host, args.port)
    want_src = norm(*dst)
    ts = [transport(args, args.host) for _ in range(args.sockets)]
    byfd = {t.fileno(): i for i, t in enumerate(ts)}
    answered = missing = wrong = 0
    wrongs = []
    t0 = now()
    for rnd in range(args.rounds):
        pending = set(range(len(ts)))
        for i, t in enumerate(ts):
            t.sendto(b"many %d %d " % (i, rnd) + PAT[:i % 512], dst)
        end = now() + args.timeout
        while pending and now() < end:
            r, _, _ = select.select([ts[i] for i in pending], [], [],
                                    max(0.0, end - now()))
            for t in r:
                i = byfd[t.fileno()]
                res = t.recvfrom()
                if res is None:
                    continue
                d, src = res
                if (d == b"many %d %d " % (i, rnd) + PAT[:i % 512] and
                        norm(*src) == want_src):
                    pending.discard(i)
                    answered += 1
                else:
                    wrong += 1
                    if len(wrongs) < 3:     # for the report
                        wrongs.append("%d:%r" % (i, d[:24]))
        missing += len(pending)
    ports = len(set(t.s.getsockname()[1] for t in ts))
    print("sockets=%d ports=%d rounds=%d answered=%d missing=%d wrong=%d "
          "seconds=%.2f%s" % (len(ts), ports, args.rounds, answered, missing,
                              wrong, now() - t0,
             "".join(" wrong_first=" + w.replace(" ", "_") for w in wrongs)))
    return 0


def cmd_probe(args):
    dst = (args.host, args.port)
    t = transport(args, args.host)
    t0 = now()
    tries = 0
    while now() - t0 < args.until:
        tries += 1
        msg = b"probe %d" % tries
        t.sendto(msg, dst)
        end = min(now() + args.interval, t0 + args.until)
        while now() < end and wait_readable(t, end - now()):
            r = t.recvfrom()
            if r and r[0].startswith(b"probe ") and norm(*r[1]) == norm(*dst):
                print("ok seconds=%.2f tries=%d" % (now() - t0, tries))
                return 0
    print("timeout seconds=%.2f tries=%d" % (now() - t0, tries))
    return 0


def cmd_refused(args):
    s = socket.socket(fam(args.host), socket.SOCK_DGRAM)
    if args.bind_port:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("::" if fam(args.host) == socket.AF_INET6 else "0.0.0.0",
                args.bind_port))
    s.connect((args.host, args.port))
    s.settimeout(args.timeout)
    t0 = now()
    try:
        s.send(b"refused?")
        s.recv(MAXDGRAM)
        res = "reply"
    except ConnectionRefusedError:
        res = "refused"
    except socket.timeout:
        res = "timeout"
    except OSError as e:
        res = "error=%s" % errno.errorcode.get(e.errno, e.errno)
    print("%s ms=%.1f" % (res, (now() - t0) * 1000))
    return 0


def cmd_cone(args):
    dst = (args.host, args.port)
    t = transport(args, args.host)
    others = [norm(*parse_ap(o)) for o in args.others]
    req = ("CONE " + " ".join(others)).encode()
    ack = None
    got = {}                    # "FROM X" -> source it came from
    t0 = now()
    end = t0 + args.timeout
    tries = 0
    while now() < end:
        if ack is None and tries < 3 and now() >= t0 + tries * 1.0:
            t.sendto(req, dst)
            tries += 1
        if not wait_readable(t, min(0.1, end - now())):
            continue
        r = t.recvfrom()
        if r is None:
            continue
        d, src = r
        if d.startswith(b"ACK ") and norm(*src) == norm(*dst):
            if ack is None:
                ack = d[4:].decode()
                end = min(end, now() + args.wait)
        elif d.startswith(b"FROM "):
            got.setdefault(d[5:].decode(), norm(*src))
    words = ["ack=%s" % norm(*dst) if ack else "ack=none",
             "mapped=%s" % (ack or "?")]
    for o in others:
        if o not in got:
            words.append("missing=%s" % o)
        elif got[o] == o:
            words.append("got=%s" % o)
        else:
            words.append("wrongsrc=%s/%s" % (o, got[o]))
    print(" ".join(words))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    sp = sub.add_parser("server")
    sp.add_argument("-l", "--listen", action="append", required=True)
    sp.add_argument("--ready")
    sp.add_argument("--lifetime", type=float, default=900)

    def client(name):
        c = sub.add_parser(name)
        c.add_argument("host")
        c.add_argument("port", type=int)
        c.add_argument("--bind-port", type=int, default=0)
        c.add_argument("--socks")
        c.add_argument("--timeout", type=float, default=2.0)
        return c

    c = client("exchange")
    c.add_argument("--count", type=int, default=1000)
    c.add_argument("--window", type=int, default=16)
    c.add_argument("--window-bytes", type=int, default=128 << 10)
    c.add_argument("--max-small", type=int, default=1472)
    c.add_argument("--big", default="")
    c.add_argument("--deadline", type=float, default=60)
    c.add_argument("--seed", type=int, default=1)
    c = client("many")
    c.add_argument("--sockets", type=int, default=200)
    c.add_argument("--rounds", type=int, default=3)
    c = client("probe")
    c.add_argument("--until", type=float, default=10)
    c.add_argument("--interval", type=float, default=0.2)
    client("refused")
    c = client("cone")
    c.add_argument("others", nargs="+")
    c.add_argument("--wait", type=float, default=1.0)

    args = p.parse_args()
    try:
        return globals()["cmd_" + args.cmd](args)
    except (OSError, ValueError) as e:
        print("error=%s" % str(e).replace(" ", "_"))
        return 1


if __name__ == "__main__":
    sys.exit(main())
