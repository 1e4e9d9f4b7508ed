#!/usr/bin/env python3
"""Writes the management server's OpenAPI 3 document: docs/openapi.json and the same text as a C
string in src/server/openapi.c (served at /api/openapi.json). Edit this file, run it from the
source root (python3 tests/server/gen_openapi.py), commit both outputs; test_server_api.sh checks
that the served document equals docs/openapi.json."""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def ref(name):
    return {"$ref": "#/components/schemas/" + name}


def obj(props, required=(), extra=False):
    o = {"type": "object", "properties": props, "additionalProperties": extra}
    if required:
        o["required"] = list(required)
    return o


S = {"type": "string"}
I = {"type": "integer", "format": "int64"}
B = {"type": "boolean"}
SL = {"type": "array", "items": S}
UUID = {"type": "string", "format": "uuid"}


def nullable(t):
    return dict(t, nullable=True)


def page(item):
    return obj({"items": {"type": "array", "items": ref(item)}, "total": I, "limit": I,
                "offset": I}, ["items", "total"])


SCHEMAS = {
    "Error": obj({"type": dict(S, enum=["about:blank"]),
                  "title": {"type": "string", "description": "the status's reason phrase"},
                  "status": I,
                  "detail": {"type": "string", "description": "what is wrong, for a human"},
                  "field": {"type": "string", "description": "the offending input field or "
                            "query parameter, when there is one"}},
                 ["type", "title", "status", "detail"]),
    "Login": obj({"email": S, "password": S}, ["email", "password"]),
    "Tokens": obj({"access_token": dict(S, description="HS384 JWT, short-lived"),
                   "token_type": dict(S, enum=["Bearer"]), "expires_in": I,
                   "refresh_token": dict(S, description="sgr_...; single use, rotates"),
                   "user": obj({"id": UUID, "email": S, "role": S})}),
    "Refresh": obj({"refresh_token": S}, ["refresh_token"]),
    "Logout": obj({"refresh_token": dict(S, description="revoke this login only; without it "
                                         "every refresh token of the user is revoked")}),
    "Challenge": obj({"challenge": dict(S, description="base64url of 32 random bytes, single "
                                        "use, valid 60 s"),
                      "server_public_key": dict(S, description="base64 X25519 key"),
                      "expires_in": I}),
    "ClientAuth": obj({
        "public_key": dict(S, description="the client's classic (X25519) public key, base64"),
        "challenge": S,
        "proof": dict(S, description="base64url(HMAC-SHA-384(X25519(client_priv, "
                      "server_public_key), \"secureguard client auth v1\" || challenge || "
                      "public_key || server_public_key))")},
        ["public_key", "challenge", "proof"]),
    "ClientSession": obj({"session_token": dict(S, description="sgs_..."), "token_type": S,
                          "expires_in": I, "client_id": UUID}),
    "Me": obj({"kind": dict(S, enum=["user", "api_key", "client"]), "id": UUID, "name": S,
               "role": S}),
    "User": obj({"id": UUID, "email": S, "role": dict(S, enum=["super_admin", "admin",
                                                                "viewer"]),
                 "enabled": B, "failed_logins": I, "locked_until": nullable(I),
                 "last_login": nullable(I), "created_at": I}),
    "UserCreate": obj({"email": S, "password": dict(S, minLength=12, maxLength=1024),
                       "role": dict(S, enum=["super_admin", "admin", "viewer"]),
                       "enabled": B}, ["email", "password", "role"]),
    "UserUpdate": obj({"email": S, "password": dict(S, minLength=12, maxLength=1024),
                       "role": dict(S, enum=["super_admin", "admin", "viewer"]),
                       "enabled": B, "unlock": dict(B, description="clear a lockout")}),
    "ApiKey": obj({"id": UUID, "user_id": UUID, "name": S, "prefix": S, "role": S,
                   "expires_at": nullable(I), "last_used": nullable(I), "revoked": B,
                   "created_at": I}),
    "ApiKeyCreate": obj({"name": S, "role": dict(S, description="at most the caller's role"),
                         "expires_in_days": nullable(dict(I, minimum=1, maximum=3650))},
                        ["name"]),
    "ApiKeyCreated": obj({"id": UUID, "name": S, "role": S, "prefix": S,
                          "key": dict(S, description="sgk_...; shown once"),
                          "expires_at": nullable(I)}),
    "Network": obj({"id": UUID, "name": S, "subnet4": nullable(S), "subnet6": nullable(S),
                    "dns_servers": SL, "fips_required": B, "mtu": nullable(I),
                    "created_at": I, "updated_at": I, "client_count": I}),
    "NetworkInput": obj({"name": dict(S, maxLength=64),
                         "subnet4": nullable(dict(S, description="IPv4 prefix, length 8-30")),
                         "subnet6": nullable(dict(S, description="IPv6 prefix, length 48-126")),
                         "dns_servers": dict(SL, maxItems=8), "fips_required": B,
                         "mtu": nullable(dict(I, minimum=1280, maximum=9000))}),
    "Peer": obj({"id": UUID, "name": S, "public_key_classic": nullable(S),
                 "public_key_fips": nullable(S), "assigned_ip4": nullable(S),
                 "assigned_ip6": nullable(S), "allowed_ips": SL, "is_relay": B,
                 "endpoint": nullable(S), "listen_port": nullable(I), "enabled": B,
                 "last_handshake": nullable(I)}),
    "Client": obj({"id": UUID, "network_id": UUID, "name": S, "description": S,
                   "public_key_classic": nullable(S), "public_key_fips": nullable(S),
                   "assigned_ip4": nullable(S), "assigned_ip6": nullable(S),
                   "allowed_ips": SL, "persistent_keepalive": I, "is_relay": B,
                   "endpoint": nullable(S), "listen_port": nullable(I), "enabled": B,
                   "temp_access_id": nullable(UUID), "expires_at": nullable(I),
                   "last_handshake": nullable(I), "created_at": I, "updated_at": I,
                   "server_generated_keys": B}),
    "ClientCreate": obj({"network_id": UUID, "name": dict(S, maxLength=64),
                         "description": dict(S, maxLength=256),
                         "public_key": nullable(dict(S, description="client-supplied X25519 "
                                                     "public key; then the config has no "
                                                     "private key")),
                         "public_key_fips": nullable(dict(S, description="client-supplied "
                                                          "P-384 public key (compressed)")),
                         "allowed_ips": SL, "persistent_keepalive": dict(I, minimum=0,
                                                                         maximum=65535),
                         "is_relay": B, "endpoint": nullable(dict(S, description="HOST:PORT; "
                                                                   "required for a relay")),
                         "listen_port": nullable(dict(I, minimum=1, maximum=65535)),
                         "enabled": B}, ["network_id", "name"]),
    "ClientUpdate": obj({"name": S, "description": S, "allowed_ips": SL,
                         "persistent_keepalive": I, "is_relay": B, "endpoint": nullable(S),
                         "listen_port": nullable(I), "enabled": B}),
    "RegenerateKeys": obj({"public_key": nullable(S), "public_key_fips": nullable(S)}),
    "TempAccess": obj({"id": UUID, "network_id": UUID, "created_by": nullable(UUID),
                       "name": nullable(S), "allowed_ips": SL, "expires_at": I,
                       "max_uses": I, "current_uses": I, "revoked": B, "created_at": I}),
    "TempAccessCreate": obj({"network_id": UUID,
                             "duration_seconds": dict(I, minimum=3600, maximum=604800,
                                                      default=3600),
                             "max_uses": dict(I, minimum=0, maximum=10000, default=1,
                                              description="0 = unlimited"),
                             "allowed_ips": SL, "name": nullable(S)}, ["network_id"]),
    "TempAccessCreated": {"allOf": [ref("TempAccess"), obj({
        "token": dict(S, description="sgt_...; shown once"), "url": S,
        "qr_png_base64": dict(S, description="PNG of a QR code of url")}, extra=True)]},
    "AuditEvent": obj({"id": I, "ts": dict(I, description="unix milliseconds"),
                       "event_type": S, "actor_id": nullable(S), "actor_type": nullable(S),
                       "actor_name": nullable(S), "resource_type": nullable(S),
                       "resource_id": nullable(S), "resource_name": nullable(S),
                       "action": nullable(S),
                       "details": nullable(dict(S, description="JSON text")),
                       "source_ip": nullable(S), "user_agent": nullable(S), "prev_hash": S,
                       "hash": S}),
    "Connection": obj({"id": I, "client_id": nullable(UUID), "ts": I, "event": S,
                       "source_ip": nullable(S), "source_port": nullable(I),
                       "crypto_mode": nullable(S), "bytes_sent": I, "bytes_received": I,
                       "packets_sent": I, "packets_received": I,
                       "session_duration_ms": nullable(I), "disconnect_reason": nullable(S)}),
    "ConnectionReport": obj({"client_id": dict(UUID, description="required unless a client "
                                               "session reports about itself"),
                             "event": dict(S, enum=["connect", "disconnect", "handshake"]),
                             "source_ip": nullable(S), "source_port": nullable(I),
                             "crypto_mode": nullable(dict(S, enum=["classic", "fips"])),
                             "bytes_sent": I, "bytes_received": I, "packets_sent": I,
                             "packets_received": I, "session_duration_ms": nullable(I),
                             "disconnect_reason": nullable(S)}, ["event"]),
    "Settings": obj({"instance_name": S, "admin_email": nullable(S), "fips_required": B,
                     "allow_classic_fallback": B, "created_at": I, "updated_at": I}),
    "SettingsUpdate": obj({"instance_name": S, "admin_email": nullable(S), "fips_required": B,
                           "allow_classic_fallback": B}),
    "Health": obj({"status": S, "version": S}),
}
for item in ("User", "ApiKey", "Network", "Peer", "Client", "TempAccess", "AuditEvent",
             "Connection"):
    SCHEMAS[item + "Page"] = page(item)


