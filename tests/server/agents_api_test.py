#!/usr/bin/env python3
"""API tests of agents and policies (issue 14, docs/AGENTS.md) over real HTTP.

Run by tests/integration/test_server_api.sh after api_test.py, on the same server and with the
same SG_API_RECORD file (every response is checked against docs/OpenAPI by validate.mjs):

    agents_api_test.py --url URL --db DB --admin EMAIL --password PW [--server-log FILE]

Covers every endpoint of policies, enrolment tokens, peers and tunnels, with each role and an
agent's own session: a policy with many problems refused with every one by field, secrets kept
out of every answer and log, registration and its one-time token, key-possession logins,
revocation cutting a session (and a parked long poll) off at once, the long poll waking within a
second of a change and answering 204 when nothing changed, the topologies as the agents get
them, and a hub's report feeding its clients' handshake, online state, bytes and the connection
log. Exit status 0 = every check passed.
"""
import base64
import hashlib
import hmac
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import api_test as A  # noqa: E402  (the HTTP helpers, recording and X25519)

from api_test import call, check, expect, log  # noqa: E402

NOID = A.NOID
SECRETS = []


def login(email, pw):
    st, doc = call("POST", "/api/auth/login", {"email": email, "password": pw})
    check(st == 200, "login %s" % email)
    return doc["access_token"]


class Agent:
    """A managed node as the API sees it: its key pair, id and session."""

    def __init__(self, name):
        self.name = name
        self.priv = os.urandom(32)
        self.pub = A.x25519(self.priv, (9).to_bytes(32, "little"))
        self.pub64 = base64.b64encode(self.pub).decode()
        self.id = None
        self.tok = None

    def register(self, token, status=201, **extra):
        body = {"token": token, "public_key": self.pub64, "name": self.name}
        body.update(extra)
        doc = expect("POST", "/api/peers/register", status, body)
        if status == 201:
            self.id = doc["id"]
            check(doc["name"] == self.name and doc["revoked"] is False, "registered: %s" % doc)
        return doc

    def proof(self, label=b"secureguard agent auth v1"):
        ch = expect("POST", "/api/auth/client/challenge", 200, {})
        spub = base64.b64decode(ch["server_public_key"])
        shared = A.x25519(self.priv, spub)
        mac = hmac.new(shared, label + A.b64u_dec(ch["challenge"]) + self.pub + spub,
                       hashlib.sha384).digest()
        return {"public_key": self.pub64, "challenge": ch["challenge"], "proof": A.b64u(mac)}

    def login(self, status=200):
        doc = expect("POST", "/api/auth/agent", status, self.proof())
        if status == 200:
            check(doc["agent_id"] == self.id and doc["session_token"].startswith("sga_"),
                  "agent session: %s" % doc)
            self.tok = doc["session_token"]
            A.SECRETS.append(self.tok)
        return doc


def enroll(admin, **body):
    doc = expect("POST", "/api/enrollment-tokens", 201, body, token=admin)
    check(doc["token"].startswith("sge_") and doc["used_at"] is None, "token: %s" % doc)
    A.SECRETS.append(doc["token"])
    return doc


