#!/bin/bash
# shellcheck disable=SC2154 # SRV_<name> variables are set by srv_start (printf -v)
# A rolling upgrade across one schema migration (issue 18; docs/OPERATIONS.md "Upgrading several
# servers"), against a real PostgreSQL on loopback:
# 1. two servers of the previous release (SG_OLD_BIN) on an empty database, taking writes;
# 2. a server of this release started beside them: it applies the newer migrations under the
#    lock and becomes ready, while the old ones go on answering reads and writes (a writer on
#    each server the whole time: no answer but 2xx);
# 3. the old servers replaced one at a time by new ones; an old server started again against the
#    migrated schema refuses, naming both versions;
# 4. every acknowledged write is present and audited, the audit chain verifies.
#
# SG_OLD_BIN: a `secureguard` of an earlier release. Without it the test builds the server of the
# commit before 891d606 (which added migration 11) from this repository's history, once, into a
# cache outside the build tree (scripts/old-release.sh, /var/cache/sg-old); skipped (77) only
# where the history is absent (an archive or a shallow clone).
# Environment: SG_BIN, SG_SRC.
set -u
SRV_TEST=test_server_upgrade
# shellcheck source=tests/server/server_lib.sh
. "$(dirname "$0")/../server/server_lib.sh"
# shellcheck source=tests/server/pg.sh
. "$SG_SRC/tests/server/pg.sh"
[ -x "$SG" ] || { srv_log "SKIP: $SG not built"; exit 77; }
if [ -z "${SG_OLD_BIN:-}" ]; then
	SG_OLD_BIN=$("$SG_SRC/scripts/old-release.sh" 891d606^)
	case $? in
	0) ;;
	2) srv_log "SKIP: SG_OLD_BIN not given and this tree has no history to build it from"; exit 77 ;;
	*) srv_fail "the earlier release did not build (scripts/old-release.sh)" ;;
	esac
fi
[ -x "$SG_OLD_BIN" ] || srv_fail "SG_OLD_BIN=$SG_OLD_BIN is not executable"
for t in python3 curl psql; do
	command -v "$t" >/dev/null || { srv_log "SKIP: missing tool $t"; exit 77; }
done
NEW_BIN=$SG
TMP=$(mktemp -d /tmp/sg-server-upgrade.XXXXXX)
cleanup() {
	local v
	[ -n "${WRITER:-}" ] && kill "$WRITER" 2>/dev/null
	for v in ${!SRV_PID_*}; do kill -KILL "${!v}" 2>/dev/null; done
	pg_stop
	rm -rf "$TMP"
}
trap cleanup EXIT
fail() { srv_fail "$@"; }
srv_admin_env upgrade
srv_need PostgreSQL pg_start
PG=$SG_PG_URL
OPTS=(--key-file "$TMP/cluster.key")
sqlx() { psql -X -q -t -A -v ON_ERROR_STOP=1 "$PG" -c "$1"; }
old() { SG=$SG_OLD_BIN srv_start "$@" "${OPTS[@]}"; }
new() { SG=$NEW_BIN srv_start "$@" "${OPTS[@]}"; }

old o1 "$PG" "$TMP/o1" || fail "old server o1"
old o2 "$PG" "$TMP/o2" || fail "old server o2"
V_OLD=$(sqlx "SELECT MAX(version) FROM schema_migrations")
srv_log "previous release: schema version $V_OLD"

# The writer: one client per server listed in $TMP/servers (re-read each round, so servers
# come and go), a network per request, until $TMP/stop exists. Every answer is recorded.
echo "$SRV_URL_o1 $SRV_URL_o2" >"$TMP/servers"
python3 - "$TMP" "$SG_ADMIN_EMAIL" "$SG_ADMIN_PASSWORD" <<'PY' &
import http.client, json, os, sys, time, urllib.parse
tmp, email, pw = sys.argv[1:4]
tokens, k, log = {}, 0, open(os.path.join(tmp, "answers"), "w")

