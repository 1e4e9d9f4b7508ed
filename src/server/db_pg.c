/* PostgreSQL engine (db.h) over libpq: one PGconn per pool slot, text parameters and results.
 *
 * Results are read in single-row mode so the row and byte caps of db.h hold while the rows
 * arrive, instead of after libpq has buffered all of them.
 *
 * Statements a connection runs a second time are kept prepared on its session (named
 * statements, the extended protocol's Parse once, then Bind/Execute): the server runs a few
 * dozen distinct statements, and parsing and planning them again on every request was most of
 * PostgreSQL's work for a read (docs/SERVER.md, "Performance of reads"). A new session (a
 * reconnect, a failover) starts with none.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "secureguard/sg_errors.h"
#include "server/db_int.h"

/* SQLSTATE classes and codes: PostgreSQL manual, Appendix A "PostgreSQL Error Codes". */
static int map_sqlstate(const char *s)
{
	if (!s)
		return SG_EIO;
	if (!strcmp(s, "23505") || !strcmp(s, "23503") || !strcmp(s, "23514") ||
	    !strcmp(s, "23P01"))
		return SG_EEXIST; /* unique, foreign key, check, exclusion */
	if (!strcmp(s, "40001") || !strcmp(s, "40P01") || !strcmp(s, "55P03") ||
	    !strcmp(s, "57014"))
		return SG_EAGAIN; /* serialization, deadlock, lock not available, cancelled */
	if (!strcmp(s, "42501"))
		return SG_EPERM; /* insufficient_privilege, also raised by the audit triggers */
	if (!strncmp(s, "08", 2) || !strncmp(s, "57P", 3))
		return SG_EIO; /* connection exception, admin shutdown */
	if (!strncmp(s, "53", 2))
		return SG_ENOMEM; /* insufficient resources */
	if (!strncmp(s, "22", 2) || !strncmp(s, "23", 2) || !strncmp(s, "42", 2) ||
	    !strncmp(s, "25", 2) || !strncmp(s, "0A", 2))
		return SG_EINVAL; /* data, NOT NULL, syntax, transaction state, unsupported */
	return SG_EIO;
}

/* Statements kept prepared per connection (the least recently used one goes), as SQLite's
 * (db_sqlite.c). A statement is prepared the second time the connection runs it, so one-off
 * statements (migrations, the filters of a rare list) cost no extra round trip. */
#define STMT_CACHE     64
#define STMT_CACHE_SQL 4096

struct stmt_cache {
	struct stmt_ent {
		char *sql; /* NULL: a free slot */
		size_t len;
		uint64_t hash, used;
		unsigned uses;
		bool prepared; /* on this session, as name */
		char name[24];
	} e[STMT_CACHE];
	uint64_t tick;
	unsigned serial; /* names: sg_<serial>, never reused within a session */
};

static uint64_t sql_hash(const char *sql, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)sql[i]) * 0x100000001b3ull;
	return h;
}

/* Forgets every statement: the session that held them is gone (or going). */
static void cache_free(struct sg_db_conn *c)
{
	struct stmt_cache *sc = c->stmts;

	if (!sc)
		return;
	for (int i = 0; i < STMT_CACHE; i++)
		free(sc->e[i].sql);
	free(sc);
	c->stmts = NULL;
}

/* Transaction control and session state are sent as they are: they plan nothing. */
static bool cacheable(const char *sql, size_t len)
{
	static const char *const words[] = {"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE",
					    "LISTEN", "UNLISTEN", "SET", "RESET", "DEALLOCATE",
					    "DISCARD", "PREPARE"};

	if (len >= STMT_CACHE_SQL)
		return false;
	while (*sql == ' ' || *sql == '\n' || *sql == '\t')
		sql++;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		size_t n = strlen(words[i]);

		if (!strncasecmp(sql, words[i], n) &&
		    (sql[n] == '\0' || sql[n] == ' ' || sql[n] == '\n' || sql[n] == ';'))
			return false;
	}
	return true;
}

/* The entry for sql: found, or made in a free or the least recently used slot (a statement
 * prepared there is deallocated first); NULL without memory or when the slot's statement could
 * not be deallocated (the session is in a failed transaction). */
static struct stmt_ent *cache_entry(struct sg_db_conn *c, const char *sql, size_t len)
{
	struct stmt_cache *sc = c->stmts;
	uint64_t h = sql_hash(sql, len);
	struct stmt_ent *v = NULL;
	char *copy;

