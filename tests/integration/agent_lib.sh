# shellcheck shell=bash
# The management server and agents for the agents' integration tests (tests/integration/
# test_agent_*.sh), sourced after lib.sh and sg_hosts: the server runs in the bridge namespace
# ($PFX"hub", address 192.0.2.254 on its bridge) so every host namespace reaches it; agents run
# in the host namespaces with their state under $SG_TMP/agent-NAME.

AG_SRV=192.0.2.254

# With AG_TLS set the server serves HTTPS with a certificate for its address ($AG_CA verifies
# it): the agents get --ca-file, the API calls --cacert.
AG_CA=
AG_CURL=()
AG_CAOPT=()

# ag_server [options...]: starts the server (SQLite) in the bridge namespace; sets AG_URL and
# AG_TOK (an admin's access token).
ag_server() {
	local dir=$SG_TMP/server port scheme=http
	local tls=()
	mkdir -p "$dir"
	ip -n "${PFX}hub" addr add "$AG_SRV/24" dev br0 2>/dev/null || true
	rm -f "$dir/port"
	if [ -n "${AG_TLS:-}" ]; then
		AG_CA=$SG_TMP/server-tls.crt
		[ -s "$AG_CA" ] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
			-nodes -days 1 -subj /CN=agents-server -addext "subjectAltName=IP:$AG_SRV" \
			-keyout "$SG_TMP/server-tls.key" -out "$AG_CA" >/dev/null 2>&1 ||
			fail "openssl could not make the server's certificate"
		tls=(--tls-cert "$AG_CA" --tls-key "$SG_TMP/server-tls.key")
		AG_CURL=(--cacert "$AG_CA")
		AG_CAOPT=(--ca-file "$AG_CA")
		scheme=https
	fi
	# Not through the nsx function: a background function would run the ERR trap in its own
	# subshell when the process ends with a failure (a killed server).
	ip netns exec "${PFX}hub" env SG_ADMIN_EMAIL=root@example.com SG_ADMIN_PASSWORD="$AG_PW" \
		"$SG" server --listen "$AG_SRV:${AG_PORT:-0}" --port-file "$dir/port" \
		--data-dir "$dir" --db "sqlite:$dir/server.db" "${tls[@]}" "$@" >>"$dir/server.log" 2>&1 &
	AG_SRV_PID=$!
	wait_for 20 test -s "$dir/port" || {
		cat "$dir/server.log"
		fail "the server did not start"
	}
	port=$(cat "$dir/port")
	AG_PORT=$port
	AG_URL=$scheme://$AG_SRV:$port
	AG_TOK=$(nsx "${PFX}hub" python3 - "$AG_URL" "$AG_PW" "$AG_CA" <<-'PY'
		import json, ssl, sys, urllib.request
		req = urllib.request.Request(sys.argv[1] + "/api/auth/login", method="POST",
		    data=json.dumps({"email": "root@example.com", "password": sys.argv[2]}).encode(),
		    headers={"Content-Type": "application/json"})
		ctx = ssl.create_default_context(cafile=sys.argv[3]) if sys.argv[3] else None
		print(json.load(urllib.request.urlopen(req, timeout=30, context=ctx))["access_token"])
	PY
	) || fail "login"
	log "server at $AG_URL (pid $AG_SRV_PID)"
}

# ag_server_kill: SIGKILL (the server is gone, as in a crash).
ag_server_kill() {
	kill -KILL "$AG_SRV_PID" 2>/dev/null || true
	{ wait "$AG_SRV_PID"; } 2>/dev/null || true
	log "server killed"
}

