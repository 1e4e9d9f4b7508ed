/* Schema migrations (the management server contract, "Schema").
 *
 * One schema on both engines with portable types only: ids TEXT (UUIDv4), timestamps BIGINT unix
 * seconds (audit_log.ts: milliseconds), booleans INTEGER 0/1, JSON and lists TEXT. Only the
 * autoincrement columns (the @SERIAL@ token below) and the triggers differ per engine.
 *
 * Each migration runs in one transaction together with its schema_migrations row, so a crash
 * leaves either all of it or none. Servers starting at once are serialized: a session-level
 * pg_advisory_lock on PostgreSQL; BEGIN IMMEDIATE (the database write lock, waited for through
 * busy_timeout) on SQLite. Versions already recorded are skipped, so opening is idempotent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "secureguard/sg_errors.h"
#include "server/audit.h"
#include "server/db_int.h"
#include "server/srv_int.h"

#define ENG_SQLITE (1u << SG_DB_SQLITE)
#define ENG_PG	   (1u << SG_DB_POSTGRES)
#define ENG_ALL	   (ENG_SQLITE | ENG_PG)

struct mstmt {
	unsigned engines;
	const char *sql;
	int now_param; /* 1: $1 is bound to the current unix time */
};

struct migration {
	int version;
	const struct mstmt *stmts;
	size_t n;
	/* Runs in the migration's transaction before its statements (data fixes the new
	 * constraints need); NULL for none. Message in err on failure. */
	int (*pre)(struct sg_db_conn *c, char *err, size_t errlen);
};

static const struct mstmt m1[] = {
    {ENG_ALL,
     "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
     "applied_at BIGINT NOT NULL)",
     0},
    {ENG_ALL,
     "CREATE TABLE settings (id INTEGER PRIMARY KEY CHECK (id = 1), "
     "instance_name TEXT NOT NULL, admin_email TEXT, "
     "fips_required INTEGER NOT NULL DEFAULT 1, "
     "allow_classic_fallback INTEGER NOT NULL DEFAULT 1, "
     "settings TEXT NOT NULL DEFAULT '{}', created_at BIGINT NOT NULL, "
     "updated_at BIGINT NOT NULL)",
     0},
    {ENG_ALL,
     "INSERT INTO settings (id, instance_name, created_at, updated_at) "
     "VALUES (1, 'SecureGuard', $1, $1)",
     1},
    {ENG_ALL,
     "CREATE TABLE networks (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, "
     "subnet4 TEXT, subnet6 TEXT, dns_servers TEXT NOT NULL DEFAULT '', "
     "fips_required INTEGER NOT NULL DEFAULT 1, mtu INTEGER, "
     "created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)",
     0},
    {ENG_ALL,
     "CREATE TABLE admin_users (id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, "
     "password_hash TEXT NOT NULL, role TEXT NOT NULL "
     "CHECK (role IN ('super_admin','admin','viewer')), "
     "enabled INTEGER NOT NULL DEFAULT 1, failed_logins INTEGER NOT NULL DEFAULT 0, "
     "locked_until BIGINT, last_login BIGINT, created_at BIGINT NOT NULL)",
     0},
    {ENG_ALL,
     "CREATE TABLE temp_access (id TEXT PRIMARY KEY, "
     "token_hash TEXT NOT NULL UNIQUE, "
     "network_id TEXT NOT NULL REFERENCES networks(id) ON DELETE CASCADE, "
     "created_by TEXT REFERENCES admin_users(id) ON DELETE SET NULL, name TEXT, "
     "allowed_ips TEXT NOT NULL DEFAULT '', expires_at BIGINT NOT NULL, "
     "max_uses INTEGER NOT NULL DEFAULT 1, " /* 0 = unlimited */
     "current_uses INTEGER NOT NULL DEFAULT 0, revoked INTEGER NOT NULL DEFAULT 0, "
     "created_at BIGINT NOT NULL)",
     0},
    {ENG_ALL,
     "CREATE TABLE clients (id TEXT PRIMARY KEY, "
     "network_id TEXT NOT NULL REFERENCES networks(id) ON DELETE CASCADE, "
     "name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '', "
     "public_key_classic TEXT, public_key_fips TEXT, private_key_classic_enc TEXT, "
     "private_key_fips_enc TEXT, assigned_ip4 TEXT, assigned_ip6 TEXT, "
     "allowed_ips TEXT NOT NULL DEFAULT '', "
     "persistent_keepalive INTEGER NOT NULL DEFAULT 25, "
     "is_relay INTEGER NOT NULL DEFAULT 0, endpoint TEXT, listen_port INTEGER, "
     "enabled INTEGER NOT NULL DEFAULT 1, "
     "temp_access_id TEXT REFERENCES temp_access(id) ON DELETE CASCADE, "
     "expires_at BIGINT, last_handshake BIGINT, created_at BIGINT NOT NULL, "
     "updated_at BIGINT NOT NULL, UNIQUE (network_id, assigned_ip4), "
     "UNIQUE (network_id, assigned_ip6))",
     0},
    {ENG_ALL,
     "CREATE TABLE refresh_tokens (id TEXT PRIMARY KEY, "
     "user_id TEXT NOT NULL REFERENCES admin_users(id) ON DELETE CASCADE, "
     "family_id TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE, "
     "expires_at BIGINT NOT NULL, used_at BIGINT, revoked INTEGER NOT NULL DEFAULT 0, "
     "created_at BIGINT NOT NULL)",
     0},
    {ENG_ALL,
     "CREATE TABLE api_keys (id TEXT PRIMARY KEY, "
     "user_id TEXT NOT NULL REFERENCES admin_users(id) ON DELETE CASCADE, "
     "name TEXT NOT NULL, prefix TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE, "
     "role TEXT NOT NULL, expires_at BIGINT, last_used BIGINT, "
     "revoked INTEGER NOT NULL DEFAULT 0, created_at BIGINT NOT NULL)",
     0},
    {ENG_ALL,
     "CREATE TABLE client_sessions (id TEXT PRIMARY KEY, "
     "client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE, "
     "token_hash TEXT NOT NULL UNIQUE, expires_at BIGINT NOT NULL, "
     "created_at BIGINT NOT NULL)",
     0},
    {ENG_ALL,
     "CREATE TABLE audit_log (id @SERIAL@, ts BIGINT NOT NULL, "
     "event_type TEXT NOT NULL, actor_id TEXT, actor_type TEXT, actor_name TEXT, "
     "resource_type TEXT, resource_id TEXT, resource_name TEXT, action TEXT, "
     "details TEXT, source_ip TEXT, user_agent TEXT, prev_hash TEXT NOT NULL, "
     "hash TEXT NOT NULL)",
     0},
    {ENG_ALL,
     "CREATE TABLE connection_log (id @SERIAL@, "
     "client_id TEXT REFERENCES clients(id) ON DELETE SET NULL, ts BIGINT NOT NULL, "
     "event TEXT NOT NULL, source_ip TEXT, source_port INTEGER, crypto_mode TEXT, "
     "bytes_sent BIGINT NOT NULL DEFAULT 0, bytes_received BIGINT NOT NULL DEFAULT 0, "
     "packets_sent BIGINT NOT NULL DEFAULT 0, "
     "packets_received BIGINT NOT NULL DEFAULT 0, session_duration_ms BIGINT, "
     "disconnect_reason TEXT)",
     0},
    {ENG_ALL, "CREATE INDEX idx_clients_network ON clients(network_id)", 0},
    {ENG_ALL, "CREATE INDEX idx_audit_ts ON audit_log(ts)", 0},
    {ENG_ALL, "CREATE INDEX idx_audit_event_ts ON audit_log(event_type, ts)", 0},
    {ENG_ALL, "CREATE INDEX idx_audit_actor_ts ON audit_log(actor_id, ts)", 0},
    {ENG_ALL, "CREATE INDEX idx_connlog_client_ts ON connection_log(client_id, ts)", 0},
    {ENG_ALL, "CREATE INDEX idx_connlog_ts ON connection_log(ts)", 0},
    {ENG_ALL, "CREATE INDEX idx_temp_access_expires ON temp_access(expires_at)", 0},
    /* audit_log is append-only. A database superuser (or the owner) can still drop these
     * triggers, which is why every row is also hash-chained (audit.c, docs/AUDIT.md). */
    {ENG_SQLITE,
     "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
     "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused'); END",
     0},
    {ENG_SQLITE,
     "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
     "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused'); END",
     0},
    {ENG_PG,
     "CREATE FUNCTION sg_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
     "$fn$ BEGIN RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP "
     "USING ERRCODE = 'insufficient_privilege'; END $fn$",
     0},
    {ENG_PG,
     "CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log "
     "FOR EACH ROW EXECUTE FUNCTION sg_audit_log_append_only()",
     0},
    {ENG_PG,
     "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
     "FOR EACH STATEMENT EXECUTE FUNCTION sg_audit_log_append_only()",
     0},
};

