#!/bin/sh
# Fetch lwIP's pristine source from Debian's `lwip` source package, check it
# against the pinned sha256, and leave the tarball in third_party/lwip/dl/.
# Enables a deb-src entry for the Debian mirror already configured when
# `apt-get source` has none.  Run as root on Debian; elsewhere use
# `make LWIP_SRC=/path/to/lwip-2.1.3`.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tarball=lwip_2.1.3+dfsg1.orig.tar.xz
sha256=0a8276d09fc4e97bbba2f953d74af2388fc2195ea156be9d7589e297a68fde24
dl=$here/dl
mkdir -p "$dl"

check() {
	echo "$sha256  $dl/$tarball" | sha256sum -c --status -
}

if [ -f "$dl/$tarball" ] && check; then
	exit 0
fi

if ! apt-get source --print-uris lwip >/dev/null 2>&1; then
	# no deb-src: derive one from the first configured Debian mirror
	list=/etc/apt/sources.list.d/sluice-deb-src.sources
	uri=$(grep -rhoE 'https?://[^ ]*debian[^ ]*' /etc/apt/sources.list \
		/etc/apt/sources.list.d/ 2>/dev/null | grep -v security | head -n1)
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
