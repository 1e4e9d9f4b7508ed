#!/bin/bash
# `secureguard gateway`'s balancing, rules, limits and RS256 logins end to end (issue 15), with
# real processes in network namespaces: what test_gateway.sh leaves to the unit tests.
#
#   host 1  client    192.0.2.1, and 192.0.2.11 and .12 as other sources
#   host 2  gateway   192.0.2.2: HTTP on :8080, TCP forwards on :15000-15001, UDP ones on
#                     :15353-15355, configured by a file (region "eu"); later a second one,
#                     HTTPS on :8443
#   host 3  targets   192.0.2.3: HTTP targets (target.py), a TCP and a UDP echo (fwd.py) and
#                     an external OpenID provider signing RS256 (idp.py, as Keycloak does)
#
# Proves: least_conn sends new requests past a target busy with one; region keeps traffic in
# the gateway's region, fails over within it, then to another region with no failed request,
# and comes back; rules by path, method, header and source (first match wins) answer 200, 403
# or 401 as written (an auth rule on a public resource), after dot-segment normalization;
# allow/deny lists; a login resource's
# rules (allow, deny) and its 302 to the provider (401 for a POST); token buckets per source
# (another source unaffected) and per resource (all sources together) answer 429 with a
# Retry-After that holds; max_body answers 413 (Content-Length and chunked) and the refused
# body never reaches the target; a code flow with PKCE against the RS256 provider, and
# forged, expired, other-audience, other-issuer, encryption-key, HS256 (algorithm confusion)
# and unsigned tokens refused, each for its own reason; the HTTP listener closes a connection
# over max_conns_per_source or max_conns at once; TCP and UDP forwards refuse the connection or
# flow over max_conns and close idle ones after idle_timeout_ms while active ones stay; a TCP
# forward's per-source bucket closes a connection over it and a UDP forward's drops a new flow
# over it (another source unaffected); max_conns_per_source counts UDP flows (one address's
# ninth flow from a ninth port is dropped, counted and logged; its slots come back when the
# flows idle out); a burst of 200 TLS handshakes does not hold a connection already open (its
# request is answered before half of them are done) and all 200 are served. 50 to 60 s at load
# 19 to 26 on 2 shared cores (10 s of CPU), mostly starting processes.
set -u
. "$(dirname "$0")/lib.sh"

sg_init gr
for t in curl sha384sum; do
	command -v "$t" >/dev/null || skip "missing tool: $t (scripts/deps.sh installs it)"
done
SG=$SG_BIN/secureguard
[ -x "$SG" ] || skip "$SG not built"
# Debian's Python for every helper: it has python3-jwt and python3-cryptography, and it starts
# at once, where a python3 first on PATH may be a pyenv shim (2 s a start at load 20).
PY=/usr/bin/python3
"$PY" -c "import jwt, cryptography" 2>/dev/null ||
	skip "python3-jwt or python3-cryptography missing (scripts/deps.sh installs them)"
HERE=$(cd "$(dirname "$0")" && pwd)/gateway

sg_hosts 3
C=${HOST[1]} G=${HOST[2]} T=${HOST[3]}
GW=$(out4 2) TA=$(out4 3)
SRC1=$(out4 1) SRC2=192.0.2.11 SRC3=192.0.2.12
ip -n "$C" addr add "$SRC2/24" dev veth0
ip -n "$C" addr add "$SRC3/24" dev veth0

