#!/bin/bash
# Data-path benchmark: secureguardd against wireguard-go (what a user of a userspace WireGuard
# would run instead; this kernel has no WireGuard module), in the same run, through a tunnel
# between two network namespaces on a veth. For each pair of daemons it measures
#   - TCP throughput, 1 stream and 4 streams (iperf3, -P 4);
#   - UDP throughput, unthrottled (iperf3 -u -b 0 -l 1380, so an inner packet fits MTU 1420):
#     the rate received and the loss;
#   - CPU seconds per GB: utime+stime of both tunnel daemons (/proc/PID/stat) over the TCP
#     1-stream run, per 10^9 bytes received (kernel softirq time is not included);
#   - ping RTT through the tunnel, idle (200 pings) and while a TCP stream runs (SECONDS x 100
#     pings at 10 ms, at least 200): mean, p50 and p99 of the per-packet RTTs (bufferbloat and
#     head-of-line waits in the daemons; docs/DATAPATH.md, "Latency under load").
# and prints a table and the ratios secureguardd/wireguard-go and FIPS/classic.
#
#   bench/throughput.sh [SECONDS]     (root; build first with `make`; SECONDS per iperf3 run,
#                                      default 10, at least 2)
# Environment:
#   SG_BIN=DIR                 where secureguardd and secureguard are (default build/bin)
#   SG_BENCH_PAIRS=wg,sg,fips,mix   which pairs to run (default all four):
#       wg   wireguard-go <-> wireguard-go     sg   secureguardd <-> secureguardd (classic)
#       fips secureguardd <-> secureguardd in FIPS mode (P-384, AES-256-GCM)
#       mix  secureguardd (receiver) <-> wireguard-go (sender), TCP 1 stream only
#   SG_BENCH_SGD_ENV="K=V ..."  extra environment for every secureguardd process, e.g.
#       "SG_DISABLE_OFFLOAD=1", to compare daemon settings
#
# Each pair: namespace A runs the receiving side (iperf3 server), B the sender; outer veth
# 192.0.2.0/24, inner 10.77.0.0/24. Names carry the script's PID, so runs never collide.
set -eu
SECS=${1:-10}
case $SECS in '' | *[!0-9]*) SECS=0 ;; esac
[ "$SECS" -ge 2 ] || { echo "usage: bench/throughput.sh [SECONDS>=2]" >&2; exit 2; }
SRC=$(cd "$(dirname "$0")/.." && pwd)
SGD=${SG_BIN:-$SRC/build/bin}/secureguardd
SGC=$(dirname "$SGD")/secureguard
PAIRS=${SG_BENCH_PAIRS:-wg,sg,fips,mix}
NPING=$((SECS * 100 > 200 ? SECS * 100 : 200))
SGD_ENV=${SG_BENCH_SGD_ENV:-}
for p in ${PAIRS//,/ }; do
	case $p in wg | sg | fips | mix) ;; *)
		echo "bench: SG_BENCH_PAIRS: unknown pair '$p' (wg, sg, fips, mix)" >&2; exit 2 ;;
	esac
done
for kv in $SGD_ENV; do
	case $kv in [A-Za-z_]*=*) ;; *)
		echo "bench: SG_BENCH_SGD_ENV: '$kv' is not NAME=VALUE" >&2; exit 2 ;;
	esac
done
# shellcheck source=bench/pair_lib.sh
. "$SRC/bench/pair_lib.sh"
pair_require

RES=$(mktemp -d /tmp/sgbench$$.XXXXXX)
pair_init sgb 4

# json FILE EXPR -> value of the Python expression EXPR over the JSON document d
json() {
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2" \
		2>"$1.err" && return 0
	cat "$1.err" >&2
	echo "bench: $1: no $2 in iperf3's output:" >&2
	head -c 400 "$1" >&2
	return 1
}
# recj PAIR METRIC FILE EXPR: records a value read from iperf3's JSON; fails when it is not there.
recj() {
	local v
	v=$(json "$3" "$4")
	rec "$1" "$2" "$v"
}

