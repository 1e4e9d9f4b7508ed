# shellcheck shell=bash disable=SC2154 # PUB_<name> are set by sg_keys (printf -v)
# Shared harness for the integration tests: hosts in network namespaces joined by a bridge,
# WireGuard daemons (secureguardd or wireguard-go) started in them and driven with `wg`,
# bounded waits, assertions and diagnostics. Sourced by tests/integration/test_*.sh and
# scripts/demo.sh; needs bash and root.
#
# Environment:
#   SG_BIN        directory holding secureguardd (ctest sets it to <build>/bin)
#   SG_SRC        source directory (ctest sets it)
#   SG_TEST_IMPL  implementation under test: "secureguardd" (default) or "wireguard-go", to
#                 prove the harness against the reference on both sides
#   SG_TEST_KEEP  1 = keep the temporary directory (logs, captures) after the run
#
# Exit codes follow ctest: 0 pass, 77 skip, anything else fail.
#
# Topology made by sg_hosts N: a hub namespace with a bridge, and N host namespaces, each with
# one veth "veth0" plugged into the bridge and outer addresses 192.0.2.<i>/24 and
# 2001:db8::<i>/64 (documentation ranges, RFC 5737 / RFC 3849; they never leave the namespaces).
# The veth ends are created directly inside the namespaces, so their names never meet the root
# namespace; only the WireGuard interface names must be unique machine-wide because the UAPI
# socket directory /var/run/wireguard is shared by every namespace.

SG_RUN_DIR=/var/run/wireguard
SG_SKIP=77

# ---- messages -----------------------------------------------------------------------------

sg_ts() { date +%H:%M:%S.%3N; }
log() { printf '[%s] %s: %s\n' "$(sg_ts)" "${SG_TEST:-sg}" "$*"; }
skip() {
	log "SKIP: $*"
	exit "$SG_SKIP"
}
fail() {
	log "FAIL: $*"
	sg_diag
	exit 1
}

# ---- setup --------------------------------------------------------------------------------

# sg_init SHORT_ID: checks the prerequisites, names this run and installs the cleanup trap.
# SHORT_ID is 2 letters naming the test; with the shell's pid it prefixes every namespace and
# interface of the run (e.g. sgig12345a, at most 13 characters), so concurrent runs never
# collide. Interfaces are named PFX<letter>, namespaces PFXhub and PFXh<n>.
sg_init() {
	SG_TEST=${SG_TEST:-$(basename "$0" .sh)}
	[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, TUN)"
	local t
	for t in ip ss wg wireguard-go ping socat tcpdump python3 sha256sum timeout; do
		command -v "$t" >/dev/null 2>&1 || skip "missing tool: $t (scripts/deps.sh installs it)"
	done
	[ -c /dev/net/tun ] || skip "no /dev/net/tun"
	SG_IMPL=${SG_TEST_IMPL:-secureguardd}
	case $SG_IMPL in
	secureguardd)
		SG_BIN=${SG_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/bin}
		[ -x "$SG_BIN/secureguardd" ] ||
			skip "$SG_BIN/secureguardd not built (set SG_TEST_IMPL=wireguard-go to run the harness against the reference)"
		;;
	wireguard-go) ;;
	*) skip "SG_TEST_IMPL must be secureguardd or wireguard-go, not '$SG_IMPL'" ;;
	esac
	PFX="sg$1$$"
	sg_clean_stale
	SG_TMP=$(mktemp -d "/tmp/$PFX.XXXXXX")
	SG_NS=()
	SG_IFS=()
	declare -gA D_PID=() D_NS=() D_IMPL=() D_LOG=() D_STOPPED=() D_CHILD=()
	mkdir -p "$SG_RUN_DIR"
	trap sg_cleanup EXIT
	trap 'log "interrupted"; exit 1' INT TERM HUP
	set -E -u -o pipefail
	trap 'sg_on_err $LINENO "$BASH_COMMAND"' ERR
	set -e
	log "run $PFX, implementation under test: $SG_IMPL, work dir $SG_TMP"
}

# Leftovers of an earlier run that had our pid and was killed before its cleanup (SIGKILL at
# a ctest timeout): no live process can own them, since the pid is ours now.
sg_clean_stale() {
	local ns p
	for ns in $(ip netns list | awk -v re="^$PFX(hub|h[0-9]+)\$" '$1 ~ re { print $1 }'); do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
		ip netns del "$ns" 2>/dev/null || true
	done
	rm -f "$SG_RUN_DIR/$PFX"[a-z].sock
}

