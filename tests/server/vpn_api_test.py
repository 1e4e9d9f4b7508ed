#!/usr/bin/env python3
"""API tests of MFA-gated VPN sessions (issue 22, docs/SERVER.md "MFA-gated VPN sessions") over
real HTTP.

Run by tests/integration/test_server_api.sh after gateways_api_test.py, on the same server and
with the same SG_API_RECORD file (every response is checked against docs/openapi.json):

    vpn_api_test.py --url URL --db DB --admin EMAIL --password PW [--server-log FILE]

Covers: the network settings mfa_required and mfa_session_hours; clients' owners (the creating
user by default, owner_id on create and update); a hub's configuration listing an owned client
only while its owner's session is open; opening a session with password and TOTP codes computed
here (hmac) or a recovery code; wrong, replayed and missing factors; a session ended by its
user, revoked by an admin, expired, ended by a change of owner and by a password change; the
refusals (not owned, ambiguous, disabled, a hub, not an mfa network, no second factor); no
temporary access on an mfa_required network (409 at creation, and at redeem for a grant made
before the network turned it on); roles;
each step audited; the per-address limit of logins; the TLS session token (its claims, again
by the session token, none once the session ended) and its key. And sessions opened through the
OpenID provider (client secureguard-cli, `secureguard connect --oidc`), this script acting as
both the app and the browser: loopback redirect URIs only, the login page's password and second
step, the code redeemed at POST /api/vpn-sessions/oidc, and its refusals (a replayed code, a
wrong PKCE verifier, redirect URI or nonce, an account without a second factor, the token
endpoint). Exit status 0 = every check passed.
"""
import base64
import hashlib
import json
import os
import re
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import api_test as A  # noqa: E402
from api_test import call, check, expect, log, totp, totp_step  # noqa: E402
from gateways_api_test import form, hdr, nofollow  # noqa: E402
from passkeys_api_test import Passkey, register  # noqa: E402

NOID = A.NOID


def login(email, pw):
    st, doc = call("POST", "/api/auth/login", {"email": email, "password": pw})
    check(st == 200 and doc.get("access_token"), "login %s: %d" % (email, st))
    return doc["access_token"]


def hub_lists(admin, hub, client):
    """Whether the hub's rendered configuration has client as a peer."""
    st, _, body = A.request("GET", "/api/clients/%s/config" % hub["id"], token=admin)
    check(st == 200, "hub config: %d" % st)
    return client["public_key_classic"] in body.decode()


def wait_until(what, fn, secs):
    end = time.time() + secs
    while time.time() < end:
        if fn():
            return True
        time.sleep(0.2)
    return check(False, what)


