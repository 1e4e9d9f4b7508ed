/* /api/temp-access: time-limited, use-limited links that hand out a fresh client config.
 *
 * The link carries a random token "sgt_..."; the database keeps only its SHA-384, and a redeem
 * looks the hash up (no byte-wise comparison of secrets). Each use creates a client tied to the
 * grant (clients.temp_access_id, ON DELETE CASCADE) that expires with it. Revoking a grant, or
 * the background sweep after it expires, deletes the grant's clients with it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "crypto/crypto.h"
#include "secureguard/sg_errors.h"
#include "server/srv_int.h"

#define TEMP_MIN_SECS 3600
#define TEMP_MAX_SECS (7 * 86400)
#define TEMP_COLS                                                                                  \
	"id, network_id, created_by, name, allowed_ips, expires_at, max_uses, current_uses, "      \
	"revoked, created_at"
#define TEMP_KINDS "ssssliiibi"

static json_t *temp_get(struct sg_db_conn *c, const char *id)
{
	struct sg_db_res *res = NULL;
	const char *p[] = {id};
	json_t *j = NULL;

	if (sg_db_query(c, &res, "SELECT " TEMP_COLS " FROM temp_access WHERE id = $1", 1, p) == 1)
		j = srv_row_json(res, 0, TEMP_KINDS);
	sg_db_res_free(res);
	return j;
}

/* The link's base: --public-url, else the address and port this server was reached on (the
 * bound address, or with a wildcard listen address the local address of this connection), never
 * the Host header: a client may send any Host, and the link would then send the token's
 * recipient to a host of the client's choosing. */
/* path is "/api/temp-access/" (the API's link) or "/guest#" (the console's guest page). */
static void redeem_url(struct srv *s, struct srv_req *r, const char *path, const char *token,
		       char *out, size_t len)
{
	if (s->base_url[0])
		snprintf(out, len, "%s%s%s", s->base_url, path, token);
	else
		snprintf(out, len, "%s://%s%s%s", s->tls ? "https" : "http",
			 r->local_addr[0] ? r->local_addr : s->listen, path, token);
}

/* j[key] = base64 of a PNG QR code of text; false when text does not fit in one (or no
 * memory). */
static bool set_qr(json_t *j, const char *key, const char *text)
{
	size_t pnglen = 0;
	uint8_t *png = srv_qr_png(text, &pnglen);
	char *b64 = png ? malloc(4 * (pnglen / 3 + 1) + 1) : NULL;

	if (b64) {
		srv_b64(b64, png, pnglen);
		json_object_set_new(j, key, json_string(b64));
	}
	free(b64);
	free(png);
	return b64 != NULL;
}

/* A network with mfa_required lets a client in only during its owner's VPN session (password
 * and second factor, docs/SERVER.md "MFA-gated VPN sessions"); a guest has no account, so a link
 * to such a network would either bypass that or give a config that never connects. Neither is
 * given: 1 with why set ("field|message" when field), 0 otherwise (an unknown network is left
 * to the caller), or <0. */
static int mfa_refusal(struct sg_db_conn *c, const char *network_id, const char *field, char *why,
		       size_t wl)
{
	struct sg_db_res *res = NULL;
	const char *p[] = {network_id};
	int rc;

	rc = sg_db_query(c, &res, "SELECT name, mfa_required FROM networks WHERE id = $1", 1, p);
	if (rc == 1 && srv_res_i64(res, 0, 1)) {
		snprintf(why, wl,
			 "%s%snetwork \"%s\" requires MFA-gated VPN sessions (mfa_required): "
			 "temporary access would let a guest in without an account's password and "
			 "second factor, so it is not given on this network",
			 field ? field : "", field ? "|" : "", sg_db_res_get(res, 0, 0));
		rc = 1;
	} else if (rc >= 0) {
		rc = 0;
	}
	sg_db_res_free(res);
	return rc;
}

