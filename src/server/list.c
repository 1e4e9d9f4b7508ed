/* Pages of the API's lists: LIMIT/OFFSET for every list, and for the big ones (clients, the audit
 * log, the connection log) keyset pages with an opaque cursor (cursor.h; docs/SERVER.md, "Lists
 * and pages"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "secureguard/sg_errors.h"
#include "server/api.h"
#include "server/cursor.h"
#include "server/srv_int.h"

struct list_q {
	const char *table, *cols, *kinds, *where, *order;
	const char **params; /* room for n + 3 */
	int n;
	int64_t limit, offset;
	enum srv_keyset ks;
	const struct srv_cursor *cur; /* the request's cursor, or NULL */
	const uint8_t *scope;	      /* ks != NONE: the list and its filters (SHA-384) */
};

/* What a cursor belongs to: the table, the filter clauses and their values, each
 * length-prefixed so no two lists or filters share a scope. */
static bool list_scope(uint8_t out[SG_SHA384_LEN], const char *table, const char *where,
		       const char *const *params, int n)
{
	struct sg_iov iov[2 * (8 + 2)];
	uint64_t lens[8 + 2];
	int k = 0;

	if (n > 8)
		return false;
	for (int i = -2; i < n; i++) {
		const char *v = i == -2 ? table : i == -1 ? where : params[i] ? params[i] : "";

		/* A NULL parameter and "" differ in the length word's top bit. */
		lens[i + 2] = strlen(v) | (i >= 0 && !params[i] ? 1ull << 63 : 0);
		iov[k++] = (struct sg_iov){&lens[i + 2], sizeof(lens[i + 2])};
		iov[k++] = (struct sg_iov){v, strlen(v)};
	}
	return sg_sha384(out, iov, (size_t)k);
}

static int col_index(const struct sg_db_res *res, const char *name)
{
	for (int i = 0; i < sg_db_res_cols(res); i++) {
		const char *c = sg_db_res_colname(res, i);

		if (c && !strcmp(c, name))
			return i;
	}
	return -1;
}

/* next_cursor after row `row` of res: its sort key, with the walk's total and position. */
static bool next_cursor(struct srv *s, const struct list_q *q, const struct sg_db_res *res,
			int row, int64_t total, int64_t pos, char out[SRV_CURSOR_MAX + 1])
{
	struct srv_cursor c = {.total = total, .pos = pos};
	int kc = col_index(res, q->ks == SRV_KEYSET_ID_DESC ? "id" : "created_at");
	int ic = col_index(res, "id");
	const char *id = ic >= 0 ? sg_db_res_get(res, row, ic) : NULL;

	if (kc < 0 || !sg_db_res_get(res, row, kc))
		return false;
	c.key = srv_res_i64(res, row, kc);
	if (q->ks == SRV_KEYSET_CREATED_ID) {
		if (!id || strlen(id) > SRV_CURSOR_ID_MAX)
			return false;
		memcpy(c.id, id, strlen(id) + 1);
	}
	return srv_cursor_encode(out, s->cursor_key, q->scope, SG_SHA384_LEN, &c);
}

/* The exact total of an offset page (docs/SERVER.md, "Lists and pages") without a COUNT(*) of
 * every matching row where that is known otherwise: a page that reaches the list's end holds
 * the last rows (total = offset + rows, unless an offset past the end read nothing), and the
 * whole audit log has as many rows as its newest id (ids are contiguous from 1: the append-only
 * trigger makes every row take the next one, docs/AUDIT.md). Only a page with rows after it of
 * another list, or of a filtered log, is counted. */
static int count_total(struct sg_db_conn *c, const struct list_q *q, int rows, bool at_end,
		       int64_t *total)
{
	struct sg_db_res *cnt = NULL;
	char sql[1024];
	int rc;

	if (at_end && (rows > 0 || q->offset == 0)) {
		*total = q->offset + rows;
		return 0;
	}
	if (!strcmp(q->table, "audit_log") && !q->where[0])
		snprintf(sql, sizeof(sql), "SELECT COALESCE(MAX(id), 0) FROM audit_log");
	else
		snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s WHERE 1 = 1%s", q->table,
			 q->where);
	rc = sg_db_query(c, &cnt, sql, q->n, q->params);
	if (rc >= 0)
		*total = srv_res_i64(cnt, 0, 0);
	sg_db_res_free(cnt);
	return rc < 0 ? rc : 0;
}

