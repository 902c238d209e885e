#!/usr/bin/env bash
# shellcheck disable=SC2034  # HAVE_* are read through ${!v} in need()
# system.sh - sluice as a service on a system: readiness (sd_notify),
# reload on SIGHUP, the privilege drop, the route hooks, the metrics
# endpoint and the errors a person gets when the TUN device cannot be had.
# Needs root.
#
#   tests/e2e/system.sh              every case
#   tests/e2e/system.sh NAME...      only the cases whose names contain a NAME
#
# The topology of lib.sh (danted, microsocks and the test servers in ns u),
# plus nft counters in ns u of the SYNs that reach each proxy, which say
# which upstream a new flow went through.  The routes into the TUN are added
# by a --route-up hook where it matters that they exist before sluice says
# it is ready.
#
#   notify_ready        NOTIFY_SOCKET a path: the first message is READY=1
#                       with STATUS= and MAINPID= (sluice's PID, also the
#                       sender's); the listener, as it reads READY=1, GETs
#                       a page through the tunnel at once, and that works;
#                       SIGTERM sends STOPPING=1
#   notify_reload       NOTIFY_SOCKET @abstract: READY=1, then RELOADING=1
#                       and READY=1 again around a SIGHUP, STOPPING=1 last
#   reload_upstream     [upstream] url in the file (-c): a slow 24 MiB
#                       download runs through danted; SIGHUP with microsocks
#                       in the file: new flows go to microsocks (SYN counts
#                       in ns u, /status), the download goes on through
#                       danted and ends with every byte (sha256)
#   reload_bad_file     SIGHUP with an unknown key in the file: "reload:
#                       FILE:3: ...; the running configuration stays" and
#                       new flows still go to the old upstream
#   reload_fixed_key    SIGHUP with another [tun] mtu: one warning naming
#                       it, the device keeps its MTU, the rest reloads
#   reload_as_user      -c FILE and --user nobody: a reload to microsocks
#                       works as nobody; a file nobody cannot read is an
#                       error (Permission denied) and changes nothing
#   reload_down_hook    SIGHUP with another [route] down: the one in force
#                       at exit is the one that runs
#   drop_plain          --user nobody --group nogroup: uid/gid 65534, no
#                       supplementary group, NoNewPrivs 1, CapEff and
#                       CapPrm 0; relaying works after the drop, and
#                       the metrics endpoint, opened before it
#   drop_fwmark         ... --fwmark 1: CapEff exactly CAP_NET_ADMIN
#   drop_interface      --user nobody (its own group) --interface veth0:
#                       CapEff exactly CAP_NET_RAW
#   hooks               --route-up and --route-down-hook: SLUICE_EVENT,
#                       SLUICE_TUN (and _INDEX as ip link says), _TUN_MTU,
#                       _TUN_IPV4, _TUN_IPV6, SLUICE_UPSTREAM without the
#                       credentials, SLUICE_ROUTE_TABLE empty; the down
#                       hook runs at SIGTERM while the TUN still exists
#   hooks_user          with --user nobody --fwmark 1: the up hook runs as
#                       root, the down hook as nobody with CAP_NET_ADMIN
#                       (ambient), writing to a directory nobody owns
#   hook_fail           an up hook that exits 3: sluice exits non-zero at
#                       start, says why, runs no down hook, leaves no TUN
#   metrics_scrape      --metrics PORT: 127.0.0.1 only; /metrics parses
#                       (prometheus_client) by the suite's rules; after a
#                       download and UDP echoes through danted the counters
#                       moved by at least as much; /status is JSON that
#                       agrees; POST is refused, an unknown path is 404;
#                       prints an excerpt of a scrape
#   metrics_addr        --metrics 127.0.0.1:PORT and [::1]:PORT
#   metrics_port_taken  --metrics on a port in use: exit non-zero, the
#                       reason in the log, no TUN left
#   tun_busy            a second sluice on the same --tun: exit non-zero,
#                       "held by another process"; the first goes on
#   tun_veth            --tun veth0: exit non-zero, "is not a TUN device";
#                       veth0 unchanged
#
# Prints "ok NAME", "FAIL NAME: why" or "skip NAME: why" per case, then
# "system: N passed, N failed, N skipped".  Exit status 0 when nothing failed.
# Environment: SLUICE, SLUICE_WRAPPER, E2E_LOG_LEVEL, E2E_KEEP (see lib.sh).
set -u

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
suite_init "$@"

TOOL=$E2E_LIB_DIR/system_tool.py
UDPTOOL=$E2E_LIB_DIR/udptool.py
UP_DANTE=socks5://$U_V4:$PORT_DANTE
UP_MICRO=socks5://$U_V4:$PORT_MICRO
UP_MICRO_AUTH=socks5://$AUTH_USER:$AUTH_PASS@$U_V4:$PORT_MICRO_AUTH
PORT_ECHO=7001			# udptool.py's UDP echo in ns u
PORT_METRICS=9187 PORT_METRICS2=9188 PORT_METRICS3=9189	# in ns t only
NFT_TABLE=sluice_system
SMALL_SIZE=$((1 << 20))		# the download the metrics must count
LONG_SIZE=$((24 << 20)) LONG_CHUNK=$((256 << 10)) LONG_PAUSE=0.05
UDP_COUNT=200
TF=1
[ -n "$SLUICE_WRAPPER" ] && TF=6
# the routes into the TUN, added by an up hook before sluice is ready
# shellcheck disable=SC2016  # $SLUICE_TUN is expanded by the hook's sh
ROUTES_UP='ip route replace '$NET_V4' dev "$SLUICE_TUN" && ip -6 route replace '$NET_V6' dev "$SLUICE_TUN"'

