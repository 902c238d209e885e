#!/usr/bin/env bash
# check.sh - `make check`: the unit tests (binaries given as arguments, run
# by tests/run-unit.sh), fetch.sh's mirror detection, the end-to-end suites
# in tests/e2e (root: network namespaces) with ./sluice, the fuzzers
# briefly, then the e2e, TLS, close-order, fault and UDP suites again with
# the sanitizer build (build-asan/sluice: make sanitize), and the e2e and
# UDP suites under valgrind.  Sums all and prints one closing line "N
# passed, N failed, N skipped"; exits non-zero when anything failed.
#
# Environment: CHECK_NO_VALGRIND=1, CHECK_NO_SANITIZE=1, CHECK_NO_FUZZ=1
# leave those parts out (counted as skipped); FUZZ_SECONDS (default 5);
# SLUICE_ASAN (default build-asan/sluice); E2E_ALLOW_MISSING=1 lets a
# missing peer or tool skip instead of fail (see tests/e2e/lib.sh).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
T0=$(date +%s)

if [ "$(id -u)" -ne 0 ]; then
	echo "check.sh: must run as root: the end-to-end tests create network" >&2
	echo "namespaces and a TUN device (try: sudo make check)" >&2
	echo "0 passed, 1 failed"
	exit 1
fi

passed=0 failed=0 skipped=0

# missing WHAT: a tool that a part needs is not installed: a failure (as
# in CI), or a skip with E2E_ALLOW_MISSING=1.
missing() {
	if [ "${E2E_ALLOW_MISSING:-0}" = 1 ]; then
		echo "check: $1 not installed: skipped"
		skipped=$((skipped + 1))
	else
		echo "check: $1 not installed (make deps): failed"
		failed=$((failed + 1))
	fi
}

# count LINE: add a "N passed, N failed[, N skipped]" line to the totals.
count() {
	local p f s
	p=$(printf '%s' "$1" | sed -nE 's/(^|.*[^0-9])([0-9]+) passed.*/\2/p')
	f=$(printf '%s' "$1" | sed -nE 's/.*[^0-9]([0-9]+) failed.*/\1/p')
	s=$(printf '%s' "$1" | sed -nE 's/.*[^0-9]([0-9]+) skipped.*/\1/p')
	passed=$((passed + ${p:-0})) failed=$((failed + ${f:-0})) skipped=$((skipped + ${s:-0}))
}

# run_part NAME CMD...: run CMD with its output shown as it comes; take its
# last summary line into the totals (a crash without one counts as a failure).
run_part() {
	local name=$1 log rc line t0
	shift
	log=$(mktemp)
	t0=$(date +%s)
	"$@" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	echo "check: $name took $(($(date +%s) - t0)) s"
	line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
	rm -f "$log"
	if [ -z "$line" ]; then
		echo "check: $name printed no summary (exit $rc)"
		failed=$((failed + 1))
		return
	fi
	count "$line"
	# a non-zero exit with no failure counted is still a failure
	if [ "$rc" -ne 0 ] && ! printf '%s' "$line" | grep -qE '[1-9][0-9]* failed'; then
		echo "check: $name exited $rc"
		failed=$((failed + 1))
	fi
}

# e2e_suites LABEL: run.sh, close.sh, tls.sh and (when there) fault.sh,
# udp.sh, route.sh and system.sh with the current SLUICE and SLUICE_WRAPPER.
e2e_suites() {
	local label=$1 part
	# shellcheck disable=SC2086
	for part in ${E2E_PARTS:-run close tls fault udp route system dns workers}; do
		[ -f "$here/e2e/$part.sh" ] || continue
		echo "== end-to-end tests: $part.sh$label"
		run_part "e2e-$part$label" bash "$here/e2e/$part.sh"
	done
}

