#!/bin/bash
# shellcheck disable=SC2154 # PUB_<name> are set by sg_keys
# `secureguard gateway` end to end (issue 15): a client, the gateway, and two sites whose
# targets sit behind real secureguardd tunnels, in network namespaces.
#
#   host 1  client     192.0.2.1
#   host 2  gateway    192.0.2.2, tunnel 198.51.100.2 to both sites
#   host 3  site A     198.51.100.3: HTTP target "a" (:8080), PostgreSQL
#   host 4  site B     198.51.100.4: HTTP targets "b" (:8080) and "api" (:8081), UDP echo (:5353),
#                      WebSocket echo (:8090)
#   host 5  identity   192.0.2.5:9000: an OpenID Connect provider (gateway/idp.py) for the
#                      login-protected resource, until the management server's own provider
#
# Proves: two domains land on their targets; weights 3:1 hold within 5% over 1,000 requests;
# killing a target moves all traffic to the other with no failed idempotent request, and the
# target rejoins when it is back; rules, API keys and rate limits answer 403/401/429 as
# written; X-Forwarded-For/Proto and Forwarded; HTTPS with SNI (a configured certificate and
# the self-signed fallback); HTTP/2 (ALPN h2 and prior knowledge, a streamed upload); a
# WebSocket echo through the gateway; a login-protected resource: 302 to the provider, a real
# code flow with PKCE to a session, forged, expired and other-audience tokens refused; psql through a TCP forward; a UDP forward; malformed requests,
# smuggling attempts, slowloris and oversized heads are refused and never reach a target; a
# bad config on SIGHUP is refused and the old one keeps serving; a restart without --config
# serves the last-known-good config from the state directory.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../server/pg.sh"

sg_init gw
for t in python3 curl openssl sha384sum xxd; do
	command -v "$t" >/dev/null || skip "missing tool: $t (scripts/deps.sh installs it)"
done
SG=$SG_BIN/secureguard
[ -x "$SG" ] || skip "$SG not built"
HERE=$(cd "$(dirname "$0")" && pwd)/gateway

sg_hosts 5
C=${HOST[1]} G=${HOST[2]} SA=${HOST[3]} SB=${HOST[4]} ID=${HOST[5]}
IG=${PFX}g IA=${PFX}a IB=${PFX}b
sg_keys g
sg_keys a
sg_keys b

# PostgreSQL first, then the namespaces; errors here must not cut the cleanup short (set -e
# and the ERR trap are still on inside the EXIT trap), and sg_cleanup reads the status from $?.
trap 'rc=$?; trap - ERR; set +e; pg_stop; (exit $rc); sg_cleanup' EXIT

# ---- tunnels: gateway <-> site A, gateway <-> site B --------------------------------------
up "$G" "$IG" secureguardd g 51820 2
up "$SA" "$IA" secureguardd a 51820 3
up "$SB" "$IB" secureguardd b 51820 4
wg_peer "$G" "$IG" "$PUB_a" "$(in4 3)/32" endpoint "$(out4 3):51820"
wg_peer "$G" "$IG" "$PUB_b" "$(in4 4)/32" endpoint "$(out4 4):51820"
wg_peer "$SA" "$IA" "$PUB_g" "$(in4 2)/32" endpoint "$(out4 2):51820"
wg_peer "$SB" "$IB" "$PUB_g" "$(in4 2)/32" endpoint "$(out4 2):51820"
wait_ping "$G" "$(in4 3)" 10
wait_ping "$G" "$(in4 4)" 10
log "tunnels up: gateway to site A and site B"

# ---- targets behind the tunnels -----------------------------------------------------------
TGT=()
start_target() { # NS NAME ADDR PORT
	# ip netns exec execs python, so $! is the target itself (kill -9 below).
	ip netns exec "$1" python3 "$HERE/target.py" "$2" "$3" "$4" "$SG_TMP/target_$2.log" \
		>"$SG_TMP/target_$2.out" 2>&1 &
	TGT_PID[$2]=$!
	wait_for 10 sg_listening "$1" "$4" || fail "target $2 did not start"
}
declare -A TGT_PID=()
start_target "$SA" a "$(in4 3)" 8080
start_target "$SB" b "$(in4 4)" 8080
start_target "$SB" api "$(in4 4)" 8081
nsx "$SB" python3 "$HERE/udp_echo.py" serve echo "$(in4 4)" 5353 >/dev/null 2>&1 &
# python3-websockets is Debian's: /usr/bin/python3, whatever python3 is first on PATH.
/usr/bin/python3 -c "import websockets" 2>/dev/null ||
	skip "python3-websockets missing (scripts/deps.sh installs it)"
