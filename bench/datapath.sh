#!/bin/bash
# The crypto ceiling of the parallel data path, classic and FIPS: two in-memory devices (one
# handshake, then batches of 64 x 1420-byte IPv4 packets) run the protocol core's split data path
# A: prepare -> cpool_run -> complete, B: the same on receive, with the AEAD step spread over
# 1 .. CPUs lanes by the daemon's crypto pool (bench/datapath_bench.c), beside the AEAD bound
# from `openssl speed` measured in the same run. No sockets and no TUN device: all I/O is
# excluded, so this is the ceiling of the daemon's crypto part, not tunnel throughput. Numbers
# only, no thresholds.
#
#   bench/datapath.sh [SECONDS]     SECONDS per mode and lane count (default 5)
#
# datapath_bench is compiled here with cc against the static libraries of a build directory
# (SG_BUILD, default build/, which `make` fills) and src/engine/cpool.c, so the bench needs no
# CMake change. Root is not needed.
set -euo pipefail
secs=5
for a in "$@"; do
	case $a in
	[0-9]*) secs=$a ;;
	*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
	esac
done
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${SG_BUILD:-$SRC/build}
# shellcheck source=bench/pair_lib.sh
. "$SRC/bench/pair_lib.sh"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
bench_cc "$TMP/datapath_bench" "sg_wg sg_crypto sg_common" "$SRC/bench/datapath_bench.c" \
	"$SRC/src/engine/cpool.c"
# The AEAD alone per message (bench/aead_bench.c), and libsodium's ChaCha20-Poly1305 beside it
# where Debian's libsodium-dev is installed (not a dependency of the daemon: only measured).
sodium=()
if pkg-config --exists libsodium 2>/dev/null; then
	sodium=(-DSG_BENCH_SODIUM "$SRC/bench/aead_bench.c" $(pkg-config --libs libsodium))
else
	sodium=("$SRC/bench/aead_bench.c")
fi
bench_cc "$TMP/aead_bench" "sg_crypto sg_common" "${sodium[@]}"

# kB/s (openssl's 1000s of bytes per second, CPU time of one core) is the last field of the
# result line, with a trailing "k". 1420 bytes: the messages of both benches. For ChaCha20-Poly1305
# `openssl speed -evp` streams (one key and nonce, EVP_EncryptUpdate after EVP_EncryptUpdate, no
# tag); for AES-256-GCM (an "AE mode" to apps/speed.c) it sets key and IV for every message, so
# that bound pays a key schedule per message that sg_aead does not. aead_bench's stream-* rows
# measure both the streaming way, in the same rounds as the implementations.
speed() {
	openssl speed -evp "$1" -bytes 1420 -seconds 2 2>/dev/null |
		awk -v k="$2" 'index($0, k) == 1 { v = $NF } END { sub(/k$/, "", v); print v }'
}
chacha=$(speed chacha20-poly1305 'ChaCha20-Poly1305')
gcm=$(speed aes-256-gcm 'AES-256-GCM')
[ -n "$chacha" ] && [ -n "$gcm" ] || { echo "bench: cannot parse openssl speed output" >&2; exit 1; }
classic=$("$TMP/datapath_bench" -m classic -t "$secs")
fips=$("$TMP/datapath_bench" -m fips -t "$secs")
aead=$("$TMP/aead_bench" -t "$(((secs + 1) / 2))")
cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)

python3 - "$secs" "$(openssl version | cut -d" " -f1-2)" "${cpu:-unknown}" "$chacha" "$gcm" \
	"$classic" "$fips" "$aead" "$(uptime)" <<'PY'
import sys
secs, ver, cpu = sys.argv[1:4]
alone = [dict(kv.split("=") for kv in line.split()) for line in sys.argv[8].splitlines() if line.strip()]
kbps = {"classic": float(sys.argv[4]), "fips": float(sys.argv[5])}
aead = {"classic": "ChaCha20-Poly1305", "fips": "AES-256-GCM"}
runs = [dict(kv.split("=") for kv in line.split())
        for arg in sys.argv[6:8] for line in arg.splitlines() if line.strip()]