struct temp_ctx {
	struct srv_req *r;
	const char *id, *network_id, *name, *hash, *token;
	char *allowed;
	int64_t expires_at, max_uses;
	int status;
	bool used_up;	     /* a redeem took the last use */
	char token_hash[97]; /* of a revoked grant, for its key in Redis */
	char why[256];
	json_t *result;
	char *config;
};

static int temp_create_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct temp_ctx *x = ctx;
	char exp[24], mu[24], now[24];
	const char *p[] = {x->id,
			   x->hash,
			   x->network_id,
			   x->r->who.user_id[0] ? x->r->who.user_id : NULL,
			   x->name,
			   x->allowed ? x->allowed : "",
			   srv_i64(exp, x->expires_at),
			   srv_i64(mu, x->max_uses),
			   srv_i64(now, srv_now())};
	int rc;

	(void)s;
	json_decref(x->result);
	x->result = NULL;
	rc = mfa_refusal(c, x->network_id, "network_id", x->why, sizeof(x->why));
	if (rc) {
		x->status = 409;
		return rc;
	}
	rc = sg_db_exec(
	    c,
	    "INSERT INTO temp_access (id, token_hash, network_id, created_by, name, "
	    "allowed_ips, expires_at, max_uses, current_uses, revoked, created_at) VALUES "
	    "($1, $2, $3, $4, $5, $6, $7, $8, 0, 0, $9)",
	    9, p);
	if (rc == SG_EEXIST) {
		x->status = 400;
		snprintf(x->why, sizeof(x->why), "network_id|no such network");
		return 1;
	}
	if (rc < 0)
		return rc;
	x->result = temp_get(c, x->id);
	if (!x->result)
		return SG_EIO;
	return srv_audit(c, x->r, "temp_access.created", "temp_access", x->id, x->name, "create",
			 x->result);
}

static void ctx_error(struct srv_resp *out, int status, const char *why)
{
	const char *bar = strchr(why, '|');

	if (bar) {
		char field[64];

		snprintf(field, sizeof(field), "%.*s", (int)(bar - why), why);
		srv_error(out, status, field, "%s", bar + 1);
	} else {
		srv_error(out, status, NULL, "%s", why);
	}
}

void h_temp_create(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	static const struct field_spec spec[] = {
	    {"network_id", F_STR, true, false}, {"duration_seconds", F_INT, false, false},
	    {"max_uses", F_INT, false, false},	{"allowed_ips", F_STRLIST, false, false},
	    {"name", F_STR, false, true},
	};
	struct temp_ctx x = {.r = r, .max_uses = 1};
	char id[SRV_ID_LEN + 1], token[64], hash[97], url[700];
	struct sg_db_conn *c = NULL;
	int64_t dur = TEMP_MIN_SECS;
	const char *why;
	json_t *v;
	int rc;

	if (!srv_query_check(r, out, NULL) || !srv_check_fields(r, out, spec, SG_ARRAY_LEN(spec)))
		return;
	x.network_id = json_string_value(json_object_get(r->json, "network_id"));
	x.name = json_string_value(json_object_get(r->json, "name"));
	if ((v = json_object_get(r->json, "duration_seconds")))
		dur = json_integer_value(v);
	if (dur < TEMP_MIN_SECS || dur > TEMP_MAX_SECS) {
		srv_error(out, 400, "duration_seconds", "must be %d (1 hour) to %d (7 days)",
			  TEMP_MIN_SECS, TEMP_MAX_SECS);
		return;
	}
	if ((v = json_object_get(r->json, "max_uses")))
		x.max_uses = json_integer_value(v);
	if (x.max_uses < 0 || x.max_uses > 10000) {
		srv_error(out, 400, "max_uses", "must be 0 (unlimited) to 10000");
		return;
	}
	if (x.name && !srv_valid_text(x.name, 64, false)) {
		srv_error(out, 400, "name", "must be 1 to 64 printable characters");
		return;
	}
	if ((v = json_object_get(r->json, "allowed_ips"))) {
		x.allowed = srv_prefix_list(v, false, &why);
		if (!x.allowed) {
			srv_error(out, 400, "allowed_ips", "%s", why);
			return;
		}
	}
	srv_uuid(id);
	srv_new_token(token, "sgt_");
	srv_token_hash(hash, token);
	x.id = id;
	x.hash = hash;
	x.expires_at = srv_now() + dur;
	/* With --redis every server must know the grant before its link exists; a key left by a
	 * creation that fails below names a grant the database lacks, which it then refuses. */
	if (srv_live_temp_put(hash, id, x.expires_at)) {
		srv_error(out, 503, NULL, SRV_LIVE_AWAY);
		srv_retry_after(out, 1);
		goto out;
	}
	c = sg_db_acquire(s->db);
	rc = srv_tx(s, c, temp_create_tx, &x, false);
	if (rc < 0) {
		srv_dberr(out, c, rc);
		goto out;
	}
	if (rc > 0) {
		ctx_error(out, x.status, x.why);
		goto out;
	}
	redeem_url(s, r, "/api/temp-access/", token, url, sizeof(url));
	json_object_set_new(x.result, "token", json_string(token));
	json_object_set_new(x.result, "url", json_string(url));
	if (!set_qr(x.result, "qr_png_base64", url)) {
		srv_error(out, 500, NULL, "QR code generation failed");
		goto out;
	}
	if (s->console_dir[0]) {
		redeem_url(s, r, "/guest#", token, url, sizeof(url));
		json_object_set_new(x.result, "page_url", json_string(url));
		if (!set_qr(x.result, "page_qr_png_base64", url)) {
			srv_error(out, 500, NULL, "QR code generation failed");
			goto out;
		}
	}
	srv_json(out, 201, x.result);
	x.result = NULL;
out:
	sg_memzero(token, sizeof(token));
	sg_memzero(url, sizeof(url));
	free(x.allowed);
	json_decref(x.result);
	sg_db_release(c);
}

