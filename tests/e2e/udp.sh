#!/usr/bin/env bash
# shellcheck disable=SC2034  # HAVE_* are read through ${!v} in need()
# udp.sh - sluice's UDP relay (SOCKS5 UDP ASSOCIATE) and its ICMP answers,
# end to end with real peers in network namespaces of their own (the
# topology of lib.sh).  Needs root.
#
#   tests/e2e/udp.sh              every case
#   tests/e2e/udp.sh NAME...      only the cases whose names contain a NAME
#
# Peers in ns u: danted on 1080 (no auth) and 1082 (username), both with
# UDP rules (lib.sh dante_conf says what danted needs to relay as a full
# cone: udpreply rules and udp.connectdst: no); microsocks on 1081 (no UDP at all); squid
# on 3128 (HTTP CONNECT, no UDP); stunnel 1443 -> danted 1080
# (socks5+tls://); udptool.py's echo server on 198.18.1.1:7000 and
# [2001:db8:18:1::1]:7000, with the full-cone probe's other sockets B on
# 198.18.1.2:7001 / [::2]:7001 (another address and port) and C on
# 198.18.1.1:7002 / [::1]:7002 (the same address, another port).  Clients
# are udptool.py in ns t, through sluice; setup first checks, without
# sluice, that danted relays UDP at all (and as a full cone).
#
#   exchange_v4, exchange_v6    10,000 echo datagrams of 1..1472 B plus
#                               8,000 B, 30,000 B and the largest that fits
#                               the relay, windowed; every echo checked;
#                               loss, veth and TUN drops printed
#   full_cone                   replies from B (another address and port)
#                               and C reach the client, with their own
#                               source address and port; IPv4 and IPv6
#   address_dependent           --udp-filtering address-dependent: C's and
#                               A's replies arrive, B's is filtered
#   many_sources                200 client sockets at once, 3 rounds, each
#                               gets its own echo
#   max_flows                   --udp-max-flows 10: 10 of 20 sources are
#                               relayed, the others counted udp-over-max
#   timeout_reopen              --udp-timeout 2s: kept alive by traffic,
#                               expires when idle, the next datagram from
#                               the same source opens a new association
#   dante_restart               danted killed and restarted (by PID):
#                               traffic from the same source resumes
#   dante_auth                  username authentication: an exchange works
#   dante_wrong_password        ECONNREFUSED (ICMP port unreachable)
#   http_upstream               http:// (squid): ECONNREFUSED within 100 ms,
#                               IPv4 and IPv6; a burst is rate-limited; TCP
#                               through the same squid still works
#   microsocks_refused          microsocks refuses UDP ASSOCIATE:
#                               ECONNREFUSED and a log line saying so
#   udp_disabled                --udp no: ECONNREFUSED
#   tls_no_plain                socks5+tls:// without --udp-allow-plain:
#                               ECONNREFUSED
#   tls_allow_plain             ... with --udp-allow-plain yes: an exchange
#   icmp_drop                   echo requests into the TUN: no reply (the
#                               default), counted echo-dropped
#   icmp_local                  --tun-icmp local: replies, IPv4 and IPv6
#
# Every case ends with sluice stopped by SIGTERM: exit 0, TUN gone, no
# sanitizer or valgrind report (lib.sh run_case).
#
# Prints "ok NAME", "FAIL NAME: why" or "skip NAME: why" per case, then
# "udp: N passed, N failed, N skipped".  Exit status 0 when nothing failed.
# Environment: SLUICE, SLUICE_WRAPPER, E2E_LOG_LEVEL, E2E_KEEP (see lib.sh).
set -u

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
suite_init "$@"

UDPTOOL=$E2E_LIB_DIR/udptool.py
PROXY_NAME=proxy.test
PORT_TLS=1443 PORT_SQUID=3128
PORT_ECHO=7000 PORT_B=7001 PORT_C=7002 PORT_REFUSED=7009
B_V4=198.18.1.2 B_V6=2001:db8:18:1::2	# the full-cone probe's other address
UP_DANTE=socks5://$U_V4:$PORT_DANTE
UP_DANTE_AUTH=socks5://$AUTH_USER:$AUTH_PASS@$U_V4:$PORT_DANTE_AUTH
UP_DANTE_BADPW=socks5://$AUTH_USER:not-the-password@$U_V4:$PORT_DANTE_AUTH

