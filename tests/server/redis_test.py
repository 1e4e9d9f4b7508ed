#!/usr/bin/env python3
"""Stages of tests/integration/test_server_redis.sh and test_server_ha.sh, run against servers
sharing one PostgreSQL and one Redis. Usage: redis_test.py STAGE STATEFILE URL,URL[,...] [ARGS]
A is the first URL, B the last, OTHERS all but B.

  revoke           a refresh token and an API key revoked on B are refused on every other
  challenge        a client challenge spent on A is refused on B
  ratelimit SRC    failed logins from source address SRC spread over all servers: the limit
                   counts them together (the servers run with --login-ip-limit 6)
  push             a change on A answers a long poll held by each other server
  redis_away       Redis stopped: ready 503, reads and writes go on, failed logins still counted
                   (per server), client logins 503
Environment: SG_ADMIN_EMAIL, SG_ADMIN_PASSWORD.
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives import serialization

STAGE, STATE = sys.argv[1:3]
URLS = sys.argv[3].split(",")
A, B, OTHERS = URLS[0], URLS[-1], URLS[:-1]
ARGS = sys.argv[4:]
EMAIL, PW = os.environ["SG_ADMIN_EMAIL"], os.environ["SG_ADMIN_PASSWORD"]


def log(msg):
    print("[test_server_redis] " + msg, flush=True)


def fail(msg):
    log("FAIL: " + msg)
    sys.exit(1)


def call(base, method, path, body=None, token=None, source=None, timeout=40):
    """(status, json or None, headers) over a connection of its own, from source if given."""
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout,
                                      source_address=(source, 0) if source else None)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    conn.request(method, path, json.dumps(body) if body is not None else None, headers)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    try:
        doc = json.loads(data) if data else None
    except ValueError:
        doc = None
    return r.status, doc, r.headers  # names case-insensitive (HAProxy sends them in lower case)


def expect(want, base, method, path, body=None, token=None, source=None, what=""):
    st, doc, h = call(base, method, path, body, token, source)
    if st != want:
        fail("%s %s %s: %s, wanted %s: %s %s" % (base, method, path, st, want, doc, what))
    return doc, h


def state():
    try:
        with open(STATE) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def save(s):
    with open(STATE, "w") as f:
        json.dump(s, f)


def admin(base):
    doc, _ = expect(200, base, "POST", "/api/auth/login", {"email": EMAIL, "password": PW})
    return doc


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64u_dec(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


if STAGE == "revoke":
    # A refresh token: logged in on A, logged out on B; A refuses its access token and refresh.
    t = admin(A)
    for o in URLS:
        expect(200, o, "GET", "/api/auth/me", token=t["access_token"])
    expect(200, B, "POST", "/api/auth/logout", {"refresh_token": t["refresh_token"]},
           token=t["access_token"])
    for o in OTHERS:
        expect(401, o, "GET", "/api/auth/me", token=t["access_token"], what="access after logout")
        expect(401, o, "POST", "/api/auth/refresh", {"refresh_token": t["refresh_token"]},
               what="refresh after logout")
    # An API key: made on A, works everywhere, revoked on B, refused on the others at once.
    t = admin(A)
    k, _ = expect(201, A, "POST", "/api/api-keys",
                  {"name": "redis-test-%d" % os.getpid(), "role": "admin"},
                  token=t["access_token"])
    for o in URLS:
        expect(200, o, "GET", "/api/networks", token=k["key"])
    expect(204, B, "DELETE", "/api/api-keys/" + k["id"], token=t["access_token"])
    for o in OTHERS:
        expect(401, o, "GET", "/api/networks", token=k["key"], what="revoked API key")
    log("a refresh token and an API key revoked on %s are refused on the %d other(s) at once" %
        (B, len(OTHERS)))
    s = state()
    s["token"] = t["access_token"]
    save(s)

elif STAGE == "challenge":
    s = state()
    tok = s["token"]
    net, _ = expect(201, A, "POST", "/api/networks",
                    {"name": "redis-%d" % os.getpid(), "subnet4": "10.88.0.0/24",
                     "fips_required": False}, token=tok)
    key = X25519PrivateKey.generate()
    pub = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    expect(201, A, "POST", "/api/clients",
           {"network_id": net["id"], "name": "laptop",
            "public_key": base64.b64encode(pub).decode()}, token=tok)
    s["net"] = net["id"]
    s["client_key"] = base64.b64encode(key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
        serialization.NoEncryption())).decode()
    save(s)

    def proof_body(base):
        ch, _ = expect(200, base, "POST", "/api/auth/client/challenge", {})
        spub = base64.b64decode(ch["server_public_key"])
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
        shared = key.exchange(X25519PublicKey.from_public_bytes(spub))
        msg = b"secureguard client auth v1" + b64u_dec(ch["challenge"]) + pub + spub
        return {"public_key": base64.b64encode(pub).decode(), "challenge": ch["challenge"],
                "proof": b64u(hmac.new(shared, msg, hashlib.sha384).digest())}

    body = proof_body(A)
    doc, _ = expect(200, A, "POST", "/api/auth/client", body)
    if not doc.get("session_token", doc.get("token", "")).startswith("sgs_"):
        fail("client session: %s" % doc)
    doc, _ = expect(401, B, "POST", "/api/auth/client", body, what="replayed challenge")
    if "challenge" not in json.dumps(doc):
        fail("replay on B refused for another reason: %s" % doc)
    log("a client challenge spent on A is refused on B: %s" % doc.get("detail", doc))

elif STAGE == "ratelimit":
    src = ARGS[0]
    for i in range(6):
        base = URLS[i % len(URLS)]
        expect(401, base, "POST", "/api/auth/login",
               {"email": "nobody@example.com", "password": "wrong-password-%d" % i},
               source=src, what="failure %d of 6" % (i + 1))
    for base in URLS:
        doc, h = expect(429, base, "POST", "/api/auth/login",
                        {"email": "nobody@example.com", "password": "wrong-password"},
                        source=src, what="7th failure")
        if int(h.get("Retry-After", "0")) < 1:
            fail("429 without Retry-After: %s" % h)
    log("%s: 6 failed logins spread over %d servers, then 429 on each (Retry-After %s)" %
        (src, len(URLS), h["Retry-After"]))

elif STAGE == "push":
    s = state()
    tok = s["token"]
    lat = []
    for i in range(3 * (len(URLS) - 1)):
        B = URLS[1 + i % (len(URLS) - 1)]
        cfg_tok = admin(B)["access_token"]
        # The long poll of an agent: enrol a node on A and hold its config poll on B.
        et, _ = expect(201, A, "POST", "/api/enrollment-tokens", {"tags": ["branch"]},
                       token=tok)
        peer, _ = expect(201, A, "POST", "/api/peers/register",
                         {"token": et["token"], "name": "node-%d-%d" % (os.getpid(), i),
                          "public_key": base64.b64encode(os.urandom(32)).decode()})
        cfg, _ = expect(200, B, "GET", "/api/peers/%s/config" % peer["id"], token=cfg_tok)
        res = {}

        def poll():
            res["r"] = call(B, "GET", "/api/peers/%s/config?since=%s&wait=30" %
                            (peer["id"], cfg["revision"]), token=cfg_tok)
            res["t"] = time.monotonic()

        th = threading.Thread(target=poll)
        th.start()
        time.sleep(0.4)  # the poll is parked on B
        t0 = time.monotonic()
        expect(201, A, "POST", "/api/policies", {
            "name": "p-%d-%d" % (os.getpid(), i), "applies_to": ["branch"], "priority": 10 + i,
            "tunnels": [{"name": "to-hq", "remote_addrs": ["198.51.100.1"],
                         "local_ts": ["10.1.0.0/16"], "remote_ts": ["10.0.0.0/16"],
                         "auth": "psk", "secret": "psk-" + os.urandom(12).hex(),
                         "proposals": ["aes256gcm16-prfsha256-x25519"],
                         "esp_proposals": ["aes256gcm16"]}]}, token=tok)
        th.join(40)
        st, doc, _ = res.get("r", (0, None, None))
        if st != 200 or doc["revision"] == cfg["revision"]:
            fail("long poll on B: status %s" % st)
        lat.append(res["t"] - t0)
    lat.sort()
    log("a change on A answered a long poll held by another server after %s s" %
        ", ".join("%.3f" % x for x in lat))
    # B looks at the revision by itself only every 5 s while subscribed: a median under 2.5 s
    # is the channel's doing (the same loose bound as test_server_scale's LISTEN check).
    if lat[len(lat) // 2] >= 2.5:
        fail("median %.3f s: B did not hear of A's change through Redis" % lat[len(lat) // 2])

elif STAGE == "redis_away":
    s = state()
    tok = s["token"]
    for idx, base in enumerate(URLS):
        doc, h = expect(503, base, "GET", "/api/ready", what="ready without Redis")
        if "redis" not in json.dumps(doc) or h.get("Retry-After") != "1":
            fail("ready without Redis: %s %s" % (doc, h))
        expect(200, base, "GET", "/api/networks", token=tok, what="a read without Redis")
        expect(201, base, "POST", "/api/networks",
               {"name": "away-%d-%s" % (os.getpid(), base[-5:]), "subnet4": "10.%d.0.0/24" %
                (90 + idx)}, token=tok, what="a write without Redis")
        # Failed logins are still limited, by each server alone.
        expect(401, base, "POST", "/api/auth/login",
               {"email": "nobody@example.com", "password": "wrong"}, source=ARGS[0])
    # Client logins fail closed: their challenges' single use lives in Redis.
    key = base64.b64decode(s["client_key"])
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
    priv = X25519PrivateKey.from_private_bytes(key)
    pub = priv.public_key().public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw)
    ch, _ = expect(200, B, "POST", "/api/auth/client/challenge", {})
    spub = base64.b64decode(ch["server_public_key"])
    shared = priv.exchange(X25519PublicKey.from_public_bytes(spub))
    msg = b"secureguard client auth v1" + b64u_dec(ch["challenge"]) + pub + spub
    doc, h = expect(503, B, "POST", "/api/auth/client",
                    {"public_key": base64.b64encode(pub).decode(), "challenge": ch["challenge"],
                     "proof": b64u(hmac.new(shared, msg, hashlib.sha384).digest())},
                    what="client login without Redis")
    if "Redis" not in json.dumps(doc) or h.get("Retry-After") != "1":
        fail("client login without Redis: %s %s" % (doc, h))
    log("Redis away: ready 503 naming it, reads and writes 2xx, failed logins 401 (counted "
        "per server), client logins 503")
else:
    fail("unknown stage " + STAGE)
