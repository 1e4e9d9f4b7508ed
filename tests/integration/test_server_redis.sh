#!/bin/bash
# shellcheck disable=SC2154 # SRV_<name> variables are set by srv_start (printf -v)
# `secureguard server --redis` (issue 18): two servers on one PostgreSQL and one Redis, both
# real and on loopback (tests/server/pg.sh, tests/server/redis.sh; Redis with its default user
# off and an ACL user, so AUTH USER PASSWORD is what gets in):
# - refusals at start: a bad URL, a wrong password (named, the password not echoed), a TLS
#   server whose certificate does not chain to the given CA;
# - /api/ready says "redis": "up"; /metrics has the secureguard_redis_* lines; both servers are
#   subscribed to sg:sync (PUBSUB NUMSUB) and do not LISTEN on PostgreSQL;
# - a refresh token and an API key revoked on B are refused on A at once; a client challenge
#   spent on A is refused on B;
# - failed logins from one address spread over A and B count together: 6 (--login-ip-limit 6),
#   then 429 on both; the counter is sg:rate_limit:{ip}:auth_fail with the window's TTL;
# - a change on A answers a long poll held by B (Redis pub/sub);
# - live state (docs/OPERATIONS.md "Redis"): a hub's report through A shows its clients online
#   on B at once; sg:connection:{client_id} read back with its TTL (3 x --agent-poll 4 = 12 s);
#   with no further report B shows them offline once it expired (the database still has them
#   online); a temporary access link made on A works on B, revoked on A is refused on B at
#   once (sg:temp_access:{sha384} = "revoked", TTL = the grant's rest);
# - Redis stopped: ready 503 naming Redis, reads and writes go on, failed logins are still
#   limited (per server), client logins and temporary access creation 503 (fail closed); Redis
#   started again (empty): ready, the subscriptions, the shared rate limit, the push across
#   servers and the temporary access keys (reloaded from the database) come back by themselves;
# - rediss:// (TLS, the CA and a client certificate in the URL) works the same; without the
#   client certificate Redis wants, the server refuses to start, saying so.
#
# Environment: SG_BIN, SG_SRC. Exit 77: PostgreSQL or redis-server missing.
set -u
SRV_TEST=test_server_redis
# shellcheck source=tests/server/server_lib.sh
. "$(dirname "$0")/../server/server_lib.sh"
# shellcheck source=tests/server/pg.sh
. "$SG_SRC/tests/server/pg.sh"
# shellcheck source=tests/server/redis.sh
. "$SG_SRC/tests/server/redis.sh"
[ -x "$SG" ] || { srv_log "SKIP: $SG not built"; exit 77; }
for t in python3 curl psql redis-server redis-cli openssl; do
	command -v "$t" >/dev/null || { srv_log "SKIP: missing tool $t"; exit 77; }
done
python3 -c 'import cryptography' 2>/dev/null || { srv_log "SKIP: python3-cryptography"; exit 77; }
TMP=$(mktemp -d /tmp/sg-server-redis.XXXXXX)
cleanup() {
	srv_kill_all
	redis_stop
	pg_stop
	rm -rf "$TMP"
}
trap cleanup EXIT
fail() { srv_fail "$@"; }
srv_admin_env redis
srv_need PostgreSQL pg_start
srv_need redis-server redis_start
PG=$SG_PG_URL
KEY=$TMP/cluster.key
OPTS=(--key-file "$KEY" --login-ip-limit 6 --lockout 1000 --agent-poll 4)
T() { python3 "$SG_SRC/tests/server/redis_test.py" "$1" "$TMP/state.json" "$SRV_URL_a,$SRV_URL_b" "${@:2}"; }
# st NAME: a value the stages saved in the state file.
st() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$TMP/state.json" "$1"; }

