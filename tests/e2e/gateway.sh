#!/usr/bin/env bash
# shellcheck disable=SC2034  # HAVE_* are read through ${!v} in need()
# gateway.sh - sluice as the gateway of another host: a client namespace
# routes through ns t (forwarding on) into the TUN, over a link with a
# smaller MTU than the TUN's.  With offloads sluice hands the kernel 64 KiB
# super-packets to cut; they must be cut at the client's MSS (from its
# SYN), not the TUN's, or every full segment exceeds the client link's MTU
# and is dropped at the router.  Needs root.
#
#  ns $NS_C (client)          ns $NS_T (router + sluice)        ns $NS_U
#    veth 198.19.1.2/24 ◀──▶ veth 198.19.1.1/24 (mtu LINK_MTU)   danted,
#    route 198.18.1.0/24      TUN 198.18.0.1/24 (mtu 1500)       srv.py
#      via 198.19.1.1         veth0 198.19.0.1  ◀──────────────▶ 198.19.0.2
#
#   tests/e2e/gateway.sh [NAME...]
#
# Prints "ok NAME" / "FAIL NAME: why" per case, then "gateway: N passed,
# N failed, N skipped".  Environment: SLUICE, SLUICE_WRAPPER, E2E_KEEP.
set -u

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
suite_init "$@"
NS_C=sluice-c-$$
C_V4=198.19.1.2 R_V4=198.19.1.1
C_V6=2001:db8:19:1::2 R_V6=2001:db8:19:1::1
LINK_MTU=1280
SIZE=$((16 << 20))
TF=1
[ -n "$SLUICE_WRAPPER" ] && TF=6 SIZE=$((4 << 20))
UP_DANTE=socks5://$U_V4:$PORT_DANTE
HAVE_DANTE=0 HAVE_SRV=0

nsc() { ip netns exec "$NS_C" "$@"; }

# client namespace: made after the standard topology, removed at exit
gw_down() {
	ns_kill_all "$NS_C"
	ip netns del "$NS_C" 2>/dev/null
	return 0
}

gw_up() {
	ip netns add "$NS_C" || return 1
	ip -n "$NS_C" link set lo up
	ip -n "$NS_T" link add vethc type veth peer name vethc netns "$NS_C" || return 1
	nsc sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 >/dev/null
	ip -n "$NS_T" link set vethc mtu "$LINK_MTU"
	ip -n "$NS_C" link set vethc mtu "$LINK_MTU"
	ip -n "$NS_T" addr add "$R_V4/24" dev vethc
	ip -n "$NS_C" addr add "$C_V4/24" dev vethc
	ip -n "$NS_T" addr add "$R_V6/64" dev vethc nodad
	ip -n "$NS_C" addr add "$C_V6/64" dev vethc nodad
	ip -n "$NS_T" link set vethc up
	ip -n "$NS_C" link set vethc up
	# only the test network goes through the router, nothing else
	ip -n "$NS_C" route add "$NET_V4" via "$R_V4" || return 1
	ip -n "$NS_C" -6 route add "$NET_V6" via "$R_V6" || return 1
	nst sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 >/dev/null
}

setup() {
	# (without the "run make" hint of suite_copy_sluice)
	[ -x "$SLUICE" ] || { SETUP_ERR="no sluice binary at $SLUICE"; return 1; }
	suite_copy_sluice || return 1
	suite_topo_up || return 1
	gw_up || { SETUP_ERR="cannot build the client namespace"; return 1; }
	start_servers && HAVE_SRV=1
	suite_start_dante
	suite_big_file "$SIZE" || return 1
	suite_servers_ok
}

# ccurl ARGS...: curl in the client namespace, no proxy from the environment
ccurl() {
	nsc env -u http_proxy -u https_proxy -u all_proxy -u HTTP_PROXY \
		-u HTTPS_PROXY -u ALL_PROXY curl "$@"
}

# gw_download URL: the big file through the router and sluice, intact
gw_download() {
	local url=$1
	fetch_sha256 ccurl $((10 * TF)) $((30 * TF)) "$url/file/big.bin" ||
		why "download $url: curl exit $CURL_RC: $(head -c 200 "$WORK/curl.err")" || return 1
	[ "$GOT_SHA" = "$BIG_SHA" ] || why "download $url: sha256 differs"
}

# gw_upload URL ID: the big file up through the router and sluice
gw_upload() {
	local url=$1 id=$2 rc out
	out=$(ccurl -sS -g --connect-timeout $((10 * TF)) --max-time $((30 * TF)) \
		-T "$BIG" "$url/up/$id" 2>"$WORK/curl.err")
	rc=$?
	[ $rc -eq 0 ] || why "upload $url: curl exit $rc: $(head -c 200 "$WORK/curl.err")" || return 1
	[ "$out" = "$SIZE $BIG_SHA" ] || why "upload $url: server got '$out'"
}

# Both ways, IPv4 and IPv6, with the client's MSS below the TUN's.
gw_transfer() {
	sluice_up "$@" || return 1
	gw_download "http://$DST_V4" || return 1
	gw_upload "http://$DST_V4" "gw4-$CASE" || return 1
	gw_download "http://[$DST_V6]" || return 1
	gw_upload "http://[$DST_V6]" "gw6-$CASE" || return 1
	still_running
}

case_small_mtu_offload() {
	need HAVE_DANTE || return
	gw_transfer --upstream "$UP_DANTE" --tun-offload yes || return 1
	grep -q "offloads" "$SLUICE_LOG" || why "offloads were not on (kernel refused?)"
}

case_small_mtu_no_offload() {
	need HAVE_DANTE || return
	gw_transfer --upstream "$UP_DANTE" --tun-offload no
}

CASES="small_mtu_offload small_mtu_no_offload"

trap 'rc=$?; gw_down; (exit $rc); e2e_cleanup' EXIT
suite_run gateway "$CASES"
