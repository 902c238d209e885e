#!/usr/bin/env bash
# udp.sh - UDP through a SOCKS5 UDP ASSOCIATE relay (dante), with and without
# sluice in front, and hev-socks5-tunnel beside it where it is built.  A
# benchmark, not a test: it asserts nothing.  Needs root; builds the
# namespace topology of tests/e2e/lib.sh.
#
#   tests/bench/udp.sh
#
# The load generator and sink are udpblast (tests/bench/udpblast.c).  The
# sink counts datagrams on 0.0.0.0:9000 in ns u; the paths to it are:
#
#   veth     plain UDP from ns t to 198.19.0.2:9000, no relay: what the
#            generator and sink manage on this machine (one unpaced run)
#   dante    udpblast socks in ns t (DANTE_CLIENT=u: in ns u, beside
#            dante): UDP ASSOCIATE to dante at 198.19.0.2:1080, datagrams
#            with the SOCKS5 UDP header to its relay, which sends them on
#            to 198.18.1.1:9000 (lo in ns u): dante alone, no tunnel.  From
#            ns t by default so that it crosses the veth as sluice's
#            datagrams do, and the only difference is the tunnel
#   sluice   plain UDP from ns t to 198.18.1.1:9000 -> TUN -> sluice ->
#            dante (UDP ASSOCIATE) -> 198.18.1.1:9000; skipped with a line
#            saying so when this sluice has no --udp option
#   hev      the same with hev-socks5-tunnel (socks5 udp: 'udp') in place
#            of sluice, if $HEV exists (see /work/shared/tools/peer-bench);
#            skipped with a line saying so otherwise
#
# dante (one danted for every path) allows connect, udpassociate and
# udpreply, with udp.connectdst: no as the e2e suites run it
# (DANTE_CONNECTDST=yes for dante's default).
#
# For each path and datagram size (UDP payload at the sink: 1400 and 64
# bytes):
#  - a run of UDP_CONFIRM_SECS (3) seconds at a common UDP_CPU_PPS (5000)
#    datagrams a second, for CPU figures every path can be compared by (a
#    relay's CPU per datagram falls as its rate rises: more datagrams per
#    wakeup);
#  - the highest loss-free offered rate: a run of UDP_TRIAL_SECS (1)
#    seconds at a rate is loss-free when at most UDP_LOSS (0.1) percent of
#    what the sender handed the kernel fails to reach the sink, and the
#    sender did offer at least 97% of the rate.  The rate starts at
#    UDP_START_PPS (10000) and doubles until a run loses (or passes
#    UDP_MAX_PPS, 2000000), then is bisected until the bounds are within
#    UDP_PRECISION (5) percent or UDP_MAX_TRIALS (10) runs were made.  The
#    rate found is run again for UDP_CONFIRM_SECS; a lossy confirmation
#    lowers it by 10% and runs again, UDP_CONFIRMS (2) times at most.  The
#    last one gives the loss printed and the CPU figures at that rate.
# CPU: utime + stime from /proc/PID/stat of the tunnel process (and of its
# children: sluice's workers), and of every danted process of ns u plus
# the children each has reaped, in seconds per million datagrams
# received.  Softirq work the kernel does
# while a process sends (a veth or lo delivery) is charged to that process.
# Gbps counts UDP payload.  Every run begins with 200 ms of one warm-up
# datagram per 10 ms on the same socket (the sink counts those apart; lost
# ones are noted), so that a relay's per-session set-up is not charged to
# the rate.  Progress lines show each run; a measured run's drops are split
# into those at dante's sockets (UDP RcvbufErrors of ns u) and at the
# tunnel's TUN queue (its tx_dropped).
#
# Then iperf3 -u -b $IPERF_RATE (1G), -l 1400 and -l 64, upload and
# download (-R), IPERF_TIME (5) seconds each, through sluice and hev, and on
# the plain veth for iperf3's own ceiling: sender and receiver Mbit/s, the
# loss iperf3 reports, and how many packets a second the tunnel put out
# (upload: ns t's veth0 tx, to dante; download: its TUN device's rx, what
# it wrote there): the tunnel's own rate when dante drops the excess.
#
# Environment: the knobs above; UDP_PATHS ("veth dante sluice hev"),
# UDP_SIZES ("1400 64"), IPERF_RUNS ("yes"; "no" skips iperf3), HEV
# (hev-socks5-tunnel binary, default
# ${TMPDIR:-/tmp}/peer-bench/hev/bin/hev-socks5-tunnel), UDPBLAST (a
# built udpblast; by default it is compiled from tests/bench/udpblast.c
# into the run's directory), SLUICE (see lib.sh; copied into the run's
# directory first), E2E_KEEP=1 keeps the logs.  The defaults take about
# 3 to 4 minutes.
set -u
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/../e2e/lib.sh"
require_root

