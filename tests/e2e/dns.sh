#!/usr/bin/env bash
# shellcheck disable=SC2034  # HAVE_* are read through ${!v} in need()
# dns.sh - sluice's DNS handling ([dns] mode tcp and fake-ip) end to end,
# with a real resolver and real proxies in network namespaces of their own
# (the topology of lib.sh).  Needs root.
#
#   tests/e2e/dns.sh              every case
#   tests/e2e/dns.sh NAME...      only the cases whose names contain a NAME
#
# Peers in ns u:
#
#   198.18.1.1:53, [2001:db8:18:1::1]:53   dnsmasq, reachable from ns t only
#       through the tunnel: web.test A 198.18.1.1 / AAAA 2001:db8:18:1::1,
#       web.lan A 198.18.1.1 (an excluded suffix), big.test TXT of 4,000
#       bytes (20 strings of 200), NXDOMAIN for anything else under .test
#       and .lan
#   198.18.1.1:5300   a "resolver" that takes DNS over TCP and never answers
#   198.18.1.1:5301   a resolver that answers one query per connection and
#                     closes it
#   198.19.0.2:1080   danted (SOCKS5, UDP ASSOCIATE too), debug logging that
#                     shows each request as it came (a name or an address)
#   198.19.0.2:3128   squid (HTTP CONNECT), its access log on
#   198.19.0.2:1443   stunnel -> danted    (socks5+tls://)
#   198.19.0.2:3443   stunnel -> squid     (https://)
#   198.18.1.1:80, :7000 (and IPv6)  srv.py's HTTP and raw servers
#
# ns u's processes resolve through dnsmasq (/etc/netns/NS_U/resolv.conf, a
# hosts file without the test names), so the proxies resolve fake-ip names;
# ns t's clients (getent, dig, curl) have nameserver 198.18.1.1, which only
# the tunnel reaches.  An nftables table in ns t counts every packet to port
# 53 that leaves by any other device than the TUN: each case checks that it
# stayed 0 (leak_control first proves that the counters count).
#
#   leak_control        a UDP and a TCP packet to port 53 out of the veth are
#                       counted (once each); the counters are then reset
#   tcp_socks5, tcp_socks5_tls, tcp_http, tcp_https
#                       --dns tcp through danted, stunnel+danted, squid,
#                       stunnel+squid: getent (glibc over UDP, AAAA and A),
#                       dig A/AAAA over UDP (to the IPv4 and the IPv6
#                       resolver address), dig +tcp, curl by name; the 4 KB
#                       TXT comes back truncated (tc, no answer) over UDP,
#                       whole over UDP to dig +bufsize=8192, and complete
#                       on dig's retry over TCP; counters
#   fake_ip_socks5      --dns fake-ip through danted: A and AAAA from the
#                       pools (stable), getent, curl -4 and -6 by name with
#                       danted seeing the name (not an address), web.lan
#                       resolved for real, HTTPS answered NODATA
#   fake_ip_http        the same through squid: CONNECT web.test:80
#   fake_ip_eviction    --fake-ip-max 16: 40 other names resolved while a
#                       flow to the first name is open; its mapping stays,
#                       others are evicted, and the flow then carries 256 KiB
#   fake_ip_unmapped    a flow to a pool address that stands for no name is
#                       refused at once (IPv4 and IPv6), logged, counted
#   fake_ip_state_file  --dns-state-file: a mapping survives a restart; curl
#                       to the old fake address (by IP) works
#   burst               200 queries at once from one socket: every one
#                       answered with its own ID and question, over at
#                       most 4 pipelined connections
#   servfail_refused    --dns-server at a port nothing listens on: SERVFAIL
#                       at once
#   servfail_timeout    --dns-server at a resolver that never answers,
#                       --dns-timeout 1s: SERVFAIL after about 1 s
#   resolver_closes     --dns-ports 53,5301: 20 queries pipelined to a
#                       resolver that closes each connection after one
#                       answer: each one answered or SERVFAIL with its own
#                       ID, none left pending
#   idle_conns          --dns-ports 53,5300: connections to resolvers are
#                       closed when idle (10 s), the answered one and the
#                       one whose query timed out
#   pending_at_exit     SIGTERM with a query waiting: a clean exit
#   udp_mode            --dns udp: queries are plain UDP, relayed by danted
#                       (UDP ASSOCIATE) to dnsmasq; sluice answers none
#   bad_query           garbage datagrams to port 53: no reply, counted
#                       bad-query; sluice keeps answering
#
# Every case ends with sluice stopped by SIGTERM: exit 0, TUN gone, no
# sanitizer or valgrind report (lib.sh run_case).
#
# Prints "ok NAME", "FAIL NAME: why" or "skip NAME: why" per case, then
# "dns: N passed, N failed, N skipped".  Exit status 0 when nothing failed.
# Environment: SLUICE, SLUICE_WRAPPER, E2E_LOG_LEVEL, E2E_KEEP (see lib.sh).
set -u

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
suite_init "$@"

DNS_TOOL=$E2E_LIB_DIR/dnstool.py
PROXY_NAME=proxy.test
PORT_TLS=1443 PORT_SQUID=3128 PORT_SQUID_TLS=3443
PORT_DNS_SILENT=5300 PORT_DNS_ONESHOT=5301
PORT_DNS_NOBODY=5399	# 5399: nothing listens there
POOL4=198.18.128.0/17 POOL6=2001:db8:18:ff::/64
UNMAPPED4=198.18.250.250 UNMAPPED6=2001:db8:18:ff::fff0
NAME=web.test NAME_LAN=web.lan NAME_BIG=big.test
UP_DANTE=socks5://$U_V4:$PORT_DANTE
UP_TLS=socks5+tls://$U_V4:$PORT_TLS
UP_SQUID=http://$U_V4:$PORT_SQUID
UP_SQUID_TLS=https://$U_V4:$PORT_SQUID_TLS
NFT_TABLE=sluice_dns

TF=1	# time factor for bounds
[ -n "$SLUICE_WRAPPER" ] && TF=4

# The big TXT record: 20 strings of 200 characters, and all of them
# concatenated, as dig +short shows them without quotes and blanks.
BIG_STRINGS='' BIG_TEXT='' i=0
for c in a b c d e f g h i j k l m n o p q r s t; do
	i=$((i + 1))
	s=$(printf 't%02d-%196s' "$i" '' | tr ' ' "$c")
	BIG_STRINGS="$BIG_STRINGS,$s" BIG_TEXT="$BIG_TEXT$s"