/* Indexes for the API's hot queries, found with bench/server_api.sh at 10,000 clients: a
 * client's config looks up its network's hubs, lists page in (created_at, id) order, key-based
 * client login looks up public keys, and the foreign keys of the child tables (PostgreSQL does
 * not index them itself; cascades and per-user revocation scan them). */
static const struct mstmt m2[] = {
    {ENG_ALL,
     "CREATE INDEX idx_clients_network_relay ON clients(network_id, is_relay, created_at, id)", 0},
    {ENG_ALL, "CREATE INDEX idx_clients_network_created ON clients(network_id, created_at, id)", 0},
    {ENG_ALL, "CREATE INDEX idx_clients_created ON clients(created_at, id)", 0},
    {ENG_ALL, "CREATE INDEX idx_clients_pub_classic ON clients(public_key_classic)", 0},
    {ENG_ALL, "CREATE INDEX idx_clients_pub_fips ON clients(public_key_fips)", 0},
    {ENG_ALL, "CREATE INDEX idx_clients_temp_access ON clients(temp_access_id)", 0},
    {ENG_ALL, "CREATE INDEX idx_temp_access_network ON temp_access(network_id)", 0},
    {ENG_ALL, "CREATE INDEX idx_refresh_tokens_user ON refresh_tokens(user_id)", 0},
    {ENG_ALL, "CREATE INDEX idx_refresh_tokens_family ON refresh_tokens(family_id)", 0},
    {ENG_ALL, "CREATE INDEX idx_api_keys_user ON api_keys(user_id)", 0},
    {ENG_ALL, "CREATE INDEX idx_client_sessions_client ON client_sessions(client_id)", 0},
};


/* Agents and policies (issue 14): managed nodes ("peers" of the design's API) with their own key
 * pair and sessions, one-time enrolment tokens, policies (tunnels in swanctl.conf's terms, or a
 * topology over tags), the tunnels agents report, and what agents' reports say about WireGuard
 * clients (online, bytes). sync_state.revision moves with every change an agent's configuration
 * depends on (triggers below), so every server of a cluster notices one within its poll
 * interval (on PostgreSQL at once: migration 10 adds a NOTIFY) and wakes the agents waiting on
 * it (routes_agents.c). */
#define SYNC_BUMP "UPDATE sync_state SET revision = revision + 1 WHERE id = 1"
#define CLIENT_CFG_COLS                                                                            \
	"name, public_key_classic, public_key_fips, private_key_classic_enc, "                    \
	"private_key_fips_enc, assigned_ip4, assigned_ip6, allowed_ips, persistent_keepalive, "    \
	"is_relay, endpoint, listen_port, enabled, expires_at"
#define NET_CFG_COLS	"name, subnet4, subnet6, dns_servers, fips_required, mtu"
#define AGENT_CFG_COLS	"name, tags, client_id, address, subnets, revoked, platform, interface"
#define POLICY_CFG_COLS                                                                            \
	"name, version, enabled, priority, applies_to, tunnels, secrets, topology"
#define SQLITE_BUMP(t, op, cols)                                                                   \
	{ENG_SQLITE,                                                                               \
	 "CREATE TRIGGER sync_" t "_" op " AFTER " op cols " ON " t " BEGIN " SYNC_BUMP "; END",  \
	 0}
#define SQLITE_BUMPS(t, cols)                                                                      \
	SQLITE_BUMP(t, "INSERT", ""), SQLITE_BUMP(t, "DELETE", ""),                                \
	    SQLITE_BUMP(t, "UPDATE", " OF " cols)
#define PG_BUMP(t, cols)                                                                           \
	{ENG_PG,                                                                                   \
	 "CREATE TRIGGER sync_" t " AFTER INSERT OR DELETE OR UPDATE OF " cols " ON " t           \
	 " FOR EACH STATEMENT EXECUTE FUNCTION sg_sync_bump()",                                    \
	 0}
