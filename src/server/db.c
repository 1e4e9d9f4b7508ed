/* Connection pool, engine dispatch, URL parsing and the result arena (db.h). */
#include <errno.h>
#include <stdarg.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secureguard/sg_errors.h"
#include "server/db_int.h"

struct sg_db_res {
	int rows, cols;
	size_t cap_rows;
	char **names;
	size_t *offs; /* rows * cols offsets into text; SIZE_MAX = NULL */
	size_t *lens; /* rows * cols value lengths in bytes (a value may hold NUL bytes) */
	char *text;
	size_t used, cap;
};

void db_seterr(struct sg_db_conn *c, const char *fmt, ...)
{
	va_list ap;
	size_t len;

	va_start(ap, fmt);
	vsnprintf(c->errmsg, sizeof(c->errmsg), fmt, ap);
	va_end(ap);
	/* libpq messages end in a newline; the caller composes one-line messages. */
	len = strlen(c->errmsg);
	while (len && (c->errmsg[len - 1] == '\n' || c->errmsg[len - 1] == ' '))
		c->errmsg[--len] = '\0';
}

struct sg_db_res *db_res_new(int cols)
{
	struct sg_db_res *r;

	if (cols < 0)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->cols = cols;
	if (cols) {
		r->names = calloc((size_t)cols, sizeof(*r->names));
		if (!r->names) {
			free(r);
			return NULL;
		}
	}
	return r;
}

int db_res_set_colname(struct sg_db_res *r, int col, const char *name)
{
	if (col < 0 || col >= r->cols)
		return SG_EINVAL;
	free(r->names[col]);
	r->names[col] = strdup(name ? name : "");
	return r->names[col] ? 0 : SG_ENOMEM;
}

int db_res_add_row(struct sg_db_res *r, const char *const *vals, const size_t *lens)
{
	size_t need = 0, base;
	int i;

	if (r->rows >= SG_DB_MAX_ROWS)
		return SG_ERANGE;
	for (i = 0; i < r->cols; i++)
		if (vals[i])
			need += lens[i] + 1;
	if (need > SG_DB_MAX_RESULT_BYTES - r->used)
		return SG_ERANGE;
	if ((size_t)r->rows == r->cap_rows) {
		size_t ncap = r->cap_rows ? r->cap_rows * 2 : 16;
		size_t *no, *nl;

		if (r->cols && ncap > SIZE_MAX / sizeof(size_t) / (size_t)r->cols)
			return SG_ENOMEM;
		no = realloc(r->offs, ncap * (size_t)(r->cols ? r->cols : 1) * sizeof(size_t));
		if (!no)
			return SG_ENOMEM;
		r->offs = no;
		nl = realloc(r->lens, ncap * (size_t)(r->cols ? r->cols : 1) * sizeof(size_t));
		if (!nl)
			return SG_ENOMEM;
		r->lens = nl;
		r->cap_rows = ncap;
	}
	if (r->used + need > r->cap) {
		size_t ncap = r->cap ? r->cap : 4096;
		char *nt;

		while (ncap < r->used + need)
			ncap *= 2;
		nt = realloc(r->text, ncap);
		if (!nt)
			return SG_ENOMEM;
		r->text = nt;
		r->cap = ncap;
	}
	base = (size_t)r->rows * (size_t)r->cols;
	for (i = 0; i < r->cols; i++) {
		if (!vals[i]) {
			r->offs[base + (size_t)i] = SIZE_MAX;
			r->lens[base + (size_t)i] = 0;
			continue;
		}
		r->offs[base + (size_t)i] = r->used;
		r->lens[base + (size_t)i] = lens[i];
		memcpy(r->text + r->used, vals[i], lens[i]);
		r->text[r->used + lens[i]] = '\0';
		r->used += lens[i] + 1;
	}
	r->rows++;
	return 0;
}

int sg_db_res_rows(const struct sg_db_res *r)
{
	return r ? r->rows : 0;
}

