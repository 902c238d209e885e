#!/usr/bin/env bash
# shellcheck disable=SC2034  # HAVE_* are read through ${!v} in need()
# workers.sh - sluice with several worker processes ([process] workers,
# --workers 2): one TUN queue each, shared limits, UDP steered to the
# worker that owns the source, a dead worker restarted, reload and stop
# reaching every worker.  In the namespaces of lib.sh, with danted on
# 1080 and microsocks on 1081; needs root.
#
#   tests/e2e/workers.sh            every case
#   tests/e2e/workers.sh NAME...    only the cases whose names contain a NAME
#
#   spread          40 echo flows of 256 KiB, each intact; SIGUSR1: both
#                   workers accepted some, and their "accepted" add up to
#                   the stats line's; the master's /metrics has the sum,
#                   each worker's share and sluice_workers 2
#   kill_worker     20 held echo flows over both workers; one worker
#                   SIGKILLed (by PID, a child of sluice): the master
#                   lives, a new worker starts and is logged; every held
#                   flow either still echoes or is reset / at EOF, at
#                   least one of each; 20 fresh flows then all work, some
#                   of them on the restarted worker
#   stuck_worker    the same with one worker SIGSTOPped instead: with
#                   --worker-timeout 3s the master logs that it has not
#                   run its loop and kills it; then as kill_worker
#   max_flows       --max-flows 10: of 30 held flows (opened one after
#                   the other, spread over both queues) exactly 10 work,
#                   the rest are refused; the stats line counts 20 over
#                   max_flows and 10 active, and so do the workers' lines
#   udp_one_mapping one UDP socket sends to 16 ports of the echo server,
#                   datagrams reach both workers, every reply comes back
#                   from the port it went to, and one association was
#                   opened, no more (the steering)
#   udp_fragments   4 UDP sockets at once (2 IPv4, 2 IPv6), 2000 echo
#                   datagrams each, 3 in 4 of them 8000 bytes (6
#                   fragments): each socket loses at most 1 (danted's own
#                   loss under load), none corrupt, duplicated or from the
#                   wrong source; both workers own associations (replies
#                   came from both) and fragments were handed from one
#                   worker to the other
#   reload          the file's [upstream] url changed from danted to
#                   microsocks, SIGHUP: the master logs the new upstream
#                   and 16 new held flows over both workers all reach
#                   microsocks (its established connections)
#   stop_with_flows SIGTERM while held flows and bulk transfers run: exit
#                   0 in time, TUN gone, no worker process left
#
# Every case ends with sluice stopped by SIGTERM: exit 0, TUN gone, no
# sanitizer report (lib.sh run_case).  The clients are wtool.py, written
# by setup into the work directory.
#
# Prints "ok NAME", "FAIL NAME: why" or "skip NAME: why" per case, then
# "workers: N passed, N failed, N skipped".  Exit status 0 when nothing
# failed.  Environment: SLUICE, SLUICE_WRAPPER, E2E_LOG_LEVEL, E2E_KEEP,
# E2E_ALLOW_MISSING (see lib.sh).
set -u

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
suite_init "$@"

UDPTOOL=$E2E_LIB_DIR/udptool.py
UP_DANTE=socks5://$U_V4:$PORT_DANTE
UP_MICRO=socks5://$U_V4:$PORT_MICRO
NW=2			# workers
UDP_PORT0=7100 UDP_DESTS=16	# the UDP echo server's ports
SPREAD_FLOWS=40 SPREAD_SIZE=$((256 << 10))
HELD=20
FRAG_SOCKS=4 FRAG_PORT0=41000 FRAG_COUNT=2000	# udp_fragments
TF=1	# time factor for bounds
if [ -n "$SLUICE_WRAPPER" ]; then
	TF=4 SPREAD_SIZE=$((64 << 10))
fi

# ---- the clients (Python, standard library only) ----------------------------

