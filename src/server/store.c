/* `secureguard server backup | restore | migrate-store` (issue 18, docs/OPERATIONS.md).
 *
 * backup FILE: a consistent snapshot of a live database. SQLite: the online backup API
 * (https://sqlite.org/backup.html) copies every page inside one read transaction, which in WAL
 * mode neither blocks the servers' writers nor sees them; the copy is checked (quick_check)
 * before it is renamed into place. PostgreSQL: pg_dump (custom format), which dumps from one
 * repeatable-read snapshot. Connection settings reach pg_dump and pg_restore through their
 * environment (PGHOST, PGPASSWORD, ...: libpq's own variable for each URI parameter), never their
 * command line, which every user of the machine can read.
 *
 * restore FILE: into a database that holds no data (a new SQLite file; an empty PostgreSQL
 * database), so a restore never overwrites anything; then the schema is brought to this server's
 * version and the audit chain is verified. The kind of FILE is read from its first bytes.
 *
 * migrate-store --from sqlite:... --to postgresql://...: every row of every table, parents before
 * children (foreign keys), audit rows in id order (the append-only trigger wants the next id), in
 * one transaction on the target (a failure leaves it empty); then each table is compared row for
 * row (a sorted list of SHA-384 digests of the rows' text values per table, so neither engine's
 * collation matters), the audit chain verified on the target and its head compared with the
 * source's.
 */
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "secureguard/sg_errors.h"
#include "server/audit.h"
#include "server/db_int.h"
#include "server/server.h"
#include "server/srv_int.h"

#define PAGE_ROWS 2000
#define MAX_TABLES 128

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: secureguard server backup FILE [--db URL | --data-dir DIR]\n"
		"       secureguard server restore FILE [--db URL | --data-dir DIR]\n"
		"       secureguard server migrate-store --from sqlite:PATH --to postgresql://...\n"
		"backup: a consistent snapshot of a running server's database (SQLite backup API;\n"
		"  pg_dump for PostgreSQL). restore: into a new SQLite file or an empty PostgreSQL\n"
		"  database, then the audit chain is verified. migrate-store: every row from SQLite\n"
		"  to an empty PostgreSQL database, compared table by table, the audit chain verified.\n"
		"Default --db: sqlite:DATA_DIR/server.db (DATA_DIR /var/lib/secureguard).\n");
}

static const char *sqlite_path(const char *url)
{
	const char *p = url + 7;

	return !strncmp(p, "//", 2) ? p + 2 : p;
}

static bool is_sqlite(const char *url)
{
	return !strncmp(url, "sqlite:", 7);
}

static bool is_pg(const char *url)
{
	return !strncmp(url, "postgresql://", 13) || !strncmp(url, "postgres://", 11);
}

/* ---- child processes (pg_dump, pg_restore) ---------------------------------------------------- */

/* Runs argv with the URI's parameters in libpq's environment variables; 0 when it exits 0. */
static int run_pg_tool(const char *url, char *const argv[], char *err, size_t errlen)
{
	PQconninfoOption *opts;
	char *perr = NULL;
	int status;
	pid_t pid;

	opts = PQconninfoParse(url, &perr);
	if (!opts) {
		snprintf(err, errlen, "database URL: %s", perr ? perr : "out of memory");
		PQfreemem(perr);
		return SG_EINVAL;
	}
	pid = fork();
	if (pid < 0) {
		PQconninfoFree(opts);
		snprintf(err, errlen, "fork: %s", strerror(errno));
		return SG_EIO;
	}
	if (pid == 0) {
		for (PQconninfoOption *o = opts; o->keyword; o++) {
			if (o->envvar && o->val && *o->val)
				setenv(o->envvar, o->val, 1);
		}
		execvp(argv[0], argv);
		fprintf(stderr, "secureguard server: %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	PQconninfoFree(opts);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			snprintf(err, errlen, "waiting for %s: %s", argv[0], strerror(errno));
			return SG_EIO;
		}
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		snprintf(err, errlen, "%s could not be run (Debian: postgresql-client)", argv[0]);
	else
		snprintf(err, errlen, "%s failed (%s %d; its message is above)", argv[0],
			 WIFEXITED(status) ? "exit status" : "signal",
			 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	return SG_EIO;
}

/* ---- backup ------------------------------------------------------------------------------------ */

static int sqlite_copy(sqlite3 *src, sqlite3 *dst, char *err, size_t errlen)
{
	sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
	int rc;

	if (!b) {
		snprintf(err, errlen, "sqlite backup: %s", sqlite3_errmsg(dst));
		return SG_EIO;
	}
	/* All pages in one step: one read transaction, so one consistent snapshot. Busy only
	 * while another connection holds an exclusive lock (a checkpoint truncating the WAL). */
	for (int tries = 0;; tries++) {
		rc = sqlite3_backup_step(b, -1);
		if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) || tries >= 1000)
			break;
		nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
	}
	sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE) {
		snprintf(err, errlen, "sqlite backup: %s", sqlite3_errstr(rc));
		return SG_EIO;
	}
	return 0;
}