def test_policies(admin, viewer):
    log("policies: every problem at once, secrets never shown, versions")
    bad = {"name": "bad name", "tunnels": [{
        "name": "t1", "version": 1, "remote_addrs": ["no such host!"],
        "local_ts": ["10.0.0.1/24"], "remote_ts": [], "auth": "psk", "secret": "short",
        "proposals": ["aes256gcm16-prfsha256-x25519", "rot13-sha1-x25519"],
        "rekey_time": 60, "life_time": 100000, "ah_proposals": ["sha256"]}]}
    doc = expect("POST", "/api/policies", 422, bad, token=admin)
    fields = [e["field"] for e in doc.get("errors", [])]
    for f in ("name", "applies_to", "tunnels[0].remote_addrs[0]", "tunnels[0].local_ts[0]",
              "tunnels[0].remote_ts", "tunnels[0].secret", "tunnels[0].proposals[0]",
              "tunnels[0].proposals[1]", "tunnels[0].rekey_time", "tunnels[0].life_time"):
        check(f in fields, "422 lists %s: %s" % (f, fields))
    check(any(w["field"] == "tunnels[0].ah_proposals" for w in doc.get("warnings", [])),
          "AH is a warning: %s" % doc.get("warnings"))
    check("GCM" in str(doc) or "IKEv2" in str(doc), "GCM needs IKEv2 is said: %s" % doc)
    # Type errors are the schema's (400 naming the field).
    expect("POST", "/api/policies", 400, {"name": "x", "tunnels": "no"}, token=admin,
           field="tunnels")
    expect("POST", "/api/policies", 403, {"name": "x"}, token=viewer)
    psk = "psk-" + base64.b32encode(os.urandom(10)).decode()
    SECRETS.append(psk)
    good = {"name": "branches", "description": "to HQ", "applies_to": ["branch"],
            "priority": 50, "tunnels": [{
                "name": "to-hq", "remote_addrs": ["198.51.100.1"], "local_ts": ["10.1.0.0/16"],
                "remote_ts": ["10.0.0.0/16"], "auth": "psk", "secret": psk,
                "proposals": ["aes256gcm16-prfsha256-x25519"],
                "esp_proposals": ["aes256gcm16", "chacha20poly1305"]}]}
    pol = expect("POST", "/api/policies", 201, good, token=admin)
    check(pol["version"] == 1 and pol["tunnels"][0]["has_secret"] is True and
          "secret" not in pol["tunnels"][0], "created without its secret: %s" % pol)
    check(any("ChaCha20" in w["detail"] for w in pol["warnings"]), "platform warning kept")
    expect("POST", "/api/policies", 409, good, token=admin, field="name")
    got = expect("GET", "/api/policies/" + pol["id"], 200, token=viewer)
    check(got == pol, "read back the same")
    expect("GET", "/api/policies/" + NOID, 404, token=viewer)
    page = expect("GET", "/api/policies?enabled=true&limit=10", 200, token=viewer)
    check(any(p["id"] == pol["id"] for p in page["items"]), "listed")
    page = expect("GET", "/api/policies?enabled=false", 200, token=viewer)
    check(all(not p["enabled"] for p in page["items"]), "enabled filter")
    # A tunnel sent back without its secret keeps it; a bad change is refused whole.
    tunnels = got["tunnels"]
    tunnels[0].pop("has_secret")
    tunnels[0]["remote_addrs"] = ["198.51.100.2"]
    upd = expect("PUT", "/api/policies/" + pol["id"], 200, {"tunnels": tunnels}, token=admin)
    check(upd["version"] == 2 and upd["tunnels"][0]["has_secret"] is True,
          "updated, secret kept: %s" % upd)
    expect("PUT", "/api/policies/" + pol["id"], 422,
           {"tunnels": [dict(tunnels[0], rekey_time=10)]}, token=admin)
    expect("PUT", "/api/policies/" + pol["id"], 403, {"enabled": False}, token=viewer)
    expect("PUT", "/api/policies/" + NOID, 404, {"enabled": False}, token=admin)
    other = expect("POST", "/api/policies", 201, dict(good, name="branches-2", enabled=False),
                   token=admin)
    expect("PUT", "/api/policies/" + other["id"], 409, {"name": "branches"}, token=admin,
           field="name")
    expect("DELETE", "/api/policies/" + other["id"], 204, token=admin)
    expect("DELETE", "/api/policies/" + other["id"], 404, token=admin)
    expect("DELETE", "/api/policies/" + pol["id"], 403, token=viewer)
    return pol