write_wtool() {
	cat >"$WORK/wtool.py" <<'EOF'
#!/usr/bin/env python3
"""wtool.py - clients for sluice's workers suite (tests/e2e/workers.sh).

  hold HOST PORT N DIR WAIT
        open N echo flows to srv.py's raw mode, one after the other (each
        its own source port), each checked with one round trip; write
        DIR/opened ("opened=K failed=F why=COUNT..."), then wait up to WAIT
        seconds for DIR/go or DIR/close.  On go, send a new line on every
        flow and check its echo: "ok=A reset=B eof=C timeout=D bad=E
        error=F"; on close (or the wait's end) just close them.
  udp HOST PORT0 N TIMEOUT
        one UDP socket sends a datagram to each of PORT0..PORT0+N-1 (again
        every second to those not yet answered) until all replied, each
        from the port it went to: "got=K of=N wrong=W rounds=R"
"""

import os
import select
import socket
import sys
import time


def now():
    return time.monotonic()


def why(e):
    if isinstance(e, ConnectionRefusedError):
        return "refused"
    if isinstance(e, ConnectionResetError):
        return "reset"
    if isinstance(e, socket.timeout):
        return "timeout"
    return "error-%s" % type(e).__name__


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        d = s.recv(n - len(buf))
        if not d:
            break
        buf += d
    return buf


def echo_open(host, port, i):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    line = b"open %d\n" % i
    try:
        s.connect((host, port))
        s.sendall(b"ECHO\n" + line)
        got = recv_exact(s, len(line))
    except OSError as e:
        s.close()
        return why(e), None
    if got != line:
        s.close()
        return "eof" if not got else "bad", None
    return "ok", s


def probe(conns):
    """Send a line on each flow, wait for every echo (10 s in all)."""
    res = {}
    want = {}
    got = {}
    for i, s in enumerate(conns):
        s.setblocking(False)
        want[i] = b"probe %d %s\n" % (i, os.urandom(8).hex().encode())
        got[i] = b""
        try:
            s.send(want[i])
        except OSError as e:
            res[i] = why(e)
    end = now() + 10
    while len(res) < len(conns) and now() < end:
        rd = [s for i, s in enumerate(conns) if i not in res]
        r, _, _ = select.select(rd, [], [], max(0, end - now()))
        for s in r:
            i = conns.index(s)
            try:
                d = s.recv(4096)
            except OSError as e:
                res[i] = why(e)
                continue
            if not d:
                res[i] = "eof"
                continue
            got[i] += d
            if got[i] == want[i]:
                res[i] = "ok"
            elif not want[i].startswith(got[i]):
                res[i] = "bad"
    for i in range(len(conns)):
        res.setdefault(i, "timeout")
    return res


def cmd_hold(host, port, n, d, wait):
    port, n, wait = int(port), int(n), float(wait)
    conns, fails = [], {}
    for i in range(n):
        st, s = echo_open(host, port, i)
        if s:
            conns.append(s)
        else:
            fails[st] = fails.get(st, 0) + 1
    with open(os.path.join(d, "opened.tmp"), "w") as f:
        f.write("opened=%d failed=%d %s\n" % (len(conns), n - len(conns),
                " ".join("%s=%d" % kv for kv in sorted(fails.items()))))
    os.rename(os.path.join(d, "opened.tmp"), os.path.join(d, "opened"))
    end = now() + wait
    while now() < end:
        if os.path.exists(os.path.join(d, "go")):
            break
        if os.path.exists(os.path.join(d, "close")):
            end = 0
            break
        time.sleep(0.05)
    if now() >= end:
        for s in conns:
            s.close()
        print("closed opened=%d" % len(conns))
        return 0
    res = probe(conns)
    for s in conns:
        s.close()
    n_of = {k: 0 for k in ("ok", "reset", "eof", "timeout", "bad")}
    other = 0
    for r in res.values():
        if r in n_of:
            n_of[r] += 1
        else:
            other += 1
    print("ok=%d reset=%d eof=%d timeout=%d bad=%d error=%d" % (
        n_of["ok"], n_of["reset"], n_of["eof"], n_of["timeout"],
        n_of["bad"], other))
    return 0


def cmd_udp(host, port0, n, timeout):
    port0, n, timeout = int(port0), int(n), float(timeout)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 0))
    want = {(host, port0 + i): b"dgram %d to %d\n" % (i, port0 + i)
            for i in range(n)}
    got, wrong, rounds = set(), 0, 0
    end = now() + timeout
    while len(got) < n and now() < end:
        rounds += 1
        for dst, data in want.items():
            if dst not in got:
                try:
                    s.sendto(data, dst)
                except OSError:
                    pass
        t = min(now() + 1, end)
        while len(got) < n and now() < t:
            r, _, _ = select.select([s], [], [], max(0, t - now()))
            if not r:
                continue
            try:
                data, src = s.recvfrom(65535)
            except OSError:
                continue
            if want.get(src) == data:
                got.add(src)
            else:
                wrong += 1
    print("got=%d of=%d wrong=%d rounds=%d" % (len(got), n, wrong, rounds))
    return 0


