#!/bin/bash
# shellcheck disable=SC2154 # SRV_<name> variables are set by srv_start (printf -v)
# The API contract (issue 23), with tools nobody here wrote, on SQLite and on PostgreSQL:
#  - tests/contract/negative.mjs: invalid input derived from docs/openapi.json for every
#    operation, parameter and body field; each gets a 4xx problem document naming the field
#    and changes nothing;
#  - a client generated from the document (openapi-typescript types, openapi-fetch), compiled
#    with tsc --strict, drives a create/list/delete round trip.
# (Every response of the API tests is checked against the document in test_server_api.sh.)
#
# Environment: SG_BIN, SG_SRC (ctest sets them).
set -u
SRV_TEST=test_server_contract
# shellcheck source=tests/server/server_lib.sh
. "$(dirname "$0")/../server/server_lib.sh"
# shellcheck source=tests/server/pg.sh
. "$SG_SRC/tests/server/pg.sh"

C=$SG_SRC/tests/contract
[ -x "$SG" ] || { srv_log "SKIP: $SG not built"; exit 77; }
command -v node >/dev/null || { srv_log "SKIP: missing node"; exit 77; }
[ -d "$C/node_modules/ajv" ] ||
	{ srv_log "SKIP: tests/contract has no node_modules (scripts/deps.sh runs npm ci there)"; exit 77; }
TMP=$(mktemp -d /tmp/sg-server-contract.XXXXXX)
cleanup() {
	srv_kill_all
	pg_stop
	rm -rf "$TMP" "$C/client/.out" "$C/client/api.d.ts"
}
trap cleanup EXIT
fail() { srv_fail "$@"; }

srv_admin_env root

# The generated client, compiled once.
node "$C/node_modules/openapi-typescript/bin/cli.js" "$SG_SRC/docs/openapi.json" \
	-o "$C/client/api.d.ts" >"$TMP/openapi-typescript.log" 2>&1 ||
	{ cat "$TMP/openapi-typescript.log"; fail "openapi-typescript could not read docs/openapi.json"; }
node "$C/node_modules/typescript/bin/tsc" -p "$C/client" --outDir "$C/client/.out" ||
	fail "the client generated from docs/openapi.json does not compile"

contract() {
	local name=$1 db=$2 urlv
	srv_start "$name" "$db" "$TMP/$name" --login-ip-limit 100000 || fail "server ($name) did not start"
	urlv="SRV_URL_$name"
	srv_log "schema-derived invalid input on $name"
	node "$C/negative.mjs" --doc "$SG_SRC/docs/openapi.json" --url "${!urlv}" \
		--email "$SG_ADMIN_EMAIL" --password "$SG_ADMIN_PASSWORD" ||
		fail "invalid input on $name"
	SG_URL=${!urlv} SG_EMAIL=$SG_ADMIN_EMAIL SG_PASSWORD=$SG_ADMIN_PASSWORD \
		node "$C/client/.out/roundtrip.js" || fail "generated client round trip on $name"
	"$SG" audit verify --db "$db" >/dev/null || fail "audit chain of $name"
	srv_stop "$name" || fail "graceful shutdown ($name)"
}

contract sqlite "sqlite:$TMP/sqlite/server.db"
rc=0
pg_start || rc=$?
[ "$rc" -eq 0 ] || fail "PostgreSQL did not start (scripts/deps.sh installs it)"
contract pg "$SG_PG_URL"
srv_log "PASS"
