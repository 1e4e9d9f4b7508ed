/* Unit tests for src/server/db*.c and schema.c, on SQLite and (with SG_PG_URL) PostgreSQL:
 *
 * - URL and pool-size validation; the SQLite file is created 0600;
 * - migrations: schema version, the settings row, reopening is idempotent, several servers
 *   opening a fresh database at once apply migration 1 exactly once;
 * - $N parameters, reuse of one $N, NULL versus '', placeholders inside string literals,
 *   LIMIT $1, rows-changed counts, result accessors out of range;
 * - error mapping: unique / foreign key / check -> SG_EEXIST, NOT NULL and bad SQL ->
 *   SG_EINVAL with a message, one statement per call, the connection usable afterwards;
 * - transactions: rollback, commit, release rolls back, nested begin refused, serialization
 *   conflicts -> SG_EAGAIN;
 * - the pool under 8 threads with 4 connections; PostgreSQL reconnects a killed session (a
 *   SELECT or BEGIN sent again, nothing inside a transaction; the whole pool after one loss).
 */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include <secureguard/sg_errors.h>

#include "db_fixture.h"
#include "server/db_int.h"
#include "server/srv_int.h"

static const char *one(struct sg_db_conn *c, struct sg_db_res **r, const char *sql, int n,
		       const char *const *p)
{
	int ret = sg_db_query(c, r, sql, n, p);

	if (ret < 0)
		fprintf(stderr, "%s: %d %s\n", sql, ret, sg_db_errmsg(c));
	assert_int_equal(ret, 1);
	return sg_db_res_get(*r, 0, 0);
}

static long count(struct sg_db_conn *c, const char *sql)
{
	struct sg_db_res *r = NULL;
	long v = atol(one(c, &r, sql, 0, NULL));

	sg_db_res_free(r);
	return v;
}

static void add_network(struct sg_db_conn *c, const char *id, const char *name)
{
	const char *p[] = {id, name, "100"};

	X(c,
	  "INSERT INTO networks (id, name, subnet4, created_at, updated_at) "
	  "VALUES ($1, $2, '10.0.0.0/24', $3, $3)",
	  3, p);
}

static void test_bad_urls(void **state)
{
	struct fx *fx = *state;
	struct sg_db *db = (struct sg_db *)1;
	char err[256];

	if (fx->eng != SG_DB_SQLITE)
		skip();
	assert_int_equal(sg_db_open(&db, "mysql://x", 1, err, sizeof(err)), SG_EINVAL);
	assert_null(db);
	assert_non_null(strstr(err, "sqlite:"));
	assert_int_equal(sg_db_open(&db, "sqlite:", 1, err, sizeof(err)), SG_EINVAL);
	assert_int_equal(sg_db_open(&db, "sqlite::memory:", 1, err, sizeof(err)), SG_EINVAL);
	assert_int_equal(sg_db_open(&db, fx->url, -1, err, sizeof(err)), SG_ERANGE);
	assert_int_equal(sg_db_open(&db, fx->url, SG_DB_POOL_MAX + 1, err, sizeof(err)), SG_ERANGE);
	assert_int_equal(sg_db_open(&db, "sqlite:/nonexistent-dir/x.db", 1, err, sizeof(err)),
			 SG_EIO);
	assert_non_null(strstr(err, "/nonexistent-dir/x.db"));
	/* No server listens on port 1. */
	assert_int_equal(
	    sg_db_open(&db, "postgresql://u@127.0.0.1:1/x?connect_timeout=2", 1, err, sizeof(err)),
	    SG_EIO);
	assert_non_null(strstr(err, "postgresql"));
}

/* Migration 8 (the second factor) undone, so that an earlier one can run again. */
static void undo_migration_8(struct sg_db_conn *c)
{
	X(c, "DROP TABLE mfa_tokens", 0, NULL);
	X(c, "DROP TABLE recovery_codes", 0, NULL);
	X(c, "ALTER TABLE admin_users DROP COLUMN totp_secret", 0, NULL);
	X(c, "ALTER TABLE admin_users DROP COLUMN totp_pending", 0, NULL);
	X(c, "ALTER TABLE admin_users DROP COLUMN totp_pending_at", 0, NULL);
	X(c, "ALTER TABLE admin_users DROP COLUMN totp_last_step", 0, NULL);
	X(c, "ALTER TABLE settings DROP COLUMN require_2fa", 0, NULL);
	X(c, "DELETE FROM schema_migrations WHERE version = 8", 0, NULL);
}

/* Migration 12 (MFA-gated VPN sessions) undone: its triggers first (SQLite refuses to drop a
 * column a trigger or an index names). */
static void undo_migration_12(struct sg_db_conn *c, enum sg_db_engine eng)
{
	X(c, "DROP TABLE vpn_sessions", 0, NULL);
	X(c,
	  eng == SG_DB_POSTGRES ? "DROP TRIGGER sync_networks_mfa ON networks"
				: "DROP TRIGGER sync_networks_mfa",
	  0, NULL);
	X(c,
	  eng == SG_DB_POSTGRES ? "DROP TRIGGER sync_clients_owner ON clients"
				: "DROP TRIGGER sync_clients_owner",
	  0, NULL);
	X(c, "DROP INDEX idx_clients_owner", 0, NULL);
	X(c, "ALTER TABLE clients DROP COLUMN owner_id", 0, NULL);
	X(c, "ALTER TABLE networks DROP COLUMN mfa_required", 0, NULL);
	X(c, "ALTER TABLE networks DROP COLUMN mfa_session_hours", 0, NULL);
	X(c, "DELETE FROM schema_migrations WHERE version = 12", 0, NULL);
}

/* Migration 13 (passkeys) undone. */
static void undo_migration_14(struct sg_db_conn *c)
{
	X(c, "DROP INDEX idx_audit_event_id", 0, NULL);
	X(c, "DROP INDEX idx_audit_actor_id", 0, NULL);
	X(c, "DROP INDEX idx_audit_resource_id", 0, NULL);
	X(c, "CREATE INDEX idx_audit_event_ts ON audit_log(event_type, ts)", 0, NULL);
	X(c, "CREATE INDEX idx_audit_actor_ts ON audit_log(actor_id, ts)", 0, NULL);
	X(c, "DELETE FROM schema_migrations WHERE version = 14", 0, NULL);
}

