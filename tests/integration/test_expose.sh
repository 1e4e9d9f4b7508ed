#!/usr/bin/env bash
# `secureguard expose` end to end (issue 16): a developer's local HTTP server, exposed as an
# unprivileged user (nobody, no capabilities, no TUN device), is reachable through the
# gateway's public address with curl — without auth, and with auth when asked (401 without the
# key it printed, 200 with it); tcp and udp services on the gateway's public ports; Ctrl-C
# removes the service (the server forgets it, the gateway answers 404); a wrong API key is
# refused with a clear message. The expose network is fips_required (the server's default):
# expose learns that from the server and its tunnel runs FIPS mode. Everything real: the
# management server (SQLite), the gateway enrolled with it, the expose network's hub on the
# gateway host kept by the agent (the service's client is pushed to it), the tunnel in the
# expose process on libsecureguard's userspace stack; the server is HTTPS with its own CA, which
# expose (like the agent and the gateway) is given with --ca-file; without it nothing is made.
#
#   host 1  the internet: curl        192.0.2.1
#   host 2  gateway host              192.0.2.2: gateway (:8080), hub secureguardd (:51821)
#   host 3  developer's laptop        192.0.2.3: python's http.server on 127.0.0.1:3000, expose
#   bridge  the management server     192.0.2.254 (agent_lib.sh)
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
sg_init xp
SRV_TEST=test_expose
# shellcheck source=tests/server/server_lib.sh
. "$(dirname "$0")/../server/server_lib.sh"
# shellcheck source=tests/integration/agent_lib.sh
. "$(dirname "$0")/agent_lib.sh"
[ -x "$SG" ] || skip "$SG not built"
command -v curl >/dev/null || skip "missing curl"
command -v setpriv >/dev/null || skip "missing setpriv (util-linux)"

sg_hosts 3
C=${HOST[1]} G=${HOST[2]} D=${HOST[3]}
HUBIF=${PFX}e
GW=$(out4 2)
# The server over HTTPS with its own CA: agent, gateway and expose verify it (--ca-file).
AG_TLS=1 ag_server --agent-poll 5

log "the operator once: an expose network whose hub the agent keeps on the gateway host"
net=$(api POST /api/networks '{"name":"expose","subnet4":"10.77.0.0/24"}' | jget id)
hub=$(api POST /api/clients "{\"network_id\":\"$net\",\"name\":\"gateway host\",\"is_relay\":true,\"endpoint\":\"$GW:51821\",\"listen_port\":51821}" | jget id)
tok=$(ag_enroll "{\"client_id\":\"$hub\"}")
ag_start hub "$G" --enroll "$tok" --interface "$HUBIF"
wait_for 15 test -S "$SG_RUN_DIR/$HUBIF.sock" || {
	cat "$SG_TMP/agent-hub.log"
	fail "the agent did not bring up the hub $HUBIF"
}
adopt_impl "$G" "$HUBIF" secureguardd "$SG_TMP/agent-hub.log"

log "the gateway, enrolled with the server, taking services under expose.test"
gwj=$(api POST /api/v1/gateways "{\"name\":\"edge\",\"region\":\"eu\",\"public_address\":\"$GW\",
	\"expose\":{\"network_id\":\"$net\",\"domain\":\"expose.test\",\"scheme\":\"http\",\"http_port\":8080,
	\"ports\":[16000,16009]}}")
gwtok=$(jget enrollment_token <<<"$gwj")
mkdir -p "$SG_TMP/gw"
ip netns exec "$G" "$SG" gateway --state-dir "$SG_TMP/gw" --http "$GW:8080" \
	--server "$AG_URL" --ca-file "$AG_CA" --enroll "$gwtok" --report-interval 2 \
	>"$SG_TMP/gateway.log" 2>&1 &
wait_for 15 sg_listening "$G" 8080 || { cat "$SG_TMP/gateway.log"; fail "the gateway did not start"; }
wait_for 15 grep -q 'event=mgmt_enrolled' "$SG_TMP/gateway.log" ||
	{ cat "$SG_TMP/gateway.log"; fail "the gateway did not enroll"; }

log "the developer: an API key, a local HTTP server, both as nobody"
key=$(api POST /api/api-keys '{"name":"expose"}' | jget key)
(umask 077 && printf '%s\n' "$key" >"$SG_TMP/token")
chown nobody "$SG_TMP/token"
mkdir -p "$SG_TMP/www"
head -c 3000000 /dev/urandom >"$SG_TMP/www/file"
chmod -R a+rX "$SG_TMP/www"
chmod 711 "$SG_TMP"
want=$(sha256sum <"$SG_TMP/www/file" | cut -d' ' -f1)
asuser=(setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all --bounding-set=-all)
# Debian's python3 (the PATH one may be a root-only pyenv).
ip netns exec "$D" "${asuser[@]}" /usr/bin/python3 -m http.server -d "$SG_TMP/www" -b 127.0.0.1 3000 \
	>"$SG_TMP/www.log" 2>&1 &