def test_enrollment(admin, viewer):
    log("enrolment tokens and registration")
    expect("POST", "/api/enrollment-tokens", 404, {"client_id": NOID}, token=admin,
           field="client_id")
    expect("POST", "/api/enrollment-tokens", 400, {"tags": ["a,b"]}, token=admin, field="tags")
    expect("POST", "/api/enrollment-tokens", 403, {}, token=viewer)
    tok = enroll(admin, name="branch 1", tags=["branch", "eu"], expires_in_hours=2)
    page = expect("GET", "/api/enrollment-tokens", 200, token=viewer)
    check(any(t["id"] == tok["id"] and "token" not in t for t in page["items"]),
          "listed without the token")
    dead = enroll(admin)
    expect("DELETE", "/api/enrollment-tokens/" + dead["id"], 204, token=admin)
    expect("DELETE", "/api/enrollment-tokens/" + dead["id"], 404, token=admin)
    a = Agent("branch-1")
    a.register(dead["token"], 410)
    a.register("sge_" + "A" * 43, 401)
    expect("POST", "/api/peers/register", 400, {"token": tok["token"], "public_key": a.pub64,
                                                "name": "bad_name"}, field="name")
    doc = a.register(tok["token"], address="192.0.2.11", subnets=["10.1.0.0/16"],
                     platform="linux", version="0.1.0", backends=["strongswan"],
                     hostname="branch-1.example.com")
    check(doc["tags"] == ["branch", "eu"] and doc["subnets"] == ["10.1.0.0/16"],
          "tags from the token: %s" % doc)
    a.register(tok["token"], 410)  # single use
    b = Agent("branch-1")
    b.register(enroll(admin)["token"], 409)  # the name is taken
    c = Agent("branch-2")
    c.pub64, c.pub = a.pub64, a.pub
    c.register(enroll(admin)["token"], 409)  # the key is taken
    page = expect("GET", "/api/enrollment-tokens", 200, token=viewer)
    used = [t for t in page["items"] if t["id"] == tok["id"]][0]
    check(used["agent_id"] == a.id and used["used_at"], "token marked used: %s" % used)
    return a


def test_agent_session(admin, viewer, a, pol):
    log("agent sessions: key-possession login, what an agent may do")
    a.login()
    bad = a.proof()
    bad["proof"] = A.b64u(b"\0" * 48)
    expect("POST", "/api/auth/agent", 401, bad)
    stranger = Agent("nobody")
    expect("POST", "/api/auth/agent", 401, stranger.proof())
    expect("POST", "/api/auth/agent", 400, {"public_key": "x", "challenge": "y", "proof": "z"},
           field="public_key")
    me = expect("GET", "/api/auth/me", 200, token=a.tok)
    check(me["kind"] == "agent" and me["id"] == a.id and me["role"] == "agent", "me: %s" % me)
    expect("GET", "/api/networks", 403, token=a.tok)
    expect("GET", "/api/policies", 403, token=a.tok)
    expect("GET", "/api/peers/" + a.id, 200, token=a.tok)
    expect("GET", "/api/peers/" + NOID, 403, token=a.tok)
    expect("GET", "/api/peers/%s/config" % NOID, 403, token=a.tok)
    expect("PUT", "/api/peers/%s/status" % NOID, 403, {"state": "ok"}, token=a.tok)
    expect("PUT", "/api/peers/%s/status" % a.id, 403, {"state": "ok"}, token=admin)
    cfg = expect("GET", "/api/peers/%s/config" % a.id, 200, token=a.tok)
    t = [x for x in cfg["tunnels"] if x["name"] == "to-hq"]
    check(t and t[0]["secret"] in SECRETS and t[0]["policy_id"] == pol["id"] and
          t[0]["local_addrs"] == ["%any"] and t[0]["version"] == 2,
          "the agent gets its tunnel with defaults and its secret: %s" % cfg)
    view = expect("GET", "/api/peers/%s/config" % a.id, 200, token=admin)
    check(view["revision"] == cfg["revision"] and "secret" not in view["tunnels"][0],
          "admins see the same revision, without secrets")
    expect("GET", "/api/peers/%s/config" % a.id, 403, token=viewer)
    expect("GET", "/api/peers/%s/config" % NOID, 404, token=admin)
    # Nothing changed: the wait ends with 204; then a change wakes a waiting poll at once.
    t0 = time.time()
    expect("GET", "/api/peers/%s/config?since=%s&wait=1" % (a.id, cfg["revision"]), 204,
           token=a.tok)
    check(0.9 <= time.time() - t0 < 5, "the wait lasted %.2f s" % (time.time() - t0))
    expect("GET", "/api/peers/%s/config?since=stale" % a.id, 200, token=a.tok)
    result = {}

    def poll():
        result["r"] = call("GET", "/api/peers/%s/config?since=%s&wait=30" %
                           (a.id, cfg["revision"]), token=a.tok)
        result["t"] = time.time()

    th = threading.Thread(target=poll)
    th.start()
    time.sleep(0.5)
    t0 = time.time()
    expect("PUT", "/api/policies/" + pol["id"], 200, {"priority": 60}, token=admin)
    th.join(40)
    st, doc = result.get("r", (0, None))
    check(st == 200 and doc["revision"] != cfg["revision"], "the change woke the poll: %s" % st)
    check(result.get("t", 99) - t0 < 2, "woken %.2f s after the change" % (result.get("t", 99) - t0))
    A.log("long poll woken %.3f s after the change" % (result.get("t", 99) - t0))
    # More waiting polls than the server has workers (and database connections): a change
    # answers every one of them (each re-run holds one connection at a time).
    many, started = [], threading.Barrier(25)

    def poll_many():
        started.wait()
        many.append(call("GET", "/api/peers/%s/config?since=%s&wait=30" %
                         (a.id, doc["revision"]), token=a.tok)[0])

    ths = [threading.Thread(target=poll_many) for _ in range(24)]
    for x in ths:
        x.start()
    started.wait()
    time.sleep(0.5)
    expect("PUT", "/api/policies/" + pol["id"], 200, {"priority": 61}, token=admin)
    for x in ths:
        x.join(40)
    check(many == [200] * 24, "24 waiting polls all answered after a change: %s" % many)
    doc = expect("GET", "/api/peers/%s/config" % a.id, 200, token=a.tok)
    rep = expect("PUT", "/api/peers/%s/status" % a.id, 200, {
        "state": "ok", "revision": doc["revision"], "version": "0.1.0", "platform": "linux",
        "backends": ["strongswan"],
        "tunnels": [{"name": "to-hq", "type": "ipsec", "policy_id": pol["id"],
                     "backend": "strongswan", "state": "up", "bytes_in": 10, "bytes_out": 20,
                     "packets_in": 1, "packets_out": 2, "rekeys": 0, "restarts": 1,
                     "established_at": int(time.time())}],
        "errors": []}, token=a.tok)
    check(rep["revision"] == doc["revision"], "the report says the revision is current")
    expect("PUT", "/api/peers/%s/status" % a.id, 400, {"state": "exploded"}, token=a.tok,
           field="state")
    peer = expect("GET", "/api/peers/" + a.id, 200, token=viewer)
    check(peer["online"] and peer["state"] == "ok" and peer["applied_revision"] ==
          doc["revision"] and peer["tunnels"][0]["state"] == "up" and
          peer["report"]["state"] == "ok", "the report shows: %s" % peer)


