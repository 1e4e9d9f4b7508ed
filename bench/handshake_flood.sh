#!/bin/bash
# Does a flood of WireGuard handshake initiations starve an established tunnel's data?
# secureguardd against wireguard-go, in the same run. For each pair of daemons (as
# bench/throughput.sh sets them up: namespace A = receiver, iperf3 server and flood victim;
# B = sender), it measures TCP throughput (iperf3, 1 stream B->A) and ping RTT B->A without a
# flood, then again while bench/flood_gen.c floods A's UDP port from B's namespace (source
# 192.0.2.2, another port than B's daemon) at 200 and 2000 initiations/s:
#   wg    wireguard-go pair, classic flood
#   sg    secureguardd pair, classic flood
#   fips  secureguardd pair in FIPS mode, FIPS flood (P-384 initiations)
# The initiations are valid (mac1 verifies; they come from 256 random static keys the victim
# does not know), so the victim must do the Noise work (the es DH, decrypting the static key)
# before it can drop them, unless it is under load and answers with a cookie reply instead.
# Prints a table (Mbit/s, ping, the fraction retained) and the ratio of retained throughput
# secureguardd / wireguard-go; for secureguardd also the victim's own counters over each flood
# (SIGUSR1 makes it log them at INFO; it runs with -f, its stderr in a file).
#
#   bench/handshake_flood.sh [SECONDS]     (root; SECONDS per iperf3 run, default 5, at least 2)
# Environment:
#   SG_BUILD=DIR   build directory with the static libraries flood_gen links (default build/)
#   SG_BIN=DIR     where secureguardd and secureguard are (default build/bin)
#   SG_FLOOD_RATES="200 2000"   flood rates, initiations/s
#   SG_BENCH_PAIRS=wg,sg,fips   which pairs to run
# Names carry the script's PID, so runs never collide with other benchmarks.
set -eu
SECS=${1:-5}
case $SECS in '' | *[!0-9]*) SECS=0 ;; esac
[ "$SECS" -ge 2 ] || { echo "usage: bench/handshake_flood.sh [SECONDS>=2]" >&2; exit 2; }
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${SG_BUILD:-$SRC/build}
SGD=${SG_BIN:-$SRC/build/bin}/secureguardd
SGC=$(dirname "$SGD")/secureguard
RATES=${SG_FLOOD_RATES:-200 2000}
PAIRS=${SG_BENCH_PAIRS:-wg,sg,fips}
for r in $RATES; do
	case $r in '' | *[!0-9]* | 0) echo "bench: SG_FLOOD_RATES: '$r' is not a rate" >&2; exit 2 ;; esac
done
for p in ${PAIRS//,/ }; do
	case $p in wg | sg | fips) ;; *)
		echo "bench: SG_BENCH_PAIRS: unknown pair '$p' (wg, sg, fips)" >&2; exit 2 ;;
	esac
done
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (namespaces, TUN)" >&2; exit 1; }
[ -x "$SGD" ] && [ -x "$SGC" ] || { echo "bench: $SGD or $SGC missing; run make first" >&2; exit 1; }
command -v iperf3 >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iperf3 >/dev/null
command -v wireguard-go >/dev/null || "$SRC/scripts/deps.sh"
libs=()
for l in sg_wg sg_config sg_crypto sg_common; do
	f=$(find "$BUILD" -maxdepth 3 -name "lib$l.a" -print -quit 2>/dev/null || true)
	[ -n "$f" ] || { echo "bench: lib$l.a not under $BUILD; run make (or set SG_BUILD)" >&2; exit 1; }
	libs+=("$f")
done

TCK=$(getconf CLK_TCK)
ID=$$
RES=$(mktemp -d /tmp/sgflood$ID.XXXXXX)
ALL_NS=""
for k in 1 2 3; do ALL_NS="$ALL_NS sgfA${ID}_$k sgfB${ID}_$k"; done