# ---- refusals at start ------------------------------------------------------------------------
# refused NAME WANT URL: the server exits 1 at once, naming WANT, never echoing the password.
refused() {
	local out rc
	out=$(timeout 30 "$SG" server --listen 127.0.0.1:0 --data-dir "$TMP/refused" --db "$PG" \
		--key-file "$KEY" --redis "$3" 2>&1)
	rc=$?
	[ $rc -eq 1 ] || fail "$1: exit $rc: $out"
	[[ $out == *"$2"* ]] || fail "$1: the message does not say '$2': $out"
	[[ $out == *"$SG_REDIS_PASSWORD_VALUE"* || $out == *wrong-secret* ]] &&
		fail "$1: the password is in the message: $out"
	srv_log "$1 refused: ${out#secureguard server: }"
}
refused "a bad port" "port: expected :1 to :65535" "redis://127.0.0.1:70000/1"
refused "a wrong password" "WRONGPASS" "redis://sgapp:wrong-secret@127.0.0.1:$SG_REDIS_PORT/1"
refused "no password (default user off)" "NOAUTH" "redis://127.0.0.1:$SG_REDIS_PORT/1"

# ---- two servers ------------------------------------------------------------------------------
srv_start a "$PG" "$TMP/a" "${OPTS[@]}" --redis "$SG_REDIS_URL" || fail "server a"
srv_start b "$PG" "$TMP/b" "${OPTS[@]}" --redis "$SG_REDIS_URL" || fail "server b"
for s in a b; do
	u="SRV_URL_$s"
	r=$(curl -sf "${!u}/api/ready") || fail "$s not ready"
	[[ $r == *'"redis": "up"'* || $r == *'"redis":"up"'* ]] || fail "$s ready without redis up: $r"
	m=$(curl -sf "${!u}/metrics") || fail "$s metrics"
	for want in 'secureguard_redis_up 1' 'secureguard_redis_commands_total{result="ok"}'; do
		[[ $m == *"$want"* ]] || fail "$s metrics lack $want"
	done
	l="SRV_LOG_$s"
	grep -q 'event=redis_connected' "${!l}" || fail "$s: no redis_connected line"
	grep -q "$SG_REDIS_PASSWORD_VALUE" "${!l}" && fail "$s: the Redis password is in the log"
done
# wait_subscribers N: both servers subscribed to sg:sync (bounded: 20 s).
wait_subscribers() {
	local n
	for _ in $(seq 1 100); do
		n=$(redis_cli PUBSUB NUMSUB sg:sync 2>/dev/null | tail -n 1)
		[ "$n" = "$1" ] && return 0
		sleep 0.2
	done
	fail "sg:sync has ${n:-no} subscribers, wanted $1"
}
wait_subscribers 2
n=$(psql -X -q -t -A "$SG_PG_SUPER_URL" -c \
	"SELECT COUNT(*) FROM pg_stat_activity WHERE query ILIKE 'LISTEN%'")
[ "$n" = 0 ] || fail "$n sessions LISTEN on PostgreSQL while Redis carries the changes"
srv_log "a and b: ready with Redis, subscribed to sg:sync, no LISTEN on PostgreSQL"

# ---- one truth across servers -----------------------------------------------------------------
T revoke || fail "revocation across servers"
T challenge || fail "a challenge's single use across servers"
T ratelimit 127.0.0.5 || fail "a rate limit across servers"
v=$(redis_cli GET sg:rate_limit:127.0.0.5:auth_fail)
ttl=$(redis_cli TTL sg:rate_limit:127.0.0.5:auth_fail)
[ "$v" = 6 ] || fail "sg:rate_limit:127.0.0.5:auth_fail = '$v', wanted 6"
[ "$ttl" -gt 0 ] && [ "$ttl" -le 300 ] || fail "its TTL is $ttl, wanted 1..300 (--login-ip-window)"
srv_log "sg:rate_limit:127.0.0.5:auth_fail = $v, TTL $ttl s"
T push || fail "a change on a reaching a long poll on b"

# ---- live state -------------------------------------------------------------------------------
T connection || fail "a hub's report through a seen on b"
lap=$(st laptop)
v=$(redis_cli GET "sg:connection:$lap")
ttl=$(redis_cli TTL "sg:connection:$lap")
[[ $v == *'"online":true'* && $v == *'"endpoint":"198.51.100.89:40000"'* ]] ||
	fail "sg:connection:$lap = '$v'"
