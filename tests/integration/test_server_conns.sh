#!/bin/bash
# shellcheck disable=SC2154 # SRV_<name> variables are set by srv_start (printf -v)
# Connection exhaustion (issue 20, item 1): 1,000 idle and slow connections from 50 loopback
# addresses, reopened as soon as the server closes them, while normal requests run back to back
# from another address: every normal request must be served. Once with the default slots (what
# the machine carries), once with 200 slots, so that the flood is five times the slots and the
# oldest idle and unfinished connections must be reclaimed for the normal requests.
#
# Environment: SG_BIN, SG_SRC (ctest sets them).
set -u
SRV_TEST=test_server_conns
# shellcheck source=tests/server/server_lib.sh
. "$(dirname "$0")/../server/server_lib.sh"

[ -x "$SG" ] || { srv_log "SKIP: $SG not built"; exit 77; }
command -v python3 >/dev/null || { srv_log "SKIP: missing python3"; exit 77; }
TMP=$(mktemp -d /tmp/sg-server-conns.XXXXXX)
cleanup() {
	srv_kill_all
	rm -rf "$TMP"
}
trap cleanup EXIT
fail() { srv_fail "$@"; }
# The flood's own descriptors.
ulimit -n "$(ulimit -Hn)"

srv_admin_env root

flood() {
	local name=$1 urlv tok
	shift
	srv_start "$name" "sqlite:$TMP/$name/server.db" "$TMP/$name" --header-timeout 5 "$@" ||
		fail "server $name did not start"
	urlv="SRV_URL_$name"
	tok=$(srv_login "${!urlv}" "$SG_ADMIN_EMAIL" "$SG_ADMIN_PASSWORD") || fail "login ($name)"
	srv_log "flood against $name: 1000 idle and slow connections from 50 addresses"
	python3 "$SG_SRC/tests/server/conn_flood.py" --url "${!urlv}" --token "$tok" \
		--attackers 1000 --addresses 50 --seconds 12 ||
		fail "normal requests failed under the flood ($name)"
	srv_stop "$name" || fail "graceful shutdown ($name)"
}

flood auto
flood small --max-connections 200
lines=$(grep -c 'event=http_connection_refused' "$TMP/small/server.log" || true)
[ "$lines" -le 5 ] || fail "$lines refusal log lines in 12 s (they must be rate-limited)"
srv_log "PASS"
