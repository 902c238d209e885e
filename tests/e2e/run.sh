#!/usr/bin/env bash
# shellcheck disable=SC2034  # HAVE_* are read through ${!v} in need()
# run.sh - sluice's end-to-end tests with real peers, in network namespaces
# of their own (see lib.sh for the topology).  Needs root.
#
#   tests/e2e/run.sh              every case
#   tests/e2e/run.sh NAME...      only the cases whose names contain a NAME
#
# Prints "ok NAME", "FAIL NAME: why" or "skip NAME: why" per case, then
# "e2e: N passed, N failed, N skipped".  Exit status 0 when nothing failed.
# Environment: SLUICE, SLUICE_WRAPPER, E2E_LOG_LEVEL, E2E_KEEP (see lib.sh).
set -u

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
suite_init "$@"

UP_DANTE=socks5://$U_V4:$PORT_DANTE
UP_MICRO=socks5://$U_V4:$PORT_MICRO
UP_DANTE_AUTH=socks5://$AUTH_USER:$AUTH_PASS@$U_V4:$PORT_DANTE_AUTH
UP_DANTE_BADPW=socks5://$AUTH_USER:not-the-password@$U_V4:$PORT_DANTE_AUTH
UP_MICRO_AUTH=socks5://$AUTH_USER:$AUTH_PASS@$U_V4:$PORT_MICRO_AUTH
UP_MICRO_BADPW=socks5://$AUTH_USER:not-the-password@$U_V4:$PORT_MICRO_AUTH

BIG_SIZE=$((64 << 20))
SLOW_SIZE=$((256 << 20)) SLOW_MAXTIME=40 SLOW_RSS_LIMIT_KIB=$((64 << 10))
MULTI_FLOWS=200 MULTI_SIZE=$((1 << 20)) MULTI_TIMEOUT=120
TF=1	# time factor for transfer bounds
if [ -n "$SLUICE_WRAPPER" ]; then
	# Under valgrind & co. everything is many times slower, and its RSS
	# says nothing about sluice's: smaller loads, RSS reported only.
	TF=6 BIG_SIZE=$((8 << 20)) SLOW_SIZE=$((32 << 20)) SLOW_MAXTIME=150
	MULTI_FLOWS=50 MULTI_TIMEOUT=300
fi

# ---- set-up ---------------------------------------------------------------

HAVE_DANTE=0 HAVE_DANTE_AUTH=0 HAVE_MICRO=0 HAVE_MICRO_AUTH=0 HAVE_SRV=0
setup() {
	suite_copy_sluice || return 1
	suite_topo_up || return 1
	start_servers && HAVE_SRV=1
	# HAVE_*: 1 running, 0 not installed, 2 failed to start (need() fails
	# the case for both; E2E_ALLOW_MISSING=1 makes "not installed" a skip)
	suite_start_dante
	if [ -x /usr/sbin/danted ]; then
		HAVE_DANTE_AUTH=2
		start_dante dante_auth "$PORT_DANTE_AUTH" username && HAVE_DANTE_AUTH=1
	fi
	if command -v microsocks >/dev/null; then
		HAVE_MICRO=2 HAVE_MICRO_AUTH=2
		start_microsocks micro "$PORT_MICRO" && HAVE_MICRO=1
		start_microsocks micro_auth "$PORT_MICRO_AUTH" "$AUTH_USER" "$AUTH_PASS" &&
			HAVE_MICRO_AUTH=1
	fi
	suite_big_file "$BIG_SIZE" || return 1
	suite_servers_ok
}

# ---- helpers for the cases --------------------------------------------------

# transfer UPSTREAM [SLUICE_ARGS...]: 64 MiB down and up through sluice to
# UPSTREAM.
transfer() {
	sluice_up --upstream "$@" || return 1
	http_download "http://$DST_V4" big.bin "$BIG_SIZE" "$BIG_SHA" || return 1
	http_upload "http://$DST_V4" "$BIG" "$BIG_SIZE" "$BIG_SHA" "up-$CASE" || return 1
	still_running
}