/* One text value of a one-row query on a raw SQLite handle ("" when none); 0 or SG_EIO. */
static int sqlite_one(sqlite3 *h, const char *sql, char *out, size_t outlen)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(h, sql, -1, &st, NULL);

	out[0] = '\0';
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_text(st, 0))
		snprintf(out, outlen, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : SG_EIO;
}

/* Creates path 0600, failing if it exists: a backup never replaces a file. */
static int create_new(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return errno == EEXIST ? SG_EEXIST : SG_EIO;
	}
	close(fd);
	return 0;
}

/* A backup is written to FILE.partial (0600) and renamed to FILE once complete; FILE must not
 * exist. tmp gets the partial file's name (PATH_MAX). */
static int partial_file(const char *file, char *tmp, char *err, size_t errlen)
{
	if (access(file, F_OK) == 0) {
		snprintf(err, errlen, "%s exists: a backup never replaces a file", file);
		return SG_EEXIST;
	}
	if (snprintf(tmp, PATH_MAX, "%s.partial", file) >= PATH_MAX) {
		snprintf(err, errlen, "%s: path too long", file);
		return SG_EINVAL;
	}
	unlink(tmp); /* a leftover of an interrupted backup */
	return create_new(tmp, err, errlen);
}

static int backup_sqlite(const char *url, const char *file, char *err, size_t errlen)
{
	const char *path = sqlite_path(url);
	char tmp[PATH_MAX], check[64] = "", rows[32] = "", head[128] = "";
	sqlite3 *src = NULL, *dst = NULL;
	struct stat st;
	int ret;

	if (stat(path, &st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return SG_ENOENT;
	}
	ret = partial_file(file, tmp, err, errlen);
	if (ret < 0)
		return ret;
	if (sqlite3_open_v2(path, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "opening %.300s: %s", src ? tmp : path,
			 sqlite3_errmsg(dst ? dst : src));
		ret = SG_EIO;
		goto out;
	}
	sqlite3_busy_timeout(src, DB_WRITER_WAIT_S * 1000);
	ret = sqlite_copy(src, dst, err, errlen);
	if (ret < 0)
		goto out;
	/* The copy is read back before it counts as a backup. */
	if (sqlite_one(dst, "PRAGMA quick_check", check, sizeof(check)) < 0 ||
	    strcmp(check, "ok") != 0) {
		snprintf(err, errlen, "the copy does not pass PRAGMA quick_check: %s", check);
		ret = SG_EIO;
		goto out;
	}
	(void)sqlite_one(dst, "SELECT COUNT(*) FROM audit_log", rows, sizeof(rows));
	(void)sqlite_one(dst, "SELECT id || ':' || hash FROM audit_log ORDER BY id DESC LIMIT 1",
			 head, sizeof(head));
	sqlite3_close_v2(dst);
	dst = NULL;
	if (rename(tmp, file) < 0) {
		snprintf(err, errlen, "renaming %.300s to %.300s: %s", tmp, file, strerror(errno));
		ret = SG_EIO;
		goto out;
	}
	printf("backup: %s: SQLite snapshot of %s, %s audit rows%s%s\n", file, path,
	       rows[0] ? rows : "0", head[0] ? ", head " : "", head);
	ret = 0;
out:
	sqlite3_close_v2(src);
	sqlite3_close_v2(dst);
	if (ret < 0)
		unlink(tmp);
	return ret;
}

static int backup_pg(const char *url, const char *file, char *err, size_t errlen)
{
	char tmp[PATH_MAX];
	int ret;

	ret = partial_file(file, tmp, err, errlen);
	if (ret < 0)
		return ret;
	{
		char *argv[] = {"pg_dump", "--format=custom", "--no-password", "--file", tmp, NULL};

		ret = run_pg_tool(url, argv, err, errlen);
	}
	if (ret == 0 && rename(tmp, file) < 0) {
		snprintf(err, errlen, "renaming %.300s to %.300s: %s", tmp, file, strerror(errno));
		ret = SG_EIO;
	}
	if (ret < 0) {
		unlink(tmp);
		return ret;
	}
	printf("backup: %s: pg_dump (custom format) snapshot\n", file);
	return 0;
}

/* ---- verification ------------------------------------------------------------------------------ */

static int verify_chain(const char *url, const char *what, char *err, size_t errlen)
{
	struct sg_db *db = NULL;
	int64_t bad = 0;
	char msg[256] = "";
	int ret;

	/* Opening also brings an older backup's schema to this server's version. */
	ret = sg_db_open(&db, url, 1, err, errlen);
	if (ret < 0)
		return ret;
	ret = sg_audit_verify(db, &bad, msg, sizeof(msg));
	sg_db_close(db);
	if (ret < 0) {
		snprintf(err, errlen, "%s, but the audit chain does not verify: %s", what, msg);
		return ret;
	}
	printf("%s; %s\n", what, msg);
	return 0;
}

/* ---- restore ----------------------------------------------------------------------------------- */

enum kind { K_UNKNOWN, K_SQLITE, K_PGDUMP };

static enum kind file_kind(const char *file, char *err, size_t errlen)
{
	char magic[16] = {0};
	FILE *f = fopen(file, "rbe");
	size_t n;

	if (!f) {
		snprintf(err, errlen, "%s: %s", file, strerror(errno));
		return K_UNKNOWN;
	}
	n = fread(magic, 1, sizeof(magic), f);
	fclose(f);
	if (n == 16 && !memcmp(magic, "SQLite format 3", 16))
		return K_SQLITE;
	if (n >= 5 && !memcmp(magic, "PGDMP", 5))
		return K_PGDUMP;
	snprintf(err, errlen, "%s is neither a SQLite database nor a pg_dump archive", file);
	return K_UNKNOWN;
}

static int restore_sqlite(const char *file, const char *url, char *err, size_t errlen)
{
	const char *path = sqlite_path(url);
	sqlite3 *src = NULL, *dst = NULL;
	char check[64] = "", what[PATH_MAX + 64];
	struct stat st;
	int ret;

	if (stat(path, &st) == 0 && st.st_size > 0) {
		snprintf(err, errlen,
			 "%s exists and is not empty: restore into a new file (a restore never "
			 "replaces a database)",
			 path);
		return SG_EEXIST;
	}
	if (sqlite3_open_v2(file, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", file, sqlite3_errmsg(src));
		ret = SG_EIO;
		goto out;
	}
	if (sqlite_one(src, "PRAGMA quick_check", check, sizeof(check)) < 0 ||
	    strcmp(check, "ok") != 0) {
		snprintf(err, errlen, "%s does not pass PRAGMA quick_check: %s", file, check);
		ret = SG_EIO;
		goto out;
	}
	if (access(path, F_OK) != 0 && (ret = create_new(path, err, errlen)) < 0)
		goto out;
	if (sqlite3_open_v2(path, &dst, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(dst));
		ret = SG_EIO;
		goto out;
	}
	ret = sqlite_copy(src, dst, err, errlen);
out:
	sqlite3_close_v2(src);
	sqlite3_close_v2(dst);
	if (ret < 0)
		return ret;
	snprintf(what, sizeof(what), "restore: %s into %s", file, path);
	return verify_chain(url, what, err, errlen);
}

/* The tables of the public schema: none in a database fit to restore into. */
static int pg_empty(const char *url, char *err, size_t errlen)
{
	PGconn *h = PQconnectdb(url);
	PGresult *r;
	int ret = 0;

	if (PQstatus(h) != CONNECTION_OK) {
		snprintf(err, errlen, "postgresql: %s", PQerrorMessage(h));
		PQfinish(h);
		return SG_EIO;
	}
	r = PQexec(h, "SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema()");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "postgresql: %s", PQerrorMessage(h));
		ret = SG_EIO;
	} else if (atoi(PQgetvalue(r, 0, 0)) != 0) {
		snprintf(err, errlen,
			 "database %s already has %s tables: restore into a new, empty database "
			 "(CREATE DATABASE ... OWNER ...; a restore never replaces data)",
			 PQdb(h), PQgetvalue(r, 0, 0));
		ret = SG_EEXIST;
	}
	PQclear(r);
	PQfinish(h);
	return ret;
}