# A directory the user nobody may write to, for the hooks that run as
# nobody (the work directory is root's alone); removed at exit.
USER_DIR=''
system_cleanup() {
	local rc=$?
	[ -n "$USER_DIR" ] && rm -rf "$USER_DIR"
	(exit "$rc")
	e2e_cleanup
}
trap system_cleanup EXIT

# ---- set-up ---------------------------------------------------------------

# system_nft: in ns u, count the SYNs that reach each proxy by the veth.
system_nft() {
	nsu nft -f - <<EOF
table inet $NFT_TABLE {
	counter dante { }
	counter micro { }
	chain pre {
		type filter hook prerouting priority -300; policy accept;
		iifname "veth0" tcp dport $PORT_DANTE tcp flags & (syn | ack) == syn counter name "dante"
		iifname "veth0" tcp dport $PORT_MICRO tcp flags & (syn | ack) == syn counter name "micro"
	}
}
EOF
}

# system_echo: udptool.py's UDP echo server in ns u; HAVE_ECHO.
system_echo() {
	HAVE_ECHO=2
	rm -f "$WORK/echo.ready"
	start_bg echo "$NS_U" "$PY" "$UDPTOOL" server --ready "$WORK/echo.ready" \
		--lifetime 1800 -l "$DST_V4,$PORT_ECHO"
	wait_for 10 test -s "$WORK/echo.ready" && HAVE_ECHO=1
}

HAVE_DANTE=0 HAVE_MICRO=0 HAVE_MICRO_AUTH=0 HAVE_SRV=0 HAVE_NFT=0 HAVE_ECHO=0
HAVE_PROM=0 HAVE_NOBODY=0
setup() {
	suite_copy_sluice || return 1
	if ! "$SLUICE" --help 2>&1 | grep -q -- --metrics; then
		SETUP_ERR="$SLUICE has no --metrics"
		return 1
	fi
	suite_topo_up || return 1
	start_servers && HAVE_SRV=1
	suite_start_dante
	if command -v microsocks >/dev/null; then
		HAVE_MICRO=2 HAVE_MICRO_AUTH=2
		start_microsocks micro "$PORT_MICRO" && HAVE_MICRO=1
		start_microsocks micro_auth "$PORT_MICRO_AUTH" "$AUTH_USER" "$AUTH_PASS" &&
			HAVE_MICRO_AUTH=1
	fi
	if command -v nft >/dev/null; then
		HAVE_NFT=2
		system_nft 2>"$WORK/nft.err" && HAVE_NFT=1
	fi
	system_echo
	"$PY" -c 'import prometheus_client.parser' 2>/dev/null && HAVE_PROM=1
	if id nobody >/dev/null 2>&1 && getent group nogroup >/dev/null; then
		HAVE_NOBODY=2
		USER_DIR=$(mktemp -d /tmp/sluice-e2e-user.XXXXXX) &&
			chown nobody:nogroup "$USER_DIR" && HAVE_NOBODY=1
	fi
	head -c "$SMALL_SIZE" /dev/urandom >"$WORK/srv/small.bin" ||
		{ SETUP_ERR="cannot write small.bin"; return 1; }
	SMALL_SHA=$(sha256sum <"$WORK/srv/small.bin" | cut -d' ' -f1)
	suite_servers_ok
}

# ---- helpers --------------------------------------------------------------

# syns NAME: SYNs counted for proxy NAME (dante or micro) since nft_reset.
syns() {
	nsu nft list counter inet "$NFT_TABLE" "$1" 2>/dev/null |
		sed -nE 's/.*packets ([0-9]+).*/\1/p'
}
syns_reach() { [ "$(syns "$1")" -ge "$2" ] 2>/dev/null; }
nft_reset() { nsu nft reset counters table inet "$NFT_TABLE" >/dev/null; }

# syns_are DANTE MICRO: the SYN counts are exactly those.
syns_are() {
	local d m
	d=$(syns dante) m=$(syns micro)
	if [ "$d" != "$1" ] || [ "$m" != "$2" ]; then
		why "SYNs to danted $d, to microsocks $m; want $1 and $2"
	fi
}

# get: one GET of http://$DST_V4/ through the tunnel, the greeting back.
get() {
	local out
	out=$(tcurl -sS --connect-timeout $((5 * TF)) --max-time $((15 * TF)) \
		"http://$DST_V4/" 2>&1) || why "curl http://$DST_V4/: $out" || return 1
	case $out in *"hello from ns u"*) ;; *) why "unexpected page: $out"; return 1 ;; esac
}

# in_log REGEX: sluice's log has a line matching REGEX (grep -E).
in_log() { grep -qE "$1" "$SLUICE_LOG" 2>/dev/null; }

# sluice_env_up VAR=VALUE ARGS...: sluice_up with VAR=VALUE in its
# environment.
sluice_env_up() {
	local w0=$SLUICE_WRAPPER rc
	SLUICE_WRAPPER="env $1 $w0"
	shift
	sluice_up "$@"
	rc=$?
	SLUICE_WRAPPER=$w0
	return $rc
}

# sluice_fg NAME ARGS...: sluice in ns t in the foreground with the TUN
# addresses and ARGS, bounded; for starts that must fail.  Its exit status
# in FG_RC, its log in FG_LOG; 1 (with why) if it ran into the bound or a
# sanitizer reported.
sluice_fg() {
	local name=$1
	shift
	FG_LOG=$WORK/$name.log
	# shellcheck disable=SC2086
	nst timeout -k 2 $((20 * TF)) $SLUICE_WRAPPER "$SLUICE" --ipv4 "$TUN_V4" \
		--ipv6 "$TUN_V6" --log-level "$E2E_LOG_LEVEL" "$@" >"$FG_LOG" 2>&1 </dev/null
	FG_RC=$?
	if [ "$FG_RC" = 124 ] || [ "$FG_RC" = 137 ]; then
		why "sluice still running after $((20 * TF)) s (it should have exited)"
		return 1
	fi
	if sanitizer_report "$FG_LOG" ||
		{ [ -n "$SLUICE_WRAPPER" ] && [ "$FG_RC" = 99 ]; }; then
		SLUICE_LOG=$FG_LOG	# shown by run_case
		why "sanitizer report (exit $FG_RC; see $FG_LOG)"
		return 1
	fi
}

