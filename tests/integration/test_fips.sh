#!/bin/bash
# FIPS mode (docs/PROTOCOL.md) between real daemons in namespaces, all on one bridge:
#   A: secureguardd with a classic and a FIPS key, CryptoMode auto (the default)
#   B: secureguardd with both keys; A and B know each other's FIPS keys -> they negotiate FIPS
#   C: wireguard-go, classic only, talking to A on the same port at the same time
# Checks: FIPS handshake and IPv4/IPv6 traffic A<->B (TCP transfer with sha256), every data
# packet between A and B carries mode byte 0x01 and the handshake has the FIPS sizes (pcap),
# classic traffic A<->C at the same time, `secureguard show` names each peer's mode, `wg show`
# still works, showconf keeps the FIPS keys, FipsStrict is refused without a FIPS provider,
# and after `crypto-mode fips` A refuses wireguard-go's classic handshakes and says why.
# test_fips_provider.sh runs this script again with OpenSSL's FIPS provider active
# (OPENSSL_CONF, SG_EXPECT_FIPS_PROVIDER=1): then FipsStrict is accepted, and each daemon's
# crypto_providers line must name the fips provider for the FIPS suite, default for classic.
# shellcheck source=tests/integration/lib.sh disable=SC2154 # PUB_<name> come from sg_keys
. "$(dirname "$0")/lib.sh"
sg_init fp
[ "$SG_IMPL" = secureguardd ] || skip "FIPS mode exists only in secureguardd"
CLI=$SG_BIN/secureguard
[ -x "$CLI" ] || skip "$CLI not built"
pair_init 3
C=${HOST[3]} IC=${PFX}c
sg_keys c

# fips_keys NAME: $SG_TMP/NAME.fkey (mode 0600) and FPUB_NAME.
fips_keys() {
	(umask 077 && "$CLI" genkey --fips >"$SG_TMP/$1.fkey")
	printf -v "FPUB_$1" '%s' "$("$CLI" pubkey --fips <"$SG_TMP/$1.fkey")"
}
fips_keys a
fips_keys b
[ "${#FPUB_a}" -eq 68 ] || fail "FIPS public key is not 68 base64 characters: $FPUB_a"

# A seals and opens on two crypto lanes (AES-256-GCM and ChaCha20-Poly1305 sessions side by
# side in one pool), B on the default.
SG_CRYPTO_THREADS=2 up "$A" "$IA" secureguardd a "$PORT" 1
up "$B" "$IB" secureguardd b "$PORT" 2
up "$C" "$IC" wireguard-go c "$PORT" 3
grep -q 'event=crypto_lanes .*lanes=2 from=SG_CRYPTO_THREADS' "${D_LOG[$IA]}" ||
	fail "A did not start two crypto lanes: $(grep crypto_lanes "${D_LOG[$IA]}")"
nsx "$A" "$CLI" set "$IA" fips-private-key "$SG_TMP/a.fkey"
nsx "$B" "$CLI" set "$IB" fips-private-key "$SG_TMP/b.fkey"
nsx "$A" "$CLI" set "$IA" peer "$PUB_b" fips-public-key "$FPUB_b" \
	allowed-ips "$(in4 2)/32,$(in6 2)/128" endpoint "$(out4 2):$PORT"
nsx "$B" "$CLI" set "$IB" peer "$PUB_a" fips-public-key "$FPUB_a" \
	allowed-ips "$(in4 1)/32,$(in6 1)/128"
wg_peer "$A" "$IA" "$PUB_c" "$(in4 3)/32,$(in6 3)/128" endpoint "$(out4 3):$PORT"
wg_peer "$C" "$IC" "$PUB_a" "$(in4 1)/32,$(in6 1)/128"

# Everything between A and B on A's wire, from before the first handshake.
nsx "$A" tcpdump -U -n -i veth0 -w "$SG_TMP/ab.pcap" "udp and host $(out4 2)" \
	2>"$SG_TMP/tcpdump.err" &
cap=$!
wait_for 5 grep -q listening "$SG_TMP/tcpdump.err" || fail "tcpdump did not start"

log "=== A and B negotiate FIPS ==="
wait_ping "$A" "$(in4 2)" 10
assert_ping "$A" "$(in4 2)"
assert_ping "$B" "$(in4 1)"
assert_ping "$A" "$(in6 2)"
assert_ping "$B" "$(in6 1)"
tcp_transfer "$A" "$B" "$(in4 2)" 8
tcp_transfer "$B" "$A" "$(in6 1)" 8
assert_counters "$A" "$IA" "$PUB_b" "$B" "$IB" "$PUB_a"

log "=== A and wireguard-go (classic) at the same time, same port ==="
wait_ping "$A" "$(in4 3)" 10
assert_ping "$C" "$(in4 1)"
assert_ping "$A" "$(in6 3)"
assert_ping "$A" "$(in4 2)"