int sg_db_res_cols(const struct sg_db_res *r)
{
	return r ? r->cols : 0;
}

const char *sg_db_res_colname(const struct sg_db_res *r, int col)
{
	if (!r || col < 0 || col >= r->cols)
		return NULL;
	return r->names[col];
}

const char *sg_db_res_get(const struct sg_db_res *r, int row, int col)
{
	size_t off;

	if (!r || row < 0 || row >= r->rows || col < 0 || col >= r->cols)
		return NULL;
	off = r->offs[(size_t)row * (size_t)r->cols + (size_t)col];
	return off == SIZE_MAX ? NULL : r->text + off;
}

size_t sg_db_res_len(const struct sg_db_res *r, int row, int col)
{
	if (!r || row < 0 || row >= r->rows || col < 0 || col >= r->cols)
		return 0;
	return r->lens[(size_t)row * (size_t)r->cols + (size_t)col];
}

void sg_db_res_free(struct sg_db_res *r)
{
	int i;

	if (!r)
		return;
	for (i = 0; i < r->cols; i++)
		free(r->names[i]);
	free(r->names);
	free(r->offs);
	free(r->lens);
	free(r->text);
	free(r);
}

/* "sqlite:/path", "sqlite:///path" or "sqlite:relative/path"; "postgresql://" / "postgres://"
 * URIs go to libpq unchanged. */
static int parse_url(const char *url, enum sg_db_engine *eng, char **target, char *err,
		     size_t errlen)
{
	const char *p;

	if (!strncmp(url, "sqlite:", 7)) {
		p = url + 7;
		if (!strncmp(p, "//", 2))
			p += 2;
		if (!*p) {
			snprintf(err, errlen, "database URL %s: no file path after sqlite:", url);
			return SG_EINVAL;
		}
		if (!strcmp(p, ":memory:") || !strncmp(p, "file:", 5)) {
			snprintf(err, errlen,
				 "database URL: sqlite: needs a file path (in-memory databases are "
				 "not shared between pool connections)");
			return SG_EINVAL;
		}
		*eng = SG_DB_SQLITE;
	} else if (!strncmp(url, "postgresql://", 13) || !strncmp(url, "postgres://", 11)) {
		p = url;
		*eng = SG_DB_POSTGRES;
	} else {
		snprintf(err, errlen,
			 "database URL must start with sqlite: or postgresql:// (got \"%.32s\")",
			 url);
		return SG_EINVAL;
	}
	*target = strdup(p);
	return *target ? 0 : SG_ENOMEM;
}

int sg_db_open(struct sg_db **out, const char *url, int pool_size, char *err, size_t errlen)
{
	struct sg_db *db;
	char dummy[1];
	int i, ret;

	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	*out = NULL;
	if (!url) {
		snprintf(err, errlen, "no database URL");
		return SG_EINVAL;
	}
	if (pool_size == 0)
		pool_size = 4;
	if (pool_size < 1 || pool_size > SG_DB_POOL_MAX) {
		snprintf(err, errlen, "pool size %d out of range 1..%d", pool_size, SG_DB_POOL_MAX);
		return SG_ERANGE;
	}
	db = calloc(1, sizeof(*db));
	if (!db)
		return SG_ENOMEM;
	ret = parse_url(url, &db->engine, &db->target, err, errlen);
	if (ret < 0)
		goto fail_url;
	db->ops = db->engine == SG_DB_SQLITE ? &db_sqlite_ops : &db_pg_ops;
	db->conns = calloc((size_t)pool_size, sizeof(*db->conns));
	if (!db->conns) {
		ret = SG_ENOMEM;
		goto fail_conns;
	}
	if (pthread_mutex_init(&db->mu, NULL)) {
		ret = SG_ENOMEM;
		goto fail_mutex;
	}
	if (pthread_cond_init(&db->cv, NULL)) {
		ret = SG_ENOMEM;
		goto fail_cond;
	}
	if (pthread_mutex_init(&db->writer, NULL)) {
		ret = SG_ENOMEM;
		goto fail_writer;
	}
	for (db->n = 0; db->n < pool_size; db->n++) {
		db->conns[db->n].db = db;
		ret = db->ops->connect(&db->conns[db->n], err, errlen);
		if (ret < 0)
			goto fail_connect;
	}
	ret = db_migrate(&db->conns[0], err, errlen);
	if (ret < 0)
		goto fail_connect;
	*out = db;
	return 0;

fail_connect:
	for (i = 0; i < db->n; i++)
		db->ops->disconnect(&db->conns[i]);
	pthread_mutex_destroy(&db->writer);
fail_writer:
	pthread_cond_destroy(&db->cv);
fail_cond:
	pthread_mutex_destroy(&db->mu);
fail_mutex:
	free(db->conns);
fail_conns:
	free(db->target);
fail_url:
	free(db);
	return ret;
}