# fg_failed_with TEXT: the foreground sluice exited non-zero, its log says
# TEXT (grep -F) and it did not get as far as ready.
fg_failed_with() {
	[ "$FG_RC" != 0 ] || why "sluice exited 0, want non-zero" || return 1
	grep -qF -- "$1" "$FG_LOG" ||
		why "exit $FG_RC but no \"$1\" in the log: $(grep -v ' debug: ' "$FG_LOG" | tail -n 3 | tr '\n' ' ')" ||
		return 1
	grep -qw ready "$FG_LOG" && { why "sluice said ready before it failed"; return 1; }
	return 0
}

# ---- sd_notify --------------------------------------------------------------

# notify_start SOCKET [HOST,PORT]: system_tool.py's notify listener in ns t
# (abstract sockets belong to a network namespace); its log in NLOG.
notify_start() {
	local sock=$1
	NLOG=$WORK/notify-$CASE.log
	rm -f "$NLOG" "$WORK/notify.ready"
	start_bg "notify-$CASE" "$NS_T" "$PY" "$TOOL" notify "$sock" --log "$NLOG" \
		--ready "$WORK/notify.ready" --lifetime $((120 * TF)) ${2:+--connect "$2"}
	NOTIFY_PID=$BG_PID
	wait_for 10 test -s "$WORK/notify.ready" || why "the notify listener did not start"
}

# nmsgs: the messages the listener got so far, one per line, fields
# joined by "|".
nmsgs() { sed -n 's/^msg [0-9]* -*[0-9]* -*[0-9]* //p' "$NLOG" 2>/dev/null; }
# nmsg_count FIELD: how many messages carry FIELD (e.g. READY=1).
nmsg_count() { nmsgs | tr '|' '\n' | grep -cxF "$1"; }
nmsg_at_least() { [ "$(nmsg_count "$1")" -ge "$2" ]; }

# nmsg_senders_are PID: every message came from process PID.
nmsg_senders_are() {
	local bad
	bad=$(awk -v p="$1" '$1 == "msg" && $3 != p { print $3 }' "$NLOG" | sort -u | tr '\n' ' ')
	[ -z "$bad" ] || why "notify messages sent by PID $bad, not sluice ($1)"
}

# nmsg_sequence: the messages reduced to their state words (READY,
# RELOADING, STOPPING), space-separated.
nmsg_sequence() {
	nmsgs | awk -F'|' '{ w = "";
		for (i = 1; i <= NF; i++)
			if ($i ~ /^(READY|RELOADING|STOPPING)=1$/) { sub(/=1$/, "", $i); w = w (w ? "+" : "") $i }
		printf "%s%s", (NR > 1 ? " " : ""), (w ? w : "other") }'
}

# notify_stopped: SIGTERM sluice (it must exit cleanly) and wait for the
# listener, which ends at STOPPING=1.
notify_stopped() {
	stop_sluice || why "stop: $SLUICE_ERR" || return 1
	wait_for $((5 * TF)) grep -q '^end ' "$NLOG" ||
		why "the listener got no STOPPING=1 after SIGTERM: $(nmsg_sequence)" || return 1
	stop_pid "$NOTIFY_PID" 2
}

case_notify_ready() {
	need HAVE_DANTE || return
	local sock=$WORK/notify.sock first pid line
	notify_start "$sock" "$DST_V4,$PORT_HTTP" || return 1
	sluice_env_up "NOTIFY_SOCKET=$sock" --upstream "$UP_DANTE" \
		--route-up "$ROUTES_UP" || return 1
	pid=$SLUICE_PID
	wait_for $((10 * TF)) grep -q '^connect ' "$NLOG" ||
		why "no READY=1 (or no connect after it): $(nmsg_sequence)" || return 1
	line=$(grep '^connect ' "$NLOG")
	case $line in "connect ok "*) ;; *) why "at READY=1 the tunnel did not work: $line"; return 1 ;; esac
	first=$(nmsgs | head -n 1)
	case "|$first|" in *"|READY=1|"*) ;; *) why "first message is not READY=1: $first"; return 1 ;; esac
	case "|$first|" in *"|STATUS="?*) ;; *) why "READY=1 without STATUS=: $first"; return 1 ;; esac
	case "|$first|" in *"|MAINPID=$pid|"*) ;; *) why "READY=1 without MAINPID=$pid: $first"; return 1 ;; esac
	say "    # READY=1 message: $first; then $line ms"
	notify_stopped || return 1
	[ "$(nmsg_sequence)" = "READY STOPPING" ] ||
		why "messages $(nmsg_sequence), want READY STOPPING" || return 1
	nmsg_senders_are "$pid"
}

case_notify_reload() {
	local sock=@sluice-e2e-$$ pid
	notify_start "$sock" || return 1
	sluice_env_up "NOTIFY_SOCKET=$sock" --upstream "$UP_DANTE" || return 1
	pid=$SLUICE_PID
	wait_for $((10 * TF)) nmsg_at_least READY=1 1 ||
		why "no READY=1 on $sock: $(nmsg_sequence)" || return 1
	kill -HUP "$SLUICE_PID"
	wait_for $((10 * TF)) nmsg_at_least READY=1 2 ||
		why "no READY=1 after SIGHUP: $(nmsg_sequence)" || return 1
	in_log ' reload: ' || why "no reload line in the log" || return 1
	still_running || return 1
	notify_stopped || return 1
	[ "$(nmsg_sequence)" = "READY RELOADING READY STOPPING" ] ||
		why "messages $(nmsg_sequence), want READY RELOADING READY STOPPING" || return 1
	say "    # messages: $(nmsgs | tr '\n' ' ')"
	nmsg_senders_are "$pid"
}

