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
for t in python3 openssl curl; do
	command -v "$t" >/dev/null || { srv_log "SKIP: missing tool $t"; exit 77; }
done
TMP=$(mktemp -d /tmp/sg-server-api.XXXXXX)
cleanup() {
	local v
	for v in ${!SRV_PID_*}; do kill -KILL "${!v}" 2>/dev/null; done
	pg_stop
	rm -rf "$TMP"
}
trap cleanup EXIT
fail() {
	srv_log "FAIL: $*"
	exit 1
}

export SG_ADMIN_EMAIL=root@example.com
SG_ADMIN_PASSWORD="root-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
export SG_ADMIN_PASSWORD
# api_test.py's LOGIN_IP_LIMIT is --login-ip-limit; its 40 concurrent logins need the per-IP
# connection limit above 40; the window outlasts a slow (sanitizer) run.
OPTS=(--sweep-interval 1 --login-ip-limit 40 --login-ip-window 3600 --max-connections-per-ip 64)

run_api() {
	local name=$1 db=$2 urlv logv
	srv_start "$name" "$db" "$TMP/$name" "${OPTS[@]}" || fail "server ($name) did not start"
	urlv="SRV_URL_$name"
	logv="SRV_LOG_$name"
	srv_log "API tests on $name"
	python3 "$SG_SRC/tests/server/api_test.py" --url "${!urlv}" --db "$db" \
		--admin "$SG_ADMIN_EMAIL" --password "$SG_ADMIN_PASSWORD" --sg "$SG" \
		--docs "$SG_SRC/docs" --server-log "${!logv}" || {
		tail -n 40 "${!logv}"
		fail "API tests on $name"
	}
	"$SG" audit verify --db "$db" || fail "audit chain of $name after the API tests"
	srv_stop "$name" || fail "graceful shutdown ($name)"
}

run_api sqlite "sqlite:$TMP/sqlite/server.db"
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
srv_stop tls || fail "graceful shutdown (TLS)"

# Limits: body size, idle timeout, connection count (small values to see them act).
srv_start lim "sqlite:$TMP/lim/server.db" "$TMP/lim" --max-body 2048 --timeout 2 \
	--max-connections 3 || fail "server with small limits did not start"
python3 - "$SRV_PORT_lim" <<'PY' || fail "limits"
import json, socket, sys, time, urllib.error, urllib.request
port = int(sys.argv[1])
url = "http://127.0.0.1:%d" % port
def status(path, data=None):
    try:
        return urllib.request.urlopen(urllib.request.Request(url + path, data=data,
                                      method="POST" if data else "GET"), timeout=10).status
    except urllib.error.HTTPError as e:
        return e.code
assert status("/api/auth/login", b'{"email":"' + b"a" * 4096 + b'"}') == 413, "body limit"
assert status("/api/health") == 200
# An idle connection is closed after --timeout.
s = socket.create_connection(("127.0.0.1", port))
t0 = time.time()
s.settimeout(10)
assert s.recv(1) == b"", "idle connection not closed"
assert 1 <= time.time() - t0 <= 6, "idle connection closed after %.1f s" % (time.time() - t0)
# With --max-connections busy, a further connection is turned away...
idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
time.sleep(0.3)
c = socket.create_connection(("127.0.0.1", port))
c.settimeout(5)
c.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
try:
    got = c.recv(100)
except (ConnectionResetError, socket.timeout):
    got = b""
assert not got.startswith(b"HTTP/1.1 200"), "connection over the limit was served"
# ...and served again once the idle ones time out.
time.sleep(4)
assert status("/api/health") == 200, "not served after the idle connections closed"
print("limits: 413 over --max-body, idle close after --timeout, --max-connections enforced")
PY
srv_stop lim || fail "graceful shutdown (limits)"

# Slow clients: a request trickling in one header line a second is never idle, so only the
# whole-request deadline (--request-timeout) ends it; and one address gets at most
# --max-connections-per-ip connections.
srv_start slow "sqlite:$TMP/slow/server.db" "$TMP/slow" --timeout 2 --request-timeout 3 \
	--max-connections-per-ip 3 || fail "server with a request deadline did not start"
python3 - "$SRV_PORT_slow" <<'PY' || fail "slow clients"
import socket, sys, time, urllib.request
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
t0 = time.time()
closed = None
while time.time() - t0 < 12:
    time.sleep(1)
    try:
        s.sendall(b"X-Slow: %d\r\n" % int(time.time()))
        s.settimeout(0.05)
        if s.recv(100) == b"":
            closed = time.time() - t0
            break
    except socket.timeout:
        continue
    except OSError:
        closed = time.time() - t0
        break
assert closed is not None, "a request trickling in for 12 s was not cut off"
assert closed <= 7, "cut off after %.1f s (deadline 3 s)" % closed
# Three connections from one address are fine; a fourth is refused.
conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
time.sleep(0.3)
c = socket.create_connection(("127.0.0.1", port))
c.settimeout(3)
try:
    c.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
    got = c.recv(100)
except (ConnectionResetError, BrokenPipeError, socket.timeout):
    got = b""
assert not got.startswith(b"HTTP/1.1 200"), "a 4th connection from one address was served"
for x in conns:
    x.close()
time.sleep(0.5)
assert urllib.request.urlopen("http://127.0.0.1:%d/api/health" % port, timeout=10).status == 200
print("slow clients: cut off after %.1f s; per-address connection limit enforced" % closed)
PY
grep -q 'event=http_request_deadline' "$SRV_LOG_slow" || fail "no http_request_deadline log line"
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
run_api pg "$SG_PG_URL"
srv_log "PASS"
