#!/bin/bash
# MFA-gated VPN sessions (issue 22, docs/SERVER.md "MFA-gated VPN sessions"), in namespaces,
# with the real server (HTTPS), an agent-kept hub (secureguardd) and a laptop (secureguardd):
#  - on an mfa_required network the laptop's tunnel carries nothing before `secureguard
#    connect` (its owner's password and TOTP code): the hub does not list it;
#  - after it, the hub's agent adds the peer within 2 s and the tunnel works;
#  - `secureguard disconnect` removes the peer within 5 s and the tunnel stops; connecting again
#    makes a new peer on the hub: its counters start from zero and it needed a new handshake
#    (the old session's keypairs went with the removed peer, not just its allowed IPs); that
#    second connect is `connect --oidc --no-browser` (the server's OpenID provider, RFC 8252
#    loopback redirect) with a script as the browser: the login page's password and second step
#    (a recovery code), a request with another state refused by the command's listener first;
#  - an admin's revocation (DELETE /api/vpn-sessions/{id}) and a session's end of time
#    (--duration 20) stop the tunnel within 5 s too;
#  - every step is in the audit log.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
sg_init am
SRV_TEST=test_agent_mfa
# shellcheck source=tests/server/server_lib.sh
. "$(dirname "$0")/../server/server_lib.sh"
# shellcheck source=tests/integration/agent_lib.sh
. "$(dirname "$0")/agent_lib.sh"
[ -x "$SG" ] || skip "$SG not built"
command -v curl >/dev/null || skip "missing curl"
command -v openssl >/dev/null || fail "openssl missing (scripts/deps.sh installs it)"

sg_hosts 2
A=${HOST[1]} B=${HOST[2]}
HUBIF=${PFX}w LAPIF=${PFX}l
AG_TLS=1
# A port known before the start: the OpenID provider's issuer (--public-url) names it.
AG_PORT=8443
ag_server --agent-poll 5 --public-url "https://$AG_SRV:$AG_PORT"
HUB_IP=10.96.0.1

log "an owner with a second factor (TOTP), a FIPS network with mfa_required, its hub"
OWNER=owner@example.com
OWNER_PW="owner-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
owner=$(api POST /api/users "{\"email\":\"$OWNER\",\"password\":\"$OWNER_PW\",\"role\":\"viewer\"}" | jget id)
read -r SECRET RC1 RC2 RC3 < <(ag_totp_enrol "$OWNER" "$OWNER_PW") || fail "TOTP enrolment"
[ -n "$RC3" ] || fail "no recovery codes"
totp_code() { ag_totp_code "$SECRET"; }
net=$(api POST /api/networks '{"name":"mfa","subnet4":"10.96.0.0/24","fips_required":true,"mfa_required":true,"mfa_session_hours":1}' | jget id)
hub=$(api POST /api/clients "{\"network_id\":\"$net\",\"name\":\"hub\",\"is_relay\":true,\"endpoint\":\"$(out4 1):51820\",\"listen_port\":51820}" | jget id)
ag_start hub "$A" --enroll "$(ag_enroll "{\"client_id\":\"$hub\"}")" --interface "$HUBIF"
wait_for 15 test -S "$SG_RUN_DIR/$HUBIF.sock" || {
	cat "$SG_TMP/agent-hub.log"
	fail "the agent did not bring up $HUBIF"
}
adopt_impl "$A" "$HUBIF" secureguardd "$SG_TMP/agent-hub.log"
peer_count() { nsx "$A" "$SG" show "$HUBIF" peers | grep -c . || true; }
peers_are() { [ "$(peer_count)" = "$1" ]; }

