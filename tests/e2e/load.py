#!/usr/bin/env python3
"""load.py - many-flow servers and clients for sluice's fault and scale tests.

One asyncio process holds thousands of sockets (srv.py and cli.py spend a
thread or a task per flow and do more per byte).  Every wait is bounded;
every client prints one result line and exits 0 when it went as planned.

  server --listen ADDR,PORT [--listen ...] [--ready FILE] [--lifetime S]
        in ns u.  The first line a client sends chooses:
          ECHO        echo everything until EOF, then close
          SEND N      send N bytes (a repeated random block), then FIN
  hold HOST PORT FLOWS TIMEOUT [--peak FILE] [--release FILE] [--inflight N]
        open FLOWS flows (at most N connecting at once), one short echo on
        each, hold them all open; at the peak write "ok A refused R failed F"
        to FILE, wait (bounded by TIMEOUT) for FILE --release to exist, then
        close them all.  Prints "ok A refused R failed F S" (S: seconds).
  stall HOST PORT FLOWS SIZE TIMEOUT [--peak FILE] [--release FILE]
        open FLOWS downloads of SIZE bytes, read the first 64 KiB of each,
        then never read again; at the peak write "stalled N failed F" to
        FILE, wait for --release, close.  Prints "stalled N failed F".
  download HOST PORT SECONDS [--socks ADDR,PORT]
        one download (SEND) read as fast as it comes for SECONDS, directly
        or through a SOCKS5 proxy (no auth): prints "gbps G bytes N S".
  flood IFACE PACKETS SECONDS [--seed N]
        write at most PACKETS malformed, random and hostile packets (bad
        lengths, checksums, options, fragments, SYNs to random ports) into
        the TUN device IFACE through a packet socket, spread over SECONDS.
        Prints "sent N errors E S".
"""

import argparse
import asyncio
import errno
import os
import random
import resource
import socket
import struct
import sys
import time

BLOCK = os.urandom(1 << 20)
TOKEN_LEN = 16