static int restore_pg(const char *file, const char *url, char *err, size_t errlen)
{
	char what[PATH_MAX + 64];
	int ret = pg_empty(url, err, errlen);

	if (ret < 0)
		return ret;
	{
		/* The database comes from PGDATABASE (run_pg_tool); "-d" only makes pg_restore
		 * restore into it rather than print a script. --no-owner: the objects belong to
		 * the user restoring, the one the servers log in as. */
		const char *db = getenv("PGDATABASE");
		PQconninfoOption *opts = PQconninfoParse(url, NULL);
		char dbname[256] = "";
		char *argv[] = {"pg_restore",	      "--no-owner", "--no-privileges",
				"--exit-on-error",    "--single-transaction", "--no-password",
				"-d",		      dbname,		     (char *)file, NULL};

		for (PQconninfoOption *o = opts; o && o->keyword; o++) {
			if (!strcmp(o->keyword, "dbname") && o->val)
				snprintf(dbname, sizeof(dbname), "%s", o->val);
			if (!dbname[0] && !strcmp(o->keyword, "user") && o->val)
				snprintf(dbname, sizeof(dbname), "%s", o->val);
		}
		PQconninfoFree(opts);
		if (!dbname[0] && db)
			snprintf(dbname, sizeof(dbname), "%s", db);
		if (!dbname[0]) {
			snprintf(err, errlen, "the database URL names no database");
			return SG_EINVAL;
		}
		ret = run_pg_tool(url, argv, err, errlen);
	}
	if (ret < 0)
		return ret;
	snprintf(what, sizeof(what), "restore: %s into PostgreSQL", file);
	return verify_chain(url, what, err, errlen);
}

