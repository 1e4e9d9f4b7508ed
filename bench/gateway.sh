#!/bin/bash
# Gateway benchmark (issue 15): `secureguard gateway` against nginx and HAProxy from Debian, all
# three configured for the same route (Host app.bench -> one backend) over plain HTTP and TLS,
# in one run on loopback:
#   - requests/s and p50/p99 latency for a small response with keep-alive (wrk, 64 connections),
#     over HTTP and over HTTPS;
#   - MB/s for a 10 MB response (4 connections);
#   - proxy overhead: p50 through each proxy minus p50 of the same request to the backend;
#   - memory: each proxy's RSS with 9,000 idle client connections, minus its RSS before,
#     printed per 10,000 (scaled linearly). 9,000 because this machine's hard limit of open
#     files (20,000) lets HAProxy, which reserves two descriptors per connection, take no more.
# Each proxy gets one worker (nginx worker_processes 1, HAProxy nbthread 1; the gateway is one
# thread) so they compete on equal terms for this machine's cores; the backend is a separate
# nginx. Ratios >1 mean the gateway is ahead.
#
#   bench/gateway.sh [SECONDS]        default 10 per wrk run
#   bench/gateway.sh count [SECONDS]  per-request costs instead of timings (default 5 s per run)
#
# On a shared machine wall-clock figures move by 2x from run to run; what a proxy does per
# request does not. `count` measures, for the same small-response load (wrk, 64 connections,
# keep-alive), each proxy's system calls per request (perf's raw_syscalls tracepoint on the
# proxy's process; the kinds from its syscalls:sys_enter_* tracepoints), its context switches
# and CPU time per request, and then, each proxy restarted under valgrind's callgrind, the
# instructions it executes in user space per request (counters zeroed after startup and
# warm-up; kernel work is what the system calls stand for). Requests are wrk's count of
# complete responses over the same window.
#
# Needs root only to install nginx-light, haproxy and wrk when missing (Debian packages).
# Environment: SG_BIN (default build/bin).
set -eu
MODE=time
if [ "${1:-}" = count ]; then
	MODE=count
	shift
fi
SECS=${1:-$([ $MODE = count ] && echo 5 || echo 10)}
SRC=$(cd "$(dirname "$0")/.." && pwd)
SG=${SG_BIN:-$SRC/build/bin}/secureguard
[ -x "$SG" ] || { echo "bench: $SG missing; build first" >&2; exit 1; }

missing=""
tools="nginx-light haproxy wrk"
[ $MODE = count ] && tools="$tools linux-perf valgrind"
for p in $tools; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "bench: installing$missing"
	# Installing nginx would start its service on port 80: a policy-rc.d says no.
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
	rm -f /usr/sbin/policy-rc.d
fi
NGINX=/usr/sbin/nginx
HAPROXY=/usr/sbin/haproxy

TMP=$(mktemp -d /tmp/sg-bench-gw.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" # 10,000 idle connections need that many descriptors per side

BACK=19001
G_HTTP=19080 G_HTTPS=19443 N_HTTP=19180 N_HTTPS=19543 H_HTTP=19280 H_HTTPS=19643 G_MET=19090

# ---- content, certificate ---------------------------------------------------------------------
mkdir -p "$TMP/www" "$TMP/ngx" "$TMP/back"
head -c 100 /dev/zero | tr '\0' x >"$TMP/www/small"
head -c 10000000 /dev/urandom >"$TMP/www/large"
"$SG" cert ca --out "$TMP/ca" --name bench-ca >/dev/null
"$SG" cert issue --ca "$TMP/ca" --name app.bench --dns app.bench --out "$TMP/cert" >/dev/null
cat "$TMP/cert/app.bench.crt" "$TMP/cert/app.bench.key" >"$TMP/cert/haproxy.pem"

# ---- backend: nginx serving files ---------------------------------------------------------------
cat >"$TMP/back/nginx.conf" <<EOF
worker_processes 1;
pid $TMP/back/nginx.pid;
error_log $TMP/back/error.log;
daemon off;
events { worker_connections 20000; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$BACK; root $TMP/www; }
}
EOF
$NGINX -c "$TMP/back/nginx.conf" -p "$TMP/back" &
PIDS+=($!)

# ---- the three proxies ----------------------------------------------------------------------------
cat >"$TMP/gateway.json" <<EOF
{"resources": [{"id": "app", "domains": ["app.bench"],
  "tls": {"cert": "$TMP/cert/app.bench.crt", "key": "$TMP/cert/app.bench.key"},
  "max_conns": 100000, "targets": [{"id": "back", "address": "127.0.0.1:$BACK"}]}],
 "limits": {"max_conns": 100000, "max_conns_per_source": 100000, "idle_timeout_ms": 600000,
            "header_timeout_ms": 600000}}
