#!/bin/bash
# shellcheck disable=SC2154 # SRV_<name> variables are set by srv_start (printf -v)
# Several management servers on one database (issue 18), against a real PostgreSQL on loopback
# (tests/server/pg.sh) and on one SQLite file:
# - three servers started at the same moment on an empty database: every one comes up, each
#   migration is recorded once, one first admin between them, the audit chain verifies;
# - a server refuses a database whose schema is newer than it knows, naming both versions, and
#   changes nothing;
# - /api/health and /api/ready; PostgreSQL stopped under a running server: health stays 200,
#   ready and database routes answer 503 with a reason and Retry-After at once (no hang);
#   PostgreSQL started again: the same server is ready and serves reads and writes by itself;
# - change notification across servers: a change made on server A answers a long poll held by
#   server B (PostgreSQL LISTEN/NOTIFY; the latency is printed, bounded loosely at 2.5 s where
#   B's own look at the revision comes every 5 s while it listens);
# - one audit chain with two writers: 128 networks created through both servers at once, every
#   acknowledged one present and audited, the chain verifies with ids 1..N (no fork, gap or
#   duplicate).
#
# Environment: SG_BIN, SG_SRC. Exit 77: PostgreSQL binaries missing.
set -u
SRV_TEST=test_server_scale
# shellcheck source=tests/server/server_lib.sh
. "$(dirname "$0")/../server/server_lib.sh"
# shellcheck source=tests/server/pg.sh
. "$SG_SRC/tests/server/pg.sh"
[ -x "$SG" ] || { srv_log "SKIP: $SG not built"; exit 77; }
for t in python3 sqlite3 curl psql; do
	command -v "$t" >/dev/null || { srv_log "SKIP: missing tool $t"; exit 77; }
done
TMP=$(mktemp -d /tmp/sg-server-scale.XXXXXX)
cleanup() {
	srv_kill_all
	pg_stop
	rm -rf "$TMP"
}
trap cleanup EXIT
fail() { srv_fail "$@"; }
srv_admin_env scale

pg_start
rc=$?
[ $rc -eq 77 ] && { srv_log "SKIP: PostgreSQL is not installed"; exit 77; }
[ $rc -eq 0 ] || fail "could not start PostgreSQL"
PG=$SG_PG_URL

sqlx() {
	case $1 in
	sqlite:*) sqlite3 "${1#sqlite:}" "$2" ;;
	*) psql -X -q -t -A -v ON_ERROR_STOP=1 "$1" -c "$2" ;;
	esac
}

# start_together PREFIX DBURL N [options...]: N servers launched at once (one key file between
# them, as a cluster needs), then waited for; names PREFIX1..PREFIXN.
start_together() {
	local prefix=$1 db=$2 n=$3 i pid port
	shift 3
	for i in $(seq 1 "$n"); do
		mkdir -p "$TMP/$prefix$i"
		"$SG" server --listen 127.0.0.1:0 --port-file "$TMP/$prefix$i/port" \
			--data-dir "$TMP/$prefix$i" --key-file "$TMP/$prefix.key" --db "$db" "$@" \
			>>"$TMP/$prefix$i/server.log" 2>&1 &
		printf -v "SRV_PID_$prefix$i" '%s' $!
		printf -v "SRV_LOG_$prefix$i" '%s' "$TMP/$prefix$i/server.log"
	done
	for i in $(seq 1 "$n"); do
		pid="SRV_PID_$prefix$i"
		pid=${!pid}
		port=
		for _ in $(seq 1 300); do
			[ -s "$TMP/$prefix$i/port" ] && { port=$(cat "$TMP/$prefix$i/port"); break; }
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		[ -n "$port" ] || {
			cat "$TMP/$prefix$i/server.log"
			fail "server $prefix$i did not start"
		}
		printf -v "SRV_PORT_$prefix$i" '%s' "$port"
		printf -v "SRV_URL_$prefix$i" '%s' "http://127.0.0.1:$port"
	done
	srv_log "$n servers started together on ${db%%:*}"
}