UDP_TRIAL_SECS=${UDP_TRIAL_SECS:-1}
UDP_CONFIRM_SECS=${UDP_CONFIRM_SECS:-3}
UDP_LOSS=${UDP_LOSS:-0.1}
UDP_CPU_PPS=${UDP_CPU_PPS:-5000}
UDP_START_PPS=${UDP_START_PPS:-10000}
UDP_MAX_PPS=${UDP_MAX_PPS:-2000000}
UDP_MIN_PPS=1000
UDP_PRECISION=${UDP_PRECISION:-5}
UDP_MAX_TRIALS=${UDP_MAX_TRIALS:-10}
UDP_CONFIRMS=${UDP_CONFIRMS:-2}
UDP_PATHS=${UDP_PATHS:-veth dante sluice hev}
UDP_SIZES=${UDP_SIZES:-1400 64}
IPERF_TIME=${IPERF_TIME:-5}
IPERF_RATE=${IPERF_RATE:-1G}
IPERF_RUNS=${IPERF_RUNS:-yes}
HEV=${HEV:-${TMPDIR:-/tmp}/peer-bench/hev/bin/hev-socks5-tunnel}
UDPBLAST=${UDPBLAST:-}
PORT_SINK=9000 IPERF_PORT=5201 HEV_TUN=hev0
case ${DANTE_CLIENT:-t} in
t) DANTE_CLIENT_NS=$NS_T ;;
u) DANTE_CLIENT_NS=$NS_U ;;
*) warn "DANTE_CLIENT must be t or u"; exit 1 ;;
esac
HZ=$(getconf CLK_TCK)

[ -x "$SLUICE" ] || { warn "no sluice binary at $SLUICE (run make first)"; exit 1; }
[ -x /usr/sbin/danted ] || { warn "dante-server is not installed (make deps)"; exit 1; }
command -v iperf3 >/dev/null || { warn "iperf3 is not installed (make deps)"; exit 1; }

work_dir
cp "$SLUICE" "$WORK/sluice" || { warn "cannot copy $SLUICE"; exit 1; }
SLUICE=$WORK/sluice
# make bench-udp builds build/bench/udpblast; else (or if it is older than
# its source) compile one for this run
ub_built=$REPO_ROOT/build/bench/udpblast
if [ -z "$UDPBLAST" ] && [ -x "$ub_built" ] &&
	[ "$ub_built" -nt "$REPO_ROOT/tests/bench/udpblast.c" ]; then
	UDPBLAST=$ub_built
fi
if [ -z "$UDPBLAST" ]; then
	UDPBLAST=$WORK/udpblast
	${CC:-cc} -std=gnu11 -O2 -D_GNU_SOURCE -Wall -Wextra -o "$UDPBLAST" \
		"$REPO_ROOT/tests/bench/udpblast.c" 2>"$WORK/cc.err" ||
		{ warn "cannot build udpblast:"; cat "$WORK/cc.err" >&2; exit 1; }
fi
[ -x "$UDPBLAST" ] || { warn "no udpblast at $UDPBLAST"; exit 1; }

# ---- peers ------------------------------------------------------------------

# ticks_of PID: utime + stime (+ cutime + cstime with "c") in clock ticks.
ticks_of() {
	awk -v c="${2:-}" '{ s = $0; sub(/^.*\) /, "", s); split(s, f, " ");
		t = f[12] + f[13]; if (c == "c") t += f[14] + f[15]; print t }' \
		"/proc/$1/stat" 2>/dev/null
}

# dante_ticks: CPU ticks of every danted process in ns u, with the children
# each has reaped (dante forks negotiate, request and io children).
dante_ticks() {
	local p s=0 t
	for p in $(ip netns pids "$NS_U" 2>/dev/null); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = danted ] || continue
		t=$(ticks_of "$p" c)
		s=$((s + ${t:-0}))
	done
	echo "$s"
}

