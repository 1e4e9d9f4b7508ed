#!/bin/bash
# shellcheck disable=SC2154 # SRV_<name> variables are set by srv_start (printf -v)
# Configs from the management server bring up a real tunnel. The server runs in the root
# namespace; a network gets a hub (host 1, endpoint 192.0.2.1:PORT) and a client (host 2), both
# with server-generated keys. Each config is downloaded from the API and brought up with
# `secureguard up` (secureguardd) in its namespace; pings cross the tunnel both ways over inner
# IPv4 and IPv6; the hub's config routes the client's addresses and the client's names the hub's
# endpoint. Then the client is disabled: the hub's new config no longer lists it.
# Done twice: a non-FIPS network (plain wg-quick configs, both ends plain WireGuard) and a
# fips_required one (FipsPrivateKey / FipsPublicKey, CryptoMode = fips).
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
sg_init sv
SRV_TEST=test_server_tunnel
# shellcheck source=tests/server/server_lib.sh
. "$(dirname "$0")/../server/server_lib.sh"
[ -x "$SG" ] || skip "$SG not built"
trap 'rc=$?; trap - ERR; set +e; srv_kill api; (exit $rc); sg_cleanup' EXIT

sg_hosts 2
A=${HOST[1]} B=${HOST[2]}

srv_admin_env tunnel
srv_start api "sqlite:$SG_TMP/api/server.db" "$SG_TMP/api" || fail "server did not start"
TOK=$(srv_login "$SRV_URL_api" "$SG_ADMIN_EMAIL" "$SG_ADMIN_PASSWORD") || fail "login"

# api METHOD PATH [JSON]: the response body; fails the test on an HTTP error.
api() {
	curl -sf -X "$1" -H "Authorization: Bearer $TOK" -H 'Content-Type: application/json' \
		${3:+--data "$3"} "$SRV_URL_api$2" || fail "API $1 $2 failed"
}
jget() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
any_handshake() { nsx "$1" wg show "$2" latest-handshakes | awk '$2 > 0 { ok = 1 } END { exit !ok }'; }

# tunnel MODE(classic|fips) IFHUB IFCLIENT NET_OCTET PORT
tunnel() {
	local mode=$1 ia=$2 ib=$3 o=$4 port=$5 fips=false net hub cli side ns ifn rc pid
	[ "$mode" = fips ] && fips=true
	log "---- $mode network 10.$o.0.0/24"
	net=$(api POST /api/networks "{\"name\":\"tunnel-$mode\",\"subnet4\":\"10.$o.0.0/24\",\"subnet6\":\"fd00:$o::/64\",\"fips_required\":$fips}" | jget id)
	hub=$(api POST /api/clients "{\"network_id\":\"$net\",\"name\":\"hub\",\"is_relay\":true,\"endpoint\":\"$(out4 1):$port\",\"listen_port\":$port}" | jget id)
	cli=$(api POST /api/clients "{\"network_id\":\"$net\",\"name\":\"laptop\",\"persistent_keepalive\":5}" | jget id)

	# `up` names the interface after the file.
	mkdir -p "$SG_TMP/$ia" "$SG_TMP/$ib"
	(umask 077 && api GET "/api/clients/$hub/config" >"$SG_TMP/$ia/$ia.conf")
	(umask 077 && api GET "/api/clients/$cli/config" >"$SG_TMP/$ib/$ib.conf")
	log "hub config (keys elided):"
	grep -v 'PrivateKey' "$SG_TMP/$ia/$ia.conf"
	log "client config (keys elided):"
	grep -v 'PrivateKey' "$SG_TMP/$ib/$ib.conf"
	grep -qx "ListenPort = $port" "$SG_TMP/$ia/$ia.conf" || fail "hub config without ListenPort"
	grep -qx "AllowedIPs = 10.$o.0.2/32, fd00:$o::2/128" "$SG_TMP/$ia/$ia.conf" ||
		fail "hub config does not route the client's addresses"
	grep -qx "Endpoint = $(out4 1):$port" "$SG_TMP/$ib/$ib.conf" ||
		fail "client config without the hub endpoint"
	if [ "$mode" = fips ]; then
		grep -qx 'CryptoMode = fips' "$SG_TMP/$ib/$ib.conf" || fail "FIPS config without CryptoMode"
		grep -q '^FipsPrivateKey = ' "$SG_TMP/$ib/$ib.conf" || fail "FIPS config without FipsPrivateKey"
	else
		grep -q 'Fips\|CryptoMode' "$SG_TMP/$ib/$ib.conf" && fail "classic config with FIPS keys"
	fi

	for side in hub client; do
		ns=$A ifn=$ia
		[ $side = client ] && ns=$B ifn=$ib
		rc=0
		sg_san_env "$ifn"
		timeout 30 ip netns exec "$ns" env "${SAN_ENV[@]}" "$SG" up "$SG_TMP/$ifn/$ifn.conf" \
			>"$SG_TMP/$ifn.log" 2>&1 || rc=$?
		adopt_impl "$ns" "$ifn" secureguardd "$SG_TMP/$ifn.log"
		[ "$rc" -eq 0 ] || { cat "$SG_TMP/$ifn.log"; fail "secureguard up $ifn: status $rc"; }
		check_alive "$ifn"
	done

	log "ping across the $mode tunnel built from API configs"
	wait_ping "$B" "10.$o.0.1" 15
	assert_ping "$B" "10.$o.0.1"
	assert_ping "$A" "10.$o.0.2"
	assert_ping "$B" "fd00:$o::1"
	assert_ping "$A" "fd00:$o::2"
	any_handshake "$A" "$ia" || fail "hub shows no handshake"
	any_handshake "$B" "$ib" || fail "client shows no handshake"

	log "disable the client: the hub's config drops it"
	api PUT "/api/clients/$cli" '{"enabled":false}' >/dev/null
	api GET "/api/clients/$hub/config" | grep -q "10.$o.0.2/32" &&
		fail "disabled client still in the hub config"

	for ifn in "$ia" "$ib"; do
		pid=${D_PID[$ifn]}
		timeout 30 ip netns exec "${D_NS[$ifn]}" "$SG" down "$SG_TMP/$ifn/$ifn.conf" >/dev/null 2>&1 ||
			fail "secureguard down $ifn"
		wait_for 10 sg_gone "$pid" || fail "daemon of $ifn still running after down"
		D_STOPPED[$ifn]=1
		check_log_clean "$ifn"
	done
}

tunnel classic "${PFX}a" "${PFX}b" 99 51820
tunnel fips "${PFX}c" "${PFX}d" 98 51821
srv_stop api || fail "server did not stop cleanly"
finish
