#!/usr/bin/env python3
"""API tests of gateways, sites, resources and targets (issue 15, docs/GATEWAY.md) over real
HTTP.

Run by tests/integration/test_server_api.sh after agents_api_test.py, on the same server and
with the same SG_API_RECORD file (every response is checked against docs/openapi.json by
validate.mjs):

    gateways_api_test.py --url URL --db DB --admin EMAIL --password PW [--server-log FILE]

Covers every operation of /api/v1 with each role: a gateway made with a one-time enrolment
token; sites, resources and targets; every change checked by the gateway's own validator with
every problem answered at once (422) by the field of the request; domain and port conflicts
(409); the document the gateway gets, with its client secrets for it alone; the gateway's
enrolment through the agents' registration, its key-possession login, its long poll woken by a
change of its resources, its status report; enrolling again revoking the old credential;
deleting a gateway cutting its credential off. Exit status 0 = every check passed.
"""
import base64
import hashlib
import http.client
import json
import os
import re
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import api_test as A  # noqa: E402
from agents_api_test import Agent  # noqa: E402
from api_test import call, check, expect, log  # noqa: E402

NOID = A.NOID
V1 = "/api/v1"


def login(email, pw):
    st, doc = call("POST", "/api/auth/login", {"email": email, "password": pw})
    check(st == 200, "login %s" % email)
    return doc["access_token"]


def res_of(gwdoc, rid):
    return next((r for r in gwdoc.get("resources", []) if r["id"] == rid), {})


def fields(doc):
    return [e["field"] for e in (doc or {}).get("errors", [])]


def test_gateways(admin, viewer, uniq):
    log("gateways: created with a one-time token, names unique without regard to case")
    gw = expect("POST", V1 + "/gateways", 201,
                {"name": "Edge " + uniq, "region": "eu", "public_address": "edge.example.com",
                 "limits": {"max_conns": 1000}, "enrollment_expires_in_hours": 2}, token=admin)
    check(gw["enrollment_token"].startswith("sge_") and gw["state"] == "pending" and
          gw["agent_id"] is None and gw["config_serial"] >= 1 and
          gw["limits"] == {"max_conns": 1000}, "created: %s" % gw)
    check(gw["enrollment_expires_at"] - time.time() < 2 * 3600 + 60, "token lifetime")
    A.SECRETS.append(gw["enrollment_token"])
    expect("POST", V1 + "/gateways", 409, {"name": "EDGE " + uniq.upper()}, token=admin,
           field="name")
    expect("POST", V1 + "/gateways", 400, {"region": "eu"}, token=admin, field="name")
    expect("POST", V1 + "/gateways", 403, {"name": "x"}, token=viewer)
    # The gateway's own validator checks its settings: every problem, by field.
    doc = expect("POST", V1 + "/gateways", 422,
                 {"name": "bad " + uniq, "limits": {"max_head": 1024, "max_target": 2048},
                  "region": "Région"}, token=admin)
    check("limits" in fields(doc) and "region" in fields(doc), "422 by field: %s" % doc)
    got = expect("GET", V1 + "/gateways/" + gw["id"], 200, token=viewer)
    check(got["status"] is None and got["applied_revision"] is None and
          "enrollment_token" not in got, "read back without its token: %s" % got)
    expect("GET", V1 + "/gateways/" + NOID, 404, token=viewer)
    page = expect("GET", V1 + "/gateways?limit=50", 200, token=viewer)
    check(any(g["id"] == gw["id"] for g in page["items"]), "listed")
    upd = expect("PUT", V1 + "/gateways/%s/config" % gw["id"], 200,
                 {"region": "us", "limits": {"max_conns": 2000, "header_timeout_ms": 5000}},
                 token=admin)
    check(upd["region"] == "us" and upd["config_serial"] > gw["config_serial"] and
          upd["limits"]["header_timeout_ms"] == 5000, "updated: %s" % upd)
    doc = expect("PUT", V1 + "/gateways/%s/config" % gw["id"], 422,
                 {"limits": {"max_head": 1024, "max_target": 4096}}, token=admin)
    check(fields(doc) == ["limits"], "refused by field: %s" % doc)
    expect("PUT", V1 + "/gateways/%s/config" % gw["id"], 400, {}, token=admin)
    expect("PUT", V1 + "/gateways/%s/config" % NOID, 404, {"region": "x"}, token=admin)
    expect("PUT", V1 + "/gateways/%s/config" % gw["id"], 403, {"region": "x"}, token=viewer)
    other = expect("POST", V1 + "/gateways", 201, {"name": "other " + uniq}, token=admin)
    A.SECRETS.append(other["enrollment_token"])
    expect("PUT", V1 + "/gateways/%s/config" % other["id"], 409, {"name": "edge " + uniq},
           token=admin, field="name")
    return gw, other


def test_sites(admin, viewer, uniq):
    log("sites")
    site = expect("POST", V1 + "/sites", 201,
                  {"name": "Office " + uniq, "description": "HQ", "networks": ["10.9.0.0/24"]},
                  token=admin)
    check(site["networks"] == ["10.9.0.0/24"], "created: %s" % site)
    expect("POST", V1 + "/sites", 409, {"name": "office " + uniq, "networks": ["10.1.0.0/16"]},
           token=admin, field="name")
    expect("POST", V1 + "/sites", 422, {"name": "empty " + uniq, "networks": []}, token=admin,
           field="networks")
    expect("POST", V1 + "/sites", 400, {"name": "s", "networks": ["10.0.0.1/8"]}, token=admin,
           field="networks")
    expect("POST", V1 + "/sites", 403, {"name": "s", "networks": ["10.0.0.0/8"]}, token=viewer)
    check(expect("GET", V1 + "/sites/" + site["id"], 200, token=viewer) == site, "read back")
    expect("GET", V1 + "/sites/" + NOID, 404, token=viewer)
    page = expect("GET", V1 + "/sites", 200, token=viewer)
    check(any(s["id"] == site["id"] for s in page["items"]), "listed")
    spare = expect("POST", V1 + "/sites", 201, {"name": "spare " + uniq,
                                                "networks": ["10.200.0.0/16"]}, token=admin)
    upd = expect("PUT", V1 + "/sites/" + spare["id"], 200, {"description": "later"},
                 token=admin)
    check(upd["description"] == "later", "updated")
    expect("PUT", V1 + "/sites/" + NOID, 404, {"description": "x"}, token=admin)
    expect("DELETE", V1 + "/sites/" + spare["id"], 204, token=admin)
    expect("DELETE", V1 + "/sites/" + spare["id"], 404, token=admin)
    return site


