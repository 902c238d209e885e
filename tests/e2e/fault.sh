#!/usr/bin/env bash
# shellcheck disable=SC2034  # HAVE_* are read through ${!v} in need()
# fault.sh - sluice when things go wrong around it, with real peers in
# network namespaces of their own (see lib.sh for the topology).  Needs root.
#
#   tests/e2e/fault.sh            every case
#   tests/e2e/fault.sh NAME...    only the cases whose names contain a NAME
#
#   tun_deleted                 `ip link del` of sluice's TUN: exit non-zero
#                               within 1.5 s, an error logged, no spinning
#   persistent_offload_switch   one persistent TUN device, sluice run on it
#                               with --tun-offload yes then no (and no then
#                               yes): every run carries a flow
#   proxy_routed_into_tun       the route to the proxy points into the TUN:
#                               flows fail fast, a warning or two about the
#                               routing loop, no storm of flows, sluice lives
#   garbage_flood               malformed and hostile packets written into
#                               the TUN during a transfer: the transfer is
#                               intact, new flows work, drop counters rise
#   fd_limit_3000               soft fd limit 1024 (hard high): 3,000
#                               concurrent echo flows all work
#   fd_limit_low_hard           fd limit 1024:1024: sluice starts, lowers
#                               max_flows and says so once; flows beyond it
#                               get a RST from the max_flows check, not EMFILE
#
# Prints "ok NAME", "FAIL NAME: why" or "skip NAME: why" per case, then
# "fault: N passed, N failed, N skipped".  Exit status 0 when nothing
# failed.  Environment: SLUICE, SLUICE_WRAPPER, E2E_LOG_LEVEL, E2E_KEEP
# (see lib.sh).
set -u

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
suite_init "$@"
LOAD_PY=$E2E_LIB_DIR/load.py
PORT_LOAD=7100
UP_DANTE=socks5://$U_V4:$PORT_DANTE
PTUN=slpers$(($$ % 1000))	# the persistent TUN device (ns t only)

EXIT_LIMIT_MS=1500		# exit after the TUN device is gone
FLOOD_PACKETS=200000 FLOOD_SECONDS=8
BIG_SIZE=$((64 << 20)) BIG_RATE=8M	# the transfer under the flood: ~8 s
FD_FLOWS=3000 LOW_FLOWS=1500
HARD_NOFILE=$(ulimit -Hn)
[ "$HARD_NOFILE" = unlimited ] && HARD_NOFILE=65536
[ "$HARD_NOFILE" -gt 65536 ] && HARD_NOFILE=65536
TF=1
if [ -n "$SLUICE_WRAPPER" ]; then
	EXIT_LIMIT_MS=6000 TF=6
	FLOOD_PACKETS=20000 BIG_SIZE=$((8 << 20)) BIG_RATE=1M
	FD_FLOWS=1500
fi

# ---- set-up ---------------------------------------------------------------

HAVE_DANTE=0 HAVE_SRV=0 HAVE_LOAD=0
setup() {
	suite_copy_sluice || return 1
	suite_topo_up || return 1
	start_servers && HAVE_SRV=1
	suite_start_load "$PORT_LOAD"
	suite_start_dante
	suite_big_file "$BIG_SIZE" || return 1
	suite_servers_ok
}

# ---- helpers --------------------------------------------------------------

# log_clean: no sanitizer report in the current sluice log (lib.sh checks
# only the last log of a case; call this before starting another).
log_clean() {
	declare -F sanitizer_report >/dev/null || return 0
	! sanitizer_report "$SLUICE_LOG" || why "sanitizer report in $SLUICE_LOG"
}

# stat_drops LINE: every packet sluice counts as dropped on input (TUN
# reads it threw away, lwIP's IP and TCP drops).
stat_drops() {
	printf '%s' "$1" | sed -nE 's/.*tun rx [0-9]+ packets \(([0-9]+) dropped[^)]*\).*lwip dropped ([0-9]+) ip, ([0-9]+) tcp.*/\1 \2 \3/p' |
		awk '{ print $1 + $2 + $3 }'
}

# page_ok [MAX_TIME]: the greeting page through the tunnel.
page_ok() {
	local out
	out=$(tcurl -sS --max-time "${1:-10}" "http://$DST_V4/" 2>&1)
	case $out in *"hello from ns u"*) return 0 ;; esac
	PAGE_ERR=$out
	return 1
}