# tunnel_ticks: CPU ticks of the tunnel process of the current path and of
# its children (sluice's workers: lib.sh cpu_ticks), 0 for none.
tunnel_ticks() {
	local t=
	[ -n "$TUN_PID" ] && t=$(cpu_ticks "$TUN_PID")
	echo "${t:-0}"
}

# udp_rcvbuf_errors NS: the namespace's UDP RcvbufErrors counter.
udp_rcvbuf_errors() {
	# shellcheck disable=SC2016  # awk's own $i
	ip netns exec "$1" awk '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) n[$i] = i; h = 1 }
		else print $(n["RcvbufErrors"]) }' /proc/net/snmp
}

# tun_tx_dropped: packets the TUN device of the current path dropped on
# its way to the tunnel process (its queue was full).
tun_tx_dropped() {
	[ -n "$TUN_DEV" ] || { echo 0; return; }
	nst cat "/sys/class/net/$TUN_DEV/statistics/tx_dropped" 2>/dev/null || echo 0
}

# ---- one run ------------------------------------------------------------------

RUN_ID=0
TUN_PID='' TUN_DEV=''

# shellcheck disable=SC2317  # called through wait_for
sink_ready() { grep -q '^ready' "$WORK/sink.log" 2>/dev/null; }

# trial PATH SIZE PPS SECS: one paced run; sets T_SENT, T_RECV, T_PPS (what
# the sender achieved), T_LOSS (percent, awk number), T_ERR (why it failed).
trial() {
	local path=$1 size=$2 pps=$3 secs=$4 out sink
	RUN_ID=$((RUN_ID + 1))
	T_SENT=0 T_RECV=0 T_PPS=0 T_LOSS=100 T_ERR=''
	start_bg sink "$NS_U" "$UDPBLAST" sink -l "0.0.0.0:$PORT_SINK" -r "$RUN_ID" \
		-t "$(awk -v s="$secs" 'BEGIN { print int(s) + 10 }')" -i 300
	local sink_pid=$BG_PID
	if ! wait_for 5 sink_ready; then
		stop_pid "$sink_pid"
		T_ERR="sink did not start: $(head -c 200 "$WORK/sink.log")"
		return 1
	fi
	local args=(-s "$size" -R "$pps" -t "$secs" -r "$RUN_ID")
	case $path in
	veth) out=$(nst timeout -k 2 $((${secs%.*} + 15)) "$UDPBLAST" send -d "$U_V4:$PORT_SINK" "${args[@]}" 2>&1) ;;
	dante) out=$(ip netns exec "$DANTE_CLIENT_NS" timeout -k 2 $((${secs%.*} + 15)) "$UDPBLAST" socks -L 300 \
		-x "$U_V4:$PORT_DANTE" -d "$DST_V4:$PORT_SINK" "${args[@]}" 2>&1) ;;
	*) out=$(nst timeout -k 2 $((${secs%.*} + 15)) "$UDPBLAST" send -d "$DST_V4:$PORT_SINK" "${args[@]}" 2>&1) ;;
	esac
	wait_for $((${secs%.*} + 12)) pid_gone "$sink_pid"
	stop_pid "$sink_pid"
	sink=$(grep '^received=' "$WORK/sink.log")
	T_SENT=$(printf '%s' "$out" | sed -nE 's/^sent=([0-9]+) .*/\1/p')
	T_PPS=$(printf '%s' "$out" | sed -nE 's/.* pps=([0-9]+) .*/\1/p')
	T_RECV=$(printf '%s' "$sink" | sed -nE 's/^received=([0-9]+) .*/\1/p')
	T_WARM_LOST=$(printf '%s\n%s' "$out" "$sink" | sed -nE 's/.* warm=([0-9]+).*/\1/p' |
		awk 'NR == 1 { s = $1 } NR == 2 { print s - $1 }')
	if [ -z "$T_SENT" ] || [ -z "$T_RECV" ]; then
		T_ERR="sender: $(printf '%s' "$out" | tail -n 2 | tr '\n' ' ')"
		T_SENT=${T_SENT:-0} T_RECV=${T_RECV:-0} T_PPS=${T_PPS:-0}
		return 1
	fi
	T_LOSS=$(awk -v s="$T_SENT" -v r="$T_RECV" 'BEGIN {
		if (s == 0) print 100; else printf "%.3f\n", 100 * (s - r) / s }')
	return 0
}