def test_resources(admin, viewer, gw, other, site, uniq):
    log("resources: every problem at once, conflicts, defaults")
    dom = "app-%s.example.com" % uniq
    bad = {"gateway_id": gw["id"], "site_id": site["id"], "domain": dom,
           "rules": [{"path": "no-slash", "action": "deny"}, {"action": "auth"}],
           "sticky_cookie": "a b", "tls": {"cert": "/c", "key": "/k"}, "protocol": "http",
           "rate_limit": {"per_source": {"rate": 5}}, "idle_timeout_ms": 100}
    doc = expect("POST", V1 + "/resources", 422, bad, token=admin)
    for f in ("rules[0].path", "rules[1]", "sticky_cookie"):
        check(f in fields(doc), "422 lists %s: %s" % (f, fields(doc)))
    expect("POST", V1 + "/resources", 404, dict(bad, gateway_id=NOID), token=admin,
           field="gateway_id")
    expect("POST", V1 + "/resources", 404, dict(bad, site_id=NOID), token=admin,
           field="site_id")
    expect("POST", V1 + "/resources", 422, {"gateway_id": gw["id"], "aliases": [dom]},
           token=admin, field="aliases")
    expect("POST", V1 + "/resources", 422, {"gateway_id": gw["id"], "protocol": "tcp",
                                            "port": 2222, "domain": dom}, token=admin,
           field="domain")
    expect("POST", V1 + "/resources", 400, {"gateway_id": gw["id"], "domain": "a..b"},
           token=admin, field="domain")
    expect("POST", V1 + "/resources", 403, {"gateway_id": gw["id"], "domain": dom},
           token=viewer)
    key_hash = "0" * 96
    secret = "oidc-secret-" + uniq
    A.SECRETS.append(secret)
    web = expect("POST", V1 + "/resources", 201,
                 {"gateway_id": gw["id"], "site_id": site["id"], "domain": dom.upper(),
                  "aliases": ["*.%s" % dom], "auth": "login",
                  "oidc": {"issuer": "https://idp.example.com/realms/x", "client_id": "gw",
                           "client_secret": secret},
                  "rules": [{"path": "/health", "action": "allow"},
                            {"path": "/admin/*", "methods": ["POST"],
                             "header": {"name": "X-Admin"}, "sources": ["192.0.2.0/24"],
                             "action": "deny"}],
                  "rate_limit": {"per_source": {"rate": 20, "burst": 40}},
                  "lb": "weighted", "sticky_cookie": "sg_sticky", "max_body": 1048576},
                 token=admin)
    check(web["domain"] == dom and web["aliases"] == ["*." + dom] and web["protocol"] == "http"
          and web["name"] == dom and web["has_client_secret"] is True and
          "client_secret" not in web["oidc"] and web["targets"] == [] and web["enabled"],
          "created, the secret not shown: %s" % web)
    expect("POST", V1 + "/resources", 409, {"gateway_id": gw["id"], "domain": dom},
           token=admin, field="domain")
    expect("POST", V1 + "/resources", 409,
           {"gateway_id": gw["id"], "domain": "x-" + dom, "aliases": ["*." + dom]},
           token=admin, field="aliases")
    # Another gateway may serve the same name.
    expect("POST", V1 + "/resources", 201, {"gateway_id": other["id"], "domain": dom},
           token=admin)
    db = expect("POST", V1 + "/resources", 201,
                {"gateway_id": gw["id"], "port": 15432, "allow": ["198.51.100.0/24"],
                 "max_conns": 10, "idle_timeout_ms": 60000}, token=admin)
    check(db["protocol"] == "tcp" and db["name"] == "tcp/15432", "tcp by default: %s" % db)
    expect("POST", V1 + "/resources", 409, {"gateway_id": gw["id"], "port": 15432},
           token=admin, field="port")
    udp = expect("POST", V1 + "/resources", 201,
                 {"gateway_id": gw["id"], "protocol": "udp", "port": 15432}, token=admin)
    doc = expect("POST", V1 + "/resources", 422,
                 {"gateway_id": gw["id"], "protocol": "udp", "port": 15433, "auth": "api_key",
                  "api_keys": [key_hash], "rules": [{"action": "deny"}]}, token=admin)
    check("auth" in fields(doc) and "rules" in fields(doc), "tcp/udp limits: %s" % doc)
    api = expect("POST", V1 + "/resources", 201,
                 {"gateway_id": gw["id"], "domain": "api-" + dom, "auth": "api_key",
                  "api_keys": [key_hash], "enabled": False}, token=admin)
    check(not api["enabled"] and api["api_keys"] == [key_hash], "disabled: %s" % api)
    # Its own certificate is a file on the gateway's host: the server lists it by its path and
    # says it cannot read its expiry (GET /api/certificates, the dashboard's health).
    expect("PUT", V1 + "/resources/" + api["id"], 200,
           {"tls": {"cert": "/etc/ssl/api-%s.crt" % uniq, "key": "/etc/ssl/api.key"}},
           token=admin)
    certs = expect("GET", "/api/certificates", 200, token=viewer)["items"]
    mine = [c for c in certs if c["resource_id"] == api["id"]]
    check(len(mine) == 1 and mine[0]["kind"] == "resource_tls" and
          mine[0]["state"] == "unknown" and mine[0]["not_after"] is None and
          "/etc/ssl/api-%s.crt" % uniq in mine[0]["detail"] and "api.key" not in
          mine[0]["detail"], "a resource's certificate: %s" % mine)
    expect("PUT", V1 + "/resources/" + api["id"], 200, {"tls": None}, token=admin)
    check(not [c for c in expect("GET", "/api/certificates", 200, token=viewer)["items"]
               if c["resource_id"] == api["id"]], "gone with its tls")
    expect("GET", V1 + "/resources/" + web["id"], 200, token=viewer)
    expect("GET", V1 + "/resources/" + NOID, 404, token=viewer)
    page = expect("GET", V1 + "/resources?gateway_id=%s&limit=10" % gw["id"], 200,
                  token=viewer)
    check(page["total"] == 4 and all(r["gateway_id"] == gw["id"] for r in page["items"]),
          "filtered by gateway: %s" % page["total"])
    page = expect("GET", V1 + "/resources?site_id=" + site["id"], 200, token=viewer)
    check([r["id"] for r in page["items"]] == [web["id"]], "filtered by site")
    upd = expect("PUT", V1 + "/resources/" + web["id"], 200,
                 {"oidc": {"issuer": "https://idp.example.com/realms/x", "client_id": "gw",
                           "scopes": "openid email profile"}}, token=admin)
    check(upd["has_client_secret"] and upd["oidc"]["scopes"] == "openid email profile",
          "the secret kept for the same issuer and client: %s" % upd)
    doc = expect("PUT", V1 + "/resources/" + web["id"], 422,
                 {"rules": [{"path": "/x", "action": "auth"}], "auth": "public"}, token=admin)
    check(sorted(fields(doc)) == ["oidc", "rules[0]"], "auth rule without auth: %s" % doc)
    expect("PUT", V1 + "/resources/" + web["id"], 400, {"gateway_id": other["id"]},
           token=admin, field="gateway_id")
    expect("PUT", V1 + "/resources/" + NOID, 404, {"enabled": True}, token=admin)
    expect("PUT", V1 + "/resources/" + db["id"], 409, {"port": 15432, "protocol": "udp"},
           token=admin, field="port")
    expect("DELETE", V1 + "/resources/" + udp["id"], 204, token=admin)
    expect("DELETE", V1 + "/resources/" + udp["id"], 404, token=admin)
    expect("DELETE", V1 + "/sites/" + site["id"], 409, token=admin)
    return web, db, api