def run(root, root_id, uniq):
    pw = "vpn-" + uniq + "-password"
    A.SECRETS.append(pw)
    owner = expect("POST", "/api/users", 201, {"email": "owner-%s@vpn.test" % uniq,
                                                "password": pw, "role": "viewer"}, token=root)
    plain = expect("POST", "/api/users", 201, {"email": "plain-%s@vpn.test" % uniq,
                                                "password": pw, "role": "viewer"}, token=root)
    admin_u = expect("POST", "/api/users", 201, {"email": "admin-%s@vpn.test" % uniq,
                                                  "password": pw, "role": "admin"}, token=root)
    admin = login(admin_u["email"], pw)
    viewer = login(owner["email"], pw)
    # The owner turns on TOTP (codes computed here).
    secret = expect("POST", "/api/auth/totp", 200, token=viewer)["secret"]
    A.SECRETS.append(secret)
    step = totp_step()
    codes = expect("POST", "/api/auth/totp/confirm", 200, {"code": totp(secret, step)},
                   token=viewer)["recovery_codes"]
    A.SECRETS.extend(codes)

    log("networks: mfa_required and mfa_session_hours")
    net = expect("POST", "/api/networks", 201,
                 {"name": "vpn-mfa-" + uniq, "subnet4": "10.61.0.0/24", "fips_required": False,
                  "mfa_required": True, "mfa_session_hours": 2}, token=admin)
    check(net["mfa_required"] is True and net["mfa_session_hours"] == 2, "network: %s" % net)
    plain_net = expect("POST", "/api/networks", 201,
                       {"name": "vpn-plain-" + uniq, "subnet4": "10.62.0.0/24",
                        "fips_required": False}, token=admin)
    check(plain_net["mfa_required"] is False and plain_net["mfa_session_hours"] == 8,
          "defaults: %s" % plain_net)
    expect("POST", "/api/networks", 400, {"name": "x" + uniq, "subnet4": "10.63.0.0/24",
                                          "mfa_session_hours": 0}, token=admin,
           field="mfa_session_hours")
    expect("PUT", "/api/networks/" + plain_net["id"], 403, {"mfa_required": True}, token=viewer)

    log("temporary access: refused on an mfa_required network (a guest has no account)")
    d = expect("POST", "/api/temp-access", 409, {"network_id": net["id"]}, token=admin,
               field="network_id")
    check("mfa_required" in d["detail"] and net["name"] in d["detail"],
          "the 409 names the network and why: %s" % d["detail"])
    # A grant made before its network turned mfa_required: its link is refused (409, also to
    # HEAD) and no use is spent; it works again once the network is plain.
    g = expect("POST", "/api/temp-access", 201, {"network_id": plain_net["id"]}, token=admin)
    A.SECRETS.append(g["token"])
    expect("PUT", "/api/networks/" + plain_net["id"], 200, {"mfa_required": True}, token=admin)
    st, _, _ = A.request("HEAD", "/api/temp-access/" + g["token"])
    check(st == 409, "HEAD of a grant on a network now mfa_required: 409, got %d" % st)
    d = expect("GET", "/api/temp-access/" + g["token"], 409, what="(now mfa_required)")
    check("mfa_required" in d["detail"], "the redeem's 409 says why: %s" % d["detail"])
    expect("PUT", "/api/networks/" + plain_net["id"], 200, {"mfa_required": False}, token=admin)
    uses = [t["current_uses"] for t in expect(
        "GET", "/api/temp-access?network_id=" + plain_net["id"], 200, token=admin)["items"]]
    check(uses == [0], "no use spent by the refusals: %s" % uses)
    expect("DELETE", "/api/temp-access/" + g["id"], 204, token=admin)

    log("clients: an owner (the creating user by default, owner_id to choose)")
    hub = expect("POST", "/api/clients", 201,
                 {"network_id": net["id"], "name": "hub", "is_relay": True,
                  "endpoint": "192.0.2.61:51820"}, token=admin)
    check(hub["owner_id"] == admin_u["id"], "the creating admin owns by default: %s" % hub)
    lap = expect("POST", "/api/clients", 201, {"network_id": net["id"], "name": "laptop-" + uniq,
                                               "owner_id": owner["id"]}, token=admin)
    check(lap["owner_id"] == owner["id"], "owner_id given: %s" % lap)
    expect("POST", "/api/clients", 400, {"network_id": net["id"], "name": "nobody",
                                         "owner_id": NOID}, token=admin, field="owner_id")
    expect("PUT", "/api/clients/" + lap["id"], 400, {"owner_id": NOID}, token=admin,
           field="owner_id")
    expect("PUT", "/api/clients/" + lap["id"], 400, {"owner_id": "x"}, token=admin,
           field="owner_id")
    other = expect("POST", "/api/clients", 201, {"network_id": plain_net["id"],
                                                 "name": "laptop-" + uniq,
                                                 "owner_id": owner["id"]}, token=admin)
    disabled = expect("POST", "/api/clients", 201,
                      {"network_id": net["id"], "name": "off-" + uniq, "owner_id": owner["id"],
                       "enabled": False}, token=admin)
    expect("PUT", "/api/clients/" + hub["id"], 200, {"owner_id": owner["id"]}, token=admin)
    check(not hub_lists(admin, hub, lap), "before a session the hub does not list the laptop")
    st, _, conf = A.request("GET", "/api/clients/%s/config" % lap["id"], token=admin)
    check(st == 200 and b"requires an MFA session" in conf, "the client's config says so")
    # A client of a network without mfa_required is listed as always.
    phub = expect("POST", "/api/clients", 201,
                  {"network_id": plain_net["id"], "name": "phub", "is_relay": True,
                   "endpoint": "192.0.2.62:51820"}, token=admin)
    check(hub_lists(admin, phub, other), "a plain network's hub lists its client")

    def open_(client, code, status, email=None, password=None, field=None, what="", **kw):
        body = {"client": client, "email": email or owner["email"], "password": password or pw,
                "code": code}
        body.update(kw)
        d = expect("POST", "/api/vpn-sessions", status, body, field=field, what=what)
        if status == 201:
            A.SECRETS.append(d["session_token"])
        return d

    log("opening: password and TOTP; refusals roll the code back")
    open_(lap["name"], totp(secret, step), 401, password=pw + "x", what="(wrong password)")
    open_(lap["name"], "000000" if totp(secret, step + 1) != "000000" else "111111", 401,
          field="code", what="(wrong code)")
    open_(lap["name"], totp(secret, step), 401, field="code",
          what="(the code that confirmed enrolment, replayed)")
    nxt = totp(secret, step + 1)
    open_("nothing-" + uniq, nxt, 404, field="client", what="(no such client of the owner)")
    open_(hub["name"], nxt, 409, field="client", what="(a hub)")
    open_(disabled["name"], nxt, 409, field="client", what="(disabled)")
    open_(other["id"], nxt, 409, field="client", what="(not an mfa network)")
    open_(lap["id"], nxt, 400, field="duration_seconds", duration_seconds=5)
    open_(lap["name"], nxt, 409, field="client", what="(two clients of the owner by that name)")
    # The refusals above were rolled back: the same code still opens (by id here).
    s1 = open_(lap["id"], nxt, 201)
    check(s1["client_id"] == lap["id"] and s1["user_id"] == owner["id"] and
          s1["session_token"].startswith("sgv_") and 2 * 3600 - 5 < s1["expires_in"] <= 7200,
          "a session of mfa_session_hours: %s" % {k: v for k, v in s1.items()
                                                   if k != "session_token"})
    check(hub_lists(admin, hub, lap), "with the session the hub lists the laptop")
    open_(lap["id"], nxt, 401, field="code", what="(a code is good once)")
    open_(lap["id"][:-1] + "x", codes[0], 404, field="client", what="(recovery code kept)")
    page = expect("GET", "/api/vpn-sessions?active=true&client_id=" + lap["id"], 200,
                  token=viewer)
    check(page["total"] == 1 and page["items"][0]["id"] == s1["id"] and
          page["items"][0]["active"] is True and page["items"][0]["user_email"] ==
          owner["email"] and page["items"][0]["client_name"] == lap["name"],
          "listed as active: %s" % page)

    log("the TLS session token (docs/TLS.md): the laptop's key, this session, its end")
    key = expect("GET", "/api/tls-session-key", 200)
    check(key["alg"] == "ES384" and key["jwk"]["crv"] == "P-384" and
          key["jwk"]["kid"] == key["kid"] and key["pem"].startswith("-----BEGIN PUBLIC KEY"),
          "the session tokens' key: %s" % key)
    again = expect("POST", "/api/vpn-sessions/tls-token", 200,
                   {"session_token": s1["session_token"]})
    for tok in (s1["tls_session_token"], again["tls_session_token"]):
        A.SECRETS.append(tok)
        head, claims = (json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
                        for p in tok.split(".")[:2])
        check(head == {"alg": "ES384", "kid": key["kid"], "typ": "sg-tls-session+jwt"} and
              claims["cpk"] == lap["public_key_classic"] and claims["sid"] == s1["id"] and
              claims["exp"] == s1["expires_at"] == again["expires_at"] and
              claims["net"] == lap["network_id"], "the token's claims: %s %s" % (head, claims))
    expect("POST", "/api/vpn-sessions/tls-token", 404, {"session_token": "sgv_" + "A" * 43})

    log("ended by its user")
    expect("POST", "/api/vpn-sessions/end", 204, {"session_token": s1["session_token"]})
    expect("POST", "/api/vpn-sessions/tls-token", 404, {"session_token": s1["session_token"]},
           what="(ended: no token any more)")
    check(not hub_lists(admin, hub, lap), "ended: the hub no longer lists the laptop")
    expect("POST", "/api/vpn-sessions/end", 404, {"session_token": s1["session_token"]},
           what="(ended already)")
    expect("POST", "/api/vpn-sessions/end", 404, {"session_token": "sgv_" + "A" * 43})

    test_oidc(owner, pw, codes[4:8], plain, lap, hub, admin, root, viewer)

    log("revoked by an admin")
    s2 = open_(lap["id"], codes[0].replace("-", "").upper(), 201, duration_seconds=600)
    check(590 <= s2["expires_in"] <= 600, "a shorter session asked for: %s" % s2["expires_in"])
    check(hub_lists(admin, hub, lap), "a recovery code opens a session too")
    expect("DELETE", "/api/vpn-sessions/" + s2["id"], 403, token=viewer)
    expect("DELETE", "/api/vpn-sessions/" + NOID, 404, token=admin)
    expect("DELETE", "/api/vpn-sessions/" + s2["id"], 204, token=admin)
    expect("DELETE", "/api/vpn-sessions/" + s2["id"], 409, token=admin, what="(ended)")
    check(not hub_lists(admin, hub, lap), "revoked: the hub no longer lists the laptop")
    expect("POST", "/api/vpn-sessions/end", 404, {"session_token": s2["session_token"]},
           what="(revoked)")

    log("expired: ended by the server within about a second")
    s3 = open_(lap["id"], codes[1], 201, duration_seconds=10)
    check(hub_lists(admin, hub, lap), "listed during the short session")

    def expired():
        p = expect("GET", "/api/vpn-sessions?client_id=" + lap["id"] + "&active=false", 200,
                   token=admin)
        return any(i["id"] == s3["id"] and i["end_reason"] == "expired" for i in p["items"])
    wait_until("the 10 s session ended as expired within 15 s", expired, 15)
    check(not hub_lists(admin, hub, lap), "expired: the hub no longer lists the laptop")

    log("a change of owner and a password change end the session")
    s4 = open_(lap["id"], codes[2], 201)
    expect("PUT", "/api/clients/" + lap["id"], 200, {"owner_id": root_id}, token=admin)
    check(not hub_lists(admin, hub, lap), "another owner: not listed")
    open_(lap["id"], codes[3], 404, field="client", what="(no longer the owner)")
    expect("PUT", "/api/clients/" + lap["id"], 200, {"owner_id": owner["id"]}, token=admin)
    s5 = open_(lap["id"], codes[3], 201)
    pw2 = pw + "-2"
    A.SECRETS.append(pw2)
    expect("PUT", "/api/users/" + owner["id"], 200, {"password": pw2}, token=root)
    check(not hub_lists(admin, hub, lap), "a password change ends the session")
    reasons = {i["id"]: i["end_reason"] for i in expect(
        "GET", "/api/vpn-sessions?user_id=%s&limit=50" % owner["id"], 200, token=admin)["items"]}
    check(reasons.get(s4["id"]) == "owner_changed" and
          reasons.get(s5["id"]) == "credentials_changed" and
          reasons.get(s1["id"]) == "ended_by_user" and reasons.get(s2["id"]) == "revoked",
          "end reasons: %s" % reasons)

    log("an account without a second factor opens nothing")
    expect("PUT", "/api/clients/" + lap["id"], 200, {"owner_id": plain["id"]}, token=admin)
    open_(lap["id"], "123456", 403, email=plain["email"], what="(no TOTP)")
    expect("GET", "/api/vpn-sessions", 401)

    log("audited")
    st, doc = call("GET", "/api/audit?resource_type=vpn_session&limit=200", token=root)
    kinds = {}
    for e in doc["items"] if st == 200 else []:
        kinds.setdefault(e["event_type"], []).append(e)
    for ev in ("vpn_session.opened", "vpn_session.ended", "vpn_session.revoked",
               "vpn_session.expired"):
        check(ev in kinds, "audit has %s (has %s)" % (ev, sorted(kinds)))
    check(any(e["actor_name"] == owner["email"] for e in kinds.get("vpn_session.opened", [])),
          "the owner opened it")
    check(any(e["actor_id"] == admin_u["id"] for e in kinds.get("vpn_session.revoked", [])),
          "the admin revoked it")
    check(any(e["actor_type"] == "system" for e in kinds.get("vpn_session.expired", [])),
          "the server expired it")
    st, doc = call("GET", "/api/audit?event_type=user.failed_login&limit=200", token=root)
    check(st == 200 and any(e["resource_id"] == owner["id"] and
                            '"reason":"bad_code"' in (e["details"] or "")
                            for e in doc["items"]), "a wrong code is a failed login")
    check(st == 200 and any(e["resource_id"] == plain["id"] and
                            '"reason":"no_second_factor"' in (e["details"] or "")
                            for e in doc["items"]), "no second factor: a failed login")
    for n in (net, plain_net):
        expect("DELETE", "/api/networks/" + n["id"], 204, token=admin)


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def oidc_request(redirect="http://127.0.0.1:49152/callback"):
    """An authorization request of secureguard-cli as the app makes it: (areq, verifier)."""
    verifier = b64u(os.urandom(32))
    return ({"response_type": "code", "client_id": "secureguard-cli", "redirect_uri": redirect,
             "scope": "openid", "state": b64u(os.urandom(16)), "nonce": b64u(os.urandom(16)),
             "code_challenge": b64u(hashlib.sha256(verifier.encode()).digest()),
             "code_challenge_method": "S256"}, verifier)


