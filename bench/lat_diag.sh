#!/bin/bash
# Where a ping waits under load (a diagnosis, not part of make bench): one pair of daemons as in
# bench/throughput.sh, one TCP stream B->A and SECONDS x 100 pings at 10 ms beside it.
#   - tcpdump on both TUN interfaces: per echo, the one-way time B->A (the request, with the
#     bulk stream: B's TUN queue, B's daemon, A's UDP socket, A's daemon) and A->B (the reply,
#     against the ACKs), beside the ping's RTT;
#   - ss every 50 ms: both UDP sockets' receive queues, the TCP sender's cwnd, srtt, unacked;
#   - TX drops of both TUN interfaces (a full TUN queue drops).
#   bench/lat_diag.sh [SECONDS]   (root; SG_BIN, SG_BENCH_SGD_ENV as bench/throughput.sh;
#                                  SG_DIAG_PAIR=sg|fips|wg, default sg)
set -eu
SECS=${1:-5}
SRC=$(cd "$(dirname "$0")/.." && pwd)
SGD=${SG_BIN:-$SRC/build/bin}/secureguardd
SGC=$(dirname "$SGD")/secureguard
SGD_ENV=${SG_BENCH_SGD_ENV:-}
PAIR=${SG_DIAG_PAIR:-sg}
. "$SRC/bench/pair_lib.sh"
pair_require
RES=$(mktemp -d /tmp/sgdiag$$.XXXXXX)
pair_init sgd 1
case $PAIR in sg) set -- sg sg classic ;; fips) set -- sg sg fips ;; wg) set -- wg wg classic ;; esac
(
pair_up diag 1 "$1" "$2" "$3"
ip netns exec "$NB" tcpdump -tt -n -i "$IFB" -w "$RES/b.pcap" icmp 2>/dev/null &
tpb=$!
ip netns exec "$NA" tcpdump -tt -n -i "$IFA" -w "$RES/a.pcap" icmp 2>/dev/null &
tpa=$!
sleep 1
ip netns exec "$NB" iperf3 -c 10.77.0.1 -t $((SECS + 3)) -J >"$RES/iperf.json" 2>&1 &
cpid=$!
sleep 1.5
( for i in $(seq $((SECS * 20))); do
	echo "T $(date +%s.%N)"
	ip netns exec "$NA" ss -Hnua 'sport = :51820' | sed 's/^/A /'
	ip netns exec "$NB" ss -Hnua 'sport = :51820' | sed 's/^/B /'
	ip netns exec "$NB" ss -Hnti 'dport = :5201' | tr -s ' \t' ' ' | sed 's/^/C /'
	sleep 0.05; done ) >"$RES/ss.txt" 2>&1 &
spid=$!
ip netns exec "$NB" ping -n -c $((SECS * 100)) -i 0.01 -W 2 10.77.0.1 >"$RES/ping.txt" 2>&1 || true
wait $cpid || true
kill $spid 2>/dev/null || true
sleep 0.5
kill -INT $tpb $tpa || true
sleep 0.5
ip -n "$NB" -s link show "$IFB" > "$RES/linkB.txt"
ip -n "$NA" -s link show "$IFA" > "$RES/linkA.txt"
python3 - "$RES" <<'PY'
import json, re, subprocess, sys, statistics as st
res = sys.argv[1]
def pkts(f):
    out = subprocess.run(["tcpdump", "-tt", "-n", "-r", f], capture_output=True, text=True).stdout
    d = {}
    for l in out.splitlines():
        m = re.match(r"([0-9.]+) IP (\S+) > (\S+): ICMP echo (request|reply), id \d+, seq (\d+)", l)
        if m:
            d.setdefault((m.group(4), int(m.group(5))), float(m.group(1)))
    return d
b, a = pkts(res + "/b.pcap"), pkts(res + "/a.pcap")
fw, bw = [], []
for (k, s), t in b.items():
    if k == "request" and ("request", s) in a:
        fw.append((a[("request", s)] - t) * 1e3)
    if k == "reply" and ("reply", s) in a:
        bw.append((t - a[("reply", s)]) * 1e3)
def pct(v):
    v = sorted(v)
    if not v: return "-"
    return "n=%d p50 %.2f p90 %.2f p99 %.2f max %.2f" % (len(v), v[len(v)//2], v[int(.9*(len(v)-1))], v[int(.99*(len(v)-1))], v[-1])
print("B->A (request: tunB xmit -> tunA rx):", pct(fw))
print("A->B (reply:   tunA xmit -> tunB rx):", pct(bw))
t = [float(x) for x in re.findall(r"time=([0-9.]+) ms", open(res + "/ping.txt").read())]
print("ping RTT                            :", pct(t))
try:
    d = json.load(open(res + "/iperf.json"))
    print("iperf3 TCP: %.0f Mbit/s, retransmits %s" % (d["end"]["sum_received"]["bits_per_second"]/1e6, d["end"]["sum_sent"].get("retransmits")))
except Exception as e:
    print("iperf3: ", e)
PY
python3 - "$RES/ss.txt" <<'PY'
import re, sys
A, B, cw, rtt, unacked = [], [], [], [], []
for l in open(sys.argv[1]):
    f = l.split()
    if l.startswith("A ") and len(f) > 3: A.append(int(f[2]))
    if l.startswith("B ") and len(f) > 3: B.append(int(f[2]))
    if l.startswith("C "):
        m = re.search(r" cwnd:(\d+)", l); m and cw.append(int(m.group(1)))
        m = re.search(r" rtt:([0-9.]+)", l); m and rtt.append(float(m.group(1)))
        m = re.search(r" unacked:(\d+)", l); m and unacked.append(int(m.group(1)))
def s(v, name):
    v = sorted(v)
    if v: print("%-28s n=%d p50 %s p90 %s max %s" % (name, len(v), v[len(v)//2], v[int(.9*(len(v)-1))], v[-1]))
s(A, "A udp Recv-Q bytes"); s(B, "B udp Recv-Q bytes"); s(cw, "B tcp cwnd (segs)"); s(rtt, "B tcp srtt ms"); s(unacked, "B tcp unacked (segs)")
PY
echo "TUN TX (bytes packets errors dropped ...): B $(grep -A1 'TX:' "$RES/linkB.txt" | tail -1)"
echo "                                          A $(grep -A1 'TX:' "$RES/linkA.txt" | tail -1)"
)
