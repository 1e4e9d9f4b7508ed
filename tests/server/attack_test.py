#!/usr/bin/env python3
"""The management server under attack (issue 20), over real HTTP (python3 stdlib only).

Run by tests/integration/test_server_attack.sh against a running server:

    attack_test.py --url http://127.0.0.1:PORT --db sqlite:/path/server.db|postgresql://... \
        --admin EMAIL --password PW --sg /path/to/secureguard --data-dir DIR \
        [--server-log FILE] [--phase main|dup-prepare|dup-check] [--state FILE]

Each test is an attack that succeeded before its fix. Requests can come from any loopback
address (127.0.0.0/8 is all local on Linux), so per-source behaviour is tested with real
source addresses. Exit status 0 = every check passed.
"""
import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from api_test import x25519  # noqa: E402  (RFC 7748 X25519, written for the API tests)

ARGS = None
FAILS = []
NOID = "00000000-0000-4000-8000-000000000000"
# Options of the server in tests/integration/test_server_attack.sh.
LOCKOUT = 5  # --lockout (default)
LOCKOUT_SECS = 6  # --lockout-secs (long enough that a loaded ASan run still sees the lock)
LOGIN_IP_LIMIT = 20  # --login-ip-limit (default)
LOGIN_IP_WINDOW = 300  # --login-ip-window (default)


def log(msg):
    print("[attack_test] %s" % msg, flush=True)


def check(cond, what):
    if not cond:
        FAILS.append(what)
        log("FAIL: " + what)
    return cond


# ---- HTTP from a chosen source address --------------------------------------------------------

def request(method, path, body=None, token=None, raw=None, headers=None, src="127.0.0.1"):
    """Returns (status, headers (lower-case names), bytes)."""
    host, port = ARGS.url.split("//", 1)[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60, source_address=(src, 0))
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    h = {"User-Agent": "sg-attack-test/1"}
    if data is not None:
        h["Content-Type"] = "application/json"
    if token:
        h["Authorization"] = "Bearer " + token
    h.update(headers or {})
    try:
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def call(method, path, body=None, token=None, **kw):
    st, hdrs, payload = request(method, path, body, token, **kw)
    try:
        doc = json.loads(payload) if payload else None
    except ValueError:
        doc = None
    return st, doc


def expect(method, path, status, body=None, token=None, field=None, what="", **kw):
    st, doc = call(method, path, body, token, **kw)
    ok = check(st == status, "%s %s %s: expected %d, got %d (%s)" % (method, path, what, status,
                                                                    st, doc))
    if ok and field is not None:
        check(isinstance(doc, dict) and doc.get("field") == field,
              "%s %s %s: error names field %r: %s" % (method, path, what, field, doc))
    return doc


def login(email, password, src="127.0.0.1"):
    st, doc = call("POST", "/api/auth/login", {"email": email, "password": password}, src=src)
    check(st == 200, "login %s from %s: %d %s" % (email, src, st, doc))
    return doc or {}


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


# ---- SQL from the outside, as someone with the database's credentials ------------------------

def sql(statement, fail_ok=False):
    """Runs one statement; returns rows, or the error text when fail_ok and it failed."""
    if ARGS.db.startswith("sqlite:"):
        con = sqlite3.connect(ARGS.db[len("sqlite:"):], timeout=30)
        try:
            cur = con.execute(statement)
            rows = cur.fetchall()
            con.commit()
            return rows
        except sqlite3.Error as e:
            if fail_ok:
                return "error: %s" % e
            raise
        finally:
            con.close()
    r = subprocess.run(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", ARGS.db, "-c",
                        statement], capture_output=True, text=True)
    if r.returncode:
        if fail_ok:
            return "error: %s" % r.stderr.strip()
        raise RuntimeError("psql: %s: %s" % (statement, r.stderr))
    return [tuple(line.split("|")) for line in r.stdout.splitlines() if line]


def sqlite():
    return ARGS.db.startswith("sqlite:")


def audit_verify():
    r = subprocess.run([ARGS.sg, "audit", "verify", "--db", ARGS.db], capture_output=True,
                       text=True)
    return r.returncode, (r.stdout + r.stderr).strip()


# ---- 3: the audit table is append-only on every SQL path -----------------------------------

