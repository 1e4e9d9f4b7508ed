#!/bin/bash
# libsecureguard's userspace path against what a user would run instead, in one run:
#   - TCP throughput (iperf3, SECONDS each): `secureguard forward` (the userspace stack, as a
#     normal user) vs the TUN path (secureguardd on both ends) vs an SSH port forward (`ssh -L`)
#     to the same server;
#   - memory (VmRSS) of an idle forward (engine, stack and CLI) vs an idle `ssh -L` client;
#   - time from sg_connect to the first byte back through the tunnel (bench/embed_ttfb.c, a fresh
#     engine per round) vs from starting `ssh -L` to the first byte through it.
# Server: namespace A (secureguardd, iperf3 -s, sshd, a TCP echo); clients in namespace B.
#   bench/embed.sh [SECONDS]   (root; SG_BUILD: the build directory, default build/)
set -euo pipefail
secs=${1:-10}
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${SG_BUILD:-$SRC/build}
SG=$BUILD/bin/secureguard SGD=$BUILD/bin/secureguardd
[ "$(id -u)" -eq 0 ] || { echo "bench/embed.sh: needs root (namespaces)" >&2; exit 1; }
for t in iperf3 ssh /usr/sbin/sshd socat wg setpriv; do
	command -v "$t" >/dev/null || { echo "bench/embed.sh: missing $t (make deps)" >&2; exit 1; }
done
P=sgbe$$ A=sgbe$$a B=sgbe$$b
TMP=$(mktemp -d)
cleanup() {
	exec 2>/dev/null # the shell's "Killed" notices for the background jobs
	for ns in $A $B; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
		ip netns del "$ns" 2>/dev/null || true
	done
	rm -f /var/run/wireguard/${P}[ab].sock
	rm -rf "$TMP"
}
trap cleanup EXIT
cc -O2 -std=c17 -I"$SRC/include" "$SRC/bench/embed_ttfb.c" -o "$TMP/ttfb" -L"$BUILD/lib" \
	-lsecureguard -Wl,-rpath,"$BUILD/lib"

ip netns add "$A"
ip netns add "$B"
ip -n "$A" link set lo up
ip -n "$B" link set lo up
ip -n "$A" link add veth0 type veth peer name veth0 netns "$B"
ip -n "$A" addr add 192.0.2.1/24 dev veth0
ip -n "$B" addr add 192.0.2.2/24 dev veth0
ip -n "$A" link set veth0 up
ip -n "$B" link set veth0 up
for k in S T F; do wg genkey >"$TMP/$k.key"; wg pubkey <"$TMP/$k.key" >"$TMP/$k.pub"; done
wait_sock() { for _ in $(seq 100); do [ -S "/var/run/wireguard/$1.sock" ] && return 0; sleep 0.1; done; return 1; }

# Server side.
ip netns exec "$A" "$SGD" -f ${P}a >"$TMP/sgd-a.log" 2>&1 &
wait_sock ${P}a
ip netns exec "$A" wg set ${P}a private-key "$TMP/S.key" listen-port 51820 \
	peer "$(cat "$TMP/T.pub")" allowed-ips 10.81.0.2/32 peer "$(cat "$TMP/F.pub")" allowed-ips 10.81.0.3/32
ip -n "$A" addr add 10.81.0.1/24 dev ${P}a
ip -n "$A" link set ${P}a up
ip netns exec "$A" iperf3 -s -D -B 10.81.0.1 >/dev/null 2>&1
ip netns exec "$A" socat TCP-LISTEN:7777,bind=10.81.0.1,fork,reuseaddr EXEC:cat &
mkdir -p "$TMP/ssh" /run/sshd
umask 077
ssh-keygen -q -t ed25519 -N '' -f "$TMP/ssh/host" >/dev/null
ssh-keygen -q -t ed25519 -N '' -f "$TMP/ssh/id" >/dev/null
cp "$TMP/ssh/id.pub" "$TMP/ssh/authorized_keys"
chmod 600 "$TMP/ssh/authorized_keys"
umask 022
ip netns exec "$A" /usr/sbin/sshd -D -f /dev/null -h "$TMP/ssh/host" -o ListenAddress=192.0.2.1 \
	-o AuthorizedKeysFile="$TMP/ssh/authorized_keys" -o StrictModes=no -o PermitRootLogin=yes \
	-o PidFile=none 2>"$TMP/sshd.log" &
# Client: the TUN path.
ip netns exec "$B" "$SGD" -f ${P}b >"$TMP/sgd-b.log" 2>&1 &
wait_sock ${P}b
ip netns exec "$B" wg set ${P}b private-key "$TMP/T.key" peer "$(cat "$TMP/S.pub")" \
	endpoint 192.0.2.1:51820 allowed-ips 10.81.0.0/24