def raise_nofile(n):
    """Raise this process's fd limit to n (we run as root)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= n:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, max(n, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def now():
    return time.monotonic()


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


# ---- server -----------------------------------------------------------------

async def srv_client(reader, writer):
    try:
        line = await asyncio.wait_for(reader.readline(), 60)
        words = line.split()
        if not words:
            return
        if words[0] == b"ECHO":
            while True:
                d = await reader.read(1 << 16)
                if not d:
                    break
                writer.write(d)
                await writer.drain()
            writer.write_eof()
        elif words[0] == b"SEND" and len(words) == 2:
            left = min(int(words[1]), 64 << 30)
            # a bounded send buffer: with the kernel's autotuning (up to
            # tcp_wmem's 4 MiB) 300 stalled downloads park 1.2 GB here and
            # push the whole machine into TCP memory pressure, where Linux
            # clamps every socket's window to 4 segments: that measured
            # this server, not the tunnel
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 << 10)
            view = memoryview(BLOCK)
            while left > 0:
                n = min(left, len(BLOCK))
                writer.write(view[:n])
                left -= n
                await writer.drain()
            writer.write_eof()
        else:
            return
        # linger until the client closes (bounded)
        await asyncio.wait_for(reader.read(), 600)
    except (OSError, asyncio.TimeoutError, ValueError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def server_main(a):
    servers = []
    for spec in a.listen:
        addr, port = spec.rsplit(",", 1)
        s = socket.socket(family(addr), socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family(addr) == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((addr, int(port)))
        servers.append(await asyncio.start_server(srv_client, sock=s,
                                                  backlog=4096))
    if a.ready:
        with open(a.ready, "w") as f:
            f.write("%d\n" % os.getpid())
    await asyncio.sleep(a.lifetime)


# ---- clients ----------------------------------------------------------------

async def wait_release(path, deadline):
    while path and not os.path.exists(path) and now() < deadline:
        await asyncio.sleep(0.05)


def write_peak(path, text):
    if path:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text + "\n")
        os.rename(tmp, path)


def classify(e):
    if isinstance(e, (ConnectionRefusedError, ConnectionResetError)):
        return "refused"
    if isinstance(e, asyncio.IncompleteReadError):
        return "refused" if not e.partial else "failed"
    return "failed"


async def hold_one(host, port, i, sem, deadline):
    token = b"%015d\n" % i
    async with sem:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), max(1, deadline - now()))
    try:
        writer.write(b"ECHO\n" + token)
        await writer.drain()
        got = await asyncio.wait_for(reader.readexactly(TOKEN_LEN),
                                     max(1, deadline - now()))
    except BaseException:
        writer.close()
        raise
    if got != token:
        writer.close()
        raise ValueError("flow %d: echo %r, want %r" % (i, got, token))
    return reader, writer


async def hold_main(a):
    t0 = now()
    deadline = t0 + a.timeout
    sem = asyncio.Semaphore(a.inflight)
    tasks = [asyncio.ensure_future(hold_one(a.host, a.port, i, sem, deadline))
             for i in range(a.flows)]
    done, pending = await asyncio.wait(tasks, timeout=a.timeout)
    for t in pending:
        t.cancel()
    held, counts, first = [], {"refused": 0, "failed": len(pending)}, None
    for t in done:
        e = t.exception()
        if e is None:
            held.append(t.result())
            continue
        counts[classify(e)] += 1
        if first is None:
            first = "%s: %s" % (type(e).__name__, e)
    res = "ok %d refused %d failed %d" % (len(held), counts["refused"],
                                          counts["failed"])
    write_peak(a.peak, res)
    await wait_release(a.release, deadline)
    # a flow still open at the release must still answer
    late = 0
    for r, w in held:
        if r.at_eof() or w.is_closing():
            late += 1
    for _, w in held:
        w.close()
    await asyncio.sleep(0)
    print("%s closed-early %d %.1f%s" % (res, late, now() - t0,
                                         "; first error: " + first if first else ""))
    return 0 if counts["refused"] + counts["failed"] + late == 0 else 1


async def stall_one(host, port, size, sem, deadline):
    # a small receive buffer (no autotuning) so that the window closes
    # soon after the client stops reading, as for a stuck application;
    # autotuned, each would first soak up megabytes
    s = socket.socket(family(host), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
    s.setblocking(False)
    async with sem:
        try:
            await asyncio.wait_for(
                asyncio.get_running_loop().sock_connect(s, (host, port)),
                max(1, deadline - now()))
            reader, writer = await asyncio.open_connection(sock=s,
                                                           limit=1 << 16)
        except BaseException:
            s.close()
            raise
    try:
        writer.write(b"SEND %d\n" % size)
        await writer.drain()
        await asyncio.wait_for(reader.readexactly(64 << 10),
                               max(1, deadline - now()))
        # stop reading for good: no task reads from this socket again
        writer.transport.pause_reading()
    except BaseException:
        writer.close()
        raise
    return writer


async def stall_main(a):
    t0 = now()
    deadline = t0 + a.timeout
    sem = asyncio.Semaphore(64)
    tasks = [asyncio.ensure_future(stall_one(a.host, a.port, a.size, sem,
                                             deadline))
             for _ in range(a.flows)]
    done, pending = await asyncio.wait(tasks, timeout=a.timeout)
    for t in pending:
        t.cancel()
    writers = [t.result() for t in done if t.exception() is None]
    failed = a.flows - len(writers)
    res = "stalled %d failed %d" % (len(writers), failed)
    write_peak(a.peak, res)
    await wait_release(a.release, deadline)
    for w in writers:
        w.close()
    await asyncio.sleep(0)
    print("%s %.1f" % (res, now() - t0))
    return 0 if failed == 0 else 1


def download_main(a):
    if a.socks:
        paddr, pport = a.socks.rsplit(",", 1)
        s = socket.create_connection((paddr, int(pport)), timeout=10)
        s.sendall(b"\5\1\0")
        if s.recv(2) != b"\5\0":
            print("bad: socks5 method refused")
            return 1
        fam = family(a.host)
        s.sendall(b"\5\1\0" + (b"\1" if fam == socket.AF_INET else b"\4") +
                  socket.inet_pton(fam, a.host) + struct.pack("!H", a.port))
        rep = b""
        while len(rep) < 10:
            d = s.recv(10 - len(rep))
            if not d:
                break
            rep += d
        if rep[:2] != b"\5\0":
            print("bad: socks5 connect refused: %r" % rep)
            return 1
        if fam == socket.AF_INET6:
            s.recv(12)
    else:
        s = socket.create_connection((a.host, a.port), timeout=10)
    s.sendall(b"SEND %d\n" % (64 << 30))
    buf = bytearray(1 << 20)
    n = 0
    t0 = now()
    end = t0 + a.seconds
    s.settimeout(max(1.0, a.seconds))
    try:
        while True:
            t = now()
            if t >= end:
                break
            s.settimeout(max(0.05, end - t))
            got = s.recv_into(buf)
            if not got:
                break
            n += got
    except socket.timeout:
        pass
    el = now() - t0
    s.close()
    print("gbps %.2f bytes %d %.1f" % (n * 8 / el / 1e9, n, el))
    return 0


# ---- packet flood -----------------------------------------------------------

def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff


def v4_addr(rnd, net):
    return bytes([198, 18, net, rnd.randrange(1, 255)])


def v6_addr(rnd, net):
    return (bytes.fromhex("20010db80018%04x" % net) + bytes(6) +
            struct.pack("!H", rnd.randrange(1, 0xffff)))


def tcp_seg(rnd, src, dst, v6, flags=None, opts=None, doff=None, good=True,
            payload=b""):
    if opts is None:
        opts = b""
    opts += b"\0" * (-len(opts) % 4)
    if doff is None:
        doff = 5 + len(opts) // 4
    flags = rnd.randrange(256) if flags is None else flags
    hdr = struct.pack("!HHIIBBHHH", rnd.randrange(1, 65536),
                      rnd.choice([80, 7000, rnd.randrange(1, 65536)]),
                      rnd.getrandbits(32), rnd.getrandbits(32),
                      (doff & 15) << 4, flags, rnd.randrange(65536), 0, 0)
    seg = hdr + opts + payload
    if v6:
        pseudo = src + dst + struct.pack("!IxxxB", len(seg), 6)
    else:
        pseudo = src + dst + struct.pack("!xBH", 6, len(seg))
    c = csum(pseudo + seg) if good else rnd.randrange(65536)
    return seg[:16] + struct.pack("!H", c) + seg[18:]


def ip4(rnd, proto, payload, src=None, dst=None, tot=None, ihl=5, frag=0,
        good=True, opts=b""):
    src = src or v4_addr(rnd, 0)
    dst = dst or v4_addr(rnd, 1)
    opts += b"\0" * (-len(opts) % 4)
    ihl_v = ihl if ihl is not None else 5 + len(opts) // 4
    length = 20 + len(opts) + len(payload) if tot is None else tot
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | (ihl_v & 15), 0, length & 0xffff,
                      rnd.getrandbits(16), frag, rnd.randrange(1, 256), proto,
                      0, src, dst) + opts
    c = csum(hdr) if good else rnd.randrange(65536)
    return hdr[:10] + struct.pack("!H", c) + hdr[12:] + payload


def ip6(rnd, nh, payload, src=None, dst=None, plen=None):
    src = src or v6_addr(rnd, 0)
    dst = dst or v6_addr(rnd, 1)
    plen = len(payload) if plen is None else plen
    return struct.pack("!IHBB16s16s", 0x60000000 | rnd.getrandbits(20),
                       plen & 0xffff, nh, rnd.randrange(1, 256), src,
                       dst) + payload


def rand_opts(rnd):
    return bytes(rnd.getrandbits(8) for _ in range(rnd.choice([1, 3, 7, 12, 20, 40])))


def pkt_kinds(rnd, mtu):
    """Return a list of generators of one hostile packet each."""
    local4 = bytes([198, 18, 0, 1])

    def rnd_bytes(n):
        return rnd.randbytes(n) if hasattr(rnd, "randbytes") else \
            bytes(rnd.getrandbits(8) for _ in range(n))

    def random_v4():
        n = rnd.randrange(1, 120)
        return bytes([0x40 | rnd.randrange(16)]) + rnd_bytes(n)

    def random_v6():
        return bytes([0x60 | rnd.randrange(16)]) + rnd_bytes(rnd.randrange(1, 120))

    def random_any():
        return rnd_bytes(rnd.randrange(1, 200))

    def bad_len4():
        s, d = v4_addr(rnd, 0), v4_addr(rnd, 1)
        seg = tcp_seg(rnd, s, d, False, payload=rnd_bytes(rnd.randrange(0, 64)))
        tot = rnd.choice([0, 1, 19, 20, 21, len(seg) + 20 + rnd.randrange(1, 2000),
                          65535, rnd.randrange(65536)])
        return ip4(rnd, 6, seg, s, d, tot=tot)

    def bad_ihl4():
        s, d = v4_addr(rnd, 0), v4_addr(rnd, 1)
        seg = tcp_seg(rnd, s, d, False)
        return ip4(rnd, 6, seg, s, d, ihl=rnd.choice([0, 1, 4, 6, 15]))

    def bad_ipsum4():
        s, d = v4_addr(rnd, 0), v4_addr(rnd, 1)
        return ip4(rnd, 6, tcp_seg(rnd, s, d, False), s, d, good=False)

    def trunc_tcp4():
        s, d = v4_addr(rnd, 0), v4_addr(rnd, 1)
        seg = tcp_seg(rnd, s, d, False)[:rnd.randrange(0, 20)]
        return ip4(rnd, 6, seg, s, d)

    def bad_doff4():
        s, d = v4_addr(rnd, 0), v4_addr(rnd, 1)
        seg = tcp_seg(rnd, s, d, False, doff=rnd.choice([0, 1, 4, 6, 15]),
                      payload=rnd_bytes(rnd.randrange(0, 8)))
        return ip4(rnd, 6, seg, s, d)

    def opt_garbage4():
        s, d = rnd.choice([local4, v4_addr(rnd, 0)]), v4_addr(rnd, 1)
        seg = tcp_seg(rnd, s, d, False, flags=rnd.choice([0x02, 0x10, 0x12, 0x18, None]),
                      opts=rand_opts(rnd), payload=rnd_bytes(rnd.randrange(0, 32)))
        return ip4(rnd, 6, seg, s, d)

    def bad_tcpsum4():
        s, d = v4_addr(rnd, 0), v4_addr(rnd, 1)
        return ip4(rnd, 6, tcp_seg(rnd, s, d, False, flags=0x02, good=False), s, d)

    def syn_spoofed4():
        s, d = v4_addr(rnd, 0), v4_addr(rnd, 1)
        mss = b"\x02\x04\x05\xb4"
        return ip4(rnd, 6, tcp_seg(rnd, s, d, False, flags=0x02, opts=mss), s, d)

    def syn_local4():
        d = v4_addr(rnd, 1)
        return ip4(rnd, 6, tcp_seg(rnd, local4, d, False, flags=0x02), local4, d)

    def frag4():
        s, d = v4_addr(rnd, 0), v4_addr(rnd, 1)
        off = rnd.choice([0, 1, 8, 100, 0x1fff])
        mf = rnd.choice([0x2000, 0x2000, 0])
        body = rnd_bytes(rnd.choice([8, 16, 64, 512, 1400]) if mtu > 1500 else 64)
        return ip4(rnd, rnd.choice([6, 17, 1]), body, s, d, frag=mf | off)

    def ip_opts4():
        s, d = v4_addr(rnd, 0), v4_addr(rnd, 1)
        return ip4(rnd, 6, tcp_seg(rnd, s, d, False), s, d, ihl=None,
                   opts=rand_opts(rnd)[:40])

    def other_proto4():
        s, d = v4_addr(rnd, 0), v4_addr(rnd, 1)
        return ip4(rnd, rnd.choice([1, 17, 41, 47, 58, 132, 255]),
                   rnd_bytes(rnd.randrange(0, 64)), s, d)

    def bad_plen6():
        s, d = v6_addr(rnd, 0), v6_addr(rnd, 1)
        seg = tcp_seg(rnd, s, d, True)
        return ip6(rnd, 6, seg, s, d, plen=rnd.choice([0, 1, 19, len(seg) + 100, 65535]))

    def trunc_tcp6():
        s, d = v6_addr(rnd, 0), v6_addr(rnd, 1)
        return ip6(rnd, 6, tcp_seg(rnd, s, d, True)[:rnd.randrange(0, 20)], s, d)

    def ext_hdrs6():
        s, d = v6_addr(rnd, 0), v6_addr(rnd, 1)
        nh = rnd.choice([0, 43, 44, 60, 59, 135, 139])
        return ip6(rnd, nh, bytes([rnd.choice([6, 0, 44, 60])]) + rnd_bytes(rnd.randrange(1, 80)), s, d)

    def opt_garbage6():
        s, d = v6_addr(rnd, 0), v6_addr(rnd, 1)
        seg = tcp_seg(rnd, s, d, True, opts=rand_opts(rnd),
                      payload=rnd_bytes(rnd.randrange(0, 32)))
        return ip6(rnd, 6, seg, s, d)

    def syn6():
        s, d = v6_addr(rnd, 0), v6_addr(rnd, 1)
        return ip6(rnd, 6, tcp_seg(rnd, s, d, True, flags=0x02), s, d)

    return [random_v4, random_v6, random_any, bad_len4, bad_ihl4, bad_ipsum4,
            trunc_tcp4, bad_doff4, opt_garbage4, bad_tcpsum4, syn_spoofed4,
            syn_local4, frag4, ip_opts4, other_proto4, bad_plen6, trunc_tcp6,
            ext_hdrs6, opt_garbage6, syn6]


def flood_main(a):
    rnd = random.Random(a.seed)
    kinds = pkt_kinds(rnd, 1500)
    # pre-build a pool: generating is slower than sending
    pool = []
    for i in range(min(a.packets, 20000)):
        p = kinds[i % len(kinds)]()
        pool.append((p, 0x86DD if p and p[0] >> 4 == 6 else 0x0800))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM)
    s.bind((a.iface, 0))
    t0 = now()
    sent = errors = 0
    i = 0
    rate = a.packets / a.seconds  # spread the flood over the whole time
    while sent + errors < a.packets and now() - t0 < a.seconds:
        p, proto = pool[i % len(pool)]
        i += 1
        if i % 256 == 0:
            ahead = i / rate - (now() - t0)
            if ahead > 0:
                time.sleep(ahead)
        try:
            s.sendto(p, (a.iface, proto))
            sent += 1
        except OSError as e:
            errors += 1
            if e.errno in (errno.ENOBUFS, errno.EAGAIN):
                time.sleep(0.001)
            elif e.errno in (errno.ENODEV, errno.ENXIO, errno.ENETDOWN):
                break
    s.close()
    print("sent %d errors %d %.1f" % (sent, errors, now() - t0))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("server")
    p.add_argument("--listen", action="append", required=True)
    p.add_argument("--ready")
    p.add_argument("--lifetime", type=float, default=900)
    p = sub.add_parser("hold")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("flows", type=int)
    p.add_argument("timeout", type=float)
    p.add_argument("--peak")
    p.add_argument("--release")
    p.add_argument("--inflight", type=int, default=256)
    p = sub.add_parser("stall")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("flows", type=int)
    p.add_argument("size", type=int)
    p.add_argument("timeout", type=float)
    p.add_argument("--peak")
    p.add_argument("--release")
    p = sub.add_parser("download")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("seconds", type=float)
    p.add_argument("--socks")
    p = sub.add_parser("flood")
    p.add_argument("iface")
    p.add_argument("packets", type=int)
    p.add_argument("seconds", type=float)
    p.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    raise_nofile(65536)
    if a.cmd == "server":
        asyncio.run(server_main(a))
        return 0
    if a.cmd == "flood":
        return flood_main(a)
    if a.cmd == "download":
        try:
            return download_main(a)
        except OSError as e:
            print("bad: %s: %s" % (type(e).__name__, e))
            return 1
    try:
        return asyncio.run(hold_main(a) if a.cmd == "hold" else stall_main(a))
    except OSError as e:
        print("bad: %s: %s" % (type(e).__name__, e))
        return 1


if __name__ == "__main__":
    sys.exit(main())
