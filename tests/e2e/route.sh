#!/usr/bin/env bash
# shellcheck disable=SC2034  # HAVE_* are read through ${!v} in need()
# route.sh - [route] auto: sluice installs policy routing (its own table,
# rules around it, a kill switch) so that ns t's traffic goes into the TUN
# with no route added by hand.  Needs root.
#
#   tests/e2e/route.sh              every case
#   tests/e2e/route.sh NAME...      only the cases whose names contain a NAME
#
# The topology of lib.sh, plus default routes: ns t reaches everything
# beyond the veth by its default routes via ns u, as a host reaches the
# internet.  Both the proxy and the test servers are on ns u's lo, reached
# by those default routes only, so a proxy connection that went into the
# tunnel would loop (route.h explains why it does not):
#
#  ns t                                       ns u
#    sluice --auto-route yes (TUN sluice0)      danted on 198.18.6.1:1080
#    default via 198.19.0.2                     srv.py http on 198.18.7.1,
#    -6 default via 2001:db8:19::2                2001:db8:18:7::1, 198.18.8.1
#    veth0 198.19.0.1 ◀──────────────────────▶ veth0 198.19.0.2
#                                               nft: packets that came in by
#                                               veth0 for the test servers
#
#   tunnel              curl to 198.18.7.1 and [2001:db8:18:7::1] goes
#                       through sluice: one accepted flow per request, no
#                       loop, nothing by the veth; the rules and table are
#                       there; after SIGTERM every rule and route of ns t
#                       is as before sluice started
#   exclude             --route-exclude: those networks go direct (by the
#                       veth, no flow), the rest through the tunnel
#   include             --route-include: only those networks go through the
#                       tunnel, the rest direct
#   table               --route-table 2000: table 2000, the fwmark 0x7d0
#                       (the table's number) on the rule; after SIGKILL,
#                       sluice --route-down --route-table 2000 cleans up
#   kill_switch         --kill-switch yes, then SIGKILL: connects to the
#                       servers fail at once and no packet for them leaves
#                       by the veth; the proxy stays reachable; a new sluice
#                       works again; SIGKILL again, then sluice --route-down
#                       (twice): traffic goes direct, tables as before
#   kill_switch_sigterm --kill-switch yes, then SIGTERM: the block stays (a
#                       stop is no reason to leak); sluice --route-down
#                       lifts it and nothing is left
#   stale               no kill switch, SIGKILL: the rules stay and traffic
#                       goes direct; a new sluice takes them over (no
#                       duplicates) and works; after SIGTERM nothing is left
#   reload              SIGHUP with other [route] exclude and kill_switch
#                       in the file: the rules and routes follow, no
#                       duplicates
#   route_down_clean    sluice --route-down with nothing installed: exit 0,
#                       nothing changed
#
# Prints "ok NAME", "FAIL NAME: why" or "skip NAME: why" per case, then
# "route: N passed, N failed, N skipped".  Exit status 0 when nothing failed.
# Environment: SLUICE, SLUICE_WRAPPER, E2E_LOG_LEVEL, E2E_KEEP (see lib.sh).
set -u

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
suite_init "$@"

PROXY_V4=198.18.6.1 PORT_PROXY=1080
WEB_V4=198.18.7.1 WEB_V6=2001:db8:18:7::1 OTHER_V4=198.18.8.1
WEB_NET4=198.18.7.0/24 WEB_NET6=2001:db8:18:7::/64
UP=socks5://$PROXY_V4:$PORT_PROXY
TABLE=1487 PRIO=14870	# sluice's defaults (route.h)
NFT_TABLE=sluice_route
TF=1
[ -n "$SLUICE_WRAPPER" ] && TF=6

# ---- set-up ---------------------------------------------------------------