# lossfree PPS: the last trial counts as loss-free at the offered PPS.
lossfree() {
	awk -v l="$T_LOSS" -v max="$UDP_LOSS" -v a="$T_PPS" -v o="$1" \
		'BEGIN { exit !(l <= max && a >= 0.97 * o) }'
}

# gbps PPS SIZE: the payload rate in Gbit/s.
pps_gbps() { awk -v p="$1" -v s="$2" 'BEGIN { printf "%.3f\n", p * s * 8 / 1e9 }'; }

# ---- the search ------------------------------------------------------------------

declare -a ROWS=()	# the final table, one line each

# row PATH SIZE PPS LOSS TUN_CPU DANTE_CPU TUN_CPU_C DANTE_CPU_C NOTE
row() {
	local g=-
	[ "$3" = - ] || [ "$3" = 0 ] || g=$(pps_gbps "$3" "$2")
	ROWS+=("$(printf '%-7s %5s %8s %6s %6s %7s %7s %7s %7s  %s' "$1" "$2" "$3" "$g" "$4" \
		"$5" "$6" "$7" "$8" "$9")")
}

# per_million TICKS DATAGRAMS: CPU seconds per million datagrams.
per_million() {
	awk -v t="$1" -v n="$2" -v hz="$HZ" 'BEGIN {
		if (n <= 0) print "-"; else printf "%.1f\n", t / hz / (n / 1e6) }'
}

# ticks_s TICKS: clock ticks as seconds.
ticks_s() { awk -v t="$1" -v hz="$HZ" 'BEGIN { printf "%.2f\n", t / hz }'; }

# veth_ceiling SIZE: one unpaced run with no relay.
veth_ceiling() {
	local size=$1 rx
	if ! trial veth "$size" 0 "$UDP_TRIAL_SECS"; then
		say "  veth   $size B: failed: $T_ERR"
		row veth "$size" - - - - - - - "failed: $T_ERR"
		return
	fi
	rx=$(awk -v r="$T_RECV" -v s="$UDP_TRIAL_SECS" 'BEGIN { printf "%.0f\n", r / s }')
	say "  veth   $size B: unpaced: sent $T_PPS/s, received $rx/s, loss $T_LOSS%"
	row veth "$size" "$rx" "$T_LOSS" - - - - "unpaced, no relay: received/s (sent $T_PPS/s)"
}

# measured PATH SIZE PPS: a trial of UDP_CONFIRM_SECS with the relays' CPU
# and the drop counters around it, and a line saying what it saw; the CPU
# seconds per million datagrams received in M_TUN and M_DANTE ("-": none).
measured() {
	local path=$1 size=$2 pps=$3 t0 d0 r0 x0 t1 d1 r1 x1
	M_TUN=- M_DANTE=-
	t0=$(tunnel_ticks) d0=$(dante_ticks)
	r0=$(udp_rcvbuf_errors "$NS_U") x0=$(tun_tx_dropped)
	if ! trial "$path" "$size" "$pps" "$UDP_CONFIRM_SECS"; then
		say "  $path $size B @ $pps/s: run failed: $T_ERR"
		return 1
	fi
	t1=$(tunnel_ticks) d1=$(dante_ticks)
	r1=$(udp_rcvbuf_errors "$NS_U") x1=$(tun_tx_dropped)
	[ -n "$TUN_PID" ] && M_TUN=$(per_million $((t1 - t0)) "$T_RECV")
	M_DANTE=$(per_million $((d1 - d0)) "$T_RECV")
	printf '  %-6s %4s B @ %7s/s for %ss: sent %8s, received %8s, loss %s%%;' \
		"$path" "$size" "$pps" "$UDP_CONFIRM_SECS" "$T_SENT" "$T_RECV" "$T_LOSS"
	printf ' CPU s: tunnel %s, dante %s; drops: dante sockets +%s, TUN queue +%s\n' \
		"$(ticks_s $((t1 - t0)))" "$(ticks_s $((d1 - d0)))" \
		$((r1 - r0)) $((${x1:-0} - ${x0:-0}))
}

