#!/bin/bash
# shellcheck disable=SC2154 # SRV_<name> variables are set by srv_start (printf -v)
# The management server's HTTP API, end to end (tests/server/api_test.py): every endpoint, every
# role, the error paths, 50 concurrent client creations, temporary access with the expiry sweep,
# the streamed audit export verified offline. Run once on SQLite and once on a throwaway
# PostgreSQL (tests/server/pg.sh). Also: the first admin generated with a one-time password,
# HTTPS with a self-signed certificate, and a graceful shutdown (SIGTERM, exit status 0).
#
# Environment: SG_BIN, SG_SRC (ctest sets them). Exit 77: PostgreSQL missing (the SQLite part
# has then passed) or no python3/openssl.
set -u
SRV_TEST=test_server_api
# shellcheck source=tests/server/server_lib.sh
. "$(dirname "$0")/../server/server_lib.sh"
# shellcheck source=tests/server/pg.sh
. "$SG_SRC/tests/server/pg.sh"

[ -x "$SG" ] || { srv_log "SKIP: $SG not built"; exit 77; }
[ -d "$SG_SRC/tests/contract/node_modules/ajv" ] ||
	{ srv_log "SKIP: tests/contract has no node_modules (scripts/deps.sh runs npm ci there)"; exit 77; }
for t in python3 openssl curl node; do
	command -v "$t" >/dev/null || { srv_log "SKIP: missing tool $t"; exit 77; }
done
TMP=$(mktemp -d /tmp/sg-server-api.XXXXXX)
cleanup() {
	srv_kill_all
	pg_stop
	rm -rf "$TMP"
}
trap cleanup EXIT
fail() { srv_fail "$@"; }

srv_admin_env root
# api_test.py's LOGIN_IP_LIMIT is --login-ip-limit; its 40 concurrent logins need the per-IP
# connection limit above 40; the window outlasts a slow (sanitizer) run.
OPTS=(--sweep-interval 1 --login-ip-limit 40 --login-ip-window 3600 --max-connections-per-ip 64)