static void list_run(struct srv *s, struct srv_resp *out, const struct list_q *q)
{
	char sql[2048], lim[24], off[24], key[24], curtext[SRV_CURSOR_MAX + 1];
	struct sg_db_res *res = NULL;
	struct sg_db_conn *c = sg_db_acquire(s->db);
	const char **p = q->params;
	int np = q->n, rc, rows;
	int64_t total, pos = q->cur ? q->cur->pos : q->offset;
	char after[96] = "";

	/* The total: carried by the cursor for the pages of a walk (counted once, at its first
	 * page); for an offset page, counted after the page (count_total). */
	total = q->cur ? q->cur->total : -1;
	/* After the cursor's row in the list's order: one range read through the index on the
	 * order's columns (clients (created_at, id), the logs' primary key). */
	if (q->cur && q->ks == SRV_KEYSET_CREATED_ID) {
		p[np++] = srv_i64(key, q->cur->key);
		p[np++] = q->cur->id;
		snprintf(after, sizeof(after), " AND (created_at, id) > ($%d, $%d)", np - 1, np);
	} else if (q->cur) {
		p[np++] = srv_i64(key, q->cur->key);
		snprintf(after, sizeof(after), " AND id < $%d", np);
	}
	/* One row more than the page: whether a next page exists, without counting. */
	p[np++] = srv_i64(lim, q->ks != SRV_KEYSET_NONE ? q->limit + 1 : q->limit);
	if (q->cur) {
		snprintf(sql, sizeof(sql), "SELECT %s FROM %s WHERE 1 = 1%s%s ORDER BY %s LIMIT $%d",
			 q->cols, q->table, q->where, after, q->order, np);
	} else if (q->ks != SRV_KEYSET_NONE) {
		/* The rows an offset skips are read from the order's index alone (the ids), and only
		 * the page's rows from the table: PostgreSQL sorted all 10,000 clients on disk for a
		 * deep page otherwise (400 ms against 1 ms, bench/server_scale.sh). */
		p[np++] = srv_i64(off, q->offset);
		snprintf(sql, sizeof(sql),
			 "SELECT %s FROM %s WHERE id IN (SELECT id FROM %s WHERE 1 = 1%s ORDER BY %s "
			 "LIMIT $%d OFFSET $%d) ORDER BY %s",
			 q->cols, q->table, q->table, q->where, q->order, np - 1, np, q->order);
	} else {
		p[np++] = srv_i64(off, q->offset);
		snprintf(sql, sizeof(sql),
			 "SELECT %s FROM %s WHERE 1 = 1%s ORDER BY %s LIMIT $%d OFFSET $%d", q->cols,
			 q->table, q->where, q->order, np - 1, np);
	}
	rc = sg_db_query(c, &res, sql, np, p);
	if (rc < 0) {
		srv_dberr(out, c, rc);
		goto out;
	}
	rows = rc > q->limit ? (int)q->limit : rc;
	if (total < 0) {
		/* Past the page's last row: no row more (the keyset lists read limit + 1). */
		bool at_end = q->ks != SRV_KEYSET_NONE ? rc <= q->limit : rc < q->limit;
		int crc = count_total(c, q, rows, at_end, &total);

		if (crc < 0) {
			srv_dberr(out, c, crc);
			goto out;
		}
	}
	curtext[0] = 0;
	if (q->ks != SRV_KEYSET_NONE && rc > q->limit &&
	    !next_cursor(s, q, res, rows - 1, total, pos + rows, curtext)) {
		srv_error(out, 500, NULL, "a row of %s has no sort key for a cursor", q->table);
		goto out;
	}
	{
		/* Written as text row by row: building 500 rows of jansson objects and dumping
		 * them cost several times the queries (bench/server_api.sh, page of 500). */
		char *text = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&text, &len);

		if (!f) {
			srv_error(out, 503, NULL, "out of memory");
			goto out;
		}
		fputs("{\"items\":[", f);
		for (int i = 0; i < rows; i++) {
			if (i)
				fputc(',', f);
			srv_row_json_text(f, res, i, q->kinds);
		}
		fprintf(f, "],\"total\":%lld,\"limit\":%lld,\"offset\":%lld", (long long)total,
			(long long)q->limit, (long long)pos);
		/* The cursor's alphabet (base64url) needs no JSON escaping. */
		if (q->ks != SRV_KEYSET_NONE && curtext[0])
			fprintf(f, ",\"next_cursor\":\"%s\"", curtext);
		else if (q->ks != SRV_KEYSET_NONE)
			fputs(",\"next_cursor\":null", f);
		fputc('}', f);
		if (fclose(f) || !text) {
			free(text);
			srv_error(out, 503, NULL, "out of memory");
		} else {
			srv_body_take(out, 200, "application/json", text, len);
		}
	}
out:
	sg_db_res_free(res);
	sg_db_release(c);
}

void srv_list_page(struct srv *s, struct srv_resp *out, const char *table, const char *cols,
		   const char *kinds, const char *where, const char *order, const char **params,
		   int n, int64_t limit, int64_t offset)
{
	struct list_q q = {table, cols, kinds, where, order, params, n, limit, offset,
			   SRV_KEYSET_NONE, NULL, NULL};

	list_run(s, out, &q);
}

void srv_list_keyset(struct srv *s, struct srv_req *r, struct srv_resp *out, const char *table,
		     const char *cols, const char *kinds, const char *where, const char **params,
		     int n, enum srv_keyset ks)
{
	uint8_t scope[SG_SHA384_LEN];
	struct srv_cursor cur;
	const char *text = srv_query(r, "cursor"), *why = NULL;
	struct list_q q = {table, cols, kinds, where,
			   ks == SRV_KEYSET_ID_DESC ? "id DESC" : "created_at, id",
			   params, n, srv_limit(r), srv_offset(r), ks, NULL, scope};

	if (!list_scope(scope, table, where, params, n)) {
		srv_error(out, 500, NULL, "too many filters for a cursor");
		return;
	}
	if (text) {
		if (srv_query(r, "offset")) {
			srv_error(out, 400, "cursor",
				  "cursor: give either cursor or offset, not both");
			return;
		}
		if (!srv_cursor_decode(&cur, s->cursor_key, scope, sizeof(scope), text, &why)) {
			srv_error(out, 400, "cursor", "cursor: %s", why);
			return;
		}
		q.cur = &cur;
	}
	list_run(s, out, &q);
}

int64_t srv_limit(struct srv_req *r)
{
	return api_query_int(r->route, r, "limit");
}

int64_t srv_offset(struct srv_req *r)
{
	return api_query_int(r->route, r, "offset");
}
