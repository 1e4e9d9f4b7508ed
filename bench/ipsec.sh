#!/usr/bin/env bash
# IPsec benchmark (issue 13): secureguard-iked against strongSwan 5.9's charon with
# kernel-libipsec (its userspace ESP, the fair comparison for our userspace data path), in two
# network namespaces on a veth bridge (the integration harness: tests/integration/lib.sh and
# swan_lib.sh). One run prints:
#   - TCP throughput (iperf3, one stream, A -> B through the tunnel) ours<->ours,
#     ours<->strongSwan and strongSwan<->strongSwan, with ratios against strongSwan<->strongSwan;
#   - bring-up time: from `swanctl --initiate` to the first ping answered through the Child SA
#     (median of BRINGUPS runs), ours<->ours against strongSwan<->strongSwan;
#   - IKE_SA_INIT exchanges per second a responder completes (a generator in A sends INIT
#     requests with fresh Curve25519 values, at most 64 outstanding, answering COOKIE
#     challenges; a completion is a response with a KE payload): ours against charon.
# Every tunnel: IKE aes256gcm16-prfsha256-x25519, ESP aes256gcm16, PSK, UDP-encapsulated ESP
# (ours always encapsulates; charon is told encap = yes so both sides measure the same thing).
# charon's per-address block_threshold is raised for the generator (it comes from one address)
# and its ike log level lowered to 0; everything else is charon's default.
#
#   bench/ipsec.sh [SECONDS] [BRINGUPS]    defaults 8 and 5; root; build first with `make`
set -euo pipefail
SECS=${1:-8}
RUNS=${2:-5}
SG_SRC=${SG_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
SG_BIN=${SG_BIN:-$SG_SRC/build/bin}
export SG_SRC SG_BIN
. "$SG_SRC/tests/integration/lib.sh"
. "$SG_SRC/tests/integration/swan_lib.sh"
SG_TEST=ipsec-bench
skip() { echo "bench: $*" >&2; exit 1; } # a benchmark that cannot run is a failure
sg_init ib
swan_require
command -v iperf3 >/dev/null || skip "missing iperf3 (scripts/deps.sh installs it)"
IKED=$SG_BIN/secureguard-iked
[ -x "$IKED" ] || skip "$IKED not built; run make first"
export SWAN_LOG=0 SWAN_EXTRA="block_threshold = 1000000"

sg_hosts 2
A=${HOST[1]} B=${HOST[2]}
ip -n "$A" addr add 10.1.0.1/32 dev lo
ip -n "$B" addr add 10.2.0.1/32 dev lo
RES=$SG_TMP/results
: >"$RES"

# conf SIDE: a swanctl.conf for side a (192.0.2.1, 10.1.0.0/16) or b.
conf() {
	local me=192.0.2.1 peer=192.0.2.2 lid=a.example rid=b.example lts=10.1.0.0/16 rts=10.2.0.0/16
	if [ "$1" = b ]; then
		me=192.0.2.2 peer=192.0.2.1 lid=b.example rid=a.example lts=10.2.0.0/16 rts=10.1.0.0/16
	fi
	cat <<-CONF
		connections {
		  gw {
		    version = 2
		    local_addrs = $me
		    remote_addrs = $peer
		    proposals = aes256gcm16-prfsha256-x25519
		    encap = yes
		    local {
		      auth = psk
		      id = $lid
		    }
		    remote {
		      auth = psk
		      id = $rid
		    }
		    children {
		      net {
		        local_ts = $lts
		        remote_ts = $rts
		        esp_proposals = aes256gcm16
		        start_action = none
		      }
		    }
		  }
		}
		secrets {
		  ike-1 {
		    id-a = a.example
		    id-b = b.example
		    secret = "correct horse battery staple"
		  }
		}
	CONF
}
conf a >"$SG_TMP/a.conf"
conf b >"$SG_TMP/b.conf"

# side_start NS NAME IMPL: ours or charon in NS, configured with NAME's conf; sets URI_<NAME>.
side_start() {
	local ns=$1 name=$2 impl=$3 uri
	if [ "$impl" = ours ]; then
		mkdir -p -m 700 "$SG_TMP/iked-$name"
		uri=unix://$SG_TMP/iked-$name/iked.vici
		nsx "$ns" "$IKED" -f --vici "$uri" >>"$SG_TMP/iked-$name.log" 2>&1 &
		wait_for 10 test -S "$SG_TMP/iked-$name/iked.vici" || fail "secureguard-iked $name did not start"
	else
		swan_start "$ns" "$name"
		local v=SWAN_URI_$name
		uri=${!v}
	fi
	printf -v "URI_$name" '%s' "$uri"
	swanctl --load-all --file "$SG_TMP/$name.conf" --uri "$uri" >"$SG_TMP/load-$name.out" 2>&1 ||
		fail "loading $name: $(cat "$SG_TMP/load-$name.out")"
}

# side_stop NS: ends the IKE daemon (ours or charon) in NS.
side_stop() {
	local p
	for p in $(ip netns pids "$1"); do
		case $(cat "/proc/$p/comm" 2>/dev/null) in charon | secureguard-ike*) kill -TERM "$p" ;; esac
	done
	for _ in $(seq 50); do
		local left=0
		for p in $(ip netns pids "$1"); do
			case $(cat "/proc/$p/comm" 2>/dev/null) in charon | secureguard-ike*) left=1 ;; esac
		done
		[ "$left" = 0 ] && break
		sleep 0.1
	done
	rm -rf "$SG_TMP/swan-a" "$SG_TMP/swan-b" "$SG_TMP/iked-a" "$SG_TMP/iked-b"
}