def test_targets(admin, viewer, gw, web, db):
    log("targets: inside the site, health checks, weights")
    doc = expect("POST", V1 + "/resources/%s/targets" % web["id"], 422,
                 {"address": "10.8.0.2:80", "health_check": {"type": "http", "path": "/h",
                                                            "interval_ms": 100,
                                                            "timeout_ms": 500}}, token=admin)
    check(set(fields(doc)) == {"address", "health_check"}, "by field: %s" % doc)
    expect("POST", V1 + "/resources/%s/targets" % web["id"], 400, {"address": "app:80"},
           token=admin, field="address")
    expect("POST", V1 + "/resources/%s/targets" % NOID, 404, {"address": "10.9.0.2:80"},
           token=admin)
    expect("POST", V1 + "/resources/%s/targets" % web["id"], 403, {"address": "10.9.0.2:80"},
           token=viewer)
    a = expect("POST", V1 + "/resources/%s/targets" % web["id"], 201,
               {"address": "10.9.0.2:8080", "weight": 3, "region": "eu",
                "health_check": {"type": "http", "path": "/health", "interval_ms": 2000,
                                 "status": [200, 299]}}, token=admin)
    b = expect("POST", V1 + "/resources/%s/targets" % web["id"], 201,
               {"address": "10.9.0.3:8080"}, token=admin)
    check(a["weight"] == 3 and b["weight"] == 1 and b["health_check"] is None,
          "created: %s %s" % (a, b))
    doc = expect("POST", V1 + "/resources/%s/targets" % db["id"], 422,
                 {"address": "10.9.0.5:5432", "health_check": {"type": "http"}}, token=admin)
    check(fields(doc) == ["health_check"], "http check on tcp: %s" % doc)
    pg = expect("POST", V1 + "/resources/%s/targets" % db["id"], 201,
                {"address": "[fd00::5]:5432", "health_check": {"type": "tcp"}}, token=admin)
    page = expect("GET", V1 + "/resources/%s/targets" % web["id"], 200, token=viewer)
    check(sorted(t["id"] for t in page["items"]) == sorted([a["id"], b["id"]]), "listed")
    expect("GET", V1 + "/resources/%s/targets" % NOID, 404, token=viewer)
    check(expect("GET", V1 + "/targets/" + a["id"], 200, token=viewer) == a, "read back")
    expect("GET", V1 + "/targets/" + NOID, 404, token=viewer)
    upd = expect("PUT", V1 + "/targets/" + b["id"], 200, {"weight": 1, "region": "us"},
                 token=admin)
    check(upd["region"] == "us", "updated")
    doc = expect("PUT", V1 + "/targets/" + b["id"], 422, {"address": "10.77.0.1:80"},
                 token=admin)
    check(fields(doc) == ["address"], "outside the site: %s" % doc)
    expect("PUT", V1 + "/targets/" + NOID, 404, {"weight": 2}, token=admin)
    expect("PUT", V1 + "/targets/" + b["id"], 403, {"weight": 2}, token=viewer)
    # A site may not move away from its targets.
    doc = expect("PUT", V1 + "/sites/" + web["site_id"], 422, {"networks": ["10.10.0.0/24"]},
                 token=admin)
    check(len(doc["errors"]) == 2 and all("outside site" in e["detail"] for e in doc["errors"]),
          "every target named: %s" % doc)
    tmp = expect("POST", V1 + "/resources/%s/targets" % db["id"], 201,
                 {"address": "10.9.0.6:5432"}, token=admin)
    expect("DELETE", V1 + "/targets/" + tmp["id"], 204, token=admin)
    expect("DELETE", V1 + "/targets/" + tmp["id"], 404, token=admin)
    conf = expect("GET", V1 + "/gateways/%s/config" % gw["id"], 200, token=admin)
    c = conf["config"]
    by_id = {r["id"]: r for r in c["resources"]}
    check(sorted(by_id) == sorted([web["id"], db["id"]]),
          "served: the resources with targets, enabled: %s" % list(by_id))
    w = by_id[web["id"]]
    check(w["domains"] == [web["domain"], "*." + web["domain"]] and w["auth"] == "login" and
          w["oidc"].get("client_secret") is None and w["site"] == web["site_id"] and
          sorted(t["address"] for t in w["targets"]) == ["10.9.0.2:8080", "10.9.0.3:8080"] and
          c["sites"][0]["networks"] == ["10.9.0.0/24"] and c["region"] == "us",
          "the document: %s" % w)
    check(by_id[db["id"]]["targets"][0]["address"] == "[fd00::5]:5432", "tcp target")
    check(conf["problems"] == [], "nothing left out: %s" % conf["problems"])
    expect("GET", V1 + "/gateways/%s/config" % gw["id"], 403, token=viewer)
    expect("GET", V1 + "/gateways/%s/config" % NOID, 404, token=admin)
    return a, b, pg


def enroll_gateway(gw_id, token):
    """Registers as `secureguard gateway --enroll` does: the peer is named after the gateway."""
    g = Agent("gw-host")
    doc = expect("POST", "/api/peers/register", 201,
                 {"token": token, "public_key": g.pub64, "name": g.name, "hostname": "edge",
                  "platform": "linux", "version": "test"})
    check(doc["name"] == "gateway-" + gw_id[:8], "named after its gateway: %s" % doc["name"])
    g.id = doc["id"]
    return g