# api METHOD PATH [JSON]: the body of a 2xx answer; fails the test otherwise.
api() {
	nsx "${PFX}hub" curl -sf "${AG_CURL[@]}" -X "$1" -H "Authorization: Bearer $AG_TOK" \
		-H 'Content-Type: application/json' ${3:+--data "$3"} "$AG_URL$2" ||
		fail "API $1 $2 failed"
}
# api_status METHOD PATH [JSON]: the HTTP status only.
api_status() {
	nsx "${PFX}hub" curl -s "${AG_CURL[@]}" -o "$SG_TMP/api.out" -w '%{http_code}' -X "$1" \
		-H "Authorization: Bearer $AG_TOK" -H 'Content-Type: application/json' \
		${3:+--data "$3"} "$AG_URL$2"
}
jget() { python3 -c 'import json,sys
d = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    d = d[int(k)] if isinstance(d, list) else d[k]
print(d if not isinstance(d, bool) else str(d).lower())' "$1"; }

# ag_start NAME NS [agent options...]: starts an agent; sets AG_PID_<NAME>.
ag_start() {
	local name=$1 ns=$2
	shift 2
	mkdir -p "$SG_TMP/agent-$name"
	chmod 700 "$SG_TMP/agent-$name"
	ip netns exec "$ns" "$SG" agent --server "$AG_URL" --state-dir "$SG_TMP/agent-$name" --name "$name" \
		--monitor-interval 1 "${AG_CAOPT[@]}" "$@" >>"$SG_TMP/agent-$name.log" 2>&1 &
	printf -v "AG_PID_$name" '%s' "$!"
	log "agent $name started in $ns (pid $!)"
}

# ag_stop NAME: SIGTERM; the agent exits 0 and leaves its tunnels.
ag_stop() {
	local pidv="AG_PID_$1" rc=0
	kill -TERM "${!pidv}"
	wait_for 10 sg_gone "${!pidv}" || fail "agent $1 did not exit within 10 s of SIGTERM"
	wait "${!pidv}" || rc=$?
	[ "$rc" -eq 0 ] || fail "agent $1 exited with status $rc after SIGTERM"
	ag_check_log "$1"
}

ag_kill() {
	local pidv="AG_PID_$1"
	kill -KILL "${!pidv}" 2>/dev/null || true
	{ wait "${!pidv}"; } 2>/dev/null || true
}

ag_check_log() {
	if grep -qE 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:|SUMMARY: ' \
		"$SG_TMP/agent-$1.log" "$SG_TMP/server/server.log"; then
		cat "$SG_TMP/agent-$1.log"
		fail "sanitizer report in agent $1's or the server's log"
	fi
}

# ag_enroll [JSON]: a fresh enrolment token.
ag_enroll() { api POST /api/enrollment-tokens "${1:-{\}}" | jget token; }

AG_PW="agents-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"

# ag_totp_enrol EMAIL PASSWORD: turns TOTP on for the account with a code computed here (RFC
# 6238, hmac); prints the secret and the first three recovery codes.
ag_totp_enrol() {
	nsx "${PFX}hub" python3 - "$AG_URL" "$1" "$2" "$AG_CA" <<-'PY'
	import base64, hashlib, hmac, json, ssl, struct, sys, time, urllib.request
	url, email, pw, ca = sys.argv[1:5]
	ctx = ssl.create_default_context(cafile=ca)
	def call(path, body, tok=None):
	    h = {"Content-Type": "application/json"}
	    if tok:
	        h["Authorization"] = "Bearer " + tok
	    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), headers=h,
	                                 method="POST")
	    return json.load(urllib.request.urlopen(req, timeout=60, context=ctx))
	def totp(secret, step):
	    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
	    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
	    o = mac[-1] & 15
	    return "%06d" % ((struct.unpack(">I", mac[o:o + 4])[0] & 0x7fffffff) % 1000000)
	tok = call("/api/auth/login", {"email": email, "password": pw})["access_token"]
	secret = call("/api/auth/totp", {}, tok)["secret"]
	codes = call("/api/auth/totp/confirm", {"code": totp(secret, int(time.time()) // 30)},
	             tok)["recovery_codes"]
	print(secret, *codes[:3])
	PY
}

# ag_totp_code SECRET: the code of the next 30 s step (within the server's window of one step,
# and after the step an enrolment used: a code is good once).
ag_totp_code() {
	python3 - "$1" <<-'PY'
	import base64, hashlib, hmac, struct, sys, time
	key = base64.b32decode(sys.argv[1] + "=" * (-len(sys.argv[1]) % 8))
	mac = hmac.new(key, struct.pack(">Q", int(time.time()) // 30 + 1), hashlib.sha1).digest()
	o = mac[-1] & 15
	print("%06d" % ((struct.unpack(">I", mac[o:o + 4])[0] & 0x7fffffff) % 1000000))
	PY
}
