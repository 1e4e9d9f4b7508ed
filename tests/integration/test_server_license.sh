#!/bin/bash
# shellcheck disable=SC2154 # SRV_<name> variables are set by srv_start (printf -v)
# License keys (issue 22; docs/SERVER.md "Licenses"), against a real server on SQLite, with
# licenses signed by the test key (this is a test build: SG_LICENSE_TEST_KEY; unit.license_release
# proves a release build refuses them):
#  - without a license: the free edition, 250 clients, the 251st refused with 402 naming it;
#  - a license with one bit flipped: `license show` and the server both refuse it, saying so;
#  - a valid license of 260 seats raises the limit: 10 more, then 402 naming the license, for
#    the API and for a temporary access link (whose refused redeem spends no use);
#  - expired 3 days ago: the seats hold (grace), with a warning in the log and /api/health;
#  - expired past the grace, or not yet valid: the free edition's limit again, while every
#    existing client stays (its config still served): licensing never stops a tunnel.
#
# Environment: SG_BIN, SG_SRC (ctest sets them).
set -u
SRV_TEST=test_server_license
# shellcheck source=tests/server/server_lib.sh
. "$(dirname "$0")/../server/server_lib.sh"

[ -x "$SG" ] || { srv_log "SKIP: $SG not built"; exit 77; }
for t in python3 curl; do
	command -v "$t" >/dev/null || { srv_log "SKIP: missing tool $t"; exit 77; }
done
KEY=$SG_SRC/tests/license/test-vendor.key
"$SG" license --help | grep -q 'test build' ||
	{ srv_log "SKIP: not a test build (cmake -DSG_LICENSE_TEST_KEY=ON, as make check does)"; exit 77; }

TMP=$(mktemp -d /tmp/sg-license.XXXXXX)
cleanup() {
	srv_kill_all
	rm -rf "$TMP"
}
trap cleanup EXIT
fail() { srv_fail "$@"; }

srv_admin_env root
DATA=$TMP/srv
DB="sqlite:$DATA/server.db"
FREE=250

sign() { # sign FILE SEATS NOT_BEFORE EXPIRY
	"$SG" license sign --key "$KEY" --id "T-$2" --customer "Example GmbH" --seats "$2" \
		--features ha --not-before "$3" --expiry "$4" --out "$1" || fail "license sign $1"
}
# api URL METHOD PATH [BODY]: prints "STATUS BODY" (one line) as admin.
TOKEN=
api() {
	python3 - "$@" "$TOKEN" <<'PY'
import json, sys, urllib.request, urllib.error
url, method, path = sys.argv[1:4]
body = sys.argv[4] if len(sys.argv) > 5 else None
tok = sys.argv[-1]
req = urllib.request.Request(url + path, method=method, data=body.encode() if body else None,
                             headers={"Authorization": "Bearer " + tok,
                                      "Content-Type": "application/json"})
try:
    with urllib.request.urlopen(req, timeout=30) as r:
        st, data = r.status, r.read()
except urllib.error.HTTPError as e:
    st, data = e.code, e.read()
print(st, data.decode(errors="replace").replace("\n", " "))
PY
}
# make_clients URL NETWORK N: creates N clients with 8 writers; prints how many got 201.
make_clients() {
	python3 - "$1" "$TOKEN" "$2" "$3" <<'PY'
import json, sys, threading, urllib.request, urllib.error
url, tok, net, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ok, lock, nxt = [0], threading.Lock(), [0]
def work():
    while True:
        with lock:
            if nxt[0] >= n: return
            nxt[0] += 1; i = nxt[0]
        req = urllib.request.Request(url + "/api/clients", method="POST",
            data=json.dumps({"network_id": net, "name": "c-%s-%d" % (sys.argv[4], i)}).encode(),
            headers={"Authorization": "Bearer " + tok, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                if r.status == 201:
                    with lock: ok[0] += 1
        except urllib.error.HTTPError as e:
            e.read()
ts = [threading.Thread(target=work) for _ in range(8)]
for t in ts: t.start()
for t in ts: t.join()
print(ok[0])
PY
}
health() { curl -sS -f "$1/api/health"; }
jq_() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
# one_more URL PATTERN WHAT: one more client is refused with the answer matching PATTERN.
one_more() {
	local r
	r=$(api "$1" POST /api/clients "{\"network_id\":\"$NET\",\"name\":\"one-more\"}")
	# shellcheck disable=SC2254 # PATTERN is a glob on purpose
	case $r in
	$2) ;;
	*) fail "$3: $r" ;;
	esac
}