CMDS = {"hold": (cmd_hold, 5), "udp": (cmd_udp, 4)}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in CMDS or \
            len(sys.argv) - 2 != CMDS[sys.argv[1]][1]:
        sys.exit(__doc__)
    sys.exit(CMDS[sys.argv[1]][0](*sys.argv[2:]))
EOF
}

# ---- set-up ---------------------------------------------------------------

# start_udp_echo: udptool.py's echo server in ns u on UDP_DESTS ports.
start_udp_echo() {
	local i l=()
	for ((i = 0; i < UDP_DESTS; i++)); do
		l+=(-l "$DST_V4,$((UDP_PORT0 + i))")
	done
	l+=(-l "$DST_V6,$UDP_PORT0")	# udp_fragments over IPv6
	rm -f "$WORK/echo.ready"
	start_bg echo "$NS_U" "$PY" "$UDPTOOL" server --ready "$WORK/echo.ready" \
		--lifetime 1800 "${l[@]}"
	wait_for 10 test -s "$WORK/echo.ready"
}

HAVE_DANTE=0 HAVE_MICRO=0 HAVE_SRV=0 HAVE_ECHO=0
setup() {
	suite_copy_sluice || return 1
	"$SLUICE" -t --workers "$NW" --upstream "$UP_DANTE" >/dev/null 2>&1 ||
		{ SETUP_ERR="$SLUICE -t rejects --workers $NW"; return 1; }
	suite_topo_up || return 1
	write_wtool
	start_servers && HAVE_SRV=1
	suite_big_file $((32 << 20)) || return 1
	HAVE_ECHO=2
	start_udp_echo && HAVE_ECHO=1
	# HAVE_*: 1 running, 0 not installed, 2 failed to start
	suite_start_dante
	if command -v microsocks >/dev/null; then
		HAVE_MICRO=2
		start_microsocks micro "$PORT_MICRO" && HAVE_MICRO=1
	fi
	suite_servers_ok
}

# ---- helpers --------------------------------------------------------------

# worker_pids: the live children of sluice (its workers), one a line.
worker_pids() {
	local p
	for p in $(ps -o pid= --ppid "$SLUICE_PID" 2>/dev/null); do
		pid_alive "$p" && echo "$p"
	done
}

# workers_running N: sluice has N live children.
workers_running() { [ "$(worker_pids | wc -l)" -eq "$1" ]; }

