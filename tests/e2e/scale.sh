#!/usr/bin/env bash
# shellcheck disable=SC2034  # HAVE_* are read through ${!v} in need()
# scale.sh - sluice under many flows, with real peers in network namespaces
# of their own (see lib.sh for the topology).  Needs root.  About 1-2 min.
#
#   tests/e2e/scale.sh            every case
#   tests/e2e/scale.sh NAME...    only the cases whose names contain a NAME
#
#   flows_10k     10,000 concurrent echo flows through sluice and danted,
#                 sluice started with a soft fd limit of 1024 (as systemd
#                 gives it); all echoes right, fds back near the baseline
#                 after the close.  Prints RSS and fds at the peak and after.
#   stalled_300   300 downloads that stop reading, beside one healthy
#                 download: the healthy flow keeps >= 50% of its solo
#                 throughput (measured in the same run, both printed; a
#                 second sample when the first is under half), new
#                 flows are still accepted, and sluice's RSS stays under
#                 64 MiB + 300 * (2 * flow_buffer + min(4 * flow_buffer, 1 MiB)), and sluice does not spin
#                 (< 20% of a core) while nothing can move.
#
# Prints "ok NAME", "FAIL NAME: why" or "skip NAME: why" per case, figures
# as "    # ..." lines, then "scale: N passed, N failed, N skipped".  Exit
# status 0 when nothing failed.  Environment: SLUICE, SLUICE_WRAPPER,
# E2E_LOG_LEVEL, E2E_KEEP (see lib.sh); SCALE_FLOWS overrides 10000.
set -u

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
suite_init "$@"
LOAD_PY=$E2E_LIB_DIR/load.py
PORT_LOAD=7100
DL_TIME=5
UP_DANTE=socks5://$U_V4:$PORT_DANTE

FLOWS=${SCALE_FLOWS:-10000} FLOWS_TIMEOUT=120
SOFT_NOFILE=1024
# The hard limit: as systemd gives it (524288), or as high as this
# environment lets us go (without CAP_SYS_RESOURCE, the current hard limit).
HARD_NOFILE=$(ulimit -Hn)
[ "$HARD_NOFILE" = unlimited ] && HARD_NOFILE=524288
[ "$HARD_NOFILE" -gt 524288 ] && HARD_NOFILE=524288
FD_SLACK=16		# fds over the baseline allowed once all flows closed
STALLED=300 STALL_SIZE=$((1 << 30)) FLOW_BUFFER_K=256
RSS_BASE_KIB=$((64 << 10))
TF=1
if [ -n "$SLUICE_WRAPPER" ]; then
	FLOWS=${SCALE_FLOWS:-1000} FLOWS_TIMEOUT=600 TF=6
fi

# ---- set-up ---------------------------------------------------------------

HAVE_DANTE=0 HAVE_SRV=0 HAVE_LOAD=0
setup() {
	suite_copy_sluice || return 1
	suite_topo_up || return 1
	start_servers && HAVE_SRV=1
	suite_start_load "$PORT_LOAD"
	suite_start_dante
	suite_servers_ok
}

# ---- helpers --------------------------------------------------------------

# dl_gbps [--socks ADDR,PORT]: one healthy download of $DL_TIME seconds from
# ns t (through the TUN, or straight to the proxy); prints Gbit/s or n/a.
dl_gbps() {
	local out
	out=$(nst timeout -k 2 $((DL_TIME + 20)) "$PY" "$LOAD_PY" download "$DST_V4" \
		"$PORT_LOAD" "$DL_TIME" "$@" 2>&1)
	echo "$out" >>"$WORK/dl.log"
	case $out in "gbps "*) out=${out#gbps }; echo "${out%% *}" ;; *) echo n/a ;; esac
}

HZ=$(getconf CLK_TCK)	# clock ticks a second (cpu_ticks)

# proxy_rcvbufs: "N BIG MAX HELD" for sluice's sockets to danted: how many,
# how many with a receive buffer over 2 x flow_buffer (the kernel's figure
# for SO_RCVBUF = flow_buffer), the largest (bytes) and KiB queued in all.
proxy_rcvbufs() {
	nst ss -tnm state established dst "$U_V4:$PORT_DANTE" 2>/dev/null |
		grep -o 'skmem:(r[0-9]*,rb[0-9]*' |
		awk -F'[(,]' -v lim=$((2 * FLOW_BUFFER_K * 1024)) '
			{ r = substr($2, 2) + 0; b = substr($3, 3) + 0; n++; held += r
			  if (b > lim) big++; if (b > max) max = b }
			END { printf "%d %d %d %d\n", n, big, max, held / 1024 }'
}

# rcvbuf_sampler FILE: until FILE.stop exists (at most 60 s), the largest
# receive buffer of sluice's sockets to danted, every 0.1 s, into FILE.
rcvbuf_sampler() {
	local f=$1 i m=0 v
	for ((i = 0; i < 600; i++)); do
		[ -e "$f.stop" ] && break
		read -r _ _ v _ <<<"$(proxy_rcvbufs)"
		[ "${v:-0}" -gt "$m" ] && m=$v && echo "$m" >"$f"
		sleep 0.1
	done
}

