#!/bin/bash
# Certificate revocation on the TLS transport (docs/TLS.md, "Revocation"): A listens with
# RequireClientCert, TlsCA and TlsCRL; B is a client over TLS with certificate b (UDP blocked).
# Checks: with an empty CRL B's tunnel works; `secureguard cert revoke` + `cert crl` (written by
# rename) make A re-read the CRL by itself, close B's open connection and refuse its reconnects
# ("certificate revoked"), while another client certificate of the same CA (c, via openssl
# s_client) still gets A's greeting; a CRL A cannot take (signed by another CA) is refused with
# a log line and the lists in use stay; a CRL file that does not exist is refused by `set`.
# shellcheck source=tests/integration/lib.sh disable=SC2154 # PUB_<name> come from sg_keys
. "$(dirname "$0")/lib.sh"
sg_init tr
[ "$SG_IMPL" = secureguardd ] || skip "the TLS transport exists only in secureguardd"
CLI=$SG_BIN/secureguard
[ -x "$CLI" ] || skip "$CLI not built"
command -v nft >/dev/null || skip "missing tool: nft (scripts/deps.sh installs nftables)"
pair_init
TPORT=8443

log "=== certificates: a server one for A, clients b and c, an empty CRL ==="
"$CLI" cert ca --out "$SG_TMP/ca" >/dev/null
"$CLI" cert issue --ca "$SG_TMP/ca" --name a --ip "$(out4 1)" --out "$SG_TMP/a" >/dev/null
"$CLI" cert issue --ca "$SG_TMP/ca" --name b --out "$SG_TMP/b" >/dev/null
"$CLI" cert issue --ca "$SG_TMP/ca" --name c --out "$SG_TMP/c" >/dev/null
"$CLI" cert ca --out "$SG_TMP/evil" >/dev/null
CRL=$SG_TMP/ca.crl
"$CLI" cert crl --ca "$SG_TMP/ca" --out "$CRL" | grep -q '0 revoked' || fail "empty CRL"

nsx "$B" nft -f - <<NFT
table inet sgblock {
	chain out { type filter hook output priority 0; meta l4proto udp ip daddr $(out4 1) drop; }
}
NFT

up "$A" "$IA" secureguardd a "$PORT" 1
up "$B" "$IB" secureguardd b "$PORT" 2
nsx "$A" "$CLI" set "$IA" tls-listen-port "$TPORT" tls-certificate "$SG_TMP/a/a.crt" \
	tls-private-key "$SG_TMP/a/a.key" tls-ca "$SG_TMP/ca/ca.crt" tls-crl "$CRL" \
	require-client-cert true
wg_peer "$A" "$IA" "$PUB_b" "$(in4 2)/32"
nsx "$B" "$CLI" set "$IB" tls-certificate "$SG_TMP/b/b.crt" tls-private-key "$SG_TMP/b/b.key" \
	tls-ca "$SG_TMP/ca/ca.crt" peer "$PUB_a" allowed-ips "$(in4 1)/32" \
	endpoint "$(out4 1):$PORT" tls-endpoint "$(out4 1):$TPORT" transport tls
wait_for 5 grep -q "event=tls_listening" "${D_LOG[$IA]}" || fail "A does not listen for TLS"
nsx "$A" wg show "$IA" >/dev/null

# A's greeting (SG-TLS/1) reaches a client whose certificate A accepted.
# (stdin open for a second, so s_client waits for what the server sends after the handshake;
# then for five: on a loaded machine the handshake alone took a second, A greeted and s_client,
# its stdin at EOF, closed without reading the greeting.)
greeted() {
	local w
	for w in 1 5; do
		sleep $w | nsx "$B" timeout $((w + 4)) openssl s_client -connect "$(out4 1):$TPORT" \
			-cert "$SG_TMP/$1/$1.crt" -key "$SG_TMP/$1/$1.key" -CAfile "$SG_TMP/ca/ca.crt" \
			>"$SG_TMP/greet.out" 2>/dev/null || true
		grep -aq 'SG-TLS/1' "$SG_TMP/greet.out" && return 0
	done
	return 1
}

log "=== nothing revoked: B's tunnel runs over TLS, c is accepted ==="
wait_ping "$B" "$(in4 1)" 15
assert_ping "$B" "$(in4 1)"
greeted c || fail "client c was not accepted"

log "=== b revoked: A re-reads the CRL, closes B's connection and refuses it again ==="
"$CLI" cert revoke --ca "$SG_TMP/ca" "$SG_TMP/b/b.crt" | grep -q '^revoked serial' ||
	fail "cert revoke"
"$CLI" cert crl --ca "$SG_TMP/ca" --out "$CRL" | grep -q '1 revoked' || fail "CRL with b"
wait_for 5 grep -q "event=tls_crl_loaded .*closed=1" "${D_LOG[$IA]}" ||
	fail "A did not re-read the CRL and close B's connection"
wait_for 10 grep -q 'event=tls_refused.*certificate revoked' "${D_LOG[$IA]}" ||
	fail "A did not refuse B's reconnection as revoked"
assert_no_ping "$B" "$(in4 1)"
greeted b && fail "the revoked certificate b was accepted"
greeted c || fail "client c (same CA, not revoked) is refused after b's revocation"

log "=== a CRL signed by another CA is not taken; the lists in use stay ==="
cp "$SG_TMP/ca/revoked.txt" "$SG_TMP/evil/revoked.txt"
"$CLI" cert crl --ca "$SG_TMP/evil" --out "$CRL" >/dev/null
wait_for 5 grep -q "event=tls_crl_not_loaded .*not signed by a CA" "${D_LOG[$IA]}" ||
	fail "A did not log the CRL it refused"
greeted c || fail "client c refused after a bad CRL file"
greeted b && fail "b accepted after a bad CRL file (the old list must stay)"

log "=== a missing CRL file is refused by set, naming it ==="
if nsx "$A" "$CLI" set "$IA" tls-crl "$SG_TMP/missing.crl" 2>"$SG_TMP/bad.err"; then
	fail "a missing CRL file was accepted"
fi
wait_for 5 grep -q "uapi_error.*missing.crl" "${D_LOG[$IA]}" || fail "the refusal does not name the file"
greeted c || fail "the running listener did not stay after the refused CRL"
greeted b && fail "b accepted after the refused CRL path"
finish