# Unexpected failure of a setup command (set -e): say which and dump the state.
sg_on_err() {
	local i where=""
	trap - ERR
	set +e
	# The call chain, test file first: "test_x.sh:42 > lib.sh:97 (nsx)".
	for ((i = ${#FUNCNAME[@]} - 1; i >= 1; i--)); do
		where+="${where:+ > }$(basename "${BASH_SOURCE[i]}"):${BASH_LINENO[i - 1]}"
		[ "$i" -gt 1 ] && where+=" (${FUNCNAME[i - 1]})"
	done
	log "FAIL: $where: command failed: $2"
	sg_diag
	exit 1
}

sg_binary() {
	case $1 in
	secureguardd) echo "$SG_BIN/secureguardd" ;;
	wireguard-go) command -v wireguard-go ;;
	*) return 1 ;;
	esac
}

nsx() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@"
}

# sg_hosts N: the hub with its bridge and hosts 1..N; host i's namespace name is in SG_NS[i].
sg_hosts() {
	local n=$1 i ns hub=${PFX}hub
	ip netns add "$hub"
	SG_NS+=("$hub")
	ip -n "$hub" link set lo up
	ip -n "$hub" link add br0 type bridge
	ip -n "$hub" link set br0 up
	for ((i = 1; i <= n; i++)); do
		ns=${PFX}h$i
		ip netns add "$ns"
		SG_NS+=("$ns")
		HOST[i]=$ns
		ip -n "$ns" link set lo up
		ip -n "$hub" link add "p$i" type veth peer name veth0 netns "$ns"
		ip -n "$hub" link set "p$i" master br0 up
		ip -n "$ns" addr add "192.0.2.$i/24" dev veth0
		# nodad: the address is usable at once instead of after ~2 s of duplicate detection.
		ip -n "$ns" addr add "2001:db8::$i/64" dev veth0 nodad
		ip -n "$ns" link set veth0 up
	done
}

# Outer and inner addresses of host i (inner: the tunnel; RFC 5737 / RFC 3849 ranges).
out4() { echo "192.0.2.$1"; }
out6() { echo "2001:db8::$1"; }
in4() { echo "198.51.100.$1"; }
in6() { echo "2001:db8:1::$1"; }

# ---- keys ---------------------------------------------------------------------------------

# sg_keys NAME: files $SG_TMP/NAME.key and NAME.pub; sets PUB_NAME.
sg_keys() {
	(umask 077 && wg genkey >"$SG_TMP/$1.key")
	wg pubkey <"$SG_TMP/$1.key" >"$SG_TMP/$1.pub"
	printf -v "PUB_$1" '%s' "$(cat "$SG_TMP/$1.pub")"
}

# ---- daemons ------------------------------------------------------------------------------

