#!/usr/bin/env python3
"""system_tool.py - helpers of sluice's system suite (tests/e2e/system.sh).

Every wait is bounded.  Each command prints result lines the shell makes
its assertions on, and exits 0 when it could run at all.

  notify SOCKET --log FILE --ready FILE [--connect HOST,PORT] [--lifetime S]
        the service manager's side of sd_notify(3): bind an AF_UNIX datagram
        socket at SOCKET (a path, or @NAME for the abstract namespace), write
        FILE --ready, and log every datagram to FILE --log, one line each:
          msg MS PID UID A|B|C     (MS: milliseconds since the start, PID
                                    and UID of the sender from SO_PASSCRED,
                                    the message's lines joined by "|")
        On the first message with READY=1, at once: an HTTP GET / of
        --connect HOST,PORT (through the tunnel), then
          connect ok MS            the greeting came back (MS: how long)
          connect fail MS WHY      it did not
        Ends after a message with STOPPING=1 (or after --lifetime).
  metrics FILE [--dump OUT]
        validate a Prometheus text exposition (a /metrics scrape) with
        prometheus_client's parser and the suite's rules: every family
        parses and has HELP, names start with sluice_, counters end in
        _total, no sample twice, no negative value, histogram buckets
        cumulative with le="+Inf" equal to _count.  Prints "ok families=N
        samples=M" or one "bad WHY" line per problem; --dump writes every
        sample as 'NAME{K="V",...} VALUE' (labels sorted), one per line.
  status FILE
        FILE (a /status reply) is one JSON object with the expected keys
        and types: "ok KEY=VALUE ..." or "bad WHY".
"""

import argparse
import json
import math
import os
import select
import socket
import struct
import sys
import time


def now_ms(t0):
    return int((time.monotonic() - t0) * 1000)


# ---- notify -------------------------------------------------------------------

