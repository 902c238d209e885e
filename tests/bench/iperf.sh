#!/usr/bin/env bash
# iperf.sh - `make bench-iperf`: iperf3 throughput through sluice (with dante
# as its SOCKS5 upstream) next to the plain veth path, in namespaces of its
# own.  A benchmark, not a test: it asserts nothing.  Needs root.
#
#   through sluice: iperf3 -c 198.18.1.1 in ns t -> TUN -> sluice -> dante
#                   -> iperf3 -s on 198.18.1.1 in ns u
#   plain veth:     iperf3 -c 198.19.0.2 in ns t -> iperf3 -s on 198.19.0.2
#
# Each run: single stream and -P 4, upload (client -> server) and download
# (-R), bounded by IPERF_TIME seconds (default 5).
set -u
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/../e2e/lib.sh"
require_root

IPERF_TIME=${IPERF_TIME:-5}
IPERF_PORT=5201

[ -x "$SLUICE" ] || { warn "no sluice binary at $SLUICE (run make first)"; exit 1; }
command -v iperf3 >/dev/null || { warn "iperf3 is not installed (make deps)"; exit 1; }

topo_up || { warn "cannot create the namespaces"; exit 1; }
start_dante dante "$PORT_DANTE" none || exit 1
start_bg iperf-tun "$NS_U" iperf3 -s -B "$DST_V4" -p "$IPERF_PORT"
start_bg iperf-veth "$NS_U" iperf3 -s -B "$U_V4" -p "$IPERF_PORT"
wait_for 10 port_listening "$NS_U" "$DST_V4" "$IPERF_PORT" || { warn "iperf3 -s did not start"; exit 1; }
wait_for 10 port_listening "$NS_U" "$U_V4" "$IPERF_PORT" || { warn "iperf3 -s did not start"; exit 1; }
start_sluice sluice --upstream "socks5://$U_V4:$PORT_DANTE" ||
	{ warn "$SLUICE_ERR"; show_log "$WORK/sluice.log"; exit 1; }

say "iperf3, ${IPERF_TIME}s per run, Gbit/s received; $("$SLUICE" -V 2>/dev/null | head -n1), upstream dante"
printf '%-26s %10s %10s %8s\n' "run" "sluice" "veth" "ratio"
for spec in "upload, 1 stream|" "upload, 4 streams|-P 4" \
	"download, 1 stream|-R" "download, 4 streams|-R -P 4"; do
	label=${spec%%|*} args=${spec#*|}
	# shellcheck disable=SC2086
	s=$(gbps "$DST_V4" $args)
	# shellcheck disable=SC2086
	v=$(gbps "$U_V4" $args)
	printf '%-26s %10s %10s %8s\n' "$label" "$s" "$v" "$(ratio "$s" "$v")"
done
pid_alive "$SLUICE_PID" || say "note: sluice died during the benchmark; see $SLUICE_LOG"
stop_sluice || say "note: $SLUICE_ERR"
exit 0