# ---- the free edition ----------------------------------------------------------------------
srv_start free "$DB" "$DATA" --sweep-interval 1 || fail "server without a license"
URL=$SRV_URL_free
h=$(health "$URL") || fail "/api/health"
[ "$(jq_ 'd["license"]["edition"], d["license"]["status"], d["license"]["client_limit"]' <<<"$h")" = \
	"('free', 'none', $FREE)" ] || fail "/api/health without a license: $h"
grep -q "event=license_none.*client_limit=$FREE" "$SRV_LOG_free" || fail "no license_none line"
TOKEN=$(srv_login "$URL" "$SG_ADMIN_EMAIL" "$SG_ADMIN_PASSWORD") || fail "login"
NET=$(api "$URL" POST /api/networks '{"name":"lic","subnet4":"10.92.0.0/22"}' |
	sed 's/^201 //' | jq_ 'd["id"]') || fail "network"
made=$(make_clients "$URL" "$NET" $((FREE + 5)))
[ "$made" -eq "$FREE" ] || fail "the free edition let $made of $((FREE + 5)) clients be made"
one_more "$URL" '402 *"title":"Payment Required"*the free edition allows 250 clients and this instance has 250*' \
	"client $((FREE + 1)) without a license"
grep -q '"application/problem+json"' <<<"$(curl -sS -o /dev/null -w '"%{content_type}"' -X POST \
	-H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
	--data "{\"network_id\":\"$NET\",\"name\":\"again\"}" "$URL/api/clients")" ||
	fail "the 402 is not a problem document"
srv_log "free edition: $FREE clients made, the next refused with 402"
srv_stop free || fail "stop free"

# ---- a license with one bit flipped --------------------------------------------------------
sign "$TMP/good.lic" 260 -1 +365
"$SG" license show "$TMP/good.lic" >"$TMP/show.out" || fail "license show (good): $(cat "$TMP/show.out")"
grep -q '^signature:   valid (the test key: test builds only)' "$TMP/show.out" &&
	grep -q '^state:       valid; client limit 260' "$TMP/show.out" || fail "license show: $(cat "$TMP/show.out")"
python3 - "$TMP/good.lic" "$TMP/flipped.lic" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
i = b.index(b"customer: Example") + len("customer: E")
b[i] ^= 0x20  # "Example" -> "EXample": still a valid line, no longer what was signed
open(sys.argv[2], "wb").write(bytes(b))
PY
out=$("$SG" license show "$TMP/flipped.lic" 2>&1) && fail "license show took a flipped bit"
grep -q 'the signature does not verify: the file was altered' <<<"$out" || fail "license show, flipped: $out"
out=$("$SG" server --listen 127.0.0.1:0 --data-dir "$DATA" --db "$DB" --license "$TMP/flipped.lic" 2>&1) &&
	fail "the server started with a flipped bit in its license"
grep -q "license $TMP/flipped.lic: the signature does not verify" <<<"$out" ||
	fail "server, flipped license: $out"
srv_log "one bit flipped: refused by license show and by the server, saying the signature does not verify"

# ---- a valid license raises the limit --------------------------------------------------------
srv_start lic "$DB" "$DATA" --license "$TMP/good.lic" || fail "server with a license"
URL=$SRV_URL_lic
h=$(health "$URL")
[ "$(jq_ 'd["license"]["edition"], d["license"]["status"], d["license"]["client_limit"], "warning" in d["license"]' <<<"$h")" = \
	"('licensed', 'valid', 260, False)" ] || fail "/api/health with a license: $h"
grep -q 'event=license_loaded id=T-260 seats=260 .*state=valid client_limit=260 signer=test-key' \
	"$SRV_LOG_lic" || fail "no license_loaded line"
made=$(make_clients "$URL" "$NET" 15)
[ "$made" -eq 10 ] || fail "a license of 260 seats let $made of 15 more clients be made"
one_more "$URL" '402 *license T-260 (Example GmbH) allows 260 clients and this instance has 260*' \
	"client 261 with a license of 260"
# A temporary access link makes a client when redeemed: refused the same way, and no use spent.
r=$(api "$URL" POST /api/temp-access "{\"network_id\":\"$NET\",\"duration_seconds\":3600,\"max_uses\":1}")
ta=$(sed 's/^201 //' <<<"$r" | jq_ 'd["token"]') || fail "temporary access: $r"
r=$(curl -sS -w ' %{http_code}' "$URL/api/temp-access/$ta")
case $r in
*'license T-260 (Example GmbH) allows 260 clients'*' 402') ;;
*) fail "redeeming temporary access past the seats: $r" ;;
esac
[ "$(api "$URL" GET /api/temp-access | sed 's/^200 //' | jq_ 'd["items"][0]["current_uses"]')" = 0 ] ||
	fail "a refused redeem spent a use"
