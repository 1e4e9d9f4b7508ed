#!/bin/bash
# shellcheck disable=SC2154 # SRV_<name> variables are set by srv_start (printf -v)
# Keys in hardware (issue 22; docs/SERVER.md "Master key in an HSM", docs/TLS.md): a SoftHSM2
# token in a temporary directory (SOFTHSM2_CONF), P-384 keys generated inside it by pkcs11-tool,
# then through libp11's engine:
#  - the server's master key sealed by the token's key: logins and a client's sealed private key
#    survive a restart; a start without --key-uri, without the token, or with a wrong PIN fails
#    with a clear message; the key file holds public values only;
#  - an existing installation's plain master key sealed in place (`server seal-key`): the same
#    key, so tokens and clients' sealed keys still open;
#  - `secureguard cert` with its CA key in the token: a CA certificate, a certificate issued and a
#    CRL, all verified by openssl against the token's public key;
#  - no file under the test's directory (outside the token's own store) holds a master key or
#    the CA key.
#
# Environment: SG_BIN, SG_SRC (ctest sets them). Exit 77: SoftHSM2, pkcs11-tool or libp11's
# engine missing.
set -u
SRV_TEST=test_server_hsm
# shellcheck source=tests/server/server_lib.sh
. "$(dirname "$0")/../server/server_lib.sh"

[ -x "$SG" ] || { srv_log "SKIP: $SG not built"; exit 77; }
for t in softhsm2-util pkcs11-tool python3 openssl curl xxd; do
	command -v "$t" >/dev/null || { srv_log "SKIP: missing tool $t (scripts/deps.sh)"; exit 77; }
done
MODULE=/usr/lib/softhsm/libsofthsm2.so
[ -f "$MODULE" ] || { srv_log "SKIP: no $MODULE"; exit 77; }
ls "$(openssl version -e | sed 's/^ENGINESDIR: "\(.*\)"$/\1/')"/pkcs11.so >/dev/null 2>&1 ||
	{ srv_log "SKIP: no pkcs11 engine (libengine-pkcs11-openssl)"; exit 77; }

TMP=$(mktemp -d /tmp/sg-hsm.XXXXXX)
cleanup() {
	srv_kill_all
	rm -rf "$TMP"
}
trap cleanup EXIT
fail() { srv_fail "$@"; }

# The token: its store in $TMP/token, found through $TMP/softhsm2.conf only.
mkdir -p "$TMP/token"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
	"$TMP/token" >"$TMP/softhsm2.conf"
export SOFTHSM2_CONF=$TMP/softhsm2.conf
PIN="pin-$$-$RANDOM"
softhsm2-util --init-token --free --label sg-test --pin "$PIN" --so-pin "so-$PIN" >/dev/null ||
	fail "softhsm2-util --init-token"
for obj in master:01 ca:02; do
	pkcs11-tool --module "$MODULE" --token-label sg-test --login --pin "$PIN" --keypairgen \
		--key-type EC:secp384r1 --label "${obj%%:*}" --id "${obj##*:}" >/dev/null 2>&1 ||
		fail "pkcs11-tool --keypairgen ${obj%%:*}"
done
srv_log "token sg-test: P-384 keys 'master' and 'ca' generated inside it"
# The PIN from a file of the operator's (never on a command line).
umask 077
printf '%s\n' "$PIN" >"$TMP/pin"
export SECUREGUARD_PKCS11_PIN_FILE=$TMP/pin
URI_Q="?module-path=$MODULE"
MASTER_URI="pkcs11:token=sg-test;object=master;type=private$URI_Q"
CA_URI="pkcs11:token=sg-test;object=ca;type=private$URI_Q"

srv_admin_env root
DATA=$TMP/srv
DB="sqlite:$DATA/server.db"

api() { # api METHOD PATH TOKEN [BODY]: prints the body; fails on a status >= 400
	curl -sS -f -X "$1" -H "Authorization: Bearer $3" -H 'Content-Type: application/json' \
		${4:+--data "$4"} "$URL$2"
}
json() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# seed NAME SUBNET OUT: logs in at $URL, makes a network and a client, writes the client's
# config (with its private key, sealed under the master key in the database) to OUT; sets
# SEED_TOKEN and SEED_CLIENT.
seed() {
	local net
	SEED_TOKEN=$(srv_login "$URL" "$SG_ADMIN_EMAIL" "$SG_ADMIN_PASSWORD") || fail "login ($1)"
	net=$(api POST /api/networks "$SEED_TOKEN" "{\"name\":\"$1\",\"subnet4\":\"$2\"}" | json id) ||
		fail "create network ($1)"
	SEED_CLIENT=$(api POST /api/clients "$SEED_TOKEN" "{\"network_id\":\"$net\",\"name\":\"laptop\"}" |
		json id) || fail "create client ($1)"
	api GET "/api/clients/$SEED_CLIENT/config" "$SEED_TOKEN" >"$3" || fail "config ($1)"
	grep -qE '^(Fips)?PrivateKey = ' "$3" || fail "the config has no private key ($1): $(cat "$3")"
}

