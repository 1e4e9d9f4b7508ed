/* SQLite engine (db.h): one sqlite3 handle per pool slot, WAL, foreign keys on, busy timeout.
 *
 * Placeholders: SQLite reads "$1" natively as a named parameter called "$1", so SQL is not
 * rewritten; each "$k" is bound by name to params[k-1] (repeats of one $k share the value, as on
 * PostgreSQL). Any other parameter form ("?", ":x", "$k" with k > n) is refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "secureguard/sg_errors.h"
#include "server/db_int.h"

#define BUSY_TIMEOUT_MS (DB_WRITER_WAIT_S * 1000)
/* Prepared statements kept per connection (the least recently used one goes): the server runs
 * a few dozen distinct statements, and preparing one cost as much as running it on a GET of
 * one client (bench/server_scale.sh; docs/SERVER.md, "Performance of reads"). */
#define STMT_CACHE     48
#define STMT_CACHE_SQL 4096 /* longer statements (migrations) are prepared each time */
#define SQL_MAX_LEN	(1 << 20)
#define VALUE_MAX_LEN	(64 << 20)

static int map_error(int ext)
{
	switch (ext & 0xff) {
	case SQLITE_CONSTRAINT:
		if (ext == SQLITE_CONSTRAINT_TRIGGER)
			return SG_EPERM; /* RAISE(ABORT) in the audit_log triggers */
		if (ext == SQLITE_CONSTRAINT_NOTNULL || ext == SQLITE_CONSTRAINT_DATATYPE)
			return SG_EINVAL;
		return SG_EEXIST; /* UNIQUE, PRIMARYKEY, FOREIGNKEY, CHECK */
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return SG_EAGAIN;
	case SQLITE_NOMEM:
		return SG_ENOMEM;
	case SQLITE_TOOBIG:
		return SG_ERANGE;
	case SQLITE_ERROR:
	case SQLITE_RANGE:
	case SQLITE_MISMATCH:
	case SQLITE_MISUSE:
		return SG_EINVAL;
	case SQLITE_PERM:
	case SQLITE_AUTH:
	case SQLITE_READONLY:
		return SG_EPERM;
	default:
		return SG_EIO;
	}
}

static int fail(struct sg_db_conn *c, int rc, const char *what)
{
	sqlite3 *h = c->h;
	int ext = h ? sqlite3_extended_errcode(h) : rc;

	db_seterr(c, "%s: %s (sqlite %d)", what, h ? sqlite3_errmsg(h) : sqlite3_errstr(rc), ext);
	return map_error(ext);
}

/* The database holds password hashes and encrypted private keys: create it 0600 ourselves
 * rather than through the process umask (SQLite gives the -wal and -shm files the same mode),
 * and tighten a file we own that is readable by others. */
static int prepare_file(const char *path, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "sqlite database %s: %s", path, strerror(errno));
		return errno == EACCES || errno == EPERM ? SG_EPERM : SG_EIO;
	}
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
	    (st.st_mode & 077))
		(void)fchmod(fd, st.st_mode & 0700);
	close(fd);
	return 0;
}

static int pragma(struct sg_db_conn *c, const char *sql, const char *want, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc, ret = 0;

	rc = sqlite3_prepare_v2(c->h, sql, -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		ret = fail(c, rc, sql);
		snprintf(err, errlen, "%s", c->errmsg);
	} else if (want && (rc != SQLITE_ROW ||
			    strcmp((const char *)sqlite3_column_text(st, 0), want) != 0)) {
		snprintf(err, errlen, "%s: the database did not switch to %s", sql, want);
		ret = SG_EIO;
	}
	sqlite3_finalize(st);
	return ret;
}

/* A damaged file is found when the server starts, before anything is served from it, rather
 * than at the first page that cannot be read (the design's "validate database integrity on
 * startup"). quick_check reads every page but skips the index cross-checks of integrity_check
 * (https://sqlite.org/pragma.html#pragma_quick_check): about a second per few hundred MB. */
