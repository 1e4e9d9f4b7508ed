#!/bin/bash
# Data-path benchmark: secureguardd against wireguard-go (what a user of a userspace WireGuard
# would run instead; this kernel has no WireGuard module), in the same run, through a tunnel
# between two network namespaces on a veth. For each pair of daemons it measures
#   - TCP throughput, 1 stream and 4 streams (iperf3, -P 4);
#   - UDP throughput, unthrottled (iperf3 -u -b 0 -l 1380, so an inner packet fits MTU 1420):
#     the rate received and the loss;
#   - CPU seconds per GB: utime+stime of both tunnel daemons (/proc/PID/stat) over the TCP
#     1-stream run, per 10^9 bytes received (kernel softirq time is not included);
#   - ping RTT through the tunnel, idle and while a TCP stream runs (bufferbloat in the daemons).
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
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (namespaces, TUN)" >&2; exit 1; }
[ -x "$SGD" ] && [ -x "$SGC" ] || { echo "bench: $SGD or $SGC missing; run make first" >&2; exit 1; }
command -v iperf3 >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iperf3 >/dev/null
command -v wireguard-go >/dev/null || "$SRC/scripts/deps.sh"

TCK=$(getconf CLK_TCK)
ID=$$
RES=$(mktemp -d /tmp/sgbench$ID.XXXXXX)
ALL_NS=""
for k in 1 2 3 4; do ALL_NS="$ALL_NS sgbA${ID}_$k sgbB${ID}_$k"; done