# hold_flows FLOWS TIMEOUT: load.py hold in ns t against the echo server;
# at the peak records sluice's fds and RSS (PEAK_FD, PEAK_RSS) and the
# client's count (PEAK_RES); the client's last line is in HOLD_OUT.
hold_flows() {
	local flows=$1 timeout=$2 cpid
	rm -f "$WORK/peak" "$WORK/release"
	nst timeout -k 2 $((timeout + 60)) "$PY" "$LOAD_PY" hold "$DST_V4" \
		"$PORT_LOAD" "$flows" "$timeout" --peak "$WORK/peak" \
		--release "$WORK/release" >"$WORK/hold.out" 2>&1 &
	cpid=$!
	E2E_PIDS+=("$cpid")
	wait_for $((timeout + 30)) test -s "$WORK/peak"
	PEAK_FD=$(fd_count "$SLUICE_PID") PEAK_RSS=$(vmrss_kib "$SLUICE_PID")
	PEAK_RES=$(cat "$WORK/peak" 2>/dev/null)
	PEAK_STATS=$(sluice_stats)
	touch "$WORK/release"
	wait_for 30 pid_gone "$cpid"
	stop_pid "$cpid" 2
	HOLD_OUT=$(tail -n 1 "$WORK/hold.out")
}

# ---- the cases ------------------------------------------------------------

case_tun_deleted() {
	local pid t0 el=-1 c0 c1 rc
	sluice_up --upstream "socks5://$U_V4:$PORT_NOBODY" || return 1
	pid=$SLUICE_PID
	SLUICE_PID=	# this case stops it itself
	t0=$(now_ms)
	ip -n "$NS_T" link del "$SLUICE_TUN" || why "cannot delete $SLUICE_TUN" || return 1
	while pid_alive "$pid" && [ $(($(now_ms) - t0)) -lt "$EXIT_LIMIT_MS" ]; do
		sleep 0.02
	done
	if pid_alive "$pid"; then
		c0=$(cpu_ticks "$pid")
		sleep 1
		c1=$(cpu_ticks "$pid")
		stop_pid "$pid" 2 KILL
		SLUICE_RC=$STOP_RC
		why "still running $((EXIT_LIMIT_MS + 1000)) ms after its TUN device was deleted" \
			"(CPU $((${c1:-0} - ${c0:-0})) ticks in the last second, $(getconf CLK_TCK)/s is one core)"
		return 1
	fi
	el=$(($(now_ms) - t0))
	stop_pid "$pid" 1
	rc=$STOP_RC SLUICE_RC=$STOP_RC
	say "    # exited $el ms after the TUN device was deleted, status $rc: $(grep -E ' (error|warn): ' "$SLUICE_LOG" | tail -n 1 | cut -c14-)"
	[ "$rc" != 0 ] || why "exit status 0 after losing the TUN device, want non-zero" || return 1
	grep -qE ' error: ' "$SLUICE_LOG" || why "no error logged about the TUN device" || return 1
	if [ -n "$SLUICE_WRAPPER" ] && [ "$rc" = 99 ]; then
		why "wrapper reported errors (exit 99; see $SLUICE_LOG)"
		return 1
	fi
}

# ptun_run OFFLOAD: sluice on the persistent device with --tun-offload
# OFFLOAD carries a page; then it stops with status 0 and leaves the
# device in place.
ptun_run() {
	local off=$1 pid st
	ip -n "$NS_T" route del "$NET_V4" dev "$PTUN" 2>/dev/null
	ip -n "$NS_T" -6 route del "$NET_V6" dev "$PTUN" 2>/dev/null
	sluice_up --upstream "$UP_DANTE" --tun "$PTUN" --tun-offload "$off" ||
		why "--tun-offload $off: $CASE_WHY" || return 1
	if ! page_ok 5; then
		st=$(sluice_stats)
		why "--tun-offload $off ($PTUN_ORDER): no page through sluice: $PAGE_ERR; ${st#*stats: }"
		return 1
	fi
	pid=$SLUICE_PID
	SLUICE_PID=
	stop_pid "$pid" "$SLUICE_STOP_TIMEOUT"
	SLUICE_RC=$STOP_RC
	[ "$STOP_KILLED" = 0 ] || why "--tun-offload $off: still running after SIGTERM" || return 1
	log_clean || return 1
	[ "$STOP_RC" = 0 ] || why "--tun-offload $off: exit $STOP_RC after SIGTERM" || return 1
	ip -n "$NS_T" link show "$PTUN" >/dev/null 2>&1 ||
		why "sluice deleted the persistent device $PTUN it did not create" || return 1
}

