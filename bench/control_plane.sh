#!/bin/bash
# Control-plane benchmark: time `wg setconf` of a config with N peers and `wg show` of the result,
# against secureguardd and against wireguard-go in the same run (root; build first with `make`).
#
#   bench/control_plane.sh [PEERS]        default 5000
set -eu
N=${1:-5000}
SRC=$(cd "$(dirname "$0")/.." && pwd)
SGD=${SG_BIN:-$SRC/build/bin}/secureguardd
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root" >&2; exit 1; }
[ -x "$SGD" ] || { echo "bench: $SGD missing; run make first" >&2; exit 1; }
NS=sgcp$$ IF=sgcp$$ TMP=$(mktemp -d)
cleanup() {
	[ -n "${PID:-}" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true
	ip netns del "$NS" 2>/dev/null || true
	rm -rf "$TMP" "/var/run/wireguard/$IF.sock"
}
trap cleanup EXIT
ip netns add "$NS"

python3 - "$N" "$(wg genkey)" >"$TMP/wg.conf" <<'PY'
import base64, os, sys
n, priv = int(sys.argv[1]), sys.argv[2]
print("[Interface]\nPrivateKey = %s\nListenPort = 51820\n" % priv)
for i in range(n):
    pub = base64.b64encode(os.urandom(32)).decode()
    print("[Peer]\nPublicKey = %s\nAllowedIPs = 10.%d.%d.0/24, fd00:%x::/64\nEndpoint = 192.0.2.%d:%d\n"
          % (pub, i // 256, i % 256, i, 1 + i % 250, 1024 + i))
PY

measure() { # impl -> "setconf_ms show_ms"
	if [ "$1" = sg ]; then
		ip netns exec "$NS" "$SGD" -f "$IF" 2>/dev/null &
	else
		ip netns exec "$NS" env WG_PROCESS_FOREGROUND=1 wireguard-go "$IF" >/dev/null 2>&1 &
	fi
	PID=$!
	for _ in $(seq 100); do [ -S "/var/run/wireguard/$IF.sock" ] && break; sleep 0.05; done
	local t0 t1 t2
	t0=$(date +%s%N)
	ip netns exec "$NS" wg setconf "$IF" "$TMP/wg.conf"
	t1=$(date +%s%N)
	ip netns exec "$NS" wg show "$IF" dump >"$TMP/dump.$1"
	t2=$(date +%s%N)
	kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
	for _ in $(seq 100); do [ -S "/var/run/wireguard/$IF.sock" ] || break; sleep 0.05; done
	echo "$(( (t1 - t0) / 1000000 )) $(( (t2 - t1) / 1000000 ))"
}
read -r wg_set wg_show < <(measure wg)
read -r sg_set sg_show < <(measure sg)
lines_wg=$(wc -l <"$TMP/dump.wg"); lines_sg=$(wc -l <"$TMP/dump.sg")
printf 'wg setconf / wg show dump with %d peers (2 allowed IPs and an endpoint each)\n' "$N"
printf '  wireguard-go : setconf %6d ms, show %6d ms (%d lines)\n' "$wg_set" "$wg_show" "$lines_wg"
printf '  secureguardd : setconf %6d ms, show %6d ms (%d lines)\n' "$sg_set" "$sg_show" "$lines_sg"
python3 -c "print('ratio wireguard-go/secureguardd time: setconf %.2f, show %.2f' % ($wg_set / max($sg_set, 1), $wg_show / max($sg_show, 1)))"
