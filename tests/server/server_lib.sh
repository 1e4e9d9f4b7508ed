# shellcheck shell=bash
# Helpers for the management-server integration tests (tests/integration/test_server_*.sh):
# start `secureguard server` on 127.0.0.1 and a free port, wait until it answers, stop it with
# SIGTERM (graceful: exit status 0) or SIGKILL, and check its log for sanitizer reports.
#
# Environment: SG_BIN (build bin dir), SG_SRC (source dir). Sets SG (the CLI binary).

SG_SRC=${SG_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
SG_BIN=${SG_BIN:-$SG_SRC/build/bin}
SG=$SG_BIN/secureguard

srv_log() { printf '[%s] %s\n' "${SRV_TEST:-server}" "$*"; }

# srv_start NAME DBURL DATADIR [extra options...]: starts a server; sets SRV_PID_<NAME>,
# SRV_PORT_<NAME>, SRV_LOG_<NAME> (its log: DATADIR/server.log, its stderr, or the --log-file of
# the options), SRV_ERR_<NAME> (its stderr), SRV_URL_<NAME>. The first admin comes from
# SG_ADMIN_EMAIL and SG_ADMIN_PASSWORD in the environment.
srv_start() {
	local name=$1 db=$2 dir=$3 pid port logfile a prev=
	shift 3
	logfile=$dir/server.log
	for a in "$@"; do
		[ "$prev" = --log-file ] && logfile=$a
		prev=$a
	done
	mkdir -p "$dir"
	rm -f "$dir/port"
	"$SG" server --listen 127.0.0.1:0 --port-file "$dir/port" --data-dir "$dir" --db "$db" \
		"$@" >>"$dir/server.log" 2>&1 &
	pid=$!
	for _ in $(seq 1 200); do
		if [ -s "$dir/port" ]; then
			port=$(cat "$dir/port")
			break
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			srv_log "server $name exited during start-up:"
			cat "$dir/server.log"
			return 1
		fi
		sleep 0.1
	done
	[ -n "${port:-}" ] || {
		srv_log "server $name did not start listening within 20 s"
		cat "$dir/server.log"
		return 1
	}
	printf -v "SRV_PID_$name" '%s' "$pid"
	printf -v "SRV_PORT_$name" '%s' "$port"
	printf -v "SRV_LOG_$name" '%s' "$logfile"
	printf -v "SRV_ERR_$name" '%s' "$dir/server.log"
	printf -v "SRV_URL_$name" '%s' "http://127.0.0.1:$port"
	srv_log "server $name: pid $pid, port $port, db ${db%%:*}"
}

# srv_stop NAME: SIGTERM, exit within 15 s with status 0, no sanitizer report in the log.
srv_stop() {
	local name=$1 pidv="SRV_PID_$1" logv="SRV_LOG_$1" errv="SRV_ERR_$1" rc=0
	local pid=${!pidv} err=${!errv:-${!logv}}
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 1 150); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		srv_log "server $name did not exit within 15 s of SIGTERM"
		kill -KILL "$pid"
		return 1
	fi
	wait "$pid" || rc=$?
	unset "$pidv"
	srv_check_log "$err" || return 1
	[ "$rc" -eq 0 ] || {
		srv_log "server $name exited with status $rc after SIGTERM:"
		tail -n 40 "$err" "${!logv}"
		return 1
	}
	grep -qE 'event=server_stopped|"event":"server_stopped"' "${!logv}" || {
		srv_log "server $name: no server_stopped line in its log"
		return 1
	}
	srv_log "server $name stopped cleanly"
}

# srv_kill NAME: SIGKILL (a crash).
srv_kill() {
	local pidv="SRV_PID_$1"
	[ -n "${!pidv:-}" ] || return 0
	kill -KILL "${!pidv}" 2>/dev/null || true
	{ wait "${!pidv}"; } 2>/dev/null || true
	unset "$pidv"
}

srv_check_log() {
	if grep -qE 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:|SUMMARY: ' "$1"; then
		srv_log "sanitizer report in $1:"
		cat "$1"
		return 1
	fi
}

# srv_login URL EMAIL PASSWORD: prints an access token.
srv_login() {
	python3 - "$1" "$2" "$3" <<'PY'
import json, sys, urllib.request
url, email, pw = sys.argv[1:4]
req = urllib.request.Request(url + "/api/auth/login", method="POST",
                             data=json.dumps({"email": email, "password": pw}).encode(),
                             headers={"Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(req, timeout=30))["access_token"])
PY
}

# srv_fail MSG...: logs FAIL: MSG and exits 1.
srv_fail() {
	srv_log "FAIL: $*"
	exit 1
}

# srv_kill_all: SIGKILL to every server srv_start started and that is still running (for traps).
srv_kill_all() {
	local v
	for v in ${!SRV_PID_*}; do kill -KILL "${!v}" 2>/dev/null; done
}

# srv_admin_env PREFIX: exports the first admin's SG_ADMIN_EMAIL and a random SG_ADMIN_PASSWORD.
srv_admin_env() {
	export SG_ADMIN_EMAIL=root@example.com
	SG_ADMIN_PASSWORD="$1-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
	export SG_ADMIN_PASSWORD
}

# srv_need NAME STARTER [ARGS...]: runs STARTER (pg_start, redis_start ...); exits 77 (skip)
# when it says its binaries are missing, 1 when it fails.
srv_need() {
	local name=$1 rc
	shift
	"$@"
	rc=$?
	[ $rc -eq 77 ] && { srv_log "SKIP: $name is not installed"; exit 77; }
	[ $rc -eq 0 ] || srv_fail "could not start $name"
}