def test_audit_append_only(root):
    log("3. audit_log: every SQL path that could change or remove a row is refused")
    expect("POST", "/api/networks", 201, {"name": "audit-%d" % os.getpid(),
                                          "subnet4": "10.31.0.0/24"}, token=root)
    dump = "SELECT id, ts, event_type, actor_name, details, prev_hash, hash FROM audit_log " \
           "ORDER BY id"
    before = sql(dump)
    check(len(before) >= 2, "audit rows to attack: %d" % len(before))
    last = int(before[-1][0])
    cols = "(id, ts, event_type, actor_name, prev_hash, hash)"
    fake = "1, 0, 'forged', 'mallory', '%s', '%s'" % ("0" * 96, "a" * 96)
    attacks = [
        "UPDATE audit_log SET actor_name = 'mallory' WHERE id = 1",
        "DELETE FROM audit_log WHERE id = 1",
        "DELETE FROM audit_log",
        "INSERT INTO audit_log %s VALUES (%d, 0, 'gap', 'x', '%s', '%s')" % (
            cols, last + 5, "0" * 96, "a" * 96),
        "INSERT INTO audit_log (ts, event_type, prev_hash, hash) VALUES (0, 'no id', '%s', "
        "'%s')" % ("0" * 96, "a" * 96),
        "INSERT INTO audit_log %s VALUES (%s) ON CONFLICT (id) DO UPDATE SET actor_name = "
        "'mallory'" % (cols, fake),
    ]
    if sqlite():
        attacks += [
            "INSERT OR REPLACE INTO audit_log %s VALUES (%s)" % (cols, fake),
            "REPLACE INTO audit_log %s VALUES (%s)" % (cols, fake),
            "INSERT OR REPLACE INTO audit_log SELECT * FROM audit_log WHERE id = 2",
            "UPDATE OR REPLACE audit_log SET id = 1 WHERE id = 2",
            "INSERT OR IGNORE INTO audit_log %s VALUES (%s)" % (cols, fake),
        ]
    else:
        attacks += [
            "TRUNCATE audit_log",
            "MERGE INTO audit_log a USING (SELECT 1 AS id) s ON a.id = s.id WHEN MATCHED THEN "
            "UPDATE SET actor_name = 'mallory'",
            "MERGE INTO audit_log a USING (SELECT 1 AS id) s ON a.id = s.id WHEN MATCHED THEN "
            "DELETE",
            "INSERT INTO audit_log %s VALUES (%s) ON CONFLICT DO NOTHING" % (cols, fake),
        ]
    for a in attacks:
        out = sql(a, fail_ok=True)
        check(isinstance(out, str) and "append-only" in out,
              "refused by the database: %s -> %s" % (a, out))
    after = sql(dump)
    check(after[:len(before)] == before, "no audit row changed or removed")
    check(len(after) == len(before), "no row added by the attacks: %d -> %d" % (len(before),
                                                                             len(after)))
    rc, out = audit_verify()
    check(rc == 0, "audit verify after the attacks: %s" % out)
    # The server still appends.
    expect("POST", "/api/networks", 201, {"name": "audit2-%d" % os.getpid(),
                                          "subnet4": "10.32.0.0/24"}, token=root)
    rc, out = audit_verify()
    check(rc == 0, "audit verify after a new append: %s" % out)


def test_audit_nul():
    """SQLite only (PostgreSQL text cannot hold NUL): bytes after a NUL went unchecked."""
    if not sqlite():
        return
    log("3. audit verify checks every byte: a NUL and bytes after it in a field are caught")
    path = ARGS.db[len("sqlite:"):]
    con = sqlite3.connect(path, timeout=30)
    try:
        trig = con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND "
                           "name = 'audit_log_no_update'").fetchone()
        # The owner of the file can drop the trigger; the chain must still tell.
        con.execute("DROP TRIGGER audit_log_no_update")
        row = con.execute("SELECT id, details FROM audit_log WHERE details IS NOT NULL "
                          "ORDER BY id LIMIT 1").fetchone()
        con.execute("UPDATE audit_log SET details = details || char(0) || '{\"evil\":1}' "
                    "WHERE id = ?", (row[0],))
        con.commit()
        rc, out = audit_verify()
        check(rc == 1 and ("row %d" % row[0]) in out and "NUL" in out,
              "audit verify names the row with bytes after a NUL: %d %s" % (rc, out))
        con.execute("UPDATE audit_log SET details = ? WHERE id = ?", (row[1], row[0]))
        con.execute(trig[1])
        con.commit()
    finally:
        con.close()
    rc, out = audit_verify()
    check(rc == 0, "intact again once the row is restored: %s" % out)