static void undo_migration_13(struct sg_db_conn *c)
{
	X(c, "DROP TABLE webauthn_challenges", 0, NULL);
	X(c, "DROP TABLE passkeys", 0, NULL);
	X(c, "DELETE FROM schema_migrations WHERE version = 13", 0, NULL);
}

static void test_open_migrate(void **state)
{
	struct fx *fx = *state;
	struct sg_db *db = fx_open(fx, 2);
	struct sg_db_conn *c;
	struct sg_db_res *r = NULL;
	struct stat st;

	assert_int_equal(sg_db_engine(db), fx->eng);
	assert_int_equal(sg_db_schema_version(db), db_schema_latest());
	c = sg_db_acquire(db);
	assert_int_equal(sg_db_conn_engine(c), fx->eng);
	assert_string_equal(one(c, &r, "SELECT instance_name FROM settings WHERE id = 1", 0, NULL),
			    "SecureGuard");
	sg_db_res_free(r);
	assert_int_equal(count(c, "SELECT fips_required FROM settings"), 1);
	/* Every table of the contract exists and is empty. */
	static const char *const tables[] = {"networks",	"admin_users",	  "temp_access",
					     "clients",		"refresh_tokens", "api_keys",
					     "client_sessions", "audit_log",	  "connection_log"};
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		char sql[96];

		snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s", tables[i]);
		assert_int_equal(count(c, sql), 0);
	}
	if (fx->eng == SG_DB_SQLITE) {
		assert_string_equal(one(c, &r, "PRAGMA journal_mode", 0, NULL), "wal");
		sg_db_res_free(r);
		assert_int_equal(count(c, "PRAGMA foreign_keys"), 1);
		assert_int_equal(stat(fx->path, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
	}
	sg_db_release(c);
	sg_db_close(db);

	/* Reopening applies nothing twice. */
	db = fx_open(fx, 1);
	c = sg_db_acquire(db);
	assert_int_equal(count(c, "SELECT COUNT(*) FROM schema_migrations"), db_schema_latest());
	assert_int_equal(count(c, "SELECT COUNT(*) FROM settings"), 1);

	/* A database left at version 1 is brought to the newest by the next open: what
	 * migrations 2 to 14 made is undone first (10 changed a function that 3 makes again). */
	undo_migration_14(c);
	undo_migration_13(c);
	undo_migration_12(c, fx->eng);
	X(c, "DROP TABLE services", 0, NULL);
	X(c, "DELETE FROM schema_migrations WHERE version = 11", 0, NULL);
	X(c, "DELETE FROM schema_migrations WHERE version = 10", 0, NULL);
	X(c, "DROP TABLE oidc_codes", 0, NULL);
	X(c, "DROP TABLE oidc_sessions", 0, NULL);
	X(c, "DELETE FROM schema_migrations WHERE version = 9", 0, NULL);
	undo_migration_8(c);
	X(c, "DROP INDEX idx_networks_name_key", 0, NULL);
	X(c, "ALTER TABLE networks DROP COLUMN name_key", 0, NULL);
	X(c, "DELETE FROM schema_migrations WHERE version = 7", 0, NULL);
	X(c, "DROP TABLE targets", 0, NULL);
	X(c, "DROP TABLE resources", 0, NULL);
	X(c, "DROP TABLE sites", 0, NULL);
	/* enrollment_tokens.gateway_id refers to it (PostgreSQL drops that constraint). */
	X(c, fx->eng == SG_DB_POSTGRES ? "DROP TABLE gateways CASCADE" : "DROP TABLE gateways", 0,
	  NULL);
	X(c, "DELETE FROM schema_migrations WHERE version = 6", 0, NULL);
	X(c, "DROP TABLE login_failures", 0, NULL);
	X(c, "DROP TABLE login_known", 0, NULL);
	X(c, "ALTER TABLE admin_users DROP COLUMN token_gen", 0, NULL);
	X(c, "DELETE FROM schema_migrations WHERE version = 5", 0, NULL);
	X(c, "DROP INDEX clients_network_pub_classic", 0, NULL);
	X(c, "DROP INDEX clients_network_pub_fips", 0, NULL);
	if (fx->eng == SG_DB_SQLITE) {
		X(c, "DROP TRIGGER audit_log_append_only", 0, NULL);
	} else {
		X(c, "DROP TRIGGER audit_log_append_only ON audit_log", 0, NULL);
		X(c, "DROP FUNCTION sg_audit_log_next_id()", 0, NULL);
	}
	X(c, "DELETE FROM schema_migrations WHERE version = 4", 0, NULL);
	X(c, "DROP TABLE agent_tunnels", 0, NULL);
	X(c, "DROP TABLE agent_sessions", 0, NULL);
	X(c, "DROP TABLE agents", 0, NULL);
	X(c, "DROP TABLE enrollment_tokens", 0, NULL);
	X(c, "DROP TABLE policies", 0, NULL);
	X(c, "DROP TABLE sync_state", 0, NULL);
	if (fx->eng == SG_DB_SQLITE) {
		static const char *const ops[] = {"INSERT", "DELETE", "UPDATE"};

		for (size_t i = 0; i < 3; i++) {
			char sql[96];

			snprintf(sql, sizeof(sql), "DROP TRIGGER sync_clients_%s", ops[i]);
			X(c, sql, 0, NULL);
			snprintf(sql, sizeof(sql), "DROP TRIGGER sync_networks_%s", ops[i]);
			X(c, sql, 0, NULL);
		}
	} else {
		X(c, "DROP TRIGGER sync_clients ON clients", 0, NULL);
		X(c, "DROP TRIGGER sync_networks ON networks", 0, NULL);
		X(c, "DROP FUNCTION sg_sync_bump()", 0, NULL);
	}
	X(c, "ALTER TABLE clients DROP COLUMN online", 0, NULL);
	X(c, "ALTER TABLE clients DROP COLUMN bytes_sent", 0, NULL);
	X(c, "ALTER TABLE clients DROP COLUMN bytes_received", 0, NULL);
	X(c, "DELETE FROM schema_migrations WHERE version = 3", 0, NULL);
	X(c, "DROP INDEX idx_clients_network_relay", 0, NULL);
	X(c, "DROP INDEX idx_clients_network_created", 0, NULL);
	X(c, "DROP INDEX idx_clients_created", 0, NULL);
	X(c, "DROP INDEX idx_clients_pub_classic", 0, NULL);
	X(c, "DROP INDEX idx_clients_pub_fips", 0, NULL);
	X(c, "DROP INDEX idx_clients_temp_access", 0, NULL);
	X(c, "DROP INDEX idx_temp_access_network", 0, NULL);
	X(c, "DROP INDEX idx_refresh_tokens_user", 0, NULL);
	X(c, "DROP INDEX idx_refresh_tokens_family", 0, NULL);
	X(c, "DROP INDEX idx_api_keys_user", 0, NULL);
	X(c, "DROP INDEX idx_client_sessions_client", 0, NULL);
	X(c, "DELETE FROM schema_migrations WHERE version = 2", 0, NULL);
	sg_db_release(c);
	sg_db_close(db);
	db = fx_open(fx, 1);
	assert_int_equal(sg_db_schema_version(db), db_schema_latest());
	c = sg_db_acquire(db);
	X(c, "DROP INDEX idx_clients_network_relay", 0, NULL); /* exists again */
	X(c, "DROP INDEX clients_network_pub_classic", 0, NULL);

	/* A database from a newer server is refused rather than used. */
	X(c, "INSERT INTO schema_migrations (version, applied_at) VALUES (99, 0)", 0, NULL);
	sg_db_release(c);
	sg_db_close(db);
	{
		char err[256];

		db = (struct sg_db *)1;
		assert_int_equal(sg_db_open(&db, fx->url, 1, err, sizeof(err)), SG_EUNSUPPORTED);
		assert_null(db);
		assert_non_null(strstr(err, "version 99 is newer"));
	}
}

struct opener {
	struct fx *fx;
	int ret;
	char err[256];
	struct sg_db *db;
};

static void *open_thread(void *arg)
{
	struct opener *o = arg;

	o->ret = sg_db_open(&o->db, o->fx->url, 1, o->err, sizeof(o->err));
	return NULL;
}

static void test_concurrent_open(void **state)
{
	struct fx *fx = *state;
	struct opener o[4];
	pthread_t t[4];
	struct sg_db *db;
	struct sg_db_conn *c;
	int i;

	/* Several servers starting together on an empty database. */
	for (i = 0; i < 4; i++) {
		memset(&o[i], 0, sizeof(o[i]));
		o[i].fx = fx;
		assert_int_equal(pthread_create(&t[i], NULL, open_thread, &o[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		if (o[i].ret)
			fprintf(stderr, "opener %d: %d %s\n", i, o[i].ret, o[i].err);
		assert_int_equal(o[i].ret, 0);
	}
	for (i = 0; i < 4; i++)
		sg_db_close(o[i].db);
	db = fx_open(fx, 1);
	c = sg_db_acquire(db);
	assert_int_equal(count(c, "SELECT COUNT(*) FROM schema_migrations"), db_schema_latest());
	assert_int_equal(count(c, "SELECT COUNT(*) FROM settings"), 1);
	sg_db_release(c);
	sg_db_close(db);
}

static void test_params_nulls(void **state)
{
	struct fx *fx = *state;
	struct sg_db *db = fx_open(fx, 1);
	struct sg_db_conn *c = sg_db_acquire(db);
	struct sg_db_res *r = NULL;
	const char *p[4];
	int ret;

	p[0] = "n1";
	p[1] = "net one";
	p[2] = NULL;
	p[3] = "";
	X(c,
	  "INSERT INTO networks (id, name, subnet6, dns_servers, created_at, updated_at) "
	  "VALUES ($1, $2, $3, $4, 7, 7)",
	  4, p);
	ret = sg_db_query(c, &r,
			  "SELECT id, name, subnet6, dns_servers, mtu, created_at, "
			  "'it''s $1' AS lit FROM networks WHERE id = $1",
			  1, p);
	assert_int_equal(ret, 1);
	assert_int_equal(sg_db_res_rows(r), 1);
	assert_int_equal(sg_db_res_cols(r), 7);
	assert_string_equal(sg_db_res_colname(r, 0), "id");
	assert_string_equal(sg_db_res_colname(r, 6), "lit");
	assert_null(sg_db_res_colname(r, 7));
	assert_null(sg_db_res_colname(r, -1));
	assert_string_equal(sg_db_res_get(r, 0, 1), "net one");
	assert_null(sg_db_res_get(r, 0, 2));		 /* SQL NULL */
	assert_string_equal(sg_db_res_get(r, 0, 3), ""); /* empty string, not NULL */
	assert_null(sg_db_res_get(r, 0, 4));		 /* mtu defaults to NULL */
	assert_string_equal(sg_db_res_get(r, 0, 5), "7");
	assert_string_equal(sg_db_res_get(r, 0, 6), "it's $1");
	assert_null(sg_db_res_get(r, 1, 0));
	assert_null(sg_db_res_get(r, 0, 7));
	sg_db_res_free(r);

	/* A numeric comparison and LIMIT with text parameters; $1 used twice. */
	add_network(c, "n2", "two");
	add_network(c, "n3", "three");
	p[0] = "50";
	ret = sg_db_query(c, &r,
			  "SELECT id FROM networks WHERE created_at > $1 OR created_at < $1 - 40 "
			  "ORDER BY id LIMIT $1",
			  1, p);
	assert_int_equal(ret, 3);
	assert_string_equal(sg_db_res_get(r, 2, 0), "n3");
	sg_db_res_free(r);
	p[0] = "1";
	assert_int_equal(sg_db_query(c, &r, "SELECT id FROM networks ORDER BY id LIMIT $1", 1, p),
			 1);
	sg_db_res_free(r);
	/* No rows: a result with columns and zero rows. */
	p[0] = "nope";
	assert_int_equal(sg_db_query(c, &r, "SELECT id, name FROM networks WHERE id = $1", 1, p),
			 0);
	assert_int_equal(sg_db_res_cols(r), 2);
	assert_null(sg_db_res_get(r, 0, 0));
	sg_db_res_free(r);

	/* Rows changed. */
	p[0] = "1000";
	assert_int_equal(sg_db_exec(c, "UPDATE networks SET updated_at = $1", 1, p), 3);
	p[0] = "n9";
	assert_int_equal(sg_db_exec(c, "UPDATE networks SET mtu = 1280 WHERE id = $1", 1, p), 0);
	assert_int_equal(sg_db_exec(c, "CREATE TABLE scratch (a TEXT)", 0, NULL), 0);
	p[0] = "n3";
	assert_int_equal(sg_db_exec(c, "DELETE FROM networks WHERE id = $1", 1, p), 1);
	/* sg_db_query on a statement without rows. */
	p[0] = "n2";
	assert_int_equal(sg_db_query(c, &r, "UPDATE networks SET mtu = 1400 WHERE id = $1", 1, p),
			 0);
	assert_int_equal(sg_db_res_rows(r), 0);
	sg_db_res_free(r);
	/* RETURNING gives rows back on both engines. */
	assert_int_equal(sg_db_query(c, &r,
				     "UPDATE networks SET mtu = 1380 WHERE id = $1 "
				     "RETURNING mtu",
				     1, p),
			 1);
	assert_string_equal(sg_db_res_get(r, 0, 0), "1380");
	sg_db_res_free(r);

	/* Values with quotes, unicode and 64 KiB survive. */
	{
		size_t big = 65536;
		char *v = malloc(big + 1);

		assert_non_null(v);
		for (size_t i = 0; i < big; i++)
			v[i] = (char)('a' + i % 26);
		v[big] = '\0';
		static const char head[] = "O'Brien \"x\" \xc3\xa9 ";

		memcpy(v, head, sizeof(head) - 1);
		p[0] = "n1";
		p[1] = v;
		X(c, "UPDATE networks SET dns_servers = $2 WHERE id = $1", 2, p);
		assert_string_equal(
		    one(c, &r, "SELECT dns_servers FROM networks WHERE id = $1", 1, p), v);
		sg_db_res_free(r);
		free(v);
	}
	sg_db_release(c);
	sg_db_close(db);
}

static void test_constraints(void **state)
{
	struct fx *fx = *state;
	struct sg_db *db = fx_open(fx, 1);
	struct sg_db_conn *c = sg_db_acquire(db);
	const char *p[4];

	add_network(c, "n1", "office");
	/* UNIQUE (name), PRIMARY KEY. */
	p[0] = "n2";
	p[1] = "office";
	assert_int_equal(sg_db_exec(c,
				    "INSERT INTO networks (id, name, created_at, updated_at) "
				    "VALUES ($1, $2, 1, 1)",
				    2, p),
			 SG_EEXIST);
	assert_true(strlen(sg_db_errmsg(c)) > 0);
	p[0] = "n1";
	p[1] = "other";
	assert_int_equal(sg_db_exec(c,
				    "INSERT INTO networks (id, name, created_at, updated_at) "
				    "VALUES ($1, $2, 1, 1)",
				    2, p),
			 SG_EEXIST);
	/* FOREIGN KEY. */
	p[0] = "c1";
	p[1] = "missing-network";
	assert_int_equal(sg_db_exec(c,
				    "INSERT INTO clients (id, network_id, name, created_at, "
				    "updated_at) VALUES ($1, $2, 'x', 1, 1)",
				    2, p),
			 SG_EEXIST);
	/* UNIQUE (network_id, assigned_ip4). */
	p[1] = "n1";
	p[2] = "10.0.0.2";
	X(c,
	  "INSERT INTO clients (id, network_id, name, assigned_ip4, created_at, updated_at) "
	  "VALUES ($1, $2, 'a', $3, 1, 1)",
	  3, p);
	p[0] = "c2";
	assert_int_equal(sg_db_exec(c,
				    "INSERT INTO clients (id, network_id, name, assigned_ip4, "
				    "created_at, updated_at) VALUES ($1, $2, 'b', $3, 1, 1)",
				    3, p),
			 SG_EEXIST);
	/* Two clients without an IPv4 address: NULLs are distinct in a UNIQUE constraint. */
	p[2] = NULL;
	X(c,
	  "INSERT INTO clients (id, network_id, name, assigned_ip4, created_at, updated_at) "
	  "VALUES ($1, $2, 'b', $3, 1, 1)",
	  3, p);
	p[0] = "c3";
	X(c,
	  "INSERT INTO clients (id, network_id, name, assigned_ip4, created_at, updated_at) "
	  "VALUES ($1, $2, 'c', $3, 1, 1)",
	  3, p);
	/* CHECK. */
	p[0] = "u1";
	p[1] = "root";
	assert_int_equal(sg_db_exec(c,
				    "INSERT INTO admin_users (id, email, password_hash, role, "
				    "created_at) VALUES ($1, 'a@b', 'h', $2, 1)",
				    2, p),
			 SG_EEXIST);
	assert_int_equal(sg_db_exec(c,
				    "INSERT INTO settings (id, instance_name, created_at, "
				    "updated_at) VALUES (2, 'x', 1, 1)",
				    0, NULL),
			 SG_EEXIST);
	/* NOT NULL is a caller bug, not a conflict. */
	assert_int_equal(sg_db_exec(c,
				    "INSERT INTO networks (id, name, created_at, updated_at) "
				    "VALUES ('n5', NULL, 1, 1)",
				    0, NULL),
			 SG_EINVAL);
	/* ON DELETE CASCADE. */
	p[0] = "n1";
	assert_int_equal(sg_db_exec(c, "DELETE FROM networks WHERE id = $1", 1, p), 1);
	assert_int_equal(count(c, "SELECT COUNT(*) FROM clients"), 0);
	sg_db_release(c);
	sg_db_close(db);
}

static void test_bad_sql(void **state)
{
	struct fx *fx = *state;
	struct sg_db *db = fx_open(fx, 1);
	struct sg_db_conn *c = sg_db_acquire(db);
	struct sg_db_res *r = (struct sg_db_res *)1;
	const char *p[2] = {"a", "b"};

	assert_int_equal(sg_db_exec(c, "SELEC 1", 0, NULL), SG_EINVAL);
	assert_non_null(strstr(sg_db_errmsg(c), "syntax"));
	assert_int_equal(sg_db_query(c, &r, "SELECT * FROM no_such_table", 0, NULL), SG_EINVAL);
	assert_null(r);
	assert_non_null(strstr(sg_db_errmsg(c), "no_such_table"));
	assert_int_equal(sg_db_exec(c, "SELECT 1; SELECT 2", 0, NULL), SG_EINVAL);
	assert_int_equal(sg_db_exec(c, "", 0, NULL), SG_EINVAL);
	assert_int_equal(sg_db_exec(c, "   ", 0, NULL), SG_EINVAL);
	assert_int_equal(sg_db_exec(c, NULL, 0, NULL), SG_EINVAL);
	/* Placeholders without values, and a parameter count out of range. */
	assert_int_equal(sg_db_exec(c, "SELECT $2", 1, p), SG_EINVAL);
	assert_true(strlen(sg_db_errmsg(c)) > 0);
	assert_int_equal(sg_db_exec(c, "SELECT $1", -1, p), SG_EINVAL);
	assert_int_equal(sg_db_exec(c, "SELECT $1", SG_DB_MAX_PARAMS + 1, p), SG_EINVAL);
	assert_int_equal(sg_db_exec(c, "SELECT $1", 1, NULL), SG_EINVAL);
	if (fx->eng == SG_DB_SQLITE) {
		assert_int_equal(sg_db_exec(c, "SELECT ?", 1, p), SG_EINVAL);
		assert_int_equal(sg_db_exec(c, "SELECT :name", 1, p), SG_EINVAL);
	}
	/* The connection still works, and the error message is cleared by the next call. */
	assert_string_equal(one(c, &r, "SELECT $1 || $2", 2, p), "ab");
	sg_db_res_free(r);
	sg_db_release(c);
	sg_db_close(db);
}

/* Statements run again (SQLite keeps them prepared, db_sqlite.c): more distinct ones than the
 * cache holds, each reused with other values, after a schema change under them, and after an
 * error in the middle of one; a value bound in place must not outlive its call. */
static void test_statement_reuse(void **state)
{
	struct fx *fx = *state;
	struct sg_db *db = fx_open(fx, 1);
	struct sg_db_conn *c = sg_db_acquire(db);
	struct sg_db_res *r = NULL;
	char sql[64], v[24], want[48];
	const char *p[1] = {v};

	assert_int_equal(sg_db_exec(c, "CREATE TABLE t (k INTEGER PRIMARY KEY, s TEXT)", 0, NULL),
			 0);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 100; i++) {
			snprintf(sql, sizeof(sql), "SELECT $1 || '-%d'", i);
			snprintf(v, sizeof(v), "r%d", round);
			snprintf(want, sizeof(want), "r%d-%d", round, i);
			assert_string_equal(one(c, &r, sql, 1, p), want);
			sg_db_res_free(r);
		}
	}
	for (int i = 0; i < 5; i++) {
		snprintf(v, sizeof(v), "%d", i);
		assert_int_equal(sg_db_exec(c, "INSERT INTO t (k, s) VALUES ($1, 'x')", 1, p), 1);
	}
	assert_int_equal(sg_db_query(c, &r, "SELECT * FROM t ORDER BY k", 0, NULL), 5);
	assert_int_equal(sg_db_res_cols(r), 2);
	sg_db_res_free(r);
	assert_int_equal(sg_db_exec(c, "ALTER TABLE t ADD COLUMN u TEXT", 0, NULL), 0);
	assert_int_equal(sg_db_query(c, &r, "SELECT * FROM t ORDER BY k", 0, NULL), 5);
	assert_int_equal(sg_db_res_cols(r), 3);
	sg_db_res_free(r);
	/* A unique violation at the second row: the statement is whole again for the next run. */
	snprintf(v, sizeof(v), "3");
	assert_int_equal(sg_db_exec(c, "INSERT INTO t (k, s) VALUES ($1, 'x')", 1, p), SG_EEXIST);
	snprintf(v, sizeof(v), "9");
	assert_int_equal(sg_db_exec(c, "INSERT INTO t (k, s) VALUES ($1, 'x')", 1, p), 1);
	assert_string_equal(one(c, &r, "SELECT COUNT(*) FROM t", 0, NULL), "6");
	sg_db_res_free(r);
	sg_db_release(c);
	sg_db_close(db);
}

/* A statement kept prepared whose result's columns change under it (a migration by another
 * server; here another connection): outside a transaction it answers as if run afresh; inside
 * one on PostgreSQL, whose error ended the transaction, the caller is told to redo it
 * (SG_EAGAIN, as srv_tx does), and the redone transaction answers. SQLite prepares it again
 * by itself. */
static void test_statement_stale(void **state)
{
	struct fx *fx = *state;
	struct sg_db *db = fx_open(fx, 2);
	struct sg_db_conn *a = sg_db_acquire(db), *b = sg_db_acquire(db);
	struct sg_db_res *r = NULL;
	int rc;

	assert_int_equal(sg_db_exec(a, "CREATE TABLE t (k INTEGER PRIMARY KEY, s TEXT)", 0, NULL),
			 0);
	assert_int_equal(sg_db_exec(a, "INSERT INTO t (k, s) VALUES (1, 'x')", 0, NULL), 1);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(sg_db_query(a, &r, "SELECT * FROM t", 0, NULL), 1);
		assert_int_equal(sg_db_res_cols(r), 2);
		sg_db_res_free(r);
	}
	assert_int_equal(sg_db_exec(b, "ALTER TABLE t ADD COLUMN u TEXT", 0, NULL), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(sg_db_query(a, &r, "SELECT * FROM t", 0, NULL), 1);
		assert_int_equal(sg_db_res_cols(r), 3);
		sg_db_res_free(r);
	}
	assert_int_equal(sg_db_exec(b, "ALTER TABLE t ADD COLUMN v TEXT", 0, NULL), 0);
	assert_int_equal(sg_db_begin(a), 0);
	rc = sg_db_query(a, &r, "SELECT * FROM t", 0, NULL);
	if (fx->eng == SG_DB_POSTGRES) {
		assert_int_equal(rc, SG_EAGAIN);
		assert_null(r);
		sg_db_rollback(a);
		assert_int_equal(sg_db_begin(a), 0);
		rc = sg_db_query(a, &r, "SELECT * FROM t", 0, NULL);
	}
	assert_int_equal(rc, 1);
	assert_int_equal(sg_db_res_cols(r), 4);
	sg_db_res_free(r);
	assert_int_equal(sg_db_commit(a), 0);
	assert_string_equal(one(a, &r, "SELECT s FROM t WHERE k = 1", 0, NULL), "x");
	sg_db_res_free(r);
	sg_db_release(b);
	sg_db_release(a);
	sg_db_close(db);
}

static void test_transactions(void **state)
{
	struct fx *fx = *state;
	struct sg_db *db = fx_open(fx, 2);
	struct sg_db_conn *c = sg_db_acquire(db);

	assert_int_equal(sg_db_begin(c), 0);
	assert_int_equal(sg_db_begin(c), SG_EINVAL); /* no nesting */
	add_network(c, "n1", "one");
	sg_db_rollback(c);
	assert_int_equal(count(c, "SELECT COUNT(*) FROM networks"), 0);
	sg_db_rollback(c); /* harmless outside a transaction */
	assert_int_equal(sg_db_commit(c), SG_EINVAL);

	assert_int_equal(sg_db_begin(c), 0);
	add_network(c, "n1", "one");
	assert_int_equal(sg_db_commit(c), 0);
	assert_int_equal(count(c, "SELECT COUNT(*) FROM networks"), 1);

	/* A failed statement inside a transaction, then rollback: the connection recovers
	 * (PostgreSQL refuses everything in an aborted transaction until then). */
	assert_int_equal(sg_db_begin(c), 0);
	add_network(c, "n2", "two");
	assert_int_equal(sg_db_exec(c,
				    "INSERT INTO networks (id, name, created_at, updated_at) "
				    "VALUES ('n3', 'one', 1, 1)",
				    0, NULL),
			 SG_EEXIST);
	sg_db_rollback(c);
	assert_int_equal(count(c, "SELECT COUNT(*) FROM networks"), 1);

	/* Release rolls back a transaction left open. */
	assert_int_equal(sg_db_begin(c), 0);
	add_network(c, "n4", "four");
	sg_db_release(c);
	c = sg_db_acquire(db);
	assert_int_equal(count(c, "SELECT COUNT(*) FROM networks"), 1);
	assert_int_equal(sg_db_begin(c), 0); /* and the connection is idle again */
	assert_int_equal(sg_db_commit(c), 0);
	sg_db_release(c);
	sg_db_close(db);
}

/* Two connections write the same row from overlapping snapshots: the second must get
 * SG_EAGAIN (SQLITE_BUSY_SNAPSHOT; PG 40001) so that the caller retries. */
static void test_conflict_eagain(void **state)
{
	struct fx *fx = *state;
	struct sg_db *db = fx_open(fx, 2);
	struct sg_db_conn *a = sg_db_acquire(db), *b = sg_db_acquire(db);
	int ret;

	add_network(a, "n1", "one");
	X(a, fx->eng == SG_DB_SQLITE ? "BEGIN DEFERRED" : "BEGIN ISOLATION LEVEL REPEATABLE READ",
	  0, NULL);
	assert_int_equal(count(a, "SELECT COUNT(*) FROM networks WHERE id = 'n1' AND mtu IS NULL"),
			 1);
	assert_int_equal(sg_db_begin(b), 0);
	X(b, "UPDATE networks SET mtu = 1 WHERE id = 'n1'", 0, NULL);
	assert_int_equal(sg_db_commit(b), 0);
	ret = sg_db_exec(a, "UPDATE networks SET mtu = 2 WHERE id = 'n1'", 0, NULL);
	assert_int_equal(ret, SG_EAGAIN);
	sg_db_rollback(a);
	assert_int_equal(count(a, "SELECT mtu FROM networks WHERE id = 'n1'"), 1);
	sg_db_release(b);
	sg_db_release(a);
	sg_db_close(db);
}

struct worker {
	struct sg_db *db;
	int id, done, retries;
};

#define THREADS	   8
#define PER_THREAD 40

static void *worker(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < PER_THREAD; i++) {
		char id[32], name[32];
		const char *p[2] = {id, name};
		int ret;

		snprintf(id, sizeof(id), "t%d-%d", w->id, i);
		snprintf(name, sizeof(name), "net %d/%d", w->id, i);
		do {
			struct sg_db_conn *c = sg_db_acquire(w->db);

			ret = sg_db_begin(c);
			if (ret == 0)
				ret = sg_db_exec(c,
						 "INSERT INTO networks (id, name, created_at, "
						 "updated_at) VALUES ($1, $2, 1, 1)",
						 2, p);
			if (ret >= 0)
				ret = sg_db_exec(
				    c, "UPDATE settings SET updated_at = updated_at + 1", 0, NULL);
			if (ret >= 0)
				ret = sg_db_commit(c);
			if (ret == SG_EAGAIN)
				w->retries++;
			sg_db_release(c);
		} while (ret == SG_EAGAIN);
		if (ret >= 0)
			w->done++;
	}
	return NULL;
}