# The exchange: N datagrams of 1..1472 B (1472: a full 1500-byte IPv4
# packet), with some that the kernel fragments on the way into the TUN and
# sluice fragments on the way out.  The largest: a SOCKS5 UDP header (10
# bytes for an IPv4 destination, 22 for IPv6) must fit with the payload in
# the 65,507 bytes an IPv4 datagram to the proxy can carry, so 65,497 is
# the largest datagram any SOCKS5 relay over IPv4 can take (65,507 cannot).
EX_COUNT=10000
BIG_V4="8000:100,30000:30,65497:3" BIG_V6="8000:100,30000:30,65485:3"
# Pacing: at most 16 datagrams and 128 KiB outstanding (one bigger datagram
# goes alone).  Every queue on the path holds more than that window: the
# clients' and the echo server's sockets have 4 MiB buffers, the TUN's
# queue 500 packets, danted's and sluice's sockets at least 208 KiB.  So no
# datagram should be lost: the bound allows 0.1% of the datagrams and
# 0.1% of the bytes (a stray small one or two, never a big one: one
# 30,000-byte datagram is 0.35% of the bytes).
EX_WINDOW=16 EX_WINDOW_BYTES=$((128 << 10))
MANY=200 MANY_ROUNDS=3
TF=1	# time factor for bounds
if [ -n "$SLUICE_WRAPPER" ]; then
	TF=6 EX_COUNT=2000 MANY=50
fi

# ---- peers of our own ------------------------------------------------------

# start_echo: udptool.py's echo server in ns u (A, B and C, IPv4 and IPv6).
start_echo() {
	ip -n "$NS_U" addr add "$B_V4/32" dev lo || return 1
	ip -n "$NS_U" addr add "$B_V6/128" dev lo nodad || return 1
	rm -f "$WORK/echo.ready"
	start_bg echo "$NS_U" "$PY" "$UDPTOOL" server --ready "$WORK/echo.ready" \
		--lifetime 1800 \
		-l "$DST_V4,$PORT_ECHO" -l "$B_V4,$PORT_B" -l "$DST_V4,$PORT_C" \
		-l "$DST_V6,$PORT_ECHO" -l "$B_V6,$PORT_B" -l "$DST_V6,$PORT_C"
	wait_for 10 test -s "$WORK/echo.ready" || {
		warn "udptool.py server did not start:"
		sed 's/^/    /' "$WORK/echo.log" >&2
		return 1
	}
}

# dante_udp_works: without sluice, a client in ns t that speaks SOCKS5 UDP
# itself gets its echoes through danted, and the full cone: so a failure
# later is sluice's, not the proxy's.
# It is held to the bound the cases hold sluice to (echo_ok), and tried
# once more when over it.
dante_udp_works() {
	local out try
	for try in 1 2; do
		out=$(nst timeout -k 2 60 "$PY" "$UDPTOOL" exchange "$DST_V4" "$PORT_ECHO" \
			--socks "$U_V4,$PORT_DANTE" --count 1000 --big "$BIG_V4" 2>&1)
		echo_ok "$out" 1000 && break
		warn "danted's UDP relay, without sluice (try $try of 2): $ECHO_WHY"
		[ "$try" = 2 ] && return 1
	done
	out=$(nst timeout -k 2 30 "$PY" "$UDPTOOL" cone "$DST_V4" "$PORT_ECHO" \
		"$B_V4,$PORT_B" "$DST_V4,$PORT_C" --socks "$U_V4,$PORT_DANTE" --timeout 5 2>&1)
	case $out in *"got=$B_V4,$PORT_B got=$DST_V4,$PORT_C"*) ;;
	*) warn "danted's UDP relay is no full cone, without sluice: $out"; return 1 ;;
	esac
}