rx_bytes() { ip netns exec "$NA" cat "/sys/class/net/$IFA/statistics/rx_bytes"; }

pair_args() { # KEY -> the arguments of run_pair after KEY N
	case $1 in
	wg) echo "wg wg classic full" ;;
	sg) echo "sg sg classic full" ;;
	fips) echo "sg sg fips full" ;;
	mix) echo "sg wg classic tcp1" ;;
	esac
}

# run_pair KEY N IMPL_A IMPL_B MODE WHAT (MODE classic|fips; WHAT full|tcp1). Runs in a subshell
# with its own traps; records its results with rec.
run_pair() {
	local key=$1 n=$2 ia=$3 ib=$4 mode=$5 what=$6
	pair_up "$key" "$n" "$ia" "$ib" "$mode"

	local t0 t1 out=$RES/$key
	t0=$(cpu_ticks "$PIDA" "$PIDB")
	iperf_c "$out.tcp1" -t "$SECS"
	t1=$(cpu_ticks "$PIDA" "$PIDB")
	recj "$key" tcp1 "$out.tcp1" 'd["end"]["sum_received"]["bits_per_second"]/1e6'
	recj "$key" cpu "$out.tcp1" "($t1-$t0)/$TCK/(d['end']['sum_received']['bytes']/1e9)"
	[ "$what" = full ] || return 0

	iperf_c "$out.tcp4" -t "$SECS" -P 4
	recj "$key" tcp4 "$out.tcp4" 'd["end"]["sum_received"]["bits_per_second"]/1e6'
	iperf_c "$out.udp" -t "$SECS" -u -b 0 -l 1380
	recj "$key" udp "$out.udp" 'd["end"]["sum_received"]["bits_per_second"]/1e6'
	recj "$key" udploss "$out.udp" 'd["end"]["sum_received"]["lost_percent"]'

	ping_rtts "$out.ping_idle" 200
	# Loaded: a TCP stream runs; ping once it carries data (bounded wait), then stop it.
	local base cpid
	base=$(rx_bytes)
	ip netns exec "$NB" iperf3 -c 10.77.0.1 -t $((SECS + 20)) >/dev/null 2>&1 &
	cpid=$!
	for _ in $(seq 60); do
		[ $(($(rx_bytes) - base)) -gt 4000000 ] && break
		sleep 0.05
	done
	ping_rtts "$out.ping_load" "$NPING"
	kill "$cpid" 2>/dev/null || true
	local which
	for which in idle load; do
		rec "$key" "ping_$which" "$(python3 - "$out.ping_$which" "$([ $which = idle ] && echo 200 || echo "$NPING")" <<'PY'
import re, sys
t = sorted(float(x) for x in re.findall(r"time=([0-9.]+) ms", open(sys.argv[1]).read()))
n = int(sys.argv[2])
if not t:
    print("nan,nan,nan,%d,%d" % (n, n))
else:
    p99 = t[min(len(t) - 1, int(round(0.99 * (len(t) - 1))))]
    print("%.3f,%.3f,%.3f,%d,%d" % (sum(t) / len(t), t[len(t) // 2], p99, n - len(t), n))
PY
)"
	done
}

printf 'secureguardd vs wireguard-go: 2 namespaces on a veth, %s s per iperf3 run, %s CPUs\n' \
	"$SECS" "$(nproc)"
printf '  secureguardd: %s%s\n' "$SGD" "${SGD_ENV:+ (env: $SGD_ENV)}"
printf '  wireguard-go: %s   iperf3: %s   kernel %s\n' \
	"$(dpkg-query -W -f='${Version}' wireguard-go 2>/dev/null || echo '?')" \
	"$(iperf3 --version | head -1 | cut -d' ' -f2)" "$(uname -r)"
pair_all wg sg fips mix

python3 - "$RES/results" "$PAIRS" "$NPING" <<'PY'
import math, sys
res = {}
for line in open(sys.argv[1]):
    k, m, v = line.split()
    res.setdefault(k, {})[m] = v
order = [p for p in ("wg", "sg", "fips", "mix") if p in sys.argv[2].split(",")]
label = {"wg": "wireguard-go <-> wireguard-go", "sg": "secureguardd <-> secureguardd",
         "fips": "secureguardd <-> secureguardd FIPS", "mix": "secureguardd <-> wireguard-go"}

def num(p, m, i=None):
    v = res.get(p, {}).get(m)
    if v is None:
        return None
    if i is not None:
        v = v.split(",")[i]
    v = float(v)
    return None if math.isnan(v) else v

def f(v, fmt):
    return "-" if v is None else fmt % v

print()
print("%-35s %7s %7s %7s %6s %7s  %-16s %s" % ("", "TCP 1", "TCP 4", "UDP rx", "UDP", "CPU",
      "ping idle ms", "ping load ms"))
print("%-35s %7s %7s %7s %6s %7s  %-16s %s" % ("pair", "Mbit/s", "Mbit/s", "Mbit/s", "loss%",
      "s/GB", "avg/p50/p99", "avg/p50/p99"))
lost = []
for p in order:
    if "failed" in res.get(p, {}):
        print("%-35s FAILED (see the messages above)" % label[p])
        continue
    pings = []
    for w in ("idle", "load"):
        a = [num(p, "ping_" + w, i) for i in range(5)]
        pings.append("-" if a[0] is None else "%.2f/%.2f/%.2f" % tuple(a[:3]))
        if a[3]:
            lost.append("%s %s: %d of %d pings lost" % (label[p], w, a[3], a[4]))
    print(("%-35s %7s %7s %7s %6s %7s  %-16s %s" % (label[p], f(num(p, "tcp1"), "%.0f"),
          f(num(p, "tcp4"), "%.0f"), f(num(p, "udp"), "%.0f"), f(num(p, "udploss"), "%.1f"),
          f(num(p, "cpu"), "%.2f"), pings[0], pings[1])).rstrip())
for l in lost:
    print("  note: " + l)
print("CPU s/GB: utime+stime of both tunnel daemons (/proc/PID/stat) over the TCP 1-stream run,\n"
      "  per 10^9 bytes received; kernel softirq time (veth, TUN, UDP/TCP stacks) is NOT included.\n"
      "UDP: iperf3 -u -b 0 -l 1380, received rate; loss = sent but not received (unthrottled sender).\n"
      "ping: at 10 ms B->A, 200 idle; %d under load = while one TCP iperf3 stream runs B->A.\n"
      "  p99 is the RTT 99%% of the pings were at or below." % int(sys.argv[3]))

def ratios(a, b):
    # a is the candidate, b the baseline; every ratio is printed so that >1 means a is better.
    if a not in order or b not in order or "failed" in res.get(a, {}) or "failed" in res.get(b, {}):
        return
    na, nb = {"sg": ("secureguardd classic", "wireguard-go"),
              "fips": ("FIPS", "classic")}[a]
    print("\nRatios %s vs %s; >1 means %s is better on every line:" % (na, nb, na))
    rows = [("TCP 1 stream", "tcp1", None, True), ("TCP 4 streams", "tcp4", None, True),
            ("UDP received", "udp", None, True), ("CPU s/GB", "cpu", None, False),
            ("ping idle avg", "ping_idle", 0, False), ("ping idle p99", "ping_idle", 2, False),
            ("ping loaded avg", "ping_load", 0, False), ("ping loaded p50", "ping_load", 1, False),
            ("ping loaded p99", "ping_load", 2, False)]
    for name, m, i, higher in rows:
        x, y = num(a, m, i), num(b, m, i)
        if x is None or y is None or x == 0 or y == 0:
            continue
        how = "%s / %s" % ((na, nb) if higher else (nb, na))
        print("  %-16s %6.2f   (%s)" % (name, x / y if higher else y / x, how))

ratios("sg", "wg")
ratios("fips", "sg")
if "mix" in order and "wg" in order and num("mix", "tcp1") and num("wg", "tcp1"):
    print("\nInterop pair TCP 1 stream / wireguard-go pair: %.2f"
          % (num("mix", "tcp1") / num("wg", "tcp1")))
PY
if grep -q ' failed ' "$RES/results"; then exit 1; fi
