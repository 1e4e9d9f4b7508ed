# shellcheck shell=bash
# A throwaway PostgreSQL server on loopback for the management-server tests and benchmarks.
# Source this file, then:
#
#   pg_start || exit $?      # 0 started; 77 = PostgreSQL binaries absent (skip); 1 = failure
#   trap pg_stop EXIT        # stops the server and deletes its directory
#
# pg_start runs initdb + pg_ctl from /usr/lib/postgresql/<newest>/bin (or $SG_PG_BINDIR) in a
# fresh mktemp directory, as the unprivileged `postgres` user when run as root (as the current
# user otherwise), listening on 127.0.0.1 and a free port with the socket in the same directory.
# It creates a superuser `sg`, a login role `sgapp` without special rights and a database
# `sgtest` owned by sgapp, and exports
#
#   SG_PG_URL        postgresql://sgapp@127.0.0.1:PORT/sgtest  (the database owner, as a server
#                    would connect: it owns the tables, so it can also drop their triggers)
#   SG_PG_SUPER_URL  postgresql://sg@127.0.0.1:PORT/sgtest     (superuser)
#   SG_PG_PORT, SG_PG_DIR, SG_PG_BINDIR
#
# Set SG_PG_NETNS (a network namespace) and SG_PG_LISTEN (an address in it) before pg_start to
# run the server there instead, e.g. behind a tunnel (the gateway test); SG_PG_TRUST (a CIDR)
# lets clients from there in too.
#
# pg_psql ARGS... runs psql as the superuser `sg` over TCP (pass -d DB).
#
# Authentication is `trust` on loopback only: the cluster lives for one test run. fsync is off
# for speed; nothing here is meant to survive a crash.

pg__log() { printf '[pg.sh] %s\n' "$*" >&2; }

pg__as() {
	local ns=()
	[ -n "${SG_PG_NETNS:-}" ] && ns=(ip netns exec "$SG_PG_NETNS")
	if [ "$(id -u)" -eq 0 ]; then
		"${ns[@]}" runuser -u "$SG_PG_OSUSER" -- "$@"
	else
		"${ns[@]}" "$@"
	fi
}

pg__free_port() {
	python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

pg_start() {
	local d try
	if [ -z "${SG_PG_BINDIR:-}" ]; then
		for d in /usr/lib/postgresql/*/bin; do
			[ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && SG_PG_BINDIR=$d
		done
	fi
	if [ -z "${SG_PG_BINDIR:-}" ] || [ ! -x "$SG_PG_BINDIR/initdb" ]; then
		pg__log "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb); scripts/deps.sh installs postgresql"
		return 77
	fi
	command -v python3 >/dev/null || { pg__log "python3 is needed to pick a free port"; return 1; }
	SG_PG_OSUSER=$(id -un)
	if [ "$(id -u)" -eq 0 ]; then
		SG_PG_OSUSER=postgres
		id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres || {
			pg__log "cannot create the unprivileged user postgres"
			return 1
		}
	fi
	SG_PG_DIR=$(mktemp -d /tmp/sg-pg.XXXXXX) || return 1
	chmod 700 "$SG_PG_DIR"
	[ "$(id -u)" -eq 0 ] && chown "$SG_PG_OSUSER" "$SG_PG_DIR"
	if ! pg__as "$SG_PG_BINDIR/initdb" -D "$SG_PG_DIR/data" -U sg --auth=trust -E UTF8 \
		--no-locale --no-sync >"$SG_PG_DIR/initdb.log" 2>&1; then
		pg__log "initdb failed:"
		cat "$SG_PG_DIR/initdb.log" >&2
		return 1
	fi
	if [ -n "${SG_PG_TRUST:-}" ]; then
		echo "host all all $SG_PG_TRUST trust" >>"$SG_PG_DIR/data/pg_hba.conf"
	fi
	# A free port can be taken between the probe and the bind: try a few.
	for try in 1 2 3 4 5; do
		SG_PG_PORT=$(pg__free_port)
		if pg__as "$SG_PG_BINDIR/pg_ctl" -D "$SG_PG_DIR/data" -l "$SG_PG_DIR/server.log" -w -t 60 \
			-o "-k $SG_PG_DIR -p $SG_PG_PORT -c listen_addresses=${SG_PG_LISTEN:-127.0.0.1} -c fsync=off -c max_connections=200" \
			start >"$SG_PG_DIR/pg_ctl.log" 2>&1; then
			break
		fi
		if [ "$try" -eq 5 ]; then
			pg__log "pg_ctl start failed:"
			cat "$SG_PG_DIR/pg_ctl.log" "$SG_PG_DIR/server.log" >&2 2>/dev/null
			return 1
		fi
	done
	if ! pg__as "$SG_PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "${SG_PG_LISTEN:-127.0.0.1}" -p "$SG_PG_PORT" \
		-U sg -d postgres -c "CREATE ROLE sgapp LOGIN" \
		-c "CREATE DATABASE sgtest OWNER sgapp" >"$SG_PG_DIR/psql.log" 2>&1; then
		pg__log "creating the test role and database failed:"
		cat "$SG_PG_DIR/psql.log" >&2
		return 1
	fi
	export SG_PG_URL="postgresql://sgapp@${SG_PG_LISTEN:-127.0.0.1}:$SG_PG_PORT/sgtest"
	export SG_PG_SUPER_URL="postgresql://sg@${SG_PG_LISTEN:-127.0.0.1}:$SG_PG_PORT/sgtest"
	export SG_PG_PORT SG_PG_DIR SG_PG_BINDIR
	pg__log "PostgreSQL $("$SG_PG_BINDIR/postgres" --version | awk '{print $3}') on ${SG_PG_LISTEN:-127.0.0.1}:$SG_PG_PORT ($SG_PG_DIR)"
	return 0
}

pg_psql() {
	local ns=()
	[ -n "${SG_PG_NETNS:-}" ] && ns=(ip netns exec "$SG_PG_NETNS")
	"${ns[@]}" "$SG_PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "${SG_PG_LISTEN:-127.0.0.1}" \
		-p "$SG_PG_PORT" -U sg "$@"
}

# Safe to call twice and after a failed pg_start.
pg_stop() {
	if [ -n "${SG_PG_DIR:-}" ] && [ -d "$SG_PG_DIR" ]; then
		if [ -f "$SG_PG_DIR/data/postmaster.pid" ]; then
			pg__as "$SG_PG_BINDIR/pg_ctl" -D "$SG_PG_DIR/data" -m immediate -w -t 30 stop \
				>/dev/null 2>&1
		fi
		rm -rf "$SG_PG_DIR"
	fi
	SG_PG_DIR=
	unset SG_PG_URL SG_PG_SUPER_URL
}