# Ends every process running in the given namespaces (all of them started by this script:
# daemons, iperf3, ping), waits for them boundedly, then deletes the namespaces.
kill_ns() {
	local n pids
	for n in "$@"; do
		ip netns list | grep -qw "^$n" || continue
		pids=$(ip netns pids "$n" 2>/dev/null || true)
		[ -z "$pids" ] || kill $pids 2>/dev/null || true
		for _ in $(seq 40); do
			[ -z "$(ip netns pids "$n" 2>/dev/null)" ] && break
			sleep 0.05
		done
		pids=$(ip netns pids "$n" 2>/dev/null || true)
		[ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
		ip netns del "$n" 2>/dev/null || true
	done
}
cleanup() {
	kill_ns $ALL_NS
	wait 2>/dev/null || true
	rm -f /var/run/wireguard/sgb[ab]"$ID"_?.sock
	[ -n "${SG_BENCH_KEEP:-}" ] && echo "bench: kept $RES" >&2 || rm -rf "$RES"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

rec() { echo "$1 $2 $3" >>"$RES/results"; } # pair metric value

# cpu_ticks PID... -> utime+stime summed; the fields after the ")" of comm start at field 3.
cpu_ticks() {
	local p t=0 f
	for p; do
		f=$(sed 's/.*) //' "/proc/$p/stat")
		set -- $f
		t=$((t + ${12} + ${13}))
	done
	echo "$t"
}

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

# The iperf3 server takes one test at a time and may still be finishing the last one.
iperf_c() { # OUT ARGS... (client in B, to A's inner address)
	local out=$1
	shift
	for _ in $(seq 20); do
		# stderr apart: iperf3 warns there (UDP -l 1380 "exceeds TCP MSS" is harmless: 1380+28
		# bytes fit the tunnel's 1420 MTU; the MSS is smaller by the TCP timestamp option).
		if ip netns exec "$NB" iperf3 -c 10.77.0.1 -J "$@" >"$out" 2>"$out.stderr"; then
			return 0
		fi
		grep -q busy "$out" "$out.stderr" || break
		sleep 0.1
	done
	echo "bench: iperf3 -c $* failed:" >&2
	head -c 400 "$out" "$out.stderr" >&2
	return 1
}

ping_rtts() { # OUT -> ping B->A; per-packet RTTs in OUT
	ip netns exec "$NB" ping -n -c 100 -i 0.01 -W 2 10.77.0.1 >"$1" 2>&1 || true
}

rx_bytes() { ip netns exec "$NA" cat "/sys/class/net/$IFA/statistics/rx_bytes"; }

# run_pair KEY N IMPL_A IMPL_B MODE WHAT (MODE classic|fips; WHAT full|tcp1). Runs in a subshell
# with its own traps; records its results with rec.
run_pair() {
	local key=$1 n=$2 ia=$3 ib=$4 mode=$5 what=$6
	NA=sgbA${ID}_$n NB=sgbB${ID}_$n IFA=sgba${ID}_$n IFB=sgbb${ID}_$n
	local va=sgva${ID}_$n vb=sgvb${ID}_$n
	trap 'kill_ns $NA $NB' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	ip netns add "$NA"
	ip netns add "$NB"
	ip link add "$va" type veth peer name "$vb"
	ip link set "$va" netns "$NA"
	ip link set "$vb" netns "$NB"
	ip -n "$NA" addr add 192.0.2.1/24 dev "$va"
	ip -n "$NB" addr add 192.0.2.2/24 dev "$vb"
	for ns in "$NA" "$NB"; do ip -n "$ns" link set lo up; done
	ip -n "$NA" link set "$va" up
	ip -n "$NB" link set "$vb" up

	local pid
	start() { # NS IMPL IFNAME -> pid in $pid, once its UAPI socket is there
		if [ "$2" = sg ]; then
			ip netns exec "$1" env $SGD_ENV "$SGD" -f "$3" 2>"$RES/$3.log" &
		else
			ip netns exec "$1" env WG_PROCESS_FOREGROUND=1 wireguard-go "$3" >"$RES/$3.log" 2>&1 &
		fi
		pid=$!
		for _ in $(seq 100); do
			[ -S "/var/run/wireguard/$3.sock" ] && break
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		if [ ! -S "/var/run/wireguard/$3.sock" ]; then
			echo "bench: $2 daemon for $3 did not come up:" >&2
			tail -5 "$RES/$3.log" >&2
			return 1
		fi
		# `ip netns exec` and `env` exec, so $! is the daemon itself.
		case $(cat "/proc/$pid/comm") in secureguardd | wireguard-go) ;; *)
			echo "bench: pid $pid is not the $2 daemon" >&2; return 1 ;;
		esac
	}
	local pida pidb ka kb pa pb
	start "$NA" "$ia" "$IFA"
	pida=$pid
	start "$NB" "$ib" "$IFB"
	pidb=$pid
	ka=$(wg genkey) kb=$(wg genkey)
	pa=$(echo "$ka" | wg pubkey) pb=$(echo "$kb" | wg pubkey)
	ip netns exec "$NA" wg set "$IFA" listen-port 51820 private-key <(echo "$ka") \
		peer "$pb" allowed-ips 10.77.0.2/32
	ip netns exec "$NB" wg set "$IFB" listen-port 51820 private-key <(echo "$kb") \
		peer "$pa" allowed-ips 10.77.0.1/32 endpoint 192.0.2.1:51820
	if [ "$mode" = fips ]; then
		local fa fb fpa fpb
		fa=$("$SGC" genkey --fips) fb=$("$SGC" genkey --fips)
		fpa=$(echo "$fa" | "$SGC" pubkey --fips) fpb=$(echo "$fb" | "$SGC" pubkey --fips)
		ip netns exec "$NA" "$SGC" set "$IFA" fips-private-key <(echo "$fa") crypto-mode fips \
			peer "$pb" fips-public-key "$fpb"
		ip netns exec "$NB" "$SGC" set "$IFB" fips-private-key <(echo "$fb") crypto-mode fips \
			peer "$pa" fips-public-key "$fpa"
	fi
	ip -n "$NA" addr add 10.77.0.1/24 dev "$IFA"
	ip -n "$NB" addr add 10.77.0.2/24 dev "$IFB"
	ip -n "$NA" link set "$IFA" up
	ip -n "$NB" link set "$IFB" up

	# The first ping starts the handshake; allow for it to be lost once or twice.
	local ok=0
	for _ in $(seq 10); do
		ip netns exec "$NB" ping -n -c 1 -W 1 10.77.0.1 >/dev/null 2>&1 && { ok=1; break; }
	done
	[ "$ok" = 1 ] || { echo "bench: $key: no ping through the tunnel" >&2; return 1; }
	if [ "$mode" = fips ]; then
		ip netns exec "$NB" "$SGC" show "$IFB" | grep -qi fips ||
			{ echo "bench: $key: interface does not report FIPS mode" >&2; return 1; }
	fi

	ip netns exec "$NA" iperf3 -s -B 10.77.0.1 >/dev/null 2>&1 &
	for _ in $(seq 100); do
		[ -n "$(ip netns exec "$NA" ss -Hltn 'sport = :5201')" ] && break
		sleep 0.05
	done

	local t0 t1 out=$RES/$key
	t0=$(cpu_ticks "$pida" "$pidb")
	iperf_c "$out.tcp1" -t "$SECS"
	t1=$(cpu_ticks "$pida" "$pidb")
	recj "$key" tcp1 "$out.tcp1" 'd["end"]["sum_received"]["bits_per_second"]/1e6'
	recj "$key" cpu "$out.tcp1" "($t1-$t0)/$TCK/(d['end']['sum_received']['bytes']/1e9)"
	[ "$what" = full ] || return 0

	iperf_c "$out.tcp4" -t "$SECS" -P 4
	recj "$key" tcp4 "$out.tcp4" 'd["end"]["sum_received"]["bits_per_second"]/1e6'
	iperf_c "$out.udp" -t "$SECS" -u -b 0 -l 1380
	recj "$key" udp "$out.udp" 'd["end"]["sum_received"]["bits_per_second"]/1e6'
	recj "$key" udploss "$out.udp" 'd["end"]["sum_received"]["lost_percent"]'

	ping_rtts "$out.ping_idle"
	# Loaded: a TCP stream runs; ping once it carries data (bounded wait), then stop it.
	local base cpid
	base=$(rx_bytes)
	ip netns exec "$NB" iperf3 -c 10.77.0.1 -t $((SECS + 20)) >/dev/null 2>&1 &
	cpid=$!
	for _ in $(seq 60); do
		[ $(($(rx_bytes) - base)) -gt 4000000 ] && break
		sleep 0.05
	done
	ping_rtts "$out.ping_load"
	kill "$cpid" 2>/dev/null || true
	local which
	for which in idle load; do
		rec "$key" "ping_$which" "$(python3 - "$out.ping_$which" <<'PY'
import re, sys
t = sorted(float(x) for x in re.findall(r"time=([0-9.]+) ms", open(sys.argv[1]).read()))
if not t:
    print("nan,nan,nan,100")
else:
    p99 = t[min(len(t) - 1, int(round(0.99 * (len(t) - 1))))]
    print("%.3f,%.3f,%.3f,%d" % (sum(t) / len(t), t[len(t) // 2], p99, 100 - len(t)))
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
n=0
for p in wg sg fips mix; do
	case ",$PAIRS," in *",$p,"*) ;; *) continue ;; esac
	n=$((n + 1))
	case $p in
	wg) args="wg wg classic full" ;;
	sg) args="sg sg classic full" ;;
	fips) args="sg sg fips full" ;;
	mix) args="sg wg classic tcp1" ;;
	esac
	printf '  running %-4s ...' "$p" >&2
	s=$(date +%s)
	set +e
	(set -e; run_pair "$p" "$n" $args)
	rc=$?
	set -e
	[ "$rc" -eq 0 ] || { rec "$p" failed 1; printf ' FAILED' >&2; }
	printf ' %ss\n' $(($(date +%s) - s)) >&2