def oidc_login(areq, email, password, code, bad_passkey=False):
    """The browser's part: the page, the password, the second step. The redirect's query.
    bad_passkey: first a passkey answer that cannot be right (the page says so, the step
    stays)."""
    st, h, page = nofollow("GET", "/oauth2/authorize?" + urllib.parse.urlencode(areq))
    check(st == 200 and b'name="password"' in page, "the login page: %d" % st)
    st, h, text = form("POST", "/oauth2/authorize", dict(areq, email=email, password=password))
    if st == 200:
        m = re.search(r'name="mfa_token" value="([^"]+)"', text)
        check(m is not None, "the second step asks for a code")
        # An account with TOTP and no passkey: no passkey button, no script allowed at all.
        check("Use a passkey" not in text and "<script" not in text and
              "script-src" not in (hdr(h, "Content-Security-Policy") or ""),
              "a TOTP-only second step has no script")
        if bad_passkey:
            st, h, text = form("POST", "/oauth2/authorize", dict(
                areq, mfa_token=m.group(1), credential='{"id":"AAAA","type":"public-key",'
                '"response":{"clientDataJSON":"e30","authenticatorData":"AAAA",'
                '"signature":"AAAA"}}'))
            check(st == 401 and "The passkey was not accepted" in text and m.group(1) in text,
                  "a wrong passkey answer: the step again, saying why: %d" % st)
        st, h, text = form("POST", "/oauth2/authorize", dict(areq, mfa_token=m.group(1),
                                                             code=code))
    loc = hdr(h, "Location") or ""
    check(st == 302 and loc.startswith(areq["redirect_uri"] + "?"),
          "back to the loopback redirect URI: %d %s" % (st, loc[:80]))
    got = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(loc).query))
    check(got.get("state") == areq["state"], "the state came back")
    return got


