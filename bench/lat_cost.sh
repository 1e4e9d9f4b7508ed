#!/bin/bash
# What the data path costs per byte (a diagnosis beside bench/throughput.sh, not part of make
# bench): MB megabytes of one TCP stream B->A through a pair of daemons while `perf stat`
# counts each daemon's CPU time (task-clock) and system calls; per GB and per MB, figures the
# machine's load moves less than throughput.
#   bench/lat_cost.sh [MB]   (root; SG_BIN, SG_BENCH_SGD_ENV as bench/throughput.sh;
#                             SG_BENCH_PAIRS=sg,fips, default both)
set -eu
MB=${1:-1000}
SRC=$(cd "$(dirname "$0")/.." && pwd)
SGD=${SG_BIN:-$SRC/build/bin}/secureguardd
SGC=$(dirname "$SGD")/secureguard
SGD_ENV=${SG_BENCH_SGD_ENV:-}
PAIRS=${SG_BENCH_PAIRS:-sg,fips}
. "$SRC/bench/pair_lib.sh"
pair_require
RES=$(mktemp -d /tmp/sgcost$$.XXXXXX)
pair_init sgc 2
pair_args() { case $1 in sg) echo "sg sg classic" ;; fips) echo "sg sg fips" ;; esac; }
run_pair() {
	local key=$1 n=$2 ev=task-clock,raw_syscalls:sys_enter
	pair_up "$key" "$n" "$3" "$4" "$5"
	perf stat -x, -e $ev -p "$PIDA" -o "$RES/$key.a" &
	local sa=$!
	perf stat -x, -e $ev -p "$PIDB" -o "$RES/$key.b" &
	local sb=$!
	sleep 0.5
	iperf_c "$RES/$key.json" -n "${MB}M"
	kill -INT $sa $sb
	wait $sa $sb 2>/dev/null || true
	echo >&2 # ends pair_run's progress line
	python3 - "$key" "$RES/$key.json" "$RES/$key.a" "$RES/$key.b" <<'EOF'
import json, sys
d = json.load(open(sys.argv[2]))["end"]["sum_received"]
mb = d["bytes"] / 1e6
for name, f in (("receiver A", sys.argv[3]), ("sender B", sys.argv[4])):
    v = {p[2]: float(p[0]) for p in (l.strip().split(",") for l in open(f))
         if len(p) > 2 and p[0].replace(".", "").isdigit()}
    print("%-5s %-10s %.3f CPU-s/GB %6.1f syscalls/MB  (%.0f MB at %.0f Mbit/s)" % (
        sys.argv[1], name, v.get("task-clock", 0) / mb, v.get("raw_syscalls:sys_enter", 0) / mb,
        mb, d["bits_per_second"] / 1e6))
EOF
}
pair_all sg fips