static const struct mstmt m3[] = {
    {ENG_ALL,
     "CREATE TABLE sync_state (id INTEGER PRIMARY KEY CHECK (id = 1), "
     "revision BIGINT NOT NULL)",
     0},
    {ENG_ALL, "INSERT INTO sync_state (id, revision) VALUES (1, 1)", 0},
    {ENG_ALL,
     "CREATE TABLE enrollment_tokens (id TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, "
     "name TEXT, tags TEXT NOT NULL DEFAULT '', "
     "client_id TEXT REFERENCES clients(id) ON DELETE CASCADE, "
     "created_by TEXT REFERENCES admin_users(id) ON DELETE SET NULL, "
     "expires_at BIGINT NOT NULL, used_at BIGINT, agent_id TEXT, "
     "revoked INTEGER NOT NULL DEFAULT 0, created_at BIGINT NOT NULL)",
     0},
    {ENG_ALL,
     "CREATE TABLE agents (id TEXT PRIMARY KEY, name TEXT NOT NULL, "
     "public_key TEXT NOT NULL, tags TEXT NOT NULL DEFAULT '', "
     "client_id TEXT REFERENCES clients(id) ON DELETE SET NULL, interface TEXT, "
     "address TEXT, subnets TEXT NOT NULL DEFAULT '', hostname TEXT, platform TEXT, "
     "version TEXT, backends TEXT NOT NULL DEFAULT '', "
     "state TEXT NOT NULL DEFAULT 'registered', revoked INTEGER NOT NULL DEFAULT 0, "
     "applied_revision TEXT, report TEXT, last_seen BIGINT, "
     "enrollment_token_id TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)",
     0},
    {ENG_ALL,
     "CREATE TABLE agent_sessions (id TEXT PRIMARY KEY, "
     "agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE, "
     "token_hash TEXT NOT NULL UNIQUE, expires_at BIGINT NOT NULL, created_at BIGINT NOT NULL)",
     0},
    {ENG_ALL,
     "CREATE TABLE policies (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, "
     "description TEXT NOT NULL DEFAULT '', version INTEGER NOT NULL DEFAULT 1, "
     "enabled INTEGER NOT NULL DEFAULT 1, priority INTEGER NOT NULL DEFAULT 100, "
     "applies_to TEXT NOT NULL DEFAULT '[]', tunnels TEXT NOT NULL DEFAULT '[]', "
     "secrets TEXT NOT NULL DEFAULT '{}', topology TEXT, warnings TEXT NOT NULL DEFAULT '[]', "
     "created_by TEXT REFERENCES admin_users(id) ON DELETE SET NULL, "
     "created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)",
     0},
    {ENG_ALL,
     "CREATE TABLE agent_tunnels (agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE "
     "CASCADE, name TEXT NOT NULL, type TEXT NOT NULL, policy_id TEXT, backend TEXT, "
     "state TEXT NOT NULL, reason TEXT, bytes_in BIGINT NOT NULL DEFAULT 0, "
     "bytes_out BIGINT NOT NULL DEFAULT 0, packets_in BIGINT NOT NULL DEFAULT 0, "
     "packets_out BIGINT NOT NULL DEFAULT 0, rekeys BIGINT NOT NULL DEFAULT 0, "
     "restarts INTEGER NOT NULL DEFAULT 0, established_at BIGINT, updated_at BIGINT NOT NULL, "
     "PRIMARY KEY (agent_id, name))",
     0},
    {ENG_ALL, "ALTER TABLE clients ADD COLUMN online INTEGER NOT NULL DEFAULT 0", 0},
    {ENG_ALL, "ALTER TABLE clients ADD COLUMN bytes_sent BIGINT NOT NULL DEFAULT 0", 0},
    {ENG_ALL, "ALTER TABLE clients ADD COLUMN bytes_received BIGINT NOT NULL DEFAULT 0", 0},
    /* A revoked agent's row stays (history, and a clear answer when it calls again); its
     * name and key may be taken again. */
    {ENG_ALL, "CREATE UNIQUE INDEX agents_live_name ON agents(name) WHERE revoked = 0", 0},
    {ENG_ALL, "CREATE UNIQUE INDEX agents_live_key ON agents(public_key) WHERE revoked = 0",
     0},
    {ENG_ALL, "CREATE INDEX idx_agents_key ON agents(public_key)", 0},
    {ENG_ALL, "CREATE INDEX idx_agent_sessions_agent ON agent_sessions(agent_id)", 0},
    {ENG_ALL, "CREATE INDEX idx_agents_client ON agents(client_id)", 0},
    {ENG_ALL, "CREATE INDEX idx_agents_created ON agents(created_at, id)", 0},
    {ENG_ALL, "CREATE INDEX idx_agent_tunnels_name ON agent_tunnels(name)", 0},
    {ENG_ALL, "CREATE INDEX idx_enrollment_client ON enrollment_tokens(client_id)", 0},
    {ENG_ALL, "CREATE INDEX idx_policies_priority ON policies(priority, name)", 0},
    SQLITE_BUMPS("policies", POLICY_CFG_COLS),
    SQLITE_BUMPS("agents", AGENT_CFG_COLS),
    SQLITE_BUMPS("clients", CLIENT_CFG_COLS),
    SQLITE_BUMPS("networks", NET_CFG_COLS),
    {ENG_PG,
     "CREATE FUNCTION sg_sync_bump() RETURNS trigger LANGUAGE plpgsql AS $fn$ BEGIN "
     SYNC_BUMP "; RETURN NULL; END $fn$",
     0},
    PG_BUMP("policies", POLICY_CFG_COLS),
    PG_BUMP("agents", AGENT_CFG_COLS),
    PG_BUMP("clients", CLIENT_CFG_COLS),
    PG_BUMP("networks", NET_CFG_COLS),
};

/* Public keys are unique within a network, the hub's included: two peers with one key make the
 * hub config list the key twice (WireGuard keeps one of them) and client login pick whichever
 * comes first. NULLs (no key of that kind) do not collide on either engine.
 *
 * audit_log: UPDATE and DELETE were refused, but SQLite's INSERT OR REPLACE (and REPLACE INTO)
 * removes the conflicting row without firing a DELETE trigger
 * (https://sqlite.org/lang_conflict.html, REPLACE: "delete triggers fire if and only if recursive
 * triggers are enabled"). Every insert must now take the next id, checked before any conflict
 * handling, which refuses replacing, upserting (PostgreSQL's ON CONFLICT DO UPDATE too) and
 * inserting into a gap. The server's appends take max(id) + 1 under the audit lock (audit.c), so
 * they always pass. */
static const struct mstmt m4[] = {
    {ENG_ALL,
     "CREATE UNIQUE INDEX clients_network_pub_classic ON clients(network_id, "
     "public_key_classic)",
     0},
    {ENG_ALL,
     "CREATE UNIQUE INDEX clients_network_pub_fips ON clients(network_id, public_key_fips)", 0},
    {ENG_SQLITE,
     "CREATE TRIGGER audit_log_append_only BEFORE INSERT ON audit_log "
     "WHEN NEW.id IS NULL OR NEW.id IS NOT (SELECT COALESCE(MAX(id), 0) + 1 FROM audit_log) "
     "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: a row must take the next id "
     "(replacing, upserting and filling gaps are refused)'); END",
     0},
    {ENG_PG,
     "CREATE FUNCTION sg_audit_log_next_id() RETURNS trigger LANGUAGE plpgsql AS $fn$ "
     "BEGIN IF NEW.id IS DISTINCT FROM (SELECT COALESCE(MAX(id), 0) + 1 FROM audit_log) THEN "
     "RAISE EXCEPTION 'audit_log is append-only: a row must take the next id (replacing, "
     "upserting and filling gaps are refused)' USING ERRCODE = 'insufficient_privilege'; "
     "END IF; RETURN NEW; END $fn$",
     0},
    {ENG_PG,
     "CREATE TRIGGER audit_log_append_only BEFORE INSERT ON audit_log "
     "FOR EACH ROW EXECUTE FUNCTION sg_audit_log_next_id()",
     0},
};

/* Before the unique indexes of migration 4: in each group of clients of one network sharing a
 * key, the hub (else the oldest client) keeps it; every other one loses that key (and its sealed
 * private key, if the server made it), is disabled and its sessions end, each change audited
 * (client.updated, actor system) and logged. Such a client needs new keys
 * (POST /api/clients/{id}/regenerate-keys) before it is enabled again. */