# start_impl NS IF IMPL [fg|daemon]: starts a daemon for interface IF in namespace NS.
#   fg (default): `IMPL -f IF` in the background, stdout and stderr to $SG_TMP/IF.log;
#   daemon: `IMPL IF`, which must detach by itself and return (the wg-quick way).
# Returns when the UAPI socket answers and the TUN link exists (bounded), else fails the test.
start_impl() {
	local ns=$1 ifn=$2 impl=$3 mode=${4:-fg} bin pid rc
	bin=$(sg_binary "$impl")
	[ ${#ifn} -le 15 ] || fail "interface name $ifn longer than 15 characters"
	D_NS[$ifn]=$ns
	D_IMPL[$ifn]=$impl
	D_STOPPED[$ifn]=""
	# A restarted interface gets a fresh log next to the old one (IF.log, IF.2.log, ...).
	if [ -z "${D_LOG[$ifn]:-}" ]; then
		D_LOG[$ifn]=$SG_TMP/$ifn.log
		SG_IFS+=("$ifn")
	else
		local n=2
		while [ -e "$SG_TMP/$ifn.$n.log" ]; do n=$((n + 1)); done
		D_LOG[$ifn]=$SG_TMP/$ifn.$n.log
	fi
	log "start $impl for $ifn in $ns ($mode)"
	if [ "$mode" = fg ]; then
		# `ip netns exec` execs the command, so $! is the daemon itself and `wait` gets its
		# exit status. LOG_LEVEL is wireguard-go's verbosity switch.
		ip netns exec "$ns" env LOG_LEVEL=debug WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 \
			"$bin" -f "$ifn" >"${D_LOG[$ifn]}" 2>&1 &
		D_PID[$ifn]=$!
		D_CHILD[$ifn]=1
	else
		rc=0
		sg_san_env "$ifn"
		timeout 15 ip netns exec "$ns" env LOG_LEVEL=debug "${SAN_ENV[@]}" \
			WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 \
			"$bin" "$ifn" >"${D_LOG[$ifn]}" 2>&1 || rc=$?
		[ "$rc" -eq 0 ] || fail "$impl $ifn (daemon mode) exited with status $rc before detaching"
		D_PID[$ifn]=""
		D_CHILD[$ifn]=""
	fi
	local end=$((${EPOCHREALTIME/./} + 10000000))
	until sg_iface_ready "$ifn"; do
		if [ -n "${D_PID[$ifn]}" ] && sg_gone "${D_PID[$ifn]}"; then
			rc=0
			wait "${D_PID[$ifn]}" || rc=$?
			D_STOPPED[$ifn]=1
			fail "$impl for $ifn exited with status $rc during start-up"
		fi
		[ "${EPOCHREALTIME/./}" -lt "$end" ] ||
			fail "$impl for $ifn: no answering UAPI socket $SG_RUN_DIR/$ifn.sock or no link within 10 s"
		sleep 0.1
	done
	if [ "$mode" != fg ]; then
		pid=$(sg_find_pid "$ns" "$bin") || fail "$impl $ifn detached but no process found in $ns"
		D_PID[$ifn]=$pid
	fi
	log "$impl $ifn up, pid ${D_PID[$ifn]}"
}

# sg_san_env IF: sets SAN_ENV to env(1) assignments for a daemon that detaches (and so may
# close stderr or log to syslog): its sanitizer reports go to files $SG_TMP/IF.san.<pid> that
# check_log_clean reads.
sg_san_env() {
	SAN_ENV=("ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$SG_TMP/$1.san"
		"UBSAN_OPTIONS=${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$SG_TMP/$1.san")
}

# adopt_impl NS IF IMPL LOG: tracks a daemon that something else started (wg-quick), so that
# check_alive, the diagnostics and the cleanup know it.
adopt_impl() {
	local ns=$1 ifn=$2 impl=$3 pid
	D_NS[$ifn]=$ns
	D_IMPL[$ifn]=$impl
	D_LOG[$ifn]=$4
	D_STOPPED[$ifn]=""
	D_CHILD[$ifn]=""
	D_PID[$ifn]=""
	SG_IFS+=("$ifn")
	pid=$(sg_find_pid "$ns" "$(sg_binary "$impl")") || fail "no $impl process in $ns for $ifn"
	D_PID[$ifn]=$pid
}

sg_iface_ready() {
	local ifn=$1 ns=${D_NS[$1]}
	[ -S "$SG_RUN_DIR/$ifn.sock" ] && ip -n "$ns" link show "$ifn" >/dev/null 2>&1 &&
		nsx "$ns" wg show "$ifn" >/dev/null 2>&1
}

# sg_find_pid NS BINARY: the pid of the process in NS running BINARY (for detached daemons).
sg_find_pid() {
	local ns=$1 bin p
	bin=$(readlink -f "$2")
	for p in $(ip netns pids "$ns"); do
		if [ "$(readlink -f "/proc/$p/exe" 2>/dev/null)" = "$bin" ]; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

is_alive() {
	local pid=${D_PID[$1]}
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
		[ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != Z ]
}

# check_alive IF: the daemon has not crashed and still answers on its UAPI socket.
check_alive() {
	is_alive "$1" || fail "${D_IMPL[$1]} for $1 (pid ${D_PID[$1]}) is not running"
	nsx "${D_NS[$1]}" wg show "$1" >/dev/null 2>&1 ||
		fail "${D_IMPL[$1]} for $1 is running but its UAPI socket does not answer"
}

# Sanitizer reports (ASan build) or a crash in a daemon log.
check_log_clean() {
	local f
	for f in "${D_LOG[$1]}" "$SG_TMP/$1.san".*; do
		[ -f "$f" ] || continue
		if grep -qE 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:|UndefinedBehaviorSanitizer|panic:|SUMMARY: ' "$f"; then
			log "---- $f"
			cat "$f"
			fail "${D_IMPL[$1]} for $1: sanitizer report or panic in $f"
		fi
	done
}

# stop_impl IF: SIGTERM, bounded wait for exit, exit status 0 and a clean log.
stop_impl() {
	local ifn=$1 pid=${D_PID[$1]} rc=0
	check_alive "$ifn"
	log "stop ${D_IMPL[$ifn]} $ifn (SIGTERM)"
	kill -TERM "$pid"
	if ! wait_for 10 sg_gone "$pid"; then
		fail "${D_IMPL[$ifn]} $ifn did not exit within 10 s of SIGTERM"
	fi
	if [ -n "${D_CHILD[$ifn]}" ]; then
		wait "$pid" || rc=$?
		[ "$rc" -eq 0 ] || fail "${D_IMPL[$ifn]} $ifn exited with status $rc after SIGTERM"
	fi
	D_STOPPED[$ifn]=1
	check_log_clean "$ifn"
}

# kill_impl IF: SIGKILL (a crash, from the peer's point of view); waits for the TUN to vanish.
kill_impl() {
	local ifn=$1 pid=${D_PID[$1]}
	log "kill -9 ${D_IMPL[$ifn]} $ifn"
	kill -KILL "$pid"
	wait_for 10 sg_gone "$pid" || fail "$ifn: pid $pid survived SIGKILL"
	# The braces catch the shell's own "Killed" job notice.
	[ -z "${D_CHILD[$ifn]}" ] || { wait "$pid"; } 2>/dev/null || true
	D_STOPPED[$ifn]=1
	wait_for 10 sg_no_link "${D_NS[$ifn]}" "$ifn" || fail "$ifn: TUN link still there after the daemon died"
}

sg_gone() { ! kill -0 "$1" 2>/dev/null || [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" = Z ]; }
sg_no_link() { ! ip -n "$1" link show "$2" >/dev/null 2>&1; }

# finish: every daemon still running is alive, stops cleanly and left a clean log; then PASS.
finish() {
	local ifn
	for ifn in "${SG_IFS[@]}"; do
		[ -n "${D_STOPPED[$ifn]:-}" ] && continue
		stop_impl "$ifn"
	done
	log "PASS"
	exit 0
}

# ---- WireGuard configuration --------------------------------------------------------------

# wg_iface NS IF KEYNAME PORT I: private key, listen port, inner addresses in4/in6 of index I,
# link up.
wg_iface() {
	local ns=$1 ifn=$2 key=$3 port=$4 i=$5
	nsx "$ns" wg set "$ifn" private-key "$SG_TMP/$key.key" listen-port "$port"
	ip -n "$ns" addr add "$(in4 "$i")/24" dev "$ifn"
	ip -n "$ns" addr add "$(in6 "$i")/64" dev "$ifn" nodad
	ip -n "$ns" link set "$ifn" up
}

# wg_peer NS IF PUB ALLOWED [wg set peer options...]
wg_peer() {
	local ns=$1 ifn=$2 pub=$3 allowed=$4
	shift 4
	nsx "$ns" wg set "$ifn" peer "$pub" allowed-ips "$allowed" "$@"
}

# up NS IF IMPL KEYNAME PORT I [mode]: start_impl + wg_iface.
up() {
	start_impl "$1" "$2" "$3" "${7:-fg}"
	wg_iface "$1" "$2" "$4" "$5" "$6"
}

# wg_dump_field NS IF PUB FIELD: one field of the peer's line of `wg show IF dump`
# (endpoint, allowed-ips, latest-handshake, rx, tx, keepalive).
wg_dump_field() {
	local ns=$1 ifn=$2 pub=$3 col
	case $4 in
	endpoint) col=3 ;;
	allowed-ips) col=4 ;;
	latest-handshake) col=5 ;;
	rx) col=6 ;;
	tx) col=7 ;;
	keepalive) col=8 ;;
	*) fail "wg_dump_field: unknown field $4" ;;
	esac
	nsx "$ns" wg show "$ifn" dump | awk -v k="$pub" -v c="$col" 'NR > 1 && $1 == k { print $c }'
}