# start_squid: a minimal squid in ns u on $U_V4:$PORT_SQUID (CONNECT to the
# test networks only; it drops to the user proxy); PID in SQUID_PID.
start_squid() {
	local d=$WORK/squid
	mkdir -p "$d"
	cat >"$d/squid.conf" <<EOF
# generated by sluice tests/e2e/udp.sh
http_port $U_V4:$PORT_SQUID
visible_hostname sluice-test
pid_filename $d/squid.pid
cache_log $d/cache.log
access_log none
cache_store_log none
coredump_dir $d
netdb_filename none
pinger_enable off
cache deny all
cache_mem 8 MB
shutdown_lifetime 1 seconds
dns_nameservers 127.0.0.1
acl CONNECT method CONNECT
acl testnet dst 198.18.0.0/15
http_access deny !CONNECT
http_access allow CONNECT testnet
http_access deny all
EOF
	chmod 711 "$WORK"
	chown -R proxy: "$d" 2>/dev/null || chown -R nobody: "$d"
	chmod 700 "$d"
	start_bg squid "$NS_U" squid -N -f "$d/squid.conf"
	SQUID_PID=$BG_PID
	wait_for 20 port_listening "$NS_U" "$U_V4" "$PORT_SQUID" || {
		warn "squid did not start:"
		tail -n 20 "$WORK/squid.log" "$d/cache.log" 2>/dev/null | sed 's/^/    /' >&2
		return 1
	}
}

# start_stunnel: stunnel in ns u, $U_V4:$PORT_TLS -> danted $PORT_DANTE.
start_stunnel() {
	local d=$WORK/stunnel
	mkdir -p "$d"
	cat >"$d/stunnel.conf" <<EOF
; generated by sluice tests/e2e/udp.sh
foreground = yes
pid = $d/stunnel.pid
syslog = no
[svc]
accept = $U_V4:$PORT_TLS
connect = $U_V4:$PORT_DANTE
cert = $CERTS/server.crt
key = $CERTS/server.key
EOF
	start_bg stunnel "$NS_U" stunnel4 "$d/stunnel.conf"
	wait_for 10 port_listening "$NS_U" "$U_V4" "$PORT_TLS" || {
		warn "stunnel did not start:"
		tail -n 20 "$WORK/stunnel.log" 2>/dev/null | sed 's/^/    /' >&2
		return 1
	}
}

# ---- set-up ---------------------------------------------------------------

HAVE_DANTE=0 HAVE_DANTE_UDP=0 HAVE_DANTE_AUTH=0 HAVE_MICRO=0 HAVE_SQUID=0
HAVE_STUNNEL=0 HAVE_SRV=0 HAVE_ECHO=0 HAVE_PING=0
setup() {
	suite_copy_sluice || return 1
	"$SLUICE" --help 2>&1 | grep -q -- '--udp ' ||
		{ SETUP_ERR="$SLUICE has no --udp option (no UDP relay yet)"; return 1; }
	suite_certs "$PROXY_NAME" || return 1
	suite_topo_up || return 1
	start_servers && HAVE_SRV=1
	HAVE_ECHO=2
	start_echo && HAVE_ECHO=1
	# HAVE_*: 1 running, 0 not installed, 2 failed to start (need() fails
	# the case for both; E2E_ALLOW_MISSING=1 makes "not installed" a skip)
	suite_start_dante
	DANTE0_PID=${DANTE_PID:-}	# start_dante below sets DANTE_PID again
	if [ "$HAVE_DANTE" = 1 ] && [ "$HAVE_ECHO" = 1 ]; then
		HAVE_DANTE_UDP=2
		dante_udp_works && HAVE_DANTE_UDP=1
	fi
	if [ -x /usr/sbin/danted ]; then
		HAVE_DANTE_AUTH=2
		start_dante dante_auth "$PORT_DANTE_AUTH" username && HAVE_DANTE_AUTH=1
	fi
	if command -v microsocks >/dev/null; then
		HAVE_MICRO=2
		start_microsocks micro "$PORT_MICRO" && HAVE_MICRO=1
	fi
	if command -v squid >/dev/null; then
		HAVE_SQUID=2
		start_squid && HAVE_SQUID=1
	fi
	if command -v stunnel4 >/dev/null; then
		HAVE_STUNNEL=2
		start_stunnel && HAVE_STUNNEL=1
	fi
	command -v ping >/dev/null && HAVE_PING=1
	[ "$HAVE_ECHO" = 1 ] || { SETUP_ERR="the UDP echo server did not start"; return 1; }
	suite_servers_ok
}