run_api() {
	local name=$1 db=$2 urlv logv
	shift 2
	# The rest: logging options of this run (and api_test.py's view of them).
	local logopts=("$@") level=info
	[ "${logopts[0]:-}" = --log-level ] && level=${logopts[1]}
	srv_start "$name" "$db" "$TMP/$name" "${OPTS[@]}" "${logopts[@]}" ||
		fail "server ($name) did not start"
	urlv="SRV_URL_$name"
	logv="SRV_LOG_$name"
	srv_log "API tests on $name"
	SG_API_RECORD="$TMP/$name.traffic.jsonl" \
	python3 "$SG_SRC/tests/server/api_test.py" --url "${!urlv}" --db "$db" \
		--admin "$SG_ADMIN_EMAIL" --password "$SG_ADMIN_PASSWORD" --sg "$SG" \
		--docs "$SG_SRC/docs" --server-log "${!logv}" --log-level "$level" \
		--trusted-proxy 127.0.0.2 || {
		tail -n 40 "${!logv}"
		fail "API tests on $name"
	}
	srv_stop "$name" || fail "graceful shutdown ($name)"
	# Agents and policies (docs/AGENTS.md), recorded with the rest, on a new server process
	# over the same data: api_test.py's last checks leave this address over its login limit.
	srv_start "${name}_agents" "$db" "$TMP/$name" "${OPTS[@]}" --public-url https://sg.example.com ||
		fail "server ($name, again) did not start"
	urlv="SRV_URL_${name}_agents"
	logv="SRV_LOG_${name}_agents"
	SG_API_RECORD="$TMP/$name.traffic.jsonl" \
	python3 "$SG_SRC/tests/server/agents_api_test.py" --url "${!urlv}" --db "$db" \
		--admin "$SG_ADMIN_EMAIL" --password "$SG_ADMIN_PASSWORD" --server-log "${!logv}" || {
		tail -n 40 "${!logv}"
		fail "agents API tests on $name"
	}
	# Gateways, sites, resources and targets (docs/GATEWAY.md), recorded with the rest.
	SG_API_RECORD="$TMP/$name.traffic.jsonl" \
	python3 "$SG_SRC/tests/server/gateways_api_test.py" --url "${!urlv}" --db "$db" \
		--admin "$SG_ADMIN_EMAIL" --password "$SG_ADMIN_PASSWORD" --server-log "${!logv}" || {
		tail -n 40 "${!logv}"
		fail "gateways API tests on $name"
	}
	# MFA-gated VPN sessions (docs/SERVER.md), recorded with the rest.
	SG_API_RECORD="$TMP/$name.traffic.jsonl" \
	python3 "$SG_SRC/tests/server/vpn_api_test.py" --url "${!urlv}" --db "$db" \
		--admin "$SG_ADMIN_EMAIL" --password "$SG_ADMIN_PASSWORD" --server-log "${!logv}" || {
		tail -n 40 "${!logv}"
		fail "VPN sessions API tests on $name"
	}
	# Passkeys (docs/SERVER.md "Passkeys") with a software authenticator; the relying party is
	# this server's --public-url (rpId sg.example.com).
	SG_API_RECORD="$TMP/$name.traffic.jsonl" \
	python3 "$SG_SRC/tests/server/passkeys_api_test.py" --url "${!urlv}" --db "$db" \
		--admin "$SG_ADMIN_EMAIL" --password "$SG_ADMIN_PASSWORD" --server-log "${!logv}" || {
		tail -n 40 "${!logv}"
		fail "passkeys API tests on $name"
	}
	"$SG" audit verify --db "$db" || fail "audit chain of $name after the API tests"
	# Every response of the run, against the document, by ajv and swagger-parser.
	node "$SG_SRC/tests/contract/validate.mjs" --doc "$SG_SRC/docs/openapi.json" \
		--traffic "$TMP/$name.traffic.jsonl" --all-operations || fail "responses on $name do not match docs/openapi.json"
	srv_stop "${name}_agents" || fail "graceful shutdown ($name, again)"
}

# SQLite: the JSON log at debug level in a file rotated at 128 KiB (api_test.py reads every line of
# every file: each a JSON object, one http_request line per request, no secret of the run in
# any). PostgreSQL below: the default key=value lines on stderr.
run_api sqlite "sqlite:$TMP/sqlite/server.db" --log-level debug --log-format json \
	--log-file "$TMP/sqlite/server.jsonl" --log-max-size 128k --log-files 100 \
	--trusted-proxy 127.0.0.2
[ "$(stat -c %a "$TMP/sqlite/master.key")" = 600 ] || fail "master.key is not mode 0600"
[ "$(stat -c %a "$TMP/sqlite/server.db")" = 600 ] || fail "server.db is not mode 0600"

# A second start on the same data: no new admin, same key, the old tokens' signatures verify.
srv_start again "sqlite:$TMP/sqlite/server.db" "$TMP/sqlite" || fail "restart"
tok=$(srv_login "$SRV_URL_again" "$SG_ADMIN_EMAIL" "$SG_ADMIN_PASSWORD") || fail "login after restart"
curl -sf -H "Authorization: Bearer $tok" "$SRV_URL_again/api/networks" >/dev/null ||
	fail "API after restart"
grep -c 'created super_admin' "$TMP/sqlite/server.log" | grep -qx 1 || fail "admin re-created on restart"
srv_stop again || fail "graceful shutdown after restart"

# First start without SG_ADMIN_PASSWORD: a one-time password, printed once on stderr.
(
	unset SG_ADMIN_PASSWORD
	srv_start gen "sqlite:$TMP/gen/server.db" "$TMP/gen" || exit 1
	pw=$(sed -n 's/.*one-time password: \([A-Za-z0-9_-]*\)$/\1/p' "$SRV_LOG_gen")
	[ -n "$pw" ] || { srv_log "no one-time password printed"; exit 1; }
	srv_login "$SRV_URL_gen" root@example.com "$pw" >/dev/null || exit 1
	srv_stop gen || exit 1
) || fail "bootstrap with a generated one-time password"

