#!/bin/bash
# Agents on a WireGuard network (issue 14): the management server drives a hub's secureguardd.
#  - an agent enrolled with a token bound to the hub client brings up the hub's interface;
#  - a client added through the API is a peer of the hub's secureguardd within 2 s, and its
#    downloaded config connects (pings both ways; a FIPS network, so FIPS keys and mode);
#  - the connection log shows the handshake with its crypto mode and bytes, and the client is
#    online; a disabled client is dropped from the hub within 2 s and logged off;
#  - metrics and `secureguard agent status` show the interface;
#  - the server killed, then the hub's agent and daemon (a reboot): the agent brings the
#    interface back from last-known-good and the laptop connects; the server back: resync;
#  - revoking the agent cuts it off at once: it removes what it ran and exits 3;
#  - all of it over HTTPS: the agent verifies the server's certificate (--ca-file), and one
#    without the CA registers nothing.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
sg_init aw
SRV_TEST=test_agent_wg
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
ag_server --agent-poll 5
case $AG_URL in https://*) ;; *) fail "the server is not on HTTPS: $AG_URL" ;; esac

log "an agent that cannot verify the server's certificate registers nothing"
mkdir -m 700 "$SG_TMP/agent-untrusting"
ip netns exec "$B" "$SG" agent --server "$AG_URL" --state-dir "$SG_TMP/agent-untrusting" \
	--name untrusting --enroll "$(ag_enroll)" >"$SG_TMP/agent-untrusting.log" 2>&1 &
UNTRUSTING=$!
refused_tls() { grep -q 'event=register_failed status=0 .*certificate' "$SG_TMP/agent-untrusting.log"; }
wait_for 10 refused_tls || { cat "$SG_TMP/agent-untrusting.log"; fail "no certificate failure"; }
kill -TERM "$UNTRUSTING"
wait_for 10 sg_gone "$UNTRUSTING" || fail "the untrusting agent did not stop"
assert_eq "$(api GET /api/peers | jget total)" 0 "peers registered without a verified server"

log "a FIPS network with a hub, and an enrolment token bound to the hub"
net=$(api POST /api/networks '{"name":"agents","subnet4":"10.97.0.0/24","fips_required":true}' | jget id)
hub=$(api POST /api/clients "{\"network_id\":\"$net\",\"name\":\"hub\",\"is_relay\":true,\"endpoint\":\"$(out4 1):51820\",\"listen_port\":51820}" | jget id)
tok=$(ag_enroll "{\"client_id\":\"$hub\"}")
ag_start hub "$A" --enroll "$tok" --interface "$HUBIF" --metrics-listen 127.0.0.1:9108
wait_for 15 test -S "$SG_RUN_DIR/$HUBIF.sock" || {
	cat "$SG_TMP/agent-hub.log"
	fail "the agent did not bring up $HUBIF"
}
adopt_impl "$A" "$HUBIF" secureguardd "$SG_TMP/agent-hub.log"
peer_count() { nsx "$A" "$SG" show "$HUBIF" peers | grep -c . || true; }
peers_are() { [ "$(peer_count)" = "$1" ]; }
assert_eq "$(peer_count)" 0 "peers of the hub before any client"
stat -c %a "$SG_TMP/agent-hub/agent.key" | grep -qx 600 || fail "agent.key is not 0600"

log "a client added through the API: a peer of the hub within 2 s"
t0=${EPOCHREALTIME/./}
lap=$(api POST /api/clients "{\"network_id\":\"$net\",\"name\":\"laptop\",\"persistent_keepalive\":1}" | jget id)
wait_for 2 peers_are 1 || fail "the new client is not a peer of the hub within 2 s"
log "the client was a peer of the hub $(((${EPOCHREALTIME/./} - t0) / 1000)) ms after its creation"

log "its downloaded config connects"
mkdir -p "$SG_TMP/$LAPIF"
(umask 077 && api GET "/api/clients/$lap/config" >"$SG_TMP/$LAPIF/$LAPIF.conf")
timeout 30 ip netns exec "$B" "$SG" up "$SG_TMP/$LAPIF/$LAPIF.conf" >"$SG_TMP/$LAPIF.log" 2>&1 ||
	{ cat "$SG_TMP/$LAPIF.log"; fail "secureguard up (laptop)"; }
adopt_impl "$B" "$LAPIF" secureguardd "$SG_TMP/$LAPIF.log"
wait_ping "$B" 10.97.0.1 15
assert_ping "$B" 10.97.0.1
assert_ping "$A" 10.97.0.2

