# shellcheck shell=bash
# lib.sh - shared helpers for sluice's namespace tests, demo and benchmarks.
# Source it from bash; it defines functions and a few variables, and sets an
# EXIT trap that tears everything down (processes by PID, then namespaces).
#
# Topology (one per run; names carry the shell's PID):
#
#  ns $NS_T (tunnel host)                     ns $NS_U (upstream host)
#    sluice + TUN (198.18.0.1/24,               danted, microsocks, srv.py
#                  2001:db8:18::1/64)           lo: 198.18.1.1/32,
#    routes 198.18.1.0/24, 2001:db8:18:1::/64       2001:db8:18:1::1/128
#           dev TUN (added once sluice is ready)
#    veth0 198.19.0.1/24 ◀──────────────────▶ veth0 198.19.0.2/24
#          2001:db8:19::1/64                        2001:db8:19::2/64
#
# Nothing in either namespace routes anywhere else: no default routes, no
# link to the host namespace.
#
# Variables the caller may set before sourcing:
#   SLUICE          binary to test (default ./sluice at the repo root)
#   SLUICE_WRAPPER  command prefix, e.g. "valgrind --error-exitcode=99 ...",
#                   or "env ASAN_OPTIONS=exitcode=99 ..." for a sanitizer
#                   build (make sanitize): any sanitizer report in sluice's
#                   log fails the case, whatever the exit status
#   E2E_LOG_LEVEL   sluice's --log-level (default info)
#   E2E_KEEP=1      keep the work directory (logs) even when all passed
#   E2E_ALLOW_MISSING=1  a peer that is not installed skips its cases
#                   instead of failing them (the default: fail, as in CI)
#
# shellcheck disable=SC2034  # variables here are used by the sourcing scripts

E2E_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$E2E_LIB_DIR/../.." && pwd)

SLUICE=${SLUICE:-./sluice}
# A relative path is taken from the current directory if it names a file
# there, else from the repository's root (so ./sluice works from anywhere).
case $SLUICE in
/*) ;;
*/*)
	if [ -e "$SLUICE" ]; then
		SLUICE=$(cd "$(dirname "$SLUICE")" && pwd)/$(basename "$SLUICE")
	else
		SLUICE=$REPO_ROOT/${SLUICE#./}
	fi
	;;
*) SLUICE=$(command -v "$SLUICE" || echo "$SLUICE") ;;
esac
SLUICE_WRAPPER=${SLUICE_WRAPPER:-}
E2E_LOG_LEVEL=${E2E_LOG_LEVEL:-info}
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=python3; fi
SRV_PY=$E2E_LIB_DIR/srv.py
CLI_PY=$E2E_LIB_DIR/cli.py

# Start-up and stop allowances: a wrapper such as valgrind is much slower.
if [ -n "$SLUICE_WRAPPER" ]; then
	SLUICE_START_TIMEOUT=60 SLUICE_STOP_TIMEOUT=60
else
	SLUICE_START_TIMEOUT=10 SLUICE_STOP_TIMEOUT=2
fi

NS_T=sluice-t-$$
NS_U=sluice-u-$$
TUN_V4=198.18.0.1/24 TUN_V6=2001:db8:18::1/64
DST_V4=198.18.1.1 DST_V6=2001:db8:18:1::1
NET_V4=198.18.1.0/24 NET_V6=2001:db8:18:1::/64
T_V4=198.19.0.1 U_V4=198.19.0.2
T_V6=2001:db8:19::1 U_V6=2001:db8:19::2
# Ports in ns u.
PORT_DANTE=1080 PORT_MICRO=1081 PORT_DANTE_AUTH=1082 PORT_MICRO_AUTH=1083
PORT_SILENT=1090 PORT_NOBODY=1099	# 1099: nothing ever listens there
PORT_RAW=7000 PORT_HTTP=80 PORT_CLOSED=9
AUTH_USER=sluicetest AUTH_PASS=Tunnel-Pass-1

WORK=
declare -a E2E_PIDS=()	# every process we started, by PID
E2E_TOPO=0
E2E_SERVERS_PID=
SETUP_ERR=	# why a suite's setup failed
SLUICE_PID='' SLUICE_LOG='' SLUICE_TUN='' SLUICE_RC='' SLUICE_ERR=''
N_PASS=0 N_FAIL=0 N_SKIP=0
CASE='' CASE_WHY='' LOG_SFX=''	# the current case, why it fails, log suffix
E2E_FAILED_NAMES=

say() { printf '%s\n' "$*"; }
warn() { printf '%s\n' "$*" >&2; }

require_root() {
	if [ "$(id -u)" -ne 0 ]; then
		warn "$(basename "$0"): must run as root (it creates network namespaces and a TUN device)"
		exit 1
	fi
}