# expect_refused HOST PORT MAX_S [MIN_S]: a plain connect() gets ECONNREFUSED
# within MAX_S seconds (and not before MIN_S), and curl exits 7.
expect_refused() {
	local host=$1 port=$2 max=$3 min=${4:-0} out st el rc t0 t1 url
	out=$(tcli 30 connect "$host" "$port" 20)
	st=${out% *} el=${out##* }
	[ "$st" = refused ] || why "connect() to $host:$port: $out, want refused" || return 1
	awk -v e="$el" -v lo="$min" -v hi="$max" 'BEGIN { exit !(e >= lo && e < hi) }' ||
		why "connect() refused after ${el}s, want [$min, $max)" || return 1
	case $host in *:*) url="http://[$host]:$port/" ;; *) url="http://$host:$port/" ;; esac
	t0=$(now_ms)
	tcurl -sS -g --max-time 20 -o /dev/null "$url" 2>"$WORK/curl.err"
	rc=$?
	t1=$(now_ms)
	[ $rc -eq 7 ] || why "curl $url exit $rc, want 7: $(head -c 200 "$WORK/curl.err")" || return 1
	awk -v e="$((t1 - t0))" -v hi="$max" 'BEGIN { exit !(e / 1000 < hi) }' ||
		why "curl failed only after $((t1 - t0)) ms, want < ${max}s"
}

# ---- the cases ----------------------------------------------------------------

case_transfer_dante() {
	need HAVE_DANTE || return
	transfer "$UP_DANTE"
}

# the plain packet path: no IFF_VNET_HDR, lwIP computes every checksum
case_transfer_no_offload() {
	need HAVE_DANTE || return
	local flags
	transfer "$UP_DANTE" --tun-offload no || return 1
	grep 'ready: ' "$SLUICE_LOG" | grep -q ' offloads' &&
		{ why "ready line says offloads despite --tun-offload no"; return 1; }
	# the kernel's view: IFF_VNET_HDR (0x4000) must be off on the TUN
	flags=$(nst cat "/sys/class/net/$SLUICE_TUN/tun_flags" 2>/dev/null) ||
		why "cannot read tun_flags of $SLUICE_TUN" || return 1
	[ $((flags & 0x4000)) -eq 0 ] || why "IFF_VNET_HDR set on $SLUICE_TUN (tun_flags $flags)"
}

case_transfer_microsocks() {
	need HAVE_MICRO || return
	transfer "$UP_MICRO"
}

case_transfer_dante_auth() {
	need HAVE_DANTE_AUTH || return
	transfer "$UP_DANTE_AUTH"
}

case_auth_wrong_password_dante() {
	need HAVE_DANTE_AUTH || return
	sluice_up --upstream "$UP_DANTE_BADPW" || return 1
	expect_refused "$DST_V4" "$PORT_RAW" 2 || return 1
	expect_refused "$DST_V4" "$PORT_HTTP" 2 || return 1
	still_running || return 1
	ip -n "$NS_T" link show "$SLUICE_TUN" >/dev/null 2>&1 || why "TUN device vanished"
}

case_auth_microsocks() {
	need HAVE_MICRO_AUTH || return
	local out
	sluice_up --upstream "$UP_MICRO_AUTH" || return 1
	out=$(tcurl -sS --max-time 20 "http://$DST_V4/" 2>&1) ||
		why "right password: curl failed: $out" || return 1
	case $out in *"hello from ns u"*) ;; *) why "right password: unexpected page: $out"; return 1 ;; esac
	stop_sluice || why "stop: $SLUICE_ERR" || return 1
	sluice_up --upstream "$UP_MICRO_BADPW" || return 1
	expect_refused "$DST_V4" "$PORT_HTTP" 2 || return 1
	still_running
}

