#!/bin/bash
# secureguardd on both sides. The interop rounds (A initiates, then B; IPv4 then IPv6 outer; the
# first with three crypto lanes per daemon),
# then on the last pair: roaming (B changes outer family, then outer address; A's endpoint
# follows and traffic goes on), persistent keepalives seen on the wire while idle, a peer
# removed and added back, and `wg syncconf` changing allowed IPs and removing a peer.
# shellcheck source=tests/integration/lib.sh disable=SC2154 # PUB_<name> come from sg_keys
. "$(dirname "$0")/lib.sh"
sg_init ss
pair_init

for first in a b; do
	log "=== round: ${first^^} initiates ==="
	# The first round runs the data path's crypto on three lanes each (more than this
	# machine's CPUs: the pool must keep every peer's order whatever the scheduling), the
	# second on the default.
	if [ "$first" = a ]; then export SG_CRYPTO_THREADS=3; else unset SG_CRYPTO_THREADS; fi
	pair_up "$SG_IMPL" "$SG_IMPL" "$first"
	if [ "$first" = a ] && [ "$SG_IMPL" = secureguardd ]; then
		for i in "$IA" "$IB"; do
			grep -q 'event=crypto_lanes .*lanes=3 from=SG_CRYPTO_THREADS' "${D_LOG[$i]}" ||
				fail "$i did not start three crypto lanes: $(grep crypto_lanes "${D_LOG[$i]}")"
		done
		pair_traffic IPv4 16
	else
		pair_traffic IPv4 2
	fi
	pair_outer6 2
	if [ "$first" = a ]; then
		stop_impl "$IA"
		stop_impl "$IB"
	fi
done

log "=== roaming ==="
# B moves to A's IPv4 address: A must see B's new source (family change) on B's first packet.
nsx "$B" wg set "$IB" peer "$PUB_a" endpoint "$(out4 1):$PORT"
assert_ping "$B" "$(in4 1)" 3
assert_eq "$(wg_dump_field "$A" "$IA" "$PUB_b" endpoint)" "$(out4 2):$PORT" \
	"A's endpoint for B after B went from IPv6 to IPv4"
assert_ping "$A" "$(in6 2)" 3
# B's outer address changes under a running ping from B (a laptop changing networks).
nsx "$B" ping -i 0.2 -c 25 -W 1 "$(in4 1)" >"$SG_TMP/roam.ping" 2>&1 &
roam_ping=$!
sleep 1
log "B's outer IPv4 address: $(out4 2) -> $(out4 12)"
# Deleted first: deleting a primary address also deletes its secondaries in the subnet.
ip -n "$B" addr del "$(out4 2)/24" dev veth0
ip -n "$B" addr add "$(out4 12)/24" dev veth0
if [ "$SG_IMPL" = wireguard-go ]; then
	# wireguard-go 0.0.20220316 keeps sending from its cached source address after the address
	# is gone (it clears the cache only on EINVAL, the kernel says ENETUNREACH); setting the
	# endpoint again drops the cache. secureguardd must cope without this help.
	log "harness mode: re-setting B's endpoint for wireguard-go's sticky source address"
	nsx "$B" wg set "$IB" peer "$PUB_a" endpoint "$(out4 1):$PORT"
fi
wait_for 10 sh -c "[ \"\$(ip netns exec $A wg show $IA endpoints | cut -f2)\" = $(out4 12):$PORT ]" ||
	fail "A's endpoint for B did not change to $(out4 12):$PORT: $(nsx "$A" wg show "$IA" endpoints)"
wait "$roam_ping" || true
log "ping from B across the move: $(grep 'packets transmitted' "$SG_TMP/roam.ping")"
# Replies must resume after the move: the last 10 of 25 all answered.
for seq in $(seq 16 25); do
	grep -q "icmp_seq=$seq " "$SG_TMP/roam.ping" ||
		fail "ping from B after roaming: no reply for icmp_seq=$seq ($(cat "$SG_TMP/roam.ping"))"
done
assert_ping "$A" "$(in4 2)" 3
# B's source port changes (a NAT rebinding): A follows on B's next packet.
BPORT=$((PORT + 2))
nsx "$B" wg set "$IB" listen-port "$BPORT"
assert_ping "$B" "$(in4 1)" 3
assert_eq "$(wg_dump_field "$A" "$IA" "$PUB_b" endpoint)" "$(out4 12):$BPORT" \
	"A's endpoint for B after B's listen port changed"
