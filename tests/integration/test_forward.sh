#!/usr/bin/env bash
# `secureguard forward` as an unprivileged user (no capabilities at all, no TUN device): psql in
# one namespace reaches PostgreSQL (by a name the tunnel's DNS answers) behind a secureguardd
# tunnel in another through the
# forwarded local port, over UDP and over the TLS transport with UDP blocked; a UDP echo
# through --udp; Ctrl-C (SIGINT) ends it cleanly.
source "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../server/pg.sh"
sg_init fw
trap 'rc=$?; trap - ERR; set +e; pg_stop; (exit $rc); sg_cleanup' EXIT
command -v setpriv >/dev/null || skip "missing tool: setpriv (util-linux)"
SG=$SG_BIN/secureguard
sg_hosts 2
SRV=${HOST[1]} CLI=${HOST[2]}
ifn=${PFX}a
sg_keys S
sg_keys C
start_impl "$SRV" "$ifn" secureguardd
nsx "$SRV" wg set "$ifn" private-key "$SG_TMP/S.key" listen-port 51820 \
	peer "$PUB_C" allowed-ips "$(in4 2)/32,$(in6 2)/128"
ip -n "$SRV" addr add "$(in4 1)/24" dev "$ifn"
ip -n "$SRV" addr add "$(in6 1)/64" dev "$ifn" nodad
ip -n "$SRV" link set "$ifn" up

# The TLS transport (docs/TLS.md): the server also listens on TLS; a client config may say
# Transport = tls (used below with UDP blocked).
"$SG" cert ca --out "$SG_TMP/ca" >/dev/null
"$SG" cert issue --ca "$SG_TMP/ca" --name srv --ip "$(out4 1)" --out "$SG_TMP/srv" >/dev/null
nsx "$SRV" "$SG" set "$ifn" tls-listen-port 8443 tls-certificate "$SG_TMP/srv/srv.crt" \
	tls-private-key "$SG_TMP/srv/srv.key" tls-ca "$SG_TMP/ca/ca.crt"
chmod 755 "$SG_TMP/ca"
chmod 644 "$SG_TMP/ca/ca.crt"

SG_PG_NETNS=$SRV SG_PG_LISTEN=$(in4 1) SG_PG_TRUST=$(in4 0)/24
rc=0
pg_start || rc=$?
[ "$rc" -eq 0 ] || fail "PostgreSQL behind the tunnel did not start (status $rc)"
pg_psql -d sgtest -c "CREATE TABLE t (v text); INSERT INTO t VALUES ('through the forward')" ||
	fail "preparing the table"
nsx "$SRV" python3 "$(dirname "$0")/gateway/udp_echo.py" serve echo "$(in4 1)" 5353 >/dev/null 2>&1 &
# A DNS server inside the tunnel that knows the database's name.
command -v dnsmasq >/dev/null || skip "missing tool: dnsmasq (scripts/deps.sh installs dnsmasq-base)"
nsx "$SRV" dnsmasq --no-daemon --conf-file=/dev/null --no-resolv --no-hosts --bind-interfaces \
	--listen-address="$(in4 1)" --port=53 --address="/db.sg.test/$(in4 1)" --local=/sg.test/ --user=root \
	--pid-file= >"$SG_TMP/dnsmasq.log" 2>&1 &

# The client's config, readable by the unprivileged user only through its mode.
conf=$SG_TMP/client.conf
cat >"$conf" <<CONF
[Interface]
PrivateKey = $(cat "$SG_TMP/C.key")
Address = $(in4 2)/24, $(in6 2)/64
DNS = $(in4 1)

[Peer]
PublicKey = $PUB_S
Endpoint = $(out4 1):51820
AllowedIPs = $(in4 0)/24, $(in6 0)/64
CONF
chown nobody "$conf"
chmod 600 "$conf"
chmod 711 "$SG_TMP"

ip netns exec "$CLI" setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all \
	--bounding-set=-all "$SG" forward --config "$conf" \
	"db.sg.test:$SG_PG_PORT" 127.0.0.1:15432 >"$SG_TMP/forward.log" 2>&1 &
fwd=$!
wait_for 10 sg_listening "$CLI" 15432 || { cat "$SG_TMP/forward.log"; fail "forward did not listen"; }
caps=$(awk '/^CapEff/ {print $2}' "/proc/$fwd/status")
user=$(stat -c %U "/proc/$fwd")
[ "$caps" = 0000000000000000 ] && [ "$user" = nobody ] ||
	fail "forward runs as $user with capabilities $caps (want nobody, none)"
log "forward runs as $user, CapEff $caps"