done

# ---- /etc/netns: the resolver configuration of both namespaces --------------

# ip netns exec bind-mounts /etc/netns/NS/FILE over /etc/FILE for what it
# starts; ours are removed (after the namespaces) when the suite exits.
ETC_NETNS_MADE=0
netns_etc() {
	local ns=$1
	if [ ! -d /etc/netns ]; then
		mkdir /etc/netns || return 1
		ETC_NETNS_MADE=1
	fi
	mkdir -p "/etc/netns/$ns" || return 1
	printf 'nameserver %s\noptions timeout:2 attempts:2\n' "$DST_V4" \
		>"/etc/netns/$ns/resolv.conf"
	printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' \
		>"/etc/netns/$ns/hosts"
}

dns_exit() {
	local rc=$?
	topo_down
	rm -rf "/etc/netns/$NS_T" "/etc/netns/$NS_U"
	[ "$ETC_NETNS_MADE" = 1 ] && rmdir /etc/netns 2>/dev/null
	(exit "$rc")
	e2e_cleanup
}
trap dns_exit EXIT

# ---- peers ----------------------------------------------------------------

# start_dnsmasq: the test zone on $DST_V4:53 and [$DST_V6]:53 in ns u.
start_dnsmasq() {
	start_bg dnsmasq "$NS_U" /usr/sbin/dnsmasq --keep-in-foreground \
		--conf-file=/dev/null --pid-file= --log-facility=- --log-queries \
		--no-resolv --no-hosts --bind-interfaces \
		--listen-address="$DST_V4" --listen-address="$DST_V6" --port=53 \
		--local=/test/ --local=/lan/ \
		--host-record="$NAME,$DST_V4,$DST_V6" \
		--host-record="$NAME_LAN,$DST_V4" \
		--txt-record="$NAME_BIG$BIG_STRINGS"
	DNSMASQ_PID=$BG_PID
	if ! wait_for 10 port_listening "$NS_U" "$DST_V4" 53 ||
		! wait_for 5 port_listening "$NS_U" "$DST_V6" 53; then
		warn "dnsmasq did not start:"
		tail -n 20 "$WORK/dnsmasq.log" | sed 's/^/    /' >&2
		return 1
	fi
	# it answers, directly in ns u
	[ "$(nsu timeout 10 dig +short +time=2 +tries=2 "@$DST_V4" "$NAME" A)" = "$DST_V4" ]
}

# start_dante_logged: danted (lib.sh's configuration) on $PORT_DANTE with
# debug logging, so that its log shows each request as sluice sent it:
# "dorequest(): ... Packet: VER: 5 CMD: 1 FLAG: 0 ATYP: 3 address:
# web.test.80" (ATYP 3: a name; "log: connect" shows only the address
# that danted resolved the name to).
start_dante_logged() {
	local d=$WORK/dante
	mkdir -p "$d"
	dante_conf "$d/danted.conf" "$PORT_DANTE" none "$d/danted.log"
	sed -i '1a debug: 1' "$d/danted.conf"	# a server setting: before the rules
	DANTE_LOG=$d/danted.log
	start_bg dante "$NS_U" /usr/sbin/danted -f "$d/danted.conf" -p "$d/danted.pid"
	wait_for 10 port_listening "$NS_U" "$U_V4" "$PORT_DANTE" || {
		warn "danted did not start:"
		tail -n 20 "$WORK/dante.log" "$d/danted.log" 2>/dev/null | sed 's/^/    /' >&2
		return 1
	}
}

# start_squid: squid on $U_V4:$PORT_SQUID, CONNECT to the test networks
# only (names resolved by dnsmasq), access log in $SQUID_ACCESS.
start_squid() {
	local d=$WORK/squid
	mkdir -p "$d"
	cat >"$d/squid.conf" <<EOF
# generated by sluice tests/e2e/dns.sh
http_port $U_V4:$PORT_SQUID
visible_hostname sluice-test
pid_filename $d/squid.pid
cache_log $d/cache.log
access_log stdio:$d/access.log
cache_store_log none
coredump_dir $d
netdb_filename none
pinger_enable off
cache deny all
cache_mem 8 MB
shutdown_lifetime 1 seconds
dns_nameservers $DST_V4
max_filedescriptors 4096
acl CONNECT method CONNECT
acl testnet dst 198.18.0.0/15 2001:db8:18::/48
http_access deny !CONNECT
http_access deny !testnet
http_access allow CONNECT testnet
http_access deny all
EOF
	SQUID_ACCESS=$d/access.log
	chmod 711 "$WORK"
	chown -R proxy: "$d" 2>/dev/null || chown -R nobody: "$d"
	chmod 700 "$d"
	start_bg squid "$NS_U" squid -N -f "$d/squid.conf"
	wait_for 20 port_listening "$NS_U" "$U_V4" "$PORT_SQUID" || {
		warn "squid did not start:"
		tail -n 20 "$WORK/squid.log" "$d/cache.log" 2>/dev/null | sed 's/^/    /' >&2
		return 1
	}
}

# start_stunnel NAME PORT CONNECT_PORT: TLS (certs.sh's server.crt for
# proxy.test) on $U_V4:PORT in front of $U_V4:CONNECT_PORT.
start_stunnel() {
	local name=$1 port=$2 cport=$3 d=$WORK/$1
	mkdir -p "$d"
	cat >"$d/stunnel.conf" <<EOF
; generated by sluice tests/e2e/dns.sh
foreground = yes
pid = $d/stunnel.pid
syslog = no
debug = 5
[svc]
accept = $U_V4:$port
connect = $U_V4:$cport
cert = $CERTS/server.crt
key = $CERTS/server.key
EOF
	start_bg "$name" "$NS_U" stunnel4 "$d/stunnel.conf"
	wait_for 10 port_listening "$NS_U" "$U_V4" "$port" || {
		warn "stunnel ($name) did not start:"
		tail -n 20 "$WORK/$name.log" 2>/dev/null | sed 's/^/    /' >&2
		return 1
	}
}

# start_resolver_tool NAME KIND PORT: dnstool.py's silent or oneshot
# resolver on $DST_V4:PORT.
start_resolver_tool() {
	start_bg "$1" "$NS_U" "$PY" "$DNS_TOOL" "$2" "$DST_V4" "$3" "$WORK/$1.ready" 1800
	wait_for 10 test -s "$WORK/$1.ready"
}