# ---- the cases ------------------------------------------------------------

case_flows_10k() {
	need HAVE_DANTE HAVE_LOAD || return
	local base peak_fd peak_rss after_fd after_rss out cpid res t0 t1 st
	if [ "$HARD_NOFILE" -lt $((FLOWS + 200)) ]; then
		CASE_WHY="hard fd limit $HARD_NOFILE is too low for $FLOWS flows"
		return 2
	fi
	sluice_up_nofile "$SOFT_NOFILE" "$HARD_NOFILE" --upstream "$UP_DANTE" \
		--max-flows $((FLOWS + 100)) || return 1
	base=$(fd_count "$SLUICE_PID")
	rm -f "$WORK/peak" "$WORK/release"
	t0=$(now_ms)
	nst timeout -k 2 $((FLOWS_TIMEOUT + 60)) "$PY" "$LOAD_PY" hold "$DST_V4" \
		"$PORT_LOAD" "$FLOWS" "$FLOWS_TIMEOUT" --peak "$WORK/peak" \
		--release "$WORK/release" >"$WORK/hold.out" 2>&1 &
	cpid=$!
	E2E_PIDS+=("$cpid")
	wait_for $((FLOWS_TIMEOUT + 30)) test -s "$WORK/peak"
	t1=$(now_ms)
	peak_fd=$(fd_count "$SLUICE_PID") peak_rss=$(vmrss_kib "$SLUICE_PID")
	res=$(cat "$WORK/peak" 2>/dev/null)
	st=$(sluice_stats)
	touch "$WORK/release"
	wait_for 30 pid_gone "$cpid"
	stop_pid "$cpid" 2
	out=$(cat "$WORK/hold.out")
	# every flow closed: sluice's fds come back to the baseline
	wait_for $((20 * TF)) fds_settled "$SLUICE_PID" $((base + FD_SLACK))
	after_fd=$(fd_count "$SLUICE_PID") after_rss=$(vmrss_kib "$SLUICE_PID")
	say "    # $FLOWS flows (soft fd limit $SOFT_NOFILE, hard $HARD_NOFILE): ${res:-no peak} after $(((t1 - t0) / 1000)) s"
	say "    # sluice fds: baseline $base, peak $peak_fd, after close $after_fd"
	say "    # sluice VmRSS: peak $((${peak_rss:-0} / 1024)) MiB (${peak_rss:-?} KiB), after close $((${after_rss:-0} / 1024)) MiB"
	say "    # at the peak: ${st#*stats: }"
	say "    # client: $out"
	still_running || return 1
	[ "$res" = "ok $FLOWS refused 0 failed 0" ] ||
		why "at the peak: ${res:-client never got there}, want ok $FLOWS (client: $out)" || return 1
	case $out in "ok $FLOWS refused 0 failed 0 closed-early 0 "*) ;;
	*) why "client: $out"; return 1 ;; esac
	[ "$after_fd" -le $((base + FD_SLACK)) ] ||
		why "$after_fd fds open $((20 * TF)) s after every flow closed, baseline $base" || return 1
}