	if (!sc) {
		sc = c->stmts = calloc(1, sizeof(*sc));
		if (!sc)
			return NULL;
	}
	for (int i = 0; i < STMT_CACHE; i++) {
		struct stmt_ent *e = &sc->e[i];

		if (e->sql && e->hash == h && e->len == len && !memcmp(e->sql, sql, len)) {
			e->used = ++sc->tick;
			return e;
		}
		if (!v || !e->sql || (v->sql && e->used < v->used))
			v = e;
	}
	if (v->sql && v->prepared) {
		char dealloc[48];
		PGresult *r;
		bool ok;

		if (PQtransactionStatus(c->h) == PQTRANS_INERROR)
			return NULL;
		snprintf(dealloc, sizeof(dealloc), "DEALLOCATE %s", v->name);
		r = PQexec(c->h, dealloc);
		ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
		if (!ok)
			return NULL;
	}
	copy = malloc(len + 1);
	if (!copy)
		return NULL;
	memcpy(copy, sql, len + 1);
	free(v->sql);
	*v = (struct stmt_ent){.sql = copy, .len = len, .hash = h, .used = ++sc->tick};
	snprintf(v->name, sizeof(v->name), "sg_%u", ++sc->serial);
	return v;
}

/* Drops e after its statement failed as prepared (dropped by someone, or its result's columns
 * changed under a migration of another server); the statement is deallocated when that is
 * possible, and never reused. */
static void cache_drop(struct sg_db_conn *c, struct stmt_ent *e)
{
	if (e->prepared && PQtransactionStatus(c->h) == PQTRANS_IDLE) {
		char dealloc[48];

		snprintf(dealloc, sizeof(dealloc), "DEALLOCATE %s", e->name);
		PQclear(PQexec(c->h, dealloc));
	}
	free(e->sql);
	*e = (struct stmt_ent){0};
}

static void quiet_notices(void *arg, const char *message)
{
	/* "relation already exists, skipping" and the like: not errors, not worth stderr. */
	(void)arg;
	(void)message;
}

/* Defaults a URI may override: a database that does not answer is given up on after 5 s (libpq
 * waits forever by default), and TCP keepalives find a peer that vanished without a reset
 * (a failed-over host) in about 30 s instead of the kernel's two hours. */
static const char *const conn_keys[] = {"connect_timeout", "keepalives",     "keepalives_idle",
					"keepalives_interval", "keepalives_count", "dbname", NULL};

static int pg_connect(struct sg_db_conn *c, char *err, size_t errlen)
{
	/* With expand_dbname the URI in dbname is expanded in place, and parameters later in
	 * the array override earlier ones: the URI's own settings win over these defaults. */
	const char *vals[] = {"5", "1", "15", "5", "3", c->db->target, NULL};
	PGconn *h = PQconnectdbParams(conn_keys, vals, 1);
	size_t len;

	if (!h)
		return SG_ENOMEM;
	if (PQstatus(h) != CONNECTION_OK) {
		snprintf(err, errlen, "postgresql: %s", PQerrorMessage(h));
		len = strlen(err);
		while (len && err[len - 1] == '\n')
			err[--len] = '\0';
		PQfinish(h);
		return SG_EIO;
	}
	PQsetNoticeProcessor(h, quiet_notices, NULL);
	c->h = h;
	c->epoch = __atomic_load_n(&c->db->epoch, __ATOMIC_RELAXED);
	return 0;
}

static void pg_disconnect(struct sg_db_conn *c)
{
	if (c->h)
		PQfinish(c->h);
	c->h = NULL;
	cache_free(c);
}

/* A new session for c->h: its prepared statements went with the old one. */
static void session_reset(struct sg_db_conn *c)
{
	cache_free(c);
	c->epoch = __atomic_load_n(&c->db->epoch, __ATOMIC_RELAXED);
	PQreset(c->h);
}

static int pg_check(struct sg_db_conn *c)
{
	if (!c->h) {
		char err[SG_DB_ERRMSG_LEN];

		if (pg_connect(c, err, sizeof(err)) < 0) {
			db_seterr(c, "%s", err);
			return SG_EIO;
		}
		return 0;
	}
	if (PQstatus(c->h) == CONNECTION_OK &&
	    c->epoch == __atomic_load_n(&c->db->epoch, __ATOMIC_RELAXED))
		return 0;
	session_reset(c);
	if (PQstatus(c->h) != CONNECTION_OK) {
		db_seterr(c, "postgresql: reconnecting: %s", PQerrorMessage(c->h));
		return SG_EIO;
	}
	return 0;
}

