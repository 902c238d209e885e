#!/usr/bin/env bash
# run.sh - `make bench`: sluice's benchmarks, in one sitting.  Asserts
# nothing; prints figures and the targets next to them.  Needs root.
#
#   tests/bench/run.sh BENCH_BINARY...
#
# 1. each benchmark binary given (build/bench/writepacket: Go benchmark
#    lines for the TCP send path, sink and TUN links);
# 2. the raw TUN ceiling, /work/shared/tools/tunlimit.sh 1500 (or
#    $TUNLIMIT), when it exists;
# 3. `sluice --perf` reader and writer on the stack and relay paths, with
#    the TUN offloads (the tunnel's default) and without, PERF_RUNS runs
#    each (5), PERF_BYTES bytes per run (1e9): the medians, and their ratio
#    to the tunlimit figure of the same direction (reader mode: sluice
#    writes the TUN; writer mode: sluice reads it); each with one worker
#    process and with PERF_WORKERS (2), side by side.
#
# Environment: SLUICE (./sluice), PERF_RUNS, PERF_BYTES, PERF_WORKERS, BENCHTIME (1s,
# per Go-style benchmark), TUNLIMIT (path to tunlimit.sh, or "none").
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
SLUICE=${SLUICE:-$root/sluice}
PERF_RUNS=${PERF_RUNS:-5}
PERF_BYTES=${PERF_BYTES:-1000000000}
PERF_WORKERS=${PERF_WORKERS:-2}
BENCHTIME=${BENCHTIME:-1}
TUNLIMIT=${TUNLIMIT:-/work/shared/tools/tunlimit.sh}

if [ "$(id -u)" -ne 0 ]; then
	echo "bench: must run as root (network namespaces, TUN)" >&2
	exit 1
fi
[ -x "$SLUICE" ] || { echo "bench: no sluice binary at $SLUICE (run make)" >&2; exit 1; }

echo "== $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) CPUs, $(uname -r)"
grep -m1 'model name' /proc/cpuinfo | sed 's/.*: /== cpu: /'
echo "== load average: $(cut -d' ' -f1-3 /proc/loadavg) (other load skews every figure)"

for b in "$@"; do
	echo
	echo "== $(basename "$b")"
	timeout -k 5 900 "$b" -benchtime "$BENCHTIME" || echo "bench: $(basename "$b") failed (exit $?)"
done

# ---- the raw TUN ceiling -----------------------------------------------------
echo
echo "== tunlimit (raw one-packet-per-syscall TUN I/O, MTU 1500)"
tl_read='' tl_write=''
if [ "$TUNLIMIT" != none ] && [ -x "$TUNLIMIT" ]; then
	tl=$(timeout -k 5 120 "$TUNLIMIT" 1500 2>&1)
	printf '%s\n' "$tl" | sed 's/^/  /'
	tl_read=$(printf '%s\n' "$tl" | sed -nE 's/^READ .*read_Gbps=([0-9.]+).*/\1/p')
	tl_write=$(printf '%s\n' "$tl" | sed -nE 's/^WRITE .*write_Gbps\(IP\)=([0-9.]+).*/\1/p')
else
	echo "  skipped: ${TUNLIMIT/#none/TUNLIMIT=none} not found"
fi

# ---- sluice --perf -------------------------------------------------------------
# median LINE: the median figure of a "min/median/max" line (or a single run)
median() {
	printf '%s\n' "$1" | sed -nE \
		-e 's|.*min/median/max: [0-9.]+/([0-9.]+)/[0-9.]+ Gbps.*|\1|p' \
		-e 's|^client io mode: [a-z]+, throughput: ([0-9.]+) Gbps$|\1|p' | tail -n 1
}

# xratio A B: A/B as "1.42x", or n/a
xratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || b + 0 == 0) print "n/a";
		else printf "%.2fx\n", a / b }'
}

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a == "" || b == "" || b + 0 == 0) print "n/a";
		else printf "%.0f%%\n", 100 * a / b }'
}

# idle: the CPU idle percentage over one second
idle() {
	local a b
	a=$(head -n 1 /proc/stat)
	sleep 1
	b=$(head -n 1 /proc/stat)
	printf '%s\n%s\n' "$a" "$b" | awk '{ t = 0; for (i = 2; i <= 9; i++) t += $i;
		if (NR == 1) { t1 = t; i1 = $5 } else printf "%d\n", 100 * ($5 - i1) / (t - t1) }'
}

# perf_median PATH MODE OFFLOAD WORKERS: the median Gbps of PERF_RUNS runs,
# or "failed" (the reason on stderr)
perf_median() {
	local out rc m
	out=$(timeout -k 5 $((PERF_RUNS * 130 + 30)) "$SLUICE" --perf "$2" \
		--perf-path "$1" --tun-offload "$3" --perf-workers "$4" \
		--perf-bytes "$PERF_BYTES" --perf-runs "$PERF_RUNS" --quiet 2>&1)
	rc=$?
	m=$(median "$out")
	if [ "$rc" -ne 0 ] || [ -z "$m" ]; then
		echo "  $1 $2 offload $3, $4 workers failed: $(printf '%s' "$out" | tail -n 1)" >&2
		echo failed
	else
		echo "$m"
	fi
}

echo
echo "== sluice --perf, MTU 1500, $PERF_BYTES bytes, median of $PERF_RUNS runs," \
	"1 and $PERF_WORKERS worker processes (CPU idle before: $(idle)%)"
printf '  %-6s %-7s %-8s %8s %8s %8s %8s %10s %s\n' path mode offload "1 worker" \
	"$PERF_WORKERS wkrs" "ratio" target tunlimit "1 worker/tunlimit"
for offload in yes no; do
	for path in stack relay; do
		for mode in reader writer; do
			m1=$(perf_median "$path" "$mode" "$offload" 1)
			mn=$(perf_median "$path" "$mode" "$offload" "$PERF_WORKERS")
			if [ "$mode" = reader ]; then tl=$tl_write; else tl=$tl_read; fi
			if [ "$path" = stack ]; then target=3.0; else target=2.0; fi
			printf '  %-6s %-7s %-8s %8s %8s %8s %8s %10s %s\n' "$path" "$mode" \
				"$offload" "$m1" "$mn" "$(xratio "$mn" "$m1")" ">=$target" \
				"${tl:-n/a}" "$(ratio "$m1" "$tl")"
		done
	done
done
echo "  (ratio: $PERF_WORKERS workers over 1; target for $PERF_WORKERS on the stack path: >= 1.3x)"
echo "  (Gbps.  ratio: the median over tunlimit in the direction sluice moves"
echo "   packets: reader mode against WRITE (sluice writes the TUN), writer mode"
echo "   against READ.  With offloads each syscall carries up to 64 KiB, so the"
echo "   one-packet-per-syscall ceiling does not bound it.)"
exit 0