# ---- the master key in the token ------------------------------------------------------------
srv_start a "$DB" "$DATA" --key-uri "$MASTER_URI" || fail "server with --key-uri did not start"
URL=$SRV_URL_a
grep -q "sealed by the token's key" "$SRV_LOG_a" || fail "no 'sealed by the token' line"
grep -q "$PIN" "$SRV_LOG_a" && fail "the PIN is in the server's log"
head -n 1 "$DATA/master.key" | grep -qx 'secureguard-master-key v1 pkcs11-p384-ecdh' ||
	fail "master.key is not the sealed form: $(head -c 80 "$DATA/master.key")"
seed a 10.91.0.0/24 "$TMP/config.1"
TOKEN=$SEED_TOKEN CLIENT=$SEED_CLIENT
srv_stop a || fail "stop a"

# Again, from the sealed file: the access token (HS384 under a key from the master key) and the
# client's private key (AES-256-GCM under another) both still open.
srv_start b "$DB" "$DATA" --key-uri "$MASTER_URI" || fail "second start with the token"
URL=$SRV_URL_b
# (both starts log to $DATA/server.log)
[ "$(grep -c 'created master key' "$SRV_LOG_b")" -eq 1 ] || fail "a second master key was created"
api GET /api/auth/me "$TOKEN" >/dev/null || fail "the access token of the first start is refused"
api GET "/api/clients/$CLIENT/config" "$TOKEN" >"$TMP/config.2" || fail "config after restart"
cmp -s "$TMP/config.1" "$TMP/config.2" || fail "the client's config changed across the restart"
srv_log "restart with the token: the old access token and the client's sealed key still open"
srv_stop b || fail "stop b"

# Without the token: each start refused, with what is missing said.
start_fails() { # start_fails NAME EXPECTED-TEXT [options...]
	local name=$1 want=$2 out
	shift 2
	out=$("$SG" server --listen 127.0.0.1:0 --data-dir "$DATA" --db "$DB" "$@" 2>&1) &&
		fail "$name: the server started"
	grep -qF -- "$want" <<<"$out" || fail "$name: expected '$want', got: $out"
	grep -qF -- "$PIN" <<<"$out" && fail "$name: the PIN is in the message"
	srv_log "$name: refused: $(tail -n 1 <<<"$out")"
}
start_fails "no --key-uri" "is sealed by a PKCS#11 token: start with --key-uri"
mkdir -p "$TMP/empty"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
	"$TMP/empty" >"$TMP/empty.conf"
SOFTHSM2_CONF=$TMP/empty.conf start_fails "token absent" "no private key (token absent" \
	--key-uri "$MASTER_URI"
printf 'wrong-%s\n' "$PIN" >"$TMP/badpin"
SECUREGUARD_PKCS11_PIN_FILE=$TMP/badpin start_fails "wrong PIN" "no private key" \
	--key-uri "$MASTER_URI"
SECUREGUARD_PKCS11_PIN_FILE='' start_fails "no PIN" "no PIN for pkcs11:" --key-uri "$MASTER_URI"
start_fails "PIN in the URI" "pin-value" --key-uri "$MASTER_URI&pin-value=$PIN"
start_fails "another token key" "sealed by another token key" \
	--key-uri "pkcs11:token=sg-test;object=ca;type=private$URI_Q"

# ---- an existing installation: its plain master key sealed in place --------------------------
OLD=$TMP/old
srv_start plain "sqlite:$OLD/server.db" "$OLD" || fail "server with a plain master key"
URL=$SRV_URL_plain
seed plain 10.93.0.0/24 "$TMP/old.1"
OTOKEN=$SEED_TOKEN OCLIENT=$SEED_CLIENT
srv_stop plain || fail "stop plain"
grep -qxE '[0-9a-f]{128}' "$OLD/master.key" || fail "the old master.key is not a plain key"
"$SG" server seal-key --key-file "$OLD/master.key" --key-uri "$MASTER_URI" >"$TMP/seal.out" 2>&1 ||
	fail "server seal-key: $(cat "$TMP/seal.out")"
head -n 1 "$OLD/master.key" | grep -qx 'secureguard-master-key v1 pkcs11-p384-ecdh' ||
	fail "seal-key did not write the sealed form"
