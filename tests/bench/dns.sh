#!/usr/bin/env bash
# dns.sh - DNS through sluice: dnsperf against a dnsmasq serving a test
# zone, straight to the resolver and through sluice's two DNS modes, side
# by side, in namespaces of its own (tests/e2e/lib.sh).  A benchmark, not a
# test: it asserts nothing.  Needs root.
#
#   tests/bench/dns.sh
#
# dnsmasq in ns u answers for DNS_NAMES (1000) names name0.test ..
# name999.test from a hosts file of its own (nameN.test is 198.18.2.0 + N),
# on 198.18.1.1:53 and 198.19.0.2:53, UDP and TCP; it has no upstream
# servers, so every answer comes from its own data, never from recursion.
# The paths (DNS_PATHS, default "direct direct-tcp veth tcp fake-ip"):
#
#   direct      dnsperf in ns u -> 198.18.1.1:53: the resolver alone, no
#               network, no tunnel
#   direct-tcp  the same over TCP (dnsperf -m tcp, pipelined): dnsmasq's TCP
#               side alone, what sluice's tcp mode ends up at.  dnsmasq
#               closes a TCP connection after 100 queries (TCP_MAX_QUERIES,
#               compiled in), so dnsperf runs with num-queries-per-conn=100
#   veth        dnsperf in ns t -> 198.19.0.2:53 over the veth, no tunnel
#   tcp         dnsperf in ns t -> 198.18.1.1:53 -> TUN -> sluice --dns tcp
#               -> DNS over TCP through dante (socks5) -> dnsmasq's TCP side
#               (which closes each of sluice's connections after 100
#               queries, too)
#   fake-ip     the same with sluice --dns fake-ip --fake-ipv4
#               198.18.128.0/17: A queries answered by sluice from the pool,
#               nothing leaves ns t
#
# Each path gets two runs of DNS_QUERIES (10000) A queries, the names in
# turn (name0, name1, ..., name999, name0, ...):
#   unpaced  dnsperf as fast as it goes, -c DNS_CLIENTS (4) sockets and at
#            most -q DNS_OUTSTANDING (64) queries outstanding: queries/s;
#            its latency is mostly the time spent queued (Little's law)
#   paced    -Q DNS_PACED_QPS (2000) queries a second, below every path's
#            rate on an ordinary machine: the latency of a query that does
#            not wait behind others
# Every run is bounded by -n 1 (the query file once) and -l DNS_TIME (30)
# seconds, and dnsperf by timeout(1); a query unanswered after 5 s is lost.
#
# Latency percentiles: dnsperf 2.10 prints only the average and standard
# deviation, so it runs with -v, which prints one line per answer with its
# latency; p50 and p99 (nearest rank, over the answered queries) are
# computed from those lines.  sluice's CPU is utime + stime of its
# /proc/PID/stat before and after each run, in seconds and microseconds
# per query; its stats line (SIGUSR1) after each run gives its own view
# (cumulative since it started: its p50/p99 are bucket bounds, powers of
# two, of the time from query to resolver answer in tcp mode).
#
# "conns" is the TCP connections opened in the client's namespace during
# the run (TcpActiveOpens of /proc/net/snmp there): dnsperf's for
# direct-tcp, sluice's (to dante) for tcp.  "bad id" counts answers dnsperf
# threw away for an ID it was not waiting for (it counts those queries as
# lost).
#
# Before each path, one dig query for name7.test shows the answer the path
# gives (and warms sluice's connections to the resolver up in tcp mode).
#
# Environment: the knobs above; SLUICE (see lib.sh; copied into the run's
# directory first), E2E_KEEP=1 keeps the logs (dnsperf's output among
# them).  The defaults take about 35 seconds.
set -u
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/../e2e/lib.sh"
require_root

DNS_NAMES=${DNS_NAMES:-1000}
DNS_QUERIES=${DNS_QUERIES:-10000}
DNS_CLIENTS=${DNS_CLIENTS:-4}
DNS_OUTSTANDING=${DNS_OUTSTANDING:-64}
DNS_PACED_QPS=${DNS_PACED_QPS:-2000}
DNS_TIME=${DNS_TIME:-30}
DNS_PATHS=${DNS_PATHS:-direct direct-tcp veth tcp fake-ip}
FAKE_POOL=198.18.128.0/17
PORT_DNS=53
HZ=$(getconf CLK_TCK)

