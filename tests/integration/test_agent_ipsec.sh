#!/bin/bash
# Agents driving real strongSwan (issue 14): three nodes, each with its own charon
# (kernel-libipsec) and agent, and the management server; a hub-and-spoke policy made through
# the API.
#  - the tunnels are up on all three nodes within 5 s, and pings cross spoke -> hub -> spoke;
#  - a policy change that leaves the tunnels as they are touches no SA; a new tunnel on one node
#    touches nothing else;
#  - an invalid policy is refused with every reason, and no agent changes anything;
#  - a tunnel terminated behind the agent's back, and a charon killed and restarted, are
#    restored by the watchdog;
#  - the server killed: the tunnels stay up; an agent restarted (its charon too) while the
#    server is down brings its tunnels back from last-known-good; the server back: resync;
#  - a key mismatch (two policies giving the two ends of one tunnel different keys): three
#    restarts, then the initiator reports the tunnel failed with "key mismatch";
#  - a peer that is gone for good: three restarts, then the tunnel is reported failed with the
#    reason.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
sg_init ai
SRV_TEST=test_agent_ipsec
# shellcheck source=tests/server/server_lib.sh
. "$(dirname "$0")/../server/server_lib.sh"
# shellcheck source=tests/integration/swan_lib.sh
. "$(dirname "$0")/swan_lib.sh"
# shellcheck source=tests/integration/agent_lib.sh
. "$(dirname "$0")/agent_lib.sh"
[ -x "$SG" ] || skip "$SG not built"
swan_require
command -v curl >/dev/null || skip "missing curl"
command -v sqlite3 >/dev/null || skip "missing sqlite3"

sg_hosts 3
NODES=(hub spoke1 spoke2)
declare -A NS=([hub]=${HOST[1]} [spoke1]=${HOST[2]} [spoke2]=${HOST[3]})
declare -A NET=([hub]=10.80 [spoke1]=10.81 [spoke2]=10.82)
declare -A ADDR=([hub]=192.0.2.1 [spoke1]=192.0.2.2 [spoke2]=192.0.2.3)
for n in "${NODES[@]}"; do
	# The network behind each node: its first address, on the loopback (no dummy module here).
	ip -n "${NS[$n]}" addr add "${NET[$n]}.0.1/32" dev lo
	swan_start "${NS[$n]}" "$n"
done
# kernel-libipsec (strongSwan's userspace ESP, all this kernel allows) routes each outbound
# policy into its TUN device from an address inside the policy's local selector, and refuses
# the policy when it has none ("error installing route with policy"). The hub's selectors hold
# the other spokes' networks, so it gets an address in each (unused otherwise). With the
# kernel's IPsec no route is needed at all.
ip -n "${NS[hub]}" addr add 10.81.0.254/32 dev lo
ip -n "${NS[hub]}" addr add 10.82.0.254/32 dev lo
nsx "${NS[hub]}" sysctl -qw net.ipv4.ip_forward=1
ag_server --agent-poll 5

AGENT_OPTS=(--restart-interval 2 --restarts 3)
start_agent() {
	local n=$1 uriv="SWAN_URI_$1"
	shift
	ag_start "$n" "${NS[$n]}" --vici "${!uriv}" --address "${ADDR[$n]}" \
		--subnet "${NET[$n]}.0.0/24" "${AGENT_OPTS[@]}" "$@"
}
for n in "${NODES[@]}"; do
	tag=spoke
	[ "$n" = hub ] && tag=hub
	start_agent "$n" --enroll "$(ag_enroll "{\"tags\":[\"$tag\"]}")"
done
registered() { [ "$(api GET /api/peers | jget total)" = 3 ]; }
wait_for 15 registered || fail "the agents did not register"