case_persistent_offload_switch() {
	need HAVE_DANTE || return
	local order off
	for order in "yes no" "no yes"; do
		PTUN_ORDER="order: ${order% *} then ${order#* }"
		ip -n "$NS_T" tuntap add mode tun name "$PTUN" ||
			why "cannot create a persistent TUN device" || return 1
		for off in $order; do
			LOG_SFX="-${order% *}-$off"
			ptun_run "$off" || break
		done
		LOG_SFX=
		ip -n "$NS_T" tuntap del mode tun name "$PTUN" 2>/dev/null
		[ -z "$CASE_WHY" ] || return 1
	done
}

case_proxy_routed_into_tun() {
	need HAVE_DANTE || return
	local t0 el rc st acc loops
	# --max-flows bounds the storm a loop makes when nothing stops it
	sluice_up --upstream "$UP_DANTE" --max-flows 64 || return 1
	ip -n "$NS_T" route add "$U_V4/32" dev "$SLUICE_TUN" ||
		why "cannot route $U_V4 into the TUN" || return 1
	t0=$(now_ms)
	tcurl -sS --max-time 5 -o /dev/null "http://$U_V4:$PORT_HTTP/" 2>"$WORK/curl.err"
	rc=$? el=$(($(now_ms) - t0))
	sleep 1
	st=$(sluice_stats)
	acc=$(stat_field "$st" accepted)
	loops=$(grep -ci 'routing loop' "$SLUICE_LOG")
	say "    # curl to $U_V4 through the loop: exit $rc after $el ms; $loops log lines about the routing loop"
	say "    # ${st#*stats: }"
	[ "$rc" != 0 ] || why "curl to the proxy's address through the TUN succeeded" || return 1
	[ "$el" -lt 2000 ] || why "curl failed only after $el ms, want < 2 s (exit $rc)" || return 1
	[ -n "$acc" ] || why "no stats line after SIGUSR1" || return 1
	[ "$acc" -lt 10 ] || why "$acc flows accepted from one curl: sluice relays into itself" || return 1
	[ "$loops" -ge 1 ] || why "no warning about the routing loop" || return 1
	[ "$loops" -le 3 ] || why "$loops log lines about the routing loop, want at most 3" || return 1
	still_running || return 1
	# the loop gone, sluice works again
	ip -n "$NS_T" route del "$U_V4/32" dev "$SLUICE_TUN"
	page_ok 10 || why "after the loop route was removed: $PAGE_ERR"
}

# flood_round OFFLOAD: one transfer under a flood, --tun-offload OFFLOAD.
flood_round() {
	local off=$1 cpid st0 st1 d0 d1 fl rc got n
	sluice_up --upstream "$UP_DANTE" --tun-offload "$off" || return 1
	st0=$(sluice_stats)
	rm -f "$WORK/dl.bin"
	tcurl -sS --limit-rate "$BIG_RATE" --connect-timeout $((15 * TF)) \
		--max-time $((120 * TF)) -o "$WORK/dl.bin" "http://$DST_V4/file/big.bin" \
		2>"$WORK/curl.err" &
	cpid=$!
	E2E_PIDS+=("$cpid")
	sleep 0.5
	fl=$(nst timeout -k 2 $((FLOOD_SECONDS + 20)) "$PY" "$LOAD_PY" flood "$SLUICE_TUN" \
		"$FLOOD_PACKETS" "$FLOOD_SECONDS" 2>&1 | tail -n 1)
	pid_alive "$SLUICE_PID" || why "sluice died under the flood ($fl)" || return 1
	wait_for $((130 * TF)) pid_gone "$cpid"
	stop_pid "$cpid" 2
	rc=$STOP_RC
	st1=$(sluice_stats)
	d0=$(stat_drops "$st0") d1=$(stat_drops "$st1")
	got=$(sha256sum <"$WORK/dl.bin" 2>/dev/null | cut -d' ' -f1)
	n=$(stat -c %s "$WORK/dl.bin" 2>/dev/null)
	rm -f "$WORK/dl.bin"
	say "    # --tun-offload $off: flood: $fl; sluice input drops ${d0:-?} -> ${d1:-?}"
	say "    # ${st1#*stats: }"
	case $fl in "sent "*) ;; *) why "the flood did not run: $fl"; return 1 ;; esac
	case $fl in "sent 0 "*) why "no packet of the flood was sent: $fl"; return 1 ;; esac
	[ "$rc" = 0 ] || why "transfer under the flood: curl exit $rc: $(head -c 200 "$WORK/curl.err")" || return 1
	[ "$got" = "$BIG_SHA" ] || why "transfer under the flood: sha256 differs (${n:-0} of $BIG_SIZE bytes)" ||
		return 1
	[ -n "$d0" ] && [ -n "$d1" ] || why "no stats line after SIGUSR1" || return 1
	[ $((d1 - d0)) -ge 1000 ] || why "drop counters rose by $((d1 - d0)) only ($fl)" || return 1
	page_ok $((10 * TF)) || why "new flow after the flood: $PAGE_ERR" || return 1
	still_running || return 1
	stop_sluice || why "at stop: $SLUICE_ERR"
}

