/* /api/audit (list and streamed export), /api/connections, /api/settings, /api/openapi.json. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "secureguard/sg_errors.h"
#include "server/audit.h"
#include "server/api.h"
#include "server/db_int.h"
#include "server/srv_int.h"

/* ---- audit ----------------------------------------------------------------------------------- */

#define AUDIT_COLS SRV_AUDIT_COLS

void h_audit_list(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	static const char *const text_filters[] = {"event_type", "actor_id", "resource_type"};
	char where[512] = "", b1[24], b2[24];
	const char *p[8];
	int n = 0;
	int64_t since, until;

	/* Validated against the route's parameters (api_spec.c) before we run. */
	since = srv_query(r, "since") ? api_query_int(r->route, r, "since") : -1;
	until = srv_query(r, "until") ? api_query_int(r->route, r, "until") : -1;
	for (size_t i = 0; i < SG_ARRAY_LEN(text_filters); i++) {
		const char *v = srv_query(r, text_filters[i]);

		if (!v)
			continue;
		p[n++] = v;
		snprintf(where + strlen(where), sizeof(where) - strlen(where), " AND %s = $%d",
			 text_filters[i], n);
	}
	if (since >= 0) {
		p[n++] = srv_i64(b1, since);
		snprintf(where + strlen(where), sizeof(where) - strlen(where), " AND ts >= $%d", n);
	}
	if (until >= 0) {
		p[n++] = srv_i64(b2, until);
		snprintf(where + strlen(where), sizeof(where) - strlen(where), " AND ts < $%d", n);
	}
	srv_list_keyset(s, r, out, "audit_log", AUDIT_COLS, SRV_AUDIT_KINDS, where, p, n,
			SRV_KEYSET_ID_DESC);
}

/* The export streams the whole chain from id 1 in pages of EXPORT_PAGE rows, in the formats of
 * docs/AUDIT.md, so `secureguard audit verify --file` can check it offline. Memory stays at one
 * page whatever the size of the log. */
#define EXPORT_PAGE 500

struct export_state {
	struct srv *s;
	bool csv;
	int stage; /* 0 header, 1 rows, 2 done */
	int64_t last_id;
	bool first;
	char *buf;
	size_t len, pos;
};

static void csv_field(FILE *f, const char *v)
{
	if (!v)
		return; /* NULL: empty and unquoted */
	fputc('"', f);
	for (const char *p = v; *p; p++) {
		if (*p == '"')
			fputc('"', f);
		fputc(*p, f);
	}
	fputc('"', f);
}

static int export_fill(struct export_state *st)
{
	struct sg_db_conn *c;
	struct sg_db_res *res = NULL;
	char last[24], lim[24];
	const char *p[] = {srv_i64(last, st->last_id), srv_i64(lim, EXPORT_PAGE)};
	FILE *f;
	int rc;

	free(st->buf);
	st->buf = NULL;
	st->len = st->pos = 0;
	f = open_memstream(&st->buf, &st->len);
	if (!f)
		return SG_ENOMEM;
	if (st->stage == 0) {
		if (st->csv)
			fputs("id,ts,event_type,actor_id,actor_type,actor_name,resource_type,"
			      "resource_id,resource_name,action,details,source_ip,user_agent,"
			      "prev_hash,hash\r\n",
			      f);
		else
			fputs("[", f);
		st->stage = 1;
		return fclose(f) ? SG_ENOMEM : 0;
	}
	c = sg_db_acquire(st->s->db);
	rc = sg_db_query(c, &res,
			 "SELECT " AUDIT_COLS " FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2",
			 2, p);
	sg_db_release(c);
	if (rc < 0) {
		fclose(f);
		return rc;
	}
	for (int i = 0; i < rc; i++) {
		if (st->csv) {
			fprintf(f, "%s,%s", sg_db_res_get(res, i, 0), sg_db_res_get(res, i, 1));
			for (int k = 2; k < 15; k++) {
				fputc(',', f);
				csv_field(f, sg_db_res_get(res, i, k));
			}
			fputs("\r\n", f);
		} else {
			json_t *o = srv_row_json(res, i, "iisssssssssssss");
			char *t = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);

			json_decref(o);
			if (!t) {
				fclose(f);
				sg_db_res_free(res);
				return SG_ENOMEM;
			}
			fprintf(f, "%s\n%s", st->first ? "" : ",", t);
			free(t);
			st->first = false;
		}
		st->last_id = srv_res_i64(res, i, 0);
	}
	if (rc < EXPORT_PAGE) {
		if (!st->csv)
			fputs("\n]\n", f);
		st->stage = 2;
	}
	sg_db_res_free(res);
	return fclose(f) ? SG_ENOMEM : 0;
}

