#!/bin/bash
# Hostile input at the daemon's UDP port while real traffic flows. secureguardd (A) has a tunnel
# to wireguard-go (B); host 3 (H) fires at A's port, over IPv4 and IPv6: random garbage, every
# message type at a wrong length, truncated and oversized (2000 and 65000 bytes) datagrams,
# forged handshake messages, transport data for unknown receiver indices, captured data packets
# tampered with, and captured packets replayed (data and B's handshake initiation). Meanwhile a
# ping and a TCP transfer run through the tunnel. The tunnel must carry on, A's endpoint for B
# must not move to H, and the daemon must live, exit cleanly and report its drop counters.
# shellcheck source=tests/integration/lib.sh disable=SC2154 # PUB_<name> come from sg_keys
. "$(dirname "$0")/lib.sh"
sg_init hs
pair_init 3
H=${HOST[3]}

# Capture what B sends to A while B initiates and sends some data: a handshake initiation and
# transport messages to replay later. -Z root: tcpdump would drop to its own user before
# writing into our root-only directory. -U: each packet is written at once.
cap=$SG_TMP/b2a.pcap
nsx "$A" timeout 20 tcpdump -n -U -Z root -i veth0 -c 6 -w "$cap" \
	"udp dst port $PORT and src host $(out4 2)" 2>"$SG_TMP/tcpdump.err" &
tcpd=$!
wait_for 5 grep -q 'listening on' "$SG_TMP/tcpdump.err" || fail "tcpdump did not start: $(cat "$SG_TMP/tcpdump.err")"
pair_up "$SG_IMPL" wireguard-go b
assert_ping "$B" "$(in4 1)" 5
wait "$tcpd" || fail "tcpdump did not capture 6 packets from B: $(cat "$SG_TMP/tcpdump.err")"
log "captured B->A: $(nsx "$A" tcpdump -n -r "$cap" 2>/dev/null | awk '{print $NF}' | tr '\n' ' ')"

cat >"$SG_TMP/hostile.py" <<'PY'
"""Sends hostile datagrams at a WireGuard port for SECS seconds.
Usage: hostile.py PCAP SRC4 DST4 SRC6 DST6 PORT SECS"""
import os, random, socket, struct, sys, time

pcap, src4, dst4, src6, dst6 = sys.argv[1:6]
port, secs = int(sys.argv[6]), float(sys.argv[7])
rnd = random.Random(int.from_bytes(os.urandom(8), "little"))

def payloads(path):
    """UDP payloads of an Ethernet pcap (libpcap format, microsecond or nanosecond)."""
    data = open(path, "rb").read()
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    if struct.unpack(endian + "I", data[20:24])[0] != 1:
        sys.exit("pcap link type is not Ethernet")
    off, out = 24, []
    while off + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[off + 8:off + 12])[0]
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        etype = struct.unpack("!H", frame[12:14])[0]
        ip = frame[14:]
        if etype == 0x0800 and ip[9] == 17:
            udp = ip[(ip[0] & 15) * 4:]
        elif etype == 0x86DD and ip[6] == 17:
            udp = ip[40:]
        else:
            continue
        out.append(udp[8:struct.unpack("!H", udp[4:6])[0]])
    return out

caught = payloads(pcap)
inits = [p for p in caught if p[0] == 1 and len(p) == 148]
data = [p for p in caught if p[0] == 4 and len(p) >= 32]
if not inits or len(data) < 2:
    sys.exit("capture lacks an initiation or data: types %s" % [p[0] for p in caught])

s4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s4.bind((src4, 0))
s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s6.bind((src6, 0))
s4.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
s6.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
sent = {}

def send(kind, buf):
    if rnd.random() < 0.5:
        s4.sendto(buf, (dst4, port))
    else:
        s6.sendto(buf, (dst6, port))
    sent[kind] = sent.get(kind, 0) + 1
    time.sleep(0.002)  # a steady stream, not a burst the socket buffer swallows

def rb(n):
    return rnd.randbytes(n)

def msg(t, n):
    """A message of type t (little-endian 32-bit type field, reserved zero) of n bytes."""
    return struct.pack("<I", t) + rb(n - 4) if n >= 4 else struct.pack("<I", t)[:n]

