#!/usr/bin/env bash
# peers.sh - `make bench-peers`: sluice beside hev-socks5-tunnel and the
# plain veth, iperf3 through dante (no authentication), in namespaces of its
# own (the topology of tests/e2e/lib.sh).  The side-by-side matrix of issue
# 11, reproducible by anyone.  A benchmark, not a test: it asserts nothing.
# Needs root.
#
#   tests/bench/peers.sh                  the full matrix (about 10 minutes)
#   PEERS_QUICK=1 tests/bench/peers.sh    1 run of 3 s per cell, MTU 1500
#
# Columns (one "config" each):
#   veth          iperf3 -c 198.19.0.2 in ns t -> iperf3 -s in ns u: no tunnel
#   sluice        iperf3 -c 198.18.1.1 -> TUN -> sluice (default offloads)
#                 -> dante -> iperf3 -s on 198.18.1.1 (lo of ns u)
#                 with [process] workers = auto (one per CPU)
#   sluice-1w     the same with one process (--workers 1)
#   sluice-nooff  the same with sluice --tun-offload no (workers auto)
#   hev           the same with hev-socks5-tunnel in place of sluice
# Rows: the tunnel's MTU (sluice --mtu, hev's tunnel mtu) times upload and
# download (-R) times 1 and 4 streams (-P 4).  As in the runs of issue 11
# (/work/shared/tools/peer-bench), only the TUN's MTU changes: the veth
# stays at 1500 in every group, so its path does not depend on the group
# and is measured in the first group only.
#
# Method: for each MTU group, PEERS_RUNS rounds; each round runs every test
# once for every config, so the runs of one cell are spread over the whole
# group and slow drift (other load, thermal) hits every column alike.  Each
# tunnel run starts a fresh tunnel process and stops it afterwards: no state
# carries over between runs, and its CPU counters start from nothing.  Per
# run: Gbit/s received (iperf3's sum_received), the tunnel process's CPU
# time (utime + stime of all its threads, /proc/PID/stat, read before and
# after iperf3) per GB received, and the TUN device's tx_dropped delta
# (packets the kernel dropped because the tunnel's queue was full).  Cells
# are medians (min-max when there is more than one run).
#
# Environment:
#   PEERS_RUNS (3)        runs per cell
#   PEERS_TIME (5)        seconds per iperf3 run (-t)
#   PEERS_MTUS ("1500 8500")  the MTU groups
#   PEERS_CONFIGS ("veth sluice sluice-1w sluice-nooff hev")  the columns
#   PEERS_QUICK=1         defaults of 1 run, 3 s, MTU 1500 (each can still
#                         be set)
#   PEERS_TSV             copy the raw per-run results there
#   HEV                   hev-socks5-tunnel binary (default
#                         ${TMPDIR:-/tmp}/peer-bench/hev/bin/hev-socks5-tunnel);
#                         when it is missing, it is built there from bare git
#                         mirrors in HEV_MIRRORS (default ../.mirror beside
#                         the checkout, owner+name/repo, as the search tool's
#                         fetch leaves them) at HEV_COMMIT (1d334516, v2.15.0),
#                         never inside this repository; if that fails too, a
#                         line says so and hev's cells stay empty
#   TUNLIMIT              the raw TUN ceiling script (default
#                         /work/shared/tools/tunlimit.sh; skipped if absent)
#   SLUICE (see lib.sh; copied into the run's directory first), E2E_KEEP=1
#   keeps the logs.
set -u
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/../e2e/lib.sh"
require_root

if [ "${PEERS_QUICK:-0}" = 1 ]; then
	PEERS_RUNS=${PEERS_RUNS:-1} PEERS_TIME=${PEERS_TIME:-3} PEERS_MTUS=${PEERS_MTUS:-1500}
