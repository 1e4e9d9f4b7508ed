#!/bin/bash
# shellcheck disable=SC2154 # SRV_<name> variables are set by srv_start (printf -v)
# The management server under attack (issue 20; tests/server/attack_test.py): the audit table
# append-only on every SQL path and verified byte for byte, public keys unique in a network
# (and the migration that resolves duplicates of older databases), revocation reaching access
# tokens, account lockout per (account, source) with backoff, Retry-After on every 429 and
# counted rather than logged refusals, strict JWTs, temporary access links never built from the
# Host header. Run once on SQLite and once on a throwaway PostgreSQL (tests/server/pg.sh).
#
# Environment: SG_BIN, SG_SRC (ctest sets them). Exit 77: PostgreSQL missing (the SQLite part
# has then passed) or no python3.
set -u
SRV_TEST=test_server_attack
# shellcheck source=tests/server/server_lib.sh
. "$(dirname "$0")/../server/server_lib.sh"
# shellcheck source=tests/server/pg.sh
. "$SG_SRC/tests/server/pg.sh"

[ -x "$SG" ] || { srv_log "SKIP: $SG not built"; exit 77; }
command -v python3 >/dev/null || { srv_log "SKIP: missing tool python3"; exit 77; }
TMP=$(mktemp -d /tmp/sg-server-attack.XXXXXX)
cleanup() {
	srv_kill_all
	pg_stop
	rm -rf "$TMP"
}
trap cleanup EXIT
fail() { srv_fail "$@"; }

srv_admin_env root
# attack_test.py's LOCKOUT_SECS is --lockout-secs (short, to see the backoff double).
OPTS=(--lockout-secs 6)

attack() {
	local name=$1 db=$2 phase=$3 urlv logv
	shift 3
	urlv="SRV_URL_$name"
	logv="SRV_LOG_$name"
	python3 "$SG_SRC/tests/server/attack_test.py" --url "${!urlv}" --db "$db" \
		--admin "$SG_ADMIN_EMAIL" --password "$SG_ADMIN_PASSWORD" --sg "$SG" \
		--data-dir "$TMP/$name" --server-log "${!logv}" --phase "$phase" \
		--state "$TMP/$name.state" "$@" || {
		tail -n 40 "${!logv}"
		fail "attack tests ($phase) on $name"
	}
}

run_attack() {
	local name=$1 db=$2
	srv_start "$name" "$db" "$TMP/$name" "${OPTS[@]}" || fail "server ($name) did not start"
	srv_log "attack tests on $name"
	attack "$name" "$db" main
	attack "$name" "$db" dup-prepare
	srv_stop "$name" || fail "graceful shutdown ($name)"
	# The restart applies schema migration 4 to a database holding duplicate keys.
	srv_start "$name" "$db" "$TMP/$name" "${OPTS[@]}" --public-url https://vpn.example.com/ ||
		fail "server ($name) did not restart"
	attack "$name" "$db" dup-check --public-url https://vpn.example.com
	"$SG" audit verify --db "$db" || fail "audit chain of $name after the attack tests"
	srv_stop "$name" || fail "graceful shutdown ($name)"
}

run_attack sqlite "sqlite:$TMP/sqlite/server.db"

# Request bodies against a 4 MiB budget.
srv_start budget "sqlite:$TMP/budget/server.db" "$TMP/budget" --body-memory 4194304 ||
	fail "server with a 4 MiB body budget did not start"
attack budget "sqlite:$TMP/budget/server.db" body-budget
srv_stop budget || fail "graceful shutdown (budget)"

rc=0
pg_start || rc=$?
if [ "$rc" -eq 77 ]; then
	srv_log "SKIP: PostgreSQL not installed; the SQLite part passed"
	exit 77
fi
[ "$rc" -eq 0 ] || fail "PostgreSQL did not start"
run_attack pg "$SG_PG_URL"
srv_log "PASS"