# route_topo: default routes in ns t via ns u; the proxy's and the servers'
# addresses on ns u's lo.
route_topo() {
	ip -n "$NS_T" route add default via "$U_V4" || return 1
	ip -n "$NS_T" -6 route add default via "$U_V6" || return 1
	ip -n "$NS_U" addr add "$PROXY_V4/32" dev lo || return 1
	ip -n "$NS_U" addr add "$WEB_V4/32" dev lo || return 1
	ip -n "$NS_U" addr add "$OTHER_V4/32" dev lo || return 1
	ip -n "$NS_U" addr add "$WEB_V6/128" dev lo nodad || return 1
}

# route_dante: danted on $PROXY_V4 (lib.sh's configuration plus that
# address); PID in DANTE_PID.
route_dante() {
	local d=$WORK/dante
	mkdir -p "$d"
	dante_conf "$d/danted.conf" "$PORT_PROXY" none "$d/danted.log"
	# (server settings go before the rules)
	sed -i "/^internal: $U_V6 /a internal: $PROXY_V4 port = $PORT_PROXY" "$d/danted.conf"
	start_bg dante "$NS_U" /usr/sbin/danted -f "$d/danted.conf" -p "$d/danted.pid"
	DANTE_PID=$BG_PID
	wait_for 10 port_listening "$NS_U" "$PROXY_V4" "$PORT_PROXY"
}

# route_web: srv.py's HTTP server on the test addresses; HAVE_SRV.
route_web() {
	rm -f "$WORK/web.ready"
	start_bg web "$NS_U" "$PY" "$SRV_PY" --dir "$WORK/srv" --ready "$WORK/web.ready" \
		--lifetime 1800 -l "http,$WEB_V4,$PORT_HTTP" -l "http,$WEB_V6,$PORT_HTTP" \
		-l "http,$OTHER_V4,$PORT_HTTP"
	wait_for 10 test -s "$WORK/web.ready" && HAVE_SRV=1
}

# route_nft: in ns u, count what arrives by veth0 for the test servers.
route_nft() {
	nsu nft -f - <<EOF
table inet $NFT_TABLE {
	counter web4 { }
	counter web6 { }
	counter other4 { }
	chain pre {
		type filter hook prerouting priority -300; policy accept;
		iifname "veth0" ip daddr $WEB_V4 counter name "web4"
		iifname "veth0" ip6 daddr $WEB_V6 counter name "web6"
		iifname "veth0" ip daddr $OTHER_V4 counter name "other4"
	}
}
EOF
}

HAVE_DANTE=0 HAVE_SRV=0 HAVE_NFT=0
setup() {
	suite_copy_sluice || return 1
	if ! "$SLUICE" --help 2>&1 | grep -q -- --auto-route; then
		SETUP_ERR="$SLUICE has no --auto-route"
		return 1
	fi
	suite_topo_up || return 1
	route_topo || { SETUP_ERR="cannot add the default routes and addresses"; return 1; }
	route_web
	if [ -x /usr/sbin/danted ]; then
		HAVE_DANTE=2
		route_dante && HAVE_DANTE=1
	fi
	if command -v nft >/dev/null; then
		HAVE_NFT=2
		route_nft 2>"$WORK/nft.err" && HAVE_NFT=1
	fi
	suite_servers_ok || return 1
	# direct, before any sluice: the servers answer by the default routes
	if ! get_direct "$WEB_V4" || ! get_direct "[$WEB_V6]"; then
		SETUP_ERR="the test servers cannot be reached by the default routes"
		return 1
	fi
	snap "$WORK/tables.before"
}

get_direct() { tcurl -sS -g --max-time 10 -o /dev/null "http://$1/" 2>/dev/null; }

# ---- helpers --------------------------------------------------------------

# snap FILE: ns t's rules and routes of every table, both families (the
# link-local lines left out: the kernel adds them when it likes).
snap() {
	{
		ip -n "$NS_T" rule
		ip -n "$NS_T" -6 rule
		ip -n "$NS_T" route show table all
		ip -n "$NS_T" -6 route show table all
	} 2>&1 | grep -v 'fe80:' >"$1"
}

