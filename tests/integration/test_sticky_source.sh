#!/bin/bash
# Sticky source addresses: B has a second outer address next to its primary one, and A talks to
# that second address. B's replies must leave FROM the address A talks to (the kernel's routing
# would pick the primary one), seen on B's wire with tcpdump and in A's `wg show` endpoint, which
# would otherwise follow B to the primary address (roaming). IPv4, then IPv6. Then the second
# address goes away under B: B must fall back to the address routing picks and traffic goes on.
# shellcheck source=tests/integration/lib.sh disable=SC2154 # PUB_<name> come from sg_keys
. "$(dirname "$0")/lib.sh"
sg_init st
pair_init

SEC4=192.0.2.102
SEC6=2001:db8::102

# capture_start FILTER: tcpdump on B's veth0 in the background (bounded by timeout) into
# $SG_TMP/cap.N.txt; returns once tcpdump is listening.
CAP_N=0
capture_start() {
	CAP_N=$((CAP_N + 1))
	CAP_OUT=$SG_TMP/cap.$CAP_N.txt
	CAP_ERR=$SG_TMP/cap.$CAP_N.err
	nsx "$B" timeout 20 tcpdump -l -n -i veth0 -c 1000 "$1" >"$CAP_OUT" 2>"$CAP_ERR" &
	CAP_PID=$!
	wait_for 5 grep -q 'listening on' "$CAP_ERR" || fail "tcpdump did not start: $(cat "$CAP_ERR")"
}

# capture_stop: ends the capture (SIGTERM to our timeout, which passes it on to tcpdump; SIGINT
# is ignored by background jobs of a script).
capture_stop() {
	sleep 0.3 # the last replies are on the wire; let tcpdump print them
	kill -TERM "$CAP_PID" 2>/dev/null || true
	wait "$CAP_PID" || true
}

# from_count ADDR: datagrams in the last capture sent by B from ADDR to A's port.
from_count() {
	local ip=IP
	case $1 in *:*) ip=IP6 ;; esac
	grep -c " $ip $1\.$PORT > " "$CAP_OUT" || true
}

# sticky_round FAMILY PRIMARY SECOND A_ADDR: A's endpoint for B is SECOND; pings both ways;
# every datagram B sends to A leaves from SECOND, none from PRIMARY.
sticky_round() {
	local fam=$1 primary=$2 second=$3 ep n_sec n_pri
	case $second in *:*) ep="[$second]:$PORT" ;; *) ep="$second:$PORT" ;; esac
	log "=== $fam: A talks to B's second address $second (primary $primary) ==="
	nsx "$A" wg set "$IA" peer "$PUB_b" endpoint "$ep"
	capture_start "udp and src port $PORT and dst port $PORT"
	assert_ping "$A" "$(in4 2)" 3
	assert_ping "$B" "$(in4 1)" 3
	assert_ping "$A" "$(in6 2)" 3
	capture_stop
	n_sec=$(from_count "$second")
	n_pri=$(from_count "$primary")
	log "$fam: datagrams from B to A: $n_sec from $second, $n_pri from $primary"
	[ "$n_sec" -ge 9 ] || fail "$fam: expected B's replies from $second, saw $n_sec: $(cat "$CAP_OUT")"
	[ "$n_pri" -eq 0 ] || fail "$fam: B sent $n_pri datagrams from its primary $primary: $(cat "$CAP_OUT")"
	assert_eq "$(wg_dump_field "$A" "$IA" "$PUB_b" endpoint)" "$ep" "$fam: A's endpoint for B"
}

up "$A" "$IA" "$SG_IMPL" a "$PORT" 1
up "$B" "$IB" "$SG_IMPL" b "$PORT" 2
ip -n "$B" addr add "$SEC4/24" dev veth0
ip -n "$B" addr add "$SEC6/64" dev veth0 nodad
wg_peer "$A" "$IA" "$PUB_b" "$(in4 2)/32,$(in6 2)/128" endpoint "$SEC4:$PORT"
wg_peer "$B" "$IB" "$PUB_a" "$(in4 1)/32,$(in6 1)/128"
log "A initiates to B's second address $SEC4"
wait_ping "$A" "$(in4 2)" 10

sticky_round IPv4 "$(out4 2)" "$SEC4"
sticky_round IPv6 "$(out6 2)" "$SEC6"

log "=== the second address goes away under B ==="
# B's stored source for A is $SEC6, the address A talks to; once it is gone, B's own packets
# must leave from what routing picks, and A follows B there (roaming).
ip -n "$B" addr del "$SEC6/64" dev veth0
if [ "$SG_IMPL" = wireguard-go ]; then
	# See test_sg_sg.sh: wireguard-go keeps a source the kernel refuses with other than EINVAL.
	log "harness mode: re-setting B's endpoint for wireguard-go's sticky source address"
	nsx "$B" wg set "$IB" peer "$PUB_a" endpoint "[$(out6 1)]:$PORT"
fi
assert_ping "$B" "$(in4 1)" 3
assert_eq "$(wg_dump_field "$A" "$IA" "$PUB_b" endpoint)" "[$(out6 2)]:$PORT" \
	"A's endpoint for B after B's second IPv6 address went away"
assert_ping "$A" "$(in6 2)" 3
# The same for IPv4: back to the second IPv4 address, then it goes away.
sticky_round IPv4 "$(out4 2)" "$SEC4"
ip -n "$B" addr del "$SEC4/24" dev veth0
if [ "$SG_IMPL" = wireguard-go ]; then
	nsx "$B" wg set "$IB" peer "$PUB_a" endpoint "$(out4 1):$PORT"
fi
assert_ping "$B" "$(in4 1)" 3
assert_eq "$(wg_dump_field "$A" "$IA" "$PUB_b" endpoint)" "$(out4 2):$PORT" \
	"A's endpoint for B after B's second IPv4 address went away"
assert_ping "$A" "$(in4 2)" 3

if [ "$SG_IMPL" = secureguardd ]; then
	# Both fallbacks were the daemon's doing, which it counts in its final statistics: either
	# the address's removal was seen first (the route question from the vanished source fails,
	# sticky_sources_dropped) or a datagram was sent again without the source the kernel
	# refused (udp_tx_stale_src).
	stop_impl "$IB"
	last=$(grep 'event=stopping' "${D_LOG[$IB]}" | tail -n 1)
	stale=$(grep -o 'udp_tx_stale_src=[0-9]*' <<<"$last" | cut -d= -f2)
	dropped=$(grep -o 'sticky_sources_dropped=[0-9]*' <<<"$last" | cut -d= -f2)
	log "B's vanished sources: ${dropped:-none} dropped on the address's removal, ${stale:-none} datagrams sent again"
	[ $((${stale:-0} + ${dropped:-0})) -ge 2 ] ||
		fail "B's udp_tx_stale_src '${stale:-}' + sticky_sources_dropped '${dropped:-}' < 2"
fi
finish
