/* Unit tests for src/server/audit.c, on SQLite and (with SG_PG_URL) PostgreSQL:
 *
 * - the canonical hash against known answers from the Python reference in docs/AUDIT.md, and
 *   its length prefixes (NULL != "", a byte moved between fields changes the hash);
 * - append + verify; ids stay contiguous across a rolled-back append; concurrent appends from 4
 *   threads keep one chain;
 * - the triggers refuse UPDATE and DELETE (SG_EPERM); with the triggers dropped by the table
 *   owner, a changed field, a rewritten hash, swapped rows and a deleted row are each found and
 *   the first bad row named;
 * - exports written by hand (JSON and RFC 4180 CSV, NULL vs "", quotes, commas, newlines)
 *   verify offline; tampered copies are named; malformed files are refused with a position;
 * - `secureguard audit verify` exit statuses 0 / 1 / 2 and its messages;
 * - fields that are not UTF-8 are stored with '?' in place of each bad byte (both engines accept
 *   the row, the chain still verifies);
 * - anchors: a table rewritten and re-hashed from row k on verifies without them and is caught
 *   by an anchor taken before the rewrite (--anchor ID:HASH, --db and --file).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <secureguard/sg_errors.h>

#include "db_fixture.h"
#include "server/audit.h"

#define ZERO96                                                                                     \
	"0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" \
	"00000000"

/* Computed with the Python reference of docs/AUDIT.md. */
static const char *const kat_fields1[11] = {"auth.login",
					    "9b2c0f4e-1111-4222-8333-944455556666",
					    "admin",
					    "root@example.com",
					    NULL,
					    NULL,
					    NULL,
					    "login",
					    "{\"ok\":true}",
					    "127.0.0.1",
					    ""};
static const char kat_hash1[] = "d9a7e8e13dd1d14a984a1cf2a28611acf079950808d93e183da1224a3261873e"
				"ecba31c8dc5ae12cc7c2f17887453605";
static const char *const kat_fields2[11] = {
    "client.create",	       NULL,	 NULL, NULL,  "client", "c1",
    "laptop, \"work\"\nline2", "create", NULL, "::1", "curl/8"};
static const char kat_hash2[] = "c817ead89cdfa5aca27021df38aea391236481128bc551dfc95d1e55d1d6e03b"
				"79c1352faef62066ed6fff8308dc066c";

static void test_row_hash_kat(void **state)
{
	char h[97], h2[97];
	const char *f[11];
	struct fx *fx = *state;

	if (fx->eng != SG_DB_SQLITE)
		skip(); /* no database involved */
	assert_int_equal(sg_audit_row_hash(h, 1, 1795000000123LL, kat_fields1, ZERO96), 0);
	assert_string_equal(h, kat_hash1);
	assert_int_equal(sg_audit_row_hash(h2, 2, -5, kat_fields2, h), 0);
	assert_string_equal(h2, kat_hash2);

	/* NULL and "" differ; so does moving a byte from one field to the next. */
	memcpy(f, kat_fields1, sizeof(f));
	f[10] = NULL;
	assert_int_equal(sg_audit_row_hash(h2, 1, 1795000000123LL, f, ZERO96), 0);
	assert_string_not_equal(h2, kat_hash1);
	memcpy(f, kat_fields1, sizeof(f));
	f[2] = "admi";
	f[3] = "nroot@example.com";
	assert_int_equal(sg_audit_row_hash(h2, 1, 1795000000123LL, f, ZERO96), 0);
	assert_string_not_equal(h2, kat_hash1);
	/* id, ts and prev_hash are covered. */
	assert_int_equal(sg_audit_row_hash(h2, 2, 1795000000123LL, kat_fields1, ZERO96), 0);
	assert_string_not_equal(h2, kat_hash1);
	assert_int_equal(sg_audit_row_hash(h2, 1, 1795000000124LL, kat_fields1, ZERO96), 0);
	assert_string_not_equal(h2, kat_hash1);
	assert_int_equal(sg_audit_row_hash(h2, 1, 1795000000123LL, kat_fields1, kat_hash2), 0);
	assert_string_not_equal(h2, kat_hash1);
	assert_int_equal(sg_audit_row_hash(h2, 1, 1, kat_fields1, NULL), SG_EINVAL);
	assert_int_equal(sg_audit_row_hash(h2, 1, 1, NULL, ZERO96), SG_EINVAL);
	/* Over-long fields are refused, not truncated. */
	{
		char *big = malloc(SG_AUDIT_FIELD_MAX + 2);

		assert_non_null(big);
		memset(big, 'a', SG_AUDIT_FIELD_MAX + 1);
		big[SG_AUDIT_FIELD_MAX + 1] = '\0';
		memcpy(f, kat_fields1, sizeof(f));
		f[8] = big;
		assert_int_equal(sg_audit_row_hash(h2, 1, 1, f, ZERO96), SG_ERANGE);
		free(big);
	}
}