# tables_clean: ns t's rules and routes are as before sluice ever ran.
tables_clean() {
	snap "$WORK/tables.now"
	cmp -s "$WORK/tables.before" "$WORK/tables.now" && return 0
	why "rules or routes differ from before: $(diff "$WORK/tables.before" "$WORK/tables.now" |
		grep '^[<>]' | head -n 6 | tr '\n' ';')"
}

# rsluice_up ARGS...: sluice in ns t with --auto-route yes, the proxy on
# $PROXY_V4 and ARGS; no route is added by hand.  Waits for "ready"; sets
# SLUICE_PID, SLUICE_LOG, SLUICE_TUN like lib.sh's start_sluice, or fails
# the case.  A case that starts sluice more than once sets LOG_SFX.
rsluice_up() {
	local name=sluice-$CASE$LOG_SFX
	SLUICE_TUN=sluice0 SLUICE_ERR='' SLUICE_RC=''
	SLUICE_LOG=$WORK/$name.log
	# shellcheck disable=SC2086
	start_bg "$name" "$NS_T" $SLUICE_WRAPPER "$SLUICE" --ipv4 "$TUN_V4" --ipv6 "$TUN_V6" \
		--log-level "$E2E_LOG_LEVEL" --upstream "$UP" --auto-route yes "$@"
	SLUICE_PID=$BG_PID
	if ! wait_for "$SLUICE_START_TIMEOUT" sluice_started; then
		stop_pid "$SLUICE_PID" 2 KILL
		SLUICE_PID=
		why "start: not ready after ${SLUICE_START_TIMEOUT}s"
		return 1
	fi
	if ! pid_alive "$SLUICE_PID" || ! sluice_ready; then
		stop_pid "$SLUICE_PID" 1
		SLUICE_PID=
		why "start: sluice exited during start-up (exit $STOP_RC): $(grep -v ' debug: ' "$SLUICE_LOG" | tail -n 2 | tr '\n' ' ')"
		return 1
	fi
}

# rsluice_kill: SIGKILL sluice and wait until its TUN device is gone.
rsluice_kill() {
	local pid=$SLUICE_PID
	SLUICE_PID=
	disown "$pid" 2>/dev/null	# no "Killed" notice from bash
	stop_pid "$pid" 1 KILL
	wait_for 5 tun_gone || why "TUN $SLUICE_TUN still there after SIGKILL"
}
tun_gone() { ! ip -n "$NS_T" link show "$SLUICE_TUN" >/dev/null 2>&1; }

# rsluice_stop: SIGTERM (lib.sh stop_sluice), or fail the case.
rsluice_stop() { stop_sluice || why "stop: $SLUICE_ERR"; }

# route_down ARGS...: sluice --route-down in ns t; it must exit 0.
route_down() {
	local rc
	# shellcheck disable=SC2086
	nst timeout -k 2 $((10 * TF)) $SLUICE_WRAPPER "$SLUICE" --route-down \
		--log-level "$E2E_LOG_LEVEL" "$@" >"$WORK/down.out" 2>&1
	rc=$?
	[ $rc -eq 0 ] || why "sluice --route-down: exit $rc: $(tail -n 3 "$WORK/down.out" | tr '\n' ' ')"
}

# accepted: sluice's count of accepted flows (its stats line on SIGUSR1).
accepted() {
	local line
	line=$(sluice_stats) || return 1
	ACC=$(stat_field "$line" accepted) LOOPS=$(stat_field "$line" loops)
	[ -n "$ACC" ] && [ -n "$LOOPS" ]
}

# get HOST: one GET of http://HOST/, which must answer with the greeting.
get() {
	local out
	out=$(tcurl -sS -g --connect-timeout $((5 * TF)) --max-time $((15 * TF)) "http://$1/" 2>&1) ||
		why "curl http://$1/: $out" || return 1
	case $out in *"hello from ns u"*) ;; *) why "http://$1/: unexpected page: $out"; return 1 ;; esac
}

