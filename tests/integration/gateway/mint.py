#!/usr/bin/python3
"""ID tokens for test_gateway.sh's negative login tests, made outside the server:

  mint.py MASTER_KEY_FILE JWKS_FILE ISSUER AUDIENCE KIND

KIND expired: signed with the provider's own key, but expired an hour ago; forged: the right
issuer, audience and key id, signed with another key. The provider's key is derived from the
server's master key as docs/GATEWAY.md says (HKDF-SHA-384, "secureguard-server oidc-es384 v1"),
and checked against its JWKS first (x, y and the RFC 7638 key id): an independent check of the
server's key derivation. Python's cryptography and jwt (Debian's, hence /usr/bin/python3).
"""
import base64
import hashlib
import json
import sys
import time

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

key_file, jwks_file, iss, aud, kind = sys.argv[1:6]
master = bytes.fromhex(open(key_file).read().strip())
jwk = json.load(open(jwks_file))["keys"][0]
N384 = int("ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf"
           "581a0db248b0a77aecec196accc52973", 16)


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


d = None
for i in range(16):
    label = b"secureguard-server oidc-es384 v1" + (b" #%d" % i if i else b"")
    k = int.from_bytes(HKDF(hashes.SHA384(), 48, None, label).derive(master), "big")
    if 0 < k < N384:
        d = k
        break
priv = ec.derive_private_key(d, ec.SECP384R1())
pub = priv.public_key().public_numbers()
x, y = b64u(pub.x.to_bytes(48, "big")), b64u(pub.y.to_bytes(48, "big"))
thumb = b64u(hashlib.sha256(json.dumps({"crv": "P-384", "kty": "EC", "x": x, "y": y},
                                       separators=(",", ":"), sort_keys=True).encode()).digest())
if (x, y, thumb) != (jwk["x"], jwk["y"], jwk["kid"]):
    sys.exit("mint: the key derived from the master key is not the JWKS's")
now = int(time.time())
claims = {"iss": iss, "sub": "mallory", "aud": aud, "email": "mallory@example.com",
          "iat": now, "exp": now + 600}
if kind == "expired":
    claims.update(iat=now - 7200, exp=now - 3600)
else:
    priv = ec.generate_private_key(ec.SECP384R1())
print(jwt.encode(claims, priv, algorithm="ES384", headers={"kid": thumb}))