case_stalled_300() {
	need HAVE_DANTE HAVE_LOAD || return
	local lwip_k solo busy direct0 direct1 r bound c0 c1 cpu rss max=0 res cpid out page st
	local rb_n rb_big rb_max rb_held rb_solo spid
	lwip_k=$((4 * FLOW_BUFFER_K)); [ "$lwip_k" -gt 1024 ] && lwip_k=1024
	bound=$((RSS_BASE_KIB + STALLED * (2 * FLOW_BUFFER_K + lwip_k)))
	sluice_up --upstream "$UP_DANTE" --flow-buffer "${FLOW_BUFFER_K}k" || return 1
	# the solo download's proxy socket: its receive buffer grows (a
	# moving flow), to at most 4 x flow_buffer (8 x in the kernel's count)
	rm -f "$WORK/rb" "$WORK/rb.stop"
	rcvbuf_sampler "$WORK/rb" &
	spid=$!
	E2E_PIDS+=("$spid")
	solo=$(dl_gbps)
	touch "$WORK/rb.stop"
	wait "$spid" 2>/dev/null
	rb_solo=$(cat "$WORK/rb" 2>/dev/null)
	rb_solo=${rb_solo:-0}
	direct0=$(dl_gbps --socks "$U_V4,$PORT_DANTE")
	rm -f "$WORK/peak" "$WORK/release"
	nst timeout -k 2 $((120 * TF + 60)) "$PY" "$LOAD_PY" stall "$DST_V4" "$PORT_LOAD" \
		"$STALLED" "$STALL_SIZE" $((120 * TF)) --peak "$WORK/peak" \
		--release "$WORK/release" >"$WORK/stall.out" 2>&1 &
	cpid=$!
	E2E_PIDS+=("$cpid")
	wait_for $((60 * TF)) test -s "$WORK/peak"
	res=$(cat "$WORK/peak" 2>/dev/null)
	sleep 2	# let every stalled flow fill whatever buffers it can
	# the receive buffers of sluice's sockets to danted: a stalled flow
	# keeps flow_buffer (the kernel doubles it), only moving ones grow
	read -r rb_n rb_big rb_max rb_held <<<"$(proxy_rcvbufs)"
	# nothing can move now: sluice must sleep, not spin
	c0=$(cpu_ticks "$SLUICE_PID")
	sleep 2
	c1=$(cpu_ticks "$SLUICE_PID")
	cpu=$(((${c1:-0} - ${c0:-0}) * 100 / (2 * HZ)))
	page=$(tcurl -sS --max-time $((10 * TF)) "http://$DST_V4/" 2>&1)
	rss=$(vmrss_kib "$SLUICE_PID")
	max=${rss:-0}
	busy=$(dl_gbps)
	# under half of solo: one more sample before calling it starved.  The
	# 2 CPUs are shared with danted, the stalled clients and the load
	# client, and 5 s samples spread from 68% to 120% of solo over four
	# runs; starvation (the bug this guards against: 0.00 Gbit/s) fails
	# both samples.
	if [ "$busy" != n/a ] && [ "$solo" != n/a ] &&
		awk -v a="$busy" -v b="$solo" 'BEGIN { exit !(a < 0.5 * b) }'; then
		r=$(dl_gbps)
		say "    # beside the stalled flows: $busy Gbit/s, under half of solo $solo; once more: $r Gbit/s"
		if [ "$r" != n/a ] && awk -v a="$r" -v b="$busy" 'BEGIN { exit !(a > b) }'; then
			busy=$r
		fi
	fi
	direct1=$(dl_gbps --socks "$U_V4,$PORT_DANTE")
	rss=$(vmrss_kib "$SLUICE_PID")
	[ -n "$rss" ] && [ "$rss" -gt "$max" ] && max=$rss
	st=$(sluice_stats)
	touch "$WORK/release"
	wait_for 30 pid_gone "$cpid"
	stop_pid "$cpid" 2
	out=$(cat "$WORK/stall.out")
	r=$(ratio "$busy" "$solo")
	say "    # healthy download through sluice: solo $solo Gbit/s, beside $STALLED stalled flows $busy Gbit/s: $r of solo (want >= 50%)"
	say "    # the same from ns t straight to danted (no sluice, for reference): solo $direct0 Gbit/s, beside the stalled $direct1 Gbit/s"
	say "    # sluice VmRSS with $STALLED stalled: $((max / 1024)) MiB ($max KiB); bound 64 MiB + $STALLED * (2 * ${FLOW_BUFFER_K} + $lwip_k) KiB = $((bound / 1024)) MiB"
	say "    # sluice CPU with only the stalled flows open: $cpu% of a core (want < 20%)"
	say "    # the solo download's proxy socket: largest receive buffer $((rb_solo / 1024)) KiB (flow_buffer ${FLOW_BUFFER_K} KiB; want over 2 x, at most 8 x)"
	say "    # sluice's $rb_n sockets to danted, stalled: largest receive buffer $((rb_max / 1024)) KiB, $rb_big over 2 x flow_buffer (want 0); $rb_held KiB queued in them"
	say "    # stalled clients: ${res:-never all started}; ${st#*stats: }"
	still_running || return 1
	[ "$res" = "stalled $STALLED failed 0" ] || why "stalled clients: ${res:-none} ($out)" || return 1
	case $page in *"hello from ns u"*) ;;
	*) why "a new flow beside the stalled ones failed: $page"; return 1 ;; esac
	if [ -z "$SLUICE_WRAPPER" ] && [ "$cpu" -ge 20 ]; then
		why "sluice spins at $cpu% of a core while every flow is stalled"
		return 1
	fi
	[ "$rb_solo" -gt $((2 * FLOW_BUFFER_K * 1024)) ] ||
		why "the solo download's receive buffer did not grow: largest $rb_solo bytes" || return 1
	[ "$rb_solo" -le $((8 * FLOW_BUFFER_K * 1024)) ] ||
		why "the solo download's receive buffer grew past 8 x flow_buffer: $rb_solo bytes" || return 1
	[ "$rb_n" -ge "$STALLED" ] ||
		why "ss saw $rb_n of sluice's sockets to danted, want >= $STALLED" || return 1
	[ "$rb_big" = 0 ] ||
		why "$rb_big stalled flows' proxy sockets have a receive buffer over 2 x flow_buffer (largest $rb_max bytes)" ||
		return 1
	[ "$solo" != n/a ] || why "the solo download failed" || return 1
	[ "$busy" != n/a ] || why "the download beside the stalled flows failed" || return 1
	awk -v a="$busy" -v b="$solo" 'BEGIN { exit !(a >= 0.5 * b) }' ||
		why "healthy flow at $r of its solo throughput ($busy vs $solo Gbit/s), want >= 50%" ||
		return 1
	if [ -z "$SLUICE_WRAPPER" ] && [ "$max" -gt "$bound" ]; then
		why "VmRSS $max KiB over the bound $bound KiB"
		return 1
	fi
	[ "$max" -gt 0 ] || why "could not read sluice's VmRSS"
}

# ---- driver -----------------------------------------------------------------

CASES="flows_10k stalled_300"

suite_run scale "$CASES"