log "the laptop, owned by the owner: its tunnel up, and it carries nothing"
lap=$(api POST /api/clients "{\"network_id\":\"$net\",\"name\":\"laptop\",\"persistent_keepalive\":1,\"owner_id\":\"$owner\"}" | jget id)
mkdir -p "$SG_TMP/$LAPIF"
(umask 077 && api GET "/api/clients/$lap/config" >"$SG_TMP/$LAPIF/$LAPIF.conf")
grep -q 'requires an MFA session' "$SG_TMP/$LAPIF/$LAPIF.conf" || fail "the config does not say the network needs a session"
timeout 30 ip netns exec "$B" "$SG" up "$SG_TMP/$LAPIF/$LAPIF.conf" >"$SG_TMP/$LAPIF.log" 2>&1 ||
	{ cat "$SG_TMP/$LAPIF.log"; fail "secureguard up (laptop)"; }
adopt_impl "$B" "$LAPIF" secureguardd "$SG_TMP/$LAPIF.log"
assert_eq "$(peer_count)" 0 "peers of the hub without a session"
assert_no_ping "$B" "$HUB_IP"
assert_no_ping "$B" "$HUB_IP"
assert_eq "$(peer_count)" 0 "peers of the hub without a session (after traffic)"

STATE=$SG_TMP/laptop-state
# connect CODE [options]: `secureguard connect` in the laptop's namespace; the password from
# the environment, as a script gives it.
connect() {
	local code=$1
	shift
	ip netns exec "$B" env SECUREGUARD_PASSWORD="$OWNER_PW" "$SG" connect --server "$AG_URL" \
		--ca-file "$AG_CA" --email "$OWNER" --code "$code" --state-dir "$STATE" "$@" laptop \
		>>"$SG_TMP/connect.log" 2>&1 || { cat "$SG_TMP/connect.log"; fail "secureguard connect"; }
}
stopped() { peers_are 0 && ! ping1 "$B" "$HUB_IP"; }
ms_since() { echo $(((${EPOCHREALTIME/./} - $1) / 1000)); }

log "wrong factors open nothing"
if ip netns exec "$B" env SECUREGUARD_PASSWORD="$OWNER_PW" "$SG" connect --server "$AG_URL" \
	--ca-file "$AG_CA" --email "$OWNER" --code 000000 --state-dir "$STATE" laptop \
	>"$SG_TMP/wrong.log" 2>&1; then
	fail "connect with a wrong code succeeded"
fi
grep -q 'authentication failed: wrong code (HTTP 401)' "$SG_TMP/wrong.log" || { cat "$SG_TMP/wrong.log"; fail "no 401 for a wrong code"; }
assert_eq "$(peer_count)" 0 "peers of the hub after a wrong code"

log "secureguard connect (password + TOTP): the peer on the hub within 2 s, the tunnel works"
t0=${EPOCHREALTIME/./}
connect "$(totp_code)"
t1=${EPOCHREALTIME/./}
wait_for 2 peers_are 1 || fail "the laptop is not a peer of the hub within 2 s of connect"
log "measured: the peer was on the hub $(ms_since "$t1") ms after connect returned ($(ms_since "$t0") ms after it began: the password hash included)"
stat -c %a "$STATE"/vpn-session-*.json | grep -qx 600 || fail "the session file is not 0600"
wait_ping "$B" "$HUB_IP" 30
assert_ping "$B" "$HUB_IP"
assert_ping "$A" 10.96.0.2
# The hub has one peer, the laptop: its counters and handshake are the first line's.
# Traffic, so that the hub's counters for this peer are well above what a few pings make.
nsx "$B" ping -c 30 -i 0.05 -s 1200 -W 2 "$HUB_IP" >/dev/null || fail "bulk ping"
rx_before=$(nsx "$A" "$SG" show "$HUBIF" transfer | awk 'NR == 1 { print $2 }')
[ "${rx_before:-0}" -gt 30000 ] || fail "the hub counted only ${rx_before:-0} bytes from the laptop"