static void test_pool_threads(void **state)
{
	struct fx *fx = *state;
	struct sg_db *db = fx_open(fx, 4);
	struct worker w[THREADS];
	pthread_t t[THREADS];
	struct sg_db_conn *c;
	long before;
	int i;

	c = sg_db_acquire(db);
	before = count(c, "SELECT updated_at FROM settings");
	sg_db_release(c);
	for (i = 0; i < THREADS; i++) {
		w[i] = (struct worker){.db = db, .id = i};
		assert_int_equal(pthread_create(&t[i], NULL, worker, &w[i]), 0);
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].done, PER_THREAD);
	}
	c = sg_db_acquire(db);
	assert_int_equal(count(c, "SELECT COUNT(*) FROM networks"), THREADS * PER_THREAD);
	assert_int_equal(count(c, "SELECT updated_at FROM settings"),
			 before + THREADS * PER_THREAD);
	sg_db_release(c);
	sg_db_close(db);
}

static void test_pg_reconnect(void **state)
{
	struct fx *fx = *state;
	struct sg_db *db;
	struct sg_db_conn *a, *b, *again;
	struct sg_db_res *r = NULL;
	char pid[32], pid2[32];
	const char *p[1] = {pid};

	if (fx->eng != SG_DB_POSTGRES)
		skip();
	db = fx_open(fx, 2);
	a = sg_db_acquire(db);
	b = sg_db_acquire(db);
	/* Twice: the second run keeps it prepared (db_pg.c), on a session about to go. */
	for (int i = 0; i < 2; i++) {
		snprintf(pid, sizeof(pid), "%s", one(a, &r, "SELECT pg_backend_pid()", 0, NULL));
		sg_db_res_free(r);
	}
	assert_string_equal(one(b, &r, "SELECT pg_terminate_backend($1)", 1, p), "t");
	sg_db_res_free(r);
	/* A SELECT outside a transaction on the killed session is sent again on a new one (the
	 * database restarted or failed over: nothing can run twice)... */
	snprintf(pid2, sizeof(pid2), "%s", one(a, &r, "SELECT pg_backend_pid()", 0, NULL));
	sg_db_res_free(r);
	assert_string_not_equal(pid, pid2);
	/* ...but a statement inside a transaction is not: its work went with the session. */
	assert_int_equal(sg_db_begin(a), 0);
	snprintf(pid, sizeof(pid), "%s", pid2);
	assert_string_equal(one(b, &r, "SELECT pg_terminate_backend($1)", 1, p), "t");
	sg_db_res_free(r);
	assert_int_equal(sg_db_exec(a, "SELECT 1", 0, NULL), SG_EIO);
	assert_true(strlen(sg_db_errmsg(a)) > 0);
	sg_db_release(a);
	/* The connection is reconnected when it is taken from the pool again. */
	again = sg_db_acquire(db);
	assert_ptr_equal(again, a);
	assert_string_equal(one(again, &r, "SELECT 41 + 1", 0, NULL), "42");
	sg_db_res_free(r);
	sg_db_release(again);

	/* Both sessions killed (a restart): the first connection that finds its session lost
	 * marks the pool, and the other is remade when next taken instead of failing a
	 * statement first (a CREATE is never sent twice, so it would have failed). */
	snprintf(pid, sizeof(pid), "%s", one(b, &r, "SELECT pg_backend_pid()", 0, NULL));
	sg_db_res_free(r);
	again = sg_db_acquire(db);
	assert_string_equal(one(again, &r, "SELECT pg_terminate_backend($1)", 1, p), "t");
	sg_db_res_free(r);
	sg_db_release(b);
	assert_int_equal(sg_db_exec(again, "SELECT pg_terminate_backend(pg_backend_pid())", 0,
				    NULL),
			 SG_EIO);
	/* again's loss moved the pool's epoch: b is remade when taken. */
	b = sg_db_acquire(db);
	assert_int_equal(sg_db_exec(b, "CREATE TEMP TABLE t_reconnect (x INTEGER)", 0, NULL), 0);
	sg_db_release(b);
	sg_db_release(again);
	sg_db_close(db);
}