static int dedupe_keys(struct sg_db_conn *c, char *err, size_t errlen)
{
	static const char *const kinds[2][3] = {
	    {"public_key_classic", "private_key_classic_enc", "public_key"},
	    {"public_key_fips", "private_key_fips_enc", "public_key_fips"}};
	char now[24];

	snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
	for (int k = 0; k < 2; k++) {
		struct sg_db_res *r = NULL;
		char sql[1024];
		int n;

		snprintf(sql, sizeof(sql),
			 "SELECT c.id, c.name, c.network_id FROM clients c WHERE c.%s IS NOT NULL "
			 "AND EXISTS (SELECT 1 FROM clients d WHERE d.network_id = c.network_id "
			 "AND d.%s = c.%s AND d.id <> c.id AND (d.is_relay > c.is_relay OR "
			 "(d.is_relay = c.is_relay AND (d.created_at < c.created_at OR "
			 "(d.created_at = c.created_at AND d.id < c.id)))))",
			 kinds[k][0], kinds[k][0], kinds[k][0]);
		n = sg_db_query(c, &r, sql, 0, NULL);
		if (n < 0) {
			snprintf(err, errlen, "finding duplicate %s: %s", kinds[k][2],
				 sg_db_errmsg(c));
			return n;
		}
		for (int i = 0; i < n; i++) {
			const char *p[] = {sg_db_res_get(r, i, 0), now};
			char details[256];
			struct sg_audit_event ev = {
			    .event_type = "client.updated",
			    .actor_type = "system",
			    .actor_name = "secureguard-server",
			    .resource_type = "client",
			    .resource_id = p[0],
			    .resource_name = sg_db_res_get(r, i, 1),
			    .action = "update",
			    .details = details,
			};
			int ret;

			snprintf(sql, sizeof(sql),
				 "UPDATE clients SET %s = NULL, %s = NULL, enabled = 0, "
				 "updated_at = $2 WHERE id = $1",
				 kinds[k][0], kinds[k][1]);
			snprintf(details, sizeof(details),
				 "{\"enabled\":false,\"%s\":null,\"reason\":\"another client of "
				 "the network has the same key (schema migration 4)\"}",
				 kinds[k][2]);
			ret = sg_db_exec(c, sql, 2, p);
			if (ret >= 0)
				ret = sg_db_exec(
				    c, "DELETE FROM client_sessions WHERE client_id = $1", 1, p);
			if (ret >= 0)
				ret = sg_audit_append(c, &ev);
			if (ret < 0) {
				snprintf(err, errlen, "clearing a duplicate %s: %s", kinds[k][2],
					 sg_db_errmsg(c));
				sg_db_res_free(r);
				return ret;
			}
			sg_log(SG_LOG_WARN, "duplicate_key_cleared",
			       "client=%s network=%s key=%s action=disabled_needs_new_keys", p[0],
			       sg_db_res_get(r, i, 2), kinds[k][2]);
		}
		sg_db_res_free(r);
	}
	return 0;
}

/* Revocation reaches access tokens: every JWT carries its user's token_gen, bumped by a password
 * or role change, disabling and logout everywhere (auth.c). Account lockout is per (account,
 * source): login_failures counts and locks each source of failures separately, so nobody can
 * lock an account's owner out from elsewhere (auth.c, "Account lockout"). */
static const struct mstmt m5[] = {
    {ENG_ALL, "ALTER TABLE admin_users ADD COLUMN token_gen BIGINT NOT NULL DEFAULT 0", 0},
    {ENG_ALL,
     "CREATE TABLE login_failures (user_id TEXT NOT NULL REFERENCES admin_users(id) ON DELETE "
     "CASCADE, source TEXT NOT NULL, failures INTEGER NOT NULL DEFAULT 0, "
     "locks INTEGER NOT NULL DEFAULT 0, locked_until BIGINT, last_failure BIGINT NOT NULL, "
     "PRIMARY KEY (user_id, source))",
     0},
    /* Sources an account logged in from: their logins wait apart from the others' for password
     * hashing (pwhash.c), so a brute force from fresh addresses cannot take the owner's turn. */
    {ENG_ALL,
     "CREATE TABLE login_known (user_id TEXT NOT NULL REFERENCES admin_users(id) ON DELETE "
     "CASCADE, source TEXT NOT NULL, last_success BIGINT NOT NULL, PRIMARY KEY (user_id, "
     "source))",
     0},
    /* The old per-account locks no longer apply: a locked account is usable again from
     * everywhere (a source that keeps failing locks itself out anew). */
    {ENG_ALL, "UPDATE admin_users SET failed_logins = 0, locked_until = NULL", 0},
};

/* Gateways (issue 15, docs/GATEWAY.md): edge proxies enrolled as managed peers (their agents row
 * is their credential, sessions and reports), the sites their targets sit in, the resources they
 * serve and the targets behind them. A gateway's configuration document is rendered from these
 * rows (routes_gateways.c); every change to what it depends on bumps gateways.config_serial in
 * the same transaction (which also orders concurrent changes of one gateway), and the trigger
 * below moves the sync revision, so the gateway's long poll wakes. Names are unique by their
 * case-folded NFC key (name_key). */
#define GATEWAY_CFG_COLS "name, region, limits, config_serial, agent_id"
static const struct mstmt m6[] = {
    {ENG_ALL,
     "CREATE TABLE gateways (id TEXT PRIMARY KEY, name TEXT NOT NULL, "
     "name_key TEXT NOT NULL UNIQUE, region TEXT, public_address TEXT, "
     "limits TEXT NOT NULL DEFAULT '{}', config_serial BIGINT NOT NULL DEFAULT 1, "
     "agent_id TEXT REFERENCES agents(id) ON DELETE SET NULL, "
     "created_by TEXT REFERENCES admin_users(id) ON DELETE SET NULL, "
     "created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)",
     0},
    {ENG_ALL,
     "CREATE TABLE sites (id TEXT PRIMARY KEY, name TEXT NOT NULL, "
     "name_key TEXT NOT NULL UNIQUE, description TEXT NOT NULL DEFAULT '', "
     "networks TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)",
     0},
    {ENG_ALL,
     "CREATE TABLE resources (id TEXT PRIMARY KEY, "
     "gateway_id TEXT NOT NULL REFERENCES gateways(id) ON DELETE CASCADE, "
     "site_id TEXT REFERENCES sites(id), name TEXT NOT NULL, protocol TEXT NOT NULL, "
     "domain TEXT, aliases TEXT NOT NULL DEFAULT '', port INTEGER, "
     "auth TEXT NOT NULL DEFAULT 'public', api_keys TEXT NOT NULL DEFAULT '', oidc TEXT, "
     "oidc_secret TEXT, rate_limit TEXT, rules TEXT, allow_cidrs TEXT NOT NULL DEFAULT '', "
     "deny_cidrs TEXT NOT NULL DEFAULT '', lb TEXT, sticky_cookie TEXT, max_body BIGINT, "
     "tls TEXT, max_conns INTEGER, idle_timeout_ms INTEGER, connect_timeout_ms INTEGER, "
     "response_timeout_ms INTEGER, retries INTEGER, eject_ms INTEGER, eject_after INTEGER, "
     "enabled INTEGER NOT NULL DEFAULT 1, created_at BIGINT NOT NULL, "
     "updated_at BIGINT NOT NULL)",
     0},
    {ENG_ALL,
     "CREATE TABLE targets (id TEXT PRIMARY KEY, "
     "resource_id TEXT NOT NULL REFERENCES resources(id) ON DELETE CASCADE, "
     "address TEXT NOT NULL, weight INTEGER NOT NULL DEFAULT 1, region TEXT, "
     "health_check TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)",
     0},
    {ENG_ALL,
     "ALTER TABLE enrollment_tokens ADD COLUMN gateway_id TEXT REFERENCES gateways(id) ON "
     "DELETE CASCADE",
     0},
    {ENG_ALL, "CREATE INDEX idx_gateways_created ON gateways(created_at, id)", 0},
    {ENG_ALL, "CREATE INDEX idx_gateways_agent ON gateways(agent_id)", 0},
    {ENG_ALL, "CREATE INDEX idx_sites_created ON sites(created_at, id)", 0},
    {ENG_ALL, "CREATE INDEX idx_resources_gateway ON resources(gateway_id, created_at, id)", 0},
    {ENG_ALL, "CREATE INDEX idx_resources_site ON resources(site_id)", 0},
    {ENG_ALL, "CREATE INDEX idx_resources_created ON resources(created_at, id)", 0},
    {ENG_ALL, "CREATE INDEX idx_targets_resource ON targets(resource_id, created_at, id)", 0},
    {ENG_ALL, "CREATE INDEX idx_enrollment_gateway ON enrollment_tokens(gateway_id)", 0},
    SQLITE_BUMPS("gateways", GATEWAY_CFG_COLS),
    PG_BUMP("gateways", GATEWAY_CFG_COLS),
};