def test_gateway_peer(admin, viewer, gw, web, target):
    log("a gateway enrolls as a managed peer, gets its document pushed, reports")
    g = enroll_gateway(gw["id"], gw["enrollment_token"])
    Agent("again").register(gw["enrollment_token"], status=410)
    g.login()
    got = expect("GET", V1 + "/gateways/" + gw["id"], 200, token=viewer)
    check(got["agent_id"] == g.id and got["state"] == "registered", "enrolled: %s" % got)
    st, conf = call("GET", "/api/peers/%s/config" % g.id, token=g.tok)
    check(st == 200 and res_of(conf["gateway"], web["id"]),
          "its document in its configuration: %s" % st)
    oidc = res_of(conf["gateway"], web["id"])["oidc"]
    check(oidc.get("client_secret", "").startswith("oidc-secret-"),
          "the gateway itself gets its client secret")
    st, adm = call("GET", "/api/peers/%s/config" % g.id, token=admin)
    check(st == 200 and "client_secret" not in res_of(adm["gateway"], web["id"])["oidc"],
          "admins never see it")
    # The long poll wakes within a second of a change of one of its resources.
    rev = conf["revision"]
    serial = conf["gateway"]["serial"]
    result = {}

    def poll():
        result["r"] = call("GET", "/api/peers/%s/config?since=%s&wait=20" % (g.id, rev),
                           token=g.tok)
        result["t"] = time.time()

    th = threading.Thread(target=poll)
    th.start()
    time.sleep(0.5)
    t0 = time.time()
    expect("PUT", V1 + "/targets/" + target["id"], 200, {"weight": 5}, token=admin)
    th.join(30)
    st, new = result.get("r", (0, None))
    check(st == 200 and new["gateway"]["serial"] > serial and
          [t["weight"] for t in res_of(new["gateway"], web["id"])["targets"]
           if t["id"] == target["id"]] == [5],
          "pushed: %s" % st)
    check(result.get("t", 99) - t0 < 2.5, "within %.2f s" % (result.get("t", 99) - t0))
    st, _ = call("GET", "/api/peers/%s/config?since=%s&wait=1" % (g.id, new["revision"]),
                 token=g.tok)
    check(st == 204, "nothing new: 204, got %d" % st)
    report = {"state": "ok", "revision": new["revision"], "version": "test",
              "gateway": {"serial": new["gateway"]["serial"], "connections": 3,
                          "config_rejected": 0,
                          "resources": [{"id": web["id"], "requests": 10, "denied": 1,
                                         "rate_limited": 0,
                                         "targets": [{"id": target["id"], "healthy": True,
                                                      "requests": 7, "failures": 0,
                                                      "active": 1}]}]}}
    expect("PUT", "/api/peers/%s/status" % g.id, 200, report, token=g.tok)
    got = expect("GET", V1 + "/gateways/" + gw["id"], 200, token=viewer)
    check(got["state"] == "ok" and got["online"] and got["applied_revision"] == new["revision"]
          and got["status"]["resources"][0]["targets"][0]["requests"] == 7,
          "its report shows: %s" % got)
    # Only its own: no admin routes.
    expect("GET", V1 + "/gateways", 403, token=g.tok)
    # Its decisions in the audit chain, the client as the row's source.
    ev = {"events": [
        {"type": "access_denied", "resource_id": web["id"], "client_ip": "198.51.100.7",
         "method": "POST", "host": web["domain"], "path": "/admin/x", "status": 403,
         "reason": "rule 1", "count": 3, "first": 1, "last": 2},
        {"type": "login", "resource_id": web["id"], "client_ip": "198.51.100.8",
         "user": "alice@example.com", "status": 302, "count": 1},
        {"type": "login_failed", "resource_id": web["id"], "client_ip": "2001:db8::9",
         "reason": "state differs", "status": 400, "count": 1}], "dropped": 2}
    doc = expect("POST", V1 + "/gateways/%s/events" % gw["id"], 200, ev, token=g.tok)
    check(doc["events"] == 3, "recorded: %s" % doc)
    expect("POST", V1 + "/gateways/%s/events" % gw["id"], 403, ev, token=admin)
    expect("POST", V1 + "/gateways/%s/events" % NOID, 403, ev, token=g.tok)
    expect("POST", V1 + "/gateways/%s/events" % gw["id"], 400,
           {"events": [{"type": "bogus", "client_ip": "1.2.3.4"}]}, token=g.tok, field="events")
    rows = expect("GET", "/api/audit?event_type=gateway.access_denied&limit=5", 200,
                  token=viewer)["items"]
    check(rows and rows[0]["source_ip"] == "198.51.100.7" and
          rows[0]["resource_id"] == web["id"] and rows[0]["action"] == "deny" and
          json.loads(rows[0]["details"])["count"] == 3, "a denial audited: %s" % rows[:1])
    rows = expect("GET", "/api/audit?event_type=gateway.login&limit=5", 200, token=viewer)
    check(rows["items"] and rows["items"][0]["action"] == "success", "a login audited")
    rows = expect("GET", "/api/audit?event_type=gateway.events_dropped&limit=5", 200,
                  token=viewer)
    check(rows["items"], "what the gateway dropped is said")
    return g


def test_reenroll_delete(admin, viewer, gw, g):
    log("enrolling again revokes the old credential; deleting the gateway cuts it off")
    expect("POST", V1 + "/gateways/%s/enrollment-token" % NOID, 404, {}, token=admin)
    expect("POST", V1 + "/gateways/%s/enrollment-token" % gw["id"], 403, {}, token=viewer)
    first = expect("POST", V1 + "/gateways/%s/enrollment-token" % gw["id"], 201, {},
                   token=admin)
    tok = expect("POST", V1 + "/gateways/%s/enrollment-token" % gw["id"], 201,
                 {"enrollment_expires_in_hours": 1}, token=admin)
    A.SECRETS += [first["enrollment_token"], tok["enrollment_token"]]
    Agent("x").register(first["enrollment_token"], status=410)  # the second revoked it
    g2 = enroll_gateway(gw["id"], tok["enrollment_token"])
    expect("GET", "/api/peers/%s/config" % g.id, 401, token=g.tok)
    expect("POST", "/api/auth/agent", 403, g.proof())
    g2.login()
    st, _ = call("GET", "/api/peers/%s/config" % g2.id, token=g2.tok)
    check(st == 200, "the new credential works")
    got = expect("GET", V1 + "/gateways/" + gw["id"], 200, token=viewer)
    check(got["agent_id"] == g2.id, "the gateway's credential is the new one")
    expect("DELETE", V1 + "/gateways/" + gw["id"], 403, token=viewer)
    expect("DELETE", V1 + "/gateways/" + gw["id"], 204, token=admin)
    expect("DELETE", V1 + "/gateways/" + gw["id"], 404, token=admin)
    expect("GET", "/api/peers/%s/config" % g2.id, 401, token=g2.tok)
    expect("POST", "/api/auth/agent", 403, g2.proof())
    page = expect("GET", V1 + "/resources?gateway_id=" + gw["id"], 200, token=viewer)
    check(page["total"] == 0, "its resources went with it")


ISSUER = "https://sg.example.com"  # test_server_api.sh starts this server with it


def nofollow(method, path, data=None, headers=None):
    """A request whose redirect is the answer (the provider's 302s go to the gateways'
    domains); recorded as api_test.request records, from api_test.SOURCE when a test set one.
    (status, headers, bytes)"""
    u = urllib.parse.urlparse(A.ARGS.url)
    con = http.client.HTTPConnection(u.hostname, u.port, timeout=60,
                                     source_address=(A.SOURCE[0], 0) if A.SOURCE[0] else None)
    con.request(method, path, body=data, headers=dict(headers or {}))
    r = con.getresponse()
    st, h, b = r.status, dict(r.getheaders()), r.read()
    con.close()
    A.STATUSES.append((method, path, st))
    A.record(method, path, st, h, b)
    return st, h, b


def form(method, path, fields, cookie=None):
    """A form request as a browser sends it; (status, headers, text)."""
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if cookie:
        headers["Cookie"] = cookie
    st, h, b = nofollow(method, path, urllib.parse.urlencode(fields).encode(), headers)
    return st, h, b.decode("utf-8", "replace")


def hdr(h, name):
    return next((v for k, v in h.items() if k.lower() == name.lower()), None)


