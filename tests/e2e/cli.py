#!/usr/bin/env python3
"""cli.py - test clients for sluice's end-to-end tests (run in ns "t").

They talk to srv.py's "raw" mode.  Each prints one result line (the shell
harness makes the assertions) and exits 0 when the exchange itself went as
the protocol says, 1 otherwise.  Every wait is bounded.

  connect  HOST PORT TIMEOUT            "refused S" | "connected S" |
                                        "timeout S" | "error ERRNO S"
  half     HOST PORT SIZE               send SIZE bytes, shut the write side,
                                        check the answer: "ok N SHA" | "bad ..."
  multi    HOST PORT FLOWS SIZE TIMEOUT FLOWS concurrent echo flows of SIZE
                                        bytes each: "ok FLOWS" | "bad ..."
  multi-late HOST PORT FLOWS SIZE TIMEOUT
                                        the same, but each flow shuts its
                                        write side only after the whole echo
                                        came back (stunnel 5.68 loses data
                                        when the client half-closes first)
  slowread HOST PORT ID SIZE CHUNK PAUSE MAXTIME
                                        download SIZE bytes reading CHUNK
                                        bytes then sleeping PAUSE seconds:
                                        "done N SHA S" | "incomplete N S"
  maxflows HOST PORT                    hold two echo flows, try a third, then
                                        close the two and connect again
  idle     HOST PORT MAXWAIT            one echo round trip, then wait for the
                                        tunnel to close the idle connection:
                                        "closed eof|reset S" | "open S"
"""

import asyncio
import errno
import hashlib
import os
import socket
import sys
import time


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def now():
    return time.monotonic()


def try_connect(host, port, timeout):
    """Return (status, socket or None, elapsed)."""
    s = socket.socket(family(host), socket.SOCK_STREAM)
    s.settimeout(timeout)
    t0 = now()
    try:
        s.connect((host, port))
        return "connected", s, now() - t0
    except ConnectionRefusedError:
        s.close()
        return "refused", None, now() - t0
    except socket.timeout:
        s.close()
        return "timeout", None, now() - t0
    except OSError as e:
        s.close()
        return "error %s" % errno.errorcode.get(e.errno, e.errno), None, now() - t0


def cmd_connect(host, port, timeout):
    st, s, el = try_connect(host, port, float(timeout))
    if s:
        s.close()
    print("%s %.3f" % (st, el))
    return 0


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        d = s.recv(min(1 << 20, n - len(buf)))
        if not d:
            break
        buf += d
    return bytes(buf)


def recv_all(s, limit):
    buf = bytearray()
    while len(buf) <= limit:
        d = s.recv(1 << 20)
        if not d:
            break
        buf += d
    return bytes(buf)


def cmd_half(host, port, size):
    size = int(size)
    data = os.urandom(size)
    digest = hashlib.sha256(data).hexdigest()
    s = socket.create_connection((host, port), timeout=30)
    s.sendall(b"HALF\n" + data)
    s.shutdown(socket.SHUT_WR)
    ans = recv_all(s, size + 4096)
    s.close()
    if b"\n" not in ans:
        print("bad: no header in answer (%d bytes)" % len(ans))
        return 1
    head, body = ans.split(b"\n", 1)
    want = ("%d %s" % (size, digest)).encode()
    if head != want:
        print("bad: server saw %r, client sent %r" % (head[:100], want))
        return 1
    if body != data:
        print("bad: echoed body differs (%d bytes, want %d)" % (len(body), size))
        return 1
    print("ok %d %s" % (size, digest))
    return 0


async def one_echo(host, port, size, i, late_eof):
    data = os.urandom(size)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        async def send():
            writer.write(b"ECHO\n")
            view = memoryview(data)
            for off in range(0, size, 65536):
                writer.write(view[off:off + 65536])
                await writer.drain()
            if not late_eof:
                writer.write_eof()
                await writer.drain()

        async def recv():
            h = hashlib.sha256()
            n = 0
            while True:
                d = await reader.read(1 << 18)
                if not d:
                    break
                h.update(d)
                n += len(d)
                if n > size or (late_eof and n == size):
                    break
            return n, h.hexdigest()

        _, (n, got) = await asyncio.gather(send(), recv())
        rest = b""
        if late_eof:
            writer.write_eof()
            rest = await reader.read(1)
    finally:
        writer.close()
    if n != size or got != hashlib.sha256(data).hexdigest():
        return "flow %d: got %d bytes, want %d%s" % (
            i, n, size, "" if n != size else ", checksum differs")
    if rest:
        return "flow %d: extra data after the echo" % i
    return None