has_handshake() {
	local t
	t=$(wg_dump_field "$1" "$2" "$3" latest-handshake)
	[ -n "$t" ] && [ "$t" -gt 0 ]
}

# udp_drops NS: UDP datagrams the kernel dropped in NS so far (receive buffer full, bad
# checksum), IPv4 and IPv6. A bulk transfer can overrun a daemon's socket; such losses are no
# counter disagreement.
udp_drops() {
	nsx "$1" awk '$1 == "Udp:" && $4 ~ /^[0-9]+$/ { n += $4 }
		$1 == "Udp6InErrors" { n += $2 } END { print n + 0 }' /proc/net/snmp /proc/net/snmp6
}

# assert_counters NS1 IF1 PUB2 NS2 IF2 PUB1: `wg show` transfer counters of a pair agree.
# Both ends count whole outer datagrams, handshake messages included (as wireguard-go does),
# so what one side sent is what the other received, less the datagrams the receiver's kernel
# dropped (at most 1500 bytes each) and a little in flight while we read (256 bytes).
assert_counters() {
	local tx1 rx1 tx2 rx2 d1 d2
	rx2=$(wg_dump_field "$4" "$5" "$6" rx)
	tx1=$(wg_dump_field "$1" "$2" "$3" tx)
	rx1=$(wg_dump_field "$1" "$2" "$3" rx)
	tx2=$(wg_dump_field "$4" "$5" "$6" tx)
	d1=$(udp_drops "$1")
	d2=$(udp_drops "$4")
	log "counters: $2 tx=$tx1 rx=$rx1 (kernel UDP drops $d1), $5 tx=$tx2 rx=$rx2 (kernel UDP drops $d2)"
	[ "$tx1" -gt 0 ] && [ "$rx1" -gt 0 ] || fail "$2: transfer counters stay zero after traffic"
	[ "$rx2" -le $((tx1 + 256)) ] || fail "$5 received $rx2 bytes from $2, which sent only $tx1"
	[ "$rx1" -le $((tx2 + 256)) ] || fail "$2 received $rx1 bytes from $5, which sent only $tx2"
	[ $((tx1 - rx2)) -le $((256 + d2 * 1500)) ] ||
		fail "$2 sent $tx1 bytes but $5 counted only $rx2 received ($d2 kernel drops)"
	[ $((tx2 - rx1)) -le $((256 + d1 * 1500)) ] ||
		fail "$5 sent $tx2 bytes but $2 counted only $rx1 received ($d1 kernel drops)"
}