static void append_n(struct sg_db *db, int n, int base)
{
	struct sg_db_conn *c = sg_db_acquire(db);

	for (int i = 0; i < n; i++) {
		char name[32], details[64];
		struct sg_audit_event ev = {
		    .event_type = "client.create",
		    .actor_id = "u-1",
		    .actor_type = "admin",
		    .actor_name = "root@example.com",
		    .resource_type = "client",
		    .resource_id = i % 3 ? "c-1" : NULL,
		    .resource_name = name,
		    .action = "create",
		    .details = details,
		    .source_ip = i % 2 ? "127.0.0.1" : "",
		    .user_agent = i % 4 ? NULL : "curl/8, \"quoted\"\n",
		};
		int ret;

		snprintf(name, sizeof(name), "client %d", base + i);
		snprintf(details, sizeof(details), "{\"n\":%d,\"s\":\"a,b\"}", base + i);
		if (i % 2) {
			ret = sg_audit_append(c, &ev); /* its own transaction */
		} else {
			assert_int_equal(sg_db_begin(c), 0);
			ret = sg_audit_append(c, &ev);
			if (ret == 0)
				ret = sg_db_commit(c);
		}
		if (ret < 0)
			fprintf(stderr, "append: %d %s\n", ret, sg_db_errmsg(c));
		assert_int_equal(ret, 0);
	}
	sg_db_release(c);
}

static int64_t verify(struct sg_db *db, int expect_ret, const char *expect_msg)
{
	char err[256];
	int64_t bad = -1;
	int ret = sg_audit_verify(db, &bad, err, sizeof(err));

	if (ret != expect_ret || !strstr(err, expect_msg))
		fprintf(stderr, "verify: %d \"%s\", wanted %d \"%s\"\n", ret, err, expect_ret,
			expect_msg);
	assert_int_equal(ret, expect_ret);
	assert_non_null(strstr(err, expect_msg));
	return bad;
}

static void test_append_verify(void **state)
{
	struct fx *fx = *state;
	struct sg_db *db = fx_open(fx, 2);
	struct sg_db_conn *c;
	struct sg_db_res *r = NULL;
	struct sg_audit_event bad = {.actor_id = "x"};

	assert_int_equal(verify(db, 0, "audit chain intact: 0 rows"), 0);
	append_n(db, 20, 0);
	assert_int_equal(verify(db, 0, "audit chain intact: 20 rows"), 0);

	c = sg_db_acquire(db);
	assert_int_equal(sg_audit_append(c, &bad), SG_EINVAL); /* event_type is required */
	/* Row 1 links to 96 zeros, each next row to its predecessor, ts is in milliseconds. */
	assert_int_equal(
	    sg_db_query(c, &r,
			"SELECT a.prev_hash, b.prev_hash = a.hash, a.ts FROM audit_log a, "
			"audit_log b WHERE a.id = 1 AND b.id = 2",
			0, NULL),
	    1);
	assert_string_equal(sg_db_res_get(r, 0, 0), ZERO96);
	assert_true(!strcmp(sg_db_res_get(r, 0, 1), "1") || !strcmp(sg_db_res_get(r, 0, 1), "t"));
	assert_true(atoll(sg_db_res_get(r, 0, 2)) > 1700000000000LL);
	sg_db_res_free(r);

	/* A rolled-back append leaves no row and no gap. */
	{
		struct sg_audit_event ev = {.event_type = "auth.login"};

		assert_int_equal(sg_db_begin(c), 0);
		assert_int_equal(sg_audit_append(c, &ev), 0);
		sg_db_rollback(c);
		assert_int_equal(sg_audit_append(c, &ev), 0);
	}
	sg_db_release(c);
	assert_int_equal(verify(db, 0, "audit chain intact: 21 rows"), 0);
	sg_db_close(db);
}

struct appender {
	struct sg_db *db;
	int n;
};

static void *append_thread(void *arg)
{
	struct appender *a = arg;
	struct sg_audit_event ev = {.event_type = "thread.test", .action = "append"};

	for (int i = 0; i < 25; i++) {
		int ret;

		do {
			struct sg_db_conn *c = sg_db_acquire(a->db);

			ret = sg_db_begin(c);
			if (ret == 0)
				ret = sg_audit_append(c, &ev);
			if (ret == 0)
				ret = sg_db_commit(c);
			sg_db_release(c);
		} while (ret == SG_EAGAIN);
		if (ret == 0)
			a->n++;
	}
	return NULL;
}