# ---- helpers --------------------------------------------------------------

# udpt SECONDS SUBCOMMAND ARGS...: udptool.py in ns t, bounded by SECONDS.
udpt() {
	local t=$1
	shift
	nst timeout -k 2 "$t" "$PY" "$UDPTOOL" "$@" 2>&1
}

# kv LINE KEY: the value of KEY=VALUE in a udptool.py result line.
kv() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }

# echo_ok OUT COUNT: a udptool.py exchange result OUT of COUNT datagrams is
# whole: all sent, none corrupt, doubled, from a wrong source or unsent,
# and at most 1 in 1000 lost, in datagrams and in bytes (UDP on a loaded
# host may lose one: the baseline through danted alone has).  Else 1, with
# the reason in ECHO_WHY.
echo_ok() {
	local out=$1 count=$2 lost lb bytes k
	ECHO_WHY=
	case $out in *"sent=$count "*) ;; *) ECHO_WHY="exchange did not run: $out"; return 1 ;; esac
	for k in corrupt dup wrongsrc unsent; do
		[ "$(kv "$out" $k)" = 0 ] || { ECHO_WHY="$k=$(kv "$out" $k) (want 0): $out"; return 1; }
	done
	lost=$(kv "$out" lost) lb=$(kv "$out" lost_bytes) bytes=$(kv "$out" bytes)
	[ "$lost" -le $((count / 1000)) ] ||
		{ ECHO_WHY="$lost of $count datagrams lost (bound $((count / 1000))): $out"; return 1; }
	[ "$lb" -le $((bytes / 1000)) ] ||
		{ ECHO_WHY="$lb of $bytes bytes lost (bound $((bytes / 1000))): $out"; return 1; }
}

# stats: a stats line from sluice in STATS (its UDP and ICMP part in
# STATS_UDP, for messages), or fail the case.
stats() {
	STATS=$(sluice_stats) || why "no stats line after SIGUSR1" || return 1
	STATS_UDP=${STATS#*; udp }
	[ "$STATS_UDP" != "$STATS" ] || why "no udp part in the stats line: ${STATS#*stats: }" || return 1
	STATS_UDP="udp ${STATS_UDP%%; dns *}"
}

# st WORD: the number before WORD in STATS (0 if absent, so checks fail).
st() {
	local v
	v=$(stat_field "$STATS" "$1")
	echo "${v:-0}"
}

# link_drops NS DEV: "rx/tx" dropped packets of DEV in NS.
link_drops() {
	ip -n "$1" -s link show "$2" 2>/dev/null |
		awk '/RX:/ { getline; rx = $4 } /TX:/ { getline; tx = $4 }
			END { printf "%s/%s", rx, tx }'
}

# exchange HOST BIG: the windowed echo exchange of EX_COUNT datagrams with
# the big ones BIG, through sluice (already up); checks every echo.
exchange() {
	local host=$1 big=$2 out d0 d1
	d0="veth t $(link_drops "$NS_T" veth0), u $(link_drops "$NS_U" veth0), tun $(link_drops "$NS_T" "$SLUICE_TUN")"
	out=$(udpt $((90 * TF)) exchange "$host" "$PORT_ECHO" --count "$EX_COUNT" \
		--big "$big" --window "$EX_WINDOW" --window-bytes "$EX_WINDOW_BYTES" \
		--timeout $((2 * TF)) --deadline $((60 * TF)))
	d1="veth t $(link_drops "$NS_T" veth0), u $(link_drops "$NS_U" veth0), tun $(link_drops "$NS_T" "$SLUICE_TUN")"
	say "    # $host: $out"
	say "    # dropped (rx/tx) before: $d0; after: $d1"
	echo_ok "$out" "$EX_COUNT" || why "$ECHO_WHY" || return 1
	stats || return 1
	say "    # $STATS_UDP"
	if [ "$(st udp-up)" -lt "$(kv "$out" received)" ] ||
		[ "$(st udp-down)" -lt "$(kv "$out" received)" ]; then
		why "counters below the $(kv "$out" received) datagrams echoed: $STATS_UDP"
	fi
}

# refused HOST [MAX_MS] [PORT]: a connected UDP socket in ns t gets
# ECONNREFUSED within MAX_MS (default 2 s) times TF; the time is in REF_MS.
refused() {
	local host=$1 max=$(( ${2:-2000} * TF )) port=${3:-$PORT_ECHO} out
	out=$(udpt $((10 * TF)) refused "$host" "$port" --timeout $((5 * TF)))
	REF_MS=$(kv "$out" ms)
	case $out in refused*) ;; *) why "$host:$port: $out, want refused (ECONNREFUSED)"; return 1 ;; esac
	awk -v e="$REF_MS" -v m="$max" 'BEGIN { exit !(e < m) }' ||
		why "$host:$port: refused only after $REF_MS ms, want < $max ms"
}