fi
PEERS_RUNS=${PEERS_RUNS:-3}
PEERS_TIME=${PEERS_TIME:-5}
PEERS_MTUS=${PEERS_MTUS:-1500 8500}
PEERS_CONFIGS=${PEERS_CONFIGS:-veth sluice sluice-1w sluice-nooff hev}
PEERS_TSV=${PEERS_TSV:-}
PA=${TMPDIR:-/tmp}/peer-bench
HEV=${HEV:-$PA/hev/bin/hev-socks5-tunnel}
HEV_MIRRORS=${HEV_MIRRORS:-$REPO_ROOT/../.mirror}
HEV_COMMIT=${HEV_COMMIT:-1d334516}
TUNLIMIT=${TUNLIMIT:-/work/shared/tools/tunlimit.sh}
IPERF_PORT=5201 HEV_TUN=hev0
HZ=$(getconf CLK_TCK)

# ---- arguments -----------------------------------------------------------------

# in_range VALUE LO HI: VALUE is an integer within [LO, HI].
in_range() {
	case $1 in '' | *[!0-9]*) return 1 ;; esac
	[ "$1" -ge "$2" ] && [ "$1" -le "$3" ]
}

in_range "$PEERS_RUNS" 1 20 || { warn "PEERS_RUNS must be 1..20"; exit 1; }
in_range "$PEERS_TIME" 1 60 || { warn "PEERS_TIME must be 1..60 seconds"; exit 1; }
for m in $PEERS_MTUS; do
	in_range "$m" 576 65535 || { warn "PEERS_MTUS: bad MTU '$m' (576..65535)"; exit 1; }
done
for c in $PEERS_CONFIGS; do
	case $c in veth | sluice | sluice-1w | sluice-nooff | hev) ;;
	*) warn "PEERS_CONFIGS: unknown config '$c' (veth sluice sluice-1w sluice-nooff hev)"; exit 1 ;;
	esac
done
[ -x "$SLUICE" ] || { warn "no sluice binary at $SLUICE (run make first)"; exit 1; }
[ -x /usr/sbin/danted ] || { warn "dante-server is not installed (make deps)"; exit 1; }
command -v iperf3 >/dev/null || { warn "iperf3 is not installed (make deps)"; exit 1; }

work_dir
cp "$SLUICE" "$WORK/sluice" || { warn "cannot copy $SLUICE"; exit 1; }
SLUICE=$WORK/sluice
RES=$WORK/results.tsv

# ---- hev-socks5-tunnel -----------------------------------------------------------