# leak_table: in ns t, count packets to port 53 that leave by anything but
# the TUN (leak_udp, leak_tcp), and DNS into the TUN (tun_udp: port 53 and
# the ports of dnstool.py's resolvers).
leak_table() {
	nst nft -f - <<EOF
table inet $NFT_TABLE {
	counter leak_udp { }
	counter leak_tcp { }
	counter tun_udp { }
	chain out {
		type filter hook output priority 0; policy accept;
		oifname != "sluice0" udp dport 53 counter name "leak_udp"
		oifname != "sluice0" tcp dport 53 counter name "leak_tcp"
		oifname "sluice0" udp dport { 53, $PORT_DNS_SILENT, $PORT_DNS_ONESHOT } counter name "tun_udp"
	}
}
EOF
}

HAVE_DANTE=0 HAVE_SQUID=0 HAVE_STUNNEL=0 HAVE_SQUID_TLS=0 HAVE_SRV=0
HAVE_DNSMASQ=0 HAVE_SILENT=0 HAVE_ONESHOT=0 HAVE_NFT=0 HAVE_DIG=0
setup() {
	suite_copy_sluice || return 1
	suite_certs "$PROXY_NAME" || return 1
	# before anything is started in the namespaces (ip netns exec binds
	# these files for the processes it starts)
	if ! netns_etc "$NS_T" || ! netns_etc "$NS_U"; then
		SETUP_ERR="cannot write /etc/netns/$NS_T or $NS_U"
		return 1
	fi
	suite_topo_up || return 1
	start_servers && HAVE_SRV=1
	command -v dig >/dev/null && HAVE_DIG=1
	if [ -x /usr/sbin/dnsmasq ] && [ "$HAVE_DIG" = 1 ]; then
		HAVE_DNSMASQ=2
		start_dnsmasq && HAVE_DNSMASQ=1
	fi
	HAVE_SILENT=2 HAVE_ONESHOT=2
	start_resolver_tool silent-dns silent "$PORT_DNS_SILENT" && HAVE_SILENT=1
	start_resolver_tool oneshot-dns oneshot "$PORT_DNS_ONESHOT" && HAVE_ONESHOT=1
	if [ -x /usr/sbin/danted ]; then
		HAVE_DANTE=2
		start_dante_logged && HAVE_DANTE=1
	fi
	if command -v squid >/dev/null; then
		HAVE_SQUID=2
		start_squid && HAVE_SQUID=1
	fi
	if command -v stunnel4 >/dev/null; then
		HAVE_STUNNEL=2 HAVE_SQUID_TLS=2
		[ "$HAVE_DANTE" = 1 ] && start_stunnel stunnel "$PORT_TLS" "$PORT_DANTE" &&
			HAVE_STUNNEL=1
		[ "$HAVE_SQUID" = 1 ] && start_stunnel stunnel-squid "$PORT_SQUID_TLS" "$PORT_SQUID" &&
			HAVE_SQUID_TLS=1
	fi
	if command -v nft >/dev/null; then
		HAVE_NFT=2
		leak_table 2>"$WORK/nft.err" && HAVE_NFT=1
	fi
	suite_servers_ok
}

# ---- helpers --------------------------------------------------------------------

tls_opts() { echo --ca-file "$CERTS/ca.crt" --server-name "$PROXY_NAME"; }

# dns_up MODE UPSTREAM [SLUICE_ARGS...]: sluice with --dns MODE; in fake-ip
# mode with the test pools, routed into the TUN.
dns_up() {
	local mode=$1 up=$2
	shift 2
	if [ "$mode" = fake-ip ]; then
		set -- --fake-ipv4 "$POOL4" --fake-ipv6 "$POOL6" "$@"
	fi
	sluice_up --upstream "$up" --connect-timeout 5s --dns "$mode" "$@" || return 1
	[ "$mode" = fake-ip ] || return 0
	if ! ip -n "$NS_T" route replace "$POOL4" dev "$SLUICE_TUN" ||
		! ip -n "$NS_T" -6 route replace "$POOL6" dev "$SLUICE_TUN"; then
		why "cannot route the fake-ip pools into $SLUICE_TUN"
	fi
}

# tdig ARGS...: dig in ns t (its resolv.conf: $DST_V4), bounded.
tdig() { nst timeout -k 2 $((20 * TF)) dig +time=$((3 * TF)) +tries=2 "$@"; }

# dig_short WANT ARGS...: dig +short ARGS prints exactly WANT.
dig_short() {
	local want=$1 out
	shift
	out=$(tdig +short "$@" 2>&1)
	[ "$out" = "$want" ] || why "dig $*: '$(head -c 300 <<<"$out")', want '$want'"
}

# tgetent DB KEY: getent in ns t (glibc's stub resolver, over UDP).
tgetent() { nst timeout -k 2 $((20 * TF)) getent "$@"; }

# page_ok URL [CURL_ARGS...]: the greeting page of srv.py through the tunnel.
page_ok() {
	local url=$1 out
	shift
	out=$(tcurl -sS -g --max-time $((20 * TF)) "$@" "$url" 2>&1) ||
		why "curl $* $url: $(head -c 300 <<<"$out")" || return 1
	case $out in *"hello from ns u"*) ;; *) why "curl $* $url: unexpected page: $(head -c 200 <<<"$out")"; return 1 ;; esac
}

# stats: a fresh stats line in ST; st NAME: one of its counters.
stats() { ST=$(sluice_stats) || why "no stats line after SIGUSR1"; }
st() { stat_field "$ST" "$1"; }

# in_pool4 ADDR / in_pool6 ADDR: ADDR lies in the fake-ip pool.
in_pool4() {
	local a b c d
	IFS=. read -r a b c d <<<"$1"
	[ "$a" = 198 ] && [ "$b" = 18 ] && [ -n "$c" ] && [ "$c" -ge 128 ] &&
		[ -n "$d" ] && [ "$d" -le 255 ]
}
in_pool6() { case $1 in 2001:db8:18:ff:*) return 0 ;; *) return 1 ;; esac; }

# nft_count NAME: packets counted by the named counter in ns t.
nft_count() {
	nst nft list counter inet "$NFT_TABLE" "$1" 2>/dev/null |
		sed -nE 's/.*packets ([0-9]+).*/\1/p'
}