# work_dir: a private directory for logs, configs and data of this run.
work_dir() {
	[ -n "$WORK" ] && return 0
	WORK=$(mktemp -d /tmp/sluice-e2e.XXXXXX)
	chmod 700 "$WORK"
	mkdir -p "$WORK/srv"
}

nst() { ip netns exec "$NS_T" "$@"; }
nsu() { ip netns exec "$NS_U" "$@"; }

# pid_alive PID: the process exists and is not a zombie.
pid_alive() {
	local st
	[ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 1
	st=$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# wait_for SECONDS CMD...: run CMD every 0.1 s until it succeeds; 1 on timeout.
wait_for() {
	local limit=$1 end
	shift
	end=$(($(date +%s%N) / 1000000 + ${limit%.*} * 1000))
	while :; do
		"$@" && return 0
		[ "$(($(date +%s%N) / 1000000))" -ge "$end" ] && return 1
		sleep 0.1
	done
}

# now_ms: monotonic-enough wall clock in milliseconds.
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# start_bg NAME NS CMD...: start CMD in namespace NS (or "-" for none) in
# the background with output to $WORK/NAME.log; its PID is in BG_PID.
# Must be called from the main shell (not in $(...)), so that it is our child.
start_bg() {
	local name=$1 ns=$2
	shift 2
	if [ "$ns" = - ]; then
		"$@" >"$WORK/$name.log" 2>&1 </dev/null &
	else
		ip netns exec "$ns" "$@" >"$WORK/$name.log" 2>&1 </dev/null &
	fi
	BG_PID=$!
	E2E_PIDS+=("$BG_PID")
}

# stop_pid PID [TIMEOUT] [SIGNAL]: signal PID (TERM by default), wait for it
# up to TIMEOUT seconds (default 3), then KILL.  Sets STOP_RC to its exit
# status (when it is our child) and STOP_KILLED=1 if KILL was needed.
stop_pid() {
	local pid=$1 limit=${2:-3} sig=${3:-TERM} i
	STOP_RC='' STOP_KILLED=0
	[ -n "$pid" ] || return 0
	if pid_alive "$pid"; then
		kill "-$sig" "$pid" 2>/dev/null
		for ((i = 0; i < limit * 20; i++)); do
			pid_alive "$pid" || break
			sleep 0.05
		done
		if pid_alive "$pid"; then
			STOP_KILLED=1
			kill -KILL "$pid" 2>/dev/null
		fi
	fi
	wait "$pid" 2>/dev/null
	STOP_RC=$?
	local keep=() p
	for p in "${E2E_PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
	E2E_PIDS=("${keep[@]}")
	return 0
}

# ns_kill_all NS: KILL whatever still runs in our own namespace NS (all of it
# was started by this run: children that daemons forked, for instance).
ns_kill_all() {
	local ns=$1 pids
	ip netns list 2>/dev/null | grep -qw "^$ns" || return 0
	pids=$(ip netns pids "$ns" 2>/dev/null)
	[ -n "$pids" ] || return 0
	# shellcheck disable=SC2086
	kill -TERM $pids 2>/dev/null
	sleep 0.3
	pids=$(ip netns pids "$ns" 2>/dev/null)
	# shellcheck disable=SC2086
	[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
	return 0
}

# topo_up: create both namespaces and the veth link between them.
topo_up() {
	work_dir
	ip netns add "$NS_T" || return 1
	E2E_TOPO=1
	ip netns add "$NS_U" || return 1
	ip -n "$NS_T" link set lo up
	ip -n "$NS_U" link set lo up
	# Created inside the namespaces: the pair never appears in the host's.
	ip -n "$NS_T" link add veth0 type veth peer name veth0 netns "$NS_U" || return 1
	nst sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
		net.ipv6.conf.all.forwarding=0 net.ipv4.ip_forward=0 >/dev/null
	nsu sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 >/dev/null
	ip -n "$NS_T" addr add "$T_V4/24" dev veth0
	ip -n "$NS_U" addr add "$U_V4/24" dev veth0
	ip -n "$NS_T" addr add "$T_V6/64" dev veth0 nodad
	ip -n "$NS_U" addr add "$U_V6/64" dev veth0 nodad
	ip -n "$NS_U" addr add "$DST_V4/32" dev lo
	ip -n "$NS_U" addr add "$DST_V6/128" dev lo nodad
	ip -n "$NS_T" link set veth0 up
	ip -n "$NS_U" link set veth0 up
	wait_for 5 veth_up || return 1
}

veth_up() {
	ip -n "$NS_T" link show veth0 | grep -q 'state UP' &&
		ip -n "$NS_U" link show veth0 | grep -q 'state UP'
}

# topo_down: stop every process we started, then delete the namespaces.
topo_down() {
	local p
	for p in "${E2E_PIDS[@]}"; do
		pid_alive "$p" && kill -TERM "$p" 2>/dev/null
	done
	for p in "${E2E_PIDS[@]}"; do
		for ((i = 0; i < 40; i++)); do pid_alive "$p" || break; sleep 0.05; done
		pid_alive "$p" && kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	E2E_PIDS=()
	if [ "$E2E_TOPO" = 1 ]; then
		ns_kill_all "$NS_T"
		ns_kill_all "$NS_U"
		ip netns del "$NS_T" 2>/dev/null
		ip netns del "$NS_U" 2>/dev/null
		E2E_TOPO=0
	fi
	return 0
}

# e2e_cleanup: the EXIT trap.  Keeps the logs if anything failed.
e2e_cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	topo_down
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		rm -f "$WORK"/srv/*.bin "$WORK"/*.bin
		if [ "$N_FAIL" -gt 0 ] || [ "${E2E_KEEP:-0}" = 1 ]; then
			warn "logs kept in $WORK"
		else
			rm -rf "$WORK"
		fi
	fi
	exit "$rc"
}
trap e2e_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# port_listening NS ADDR PORT: something listens on ADDR:PORT in NS.
port_listening() {
	local ns=$1 addr=$2 port=$3
	case $addr in *:*) addr="[$addr]" ;; esac
	ip netns exec "$ns" ss -Hltn "sport = :$port" 2>/dev/null | grep -qF "$addr:$port"
}

# ---- peers in ns u ---------------------------------------------------------

# dante_conf FILE PORT METHOD(none|username) LOGFILE: a danted configuration
# listening on $U_V4:PORT and [$U_V6]:PORT, reaching the test servers.
dante_conf() {
	local file=$1 port=$2 method=$3 logf=$4
	cat >"$file" <<EOF
# generated by sluice tests/e2e/lib.sh
logoutput: $logf
errorlog: $logf
internal: $U_V4 port = $port
internal: $U_V6 port = $port
external: $DST_V4
external: $DST_V6
clientmethod: none
socksmethod: $method
user.privileged: root
user.unprivileged: nobody
timeout.negotiate: 10
timeout.connect: 10
# UDP (udp.sh; both found by trying): by default danted connect()s its
# external UDP socket to the first destination a client sends to, so it
# never receives datagrams from any other address or port (until the
# client sends to a second one); "no" lets replies from anywhere reach the
# client, a full-cone relay.  Without a udpreply rule no reply at all is
# relayed, not even the destination's own.  DANTE_CONNECTDST=yes gives
# danted's default back (bench/udp.sh).
udp.connectdst: ${DANTE_CONNECTDST:-no}
client pass {
	from: 0/0 to: 0/0
	log: error
}
socks pass {
	from: 0/0 to: 0/0
	command: connect udpassociate
	log: error
}
# udpreply: from is the remote that sends, to is the client
socks pass {
	from: 0/0 to: 0/0
	command: udpreply
	log: error
}
EOF
}

# auth_files DIR: a private passwd/shadow pair holding root, nobody and the
# test user; they are bind-mounted over /etc/passwd and /etc/shadow in a
# mount namespace of danted's own, so the host's user database is untouched.
auth_files() {
	local dir=$1 hash
	hash=$(openssl passwd -6 "$AUTH_PASS") || return 1
	cat >"$dir/passwd" <<EOF
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
$AUTH_USER:x:64999:64999:sluice test user:/nonexistent:/usr/sbin/nologin
EOF
	cat >"$dir/shadow" <<EOF
root:*:19000:0:99999:7:::
nobody:*:19000:0:99999:7:::
$AUTH_USER:$hash:19000:0:99999:7:::
EOF
	cat >"$dir/group" <<EOF
root:x:0:
nogroup:x:65534:
$AUTH_USER:x:64999:
EOF
	chmod 644 "$dir/passwd" "$dir/group"
	chmod 600 "$dir/shadow"
}

# start_dante NAME PORT [none|username]: danted in ns u; PID in DANTE_PID.
start_dante() {
	local name=$1 port=$2 method=${3:-none} d=$WORK/$1
	mkdir -p "$d"
	dante_conf "$d/danted.conf" "$port" "$method" "$d/danted.log"
	if [ "$method" = username ]; then
		auth_files "$d" || return 1
		# unshare -m and sh exec in place: BG_PID is danted's own PID.
		# shellcheck disable=SC2016  # $1 is expanded by the inner sh
		start_bg "$name" "$NS_U" unshare -m sh -c '
			mount --make-rprivate / &&
			mount --bind "$1/passwd" /etc/passwd &&
			mount --bind "$1/shadow" /etc/shadow &&
			mount --bind "$1/group" /etc/group &&
			exec /usr/sbin/danted -f "$1/danted.conf" -p "$1/danted.pid"' sh "$d"
	else
		start_bg "$name" "$NS_U" /usr/sbin/danted -f "$d/danted.conf" -p "$d/danted.pid"
	fi
	DANTE_PID=$BG_PID
	if ! wait_for 10 port_listening "$NS_U" "$U_V4" "$port"; then
		warn "danted ($name) did not start:"
		tail -n 20 "$WORK/$name.log" "$d/danted.log" 2>/dev/null | sed 's/^/    /' >&2
		return 1
	fi
}

# start_microsocks NAME PORT [USER PASS]: PID in MICRO_PID.
start_microsocks() {
	local name=$1 port=$2
	if [ $# -ge 4 ]; then
		start_bg "$name" "$NS_U" microsocks -i "$U_V4" -p "$port" -u "$3" -P "$4"
	else
		start_bg "$name" "$NS_U" microsocks -i "$U_V4" -p "$port"
	fi
	MICRO_PID=$BG_PID
	wait_for 10 port_listening "$NS_U" "$U_V4" "$port" || {
		warn "microsocks ($name) did not start"
		return 1
	}
}

# start_servers: srv.py in ns u: raw and http on the destination addresses
# (IPv4 and IPv6), and a silent "SOCKS5 server" on $U_V4:$PORT_SILENT.
start_servers() {
	rm -f "$WORK/srv.ready"
	start_bg srv "$NS_U" "$PY" "$SRV_PY" --dir "$WORK/srv" --ready "$WORK/srv.ready" \
		--lifetime 1800 \
		-l "raw,$DST_V4,$PORT_RAW" -l "raw,$DST_V6,$PORT_RAW" \
		-l "http,$DST_V4,$PORT_HTTP" -l "http,$DST_V6,$PORT_HTTP" \
		-l "silent,$U_V4,$PORT_SILENT"
	E2E_SERVERS_PID=$BG_PID
	wait_for 10 test -s "$WORK/srv.ready" || {
		warn "srv.py did not start:"
		sed 's/^/    /' "$WORK/srv.log" >&2
		return 1
	}
}

# ---- sluice in ns t -------------------------------------------------------

sluice_ready() { grep -qw ready "$SLUICE_LOG" 2>/dev/null; }
# sluice_started: ready, or gone (so that waiting for it can stop).
sluice_started() { sluice_ready || ! pid_alive "$SLUICE_PID"; }

# start_sluice NAME ARGS...: start sluice in ns t with the standard TUN
# addresses plus ARGS; wait for its "ready" line; add the routes into the
# TUN.  Sets SLUICE_PID, SLUICE_LOG, SLUICE_TUN; on failure returns 1 with
# the reason in SLUICE_ERR (and leaves nothing running).
start_sluice() {
	local name=$1 a prev=
	shift
	SLUICE_TUN=sluice0 SLUICE_ERR='' SLUICE_RC=''
	for a in "$@"; do
		[ "$prev" = --tun ] && SLUICE_TUN=$a
		case $a in --tun=*) SLUICE_TUN=${a#--tun=} ;; esac
		prev=$a
	done
	SLUICE_LOG=$WORK/$name.log
	# empty it now: the background job truncates it only once it runs,
	# and a "ready" left by an earlier start of the same name would be
	# taken for this one's (then its vanishing for a failed start)
	: >"$SLUICE_LOG"
	# shellcheck disable=SC2086
	start_bg "$name" "$NS_T" $SLUICE_WRAPPER "$SLUICE" --ipv4 "$TUN_V4" --ipv6 "$TUN_V6" \
		--log-level "$E2E_LOG_LEVEL" ${SLUICE_WORKERS:+--workers "$SLUICE_WORKERS"} "$@"
	SLUICE_PID=$BG_PID
	if ! wait_for "$SLUICE_START_TIMEOUT" sluice_started; then
		SLUICE_ERR="sluice not ready after ${SLUICE_START_TIMEOUT}s"
		stop_pid "$SLUICE_PID" 2 KILL
		SLUICE_PID=
		return 1
	fi
	if ! pid_alive "$SLUICE_PID" || ! sluice_ready; then
		stop_pid "$SLUICE_PID" 1
		SLUICE_ERR="sluice exited during start-up (exit $STOP_RC)"
		sanitizer_report "$SLUICE_LOG" &&
			SLUICE_ERR="$SLUICE_ERR with a sanitizer report"
		SLUICE_PID=
		return 1
	fi
	# Right after the previous sluice closed a device of the same name,
	# the kernel has (rarely) not let go of the name yet and "ip" does not
	# find the new device for a moment: retry briefly before failing.
	if ! wait_for 2 tun_routes_added; then
		SLUICE_ERR="cannot add routes via $SLUICE_TUN: $(tr '\n' ' ' <"$WORK/route.err")"
		SLUICE_ERR="$SLUICE_ERR; links: $(ip -n "$NS_T" -br link show 2>&1 | tr '\n' ' ')"
		stop_sluice
		return 1
	fi
	return 0
}

# tun_routes_added: route the test networks into $SLUICE_TUN (idempotent).
tun_routes_added() {
	ip -n "$NS_T" route replace "$NET_V4" dev "$SLUICE_TUN" 2>"$WORK/route.err" &&
		ip -n "$NS_T" -6 route replace "$NET_V6" dev "$SLUICE_TUN" 2>>"$WORK/route.err"
}

# stop_sluice: SIGTERM, expect exit 0 within the stop allowance and the TUN
# device gone.  Returns 1 with the reason in SLUICE_ERR otherwise.  A no-op
# when sluice is not running.
stop_sluice() {
	local pid=$SLUICE_PID
	[ -n "$pid" ] || return 0
	SLUICE_PID=
	if ! pid_alive "$pid"; then
		stop_pid "$pid"
		SLUICE_RC=$STOP_RC
		SLUICE_ERR="sluice had already exited (exit $SLUICE_RC)"
		sanitizer_report "$SLUICE_LOG" &&
			SLUICE_ERR="$SLUICE_ERR with a sanitizer report"
		return 1
	fi
	stop_pid "$pid" "$SLUICE_STOP_TIMEOUT"
	SLUICE_RC=$STOP_RC
	if [ "$STOP_KILLED" = 1 ]; then
		SLUICE_ERR="sluice still running ${SLUICE_STOP_TIMEOUT}s after SIGTERM (killed)"
		return 1
	fi
	if sanitizer_report "$SLUICE_LOG"; then
		SLUICE_ERR="sanitizer report (exit $SLUICE_RC; see $SLUICE_LOG)"
		return 1
	fi
	if [ "$SLUICE_RC" = 99 ] && [ -n "$SLUICE_WRAPPER" ]; then
		SLUICE_ERR="wrapper reported errors (exit 99; see $SLUICE_LOG)"
		return 1
	fi
	if [ "$SLUICE_RC" != 0 ]; then
		SLUICE_ERR="sluice exited $SLUICE_RC after SIGTERM, want 0"
		return 1
	fi
	if ip -n "$NS_T" link show "$SLUICE_TUN" >/dev/null 2>&1; then
		SLUICE_ERR="TUN device $SLUICE_TUN still present after exit"
		ip -n "$NS_T" link del "$SLUICE_TUN" 2>/dev/null
		return 1
	fi
	return 0
}

# tree_pids PID: PID and its children (sluice's worker processes).
tree_pids() {
	echo "$1"
	cat /proc/"$1"/task/*/children 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9]+$'
}

# vmrss_kib PID: the resident set size in KiB of the process and its
# children (sluice's workers), summed (empty if gone).
vmrss_kib() {
	pid_alive "$1" || return 0
	# shellcheck disable=SC2046
	awk '/^VmRSS:/ { s += $2 } END { if (NR) print s + 0 }' \
		$(tree_pids "$1" | sed 's|.*|/proc/&/status|') 2>/dev/null
}

# pid_gone PID: the opposite of pid_alive, for wait_for.
pid_gone() { ! pid_alive "$1"; }

# fd_count PID: how many fds the process and its children have open.
fd_count() {
	local p n=0
	for p in $(tree_pids "$1"); do
		n=$((n + $(find "/proc/$p/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)))
	done
	echo "$n"
}

# fds_settled PID MAX: PID has at most MAX fds open.
fds_settled() { [ "$(fd_count "$1")" -le "$2" ]; }

# cpu_ticks PID: user + system clock ticks the process and its children
# (alive ones: sluice's workers) have used.
cpu_ticks() {
	pid_alive "$1" || return 0
	# shellcheck disable=SC2046
	awk '{ s += $14 + $15 } END { if (NR) print s + 0 }' \
		$(tree_pids "$1" | sed 's|.*|/proc/&/stat|') 2>/dev/null
}

# tls_stats: after stop_sluice (tls.sh, bench/tls.sh), the "N full tls handshakes, M resumed" lines
# (one per worker), summed.
TLS_FULL='' TLS_RESUMED=''
tls_stats() {
	local l
	# one line per upstream object at its end: one per worker process
	l=$(grep -E '[0-9]+ full tls handshakes, [0-9]+ resumed' "$SLUICE_LOG")
	[ -n "$l" ] || return 1
	TLS_FULL=$(sed -nE 's/.* ([0-9]+) full tls handshakes.*/\1/p' <<<"$l" | awk '{ s += $1 } END { print s }')
	TLS_RESUMED=$(sed -nE 's/.*, ([0-9]+) resumed.*/\1/p' <<<"$l" | awk '{ s += $1 } END { print s }')
	[ -n "$TLS_FULL" ] && [ -n "$TLS_RESUMED" ]
}

# sluice_stats: ask sluice for a stats line (SIGUSR1) and print it; bounded
# by 5 s times the suite's time factor TF.
sluice_stats() {
	local n0
	n0=$(grep -c 'stats:' "$SLUICE_LOG" 2>/dev/null)
	kill -USR1 "$SLUICE_PID" 2>/dev/null || return 1
	wait_for $((5 * TF)) stats_after "$n0" || return 1
	grep 'stats:' "$SLUICE_LOG" | tail -n 1
}
stats_after() { [ "$(grep -c 'stats:' "$SLUICE_LOG" 2>/dev/null)" -gt "$1" ]; }

# stat_field LINE WORD: the number just before WORD in a stats line.
stat_field() { printf '%s' "$1" | sed -nE "s/.*[ (]([0-9]+) $2.*/\\1/p"; }

# ---- clients in ns t ------------------------------------------------------

# tcli SECONDS SUBCOMMAND ARGS...: run cli.py in ns t, bounded by SECONDS.
tcli() {
	local t=$1
	shift
	nst timeout -k 2 "$t" "$PY" "$CLI_PY" "$@"
}

# tcurl ARGS...: curl in ns t; never uses a proxy from the environment.
tcurl() {
	nst env -u http_proxy -u https_proxy -u all_proxy -u HTTP_PROXY \
		-u HTTPS_PROXY -u ALL_PROXY -u no_proxy -u NO_PROXY curl "$@"
}

# ---- results ---------------------------------------------------------------

pass() {
	N_PASS=$((N_PASS + 1))
	say "ok $1"
}
fail() {
	local name=$1
	shift
	N_FAIL=$((N_FAIL + 1))
	E2E_FAILED_NAMES="$E2E_FAILED_NAMES $name"
	say "FAIL $name: $*"
}
skip() {
	local name=$1
	shift
	N_SKIP=$((N_SKIP + 1))
	say "skip $name: $*"
}
summary() {
	say "$1$N_PASS passed, $N_FAIL failed, $N_SKIP skipped"
}

# sanitizer_report FILE: FILE holds a report of AddressSanitizer,
# LeakSanitizer or UndefinedBehaviorSanitizer.
SANITIZER_RE='^==[0-9]+==ERROR: (AddressSanitizer|LeakSanitizer)|: runtime error: |^SUMMARY: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)'
sanitizer_report() {
	[ -n "$1" ] && [ -s "$1" ] && grep -qE "$SANITIZER_RE" "$1"
}

# show_wrapper_errors FILE: the first error report of valgrind or a
# sanitizer in FILE, and its summary line.
show_wrapper_errors() {
	[ -s "$1" ] || return 0
	say "    --- first error reported in $1"
	if sanitizer_report "$1"; then
		# from the first report to its SUMMARY line, at most 30 lines
		awk -v re="$SANITIZER_RE" '$0 ~ re { on = 1 }
			on { print; if (++n >= 30 || /^SUMMARY: /) exit }' "$1" |
			sed 's/^/    | /'
		return 0
	fi
	awk '/^==[0-9]+== (Invalid|Syscall param|Conditional jump|Use of uninit|Mismatched|Source and destination|Argument|.* definitely lost)/ { on = 1 }
		on && /^==[0-9]+== *$/ { exit }
		on { print; if (++n >= 25) exit }' "$1" | sed 's/^/    | /'
	grep -E '== ERROR SUMMARY' "$1" | tail -n 1 | sed 's/^/    | /'
}

# show_log FILE [LINES]: the end of a log, indented, for a failure report.
show_log() {
	[ -s "$1" ] || return 0
	say "    --- last ${2:-15} lines of $1"
	tail -n "${2:-15}" "$1" | sed 's/^/    | /'
}

# ---- the case driver shared by run.sh and tls.sh ---------------------------

selected() {
	local s
	[ ${#SELECT[@]} -eq 0 ] && return 0
	for s in "${SELECT[@]}"; do
		case $1 in *"$s"*) return 0 ;; esac
	done
	return 1
}

# need HAVE_X...: return 1 (fail) if a peer is not installed or did not
# start.  A missing peer is a failure (CI must have them all: make deps);
# E2E_ALLOW_MISSING=1 makes it a skip instead, for a developer's machine.
need() {
	local v
	for v in "$@"; do
		case ${!v} in
		1) ;;
		0)
			CASE_WHY="peer not installed (${v#HAVE_}; make deps)"
			[ "${E2E_ALLOW_MISSING:-0}" = 1 ] && return 2
			return 1
			;;
		*) CASE_WHY="peer ${v#HAVE_} did not start (see $WORK)"; return 1 ;;
		esac
	done
}

# still_running: sluice has not died during the case.
still_running() {
	pid_alive "$SLUICE_PID" || why "sluice died during the test"
}

# run_case NAME: run case_NAME; sluice is always stopped afterwards and must
# exit cleanly (exit 0, TUN gone, no wrapper errors) for the case to pass.
run_case() {
	local name=$1 rc
	selected "$name" || return 0
	CASE=$name CASE_WHY='' SLUICE_RC=''
	SLUICE_LOG=''
	"case_$name"
	rc=$?
	if [ -n "$SLUICE_PID" ] && ! stop_sluice && [ $rc -eq 0 ]; then
		rc=1 CASE_WHY="at stop: $SLUICE_ERR"
	fi
	# a case that stopped sluice itself: its last log must be clean too
	if [ $rc -eq 0 ] && sanitizer_report "$SLUICE_LOG"; then
		rc=1 CASE_WHY="sanitizer report in $SLUICE_LOG"
	fi
	if [ $rc -eq 1 ] && [ -n "$SLUICE_RC" ] && [ "$SLUICE_RC" != 0 ]; then
		CASE_WHY="$CASE_WHY (sluice exit $SLUICE_RC)"
	fi
	case $rc in
	0) pass "$name" ;;
	2) skip "$name" "$CASE_WHY" ;;
	*)
		fail "$name" "${CASE_WHY:-failed}"
		if { [ "$SLUICE_RC" = 99 ] && [ -n "$SLUICE_WRAPPER" ]; } ||
			sanitizer_report "$SLUICE_LOG"; then
			show_wrapper_errors "$SLUICE_LOG"
		elif [ -n "$SLUICE_LOG" ]; then
			show_log "$SLUICE_LOG" 20
		fi
		;;
	esac
	return 0
}