def test_peers_admin(admin, viewer, a):
    log("peers: list, change, tunnels")
    page = expect("GET", "/api/peers?tag=eu", 200, token=viewer)
    check([p["id"] for p in page["items"]] == [a.id], "tag filter: %s" % page)
    page = expect("GET", "/api/peers?tag=e", 200, token=viewer)
    check(page["total"] == 0, "a tag matches whole")
    expect("GET", "/api/peers?revoked=false&limit=5", 200, token=viewer)
    upd = expect("PUT", "/api/peers/" + a.id, 200,
                 {"tags": ["branch", "eu", "eu"], "address": "192.0.2.12",
                  "subnets": ["10.1.0.0/16", "fd01::/64"]}, token=admin)
    check(upd["tags"] == ["branch", "eu"] and upd["address"] == "192.0.2.12", "changed: %s" % upd)
    expect("PUT", "/api/peers/" + a.id, 400, {"name": "-x"}, token=admin, field="name")
    expect("PUT", "/api/peers/" + a.id, 404, {"client_id": NOID}, token=admin, field="client_id")
    expect("PUT", "/api/peers/" + NOID, 404, {"tags": []}, token=admin)
    expect("PUT", "/api/peers/" + a.id, 403, {"tags": []}, token=viewer)
    page = expect("GET", "/api/tunnels", 200, token=viewer)
    check(page["total"] >= 1 and page["items"][0]["ends"], "tunnels: %s" % page)
    page = expect("GET", "/api/tunnels?peer_id=" + a.id, 200, token=viewer)
    check([t["name"] for t in page["items"]] == ["to-hq"] and page["items"][0]["state"] == "up",
          "tunnels of a peer: %s" % page)
    t = expect("GET", "/api/tunnels/to-hq", 200, token=viewer)
    check(t["ends"][0]["peer_id"] == a.id and t["ends"][0]["restarts"] == 1, "tunnel: %s" % t)
    expect("GET", "/api/tunnels/nope", 404, token=viewer)