async def multi(host, port, flows, size, timeout, late_eof):
    tasks = [asyncio.ensure_future(one_echo(host, port, size, i, late_eof))
             for i in range(flows)]
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    for t in pending:
        t.cancel()
    errs = []
    for t in done:
        if t.cancelled():
            continue
        e = t.exception()
        if e is not None:
            errs.append(repr(e))
        elif t.result():
            errs.append(t.result())
    ok = flows - len(errs) - len(pending)
    return ok, errs, len(pending)


def cmd_multi(host, port, flows, size, timeout, late_eof=False):
    flows, size, timeout = int(flows), int(size), float(timeout)
    t0 = now()
    ok, errs, pending = asyncio.run(multi(host, port, flows, size, timeout,
                                          late_eof))
    el = now() - t0
    if ok == flows:
        print("ok %d %.1f" % (flows, el))
        return 0
    print("bad: %d/%d intact, %d failed, %d unfinished after %.0f s; first: %s"
          % (ok, flows, len(errs), pending, el, errs[0] if errs else "-"))
    return 1


def cmd_slowread(host, port, ident, size, chunk, pause, maxtime):
    size, chunk = int(size), int(chunk)
    pause, maxtime = float(pause), float(maxtime)
    s = socket.create_connection((host, port), timeout=30)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 17)
    s.sendall(("SEND %s %d\n" % (ident, size)).encode())
    h = hashlib.sha256()
    n = 0
    t0 = now()
    eof = False
    while not eof and now() - t0 < maxtime:
        got = 0
        while got < chunk:
            d = s.recv(chunk - got)
            if not d:
                eof = True
                break
            h.update(d)
            got += len(d)
        n += got
        if not eof:
            time.sleep(pause)
    el = now() - t0
    s.close()
    if eof:
        print("done %d %s %.1f" % (n, h.hexdigest(), el))
        return 0
    print("incomplete %d %.1f" % (n, el))
    return 1


def echo_open(host, port):
    st, s, _ = try_connect(host, port, 10)
    if not s:
        return st, None
    try:
        s.sendall(b"ECHO\nx")
        if recv_exact(s, 1) != b"x":
            s.close()
            return "no echo", None
    except OSError as e:
        s.close()
        return "echo failed: %s" % e, None
    return "ok", s


def cmd_maxflows(host, port):
    held = []
    for i in range(2):
        st, s = echo_open(host, port)
        if not s:
            print("bad: held flow %d: %s" % (i + 1, st))
            return 1
        held.append(s)
    st, s, el = try_connect(host, port, 10)
    third = st
    if s:
        # accepted: does it work, or is it reset right away?
        try:
            s.settimeout(3)
            s.sendall(b"ECHO\ny")
            third = "connected-and-echoed" if recv_exact(s, 1) == b"y" \
                else "connected-then-closed"
        except OSError as e:
            third = "connected-then-%s" % (
                "reset" if isinstance(e, ConnectionResetError) else "error")
        s.close()
    for h in held:
        h.close()
    # a slot must come free again once the held flows are gone
    t0 = now()
    after = "never"
    while now() - t0 < 10:
        st, s = echo_open(host, port)
        if s:
            s.close()
            after = "ok %.1f" % (now() - t0)
            break
        time.sleep(0.25)
    print("third=%s %.3f after=%s" % (third, el, after))
    return 0


def cmd_idle(host, port, maxwait):
    st, s = echo_open(host, port)
    if not s:
        print("bad: %s" % st)
        return 1
    s.settimeout(float(maxwait))
    t0 = now()
    try:
        d = s.recv(1)
        how = "eof" if not d else "data"
    except ConnectionResetError:
        how = "reset"
    except socket.timeout:
        how = None
    el = now() - t0
    s.close()
    print("closed %s %.2f" % (how, el) if how else "open %.2f" % el)
    return 0


CMDS = {
    "connect": (cmd_connect, 3),
    "half": (cmd_half, 3),
    "multi": (cmd_multi, 5),
    "multi-late": (lambda *a: cmd_multi(*a, late_eof=True), 5),
    "slowread": (cmd_slowread, 7),
    "maxflows": (cmd_maxflows, 2),
    "idle": (cmd_idle, 3),
}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in CMDS:
        sys.exit(__doc__)
    fn, nargs = CMDS[sys.argv[1]]
    args = sys.argv[2:]
    if len(args) != nargs:
        sys.exit(__doc__)
    args[1] = int(args[1])  # port
    try:
        sys.exit(fn(*args))
    except OSError as e:
        print("bad: %s: %s" % (type(e).__name__, e))
        sys.exit(1)


if __name__ == "__main__":
    main()