static long export_read(void *cls, char *buf, size_t max)
{
	struct export_state *st = cls;
	size_t n;

	while (st->pos == st->len) {
		if (st->stage == 2)
			return 0;
		if (export_fill(st))
			return -1;
	}
	n = SG_MIN(max, st->len - st->pos);
	memcpy(buf, st->buf + st->pos, n);
	st->pos += n;
	return (long)n;
}

static void export_free(void *cls)
{
	struct export_state *st = cls;

	free(st->buf);
	free(st);
}

void h_audit_export(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	const char *fmt = srv_query(r, "format"); /* json or csv: checked by the route */
	struct export_state *st;
	struct sg_db_conn *c;
	json_t *d;
	int rc;

	if (!fmt)
		fmt = "json";
	/* The export is itself recorded, before the stream starts (so it is part of it). */
	c = sg_db_acquire(s->db);
	d = json_pack("{s:s}", "format", fmt);
	rc = sg_db_begin(c);
	if (!rc)
		rc = srv_audit(c, r, "audit.exported", "audit_log", NULL, NULL, "export", d);
	if (!rc)
		rc = sg_db_commit(c);
	json_decref(d);
	if (rc) {
		sg_db_rollback(c);
		srv_dberr(out, c, rc);
		sg_db_release(c);
		return;
	}
	sg_db_release(c);
	st = calloc(1, sizeof(*st));
	if (!st) {
		srv_error(out, 500, NULL, "out of memory");
		return;
	}
	st->s = s;
	st->csv = !strcmp(fmt, "csv");
	st->first = true;
	srv_stream(out, 200, st->csv ? "text/csv; charset=utf-8" : "application/json",
		   st->csv ? "attachment; filename=\"audit.csv\""
			   : "attachment; filename=\"audit.json\"",
		   export_read, export_free, st);
}

/* ---- connections -------------------------------------------------------------------------------
 */

#define CONN_COLS                                                                                  \
	"id, client_id, ts, event, source_ip, source_port, crypto_mode, bytes_sent, "              \
	"bytes_received, packets_sent, packets_received, session_duration_ms, disconnect_reason"
#define CONN_KINDS "isissisiiiiis"

void h_conn_list(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	char where[128] = "", b1[24];
	const char *p[8];
	int n = 0;
	int64_t since;

	since = srv_query(r, "since") ? api_query_int(r->route, r, "since") : -1;
	if (srv_query(r, "client_id")) {
		p[n++] = srv_query(r, "client_id");
		snprintf(where + strlen(where), sizeof(where) - strlen(where),
			 " AND client_id = $%d", n);
	}
	if (since >= 0) {
		p[n++] = srv_i64(b1, since);
		snprintf(where + strlen(where), sizeof(where) - strlen(where), " AND ts >= $%d", n);
	}
	srv_list_keyset(s, r, out, "connection_log", CONN_COLS, CONN_KINDS, where, p, n,
			SRV_KEYSET_ID_DESC);
}

void h_conn_create(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	static const char *const counters[] = {"bytes_sent", "bytes_received", "packets_sent",
					       "packets_received", "session_duration_ms"};
	char cbuf[5][24], now[24], port[24], ipbuf[64];
	const char *cv[5] = {"0", "0", "0", "0", NULL};
	const char *client, *event, *ip, *mode, *reason;
	struct sg_db_conn *c;
	json_t *v;
	int rc;

	/* Types, enums, ranges and formats were checked against ConnectionReport (api_spec.c). */
	client = json_string_value(json_object_get(r->json, "client_id"));
	event = json_string_value(json_object_get(r->json, "event"));
	ip = json_string_value(json_object_get(r->json, "source_ip"));
	mode = json_string_value(json_object_get(r->json, "crypto_mode"));
	reason = json_string_value(json_object_get(r->json, "disconnect_reason"));
	if (r->who.kind == PRINCIPAL_CLIENT) {
		/* A client reports only about itself. */
		if (client && strcmp(client, r->who.id)) {
			srv_error(out, 403, "client_id",
				  "a client session reports only its own events");
			return;
		}
		client = r->who.id;
	} else if (!client) {
		srv_error(out, 400, "client_id", "required");
		return;
	}
	if (ip) {
		int fam;
		uint8_t a[16];

		/* The canonical text of the address (checked by its format). */
		if (!srv_addr_parse(&fam, a, ip)) {
			srv_addr_format(ipbuf, fam, a);
			ip = ipbuf;
		}
	}
	for (size_t i = 0; i < SG_ARRAY_LEN(counters); i++) {
		json_t *cvj = json_object_get(r->json, counters[i]);

		if (cvj && !json_is_null(cvj))
			cv[i] = srv_i64(cbuf[i], json_integer_value(cvj));
	}
	v = json_object_get(r->json, "source_port");
	c = sg_db_acquire(s->db);
	{
		const char *p[] = {client,
				   srv_i64(now, srv_now()),
				   event,
				   ip,
				   v && !json_is_null(v) ? srv_i64(port, json_integer_value(v))
							 : NULL,
				   mode,
				   cv[0],
				   cv[1],
				   cv[2],
				   cv[3],
				   cv[4],
				   reason};

		rc = sg_db_begin(c);
		if (!rc) {
			rc = sg_db_exec(
			    c,
			    "INSERT INTO connection_log (client_id, ts, event, source_ip, "
			    "source_port, crypto_mode, bytes_sent, bytes_received, "
			    "packets_sent, packets_received, session_duration_ms, "
			    "disconnect_reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
			    "$10, $11, $12)",
			    12, p);
		}
		if (rc >= 0 && strcmp(event, "disconnect")) {
			const char *q[] = {now, client};

			rc = sg_db_exec(c, "UPDATE clients SET last_handshake = $1 WHERE id = $2",
					2, q);
		}
		if (rc >= 0)
			rc = sg_db_commit(c);
	}
	if (rc == SG_EEXIST) {
		sg_db_rollback(c);
		srv_error(out, 400, "client_id", "no such client");
	} else if (rc < 0) {
		sg_db_rollback(c);
		srv_dberr(out, c, rc);
	} else {
		srv_json(out, 201,
			 json_pack("{s:s,s:s}", "status", "recorded", "client_id", client));
	}
	sg_db_release(c);
}

