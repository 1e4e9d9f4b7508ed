#!/bin/bash
# shellcheck disable=SC2154 # SRV_<name> variables are set by srv_start (printf -v)
# The server killed with SIGKILL in the middle of writes loses nothing it acknowledged and leaves
# nothing half made. Eight writers create clients in a loop, recording every id the server
# answered 201 for; the server is killed while they run, then restarted on the same database:
# every acknowledged client is there, every client in the database has its keys, addresses and
# its client.created audit row (same transaction), and the audit chain verifies. Run on SQLite
# and on PostgreSQL (tests/server/pg.sh).
#
# Environment: SG_BIN, SG_SRC. Exit 77: PostgreSQL missing (the SQLite part has then passed).
set -u
SRV_TEST=test_server_crash
# shellcheck source=tests/server/server_lib.sh
. "$(dirname "$0")/../server/server_lib.sh"
# shellcheck source=tests/server/pg.sh
. "$SG_SRC/tests/server/pg.sh"
[ -x "$SG" ] || { srv_log "SKIP: $SG not built"; exit 77; }
command -v python3 >/dev/null || { srv_log "SKIP: python3 missing"; exit 77; }
TMP=$(mktemp -d /tmp/sg-server-crash.XXXXXX)
cleanup() {
	srv_kill_all
	pg_stop
	rm -rf "$TMP"
}
trap cleanup EXIT
fail() { srv_fail "$@"; }
# The writers create clients until the kill: more than the free edition's 250 (docs/SERVER.md
# "License keys"), so the server runs with a test-key license (test builds only, as make check's).
"$SG" license sign --key "$SG_SRC/tests/license/test-vendor.key" --id T-crash --customer "Crash test" \
	--seats 1000000 --features ha --not-before -1 --expiry +3650 --out "$TMP/crash.lic" ||
	{ srv_log "SKIP: not a test build (cmake -DSG_LICENSE_TEST_KEY=ON, as make check does)"; exit 77; }
srv_admin_env crash

# load URL TOKEN NETWORK OUT: writers until the server goes away; acknowledged ids to OUT.
load() {
	python3 - "$@" <<'PY'
import json, sys, threading, urllib.request
url, tok, net, out = sys.argv[1:5]
lock = threading.Lock()
f = open(out, "w")
def writer(w):
    i = 0
    while True:
        i += 1
        req = urllib.request.Request(url + "/api/clients", method="POST",
            data=json.dumps({"network_id": net, "name": "w%d-%d" % (w, i)}).encode(),
            headers={"Authorization": "Bearer " + tok, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                doc = json.load(r)
        except Exception:
            return  # the server is gone (or refused): stop writing
        with lock:
            f.write(doc["id"] + "\n")
            f.flush()
ts = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
for t in ts: t.start()
for t in ts: t.join()
PY
}

# query DB SQL: rows as text lines (sqlite3 CLI or psql).
query() {
	case $1 in
	sqlite:*) sqlite3 "${1#sqlite:}" "$2" ;;
	*) psql -X -q -t -A -v ON_ERROR_STOP=1 "$1" -c "$2" ;;
	esac
}

crash_run() {
	local name=$1 db=$2 net tok n acked missing bad
	srv_start "$name" "$db" "$TMP/$name" --license "$TMP/crash.lic" || fail "server ($name) did not start"
	local urlv="SRV_URL_$name"
	tok=$(srv_login "${!urlv}" "$SG_ADMIN_EMAIL" "$SG_ADMIN_PASSWORD") || fail "login ($name)"
	net=$(curl -sf -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
		--data '{"name":"crash","subnet4":"10.60.0.0/16","subnet6":"fd00:60::/64","fips_required":false}' \
		"${!urlv}/api/networks" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])') ||
		fail "network ($name)"
	: >"$TMP/$name.acked"
	load "${!urlv}" "$tok" "$net" "$TMP/$name.acked" &
	local lpid=$!
	# Kill once writes are flowing, at a moment unrelated to any request.
	for _ in $(seq 1 100); do
		[ "$(wc -l <"$TMP/$name.acked" 2>/dev/null || echo 0)" -ge 40 ] && break
		sleep 0.1
	done
	sleep 0.$((RANDOM % 10))
	srv_kill "$name"
	wait "$lpid"
	acked=$(sort -u "$TMP/$name.acked" | wc -l)
	[ "$acked" -ge 40 ] || fail "only $acked clients acknowledged before the kill ($name)"
	n=$(query "$db" "SELECT COUNT(*) FROM clients")
	srv_log "$name: $acked acknowledged, $n in the database after SIGKILL"

	srv_start "${name}2" "$db" "$TMP/$name" --license "$TMP/crash.lic" || fail "restart after SIGKILL ($name)"
	urlv="SRV_URL_${name}2"
	tok=$(srv_login "${!urlv}" "$SG_ADMIN_EMAIL" "$SG_ADMIN_PASSWORD") || fail "login after restart"
	missing=0
	while read -r id; do
		curl -sf -o /dev/null -H "Authorization: Bearer $tok" "${!urlv}/api/clients/$id" ||
			missing=$((missing + 1))
	done < <(sort -u "$TMP/$name.acked")
	[ "$missing" -eq 0 ] || fail "$missing acknowledged clients lost ($name)"
	bad=$(query "$db" "SELECT COUNT(*) FROM clients WHERE public_key_classic IS NULL OR
		private_key_classic_enc IS NULL OR public_key_fips IS NULL OR
		private_key_fips_enc IS NULL OR assigned_ip4 IS NULL OR assigned_ip6 IS NULL")
	[ "$bad" -eq 0 ] || fail "$bad clients without keys or addresses ($name)"
	bad=$(query "$db" "SELECT COUNT(*) FROM clients c WHERE NOT EXISTS (SELECT 1 FROM audit_log a
		WHERE a.event_type = 'client.created' AND a.resource_id = c.id)")
	[ "$bad" -eq 0 ] || fail "$bad clients without their client.created audit row ($name)"
	bad=$(query "$db" "SELECT COUNT(*) FROM audit_log a WHERE a.event_type = 'client.created' AND
		NOT EXISTS (SELECT 1 FROM clients c WHERE c.id = a.resource_id)")
	[ "$bad" -eq 0 ] || fail "$bad client.created audit rows without their client ($name)"
	"$SG" audit verify --db "$db" || fail "audit chain after SIGKILL ($name)"
	# Still writable after the crash, with addresses that do not collide.
	curl -sf -o /dev/null -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
		--data "{\"network_id\":\"$net\",\"name\":\"after\"}" "${!urlv}/api/clients" ||
		fail "client creation after the restart ($name)"
	srv_stop "${name}2" || fail "graceful shutdown after the restart ($name)"
	srv_log "$name: no acknowledged client lost, no half-made client"
}

crash_run sqlite "sqlite:$TMP/sqlite/server.db"
rc=0
pg_start || rc=$?
if [ "$rc" -eq 77 ]; then
	srv_log "SKIP: PostgreSQL not installed; the SQLite part passed"
	exit 77
fi
[ "$rc" -eq 0 ] || fail "PostgreSQL did not start"
crash_run pg "$SG_PG_URL"
srv_log "PASS"
