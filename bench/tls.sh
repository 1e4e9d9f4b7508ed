#!/bin/bash
# The TLS transport beside UDP, and OpenVPN over TCP (what a user whose network passes only TCP
# would otherwise run), in the same run, between two network namespaces on a veth:
#   - iperf3 TCP throughput through the tunnel (the TCP-over-TCP case)
#   - ping RTT through the tunnel, idle and under that load
#   - the same with 1% loss on the outer link (netem, when the kernel has it), where TCP-over-TCP
#     meltdown would show
#
#   bench/tls.sh [SECONDS]          (root; build first with `make`; installs iperf3, openvpn)
#   COST_MB=200 bench/tls.sh 0      (the cost run below only)
#
# COST_MB=200 adds a run that sends that many MB over TLS while `perf stat` counts each daemon's
# CPU time and system calls: per-byte figures that the machine's load moves less. COST_CALLS=1
# also counts read(2), write(2), epoll_wait(2) and, through uprobes on libssl (which cost time:
# the CPU figure of such a run is not comparable), SSL_read and SSL_write calls per MB.
#
# Ping under load: one ping every 50 ms while iperf3 runs (from its second second to its end);
# the rows give the median and the 99th percentile (of 40-200 samples that is the largest but
# one or two), not the mean.
set -eu
SECS=${1:-10}
SRC=$(cd "$(dirname "$0")/.." && pwd)
BIN=${SG_BIN:-$SRC/build/bin}
SGD=$BIN/secureguardd SGC=$BIN/secureguard
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (namespaces, TUN)" >&2; exit 1; }
[ -x "$SGD" ] && [ -x "$SGC" ] || { echo "bench: $BIN has no secureguardd/secureguard; run make first" >&2; exit 1; }
for t in iperf3 openvpn; do
	command -v $t >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $t >/dev/null
done
command -v openvpn >/dev/null || echo "bench: openvpn not installable; its rows are skipped" >&2

ID=t$$
NA=sgtA$ID NB=sgtB$ID
TMP=$(mktemp -d)
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	ip netns del "$NA" 2>/dev/null || true
	ip netns del "$NB" 2>/dev/null || true
	rm -f /var/run/wireguard/sgta$ID.sock /var/run/wireguard/sgtb$ID.sock
}
trap 'cleanup; rm -rf "$TMP"' EXIT

wait_for() { # SECS CMD...
	local end=$((SECONDS + $1)); shift
	until "$@" >/dev/null 2>&1; do [ $SECONDS -lt "$end" ] || return 1; sleep 0.1; done
}

netns_pair() {
	ip netns add "$NA"; ip netns add "$NB"
	ip link add va$ID type veth peer name vb$ID
	ip link set va$ID netns "$NA"; ip link set vb$ID netns "$NB"
	ip -n "$NA" addr add 192.0.2.1/24 dev va$ID; ip -n "$NB" addr add 192.0.2.2/24 dev vb$ID
	for n in "$NA" "$NB"; do ip -n "$n" link set lo up; done
	ip -n "$NA" link set va$ID up; ip -n "$NB" link set vb$ID up
	if [ "${LOSS:-0}" != 0 ]; then
		ip netns exec "$NA" tc qdisc add dev va$ID root netem loss "$LOSS%"
		ip netns exec "$NB" tc qdisc add dev vb$ID root netem loss "$LOSS%"
	fi
}

# pctl FILE: "p50 p99" of ping's time= values in FILE (nan nan without any).
pctl() {
	python3 - "$1" <<'EOF'
import re, sys
v = sorted(float(m) for m in re.findall(r"time=([0-9.]+)", open(sys.argv[1]).read()))
q = lambda p: v[min(len(v) - 1, int(p * len(v)))]
print("%.1f %.1f" % (q(0.5), q(0.99)) if v else "nan nan")
EOF
}

# measure: prints "Mbit/s idle_rtt_ms loaded_p50_ms loaded_p99_ms" through 10.77.0.1 from B.
measure() {
	local mbit idle n=$(((SECS - 1) * 20))
	idle=$(ip netns exec "$NB" ping -c 10 -i 0.1 -q 10.77.0.1 | awk -F/ '/^rtt/ {print $5}')
	ip netns exec "$NA" iperf3 -s -1 -D -B 10.77.0.1 >/dev/null
	sleep 0.3
	ip netns exec "$NB" iperf3 -c 10.77.0.1 -t "$SECS" -J >"$TMP/iperf.json" 2>/dev/null &
	local ip=$!
	sleep 1
	ip netns exec "$NB" ping -c $((n > 20 ? n : 20)) -i 0.05 -W 2 10.77.0.1 >"$TMP/ping" 2>&1 || true
	wait $ip || true
	mbit=$(python3 -c 'import json,sys; print("%.0f" % (json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"]/1e6))' "$TMP/iperf.json" 2>/dev/null || echo 0)
	echo "$mbit ${idle:-nan} $(pctl "$TMP/ping")"
}