# tunnels_up NAME...: every end of each tunnel reports up.
tunnels_up() {
	local t
	for t in "$@"; do
		api GET "/api/tunnels/$t" 2>/dev/null | python3 -c '
import json, sys
t = json.load(sys.stdin)
sys.exit(not (len(t["ends"]) == 2 and t["state"] == "up"))' || return 1
	done
}
# ike_ids NODE: the node's established IKE SAs as "name#uniqueid" lines, sorted.
ike_ids() {
	local uriv="SWAN_URI_$1"
	nsx "${NS[$1]}" swanctl --list-sas --uri "${!uriv}" 2>/dev/null |
		sed -n 's/^\([^ :]*\): #\([0-9]*\), ESTABLISHED.*/\1#\2/p' | sort
}
# swan_kill NAME: SIGKILL to a node's charon (its pid file is in its private /run).
swan_kill() {
	local dirv="SWAN_DIR_$1" pid
	pid=$(cat "${!dirv}/run/charon.pid") || fail "no pid file of charon $1"
	kill -KILL "$pid"
	wait_for 5 sg_gone "$pid" || fail "charon $1 did not die"
	rm -f "${!dirv}/charon.vici" "${!dirv}/run/charon.pid"
}
spoke_ping() { assert_ping "${NS[spoke1]}" 10.82.0.1 && assert_ping "${NS[spoke2]}" 10.81.0.1; }
ping_lan() { nsx "${NS[spoke1]}" ping -c 1 -W 1 -I 10.81.0.1 10.82.0.1; }

log "a hub-and-spoke policy through the API: every tunnel up within 5 s"
T1=star-hub-spoke1 T2=star-hub-spoke2
t0=${EPOCHREALTIME/./}
pol=$(api POST /api/policies '{"name":"star","topology":{"type":"hub-and-spoke","hubs":["hub"],"spokes":["spoke"]},"tunnels":[{"auth":"psk","encap":true,"proposals":["aes256gcm16-prfsha256-x25519"],"esp_proposals":["aes256gcm16"]}]}' | jget id)
wait_for 5 tunnels_up "$T1" "$T2" || {
	api GET /api/tunnels
	fail "the tunnels were not up on all three nodes within 5 s"
}
log "tunnels up on three nodes $(((${EPOCHREALTIME/./} - t0) / 1000)) ms after the policy"
log "spoke -> hub -> spoke"
wait_for 10 ping_lan || fail "no ping from spoke1's network to spoke2's"
assert_ping "${NS[spoke1]}" 10.82.0.1
assert_ping "${NS[spoke2]}" 10.81.0.1
assert_ping "${NS[spoke1]}" 10.80.0.1

log "a change that leaves the tunnels as they are touches no SA"
declare -A IDS
for n in "${NODES[@]}"; do IDS[$n]=$(ike_ids "$n"); done
touched() { cat "$SG_TMP"/agent-*.log | grep -cE 'event=tunnel_(created|updated|removed)' || true; }
before=$(touched)
rev0=$(sqlite3 "$SG_TMP/server/server.db" 'SELECT revision FROM sync_state')
api PUT "/api/policies/$pol" '{"priority":90,"description":"now with a description"}' >/dev/null
got_v2() { [ "$(cat "$SG_TMP"/agent-*.log | grep -c 'event=config_received source=server')" -ge 6 ]; }
wait_for 5 got_v2 || fail "the agents did not receive the new version"
assert_eq "$(touched)" "$before" "tunnels touched by a change that keeps them"
for n in "${NODES[@]}"; do assert_eq "$(ike_ids "$n")" "${IDS[$n]}" "IKE SAs of $n"; done

