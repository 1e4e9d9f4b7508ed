#!/bin/bash
# The management server under attack: normal requests (a new connection each: health and the
# list of networks, tests/server/conn_flood.py's) measured alone, then while 1,000 idle and slow
# connections (conn_flood.py's flood, from 50 loopback addresses, reopened at once) and a
# distributed login brute force (wrong passwords for a real account from 250 loopback
# addresses, 8 at a time) run against the same server. Prints success and p50/p99 of both runs
# and the ratio of the p99s. Goal (issue 20): every normal request served, p99 under attack
# within 10x of the unloaded p99.
#
#   bench/server_attack.sh [SECONDS]     default 20 per run
#
# Environment: SG_BIN (default build/bin), SG_BENCH_ENGINES (default "sqlite"; add postgresql
# for a throwaway PostgreSQL from tests/server/pg.sh). Attackers, the normal client and the
# server share this machine's cores, so the attack also takes CPU from the server: a floor.
set -eu
SECONDS_RUN=${1:-20}
SRC=$(cd "$(dirname "$0")/.." && pwd)
SG=${SG_BIN:-$SRC/build/bin}/secureguard
ENGINES=${SG_BENCH_ENGINES:-sqlite}
[ -x "$SG" ] || { echo "bench: $SG missing; build first" >&2; exit 1; }
command -v python3 >/dev/null || { echo "bench: needs python3" >&2; exit 1; }

TMP=$(mktemp -d /tmp/sg-bench-attack.XXXXXX)
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

cat >"$TMP/drive.py" <<'PY'
import http.client, json, os, sys, threading, time

src, port, engine, secs = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
sys.path.insert(0, os.path.join(src, "tests", "server"))
import conn_flood  # the flood of test_server_conns.sh: idle and slow connections, reopened at once
EMAIL, PASSWORD = "bench@example.com", "bench-password-0123"

def req(method, path, body=None, token=None, src="127.0.0.1", timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(src, 0))
    h = {"Content-Type": "application/json"}
    if token:
        h["Authorization"] = "Bearer " + token
    try:
        c.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
        r = c.getresponse()
        return r.status, r.read()
    except (OSError, http.client.HTTPException):
        return 0, b""
    finally:
        c.close()

st, body = req("POST", "/api/auth/login", {"email": EMAIL, "password": PASSWORD})
if st != 200:
    raise SystemExit("login failed: %d %s" % (st, body[:200]))
tok = json.loads(body)["access_token"]
req("POST", "/api/networks", {"name": "bench", "subnet4": "10.60.0.0/16"}, tok)

stop = threading.Event()
guesses = {}
glock = threading.Lock()

def brute(k):
    # A distributed brute force on the real account: 250 source addresses, each used for 20
    # guesses (the per-address limit) in turn.
    i = 0
    while not stop.is_set():
        src = "127.0.5.%d" % (1 + (k * 31 + i // 20) % 250)
        st, _ = req("POST", "/api/auth/login", {"email": EMAIL, "password": "guess-%d-%d" % (k, i)},
                    src=src)
        with glock:
            guesses[st] = guesses.get(st, 0) + 1
        i += 1

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]

lat0, bad0 = conn_flood.normal_requests("127.0.0.1", port, tok, secs)
flood = conn_flood.Flood("127.0.0.1", port, 1000, 50)
ft = threading.Thread(target=flood.run, daemon=True)
ft.start()
flood.ready.wait(30)
bt = [threading.Thread(target=brute, args=(k,)) for k in range(8)]
for t in bt:
    t.start()
time.sleep(2)  # the slow half has started its heads, the guesses are flowing
t0 = time.time()
lat1, bad1 = conn_flood.normal_requests("127.0.0.1", port, tok, secs)
took = time.time() - t0
owner, _ = req("POST", "/api/auth/login", {"email": EMAIL, "password": PASSWORD})
stop.set()
flood.stop = True
for t in bt:
    t.join()
ft.join(10)
n = sum(guesses.values())
r = pct(lat1, 0.99) / pct(lat0, 0.99)
print("%-10s unloaded: %d/%d served, p50 %.2f ms, p99 %.2f ms" %
      (engine, len(lat0) - len(bad0), len(lat0), pct(lat0, 0.5), pct(lat0, 0.99)))
print("%-10s attacked: %d/%d served, p50 %.2f ms, p99 %.2f ms  (1000 idle/slow connections: "
      "%d opened, %d closed by the server; %d login guesses, %.0f/s, answers %s)" %
      (engine, len(lat1) - len(bad1), len(lat1), pct(lat1, 0.5), pct(lat1, 0.99),
       flood.opened, flood.closed_by_server, n, n / took,
       ", ".join("%s: %d" % kv for kv in sorted(guesses.items()))))
print("%-10s the account's owner logging in during the brute force: %d" % (engine, owner))
print("%-10s p99 attacked / unloaded = %.1fx (goal <= 10x), served %s (goal: all)" %
      (engine, r, "all" if not bad1 else "%d of %d" % (len(lat1) - len(bad1), len(lat1))))
PY

for engine in $ENGINES; do
	case $engine in
	sqlite) DB="sqlite:$TMP/sqlite/server.db" ;;
	postgresql)
		rc=0
		pg_start || rc=$?
		[ "$rc" -eq 0 ] || { echo "bench: PostgreSQL unavailable (pg_start $rc)" >&2; continue; }
		DB=$SG_PG_URL
		;;
	*) echo "bench: unknown engine $engine" >&2; exit 2 ;;
	esac
	mkdir -p "$TMP/$engine"
	SG_ADMIN_EMAIL=bench@example.com SG_ADMIN_PASSWORD=bench-password-0123 \
		"$SG" server --listen 127.0.0.1:0 --port-file "$TMP/$engine/port" \
		--data-dir "$TMP/$engine" --db "$DB" >"$TMP/$engine/server.log" 2>&1 &
	SPID=$!
	for _ in $(seq 1 100); do
		[ -s "$TMP/$engine/port" ] && break
		sleep 0.1
	done
	[ -s "$TMP/$engine/port" ] || { cat "$TMP/$engine/server.log"; exit 1; }
	(
		ulimit -n "$(ulimit -Hn)"
		python3 "$TMP/drive.py" "$SRC" "$(cat "$TMP/$engine/port")" "$engine" "$SECONDS_RUN"
	)
	stop_server
done