echo "== unit tests"
if [ $# -gt 0 ]; then
	run_part unit "$here/run-unit.sh" "$@"
else
	echo "unit: no unit test binaries given"
fi
echo "== fetch.sh mirror detection"
run_part fetch bash "$here/fetch-test.sh"

# Every suite with two worker processes (one per TUN queue), as [process]
# workers = auto gives on two CPUs, then the flow semantics again with one
# process, the other way sluice runs.
SLUICE_WORKERS=${SLUICE_WORKERS:-2} e2e_suites ""
SLUICE_WORKERS=1 E2E_PARTS="run close fault udp dns" e2e_suites " (1 worker)"
for part in gateway scale perf; do
	if [ -f "$here/e2e/$part.sh" ]; then
		echo "== end-to-end tests: $part.sh"
		run_part "e2e-$part" bash "$here/e2e/$part.sh"
	fi
done

# the Debian package: built offline, linted, installed, purged
if [ -n "${CHECK_NO_PKG:-}" ]; then
	echo "check: CHECK_NO_PKG set: package test skipped"
	skipped=$((skipped + 1))
else
	echo "== Debian package (tests/pkg.sh)"
	run_part pkg bash "$here/pkg.sh"
fi

# the fuzzers, briefly: replays the crash reproducers (lwIP bugs we patch)
# and fuzzes every parser and the packet path for a few seconds each
if [ -n "${CHECK_NO_FUZZ:-}" ]; then
	echo "check: CHECK_NO_FUZZ set: fuzz skipped"
	skipped=$((skipped + 1))
elif command -v clang >/dev/null 2>&1; then
	echo "== fuzz targets (${FUZZ_SECONDS:-5} s each)"
	run_part fuzz make -s -C "$root" fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-5}"
else
	missing clang
fi

# The sanitizer build (ASan + UBSan, lwIP's memory on malloc, 0.5 s
# TCP_MSL): any report is fatal (exit 99) and lands in sluice's log, where
# lib.sh finds it.  The wrapper only sets the options; being a wrapper, it
# also gives the suites their longer time bounds and smaller loads.
SLUICE_ASAN=${SLUICE_ASAN:-$root/build-asan/sluice}
ASAN_ENV="env ASAN_OPTIONS=exitcode=99:halt_on_error=1:abort_on_error=0:detect_leaks=1:handle_abort=1:print_summary=1"
ASAN_ENV="$ASAN_ENV UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:exitcode=99"
if [ -n "${CHECK_NO_SANITIZE:-}" ]; then
	echo "check: CHECK_NO_SANITIZE set: sanitizer runs skipped"
	skipped=$((skipped + 1))
elif [ ! -x "$SLUICE_ASAN" ]; then
	echo "check: no sanitizer build at $SLUICE_ASAN (make sanitize): failed"
	failed=$((failed + 1))
else
	SLUICE=$SLUICE_ASAN SLUICE_WRAPPER=$ASAN_ENV \
	    SLUICE_WORKERS=${SLUICE_WORKERS:-2} e2e_suites " (asan)"
fi

# the e2e and UDP suites with sluice under valgrind: no memory error, no
# leak, with lwIP's static pools as shipped (which ASan cannot see into)
if [ -n "${CHECK_NO_VALGRIND:-}" ]; then
	echo "check: CHECK_NO_VALGRIND set: e2e-valgrind skipped"
	skipped=$((skipped + 1))
elif command -v valgrind >/dev/null 2>&1; then
	echo "== end-to-end tests under valgrind"
	SLUICE_WRAPPER="valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite" \
	    SLUICE_WORKERS=2 run_part e2e-valgrind "$here/e2e/run.sh"
	echo "== end-to-end tests: udp.sh under valgrind"
	SLUICE_WRAPPER="valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite" \
	    SLUICE_WORKERS=1 run_part e2e-udp-valgrind "$here/e2e/udp.sh"
else
	missing valgrind
fi

echo "check: all took $(($(date +%s) - T0)) s"
if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