log "a tunnel for spoke1 only: created there, nothing else touched"
s1=$(api GET /api/peers?tag=spoke | python3 -c 'import json,sys; print([p["id"] for p in json.load(sys.stdin)["items"] if p["name"]=="spoke1"][0])')
api POST /api/policies "{\"name\":\"side\",\"applies_to\":[\"$s1\"],\"tunnels\":[{\"name\":\"side\",\"remote_addrs\":[\"%any\"],\"start_action\":\"none\",\"local_ts\":[\"10.81.0.0/24\"],\"remote_ts\":[\"10.99.0.0/24\"],\"auth\":\"psk\",\"secret\":\"a side secret\"}]}" >/dev/null
side_loaded() { nsx "${NS[spoke1]}" swanctl --list-conns --uri "$SWAN_URI_spoke1" | grep -q '^side:'; }
wait_for 5 side_loaded || fail "the side tunnel is not loaded on spoke1"
assert_eq "$(touched)" "$((before + 1))" "tunnels touched by one new tunnel"
for n in "${NODES[@]}"; do assert_eq "$(ike_ids "$n")" "${IDS[$n]}" "IKE SAs of $n"; done

log "an invalid policy: refused with every reason; no agent changes anything"
rev1=$(sqlite3 "$SG_TMP/server/server.db" 'SELECT revision FROM sync_state')
configs=$(cat "$SG_TMP"/agent-*.log | grep -c 'event=config_received')
st=$(api_status POST /api/policies '{"name":"bad one","topology":{"type":"mesh","members":["spoke"]},"tunnels":[{"auth":"psk","secret":"short","version":1,"proposals":["aes256gcm16-x25519"],"rekey_time":30,"local_ts":["10.0.0.0/8"]}]}')
assert_eq "$st" 422 "status of an invalid policy"
python3 - "$SG_TMP/api.out" <<-'PY' || fail "the 422 does not list every problem"
	import json, sys
	doc = json.load(open(sys.argv[1]))
	fields = {e["field"] for e in doc["errors"]}
	want = {"name", "tunnels[0].secret", "tunnels[0].proposals[0]", "tunnels[0].rekey_time",
	        "tunnels[0].local_ts"}
	missing = want - fields
	print("422 errors:", sorted(fields))
	sys.exit(1 if missing else 0)
PY
assert_eq "$(sqlite3 "$SG_TMP/server/server.db" 'SELECT revision FROM sync_state')" "$rev1" "sync revision after a refused policy"
[ "$rev1" != "$rev0" ] || fail "the accepted changes did not move the sync revision"
assert_eq "$(cat "$SG_TMP"/agent-*.log | grep -c 'event=config_received')" "$configs" "configurations the agents received"
for n in "${NODES[@]}"; do assert_eq "$(ike_ids "$n")" "${IDS[$n]}" "IKE SAs of $n"; done

log "watchdog: a tunnel terminated behind the agent's back comes back"
nsx "${NS[spoke2]}" swanctl --terminate --ike "$T2" --force --uri "$SWAN_URI_spoke2" >/dev/null
wait_for 10 ping_lan || fail "the terminated tunnel was not restored"
grep -q "event=watchdog_restart tunnel=$T2" "$SG_TMP/agent-spoke2.log" || fail "no watchdog_restart line"
log "watchdog: charon killed and restarted on spoke1"
swan_kill spoke1
swan_start "${NS[spoke1]}" spoke1
wait_for 15 ping_lan || fail "spoke1's tunnel was not restored into the new charon"
side_loaded || fail "spoke1's side tunnel was not loaded into the new charon"

log "the server killed: the tunnels stay up"
ag_server_kill
spoke_ping
log "spoke1's agent and charon restarted while the server is down: back from last-known-good"
ag_kill spoke1
swan_kill spoke1
swan_start "${NS[spoke1]}" spoke1
start_agent spoke1
wait_for 15 ping_lan || { tail -n 30 "$SG_TMP/agent-spoke1.log"; fail "spoke1 did not come back from last-known-good"; }
grep -q 'event=config_received source=last-known-good' "$SG_TMP/agent-spoke1.log" || fail "no last-known-good line"
log "the server back: the agents resync"
ag_server --agent-poll 5
synced() {
	api GET /api/peers | python3 -c '
import json, sys
items = json.load(sys.stdin)["items"]
sys.exit(not (len(items) == 3 and all(p["online"] for p in items)))'
}
wait_for 15 synced || fail "the agents did not report to the restarted server"
wait_for 10 tunnels_up "$T1" "$T2" || fail "the tunnels are not reported up after the resync"

