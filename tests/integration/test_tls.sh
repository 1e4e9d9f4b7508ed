#!/bin/bash
# The TLS transport (docs/TLS.md) between two secureguardd in namespaces, with UDP blocked
# between them by nftables:
#   A: TlsListenPort 8443, server certificate for its address, RequireClientCert, CA
#   B: peer A with Transport = tls, then auto; client certificate from the same CA
# Checks: the tunnel comes up over TLS and carries ping (v4/v6 inner) and a TCP transfer with
# sha256; `secureguard show` says tls; a client with a certificate from another CA and a plain
# TCP client are refused with a log line while B keeps working; with Transport = auto and UDP
# blocked B moves to TLS, and when UDP is unblocked it moves back (both logged).
# shellcheck source=tests/integration/lib.sh disable=SC2154 # PUB_<name> come from sg_keys
. "$(dirname "$0")/lib.sh"
sg_init tl
[ "$SG_IMPL" = secureguardd ] || skip "the TLS transport exists only in secureguardd"
CLI=$SG_BIN/secureguard
[ -x "$CLI" ] || skip "$CLI not built"
command -v nft >/dev/null || skip "missing tool: nft (scripts/deps.sh installs nftables)"
pair_init
TPORT=8443
export SG_TLS_PROBE_SECS=3 # auto: probe UDP every 3 s instead of 60

log "=== certificates: one CA, a server certificate for A's address, a client one for B ==="
"$CLI" cert ca --out "$SG_TMP/ca" >/dev/null
"$CLI" cert issue --ca "$SG_TMP/ca" --name a --ip "$(out4 1)" --ip "$(out6 1)" --out "$SG_TMP/a" >/dev/null
"$CLI" cert issue --ca "$SG_TMP/ca" --name b --out "$SG_TMP/b" >/dev/null
"$CLI" cert ca --out "$SG_TMP/evil" >/dev/null
"$CLI" cert issue --ca "$SG_TMP/evil" --name x --out "$SG_TMP/x" >/dev/null

# UDP between the two hosts dropped in B (both directions, both families): only TCP gets through.
block_udp() {
	nsx "$B" nft -f - <<EOF
table inet sgblock {
	chain out { type filter hook output priority 0; meta l4proto udp ip daddr $(out4 1) drop; meta l4proto udp ip6 daddr $(out6 1) drop; }
	chain in { type filter hook input priority 0; meta l4proto udp ip saddr $(out4 1) drop; meta l4proto udp ip6 saddr $(out6 1) drop; }
}
EOF
}
unblock_udp() { nsx "$B" nft delete table inet sgblock; }
block_udp

up "$A" "$IA" secureguardd a "$PORT" 1
up "$B" "$IB" secureguardd b "$PORT" 2
nsx "$A" "$CLI" set "$IA" tls-listen-port "$TPORT" tls-certificate "$SG_TMP/a/a.crt" \
	tls-private-key "$SG_TMP/a/a.key" tls-ca "$SG_TMP/ca/ca.crt" require-client-cert true
wg_peer "$A" "$IA" "$PUB_b" "$(in4 2)/32,$(in6 2)/128"
nsx "$B" "$CLI" set "$IB" tls-certificate "$SG_TMP/b/b.crt" tls-private-key "$SG_TMP/b/b.key" \
	tls-ca "$SG_TMP/ca/ca.crt" peer "$PUB_a" allowed-ips "$(in4 1)/32,$(in6 1)/128" \
	endpoint "$(out4 1):$PORT" tls-endpoint "$(out4 1):$TPORT" transport tls
wait_for 5 grep -q "event=tls_listening" "${D_LOG[$IA]}" || fail "A does not listen for TLS"

log "=== Transport = tls, UDP blocked: the tunnel runs over TLS ==="
wait_ping "$B" "$(in4 1)" 15
assert_ping "$B" "$(in4 1)"
assert_ping "$A" "$(in4 2)"
assert_ping "$B" "$(in6 1)"
tcp_transfer "$B" "$A" "$(in4 1)" 2
tcp_transfer "$A" "$B" "$(in6 2)" 1
nsx "$B" "$CLI" show "$IB" | tee "$SG_TMP/show.txt"
grep -q "transport: tls, now tls, tls endpoint $(out4 1):$TPORT" "$SG_TMP/show.txt" ||
	fail "secureguard show does not say the peer is on TLS"
