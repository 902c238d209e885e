#!/usr/bin/env bash
# perf.sh - tests of `sluice --perf`: both modes on both paths complete with
# verified data and a well-formed result line; a corrupted byte is caught;
# --perf-runs, --json, --perf-workers 2 (both workers move their share),
# missing privileges, `ip netns exec`.  No throughput
# thresholds: a slow machine passes, a fast wrong answer fails.
#
#   tests/e2e/perf.sh            (as root; SLUICE=path overrides ./sluice)
#
# Prints "ok NAME" or "FAIL NAME: why" per case, then "perf: N passed,
# N failed[, N skipped]".  Exit status 1 when anything failed.  Every run
# is bounded (--perf-timeout and timeout(1)); the only namespace it makes
# itself (for the `ip netns exec` case) is deleted on exit.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
SLUICE=${SLUICE:-$root/sluice}
case $SLUICE in /*) ;; *) SLUICE=$PWD/$SLUICE ;; esac
BYTES=50000000
LIMIT=150		# seconds for any one sluice invocation
NETNS=sluice-perf-$$
WORK=$(mktemp -d /tmp/sluice-perf.XXXXXX)
LINE_RE='^client io mode: (reader|writer), throughput: [0-9]+\.[0-9]{3} Gbps$'

passed=0 failed=0 skipped=0
ok() { echo "ok $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
skip() { echo "skip $1: $2"; skipped=$((skipped + 1)); }

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
	ip netns del "$NETNS" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

finish() {
	if [ "$skipped" -gt 0 ]; then
		echo "perf: $passed passed, $failed failed, $skipped skipped"
	else
		echo "perf: $passed passed, $failed failed"
	fi
	[ "$failed" -eq 0 ]
	exit
}

# perf NAME ARGS...: run sluice --perf with ARGS, bounded; stdout in
# $WORK/NAME.out, stderr in $WORK/NAME.err; sets RC.
perf() {
	local name=$1
	shift
	timeout -k 5 "$LIMIT" "$SLUICE" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
	RC=$?
}

# why NAME: a one-line reason from a run's stderr.
why() {
	local e
	e=$(grep -v '^\[' "$WORK/$1.err" | tail -n 1)
	printf 'exit %s%s' "$RC" "${e:+: $e}"
}

if [ "$(id -u)" -ne 0 ]; then
	fail setup "must run as root (network namespaces, TUN)"
	finish
fi
if [ ! -x "$SLUICE" ]; then
	fail setup "no sluice binary at $SLUICE (run make)"
	finish
fi

# ---- both modes, both paths: verified data, one well-formed line ----------
# with the tunnel's TUN offloads (the default) and without
for spec in stack:reader:yes stack:writer:yes relay:reader:yes relay:writer:yes \
	stack:reader:no stack:writer:no relay:reader:no relay:writer:no; do
	IFS=: read -r path mode offload <<<"$spec"
	name=$path-$mode
	[ "$offload" = yes ] || name=$name-no-offload
	perf "$name" --perf "$mode" --perf-path "$path" --tun-offload "$offload" \
		--perf-bytes "$BYTES" --perf-timeout 120
	out=$(cat "$WORK/$name.out")
	if [ "$RC" -ne 0 ]; then
		fail "$name" "$(why "$name")"
	elif [ "$(printf '%s\n' "$out" | wc -l)" -ne 1 ] ||
		! printf '%s\n' "$out" | grep -Eq "$LINE_RE" ||
		! printf '%s\n' "$out" | grep -q "mode: $mode,"; then
		fail "$name" "bad output: $out"
	elif ! grep -Eq '^\[ +1\] +[0-9.]+-[0-9.]+ +sec' "$WORK/$name.err"; then
		fail "$name" "no interval lines on stderr"
	else
		ok "$name"
	fi
done

# ---- --perf-workers 2: one line per worker, both moved bytes, then the total ---
# (50000001 bytes: the odd byte goes to worker 1); no timing thresholds
WBYTES=50000001
for spec in stack:reader stack:writer relay:reader relay:writer; do
	IFS=: read -r path mode <<<"$spec"
	name=workers-$path-$mode
	perf "$name" --perf "$mode" --perf-path "$path" --perf-workers 2 \
		--perf-bytes "$WBYTES" --perf-timeout 120
	out=$WORK/$name.out
	wre="^client io mode: $mode, worker: ([12]), bytes: ([0-9]+), throughput: [0-9]+\.[0-9]{3} Gbps\$"
	w1=$(sed -nE "s/$wre/\1 \2/p" "$out" | awk '$1 == 1 { print $2 }')
	w2=$(sed -nE "s/$wre/\1 \2/p" "$out" | awk '$1 == 2 { print $2 }')
	if [ "$RC" -ne 0 ]; then
		fail "$name" "$(why "$name")"
	elif [ "$(wc -l <"$out")" -ne 3 ] || [ -z "$w1" ] || [ -z "$w2" ] ||
		! tail -n 1 "$out" | grep -Eq "$LINE_RE" ||
		! tail -n 1 "$out" | grep -q "mode: $mode,"; then
		fail "$name" "bad output: $(tr '\n' '|' <"$out")"
	elif [ "$w1" -le 0 ] || [ "$w2" -le 0 ]; then
		fail "$name" "a worker moved nothing: $w1 and $w2 bytes"
	elif [ $((w1 + w2)) -ne "$WBYTES" ] || [ "$w1" -ne 25000001 ]; then
		fail "$name" "bytes $w1 + $w2, want 25000001 + 25000000"
	elif ! grep -q "data path on 2 worker processes" "$WORK/$name.err"; then
		fail "$name" "no banner for 2 workers on stderr"
	else
		ok "$name"
	fi
done
# JSON: per-worker objects, then the run with the total and summed counters
perf workers-json --perf reader --perf-workers 2 --perf-bytes 20000000 \
	--perf-runs 2 --json --quiet
if [ "$RC" -ne 0 ]; then
	fail workers-json "$(why workers-json)"
elif ! command -v python3 >/dev/null; then
	skip workers-json "no python3 to parse the output"
elif ! python3 - "$WORK/workers-json.out" <<'EOF'
import json, sys
objs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert [o["type"] for o in objs] == ["worker", "worker", "run"] * 2 + ["summary"], objs
for i in (0, 3):
    w1, w2, run = objs[i:i + 3]
    assert (w1["worker"], w2["worker"]) == (1, 2), objs
    assert w1["bytes"] == w2["bytes"] == 10000000, objs
    assert run["bytes"] == 20000000 and run["workers"] == 2, run
    assert all(o["verified"] is True and o["run"] == i // 3 + 1 for o in (w1, w2, run)), objs
    assert w1["tun_rx_packets"] > 0 and w2["tun_rx_packets"] > 0, objs
    assert run["tun_rx_packets"] == w1["tun_rx_packets"] + w2["tun_rx_packets"], objs
s = objs[-1]
assert s["workers"] == 2 and s["threads"] == 2 and s["runs"] == 2, s
EOF
then
	fail workers-json "malformed: $(tr '\n' '|' <"$WORK/workers-json.out")"
else
	ok workers-json
fi
# a run that times out with workers fails, and leaves no worker behind
perf workers-timeout --perf writer --perf-workers 2 --perf-bytes 1e12 \
	--perf-timeout 1 --quiet
left=$(pgrep -f -- "--perf writer --perf-workers 2 --perf-bytes 1e12" || true)
if [ "$RC" -ne 1 ] || ! grep -q "timed out after 1 s" "$WORK/workers-timeout.err"; then
	fail workers-timeout "$(why workers-timeout), want exit 1 and a timeout"
elif [ -n "$left" ]; then
	fail workers-timeout "processes left: $left"
else
	ok workers-timeout
fi

# ---- --perf=MODE form, --quiet: nothing on stderr ----------------------------
perf quiet --perf=writer --perf-bytes 10000000 --quiet
if [ "$RC" -eq 0 ] && [ ! -s "$WORK/quiet.err" ] &&
	grep -Eq "$LINE_RE" "$WORK/quiet.out"; then
	ok perf-equals-quiet
else
	fail perf-equals-quiet "$(why quiet), stderr $(wc -c <"$WORK/quiet.err") bytes"
fi

# ---- a corrupted byte is detected, by whichever side receives -----------------
# the fault flips one byte at its source: the server in reader mode, the
# client in writer mode (relay: the in-process SOCKS5 server)
for spec in stack:reader:12345677:yes stack:writer:33333333:yes \
	relay:reader:0:yes relay:writer:$((BYTES - 1)):yes \
	stack:reader:777:no stack:writer:$((BYTES - 2)):no; do
	IFS=: read -r path mode off offload <<<"$spec"
	name=corrupt-$path-$mode
	[ "$offload" = yes ] || name=$name-no-offload
	perf "$name" --perf "$mode" --perf-path "$path" --perf-bytes "$BYTES" \
		--tun-offload "$offload" --perf-corrupt "$off" --quiet --perf-timeout 60
	if [ "$RC" -ne 1 ]; then
		fail "$name" "exit $RC, want 1"
	elif ! grep -q "data mismatch at byte $off:" "$WORK/$name.err"; then
		fail "$name" "no mismatch report for byte $off: $(why "$name")"
	elif grep -q "throughput" "$WORK/$name.out"; then
		fail "$name" "a failed run printed a throughput line"
	else
		ok "$name"
	fi
done

# ---- --perf-runs: every run, then min/median/max ------------------------------
perf runs --perf reader --perf-bytes 10000000 --perf-runs 3 --quiet
if [ "$RC" -ne 0 ]; then
	fail perf-runs "$(why runs)"
elif [ "$(grep -Ec "$LINE_RE" "$WORK/runs.out")" -ne 3 ] ||
	! tail -n 1 "$WORK/runs.out" | grep -Eq \
		'^client io mode: reader, runs: 3, throughput min/median/max: [0-9]+\.[0-9]{3}/[0-9]+\.[0-9]{3}/[0-9]+\.[0-9]{3} Gbps$'; then
	fail perf-runs "bad output: $(tr '\n' '|' <"$WORK/runs.out")"
else
	ok perf-runs
fi

# ---- --json: one object per run, then a summary ---------------------------------
perf json --perf writer --perf-path relay --perf-bytes 10000000 --perf-runs 2 --json
if [ "$RC" -ne 0 ]; then
	fail json "$(why json)"
elif ! command -v python3 >/dev/null; then
	skip json "no python3 to parse the output"
elif ! python3 - "$WORK/json.out" <<'EOF'
import json, sys
objs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
runs = [o for o in objs if o.get("type") == "run"]
summ = [o for o in objs if o.get("type") == "summary"]
assert len(runs) == 2 and len(summ) == 1 and objs[-1] is summ[0], objs
for i, r in enumerate(runs, 1):
    assert r["run"] == i and r["verified"] is True, r
    assert r["mode"] == "writer" and r["path"] == "relay", r
    assert r["bytes"] == 10000000 and r["gbps"] > 0 and r["seconds"] > 0, r
s = summ[0]
assert s["runs"] == 2 and s["min"] <= s["median"] <= s["max"], s
EOF
then
	fail json "malformed: $(tr '\n' '|' <"$WORK/json.out")"
else
	ok json
fi

# ---- bad usage -------------------------------------------------------------------
perf usage --perf sideways
if [ "$RC" -eq 1 ] && grep -q "bad value" "$WORK/usage.err"; then
	ok bad-mode
else
	fail bad-mode "$(why usage)"
fi

# ---- without privileges: exit 1, and say which capability is missing -------------
if command -v setpriv >/dev/null; then
	timeout -k 5 30 setpriv --reuid 65534 --regid 65534 --clear-groups \
		--inh-caps=-all "$SLUICE" --perf reader --perf-bytes 1000000 \
		>"$WORK/nopriv.out" 2>"$WORK/nopriv.err"
	RC=$?
	if [ "$RC" -eq 1 ] && grep -q "CAP_SYS_ADMIN" "$WORK/nopriv.err"; then
		ok no-privileges
	else
		fail no-privileges "$(why nopriv)"
	fi
else
	skip no-privileges "no setpriv"
fi
if command -v capsh >/dev/null; then
	timeout -k 5 30 capsh --drop=cap_net_admin -- -c \
		"exec '$SLUICE' --perf reader --perf-bytes 1000000" \
		>"$WORK/nonetadmin.out" 2>"$WORK/nonetadmin.err"
	RC=$?
	if [ "$RC" -eq 1 ] && grep -q "CAP_NET_ADMIN" "$WORK/nonetadmin.err"; then
		ok no-cap-net-admin
	else
		fail no-cap-net-admin "$(why nonetadmin)"
	fi
else
	skip no-cap-net-admin "no capsh"
fi

# ---- from `ip netns exec`: works, and leaves that namespace alone ------------------
if ip netns add "$NETNS" 2>/dev/null; then
	timeout -k 5 "$LIMIT" ip netns exec "$NETNS" "$SLUICE" --perf reader \
		--perf-bytes 300000000 --quiet >"$WORK/netns.out" 2>"$WORK/netns.err" &
	pid=$!
	# while it runs, the caller's namespace must not change
	links="lo " state=0
	for _ in 1 2 3 4 5; do
		sleep 0.1
		l=$(ip -n "$NETNS" -o link show | awk -F': ' '{print $2}' | tr '\n' ' ')
		[ "$l" = "lo " ] || links=$l
		s=$(ip -n "$NETNS" -o link show lo | grep -c 'state UNKNOWN\|,UP')
		[ "$s" -eq 0 ] || state=$s
	done
	wait "$pid"
	RC=$?
	l=$(ip -n "$NETNS" -o link show | awk -F': ' '{print $2}' | tr '\n' ' ')
	[ "$l" = "lo " ] || links=$l
	if [ "$RC" -ne 0 ]; then
		fail ip-netns-exec "$(why netns)"
	elif ! grep -Eq "$LINE_RE" "$WORK/netns.out"; then
		fail ip-netns-exec "bad output: $(cat "$WORK/netns.out")"
	elif [ "$links" != "lo " ] || [ "$state" -ne 0 ]; then
		fail ip-netns-exec "the caller's namespace changed: links '$links', lo up: $state"
	else
		ok ip-netns-exec
	fi
	ip netns del "$NETNS"
else
	skip ip-netns-exec "cannot create a named namespace"
fi
# nor does the namespace this script runs in
perf hostns --perf writer --perf-bytes 300000000 --quiet &
pid=$!
seen=
for _ in 1 2 3 4 5; do
	sleep 0.1
	ip -o link show | grep -q sluiceperf && seen=1
done
wait "$pid"
if [ -n "$seen" ]; then
	fail host-untouched "the perf TUN device showed up in the caller's namespace"
else
	ok host-untouched
fi

finish