def http_greeting(host, port, timeout):
    """GET / from srv.py's http mode; (True, "") or (False, why)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while len(data) < 65536:
            d = s.recv(4096)
            if not d:
                break
            data += d
    except OSError as e:
        return False, "%s" % (e.strerror or type(e).__name__)
    finally:
        s.close()
    if b"hello from ns u" in data:
        return True, ""
    return False, "unexpected reply %r" % data[:80]


def notify_main(a):
    t0 = time.monotonic()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    if a.socket.startswith("@"):
        s.bind("\0" + a.socket[1:])
    else:
        try:
            os.unlink(a.socket)
        except FileNotFoundError:
            pass
        s.bind(a.socket)
    log = open(a.log, "a", buffering=1)
    with open(a.ready + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(a.ready + ".tmp", a.ready)
    connected = False
    deadline = t0 + a.lifetime
    ucred = struct.calcsize("3i")
    while time.monotonic() < deadline:
        r, _, _ = select.select([s], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            break
        msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(ucred))
        pid = uid = -1
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid, uid, _ = struct.unpack("3i", data[:ucred])
        text = msg.decode("utf-8", "replace")
        lines = text.split("\n")
        log.write("msg %d %d %d %s\n" % (now_ms(t0), pid, uid, "|".join(lines)))
        if "READY=1" in lines and a.connect and not connected:
            connected = True
            host, port = a.connect.rsplit(",", 1)
            c0 = time.monotonic()
            ok, why = http_greeting(host, int(port), 5)
            el = int((time.monotonic() - c0) * 1000)
            if ok:
                log.write("connect ok %d\n" % el)
            else:
                log.write("connect fail %d %s\n" % (el, why))
        if "STOPPING=1" in lines:
            break
    log.write("end %d\n" % now_ms(t0))
    log.close()
    s.close()
    if not a.socket.startswith("@"):
        try:
            os.unlink(a.socket)
        except OSError:
            pass
    return 0


# ---- metrics ------------------------------------------------------------------

def sample_key(name, labels):
    if not labels:
        return name
    return "%s{%s}" % (name, ",".join('%s="%s"' % (k, labels[k])
                                      for k in sorted(labels)))


def metrics_main(a):
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        print("bad prometheus_client is not installed for %s" % sys.executable)
        return 1
    with open(a.file, encoding="utf-8") as f:
        text = f.read()
    bad = []
    # the raw TYPE and HELP lines: the parser drops _total from the names
    # of counter families, so the rule on names is checked on the text
    types, helps = {}, set()
    for line in text.splitlines():
        w = line.split(None, 3)
        if len(w) >= 4 and w[0] == "#" and w[1] == "TYPE":
            if w[2] in types:
                bad.append("TYPE of %s given twice" % w[2])
            types[w[2]] = w[3]
        elif len(w) >= 4 and w[0] == "#" and w[1] == "HELP":
            helps.add(w[2])
    for name, kind in types.items():
        if not name.startswith("sluice_"):
            bad.append("%s: name does not start with sluice_" % name)
        if kind == "counter" and not name.endswith("_total"):
            bad.append("counter %s does not end in _total" % name)
        if kind != "counter" and name.endswith("_total"):
            bad.append("%s %s ends in _total but is no counter" % (kind, name))
        if name not in helps:
            bad.append("%s has no HELP" % name)
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as e:  # the parser raises ValueError and others
        print("bad the parser refused the scrape: %s: %s" % (type(e).__name__, e))
        return 0
    seen = {}
    nsamples = 0
    for fam in families:
        if not fam.name.startswith("sluice_"):
            bad.append("family %s: name does not start with sluice_" % fam.name)
        if not fam.documentation:
            bad.append("family %s has no HELP" % fam.name)
        if fam.type == "unknown":
            bad.append("family %s has no TYPE" % fam.name)
        if not fam.samples:
            bad.append("family %s has no sample" % fam.name)
        buckets = []
        count = None
        for smp in fam.samples:
            nsamples += 1
            key = sample_key(smp.name, smp.labels)
            if key in seen:
                bad.append("sample %s given twice" % key)
            seen[key] = smp.value
            if math.isnan(smp.value) or smp.value < 0:
                bad.append("sample %s = %r" % (key, smp.value))
            if fam.type == "counter" and not smp.name.endswith("_total"):
                bad.append("counter sample %s does not end in _total" % smp.name)
            if smp.name.endswith("_ratio") and smp.value > 1:
                bad.append("ratio %s = %r > 1" % (key, smp.value))
            if fam.type == "histogram":
                if smp.name.endswith("_bucket"):
                    buckets.append((float(smp.labels["le"]), smp.value))
                elif smp.name.endswith("_count"):
                    count = smp.value
        if fam.type == "histogram":
            if not buckets or buckets[-1][0] != math.inf:
                bad.append("histogram %s: no le=\"+Inf\" bucket last" % fam.name)
            elif buckets[-1][1] != count:
                bad.append("histogram %s: +Inf bucket %r != _count %r"
                           % (fam.name, buckets[-1][1], count))
            for (le0, v0), (le1, v1) in zip(buckets, buckets[1:]):
                if le1 <= le0 or v1 < v0:
                    bad.append("histogram %s: bucket le=%g (%r) after le=%g (%r)"
                               % (fam.name, le1, v1, le0, v0))
    if a.dump:
        with open(a.dump, "w") as f:
            for key in sorted(seen):
                v = seen[key]
                f.write("%s %s\n" % (key, int(v) if v == int(v) else repr(v)))
    for b in bad:
        print("bad %s" % b)
    if not bad:
        print("ok families=%d samples=%d" % (len(families), nsamples))
    return 0


# ---- status -------------------------------------------------------------------

STATUS_KEYS = {
    "upstream": str, "flows_active": int, "flows_accepted": int,
    "flows_refused": int, "bytes_up": int, "bytes_down": int,
    "udp_associations": int, "rss_bytes": int, "open_fds": int,
}


def status_main(a):
    try:
        with open(a.file, encoding="utf-8") as f:
            d = json.load(f)
    except (OSError, ValueError) as e:
        print("bad not JSON: %s" % e)
        return 0
    if not isinstance(d, dict):
        print("bad not a JSON object: %r" % d)
        return 0
    for k, t in STATUS_KEYS.items():
        if k not in d:
            print("bad no key %s" % k)
            return 0
        if not isinstance(d[k], t) or isinstance(d[k], bool):
            print("bad %s is %r, want %s" % (k, d[k], t.__name__))
            return 0
    print("ok " + " ".join("%s=%s" % (k, d[k]) for k in sorted(d)))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("notify")
    q.add_argument("socket")
    q.add_argument("--log", required=True)
    q.add_argument("--ready", required=True)
    q.add_argument("--connect")
    q.add_argument("--lifetime", type=float, default=120)
    q = sub.add_parser("metrics")
    q.add_argument("file")
    q.add_argument("--dump")
    q = sub.add_parser("status")
    q.add_argument("file")
    a = p.parse_args()
    return {"notify": notify_main, "metrics": metrics_main,
            "status": status_main}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
