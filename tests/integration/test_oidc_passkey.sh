#!/bin/bash
# `secureguard connect --oidc` with a passkey on the OpenID provider's login page (issue 22,
# docs/SERVER.md "VPN sessions through the OpenID provider"): the real command waits on its
# loopback listener; Debian's Chromium, driven by playwright-core (tests/browser/oidc_passkey.mjs)
# with its virtual authenticator, opens the address the command printed, signs in with the
# password and the account's passkey (its only second factor), and is sent back to the command,
# which opens the VPN session. Then: the session is listed, the login audited with the passkey,
# the command's session file kept, and `disconnect` ends it. Against a real server whose
# --public-url is http://localhost:PORT (the relying party; plain http is a secure context only
# for localhost).
#
# Environment: SG_BIN, SG_SRC (ctest sets them). Exit 77: something needed is missing.
set -u
SRV_TEST=test_oidc_passkey
# shellcheck source=tests/server/server_lib.sh
. "$(dirname "$0")/../server/server_lib.sh"

[ -x "$SG" ] || { srv_log "SKIP: $SG not built"; exit 77; }
for t in node curl chromium python3; do
	command -v "$t" >/dev/null || { srv_log "SKIP: missing $t (scripts/deps.sh installs it)"; exit 77; }
done
BROWSER=$SG_SRC/tests/browser
[ -d "$BROWSER/node_modules/playwright-core" ] || { srv_log "SKIP: tests/browser has no node_modules"; exit 77; }

TMP=$(mktemp -d /tmp/sg-oidc-passkey.XXXXXX)
cleanup() {
	srv_kill_all
	[ -n "${CONNECT_PID:-}" ] && kill -KILL "$CONNECT_PID" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
fail() { srv_fail "$@"; }
t_start=$(date +%s)

srv_admin_env root
# The relying party must be known before the server starts: a free port, then the server on it
# (a port taken in between makes the start fail, and the test with it: never a wrong pass).
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://localhost:$PORT"
mkdir -p "$TMP/srv"
"$SG" server --listen "127.0.0.1:$PORT" --data-dir "$TMP/srv" --db "sqlite:$TMP/srv/server.db" \
	--public-url "$URL" >>"$TMP/srv/server.log" 2>&1 &
SRV_PID_op=$!
ok=
for _ in $(seq 1 200); do
	curl -sf "$URL/api/health" >/dev/null 2>&1 && { ok=1; break; }
	kill -0 "$SRV_PID_op" 2>/dev/null || break
	sleep 0.1
done
[ -n "$ok" ] || { cat "$TMP/srv/server.log"; fail "server on $URL did not answer"; }

api() { # METHOD PATH [BODY]
	curl -sf -X "$1" -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
		${3:+-d "$3"} "$URL$2"
}
jget() { python3 -c 'import json, sys; d = json.load(sys.stdin)
for k in sys.argv[1].split("."): d = d[int(k)] if isinstance(d, list) else d[k]
print(d)' "$1"; }
tok=$(srv_login "$URL" "$SG_ADMIN_EMAIL" "$SG_ADMIN_PASSWORD") || fail "root login"
OWNER=owner@example.com
OWNER_PW="owner-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
owner=$(api POST /api/users "{\"email\":\"$OWNER\",\"password\":\"$OWNER_PW\",\"role\":\"viewer\"}" | jget id) ||
	fail "creating the owner"
net=$(api POST /api/networks '{"name":"mfa","subnet4":"10.97.0.0/24","mfa_required":true}' | jget id) ||
	fail "creating the network"
lap=$(api POST /api/clients "{\"network_id\":\"$net\",\"name\":\"laptop\",\"owner_id\":\"$owner\"}" | jget id) ||
	fail "creating the client"

srv_log "secureguard connect --oidc --no-browser: waiting on its loopback listener"
"$SG" connect --server "$URL" --oidc --no-browser --state-dir "$TMP/state" laptop \
	>"$TMP/connect.out" 2>"$TMP/connect.err" &
CONNECT_PID=$!
auth=
for _ in $(seq 1 100); do
	auth=$(grep -o "$URL/oauth2/authorize?[^ ]*" "$TMP/connect.err" | head -n1)
	[ -n "$auth" ] && break
	kill -0 "$CONNECT_PID" 2>/dev/null || break
	sleep 0.1
done
[ -n "$auth" ] || { cat "$TMP/connect.err"; fail "connect printed no authorization address"; }

SG_URL="$URL" SG_EMAIL="$OWNER" SG_PASSWORD="$OWNER_PW" HOME="$TMP" \
	timeout 120 node "$BROWSER/oidc_passkey.mjs" "$auth" >"$TMP/e2e.log" 2>&1
rc=$?
cat "$TMP/e2e.log"
[ "$rc" -eq 0 ] || { cat "$TMP/connect.err"; tail -n 30 "$TMP/srv/server.log"; fail "the browser test failed"; }
wait "$CONNECT_PID" || { cat "$TMP/connect.err"; fail "secureguard connect --oidc failed"; }
unset CONNECT_PID
grep -q '^connected: session .* of client laptop' "$TMP/connect.out" ||
	{ cat "$TMP/connect.out"; fail "connect did not say connected"; }
stat -c %a "$TMP/state"/vpn-session-*.json | grep -qx 600 || fail "no 0600 session file"

api GET "/api/vpn-sessions?client_id=$lap&active=true" >"$TMP/sessions.json" || fail "listing sessions"
[ "$(jget total <"$TMP/sessions.json")" = 1 ] && [ "$(jget items.0.user_id <"$TMP/sessions.json")" = "$owner" ] ||
	{ cat "$TMP/sessions.json"; fail "the session is not listed as the owner's"; }
api GET "/api/audit?event_type=oidc.authorized&limit=10" | grep -q '\\"second_factor\\":\\"passkey\\"\|"second_factor":"passkey"' ||
	fail "the provider's login is not audited with the passkey"
api GET "/api/audit?event_type=vpn_session.opened&limit=10" | grep -q 'oidc' ||
	fail "the session's opening does not say it came through the provider"
"$SG" disconnect --state-dir "$TMP/state" laptop >>"$TMP/connect.out" 2>&1 ||
	{ cat "$TMP/connect.out"; fail "disconnect"; }
[ "$(api GET "/api/vpn-sessions?client_id=$lap&active=true" | jget total)" = 0 ] || fail "still open after disconnect"

"$SG" audit verify --db "sqlite:$TMP/srv/server.db" || fail "audit chain after the logins"
kill -TERM "$SRV_PID_op"
wait "$SRV_PID_op" || fail "graceful shutdown"
unset SRV_PID_op
srv_log "measured: the whole test took $(($(date +%s) - t_start)) s"
srv_log "PASS"