# cost: COST_MB through the tunnel from B with perf stat on both daemons (PIDS: A, then B).
cost() {
	local pa pb ev=task-clock,raw_syscalls:sys_enter
	[ -n "${COST_CALLS:-}" ] && ev=$ev,syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex,probe_libssl:SSL_read,probe_libssl:SSL_write
	read -r pa pb <<<"$PIDS"
	ip netns exec "$NA" iperf3 -s -1 -D -B 10.77.0.1 >/dev/null
	sleep 0.3
	perf stat -x, -e $ev -p "$pa" -o "$TMP/cost-a" & local sa=$!
	perf stat -x, -e $ev -p "$pb" -o "$TMP/cost-b" & local sb=$!
	sleep 0.5
	ip netns exec "$NB" iperf3 -c 10.77.0.1 -n "${COST_MB}M" -J >"$TMP/iperf.json" 2>/dev/null || true
	kill -INT $sa $sb; wait $sa $sb 2>/dev/null || true
	python3 - "$TMP/iperf.json" "$TMP/cost-a" "$TMP/cost-b" <<'EOF'
import json, sys
mb = json.load(open(sys.argv[1]))["end"]["sum_received"]["bytes"] / 1e6
for name, f in (("receiver", sys.argv[2]), ("sender", sys.argv[3])):
    v = {p[2]: float(p[0]) for p in (l.strip().split(",") for l in open(f))
         if len(p) > 2 and p[0].replace(".", "").isdigit()}
    print("  tls %-8s %.2f CPU-s/GB, %.0f syscalls/MB (%.0f MB)" % (
        name, v.get("task-clock", 0) / mb, v.get("raw_syscalls:sys_enter", 0) / mb, mb))
    calls = [(k.split(":")[-1].replace("sys_enter_", ""), v[k] / mb) for k in sorted(v)
             if k.startswith(("syscalls:", "probe_libssl:"))]
    if calls:
        print("      per MB: " + ", ".join("%s %.1f" % c for c in calls))
EOF
}

# secureguardd pair over udp or tls
run_sg() {
	local mode=$1 ifa=sgta$ID ifb=sgtb$ID ka kb pa pb
	netns_pair
	"$SGC" cert ca --out "$TMP/ca" >/dev/null 2>&1 || true
	[ -f "$TMP/a/a.crt" ] || "$SGC" cert issue --ca "$TMP/ca" --name a --ip 192.0.2.1 --out "$TMP/a" >/dev/null
	[ -f "$TMP/b/b.crt" ] || "$SGC" cert issue --ca "$TMP/ca" --name b --out "$TMP/b" >/dev/null
	ka=$(wg genkey); kb=$(wg genkey); pa=$(echo "$ka" | wg pubkey); pb=$(echo "$kb" | wg pubkey)
	ip netns exec "$NA" "$SGD" -f $ifa 2>/dev/null & PIDS="$PIDS $!"
	ip netns exec "$NB" "$SGD" -f $ifb 2>/dev/null & PIDS="$PIDS $!"
	wait_for 5 test -S /var/run/wireguard/$ifa.sock; wait_for 5 test -S /var/run/wireguard/$ifb.sock
	ip netns exec "$NA" "$SGC" set $ifa listen-port 51820 private-key <(echo "$ka") \
		tls-listen-port 8443 tls-certificate "$TMP/a/a.crt" tls-private-key "$TMP/a/a.key" \
		tls-ca "$TMP/ca/ca.crt" require-client-cert true peer "$pb" allowed-ips 10.77.0.2/32
	ip netns exec "$NB" "$SGC" set $ifb listen-port 51820 private-key <(echo "$kb") \
		tls-certificate "$TMP/b/b.crt" tls-private-key "$TMP/b/b.key" tls-ca "$TMP/ca/ca.crt" \
		peer "$pa" allowed-ips 10.77.0.1/32 endpoint 192.0.2.1:51820 \
		tls-endpoint 192.0.2.1:8443 transport "$mode"
	ip -n "$NA" addr add 10.77.0.1/24 dev $ifa; ip -n "$NB" addr add 10.77.0.2/24 dev $ifb
	# TCP over TCP: an inner MTU that leaves room for TLS records (docs/TLS.md).
	[ "$mode" = tls ] && { ip -n "$NA" link set $ifa mtu 1380; ip -n "$NB" link set $ifb mtu 1380; }
	ip -n "$NA" link set $ifa up; ip -n "$NB" link set $ifb up
	wait_for 20 ip netns exec "$NB" ping -c 1 -W 1 10.77.0.1 || { echo "bench: sg $mode tunnel did not come up" >&2; exit 1; }
	if [ "${2:-}" = cost ]; then cost; else measure; fi
	cleanup; PIDS=""
}