ip netns exec "$SB" /usr/bin/python3 "$HERE/ws.py" serve "$(in4 4)" 8090 >"$SG_TMP/ws.out" 2>&1 &
wait_for 10 sg_listening "$SB" 8090 || fail "WebSocket echo did not start"
/usr/bin/python3 -c "import jwt, cryptography" 2>/dev/null ||
	skip "python3-jwt or python3-cryptography missing (scripts/deps.sh installs them)"
IDP=http://$(out4 5):9000
ip netns exec "$ID" /usr/bin/python3 "$HERE/idp.py" "$(out4 5)" 9000 gateway-test \
	>"$SG_TMP/idp.out" 2>&1 &
wait_for 10 sg_listening "$ID" 9000 || fail "the identity provider did not start"

SG_PG_NETNS=$SA SG_PG_LISTEN=$(in4 3) SG_PG_TRUST=$(in4 0)/24
rc=0
pg_start || rc=$?
[ "$rc" -eq 0 ] || fail "PostgreSQL in site A did not start (status $rc)"
pg_psql -d sgtest -c "CREATE TABLE t (v text); INSERT INTO t VALUES ('through the gateway')" ||
	fail "preparing the PostgreSQL table"

# ---- certificates: one configured for api.test, the self-signed fallback for the rest ------
"$SG" cert ca --out "$SG_TMP/ca" --name gwtest-ca >/dev/null || fail "making a CA"
"$SG" cert issue --ca "$SG_TMP/ca" --name api.test --dns api.test --out "$SG_TMP/certs" \
	>/dev/null || fail "issuing the api.test certificate"