psql_c() { nsx "$CLI" env PGCONNECT_TIMEOUT=10 "$SG_PG_BINDIR/psql" -X -At -h 127.0.0.1 -p 15432 -U sg -d sgtest -c "$1"; }
out=$(psql_c "SELECT v FROM t") || { cat "$SG_TMP/forward.log"; fail "psql through the forward"; }
[ "$out" = "through the forward" ] || fail "psql answered '$out'"
# A larger answer (about 7 MB), checked against the same query run directly at the server.
q="SELECT md5(string_agg(md5(i::text), '' ORDER BY i)), count(*) FROM generate_series(1, 100000) i, LATERAL (SELECT repeat(md5(i::text), 2)) x"
want=$(pg_psql -At -d sgtest -c "$q")
got=$(psql_c "COPY (SELECT i, repeat(md5(i::text), 2) FROM generate_series(1, 100000) i) TO STDOUT" | sha256sum)
direct=$(pg_psql -At -d sgtest -c "COPY (SELECT i, repeat(md5(i::text), 2) FROM generate_series(1, 100000) i) TO STDOUT" | sha256sum)
[ "$got" = "$direct" ] || fail "COPY through the forward differs from the direct one"
[ -n "$want" ] && [ "$(psql_c "$q")" = "$want" ] || fail "aggregate differs"
log "psql through the forward: row, 7 MB COPY (sha256 equal to the direct one) and an aggregate: ok"

# A name the tunnel's DNS does not know: a clear error, no forward.
rc=0
ip netns exec "$CLI" setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all \
	"$SG" forward --config "$conf" nosuch.sg.test:5432 127.0.0.1:15434 >"$SG_TMP/nosuch.log" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && grep -q "nosuch.sg.test" "$SG_TMP/nosuch.log" ||
	{ cat "$SG_TMP/nosuch.log"; fail "an unknown name did not fail clearly (status $rc)"; }
log "names through the tunnel's DNS: db.sg.test resolved, an unknown one refused: $(grep -m1 nosuch.sg.test "$SG_TMP/nosuch.log")"

# UDP: a second tunnel (its own engine and key use) to the echo, datagrams both ways.
ip netns exec "$CLI" setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all \
	--bounding-set=-all "$SG" forward --config "$conf" --udp \
	"$(in4 1):5353" 127.0.0.1:15353 >"$SG_TMP/forward-udp.log" 2>&1 &
ufwd=$!
udp_bound() { nsx "$CLI" ss -Hlun "sport = :15353" | grep -q .; }
wait_for 10 udp_bound || { cat "$SG_TMP/forward-udp.log"; fail "UDP forward did not bind"; }
n=$(nsx "$CLI" python3 "$(dirname "$0")/gateway/udp_echo.py" ask 127.0.0.1 15353 20)
[ "$n" -ge 18 ] || { cat "$SG_TMP/forward-udp.log"; fail "UDP through the forward: $n of 20 answers"; }
log "UDP through the forward: $n of 20 answers"
kill -INT "$ufwd"

# Over the TLS transport with UDP to the server blocked for the client: the same psql.
nsx "$CLI" nft add table inet sgblock
nsx "$CLI" nft add chain inet sgblock out '{ type filter hook output priority 0; }'
nsx "$CLI" nft add rule inet sgblock out udp dport 51820 drop
tconf=$SG_TMP/client-tls.conf
sed -e "s|^\[Interface\]|[Interface]\nTlsCA = $SG_TMP/ca/ca.crt|" \
	-e "s|^Endpoint = .*|Endpoint = $(out4 1):51820\nTlsEndpoint = $(out4 1):8443\nTransport = tls|" \
	"$conf" >"$tconf"
chown nobody "$tconf"
chmod 600 "$tconf"
ip netns exec "$CLI" setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all \
	--bounding-set=-all "$SG" forward --config "$tconf" -v \
	"$(in4 1):$SG_PG_PORT" 127.0.0.1:15433 >"$SG_TMP/forward-tls.log" 2>&1 &
tfwd=$!
wait_for 10 sg_listening "$CLI" 15433 || { cat "$SG_TMP/forward-tls.log"; fail "TLS forward did not listen"; }
out=$(nsx "$CLI" env PGCONNECT_TIMEOUT=20 "$SG_PG_BINDIR/psql" -X -At -h 127.0.0.1 -p 15433 -U sg -d sgtest -c "SELECT v FROM t") ||
	{ cat "$SG_TMP/forward-tls.log"; fail "psql through the forward over TLS"; }
[ "$out" = "through the forward" ] || fail "psql over TLS answered '$out'"
grep -q "event=tls_up" "$SG_TMP/forward-tls.log" || { cat "$SG_TMP/forward-tls.log"; fail "no TLS connection in the forward's log"; }
log "psql through the forward over the TLS transport (UDP blocked): ok"
kill -INT "$tfwd"
nsx "$CLI" nft delete table inet sgblock

kill -INT "$fwd"
wait_for 10 sg_gone "$fwd" || fail "forward did not stop on SIGINT"
rc=0
wait "$fwd" || rc=$?
grep -q "stopping" "$SG_TMP/forward.log" && [ "$rc" -eq 0 ] || { cat "$SG_TMP/forward.log"; fail "forward exit $rc"; }
check_alive "$ifn"
log "PASS"