EOF
# start_* [WRAPPER...]: the proxy, its PID in GW_PID, NGX_PID, HAP_PID (count runs them under
# valgrind; nginx then without its master process, as valgrind would follow the fork anyway).
start_gateway() {
	"$@" "$SG" gateway --state-dir "$TMP/gwstate" --config "$TMP/gateway.json" --log-level warn \
		--http "127.0.0.1:$G_HTTP" --https "127.0.0.1:$G_HTTPS" --metrics "127.0.0.1:$G_MET" &
	GW_PID=$!
	PIDS+=($GW_PID)
}

cat >"$TMP/ngx/nginx.conf" <<EOF
worker_processes 1;
pid $TMP/ngx/nginx.pid;
error_log $TMP/ngx/error.log;
daemon off;
events { worker_connections 20000; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 600s;
  upstream back { server 127.0.0.1:$BACK; keepalive 64; }
  server {
    listen 127.0.0.1:$N_HTTP;
    listen 127.0.0.1:$N_HTTPS ssl;
    server_name app.bench;
    ssl_certificate $TMP/cert/app.bench.crt;
    ssl_certificate_key $TMP/cert/app.bench.key;
    # Debian's nginx 1.22 stops at TLS 1.2 unless told: the same TLS 1.3 as the other two.
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {
      proxy_pass http://back;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_buffering off;
    }
  }
}
EOF
start_nginx() {
	if [ $# -gt 0 ]; then
		"$@" $NGINX -c "$TMP/ngx/nginx.conf" -p "$TMP/ngx" -g 'master_process off;' &
	else
		$NGINX -c "$TMP/ngx/nginx.conf" -p "$TMP/ngx" &
	fi
	NGX_PID=$!
	PIDS+=($NGX_PID)
}

cat >"$TMP/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 9990
defaults
  mode http
  timeout connect 5s
  timeout client 600s
  timeout server 600s
  timeout http-keep-alive 600s
  option http-keep-alive
  option forwardfor
frontend web
  bind 127.0.0.1:$H_HTTP
  bind 127.0.0.1:$H_HTTPS ssl crt $TMP/cert/haproxy.pem
  http-request set-header X-Forwarded-Proto https if { ssl_fc }
  use_backend back if { hdr(host) -i app.bench }
backend back
  http-reuse always
  server b1 127.0.0.1:$BACK
EOF
start_haproxy() { # (-n: valgrind keeps some descriptors, HAProxy wants one per maxconn)
	"$@" $HAPROXY -f "$TMP/haproxy.cfg" -db $([ $# -gt 0 ] && echo "-n 4000") >>"$TMP/haproxy.log" 2>&1 &
	HAP_PID=$!
	PIDS+=($HAP_PID)
}

up() { python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1)" "$1"; }
wait_up() { # PORT... (valgrind takes seconds to start a program)
	local p
	for p in "$@"; do
		for _ in $(seq 300); do up "$p" 2>/dev/null && break; sleep 0.1; done
		up "$p" || { echo "bench: nothing listens on $p" >&2; exit 1; }
	done
}
start_gateway
start_nginx
start_haproxy
wait_up $BACK $G_HTTP $G_HTTPS $N_HTTP $N_HTTPS $H_HTTP $H_HTTPS
# nginx's master forks its worker: RSS is the sum of the process tree.
rss_kb() { # PID
	local t=0 p
	for p in $1 $(pgrep -P "$1" || true); do
		t=$((t + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status")))
	done
	echo "$t"
}

# wrk's --latency output: Requests/sec, Transfer/sec, and the 50%/99% lines.
run_wrk() { # CONNS URL [extra]
	wrk -t2 -c"$1" -d"${SECS}s" --latency -H 'Host: app.bench' "$2" 2>&1
}
ms() { # wrk latency text (us/ms/s) -> ms
	awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; printf "%.3f", v}' <<<"$1"
}
declare -A RPS P50 P99 MBS RSS
measure() { # NAME URLBASE
	local out
	out=$(run_wrk 64 "$2/small")
	RPS[$1]=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")
	P50[$1]=$(ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
	P99[$1]=$(ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
	out=$(run_wrk 4 "$2/large")
	MBS[$1]=$(awk '/^Transfer\/sec:/ {v=$2; if (v ~ /GB$/) {sub(/GB/,"",v); v*=1024} else if (v ~ /KB$/) {sub(/KB/,"",v); v/=1024} else sub(/MB/,"",v); printf "%.0f", v}' <<<"$out")
}

if [ $MODE = count ]; then
	# ---- per-request costs ----------------------------------------------------------------------
	declare -A SYS CSW CPU IR KINDS
	# perf stat on the proxy's processes over one wrk run of the small response.
	count_sys() { # NAME URLBASE PID...
		local name=$1 url=$2 out reqs perf_pid
		shift 2
		perf stat -x, -o "$TMP/perf-$name" -e raw_syscalls:sys_enter,context-switches,task-clock \
			-e 'syscalls:sys_enter_*' -p "$(tr ' ' , <<<"$*")" &
		perf_pid=$!
		sleep 1 # perf has attached
		out=$(wrk -t2 -c64 -d"${SECS}s" -H 'Host: app.bench' "$url/small" 2>&1)
		kill -INT "$perf_pid"
		wait "$perf_pid" || true
		reqs=$(awk '/requests in/ {print $1}' <<<"$out")
		if [ "${reqs:-0}" -eq 0 ]; then
			echo "bench: $name: no complete responses: $out" >&2
			SYS[$name]=- CSW[$name]=- CPU[$name]=- KINDS[$name]=-
			return
		fi
		read -r SYS[$name] CSW[$name] CPU[$name] KINDS[$name] < <(awk -F, -v n="$reqs" '
			$3 == "raw_syscalls:sys_enter" {s = $1}
			$3 == "context-switches" {c = $1}
			$3 == "task-clock" {t = $1}
			$3 ~ /^syscalls:sys_enter_/ && $1 + 0 >= n / 100 {
				k = k sprintf("%s%s=%.2f", k == "" ? "" : ",", substr($3, 20), $1 / n)}
			END {printf "%.2f %.3f %.1f %s\n", s / n, c / n, t * 1000 / n, k}' "$TMP/perf-$name")
	}
	# A client that makes exactly N requests over 64 kept-alive connections, after opening them
	# (one request each), so the callgrind window holds requests only, no TLS handshakes.
	cat >"$TMP/exact.py" <<'PY'
import asyncio, ssl, sys
port, tls, conns, n = int(sys.argv[1]), sys.argv[2] == "1", int(sys.argv[3]), int(sys.argv[4])
REQ = b"GET /small HTTP/1.1\r\nHost: app.bench\r\n\r\n"
async def one(r, w):
    w.write(REQ)
    head = await r.readuntil(b"\r\n\r\n")
    length = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
    await r.readexactly(int(length[0].split(b":")[1]))
async def main():
    ctx = None
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    cs = [await asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                         server_hostname="app.bench" if tls else None)
          for _ in range(conns)]
    await asyncio.gather(*(one(r, w) for r, w in cs))
    loop = asyncio.get_running_loop()
    print("ready", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    left = [n]
    async def worker(r, w):
        while left[0] > 0:
            left[0] -= 1
            await one(r, w)
    await asyncio.gather(*(worker(r, w) for r, w in cs))
    print("done", flush=True)
    await loop.run_in_executor(None, sys.stdin.read)
asyncio.run(main())
PY
	# User-space instructions per request: callgrind's counters zeroed once the connections are
	# open, dumped after exactly COUNT_N requests.
	COUNT_N=${COUNT_N:-3000}
	count_ir() { # NAME PORT TLS PID
		local f
		coproc EXACT { python3 "$TMP/exact.py" "$2" "$3" 64 "$COUNT_N"; }
		read -r _ <&"${EXACT[0]}"
		callgrind_control -z "$4" >/dev/null
		echo go >&"${EXACT[1]}"
		read -r _ <&"${EXACT[0]}"
		callgrind_control --dump="$1" "$4" >/dev/null
		exec {EXACT[1]}>&-
		wait "$EXACT_PID" 2>/dev/null || true
		f=$(ls -t "$TMP/cg.out.$4".* | head -1)
		IR[$1]=$(awk -v n="$COUNT_N" '/^(summary|totals):/ {printf "%.0f", $2 / n; exit}' "$f")
	}

	echo "bench/gateway.sh count: ${SECS}s of wrk -t2 -c64 per proxy and scheme (small response); callgrind over $COUNT_N requests; load average $(cut -d' ' -f1-3 /proc/loadavg)"
	# COUNT_PROXIES: a subset to measure (default all three).
	port() { # PROXY SCHEME
		case $1-$2 in
		gateway-http) echo $G_HTTP ;; gateway-https) echo $G_HTTPS ;;
		nginx-http) echo $N_HTTP ;; nginx-https) echo $N_HTTPS ;;
		haproxy-http) echo $H_HTTP ;; haproxy-https) echo $H_HTTPS ;;
		esac
	}
	pid_of() { # PROXY
		case $1 in gateway) echo $GW_PID ;; nginx) echo $NGX_PID ;; haproxy) echo $HAP_PID ;; esac
	}
	PROXIES=${COUNT_PROXIES:-gateway nginx haproxy}
	for v in http https; do
		for p in $PROXIES; do
			# shellcheck disable=SC2046 # nginx: its master and its worker
			count_sys "$p-$v" "$v://127.0.0.1:$(port $p $v)" $(pid_of $p) $(pgrep -P "$(pid_of $p)" || true)
		done
	done
	kill $GW_PID $NGX_PID $HAP_PID
	wait $GW_PID $NGX_PID $HAP_PID 2>/dev/null || true
	CG=(valgrind -q --tool=callgrind --callgrind-out-file="$TMP/cg.out.%p")
	for p in $PROXIES; do
		start_$p "${CG[@]}"
		wait_up $(port $p http) $(port $p https)
		count_ir "$p-http" "$(port $p http)" 0 "$(pid_of $p)"
		count_ir "$p-https" "$(port $p https)" 1 "$(pid_of $p)"
		kill "$(pid_of $p)"
		wait "$(pid_of $p)" 2>/dev/null || true
	done

	printf '\n%-14s %9s %9s %10s %11s  %s\n' "per request" syscalls "ctx-sw" "CPU us" "instr (u)" \
		"system calls by kind (>= 0.01 per request)"
	for k in $(for v in http https; do for p in $PROXIES; do echo $p-$v; done; done); do
		printf '%-14s %9s %9s %10s %11s  %s\n' "$k" "${SYS[$k]}" "${CSW[$k]}" "${CPU[$k]}" \
			"${IR[$k]}" "${KINDS[$k]}"
	done
	exit 0
