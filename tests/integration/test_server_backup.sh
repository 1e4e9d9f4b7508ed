#!/bin/bash
# shellcheck disable=SC2154 # SRV_<name> variables are set by srv_start (printf -v)
# Backup, restore and the move from SQLite to PostgreSQL (issue 18), on a real PostgreSQL:
# - `secureguard server backup` of a running SQLite server while it takes writes; wipe; `restore`
#   verifies the audit chain; a server on the restored file has every network and client and
#   still opens their sealed keys (a config downloads);
# - refusals: a backup never replaces a file, a restore never replaces a database, a restore of
#   a backup whose audit chain was tampered with says so (exit 1);
# - `migrate-store --from sqlite:... --to postgresql://...`: rows compared table by table, the
#   chain verified, a server on PostgreSQL serves the same data; an occupied target is refused;
# - pg_dump backup of the running PostgreSQL server, restore into an empty database, verified.
#
# Environment: SG_BIN, SG_SRC. Exit 77: PostgreSQL binaries missing.
set -u
SRV_TEST=test_server_backup
# shellcheck source=tests/server/server_lib.sh
. "$(dirname "$0")/../server/server_lib.sh"
# shellcheck source=tests/server/pg.sh
. "$SG_SRC/tests/server/pg.sh"
[ -x "$SG" ] || { srv_log "SKIP: $SG not built"; exit 77; }
for t in python3 sqlite3 curl psql pg_dump pg_restore; do
	command -v "$t" >/dev/null || { srv_log "SKIP: missing tool $t"; exit 77; }
done
TMP=$(mktemp -d /tmp/sg-server-backup.XXXXXX)
chmod 755 "$TMP"
cleanup() {
	srv_kill_all
	[ -n "${WRITER:-}" ] && kill "$WRITER" 2>/dev/null
	pg_stop
	rm -rf "$TMP"
}
trap cleanup EXIT
fail() { srv_fail "$@"; }
srv_admin_env backup

pg_start
rc=$?
[ $rc -eq 77 ] && { srv_log "SKIP: PostgreSQL is not installed"; exit 77; }
[ $rc -eq 0 ] || fail "could not start PostgreSQL"
PGBASE="postgresql://sgapp@127.0.0.1:$SG_PG_PORT"
for d in sgmig sgrest; do
	pg_psql -d postgres -c "CREATE DATABASE $d OWNER sgapp" >/dev/null || fail "CREATE DATABASE $d"
done
KEY=$TMP/master.key

api() { # METHOD URL PATH [BODY]: prints the body; fails the test on a non-2xx answer
	curl -sf --max-time 20 -X "$1" -H "Authorization: Bearer $TOK" \
		-H 'Content-Type: application/json' ${4:+--data "$4"} "$2$3"
}
count_nets() { api GET "$1" "/api/networks?limit=500" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'; }

# ---- SQLite: data, an online backup under writes ---------------------------------------------
DB=$TMP/sq/server.db
srv_start sq "sqlite:$DB" "$TMP/sq" --key-file "$KEY" || fail "server sq"
U=$SRV_URL_sq
TOK=$(srv_login "$U" "$SG_ADMIN_EMAIL" "$SG_ADMIN_PASSWORD") || fail "login"
for i in 1 2 3; do
	nid=$(api POST "$U" /api/networks "{\"name\":\"n$i\",\"subnet4\":\"10.70.$i.0/24\"}" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])') || fail "network $i"
	for j in 1 2; do
		api POST "$U" /api/clients "{\"network_id\":\"$nid\",\"name\":\"c$i$j\"}" >/dev/null ||
			fail "client $i$j"
	done