log "a key mismatch: three restarts, then failed with the reason"
peer_id() { api GET "/api/peers?tag=$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["id"])'; }
hub_id=$(peer_id hub)
s2=$(api GET /api/peers?tag=spoke | python3 -c 'import json,sys; print([p["id"] for p in json.load(sys.stdin)["items"] if p["name"]=="spoke2"][0])')
api POST /api/policies "{\"name\":\"km-hub\",\"applies_to\":[\"$hub_id\"],\"tunnels\":[{\"name\":\"km\",\"remote_addrs\":[\"${ADDR[spoke2]}\"],\"local_id\":\"km-hub\",\"remote_id\":\"km-spoke\",\"local_ts\":[\"10.180.0.0/24\"],\"remote_ts\":[\"10.182.0.0/24\"],\"proposals\":[\"aes256gcm16-prfsha256-x25519\"],\"auth\":\"psk\",\"secret\":\"the hub's key\"}]}" >/dev/null
api POST /api/policies "{\"name\":\"km-spoke\",\"applies_to\":[\"$s2\"],\"tunnels\":[{\"name\":\"km\",\"remote_addrs\":[\"%any\"],\"start_action\":\"none\",\"local_id\":\"km-spoke\",\"remote_id\":\"km-hub\",\"local_ts\":[\"10.182.0.0/24\"],\"remote_ts\":[\"10.180.0.0/24\"],\"proposals\":[\"aes256gcm16-prfsha256-x25519\"],\"auth\":\"psk\",\"secret\":\"another key\"}]}" >/dev/null
km_gave_up() { grep -q "event=watchdog_gave_up tunnel=km " "$SG_TMP/agent-hub.log"; }
wait_for 30 km_gave_up || { tail -n 20 "$SG_TMP/agent-hub.log"; fail "the watchdog did not give up on the mismatched key"; }
grep "event=watchdog_gave_up tunnel=km " "$SG_TMP/agent-hub.log" | grep -q 'restarts=3 reason="key mismatch' ||
	fail "not 3 restarts and a key mismatch: $(grep 'event=watchdog_gave_up tunnel=km ' "$SG_TMP/agent-hub.log")"
km_reported() {
	api GET /api/tunnels/km | python3 -c '
import json, sys
e = {e["peer_name"]: e for e in json.load(sys.stdin)["ends"]}["hub"]
print(e["state"], e["reason"])
sys.exit(not (e["state"] == "failed" and "key mismatch" in (e["reason"] or "")))'
}
wait_for 10 km_reported || fail "the key mismatch is not reported"
spoke_ping

log "a peer gone for good: three restarts, then failed with the reason"
ag_stop hub
swan_kill hub
nsx "${NS[spoke2]}" swanctl --terminate --ike "$T2" --force --uri "$SWAN_URI_spoke2" >/dev/null || true
gave_up() { grep -q "event=watchdog_gave_up tunnel=$T2" "$SG_TMP/agent-spoke2.log"; }
wait_for 40 gave_up || { tail -n 20 "$SG_TMP/agent-spoke2.log"; fail "the watchdog did not give up"; }
grep -q "event=watchdog_gave_up tunnel=$T2 restarts=3 " "$SG_TMP/agent-spoke2.log" ||
	fail "the watchdog gave up after other than 3 restarts"
failed_reported() {
	api GET "/api/tunnels/$T2" | python3 -c '
import json, sys
ends = {e["peer_name"]: e for e in json.load(sys.stdin)["ends"]}
e = ends["spoke2"]
print(e["state"], e["reason"])
sys.exit(not (e["state"] == "failed" and "unreachable" in (e["reason"] or "")))'
}
wait_for 10 failed_reported || fail "the failure is not reported with its reason"
api GET "/api/tunnels/$T2" | jget ends.1.reason
for n in spoke1 spoke2; do ag_stop "$n"; done
log "PASS"
exit 0
