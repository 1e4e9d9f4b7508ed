#!/bin/bash
# The management server's storage layer against a real PostgreSQL 15: starts a throwaway server
# on loopback (tests/server/pg.sh) and runs the db and audit unit tests on it (they run on
# SQLite too, as always). When the CLI has the `audit` command, also checks
# `secureguard audit verify --db` end to end: a fresh database verifies (exit 0), a row forged
# behind the server's back is named (exit 1).
#
# Environment: SG_BIN (build bin dir, set by ctest), SG_SRC (source dir).
# Exit 77: the PostgreSQL server binaries are not installed.
set -u

SG_SRC=${SG_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
SG_BIN=${SG_BIN:-$SG_SRC/build/bin}
FAILS=0

log() { printf '[test_server_db] %s\n' "$*"; }
fail() {
	log "FAIL: $*"
	FAILS=$((FAILS + 1))
}

for t in test_db test_audit; do
	[ -x "$SG_BIN/$t" ] || { log "SKIP: $SG_BIN/$t not built"; exit 77; }
done

# shellcheck source-path=SCRIPTDIR source=../server/pg.sh
. "$SG_SRC/tests/server/pg.sh"
pg_start
rc=$?
[ $rc -eq 77 ] && { log "SKIP: PostgreSQL is not installed"; exit 77; }
[ $rc -eq 0 ] || { log "FAIL: could not start PostgreSQL"; exit 1; }
trap pg_stop EXIT

WORK=$(mktemp -d /tmp/sg-dbtest-run.XXXXXX)
trap 'pg_stop; rm -rf "$WORK"' EXIT
chmod 755 "$WORK"

for t in test_db test_audit; do
	log "running $t on SQLite and PostgreSQL"
	if (cd "$WORK" && timeout 240 "$SG_BIN/$t") >"$WORK/$t.log" 2>&1; then
		n=$(grep -c '^\[==========\] .* run\.' "$WORK/$t.log")
		[ "$n" -eq 2 ] || fail "$t: expected a SQLite and a PostgreSQL run, saw $n"
		log "$t: ok ($(grep -c '^\[       OK \]' "$WORK/$t.log") passed)"
	else
		fail "$t failed:"
		cat "$WORK/$t.log"
	fi
done

SG=$SG_BIN/secureguard
if [ -x "$SG" ] && "$SG" audit --help >/dev/null 2>&1; then
	pg_psql -d postgres -c "CREATE DATABASE sgcli OWNER sgapp" ||
		fail "creating database sgcli"
	URL="postgresql://sgapp@127.0.0.1:$SG_PG_PORT/sgcli"
	out=$("$SG" audit verify --db "$URL" 2>&1)
	rc=$?
	if [ $rc -ne 0 ] || [[ $out != *"audit chain intact: 0 rows"* ]]; then
		fail "audit verify on an empty database: exit $rc: $out"
	fi
	# A row inserted directly, with a made-up hash, as someone bypassing the server would.
	pg_psql -d sgcli -c "INSERT INTO audit_log (id, ts, event_type,
		prev_hash, hash) VALUES (1, 0, 'forged', repeat('0', 96), repeat('a', 96))" ||
		fail "inserting a forged row"
	out=$("$SG" audit verify --db "$URL" 2>&1)
	rc=$?
	if [ $rc -ne 1 ] || [[ $out != *"audit chain broken at row 1: hash mismatch"* ]]; then
		fail "audit verify on a forged row: exit $rc: $out"
	fi
	out=$("$SG" audit verify --db "postgresql://sgapp@127.0.0.1:$SG_PG_PORT/nosuchdb" 2>&1)
	rc=$?
	[ $rc -eq 2 ] || fail "audit verify on a missing database: exit $rc: $out"
	log "secureguard audit verify --db: ok"
else
	log "secureguard has no audit command yet: CLI check skipped"
fi

[ $FAILS -eq 0 ] || { log "$FAILS failure(s)"; exit 1; }
log "PASS"