log "the agent's report: the handshake in the connection log, with its crypto mode and bytes"
handshake_logged() {
	api GET "/api/connections?client_id=$lap" | python3 -c '
import json, sys
items = json.load(sys.stdin)["items"]
sys.exit(not any(i["event"] == "handshake" and i["crypto_mode"] == "fips" and
                 i["bytes_sent"] > 0 and i["source_ip"] == "192.0.2.2" for i in items))'
}
wait_for 15 handshake_logged || { api GET "/api/connections?client_id=$lap"; fail "no handshake in the connection log"; }
assert_eq "$(api GET "/api/clients/$lap" | jget online)" true "the laptop's online state"
[ "$(api GET "/api/clients/$lap" | jget last_handshake)" != None ] || fail "no last_handshake"
api GET "/api/tunnels/$HUBIF" | grep -q '"state":"up"' || fail "the hub's interface is not up in /api/tunnels"

log "metrics and status"
nsx "$A" curl -sf http://127.0.0.1:9108/metrics >"$SG_TMP/metrics.txt" || fail "no metrics"
grep -qx "wireguard_tunnel_state{name=\"$HUBIF\"} 1" "$SG_TMP/metrics.txt" || { cat "$SG_TMP/metrics.txt"; fail "metrics: wireguard_tunnel_state"; }
grep -q '^ipsec_policy_sync_errors_total 0$' "$SG_TMP/metrics.txt" || fail "metrics: sync errors"
grep -q '^wireguard_peer_last_handshake_seconds{' "$SG_TMP/metrics.txt" || fail "metrics: handshakes"
"$SG" agent status --state-dir "$SG_TMP/agent-hub" >"$SG_TMP/status.txt" || fail "agent status"
cat "$SG_TMP/status.txt"
grep -q "$HUBIF .*wireguard .*secureguardd .*up" "$SG_TMP/status.txt" || fail "status does not show the interface up"

log "the server down, the hub's agent and daemon killed: the interface back from last-known-good"
ag_server_kill
ag_kill hub
kill_impl "$HUBIF"
ag_start hub "$A" --interface "$HUBIF" --metrics-listen 127.0.0.1:9108
wait_for 15 peers_are 1 || { tail -n 20 "$SG_TMP/agent-hub.log"; fail "the hub's interface is not back with its peer"; }
D_PID[$HUBIF]=$(sg_find_pid "$A" "$(sg_binary secureguardd)") || fail "no secureguardd for $HUBIF"
grep -q 'event=config_received source=last-known-good' "$SG_TMP/agent-hub.log" || fail "no last-known-good line"
# The laptop's session died with the hub's daemon; WireGuard would start a new handshake only
# 15 s (keepalive + rekey timeout) after its traffic went unanswered: restart its interface.
log "the interface is back with its peer; the laptop's config connects to it again"
timeout 30 ip netns exec "$B" "$SG" down "$SG_TMP/$LAPIF/$LAPIF.conf" >>"$SG_TMP/$LAPIF.log" 2>&1 ||
	fail "secureguard down (laptop)"
timeout 30 ip netns exec "$B" "$SG" up "$SG_TMP/$LAPIF/$LAPIF.conf" >>"$SG_TMP/$LAPIF.log" 2>&1 ||
	fail "secureguard up (laptop)"
D_PID[$LAPIF]=$(sg_find_pid "$B" "$(sg_binary secureguardd)") || fail "no secureguardd for $LAPIF"
wait_ping "$B" 10.97.0.1 15
log "the server back: the agent resyncs"
t_back=$(date +%s)
ag_server --agent-poll 5
resynced() { [ "$(api GET /api/peers | jget items.0.last_seen)" -ge "$t_back" ]; }
wait_for 15 resynced || fail "the agent did not report to the restarted server"
assert_eq "$(peer_count)" 1 "peers of the hub after the resync"

log "a disabled client is dropped within 2 s and logged off"
api PUT "/api/clients/$lap" '{"enabled":false}' >/dev/null
wait_for 2 peers_are 0 || fail "the disabled client is still a peer of the hub after 2 s"
offline() { [ "$(api GET "/api/clients/$lap" | jget online)" = false ]; }
wait_for 10 offline || fail "the disabled client is still online"
api GET "/api/connections?client_id=$lap&limit=1" | grep -q '"event":"disconnect"' ||
	fail "no disconnect in the connection log"
check_alive "$HUBIF"

log "revoked: the agent is cut off, removes its interface and exits 3"
agent=$(api GET /api/peers | jget items.0.id)
api DELETE "/api/peers/$agent" >/dev/null
wait_for 10 sg_gone "$AG_PID_hub" || fail "the revoked agent still runs"
rc=0
wait "$AG_PID_hub" || rc=$?
assert_eq "$rc" 3 "the revoked agent's exit status"
wait_for 10 sg_no_link "$A" "$HUBIF" || fail "the revoked agent left $HUBIF"
D_STOPPED[$HUBIF]=1
[ ! -e "$SG_TMP/agent-hub/agent.key" ] || fail "the revoked agent kept its key"
grep -q 'event=agent_revoked' "$SG_TMP/agent-hub.log" || fail "no agent_revoked line"
ag_check_log hub
stop_impl "$LAPIF"
finish