# no_leak: nothing to port 53 left ns t but through the TUN, and some DNS
# did go into the TUN (the counter of the TUN is then reset).
no_leak() {
	local u t n
	u=$(nft_count leak_udp) t=$(nft_count leak_tcp) n=$(nft_count tun_udp)
	[ "$u" = 0 ] && [ "$t" = 0 ] ||
		why "DNS leaked past the TUN: ${u:-?} UDP and ${t:-?} TCP packets to port 53 out of ns t by another device" ||
		return 1
	[ -n "$n" ] && [ "$n" -gt 0 ] || why "no DNS datagram went into the TUN (tun_udp ${n:-?})" || return 1
	nst nft reset counter inet "$NFT_TABLE" tun_udp >/dev/null
}

# dante_requests N: the requests danted logged after the first N lines of
# its log.
dante_requests() { lines_after "$DANTE_LOG" "$1" | grep 'dorequest(): .*Packet: '; }
n_name_requests() { dante_requests "$1" | grep -c "ATYP: 3 address: $NAME\.$PORT_HTTP\b"; }
name_requests_at_least() { [ "$(n_name_requests "$1")" -ge "$2" ]; }

# dante_saw_name N: since line N, danted got two requests for $NAME:80 by
# name (ATYP 3), and none for a fake address.
dante_saw_name() {
	local n0=$1 req
	wait_for 2 name_requests_at_least "$n0" 2
	req=$(dante_requests "$n0")
	[ "$(n_name_requests "$n0")" -ge 2 ] ||
		why "danted did not get two requests for $NAME.$PORT_HTTP by name: $(tail -n 2 <<<"$req")" || return 1
	! grep -qF -e "$FAKE4" -e "$FAKE6" <<<"$req" ||
		why "danted was asked for a fake address: $(grep -m1 -F -e "$FAKE4" -e "$FAKE6" <<<"$req")"
}

# squid_connects_at_least N M: squid logged M or more CONNECTs to
# $NAME:80 after the first N lines of its access log.
squid_connects_at_least() {
	[ "$(lines_after "$SQUID_ACCESS" "$1" | grep -c "CONNECT $NAME:$PORT_HTTP ")" -ge "$2" ]
}

# lines_after FILE N: FILE's lines after the first N.
lines_after() { tail -n +$(($2 + 1)) "$1" 2>/dev/null; }
nlines() { wc -l <"$1" 2>/dev/null || echo 0; }

# ---- the cases ---------------------------------------------------------------------

# The counters of the leak table count what they should: one UDP datagram
# and one TCP SYN to port 53 out of the veth (to ns u, where nothing listens
# on 198.19.0.2:53: port unreachable, RST).
case_leak_control() {
	need HAVE_NFT || return
	local out
	nst nft reset counters table inet "$NFT_TABLE" >/dev/null || why "cannot reset the counters" || return 1
	out=$(nst timeout 10 "$PY" "$DNS_TOOL" send "$U_V4" 53 query 2)
	case $out in "error ECONNREFUSED" | noreply) ;; *) why "UDP to $U_V4:53: $out"; return 1 ;; esac
	out=$(tcli 10 connect "$U_V4" 53 3)
	case $out in refused*) ;; *) why "TCP to $U_V4:53: $out, want refused"; return 1 ;; esac
	[ "$(nft_count leak_udp)" = 1 ] || why "leak_udp counted $(nft_count leak_udp), want 1" || return 1
	[ "$(nft_count leak_tcp)" = 1 ] || why "leak_tcp counted $(nft_count leak_tcp), want 1" || return 1
	nst nft reset counters table inet "$NFT_TABLE" >/dev/null
	if [ "$(nft_count leak_udp)" != 0 ] || [ "$(nft_count leak_tcp)" != 0 ]; then
		why "the counters were not reset"
	fi
}

