#!/bin/bash
# Session tokens of the TLS transport (docs/TLS.md, "Session tokens (phase 2)"), in namespaces,
# with the real server (HTTPS) issuing them for MFA-gated VPN sessions:
#   A: a hub secureguardd, TlsListenPort with RequireSessionToken only (no client certificate),
#      TlsSessionKey from GET /api/tls-session-key
#   B: a laptop secureguardd, Transport = tls, TlsSessionToken = a file
# Checks: another client's (valid) token is admitted by its signature but closed when B's
# handshake comes over it; `secureguard connect --tls-token-out` writes B's own token into the
# file, B re-reads it and the tunnel carries traffic; a client with no token and one with a
# flipped bit are refused, each with its log line; when the session's time ends A closes B's
# open connection and refuses B's next one (token expired).
# shellcheck source=tests/integration/lib.sh disable=SC2154 # PUB_<name> come from sg_keys
. "$(dirname "$0")/lib.sh"
sg_init tt
SRV_TEST=test_tls_token
# shellcheck source=tests/server/server_lib.sh
. "$(dirname "$0")/../server/server_lib.sh"
# shellcheck source=tests/integration/agent_lib.sh
. "$(dirname "$0")/agent_lib.sh"
[ "$SG_IMPL" = secureguardd ] || skip "the TLS transport exists only in secureguardd"
[ -x "$SG" ] || skip "$SG not built"
command -v curl >/dev/null || skip "missing curl"
command -v openssl >/dev/null || fail "openssl missing (scripts/deps.sh installs it)"
pair_init
sg_keys c
TPORT=8443
TOK=$SG_TMP/b-session.jwt
AG_TLS=1
ag_server

log "the server: an owner with TOTP, an mfa_required network, the laptop (B's key) and a phone"
OWNER=owner@example.com
OWNER_PW="owner-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
owner=$(api POST /api/users "{\"email\":\"$OWNER\",\"password\":\"$OWNER_PW\",\"role\":\"viewer\"}" | jget id)
read -r SECRET RC1 _ < <(ag_totp_enrol "$OWNER" "$OWNER_PW") || fail "TOTP enrolment"
[ -n "$RC1" ] || fail "no recovery codes"
net=$(api POST /api/networks '{"name":"tt","subnet4":"10.97.0.0/24","fips_required":false,"mfa_required":true,"mfa_session_hours":1}' | jget id)
for cl in laptop:b phone:c; do
	pub=PUB_${cl#*:}
	st=$(api_status POST /api/clients "{\"network_id\":\"$net\",\"name\":\"${cl%:*}\",\"public_key\":\"${!pub}\",\"owner_id\":\"$owner\"}")
	[ "$st" = 201 ] || { cat "$SG_TMP/api.out"; fail "POST /api/clients ${cl%:*}: $st"; }
done
nsx "${PFX}hub" curl -sf "${AG_CURL[@]}" "$AG_URL/api/tls-session-key" | jget pem >"$SG_TMP/session-key.pem" ||
	fail "GET /api/tls-session-key"
# The phone's session, opened with a recovery code: its token is valid, but for the phone's key.
nsx "${PFX}hub" curl -sf "${AG_CURL[@]}" -H 'Content-Type: application/json' \
	--data "{\"client\":\"phone\",\"email\":\"$OWNER\",\"password\":\"$OWNER_PW\",\"code\":\"$RC1\"}" \
	"$AG_URL/api/vpn-sessions" >"$SG_TMP/phone.json" || fail "POST /api/vpn-sessions (phone)"
jget tls_session_token <"$SG_TMP/phone.json" >"$SG_TMP/phone.jwt"
# Inspectable: a JWT whose claims name the phone's key.
python3 - "$SG_TMP/phone.jwt" "$PUB_c" <<-'PY' || fail "the phone's token is not the JWT documented"
	import base64, json, sys
	h, c, s = open(sys.argv[1]).read().strip().split(".")
	dec = lambda p: json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
	h, c = dec(h), dec(c)
	assert h["alg"] == "ES384" and h["typ"] == "sg-tls-session+jwt", h
	assert c["cpk"] == sys.argv[2] and c["exp"] > c["nbf"], c
	assert len(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))) == 96
	PY

log "A listens with RequireSessionToken; B holds the phone's token"
"$SG" cert ca --out "$SG_TMP/ca" >/dev/null
"$SG" cert issue --ca "$SG_TMP/ca" --name a --ip "$(out4 1)" --out "$SG_TMP/a" >/dev/null
up "$A" "$IA" secureguardd a "$PORT" 1
up "$B" "$IB" secureguardd b "$PORT" 2
nsx "$A" "$SG" set "$IA" tls-listen-port "$TPORT" tls-certificate "$SG_TMP/a/a.crt" \
	tls-private-key "$SG_TMP/a/a.key" tls-session-key "$SG_TMP/session-key.pem" \
	require-session-token true