static void test_append_concurrent(void **state)
{
	struct fx *fx = *state;
	struct sg_db *db = fx_open(fx, 4);
	struct appender a[4];
	pthread_t t[4];
	int i;

	for (i = 0; i < 4; i++) {
		a[i] = (struct appender){.db = db};
		assert_int_equal(pthread_create(&t[i], NULL, append_thread, &a[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(a[i].n, 25);
	}
	assert_int_equal(verify(db, 0, "audit chain intact: 100 rows"), 0);
	sg_db_close(db);
}

/* The table owner can drop the triggers; the chain still tells. */
static void drop_triggers(struct fx *fx, struct sg_db_conn *c)
{
	if (fx->eng == SG_DB_SQLITE) {
		X(c, "DROP TRIGGER audit_log_no_update", 0, NULL);
		X(c, "DROP TRIGGER audit_log_no_delete", 0, NULL);
	} else {
		X(c, "DROP TRIGGER audit_log_no_update ON audit_log", 0, NULL);
	}
}

static void test_triggers_and_tamper(void **state)
{
	struct fx *fx = *state;
	struct sg_db *db = fx_open(fx, 1);
	struct sg_db_conn *c;
	struct sg_db_res *r = NULL;
	char h[97];
	const char *f[11];
	const char *p[3];
	int k;

	append_n(db, 20, 100);
	c = sg_db_acquire(db);
	assert_int_equal(
	    sg_db_exec(c, "UPDATE audit_log SET actor_name = 'x' WHERE id = 7", 0, NULL), SG_EPERM);
	assert_non_null(strstr(sg_db_errmsg(c), "append-only"));
	assert_int_equal(sg_db_exec(c, "DELETE FROM audit_log WHERE id = 5", 0, NULL), SG_EPERM);
	assert_int_equal(sg_db_exec(c, "DELETE FROM audit_log", 0, NULL), SG_EPERM);
	if (fx->eng == SG_DB_POSTGRES)
		assert_int_equal(sg_db_exec(c, "TRUNCATE audit_log", 0, NULL), SG_EPERM);
	sg_db_release(c);
	assert_int_equal(verify(db, 0, "audit chain intact: 20 rows"), 0);

	c = sg_db_acquire(db);
	drop_triggers(fx, c);

	/* A changed field. */
	X(c, "UPDATE audit_log SET actor_name = 'mallory' WHERE id = 17", 0, NULL);
	sg_db_release(c);
	assert_int_equal(verify(db, SG_EAUTH, "audit chain broken at row 17: hash mismatch"), 17);

	/* The changed row's hash recomputed too: the next row's link names it. */
	c = sg_db_acquire(db);
	assert_int_equal(
	    sg_db_query(c, &r,
			"SELECT id, ts, event_type, actor_id, actor_type, actor_name, "
			"resource_type, resource_id, resource_name, action, details, "
			"source_ip, user_agent, prev_hash FROM audit_log WHERE id = 17",
			0, NULL),
	    1);
	for (k = 0; k < 11; k++)
		f[k] = sg_db_res_get(r, 0, 2 + k);
	assert_int_equal(
	    sg_audit_row_hash(h, 17, atoll(sg_db_res_get(r, 0, 1)), f, sg_db_res_get(r, 0, 13)), 0);
	sg_db_res_free(r);
	p[0] = h;
	X(c, "UPDATE audit_log SET hash = $1 WHERE id = 17", 1, p);
	sg_db_release(c);
	assert_int_equal(verify(db, SG_EAUTH, "audit chain broken at row 18: prev_hash mismatch"),
			 18);

	/* Rows 3 and 4 swapped (ids exchanged): the first of them no longer links. */
	c = sg_db_acquire(db);
	X(c, "UPDATE audit_log SET id = -3 WHERE id = 3", 0, NULL);
	X(c, "UPDATE audit_log SET id = 3 WHERE id = 4", 0, NULL);
	X(c, "UPDATE audit_log SET id = 4 WHERE id = -3", 0, NULL);
	sg_db_release(c);
	assert_int_equal(verify(db, SG_EAUTH, "audit chain broken at row 3: prev_hash mismatch"),
			 3);

	/* A deleted row is named by its id. */
	c = sg_db_acquire(db);
	X(c, "DELETE FROM audit_log WHERE id = 2", 0, NULL);
	sg_db_release(c);
	assert_int_equal(verify(db, SG_EAUTH, "audit chain broken: row 2 missing"), 2);

	/* Deleting the first row is caught too (the chain must start at 1). */
	c = sg_db_acquire(db);
	X(c, "DELETE FROM audit_log WHERE id = 1", 0, NULL);
	sg_db_release(c);
	assert_int_equal(verify(db, SG_EAUTH, "audit chain broken: row 1 missing"), 1);
	sg_db_close(db);
}

/* ---- export files ---------------------------------------------------------------------- */

struct xrow {
	int64_t id, ts;
	const char *f[11];
	char prev[97], hash[97];
};

#define NX 6

static void build_rows(struct xrow *x)
{
	static const char *const variants[NX][11] = {
	    {"auth.login", "u1", "admin", "root@example.com", NULL, NULL, NULL, "login", "{}",
	     "127.0.0.1", "curl/8.0"},
	    {"client.create", "u1", "admin", "root@example.com", "client", "c1", "laptop, \"work\"",
	     "create", "{\"name\":\"a,b\",\"q\":\"\\\"\"}", "::1", ""},
	    {"client.update", NULL, NULL, NULL, "client", "c1", "multi\nline\r\nname", "update",
	     NULL, "", NULL},
	    {"network.delete", "u2", "api_key", "ci", "network", "n1", "", "delete",
	     "{\"unicode\":\"\xc3\xa9\xe2\x82\xac\"}", "10.0.0.1", "x"},
	    {"settings.update", "u1", "admin", ",", "\"", "\"\"", "a\"b", "", "[]", "1", "2"},
	    {"auth.logout", "u1", "admin", "root@example.com", NULL, NULL, NULL, "logout", NULL,
	     NULL, NULL},
	};
	for (int i = 0; i < NX; i++) {
		x[i].id = i + 1;
		x[i].ts = 1795000000000LL + i * 1111;
		memcpy(x[i].f, variants[i], sizeof(x[i].f));
		snprintf(x[i].prev, sizeof(x[i].prev), "%s", i ? x[i - 1].hash : ZERO96);
		assert_int_equal(sg_audit_row_hash(x[i].hash, x[i].id, x[i].ts, x[i].f, x[i].prev),
				 0);
	}
}

static void json_str(FILE *f, const char *s)
{
	if (!s) {
		fputs("null", f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", f);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static const char *const names[15] = {"id",
				      "ts",
				      "event_type",
				      "actor_id",
				      "actor_type",
				      "actor_name",
				      "resource_type",
				      "resource_id",
				      "resource_name",
				      "action",
				      "details",
				      "source_ip",
				      "user_agent",
				      "prev_hash",
				      "hash"};

/* order[i] is the row written at position i; -1 ends early. */
static void write_json(const char *path, const struct xrow *x, const int *order, int n)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs("[\n", f);
	for (int i = 0; i < n; i++) {
		const struct xrow *r = &x[order[i]];

		/* Keys in a different order from the spec's, plus an unknown key: both allowed. */
		fprintf(f, "%s {\"hash\": ", i ? ",\n" : "");
		json_str(f, r->hash);
		fprintf(f, ", \"id\": %lld, \"ts\": %lld, \"extra\": {\"a\": [1, \"]\"]}",
			(long long)r->id, (long long)r->ts);
		for (int k = 0; k < 11; k++) {
			fprintf(f, ", \"%s\": ", names[2 + k]);
			json_str(f, r->f[k]);
		}
		fputs(", \"prev_hash\": ", f);
		json_str(f, r->prev);
		fputc('}', f);
	}
	fputs("\n]\n", f);
	assert_int_equal(fclose(f), 0);
}

static void csv_str(FILE *f, const char *s)
{
	if (!s)
		return; /* NULL: empty and unquoted */
	if (!*s || strpbrk(s, ",\"\r\n")) {
		fputc('"', f);
		for (; *s; s++) {
			if (*s == '"')
				fputc('"', f);
			fputc(*s, f);
		}
		fputc('"', f);
		return;
	}
	fputs(s, f);
}

static void write_csv(const char *path, const struct xrow *x, const int *order, int n)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	for (int k = 0; k < 15; k++)
		fprintf(f, "%s%s", k ? "," : "", names[k]);
	fputs("\r\n", f);
	for (int i = 0; i < n; i++) {
		const struct xrow *r = &x[order[i]];

		fprintf(f, "%lld,%lld", (long long)r->id, (long long)r->ts);
		for (int k = 0; k < 11; k++) {
			fputc(',', f);
			csv_str(f, r->f[k]);
		}
		fputc(',', f);
		csv_str(f, r->prev);
		fputc(',', f);
		csv_str(f, r->hash);
		fputs(i % 2 ? "\r\n" : "\n", f); /* CRLF per RFC 4180; bare LF also read */
	}
	assert_int_equal(fclose(f), 0);
}

static void check_file(const char *path, int expect_ret, int64_t expect_bad, const char *msg)
{
	char err[256];
	int64_t bad = -1, rows = -1;
	int ret = sg_audit_verify_file(path, &bad, &rows, err, sizeof(err));

	if (ret != expect_ret || !strstr(err, msg))
		fprintf(stderr, "%s: %d \"%s\", wanted %d \"%s\"\n", path, ret, err, expect_ret,
			msg);
	assert_int_equal(ret, expect_ret);
	assert_non_null(strstr(err, msg));
	if (expect_ret == SG_EAUTH)
		assert_int_equal(bad, expect_bad);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void test_export_files(void **state)
{
	struct fx *fx = *state;
	struct xrow x[NX];
	char js[160], cs[160];
	static const int in_order[NX] = {0, 1, 2, 3, 4, 5};
	static const int swapped[NX] = {0, 1, 3, 2, 4, 5};
	static const int gap[NX - 1] = {0, 1, 2, 4, 5};

	if (fx->eng != SG_DB_SQLITE)
		skip(); /* files only; the fixture's directory is handy */
	snprintf(js, sizeof(js), "%s/export.json", fx->dir);
	snprintf(cs, sizeof(cs), "%s/export.csv", fx->dir);
	build_rows(x);

	write_json(js, x, in_order, NX);
	check_file(js, 0, 0, "audit chain intact: 6 rows");
	write_csv(cs, x, in_order, NX);
	check_file(cs, 0, 0, "audit chain intact: 6 rows");

	write_json(js, x, swapped, NX);
	check_file(js, SG_EAUTH, 3, "audit chain broken: row 3 missing");
	write_csv(cs, x, swapped, NX);
	check_file(cs, SG_EAUTH, 3, "audit chain broken: row 3 missing");
	write_json(js, x, gap, NX - 1);
	check_file(js, SG_EAUTH, 4, "audit chain broken: row 4 missing");
	write_csv(cs, x, gap, NX - 1);
	check_file(cs, SG_EAUTH, 4, "audit chain broken: row 4 missing");
	/* A row repeated: out of order. */
	{
		static const int dup[NX] = {0, 1, 2, 2, 3, 4};

		write_csv(cs, x, dup, NX);
		check_file(cs, SG_EAUTH, 3, "audit chain broken at row 3: out of order");
	}
	/* A changed field. NULL turned into "" counts as a change. */
	x[4].f[3] = "mallory";
	write_json(js, x, in_order, NX);
	check_file(js, SG_EAUTH, 5, "audit chain broken at row 5: hash mismatch");
	build_rows(x);
	x[5].f[10] = "";
	write_csv(cs, x, in_order, NX);
	check_file(cs, SG_EAUTH, 6, "audit chain broken at row 6: hash mismatch");
	/* The longest field accepted verifies in both formats; one byte more is refused. */
	{
		char *big = malloc(SG_AUDIT_FIELD_MAX + 2);
		static const int first[1] = {0};

		assert_non_null(big);
		memset(big, 'x', SG_AUDIT_FIELD_MAX);
		big[SG_AUDIT_FIELD_MAX] = '\0';
		build_rows(x);
		x[0].f[8] = big;
		assert_int_equal(sg_audit_row_hash(x[0].hash, 1, x[0].ts, x[0].f, ZERO96), 0);
		write_csv(cs, x, first, 1);
		check_file(cs, 0, 0, "audit chain intact: 1 rows");
		write_json(js, x, first, 1);
		check_file(js, 0, 0, "audit chain intact: 1 rows");
		big[SG_AUDIT_FIELD_MAX] = 'x';
		big[SG_AUDIT_FIELD_MAX + 1] = '\0';
		write_csv(cs, x, first, 1);
		check_file(cs, SG_ERANGE, 0, "field 11 is over 1048576 bytes");
		free(big);
		build_rows(x);
	}
	/* The empty export verifies as empty. */
	write_text(js, " [ ] ");
	check_file(js, 0, 0, "audit chain intact: 0 rows");
	write_text(cs, "id,ts,event_type,actor_id,actor_type,actor_name,resource_type,resource_id,"
		       "resource_name,action,details,source_ip,user_agent,prev_hash,hash\r\n");
	check_file(cs, 0, 0, "audit chain intact: 0 rows");

	/* Malformed files: a parse error with a position, never a verdict. */
	write_text(js, "[{\"id\": 1,}]");
	check_file(js, SG_EPARSE, 0, "byte 2: row 1");
	write_text(js, "[{\"id\": 1");
	check_file(js, SG_EPARSE, 0, "file ends inside row 1");
	write_text(js, "[{\"id\": \"1\"}]");
	check_file(js, SG_EPARSE, 0, "\"id\" must be an integer");
	write_text(js, "[{\"id\": 1, \"ts\": 2}]");
	check_file(js, SG_EPARSE, 0, "no \"event_type\" key");
	write_text(js, "[1]");
	check_file(js, SG_EPARSE, 0, "expected '{'");
	write_text(js, "[] x");
	check_file(js, SG_EPARSE, 0, "data after the closing ']'");
	write_text(js, "");
	check_file(js, SG_EPARSE, 0, "empty file");
	write_text(cs, "id,ts\r\n1,2\r\n");
	check_file(cs, SG_EPARSE, 0, "line 1: the header has no \"event_type\" column");
	write_text(cs, "id,ts,event_type,actor_id,actor_type,actor_name,resource_type,resource_id,"
		       "resource_name,action,details,source_ip,user_agent,prev_hash,hash\r\n"
		       "1,2,\"open\r\n");
	check_file(cs, SG_EPARSE, 0, "line 2: quoted field 3 never closed");
	write_text(cs, "id,ts,event_type,actor_id,actor_type,actor_name,resource_type,resource_id,"
		       "resource_name,action,details,source_ip,user_agent,prev_hash,hash\r\n"
		       "1,2,a\"b\r\n");
	check_file(cs, SG_EPARSE, 0, "in an unquoted field");
	write_text(cs, "id,ts,event_type,actor_id,actor_type,actor_name,resource_type,resource_id,"
		       "resource_name,action,details,source_ip,user_agent,prev_hash,hash\r\n"
		       "1,2,3\r\n");
	check_file(cs, SG_EPARSE, 0, "line 2: 3 fields, the header has 15");
	write_text(cs, "id,ts,event_type,actor_id,actor_type,actor_name,resource_type,resource_id,"
		       "resource_name,action,details,source_ip,user_agent,prev_hash,hash\r\n"
		       "x,2,,,,,,,,,,,,,\r\n");
	check_file(cs, SG_EPARSE, 0, "line 2: id and ts must be decimal integers");
	{
		char err[128];
		int64_t bad, rows;

		assert_int_equal(
		    sg_audit_verify_file("/nonexistent/x.json", &bad, &rows, err, sizeof(err)),
		    SG_ENOENT);
	}
}

static int run_cmd(int n, ...)
{
	char *argv[8];
	va_list ap;

	va_start(ap, n);
	for (int i = 0; i < n; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	argv[n] = NULL;
	return sg_audit_cmd(n, argv);
}

static void test_cmd(void **state)
{
	struct fx *fx = *state;
	struct sg_db *db = fx_open(fx, 1);
	struct sg_db_conn *c;
	char file[160];
	struct xrow x[NX];
	static const int in_order[NX] = {0, 1, 2, 3, 4, 5};
	static const int gap[NX - 1] = {0, 1, 2, 4, 5};

	append_n(db, 5, 0);
	assert_int_equal(run_cmd(4, "audit", "verify", "--db", fx->url), 0);
	c = sg_db_acquire(db);
	drop_triggers(fx, c);
	X(c, "UPDATE audit_log SET details = '{}' WHERE id = 4", 0, NULL);
	sg_db_release(c);
	assert_int_equal(run_cmd(4, "audit", "verify", "--db", fx->url), 1);
	sg_db_close(db);

	/* Usage errors and unreadable inputs: 2. */
	assert_int_equal(run_cmd(1, "audit"), 2);
	assert_int_equal(run_cmd(2, "audit", "check"), 2);
	assert_int_equal(run_cmd(2, "audit", "verify"), 2);
	assert_int_equal(run_cmd(3, "audit", "verify", "--db"), 2);
	assert_int_equal(run_cmd(6, "audit", "verify", "--db", fx->url, "--file", "x"), 2);
	assert_int_equal(run_cmd(4, "audit", "verify", "--db", "sqlite:/nonexistent/x.db"), 2);
	assert_int_equal(run_cmd(4, "audit", "verify", "--bogus", "x"), 2);
	assert_int_equal(run_cmd(2, "audit", "--help"), 0);

	if (fx->eng != SG_DB_SQLITE)
		return;
	build_rows(x);
	snprintf(file, sizeof(file), "%s/e.csv", fx->dir);
	write_csv(file, x, in_order, NX);
	assert_int_equal(run_cmd(4, "audit", "verify", "--file", file), 0);
	write_csv(file, x, gap, NX - 1);
	assert_int_equal(run_cmd(4, "audit", "verify", "--file", file), 1);
	write_text(file, "garbage\n");
	assert_int_equal(run_cmd(4, "audit", "verify", "--file", file), 2);
	assert_int_equal(run_cmd(4, "audit", "verify", "--file", "/nonexistent"), 2);
}

/* Bytes that are not UTF-8 in any field: stored as '?', hashed as stored. PostgreSQL refuses
 * such bytes in text (22021), which used to roll back the transaction being audited. */
static void test_append_not_utf8(void **state)
{
	struct fx *fx = *state;
	struct sg_db *db = fx_open(fx, 1);
	struct sg_db_conn *c;
	struct sg_db_res *r = NULL;
	struct sg_audit_event ev = {
	    .event_type = "user.failed_login",
	    .actor_name = "caf\xc3\xa9 \xff\xfe",	      /* valid then two bad bytes */
	    .details = "{\"email\":\"a\xc0\x80@b\"}",	      /* an overlong NUL */
	    .user_agent = "ua/\xed\xa0\x80 \xf4\x90\x80\x80", /* surrogate, > U+10FFFF */
	};

	c = sg_db_acquire(db);
	assert_int_equal(sg_audit_append(c, &ev), 0);
	assert_int_equal(sg_db_query(c, &r,
				     "SELECT actor_name, details, user_agent FROM audit_log "
				     "WHERE id = 1",
				     0, NULL),
			 1);
	assert_string_equal(sg_db_res_get(r, 0, 0), "caf\xc3\xa9 ??");
	assert_string_equal(sg_db_res_get(r, 0, 1), "{\"email\":\"a??@b\"}");
	assert_string_equal(sg_db_res_get(r, 0, 2), "ua/??? ????");
	sg_db_res_free(r);
	sg_db_release(c);
	assert_int_equal(verify(db, 0, "audit chain intact: 1 rows"), 0);
	sg_db_close(db);

	assert_true(sg_utf8_valid("", 0));
	assert_true(sg_utf8_valid("\xf0\x9f\x94\x92 ok", 7));
	assert_false(sg_utf8_valid("\xf0\x9f\x94", 3)); /* cut short */
	assert_false(sg_utf8_valid("\xe0\x80\x80", 3)); /* overlong */
	assert_false(sg_utf8_valid("\x80", 1));
}

/* Someone with write access rewrites row k and re-hashes every row after it: the chain alone
 * is intact again; only an anchor logged before the rewrite tells. */
static void test_anchor_rewrite(void **state)
{
	struct fx *fx = *state;
	struct sg_db *db = fx_open(fx, 1);
	struct sg_db_conn *c;
	struct sg_db_res *r = NULL;
	struct sg_audit_anchor a[2];
	char head[97], prev[97], h[97], arg[128], bad[128], beyond[128], err[256];
	int64_t id, bad_id;

	append_n(db, 12, 0);
	c = sg_db_acquire(db);
	assert_int_equal(sg_audit_head(c, &id, head), 0);
	assert_int_equal(id, 12);
	snprintf(arg, sizeof(arg), "12:%s", head);
	assert_int_equal(sg_audit_anchor_parse(&a[0], arg), 0);
	assert_int_equal(sg_audit_anchor_parse(&a[1], "12:abc"), SG_EINVAL);
	assert_int_equal(sg_audit_anchor_parse(&a[1], "x:abc"), SG_EINVAL);
	sg_db_release(c); /* the pool has one connection */
	assert_int_equal(sg_audit_verify_anchored(db, a, 1, &bad_id, err, sizeof(err)), 0);

	/* Rewrite row 5 and re-hash 5..12. */
	c = sg_db_acquire(db);
	drop_triggers(fx, c);
	X(c, "UPDATE audit_log SET actor_name = 'mallory' WHERE id = 5", 0, NULL);
	assert_int_equal(sg_db_query(c, &r, "SELECT hash FROM audit_log WHERE id = 4", 0, NULL), 1);
	snprintf(prev, sizeof(prev), "%s", sg_db_res_get(r, 0, 0));
	sg_db_res_free(r);
	for (int k = 5; k <= 12; k++) {
		char idtext[24];
		const char *f[11], *p[3];

		snprintf(idtext, sizeof(idtext), "%d", k);
		p[0] = idtext;
		assert_int_equal(
		    sg_db_query(c, &r,
				"SELECT ts, event_type, actor_id, actor_type, "
				"actor_name, resource_type, resource_id, resource_name, "
				"action, details, source_ip, user_agent FROM audit_log "
				"WHERE id = $1",
				1, p),
		    1);
		for (int i = 0; i < 11; i++)
			f[i] = sg_db_res_get(r, 0, 1 + i);
		assert_int_equal(sg_audit_row_hash(h, k, atoll(sg_db_res_get(r, 0, 0)), f, prev),
				 0);
		sg_db_res_free(r);
		p[0] = prev;
		p[1] = h;
		p[2] = idtext;
		X(c, "UPDATE audit_log SET prev_hash = $1, hash = $2 WHERE id = $3", 3, p);
		memcpy(prev, h, sizeof(prev));
	}
	sg_db_release(c);
	assert_int_equal(verify(db, 0, "audit chain intact: 12 rows"), 0); /* forged */
	assert_int_equal(sg_audit_verify_anchored(db, a, 1, &bad_id, err, sizeof(err)), SG_EAUTH);
	assert_int_equal(bad_id, 12);
	assert_non_null(strstr(err, "anchor 12:"));
	/* The command line names the anchor too; a correct anchor of an earlier row still
	 * passes, one past the end fails. */
	assert_int_equal(run_cmd(6, "audit", "verify", "--db", fx->url, "--anchor", arg), 1);
	assert_int_equal(run_cmd(4, "audit", "verify", "--db", fx->url), 0);
	snprintf(beyond, sizeof(beyond), "13:%s", head);
	assert_int_equal(run_cmd(6, "audit", "verify", "--db", fx->url, "--anchor", beyond), 1);
	snprintf(bad, sizeof(bad), "12:%.95s", head);
	assert_int_equal(run_cmd(6, "audit", "verify", "--db", fx->url, "--anchor", bad), 2);
	sg_db_close(db);
}

/* Every SQL path that would replace, upsert or squeeze in a row is refused; and (SQLite, whose
 * text can hold NUL) bytes hidden after a NUL in a field break the chain instead of being
 * skipped by the hash. */
static void test_append_only_paths(void **state)
{
	struct fx *fx = *state;
	struct sg_db *db = fx_open(fx, 1);
	struct sg_db_conn *c;
	static const char *const both[] = {
	    "INSERT INTO audit_log (id, ts, event_type, prev_hash, hash) VALUES (2, 0, 'x', '', "
	    "'') "
	    "ON CONFLICT (id) DO UPDATE SET actor_name = 'mallory'",
	    "INSERT INTO audit_log (id, ts, event_type, prev_hash, hash) VALUES (9, 0, 'gap', '', "
	    "'')",
	    "INSERT INTO audit_log (ts, event_type, prev_hash, hash) VALUES (0, 'no id', '', '')",
	};
	static const char *const lite[] = {
	    "INSERT OR REPLACE INTO audit_log (id, ts, event_type, prev_hash, hash) VALUES (2, 0, "
	    "'x', '', '')",
	    "REPLACE INTO audit_log (id, ts, event_type, prev_hash, hash) VALUES (2, 0, 'x', '', "
	    "'')",
	    "UPDATE OR REPLACE audit_log SET id = 1 WHERE id = 2",
	};

	append_n(db, 5, 0);
	c = sg_db_acquire(db);
	for (size_t i = 0; i < SG_ARRAY_LEN(both); i++) {
		assert_int_equal(sg_db_exec(c, both[i], 0, NULL), SG_EPERM);
		assert_non_null(strstr(sg_db_errmsg(c), "append-only"));
	}
	if (fx->eng == SG_DB_SQLITE) {
		for (size_t i = 0; i < SG_ARRAY_LEN(lite); i++)
			assert_int_equal(sg_db_exec(c, lite[i], 0, NULL), SG_EPERM);
	}
	sg_db_release(c);
	assert_int_equal(verify(db, 0, "audit chain intact: 5 rows"), 0);
	if (fx->eng == SG_DB_SQLITE) {
		c = sg_db_acquire(db);
		drop_triggers(fx, c);
		X(c, "UPDATE audit_log SET details = details || char(0) || 'hidden' WHERE id = 4",
		  0, NULL);
		sg_db_release(c);
		assert_int_equal(verify(db, SG_EAUTH, "row 4: details holds a NUL byte"), 4);
	}
	sg_db_close(db);
}

#define T(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_row_hash_kat),	 T(test_append_verify),	 T(test_append_concurrent),
	    T(test_triggers_and_tamper), T(test_export_files),	 T(test_cmd),
	    T(test_append_not_utf8),	 T(test_anchor_rewrite), T(test_append_only_paths),
	};

	return fx_run("audit", tests, sizeof(tests) / sizeof(tests[0]));
}
