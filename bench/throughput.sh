#!/bin/bash
# Throughput benchmark: TCP through a tunnel between two network namespaces, measured with
# iperf3, for secureguardd and for wireguard-go (what a user of a userspace WireGuard would run
# instead; this kernel has no WireGuard module), in the same run. Prints Mbit/s and the ratio.
#
#   bench/throughput.sh [SECONDS]          (root; build first with `make`)
#
# Each pair: ns A runs the server side, ns B the client; outer veth 192.0.2.0/24, inner 10.77.0.0/24.
set -eu
SECS=${1:-10}
SRC=$(cd "$(dirname "$0")/.." && pwd)
SGD=${SG_BIN:-$SRC/build/bin}/secureguardd
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (namespaces, TUN)" >&2; exit 1; }
[ -x "$SGD" ] || { echo "bench: $SGD missing; run make first" >&2; exit 1; }
command -v iperf3 >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iperf3 >/dev/null
command -v wireguard-go >/dev/null || "$SRC/scripts/deps.sh"

ID=b$$
NA=sgbA$ID NB=sgbB$ID
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	ip netns del "$NA" 2>/dev/null || true
	ip netns del "$NB" 2>/dev/null || true
	rm -f /var/run/wireguard/sgba$ID.sock /var/run/wireguard/sgbb$ID.sock
}
trap cleanup EXIT

wait_sock() {
	for _ in $(seq 100); do [ -S "/var/run/wireguard/$1.sock" ] && return 0; sleep 0.05; done
	echo "bench: $1 did not come up" >&2; return 1
}

SGC=$(dirname "$SGD")/secureguard
# run_pair IMPL_A IMPL_B [fips] -> prints Mbit/s (fips: both secureguardd, FIPS keys, CryptoMode fips)
run_pair() {
	local ia=$1 ib=$2 mode=${3:-classic} ifa=sgba$ID ifb=sgbb$ID
	ip netns add "$NA"; ip netns add "$NB"
	ip link add va$ID type veth peer name vb$ID
	ip link set va$ID netns "$NA"; ip link set vb$ID netns "$NB"
	ip -n "$NA" addr add 192.0.2.1/24 dev va$ID; ip -n "$NB" addr add 192.0.2.2/24 dev vb$ID
	for n in "$NA" "$NB"; do ip -n "$n" link set lo up; done
	ip -n "$NA" link set va$ID up; ip -n "$NB" link set vb$ID up
	local ka kb pa pb
	ka=$(wg genkey); kb=$(wg genkey); pa=$(echo "$ka" | wg pubkey); pb=$(echo "$kb" | wg pubkey)
	start() { # ns impl if
		if [ "$2" = sg ]; then
			ip netns exec "$1" "$SGD" -f "$3" 2>/dev/null &
		else
			ip netns exec "$1" env WG_PROCESS_FOREGROUND=1 wireguard-go "$3" >/dev/null 2>&1 &
		fi
		PIDS="$PIDS $!"
		wait_sock "$3"
	}
	start "$NA" "$ia" $ifa; start "$NB" "$ib" $ifb
	ip netns exec "$NA" wg set $ifa listen-port 51820 private-key <(echo "$ka") peer "$pb" allowed-ips 10.77.0.2/32
	ip netns exec "$NB" wg set $ifb listen-port 51820 private-key <(echo "$kb") peer "$pa" allowed-ips 10.77.0.1/32 endpoint 192.0.2.1:51820
	if [ "$mode" = fips ]; then
		local fa fb fpa fpb
		fa=$("$SGC" genkey --fips); fb=$("$SGC" genkey --fips)
		fpa=$(echo "$fa" | "$SGC" pubkey --fips); fpb=$(echo "$fb" | "$SGC" pubkey --fips)
		ip netns exec "$NA" "$SGC" set $ifa fips-private-key <(echo "$fa") crypto-mode fips peer "$pb" fips-public-key "$fpb" &&
			ip netns exec "$NB" "$SGC" set $ifb fips-private-key <(echo "$fb") crypto-mode fips peer "$pa" fips-public-key "$fpa" ||
			{ echo "bench: FIPS setup failed" >&2; exit 1; }
	fi
	ip -n "$NA" addr add 10.77.0.1/24 dev $ifa; ip -n "$NB" addr add 10.77.0.2/24 dev $ifb
	ip -n "$NA" link set $ifa up; ip -n "$NB" link set $ifb up
	ip netns exec "$NB" ping -c 1 -W 5 10.77.0.1 >/dev/null
	ip netns exec "$NA" iperf3 -s -1 -D -B 10.77.0.1 >/dev/null
	sleep 0.3
	ip netns exec "$NB" iperf3 -c 10.77.0.1 -t "$SECS" -J 2>/dev/null |
		python3 -c 'import json,sys; print("%.0f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e6))'
	cleanup
	PIDS=""
}

printf 'TCP throughput through the tunnel, %s s per run (iperf3, 2 namespaces on veth)\n' "$SECS"
wg=$(run_pair wg wg)
printf '  wireguard-go  <-> wireguard-go : %6s Mbit/s\n' "$wg"
sg=$(run_pair sg sg)
printf '  secureguardd  <-> secureguardd : %6s Mbit/s\n' "$sg"
mix=$(run_pair sg wg)
printf '  secureguardd  <-> wireguard-go : %6s Mbit/s\n' "$mix"
fips=$(run_pair sg sg fips)
printf '  secureguardd  <-> secureguardd : %6s Mbit/s  (FIPS mode: AES-256-GCM)\n' "$fips"
python3 -c "print('ratio secureguardd/wireguard-go: %.2f' % ($sg / $wg))"
python3 -c "print('ratio FIPS/classic (secureguardd): %.2f' % ($fips / $sg))"