def test_certificates(admin, a):
    log("certificate references that exist, as the peer's agent reported them")
    tun = {"name": "by-cert", "remote_addrs": ["198.51.100.1"], "local_ts": ["10.1.0.0/16"],
           "remote_ts": ["10.0.0.0/16"], "auth": "pubkey", "local_cert": "node.pem",
           "remote_id": "CN=hq"}
    body = {"name": "by-cert", "applies_to": [a.id], "tunnels": [tun]}
    expect("PUT", "/api/peers/%s/status" % a.id, 200,
           {"state": "ok", "certificates": ["other.pem"]}, token=a.tok)
    doc = expect("POST", "/api/policies", 422, body, token=admin)
    errs = [e["detail"] for e in doc.get("errors", []) if e["field"] == "tunnels[0].local_cert"]
    check(errs and a.name in errs[0] and "node.pem" in errs[0],
          "422 names the peer without the certificate: %s" % doc)
    expect("PUT", "/api/peers/%s/status" % a.id, 400,
           {"state": "ok", "certificates": ["x"] * 257}, token=a.tok, field="certificates")
    expect("PUT", "/api/peers/%s/status" % a.id, 200,
           {"state": "ok", "certificates": ["node.pem", "other.pem"]}, token=a.tok)
    pol = expect("POST", "/api/policies", 201, body, token=admin)
    check(not any(w["field"] == "tunnels[0].local_cert" for w in pol["warnings"]),
          "no certificate warning once reported: %s" % pol["warnings"])
    peer = expect("GET", "/api/peers/" + a.id, 200, token=admin)
    check(peer["report"]["certificates"] == ["node.pem", "other.pem"],
          "the report shows the certificates: %s" % peer["report"])
    # Their validity, for the dashboard's expiry list (GET /api/certificates): by node and file,
    # expiring within 30 days, expired, ok; a bad entry refused by its field.
    now = int(time.time())
    exp = [{"name": "node.pem", "not_after": now + 5 * 86400, "subject": "node-a"},
           {"name": "old.pem", "not_after": now - 86400},
           {"name": "other.pem", "not_after": now + 400 * 86400}]
    expect("PUT", "/api/peers/%s/status" % a.id, 400,
           {"state": "ok", "certificate_expiry": [{"name": "x.pem"}]}, token=a.tok,
           field="not_after")
    expect("PUT", "/api/peers/%s/status" % a.id, 400,
           {"state": "ok", "certificate_expiry": [{"name": "x.pem", "not_after": -1}]},
           token=a.tok, field="certificate_expiry")
    expect("PUT", "/api/peers/%s/status" % a.id, 200,
           {"state": "ok", "certificates": ["node.pem", "other.pem"],
            "certificate_expiry": exp}, token=a.tok)
    certs = expect("GET", "/api/certificates", 200, token=admin)["items"]
    mine = {c["name"]: c for c in certs if c["peer_id"] == a.id}
    check(sorted(mine) == sorted("%s: %s" % (a.name, e["name"]) for e in exp) and
          all(c["kind"] == "node_cert" and c["resource_id"] is None for c in mine.values()),
          "the node's certificates: %s" % mine)
    check(mine[a.name + ": node.pem"]["state"] == "expiring" and
          mine[a.name + ": node.pem"]["subject"] == "node-a" and
          mine[a.name + ": node.pem"]["not_after"] == now + 5 * 86400 and
          mine[a.name + ": old.pem"]["state"] == "expired" and
          mine[a.name + ": old.pem"]["subject"] is None and
          mine[a.name + ": other.pem"]["state"] == "ok", "their states: %s" % mine)
    expect("DELETE", "/api/policies/" + pol["id"], 204, token=admin)


