#!/bin/bash
# Passkeys in the admin console (issue 22, docs/CONSOLE.md "Passkeys"): Debian's Chromium driven
# by playwright-core (web/tests/e2e/passkeys.mjs) with Chromium's virtual authenticator (the
# DevTools protocol's WebAuthn domain: CTAP2, resident keys, user verification), against a real
# server whose --public-url is http://localhost:PORT (the relying party; plain http is a secure
# context only for localhost): a passkey added in Settings, a login with the password and the
# passkey as the second step, a login with the passkey alone, the server's audit and counter,
# rename and removal, a super_admin's removal of that user's passkeys in Admin users (which
# ends his session), and no Content-Security-Policy violation.
#
# Environment: SG_BIN, SG_SRC (ctest sets them). Exit 77: something needed is missing.
set -u
SRV_TEST=test_console_passkeys
# shellcheck source=tests/server/server_lib.sh
. "$(dirname "$0")/../server/server_lib.sh"

[ -x "$SG" ] || { srv_log "SKIP: $SG not built"; exit 77; }
CONSOLE=$SG_BIN/../share/secureguard/console
WEB=$SG_SRC/web
[ -f "$CONSOLE/index.html" ] || { srv_log "SKIP: the console is not built ($CONSOLE)"; exit 77; }
for t in node curl chromium python3; do
	command -v "$t" >/dev/null || { srv_log "SKIP: missing $t (scripts/deps.sh installs it)"; exit 77; }
done
[ -d "$WEB/node_modules/playwright-core" ] || { srv_log "SKIP: web/node_modules is missing"; exit 77; }

TMP=$(mktemp -d /tmp/sg-console-passkeys.XXXXXX)
cleanup() {
	srv_kill_all
	rm -rf "$TMP"
}
trap cleanup EXIT
fail() { srv_fail "$@"; }

srv_admin_env root
# The relying party must be known before the server starts: a free port, then the server on it
# (a port taken in between makes the start fail, and the test with it: never a wrong pass).
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://localhost:$PORT"
mkdir -p "$TMP/pk"
"$SG" server --listen "127.0.0.1:$PORT" --data-dir "$TMP/pk" --db "sqlite:$TMP/pk/server.db" \
	--public-url "$URL" --console-dir "$CONSOLE" >>"$TMP/pk/server.log" 2>&1 &
SRV_PID_pk=$!
ok=
for _ in $(seq 1 200); do
	curl -sf "$URL/api/health" >/dev/null 2>&1 && { ok=1; break; }
	kill -0 "$SRV_PID_pk" 2>/dev/null || break
	sleep 0.1
done
[ -n "$ok" ] || { cat "$TMP/pk/server.log"; fail "server on $URL did not answer"; }

ADMIN_PW="admin-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
tok=$(srv_login "$URL" "$SG_ADMIN_EMAIL" "$SG_ADMIN_PASSWORD") || fail "root login"
curl -sf -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
	-d "{\"email\":\"admin@example.com\",\"password\":\"$ADMIN_PW\",\"role\":\"admin\"}" \
	"$URL/api/users" >/dev/null || fail "creating the admin"

OUT=$SG_BIN/../console-screenshots
mkdir -p "$OUT"
SG_URL="$URL" SG_EMAIL=admin@example.com SG_PASSWORD="$ADMIN_PW" SG_OUT="$OUT" HOME="$TMP" \
	SG_ROOT_EMAIL="$SG_ADMIN_EMAIL" SG_ROOT_PASSWORD="$SG_ADMIN_PASSWORD" \
	timeout 300 node "$WEB/tests/e2e/passkeys.mjs" >"$TMP/e2e.log" 2>&1
rc=$?
cat "$TMP/e2e.log"
[ "$rc" -eq 0 ] || { tail -n 30 "$TMP/pk/server.log"; fail "the browser test failed (screenshots in $OUT)"; }
"$SG" audit verify --db "sqlite:$TMP/pk/server.db" || fail "audit chain after the passkey logins"
kill -TERM "$SRV_PID_pk"
wait "$SRV_PID_pk" || fail "graceful shutdown"
unset SRV_PID_pk
srv_log "PASS"
