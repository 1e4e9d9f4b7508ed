#!/bin/sh
# Runs each libFuzzer target for N seconds from its seed corpus; fails on any finding.
set -eu
bindir=$1
secs=${2:-60}
src=$(cd "$(dirname "$0")/.." && pwd)
for f in "$bindir"/fuzz_*; do
	name=$(basename "$f" | sed 's/^fuzz_//')
	work=$(mktemp -d)
	cp "$src/tests/fuzz/corpus/$name/"* "$work/" 2>/dev/null || true
	echo "== fuzz $name for ${secs}s"
	"$f" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$work/" "$work" 2>&1 | tail -n 12
	rm -rf "$work"
done
