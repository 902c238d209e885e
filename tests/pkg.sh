#!/usr/bin/env bash
# pkg.sh - the Debian package: build it (`make deb', or packaging/mkdeb.sh
# while the Makefile has no deb target) in a network namespace of its own,
# so that any use of the network fails the build; lintian; install it;
# check files, modes, the sluice user, the conffile, the unit
# (`systemd-analyze verify' and `security', offline: exposure at most
# 2.5); run the installed binary as the unit would (user sluice,
# CAP_NET_ADMIN only) in namespaces of its own, with a notify socket;
# reinstall over a changed conffile and a dpkg-statoverride; purge; and
# compare the file lists of the places a package writes to before and
# after.  The service itself is never started and nothing is enabled.
#
# Needs root, `make deps' done (lwIP's tarball), and debhelper, lintian,
# dpkg-dev, systemd (systemd-analyze), socat, iproute2, util-linux.  Fails
# when sluice is installed already.  Build output stays in build/deb.
#
# Prints "ok NAME" or "FAIL NAME: why" per check, then "pkg: N passed,
# N failed".  Exit status 0 when nothing failed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
out=$root/build/deb
passed=0 failed=0
SCORE_MAX=2.5

ok() {
	echo "ok $1"
	passed=$((passed + 1))
}
nok() {
	echo "FAIL $1: $2"
	failed=$((failed + 1))
}
# check NAME CMD...: ok when CMD succeeds (its output shown only if not)
check() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then
		ok "$name"
	else
		nok "$name" "\`$*' failed${out:+: $(echo "$out" | head -n 5)}"
	fi
}
finish() {
	echo "pkg: $passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit
}

if [ "$(id -u)" -ne 0 ]; then
	echo "pkg.sh: must run as root (dpkg -i, namespaces)" >&2
	nok root "not root"
	finish
fi
for t in dpkg-buildpackage dh lintian systemd-analyze socat ip unshare \
    nsenter setpriv mknod; do
	command -v "$t" >/dev/null || nok tools "$t not installed (make deps)"
done
[ "$failed" -eq 0 ] || finish
st=$(dpkg-query -W -f='${db:Status-Status}' sluice 2>/dev/null || true)
if [ -n "$st" ] && [ "$st" != not-installed ]; then
	nok preinstalled "the sluice package is on this system ($st): dpkg -P sluice first"
	finish
fi

