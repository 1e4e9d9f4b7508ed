#!/bin/bash
# shellcheck disable=SC2154 # SRV_<name> variables are set by srv_start (printf -v)
# Issue 18's proof: three `secureguard server`s behind HAProxy, on one PostgreSQL with a
# synchronous streaming replica and one Redis, all real and on loopback, under a write load
# with faults:
# - WRITES (default 10,000) acknowledged writes from 20 concurrent clients through HAProxy
#   (POST /api/networks, each one audited), while
#   - one server is killed with SIGKILL (HAProxy moves on; it is started again later),
#   - PostgreSQL is restarted (the servers answer 503, then serve again by themselves),
#   - Redis is restarted,
#   - the primary is stopped (-m immediate, a crash) and the replica promoted (pg_ctl
#     promote): the servers reach the new primary through their multi-host --db URL
#     (target_session_attrs=read-write) with no operator action;
# - then: every acknowledged write is in the promoted database (synchronous replication:
#   nothing acknowledged is lost), every network has its audit row, the audit ids run 1..N
#   with no gap or duplicate and `secureguard audit verify` passes;
# - a refresh token and an API key revoked on one server are refused on the other two; failed
#   logins spread over the three are counted together, also through HAProxy (option forwardfor,
#   --trusted-proxy 127.0.0.1) per client address; a change on one answers long polls
#   held by the others (so Redis's rate limits and push channels came back after its restart).
#
# SG_HA_WRITES and SG_HA_CLIENTS change the load (make check runs the defaults).
# Environment: SG_BIN, SG_SRC. Exit 77: PostgreSQL, Redis or HAProxy missing.
set -u
SRV_TEST=test_server_ha
# shellcheck source=tests/server/server_lib.sh
. "$(dirname "$0")/../server/server_lib.sh"
# shellcheck source=tests/server/pg.sh
. "$SG_SRC/tests/server/pg.sh"
# shellcheck source=tests/server/redis.sh
. "$SG_SRC/tests/server/redis.sh"
[ -x "$SG" ] || { srv_log "SKIP: $SG not built"; exit 77; }
for t in python3 curl psql redis-server redis-cli haproxy socat; do
	command -v "$t" >/dev/null || { srv_log "SKIP: missing tool $t"; exit 77; }
done
python3 -c 'import cryptography' 2>/dev/null || { srv_log "SKIP: python3-cryptography"; exit 77; }
WRITES=${SG_HA_WRITES:-10000}
CLIENTS=${SG_HA_CLIENTS:-20}
TMP=$(mktemp -d /tmp/sg-server-ha.XXXXXX)
chmod 755 "$TMP"
cleanup() {
	local v
	[ -n "${LOAD:-}" ] && kill "$LOAD" 2>/dev/null
	for v in ${!SRV_PID_*}; do kill -KILL "${!v}" 2>/dev/null; done
	[ -n "${HAPROXY:-}" ] && kill "$HAPROXY" 2>/dev/null
	[ -n "${REPLICA:-}" ] && [ -f "$REPLICA/postmaster.pid" ] &&
		pg__as "$SG_PG_BINDIR/pg_ctl" -D "$REPLICA" -m immediate -w -t 30 stop >/dev/null 2>&1
	redis_stop
	pg_stop
	rm -rf "$TMP"
}
trap cleanup EXIT
fail() { srv_fail "$@"; }
srv_admin_env ha
srv_need PostgreSQL pg_start
srv_need redis-server redis_start
[ -x "$SG_PG_BINDIR/pg_basebackup" ] || { srv_log "SKIP: no pg_basebackup"; exit 77; }

