#!/bin/sh
# Fetch lwIP's pristine source from Debian's `lwip` source package, check it
# against the pinned sha256, and leave the tarball in third_party/lwip/dl/.
# Enables a deb-src entry for the Debian mirror already configured when
# `apt-get source` has none.  Run as root on Debian; elsewhere use
# `make LWIP_SRC=/path/to/lwip-2.1.3`.
#
# The mirror is taken from active apt sources only: `URIs:' lines of
# deb822 .sources files and `deb' lines of one-line .list files; comments
# (such as the snapshot URL above the real URIs line of Debian's stock
# debian.sources) are ignored.  APT_SOURCES_DIR (default /etc/apt) is for
# the test of this script.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tarball=lwip_2.1.3+dfsg1.orig.tar.xz
sha256=0a8276d09fc4e97bbba2f953d74af2388fc2195ea156be9d7589e297a68fde24
dl=$here/dl
etc=${APT_SOURCES_DIR:-/etc/apt}
list=$etc/sources.list.d/sluice-deb-src.sources

check() {
	echo "$sha256  $dl/$tarball" | sha256sum -c --status -
}

# mirror_uri: the first active Debian archive URI (not security, not ours)
mirror_uri() {
	for f in "$etc"/sources.list "$etc"/sources.list.d/*.list \
	    "$etc"/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		[ "$f" = "$list" ] && continue
		case $f in
		*.sources)
			sed -nE 's/^[[:space:]]*URIs:[[:space:]]*//p' "$f" |
			    tr ' \t' '\n\n' ;;
		*)
			sed -nE 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/p' "$f" ;;
		esac
	done | grep -E '^https?://.*debian' | grep -v security | head -n1
}

if [ "${1:-}" = --print-mirror ]; then
	u=$(mirror_uri)
	echo "${u:-http://deb.debian.org/debian}"
	exit 0
fi

if [ -f "$dl/$tarball" ] && check; then
	exit 0
fi
mkdir -p "$dl"

# (re)write our deb-src entry when apt has none, or when the one we wrote
# earlier does not work (an older fetch.sh could pick a commented-out URL)
if [ -f "$list" ] || ! apt-get source --print-uris lwip >/dev/null 2>&1; then
	uri=$(mirror_uri)
	suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
	[ -n "$uri" ] || uri=http://deb.debian.org/debian
	printf 'Types: deb-src\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
		"$uri" "$suite" >"$list"
	apt-get update -o Dir::Etc::sourcelist=/dev/null \
		-o Dir::Etc::sourceparts="$(dirname "$list")" >/dev/null
fi

cd "$dl"
apt-get source --download-only lwip >/dev/null 2>&1 || {
	echo "fetch.sh: apt-get source lwip failed" >&2
	exit 1
}
if ! check; then
	echo "fetch.sh: $tarball: sha256 mismatch (want $sha256)" >&2
	rm -f "$dl/$tarball"
	exit 1
fi
