#!/bin/bash
# `make demo`: part 1, secureguardd and wireguard-go, the reference WireGuard implementation,
# talking to each other in two network namespaces on this machine; part 2, the management server
# on its embedded default (SQLite) creating a network, a hub and a laptop whose downloaded
# configs `secureguard up` brings up in the same namespaces. Needs root (namespaces, TUN).
#
#   SG_BIN=DIR          where secureguardd and secureguard are (default: build/bin)
#   SG_TEST_IMPL=wireguard-go   run the demo with wireguard-go on both sides
#
# Everything it creates (namespaces, daemons, sockets, keys in a temporary directory) is removed
# on exit, also when a step fails.
root=$(cd "$(dirname "$0")/.." && pwd)
export SG_BIN=${SG_BIN:-$root/build/bin}

if [ "$(id -u)" -ne 0 ]; then
	echo "demo: needs root to create network namespaces and TUN devices; run: sudo make demo" >&2
	exit 1
fi
if [ "${SG_TEST_IMPL:-secureguardd}" = secureguardd ] && [ ! -x "$SG_BIN/secureguardd" ]; then
	echo "demo: $SG_BIN/secureguardd not found; build it first (make)" >&2
	exit 1
fi
for t in ip wg wireguard-go ping; do
	command -v "$t" >/dev/null 2>&1 || {
		echo "demo: missing $t; run scripts/deps.sh (make deps)" >&2
		exit 1
	}
done

SG_TEST=demo
. "$root/tests/integration/lib.sh"
# lib.sh skips (exit 77) when a prerequisite is missing; all were checked above.
sg_init dm

step() { printf '\n==> %s\n' "$*"; }
show_cmd() {
	printf '    $ %s\n' "$*"
	"$@" 2>&1 | sed 's/^/    /'
}

step "Two hosts in network namespaces, joined by a bridge"
pair_init
echo "    left : $A  outer 192.0.2.1  2001:db8::1  (runs $SG_IMPL)"
echo "    right: $B  outer 192.0.2.2  2001:db8::2  (runs wireguard-go $(wireguard-go --version 2>/dev/null | sed -n 's/^wireguard-go //p'))"

step "Key pairs (wg genkey | wg pubkey)"
echo "    left  public key: $PUB_a"
echo "    right public key: $PUB_b"

step "Start $SG_IMPL for $IA on the left and wireguard-go for $IB on the right"
up "$A" "$IA" "$SG_IMPL" a "$PORT" 1
up "$B" "$IB" wireguard-go b "$PORT" 2
echo "    tunnel addresses: left $(in4 1) $(in6 1), right $(in4 2) $(in6 2)"
echo "    both are driven with the stock wg tool over /var/run/wireguard/<if>.sock"

step "Tell each side about the other (wg set ... peer ... endpoint ... allowed-ips ...)"
show_cmd ip netns exec "$A" wg set "$IA" peer "$PUB_b" endpoint "$(out4 2):$PORT" \
	allowed-ips "$(in4 2)/32,$(in6 2)/128"
show_cmd ip netns exec "$B" wg set "$IB" peer "$PUB_a" endpoint "$(out4 1):$PORT" \
	allowed-ips "$(in4 1)/32,$(in6 1)/128"

step "Ping right from left over IPv4 (the first packet triggers the handshake)"
wait_ping "$A" "$(in4 2)" 10
show_cmd ip netns exec "$A" ping -c 3 -i 0.2 "$(in4 2)"
step "Ping right from left over IPv6"
show_cmd ip netns exec "$A" ping -c 3 -i 0.2 "$(in6 2)"
step "And back: wireguard-go's side pings ours, IPv4 and IPv6"
assert_ping "$B" "$(in4 1)"
assert_ping "$B" "$(in6 1)"
echo "    all replies received"

step "Our side, as secureguard show reports it"
if [ -x "$SG_BIN/secureguard" ] && out=$(ip netns exec "$A" "$SG_BIN/secureguard" show "$IA" 2>&1); then
	printf '    $ secureguard show %s\n' "$IA"
	printf '%s\n' "$out" | sed 's/^/    /'
else
	echo "    (secureguard show is not available here: ${out:-no $SG_BIN/secureguard}; using wg show)"
	show_cmd ip netns exec "$A" wg show "$IA"
fi
step "wireguard-go's side, as wg show reports it"
show_cmd ip netns exec "$B" wg show "$IB"

step "Stop both daemons and check they exit cleanly"
stop_impl "$IA"
stop_impl "$IB"
step "Part 1 done: $SG_IMPL and wireguard-go exchanged traffic over IPv4 and IPv6."

if [ "$SG_IMPL" != secureguardd ] || [ ! -x "$SG_BIN/secureguard" ] || ! command -v curl >/dev/null; then
	echo "    (part 2, the management server, needs secureguard and curl; skipped)"
	finish >/dev/null