# ---- traffic ------------------------------------------------------------------------------

ping1() { nsx "$1" ping -c 1 -W 1 "$2" >/dev/null 2>&1; }

# wait_ping NS ADDR [SECS]: first reply within SECS (handshake included).
wait_ping() {
	local secs=${3:-10}
	wait_for "$secs" ping1 "$1" "$2" || fail "no ping reply from $2 in $1 within $secs s"
}

# assert_ping NS ADDR [COUNT]: an established tunnel answers every one of COUNT pings.
assert_ping() {
	local ns=$1 addr=$2 n=${3:-3} out
	if ! out=$(nsx "$ns" ping -c "$n" -i 0.2 -W 2 "$addr" 2>&1); then
		printf '%s\n' "$out"
		fail "ping $addr from $ns lost packets"
	fi
	# A here-string, not a pipe: with pipefail, a pipe into grep -q once failed a passing ping
	# (CI, ASan pass, 3 of 3 received) with no other explanation than the writer's side.
	grep -q " $n received" <<<"$out" || {
		printf '%s\n' "$out"
		fail "ping $addr from $ns: not all $n replies"
	}
}

assert_no_ping() {
	if nsx "$1" ping -c 2 -i 0.2 -W 1 "$2" >/dev/null 2>&1; then
		fail "ping $2 from $1 answered but must not"
	fi
}