void h_temp_list(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	const char *p[3] = {srv_query(r, "network_id")};

	srv_list_page(s, out, "temp_access", TEMP_COLS, TEMP_KINDS,
		      p[0] ? " AND network_id = $1" : "", "created_at, id", p, p[0] ? 1 : 0,
		      srv_limit(r), srv_offset(r));
}

static int temp_redeem_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct temp_ctx *x = ctx;
	struct sg_db_res *res = NULL;
	const char *p[] = {x->hash};
	struct client_new cn = {0};
	char cid[SRV_ID_LEN + 1], name[80];
	json_t *d;
	int rc, st;

	srv_free_secret(x->config);
	x->config = NULL;
	rc = sg_db_query(c, &res,
			 "SELECT id, network_id, name, allowed_ips, expires_at, max_uses, "
			 "current_uses, revoked FROM temp_access WHERE token_hash = $1",
			 1, p);
	if (rc < 0)
		return rc;
	if (rc != 1) {
		x->status = 404;
		snprintf(x->why, sizeof(x->why), "unknown temporary access token");
		rc = 1;
		goto out;
	}
	if (srv_res_i64(res, 0, 7) || srv_res_i64(res, 0, 4) <= srv_now() ||
	    (srv_res_i64(res, 0, 5) && srv_res_i64(res, 0, 6) >= srv_res_i64(res, 0, 5))) {
		x->status = 410;
		snprintf(x->why, sizeof(x->why), "this temporary access is %s",
			 srv_res_i64(res, 0, 7)		       ? "revoked"
			 : srv_res_i64(res, 0, 4) <= srv_now() ? "expired"
							       : "used up");
		rc = 1;
		goto out;
	}
	/* A grant made before its network turned mfa_required: refused before a use is spent. */
	rc = mfa_refusal(c, sg_db_res_get(res, 0, 1), NULL, x->why, sizeof(x->why));
	if (rc) {
		x->status = 409;
		goto out;
	}
	if (!strcmp(x->r->method, "HEAD")) {
		/* A link previewer (chat apps, mail scanners) sends HEAD: it learns the link
		 * is valid and nothing more; no use is counted, no client is made. */
		x->status = 200;
		rc = 1;
		goto out;
	}
	{
		const char *q[] = {sg_db_res_get(res, 0, 0)};

		/* The guard in the WHERE clause keeps max_uses under concurrent redeems. */
		rc = sg_db_exec(
		    c,
		    "UPDATE temp_access SET current_uses = current_uses + 1 WHERE id = $1 "
		    "AND (max_uses = 0 OR current_uses < max_uses)",
		    1, q);
		if (rc < 0)
			goto out;
		if (rc == 0) {
			x->status = 410;
			snprintf(x->why, sizeof(x->why), "this temporary access is used up");
			rc = 1;
			goto out;
		}
		x->used_up =
		    srv_res_i64(res, 0, 5) && srv_res_i64(res, 0, 6) + 1 >= srv_res_i64(res, 0, 5);
	}
	snprintf(name, sizeof(name), "%s-%lld",
		 sg_db_res_get(res, 0, 2) ? sg_db_res_get(res, 0, 2) : "temp",
		 (long long)srv_res_i64(res, 0, 6) + 1);
	cn.network_id = sg_db_res_get(res, 0, 1);
	cn.name = name;
	cn.description = "temporary access";
	cn.allowed_ips = sg_db_res_get(res, 0, 3);
	cn.temp_access_id = sg_db_res_get(res, 0, 0);
	cn.expires_at = srv_res_i64(res, 0, 4);
	x->expires_at = cn.expires_at;
	cn.keepalive = 25;
	cn.enabled = true;
	rc = srv_client_insert(s, c, &cn, cid, x->why, sizeof(x->why));
	if (rc)
		goto out;
	d = json_pack("{s:s,s:I}", "client_id", cid, "use", (json_int_t)srv_res_i64(res, 0, 6) + 1);
	rc = srv_audit(c, x->r, "temp_access.used", "temp_access", sg_db_res_get(res, 0, 0),
		       sg_db_res_get(res, 0, 2), "redeem", d);
	json_decref(d);
	if (!rc) {
		d = json_pack("{s:s}", "temp_access_id", sg_db_res_get(res, 0, 0));
		rc = srv_audit(c, x->r, "client.created", "client", cid, name, "create", d);
		json_decref(d);
	}
	if (rc)
		goto out;
	x->config = srv_render_config(s, c, cid, &st, x->why, sizeof(x->why));
	rc = x->config ? 0 : SG_EIO;