# tcp_mode UPSTREAM [SLUICE_ARGS...]: the tcp-mode checks through UPSTREAM.
tcp_mode() {
	local out q0 tcp0 tr0
	dns_up tcp "$@" || return 1
	# glibc: gethostbyname2(AF_INET6), then getaddrinfo(AF_INET)
	out=$(tgetent hosts "$NAME" 2>&1)
	[ "$(awk '{ print $1 }' <<<"$out")" = "$DST_V6" ] ||
		why "getent hosts $NAME: '$out', want $DST_V6" || return 1
	out=$(tgetent ahostsv4 "$NAME" 2>&1)
	[ "$(awk 'NR == 1 { print $1 }' <<<"$out")" = "$DST_V4" ] ||
		why "getent ahostsv4 $NAME: '$(head -n 1 <<<"$out")', want $DST_V4" || return 1
	dig_short "$DST_V4" "$NAME" A || return 1
	dig_short "$DST_V6" "$NAME" AAAA || return 1
	dig_short "$DST_V4" "@$DST_V6" "$NAME" A || return 1	# IPv6 transport
	dig_short "$DST_V4" +tcp "$NAME" A || return 1
	# NXDOMAIN passes through
	out=$(tdig "nosuch.$NAME" A 2>&1)
	grep -q 'status: NXDOMAIN' <<<"$out" || why "nosuch.$NAME: no NXDOMAIN: $(grep -m1 status: <<<"$out")" || return 1
	page_ok "http://$NAME/" || return 1
	stats || return 1
	q0=$(st queries) tcp0=$(st tcp) tr0=$(st truncated)
	# 4 KB TXT: truncated over UDP (tc, no answer) ...
	out=$(tdig +ignore "$NAME_BIG" TXT 2>&1)
	grep -qE '^;; flags:[a-z ]* tc[ ;]' <<<"$out" ||
		why "dig +ignore $NAME_BIG TXT: no tc flag: $(grep -m1 '^;; flags' <<<"$out")" || return 1
	grep -q 'ANSWER: 0,' <<<"$out" || why "dig +ignore $NAME_BIG TXT: an answer despite tc" || return 1
	# ... complete over UDP when the client takes 8 KB (a datagram that
	# sluice fragments at the TUN's MTU) ...
	out=$(tdig +short +bufsize=8192 +ignore "$NAME_BIG" TXT 2>&1)
	[ "$(tr -d '" \n' <<<"$out")" = "$BIG_TEXT" ] ||
		why "dig +bufsize=8192 $NAME_BIG TXT: not the whole record over UDP: $(head -c 200 <<<"$out")" ||
		return 1
	# ... and complete on dig's own retry over TCP
	out=$(tdig "$NAME_BIG" TXT 2>&1)
	grep -q 'Truncated, retrying in TCP mode' <<<"$out" ||
		why "dig $NAME_BIG TXT did not retry over TCP" || return 1
	out=$(tdig +short "$NAME_BIG" TXT 2>&1)
	[ "$(tr -d '" \n' <<<"$out")" = "$BIG_TEXT" ] ||
		why "dig $NAME_BIG TXT: ${#out} characters, not the 4,000 of the record: $(head -c 200 <<<"$out")" ||
		return 1
	stats || return 1
	[ "$(st queries)" -ge $((q0 + 4)) ] || why "queries $(st queries), want >= $((q0 + 4))" || return 1
	[ "$(st tcp)" -ge $((tcp0 + 4)) ] || why "tcp $(st tcp), want >= $((tcp0 + 4))" || return 1
	[ "$(st truncated)" -eq $((tr0 + 3)) ] ||
		why "truncated $(st truncated), want $((tr0 + 3))" || return 1
	[ "$(st servfail)" = 0 ] && [ "$(st bad-query)" = 0 ] ||
		why "servfail $(st servfail), bad-query $(st bad-query): want 0" || return 1
	[ "$(st fake)" = 0 ] || why "fake answers in tcp mode: $(st fake)" || return 1
	say "    # dns $(st queries) queries, $(st tcp) over tcp, $(st truncated) truncated, $(st dns-conns) dns-conns, p50 $(sed -nE 's/.*p50 ([0-9]+) ms.*/\1/p' <<<"$ST") ms"
	no_leak || return 1
	still_running
}

case_tcp_socks5() {
	need HAVE_DNSMASQ HAVE_DANTE HAVE_NFT || return
	tcp_mode "$UP_DANTE"
}

case_tcp_socks5_tls() {
	need HAVE_DNSMASQ HAVE_STUNNEL HAVE_NFT || return
	# shellcheck disable=SC2046
	tcp_mode "$UP_TLS" $(tls_opts)
}

case_tcp_http() {
	need HAVE_DNSMASQ HAVE_SQUID HAVE_NFT || return
	tcp_mode "$UP_SQUID"
}

case_tcp_https() {
	need HAVE_DNSMASQ HAVE_SQUID_TLS HAVE_NFT || return
	# shellcheck disable=SC2046
	tcp_mode "$UP_SQUID_TLS" $(tls_opts)
}

# fake_basics: A and AAAA from the pools, stable; getent agrees; web.lan
# resolved for real; HTTPS NODATA.  Sets FAKE4, FAKE6.
fake_basics() {
	local out
	FAKE4=$(tdig +short "$NAME" A 2>&1)
	in_pool4 "$FAKE4" || why "dig $NAME A: '$FAKE4', want an address in $POOL4" || return 1
	FAKE6=$(tdig +short "$NAME" AAAA 2>&1)
	in_pool6 "$FAKE6" || why "dig $NAME AAAA: '$FAKE6', want an address in $POOL6" || return 1
	dig_short "$FAKE4" "$NAME" A || return 1
	dig_short "$FAKE6" "$NAME" AAAA || return 1
	dig_short "$FAKE4" "WEB.Test" A || return 1	# names are case-insensitive
	out=$(tgetent ahostsv4 "$NAME" 2>&1)
	[ "$(awk 'NR == 1 { print $1 }' <<<"$out")" = "$FAKE4" ] ||
		why "getent ahostsv4 $NAME: '$(head -n 1 <<<"$out")', want $FAKE4" || return 1
	out=$(tdig "$NAME" A 2>&1)
	grep -qE "^$NAME\.[[:space:]]+60[[:space:]]+IN[[:space:]]+A[[:space:]]+$FAKE4\$" <<<"$out" ||
		why "dig $NAME A: no answer with TTL 60: $(grep -A1 'ANSWER SECTION' <<<"$out" | tail -n 1)" ||
		return 1
	# an excluded suffix: the real address, from the resolver
	dig_short "$DST_V4" "$NAME_LAN" A || return 1
	out=$(tdig "$NAME" HTTPS 2>&1)
	if ! grep -q 'status: NOERROR' <<<"$out" || ! grep -q 'ANSWER: 0,' <<<"$out"; then
		why "dig $NAME HTTPS: want NODATA: $(grep -m1 'status:' <<<"$out")"
	fi
}

fake_counters() {
	stats || return 1
	[ "$(st fake)" -ge 5 ] || why "fake $(st fake), want >= 5" || return 1
	[ "$(st nodata)" = 1 ] || why "nodata $(st nodata), want 1" || return 1
	[ "$(st tcp)" -ge 1 ] || why "tcp $(st tcp), want >= 1 ($NAME_LAN)" || return 1
	[ "$(st 'mappings')" -ge 2 ] || why "fake-ip mappings $(st mappings), want >= 2" || return 1
	say "    # dns $(st queries) queries, $(st fake) fake, $(st nodata) nodata, $(st tcp) tcp; fake-ip $(st mappings) mappings"
}

case_fake_ip_socks5() {
	need HAVE_DNSMASQ HAVE_DANTE HAVE_NFT || return
	local n0 new
	dns_up fake-ip "$UP_DANTE" || return 1
	fake_basics || return 1
	n0=$(nlines "$DANTE_LOG")
	page_ok "http://$NAME/" -4 || return 1
	page_ok "http://$NAME:$PORT_HTTP/" -6 || return 1
	dante_saw_name "$n0" || return 1
	say "    # danted: $(dante_requests "$n0" | head -n 1 | sed -E 's/^.*(Packet: )/\1/')"
	fake_counters || return 1
	no_leak || return 1
	still_running
}

case_fake_ip_http() {
	need HAVE_DNSMASQ HAVE_SQUID HAVE_NFT || return
	local n0 new
	dns_up fake-ip "$UP_SQUID" || return 1
	fake_basics || return 1
	n0=$(nlines "$SQUID_ACCESS")
	page_ok "http://$NAME/" -4 || return 1
	page_ok "http://$NAME/" -6 || return 1
	wait_for 5 squid_connects_at_least "$n0" 2
	new=$(lines_after "$SQUID_ACCESS" "$n0")
	[ "$(grep -c "CONNECT $NAME:$PORT_HTTP " <<<"$new")" -ge 2 ] ||
		why "squid's access log lacks two 'CONNECT $NAME:$PORT_HTTP': $(tail -n 3 <<<"$new")" || return 1
	! grep -qF -e "$FAKE4" -e "$FAKE6" <<<"$new" ||
		why "squid saw a fake address: $(grep -m1 -F -e "$FAKE4" -e "$FAKE6" <<<"$new")" || return 1
	fake_counters || return 1
	no_leak || return 1
	still_running
}

# --fake-ip-max 16: a flow to $NAME stays open while 40 other names are
# resolved; its mapping is not forgotten, and the flow still carries data.
case_fake_ip_eviction() {
	need HAVE_DNSMASQ HAVE_DANTE HAVE_NFT || return
	local out names='' i n hpid peer
	dns_up fake-ip "$UP_DANTE" --fake-ip-max 16 || return 1
	FAKE4=$(tdig +short "$NAME" A 2>&1)
	in_pool4 "$FAKE4" || why "dig $NAME A: '$FAKE4', want an address in $POOL4" || return 1
	# the reverse of a pool address is the name it stands for
	dig_short "$NAME." -x "$FAKE4" || { CASE_WHY="dig -x $FAKE4: $CASE_WHY"; return 1; }
	rm -f "$WORK/hold.ready" "$WORK/hold.go"
	start_bg hold "$NS_T" "$PY" "$DNS_TOOL" hold "$NAME" "$PORT_RAW" \
		"$WORK/hold.ready" "$WORK/hold.go" $((60 * TF))
	hpid=$BG_PID
	wait_for $((10 * TF)) test -s "$WORK/hold.ready" ||
		why "the flow to $NAME did not open: $(cat "$WORK/hold.log")" || return 1
	peer=$(cat "$WORK/hold.ready")
	[ "$peer" = "$FAKE4" ] || why "the flow went to $peer, not $NAME's $FAKE4" || return 1
	for i in $(seq -w 1 40); do names="$names n$i.$NAME"; done
	# shellcheck disable=SC2086
	out=$(tdig +short $names A 2>&1)
	n=$(grep -c . <<<"$out")
	[ "$n" = 40 ] || why "40 names resolved to $n lines: $(head -c 200 <<<"$out")" || return 1
	while read -r i; do
		in_pool4 "$i" || why "a name resolved to $i, not a pool address" || return 1
	done <<<"$out"
	[ "$(sort -u <<<"$out" | grep -c .)" = 40 ] || why "40 names got fewer than 40 addresses" || return 1
	! grep -qxF "$FAKE4" <<<"$out" || why "$NAME's held address $FAKE4 was given to another name" || return 1
	dig_short "$FAKE4" "$NAME" A || { CASE_WHY="the held mapping changed: $CASE_WHY"; return 1; }
	pid_alive "$hpid" || why "the flow ended during the lookups: $(cat "$WORK/hold.log")" || return 1
	touch "$WORK/hold.go"
	wait_for $((40 * TF)) pid_gone "$hpid"
	stop_pid "$hpid" 1
	out=$(cat "$WORK/hold.log")
	case $out in "ok $((256 << 10)) "*) ;; *) why "the held flow after the lookups: ${out:-no output}"; return 1 ;; esac
	stats || return 1
	[ "$(st evicted)" -ge 25 ] || why "evicted $(st evicted), want >= 25" || return 1
	[ "$(st mappings)" -le 16 ] || why "$(st mappings) mappings, want <= 16" || return 1
	[ "$(st full)" = 0 ] || why "full $(st full), want 0" || return 1
	say "    # fake-ip $(st mappings) mappings ($(st created) created, $(st evicted) evicted); the held flow carried 256 KiB after the lookups"
	no_leak || return 1
	still_running
}