case_concurrent_flows() {
	need HAVE_DANTE || return
	local out
	sluice_up --upstream "$UP_DANTE" || return 1
	out=$(tcli $((MULTI_TIMEOUT + 30)) multi "$DST_V4" "$PORT_RAW" "$MULTI_FLOWS" \
		"$MULTI_SIZE" "$MULTI_TIMEOUT" 2>&1)
	case $out in "ok $MULTI_FLOWS "*) ;; *) why "${out:-no output from the client}"; return 1 ;; esac
	say "    # $MULTI_FLOWS echo flows of $((MULTI_SIZE >> 10)) KiB intact in ${out##* }s"
	still_running
}

case_ipv6_flow() {
	need HAVE_DANTE || return
	local out
	sluice_up --upstream "$UP_DANTE" || return 1
	http_download "http://[$DST_V6]" big.bin "$BIG_SIZE" "$BIG_SHA" || return 1
	out=$(tcli 60 half "$DST_V6" "$PORT_RAW" $((1 << 20)) 2>&1)
	case $out in ok*) ;; *) why "IPv6 half-close exchange: $out"; return 1 ;; esac
	still_running
}

case_ipv6_upstream_address() {
	need HAVE_DANTE || return
	local out
	sluice_up --upstream "socks5://[$U_V6]:$PORT_DANTE" || return 1
	out=$(tcurl -sS --max-time 20 "http://$DST_V4/" 2>&1) || why "curl: $out" || return 1
	case $out in *"hello from ns u"*) ;; *) why "unexpected page: $out"; return 1 ;; esac
	still_running
}

case_connect_port_closed() {
	need HAVE_DANTE || return
	sluice_up --upstream "$UP_DANTE" || return 1
	expect_refused "$DST_V4" "$PORT_CLOSED" 2 || return 1
	expect_refused "$DST_V6" "$PORT_CLOSED" 2 || return 1
	still_running
}

case_connect_upstream_down() {
	sluice_up --upstream "socks5://$U_V4:$PORT_NOBODY" || return 1
	expect_refused "$DST_V4" "$PORT_HTTP" 2 || return 1
	still_running
}

case_connect_upstream_silent() {
	sluice_up --upstream "socks5://$U_V4:$PORT_SILENT" --connect-timeout 2s || return 1
	expect_refused "$DST_V4" "$PORT_HTTP" 6 1.5 || return 1
	still_running
}

case_half_close() {
	need HAVE_DANTE || return
	local out size
	sluice_up --upstream "$UP_DANTE" || return 1
	for size in 1 100000 $((4 << 20)); do
		out=$(tcli 60 half "$DST_V4" "$PORT_RAW" "$size" 2>&1)
		case $out in ok*) ;; *) why "$size bytes: $out"; return 1 ;; esac
	done
	still_running
}

case_slow_reader() {
	need HAVE_DANTE || return
	local out cpid rss max=0 t0 t1 rec n sha
	sluice_up --upstream "$UP_DANTE" || return 1
	t0=$(now_ms)
	tcli $((SLOW_MAXTIME + 30)) slowread "$DST_V4" "$PORT_RAW" slow "$SLOW_SIZE" \
		$((512 << 10)) 0.02 "$SLOW_MAXTIME" >"$WORK/slow.out" 2>&1 &
	cpid=$!
	E2E_PIDS+=("$cpid")
	while pid_alive "$cpid"; do
		rss=$(vmrss_kib "$SLUICE_PID")
		[ -n "$rss" ] && [ "$rss" -gt "$max" ] && max=$rss
		[ $(($(now_ms) - t0)) -gt $(((SLOW_MAXTIME + 40) * 1000)) ] && break
		sleep 0.2
	done
	stop_pid "$cpid" 2
	t1=$(now_ms)
	out=$(cat "$WORK/slow.out")
	say "    # slow reader: max sluice VmRSS $((max / 1024)) MiB ($max KiB), client: $out"
	read -r st n sha _ <<<"$out"
	[ "$st" = "done" ] || why "download incomplete: $out" || return 1
	[ "$n" = "$SLOW_SIZE" ] || why "read $n bytes, want $SLOW_SIZE" || return 1
	rec=$(cat "$WORK/srv/slow" 2>/dev/null)
	[ "$rec" = "$n $sha" ] || why "server sent '$rec', client got '$n $sha'" || return 1
	if [ -z "$SLUICE_WRAPPER" ] && [ "$max" -ge "$SLOW_RSS_LIMIT_KIB" ]; then
		why "max VmRSS $max KiB >= $SLOW_RSS_LIMIT_KIB KiB"
		return 1
	fi
	[ "$max" -gt 0 ] || why "could not read sluice's VmRSS" || return 1
	still_running
}