/* Migration 7: e-mail addresses and network names that collide once case-folded. Of the
 * accounts, the highest role keeps the folded address and the others are disabled; of the
 * networks, the oldest keeps the name and the others get " (2)"; each change audited. */
static void test_migration_fold(void **state)
{
	struct fx *fx = *state;
	struct sg_db *db = fx_open(fx, 1);
	struct sg_db_conn *c = sg_db_acquire(db);
	struct sg_db_res *r = NULL;

	/* The migrations after 7 undone first (a database never runs a version below its
	 * newest): 14, 13, 12, 11, 10 (nothing to undo), 9, then 8. */
	undo_migration_14(c);
	undo_migration_13(c);
	undo_migration_12(c, fx->eng);
	X(c, "DROP TABLE services", 0, NULL);
	X(c, "ALTER TABLE gateways DROP COLUMN expose", 0, NULL);
	X(c, "DELETE FROM schema_migrations WHERE version = 11", 0, NULL);
	X(c, "DELETE FROM schema_migrations WHERE version = 10", 0, NULL);
	X(c, "DROP TABLE oidc_codes", 0, NULL);
	X(c, "DROP TABLE oidc_sessions", 0, NULL);
	X(c, "DELETE FROM schema_migrations WHERE version = 9", 0, NULL);
	undo_migration_8(c);
	X(c, "DROP INDEX idx_networks_name_key", 0, NULL);
	X(c, "ALTER TABLE networks DROP COLUMN name_key", 0, NULL);
	X(c, "DELETE FROM schema_migrations WHERE version = 7", 0, NULL);
	X(c,
	  "INSERT INTO admin_users (id, email, password_hash, role, enabled, failed_logins, "
	  "created_at) VALUES ('u1', 'View@Example.com', 'x', 'viewer', 1, 0, 1), "
	  "('u2', 'view@example.COM', 'x', 'super_admin', 1, 0, 2), "
	  "('u3', 'Other@Example.com', 'x', 'admin', 1, 0, 3)",
	  0, NULL);
	X(c,
	  "INSERT INTO networks (id, name, subnet4, dns_servers, fips_required, created_at, "
	  "updated_at) VALUES ('n1', 'Office', '10.1.0.0/24', '', 1, 1, 1), "
	  "('n2', 'office', '10.2.0.0/24', '', 1, 2, 2), "
	  "('n3', 'Caf\xc3\xa9', '10.3.0.0/24', '', 1, 3, 3), "
	  "('n4', 'CAFE\xcc\x81', '10.4.0.0/24', '', 1, 4, 4)",
	  0, NULL);
	sg_db_release(c);
	sg_db_close(db);

	db = fx_open(fx, 1);
	assert_int_equal(sg_db_schema_version(db), db_schema_latest());
	c = sg_db_acquire(db);
	/* The super_admin keeps the address (folded), the viewer is disabled. */
	assert_string_equal(one(c, &r, "SELECT email FROM admin_users WHERE id = 'u2'", 0, NULL),
			    "view@example.com");
	sg_db_res_free(r);
	assert_int_equal(count(c, "SELECT enabled FROM admin_users WHERE id = 'u2'"), 1);
	assert_int_equal(count(c, "SELECT enabled FROM admin_users WHERE id = 'u1'"), 0);
	assert_string_equal(one(c, &r, "SELECT email FROM admin_users WHERE id = 'u3'", 0, NULL),
			    "other@example.com");
	sg_db_res_free(r);
	/* The older network keeps its name; the other is renamed; composed and decomposed
	 * accents are one name. */
	assert_string_equal(one(c, &r, "SELECT name FROM networks WHERE id = 'n1'", 0, NULL),
			    "Office");
	sg_db_res_free(r);
	assert_string_equal(one(c, &r, "SELECT name FROM networks WHERE id = 'n2'", 0, NULL),
			    "office (2)");
	sg_db_res_free(r);
	assert_string_equal(one(c, &r, "SELECT name FROM networks WHERE id = 'n4'", 0, NULL),
			    "CAFE\xcc\x81 (2)");
	sg_db_res_free(r);
	assert_string_equal(one(c, &r, "SELECT name_key FROM networks WHERE id = 'n3'", 0, NULL),
			    "caf\xc3\xa9");
	sg_db_res_free(r);
	assert_int_equal(count(c, "SELECT COUNT(*) FROM audit_log WHERE details LIKE "
				  "'%schema migration 7%'"),
			 5); /* u2 and u3 folded, u1 disabled, n2 and n4 renamed */
	/* The unique key holds from now on. */
	assert_int_equal(sg_db_exec(c,
				    "INSERT INTO networks (id, name, name_key, subnet4, dns_servers, "
				    "fips_required, created_at, updated_at) VALUES ('n5', 'OFFICE', "
				    "'office', '10.5.0.0/24', '', 1, 5, 5)",
				    0, NULL),
			 SG_EEXIST);
	sg_db_release(c);
	sg_db_close(db);
}

