#!/usr/bin/env bash
# tls.sh - what TLS costs sluice: a benchmark, not a test (it asserts
# nothing).  Needs root; builds the namespace topology of tests/e2e/lib.sh.
#
#   tests/bench/tls.sh
#
# 1. Throughput: iperf3 (-t $IPERF_TIME, default 5, single stream), upload
#    and download (-R), through sluice with a socks5:// upstream (dante) and
#    with a socks5+tls:// upstream (stunnel in front of the same dante), in
#    the same run; Gbit/s and the TLS/plain ratio.
# 2. New flows: sequential short HTTP requests, one connection each (curl,
#    $FLOWS requests or $FLOW_TIME seconds, whichever comes first), through
#    socks5://, through socks5+tls:// with session resumption (stunnel's
#    default) and through socks5+tls:// to an stunnel that does not resume
#    sessions (sessionResume = no, options = NO_TICKET).  Flows per second,
#    sluice's own count of full and resumed handshakes (its exit log line)
#    and sluice's CPU time (utime + stime from /proc/PID/stat, its workers'
#    included: lib.sh cpu_ticks) per flow.
#
# Environment: IPERF_TIME, FLOWS, FLOW_TIME (above); CERTS_KEY=rsa for an RSA
# 2048 server certificate instead of ECDSA P-256; SLUICE (see lib.sh).
set -u
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/../e2e/lib.sh"
require_root

IPERF_TIME=${IPERF_TIME:-5}
FLOWS=${FLOWS:-300}
FLOW_TIME=${FLOW_TIME:-20}
BATCH=50
IPERF_PORT=5201
PORT_TLS=1443 PORT_TLS_NORESUME=1448
PROXY_NAME=proxy.test

[ -x "$SLUICE" ] || { warn "no sluice binary at $SLUICE (run make first)"; exit 1; }
for p in iperf3 stunnel4 curl; do
	command -v $p >/dev/null || { warn "$p is not installed (make deps)"; exit 1; }
done
[ -x /usr/sbin/danted ] || { warn "dante-server is not installed (make deps)"; exit 1; }

work_dir
cp "$SLUICE" "$WORK/sluice" || exit 1
SLUICE=$WORK/sluice
CERTS=$WORK/certs
"$E2E_LIB_DIR/certs.sh" "$CERTS" "$PROXY_NAME" || { warn "certs.sh failed"; exit 1; }

# start_stunnel NAME PORT [EXTRA_LINE...]: server-mode stunnel in ns u on
# $U_V4:PORT in front of dante; errors-only logging.
start_stunnel() {
	local name=$1 port=$2 d=$WORK/$1 l
	shift 2
	mkdir -p "$d"
	{
		echo "foreground = yes"
		echo "pid = $d/stunnel.pid"
		echo "syslog = no"
		echo "debug = 3"
		echo "[svc]"
		echo "accept = $U_V4:$port"
		echo "connect = $U_V4:$PORT_DANTE"
		echo "cert = $CERTS/server.crt"
		echo "key = $CERTS/server.key"
		for l in "$@"; do echo "$l"; done
	} >"$d/stunnel.conf"
	start_bg "$name" "$NS_U" stunnel4 "$d/stunnel.conf"
	wait_for 10 port_listening "$NS_U" "$U_V4" "$port" || {
		warn "stunnel ($name) did not start:"
		tail -n 20 "$WORK/$name.log" >&2
		return 1
	}
}

topo_up || { warn "cannot create the namespaces"; exit 1; }
start_servers || exit 1
start_dante dante "$PORT_DANTE" none || exit 1
start_stunnel stunnel "$PORT_TLS" || exit 1
start_stunnel stunnel-noresume "$PORT_TLS_NORESUME" \
	"sessionResume = no" "options = NO_TICKET" || exit 1
start_bg iperf "$NS_U" iperf3 -s -B "$DST_V4" -p "$IPERF_PORT"
wait_for 10 port_listening "$NS_U" "$DST_V4" "$IPERF_PORT" || { warn "iperf3 -s did not start"; exit 1; }

TLS_ARGS=(--ca-file "$CERTS/ca.crt" --server-name "$PROXY_NAME")
UP_PLAIN=socks5://$U_V4:$PORT_DANTE
UP_TLS=socks5+tls://$U_V4:$PORT_TLS
UP_TLS_NR=socks5+tls://$U_V4:$PORT_TLS_NORESUME

# up NAME ARGS...: start sluice or give up on the whole benchmark.
up() {
	start_sluice "$@" || { warn "sluice: $SLUICE_ERR"; show_log "$SLUICE_LOG" >&2; exit 1; }
}

