#!/bin/bash
# Peers at scale: `wg setconf` time, resident memory (RSS), `wg show dump` and idle CPU of
# secureguardd with N configured peers, against wireguard-go in the same run where it can go
# (it takes at most 65,536 peers).
#
#   bench/memory.sh [COUNTS...]   (root; build first with `make`; default: 1000 65536 250000 1000000)
#   IDLE_SECONDS=10               how long idle CPU is sampled after the load
#
# Each peer has a /32 allowed IP and an endpoint; the interface is loaded with `wg setconf` (the
# stock tool, so both daemons get the same requests). Per peer:
#   setconf   wall time of `wg setconf` with N peers, and the ratio wireguard-go / secureguardd
#   RSS       VmRSS after the load (and a second), in KiB, and bytes per peer (RSS / N: the
#             daemon's own few MiB are counted in, so small N overstate it)
#   dump      wall time of `wg show IF dump` and how far it raised the daemon's RSS above the
#             idle figure (VmHWM after resetting it with /proc/PID/clear_refs)
#   idle CPU  user+system CPU of the daemon over IDLE_SECONDS with no traffic, % of one core
set -eu
COUNTS=${*:-1000 65536 250000 1000000}
IDLE_SECONDS=${IDLE_SECONDS:-10}
WGGO_MAX=65536
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
TICK=$(getconf CLK_TCK)

gen() { # N -> config file
	python3 - "$1" "$(wg genkey)" >"$TMP/wg$1.conf" <<'PY'
import base64, os, sys
n, priv = int(sys.argv[1]), sys.argv[2]
w = sys.stdout.write
w("[Interface]\nPrivateKey = %s\nListenPort = 51820\n" % priv)
for i in range(n):
    pub = base64.b64encode(os.urandom(32)).decode()
    w("\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.%d.%d.%d/32\nEndpoint = 192.0.2.%d:%d\n"
      % (pub, i >> 16, (i >> 8) & 255, i & 255, 1 + i % 250, 1024 + i % 60000))
PY
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }

# impl N -> "setconf_ms rss_kib dump_ms dump_extra_kib dump_lines idle_cpu_pct"
measure() {
	if [ "$1" = sg ]; then
		ip netns exec "$NS" "$SGD" -f "$IF" 2>/dev/null &
	else
		ip netns exec "$NS" env WG_PROCESS_FOREGROUND=1 wireguard-go "$IF" >/dev/null 2>&1 &
	fi
	PID=$!
	for _ in $(seq 200); do [ -S "/var/run/wireguard/$IF.sock" ] && break; sleep 0.05; done
	local t0 t1 rss c0 c1 hwm lines d0 d1
	t0=$(date +%s%N)
	ip netns exec "$NS" wg setconf "$IF" "$TMP/wg$2.conf"
	t1=$(date +%s%N)
	sleep 1 # let a garbage-collected runtime settle
	rss=$(kib "$PID" VmRSS)
	c0=$(cpu_ticks "$PID")
	sleep "$IDLE_SECONDS"
	c1=$(cpu_ticks "$PID")
	echo 5 >"/proc/$PID/clear_refs" # VmHWM := VmRSS
	rss=$(kib "$PID" VmRSS)
	d0=$(date +%s%N)
	lines=$(ip netns exec "$NS" wg show "$IF" dump | wc -l)
	d1=$(date +%s%N)
	hwm=$(kib "$PID" VmHWM)
	kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
	rm -f "/var/run/wireguard/$IF.sock"
	echo "$(((t1 - t0) / 1000000)) $rss $(((d1 - d0) / 1000000)) $((hwm - rss)) $((lines - 1))" \
		"$(python3 -c "print('%.2f' % (100.0 * ($c1 - $c0) / $TICK / $IDLE_SECONDS))")"
}

printf 'Peers at scale: one /32 and an endpoint each, loaded with `wg setconf` (load %s)\n' \
	"$(cut -d' ' -f1-3 /proc/loadavg)"
printf '  %8s | %-59s | %-43s | %s\n' "" "secureguardd" "wireguard-go" "ratios wg-go/sg"
printf '  %8s | %9s %10s %6s %8s %9s %6s | %9s %10s %6s %8s %6s | %7s %5s\n' peers setconf RSS \
	B/peer dump +dumpRSS idle setconf RSS B/peer dump idle setconf RSS
for n in $COUNTS; do
	gen "$n"
	read -r st sr sd sx sl sc <<<"$(measure sg "$n")"
	[ "$sl" -eq "$n" ] || echo "bench: secureguardd's dump listed $sl of $n peers" >&2
	if [ "$n" -le "$WGGO_MAX" ]; then
		read -r wt wr wd _ wl wc <<<"$(measure wg "$n")"
		[ "$wl" -eq "$n" ] || echo "bench: wireguard-go's dump listed $wl of $n peers" >&2
		printf '  %8s | %7sms %7sKiB %6s %6sms %6sKiB %5s%% | %7sms %7sKiB %6s %6sms %5s%% | %6.1fx %4.2fx\n' \
			"$n" "$st" "$sr" $((sr * 1024 / n)) "$sd" "$sx" "$sc" "$wt" "$wr" \
			$((wr * 1024 / n)) "$wd" "$wc" "$(python3 -c "print($wt / max($st, 1))")" \
			"$(python3 -c "print($wr / $sr)")"
	else
		printf '  %8s | %7sms %7sKiB %6s %6sms %6sKiB %5s%% | %-43s |\n' "$n" "$st" "$sr" \
			$((sr * 1024 / n)) "$sd" "$sx" "$sc" "(more than wireguard-go takes)"
	fi
	rm -f "$TMP/wg$n.conf"
done
