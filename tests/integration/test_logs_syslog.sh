#!/bin/bash
# The loggers' --syslog: `secureguard server --syslog --log-format json` in private mount and
# network namespaces whose /dev is a fresh tmpfs with a /dev/log that this test listens on (the
# machine's syslog, if any, is not touched). Every datagram must carry facility daemon, the
# identity secureguard-server with its pid, and one JSON object; the request's line is there.
#   Environment: SG_BIN (ctest sets it).
set -u
log() { printf '[test_logs_syslog] %s\n' "$*"; }
SG=${SG_BIN:?}/secureguard
for t in unshare python3 curl mknod; do
	command -v $t >/dev/null || { log "SKIP: missing $t"; exit 77; }
done
tmp=$(mktemp -d /tmp/sg-syslog.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
unshare --mount --net --propagation private bash -c '
set -u
tmp=$1 SG=$2
fail() { echo "[test_logs_syslog] FAIL: $*"; exit 1; }
ip link set lo up
mount -t tmpfs -o mode=0755 none /dev
mknod -m 666 /dev/null c 1 3; mknod -m 666 /dev/zero c 1 5
mknod -m 666 /dev/urandom c 1 9; mknod -m 666 /dev/random c 1 8
python3 - "$tmp/syslog.txt" <<PY &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
open(sys.argv[1] + ".ready", "w").close()
with open(sys.argv[1], "ab", buffering=0) as f:
    while True:
        d = s.recv(65536)
        f.write(d.replace(b"\n", b" ") + b"\n")
PY
lpid=$!
for _ in $(seq 1 50); do [ -e "$tmp/syslog.txt.ready" ] && break; sleep 0.1; done
[ -S /dev/log ] || fail "no /dev/log listener"
SG_ADMIN_EMAIL=a@example.com SG_ADMIN_PASSWORD=syslog-test-password-1 "$SG" server \
	--listen 127.0.0.1:0 --port-file "$tmp/port" --data-dir "$tmp/d" --console-dir none \
	--syslog --log-format json >"$tmp/stderr" 2>&1 &
spid=$!
for _ in $(seq 1 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
[ -s "$tmp/port" ] || { cat "$tmp/stderr"; fail "the server did not start"; }
curl -sf -H "X-Request-Id: from-anyone" "http://127.0.0.1:$(cat "$tmp/port")/api/health" >/dev/null ||
	fail "/api/health"
kill -TERM $spid; wait $spid || fail "the server exit status"
kill $lpid
python3 - "$tmp/syslog.txt" $spid <<PY || exit 1
import json, re, sys
lines = open(sys.argv[1], "rb").read().decode().splitlines()
pid = sys.argv[2]
assert lines, "nothing reached /dev/log"
events = []
for l in lines:
    m = re.match(r"<(\d+)>.*?secureguard-server\[(\d+)\]: (\{.*\})$", l)
    assert m, "not a syslog line of secureguard-server: %r" % l
    assert int(m.group(1)) >> 3 == 3, "facility is not daemon: %r" % l
    assert m.group(2) == pid, "pid %s, not %s" % (m.group(2), pid)
    events.append(json.loads(m.group(3)))
names = [e["event"] for e in events]
assert "server_started" in names and "server_stopped" in names, names
req = [e for e in events if e["event"] == "http_request"]
assert req and req[0]["route"] == "GET /api/health" and req[0]["status"] == 200, req
assert req[0]["request_id"] != "from-anyone", req
assert "syslog-test-password-1" not in open(sys.argv[1]).read()
print("[test_logs_syslog] %d syslog datagrams, facility daemon, identity and pid right, "
      "each one JSON object" % len(lines))
PY
' sh "$tmp" "$SG" || exit 1
log "PASS"