# A knows B by its TLS connection: B's address and B's TCP port (not the UDP port).
ep=$(wg_dump_field "$A" "$IA" "$PUB_b" endpoint)
case $ep in "$(out4 2):$PORT" | "" | "(none)") fail "A's endpoint for B is not a TLS connection: $ep" ;; esac
# (the listener is dual-stack: ss shows B as [::ffff:192.0.2.2]:port)
nsx "$A" ss -Htn state established "( sport = :$TPORT )" | grep -q "$(out4 2)\]*:${ep##*:}\b" ||
	fail "A's endpoint for B ($ep) is not its TLS connection"

log "=== refused: a certificate from another CA, and plain TCP; B keeps working ==="
nsx "$B" timeout 5 openssl s_client -connect "$(out4 1):$TPORT" -cert "$SG_TMP/x/x.crt" \
	-key "$SG_TMP/x/x.key" -CAfile "$SG_TMP/ca/ca.crt" </dev/null >/dev/null 2>&1 || true
printf 'GET / HTTP/1.0\r\n\r\n' | nsx "$B" timeout 5 socat - "TCP:$(out4 1):$TPORT" >/dev/null 2>&1 || true
wait_for 10 grep -q 'event=tls_refused.*certificate' "${D_LOG[$IA]}" ||
	fail "A did not log the refused certificate"
wait_for 10 grep -q 'event=tls_refused.*not TLS' "${D_LOG[$IA]}" ||
	fail "A did not log the plain TCP client"
grep 'event=tls_refused' "${D_LOG[$IA]}" | head -n 3
assert_ping "$B" "$(in4 1)"
# A bad certificate path is refused with the file named, and the running listener stays.
if nsx "$A" "$CLI" set "$IA" tls-certificate "$SG_TMP/missing.crt" 2>"$SG_TMP/bad.err"; then
	fail "a missing certificate file was accepted"
fi
wait_for 5 grep -q "uapi_error.*missing.crt" "${D_LOG[$IA]}" || fail "the refusal does not name the file"
assert_ping "$B" "$(in4 1)"
# Setting it again rebuilds the listener: B's connection is closed and B reconnects by itself.
nsx "$A" "$CLI" set "$IA" tls-certificate "$SG_TMP/a/a.crt"
wait_ping "$B" "$(in4 1)" 15
assert_ping "$B" "$(in4 1)"

log "=== Transport = auto: UDP blocked -> TLS; UDP open again -> back to UDP ==="
# Start from UDP: drop the TLS session, forget it on both sides.
nsx "$B" "$CLI" set "$IB" peer "$PUB_a" transport auto
nsx "$B" wg set "$IB" peer "$PUB_a" remove
nsx "$A" wg set "$IA" peer "$PUB_b" remove
wg_peer "$A" "$IA" "$PUB_b" "$(in4 2)/32,$(in6 2)/128"
nsx "$B" "$CLI" set "$IB" peer "$PUB_a" allowed-ips "$(in4 1)/32,$(in6 1)/128" \
	endpoint "$(out4 1):$PORT" tls-endpoint "$(out4 1):$TPORT" transport auto
wait_ping "$B" "$(in4 1)" 30
wait_for 5 grep -q "event=transport_switch .*from=udp to=tls reason=no_handshake_over_udp" \
	"${D_LOG[$IB]}" || fail "B did not log its move to TLS"
assert_ping "$B" "$(in4 1)"
unblock_udp
log "UDP unblocked; B probes UDP every ${SG_TLS_PROBE_SECS} s"
wait_for 30 grep -q "event=transport_switch .*from=tls to=udp reason=udp_answers_again" \
	"${D_LOG[$IB]}" || fail "B did not move back to UDP"
assert_ping "$B" "$(in4 1)"
assert_eq "$(wg_dump_field "$A" "$IA" "$PUB_b" endpoint)" "$(out4 2):$PORT" "A's endpoint for B after the move back"
grep 'event=transport_switch' "${D_LOG[$IB]}"
finish