static int integrity(struct sg_db_conn *c, const char *path, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc, ret = 0;

	rc = sqlite3_prepare_v2(c->h, "PRAGMA quick_check(1)", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_text(st, 0) &&
	    strcmp((const char *)sqlite3_column_text(st, 0), "ok")) {
		snprintf(err, errlen,
			 "sqlite database %s is damaged (%.200s): restore it from a backup", path,
			 (const char *)sqlite3_column_text(st, 0));
		for (char *p = err; *p; p++) {
			if (*p == '\n')
				*p = ' '; /* "*** in database main ***\nPage 5: ..." on one line */
		}
		ret = SG_EIO;
	} else if (rc != SQLITE_ROW) {
		snprintf(err, errlen,
			 "sqlite database %s is damaged (%s): restore it from a backup", path,
			 sqlite3_errmsg(c->h));
		ret = SG_EIO;
	}
	sqlite3_finalize(st);
	return ret;
}

struct stmt_cache {
	struct stmt_ent {
		sqlite3_stmt *st; /* NULL: a free slot */
		uint64_t hash, used;
		size_t len;
		char *sql;
	} e[STMT_CACHE];
	uint64_t tick;
};

static uint64_t sql_hash(const char *sql, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)sql[i]) * 0x100000001b3ull;
	return h;
}

static void cache_free(struct sg_db_conn *c)
{
	struct stmt_cache *sc = c->stmts;

	if (!sc)
		return;
	for (int i = 0; i < STMT_CACHE; i++) {
		sqlite3_finalize(sc->e[i].st);
		free(sc->e[i].sql);
	}
	free(sc);
	c->stmts = NULL;
}

/* The cached statement for sql (reset, no bindings), or NULL. */
static sqlite3_stmt *cache_get(struct sg_db_conn *c, const char *sql, size_t len, uint64_t h)
{
	struct stmt_cache *sc = c->stmts;

	if (!sc)
		return NULL;
	for (int i = 0; i < STMT_CACHE; i++) {
		struct stmt_ent *e = &sc->e[i];

		if (e->st && e->hash == h && e->len == len && !memcmp(e->sql, sql, len)) {
			e->used = ++sc->tick;
			return e->st;
		}
	}
	return NULL;
}

/* Keeps st for sql, in a free slot or the least recently used one's; false (the caller
 * finalizes st) when there is no memory for it. */
static bool cache_put(struct sg_db_conn *c, const char *sql, size_t len, uint64_t h,
		      sqlite3_stmt *st)
{
	struct stmt_cache *sc = c->stmts;
	struct stmt_ent *v;
	char *copy;

	if (!sc) {
		sc = c->stmts = calloc(1, sizeof(*sc));
		if (!sc)
			return false;
	}
	copy = malloc(len + 1);
	if (!copy)
		return false;
	memcpy(copy, sql, len + 1);
	v = &sc->e[0];
	for (int i = 0; i < STMT_CACHE && v->st; i++) {
		if (!sc->e[i].st || sc->e[i].used < v->used)
			v = &sc->e[i];
	}
	sqlite3_finalize(v->st);
	free(v->sql);
	*v = (struct stmt_ent){st, h, ++sc->tick, len, copy};
	return true;
}