log "secureguard disconnect: the peer and the tunnel gone within 5 s"
t0=${EPOCHREALTIME/./}
ip netns exec "$B" "$SG" disconnect --ca-file "$AG_CA" --state-dir "$STATE" laptop >>"$SG_TMP/connect.log" 2>&1 ||
	{ cat "$SG_TMP/connect.log"; fail "secureguard disconnect"; }
wait_for 5 stopped || fail "the tunnel still works 5 s after disconnect"
log "measured: the tunnel stopped $(ms_since "$t0") ms after disconnect began"
assert_no_ping "$B" "$HUB_IP"
ls "$STATE"/vpn-session-*.json >/dev/null 2>&1 && fail "disconnect left the session file"

log "connected again, through the OpenID provider: a new peer on the hub (fresh counters, a new handshake)"
ip netns exec "$B" "$SG" connect --server "$AG_URL" --ca-file "$AG_CA" --oidc --no-browser \
	--state-dir "$STATE" laptop >"$SG_TMP/oidc.out" 2>"$SG_TMP/oidc.err" &
oidc_pid=$!
wait_for 10 grep -q "/oauth2/authorize?" "$SG_TMP/oidc.err" || { cat "$SG_TMP/oidc.err"; fail "connect --oidc printed no address"; }
# The browser: the address the command printed, the login page's two steps (as a browser posts
# the forms), then back to the command's listener (first with another state: refused).
t_readd=$(date +%s)
nsx "$B" python3 - "$(grep -o 'https://[^ ]*/oauth2/authorize?[^ ]*' "$SG_TMP/oidc.err")" "$OWNER" \
	"$OWNER_PW" "$RC1" "$AG_CA" <<-'PY' || { cat "$SG_TMP/oidc.err"; fail "the scripted browser"; }
	import http.client, re, ssl, sys, urllib.parse
	url, email, pw, code, ca = sys.argv[1:6]
	u = urllib.parse.urlsplit(url)
	ctx = ssl.create_default_context(cafile=ca)
	def go(method, path, form=None, host=None):
	    c = (http.client.HTTPConnection(*host, timeout=30) if host else
	         http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=60))
	    c.request(method, path, urllib.parse.urlencode(form) if form else None,
	              {"Content-Type": "application/x-www-form-urlencoded"} if form else {})
	    r = c.getresponse()
	    return r.status, r.getheader("Location"), r.read().decode()
	st, _, page = go("GET", u.path + "?" + u.query)
	assert st == 200 and 'name="password"' in page, "the login page: %d" % st
	fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))
	st, _, page = go("POST", u.path, dict(fields, email=email, password=pw))
	assert st == 200 and 'name="code"' in page, "the second step: %d" % st
	fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))
	st, loc, _ = go("POST", u.path, dict(fields, code=code))
	back = urllib.parse.urlsplit(loc or "")
	assert st == 302 and back.hostname == "127.0.0.1" and "code=sgc_" in back.query, (st, loc)
	q = dict(urllib.parse.parse_qsl(back.query))
	st, _, _ = go("GET", back.path + "?" + urllib.parse.urlencode(dict(q, state="forged")),
	              host=(back.hostname, back.port))
	assert st == 400, "another state: %d" % st
	st, _, page = go("GET", back.path + "?" + back.query, host=(back.hostname, back.port))
	assert st == 200 and "session is open" in page, (st, page)
	PY
wait "$oidc_pid" || { cat "$SG_TMP/oidc.err"; fail "secureguard connect --oidc"; }
grep -q 'ignored a request to the listener with another state' "$SG_TMP/oidc.err" ||
	fail "the command did not say it ignored the forged state"