srv_log "a license of 260 seats: 10 more clients, then 402 naming the license (the API and a temporary access link)"
srv_stop lic || fail "stop lic"

# ---- expiry: 14 days of grace with warnings, then the free edition; nothing stops ----------------
sign "$TMP/grace.lic" 260 -40 -3
srv_start grace "$DB" "$DATA" --license "$TMP/grace.lic" || fail "server in the grace period"
URL=$SRV_URL_grace
h=$(health "$URL")
[ "$(jq_ 'd["license"]["edition"], d["license"]["status"], d["license"]["client_limit"]' <<<"$h")" = \
	"('licensed', 'grace', 260)" ] || fail "/api/health in the grace period: $h"
jq_ 'd["license"]["warning"]' <<<"$h" | grep -q '^license T-260 expired on .*; its 260 seats hold until .*: renew it$' ||
	fail "no grace warning in /api/health: $h"
grep -q 'level=WARN.*event=license_grace' "$SRV_LOG_grace" ||
	grep -q 'WARN.*license_grace' "$SRV_LOG_grace" || fail "no license_grace warning in the log"
one_more "$URL" '402 *license T-260 (Example GmbH) allows 260*its 260 seats hold until*' \
	"402 in the grace period"
# The console's banner, in Chromium, when the console and the browser are here (as in make check).
CONSOLE=$SG_BIN/../share/secureguard/console
if [ -f "$CONSOLE/index.html" ] && command -v chromium node >/dev/null &&
	[ -d "$SG_SRC/web/node_modules/playwright-core" ]; then
	(cd "$SG_SRC/web" && SG_URL=$URL SG_EMAIL=$SG_ADMIN_EMAIL SG_PASSWORD=$SG_ADMIN_PASSWORD \
		SG_OUT=$TMP SG_WANT="license T-260 expired on" node tests/e2e/license_banner.mjs) ||
		fail "the console shows no license warning"
else
	srv_log "the console's banner not checked: no console build, chromium or playwright-core here"
fi
srv_log "grace: the seats hold, warnings in the log, /api/health, the console and the 402"
srv_stop grace || fail "stop grace"

sign "$TMP/expired.lic" 260 -60 -20
srv_start expired "$DB" "$DATA" --license "$TMP/expired.lic" || fail "server past the grace"
URL=$SRV_URL_expired
TOKEN=$(srv_login "$URL" "$SG_ADMIN_EMAIL" "$SG_ADMIN_PASSWORD") || fail "login (expired)"
h=$(health "$URL")
[ "$(jq_ 'd["license"]["edition"], d["license"]["status"], d["license"]["client_limit"]' <<<"$h")" = \
	"('free', 'expired', $FREE)" ] || fail "/api/health past the grace: $h"
grep -q 'event=license_expired' "$SRV_LOG_expired" || fail "no license_expired line"
total=$(api "$URL" GET "/api/clients?limit=1" | sed 's/^200 //' | jq_ 'd["total"]')
[ "$total" -eq 260 ] || fail "past the grace, $total clients are listed instead of 260"
last=$(api "$URL" GET "/api/clients?limit=1&offset=259" | sed 's/^200 //' | jq_ 'd["items"][0]["id"]')
r=$(api "$URL" GET "/api/clients/$last/config")
case $r in
"200 "*PrivateKey*) ;;
*) fail "a client made under the license, past its grace: $r" ;;
esac
one_more "$URL" '402 *the free edition allows 250 clients and this instance has 260*grace ended*' \
	"402 past the grace"
srv_log "past the grace: the free edition's limit for new clients; all 260 stay, configs served"
srv_stop expired || fail "stop expired"

sign "$TMP/early.lic" 260 +2 +365
srv_start early "$DB" "$DATA" --license "$TMP/early.lic" || fail "server before not_before"
h=$(health "$SRV_URL_early")
[ "$(jq_ 'd["license"]["status"], d["license"]["client_limit"]' <<<"$h")" = "('not_yet_valid', $FREE)" ] ||
	fail "/api/health before not_before: $h"
srv_stop early || fail "stop early"
srv_log "PASS: free edition, bit flip, seats with 402, grace and expiry"
