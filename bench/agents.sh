#!/bin/bash
# Agents benchmark (issue 14): one management server with 1,000 simulated agents holding the push
# channel (long polls of their configuration, as `secureguard agent` does) and reporting after
# each change, on SQLite and then on PostgreSQL (a throwaway server from tests/server/pg.sh).
# Printed per engine:
#  - time from a policy change (PUT /api/policies/{id}) to every agent having the new
#    configuration: p50, p99, max over the agents, for several changes;
#  - the same with the design document's agent, which polls every 60 s (the agents' phases
#    spread over the interval), and the ratio of the two;
#  - the server's CPU time per change, its CPU while 1,000 polls wait, and its memory (RSS)
#    with the agents connected.
# The design document claims 1,000+ agents per server.
#
#   bench/agents.sh [AGENTS] [CHANGES]     defaults 1000 and 5
#
# Environment: SG_BIN (default build/bin), SG_BENCH_ENGINES (default "sqlite postgresql"),
# SG_BENCH_POLL (seconds of the polling agents, default 60; 0 skips that part).
# The simulated agents are python3 asyncio coroutines (stdlib only) on this machine's cores,
# like the server: treat the figures as a floor.
set -eu
AGENTS=${1:-1000}
CHANGES=${2:-5}
SRC=$(cd "$(dirname "$0")/.." && pwd)
SG=${SG_BIN:-$SRC/build/bin}/secureguard
ENGINES=${SG_BENCH_ENGINES:-sqlite postgresql}
POLL=${SG_BENCH_POLL:-60}
[ -x "$SG" ] || { echo "bench: $SG missing; build first" >&2; exit 1; }
command -v python3 >/dev/null || { echo "bench: needs python3" >&2; exit 1; }
ulimit -n 65536 2>/dev/null || ulimit -n 8192