# A flow to a pool address that stands for no name: refused at once.
case_fake_ip_unmapped() {
	need HAVE_DANTE || return
	local a t0 t1 rc el out
	dns_up fake-ip "$UP_DANTE" || return 1
	for a in "$UNMAPPED4" "[$UNMAPPED6]"; do
		t0=$(now_ms)
		tcurl -sS -g --max-time $((10 * TF)) -o /dev/null "http://$a/" 2>"$WORK/curl.err"
		rc=$? t1=$(now_ms) el=$((t1 - t0))
		[ $rc = 7 ] || why "curl http://$a/: exit $rc, want 7 (refused): $(head -c 200 "$WORK/curl.err")" ||
			return 1
		[ $el -lt $((2000 * TF)) ] || why "curl http://$a/ refused only after $el ms" || return 1
	done
	for a in "$UNMAPPED4" "$UNMAPPED6"; do
		out=$(tdig -x "$a" 2>&1 | grep -o 'status: [A-Z]*')
		[ "$out" = "status: NXDOMAIN" ] ||
			why "dig -x $a (a pool address with no name): '$out', want NXDOMAIN" || return 1
	done
	wait_for 2 grep -q 'stands for no name' "$SLUICE_LOG" ||
		why "no log line about the unmapped address" || return 1
	say "    # $(grep -m1 'stands for no name' "$SLUICE_LOG" | sed -E 's/^.*(refused)/\1/')"
	stats || return 1
	[ "$(st unmapped)" -ge 2 ] || why "unmapped $(st unmapped), want >= 2" || return 1
	[ "$(st accepted)" = 0 ] || why "$(st accepted) flows accepted, want 0" || return 1
	still_running
}

# --dns-state-file: the table is saved at exit and loaded at start.
case_fake_ip_state_file() {
	need HAVE_DNSMASQ HAVE_DANTE HAVE_NFT || return
	local f=$WORK/fakeip.state n0 new
	rm -f "$f"
	dns_up fake-ip "$UP_DANTE" --dns-state-file "$f" || return 1
	FAKE4=$(tdig +short "$NAME" A 2>&1)
	in_pool4 "$FAKE4" || why "dig $NAME A: '$FAKE4', want an address in $POOL4" || return 1
	FAKE6=$(tdig +short "$NAME" AAAA 2>&1)
	in_pool6 "$FAKE6" || why "dig $NAME AAAA: '$FAKE6', want an address in $POOL6" || return 1
	no_leak || return 1
	stop_sluice || why "first run: $SLUICE_ERR" || return 1
	grep -qx "$FAKE4 $NAME" "$f" || why "state file lacks '$FAKE4 $NAME': $(head -c 300 "$f" 2>&1)" || return 1
	grep -qx "$FAKE6 $NAME" "$f" || why "state file lacks '$FAKE6 $NAME': $(head -c 300 "$f")" || return 1
	local LOG_SFX=-2	# the second run's log: sluice-fake_ip_state_file-2.log
	dns_up fake-ip "$UP_DANTE" --dns-state-file "$f" || return 1
	stats || return 1
	[ "$(st mappings)" = 2 ] || why "after the restart: $(st mappings) mappings, want 2" || return 1
	n0=$(nlines "$DANTE_LOG")
	page_ok "http://$FAKE4/" || { CASE_WHY="old fake address after the restart: $CASE_WHY"; return 1; }
	page_ok "http://[$FAKE6]/" || { CASE_WHY="old fake address after the restart: $CASE_WHY"; return 1; }
	dante_saw_name "$n0" || return 1
	dig_short "$FAKE4" "$NAME" A || { CASE_WHY="after the restart: $CASE_WHY"; return 1; }
	no_leak || return 1
	still_running
}