# HTTPS with a self-signed certificate.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
	-addext subjectAltName=DNS:localhost -keyout "$TMP/tls.key" -out "$TMP/tls.crt" \
	>/dev/null 2>&1 || fail "openssl could not make a test certificate"
srv_start tls "sqlite:$TMP/tls/server.db" "$TMP/tls" --tls-cert "$TMP/tls.crt" \
	--tls-key "$TMP/tls.key" || fail "TLS server did not start"
out=$(curl -sf --cacert "$TMP/tls.crt" "https://localhost:$SRV_PORT_tls/api/health") ||
	fail "HTTPS health check"
case $out in *'"status":"ok"'*) ;; *) fail "HTTPS health answer: $out" ;; esac
curl -sf "http://127.0.0.1:$SRV_PORT_tls/api/health" >/dev/null 2>&1 &&
	fail "plain HTTP answered on the HTTPS port"
# The dashboard's certificate list: this certificate, valid for a day, is expiring.
python3 - "$SRV_PORT_tls" "$TMP/tls.crt" "$SG_ADMIN_EMAIL" "$SG_ADMIN_PASSWORD" <<'PY' ||
import json, ssl, sys, time, urllib.request
port, ca, email, pw = sys.argv[1:5]
ctx = ssl.create_default_context(cafile=ca)
url = "https://localhost:%s" % port
req = urllib.request.Request(url + "/api/auth/login", method="POST",
                             data=json.dumps({"email": email, "password": pw}).encode(),
                             headers={"Content-Type": "application/json"})
tok = json.load(urllib.request.urlopen(req, timeout=30, context=ctx))["access_token"]
req = urllib.request.Request(url + "/api/certificates", headers={"Authorization": "Bearer " + tok})
items = json.load(urllib.request.urlopen(req, timeout=30, context=ctx))["items"]
c = [i for i in items if i["kind"] == "server_tls"]
now = time.time()
ok = (len(c) == 1 and c[0]["subject"] == "localhost" and c[0]["state"] == "expiring" and
      c[0]["name"].endswith("tls.crt") and now - 600 < c[0]["not_before"] <= now + 60 and
      abs(c[0]["not_after"] - c[0]["not_before"] - 86400) <= 1)
sys.exit(0 if ok else "server_tls: %s" % c)
PY
	fail "GET /api/certificates does not show the HTTPS certificate"
srv_stop tls || fail "graceful shutdown (TLS)"

# Limits: body size, idle timeout, connection slots (small values to see them act).
srv_start lim "sqlite:$TMP/lim/server.db" "$TMP/lim" --max-body 2048 --timeout 2 \
	--max-connections 4 || fail "server with small limits did not start"
python3 - "$SRV_PORT_lim" <<'PY' || fail "limits"
import json, socket, sys, time, urllib.error, urllib.request
port = int(sys.argv[1])
url = "http://127.0.0.1:%d" % port
def status(path, data=None):
    try:
        return urllib.request.urlopen(urllib.request.Request(
            url + path, data=data, method="POST" if data else "GET",
            headers={"Content-Type": "application/json"}), timeout=10).status
    except urllib.error.HTTPError as e:
        return e.code
def closed(s, wait=2.0):
    s.settimeout(wait)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True
assert status("/api/auth/login", b'{"email":"' + b"a" * 4096 + b'"}') == 413, "body limit"
assert status("/api/health") == 200
# An idle connection is closed after --timeout.
s = socket.create_connection(("127.0.0.1", port))
t0 = time.time()
s.settimeout(10)
assert s.recv(1) == b"", "idle connection not closed"
assert 1 <= time.time() - t0 <= 6, "idle connection closed after %.1f s" % (time.time() - t0)
# Every slot held by an idle connection: a new request is still served, and the oldest idle
# connection is the one closed to make room.
idle = []
for _ in range(4):
    idle.append(socket.create_connection(("127.0.0.1", port)))
    time.sleep(0.05)