ip -n "$B" addr add 10.81.0.2/24 dev ${P}b
ip -n "$B" link set ${P}b up
# Client: forward, as nobody.
cat >"$TMP/f.conf" <<CONF
[Interface]
PrivateKey = $(cat "$TMP/F.key")
Address = 10.81.0.3/24
[Peer]
PublicKey = $(cat "$TMP/S.pub")
Endpoint = 192.0.2.1:51820
AllowedIPs = 10.81.0.0/24
CONF
chmod 644 "$TMP/f.conf"
chmod 755 "$TMP"
t_fwd0=$(date +%s%N)
ip netns exec "$B" setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all \
	"$SG" forward --config "$TMP/f.conf" 10.81.0.1:5201 127.0.0.1:15201 2>"$TMP/fwd.log" &
fwd=$!
ip netns exec "$B" setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all \
	"$SG" forward --config "$TMP/f.conf" 10.81.0.1:7777 127.0.0.1:17777 2>"$TMP/fwd-echo.log" &
first_byte() { # PORT -> succeeds once a byte comes back through 127.0.0.1:PORT (echo)
	[ "$(echo x | ip netns exec "$B" timeout 2 socat -T1 - TCP:127.0.0.1:"$1" 2>/dev/null)" = x ]
}
until first_byte 17777; do sleep 0.01; done
t_fwd1=$(date +%s%N)
t_ssh0=$(date +%s%N)
ip netns exec "$B" ssh -N -i "$TMP/ssh/id" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
	-o LogLevel=ERROR -L 15202:10.81.0.1:5201 -L 17778:10.81.0.1:7777 root@192.0.2.1 &
sshp=$!
until first_byte 17778; do sleep 0.01; done
t_ssh1=$(date +%s%N)
sleep 2
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
rss_fwd=$(rss "$fwd") rss_ssh=$(rss "$sshp")

gbps() { # LABEL ARGS... -> iperf3 client in B
	local out
	out=$(ip netns exec "$B" iperf3 -J -t "$secs" "${@:2}" 2>/dev/null) || { echo 0; return; }
	python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.3f" % (d["end"]["sum_received"]["bits_per_second"]/1e9))' <<<"$out"
}
tun=$(gbps tun -c 10.81.0.1)
# The MSS the stack announces in its SYNs (MTU 1420: 1380 for IPv4), seen at the server's TUN.
ip netns exec "$A" timeout 20 tcpdump -l -n -c 1 -i ${P}a 'src host 10.81.0.3 and tcp[tcpflags] & tcp-syn != 0' \
	>"$TMP/syn.txt" 2>/dev/null &
sleep 1
fw=$(gbps forward -c 127.0.0.1 -p 15201)
mss=$(sed -n 's/.*mss \([0-9]*\).*/\1/p' "$TMP/syn.txt" | head -n1)
ssh=$(gbps ssh -c 127.0.0.1 -p 15202)
ttfb=$(ip netns exec "$B" setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all \
	"$TMP/ttfb" "$TMP/f.conf" 10.81.0.1 7777 5 | awk '{s += $2; n++} END {printf "%.1f", s / n}')
ratio() { python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print('%.2f' % (a / b) if b else 'n/a')" "$1" "$2"; }
cpus=$(nproc)
echo "bench/embed.sh: $secs s per iperf3 run, $cpus CPUs (a shared machine: other work runs meanwhile)"
printf '%-44s %10s\n' "TCP throughput (Gbit/s)" ""
printf '  %-42s %10s\n' "secureguard forward (userspace stack)" "$fw" "TUN path (secureguardd both ends)" "$tun" "ssh -L" "$ssh"
echo "  forward / TUN: $(ratio "$fw" "$tun")   forward / ssh -L: $(ratio "$fw" "$ssh")   (the stack's SYN MSS: ${mss:-?})"
echo "idle memory (VmRSS, KiB): forward $rss_fwd, ssh -L client $rss_ssh (forward / ssh: $(ratio "$rss_fwd" "$rss_ssh"))"
fwd_ms=$(( (t_fwd1 - t_fwd0) / 1000000 )) ssh_ms=$(( (t_ssh1 - t_ssh0) / 1000000 ))
echo "first byte: sg_connect -> first byte back (API, mean of 5): $ttfb ms"
echo "            process start -> first byte: forward $fwd_ms ms, ssh -L $ssh_ms ms (forward / ssh: $(ratio "$fwd_ms" "$ssh_ms"))"