[ "$ttl" -gt 0 ] && [ "$ttl" -le 12 ] || fail "its TTL is $ttl, wanted 1..12 (3 x --agent-poll 4)"
srv_log "sg:connection:$lap = $v, TTL $ttl s"
# While the laptop's entry runs out: temporary access.
T temp || fail "temporary access across servers"
tkey=$(st temp_key)
texp=$(st temp_expires)
left=$((texp - $(date +%s)))
v=$(redis_cli GET "$tkey")
ttl=$(redis_cli TTL "$tkey")
[ "$v" = revoked ] || fail "$tkey = '$v', wanted revoked"
[ "$ttl" -gt $((left - 30)) ] && [ "$ttl" -le $((left + 1)) ] ||
	fail "its TTL is $ttl, wanted the grant's rest ($left s)"
srv_log "$tkey = $v, TTL $ttl s (the grant's rest)"
T connection_gone || fail "the laptop's entry expiring"
[ "$(redis_cli EXISTS "sg:connection:$lap")" = 0 ] || fail "sg:connection:$lap outlived its TTL"
n=$(psql -X -q -t -A "$PG" -c "SELECT online FROM clients WHERE id = '$lap'")
[ "$n" = 1 ] || fail "the database has online = '$n' for the laptop, wanted 1 (the last report)"

# ---- Redis away and back ----------------------------------------------------------------------
redis_down
T redis_away 127.0.0.6 || fail "Redis away"
for s in a b; do
	u="SRV_URL_$s"
	m=$(curl -sf "${!u}/metrics") || fail "$s metrics"
	[[ $m == *'secureguard_redis_up 0'* ]] || fail "$s: secureguard_redis_up is not 0 with Redis away"
done
redis_up || fail "Redis did not start again"
for s in a b; do
	u="SRV_URL_$s"
	ok=
	for _ in $(seq 1 100); do
		curl -sf "${!u}/api/ready" >/dev/null && { ok=1; break; }
		sleep 0.2
	done
	[ -n "$ok" ] || fail "$s not ready within 20 s of Redis coming back"
done
wait_subscribers 2
T ratelimit 127.0.0.7 || fail "the shared rate limit after Redis came back"
[ "$(redis_cli GET sg:rate_limit:127.0.0.7:auth_fail)" = 6 ] || fail "no shared count after the restart"
T push || fail "push across servers after Redis came back"
T temp_again || fail "temporary access keys after Redis came back empty"
[ "$(redis_cli GET "$tkey")" = revoked ] || fail "$tkey not reloaded as revoked"
[ "$(redis_cli GET sg:temp_access:loaded)" = 1 ] || fail "sg:temp_access:loaded not set"
srv_log "Redis back: ready, subscribed, rate limits shared, push across servers and temporary" \
	"access keys (reloaded from the database) again"
srv_stop a || fail "stop a"
srv_stop b || fail "stop b"

# ---- rediss:// --------------------------------------------------------------------------------
redis_stop
redis_start tls || fail "could not start Redis with TLS"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=other-ca \
	-keyout "$TMP/other-ca.key" -out "$TMP/other-ca.pem" >/dev/null 2>&1 || fail "openssl"
refused "a CA that did not sign Redis's certificate" "certificate verify failed" \
	"${SG_REDIS_URL%%\?*}?ca=$TMP/other-ca.pem"
# TLS 1.3: Redis checks the certificate after our handshake ends, so its alert ("TLS: ...")
# can lose the race with our AUTH; the message then names the missing client certificate.
refused "no client certificate (Redis asks for one)" "certificate" \
	"${SG_REDIS_URL%%&*}"
srv_start a "$PG" "$TMP/a" "${OPTS[@]}" --redis "$SG_REDIS_URL" || fail "server a over TLS"
srv_start b "$PG" "$TMP/b" "${OPTS[@]}" --redis "$SG_REDIS_URL" || fail "server b over TLS"
curl -sf "$SRV_URL_a/api/ready" | grep -q '"redis": *"up"' || fail "a not ready over TLS"
wait_subscribers 2
T ratelimit 127.0.0.8 || fail "a rate limit across servers over TLS"
T push || fail "push across servers over TLS"
srv_stop a || fail "stop a"
srv_stop b || fail "stop b"
"$SG" audit verify --db "$PG" >/dev/null || fail "audit chain"
srv_log "rediss:// with the CA and a client certificate in the URL: the same; audit chain intact"
srv_log "PASS"