# ---- reload -------------------------------------------------------------------

# long_download_start: a slow download of LONG_SIZE bytes through the
# tunnel (cli.py slowread: about LONG_SIZE / LONG_CHUNK * LONG_PAUSE
# seconds); its PID in LONG_PID, its result in $WORK/long.out.
long_download_start() {
	rm -f "$WORK/srv/long" "$WORK/long.out"
	tcli $((90 * TF)) slowread "$DST_V4" "$PORT_RAW" long "$LONG_SIZE" "$LONG_CHUNK" \
		"$LONG_PAUSE" $((60 * TF)) >"$WORK/long.out" 2>&1 &
	LONG_PID=$!
	E2E_PIDS+=("$LONG_PID")
}

# long_download_done: the slow download ended with every byte the server
# sent.
long_download_done() {
	local out st n sha rec
	wait_for $((90 * TF)) pid_gone "$LONG_PID"
	stop_pid "$LONG_PID" 1
	out=$(cat "$WORK/long.out")
	read -r st n sha _ <<<"$out"
	[ "$st" = "done" ] || why "the long download did not finish: $out" || return 1
	[ "$n" = "$LONG_SIZE" ] || why "the long download got $n bytes, want $LONG_SIZE" || return 1
	rec=$(cat "$WORK/srv/long" 2>/dev/null)
	[ "$rec" = "$n $sha" ] || why "the long download: server sent '$rec', client got '$n $sha'" ||
		return 1
	LONG_OUT=$out
}

# established_to PORT: TCP connections established to PORT in ns u.
established_to() {
	nsu ss -Htn state established "( sport = :$1 )" 2>/dev/null | wc -l
}

# status_upstream: the "upstream" of sluice's /status (metrics on
# $PORT_METRICS).
status_upstream() {
	tcurl -sS --max-time 5 "http://127.0.0.1:$PORT_METRICS/status" 2>/dev/null |
		sed -nE 's/.*"upstream":"([^"]*)".*/\1/p'
}

case_reload_upstream() {
	need HAVE_DANTE HAVE_MICRO HAVE_NFT || return
	local f=$WORK/reload.conf i up
	printf '[upstream]\nurl = %s\n' "$UP_DANTE" >"$f"
	sluice_up -c "$f" --metrics "$PORT_METRICS" || return 1
	nft_reset
	long_download_start
	wait_for $((5 * TF)) syns_reach dante 1 ||
		why "the long download did not reach danted: SYNs $(syns dante)" || return 1
	printf '[upstream]\nurl = %s\n' "$UP_MICRO" >"$f"
	kill -HUP "$SLUICE_PID"
	wait_for $((5 * TF)) in_log " reload: $f: upstream socks5://$U_V4:$PORT_MICRO\$" ||
		why "no 'reload: $f: upstream $UP_MICRO' line in the log" || return 1
	pid_alive "$LONG_PID" ||
		why "the long download ended before the reload: $(cat "$WORK/long.out")" || return 1
	for ((i = 0; i < 3; i++)); do get || return 1; done
	syns_are 1 3 || return 1
	up=$(status_upstream)
	[ "$up" = "socks5://$U_V4:$PORT_MICRO" ] ||
		why "/status says upstream '$up' after the reload" || return 1
	# the old flow is still there, on its danted connection
	pid_alive "$LONG_PID" ||
		why "the long download ended too soon to prove anything: $(cat "$WORK/long.out")" ||
		return 1
	[ "$(established_to "$PORT_DANTE")" -ge 1 ] ||
		why "no connection established to danted while the old flow runs" || return 1
	long_download_done || return 1
	say "    # old flow through danted after the reload: $LONG_OUT; new flows: 3 to microsocks"
	syns_are 1 3 || return 1
	still_running
}

case_reload_bad_file() {
	need HAVE_DANTE HAVE_NFT || return
	local f=$WORK/reload-bad.conf line
	printf '[upstream]\nurl = %s\n' "$UP_DANTE" >"$f"
	sluice_up -c "$f" || return 1
	printf '[upstream]\nurl = %s\nfrobnicate = yes\n' "$UP_MICRO" >"$f"
	kill -HUP "$SLUICE_PID"
	wait_for $((5 * TF)) in_log ' reload: ' || why "no reload line in the log" || return 1
	line=$(grep ' reload: ' "$SLUICE_LOG" | head -n 1)
	case $line in
	*" reload: $f:3: "*"frobnicate"*"; the running configuration stays") ;;
	*) why "reload line: '$line', want 'reload: $f:3: ... frobnicate ...; the running configuration stays'"; return 1 ;;
	esac
	say "    # ${line#* reload: }"
	nft_reset
	get || return 1
	get || return 1
	syns_are 2 0 || return 1
	in_log " reload: $f: upstream " && { why "the broken file was applied"; return 1; }
	still_running
}

