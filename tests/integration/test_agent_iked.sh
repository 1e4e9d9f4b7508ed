#!/bin/bash
# An agent driving SecureGuard's IKE daemon (issue 14): the same VICI backend as for strongSwan,
# at secureguard-iked's socket. Node A runs secureguard-iked, node B strongSwan's charon, each
# with its agent; a site-to-site policy made through the API:
#  - the tunnel comes up (A initiates) and pings cross it; the agents report `iked` and
#    `strongswan` as their backends;
#  - a change of the policy's ESP proposal replaces the tunnel on both sides (a new Child SA
#    with the new algorithm, shown by the daemons);
#  - a change that fails to apply (a certificate whose key does not load) is rolled back on both
#    sides to the version that ran, the tunnel comes back, and the failure is reported;
#  - certificates (auth = pubkey): each node's own certificate, key and CA in its swanctl
#    directories, the agent loads them, the tunnel comes up;
#  - deleting the policy removes the tunnel from both daemons.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
sg_init ak
SRV_TEST=test_agent_iked
# shellcheck source=tests/server/server_lib.sh
. "$(dirname "$0")/../server/server_lib.sh"
# shellcheck source=tests/integration/swan_lib.sh
. "$(dirname "$0")/swan_lib.sh"
# shellcheck source=tests/integration/agent_lib.sh
. "$(dirname "$0")/agent_lib.sh"
IKED=$SG_BIN/secureguard-iked
[ -x "$SG" ] && [ -x "$IKED" ] || skip "$SG or $IKED not built"
swan_require
command -v curl >/dev/null || skip "missing curl"

sg_hosts 2
A=${HOST[1]} B=${HOST[2]}
ip -n "$A" addr add 10.71.0.1/32 dev lo
ip -n "$B" addr add 10.72.0.1/32 dev lo
mkdir -m 700 "$SG_TMP/iked"
OURS=unix://$SG_TMP/iked/iked.vici
ip netns exec "$A" env SG_IKE_TUN="${PFX}i" "$IKED" -f --vici "$OURS" >>"$SG_TMP/iked.log" 2>&1 &
wait_for 10 test -S "$SG_TMP/iked/iked.vici" || fail "secureguard-iked did not start: $(tail -5 "$SG_TMP/iked.log")"
swan_start "$B" b
ag_server --agent-poll 5
# Certificate files that exist but do not load (for the rollback below).
for n in a b; do
	mkdir -p "$SG_TMP/swanctl-$n/x509" "$SG_TMP/swanctl-$n/private"
	echo "not a certificate" >"$SG_TMP/swanctl-$n/x509/bad.pem"
	echo "not a key" >"$SG_TMP/swanctl-$n/private/bad.pem"
done
ag_start a "$A" --enroll "$(ag_enroll '{"tags":["left"]}')" --vici "$OURS" \
	--address 192.0.2.1 --subnet 10.71.0.0/24 --x509-dir "$SG_TMP/swanctl-a/x509" \
	--restart-interval 2
ag_start b "$B" --enroll "$(ag_enroll '{"tags":["right"]}')" --vici "$SWAN_URI_b" \
	--address 192.0.2.2 --subnet 10.72.0.0/24 --x509-dir "$SG_TMP/swanctl-b/x509" \
	--restart-interval 2
registered() { [ "$(api GET /api/peers | jget total)" = 2 ]; }
wait_for 15 registered || fail "the agents did not register"

T=s2s-a-b
tunnel_up() {
	api GET "/api/tunnels/$T" 2>/dev/null | python3 -c '
import json, sys
t = json.load(sys.stdin)
sys.exit(not (len(t["ends"]) == 2 and t["state"] == "up"))'
}
ping_lan() { nsx "$B" ping -c 1 -W 1 -I 10.72.0.1 10.71.0.1; }

log "a site-to-site policy: secureguard-iked (left) with strongSwan (right)"
pol=$(api POST /api/policies '{"name":"s2s","topology":{"type":"site-to-site","left":["left"],"right":["right"]},"tunnels":[{"auth":"psk","proposals":["aes256gcm16-prfsha256-x25519"],"esp_proposals":["aes256gcm16"]}]}' | jget id)
wait_for 10 tunnel_up || { api GET "/api/tunnels/$T"; fail "the tunnel did not come up"; }
wait_for 10 ping_lan || fail "no ping across the tunnel"
assert_ping "$B" 10.71.0.1
assert_ping "$A" 10.72.0.1
backends=$(api GET "/api/tunnels/$T" | python3 -c 'import json,sys; print(" ".join(sorted(e["backend"] for e in json.load(sys.stdin)["ends"])))')
assert_eq "$backends" "iked strongswan" "the backends the agents report"

log "a new ESP proposal: the tunnel is replaced on both sides"
api PUT "/api/policies/$pol" '{"tunnels":[{"auth":"psk","proposals":["aes256gcm16-prfsha256-x25519"],"esp_proposals":["chacha20poly1305"]}]}' >/dev/null
chacha() { nsx "$B" swanctl --list-sas --uri "$SWAN_URI_b" | grep -q 'CHACHA20_POLY1305'; }
wait_for 15 chacha || { nsx "$B" swanctl --list-sas --uri "$SWAN_URI_b"; fail "the tunnel was not replaced with ChaCha20-Poly1305"; }
wait_for 10 ping_lan || fail "no ping across the replaced tunnel"
grep -q "event=tunnel_updated tunnel=$T" "$SG_TMP/agent-a.log" || fail "no tunnel_updated on the iked side"