out:
	sg_db_res_free(res);
	return rc;
}

/* With --redis, when sg:temp_access:loaded is absent (Redis lost its data, or a minute went by
 * since the last load): every grant of the database that has not expired gets its key, then the
 * marker says so (live.c). Grants are few (each is an admin's act); this runs at most about
 * once a minute, on whichever server notices first. A grant revoked while this runs may get its
 * id back: harmless, since an id only sends a redeem on to the database. */
static void temp_fill(struct srv *s)
{
	struct sg_db_conn *c = sg_db_acquire(s->db);
	struct sg_db_res *res = NULL;
	char now[24];
	const char *p[] = {srv_i64(now, srv_now())};
	const char **hashes = NULL, **values = NULL;
	int64_t *exp = NULL;
	int n;

	n = sg_db_query(c, &res,
			"SELECT token_hash, id, expires_at, revoked, CASE WHEN max_uses > 0 AND "
			"current_uses >= max_uses THEN 1 ELSE 0 END FROM temp_access WHERE "
			"expires_at > $1",
			1, p);
	if (n >= 0) {
		hashes = calloc((size_t)n + 1, sizeof(*hashes));
		values = calloc((size_t)n + 1, sizeof(*values));
		exp = calloc((size_t)n + 1, sizeof(*exp));
	}
	if (hashes && values && exp) {
		for (int i = 0; i < n; i++) {
			hashes[i] = sg_db_res_get(res, i, 0);
			values[i] = srv_res_i64(res, i, 3)   ? "revoked"
				    : srv_res_i64(res, i, 4) ? "used up"
							     : sg_db_res_get(res, i, 1);
			exp[i] = srv_res_i64(res, i, 2);
		}
		if (!srv_live_temp_fill(hashes, values, exp, (size_t)n))
			srv_log(SG_LOG_DEBUG, "temp_access_loaded", "grants=%d", n);
	}
	free(hashes);
	free(values);
	free(exp);
	sg_db_res_free(res);
	sg_db_release(c);
}