# Ends every process running in the given namespaces (all of them started by this script:
# daemons, iperf3, ping, flood_gen), waits for them boundedly, then deletes the namespaces.
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
	rm -f /var/run/wireguard/sgf[ab]"$ID"_?.sock
	[ -n "${SG_BENCH_KEEP:-}" ] && echo "bench: kept $RES" >&2 || rm -rf "$RES"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

FG=$RES/flood_gen
cc -std=c17 -O2 -D_GNU_SOURCE -I"$SRC/src" -I"$SRC/include" "$SRC/bench/flood_gen.c" \
	"${libs[@]}" -lcrypto -o "$FG"

rec() { echo "$1 $2 $3" >>"$RES/results"; } # pair metric value (no spaces in value)

cpu_ticks() { # PID... -> utime+stime summed; the fields after the ")" of comm start at field 3
	local p t=0 f
	for p; do
		f=$(sed 's/.*) //' "/proc/$p/stat")
		set -- $f
		t=$((t + ${12} + ${13}))
	done
	echo "$t"
}

# The iperf3 server takes one test at a time and may still be finishing the last one.
iperf_c() { # OUT ARGS... (client in B, to A's inner address) -> Mbit/s received
	local out=$1
	shift
	for _ in $(seq 20); do
		if ip netns exec "$NB" iperf3 -c 10.77.0.1 -J "$@" >"$out" 2>"$out.stderr"; then
			python3 -c 'import json,sys
print("%.1f" % (json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"] / 1e6))' \
				"$out" && return 0
			break
		fi
		grep -q busy "$out" "$out.stderr" || break
		sleep 0.1
	done
	echo "bench: iperf3 -c $* failed:" >&2
	head -c 400 "$out" "$out.stderr" >&2
	return 1
}

ping_stat() { # OUT -> "avg,lost" of 100 pings B->A at 10 ms
	ip netns exec "$NB" ping -n -c 100 -i 0.01 -W 2 10.77.0.1 >"$1" 2>&1 || true
	python3 - "$1" <<'PY'
import re, sys
t = [float(x) for x in re.findall(r"time=([0-9.]+) ms", open(sys.argv[1]).read())]
print("%s,%d" % ("%.3f" % (sum(t) / len(t)) if t else "nan", 100 - len(t)))
PY
}

# SIGUSR1 to a secureguardd, then its counters from the stats line it logs (bounded wait).
sg_stats() { # LOG PID -> "name=value,..." of the counters that matter here
	local before n=0
	before=$(grep -c 'event=stats' "$1" || true)
	kill -USR1 "$2"
	for _ in $(seq 60); do
		n=$(grep -c 'event=stats' "$1" || true)
		[ "$n" -gt "$before" ] && break
		sleep 0.05
	done
	[ "$n" -gt "$before" ] || { echo "bench: no stats line from secureguardd $2" >&2; return 1; }
	grep 'event=stats' "$1" | tail -1 | tr ' ' '\n' |
		grep -E '^(udp_rx|rx_bad_mac|rx_handshake_fail|rx_rate_limited|rx_cookie_sent|handshake_queue_full)=' |
		paste -sd,
}

# run_pair KEY N IMPL MODE: both ends IMPL (sg|wg), crypto MODE (classic|fips). Runs in a
# subshell with its own traps; records its results with rec.
run_pair() {
	local key=$1 n=$2 impl=$3 mode=$4
	NA=sgfA${ID}_$n NB=sgfB${ID}_$n
	local ifa=sgfa${ID}_$n ifb=sgfb${ID}_$n va=sgfva${ID}_$n vb=sgfvb${ID}_$n
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
	start() { # NS IFNAME -> pid in $pid, once its UAPI socket is there
		if [ "$impl" = sg ]; then
			ip netns exec "$1" "$SGD" -f "$2" 2>"$RES/$2.log" &
		else
			ip netns exec "$1" env WG_PROCESS_FOREGROUND=1 wireguard-go "$2" >"$RES/$2.log" 2>&1 &
		fi
		pid=$!
		for _ in $(seq 100); do
			[ -S "/var/run/wireguard/$2.sock" ] && break
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		if [ ! -S "/var/run/wireguard/$2.sock" ]; then
			echo "bench: $impl daemon for $2 did not come up:" >&2
			tail -5 "$RES/$2.log" >&2
			return 1
		fi
		# `ip netns exec` and `env` exec, so $! is the daemon itself.
		case $(cat "/proc/$pid/comm") in secureguardd | wireguard-go) ;; *)
			echo "bench: pid $pid is not the $impl daemon" >&2; return 1 ;;
		esac
	}
	local pida pidb ka kb pa pb victim fgmode=
	start "$NA" "$ifa"
	pida=$pid
	start "$NB" "$ifb"
	pidb=$pid
	ka=$(wg genkey) kb=$(wg genkey)
	pa=$(echo "$ka" | wg pubkey) pb=$(echo "$kb" | wg pubkey)
	ip netns exec "$NA" wg set "$ifa" listen-port 51820 private-key <(echo "$ka") \
		peer "$pb" allowed-ips 10.77.0.2/32
	ip netns exec "$NB" wg set "$ifb" listen-port 51820 private-key <(echo "$kb") \
		peer "$pa" allowed-ips 10.77.0.1/32 endpoint 192.0.2.1:51820
	victim=$pa
	if [ "$mode" = fips ]; then
		local fa fb fpa fpb
		fa=$("$SGC" genkey --fips) fb=$("$SGC" genkey --fips)
		fpa=$(echo "$fa" | "$SGC" pubkey --fips) fpb=$(echo "$fb" | "$SGC" pubkey --fips)
		ip netns exec "$NA" "$SGC" set "$ifa" fips-private-key <(echo "$fa") crypto-mode fips \
			peer "$pb" fips-public-key "$fpb"
		ip netns exec "$NB" "$SGC" set "$ifb" fips-private-key <(echo "$fb") crypto-mode fips \
			peer "$pa" fips-public-key "$fpa"
		victim=$fpa fgmode=-f
	fi
	ip -n "$NA" addr add 10.77.0.1/24 dev "$ifa"
	ip -n "$NB" addr add 10.77.0.2/24 dev "$ifb"
	ip -n "$NA" link set "$ifa" up
	ip -n "$NB" link set "$ifb" up

	# The first ping starts the handshake; allow for it to be lost once or twice.
	local ok=0
	for _ in $(seq 10); do
		ip netns exec "$NB" ping -n -c 1 -W 1 10.77.0.1 >/dev/null 2>&1 && { ok=1; break; }
	done
	[ "$ok" = 1 ] || { echo "bench: $key: no ping through the tunnel" >&2; return 1; }
	if [ "$mode" = fips ]; then
		ip netns exec "$NB" "$SGC" show "$ifb" | grep -qi fips ||
			{ echo "bench: $key: interface does not report FIPS mode" >&2; return 1; }
	fi

	ip netns exec "$NA" iperf3 -s -B 10.77.0.1 >/dev/null 2>&1 &
	for _ in $(seq 100); do
		[ -n "$(ip netns exec "$NA" ss -Hltn 'sport = :5201')" ] && break
		sleep 0.05
	done

	local out=$RES/$key t0 t1 v
	t0=$(cpu_ticks "$pida")
	v=$(iperf_c "$out.tcp_0" -t "$SECS")
	t1=$(cpu_ticks "$pida")
	rec "$key" tcp_0 "$v"
	rec "$key" vcpu_0 "$(((t1 - t0) * 100 / TCK / SECS))"
	rec "$key" ping_0 "$(ping_stat "$out.ping_0")"
	local before= after fpid rate
	[ "$impl" = sg ] && before=$(sg_stats "$RES/$ifa.log" "$pida")
	for rate in $RATES; do
		# The flood outlives the measurements (bounded by -t) and is stopped with SIGTERM.
		ip netns exec "$NB" "$FG" $fgmode -k "$victim" -d 192.0.2.1:51820 -s 192.0.2.2:51999 \
			-n 256 -r "$rate" -t $((SECS + 30)) >"$out.flood_$rate" 2>&1 &
		fpid=$!
		for _ in $(seq 300); do
			grep -q '^ready' "$out.flood_$rate" && break
			kill -0 "$fpid" 2>/dev/null || break
			sleep 0.05
		done
		grep -q '^ready' "$out.flood_$rate" ||
			{ echo "bench: $key: flood_gen did not start:" >&2; cat "$out.flood_$rate" >&2; return 1; }
		t0=$(cpu_ticks "$pida")
		v=$(iperf_c "$out.tcp_$rate" -t "$SECS")
		t1=$(cpu_ticks "$pida")
		rec "$key" "tcp_$rate" "$v"
		rec "$key" "vcpu_$rate" "$(((t1 - t0) * 100 / TCK / SECS))"
		rec "$key" "ping_$rate" "$(ping_stat "$out.ping_$rate")"
		kill -TERM "$fpid"
		wait "$fpid" || { echo "bench: $key: flood_gen failed:" >&2; cat "$out.flood_$rate" >&2; return 1; }
		rec "$key" "flood_$rate" "$(tail -1 "$out.flood_$rate" | tr ' ' ',')"
		if [ "$impl" = sg ]; then
			after=$(sg_stats "$RES/$ifa.log" "$pida")
			rec "$key" "ctr_$rate" "$before;$after"
			before=$after
		fi
	done
}