# tcp_transfer SRC_NS DST_NS DST_ADDR MIB: MIB MiB of random data over TCP, sha256 compared.
tcp_transfer() {
	local src=$1 dst=$2 addr=$3 mib=$4 port=$((20000 + RANDOM % 20000)) lpid rc=0 a b
	local in=$SG_TMP/tx.$port out=$SG_TMP/rx.$port listen=TCP4-LISTEN connect=TCP4
	case $addr in *:*)
		listen=TCP6-LISTEN
		connect=TCP6
		addr="[$addr]"
		;;
	esac
	head -c "$((mib * 1048576))" /dev/urandom >"$in"
	nsx "$dst" timeout 30 socat -u "$listen:$port,reuseaddr" "CREATE:$out" &
	lpid=$!
	wait_for 5 sg_listening "$dst" "$port" || fail "socat listener on port $port did not start"
	nsx "$src" timeout 25 socat -u "OPEN:$in" "$connect:$addr:$port,connect-timeout=5" || rc=$?
	[ "$rc" -eq 0 ] || fail "TCP send of $mib MiB to $addr failed (socat status $rc)"
	wait "$lpid" || fail "TCP receiver on $addr:$port failed"
	a=$(sha256sum <"$in" | cut -d' ' -f1)
	b=$(sha256sum <"$out" | cut -d' ' -f1)
	[ "$a" = "$b" ] || fail "TCP transfer to $addr: sha256 differs ($(stat -c %s "$out") of $((mib * 1048576)) bytes arrived)"
	log "TCP $mib MiB to $addr: sha256 matches"
	rm -f "$in" "$out"
}

sg_listening() { nsx "$1" ss -Hltn "sport = :$2" | grep -q .; }

# ---- a pair of peers ----------------------------------------------------------------------
# The common case: host 1 (A, interface IA, keys a) and host 2 (B, IB, keys b), port PORT,
# inner addresses in4/in6 1 and 2.

pair_init() {
	sg_hosts "${1:-2}"
	A=${HOST[1]} B=${HOST[2]}
	IA=${PFX}a IB=${PFX}b
	PORT=51820
	sg_keys a
	sg_keys b
}

# pair_up IMPL_A IMPL_B FIRST: starts both daemons and lets FIRST (a or b) ping first. Only
# FIRST has its peer's endpoint, so FIRST must initiate the handshake and the other side must
# learn FIRST's endpoint from it; both `wg show` then report a handshake.
pair_up() {
	local ia=$1 ib=$2 first=$3 ep
	up "$A" "$IA" "$ia" a "$PORT" 1
	up "$B" "$IB" "$ib" b "$PORT" 2
	if [ "$first" = a ]; then
		wg_peer "$A" "$IA" "$PUB_b" "$(in4 2)/32,$(in6 2)/128" endpoint "$(out4 2):$PORT"
		wg_peer "$B" "$IB" "$PUB_a" "$(in4 1)/32,$(in6 1)/128"
		log "A ($ia) pings B ($ib) first: A initiates"
		wait_ping "$A" "$(in4 2)" 10
		ep=$(wg_dump_field "$B" "$IB" "$PUB_a" endpoint)
		assert_eq "$ep" "$(out4 1):$PORT" "B's endpoint for A, learned from A's initiation"
	else
		wg_peer "$A" "$IA" "$PUB_b" "$(in4 2)/32,$(in6 2)/128"
		wg_peer "$B" "$IB" "$PUB_a" "$(in4 1)/32,$(in6 1)/128" endpoint "$(out4 1):$PORT"
		log "B ($ib) pings A ($ia) first: B initiates"
		wait_ping "$B" "$(in4 1)" 10
		ep=$(wg_dump_field "$A" "$IA" "$PUB_b" endpoint)
		assert_eq "$ep" "$(out4 2):$PORT" "A's endpoint for B, learned from B's initiation"
	fi
	has_handshake "$A" "$IA" "$PUB_b" || fail "A's wg show has no latest handshake for B"
	has_handshake "$B" "$IB" "$PUB_a" || fail "B's wg show has no latest handshake for A"
}

# pair_traffic OUTER MIB: pings both ways over both inner families, counters, TCP both ways
# (MIB MiB A to B over inner IPv4, half that B to A over inner IPv6), counters again.
pair_traffic() {
	log "pings both ways, inner IPv4 and IPv6 ($1 outer)"
	assert_ping "$A" "$(in4 2)"
	assert_ping "$B" "$(in4 1)"
	assert_ping "$A" "$(in6 2)"
	assert_ping "$B" "$(in6 1)"
	assert_counters "$A" "$IA" "$PUB_b" "$B" "$IB" "$PUB_a"
	tcp_transfer "$A" "$B" "$(in4 2)" "$2"
	tcp_transfer "$B" "$A" "$(in6 1)" "$(($2 > 1 ? $2 / 2 : 1))"
	assert_counters "$A" "$IA" "$PUB_b" "$B" "$IB" "$PUB_a"
}