/* Migration 7 (issue 20, item 11): names and e-mail addresses compare without regard to case or
 * Unicode normalisation. admin_users.email is stored case-folded (NFC, then folded: what every
 * input is turned into, api_valid.c's email format); networks get name_key, the folded name, with
 * a unique index, so "Office" and "office" (or a composed and a decomposed "é") are one name.
 * Existing rows that collide once folded: of several accounts, the one with the highest role
 * (then the oldest) keeps the address and the others keep their spelling but are disabled; of
 * several networks, the oldest keeps the name and the others get " (2)", " (3)"... Each change is
 * an audit row. The folding is Unicode's, so it is done here in C, not in SQL. */
static int fold_one_user(struct sg_db_conn *c, const char *id, const char *email,
			 const char *folded, bool keep, const char *now, char *err, size_t errlen)
{
	const char *p[] = {id, keep ? folded : email, now};
	char details[160];
	struct sg_audit_event ev = {
	    .event_type = "user.updated",
	    .actor_type = "system",
	    .actor_name = "secureguard-server",
	    .resource_type = "user",
	    .resource_id = id,
	    .resource_name = email,
	    .action = "update",
	    .details = details,
	};
	int ret;

	if (keep && !strcmp(email, folded))
		return 0;
	if (keep) {
		snprintf(details, sizeof(details),
			 "{\"email_folded\":true,\"reason\":\"e-mail addresses compare without case "
			 "(schema migration 7)\"}");
		ret = sg_db_exec(c, "UPDATE admin_users SET email = $2 WHERE id = $1", 2, p);
	} else {
		snprintf(details, sizeof(details),
			 "{\"enabled\":false,\"reason\":\"another account has this e-mail address "
			 "in another case (schema migration 7)\"}");
		ret = sg_db_exec(c, "UPDATE admin_users SET enabled = 0 WHERE id = $1", 1, p);
	}
	if (ret >= 0)
		ret = sg_audit_append(c, &ev);
	if (ret < 0)
		snprintf(err, errlen, "folding e-mail addresses: %s", sg_db_errmsg(c));
	return ret < 0 ? ret : 0;
}

static int fold_keys(struct sg_db_conn *c, char *err, size_t errlen)
{
	struct sg_db_res *r = NULL;
	char now[24];
	int n, ret = 0;

	snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
	/* Accounts: highest role first, then the oldest; the first of each folded address wins. */
	n = sg_db_query(c, &r,
			"SELECT id, email FROM admin_users ORDER BY CASE role WHEN 'super_admin' "
			"THEN 0 WHEN 'admin' THEN 1 ELSE 2 END, created_at, id",
			0, NULL);
	if (n < 0) {
		snprintf(err, errlen, "reading accounts: %s", sg_db_errmsg(c));
		return n;
	}
	{
		char **seen = calloc((size_t)n + 1, sizeof(*seen));

		for (int i = 0; i < n && ret == 0; i++) {
			const char *email = sg_db_res_get(r, i, 1);
			char *f = srv_text_fold(email);
			bool dup = false;

			if (!f || !seen) {
				free(f);
				ret = SG_ENOMEM;
				break;
			}
			for (int k = 0; k < i && !dup; k++)
				dup = seen[k] && !strcmp(seen[k], f);
			ret = fold_one_user(c, sg_db_res_get(r, i, 0), email, f, !dup, now, err,
					    errlen);
			seen[i] = f;
		}
		for (int i = 0; seen && i < n; i++)
			free(seen[i]);
		free(seen);
	}
	sg_db_res_free(r);
	if (ret)
		return ret;
	/* The administrator's address in the settings, likewise (not unique). */
	n = sg_db_query(c, &r, "SELECT admin_email FROM settings WHERE id = 1", 0, NULL);
	if (n == 1 && sg_db_res_get(r, 0, 0)) {
		char *f = srv_text_fold(sg_db_res_get(r, 0, 0));
		const char *p[] = {f};

		if (f)
			ret = sg_db_exec(c, "UPDATE settings SET admin_email = $1 WHERE id = 1", 1, p);
		free(f);
		if (ret < 0) {
			snprintf(err, errlen, "folding the settings' e-mail: %s", sg_db_errmsg(c));
			sg_db_res_free(r);
			return ret;
		}
	}
	sg_db_res_free(r);
	/* Networks: the column, then each row's key, oldest first; a later collision is renamed. */
	ret = sg_db_exec(c, "ALTER TABLE networks ADD COLUMN name_key TEXT", 0, NULL);
	if (ret < 0) {
		snprintf(err, errlen, "adding networks.name_key: %s", sg_db_errmsg(c));
		return ret;
	}
	n = sg_db_query(c, &r, "SELECT id, name FROM networks ORDER BY created_at, id", 0, NULL);
	if (n < 0) {
		snprintf(err, errlen, "reading networks: %s", sg_db_errmsg(c));
		return n;
	}
	ret = 0;
	for (int i = 0; i < n && ret >= 0; i++) {
		const char *id = sg_db_res_get(r, i, 0), *name = sg_db_res_get(r, i, 1);
		char cand[96], *key = NULL;

		/* The name, or the first free "name (k)". */
		for (int k = 1; k < 1000; k++) {
			struct sg_db_res *x = NULL;
			const char *q[1];
			int found;

			if (k == 1)
				snprintf(cand, sizeof(cand), "%s", name);
			else
				snprintf(cand, sizeof(cand), "%.56s (%d)", name, k);
			free(key);
			key = srv_text_fold(cand);
			q[0] = key;
			if (!key) {
				ret = SG_ENOMEM;
				break;
			}
			found = sg_db_query(c, &x, "SELECT 1 FROM networks WHERE name_key = $1", 1, q);
			sg_db_res_free(x);
			if (found < 0) {
				ret = found;
				break;
			}
			if (found == 0)
				break;
		}
		if (ret >= 0 && key) {
			const char *p[] = {id, key, cand};

			ret = sg_db_exec(c, "UPDATE networks SET name_key = $2, name = $3 WHERE id = $1",
					 3, p);
			if (ret >= 0 && strcmp(cand, name)) {
				json_t *d = json_pack("{s:s,s:s}", "renamed_from", name, "reason",
						      "another network has this name in another "
						      "case (schema migration 7)");
				char *details = d ? json_dumps(d, JSON_COMPACT) : NULL;
				struct sg_audit_event ev = {
				    .event_type = "network.updated",
				    .actor_type = "system",
				    .actor_name = "secureguard-server",
				    .resource_type = "network",
				    .resource_id = id,
				    .resource_name = cand,
				    .action = "update",
				    .details = details,
				};

				ret = details ? sg_audit_append(c, &ev) : SG_ENOMEM;
				free(details);
				json_decref(d);
			}
		}
		free(key);
	}
	sg_db_res_free(r);
	if (ret < 0) {
		snprintf(err, errlen, "folding network names: %s", sg_db_errmsg(c));
		return ret;
	}
	return 0;
}