def test_topology(admin, viewer):
    log("a hub-and-spoke topology as each agent gets it")
    names = ["hs-hub", "hs-spoke1", "hs-spoke2"]
    agents = []
    for i, n in enumerate(names):
        ag = Agent(n)
        ag.register(enroll(admin, tags=["hs-hub" if i == 0 else "hs-spoke"])["token"],
                    address="192.0.2.%d" % (30 + i), subnets=["10.%d.0.0/24" % (30 + i)])
        ag.login()
        agents.append(ag)
    pol = expect("POST", "/api/policies", 201, {
        "name": "star", "topology": {"type": "hub-and-spoke", "hubs": ["hs-hub"],
                                     "spokes": ["hs-spoke"]},
        "tunnels": [{"auth": "psk", "proposals": ["aes256gcm16-prfsha256-x25519"],
                     "esp_proposals": ["aes256gcm16"]}]}, token=admin)
    cfg = [expect("GET", "/api/peers/%s/config" % ag.id, 200, token=ag.tok) for ag in agents]
    hub = {t["name"]: t for t in cfg[0]["tunnels"]}
    check(sorted(hub) == ["star-hs-hub-hs-spoke1", "star-hs-hub-hs-spoke2"],
          "the hub has a tunnel per spoke: %s" % sorted(hub))
    s1 = cfg[1]["tunnels"][0]
    check(s1["name"] == "star-hs-hub-hs-spoke1" and s1["remote_ts"] == ["10.30.0.0/24",
                                                                          "10.32.0.0/24"] and
          s1["start_action"] == "start" and hub[s1["name"]]["start_action"] == "none" and
          s1["secret"] == hub[s1["name"]]["secret"] and len(s1["secret"]) >= 32,
          "the spoke reaches the other spoke through the hub, with the pair's key: %s" % s1)
    for c in cfg:
        for t in c["tunnels"]:
            SECRETS.append(t["secret"])
    expect("DELETE", "/api/policies/" + pol["id"], 204, token=admin)
    cfg = expect("GET", "/api/peers/%s/config" % agents[1].id, 200, token=agents[1].tok)
    check(cfg["tunnels"] == [], "deleting the policy removes its tunnels")
    return agents