# pair_outer6: both sides switch to the other's IPv6 outer address; traffic follows.
pair_outer6() {
	log "switch both endpoints to IPv6 outer addresses"
	nsx "$A" wg set "$IA" peer "$PUB_b" endpoint "[$(out6 2)]:$PORT"
	nsx "$B" wg set "$IB" peer "$PUB_a" endpoint "[$(out6 1)]:$PORT"
	pair_traffic IPv6 "$1"
	assert_eq "$(wg_dump_field "$A" "$IA" "$PUB_b" endpoint)" "[$(out6 2)]:$PORT" "A's endpoint for B"
	assert_eq "$(wg_dump_field "$B" "$IB" "$PUB_a" endpoint)" "[$(out6 1)]:$PORT" "B's endpoint for A"
}

# ---- waiting and asserting ----------------------------------------------------------------

# wait_for SECS CMD [ARGS...]: runs CMD every 0.1 s until it succeeds (0) or SECS pass (1).
wait_for() {
	local secs=$1 end now
	shift
	end=$((${EPOCHREALTIME/./} + secs * 1000000))
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		now=${EPOCHREALTIME/./}
		[ "$now" -lt "$end" ] || return 1
		sleep 0.1
	done
}

assert_eq() { [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"; }

# assert_near A B TOL_PCT TOL_ABS WHAT: |A - B| <= max(TOL_ABS, TOL_PCT% of max(A,B)).
assert_near() {
	local a=$1 b=$2 pct=$3 abs=$4 d m tol
	d=$((a > b ? a - b : b - a))
	m=$((a > b ? a : b))
	tol=$((m * pct / 100))
	[ "$tol" -ge "$abs" ] || tol=$abs
	[ "$d" -le "$tol" ] || fail "$5: $a vs $b differ by $d (> $tol)"
}

# ---- diagnostics and cleanup --------------------------------------------------------------

sg_diag() {
	local ifn ns
	[ -n "${SG_DIAG_DONE:-}" ] && return 0
	SG_DIAG_DONE=1
	echo "======== diagnostics ($PFX) ========"
	for ifn in "${SG_IFS[@]}"; do
		ns=${D_NS[$ifn]}
		# A daemon that hit a sanitizer error is still writing its report for a moment.
		if [ -n "${D_PID[$ifn]:-}" ] && grep -qE 'Sanitizer|runtime error:' "${D_LOG[$ifn]}" 2>/dev/null; then
			wait_for 5 sg_gone "${D_PID[$ifn]}" || true
		fi
		echo "--- $ifn: ${D_IMPL[$ifn]} in $ns, pid ${D_PID[$ifn]:-?}" \
			"($(is_alive "$ifn" && echo alive || echo 'not running'))"
		nsx "$ns" wg show "$ifn" 2>&1 | sed 's/^/    /'
		ip -n "$ns" -brief addr 2>&1 | sed 's/^/    /'
		echo "--- log ${D_LOG[$ifn]} (last 60 lines)"
		tail -n 60 "${D_LOG[$ifn]}" 2>/dev/null | sed 's/^/    /'
	done
	echo "======== end of diagnostics ========"
}

sg_cleanup() {
	local rc=$? ns p ifn
	trap - ERR EXIT
	set +e
	for ns in "${SG_NS[@]}"; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	done
	for p in $(jobs -p); do kill -KILL "$p" 2>/dev/null; done
	wait 2>/dev/null
	for ns in "${SG_NS[@]}"; do ip netns del "$ns" 2>/dev/null; done
	for ifn in "${SG_IFS[@]}"; do rm -f "$SG_RUN_DIR/$ifn.sock"; done
	rm -f "$SG_RUN_DIR/$PFX"[a-z].sock
	if [ "${SG_TEST_KEEP:-0}" = 1 ]; then
		log "kept $SG_TMP"
	else
		rm -rf "$SG_TMP"
	fi
	exit "$rc"
}
