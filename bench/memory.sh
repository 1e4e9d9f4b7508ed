#!/bin/bash
# Memory benchmark: resident memory (RSS) of secureguardd and of wireguard-go with 1, 1,000 and
# 100,000 configured peers, in the same run, and the time `wg setconf` takes to load them.
#
#   bench/memory.sh [COUNTS...]          (root; build first with `make`; default: 1 1000 100000)
#
# Each peer has a /32 allowed IP and an endpoint; the interface is loaded with `wg setconf` (the
# stock tool, so both daemons get the same requests). RSS is read from /proc after the load.
set -eu
COUNTS=${*:-1 1000 100000}
SRC=$(cd "$(dirname "$0")/.." && pwd)
SGD=${SG_BIN:-$SRC/build/bin}/secureguardd
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root" >&2; exit 1; }
[ -x "$SGD" ] || { echo "bench: $SGD missing; run make first" >&2; exit 1; }
NS=sgmem$$ IF=sgmem$$ TMP=$(mktemp -d)
PID=""
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true
	ip netns del "$NS" 2>/dev/null || true
	rm -rf "$TMP" "/var/run/wireguard/$IF.sock"
}
trap cleanup EXIT
ip netns add "$NS"

gen() { # N -> config file
	python3 - "$1" "$(wg genkey)" >"$TMP/wg$1.conf" <<'PY'
import base64, os, sys
n, priv = int(sys.argv[1]), sys.argv[2]
out = ["[Interface]\nPrivateKey = %s\nListenPort = 51820\n" % priv]
for i in range(n):
    pub = base64.b64encode(os.urandom(32)).decode()
    out.append("[Peer]\nPublicKey = %s\nAllowedIPs = 10.%d.%d.%d/32\nEndpoint = 192.0.2.%d:%d\n"
               % (pub, i >> 16, (i >> 8) & 255, i & 255, 1 + i % 250, 1024 + i % 60000))
sys.stdout.write("\n".join(out))
PY
}

measure() { # impl N -> "rss_kib setconf_ms"
	if [ "$1" = sg ]; then
		ip netns exec "$NS" "$SGD" -f "$IF" 2>/dev/null &
	else
		ip netns exec "$NS" env WG_PROCESS_FOREGROUND=1 wireguard-go "$IF" >/dev/null 2>&1 &
	fi
	PID=$!
	for _ in $(seq 100); do [ -S "/var/run/wireguard/$IF.sock" ] && break; sleep 0.05; done
	local t0 t1 rss
	t0=$(date +%s%N)
	ip netns exec "$NS" wg setconf "$IF" "$TMP/wg$2.conf"
	t1=$(date +%s%N)
	sleep 1 # let a garbage-collected runtime settle
	rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$PID/status")
	kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
	rm -f "/var/run/wireguard/$IF.sock"
	echo "$rss $(((t1 - t0) / 1000000))"
}

printf 'Resident memory after `wg setconf` with N peers (one /32 and an endpoint each)\n'
printf '  %8s  %14s %12s  %14s %12s  %s\n' peers "secureguardd" setconf "wireguard-go" setconf "ratio (RSS wg-go/sg)"
for n in $COUNTS; do
	gen "$n"
	read -r sr st <<<"$(measure sg "$n")"
	read -r wr wt <<<"$(measure wg "$n")"
	printf '  %8s  %10s KiB %9s ms  %10s KiB %9s ms  %.2f\n' "$n" "$sr" "$st" "$wr" "$wt" \
		"$(python3 -c "print($wr / $sr)")"
done