assert_ping "$A" "$(in6 2)" 3

log "=== persistent keepalive ==="
# B keeps the path open with a keepalive every second: 32-byte transport messages (type 4,
# 16-byte header + empty payload + 16-byte tag), i.e. UDP length 40, from B to A while idle.
nsx "$B" wg set "$IB" peer "$PUB_a" persistent-keepalive 1
assert_eq "$(wg_dump_field "$B" "$IB" "$PUB_a" keepalive)" 1 "B's persistent keepalive"
rx0=$(wg_dump_field "$A" "$IA" "$PUB_b" rx)
nsx "$A" timeout 6 tcpdump -l -n -i veth0 -c 3 \
	"udp dst port $PORT and src host $(out4 12) and udp[4:2] = 40 and udp[8:4] = 0x04000000" \
	>"$SG_TMP/ka.txt" 2>"$SG_TMP/ka.err" &
ka=$!
wait "$ka" || true
n=$(grep -c 'UDP, length 32' "$SG_TMP/ka.txt" || true)
log "keepalives from B seen on A's wire within 6 s: $n"
[ "$n" -ge 3 ] || fail "expected 3 keepalives (every 1 s) on the wire, saw $n: $(cat "$SG_TMP/ka.txt" "$SG_TMP/ka.err")"
rx1=$(wg_dump_field "$A" "$IA" "$PUB_b" rx)
[ "$rx1" -ge $((rx0 + 3 * 32)) ] || fail "A's rx bytes for B grew by $((rx1 - rx0)) while idle, expected >= 96"
nsx "$B" wg set "$IB" peer "$PUB_a" persistent-keepalive off
assert_eq "$(wg_dump_field "$B" "$IB" "$PUB_a" keepalive)" off "B's persistent keepalive after off"

log "=== peer removed and added back ==="
nsx "$A" wg set "$IA" peer "$PUB_b" remove
[ -z "$(nsx "$A" wg show "$IA" peers)" ] || fail "peer B still listed on A after remove"
assert_no_ping "$A" "$(in4 2)"
wg_peer "$A" "$IA" "$PUB_b" "$(in4 2)/32,$(in6 2)/128" endpoint "$(out4 12):$BPORT"
wait_ping "$A" "$(in4 2)" 10
assert_ping "$B" "$(in6 1)" 3
has_handshake "$A" "$IA" "$PUB_b" || fail "re-added peer B has no handshake on A"

log "=== wg syncconf ==="
sg_keys c
wg_peer "$A" "$IA" "$PUB_c" "$(in4 99)/32" endpoint "$(out4 99):$PORT"
[ "$(nsx "$A" wg show "$IA" peers | wc -l)" -eq 2 ] || fail "A should have 2 peers before syncconf"
# The file keeps B with inner IPv4 only and drops C.
cat >"$SG_TMP/sync.conf" <<EOF
[Interface]
PrivateKey = $(cat "$SG_TMP/a.key")
ListenPort = $PORT

[Peer]
PublicKey = $PUB_b
AllowedIPs = $(in4 2)/32
Endpoint = $(out4 12):$BPORT
EOF
nsx "$A" wg syncconf "$IA" "$SG_TMP/sync.conf"
assert_eq "$(nsx "$A" wg show "$IA" peers)" "$PUB_b" "A's peers after syncconf"
assert_eq "$(wg_dump_field "$A" "$IA" "$PUB_b" allowed-ips)" "$(in4 2)/32" "A's allowed IPs for B after syncconf"
assert_eq "$(nsx "$A" wg show "$IA" listen-port)" "$PORT" "A's listen port after syncconf"
assert_ping "$A" "$(in4 2)" 3
assert_no_ping "$A" "$(in6 2)"
# And back: allowed IPs widened to B's whole inner IPv6 /64 plus its IPv4 address.
sed -i "s|^AllowedIPs = .*|AllowedIPs = $(in4 2)/32, 2001:db8:1::/64|" "$SG_TMP/sync.conf"
nsx "$A" wg syncconf "$IA" "$SG_TMP/sync.conf"
assert_eq "$(wg_dump_field "$A" "$IA" "$PUB_b" allowed-ips)" "$(in4 2)/32,2001:db8:1::/64" \
	"A's allowed IPs for B after the second syncconf"
assert_ping "$A" "$(in6 2)" 3
assert_ping "$B" "$(in4 1)" 3

finish