done

touch "$RES/results"
python3 - "$RES/results" "$PAIRS" <<'PY'
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
        a = [num(p, "ping_" + w, i) for i in range(4)]
        pings.append("-" if a[0] is None else "%.2f/%.2f/%.2f" % tuple(a[:3]))
        if a[3]:
            lost.append("%s %s: %d of 100 pings lost" % (label[p], w, a[3]))
    print(("%-35s %7s %7s %7s %6s %7s  %-16s %s" % (label[p], f(num(p, "tcp1"), "%.0f"),
          f(num(p, "tcp4"), "%.0f"), f(num(p, "udp"), "%.0f"), f(num(p, "udploss"), "%.1f"),
          f(num(p, "cpu"), "%.2f"), pings[0], pings[1])).rstrip())
for l in lost:
    print("  note: " + l)
print("CPU s/GB: utime+stime of both tunnel daemons (/proc/PID/stat) over the TCP 1-stream run,\n"
      "  per 10^9 bytes received; kernel softirq time (veth, TUN, UDP/TCP stacks) is NOT included.\n"
      "UDP: iperf3 -u -b 0 -l 1380, received rate; loss = sent but not received (unthrottled sender).\n"
      "ping: 100 pings at 10 ms B->A; load = while one TCP iperf3 stream runs B->A.")

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
            ("ping loaded avg", "ping_load", 0, False), ("ping loaded p99", "ping_load", 2, False)]
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