# why TEXT...: the reason the current case fails; returns 1.
why() { CASE_WHY="$*"; return 1; }

# sluice_up ARGS...: start sluice for the current case, or fail the case.
# Its log is sluice-CASE.log; a case that starts sluice more than once sets
# LOG_SFX to keep every log.
sluice_up() {
	start_sluice "sluice-$CASE$LOG_SFX" "$@" || why "start: $SLUICE_ERR"
}

# sluice_up_nofile SOFT HARD ARGS...: sluice_up under a NOFILE limit of
# SOFT:HARD (prlimit execs sluice, so SLUICE_PID is still sluice's PID).
sluice_up_nofile() {
	local soft=$1 hard=$2 w0=$SLUICE_WRAPPER rc
	shift 2
	SLUICE_WRAPPER="prlimit --nofile=$soft:$hard $w0"
	start_sluice "sluice-$CASE" "$@"
	rc=$?
	SLUICE_WRAPPER=$w0
	[ $rc -eq 0 ] || why "start: $SLUICE_ERR"
}

# fetch_sha256 CURL CONNECT_S MAX_S URL: GET URL with the curl wrapper CURL
# (tcurl, or a suite's own) within those bounds; the body's sha256 and
# length in GOT_SHA and GOT_LEN.  1 on a curl error, its exit status in
# CURL_RC and its message in $WORK/curl.err.
fetch_sha256() {
	local curl=$1 ct=$2 mt=$3 url=$4
	GOT_SHA='' GOT_LEN=''
	rm -f "$WORK/dl.bin"
	"$curl" -sS -g --connect-timeout "$ct" --max-time "$mt" \
		-o "$WORK/dl.bin" "$url" 2>"$WORK/curl.err"
	CURL_RC=$?
	[ $CURL_RC -eq 0 ] || return 1
	GOT_SHA=$(sha256sum <"$WORK/dl.bin" | cut -d' ' -f1)
	GOT_LEN=$(stat -c %s "$WORK/dl.bin")
	rm -f "$WORK/dl.bin"
}