# page_ok: the greeting page of srv.py through the tunnel (TCP).
page_ok() {
	local out
	out=$(tcurl -sS --max-time $((20 * TF)) "http://$DST_V4/" 2>&1) ||
		why "TCP through the same upstream: curl: $out" || return 1
	case $out in *"hello from ns u"*) ;; *) why "TCP: unexpected page: $(head -c 200 <<<"$out")"; return 1 ;; esac
}

# probe_ok HOST BIND_PORT SECONDS: echo from source port BIND_PORT within
# SECONDS; the time it took in PROBE_S.
probe_ok() {
	local out
	out=$(udpt $(($3 + 10)) probe "$1" "$PORT_ECHO" --bind-port "$2" --until "$3")
	PROBE_S=$(kv "$out" seconds)
	case $out in ok*) ;; *) why "no echo from source port $2 within $3 s: $out"; return 1 ;; esac
}

# ---- the cases ------------------------------------------------------------

case_exchange_v4() {
	need HAVE_DANTE_UDP || return
	sluice_up --upstream "$UP_DANTE" || return 1
	exchange "$DST_V4" "$BIG_V4" || return 1
	still_running
}

case_exchange_v6() {
	need HAVE_DANTE_UDP || return
	sluice_up --upstream "$UP_DANTE" || return 1
	exchange "$DST_V6" "$BIG_V6" || return 1
	still_running
}

# cone HOST B C: the probe through sluice, result in CONE.
cone() {
	CONE=$(udpt $((20 * TF)) cone "$1" "$PORT_ECHO" "$2,$PORT_B" "$3,$PORT_C" \
		--timeout $((5 * TF)) --wait 1)
	say "    # $1: $CONE"
	case $CONE in "ack=$1,$PORT_ECHO "*) ;; *) why "$1: no reply from A itself: $CONE"; return 1 ;; esac
}

case_full_cone() {
	need HAVE_DANTE_UDP || return
	sluice_up --upstream "$UP_DANTE" || return 1
	cone "$DST_V4" "$B_V4" "$DST_V4" || return 1
	case $CONE in *" got=$B_V4,$PORT_B "*) ;;
	*) why "IPv4: B's datagram did not arrive from B's address and port: $CONE"; return 1 ;;
	esac
	case $CONE in *" got=$DST_V4,$PORT_C") ;;
	*) why "IPv4: C's datagram did not arrive from C's address and port: $CONE"; return 1 ;;
	esac
	cone "$DST_V6" "$B_V6" "$DST_V6" || return 1
	case $CONE in *" got=$B_V6,$PORT_B got=$DST_V6,$PORT_C") ;;
	*) why "IPv6: B's or C's datagram did not arrive from its address and port: $CONE"; return 1 ;;
	esac
	stats || return 1
	[ "$(st filtered)" = 0 ] || why "filtered $(st filtered) with endpoint-independent filtering: $STATS_UDP" ||
		return 1
	still_running
}

case_address_dependent() {
	need HAVE_DANTE_UDP || return
	sluice_up --upstream "$UP_DANTE" --udp-filtering address-dependent || return 1
	cone "$DST_V4" "$B_V4" "$DST_V4" || return 1
	case $CONE in *" missing=$B_V4,$PORT_B "*) ;;
	*) why "B (an address the client never sent to) reached it: $CONE"; return 1 ;;
	esac
	case $CONE in *" got=$DST_V4,$PORT_C") ;;
	*) why "C (the address the client sent to, another port) did not reach it: $CONE"; return 1 ;;
	esac
	stats || return 1
	say "    # $STATS_UDP"
	[ "$(st filtered)" -ge 1 ] || why "filtered counter did not rise: $STATS_UDP" || return 1
	still_running
}