done
CID=$(api GET "$U" "/api/clients?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["id"])')
api GET "$U" "/api/clients/$CID/config" >"$TMP/config.before" || fail "config before"
api POST "$U" /api/api-keys '{"name":"automation"}' >/dev/null || fail "api key"

# Writes keep coming while the backup is taken.
(
	for i in $(seq 1 60); do
		api POST "$U" /api/networks "{\"name\":\"w$i\",\"subnet4\":\"10.71.$i.0/24\"}" >/dev/null || exit 1
	done
) &
WRITER=$!
sleep 0.3
out=$("$SG" server backup "$TMP/sq.backup" --db "sqlite:$DB" 2>&1) || fail "backup: $out"
srv_log "$out"
wait "$WRITER" || fail "writes during the backup failed"
WRITER=
[ "$(stat -c %a "$TMP/sq.backup")" = 600 ] || fail "backup mode $(stat -c %a "$TMP/sq.backup")"
out=$("$SG" server backup "$TMP/sq.backup" --db "sqlite:$DB" 2>&1) &&
	fail "a second backup replaced the first"
[[ $out == *"exists: a backup never replaces a file"* ]] || fail "refusal: $out"
NETS=$(count_nets "$U")
srv_stop sq || fail "stop sq"

# ---- wipe, restore, verify ---------------------------------------------------------------------
rm -f "$DB" "$DB-wal" "$DB-shm"
out=$("$SG" server restore "$TMP/sq.backup" --db "sqlite:$DB" 2>&1) || fail "restore: $out"
[[ $out == *"audit chain intact"* ]] || fail "restore did not verify the chain: $out"
srv_log "$out"
out=$("$SG" server restore "$TMP/sq.backup" --db "sqlite:$DB" 2>&1) &&
	fail "a restore replaced a database"
[[ $out == *"restore into a new file"* ]] || fail "refusal: $out"
srv_start sq2 "sqlite:$DB" "$TMP/sq" --key-file "$KEY" || fail "server on the restored file"
U=$SRV_URL_sq2
TOK=$(srv_login "$U" "$SG_ADMIN_EMAIL" "$SG_ADMIN_PASSWORD") || fail "login after restore"
n=$(count_nets "$U")
# The snapshot holds the 3 networks and any of the concurrent ones committed before it.
[ "$n" -ge 3 ] && [ "$n" -le "$NETS" ] || fail "networks after restore: $n (before: 3..$NETS)"
api GET "$U" "/api/clients/$CID/config" >"$TMP/config.after" || fail "config after restore"
cmp -s "$TMP/config.before" "$TMP/config.after" || fail "the config differs after restore"
srv_stop sq2 || fail "stop sq2"

# A backup whose audit chain was changed behind the server's back.
cp "$TMP/sq.backup" "$TMP/forged.backup"
sqlite3 "$TMP/forged.backup" "DROP TRIGGER audit_log_no_update; UPDATE audit_log SET actor_name = 'mallory' WHERE id = 2" ||
	fail "forging"
out=$("$SG" server restore "$TMP/forged.backup" --db "sqlite:$TMP/forged.db" 2>&1)
rc=$?
[ $rc -eq 1 ] && [[ $out == *"the audit chain does not verify"* ]] ||
	fail "a forged backup restored with exit $rc: $out"
srv_log "forged backup: ${out##*: }"

# ---- SQLite -> PostgreSQL -----------------------------------------------------------------------
MIG="$PGBASE/sgmig"
out=$("$SG" server migrate-store --from "sqlite:$DB" --to "$MIG" 2>&1) || fail "migrate-store: $out"
[[ $out == *"compared row for row"*"audit chain intact"* ]] || fail "migrate-store output: $out"
srv_log "$out"
out=$("$SG" server migrate-store --from "sqlite:$DB" --to "$MIG" 2>&1) &&
	fail "migrate-store into an occupied database"
[[ $out == *"the target already holds data"* ]] || fail "refusal: $out"
"$SG" audit verify --db "$MIG" >/dev/null || fail "audit verify on the migrated database"
srv_start pg "$MIG" "$TMP/pg" --key-file "$KEY" || fail "server on PostgreSQL"
U=$SRV_URL_pg
TOK=$(srv_login "$U" "$SG_ADMIN_EMAIL" "$SG_ADMIN_PASSWORD") || fail "login on PostgreSQL"
[ "$(count_nets "$U")" = "$n" ] || fail "networks on PostgreSQL: $(count_nets "$U"), want $n"
api GET "$U" "/api/clients/$CID/config" >"$TMP/config.pg" || fail "config on PostgreSQL"
cmp -s "$TMP/config.before" "$TMP/config.pg" || fail "the config differs on PostgreSQL"
# New rows continue after the copied ids (identity columns), the chain stays one chain.
api POST "$U" /api/networks '{"name":"after-move","subnet4":"10.72.0.0/24"}' >/dev/null ||
	fail "a write on PostgreSQL after the move"

# ---- PostgreSQL: pg_dump of the running server, restore into an empty database -----------------
out=$("$SG" server backup "$TMP/pg.backup" --db "$MIG" 2>&1) || fail "pg backup: $out"
srv_log "$out"
NETS=$(count_nets "$U")
srv_stop pg || fail "stop pg"
out=$("$SG" server restore "$TMP/pg.backup" --db "$MIG" 2>&1) && fail "a restore into sgmig"
[[ $out == *"restore into a new, empty database"* ]] || fail "refusal: $out"
out=$("$SG" server restore "$TMP/pg.backup" --db "$PGBASE/sgrest" 2>&1) || fail "pg restore: $out"
[[ $out == *"audit chain intact"* ]] || fail "pg restore did not verify: $out"
srv_log "$out"
out=$("$SG" server restore "$TMP/sq.backup" --db "$PGBASE/sgrest" 2>&1) && fail "SQLite backup into PostgreSQL"
[[ $out == *"restore into the same engine"* ]] || fail "refusal: $out"
srv_start pg2 "$PGBASE/sgrest" "$TMP/pg2" --key-file "$KEY" || fail "server on the restored PostgreSQL"
U=$SRV_URL_pg2
TOK=$(srv_login "$U" "$SG_ADMIN_EMAIL" "$SG_ADMIN_PASSWORD") || fail "login on the restored PostgreSQL"
[ "$(count_nets "$U")" = "$NETS" ] || fail "networks after pg restore: $(count_nets "$U"), want $NETS"
api POST "$U" /api/networks '{"name":"after-restore","subnet4":"10.73.0.0/24"}' >/dev/null ||
	fail "a write after the pg restore"
srv_stop pg2 || fail "stop pg2"
"$SG" audit verify --db "$PGBASE/sgrest" >/dev/null || fail "audit chain after writes on the restored database"

srv_log "PASS"
