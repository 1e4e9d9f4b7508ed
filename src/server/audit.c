/* Tamper-evident audit log: hash chain, append, verification of the table and of exports.
 * The encoding and the export formats are specified in docs/AUDIT.md; keep the two in step. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "crypto/crypto.h"
#include "secureguard/sg_errors.h"
#include "server/audit.h"
#include "server/db_int.h"

#define TAG		"SGAUDIT1"
#define PAGE_ROWS	1000
#define JSON_OBJECT_MAX (8u * SG_AUDIT_FIELD_MAX) /* one exported row, escapes included */
#define CSV_COLS_MAX	64

static const char zero_hash[SG_AUDIT_HASH_HEX_LEN + 1] =
    "000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000";

/* Export/column names: id, ts, the 11 fields in struct sg_audit_event order, prev_hash, hash. */
static const char *const col_names[SG_AUDIT_NFIELDS + 4] = {
    "id",
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
    "hash",
};
#define NCOLS	 (SG_AUDIT_NFIELDS + 4)
#define COL_PREV (SG_AUDIT_NFIELDS + 2)
#define COL_HASH (SG_AUDIT_NFIELDS + 3)

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

int sg_audit_row_hash(char out_hex[97], int64_t id, int64_t ts_ms, const char *const fields[11],
		      const char *prev_hash_hex)
{
	/* docs/AUDIT.md: "SGAUDIT1" || u64be(id) || u64be(ts) || F(field)... || F(prev_hash),
	 * F(NULL) = 00, F(s) = 01 || u32be(len) || s. */
	uint8_t hdr[SG_AUDIT_NFIELDS + 1][5];
	uint8_t idts[16];
	uint8_t md[SG_SHA384_LEN];
	struct sg_iov iov[2 + 2 * (SG_AUDIT_NFIELDS + 1)];
	static const char hex[] = "0123456789abcdef";
	size_t niov = 0;
	int i;

	out_hex[0] = '\0';
	if (!fields || !prev_hash_hex)
		return SG_EINVAL;
	put_be64(idts, (uint64_t)id);
	put_be64(idts + 8, (uint64_t)ts_ms);
	iov[niov++] = (struct sg_iov){TAG, sizeof(TAG) - 1};
	iov[niov++] = (struct sg_iov){idts, sizeof(idts)};
	for (i = 0; i <= SG_AUDIT_NFIELDS; i++) {
		const char *f = i < SG_AUDIT_NFIELDS ? fields[i] : prev_hash_hex;
		size_t len;

		if (!f) {
			hdr[i][0] = 0;
			iov[niov++] = (struct sg_iov){hdr[i], 1};
			continue;
		}
		len = strlen(f);
		if (len > SG_AUDIT_FIELD_MAX)
			return SG_ERANGE;
		hdr[i][0] = 1;
		put_be32(&hdr[i][1], (uint32_t)len);
		iov[niov++] = (struct sg_iov){hdr[i], 5};
		iov[niov++] = (struct sg_iov){f, len};
	}
	if (!sg_sha384(md, iov, niov))
		return SG_ECRYPTO;
	for (i = 0; i < SG_SHA384_LEN; i++) {
		out_hex[2 * i] = hex[md[i] >> 4];
		out_hex[2 * i + 1] = hex[md[i] & 15];
	}
	out_hex[2 * SG_SHA384_LEN] = '\0';
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Strict decimal int64: the whole string, no sign other than '-', no spaces. */
static bool parse_i64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (!s || !*s || (*s != '-' && (*s < '0' || *s > '9')))
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

static void ev_fields(const struct sg_audit_event *ev, const char *f[SG_AUDIT_NFIELDS])
{
	f[0] = ev->event_type;
	f[1] = ev->actor_id;
	f[2] = ev->actor_type;
	f[3] = ev->actor_name;
	f[4] = ev->resource_type;
	f[5] = ev->resource_id;
	f[6] = ev->resource_name;
	f[7] = ev->action;
	f[8] = ev->details;
	f[9] = ev->source_ip;
	f[10] = ev->user_agent;
}

static int append_locked(struct sg_db_conn *c, const struct sg_audit_event *ev)
{
	struct sg_db_res *r = NULL;
	const char *p[NCOLS];
	const char *fields[SG_AUDIT_NFIELDS];
	char idbuf[24], tsbuf[24], lock[24], prev[SG_AUDIT_HASH_HEX_LEN + 1];
	char hash[SG_AUDIT_HASH_HEX_LEN + 1];
	int64_t last = 0, id, ts;
	int ret, i;

	if (sg_db_conn_engine(c) == SG_DB_POSTGRES) {
		/* Two appenders must not both read the same last row: serialize them until
		 * commit. SQLite's BEGIN IMMEDIATE already holds the only write lock. */
		snprintf(lock, sizeof(lock), "%lld", (long long)DB_LOCK_AUDIT);
		p[0] = lock;
		ret = sg_db_exec(c, "SELECT pg_advisory_xact_lock($1)", 1, p);
		if (ret < 0)
			return ret;
	}
	ret =
	    sg_db_query(c, &r, "SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1", 0, NULL);
	if (ret < 0)
		return ret;
	memcpy(prev, zero_hash, sizeof(prev));
	if (sg_db_res_rows(r) == 1) {
		const char *h = sg_db_res_get(r, 0, 1);

		if (!parse_i64(sg_db_res_get(r, 0, 0), &last) || !h ||
		    strlen(h) != SG_AUDIT_HASH_HEX_LEN) {
			sg_db_res_free(r);
			db_seterr(c, "audit_log: the last row is malformed");
			return SG_EPARSE;
		}
		memcpy(prev, h, sizeof(prev));
	}
	sg_db_res_free(r);
	/* id = last + 1 rather than the engine's sequence: a PostgreSQL sequence is not rolled
	 * back with the transaction, and a gap would read as a deleted row. */
	id = last + 1;
	ev_fields(ev, fields);
	ts = now_ms();
	ret = sg_audit_row_hash(hash, id, ts, fields, prev);
	if (ret < 0) {
		db_seterr(c, "audit event: a field is longer than %u bytes", SG_AUDIT_FIELD_MAX);
		return ret;
	}
	snprintf(tsbuf, sizeof(tsbuf), "%" PRId64, ts);
	snprintf(idbuf, sizeof(idbuf), "%" PRId64, id);
	p[0] = idbuf;
	p[1] = tsbuf;
	for (i = 0; i < SG_AUDIT_NFIELDS; i++)
		p[2 + i] = fields[i];
	p[COL_PREV] = prev;
	p[COL_HASH] = hash;
	ret = sg_db_exec(c,
			 "INSERT INTO audit_log (id, ts, event_type, actor_id, actor_type, "
			 "actor_name, resource_type, resource_id, resource_name, action, details, "
			 "source_ip, user_agent, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, "
			 "$7, $8, $9, $10, $11, $12, $13, $14, $15)",
			 NCOLS, p);
	return ret < 0 ? ret : 0;
}

int sg_audit_append(struct sg_db_conn *c, const struct sg_audit_event *ev)
{
	const char *in[SG_AUDIT_NFIELDS];
	char *fixed[SG_AUDIT_NFIELDS] = {0};
	struct sg_audit_event clean;
	bool own = false;
	int ret, i;

	if (!c || !ev || !ev->event_type) {
		if (c)
			db_seterr(c, "audit event without event_type");
		return SG_EINVAL;
	}
	/* Every stored field is valid UTF-8: PostgreSQL would refuse the row (and with it the
	 * transaction it records), and an export could not represent it. A bad byte becomes
	 * '?', before hashing, so the chain covers what is stored. */
	ev_fields(ev, in);
	for (i = 0; i < SG_AUDIT_NFIELDS; i++) {
		if (in[i] && !sg_utf8_valid(in[i], strlen(in[i]))) {
			fixed[i] = strdup(in[i]);
			if (!fixed[i]) {
				ret = SG_ENOMEM;
				goto out;
			}
			sg_utf8_sanitize(fixed[i]);
			in[i] = fixed[i];
		}
	}
	clean = (struct sg_audit_event){in[0], in[1], in[2], in[3], in[4], in[5],
					in[6], in[7], in[8], in[9], in[10]};
	if (!c->db->ops->in_transaction(c)) {
		ret = sg_db_begin(c);
		if (ret < 0)
			goto out;
		own = true;
	}
	ret = append_locked(c, &clean);
	if (own) {
		if (ret < 0)
			sg_db_rollback(c);
		else
			ret = sg_db_commit(c);
	}
out:
	for (i = 0; i < SG_AUDIT_NFIELDS; i++)
		free(fixed[i]);
	return ret;
}

/* ---- verification, shared by the table and the export files ------------------------------ */

struct chain {
	int64_t expect; /* next id */
	int64_t rows;
	char prev[SG_AUDIT_HASH_HEX_LEN + 1];
	const struct sg_audit_anchor *anchors; /* hashes recorded outside the database */
	size_t nanchors;
};

static void chain_init(struct chain *ch)
{
	ch->anchors = NULL;
	ch->nanchors = 0;
	ch->expect = 1;
	ch->rows = 0;
	memcpy(ch->prev, zero_hash, sizeof(ch->prev));
}

/* v: NCOLS values in col_names order, id and ts already parsed. Returns 0, SG_EAUTH with
 * *bad_id and err set, or another error. */
static int chain_check(struct chain *ch, int64_t id, int64_t ts, const char *const *v,
		       int64_t *bad_id, char *err, size_t errlen)
{
	char hash[SG_AUDIT_HASH_HEX_LEN + 1];
	int ret;

	if (id < ch->expect) {
		*bad_id = id;
		snprintf(err, errlen, "audit chain broken at row %" PRId64 ": out of order", id);
		return SG_EAUTH;
	}
	if (id > ch->expect) {
		*bad_id = ch->expect;
		snprintf(err, errlen, "audit chain broken: row %" PRId64 " missing", ch->expect);
		return SG_EAUTH;
	}
	if (!v[COL_PREV] || strcmp(v[COL_PREV], ch->prev) != 0) {
		*bad_id = id;
		snprintf(err, errlen, "audit chain broken at row %" PRId64 ": prev_hash mismatch",
			 id);
		return SG_EAUTH;
	}
	ret = sg_audit_row_hash(hash, id, ts, v + 2, v[COL_PREV]);
	if (ret == SG_ERANGE) {
		*bad_id = id;
		snprintf(err, errlen,
			 "audit chain broken at row %" PRId64 ": a field is over %u "
			 "bytes",
			 id, SG_AUDIT_FIELD_MAX);
		return SG_EAUTH;
	}
	if (ret < 0) {
		snprintf(err, errlen, "row %" PRId64 ": hashing failed", id);
		return ret;
	}
	if (!v[COL_HASH] || strcmp(v[COL_HASH], hash) != 0) {
		*bad_id = id;
		snprintf(err, errlen, "audit chain broken at row %" PRId64 ": hash mismatch", id);
		return SG_EAUTH;
	}
	/* A chain recomputed from some row on is self-consistent; only a hash kept elsewhere
	 * (an anchor from the server's log) shows that row and everything after it changed. */
	for (size_t a = 0; a < ch->nanchors; a++) {
		if (ch->anchors[a].id == id && strcmp(ch->anchors[a].hash, hash) != 0) {
			*bad_id = id;
			snprintf(err, errlen,
				 "audit chain broken at row %" PRId64 ": anchor %" PRId64
				 ":%.16s... does not match (the log was rewritten from this row "
				 "or earlier)",
				 id, id, ch->anchors[a].hash);
			return SG_EAUTH;
		}
	}
	memcpy(ch->prev, hash, sizeof(ch->prev));
	ch->expect++;
	ch->rows++;
	return 0;
}

/* After the last row: an anchor beyond it means rows were cut off the end. */
static int chain_end(const struct chain *ch, int64_t *bad_id, char *err, size_t errlen)
{
	for (size_t a = 0; a < ch->nanchors; a++) {
		if (ch->anchors[a].id >= ch->expect) {
			*bad_id = ch->anchors[a].id;
			snprintf(err, errlen,
				 "audit chain broken: anchor %" PRId64 " names a row that is "
				 "missing (the log ends at row %" PRId64 ")",
				 ch->anchors[a].id, ch->expect - 1);
			return SG_EAUTH;
		}
	}
	return 0;
}

static void chain_ok(const struct chain *ch, char *err, size_t errlen)
{
	if (ch->rows)
		snprintf(err, errlen, "audit chain intact: %" PRId64 " rows (last hash %s)",
			 ch->rows, ch->prev);
	else
		snprintf(err, errlen, "audit chain intact: 0 rows");
}

int sg_audit_verify(struct sg_db *db, int64_t *bad_id, char *err, size_t errlen)
{
	return sg_audit_verify_anchored(db, NULL, 0, bad_id, err, errlen);
}

int sg_audit_verify_anchored(struct sg_db *db, const struct sg_audit_anchor *anchors,
			     size_t nanchors, int64_t *bad_id, char *err, size_t errlen)
{
	struct sg_db_conn *c;
	struct sg_db_res *r = NULL;
	struct chain ch;
	char after[24] = "0";
	const char *p[1] = {after};
	int ret, i, n;

	*bad_id = 0;
	chain_init(&ch);
	ch.anchors = anchors;
	ch.nanchors = nanchors;
	c = sg_db_acquire(db);
	/* One snapshot for the whole walk, without blocking writers: a deferred (read)
	 * transaction in SQLite's WAL mode, REPEATABLE READ on PostgreSQL. */
	ret = sg_db_exec(c,
			 sg_db_engine(db) == SG_DB_POSTGRES
			     ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
			     : "BEGIN DEFERRED",
			 0, NULL);
	if (ret < 0)
		goto dberr;
	for (;;) {
		ret = sg_db_query(c, &r,
				  "SELECT id, ts, event_type, actor_id, actor_type, actor_name, "
				  "resource_type, resource_id, resource_name, action, details, "
				  "source_ip, user_agent, prev_hash, hash FROM audit_log "
				  "WHERE id > $1 ORDER BY id LIMIT 1000",
				  1, p);
		if (ret < 0)
			goto dberr;
		n = sg_db_res_rows(r);
		for (i = 0; i < n; i++) {
			const char *v[NCOLS];
			int64_t id, ts;
			int k;

			for (k = 0; k < NCOLS; k++)
				v[k] = sg_db_res_get(r, i, k);
			/* Every byte counts: the hash and the id/ts parsers read text up to its
			 * first NUL, so bytes appended after one (SQLite text can hold them; the
			 * server never writes one) would otherwise go unchecked. */
			for (k = 0; k < NCOLS; k++) {
				if (v[k] && strlen(v[k]) != sg_db_res_len(r, i, k))
					break;
			}
			if (k < NCOLS) {
				*bad_id = parse_i64(v[0], &id) ? id : 0;
				snprintf(err, errlen,
					 "audit chain broken at row %s: %s holds a NUL byte (%zu "
					 "bytes, %zu before the NUL)",
					 v[0] ? v[0] : "?", col_names[k], sg_db_res_len(r, i, k),
					 strlen(v[k]));
				ret = SG_EAUTH;
				goto out;
			}
			if (!parse_i64(v[0], &id) || !parse_i64(v[1], &ts)) {
				snprintf(err, errlen,
					 "audit_log: row after id %s has a bad id or ts", after);
				ret = SG_EPARSE;
				goto out;
			}
			ret = chain_check(&ch, id, ts, v, bad_id, err, errlen);
			if (ret < 0)
				goto out;
			snprintf(after, sizeof(after), "%" PRId64, id);
		}
		sg_db_res_free(r);
		r = NULL;
		if (n < PAGE_ROWS)
			break;
	}
	ret = chain_end(&ch, bad_id, err, errlen);
	if (ret == 0)
		chain_ok(&ch, err, errlen);
	goto out;
dberr:
	snprintf(err, errlen, "reading audit_log: %s", sg_db_errmsg(c));
out:
	sg_db_res_free(r);
	sg_db_rollback(c);
	sg_db_release(c);
	return ret;
}

/* ---- export files ------------------------------------------------------------------------ */

struct rd {
	FILE *f;
	uint64_t off;  /* bytes read */
	uint64_t line; /* 1-based line of the next byte */
};

static int rd_get(struct rd *r)
{
	int c = getc(r->f);

	if (c != EOF) {
		r->off++;
		if (c == '\n')
			r->line++;
	}
	return c;
}

static int rd_skip_ws(struct rd *r)
{
	int c;

	do
		c = rd_get(r);
	while (c == ' ' || c == '\t' || c == '\r' || c == '\n');
	return c;
}

struct buf {
	char *p;
	size_t len, cap, max;
};

static int buf_put(struct buf *b, char ch)
{
	if (b->len + 1 >= b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 256;
		char *np;

		if (b->len + 1 >= b->max)
			return SG_ERANGE;
		if (ncap > b->max)
			ncap = b->max;
		np = realloc(b->p, ncap);
		if (!np)
			return SG_ENOMEM;
		b->p = np;
		b->cap = ncap;
	}
	b->p[b->len++] = ch;
	b->p[b->len] = '\0';
	return 0;
}

static int json_row(struct rd *r, struct chain *ch, json_t *o, uint64_t at, int64_t *bad_id,
		    char *err, size_t errlen)
{
	const char *v[NCOLS];
	int64_t id = 0, ts = 0;
	int k;

	if (!json_is_object(o)) {
		snprintf(err, errlen, "byte %" PRIu64 ": row %" PRId64 " is not an object", at,
			 ch->rows + 1);
		return SG_EPARSE;
	}
	for (k = 0; k < NCOLS; k++) {
		json_t *x = json_object_get(o, col_names[k]);

		v[k] = NULL;
		if (!x) {
			snprintf(err, errlen, "byte %" PRIu64 ": row %" PRId64 ": no \"%s\" key",
				 at, ch->rows + 1, col_names[k]);
			return SG_EPARSE;
		}
		if (k < 2) {
			if (!json_is_integer(x)) {
				snprintf(err, errlen,
					 "byte %" PRIu64 ": row %" PRId64 ": \"%s\" must be an "
					 "integer",
					 at, ch->rows + 1, col_names[k]);
				return SG_EPARSE;
			}
			if (k == 0)
				id = (int64_t)json_integer_value(x);
			else
				ts = (int64_t)json_integer_value(x);
		} else if (json_is_string(x)) {
			v[k] = json_string_value(x);
		} else if (!json_is_null(x) || k >= COL_PREV) {
			snprintf(err, errlen,
				 "byte %" PRIu64 ": row %" PRId64 ": \"%s\" must be a string%s", at,
				 ch->rows + 1, col_names[k], k >= COL_PREV ? "" : " or null");
			return SG_EPARSE;
		}
	}
	(void)r;
	return chain_check(ch, id, ts, v, bad_id, err, errlen);
}

/* A JSON array of flat objects. Each object is cut out of the stream by bracket matching
 * (strings and escapes respected) and handed to jansson alone, so memory is one row. */
static int verify_json(struct rd *r, struct chain *ch, int64_t *bad_id, char *err, size_t errlen)
{
	struct buf b = {.max = JSON_OBJECT_MAX};
	int c, ret = 0;
	bool first = true;

	for (;;) {
		uint64_t at;
		json_error_t jerr;
		json_t *o;
		int depth = 1;
		bool in_str = false, esc = false;

		c = rd_skip_ws(r);
		if (first && c == ']')
			break;
		if (c != '{') {
			snprintf(err, errlen,
				 "byte %" PRIu64 ": expected '{' to start row %" PRId64, r->off,
				 ch->rows + 1);
			ret = SG_EPARSE;
			goto out;
		}
		first = false;
		at = r->off;
		b.len = 0;
		ret = buf_put(&b, '{');
		while (ret == 0 && depth > 0) {
			c = rd_get(r);
			if (c == EOF) {
				snprintf(err, errlen,
					 "byte %" PRIu64 ": file ends inside row %" PRId64, r->off,
					 ch->rows + 1);
				ret = SG_EPARSE;
				goto out;
			}
			ret = buf_put(&b, (char)c);
			if (in_str) {
				if (esc)
					esc = false;
				else if (c == '\\')
					esc = true;
				else if (c == '"')
					in_str = false;
			} else if (c == '"') {
				in_str = true;
			} else if (c == '{' || c == '[') {
				depth++;
			} else if (c == '}' || c == ']') {
				depth--;
			}
		}
		if (ret < 0) {
			snprintf(err, errlen, "byte %" PRIu64 ": row %" PRId64 " is over %u bytes",
				 at, ch->rows + 1, JSON_OBJECT_MAX);
			goto out;
		}
		o = json_loadb(b.p, b.len, JSON_REJECT_DUPLICATES, &jerr);
		if (!o) {
			snprintf(err, errlen, "byte %" PRIu64 ": row %" PRId64 ": %s", at,
				 ch->rows + 1, jerr.text);
			ret = SG_EPARSE;
			goto out;
		}
		ret = json_row(r, ch, o, at, bad_id, err, errlen);
		json_decref(o);
		if (ret < 0)
			goto out;
		c = rd_skip_ws(r);
		if (c == ']')
			break;
		if (c != ',') {
			snprintf(err, errlen,
				 "byte %" PRIu64 ": expected ',' or ']' after row %" PRId64, r->off,
				 ch->rows);
			ret = SG_EPARSE;
			goto out;
		}
	}
	if (rd_skip_ws(r) != EOF) {
		snprintf(err, errlen, "byte %" PRIu64 ": data after the closing ']'", r->off);
		ret = SG_EPARSE;
	}
out:
	free(b.p);
	return ret;
}

struct csv_field {
	struct buf b;
	bool quoted;
};

/* Reads one RFC 4180 record into f[0..*nf). Returns 1, 0 at end of file, or an error. */
static int csv_record(struct rd *r, struct csv_field *f, int *nf, char *err, size_t errlen)
{
	uint64_t line = r->line;
	int c = rd_get(r), ret;

	*nf = 0;
	if (c == EOF)
		return 0;
	for (;;) {
		struct csv_field *cur;

		if (*nf == CSV_COLS_MAX) {
			snprintf(err, errlen, "line %" PRIu64 ": more than %d fields", line,
				 CSV_COLS_MAX);
			return SG_EPARSE;
		}
		cur = &f[(*nf)++];
		cur->b.len = 0;
		cur->b.max = SG_AUDIT_FIELD_MAX + 1; /* the field and its NUL */
		cur->quoted = false;
		ret = buf_put(&cur->b, 'x'); /* make sure p is allocated and NUL-terminated */
		if (ret < 0)
			goto toolong;
		cur->b.len = 0;
		cur->b.p[0] = '\0';
		if (c == '"') {
			cur->quoted = true;
			for (;;) {
				c = rd_get(r);
				if (c == EOF) {
					snprintf(err, errlen,
						 "line %" PRIu64 ": quoted field %d never closed",
						 line, *nf);
					return SG_EPARSE;
				}
				if (c == '"') {
					c = rd_get(r);
					if (c != '"')
						break;
				}
				if (c == '\0')
					goto nul;
				ret = buf_put(&cur->b, (char)c);
				if (ret < 0)
					goto toolong;
			}
		} else {
			while (c != ',' && c != '\r' && c != '\n' && c != EOF) {
				if (c == '"') {
					snprintf(err, errlen,
						 "line %" PRIu64 ": field %d: '\"' in an unquoted "
						 "field (quote the field and double the '\"')",
						 r->line, *nf);
					return SG_EPARSE;
				}
				if (c == '\0')
					goto nul;
				ret = buf_put(&cur->b, (char)c);
				if (ret < 0)
					goto toolong;
				c = rd_get(r);
			}
		}
		if (c == ',') {
			c = rd_get(r);
			continue;
		}
		if (c == '\r') {
			c = rd_get(r);
			if (c != '\n') {
				snprintf(err, errlen, "line %" PRIu64 ": CR not followed by LF",
					 r->line);
				return SG_EPARSE;
			}
			return 1;
		}
		if (c == '\n' || c == EOF)
			return 1;
		snprintf(err, errlen, "line %" PRIu64 ": field %d: text after the closing quote",
			 r->line, *nf);
		return SG_EPARSE;
	}
toolong:
	snprintf(err, errlen, "line %" PRIu64 ": field %d is over %u bytes", r->line, *nf,
		 SG_AUDIT_FIELD_MAX);
	return ret;
nul:
	snprintf(err, errlen, "line %" PRIu64 ": field %d contains a NUL byte", r->line, *nf);
	return SG_EPARSE;
}

static int verify_csv(struct rd *r, struct chain *ch, int64_t *bad_id, char *err, size_t errlen)
{
	struct csv_field *f;
	int map[NCOLS], nh = 0, nf, k, i, ret;

	f = calloc(CSV_COLS_MAX, sizeof(*f));
	if (!f)
		return SG_ENOMEM;
	ret = csv_record(r, f, &nh, err, errlen);
	if (ret == 0) {
		snprintf(err, errlen, "empty file: no CSV header");
		ret = SG_EPARSE;
	}
	if (ret < 0)
		goto out;
	for (k = 0; k < NCOLS; k++) {
		map[k] = -1;
		for (i = 0; i < nh; i++) {
			if (strcmp(f[i].b.p, col_names[k]) != 0)
				continue;
			if (map[k] >= 0) {
				snprintf(err, errlen, "line 1: column \"%s\" appears twice",
					 col_names[k]);
				ret = SG_EPARSE;
				goto out;
			}
			map[k] = i;
		}
		if (map[k] < 0) {
			snprintf(err, errlen, "line 1: the header has no \"%s\" column",
				 col_names[k]);
			ret = SG_EPARSE;
			goto out;
		}
	}
	for (;;) {
		const char *v[NCOLS];
		uint64_t line = r->line;
		int64_t id, ts;

		ret = csv_record(r, f, &nf, err, errlen);
		if (ret <= 0)
			break;
		if (nf != nh) {
			snprintf(err, errlen, "line %" PRIu64 ": %d fields, the header has %d",
				 line, nf, nh);
			ret = SG_EPARSE;
			break;
		}
		for (k = 0; k < NCOLS; k++) {
			const struct csv_field *x = &f[map[k]];

			/* docs/AUDIT.md: an unquoted empty field is NULL, "" the empty string. */
			v[k] = x->quoted || x->b.len ? x->b.p : NULL;
		}
		if (!parse_i64(v[0], &id) || !parse_i64(v[1], &ts)) {
			snprintf(err, errlen,
				 "line %" PRIu64 ": id and ts must be decimal integers", line);
			ret = SG_EPARSE;
			break;
		}
		ret = chain_check(ch, id, ts, v, bad_id, err, errlen);
		if (ret < 0)
			break;
	}
out:
	for (i = 0; i < CSV_COLS_MAX; i++)
		free(f[i].b.p);
	free(f);
	return ret;
}

int sg_audit_verify_file(const char *path, int64_t *bad_id, int64_t *nrows, char *err,
			 size_t errlen)
{
	return sg_audit_verify_file_anchored(path, NULL, 0, bad_id, nrows, err, errlen);
}

int sg_audit_verify_file_anchored(const char *path, const struct sg_audit_anchor *anchors,
				  size_t nanchors, int64_t *bad_id, int64_t *nrows, char *err,
				  size_t errlen)
{
	struct rd r = {.line = 1};
	struct chain ch;
	int c, ret;

	*bad_id = 0;
	*nrows = 0;
	chain_init(&ch);
	ch.anchors = anchors;
	ch.nanchors = nanchors;
	r.f = fopen(path, "r");
	if (!r.f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return errno == ENOENT ? SG_ENOENT : SG_EIO;
	}
	c = rd_get(&r);
	if (c == 0xef) { /* UTF-8 byte order mark, as some spreadsheets write */
		if (rd_get(&r) != 0xbb || rd_get(&r) != 0xbf) {
			snprintf(err, errlen, "%s: neither a JSON array nor CSV", path);
			ret = SG_EPARSE;
			goto out;
		}
		c = rd_get(&r);
	}
	while (c == ' ' || c == '\t' || c == '\r' || c == '\n')
		c = rd_get(&r);
	if (c == EOF) {
		snprintf(err, errlen, "%s: empty file", path);
		ret = SG_EPARSE;
		goto out;
	}
	if (c == '[') {
		ret = verify_json(&r, &ch, bad_id, err, errlen);
	} else {
		ungetc(c, r.f);
		r.off--;
		ret = verify_csv(&r, &ch, bad_id, err, errlen);
	}
	if (ret == 0 && ferror(r.f)) {
		snprintf(err, errlen, "%s: read error", path);
		ret = SG_EIO;
	}
	if (ret == 0)
		ret = chain_end(&ch, bad_id, err, errlen);
	if (ret == 0)
		chain_ok(&ch, err, errlen);
out:
	*nrows = ch.rows;
	fclose(r.f);
	return ret;
}

/* ---- `secureguard audit` ----------------------------------------------------------------- */

static void audit_usage(FILE *f)
{
	fprintf(f, "Usage: secureguard audit verify --db URL [--anchor ID:HASH]...\n"
		   "       secureguard audit verify --file EXPORT.json|EXPORT.csv [--anchor "
		   "ID:HASH]...\n"
		   "Checks the audit log's hash chain (docs/AUDIT.md). Each --anchor (from the "
		   "server's event=audit_anchor log lines, kept outside the database) must match "
		   "row ID's hash.\nExit status: 0 intact, 1 broken, 2 error.\n");
}

int sg_audit_cmd(int argc, char **argv)
{
	const char *url = NULL, *file = NULL;
	char err[512] = "";
	int64_t bad = 0, rows = 0;
	struct sg_audit_anchor *anchors = NULL;
	size_t nanchors = 0;
	int i, ret;

	if (argc >= 2 &&
	    (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))) {
		audit_usage(stdout);
		return 0;
	}
	if (argc < 2 || strcmp(argv[1], "verify") != 0) {
		audit_usage(stderr);
		return 2;
	}
	for (i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--db") && i + 1 < argc && !url) {
			url = argv[++i];
		} else if (!strcmp(argv[i], "--file") && i + 1 < argc && !file) {
			file = argv[++i];
		} else if (!strcmp(argv[i], "--anchor") && i + 1 < argc) {
			struct sg_audit_anchor *a;

			a = realloc(anchors, (nanchors + 1) * sizeof(*anchors));
			if (!a) {
				ret = 2;
				goto out;
			}
			anchors = a;
			if (sg_audit_anchor_parse(&anchors[nanchors], argv[++i]) < 0) {
				fprintf(
				    stderr,
				    "audit verify: --anchor \"%.120s\": expected ID:HASH (a row "
				    "id, a colon, 96 hex digits)\n",
				    argv[i]);
				ret = 2;
				goto out;
			}
			nanchors++;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			audit_usage(stdout);
			ret = 0;
			goto out;
		} else {
			fprintf(stderr, "audit verify: unexpected argument \"%s\"\n", argv[i]);
			audit_usage(stderr);
			ret = 2;
			goto out;
		}
	}
	if (!url == !file) {
		fprintf(stderr, "audit verify: give exactly one of --db URL or --file FILE\n");
		audit_usage(stderr);
		ret = 2;
		goto out;
	}
	if (file) {
		ret = sg_audit_verify_file_anchored(file, anchors, nanchors, &bad, &rows, err,
						    sizeof(err));
	} else {
		struct sg_db *db = NULL;
		struct stat st;

		/* Opening creates a missing SQLite file; verifying must not invent an empty,
		 * "intact" log because of a typo in the path. */
		if (!strncmp(url, "sqlite:", 7)) {
			const char *path = url + 7;

			if (!strncmp(path, "//", 2))
				path += 2;
			if (stat(path, &st) < 0) {
				fprintf(stderr, "audit verify: %s: %s\n", path, strerror(errno));
				ret = 2;
				goto out;
			}
		}
		ret = sg_db_open(&db, url, 1, err, sizeof(err));
		if (ret < 0) {
			fprintf(stderr, "audit verify: %s\n", err);
			ret = 2;
			goto out;
		}
		ret = sg_audit_verify_anchored(db, anchors, nanchors, &bad, err, sizeof(err));
		sg_db_close(db);
	}
	if (ret == 0) {
		printf("%s\n", err);
		ret = fflush(stdout) ? 2 : 0;
	} else if (ret == SG_EAUTH) {
		printf("%s\n", err);
		fflush(stdout);
		ret = 1;
	} else {
		fprintf(stderr, "audit verify: %s\n", err);
		ret = 2;
	}
