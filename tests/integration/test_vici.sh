#!/usr/bin/env bash
# The VICI module (src/vici) against strongSwan's own programs, both directions:
#  - our client drives a real charon 5.9: version, load-conn with nested sections and lists,
#    list-conns with its streamed events, get-conns, load-shared, unload-conn, stats, and the
#    answers to an unknown command and an unknown event (tests/tools/vici_probe.c client);
#  - strongSwan's swanctl drives our server on the project's event loop: `swanctl --version
#    --daemon` and `swanctl --list-conns` (a streamed event) print what we served, and a command
#    we do not serve fails cleanly in swanctl while our server stays up.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/swan_lib.sh"
sg_init vc
swan_require
PROBE=$SG_BIN/vici_probe
[ -x "$PROBE" ] || skip "$PROBE not built"

sg_hosts 1
swan_start "${HOST[1]}" a
out=$("$PROBE" client "$SWAN_URI_a") || {
	echo "$out"
	fail "vici_probe client against charon"
}
echo "$out"
assert_eq "$(grep -c '^ok' <<<"$out")" 12 "checks passed against charon"

# Our server, strongSwan's client. The probe runs in the foreground of a subshell; its socket
# lives in the test's private directory.
srv=$SG_TMP/srv
mkdir -m 700 "$srv"
"$PROBE" serve "unix://$srv/v.vici" >"$SG_TMP/serve.log" 2>&1 &
SPID=$!
wait_for 10 test -S "$srv/v.vici" || fail "vici_probe serve did not listen"
U="unix://$srv/v.vici"
v=$(swanctl --version --daemon --uri "$U")
assert_eq "$v" "strongSwan 0.1 vici-probe (Linux, test, x86_64)" "swanctl --version --daemon"
lc=$(swanctl --list-conns --uri "$U")
echo "$lc"
grep -q '^served: IKEv2' <<<"$lc" || fail "swanctl --list-conns does not show the served connection"
grep -q 'local:  10.7.0.0/16' <<<"$lc" || fail "swanctl --list-conns does not show the child's local-ts"
if swanctl --stats --uri "$U" >"$SG_TMP/stats.out" 2>&1; then
	fail "swanctl --stats succeeded against a server that does not serve it"
fi
grep -q 'stats request failed' "$SG_TMP/stats.out" || fail "swanctl --stats: unexpected output: $(cat "$SG_TMP/stats.out")"
kill -0 "$SPID" || fail "the server died"
grep -q 'request stats' "$SG_TMP/serve.log" || fail "the server did not see the stats request"
kill -TERM "$SPID"
wait "$SPID" || fail "vici_probe serve exited with an error"
[ ! -e "$srv/v.vici" ] || fail "the server left its socket behind"
log "PASS"