/* srv_row_json_text (list pages written as text) says the same as srv_row_json (jansson), for
 * every kind of column and for text that needs escaping. */
static void test_row_json_text(void **state)
{
	struct fx *fx = *state;
	struct sg_db *db = fx_open(fx, 1);
	struct sg_db_conn *c = sg_db_acquire(db);
	struct sg_db_res *res = NULL;
	const char *p[] = {"q\"uote \\ back\x01ctl\x1ftab\tnl\n\x7f del, ü€𝄞",
			   "10.0.0.0/8,,fd00::/64,a\"b", "-9007199254740991", "1", "0",
			   "{\"a\":[1,\"x\"]}"};
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	json_t *a, *b;

	assert_int_equal(sg_db_query(c, &res,
				     "SELECT $1 AS s, $2 AS l, $3 AS i, $4 AS b, $5 AS f, NULL AS n, "
				     "NULL AS nl, $6 AS j, $1 AS skipped",
				     6, p),
			 1);
	f = open_memstream(&text, &len);
	assert_non_null(f);
	srv_row_json_text(f, res, 0, "slibbslj-");
	assert_int_equal(fclose(f), 0);
	a = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(a);
	b = srv_row_json(res, 0, "slibbslj-");
	assert_true(json_equal(a, b));
	assert_int_equal(json_array_size(json_object_get(a, "l")), 3);
	assert_true(json_is_array(json_object_get(a, "nl")));
	assert_null(json_object_get(a, "skipped"));
	json_decref(a);
	json_decref(b);
	free(text);
	sg_db_res_free(res);
	sg_db_release(c);
	sg_db_close(db);
}