# ---- 5: public keys are unique in a network --------------------------------------------------

def test_unique_keys(root):
    log("5. public keys: unique in a network (the hub's too), classic and FIPS, 409 naming the "
        "field; in the schema too")
    pid = os.getpid()
    net = expect("POST", "/api/networks", 201, {"name": "keys-%d" % pid,
                                                "subnet4": "10.33.0.0/24",
                                                "fips_required": False}, token=root)
    other = expect("POST", "/api/networks", 201, {"name": "keys2-%d" % pid,
                                                  "subnet4": "10.34.0.0/24",
                                                  "fips_required": False}, token=root)
    fnet = expect("POST", "/api/networks", 201, {"name": "fkeys-%d" % pid,
                                                 "subnet4": "10.35.0.0/24",
                                                 "fips_required": True}, token=root)
    hub = expect("POST", "/api/clients", 201, {"network_id": net["id"], "name": "hub",
                                               "is_relay": True,
                                               "endpoint": "192.0.2.1:51820"}, token=root)
    c1 = expect("POST", "/api/clients", 201, {"network_id": net["id"], "name": "c1"},
                token=root)
    # The hub's key, and another client's key, refused in the same network.
    for victim in (hub, c1):
        expect("POST", "/api/clients", 409, {"network_id": net["id"], "name": "thief",
                                             "public_key": victim["public_key_classic"]},
               token=root, field="public_key", what="(key of %s)" % victim["name"])
    # The same key in another network is another peer of another hub: allowed.
    expect("POST", "/api/clients", 201, {"network_id": other["id"], "name": "twin",
                                         "public_key": c1["public_key_classic"]}, token=root)
    # Regenerating to a taken key is refused too; to its own current key is fine.
    expect("POST", "/api/clients/%s/regenerate-keys" % c1["id"], 409,
           {"public_key": hub["public_key_classic"]}, token=root, field="public_key")
    own = expect("POST", "/api/clients", 201, {"network_id": net["id"], "name": "own",
                                               "public_key": b64_x25519_pub()}, token=root)
    expect("POST", "/api/clients/%s/regenerate-keys" % own["id"], 200,
           {"public_key": own["public_key_classic"]}, token=root)
    # FIPS keys.
    fhub = expect("POST", "/api/clients", 201, {"network_id": fnet["id"], "name": "fhub",
                                                "is_relay": True, "endpoint": "hub:443"},
                  token=root)
    expect("POST", "/api/clients", 409, {"network_id": fnet["id"], "name": "fthief",
                                         "public_key_fips": fhub["public_key_fips"]},
           token=root, field="public_key_fips")
    fc = expect("POST", "/api/clients", 201, {"network_id": fnet["id"], "name": "fc"},
                token=root)
    expect("POST", "/api/clients/%s/regenerate-keys" % fc["id"], 409,
           {"public_key_fips": fhub["public_key_fips"]}, token=root, field="public_key_fips")
    # The hub config lists each peer once.
    st, hdrs, body = request("GET", "/api/clients/%s/config" % hub["id"], token=root)
    keys = [l for l in body.decode().splitlines() if l.startswith("PublicKey = ")]
    check(st == 200 and len(keys) == len(set(keys)) == 2, "hub config peers: %s" % keys)
    # The schema refuses a duplicate written around the API.
    out = sql("UPDATE clients SET public_key_classic = '%s' WHERE id = '%s'" %
              (hub["public_key_classic"], c1["id"]), fail_ok=True)
    check(isinstance(out, str) and "unique" in out.lower(),
          "the database refuses a duplicate key in a network: %s" % out)
    out = sql("UPDATE clients SET public_key_fips = '%s' WHERE id = '%s'" %
              (fhub["public_key_fips"], fc["id"]), fail_ok=True)
    check(isinstance(out, str) and "unique" in out.lower(),
          "the database refuses a duplicate FIPS key in a network: %s" % out)


def b64_x25519_pub():
    return base64.b64encode(x25519(os.urandom(32), (9).to_bytes(32, "little"))).decode()