# down: stop sluice; sets FULL and RESUMED from its exit lines, summed over
# the workers (lib.sh tls_stats), - if none.
down() {
	stop_sluice || say "note: $SLUICE_ERR"
	FULL=- RESUMED=-
	if tls_stats; then FULL=$TLS_FULL RESUMED=$TLS_RESUMED; fi
}

# flow_rate: sequential GET / requests, one connection each, in batches of
# $BATCH per curl process, until $FLOWS requests or $FLOW_TIME seconds.
# Sets NREQ, NOK, SECS, RATE, CPU_MS (sluice CPU per flow).
flow_rate() {
	local t0 t1 c0 c1 hz n out i args
	hz=$(getconf CLK_TCK)
	NREQ=0 NOK=0
	c0=$(cpu_ticks "$SLUICE_PID")
	t0=$(now_ms)
	while [ "$NREQ" -lt "$FLOWS" ] && [ $(($(now_ms) - t0)) -lt $((FLOW_TIME * 1000)) ]; do
		n=$((FLOWS - NREQ))
		[ "$n" -gt "$BATCH" ] && n=$BATCH
		args=()
		for ((i = 0; i < n; i++)); do args+=(-o /dev/null "http://$DST_V4/"); done
		out=$(tcurl -s --max-time 5 -w '%{http_code}\n' "${args[@]}" 2>/dev/null)
		NREQ=$((NREQ + n))
		NOK=$((NOK + $(grep -c '^200$' <<<"$out")))
	done
	t1=$(now_ms)
	c1=$(cpu_ticks "$SLUICE_PID")
	SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1000 }')
	RATE=$(awk -v n="$NOK" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n * 1000 / (b - a) }')
	CPU_MS=$(awk -v c="$((c1 - c0))" -v hz="$hz" -v n="$NOK" \
		'BEGIN { if (n > 0) printf "%.3f", c * 1000 / hz / n; else print "n/a" }')
}

KEY_DESC="ECDSA P-256"
[ "${CERTS_KEY:-ec}" = rsa ] && KEY_DESC="RSA 2048"
say "sluice TLS benchmark: $("$SLUICE" -V 2>/dev/null | head -n1); $(nproc) CPUs;" \
	"stunnel4 -> dante, $KEY_DESC server certificate"
say

# ---- 1. throughput --------------------------------------------------------
up sluice-plain --upstream "$UP_PLAIN"
P_UP=$(gbps "$DST_V4") P_DOWN=$(gbps "$DST_V4" -R)
down
up sluice-tls --upstream "$UP_TLS" "${TLS_ARGS[@]}"
T_UP=$(gbps "$DST_V4") T_DOWN=$(gbps "$DST_V4" -R)
down
say "iperf3, ${IPERF_TIME}s, 1 stream, Gbit/s received"
printf '%-22s %10s %12s %8s\n' "direction" "socks5" "socks5+tls" "ratio"
printf '%-22s %10s %12s %8s\n' "upload" "$P_UP" "$T_UP" "$(ratio "$T_UP" "$P_UP")"
printf '%-22s %10s %12s %8s\n' "download (-R)" "$P_DOWN" "$T_DOWN" "$(ratio "$T_DOWN" "$P_DOWN")"
say

# ---- 2. new flows -----------------------------------------------------------
say "new flows: sequential curl GET / (one connection each), up to $FLOWS or ${FLOW_TIME}s"
printf '%-26s %6s %6s %8s %6s %8s %12s\n' "upstream" "flows" "secs" "flows/s" "full" "resumed" "cpu ms/flow"
declare -A CPU
for spec in "socks5|sluice-rate-plain|$UP_PLAIN" \
	"socks5+tls, resumption|sluice-rate-tls|$UP_TLS" \
	"socks5+tls, no resumption|sluice-rate-tls-nr|$UP_TLS_NR"; do
	IFS='|' read -r label name url <<<"$spec"
	if [ "$url" = "$UP_PLAIN" ]; then
		up "$name" --upstream "$url"
	else
		up "$name" --upstream "$url" "${TLS_ARGS[@]}"
	fi
	flow_rate
	down
	CPU[$label]=$CPU_MS
	printf '%-26s %6s %6s %8s %6s %8s %12s\n' "$label" "$NOK/$NREQ" "$SECS" "$RATE" \
		"$FULL" "$RESUMED" "$CPU_MS"
done
awk -v p="${CPU[socks5]}" -v r="${CPU[socks5+tls, resumption]}" \
	-v f="${CPU[socks5+tls, no resumption]}" 'BEGIN {
	if (p == "n/a" || r == "n/a" || f == "n/a") exit
	printf "sluice CPU per TLS handshake (over plain socks5): resumed %.3f ms, full %.3f ms\n", r - p, f - p }'
exit 0