/* A damaged SQLite file is refused when it is opened, saying so, before anything uses it. */
static void test_damaged(void **state)
{
	struct fx *fx = *state;
	struct sg_db *db;
	struct sg_db_conn *c;
	char err[512], page[4096];
	struct stat st;
	int fd;

	if (fx->eng != SG_DB_SQLITE)
		skip();
	db = fx_open(fx, 1);
	c = sg_db_acquire(db);
	assert_true(sg_db_exec(c, "CREATE TABLE junk (x TEXT)", 0, NULL) >= 0);
	for (int i = 0; i < 64; i++)
		assert_int_equal(
		    sg_db_exec(c, "INSERT INTO junk VALUES (printf('%.500c', 'x'))", 0, NULL), 1);
	sg_db_release(c);
	sg_db_close(db); /* the last connection checkpoints the WAL into the file */
	/* The last pages (the new table's rows) overwritten: the schema reads, the rows do not;
	 * found by the check at open. */
	assert_int_equal(stat(fx->path, &st), 0);
	assert_true(st.st_size > 16 * 4096);
	memset(page, 0x5a, sizeof(page));
	fd = open(fx->path, O_WRONLY);
	assert_true(fd >= 0);
	for (off_t off = st.st_size - 3 * 4096; off < st.st_size; off += 4096)
		assert_int_equal(pwrite(fd, page, sizeof(page), off), (ssize_t)sizeof(page));
	assert_int_equal(sg_db_open(&db, fx->url, 1, err, sizeof(err)), SG_EIO);
	assert_non_null(strstr(err, "is damaged ("));
	assert_non_null(strstr(err, fx->path));
	assert_null(strchr(err, '\n'));
	/* Every page but the first (the header and the schema's start) overwritten. */
	for (off_t off = 4096; off < st.st_size; off += 4096)
		assert_int_equal(pwrite(fd, page, sizeof(page), off), (ssize_t)sizeof(page));
	close(fd);
	assert_int_equal(sg_db_open(&db, fx->url, 1, err, sizeof(err)), SG_EIO);
	assert_non_null(strstr(err, "is damaged ("));
}

#define T(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_bad_urls),	  T(test_open_migrate),	   T(test_concurrent_open),
	    T(test_params_nulls), T(test_constraints),	   T(test_bad_sql),
	    T(test_transactions), T(test_conflict_eagain), T(test_pool_threads),
	    T(test_pg_reconnect), T(test_row_json_text), T(test_migration_fold),
	    T(test_damaged),	  T(test_statement_reuse), T(test_statement_stale),
	};

	return fx_run("db", tests, sizeof(tests) / sizeof(tests[0]));
}