def b64u_json(part):
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_oidc(admin, viewer, uniq, root_email, root_pw):
    log("the server as OpenID Connect provider: discovery, keys, login, PKCE, ES384 tokens")
    disc = expect("GET", "/.well-known/openid-configuration", 200)
    check(disc["issuer"] == ISSUER and disc["token_endpoint"] == ISSUER + "/oauth2/token" and
          disc["code_challenge_methods_supported"] == ["S256"] and
          disc["id_token_signing_alg_values_supported"] == ["ES384"], "discovery: %s" % disc)
    jwks = expect("GET", "/oauth2/jwks", 200)
    key = jwks["keys"][0]
    check(key["kty"] == "EC" and key["crv"] == "P-384" and key["alg"] == "ES384" and
          len(base64.urlsafe_b64decode(key["x"] + "==")) == 48, "JWKS: %s" % key)
    gw = expect("POST", V1 + "/gateways", 201, {"name": "login " + uniq}, token=admin)
    A.SECRETS.append(gw["enrollment_token"])
    dom = "login-%s.example.com" % uniq
    res = expect("POST", V1 + "/resources", 201,
                 {"gateway_id": gw["id"], "domain": dom, "aliases": ["*.w-" + dom],
                  "auth": "login"}, token=admin)
    expect("POST", V1 + "/resources/%s/targets" % res["id"], 201, {"address": "10.9.9.9:80"},
           token=admin)
    conf = expect("GET", V1 + "/gateways/%s/config" % gw["id"], 200, token=admin)
    oidc = res_of(conf["config"], res["id"])["oidc"]
    check(oidc == {"issuer": ISSUER, "client_id": res["id"]},
          "the gateway trusts this server: %s" % oidc)
    verifier = base64.urlsafe_b64encode(os.urandom(40)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    redirect = "https://x.w-%s/.sg/oidc/callback" % dom
    areq = {"response_type": "code", "client_id": res["id"], "redirect_uri": redirect,
            "scope": "openid email", "state": "s-" + uniq, "nonce": "n-" + uniq,
            "code_challenge": challenge, "code_challenge_method": "S256"}
    q = urllib.parse.urlencode(areq)
    st, h, page = nofollow("GET", "/oauth2/authorize?" + q)
    check(st == 200 and b"<form" in page and "frame-ancestors 'none'" in
          (hdr(h, "Content-Security-Policy") or ""), "the login page: %d" % st)
    for bad in ("https://evil.example.com/.sg/oidc/callback", "https://%s/other" % dom,
                "https://a.b.w-%s/.sg/oidc/callback" % dom,
                "https://%s/.sg/oidc/callback?x=1" % dom):
        expect("GET", "/oauth2/authorize?" + urllib.parse.urlencode(dict(areq, redirect_uri=bad)),
               400, field="redirect_uri", what="a redirect URI not the client's is never used")
    expect("GET", "/oauth2/authorize?" + urllib.parse.urlencode(dict(areq, client_id=NOID)),
           400, field="client_id")
    st, h, _ = nofollow("GET", "/oauth2/authorize?" +
                         urllib.parse.urlencode(dict(areq, scope="email")))
    check(st == 302 and "error=invalid_scope" in hdr(h, "Location") and
          "state=s-" + uniq in hdr(h, "Location"), "no openid: redirected with the error")
    st, h, _ = nofollow("GET", "/oauth2/authorize?" + urllib.parse.urlencode(
        dict(areq, prompt="none")))
    check(st == 302 and "error=login_required" in hdr(h, "Location"), "prompt=none: %d" % st)
    st, _, text = form("POST", "/oauth2/authorize", dict(areq, email=root_email,
                                                         password="wrong"))
    check(st == 401 and "Wrong e-mail or password" in text, "a wrong password: %d" % st)
    st, h, _ = form("POST", "/oauth2/authorize", dict(areq, email=root_email, password=root_pw))
    loc = urllib.parse.urlparse(hdr(h, "Location") or "")
    got = dict(urllib.parse.parse_qsl(loc.query))
    cookie = (hdr(h, "Set-Cookie") or "").split(";")[0]
    check(st == 302 and loc.netloc == "x.w-" + dom and got.get("state") == areq["state"] and
          got.get("code", "").startswith("sgc_") and cookie.startswith("sg_op="),
          "logged in, a code: %d %s" % (st, hdr(h, "Location")))
    A.SECRETS.append(cookie.split("=", 1)[-1])
    tok = {"grant_type": "authorization_code", "code": got.get("code", ""),
           "redirect_uri": redirect, "client_id": res["id"], "code_verifier": verifier}
    st, _, text = form("POST", "/oauth2/token", dict(tok, code_verifier="A" * 43))
    check(st == 400 and json.loads(text).get("error") == "invalid_grant",
          "a wrong verifier: invalid_grant, %d" % st)
    # The code was spent by that attempt: single use, whatever the outcome.
    st, _, text = form("POST", "/oauth2/token", tok)
    check(st == 400 and json.loads(text).get("error") == "invalid_grant", "spent: %d" % st)
    # Signed in here: the next authorization needs no password (single sign-on).
    st, h, _ = nofollow("GET", "/oauth2/authorize?" + q, headers={"Cookie": cookie})
    got = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(hdr(h, "Location") or "").query))
    check(st == 302 and got.get("code"), "single sign-on: %d" % st)
    st, h, text = form("POST", "/oauth2/token", dict(tok, code=got.get("code", "")))
    toks = json.loads(text) if st == 200 else {}
    check(st == 200 and toks.get("token_type") == "Bearer" and
          "no-store" in (hdr(h, "Cache-Control") or ""), "tokens: %d %s" % (st, text[:200]))
    A.SECRETS += [toks.get("id_token", "x" * 40), toks.get("access_token", "x" * 40)]
    head, claims = (b64u_json(p) for p in toks["id_token"].split(".")[:2])
    check(head == {"alg": "ES384", "kid": key["kid"], "typ": "JWT"} and
          claims["iss"] == ISSUER and claims["aud"] == res["id"] and
          claims["nonce"] == areq["nonce"] and claims["email"] == root_email and
          claims["exp"] > time.time(), "the ID token: %s %s" % (head, claims))
    info = expect("GET", "/oauth2/userinfo", 200, token=toks["access_token"])
    check(info["email"] == root_email and info["sub"] == claims["sub"], "userinfo: %s" % info)
    expect("GET", "/oauth2/userinfo", 401, token=toks["id_token"])
    expect("GET", "/oauth2/userinfo", 401)
    st, _, _ = form("POST", "/oauth2/token", dict(tok, client_id=NOID))
    check(st == 400, "another client's code: %d" % st)
    st, _, _ = nofollow("POST", "/oauth2/token", json.dumps(tok).encode(),
                        {"Content-Type": "application/json"})
    check(st == 415, "the token endpoint takes a form: %d" % st)
    # A second factor (issue 22): the page asks for a code after the password, with the rules
    # of POST /api/auth/login/mfa; a session its password alone made before ends.
    pw2 = "op-2fa-" + uniq + "-password"
    email2 = "op-2fa-%s@gateways.test" % uniq
    root = login(root_email, root_pw)
    expect("POST", "/api/users", 201, {"email": email2, "password": pw2, "role": "super_admin"},
           token=root)
    st, h, _ = form("POST", "/oauth2/authorize", dict(areq, email=email2, password=pw2))
    cookie2 = (hdr(h, "Set-Cookie") or "").split(";")[0]
    check(st == 302 and cookie2.startswith("sg_op="), "no second factor yet: logged in, %d" % st)
    A.SECRETS.append(cookie2.split("=", 1)[-1])
    utok = login(email2, pw2)
    secret = expect("POST", "/api/auth/totp", 200, token=utok)["secret"]
    A.SECRETS.append(secret)
    step = A.totp_step()
    recovery = expect("POST", "/api/auth/totp/confirm", 200, {"code": A.totp(secret, step)},
                      token=utok)["recovery_codes"]
    A.SECRETS.extend(recovery)
    st, h, _ = nofollow("GET", "/oauth2/authorize?" + urllib.parse.urlencode(
        dict(areq, prompt="none")), headers={"Cookie": cookie2})
    check(st == 302 and "error=login_required" in hdr(h, "Location"),
          "the password-only session ended with the second factor: %d %s" % (st, hdr(h, "Location")))

    def code_step(fields, what):
        """The password step of a second-factor account: the code step and its mfa_token."""
        st, _, text = form("POST", "/oauth2/authorize", fields)
        m = re.search(r'name="mfa_token" value="([^"]+)"', text)
        check(st == 200 and m and 'id="code"' in text and 'id="password"' not in text,
              "%s: the password is right, the page asks for a code: %d" % (what, st))
        tok = m.group(1) if m else "sgm_none"
        A.SECRETS.append(tok)
        return tok

    # settings.require_2fa: an account without a second factor is refused at this page (it
    # sets one up in the console first); one with it gets the code step. Set by the super_admin
    # with a second factor (a recovery code: the TOTP step is used up for 30 s).
    st, doc = call("POST", "/api/auth/login", {"email": email2, "password": pw2})
    A.SECRETS.append(doc.get("mfa_token", "sgm_none"))
    st, doc = call("POST", "/api/auth/login/mfa", {"mfa_token": doc.get("mfa_token", ""),
                                                   "code": recovery[9]})
    check(st == 200, "the super_admin's login with a recovery code: %d %s" % (st, doc))
    stok = doc.get("access_token", "")
    pw4 = "op-req-" + uniq + "-password"
    email4 = "op-req-%s@gateways.test" % uniq
    expect("POST", "/api/users", 201, {"email": email4, "password": pw4, "role": "viewer"},
           token=root)
    expect("PUT", "/api/settings", 200, {"require_2fa": True}, token=stok)
    try:
        st, _, text = form("POST", "/oauth2/authorize", dict(areq, email=email4, password=pw4))
        check(st == 401 and "requires a second factor" in text,
              "require_2fa: an account without one is refused, %d" % st)
        code_step(dict(areq, email=email2, password=pw2), "require_2fa, with one")
    finally:
        expect("PUT", "/api/settings", 200, {"require_2fa": False}, token=stok)
    audit = expect("GET", "/api/audit?event_type=user.failed_login&limit=50", 200, token=root)
    check(any(json.loads(r["details"] or "{}").get("reason") == "second_factor_required" and
              json.loads(r["details"] or "{}").get("email") == email4 for r in audit["items"]),
          "the refusal is audited (second_factor_required)")

    mfa = code_step(dict(areq, email=email2, password=pw2), "a second-factor account")
    st, _, text = form("POST", "/oauth2/authorize", dict(areq, mfa_token=mfa,
                                                         code=A.totp(secret, step - 20)))
    check(st == 401 and "Wrong code" in text and mfa in text, "a wrong code: %d" % st)
    good = A.totp(secret, step + 1)
    st, h, _ = form("POST", "/oauth2/authorize", dict(areq, mfa_token=mfa, code=good))
    got = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(hdr(h, "Location") or "").query))
    cookie2 = (hdr(h, "Set-Cookie") or "").split(";")[0]
    check(st == 302 and got.get("code", "").startswith("sgc_") and
          cookie2.startswith("sg_op=sgo2_"), "password and code: a code and a session, %d" % st)
    A.SECRETS.append(cookie2.split("=", 1)[-1])
    st, h, text = form("POST", "/oauth2/token", dict(tok, code=got.get("code", "")))
    claims = b64u_json(json.loads(text)["id_token"].split(".")[1]) if st == 200 else {}
    check(claims.get("email") == email2, "the second-factor login's ID token: %d %s" % (st, claims))
    # The mfa_token is single use; the code is good once, also with a new mfa_token.
    st, _, text = form("POST", "/oauth2/authorize", dict(areq, mfa_token=mfa, code=good))
    check(st == 401 and 'id="password"' in text, "a used mfa_token: sign in again, %d" % st)
    mfa = code_step(dict(areq, email=email2, password=pw2), "again")
    st, _, text = form("POST", "/oauth2/authorize", dict(areq, mfa_token=mfa, code=good))
    check(st == 401 and "Wrong code" in text, "a code used before: %d" % st)
    # A recovery code instead (any case), once.
    st, h, _ = form("POST", "/oauth2/authorize", dict(areq, mfa_token=mfa,
                                                      code=recovery[0].upper()))
    check(st == 302 and "code=sgc_" in (hdr(h, "Location") or ""), "a recovery code: %d" % st)
    A.SECRETS.append((hdr(h, "Set-Cookie") or "x=x").split(";")[0].split("=", 1)[-1])
    mfa = code_step(dict(areq, email=email2, password=pw2), "after a recovery code")
    st, _, _ = form("POST", "/oauth2/authorize", dict(areq, mfa_token=mfa, code=recovery[0]))
    check(st == 401, "a used recovery code: %d" % st)
    st, h, _ = form("POST", "/oauth2/authorize", dict(areq, mfa_token=mfa, code=recovery[1]))
    check(st == 302, "another recovery code: %d" % st)
    A.SECRETS.append((hdr(h, "Set-Cookie") or "x=x").split(";")[0].split("=", 1)[-1])
    # Five wrong codes end the mfa_token (and, as five wrong passwords, lock the account for
    # this source: nothing after this uses it).
    mfa = code_step(dict(areq, email=email2, password=pw2), "before five wrong codes")
    for i in range(5):
        form("POST", "/oauth2/authorize", dict(areq, mfa_token=mfa,
                                               code=A.totp(secret, step - 30 - i)))
    st, _, text = form("POST", "/oauth2/authorize", dict(areq, mfa_token=mfa,
                                                         code=recovery[2]))
    check(st == 401 and 'id="password"' in text, "five wrong codes end the mfa_token: %d" % st)
    # Its session signs in without a password or code (single sign-on): it was made with both.
    st, h, _ = nofollow("GET", "/oauth2/authorize?" + urllib.parse.urlencode(
        dict(areq, prompt="none")), headers={"Cookie": cookie2})
    check(st == 302 and "code=sgc_" in (hdr(h, "Location") or ""),
          "the second-factor session signs in: %d %s" % (st, hdr(h, "Location")))
    audit = expect("GET", "/api/audit?event_type=oidc.authorized&limit=20", 200, token=root)
    check(any(json.loads(r["details"] or "{}").get("second_factor") == "totp"
              for r in audit["items"]),
          "oidc.authorized names the second factor")
    # Logging out everywhere (a password change, a role change, disabling) ends it too.
    pw3 = "op-out-" + uniq + "-password"
    email3 = "op-out-%s@gateways.test" % uniq
    expect("POST", "/api/users", 201, {"email": email3, "password": pw3, "role": "viewer"},
           token=login(root_email, root_pw))
    st, h, _ = form("POST", "/oauth2/authorize", dict(areq, email=email3, password=pw3))
    cookie3 = (hdr(h, "Set-Cookie") or "").split(";")[0]
    check(st == 302 and cookie3.startswith("sg_op="), "logged in at the provider: %d" % st)
    A.SECRETS.append(cookie3.split("=", 1)[-1])
    st, h, _ = nofollow("GET", "/oauth2/authorize?" + q, headers={"Cookie": cookie3})
    check(st == 302 and "code=" in hdr(h, "Location"), "its session signs in: %d" % st)
    expect("POST", "/api/auth/logout", 200, {}, token=login(email3, pw3))
    st, h, _ = nofollow("GET", "/oauth2/authorize?" + urllib.parse.urlencode(
        dict(areq, prompt="none")), headers={"Cookie": cookie3})
    check(st == 302 and "error=login_required" in hdr(h, "Location"),
          "logged out everywhere: the provider's session too, %d %s" % (st, hdr(h, "Location")))
    expect("DELETE", V1 + "/gateways/" + gw["id"], 204, token=admin)