/* ---- migrate-store ----------------------------------------------------------------------------- */

struct table {
	char name[64];
	int ncols;
	char cols[SG_DB_MAX_PARAMS][64];
	char order[512]; /* ORDER BY of a stable scan (primary key, else every column) */
	bool done;
};

static int q1(struct sg_db_conn *c, const char *sql, int n, const char *const *p, int64_t *v)
{
	struct sg_db_res *r = NULL;
	int rc = sg_db_query(c, &r, sql, n, p);

	if (rc >= 0)
		*v = sg_db_res_get(r, 0, 0) ? strtoll(sg_db_res_get(r, 0, 0), NULL, 10) : 0;
	sg_db_res_free(r);
	return rc < 0 ? rc : 0;
}

/* Only names made of [a-z0-9_] are used in SQL text (the schema's own). */
static bool plain_name(const char *s)
{
	if (!*s || strlen(s) >= 64)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

/* The source's tables with their columns, parents before children. */
static int list_tables(struct sg_db_conn *c, struct table *t, int *nt, char *err, size_t errlen)
{
	struct sg_db_res *r = NULL, *cr = NULL, *fr = NULL;
	int rc, n = 0;

	rc = sg_db_query(c, &r,
			 "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
			 "'sqlite_%' AND name <> 'schema_migrations' ORDER BY rowid",
			 0, NULL);
	if (rc < 0)
		goto dberr;
	if (rc > MAX_TABLES) {
		snprintf(err, errlen, "more than %d tables", MAX_TABLES);
		sg_db_res_free(r);
		return SG_ERANGE;
	}
	for (int i = 0; i < rc; i++) {
		const char *name = sg_db_res_get(r, i, 0);
		char sql[128], pk[SG_DB_MAX_PARAMS][64];
		int npk = 0, maxpk = 0;

		if (!plain_name(name)) {
			snprintf(err, errlen, "unexpected table name \"%.64s\"", name);
			sg_db_res_free(r);
			return SG_EINVAL;
		}
		memset(&t[n], 0, sizeof(t[n]));
		snprintf(t[n].name, sizeof(t[n].name), "%s", name);
		snprintf(sql, sizeof(sql), "SELECT name, pk FROM pragma_table_info('%s')", name);
		if (sg_db_query(c, &cr, sql, 0, NULL) < 0) {
			sg_db_res_free(r);
			goto dberr;
		}
		for (int k = 0; k < sg_db_res_rows(cr); k++) {
			const char *col = sg_db_res_get(cr, k, 0);
			int pkpos = atoi(sg_db_res_get(cr, k, 1) ? sg_db_res_get(cr, k, 1) : "0");

			if (!plain_name(col) || t[n].ncols >= SG_DB_MAX_PARAMS) {
				snprintf(err, errlen, "table %s: unexpected column \"%.64s\"", name,
					 col ? col : "");
				sg_db_res_free(cr);
				sg_db_res_free(r);
				return SG_EINVAL;
			}
			snprintf(t[n].cols[t[n].ncols++], 64, "%s", col);
			if (pkpos > 0 && pkpos <= SG_DB_MAX_PARAMS) {
				snprintf(pk[pkpos - 1], 64, "%s", col);
				npk++;
				maxpk = pkpos > maxpk ? pkpos : maxpk;
			}
		}
		sg_db_res_free(cr);
		cr = NULL;
		if (npk && npk == maxpk) {
			for (int k = 0; k < npk; k++)
				snprintf(t[n].order + strlen(t[n].order),
					 sizeof(t[n].order) - strlen(t[n].order), "%s%s",
					 k ? ", " : "", pk[k]);
		} else {
			for (int k = 0; k < t[n].ncols; k++)
				snprintf(t[n].order + strlen(t[n].order),
					 sizeof(t[n].order) - strlen(t[n].order), "%s%s",
					 k ? ", " : "", t[n].cols[k]);
		}
		n++;
	}
	sg_db_res_free(r);
	*nt = n;

	/* Topological order by foreign keys (a table referring to itself needs nothing). */
	{
		struct table *sorted = calloc((size_t)n, sizeof(*sorted));
		int ns = 0;

		if (!sorted)
			return SG_ENOMEM;
		while (ns < n) {
			bool progress = false;

			for (int i = 0; i < n; i++) {
				char sql[160];
				bool ready = true;

				if (t[i].done)
					continue;
				snprintf(sql, sizeof(sql),
					 "SELECT DISTINCT \"table\" FROM pragma_foreign_key_list('%s')",
					 t[i].name);
				if (sg_db_query(c, &fr, sql, 0, NULL) < 0) {
					free(sorted);
					goto dberr;
				}
				for (int k = 0; k < sg_db_res_rows(fr) && ready; k++) {
					const char *parent = sg_db_res_get(fr, k, 0);

					for (int j = 0; j < n; j++)
						if (j != i && !t[j].done && parent &&
						    !strcmp(t[j].name, parent))
							ready = false;
				}
				sg_db_res_free(fr);
				fr = NULL;
				if (ready) {
					t[i].done = true;
					sorted[ns++] = t[i];
					progress = true;
				}
			}
			if (!progress) {
				snprintf(err, errlen, "the tables' foreign keys form a cycle");
				free(sorted);
				return SG_EINVAL;
			}
		}
		memcpy(t, sorted, (size_t)n * sizeof(*t));
		free(sorted);
	}
	return 0;
dberr:
	snprintf(err, errlen, "source: %s", sg_db_errmsg(c));
	return SG_EIO;
}

static void cols_sql(const struct table *t, char *out, size_t len)
{
	out[0] = '\0';
	for (int k = 0; k < t->ncols; k++)
		snprintf(out + strlen(out), len - strlen(out), "%s%s", k ? ", " : "", t->cols[k]);
}

static int copy_table(struct sg_db_conn *src, struct sg_db_conn *dst, const struct table *t,
		      int64_t *copied, char *err, size_t errlen)
{
	char cols[4096], sel[5000], ins[8192], lim[24], off[24];
	const char *p[2] = {lim, off};
	int64_t offset = 0;
	int rc;

	cols_sql(t, cols, sizeof(cols));
	snprintf(sel, sizeof(sel), "SELECT %s FROM %s ORDER BY rowid LIMIT $1 OFFSET $2", cols,
		 t->name);
	snprintf(ins, sizeof(ins), "INSERT INTO %s (%s) VALUES (", t->name, cols);
	for (int k = 0; k < t->ncols; k++)
		snprintf(ins + strlen(ins), sizeof(ins) - strlen(ins), "%s$%d", k ? ", " : "",
			 k + 1);
	snprintf(ins + strlen(ins), sizeof(ins) - strlen(ins), ")");
	snprintf(lim, sizeof(lim), "%d", PAGE_ROWS);
	*copied = 0;
	for (;;) {
		struct sg_db_res *r = NULL;

		snprintf(off, sizeof(off), "%lld", (long long)offset);
		rc = sg_db_query(src, &r, sel, 2, p);
		if (rc < 0) {
			snprintf(err, errlen, "reading %s: %s", t->name, sg_db_errmsg(src));
			return rc;
		}
		for (int i = 0; i < rc; i++) {
			const char *v[SG_DB_MAX_PARAMS];

			for (int k = 0; k < t->ncols; k++)
				v[k] = sg_db_res_get(r, i, k);
			if (sg_db_exec(dst, ins, t->ncols, v) < 0) {
				snprintf(err, errlen, "writing %s, row %lld: %s", t->name,
					 (long long)(offset + i + 1), sg_db_errmsg(dst));
				sg_db_res_free(r);
				return SG_EIO;
			}
		}
		sg_db_res_free(r);
		*copied += rc;
		offset += rc;
		if (rc < PAGE_ROWS)
			return 0;
	}
}

static int cmp_digest(const void *a, const void *b)
{
	return memcmp(a, b, SG_SHA384_LEN);
}

/* The sorted SHA-384 digests of a table's rows (values as text, each with its length, NULL
 * apart from ""). *out is malloc'd, *n rows. */
static int table_digests(struct sg_db_conn *c, const struct table *t, uint8_t **out, size_t *n,
			 char *err, size_t errlen)
{
	char cols[4096], sel[5000], lim[24], off[24];
	const char *p[2] = {lim, off};
	uint8_t *d = NULL;
	size_t cap = 0, cnt = 0;
	int64_t offset = 0;
	int rc;

	cols_sql(t, cols, sizeof(cols));
	snprintf(sel, sizeof(sel), "SELECT %s FROM %s ORDER BY %s LIMIT $1 OFFSET $2", cols,
		 t->name, t->order);
	snprintf(lim, sizeof(lim), "%d", PAGE_ROWS);
	for (;;) {
		struct sg_db_res *r = NULL;

		snprintf(off, sizeof(off), "%lld", (long long)offset);
		rc = sg_db_query(c, &r, sel, 2, p);
		if (rc < 0) {
			snprintf(err, errlen, "reading %s: %s", t->name, sg_db_errmsg(c));
			free(d);
			return rc;
		}
		if (cnt + (size_t)rc > cap) {
			uint8_t *nd;

			cap = (cnt + (size_t)rc) * 2;
			nd = realloc(d, cap * SG_SHA384_LEN);
			if (!nd) {
				sg_db_res_free(r);
				free(d);
				return SG_ENOMEM;
			}
			d = nd;
		}
		for (int i = 0; i < rc; i++) {
			struct sg_iov iov[2 * SG_DB_MAX_PARAMS];
			uint64_t lens[SG_DB_MAX_PARAMS];

			for (int k = 0; k < t->ncols; k++) {
				const char *v = sg_db_res_get(r, i, k);

				lens[k] = v ? sg_db_res_len(r, i, k) : UINT64_MAX;
				iov[2 * k] = (struct sg_iov){&lens[k], sizeof(lens[k])};
				iov[2 * k + 1] = (struct sg_iov){v ? v : "", v ? lens[k] : 0};
			}
			if (!sg_sha384(d + cnt * SG_SHA384_LEN, iov, 2 * (size_t)t->ncols)) {
				sg_db_res_free(r);
				free(d);
				return SG_ECRYPTO;
			}
			cnt++;
		}
		sg_db_res_free(r);
		offset += rc;
		if (rc < PAGE_ROWS)
			break;
	}
	if (cnt)
		qsort(d, cnt, SG_SHA384_LEN, cmp_digest);
	*out = d;
	*n = cnt;
	return 0;
}

static int compare_table(struct sg_db_conn *a, struct sg_db_conn *b, const struct table *t,
			 char *err, size_t errlen)
{
	uint8_t *da = NULL, *db = NULL;
	size_t na = 0, nb = 0;
	int ret;

	ret = table_digests(a, t, &da, &na, err, errlen);
	if (ret == 0)
		ret = table_digests(b, t, &db, &nb, err, errlen);
	if (ret == 0 && (na != nb || (na && memcmp(da, db, na * SG_SHA384_LEN)))) {
		snprintf(err, errlen, "table %s differs after the copy (%zu rows in the source, %zu "
			 "in the target)", t->name, na, nb);
		ret = SG_EIO;
	}
	free(da);
	free(db);
	return ret;
}

static int migrate_tx(struct sg_db_conn *s, struct sg_db_conn *d, struct table *t, int nt,
		      int64_t *total, char *err, size_t errlen)
{
	int ret;

	/* The target must hold nothing but the rows its migrations made (settings, sync_state:
	 * replaced by the source's). */
	for (int i = 0; i < nt; i++) {
		char sql[128];
		int64_t n = 0;

		snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s", t[i].name);
		if (q1(d, sql, 0, NULL, &n) < 0) {
			snprintf(err, errlen, "target: %s", sg_db_errmsg(d));
			return SG_EIO;
		}
		if (n && strcmp(t[i].name, "settings") && strcmp(t[i].name, "sync_state")) {
			snprintf(err, errlen,
				 "the target already holds data (%s: %lld rows): migrate into a new, "
				 "empty database",
				 t[i].name, (long long)n);
			return SG_EEXIST;
		}
	}
	for (int i = nt - 1; i >= 0; i--) {
		char sql[128];

		if (strcmp(t[i].name, "settings") && strcmp(t[i].name, "sync_state"))
			continue;
		snprintf(sql, sizeof(sql), "DELETE FROM %s", t[i].name);
		if (sg_db_exec(d, sql, 0, NULL) < 0) {
			snprintf(err, errlen, "target: %s", sg_db_errmsg(d));
			return SG_EIO;
		}
	}
	*total = 0;
	for (int i = 0; i < nt; i++) {
		int64_t n = 0;

		ret = copy_table(s, d, &t[i], &n, err, errlen);
		if (ret < 0)
			return ret;
		*total += n;
	}
	/* Identity columns continue after the ids copied. */
	for (int i = 0; i < nt; i++) {
		struct sg_db_res *r = NULL;
		const char *p[1] = {t[i].name};

		if (sg_db_query(d, &r,
				"SELECT column_name FROM information_schema.columns WHERE "
				"table_schema = current_schema() AND table_name = $1 AND "
				"is_identity = 'YES'",
				1, p) < 0) {
			snprintf(err, errlen, "target: %s", sg_db_errmsg(d));
			return SG_EIO;
		}
		for (int k = 0; k < sg_db_res_rows(r); k++) {
			const char *col = sg_db_res_get(r, k, 0);
			char sql[512];

			if (!plain_name(col))
				continue;
			snprintf(sql, sizeof(sql),
				 "SELECT setval(pg_get_serial_sequence('%s', '%s'), "
				 "(SELECT COALESCE(MAX(%s), 0) + 1 FROM %s), false)",
				 t[i].name, col, col, t[i].name);
			if (sg_db_exec(d, sql, 0, NULL) < 0) {
				snprintf(err, errlen, "target: %s", sg_db_errmsg(d));
				sg_db_res_free(r);
				return SG_EIO;
			}
		}
		sg_db_res_free(r);
	}
	return 0;
}

static int migrate_store(const char *from, const char *to, char *err, size_t errlen)
{
	struct sg_db *sdb = NULL, *ddb = NULL;
	struct sg_db_conn *s = NULL, *d = NULL;
	struct table *t = NULL;
	char sh[SG_AUDIT_HASH_HEX_LEN + 1], dh[SG_AUDIT_HASH_HEX_LEN + 1], what[256];
	int64_t sid = 0, did = 0, total = 0;
	int nt = 0, ret;
	struct stat st;

	if (!is_sqlite(from) || !is_pg(to)) {
		snprintf(err, errlen, "--from must be sqlite:PATH and --to postgresql://...");
		return SG_EINVAL;
	}
	/* Opening creates a missing SQLite file: a typo must not migrate an empty database. */
	if (stat(sqlite_path(from), &st) < 0) {
		snprintf(err, errlen, "%s: %s", sqlite_path(from), strerror(errno));
		return SG_ENOENT;
	}
	t = calloc(MAX_TABLES, sizeof(*t));
	if (!t)
		return SG_ENOMEM;
	/* Both at this server's schema version (an older source is migrated first). */
	ret = sg_db_open(&sdb, from, 1, err, errlen);
	if (ret < 0)
		goto out;
	ret = sg_db_open(&ddb, to, 1, err, errlen);
	if (ret < 0)
		goto out;
	s = sg_db_acquire(sdb);
	d = sg_db_acquire(ddb);
	/* The source's write lock for the whole copy: a server still running on it waits, and
	 * what is copied is one consistent state. */
	ret = sg_db_begin(s);
	if (ret < 0) {
		snprintf(err, errlen, "source: %s", sg_db_errmsg(s));
		goto out;
	}
	ret = list_tables(s, t, &nt, err, errlen);
	if (ret < 0)
		goto out;
	ret = sg_db_begin(d);
	if (ret < 0) {
		snprintf(err, errlen, "target: %s", sg_db_errmsg(d));
		goto out;
	}
	ret = migrate_tx(s, d, t, nt, &total, err, errlen);
	if (ret == 0 && sg_db_commit(d) < 0) {
		snprintf(err, errlen, "target: commit: %s", sg_db_errmsg(d));
		ret = SG_EIO;
	}
	if (ret < 0)
		goto out;
	/* Verified after the commit, from what the target really holds. */
	for (int i = 0; i < nt; i++) {
		ret = compare_table(s, d, &t[i], err, errlen);
		if (ret < 0)
			goto out;
	}
	ret = sg_audit_head(s, &sid, sh);
	if (ret == 0)
		ret = sg_audit_head(d, &did, dh);
	if (ret == 0 && (sid != did || strcmp(sh, dh))) {
		snprintf(err, errlen, "the audit head differs: source %lld:%s, target %lld:%s",
			 (long long)sid, sh, (long long)did, dh);
		ret = SG_EIO;
	}
	if (ret < 0)
		goto out;
	sg_db_release(s);
	sg_db_release(d);
	s = d = NULL;
	sg_db_close(ddb);
	ddb = NULL;
	snprintf(what, sizeof(what),
		 "migrate-store: %lld rows in %d tables copied and compared row for row, audit "
		 "head %lld:%.16s...",
		 (long long)total, nt, (long long)did, dh);
	ret = verify_chain(to, what, err, errlen);
out:
	sg_db_release(s);
	sg_db_release(d);
	sg_db_close(sdb);
	sg_db_close(ddb);
	free(t);
	return ret;
}

/* ---- the command ------------------------------------------------------------------------------- */

int srv_store_cmd(int argc, char **argv)
{
	const char *cmd = argv[0], *file = NULL, *url = NULL, *dir = "/var/lib/secureguard";
	const char *from = NULL, *to = NULL;
	char dbbuf[PATH_MAX + 16], err[1024] = "";
	int ret;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--db") && i + 1 < argc && !url) {
			url = argv[++i];
		} else if (!strcmp(a, "--data-dir") && i + 1 < argc) {
			dir = argv[++i];
		} else if (!strcmp(a, "--from") && i + 1 < argc && !from) {
			from = argv[++i];
		} else if (!strcmp(a, "--to") && i + 1 < argc && !to) {
			to = argv[++i];
		} else if (a[0] != '-' && !file) {
			file = a;
		} else {
			fprintf(stderr, "secureguard server %s: unexpected argument \"%.80s\"\n", cmd,
				a);
			usage(stderr);
			return 2;
		}
	}
	if (!strcmp(cmd, "migrate-store")) {
		if (!from || !to || file || url) {
			usage(stderr);
			return 2;
		}
		ret = migrate_store(from, to, err, sizeof(err));
		goto done;
	}
	if (!file || from || to) {
		usage(stderr);
		return 2;
	}
	if (!url) {
		snprintf(dbbuf, sizeof(dbbuf), "sqlite:%s/server.db", dir);
		url = dbbuf;
	}
	if (!is_sqlite(url) && !is_pg(url)) {
		fprintf(stderr, "secureguard server %s: --db must be sqlite:PATH or postgresql://...\n",
			cmd);
		return 2;
	}
	if (!strcmp(cmd, "backup")) {
		ret = is_sqlite(url) ? backup_sqlite(url, file, err, sizeof(err))
				     : backup_pg(url, file, err, sizeof(err));
	} else {
		enum kind k = file_kind(file, err, sizeof(err));

		if (k == K_UNKNOWN)
			ret = SG_EINVAL;
		else if ((k == K_SQLITE) != is_sqlite(url)) {
			snprintf(err, sizeof(err),
				 "%s is a %s backup and --db is %s: restore into the same engine "
				 "(then `secureguard server migrate-store` to move to PostgreSQL)",
				 file, k == K_SQLITE ? "SQLite" : "PostgreSQL",
				 is_sqlite(url) ? "SQLite" : "PostgreSQL");
			ret = SG_EINVAL;
		} else {
			ret = k == K_SQLITE ? restore_sqlite(file, url, err, sizeof(err))
					    : restore_pg(file, url, err, sizeof(err));
		}
	}
done:
	if (ret < 0) {
		fprintf(stderr, "secureguard server %s: %s\n", cmd, err);
		return 1;
	}
	return 0;
}