# tdig_status TIMEOUT_S ARGS...: one try, status in DIG_STATUS, elapsed ms
# in DIG_MS.
tdig_status() {
	local t=$1 t0 out
	shift
	t0=$(now_ms)
	out=$(nst timeout -k 2 $((t + 5)) dig +time="$t" +tries=1 "$@" 2>&1)
	DIG_MS=$(($(now_ms) - t0))
	DIG_STATUS=$(sed -nE 's/.*status: ([A-Z]+).*/\1/p' <<<"$out" | head -n 1)
	[ -n "$DIG_STATUS" ] || DIG_STATUS="none: $(tail -n 2 <<<"$out" | tr '\n' ' ')"
}

# servfail_within MIN_MS MAX_MS: a query gets SERVFAIL (rcode 2) with the
# client's own ID, from dnstool.py (which shows the ID) and from dig, each
# within [MIN_MS, MAX_MS).
servfail_within() {
	local lo=$1 hi=$2 t0 el out
	t0=$(now_ms)
	out=$(nst timeout $((hi / 1000 + 10)) "$PY" "$DNS_TOOL" send "$DST_V4" 53 query $((hi / 1000 + 3)))
	el=$(($(now_ms) - t0))
	case $out in
	"reply "*" id 20818 rcode 2") ;;
	"reply "*" rcode 2") why "SERVFAIL with ID ${out#* id }, not the query's ID 20818 (so no client takes it)"; return 1 ;;
	*) why "a query (ID 20818): $out, want a SERVFAIL"; return 1 ;;
	esac
	[ "$el" -ge "$lo" ] && [ "$el" -lt "$hi" ] ||
		why "SERVFAIL (dnstool) after $el ms, want [$lo, $hi) ms" || return 1
	tdig_status $((hi / 1000 + 3)) "$NAME" A
	[ "$DIG_STATUS" = SERVFAIL ] || why "dig: status $DIG_STATUS, want SERVFAIL" || return 1
	[ "$DIG_MS" -ge "$lo" ] && [ "$DIG_MS" -lt "$hi" ] ||
		why "SERVFAIL (dig) after $DIG_MS ms, want [$lo, $hi) ms" || return 1
	say "    # SERVFAIL after $el ms (dnstool), $DIG_MS ms (dig)"
}

# A resolver that cannot be reached through the proxy: SERVFAIL at once.
case_servfail_refused() {
	need HAVE_DANTE HAVE_NFT HAVE_DIG || return
	dns_up tcp "$UP_DANTE" --dns-server "$DST_V4:$PORT_DNS_NOBODY" --dns-timeout 1s || return 1
	servfail_within 0 $((1000 + 1000 * TF)) || return 1
	stats || return 1
	[ "$(st servfail)" = 2 ] || why "servfail $(st servfail), want 2" || return 1
	[ "$(st pending)" = 0 ] || why "$(st pending) queries still pending" || return 1
	no_leak || return 1
	still_running
}

# A resolver that takes the query and never answers: SERVFAIL after
# --dns-timeout, not a hang.
case_servfail_timeout() {
	need HAVE_DANTE HAVE_SILENT HAVE_NFT HAVE_DIG || return
	dns_up tcp "$UP_DANTE" --dns-server "$DST_V4:$PORT_DNS_SILENT" --dns-timeout 1s || return 1
	servfail_within 900 $((1000 + 1000 * TF)) || return 1
	stats || return 1
	[ "$(st timeouts)" = 2 ] || why "timeouts $(st timeouts), want 2" || return 1
	[ "$(st servfail)" = 2 ] || why "servfail $(st servfail), want 2" || return 1
	[ "$(st pending)" = 0 ] || why "$(st pending) queries still pending" || return 1
	no_leak || return 1
	still_running
}

# A resolver that closes each connection after one answer, with 20
# queries pipelined on it: each query is carried on (once) to a new
# connection, so every one gets its own answer or SERVFAIL, with its own
# ID, and none is left pending.
case_resolver_closes() {
	need HAVE_DANTE HAVE_ONESHOT HAVE_NFT || return
	local out a f
	dns_up tcp "$UP_DANTE" --dns-ports "53,$PORT_DNS_ONESHOT" --dns-timeout 3s || return 1
	out=$(nst timeout $((30 * TF)) "$PY" "$DNS_TOOL" burst "$DST_V4" "$PORT_DNS_ONESHOT" 20 \
		$((10 * TF)) any)
	case $out in "ok 20 "*) ;; *) why "${out:-no output from dnstool.py burst}"; return 1 ;; esac
	a=$(sed -nE 's/.* answered ([0-9]+) .*/\1/p' <<<"$out") f=${out##* }
	say "    # 20 queries: $a answered, $f SERVFAIL"
	[ "$a" -ge 2 ] || why "only $a of 20 answered, want >= 2 (two connections)" || return 1
	stats || return 1
	[ "$(st tcp)" = "$a" ] && [ "$(st servfail)" = "$f" ] ||
		why "tcp $(st tcp), servfail $(st servfail): want $a and $f" || return 1
	[ "$(st pending)" = 0 ] || why "$(st pending) queries still pending" || return 1
	[ "$(st timeouts)" = 0 ] || why "timeouts $(st timeouts), want 0 (a closed connection is no timeout)" || return 1
	no_leak || return 1
	still_running
}

# poll_dns_conns N SECONDS: sluice has at most N connections to resolvers
# within SECONDS (asked once a second); 1 if not.
poll_dns_conns() {
	local i
	for ((i = 0; i < $2; i++)); do
		sleep 1
		stats || return 1
		[ "$(st dns-conns)" -le "$1" ] && return 0
	done
	return 1
}