ping_ok() { nsx "$A" ping -c 1 -W 0.2 -I 10.1.0.1 10.2.0.1 >/dev/null 2>&1; }
no_sas() { ! swanctl --list-sas --uri "$URI_a" 2>/dev/null | grep -q ESTABLISHED; }

# bringup_ms: initiate from A, milliseconds to the first answered ping; then terminate.
bringup_ms() {
	local t0 t1
	t0=${EPOCHREALTIME/./}
	swanctl --initiate --child net --uri "$URI_a" >/dev/null 2>&1 || fail "initiate"
	for _ in $(seq 200); do ping_ok && break; done
	t1=${EPOCHREALTIME/./}
	ping_ok || fail "no ping through the tunnel"
	echo $(((t1 - t0) / 1000))
	swanctl --terminate --ike gw --uri "$URI_a" >/dev/null 2>&1 || true
	wait_for 10 no_sas || fail "the IKE SA did not go away"
}

# pair LABEL IMPL_A IMPL_B: throughput and bring-up for one pairing.
pair() {
	local label=$1 i ms all=() port=$((5200 + RANDOM % 1000))
	side_start "$B" b "$3"
	side_start "$A" a "$2"
	for ((i = 0; i < RUNS; i++)); do
		ms=$(bringup_ms)
		all+=("$ms")
	done
	printf '%s\n' "${all[@]}" | sort -n | sed -n "$(((RUNS + 1) / 2))p" | sed "s/^/$label bringup_ms /" >>"$RES"
	log "$label bring-up (ms): ${all[*]}"
	swanctl --initiate --child net --uri "$URI_a" >/dev/null 2>&1 || fail "initiate $label"
	wait_for 5 ping_ok || fail "no ping $label"
	nsx "$B" iperf3 -s -1 -B 10.2.0.1 -p "$port" >/dev/null 2>&1 &
	wait_for 5 sg_listening "$B" "$port" || fail "iperf3 server"
	nsx "$A" iperf3 -c 10.2.0.1 -B 10.1.0.1 -p "$port" -t "$SECS" -J >"$SG_TMP/iperf-$label.json" ||
		fail "iperf3 $label"
	python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(sys.argv[2], "mbps", round(r["end"]["sum_received"]["bits_per_second"]/1e6, 1))' \
		"$SG_TMP/iperf-$label.json" "$label" >>"$RES"
	log "$label: $(grep "^$label mbps" "$RES")"
	side_stop "$A"
	side_stop "$B"
}

