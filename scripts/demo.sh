#!/bin/bash
# `make demo`: secureguardd and wireguard-go, the reference WireGuard implementation, talking to
# each other in two network namespaces on this machine. Needs root (namespaces, TUN devices).
#
#   SG_BIN=DIR          where secureguardd and secureguard are (default: build/bin)
#   SG_TEST_IMPL=wireguard-go   run the demo with wireguard-go on both sides
#
# Everything it creates (namespaces, daemons, sockets, keys in a temporary directory) is removed
# on exit, also when a step fails.
root=$(cd "$(dirname "$0")/.." && pwd)
export SG_BIN=${SG_BIN:-$root/build/bin}

if [ "$(id -u)" -ne 0 ]; then
	echo "demo: needs root to create network namespaces and TUN devices; run: sudo make demo" >&2
	exit 1
fi
if [ "${SG_TEST_IMPL:-secureguardd}" = secureguardd ] && [ ! -x "$SG_BIN/secureguardd" ]; then
	echo "demo: $SG_BIN/secureguardd not found; build it first (make)" >&2
	exit 1
fi
for t in ip wg wireguard-go ping; do
	command -v "$t" >/dev/null 2>&1 || {
		echo "demo: missing $t; run scripts/deps.sh (make deps)" >&2
		exit 1
	}
done

SG_TEST=demo
. "$root/tests/integration/lib.sh"
# lib.sh skips (exit 77) when a prerequisite is missing; all were checked above.
sg_init dm

step() { printf '\n==> %s\n' "$*"; }
show_cmd() {
	printf '    $ %s\n' "$*"
	"$@" 2>&1 | sed 's/^/    /'
}

step "Two hosts in network namespaces, joined by a bridge"
pair_init
echo "    left : $A  outer 192.0.2.1  2001:db8::1  (runs $SG_IMPL)"
echo "    right: $B  outer 192.0.2.2  2001:db8::2  (runs wireguard-go $(wireguard-go --version 2>/dev/null | sed -n 's/^wireguard-go //p'))"

step "Key pairs (wg genkey | wg pubkey)"
echo "    left  public key: $PUB_a"
echo "    right public key: $PUB_b"

step "Start $SG_IMPL for $IA on the left and wireguard-go for $IB on the right"
up "$A" "$IA" "$SG_IMPL" a "$PORT" 1
up "$B" "$IB" wireguard-go b "$PORT" 2
echo "    tunnel addresses: left $(in4 1) $(in6 1), right $(in4 2) $(in6 2)"
echo "    both are driven with the stock wg tool over /var/run/wireguard/<if>.sock"

step "Tell each side about the other (wg set ... peer ... endpoint ... allowed-ips ...)"
show_cmd ip netns exec "$A" wg set "$IA" peer "$PUB_b" endpoint "$(out4 2):$PORT" \
	allowed-ips "$(in4 2)/32,$(in6 2)/128"
show_cmd ip netns exec "$B" wg set "$IB" peer "$PUB_a" endpoint "$(out4 1):$PORT" \
	allowed-ips "$(in4 1)/32,$(in6 1)/128"

step "Ping right from left over IPv4 (the first packet triggers the handshake)"
wait_ping "$A" "$(in4 2)" 10
show_cmd ip netns exec "$A" ping -c 3 -i 0.2 "$(in4 2)"
step "Ping right from left over IPv6"
show_cmd ip netns exec "$A" ping -c 3 -i 0.2 "$(in6 2)"
step "And back: wireguard-go's side pings ours, IPv4 and IPv6"
assert_ping "$B" "$(in4 1)"
assert_ping "$B" "$(in6 1)"
echo "    all replies received"

step "Our side, as secureguard show reports it"
if [ -x "$SG_BIN/secureguard" ] && out=$(ip netns exec "$A" "$SG_BIN/secureguard" show "$IA" 2>&1); then
	printf '    $ secureguard show %s\n' "$IA"
	printf '%s\n' "$out" | sed 's/^/    /'
else
	echo "    (secureguard show is not available here: ${out:-no $SG_BIN/secureguard}; using wg show)"
	show_cmd ip netns exec "$A" wg show "$IA"
fi
step "wireguard-go's side, as wg show reports it"
show_cmd ip netns exec "$B" wg show "$IB"

step "Stop both daemons and check they exit cleanly"
stop_impl "$IA"
stop_impl "$IB"
step "Demo done: $SG_IMPL and wireguard-go exchanged traffic over IPv4 and IPv6."
echo "    (namespaces, sockets and keys are removed now)"
finish >/dev/null
