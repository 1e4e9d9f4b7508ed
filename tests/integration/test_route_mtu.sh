#!/bin/bash
# Kernel parity, padding to the route's MTU: both tunnel interfaces have MTU 1300, and each side
# has a route to the other's inner address with MTU 1299. The kernel module pads a packet to at
# most the MTU of the route it took, so a 1297-byte packet leaves as 1299 bytes of plaintext, an
# outer IPv4 datagram of 1359 bytes; padded to the interface's 1300 it would be 1360. Both
# sides drop incoming datagrams of exactly 1360 bytes (nftables): pings of 1297 bytes, inner
# IPv4 and IPv6, get through only when the daemons pad to the route's MTU. Without the routes
# they must not (the firewall works), and once the routes are gone they must not again (the
# daemon follows route changes).
# shellcheck source=tests/integration/lib.sh disable=SC2154 # PUB_<name> come from sg_keys
. "$(dirname "$0")/lib.sh"
sg_init rm
command -v nft >/dev/null || skip "missing tool: nft (scripts/deps.sh installs nftables)"
pair_init
pair_up "$SG_IMPL" "$SG_IMPL" a
for ns in "$A" "$B"; do
	nsx "$ns" nft -f - <<EOF
table inet sgmtu {
	chain input {
		type filter hook input priority 0; policy accept;
		ip length 1360 udp dport $PORT counter drop
	}
}
EOF
done
ip -n "$A" link set "$IA" mtu 1300
ip -n "$B" link set "$IB" mtu 1300

# big_ping FAMILY: a 1297-byte echo request from A to B (and its reply) over inner FAMILY.
big_ping() {
	case $1 in
	IPv4) nsx "$A" ping -c 1 -W 1 -s 1269 "$(in4 2)" >/dev/null 2>&1 ;;
	IPv6) nsx "$A" ping -c 1 -W 1 -s 1249 "$(in6 2)" >/dev/null 2>&1 ;;
	esac
}
big_fails() { ! big_ping "$1"; }
dropped() { nsx "$1" nft list table inet sgmtu | grep -o 'packets [0-9]*' | cut -d' ' -f2; }

route_mtus() { # add|del
	ip -n "$A" route "$1" "$(in4 2)/32" dev "$IA" mtu 1299
	ip -n "$B" route "$1" "$(in4 1)/32" dev "$IB" mtu 1299
	ip -n "$A" -6 route "$1" "$(in6 2)/128" dev "$IA" mtu 1299
	ip -n "$B" -6 route "$1" "$(in6 1)/128" dev "$IB" mtu 1299
}

log "=== interface MTU 1300, no route MTU: 1297-byte packets leave as 1360-byte datagrams ==="
for fam in IPv4 IPv6; do
	big_fails $fam || fail "$fam: a 1297-byte ping got through the 1360-byte filter without route MTUs"
done
log "the filter dropped $(dropped "$B") datagrams at B"
assert_ping "$A" "$(in4 2)" 2

log "=== routes with MTU 1299 both ways ==="
route_mtus add
for fam in IPv4 IPv6; do
	# The daemon learns of the routes from a notification: a few packets may go first.
	wait_for 5 big_ping $fam || fail "$fam: 1297-byte pings lost with a 1299-byte route MTU: padded to the interface's 1300"
	big_ping $fam || fail "$fam: a second 1297-byte ping was lost"
	log "$fam: 1297-byte pings get through, padded to 1299"
done

log "=== the routes go away: padding to the interface's MTU again ==="
route_mtus del
for fam in IPv4 IPv6; do
	wait_for 5 big_fails $fam || fail "$fam: 1297-byte pings still get through after the route MTUs went"
done
assert_ping "$A" "$(in4 2)" 2
finish