out:
	free(anchors);
	return ret;
}

int sg_audit_anchor_parse(struct sg_audit_anchor *a, const char *s)
{
	const char *colon = strchr(s, ':');
	char idtext[24];
	size_t n;

	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(idtext))
		return SG_EINVAL;
	memcpy(idtext, s, (size_t)(colon - s));
	idtext[colon - s] = 0;
	if (!parse_i64(idtext, &a->id) || a->id < 1)
		return SG_EINVAL;
	n = strlen(colon + 1);
	if (n != SG_AUDIT_HASH_HEX_LEN)
		return SG_EINVAL;
	for (size_t i = 0; i < n; i++) {
		char ch = colon[1 + i];

		if (ch >= 'A' && ch <= 'F')
			ch = (char)(ch - 'A' + 'a');
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
			return SG_EINVAL;
		a->hash[i] = ch;
	}
	a->hash[n] = 0;
	return 0;
}

int sg_audit_head(struct sg_db_conn *c, int64_t *id, char hash[SG_AUDIT_HASH_HEX_LEN + 1])
{
	struct sg_db_res *r = NULL;
	int ret;

	*id = 0;
	memcpy(hash, zero_hash, SG_AUDIT_HASH_HEX_LEN + 1);
	ret =
	    sg_db_query(c, &r, "SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1", 0, NULL);
	if (ret < 0)
		return ret;
	if (ret == 1) {
		const char *h = sg_db_res_get(r, 0, 1);

		if (!parse_i64(sg_db_res_get(r, 0, 0), id) || !h ||
		    strlen(h) != SG_AUDIT_HASH_HEX_LEN) {
			sg_db_res_free(r);
			db_seterr(c, "audit_log: the last row is malformed");
			return SG_EPARSE;
		}
		memcpy(hash, h, SG_AUDIT_HASH_HEX_LEN + 1);
	}
	sg_db_res_free(r);
	return 0;
}

