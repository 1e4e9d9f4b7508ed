#!/bin/bash
# wg-quick drives the daemon as it drives wireguard-go: WG_QUICK_USERSPACE_IMPLEMENTATION names
# it, wg-quick starts it without -f (it must detach and leave its UAPI socket behind), configures
# it with `wg setconf`, adds addresses, MTU and routes. The tunnel then reaches a wireguard-go
# peer on host 2; `wg-quick down` deletes the link and the daemon must notice and exit.
# shellcheck source=tests/integration/lib.sh disable=SC2154 # PUB_<name> come from sg_keys
. "$(dirname "$0")/lib.sh"
sg_init wq
command -v wg-quick >/dev/null || skip "missing tool: wg-quick"
pair_init
bin=$(sg_binary "$SG_IMPL")

up "$B" "$IB" wireguard-go b "$PORT" 2
wg_peer "$B" "$IB" "$PUB_a" "$(in4 1)/32,$(in6 1)/128" endpoint "$(out4 1):$PORT"

# wg-quick takes the interface name from the file name. No DNS= (that would need resolvconf),
# no /0 allowed IPs (that would add policy routing to the namespace).
mkdir "$SG_TMP/wq"
conf=$SG_TMP/wq/$IA.conf
cat >"$conf" <<CONF
[Interface]
PrivateKey = $(cat "$SG_TMP/a.key")
ListenPort = $PORT
Address = $(in4 1)/24, $(in6 1)/64

[Peer]
PublicKey = $PUB_b
AllowedIPs = $(in4 2)/32, $(in6 2)/128
Endpoint = $(out4 2):$PORT
CONF
chmod 600 "$conf"

log "wg-quick up $conf with WG_QUICK_USERSPACE_IMPLEMENTATION=$bin"
rc=0
sg_san_env "$IA"
timeout 30 ip netns exec "$A" env WG_QUICK_USERSPACE_IMPLEMENTATION="$bin" LOG_LEVEL=debug \
	"${SAN_ENV[@]}" wg-quick up "$conf" >"$SG_TMP/$IA.log" 2>&1 || rc=$?
grep '^\[' "$SG_TMP/$IA.log" || true
adopt_impl "$A" "$IA" "$SG_IMPL" "$SG_TMP/$IA.log"
[ "$rc" -eq 0 ] || fail "wg-quick up exited with status $rc"
check_alive "$IA"
log "daemon detached, pid ${D_PID[$IA]}"

addrs=$(ip -n "$A" -brief addr show dev "$IA")
log "ip addr: $addrs"
case $addrs in *"$(in4 1)/24"*"$(in6 1)/64"*) ;; *) fail "wg-quick did not add both addresses: $addrs" ;; esac
case $addrs in *UP* | *UNKNOWN*) ;; *) fail "$IA is not up: $addrs" ;; esac
mtu=$(ip -n "$A" link show dev "$IA" | sed -n 's/.* mtu \([0-9]*\).*/\1/p')
assert_eq "$mtu" 1420 "MTU wg-quick set from the 1500-byte outer link"
assert_eq "$(nsx "$A" wg show "$IA" listen-port)" "$PORT" "listen port from the config"
assert_eq "$(nsx "$A" wg show "$IA" peers)" "$PUB_b" "peer from the config"
assert_eq "$(wg_dump_field "$A" "$IA" "$PUB_b" allowed-ips)" "$(in4 2)/32,$(in6 2)/128" "allowed IPs from the config"
nsx "$A" wg show "$IA"

wait_ping "$A" "$(in4 2)" 10
assert_ping "$A" "$(in6 2)"
assert_ping "$B" "$(in4 1)"
assert_ping "$B" "$(in6 1)"
has_handshake "$A" "$IA" "$PUB_b" || fail "no handshake in wg show after pings"
tcp_transfer "$B" "$A" "$(in4 1)" 1
check_alive "$IA"

log "wg-quick down $conf"
pid=${D_PID[$IA]}
rc=0
timeout 30 ip netns exec "$A" wg-quick down "$conf" || rc=$?
[ "$rc" -eq 0 ] || fail "wg-quick down exited with status $rc"
sg_no_link "$A" "$IA" || fail "$IA still exists after wg-quick down"
wait_for 10 sg_gone "$pid" || fail "daemon (pid $pid) still running 10 s after wg-quick down"
D_STOPPED[$IA]=1
wait_for 5 test ! -e "$SG_RUN_DIR/$IA.sock" || fail "daemon exited but left $SG_RUN_DIR/$IA.sock behind"
check_log_clean "$IA"
log "daemon exited and removed its socket"
finish