# init_rate LABEL IMPL: IKE_SA_INIT/s the responder in B completes.
init_rate() {
	side_start "$B" b "$2"
	nsx "$A" python3 - "$1" >>"$RES" <<-'PY'
		import os, select, socket, struct, sys, time
		TOTAL, WINDOW = 1000, 64  # our responder keeps at most 1024 half-open SAs (30 s)
		s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
		s.bind(("192.0.2.1", 0))
		s.setblocking(False)
		def pl(nxt, body): return bytes([nxt, 0]) + struct.pack(">H", len(body) + 4) + body
		def tr(last, t, i, kl=None):
		    return (bytes([0 if last else 3, 0]) + struct.pack(">H", 12 if kl else 8) + bytes([t, 0]) +
		            struct.pack(">H", i) + (struct.pack(">HH", 0x800e, kl) if kl else b""))
		prop = bytes([0, 0]) + struct.pack(">H", 8 + 12 + 8 + 8) + bytes([1, 1, 0, 3]) + \
		    tr(0, 1, 20, 256) + tr(0, 2, 5) + tr(1, 4, 31)
		kn = {}  # per SPI: its KE value and nonce, sent again with a cookie (RFC 7296 2.6)
		def init(spi, cookie=None):
		    ke, ni = kn.setdefault(spi, (os.urandom(32), os.urandom(32)))
		    chain = pl(34, prop) + pl(40, struct.pack(">HH", 31, 0) + ke) + pl(0, ni)
		    first = 33
		    if cookie is not None:
		        chain = pl(33, bytes([0, 0]) + struct.pack(">H", 16390) + cookie) + chain
		        first = 41
		    return spi + bytes(8) + bytes([first, 0x20, 34, 0x08]) + struct.pack(">II", 0, 28 + len(chain)) + chain
		def payloads(d):
		    nxt, off = d[16], 28
		    while nxt and off + 4 <= len(d):
		        ln = struct.unpack(">H", d[off + 2:off + 4])[0]
		        if ln < 4 or off + ln > len(d): return
		        yield nxt, d[off + 4:off + ln]
		        nxt, off = d[off], off + ln
		out, done, failed, cookies, sent, t0, last = {}, 0, 0, 0, 0, time.time(), time.time()
		while done + failed < TOTAL and time.time() - t0 < 60:
		    while len(out) < WINDOW and sent < TOTAL:
		        spi = os.urandom(8)
		        s.sendto(init(spi), ("192.0.2.2", 500))
		        out[spi] = time.time()
		        sent += 1
		    select.select([s], [], [], 0.05)
		    while True:
		        try:
		            d = s.recv(4096)
		        except BlockingIOError:
		            break
		        spi = d[:8]
		        if spi not in out or len(d) < 28: continue
		        ps = list(payloads(d))
		        ck = [b[4:] for t, b in ps if t == 41 and struct.unpack(">H", b[2:4])[0] == 16390]
		        if ck:
		            cookies += 1
		            s.sendto(init(spi, ck[0]), ("192.0.2.2", 500))
		            out[spi] = time.time()
		        elif any(t == 34 for t, _ in ps):
		            done += 1
		            last = time.time()
		            del out[spi], kn[spi]
		        else:
		            failed += 1
		            del out[spi], kn[spi]
		    now = time.time()
		    for spi in [k for k, v in out.items() if now - v > 2]:
		        failed += 1
		        del out[spi], kn[spi]
		rate = done / max(last - t0, 1e-6)
		print(sys.argv[1], "init_per_s", round(rate), "(%d completed, %d failed, %d cookies)" % (done, failed, cookies))
	PY
	log "$(grep "^$1 init_per_s" "$RES")"
	side_stop "$B"
}

log "ours <-> ours"
pair ours ours ours
log "ours (A) <-> strongSwan (B)"
pair mixed ours swan
log "strongSwan <-> strongSwan"
pair swan swan swan
log "IKE_SA_INIT responders"
init_rate ours_init ours
init_rate swan_init swan

val() { awk -v k="$1" -v m="$2" '$1 == k && $2 == m { print $3 }' "$RES"; }
echo
echo "IPsec benchmark (one run; AES-GCM-256, Curve25519, PSK, UDP-encapsulated ESP; $SECS s iperf3)"
printf '  TCP throughput  ours<->ours %8s Mbit/s   ours<->strongSwan %8s Mbit/s   strongSwan<->strongSwan %8s Mbit/s\n' \
	"$(val ours mbps)" "$(val mixed mbps)" "$(val swan mbps)"
printf '  bring-up (median of %d)  ours<->ours %s ms   ours->strongSwan %s ms   strongSwan<->strongSwan %s ms\n' \
	"$RUNS" "$(val ours bringup_ms)" "$(val mixed bringup_ms)" "$(val swan bringup_ms)"
printf '  IKE_SA_INIT completed per second  ours %s   charon %s\n' "$(val ours_init init_per_s)" "$(val swan_init init_per_s)"
python3 - "$(val ours mbps)" "$(val mixed mbps)" "$(val swan mbps)" "$(val ours bringup_ms)" "$(val swan bringup_ms)" \
	"$(val ours_init init_per_s)" "$(val swan_init init_per_s)" <<-'PY'
	import sys
	o, m, s, ob, sb, oi, si = (float(x) for x in sys.argv[1:])
	print("  ratios: throughput ours<->ours / strongSwan<->strongSwan %.2f (goal >= 5), ours<->strongSwan / strongSwan<->strongSwan %.2f;"
	      % (o / s, m / s))
	print("          bring-up strongSwan / ours %.2f (goal >= 1); IKE_SA_INIT/s ours / charon %.2f" % (sb / max(ob, 1), oi / max(si, 1)))
	PY
