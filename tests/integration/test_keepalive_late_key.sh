#!/bin/bash
# Kernel parity, settings in any order: A gets its peer B (endpoint, persistent keepalive 1 s)
# and is brought up before it has a private key, as agents and scripts may do. Without a key
# nothing can leave. The moment the key is set, A must start the handshake (the kernel module
# sends what waited for the key at once), and keepalives must then arrive every second.
# sg-also-wireguard-go
# shellcheck source=tests/integration/lib.sh disable=SC2154 # PUB_<name> come from sg_keys
. "$(dirname "$0")/lib.sh"
sg_init ka
pair_init

up "$B" "$IB" "$SG_IMPL" b "$PORT" 2
wg_peer "$B" "$IB" "$PUB_a" "$(in4 1)/32,$(in6 1)/128"

start_impl "$A" "$IA" "$SG_IMPL"
log "A: peer B with endpoint and persistent keepalive, link up, no private key yet"
nsx "$A" wg set "$IA" listen-port "$PORT" peer "$PUB_b" allowed-ips "$(in4 2)/32,$(in6 2)/128" \
	endpoint "$(out4 2):$PORT" persistent-keepalive 1
ip -n "$A" addr add "$(in4 1)/24" dev "$IA"
ip -n "$A" link set "$IA" up
# Nothing can reach B without A's key: the check below starts from a clean slate.
sleep 1
has_handshake "$B" "$IB" "$PUB_a" && fail "B has a handshake with A before A has a private key"

log "A gets its private key"
nsx "$A" wg set "$IA" private-key "$SG_TMP/a.key"
# The kernel sends at once; the keepalive interval (1 s) plus a handshake is ample.
secs=3
if [ "$SG_IMPL" = wireguard-go ]; then
	# wireguard-go 0.0.20220316 sent an initiation when the peer was configured, made without
	# a key (B refuses it), and only its retransmission, REKEY_TIMEOUT (5 s) later, completes.
	log "harness mode: waiting for wireguard-go's handshake retransmission (5 s + jitter)"
	secs=8
fi
wait_for "$secs" has_handshake "$B" "$IB" "$PUB_a" ||
	fail "no handshake from A within $secs s of its private key being set"
log "handshake within $secs s of the key"

# Then the keepalives, one a second with no other traffic: B's received bytes grow.
rx_grew() { [ "$(wg_dump_field "$B" "$IB" "$PUB_a" rx)" -ge $(($1 + 64)) ]; }
rx0=$(wg_dump_field "$B" "$IB" "$PUB_a" rx)
wait_for 5 rx_grew "$rx0" ||
	fail "B received $(($(wg_dump_field "$B" "$IB" "$PUB_a" rx) - rx0)) bytes from A in 5 s: no persistent keepalives"
log "persistent keepalives arrive: B received $(($(wg_dump_field "$B" "$IB" "$PUB_a" rx) - rx0)) bytes"
assert_ping "$A" "$(in4 2)" 2
finish