# http_download URL NAME SIZE SHA: GET URL/file/NAME through the tunnel; its
# sha256 must be SHA.
http_download() {
	local url=$1 name=$2 size=$3 sha=$4
	fetch_sha256 tcurl $((15 * TF)) $((120 * TF)) "$url/file/$name" ||
		why "download: curl exit $CURL_RC: $(head -c 300 "$WORK/curl.err")" || return 1
	[ "$GOT_SHA" = "$sha" ] || why "download: sha256 differs ($GOT_LEN of $size bytes)"
}

# http_upload URL FILE SIZE SHA ID: PUT FILE to URL/up/ID through the tunnel;
# the digest the server records must equal ours, and so must its reply.
http_upload() {
	local url=$1 file=$2 size=$3 sha=$4 id=$5 rc out rec
	out=$(tcurl -sS -g --connect-timeout $((15 * TF)) --max-time $((120 * TF)) \
		-T "$file" "$url/up/$id" 2>"$WORK/curl.err")
	rc=$?
	[ $rc -eq 0 ] || why "upload: curl exit $rc: $(head -c 300 "$WORK/curl.err")" || return 1
	rec=$(cat "$WORK/srv/$id" 2>/dev/null)
	[ "$rec" = "$size $sha" ] ||
		why "upload: server received '${rec:-nothing}', sent '$size $sha'" || return 1
	[ "$out" = "$rec" ] || why "upload: reply '$out' differs from server record '$rec'"
}

