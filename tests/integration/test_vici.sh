#!/usr/bin/env bash
# The VICI module (src/vici) against strongSwan's own programs, both directions:
#  - our client drives a real charon 5.9: version, load-conn with nested sections and lists,
#    list-conns with its streamed events, get-conns, load-shared, unload-conn, stats, and the
#    answers to an unknown command and an unknown event (tests/tools/vici_probe.c client);
#  - our swanctl.conf parser makes the messages swanctl makes: a file loaded through it into
#    charon lists exactly as the same file loaded with `swanctl --load-all`;
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

# Our swanctl.conf parser against swanctl's own: the same file loaded through each into charon
# must list the same connection.
cat >"$SG_TMP/swanctl.conf" <<'CONF'
# one connection and its secret, in the subset docs/IKE.md documents
connections {
  site {
    version = 2
    local_addrs = 192.0.2.1
    remote_addrs = 192.0.2.2
    proposals = aes256gcm16-prfsha384-ecp384, chacha20poly1305-prfsha256-x25519
    dpd_delay = 30s
    rekey_time = 2h
    local-1 {
      auth = psk
      id = a.example
    }
    remote {
      auth = psk
      id = "b.example"
    }
    children {
      net {
        local_ts = 10.1.0.0/16
        remote_ts = 10.2.0.0/16, 10.3.0.0/24
        esp_proposals = aes256gcm16-ecp384, chacha20poly1305
        mode = tunnel
        start_action = none
        rekey_time = 20m
        life_time = 30m
      }
    }
  }
}
secrets {
  ike-site {
    id-a = a.example
    id-b = b.example
    secret = "not a real secret"
  }
}
CONF
"$PROBE" loadconf "$SWAN_URI_a" "$SG_TMP/swanctl.conf" || fail "vici_probe loadconf into charon"
ours=$(swanctl --list-conns --uri "$SWAN_URI_a")
swanctl --load-all --uri "$SWAN_URI_a" --file "$SG_TMP/swanctl.conf" >"$SG_TMP/load.out" 2>&1 ||
	fail "swanctl --load-all: $(cat "$SG_TMP/load.out")"
theirs=$(swanctl --list-conns --uri "$SWAN_URI_a")
echo "$ours"
[ "$ours" = "$theirs" ] || fail "the connection loaded through our parser differs from swanctl's:
$(diff <(echo "$ours") <(echo "$theirs"))"
grep -q 'site: IKEv2' <<<"$ours" || fail "the parsed connection is not listed"

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