printf 'Handshake flood vs an established tunnel: 2 namespaces on a veth, %s s per iperf3 run\n' "$SECS"
printf '  secureguardd: %s   wireguard-go: %s   kernel %s\n' "$SGD" \
	"$(dpkg-query -W -f='${Version}' wireguard-go 2>/dev/null || echo '?')" "$(uname -r)"
# Other benchmarks on these cores (perhaps in other containers, invisible to ps) skew the
# numbers; the load average, system-wide, shows them.
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
n=0
for p in wg sg fips; do
	case ",$PAIRS," in *",$p,"*) ;; *) continue ;; esac
	n=$((n + 1))
	case $p in
	wg) args="wg classic" ;;
	sg) args="sg classic" ;;
	fips) args="sg fips" ;;
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
python3 - "$RES/results" "$PAIRS" "$RATES" "$(nproc)" "$LOAD0" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import math, sys
res = {}
for line in open(sys.argv[1]):
    k, m, v = line.split()
    res.setdefault(k, {})[m] = v
order = [p for p in ("wg", "sg", "fips") if p in sys.argv[2].split(",")]
rates = sys.argv[3].split()
label = {"wg": "wireguard-go (classic)", "sg": "secureguardd (classic)",
         "fips": "secureguardd FIPS"}

def num(p, m, i=None):
    v = res.get(p, {}).get(m)
    if v is None:
        return None
    if i is not None:
        v = v.split(",")[i]
    v = float(v)
    return None if math.isnan(v) else v

