# shellcheck shell=bash
# shellcheck disable=SC2034 # TCK, PIDA, PIDB, FPUBA ... are set here for the caller
# Shared by the benchmark scripts; sourced, not run.
#
# bench_cc: a bench program compiled with cc against the static libraries of a build directory
# (bench/handshake.sh, datapath.sh, handshake_flood.sh), so the benches need no CMake change.
#
# The rest sets up a tunnel between two network namespaces on a veth (bench/throughput.sh,
# bench/handshake_flood.sh): namespace A runs the receiving side (iperf3 server), B the sender;
# outer veth 192.0.2.0/24, inner 10.77.0.0/24. The caller sets SRC, SGD, SGC, RES (a directory
# for logs and results, removed on exit unless SG_BENCH_KEEP is set) and SGD_ENV ("K=V ..." extra
# environment for every secureguardd, may be empty), then calls pair_init PREFIX NPAIRS. Every
# name carries PREFIX (one per script) and the script's PID, so runs never collide.

# bench_cc OUT "LIB..." SOURCE...: compiles SOURCE... (bench/*.c, bench_core.h beside them)
# into OUT against the static libraries libLIB.a found under $BUILD.
bench_cc() {
	local out=$1 l f libs=()
	for l in $2; do
		f=$(find "$BUILD" -maxdepth 3 -name "lib$l.a" -print -quit 2>/dev/null || true)
		[ -n "$f" ] || { echo "bench: lib$l.a not under $BUILD; run make (or set SG_BUILD)" >&2; exit 1; }
		libs+=("$f")
	done
	shift 2
	cc -std=c17 -O2 -D_GNU_SOURCE -I"$SRC/src" -I"$SRC/include" -I"$SRC/bench" "$@" \
		"${libs[@]}" -lcrypto -lpthread -o "$out"
}