# ---- suite scaffolding (run.sh, tls.sh, close.sh, fault.sh, ...) ------------
#
# A suite sources lib.sh, calls suite_init "$@", defines its cases
# (case_NAME) and a setup function that returns 1 with the reason in
# SETUP_ERR, and ends with suite_run NAME CASES.

# suite_init ARGS...: root required, the suite's clock started, ARGS (parts
# of case names) kept in SELECT for run_case.
suite_init() {
	require_root
	T0=$(now_ms)
	SELECT=("$@")
}

# suite_copy_sluice: copy $SLUICE into the work directory and test the copy,
# so that every case runs the same binary even if it is rebuilt meanwhile.
suite_copy_sluice() {
	if [ ! -x "$SLUICE" ]; then
		SETUP_ERR="no sluice binary at $SLUICE (run make)"
		return 1
	fi
	work_dir
	cp "$SLUICE" "$WORK/sluice" || { SETUP_ERR="cannot copy $SLUICE"; return 1; }
	SLUICE=$WORK/sluice
}

# suite_topo_up: the namespaces of lib.sh (topo_up), or SETUP_ERR.
suite_topo_up() {
	topo_up || { SETUP_ERR="cannot build the namespace topology"; return 1; }
}

# suite_certs SERVER_NAME: the test CA and certificates (certs.sh) for
# SERVER_NAME in CERTS=$WORK/certs.
suite_certs() {
	CERTS=$WORK/certs
	"$E2E_LIB_DIR/certs.sh" "$CERTS" "$1" 2>"$WORK/certs.err" ||
		{ SETUP_ERR="certs.sh failed: $(head -c 300 "$WORK/certs.err")"; return 1; }
}