end = time.monotonic() + secs
while time.monotonic() < end:
    for _ in range(40):
        send("random", rb(rnd.randint(1, 1400)))
    send("empty", b"")
    for t, good in ((1, 148), (2, 92), (3, 64)):
        for n in (1, 4, good - 1, good + 1, good + 100):
            send("wrong-length", msg(t, n))
    for n in (1, 4, 16, 31):
        send("short-data", msg(4, n))
    send("bad-type", msg(0, 148))
    send("bad-type", msg(5, 32))
    send("bad-reserved", bytes([1, 1, 0, 0]) + rb(144))
    send("truncated", inits[0][:rnd.randint(1, 147)])
    send("truncated", data[0][:rnd.randint(1, 31)])
    for n in (2000, 65000):
        send("oversized", msg(4, n))
        send("oversized", data[0][:16] + rb(n - 16))
        send("oversized", rb(n))
    for _ in range(10):
        send("forged-init", msg(1, 148))
        send("forged-resp", msg(2, 92))
        send("forged-cookie", msg(3, 64))
        send("unknown-index", msg(4, rnd.choice((32, 48, 128, 1452))))
    for p in data:
        t = bytearray(p)
        t[rnd.randrange(16, len(t))] ^= 1 << rnd.randrange(8)
        send("tampered", bytes(t))
        send("replayed-data", p)
    send("replayed-init", inits[0])
print(" ".join("%s=%d" % kv for kv in sorted(sent.items())))
PY

log "=== hostile flood while ping and TCP run through the tunnel ==="
ep_before=$(wg_dump_field "$A" "$IA" "$PUB_b" endpoint)
nsx "$B" ping -i 0.1 -c 50 -W 1 "$(in4 1)" >"$SG_TMP/flood.ping" 2>&1 &
pingp=$!
nsx "$H" python3 "$SG_TMP/hostile.py" "$cap" "$(out4 3)" "$(out4 1)" "$(out6 3)" "$(out6 1)" "$PORT" 4 \
	>"$SG_TMP/hostile.out" 2>&1 &
hostp=$!
sleep 0.5
tcp_transfer "$A" "$B" "$(in4 2)" 4
tcp_transfer "$B" "$A" "$(in6 1)" 4
wait "$hostp" || fail "hostile sender failed: $(cat "$SG_TMP/hostile.out")"
log "hostile datagrams sent: $(cat "$SG_TMP/hostile.out")"
wait "$pingp" || true
log "ping B->A during the flood: $(grep 'packets transmitted' "$SG_TMP/flood.ping")"
recv=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$SG_TMP/flood.ping")
# The flood can fill A's socket buffer (the kernel drops, not the daemon): allow 10 % loss.
[ "${recv:-0}" -ge 45 ] || fail "ping through the tunnel during the flood: only ${recv:-0}/50 replies"
log "kernel UDP drops at A: $(udp_drops "$A")"

check_alive "$IA"
assert_eq "$(wg_dump_field "$A" "$IA" "$PUB_b" endpoint)" "$ep_before" \
	"A's endpoint for B after the flood (nothing from H may move it)"
assert_ping "$A" "$(in4 2)" 5
assert_ping "$B" "$(in6 1)" 5
assert_counters "$A" "$IA" "$PUB_b" "$B" "$IB" "$PUB_a"

# The drop counters (struct wg_device_stats): secureguardd logs them as key=value on SIGUSR1
# (and when it stops). Each kind of hostile datagram above lands in a known counter.
if [ "$SG_IMPL" = secureguardd ]; then
	kill -USR1 "${D_PID[$IA]}"
	wait_for 5 grep -qE '\brx_replayed=[0-9]+' "${D_LOG[$IA]}" ||
		fail "secureguardd logged no drop counters (rx_invalid=, rx_replayed=, ...) on SIGUSR1"
	check_alive "$IA"
	counter() { grep -oE "\\b$1=[0-9]+" "${D_LOG[$IA]}" | tail -n 1 | cut -d= -f2; }
	log "drop counters: $(for c in rx_datagrams rx_invalid rx_bad_mac rx_handshake_fail \
		rx_cookie_sent rx_unknown_index rx_decrypt_fail rx_replayed; do
		printf '%s=%s ' "$c" "$(counter "$c")"; done)"
	for c in rx_invalid rx_bad_mac rx_unknown_index rx_decrypt_fail rx_replayed; do
		[ "$(counter "$c")" -gt 0 ] 2>/dev/null || fail "counter $c is '$(counter "$c")', expected > 0"
	done
	# The replayed initiation fails Noise (stale timestamp) or, under load, gets a cookie.
	[ $(($(counter rx_handshake_fail) + $(counter rx_cookie_sent))) -gt 0 ] ||
		fail "the replayed handshake initiation was neither rejected nor answered with a cookie"
else
	log "harness mode: wireguard-go keeps no drop counters; counter assertions apply to secureguardd"
fi
stop_impl "$IA"
finish