TMP=$(mktemp -d /tmp/sg-bench-agents.XXXXXX)
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
	[ -n "${SG_BENCH_KEEP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT

cat >"$TMP/drive.py" <<'PY'
import asyncio, base64, hashlib, hmac, http.client, json, os, random, statistics, sys
import threading, time
sys.path.insert(0, sys.argv[7])
import api_test as A  # X25519 (RFC 7748) in Python, and base64url helpers

port, engine, nagents, nchanges, poll, pid = (int(sys.argv[1]), sys.argv[2], int(sys.argv[3]),
                                            int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
EMAIL, PASSWORD = "bench@example.com", "bench-password-0123"
HOST = "127.0.0.1"

def call(method, path, body=None, token=None, conn=None):
    c = conn or http.client.HTTPConnection(HOST, port, timeout=120)
    h = {"Content-Type": "application/json"}
    if token:
        h["Authorization"] = "Bearer " + token
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
    r = c.getresponse()
    data = r.read()
    if not conn:
        c.close()
    return r.status, (json.loads(data) if data else None)

def cpu_s():
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

def rss_mib():
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

st, d = call("POST", "/api/auth/login", {"email": EMAIL, "password": PASSWORD})
admin = d["access_token"]

# ---- 1,000 agents: enrolment tokens, registration, key-proof logins (threads) --------------
# Each agent registers and logs in from an address of its own (127.3.x.y), as nodes do: the
# server limits registrations per source address.
def make_agents(idx, out):
    c = http.client.HTTPConnection(HOST, port, timeout=120)
    for i in idx:
        priv = os.urandom(32)
        pub = A.x25519(priv, (9).to_bytes(32, "little"))
        pub64 = base64.b64encode(pub).decode()
        st, tok = call("POST", "/api/enrollment-tokens", {"tags": ["bench"]}, admin, c)
        node = http.client.HTTPConnection(HOST, port, timeout=120,
                                          source_address=("127.3.%d.%d" % (i // 250, i % 250 + 1), 0))
        st, peer = call("POST", "/api/peers/register", {"token": tok["token"], "public_key": pub64,
                                                        "name": "bench-%d" % i,
                                                        "address": "198.18.%d.%d" % (i // 250, i % 250 + 1)}, None, node)
        assert st == 201, (st, peer)
        st, ch = call("POST", "/api/auth/client/challenge", {}, None, node)
        spub = base64.b64decode(ch["server_public_key"])
        shared = A.x25519(priv, spub)
        mac = hmac.new(shared, b"secureguard agent auth v1" + A.b64u_dec(ch["challenge"]) + pub + spub,
                       hashlib.sha384).digest()
        st, s = call("POST", "/api/auth/agent", {"public_key": pub64, "challenge": ch["challenge"],
                                                 "proof": A.b64u(mac)}, None, node)
        node.close()
        assert st == 200, (st, s)
        out[i] = (peer["id"], s["session_token"])
    c.close()

t0 = time.time()
agents = [None] * nagents
threads = [threading.Thread(target=make_agents, args=(range(k, nagents, 8), agents)) for k in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("[%s] %d agents enrolled and logged in in %.1f s" % (engine, nagents, time.time() - t0), flush=True)
st, pol = call("POST", "/api/policies", {"name": "bench", "applies_to": ["bench"], "tunnels": [{
    "name": "to-hq", "remote_addrs": ["198.51.100.1"], "local_ts": ["10.1.0.0/16"],
    "remote_ts": ["10.0.0.0/16"], "auth": "psk", "secret": "bench-secret-0123",
    "proposals": ["aes256gcm16-prfsha256-x25519"], "esp_proposals": ["aes256gcm16"]}]}, admin)
assert st == 201, pol

# ---- the simulated agents: a keep-alive connection each, long polls (or plain polls) ---------
async def http_get(reader, writer, path, token):
    writer.write(("GET %s HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer %s\r\n\r\n" % (path, token)).encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    n = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            n = int(line.split(b":", 1)[1])
    body = await reader.readexactly(n) if n else b""
    return status, body

async def http_put(reader, writer, path, token, doc):
    data = json.dumps(doc).encode()
    writer.write(("PUT %s HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (path, token, len(data))).encode() + data)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    n = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            n = int(line.split(b":", 1)[1])
    if n:
        await reader.readexactly(n)

class Sim:
    def __init__(self, wait, period):
        self.wait, self.period = wait, period
        self.revision = {}   # agent id -> the revision it has
        self.got = {}        # agent id -> when it got the awaited revision
        self.ready = 0
        self.errors = 0
        self.reconnects = 0
        self.reports = 0     # reports sent and answered

    async def agent(self, aid, tok):
        r1, w1 = await asyncio.open_connection(HOST, port)
        st, body = await http_get(r1, w1, "/api/peers/%s/config" % aid, tok)
        self.revision[aid] = json.loads(body)["revision"]
        self.ready += 1
        if self.period:
            await asyncio.sleep(random.uniform(0, self.period))  # phases spread over the interval
        while True:
            path = "/api/peers/%s/config?since=%s&wait=%d" % (aid, self.revision[aid], self.wait)
            try:
                st, body = await http_get(r1, w1, path, tok)
            except Exception:
                # The server closes a connection idle longer than its --timeout (a polling
                # agent's, between polls): a new one, as an agent's HTTP client makes.
                self.reconnects += 1
                w1.close()
                try:
                    r1, w1 = await asyncio.open_connection(HOST, port)
                    st, body = await http_get(r1, w1, path, tok)
                except Exception:
                    self.errors += 1
                    await asyncio.sleep(1)
                    continue
            if st == 200:
                rev = json.loads(body)["revision"]
                self.revision[aid] = rev
                self.got.setdefault(aid, time.time())
                # Then it reports, as an agent does (on a connection of its own).
                try:
                    r2, w2 = await asyncio.open_connection(HOST, port)
                    await http_put(r2, w2, "/api/peers/%s/status" % aid, tok,
                                   {"state": "ok", "revision": rev})
                    w2.close()
                    self.reports += 1
                except Exception:
                    self.errors += 1
            elif st != 204:
                self.errors += 1
                await asyncio.sleep(1)
            if self.period:
                await asyncio.sleep(self.period)

def change(n):
    st, d = call("PUT", "/api/policies/" + pol["id"], {"description": "change %d" % n}, admin)
    assert st == 200, d

def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]

async def run(mode, wait, period, changes, timeout):
    sim = Sim(wait, period)
    tasks = [asyncio.create_task(sim.agent(a, t)) for a, t in agents]
    while sim.ready < nagents:
        await asyncio.sleep(0.05)
    await asyncio.sleep(2 if not period else period + 1)
    c0, idle0 = cpu_s(), time.time()
    await asyncio.sleep(3)
    idle_cpu = (cpu_s() - c0) / (time.time() - idle0) * 100
    rss = rss_mib()
    results = []
    for n in range(changes):
        sim.got = {}
        # Every report of the last change answered first: each change is measured alone.
        while sim.reports < n * nagents and n:
            await asyncio.sleep(0.05)
        await asyncio.sleep(1)
        c0 = cpu_s()
        t0 = time.time()
        await asyncio.get_running_loop().run_in_executor(None, change, n)
        while len(sim.got) < nagents and time.time() - t0 < timeout:
            await asyncio.sleep(0.01)
        lat = [(t - t0) * 1000 for t in sim.got.values()]
        await asyncio.sleep(1)
        results.append((len(lat), lat, cpu_s() - c0))
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return results, idle_cpu, rss, sim.errors, sim.reconnects

def report(mode, results, idle_cpu, rss, errors, reconnects):
    alllat = [x for r in results for x in r[1]] or [-1]
    for i, (n, lat, cpu) in enumerate(results):
        print("[%s] %s change %d: %d/%d agents had it; p50 %.0f ms, p99 %.0f ms, max %.0f ms; server CPU %.2f s"
              % (engine, mode, i + 1, n, nagents, pct(lat, 50) if lat else -1, pct(lat, 99) if lat else -1,
                 max(lat) if lat else -1, cpu), flush=True)
    print("[%s] %s: over %d changes p50 %.0f ms, p99 %.0f ms; server CPU %.1f%% of a core with %d polls waiting, RSS %.1f MiB; errors %d, reconnections %d"
          % (engine, mode, len(results), pct(alllat, 50), pct(alllat, 99), idle_cpu, nagents, rss, errors,
             reconnects), flush=True)
    return pct(alllat, 50), pct(alllat, 99)

res = asyncio.run(run("push", 50, 0, nchanges, 30))
p50, p99 = report("push (long poll)", *res)
if poll:
    res = asyncio.run(run("poll", 0, poll, 1, poll * 2 + 10))
    q50, q99 = report("the design's %d s poll" % poll, *res)
    print("[%s] RESULT push p50 %.0f ms p99 %.0f ms vs %d s polling p50 %.0f ms p99 %.0f ms: %.0fx / %.0fx sooner"
          % (engine, p50, p99, poll, q50, q99, q50 / max(p50, 1), q99 / max(p99, 1)), flush=True)
else:
    print("[%s] RESULT push p50 %.0f ms p99 %.0f ms with %d agents" % (engine, p50, p99, nagents), flush=True)
PY

run_engine() {
	local engine=$1 db=$2 dir=$TMP/$1
	mkdir -p "$dir"
	SG_ADMIN_EMAIL=bench@example.com SG_ADMIN_PASSWORD=bench-password-0123 \
		"$SG" server --listen 127.0.0.1:0 --port-file "$dir/port" --data-dir "$dir" --db "$db" \
		--max-connections-per-ip 60000 --login-ip-limit 100000 --agent-poll 60 \
		>"$dir/server.log" 2>&1 &
	SPID=$!
	for _ in $(seq 1 100); do [ -s "$dir/port" ] && break; sleep 0.1; done
	[ -s "$dir/port" ] || { cat "$dir/server.log"; exit 1; }
	python3 "$TMP/drive.py" "$(cat "$dir/port")" "$engine" "$AGENTS" "$CHANGES" "$POLL" "$SPID" \
		"$SRC/tests/server"
	stop_server
}

echo "bench/agents.sh: $AGENTS agents, $CHANGES changes, on $(nproc) cores shared with the agents"
for engine in $ENGINES; do
	case $engine in
	sqlite) run_engine sqlite "sqlite:$TMP/sqlite/server.db" ;;
	postgresql)
		pg_start || { echo "bench: PostgreSQL did not start" >&2; exit 1; }
		run_engine postgresql "$SG_PG_URL"
		pg_stop
		;;
	esac
done