wg_peer "$A" "$IA" "$PUB_b" "$(in4 2)/32"
wg_peer "$A" "$IA" "$PUB_c" "$(in4 3)/32"
wait_for 5 grep -q "event=tls_listening.*session_token=required" "${D_LOG[$IA]}" ||
	fail "A does not listen for TLS with session tokens"
(umask 077 && cp "$SG_TMP/phone.jwt" "$TOK")
nsx "$B" "$SG" set "$IB" tls-ca "$SG_TMP/ca/ca.crt" tls-session-token "$TOK" peer "$PUB_a" \
	allowed-ips "$(in4 1)/32" endpoint "$(out4 1):$PORT" tls-endpoint "$(out4 1):$TPORT" \
	transport tls
nsx "$B" "$SG" show "$IB" >/dev/null
ping1 "$B" "$(in4 1)" || true
wait_for 15 grep -q "event=tls_refused.*session token is for peer ${PUB_c:0:8}" "${D_LOG[$IA]}" ||
	fail "A did not refuse B's handshake over the phone's token"
grep "session token is for peer" "${D_LOG[$IA]}" | head -n 1
assert_no_ping "$B" "$(in4 1)"

log "refused: no token, and a token with one bit flipped"
# hello TOKENFILE|-: a TLS client that reads A's greeting and answers with the token's
# hello, or (-) with a frame, as a client without a token does; A's refusal is in its log.
hello() {
	nsx "$B" python3 - "$(out4 1)" "$TPORT" "$SG_TMP/ca/ca.crt" "$1" <<-'PY' || true
	import socket, ssl, struct, sys
	host, port, ca, tok = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
	ctx = ssl.create_default_context(cafile=ca)
	s = ctx.wrap_socket(socket.create_connection((host, port), timeout=5), server_hostname=host)
	g = s.recv(12)
	assert g[:8] == b"SG-TLS/1" and g[8] & 2, g
	if tok == "-":
	    s.sendall(struct.pack(">H", 4) + b"\x01\x00\x00\x00")
	else:
	    t = open(tok, "rb").read().strip()
	    s.sendall(b"SG-TLS/1\x01\x00" + struct.pack(">H", len(t)) + t)
	try:
	    s.recv(1)
	except OSError:
	    pass
	PY
}
hello -
wait_for 10 grep -q 'event=tls_refused.*reason="no session token' "${D_LOG[$IA]}" ||
	fail "A did not refuse the client without a token"
python3 - "$SG_TMP/phone.jwt" "$SG_TMP/forged.jwt" <<-'PY'
	import sys
	t = bytearray(open(sys.argv[1], "rb").read().strip())
	i = t.index(b".") + 20  # a character of the claims
	t[i] ^= 0x01
	open(sys.argv[2], "wb").write(bytes(t))
	PY
hello "$SG_TMP/forged.jwt"
wait_for 10 grep -q 'event=tls_refused.*does not verify' "${D_LOG[$IA]}" ||
	fail "A did not refuse the forged token"
grep 'event=tls_refused' "${D_LOG[$IA]}" | tail -n 2

log "secureguard connect --tls-token-out: B's own token; B re-reads it and the tunnel works"
code=$(ag_totp_code "$SECRET")
ip netns exec "$B" env SECUREGUARD_PASSWORD="$OWNER_PW" "$SG" connect --server "$AG_URL" \
	"${AG_CAOPT[@]}" --email "$OWNER" --code "$code" --state-dir "$SG_TMP/state" \
	--duration 25 --tls-token-out "$TOK" laptop >"$SG_TMP/connect.log" 2>&1 ||
	{ cat "$SG_TMP/connect.log"; fail "secureguard connect"; }
expires=$(python3 -c 'import glob, json, sys; print(json.load(open(glob.glob(sys.argv[1] + "/vpn-session-*.json")[0]))["expires_at"])' "$SG_TMP/state")
[ "$(stat -c %a "$TOK")" = 600 ] || fail "the token file is not 0600"
wait_for 5 grep -q "event=tls_token_loaded.*file=$TOK" "${D_LOG[$IB]}" || fail "B did not re-read its token"
wait_ping "$B" "$(in4 1)" 20
assert_ping "$B" "$(in4 1)"
assert_ping "$A" "$(in4 2)"
grep "event=tls_token_accepted" "${D_LOG[$IA]}" | tail -n 1

log "the session's end: A closes B's connection and refuses the expired token"
left=$((expires - $(date +%s)))
[ "$left" -gt 0 ] || fail "the session ended before its checks were done; nothing to measure"
log "the session ends in about $left s"
wait_for $((left + 5)) grep -q 'event=tls_down.*reason="session token expired"' "${D_LOG[$IA]}" ||
	fail "A did not close B's connection at the token's expiry"
log "measured: A closed B's connection $(($(date +%s) - expires)) s after the session's end (whole seconds)"
[ "$(date +%s)" -ge "$expires" ] || fail "the connection was closed before the session's end"
wait_for 10 grep -q 'event=tls_refused.*reason="session token expired"' "${D_LOG[$IA]}" ||
	fail "A did not refuse B's reconnection with the expired token"
assert_no_ping "$B" "$(in4 1)"
finish
