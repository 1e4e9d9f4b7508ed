#!/bin/bash
# The plain data path: secureguardd with SG_DISABLE_OFFLOAD=1 (one packet per TUN read/write, no
# UDP GSO/GRO), as on a kernel without those offloads. Against a secureguardd that keeps its
# offloads, and against wireguard-go: pings over inner IPv4/IPv6, counters, TCP transfers with
# sha256 compared.
# shellcheck source=tests/integration/lib.sh disable=SC2154 # PUB_<name> come from sg_keys
. "$(dirname "$0")/lib.sh"
sg_init no
pair_init

for peer_impl in "$SG_IMPL" wireguard-go; do
	log "=== A: $SG_IMPL without offloads, B: $peer_impl ==="
	export SG_DISABLE_OFFLOAD=1
	up "$A" "$IA" "$SG_IMPL" a "$PORT" 1
	unset SG_DISABLE_OFFLOAD
	grep -q 'event=offload .*udp_gso=off udp_gro=off reason=SG_DISABLE_OFFLOAD' "${D_LOG[$IA]}" ||
		fail "A did not report its offloads off: $(grep event=offload "${D_LOG[$IA]}")"
	up "$B" "$IB" "$peer_impl" b "$PORT" 2
	wg_peer "$A" "$IA" "$PUB_b" "$(in4 2)/32,$(in6 2)/128" endpoint "$(out4 2):$PORT"
	wg_peer "$B" "$IB" "$PUB_a" "$(in4 1)/32,$(in6 1)/128"
	wait_ping "$A" "$(in4 2)" 10
	pair_traffic IPv4 4
	stop_impl "$IA"
	stop_impl "$IB"
done
finish