static int sq_connect(struct sg_db_conn *c, char *err, size_t errlen)
{
	const char *path = c->db->target;
	sqlite3 *h = NULL;
	int rc, ret;

	/* Only before the pool's first connection: closing any descriptor of the file drops
	 * every POSIX lock this process holds on it (fcntl(2)), including the shared locks of
	 * connections already open, after which another process closing its connection takes
	 * the exclusive lock, checkpoints and deletes the WAL under us. */
	if (c == &c->db->conns[0]) {
		ret = prepare_file(path, err, errlen);
		if (ret < 0)
			return ret;
	}
	/* NOMUTEX: a pool slot is used by one thread at a time (db.h). */
	rc = sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "sqlite database %s: %s", path,
			 h ? sqlite3_errmsg(h) : sqlite3_errstr(rc));
		sqlite3_close_v2(h);
		return SG_EIO;
	}
	c->h = h;
	sqlite3_extended_result_codes(h, 1);
	sqlite3_busy_timeout(h, BUSY_TIMEOUT_MS);
	sqlite3_limit(h, SQLITE_LIMIT_SQL_LENGTH, SQL_MAX_LEN);
	sqlite3_limit(h, SQLITE_LIMIT_LENGTH, VALUE_MAX_LEN);
	sqlite3_limit(h, SQLITE_LIMIT_VARIABLE_NUMBER, SG_DB_MAX_PARAMS);
	/* Switching a new file to WAL takes an exclusive lock and answers SQLITE_BUSY at once,
	 * without the busy handler, when several servers open it together: retry for as long
	 * as busy_timeout would have waited. */
	for (int waited = 0;; waited += 10) {
		ret = pragma(c, "PRAGMA journal_mode=WAL", "wal", err, errlen);
		if (ret != SG_EAGAIN || waited >= BUSY_TIMEOUT_MS)
			break;
		nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
	}
	if (ret == 0)
		ret = pragma(c, "PRAGMA foreign_keys=ON", NULL, err, errlen);
	if (ret == 0)
		ret = pragma(c, "PRAGMA foreign_keys", "1", err, errlen);
	/* ANALYZE and PRAGMA optimize sample at most 400 rows per index: milliseconds at any
	 * size (https://sqlite.org/lang_analyze.html#approx; sg_db_analyze). A SQLite before
	 * 3.32 ignores the pragma and reads whole indexes. */
	if (ret == 0)
		ret = pragma(c, "PRAGMA analysis_limit=400", NULL, err, errlen);
	if (ret == 0 && c == &c->db->conns[0])
		ret = integrity(c, path, err, errlen);
	else if (ret < 0 && ((sqlite3_errcode(h) & 0xff) == SQLITE_CORRUPT ||
			     (sqlite3_errcode(h) & 0xff) == SQLITE_NOTADB))
		snprintf(err, errlen,
			 "sqlite database %s is damaged (%s): restore it from a backup", path,
			 sqlite3_errmsg(h));
	if (ret < 0) {
		sqlite3_close_v2(h);
		c->h = NULL;
	}
	return ret;
}

static void sq_disconnect(struct sg_db_conn *c)
{
	/* SQLite's advice for long-lived connections: refresh the planner's statistics where
	 * they would change a plan (https://sqlite.org/lang_analyze.html#pragopt). */
	cache_free(c);
	if (c->h)
		(void)sqlite3_exec(c->h, "PRAGMA optimize", NULL, NULL, NULL);
	sqlite3_close_v2(c->h);
	c->h = NULL;
}

static int sq_check(struct sg_db_conn *c)
{
	return c->h ? 0 : SG_EIO;
}

static bool sq_in_transaction(const struct sg_db_conn *c)
{
	return c->h && !sqlite3_get_autocommit(c->h);
}

/* Binds params[k-1] to every "$k"; refuses any placeholder without a value. */
static int bind_params(struct sg_db_conn *c, sqlite3_stmt *st, int n, const char *const *params)
{
	int i, count = sqlite3_bind_parameter_count(st);

	for (i = 1; i <= count; i++) {
		const char *name = sqlite3_bind_parameter_name(st, i);
		char *end;
		long k;
		int rc;

		if (!name || name[0] != '$' || name[1] < '1' || name[1] > '9') {
			db_seterr(c, "placeholder %s: use $1..$N", name ? name : "?");
			return SG_EINVAL;
		}
		errno = 0;
		k = strtol(name + 1, &end, 10);
		if (*end || errno || k > n) {
			db_seterr(c, "placeholder %s has no value (%d given)", name, n);
			return SG_EINVAL;
		}
		if (params[k - 1])
			rc = sqlite3_bind_text(st, i, params[k - 1], -1, SQLITE_STATIC);
		else
			rc = sqlite3_bind_null(st, i);
		if (rc != SQLITE_OK)
			return fail(c, rc, "binding parameters");
	}
	return 0;
}

static bool only_space(const char *p)
{
	for (; *p; p++)
		if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != ';')
			return false;
	return true;
}

static int sq_run(struct sg_db_conn *c, const char *sql, int n, const char *const *params,
		  struct sg_db_res **res)
{
	sqlite3 *h = c->h;
	sqlite3_stmt *st = NULL;
	struct sg_db_res *r = NULL;
	const char *tail = NULL;
	const char *vals[256];
	size_t lens[256];
	sqlite3_int64 before;
	size_t sqllen = strlen(sql);
	uint64_t hash = sql_hash(sql, sqllen);
	bool cached = false;
	int rc, ret = 0, cols, i;