# A configuration file that -t accepts, and a bad one; see conf/sluice.conf.
write_good_conf() {
	cat >"$1" <<EOF
# sluice test configuration
[tun]
name = sluice0
mtu = 1500
ipv4 = $TUN_V4
ipv6 = $TUN_V6

[upstream]
url = $UP_DANTE
connect_timeout = 5s

[limits]
max_flows = 100
idle_timeout = 1m
flow_buffer = 256k

[log]
level = info
EOF
}

case_bad_config() {
	local f=$WORK/bad.conf rc
	cat >"$f" <<EOF
# a bad configuration: line 4 has an unknown key
[tun]
mtu = 1500
no_such_key = 1
EOF
	# shellcheck disable=SC2086
	nst timeout -k 2 $((10 * TF)) $SLUICE_WRAPPER "$SLUICE" -c "$f" \
		--upstream "$UP_DANTE" >"$WORK/bad.out" 2>"$WORK/bad.err"
	rc=$?
	[ $rc -eq 1 ] || why "exit $rc, want 1; stderr: $(head -c 300 "$WORK/bad.err")" || return 1
	grep -q "bad.conf:4" "$WORK/bad.err" ||
		why "stderr lacks FILE:LINE (bad.conf:4): $(head -c 300 "$WORK/bad.err")" || return 1
	# shellcheck disable=SC2086
	nst timeout -k 2 $((10 * TF)) $SLUICE_WRAPPER "$SLUICE" -t -c "$f" \
		--upstream "$UP_DANTE" >"$WORK/bad.out" 2>"$WORK/bad.err"
	rc=$?
	[ $rc -eq 1 ] || why "-t: exit $rc, want 1" || return 1
	grep -q "bad.conf:4" "$WORK/bad.err" || why "-t: stderr lacks bad.conf:4" || return 1
	if ip -n "$NS_T" link show sluice0 >/dev/null 2>&1; then
		why "a TUN device was left behind"
		return 1
	fi
}

case_check_config() {
	local f=$WORK/good.conf rc
	write_good_conf "$f"
	# shellcheck disable=SC2086
	nst timeout -k 2 $((10 * TF)) $SLUICE_WRAPPER "$SLUICE" -t -c "$f" \
		>"$WORK/good.out" 2>"$WORK/good.err"
	rc=$?
	[ $rc -eq 0 ] || why "-t -c good.conf: exit $rc, want 0: $(head -c 300 "$WORK/good.err")" || return 1
	if [ -r "$REPO_ROOT/conf/sluice.conf" ]; then
		# shellcheck disable=SC2086
		nst timeout -k 2 $((10 * TF)) $SLUICE_WRAPPER "$SLUICE" -t \
			-c "$REPO_ROOT/conf/sluice.conf" --upstream "$UP_DANTE" \
			>"$WORK/good.out" 2>"$WORK/good.err"
		rc=$?
		[ $rc -eq 0 ] || why "-t -c conf/sluice.conf: exit $rc, want 0: $(head -c 300 "$WORK/good.err")" ||
			return 1
	fi
	if ip -n "$NS_T" link show sluice0 >/dev/null 2>&1; then
		why "-t created a TUN device"
		return 1
	fi
}

case_config_file_run() {
	need HAVE_DANTE || return
	local f=$WORK/run.conf out
	write_good_conf "$f"
	# no --ipv4/--ipv6 needed, but start_sluice passes the same values
	sluice_up -c "$f" || return 1
	out=$(tcurl -sS --max-time 20 "http://$DST_V4/" 2>&1) || why "curl: $out" || return 1
	case $out in *"hello from ns u"*) ;; *) why "unexpected page: $out"; return 1 ;; esac
	still_running
}