static const struct mstmt m7[] = {
    {ENG_ALL, "CREATE UNIQUE INDEX idx_networks_name_key ON networks(name_key)", 0},
};

/* Migration 8 (issue 22): the admins' second factor (routes_mfa.c, docs/SERVER.md "Two-factor
 * logins"). admin_users gets the TOTP secret sealed with the server's key (totp_secret, set once
 * enrolment is confirmed; totp_pending while it is not, with its start time), the last time step
 * a code was accepted for (a code is good once), and the instance setting that requires a second
 * factor of every admin. recovery_codes holds the single-use codes hashed; mfa_tokens the logins
 * that passed the password and wait for a code (hashed, five minutes, five wrong codes). */
static const struct mstmt m8[] = {
    {ENG_ALL, "ALTER TABLE admin_users ADD COLUMN totp_secret TEXT", 0},
    {ENG_ALL, "ALTER TABLE admin_users ADD COLUMN totp_pending TEXT", 0},
    {ENG_ALL, "ALTER TABLE admin_users ADD COLUMN totp_pending_at BIGINT", 0},
    {ENG_ALL, "ALTER TABLE admin_users ADD COLUMN totp_last_step BIGINT NOT NULL DEFAULT 0", 0},
    {ENG_ALL, "ALTER TABLE settings ADD COLUMN require_2fa INTEGER NOT NULL DEFAULT 0", 0},
    {ENG_ALL,
     "CREATE TABLE recovery_codes (user_id TEXT NOT NULL REFERENCES admin_users(id) ON DELETE "
     "CASCADE, code_hash TEXT NOT NULL, used_at BIGINT, created_at BIGINT NOT NULL, "
     "PRIMARY KEY (user_id, code_hash))",
     0},
    {ENG_ALL,
     "CREATE TABLE mfa_tokens (token_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES "
     "admin_users(id) ON DELETE CASCADE, source TEXT NOT NULL, attempts INTEGER NOT NULL "
     "DEFAULT 0, expires_at BIGINT NOT NULL, created_at BIGINT NOT NULL)",
     0},
    {ENG_ALL, "CREATE INDEX idx_mfa_tokens_user ON mfa_tokens(user_id)", 0},
};

/* The OpenID provider (routes_oidc.c): authorization codes (single use, 60 s) and the login
 * sessions of its cookie (8 h), both by the SHA-384 of the secret. */
static const struct mstmt m9[] = {
    {ENG_ALL,
     "CREATE TABLE oidc_codes (code_hash TEXT PRIMARY KEY, client_id TEXT NOT NULL, "
     "redirect_uri TEXT NOT NULL, "
     "user_id TEXT NOT NULL REFERENCES admin_users(id) ON DELETE CASCADE, nonce TEXT, "
     "code_challenge TEXT NOT NULL, scope TEXT NOT NULL, auth_time BIGINT NOT NULL, "
     "expires_at BIGINT NOT NULL, used INTEGER NOT NULL DEFAULT 0, created_at BIGINT NOT NULL)",
     0},
    {ENG_ALL,
     "CREATE TABLE oidc_sessions (token_hash TEXT PRIMARY KEY, "
     "user_id TEXT NOT NULL REFERENCES admin_users(id) ON DELETE CASCADE, "
     "auth_time BIGINT NOT NULL, expires_at BIGINT NOT NULL, created_at BIGINT NOT NULL)",
     0},
    {ENG_ALL, "CREATE INDEX idx_oidc_codes_expires ON oidc_codes(expires_at)", 0},
    {ENG_ALL, "CREATE INDEX idx_oidc_codes_user ON oidc_codes(user_id)", 0},
    {ENG_ALL, "CREATE INDEX idx_oidc_sessions_expires ON oidc_sessions(expires_at)", 0},
    {ENG_ALL, "CREATE INDEX idx_oidc_sessions_user ON oidc_sessions(user_id)", 0},
};

/* Migration 10 (issue 18): on PostgreSQL every move of sync_state.revision also sends a
 * notification on channel sg_sync, delivered at commit to every server LISTENing (db_pg.c,
 * sg_db_listen), so a change made on one server wakes the long polls held by the others within
 * milliseconds instead of their next look at the revision. An empty payload: PostgreSQL folds
 * identical notifications of one transaction into one. */
static const struct mstmt m10[] = {
    {ENG_PG,
     "CREATE OR REPLACE FUNCTION sg_sync_bump() RETURNS trigger LANGUAGE plpgsql AS $fn$ "
     "BEGIN " SYNC_BUMP "; PERFORM pg_notify('sg_sync', ''); RETURN NULL; END $fn$",
     0},
};

/* Services (`secureguard expose`, docs/GATEWAY.md "Exposed services"): a gateway's expose
 * settings (the network whose hub runs on its host, the base domain, the public ports), and each
 * service: the WireGuard client it got in that network, the resource and target the gateway
 * serves it by, and what the exposing client was told (its public URL and DNS record). The
 * resource and target are ordinary rows, so the gateway's document needs nothing new. */