void sg_db_close(struct sg_db *db)
{
	int i;

	if (!db)
		return;
	for (i = 0; i < db->n; i++)
		db->ops->disconnect(&db->conns[i]);
	pthread_mutex_destroy(&db->writer);
	pthread_cond_destroy(&db->cv);
	pthread_mutex_destroy(&db->mu);
	free(db->conns);
	free(db->target);
	free(db);
}

enum sg_db_engine sg_db_engine(const struct sg_db *db)
{
	return db->engine;
}

enum sg_db_engine sg_db_conn_engine(const struct sg_db_conn *c)
{
	return c->db->engine;
}

int sg_db_schema_version(struct sg_db *db)
{
	struct sg_db_conn *c = sg_db_acquire(db);
	struct sg_db_res *r = NULL;
	int ret;

	ret =
	    sg_db_query(c, &r, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", 0, NULL);
	if (ret >= 0)
		ret = sg_db_res_get(r, 0, 0) ? atoi(sg_db_res_get(r, 0, 0)) : 0;
	sg_db_res_free(r);
	sg_db_release(c);
	return ret;
}

struct sg_db_conn *sg_db_acquire(struct sg_db *db)
{
	struct sg_db_conn *c = NULL;
	int i;

	pthread_mutex_lock(&db->mu);
	for (;;) {
		for (i = 0; i < db->n; i++) {
			if (!db->conns[i].busy) {
				c = &db->conns[i];
				break;
			}
		}
		if (c)
			break;
		db->waiting++;
		pthread_cond_wait(&db->cv, &db->mu);
		db->waiting--;
	}
	c->busy = true;
	pthread_mutex_unlock(&db->mu);
	c->errmsg[0] = '\0';
	/* A failed reconnect leaves the message; the next statement reports it again. */
	(void)db->ops->check(c);
	return c;
}

void sg_db_release(struct sg_db_conn *c)
{
	struct sg_db *db;

	if (!c)
		return;
	db = c->db;
	sg_db_rollback(c);
	pthread_mutex_lock(&db->mu);
	c->busy = false;
	pthread_cond_signal(&db->cv);
	pthread_mutex_unlock(&db->mu);
}

static void writer_unlock(struct sg_db_conn *c)
{
	if (c->holds_writer) {
		c->holds_writer = false;
		pthread_mutex_unlock(&c->db->writer);
	}
}

int sg_db_begin(struct sg_db_conn *c)
{
	int ret;

	if (c->db->ops->in_transaction(c)) {
		db_seterr(c, "a transaction is already open on this connection");
		return SG_EINVAL;
	}
	if (c->db->engine == SG_DB_SQLITE && !c->holds_writer) {
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += DB_WRITER_WAIT_S;
		if (pthread_mutex_timedlock(&c->db->writer, &until) != 0) {
			db_seterr(c, "waited %d s for another transaction of this process",
				  DB_WRITER_WAIT_S);
			return SG_EAGAIN;
		}
		c->holds_writer = true;
	}
	ret = c->db->ops->run(c, c->db->ops->begin_sql, 0, NULL, NULL);
	if (ret < 0) {
		writer_unlock(c);
		return ret;
	}
	return 0;
}

int sg_db_commit(struct sg_db_conn *c)
{
	int ret;

	if (!c->db->ops->in_transaction(c)) {
		if (c->holds_writer) {
			/* SQLite rolls back by itself on some errors (SQLITE_BUSY, IOERR, FULL). */
			writer_unlock(c);
			db_seterr(c, "the database rolled the transaction back after an error");
			return SG_EAGAIN;
		}
		db_seterr(c, "COMMIT without an open transaction");
		return SG_EINVAL;
	}
	ret = c->db->ops->run(c, "COMMIT", 0, NULL, NULL);
	if (ret < 0) {
		/* A failed COMMIT (e.g. a deferred constraint or a serialization failure) must
		 * not leave the connection inside the transaction. */
		char keep[SG_DB_ERRMSG_LEN];

		memcpy(keep, c->errmsg, sizeof(keep));
		sg_db_rollback(c);
		memcpy(c->errmsg, keep, sizeof(keep));
		return ret;
	}
	writer_unlock(c);
	return 0;
}

/* Also the place where a transaction that SQLite ended by itself (an error that rolls back
 * automatically) gives the writer lock back. */
void sg_db_rollback(struct sg_db_conn *c)
{
	if (c->db->ops->in_transaction(c))
		(void)c->db->ops->run(c, "ROLLBACK", 0, NULL, NULL);
	writer_unlock(c);
}

static int check_args(struct sg_db_conn *c, const char *sql, int n, const char *const *params)
{
	if (!sql) {
		db_seterr(c, "no SQL statement");
		return SG_EINVAL;
	}
	if (n < 0 || n > SG_DB_MAX_PARAMS || (n > 0 && !params)) {
		db_seterr(c, "parameter count %d out of range 0..%d", n, SG_DB_MAX_PARAMS);
		return SG_EINVAL;
	}
	return 0;
}

int sg_db_exec(struct sg_db_conn *c, const char *sql, int n, const char *const *params)
{
	int ret;

	c->errmsg[0] = '\0';
	ret = check_args(c, sql, n, params);
	if (ret < 0)
		return ret;
	return c->db->ops->run(c, sql, n, params, NULL);
}

int sg_db_query(struct sg_db_conn *c, struct sg_db_res **out, const char *sql, int n,
		const char *const *params)
{
	struct sg_db_res *r = NULL;
	int ret;

	*out = NULL;
	c->errmsg[0] = '\0';
	ret = check_args(c, sql, n, params);
	if (ret < 0)
		return ret;
	ret = c->db->ops->run(c, sql, n, params, &r);
	if (ret < 0) {
		sg_db_res_free(r);
		return ret;
	}
	if (!r) {
		/* A statement without a result set (e.g. an UPDATE without RETURNING). */
		r = db_res_new(0);
		if (!r)
			return SG_ENOMEM;
	}
	*out = r;
	return r->rows;
}

const char *sg_db_errmsg(const struct sg_db_conn *c)
{
	return c ? c->errmsg : "no connection";
}

int sg_db_analyze(struct sg_db *db, bool all)
{
	struct sg_db_conn *c;
	int ret;

	if (db->engine != SG_DB_SQLITE)
		return 0;
	/* The first free connection: mostly the busiest, whose queries PRAGMA optimize weighs. */
	c = sg_db_acquire(db);
	ret = sg_db_exec(c, all ? "ANALYZE" : "PRAGMA optimize", 0, NULL);
	sg_db_release(c);
	return ret < 0 ? ret : 0;
}

void sg_db_pool_stats(struct sg_db *db, int *size, int *in_use, int *waiting)
{
	int busy = 0;

	pthread_mutex_lock(&db->mu);
	for (int i = 0; i < db->n; i++)
		busy += db->conns[i].busy;
	*size = db->n;
	*in_use = busy;
	*waiting = db->waiting;
	pthread_mutex_unlock(&db->mu);
}