def call(base, method, path, body, token=None):
    u = urllib.parse.urlsplit(base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    h = {"Content-Type": "application/json"}
    if token:
        h["Authorization"] = "Bearer " + token
    c.request(method, path, json.dumps(body), h)
    r = c.getresponse()
    d = r.read()
    c.close()
    return r.status, json.loads(d) if d else None

rounds = 0
while not os.path.exists(os.path.join(tmp, "stop")):
    rounds += 1
    with open(os.path.join(tmp, "round.tmp"), "w") as f:
        f.write("%d\n" % rounds)
    os.replace(os.path.join(tmp, "round.tmp"), os.path.join(tmp, "round"))
    for base in open(os.path.join(tmp, "servers")).read().split():
        if base not in tokens:
            st, doc = call(base, "POST", "/api/auth/login", {"email": email, "password": pw})
            if st != 200:
                log.write("login %s %d\n" % (base, st))
                continue
            tokens[base] = doc["access_token"]
        name = "up-%d" % k
        try:
            st, _ = call(base, "POST", "/api/networks", {"name": name, "fips_required": False,
                         "subnet4": "10.%d.%d.0/24" % (k >> 8 & 255, k & 255)}, tokens[base])
        except OSError as e:
            st = 0
        log.write("%s %s %d\n" % (name, base, st))
        log.flush()
        k += 1
    time.sleep(0.02)
PY
WRITER=$!
# written N: waits until N more answers were recorded (bounded: 60 s).
written() {
	local want=$(($(cat "$TMP/answers" 2>/dev/null | wc -l) + $1))
	for _ in $(seq 1 300); do
		[ "$(cat "$TMP/answers" 2>/dev/null | wc -l)" -ge "$want" ] && return 0
		sleep 0.2
	done
	fail "the writer made no progress"
}
# serve LIST...: the writer uses these servers from its next round on; returns once a round that
# began after the change has begun, so no request is still on a server taken out (bounded).
serve() {
	local r0
	echo "$*" >"$TMP/servers"
	r0=$(cat "$TMP/round" 2>/dev/null || echo 0)
	for _ in $(seq 1 300); do
		[ "$(cat "$TMP/round" 2>/dev/null || echo 0)" -ge $((r0 + 2)) ] && return 0
		sleep 0.1
	done
	fail "the writer does not go round"
}
written 20

# ---- a new server beside the old ones ----------------------------------------------------------
new n1 "$PG" "$TMP/n1" || fail "new server n1"
V_NEW=$(sqlx "SELECT MAX(version) FROM schema_migrations")
[ "$V_NEW" -gt "$V_OLD" ] || fail "the new server did not migrate ($V_OLD -> $V_NEW)"
curl -sf "$SRV_URL_n1/api/ready" >/dev/null || fail "n1 not ready"
serve "$SRV_URL_o1" "$SRV_URL_o2" "$SRV_URL_n1"
written 30
srv_log "n1 migrated $V_OLD -> $V_NEW; o1, o2 and n1 serve side by side"

# ---- the old ones replaced one at a time -------------------------------------------------------
serve "$SRV_URL_o2" "$SRV_URL_n1"
srv_stop o1 || fail "stop o1"
new n2 "$PG" "$TMP/n2" || fail "new server n2"
serve "$SRV_URL_o2" "$SRV_URL_n1" "$SRV_URL_n2"
written 30
serve "$SRV_URL_n1" "$SRV_URL_n2"
srv_stop o2 || fail "stop o2"
new n3 "$PG" "$TMP/n3" || fail "new server n3"
serve "$SRV_URL_n1" "$SRV_URL_n2" "$SRV_URL_n3"
written 30
touch "$TMP/stop"
wait "$WRITER"
WRITER=
out=$(timeout 30 "$SG_OLD_BIN" server --listen 127.0.0.1:0 --data-dir "$TMP/o3" --db "$PG" \
	"${OPTS[@]}" 2>&1)
[[ $out == *"database schema version $V_NEW is newer than this server knows ($V_OLD)"* ]] ||
	fail "an old server against the migrated schema: $out"
srv_log "old servers replaced one by one; an old one started again refuses: ${out##*: database}"

# ---- nothing lost, no error, one chain ----------------------------------------------------------
python3 - "$TMP/answers" "$PG" <<'PY' || fail "writes across the upgrade"
import subprocess, sys
answers = [l.split() for l in open(sys.argv[1]) if not l.startswith("login")]
bad = [a for a in answers if a[2] not in ("201",)]
names = set(subprocess.run(["psql", "-X", "-q", "-t", "-A", sys.argv[2], "-c",
                            "SELECT name FROM networks"], capture_output=True, text=True,
                           check=True).stdout.split())
lost = [a[0] for a in answers if a[2] == "201" and a[0] not in names]
by = {}
for a in answers:
    by[a[1]] = by.get(a[1], 0) + 1
print("[test_server_upgrade] %d writes, %d not 201 (%s), %d acknowledged but missing; per "
      "server %s" % (len(answers), len(bad), bad[:3], len(lost), sorted(by.values())))
sys.exit(1 if bad or lost else 0)
PY
r=$(sqlx "SELECT (SELECT COUNT(*) FROM networks) || ' ' || (SELECT COUNT(*) FROM audit_log WHERE event_type = 'network.created')")
read -r nets created <<<"$r"
[ "$nets" = "$created" ] || fail "$nets networks, $created network.created audit rows"
for s in n1 n2 n3; do srv_stop "$s" || fail "stop $s"; done
"$NEW_BIN" audit verify --db "$PG" >"$TMP/verify" 2>&1 || { cat "$TMP/verify"; fail "audit verify"; }
srv_log "$nets networks, each audited; $(cat "$TMP/verify")"
srv_log "PASS"