# Root, the daemons and the tools a pair needs; installs iperf3 and wireguard-go if missing.
pair_require() {
	[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (namespaces, TUN)" >&2; exit 1; }
	[ -x "$SGD" ] && [ -x "$SGC" ] || { echo "bench: $SGD or $SGC missing; run make first" >&2; exit 1; }
	command -v iperf3 >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iperf3 >/dev/null
	command -v wireguard-go >/dev/null || "$SRC/scripts/deps.sh"
}

# pair_init PREFIX NPAIRS: the names of this run (PREFIX, e.g. sgb, then A/B, the PID and the
# pair number 1..NPAIRS) and the traps that remove all of them on exit, INT and TERM.
pair_init() {
	local k
	PFX=$1
	ID=$$
	TCK=$(getconf CLK_TCK)
	ALL_NS=""
	for k in $(seq "$2"); do ALL_NS="$ALL_NS ${PFX}A${ID}_$k ${PFX}B${ID}_$k"; done
	trap pair_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# Ends every process running in the given namespaces (all of them started by this script:
# daemons, iperf3, ping, flood_gen), waits for them boundedly, then deletes the namespaces.
kill_ns() {
	local n pids
	for n in "$@"; do
		ip netns list | grep -qw "^$n" || continue
		pids=$(ip netns pids "$n" 2>/dev/null || true)
		[ -z "$pids" ] || kill $pids 2>/dev/null || true
		for _ in $(seq 40); do
			[ -z "$(ip netns pids "$n" 2>/dev/null)" ] && break
			sleep 0.05
		done
		pids=$(ip netns pids "$n" 2>/dev/null || true)
		[ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
		ip netns del "$n" 2>/dev/null || true
	done
}

pair_cleanup() {
	kill_ns $ALL_NS
	wait 2>/dev/null || true
	rm -f /var/run/wireguard/"$PFX"[ab]"$ID"_?.sock
	[ -n "${SG_BENCH_KEEP:-}" ] && echo "bench: kept $RES" >&2 || rm -rf "$RES"
}

rec() { echo "$1 $2 $3" >>"$RES/results"; } # pair metric value (no spaces in value)

# cpu_ticks PID... -> utime+stime summed; the fields after the ")" of comm start at field 3.
cpu_ticks() {
	local p t=0 f
	for p; do
		f=$(sed 's/.*) //' "/proc/$p/stat")
		set -- $f
		t=$((t + ${12} + ${13}))
	done
	echo "$t"
}

# The iperf3 server takes one test at a time and may still be finishing the last one.
iperf_c() { # OUT ARGS... (client in B, to A's inner address; iperf3's JSON in OUT)
	local out=$1
	shift
	for _ in $(seq 20); do
		# stderr apart: iperf3 warns there (UDP -l 1380 "exceeds TCP MSS" is harmless: 1380+28
		# bytes fit the tunnel's 1420 MTU; the MSS is smaller by the TCP timestamp option).
		if ip netns exec "$NB" iperf3 -c 10.77.0.1 -J "$@" >"$out" 2>"$out.stderr"; then
			return 0
		fi
		grep -q busy "$out" "$out.stderr" || break
		sleep 0.1
	done
	echo "bench: iperf3 -c $* failed:" >&2
	head -c 400 "$out" "$out.stderr" >&2
	return 1
}

ping_rtts() { # OUT [COUNT] -> COUNT (default 100) pings B->A at 10 ms; per-packet RTTs in OUT
	ip netns exec "$NB" ping -n -c "${2:-100}" -i 0.01 -W 2 10.77.0.1 >"$1" 2>&1 || true
}

# pair_start NS IMPL IFNAME -> pid in $pid, once its UAPI socket is there (IMPL sg|wg).
pair_start() {
	if [ "$2" = sg ]; then
		ip netns exec "$1" env $SGD_ENV "$SGD" -f "$3" 2>"$RES/$3.log" &
	else
		ip netns exec "$1" env WG_PROCESS_FOREGROUND=1 wireguard-go "$3" >"$RES/$3.log" 2>&1 &
	fi
	pid=$!
	for _ in $(seq 100); do
		[ -S "/var/run/wireguard/$3.sock" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if [ ! -S "/var/run/wireguard/$3.sock" ]; then
		echo "bench: $2 daemon for $3 did not come up:" >&2
		tail -5 "$RES/$3.log" >&2
		return 1
	fi
	# `ip netns exec` and `env` exec, so $! is the daemon itself.
	case $(cat "/proc/$pid/comm") in secureguardd | wireguard-go) ;; *)
		echo "bench: pid $pid is not the $2 daemon" >&2; return 1 ;;
	esac
}

# pair_up KEY N IMPL_A IMPL_B MODE (IMPL sg|wg, MODE classic|fips): pair number N's namespaces,
# veth, daemons and keys, checked with a ping through the tunnel, and an iperf3 server in A.
# Sets NA NB (namespaces), IFA IFB (tunnel interfaces), PIDA PIDB (daemons), PUBA (A's public
# key) and, in FIPS mode, FPUBA (A's FIPS public key). Run in a subshell: its EXIT trap removes
# the pair's namespaces and everything in them.
pair_up() {
	local key=$1 n=$2 ia=$3 ib=$4 mode=$5
	NA=${PFX}A${ID}_$n NB=${PFX}B${ID}_$n IFA=${PFX}a${ID}_$n IFB=${PFX}b${ID}_$n
	local va=${PFX}va${ID}_$n vb=${PFX}vb${ID}_$n
	trap 'kill_ns $NA $NB' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	ip netns add "$NA"
	ip netns add "$NB"
	ip link add "$va" type veth peer name "$vb"
	ip link set "$va" netns "$NA"
	ip link set "$vb" netns "$NB"
	ip -n "$NA" addr add 192.0.2.1/24 dev "$va"
	ip -n "$NB" addr add 192.0.2.2/24 dev "$vb"
	for ns in "$NA" "$NB"; do ip -n "$ns" link set lo up; done
	ip -n "$NA" link set "$va" up
	ip -n "$NB" link set "$vb" up

	local pid ka kb pb
	pair_start "$NA" "$ia" "$IFA"
	PIDA=$pid
	pair_start "$NB" "$ib" "$IFB"
	PIDB=$pid
	ka=$(wg genkey) kb=$(wg genkey)
	PUBA=$(echo "$ka" | wg pubkey) pb=$(echo "$kb" | wg pubkey)
	ip netns exec "$NA" wg set "$IFA" listen-port 51820 private-key <(echo "$ka") \
		peer "$pb" allowed-ips 10.77.0.2/32
	ip netns exec "$NB" wg set "$IFB" listen-port 51820 private-key <(echo "$kb") \
		peer "$PUBA" allowed-ips 10.77.0.1/32 endpoint 192.0.2.1:51820
	FPUBA=
	if [ "$mode" = fips ]; then
		local fa fb fpb
		fa=$("$SGC" genkey --fips) fb=$("$SGC" genkey --fips)
		FPUBA=$(echo "$fa" | "$SGC" pubkey --fips) fpb=$(echo "$fb" | "$SGC" pubkey --fips)
		ip netns exec "$NA" "$SGC" set "$IFA" fips-private-key <(echo "$fa") crypto-mode fips \
			peer "$pb" fips-public-key "$fpb"
		ip netns exec "$NB" "$SGC" set "$IFB" fips-private-key <(echo "$fb") crypto-mode fips \
			peer "$PUBA" fips-public-key "$FPUBA"
	fi
	ip -n "$NA" addr add 10.77.0.1/24 dev "$IFA"
	ip -n "$NB" addr add 10.77.0.2/24 dev "$IFB"
	ip -n "$NA" link set "$IFA" up
	ip -n "$NB" link set "$IFB" up

	# The first ping starts the handshake; allow for it to be lost once or twice.
	local ok=0
	for _ in $(seq 10); do
		ip netns exec "$NB" ping -n -c 1 -W 1 10.77.0.1 >/dev/null 2>&1 && { ok=1; break; }
	done
	[ "$ok" = 1 ] || { echo "bench: $key: no ping through the tunnel" >&2; return 1; }
	if [ "$mode" = fips ]; then
		ip netns exec "$NB" "$SGC" show "$IFB" | grep -qi fips ||
			{ echo "bench: $key: interface does not report FIPS mode" >&2; return 1; }
	fi

	ip netns exec "$NA" iperf3 -s -B 10.77.0.1 >/dev/null 2>&1 &
	for _ in $(seq 100); do
		[ -n "$(ip netns exec "$NA" ss -Hltn 'sport = :5201')" ] && break
		sleep 0.05
	done
}

# pair_run KEY N RUN_PAIR_ARGS...: runs `run_pair KEY N ARGS...` (the caller's) in a subshell
# with set -e, shows its progress and time on stderr, and records "KEY failed 1" if it fails.
pair_run() {
	local s rc
	printf '  running %-4s ...' "$1" >&2
	s=$(date +%s)
	set +e
	(set -e; run_pair "$@")
	rc=$?
	set -e
	[ "$rc" -eq 0 ] || { rec "$1" failed 1; printf ' FAILED' >&2; }
	printf ' %ss\n' $(($(date +%s) - s)) >&2
}

# pair_all KEY...: pair_run for each KEY that is in $PAIRS (comma-separated), in the order
# given, numbered from 1, with the arguments `pair_args KEY` (the caller's) prints.
pair_all() {
	local p n=0
	for p; do
		case ",$PAIRS," in *",$p,"*) ;; *) continue ;; esac
		n=$((n + 1))
		# shellcheck disable=SC2046 # the arguments are words without spaces
		pair_run "$p" "$n" $(pair_args "$p")
	done
	touch "$RES/results"
}