case_many_sources() {
	need HAVE_DANTE_UDP || return
	local out
	sluice_up --upstream "$UP_DANTE" || return 1
	out=$(udpt $((60 * TF)) many "$DST_V4" "$PORT_ECHO" --sockets "$MANY" \
		--rounds "$MANY_ROUNDS" --timeout $((10 * TF)))
	say "    # $out"
	[ "$(kv "$out" answered)" = $((MANY * MANY_ROUNDS)) ] ||
		why "want $((MANY * MANY_ROUNDS)) echoes: $out" || return 1
	[ "$(kv "$out" wrong)" = 0 ] || why "wrong datagrams: $out" || return 1
	[ "$(kv "$out" ports)" = "$MANY" ] || why "the client sockets shared ports: $out" || return 1
	stats || return 1
	say "    # $STATS_UDP"
	[ "$(st opened)" -ge "$MANY" ] || why "$(st opened) associations opened for $MANY sources" || return 1
	still_running
}

case_max_flows() {
	need HAVE_DANTE_UDP || return
	local out
	sluice_up --upstream "$UP_DANTE" --udp-max-flows 10 || return 1
	out=$(udpt $((60 * TF)) many "$DST_V4" "$PORT_ECHO" --sockets 20 --rounds 2 \
		--timeout "$TF")
	say "    # $out"
	[ "$(kv "$out" answered)" = 20 ] && [ "$(kv "$out" missing)" = 20 ] ||
		why "want 10 sources x 2 rounds answered, the other 10 not: $out" || return 1
	stats || return 1
	say "    # $STATS_UDP"
	[ "$(st udp-over-max)" -ge 20 ] || why "udp-over-max $(st udp-over-max), want >= 20: $STATS_UDP" ||
		return 1
	[ "$(st associations)" = 10 ] || why "$(st associations) associations, want 10: $STATS_UDP" || return 1
	still_running
}

case_timeout_reopen() {
	need HAVE_DANTE_UDP || return
	local i sport=40001 t0 el
	sluice_up --upstream "$UP_DANTE" --udp-timeout 2s || return 1
	probe_ok "$DST_V4" $sport $((5 * TF)) || return 1
	# traffic every 0.5 s for 4 s keeps it (idle time, not age)
	for i in 1 2 3 4 5 6 7 8; do
		sleep 0.5
		probe_ok "$DST_V4" $sport $((5 * TF)) || return 1
	done
	stats || return 1
	[ "$(st opened)" = 1 ] && [ "$(st expired)" = 0 ] && [ "$(st associations)" = 1 ] ||
		why "after 4 s of traffic every 0.5 s, want 1 association, none expired: $STATS_UDP" ||
		return 1
	t0=$(now_ms)
	sleep 1
	stats || return 1
	[ "$(st expired)" = 0 ] || why "expired after 1 s idle (timeout 2s): $STATS_UDP" || return 1
	wait_for $((6 * TF)) expired_one
	el=$(($(now_ms) - t0))
	stats || return 1
	say "    # expired after about $el ms idle: $STATS_UDP"
	[ "$(st expired)" = 1 ] && [ "$(st associations)" = 0 ] ||
		why "not expired $el ms after the last datagram: $STATS_UDP" || return 1
	probe_ok "$DST_V4" $sport $((5 * TF)) || return 1
	stats || return 1
	[ "$(st opened)" = 2 ] && [ "$(st associations)" = 1 ] ||
		why "the next datagram did not open a new association: $STATS_UDP" || return 1
	still_running
}
expired_one() { stats && [ "$(st expired)" -ge 1 ] && [ "$(st associations)" = 0 ]; }

# kill_tree PID: SIGKILL PID and every process it started (danted's
# children relay an association's datagrams on their own: killing only the
# main process leaves the association working), found by parent PID.
kill_tree() {
	local p kids=()
	for p in $(ps -o pid= --ppid "$1" 2>/dev/null); do
		kids+=("$p")
	done
	kill -KILL "$1" 2>/dev/null
	for p in "${kids[@]}"; do kill_tree "$p"; done
}