# suite_start_dante: danted without authentication on $PORT_DANTE if it is
# installed.  HAVE_DANTE (as every HAVE_*): 1 running, 0 not installed, 2
# failed to start.
suite_start_dante() {
	[ -x /usr/sbin/danted ] || return 0
	HAVE_DANTE=2
	start_dante dante "$PORT_DANTE" none && HAVE_DANTE=1
}

# suite_start_load PORT: load.py's server in ns u on $DST_V4:PORT; HAVE_LOAD.
suite_start_load() {
	HAVE_LOAD=2
	start_bg load "$NS_U" "$PY" "$E2E_LIB_DIR/load.py" server --listen "$DST_V4,$1" \
		--ready "$WORK/load.ready" --lifetime 1800
	wait_for 10 test -s "$WORK/load.ready" && HAVE_LOAD=1
}

# suite_big_file SIZE: SIZE random bytes in BIG ($WORK/srv/big.bin, which
# srv.py serves as /file/big.bin), their sha256 in BIG_SHA.
suite_big_file() {
	BIG=$WORK/srv/big.bin
	head -c "$1" /dev/urandom >"$BIG" || { SETUP_ERR="cannot write $BIG"; return 1; }
	BIG_SHA=$(sha256sum <"$BIG" | cut -d' ' -f1)
}

