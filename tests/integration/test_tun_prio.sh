#!/bin/bash
# Latency under load, the TUN priority queue (docs/DATAPATH.md, "Latency under load"): a ping
# sent after a burst of bulk packets crosses the tunnel before them. A's daemon is stopped
# (SIGSTOP) while 200 UDP datagrams of 1000 bytes (bulk: not DNS) and then one ping are sent
# into its interface, so all of them wait in the kernel's TUN queues; once it runs again, B's
# interface must see the echo request before the first of the datagrams (with one FIFO queue it
# came after all 200). Order only, no timing. All 200 must arrive.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
sg_init tp
pair_init
pair_up secureguardd secureguardd a

grep -q 'tun_prio_queue=on' "${D_LOG[$IA]}" ||
	skip "A's daemon has no TUN priority queue here: $(grep -o 'event=offload.*' "${D_LOG[$IA]}")"

CAP=$SG_TMP/b.tcpdump
nsx "$B" timeout 60 tcpdump -l -n -i "$IB" "icmp or (udp and dst port 9)" >"$CAP" 2>"$CAP.err" &
TD=$!
wait_for 5 grep -q 'listening on' "$CAP.err" || fail "tcpdump did not start: $(cat "$CAP.err")"

log "A's daemon stopped; 200 bulk datagrams, then a ping, into A's interface"
kill -STOP "${D_PID[$IA]}"
nsx "$A" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(200):
    s.sendto(i.to_bytes(4, "big") + bytes(996), (sys.argv[1], 9))
' "$(in4 2)" || { kill -CONT "${D_PID[$IA]}"; fail "could not send the bulk datagrams"; }
nsx "$A" ping -n -c 1 -W 10 "$(in4 2)" >"$SG_TMP/ping.out" 2>&1 &
PING=$!
sleep 0.5 # let ping send its request into the interface (order of sending, not a measure)
kill -CONT "${D_PID[$IA]}"
wait "$PING" || fail "the ping got no answer: $(cat "$SG_TMP/ping.out")"
wait_for 10 bash -c "[ \$(grep -c 'UDP, length 1000' '$CAP') -ge 200 ]" ||
	fail "B's interface saw $(grep -c 'UDP, length 1000' "$CAP") of 200 datagrams"
kill "$TD" 2>/dev/null || true
wait "$TD" 2>/dev/null || true

# grep -m1, not | head: under pipefail a grep that head cuts off fails the test (SIGPIPE).
first_udp=$(grep -n -m1 'UDP, length 1000' "$CAP" | cut -d: -f1) || true
echo_req=$(grep -n -m1 'ICMP echo request' "$CAP" | cut -d: -f1) || true
[ -n "$echo_req" ] || fail "B's interface saw no echo request: $(head -5 "$CAP")"
log "on B's interface: echo request is line $echo_req, the first bulk datagram line $first_udp"
[ "$echo_req" -lt "$first_udp" ] ||
	fail "the echo request came after bulk packets queued before it (line $echo_req, first datagram line $first_udp)"
finish
