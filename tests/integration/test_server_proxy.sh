#!/bin/bash
# shellcheck disable=SC2154 # SRV_<name> variables are set by srv_start (printf -v)
# `secureguard server --trusted-proxy` behind a real HAProxy with `option forwardfor` (docs/
# SERVER.md "Behind a load balancer"): clients on distinct loopback addresses (curl --interface
# 127.0.0.x) reach one server through HAProxy, which connects from 127.0.0.1 (trusted):
# - failed logins from one client address are limited (429) without limiting another's, and
#   the rate-limit warning (one a minute: the first) and the audit rows name the client's
#   address, not HAProxy's;
# - an X-Forwarded-For a client sends through HAProxy does not change its address (HAProxy
#   appends the real one, the right-most untrusted address counts);
# - an X-Forwarded-For a client sends straight to the server (an untrusted peer) is ignored,
#   both to escape its own limit and to put its failures on someone else.
# A second server without --trusted-proxy behind the same kind of proxy counts every client as
# the proxy (the old behaviour, still the default).
# Environment: SG_BIN, SG_SRC. Exit 77: HAProxy missing.
set -u
SRV_TEST=test_server_proxy
# shellcheck source=tests/server/server_lib.sh
. "$(dirname "$0")/../server/server_lib.sh"
[ -x "$SG" ] || { srv_log "SKIP: $SG not built"; exit 77; }
for t in python3 curl haproxy; do
	command -v "$t" >/dev/null || { srv_log "SKIP: missing tool $t"; exit 77; }
done
TMP=$(mktemp -d /tmp/sg-server-proxy.XXXXXX)
cleanup() {
	srv_kill_all
	[ -n "${HAPROXY:-}" ] && kill "$HAPROXY" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
fail() { srv_fail "$@"; }
srv_admin_env proxy
LIMIT=3
OPTS=(--login-ip-limit "$LIMIT" --lockout 1000)
srv_start trusting "sqlite:$TMP/t/server.db" "$TMP/t" "${OPTS[@]}" --trusted-proxy 127.0.0.1 ||
	fail "server with --trusted-proxy"
srv_start plain "sqlite:$TMP/p/server.db" "$TMP/p" "${OPTS[@]}" || fail "server without it"
# A port for HAProxy: bind :0 is not possible, so ask the kernel for a free one.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HAPORT=$(free_port)
HAPORT2=$(free_port)
cat >"$TMP/haproxy.cfg" <<EOF
defaults
	mode http
	timeout connect 5s
	timeout client 30s
	timeout server 30s
	option forwardfor
frontend trusting
	bind 127.0.0.1:$HAPORT
	default_backend trusting
frontend plain
	bind 127.0.0.1:$HAPORT2
	default_backend plain
backend trusting
	server t 127.0.0.1:$SRV_PORT_trusting
backend plain
	server p 127.0.0.1:$SRV_PORT_plain
EOF
haproxy -db -f "$TMP/haproxy.cfg" >"$TMP/haproxy.log" 2>&1 &
HAPROXY=$!
HA="http://127.0.0.1:$HAPORT"
HA2="http://127.0.0.1:$HAPORT2"
for _ in $(seq 1 100); do
	curl -s -o /dev/null "$HA/api/health" && curl -s -o /dev/null "$HA2/api/health" && break
	kill -0 "$HAPROXY" 2>/dev/null || { cat "$TMP/haproxy.log"; fail "haproxy exited"; }
	sleep 0.1
done
curl -sf -o /dev/null "$HA/api/health" || { cat "$TMP/haproxy.log"; fail "haproxy not answering"; }

# login SOURCE URL [HEADER]: a failed login from SOURCE; prints the status.
login() {
	local h=()
	[ $# -ge 3 ] && h=(-H "$3")
	curl -s -o /dev/null -w '%{http_code}' --interface "$1" -X POST "$2/api/auth/login" \
		-H 'Content-Type: application/json' "${h[@]}" \
		-d '{"email":"nobody@example.com","password":"wrong-password"}'
}
# expect WANT SOURCE URL [HEADER]
expect() {
	local want=$1 got
	shift
	got=$(login "$@")
	[ "$got" = "$want" ] || fail "failed login from $1 to $2 ${3:-}: $got, want $want"
}

# ---- through HAProxy: each client its own count ------------------------------------------------
for _ in $(seq 1 "$LIMIT"); do expect 401 127.0.0.11 "$HA"; done
expect 429 127.0.0.11 "$HA"
expect 401 127.0.0.12 "$HA"
srv_log "through HAProxy: 127.0.0.11 limited after $LIMIT failures, 127.0.0.12 not"
# A forged X-Forwarded-For through HAProxy: HAProxy appends the real address, that one counts.
expect 429 127.0.0.11 "$HA" "X-Forwarded-For: 127.0.0.12"
expect 429 127.0.0.11 "$HA" "X-Forwarded-For: 127.0.0.99, 10.0.0.1"
expect 401 127.0.0.12 "$HA" "X-Forwarded-For: 127.0.0.11"
srv_log "a client's own X-Forwarded-For through HAProxy changes nothing"
# Straight to the server: the header of an untrusted peer is ignored.
for _ in $(seq 1 "$LIMIT"); do
	expect 401 127.0.0.13 "$SRV_URL_trusting" "X-Forwarded-For: 127.0.0.14"
done
expect 429 127.0.0.13 "$SRV_URL_trusting" "X-Forwarded-For: 127.0.0.15"
expect 401 127.0.0.14 "$HA"
srv_log "straight to the server: X-Forwarded-For of an untrusted peer ignored"
# The admin logs in through HAProxy from 127.0.0.12 (not limited by 127.0.0.11's failures).
TOKEN=$(curl -sf --interface 127.0.0.12 -X POST "$HA/api/auth/login" \
	-H 'Content-Type: application/json' \
	-d "{\"email\":\"$SG_ADMIN_EMAIL\",\"password\":\"$SG_ADMIN_PASSWORD\"}" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])') ||
	fail "admin login through HAProxy from 127.0.0.12"
# The audit rows carry the client's address.
curl -sf -H "Authorization: Bearer $TOKEN" "$HA/api/audit?limit=200" >"$TMP/audit.json" ||
	fail "GET /api/audit"
python3 - "$TMP/audit.json" <<'PY' || fail "audit source_ip"
import json, sys
doc = json.load(open(sys.argv[1]))
items = doc["items"] if isinstance(doc, dict) else doc
seen = {(e.get("event_type"), e.get("source_ip")) for e in items}
want = {("user.login", "127.0.0.12")}
if not want <= seen:
    sys.exit("audit: %s missing from %s" % (want, sorted(seen, key=str)))
if any(ip == "127.0.0.1" for _, ip in seen):
    sys.exit("audit: a row with HAProxy's address: %s" % sorted(seen, key=str))
PY
grep -q 'src=127.0.0.11' "$SRV_LOG_trusting" || fail "no rate-limit warning naming 127.0.0.11"
! grep -q 'src=127.0.0.1[^0-9]' "$SRV_LOG_trusting" || fail "a warning naming HAProxy's address"
srv_log "audit (user.login 127.0.0.12) and the rate-limit warning name the clients, never HAProxy"

# ---- without --trusted-proxy: every client is HAProxy ------------------------------------------
for _ in $(seq 1 "$LIMIT"); do expect 401 127.0.0.11 "$HA2"; done
expect 429 127.0.0.12 "$HA2"
srv_log "without --trusted-proxy: 127.0.0.12 limited by 127.0.0.11's failures (all are HAProxy)"

for s in trusting plain; do srv_stop "$s" || fail "stop $s"; done
srv_log "PASS"