out=$("$SG" server seal-key --key-file "$OLD/master.key" --key-uri "$MASTER_URI" 2>&1) &&
	fail "seal-key sealed a sealed file again"
grep -q 'is already sealed' <<<"$out" || fail "seal-key twice: $out"
srv_start sealed "sqlite:$OLD/server.db" "$OLD" --key-uri "$MASTER_URI" || fail "server after seal-key"
URL=$SRV_URL_sealed
api GET /api/auth/me "$OTOKEN" >/dev/null || fail "an access token from before seal-key is refused"
api GET "/api/clients/$OCLIENT/config" "$OTOKEN" >"$TMP/old.2" || fail "config after seal-key"
cmp -s "$TMP/old.1" "$TMP/old.2" || fail "the client's config changed with seal-key"
srv_stop sealed || fail "stop sealed"
srv_log "seal-key: an existing plain master key sealed in place; tokens and sealed client keys still open"

# ---- the CA key in the token ----------------------------------------------------------------
"$SG" cert ca --out "$TMP/ca" --name HSM-CA --key-uri "$CA_URI" >"$TMP/ca.out" 2>&1 ||
	fail "cert ca --key-uri: $(cat "$TMP/ca.out")"
[ -e "$TMP/ca/ca.key" ] && fail "cert ca --key-uri wrote ca.key"
grep -qxF "$CA_URI" "$TMP/ca/ca.key-uri" || fail "ca.key-uri does not name the token key"
# The certificate's public key is the token's: its EC_POINT as pkcs11-tool lists it (a DER
# OCTET STRING 04 61 around 04 || X || Y) against the certificate's point.
token_point=$(pkcs11-tool --module "$MODULE" --token-label sg-test --list-objects --type pubkey \
	2>/dev/null | awk '/EC_POINT:/ { p = $2 } /label: *ca$/ { print p }')
cert_point=$(openssl x509 -in "$TMP/ca/ca.crt" -noout -pubkey | openssl pkey -pubin -outform DER |
	tail -c 97 | xxd -p -c 200)
[ -n "$cert_point" ] && [ "$token_point" = "0461$cert_point" ] ||
	fail "ca.crt does not carry the token's public key ($token_point vs $cert_point)"
openssl verify -CAfile "$TMP/ca/ca.crt" "$TMP/ca/ca.crt" >/dev/null || fail "ca.crt self-signature"
"$SG" cert issue --ca "$TMP/ca" --name vpn.example.com --out "$TMP/issued" >"$TMP/issue.out" 2>&1 ||
	fail "cert issue with the CA key in the token: $(cat "$TMP/issue.out")"
openssl verify -CAfile "$TMP/ca/ca.crt" "$TMP/issued/vpn.example.com.crt" ||
	fail "openssl does not verify the certificate the token signed"
"$SG" cert revoke --ca "$TMP/ca" "$TMP/issued/vpn.example.com.crt" >/dev/null ||
	fail "cert revoke"
"$SG" cert crl --ca "$TMP/ca" --out "$TMP/ca.crl" >/dev/null || fail "cert crl"
openssl crl -in "$TMP/ca.crl" -CAfile "$TMP/ca/ca.crt" -noout 2>&1 | grep -q 'verify OK' ||
	fail "openssl does not verify the CRL the token signed"
SECUREGUARD_PKCS11_PIN_FILE=$TMP/badpin "$SG" cert issue --ca "$TMP/ca" --name other \
	--out "$TMP/issued" >"$TMP/bad.out" 2>&1 && fail "cert issue with a wrong PIN succeeded"
grep -q 'no private key' "$TMP/bad.out" || fail "cert issue, wrong PIN: $(cat "$TMP/bad.out")"
[ -e "$TMP/issued/other.key" ] && fail "a failed issue left other.key"
srv_log "cert: CA certificate, issued certificate and CRL signed in the token, verified by openssl"

# ---- no key file on disk --------------------------------------------------------------------
# Outside the token's own store, the only private key is the leaf's that `cert issue` made (its
# holder's, as with any CA); no CA key, no master key in any form.
found=$(grep -rlE 'PRIVATE KEY' "$TMP" --exclude-dir=token --exclude-dir=empty | grep -vx "$TMP/issued/vpn.example.com.key")
[ -z "$found" ] || fail "private keys on disk: $found"
grep -rlE '^[0-9a-fA-F]{128}$' "$TMP" --exclude-dir=token && fail "a plain master key on disk"
[ "$(grep -c . "$DATA/master.key")" -eq 4 ] || fail "master.key is not four lines"
srv_log "PASS: master key and CA key in the token, no key file on disk"