def body(schema, required=True):
    return {"required": required, "content": {"application/json": {"schema": ref(schema)}}}


def resp(code, schema=None, desc=None, ctype="application/json"):
    r = {"description": desc or "OK"}
    if schema:
        r["content"] = {ctype: {"schema": ref(schema) if isinstance(schema, str) else schema}}
    return code, r


ERR = {c: {"description": d, "content": {"application/problem+json": {"schema": ref("Error")}}}
       for c, d in (("400", "invalid input (the field is named)"),
                    ("401", "missing or bad credentials"),
                    ("403", "the caller's role may not do this"), ("404", "not found"),
                    ("409", "conflict"), ("413", "body larger than the limit (1 MiB; 8 KiB on routes open "
                                    "without credentials)"),
                    ("429", "too many failed attempts from this address"))}


def op(summary, role, responses, req=None, params=(), public=False, client_ok=False,
       user_only=False):
    o = {"summary": summary, "responses": dict(responses)}
    o["x-min-role"] = role
    for code in ("400", "413"):
        o["responses"].setdefault(code, ERR[code])
    if not public:
        o["responses"].setdefault("401", ERR["401"])
        o["responses"].setdefault("403", ERR["403"])
        sec = [{"bearerJwt": []}]
        if not user_only:
            sec.append({"apiKey": []})
        if client_ok:
            sec.append({"clientSession": []})
        o["security"] = sec
    else:
        o["security"] = []
    if req:
        o["requestBody"] = req
    if params:
        o["parameters"] = list(params)
    return o