# Duplicates already in a database from before the unique indexes (schema migration 4): made
# here around the API with the indexes dropped and the migration unrecorded, then the restarted
# server (test_server_attack.sh) must resolve them.
def dup_prepare(root):
    log("5. migration: duplicate keys written before the unique indexes existed")
    pid = os.getpid()
    net = expect("POST", "/api/networks", 201, {"name": "dup-%d" % pid,
                                                "subnet4": "10.36.0.0/24",
                                                "fips_required": False}, token=root)
    hub = expect("POST", "/api/clients", 201, {"network_id": net["id"], "name": "hub",
                                               "is_relay": True,
                                               "endpoint": "192.0.2.9:51820"}, token=root)
    a = expect("POST", "/api/clients", 201, {"network_id": net["id"], "name": "a"}, token=root)
    b = expect("POST", "/api/clients", 201, {"network_id": net["id"], "name": "b"}, token=root)
    sql("DROP INDEX clients_network_pub_classic")
    sql("DROP INDEX clients_network_pub_fips")
    if sqlite():
        sql("DROP TRIGGER audit_log_append_only")
    else:
        sql("DROP TRIGGER audit_log_append_only ON audit_log")
        sql("DROP FUNCTION sg_audit_log_next_id()")
    # Back to schema version 3: migration 5 undone too,
    sql("DROP TABLE login_failures")
    sql("DROP TABLE login_known")
    sql("ALTER TABLE admin_users DROP COLUMN token_gen")
    # ... migration 14 (the audit list's indexes)
    for i in ("idx_audit_event_id", "idx_audit_actor_id", "idx_audit_resource_id"):
        sql("DROP INDEX " + i)
    sql("CREATE INDEX idx_audit_event_ts ON audit_log(event_type, ts)")
    sql("CREATE INDEX idx_audit_actor_ts ON audit_log(actor_id, ts)")
    # ... migration 13 (passkeys)
    for t in ("webauthn_challenges", "passkeys"):
        sql("DROP TABLE %s" % t)
    # ... migration 12 (MFA-gated VPN sessions: its triggers before its columns)
    sql("DROP TABLE vpn_sessions")
    for t, tab in (("sync_networks_mfa", "networks"), ("sync_clients_owner", "clients")):
        sql("DROP TRIGGER %s%s" % (t, "" if sqlite() else " ON " + tab))
    sql("DROP INDEX idx_clients_owner")
    sql("ALTER TABLE clients DROP COLUMN owner_id")
    for col in ("mfa_required", "mfa_session_hours"):
        sql("ALTER TABLE networks DROP COLUMN " + col)
    # ... migrations 11 and 9 (services, the OpenID provider)
    for t in ("services", "oidc_codes", "oidc_sessions"):
        sql("DROP TABLE %s" % t)
    # ... migration 8 (second factor)
    sql("DROP TABLE mfa_tokens")
    sql("DROP TABLE recovery_codes")
    for col in ("totp_secret", "totp_pending", "totp_pending_at", "totp_last_step"):
        sql("ALTER TABLE admin_users DROP COLUMN " + col)
    sql("ALTER TABLE settings DROP COLUMN require_2fa")
    # ... migration 7 (folded name keys)
    sql("DROP INDEX idx_networks_name_key")
    sql("ALTER TABLE networks DROP COLUMN name_key")
    # ... and migration 6 (gateways).
    for t in ("targets", "resources", "sites"):
        sql("DROP TABLE %s" % t)
    sql("DROP TABLE gateways" + ("" if sqlite() else " CASCADE"))
    sql("DROP INDEX idx_enrollment_gateway")
    sql("ALTER TABLE enrollment_tokens DROP COLUMN gateway_id")
    sql("DELETE FROM schema_migrations WHERE version >= 4")
    # a takes the hub's key (older than a, but the hub keeps it anyway); b takes a's key.
    sql("UPDATE clients SET public_key_classic = '%s' WHERE id = '%s'" %
        (hub["public_key_classic"], a["id"]))
    sql("UPDATE clients SET public_key_classic = '%s', created_at = created_at - 100 "
        "WHERE id = '%s'" % (hub["public_key_classic"], b["id"]))
    with open(ARGS.state, "w") as f:
        json.dump({"net": net, "hub": hub, "a": a, "b": b}, f)