tmp=$(mktemp -d /tmp/sluice-pkg.XXXXXX)
chmod 755 "$tmp"
made_policy='' installed='' pids=''
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	local p
	for p in $pids; do kill "$p" 2>/dev/null; done
	if [ -n "$installed" ]; then
		dpkg-statoverride --remove /etc/sluice/sluice.conf >/dev/null 2>&1
		dpkg_do "$tmp/dpkg-cleanup" -P sluice
	fi
	[ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# ---- build, without the network ------------------------------------------
cd "$root" || exit 1
if make -n deb >/dev/null 2>&1; then
	build=(make deb)
else
	build=(packaging/mkdeb.sh "$out")
fi
echo "pkg: building with \`${build[*]}' in a network namespace of its own"
# only loopback there (the unit tests use 127.0.0.1), as on a buildd
if unshare --net -- sh -c 'ip link set lo up && exec "$@"' sh "${build[@]}" \
    >"$tmp/build.log" 2>&1; then
	ok build
else
	nok build "$(tail -n 15 "$tmp/build.log")"
	finish
fi
version=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
arch=$(dpkg --print-architecture)
deb=$out/sluice_${version}_$arch.deb
changes=$out/sluice_${version}_$arch.changes
check "deb exists" test -f "$deb"
check "source package exists" test -f "$out/sluice_$version.dsc"
grep -E '^unit: [0-9]+ passed' "$tmp/build.log" | sed 's/^/  build: /'

# ---- lintian ----------------------------------------------------------------
lintian --pedantic --display-info --fail-on error "$changes" \
    >"$tmp/lintian" 2>&1
lrc=$?
grep -v 'running with root privileges' "$tmp/lintian" | sed 's/^/  lintian: /'
for k in E W I P; do
	eval "n$k=$(grep -c "^$k: " "$tmp/lintian")"
done
# shellcheck disable=SC2154
echo "  lintian: $nE errors, $nW warnings, $nI info, $nP pedantic"
if [ "$lrc" -eq 0 ] && [ "$nE" -eq 0 ]; then
	ok lintian
else
	nok lintian "exit $lrc, $nE errors"
fi

# dpkg_do LOG ARGS...: dpkg ARGS into LOG, waiting up to 5 minutes while
# another dpkg or apt holds the lock
dpkg_do() {
	local log=$1 i
	shift
	for i in $(seq 150); do
		dpkg "$@" >"$log" 2>&1 && return 0
		grep -q 'lock' "$log" || return 1
		[ "$i" -eq 1 ] && echo "  dpkg is locked by another process: waiting"
		sleep 2
	done
	return 1
}

# ---- snapshot, install ----------------------------------------------------
# The places a package writes to.  Left out: dpkg's and apt's databases,
# the account files' backups that adding the sluice user leaves (the user
# is kept after a purge, on purpose: see debian/sluice.postrm), and
# /etc/netns, which the end-to-end tests' `ip netns' fill and empty.
snapshot() {
	find /etc /usr/sbin /usr/share/man /usr/share/doc /lib/systemd \
	    /usr/lib/systemd /usr/lib/sysusers.d /var/lib -xdev 2>/dev/null |
	    grep -vE '^/var/lib/(dpkg|apt)(/|$)|^/etc/netns(/|$)|^/etc/(passwd|group|shadow|gshadow|subuid|subgid)-$|^/etc/\.pwd\.lock$' |
	    LC_ALL=C sort
}
snapshot >"$tmp/before"

# services stay down whatever the init system: policy-rc.d says 101
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\n# temporary, from sluice tests/pkg.sh\nexit 101\n' \
	    >/usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	made_policy=1
fi
if [ -d /run/systemd/system ]; then
	echo "  systemd is running: the unit is registered, neither enabled nor started"
fi
installed=1
if dpkg_do "$tmp/dpkg-i" -i "$deb"; then
	ok "dpkg -i"
else
	nok "dpkg -i" "$(tail -n 10 "$tmp/dpkg-i")"
	finish
fi

# ---- what it installed ------------------------------------------------------
# mode NAME PATH WANT: stat's "mode user group" of PATH is WANT
mode() {
	local got
	got=$(stat -c '%a %U %G' "$2" 2>&1)
	if [ "$got" = "$3" ]; then ok "$1"; else nok "$1" "$2: '$got', want '$3'"; fi
}
conf=/etc/sluice/sluice.conf
unit=/lib/systemd/system/sluice.service
mode "binary" /usr/sbin/sluice "755 root root"
mode "man page sluice.8" /usr/share/man/man8/sluice.8.gz "644 root root"
mode "man page sluice.conf.5" /usr/share/man/man5/sluice.conf.5.gz "644 root root"
mode "config 0640 root:sluice" "$conf" "640 root sluice"
mode "unit" "$unit" "644 root root"
mode "sysusers.d" /usr/lib/sysusers.d/sluice.conf "644 root root"
check "version" sh -c "/usr/sbin/sluice -V | grep -qx 'sluice $version'"
check "conffile" sh -c "dpkg-query -W -f='\${Conffiles}' sluice | grep -q ' $conf '"
if pw=$(getent passwd sluice); then
	uid=$(echo "$pw" | cut -d: -f3)
	shell=$(echo "$pw" | cut -d: -f7)
	if [ "$uid" -lt 1000 ] && [ "$shell" = /usr/sbin/nologin ]; then
		ok "system user sluice"
	else
		nok "system user sluice" "$pw"
	fi
else
	nok "system user sluice" "no such user"
fi
check "group sluice" getent group sluice
check "unit not enabled" sh -c "! ls /etc/systemd/system/*.wants/sluice.service 2>/dev/null | grep -q ."
check "unit ExecStart" grep -qx 'ExecStart=/usr/sbin/sluice -c /etc/sluice/sluice.conf' "$unit"
check "no @VARS@ left in the unit" sh -c "! grep -q '@[A-Z]*@' $unit"
check "config readable by sluice" \
    runuser -u sluice -- /usr/sbin/sluice -t -c "$conf"
check "config unreadable by others" \
    sh -c "! runuser -u nobody -- /usr/sbin/sluice -t -c $conf 2>/dev/null"

# ---- the unit, offline ------------------------------------------------------
if systemd-analyze verify "$unit" >"$tmp/verify" 2>&1 &&
    ! grep -q . "$tmp/verify"; then
	ok "systemd-analyze verify"
else
	nok "systemd-analyze verify" "$(head -n 10 "$tmp/verify")"
fi
systemd-analyze security --offline=yes "$unit" >"$tmp/security" 2>&1
score=$(sed -nE 's/.*Overall exposure level for sluice\.service: ([0-9.]+).*/\1/p' "$tmp/security")
grep '✗' "$tmp/security" | sed -E 's/ {2,}/  /g; s/^/  security: /'
echo "  security: overall exposure ${score:-?} (at most $SCORE_MAX)"
if [ -n "$score" ] && awk -v s="$score" -v m="$SCORE_MAX" 'BEGIN { exit !(s <= m) }'; then
	ok "systemd-analyze security $score"
else
	nok "systemd-analyze security" "exposure '${score:-?}' over $SCORE_MAX: $(tail -n 3 "$tmp/security")"
fi

# ---- run as the unit would, in namespaces of its own ------------------------
# User sluice with CAP_NET_ADMIN only, no new privileges; a network
# namespace of its own, and a mount namespace in which /dev/net/tun is a
# fresh node of mode 0666, as udev makes it (in containers without udev the
# host's is often 0600 root).  sluice must create its device and send
# READY=1, RELOADING=1 + READY=1 on SIGHUP, STOPPING=1 on SIGTERM and exit 0.
notify=$tmp/notify
socat -u "UNIX-RECV:$notify,perm=0666" "OPEN:$tmp/msgs,creat,append" \
    2>"$tmp/socat.err" &
spid=$!
pids="$spid"
for _ in $(seq 50); do [ -S "$notify" ] && break; sleep 0.1; done
NOTIFY_SOCKET=$notify unshare --net --mount --propagation private -- sh -c '
	mount -t tmpfs -o mode=755 sluice-pkg-test /dev/net &&
	mknod -m 666 /dev/net/tun c 10 200 &&
	exec setpriv --reuid=sluice --regid=sluice --clear-groups \
	    --inh-caps=-all,+net_admin --ambient-caps=-all,+net_admin \
	    --bounding-set=-all,+net_admin --no-new-privs -- \
	    /usr/sbin/sluice -c /etc/sluice/sluice.conf' >"$tmp/run.log" 2>&1 &
rpid=$!
pids="$pids $rpid"
# count WORD: how many times WORD came over the notify socket
count() { grep -o "$1" "$tmp/msgs" 2>/dev/null | wc -l; }
for _ in $(seq 100); do
	[ "$(count READY=1)" -ge 1 ] && break
	kill -0 "$rpid" 2>/dev/null || break
	sleep 0.1
done
if [ "$(count READY=1)" -ge 1 ]; then
	ok "runs as sluice with CAP_NET_ADMIN: READY=1"
	tun=$(nsenter --net="/proc/$rpid/ns/net" ip -br link 2>/dev/null | grep -c POINTOPOINT)
	if [ "$tun" -ge 1 ]; then ok "TUN device created"; else nok "TUN device created" "none in its namespace"; fi
	kill -HUP "$rpid"
	for _ in $(seq 50); do [ "$(count READY=1)" -ge 2 ] && break; sleep 0.1; done
	if [ "$(count RELOADING=1)" -ge 1 ] && [ "$(count READY=1)" -ge 2 ]; then
		ok "SIGHUP: RELOADING=1, READY=1"
	else
		nok "SIGHUP: RELOADING=1, READY=1" "notify messages: $(tr '\n' ' ' <"$tmp/msgs")"
	fi
	kill -TERM "$rpid"
	wait "$rpid"
	rc=$?
	if [ "$rc" -eq 0 ] && [ "$(count STOPPING=1)" -ge 1 ]; then
		ok "SIGTERM: STOPPING=1, exit 0"
	else
		nok "SIGTERM: STOPPING=1, exit 0" "exit $rc, notify messages: $(tr '\n' ' ' <"$tmp/msgs")"
	fi
else
	nok "runs as sluice with CAP_NET_ADMIN: READY=1" "$(tail -n 5 "$tmp/run.log")"
	kill "$rpid" 2>/dev/null
	wait "$rpid" 2>/dev/null
fi
kill "$spid" 2>/dev/null
wait "$spid" 2>/dev/null
pids=

# ---- reinstall: a changed conffile and a statoverride are kept -------------
echo "# changed by tests/pkg.sh" >>"$conf"
dpkg-statoverride --update --add root root 0600 "$conf"
if dpkg_do "$tmp/dpkg-i2" -i --force-confold "$deb"; then
	ok "dpkg -i again"
else
	nok "dpkg -i again" "$(tail -n 10 "$tmp/dpkg-i2")"
fi
check "changed conffile kept" grep -q '^# changed by tests/pkg.sh' "$conf"
mode "statoverride respected" "$conf" "600 root root"
dpkg-statoverride --remove "$conf"

# ---- purge --------------------------------------------------------------------
# the state the service would have: StateDirectory=sluice
install -d -o sluice -g sluice -m 700 /var/lib/sluice
echo state >/var/lib/sluice/fakeip
if dpkg_do "$tmp/dpkg-P" -P sluice; then
	ok "dpkg -P"
	installed=
else
	nok "dpkg -P" "$(tail -n 10 "$tmp/dpkg-P")"
fi
st=$(dpkg-query -W -f='${db:Status-Status}' sluice 2>/dev/null || true)
check "package gone" test -z "$st" -o "$st" = not-installed
check "/etc/sluice removed" test ! -e /etc/sluice
check "/var/lib/sluice removed" test ! -e /var/lib/sluice
check "unit removed" test ! -e "$unit"
check "binary removed" test ! -e /usr/sbin/sluice
snapshot >"$tmp/after"
left=$(LC_ALL=C comm -13 "$tmp/before" "$tmp/after")
gone=$(LC_ALL=C comm -23 "$tmp/before" "$tmp/after")
if [ -z "$left" ]; then
	ok "nothing left behind"
else
	nok "nothing left behind" "$(echo "$left" | head -n 20 | tr '\n' ' ')"
fi
if [ -z "$gone" ]; then
	ok "nothing else removed"
else
	nok "nothing else removed" "$(echo "$gone" | head -n 20 | tr '\n' ' ')"
fi
if getent passwd sluice >/dev/null; then
	echo "  the sluice user and group stay after a purge (on purpose)"
fi

finish