[ -x "$SLUICE" ] || { warn "no sluice binary at $SLUICE (run make first)"; exit 1; }
[ -x /usr/sbin/danted ] || { warn "dante-server is not installed (make deps)"; exit 1; }
for c in dnsmasq dnsperf dig; do
	command -v "$c" >/dev/null || { warn "$c is not installed (make deps)"; exit 1; }
done
if [ "$DNS_NAMES" -lt 8 ] || [ "$DNS_NAMES" -gt 30000 ]; then
	warn "DNS_NAMES must be 8..30000"
	exit 1
fi

work_dir
cp "$SLUICE" "$WORK/sluice" || { warn "cannot copy $SLUICE"; exit 1; }
SLUICE=$WORK/sluice

# name_addr N: the address dnsmasq gives nameN.test.
name_addr() { echo "198.18.$((2 + $1 / 256)).$(($1 % 256))"; }

# The zone, and the queries: DNS_QUERIES lines, the names in turn.
awk -v n="$DNS_NAMES" 'BEGIN {
	for (i = 0; i < n; i++)
		printf "198.18.%d.%d name%d.test\n", 2 + int(i / 256), i % 256, i }' \
	>"$WORK/zone.hosts"
awk -v n="$DNS_NAMES" -v q="$DNS_QUERIES" 'BEGIN {
	for (i = 0; i < q; i++) printf "name%d.test A\n", i % n }' >"$WORK/queries"

topo_up || { warn "cannot create the namespaces"; exit 1; }
start_dante dante "$PORT_DANTE" none || exit 1
# --local=/test/: the zone is dnsmasq's own (NXDOMAIN for other .test
# names); --no-resolv and no server=: nothing is ever forwarded.
start_bg dnsmasq "$NS_U" dnsmasq --keep-in-foreground --conf-file=/dev/null \
	--no-resolv --no-hosts --addn-hosts="$WORK/zone.hosts" --local=/test/ \
	--listen-address="$DST_V4" --listen-address="$U_V4" --bind-interfaces \
	--port="$PORT_DNS" --pid-file= --user=root --log-facility=-
DNSMASQ_PID=$BG_PID
if ! wait_for 10 port_listening "$NS_U" "$DST_V4" "$PORT_DNS" ||
	! wait_for 10 port_listening "$NS_U" "$U_V4" "$PORT_DNS"; then
	warn "dnsmasq did not start:"
	show_log "$WORK/dnsmasq.log" >&2
	exit 1
fi

# ---- one run ---------------------------------------------------------------

declare -a ROWS=()	# the final table

# dnsperf_run NS SERVER OUT ARGS...: one bounded dnsperf run, its output in OUT.
dnsperf_run() {
	local ns=$1 server=$2 out=$3
	shift 3
	ip netns exec "$ns" timeout -k 2 $((DNS_TIME + 15)) dnsperf -s "$server" \
		-p "$PORT_DNS" -d "$WORK/queries" -n 1 -l "$DNS_TIME" -t 5 -v "$@" \
		>"$out" 2>&1
}