# stats: SIGUSR1; the summed line in STATS, worker i's line in WLINE[i].
# Fails the case if a line is missing.
stats() {
	local i line
	STATS=$(sluice_stats) || why "no stats line after SIGUSR1" || return 1
	WLINE=()
	for ((i = 0; i < NW; i++)); do
		line=$(grep -E "worker $i: flows [0-9]+ active" "$SLUICE_LOG" | tail -n 1)
		[ -n "$line" ] || why "no per-worker line for worker $i after SIGUSR1" || return 1
		WLINE[i]=${line#*worker "$i": }
	done
}

# st WORD / wst I WORD: the number before WORD in STATS / in worker I's
# line (0 if absent, so checks fail).
st() {
	local v
	v=$(stat_field "$STATS" "$1")
	echo "${v:-0}"
}
wst() {
	local v
	v=$(stat_field " ${WLINE[$1]}" "$2")
	echo "${v:-0}"
}

# both_workers WORD: worker 0's and worker 1's WORD are both above 0.
both_workers() {
	if [ "$(wst 0 "$1")" -eq 0 ] || [ "$(wst 1 "$1")" -eq 0 ]; then
		why "not both workers have $1: 0: ${WLINE[0]}; 1: ${WLINE[1]}"
	fi
}

# hold_start N: wtool.py hold in the background, N flows to srv.py's echo;
# waits until they are open.  HOLD_PID, HOLD_DIR, HOLD_OPENED (its line).
HOLD_N=0
hold_start() {
	HOLD_N=$((HOLD_N + 1))
	HOLD_DIR=$WORK/hold-$CASE-$HOLD_N
	mkdir -p "$HOLD_DIR"
	start_bg "hold-$CASE-$HOLD_N" "$NS_T" timeout -k 2 $((120 * TF)) \
		"$PY" "$WORK/wtool.py" hold "$DST_V4" "$PORT_RAW" "$1" "$HOLD_DIR" $((90 * TF))
	HOLD_PID=$BG_PID
	wait_for $((30 * TF)) test -s "$HOLD_DIR/opened" ||
		why "wtool.py hold: no flows opened within $((30 * TF)) s: $(cat "$WORK/hold-$CASE-$HOLD_N.log")" ||
		return 1
	HOLD_OPENED=$(cat "$HOLD_DIR/opened")
}

# hold_end go|close: tell the held flows to check their echo (go) or to
# close; waits for the client; its result line in HOLD_OUT.
hold_end() {
	touch "$HOLD_DIR/$1"
	wait_for $((30 * TF)) pid_gone "$HOLD_PID"
	stop_pid "$HOLD_PID" 2
	HOLD_OUT=$(tail -n 1 "$WORK/hold-$CASE-$HOLD_N.log")
}

# kv LINE KEY: the value of KEY=VALUE in a wtool.py result line.
kv() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }

# established NS PORT: TCP connections established to local port PORT.
established() {
	ip netns exec "$1" ss -Htn state established "( sport = :$2 )" 2>/dev/null | wc -l
}

# ---- the cases ------------------------------------------------------------

case_spread() {
	need HAVE_DANTE || return
	local out a0 a1
	sluice_up --upstream "$UP_DANTE" --workers "$NW" --metrics 9468 || return 1
	grep 'ready: ' "$SLUICE_LOG" | grep -q ", $NW workers" ||
		why "ready line does not say $NW workers: $(grep 'ready: ' "$SLUICE_LOG")" || return 1
	workers_running "$NW" || why "$(worker_pids | wc -l) worker processes, want $NW" || return 1
	out=$(tcli $((90 * TF)) multi "$DST_V4" "$PORT_RAW" "$SPREAD_FLOWS" "$SPREAD_SIZE" \
		$((60 * TF)) 2>&1)
	case $out in "ok $SPREAD_FLOWS "*) ;; *) why "${out:-no output from the client}"; return 1 ;; esac
	stats || return 1
	a0=$(wst 0 accepted) a1=$(wst 1 accepted)
	say "    # accepted: worker 0 $a0, worker 1 $a1, all $(st accepted)"
	both_workers accepted || return 1
	[ $((a0 + a1)) -eq "$(st accepted)" ] ||
		why "workers accepted $a0 + $a1, the stats line $(st accepted)" || return 1
	[ "$(st accepted)" -ge "$SPREAD_FLOWS" ] ||
		why "stats line: $(st accepted) accepted, want >= $SPREAD_FLOWS" || return 1
	# /metrics from the master: the sum, and each worker's share
	local m mw0 mw1 mall
	m=$(nst curl -sS --max-time $((10 * TF)) http://127.0.0.1:9468/metrics 2>&1)
	mall=$(printf '%s\n' "$m" | sed -n 's/^sluice_flows_accepted_total \([0-9]*\)$/\1/p')
	mw0=$(printf '%s\n' "$m" | sed -n 's/^sluice_worker_flows_accepted_total{worker="0"} \([0-9]*\)$/\1/p')
	mw1=$(printf '%s\n' "$m" | sed -n 's/^sluice_worker_flows_accepted_total{worker="1"} \([0-9]*\)$/\1/p')
	say "    # /metrics: accepted $mall (worker 0 $mw0, worker 1 $mw1); $(printf '%s\n' "$m" | grep '^sluice_workers ')"
	[ -n "$mall" ] && [ -n "$mw0" ] && [ -n "$mw1" ] ||
		why "/metrics lacks the accepted counters: $(printf '%s' "$m" | head -c 300)" || return 1
	[ "$mall" -ge "$SPREAD_FLOWS" ] && [ $((mw0 + mw1)) -eq "$mall" ] && [ "$mw0" -gt 0 ] &&
		[ "$mw1" -gt 0 ] || why "/metrics: accepted $mall, workers $mw0 + $mw1" || return 1
	printf '%s\n' "$m" | grep -q '^sluice_workers 2$' || why "/metrics: no 'sluice_workers 2'" || return 1
	still_running
}

