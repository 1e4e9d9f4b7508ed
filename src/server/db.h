/* Storage for the management server: one small API over SQLite and PostgreSQL.
 *
 * A `struct sg_db` is a fixed pool of connections to one database; a thread takes a connection
 * with sg_db_acquire, runs statements on it, and gives it back with sg_db_release. Every value
 * crosses this API as text (SQL NULL = a NULL pointer), so the same code runs on both engines and
 * the schema (schema.c, migration 1) uses portable types only. Statements use $1..$N placeholders
 * on both engines; for SQLite they are rewritten to ?1..?N outside quotes and comments.
 *
 * Errors: the SG_E* codes of sg_errors.h, which are negative themselves (SG_EEXIST == -5): test
 * `ret < 0` for failure and `ret == SG_EEXIST` (not -SG_EEXIST) for a conflict. SG_EEXIST means a
 * constraint (unique, foreign key, check) refused the statement; SG_EAGAIN means the engine gave up
 * on a lock or a serialization conflict (SQLITE_BUSY, PG 40001/40P01) and the caller should retry
 * the whole transaction. Any failure leaves a message in sg_db_errmsg(c).
 */
#ifndef SG_SERVER_DB_H
#define SG_SERVER_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"

enum sg_db_engine { SG_DB_SQLITE, SG_DB_POSTGRES };

struct sg_db;	   /* a pool of connections to one database; thread-safe */
struct sg_db_conn; /* one connection, used by one thread at a time */
struct sg_db_res;  /* a query result; every value is text (NULL = SQL NULL) */

/* Upper bounds that keep a bad query from exhausting memory. */
#define SG_DB_POOL_MAX	       64	    /* connections per pool */
#define SG_DB_MAX_PARAMS       64	    /* $1..$64 */
#define SG_DB_MAX_ROWS	       1000000	    /* rows in one result; page with LIMIT for more */
#define SG_DB_MAX_RESULT_BYTES (256u << 20) /* text bytes in one result */
#define SG_DB_ERRMSG_LEN       512

/* Opens a pool of pool_size connections (1..SG_DB_POOL_MAX; 0 = 4).
 * url: "sqlite:/path/to/file.db" (file created mode 0600; WAL, foreign_keys=ON, busy_timeout)
 * or "postgresql://..." / "postgres://..." (a libpq conninfo URI). Applies pending migrations,
 * each in one transaction, serialized across servers (pg_advisory_lock on PG, an immediate
 * transaction on SQLite). On failure *out is NULL and err holds the reason. */
int sg_db_open(struct sg_db **out, const char *url, int pool_size, char *err, size_t errlen) SG_WUR;
/* Closes every connection; all must have been released. NULL is fine. */
void sg_db_close(struct sg_db *db);
enum sg_db_engine sg_db_engine(const struct sg_db *db);
/* Highest applied migration version (for diagnostics and tests); negative SG_E* on error. */
int sg_db_schema_version(struct sg_db *db);

/* Waits for a free connection; reconnects a PG connection found broken. Never NULL for a valid
 * db (a connection that cannot reconnect is still handed out, and its statements fail with
 * SG_EIO and a message). */
struct sg_db_conn *sg_db_acquire(struct sg_db *db);
/* Gives the connection back; rolls back a transaction left open. NULL is fine. */
void sg_db_release(struct sg_db_conn *c);
/* The engine of the pool the connection belongs to. */
enum sg_db_engine sg_db_conn_engine(const struct sg_db_conn *c);

int sg_db_begin(struct sg_db_conn *c);	   /* BEGIN IMMEDIATE (SQLite) / BEGIN (PG) */
int sg_db_commit(struct sg_db_conn *c);	   /* SG_EAGAIN: retry the transaction */
void sg_db_rollback(struct sg_db_conn *c); /* no-op outside a transaction */

/* Runs one statement with n text parameters ($1..$n; params[i] NULL = SQL NULL).
 * Returns rows changed (>= 0); SG_EEXIST on a unique/foreign-key/check violation; SG_EAGAIN
 * on a serialization failure, deadlock or busy timeout (retry the transaction); another negative
 * SG_E* on other errors (SG_EPERM when a trigger refuses it, e.g. UPDATE on audit_log;
 * SG_EINVAL for bad SQL, bad parameters or a NOT NULL violation; SG_EIO for a lost
 * connection), with the message in sg_db_errmsg(c). One statement per call. */
int sg_db_exec(struct sg_db_conn *c, const char *sql, int n, const char *const *params);
/* As sg_db_exec, for statements returning rows. On success *out holds the result (free it with
 * sg_db_res_free) and the return value is the row count; on failure *out is NULL. Results above
 * SG_DB_MAX_ROWS rows or SG_DB_MAX_RESULT_BYTES bytes fail with SG_ERANGE. */
int sg_db_query(struct sg_db_conn *c, struct sg_db_res **out, const char *sql, int n,
		const char *const *params);
int sg_db_res_rows(const struct sg_db_res *r);
int sg_db_res_cols(const struct sg_db_res *r);
/* Column name; NULL if col is out of range. */
const char *sg_db_res_colname(const struct sg_db_res *r, int col);
/* Value as text; NULL for SQL NULL or an out-of-range row/col. */
const char *sg_db_res_get(const struct sg_db_res *r, int row, int col);
/* The value's length in bytes: strlen of sg_db_res_get unless the value holds a NUL byte (SQLite
 * text can; the server never stores one). 0 for SQL NULL or out of range. */
size_t sg_db_res_len(const struct sg_db_res *r, int row, int col);
void sg_db_res_free(struct sg_db_res *r);
/* The last error on this connection ("" if none); valid until the next call on c. */
const char *sg_db_errmsg(const struct sg_db_conn *c);

/* Refreshes the query planner's statistics. SQLite keeps none until ANALYZE runs (the
 * server's PRAGMA optimize at close came only with a restart), and without them it read the
 * clients list through the wrong index: 10x the CPU per page at 10,000 clients (docs/SERVER.md,
 * "Performance of reads"). all: ANALYZE every table (the server, at start); else PRAGMA
 * optimize, which analyzes only the tables whose size changed tenfold since (the server, every
 * sweep). Both sample at most 400 rows per index (analysis_limit): milliseconds. PostgreSQL's
 * autovacuum analyzes by itself: nothing to do. */
int sg_db_analyze(struct sg_db *db, bool all);

/* The pool's size, the connections taken and the threads waiting for one (for /metrics). */
void sg_db_pool_stats(struct sg_db *db, int *size, int *in_use, int *waiting);

/* Change notification across servers (PostgreSQL LISTEN/NOTIFY). A thread with a session of
 * its own (not one of the pool's) LISTENs on channel and calls fn(arg) for every notification,
 * and once after each (re)connection, since notifications sent while it was away are lost. It
 * reconnects by itself (every second while the database is away). SQLite: SG_EUNSUPPORTED.
 * channel must be a plain identifier. */
struct sg_db_listener;
int sg_db_listen(struct sg_db *db, const char *channel, void (*fn)(void *arg), void *arg,
		 struct sg_db_listener **out) SG_WUR;
/* True while the listener's session is up and listening. */
bool sg_db_listening(const struct sg_db_listener *l);
/* Stops and joins the thread (within about half a second). NULL is fine. */
void sg_db_listen_stop(struct sg_db_listener *l);

#endif