	if (!h) {
		db_seterr(c, "sqlite connection is not open");
		return SG_EIO;
	}
	if (sqllen < STMT_CACHE_SQL)
		st = cache_get(c, sql, sqllen, hash);
	cached = st != NULL;
	if (!st) {
		rc = sqlite3_prepare_v3(h, sql, -1,
					sqllen < STMT_CACHE_SQL ? SQLITE_PREPARE_PERSISTENT : 0, &st,
					&tail);
		if (rc != SQLITE_OK)
			return fail(c, rc, "prepare");
		if (!st) {
			db_seterr(c, "empty SQL statement");
			return SG_EINVAL;
		}
		if (tail && !only_space(tail)) {
			db_seterr(c, "one SQL statement per call (more follows at \"%.20s\")",
				  tail);
			ret = SG_EINVAL;
			goto out;
		}
		if (sqllen < STMT_CACHE_SQL)
			cached = cache_put(c, sql, sqllen, hash, st);
	}
	ret = bind_params(c, st, n, params);
	if (ret < 0)
		goto out;
	before = sqlite3_total_changes64(h);
	rc = sqlite3_step(st);
	/* The columns after the first step: a kept statement whose tables changed since it was
	 * prepared (a migration, here or by another server) is prepared again inside that step,
	 * and `SELECT *` may then have more columns. */
	cols = sqlite3_column_count(st);
	if (cols > (int)(sizeof(vals) / sizeof(vals[0]))) {
		db_seterr(c, "result has %d columns, more than %zu", cols,
			  sizeof(vals) / sizeof(vals[0]));
		ret = SG_ERANGE;
		goto out;
	}
	if (res && cols > 0) {
		r = db_res_new(cols);
		if (!r) {
			ret = SG_ENOMEM;
			goto out;
		}
		for (i = 0; i < cols; i++) {
			ret = db_res_set_colname(r, i, sqlite3_column_name(st, i));
			if (ret < 0)
				goto out;
		}
	}
	for (; rc == SQLITE_ROW; rc = sqlite3_step(st)) {
		if (!r)
			continue;
		for (i = 0; i < cols; i++) {
			if (sqlite3_column_type(st, i) == SQLITE_NULL) {
				vals[i] = NULL;
				lens[i] = 0;
				continue;
			}
			vals[i] = (const char *)sqlite3_column_text(st, i);
			if (!vals[i]) {
				ret = SG_ENOMEM;
				db_seterr(c, "out of memory reading a row");
				goto out;
			}
			lens[i] = (size_t)sqlite3_column_bytes(st, i);
		}
		ret = db_res_add_row(r, vals, lens);
		if (ret < 0) {
			db_seterr(c, "result too large (over %d rows or %u bytes): page it",
				  SG_DB_MAX_ROWS, SG_DB_MAX_RESULT_BYTES);
			goto out;
		}
	}
	if (rc != SQLITE_DONE) {
		ret = fail(c, rc, "step");
		goto out;
	}
	if (r)
		ret = sg_db_res_rows(r);
	else
		/* sqlite3_changes() keeps the count of the last INSERT/UPDATE/DELETE, so it is
		 * only meaningful if this statement changed something. */
		ret = sqlite3_total_changes64(h) != before ? sqlite3_changes(h) : 0;
out:
	if (cached) {
		/* Kept for the next run: reset (ends its read, releases its locks) and without
		 * the caller's values, which SQLITE_STATIC bound in place. */
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	} else {
		sqlite3_finalize(st);
	}
	if (ret < 0 || !res) {
		sg_db_res_free(r);
		r = NULL;
	}
	if (res)
		*res = r;
	return ret;
}

const struct db_ops db_sqlite_ops = {
    .connect = sq_connect,
    .disconnect = sq_disconnect,
    .check = sq_check,
    .run = sq_run,
    .in_transaction = sq_in_transaction,
    .begin_sql = "BEGIN IMMEDIATE",
};