fi

echo "bench/gateway.sh: ${SECS}s per run, wrk -t2, 64 connections (small), 4 (10 MB); $(nproc) cores shared by wrk, the proxies and the backend"
measure direct "http://127.0.0.1:$BACK"
for v in http https; do
	measure "gateway-$v" "$v://127.0.0.1:$([ $v = http ] && echo $G_HTTP || echo $G_HTTPS)"
	measure "nginx-$v" "$v://127.0.0.1:$([ $v = http ] && echo $N_HTTP || echo $N_HTTPS)"
	measure "haproxy-$v" "$v://127.0.0.1:$([ $v = http ] && echo $H_HTTP || echo $H_HTTPS)"
done

# ---- memory with 10,000 idle connections ---------------------------------------------------------
cat >"$TMP/idle.py" <<'PY'
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    socks.append(s)
print("open", flush=True)
sys.stdin.read()
PY
idle_rss() { # PID PORT
	local before after
	before=$(rss_kb "$1")
	coproc IDLE { python3 "$TMP/idle.py" "$2" "$IDLE_N"; }
	read -r _ <&"${IDLE[0]}"
	sleep 1
	after=$(rss_kb "$1")
	exec {IDLE[1]}>&-
	wait "$IDLE_PID" 2>/dev/null || true
	# KiB for IDLE_N connections -> MiB per 10,000
	echo $(((after - before) * 10000 / IDLE_N / 1024))
}
IDLE_N=9000
RSS[gateway]=$(idle_rss "$GW_PID" $G_HTTP)
RSS[nginx]=$(idle_rss "$NGX_PID" $N_HTTP)
RSS[haproxy]=$(idle_rss "$HAP_PID" $H_HTTP)

ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print('%.2f' % (a/b) if b else '-')" "$1" "$2"; }
printf '\n%-16s %10s %9s %9s %8s\n' "" "req/s" "p50 ms" "p99 ms" "MB/s"
for k in direct gateway-http nginx-http haproxy-http gateway-https nginx-https haproxy-https; do
	printf '%-16s %10s %9s %9s %8s\n' "$k" "${RPS[$k]}" "${P50[$k]}" "${P99[$k]}" "${MBS[$k]}"
done
echo
for v in http https; do
	for o in nginx haproxy; do
		echo "$v: gateway vs $o: req/s x$(ratio "${RPS[gateway-$v]}" "${RPS[$o-$v]}")," \
			"p99 x$(ratio "${P99[$o-$v]}" "${P99[gateway-$v]}") (lower is better, >1: ours lower)," \
			"MB/s x$(ratio "${MBS[gateway-$v]}" "${MBS[$o-$v]}")"
	done
done
for o in gateway nginx haproxy; do
	echo "proxy overhead over a direct request (p50, http): $o +$(python3 -c "print('%.3f' % (float('${P50[$o-http]}') - float('${P50[direct]}')))") ms"
done
echo "memory for 10,000 idle connections: gateway ${RSS[gateway]} MiB, nginx ${RSS[nginx]} MiB," \
	"haproxy ${RSS[haproxy]} MiB (x$(ratio "${RSS[nginx]}" "${RSS[gateway]}") and" \
	"x$(ratio "${RSS[haproxy]}" "${RSS[gateway]}") less for the gateway)"