def dup_check(root):
    log("5. migration: the hub keeps its key, the others are disabled without it, audited")
    with open(ARGS.state) as f:
        st = json.load(f)
    hub = expect("GET", "/api/clients/" + st["hub"]["id"], 200, token=root)
    check(hub.get("public_key_classic") == st["hub"]["public_key_classic"] and hub["enabled"],
          "the hub keeps its key: %s" % hub)
    for n in ("a", "b"):
        c = expect("GET", "/api/clients/" + st[n]["id"], 200, token=root)
        check(c.get("public_key_classic") is None and c.get("enabled") is False,
              "duplicate %s lost the key and is disabled: %s" % (n, c))
    st2, doc = call("GET", "/api/audit?event_type=client.updated&limit=100",
                    token=root)
    mine = [e for e in (doc or {}).get("items", []) if e["actor_type"] == "system" and
            e["resource_id"] in (st["a"]["id"], st["b"]["id"])]
    check(len(mine) == 2, "both changes audited by the system: %s" % mine)
    st3, _, body = request("GET", "/api/clients/%s/config" % hub["id"], token=root)
    keys = [l for l in body.decode().splitlines() if l.startswith("PublicKey = ")]
    check(hub["public_key_classic"] not in " ".join(keys), "the hub no longer lists its own key")
    out = sql("UPDATE clients SET public_key_classic = '%s' WHERE id = '%s'" %
              (hub["public_key_classic"], st["a"]["id"]), fail_ok=True)
    check(isinstance(out, str) and "unique" in out.lower(), "unique index in place: %s" % out)
    # New keys, then enabled again.
    expect("POST", "/api/clients/%s/regenerate-keys" % st["a"]["id"], 200, token=root)
    expect("PUT", "/api/clients/" + st["a"]["id"], 200, {"enabled": True}, token=root)
    rc, out = audit_verify()
    check(rc == 0, "audit chain intact after the migration: %s" % out)
    if ARGS.server_log:
        with open(ARGS.server_log, errors="replace") as f:
            n = sum(1 for l in f if "event=duplicate_key_cleared" in l)
        check(n == 2, "two duplicate_key_cleared log lines: %d" % n)


# ---- 4: revocation reaches access tokens -----------------------------------------------------

def make_user(root, role, tag):
    email = "%s-%d@example.com" % (tag, os.getpid())
    pw = "pw-%s-%s" % (tag, b64u(os.urandom(9)))
    u = expect("POST", "/api/users", 201, {"email": email, "password": pw, "role": role},
               token=root)
    return (u or {}).get("id"), email, pw


def alive(tok):
    return call("GET", "/api/networks", token=tok)[0] == 200


def test_revocation(root):
    log("4. revocation reaches access tokens: logout, reuse, password, role, disable, delete")
    uid, email, pw = make_user(root, "admin", "rev")
    # Logout of one login ends its access token; another login of the user goes on.
    t, other = login(email, pw), login(email, pw)
    expect("POST", "/api/auth/logout", 200, {"refresh_token": t["refresh_token"]},
           token=t["access_token"])
    check(not alive(t["access_token"]), "access token dead after logout of its login")
    check(alive(other["access_token"]), "another login of the user is untouched")
    # Logout everywhere ends every access token of the user.
    t = login(email, pw)
    expect("POST", "/api/auth/logout", 200, token=t["access_token"])
    check(not alive(t["access_token"]) and not alive(other["access_token"]),
          "every access token dead after logout without a body")
    expect("POST", "/api/auth/refresh", 401, {"refresh_token": other["refresh_token"]})
    # A reused refresh token (theft) ends the access tokens of its whole login.
    t = login(email, pw)
    st, t2 = call("POST", "/api/auth/refresh", {"refresh_token": t["refresh_token"]})
    check(st == 200 and alive(t2["access_token"]), "refresh works")
    expect("POST", "/api/auth/refresh", 401, {"refresh_token": t["refresh_token"]})
    check(not alive(t["access_token"]) and not alive(t2["access_token"]),
          "access tokens of a login whose refresh token was reused are dead")
    # The report's case: an old token created a network after its user's password changed.
    t = login(email, pw)
    pw2 = pw + "-new"
    expect("PUT", "/api/users/" + uid, 200, {"password": pw2}, token=root)
    expect("POST", "/api/networks", 401, {"name": "after-pw-%d" % os.getpid(),
                                          "subnet4": "10.41.0.0/24"}, token=t["access_token"],
           what="(token from before a password change)")
    # A role change: old tokens end; a refresh brings a token with the new role.
    t = login(email, pw2)
    expect("PUT", "/api/users/" + uid, 200, {"role": "viewer"}, token=root)
    check(not alive(t["access_token"]), "access token dead after a role change")
    st, t2 = call("POST", "/api/auth/refresh", {"refresh_token": t["refresh_token"]})
    check(st == 200 and claims(t2["access_token"]).get("role") == "viewer" and
          alive(t2["access_token"]), "a refresh after a role change: %d %s" % (st, t2))
    expect("POST", "/api/networks", 403, {"name": "x", "subnet4": "10.42.0.0/24"},
           token=t2["access_token"])
    # Disabled then enabled again: the old tokens stay dead.
    t = login(email, pw2)
    expect("PUT", "/api/users/" + uid, 200, {"enabled": False}, token=root)
    expect("PUT", "/api/users/" + uid, 200, {"enabled": True}, token=root)
    check(not alive(t["access_token"]), "access token dead after disable and re-enable")
    expect("POST", "/api/auth/refresh", 401, {"refresh_token": t["refresh_token"]})
    # Deleted.
    t = login(email, pw2)
    expect("DELETE", "/api/users/" + uid, 204, token=root)
    check(not alive(t["access_token"]), "access token dead after the user is deleted")