case_reload_fixed_key() {
	need HAVE_DANTE || return
	local f=$WORK/reload-mtu.conf n line mtu
	printf '[upstream]\nurl = %s\n' "$UP_DANTE" >"$f"
	sluice_up -c "$f" || return 1
	printf '[upstream]\nurl = %s\n[tun]\nmtu = 1400\n' "$UP_DANTE" >"$f"
	kill -HUP "$SLUICE_PID"
	wait_for $((5 * TF)) in_log " reload: $f: upstream " ||
		why "no 'reload: $f: upstream' line: the rest of the file was not applied" || return 1
	n=$(grep -c 'cannot change' "$SLUICE_LOG")
	[ "$n" = 1 ] || why "$n warnings about keys that cannot change, want 1" || return 1
	line=$(grep 'cannot change' "$SLUICE_LOG")
	case $line in
	*" reload: [tun] mtu cannot change while sluice runs"*) ;;
	*) why "warning: '$line', want one naming [tun] mtu alone"; return 1 ;;
	esac
	say "    # ${line#* reload: }"
	mtu=$(ip -n "$NS_T" -o link show "$SLUICE_TUN" | sed -nE 's/.* mtu ([0-9]+) .*/\1/p')
	[ "$mtu" = 1500 ] || why "$SLUICE_TUN has mtu $mtu after the reload, want 1500" || return 1
	get || return 1
	still_running
}

case_reload_as_user() {
	need HAVE_DANTE HAVE_MICRO HAVE_NFT HAVE_NOBODY || return
	local f=$USER_DIR/sluice.conf line
	# in nobody's directory, readable by nobody
	printf '[upstream]\nurl = %s\n' "$UP_DANTE" >"$f"
	chmod 644 "$f"
	sluice_up -c "$f" --user nobody --group nogroup || return 1
	nft_reset
	get || return 1
	syns_are 1 0 || return 1
	printf '[upstream]\nurl = %s\n' "$UP_MICRO" >"$f"
	kill -HUP "$SLUICE_PID"
	wait_for $((5 * TF)) in_log " reload: $f: upstream socks5://$U_V4:$PORT_MICRO\$" ||
		why "no reload to microsocks as nobody: $(grep ' reload: ' "$SLUICE_LOG" | tail -n 1)" ||
		return 1
	get || return 1
	syns_are 1 1 || return 1
	# a file nobody cannot read: an error, and the running configuration stays
	printf '[upstream]\nurl = %s\n' "$UP_DANTE" >"$f"
	chmod 600 "$f"
	kill -HUP "$SLUICE_PID"
	wait_for $((5 * TF)) in_log " reload: $f: cannot open: Permission denied; the running configuration stays" ||
		why "unreadable file: $(grep ' reload: ' "$SLUICE_LOG" | tail -n 1)" || return 1
	line=$(grep ' reload: ' "$SLUICE_LOG" | tail -n 1)
	say "    # ${line#* reload: }"
	get || return 1
	syns_are 1 2 || return 1
	still_running
}

case_reload_down_hook() {
	need HAVE_DANTE || return
	local f=$WORK/reload-hook.conf out=$WORK/which-down
	rm -f "$out"
	printf '[upstream]\nurl = %s\n[route]\ndown = echo first >%s\n' "$UP_DANTE" "$out" >"$f"
	sluice_up -c "$f" || return 1
	printf '[upstream]\nurl = %s\n[route]\ndown = echo second >%s\n' "$UP_DANTE" "$out" >"$f"
	kill -HUP "$SLUICE_PID"
	wait_for $((5 * TF)) in_log " reload: $f: upstream " || why "no reload line in the log" || return 1
	stop_sluice || why "stop: $SLUICE_ERR" || return 1
	[ "$(cat "$out" 2>/dev/null)" = second ] ||
		why "the down hook that ran wrote '$(cat "$out" 2>/dev/null)', want the reloaded one's 'second'"
}

# ---- the privilege drop --------------------------------------------------------

# proc_field PID NAME: the value of NAME: in /proc/PID/status, tabs as
# spaces.
proc_field() { sed -nE "s/^$2:[[:space:]]*//p" "/proc/$1/status" 2>/dev/null | tr '\t' ' '; }

# dropped PID CAPS: PID runs as nobody:nogroup, no other group, no way back
# (NoNewPrivs), with exactly CAPS (hex, 16 digits) effective and permitted.
dropped() {
	local pid=$1 caps=$2 v
	v=$(proc_field "$pid" Uid)
	[ "$v" = "65534 65534 65534 65534" ] || why "Uid: $v, want 65534 four times" || return 1
	v=$(proc_field "$pid" Gid)
	[ "$v" = "65534 65534 65534 65534" ] || why "Gid: $v, want 65534 four times" || return 1
	v=$(proc_field "$pid" Groups)
	[ "$v" = "65534" ] || [ "$v" = "65534 " ] || why "Groups: '$v', want 65534 alone" || return 1
	v=$(proc_field "$pid" NoNewPrivs)
	[ "$v" = 1 ] || why "NoNewPrivs: $v, want 1" || return 1
	v=$(proc_field "$pid" CapEff)
	[ "$v" = "$caps" ] || why "CapEff: $v, want $caps" || return 1
	v=$(proc_field "$pid" CapPrm)
	[ "$v" = "$caps" ] || why "CapPrm: $v, want $caps" || return 1
	say "    # /proc/$pid/status: $(grep -E '^(Uid|Gid|Groups|NoNewPrivs|CapEff|CapPrm|CapAmb):' \
		"/proc/$pid/status" | tr '\t' ' ' | tr -s ' ' | tr '\n' ';')"
}

# drop_case CAPS KEPT ARGS...: sluice with ARGS drops to nobody with
# exactly CAPS; its log names KEPT; relaying works afterwards.
drop_case() {
	local caps=$1 kept=$2
	shift 2
	sluice_up --upstream "$UP_DANTE" --metrics "$PORT_METRICS" "$@" || return 1
	in_log "process: running as nobody(:nogroup)?, capabilities kept: $kept\$" ||
		why "no 'running as nobody..., capabilities kept: $kept' in the log" || return 1
	dropped "$SLUICE_PID" "$caps" || return 1
	get || return 1
	get || return 1
	# the metrics socket, opened as root, still answers
	if [ "$HAVE_PROM" = 1 ]; then
		scrape "drop-$CASE" || return 1
	fi
	still_running
}