fi

# Part 2: the management server on its embedded default, SQLite, makes the configs.
SG=$SG_BIN/secureguard
SRV=$SG_TMP/server
mkdir -p "$SRV"
step "Start the management server on SQLite (secureguard server) with a first admin"
export SG_ADMIN_EMAIL=admin@example.com
SG_ADMIN_PASSWORD="demo-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
export SG_ADMIN_PASSWORD
printf '    $ secureguard server --listen 127.0.0.1:0 --data-dir %s\n' "$SRV"
"$SG" server --listen 127.0.0.1:0 --port-file "$SRV/port" --data-dir "$SRV" >"$SRV/server.log" 2>&1 &
SRV_PID=$!
wait_for 20 test -s "$SRV/port" || { cat "$SRV/server.log"; fail "server did not start"; }
URL=http://127.0.0.1:$(cat "$SRV/port")
echo "    listening on $URL, database $SRV/server.db"
stop_server() {
	if kill -TERM "$SRV_PID" 2>/dev/null; then
		wait "$SRV_PID" 2>/dev/null || true
	fi
}
trap 'rc=$?; trap - ERR; set +e; stop_server; (exit $rc); sg_cleanup' EXIT

jget() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
TOK=$(curl -sf -H 'Content-Type: application/json' \
	--data "{\"email\":\"$SG_ADMIN_EMAIL\",\"password\":\"$SG_ADMIN_PASSWORD\"}" \
	"$URL/api/auth/login" | jget access_token) || fail "login failed"
api() {
	printf '    $ curl -X %s %s%s %s\n' "$1" "$URL" "$2" "${3:-}" >&2
	curl -sf -X "$1" -H "Authorization: Bearer $TOK" -H 'Content-Type: application/json' \
		${3:+--data "$3"} "$URL$2" || fail "API $1 $2 failed"
}
step "Log in, create a network, its hub and a laptop (server-generated keys)"
NET=$(api POST /api/networks '{"name":"office","subnet4":"10.99.0.0/24","subnet6":"fd00:99::/64","fips_required":false}' | jget id)
HUB=$(api POST /api/clients "{\"network_id\":\"$NET\",\"name\":\"hub\",\"is_relay\":true,\"endpoint\":\"$(out4 1):51830\",\"listen_port\":51830}" | jget id)
LAP=$(api POST /api/clients "{\"network_id\":\"$NET\",\"name\":\"laptop\",\"persistent_keepalive\":25}" | jget id)
IH=${PFX}h IL=${PFX}l
mkdir -p "$SG_TMP/$IH" "$SG_TMP/$IL"
step "Download both configs (GET /api/clients/:id/config; ?format=qr gives a PNG for phones)"
(umask 077 && api GET "/api/clients/$HUB/config" >"$SG_TMP/$IH/$IH.conf")
(umask 077 && api GET "/api/clients/$LAP/config" >"$SG_TMP/$IL/$IL.conf")
echo "    the laptop's config, private key hidden:"
sed 's/^PrivateKey = .*/PrivateKey = (hidden)/' "$SG_TMP/$IL/$IL.conf" | sed 's/^/      /'
step "Bring both up with secureguard up (the wg-quick way), hub on the left, laptop on the right"
for side in "$A:$IH" "$B:$IL"; do
	ns=${side%%:*} ifn=${side#*:}
	printf '    $ secureguard up %s\n' "$SG_TMP/$ifn/$ifn.conf"
	ip netns exec "$ns" "$SG" up "$SG_TMP/$ifn/$ifn.conf" >"$SG_TMP/$ifn.up.log" 2>&1 ||
		{ cat "$SG_TMP/$ifn.up.log"; fail "secureguard up $ifn"; }
	sed 's/^/    /' "$SG_TMP/$ifn.up.log"
	adopt_impl "$ns" "$ifn" secureguardd "$SG_TMP/$ifn.up.log"
done
step "The laptop pings the hub through the tunnel the server configured"
wait_ping "$B" 10.99.0.1 15
show_cmd ip netns exec "$B" ping -c 3 -i 0.2 10.99.0.1
show_cmd ip netns exec "$B" ping -c 2 -i 0.2 fd00:99::1
step "Every change was audited, in a hash chain (secureguard audit verify)"
show_cmd "$SG" audit verify --db "sqlite:$SRV/server.db"
for ifn in "$IH" "$IL"; do
	ip netns exec "${D_NS[$ifn]}" "$SG" down "$SG_TMP/$ifn/$ifn.conf" >/dev/null 2>&1 || fail "down $ifn"
	D_STOPPED[$ifn]=1
done
stop_server
step "Demo done: a tunnel with wireguard-go, and one built from the management server's configs."
echo "    (namespaces, sockets, keys and the server's data are removed now)"
finish >/dev/null