case_kill_worker() { worker_lost kill; }
case_stuck_worker() { worker_lost stop; }

# worker_lost kill|stop: one of two workers holding flows is SIGKILLed,
# or SIGSTOPped (a worker whose loop stopped turning: the master's watch
# must kill it after --worker-timeout); either way it is started again,
# its flows are lost, the other's go on and fresh flows work.
worker_lost() {
	need HAVE_DANTE || return
	local how=$1 try victim pids idx ok lost out line tmo=$((3 * TF))
	sluice_up --upstream "$UP_DANTE" --workers "$NW" --worker-timeout "${tmo}s" || return 1
	# a worker that dies within a second of its start is restarted only
	# after a pause: let this one be older
	sleep 1.2
	# 20 flows over 2 queues: both get some but once in 500,000 runs;
	# then open another set rather than fail
	for try in 1 2 3; do
		hold_start "$HELD" || return 1
		[ "$(kv "$HOLD_OPENED" opened)" = "$HELD" ] ||
			why "held flows: $HOLD_OPENED" || return 1
		stats || return 1
		[ "$(wst 0 'active')" -gt 0 ] && [ "$(wst 1 'active')" -gt 0 ] && break
		say "    # try $try: all held flows on one worker (${WLINE[0]%%,*}; ${WLINE[1]%%,*}): again"
		hold_end close
		[ "$try" = 3 ] && { why "3 sets of $HELD flows all on one worker"; return 1; }
	done
	say "    # held: worker 0 ${WLINE[0]%%,*}, worker 1 ${WLINE[1]%%,*}"
	pids=$(worker_pids | tr '\n' ' ')
	victim=${pids%% *}
	[ -n "$victim" ] || why "no worker process found" || return 1
	if [ "$how" = stop ]; then
		kill -STOP "$victim"
		wait_for $((tmo + 10 * TF)) grep -qE "worker [0-9]+ \\(pid $victim\\) has not run its loop for $((tmo * 1000)) ms \\(worker_timeout\\): killing it" "$SLUICE_LOG" ||
			why "the stopped worker (pid $victim) was not killed within $((tmo + 10 * TF)) s" ||
			return 1
	else
		kill -KILL "$victim"
	fi
	# the master lives on and starts another worker
	wait_for $((10 * TF)) new_worker "$victim" ||
		why "no new worker within $((10 * TF)) s (before: $pids; now: $(worker_pids | tr '\n' ' '))" ||
		return 1
	pid_alive "$SLUICE_PID" || why "the master died with its worker" || return 1
	wait_for $((5 * TF)) grep -qE 'worker [0-9]+ killed by signal 9: its flows are lost; starting it again$' "$SLUICE_LOG" ||
		why "no restart line in the log" || return 1
	line=$(grep -E 'worker [0-9]+ killed by signal 9' "$SLUICE_LOG" | tail -n 1)
	idx=$(printf '%s' "$line" | sed -nE 's/.*worker ([0-9]+) killed.*/\1/p')
	say "    # killed pid $victim: ${line#*: }; workers now: $(worker_pids | tr '\n' ' ')"
	hold_end go
	say "    # held flows afterwards: $HOLD_OUT"
	case $HOLD_OUT in ok=*) ;; *) why "no result from the held flows: $HOLD_OUT"; return 1 ;; esac
	ok=$(kv "$HOLD_OUT" ok) lost=$(($(kv "$HOLD_OUT" reset) + $(kv "$HOLD_OUT" eof)))
	[ $((ok + lost)) -eq "$HELD" ] ||
		why "held flows neither echoing nor reset/EOF: $HOLD_OUT" || return 1
	[ "$ok" -ge 1 ] || why "no held flow survived (the other worker's): $HOLD_OUT" || return 1
	[ "$lost" -ge 1 ] || why "no held flow was lost (the killed worker's): $HOLD_OUT" || return 1
	pid_alive "$SLUICE_PID" || why "the master died" || return 1
	out=$(tcli $((60 * TF)) multi "$DST_V4" "$PORT_RAW" "$HELD" 65536 $((30 * TF)) 2>&1)
	case $out in "ok $HELD "*) ;; *) why "fresh flows after the restart: ${out:-no output}"; return 1 ;; esac
	stats || return 1
	[ "$(wst "$idx" accepted)" -gt 0 ] ||
		why "the restarted worker $idx accepted no fresh flow: ${WLINE[$idx]}" || return 1
	grep -q 'workers: 1 restarted' "$SLUICE_LOG" ||
		why "no 'workers: 1 restarted' line after SIGUSR1" || return 1
	still_running
}

