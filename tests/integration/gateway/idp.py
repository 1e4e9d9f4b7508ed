#!/usr/bin/python3
"""A small OpenID Connect provider standing for an external one (Keycloak, Okta, Google) in
test_gateway.sh (ES384, beside the management server's own) and test_gateway_rules.sh (RS256,
as Keycloak, Okta and Google sign by default): discovery, JWKS, the authorization code flow
with PKCE S256 (the user "alice@example.com" consents at once), the token endpoint (single-use
codes, verifier and redirect_uri checked), ID tokens signed with ALG. With RS256 the JWKS also
holds an RSA key for encryption ("use": "enc"), as Keycloak's does: never one to verify with.
Python's jwt and cryptography (Debian packages, hence /usr/bin/python3).

  idp.py ADDR PORT CLIENT_ID [ES384|RS256]
  GET /mint?kind=KIND   a token for the negative tests (not part of OIDC): good, forged (the
                        right kid, another key), expired, aud (another client), iss (another
                        issuer), enc (signed with the encryption key, its kid), hs256 (HMAC
                        with the public key as the secret: algorithm confusion), none (unsigned)
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

import hmac

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ADDR, PORT, CLIENT = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ALG = sys.argv[4] if len(sys.argv) > 4 else "ES384"
ISS = "http://%s:%d" % (ADDR, PORT)
if ALG == "RS256":
    def new_key():
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
elif ALG == "ES384":
    def new_key():
        return ec.generate_private_key(ec.SECP384R1())
else:
    sys.exit("idp.py: ALG must be ES384 or RS256, not " + ALG)
KEY, OTHER, ENC = new_key(), new_key(), new_key()
CODES = {}


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64(n, size=None):
    return b64u(n.to_bytes(size or (n.bit_length() + 7) // 8, "big"))


def jwk(key, kid, use):
    n = key.public_key().public_numbers()
    if ALG == "RS256":
        return {"kty": "RSA", "kid": kid, "use": use, "alg": "RS256" if use == "sig" else
                "RSA-OAEP", "n": b64(n.n), "e": b64(n.e)}
    return {"kty": "EC", "crv": "P-384", "kid": kid, "use": use, "alg": "ES384",
            "x": b64(n.x, 48), "y": b64(n.y, 48)}


def unsigned(header, claims):
    """The signing input of a JWS compact serialization (RFC 7515 section 5.1)."""
    return "%s.%s" % (b64u(json.dumps(header).encode()), b64u(json.dumps(claims).encode()))


def id_token(nonce=None, key=KEY, aud=CLIENT, exp=600, iss=ISS, kid="k1", alg=ALG):
    now = int(time.time())
    claims = {"iss": iss, "sub": "u-alice", "email": "alice@example.com", "aud": aud,
              "iat": now, "exp": now + exp}
    if nonce:
        claims["nonce"] = nonce
    if alg == "none":
        return unsigned({"alg": "none", "kid": kid}, claims) + "."
    if alg == "HS256":
        # The attack on libraries that take the JWK's alg from the token: the verifier's
        # public key (PEM, as such libraries hold it) used as an HMAC secret.
        pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
        si = unsigned({"alg": "HS256", "typ": "JWT", "kid": kid}, claims)
        return si + "." + b64u(hmac.new(pem, si.encode(), hashlib.sha256).digest())
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


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
                                    "id_token_signing_alg_values_supported": [ALG],
                                    "code_challenge_methods_supported": ["S256"]})
        if u.path == "/jwks":
            keys = [jwk(KEY, "k1", "sig")]
            if ALG == "RS256":
                keys.append(jwk(ENC, "enc1", "enc"))
            return self.reply(200, {"keys": keys})
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
                   "aud": lambda: id_token(aud="another-client"),
                   "iss": lambda: id_token(iss=ISS + "/other"),
                   "enc": lambda: id_token(key=ENC, kid="enc1"),
                   "hs256": lambda: id_token(alg="HS256"),
                   "none": lambda: id_token(alg="none")}[kind]()
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