# get_fails HOST: a GET of http://HOST/ fails at once (curl exit 7: the
# connect is refused by the route, not timed out).
get_fails() {
	local rc t0 el
	t0=$(now_ms)
	tcurl -sS -g --connect-timeout 5 --max-time 10 -o /dev/null "http://$1/" 2>"$WORK/curl.err"
	rc=$? el=$(($(now_ms) - t0))
	[ $rc -eq 7 ] || why "curl http://$1/: exit $rc, want 7 (refused): $(head -c 200 "$WORK/curl.err")" ||
		return 1
	[ $el -lt 2000 ] || why "curl http://$1/ failed only after $el ms"
}

# nft_count NAME: packets of the named counter in ns u.
nft_count() {
	nsu nft list counter inet "$NFT_TABLE" "$1" 2>/dev/null |
		sed -nE 's/.*packets ([0-9]+).*/\1/p'
}
nft_reset() { nsu nft reset counters table inet "$NFT_TABLE" >/dev/null; }

# via_tunnel HOST COUNTER N: N GETs of HOST through the tunnel: N more
# flows accepted, no loop, nothing for HOST by the veth.
via_tunnel() {
	local host=$1 counter=$2 n=$3 a0 i
	accepted || why "no stats line from sluice" || return 1
	a0=$ACC
	nft_reset
	for ((i = 0; i < n; i++)); do get "$host" || return 1; done
	accepted || why "no stats line from sluice" || return 1
	[ "$ACC" -eq $((a0 + n)) ] ||
		why "$n GETs of $host: $((ACC - a0)) flows accepted, want $n" || return 1
	[ "$LOOPS" -eq 0 ] || why "$LOOPS flows refused as loops" || return 1
	[ "$(nft_count "$counter")" = 0 ] ||
		why "$(nft_count "$counter") packets for $host came by the veth, want 0"
}

# direct HOST COUNTER: a GET of HOST works by the veth, not the tunnel (no
# flow accepted when sluice runs).
direct() {
	local host=$1 counter=$2 a0=''
	if [ -n "$SLUICE_PID" ]; then
		accepted || why "no stats line from sluice" || return 1
		a0=$ACC
	fi
	nft_reset
	get "$host" || return 1
	[ "$(nft_count "$counter")" -gt 0 ] ||
		why "GET $host: no packet by the veth, want direct" || return 1
	[ -z "$a0" ] && return 0
	accepted || why "no stats line from sluice" || return 1
	[ "$ACC" -eq "$a0" ] || why "GET $host: $((ACC - a0)) flows accepted, want 0 (direct)"
}

# rules_count FAMILY: how many rules of ns t are in sluice's range.
rules_count() {
	ip -n "$NS_T" "$1" rule | awk -F: -v lo="$PRIO" -v hi=$((PRIO + 2)) \
		'$1 >= lo && $1 <= hi { n++ } END { print n + 0 }'
}

# ---- the cases --------------------------------------------------------------

