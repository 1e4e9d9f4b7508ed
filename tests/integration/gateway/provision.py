#!/usr/bin/env python3
"""Sets up test_gateway.sh's gateway through the management server's API, as an operator
would: a gateway (limits), sites A and B, the resources and their targets. Prints shell
assignments (GW_ID, TOKEN, RES_<name>, TID_<name>) for the test to eval.

  provision.py URL EMAIL PASSWORD SITE_A_NET SITE_B_NET A_ADDR B_ADDR PG_PORT KEYHASH CERTDIR

Also `provision.py URL EMAIL PASSWORD --weight TARGET_ID WEIGHT`: changes a target's weight (a
change the server pushes).

And `provision.py URL EMAIL PASSWORD --totp-user NEW_EMAIL NEW_PASSWORD`: an admin user with a
second factor (TOTP) turned on; prints its base32 secret. The code that turns it on is computed
here (RFC 6238), independently of the server.
"""
import base64
import hashlib
import hmac
import json
import struct
import sys
import time
import urllib.error
import urllib.request

URL, EMAIL, PW = sys.argv[1:4]


def call(method, path, body=None, token=None):
    req = urllib.request.Request(URL + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        sys.exit("provision: %s %s: %d %s" % (method, path, e.code, e.read().decode()[:400]))


tok = call("POST", "/api/auth/login", {"email": EMAIL, "password": PW})["access_token"]
V1 = "/api/v1"
if sys.argv[4] == "--weight":
    call("PUT", V1 + "/targets/" + sys.argv[5], {"weight": int(sys.argv[6])}, tok)
    sys.exit(0)
if sys.argv[4] == "--totp-user":
    email, pw = sys.argv[5:7]
    call("POST", "/api/users", {"email": email, "password": pw, "role": "admin"}, tok)
    utok = call("POST", "/api/auth/login", {"email": email, "password": pw})["access_token"]
    secret = call("POST", "/api/auth/totp", {}, utok)["secret"]
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    mac = hmac.new(key, struct.pack(">Q", int(time.time()) // 30), hashlib.sha1).digest()
    off = mac[-1] & 15
    code = "%06d" % ((struct.unpack(">I", mac[off:off + 4])[0] & 0x7fffffff) % 1000000)
    call("POST", "/api/auth/totp/confirm", {"code": code}, utok)
    print(secret)
    sys.exit(0)
site_a_net, site_b_net, a_addr, b_addr, pg_port, keyhash, certdir = sys.argv[4:11]

gw = call("POST", V1 + "/gateways", {
    "name": "gw-test", "region": "eu", "public_address": "192.0.2.2",
    "limits": {"header_timeout_ms": 1000, "idle_timeout_ms": 5000, "max_head": 8192}}, tok)
site_a = call("POST", V1 + "/sites", {"name": "site-a", "networks": [site_a_net]}, tok)
site_b = call("POST", V1 + "/sites", {"name": "site-b", "networks": [site_b_net]}, tok)
hc = {"type": "http", "path": "/health", "interval_ms": 500, "timeout_ms": 300}
out = {"GW_ID": gw["id"], "TOKEN": gw["enrollment_token"]}


def resource(name, body, targets):
    r = call("POST", V1 + "/resources", dict(body, gateway_id=gw["id"], name=name), tok)
    out["RES_" + name] = r["id"]
    for tname, t in targets:
        out["TID_" + tname] = call("POST", V1 + "/resources/%s/targets" % r["id"], t, tok)["id"]


resource("app", {"domain": "app.test", "aliases": ["*.app.test"], "lb": "weighted",
                 "retries": 2, "sticky_cookie": "sgsticky", "eject_after": 1, "eject_ms": 1500,
                 "max_body": 1048576, "rules": [{"path": "/private/*", "action": "deny"}]},
         [("a", {"address": a_addr + ":8080", "weight": 3, "health_check": dict(hc, healthy=2,
                                                                              unhealthy=2)}),
          ("b", {"address": b_addr + ":8080", "weight": 1, "health_check": hc})])
resource("api", {"site_id": site_b["id"], "domain": "api.test", "auth": "api_key",
                 "api_keys": [keyhash], "rate_limit": {"per_source": {"rate": 1, "burst": 5}},
                 "rules": [{"path": "/open", "action": "allow"}],
                 "tls": {"cert": certdir + "/api.test.crt", "key": certdir + "/api.test.key"}},
         [("api", {"address": b_addr + ":8081"})])
# Logins through the server itself (it is the OpenID provider, --public-url the issuer).
resource("login", {"domain": "login.test", "auth": "login",
                   "rules": [{"path": "/public/*", "action": "allow"}]},
         [("la", {"address": a_addr + ":8080"})])
resource("other", {"domain": "other.test", "auth": "login"},
         [("oa", {"address": a_addr + ":8080"})])
# A login through an external provider (idp.py, in the server's namespace on port 9000): the
# same relying-party code as for the server's own provider.
resource("ext", {"domain": "ext.test", "auth": "login",
                 "oidc": {"issuer": URL.rsplit(":", 1)[0] + ":9000", "client_id": "gw-ext"}},
         [("xa", {"address": a_addr + ":8080"})])
resource("ws", {"site_id": site_b["id"], "domain": "ws.test", "idle_timeout_ms": 10000},
         [("ws", {"address": b_addr + ":8090"})])
resource("pg", {"site_id": site_a["id"], "protocol": "tcp", "port": 15432, "max_conns": 4,
                "allow": ["192.0.2.0/24"]},
         [("pg", {"address": "%s:%s" % (a_addr, pg_port)})])
resource("dns", {"site_id": site_b["id"], "protocol": "udp", "port": 15353,
                 "idle_timeout_ms": 2000},
         [("echo", {"address": b_addr + ":5353"})])
for k, v in out.items():
    print("%s=%s" % (k, v))