# search PATH SIZE: the CPU figures at UDP_CPU_PPS, then the highest
# loss-free rate, confirmed, with CPU figures there too.
search() {
	local path=$1 size=$2 lo=0 hi=0 rate=$UDP_START_PPS n=0 note='' verdict
	local ct=- cd=- c=0 lossy=0 wl
	if measured "$path" "$size" "$UDP_CPU_PPS"; then
		ct=$M_TUN cd=$M_DANTE
		lossfree "$UDP_CPU_PPS" || note="lost $T_LOSS% at $UDP_CPU_PPS/s"
	fi
	while [ "$n" -lt "$UDP_MAX_TRIALS" ]; do
		n=$((n + 1))
		if ! trial "$path" "$size" "$rate" "$UDP_TRIAL_SECS"; then
			say "  $path $size B @ $rate/s: $T_ERR"
			hi=$rate verdict=error
		elif lossfree "$rate"; then
			lo=$rate verdict=ok
		else
			hi=$rate verdict=loss
			awk -v a="$T_PPS" -v o="$rate" 'BEGIN { exit !(a < 0.97 * o) }' &&
				verdict="sender reached only $T_PPS/s" note="generator-limited"
		fi
		printf '  %-6s %4s B @ %7s/s: sent %8s, received %8s, loss %7s%%  %s\n' \
			"$path" "$size" "$rate" "$T_SENT" "$T_RECV" "$T_LOSS" "$verdict"
		if [ "$hi" -eq 0 ]; then
			rate=$((rate * 2))
			[ "$rate" -gt "$UDP_MAX_PPS" ] && { note="reached UDP_MAX_PPS"; break; }
			continue
		fi
		[ "$hi" -le "$UDP_MIN_PPS" ] && break
		[ "$lo" -gt 0 ] && [ $((hi * 100)) -le $((lo * (100 + UDP_PRECISION))) ] && break
		rate=$(((lo + hi) / 2))
	done
	if [ "$lo" -eq 0 ]; then
		say "  $path $size B: no loss-free rate down to $hi/s"
		row "$path" "$size" 0 - - - "$ct" "$cd" "lossy at every rate tried (down to $hi/s)"
		return
	fi
	# confirmation: a lossy run steps the rate down by 10%, UDP_CONFIRMS
	# times at most
	while :; do
		c=$((c + 1))
		if ! measured "$path" "$size" "$lo"; then
			row "$path" "$size" "$lo" - - - "$ct" "$cd" "confirmation run failed"
			return
		fi
		lossfree "$lo" && break
		lossy=$((lossy + 1))
		[ "$c" -gt "$UDP_CONFIRMS" ] && break
		lo=$((lo * 9 / 10))
	done
	[ "$lossy" -gt 0 ] && note="${note:+$note; }$lossy lossy confirmation(s)"
	lossfree "$lo" || note="${note:+$note; }not confirmed"
	wl=${T_WARM_LOST:-0}
	[ "$wl" != 0 ] && note="${note:+$note; }$wl of 20 warm-up datagrams lost"
	row "$path" "$size" "$lo" "$T_LOSS" "$M_TUN" "$M_DANTE" "$ct" "$cd" "${note:--}"
}

# ---- iperf3 -u ---------------------------------------------------------------------

declare -a IROWS=()

# link_packets NS DEV rx|tx: the device's packet counter.
link_packets() {
	ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3_packets" 2>/dev/null || echo 0
}