def kv(s):
    return dict(x.split("=", 1) for x in s.split(",") if "=" in x)

def f(v, fmt):
    return "-" if v is None else fmt % v

print()
print("%-24s %7s %9s %8s %8s %9s %8s %5s %7s %7s" % ("", "flood", "sent", "TCP", "TCP",
      "ping avg", "ping", "ping", "victim", "flooder"))
print("%-24s %7s %9s %8s %8s %9s %8s %5s %7s %7s" % ("pair", "init/s", "init/s", "Mbit/s",
      "retained", "ms", "idle/fl", "lost", "CPU%", "CPU%"))
for p in order:
    if "failed" in res.get(p, {}):
        print("%-24s FAILED (see the messages above)" % label[p])
        continue
    t0, p0 = num(p, "tcp_0"), num(p, "ping_0", 0)
    print("%-24s %7s %9s %8s %8s %9s %8s %5s %7s %7s" % (label[p], "none", "-", f(t0, "%.0f"),
          "1.00", f(p0, "%.3f"), "1.00", f(num(p, "ping_0", 1), "%.0f"),
          f(num(p, "vcpu_0"), "%.0f"), "-"))
    for r in rates:
        t, pg = num(p, "tcp_" + r), num(p, "ping_" + r, 0)
        fl = kv(res[p].get("flood_" + r, ""))
        ach = float(fl["achieved_rate"]) if "achieved_rate" in fl else None
        fcpu = 100 * float(fl["cpu_s"]) / float(fl["secs"]) if "cpu_s" in fl else None
        print("%-24s %7s %9s %8s %8s %9s %8s %5s %7s %7s" % ("", r, f(ach, "%.0f"),
              f(t, "%.0f"), f(t / t0 if t and t0 else None, "%.2f"), f(pg, "%.3f"),
              f(p0 / pg if pg and p0 else None, "%.2f"), f(num(p, "ping_" + r, 1), "%.0f"),
              f(num(p, "vcpu_" + r), "%.0f"), f(fcpu, "%.0f")))