# dnsperf_figures OUT: "sent completed lost qps avg p50 p99 max badid rcodes" from
# dnsperf's output (latencies in ms; "-" where missing).
dnsperf_figures() {
	"$PY" - "$1" <<'EOF'
import re, sys
lat, codes, badid = [], {}, 0
st = {}
with open(sys.argv[1], errors="replace") as f:
    for line in f:
        m = re.match(r"> (\S+) \S+ \S+ ([0-9.]+)$", line.strip())
        if m:
            codes[m.group(1)] = codes.get(m.group(1), 0) + 1
            lat.append(float(m.group(2)) * 1000)
            continue
        if "unexpected (maybe timed out) id" in line:
            badid += 1
            continue
        m = re.match(r"\s*(Queries sent|Queries completed|Queries lost|"
                     r"Queries per second|Average Latency \(s\)):\s+([0-9.]+)", line)
        # the first: over TCP, a second "Average Latency" is of connecting
        if m and m.group(1) not in st:
            st[m.group(1)] = float(m.group(2))
lat.sort()
def q(p):
    if not lat:
        return "-"
    k = max(0, min(len(lat) - 1, -(-len(lat) * p // 100) - 1))
    return "%.3f" % lat[int(k)]
def g(k, fmt):
    return fmt % st[k] if k in st else "-"
print(g("Queries sent", "%d"), g("Queries completed", "%d"), g("Queries lost", "%d"),
      g("Queries per second", "%.0f"),
      "%.3f" % (st["Average Latency (s)"] * 1000) if "Average Latency (s)" in st else "-",
      q(50), q(99), "%.3f" % lat[-1] if lat else "-", badid,
      ",".join("%s:%d" % kv for kv in sorted(codes.items())) or "-")
EOF
}

# tcp_opens NS: TCP connections opened from namespace NS so far.
tcp_opens() {
	# shellcheck disable=SC2016  # awk's own variables
	ip netns exec "$1" awk '/^Tcp:/ {
		if (!h) { for (i = 2; i <= NF; i++) if ($i == "ActiveOpens") c = i; h = 1 }
		else if (c) print $c }' /proc/net/snmp
}

# ticks_s TICKS: clock ticks as seconds.
ticks_s() { awk -v t="$1" -v hz="$HZ" 'BEGIN { printf "%.2f\n", t / hz }'; }

# us_per_query TICKS QUERIES: CPU microseconds per query.
us_per_query() {
	awk -v t="$1" -v n="$2" -v hz="$HZ" 'BEGIN {
		if (n + 0 <= 0) print "-"; else printf "%.1f\n", t / hz * 1e6 / n }'
}

# measure PATH NS SERVER PACING [DNSPERF_ARGS...]: one run of dnsperf, a
# line saying what it saw, and a row of the final table.  A run that gives
# no statistics is made once more (dnsperf 2.10's TCP mode now and then
# stops with "failed to receive packet: Bad file descriptor" when the
# server closes a connection, sluice or not).
measure() {
	local path=$1 ns=$2 server=$3 pacing=$4 out c0='' c1='' cpu=- cpq=- f o0 o1
	local sent answered lost qps avg p50 p99 max badid codes try
	shift 4
	local -a args=(-c "$DNS_CLIENTS" -q "$DNS_OUTSTANDING" "$@")
	[ "$pacing" = paced ] && args+=(-Q "$DNS_PACED_QPS")
	for try in 1 2; do
		out=$WORK/dnsperf-$path-$pacing-$try.out
		o0=$(tcp_opens "$ns")
		[ -n "$SLUICE_PID" ] && c0=$(cpu_ticks "$SLUICE_PID")
		dnsperf_run "$ns" "$server" "$out" "${args[@]}"
		[ -n "$SLUICE_PID" ] && c1=$(cpu_ticks "$SLUICE_PID")
		o1=$(tcp_opens "$ns")
		f=$(dnsperf_figures "$out")
		read -r sent answered lost qps avg p50 p99 max badid codes <<<"$f"
		[ "$sent" != - ] && break
		say "  $path, $pacing: dnsperf failed (try $try): $(tail -n 2 "$out" | tr '\n' ' ')"
	done
	if [ "$sent" = - ]; then
		E2E_KEEP=1	# keep the work directory: the row points into it
		ROWS+=("$(printf '%-10s %-7s  failed: see %s' "$path" "$pacing" "$out")")
		return 1
	fi
	if [ -n "$c0" ] && [ -n "$c1" ]; then
		cpu=$(ticks_s $((c1 - c0))) cpq=$(us_per_query $((c1 - c0)) "$answered")
	fi
	say "  $path, $pacing: $sent sent, $answered answered ($codes), $lost lost" \
		"($badid answers with an unexpected ID), $qps q/s; ms: avg $avg, p50 $p50," \
		"p99 $p99, max $max; $((o1 - o0)) TCP connections; sluice CPU $cpu s"
	ROWS+=("$(printf '%-10s %-7s %6s %5s %6s %7s %7s %7s %7s %7s %6s %6s %6s' "$path" \
		"$pacing" "$answered" "$lost" "$badid" "$qps" "$avg" "$p50" "$p99" "$max" \
		$((o1 - o0)) "$cpu" "$cpq")")
}

# check PATH NS SERVER [DIG_ARGS...]: the answer the path gives for name7.test.
check() {
	local path=$1 ns=$2 server=$3 ans
	shift 3
	ans=$(ip netns exec "$ns" timeout -k 1 8 dig +short +time=3 +tries=1 "$@" \
		@"$server" name7.test A 2>&1 | tr '\n' ' ')
	say "  $path: dig name7.test -> ${ans:-no answer}(dnsmasq's own: $(name_addr 7))"
}

# sluice_dns_stats: the DNS part of a fresh stats line of sluice.
sluice_dns_stats() {
	local line
	line=$(TF=1 sluice_stats) || { say "  (no stats line from sluice)"; return; }
	say "  sluice stats: dns${line##*; dns}"
}

# ---- the run -----------------------------------------------------------------

T_START=$(now_ms)
say "DNS: $DNS_QUERIES A queries per run over $DNS_NAMES names; dnsperf -c $DNS_CLIENTS" \
	"-q $DNS_OUTSTANDING, unpaced and -Q $DNS_PACED_QPS; $(nproc) CPUs, load" \
	"$(cut -d' ' -f1-3 /proc/loadavg)"
say "$("$SLUICE" -V 2>/dev/null | head -n1); $(dnsmasq --version | head -n1 |
	cut -d' ' -f1-3); $(dnsperf -h 2>&1 | sed -n 's/^Version /dnsperf /p')"