# ---- 2: lockout per (account, source) -------------------------------------------------------

def failed_logins(root, uid):
    st, doc = call("GET", "/api/audit?event_type=user.failed_login&resource_type=user&limit=200",
                   token=root)
    return [e for e in (doc or {}).get("items", []) if e["resource_id"] == uid]


def test_lockout_per_source(root):
    log("2. lockout is per (account, source): the owner from a clean address keeps working; "
        "backoff doubles")
    uid, email, pw = make_user(root, "super_admin", "lock")
    bad = {"email": email, "password": "not the password"}
    for _ in range(LOCKOUT):
        expect("POST", "/api/auth/login", 401, bad, src="127.0.2.1")
    expect("POST", "/api/auth/login", 401, {"email": email, "password": pw}, src="127.0.2.1",
           what="(right password from the locked source)")
    t = login(email, pw, src="127.0.2.2")
    check(bool(t.get("access_token")), "the owner logs in from another address")
    ev = failed_logins(root, uid)
    locks = [json.loads(e["details"]) for e in ev if '"locked":true' in (e["details"] or "")]
    check(len(locks) == 1 and locks[0].get("lock_secs") == LOCKOUT_SECS and
          ev[0]["source_ip"] == "127.0.2.1", "the lock is audited with its length: %s" % ev[:2])
    # Wait out the lock (the user's locked_until says until when), fail again: twice as long.
    doc = expect("GET", "/api/users/" + uid, 200, token=root)
    until = (doc or {}).get("locked_until") or 0
    check(until >= int(time.time()), "locked_until shows the source's lock: %s" % doc)
    time.sleep(max(0, until - time.time()) + 1.1)
    for _ in range(LOCKOUT):
        expect("POST", "/api/auth/login", 401, bad, src="127.0.2.1")
    locks = [json.loads(e["details"]) for e in failed_logins(root, uid)
             if '"locked":true' in (e["details"] or "")]
    check([l.get("lock_secs") for l in locks] == [2 * LOCKOUT_SECS, LOCKOUT_SECS],
          "the second lock of the source lasts twice as long: %s" % locks)
    expect("POST", "/api/auth/login", 401, {"email": email, "password": pw}, src="127.0.2.1")
    # A super_admin unlocks every source of the account.
    expect("PUT", "/api/users/" + uid, 200, {"unlock": True}, token=root)
    login(email, pw, src="127.0.2.1")
    expect("DELETE", "/api/users/" + uid, 204, token=root)


# ---- 13: Retry-After, log lines under attack, strict JWTs ---------------------------------