print("retained = TCP with flood / TCP without; ping idle/fl = avg RTT without / with flood (<1:\n"
      "  slower under flood). ping: 100 pings at 10 ms B->A, run after iperf3 with the flood still on.\n"
      "victim CPU%% = utime+stime of the receiving (flooded) daemon over the iperf3 run; flooder CPU%%\n"
      "  = flood_gen's over its blast. This machine has %s CPUs shared by the flooder, both daemons and\n"
      "  iperf3: the flooder's CPU competes with the tunnel too, not only the victim's handshake work.\n"
      "Load average (1/5/15 min, system-wide) before the pairs: %s, after: %s.\n"
      "  The value before is other work (other benchmarks, other containers). With the 1-min value\n"
      "  before near 1 on 2 CPUs, runs of this script differed by up to 0.5 in a retained fraction\n"
      "  (the victim's CPU%% falling with it): repeat a run before reading a difference."
      % (sys.argv[4], sys.argv[5], sys.argv[6]))

def retained(p, r):
    if "failed" in res.get(p, {}):
        return None
    t0, t = num(p, "tcp_0"), num(p, "tcp_" + r)
    return t / t0 if t and t0 else None

for cand in ("sg", "fips"):
    if cand not in order or "wg" not in order:
        continue
    parts = []
    for r in rates:
        a, b = retained(cand, r), retained("wg", r)
        if a is not None and b is not None:
            parts.append("%s/s: %.2f / %.2f = %.2f" % (r, a, b, a / b))
    if parts:
        print("\nThroughput retained under flood, %s vs wireguard-go (>1: %s keeps more):\n  %s"
              % (label[cand], label[cand].split(" ")[0], "\n  ".join(parts)))

names = ["udp_rx", "rx_bad_mac", "rx_handshake_fail", "rx_rate_limited", "rx_cookie_sent",
         "handshake_queue_full"]
rows = []
for p in ("sg", "fips"):
    if p not in order or "failed" in res.get(p, {}):
        continue
    for r in rates:
        c = res[p].get("ctr_" + r)
        if not c:
            continue
        b, a = (kv(x) for x in c.split(";"))
        fl = kv(res[p].get("flood_" + r, ""))
        rows.append([label[p], r, fl.get("sent", "-")] +
                    [str(int(a[k]) - int(b[k])) if k in a and k in b else "-" for k in names] +
                    [fl.get("cookie_replies", "-")])
if rows:
    print("\nVictim secureguardd counters over each flood (SIGUSR1 stats lines, after - before):")
    hdr = ["pair", "init/s", "flood sent"] + names + ["cookies seen by flooder"]
    w = [max(len(str(x[i])) for x in rows + [hdr]) for i in range(len(hdr))]
    for row in [hdr] + rows:
        print("  " + "  ".join(str(x).rjust(w[i]) if i else str(x).ljust(w[i])
                               for i, x in enumerate(row)))
    print("  udp_rx also counts the tunnel's own datagrams; a flood initiation that passed mac1 and\n"
          "  the Noise work ends in rx_handshake_fail (unknown initiator), one answered by a cookie\n"
          "  (under load) in rx_cookie_sent, one not taken into the daemon's full queue in\n"
          "  handshake_queue_full.")
PY
if grep -q ' failed ' "$RES/results"; then exit 1; fi