/* ---- UTF-8 ----------------------------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at p (RFC 3629 section 4: no overlong forms, no
 * surrogates, nothing above U+10FFFF), or 0 when the bytes there are not one. */
static size_t utf8_seq(const unsigned char *p, size_t left)
{
	unsigned char b = p[0];
	size_t n;
	unsigned char lo = 0x80, hi = 0xbf;

	if (b < 0x80)
		return 1;
	if (b >= 0xc2 && b <= 0xdf)
		n = 2;
	else if (b >= 0xe0 && b <= 0xef)
		n = 3;
	else if (b >= 0xf0 && b <= 0xf4)
		n = 4;
	else
		return 0;
	if (left < n)
		return 0;
	if (b == 0xe0)
		lo = 0xa0;
	else if (b == 0xed)
		hi = 0x9f;
	else if (b == 0xf0)
		lo = 0x90;
	else if (b == 0xf4)
		hi = 0x8f;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++) {
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	}
	return n;
}

bool sg_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n;

	while (i < len) {
		n = utf8_seq(p + i, len - i);
		if (!n)
			return false;
		i += n;
	}
	return true;
}

size_t sg_utf8_sanitize(char *s)
{
	unsigned char *p = (unsigned char *)s;
	size_t len = strlen(s), i = 0, fixed = 0, n;

	while (i < len) {
		n = utf8_seq(p + i, len - i);
		if (!n) {
			p[i] = '?';
			fixed++;
			n = 1;
		}
		i += n;
	}
	return fixed;
}