static bool pg_in_transaction(const struct sg_db_conn *c)
{
	PGTransactionStatusType t;

	if (!c->h)
		return false;
	t = PQtransactionStatus(c->h);
	return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}

static int result_error(struct sg_db_conn *c, const PGresult *pr)
{
	const char *state = pr ? PQresultErrorField(pr, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = pr ? PQresultErrorField(pr, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	if (!msg)
		msg = PQerrorMessage(c->h);
	db_seterr(c, "%s%s%s", state ? state : "", state ? ": " : "", msg);
	if (PQstatus(c->h) != CONNECTION_OK)
		return SG_EIO;
	return map_sqlstate(state);
}

/* Sends sql, as the connection's prepared statement when it runs it for the second time or
 * more (*ent is then its entry), else unnamed. 0, or negative SG_E* with the message set. */
static int send_stmt(struct sg_db_conn *c, const char *sql, int n, const char *const *params,
		     struct stmt_ent **ent)
{
	size_t len = strlen(sql);
	struct stmt_ent *e = NULL;

	*ent = NULL;
	if (cacheable(sql, len) && PQtransactionStatus(c->h) != PQTRANS_INERROR)
		e = cache_entry(c, sql, len);
	if (e && !e->prepared && ++e->uses >= 2) {
		PGresult *r = PQprepare(c->h, e->name, sql, n, NULL);
		int ret;

		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			/* The statement's own error (bad SQL, a missing table), as running it
			 * unnamed would have said. */
			ret = result_error(c, r);
			PQclear(r);
			cache_drop(c, e);
			return ret;
		}
		PQclear(r);
		e->prepared = true;
	}
	if (e && e->prepared) {
		if (!PQsendQueryPrepared(c->h, e->name, n, params, NULL, NULL, 0))
			goto fail;
		*ent = e;
		return 0;
	}
	if (!PQsendQueryParams(c->h, sql, n, NULL, params, NULL, NULL, 0))
		goto fail;
	return 0;
fail:
	db_seterr(c, "postgresql: %s", PQerrorMessage(c->h));
	return PQstatus(c->h) != CONNECTION_OK ? SG_EIO : SG_EINVAL;
}

/* A prepared statement that cannot run as prepared any more: gone from the session
 * (invalid_sql_statement_name), or its result's columns changed under it, as when a migration
 * (perhaps by another server) altered a table it reads (feature_not_supported: "cached plan
 * must not change result type"). Run afresh, it works. */
static bool stale_stmt(const PGresult *pr)
{
	const char *state = PQresultErrorField(pr, PG_DIAG_SQLSTATE);

	return state && (!strcmp(state, "26000") || !strcmp(state, "0A000"));
}

static int pg_run1(struct sg_db_conn *c, const char *sql, int n, const char *const *params,
		   struct sg_db_res **res)
{
	struct sg_db_res *r = NULL;
	struct stmt_ent *ent;
	PGresult *pr;
	const char *vals[256];
	size_t lens[256];
	int ret = 0, rows = 0, changed = 0, i, cols;
	bool too_big = false, failed = false, stale = false;
	bool was_tx;

	if (!c->h || PQstatus(c->h) != CONNECTION_OK) {
		/* No silent reconnect here: if a transaction was open, its work went with the
		 * session, and running the rest in autocommit would break its atomicity. The
		 * connection is reconnected when next taken from the pool (pg_check). */
		db_seterr(c, "postgresql: connection lost%s%s", c->h ? ": " : "",
			  c->h ? PQerrorMessage(c->h) : "");
		return SG_EIO;
	}
	was_tx = pg_in_transaction(c);
	ret = send_stmt(c, sql, n, params, &ent);
	if (ret < 0)
		return ret;
	(void)PQsetSingleRowMode(c->h);
	while ((pr = PQgetResult(c->h)) != NULL) {
		ExecStatusType st = PQresultStatus(pr);

		if (failed || too_big) {
			PQclear(pr); /* drain: libpq needs every result read */
			continue;
		}
		switch (st) {
		case PGRES_SINGLE_TUPLE:
		case PGRES_TUPLES_OK:
			cols = PQnfields(pr);
			if (cols > (int)(sizeof(vals) / sizeof(vals[0]))) {
				db_seterr(c, "result has %d columns, more than %zu", cols,
					  sizeof(vals) / sizeof(vals[0]));
				ret = SG_ERANGE;
				too_big = true;
				break;
			}
			if (res && !r) {
				r = db_res_new(cols);
				for (i = 0; r && i < cols; i++)
					if (db_res_set_colname(r, i, PQfname(pr, i)) < 0)
						break;
				if (!r || i < cols) {
					ret = SG_ENOMEM;
					failed = true;
					break;
				}
			}
			if (st == PGRES_SINGLE_TUPLE) {
				rows++;
				if (!r)
					break;
				for (i = 0; i < cols; i++) {
					vals[i] =
					    PQgetisnull(pr, 0, i) ? NULL : PQgetvalue(pr, 0, i);
					lens[i] = (size_t)PQgetlength(pr, 0, i);
				}
				if (db_res_add_row(r, vals, lens) < 0) {
					db_seterr(c,
						  "result too large (over %d rows or %u bytes): "
						  "page it",
						  SG_DB_MAX_ROWS, SG_DB_MAX_RESULT_BYTES);
					ret = SG_ERANGE;
					too_big = true;
				}
			}
			break;
		case PGRES_COMMAND_OK:
			changed = atoi(PQcmdTuples(pr));
			break;
		case PGRES_EMPTY_QUERY:
			db_seterr(c, "empty SQL statement");
			ret = SG_EINVAL;
			failed = true;
			break;
		case PGRES_COPY_IN:
		case PGRES_COPY_OUT:
		case PGRES_COPY_BOTH:
			db_seterr(c, "COPY is not supported through this API");
			ret = SG_EUNSUPPORTED;
			failed = true;
			break;
		default:
			ret = result_error(c, pr);
			stale = ent && stale_stmt(pr);
			failed = true;
			break;
		}
		PQclear(pr);
	}
	if (stale && PQstatus(c->h) == CONNECTION_OK) {
		sg_db_res_free(r);
		cache_drop(c, ent);
		/* Outside a transaction nothing ran: again, unnamed (the entry is gone). Inside,
		 * the error ended the transaction: the caller redoes it (srv_tx). */
		if (!was_tx)
			return pg_run1(c, sql, n, params, res);
		db_seterr(c, "postgresql: a prepared statement went stale (a schema change): retry");
		return SG_EAGAIN;
	}
	if (PQstatus(c->h) != CONNECTION_OK && ret >= 0) {
		db_seterr(c, "postgresql: connection lost: %s", PQerrorMessage(c->h));
		ret = SG_EIO;
	}
	if (ret < 0) {
		sg_db_res_free(r);
		return ret;
	}
	if (res)
		*res = r;
	else
		sg_db_res_free(r);
	return r || rows ? rows : changed;
}

static bool starts_with(const char *sql, const char *word)
{
	size_t n = strlen(word);

	while (*sql == ' ' || *sql == '\n' || *sql == '\t')
		sql++;
	return !strncasecmp(sql, word, n) && (sql[n] == '\0' || sql[n] == ' ' || sql[n] == '\n');
}

/* A connection lost since its last use (the database restarted, or failed over to the address
 * the URI names) is remade and the statement sent again, when that cannot do anything twice:
 * outside a transaction, for BEGIN and for a SELECT (this server's SELECTs change nothing
 * outside their transaction but advisory locks, which a new session does not hold). A
 * connection that fails during a transaction is not retried: its work went with the session. */
static int pg_run(struct sg_db_conn *c, const char *sql, int n, const char *const *params,
		  struct sg_db_res **res)
{
	bool was_ok = c->h && PQstatus(c->h) == CONNECTION_OK;
	bool retry = !pg_in_transaction(c) && (starts_with(sql, "BEGIN") ||
					       starts_with(sql, "SELECT"));
	int ret = pg_run1(c, sql, n, params, res);

	if (ret != SG_EIO || !c->h || PQstatus(c->h) == CONNECTION_OK)
		return ret;
	if (was_ok)
		__atomic_add_fetch(&c->db->epoch, 1, __ATOMIC_RELAXED);
	if (!retry)
		return ret;
	session_reset(c);
	if (PQstatus(c->h) != CONNECTION_OK) {
		db_seterr(c, "postgresql: connection lost, reconnecting failed: %s",
			  PQerrorMessage(c->h));
		return SG_EIO;
	}
	return pg_run1(c, sql, n, params, res);
}

const struct db_ops db_pg_ops = {
    .connect = pg_connect,
    .disconnect = pg_disconnect,
    .check = pg_check,
    .run = pg_run,
    .in_transaction = pg_in_transaction,
    .begin_sql = "BEGIN",
};

/* ---- LISTEN (db.h, sg_db_listen) ------------------------------------------------------------ */

struct sg_db_listener {
	struct sg_db *db;
	char channel[64];
	void (*fn)(void *arg);
	void *arg;
	pthread_t thread;
	bool stop;	/* __atomic */
	bool listening; /* __atomic */
};

static bool stopping(struct sg_db_listener *l)
{
	return __atomic_load_n(&l->stop, __ATOMIC_ACQUIRE);
}

static void nap(struct sg_db_listener *l, int ms)
{
	for (; ms > 0 && !stopping(l); ms -= 100)
		nanosleep(&(struct timespec){.tv_nsec = 100 * 1000 * 1000}, NULL);
}

/* A listening session, or NULL (the database is away). */
static PGconn *listen_connect(struct sg_db_listener *l)
{
	const char *vals[] = {"5", "1", "15", "5", "3", l->db->target, NULL};
	PGconn *h = PQconnectdbParams(conn_keys, vals, 1);
	char sql[96];
	PGresult *r;

	if (!h || PQstatus(h) != CONNECTION_OK) {
		PQfinish(h);
		return NULL;
	}
	PQsetNoticeProcessor(h, quiet_notices, NULL);
	snprintf(sql, sizeof(sql), "LISTEN %s", l->channel);
	r = PQexec(h, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		PQclear(r);
		PQfinish(h);
		return NULL;
	}
	PQclear(r);
	return h;
}

static void *listen_main(void *arg)
{
	struct sg_db_listener *l = arg;
	PGconn *h = NULL;

	while (!stopping(l)) {
		struct pollfd pfd;
		PGnotify *n;
		bool any = false;

		if (!h) {
			h = listen_connect(l);
			if (!h) {
				nap(l, 1000);
				continue;
			}
			__atomic_store_n(&l->listening, true, __ATOMIC_RELEASE);
			l->fn(l->arg); /* whatever was sent while no one listened */
		}
		pfd.fd = PQsocket(h);
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (pfd.fd < 0 || poll(&pfd, 1, 500) < 0) {
			if (pfd.fd >= 0 && errno == EINTR)
				continue;
		} else if (pfd.revents == 0) {
			continue;
		}
		if (!PQconsumeInput(h) || PQstatus(h) != CONNECTION_OK) {
			__atomic_store_n(&l->listening, false, __ATOMIC_RELEASE);
			PQfinish(h);
			h = NULL;
			continue;
		}
		while ((n = PQnotifies(h)) != NULL) {
			any = true;
			PQfreemem(n);
		}
		if (any)
			l->fn(l->arg);
	}
	__atomic_store_n(&l->listening, false, __ATOMIC_RELEASE);
	PQfinish(h);
	return NULL;
}

int sg_db_listen(struct sg_db *db, const char *channel, void (*fn)(void *arg), void *arg,
		 struct sg_db_listener **out)
{
	struct sg_db_listener *l;
	size_t i;

	*out = NULL;
	if (db->engine != SG_DB_POSTGRES)
		return SG_EUNSUPPORTED;
	if (!channel[0] || strlen(channel) >= 64)
		return SG_EINVAL;
	for (i = 0; channel[i]; i++)
		if (!((channel[i] >= 'a' && channel[i] <= 'z') || channel[i] == '_'))
			return SG_EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return SG_ENOMEM;
	l->db = db;
	memcpy(l->channel, channel, i + 1);
	l->fn = fn;
	l->arg = arg;
	if (pthread_create(&l->thread, NULL, listen_main, l)) {
		free(l);
		return SG_ENOMEM;
	}
	*out = l;
	return 0;
}

bool sg_db_listening(const struct sg_db_listener *l)
{
	return l && __atomic_load_n(&l->listening, __ATOMIC_ACQUIRE);
}

void sg_db_listen_stop(struct sg_db_listener *l)
{
	if (!l)
		return;
	__atomic_store_n(&l->stop, true, __ATOMIC_RELEASE);
	pthread_join(l->thread, NULL);
	free(l);
}