# iperf_udp LABEL HOST ARGS...: one bounded iperf3 -u run from ns t.  With a
# tunnel, also what the tunnel put out a second (upload: the packets of ns
# t's veth0, to dante; download (-R): what it wrote to its TUN device), its
# CPU seconds and dante's, and where datagrams were dropped: the UDP
# sockets of ns t (the tunnel's, iperf3's) and of ns u (dante's,
# iperf3's), and the TUN queue.
iperf_udp() {
	local label=$1 host=$2 out dev=veth0 dir=tx p0 p1 t0 t1 tunout=- tc=- dc
	local c0 c1 d0 d1 rt0 rt1 ru0 ru1 x0 x1
	shift 2
	case " $* " in *" -R "*) dev=$TUN_DEV dir=rx ;; esac
	p0=$(link_packets "$NS_T" "$dev" "$dir") t0=$(now_ms)
	c0=$(tunnel_ticks) d0=$(dante_ticks) x0=$(tun_tx_dropped)
	rt0=$(udp_rcvbuf_errors "$NS_T") ru0=$(udp_rcvbuf_errors "$NS_U")
	out=$(nst timeout -k 2 $((IPERF_TIME + 20)) iperf3 -c "$host" -p "$IPERF_PORT" -u \
		-b "$IPERF_RATE" -t "$IPERF_TIME" -J "$@" 2>&1)
	p1=$(link_packets "$NS_T" "$dev" "$dir") t1=$(now_ms)
	c1=$(tunnel_ticks) d1=$(dante_ticks) x1=$(tun_tx_dropped)
	rt1=$(udp_rcvbuf_errors "$NS_T") ru1=$(udp_rcvbuf_errors "$NS_U")
	if [ -n "$TUN_DEV" ]; then
		tunout=$(((p1 - p0) * 1000 / (t1 - t0 > 0 ? t1 - t0 : 1)))
		tc=$(ticks_s $((c1 - c0)))
	fi
	dc=$(ticks_s $((d1 - d0)))
	IROWS+=("$(printf '%s' "$out" | "$PY" -c '
import json, sys
label, rest = sys.argv[1], sys.argv[2:]
text = sys.stdin.read()
try:
    d = json.loads(text)
except ValueError:
    d = {"error": text.strip().splitlines()[-1] if text.strip() else "no output"}
try:
    s, r = d["end"]["sum_sent"], d["end"]["sum_received"]
    print("%-36s %7.1f %7.1f %8d %6.2f %9s %5s %5s  %s" % (label, s["bits_per_second"] / 1e6,
          r["bits_per_second"] / 1e6, s["packets"], r["lost_percent"], *rest))
except (KeyError, TypeError):
    print("%-36s failed: %s" % (label, str(d.get("error", "no result"))[:70]))' \
		"$label" "$tunout" "$tc" "$dc" \
		"t+$((rt1 - rt0)) u+$((ru1 - ru0)) q+$((${x1:-0} - ${x0:-0}))")")
	say "  ${IROWS[-1]}"
}

iperf_set() {	# PATH HOST: the four runs through one path
	local sz
	for sz in 1400 64; do
		iperf_udp "$1, -l $sz, up" "$2" -l "$sz"
		iperf_udp "$1, -l $sz, down (-R)" "$2" -l "$sz" -R
	done
}

# ---- tunnels -------------------------------------------------------------------------

# shellcheck disable=SC2317  # called through wait_for
hev_up() { ip -n "$NS_T" link show "$HEV_TUN" 2>/dev/null | grep -q ',UP'; }