def test_wireguard(admin, viewer):
    log("a hub's agent: its client's configuration, reports feeding clients and the log")
    # A hub alone in its network reports too (nothing else to update).
    lone = expect("POST", "/api/networks", 201, {"name": "agents-lone", "subnet4": "10.67.0.0/24",
                                                 "fips_required": False}, token=admin)
    lhub = expect("POST", "/api/clients", 201, {"network_id": lone["id"], "name": "hub",
                                                "is_relay": True, "endpoint": "192.0.2.67:51820",
                                                "listen_port": 51820}, token=admin)
    la = Agent("lone-hub")
    la.register(enroll(admin, client_id=lhub["id"])["token"])
    la.login()
    expect("PUT", "/api/peers/%s/status" % la.id, 200, {
        "state": "ok", "wireguard": [{"interface": "sg0", "client_id": lhub["id"], "peers": []}]},
        token=la.tok)
    check(expect("GET", "/api/clients/" + lhub["id"], 200, token=viewer)["online"],
          "a lone hub is online while its agent reports")
    net = expect("POST", "/api/networks", 201, {"name": "agents-net", "subnet4": "10.66.0.0/24",
                                                "fips_required": False}, token=admin)
    hub = expect("POST", "/api/clients", 201, {"network_id": net["id"], "name": "hub",
                                               "is_relay": True,
                                               "endpoint": "192.0.2.66:51820",
                                               "listen_port": 51820}, token=admin)
    c1 = expect("POST", "/api/clients", 201, {"network_id": net["id"], "name": "laptop"},
                token=admin)
    tok = enroll(admin, client_id=hub["id"])
    ag = Agent("wg-hub")
    doc = ag.register(tok["token"], interface="wg66", backends=["secureguardd"])
    check(doc["client_id"] == hub["id"] and doc["interface"] == "wg66", "bound: %s" % doc)
    ag.login()
    cfg = expect("GET", "/api/peers/%s/config" % ag.id, 200, token=ag.tok)
    wg = cfg["tunnels"][0]
    check(wg["type"] == "wireguard" and wg["name"] == "wg66" and wg["client_id"] == hub["id"] and
          "PrivateKey = " in wg["config"] and c1["public_key_classic"] in wg["config"],
          "the hub's configuration with the laptop as a peer: %s" % wg.get("name"))
    A.SECRETS.append(wg["config"].split("PrivateKey = ")[1].split("\n")[0])
    view = expect("GET", "/api/peers/%s/config" % ag.id, 200, token=admin)
    check("config" not in view["tunnels"][0], "admins do not see the private key")
    # A policy's wireguard tunnel: an unbound peer runs the client it names.
    wa = Agent("wg-node")
    wa.register(enroll(admin)["token"])
    wa.login()
    wp = expect("POST", "/api/policies", 201, {"name": "wg-run", "applies_to": [wa.id], "tunnels": [
        {"type": "wireguard", "name": "wg67", "client_id": c1["id"]}]}, token=admin)
    expect("POST", "/api/policies", 422, {"name": "wg-bad", "applies_to": [wa.id], "tunnels": [
        {"type": "wireguard", "name": "wg68", "client_id": NOID, "auth": "psk"}]}, token=admin)
    wc = expect("GET", "/api/peers/%s/config" % wa.id, 200, token=wa.tok)
    check([(t["type"], t["name"], t["network_id"]) for t in wc["tunnels"]] ==
          [("wireguard", "wg67", net["id"])] and "PrivateKey = " in wc["tunnels"][0]["config"],
          "a policy's wireguard tunnel: %s" % wc["tunnels"])
    A.SECRETS.append(wc["tunnels"][0]["config"].split("PrivateKey = ")[1].split("\n")[0])
    expect("DELETE", "/api/policies/" + wp["id"], 204, token=admin)
    # A new client changes the hub's configuration (and its revision).
    c2 = expect("POST", "/api/clients", 201, {"network_id": net["id"], "name": "phone"},
                token=admin)
    cfg2 = expect("GET", "/api/peers/%s/config" % ag.id, 200, token=ag.tok)
    check(cfg2["revision"] != cfg["revision"] and
          c2["public_key_classic"] in cfg2["tunnels"][0]["config"], "a new client is a peer")
    now = int(time.time())
    report = {"state": "ok", "revision": cfg2["revision"], "wireguard": [{
        "interface": "wg66", "client_id": hub["id"], "peers": [
            {"public_key": c1["public_key_classic"], "endpoint": "198.51.100.7:40000",
             "last_handshake": now - 5, "rx_bytes": 1000, "tx_bytes": 2000,
             "crypto_mode": "classic"},
            {"public_key": c2["public_key_classic"], "last_handshake": 0}]}]}
    expect("PUT", "/api/peers/%s/status" % ag.id, 200, report, token=ag.tok)
    got = expect("GET", "/api/clients/" + c1["id"], 200, token=viewer)
    check(got["online"] and got["last_handshake"] == now - 5 and got["bytes_sent"] == 1000 and
          got["bytes_received"] == 2000, "the laptop is online with its bytes: %s" % got)
    check(not expect("GET", "/api/clients/" + c2["id"], 200, token=viewer)["online"],
          "the phone never shook hands")
    check(expect("GET", "/api/clients/" + hub["id"], 200, token=viewer)["online"],
          "the hub is online while its agent reports")
    log_ = expect("GET", "/api/connections?client_id=" + c1["id"], 200, token=viewer)
    ev = [(x["event"], x["crypto_mode"], x["source_ip"], x["bytes_sent"]) for x in log_["items"]]
    check(("handshake", "classic", "198.51.100.7", 1000) in ev and
          any(e[0] == "connect" for e in ev), "the log has the connect and the handshake: %s" % ev)
    # The same handshake again adds nothing; a stale one makes the laptop go offline.
    expect("PUT", "/api/peers/%s/status" % ag.id, 200, report, token=ag.tok)
    n = expect("GET", "/api/connections?client_id=" + c1["id"], 200, token=viewer)["total"]
    check(n == log_["total"], "no duplicate rows (%d, %d)" % (n, log_["total"]))
    report["wireguard"][0]["peers"][0]["last_handshake"] = now - 400
    report["wireguard"][0]["peers"][0]["rx_bytes"] = 1500
    expect("PUT", "/api/peers/%s/status" % ag.id, 200, report, token=ag.tok)
    got = expect("GET", "/api/clients/" + c1["id"], 200, token=viewer)
    check(not got["online"], "the laptop went offline: %s" % got)
    ev = expect("GET", "/api/connections?client_id=" + c1["id"], 200, token=viewer)["items"]
    check(ev[0]["event"] == "disconnect", "a disconnect row: %s" % ev[0])
    return ag, net