void h_temp_redeem(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	static const char *const allowed[] = {"format", NULL};
	struct temp_ctx x = {.r = r, .token = r->params[0]};
	char hash[97];
	struct sg_db_conn *c;
	int rc;

	if (!srv_query_check(r, out, allowed))
		return;
	if (strncmp(x.token, "sgt_", 4) || strlen(x.token) != 47) {
		srv_error(out, 404, NULL, "unknown temporary access token");
		return;
	}
	if (srv_ip_limited(s, r->source_ip)) {
		srv_error(out, 429, NULL, "too many failed attempts from this address");
		srv_retry_after(out, srv_ip_retry_secs(s, r->source_ip));
		return;
	}
	srv_token_hash(hash, x.token);
	x.hash = hash;
	/* With --redis, a link no grant has, or whose grant ended, is refused without a database
	 * transaction (a stream of guessed or stale links costs the database nothing). */
	switch (srv_live_temp_check(hash, x.why, sizeof(x.why))) {
	case 0:
		srv_ip_failed(s, r->source_ip);
		srv_error(out, 404, NULL, "unknown temporary access token");
		return;
	case 2:
		srv_error(out, 410, NULL, "this temporary access is %s", x.why);
		return;
	case -2:
		temp_fill(s);
		break;
	}
	c = sg_db_acquire(s->db);
	rc = srv_tx(s, c, temp_redeem_tx, &x, true);
	if (!rc && x.used_up)
		srv_live_temp_end(hash, "used up");
	if (rc == SRV_LICENSE) {
		srv_license_refuse(out, x.why);
	} else if (rc > 0 && x.status == 200) {
		srv_body(out, 200, "text/plain; charset=utf-8", "", 0, NULL); /* HEAD */
	} else if (rc > 0) {
		if (x.status == 404)
			srv_ip_failed(s, r->source_ip);
		/* Redis had the grant as valid (it was revoked while Redis was away): now not. */
		if (x.status == 410 && strstr(x.why, "revoked"))
			srv_live_temp_end(hash, "revoked");
		else if (x.status == 410 && strstr(x.why, "used up"))
			srv_live_temp_end(hash, "used up");
		srv_error(out, x.status, NULL, "%s", x.why);
	} else if (rc == SG_EFULL) {
		srv_error(out, 409, NULL, "the network has no free address");
	} else if (rc) {
		srv_dberr(out, c, rc);
	} else if (srv_query(r, "format") && !strcmp(srv_query(r, "format"), "json")) {
		/* The guest page: the config and its QR code in one answer, since each request
		 * spends a use. */
		json_t *j = json_pack("{s:s,s:n,s:I}", "config", x.config, "qr_png_base64",
				      "expires_at", (json_int_t)x.expires_at);

		if (j)
			set_qr(j, "qr_png_base64", x.config);
		srv_json(out, 200, j);
	} else {
		srv_body(out, 200, "text/plain; charset=utf-8", x.config, strlen(x.config),
			 "attachment; filename=\"secureguard-temp.conf\"");
	}
	srv_free_secret(x.config);
	sg_db_release(c);
}

