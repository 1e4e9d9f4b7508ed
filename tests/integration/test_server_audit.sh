#!/bin/bash
# shellcheck disable=SC2154 # SRV_<name> variables are set by srv_start (printf -v)
# The audit log's defences, on both engines: the triggers refuse UPDATE and DELETE; a row changed
# directly in the database after dropping them (as the database owner could) is caught by
# `secureguard audit verify --db`, which names the row; an export taken before the change still
# verifies offline and one taken after it does not.
#
# Environment: SG_BIN, SG_SRC. Exit 77: PostgreSQL missing (the SQLite part has then passed).
set -u
SRV_TEST=test_server_audit
# shellcheck source=tests/server/server_lib.sh
. "$(dirname "$0")/../server/server_lib.sh"
# shellcheck source=tests/server/pg.sh
. "$SG_SRC/tests/server/pg.sh"
[ -x "$SG" ] || { srv_log "SKIP: $SG not built"; exit 77; }
for t in python3 sqlite3 curl; do
	command -v "$t" >/dev/null || { srv_log "SKIP: missing tool $t"; exit 77; }
done
TMP=$(mktemp -d /tmp/sg-server-audit.XXXXXX)
cleanup() {
	srv_kill_all
	pg_stop
	rm -rf "$TMP"
}
trap cleanup EXIT
fail() { srv_fail "$@"; }
srv_admin_env audit

sqlx() {
	case $1 in
	sqlite:*) sqlite3 "${1#sqlite:}" "$2" ;;
	*) psql -X -q -t -A -v ON_ERROR_STOP=1 "$1" -c "$2" ;;
	esac
}

tamper_run() {
	local name=$1 db=$2 tok url out t
	srv_start "$name" "$db" "$TMP/$name" || fail "server ($name) did not start"
	url="SRV_URL_$name"
	url=${!url}
	tok=$(srv_login "$url" "$SG_ADMIN_EMAIL" "$SG_ADMIN_PASSWORD") || fail "login ($name)"
	for i in 1 2 3; do
		curl -sf -o /dev/null -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
			--data "{\"name\":\"n$i\",\"subnet4\":\"10.7.$i.0/24\"}" "$url/api/networks" ||
			fail "network $i ($name)"
	done
	curl -sf -H "Authorization: Bearer $tok" "$url/api/audit/export?format=json" >"$TMP/$name.before.json" ||
		fail "export ($name)"
	srv_stop "$name" || fail "stop ($name)"

	"$SG" audit verify --db "$db" || fail "intact chain reported broken ($name)"
	# The triggers refuse changes.
	sqlx "$db" "UPDATE audit_log SET actor_name = 'mallory' WHERE id = 3" >/dev/null 2>&1 &&
		fail "UPDATE of audit_log allowed by the triggers ($name)"
	sqlx "$db" "DELETE FROM audit_log WHERE id = 3" >/dev/null 2>&1 &&
		fail "DELETE from audit_log allowed by the triggers ($name)"
	# Drop them (the owner can), then change row 3.
	case $db in
	sqlite:*)
		for t in $(sqlx "$db" "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'"); do
			sqlx "$db" "DROP TRIGGER $t" || fail "drop trigger $t"
		done
		;;
	*)
		for t in $(sqlx "$db" "SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_log'::regclass AND NOT tgisinternal"); do
			sqlx "$db" "DROP TRIGGER $t ON audit_log" || fail "drop trigger $t"
		done
		;;
	esac
	sqlx "$db" "UPDATE audit_log SET actor_name = 'mallory' WHERE id = 3" || fail "tampering UPDATE ($name)"
	rc=0
	out=$("$SG" audit verify --db "$db" 2>&1) || rc=$?
	srv_log "$name after tampering: $out (status $rc)"
	[ "$rc" -eq 1 ] || fail "audit verify --db did not report the changed row (status $rc) ($name)"
	case $out in *"row 3"*) ;; *) fail "audit verify does not name row 3: $out" ;; esac
	"$SG" audit verify --file "$TMP/$name.before.json" >/dev/null ||
		fail "the export taken before the change no longer verifies ($name)"

	# An export taken now carries the changed row and fails offline too.
	srv_start "${name}2" "$db" "$TMP/$name" || fail "restart ($name)"
	url="SRV_URL_${name}2"
	url=${!url}
	tok=$(srv_login "$url" "$SG_ADMIN_EMAIL" "$SG_ADMIN_PASSWORD") || fail "login ($name)"
	curl -sf -H "Authorization: Bearer $tok" "$url/api/audit/export?format=csv" >"$TMP/$name.after.csv" ||
		fail "export after the change ($name)"
	srv_stop "${name}2" || fail "stop ($name)"
	"$SG" audit verify --file "$TMP/$name.after.csv" >/dev/null 2>&1 &&
		fail "the CSV export of a tampered chain verifies ($name)"
	srv_log "$name: tampering detected"
}

tamper_run sqlite "sqlite:$TMP/sqlite/server.db"
rc=0
pg_start || rc=$?
if [ "$rc" -eq 77 ]; then
	srv_log "SKIP: PostgreSQL not installed; the SQLite part passed"
	exit 77
fi
[ "$rc" -eq 0 ] || fail "PostgreSQL did not start"
tamper_run pg "$SG_PG_URL"
srv_log "PASS"