# ---- targets --------------------------------------------------------------------------------
# Few interpreters (a loaded CI machine starts each in seconds): the targets that are killed
# in their own process, the others together.
declare -A TGT_PID=()
start_targets() { # KEY NAME PORT [NAME PORT ...]
	local key=$1 args=()
	shift
	while [ $# -gt 0 ]; do
		args+=("$1" "$TA" "$2" "$SG_TMP/target_$1.log")
		touch "$SG_TMP/target_$1.log"
		shift 2
	done
	# ip netns exec execs python, so $! is the target process itself (kill -9 below).
	ip netns exec "$T" "$PY" "$HERE/target.py" "${args[@]}" >>"$SG_TMP/target_$key.out" 2>&1 &
	TGT_PID[$key]=$!
}
kill_target() {
	kill -KILL "${TGT_PID[$1]}"
	wait "${TGT_PID[$1]}" 2>/dev/null || true # killed: status 137
}
start_targets rest lc1 8081 lc2 8082 us1 8093 web 8080
start_targets eu1 eu1 8091
start_targets eu2 eu2 8092
nsx "$T" "$PY" "$HERE/fwd.py" echo "$TA" 7000 7001 >"$SG_TMP/echo.out" 2>&1 &
ip netns exec "$T" "$PY" "$HERE/idp.py" "$TA" 9000 gw-rs RS256 >"$SG_TMP/idp.log" 2>&1 &
for p in 8081 8082 8093 8080 8091 8092 7000 9000; do
	wait_for 30 sg_listening "$T" "$p" ||
		fail "nothing listens on $TA:$p: $(cat "$SG_TMP"/*.out "$SG_TMP/idp.log")"
done

# ---- the gateway ----------------------------------------------------------------------------
KEY=gw-rules-key-$RANDOM$RANDOM
KEYHASH=$(printf %s "$KEY" | sha384sum | cut -d' ' -f1)
HC='"health_check": {"type": "tcp", "interval_ms": 200, "healthy": 1, "unhealthy": 1}'
WEB="[{\"id\": \"web\", \"address\": \"$TA:8080\"}]"
cat >"$SG_TMP/gateway.json" <<EOF
{"serial": 1, "name": "gw-rules", "region": "eu",
 "limits": {"max_conns": 12, "max_conns_per_source": 8},
 "resources": [
  {"id": "lc", "domains": ["lc.test"], "lb": "least_conn",
   "targets": [{"id": "lc1", "address": "$TA:8081"}, {"id": "lc2", "address": "$TA:8082"}]},
  {"id": "rg", "domains": ["rg.test"], "lb": "region",
   "targets": [{"id": "eu1", "address": "$TA:8091", "region": "eu", $HC},
               {"id": "eu2", "address": "$TA:8092", "region": "eu", $HC},
               {"id": "us1", "address": "$TA:8093", "region": "us", $HC}]},
  {"id": "web", "domains": ["web.test"], "auth": "api_key", "api_keys": ["$KEYHASH"],
   "max_body": 1024,
   "rules": [{"path": "/admin/*", "sources": ["$SRC2/32"], "action": "allow"},
             {"path": "/admin/*", "action": "deny"},
             {"path": "/ro/*", "methods": ["POST", "PUT", "DELETE"], "action": "deny"},
             {"path": "/ro/*", "action": "allow"},
             {"header": {"name": "X-Debug"}, "action": "deny"},
             {"path": "/ci/*", "header": {"name": "X-Role", "value": "ci"}, "action": "allow"},
             {"path": "/public", "action": "allow"}],
   "targets": $WEB},
  {"id": "acl", "domains": ["acl.test"], "allow": ["$SRC1/32", "$SRC3/32"], "deny": ["$SRC3/32"],
   "api_keys": ["$KEYHASH"], "rules": [{"path": "/private/*", "action": "auth"}],
   "targets": $WEB},
  {"id": "rs", "domains": ["rs.test"], "rate_limit": {"per_source": {"rate": 1, "burst": 3}},
   "targets": $WEB},
  {"id": "rr", "domains": ["rr.test"], "rate_limit": {"per_resource": {"rate": 1, "burst": 4}},
   "targets": $WEB},
  {"id": "sso", "domains": ["sso.test"], "auth": "login",
   "oidc": {"issuer": "http://$TA:9000", "client_id": "gw-rs"},
   "rules": [{"path": "/open/*", "action": "allow"}, {"path": "/blocked/*", "action": "deny"}],
   "targets": $WEB},
  {"id": "tcpf", "protocol": "tcp", "port": 15000, "max_conns": 2, "idle_timeout_ms": 1000,
   "targets": [{"id": "echo", "address": "$TA:7000"}]},
  {"id": "tcprl", "protocol": "tcp", "port": 15001,
   "rate_limit": {"per_source": {"rate": 1, "burst": 2}},
   "targets": [{"id": "echo", "address": "$TA:7000"}]},
  {"id": "udpf", "protocol": "udp", "port": 15353, "max_conns": 2, "idle_timeout_ms": 1000,
   "targets": [{"id": "echo", "address": "$TA:7001"}]},
  {"id": "udprl", "protocol": "udp", "port": 15354,
   "rate_limit": {"per_source": {"rate": 1, "burst": 2}},
   "targets": [{"id": "echo", "address": "$TA:7001"}]},
  {"id": "udpsrc", "protocol": "udp", "port": 15355, "max_conns": 40, "idle_timeout_ms": 1000,
   "targets": [{"id": "echo", "address": "$TA:7001"}]}
 ]}
EOF
"$SG" gateway --check "$SG_TMP/gateway.json" >/dev/null || fail "the test's configuration is refused"
GW_LOG=$SG_TMP/gateway.log
ip netns exec "$G" "$SG" gateway --state-dir "$SG_TMP/gwstate" --config "$SG_TMP/gateway.json" \
	--http "$GW:8080" --metrics 127.0.0.1:9464 --access-log "$SG_TMP/access.log" \
	>"$GW_LOG" 2>&1 &
GW_PID=$!
wait_for 30 sg_listening "$G" 8080 || { cat "$GW_LOG"; fail "gateway did not start"; }
wait_for 30 grep -q 'event=gw_oidc_ready.*resource=sso' "$GW_LOG" ||
	{ cat "$GW_LOG" "$SG_TMP/idp.log"; fail "the gateway did not load the RS256 provider's keys"; }
log "gateway up (pid $GW_PID), the RS256 provider's keys loaded"

# curl, not a Python client: on a loaded machine an interpreter takes seconds to start, longer
# than a held request or a token bucket's refill.
# code SRC HOST PATH [curl options]: the status of one request from source address SRC.
code() {
	local src=$1 host=$2 path=$3
	shift 3
	nsx "$C" curl -s --path-as-is -o /dev/null -w '%{http_code}' --interface "$src" \
		-H "Host: $host" "$@" "http://$GW:8080$path"
}
expect() { # STATUS WHAT SRC HOST PATH [curl options]
	local want=$1 what=$2 got
	shift 2
	got=$(code "$@")
	[ "$got" = "$want" ] || fail "$what: status $got, expected $want"
}
metric() { nsx "$G" curl -s http://127.0.0.1:9464/metrics | awk -v m="$1" '$1 == m { print $2 }'; }
# tally HOST N: N GETs on one connection; prints "TARGET=COUNT ..." by name, and
# "status=CODE=COUNT" for answers other than 200.
tally() {
	local urls=() i
	for ((i = 0; i < $2; i++)); do urls+=("http://$GW:8080/tally$i"); done
	nsx "$C" curl -s -H "Host: $1" -w ' status=%{http_code}\n' "${urls[@]}" | awk '
		match($0, /"target": "[^"]*"/) { n[substr($0, RSTART + 11, RLENGTH - 12)]++ }
		$1 ~ /^status=/ && $1 != "status=200" { n[$1]++ }
		END { for (k in n) print k "=" n[k] }' | sort | paste -sd ' '
}
# burst SRC HOST N: N GETs of / on one connection from SRC; prints "STATUS:RETRY-AFTER ...".
burst() {
	local urls=() i
	for ((i = 0; i < $3; i++)); do urls+=(-o /dev/null "http://$GW:8080/"); done
	nsx "$C" curl -s --interface "$1" -H "Host: $2" -w '%{http_code}:%header{retry-after} ' \
		"${urls[@]}"
}

# ---- least connections ------------------------------------------------------------------------
# One request held at a target (/hold answers after 4 s): while it is in flight every new one
# goes to the other target (round-robin would send half of them to the busy one).
nsx "$C" curl -s -m 20 -H 'Host: lc.test' "http://$GW:8080/hold?ms=4000" >"$SG_TMP/hold.out" &
HOLD=$!
held() { grep -q 'GET /hold' "$SG_TMP/target_lc1.log" "$SG_TMP/target_lc2.log"; }
wait_for 10 held || fail "the held request reached no target"
busy=lc1 free=lc2
grep -q 'GET /hold' "$SG_TMP/target_lc2.log" && busy=lc2 free=lc1
out=$(tally lc.test 10)
[ "$out" = "$free=10" ] ||
	fail "least_conn: with $busy busy, 10 requests went $out, not all to $free"
wait "$HOLD" || fail "the held request failed"
grep -q "\"target\": \"$busy\"" "$SG_TMP/hold.out" || fail "the held request: $(cat "$SG_TMP/hold.out")"
out=$(tally lc.test 10)
[ "$out" = "lc1=5 lc2=5" ] ||
	fail "least_conn: with both idle, 10 requests went $out, not spread"
log "least_conn: all 10 to $free while $busy held one, then spread: $out"

# ---- region-aware ---------------------------------------------------------------------------
# The gateway is in "eu": eu1 and eu2 share the traffic and us1 gets none; eu1 killed: all on
# eu2; eu2 killed too: all on us1; eu1 back: all on eu1. No request fails on the way (the
# balancer retries a refused connection on the next target).
region_count() { # N EXPECTED
	local out
	out=$(tally rg.test "$1")
	[ "$out" = "$2" ] || fail "region: $1 requests went $out, expected $2"
}
region_count 20 "eu1=10 eu2=10"
kill_target eu1
region_count 20 "eu2=20"
kill_target eu2
region_count 20 "us1=20"
start_targets eu1 eu1 8091
wait_for 30 sg_listening "$T" 8091 || fail "eu1 did not start again: $(cat "$SG_TMP/target_eu1.out")"
eu_back() { [ "$(tally rg.test 4)" = "eu1=4" ]; }
wait_for 5 eu_back || fail "region: eu1 did not take the traffic back within 5 s"
region_count 20 "eu1=20"
log "region: local region shared, failover within it, then to us, and back to eu: ok"

# ---- rules, allow and deny lists ------------------------------------------------------------
AUTH="Authorization: Bearer $KEY"
expect 403 "rule: /admin/* from another source" "$SRC1" web.test /admin/x
expect 200 "rule: /admin/* from $SRC2 (allowed without a key)" "$SRC2" web.test /admin/x
expect 403 "rule: /admin/* from $SRC3" "$SRC3" web.test /admin/x
expect 403 "rule: /admin/* with a valid key (deny comes first)" "$SRC1" web.test /admin/x -H "$AUTH"
expect 403 "rule: dot segments into /admin/" "$SRC1" web.test /ro/../admin/x
expect 403 "rule: percent-encoded /admin/" "$SRC1" web.test /%61dmin/x
expect 200 "rule: GET /ro/*" "$SRC1" web.test /ro/x
expect 403 "rule: POST /ro/*" "$SRC1" web.test /ro/x -d data
expect 403 "rule: PUT /ro/*" "$SRC1" web.test /ro/x -X PUT -d data
expect 200 "rule: /ro/* with X-Debug (the earlier rule wins)" "$SRC1" web.test /ro/x -H 'X-Debug: 1'
expect 403 "rule: X-Debug present, with a valid key" "$SRC1" web.test /x -H 'X-Debug: 1' -H "$AUTH"
expect 200 "rule: /ci/* with X-Role: ci" "$SRC1" web.test /ci/x -H 'X-Role: ci'
expect 401 "rule: /ci/* with X-Role: dev" "$SRC1" web.test /ci/x -H 'X-Role: dev'
expect 401 "rule: /ci/* without X-Role" "$SRC1" web.test /ci/x
expect 200 "rule: exact /public" "$SRC1" web.test /public
expect 401 "rule: /public/x is not the exact /public" "$SRC1" web.test /public/x
expect 401 "no rule matches: the resource's API key, none sent" "$SRC1" web.test /x
expect 401 "no rule matches: a wrong key" "$SRC1" web.test /x -H 'Authorization: Bearer nope'
expect 200 "no rule matches: the right key" "$SRC1" web.test /x -H "$AUTH"
[ "$(grep -c 'GET /admin/x$' "$SG_TMP/target_web.log")" = 1 ] ||
	fail "the target saw /admin/x other than once (from $SRC2): $(grep admin "$SG_TMP/target_web.log")"
grep -q '^POST /ro/\|^PUT /ro/' "$SG_TMP/target_web.log" && fail "a denied POST or PUT reached the target"
expect 200 "allow list: $SRC1" "$SRC1" acl.test /
expect 403 "allow list: $SRC2 not in it" "$SRC2" acl.test /
expect 403 "deny list: $SRC3 (in both lists: deny first)" "$SRC3" acl.test /
expect 401 "rule auth on a public resource, no key" "$SRC1" acl.test /private/x
expect 200 "rule auth on a public resource, the key" "$SRC1" acl.test /private/x -H "$AUTH"
expect 403 "rule auth with the key from a denied source" "$SRC3" acl.test /private/x -H "$AUTH"
log "rules by path, method, header and source, allow/deny/auth; allow and deny lists: ok"

# ---- rate limits and the body cap -------------------------------------------------------------
# Per source, burst 3 at 1/s: a fourth request at once is refused, another source is not.
out=$(burst "$SRC1" rs.test 5)
[[ $out == "200: 200: 200: 429:1 "* ]] || fail "per-source limit from $SRC1: $out"
out2=$(burst "$SRC2" rs.test 2)
[ "$out2" = "200: 200: " ] || fail "per-source limit: $SRC2 limited by $SRC1's requests: $out2"
again() { [ "$(code "$SRC1" rs.test /)" = 200 ]; }
wait_for 3 again || fail "per-source limit: $SRC1 still refused 3 s after Retry-After: 1"
log "per source (burst 3, 1/s): $SRC1 $out; $SRC2 $out2"
# Per resource, burst 4 at 1/s: two sources take the bucket, a third is refused.
a=$(burst "$SRC1" rr.test 2)
b=$(burst "$SRC2" rr.test 2)
c=$(burst "$SRC3" rr.test 5)
[[ $a == "200: 200: " && $b == "200: 200: " && $c == *"429:1 "* ]] ||
	fail "per-resource limit: $SRC1 $a; $SRC2 $b; $SRC3 $c"
log "per resource (burst 4, 1/s): $SRC1 $a; $SRC2 $b; $SRC3 $c"
head -c 1024 /dev/zero | tr '\0' a >"$SG_TMP/body1024"
head -c 1025 /dev/zero | tr '\0' a >"$SG_TMP/body1025"
head -c 4000 /dev/zero | tr '\0' a >"$SG_TMP/body4000"
out=$(nsx "$C" curl -s -H 'Host: web.test' -H "$AUTH" --data-binary "@$SG_TMP/body1024" \
	"http://$GW:8080/upload-ok")
grep -q '"len": 1024' <<<"$out" || fail "a body of max_body bytes: $out"
expect 413 "a body of max_body + 1 (Content-Length)" "$SRC1" web.test /upload-cl -H "$AUTH" \
	--data-binary "@$SG_TMP/body1025"
expect 413 "a chunked body over max_body" "$SRC1" web.test /upload-chunked -H "$AUTH" \
	-H 'Transfer-Encoding: chunked' --data-binary "@$SG_TMP/body4000"
grep -q 'upload-cl' "$SG_TMP/target_web.log" && fail "a body refused by its Content-Length reached the target"
log "max_body 1024: 1024 bytes pass, 1025 (Content-Length) and 4000 (chunked) get 413: ok"

# ---- login through an external provider signing RS256 ----------------------------------------
lc() { nsx "$C" curl -s --resolve "sso.test:8080:$GW" "$@"; }
out=$(lc -o /dev/null -w '%{http_code} %{redirect_url}' http://sso.test:8080/private)
[[ $out == "302 http://$TA:9000/authorize?"*"code_challenge_method=S256"* ]] ||
	fail "an unauthenticated GET is not sent to the provider: $out"
[ "$(lc -o /dev/null -w '%{http_code}' -X POST http://sso.test:8080/private)" = 401 ] ||
	fail "an unauthenticated POST is not 401"
[ "$(lc -o /dev/null -w '%{http_code}' http://sso.test:8080/open/x)" = 200 ] ||
	fail "rule allow on the login resource does not pass without a login"
[ "$(lc -o /dev/null -w '%{http_code}' http://sso.test:8080/blocked/x)" = 403 ] ||
	fail "rule deny on the login resource is not 403"
out=$(lc -L -c "$SG_TMP/jar" -b "$SG_TMP/jar" -w '\n%{http_code} %{num_redirects}' \
	http://sso.test:8080/after-login) || fail "the code flow: $out"
[[ $out == *'"path": "/after-login"'*'"user": "alice@example.com"'*"200 3" ]] ||
	fail "the code flow with the RS256 provider: $out"
tok=$(awk '$6 == "sg_session_sso" { print $7 }' "$SG_TMP/jar")
[ -n "$tok" ] || fail "no session cookie after the login"
[ "$("$PY" -c 'import base64, json, sys
h = sys.argv[1].split(".")[0]
print(json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))["alg"])' "$tok")" = RS256 ] ||
	fail "the session token is not RS256"
# logged PATH REASON: the access log (flushed every 100 ms) has PATH answered for REASON.
logged() { grep -F "\"path\":\"$1\"" "$SG_TMP/access.log" | grep -qF "\"reason\":\"$2\""; }
KINDS=(good forged expired aud iss enc hs256 none)
declare -A WHY=([forged]='bad signature' [expired]=expired
	[aud]="audience is not this gateway's client" [iss]='issuer differs'
	[enc]='no key with this kid and algorithm' [hs256]='algorithm not ES384 or RS256'
	[none]='algorithm not ES384 or RS256')
# One curl for all the tokens, one for all the requests (--next: each with its own header).
mint=()
for kind in "${KINDS[@]}"; do mint+=("http://$TA:9000/mint?kind=$kind"); done
mapfile -t TOK < <(nsx "$C" curl -s -w '\n' "${mint[@]}")
[ "${#TOK[@]}" = "${#KINDS[@]}" ] || fail "the provider minted ${#TOK[@]} tokens, not ${#KINDS[@]}"
out=$(lc -H "Authorization: Bearer ${TOK[0]}" http://sso.test:8080/bearer)
grep -q '"user": "alice@example.com"' <<<"$out" || fail "a good RS256 bearer token is refused: $out"
reqs=()
for i in $(seq 1 $((${#KINDS[@]} - 1))); do
	kind=${KINDS[i]}
	[ -n "${TOK[i]}" ] || fail "the provider minted no $kind token"
	reqs+=(--next -s -o /dev/null -H 'Host: sso.test' -w "$kind/tok:%{http_code} "
		-H "Authorization: Bearer ${TOK[i]}" "http://$GW:8080/tok-$kind"
		--next -s -o /dev/null -H 'Host: sso.test' -w "$kind/cookie:%{http_code} "
		-b "sg_session_sso=${TOK[i]}" "http://$GW:8080/cookie-$kind")
done
out=$(nsx "$C" curl "${reqs[@]:1}")
[ "$(grep -o ':302 ' <<<"$out" | wc -l)" = $((2 * ${#KINDS[@]} - 2)) ] ||
	fail "RS256 tokens that must be refused (a 302 to log in): $out"
wait_for 3 logged /cookie-none "${WHY[none]}" || fail "the access log lacks /cookie-none"
for kind in "${KINDS[@]:1}"; do
	for p in tok cookie; do
		logged "/$p-$kind" "${WHY[$kind]}" ||
			fail "the $kind token ($p) was not refused as '${WHY[$kind]}': $(grep -F "/$p-$kind" "$SG_TMP/access.log")"
	done
done
grep -qE '/(tok|cookie)-' "$SG_TMP/target_web.log" && fail "a refused token's request reached the target"
log "RS256: code flow to a session; forged, expired, other audience and issuer, encryption key, HS256, none refused: ok"

# ---- connection limits of the HTTP listener --------------------------------------------------
# max_conns_per_source 8, max_conns 12: of nine idle connections from $SRC3 the gateway keeps
# eight, four from $SRC2 fill it, then one from $SRC1 is closed at once too. Once they are
# closed the gateway takes new ones.
quiet() { [ "$(metric sg_gateway_connections)" -le 1 ]; } # the metrics request itself
wait_for 5 quiet || fail "the gateway still holds $(metric sg_gateway_connections) connections"
refused=$(metric sg_gateway_connections_refused_total)
out=$(nsx "$C" "$PY" "$HERE/fwd.py" conns "$GW" 8080 "$SRC3:9" "$SRC2:4" "$SRC1:1")
[ "$out" = "8 4 0" ] ||
	fail "connections kept from $SRC3 (9 opened), $SRC2 (4), $SRC1 (1): $out, expected 8 4 0"
[ "$(metric sg_gateway_connections_refused_total)" = $((refused + 2)) ] ||
	fail "sg_gateway_connections_refused_total: $(metric sg_gateway_connections_refused_total), expected $((refused + 2))"
served() { [ "$(code "$SRC1" acl.test /)" = 200 ]; }
wait_for 5 served || fail "the gateway takes no new connection after the limits were reached"
log "connection limits (8 per source, 12 in all): kept $out of 9, 4, 1: ok"

# ---- TCP and UDP forwards: connection limits and idle timeouts --------------------------------
out=$(nsx "$C" "$PY" "$HERE/fwd.py" tcp "$GW" 15000 2 1000) || fail "TCP forward: $out"
idle=$("$PY" -c 'import json, sys; print(json.loads(sys.argv[1])["idle_closed_after_ms"])' "$out")
[ "$idle" -ge 800 ] && [ "$idle" -le 3000 ] ||
	fail "TCP forward: the idle connection closed after $idle ms, idle_timeout_ms is 1000: $out"
log "TCP forward (max_conns 2, idle 1 s): $out"
grep -q 'event=gw_denied .*resource=tcpf proto=tcp .*reason="connection limit"' "$GW_LOG" ||
	fail "no gw_denied for the third TCP connection"
wait_for 3 grep -q '"proto":"tcp".*"reason":"idle timeout"' "$SG_TMP/access.log" ||
	fail "no TCP flow closed for its idle timeout in the access log"
# A TCP forward's per-source bucket (burst 2, 1/s): the third connection at once is closed,
# another source's is not.
out=$(nsx "$C" "$PY" "$HERE/fwd.py" conns "$GW" 15001 "$SRC1:3" "$SRC2:1")
[ "$out" = "2 1" ] || fail "TCP forward's rate limit: kept $out of 3 from $SRC1 and 1 from $SRC2, expected 2 1"
[ "$(metric 'sg_gateway_rate_limited_total{resource="tcprl"}')" = 1 ] ||
	fail "sg_gateway_rate_limited_total{tcprl} does not count the refused connection"
out=$(nsx "$C" "$PY" "$HERE/fwd.py" udp "$GW" 15353 2 1000) || fail "UDP forward: $out"
idle=$("$PY" -c 'import json, sys; print(json.loads(sys.argv[1])["extra_answered_after_ms"])' "$out")
[ "$idle" -ge 800 ] && [ "$idle" -le 3000 ] ||
	fail "UDP forward: the third flow was let in $idle ms after the second went quiet (idle_timeout_ms 1000): $out"
log "UDP forward (max_conns 2, idle 1 s): $out"
grep -q 'event=gw_denied .*resource=udpf proto=udp .*reason="flow limit"' "$GW_LOG" ||
	fail "no gw_denied for the third UDP flow"
wait_for 3 grep -q '"proto":"udp".*"reason":"idle timeout"' "$SG_TMP/access.log" ||
	fail "no UDP flow closed for its idle timeout in the access log"
[ "$(metric 'sg_gateway_flows_refused_total{resource="tcpf"}')" -ge 1 ] &&
	[ "$(metric 'sg_gateway_flows_refused_total{resource="udpf"}')" -ge 1 ] ||
	fail "sg_gateway_flows_refused_total does not count the refused connection and flow"
[ "$(metric 'sg_gateway_rate_limited_total{resource="rs"}')" -ge 2 ] ||
	fail "sg_gateway_rate_limited_total{rs} does not count the 429s"
# A UDP forward's per-source bucket (burst 2, 1/s): of three new flows at once from $SRC1 the
# third gets no answer, $SRC2's flow does.
out=$(nsx "$C" "$PY" "$HERE/fwd.py" uflows "$GW" 15354 "$SRC1:3" "$SRC2:1")
[ "$out" = "2 1" ] || fail "UDP forward's rate limit: answered $out of 3 from $SRC1 and 1 from $SRC2, expected 2 1"
[ "$(metric 'sg_gateway_rate_limited_total{resource="udprl"}')" = 1 ] ||
	fail "sg_gateway_rate_limited_total{udprl}: $(metric 'sg_gateway_rate_limited_total{resource="udprl"}'), expected 1"
grep -q 'event=gw_denied .*resource=udprl proto=udp .*reason="rate limit per source"' "$GW_LOG" ||
	fail "no gw_denied for the UDP flow over the per-source rate"
# max_conns_per_source (8) counts UDP flows too: of nine flows (nine ports) from $SRC3 eight
# are answered, $SRC2's one is; once they have idled out $SRC3 has its eight again.
wait_for 5 quiet || fail "the gateway still holds $(metric sg_gateway_connections) connections"
refused=$(metric 'sg_gateway_flows_refused_total{resource="udpsrc"}')
out=$(nsx "$C" "$PY" "$HERE/fwd.py" uflows "$GW" 15355 "$SRC3:9" "$SRC2:1")
[ "$out" = "8 1" ] ||
	fail "UDP flows per source: answered $out of 9 from $SRC3 and 1 from $SRC2, expected 8 1"
[ "$(metric 'sg_gateway_flows_refused_total{resource="udpsrc"}')" = $((${refused:-0} + 1)) ] ||
	fail "sg_gateway_flows_refused_total{udpsrc} does not count the flow over the per-source limit"
grep -q 'event=gw_denied .*resource=udpsrc proto=udp .*reason="flow limit per source"' "$GW_LOG" ||
	fail "no gw_denied for the UDP flow over max_conns_per_source"
idled() { [ "$(metric 'sg_gateway_flows{resource="udpsrc"}')" = 0 ]; }
wait_for 5 idled || fail "the udpsrc flows did not idle out: $(metric 'sg_gateway_flows{resource="udpsrc"}')"
out=$(nsx "$C" "$PY" "$HERE/fwd.py" uflows "$GW" 15355 "$SRC3:8")
[ "$out" = 8 ] || fail "UDP flows per source after the others idled out: answered $out of 8"
log "UDP forwards: per-source rate (2 of 3 flows, another source's 1) and flows per source (8 of 9): ok"

# ---- a burst of TLS handshakes ----------------------------------------------------------------
# A second gateway, HTTPS only and without this one's small limits (its self-signed P-384
# certificate): 200 ClientHellos at once, then a request on a connection already open. That
# request is answered before half of the burst is handshaken (the handshakes take their turn:
# about a millisecond of CPU each), and every one of the 200 is served in the end.
cat >"$SG_TMP/gateway2.json" <<EOF
{"limits": {"header_timeout_ms": 120000},
 "resources": [{"id": "web", "domains": ["web.test"], "targets": $WEB}]}
EOF
GW2_LOG=$SG_TMP/gateway2.log
ip netns exec "$G" "$SG" gateway --state-dir "$SG_TMP/gw2state" --config "$SG_TMP/gateway2.json" \
	--http off --https "$GW:8443" >"$GW2_LOG" 2>&1 &
GW2_PID=$!
wait_for 30 sg_listening "$G" 8443 || { cat "$GW2_LOG"; fail "the second gateway did not start"; }
out=$(nsx "$C" "$PY" "$HERE/hs_burst.py" "$GW" 8443 200) || fail "a burst of TLS handshakes: $out"
log "200 TLS handshakes at once: $out"
kill -TERM "$GW2_PID"
rc=0
wait "$GW2_PID" || rc=$?
[ "$rc" = 0 ] || fail "second gateway's exit status $rc after SIGTERM: $(tail -n 40 "$GW2_LOG")"

# ---- the end ----------------------------------------------------------------------------------
kill -TERM "$GW_PID"
rc=0
wait "$GW_PID" || rc=$?
[ "$rc" = 0 ] || fail "gateway exit status $rc after SIGTERM: $(tail -n 40 "$GW_LOG")"
if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$GW_LOG" "$GW2_LOG"; then
	cat "$GW_LOG" "$GW2_LOG"
	fail "sanitizer report in the gateway's log"
fi
"$PY" -c '
import json, sys
for l in open(sys.argv[1]):
    json.loads(l)
' "$SG_TMP/access.log" || fail "access log is not JSON lines"
finish