case_drop_plain() {
	need HAVE_DANTE HAVE_NOBODY || return
	drop_case 0000000000000000 none --user nobody --group nogroup
}

case_drop_fwmark() {
	need HAVE_DANTE HAVE_NOBODY || return
	drop_case 0000000000001000 CAP_NET_ADMIN --user nobody --group nogroup --fwmark 1
}

case_drop_interface() {
	need HAVE_DANTE HAVE_NOBODY || return
	# no --group: the user's own (nogroup)
	drop_case 0000000000002000 CAP_NET_RAW --user nobody --interface veth0
}

# ---- hooks --------------------------------------------------------------------

# env_of FILE NAME: the value of NAME=... in FILE; 1 if there is none.
env_of() {
	grep -q "^$2=" "$1" 2>/dev/null || return 1
	sed -n "s/^$2=//p" "$1" | head -n 1
}

# env_is FILE NAME VALUE: FILE says NAME=VALUE.
env_is() {
	local v
	v=$(env_of "$1" "$2") || why "$(basename "$1"): no $2" || return 1
	[ "$v" = "$3" ] || why "$(basename "$1"): $2='$v', want '$3'"
}

case_hooks() {
	need HAVE_MICRO_AUTH || return
	local up=$WORK/up.env down=$WORK/down.env tun=sl-hook idx f
	# shellcheck disable=SC2016  # expanded by the hook's sh
	local rec='{ env | grep "^SLUICE_"; ip -o link show dev "$SLUICE_TUN" >/dev/null 2>&1 && echo HOOK_SAW_TUN=1; echo HOOK_UID=$(id -u); }'
	rm -f "$up" "$down"
	sluice_up --upstream "$UP_MICRO_AUTH" --tun "$tun" --mtu 1400 \
		--route-up "$rec >$up && $ROUTES_UP" --route-down-hook "$rec >$down" || return 1
	[ -s "$up" ] || why "the up hook wrote nothing" || return 1
	idx=$(ip -n "$NS_T" -o link show dev "$tun" | cut -d: -f1)
	env_is "$up" SLUICE_EVENT up || return 1
	env_is "$up" SLUICE_TUN "$tun" || return 1
	env_is "$up" SLUICE_TUN_INDEX "$idx" || return 1
	env_is "$up" SLUICE_TUN_MTU 1400 || return 1
	env_is "$up" SLUICE_TUN_IPV4 "$TUN_V4" || return 1
	env_is "$up" SLUICE_TUN_IPV6 "$TUN_V6" || return 1
	env_is "$up" SLUICE_UPSTREAM "socks5://$U_V4:$PORT_MICRO_AUTH" || return 1
	env_is "$up" SLUICE_ROUTE_TABLE "" || return 1
	env_is "$up" HOOK_SAW_TUN 1 || return 1
	grep -qF -e "$AUTH_PASS" -e "$AUTH_USER" "$up" &&
		{ why "the hook's environment holds the proxy credentials"; return 1; }
	in_log 'hook up: done' || why "no 'hook up: done' in the log" || return 1
	say "    # up hook: $(grep -E '^SLUICE_(EVENT|TUN|TUN_INDEX|TUN_MTU|TUN_IPV4|TUN_IPV6|UPSTREAM|ROUTE_TABLE)=' "$up" |
		sort | tr '\n' ' ')"
	get || return 1	# through microsocks with username auth
	[ -e "$down" ] && { why "the down hook ran before the stop"; return 1; }
	stop_sluice || why "stop: $SLUICE_ERR" || return 1
	[ -s "$down" ] || why "the down hook did not run at SIGTERM" || return 1
	for f in "SLUICE_EVENT down" "SLUICE_TUN $tun" "SLUICE_TUN_INDEX $idx" \
		"SLUICE_TUN_MTU 1400" "HOOK_SAW_TUN 1"; do
		# shellcheck disable=SC2086
		env_is "$down" $f || return 1
	done
	grep -q 'hook down: done' "$SLUICE_LOG" || why "no 'hook down: done' in the log"
}

case_hooks_user() {
	need HAVE_DANTE HAVE_NOBODY || return
	local up=$WORK/up-user.env down=$USER_DIR/down.env owner
	# shellcheck disable=SC2016  # expanded by the hook's sh
	local rec='{ echo SLUICE_EVENT=$SLUICE_EVENT; echo HOOK_UID=$(id -u); echo HOOK_GID=$(id -g); echo HOOK_CAPEFF=$(sed -n "s/^CapEff:[[:space:]]*//p" /proc/self/status); }'
	rm -f "$up" "$down"
	sluice_up --upstream "$UP_DANTE" --user nobody --group nogroup --fwmark 1 \
		--route-up "$rec >$up && $ROUTES_UP" --route-down-hook "$rec >$down" || return 1
	env_is "$up" HOOK_UID 0 || return 1
	dropped "$SLUICE_PID" 0000000000001000 || return 1
	get || return 1
	stop_sluice || why "stop: $SLUICE_ERR" || return 1
	[ -s "$down" ] || why "the down hook (as nobody) wrote nothing to $USER_DIR: $(grep 'hook down' "$SLUICE_LOG")" ||
		return 1
	owner=$(stat -c %u:%g "$down")
	[ "$owner" = 65534:65534 ] || why "the down hook's file belongs to $owner, want 65534:65534" || return 1
	env_is "$down" SLUICE_EVENT down || return 1
	env_is "$down" HOOK_UID 65534 || return 1
	env_is "$down" HOOK_GID 65534 || return 1
	# CAP_NET_ADMIN is ambient: the hook can still remove routes
	env_is "$down" HOOK_CAPEFF 0000000000001000 || return 1
	say "    # down hook as nobody: $(tr '\n' ' ' <"$down")"
}

