/* Internals shared by db.c, db_sqlite.c, db_pg.c and schema.c; not part of the server API. */
#ifndef SG_SERVER_DB_INT_H
#define SG_SERVER_DB_INT_H

#include <pthread.h>
#include <stdbool.h>

#include "server/db.h"

struct db_ops {
	/* Opens the connection's handle from db->target; message in err. */
	int (*connect)(struct sg_db_conn *c, char *err, size_t errlen);
	void (*disconnect)(struct sg_db_conn *c);
	/* Reconnects a handle found broken (PG); 0 if it is usable. */
	int (*check)(struct sg_db_conn *c);
	/* Runs one statement; fills *res (if res is not NULL and the statement returns rows).
	 * Returns rows changed / rows returned, or negative SG_E* with c->errmsg set. */
	int (*run)(struct sg_db_conn *c, const char *sql, int n, const char *const *params,
		   struct sg_db_res **res);
	bool (*in_transaction)(const struct sg_db_conn *c);
	const char *begin_sql;
};

struct sg_db_conn {
	struct sg_db *db;
	void *h; /* sqlite3 * or PGconn * */
	bool busy;
	bool holds_writer; /* SQLite: this connection holds db->writer */
	unsigned epoch;	   /* PG: db->epoch when this connection was last (re)made */
	void *stmts;	   /* the engine's prepared statements of this connection */
	char errmsg[SG_DB_ERRMSG_LEN];
};

struct sg_db {
	enum sg_db_engine engine;
	const struct db_ops *ops;
	char *target; /* SQLite file path or the PG conninfo URI */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* SQLite only: writers of this process queue here before BEGIN IMMEDIATE, so they wake
	 * as soon as the previous transaction ends instead of sleeping in SQLite's busy handler
	 * (whose back-off of up to 100 ms would dominate p99 latency). busy_timeout still
	 * arbitrates between processes. */
	pthread_mutex_t writer;
	int n;
	struct sg_db_conn *conns;
	/* PG: moved when a connection that worked is found lost (the database restarted or
	 * failed over): every other connection of the pool is then remade when next taken,
	 * instead of each failing one request first. Atomic (__atomic builtins). */
	unsigned epoch;
	int waiting; /* threads in sg_db_acquire waiting for a connection (under mu) */
};

/* How long a SQLite writer waits for the process's writer lock; as busy_timeout. */
#define DB_WRITER_WAIT_S 10

extern const struct db_ops db_sqlite_ops;
extern const struct db_ops db_pg_ops;

/* Result building (db.c): values are copied into one growing text arena. */
struct sg_db_res *db_res_new(int cols);
int db_res_set_colname(struct sg_db_res *r, int col, const char *name);
/* Appends one row of cols values (NULL = SQL NULL); SG_ERANGE past the caps. */
int db_res_add_row(struct sg_db_res *r, const char *const *vals, const size_t *lens);

void db_seterr(struct sg_db_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Migrations (schema.c). */
#define DB_LOCK_MIGRATIONS 0x5347000000000001LL /* pg_advisory_lock key */
#define DB_LOCK_AUDIT	   0x5347000000000002LL /* pg_advisory_xact_lock key */
/* Brings the schema to the newest version on connection c; message in err. */
int db_migrate(struct sg_db_conn *c, char *err, size_t errlen);
/* Newest version schema.c knows. */
int db_schema_latest(void);

#endif
