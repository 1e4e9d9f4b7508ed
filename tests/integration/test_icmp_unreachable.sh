#!/bin/bash
# Kernel parity, ICMP for packets no peer takes: A's interface routes 198.51.100.0/24 and
# 2001:db8:1::/64, but only B's addresses are some peer's allowed IPs. A packet to another
# address of those networks (or to a peer that has no endpoint) must be answered with ICMP /
# ICMPv6 destination unreachable written back into the interface, as the kernel module does,
# so the sender fails at once: ping reports the error, a TCP connect fails with "No route to
# host" instead of retrying for minutes. The tunnel to B keeps working.
# shellcheck source=tests/integration/lib.sh disable=SC2154 # PUB_<name> come from sg_keys
. "$(dirname "$0")/lib.sh"
sg_init iu
pair_init
pair_up "$SG_IMPL" "$SG_IMPL" a

# unreachable FAMILY ADDR PATTERN: one ping from A to ADDR gets the ICMP error PATTERN.
unreachable() {
	local out rc=0
	out=$(nsx "$A" ping -c 1 -W 3 "$2" 2>&1) || rc=$?
	[ "$rc" -ne 0 ] || fail "$1: ping $2 was answered: $out"
	grep -q "$3" <<<"$out" || fail "$1: ping $2 got no '$3' back: $out"
	log "$1: $(grep "$3" <<<"$out")"
}

log "=== no peer's allowed IPs cover the destination ==="
unreachable IPv4 198.51.100.99 "Destination Host Unreachable"
unreachable IPv6 2001:db8:1::99 "Destination unreachable: Address unreachable"

log "=== TCP to such an address fails at once ==="
rc=0
out=$(nsx "$A" timeout 10 bash -c 'exec 3<>/dev/tcp/198.51.100.99/80' 2>&1) || rc=$?
[ "$rc" -ne 124 ] || fail "TCP connect to 198.51.100.99 still waiting after 10 s: no ICMP error reached it"
grep -q "No route to host" <<<"$out" || fail "TCP connect to 198.51.100.99: expected 'No route to host', got (status $rc): $out"
log "TCP connect: No route to host"

log "=== a peer without an endpoint ==="
sg_keys c
wg_peer "$A" "$IA" "$PUB_c" "$(in4 3)/32,$(in6 3)/128"
unreachable IPv4 "$(in4 3)" "Destination Host Unreachable"
unreachable IPv6 "$(in6 3)" "Destination unreachable: Address unreachable"

log "=== the tunnel to B is unaffected ==="
assert_ping "$A" "$(in4 2)" 2
assert_ping "$A" "$(in6 2)" 2
stop_impl "$IA"
sent=$(grep 'event=stopping' "${D_LOG[$IA]}" | grep -o 'icmp_sent=[0-9]*' | cut -d= -f2)
[ "${sent:-0}" -ge 4 ] || fail "A's icmp_sent is '${sent:-}', expected >= 4"
finish
