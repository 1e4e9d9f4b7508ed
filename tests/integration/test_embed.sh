#!/usr/bin/env bash
# libsecureguard through its C API only (tests/embed/test_embed.c): in one namespace, one test
# process runs an engine on a TUN fd it opened and one on the userspace stack, and a third on
# the stack against wireguard-go; TCP both ways (sha256), UDP, stats, a live config change and
# sg_disconnect from another thread. SG_EMBED_VALGRIND=1 runs the program under valgrind
# (memcheck, leaks) instead: make check's integration.embed_valgrind (normal pass).
source "$(dirname "$0")/lib.sh"
sg_init em
prog=$SG_BIN/test_embed
[ -x "$prog" ] || fail "$prog not built"
sg_hosts 1
ns=${HOST[1]}
tun=${PFX}a
wggo=${PFX}g

# The TUN device "the app" opens: persistent, so the test program can attach to it by name.
ip -n "$ns" tuntap add dev "$tun" mode tun
ip -n "$ns" link set "$tun" mtu 1420 up
ip -n "$ns" addr add 10.77.0.1/24 dev "$tun"
ip -n "$ns" addr add fd00:77::1/64 dev "$tun" nodad

for k in A B C X G; do sg_keys "$k"; done
for k in D E; do
	(umask 077 && "$SG_BIN/secureguard" genkey --fips >"$SG_TMP/$k.fkey")
	printf -v "FPUB_$k" '%s' "$("$SG_BIN/secureguard" pubkey --fips <"$SG_TMP/$k.fkey")"
done
start_impl "$ns" "$wggo" wireguard-go
nsx "$ns" wg set "$wggo" private-key "$SG_TMP/G.key" listen-port 51879 \
	peer "$PUB_C" allowed-ips 10.78.0.2/32,fd00:78::2/128
ip -n "$ns" addr add 10.78.0.1/24 dev "$wggo"
ip -n "$ns" addr add fd00:78::1/64 dev "$wggo" nodad
ip -n "$ns" link set "$wggo" up

run=(env EMB_TUN="$tun" EMB_KEY_A="$(cat "$SG_TMP/A.key")" EMB_PUB_A="$PUB_A"
	EMB_KEY_B="$(cat "$SG_TMP/B.key")" EMB_PUB_B="$PUB_B"
	EMB_KEY_C="$(cat "$SG_TMP/C.key")" EMB_PUB_C="$PUB_C" EMB_PUB_X="$PUB_X"
	EMB_WGGO_PUB="$PUB_G" EMB_WGGO_PORT=51879
	EMB_FKEY_D="$(cat "$SG_TMP/D.fkey")" EMB_FPUB_D="$FPUB_D"
	EMB_FKEY_E="$(cat "$SG_TMP/E.fkey")" EMB_FPUB_E="$FPUB_E")
if [ "${SG_EMBED_VALGRIND:-0}" = 1 ]; then
	command -v valgrind >/dev/null || skip "missing tool: valgrind (scripts/deps.sh installs it)"
	run+=(valgrind --error-exitcode=3 --leak-check=full --show-leak-kinds=definite,indirect
		--errors-for-leak-kinds=definite,indirect --track-fds=no)
fi
rc=0
timeout 240 ip netns exec "$ns" "${run[@]}" "$prog" >"$SG_TMP/embed.log" 2>&1 || rc=$?
grep -E '^test_embed|ERROR SUMMARY|definitely lost|indirectly lost' "$SG_TMP/embed.log" || true
if [ "$rc" -ne 0 ]; then
	tail -n 80 "$SG_TMP/embed.log"
	fail "test_embed exited with status $rc"
fi
log "PASS"