case_garbage_flood() {
	need HAVE_DANTE || return
	local off
	for off in yes no; do
		LOG_SFX=-$off
		flood_round "$off" || { LOG_SFX=; CASE_WHY="--tun-offload $off: $CASE_WHY"; return 1; }
	done
	LOG_SFX=
}

case_fd_limit_3000() {
	need HAVE_DANTE HAVE_LOAD || return
	local base after
	if [ "$HARD_NOFILE" -lt $((FD_FLOWS + 200)) ]; then
		CASE_WHY="hard fd limit $HARD_NOFILE is too low for $FD_FLOWS flows"
		return 2
	fi
	sluice_up_nofile 1024 "$HARD_NOFILE" --upstream "$UP_DANTE" || return 1
	base=$(fd_count "$SLUICE_PID")
	hold_flows "$FD_FLOWS" $((60 * TF))
	wait_for $((20 * TF)) fds_settled "$SLUICE_PID" $((base + 16))
	after=$(fd_count "$SLUICE_PID")
	say "    # $FD_FLOWS flows, fd limit 1024:$HARD_NOFILE: ${PEAK_RES:-no peak}; sluice fds $base -> $PEAK_FD -> $after, VmRSS at the peak $((${PEAK_RSS:-0} / 1024)) MiB"
	still_running || return 1
	case $HOLD_OUT in "ok $FD_FLOWS refused 0 failed 0 closed-early 0 "*) ;;
	*) why "$FD_FLOWS flows under a soft fd limit of 1024: ${HOLD_OUT:-no client output}"; return 1 ;; esac
	[ "$after" -le $((base + 16)) ] || why "$after fds open after every flow closed, baseline $base"
}

# limit_lines: how many log lines say that max_flows was lowered for the
# fd limit (not the per-flow "max_flows reached" refusals, nor stats).
LIMIT_RE='(lower|reduc|descriptor|nofile|rlimit)'
limit_lines() { grep -v 'stats:' "$SLUICE_LOG" | grep -iE 'max.?flows' | grep -ciE "$LIMIT_RE"; }

case_fd_limit_low_hard() {
	need HAVE_DANTE HAVE_LOAD || return
	local said said2 ok emfile warns over
	sluice_up_nofile 1024 1024 --upstream "$UP_DANTE" || return 1
	said=$(limit_lines)
	hold_flows "$LOW_FLOWS" $((60 * TF))
	said2=$(limit_lines)
	emfile=$(grep -c 'Too many open files' "$SLUICE_LOG")
	warns=$(grep -cE ' (warn|error): ' "$SLUICE_LOG")
	over=$(stat_field "$PEAK_STATS" 'over max_flows')
	ok=${PEAK_RES#ok }
	ok=${ok%% *}
	say "    # fd limit 1024:1024, $LOW_FLOWS flows tried: ${PEAK_RES:-no peak}; sluice fds at the peak $PEAK_FD"
	say "    # start-up lines about the limit: $said ($(grep -v 'stats:' "$SLUICE_LOG" |
		grep -iE 'max.?flows' | grep -iE "$LIMIT_RE" | head -n 1 | cut -c14-))"
	say "    # EMFILE lines: $emfile, warn/error lines: $warns; ${PEAK_STATS#*stats: }"
	still_running || return 1
	[ "$said" = 1 ] || why "$said log lines about the fd limit at start-up, want exactly 1" || return 1
	[ "$said2" = 1 ] || why "$said2 log lines about the fd limit after the flows, want still 1" || return 1
	[ "${ok:-0}" -gt 0 ] || why "no flow carried: ${PEAK_RES:-no peak} (${HOLD_OUT})" || return 1
	[ "${over:-0}" -gt 0 ] || why "no flow refused as over max_flows (${PEAK_RES})" || return 1
	[ "$emfile" = 0 ] || why "$emfile 'Too many open files' lines: max_flows was not lowered enough" ||
		return 1
	[ "$warns" -le 20 ] || why "$warns warn/error lines, want rate-limited (<= 20)" || return 1
	# a slot comes free again once the held flows are gone
	wait_for $((10 * TF)) page_ok 5 || why "no new flow after the held ones closed: $PAGE_ERR"
}

# ---- driver -----------------------------------------------------------------

CASES="tun_deleted persistent_offload_switch proxy_routed_into_tun garbage_flood
fd_limit_3000 fd_limit_low_hard"

suite_run fault "$CASES"