def test_retry_after():
    log("13. every 429 carries Retry-After; refused attempts are counted, not logged each time")
    src = "127.0.3.1"
    seen = 0
    for i in range(LOGIN_IP_LIMIT + 25):
        st, hdrs, _ = request("POST", "/api/auth/login", {"email": "flood@example.com",
                                                         "password": "guess%d" % i}, src=src)
        if st == 429:
            seen += 1
            ra = hdrs.get("retry-after", "")
            check(ra.isdigit() and 1 <= int(ra) <= LOGIN_IP_WINDOW,
                  "login 429 with Retry-After in 1..%d: %r" % (LOGIN_IP_WINDOW, ra))
    check(seen >= 25, "429s after the per-address limit: %d" % seen)
    for method, path, body in (("POST", "/api/auth/client/challenge", {}),
                               ("POST", "/api/auth/client", {
                                   "public_key": b64_x25519_pub(), "challenge": b64u(b"x" * 32),
                                   "proof": b64u(b"y" * 48)}),
                               ("GET", "/api/temp-access/sgt_" + "A" * 43, None)):
        st, hdrs, _ = request(method, path, body, src=src)
        check(st == 429 and hdrs.get("retry-after", "").isdigit(),
              "%s %s: 429 with Retry-After: %d %s" % (method, path, st, hdrs.get("retry-after")))
    if ARGS.server_log:
        with open(ARGS.server_log, errors="replace") as f:
            n = sum(1 for l in f if "event=login_rate_limited" in l)
        check(1 <= n <= 3, "login_rate_limited logged %d times for %d refusals" % (n, seen))
    st, _, body = request("GET", "/metrics")
    count = [l for l in body.decode().splitlines()
             if l.startswith('secureguard_events_total{event="login_rate_limited"}')]
    check(count and int(count[0].split()[-1]) >= seen,
          "secureguard_events_total counts every refusal: %s" % count)


def hkdf384(ikm, info, n):
    prk = hmac.new(b"\0" * 48, ikm, hashlib.sha384).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha384).digest()[:n]


def jwt_key():
    with open(os.path.join(ARGS.data_dir, "master.key")) as f:
        master = bytes.fromhex(f.read().strip())
    return hkdf384(master, b"secureguard-server jwt-hs384 v1", 48)


def claims(tok):
    p = tok.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))


def forge(tok, **changes):
    """The token re-signed with the server's key after changing claims (None deletes one)."""
    h = tok.split(".")[0]
    c = claims(tok)
    for k, v in changes.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    p = b64u(json.dumps(c, separators=(",", ":"), sort_keys=True).encode())
    sig = hmac.new(jwt_key(), ("%s.%s" % (h, p)).encode(), hashlib.sha384).digest()
    return "%s.%s.%s" % (h, p, b64u(sig))


def test_jwt_strict():
    log("13. JWTs: base64url decoded strictly; iss, nbf, iat, gen and sid checked")
    tok = login(ARGS.admin, ARGS.password)["access_token"]
    check(alive(tok), "the fresh token works")
    sig = tok.split(".")[2]
    variants = {"'=' appended": tok + "=", "'==' appended": tok + "==",
                "'====' appended": tok + "====", "a '.' appended": tok + ".",
                "a NUL appended": tok + "%00"}
    for std, url in (("+", "-"), ("/", "_")):
        if url in sig:
            variants["%r for %r" % (std, url)] = tok[:-len(sig)] + sig.replace(url, std, 1)
    for what, v in variants.items():
        check(call("GET", "/api/networks", token=v)[0] == 401,
              "a signature with %s is refused" % what)
    now = int(time.time())
    check(alive(forge(tok)), "a token re-signed with the server's key works (control)")
    for what, v in (("iss of another issuer", forge(tok, iss="someone-else")),
                    ("no iss", forge(tok, iss=None)),
                    ("nbf an hour ahead", forge(tok, nbf=now + 3600)),
                    ("nbf not a number", forge(tok, nbf="0")),
                    ("iat an hour ahead", forge(tok, iat=now + 3600)),
                    ("exp passed", forge(tok, exp=now - 1)),
                    ("no gen", forge(tok, gen=None)),
                    ("an older gen", forge(tok, gen=claims(tok)["gen"] - 1)),
                    ("no sid", forge(tok, sid=None)),
                    ("the sid of no login", forge(tok, sid=NOID))):
        check(call("GET", "/api/networks", token=v)[0] == 401, "a token with %s is refused" %
              what)
    check(alive(forge(tok, nbf=now - 10)), "a token with a past nbf works")


# ---- 7: temporary access links never from the Host header -----------------------------------

def test_link_host(root):
    log("7. temporary access links: from --public-url or the address reached, never from Host")
    net = expect("POST", "/api/networks", 201, {"name": "link-%d" % os.getpid(),
                                                "subnet4": "10.43.0.0/24"}, token=root)
    port = ARGS.url.rsplit(":", 1)[1]
    for host in ("evil.example.com", "evil.example.com:443", None):
        hdrs = {"Host": host} if host else {"Host": ""}
        st, _, body = request("POST", "/api/temp-access", {"network_id": net["id"]},
                              token=root, headers=hdrs)
        url = json.loads(body).get("url", "") if st == 201 else ""
        want = ARGS.public_url or "http://127.0.0.1:%s" % port
        check(st == 201 and url.startswith(want + "/api/temp-access/sgt_"),
              "Host %r: link %r starts with %s" % (host, url, want))