# new_worker PID: NW workers run, PID not among them.
new_worker() {
	local p n=0
	for p in $(worker_pids); do
		[ "$p" = "$1" ] && return 1
		n=$((n + 1))
	done
	[ "$n" -eq "$NW" ]
}

case_max_flows() {
	need HAVE_DANTE || return
	local opened act
	sluice_up --upstream "$UP_DANTE" --workers "$NW" --max-flows 10 || return 1
	hold_start 30 || return 1
	say "    # 30 flows opened one after the other: $HOLD_OPENED"
	stats || return 1
	opened=$(kv "$HOLD_OPENED" opened)
	act="worker 0 $(wst 0 active) active, worker 1 $(wst 1 active)"
	hold_end close
	[ "$opened" = 10 ] || why "$opened of 30 flows work, want 10: $HOLD_OPENED" || return 1
	[ "$(st 'over max_flows')" = 20 ] ||
		why "$(st 'over max_flows') over max_flows, want 20: ${STATS#*stats: }" || return 1
	[ "$(st active)" = 10 ] || why "$(st active) flows active, want 10" || return 1
	[ $(($(wst 0 active) + $(wst 1 active))) -eq 10 ] ||
		why "the workers' active flows do not add up to 10: $act" || return 1
	say "    # $act"
	still_running
}

case_udp_one_mapping() {
	need HAVE_DANTE HAVE_ECHO || return
	local out rx0 rx1
	sluice_up --upstream "$UP_DANTE" --workers "$NW" || return 1
	stats || return 1
	rx0=$(wst 0 'packets') rx1=$(wst 1 'packets')
	out=$(nst timeout -k 2 $((40 * TF)) "$PY" "$WORK/wtool.py" udp "$DST_V4" \
		"$UDP_PORT0" "$UDP_DESTS" $((20 * TF)) 2>&1)
	say "    # $out"
	[ "$(kv "$out" got)" = "$UDP_DESTS" ] || why "replies: $out" || return 1
	[ "$(kv "$out" wrong)" = 0 ] || why "wrong replies: $out" || return 1
	stats || return 1
	say "    # tun rx: worker 0 +$(($(wst 0 packets) - rx0)), worker 1 +$(($(wst 1 packets) - rx1)); ${STATS#*; udp }" | cut -c 1-200
	# the datagrams went into both queues: the steering had work to do
	if [ "$(wst 0 packets)" -le "$rx0" ] || [ "$(wst 1 packets)" -le "$rx1" ]; then
		why "datagrams did not reach both workers: 0: ${WLINE[0]}; 1: ${WLINE[1]}"
		return 1
	fi
	[ "$(st opened)" = 1 ] ||
		why "$(st opened) associations opened, want 1: udp ${STATS#*; udp }" || return 1
	[ $(($(wst 0 associations) + $(wst 1 associations))) -eq 1 ] ||
		why "workers hold $(wst 0 associations) + $(wst 1 associations) associations, want 1" ||
		return 1
	still_running
}

