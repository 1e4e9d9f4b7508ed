#!/bin/bash
# Handshakes per second per core of the protocol core, classic and FIPS: two in-memory devices run
# full handshakes (initiation -> response -> first data; bench/handshake_bench.c), beside the
# crypto bound from `openssl speed` measured in the same run. Numbers only, no thresholds.
#
#   bench/handshake.sh [SECONDS] [--split]     SECONDS per mode (default 10)
#   bench/handshake.sh --count                   instructions per handshake (callgrind), no clock
#
# --split adds where a handshake's CPU time goes (ECDH, key generation, the rest).
# --count runs handshake_bench under valgrind's callgrind for 100 and for 300 handshakes of each
# mode and divides the difference by 200 (set-up and warm-up cancel out): the instructions of one
# handshake, both ends, and of the EVP_PKEY_derive calls in it, which is the operation that
# `openssl speed` times for the bound. Deterministic, so it compares builds on a shared machine
# whose wall-clock rates move by 2x; it does not weigh instructions by their cost in cycles.
# handshake_bench is compiled here with cc against the static libraries of a build directory
# (SG_BUILD, default build/, which `make` fills), so the bench needs no CMake change.
set -euo pipefail
secs=10 split= count=
for a in "$@"; do
	case $a in
	--split) split=-s ;;
	--count) count=1 ;;
	[0-9]*) secs=$a ;;
	*) echo "usage: $0 [SECONDS] [--split] | --count" >&2; exit 2 ;;
	esac
done
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${SG_BUILD:-$SRC/build}
# shellcheck source=bench/pair_lib.sh
. "$SRC/bench/pair_lib.sh"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
bench_cc "$TMP/handshake_bench" "sg_wg sg_crypto sg_common" "$SRC/bench/handshake_bench.c"

if [ -n "$count" ]; then
	command -v valgrind >/dev/null || { echo "bench: --count needs valgrind" >&2; exit 1; }
	# mode, handshakes: FIPS (P-384) is about 20 times the instructions, so fewer of them.
	for run in classic:100 classic:300 fips:10 fips:30; do
		m=${run%:*} n=${run#*:}
		valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.$m.$n" \
			"$TMP/handshake_bench" -m "$m" -n "$n" >/dev/null 2>"$TMP/vg.log" ||
			{ cat "$TMP/vg.log" >&2; exit 1; }
		callgrind_annotate --inclusive=yes --threshold=100 --tree=caller "$TMP/cg.$m.$n" \
			>"$TMP/an.$m.$n" 2>/dev/null
	done
	python3 - "$TMP" <<'PY'
import re, sys
tmp = sys.argv[1]
def read(mode, n):
    total = derive = calls = 0
    lines = open("%s/an.%s.%d" % (tmp, mode, n)).read().splitlines()
    for i, l in enumerate(lines):
        m = re.match(r"^\s*([\d,]+) .*PROGRAM TOTALS", l)
        if m:
            total = int(m.group(1).replace(",", ""))
        m = re.match(r"^\s*([\d,]+) \(.*\)\s+\*\s+\S*:EVP_PKEY_derive \[", l)
        if m:
            derive = int(m.group(1).replace(",", ""))
            j = i - 1
            while j >= 0 and "<" in lines[j]:
                c = re.search(r"\(([\d,]+)x\)", lines[j])
                calls += int(c.group(1).replace(",", "")) if c else 0
                j -= 1
    return total, derive, calls
print("Instructions per handshake (both ends; callgrind, (N2 - N1 handshakes) / (N2 - N1))")
print("%-8s %14s %16s %12s %16s %15s" % ("mode", "handshake", "EVP_PKEY_derive", "derives", "per derive",
                                          "achieved/bound"))
for mode, n1, n2 in (("classic", 100, 300), ("fips", 10, 30)):
    t1, d1, c1 = read(mode, n1)
    t2, d2, c2 = read(mode, n2)
    hs, dv, calls = (t2 - t1) / (n2 - n1), (d2 - d1) / (n2 - n1), (c2 - c1) / (n2 - n1)
    per = dv / calls if calls else 0
    print("%-8s %14.0f %16.0f %12.2f %16.0f %15.2f" % (mode, hs, dv, calls, per, 8 * per / hs))
print("achieved/bound in instructions = 8 x (instructions of one EVP_PKEY_derive) / (instructions\n"
      "  of one handshake): the wall-clock bound's 8 ECDH operations, counted instead of timed.")
PY
	exit 0
fi

# op/s is the last column of the result line; openssl speed counts CPU time (not -elapsed), as
# handshake_bench does.
speed() {
	openssl speed -seconds 3 "$1" 2>/dev/null | awk -v k="$2" 'index($0, k) { v = $NF } END { print v }'
}
p384=$(speed ecdhp384 '(nistp384)')
x25519=$(speed ecdhx25519 '(X25519)')
[ -n "$p384" ] && [ -n "$x25519" ] || { echo "bench: cannot parse openssl speed output" >&2; exit 1; }
classic=$("$TMP/handshake_bench" -m classic -t "$secs" $split)
fips=$("$TMP/handshake_bench" -m fips -t "$secs" $split)

python3 - "$secs" "$(openssl version | cut -d" " -f1-2)" "$x25519" "$p384" "$classic" "$fips" <<'PY'
import sys
secs, ver, x25519, p384 = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
runs = [dict(kv.split("=") for kv in line.split()) for line in sys.argv[5:7]]
ecdh = {"classic": (x25519, "X25519"), "fips": (p384, "P-384")}
print("Handshakes per second per core (both ends on one core, %s s per mode, %s)" % (secs, ver))
print("%-8s %11s %10s %22s %11s %15s" % ("mode", "handshakes", "hs/s/core", "ECDH op/s (openssl)",
                                          "bound hs/s", "achieved/bound"))
for r in runs:
    ops, curve = ecdh[r["mode"]]
    bound = ops / 8
    print("%-8s %11s %10.1f %14.1f %-7s %11.1f %15.2f" % (r["mode"], r["handshakes"],
          float(r["per_core"]), ops, "(" + curve + ")", bound, float(r["per_core"]) / bound))
print("bound = ECDH op/s / 8: a handshake, both ends, needs 6 ECDH (es, ee, se on each side; ss is\n"
      "  computed once per peer and kept) and 2 ephemeral key generations, one scalar\n"
      "  multiplication each, costed as one ECDH (openssl speed times the derive step alone).")
if "hs_us" in runs[0]:
    print("\nCost split (CPU time per handshake; the primitives are called through the crypto API\n"
          "as often as the handshakes call them, timed in slices interleaved with them):")
    print("%-8s %9s %24s %18s %7s" % ("mode", "hs us", "6 ECDH (us each; openssl)",
                                      "2 keygen (us each)", "rest"))
    for r in runs:
        ops = ecdh[r["mode"]][0]
        print("%-8s %9.1f %6.1f%% (%7.1f; %7.1f) %8.1f%% (%6.1f) %6.1f%%" % (
            r["mode"], float(r["hs_us"]), float(r["split_dh_pct"]), float(r["dh_us"]), 1e6 / ops,
            float(r["split_keygen_pct"]), float(r["keygen_us"]), float(r["split_rest_pct"])))
    print("rest = hashing, AEAD, MACs, randomness, indexes, timers.")
PY
