#!/bin/bash
# Management-server API benchmark: requests/s and p50/p99 latency of login, listing 10,000
# clients and config download (with a JWT and with an API key), on SQLite and on PostgreSQL (a
# throwaway server from tests/server/pg.sh), against a running `secureguard server` started
# here. The product design's target is p99 under 50 ms for API calls; a page of 500 clients has
# 20 ms (issue 23). The target is printed beside each p99.
#
#   bench/server_api.sh [CLIENTS] [REQUESTS]     defaults 10000 and 2000
#
# Environment: SG_BIN (default build/bin), SG_BENCH_ENGINES (default "sqlite postgresql").
# Client side: python3 threads over keep-alive HTTP/1.1 connections (stdlib only). Both the
# server and the client share this machine's cores, so treat the numbers as a floor.
set -eu
CLIENTS=${1:-10000}
REQUESTS=${2:-2000}
SRC=$(cd "$(dirname "$0")/.." && pwd)
SG=${SG_BIN:-$SRC/build/bin}/secureguard
ENGINES=${SG_BENCH_ENGINES:-sqlite postgresql}
[ -x "$SG" ] || { echo "bench: $SG missing; build first" >&2; exit 1; }
"$SG" server --help >/dev/null 2>&1 || { echo "bench: $SG has no server command" >&2; exit 1; }
command -v python3 >/dev/null || { echo "bench: needs python3" >&2; exit 1; }

TMP=$(mktemp -d /tmp/sg-bench-api.XXXXXX)
SPID=
# shellcheck source-path=SCRIPTDIR source=../tests/server/pg.sh
. "$SRC/tests/server/pg.sh"
stop_server() {
	if [ -n "$SPID" ]; then
		kill "$SPID" 2>/dev/null || true
		wait "$SPID" 2>/dev/null || true
	fi
	SPID=
}
cleanup() {
	stop_server
	pg_stop
	rm -rf "$TMP"
}
trap cleanup EXIT
# More clients than the free edition allows: a license (bench/license.sh).
# shellcheck source=bench/license.sh
. "$SRC/bench/license.sh"
bench_license "$TMP" || exit 1

cat >"$TMP/drive.py" <<'PY'
import http.client, json, random, sys, threading, time

port, engine, nclients, nreq = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
EMAIL, PASSWORD = "bench@example.com", "bench-password-0123"

class Client:
    def __init__(self):
        self.c = None
    def req(self, method, path, body=None, token=None):
        h = {"Content-Type": "application/json", "Connection": "keep-alive"}
        if token:
            h["Authorization"] = "Bearer " + token
        data = json.dumps(body) if body is not None else None
        for attempt in range(2):
            try:
                if self.c is None:
                    self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                self.c.request(method, path, body=data, headers=h)
                r = self.c.getresponse()
                payload = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.c.close(); self.c = None
                return r.status, payload
            except (http.client.HTTPException, OSError):
                if self.c:
                    self.c.close()
                self.c = None
                if attempt:
                    return 0, b""
        return 0, b""

def login(cl):
    st, body = cl.req("POST", "/api/auth/login", {"email": EMAIL, "password": PASSWORD})
    if st != 200:
        raise SystemExit("login failed: %d %s" % (st, body[:200]))
    return json.loads(body)["access_token"]

def run(name, n, conc, fn):
    """fn(client, i) -> (ok); returns (n, errors, seconds, sorted latencies in ms)."""
    lat, errs, lock, idx = [], [0], threading.Lock(), [0]
    def worker():
        cl = Client()
        while True:
            with lock:
                i = idx[0]; idx[0] += 1
            if i >= n:
                return
            t0 = time.perf_counter()
            ok = fn(cl, i)
            dt = (time.perf_counter() - t0) * 1000
            with lock:
                lat.append(dt)
                if not ok:
                    errs[0] += 1
    t0 = time.perf_counter()
    ts = [threading.Thread(target=worker) for _ in range(conc)]
    for t in ts: t.start()
    for t in ts: t.join()
    secs = time.perf_counter() - t0
    lat.sort()
    pct = lambda p: lat[min(len(lat) - 1, int(p * (len(lat) - 1) + 0.5))] if lat else 0.0
    print("%s\t%s\t%d\t%d\t%d\t%.1f\t%.2f\t%.2f" % (engine, name, n, conc, errs[0], n / secs,
          pct(0.50), pct(0.99)), flush=True)

admin = Client()
token = login(admin)
st, body = admin.req("POST", "/api/networks", {"name": "bench", "subnet4": "10.0.0.0/16"}, token)
if st not in (200, 201):
    raise SystemExit("creating the network failed: %d %s" % (st, body[:300]))
