#!/bin/bash
# Runs each libFuzzer target for N seconds from (a copy of) its seed corpus. Exits non-zero if any
# target finds a crash, a leak or a timeout; the reproducer stays in the printed directory.
set -uo pipefail
bindir=$1
secs=${2:-60}
src=$(cd "$(dirname "$0")/.." && pwd)
failed=()
for f in "$bindir"/fuzz_*; do
	name=$(basename "$f" | sed 's/^fuzz_//')
	work=$(mktemp -d "/tmp/sg-fuzz-$name.XXXXXX")
	cp "$src/tests/fuzz/corpus/$name/"* "$work/" 2>/dev/null || true
	if "$f" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$work/" "$work" \
		>"$work/log" 2>&1; then
		runs=$(grep -m1 'stat::number_of_executed_units' "$work/log" | awk '{print $2}')
		echo "fuzz $name: ${secs}s, $runs runs, no finding"
		rm -rf "$work"
	else
		echo "fuzz $name: FINDING, see $work/log and the crash-* file there"
		grep -m3 -E 'ERROR|SUMMARY' "$work/log" | sed 's/^/    /'
		failed+=("$name")
	fi
done
[ ${#failed[@]} -eq 0 ] || { echo "fuzz: findings in ${failed[*]}"; exit 1; }
