#!/usr/bin/env bash
# check.sh - `make check`: the unit tests (binaries given as arguments, run
# by tests/run-unit.sh), then the end-to-end tests (tests/e2e/run.sh, which
# need root for network namespaces).  Sums both and prints one closing line
# "N passed, N failed, N skipped"; exits non-zero when anything failed.
set -u
here=$(cd "$(dirname "$0")" && pwd)

if [ "$(id -u)" -ne 0 ]; then
	echo "check.sh: must run as root: the end-to-end tests create network" >&2
	echo "namespaces and a TUN device (try: sudo make check)" >&2
	echo "0 passed, 1 failed"
	exit 1
fi

passed=0 failed=0 skipped=0

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
	local name=$1 log rc line
	shift
	log=$(mktemp)
	"$@" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
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

echo "== unit tests"
if [ $# -gt 0 ]; then
	run_part unit "$here/run-unit.sh" "$@"
else
	echo "unit: no unit test binaries given"
fi
echo "== end-to-end tests"
run_part e2e "$here/e2e/run.sh"
# the same suite with sluice under valgrind: no memory error, no leak
if command -v valgrind >/dev/null 2>&1 && [ -z "${CHECK_NO_VALGRIND:-}" ]; then
	echo "== end-to-end tests under valgrind"
	SLUICE_WRAPPER="valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite" \
	    run_part e2e-valgrind "$here/e2e/run.sh"
else
	echo "check: valgrind not installed: e2e-valgrind skipped"
	skipped=$((skipped + 1))
fi
# the fuzzers, briefly: replays the crash reproducers (lwIP bugs we patch)
# and fuzzes every parser and the packet path for a few seconds each
if command -v clang >/dev/null 2>&1 && [ -z "${CHECK_NO_FUZZ:-}" ]; then
	echo "== fuzz targets (${FUZZ_SECONDS:-5} s each)"
	run_part fuzz make -s -C "$here/.." fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-5}"
else
	echo "check: clang not installed: fuzz skipped"
	skipped=$((skipped + 1))
fi
# further suites: TLS and HTTP upstreams, the --perf self-benchmark
for part in tls perf; do
	if [ -f "$here/e2e/$part.sh" ]; then
		echo "== end-to-end tests: $part"
		run_part "e2e-$part" bash "$here/e2e/$part.sh"
	fi
done

if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
