#!/usr/bin/env bash
# fetch-test.sh - the mirror detection of third_party/lwip/fetch.sh
# (`fetch.sh --print-mirror', which reads apt's sources below
# APT_SOURCES_DIR and changes nothing), on apt configurations made up in a
# temporary directory: Debian's stock deb822 debian.sources with its
# commented-out snapshot URL, one-line .list files, and none at all.
#
# FETCH=PATH tests another copy of fetch.sh.
#
# Prints "ok NAME" or "FAIL NAME: why" per case, then "fetch: N passed,
# N failed".  Exit status 0 when nothing failed.  Needs no root, no network.
set -u
here=$(cd "$(dirname "$0")" && pwd)
FETCH=${FETCH:-$here/../third_party/lwip/fetch.sh}
passed=0 failed=0

tmp=$(mktemp -d /tmp/sluice-fetch-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# expect NAME WANT: fetch.sh --print-mirror on $tmp/NAME prints WANT.
expect() {
	local name=$1 want=$2 got rc
	got=$(APT_SOURCES_DIR=$tmp/$name timeout 10 sh "$FETCH" --print-mirror 2>"$tmp/$name.err")
	rc=$?
	if [ $rc -ne 0 ]; then
		echo "FAIL $name: exit $rc: $(head -c 200 "$tmp/$name.err")"
		failed=$((failed + 1))
	elif [ "$got" != "$want" ]; then
		echo "FAIL $name: printed '$got', want '$want'"
		failed=$((failed + 1))
	else
		echo "ok $name"
		passed=$((passed + 1))
	fi
}

# mkapt NAME: an empty apt configuration directory; its path in D.
mkapt() {
	D=$tmp/$1
	mkdir -p "$D/sources.list.d"
}

# Debian 12's stock /etc/apt/sources.list.d/debian.sources (as the
# official container images ship it): a snapshot URL commented out above
# each real URIs line, the security archive second.
mkapt stock-deb822
cat >"$D/sources.list.d/debian.sources" <<'EOF'
Types: deb
# http://snapshot.debian.org/archive/debian/20240110T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
# http://snapshot.debian.org/archive/debian-security/20240110T000000Z
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
expect stock-deb822 http://deb.debian.org/debian

# The same shape with another mirror: the URIs line is really what is read.
mkapt deb822-mirror
sed 's|URIs: http://deb.debian.org/debian$|URIs: http://ftp.de.debian.org/debian|' \
	"$tmp/stock-deb822/sources.list.d/debian.sources" >"$D/sources.list.d/debian.sources"
expect deb822-mirror http://ftp.de.debian.org/debian

# The security archive first: it is never the mirror.
mkapt deb822-security-first
cat >"$D/sources.list.d/debian.sources" <<'EOF'
Types: deb
URIs: http://security.debian.org/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: https://mirror.example.org/debian
Suites: bookworm
Components: main
EOF
expect deb822-security-first https://mirror.example.org/debian

# A one-line sources.list with a commented-out snapshot line first.
mkapt one-line
cat >"$D/sources.list" <<'EOF'
# deb http://snapshot.debian.org/archive/debian/20240110T000000Z bookworm main
deb http://ftp.fr.debian.org/debian bookworm main
deb http://security.debian.org/debian-security bookworm-security main
EOF
expect one-line http://ftp.fr.debian.org/debian

# A one-line .list in sources.list.d with options in brackets.
mkapt one-line-options
cat >"$D/sources.list.d/mirror.list" <<'EOF'
#deb http://snapshot.debian.org/archive/debian/20240110T000000Z bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://ftp.nl.debian.org/debian bookworm main
EOF
expect one-line-options http://ftp.nl.debian.org/debian

# Nothing configured: the default mirror.
mkapt empty
expect empty http://deb.debian.org/debian

echo "fetch: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