# Connections to resolvers are closed once idle (DNS_IDLE_MS, 10 s): the
# one whose query was answered; the one whose query timed out at once.  Port
# 5300 is made a DNS port (--dns-ports), so that the client addresses the
# silent resolver itself.
case_idle_conns() {
	need HAVE_DNSMASQ HAVE_DANTE HAVE_SILENT HAVE_NFT || return
	local out
	dns_up tcp "$UP_DANTE" --dns-ports "53,$PORT_DNS_SILENT" --dns-timeout 1s || return 1
	dig_short "$DST_V4" "$NAME" A || return 1
	out=$(nst timeout 15 "$PY" "$DNS_TOOL" send "$DST_V4" "$PORT_DNS_SILENT" query $((3 * TF)))
	case $out in "reply "*" rcode 2") ;; *) why "query to the silent resolver: $out, want SERVFAIL"; return 1 ;; esac
	stats || return 1
	# the connection whose query timed out closes at once (it gets no
	# new queries either); the one that answered stays until idle
	[ "$(st dns-conns)" = 1 ] || why "dns-conns $(st dns-conns), want 1 (the timed-out one closed)" || return 1
	[ "$(st timeouts)" = 1 ] || why "timeouts $(st timeouts), want 1" || return 1
	if ! poll_dns_conns 0 $((12 + 4 * TF)); then
		if [ "$(st dns-conns)" = 1 ]; then
			why "the idle connection was never closed (dns-conns 1 after $((12 + 4 * TF)) s; idle close is 10 s)"
		else
			why "dns-conns $(st dns-conns) after $((12 + 4 * TF)) s, want 0 (idle close is 10 s)"
		fi
		return 1
	fi
	no_leak || return 1
	still_running
}

# SIGTERM while a query waits for a resolver: a clean exit (run_case
# checks exit 0 within the stop allowance, no sanitizer report).
case_pending_at_exit() {
	need HAVE_DANTE HAVE_SILENT || return
	local out
	dns_up tcp "$UP_DANTE" --dns-ports "53,$PORT_DNS_SILENT" --dns-timeout 30s || return 1
	out=$(nst timeout 10 "$PY" "$DNS_TOOL" send "$DST_V4" "$PORT_DNS_SILENT" query 1)
	[ "$out" = noreply ] || why "query to the silent resolver: $out, want no reply yet" || return 1
	poll_dns_conns 1 $((5 * TF))
	[ "$(st pending)" = 1 ] && [ "$(st dns-conns)" = 1 ] ||
		why "pending $(st pending), dns-conns $(st dns-conns): want 1 and 1" || return 1
	still_running
}

# 200 queries at once from one client socket: all answered, each with its
# own ID and question, pipelined over at most 4 connections.
case_burst() {
	need HAVE_DNSMASQ HAVE_DANTE HAVE_NFT || return
	local out
	dns_up tcp "$UP_DANTE" || return 1
	out=$(nst timeout $((30 * TF)) "$PY" "$DNS_TOOL" burst "$DST_V4" 53 200 $((15 * TF)))
	case $out in "ok 200 "*) ;; *) why "${out:-no output from dnstool.py burst}"; return 1 ;; esac
	stats || return 1
	say "    # 200 queries answered in ${out##* }s over $(st dns-conns) connections"
	[ "$(st tcp)" = 200 ] || why "tcp $(st tcp), want 200" || return 1
	[ "$(st dns-conns)" -le 4 ] || why "$(st dns-conns) dns-conns, want <= 4" || return 1
	[ "$(st servfail)" = 0 ] || why "servfail $(st servfail)" || return 1
	no_leak || return 1
	still_running
}

# --dns udp: DNS is UDP like any other, relayed through danted's UDP
# ASSOCIATE to dnsmasq; sluice takes none of it.
case_udp_mode() {
	need HAVE_DNSMASQ HAVE_DANTE HAVE_NFT || return
	dns_up udp "$UP_DANTE" || return 1
	dig_short "$DST_V4" "$NAME" A || return 1
	dig_short "$DST_V6" "$NAME" AAAA || return 1
	page_ok "http://$NAME/" || return 1
	stats || return 1
	[ "$(st queries)" = 0 ] || why "sluice took $(st queries) queries, want 0 in udp mode" || return 1
	[ "$(st opened)" -ge 1 ] && [ "$(st udp-up)" -ge 2 ] ||
		why "$(st opened) associations opened, $(st udp-up) datagrams up: want >= 1 and >= 2" || return 1
	no_leak || return 1
	still_running
}

# Datagrams to port 53 that are no DNS query: dropped without a reply,
# counted, and sluice goes on answering.
case_bad_query() {
	need HAVE_DNSMASQ HAVE_DANTE HAVE_NFT || return
	local kind dst out n=0
	dns_up tcp "$UP_DANTE" || return 1
	for dst in "$DST_V4" "$DST_V6"; do
		for kind in short response ones; do
			out=$(nst timeout 10 "$PY" "$DNS_TOOL" send "$dst" 53 "$kind" 1)
			[ "$out" = noreply ] || why "$kind datagram to $dst:53: $out, want noreply" || return 1
			n=$((n + 1))
		done
	done
	# the control: the same tool's well-formed query is answered
	out=$(nst timeout 10 "$PY" "$DNS_TOOL" send "$DST_V4" 53 query $((5 * TF)))
	case $out in "reply "*) ;; *) why "a well-formed query: $out, want a reply"; return 1 ;; esac
	dig_short "$DST_V4" "$NAME" A || return 1
	stats || return 1
	[ "$(st bad-query)" = "$n" ] || why "bad-query $(st bad-query), want $n" || return 1
	[ "$(st queries)" = $((n + 2)) ] || why "queries $(st queries), want $((n + 2))" || return 1
	[ "$(st tcp)" = 2 ] || why "tcp $(st tcp), want 2" || return 1
	no_leak || return 1
	still_running
}

# ---- driver -------------------------------------------------------------------

CASES="leak_control tcp_socks5 tcp_socks5_tls tcp_http tcp_https fake_ip_socks5
fake_ip_http fake_ip_eviction fake_ip_unmapped fake_ip_state_file
burst servfail_refused servfail_timeout resolver_closes idle_conns pending_at_exit udp_mode bad_query"

suite_run dns "$CASES"