log "=== what the tools show ==="
nsx "$A" "$CLI" show "$IA" >"$SG_TMP/show.txt"
cat "$SG_TMP/show.txt"
# The line after a peer's header block: "crypto mode: fips" for B, "classic" for C.
mode_of() { awk -v k="$1" '/^peer: /{p = ($2 == k)} p && /crypto mode:/ {print $3; exit}' "$SG_TMP/show.txt"; }
assert_eq "$(mode_of "$PUB_b")" fips "secureguard show: B's crypto mode"
assert_eq "$(mode_of "$PUB_c")" classic "secureguard show: C's crypto mode"
grep -q "fips public key: $FPUB_b" "$SG_TMP/show.txt" || fail "show does not list B's FIPS key"
nsx "$A" wg show "$IA" >"$SG_TMP/wgshow.txt" || fail "wg show fails on an interface with FIPS peers"
grep -q "peer: $PUB_b" "$SG_TMP/wgshow.txt" || fail "wg show does not list B"
has_handshake "$A" "$IA" "$PUB_b" || fail "wg show: no handshake time for the FIPS peer"
nsx "$A" "$CLI" showconf "$IA" >"$SG_TMP/a.conf"
grep -q "^FipsPrivateKey = $(cat "$SG_TMP/a.fkey")\$" "$SG_TMP/a.conf" || fail "showconf lost FipsPrivateKey"
grep -q "^FipsPublicKey = $FPUB_b\$" "$SG_TMP/a.conf" || fail "showconf lost B's FipsPublicKey"

log "=== the wire: FIPS sizes and mode byte 0x01 on every data packet ==="
sleep 0.5
kill -TERM "$cap"
wait "$cap" || true
python3 - "$SG_TMP/ab.pcap" >"$SG_TMP/wire.txt" <<'EOF' || fail "capture check: $(cat "$SG_TMP/wire.txt")"
import struct, sys
data = open(sys.argv[1], "rb").read()
magic = struct.unpack("<I", data[:4])[0]
end = "<" if magic in (0xa1b2c3d4, 0xa1b23c4d) else ">"
link = struct.unpack(end + "I", data[20:24])[0]
pos, counts, bad = 24, {}, []
while pos + 16 <= len(data):
    incl = struct.unpack(end + "IIII", data[pos:pos + 16])[2]
    pkt = data[pos + 16:pos + 16 + incl]
    pos += 16 + incl
    off = 14 if link == 1 else 16  # Ethernet or Linux cooked
    ip = pkt[off:]
    if ip[0] >> 4 == 4:
        udp = ip[(ip[0] & 15) * 4:]
    else:
        udp = ip[40:]
    p = udp[8:]
    key = (p[0], p[1], len(p))
    if p[0] == 4:
        key = (4, p[1], "data")
    counts[key] = counts.get(key, 0) + 1
    if p[0] == 4 and p[1] != 1:
        bad.append(len(p))
    if p[0] in (1, 2) and (p[1], len(p)) not in ((1, 184), (1, 111)):
        bad.append(("handshake", p[1], len(p)))
for k, v in sorted(counts.items(), key=str):
    print("type %s mode %s len %s: %d" % (k[0], k[1], k[2], v))
if bad:
    print("not FIPS:", bad[:10]); sys.exit(1)
if counts.get((4, 1, "data"), 0) < 100 or counts.get((1, 1, 184), 0) < 1 or counts.get((2, 1, 111), 0) < 1:
    print("too few FIPS packets"); sys.exit(1)
EOF
cat "$SG_TMP/wire.txt"

if [ "${SG_EXPECT_FIPS_PROVIDER:-0}" = 1 ]; then
	log "=== OpenSSL's FIPS provider (test_fips_provider.sh): where each suite comes from ==="
	for i in "$IA" "$IB"; do
		line=$(grep 'event=crypto_providers' "${D_LOG[$i]}" | head -n 1)
		log "$i: $line"
		case $line in
		*"fips_suite=fips classic_suite=default "*"fips_self_test=passed"*) ;;
		*) fail "$i: the FIPS suite does not come from the FIPS provider alone: $line" ;;
		esac
	done
fi

log "=== FipsStrict without a FIPS provider is refused with its reason ==="
printf '[Interface]\nFipsStrict = true\n' >"$SG_TMP/strict.conf"
if nsx "$A" "$CLI" addconf "$IA" "$SG_TMP/strict.conf" 2>"$SG_TMP/strict.err"; then
	nsx "$A" "$CLI" show "$IA" | grep -q "FIPS provider required" ||
		fail "FipsStrict accepted but not shown"
	log "this OpenSSL has an active FIPS provider: FipsStrict accepted"
else
	grep -q "fips_strict: OpenSSL has no active FIPS provider" "${D_LOG[$IA]}" ||
		fail "FipsStrict refused without a reason in the log: $(cat "$SG_TMP/strict.err")"
	assert_ping "$A" "$(in4 2)"
fi

log "=== CryptoMode = fips: wireguard-go's classic handshake is refused, and A says why ==="
nsx "$A" "$CLI" set "$IA" crypto-mode fips
# A dropped its classic session with C; C forgets its own too (as after a restart), so its next
# packet starts a classic handshake at once instead of after wireguard-go's 15 s timeout.
nsx "$C" wg set "$IC" peer "$PUB_a" remove
wg_peer "$C" "$IC" "$PUB_a" "$(in4 1)/32,$(in6 1)/128" endpoint "$(out4 1):$PORT"
assert_no_ping "$C" "$(in4 1)"
wait_for 10 grep -q "event=crypto_mode_refused.*offered classic; CryptoMode = fips allows FIPS only" \
	"${D_LOG[$IA]}" || fail "A did not log why it refused C"
grep "event=crypto_mode_refused" "${D_LOG[$IA]}" | tail -n 1
assert_ping "$A" "$(in4 2)"
assert_eq "$(nsx "$A" wg show "$IA" dump | awk -v k="$PUB_b" '$1 == k' | wc -l)" 1 "B still listed"
finish