wait_for 10 sg_listening "$D" 3000 || fail "the local HTTP server did not start"

# expose NAME ARGS...: `secureguard expose` as nobody in the laptop; sets XP_<NAME> (its pid).
expose() {
	local name=$1
	shift
	ip netns exec "$D" "${asuser[@]}" "$SG" expose --server "$AG_URL" --ca-file "$AG_CA" \
		--token-file "$SG_TMP/token" "$@" >"$SG_TMP/expose-$name.out" 2>"$SG_TMP/expose-$name.err" &
	printf -v "XP_$name" '%s' "$!"
}
printed() { grep -q "^$2" "$SG_TMP/expose-$1.out"; }
# get URL [curl args...]: "STATUS SHA256" of a request to the gateway's public address.
get() {
	local url=$1 host
	shift
	host=${url#http://}
	host=${host%%:*}
	nsx "$C" curl -s --max-time 20 --resolve "$host:8080:$GW" -o "$SG_TMP/got" -w '%{http_code}' \
		"$@" "$url/file" || true
	echo " $(sha256sum <"$SG_TMP/got" | cut -d' ' -f1)"
}

log "expose 127.0.0.1:3000 http --subdomain dev: public, served through the gateway"
expose dev --subdomain dev 127.0.0.1:3000 http
wait_for 40 printed dev http:// || { cat "$SG_TMP/expose-dev.err"; fail "expose printed no URL"; }
url=$(head -n1 "$SG_TMP/expose-dev.out")
assert_eq "$url" "http://dev.expose.test:8080" "the public URL"
grep -q "warning" "$SG_TMP/expose-dev.err" && { cat "$SG_TMP/expose-dev.err"; fail "expose warned"; }
caps=$(awk '/^CapEff/ {print $2}' "/proc/$XP_dev/status")
user=$(stat -c %U "/proc/$XP_dev")
[ "$caps" = 0000000000000000 ] && [ "$user" = nobody ] ||
	fail "expose runs as $user with capabilities $caps (want nobody, none)"
grep -q "dev.expose.test. 300 IN A $GW" "$SG_TMP/expose-dev.err" || fail "no DNS record printed"
served() { [ "$(get "$url")" = "200 $want" ]; }
wait_for 15 served || { cat "$SG_TMP/expose-dev.err"; fail "not served through the gateway: $(get "$url")"; }
# The network is fips_required (the server's default): expose found that out and sent a P-384 key.
nsx "$G" "$SG" show "$HUBIF" | grep -q "crypto mode: fips" ||
	{ nsx "$G" "$SG" show "$HUBIF"; fail "the service's tunnel does not run FIPS mode"; }
log "curl through the gateway ($url, run by $user with CapEff $caps): 3 MB, sha256 equal; tunnel in FIPS mode"

log "expose ... --auth: 401 without the key it printed, 200 with it"
expose sec --subdomain sec --auth 127.0.0.1:3000 http
wait_for 40 printed sec "Authorization: Bearer " || { cat "$SG_TMP/expose-sec.err"; fail "no key printed"; }
surl=$(head -n1 "$SG_TMP/expose-sec.out")
hdr=$(sed -n 2p "$SG_TMP/expose-sec.out")
assert_eq "$surl" "http://sec.expose.test:8080" "the public URL with auth"
authed() { [ "$(get "$surl" -H "$hdr")" = "200 $want" ]; }
wait_for 15 authed || fail "not served with the key: $(get "$surl" -H "$hdr")"
st=$(get "$surl")
[ "${st%% *}" = 401 ] || fail "without the key: $st (want 401)"
st=$(get "$surl" -H "Authorization: Bearer sgs_not-the-key")
[ "${st%% *}" = 401 ] || fail "with a wrong key: $st (want 401)"
log "with auth: no key 401, a wrong key 401, the printed key 200 (sha256 equal)"

log "expose ... tcp and ... udp: public ports of the gateway"
ip netns exec "$D" "${asuser[@]}" /usr/bin/python3 "$(dirname "$0")/gateway/udp_echo.py" serve echo \
	127.0.0.1 5353 >/dev/null 2>&1 &
expose tcp 127.0.0.1:3000 tcp
expose udp 127.0.0.1:5353 udp
wait_for 40 printed tcp tcp:// || { cat "$SG_TMP/expose-tcp.err"; fail "expose tcp printed no URL"; }
wait_for 40 printed udp udp:// || { cat "$SG_TMP/expose-udp.err"; fail "expose udp printed no URL"; }
tport=$(sed -n '1s/.*:\([0-9]*\)$/\1/p' "$SG_TMP/expose-tcp.out")
uport=$(sed -n '1s/.*:\([0-9]*\)$/\1/p' "$SG_TMP/expose-udp.out")
[ "$tport" -ge 16000 ] && [ "$tport" -le 16009 ] && [ "$uport" -ge 16000 ] && [ "$uport" -le 16009 ] ||
	fail "public ports: tcp $tport, udp $uport (want 16000-16009)"
tcp_served() {
	nsx "$C" curl -s --max-time 20 -o "$SG_TMP/got-tcp" "http://$GW:$tport/file" &&
		[ "$(sha256sum <"$SG_TMP/got-tcp" | cut -d' ' -f1)" = "$want" ]
}
wait_for 15 tcp_served || fail "not served through the gateway's TCP port $tport"
udp_answers() { nsx "$C" python3 "$(dirname "$0")/gateway/udp_echo.py" ask "$GW" "$uport" 20; }
udp_ok() { [ "$(udp_answers)" -ge 18 ]; }
wait_for 15 udp_ok || fail "UDP through the gateway's port $uport: $(udp_answers)/20"
log "tcp ($(head -n1 "$SG_TMP/expose-tcp.out")): 3 MB, sha256 equal; udp ($(head -n1 "$SG_TMP/expose-udp.out")): $(udp_answers)/20 answers"
for x in tcp udp; do
	pidv=XP_$x
	kill -INT "${!pidv}"
	wait_for 15 sg_gone "${!pidv}" || fail "expose $x did not stop on SIGINT"
	rc=0
	wait "${!pidv}" || rc=$?
	assert_eq "$rc" 0 "expose $x's exit status after SIGINT"
done

log "Ctrl-C: the service is removed at the server and the gateway stops serving it"
id=$(sed -n 's/.* as service \([^,]*\),.*/\1/p' "$SG_TMP/expose-dev.err")
[ -n "$id" ] || fail "no service id in expose's output"
assert_eq "$(api GET "/api/v1/services/$id" | jget status)" active "the service's status"
kill -INT "$XP_dev"
wait_for 15 sg_gone "$XP_dev" || fail "expose did not stop on SIGINT"
rc=0
wait "$XP_dev" || rc=$?
assert_eq "$rc" 0 "expose's exit status after SIGINT"
assert_eq "$(api_status GET "/api/v1/services/$id")" 404 "the service after Ctrl-C"
gone() { [ "$(get "$url" | cut -d' ' -f1)" = 404 ]; }
wait_for 10 gone || fail "the removed service is still served: $(get "$url")"
kill -INT "$XP_sec"
wait_for 15 sg_gone "$XP_sec" || fail "the second expose did not stop"
rc=0
wait "$XP_sec" || rc=$?
assert_eq "$rc" 0 "the second expose's exit status"
assert_eq "$(api GET /api/v1/services | jget total)" 0 "services left"

log "without the server's CA: the TLS check fails, nothing made"
rc=0
ip netns exec "$D" "${asuser[@]}" "$SG" expose --server "$AG_URL" --token-file "$SG_TMP/token" \
	127.0.0.1:3000 http >/dev/null 2>"$SG_TMP/expose-noca.err" || rc=$?
[ "$rc" = 1 ] && grep -q "no answer from the server: .*certificate" "$SG_TMP/expose-noca.err" ||
	{ cat "$SG_TMP/expose-noca.err"; fail "without the CA: status $rc"; }
assert_eq "$(api GET /api/v1/services | jget total)" 0 "services after an unverified server"
log "$(cat "$SG_TMP/expose-noca.err")"

log "a wrong API key: a clear error, nothing made"
printf 'sgk_wrong\n' >"$SG_TMP/token"
rc=0
ip netns exec "$D" "${asuser[@]}" "$SG" expose --server "$AG_URL" --ca-file "$AG_CA" \
	--token-file "$SG_TMP/token" 127.0.0.1:3000 http >"$SG_TMP/expose-bad.out" \
	2>"$SG_TMP/expose-bad.err" || rc=$?
[ "$rc" = 1 ] && grep -q "refused the service.*401" "$SG_TMP/expose-bad.err" ||
	{ cat "$SG_TMP/expose-bad.err"; fail "a wrong key: status $rc"; }
assert_eq "$(api GET /api/v1/services | jget total)" 0 "services after a refused one"
log "$(cat "$SG_TMP/expose-bad.err")"
ag_stop hub
finish