# ---- several servers starting together --------------------------------------------------------
together() {
	local prefix=$1 db=$2 i url v n
	start_together "$prefix" "$db" 3
	for i in 1 2 3; do
		url="SRV_URL_$prefix$i"
		curl -sf "${!url}/api/health" >/dev/null || fail "$prefix$i does not answer"
	done
	v=$(sqlx "$db" "SELECT MAX(version) FROM schema_migrations")
	n=$(sqlx "$db" "SELECT COUNT(*) || ' ' || COUNT(DISTINCT version) FROM schema_migrations")
	[ "$n" = "$v $v" ] || fail "$prefix: schema_migrations: $n rows/distinct, newest $v"
	n=$(sqlx "$db" "SELECT COUNT(*) FROM admin_users")
	[ "$n" = 1 ] || fail "$prefix: $n first admins"
	n=$(sqlx "$db" "SELECT COUNT(*) FROM audit_log WHERE event_type = 'user.created'")
	[ "$n" = 1 ] || fail "$prefix: $n user.created audit rows"
	for i in 1 2 3; do srv_stop "$prefix$i" || fail "stop $prefix$i"; done
	"$SG" audit verify --db "$db" >/dev/null || fail "$prefix: audit chain does not verify"
	srv_log "$prefix: schema version $v applied once, one admin, chain intact"
	SCHEMA_VERSION=$v
}
together pg "$PG"
together sq "sqlite:$TMP/sq.db"

# ---- a schema newer than the server knows -----------------------------------------------------
newer() {
	local db=$1 name=$2 next=$((SCHEMA_VERSION + 1)) out rc before after
	sqlx "$db" "INSERT INTO schema_migrations (version, applied_at) VALUES ($next, 0)" >/dev/null ||
		fail "$name: recording version $next"
	before=$(sqlx "$db" "SELECT COUNT(*) FROM schema_migrations")
	out=$(timeout 30 "$SG" server --listen 127.0.0.1:0 --data-dir "$TMP/$name-new" \
		--key-file "$TMP/pg.key" --db "$db" 2>&1)
	rc=$?
	[ $rc -eq 1 ] || fail "$name: a server on schema $next exited with $rc: $out"
	[[ $out == *"database schema version $next is newer than this server knows ($SCHEMA_VERSION)"* ]] ||
		fail "$name: message does not name both versions: $out"
	after=$(sqlx "$db" "SELECT COUNT(*) FROM schema_migrations")
	[ "$before" = "$after" ] || fail "$name: schema_migrations changed ($before -> $after)"
	srv_log "$name: refused schema $next: ${out##*: database}"
}
newer "$PG" pg
newer "sqlite:$TMP/sq.db" sq

# ---- the database away and back ---------------------------------------------------------------
# The cluster's own pg_ctl, with the options pg_start gave it (same port, same socket directory).
pg_ctl_as() { pg__as "$SG_PG_BINDIR/pg_ctl" -D "$SG_PG_DIR/data" "$@" >>"$SG_PG_DIR/pg_ctl.log" 2>&1; }
pg_down() { pg_ctl_as -m fast -w -t 30 stop; }
pg_up() {
	pg_ctl_as -l "$SG_PG_DIR/server.log" -w -t 60 -o "-k $SG_PG_DIR -p $SG_PG_PORT \
		-c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start
}
# status URL [TOKEN]: prints the HTTP status (000 = no answer within 10 s: a hang).
status() {
	curl -s -o "$TMP/body" -D "$TMP/head" -w '%{http_code}' --max-time 10 \
		${2:+-H "Authorization: Bearer $2"} "$1"
}
# wait_status URL WANT [TOKEN]: polls for up to 20 s.
wait_status() {
	for _ in $(seq 1 100); do
		[ "$(status "$1" "${3:-}")" = "$2" ] && return 0
		sleep 0.2
	done
	return 1
}

SCHEMA_NOW=$SCHEMA_VERSION
sqlx "$PG" "DELETE FROM schema_migrations WHERE version > $SCHEMA_NOW" >/dev/null
srv_start ha "$PG" "$TMP/ha" --key-file "$TMP/pg.key" --db-pool 4 || fail "server ha"
U=$SRV_URL_ha
[ "$(status "$U/api/health")" = 200 ] || fail "health: $(cat "$TMP/body")"
[ "$(status "$U/api/ready")" = 200 ] || fail "ready: $(cat "$TMP/body")"
grep -q "\"schema_version\":$SCHEMA_NOW" "$TMP/body" || fail "ready body: $(cat "$TMP/body")"
TOK=$(srv_login "$U" "$SG_ADMIN_EMAIL" "$SG_ADMIN_PASSWORD") || fail "login"
net() {
	curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H "Authorization: Bearer $TOK" \
		-H 'Content-Type: application/json' --data "{\"name\":\"$1\",\"subnet4\":\"$2\"}" \
		"$U/api/networks"
}
[ "$(net before 10.61.0.0/24)" = 201 ] || fail "network before the outage"