/* ---- settings
 * ------------------------------------------------------------------------------------ */

#define SETTINGS_COLS                                                                              \
	"instance_name, admin_email, fips_required, allow_classic_fallback, require_2fa, "         \
	"created_at, updated_at"

static json_t *settings_get(struct sg_db_conn *c, int *rc)
{
	struct sg_db_res *res = NULL;
	json_t *j = NULL;

	*rc = sg_db_query(c, &res, "SELECT " SETTINGS_COLS " FROM settings WHERE id = 1", 0, NULL);
	if (*rc == 1)
		j = srv_row_json(res, 0, "ssbbbii");
	sg_db_res_free(res);
	return j;
}

void h_settings_get(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct sg_db_conn *c;
	json_t *j;
	int rc;

	c = sg_db_acquire(s->db);
	j = settings_get(c, &rc);
	if (rc < 0)
		srv_dberr(out, c, rc);
	else if (!j)
		srv_error(out, 500, NULL, "the settings row is missing");
	else
		srv_json(out, 200, j);
	sg_db_release(c);
}

struct settings_ctx {
	struct srv_req *r;
	json_t *result;
	const char *field; /* of the refusal */
	int status;	   /* a refusal (rc 1 from the transaction) */
	char msg[160];
};

static int settings_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct settings_ctx *x = ctx;
	json_t *body = x->r->json, *v, *d = json_object();
	char now[24];
	int rc = 0;

	(void)s;
	json_decref(x->result);
	x->result = NULL;
#define UPD(col, val, jv)                                                                          \
	do {                                                                                       \
		const char *pp[] = {val};                                                          \
		rc = sg_db_exec(c, "UPDATE settings SET " col " = $1 WHERE id = 1", 1, pp);        \
		if (rc < 0)                                                                        \
			goto out;                                                                  \
		json_object_set_new(d, col, jv);                                                   \
	} while (0)
	if ((v = json_object_get(body, "instance_name")))
		UPD("instance_name", json_string_value(v), json_copy(v));
	if ((v = json_object_get(body, "admin_email")))
		UPD("admin_email", json_string_value(v), json_copy(v));
	if ((v = json_object_get(body, "fips_required")))
		UPD("fips_required", json_is_true(v) ? "1" : "0", json_copy(v));
	if ((v = json_object_get(body, "allow_classic_fallback"))) {
		/* Forbidding classic while classic networks exist would leave them configured
		 * against the policy: the admin moves them to FIPS (or deletes them) first. */
		if (!json_is_true(v)) {
			struct sg_db_res *res = NULL;

			rc = sg_db_query(c, &res,
					 "SELECT COUNT(*) FROM networks WHERE fips_required = 0", 0,
					 NULL);
			if (rc < 0)
				goto out;
			int64_t n = rc == 1 ? srv_res_i64(res, 0, 0) : 0;
			sg_db_res_free(res);
			if (n > 0) {
				x->status = 409;
				x->field = "allow_classic_fallback";
				snprintf(
				    x->msg, sizeof(x->msg),
				    "%lld network(s) use classic WireGuard (fips_required false): "
				    "make them fips_required first",
				    (long long)n);
				rc = 1;
				goto out;
			}
		}
		UPD("allow_classic_fallback", json_is_true(v) ? "1" : "0", json_copy(v));
	}
	if ((v = json_object_get(body, "require_2fa"))) {
		/* Whoever requires a second factor of everyone has one: else the setting would
		 * shut its own author out of everything but enrolment. */
		if (json_is_true(v)) {
			struct sg_db_res *res = NULL;
			const char *p[] = {x->r->who.user_id};

			rc = sg_db_query(c, &res,
					 "SELECT 1 FROM admin_users u WHERE u.id = $1 AND "
					 SRV_SQL_HAS_2FA("u"),
					 1, p);
			if (rc < 0)
				goto out;
			sg_db_res_free(res);
			if (rc == 0) {
				x->status = 409;
				x->field = "require_2fa";
				snprintf(x->msg, sizeof(x->msg),
					 "turn on two-factor authentication for your own account "
					 "first (POST /api/auth/totp, or a passkey: POST "
					 "/api/auth/passkeys/options)");
				rc = 1;
				goto out;
			}
		}
		UPD("require_2fa", json_is_true(v) ? "1" : "0", json_copy(v));
	}
	UPD("updated_at", srv_i64(now, srv_now()), json_integer(srv_now()));
