#!/bin/bash
# Crash recovery: secureguardd (A) is killed with SIGKILL while its tunnel to wireguard-go (B) is
# up, then started again under the same name (its old UAPI socket is still on disk) and given the
# configuration saved with `wg showconf`. First A sends first and must re-handshake at once; then,
# after a second kill and a restart in daemon mode, B sends first: B still holds the old session,
# A drops B's data for the unknown index, and B's timers start a new handshake after
# KEEPALIVE_TIMEOUT + REKEY_TIMEOUT = 15 s (whitepaper section 6.4).
# shellcheck source=tests/integration/lib.sh disable=SC2154 # PUB_<name> come from sg_keys
. "$(dirname "$0")/lib.sh"
sg_init rs
pair_init

pair_up "$SG_IMPL" wireguard-go a
assert_ping "$B" "$(in6 1)"
nsx "$A" wg showconf "$IA" >"$SG_TMP/saved.conf"
grep -q "^PublicKey = $PUB_b" "$SG_TMP/saved.conf" || fail "wg showconf lacks peer B: $(cat "$SG_TMP/saved.conf")"

# restart MODE: kill -9, check the stale socket, start, restore config and addresses.
restart() {
	kill_impl "$IA"
	if [ -S "$SG_RUN_DIR/$IA.sock" ]; then
		log "stale $SG_RUN_DIR/$IA.sock left by the killed daemon (expected after SIGKILL)"
	fi
	start_impl "$A" "$IA" "$SG_IMPL" "$1"
	nsx "$A" wg setconf "$IA" "$SG_TMP/saved.conf"
	nsx "$A" wg showconf "$IA" >"$SG_TMP/restored.conf"
	diff -u "$SG_TMP/saved.conf" "$SG_TMP/restored.conf" ||
		fail "wg showconf after setconf differs from the saved configuration"
	ip -n "$A" addr add "$(in4 1)/24" dev "$IA"
	ip -n "$A" addr add "$(in6 1)/64" dev "$IA" nodad
	ip -n "$A" link set "$IA" up
}

log "=== SIGKILL, restart in the foreground, A sends first ==="
restart fg
wait_ping "$A" "$(in4 2)" 10
assert_ping "$B" "$(in4 1)"
assert_ping "$A" "$(in6 2)"
has_handshake "$A" "$IA" "$PUB_b" || fail "A has no handshake after the restart"

log "=== SIGKILL, restart detached (no -f), B sends first ==="
restart daemon
start=$SECONDS
wait_ping "$B" "$(in4 1)" 25
log "B's traffic flows again after $((SECONDS - start)) s"
assert_ping "$A" "$(in6 2)"
check_alive "$IA"
finish