case_tunnel() {
	need HAVE_DANTE HAVE_NFT || return
	local rules rt a0
	rsluice_up || return 1
	rules=$(ip -n "$NS_T" rule)
	grep -qE "^$PRIO:.*to $PROXY_V4 lookup main" <<<"$rules" ||
		why "no rule for the proxy at $PRIO: $rules" || return 1
	grep -qE "^$((PRIO + 1)):.*lookup main suppress_prefixlength 0" <<<"$rules" ||
		why "no suppress_prefixlength rule at $((PRIO + 1))" || return 1
	grep -qE "^$((PRIO + 2)):.*not from all fwmark 0x5cf lookup $TABLE" <<<"$rules" ||
		why "no fwmark rule at $((PRIO + 2)): $rules" || return 1
	[ "$(rules_count -6)" = 2 ] || why "$(rules_count -6) IPv6 rules, want 2" || return 1
	rt=$(ip -n "$NS_T" route show table "$TABLE")
	grep -q "^default dev $SLUICE_TUN " <<<"$rt" || why "table $TABLE: $rt" || return 1
	grep -q "^unreachable" <<<"$rt" && { why "unreachable route without a kill switch"; return 1; }
	rt=$(ip -n "$NS_T" -6 route show table "$TABLE")
	grep -q "^default dev $SLUICE_TUN " <<<"$rt" || why "IPv6 table $TABLE: $rt" || return 1
	via_tunnel "$WEB_V4" web4 3 || return 1
	via_tunnel "[$WEB_V6]" web6 2 || return 1
	# the connected network stays outside the tunnel (danted listens on
	# $U_V4 too): no flow
	accepted || why "no stats line from sluice" || return 1
	a0=$ACC
	tcli 10 connect "$U_V4" "$PORT_PROXY" 3 | grep -q '^connected' ||
		why "cannot connect to $U_V4:$PORT_PROXY" || return 1
	accepted || why "no stats line from sluice" || return 1
	[ "$ACC" -eq "$a0" ] || why "a connect to the connected network became a flow" || return 1
	rsluice_stop || return 1
	tables_clean
}

case_exclude() {
	need HAVE_DANTE HAVE_NFT || return
	rsluice_up --route-exclude "$WEB_NET4, $WEB_NET6" || return 1
	[ "$(rules_count -4)" = 4 ] || why "$(rules_count -4) IPv4 rules, want 4" || return 1
	direct "$WEB_V4" web4 || return 1
	direct "[$WEB_V6]" web6 || return 1
	via_tunnel "$OTHER_V4" other4 1 || return 1
	rsluice_stop || return 1
	tables_clean
}

case_include() {
	need HAVE_DANTE HAVE_NFT || return
	local rt
	rsluice_up --route-include "$WEB_NET4" || return 1
	rt=$(ip -n "$NS_T" route show table "$TABLE")
	[ "$(wc -l <<<"$rt")" = 1 ] && grep -q "^$WEB_NET4 dev $SLUICE_TUN " <<<"$rt" ||
		why "table $TABLE: $rt" || return 1
	# no IPv6 network included: no IPv6 rules either
	[ "$(rules_count -6)" = 0 ] || why "$(rules_count -6) IPv6 rules, want 0" || return 1
	via_tunnel "$WEB_V4" web4 2 || return 1
	direct "$OTHER_V4" other4 || return 1
	direct "[$WEB_V6]" web6 || return 1
	rsluice_stop || return 1
	tables_clean
}

case_table() {
	need HAVE_DANTE HAVE_NFT || return
	rsluice_up --route-table 2000 || return 1
	ip -n "$NS_T" route show table 2000 | grep -q "^default dev $SLUICE_TUN " ||
		why "no default route in table 2000" || return 1
	ip -n "$NS_T" rule | grep -qE "^$((PRIO + 2)):.*not from all fwmark 0x7d0 lookup 2000" ||
		why "no rule 'not fwmark 0x7d0 lookup 2000': $(ip -n "$NS_T" rule | tr '\n' ';')" || return 1
	via_tunnel "$WEB_V4" web4 1 || return 1
	# what a killed sluice left, sluice --route-down of that table removes
	rsluice_kill || return 1
	route_down --route-table 2000 || return 1
	tables_clean
}