def test_revocation(admin, viewer, a):
    log("revocation: the session and a parked long poll are cut off at once")
    cfg = expect("GET", "/api/peers/%s/config" % a.id, 200, token=a.tok)
    result = {}

    def poll():
        result["r"] = call("GET", "/api/peers/%s/config?since=%s&wait=30" %
                           (a.id, cfg["revision"]), token=a.tok)
        result["t"] = time.time()

    th = threading.Thread(target=poll)
    th.start()
    time.sleep(0.5)
    expect("DELETE", "/api/peers/" + a.id, 403, token=viewer)
    t0 = time.time()
    expect("DELETE", "/api/peers/" + a.id, 204, token=admin)
    th.join(40)
    check(result.get("r", (0,))[0] == 401 and result.get("t", 99) - t0 < 2,
          "the waiting poll got 401 within %.2f s" % (result.get("t", 99) - t0))
    expect("DELETE", "/api/peers/" + a.id, 404, token=admin)
    expect("GET", "/api/peers/%s/config" % a.id, 401, token=a.tok)
    expect("POST", "/api/auth/agent", 403, a.proof())
    page = expect("GET", "/api/peers?revoked=true", 200, token=viewer)
    check(any(p["id"] == a.id and p["state"] == "revoked" and not p["online"]
              for p in page["items"]), "listed as revoked")
    st, doc = call("GET", "/api/tunnels?peer_id=" + a.id, token=viewer)
    check(st == 200 and doc["total"] == 0, "a revoked peer's tunnels are gone")


def test_roles(admin, viewer, a_tok, client_tok):
    log("role matrix of the new routes")
    V, AD, AG, C = "viewer", "admin", "agent", "client"
    toks = {V: viewer, AD: admin, AG: a_tok, C: client_tok}
    routes = [
        ("GET", "/api/policies", None, {V, AD}),
        ("POST", "/api/policies", {}, {AD}),
        ("GET", "/api/policies/" + NOID, None, {V, AD}),
        ("PUT", "/api/policies/" + NOID, {"enabled": True}, {AD}),
        ("DELETE", "/api/policies/" + NOID, None, {AD}),
        ("POST", "/api/enrollment-tokens", {"client_id": NOID}, {AD}),
        ("GET", "/api/enrollment-tokens", None, {V, AD}),
        ("DELETE", "/api/enrollment-tokens/" + NOID, None, {AD}),
        ("GET", "/api/peers", None, {V, AD}),
        ("PUT", "/api/peers/" + NOID, {"tags": []}, {AD}),
        ("DELETE", "/api/peers/" + NOID, None, {AD}),
        ("GET", "/api/tunnels", None, {V, AD}),
        ("GET", "/api/tunnels/x", None, {V, AD}),
    ]
    for method, path, body, allowed in routes:
        st, _ = call(method, path, body)
        check(st == 401, "%s %s without credentials: 401, got %d" % (method, path, st))
        for who, tok in toks.items():
            st, doc = call(method, path, body, token=tok)
            if who in allowed:
                check(st not in (401, 403), "%s %s as %s: allowed, got %d" % (method, path, who,
                                                                                st))
            else:
                check(st == 403, "%s %s as %s: 403, got %d %s" % (method, path, who, st, doc))


def main():
    args = A.script_args()
    root = login(args.admin, args.password)
    uniq = base64.b32encode(os.urandom(5)).decode().lower()
    pw = "agents-" + uniq + "-password"
    for role in ("admin", "viewer"):
        expect("POST", "/api/users", 201, {"email": "%s-%s@agents.test" % (role, uniq),
                                           "password": pw, "role": role}, token=root)
    admin = login("admin-%s@agents.test" % uniq, pw)
    viewer = login("viewer-%s@agents.test" % uniq, pw)

    pol = test_policies(admin, viewer)
    a = test_enrollment(admin, viewer)
    test_agent_session(admin, viewer, a, pol)
    test_peers_admin(admin, viewer, a)
    test_topology(admin, viewer)
    wg_agent, net = test_wireguard(admin, viewer)
    # A client session for the role matrix.
    c = expect("POST", "/api/clients", 201, {"network_id": net["id"], "name": "roles"},
               token=admin)
    st, _, body = A.request("GET", "/api/clients/%s/config" % c["id"], token=admin)
    priv = [x.split(" = ", 1)[1] for x in body.decode().splitlines()
            if x.startswith("PrivateKey = ")][0]
    A.SECRETS.append(priv)
    test_roles(admin, viewer, wg_agent.tok, A.client_session(c["id"], priv,
                                                             c["public_key_classic"]))
    test_certificates(admin, a)
    test_revocation(admin, viewer, a)

    # Secrets in no answer to admins, no audit row, no log line.
    return A.secrets_kept(root, args.server_log, SECRETS + A.SECRETS, args.password)

if __name__ == "__main__":
    sys.exit(main())