def test_services(admin, viewer, uniq):
    """/api/v1/services (secureguard expose): the gateway's expose settings, a service's client,
    resource and target made together, its public URL, DNS record and tunnel; conflicts, ports,
    auth; deletion taking all of it away."""
    log("services: a gateway's expose settings, exposed services and their tunnels")
    net = expect("POST", "/api/networks", 201, {"name": "expose-" + uniq, "subnet4": "10.77.0.0/24",
                                                "fips_required": False}, token=admin)
    dom = "svc-%s.test" % uniq
    expose = {"network_id": net["id"], "domain": dom, "scheme": "http", "http_port": 8080,
              "ports": [20000, 20001]}
    expect("POST", "/api/v1/services", 409, {"protocol": "http", "local_address": "localhost:3000"},
           token=admin, field="gateway_id", what="no gateway takes services")
    expect("POST", V1 + "/gateways", 422, {"name": "svc-noaddr " + uniq, "expose": expose},
           token=admin, field="public_address")
    expect("POST", V1 + "/gateways", 404,
           {"name": "svc-nonet " + uniq, "public_address": "203.0.113.7",
            "expose": dict(expose, network_id=NOID)}, token=admin, field="expose.network_id")
    expect("POST", V1 + "/gateways", 422,
           {"name": "svc-ports " + uniq, "public_address": "203.0.113.7",
            "expose": dict(expose, ports=[20001, 20000])}, token=admin, field="expose.ports")
    gw = expect("POST", V1 + "/gateways", 201, {"name": "svc " + uniq, "public_address": "203.0.113.7",
                                                "expose": expose}, token=admin)
    A.SECRETS.append(gw["enrollment_token"])
    check(gw["expose"] == expose, "expose settings kept: %s" % gw["expose"])
    body = {"protocol": "http", "local_address": "localhost:3000", "subdomain": "dev-" + uniq,
            "public_key": base64.b64encode(os.urandom(32)).decode()}
    expect("POST", "/api/v1/services", 409, body, token=admin, field="gateway_id",
           what="an expose network without a hub")
    hub = expect("POST", "/api/clients", 201, {"network_id": net["id"], "name": "gateway host",
                                               "is_relay": True, "endpoint": "203.0.113.7:51820",
                                               "listen_port": 51820}, token=admin)
    expect("POST", "/api/v1/services", 403, body, token=viewer)
    svc = expect("POST", "/api/v1/services", 201, body, token=admin)
    t = svc["tunnel"]
    check(svc["public_url"] == "http://dev-%s.%s:8080" % (uniq, dom) and
          svc["dns_record"]["name"] == "dev-%s.%s" % (uniq, dom) and
          svc["dns_record"]["type"] == "A" and svc["dns_record"]["value"] == "203.0.113.7" and
          svc["dns_record"]["text"] == "dev-%s.%s. 300 IN A 203.0.113.7" % (uniq, dom) and
          svc["gateway_id"] == gw["id"] and svc["status"] == "pending" and
          svc["auth"] == "public" and "api_key" not in svc and svc["public_port"] is None and
          svc["name"] == "expose-dev-" + uniq and svc["port"] == 3000,
          "the service: %s" % svc)
    check(t["address"].startswith("10.77.0.") and t["listen"] == t["address"] + ":3000" and
          t["crypto_mode"] == "classic" and "[Peer]" in t["config"] and
          "Endpoint = 203.0.113.7:51820" in t["config"] and
          "PersistentKeepalive = 25" in t["config"] and
          "PrivateKey =" not in t["config"] and hub["public_key_classic"] in t["config"],
          "the tunnel of a supplied key: %s" % t)
    res = expect("GET", V1 + "/resources/" + svc["resource_id"], 200, token=viewer)
    check(res["domain"] == "dev-%s.%s" % (uniq, dom) and res["gateway_id"] == gw["id"] and
          res["auth"] == "public" and len(res["targets"]) == 1 and
          res["targets"][0]["address"] == t["listen"] and
          res["targets"][0]["id"] == svc["target_id"] and
          res["targets"][0]["health_check"]["type"] == "tcp", "its resource: %s" % res)
    conf = expect("GET", V1 + "/gateways/%s/config" % gw["id"], 200, token=admin)["config"]
    check(res_of(conf, svc["resource_id"]).get("domains") == ["dev-%s.%s" % (uniq, dom)],
          "in the gateway's document: %s" % conf)
    cl = expect("GET", "/api/clients/" + svc["client_id"], 200, token=viewer)
    check(cl["network_id"] == net["id"] and cl["persistent_keepalive"] == 25,
          "its WireGuard client: %s" % cl)
    expect("POST", "/api/v1/services", 409, body, token=admin, field="subdomain")
    expect("POST", "/api/v1/services", 409, dict(body, subdomain="dev2-" + uniq), token=admin,
           field="public_key", what="the key of another client of the network")
    for bad in ("Dev", "-x", "a.b", "x_y", "a" * 64):
        expect("POST", "/api/v1/services", 400, dict(body, subdomain=bad), token=admin,
               field="subdomain", what=bad)
    expect("POST", "/api/v1/services", 400, {"protocol": "http", "local_address": "localhost"},
           token=admin, field="port")
    expect("POST", "/api/v1/services", 422, {"protocol": "tcp", "local_address": "localhost:22",
                                            "auth": "api_key"}, token=admin, field="auth")
    expect("POST", "/api/v1/services", 404, {"protocol": "http", "local_address": ":80",
                                            "gateway_id": NOID}, token=admin, field="gateway_id")
    expect("POST", "/api/v1/services", 400, dict(body, extra=1), token=admin, field="extra")
    # auth api_key, the server's keys: the key once, its hash in the resource; a random name.
    ks = expect("POST", "/api/v1/services", 201, {"protocol": "http", "local_address": "[::1]:8000",
                                                 "auth": "api_key", "gateway_id": gw["id"]},
                token=admin)
    A.SECRETS.append(ks["api_key"])
    priv = [ln.split("=", 1)[1].strip() for ln in ks["tunnel"]["config"].splitlines()
            if ln.startswith("PrivateKey")]
    check(len(priv) == 1, "a server-made key pair: PrivateKey in the config")
    A.SECRETS.extend(priv)
    check(ks["api_key"].startswith("sgs_") and len(ks["subdomain"]) == 11 and
          ks["subdomain"][0] == "s" and ks["port"] == 8000 and ks["auth"] == "api_key",
          "api_key service: %s" % {k: v for k, v in ks.items() if k != "tunnel"})
    kres = expect("GET", V1 + "/resources/" + ks["resource_id"], 200, token=viewer)
    check(kres["api_keys"] == [hashlib.sha384(ks["api_key"].encode()).hexdigest()],
          "the resource keeps the key's SHA-384 only")
    # tcp and udp: ports from the range, the lowest free one, per protocol.
    tc = expect("POST", "/api/v1/services", 201, {"protocol": "tcp", "local_address": "localhost:5432"},
                token=admin)
    ud = expect("POST", "/api/v1/services", 201, {"protocol": "udp", "local_address": "localhost:53"},
                token=admin)
    tc2 = expect("POST", "/api/v1/services", 201, {"protocol": "tcp", "local_address": "localhost:22",
                                                  "port": 2222}, token=admin)
    check(tc["public_port"] == 20000 and ud["public_port"] == 20000 and
          tc2["public_port"] == 20001 and
          tc["public_url"] == "tcp://%s.%s:20000" % (tc["subdomain"], dom) and
          ud["public_url"].startswith("udp://") and tc2["tunnel"]["listen"].endswith(":2222"),
          "tcp/udp ports: %s %s %s" % (tc["public_url"], ud["public_url"], tc2["public_url"]))
    for x in (tc, ud, tc2):
        A.SECRETS.extend(ln.split("=", 1)[1].strip() for ln in x["tunnel"]["config"].splitlines()
                         if ln.startswith("PrivateKey"))
    expect("POST", "/api/v1/services", 409, {"protocol": "tcp", "local_address": "localhost:1"},
           token=admin, field="protocol", what="no free port")
    page = expect("GET", "/api/v1/services?gateway_id=" + gw["id"], 200, token=viewer)
    check(page["total"] == 5 and len(page["items"]) == 5 and
          all("config" not in i["tunnel"] and "api_key" not in i for i in page["items"]),
          "listed without secrets: %s" % page)
    got = expect("GET", "/api/v1/services/" + svc["id"], 200, token=viewer)
    check(got["public_url"] == svc["public_url"] and "config" not in got["tunnel"], "read back")
    expect("GET", "/api/v1/services/" + NOID, 404, token=viewer)
    # Stop exposing: the resource, its target and the client go; the port is free again.
    expect("DELETE", "/api/v1/services/" + tc["id"], 403, token=viewer)
    expect("DELETE", "/api/v1/services/" + tc["id"], 204, token=admin)
    expect("DELETE", "/api/v1/services/" + tc["id"], 404, token=admin)
    expect("GET", V1 + "/resources/" + tc["resource_id"], 404, token=viewer)
    expect("GET", "/api/clients/" + tc["client_id"], 404, token=viewer)
    again = expect("POST", "/api/v1/services", 201, {"protocol": "tcp", "local_address": "h:1"},
                   token=admin)
    check(again["public_port"] == 20000, "a freed port is given again")
    A.SECRETS.extend(ln.split("=", 1)[1].strip() for ln in again["tunnel"]["config"].splitlines()
                     if ln.startswith("PrivateKey"))
    # A resource deleted by its own route takes the service and its client along.
    expect("DELETE", V1 + "/resources/" + ks["resource_id"], 204, token=admin)
    expect("GET", "/api/v1/services/" + ks["id"], 404, token=viewer)
    expect("GET", "/api/clients/" + ks["client_id"], 404, token=viewer)
    # The gateway deleted: its services and their clients with it.
    expect("DELETE", V1 + "/gateways/" + gw["id"], 204, token=admin)
    expect("GET", "/api/v1/services/" + svc["id"], 404, token=viewer)
    expect("GET", "/api/clients/" + svc["client_id"], 404, token=viewer)
    expect("DELETE", "/api/networks/" + net["id"], 204, token=admin)


