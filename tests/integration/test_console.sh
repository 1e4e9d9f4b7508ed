#!/bin/bash
# The admin console (issue 17) in Debian's Chromium, driven by playwright-core
# (web/tests/e2e/console.mjs), against a real server with seeded data:
#  - the server serves the console built by the build (share/secureguard/console) at / with a
#    strict Content-Security-Policy; login keeps no token where a script reads it;
#  - a network and a client made in the browser; the client's downloaded config and its QR code
#    (read back with zbarimg) are the API's; that config brings up a real tunnel (secureguard up)
#    to a hub whose secureguardd an agent runs, and the dashboard shows it online, live;
#  - temporary access made, its QR code read back, revoked, and redeemed on the guest page
#    without a login (config and QR code); an audit event appears live; filters; CSV and JSON
#    exports, which `secureguard audit verify --file` checks;
#  - a viewer sees no write action and the server refuses one; a session ended on the server
#    and logout go back to the login page; screenshots of every screen at desktop and phone
#    width in the build tree (console-screenshots/).
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
sg_init cn
SRV_TEST=test_console
# shellcheck source=tests/server/server_lib.sh
. "$(dirname "$0")/../server/server_lib.sh"
# shellcheck source=tests/integration/agent_lib.sh
. "$(dirname "$0")/agent_lib.sh"
[ -x "$SG" ] || skip "$SG not built"
CONSOLE=$SG_BIN/../share/secureguard/console
WEB=$SG_SRC/web
[ -f "$CONSOLE/index.html" ] || skip "the console is not built ($CONSOLE): npm missing at build time"
for t in node curl zbarimg chromium; do
	command -v "$t" >/dev/null || skip "missing $t (scripts/deps.sh installs it)"
done
[ -d "$WEB/node_modules/playwright-core" ] || skip "web/node_modules is missing (the build runs npm ci)"

OUT=$SG_BIN/../console-screenshots
rm -rf "$OUT"
mkdir -p "$OUT"
sg_hosts 2
A=${HOST[1]} B=${HOST[2]}
HUBIF=${PFX}w LAPIF=${PFX}l
ag_server --agent-poll 5

log "seed: a FIPS network with a hub run by an agent, a viewer account"
net=$(api POST /api/networks '{"name":"office","subnet4":"10.96.0.0/24","fips_required":true}' | jget id)
hub=$(api POST /api/clients "{\"network_id\":\"$net\",\"name\":\"hub\",\"is_relay\":true,\"endpoint\":\"$(out4 1):51820\",\"listen_port\":51820}" | jget id)
tok=$(ag_enroll "{\"client_id\":\"$hub\"}")
# A certificate with its key in the hub's swanctl directories, 20 days left: the agent reports
# its validity and the dashboard lists it as expiring.
mkdir -p "$SG_TMP/swanctl-hub/x509" "$SG_TMP/swanctl-hub/private"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 20 -subj /CN=hub.office \
	-keyout "$SG_TMP/swanctl-hub/private/hub.pem" -out "$SG_TMP/swanctl-hub/x509/hub.pem" \
	>/dev/null 2>&1 || fail "openssl: the hub's certificate"
ag_start hub "$A" --enroll "$tok" --interface "$HUBIF" --x509-dir "$SG_TMP/swanctl-hub/x509"
wait_for 15 test -S "$SG_RUN_DIR/$HUBIF.sock" || {
	cat "$SG_TMP/agent-hub.log"
	fail "the agent did not bring up $HUBIF"
}
adopt_impl "$A" "$HUBIF" secureguardd "$SG_TMP/agent-hub.log"
VIEWER_PW="viewer-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
api POST /api/users "{\"email\":\"viewer@example.com\",\"password\":\"$VIEWER_PW\",\"role\":\"viewer\"}" >/dev/null
# A few clients more, so lists and the topology have something to show.
for n in printer nas camera; do
	api POST /api/clients "{\"network_id\":\"$net\",\"name\":\"$n\"}" >/dev/null
done

# A gateway that takes exposed services for the office network (whose hub runs on its host, as
# `secureguard expose` expects), one exposed service, and a site: the gateways screen's lists
# and the topology's sites and gateways. The gateway never enrols: it shows as pending.
gw=$(api POST /api/v1/gateways "{\"name\":\"edge\",\"region\":\"eu\",\"public_address\":\"203.0.113.7\",\"expose\":{\"network_id\":\"$net\",\"domain\":\"apps.example.test\",\"scheme\":\"http\"}}" | jget id)
api POST /api/v1/services "{\"gateway_id\":\"$gw\",\"protocol\":\"http\",\"local_address\":\"localhost:3000\",\"subdomain\":\"wiki\"}" >/dev/null
api POST /api/v1/sites "{\"name\":\"branch\",\"description\":\"the office LAN\",\"networks\":[\"10.96.0.0/24\"]}" >/dev/null

log "the browser test (Chromium in the server's namespace)"
SIGNAL=$SG_TMP/console-signal
nsx "${PFX}hub" ip link set lo up
ip netns exec "${PFX}hub" env SG_URL="$AG_URL" SG_EMAIL=root@example.com SG_PASSWORD="$AG_PW" \
	SG_VIEWER_EMAIL=viewer@example.com SG_VIEWER_PASSWORD="$VIEWER_PW" SG_NET="$net" \
	SG_OUT="$OUT" SG_SIGNAL="$SIGNAL" HOME="$SG_TMP" \
	timeout 420 node "$WEB/tests/e2e/console.mjs" >"$SG_TMP/e2e.log" 2>&1 &
E2E=$!
# The browser downloads the laptop's config, then waits for the dashboard to show it online:
# bring that tunnel up from the downloaded file.
signalled() { [ -s "$SIGNAL" ] || ! kill -0 "$E2E" 2>/dev/null; }
wait_for 150 signalled
[ -s "$SIGNAL" ] || {
	kill "$E2E" 2>/dev/null || true
	cat "$SG_TMP/e2e.log"
	fail "the browser test did not download the laptop's config"
}
conf=$(cat "$SIGNAL")
mkdir -p "$SG_TMP/$LAPIF"
install -m 600 "$conf" "$SG_TMP/$LAPIF/$LAPIF.conf"
timeout 30 ip netns exec "$B" "$SG" up "$SG_TMP/$LAPIF/$LAPIF.conf" >"$SG_TMP/$LAPIF.log" 2>&1 ||
	{ cat "$SG_TMP/$LAPIF.log"; fail "secureguard up with the config the browser downloaded"; }
adopt_impl "$B" "$LAPIF" secureguardd "$SG_TMP/$LAPIF.log"
wait_ping "$B" 10.96.0.1 15
assert_ping "$B" 10.96.0.1
rc=0
wait "$E2E" || rc=$?
cat "$SG_TMP/e2e.log"
[ "$rc" -eq 0 ] || fail "the browser test failed (screenshots in $OUT)"

log "the exports the browser saved verify offline"
"$SG" audit verify --file "$OUT/audit.csv" || fail "the CSV export does not verify"
"$SG" audit verify --file "$OUT/audit.json" || fail "the JSON export does not verify"
n=$(find "$OUT/screenshots" -name '*.png' | wc -l)
[ "$n" -ge 24 ] || fail "only $n screenshots"
log "$n screenshots in $(cd "$OUT" && pwd)/screenshots"
ag_check_log hub
stop_impl "$LAPIF"
finish