def test_oidc(owner, pw, codes, plain, lap, hub, admin, root, owner_tok):
    log("sessions through the OpenID provider (secureguard-cli, RFC 8252 loopback redirect)")
    areq, verifier = oidc_request()
    for bad in ("https://app.example.com/callback", "http://localhost:49152/callback",
                "http://127.0.0.1/callback", "http://127.0.0.1:0/callback",
                "http://127.0.0.1:65536/callback", "http://127.0.0.1:5000/cb?x=1",
                "http://127.0.0.2:5000/callback", "https://127.0.0.1:5000/callback",
                "http://127.0.0.1:5000@evil.example/callback"):
        st, h, _ = nofollow("GET", "/oauth2/authorize?" +
                            urllib.parse.urlencode(dict(areq, redirect_uri=bad)))
        check(st == 400 and not hdr(h, "Location"), "not a loopback URI, never redirected "
              "to: %s: %d" % (bad, st))
    # The page's passkey step is a script file of the server (the page allows no inline one).
    st, h, js = A.request("GET", "/oauth2/login.js")
    check(st == 200 and (hdr(h, "Content-Type") or "").startswith("text/javascript") and
          b"navigator.credentials.get" in js, "the login page's script: %d" % st)
    for ok in ("http://[::1]:8080/", "http://127.0.0.1:65535/a/b"):
        st, _, _ = nofollow("GET", "/oauth2/authorize?" +
                            urllib.parse.urlencode(dict(areq, redirect_uri=ok)))
        check(st == 200, "a loopback URI on any port: %s: %d" % (ok, st))

    def redeem(got, areq, verifier, status, field=None, what="", **over):
        body = {"client": lap["id"], "oidc_code": got.get("code", "x"), "code_verifier": verifier,
                "redirect_uri": areq["redirect_uri"], "nonce": areq["nonce"]}
        body.update(over)
        d = expect("POST", "/api/vpn-sessions/oidc", status, body, field=field, what=what)
        if status == 201:
            A.SECRETS.append(d["session_token"])
        return d

    got = oidc_login(areq, owner["email"], pw, codes[0])
    check(got.get("code", "").startswith("sgc_") and "error" not in got, "a code: %s" % got.keys())
    # The app's code is for VPN sessions only: the token endpoint refuses its client.
    st, _, _ = form("POST", "/oauth2/token", {"grant_type": "authorization_code",
                                              "code": got["code"],
                                              "redirect_uri": areq["redirect_uri"],
                                              "client_id": "secureguard-cli",
                                              "code_verifier": verifier})
    check(st == 400, "no ID token for secureguard-cli: %d" % st)
    redeem(got, areq, verifier, 401, field="oidc_code", what="(another nonce)",
           nonce=b64u(os.urandom(16)))
    # The refusal spent the code (single use: the first redemption wins, right or wrong).
    redeem(got, areq, verifier, 401, field="oidc_code", what="(spent by the refusal)")

    areq, verifier = oidc_request("http://[::1]:40000/cb")
    got = oidc_login(areq, owner["email"], pw, codes[1], bad_passkey=True)
    s = redeem(got, areq, verifier, 201, duration_seconds=900)
    check(s["client_id"] == lap["id"] and s["user_id"] == owner["id"] and
          890 <= s["expires_in"] <= 900, "a session through the provider: %s" %
          {k: v for k, v in s.items() if k != "session_token"})
    check(hub_lists(admin, hub, lap), "the hub lists the laptop")
    page = expect("GET", "/api/vpn-sessions?active=true&client_id=" + lap["id"], 200,
                  token=admin)
    check(page["total"] == 1 and page["items"][0]["id"] == s["id"], "listed: %s" % page)
    redeem(got, areq, verifier, 401, field="oidc_code", what="(the code replayed)")

    areq, verifier = oidc_request()
    got = oidc_login(areq, owner["email"], pw, codes[2])
    redeem(got, areq, b64u(os.urandom(32)), 401, field="oidc_code", what="(another verifier)")
    redeem(got, areq, verifier, 401, field="oidc_code", what="(spent by the wrong verifier)")
    areq, verifier = oidc_request()
    got = oidc_login(areq, owner["email"], pw, codes[3])
    redeem(got, areq, verifier, 401, field="oidc_code", what="(another redirect URI)",
           redirect_uri="http://127.0.0.1:49153/callback")
    expect("POST", "/api/vpn-sessions/end", 204, {"session_token": s["session_token"]})
    check(not hub_lists(admin, hub, lap), "ended: not listed")

    log("the provider's second step with a passkey (a software authenticator, as the page's "
        "script does it)")
    pk = Passkey()
    _, body = register(owner_tok, pk, name="vpn")
    expect("POST", "/api/auth/passkeys", 201, body, token=owner_tok)
    areq, verifier = oidc_request()
    nofollow("GET", "/oauth2/authorize?" + urllib.parse.urlencode(areq))
    st, h, text = form("POST", "/oauth2/authorize", dict(areq, email=owner["email"], password=pw))
    m = re.search(r'name="mfa_token" value="([^"]+)"', text)
    csp = hdr(h, "Content-Security-Policy") or ""
    check(st == 200 and m and 'name="code"' in text and "Use a passkey" in text and
          '<script src="/oauth2/login.js"></script>' in text and "script-src 'self'" in csp and
          "unsafe-inline" not in csp.split("script-src")[1].split(";")[0],
          "TOTP and a passkey: both offered, the script a file (%d, %s)" % (st, csp))
    opts = expect("POST", "/api/auth/login/passkey/options", 200, {"mfa_token": m.group(1)})
    st, h, _ = form("POST", "/oauth2/authorize", dict(areq, mfa_token=m.group(1),
                                                      credential=json.dumps(pk.get(opts))))
    got = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(hdr(h, "Location") or "").query))
    check(st == 302 and got.get("state") == areq["state"] and "code" in got,
          "the passkey finished the step: %d" % st)
    s = redeem(got, areq, verifier, 201)
    expect("POST", "/api/vpn-sessions/end", 204, {"session_token": s["session_token"]})
    st, doc = call("GET", "/api/audit?event_type=oidc.authorized&limit=20", token=root)
    check(st == 200 and any('"second_factor":"passkey"' in (e["details"] or "")
                            for e in doc["items"]), "oidc.authorized names the passkey")

    log("an account without a second factor gets no code for a VPN session")
    areq, verifier = oidc_request()
    got = oidc_login(areq, plain["email"], pw, None)
    check(got.get("error") == "access_denied" and "second factor" in
          got.get("error_description", "") and "code" not in got, "denied: %s" % got)

    st, doc = call("GET", "/api/audit?event_type=oidc.token_refused&limit=50", token=root)
    reasons = [e["details"] or "" for e in doc.get("items", [])] if st == 200 else []
    for why in ("nonce differs", "unknown, used or expired", "code_verifier does not match",
                "redirect_uri differs"):
        check(any(why in r for r in reasons), "audited: %s (%s)" % (why, reasons[:4]))
    st, doc = call("GET", "/api/audit?event_type=vpn_session.opened&limit=20", token=root)
    check(st == 200 and any('"second":"oidc"' in (e["details"] or "") for e in doc["items"]),
          "the session's opening says it came through the provider")