# ---- PostgreSQL: a synchronous streaming replica ---------------------------------------------
PRIMARY=$SG_PG_DIR/data
REPLICA=$SG_PG_DIR/replica
P1=$SG_PG_PORT
P2=$(pg__free_port)
pg_opts() { echo "-k $SG_PG_DIR -p $1 -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 -c wal_retrieve_retry_interval=500ms"; }
pg_ctl_on() { # DATADIR ARGS...
	local d=$1
	shift
	pg__as "$SG_PG_BINDIR/pg_ctl" -D "$d" "$@" >>"$SG_PG_DIR/pg_ctl.log" 2>&1
}
sql_on() { psql -X -q -t -A -v ON_ERROR_STOP=1 "postgresql://sg@127.0.0.1:$1/sgtest" -c "$2"; }
pg__as "$SG_PG_BINDIR/pg_basebackup" -h 127.0.0.1 -p "$P1" -U sg -D "$REPLICA" -X stream \
	>"$SG_PG_DIR/basebackup.log" 2>&1 || { cat "$SG_PG_DIR/basebackup.log"; fail "pg_basebackup"; }
pg__as touch "$REPLICA/standby.signal"
echo "primary_conninfo = 'host=127.0.0.1 port=$P1 user=sg application_name=replica1'" |
	pg__as tee -a "$REPLICA/postgresql.auto.conf" >/dev/null
pg_ctl_on "$REPLICA" -l "$SG_PG_DIR/replica.log" -w -t 60 -o "$(pg_opts "$P2")" start ||
	fail "the replica does not start"
sql_on "$P1" "ALTER SYSTEM SET synchronous_standby_names = 'replica1'" >/dev/null &&
	sql_on "$P1" "SELECT pg_reload_conf()" >/dev/null || fail "synchronous_standby_names"
# wait_sync: the replica streams synchronously from the primary (bounded: 30 s).
wait_sync() {
	local s
	for _ in $(seq 1 150); do
		s=$(sql_on "$P1" "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'replica1'" 2>/dev/null)
		[ "$s" = sync ] && return 0
		sleep 0.2
	done
	fail "the replica is not a synchronous standby (sync_state '$s')"
}
wait_sync
srv_log "PostgreSQL primary on $P1, synchronous streaming replica on $P2"
# The servers' address of the database: both hosts, the one that takes writes wins.
DB="postgresql://sgapp@127.0.0.1:$P1,127.0.0.1:$P2/sgtest?target_session_attrs=read-write"

# ---- three servers and HAProxy ----------------------------------------------------------------
OPTS=(--key-file "$TMP/cluster.key" --redis "$SG_REDIS_URL" --login-ip-limit 6 --lockout 1000
	--trusted-proxy 127.0.0.1)
for s in s1 s2 s3; do
	srv_start "$s" "$DB" "$TMP/$s" "${OPTS[@]}" || fail "server $s"
done
HAPORT=$(pg__free_port)
cat >"$TMP/haproxy.cfg" <<EOF
global
	maxconn 2000
	stats socket $TMP/haproxy.sock mode 600 level admin
defaults
	mode http
	timeout connect 1s
	timeout client 60s
	timeout server 60s
	# A connection refused (a killed server) is retried on another server; a request that
	# reached a server is never sent twice (a write could run twice).
	retries 3
	retry-on conn-failure
	option redispatch
	# X-Forwarded-For: the servers (--trusted-proxy 127.0.0.1) count each client apart.
	option forwardfor
frontend api
	bind 127.0.0.1:$HAPORT
	default_backend servers
backend servers
	balance roundrobin
	option httpchk GET /api/ready
	http-check expect status 200
	default-server inter 300ms fall 2 rise 2
	server s1 127.0.0.1:$SRV_PORT_s1 check
	server s2 127.0.0.1:$SRV_PORT_s2 check
	server s3 127.0.0.1:$SRV_PORT_s3 check
EOF
haproxy -db -f "$TMP/haproxy.cfg" >"$TMP/haproxy.log" 2>&1 &
HAPROXY=$!
HA="http://127.0.0.1:$HAPORT"
# ha_state NAME: UP, DOWN, ... as HAProxy sees server NAME.
ha_state() {
	echo "show stat" | socat - "UNIX-CONNECT:$TMP/haproxy.sock" 2>/dev/null |
		awk -F, -v s="$1" '$1 == "servers" && $2 == s { print $18 }'
}
wait_ha() { # NAME STATE: bounded, 30 s
	local st
	for _ in $(seq 1 150); do
		st=$(ha_state "$1")
		[[ $st == "$2"* ]] && return 0
		sleep 0.2
	done
	fail "HAProxy sees $1 as '$st', not $2"
}
for s in s1 s2 s3; do wait_ha "$s" UP; done
srv_log "HAProxy on $HAPORT: s1, s2, s3 UP (health check: GET /api/ready)"