for path in $DNS_PATHS; do
	SLUICE_PID=''
	case $path in
	direct | direct-tcp) ns=$NS_U server=$DST_V4 ;;
	veth) ns=$NS_T server=$U_V4 ;;
	tcp | fake-ip)
		ns=$NS_T server=$DST_V4
		mode=(--dns tcp)
		[ "$path" = fake-ip ] && mode=(--dns fake-ip --fake-ipv4 "$FAKE_POOL")
		if ! start_sluice "sluice-$path" --upstream "socks5://$U_V4:$PORT_DANTE" "${mode[@]}"; then
			say "$path: skipped: $SLUICE_ERR"
			show_log "$WORK/sluice-$path.log"
			continue
		fi
		;;
	*) warn "unknown path $path (DNS_PATHS: direct direct-tcp veth tcp fake-ip)"; continue ;;
	esac
	say "$path:"
	extra=()
	if [ "$path" = direct-tcp ]; then
		extra=(-m tcp -O num-queries-per-conn=100)
		check "$path" "$ns" "$server" +tcp
	else
		check "$path" "$ns" "$server"
	fi
	for pacing in unpaced paced; do
		measure "$path" "$ns" "$server" "$pacing" "${extra[@]}"
		[ -n "$SLUICE_PID" ] && sluice_dns_stats
	done
	if [ -n "$SLUICE_PID" ]; then
		pid_alive "$SLUICE_PID" || say "note: sluice died during the benchmark; see $SLUICE_LOG"
		grep -E ' (warn|error)' "$SLUICE_LOG" | head -n 5 | sed 's/^/  sluice log: /'
		stop_sluice || say "note: $SLUICE_ERR"
	fi
done
pid_alive "$DNSMASQ_PID" || say "note: dnsmasq died during the benchmark; see $WORK/dnsmasq.log"

say
say "== DNS, $DNS_QUERIES A queries a run; dnsperf -c $DNS_CLIENTS -q $DNS_OUTSTANDING," \
	"paced: -Q $DNS_PACED_QPS"
say "   latency in ms over the answered queries (p50/p99 from dnsperf -v's per-query"
say "   lines); sluice CPU: utime + stime during the run, seconds and us per answer"
printf '%-10s %-7s %6s %5s %6s %7s %7s %7s %7s %7s %6s %6s %6s\n' path run answered \
	lost "bad id" "q/s" avg p50 p99 max conns "CPU s" "us/q"
for r in "${ROWS[@]}"; do say "$r"; done
say "# dns.sh took $((($(now_ms) - T_START) / 1000)) s"
exit 0