case_dante_restart() {
	need HAVE_DANTE_UDP || return
	local sport=40002 down_ok=1
	sluice_up --upstream "$UP_DANTE" || return 1
	probe_ok "$DST_V4" $sport $((5 * TF)) || return 1
	disown "$DANTE0_PID" 2>/dev/null	# no "Killed" notice from bash
	kill_tree "$DANTE0_PID"
	stop_pid "$DANTE0_PID" 5
	HAVE_DANTE=2 HAVE_DANTE_UDP=2	# until it is back
	probe_ok "$DST_V4" $sport 1 && down_ok=0
	CASE_WHY=
	start_dante dante "$PORT_DANTE" none || why "danted did not start again" || return 1
	DANTE0_PID=$DANTE_PID
	HAVE_DANTE=1 HAVE_DANTE_UDP=1
	[ $down_ok = 1 ] || why "an echo came back while danted was down" || return 1
	probe_ok "$DST_V4" $sport $((10 * TF)) || return 1
	say "    # traffic from the same source resumed ${PROBE_S}s after danted was back"
	awk -v e="$PROBE_S" -v m=$((5 * TF)) 'BEGIN { exit !(e < m) }' ||
		why "resumed only after ${PROBE_S}s, want < $((5 * TF))s" || return 1
	stats || return 1
	say "    # $STATS_UDP"
	[ "$(st opened)" -ge 2 ] || why "no new association after the restart: $STATS_UDP" || return 1
	still_running
}

case_dante_auth() {
	need HAVE_DANTE_AUTH HAVE_DANTE_UDP || return
	local out
	sluice_up --upstream "$UP_DANTE_AUTH" || return 1
	out=$(udpt $((60 * TF)) exchange "$DST_V4" "$PORT_ECHO" --count 1000 \
		--big "$BIG_V4" --timeout $((2 * TF)))
	say "    # $out"
	stats || return 1
	say "    # $STATS_UDP"	# so a loss shows in sluice's counters, or does not
	echo_ok "$out" 1000 || why "exchange through danted with username auth: $ECHO_WHY" || return 1
	still_running
}

case_dante_wrong_password() {
	need HAVE_DANTE_AUTH || return
	sluice_up --upstream "$UP_DANTE_BADPW" || return 1
	refused "$DST_V4" || return 1
	say "    # ECONNREFUSED after $REF_MS ms"
	stats || return 1
	[ "$(st unreachable)" -ge 1 ] || why "no ICMP unreachable counted: $STATS_UDP" || return 1
	still_running
}

case_http_upstream() {
	need HAVE_SQUID || return
	local out ms4
	sluice_up --upstream "http://$U_V4:$PORT_SQUID" || return 1
	refused "$DST_V4" 100 || return 1
	ms4=$REF_MS
	refused "$DST_V6" 100 || return 1
	say "    # ECONNREFUSED after $ms4 ms (IPv4), $REF_MS ms (IPv6)"
	# a burst of 300 to a closed port: the ICMP answers are rate-limited
	out=$(udpt $((30 * TF)) exchange "$DST_V4" "$PORT_REFUSED" --count 300 \
		--window 300 --window-bytes 1000000 --timeout 0.5 --deadline $((10 * TF)))
	stats || return 1
	say "    # 300 datagrams: $STATS_UDP"
	[ "$(st no-udp)" -ge 302 ] || why "no-udp $(st no-udp), want >= 302: $STATS_UDP" || return 1
	[ "$(st rate-limited)" -ge 1 ] && [ "$(st unreachable)" -lt 300 ] ||
		why "300 datagrams in a burst, ICMP not rate-limited: $STATS_UDP" || return 1
	page_ok || return 1
	still_running
}

case_microsocks_refused() {
	need HAVE_MICRO || return
	local line
	sluice_up --upstream "socks5://$U_V4:$PORT_MICRO" || return 1
	refused "$DST_V4" || return 1
	say "    # ECONNREFUSED after $REF_MS ms"
	line=$(grep -iE 'udp' "$SLUICE_LOG" | grep -iE 'refus|not supported' | head -n 1)
	[ -n "$line" ] || why "no log line about the refused UDP ASSOCIATE" || return 1
	say "    # ${line#* }"
	page_ok || return 1
	still_running
}