# An admin API key for the load.
TOKEN=$(srv_login "$SRV_URL_s1" "$SG_ADMIN_EMAIL" "$SG_ADMIN_PASSWORD") || fail "login"
KEY=$(curl -sf -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
	--data '{"name": "load", "role": "admin"}' "$HA/api/api-keys" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])') || fail "API key"

# ---- the load, and faults during it ------------------------------------------------------------
mkdir -p "$TMP/load"
python3 "$SG_SRC/tests/server/ha_load.py" "$HA" "$KEY" "$WRITES" "$CLIENTS" "$TMP/load" \
	>"$TMP/load/out" 2>&1 &
LOAD=$!
# at PERCENT: waits until that share of the writes was acknowledged (bounded: 10 minutes).
at() {
	local want=$((WRITES * $1 / 100)) n=0
	for _ in $(seq 1 3000); do
		n=$(cat "$TMP/load/progress" 2>/dev/null || echo 0)
		[ "${n:-0}" -ge "$want" ] && { srv_log "$n writes acknowledged"; return 0; }
		kill -0 "$LOAD" 2>/dev/null || { cat "$TMP/load/out"; fail "the load ended early"; }
		sleep 0.2
	done
	fail "only $n of $want writes acknowledged after 10 minutes"
}
# ready_all CODE: every server's /api/ready answers CODE (bounded: 30 s).
ready_all() {
	local s u c
	for s in s1 s2 s3; do
		u="SRV_URL_$s"
		for _ in $(seq 1 150); do
			c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "${!u}/api/ready")
			[ "$c" = "$1" ] && break
			sleep 0.2
		done
		[ "$c" = "$1" ] || fail "$s: /api/ready answers $c, not $1"
	done
}

at 15
srv_kill s2
wait_ha s2 DOWN
srv_log "s2 killed with SIGKILL; HAProxy took it out"
at 25
srv_start s2 "$DB" "$TMP/s2" "${OPTS[@]}" --listen "127.0.0.1:$SRV_PORT_s2" || fail "s2 again"
wait_ha s2 UP
srv_log "s2 started again and back in HAProxy"

at 35
pg_ctl_on "$PRIMARY" -m fast -w -t 30 stop || fail "stopping PostgreSQL"
ready_all 503
c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X POST -H "Authorization: Bearer $KEY" \
	-H 'Content-Type: application/json' --data '{"name": "while-away", "subnet4": "192.168.77.0/24"}' \
	"$SRV_URL_s1/api/networks")
[ "$c" = 503 ] || fail "a write while PostgreSQL is away answered $c, not 503"
pg_ctl_on "$PRIMARY" -l "$SG_PG_DIR/server.log" -w -t 60 -o "$(pg_opts "$P1")" start ||
	fail "starting PostgreSQL again"
ready_all 200
wait_sync
srv_log "PostgreSQL restarted: ready and writes 503 meanwhile, then ready again by themselves"

at 55
redis_down
ready_all 503
redis_up || fail "Redis does not start again"
ready_all 200
srv_log "Redis restarted: ready 503 meanwhile, then ready again by themselves"

at 75
pg_ctl_on "$PRIMARY" -m immediate -w -t 30 stop || fail "stopping the primary"
pg_ctl_on "$REPLICA" -w -t 60 promote || fail "pg_ctl promote"
ready_all 200
srv_log "primary stopped (immediate), replica promoted: every server ready on it"