# hev_mirror URL: the bare mirror that stands for a GitHub URL.
hev_mirror() {
	local r=${1%.git}
	r=${r#https://github.com/}
	printf '%s/%s/repo\n' "$HEV_MIRRORS" "${r/\//+}"
}

# build_hev: hev-socks5-tunnel at HEV_COMMIT from the mirrors into $PA/hev,
# every submodule at the commit its parent pins (found through the parent's
# .gitmodules).  1 with the reason in HEV_WHY.
build_hev() {
	local top src=$PA/hev.src.$$ gm type sha path name url mirror
	top=$(hev_mirror https://github.com/heiher/hev-socks5-tunnel)
	[ -d "$top" ] || { HEV_WHY="no mirror at $top"; return 1; }
	if ! command -v make >/dev/null || ! command -v "${CC:-cc}" >/dev/null; then
		HEV_WHY="no make or C compiler"
		return 1
	fi
	rm -rf "$src"
	if ! mkdir -p "$src"; then HEV_WHY="cannot create $src"; return 1; fi
	git --git-dir="$top" archive "$HEV_COMMIT" | tar -x -C "$src" ||
		{ HEV_WHY="cannot unpack $HEV_COMMIT"; rm -rf "$src"; return 1; }
	gm=$src/.gitmodules
	while read -r _ type sha path; do
		[ "$type" = commit ] || continue
		name=$(git config -f "$gm" --get-regexp '^submodule\..*\.path$' |
			awk -v p="$path" '$2 == p { sub(/^submodule\./, "", $1); sub(/\.path$/, "", $1); print $1; exit }')
		url=$(git config -f "$gm" --get "submodule.$name.url")
		mirror=$(hev_mirror "$url")
		mkdir -p "$src/$path"
		git --git-dir="$mirror" archive "$sha" 2>/dev/null | tar -x -C "$src/$path" ||
			{ HEV_WHY="submodule $path: $sha not in ${mirror}"; rm -rf "$src"; return 1; }
	done < <(git --git-dir="$top" ls-tree -r "$HEV_COMMIT")
	if ! timeout 900 make -C "$src" -j"$(nproc)" >"$PA/build.log" 2>&1; then
		HEV_WHY="make failed (see $PA/build.log)"
		rm -rf "$src"
		return 1
	fi
	rm -rf "$PA/hev"
	if ! mv "$src" "$PA/hev"; then HEV_WHY="cannot move the build to $PA/hev"; return 1; fi
	HEV=$PA/hev/bin/hev-socks5-tunnel
}

HAVE_HEV=0 HEV_WHY=''
case " $PEERS_CONFIGS " in
*" hev "*)
	if [ -x "$HEV" ]; then
		HAVE_HEV=1
	elif [ "$HEV" = "$PA/hev/bin/hev-socks5-tunnel" ]; then
		say "hev: no binary at $HEV; building $HEV_COMMIT from $HEV_MIRRORS ..."
		build_hev && [ -x "$HEV" ] && HAVE_HEV=1
	else
		HEV_WHY="no executable at HEV=$HEV"
	fi
	;;
esac

# hev_up: hev's TUN device exists and is up.
# shellcheck disable=SC2317  # called through wait_for
hev_up() { ip -n "$NS_T" link show "$HEV_TUN" 2>/dev/null | grep -q ',UP'; }

# start_hev NAME MTU: hev-socks5-tunnel on $HEV_TUN with dante as its
# upstream, routes into it; its PID in TUN_PID.  1 if it does not come up.
start_hev() {
	cat >"$WORK/hev-$2.yml" <<EOF
# generated by sluice tests/bench/peers.sh
tunnel:
  name: $HEV_TUN
  mtu: $2
  multi-queue: false
  ipv4: ${TUN_V4%/*}
socks5:
  address: $U_V4
  port: $PORT_DANTE
  udp: 'tcp'
misc:
  log-file: stderr
  log-level: warn
  limit-nofile: 65535
EOF
	start_bg "$1" "$NS_T" "$HEV" "$WORK/hev-$2.yml"
	TUN_PID=$BG_PID TUN_DEV=$HEV_TUN
	wait_for 10 hev_up && pid_alive "$TUN_PID" &&
		ip -n "$NS_T" route replace "$NET_V4" dev "$HEV_TUN"
}

stop_hev() {
	stop_pid "$TUN_PID" 3
	[ "$STOP_KILLED" = 1 ] && TUN_NOTE="${TUN_NOTE}hev killed at stop;"
	if ip -n "$NS_T" link show "$HEV_TUN" >/dev/null 2>&1; then
		ip -n "$NS_T" link del "$HEV_TUN" 2>/dev/null
	fi
}

# ---- measurement helpers -----------------------------------------------------------

# proc_ticks PID: utime + stime of PID and its children (sluice's worker
# processes), all threads, in clock ticks.
proc_ticks() {
	# shellcheck disable=SC2046
	awk '{ s = $0; sub(/^.*\) /, "", s); split(s, f, " "); t += f[12] + f[13] }
		END { if (NR) print t }' $(tree_pids "$1" | sed 's|.*|/proc/&/stat|') 2>/dev/null
}

# tun_dropped DEV: the TUN device's tx_dropped counter in ns t.
tun_dropped() {
	nst cat "/sys/class/net/$1/statistics/tx_dropped" 2>/dev/null || echo 0
}

# iperf_result FILE: "Gbps bytes retransmits" from iperf3's JSON, or
# "n/a 0 -" with the error in IPERF_ERR.
iperf_result() {
	"$PY" - "$1" <<'EOF'
import json, sys
try:
    with open(sys.argv[1]) as f:
        d = json.load(f)
    r, s = d["end"]["sum_received"], d["end"]["sum_sent"]
    print("%.3f %d %s" % (r["bits_per_second"] / 1e9, r["bytes"], s.get("retransmits", "-")))
except Exception:
    print("n/a 0 -")
EOF
}

IPERF_TUN_PID='' IPERF_VETH_PID=''

# start_iperf_servers: iperf3 -s on the destination (through a tunnel) and on
# ns u's veth address (no tunnel); 1 if either does not listen.
start_iperf_servers() {
	if [ -z "$IPERF_TUN_PID" ]; then
		start_bg iperf-tun "$NS_U" iperf3 -s -B "$DST_V4" -p "$IPERF_PORT"
		IPERF_TUN_PID=$BG_PID
	fi
	if [ -z "$IPERF_VETH_PID" ]; then
		start_bg iperf-veth "$NS_U" iperf3 -s -B "$U_V4" -p "$IPERF_PORT"
		IPERF_VETH_PID=$BG_PID
	fi
	wait_for 10 port_listening "$NS_U" "$DST_V4" "$IPERF_PORT" &&
		wait_for 10 port_listening "$NS_U" "$U_V4" "$IPERF_PORT"
}

# restart_iperf_servers: after a failed run a server may still sit in the
# test that broke; start both afresh.
restart_iperf_servers() {
	stop_pid "$IPERF_TUN_PID" 2
	stop_pid "$IPERF_VETH_PID" 2
	IPERF_TUN_PID='' IPERF_VETH_PID=''
	start_iperf_servers || say "  note: iperf3 -s did not come back"
}

# ---- one run -----------------------------------------------------------------------

# run_one MTU TEST ARGS CONFIG RUN: one iperf3 run of CONFIG; a line of
# results.tsv and a progress line.
run_one() {
	local mtu=$1 test=$2 args=$3 cfg=$4 run=$5 id host c0='' c1='' x0=0 x1=0
	local gb bytes retr cpu=- drops=- irc
	id=$mtu-$test-$cfg-$run
	TUN_PID='' TUN_DEV='' TUN_NOTE=''
	host=$DST_V4
	case $cfg in
	veth) host=$U_V4 ;;
	sluice | sluice-1w | sluice-nooff)
		local extra=()
		[ "$cfg" = sluice-nooff ] && extra=(--tun-offload no)
		[ "$cfg" = sluice-1w ] && extra=(--workers 1)
		if ! start_sluice "$id" --upstream "socks5://$U_V4:$PORT_DANTE" --mtu "$mtu" "${extra[@]}"; then
			say "  $id: sluice did not start: $SLUICE_ERR"
			printf '%s\t%s\t%s\t%s\tn/a\t0\t-\t-\t-\tstart failed\n' \
				"$mtu" "$test" "$cfg" "$run" >>"$RES"
			return
		fi
		TUN_PID=$SLUICE_PID TUN_DEV=$SLUICE_TUN
		;;
	hev)
		if ! start_hev "$id" "$mtu"; then
			say "  $id: hev did not start: $(tail -n 3 "$WORK/$id.log" | tr '\n' ' ')"
			stop_hev
			printf '%s\t%s\t%s\t%s\tn/a\t0\t-\t-\t-\tstart failed\n' \
				"$mtu" "$test" "$cfg" "$run" >>"$RES"
			return
		fi
		;;
	esac
	if [ -n "$TUN_PID" ]; then
		c0=$(proc_ticks "$TUN_PID") x0=$(tun_dropped "$TUN_DEV")
	fi
	# shellcheck disable=SC2086  # ARGS is split on purpose
	nst timeout -k 2 $((PEERS_TIME + 20)) iperf3 -c "$host" -p "$IPERF_PORT" \
		-t "$PEERS_TIME" -J $args >"$WORK/$id.json" 2>"$WORK/$id.err"
	irc=$?
	if [ -n "$TUN_PID" ]; then
		c1=$(proc_ticks "$TUN_PID") x1=$(tun_dropped "$TUN_DEV")
		pid_alive "$TUN_PID" || TUN_NOTE="${TUN_NOTE}tunnel died;"
		[ -n "$c0" ] && [ -n "$c1" ] && cpu=$((c1 - c0))
		drops=$((${x1:-0} - ${x0:-0}))
		if [ "$cfg" = hev ]; then
			stop_hev
		else
			stop_sluice || TUN_NOTE="${TUN_NOTE}${SLUICE_ERR};"
		fi
	fi
	read -r gb bytes retr < <(iperf_result "$WORK/$id.json")
	if [ "$irc" -ne 0 ] || [ "$gb" = n/a ]; then
		TUN_NOTE="${TUN_NOTE}iperf3 exit $irc;"
		restart_iperf_servers
	fi
	# mtu test config run gbps bytes cpu_ticks drops retransmits note
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mtu" "$test" "$cfg" "$run" \
		"$gb" "$bytes" "$cpu" "$drops" "$retr" "${TUN_NOTE:--}" >>"$RES"
	local cpu_s=-
	[ "$cpu" = - ] || cpu_s=$(awk -v t="$cpu" -v hz="$HZ" 'BEGIN { printf "%.2f", t / hz }')
	printf '  %-5s %-6s %-13s run %s: %7s Gbps  cpu %6s s  drops %6s  retr %6s  %s\n' \
		"$mtu" "$test" "$cfg" "$run" "$gb" "$cpu_s" "$drops" "$retr" "$TUN_NOTE"
}

# ---- the run ---------------------------------------------------------------------------

T_START=$(now_ms)
say "== machine: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1);" \
	"$(nproc) CPUs; kernel $(uname -r); load average $(cut -d' ' -f1-3 /proc/loadavg)"
say "   $("$SLUICE" -V 2>/dev/null | head -n1) ($(git -C "$REPO_ROOT" log -1 --format=%h 2>/dev/null || echo '?'));" \
	"$(/usr/sbin/danted -v 2>&1 | head -n1 | cut -d. -f1-3); $(iperf3 --version 2>/dev/null | head -n1)"
if [ "$HAVE_HEV" = 1 ]; then
	say "   hev-socks5-tunnel: $HEV ($("$HEV" 2>&1 | sed -n 's/^Version: //p' | head -n1))"
else
	case " $PEERS_CONFIGS " in *" hev "*)
		say "   hev-socks5-tunnel: not available, its cells stay empty: ${HEV_WHY:-unknown}"
		say "     (fetch the mirrors as /work/shared/tools/peer-bench/README.md says, or set HEV)"
		;;
	esac
fi
if [ -x "$TUNLIMIT" ] || [ -f "$TUNLIMIT" ]; then
	tl_secs=5
	[ "${PEERS_QUICK:-0}" = 1 ] && tl_secs=2
	say "== raw TUN ceiling: $TUNLIMIT 1500 $tl_secs"
	timeout -k 2 90 sh "$TUNLIMIT" 1500 "$tl_secs" 2>&1 | sed 's/^/   /'
else
	say "== raw TUN ceiling: skipped ($TUNLIMIT not found)"
fi

topo_up || { warn "cannot create the namespaces"; exit 1; }
start_dante dante "$PORT_DANTE" none || exit 1
start_iperf_servers || { warn "iperf3 -s did not start"; exit 1; }

TESTS=("up1|" "up4|-P 4" "down1|-R" "down4|-R -P 4")
n_cfg=0
for c in $PEERS_CONFIGS; do
	[ "$c" = hev ] && [ "$HAVE_HEV" = 0 ] && continue
	n_cfg=$((n_cfg + 1))
done
n_grp=$(echo "$PEERS_MTUS" | wc -w)
n_runs=$((n_grp * n_cfg))
# the veth is measured in the first group only
case " $PEERS_CONFIGS " in *" veth "*) n_runs=$((n_runs - n_grp + 1)) ;; esac
n_runs=$((n_runs * ${#TESTS[@]} * PEERS_RUNS))
say "== $n_runs runs of ${PEERS_TIME}s (about $((n_runs * (PEERS_TIME + 1) / 60 + 1)) min);" \
	"MTU groups: $PEERS_MTUS; $PEERS_RUNS run(s) per cell, interleaved; logs in $WORK"

printf 'mtu\ttest\tconfig\trun\tgbps\tbytes\tcpu_ticks\tdrops\tretrans\tnote\n' >"$RES"
first=1
for mtu in $PEERS_MTUS; do
	for ((run = 1; run <= PEERS_RUNS; run++)); do
		for t in "${TESTS[@]}"; do
			for cfg in $PEERS_CONFIGS; do
				[ "$cfg" = hev ] && [ "$HAVE_HEV" = 0 ] && continue
				[ "$cfg" = veth ] && [ "$first" = 0 ] && continue
				run_one "$mtu" "${t%%|*}" "${t#*|}" "$cfg" "$run"
			done
		done
	done
	first=0
done

[ -n "$PEERS_TSV" ] && cp "$RES" "$PEERS_TSV"

say
"$PY" - "$RES" "$HZ" "$PEERS_RUNS" "$PEERS_TIME" "$PEERS_MTUS" <<'EOF'
import csv, statistics, sys

res, hz, runs, secs, mtus = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5].split()
rows = list(csv.DictReader(open(res), delimiter="\t"))
tests = [("up1", "upload 1"), ("up4", "upload -P4"), ("down1", "download 1"), ("down4", "download -P4")]
allcfgs = ["veth", "sluice", "sluice-1w", "sluice-nooff", "hev"]
cfgs = [c for c in allcfgs if any(r["config"] == c for r in rows)]
tun = [c for c in cfgs if c != "veth"]
rat = [c for c in tun if c != "hev"] if "hev" in cfgs else []


def vals(mtu, test, cfg, f):
    out = []
    for r in rows:
        if (r["mtu"], r["test"], r["config"]) != (mtu, test, cfg):
            continue
        v = f(r)
        if v is not None:
            out.append(v)
    return out


def gbps(r):
    return None if r["gbps"] == "n/a" else float(r["gbps"])


def cpu_per_gb(r):
    if r["cpu_ticks"] in ("-", "") or r["gbps"] == "n/a" or int(r["bytes"]) <= 0:
        return None
    return int(r["cpu_ticks"]) / hz / (int(r["bytes"]) / 1e9)


def drops(r):
    return None if r["drops"] in ("-", "") or r["gbps"] == "n/a" else int(r["drops"])


def cell(v, fmt="%.2f"):
    if not v:
        return "-"
    m = fmt % statistics.median(v)
    return m if len(v) == 1 else "%s (%s-%s)" % (m, fmt % min(v), fmt % max(v))


def ratio(a, b):
    return "%.2f" % (statistics.median(a) / statistics.median(b)) if a and b and statistics.median(b) > 0 else "-"


def table(head, body):
    w = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
    line = lambda x: "| " + " | ".join(s.ljust(w[i]) for i, s in enumerate(x)) + " |"
    print(line(head))
    print("|" + "|".join("-" * (n + 2) for n in w) + "|")
    for b in body:
        print(line(b))


print("== iperf3 through dante, Gbit/s received: median of %s run(s) of %ss (min-max)" % (runs, secs))
print("   veth: no tunnel, 1500 bytes in every group (measured in the first group only)")
body = []
for mtu in mtus:
    for t, lab in tests:
        g = {c: vals(mtu, t, c, gbps) for c in cfgs}
        body.append([mtu, lab] + [cell(g[c]) for c in cfgs] +
                    [ratio(g[c], g["hev"]) for c in rat])
table(["MTU", "test"] + cfgs + ["%s/hev" % c for c in rat], body)

print()
print("== tunnel CPU seconds per GB received (utime+stime of the tunnel process and its workers; median, min-max)")
body = []
for mtu in mtus:
    for t, lab in tests:
        c = {x: vals(mtu, t, x, cpu_per_gb) for x in tun}
        body.append([mtu, lab] + [cell(c[x]) for x in tun] + [ratio(c[x], c["hev"]) for x in rat])
table(["MTU", "test"] + tun + ["%s/hev" % x for x in rat], body)

print()
print("== packets the kernel dropped at the TUN's full queue (tx_dropped delta per run; median, min-max)")
body = []
for mtu in mtus:
    for t, lab in tests:
        body.append([mtu, lab] + [cell(vals(mtu, t, x, drops), "%d") for x in tun])
table(["MTU", "test"] + tun, body)

notes = [r for r in rows if r["note"] != "-"]
if notes:
    print()
    print("notes:")
    for r in notes:
        print("  %s %s %s run %s: %s" % (r["mtu"], r["test"], r["config"], r["run"], r["note"]))
EOF
say "# peers.sh took $((($(now_ms) - T_START) / 1000)) s; load average now" \
	"$(cut -d' ' -f1-3 /proc/loadavg) (other load skews every figure)"
exit 0
