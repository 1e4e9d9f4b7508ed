#!/usr/bin/env python3
"""API tests of passkeys (WebAuthn, issue 22, docs/SERVER.md "Passkeys") over real HTTP, with a
software authenticator written here (ECDSA P-256 and P-384 from python3-cryptography, CBOR
encoded by hand below): nothing of the server's own code makes the authenticator's answers.

Run by tests/integration/test_server_api.sh after gateways_api_test.py, on the same server
(started with --public-url https://sg.example.com: rpId sg.example.com) and with the same
SG_API_RECORD file (every response is checked against docs/openapi.json by validate.mjs):

    passkeys_api_test.py --url URL --db DB --admin EMAIL --password PW [--server-log FILE]

Covers: registration (ES256 with attestation none, ES384 with packed self-attestation), the
refusals of registration (replayed challenge, wrong origin, wrong rpId, an EdDSA key, a bad
self-attestation signature, a certificate chain, a credential registered twice), listing,
renaming, removing; the second step after a password (mfa_token) and a login without a password
(user verification required); a replayed challenge, wrong origin, wrong rpId, a signature with
one bit flipped, a signature counter going back, an unknown passkey, a passkey of another
account; require_2fa satisfied by a passkey; a super_admin removing a user's passkeys (which ends
the user's sessions); the per-address rate of login options; the per-(account, source) lockout
counting wrong assertions; every step in the audit log. Exit status 0 = every check passed.
"""
import argparse
import base64
import hashlib
import json
import os
import struct
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import api_test as A  # noqa: E402
from api_test import call, check, expect, log  # noqa: E402

