#!/bin/bash
# Kernel parity, interface state: A is fully configured (key, peer B with endpoint and a 1 s
# persistent keepalive) but its interface is down. Nothing may leave A until it is brought up,
# and then the handshake must start at once. Brought down again, A falls silent (the kernel
# module drops its sessions and stops its timers), and up again it shakes hands anew. The same
# once the interface has moved to another network namespace.
# shellcheck source=tests/integration/lib.sh disable=SC2154 # PUB_<name> come from sg_keys
. "$(dirname "$0")/lib.sh"
sg_init ld
pair_init

# quiet_start, then quiet_check SECS WHAT: tcpdump on A's wire, from the start until SECS
# seconds after the check began, sees no datagram from A's port.
quiet_start() {
	Q_OUT=$SG_TMP/quiet.$RANDOM
	nsx "$A" timeout 15 tcpdump -l -n -i veth0 "udp and src host $(out4 1) and src port $PORT" \
		>"$Q_OUT" 2>"$Q_OUT.err" &
	Q_PID=$!
	wait_for 5 grep -q 'listening on' "$Q_OUT.err" || fail "tcpdump did not start: $(cat "$Q_OUT.err")"
}
quiet_check() {
	local n
	sleep "$1"
	kill -TERM "$Q_PID" 2>/dev/null || true
	wait "$Q_PID" || true
	n=$(grep -c ' > ' "$Q_OUT" || true)
	[ "$n" -eq 0 ] || fail "$2: A sent $n datagrams while its interface was down: $(cat "$Q_OUT")"
	log "$2: nothing left A while down"
}

up "$B" "$IB" "$SG_IMPL" b "$PORT" 2
wg_peer "$B" "$IB" "$PUB_a" "$(in4 1)/32,$(in6 1)/128"

start_impl "$A" "$IA" "$SG_IMPL"
nsx "$A" wg set "$IA" private-key "$SG_TMP/a.key" listen-port "$PORT"
ip -n "$A" addr add "$(in4 1)/24" dev "$IA"
log "A: peer B with endpoint and persistent keepalive 1 s, interface down"
quiet_start
wg_peer "$A" "$IA" "$PUB_b" "$(in4 2)/32,$(in6 2)/128" endpoint "$(out4 2):$PORT" \
	persistent-keepalive 1
quiet_check 1.5 "configured, never up"
has_handshake "$B" "$IB" "$PUB_a" && fail "B has a handshake with A before A's interface came up"

log "A's interface comes up"
ip -n "$A" link set "$IA" up
wait_for 2 has_handshake "$B" "$IB" "$PUB_a" || fail "no handshake from A within 2 s of coming up"
assert_ping "$A" "$(in4 2)" 2
hs1=$(wg_dump_field "$B" "$IB" "$PUB_a" latest-handshake)

log "A's interface goes down"
ip -n "$A" link set "$IA" down
quiet_start
quiet_check 1.5 "down after traffic"

# The handshake timestamps have a resolution of a second: let one pass, so a new handshake
# shows as a later one.
sleep 1
log "A's interface comes up again"
ip -n "$A" link set "$IA" up
new_handshake() { [ "$(wg_dump_field "$B" "$IB" "$PUB_a" latest-handshake)" -gt "$hs1" ]; }
wait_for 2 new_handshake || fail "no new handshake from A within 2 s of coming up again"
# Addresses and routes went with the link; the tunnel works again once they are back.
ip -n "$A" addr replace "$(in4 1)/24" dev "$IA"
assert_ping "$A" "$(in4 2)" 2

# The kernel's selftest moves its devices between namespaces: the daemon (and its UDP socket)
# stays in A, the interface goes to M, arrives there down, and is brought up there.
log "=== A's interface moves to another namespace ==="
M=${PFX}m
ip netns add "$M"
SG_NS+=("$M")
ip -n "$M" link set lo up
hs1=$(wg_dump_field "$B" "$IB" "$PUB_a" latest-handshake)
ip -n "$A" link set "$IA" netns "$M"
quiet_start
quiet_check 1.5 "moved, down in its new namespace"
log "A's interface comes up in its new namespace"
ip -n "$M" link set "$IA" up
wait_for 2 new_handshake || fail "no new handshake from A within 2 s of coming up in another namespace"
ip -n "$M" addr add "$(in4 1)/24" dev "$IA"
assert_ping "$M" "$(in4 2)" 2
finish
