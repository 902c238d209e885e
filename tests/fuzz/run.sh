#!/bin/sh
# Run each libFuzzer target for SECONDS seconds:
#   tests/fuzz/run.sh SECONDS build-fuzz/fuzz_http ...
# First the known reproducers tests/fuzz/crashes/NAME-* are replayed: one
# that still crashes fails the target at once (fix the bug, then the file
# stays as a regression test).  Then the fuzzing: seeds come from
# tests/fuzz/corpus/NAME (never written to); new inputs go to
# $FUZZ_BUILD/corpus/NAME, crashes to $FUZZ_BUILD/crashes/NAME-*, the full
# output to $FUZZ_BUILD/logs/NAME.log.  Prints "ok NAME (execs, seconds)"
# or "FAIL NAME" and the crash summary per target, then "fuzz: N passed,
# N failed"; exits non-zero when any target failed.

secs=${1:?usage: run.sh SECONDS TARGET...}
shift
here=$(dirname "$0")
out=${FUZZ_BUILD:-build-fuzz}
passed=0 failed=0

# Per-target options: input size limits that fit what the code parses.
opts_for() {
	case "$1" in
	fuzz_socks5)	echo "-max_len=600" ;;
	fuzz_http)	echo "-max_len=17000" ;;
	fuzz_url)	echo "-max_len=1200" ;;
	fuzz_config)	echo "-max_len=8192" ;;
	fuzz_packet)	echo "-max_len=8192" ;;
	*)		echo "" ;;
	esac
}

for bin in "$@"; do
	name=$(basename "$bin")
	corpus=$out/corpus/$name
	seeds=$here/corpus/$name
	log=$out/logs/$name.log
	mkdir -p "$corpus" "$out/crashes" "$out/logs"
	[ -d "$seeds" ] || seeds=$corpus	# no seeds: the corpus twice

	bad=
	for repro in "$here"/crashes/"$name"-*; do
		[ -f "$repro" ] || continue
		"$bin" "$repro" >"$log" 2>&1 || { bad=$repro; break; }
	done
	if [ -n "$bad" ]; then
		echo "FAIL $name (reproducer $bad still crashes, log $log)"
		grep -E '(==ERROR|^SUMMARY|runtime error|Assertion|assertion)' "$log" |
		    head -n 4 | sed 's/^/  /'
		failed=$((failed + 1))
		continue
	fi

	start=$(date +%s)
	# shellcheck disable=SC2046
	"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 \
	    -print_final_stats=1 -artifact_prefix="$out/crashes/$name-" \
	    $(opts_for "$name") "$corpus" "$seeds" >"$log" 2>&1
	rc=$?
	end=$(date +%s)
	execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n1)
	rate=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+).*/\1/p' "$log" | tail -n1)
	if [ "$rc" -eq 0 ] && [ -n "$execs" ]; then
		echo "ok $name ($execs execs, $((end - start)) s, ${rate:-?}/s)"
		passed=$((passed + 1))
	else
		echo "FAIL $name (exit $rc, log $log)"
		grep -E '(==ERROR|^SUMMARY|runtime error|Assertion|assertion|Test unit written)' "$log" |
		    head -n 6 | sed 's/^/  /'
		failed=$((failed + 1))
	fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