# udp_fragments: the kernel puts an IP fragment on a queue by its
# addresses alone, and a reply written by one worker moves that choice to
# its queue, so without the fragment steering (stack_set_workers) the
# fragments of one datagram land in both workers and neither reassembles
# it (22 of 8000 datagrams lost, silently, before the fix).
case_udp_fragments() {
	need HAVE_DANTE HAVE_ECHO || return
	local i k lost bad=0 pids=() res dst maxdist
	local knob=/proc/sys/net/ipv4/ipfrag_max_dist
	sluice_up --upstream "$UP_DANTE" --workers "$NW" || return 1
	# Two workers write fragments from one source (the echo server) at
	# once; the client's kernel drops a datagram whose fragments were
	# more than ipfrag_max_dist (64) of that source's fragments apart, 1
	# in about 30000 here.  Not sluice's loss: that check off meanwhile.
	maxdist=$(nst cat "$knob") && nst sh -c "echo 0 >$knob" ||
		why "cannot set ipfrag_max_dist in the client namespace" || return 1
	for ((i = 0; i < FRAG_SOCKS; i++)); do
		dst=$DST_V4
		[ $((i % 2)) = 1 ] && dst=$DST_V6	# every other one: IPv6
		start_bg "frag-$i" "$NS_T" timeout -k 2 $((60 * TF)) "$PY" "$UDPTOOL" \
			exchange "$dst" "$UDP_PORT0" --bind-port $((FRAG_PORT0 + i)) \
			--count "$FRAG_COUNT" --big "8000:$((FRAG_COUNT * 3 / 4))" \
			--window 8 --timeout $((2 * TF)) --deadline $((40 * TF)) --seed "$i"
		pids+=("$BG_PID")
	done
	for ((i = 0; i < FRAG_SOCKS; i++)); do
		wait_for $((60 * TF)) pid_gone "${pids[i]}"
		stop_pid "${pids[i]}" 2
	done
	nst sh -c "echo $maxdist >$knob"
	for ((i = 0; i < FRAG_SOCKS; i++)); do
		res=$(tail -n 1 "$WORK/frag-$i.log")
		say "    # socket $i ($([ $((i % 2)) = 1 ] && echo IPv6 || echo IPv4)): $res"
		[ "$(kv "$res" sent)" = "$FRAG_COUNT" ] || why "socket $i did not send all: $res" || return 1
		lost=$(kv "$res" lost)
		[ -n "$lost" ] && [ "$lost" -le 1 ] || bad=$((bad + 1))
		for k in corrupt dup wrongsrc unsent; do
			[ "$(kv "$res" $k)" = 0 ] || why "socket $i: $k: $res" || return 1
		done
	done
	stats || return 1
	say "    # client: $(nst nstat -az 2>/dev/null | awk '/Reasm|RcvbufErrors/ && $2 != 0 {printf "%s=%s ", $1, $2}')"
	say "    # $(st fragments-steered) fragments steered; ${STATS#*; udp }" | cut -c 1-240
	say "    # worker 0: ${WLINE[0]#*; tun }; worker 1: ${WLINE[1]#*; tun }"
	[ "$bad" -eq 0 ] || why "$bad of $FRAG_SOCKS sockets lost more than 1 datagram" || return 1
	both_workers associations || return 1
	# half the fragments belong to the other worker: the steering ran
	[ "$(st fragments-steered)" -gt 0 ] ||
		why "no fragment was handed to another worker: $STATS" || return 1
	still_running
}

