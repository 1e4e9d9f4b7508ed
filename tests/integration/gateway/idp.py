#!/usr/bin/python3
"""A small OpenID Connect provider standing for an external one (Keycloak, Okta, Google) in
test_gateway.sh, beside the management server's own: discovery, JWKS (one P-384 key), the
authorization code flow with PKCE S256 (the user "alice@example.com" consents at once), the
token endpoint (single-use codes, verifier and redirect_uri checked), ES384 ID tokens.
Python's jwt and cryptography (Debian packages, hence /usr/bin/python3).

  idp.py ADDR PORT CLIENT_ID
  GET /mint?kind=good|forged|expired|aud   a token for the negative tests (not part of OIDC)
"""
import base64
import hashlib
import http.server
import json
import secrets
import socketserver
import sys
import time
import urllib.parse

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

ADDR, PORT, CLIENT = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ISS = "http://%s:%d" % (ADDR, PORT)
KEY = ec.generate_private_key(ec.SECP384R1())
OTHER = ec.generate_private_key(ec.SECP384R1())
CODES = {}


def b64(n):
    return base64.urlsafe_b64encode(n.to_bytes(48, "big")).rstrip(b"=").decode()


def id_token(nonce=None, key=KEY, aud=CLIENT, exp=600):
    now = int(time.time())
    claims = {"iss": ISS, "sub": "u-alice", "email": "alice@example.com", "aud": aud,
              "iat": now, "exp": now + exp}
    if nonce:
        claims["nonce"] = nonce
    return jwt.encode(claims, key, algorithm="ES384", headers={"kid": "k1"})


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status, obj=None, location=None):
        body = json.dumps(obj).encode() if obj is not None else b""
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        if u.path == "/.well-known/openid-configuration":
            return self.reply(200, {"issuer": ISS, "authorization_endpoint": ISS + "/authorize",
                                    "token_endpoint": ISS + "/token", "jwks_uri": ISS + "/jwks",
                                    "response_types_supported": ["code"],
                                    "id_token_signing_alg_values_supported": ["ES384"],
                                    "code_challenge_methods_supported": ["S256"]})
        if u.path == "/jwks":
            n = KEY.public_key().public_numbers()
            return self.reply(200, {"keys": [{"kty": "EC", "crv": "P-384", "kid": "k1",
                                              "use": "sig", "alg": "ES384",
                                              "x": b64(n.x), "y": b64(n.y)}]})
        if u.path == "/authorize":
            if (q.get("response_type") != "code" or q.get("client_id") != CLIENT or
                    q.get("code_challenge_method") != "S256" or "openid" not in q.get("scope", "")):
                return self.reply(400, {"error": "invalid_request"})
            code = secrets.token_urlsafe(24)
            CODES[code] = (q["code_challenge"], q.get("nonce"), q["redirect_uri"])
            sep = "&" if "?" in q["redirect_uri"] else "?"
            return self.reply(302, location=q["redirect_uri"] + sep + urllib.parse.urlencode(
                {"code": code, "state": q.get("state", "")}))
        if u.path == "/mint":
            kind = q.get("kind")
            tok = {"good": lambda: id_token(), "forged": lambda: id_token(key=OTHER),
                   "expired": lambda: id_token(exp=-3600),
                   "aud": lambda: id_token(aud="another-client")}[kind]()
            body = tok.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return self.wfile.write(body)
        self.reply(404, {"error": "not found"})

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        f = dict(urllib.parse.parse_qsl(self.rfile.read(n).decode()))
        if self.path != "/token" or f.get("grant_type") != "authorization_code":
            return self.reply(400, {"error": "unsupported_grant_type"})
        entry = CODES.pop(f.get("code", ""), None)  # single use
        if not entry or f.get("client_id") != CLIENT or f.get("redirect_uri") != entry[2]:
            return self.reply(400, {"error": "invalid_grant"})
        digest = hashlib.sha256(f.get("code_verifier", "").encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != entry[0]:
            return self.reply(400, {"error": "invalid_grant", "error_description": "PKCE"})
        self.reply(200, {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                         "expires_in": 600, "id_token": id_token(nonce=entry[1])})

    def log_message(self, *a):
        pass


class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


S((ADDR, PORT), H).serve_forever()
