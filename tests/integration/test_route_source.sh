#!/bin/bash
# Kernel parity, sticky sources after a route change: A reaches B over two direct links, A1-B2
# (A's address .1) and A3-B4 (A's address .3, B's end without an address). While A's route to
# B leaves through A1, B sees A at .1. Then a preferred route through A3, with .3 as its
# source, is added under A: the kernel module drops A's sticky source .1 because the route to
# B no longer leaves through the interface B's packets arrive on, and B must see A at .3.
# IPv4, then IPv6 (wireguard-go checks IPv4 sticky sources only: harness mode skips IPv6).
# sg-also-wireguard-go
# shellcheck source=tests/integration/lib.sh disable=SC2154 # PUB_<name> come from sg_keys
. "$(dirname "$0")/lib.sh"
sg_init sr
pair_init

# Two veth pairs straight between A and B, beside the bridge the harness made.
ip -n "$A" link add A1 type veth peer name B2 netns "$B"
ip -n "$A" link add A3 type veth peer name B4 netns "$B"
# The replies come back in through A1 to A3's address (B routes them by its own connected
# route), and B's packets through B4 are for B2's address: no reverse-path filter may drop them.
for ns in "$A" "$B"; do
	nsx "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
done
for l in A1 A3; do nsx "$A" sysctl -qw "net.ipv4.conf.$l.rp_filter=0"; done
for l in B2 B4; do nsx "$B" sysctl -qw "net.ipv4.conf.$l.rp_filter=0"; done
ip -n "$A" addr add 203.0.113.1/24 dev A1
ip -n "$A" addr add 203.0.113.3/24 dev A3
ip -n "$B" addr add 203.0.113.2/24 dev B2
ip -n "$A" addr add 2001:db8:2::1/64 dev A1 nodad
ip -n "$A" addr add 2001:db8:2::3/64 dev A3 nodad
ip -n "$B" addr add 2001:db8:2::2/64 dev B2 nodad
for l in A1 A3; do ip -n "$A" link set "$l" up; done
for l in B2 B4; do ip -n "$B" link set "$l" up; done
# IPv6 neighbour discovery answers only for addresses on the interface asked (unlike ARP):
# each side learns the other's address on the link it reaches it through.
mac() { ip -n "$1" -o link show "$2" | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2; }
ip -n "$A" -6 neigh replace 2001:db8:2::2 lladdr "$(mac "$B" B2)" dev A1 nud permanent
ip -n "$A" -6 neigh replace 2001:db8:2::2 lladdr "$(mac "$B" B4)" dev A3 nud permanent
ip -n "$B" -6 neigh replace 2001:db8:2::1 lladdr "$(mac "$A" A1)" dev B2 nud permanent
ip -n "$B" -6 neigh replace 2001:db8:2::3 lladdr "$(mac "$A" A1)" dev B2 nud permanent
# A's routes to the link: only through A1, from .1, until the test adds the better one.
ip -n "$A" route flush dev A1
ip -n "$A" route flush dev A3
ip -n "$A" -6 route flush dev A1
ip -n "$A" -6 route flush dev A3
ip -n "$A" route add 203.0.113.0/24 dev A1 src 203.0.113.1 metric 2
ip -n "$A" -6 route add 2001:db8:2::/64 dev A1 src 2001:db8:2::1 metric 2

up "$A" "$IA" "$SG_IMPL" a "$PORT" 1
up "$B" "$IB" "$SG_IMPL" b "$PORT" 2
wg_peer "$A" "$IA" "$PUB_b" "$(in4 2)/32,$(in6 2)/128"
wg_peer "$B" "$IB" "$PUB_a" "$(in4 1)/32,$(in6 1)/128"

b_sees_a() { [ "$(wg_dump_field "$B" "$IB" "$PUB_a" endpoint)" = "$1" ]; }
# ping_until EP: A pings B (the tunnel's inner address) until B's endpoint for A is EP.
ping_until() {
	ping1 "$A" "$(in4 2)" || true
	b_sees_a "$1"
}

# source_round NAME B_ADDR ROUTE A1_SRC A3_SRC ENDPOINT_FORM: the check for one family.
source_round() {
	local fam=$1 baddr=$2 net=$3 src1=$4 src3=$5 ep1 ep3 ipf=-4
	case $baddr in *:*)
		ipf=-6
		ep1="[$src1]:$PORT" ep3="[$src3]:$PORT"
		nsx "$A" wg set "$IA" peer "$PUB_b" endpoint "[$baddr]:$PORT"
		;;
	*)
		ep1="$src1:$PORT" ep3="$src3:$PORT"
		nsx "$A" wg set "$IA" peer "$PUB_b" endpoint "$baddr:$PORT"
		;;
	esac
	log "=== $fam: A's route to B leaves through A1 from $src1 ==="
	wait_for 10 ping_until "$ep1" ||
		fail "$fam: B's endpoint for A is '$(wg_dump_field "$B" "$IB" "$PUB_a" endpoint)', expected $ep1"
	assert_ping "$A" "$(in4 2)" 2
	assert_eq "$(wg_dump_field "$B" "$IB" "$PUB_a" endpoint)" "$ep1" "$fam: B's endpoint for A"
	log "$fam: a preferred route through A3 from $src3 appears under A"
	ip -n "$A" "$ipf" route add "$net" dev A3 src "$src3" metric 1
	# The kernel module re-chooses at its next packet; a userspace daemon learns of the route
	# from a notification, so give it the few packets that takes.
	wait_for 5 ping_until "$ep3" ||
		fail "$fam: after the route change B still sees A at '$(wg_dump_field "$B" "$IB" "$PUB_a" endpoint)', expected $ep3 (A kept its sticky source $src1)"
	assert_ping "$A" "$(in4 2)" 3
	assert_eq "$(wg_dump_field "$B" "$IB" "$PUB_a" endpoint)" "$ep3" "$fam: B's endpoint for A after more traffic"
	log "$fam: B sees A at $ep3 after the route change"
}

source_round IPv4 203.0.113.2 203.0.113.0/24 203.0.113.1 203.0.113.3
if [ "$SG_IMPL" = wireguard-go ]; then
	log "harness mode: wireguard-go re-checks IPv4 sticky sources only; IPv6 round skipped"
else
	source_round IPv6 2001:db8:2::2 2001:db8:2::/64 2001:db8:2::1 2001:db8:2::3
	grep -q 'event=sticky_source_dropped' "${D_LOG[$IA]}" ||
		fail "A's log has no sticky_source_dropped event"
fi
finish
