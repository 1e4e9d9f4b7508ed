#!/bin/bash
# Kernel parity, routing loops: on A, tunnel C runs inside tunnel A (C's peer D on B is reached
# at B's inner address through A's interface: onion routing, which must work). Then A's
# endpoint for B is moved to D's inner address, which is routed through C's interface: A's
# datagrams now go into C, C's into A, and so on, each time a little bigger. With ten pings
# flooded into C, the loop must die out by itself (the daemons bound how often a datagram is
# nested: wg.h, WG_NESTED_TTL_STEP) and the bytes both interfaces send stay under what the
# kernel module's selftest allows; both daemons keep running and log the loop.
# shellcheck source=tests/integration/lib.sh disable=SC2154 # PUB_<name> come from sg_keys
. "$(dirname "$0")/lib.sh"
sg_init lp
pair_init
IC=${PFX}c ID=${PFX}d
PORT2=51821
sg_keys c
sg_keys d
pair_up "$SG_IMPL" "$SG_IMPL" a

log "=== tunnel C (A) to D (B) inside tunnel A to B ==="
start_impl "$A" "$IC" "$SG_IMPL"
start_impl "$B" "$ID" "$SG_IMPL"
for side in "$A $IC c 1 $PUB_d" "$B $ID d 2 $PUB_c"; do
	read -r ns ifn key i pub <<<"$side"
	nsx "$ns" wg set "$ifn" private-key "$SG_TMP/$key.key" listen-port "$PORT2"
	ip -n "$ns" addr add "203.0.113.$i/24" dev "$ifn"
	ip -n "$ns" link set "$ifn" mtu 1340 up
done
wg_peer "$A" "$IC" "$PUB_d" 203.0.113.2/32 endpoint "$(in4 2):$PORT2"
wg_peer "$B" "$ID" "$PUB_c" 203.0.113.1/32
wait_ping "$A" 203.0.113.2 10
assert_ping "$A" 203.0.113.2 3
log "onion routing works: C's datagrams travel inside A's tunnel"

log "=== A's endpoint for B moves to D's inner address, routed through C: a loop ==="
stop_impl "$IB"
stop_impl "$ID"
nsx "$A" wg set "$IA" peer "$PUB_b" endpoint 203.0.113.2:7
txsum() {
	echo $(($(wg_dump_field "$A" "$IA" "$PUB_b" tx) + $(wg_dump_field "$A" "$IC" "$PUB_d" tx)))
}
before=$(txsum)
nsx "$A" ping -c 10 -f -W 1 203.0.113.2 >/dev/null 2>&1 && fail "a ping through the loop was answered"
# The loop dies out: the counters stop moving (two readings half a second apart agree).
settled() {
	local a b
	a=$(txsum)
	sleep 0.5
	b=$(txsum)
	[ "$a" = "$b" ]
}
wait_for 20 settled || fail "the loop did not die out within 20 s: $(($(txsum) - before)) bytes sent so far"
sent=$(($(txsum) - before))
log "the loop died out after A and C sent $sent bytes for 10 pings"
check_alive "$IA"
check_alive "$IC"
# Each ping is encapsulated at most 9 times (wg.h: TTL 64, 8 less per nesting), growing by 60-80
# bytes a time: about 3.7 KB per ping at most, 28 KB measured for the ten. The kernel module's
# own selftest allows 70 KB for this loop; before the bound, wireguard-go sent 78-191 MB and
# secureguardd 236-418 MB.
bound=70000
[ "$sent" -le "$bound" ] || fail "the loop sent $sent bytes, more than the bound of $bound"
grep -q 'event=routing_loop' "${D_LOG[$IA]}" "${D_LOG[$IC]}" || fail "no routing_loop event logged"
finish