pg_down || fail "stopping PostgreSQL"
srv_log "PostgreSQL stopped"
[ "$(status "$U/api/health")" = 200 ] || fail "health while the database is away"
code=$(status "$U/api/ready")
[ "$code" = 503 ] || fail "ready while the database is away: $code $(cat "$TMP/body")"
grep -q '"detail":"the database is unreachable"' "$TMP/body" || fail "ready reason: $(cat "$TMP/body")"
grep -qi '^retry-after: 1' "$TMP/head" || fail "ready 503 without Retry-After"
for _ in 1 2 3 4 5 6; do # more than the pool: every connection has found the database away
	code=$(status "$U/api/networks" "$TOK")
	[ "$code" = 503 ] || fail "a read while the database is away: $code $(cat "$TMP/body")"
done
grep -q 'the database is unreachable; retry' "$TMP/body" || fail "read reason: $(cat "$TMP/body")"
grep -qi '^retry-after: 1' "$TMP/head" || fail "read 503 without Retry-After"
code=$(net during 10.62.0.0/24)
[ "$code" = 503 ] || fail "a write while the database is away: $code"
[ "$(status "$U/metrics")" = 200 ] || fail "metrics while the database is away"
grep -q '^secureguard_db_up 0$' "$TMP/body" || fail "metrics: secureguard_db_up is not 0"

pg_up || fail "starting PostgreSQL again"
srv_log "PostgreSQL started again"
wait_status "$U/api/ready" 200 || fail "not ready again 20 s after the database came back"
for _ in 1 2 3 4 5 6; do
	code=$(status "$U/api/networks" "$TOK")
	[ "$code" = 200 ] || fail "a read after the database came back: $code $(cat "$TMP/body")"
done
[ "$(net after 10.63.0.0/24)" = 201 ] || fail "a write after the database came back"
n=$(sqlx "$PG" "SELECT string_agg(name, ',' ORDER BY name) FROM networks")
[ "$n" = "after,before" ] || fail "networks after the outage: $n"
kill -0 "$SRV_PID_ha" || fail "the server exited"
[ "$(status "$U/metrics")" = 200 ] || fail "metrics after the outage"
want=$(sqlx "$PG" "SELECT MAX(id) FROM audit_log")
grep -q '^secureguard_db_up 1$' "$TMP/body" || fail "metrics: secureguard_db_up is not 1"
grep -q "^secureguard_audit_chain_length $want\$" "$TMP/body" ||
	fail "metrics: audit chain length is not $want: $(grep audit_chain "$TMP/body")"
grep -q '^secureguard_db_connections{state="idle"} [0-9]' "$TMP/body" || fail "metrics: no pool gauge"
grep -q 'event=db_unreachable' "$SRV_LOG_ha" || fail "no db_unreachable line in the log"
srv_stop ha || fail "stop ha"
"$SG" audit verify --db "$PG" >/dev/null || fail "audit chain after the outage"
srv_log "database away: 503 with reasons; back: ready and serving, same process"

# ---- a change on A reaches a long poll held by B -----------------------------------------------
srv_start na "$PG" "$TMP/na" --key-file "$TMP/pg.key" || fail "server na"
srv_start nb "$PG" "$TMP/nb" --key-file "$TMP/pg.key" || fail "server nb"
python3 - "$SRV_URL_na" "$SRV_URL_nb" "$SG_ADMIN_EMAIL" "$SG_ADMIN_PASSWORD" <<'PY' || fail "cross-server notification"
import base64, json, os, sys, threading, time, urllib.request
A, B, email, pw = sys.argv[1:5]