for _ in $(seq 1 3000); do kill -0 "$LOAD" 2>/dev/null || break; sleep 0.2; done
kill -0 "$LOAD" 2>/dev/null && fail "the load did not end within 10 minutes"
wait "$LOAD" || { cat "$TMP/load/out"; fail "the load did not get $WRITES writes acknowledged"; }
LOAD=
cat "$TMP/load/out"

# ---- nothing acknowledged lost, one chain ----------------------------------------------------
NEW="postgresql://sgapp@127.0.0.1:$P2/sgtest"
sql_on "$P2" "SELECT pg_is_in_recovery()" | grep -qx f || fail "the replica is not the primary"
psql -X -q -t -A "$NEW" -c "COPY (SELECT name FROM networks) TO STDOUT" >"$TMP/present" ||
	fail "reading the networks"
python3 - "$TMP/load/acked" "$TMP/present" <<'PY' || fail "acknowledged writes missing"
import sys
acked = open(sys.argv[1]).read().split()
present = set(open(sys.argv[2]).read().split())
lost = [n for n in acked if n not in present]
if lost or len(set(acked)) != len(acked):
    print("%d of %d acknowledged writes missing (%s), %d acknowledged twice" % (
        len(lost), len(acked), ", ".join(lost[:5]), len(acked) - len(set(acked))))
    sys.exit(1)
extra = len([n for n in present if n.startswith("ha-")]) - len(acked)
print("[test_server_ha] all %d acknowledged writes present; %d more committed whose answer "
      "was lost (a killed server, a failover)" % (len(acked), extra))
PY
r=$(sql_on "$P2" "SELECT (SELECT COUNT(*) FROM networks) || ' ' ||
	(SELECT COUNT(*) FROM audit_log WHERE event_type = 'network.created') || ' ' ||
	(SELECT COUNT(*) || ' ' || COUNT(DISTINCT id) || ' ' || MIN(id) || ' ' || MAX(id) FROM audit_log)")
read -r nets created rows distinct lo hi <<<"$r"
[ "$nets" = "$created" ] || fail "$nets networks but $created network.created audit rows"
[ "$rows" = "$distinct" ] && [ "$lo" = 1 ] && [ "$hi" = "$rows" ] ||
	fail "audit ids: $rows rows, $distinct distinct, $lo..$hi"
"$SG" audit verify --db "$NEW" >"$TMP/verify" 2>&1 || { cat "$TMP/verify"; fail "audit verify"; }
srv_log "$nets networks, each audited; audit ids 1..$hi without gap or duplicate; $(tail -n 1 "$TMP/verify")"

# ---- one truth across the three after all that ------------------------------------------------
URLS="$SRV_URL_s1,$SRV_URL_s2,$SRV_URL_s3"
T() { python3 "$SG_SRC/tests/server/redis_test.py" "$1" "$TMP/state.json" "$URLS" "${@:2}"; }
T revoke || fail "revocation across the servers"
T ratelimit 127.0.0.20 || fail "a rate limit across the servers"
# Through HAProxy: failed logins of client 127.0.0.21 (X-Forwarded-For) are counted across the
# three servers and limit that client, not 127.0.0.22 behind the same HAProxy.
URLS="$HA,$HA,$HA" T ratelimit 127.0.0.21 || fail "a rate limit through HAProxy"
st=$(curl -s -o /dev/null -w '%{http_code}' --interface 127.0.0.22 -X POST "$HA/api/auth/login" \
	-H 'Content-Type: application/json' -d '{"email":"nobody@example.com","password":"wrong"}')
[ "$st" = 401 ] || fail "127.0.0.22 through HAProxy after 127.0.0.21 was limited: $st, want 401"
srv_log "through HAProxy: 127.0.0.21 limited, 127.0.0.22 not (X-Forwarded-For, --trusted-proxy)"
[ "$(redis_cli PUBSUB NUMSUB sg:sync | tail -n 1)" = 3 ] || fail "not 3 subscribers on sg:sync"
T push || fail "push across the servers"
for s in s1 s2 s3; do srv_stop "$s" || fail "stop $s"; done
srv_log "PASS"
