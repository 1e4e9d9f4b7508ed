#!/bin/bash
# A daemon with a large peer set (issue 19, "A million peers"): correctness at scale, no timing.
#  - `wg setconf` of SG_MANY_PEERS (100,000) peers, each with a /32 and an endpoint, plus B (a
#    second daemon); `wg show dump` lists every one of them with its allowed IP and endpoint;
#  - A and B handshake and carry traffic both ways while the 100,000 others stay idle: their
#    handshake state is made only when a peer first handshakes (src/wg/wg_int.h,
#    struct wg_peer_active), and no other peer shows a handshake;
#  - `secureguard setconf` (the CLI's own parser and writer) replaces them with another 100,000
#    and B; the dump lists exactly the new set, and traffic to B flows again.
# shellcheck source=tests/integration/lib.sh disable=SC2154 # PUB_<name> come from sg_keys
. "$(dirname "$0")/lib.sh"
sg_init mp
[ "$SG_IMPL" = secureguardd ] || skip "wireguard-go takes at most 65,536 peers"
N=${SG_MANY_PEERS:-100000}
pair_init

# gen FILE EXPECTED SEED: a wg(8) config of A with B and N random peers (10.<i>/32, an endpoint
# in 203.0.113.0/24), and the "public-key endpoint allowed-ips" lines `wg show dump` must list,
# sorted.
gen() {
	python3 - "$1" "$2" "$3" "$N" "$(cat "$SG_TMP/a.key")" "$PUB_b" "$(out4 2)" "$(in4 2)" \
		"$PORT" <<'PY'
import base64, random, sys
conf, expected, seed, n, priv, pub_b, ep_b, in_b, port = sys.argv[1:]
rnd = random.Random(int(seed))
lines = ["%s %s:%s %s/32" % (pub_b, ep_b, port, in_b)]
with open(conf, "w") as f:
    f.write("[Interface]\nPrivateKey = %s\nListenPort = %s\n" % (priv, port))
    f.write("\n[Peer]\nPublicKey = %s\nAllowedIPs = %s/32\nEndpoint = %s:%s\n"
            % (pub_b, in_b, ep_b, port))
    for i in range(int(n)):
        pub = base64.b64encode(rnd.randbytes(32)).decode()
        ip = "10.%d.%d.%d" % (i >> 16, (i >> 8) & 255, i & 255)
        ep = "203.0.113.%d:%d" % (1 + i % 250, 1024 + i % 60000)
        f.write("\n[Peer]\nPublicKey = %s\nAllowedIPs = %s/32\nEndpoint = %s\n" % (pub, ip, ep))
        lines.append("%s %s %s/32" % (pub, ep, ip))
with open(expected, "w") as f:
    f.write("\n".join(sorted(lines)) + "\n")
PY
}

# check_dump EXPECTED WHAT: the dump's peers are exactly EXPECTED; exactly one handshake (B's).
check_dump() {
	nsx "$A" wg show "$IA" dump >"$SG_TMP/dump"
	awk 'NR > 1 { print $1, $3, $4 }' "$SG_TMP/dump" | sort >"$SG_TMP/dump.peers"
	local got want
	got=$(wc -l <"$SG_TMP/dump.peers")
	want=$(wc -l <"$1")
	assert_eq "$got" "$want" "peers in A's dump after $2"
	cmp -s "$SG_TMP/dump.peers" "$1" ||
		fail "A's dump after $2 differs from the configuration: $(diff "$1" "$SG_TMP/dump.peers" | head -5)"
	assert_eq "$(awk 'NR > 1 && $5 != 0' "$SG_TMP/dump" | wc -l)" 1 \
		"peers with a handshake in A's dump after $2 (B only)"
	log "$2: A's dump lists all $got peers as configured"
}

log "=== wg setconf of $N peers and B ==="
gen "$SG_TMP/a1.conf" "$SG_TMP/a1.expected" 1
start_impl "$A" "$IA" secureguardd
nsx "$A" wg setconf "$IA" "$SG_TMP/a1.conf"
wg_iface "$A" "$IA" a "$PORT" 1
up "$B" "$IB" secureguardd b "$PORT" 2
wg_peer "$B" "$IB" "$PUB_a" "$(in4 1)/32,$(in6 1)/128" endpoint "$(out4 1):$PORT"
wait_ping "$A" "$(in4 2)" 10
assert_ping "$B" "$(in4 1)" 3
check_dump "$SG_TMP/a1.expected" "wg setconf"
tcp_transfer "$A" "$B" "$(in4 2)" 2

log "=== secureguard setconf: another $N peers and B ==="
gen "$SG_TMP/a2.conf" "$SG_TMP/a2.expected" 2
nsx "$A" "$SG_BIN/secureguard" setconf "$IA" "$SG_TMP/a2.conf"
wait_ping "$A" "$(in4 2)" 10
assert_ping "$B" "$(in4 1)" 3
check_dump "$SG_TMP/a2.expected" "secureguard setconf"
[ "$(LC_ALL=C comm -12 <(cut -d' ' -f1 "$SG_TMP/a1.expected" | LC_ALL=C sort) \
	<(cut -d' ' -f1 "$SG_TMP/a2.expected" | LC_ALL=C sort))" = "$PUB_b" ] ||
	fail "the two peer sets share a key besides B's (the generator's seeds)"
check_alive "$IA"
finish