case_tun_setup() {
	need HAVE_DANTE || return
	local link addrs
	sluice_up --upstream "$UP_DANTE" --tun sltest0 --mtu 1400 || return 1
	link=$(ip -n "$NS_T" link show sltest0 2>&1) || why "no TUN sltest0: $link" || return 1
	case $link in *"mtu 1400"*) ;; *) why "MTU not 1400: $link"; return 1 ;; esac
	case $link in *"UP"*) ;; *) why "TUN not up: $link"; return 1 ;; esac
	addrs=$(ip -n "$NS_T" addr show dev sltest0)
	case $addrs in *"inet $TUN_V4 "*) ;; *) why "no $TUN_V4 on the TUN: $addrs"; return 1 ;; esac
	case $addrs in *"inet6 $TUN_V6 "*) ;; *) why "no $TUN_V6 on the TUN: $addrs"; return 1 ;; esac
	local rt
	rt=$({ ip -n "$NS_T" route show; ip -n "$NS_T" -6 route show; } |
		grep -vF -e "$NET_V4" -e "$NET_V6" | grep sltest0 | grep -v "proto kernel")
	[ -z "$rt" ] || why "sluice added routes of its own: $rt"
}

case_sigterm() {
	local sig rc
	for sig in TERM INT; do
		sluice_up --upstream "socks5://$U_V4:$PORT_NOBODY" || return 1
		ip -n "$NS_T" link show "$SLUICE_TUN" >/dev/null 2>&1 || why "no TUN device while running" || return 1
		local pid=$SLUICE_PID
		SLUICE_PID=
		stop_pid "$pid" "$SLUICE_STOP_TIMEOUT" "$sig"
		rc=$STOP_RC SLUICE_RC=$STOP_RC
		[ "$STOP_KILLED" = 0 ] || why "SIG$sig: still running after ${SLUICE_STOP_TIMEOUT}s" || return 1
		[ "$rc" = 0 ] || why "SIG$sig: exit $rc, want 0" || return 1
		! ip -n "$NS_T" link show "$SLUICE_TUN" >/dev/null 2>&1 ||
			why "SIG$sig: TUN device $SLUICE_TUN still there after exit" || return 1
	done
}

case_max_flows() {
	need HAVE_DANTE || return
	local out
	sluice_up --upstream "$UP_DANTE" --max-flows 2 || return 1
	out=$(tcli 60 maxflows "$DST_V4" "$PORT_RAW" 2>&1)
	case $out in
	"third=refused "*) ;;
	*) why "want the third connect refused: $out"; return 1 ;;
	esac
	case $out in
	*"after=ok"*) ;;
	*) why "no new flow accepted after the held ones closed: $out"; return 1 ;;
	esac
	still_running
}

case_idle_timeout() {
	need HAVE_DANTE || return
	local out el
	sluice_up --upstream "$UP_DANTE" --idle-timeout 2s || return 1
	out=$(tcli 60 idle "$DST_V4" "$PORT_RAW" 15 2>&1)
	case $out in
	"closed eof "* | "closed reset "*) ;;
	*) why "want the idle flow closed by sluice: $out"; return 1 ;;
	esac
	el=${out##* }
	awk -v e="$el" 'BEGIN { exit !(e >= 1.5 && e < 10) }' ||
		why "closed after ${el}s idle, want about 2s" || return 1
	still_running
}

# ---- driver -------------------------------------------------------------------

CASES="transfer_dante transfer_no_offload transfer_microsocks transfer_dante_auth
auth_wrong_password_dante auth_microsocks concurrent_flows ipv6_flow
ipv6_upstream_address connect_port_closed connect_upstream_down
connect_upstream_silent half_close slow_reader bad_config check_config
config_file_run tun_setup sigterm max_flows idle_timeout"

suite_run e2e "$CASES"
