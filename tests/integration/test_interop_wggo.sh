#!/bin/bash
# Interoperability with the reference: secureguardd on host 1 (A), wireguard-go on host 2 (B).
# Two rounds with fresh daemons: A initiates the handshake, then B does (the responder has no
# endpoint configured, so it can only learn it from the initiation). In each round: pings both
# ways over inner IPv4 and IPv6, TCP transfers with sha256 compared, `wg show` on both sides
# agreeing (handshake seen, one side's tx bytes = the other's rx bytes), first over IPv4 outer
# endpoints, then over IPv6 outer endpoints.
# shellcheck source=tests/integration/lib.sh disable=SC2154 # PUB_<name> come from sg_keys
. "$(dirname "$0")/lib.sh"
sg_init ig
pair_init

for first in a b; do
	log "=== round: ${first^^} initiates ==="
	pair_up "$SG_IMPL" wireguard-go "$first"
	pair_traffic IPv4 4
	pair_outer6 4
	nsx "$A" wg show "$IA"
	stop_impl "$IA"
	stop_impl "$IB"
done
finish