grep -q '^connected: session' "$SG_TMP/oidc.out" || { cat "$SG_TMP/oidc.out"; fail "connect --oidc did not connect"; }
wait_for 2 peers_are 1 || fail "the laptop is not a peer again within 2 s"
# The laptop still holds the old session's keys; the hub's new peer has none, so the laptop's
# packets are dropped until it starts a new handshake (WireGuard: 15 s after unanswered
# traffic with its keepalive of 1 s).
wait_ping "$B" "$HUB_IP" 40
rx_after=$(nsx "$A" "$SG" show "$HUBIF" transfer | awk 'NR == 1 { print $2 }')
hs=$(nsx "$A" "$SG" show "$HUBIF" latest-handshakes | awk 'NR == 1 { print $2 }')
log "measured: hub's bytes from the laptop $rx_before before the disconnect, $rx_after after reconnecting; handshake at $hs (re-added at $t_readd)"
[ "${rx_after:-0}" -lt "$rx_before" ] || fail "the hub's counters for the laptop did not start again ($rx_after >= $rx_before): the old peer was kept"
[ "${hs:-0}" -ge "$t_readd" ] || fail "no new handshake after the peer was re-added ($hs < $t_readd)"

log "revoked by an admin: the tunnel stops within 5 s"
sid=$(api GET "/api/vpn-sessions?client_id=$lap&active=true" | jget items.0.id)
t0=${EPOCHREALTIME/./}
api DELETE "/api/vpn-sessions/$sid" >/dev/null
wait_for 5 stopped || fail "the tunnel still works 5 s after the revocation"
log "measured: the tunnel stopped $(ms_since "$t0") ms after the revocation"
ip netns exec "$B" "$SG" disconnect --ca-file "$AG_CA" --state-dir "$STATE" laptop >"$SG_TMP/disc.log" 2>&1 ||
	{ cat "$SG_TMP/disc.log"; fail "disconnect after a revocation"; }
grep -q 'ended already' "$SG_TMP/disc.log" || fail "disconnect does not say the session had ended"

log "a session of 20 s: the tunnel stops within 5 s of its end"
# The laptop's interface restarted first: it then retries its handshake every 5 s instead of
# waiting out 15 s of unanswered traffic, so the short session has time to carry something.
timeout 30 ip netns exec "$B" "$SG" down "$SG_TMP/$LAPIF/$LAPIF.conf" >>"$SG_TMP/$LAPIF.log" 2>&1 ||
	fail "secureguard down (laptop)"
timeout 30 ip netns exec "$B" "$SG" up "$SG_TMP/$LAPIF/$LAPIF.conf" >>"$SG_TMP/$LAPIF.log" 2>&1 ||
	fail "secureguard up (laptop)"
D_PID[$LAPIF]=$(sg_find_pid "$B" "$(sg_binary secureguardd)") || fail "no secureguardd for $LAPIF"
connect "$RC2" --duration 20
wait_for 2 peers_are 1 || fail "the laptop is not a peer within 2 s (short session)"
expires=$(python3 -c 'import glob, json, sys; print(json.load(open(glob.glob(sys.argv[1] + "/vpn-session-*.json")[0]))["expires_at"])' "$STATE")
wait_ping "$B" "$HUB_IP" 15
left=$((expires - $(date +%s)))
log "the tunnel works; the session ends in $left s"
[ "$left" -ge 0 ] || fail "the handshake outlasted the session; nothing to measure"
wait_for $((left + 5)) stopped || fail "the tunnel still works 5 s after the session's end"
log "measured: the tunnel stopped $(($(date +%s) - expires)) s after the session's end (whole seconds)"
[ "$(date +%s)" -ge "$expires" ] || fail "the tunnel stopped before the session's end"

log "audited"
api GET "/api/audit?resource_type=vpn_session&limit=100" >"$SG_TMP/audit.json"
grep -q '\\"second\\":\\"oidc\\"' "$SG_TMP/audit.json" || fail "no session opened through the provider in the audit log"
for ev in vpn_session.opened vpn_session.ended vpn_session.revoked vpn_session.expired; do
	grep -q "\"$ev\"" "$SG_TMP/audit.json" || fail "no $ev in the audit log"
done
check_alive "$HUBIF"
ag_stop hub
ag_check_log hub
stop_impl "$LAPIF"
finish