def q(name, schema, desc):
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": desc}


ID = {"name": "id", "in": "path", "required": True, "schema": UUID}
PAGE = [q("limit", dict(I, minimum=1), "page size"), q("offset", dict(I, minimum=0), "rows "
                                                        "to skip")]
NF = ("404", ERR["404"])
CF = ("409", ERR["409"])
RL = ("429", ERR["429"])
NO = ("204", {"description": "done"})

PATHS = {
    "/api/health": {"get": op("Liveness", "none", [resp("200", "Health")], public=True)},
    "/metrics": {"get": op("Prometheus metrics: requests by route and status, latency "
                           "histograms", "none", [resp("200", S, ctype="text/plain")],
                           public=True)},
    "/api/openapi.json": {"get": op("This document", "none", [resp("200", {"type": "object"})],
                                    public=True)},
    "/api/auth/login": {"post": op("Log in; failures are rate-limited per address and lock "
                                   "the account after repeated failures", "none",
                                   [resp("200", "Tokens"), ("401", ERR["401"]), RL],
                                   body("Login"), public=True)},
    "/api/auth/refresh": {"post": op("Rotate a refresh token; reusing one revokes its whole "
                                     "family", "none", [resp("200", "Tokens"),
                                                        ("401", ERR["401"])],
                                     body("Refresh"), public=True)},
    "/api/auth/logout": {"post": op("Revoke refresh tokens", "viewer",
                                    [resp("200", obj({"revoked": B}))], body("Logout", False),
                                    user_only=True)},
    "/api/auth/client/challenge": {"post": op("Challenge for a client's key-possession proof",
                                              "none", [resp("200", "Challenge"), RL],
                                              public=True)},
    "/api/auth/client": {"post": op("Client session from a key-possession proof", "none",
                                    [resp("200", "ClientSession"), ("401", ERR["401"]), RL],
                                    body("ClientAuth"), public=True)},
    "/api/auth/me": {"get": op("Who the credentials belong to", "viewer", [resp("200", "Me")],
                               client_ok=True)},
    "/api/users": {
        "get": op("List admin users", "super_admin", [resp("200", "UserPage")]),
        "post": op("Create an admin user", "super_admin", [resp("201", "User"), CF],
                   body("UserCreate"))},
    "/api/users/{id}": {
        "parameters": [ID],
        "get": op("Get a user", "super_admin", [resp("200", "User"), NF]),
        "put": op("Change a user (partial)", "super_admin", [resp("200", "User"), NF, CF],
                  body("UserUpdate")),
        "delete": op("Delete a user", "super_admin", [NO, NF, CF])},
    "/api/api-keys": {
        "get": op("List API keys (own; every key for a super_admin)", "viewer",
                  [resp("200", "ApiKeyPage")], user_only=True),
        "post": op("Create an API key", "viewer", [resp("201", "ApiKeyCreated")],
                   body("ApiKeyCreate"), user_only=True)},
    "/api/api-keys/{id}": {"parameters": [ID], "delete": op("Revoke an API key", "viewer",
                                                            [NO, NF], user_only=True)},
    "/api/networks": {
        "get": op("List networks", "viewer", [resp("200", "NetworkPage")]),
        "post": op("Create a network (409: name taken, or classic while the instance allows "
                   "no classic network)", "admin", [resp("201", "Network"), CF],
                   body("NetworkInput"))},
    "/api/networks/{id}": {
        "parameters": [ID],
        "get": op("Get a network", "viewer", [resp("200", "Network"), NF]),
        "put": op("Change a network (partial; subnets only while it has no clients)", "admin",
                  [resp("200", "Network"), NF, CF], body("NetworkInput")),
        "delete": op("Delete a network with its clients", "admin", [NO, NF])},
    "/api/networks/{id}/peers": {"parameters": [ID], "get": op(
        "The network's clients as peers (hubs first)", "viewer", [resp("200", "PeerPage"),
                                                                   NF])},
    "/api/clients": {
        "get": op("List clients", "viewer", [resp("200", "ClientPage")], params=[
            q("network_id", UUID, "only this network"), q("name", S, "exact name"),
            q("enabled", B, "true or false")] + PAGE),
        "post": op("Create a client: addresses from the network's subnets, keys generated "
                   "unless supplied", "admin", [resp("201", "Client"), CF],
                   body("ClientCreate"))},
    "/api/clients/{id}": {
        "parameters": [ID],
        "get": op("Get a client", "viewer", [resp("200", "Client"), NF]),
        "put": op("Change a client (partial)", "admin", [resp("200", "Client"), NF],
                  body("ClientUpdate")),
        "delete": op("Delete a client", "admin", [NO, NF])},
    "/api/clients/{id}/config": {"parameters": [ID], "get": op(
        "The client's wg-quick config file, or a PNG QR code of it", "admin",
        [("200", {"description": "the config", "content": {
            "text/plain": {"schema": S}, "image/png": {"schema": dict(S, format="binary")}}}),
         NF, ("422", {"description": "format=qr: the config is longer than a QR code holds "
                      "(2953 bytes)", "content": {"application/problem+json": {"schema": ref(
                          "Error")}}})], params=[q("format", dict(S, enum=["conf", "qr"]), "conf (default) or qr")])},
    "/api/clients/{id}/regenerate-keys": {"parameters": [ID], "post": op(
        "New server-generated keys, or replace them with supplied public keys", "admin",
        [resp("200", "Client"), NF], body("RegenerateKeys", False))},
    "/api/temp-access": {
        "get": op("List temporary access grants", "viewer", [resp("200", "TempAccessPage")],
                  params=[q("network_id", UUID, "only this network")]),
        "post": op("Create a temporary access grant", "admin",
                   [resp("201", "TempAccessCreated")], body("TempAccessCreate"))},
    "/api/temp-access/{token}": {
        "parameters": [{"name": "token", "in": "path", "required": True, "schema": S,
                        "description": "sgt_ token (redeem, revoke) or grant id (revoke)"}],
        "get": op("Redeem: counts a use and returns a config with fresh keys", "none",
                  [("200", {"description": "config", "content": {"text/plain": {
                      "schema": S}}}), NF, ("410", {"description": "expired, revoked or "
                                                    "used up", "content": {"application/problem+json":
                                                                           {"schema": ref(
                                                                               "Error")}}}),
                   RL], public=True),
        "head": op("Check a link without redeeming it (link previewers): counts nothing",
                   "none", [("200", {"description": "valid"}), NF,
                            ("410", {"description": "expired, revoked or used up"}), RL],
                   public=True),
        "delete": op("Revoke a grant and delete its clients", "admin", [NO, NF])},
    "/api/audit": {"get": op("Audit events, newest first", "viewer",
                             [resp("200", "AuditEventPage")], params=[
                                 q("event_type", S, "e.g. client.created"),
                                 q("actor_id", S, "who"), q("resource_type", S, "on what"),
                                 q("since", I, "ts >= since (unix ms)"),
                                 q("until", I, "ts < until (unix ms)")] + PAGE)},
    "/api/audit/export": {"get": op(
        "The whole hash chain, streamed, in the formats of docs/AUDIT.md", "admin",
        [("200", {"description": "export", "content": {
            "application/json": {"schema": {"type": "array", "items": ref("AuditEvent")}},
            "text/csv": {"schema": S}}})],
        params=[q("format", dict(S, enum=["json", "csv"]), "json (default) or csv")])},
    "/api/connections": {
        "get": op("Connection log, newest first", "viewer", [resp("200", "ConnectionPage")],
                  params=[q("client_id", UUID, "only this client"),
                          q("since", I, "ts >= since (unix s)")] + PAGE),
        "post": op("Report a connection event (nodes)", "admin",
                   [resp("201", obj({"status": S, "client_id": UUID}))],
                   body("ConnectionReport"), client_ok=True)},
    "/api/settings": {
        "get": op("Instance settings", "viewer", [resp("200", "Settings")]),
        "put": op("Change settings (partial); 409 when allow_classic_fallback would be turned "
                  "off while classic networks exist", "super_admin",
                  [resp("200", "Settings"), CF], body("SettingsUpdate"))},
}