static int temp_revoke_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct temp_ctx *x = ctx;
	struct sg_db_res *res = NULL;
	const char *p[] = {x->hash ? x->hash : x->id};
	json_t *d;
	int rc, n;

	(void)s;
	rc = sg_db_query(
	    c, &res,
	    x->hash ? "SELECT id, name, revoked, token_hash FROM temp_access WHERE "
		      "token_hash = $1"
		    : "SELECT id, name, revoked, token_hash FROM temp_access WHERE id = $1",
	    1, p);
	if (rc < 0)
		return rc;
	if (rc != 1) {
		x->status = 404;
		snprintf(x->why, sizeof(x->why), "no such temporary access");
		rc = 1;
		goto out;
	}
	p[0] = sg_db_res_get(res, 0, 0);
	snprintf(x->token_hash, sizeof(x->token_hash), "%s", sg_db_res_get(res, 0, 3));
	rc = sg_db_exec(c, "UPDATE temp_access SET revoked = 1 WHERE id = $1", 1, p);
	if (rc < 0)
		goto out;
	n = sg_db_exec(c, "DELETE FROM clients WHERE temp_access_id = $1", 1, p);
	if (n < 0) {
		rc = n;
		goto out;
	}
	d = json_pack("{s:i}", "clients_deleted", n);
	rc = srv_audit(c, x->r, "temp_access.revoked", "temp_access", p[0],
		       sg_db_res_get(res, 0, 1), "revoke", d);
	json_decref(d);
out:
	sg_db_res_free(res);
	return rc;
}

void h_temp_delete(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct temp_ctx x = {.r = r};
	char hash[97];
	struct sg_db_conn *c;
	int rc;

	if (!srv_query_check(r, out, NULL))
		return;
	/* By token (what the creator holds) or by id (what the list shows). */
	if (!strncmp(r->params[0], "sgt_", 4)) {
		srv_token_hash(hash, r->params[0]);
		x.hash = hash;
	} else {
		x.id = r->params[0];
	}
	c = sg_db_acquire(s->db);
	rc = srv_tx(s, c, temp_revoke_tx, &x, false);
	if (rc < 0)
		srv_dberr(out, c, rc);
	else if (rc > 0)
		srv_error(out, x.status, NULL, "%s", x.why);
	else
		srv_body(out, 204, "application/json", "", 0, NULL);
	sg_db_release(c);
	/* Every server refuses the link from now on (a failure here leaves the grant's id in
	 * Redis, which only sends a redeem on to the database, which refuses it). */
	if (!rc)
		srv_live_temp_end(x.token_hash, "revoked");
}

/* ---- background sweep ------------------------------------------------------------------------ */

struct sweep_ctx {
	const char *id, *name;
};

static int sweep_one_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct sweep_ctx *x = ctx;
	const char *p[] = {x->id};
	json_t *d;
	int rc, n;

	(void)s;
	n = sg_db_exec(c, "DELETE FROM clients WHERE temp_access_id = $1", 1, p);
	if (n < 0)
		return n;
	rc = sg_db_exec(c, "DELETE FROM temp_access WHERE id = $1", 1, p);
	if (rc <= 0)
		return rc; /* another server swept it first */
	d = json_pack("{s:i}", "clients_deleted", n);
	rc = srv_audit_system(c, "temp_access.expired", "temp_access", x->id, x->name, "expire", d);
	json_decref(d);
	return rc;
}

int srv_sweep(struct srv *s)
{
	struct sg_db_conn *c = sg_db_acquire(s->db);
	struct sg_db_res *res = NULL;
	char now[24];
	const char *p[] = {srv_i64(now, srv_now())};
	int rc, done = 0;

	rc = sg_db_query(c, &res,
			 "SELECT id, name FROM temp_access WHERE expires_at <= $1 ORDER BY "
			 "expires_at LIMIT 100",
			 1, p);
	for (int i = 0; i < rc; i++) {
		struct sweep_ctx x = {sg_db_res_get(res, i, 0), sg_db_res_get(res, i, 1)};
		int r2 = srv_tx(s, c, sweep_one_tx, &x, false);

		if (r2) {
			srv_log(SG_LOG_WARN, "sweep_failed", "err=%s", sg_err_name(r2));
			break;
		}
		done++;
	}
	sg_db_res_free(res);
	/* Dead sessions and refresh tokens carry no audit value. */
	(void)sg_db_exec(c, "DELETE FROM client_sessions WHERE expires_at <= $1", 1, p);
	(void)sg_db_exec(c, "DELETE FROM refresh_tokens WHERE expires_at <= $1", 1, p);
	sg_db_release(c);
	if (done)
		srv_log(SG_LOG_INFO, "temp_access_expired", "count=%d", done);
	return done;
}
