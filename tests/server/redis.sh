# shellcheck shell=bash
# A throwaway Redis (Debian's redis-server) on loopback for the management-server tests and
# benchmarks. Source this file, then:
#
#   redis_start [tls] || exit $?   # 0 started; 77 = redis-server absent (skip); 1 = failure
#   trap redis_stop EXIT           # stops it and deletes its directory
#   redis_restart                  # SIGTERM, then the same configuration on the same port
#
# It runs in a fresh mktemp directory on 127.0.0.1 and a free port, without persistence, with
# the default user switched off and one ACL user `sgapp` (a random password) allowed the sg:*
# keys and channels, and exports
#
#   SG_REDIS_URL   redis://sgapp:PASSWORD@127.0.0.1:PORT/1  (rediss://...?ca=CA with tls)
#   SG_REDIS_PORT, SG_REDIS_DIR, SG_REDIS_PASSWORD_VALUE
#
# With `tls` it serves TLS only (tls-port, port 0), with a certificate for 127.0.0.1 from a CA
# made here ($SG_REDIS_DIR/ca.pem), and asks clients for a certificate of the same CA
# (client.pem, client.key; SG_REDIS_URL names them).
# redis_cli ARGS... runs redis-cli as sgapp against it.

redis__log() { printf '[redis.sh] %s\n' "$*" >&2; }

redis__free_port() {
	python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

redis__run() {
	redis-server "$SG_REDIS_DIR/redis.conf" >>"$SG_REDIS_DIR/redis.log" 2>&1 &
	SG_REDIS_PID=$!
	for _ in $(seq 1 100); do
		redis_cli PING 2>/dev/null | grep -q PONG && return 0
		kill -0 "$SG_REDIS_PID" 2>/dev/null || break
		sleep 0.1
	done
	redis__log "redis-server did not answer within 10 s:"
	tail -n 20 "$SG_REDIS_DIR/redis.log" >&2
	return 1
}

redis_start() {
	local tls=${1:-}
	command -v redis-server >/dev/null || {
		redis__log "redis-server not found; scripts/deps.sh installs it"
		return 77
	}
	SG_REDIS_DIR=$(mktemp -d /tmp/sg-redis.XXXXXX) || return 1
	chmod 700 "$SG_REDIS_DIR"
	SG_REDIS_PORT=$(redis__free_port)
	SG_REDIS_PASSWORD_VALUE=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
	SG_REDIS_TLS=$tls
	{
		echo "bind 127.0.0.1"
		echo "dir $SG_REDIS_DIR"
		echo 'save ""'
		echo "appendonly no"
		echo "daemonize no"
		echo "protected-mode yes"
		echo "user default off"
		echo "user sgapp on >$SG_REDIS_PASSWORD_VALUE ~sg:* &sg:* +@all -@dangerous"
		if [ "$tls" = tls ]; then
			echo "port 0"
			echo "tls-port $SG_REDIS_PORT"
			echo "tls-cert-file $SG_REDIS_DIR/server.pem"
			echo "tls-key-file $SG_REDIS_DIR/server.key"
			echo "tls-ca-cert-file $SG_REDIS_DIR/ca.pem"
			echo "tls-auth-clients yes"
		else
			echo "port $SG_REDIS_PORT"
		fi
	} >"$SG_REDIS_DIR/redis.conf"
	if [ "$tls" = tls ]; then
		(
			cd "$SG_REDIS_DIR" || exit 1
			openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
				-subj /CN=sg-test-redis-ca -keyout ca.key -out ca.pem &&
				openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
					-subj /CN=127.0.0.1 -keyout server.key -out server.csr &&
				openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
					-days 2 -extfile <(echo "subjectAltName=IP:127.0.0.1") -out server.pem &&
				openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
					-subj /CN=sg-server -keyout client.key -out client.csr &&
				openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
					-days 2 -extfile <(echo "extendedKeyUsage=clientAuth") -out client.pem
		) >"$SG_REDIS_DIR/openssl.log" 2>&1 || {
			redis__log "making the test certificates failed:"
			cat "$SG_REDIS_DIR/openssl.log" >&2
			return 1
		}
		export SG_REDIS_URL="rediss://sgapp:$SG_REDIS_PASSWORD_VALUE@127.0.0.1:$SG_REDIS_PORT/1?ca=$SG_REDIS_DIR/ca.pem&cert=$SG_REDIS_DIR/client.pem&key=$SG_REDIS_DIR/client.key"
	else
		export SG_REDIS_URL="redis://sgapp:$SG_REDIS_PASSWORD_VALUE@127.0.0.1:$SG_REDIS_PORT/1"
	fi
	export SG_REDIS_PORT SG_REDIS_DIR SG_REDIS_PASSWORD_VALUE
	redis__run || return 1
	redis__log "$(redis-server --version | awk '{print $1, $2, $3}') on 127.0.0.1:$SG_REDIS_PORT${tls:+ (TLS)} ($SG_REDIS_DIR)"
}

redis_cli() {
	local t=()
	[ "${SG_REDIS_TLS:-}" = tls ] && t=(--tls --cacert "$SG_REDIS_DIR/ca.pem"
		--cert "$SG_REDIS_DIR/client.pem" --key "$SG_REDIS_DIR/client.key")
	REDISCLI_AUTH=$SG_REDIS_PASSWORD_VALUE redis-cli "${t[@]}" -h 127.0.0.1 -p "$SG_REDIS_PORT" \
		--user sgapp -n 1 "$@"
}

# redis_down: SIGTERM and wait (10 s at most, then SIGKILL). Safe under set -e (the benches).
redis_down() {
	[ -n "${SG_REDIS_PID:-}" ] || return 0
	kill -TERM "$SG_REDIS_PID" 2>/dev/null || true
	for _ in $(seq 1 100); do
		kill -0 "$SG_REDIS_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$SG_REDIS_PID" 2>/dev/null || true
	wait "$SG_REDIS_PID" 2>/dev/null || true
	SG_REDIS_PID=
}

redis_up() { redis__run; }

redis_restart() { redis_down && redis_up; }

# Safe to call twice, after a failed redis_start and under set -e.
redis_stop() {
	redis_down
	if [ -n "${SG_REDIS_DIR:-}" ]; then
		rm -rf "$SG_REDIS_DIR"
	fi
	SG_REDIS_DIR=
}