# start_hev: hev-socks5-tunnel on $HEV_TUN with dante as its upstream.
start_hev() {
	cat >"$WORK/hev.yml" <<EOF
tunnel:
  name: $HEV_TUN
  mtu: 1500
  multi-queue: false
  ipv4: ${TUN_V4%/*}
socks5:
  port: $PORT_DANTE
  address: $U_V4
  udp: 'udp'
misc:
  log-file: stderr
  log-level: warn
  limit-nofile: 65535
EOF
	start_bg hev "$NS_T" "$HEV" "$WORK/hev.yml"
	TUN_PID=$BG_PID TUN_DEV=$HEV_TUN
	wait_for 10 hev_up && pid_alive "$TUN_PID" &&
		ip -n "$NS_T" route replace "$NET_V4" dev "$HEV_TUN"
}

# ---- the run -------------------------------------------------------------------------

topo_up || { warn "cannot create the namespaces"; exit 1; }
# lib.sh's danted configuration, as the e2e suites run it (DANTE_CONNECTDST
# overrides its udp.connectdst: no)
dante_conf "$WORK/danted.conf" "$PORT_DANTE" none "$WORK/danted.log"
start_bg dante "$NS_U" /usr/sbin/danted -f "$WORK/danted.conf" -p "$WORK/danted.pid"
wait_for 10 port_listening "$NS_U" "$U_V4" "$PORT_DANTE" ||
	{ warn "danted did not start:"; tail -n 20 "$WORK/dante.log" "$WORK/danted.log" >&2; exit 1; }
start_bg iperf-u "$NS_U" iperf3 -s -B "$DST_V4" -p "$IPERF_PORT"
start_bg iperf-v "$NS_U" iperf3 -s -B "$U_V4" -p "$IPERF_PORT"
if ! wait_for 10 port_listening "$NS_U" "$DST_V4" "$IPERF_PORT" ||
	! wait_for 10 port_listening "$NS_U" "$U_V4" "$IPERF_PORT"; then
	warn "iperf3 -s did not start"
	exit 1
fi

T_START=$(now_ms)
say "UDP through dante's SOCKS5 UDP relay; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg);" \
	"$("$SLUICE" -V 2>/dev/null | head -n1); $(/usr/sbin/danted -v 2>&1 | head -n1 | cut -d. -f1-3)"
say "loss-free: <= $UDP_LOSS% lost over ${UDP_TRIAL_SECS}s runs, confirmed over ${UDP_CONFIRM_SECS}s"

SLUICE_UDP=1
"$SLUICE" --help 2>&1 | grep -q -- '--udp' || SLUICE_UDP=0
for path in $UDP_PATHS; do
	TUN_PID='' TUN_DEV=''
	case $path in
	veth | dante) ;;
	sluice)
		if [ "$SLUICE_UDP" = 0 ]; then
			say "sluice: skipped: this sluice has no --udp option (no UDP relaying yet)"
			continue
		fi
		if ! start_sluice sluice --upstream "socks5://$U_V4:$PORT_DANTE"; then
			say "sluice: skipped: $SLUICE_ERR"
			show_log "$WORK/sluice.log"
			continue
		fi
		TUN_PID=$SLUICE_PID TUN_DEV=$SLUICE_TUN
		;;
	hev)
		if [ ! -x "$HEV" ]; then
			say "hev: skipped: no hev-socks5-tunnel at $HEV" \
				"(build it with /work/shared/tools/peer-bench/build-hev.sh, or set HEV)"
			continue
		fi
		if ! start_hev; then
			say "hev: skipped: it did not start"
			show_log "$WORK/hev.log"
			stop_pid "$TUN_PID"
			continue
		fi
		;;
	*) warn "unknown path $path (UDP_PATHS: veth dante sluice hev)"; continue ;;
	esac
	say "$path:"
	for size in $UDP_SIZES; do
		if [ "$path" = veth ]; then veth_ceiling "$size"; else search "$path" "$size"; fi
	done
	if [ "$IPERF_RUNS" = yes ]; then
		case $path in
		veth) iperf_set "veth (no relay)" "$U_V4" ;;
		sluice | hev) iperf_set "$path" "$DST_V4" ;;
		esac
	fi
	case $path in
	sluice)
		pid_alive "$SLUICE_PID" || say "note: sluice died during the benchmark; see $SLUICE_LOG"
		stop_sluice || say "note: $SLUICE_ERR"
		;;
	hev)
		pid_alive "$TUN_PID" || say "note: hev died during the benchmark; see $WORK/hev.log"
		stop_pid "$TUN_PID"
		ip -n "$NS_T" link del "$HEV_TUN" 2>/dev/null
		;;
	esac
done

say
say "== UDP through dante: highest loss-free rate (loss <= $UDP_LOSS% over" \
	"${UDP_TRIAL_SECS}s, confirmed over ${UDP_CONFIRM_SECS}s; Gbps of UDP payload)"
say "   CPU: seconds per million datagrams, of the tunnel (tun) and of dante, at that"
say "   rate and at a common $UDP_CPU_PPS/s"
printf '%-7s %5s %8s %6s %6s %7s %7s %7s %7s  %s\n' "" "" "" "" "" "@rate" "@rate" \
	"@$UDP_CPU_PPS" "@$UDP_CPU_PPS" ""
printf '%-7s %5s %8s %6s %6s %7s %7s %7s %7s  %s\n' path bytes pkt/s Gbps loss% \
	tun dante tun dante note
for r in "${ROWS[@]}"; do say "$r"; done
if [ ${#IROWS[@]} -gt 0 ]; then
	say
	say "== iperf3 -u -b $IPERF_RATE, ${IPERF_TIME}s"
	say "   Mbit/s sent and received, loss as iperf3 reports it; tun out/s: packets"
	say "   a second the tunnel put out (up: to dante; down: into its TUN); CPU"
	say "   seconds of the tunnel and of dante; datagrams dropped at the UDP sockets"
	say "   of ns t (t: the tunnel's, iperf3's) and of ns u (u: dante's, iperf3's),"
	say "   and at the TUN queue (q)"
	printf '%-36s %7s %7s %8s %6s %9s %5s %5s  %s\n' run sent recv packets loss% \
		"tun out/s" tunCPU dCPU drops
	for r in "${IROWS[@]}"; do say "$r"; done
fi
say "# udp.sh took $((($(now_ms) - T_START) / 1000)) s; load average now $(cut -d" " -f1-3 /proc/loadavg) (other load skews every figure)"
exit 0
