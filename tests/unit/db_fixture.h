/* Shared by tests/unit/db.c and tests/unit/audit.c: every test gets a fresh database on the
 * engine under test. SQLite: a new file in a new temporary directory. PostgreSQL (only when
 * SG_PG_URL is set, see tests/server/pg.sh): the public schema of that database is dropped and
 * recreated, so the tests need a database of their own. */
#ifndef SG_TEST_DB_FIXTURE_H
#define SG_TEST_DB_FIXTURE_H

#include <dirent.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <unistd.h>

#include "server/db.h"
#include "test_util.h"

struct fx {
	enum sg_db_engine eng;
	char url[512];
	char dir[64];
	char path[128];
};

static enum sg_db_engine g_engine;
static const char *g_pg_url;

static int fx_setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	fx->eng = g_engine;
	if (fx->eng == SG_DB_SQLITE) {
		snprintf(fx->dir, sizeof(fx->dir), "/tmp/sg-dbtest.XXXXXX");
		if (!mkdtemp(fx->dir)) {
			free(fx);
			return -1;
		}
		snprintf(fx->path, sizeof(fx->path), "%s/t.db", fx->dir);
		snprintf(fx->url, sizeof(fx->url), "sqlite:%s", fx->path);
	} else {
		PGconn *pc = PQconnectdb(g_pg_url);
		PGresult *pr;
		int ok;

		if (PQstatus(pc) != CONNECTION_OK) {
			fprintf(stderr, "fixture: %s", PQerrorMessage(pc));
			PQfinish(pc);
			free(fx);
			return -1;
		}
		pr = PQexec(pc, "SET client_min_messages = warning; "
				"DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public");
		ok = PQresultStatus(pr) == PGRES_COMMAND_OK;
		if (!ok)
			fprintf(stderr, "fixture: %s", PQerrorMessage(pc));
		PQclear(pr);
		PQfinish(pc);
		if (!ok) {
			free(fx);
			return -1;
		}
		snprintf(fx->url, sizeof(fx->url), "%s", g_pg_url);
	}
	*state = fx;
	return 0;
}

/* Removes the SQLite database and whatever a test wrote next to it (exports). */
static int fx_teardown(void **state)
{
	struct fx *fx = *state;
	char p[sizeof(fx->dir) + 258];

	if (fx && fx->eng == SG_DB_SQLITE) {
		DIR *d = opendir(fx->dir);
		struct dirent *e;

		while (d && (e = readdir(d)) != NULL) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			snprintf(p, sizeof(p), "%s/%s", fx->dir, e->d_name);
			unlink(p);
		}
		if (d)
			closedir(d);
		rmdir(fx->dir);
	}
	free(fx);
	return 0;
}

static struct sg_db *fx_open(struct fx *fx, int pool)
{
	struct sg_db *db = NULL;
	char err[512];
	int ret = sg_db_open(&db, fx->url, pool, err, sizeof(err));

	if (ret < 0)
		fprintf(stderr, "sg_db_open(%s): %d %s\n", fx->url, ret, err);
	assert_int_equal(ret, 0);
	assert_non_null(db);
	return db;
}

/* Runs a statement that must succeed; prints the database's message if not. */
#define X(c, sql, n, p)                                                                            \
	do {                                                                                       \
		int x_ret_ = sg_db_exec((c), (sql), (n), (p));                                     \
		if (x_ret_ < 0)                                                                    \
			fprintf(stderr, "%s: %d %s\n", (sql), x_ret_, sg_db_errmsg(c));            \
		assert_true(x_ret_ >= 0);                                                          \
	} while (0)

/* Runs the test array on SQLite, then on PostgreSQL when SG_PG_URL is set. */
static int fx_run(const char *name, const struct CMUnitTest *tests, size_t n)
{
	char gname[64];
	int fails;

	g_engine = SG_DB_SQLITE;
	snprintf(gname, sizeof(gname), "%s.sqlite", name);
	fails = _cmocka_run_group_tests(gname, tests, n, NULL, NULL);
	g_pg_url = getenv("SG_PG_URL");
	if (g_pg_url && *g_pg_url) {
		g_engine = SG_DB_POSTGRES;
		snprintf(gname, sizeof(gname), "%s.postgresql", name);
		fails += _cmocka_run_group_tests(gname, tests, n, NULL, NULL);
	} else {
		printf("[ SKIPPED  ] %s.postgresql: SG_PG_URL not set (tests/server/pg.sh)\n",
		       name);
	}
	return fails;
}

#endif