def call(base, method, path, body=None, token=None, timeout=40):
    req = urllib.request.Request(base + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        data = r.read()
        return r.status, json.loads(data) if data else None

_, t = call(A, "POST", "/api/auth/login", {"email": email, "password": pw})
ta = t["access_token"]
_, t = call(B, "POST", "/api/auth/login", {"email": email, "password": pw})
tb = t["access_token"]
_, tok = call(A, "POST", "/api/enrollment-tokens", {"tags": ["branch"]}, ta)
_, peer = call(A, "POST", "/api/peers/register", {
    "token": tok["token"], "name": "node-1",
    "public_key": base64.b64encode(os.urandom(32)).decode()})
_, pol = call(A, "POST", "/api/policies", {
    "name": "hq", "applies_to": ["branch"], "priority": 10, "tunnels": [{
        "name": "to-hq", "remote_addrs": ["198.51.100.1"], "local_ts": ["10.1.0.0/16"],
        "remote_ts": ["10.0.0.0/16"], "auth": "psk", "secret": "psk-" + os.urandom(12).hex(),
        "proposals": ["aes256gcm16-prfsha256-x25519"], "esp_proposals": ["aes256gcm16"]}]}, ta)
lat = []
for i in range(5):
    _, cfg = call(B, "GET", "/api/peers/%s/config" % peer["id"], None, tb)
    res = {}

    def poll():
        res["r"] = call(B, "GET", "/api/peers/%s/config?since=%s&wait=30" %
                        (peer["id"], cfg["revision"]), None, tb)
        res["t"] = time.monotonic()

    th = threading.Thread(target=poll)
    th.start()
    time.sleep(0.4)  # the poll is parked on B
    t0 = time.monotonic()
    call(A, "PUT", "/api/policies/" + pol["id"], {"priority": 20 + i}, ta)
    th.join(40)
    st, doc = res.get("r", (0, None))
    if st != 200 or doc["revision"] == cfg["revision"]:
        print("poll on B: status %s" % st)
        sys.exit(1)
    lat.append(res["t"] - t0)
lat.sort()
print("[test_server_scale] a change on A answered a long poll on B after %s s" %
      ", ".join("%.3f" % x for x in lat))
if lat[len(lat) // 2] >= 2.5:
    print("median %.3f s: B did not hear of A's change through the listener" % lat[len(lat) // 2])
    sys.exit(1)

# Two writers on one audit chain: 16 clients creating networks through both servers at once.
import urllib.error
made, errors, lock = [], [], threading.Lock()

def writer(k):
    base, tok = (A, ta) if k % 2 == 0 else (B, tb)
    for j in range(8):
        name = "w-%d-%d" % (k, j)
        try:
            st, doc = call(base, "POST", "/api/networks",
                           {"name": name, "subnet4": "10.%d.%d.0/24" % (100 + k, j)}, tok)
            with lock:
                made.append(doc["id"])
        except urllib.error.HTTPError as e:
            with lock:
                errors.append("%s: %d %s" % (name, e.code, e.read()[:200]))

ths = [threading.Thread(target=writer, args=(k,)) for k in range(16)]
for x in ths:
    x.start()
for x in ths:
    x.join(120)
if errors or len(made) != 128:
    print("concurrent writes: %d made, errors: %s" % (len(made), errors[:5]))
    sys.exit(1)
_, page = call(A, "GET", "/api/networks?limit=500", None, ta)
have = {n["id"] for n in page["items"]}
if not set(made) <= have:
    print("%d acknowledged networks missing" % len(set(made) - have))
    sys.exit(1)
_, audit = call(B, "GET", "/api/audit?event_type=network.created&limit=500", None, tb)
audited = {a["resource_id"] for a in audit["items"]}
if not set(made) <= audited:
    print("%d acknowledged creations not audited" % len(set(made) - audited))
    sys.exit(1)
print("[test_server_scale] 128 networks created through two servers at once, each audited")
PY
srv_stop na || fail "stop na"
srv_stop nb || fail "stop nb"
out=$("$SG" audit verify --db "$PG" 2>&1) || fail "audit chain after two writers: $out"
n=$(sqlx "$PG" "SELECT COUNT(*) || ' ' || COUNT(DISTINCT id) || ' ' || MIN(id) || ' ' || MAX(id) FROM audit_log")
read -r cnt dist lo hi <<<"$n"
[ "$cnt" = "$dist" ] && [ "$lo" = 1 ] && [ "$hi" = "$cnt" ] || fail "audit ids after two writers: $n"
srv_log "two writers: $out (ids 1..$hi, no gap, no duplicate)"

srv_log "PASS"