static const struct mstmt m11[] = {
    {ENG_ALL, "ALTER TABLE gateways ADD COLUMN expose TEXT", 0},
    {ENG_ALL,
     "CREATE TABLE services (id TEXT PRIMARY KEY, name TEXT NOT NULL, "
     "gateway_id TEXT NOT NULL REFERENCES gateways(id) ON DELETE CASCADE, "
     "resource_id TEXT NOT NULL REFERENCES resources(id) ON DELETE CASCADE, "
     "target_id TEXT NOT NULL, "
     "client_id TEXT REFERENCES clients(id) ON DELETE SET NULL, "
     "protocol TEXT NOT NULL, local_address TEXT NOT NULL, subdomain TEXT NOT NULL, "
     "port INTEGER NOT NULL, public_port INTEGER, public_url TEXT NOT NULL, "
     "dns_name TEXT NOT NULL, dns_type TEXT NOT NULL, dns_value TEXT NOT NULL, "
     "auth TEXT NOT NULL, tunnel_address TEXT, tunnel_address6 TEXT, listen TEXT NOT NULL, "
     "crypto_mode TEXT NOT NULL, config_serial BIGINT NOT NULL, "
     "created_by TEXT REFERENCES admin_users(id) ON DELETE SET NULL, "
     "created_at BIGINT NOT NULL, UNIQUE (gateway_id, subdomain))",
     0},
    {ENG_ALL, "CREATE INDEX idx_services_created ON services(created_at, id)", 0},
    {ENG_ALL, "CREATE INDEX idx_services_resource ON services(resource_id)", 0},
    {ENG_ALL, "CREATE INDEX idx_services_client ON services(client_id)", 0},
};

/* Migration 12 (issue 22): MFA-gated VPN sessions (routes_vpn.c, docs/SERVER.md "MFA-gated VPN
 * sessions"). A network may require that its clients' owners hold an MFA session
 * (mfa_required, sessions of mfa_session_hours); a client gets an owner (an admin_users row;
 * no foreign key, so that an undo can drop the column on SQLite: deleting a user clears it in
 * the same transaction); vpn_sessions holds each session (its token by SHA-384, its end and
 * why). A hub lists such a client only while its owner's session is open, so the sessions and
 * the new columns move sync_state.revision like every other input of a configuration. */
static const struct mstmt m12[] = {
    {ENG_ALL, "ALTER TABLE networks ADD COLUMN mfa_required INTEGER NOT NULL DEFAULT 0", 0},
    {ENG_ALL, "ALTER TABLE networks ADD COLUMN mfa_session_hours INTEGER NOT NULL DEFAULT 8", 0},
    {ENG_ALL, "ALTER TABLE clients ADD COLUMN owner_id TEXT", 0},
    {ENG_ALL,
     "CREATE TABLE vpn_sessions (id TEXT PRIMARY KEY, "
     "client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE, "
     "user_id TEXT NOT NULL REFERENCES admin_users(id) ON DELETE CASCADE, "
     "token_hash TEXT NOT NULL UNIQUE, source_ip TEXT, expires_at BIGINT NOT NULL, "
     "ended_at BIGINT, end_reason TEXT, ended_by TEXT, created_at BIGINT NOT NULL)",
     0},
    {ENG_ALL, "CREATE INDEX idx_vpn_sessions_client ON vpn_sessions(client_id)", 0},
    {ENG_ALL, "CREATE INDEX idx_vpn_sessions_user ON vpn_sessions(user_id)", 0},
    {ENG_ALL, "CREATE INDEX idx_vpn_sessions_created ON vpn_sessions(created_at, id)", 0},
    {ENG_ALL, "CREATE INDEX idx_vpn_sessions_open ON vpn_sessions(expires_at) WHERE ended_at IS NULL",
     0},
    {ENG_ALL, "CREATE INDEX idx_clients_owner ON clients(owner_id)", 0},
    SQLITE_BUMPS("vpn_sessions", "ended_at, expires_at"),
    {ENG_SQLITE,
     "CREATE TRIGGER sync_networks_mfa AFTER UPDATE OF mfa_required ON networks BEGIN " SYNC_BUMP
     "; END",
     0},
    {ENG_SQLITE,
     "CREATE TRIGGER sync_clients_owner AFTER UPDATE OF owner_id ON clients BEGIN " SYNC_BUMP
     "; END",
     0},
    PG_BUMP("vpn_sessions", "ended_at, expires_at"),
    {ENG_PG,
     "CREATE TRIGGER sync_networks_mfa AFTER UPDATE OF mfa_required ON networks "
     "FOR EACH STATEMENT EXECUTE FUNCTION sg_sync_bump()",
     0},
    {ENG_PG,
     "CREATE TRIGGER sync_clients_owner AFTER UPDATE OF owner_id ON clients "
     "FOR EACH STATEMENT EXECUTE FUNCTION sg_sync_bump()",
     0},
};

/* Migration 13 (issue 22): passkeys (routes_passkeys.c, docs/SERVER.md "Passkeys"). Each
 * passkey: its credential id (base64url, unique across all accounts: one authenticator's
 * credential belongs to one account), its COSE public key (base64url), algorithm, signature
 * counter and the flags it was registered with. webauthn_challenges holds the challenges given
 * out (by hash, each for one ceremony, bound to an account when one is known, five minutes). */
static const struct mstmt m13[] = {
    {ENG_ALL,
     "CREATE TABLE passkeys (id TEXT PRIMARY KEY, "
     "user_id TEXT NOT NULL REFERENCES admin_users(id) ON DELETE CASCADE, "
     "credential_id TEXT NOT NULL UNIQUE, public_key TEXT NOT NULL, alg INTEGER NOT NULL, "
     "sign_count BIGINT NOT NULL DEFAULT 0, name TEXT NOT NULL, aaguid TEXT NOT NULL, "
     "backup_eligible INTEGER NOT NULL DEFAULT 0, backed_up INTEGER NOT NULL DEFAULT 0, "
     "user_verified INTEGER NOT NULL DEFAULT 0, transports TEXT NOT NULL DEFAULT '', "
     "created_at BIGINT NOT NULL, last_used_at BIGINT)",
     0},
    {ENG_ALL, "CREATE INDEX idx_passkeys_user ON passkeys(user_id, created_at)", 0},
    {ENG_ALL,
     "CREATE TABLE webauthn_challenges (challenge_hash TEXT PRIMARY KEY, purpose TEXT NOT NULL, "
     "user_id TEXT REFERENCES admin_users(id) ON DELETE CASCADE, mfa_token_hash TEXT, "
     "source TEXT NOT NULL, expires_at BIGINT NOT NULL, created_at BIGINT NOT NULL)",
     0},
    {ENG_ALL, "CREATE INDEX idx_webauthn_challenges_expires ON webauthn_challenges(expires_at)",
     0},
    {ENG_ALL, "CREATE INDEX idx_webauthn_challenges_user ON webauthn_challenges(user_id)", 0},
};

/* Migration 14 (issue 18): indexes for the audit list's filters in its order. GET /api/audit
 * reads newest first (ORDER BY id DESC, and id < the cursor's key for the next page); filtered by
 * event_type or actor_id it had only (column, ts) to use, so a page had to collect every matching
 * row and sort it, and resource_type had none (a walk of the whole log). (column, id) gives each
 * filter its rows in the list's order: a page is the first limit + 1 entries of one range. The
 * (column, ts) indexes served nothing else and go (each index is one more write per audited
 * change); a time range alone keeps idx_audit_ts. */