case_kill_switch() {
	need HAVE_DANTE HAVE_NFT || return
	local LOG_SFX=-1 rt
	rsluice_up --kill-switch yes || return 1
	rt=$(ip -n "$NS_T" route show table "$TABLE")
	grep -q "^unreachable default .*metric 4294967295" <<<"$rt" ||
		why "no unreachable route: $rt" || return 1
	via_tunnel "$WEB_V4" web4 1 || return 1
	rsluice_kill || return 1
	# blocked: refused at once, nothing by the veth
	nft_reset
	get_fails "$WEB_V4" || return 1
	get_fails "[$WEB_V6]" || return 1
	get_fails "$OTHER_V4" || return 1
	[ "$(nft_count web4)" = 0 ] && [ "$(nft_count web6)" = 0 ] &&
		[ "$(nft_count other4)" = 0 ] ||
		why "packets left by the veth with the kill switch on: $(nft_count web4) $(nft_count web6) $(nft_count other4)" ||
		return 1
	# the proxy and the connected network are still reachable
	tcli 10 connect "$PROXY_V4" "$PORT_PROXY" 3 | grep -q '^connected' ||
		why "the proxy is not reachable with the kill switch on" || return 1
	# a new sluice takes over
	LOG_SFX=-2
	rsluice_up --kill-switch yes || return 1
	via_tunnel "$WEB_V4" web4 1 || return 1
	rsluice_kill || return 1
	get_fails "$WEB_V4" || return 1
	# sluice --route-down lifts the block; twice is fine
	route_down || return 1
	direct "$WEB_V4" web4 || return 1
	direct "[$WEB_V6]" web6 || return 1
	tables_clean || return 1
	route_down || return 1
	tables_clean
}

case_kill_switch_sigterm() {
	need HAVE_DANTE HAVE_NFT || return
	rsluice_up --kill-switch yes || return 1
	via_tunnel "$WEB_V4" web4 1 || return 1
	rsluice_stop || return 1
	nft_reset
	get_fails "$WEB_V4" || return 1
	[ "$(nft_count web4)" = 0 ] ||
		why "packets left by the veth after a clean stop with the kill switch on" ||
		return 1
	grep -q 'kill switch left in place' "$SLUICE_LOG" ||
		why "no 'kill switch left in place' line in the log" || return 1
	route_down || return 1
	tables_clean || return 1
	direct "$WEB_V4" web4
}

case_stale() {
	need HAVE_DANTE HAVE_NFT || return
	local LOG_SFX=-1
	rsluice_up || return 1
	rsluice_kill || return 1
	# the rules stay, but lead into an empty table: traffic goes direct
	[ "$(rules_count -4)" = 3 ] || why "after SIGKILL: $(rules_count -4) IPv4 rules, want 3" || return 1
	direct "$WEB_V4" web4 || return 1
	LOG_SFX=-2
	rsluice_up || return 1
	[ "$(rules_count -4)" = 3 ] && [ "$(rules_count -6)" = 2 ] ||
		why "restarted: $(rules_count -4) IPv4 and $(rules_count -6) IPv6 rules, want 3 and 2" ||
		return 1
	via_tunnel "$WEB_V4" web4 2 || return 1
	rsluice_stop || return 1
	tables_clean
}

case_reload() {
	need HAVE_DANTE HAVE_NFT || return
	local f=$WORK/reload.conf
	printf '[route]\nexclude = %s\n' "$OTHER_V4" >"$f"
	rsluice_up -c "$f" || return 1
	direct "$OTHER_V4" other4 || return 1
	via_tunnel "$WEB_V4" web4 1 || return 1
	printf '[route]\nexclude = %s\nkill_switch = yes\n' "$WEB_NET4" >"$f"
	kill -HUP "$SLUICE_PID"
	wait_for $((5 * TF)) grep -qE ' reload: .*: upstream [a-z0-9+]+://' "$SLUICE_LOG" || why "no reload line in the log" || return 1
	direct "$WEB_V4" web4 || return 1
	via_tunnel "$OTHER_V4" other4 1 || return 1
	[ "$(rules_count -4)" = 4 ] || why "after the reload: $(rules_count -4) IPv4 rules, want 4" || return 1
	ip -n "$NS_T" route show table "$TABLE" | grep -q '^unreachable default' ||
		why "the reload did not turn the kill switch on" || return 1
	rsluice_stop || return 1
	route_down || return 1
	tables_clean
}

case_route_down_clean() {
	route_down || return 1
	tables_clean
}

# ---- driver -------------------------------------------------------------------

CASES="tunnel exclude include table kill_switch kill_switch_sigterm stale
reload route_down_clean"

suite_run route "$CASES"