def test_rate_limit(uniq):
    """Wrong passwords at POST /api/vpn-sessions count toward the per-address login limit
    (--login-ip-limit): from an address of their own, a 429 with Retry-After comes."""
    log("opening is rate-limited per address like a login")
    A.SOURCE[0] = "127.0.0.24"
    got = None
    for i in range(A.LOGIN_IP_LIMIT + 5):
        st, hdrs, _ = A.request("POST", "/api/vpn-sessions",
                                {"client": "laptop", "email": "flood-%s@vpn.test" % uniq,
                                 "password": "guess%d" % i, "code": "123456"})
        if st == 429:
            got = (i, hdrs)
            break
        check(st == 401, "a wrong password: 401, got %d" % st)
    check(got is not None and got[0] <= A.LOGIN_IP_LIMIT and
          any(k.lower() == "retry-after" for k in got[1]),
          "429 with Retry-After within %d attempts: %s" % (A.LOGIN_IP_LIMIT, got and got[0]))
    A.SOURCE[0] = "127.0.0.23"


def main():
    args = A.script_args()
    # An address of its own: the wrong passwords and codes here count toward its limit only.
    A.SOURCE[0] = "127.0.0.23"
    root = login(args.admin, args.password)
    root_id = expect("GET", "/api/auth/me", 200, token=root)["id"]
    uniq = "%d%d" % (os.getpid(), int(time.time()) % 100000)
    run(root, root_id, uniq)
    # The limit is srv_password_login's, the same on both engines (in memory, or Redis): proved
    # once, on SQLite, since forty password hashes cost this run about forty seconds.
    if args.db.startswith("sqlite:"):
        test_rate_limit(uniq)

    return A.secrets_kept(root, args.server_log, A.SECRETS, args.password)

if __name__ == "__main__":
    sys.exit(main())