case_hook_fail() {
	need HAVE_DANTE || return
	local mark=$WORK/hook-fail-down
	rm -f "$mark"
	sluice_fg "sluice-$CASE" --upstream "$UP_DANTE" --tun sl-hookfail \
		--route-up 'exit 3' --route-down-hook "touch $mark" || return 1
	fg_failed_with "hook up: \`exit 3' exited 3" || return 1
	[ -e "$mark" ] && { why "the down hook ran although the up hook failed"; return 1; }
	ip -n "$NS_T" link show sl-hookfail >/dev/null 2>&1 &&
		{ why "TUN sl-hookfail left behind"; return 1; }
	say "    # exit $FG_RC: $(grep -F 'hook up' "$FG_LOG" | head -n 1 | sed 's/^.*hook up/hook up/')"
}

# ---- metrics --------------------------------------------------------------------

# scrape NAME [PORT]: GET /metrics into $WORK/NAME.prom and check it; its
# samples in $WORK/NAME.samples.
scrape() {
	local name=$1 port=${2:-$PORT_METRICS} out hdr
	tcurl -sS --max-time $((5 * TF)) -D "$WORK/$name.hdr" -o "$WORK/$name.prom" \
		"http://127.0.0.1:$port/metrics" 2>"$WORK/curl.err" ||
		why "GET /metrics: $(head -c 200 "$WORK/curl.err")" || return 1
	hdr=$(tr -d '\r' <"$WORK/$name.hdr")
	grep -qiE '^content-type: text/plain; version=0\.0\.4' <<<"$hdr" ||
		why "/metrics Content-Type: $(grep -i '^content-type' <<<"$hdr")" || return 1
	out=$("$PY" "$TOOL" metrics "$WORK/$name.prom" --dump "$WORK/$name.samples" 2>&1)
	case $out in ok*) ;; *) why "scrape $name: $(head -n 5 <<<"$out" | tr '\n' ';')"; return 1 ;; esac
	SCRAPE_OK=$out
}

# mval NAME SAMPLE: the value of SAMPLE (as system_tool.py dumps it) in
# scrape NAME, or empty.
mval() { awk -v k="$2" '$1 == k { print $2 }' "$WORK/$1.samples"; }

# grew SAMPLE BY: SAMPLE grew by at least BY from scrape m1 to m2.
grew() {
	local a b
	a=$(mval m1 "$1") b=$(mval m2 "$1")
	[ -n "$a" ] && [ -n "$b" ] || why "no sample $1 (before '$a', after '$b')" || return 1
	awk -v a="$a" -v b="$b" -v d="$2" 'BEGIN { exit !(b - a >= d) }' ||
		why "$1: $a before, $b after, want an increase of at least $2"
}

# http_code METHOD PATH: the status code of that request to the metrics
# port.
http_code() {
	tcurl -s -o /dev/null -w '%{http_code}' --max-time $((5 * TF)) -X "$1" \
		"http://127.0.0.1:$PORT_METRICS$2" 2>/dev/null
}

case_metrics_scrape() {
	need HAVE_DANTE HAVE_ECHO HAVE_PROM || return
	local listen out recv acc st code
	sluice_up --upstream "$UP_DANTE" --metrics "$PORT_METRICS" || return 1
	in_log "metrics: http://127.0.0.1:$PORT_METRICS/metrics" ||
		why "no 'metrics: http://127.0.0.1:$PORT_METRICS/metrics' in the log" || return 1
	listen=$(nst ss -Hltn "sport = :$PORT_METRICS" | awk '{ print $4 }' | tr '\n' ' ')
	[ "$listen" = "127.0.0.1:$PORT_METRICS " ] ||
		why "metrics listen on '$listen', want 127.0.0.1:$PORT_METRICS alone" || return 1
	scrape m1 || return 1
	# traffic: a download and UDP echoes through danted
	http_download "http://$DST_V4" small.bin "$SMALL_SIZE" "$SMALL_SHA" || return 1
	out=$(nst timeout -k 2 $((30 * TF)) "$PY" "$UDPTOOL" exchange "$DST_V4" "$PORT_ECHO" \
		--count "$UDP_COUNT" --window 16 --timeout $((2 * TF)) --deadline $((20 * TF)) 2>&1)
	recv=$(sed -nE 's/.*(^| )received=([0-9]+).*/\2/p' <<<"$out")
	[ -n "$recv" ] && [ "$recv" -gt 0 ] || why "UDP exchange through danted: $out" || return 1
	# HEAD too is a way to ask (and costs the counters nothing)
	code=$(http_code HEAD /metrics)
	[ "$code" = 200 ] || why "HEAD /metrics: $code, want 200" || return 1
	scrape m2 || return 1
	grew sluice_flows_accepted_total 1 || return 1
	grew sluice_flows_established_total 1 || return 1
	grew 'sluice_flow_bytes_total{direction="down"}' "$SMALL_SIZE" || return 1
	grew 'sluice_flow_bytes_total{direction="up"}' 1 || return 1
	grew sluice_upstream_dial_seconds_count 1 || return 1
	grew 'sluice_upstream_dial_seconds_bucket{le="+Inf"}' 1 || return 1
	grew 'sluice_udp_datagrams_total{direction="up"}' "$recv" || return 1
	grew 'sluice_udp_datagrams_total{direction="down"}' "$recv" || return 1
	grew 'sluice_udp_associations_opened_total' 1 || return 1
	grew 'sluice_tun_packets_total{direction="rx"}' 1 || return 1
	grew 'sluice_tun_packets_total{direction="tx"}' 1 || return 1
	say "    # $SCRAPE_OK; an excerpt of the scrape after the traffic:"
	grep -E '^(# TYPE sluice_flows_accepted_total|sluice_flows_accepted_total|# TYPE sluice_flow_bytes_total|sluice_flow_bytes_total|# TYPE sluice_upstream_dial_seconds |sluice_upstream_dial_seconds_bucket\{le="0\.0(1|05)"\}|sluice_upstream_dial_seconds_(sum|count)|sluice_udp_datagrams_total)' \
		"$WORK/m2.prom" | sed 's/^/    #   /'
	# /status: JSON that agrees with /metrics
	tcurl -sS --max-time 5 -o "$WORK/status.json" "http://127.0.0.1:$PORT_METRICS/status" ||
		why "GET /status failed" || return 1
	st=$("$PY" "$TOOL" status "$WORK/status.json")
	case $st in ok*) ;; *) why "/status: $st"; return 1 ;; esac
	acc=$(sed -nE 's/.* flows_accepted=([0-9]+).*/\1/p' <<<"$st")
	[ "$acc" = "$(mval m2 sluice_flows_accepted_total)" ] ||
		why "/status flows_accepted $acc, /metrics $(mval m2 sluice_flows_accepted_total)" || return 1
	grep -qF "\"upstream\":\"$UP_DANTE\"" "$WORK/status.json" ||
		why "/status upstream: $(cat "$WORK/status.json")" || return 1
	say "    # /status: $(cat "$WORK/status.json")"
	code=$(http_code POST /metrics)
	[ "$code" = 405 ] || { why "POST /metrics: $code, want 405"; return 1; }
	say "    # POST /metrics: $code; GET /nonexistent: $(http_code GET /nonexistent)"
	code=$(http_code GET /nonexistent)
	[ "$code" = 404 ] || why "GET /nonexistent: $code, want 404" || return 1
	code=$(http_code GET /metrics)
	[ "$code" = 200 ] || why "GET /metrics after the errors: $code" || return 1
	code=$(http_code GET '/metrics?name%5B%5D=x')
	[ "$code" = 200 ] || why "GET /metrics with a query: $code" || return 1
	still_running
}

