#!/bin/bash
# Several management servers on one PostgreSQL (issue 18), on a throwaway PostgreSQL from
# tests/server/pg.sh:
# 1. time from a change committed through server A to the answer of a long poll held by server B,
#    p50/p99 over CHANGES changes, with LISTEN/NOTIFY (the default) against the same pair with
#    --no-db-listen (the revision read four times a second, what a cluster did before): the
#    ratio is printed;
#    and with Redis pub/sub (--redis, a throwaway redis-server from tests/server/redis.sh);
# 2. writes/s (network creations, each audited on the one chain) and p50/p99 through one server
#    and through two servers behind a client-side round robin, WRITERS concurrent clients;
# 3. the same writes and reads (GET /api/networks/{id}) on 1, 2 and 3 servers sharing
#    PostgreSQL and Redis (--redis), with how writes/s and reads/s grow with servers;
# 4. at scale (issue 18's figure): a SQLite server alone, and 1, 2 and 3 servers on PostgreSQL +
#    Redis, with SCALE_CLIENTS clients and SCALE_AUDIT audit events in each database (made
#    through the API first, so the audit chain is real): reads (GET /api/clients/{id}, a page of
#    50 clients) and writes (PUT /api/clients/{id}, audited), requests/s and p50/p99, against the
#    goal of p99 read under 5 ms at 10,000 clients on one server.
#
#   bench/server_scale.sh [CHANGES] [WRITES] [WRITERS]      defaults 100, 2000, 16
#   SCALE_ONLY=1: part 4 alone
#   SCALE_CLIENTS (10000), SCALE_AUDIT (100000): part 4's database; more than 250 clients need a
#   license (bench/license.sh: SG_BENCH_LICENSE, or a test build such as make bench's build-bench/)
#
# Both servers, PostgreSQL and the client share this machine's cores: the figures are a floor.
set -eu
CHANGES=${1:-100}
WRITES=${2:-2000}
WRITERS=${3:-16}
SRC=$(cd "$(dirname "$0")/.." && pwd)
SG=${SG_BIN:-$SRC/build/bin}/secureguard
[ -x "$SG" ] || { echo "bench: $SG missing; build first" >&2; exit 1; }
TMP=$(mktemp -d /tmp/sg-bench-scale.XXXXXX)
PIDS=()
# shellcheck source-path=SCRIPTDIR source=../tests/server/pg.sh
. "$SRC/tests/server/pg.sh"
# shellcheck source-path=SCRIPTDIR source=../tests/server/redis.sh
. "$SRC/tests/server/redis.sh"
cleanup() {
	# start runs in a command substitution (a subshell): its servers' pids are in files.
	for f in "$TMP"/*/pid; do [ -f "$f" ] && PIDS+=("$(cat "$f")"); done
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
	done
	redis_stop
	pg_stop
	rm -rf "$TMP"
}
trap cleanup EXIT
export SG_ADMIN_EMAIL=bench@example.com SG_ADMIN_PASSWORD=bench-password-1234
pg_start >/dev/null
redis_start 2>/dev/null
# start NAME [options]: prints the URL
start() {
	local n=$1
	shift
	mkdir -p "$TMP/$n"
	"$SG" server --listen 127.0.0.1:0 --port-file "$TMP/$n/port" --data-dir "$TMP/$n" \
		--key-file "$TMP/master.key" --db "$SG_PG_URL" --login-ip-limit 100000 "$@" \
		>"$TMP/$n/log" 2>&1 &
	echo $! >"$TMP/$n/pid"
	for _ in $(seq 1 200); do [ -s "$TMP/$n/port" ] && break; sleep 0.1; done
	echo "http://127.0.0.1:$(cat "$TMP/$n/port")"
}
if [ -z "${SCALE_ONLY:-}" ]; then
A=$(start a)
B=$(start b)
C=$(start c --no-db-listen)
D=$(start d --no-db-listen)
E=$(start e --redis "$SG_REDIS_URL")
F=$(start f --redis "$SG_REDIS_URL")
G=$(start g --redis "$SG_REDIS_URL")
echo "bench/server_scale.sh: PostgreSQL $("$SG_PG_BINDIR/postgres" --version | awk '{print $3}'), Redis $(redis-server --version | awk '{print $3}' | cut -d= -f2), $(nproc) cores shared with everything else"

SG_BENCH_DIR=$SRC/bench python3 - "$A" "$B" "$C" "$D" "$E" "$F" "$G" "$CHANGES" "$WRITES" "$WRITERS" <<'PY'
import base64, os, sys, threading, time
sys.path.insert(0, os.environ["SG_BENCH_DIR"])
from scale_http import Conn, callers, login, pct
A, B, C, D, E, F, G = sys.argv[1:8]
CHANGES, WRITES, WRITERS = map(int, sys.argv[8:11])

tok = {u: login(u) for u in (A, B, C, D, E, F, G)}
a = Conn(A, tok[A])
st, et = a.call("POST", "/api/enrollment-tokens", {"tags": ["bench"]})
st, peer = Conn(A).call("POST", "/api/peers/register", {
    "token": et["token"], "name": "bench-node",
    "public_key": base64.b64encode(os.urandom(32)).decode()})
st, pol = a.call("POST", "/api/policies", {
    "name": "bench", "applies_to": ["bench"], "priority": 1, "tunnels": [{
        "name": "t", "remote_addrs": ["198.51.100.1"], "local_ts": ["10.1.0.0/16"],
        "remote_ts": ["10.0.0.0/16"], "auth": "psk", "secret": "psk-" + os.urandom(12).hex(),
        "proposals": ["aes256gcm16-prfsha256-x25519"], "esp_proposals": ["aes256gcm16"]}]})

def push_latency(writer, holder):
    w, h = Conn(writer, tok[writer]), Conn(holder, tok[holder])
    path = "/api/peers/%s/config" % peer["id"]
    lat = []
    for i in range(CHANGES):
        st, cfg = h.call("GET", path)
        res = {}

        def poll():
            hh = Conn(holder, tok[holder])
            res["r"] = hh.call("GET", path + "?since=%s&wait=30" % cfg["revision"])
            res["t"] = time.monotonic()

        th = threading.Thread(target=poll)
        th.start()
        time.sleep(0.05 + (i % 7) * 0.037)  # parked, at varying phases of the 250 ms tick
        t0 = time.monotonic()
        w.call("PUT", "/api/policies/" + pol["id"], {"priority": 2 + i})
        th.join(60)
        assert res["r"][0] == 200, res
        lat.append((res["t"] - t0) * 1000)
    return pct(lat, 50), pct(lat, 99)

n50, n99 = push_latency(A, B)
p50, p99 = push_latency(C, D)
r50, r99 = push_latency(E, F)
print("change on A -> long poll answered on B, %d changes:" % CHANGES)
print("  LISTEN/NOTIFY           p50 %7.1f ms  p99 %7.1f ms" % (n50, n99))
print("  Redis pub/sub (--redis) p50 %7.1f ms  p99 %7.1f ms" % (r50, r99))
print("  --no-db-listen (250 ms) p50 %7.1f ms  p99 %7.1f ms" % (p50, p99))
print("  ratio (polling / notify): p50 %.1fx, p99 %.1fx" % (p50 / n50, p99 / n99))
print("  ratio (polling / Redis):  p50 %.1fx, p99 %.1fx" % (p50 / r50, p99 / r99))

def load(servers, request):
    """WRITES requests by WRITERS clients, client k on servers[k % len]; request(conn, n) makes
    request n and returns whether it succeeded. Requests/s, p50 and p99 in ms."""
    conns = [Conn(servers[k % len(servers)], tok[servers[k % len(servers)]])
             for k in range(WRITERS)]
    lat, errs, secs = callers(conns, WRITES // WRITERS * WRITERS, request)
    assert not errs, "%d requests failed" % len(errs)
    return len(lat) / secs, pct(lat, 50), pct(lat, 99)

SUBNET_BASE = {"one": 50, "two": 100, "r1": 130, "r2": 160, "r3": 190}
assert WRITES // 256 < 30, "WRITES up to 7680: the runs' subnets must not overlap"

def writes(servers, tag):
    """POST /api/networks (each audited on the one chain)."""
    return load(servers, lambda c, n: c.call("POST", "/api/networks", {
        "name": "%s-%d" % (tag, n),
        "subnet4": "10.%d.%d.0/24" % (n // 256 + SUBNET_BASE[tag], n % 256)})[0] == 201)

def reads(servers):
    """GET /api/networks/{id} of networks the writes made."""
    st, page = Conn(servers[0], tok[servers[0]]).call("GET", "/api/networks?limit=100")
    ids = [n["id"] for n in page["items"]]
    return load(servers, lambda c, n: c.call("GET", "/api/networks/" + ids[n % len(ids)])[0] == 200)

w1 = writes([A], "one")
w2 = writes([A, B], "two")
print("writes (POST /api/networks, audited), %d by %d clients:" % (WRITES // WRITERS * WRITERS,
                                                                   WRITERS))
print("  1 server    %7.0f /s  p50 %6.1f ms  p99 %6.1f ms" % w1)
print("  2 servers   %7.0f /s  p50 %6.1f ms  p99 %6.1f ms" % w2)
print("  ratio (2 servers / 1): %.2fx" % (w2[0] / w1[0]))
print("PostgreSQL + Redis shared (--redis), %d requests by %d clients, client-side round robin:"
      % (WRITES // WRITERS * WRITERS, WRITERS))
rw = [writes([E, F, G][:n], "r%d" % n) for n in (1, 2, 3)]
rr = [reads([E, F, G][:n]) for n in (1, 2, 3)]
for n in (1, 2, 3):
    print("  %d server%s  writes %6.0f /s  p50 %6.1f ms  p99 %6.1f ms   reads %6.0f /s  p50 %6.1f ms"
          "  p99 %6.1f ms" % ((n, " " if n == 1 else "s") + rw[n - 1] + rr[n - 1]))
print("  ratio (3 servers / 1): writes %.2fx, reads %.2fx" % (rw[2][0] / rw[0][0],
                                                          rr[2][0] / rr[0][0]))
PY
fi

# ---- 4. at scale: SCALE_CLIENTS clients and SCALE_AUDIT audit events in the database ----------
SCALE_CLIENTS=${SCALE_CLIENTS:-10000}
SCALE_AUDIT=${SCALE_AUDIT:-100000}
# shellcheck source-path=SCRIPTDIR source=license.sh
. "$SRC/bench/license.sh"
if [ "$SCALE_CLIENTS" -gt 250 ]; then
	bench_license "$TMP" || exit 1
else
	BENCH_LICENSE_ARGS=()
fi
# The preload outlasts the default 15-minute access token on a busy machine (PostgreSQL made 15
# clients/s at load 25): the tokens of this part live two hours.
S=$(start s --db "sqlite:$TMP/s/server.db" --access-ttl 7200 "${BENCH_LICENSE_ARGS[@]}")
H=$(start h --redis "$SG_REDIS_URL" --access-ttl 7200 "${BENCH_LICENSE_ARGS[@]}")
I=$(start i --redis "$SG_REDIS_URL" --access-ttl 7200 "${BENCH_LICENSE_ARGS[@]}")
J=$(start j --redis "$SG_REDIS_URL" --access-ttl 7200 "${BENCH_LICENSE_ARGS[@]}")
SG_BENCH_DIR=$SRC/bench SG_BENCH_TMP=$TMP python3 - "$S" "$H" "$I" "$J" "$SCALE_CLIENTS" "$SCALE_AUDIT" "$WRITES" "$WRITERS" <<'PY'
import os, random, sys, time
sys.path.insert(0, os.environ["SG_BENCH_DIR"])
from scale_http import Conn, callers, login, pct, server_ms
S, H, I, J = sys.argv[1:5]
NCLIENTS, NAUDIT, REQS, WRITERS = map(int, sys.argv[5:9])
# Each server's log (its access log lines carry duration_ms, the time inside the server).
LOGS = {u: os.path.join(os.environ["SG_BENCH_TMP"], n, "log") for u, n in zip((S, H, I, J), "shij")}

tok = {u: login(u) for u in (S, H, I, J)}

def parallel(servers, n, request):
    """n requests by WRITERS clients, client k on servers[k % len]; request(conn, i) -> ok.
    Returns requests/s, p50 and p99 in ms."""
    if not n:  # a preload with nothing left to make
        return 0.0, float("nan"), float("nan"), float("nan")
    marks = {u: os.path.getsize(LOGS[u]) for u in servers}
    conns = [Conn(servers[k % len(servers)], tok[servers[k % len(servers)]])
             for k in range(WRITERS)]
    lat, errs, secs = callers(conns, n, request)
    assert not errs, "%d of %d requests failed" % (len(errs), n)
    inside = server_ms({LOGS[u]: marks[u] for u in servers})
    return n / secs, pct(lat, 50), pct(lat, 99), pct(inside, 99) if inside else float("nan")

def preload(base, name):
    """SCALE_CLIENTS clients, then client changes until the audit log holds SCALE_AUDIT events."""
    c = Conn(base, tok[base])
    t0 = time.monotonic()
    st, net = c.call("POST", "/api/networks", {"name": "scale-" + name, "subnet4": "10.240.0.0/14"})
    assert st == 201, (st, net)
    ids = [None] * NCLIENTS

    def mk(cc, i):
        st, doc = cc.call("POST", "/api/clients", {"network_id": net["id"], "name": "c%d" % i})
        if st == 201:
            ids[i] = doc["id"]
        return st == 201

    parallel([base], NCLIENTS, mk)
    # c sat idle while the clients were made (the server closes idle connections after 30 s)
    st, page = Conn(base, tok[base]).call("GET", "/api/audit?limit=1")
    have = page["total"]
    more = max(0, NAUDIT - have)
    parallel([base], more, lambda cc, i: cc.call(
        "PUT", "/api/clients/" + ids[i % NCLIENTS], {"name": "c%d-%d" % (i % NCLIENTS, i)})[0] == 200)
    st, page = Conn(base, tok[base]).call("GET", "/api/audit?limit=1")
    print("  %s: %d clients, %d audit events, made through the API in %.0f s" %
          (name, NCLIENTS, page["total"], time.monotonic() - t0))
    return ids

def cursors(base):
    """The next_cursor of every page of 50 clients: one walk through the list."""
    c, out, nxt = Conn(base, tok[base]), [], None
    while True:
        st, page = c.call("GET", "/api/clients?limit=50" + ("&cursor=" + nxt if nxt else ""))
        assert st == 200, (st, page)
        nxt = page["next_cursor"]
        if not nxt:
            return out
        out.append(nxt)

def figures(servers, ids):
    rnd = random.Random(7)
    pick = [ids[rnd.randrange(len(ids))] for _ in range(REQS)]
    offs = [rnd.randrange(max(1, len(ids) - 50)) for _ in range(REQS)]
    curs = cursors(servers[0])
    rd = parallel(servers, REQS, lambda c, i: c.call("GET", "/api/clients/" + pick[i])[0] == 200)
    pg = parallel(servers, REQS, lambda c, i: c.call(
        "GET", "/api/clients?limit=50&offset=%d" % offs[i])[0] == 200)
    # the same pages by cursor (any server takes any server's cursor: one master key)
    cp = parallel(servers, REQS, lambda c, i: c.call(
        "GET", "/api/clients?limit=50&cursor=" + curs[offs[i] * len(curs) // len(ids)])[0] == 200)
    wr = parallel(servers, REQS, lambda c, i: c.call(
        "PUT", "/api/clients/" + pick[i], {"name": "w%d" % i})[0] == 200)
    return rd, pg, cp, wr

print("at scale: %d clients and %d audit events in the database, %d requests of each kind by %d "
      "clients:" % (NCLIENTS, NAUDIT, REQS, WRITERS))
sids = preload(S, "SQLite")
pids = preload(H, "PostgreSQL")
rows = [("SQLite, 1 server", figures([S], sids))]
for n in (1, 2, 3):
    rows.append(("PostgreSQL + Redis, %d server%s" % (n, "" if n == 1 else "s"),
                 figures([H, I, J][:n], pids)))
print("  requests/s, then p50 and p99 at the client, and (in brackets) p99 inside the servers "
      "(their logs' duration_ms), in ms:")
print("  %-32s %-27s %-27s %-27s %-27s" % ("", "GET client", "page of 50 by offset",
                                           "page of 50 by cursor", "PUT client"))
for name, kinds in rows:
    print("  %-32s" % name + "".join(" %6.0f %5.1f %5.1f [%5.1f]  " % k for k in kinds))
one = rows[0][1][0], rows[1][1][0]
print("  goal p99 read < 5 ms at %d clients on one server: SQLite %.1f ms (%s; %.1f ms inside the "
      "server), PostgreSQL %.1f ms (%s; %.1f ms inside)" % (
          NCLIENTS, one[0][2], "met" if one[0][2] < 5 else "not met", one[0][3], one[1][2],
          "met" if one[1][2] < 5 else "not met", one[1][3]))
print("  writes/s, 3 servers / 1 on PostgreSQL: %.2fx (the database's limit, not the servers', when "
      "this stays near 1 while the servers' CPU is not saturated)" % (rows[3][1][3][0] / rows[1][1][3][0]))
PY
out=$("$SG" audit verify --db "sqlite:$TMP/s/server.db" 2>&1) || { echo "bench: SQLite audit chain: $out" >&2; exit 1; }
echo "SQLite after the preload and writes: $out"
out=$("$SG" audit verify --db "$SG_PG_URL" 2>&1) || { echo "bench: audit chain: $out" >&2; exit 1; }
echo "after the writes: $out"