# suite_servers_ok: srv.py started (start_servers && HAVE_SRV=1), or SETUP_ERR.
suite_servers_ok() {
	[ "$HAVE_SRV" = 1 ] || { SETUP_ERR="test servers (srv.py) did not start"; return 1; }
}

# suite_run NAME CASES...: the suite's setup, then run_case for each case
# (CASES are split on white space), its duration and the summary line
# "NAME: N passed, N failed, N skipped".  Returns 1 if anything failed.
suite_run() {
	local name=$1 c
	shift
	if ! setup; then
		fail setup "$SETUP_ERR"
	else
		# shellcheck disable=SC2048  # split on white space, no globs
		for c in $*; do
			run_case "$c"
		done
	fi
	say "# $name took $((($(now_ms) - T0) / 1000)) s"
	summary "$name: "
	[ "$N_FAIL" -eq 0 ]
}

# ---- benchmark helpers (tests/bench) -------------------------------------

# gbps HOST ARGS...: one bounded iperf3 run from ns t; prints Gbit/s received.
gbps() {
	local host=$1 out
	shift
	out=$(nst timeout -k 2 $((IPERF_TIME + 20)) iperf3 -c "$host" -p "$IPERF_PORT" \
		-t "$IPERF_TIME" -J "$@" 2>/dev/null)
	printf '%s' "$out" | "$PY" -c '
import json, sys
try:
    d = json.load(sys.stdin)
    print("%.2f" % (d["end"]["sum_received"]["bits_per_second"] / 1e9))
except Exception:
    print("n/a")'
}

# ratio A B: A as a percentage of B, "n/a" when either is missing.
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a";
		else printf "%.0f%%\n", 100 * a / b }'
}