print("Crypto ceiling of the parallel data path: prepare -> cpool_run (AEAD on N lanes) -> complete,\n"
      "A seals and B opens batches of 64 x 1420-byte IPv4 packets, in memory. Excludes all I/O\n"
      "(no sockets, no TUN): the ceiling of the daemon's crypto part, not tunnel throughput.")
print("CPU: %s, %s CPUs usable; %s; %s s per row" % (cpu, runs[0]["cpus"], ver, secs))
print("%-8s %5s %9s %9s %10s %9s" % ("mode", "lanes", "Gbit/s", "CPU use", "CPU-s/GB", "speedup"))
one = {}
for r in runs:
    m, lanes = r["mode"], int(r["lanes"])
    gbps, wall, cpu_s = float(r["gbps"]), float(r["wall_s"]), float(r["cpu_s"])
    if lanes == 1:
        one[m] = r
    print("%-8s %5d %9.2f %8.2fx %10.3f %8.2fx" % (m, lanes, gbps, cpu_s / wall,
          float(r["cpu_s_per_gb"]), gbps / float(one[m]["gbps"])))
print("Gbit/s = inner bytes sealed by A and opened by B, per wall-clock second; CPU use = CPU\n"
      "  seconds (all threads, getrusage) per wall second; speedup = over 1 lane of the same mode.")
for m in ("classic", "fips"):
    r = one[m]
    # Each inner byte is sealed once and opened once: one core does at most speed/2 of them.
    bound_gbps = kbps[m] * 1e3 / 2 * 8 / 1e9
    bound_cpu = 2 / (kbps[m] * 1e3) * 1e9
    print("%-7s 1 lane: openssl %s %.0f MB/s per core (1420 B) -> bound %.2f Gbit/s, %.3f CPU-s/GB;"
          % (m, aead[m], kbps[m] / 1e3, bound_gbps, bound_cpu))
    print("        achieved/bound %.2f (wall clock), %.2f (per CPU second)"
          % (float(r["gbps"]) / bound_gbps, bound_cpu / float(r["cpu_s_per_gb"])))
    top = [x for x in runs if x["mode"] == m][-1]
    print("        speedup of %s lanes over 1 lane: %.2fx (ideal %s)"
          % (top["lanes"], float(top["gbps"]) / float(r["gbps"]), top["lanes"]))
print("The AEAD alone (bench/aead_bench.c): seal + open of 1420-byte messages, one thread, each\n"
      "  message its own nonce (as the data path calls it), in CPU-s/GB (median of its rounds), as a\n"
      "  share of the openssl speed bound above, and of the streaming bound measured in the same\n"
      "  rounds (stream-*: what openssl speed does for ChaCha20-Poly1305, for AES-256-GCM too):")
stream = {a["suite"]: float(a["cpu_s_per_gb"]) for a in alone if a["impl"].startswith("stream-")}
for a in alone:
    m = a["suite"]
    bound_cpu = 2 / (kbps[m] * 1e3) * 1e9
    cost = float(a["cpu_s_per_gb"])
    if a["impl"].startswith("sg-"):
        note = "; the data path (1 lane) costs %.0f%% more, %.2f of streaming" % (
            (float(one[m]["cpu_s_per_gb"]) / cost - 1) * 100,
            stream[m] / float(one[m]["cpu_s_per_gb"]))
    elif a["impl"].startswith("stream-"):
        note = " (the bound)"
    else:
        note = " (measured only, not used)"
    print("  %-30s %6.3f CPU-s/GB, %.2f of openssl speed, %.2f of streaming%s"
          % (a["impl"], cost, bound_cpu / cost, float(a["of_stream"]), note))
print("load: %s" % sys.argv[9].strip())
PY