def test_roles(admin, viewer, uniq):
    log("role matrix of /api/v1")
    routes = [
        ("GET", V1 + "/gateways", None, {"viewer", "admin"}),
        ("POST", V1 + "/gateways", {"name": "roles " + uniq}, {"admin"}),
        ("GET", V1 + "/gateways/" + NOID, None, {"viewer", "admin"}),
        ("DELETE", V1 + "/gateways/" + NOID, None, {"admin"}),
        ("GET", V1 + "/gateways/%s/config" % NOID, None, {"admin"}),
        ("PUT", V1 + "/gateways/%s/config" % NOID, {"region": "x"}, {"admin"}),
        ("POST", V1 + "/gateways/%s/enrollment-token" % NOID, {}, {"admin"}),
        ("GET", V1 + "/sites", None, {"viewer", "admin"}),
        ("POST", V1 + "/sites", {"name": "r", "networks": []}, {"admin"}),
        ("GET", V1 + "/resources", None, {"viewer", "admin"}),
        ("POST", V1 + "/resources", {"gateway_id": NOID}, {"admin"}),
        ("GET", V1 + "/resources/%s/targets" % NOID, None, {"viewer", "admin"}),
        ("DELETE", V1 + "/targets/" + NOID, None, {"admin"}),
    ]
    for method, path, body, allowed in routes:
        st, _ = call(method, path, body)
        check(st == 401, "%s %s without credentials: 401, got %d" % (method, path, st))
        for who, tok in (("viewer", viewer), ("admin", admin)):
            st, doc = call(method, path, body, token=tok)
            if who in allowed:
                check(st not in (401, 403), "%s %s as %s: allowed, got %d" % (method, path,
                                                                                who, st))
            else:
                check(st == 403, "%s %s as %s: 403, got %d %s" % (method, path, who, st, doc))