RP_ID = "sg.example.com"
ORIGIN = "https://sg.example.com"


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64u_dec(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


# ---- CBOR (RFC 8949), the few types WebAuthn uses ----------------------------------------------

def cbor(v):
    def head(major, n):
        if n < 24:
            return bytes([major << 5 | n])
        for ai, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
            if n < 1 << (8 * struct.calcsize(fmt)):
                return bytes([major << 5 | ai]) + struct.pack(fmt, n)
        raise ValueError(n)
    if isinstance(v, bool):
        return b"\xf5" if v else b"\xf4"
    if isinstance(v, int):
        return head(0, v) if v >= 0 else head(1, -1 - v)
    if isinstance(v, bytes):
        return head(2, len(v)) + v
    if isinstance(v, str):
        e = v.encode()
        return head(3, len(e)) + e
    if isinstance(v, list):
        return head(4, len(v)) + b"".join(cbor(x) for x in v)
    if isinstance(v, dict):
        return head(5, len(v)) + b"".join(cbor(k) + cbor(x) for k, x in v.items())
    raise TypeError(v)


# ---- a software authenticator ------------------------------------------------------------------

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40


class Passkey:
    """One credential: its key pair, COSE algorithm, user handle and signature counter."""

    def __init__(self, alg=-7, counter=True):
        self.alg = alg
        self.curve = ec.SECP256R1() if alg == -7 else ec.SECP384R1()
        self.hash = hashes.SHA256() if alg == -7 else hashes.SHA384()
        self.key = ec.generate_private_key(self.curve)
        self.cred_id = os.urandom(32)
        self.count = 0
        self.counter = counter
        self.user_handle = None

    def cose(self, alg=None):
        n = self.key.public_key().public_numbers()
        size = 32 if self.alg == -7 else 48
        return cbor({1: 2, 3: alg or self.alg, -1: 1 if self.alg == -7 else 2,
                     -2: n.x.to_bytes(size, "big"), -3: n.y.to_bytes(size, "big")})

    def sign(self, data):
        return self.key.sign(data, ec.ECDSA(self.hash))

    def create(self, opts, origin=ORIGIN, rp_id=RP_ID, fmt="none", flags=UP | UV, cose=None,
               att_stmt=None):
        """navigator.credentials.create() as an authenticator answers it (JSON form)."""
        self.user_handle = b64u_dec(opts["user"]["id"])
        cd = json.dumps({"type": "webauthn.create", "challenge": opts["challenge"],
                         "origin": origin, "crossOrigin": False}).encode()
        ad = (hashlib.sha256(rp_id.encode()).digest() + bytes([flags | AT]) +
              struct.pack(">I", self.count) + bytes(16) + struct.pack(">H", len(self.cred_id)) +
              self.cred_id + (cose or self.cose()))
        if att_stmt is None:
            att_stmt = {}
            if fmt == "packed":
                att_stmt = {"alg": self.alg,
                            "sig": self.sign(ad + hashlib.sha256(cd).digest())}
        att = cbor({"fmt": fmt, "attStmt": att_stmt, "authData": ad})
        return {"id": b64u(self.cred_id), "rawId": b64u(self.cred_id), "type": "public-key",
                "response": {"clientDataJSON": b64u(cd), "attestationObject": b64u(att),
                             "transports": ["usb", "internal"]},
                "clientExtensionResults": {}}

    def get(self, opts, origin=ORIGIN, rp_id=RP_ID, flags=UP | UV, count=None, flip=False,
            handle=True):
        """navigator.credentials.get() as an authenticator answers it (JSON form)."""
        if count is None:
            if self.counter:
                self.count += 1
            count = self.count
        cd = json.dumps({"type": "webauthn.get", "challenge": opts["challenge"],
                         "origin": origin, "crossOrigin": False}).encode()
        ad = hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", count)
        sig = bytearray(self.sign(ad + hashlib.sha256(cd).digest()))
        if flip:
            sig[-1] ^= 1
        resp = {"clientDataJSON": b64u(cd), "authenticatorData": b64u(ad),
                "signature": b64u(bytes(sig))}
        if handle and self.user_handle:
            resp["userHandle"] = b64u(self.user_handle)
        return {"id": b64u(self.cred_id), "rawId": b64u(self.cred_id), "type": "public-key",
                "response": resp}


# ---- helpers -----------------------------------------------------------------------------------

def login(email, pw):
    st, doc = call("POST", "/api/auth/login", {"email": email, "password": pw})
    check(st == 200, "login %s: %d %s" % (email, st, doc))
    return doc


def register(tok, pk, name=None, **kw):
    opts = expect("POST", "/api/auth/passkeys/options", 200, {}, token=tok)
    body = {"credential": pk.create(opts, **kw)}
    if name:
        body["name"] = name
    return opts, body


def audit(root, event, n=200):
    doc = expect("GET", "/api/audit?event_type=%s&limit=%d" % (event, n), 200, token=root)
    for e in doc["items"]:
        d = e.get("details")
        e["details"] = json.loads(d) if isinstance(d, str) and d else (d or {})
    return doc["items"]


def test_registration(tok, uid, email):
    log("passkeys: registration options")
    opts = expect("POST", "/api/auth/passkeys/options", 200, {}, token=tok)
    check(opts["rp"]["id"] == RP_ID and len(b64u_dec(opts["challenge"])) == 32 and
          [p["alg"] for p in opts["pubKeyCredParams"]] == [-7, -35] and
          b64u_dec(opts["user"]["id"]) == uid.encode() and opts["user"]["name"] == email and
          opts["attestation"] == "none" and opts["excludeCredentials"] == [],
          "registration options: %s" % opts)

    log("passkeys: ES256 with attestation none")
    es256 = Passkey(-7)
    body = {"name": "Laptop", "credential": es256.create(opts)}
    pk1 = expect("POST", "/api/auth/passkeys", 201, body, token=tok)
    check(pk1["name"] == "Laptop" and pk1["algorithm"] == "ES256" and
          pk1["credential_id"] == b64u(es256.cred_id) and pk1["user_verified"] and
          pk1["last_used_at"] is None, "added: %s" % pk1)
    doc = expect("POST", "/api/auth/passkeys", 400, body, token=tok,
                 field="credential.response.clientDataJSON", what="(replayed challenge)")
    check("challenge" in doc["detail"], "replay refused for its challenge: %s" % doc["detail"])

    log("passkeys: registration refusals say what and where")
    other = Passkey(-7)
    _, body = register(tok, other, origin="https://evil.example.com")
    doc = expect("POST", "/api/auth/passkeys", 400, body, token=tok,
                 field="credential.response.clientDataJSON", what="(wrong origin)")
    check("origin" in doc["detail"] and "evil.example.com" in doc["detail"], doc["detail"])
    _, body = register(tok, other, rp_id="evil.example.com")
    doc = expect("POST", "/api/auth/passkeys", 400, body, token=tok,
                 field="credential.response.attestationObject", what="(wrong rpId)")
    check("rpIdHash" in doc["detail"], doc["detail"])
    ed = cbor({1: 1, 3: -8, -1: 6, -2: os.urandom(32)})
    _, body = register(tok, other, cose=ed)
    doc = expect("POST", "/api/auth/passkeys", 400, body, token=tok,
                 field="credential.response.attestationObject", what="(EdDSA)")
    check("-8" in doc["detail"] and "ES256" in doc["detail"], doc["detail"])
    _, body = register(tok, other, flags=0)
    doc = expect("POST", "/api/auth/passkeys", 400, body, token=tok, what="(no user presence)")
    check("UP" in doc["detail"], doc["detail"])
    _, body = register(tok, other, fmt="packed", att_stmt={"alg": -7, "sig": b"\x30\x06\x02\x01"
                                                           b"\x01\x02\x01\x01"})
    doc = expect("POST", "/api/auth/passkeys", 400, body, token=tok, what="(bad self-attestation)")
    check("self-attestation" in doc["detail"], doc["detail"])
    _, body = register(tok, other, fmt="packed", att_stmt={"alg": -7, "sig": b"x",
                                                           "x5c": [b"cert"]})
    doc = expect("POST", "/api/auth/passkeys", 400, body, token=tok, what="(x5c)")
    check("x5c" in doc["detail"], doc["detail"])
    _, body = register(tok, other, fmt="tpm", att_stmt={"ver": "2.0"})
    doc = expect("POST", "/api/auth/passkeys", 400, body, token=tok, what="(tpm)")
    check("tpm" in doc["detail"], doc["detail"])
    # Not CBOR at all, and a credential id that is not the authenticator data's.
    _, body = register(tok, other)
    body["credential"]["response"]["attestationObject"] = b64u(b"\x9f\x9f\x9f\xff")
    expect("POST", "/api/auth/passkeys", 400, body, token=tok,
           field="credential.response.attestationObject", what="(indefinite CBOR)")
    _, body = register(tok, other)
    body["credential"]["id"] = b64u(os.urandom(16))
    expect("POST", "/api/auth/passkeys", 400, body, token=tok, field="credential.id")
    expect("POST", "/api/auth/passkeys", 400, {"credential": {"id": "!", "type": "public-key",
                                                              "response": {}}}, token=tok)

    log("passkeys: ES384 with packed self-attestation; one credential registered once")
    es384 = Passkey(-35)
    _, body = register(tok, es384, name="Key 384", fmt="packed")
    pk2 = expect("POST", "/api/auth/passkeys", 201, body, token=tok)
    check(pk2["algorithm"] == "ES384", "ES384: %s" % pk2)
    opts, body = register(tok, es384)
    check({c["id"] for c in opts["excludeCredentials"]} ==
          {b64u(es256.cred_id), b64u(es384.cred_id)}, "excludeCredentials: %s" % opts)
    expect("POST", "/api/auth/passkeys", 409, body, token=tok, field="credential")

    page = expect("GET", "/api/auth/passkeys", 200, token=tok)
    check(page["total"] == 2 and {p["id"] for p in page["items"]} == {pk1["id"], pk2["id"]},
          "listed: %s" % page)
    ren = expect("PUT", "/api/auth/passkeys/" + pk1["id"], 200, {"name": "Laptop (office)"},
                 token=tok)
    check(ren["name"] == "Laptop (office)", "renamed: %s" % ren)
    expect("PUT", "/api/auth/passkeys/" + A.NOID, 404, {"name": "x"}, token=tok)
    expect("PUT", "/api/auth/passkeys/" + pk1["id"], 400, {"name": ""}, token=tok, field="name")
    return es256, es384, pk1, pk2


def mfa_login(email, pw, pk, **kw):
    doc = login(email, pw)
    check(doc.get("mfa_required") and "passkey" in doc.get("methods", []),
          "password step asks for a second factor with passkey among the methods: %s" % doc)
    opts = expect("POST", "/api/auth/login/passkey/options", 200,
                  {"mfa_token": doc["mfa_token"]})
    return doc["mfa_token"], opts


def test_second_step(email, pw, es256, es384, other_pk):
    log("passkeys: the second step after a password")
    doc = login(email, pw)
    check(doc.get("methods") == ["passkey"], "methods: %s" % doc)
    # A code cannot pass for an account whose second factor is a passkey.
    expect("POST", "/api/auth/login/mfa", 401, {"mfa_token": doc["mfa_token"], "code": "123456"},
           field="code")
    token, opts = mfa_login(email, pw, es256)
    check(opts["rpId"] == RP_ID and opts["userVerification"] == "preferred" and
          {c["id"] for c in opts["allowCredentials"]} == {b64u(es256.cred_id), b64u(es384.cred_id)}
          and opts["allowCredentials"][0].get("transports") == ["usb", "internal"],
          "request options: %s" % opts)
    body = {"mfa_token": token, "credential": es256.get(opts, flags=UP)}
    toks = expect("POST", "/api/auth/login/passkey", 200, body)
    check(toks.get("access_token") and toks.get("refresh_token"), "tokens: %s" % toks)
    A.SECRETS.extend([toks["access_token"], toks["refresh_token"]])
    me = expect("GET", "/api/auth/me", 200, token=toks["access_token"])
    check(me["name"] == email, "logged in as %s" % me)
    log("passkeys: a replayed assertion is refused")
    # Its challenge went with the first answer (the mfa_token too).
    doc = expect("POST", "/api/auth/login/passkey", 401, body,
                 field="credential.response.clientDataJSON", what="(replayed, with mfa_token)")
    check("challenge" in doc["detail"], doc["detail"])
    body.pop("mfa_token")
    doc = expect("POST", "/api/auth/login/passkey", 401, body,
                 field="credential.response.clientDataJSON", what="(replayed challenge)")
    check("challenge" in doc["detail"], doc["detail"])

    log("passkeys: wrong origin, wrong rpId, one bit flipped, counter going back")
    for kw, field, word in (({"origin": "https://evil.example.com"},
                             "credential.response.clientDataJSON", "origin"),
                            ({"rp_id": "evil.example.com"},
                             "credential.response.authenticatorData", "rpIdHash"),
                            ({"flip": True}, "credential.response.signature", "signature"),
                            ({"count": 1}, "credential.response.authenticatorData", "counter")):
        token, opts = mfa_login(email, pw, es256)
        doc = expect("POST", "/api/auth/login/passkey", 401,
                     {"mfa_token": token, "credential": es256.get(opts, **kw)}, field=field,
                     what="(%s)" % word)
        check(word in doc["detail"], "%s: %s" % (word, doc["detail"]))
        # The mfa_token survives a wrong answer (five end it), as with a wrong code.
        opts = expect("POST", "/api/auth/login/passkey/options", 200, {"mfa_token": token})
        toks = expect("POST", "/api/auth/login/passkey", 200,
                      {"mfa_token": token, "credential": es384.get(opts)})
    log("passkeys: another account's passkey, an unknown one, a challenge of another login")
    token, opts = mfa_login(email, pw, es256)
    expect("POST", "/api/auth/login/passkey", 401,
           {"mfa_token": token, "credential": other_pk.get(opts)}, what="(another account's)")
    stranger = Passkey(-7)
    opts = expect("POST", "/api/auth/login/passkey/options", 200, {"mfa_token": token})
    expect("POST", "/api/auth/login/passkey", 401,
           {"mfa_token": token, "credential": stranger.get(opts)}, what="(unknown passkey)")
    opts = expect("POST", "/api/auth/login/passkey/options", 200, {})
    expect("POST", "/api/auth/login/passkey", 401,
           {"mfa_token": token, "credential": es256.get(opts)}, what="(a passwordless challenge)")
    expect("POST", "/api/auth/login/passkey/options", 401, {"mfa_token": "sgm_" + "A" * 43},
           field="mfa_token")
    return toks


def test_passwordless(email, es256):
    log("passkeys: a login without a password (user verification required)")
    opts = expect("POST", "/api/auth/login/passkey/options", 200, {})
    check(opts["allowCredentials"] == [] and opts["userVerification"] == "required",
          "passwordless options: %s" % opts)
    doc = expect("POST", "/api/auth/login/passkey", 401,
                 {"credential": es256.get(opts, flags=UP)}, what="(no UV)")
    check("UV" in doc["detail"], doc["detail"])
    opts = expect("POST", "/api/auth/login/passkey/options", 200, {})
    toks = expect("POST", "/api/auth/login/passkey", 200,
                  {"credential": es256.get(opts), "refresh_cookie": True})
    check(toks["user"]["email"] == email and "refresh_token" not in toks,
          "passwordless login with the cookie: %s" % toks)
    opts = expect("POST", "/api/auth/login/passkey/options", 200, {})
    bad = es256.get(opts)
    bad["response"]["userHandle"] = b64u(A.NOID.encode())
    expect("POST", "/api/auth/login/passkey", 401, {"credential": bad},
           field="credential.response.userHandle")
    return toks


def test_require_2fa(root, uniq, pw):
    log("passkeys: require_2fa is satisfied by a passkey")
    sup_email = "super-%s@passkeys.test" % uniq
    sup = expect("POST", "/api/users", 201, {"email": sup_email, "password": pw,
                                             "role": "super_admin"}, token=root)
    stok = login(sup_email, pw)["access_token"]
    expect("PUT", "/api/settings", 409, {"require_2fa": True}, token=stok, field="require_2fa")
    spk = Passkey(-7)
    _, body = register(stok, spk)
    expect("POST", "/api/auth/passkeys", 201, body, token=stok)
    try:
        expect("PUT", "/api/settings", 200, {"require_2fa": True}, token=stok)
        new_email = "late-%s@passkeys.test" % uniq
        expect("POST", "/api/users", 201, {"email": new_email, "password": pw, "role": "viewer"},
               token=stok)
        ntok = login(new_email, pw)["access_token"]
        me = expect("GET", "/api/auth/me", 200, token=ntok)
        check(me["needs_2fa"], "a user without a second factor must set one up: %s" % me)
        expect("GET", "/api/networks", 403, token=ntok)
        npk = Passkey(-35)
        _, body = register(ntok, npk)
        expect("POST", "/api/auth/passkeys", 201, body, token=ntok)
        me = expect("GET", "/api/auth/me", 200, token=ntok)
        check(not me["needs_2fa"], "a passkey is the second factor: %s" % me)
        expect("GET", "/api/networks", 200, token=ntok)
    finally:
        # The rest of the suite (and the root account, without a second factor) needs it off.
        expect("PUT", "/api/settings", 200, {"require_2fa": False}, token=stok)
    return sup, stok


def test_reset(root, stok, uid, email, pw, user_tok):
    log("passkeys: a super_admin removes a user's passkeys; the user's sessions end")
    expect("DELETE", "/api/users/%s/passkeys" % uid, 403, token=user_tok)
    expect("DELETE", "/api/users/%s/passkeys" % A.NOID, 404, token=stok)
    me = expect("GET", "/api/auth/me", 200, token=stok)
    expect("DELETE", "/api/users/%s/passkeys" % me["id"], 409, token=stok)
    expect("DELETE", "/api/users/%s/passkeys" % uid, 204, token=stok)
    expect("GET", "/api/auth/me", 401, token=user_tok)
    expect("DELETE", "/api/users/%s/passkeys" % uid, 409, token=stok)
    doc = login(email, pw)
    check("access_token" in doc, "without passkeys, the password alone logs in: %s" % doc)
    return doc["access_token"]


def test_delete(tok):
    log("passkeys: removing one's own")
    pk = Passkey(-7)
    _, body = register(tok, pk, name="Spare")
    spare = expect("POST", "/api/auth/passkeys", 201, body, token=tok)
    expect("DELETE", "/api/auth/passkeys/" + spare["id"], 204, token=tok)
    expect("DELETE", "/api/auth/passkeys/" + spare["id"], 404, token=tok)
    opts = expect("POST", "/api/auth/login/passkey/options", 200, {})
    expect("POST", "/api/auth/login/passkey", 401, {"credential": pk.get(opts)},
           what="(a removed passkey)")


def test_limits(email, pk):
    log("passkeys: login options are rate-limited per address; wrong answers lock the source")
    A.SOURCE[0] = "127.0.0.41"
    try:
        statuses = []
        for _ in range(40):
            st, _, _ = A.request("POST", "/api/auth/login/passkey/options", {})
            statuses.append(st)
            if st == 429:
                break
        check(statuses[-1] == 429 and statuses.count(200) >= 5,
              "options rate-limited: %s" % statuses)
    finally:
        A.SOURCE[0] = None
    # Five wrong assertions from one source lock it out of the account (--lockout 5): the
    # right one is then refused from there, and taken from another address.
    A.SOURCE[0] = "127.0.0.42"
    try:
        for _ in range(5):
            opts = expect("POST", "/api/auth/login/passkey/options", 200, {})
            expect("POST", "/api/auth/login/passkey", 401, {"credential": pk.get(opts, flip=True)})
        opts = expect("POST", "/api/auth/login/passkey/options", 200, {})
        doc = expect("POST", "/api/auth/login/passkey", 401, {"credential": pk.get(opts)},
                     what="(source locked)")
        check("cannot log in" in doc["detail"], doc["detail"])
    finally:
        A.SOURCE[0] = None
    A.SOURCE[0] = "127.0.0.43"
    try:
        opts = expect("POST", "/api/auth/login/passkey/options", 200, {})
        expect("POST", "/api/auth/login/passkey", 200, {"credential": pk.get(opts)},
               what="(another source)")
    finally:
        A.SOURCE[0] = None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--admin", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--server-log")
    args = ap.parse_args()
    A.ARGS = args
    root = login(args.admin, args.password)["access_token"]
    uniq = base64.b32encode(os.urandom(5)).decode().lower()
    pw = "passkeys-" + uniq + "-password"
    email = "admin-%s@passkeys.test" % uniq
    user = expect("POST", "/api/users", 201, {"email": email, "password": pw, "role": "admin"},
                  token=root)
    tok = login(email, pw)["access_token"]
    # Another account with a passkey of its own.
    oemail = "other-%s@passkeys.test" % uniq
    expect("POST", "/api/users", 201, {"email": oemail, "password": pw, "role": "viewer"},
           token=root)
    otok = login(oemail, pw)["access_token"]
    other_pk = Passkey(-7)
    _, body = register(otok, other_pk)
    expect("POST", "/api/auth/passkeys", 201, body, token=otok)

    es256, es384, pk1, pk2 = test_registration(tok, user["id"], email)
    users = expect("GET", "/api/users?limit=500", 200, token=root)["items"]
    check(next(u for u in users if u["id"] == user["id"])["passkeys"] == 2,
          "GET /api/users counts passkeys")
    toks = test_second_step(email, pw, es256, es384, other_pk)
    test_passwordless(email, es256)
    sup, stok = test_require_2fa(root, uniq, pw)
    test_limits(email, es384)
    test_delete(otok)
    tok = test_reset(root, stok, user["id"], email, pw, toks["access_token"])

    log("passkeys: every step audited")
    for ev in ("user.passkey_registration_started", "user.passkey_added",
               "user.passkey_refused", "user.passkey_renamed", "user.passkey_removed",
               "user.passkeys_reset", "user.passkey_counter_regressed"):
        check(audit(root, ev), "audited: %s" % ev)
    logins = audit(root, "user.login", 1000)
    check(any((e.get("details") or {}).get("second_factor") == "passkey" for e in logins) and
          any((e.get("details") or {}).get("method") == "passkey" for e in logins),
          "user.login says passkey (second factor and without a password)")
    fails = audit(root, "user.failed_login", 1000)
    reasons = {(e.get("details") or {}).get("reason") for e in fails}
    for r in ("bad_passkey", "unknown_passkey", "passkey_counter", "locked"):
        check(r in reasons, "failed logins audited with reason %s: %s" % (r, reasons))
    added = audit(root, "user.passkey_added")
    check(any((e.get("details") or {}).get("attestation") == "packed" for e in added),
          "the attestation format is audited")

    # Secrets in no audit row and no log line.
    return A.secrets_kept(root, args.server_log, A.SECRETS, args.password)


if __name__ == "__main__":
    sys.exit(main())
