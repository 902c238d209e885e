#!/usr/bin/env bash
# demo.sh - `make demo`: show sluice carrying a web request, in two network
# namespaces of its own that are deleted afterwards.  Needs root.
#
#   ns "t": sluice + its TUN device, and curl
#   ns "u": dante (SOCKS5) on 198.19.0.2:1080, a web server on 198.18.1.1:80
#
# curl in "t" asks for http://198.18.1.1/; the kernel routes that into the
# TUN, sluice hands the connection to dante, dante fetches the page in "u".
set -u
E2E_LOG_LEVEL=${E2E_LOG_LEVEL:-debug}	# show the flow being set up
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/e2e/lib.sh"
require_root

if [ -t 1 ]; then B=$(printf '\033[1m') N=$(printf '\033[0m'); else B='' N=''; fi
step() { printf '\n%s==> %s%s\n' "$B" "$*" "$N"; }
die() { printf '\ndemo failed: %s\n' "$*" >&2; exit 1; }

[ -x "$SLUICE" ] || die "no sluice binary at $SLUICE (run make first)"

step "creating namespaces $NS_T (tunnel side) and $NS_U (upstream side)"
topo_up || die "cannot create the namespaces"
say "    $NS_T: veth0 $T_V4/24     <->     $NS_U: veth0 $U_V4/24"
say "    $NS_U: lo $DST_V4 (the web server's address)"

step "starting dante (SOCKS5) on $U_V4:$PORT_DANTE and a web server on $DST_V4:$PORT_HTTP in $NS_U"
start_dante dante "$PORT_DANTE" none || die "danted did not start"
start_servers || die "the web server did not start"

step "starting sluice in $NS_T"
say "    sluice --upstream socks5://$U_V4:$PORT_DANTE --ipv4 $TUN_V4 --ipv6 $TUN_V6"
start_sluice sluice --upstream "socks5://$U_V4:$PORT_DANTE" ||
	{ show_log "$WORK/sluice.log"; die "$SLUICE_ERR"; }
sed 's/^/    sluice: /' "$SLUICE_LOG"
say "    routing $NET_V4 into $SLUICE_TUN:"
ip -n "$NS_T" route show dev "$SLUICE_TUN" | sed 's/^/    /'

step "curl -v http://$DST_V4/   (from $NS_T, through the tunnel)"
tcurl -sS -v --max-time 15 "http://$DST_V4/" 2>&1
rc=$?

step "stopping sluice (SIGTERM)"
stop_sluice || say "    note: $SLUICE_ERR"

step "sluice's log (--log-level $E2E_LOG_LEVEL)"
sed 's/^/    /' "$SLUICE_LOG"
if [ $rc -eq 0 ]; then
	say ""
	say "the page travelled: curl -> TUN -> sluice -> SOCKS5 (dante) -> web server"
	say "(the namespaces and processes of this demo are removed on exit)"
else
	say ""
	say "curl failed (exit $rc): the request did not make it through the tunnel"
fi
exit $rc