case_metrics_addr() {
	need HAVE_DANTE HAVE_PROM || return
	local LOG_SFX=-4 out
	sluice_up --upstream "$UP_DANTE" --metrics "127.0.0.1:$PORT_METRICS2" || return 1
	scrape a4 "$PORT_METRICS2" || return 1
	stop_sluice || why "stop: $SLUICE_ERR" || return 1
	LOG_SFX=-6
	sluice_up --upstream "$UP_DANTE" --metrics "[::1]:$PORT_METRICS2" || return 1
	out=$(tcurl -sS -g --max-time $((5 * TF)) "http://[::1]:$PORT_METRICS2/metrics" 2>&1) ||
		why "GET http://[::1]:$PORT_METRICS2/metrics: $out" || return 1
	grep -q '^sluice_flows_accepted_total ' <<<"$out" ||
		why "no sluice_flows_accepted_total from [::1]:$PORT_METRICS2" || return 1
	still_running
}

case_metrics_port_taken() {
	need HAVE_DANTE || return
	local bpid rc
	# (a port of its own: connections to the others may be in TIME_WAIT)
	start_bg "blocker-$CASE" "$NS_T" "$PY" -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(1)
time.sleep(60)' "$PORT_METRICS3"
	bpid=$BG_PID
	wait_for 5 port_listening "$NS_T" 127.0.0.1 "$PORT_METRICS3" ||
		why "the blocker did not listen: $(tail -n 1 "$WORK/blocker-$CASE.log")" || return 1
	sluice_fg "sluice-$CASE" --upstream "$UP_DANTE" --tun sl-mport --metrics "$PORT_METRICS3"
	rc=$?
	stop_pid "$bpid" 1
	[ $rc -eq 0 ] || return 1
	fg_failed_with "metrics: listen 127.0.0.1:$PORT_METRICS3: Address already in use" || return 1
	say "    # exit $FG_RC: $(grep -F 'metrics: listen' "$FG_LOG" | sed 's/^.*metrics: /metrics: /')"
	ip -n "$NS_T" link show sl-mport >/dev/null 2>&1 &&
		{ why "TUN sl-mport left behind"; return 1; }
	return 0
}

# ---- TUN errors -------------------------------------------------------------------

case_tun_busy() {
	need HAVE_DANTE || return
	sluice_up --upstream "$UP_DANTE" --tun sl-busy || return 1
	sluice_fg "sluice-$CASE-2" --upstream "$UP_DANTE" --tun sl-busy || return 1
	fg_failed_with "held by another process" || return 1
	say "    # exit $FG_RC: $(grep -F 'held by another' "$FG_LOG" | sed 's/^.*tun: /tun: /')"
	ip -n "$NS_T" link show sl-busy >/dev/null 2>&1 ||
		why "the first sluice's TUN is gone" || return 1
	get || return 1
	still_running
}

case_tun_veth() {
	need HAVE_DANTE || return
	local before after
	before=$(ip -n "$NS_T" -d addr show dev veth0)
	sluice_fg "sluice-$CASE" --upstream "$UP_DANTE" --tun veth0 || return 1
	fg_failed_with "is not a TUN device" || return 1
	say "    # exit $FG_RC: $(grep -F 'is not a TUN' "$FG_LOG" | sed 's/^.*tun: /tun: /')"
	after=$(ip -n "$NS_T" -d addr show dev veth0)
	[ "$before" = "$after" ] ||
		why "veth0 changed: $(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | tr '\n' ';')"
}

# ---- driver -------------------------------------------------------------------

CASES="notify_ready notify_reload reload_upstream reload_bad_file reload_fixed_key
reload_as_user reload_down_hook
drop_plain drop_fwmark drop_interface hooks hooks_user hook_fail metrics_scrape
metrics_addr metrics_port_taken tun_busy tun_veth"

suite_run system "$CASES"
