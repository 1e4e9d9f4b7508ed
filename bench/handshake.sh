#!/bin/bash
# Handshakes per second per core of the protocol core, classic and FIPS: two in-memory devices run
# full handshakes (initiation -> response -> first data; bench/handshake_bench.c), beside the
# crypto bound from `openssl speed` measured in the same run. Numbers only, no thresholds.
#
#   bench/handshake.sh [SECONDS] [--split]     SECONDS per mode (default 10)
#
# --split adds where a handshake's CPU time goes (ECDH, key generation, the rest).
# handshake_bench is compiled here with cc against the static libraries of a build directory
# (SG_BUILD, default build/, which `make` fills), so the bench needs no CMake change.
set -euo pipefail
secs=10 split=
for a in "$@"; do
	case $a in
	--split) split=-s ;;
	[0-9]*) secs=$a ;;
	*) echo "usage: $0 [SECONDS] [--split]" >&2; exit 2 ;;
	esac
done
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${SG_BUILD:-$SRC/build}
# shellcheck source=bench/pair_lib.sh
. "$SRC/bench/pair_lib.sh"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
bench_cc "$TMP/handshake_bench" "sg_wg sg_crypto sg_common" "$SRC/bench/handshake_bench.c"

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
    print("%-8s %9s %24s %18s %18s %7s" % ("mode", "hs us", "6 ECDH (us each; openssl)",
                                            "2 keygen (us each)", "2 pubkey (us each)", "rest"))
    for r in runs:
        ops = ecdh[r["mode"]][0]
        print("%-8s %9.1f %6.1f%% (%7.1f; %7.1f) %8.1f%% (%6.1f) %8.1f%% (%6.1f) %6.1f%%" % (
            r["mode"], float(r["hs_us"]), float(r["split_dh_pct"]), float(r["dh_us"]), 1e6 / ops,
            float(r["split_keygen_pct"]), float(r["keygen_us"]), float(r["split_pubkey_pct"]),
            float(r["pubkey_us"]), float(r["split_rest_pct"])))
    print("pubkey = the ephemeral public key derived again from its private key in noise.c\n"
          "  (dh_generate already returned it); rest = hashing, AEAD, MACs, indexes, timers.")
PY