net = json.loads(body)["id"]
ids, idlock = [], threading.Lock()
def create(cl, i):
    st, body = cl.req("POST", "/api/clients", {"network_id": net, "name": "c%05d" % i}, token)
    if st in (200, 201):
        with idlock:
            ids.append(json.loads(body)["id"])
        return True
    if i < 3:
        print("create client: %d %s" % (st, body[:200]), file=sys.stderr)
    return False
run("create client", nclients, 8, create)
if len(ids) < nclients:
    raise SystemExit("only %d of %d clients created" % (len(ids), nclients))

# Password hashing (Argon2id) dominates login by design; fewer requests.
run("login", max(20, nreq // 20), 4, lambda cl, i: cl.req("POST", "/api/auth/login",
    {"email": EMAIL, "password": PASSWORD})[0] == 200)
pages = (nclients + 499) // 500
def page(cl, i):
    st, body = cl.req("GET", "/api/clients?network_id=%s&limit=500&offset=%d"
                      % (net, (i % pages) * 500), None, token)
    # Not parsed here: Python's JSON parse of 200 KB would count as server latency.
    return st == 200 and body.startswith(b'{"items":[{')
run("list clients (page of 500)", max(50, nreq // 4), 8, page)
def all_pages(cl, i):
    seen = 0
    for p in range(pages):
        st, body = cl.req("GET", "/api/clients?network_id=%s&limit=500&offset=%d"
                          % (net, p * 500), None, token)
        if st != 200:
            return False
        seen += len(json.loads(body)["items"])
    return seen == nclients
run("list all %d clients (%d pages)" % (nclients, pages), 10, 2, all_pages)
def config(cl, i):
    return cl.req("GET", "/api/clients/%s/config" % random.choice(ids), None, token)[0] == 200
run("config download (JWT)", nreq, 8, config)
# The same with an API key: its last_used is written at most once a minute, so a key-driven
# script does not serialise on the database's write lock.
st, body = admin.req("POST", "/api/api-keys", {"name": "bench", "role": "admin"}, token)
if st != 201:
    raise SystemExit("creating an API key failed: %d %s" % (st, body[:200]))
apikey = json.loads(body)["key"]
def config_key(cl, i):
    return cl.req("GET", "/api/clients/%s/config" % random.choice(ids), None, apikey)[0] == 200
run("config download (API key)", nreq, 8, config_key)
PY

free_port() {
	python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

: >"$TMP/results.tsv"
for engine in $ENGINES; do
	case $engine in
	sqlite) URL="sqlite:$TMP/server.db" ;;
	postgresql)
		if ! pg_start; then
			echo "bench: PostgreSQL not available, skipping it" >&2
			continue
		fi
		URL=$SG_PG_URL
		;;
	*) echo "bench: unknown engine $engine" >&2; exit 1 ;;
	esac
	PORT=$(free_port)
	mkdir -p "$TMP/data-$engine"
	SG_ADMIN_EMAIL=bench@example.com SG_ADMIN_PASSWORD=bench-password-0123 \
		"$SG" server --listen "127.0.0.1:$PORT" --db "$URL" --data-dir "$TMP/data-$engine" \
		--login-ip-limit 100000 --port-file "$TMP/port-$engine" "${BENCH_LICENSE_ARGS[@]}" \
		>"$TMP/server-$engine.log" 2>&1 &
	SPID=$!
	for _ in $(seq 300); do
		[ -s "$TMP/port-$engine" ] && break
		kill -0 "$SPID" 2>/dev/null || break
		sleep 0.1
	done
	if [ ! -s "$TMP/port-$engine" ]; then
		echo "bench: the server did not start on $engine:" >&2
		cat "$TMP/server-$engine.log" >&2
		exit 1
	fi
	echo "bench: $engine: server on 127.0.0.1:$PORT, creating $CLIENTS clients..." >&2
	python3 "$TMP/drive.py" "$PORT" "$engine" "$CLIENTS" "$REQUESTS" | tee -a "$TMP/results.tsv" >&2 ||
		{ echo "bench: driver failed; server log:" >&2; tail -20 "$TMP/server-$engine.log" >&2; exit 1; }
	stop_server
	[ "$engine" = postgresql ] && pg_stop
done

echo
printf '%-11s %-36s %6s %4s %4s %9s %9s %9s  %s\n' engine operation reqs conc errs 'req/s' \
	'p50 ms' 'p99 ms' 'p99 vs target'
awk -F'\t' '{
	lim = ($2 ~ /page of 500/) ? 20 : 50;
	t = ($2 ~ /^list all/ || $2 ~ /^create/) ? "(n/a: not one API call)" : ($8 <= lim ? "ok (" lim " ms)" : "OVER (" lim " ms)");
	printf "%-11s %-36s %6d %4d %4d %9.1f %9.2f %9.2f  %s\n", $1, $2, $3, $4, $5, $6, $7, $8, t
}' "$TMP/results.tsv"
echo "($(nproc) CPUs shared by the server, the database and the client; $(date -u +%FT%TZ))"