run_openvpn() {
	netns_pair
	local common=(--dev tun --proto) ovpn=(--cipher AES-256-GCM --data-ciphers AES-256-GCM
		--ca "$TMP/ca/ca.crt" --dh none --verb 1 --mssfix 1350 --tun-mtu 1380)
	ip netns exec "$NA" openvpn "${common[@]}" tcp-server --port 8443 --local 192.0.2.1 --tls-server \
		--cert "$TMP/a/a.crt" --key "$TMP/a/a.key" "${ovpn[@]}" --ifconfig 10.77.0.1 10.77.0.2 \
		>"$TMP/ovpn-a.log" 2>&1 & PIDS="$PIDS $!"
	sleep 0.5
	ip netns exec "$NB" openvpn "${common[@]}" tcp-client --remote 192.0.2.1 8443 --tls-client \
		--cert "$TMP/b/b.crt" --key "$TMP/b/b.key" "${ovpn[@]}" --ifconfig 10.77.0.2 10.77.0.1 \
		--remote-cert-tls server >"$TMP/ovpn-b.log" 2>&1 & PIDS="$PIDS $!"
	if ! wait_for 30 ip netns exec "$NB" ping -c 1 -W 1 10.77.0.1; then
		echo "bench: openvpn did not come up: $(tail -n 3 "$TMP/ovpn-b.log")" >&2
		cleanup; PIDS=""; echo "0 nan nan nan"; return
	fi
	measure
	cleanup; PIDS=""
}

# Outer loss needs the netem qdisc (kernel module sch_netem), which not every kernel has.
LOSSES="0"
if ip netns add "sgtq$ID" 2>/dev/null; then
	ip -n "sgtq$ID" link add d0 type dummy 2>/dev/null &&
		ip netns exec "sgtq$ID" tc qdisc add dev d0 root netem loss 1% 2>/dev/null && LOSSES="0 1"
	ip netns del "sgtq$ID"
fi
[ "$LOSSES" = 0 ] && echo "bench: no netem qdisc on this kernel: the runs with outer loss are skipped" >&2

if [ "$SECS" != 0 ]; then
	row() { printf '  %-30s %8s Mbit/s   rtt idle %6s ms   loaded p50 %6s ms  p99 %6s ms\n' "$1" $2 $3 $4 $5; }
	for LOSS in $LOSSES; do
		printf 'Tunnel over UDP and over TLS/TCP, %s s per run, outer loss %s%%\n' "$SECS" "$LOSS"
		udp=$(run_sg udp); row "secureguardd udp" $udp
		tls=$(run_sg tls); row "secureguardd tls" $tls
		ovpn="0 nan nan nan"
		command -v openvpn >/dev/null && ovpn=$(run_openvpn)
		row "openvpn tcp (AES-256-GCM)" $ovpn
		python3 - "$udp" "$tls" "$ovpn" <<'EOF'
import sys
u, t, o = (float(x.split()[0]) for x in sys.argv[1:4])
print("  ratio tls/udp: %.2f" % (t / u if u else 0))
print("  ratio secureguardd tls / openvpn tcp: %s" % ("%.2f" % (t / o) if o else "n/a"))
EOF
	done
fi
if [ -n "${COST_MB:-}" ]; then
	command -v perf >/dev/null || { echo "bench: COST_MB needs perf" >&2; exit 1; }
	if [ -n "${COST_CALLS:-}" ]; then
		ssl=$(ldd "$SGD" | awk '/libssl/ {print $3}')
		for f in SSL_read SSL_write; do
			perf probe -l 2>/dev/null | grep -q "probe_libssl:$f " ||
				perf probe -q -x "$ssl" --add "$f" || { echo "bench: no uprobe on $f" >&2; exit 1; }
		done
	fi
	LOSS=0
	echo "Cost per byte over TLS, $COST_MB MB"
	run_sg tls cost
fi
