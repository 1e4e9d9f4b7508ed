#!/bin/bash
# Reads of the management server at scale, narrower and faster than bench/server_scale.sh part 4
# (issue 18): one SQLite server and one server on PostgreSQL + Redis, each database holding
# READS_CLIENTS clients copied in SQL from one made through the API (seconds, where part 4's
# preload through the API takes most of an hour on a busy machine), then REQS requests of each
# kind by CALLERS concurrent Python clients:
#   GET /api/clients/{id}, a page of 50 by offset, a page of 50 by cursor,
# with requests/s, p50/p99 at the client, p50/p99 inside the server (its access log's
# duration_ms) and the time a request waited for a handler thread (queue_ms), and the CPU time
# per request of the server, PostgreSQL's backends, Redis and the Python client (/proc): figures
# that a machine shared with other work blurs less than wall-clock percentiles.
#
#   bench/server_reads.sh [BIN...]      each BIN (a secureguard binary; default build/bin's) is run
#                                       in turn on the same two databases, for a before/after
#   READS_CLIENTS (10000), READS_AUDIT (100000), REQS (2000), CALLERS (16)
#
# The audit log gets READS_AUDIT rows in SQL too (20 event types, one of them in 0.1% of the
# rows, 10 actors, 8 resource types and a rare one), for its filtered pages; their hashes are
# not a chain (bench/server_scale.sh part 4 fills the log through the API). A binary of a
# release before schema migration 14 must come before one after it (it refuses the newer
# schema).
set -eu
SRC=$(cd "$(dirname "$0")/.." && pwd)
BINS=("$@")
[ ${#BINS[@]} -gt 0 ] || BINS=("${SG_BIN:-$SRC/build/bin}/secureguard")
for b in "${BINS[@]}"; do [ -x "$b" ] || { echo "bench: $b missing; build first" >&2; exit 1; }; done
SG=${BINS[0]}
NCLIENTS=${READS_CLIENTS:-10000}
NAUDIT=${READS_AUDIT:-100000}
REQS=${REQS:-2000}
CALLERS=${CALLERS:-16}
TMP=$(mktemp -d /tmp/sg-bench-reads.XXXXXX)
# shellcheck source-path=SCRIPTDIR source=../tests/server/pg.sh
. "$SRC/tests/server/pg.sh"
# shellcheck source-path=SCRIPTDIR source=../tests/server/redis.sh
. "$SRC/tests/server/redis.sh"
stop_servers() {
	local f p
	for f in "$TMP"/*/pid; do
		[ -f "$f" ] || continue
		p=$(cat "$f")
		kill "$p" 2>/dev/null || true
		for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
		rm -f "$f"
	done
}
cleanup() {
	stop_servers
	redis_stop
	pg_stop
	rm -rf "$TMP"
}
trap cleanup EXIT
export SG_ADMIN_EMAIL=bench@example.com SG_ADMIN_PASSWORD=bench-password-1234
pg_start >/dev/null
redis_start 2>/dev/null
# shellcheck source-path=SCRIPTDIR source=license.sh
. "$SRC/bench/license.sh"
BENCH_LICENSE_ARGS=()
if [ "$NCLIENTS" -gt 250 ]; then bench_license "$TMP" || exit 1; fi
# start BIN NAME [options]: prints the URL
start() {
	local bin=$1 n=$2
	shift 2
	mkdir -p "$TMP/$n"
	: >"$TMP/$n/port"
	"$bin" server --listen 127.0.0.1:0 --port-file "$TMP/$n/port" --data-dir "$TMP/$n" \
		--key-file "$TMP/master.key" --login-ip-limit 100000 --access-ttl 7200 \
		"${BENCH_LICENSE_ARGS[@]}" "$@" >>"$TMP/$n/log" 2>&1 &
	echo $! >"$TMP/$n/pid"
	for _ in $(seq 1 300); do [ -s "$TMP/$n/port" ] && break; sleep 0.1; done
	echo "http://127.0.0.1:$(cat "$TMP/$n/port")"
}
# A C client beside the Python one (bench/httpload.c): how much of the p99 at the client is
# the client's own.
cc -O2 -pthread -o "$TMP/httpload" "$SRC/bench/httpload.c"
SQLITE_DB="sqlite:$TMP/s/server.db"
PGPID=$(head -n1 "$SG_PG_DIR/data/postmaster.pid")
REDISPID=$(pgrep -f "redis-server.*:$SG_REDIS_PORT" | head -n1 || true)
echo "bench/server_reads.sh: $NCLIENTS clients, $REQS requests of each kind by $CALLERS callers;" \
	"PostgreSQL $("$SG_PG_BINDIR/postgres" --version | awk '{print $3}'), $(nproc) cores shared;" \
	"load before: $(cut -d' ' -f1-3 /proc/loadavg)"

# The clients: one through the API on each database, then copies of it in SQL.
S=$(start "$SG" s --db "$SQLITE_DB")
H=$(start "$SG" h --db "$SG_PG_URL" --redis "$SG_REDIS_URL")
SG_BENCH_DIR=$SRC/bench python3 - "$S" "$H" <<'PY'
import os, sys
sys.path.insert(0, os.environ["SG_BENCH_DIR"])
from scale_http import Conn, login
for base in sys.argv[1:]:
    c = Conn(base, login(base))
    st, net = c.call("POST", "/api/networks", {"name": "reads", "subnet4": "10.240.0.0/14"})
    assert st == 201, (st, net)
    st, cl = c.call("POST", "/api/clients", {"network_id": net["id"], "name": "template"})
    assert st == 201, (st, cl)
PY
stop_servers
if [ "$(sqlite3 "$TMP/s/server.db" "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'sqlite_stat1'")" = 1 ]; then
	sqlite3 "$TMP/s/server.db" ".mode insert sqlite_stat1" "SELECT * FROM sqlite_stat1" >"$TMP/stat1.sql"
fi
COPY_COLS="network_id, name, description, public_key_classic, public_key_fips,
 private_key_classic_enc, private_key_fips_enc, assigned_ip4, assigned_ip6, allowed_ips,
 persistent_keepalive, is_relay, endpoint, listen_port, enabled, temp_access_id, expires_at,
 last_handshake, created_at, updated_at"
sqlite3 "$TMP/s/server.db" <<SQL
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $NCLIENTS - 1)
INSERT INTO clients (id, $COPY_COLS)
SELECT printf('%08x-0000-4000-8000-%012x', i, i), network_id, 'c' || i, description,
 substr(public_key_classic, 1, 20) || printf('%023d=', i), NULL, private_key_classic_enc, NULL,
 '10.' || (241 + i / 65536) || '.' || (i / 256 % 256) || '.' || (i % 256 + 0), NULL, allowed_ips,
 persistent_keepalive, is_relay, endpoint, listen_port, enabled, NULL, expires_at,
 last_handshake, created_at + i, updated_at
FROM clients, n WHERE clients.name = 'template';
SQL
pg_psql -d sgtest >/dev/null <<SQL
INSERT INTO clients (id, $COPY_COLS)
SELECT lpad(to_hex(i), 8, '0') || '-0000-4000-8000-' || lpad(to_hex(i), 12, '0'), network_id,
 'c' || i, description, substr(public_key_classic, 1, 20) || lpad(i::text, 23, '0') || '=', NULL,
 private_key_classic_enc, NULL, '10.' || (241 + i / 65536) || '.' || (i / 256 % 256) || '.' ||
 (i % 256), NULL, allowed_ips, persistent_keepalive, is_relay, endpoint, listen_port, enabled,
 NULL, expires_at, last_handshake, created_at + i, updated_at
FROM clients, generate_series(1, $NCLIENTS - 1) i WHERE clients.name = 'template';
ANALYZE;
SQL
AUDIT_COLS="id, ts, event_type, actor_id, actor_type, actor_name, resource_type, resource_id,
 resource_name, action, details, source_ip, user_agent, prev_hash, hash"
base=$(sqlite3 "$TMP/s/server.db" "SELECT MAX(id) FROM audit_log")
sqlite3 "$TMP/s/server.db" <<SQL
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $NAUDIT)
INSERT INTO audit_log ($AUDIT_COLS)
SELECT $base + i, 1700000000000 + i,
 CASE WHEN i % 1000 = 0 THEN 'bench.rare' ELSE 'bench.e' || (i % 20) END,
 'bench-actor-' || (i % 10), 'user', 'bench', CASE WHEN i % 1000 = 0 THEN 'bench_rare'
 ELSE 'bench_r' || (i % 8) END, 'r' || i, 'n' || i, 'update', '{}', '127.0.0.1', 'bench', printf('%096d', 0), printf('%096d', 0)
FROM n;
SQL
base=$(pg_psql -d sgtest -Atc "SELECT MAX(id) FROM audit_log")
# (the append-only trigger's MAX(id) is planned for the table it was when it first ran: a seq
# scan per row over 100,000 rows; the ids here are the next ones all the same)
pg_psql -d sgtest >/dev/null <<SQL
ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only;
INSERT INTO audit_log ($AUDIT_COLS)
SELECT $base + i, 1700000000000 + i,
 CASE WHEN i % 1000 = 0 THEN 'bench.rare' ELSE 'bench.e' || (i % 20) END,
 'bench-actor-' || (i % 10), 'user', 'bench', CASE WHEN i % 1000 = 0 THEN 'bench_rare'
 ELSE 'bench_r' || (i % 8) END, 'r' || i, 'n' || i, 'update', '{}', '127.0.0.1', 'bench', repeat('0', 96), repeat('0', 96)
FROM generate_series(1, $NAUDIT) i;
ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only;
SQL
# As autovacuum would have by then: without the visibility map a COUNT(*) reads the table's pages
# instead of the index alone (122 ms against 1.7 ms for 5,000 rows of one event type).
pg_psql -d sgtest -c "VACUUM ANALYZE" >/dev/null

k=0
for bin in "${BINS[@]}"; do
	k=$((k + 1))
	# Each binary starts with the SQLite planner statistics the first server left at close
	# (PRAGMA optimize), of one client: as a server restarted while its tables were small would,
	# and not with those of the binary before it.
	sqlite3 "$TMP/s/server.db" "DROP TABLE IF EXISTS sqlite_stat1"
	if [ -s "$TMP/stat1.sql" ]; then
		sqlite3 "$TMP/s/server.db" "ANALYZE sqlite_schema" ".read $TMP/stat1.sql"
	fi
	S=$(start "$bin" s --db "$SQLITE_DB")
	H=$(start "$bin" h --db "$SG_PG_URL" --redis "$SG_REDIS_URL")
	echo "binary $k: $bin ($(git -C "$(dirname "$bin")" rev-parse --short HEAD 2>/dev/null || echo ?))"
	SG_BENCH_DIR=$SRC/bench SG_BENCH_TMP=$TMP python3 - "$S" "$H" "$REQS" "$CALLERS" \
		"$(cat "$TMP/s/pid")" "$(cat "$TMP/h/pid")" "$PGPID" "$REDISPID" <<'PY'
import os, random, re, subprocess, sys, time, urllib.parse
sys.path.insert(0, os.environ["SG_BENCH_DIR"])
from scale_http import Conn, callers, login, pct
S, H = sys.argv[1:3]
REQS, CALLERS, SPID, HPID, PGPID, RPID = map(lambda x: int(x) if x else 0, sys.argv[3:9])
TMP = os.environ["SG_BENCH_TMP"]
LOGS = {S: os.path.join(TMP, "s", "log"), H: os.path.join(TMP, "h", "log")}
HZ = os.sysconf("SC_CLK_TCK")

def cpu(pid):
    """utime + stime of a process in seconds (0 when it is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            v = f.read().rsplit(")", 1)[1].split()
        return (int(v[11]) + int(v[12])) / HZ
    except (OSError, IndexError):
        return 0.0

def pg_cpu():
    """The postmaster and its children (this cluster's backends), terminated ones included
    through the postmaster's cutime/cstime."""
    tot = 0.0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                v = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(d) == PGPID or int(v[1]) == PGPID:
            tot += (int(v[11]) + int(v[12])) / HZ
    return tot

def log_fields(path, start):
    """duration_ms, queue_ms and their sum (the request's time in the server, from its last
    byte read to its answer) of the access log lines after start."""
    dur, queue, both = [], [], []
    with open(path, "rb") as f:
        f.seek(start)
        for line in f:
            if b"http_request" not in line:
                continue
            m = re.search(rb"duration_ms[=\":]+([0-9.]+)", line)
            if m:
                dur.append(float(m.group(1)))
            m = re.search(rb"queue_ms[=\":]+([0-9.]+)", line)
            if m:
                queue.append(float(m.group(1)))
                both.append(queue[-1] + dur[-1])
    return dur, queue, both

tok = {u: login(u) for u in (S, H)}

def run(base, pid, n, request):
    """n requests by CALLERS Python clients on base; request(conn, i) -> ok."""
    conns = [Conn(base, tok[base]) for _ in range(CALLERS)]
    mark = os.path.getsize(LOGS[base])
    c0 = (cpu(pid), pg_cpu() if base == H else 0.0, cpu(RPID) if base == H else 0.0,
          time.process_time())
    lat, errs, secs = callers(conns, n, request)
    c1 = (cpu(pid), pg_cpu() if base == H else 0.0, cpu(RPID) if base == H else 0.0,
          time.process_time())
    assert not errs, "%d of %d requests failed" % (len(errs), n)
    dur, queue, both = log_fields(LOGS[base], mark)
    us = [(b - a) / n * 1e6 for a, b in zip(c0, c1)]
    return (n / secs, pct(lat, 50), pct(lat, 99), pct(dur, 50), pct(dur, 99),
            pct(queue, 99) if queue else float("nan"), pct(both, 99) if both else float("nan"),
            *us)

def run_c(base, pid, paths):
    """As run, with bench/httpload.c's C client instead of Python's."""
    pf = os.path.join(TMP, "paths")
    with open(pf, "w") as f:
        f.write("\n".join(paths) + "\n")
    u = urllib.parse.urlparse(base)
    mark = os.path.getsize(LOGS[base])
    c0 = (cpu(pid), pg_cpu() if base == H else 0.0, cpu(RPID) if base == H else 0.0)
    r = subprocess.run([os.path.join(TMP, "httpload"), u.hostname, str(u.port), tok[base], pf,
                        str(len(paths)), str(CALLERS)], capture_output=True, text=True,
                       check=True)
    c1 = (cpu(pid), pg_cpu() if base == H else 0.0, cpu(RPID) if base == H else 0.0)
    rate, p50, p99, failed = r.stdout.split()
    assert failed == "0", r.stdout
    dur, queue, both = log_fields(LOGS[base], mark)
    us = [(b - a) / len(paths) * 1e6 for a, b in zip(c0, c1)]
    return (float(rate), float(p50), float(p99), pct(dur, 50), pct(dur, 99), pct(queue, 99),
            pct(both, 99), *us, float("nan"))

def ids_of(base):
    c, out, nxt = Conn(base, tok[base]), [], None
    curs = []
    while True:
        st, page = c.call("GET", "/api/clients?limit=500" + ("&cursor=" + nxt if nxt else ""))
        assert st == 200, (st, page)
        out += [x["id"] for x in page["items"]]
        nxt = page["next_cursor"]
        if not nxt:
            break
    nxt = None
    while True:
        st, page = c.call("GET", "/api/clients?limit=50" + ("&cursor=" + nxt if nxt else ""))
        nxt = page["next_cursor"]
        if not nxt:
            break
        curs.append(nxt)
    return out, curs

print("  %-20s %-16s %7s %6s %6s | %6s %6s | %6s %6s | %7s %7s %7s %7s" % (
    "", "", "req/s", "p50", "p99", "in50", "in99", "q99", "q+in99", "srv us", "pg us", "redis us",
    "py us"))
for name, base, pid in (("SQLite", S, SPID), ("PostgreSQL + Redis", H, HPID)):
    ids, curs = ids_of(base)
    rnd = random.Random(7)
    pick = [ids[rnd.randrange(len(ids))] for _ in range(REQS)]
    offs = [rnd.randrange(max(1, len(ids) - 50)) for _ in range(REQS)]
    rows = [
        ("GET client", run(base, pid, REQS, lambda c, i: c.call(
            "GET", "/api/clients/" + pick[i])[0] == 200)),
        ("GET client, C client", run_c(base, pid, ["/api/clients/" + x for x in pick])),
        ("page by offset", run(base, pid, REQS // 4, lambda c, i: c.call(
            "GET", "/api/clients?limit=50&offset=%d" % offs[i])[0] == 200)),
        ("page by cursor", run(base, pid, REQS // 4, lambda c, i: c.call(
            "GET", "/api/clients?limit=50&cursor=" + curs[offs[i] * len(curs) // len(ids)])[0]
            == 200)),
        ("audit, rare event", run(base, pid, REQS // 4, lambda c, i: c.call(
            "GET", "/api/audit?limit=50&event_type=bench.rare")[0] == 200)),
        ("audit, one event", run(base, pid, REQS // 4, lambda c, i: c.call(
            "GET", "/api/audit?limit=50&event_type=bench.e%d" % (i % 20))[0] == 200)),
        ("audit, rare resource", run(base, pid, REQS // 4, lambda c, i: c.call(
            "GET", "/api/audit?limit=50&resource_type=bench_rare")[0] == 200)),
    ]
    for kind, f in rows:
        print("  %-20s %-20s %5.0f %6.1f %6.1f | %6.2f %6.1f | %6.1f %6.1f | %7.0f %7.0f %7.0f %7.0f"
              % ((name, kind) + f))
print("  (ms; in = inside the server, q = waiting for a handler thread, q+in99 the p99 of their "
      "sum; CPU microseconds per request; load now %s)" % " ".join(open("/proc/loadavg").read().split()[:3]))
PY
	stop_servers
done