#undef UPD
	rc = srv_audit(c, x->r, "settings.updated", "settings", "1", NULL, "update", d);
	if (!rc)
		x->result = settings_get(c, &rc);
	rc = srv_neg(rc);
out:
	json_decref(d);
	return rc;
}

void h_settings_put(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct settings_ctx x = {.r = r}; /* the body was checked against SettingsUpdate */
	struct sg_db_conn *c;
	int rc;

	c = sg_db_acquire(s->db);
	rc = srv_tx(s, c, settings_tx, &x, false);
	if (rc == 1 && x.status)
		srv_error(out, x.status, x.field, "%s", x.msg);
	else if (rc)
		srv_dberr(out, c, rc);
	else {
		srv_json(out, 200, x.result);
		x.result = NULL;
	}
	json_decref(x.result);
	sg_db_release(c);
}

static char *openapi_text;
static pthread_once_t openapi_once = PTHREAD_ONCE_INIT;

static void openapi_make(void)
{
	openapi_text = api_openapi_text();
}

void h_openapi(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	(void)s;
	(void)r;
	/* Made once from the description (api_spec.c): the same text as docs/openapi.json. */
	pthread_once(&openapi_once, openapi_make);
	if (!openapi_text) {
		srv_error(out, 500, NULL, "out of memory");
		return;
	}
	srv_body(out, 200, "application/json", openapi_text, strlen(openapi_text), NULL);
}

/* Readiness for load balancers (docs/OPERATIONS.md): the database answers and holds the schema
 * this server knows. A database away gives 503 at once (the pool's connections fail fast:
 * connect_timeout, a refused connection) and 200 again by itself when it is back. The reason
 * goes to the caller without the database's own message (host names, user names). */
void h_ready(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct sg_db_conn *c = sg_db_acquire(s->db);
	struct sg_db_res *res = NULL;
	int64_t v = -1;
	char q[256];
	int rc;

	(void)r;
	rc = sg_db_query(c, &res, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", 0,
			 NULL);
	if (rc == 1)
		v = srv_res_i64(res, 0, 0);
	sg_db_res_free(res);
	if (rc < 0) {
		srv_log_limited(SG_LOG_WARN, "not_ready", "reason=database msg=%s",
				sg_log_quote(q, sizeof(q), sg_db_errmsg(c)));
		sg_db_release(c);
		srv_error(out, 503, NULL, "the database is unreachable");
		srv_retry_after(out, 1);
		return;
	}
	sg_db_release(c);
	if (!srv_live_ready()) {
		srv_log_limited(SG_LOG_WARN, "not_ready", "reason=redis");
		srv_error(out, 503, NULL, "redis is unreachable");
		srv_retry_after(out, 1);
		return;
	}
	if (v != db_schema_latest()) {
		srv_log_limited(SG_LOG_WARN, "not_ready", "reason=schema version=%lld known=%d",
				(long long)v, db_schema_latest());
		srv_error(out, 503, NULL, "database schema version %lld, this server runs %d",
			  (long long)v, db_schema_latest());
		srv_retry_after(out, 1);
		return;
	}
	srv_json(out, 200,
		 json_pack("{s:s,s:s,s:I,s:s}", "status", "ready", "database",
			   sg_db_engine(s->db) == SG_DB_POSTGRES ? "postgresql" : "sqlite",
			   "schema_version", (json_int_t)v, "redis",
			   srv_live_on() ? "up" : "none"));
}