static const struct mstmt m14[] = {
    {ENG_ALL, "CREATE INDEX idx_audit_event_id ON audit_log(event_type, id)", 0},
    {ENG_ALL, "CREATE INDEX idx_audit_actor_id ON audit_log(actor_id, id)", 0},
    {ENG_ALL, "CREATE INDEX idx_audit_resource_id ON audit_log(resource_type, id)", 0},
    {ENG_ALL, "DROP INDEX idx_audit_event_ts", 0},
    {ENG_ALL, "DROP INDEX idx_audit_actor_ts", 0},
};

static const struct migration migrations[] = {
    {1, m1, sizeof(m1) / sizeof(m1[0]), NULL},
    {2, m2, sizeof(m2) / sizeof(m2[0]), NULL},
    {3, m3, sizeof(m3) / sizeof(m3[0]), NULL},
    {4, m4, sizeof(m4) / sizeof(m4[0]), dedupe_keys},
    {5, m5, sizeof(m5) / sizeof(m5[0]), NULL},
    {6, m6, sizeof(m6) / sizeof(m6[0]), NULL},
    {7, m7, sizeof(m7) / sizeof(m7[0]), fold_keys},
    {8, m8, sizeof(m8) / sizeof(m8[0]), NULL},
    {9, m9, sizeof(m9) / sizeof(m9[0]), NULL},
    {10, m10, sizeof(m10) / sizeof(m10[0]), NULL},
    {11, m11, sizeof(m11) / sizeof(m11[0]), NULL},
    {12, m12, sizeof(m12) / sizeof(m12[0]), NULL},
    {13, m13, sizeof(m13) / sizeof(m13[0]), NULL},
    {14, m14, sizeof(m14) / sizeof(m14[0]), NULL},
};
#define NMIGRATIONS (sizeof(migrations) / sizeof(migrations[0]))

int db_schema_latest(void)
{
	return migrations[NMIGRATIONS - 1].version;
}

/* Replaces @SERIAL@ with the engine's autoincrement primary key. AUTOINCREMENT keeps SQLite from
 * reusing the id of a deleted last row; an identity column is PostgreSQL's equivalent. audit.c
 * assigns audit_log ids itself (max + 1 under its lock), hence BY DEFAULT. */
static char *expand(const char *sql, enum sg_db_engine eng)
{
	static const char tok[] = "@SERIAL@";
	const char *rep = eng == SG_DB_SQLITE
			      ? "INTEGER PRIMARY KEY AUTOINCREMENT"
			      : "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY";
	const char *p = strstr(sql, tok);
	size_t len = strlen(sql), rlen = strlen(rep), tlen = sizeof(tok) - 1;
	char *out;

	if (!p)
		return strdup(sql);
	out = malloc(len - tlen + rlen + 1);
	if (!out)
		return NULL;
	memcpy(out, sql, (size_t)(p - sql));
	memcpy(out + (p - sql), rep, rlen);
	memcpy(out + (p - sql) + rlen, p + tlen, len - (size_t)(p - sql) - tlen + 1);
	return out;
}

static int current_version(struct sg_db_conn *c, int *version)
{
	struct sg_db_res *r = NULL;
	const char *v;
	int ret;

	ret =
	    sg_db_query(c, &r, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", 0, NULL);
	if (ret < 0)
		return ret;
	v = sg_db_res_get(r, 0, 0);
	*version = v ? atoi(v) : 0;
	sg_db_res_free(r);
	return 0;
}

static int apply(struct sg_db_conn *c, const struct migration *m, char *err, size_t errlen)
{
	enum sg_db_engine eng = sg_db_conn_engine(c);
	char now[24], ver[16];
	const char *params[2];
	size_t i;
	int ret = 0;

	snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
	snprintf(ver, sizeof(ver), "%d", m->version);
	if (m->pre) {
		ret = m->pre(c, err, errlen);
		if (ret < 0)
			return ret;
	}
	for (i = 0; i < m->n; i++) {
		char *sql;

		if (!(m->stmts[i].engines & (1u << eng)))
			continue;
		sql = expand(m->stmts[i].sql, eng);
		if (!sql)
			return SG_ENOMEM;
		params[0] = now;
		ret = sg_db_exec(c, sql, m->stmts[i].now_param, params);
		free(sql);
		if (ret < 0) {
			snprintf(err, errlen, "migration %d, statement %zu: %s", m->version, i + 1,
				 sg_db_errmsg(c));
			return ret;
		}
	}
	params[0] = ver;
	params[1] = now;
	ret = sg_db_exec(c, "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
			 2, params);
	if (ret < 0) {
		snprintf(err, errlen, "migration %d: recording it: %s", m->version,
			 sg_db_errmsg(c));
		return ret;
	}
	return 0;
}

static int migrate_locked(struct sg_db_conn *c, char *err, size_t errlen)
{
	size_t i;
	int version = 0, ret;

	for (i = 0; i < NMIGRATIONS; i++) {
		ret = sg_db_begin(c);
		if (ret < 0)
			goto fail;
		/* Created first so the version can be read on an empty database; migration 1
		 * repeats it with IF NOT EXISTS. */
		ret = sg_db_exec(c, migrations[0].stmts[0].sql, 0, NULL);
		if (ret < 0)
			goto fail;
		ret = current_version(c, &version);
		if (ret < 0)
			goto fail;
		if (version > db_schema_latest()) {
			sg_db_rollback(c);
			snprintf(err, errlen,
				 "database schema version %d is newer than this server knows "
				 "(%d): run a server of the newer release (or restore a backup "
				 "taken before the upgrade)",
				 version, db_schema_latest());
			return SG_EUNSUPPORTED;
		}
		if (migrations[i].version <= version) {
			sg_db_rollback(c);
			continue;
		}
		ret = apply(c, &migrations[i], err, errlen);
		if (ret < 0) {
			sg_db_rollback(c);
			return ret;
		}
		ret = sg_db_commit(c);
		if (ret < 0)
			goto fail;
	}
	return 0;
fail:
	snprintf(err, errlen, "migrations: %s", sg_db_errmsg(c));
	sg_db_rollback(c);
	return ret;
}

int db_migrate(struct sg_db_conn *c, char *err, size_t errlen)
{
	char key[24];
	const char *p[1] = {key};
	int ret, ret2;

	if (sg_db_conn_engine(c) != SG_DB_POSTGRES)
		return migrate_locked(c, err, errlen);

	snprintf(key, sizeof(key), "%lld", (long long)DB_LOCK_MIGRATIONS);
	ret = sg_db_exec(c, "SELECT pg_advisory_lock($1)", 1, p);
	if (ret < 0) {
		snprintf(err, errlen, "migrations: taking the advisory lock: %s", sg_db_errmsg(c));
		return ret;
	}
	ret = migrate_locked(c, err, errlen);
	ret2 = sg_db_exec(c, "SELECT pg_advisory_unlock($1)", 1, p);
	if (ret == 0 && ret2 < 0) {
		snprintf(err, errlen, "migrations: releasing the advisory lock: %s",
			 sg_db_errmsg(c));
		ret = ret2;
	}
	return ret;
}