# ---- the same class elsewhere: what else a flood could pile up ------------------------------

def test_login_queue():
    """A login brute force from many addresses piled up logins waiting for password hashing,
    each holding one of the request workers, until none was left for other requests; and a
    bound on that queue alone would let the brute force take every turn from the owner."""
    import threading
    n, srcs = 40, ["127.0.6.%d" % (1 + i) for i in range(8)]
    log("1. %d logins at once from %d addresses: those beyond the hashing queue get 429 at once, "
        "other requests and the owner's login (from an address it logged in from) go on" %
        (n, len(srcs)))
    tok = login(ARGS.admin, ARGS.password).get("access_token")
    barrier, res, others = threading.Barrier(n + 2), [], {}

    def worker(i):
        barrier.wait()
        st, hdrs, _ = request("POST", "/api/auth/login", {"email": "queue@example.com",
                                                        "password": "guess"},
                              src=srcs[i % len(srcs)])
        res.append((st, hdrs.get("retry-after")))

    def other():
        barrier.wait()
        time.sleep(0.05)
        others["networks"] = request("GET", "/api/networks", token=tok)[0]

    def owner():
        barrier.wait()
        time.sleep(0.05)
        others["owner"] = request("POST", "/api/auth/login", {"email": ARGS.admin,
                                                               "password": ARGS.password})[0]
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    threads += [threading.Thread(target=other), threading.Thread(target=owner)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(set(r[0] for r in res))
    busy = [r for r in res if r[0] == 429]
    check(set(codes) <= {401, 429} and busy and all(r[1] == "1" for r in busy),
          "answers %s, %d of them 429 with Retry-After: 1" % (codes, len(busy)))
    check(others.get("networks") == 200 and others.get("owner") == 200,
          "during the burst, a request and the owner's login from a known address: %s" % others)


def test_body_budget():
    """Bodies are read before authentication: with slots from the machine, anyone could make the
    server hold gigabytes of 1 MiB bodies. Run against --body-memory 4 MiB."""
    log("1. request bodies share one memory budget: beyond it 503 with Retry-After, small "
        "bodies go on")
    host, port = ARGS.url.split("//", 1)[1].rsplit(":", 1)
    held = []
    try:
        for i in range(4):
            c = socket.create_connection((host, int(port)), timeout=10,
                                         source_address=("127.0.7.%d" % (1 + i), 0))
            c.sendall(b"POST /api/networks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                      b"\r\nContent-Length: 1048576\r\n\r\n" + b" " * (1048576 - 1))
            held.append(c)
        time.sleep(0.5)  # the server has read what was sent
        st, hdrs, _ = request("POST", "/api/networks", raw=b" " * 200000 + b"{}")
        check(st == 503 and hdrs.get("retry-after") == "1",
              "a 200 kB body while the budget is held: 503 with Retry-After, got %d %s" %
              (st, hdrs.get("retry-after")))
        st, _, _ = request("POST", "/api/networks", raw=b"{}")
        check(st == 401, "a small body is still taken (anonymous: 401): %d" % st)
    finally:
        for c in held:
            c.close()
    deadline = time.time() + 10
    while time.time() < deadline:
        st, _, _ = request("POST", "/api/networks", raw=b" " * 200000 + b"{}")
        if st == 401:
            break
        time.sleep(0.2)
    check(st == 401, "the budget comes back when the bodies go: %d" % st)


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--admin", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--sg", required=True, help="the secureguard binary")
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--server-log")
    ap.add_argument("--phase", default="main")
    ap.add_argument("--state")
    ap.add_argument("--public-url")
    ARGS = ap.parse_args()

    root = login(ARGS.admin, ARGS.password).get("access_token")
    if ARGS.phase == "body-budget":
        test_body_budget()
    elif ARGS.phase == "dup-prepare":
        dup_prepare(root)
    elif ARGS.phase == "dup-check":
        dup_check(root)
        test_link_host(root)
    else:
        test_audit_append_only(root)
        test_audit_nul()
        test_unique_keys(root)
        test_revocation(root)
        test_lockout_per_source(root)
        test_retry_after()
        test_jwt_strict()
        test_link_host(root)
        test_login_queue()
    log("%s: %d failures" % (ARGS.phase, len(FAILS)))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