case_reload() {
	need HAVE_DANTE HAVE_MICRO || return
	local f=$WORK/reload.conf n i
	conf_upstream "$f" "$UP_DANTE"
	sluice_up -c "$f" --workers "$NW" || return 1
	hold_start 16 || return 1
	[ "$(kv "$HOLD_OPENED" opened)" = 16 ] || why "before reload: $HOLD_OPENED" || return 1
	n=$(established "$NS_U" "$PORT_DANTE")
	hold_end close
	[ "$n" -ge 16 ] || why "before reload: $n connections at danted, want 16" || return 1
	conf_upstream "$f" "$UP_MICRO"
	kill -HUP "$SLUICE_PID"
	# the master and each worker (which reads the file itself) say so
	wait_for $((10 * TF)) grep -qE "info: reload: .*upstream $UP_MICRO\$" "$SLUICE_LOG" ||
		why "no 'reload: ... upstream $UP_MICRO' line from the master" || return 1
	for ((i = 0; i < NW; i++)); do
		wait_for $((10 * TF)) grep -qE "worker $i: reload: .*upstream $UP_MICRO\$" "$SLUICE_LOG" ||
			why "no 'worker $i: reload: ... upstream $UP_MICRO' line" || return 1
	done
	hold_start 16 || return 1
	stats || return 1
	n=$(established "$NS_U" "$PORT_MICRO")
	hold_end go
	[ "$(kv "$HOLD_OPENED" opened)" = 16 ] || why "after reload: $HOLD_OPENED" || return 1
	[ "$(kv "$HOLD_OUT" ok)" = 16 ] || why "after reload, echo on held flows: $HOLD_OUT" || return 1
	say "    # after reload: $n connections at microsocks; worker 0 $(wst 0 active) active, worker 1 $(wst 1 active)"
	both_workers active || return 1
	[ "$n" -eq 16 ] || why "after reload: $n connections at microsocks, want 16" || return 1
	still_running
}

# conf_upstream FILE URL: a configuration file with that upstream.
conf_upstream() {
	cat >"$1" <<EOF
# sluice tests/e2e/workers.sh
[tun]
name = sluice0
ipv4 = $TUN_V4
ipv6 = $TUN_V6

[upstream]
url = $2
connect_timeout = 5s

[process]
workers = $NW
EOF
}

case_stop_with_flows() {
	need HAVE_DANTE || return
	local pids p c bulk=()
	sluice_up --upstream "$UP_DANTE" --workers "$NW" || return 1
	hold_start "$HELD" || return 1
	for c in 1 2 3 4; do
		start_bg "bulk-$CASE-$c" "$NS_T" timeout -k 2 $((60 * TF)) curl --noproxy '*' \
			-sS --limit-rate 2M -o /dev/null "http://$DST_V4/file/big.bin"
		bulk+=("$BG_PID")
	done
	wait_for $((10 * TF)) bytes_down 1048576 ||
		why "the downloads do not get going: ${STATS#*stats: }" || return 1
	say "    # before SIGTERM: $(st active) flows active, $(st down) bytes down"
	both_workers active || return 1
	pids=$(worker_pids | tr '\n' ' ')
	[ "$(echo "$pids" | wc -w)" -eq "$NW" ] || why "worker processes: $pids" || return 1
	stop_sluice || why "$SLUICE_ERR" || return 1
	for p in $pids; do
		pid_alive "$p" || continue
		why "worker $p still running after the master exited (ps: $(ps -o pid=,ppid=,stat=,comm= -p "$p"))"
		return 1
	done
	for p in "${bulk[@]}"; do stop_pid "$p" 2; done
	hold_end close
	! grep -qE 'still running [0-9]+ ms after' "$SLUICE_LOG" ||
		why "$(grep -E 'still running [0-9]+ ms after' "$SLUICE_LOG" | head -n 1)"
}

# bytes_down N: a stats line says at least N bytes went down.
bytes_down() { stats && [ "$(st down)" -ge "$1" ]; }

# ---- driver -------------------------------------------------------------------

CASES="spread kill_worker stuck_worker max_flows udp_one_mapping udp_fragments reload stop_with_flows"

suite_run workers "$CASES"