DOC = {
    "openapi": "3.0.3",
    "info": {"title": "SecureGuard management server API", "version": "1",
             "description": "See docs/SERVER.md. Every error is an RFC 9457 problem "
                            "document (application/problem+json). Unknown fields, wrong types and bad JSON "
                            "are 400; bodies over the limit 413; bodies nested deeper than 32 "
                            "levels or with more than 10000 values 400. Credentials are "
                            "checked before the body is read as JSON. x-min-role names the least "
                            "role a route needs (super_admin > admin > viewer)."},
    "servers": [{"url": "/"}],
    "components": {
        "securitySchemes": {
            "bearerJwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                          "description": "access token from /api/auth/login (HS384)"},
            "apiKey": {"type": "http", "scheme": "bearer",
                       "description": "API key sgk_... from /api/api-keys"},
            "clientSession": {"type": "http", "scheme": "bearer",
                              "description": "client session sgs_... from /api/auth/client"}},
        "schemas": SCHEMAS},
    "paths": PATHS,
}


def main():
    text = json.dumps(DOC, indent=2) + "\n"
    with open(os.path.join(ROOT, "docs", "openapi.json"), "w") as f:
        f.write(text)
    lines = ['/* The OpenAPI 3 document of the management server, served at /api/openapi.json.',
             ' * Generated by tests/server/gen_openapi.py with docs/openapi.json; do not edit. */',
             '#include "server/srv_int.h"', '', 'const char srv_openapi_json[] =']
    for line in text.splitlines(True):
        esc = line.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        lines.append('\t"%s"' % esc)
    lines[-1] += ";"
    with open(os.path.join(ROOT, "src", "server", "openapi.c"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