def main():
    args = A.script_args()
    root = login(args.admin, args.password)
    uniq = base64.b32encode(os.urandom(5)).decode().lower()
    pw = "gateways-" + uniq + "-password"
    for role in ("admin", "viewer"):
        expect("POST", "/api/users", 201, {"email": "%s-%s@gateways.test" % (role, uniq),
                                           "password": pw, "role": role}, token=root)
    admin = login("admin-%s@gateways.test" % uniq, pw)
    viewer = login("viewer-%s@gateways.test" % uniq, pw)

    gw, other = test_gateways(admin, viewer, uniq)
    site = test_sites(admin, viewer, uniq)
    web, db, _ = test_resources(admin, viewer, gw, other, site, uniq)
    a, _, _ = test_targets(admin, viewer, gw, web, db)
    g = test_gateway_peer(admin, viewer, gw, web, a)
    test_reenroll_delete(admin, viewer, gw, g)
    test_oidc(admin, viewer, uniq, args.admin, args.password)
    test_roles(admin, viewer, uniq)
    test_services(admin, viewer, uniq)
    expect("DELETE", V1 + "/gateways/" + other["id"], 204, token=admin)
    expect("DELETE", V1 + "/sites/" + site["id"], 204, token=admin)

    st, doc = call("GET", "/api/audit?limit=1000", token=root)
    text = str(doc)
    check("gateway.created" in text and "resource.created" in text and
          "gateway.enrolled" in text and "target.updated" in text and
          "service.created" in text and "service.deleted" in text, "changes are audited")
    # Secrets in no answer to admins, no audit row, no log line.
    return A.secrets_kept(root, args.server_log, A.SECRETS, args.password)

if __name__ == "__main__":
    sys.exit(main())
