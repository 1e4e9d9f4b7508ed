#!/bin/bash
# The secureguard CLI against the reference tools, wg(8), wg-quick(8) and wireguard-go.
#
# Part A (any user): keys. `wg pubkey` of our genkey equals our pubkey and the other way round;
# genkey is clamped; bad keys on stdin fail in both tools; version, help, strip.
# Part B (root): against wireguard-go interfaces in network namespaces,
#   - the same sequence of setconf / addconf / syncconf / set run by `wg` on one interface and by
#     `secureguard` on another leaves both in the same state (`wg show dump` compared);
#   - `secureguard show` (pretty, every field, dump, all, interfaces) and `showconf` print what
#     `wg` prints, also with live handshakes and transfer counters after a ping over the tunnel;
#   - `secureguard up/down` with WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go leaves the same
#     addresses, MTU, routes, policy rules and nftables rules as `wg-quick up` on the same
#     config; down removes them, runs the hooks and SaveConfig writes a config that parses.
# Namespaces and interfaces are named sgcli<pid><letter>. Part B runs in a private mount
# namespace with its own /run/wireguard, so other tests' interfaces never show up in `show all`.
#
# Environment: SG_BIN (build bin dir), SG_SRC (source dir). Exit 77: part B skipped (not root).
set -u

SG_SRC=${SG_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
SG_BIN=${SG_BIN:-$SG_SRC/build/bin}
SG=$SG_BIN/secureguard
FAILS=0

log() { printf '[test_cli] %s\n' "$*"; }
fail() {
	log "FAIL: $*"
	FAILS=$((FAILS + 1))
}
die() {
	log "FAIL: $*"
	exit 1
}
# same NAME A B: the two strings must be identical.
same() {
	if [ "$2" != "$3" ]; then
		fail "$1 differs (wg / secureguard):"
		diff <(printf '%s\n' "$2") <(printf '%s\n' "$3") | head -40
		return 1
	fi
	return 0
}

[ -x "$SG" ] || die "$SG not built"
command -v wg >/dev/null || { log "SKIP: wg(8) not installed"; exit 77; }

if [ -z "${SGCLI_INNER:-}" ]; then
	TMP=$(mktemp -d /tmp/sgcli.XXXXXX)
	trap 'rm -rf "$TMP"' EXIT
	umask 077

	# ---- Part A: keys ---------------------------------------------------------------------
	log "part A: keys"
	for i in $(seq 1 20); do
		k=$("$SG" genkey) || fail "genkey exit status"
		[[ $k =~ ^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$ ]] || fail "genkey format: $k"
		same "pubkey of our genkey" "$(printf '%s\n' "$k" | wg pubkey)" \
			"$(printf '%s\n' "$k" | "$SG" pubkey)"
		w=$(wg genkey)
		same "pubkey of wg genkey" "$(printf '%s\n' "$w" | wg pubkey)" \
			"$(printf '%s\n' "$w" | "$SG" pubkey)"
		# RFC 7748 clamping: low 3 bits of byte 0 clear, bit 255 clear, bit 254 set.
		read -r b0 b31 < <(printf '%s' "$k" | base64 -d | od -An -tu1 -w32 | awk '{print $1, $32}')
		{ [ $((b0 & 7)) -eq 0 ] && [ $((b31 & 128)) -eq 0 ] && [ $((b31 & 64)) -eq 64 ]; } ||
			fail "genkey not clamped: $k"
		p=$("$SG" genpsk)
		[[ $p =~ ^[A-Za-z0-9+/]{43}=$ ]] || fail "genpsk format: $p"
		same "pubkey of genpsk" "$(printf '%s' "$p" | wg pubkey)" "$(printf '%s' "$p" | "$SG" pubkey)"
	done
	# Whitespace and NULs after the key are fine, as in wg.
	k=$("$SG" genkey)
	same "trailing whitespace" "$(printf '%s \t\n\n' "$k" | wg pubkey)" \
		"$(printf '%s \t\n\n' "$k" | "$SG" pubkey)"
	# Bad keys: both tools refuse, ours with a clear message.
	good=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
	for bad in "" "abc" "${good%=}" "${good}x" " $good" "${good%8=}9=" "${good%8=}8A" \
		"-_______________________________________8=" "${good:0:10}!${good:11}"; do
		if printf '%s\n' "$bad" | "$SG" pubkey >"$TMP/out" 2>"$TMP/err"; then
			fail "pubkey accepted bad key '$bad'"
		fi
		grep -q "secureguard: pubkey: invalid key on stdin" "$TMP/err" ||
			fail "pubkey message for '$bad': $(cat "$TMP/err")"
		[ -s "$TMP/out" ] && fail "pubkey printed something for '$bad'"
		printf '%s\n' "$bad" | wg pubkey >/dev/null 2>&1 && fail "wg accepted '$bad' (test data wrong)"
	done
	"$SG" pubkey extra </dev/null 2>/dev/null && fail "pubkey with an argument succeeded"
	# genkey into a world-readable file warns, as wg does.
	(umask 022 && "$SG" genkey >"$TMP/world.key" 2>"$TMP/err")
	grep -q "world accessible" "$TMP/err" || fail "no warning for a world-readable key file"
	(umask 077 && "$SG" genkey >"$TMP/private.key" 2>"$TMP/err")
	[ -s "$TMP/err" ] && fail "warning for a private key file: $(cat "$TMP/err")"

	v=$("$SG" version) || fail "version exit status"
	[ "$(printf '%s\n' "$v" | wc -l)" -eq 4 ] || fail "version: not 4 lines: $v"
	[[ $v == "secureguard "[0-9]* ]] || fail "version line 1: $v"
	grep -q '^OpenSSL 3' <<<"$v" || fail "version: no OpenSSL line: $v"
	printf '%s\n' "$v" | grep -Eq '^FIPS provider: (active|not active)$' || fail "version: FIPS line: $v"
	printf '%s\n' "$v" | grep -Eq '^Crypto: fips_suite=[a-z:+]+ classic_suite=[a-z:+]+ ' ||
		fail "version: no line saying where the suites come from: $v"
	"$SG" help | grep -q genkey || fail "help does not list genkey"
	"$SG" no-such-command 2>/dev/null && fail "unknown subcommand succeeded"

	# strip: the wg part of a wg-quick file, in `wg showconf` layout.
	cat >"$TMP/sgclistrip.conf" <<-EOF
		[Interface]
		Address = 10.0.0.1/24
		PostUp = echo %i
		privatekey = $k   # comment
		[peer]
		PublicKey = $good
		AllowedIPs = 10.0.0.2/32,
		AllowedIPs = fd00::2/128
	EOF
	"$SG" strip "$TMP/sgclistrip.conf" 2>"$TMP/err" && fail "strip accepted a trailing comma"
	grep -q "sgclistrip.conf: line 7: AllowedIPs: empty entry in list" "$TMP/err" ||
		fail "strip error message: $(cat "$TMP/err")"
	sed -i 's|10.0.0.2/32,|10.0.0.2/32|' "$TMP/sgclistrip.conf"
	want=$(printf '[Interface]\nPrivateKey = %s\n\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.0.0.2/32, fd00::2/128\n' "$k" "$good")
	same "strip" "$want" "$("$SG" strip "$TMP/sgclistrip.conf")"
	# wg-quick's name pattern lets "...conf" through; ".." names no possible interface.
	cp "$TMP/sgclistrip.conf" "$TMP/...conf"
	"$SG" strip "$TMP/...conf" >/dev/null 2>"$TMP/err" && fail "strip accepted the name '..'"
	grep -q "\`..' is not a valid interface name" "$TMP/err" ||
		fail "strip ..conf message: $(cat "$TMP/err")"
	# A key that lost its '=' separator is never quoted back in the error.
	printf '[Interface]\nPrivateKey %s\n' "$k" >"$TMP/sgcrkey.conf"
	"$SG" strip "$TMP/sgcrkey.conf" >/dev/null 2>"$TMP/err" && fail "strip accepted 'PrivateKey KEY'"
	grep -q "line 2: unknown key .*not shown" "$TMP/err" || fail "key typo message: $(cat "$TMP/err")"
	grep -qF "${k:0:20}" "$TMP/err" && fail "the private key appears in an error message"
	[ "$FAILS" -eq 0 ] || die "part A: $FAILS failure(s)"
	log "part A: ok"

	if [ "$(id -u)" -ne 0 ]; then
		log "SKIP: part B needs root (network namespaces)"
		exit 77
	fi
	for t in ip unshare wireguard-go wg-quick nft; do
		command -v "$t" >/dev/null || { log "SKIP: part B needs $t"; exit 77; }
	done
	[ -c /dev/net/tun ] || { log "SKIP: part B needs /dev/net/tun"; exit 77; }
	# Part B in a private mount namespace (own /run/wireguard), same script.
	mkdir -p /run/wireguard
	SGCLI_INNER=1 TMP=$TMP unshare -m --propagation private "$BASH" "$0"
	exit $?
fi

# ==== Part B (root, private mount namespace) =================================================
mount -t tmpfs -o mode=0755 sgcli /run/wireguard || die "cannot mount a private /run/wireguard"
ID=sgcli$$
NSA=${ID}a NSB=${ID}b NSC=${ID}c NSD=${ID}d
IFA=${ID}a IFB=${ID}b IFC=${ID}c IFD=${ID}d
cleanup() {
	for ns in $NSA $NSB $NSC $NSD; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	umount /run/wireguard 2>/dev/null
}
trap cleanup EXIT
export WG_COLOR_MODE=never WG_HIDE_KEYS=

inns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
wait_sock() {
	for _ in $(seq 1 100); do
		[ -S "/run/wireguard/$1.sock" ] && return 0
		sleep 0.05
	done
	die "no UAPI socket for $1"
}
# Blocks separated by blank lines, sorted: wireguard-go lists peers in no fixed order.
norm_blocks() { awk 'BEGIN{RS=""}{gsub(/\n/,"\\n");print}' | sort; }
norm_lines() { sort; }
# dump of an interface with its name replaced, sorted.
dump() { wg show "$1" dump | sed "s/^/X\t/" | sort; }

for ns in $NSA $NSB $NSC $NSD; do ip netns add "$ns" || die "ip netns add $ns"; done
# A and B: two hosts joined by a veth, 192.0.2.1 and 192.0.2.2 (RFC 5737).
ip link add "${ID}va" netns "$NSA" type veth peer name "${ID}vb" netns "$NSB" || die veth
inns "$NSA" ip addr add 192.0.2.1/24 dev "${ID}va"
inns "$NSB" ip addr add 192.0.2.2/24 dev "${ID}vb"
inns "$NSA" ip link set "${ID}va" up
inns "$NSB" ip link set "${ID}vb" up
inns "$NSA" ip link set lo up
inns "$NSB" ip link set lo up
inns "$NSA" wireguard-go "$IFA" >/dev/null 2>&1 || die "wireguard-go $IFA"
inns "$NSB" wireguard-go "$IFB" >/dev/null 2>&1 || die "wireguard-go $IFB"
wait_sock "$IFA"
wait_sock "$IFB"

# ---- the same changes through wg (on B) and secureguard (on A) ------------------------------
log "part B: setconf/addconf/syncconf/set, wg on $IFB vs secureguard on $IFA"
KEY=$(wg genkey)
for i in 1 2 3 4; do eval "P$i=\$(wg genkey | wg pubkey)"; done
PSK=$(wg genpsk)
printf '%s\n' "$PSK" >"$TMP/psk"
printf '%s\n' "$KEY" >"$TMP/key"
cat >"$TMP/c1.conf" <<EOF
[Interface]
PrivateKey = $KEY
ListenPort = 51820
FwMark = 0x42
[Peer]
PublicKey = $P1
PresharedKey = $PSK
AllowedIPs = 10.1.0.0/16, fd01::/64
Endpoint = 198.51.100.1:1234
PersistentKeepalive = 25
[Peer]
PublicKey = $P2
AllowedIPs = 10.2.0.1/32
Endpoint = [2001:db8::2]:51820
EOF
cat >"$TMP/c2.conf" <<EOF
[Peer]
PublicKey = $P3
AllowedIPs = 10.3.0.0/24
EOF
# Sync to: P1 with fewer allowed IPs, P3 kept, P2 gone, P4 new.
cat >"$TMP/c3.conf" <<EOF
[Interface]
PrivateKey = $KEY
ListenPort = 51821
[Peer]
PublicKey = $P1
PresharedKey = $PSK
PersistentKeepalive = 25
AllowedIPs = 10.1.0.0/16
[Peer]
PublicKey = $P3
AllowedIPs = 10.3.0.0/24
[Peer]
PublicKey = $P4
AllowedIPs = 10.4.0.0/24
EOF
step() {
	local what=$1
	shift
	inns "$NSB" wg "$@" || fail "wg $* failed"
	local args=("$@")
	args[1]=$IFA
	inns "$NSA" "$SG" "${args[@]}" || fail "secureguard ${args[*]} failed"
	same "state after $what" "$(dump "$IFB")" "$(dump "$IFA")"
}
step setconf setconf "$IFB" "$TMP/c1.conf"
step addconf addconf "$IFB" "$TMP/c2.conf"
step syncconf syncconf "$IFB" "$TMP/c3.conf"
step "set" set "$IFB" listen-port 51830 fwmark 1234 private-key "$TMP/key" \
	peer "$P2" preshared-key "$TMP/psk" endpoint "[2001:db8::9]:9" persistent-keepalive 15 \
	allowed-ips "10.9.0.0/16, fd09::/48" peer "$P4" remove peer "$P3" allowed-ips ""
step "set clears" set "$IFB" fwmark off private-key /dev/null peer "$P2" preshared-key /dev/null \
	persistent-keepalive off
# Every [Peer] of a file replaces that peer's allowed IPs, also under addconf and syncconf and
# also without an AllowedIPs key: wg(8) sets the replace flag on the section, not on the key.
step "setconf again" setconf "$IFB" "$TMP/c1.conf"
printf '[Peer]\nPublicKey = %s\nPersistentKeepalive = 7\n' "$P1" >"$TMP/c4.conf"
step "addconf without AllowedIPs" addconf "$IFB" "$TMP/c4.conf"
sed '/^AllowedIPs = 10.1.0.0/d' "$TMP/c1.conf" >"$TMP/c5.conf"
step "setconf before sync" setconf "$IFB" "$TMP/c1.conf"
step "syncconf without AllowedIPs" syncconf "$IFB" "$TMP/c5.conf"
# syncconf also clears a preshared key and keepalive the file no longer has (as wg(8) does
# since 2023; the wg installed here may predate that, so this is checked on our side only).
inns "$NSA" "$SG" setconf "$IFA" "$TMP/c1.conf" || fail "setconf c1"
inns "$NSA" "$SG" syncconf "$IFA" "$TMP/c2.conf" || fail "syncconf c2"
inns "$NSA" "$SG" syncconf "$IFA" "$TMP/c3.conf" || fail "syncconf c3"
sed -i '/^PresharedKey\|^PersistentKeepalive/d' "$TMP/c3.conf"
inns "$NSA" "$SG" syncconf "$IFA" "$TMP/c3.conf" || fail "syncconf c3 without psk"
same "syncconf removes psk and keepalive" \
	"$(printf '%s\t(none)\t(none)\t10.1.0.0/16\t0\t0\t0\toff' "$P1")" \
	"$(wg show "$IFA" dump | grep "^$P1")"
same "syncconf peers" "$(printf '%s\n' "$P1" "$P3" "$P4" | sort)" "$(wg show "$IFA" peers | sort)"

# ---- show / showconf, field by field ----------------------------------------------------------
log "part B: show and showconf output"
inns "$NSA" "$SG" setconf "$IFA" "$TMP/c1.conf" || fail "setconf"
inns "$NSA" "$SG" addconf "$IFA" "$TMP/c2.conf" || fail "addconf"
same "show (pretty)" "$(wg show "$IFA" | norm_blocks)" "$("$SG" show "$IFA" | norm_blocks)"
same "show all" "$(wg show all | norm_blocks)" "$("$SG" show all | norm_blocks)"
same "show (no args)" "$(wg show | norm_blocks)" "$("$SG" | norm_blocks)"
same "showconf" "$(wg showconf "$IFA" | norm_blocks)" "$("$SG" showconf "$IFA" | norm_blocks)"
same "show interfaces" "$(wg show interfaces)" "$("$SG" show interfaces)"
for f in public-key private-key listen-port fwmark peers preshared-keys endpoints allowed-ips \
	latest-handshakes persistent-keepalive transfer dump; do
	same "show $f" "$(wg show "$IFA" "$f" | norm_lines)" "$("$SG" show "$IFA" "$f" | norm_lines)"
	# wg before 2022 prefixed only the first line of `show all endpoints`; compare with the
	# per-interface output instead.
	if [ "$f" = endpoints ]; then
		want=$(for i in $(wg show interfaces); do wg show "$i" endpoints | sed "s/^/$i\t/"; done)
	else
		want=$(wg show all "$f")
	fi
	same "show all $f" "$(printf '%s\n' "$want" | norm_lines)" "$("$SG" show all "$f" | norm_lines)"
done
WG_HIDE_KEYS=never
export WG_HIDE_KEYS
same "show, keys shown" "$(wg show "$IFA" | norm_blocks)" "$("$SG" show "$IFA" | norm_blocks)"
WG_HIDE_KEYS=
# Errors.
"$SG" show "${ID}zz" >/dev/null 2>&1 && fail "show of a missing interface succeeded"
"$SG" show "$IFA" bogus >/dev/null 2>&1 && fail "show with a bad field succeeded"
printf '[Interface]\nListenPort = 1\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.0.0.0/33\n' "$P1" >"$TMP/bad.conf"
inns "$NSA" "$SG" setconf "$IFA" "$TMP/bad.conf" 2>"$TMP/err" && fail "setconf of a bad file succeeded"
grep -q "bad.conf: line 5: AllowedIPs: bad prefix length 33" "$TMP/err" ||
	fail "setconf error message: $(cat "$TMP/err")"
"$SG" set "$IFA" peer "$P1" allowed-ips 10.0.0.0/40 2>/dev/null && fail "set with a bad prefix succeeded"
"$SG" set "$IFA" listen-port 70000 2>/dev/null && fail "set with a bad port succeeded"
"$SG" set "$IFA" peer 2>/dev/null && fail "set with a missing key succeeded"
# A daemon that misbehaves: no errno line, two of them, an endless reply. Each is refused with
# a clear error, promptly, instead of hanging or eating memory.
if command -v socat >/dev/null; then
	FAKE=sgcr$$ FAKE_PIDS=()
	# The fake reads the request (get=1 and its blank line) before it answers, as a daemon does:
	# answering first raced with the client's write (socat then cut the reply short under load,
	# and the client saw a reply without errno).
	fake_daemon() { # fake_daemon NAME SHELL-COMMAND (socat mangles backslashes: none in it)
		socat "UNIX-LISTEN:/run/wireguard/$1.sock,fork" "SYSTEM:head -n 2 >/dev/null; $2" \
			2>/dev/null &
		FAKE_PIDS+=($!)
		wait_sock "$1"
	}
	printf 'listen_port=1\n\n' >"$TMP/reply.n"
	printf 'listen_port=1\nerrno=0\nerrno=0\n\n' >"$TMP/reply.e"
	fake_daemon "${FAKE}n" "cat $TMP/reply.n"
	fake_daemon "${FAKE}e" "cat $TMP/reply.e"
	fake_daemon "${FAKE}y" "yes foo=bar"
	# The same replies with one errno line are fine (the fake daemon itself works).
	printf 'listen_port=1\nerrno=0\n\n' >"$TMP/reply.e"
	fake_daemon "${FAKE}g" "cat $TMP/reply.e"
	"$SG" show "${FAKE}g" listen-port >"$TMP/out" 2>"$TMP/err" || fail "fake daemon g: $(cat "$TMP/err")"
	[ "$(cat "$TMP/out")" = 1 ] || fail "fake daemon g: listen-port $(cat "$TMP/out")"
	printf 'listen_port=1\nerrno=0\nerrno=0\n\n' >"$TMP/reply.e"
	for f in n:"Protocol error" e:"Protocol error" y:"Message too long"; do
		timeout 60 "$SG" show "$FAKE${f%%:*}" >/dev/null 2>"$TMP/err"
		rc=$?
		[ $rc -eq 1 ] || fail "show of fake daemon ${f%%:*}: exit status $rc"
		grep -q "Unable to access interface $FAKE${f%%:*}: ${f#*:}" "$TMP/err" ||
			fail "fake daemon ${f%%:*} message: $(cat "$TMP/err")"
	done
	kill "${FAKE_PIDS[@]}" 2>/dev/null
	wait "${FAKE_PIDS[@]}" 2>/dev/null
	rm -f /run/wireguard/"$FAKE"?.sock
else
	log "part B: socat not installed, fake daemon checks skipped"
fi

# ---- a live tunnel: handshake and transfer formatting ----------------------------------------
log "part B: live tunnel between $IFA and $IFB"
KA=$(wg genkey) KB=$(wg genkey)
cat >"$TMP/a.conf" <<EOF
[Interface]
PrivateKey = $KA
ListenPort = 51820
[Peer]
PublicKey = $(printf '%s' "$KB" | wg pubkey)
AllowedIPs = 10.77.0.2/32
Endpoint = 192.0.2.2:51820
EOF
cat >"$TMP/b.conf" <<EOF
[Interface]
PrivateKey = $KB
ListenPort = 51820
[Peer]
PublicKey = $(printf '%s' "$KA" | wg pubkey)
AllowedIPs = 10.77.0.1/32
Endpoint = 192.0.2.1:51820
PersistentKeepalive = 1
EOF
inns "$NSA" "$SG" setconf "$IFA" "$TMP/a.conf" || fail "setconf a"
inns "$NSB" "$SG" setconf "$IFB" "$TMP/b.conf" || fail "setconf b"
inns "$NSA" ip addr add 10.77.0.1/24 dev "$IFA"
inns "$NSB" ip addr add 10.77.0.2/24 dev "$IFB"
inns "$NSA" ip link set "$IFA" up
inns "$NSB" ip link set "$IFB" up
inns "$NSA" ping -c 3 -i 0.2 -W 2 10.77.0.2 >/dev/null || fail "no ping through the tunnel"
# Make the counters pass 1 KiB so the unit formatting is exercised.
inns "$NSA" ping -c 2 -i 0.2 -s 1000 -W 2 10.77.0.2 >/dev/null
for f in "" dump latest-handshakes transfer endpoints; do
	# The "N seconds ago" may tick between the two calls: retry a few times.
	for try in 1 2 3 4 5; do
		w=$(wg show "$IFA" $f) s=$("$SG" show "$IFA" $f)
		[ "$w" = "$s" ] && break
		sleep 0.3
	done
	same "live show $f" "$w" "$s"
done
"$SG" show "$IFA" | grep -Eq 'latest handshake: ([0-9]+ seconds?|Now)' ||
	fail "no latest handshake line: $("$SG" show "$IFA")"
"$SG" show "$IFA" | grep -Eq 'transfer: [0-9.]+ (B|KiB) received, [0-9.]+ (B|KiB) sent' ||
	fail "no transfer line"

# ---- up / down against wg-quick -----------------------------------------------------------------
log "part B: up/down ($IFC, secureguard) vs wg-quick ($IFD)"
export WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go
KC=$(wg genkey)
mkconf() { # mkconf IFNAME FILE
	cat >"$2" <<-EOF
		[Interface]
		PrivateKey = $KC
		Address = 10.88.0.1/24, fd88::1/64
		PostUp = echo up %i >> $TMP/hooks.%i
		PreDown = echo predown %i >> $TMP/hooks.%i
		PostDown = echo down %i >> $TMP/hooks.%i
		SaveConfig = true

		[Peer]
		PublicKey = $P1
		AllowedIPs = 0.0.0.0/0, ::/0, 10.99.0.0/16
		Endpoint = 198.51.100.7:51820
	EOF
	chmod 600 "$2"
}
mkdir -p "$TMP/c" "$TMP/d"
mkconf "$IFC" "$TMP/c/$IFC.conf"
mkconf "$IFD" "$TMP/d/$IFD.conf"
inns "$NSC" ip link set lo up
inns "$NSD" ip link set lo up
inns "$NSC" "$SG" up "$TMP/c/$IFC.conf" 2>"$TMP/up.c" || { cat "$TMP/up.c"; fail "secureguard up"; }
inns "$NSD" wg-quick up "$TMP/d/$IFD.conf" 2>"$TMP/up.d" || { cat "$TMP/up.d"; fail "wg-quick up"; }
netstate() { # the interface-related state of a namespace, with the name replaced
	local ns=$1 ifn=$2
	{
		inns "$ns" ip -o addr show dev "$ifn" | awk '{print $3, $4}'
		inns "$ns" ip link show dev "$ifn" | grep -o 'mtu [0-9]*\|state [A-Z]*'
		inns "$ns" ip -4 rule show
		inns "$ns" ip -6 rule show
		inns "$ns" ip -4 route show table all | grep -v '^local\|^broadcast'
		inns "$ns" ip -6 route show table all | grep -v '^local\|^multicast\|^anycast\|fe80::'
		inns "$ns" nft list ruleset
		inns "$ns" cat /proc/sys/net/ipv4/conf/all/src_valid_mark
		inns "$ns" wg show "$ifn" fwmark
	} 2>&1 | sed "s/$ifn/IF/g; s/fe80::[0-9a-f:]*/fe80::X/g"
}
same "state after up" "$(netstate "$NSD" "$IFD")" "$(netstate "$NSC" "$IFC")"
inns "$NSC" ip -4 rule show | grep -q "not from all fwmark 0xca6c lookup 51820" ||
	fail "no fwmark rule after up"
same "hooks after up" "up $IFD" "$(sed "s/$IFC/$IFD/" "$TMP/hooks.$IFC")"
inns "$NSC" "$SG" up "$TMP/c/$IFC.conf" 2>/dev/null && fail "second up succeeded"
# The socket directory is shared: the same name in another namespace is refused too.
inns "$NSD" "$SG" up "$TMP/c/$IFC.conf" 2>/dev/null && fail "up of a name in use elsewhere"
# SaveConfig: add a peer at run time; down must write it back.
inns "$NSC" "$SG" set "$IFC" peer "$P2" allowed-ips 10.98.0.0/16 || fail "set on the up interface"
inns "$NSD" wg set "$IFD" peer "$P2" allowed-ips 10.98.0.0/16
# A world-readable config must not stay so once down saves it (it holds the private key).
chmod 644 "$TMP/c/$IFC.conf"
inns "$NSC" "$SG" down "$TMP/c/$IFC.conf" 2>"$TMP/down.c" || { cat "$TMP/down.c"; fail "secureguard down"; }
inns "$NSD" wg-quick down "$TMP/d/$IFD.conf" 2>"$TMP/down.d" || { cat "$TMP/down.d"; fail "wg-quick down"; }
same "state after down" "$(netstate "$NSD" "$IFD")" "$(netstate "$NSC" "$IFC")"
inns "$NSC" ip link show "$IFC" >/dev/null 2>&1 && fail "$IFC still exists after down"
[ -S "/run/wireguard/$IFC.sock" ] && sleep 1
[ -S "/run/wireguard/$IFC.sock" ] && fail "daemon socket still there after down"
same "hooks after down" "$(printf 'up %s\npredown %s\ndown %s' "$IFD" "$IFD" "$IFD")" \
	"$(sed "s/$IFC/$IFD/g" "$TMP/hooks.$IFC")"
# Both saved files hold the same configuration (ours is parsed by wg-quick's own reader too).
# (Listen ports are random; wg-quick also saves the kernel's IPv6 link-local address, which
# we leave out on purpose: the kernel adds one by itself.)
same "SaveConfig (wg part)" "$("$SG" strip "$TMP/d/$IFD.conf" | grep -v ListenPort | norm_blocks)" \
	"$("$SG" strip "$TMP/c/$IFC.conf" | grep -v ListenPort | norm_blocks)"
for key in Address SaveConfig PostUp PreDown PostDown FwMark; do
	same "SaveConfig $key lines" \
		"$(grep -i "^$key" "$TMP/d/$IFD.conf" | grep -v '= fe80:' | sed "s/$IFD/IF/g" | sort)" \
		"$(grep -i "^$key" "$TMP/c/$IFC.conf" | sed "s/$IFC/IF/g" | sort)"
done
[ "$(stat -c %a "$TMP/c/$IFC.conf")" = 600 ] || fail "saved config is not mode 600"
wg-quick strip "$TMP/c/$IFC.conf" >/dev/null 2>&1 || fail "wg-quick cannot read our saved file"

# Table = off: no routes; Table = N: routes into table N, no rules.
sed -i 's/^SaveConfig = true/Table = off/' "$TMP/c/$IFC.conf"
inns "$NSC" "$SG" up "$TMP/c/$IFC.conf" 2>/dev/null || fail "up with Table = off"
[ -z "$(inns "$NSC" ip route show dev "$IFC" | grep -v 'proto kernel')" ] || fail "routes with Table = off"
inns "$NSC" "$SG" down "$TMP/c/$IFC.conf" 2>/dev/null || fail "down with Table = off"
sed -i 's/^Table = off/Table = 1234/' "$TMP/c/$IFC.conf"
inns "$NSC" "$SG" up "$TMP/c/$IFC.conf" 2>/dev/null || fail "up with Table = 1234"
inns "$NSC" ip route show table 1234 | grep -q "default dev $IFC" || fail "no default route in table 1234"
inns "$NSC" ip -4 rule show | grep -q fwmark && fail "fwmark rule with Table = 1234"
inns "$NSC" "$SG" down "$TMP/c/$IFC.conf" 2>/dev/null || fail "down with Table = 1234"
# A failing PostUp takes everything down again.
sed -i 's/^Table = 1234/PostUp = false/' "$TMP/c/$IFC.conf"
inns "$NSC" "$SG" up "$TMP/c/$IFC.conf" 2>/dev/null && fail "up with a failing hook succeeded"
inns "$NSC" ip link show "$IFC" >/dev/null 2>&1 && fail "$IFC left behind after a failed up"
inns "$NSC" "$SG" down "$TMP/c/$IFC.conf" 2>/dev/null && fail "down of a missing interface succeeded"
# SIGTERM during up (here from the hook, to its parent) also takes everything down, policy rules
# included, as wg-quick's trap does.
sed -i 's/^PostUp = false/PostUp = kill -TERM $PPID/' "$TMP/c/$IFC.conf"
inns "$NSC" "$SG" up "$TMP/c/$IFC.conf" 2>"$TMP/err" && fail "up went on after SIGTERM"
grep -q "interrupted by signal 15" "$TMP/err" || fail "up SIGTERM message: $(tail -3 "$TMP/err")"
inns "$NSC" ip link show "$IFC" >/dev/null 2>&1 && fail "$IFC left behind after SIGTERM during up"
inns "$NSC" ip -4 rule show | grep -q fwmark && fail "fwmark rule left behind after SIGTERM"

# Without WG_QUICK_USERSPACE_IMPLEMENTATION, `up` runs secureguardd from beside the binary.
if [ -x "$SG_BIN/secureguardd" ]; then
	log "part B: up/down with secureguardd"
	unset WG_QUICK_USERSPACE_IMPLEMENTATION
	sed -i '/^PostUp = false/d; /^PreDown\|^PostDown\|^PostUp/d' "$TMP/c/$IFC.conf"
	inns "$NSC" "$SG" up "$TMP/c/$IFC.conf" 2>"$TMP/up.c" || { cat "$TMP/up.c"; fail "up with secureguardd"; }
	grep -q "^\[#\] $SG_BIN/secureguardd $IFC\$" "$TMP/up.c" || fail "up did not start secureguardd"
	same "show (secureguardd)" "$(wg show "$IFC" | norm_blocks)" "$("$SG" show "$IFC" | norm_blocks)"
	same "showconf (secureguardd)" "$(wg showconf "$IFC" | norm_blocks)" \
		"$("$SG" showconf "$IFC" | norm_blocks)"
	inns "$NSC" "$SG" down "$TMP/c/$IFC.conf" 2>/dev/null || fail "down with secureguardd"
	inns "$NSC" ip link show "$IFC" >/dev/null 2>&1 && fail "$IFC still exists after down"
else
	log "part B: secureguardd not built, its up/down skipped"
fi

[ "$FAILS" -eq 0 ] || die "part B: $FAILS failure(s)"
log "part B: ok"
exit 0