log "a change that fails to apply: rolled back on both sides, reported"
api PUT "/api/policies/$pol" '{"tunnels":[{"auth":"pubkey","local_cert":"bad.pem","remote_id":"CN=peer","proposals":["aes256gcm16-prfsha256-x25519"],"esp_proposals":["chacha20poly1305"]}]}' >/dev/null
rolled_back() { grep -q 'event=policy_rolled_back' "$SG_TMP/agent-a.log" && grep -q 'event=policy_rolled_back' "$SG_TMP/agent-b.log"; }
wait_for 15 rolled_back || { tail -n 20 "$SG_TMP/agent-a.log" "$SG_TMP/agent-b.log"; fail "no rollback"; }
wait_for 15 ping_lan || fail "the tunnel did not come back after the rollback"
wait_for 15 tunnel_up || fail "the tunnel is not reported up after the rollback"
reported() {
	api GET /api/peers | python3 -c '
import json, sys
peers = json.load(sys.stdin)["items"]
sys.exit(not all(p["state"] == "degraded" for p in peers))' &&
	api GET "/api/peers/$(api GET /api/peers | jget items.0.id)" | python3 -c '
import json, sys
errors = json.load(sys.stdin)["report"]["errors"]
print("reported:", errors)
sys.exit(not any(e["tunnel"] == "s2s-a-b" for e in errors))'
}
wait_for 15 reported || fail "the failed change is not reported"

log "a certificate no node has: refused (422) naming both peers, as their agents reported"
CERT_POL='{"tunnels":[{"auth":"pubkey","local_cert":"node.pem","proposals":["aes256gcm16-prfsha256-x25519"],"esp_proposals":["aes256gcm16"]}]}'
st=$(api_status PUT "/api/policies/$pol" "$CERT_POL")
assert_eq "$st" 422 "status of a policy naming a certificate the nodes do not have"
python3 - "$SG_TMP/api.out" <<-'PY' || fail "the 422 does not name the certificate and both peers"
	import json, sys
	doc = json.load(open(sys.argv[1]))
	d = [e["detail"] for e in doc["errors"] if e["field"] == "tunnels[0].local_cert"]
	print("422:", d)
	sys.exit(not (d and "node.pem" in d[0] and "a, b" in d[0]))
PY

log "certificates: a CA, and each node's certificate for its address"
command -v openssl >/dev/null || fail "openssl missing (scripts/deps.sh installs it)"
PKI=$SG_TMP/pki
mkdir -p "$PKI"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=agents-ca \
	-keyout "$PKI/ca.key" -out "$PKI/ca.pem" >/dev/null 2>&1 || fail "openssl: CA"
for n in a b; do
	ip=192.0.2.1
	[ $n = b ] && ip=192.0.2.2
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=node-$n" \
		-keyout "$SG_TMP/swanctl-$n/private/node.pem" -out "$PKI/$n.csr" >/dev/null 2>&1 ||
		fail "openssl: key of $n"
	printf 'subjectAltName=IP:%s\n' "$ip" >"$PKI/$n.ext"
	openssl x509 -req -in "$PKI/$n.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" -CAcreateserial \
		-days 2 -extfile "$PKI/$n.ext" -out "$SG_TMP/swanctl-$n/x509/node.pem" >/dev/null 2>&1 ||
		fail "openssl: certificate of $n"
	mkdir -p "$SG_TMP/swanctl-$n/x509ca"
	cp "$PKI/ca.pem" "$SG_TMP/swanctl-$n/x509ca/ca.pem"
done
# The agents see the new files at their next check and report them.
peer_has() {
	api GET "/api/peers/$1" | python3 -c '
import json, sys
sys.exit("node.pem" not in ((json.load(sys.stdin)["report"] or {}).get("certificates") or []))'
}
for n in a b; do
	id=$(api GET /api/peers | python3 -c "import json,sys; print([p['id'] for p in json.load(sys.stdin)['items'] if p['name']=='$n'][0])")
	wait_for 10 peer_has "$id" || fail "agent $n did not report node.pem"
done
# Their validity reaches the dashboard's expiry list: two days left, so expiring.
api GET /api/certificates | python3 -c '
import json, sys, time
items = {c["name"]: c for c in json.load(sys.stdin)["items"] if c["kind"] == "node_cert"}
now = time.time()
for n in "ab":
    c = items.get("%s: node.pem" % n)
    if not (c and c["subject"] == "node-" + n and c["state"] == "expiring" and
            now + 86400 < c["not_after"] <= now + 2 * 86400 + 60):
        sys.exit("node %s: %s" % (n, c))' || fail "GET /api/certificates: the nodes' certificates"
api PUT "/api/policies/$pol" "$CERT_POL" >/dev/null
# strongSwan's log says how it authenticated the other side: by signature now, not the key.
by_cert() { grep -q "authentication of '192.0.2.1' with [^p].*successful" "$SWAN_DIR_b/charon.log"; }
wait_for 20 by_cert || { tail -n 15 "$SG_TMP/agent-a.log" "$SG_TMP/agent-b.log"; fail "no tunnel with certificates"; }
grep "authentication of '192.0.2.1' with [^p]" "$SWAN_DIR_b/charon.log" | tail -1
wait_for 10 ping_lan || fail "no ping across the tunnel with certificates"
wait_for 10 tunnel_up || fail "the tunnel with certificates is not reported up"

log "the policy deleted: the tunnel goes from both daemons"
api DELETE "/api/policies/$pol" >/dev/null
gone() {
	! nsx "$B" swanctl --list-conns --uri "$SWAN_URI_b" | grep -q "^$T:" &&
		! nsx "$A" swanctl --list-conns --uri "$OURS" | grep -q "^$T:"
}
wait_for 10 gone || fail "the tunnel is still loaded"
for n in a b; do ag_stop "$n"; done
log "PASS"
exit 0
