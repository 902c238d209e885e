#!/bin/sh
# deps.sh - install, from Debian's packages, whatever sluice needs to build
# and to run its tests that is not installed yet.  Idempotent: when
# everything is there it changes nothing.  Called by `make deps` (which then
# fetches lwIP).  Needs root for the install itself.
#
# Services that Debian would start on install (squid, danted, stunnel4) are
# kept from starting with a temporary /usr/sbin/policy-rc.d that answers 101
# ("action forbidden"); an existing policy-rc.d is left as it is.
set -eu

PKGS="build-essential gcc make pkg-config libevent-dev libmbedtls-dev
libinih-dev dpkg-dev xz-utils patch ca-certificates iproute2 procps
dante-server microsocks stunnel4 squid iperf3 socat curl openssl python3
valgrind clang libclang-rt-14-dev libcap2-bin util-linux iputils-ping
dnsmasq-base bind9-dnsutils dnsperf nftables libmnl-dev libcap-dev
python3-prometheus-client debhelper lintian systemd"

missing=
for p in $PKGS; do
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$st" = installed ] || missing="$missing $p"
done

if [ -z "$missing" ]; then
	echo "deps: all packages present"
	exit 0
fi
echo "deps: missing:$missing"

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: must run as root to install:$missing" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
APT="apt-get -y -q -o Dpkg::Use-Pty=0"

policy=/usr/sbin/policy-rc.d
made_policy=
cleanup() {
	if [ -n "$made_policy" ]; then rm -f "$policy"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# temporary, from sluice tests/deps.sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	made_policy=1
fi

# Package lists may be empty on a fresh machine; refresh them only then, or
# when an install from the current lists fails.
lists_empty() {
	for f in /var/lib/apt/lists/*_Packages*; do [ -e "$f" ] && return 1; done
	return 0
}
if lists_empty; then
	$APT update
fi
# shellcheck disable=SC2086
if ! $APT install --no-install-recommends $missing; then
	echo "deps: install failed, refreshing package lists and retrying"
	$APT update
	# shellcheck disable=SC2086
	$APT install --no-install-recommends $missing
fi
echo "deps: installed:$missing"
