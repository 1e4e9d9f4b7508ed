#!/usr/bin/env python3
"""Stages of tests/integration/test_server_redis.sh and test_server_ha.sh, run against servers
sharing one PostgreSQL and one Redis. Usage: redis_test.py STAGE STATEFILE URL,URL[,...] [ARGS]
A is the first URL, B the last, OTHERS all but B.

  revoke           a refresh token and an API key revoked on B are refused on every other
  challenge        a client challenge spent on A is refused on B
  ratelimit SRC    failed logins from source address SRC spread over all servers: the limit
                   counts them together (the servers run with --login-ip-limit 6)
  push             a change on A answers a long poll held by each other server
  connection       a hub's agent reports its clients through A: B shows them online at once
                   (sg:connection:{client_id}); the state file names the keys for redis-cli
  connection_gone  with no further report, B shows the laptop offline once its entry expired
                   (the servers run with --agent-poll 4: a TTL of 12 s), the database unchanged
  temp             a temporary access link made on A works on B; revoked on A, B answers 410 at
                   once; an unknown link 404 (sg:temp_access:{sha384}, named in the state file)
  temp_again       after Redis came back empty: the revoked link still refused, a new one works
  redis_away       Redis stopped: ready 503, reads and writes go on, failed logins still counted
                   (per server), client logins 503, temporary access creation 503
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

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
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


def raw_pub(key):
    return key.public_key().public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw)


def proof(base, key, label=b"secureguard client auth v1"):
    """The body of POST /api/auth/client (or /api/auth/agent) for X25519 key, after a
    challenge from base."""
    pub = raw_pub(key)
    ch, _ = expect(200, base, "POST", "/api/auth/client/challenge", {})
    spub = base64.b64decode(ch["server_public_key"])
    shared = key.exchange(X25519PublicKey.from_public_bytes(spub))
    msg = label + b64u_dec(ch["challenge"]) + pub + spub
    return {"public_key": base64.b64encode(pub).decode(), "challenge": ch["challenge"],
            "proof": b64u(hmac.new(shared, msg, hashlib.sha384).digest())}


def network(tok, name, subnet4):
    doc, _ = expect(201, A, "POST", "/api/networks",
                    {"name": "%s-%d" % (name, os.getpid()), "subnet4": subnet4,
                     "fips_required": False}, token=tok)
    return doc


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
    net = network(tok, "redis", "10.88.0.0/24")
    key = X25519PrivateKey.generate()
    pub = raw_pub(key)
    expect(201, A, "POST", "/api/clients",
           {"network_id": net["id"], "name": "laptop",
            "public_key": base64.b64encode(pub).decode()}, token=tok)
    s["net"] = net["id"]
    s["client_key"] = base64.b64encode(key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
        serialization.NoEncryption())).decode()
    save(s)

    body = proof(A, key)
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

elif STAGE == "connection":
    s = state()
    tok = s["token"]
    net = network(tok, "live", "10.89.0.0/24")
    hub, _ = expect(201, A, "POST", "/api/clients",
                    {"network_id": net["id"], "name": "hub", "is_relay": True,
                     "endpoint": "192.0.2.89:51820", "listen_port": 51820}, token=tok)
    lap, _ = expect(201, A, "POST", "/api/clients", {"network_id": net["id"], "name": "laptop"},
                    token=tok)
    et, _ = expect(201, A, "POST", "/api/enrollment-tokens", {"client_id": hub["id"]}, token=tok)
    akey = X25519PrivateKey.generate()
    peer, _ = expect(201, A, "POST", "/api/peers/register",
                     {"token": et["token"], "name": "hub-%d" % os.getpid(),
                      "public_key": base64.b64encode(raw_pub(akey)).decode()})
    ses, _ = expect(200, A, "POST", "/api/auth/agent",
                    proof(A, akey, b"secureguard agent auth v1"))
    now = int(time.time())
    expect(200, A, "PUT", "/api/peers/%s/status" % peer["id"], {
        "state": "ok", "wireguard": [{"interface": "wg89", "client_id": hub["id"], "peers": [
            {"public_key": lap["public_key_classic"], "endpoint": "198.51.100.89:40000",
             "last_handshake": now - 3, "rx_bytes": 4242, "tx_bytes": 8484,
             "crypto_mode": "classic"}]}]}, token=ses["session_token"])
    got, _ = expect(200, B, "GET", "/api/clients/" + lap["id"], token=tok)
    if not (got["online"] and got["last_handshake"] == now - 3 and got["bytes_sent"] == 4242 and
            got["bytes_received"] == 8484):
        fail("the laptop on B right after the report through A: %s" % got)
    page, _ = expect(200, B, "GET", "/api/clients?network_id=" + net["id"], token=tok)
    if sorted((c["name"], c["online"]) for c in page["items"]) != [("hub", True),
                                                                    ("laptop", True)]:
        fail("the list on B: %s" % [(c["name"], c["online"]) for c in page["items"]])
    st, _ = expect(200, B, "GET", "/api/stats", token=tok)
    if st["current"]["clients_online"] != 2:
        fail("B's stats count %s clients online, wanted 2" % st["current"]["clients_online"])
    s["laptop"], s["hub"] = lap["id"], hub["id"]
    save(s)
    log("a hub's report through A: B shows the hub and the laptop online at once (handshake, "
        "bytes), its stats count them")

elif STAGE == "connection_gone":
    s = state()
    t0 = time.monotonic()
    while True:
        got, _ = expect(200, B, "GET", "/api/clients/" + s["laptop"], token=s["token"])
        if not got["online"]:
            break
        if time.monotonic() - t0 > 20:
            fail("the laptop still online on B 20 s after the last report: %s" % got)
        time.sleep(0.25)
    if got["last_handshake"] == 0 or got["bytes_sent"] != 4242:
        fail("offline, but the database's record is gone: %s" % got)
    # The hub's entry went with the laptop's (same report): nobody is online any more, though
    # the database still has both as the last report left them.
    st, _ = expect(200, B, "GET", "/api/stats", token=s["token"])
    if st["current"]["clients_online"] != 0:
        fail("B's stats count %s clients online after the TTL" % st["current"]["clients_online"])
    log("no report: the laptop offline on B after %.1f s (its entry expired), its last "
        "handshake and bytes kept" % (time.monotonic() - t0))

elif STAGE == "temp":
    s = state()
    tok = s["token"]
    g, _ = expect(201, A, "POST", "/api/temp-access",
                  {"network_id": s["net"], "max_uses": 5, "name": "guest"}, token=tok)
    path = "/api/temp-access/" + g["token"]
    st, _, _ = call(B, "HEAD", path)
    if st != 200:
        fail("a link made on A, checked on B: %s" % st)
    expect(204, A, "DELETE", path, token=tok)
    doc, _ = expect(410, B, "GET", path, what="a link revoked on A")
    if "revoked" not in json.dumps(doc):
        fail("revoked on A, refused on B for another reason: %s" % doc)
    expect(404, B, "GET", "/api/temp-access/sgt_" + "A" * 43, what="an unknown link")
    s["temp_key"] = "sg:temp_access:" + hashlib.sha384(g["token"].encode()).hexdigest()
    s["temp_token"] = g["token"]
    s["temp_expires"] = g["expires_at"]
    save(s)
    log("a temporary access link made on A works on B; revoked on A, 410 on B at once; an "
        "unknown one 404")

elif STAGE == "temp_again":
    # Redis came back empty: the first redeem reloads the grants from the database.
    s = state()
    doc, _ = expect(410, B, "GET", "/api/temp-access/" + s["temp_token"],
                    what="the revoked link after Redis lost its data")
    if "revoked" not in json.dumps(doc):
        fail("the revoked link after Redis came back: %s" % doc)
    g, _ = expect(201, A, "POST", "/api/temp-access", {"network_id": s["net"]},
                  token=s["token"])
    st, _, _ = call(B, "HEAD", "/api/temp-access/" + g["token"])
    if st != 200:
        fail("a link made on A after Redis came back, checked on B: %s" % st)
    log("Redis back empty: the revoked link still 410, a new one works across servers")

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
    priv = X25519PrivateKey.from_private_bytes(base64.b64decode(s["client_key"]))
    doc, h = expect(503, B, "POST", "/api/auth/client", proof(B, priv),
                    what="client login without Redis")
    if "Redis" not in json.dumps(doc) or h.get("Retry-After") != "1":
        fail("client login without Redis: %s %s" % (doc, h))
    # A temporary access link would be unknown to servers that reach Redis: not made.
    doc, h = expect(503, A, "POST", "/api/temp-access", {"network_id": s["net"]}, token=tok,
                    what="temporary access without Redis")
    if "Redis" not in json.dumps(doc) or h.get("Retry-After") != "1":
        fail("temporary access without Redis: %s %s" % (doc, h))
    # Clients are read from the database meanwhile.
    expect(200, B, "GET", "/api/clients/" + s["laptop"], token=tok, what="a client without Redis")
    log("Redis away: ready 503 naming it, reads and writes 2xx, failed logins 401 (counted "
        "per server), client logins and temporary access creation 503")
else:
    fail("unknown stage " + STAGE)
