#!/bin/sh
# mkdeb.sh - build sluice's Debian package (source and binary) out of tree,
# without the network.  Run by `make deb'; needs `make deps' to have
# fetched lwIP, and debhelper and the Build-Depends of debian/control.
#
#   packaging/mkdeb.sh [OUTDIR]        default: build/deb
#
# Copies the build inputs listed below, lwIP's tarball (checked against the
# sha256 that third_party/lwip/fetch.sh pins) and packaging/debian/ into
# OUTDIR/sluice-VERSION/ and runs dpkg-buildpackage there; the .deb, .dsc,
# .tar.xz, .buildinfo and .changes land in OUTDIR.  A file the build
# needs that is not under one of these paths must be added to them.
set -eu

INPUTS="Makefile fuzz.mk README.md conf man src packaging
third_party/lwip/README third_party/lwip/fetch.sh third_party/lwip/patches
third_party/lwip/port tests/run-unit.sh tests/unit"

top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/build/deb}
case $out in /*) ;; *) out=$(pwd)/$out ;; esac

die() {
	echo "mkdeb: $*" >&2
	exit 1
}

cd "$top"
version=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
mkversion=$(sed -nE 's/^VERSION[[:space:]]*:=[[:space:]]*//p' Makefile)
[ "$version" = "$mkversion" ] ||
	die "packaging/debian/changelog has $version, the Makefile $mkversion: add a changelog entry (dch -v $mkversion)"

tarball=$(sed -n 's/^tarball=//p' third_party/lwip/fetch.sh)
sha256=$(sed -n 's/^sha256=//p' third_party/lwip/fetch.sh)
if [ -z "$tarball" ] || [ -z "$sha256" ]; then
	die "no tarball=/sha256= pin in third_party/lwip/fetch.sh"
fi
[ -f "third_party/lwip/dl/$tarball" ] ||
	die "third_party/lwip/dl/$tarball is missing: run \`make deps' first"
echo "$sha256  third_party/lwip/dl/$tarball" | sha256sum -c --status - ||
	die "third_party/lwip/dl/$tarball: sha256 mismatch (want $sha256)"

tree=$out/sluice-$version
rm -rf "$tree"
mkdir -p "$tree/third_party/lwip/dl"
for f in $INPUTS; do
	[ -e "$f" ] || die "$f: missing"
	mkdir -p "$tree/$(dirname "$f")"
	cp -pR "$f" "$tree/$f"
done
cp -p "third_party/lwip/dl/$tarball" "$tree/third_party/lwip/dl/"
rm -rf "$tree/packaging/debian"
cp -pR packaging/debian "$tree/debian"
# stale results of an earlier build of this version
rm -f "$out"/sluice_"$version"[._]* "$out"/sluice-dbgsym_"$version"_*

cd "$tree"
dpkg-buildpackage --no-sign -Jauto
echo "mkdeb: $(ls "$out"/sluice_"$version"_*.deb)"