case_udp_disabled() {
	need HAVE_DANTE || return
	sluice_up --upstream "$UP_DANTE" --udp no || return 1
	refused "$DST_V4" || return 1
	refused "$DST_V6" || return 1
	stats || return 1
	[ "$(st no-udp)" -ge 2 ] && [ "$(st opened)" = 0 ] ||
		why "want 2 counted no-udp, no association: $STATS_UDP" || return 1
	still_running
}

tls_opts() { echo --ca-file "$CERTS/ca.crt" --server-name "$PROXY_NAME"; }

case_tls_no_plain() {
	need HAVE_STUNNEL HAVE_DANTE || return
	# shellcheck disable=SC2046
	sluice_up --upstream "socks5+tls://$U_V4:$PORT_TLS" $(tls_opts) || return 1
	refused "$DST_V4" || return 1
	say "    # ECONNREFUSED after $REF_MS ms"
	page_ok || return 1
	still_running
}

case_tls_allow_plain() {
	need HAVE_STUNNEL HAVE_DANTE_UDP || return
	local out
	# shellcheck disable=SC2046
	sluice_up --upstream "socks5+tls://$U_V4:$PORT_TLS" $(tls_opts) --udp-allow-plain yes ||
		return 1
	out=$(udpt $((60 * TF)) exchange "$DST_V4" "$PORT_ECHO" --count 1000 \
		--big "$BIG_V4" --timeout $((2 * TF)))
	say "    # $out"
	stats || return 1
	say "    # $STATS_UDP"	# so a loss shows in sluice's counters, or does not
	echo_ok "$out" 1000 || why "exchange with the relay in clear beside TLS: $ECHO_WHY" || return 1
	still_running
}

# ping_all: ping -c 2 -W 1 to A over IPv4 and over IPv6 from ns t; the
# number of replies in PING4 and PING6.
ping_all() {
	local o4 o6
	o4=$(nst timeout -k 2 $((10 * TF)) ping -n -c 2 -W 1 "$DST_V4" 2>&1)
	o6=$(nst timeout -k 2 $((10 * TF)) ping -n -c 2 -W 1 "$DST_V6" 2>&1)
	PING4=$(sed -nE 's/^2 packets transmitted, ([0-9]+) (packets )?received.*/\1/p' <<<"$o4")
	PING6=$(sed -nE 's/^2 packets transmitted, ([0-9]+) (packets )?received.*/\1/p' <<<"$o6")
	say "    # IPv4: $PING4 of 2 answered, IPv6: $PING6 of 2"
	if [ -z "$PING4" ] || [ -z "$PING6" ]; then
		why "ping: $(printf '%s\n%s' "$o4" "$o6" | tail -n 3 | tr '\n' ' ')"
	fi
}

case_icmp_drop() {
	need HAVE_PING || return
	sluice_up --upstream "$UP_DANTE" || return 1
	ping_all || return 1
	[ "$PING4" = 0 ] && [ "$PING6" = 0 ] ||
		why "echo replies with the default --tun-icmp drop: $PING4 + $PING6" || return 1
	stats || return 1
	[ "$(st echo-dropped)" -ge 4 ] || why "echo-dropped $(st echo-dropped), want >= 4: $STATS_UDP" || return 1
	still_running
}

case_icmp_local() {
	need HAVE_PING || return
	sluice_up --upstream "$UP_DANTE" --tun-icmp local || return 1
	ping_all || return 1
	[ "$PING4" = 2 ] && [ "$PING6" = 2 ] ||
		why "want every echo answered with --tun-icmp local: $PING4 + $PING6 of 4" || return 1
	stats || return 1
	[ "$(st echo-dropped)" = 0 ] || why "echo-dropped $(st echo-dropped) with --tun-icmp local" || return 1
	still_running
}

# ---- driver -------------------------------------------------------------------

CASES="exchange_v4 exchange_v6 full_cone address_dependent many_sources max_flows
timeout_reopen dante_restart dante_auth dante_wrong_password http_upstream
microsocks_refused udp_disabled tls_no_plain tls_allow_plain icmp_drop icmp_local"

suite_run udp "$CASES"