# ---- the gateway ---------------------------------------------------------------------------
KEY=gw-test-key-0123456789
KEYHASH=$(printf %s "$KEY" | sha384sum | cut -d' ' -f1)
write_config() { # SERIAL
	cat >"$SG_TMP/gateway.json" <<EOF
{
  "serial": $1, "name": "gw-test", "region": "eu",
  "limits": {"header_timeout_ms": 1000, "idle_timeout_ms": 5000, "max_head": 8192},
  "sites": [{"id": "site-a", "networks": ["$(in4 3)/32"]},
            {"id": "site-b", "networks": ["$(in4 4)/32"]}],
  "resources": [
    {"id": "app", "domains": ["app.test", "*.app.test"], "lb": "weighted", "retries": 2,
     "sticky_cookie": "sgsticky",
     "eject_after": 1, "eject_ms": 1500, "max_body": 1048576,
     "rules": [{"path": "/private/*", "action": "deny"}],
     "targets": [
       {"id": "a", "address": "$(in4 3):8080", "weight": 3,
        "health_check": {"type": "http", "path": "/health", "interval_ms": 500, "timeout_ms": 300,
                         "healthy": 2, "unhealthy": 2}},
       {"id": "b", "address": "$(in4 4):8080", "weight": 1,
        "health_check": {"type": "http", "path": "/health", "interval_ms": 500, "timeout_ms": 300}}]},
    {"id": "api", "site": "site-b", "domains": ["api.test"], "auth": "api_key",
     "api_keys": ["$KEYHASH"], "rate_limit": {"per_source": {"rate": 1, "burst": 5}},
     "rules": [{"path": "/open", "action": "allow"}],
     "tls": {"cert": "$SG_TMP/certs/api.test.crt", "key": "$SG_TMP/certs/api.test.key"},
     "targets": [{"id": "api", "address": "$(in4 4):8081"}]},
    {"id": "login", "domains": ["login.test"], "auth": "login",
     "oidc": {"issuer": "$IDP", "client_id": "gateway-test"},
     "rules": [{"path": "/public/*", "action": "allow"}],
     "targets": [{"id": "a", "address": "$(in4 3):8080"}]},
    {"id": "ws", "site": "site-b", "domains": ["ws.test"], "idle_timeout_ms": 10000,
     "targets": [{"id": "ws", "address": "$(in4 4):8090"}]},
    {"id": "pg", "site": "site-a", "protocol": "tcp", "port": 15432, "max_conns": 4,
     "allow": ["192.0.2.0/24"], "targets": [{"id": "pg", "address": "$(in4 3):$SG_PG_PORT"}]},
    {"id": "dns", "site": "site-b", "protocol": "udp", "port": 15353, "idle_timeout_ms": 2000,
     "targets": [{"id": "echo", "address": "$(in4 4):5353"}]}
  ]
}
EOF
}
write_config 1
GW=$(out4 2)
GW_STATE=$SG_TMP/gwstate
start_gateway() { # extra args...
	local n=${#GW_LOGS[@]}
	GW_LOGS+=("$SG_TMP/gateway.$n.log")
	ip netns exec "$G" "$SG" gateway --state-dir "$GW_STATE" \
		--http "$GW:8080" --https "$GW:8443" --metrics 127.0.0.1:9464 \
		--access-log "$SG_TMP/access.log" "$@" >"${GW_LOGS[$n]}" 2>&1 &
	GW_PID=$!
	wait_for 10 sg_listening "$G" 8080 || { cat "${GW_LOGS[$n]}"; fail "gateway did not start"; }
}
GW_LOGS=()
start_gateway --config "$SG_TMP/gateway.json"
log "gateway up (pid $GW_PID)"

cli() { nsx "$C" python3 "$HERE/client.py" "$@"; }
get() { cli get "$GW" 8080 "$@"; }
metric() { nsx "$G" curl -s http://127.0.0.1:9464/metrics | awk -v m="$1" '$1 == m { print $2 }'; }

# ---- routing, forwarding headers ----------------------------------------------------------
out=$(get api.test /open)
[[ $out == 200* ]] || fail "api.test /open: $out"
grep -q '"target": "api"' <<<"$out" || fail "api.test did not land on target api: $out"
out=$(get x.app.test /some/path)
grep -q '"target": "[ab]"' <<<"$out" || fail "x.app.test (wildcard) did not land on a or b: $out"
grep -q "\"xff\": \"$(out4 1)\"" <<<"$out" || fail "X-Forwarded-For is not the client: $out"
grep -q '"proto": "http"' <<<"$out" || fail "X-Forwarded-Proto: $out"
grep -q "\"forwarded\": \"for=$(out4 1);proto=http;host=\\\\\"x.app.test\\\\\"\"" <<<"$out" ||
	fail "Forwarded header: $out"
out=$(get app.test /x X-Forwarded-For:6.6.6.6)
grep -q "\"xff\": \"$(out4 1)\"" <<<"$out" || fail "a client-supplied X-Forwarded-For was passed on: $out"
[[ $(get nothing.test /) == 404* ]] || fail "an unknown host is not 404"
# Sticky sessions: the first answer names a target in the cookie; with it, always that one.
out=$(nsx "$C" curl -s -i -H 'Host: app.test' "http://$GW:8080/")
sticky=$(sed -n 's/^Set-Cookie: sgsticky=\([a-z]*\);.*/\1/p' <<<"${out//$'\r'/}")
[ -n "$sticky" ] || fail "no sticky cookie set: $out"
for _ in 1 2 3 4 5 6; do
	out=$(nsx "$C" curl -s -H 'Host: app.test' -b "sgsticky=$sticky" "http://$GW:8080/")
	grep -q "\"target\": \"$sticky\"" <<<"$out" || fail "sticky cookie $sticky not followed: $out"
done
log "routing by domain and wildcard, forwarding headers, sticky cookie: ok"

# ---- weights ------------------------------------------------------------------------------
out=$(cli count "$GW" 8080 app.test 1000)
log "1000 requests to app.test (weights a=3 b=1): $out"
na=$(python3 -c "import json,sys; print(json.loads(sys.argv[1]).get('a', 0))" "$out")
nb=$(python3 -c "import json,sys; print(json.loads(sys.argv[1]).get('b', 0))" "$out")
nf=$(python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(1000 - d.get('a',0) - d.get('b',0))" "$out")
[ "$nf" -eq 0 ] || fail "$nf of 1000 requests failed: $out"
# 5% of 1000 requests around the expected 750/250.
[ "$na" -ge 700 ] && [ "$na" -le 800 ] || fail "target a got $na of 1000, expected 750 +- 50"
[ "$nb" -ge 200 ] && [ "$nb" -le 300 ] || fail "target b got $nb of 1000, expected 250 +- 50"

# ---- failover and rejoin ------------------------------------------------------------------
cli loop "$GW" 8080 app.test 6 "$SG_TMP/loop.txt" &
LOOP=$!
sleep 1
t_kill=$(date +%s.%N)
kill -KILL "${TGT_PID[a]}"
log "target a killed"
wait "$LOOP" || fail "client loop failed"
python3 - "$SG_TMP/loop.txt" "$t_kill" <<'EOF' || fail "failover: see above"
import sys
lines = [l.split() for l in open(sys.argv[1])]
t_kill = float(sys.argv[2])
bad = [l for l in lines if l[1] != "200"]
after = [l for l in lines if float(l[0]) > t_kill]
to_a = [l for l in after if l[2] == "a"]
print("loop: %d requests, %d after the kill, %d failed, %d of those after it on a" %
      (len(lines), len(after), len(bad), len(to_a)))
# A request already in flight at the kill may still be served by a: allow those that started
# within 50 ms of it.
late = [l for l in to_a if float(l[0]) > t_kill + 0.05]
sys.exit(1 if bad or late or len(after) < 50 else 0)
EOF
[ "$(metric 'sg_gateway_target_healthy{resource="app",target="a"}')" = 0 ] ||
	fail "metrics still show target a healthy"
out=$(nsx "$G" curl -s http://127.0.0.1:9464/healthz)
python3 -c 'import json, sys; d = json.loads(sys.argv[1]); sys.exit(not (d["status"] == "ok" and d["targets_usable"] == d["targets"] - 1))' "$out" ||
	fail "/healthz does not count the dead target out: $out"
grep -q 'event=gw_target_down.*target=a' "${GW_LOGS[0]}" || fail "no gw_target_down for a"
start_target "$SA" a "$(in4 3)" 8080
back() { cli count "$GW" 8080 app.test 8 | grep -q '"a"'; }
wait_for 5 back || fail "target a did not rejoin within 5 s of coming back"
grep -q 'event=gw_target_up.*target=a' "${GW_LOGS[0]}" || fail "no gw_target_up for a"
log "failover with no failed request, rejoin: ok"

# ---- HTTPS with SNI -------------------------------------------------------------------------
subj() { nsx "$C" openssl s_client -connect "$GW:8443" -servername "$1" </dev/null 2>/dev/null |
	openssl x509 -noout -subject; }
[[ $(subj api.test) == *"CN = api.test"* ]] || fail "SNI api.test did not get its certificate"
[[ $(subj app.test) == *"gateway-self-signed"* ]] || fail "app.test did not get the self-signed fallback"
out=$(nsx "$C" curl -s --cacert "$SG_TMP/ca/ca.crt" --resolve "api.test:8443:$GW" \
	https://api.test:8443/open)
grep -q '"proto": "https"' <<<"$out" || fail "HTTPS to api.test: $out"
out=$(nsx "$C" curl -sk --resolve "app.test:8443:$GW" https://app.test:8443/)
grep -q '"target"' <<<"$out" || fail "HTTPS to app.test: $out"
log "HTTPS with SNI and the self-signed fallback: ok"

# ---- HTTP/2 and WebSocket -----------------------------------------------------------------
out=$(nsx "$C" curl -sk --http2 --resolve "app.test:8443:$GW" -w '\n%{http_version}' \
	https://app.test:8443/h2 https://app.test:8443/h2b)
[ "$(grep -c '"target"' <<<"$out")" = 2 ] && [ "$(tail -n 1 <<<"$out")" = 2 ] ||
	fail "HTTP/2 over TLS (ALPN h2): $out"
out=$(nsx "$C" curl -s --http2-prior-knowledge -H 'Host: app.test' -w '\n%{http_version}' \
	"http://$GW:8080/h2c")
[ "$(tail -n 1 <<<"$out")" = 2 ] && grep -q '"path": "/h2c"' <<<"$out" ||
	fail "HTTP/2 with prior knowledge: $out"
# An upload of unknown length: DATA frames to a chunked body at the target.
head -c 200000 /dev/urandom >"$SG_TMP/upload"
out=$(nsx "$C" curl -sk --http2 --resolve "app.test:8443:$GW" -T - -X POST \
	https://app.test:8443/upload <"$SG_TMP/upload")
grep -q '"len": 200000' <<<"$out" && grep -q '"te": "chunked"' <<<"$out" ||
	fail "HTTP/2 streamed upload: $out"
out=$(nsx "$C" curl -sk --http2 --resolve "api.test:8443:$GW" -w ' %{http_code}' \
	https://api.test:8443/secret)
[[ $out == *" 401" ]] || fail "HTTP/2 request without the API key: $out"
out=$(ip netns exec "$C" /usr/bin/python3 "$HERE/ws.py" ask "$GW" 8080 ws.test 20 2>&1)
[ "$out" = 40 ] || fail "WebSocket echo through the gateway: $out"
# Abuse: rapid reset, cancelled uploads, a window overflow, garbage after the preface.
/usr/bin/python3 -c "import h2" 2>/dev/null || skip "python3-h2 missing (scripts/deps.sh installs it)"
out=$(ip netns exec "$C" /usr/bin/python3 "$HERE/h2_abuse.py" "$GW" 8080 app.test 2>&1) ||
	fail "h2_abuse.py: $out"
log "HTTP/2 abuse: ${out//$'\n'/; }"
out=$(nsx "$C" curl -s --http2-prior-knowledge -H 'Host: app.test' -w ' %{http_version}' \
	"http://$GW:8080/after-abuse")
[[ $out == *'"path": "/after-abuse"'*" 2" ]] || fail "not serving HTTP/2 after the abuse: $out"
log "HTTP/2 (ALPN and prior knowledge, streamed upload, abuse) and WebSocket: ok"

# ---- rules, API keys, rate limits ---------------------------------------------------------
[[ $(get app.test /private/x) == 403* ]] || fail "rule deny /private/* is not 403"
[[ $(get app.test /a/../private/x) == 403* ]] || fail "dot segments bypass the /private rule"
[[ $(get app.test /%70rivate/x) == 403* ]] || fail "percent-encoding bypasses the /private rule"
out=$(get api.test /secret)
[[ $out == 401* ]] || fail "api.test without a key: $out"
grep -qi '^WWW-Authenticate: Bearer' <<<"$out" || fail "401 without WWW-Authenticate"
[[ $(get api.test /secret "Authorization:Bearer wrong") == 401* ]] || fail "a wrong key passes"
out=$(get api.test /secret "Authorization:Bearer $KEY")
[[ $out == 200* ]] || fail "the right key is refused: $out"
grep -q '"auth": null' <<<"$out" || fail "the API key was passed on to the target: $out"
# Burst 5, then 1 per second: ten at once see some 429s with a Retry-After.
out=$(cli burst "$GW" 8080 api.test /open 10)
log "10 requests at once to api.test (burst 5, 1/s): $out"
[[ $out == *429* ]] || fail "no 429 from the per-source rate limit"
[[ $out == *"retry-after "[1-9]* ]] || fail "429 without Retry-After: $out"
log "rules 403, API key 401/200, rate limit 429: ok"

# ---- login (OpenID Connect relying party) --------------------------------------------------
wait_for 10 grep -q 'event=gw_oidc_ready.*resource=login' "${GW_LOGS[0]}" ||
	fail "the gateway did not load the provider's discovery document and keys"
lcurl() { nsx "$C" curl -s --resolve "login.test:8080:$GW" "$@"; }
out=$(lcurl -o /dev/null -w '%{http_code} %{redirect_url}' http://login.test:8080/private)
[[ $out == "302 $IDP/authorize?"*"code_challenge_method=S256"* ]] ||
	fail "an unauthenticated GET is not sent to the provider: $out"
[ "$(lcurl -o /dev/null -w '%{http_code}' -X POST http://login.test:8080/private)" = 401 ] ||
	fail "an unauthenticated POST is not 401"
[ "$(lcurl -o /dev/null -w '%{http_code}' http://login.test:8080/public/x)" = 200 ] ||
	fail "a rule allow on a login resource does not pass"
# The whole code flow, as a browser does it: provider, callback, session cookie, back.
out=$(lcurl -c "$SG_TMP/jar" -b "$SG_TMP/jar" -L -w '\n%{http_code} %{num_redirects}' \
	'http://login.test:8080/private?page=2')
[[ $out == *"200 3" ]] || fail "login flow: $out"
grep -q '"path": "/private?page=2"' <<<"$out" || fail "login did not return to the page: $out"
grep -q '"user": "alice@example.com"' <<<"$out" || fail "X-Forwarded-User not the user: $out"
grep -q 'sg_session\|sg_oidc' <<<"$out" && fail "the gateway's cookies reached the target: $out"
out=$(lcurl -b "$SG_TMP/jar" -w '\n%{http_code}' http://login.test:8080/again)
[[ $out == *'"user": "alice@example.com"'*200 ]] || fail "the session does not hold: $out"
for kind in forged expired aud; do
	tok=$(nsx "$C" curl -s "$IDP/mint?kind=$kind")
	code=$(lcurl -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tok" http://login.test:8080/x)
	[ "$code" = 302 ] || fail "a $kind token was not refused (status $code)"
	code=$(lcurl -o /dev/null -w '%{http_code}' -b "sg_session_login=$tok" http://login.test:8080/x)
	[ "$code" = 302 ] || fail "a $kind token as session cookie was not refused (status $code)"
done
# The same over HTTPS and HTTP/2: Secure cookies, the 302s and Set-Cookie as HTTP/2 fields.
out=$(nsx "$C" curl -sk --http2 --resolve "login.test:8443:$GW" -c "$SG_TMP/jar2" \
	-b "$SG_TMP/jar2" -L -w '\n%{http_code} %{num_redirects} %{http_version}' \
	https://login.test:8443/over-h2)
[[ $out == *'"user": "alice@example.com"'*"200 3 2" ]] || fail "login over HTTPS and HTTP/2: $out"
grep -q 'sg_session_login' "$SG_TMP/jar2" && grep 'sg_session_login' "$SG_TMP/jar2" | grep -q TRUE ||
	fail "the HTTPS session cookie is not Secure"
tok=$(nsx "$C" curl -s "$IDP/mint?kind=good")
[ "$(lcurl -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tok" http://login.test:8080/x)" = 200 ] ||
	fail "a good bearer ID token is refused"
# A callback whose state is not the browser's login cookie's (login CSRF) is refused.
code=$(lcurl -o /dev/null -w '%{http_code}' -b "sg_oidc_login=aaaa.bbbb.cccc.Lw" \
	'http://login.test:8080/.sg/oidc/callback?code=xyz&state=zzzz')
[ "$code" = 400 ] || fail "a callback with a foreign state got $code"
# Callbacks make the gateway call the provider: a flood of them with a valid state cookie is
# limited per source (burst 10, 2/s) with 429.
lcurl -o /dev/null -c "$SG_TMP/jar3" http://login.test:8080/flood
state=$(awk '$6 == "sg_oidc_login" { split($7, f, "."); print f[1] }' "$SG_TMP/jar3")
[ -n "$state" ] || fail "no login cookie to flood with"
codes=$(for i in $(seq 1 16); do
	lcurl -o /dev/null -w '%{http_code} ' -b "$SG_TMP/jar3" \
		"http://login.test:8080/.sg/oidc/callback?code=bogus$i&state=$state"
done)
[[ $codes == *429* ]] || fail "16 callbacks in a row were not limited: $codes"
log "login callbacks, 16 in a row: $codes"
log "login: redirect with PKCE, code flow to a session, forged/expired/other-audience refused: ok"

# ---- TCP forward: psql to PostgreSQL in site A, UDP forward --------------------------------
out=$(nsx "$C" env PGCONNECT_TIMEOUT=5 "$SG_PG_BINDIR/psql" -X -At -h "$GW" -p 15432 -U sg \
	-d sgtest -c "SELECT v FROM t" 2>&1) || true
[ "$out" = "through the gateway" ] || fail "psql through the TCP forward: $out"
out=$(nsx "$C" python3 "$HERE/udp_echo.py" ask "$GW" 15353 20)
[ "$out" = 20 ] || fail "UDP forward: $out of 20 answers"
log "TCP forward (psql) and UDP forward: ok"

# ---- hostile input never reaches a target -------------------------------------------------
raw() { nsx "$C" python3 "$HERE/raw.py" send "$GW" 8080 "$(printf %s "$1" | xxd -p | tr -d '\n')"; }
expect_refused() { # WHAT REQUEST
	local r
	r=$(raw "$2")
	[[ $r == "HTTP/1.1 4"* ]] || [ "$r" = closed ] || fail "$1: got '$r'"
}
CRLF=$'\r\n'
expect_refused "two Content-Length" "POST /smuggle-cl2 HTTP/1.1${CRLF}Host: app.test${CRLF}Content-Length: 4${CRLF}Content-Length: 4${CRLF}${CRLF}abcd"
expect_refused "CL and TE" "POST /smuggle-clte HTTP/1.1${CRLF}Host: app.test${CRLF}Content-Length: 4${CRLF}Transfer-Encoding: chunked${CRLF}${CRLF}0${CRLF}${CRLF}"
expect_refused "obs-fold" "GET /smuggle-fold HTTP/1.1${CRLF}Host: app.test${CRLF} x${CRLF}${CRLF}"
expect_refused "bare LF" $'GET /smuggle-lf HTTP/1.1\nHost: app.test\n\n'
expect_refused "space before colon" "GET /smuggle-sp HTTP/1.1${CRLF}Host : app.test${CRLF}${CRLF}"
expect_refused "bad chunk size" "POST /smuggle-chunk HTTP/1.1${CRLF}Host: app.test${CRLF}Transfer-Encoding: chunked${CRLF}${CRLF}zz${CRLF}"
big=$(head -c 9000 /dev/zero | tr '\0' a)
expect_refused "oversized header" "GET /smuggle-big HTTP/1.1${CRLF}Host: app.test${CRLF}X-Big: $big${CRLF}${CRLF}"
expect_refused "body over max_body" "POST /smuggle-body HTTP/1.1${CRLF}Host: app.test${CRLF}Content-Length: 2000000${CRLF}${CRLF}"
out=$(nsx "$C" python3 "$HERE/raw.py" slow "$GW" 8080 4)
[[ $out == "HTTP/1.1 408"* ]] || [[ $out == closed* ]] || fail "slowloris: $out"
log "slowloris: $out"
if grep -h -E 'smuggle|slowloris' "$SG_TMP"/target_*.log; then
	fail "a refused request reached a target (above)"
fi
log "malformed, smuggling, oversized, slowloris: refused, no target saw them"

# ---- config reload: a bad file is refused, a good one applies ------------------------------
"$SG" gateway --check "$SG_TMP/gateway.json" | grep -q 'valid (serial 1' ||
	fail "gateway --check does not accept the running config"
echo '{"resources": [{"id": "x"}]}' >"$SG_TMP/gateway.json"
out=$("$SG" gateway --check "$SG_TMP/gateway.json" 2>&1) && fail "gateway --check accepted a bad file"
[[ $out == *'resources[0]'* ]] || fail "gateway --check does not name the field: $out"
kill -HUP "$GW_PID"
wait_for 5 grep -q 'event=gw_config_rejected' "${GW_LOGS[0]}" || fail "bad config not rejected"
grep 'event=gw_config_rejected' "${GW_LOGS[0]}" | grep -q 'resources\[0\]' ||
	fail "the rejection does not name the field"
[[ $(get app.test /) == 200* ]] || fail "not serving after a rejected reload"
write_config 2
kill -HUP "$GW_PID"
wait_for 5 test "$(metric sg_gateway_config_serial)" = 2 || fail "serial 2 not applied"
[ "$(stat -c %a "$GW_STATE/config.json")" = 600 ] || fail "config.json is not 0600"

# ---- restart on the last-known-good config ------------------------------------------------
kill -TERM "$GW_PID"
wait "$GW_PID" || fail "gateway exit status $? after SIGTERM"
rm -f "$SG_TMP/gateway.json"
start_gateway
[[ $(get app.test /) == 200* ]] || fail "restart without --config does not serve"
[ "$(metric sg_gateway_config_serial)" = 2 ] || fail "restart did not take serial 2 from the state dir"
grep -q 'event=gw_config_last_known_good' "${GW_LOGS[1]}" || fail "no gw_config_last_known_good"
kill -TERM "$GW_PID"
wait "$GW_PID" || fail "gateway exit status $? after SIGTERM"
for f in "${GW_LOGS[@]}"; do
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$f"; then
		cat "$f"
		fail "sanitizer report in $f"
	fi
done
lines=$(wc -l <"$SG_TMP/access.log")
python3 -c '
import json, sys
for l in open(sys.argv[1]):
    json.loads(l)
' "$SG_TMP/access.log" || fail "access log is not JSON lines"
log "access log: $lines JSON lines"
finish