time.sleep(0.2)
assert status("/api/health") == 200, "a request was not served with every slot idle"
assert closed(idle[0]), "the oldest idle connection was not the one reclaimed"
assert not any(closed(x, 0.2) for x in idle[1:]), "a younger idle connection was closed"
for x in idle:
    x.close()
# Every slot held by a request trickling in: the oldest unfinished request makes room.
slow = []
for _ in range(4):
    x = socket.create_connection(("127.0.0.1", port))
    x.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
    slow.append(x)
    time.sleep(0.05)
time.sleep(0.2)
assert status("/api/health") == 200, "a request was not served with every slot slow"
assert closed(slow[0]), "the oldest unfinished request was not the one reclaimed"
for x in slow:
    x.close()
print("limits: 413 over --max-body, idle close after --timeout, oldest idle and slow reclaimed")
PY
srv_stop lim || fail "graceful shutdown (limits)"

# Slow clients: a head trickling in is cut at --header-timeout, a body at --request-timeout,
# each with a 408 problem document; one address holds at most --max-connections-per-ip slots
# (its own oldest connection makes room for its next).
srv_start slow "sqlite:$TMP/slow/server.db" "$TMP/slow" --timeout 20 --header-timeout 2 \
	--request-timeout 4 --max-connections-per-ip 3 || fail "server with deadlines did not start"
python3 - "$SRV_PORT_slow" <<'PY' || fail "slow clients"
import json, socket, sys, time, urllib.request
port = int(sys.argv[1])
def trickle(first, line, limit):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(first)
    t0 = time.time()
    got = b""
    while time.time() - t0 < 12:
        time.sleep(0.5)
        try:
            s.sendall(line)
        except OSError:
            pass
        s.settimeout(0.05)
        try:
            d = s.recv(4096)
        except socket.timeout:
            continue
        except ConnectionResetError:
            break
        if not d:
            break
        got += d
    took = time.time() - t0
    assert got.startswith(b"HTTP/1.1 408 "), "no 408 for a trickling request: %r" % got[:80]
    body = json.loads(got.split(b"\r\n\r\n", 1)[1])
    assert body["status"] == 408 and body["detail"], body
    assert took <= limit, "cut off after %.1f s" % took
    return took
th = trickle(b"GET /api/health HTTP/1.1\r\nHost: x\r\n", b"X-Slow: 1\r\n", 6)
tb = trickle(b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             b"Content-Length: 100\r\n\r\n{", b" ", 8)
# Three connections from one address are fine; a fourth takes the oldest one's slot.
conns = []
for _ in range(3):
    conns.append(socket.create_connection(("127.0.0.1", port)))
    time.sleep(0.05)
assert urllib.request.urlopen("http://127.0.0.1:%d/api/health" % port, timeout=10).status == 200
conns[0].settimeout(2)
assert conns[0].recv(1) == b"", "the address's oldest connection was not reclaimed"
for x in conns:
    x.close()
m = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10).read().decode()
assert 'secureguard_http_connection_timeouts_total{phase="head"} 1' in m, m
assert 'secureguard_http_connection_timeouts_total{phase="body"} 1' in m, m
print("slow clients: head cut after %.1f s, body after %.1f s; per-address slots" % (th, tb))
PY
srv_stop slow || fail "graceful shutdown (slow clients)"

# Start-up errors: bad options and unreadable files are reported, exit status non-zero.
"$SG" server --listen nonsense --data-dir "$TMP/bad" 2>/dev/null && fail "--listen nonsense accepted"
"$SG" server --tls-cert "$TMP/tls.crt" --data-dir "$TMP/bad" 2>/dev/null &&
	fail "--tls-cert without --tls-key accepted"

rc=0
pg_start || rc=$?
if [ "$rc" -eq 77 ]; then
	srv_log "SKIP: PostgreSQL not installed; the SQLite part passed"
	exit 77
fi
[ "$rc" -eq 0 ] || fail "PostgreSQL did not start"
run_api pg "$SG_PG_URL" --log-level info --trusted-proxy 127.0.0.2
srv_log "PASS"
