/* Gateways (issue 15, docs/GATEWAY.md "Managed by the server"): /api/v1/gateways, /api/v1/sites,
 * /api/v1/resources and /api/v1/targets, and each gateway's configuration document.
 *
 * A gateway is a managed peer like an agent: `POST /api/v1/gateways` makes it with a one-time
 * enrolment token (enrollment_tokens.gateway_id); the gateway registers with it through
 * /api/peers/register (its own X25519 key), logs in by key proof and long-polls
 * /api/peers/{id}/config, whose answer carries its document under "gateway" (routes_agents.c
 * calls the srv_gateway_* hooks below). Its status reports go to /api/peers/{id}/status.
 *
 * The document (the JSON src/gateway/conf.c validates) is rendered from the rows, never stored.
 * Every change to what it depends on runs in one transaction that first bumps the gateway's
 * config_serial (taking its row lock: concurrent changes of one gateway are ordered), then
 * writes, renders the document again and checks it with the gateway's own validator
 * (gw_conf_check), so the server never accepts a change the gateway would refuse; every problem
 * is answered at once (422), named by the field of the request where it has one.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "crypto/crypto.h"
#include "gateway/conf.h"
#include "secureguard/sg_errors.h"
#include "server/api.h"
#include "server/srv_int.h"

#define ENROLL_TTL_DEFAULT_H 24
#define ONLINE_POLLS	     3
#define MAX_PROBLEMS	     64

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static bool jhas(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return v && !json_is_null(v);
}

static bool exists(struct sg_db_conn *c, const char *sql, const char *id)
{
	struct sg_db_res *res = NULL;
	const char *p[] = {id};
	int rc = sg_db_query(c, &res, sql, 1, p);

	sg_db_res_free(res);
	return rc == 1;
}

/* A list of strings as a comma list (malloc'd); lower case when fold. NULL for out of memory. */
static char *comma_list(json_t *arr, bool fold)
{
	size_t i, cap = 1, n = 0;
	json_t *e;
	char *out;

	json_array_foreach(arr, i, e) cap += strlen(json_string_value(e) ? json_string_value(e) : "") + 1;
	out = calloc(1, cap);
	if (!out)
		return NULL;
	json_array_foreach(arr, i, e)
	{
		const char *v = json_string_value(e);

		if (!v)
			continue;
		n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? "," : "", v);
	}
	for (char *p = out; fold && *p; p++) {
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p + 32);
	}
	return out;
}

/* ---- what the API shows ------------------------------------------------------------------- */

#define SITE_COLS  "id, name, description, networks, created_at, updated_at"
#define SITE_KINDS "ssslii"
#define TARGET_COLS                                                                                \
	"id, resource_id, address, weight, region, health_check, created_at, updated_at"
#define TARGET_KINDS "sssisjii"
#define RES_COLS                                                                                   \
	"id, gateway_id, site_id, name, protocol, domain, aliases, port, auth, api_keys, oidc, "   \
	"CASE WHEN oidc_secret IS NULL THEN 0 ELSE 1 END AS has_client_secret, rate_limit, "       \
	"rules, allow_cidrs AS allow, deny_cidrs AS deny, lb, sticky_cookie, max_body, tls, "      \
	"max_conns, idle_timeout_ms, connect_timeout_ms, response_timeout_ms, retries, eject_ms, " \
	"eject_after, enabled, created_at, updated_at"
#define RES_KINDS "sssssslisljbjjllssijiiiiiiibii"
#define GW_TABLE  "gateways g LEFT JOIN agents a ON a.id = g.agent_id"
#define GW_KINDS  "ssssjjissbiii"

/* The columns of a gateway; online is computed against the agents' poll interval. */
static void gw_cols(struct srv *s, char *buf, size_t len)
{
	snprintf(buf, len,
		 "g.id, g.name, g.region, g.public_address, g.limits, g.expose, g.config_serial, "
		 "g.agent_id, "
		 "CASE WHEN g.agent_id IS NULL THEN 'pending' WHEN a.revoked = 1 THEN 'revoked' "
		 "ELSE a.state END AS state, CASE WHEN a.revoked = 0 AND a.last_seen >= %lld THEN 1 "
		 "ELSE 0 END AS online, a.last_seen, g.created_at, g.updated_at",
		 (long long)(srv_now() - (int64_t)ONLINE_POLLS * s->agent_poll));
}

static json_t *gateway_get(struct srv *s, struct sg_db_conn *c, const char *id, bool detail)
{
	struct sg_db_res *res = NULL;
	const char *p[] = {id};
	char cols[768], sql[1200];
	json_t *j = NULL;

	gw_cols(s, cols, sizeof(cols));
	snprintf(sql, sizeof(sql), "SELECT %s%s FROM " GW_TABLE " WHERE g.id = $1", cols,
		 detail ? ", a.report, a.applied_revision" : "");
	if (sg_db_query(c, &res, sql, 1, p) == 1) {
		j = srv_row_json(res, 0, detail ? GW_KINDS "js" : GW_KINDS);
		if (j && detail) {
			/* What the gateway said of itself in its last status report. */
			json_t *rep = json_object_get(j, "report");
			json_t *g = json_is_object(rep) ? json_object_get(rep, "gateway") : NULL;

			json_object_set(j, "status", json_is_object(g) ? g : json_null());
			json_object_del(j, "report");
		}
	}
	sg_db_res_free(res);
	return j;
}

static json_t *site_get(struct sg_db_conn *c, const char *id)
{
	return srv_row_get(c, "SELECT " SITE_COLS " FROM sites WHERE id = $1", id, SITE_KINDS);
}

static json_t *target_get(struct sg_db_conn *c, const char *id)
{
	return srv_row_get(c, "SELECT " TARGET_COLS " FROM targets WHERE id = $1", id,
			   TARGET_KINDS);
}

/* A resource with its targets. */
static json_t *resource_get(struct sg_db_conn *c, const char *id)
{
	struct sg_db_res *res = NULL;
	const char *p[] = {id};
	json_t *j = srv_row_get(c, "SELECT " RES_COLS " FROM resources WHERE id = $1", id,
				RES_KINDS),
	       *t;
	int rc;

	if (!j)
		return NULL;
	rc = sg_db_query(c, &res,
			 "SELECT " TARGET_COLS " FROM targets WHERE resource_id = $1 ORDER BY "
			 "created_at, id",
			 1, p);
	t = json_array();
	for (int i = 0; i < rc; i++)
		json_array_append_new(t, srv_row_json(res, i, TARGET_KINDS));
	sg_db_res_free(res);
	if (rc < 0) {
		json_decref(t);
		json_decref(j);
		return NULL;
	}
	json_object_set_new(j, "targets", t);
	return j;
}

/* ---- the document ---------------------------------------------------------------------- */

/* The columns a document is rendered from (in this order). */
#define DOC_RES_COLS                                                                               \
	"id, name, site_id, protocol, domain, aliases, port, auth, api_keys, oidc, oidc_secret, "  \
	"rate_limit, rules, allow_cidrs, deny_cidrs, lb, sticky_cookie, max_body, tls, "           \
	"max_conns, idle_timeout_ms, connect_timeout_ms, response_timeout_ms, retries, "           \
	"eject_ms, eject_after"
enum {
	DR_ID, DR_NAME, DR_SITE, DR_PROTO, DR_DOMAIN, DR_ALIASES, DR_PORT, DR_AUTH, DR_KEYS,
	DR_OIDC, DR_SECRET, DR_RATE, DR_RULES, DR_ALLOW, DR_DENY, DR_LB, DR_STICKY, DR_MAX_BODY,
	DR_TLS, DR_INTS /* max_conns ... eject_after: the rest, integers */
};
static const char *const doc_ints[] = {"max_conns", "idle_timeout_ms", "connect_timeout_ms",
				       "response_timeout_ms", "retries", "eject_ms",
				       "eject_after", NULL};

static json_t *list_json(const char *v)
{
	json_t *a = json_array();

	while (v && *v) {
		const char *c = strchr(v, ',');
		size_t n = c ? (size_t)(c - v) : strlen(v);

		if (n)
			json_array_append_new(a, json_stringn(v, n));
		v += n + (c ? 1 : 0);
	}
	return a;
}

static json_t *parse_json(const char *v)
{
	return v ? json_loads(v, JSON_DECODE_ANY, NULL) : NULL;
}

struct render {
	json_t *doc;
	json_t *problems; /* strings: what is left out */
	bool secrets;	  /* the gateway's own copy (client secrets opened) */
	/* For checking a change: every resource, also those not served (disabled, or without
	 * targets yet, rendered without "targets"), so that none escapes the checks. */
	bool check;
};

/* One resource's part of the document from a row of DOC_RES_COLS; NULL when left out (the
 * reason is appended to problems). */
static json_t *render_resource(struct srv *s, struct sg_db_res *res, int i, json_t *targets,
			       struct render *rd)
{
	const char *id = sg_db_res_get(res, i, DR_ID), *name = sg_db_res_get(res, i, DR_NAME);
	const char *proto = sg_db_res_get(res, i, DR_PROTO), *auth = sg_db_res_get(res, i, DR_AUTH);
	json_t *o, *v;

	if (!json_array_size(targets) && !rd->check) {
		json_array_append_new(rd->problems,
				      json_sprintf("resource \"%s\" (%s) has no targets: not served",
						   name, id));
		return NULL;
	}
	if (!strcmp(auth, "login") && !sg_db_res_get(res, i, DR_OIDC) && !s->base_url[0]) {
		/* (A change of it is refused before: resource_precheck.) */
		if (rd->check)
			return NULL;
		json_array_append_new(
		    rd->problems, json_sprintf("resource \"%s\" (%s): login through this server needs "
					       "its --public-url: not served",
					       name, id));
		return NULL;
	}
	o = json_pack("{s:s,s:s,s:s}", "id", id, "name", name, "protocol", proto);
	if (!o)
		return NULL;
	if (sg_db_res_get(res, i, DR_SITE))
		json_object_set_new(o, "site", json_string(sg_db_res_get(res, i, DR_SITE)));
	if (!strcmp(proto, "http")) {
		json_t *d = json_array();

		if (sg_db_res_get(res, i, DR_DOMAIN))
			json_array_append_new(d, json_string(sg_db_res_get(res, i, DR_DOMAIN)));
		json_array_extend(d, v = list_json(sg_db_res_get(res, i, DR_ALIASES)));
		json_decref(v);
		json_object_set_new(o, "domains", d);
	}
	if (sg_db_res_get(res, i, DR_PORT))
		json_object_set_new(o, "port", json_integer(srv_res_i64(res, i, DR_PORT)));
	if (strcmp(auth, "public"))
		json_object_set_new(o, "auth", json_string(auth));
	v = list_json(sg_db_res_get(res, i, DR_KEYS));
	if (json_array_size(v))
		json_object_set(o, "api_keys", v);
	json_decref(v);
	if (sg_db_res_get(res, i, DR_OIDC)) {
		v = parse_json(sg_db_res_get(res, i, DR_OIDC));
		if (json_is_object(v) && sg_db_res_get(res, i, DR_SECRET) && rd->secrets) {
			char *sec = srv_open(s, sg_db_res_get(res, i, DR_SECRET), id, "oidc");

			if (sec)
				json_object_set_new(v, "client_secret", json_string(sec));
			srv_free_secret(sec);
		}
		json_object_set_new(o, "oidc", v ? v : json_null());
	} else if (!strcmp(auth, "login")) {
		/* The server's own provider: the gateway trusts its public key only. */
		json_object_set_new(o, "oidc",
				    json_pack("{s:s,s:s}", "issuer", s->base_url, "client_id", id));
	}
	if ((v = parse_json(sg_db_res_get(res, i, DR_RATE))))
		json_object_set_new(o, "rate_limit", v);
	if ((v = parse_json(sg_db_res_get(res, i, DR_RULES))))
		json_object_set_new(o, "rules", v);
	v = list_json(sg_db_res_get(res, i, DR_ALLOW));
	if (json_array_size(v))
		json_object_set(o, "allow", v);
	json_decref(v);
	v = list_json(sg_db_res_get(res, i, DR_DENY));
	if (json_array_size(v))
		json_object_set(o, "deny", v);
	json_decref(v);
	if (sg_db_res_get(res, i, DR_LB))
		json_object_set_new(o, "lb", json_string(sg_db_res_get(res, i, DR_LB)));
	if (sg_db_res_get(res, i, DR_STICKY))
		json_object_set_new(o, "sticky_cookie", json_string(sg_db_res_get(res, i, DR_STICKY)));
	if (sg_db_res_get(res, i, DR_MAX_BODY))
		json_object_set_new(o, "max_body", json_integer(srv_res_i64(res, i, DR_MAX_BODY)));
	if ((v = parse_json(sg_db_res_get(res, i, DR_TLS))))
		json_object_set_new(o, "tls", v);
	for (int k = 0; doc_ints[k]; k++) {
		if (sg_db_res_get(res, i, DR_INTS + k))
			json_object_set_new(o, doc_ints[k],
					    json_integer(srv_res_i64(res, i, DR_INTS + k)));
	}
	if (json_array_size(targets))
		json_object_set(o, "targets", targets);
	return o;
}

/* Gateway gw's document (docs/GATEWAY.md), as the gateway gets it when secrets; 0, SG_ENOENT
 * or a database error. */
static int render(struct srv *s, struct sg_db_conn *c, const char *gw, struct render *rd)
{
	struct sg_db_res *g = NULL, *res = NULL, *tg = NULL, *st = NULL;
	const char *p[] = {gw};
	json_t *resources = NULL, *sites = NULL;
	int rc, nres, nt, k = 0;

	rd->doc = NULL;
	rd->problems = json_array();
	rc = sg_db_query(c, &g,
			 "SELECT name, region, limits, config_serial FROM gateways WHERE id = $1", 1,
			 p);
	if (rc != 1) {
		rc = rc < 0 ? rc : SG_ENOENT;
		goto out;
	}
	rc = nres = sg_db_query(c, &res,
				rd->check ? "SELECT " DOC_RES_COLS " FROM resources WHERE "
					    "gateway_id = $1 ORDER BY created_at, id"
					  : "SELECT " DOC_RES_COLS " FROM resources WHERE "
					    "gateway_id = $1 AND enabled = 1 ORDER BY created_at, id",
				1, p);
	if (rc < 0)
		goto out;
	rc = nt = sg_db_query(c, &tg,
			      "SELECT t.resource_id, t.id, t.address, t.weight, t.region, "
			      "t.health_check FROM targets t JOIN resources r ON r.id = "
			      "t.resource_id WHERE r.gateway_id = $1 AND (r.enabled = 1 OR $2 = 1) "
			      "ORDER BY t.resource_id, t.created_at, t.id",
			      2, (const char *[]){gw, rd->check ? "1" : "0"});
	if (rc < 0)
		goto out;
	rc = sg_db_query(c, &st,
			 "SELECT id, name, networks FROM sites WHERE id IN (SELECT site_id FROM "
			 "resources WHERE gateway_id = $1 AND (enabled = 1 OR $2 = 1)) ORDER BY id",
			 2, (const char *[]){gw, rd->check ? "1" : "0"});
	if (rc < 0)
		goto out;
	sites = json_array();
	for (int i = 0; i < rc; i++)
		json_array_append_new(sites, json_pack("{s:s,s:s,s:o}", "id", sg_db_res_get(st, i, 0),
						       "name", sg_db_res_get(st, i, 1), "networks",
						       list_json(sg_db_res_get(st, i, 2))));
	resources = json_array();
	for (int i = 0; i < nres; i++) {
		const char *rid = sg_db_res_get(res, i, DR_ID);
		json_t *targets = json_array(), *r;

		/* Targets come ordered by resource id; find this one's run. */
		for (k = 0; k < nt && strcmp(sg_db_res_get(tg, k, 0), rid); k++)
			;
		for (; k < nt && !strcmp(sg_db_res_get(tg, k, 0), rid); k++) {
			json_t *t = json_pack("{s:s,s:s,s:I}", "id", sg_db_res_get(tg, k, 1),
					      "address", sg_db_res_get(tg, k, 2), "weight",
					      (json_int_t)srv_res_i64(tg, k, 3));
			json_t *hc = parse_json(sg_db_res_get(tg, k, 5));

			if (sg_db_res_get(tg, k, 4))
				json_object_set_new(t, "region", json_string(sg_db_res_get(tg, k, 4)));
			if (hc)
				json_object_set_new(t, "health_check", hc);
			json_array_append_new(targets, t);
		}
		r = render_resource(s, res, i, targets, rd);
		json_decref(targets);
		if (r)
			json_array_append_new(resources, r);
	}
	rd->doc = json_pack("{s:I,s:s,s:s,s:o?,s:O,s:O}", "serial",
			    (json_int_t)srv_res_i64(g, 0, 3), "id", gw, "name", sg_db_res_get(g, 0, 0),
			    "limits",
			    parse_json(sg_db_res_get(g, 0, 2)), "sites", sites, "resources",
			    resources);
	if (rd->doc && sg_db_res_get(g, 0, 1))
		json_object_set_new(rd->doc, "region", json_string(sg_db_res_get(g, 0, 1)));
	rc = rd->doc ? 0 : SG_ENOMEM;
out:
	json_decref(sites);
	json_decref(resources);
	sg_db_res_free(g);
	sg_db_res_free(res);
	sg_db_res_free(tg);
	sg_db_res_free(st);
	return rc;
}

static void render_free(struct render *rd)
{
	json_decref(rd->doc);
	json_decref(rd->problems);
	rd->doc = rd->problems = NULL;
}

/* ---- checking a change ------------------------------------------------------------------ */

/* What a change is about, to name the fields of its problems as the request did. */
struct subject {
	const char *resource_id; /* a resource, or the resource of the target */
	const char *target_id;
	bool has_domain;	 /* the resource has a domain (domains[0] is it, the rest aliases) */
	json_t *doc;
	json_t *errors;
};

/* "resources[3].targets[1].weight" -> 3, then "targets[1].weight"; -1 when path is not one. */
static int path_index(const char *path, const char *prefix, const char **rest)
{
	size_t n = strlen(prefix);
	char *end;
	long i;

	if (strncmp(path, prefix, n) || path[n] != '[')
		return -1;
	i = strtol(path + n + 1, &end, 10);
	if (end == path + n + 1 || *end != ']' || i < 0 || i > 100000)
		return -1;
	*rest = end[1] == '.' ? end + 2 : end + 1;
	return (int)i;
}

/* The API's name of a resource field from the document's. */
static void resource_field(char *out, size_t len, const char *f, bool has_domain)
{
	const char *rest;
	int i = path_index(f, "domains", &rest);

	if (i >= 0 && has_domain && i == 0)
		snprintf(out, len, "domain%s%s", *rest ? "." : "", rest);
	else if (i >= 0)
		snprintf(out, len, "aliases[%d]%s%s", i - (has_domain ? 1 : 0), *rest ? "." : "",
			 rest);
	else if (!strcmp(f, "domains"))
		snprintf(out, len, "domain");
	else if (!strcmp(f, "site"))
		snprintf(out, len, "site_id");
	else
		snprintf(out, len, "%s", f);
}

static void on_problem(void *ctx, const char *path, const char *detail)
{
	struct subject *sj = ctx;
	char field[256];
	const char *rest, *rest2;
	int i = path_index(path, "resources", &rest), t;
	json_t *res = i >= 0 ? json_array_get(json_object_get(sj->doc, "resources"), (size_t)i)
			     : NULL;
	const char *rid = jstr(res, "id"), *tid = NULL;

	if (json_array_size(sj->errors) >= MAX_PROBLEMS)
		return;
	/* A resource without targets yet is not served: no problem while it waits for them. */
	if (res && !json_object_get(res, "targets") && !strcmp(rest, "targets") &&
	    strstr(detail, "at least one target"))
		return;
	t = res ? path_index(rest, "targets", &rest2) : -1;
	if (t >= 0)
		tid = jstr(json_array_get(json_object_get(res, "targets"), (size_t)t), "id");
	if (sj->target_id && tid && !strcmp(tid, sj->target_id)) {
		/* About the target as a whole: where it is (outside its site's networks). */
		resource_field(field, sizeof(field), *rest2 ? rest2 : "address", false);
	} else if (sj->resource_id && !sj->target_id && rid && !strcmp(rid, sj->resource_id)) {
		resource_field(field, sizeof(field),
			       *rest ? rest : strstr(detail, "port") ? "port" : "domains",
			       sj->has_domain);
	} else if (res) {
		/* Another resource (or the subject target's resource): say which. */
		json_array_append_new(
		    sj->errors,
		    json_pack("{s:s,s:o}", "field", path, "detail",
			      json_sprintf("resource \"%s\" (%s): %s",
					   jstr(res, "name") ? jstr(res, "name") : "?",
					   rid ? rid : "?", detail)));
		return;
	} else {
		snprintf(field, sizeof(field), "%s", path[0] ? path : "config");
	}
	json_array_append_new(sj->errors,
			      json_pack("{s:s,s:s}", "field", field[0] ? field : "config", "detail",
					detail));
}

/* Renders gateway gw's document and checks it with the gateway's validator. 0 when valid;
 * SG_EINVAL with sj->errors filled; SG_ENOENT; a database error. */
static int check_gateway(struct srv *s, struct sg_db_conn *c, const char *gw, struct subject *sj)
{
	struct render rd = {.secrets = true, .check = true};
	char *text = NULL;
	int rc = render(s, c, gw, &rd), n;

	if (rc)
		goto out;
	text = json_dumps(rd.doc, JSON_COMPACT);
	if (!text) {
		rc = SG_ENOMEM;
		goto out;
	}
	if (!sj->errors)
		sj->errors = json_array();
	sj->doc = rd.doc;
	n = gw_conf_check(text, strlen(text), on_problem, sj);
	sj->doc = NULL;
	/* Problems the mapping let pass (a resource still without targets) do not count. */
	rc = n < 0 ? n : json_array_size(sj->errors) ? SG_EINVAL : 0;
out:
	if (text) {
		sg_memzero(text, strlen(text));
		free(text);
	}
	render_free(&rd);
	return rc;
}

/* Bumps a gateway's serial (taking its row lock first: changes of one gateway are ordered).
 * SG_ENOENT when there is no such gateway. */
static int bump(struct sg_db_conn *c, const char *gw)
{
	char now[24];
	const char *p[] = {gw, srv_i64(now, srv_now())};
	int rc = sg_db_exec(c,
			    "UPDATE gateways SET config_serial = config_serial + 1, updated_at = $2 "
			    "WHERE id = $1",
			    2, p);

	return rc < 0 ? rc : rc == 0 ? SG_ENOENT : 0;
}

/* The outcome of a write transaction, answered by reply(). */
struct wctx {
	struct srv_req *r;
	int status;	  /* 4xx with why, or 0 */
	const char *field;
	char why[256];
	json_t *errors;	  /* 422 */
	json_t *result;
	int result_status; /* 200 / 201 */
	char id[SRV_ID_LEN + 1];
	char gw[SRV_ID_LEN + 1];
	char token[64];
};

static int refuse(struct wctx *x, int status, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int refuse(struct wctx *x, int status, const char *field, const char *fmt, ...)
{
	va_list ap;

	x->status = status;
	x->field = field;
	va_start(ap, fmt);
	vsnprintf(x->why, sizeof(x->why), fmt, ap);
	va_end(ap);
	return SG_EINVAL;
}

static void reply(struct srv_resp *out, struct sg_db_conn *c, struct wctx *x, int rc)
{
	if (rc == SG_EINVAL && x->errors && json_array_size(x->errors)) {
		srv_problems(out, 422, "the gateway would refuse its configuration; nothing changed",
			     x->errors, NULL);
		x->errors = NULL;
	} else if (rc && x->status) {
		srv_error(out, x->status, x->field, "%s", x->why);
	} else if (rc) {
		srv_dberr(out, c, rc);
	} else if (x->result) {
		srv_json(out, x->result_status, x->result);
		x->result = NULL;
	} else {
		srv_body(out, 204, "", "", 0, NULL);
	}
	json_decref(x->errors);
	json_decref(x->result);
	x->errors = x->result = NULL;
	sg_memzero(x->token, sizeof(x->token));
}

/* Checks gw after a change about sj; a refusal is SG_EINVAL with x->errors. */
static int recheck(struct srv *s, struct sg_db_conn *c, struct wctx *x, const char *gw,
		   struct subject *sj)
{
	int rc = check_gateway(s, c, gw, sj);

	if (rc == SG_EINVAL) {
		json_decref(x->errors);
		x->errors = sj->errors;
		sj->errors = NULL;
	}
	json_decref(sj->errors);
	sj->errors = NULL;
	return rc;
}

/* ---- the hooks routes_agents.c calls ------------------------------------------------------- */

int srv_gateway_enrolling(struct srv *s, struct sg_db_conn *c, struct srv_req *r,
			  const char *gateway_id, char name[33])
{
	struct sg_db_res *res = NULL;
	const char *p[] = {gateway_id, NULL};
	char now[24];
	int rc;

	(void)s;
	rc = sg_db_query(c, &res, "SELECT agent_id, name FROM gateways WHERE id = $1", 1, p);
	if (rc != 1) {
		sg_db_res_free(res);
		return rc < 0 ? rc : SG_ENOENT;
	}
	/* A gateway has one credential: enrolling again (a new host, a lost key) revokes the
	 * previous one at once. */
	if (sg_db_res_get(res, 0, 0)) {
		const char *q[] = {sg_db_res_get(res, 0, 0), srv_i64(now, srv_now())};
		int n = sg_db_exec(c,
				   "UPDATE agents SET revoked = 1, state = 'revoked', updated_at = $2 "
				   "WHERE id = $1 AND revoked = 0",
				   2, q);

		rc = srv_neg(n);
		if (!rc && n > 0)
			rc = srv_neg(sg_db_exec(c, "DELETE FROM agent_sessions WHERE agent_id = $1",
						1, q));
		if (!rc && n > 0) {
			json_t *d = json_pack("{s:s,s:s}", "gateway_id", gateway_id, "reason",
					      "the gateway enrolled again");

			rc = srv_audit(c, r, "agent.revoked", "agent", q[0], NULL, "revoke", d);
			json_decref(d);
		}
		if (rc) {
			sg_db_res_free(res);
			return rc;
		}
	}
	sg_db_res_free(res);
	/* Peer names are 1..32 of letters, digits and '-': the gateway's id tells it apart. */
	snprintf(name, 33, "gateway-%.8s", gateway_id);
	return 0;
}

int srv_gateway_enrolled(struct sg_db_conn *c, struct srv_req *r, const char *gateway_id,
			 const char *agent_id)
{
	struct sg_db_res *res = NULL;
	char now[24];
	const char *p[] = {gateway_id, agent_id, srv_i64(now, srv_now())};
	int rc = sg_db_exec(c, "UPDATE gateways SET agent_id = $2, updated_at = $3 WHERE id = $1",
			    3, p);
	json_t *d;

	if (rc < 0)
		return rc;
	rc = sg_db_query(c, &res, "SELECT name FROM gateways WHERE id = $1", 1, p);
	if (rc < 0)
		return rc;
	d = json_pack("{s:s}", "agent_id", agent_id);
	rc = srv_audit(c, r, "gateway.enrolled", "gateway", gateway_id,
		       rc == 1 ? sg_db_res_get(res, 0, 0) : NULL, "enroll", d);
	json_decref(d);
	sg_db_res_free(res);
	return rc;
}

json_t *srv_gateway_agent_doc(struct srv *s, struct sg_db_conn *c, const char *agent_id,
			      json_t *problems, int *rc)
{
	struct sg_db_res *res = NULL;
	const char *p[] = {agent_id};
	struct render rd = {.secrets = true};
	char gw[SRV_ID_LEN + 1];
	size_t i;
	json_t *e;

	*rc = sg_db_query(c, &res, "SELECT id FROM gateways WHERE agent_id = $1", 1, p);
	if (*rc != 1) {
		sg_db_res_free(res);
		*rc = *rc < 0 ? *rc : 0;
		return NULL;
	}
	snprintf(gw, sizeof(gw), "%s", sg_db_res_get(res, 0, 0));
	sg_db_res_free(res);
	*rc = render(s, c, gw, &rd);
	if (*rc) {
		render_free(&rd);
		return NULL;
	}
	json_array_foreach(rd.problems, i, e) json_array_append(problems, e);
	json_decref(rd.problems);
	return rd.doc;
}

void srv_gateway_strip(json_t *doc)
{
	json_t *r;
	size_t i;

	json_array_foreach(json_object_get(json_object_get(doc, "gateway"), "resources"), i, r)
	{
		json_object_del(json_object_get(r, "oidc"), "client_secret");
	}
}

/* ---- gateways ------------------------------------------------------------------------------ */

void h_gateways_list(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	const char *p[2];
	char cols[768];

	gw_cols(s, cols, sizeof(cols));
	srv_list_page(s, out, GW_TABLE, cols, GW_KINDS, "", "g.created_at, g.id", p, 0,
		      srv_limit(r), srv_offset(r));
}

void h_gateways_get(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct sg_db_conn *c = sg_db_acquire(s->db);
	json_t *j = gateway_get(s, c, r->params[0], true);

	if (j)
		srv_json(out, 200, j);
	else
		srv_error(out, 404, NULL, "no such gateway");
	sg_db_release(c);
}

/* A new one-time enrolment token for gateway x->gw (the unused ones before it revoked). */
static int new_enrollment(struct sg_db_conn *c, struct wctx *x, const char *gw_name,
			  int64_t hours, int64_t *expires)
{
	char id[SRV_ID_LEN + 1], hash[97], exp[24], now[24], name[128];
	int64_t t = srv_now();
	const char *q[] = {x->gw};
	const char *p[] = {id,
			   hash,
			   name,
			   x->r->who.user_id[0] ? x->r->who.user_id : NULL,
			   srv_i64(exp, t + hours * 3600),
			   srv_i64(now, t),
			   x->gw};
	int rc = sg_db_exec(c,
			    "UPDATE enrollment_tokens SET revoked = 1 WHERE gateway_id = $1 AND "
			    "used_at IS NULL AND revoked = 0",
			    1, q);

	if (rc < 0)
		return rc;
	srv_uuid(id);
	srv_new_token(x->token, "sge_");
	srv_token_hash(hash, x->token);
	snprintf(name, sizeof(name), "gateway %s", gw_name);
	*expires = t + hours * 3600;
	return srv_neg(sg_db_exec(c,
				  "INSERT INTO enrollment_tokens (id, token_hash, name, tags, "
				  "created_by, expires_at, created_at, gateway_id) VALUES ($1, $2, "
				  "$3, '', $4, $5, $6, $7)",
				  7, p));
}

static int64_t hours_of(json_t *b)
{
	return jhas(b, "enrollment_expires_in_hours")
		   ? json_integer_value(json_object_get(b, "enrollment_expires_in_hours"))
		   : ENROLL_TTL_DEFAULT_H;
}

static char *limits_text(json_t *b)
{
	json_t *l = json_object_get(b, "limits");

	return json_is_object(l) ? json_dumps(l, JSON_COMPACT | JSON_SORT_KEYS) : strdup("{}");
}

/* Checks a gateway's expose settings (null: none) into their stored text (*text, malloc'd, NULL
 * for none): the network exists, ports is [first, last]. */
static int expose_text(struct sg_db_conn *c, struct wctx *x, json_t *e, char **text)
{
	json_t *ports = json_object_get(e, "ports");

	*text = NULL;
	if (!json_is_object(e))
		return 0;
	if (!exists(c, "SELECT 1 FROM networks WHERE id = $1", jstr(e, "network_id")))
		return refuse(x, 404, "expose.network_id", "no such network");
	if (ports && (json_array_size(ports) != 2 ||
		      json_integer_value(json_array_get(ports, 0)) >
			  json_integer_value(json_array_get(ports, 1))))
		return refuse(x, 422, "expose.ports", "must be [first, last] with first <= last");
	*text = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS);
	return *text ? 0 : SG_ENOMEM;
}

/* Services need an address for their DNS records. */
static int expose_needs_address(struct sg_db_conn *c, struct wctx *x)
{
	if (exists(c,
		   "SELECT 1 FROM gateways WHERE id = $1 AND expose IS NOT NULL AND "
		   "public_address IS NULL",
		   x->gw))
		return refuse(x, 422, "public_address",
			      "a gateway that takes services (expose) needs public_address: its "
			      "services' DNS records point at it");
	return 0;
}

static int gw_create_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct wctx *x = ctx;
	json_t *b = x->r->json;
	const char *name = jstr(b, "name");
	char *key = srv_text_fold(name), *limits = limits_text(b), now[24], *expose = NULL;
	const char *p[] = {x->gw,
			   name,
			   key,
			   jstr(b, "region"),
			   jstr(b, "public_address"),
			   limits,
			   x->r->who.user_id[0] ? x->r->who.user_id : NULL,
			   srv_i64(now, srv_now()),
			   NULL};
	struct subject sj = {0};
	int64_t expires;
	int rc;

	if (!key || !limits) {
		rc = SG_ENOMEM;
		goto out;
	}
	rc = expose_text(c, x, json_object_get(b, "expose"), &expose);
	if (rc)
		goto out;
	p[8] = expose;
	rc = sg_db_exec(c,
			"INSERT INTO gateways (id, name, name_key, region, public_address, limits, "
			"created_by, created_at, updated_at, expose) VALUES ($1, $2, $3, $4, $5, $6, "
			"$7, $8, $8, $9)",
			9, p);
	if (rc == SG_EEXIST) {
		rc = refuse(x, 409, "name", "a gateway named \"%s\" exists", name);
		goto out;
	}
	if (rc < 0)
		goto out;
	rc = expose_needs_address(c, x);
	if (!rc)
		rc = recheck(s, c, x, x->gw, &sj);
	if (!rc)
		rc = new_enrollment(c, x, name, hours_of(b), &expires);
	if (rc)
		goto out;
	x->result = gateway_get(s, c, x->gw, false);
	rc = x->result ? srv_audit(c, x->r, "gateway.created", "gateway", x->gw, name, "create",
				   x->result)
		       : SG_ENOMEM;
	if (!rc) {
		json_object_set_new(x->result, "enrollment_token", json_string(x->token));
		json_object_set_new(x->result, "enrollment_expires_at", json_integer(expires));
	}
out:
	free(key);
	free(limits);
	free(expose);
	return rc;
}

void h_gateways_create(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct wctx x = {.r = r, .result_status = 201};
	struct sg_db_conn *c = sg_db_acquire(s->db);
	int rc;

	srv_uuid(x.gw);
	rc = srv_tx(s, c, gw_create_tx, &x, false);
	reply(out, c, &x, rc);
	sg_db_release(c);
}

static int gw_config_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct wctx *x = ctx;
	json_t *b = x->r->json;
	char sql[512] = "UPDATE gateways SET updated_at = updated_at", *key = NULL, *limits = NULL;
	char *expose = NULL;
	const char *p[8] = {x->gw};
	struct subject sj = {0};
	int n = 1, rc = bump(c, x->gw);

	if (rc == SG_ENOENT)
		return refuse(x, 404, NULL, "no such gateway");
	if (rc)
		return rc;
#define SET(col, val)                                                                              \
	do {                                                                                       \
		p[n++] = (val);                                                                    \
		snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), ", " col " = $%d", n);     \
	} while (0)
	if (json_object_get(b, "name")) {
		key = srv_text_fold(jstr(b, "name"));
		if (!key)
			return SG_ENOMEM;
		SET("name", jstr(b, "name"));
		SET("name_key", key);
	}
	if (json_object_get(b, "region"))
		SET("region", jstr(b, "region"));
	if (json_object_get(b, "public_address"))
		SET("public_address", jstr(b, "public_address"));
	if (json_object_get(b, "limits")) {
		limits = limits_text(b);
		if (!limits) {
			free(key);
			return SG_ENOMEM;
		}
		SET("limits", limits);
	}
	if (json_object_get(b, "expose")) {
		rc = expose_text(c, x, json_object_get(b, "expose"), &expose);
		if (rc) {
			free(key);
			free(limits);
			return rc;
		}
		SET("expose", expose);
	}
#undef SET
	snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), " WHERE id = $1");
	rc = sg_db_exec(c, sql, n, p);
	if (rc == SG_EEXIST)
		rc = refuse(x, 409, "name", "a gateway with this name exists");
	if (rc >= 0)
		rc = expose_needs_address(c, x);
	if (!rc)
		rc = recheck(s, c, x, x->gw, &sj);
	if (!rc) {
		x->result = gateway_get(s, c, x->gw, false);
		rc = x->result ? srv_audit(c, x->r, "gateway.updated", "gateway", x->gw,
					   jstr(x->result, "name"), "update", b)
			       : SG_ENOMEM;
	}
	free(key);
	free(limits);
	free(expose);
	return rc;
}

void h_gateways_config_put(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct wctx x = {.r = r, .result_status = 200};
	struct sg_db_conn *c = sg_db_acquire(s->db);
	int rc;

	snprintf(x.gw, sizeof(x.gw), "%s", r->params[0]);
	rc = srv_tx(s, c, gw_config_tx, &x, false);
	reply(out, c, &x, rc);
	sg_db_release(c);
}

void h_gateways_config_get(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct sg_db_conn *c = sg_db_acquire(s->db);
	struct render rd = {.secrets = false};
	int rc = render(s, c, r->params[0], &rd);

	if (rc == SG_ENOENT)
		srv_error(out, 404, NULL, "no such gateway");
	else if (rc)
		srv_dberr(out, c, rc);
	else
		srv_json(out, 200,
			 json_pack("{s:O,s:O}", "config", rd.doc, "problems", rd.problems));
	render_free(&rd);
	sg_db_release(c);
}

static int gw_token_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct wctx *x = ctx;
	struct sg_db_res *res = NULL;
	const char *p[] = {x->gw};
	int64_t expires;
	int rc = sg_db_query(c, &res, "SELECT name FROM gateways WHERE id = $1", 1, p);

	(void)s;
	if (rc != 1) {
		sg_db_res_free(res);
		return rc < 0 ? rc : refuse(x, 404, NULL, "no such gateway");
	}
	rc = new_enrollment(c, x, sg_db_res_get(res, 0, 0), hours_of(x->r->json), &expires);
	if (!rc)
		rc = srv_audit(c, x->r, "gateway.enrollment_token", "gateway", x->gw,
			       sg_db_res_get(res, 0, 0), "create", NULL);
	sg_db_res_free(res);
	if (!rc) {
		x->result = json_pack("{s:s,s:s,s:I}", "gateway_id", x->gw, "enrollment_token",
				      x->token, "enrollment_expires_at", (json_int_t)expires);
		rc = x->result ? 0 : SG_ENOMEM;
	}
	return rc;
}

void h_gateways_token(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct wctx x = {.r = r, .result_status = 201};
	struct sg_db_conn *c = sg_db_acquire(s->db);
	int rc;

	snprintf(x.gw, sizeof(x.gw), "%s", r->params[0]);
	rc = srv_tx(s, c, gw_token_tx, &x, false);
	reply(out, c, &x, rc);
	sg_db_release(c);
}

static int gw_delete_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct wctx *x = ctx;
	struct sg_db_res *res = NULL;
	char now[24];
	const char *p[] = {x->gw, srv_i64(now, srv_now())};
	int rc = sg_db_query(c, &res, "SELECT name, agent_id FROM gateways WHERE id = $1", 1, p);

	(void)s;
	if (rc != 1) {
		sg_db_res_free(res);
		return rc < 0 ? rc : refuse(x, 404, NULL, "no such gateway");
	}
	/* Its credential goes with it: its sessions end now, a waiting long poll included. */
	if (sg_db_res_get(res, 0, 1)) {
		const char *q[] = {sg_db_res_get(res, 0, 1), now};

		rc = sg_db_exec(c,
				"UPDATE agents SET revoked = 1, state = 'revoked', updated_at = $2 "
				"WHERE id = $1",
				2, q);
		if (rc >= 0)
			rc = sg_db_exec(c, "DELETE FROM agent_sessions WHERE agent_id = $1", 1, q);
	}
	/* Its services' WireGuard clients go too (their resources go by cascade). */
	if (rc >= 0)
		rc = sg_db_exec(c,
				"DELETE FROM clients WHERE id IN (SELECT client_id FROM services "
				"WHERE gateway_id = $1)",
				1, p);
	if (rc >= 0)
		rc = sg_db_exec(c, "DELETE FROM gateways WHERE id = $1", 1, p);
	if (rc >= 0)
		rc = srv_audit(c, x->r, "gateway.deleted", "gateway", x->gw, sg_db_res_get(res, 0, 0),
			       "delete", NULL);
	sg_db_res_free(res);
	return srv_neg(rc);
}

void h_gateways_delete(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct wctx x = {.r = r};
	struct sg_db_conn *c = sg_db_acquire(s->db);
	int rc;

	snprintf(x.gw, sizeof(x.gw), "%s", r->params[0]);
	rc = srv_tx(s, c, gw_delete_tx, &x, false);
	reply(out, c, &x, rc);
	sg_db_release(c);
}

/* ---- sites --------------------------------------------------------------------------------- */

void h_sites_list(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	const char *p[2];

	srv_list_page(s, out, "sites", SITE_COLS, SITE_KINDS, "", "created_at, id", p, 0,
		      srv_limit(r), srv_offset(r));
}

void h_sites_get(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct sg_db_conn *c = sg_db_acquire(s->db);
	json_t *j = site_get(c, r->params[0]);

	if (j)
		srv_json(out, 200, j);
	else
		srv_error(out, 404, NULL, "no such site");
	sg_db_release(c);
}

/* Every gateway with a resource on site id, after a change of it: bumped and checked. */
static int recheck_site(struct srv *s, struct sg_db_conn *c, struct wctx *x, const char *id)
{
	struct sg_db_res *res = NULL;
	const char *p[] = {id};
	int n = sg_db_query(c, &res,
			    "SELECT DISTINCT gateway_id FROM resources WHERE site_id = $1 ORDER BY "
			    "gateway_id",
			    1, p);
	int rc = srv_neg(n);

	for (int i = 0; i < n && !rc; i++) {
		struct subject sj = {0};

		rc = bump(c, sg_db_res_get(res, i, 0));
		if (!rc)
			rc = recheck(s, c, x, sg_db_res_get(res, i, 0), &sj);
	}
	sg_db_res_free(res);
	return rc;
}

static int site_write_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct wctx *x = ctx;
	json_t *b = x->r->json;
	bool create = x->result_status == 201;
	char *key = jhas(b, "name") ? srv_text_fold(jstr(b, "name")) : NULL;
	char *nets = json_object_get(b, "networks") ? comma_list(json_object_get(b, "networks"), true)
						    : NULL;
	char now[24];
	int rc;

	srv_i64(now, srv_now());
	if ((jhas(b, "name") && !key) || (json_object_get(b, "networks") && !nets)) {
		rc = SG_ENOMEM;
		goto out;
	}
	if (json_object_get(b, "networks") && !json_array_size(json_object_get(b, "networks"))) {
		rc = refuse(x, 422, "networks",
			    "a site needs at least one network (its targets' tunnel addresses)");
		goto out;
	}
	if (create) {
		const char *p[] = {x->id, jstr(b, "name"), key,
				   jstr(b, "description") ? jstr(b, "description") : "", nets, now};

		rc = sg_db_exec(c,
				"INSERT INTO sites (id, name, name_key, description, networks, "
				"created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
				6, p);
	} else {
		char sql[384] = "UPDATE sites SET updated_at = $2";
		const char *p[6] = {x->id, now};
		int n = 2;

		if (key) {
			p[n++] = jstr(b, "name");
			p[n++] = key;
			snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql),
				 ", name = $%d, name_key = $%d", n - 1, n);
		}
		if (json_object_get(b, "description")) {
			p[n++] = jstr(b, "description");
			snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql),
				 ", description = $%d", n);
		}
		if (nets) {
			p[n++] = nets;
			snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), ", networks = $%d",
				 n);
		}
		snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), " WHERE id = $1");
		rc = sg_db_exec(c, sql, n, p);
		if (rc == 0)
			rc = refuse(x, 404, NULL, "no such site");
	}
	if (rc == SG_EEXIST)
		rc = refuse(x, 409, "name", "a site named \"%s\" exists", jstr(b, "name"));
	if (rc < 0)
		goto out;
	rc = recheck_site(s, c, x, x->id);
	if (rc)
		goto out;
	x->result = site_get(c, x->id);
	rc = x->result ? srv_audit(c, x->r, create ? "site.created" : "site.updated", "site", x->id,
				   jstr(x->result, "name"), create ? "create" : "update", x->result)
		       : SG_ENOMEM;
out:
	free(key);
	free(nets);
	return rc;
}

void h_sites_create(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct wctx x = {.r = r, .result_status = 201};
	struct sg_db_conn *c = sg_db_acquire(s->db);
	int rc;

	srv_uuid(x.id);
	rc = srv_tx(s, c, site_write_tx, &x, false);
	reply(out, c, &x, rc);
	sg_db_release(c);
}

void h_sites_update(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct wctx x = {.r = r, .result_status = 200};
	struct sg_db_conn *c = sg_db_acquire(s->db);
	int rc;

	snprintf(x.id, sizeof(x.id), "%s", r->params[0]);
	rc = srv_tx(s, c, site_write_tx, &x, false);
	reply(out, c, &x, rc);
	sg_db_release(c);
}

static int site_delete_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct wctx *x = ctx;
	struct sg_db_res *res = NULL;
	const char *p[] = {x->id};
	int rc;

	(void)s;
	if (exists(c, "SELECT 1 FROM resources WHERE site_id = $1", x->id))
		return refuse(x, 409, NULL, "resources use this site: change or delete them first");
	rc = sg_db_query(c, &res, "SELECT name FROM sites WHERE id = $1", 1, p);
	if (rc != 1) {
		sg_db_res_free(res);
		return rc < 0 ? rc : refuse(x, 404, NULL, "no such site");
	}
	rc = srv_neg(sg_db_exec(c, "DELETE FROM sites WHERE id = $1", 1, p));
	if (!rc)
		rc = srv_audit(c, x->r, "site.deleted", "site", x->id, sg_db_res_get(res, 0, 0),
			       "delete", NULL);
	sg_db_res_free(res);
	return rc;
}

void h_sites_delete(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct wctx x = {.r = r};
	struct sg_db_conn *c = sg_db_acquire(s->db);
	int rc;

	snprintf(x.id, sizeof(x.id), "%s", r->params[0]);
	rc = srv_tx(s, c, site_delete_tx, &x, false);
	reply(out, c, &x, rc);
	sg_db_release(c);
}

/* ---- resources ------------------------------------------------------------------------------ */

/* The writable fields of a resource and their columns: s text, i integer, j JSON, l comma
 * list, b boolean. */
static const struct {
	const char *name, *col;
	char kind;
} rfields[] = {
    {"site_id", "site_id", 's'},
    {"name", "name", 's'},
    {"protocol", "protocol", 's'},
    {"domain", "domain", 's'},
    {"aliases", "aliases", 'l'},
    {"port", "port", 'i'},
    {"auth", "auth", 's'},
    {"api_keys", "api_keys", 'l'},
    {"rate_limit", "rate_limit", 'j'},
    {"rules", "rules", 'j'},
    {"allow", "allow_cidrs", 'l'},
    {"deny", "deny_cidrs", 'l'},
    {"lb", "lb", 's'},
    {"sticky_cookie", "sticky_cookie", 's'},
    {"max_body", "max_body", 'i'},
    {"tls", "tls", 'j'},
    {"max_conns", "max_conns", 'i'},
    {"idle_timeout_ms", "idle_timeout_ms", 'i'},
    {"connect_timeout_ms", "connect_timeout_ms", 'i'},
    {"response_timeout_ms", "response_timeout_ms", 'i'},
    {"retries", "retries", 'i'},
    {"eject_ms", "eject_ms", 'i'},
    {"eject_after", "eject_after", 'i'},
    {"enabled", "enabled", 'b'},
};
#define NRFIELDS SG_ARRAY_LEN(rfields)

/* The stored text of field k of body b (malloc'd into *own when needed); NULL for SQL NULL.
 * Lists never are NULL (''). */
static const char *rvalue(json_t *b, size_t k, char buf[24], char **own)
{
	json_t *v = json_object_get(b, rfields[k].name);

	*own = NULL;
	switch (rfields[k].kind) {
	case 's':
		return json_string_value(v);
	case 'i':
		return json_is_integer(v) ? srv_i64(buf, json_integer_value(v)) : NULL;
	case 'b':
		return json_is_true(v) ? "1" : "0";
	case 'l':
		*own = comma_list(v, !strcmp(rfields[k].name, "aliases"));
		return *own ? *own : "";
	case 'j':
		if (json_is_null(v) || !v)
			return NULL;
		*own = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
		return *own;
	}
	return NULL;
}

/* What the checks of a resource read: its row as it would be after the change. */
struct rstate {
	char gw[SRV_ID_LEN + 1];
	char protocol[8], auth[16];
	char *domain;	       /* lower case */
	json_t *aliases;       /* strings, lower case */
	int64_t port;	       /* 0: none */
	bool has_oidc;
};

static void rstate_free(struct rstate *st)
{
	free(st->domain);
	json_decref(st->aliases);
}

/* Another resource of the same gateway with one of st's names or its port: 409. */
static int conflicts(struct sg_db_conn *c, struct wctx *x, const char *id, struct rstate *st)
{
	struct sg_db_res *res = NULL;
	const char *p[] = {st->gw, id};
	int n = sg_db_query(c, &res,
			    "SELECT name, protocol, domain, aliases, port FROM resources WHERE "
			    "gateway_id = $1 AND id <> $2",
			    2, p);
	int rc = srv_neg(n);

	for (int i = 0; i < n && !rc; i++) {
		json_t *theirs = list_json(sg_db_res_get(res, i, 3)), *e;
		const char *name = sg_db_res_get(res, i, 0);
		size_t k, a;

		if (sg_db_res_get(res, i, 2))
			json_array_insert_new(theirs, 0, json_string(sg_db_res_get(res, i, 2)));
		json_array_foreach(theirs, k, e)
		{
			if (rc)
				break;
			if (st->domain && !strcmp(st->domain, json_string_value(e)))
				rc = refuse(x, 409, "domain",
					    "%s is served by resource \"%s\" of this gateway",
					    st->domain, name);
			json_t *al;
			json_array_foreach(st->aliases, a, al)
			{
				if (!rc && !strcmp(json_string_value(al), json_string_value(e))) {
					rc = refuse(x, 409, "aliases",
						    "%s is served by resource \"%s\" of this "
						    "gateway",
						    json_string_value(al), name);
				}
			}
		}
		json_decref(theirs);
		if (!rc && st->port && strcmp(st->protocol, "http") &&
		    !strcmp(sg_db_res_get(res, i, 1), st->protocol) &&
		    sg_db_res_get(res, i, 4) && srv_res_i64(res, i, 4) == st->port)
			rc = refuse(x, 409, "port", "%s port %lld is used by resource \"%s\"",
				    st->protocol, (long long)st->port, name);
	}
	sg_db_res_free(res);
	return rc;
}

/* Semantic checks before the document's: references, names, what needs what. */
static int resource_precheck(struct srv *s, struct sg_db_conn *c, struct wctx *x, const char *id,
			     struct rstate *st, json_t *b)
{
	if (jhas(b, "site_id") &&
	    !exists(c, "SELECT 1 FROM sites WHERE id = $1", jstr(b, "site_id")))
		return refuse(x, 404, "site_id", "no such site");
	if (strcmp(st->protocol, "http") && (st->domain || json_array_size(st->aliases)))
		return refuse(x, 422, st->domain ? "domain" : "aliases",
			      "domains are for http resources; a %s resource has a port",
			      st->protocol);
	if (json_array_size(st->aliases) && !st->domain)
		return refuse(x, 422, "aliases", "aliases need a domain");
	if (!strcmp(st->auth, "login") && !st->has_oidc && !s->base_url[0])
		return refuse(x, 422, "auth",
			      "login through this server needs the server's --public-url (the "
			      "issuer gateways trust); or give oidc for another provider");
	return conflicts(c, x, id, st);
}

/* Seals oidc.client_secret into oidc_secret and stores oidc without it. keep: a stored
 * secret stays when the new oidc has none and names the same issuer and client. */
static int store_oidc(struct srv *s, struct sg_db_conn *c, const char *id, json_t *oidc)
{
	struct sg_db_res *res = NULL;
	const char *p[3] = {id, NULL, NULL};
	json_t *o = json_is_object(oidc) ? json_deep_copy(oidc) : NULL, *old = NULL;
	char *text = NULL, *sealed = NULL;
	int rc;

	if (o && jstr(o, "client_secret")) {
		sealed = srv_seal(s, jstr(o, "client_secret"), id, "oidc");
		json_object_del(o, "client_secret");
		if (!sealed) {
			json_decref(o);
			return SG_ENOMEM;
		}
	} else if (o) {
		rc = sg_db_query(c, &res, "SELECT oidc, oidc_secret FROM resources WHERE id = $1", 1,
				 p);
		if (rc == 1 && sg_db_res_get(res, 0, 1) &&
		    (old = parse_json(sg_db_res_get(res, 0, 0))) &&
		    jstr(old, "issuer") && jstr(o, "issuer") &&
		    !strcmp(jstr(old, "issuer"), jstr(o, "issuer")) && jstr(old, "client_id") &&
		    !strcmp(jstr(old, "client_id"), jstr(o, "client_id")))
			sealed = strdup(sg_db_res_get(res, 0, 1));
		json_decref(old);
		sg_db_res_free(res);
	}
	text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	p[1] = text;
	p[2] = sealed;
	rc = srv_neg(sg_db_exec(c, "UPDATE resources SET oidc = $2, oidc_secret = $3 WHERE id = $1",
				3, p));
	json_decref(o);
	free(text);
	free(sealed);
	return rc;
}

/* The state a resource would have: body fields over the stored row (update) or defaults. */
static int rstate_load(struct sg_db_conn *c, const char *id, json_t *b, struct rstate *st)
{
	struct sg_db_res *res = NULL;
	const char *p[] = {id};
	json_t *v;
	int rc = 0;

	st->aliases = NULL;
	st->domain = NULL;
	if (id) {
		rc = sg_db_query(c, &res,
				 "SELECT gateway_id, protocol, auth, domain, aliases, port, oidc FROM "
				 "resources WHERE id = $1",
				 1, p);
		if (rc != 1) {
			sg_db_res_free(res);
			return rc < 0 ? rc : SG_ENOENT;
		}
		snprintf(st->gw, sizeof(st->gw), "%s", sg_db_res_get(res, 0, 0));
		snprintf(st->protocol, sizeof(st->protocol), "%s", sg_db_res_get(res, 0, 1));
		snprintf(st->auth, sizeof(st->auth), "%s", sg_db_res_get(res, 0, 2));
		st->domain = sg_db_res_get(res, 0, 3) ? strdup(sg_db_res_get(res, 0, 3)) : NULL;
		st->aliases = list_json(sg_db_res_get(res, 0, 4));
		st->port = sg_db_res_get(res, 0, 5) ? srv_res_i64(res, 0, 5) : 0;
		st->has_oidc = sg_db_res_get(res, 0, 6) != NULL;
		sg_db_res_free(res);
	} else {
		snprintf(st->gw, sizeof(st->gw), "%s", jstr(b, "gateway_id"));
		snprintf(st->protocol, sizeof(st->protocol), "%s",
			 jhas(b, "port") && !jhas(b, "domain") ? "tcp" : "http");
		snprintf(st->auth, sizeof(st->auth), "public");
		st->aliases = json_array();
	}
	if (jstr(b, "protocol"))
		snprintf(st->protocol, sizeof(st->protocol), "%s", jstr(b, "protocol"));
	if (jstr(b, "auth"))
		snprintf(st->auth, sizeof(st->auth), "%s", jstr(b, "auth"));
	if (json_object_get(b, "domain")) {
		free(st->domain);
		st->domain = jstr(b, "domain") ? strdup(jstr(b, "domain")) : NULL;
	}
	if ((v = json_object_get(b, "aliases"))) {
		json_decref(st->aliases);
		st->aliases = json_is_array(v) ? json_deep_copy(v) : json_array();
	}
	if (json_object_get(b, "port"))
		st->port = jhas(b, "port") ? json_integer_value(json_object_get(b, "port")) : 0;
	if (json_object_get(b, "oidc"))
		st->has_oidc = jhas(b, "oidc");
	for (char *q = st->domain; q && *q; q++) {
		if (*q >= 'A' && *q <= 'Z')
			*q = (char)(*q + 32);
	}
	{
		size_t i;
		json_t *e;

		json_array_foreach(st->aliases, i, e)
		{
			char *l = strdup(json_string_value(e) ? json_string_value(e) : "");

			for (char *q = l; q && *q; q++) {
				if (*q >= 'A' && *q <= 'Z')
					*q = (char)(*q + 32);
			}
			if (l)
				json_string_set(e, l);
			free(l);
		}
	}
	return 0;
}

static int res_write_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct wctx *x = ctx;
	json_t *b = x->r->json;
	bool create = x->result_status == 201;
	struct rstate st = {0};
	struct subject sj = {.resource_id = x->id};
	char bufs[NRFIELDS][24], *own[NRFIELDS] = {0}, now[24], name[160];
	const char *vals[NRFIELDS];
	char sql[2048];
	int rc;

	srv_i64(now, srv_now());
	rc = rstate_load(c, create ? NULL : x->id, b, &st);
	if (rc == SG_ENOENT) {
		rc = refuse(x, 404, NULL, "no such resource");
		goto out;
	}
	if (rc)
		goto out;
	snprintf(x->gw, sizeof(x->gw), "%s", st.gw);
	rc = bump(c, st.gw);
	if (rc == SG_ENOENT)
		rc = refuse(x, 404, "gateway_id", "no such gateway");
	if (!rc)
		rc = resource_precheck(s, c, x, x->id, &st, b);
	if (rc)
		goto out;
	for (size_t k = 0; k < NRFIELDS; k++)
		vals[k] = rvalue(b, k, bufs[k], &own[k]);
	if (create) {
		const char *p[NRFIELDS + 4];
		int n = 0;

		/* Defaults the checks above assumed; a name from what it serves. */
		if (!jhas(b, "name")) {
			if (st.domain)
				snprintf(name, sizeof(name), "%s", st.domain);
			else
				snprintf(name, sizeof(name), "%s/%lld", st.protocol,
					 (long long)st.port);
		}
		snprintf(sql, sizeof(sql), "INSERT INTO resources (id, gateway_id, created_at, "
					   "updated_at");
		p[n++] = x->id;
		p[n++] = st.gw;
		p[n++] = now;
		for (size_t k = 0; k < NRFIELDS; k++)
			snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), ", %s", rfields[k].col);
		snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), ") VALUES ($1, $2, $3, $3");
		for (size_t k = 0; k < NRFIELDS; k++) {
			const char *v = vals[k];

			if (!strcmp(rfields[k].name, "name") && !v)
				v = name;
			else if (!strcmp(rfields[k].name, "protocol"))
				v = st.protocol;
			else if (!strcmp(rfields[k].name, "auth"))
				v = st.auth;
			else if (!strcmp(rfields[k].name, "domain"))
				v = st.domain;
			else if (!strcmp(rfields[k].name, "enabled") && !json_object_get(b, "enabled"))
				v = "1";
			p[n++] = v;
			snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), ", $%d", n);
		}
		snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), ")");
		rc = srv_neg(sg_db_exec(c, sql, n, p));
	} else {
		const char *p[NRFIELDS + 2];
		int n = 0;

		p[n++] = x->id;
		p[n++] = now;
		snprintf(sql, sizeof(sql), "UPDATE resources SET updated_at = $2");
		for (size_t k = 0; k < NRFIELDS; k++) {
			const char *v = vals[k];

			if (!json_object_get(b, rfields[k].name))
				continue;
			if (!strcmp(rfields[k].name, "domain"))
				v = st.domain;
			if (!v && (!strcmp(rfields[k].name, "name") ||
				   !strcmp(rfields[k].name, "protocol") ||
				   !strcmp(rfields[k].name, "auth"))) {
				rc = refuse(x, 400, rfields[k].name, "must not be null");
				goto out;
			}
			p[n++] = v;
			snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), ", %s = $%d",
				 rfields[k].col, n);
		}
		snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), " WHERE id = $1");
		rc = srv_neg(sg_db_exec(c, sql, n, p));
	}
	if (!rc && json_object_get(b, "oidc"))
		rc = store_oidc(s, c, x->id, json_object_get(b, "oidc"));
	if (!rc) {
		sj.has_domain = st.domain != NULL;
		rc = recheck(s, c, x, st.gw, &sj);
	}
	if (rc)
		goto out;
	x->result = resource_get(c, x->id);
	if (!x->result) {
		rc = SG_ENOMEM;
		goto out;
	}
	{
		json_t *d = json_deep_copy(x->result);

		json_object_del(d, "targets");
		rc = srv_audit(c, x->r, create ? "resource.created" : "resource.updated", "resource",
			       x->id, jstr(x->result, "name"), create ? "create" : "update", d);
		json_decref(d);
	}
out:
	for (size_t k = 0; k < NRFIELDS; k++) {
		free(own[k]);
	}
	rstate_free(&st);
	return rc;
}

void h_resources_create(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct wctx x = {.r = r, .result_status = 201};
	struct sg_db_conn *c = sg_db_acquire(s->db);
	int rc;

	srv_uuid(x.id);
	rc = srv_tx(s, c, res_write_tx, &x, false);
	reply(out, c, &x, rc);
	sg_db_release(c);
}

void h_resources_update(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct wctx x = {.r = r, .result_status = 200};
	struct sg_db_conn *c = sg_db_acquire(s->db);
	int rc;

	snprintf(x.id, sizeof(x.id), "%s", r->params[0]);
	rc = srv_tx(s, c, res_write_tx, &x, false);
	reply(out, c, &x, rc);
	sg_db_release(c);
}

void h_resources_get(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct sg_db_conn *c = sg_db_acquire(s->db);
	json_t *j = resource_get(c, r->params[0]);

	if (j)
		srv_json(out, 200, j);
	else
		srv_error(out, 404, NULL, "no such resource");
	sg_db_release(c);
}

void h_resources_list(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	const char *p[4];
	char where[128] = "";
	int n = 0;

	if (srv_query(r, "gateway_id")) {
		p[n++] = srv_query(r, "gateway_id");
		snprintf(where + strlen(where), sizeof(where) - strlen(where), " AND gateway_id = $%d",
			 n);
	}
	if (srv_query(r, "site_id")) {
		p[n++] = srv_query(r, "site_id");
		snprintf(where + strlen(where), sizeof(where) - strlen(where), " AND site_id = $%d",
			 n);
	}
	srv_list_page(s, out, "resources", RES_COLS, RES_KINDS, where, "created_at, id", p, n,
		      srv_limit(r), srv_offset(r));
}

static int res_delete_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct wctx *x = ctx;
	struct sg_db_res *res = NULL;
	const char *p[] = {x->id};
	int rc = sg_db_query(c, &res, "SELECT gateway_id, name FROM resources WHERE id = $1", 1, p);

	(void)s;
	if (rc != 1) {
		sg_db_res_free(res);
		return rc < 0 ? rc : refuse(x, 404, NULL, "no such resource");
	}
	rc = bump(c, sg_db_res_get(res, 0, 0));
	/* A service's resource: its WireGuard client goes with it (the service row by cascade). */
	if (!rc)
		rc = srv_neg(sg_db_exec(c,
					"DELETE FROM clients WHERE id IN (SELECT client_id FROM "
					"services WHERE resource_id = $1)",
					1, p));
	if (!rc)
		rc = srv_neg(sg_db_exec(c, "DELETE FROM resources WHERE id = $1", 1, p));
	if (!rc)
		rc = srv_audit(c, x->r, "resource.deleted", "resource", x->id,
			       sg_db_res_get(res, 0, 1), "delete", NULL);
	sg_db_res_free(res);
	return rc;
}

void h_resources_delete(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct wctx x = {.r = r};
	struct sg_db_conn *c = sg_db_acquire(s->db);
	int rc;

	snprintf(x.id, sizeof(x.id), "%s", r->params[0]);
	rc = srv_tx(s, c, res_delete_tx, &x, false);
	reply(out, c, &x, rc);
	sg_db_release(c);
}

/* ---- targets ------------------------------------------------------------------------------- */

void h_targets_list(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct sg_db_conn *c = sg_db_acquire(s->db);
	bool found = exists(c, "SELECT 1 FROM resources WHERE id = $1", r->params[0]);
	const char *p[3] = {r->params[0]};

	sg_db_release(c);
	if (!found) {
		srv_error(out, 404, NULL, "no such resource");
		return;
	}
	srv_list_page(s, out, "targets", TARGET_COLS, TARGET_KINDS, " AND resource_id = $1",
		      "created_at, id", p, 1, srv_limit(r), srv_offset(r));
}

void h_targets_get(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct sg_db_conn *c = sg_db_acquire(s->db);
	json_t *j = target_get(c, r->params[0]);

	if (j)
		srv_json(out, 200, j);
	else
		srv_error(out, 404, NULL, "no such target");
	sg_db_release(c);
}

/* x->id: the target; res: its resource (create) or NULL (update: looked up). */
static int target_write_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct wctx *x = ctx;
	json_t *b = x->r->json;
	bool create = x->result_status == 201;
	struct sg_db_res *res = NULL;
	char now[24], w[24], *hc = NULL, rid[SRV_ID_LEN + 1];
	struct subject sj = {.target_id = x->id};
	json_t *hcj = json_object_get(b, "health_check");
	int rc;

	srv_i64(now, srv_now());
	{
		const char *p[] = {create ? x->r->params[0] : x->id};

		rc = sg_db_query(c, &res,
				 create ? "SELECT gateway_id, id FROM resources WHERE id = $1"
					: "SELECT r.gateway_id, r.id FROM targets t JOIN resources r "
					  "ON r.id = t.resource_id WHERE t.id = $1",
				 1, p);
	}
	if (rc != 1) {
		sg_db_res_free(res);
		return rc < 0 ? rc : refuse(x, 404, NULL, create ? "no such resource" : "no such target");
	}
	snprintf(x->gw, sizeof(x->gw), "%s", sg_db_res_get(res, 0, 0));
	snprintf(rid, sizeof(rid), "%s", sg_db_res_get(res, 0, 1));
	sg_db_res_free(res);
	sj.resource_id = rid;
	rc = bump(c, x->gw);
	if (rc)
		return rc;
	if (hcj && !json_is_null(hcj) && !(hc = json_dumps(hcj, JSON_COMPACT | JSON_SORT_KEYS)))
		return SG_ENOMEM;
	if (create) {
		const char *p[] = {x->id,
				   rid,
				   jstr(b, "address"),
				   srv_i64(w, jhas(b, "weight")
						  ? json_integer_value(json_object_get(b, "weight"))
						  : 1),
				   jstr(b, "region"),
				   hc,
				   now};

		rc = srv_neg(sg_db_exec(c,
					"INSERT INTO targets (id, resource_id, address, weight, "
					"region, health_check, created_at, updated_at) VALUES ($1, "
					"$2, $3, $4, $5, $6, $7, $7)",
					7, p));
	} else {
		char sql[256] = "UPDATE targets SET updated_at = $2";
		const char *p[6] = {x->id, now};
		int n = 2;

		if (json_object_get(b, "address")) {
			p[n++] = jstr(b, "address");
			snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), ", address = $%d", n);
		}
		if (json_object_get(b, "weight")) {
			p[n++] = srv_i64(w, json_integer_value(json_object_get(b, "weight")));
			snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), ", weight = $%d", n);
		}
		if (json_object_get(b, "region")) {
			p[n++] = jstr(b, "region");
			snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), ", region = $%d", n);
		}
		if (hcj) {
			p[n++] = hc;
			snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql),
				 ", health_check = $%d", n);
		}
		snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), " WHERE id = $1");
		rc = srv_neg(sg_db_exec(c, sql, n, p));
	}
	free(hc);
	if (!rc)
		rc = recheck(s, c, x, x->gw, &sj);
	if (rc)
		return rc;
	x->result = target_get(c, x->id);
	return x->result ? srv_audit(c, x->r, create ? "target.created" : "target.updated",
				     "target", x->id, jstr(x->result, "address"),
				     create ? "create" : "update", x->result)
			 : SG_ENOMEM;
}

void h_targets_create(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct wctx x = {.r = r, .result_status = 201};
	struct sg_db_conn *c = sg_db_acquire(s->db);
	int rc;

	srv_uuid(x.id);
	rc = srv_tx(s, c, target_write_tx, &x, false);
	reply(out, c, &x, rc);
	sg_db_release(c);
}

void h_targets_update(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct wctx x = {.r = r, .result_status = 200};
	struct sg_db_conn *c = sg_db_acquire(s->db);
	int rc;

	snprintf(x.id, sizeof(x.id), "%s", r->params[0]);
	rc = srv_tx(s, c, target_write_tx, &x, false);
	reply(out, c, &x, rc);
	sg_db_release(c);
}

static int target_delete_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct wctx *x = ctx;
	struct sg_db_res *res = NULL;
	const char *p[] = {x->id};
	int rc = sg_db_query(c, &res,
			     "SELECT r.gateway_id, t.address FROM targets t JOIN resources r ON "
			     "r.id = t.resource_id WHERE t.id = $1",
			     1, p);

	(void)s;
	if (rc != 1) {
		sg_db_res_free(res);
		return rc < 0 ? rc : refuse(x, 404, NULL, "no such target");
	}
	rc = bump(c, sg_db_res_get(res, 0, 0));
	if (!rc)
		rc = srv_neg(sg_db_exec(c, "DELETE FROM targets WHERE id = $1", 1, p));
	if (!rc)
		rc = srv_audit(c, x->r, "target.deleted", "target", x->id, sg_db_res_get(res, 0, 1),
			       "delete", NULL);
	sg_db_res_free(res);
	return rc;
}

void h_targets_delete(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct wctx x = {.r = r};
	struct sg_db_conn *c = sg_db_acquire(s->db);
	int rc;

	snprintf(x.id, sizeof(x.id), "%s", r->params[0]);
	rc = srv_tx(s, c, target_delete_tx, &x, false);
	reply(out, c, &x, rc);
	sg_db_release(c);
}

/* ---- the gateways' events (their audit trail) ------------------------------------------------ */

/* What the gateway decided, in the audit chain: every denied access and every authentication
 * decision (logins, refused credentials), aggregated by the gateway over a few seconds (count,
 * first, last). The audit row's source is the client the gateway saw; the actor is the gateway's
 * credential; details carry the rest and the gateway's own address. */
struct events_ctx {
	struct srv_req *r;
	char gw[SRV_ID_LEN + 1];
	int status;
	int recorded;
};

static const char *event_action(const char *type)
{
	if (!strcmp(type, "login"))
		return "success";
	if (!strcmp(type, "login_failed") || !strcmp(type, "credential_refused"))
		return "failure";
	return "deny";
}

static int events_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct events_ctx *x = ctx;
	json_t *evs = json_object_get(x->r->json, "events"), *e;
	struct srv_req copy = *x->r;
	size_t i;
	int rc = 0;

	(void)s;
	x->recorded = 0;
	json_array_foreach(evs, i, e)
	{
		char event[64], name[160] = "";
		const char *rid = jstr(e, "resource_id");
		json_t *d = json_deep_copy(e);

		if (rid) {
			struct sg_db_res *res = NULL;
			const char *p[] = {rid, x->gw};

			if (sg_db_query(c, &res,
					"SELECT name FROM resources WHERE id = $1 AND gateway_id = $2", 2,
					p) == 1)
				snprintf(name, sizeof(name), "%s", sg_db_res_get(res, 0, 0));
			sg_db_res_free(res);
		}
		snprintf(event, sizeof(event), "gateway.%s", jstr(e, "type"));
		snprintf(copy.source_ip, sizeof(copy.source_ip), "%s", jstr(e, "client_ip"));
		copy.user_agent[0] = 0;
		json_object_del(d, "type");
		json_object_del(d, "resource_id");
		json_object_del(d, "client_ip");
		json_object_set_new(d, "gateway_id", json_string(x->gw));
		json_object_set_new(d, "gateway_address", json_string(x->r->source_ip));
		rc = srv_audit(c, &copy, event, "resource", rid, name[0] ? name : NULL,
			       event_action(jstr(e, "type")), d);
		json_decref(d);
		if (rc)
			return rc;
		x->recorded++;
	}
	if (json_integer_value(json_object_get(x->r->json, "dropped")) > 0) {
		json_t *d = json_pack("{s:I,s:s}", "dropped",
				      json_integer_value(json_object_get(x->r->json, "dropped")),
				      "gateway_id", x->gw);

		rc = srv_audit(c, x->r, "gateway.events_dropped", "gateway", x->gw, NULL, "report",
			       d);
		json_decref(d);
	}
	return rc;
}

void h_gateways_events(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct events_ctx x = {.r = r};
	struct sg_db_conn *c = sg_db_acquire(s->db);
	struct sg_db_res *res = NULL;
	const char *p[] = {r->params[0]};
	int rc = sg_db_query(c, &res, "SELECT agent_id FROM gateways WHERE id = $1", 1, p);

	/* Only the gateway's own credential reports for it. */
	if (rc != 1 || !sg_db_res_get(res, 0, 0) || strcmp(sg_db_res_get(res, 0, 0), r->who.id)) {
		if (rc < 0)
			srv_dberr(out, c, rc);
		else
			srv_error(out, 403, NULL, "a gateway reports only its own events");
		goto out;
	}
	snprintf(x.gw, sizeof(x.gw), "%s", r->params[0]);
	rc = srv_tx(s, c, events_tx, &x, false);
	if (rc)
		srv_dberr(out, c, rc);
	else
		srv_json(out, 200, json_pack("{s:s,s:i}", "status", "recorded", "events", x.recorded));
out:
	sg_db_res_free(res);
	sg_db_release(c);
}

/* ---- services (`secureguard expose`, docs/GATEWAY.md "Exposed services") ---------------------
 *
 * A service is three ordinary rows made together: a WireGuard client in the gateway's expose
 * network (whose hub runs on the gateway's host, so the client becomes the hub's peer through
 * the usual push), a resource of the gateway (SUBDOMAIN.DOMAIN for http, a public port from
 * expose.ports for tcp/udp) and its one target, the client's tunnel address and the port it
 * listens on inside the tunnel. The gateway proxies to it like to any other target; nothing of
 * its data path knows services. The services row keeps what the exposing client was told. */

#define SVC_SUB_RANDOM 10 /* base32 characters of a random subdomain (50 bits) */

#define SVC_COLS                                                                                   \
	"sv.id, sv.name, sv.gateway_id, sv.resource_id, sv.target_id, sv.client_id, "            \
	"sv.protocol, sv.local_address, sv.subdomain, sv.port, sv.public_url, sv.public_port, "  \
	"sv.auth, sv.created_at, sv.dns_name, sv.dns_type, sv.dns_value, sv.tunnel_address, "    \
	"sv.tunnel_address6, sv.listen, sv.crypto_mode, sv.config_serial, a.report"
#define SVC_FROM                                                                                   \
	"services sv JOIN gateways g ON g.id = sv.gateway_id LEFT JOIN agents a ON a.id = "      \
	"g.agent_id"
enum {
	SV_ID, SV_NAME, SV_GW, SV_RES, SV_TARGET, SV_CLIENT, SV_PROTO, SV_LOCAL, SV_SUB, SV_PORT,
	SV_URL, SV_PPORT, SV_AUTH, SV_CREATED, SV_DNS_NAME, SV_DNS_TYPE, SV_DNS_VALUE, SV_ADDR,
	SV_ADDR6, SV_LISTEN, SV_CRYPTO, SV_SERIAL, SV_REPORT
};

static json_t *str_or_null(const char *v)
{
	return v ? json_string(v) : json_null();
}

/* One service as the API shows it (no secrets): row i of a SELECT SVC_COLS FROM SVC_FROM. */
static json_t *service_json(struct sg_db_res *res, int i)
{
	const char *pport = sg_db_res_get(res, i, SV_PPORT);
	json_t *rep = parse_json(sg_db_res_get(res, i, SV_REPORT)), *g, *j;
	json_int_t running = -1;
	char text[600];

	g = json_is_object(rep) ? json_object_get(rep, "gateway") : NULL;
	if (json_is_integer(json_object_get(g, "serial")))
		running = json_integer_value(json_object_get(g, "serial"));
	json_decref(rep);
	snprintf(text, sizeof(text), "%s. 300 IN %s %s%s", sg_db_res_get(res, i, SV_DNS_NAME),
		 sg_db_res_get(res, i, SV_DNS_TYPE), sg_db_res_get(res, i, SV_DNS_VALUE),
		 !strcmp(sg_db_res_get(res, i, SV_DNS_TYPE), "CNAME") ? "." : "");
	j = json_pack(
	    "{s:s,s:s,s:s,s:s,s:s,s:o,s:s,s:s,s:s,s:I,s:s,s:o,s:{s:s,s:s,s:s,s:s},s:s,s:s,s:I,"
	    "s:{s:o,s:o,s:s,s:s}}",
	    "id", sg_db_res_get(res, i, SV_ID), "name", sg_db_res_get(res, i, SV_NAME),
	    "gateway_id", sg_db_res_get(res, i, SV_GW), "resource_id",
	    sg_db_res_get(res, i, SV_RES), "target_id", sg_db_res_get(res, i, SV_TARGET),
	    "client_id", str_or_null(sg_db_res_get(res, i, SV_CLIENT)), "protocol",
	    sg_db_res_get(res, i, SV_PROTO), "local_address", sg_db_res_get(res, i, SV_LOCAL),
	    "subdomain", sg_db_res_get(res, i, SV_SUB), "port",
	    (json_int_t)srv_res_i64(res, i, SV_PORT), "public_url", sg_db_res_get(res, i, SV_URL),
	    "public_port", pport ? json_integer(srv_res_i64(res, i, SV_PPORT)) : json_null(),
	    "dns_record", "name", sg_db_res_get(res, i, SV_DNS_NAME), "type",
	    sg_db_res_get(res, i, SV_DNS_TYPE), "value", sg_db_res_get(res, i, SV_DNS_VALUE),
	    "text", text, "auth", sg_db_res_get(res, i, SV_AUTH), "status",
	    running >= srv_res_i64(res, i, SV_SERIAL) ? "active" : "pending", "created_at",
	    (json_int_t)srv_res_i64(res, i, SV_CREATED), "tunnel", "address",
	    str_or_null(sg_db_res_get(res, i, SV_ADDR)), "address6",
	    str_or_null(sg_db_res_get(res, i, SV_ADDR6)), "listen",
	    sg_db_res_get(res, i, SV_LISTEN), "crypto_mode", sg_db_res_get(res, i, SV_CRYPTO));
	return j;
}

static json_t *service_get(struct sg_db_conn *c, const char *id)
{
	struct sg_db_res *res = NULL;
	const char *p[] = {id};
	json_t *j = NULL;

	if (sg_db_query(c, &res, "SELECT " SVC_COLS " FROM " SVC_FROM " WHERE sv.id = $1", 1, p) ==
	    1)
		j = service_json(res, 0);
	sg_db_res_free(res);
	return j;
}

void h_services_get(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct sg_db_conn *c = sg_db_acquire(s->db);
	json_t *j = service_get(c, r->params[0]);

	if (j)
		srv_json(out, 200, j);
	else
		srv_error(out, 404, NULL, "no such service");
	sg_db_release(c);
}

void h_services_list(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct sg_db_conn *c = sg_db_acquire(s->db);
	struct sg_db_res *res = NULL;
	const char *gw = srv_query(r, "gateway_id");
	char lim[24], off[24], sql[1024];
	const char *p[3];
	json_t *items = json_array();
	int64_t total = 0;
	int n = 0, rc;

	if (gw)
		p[n++] = gw;
	rc = sg_db_query(c, &res,
			 gw ? "SELECT COUNT(*) FROM services WHERE gateway_id = $1"
			    : "SELECT COUNT(*) FROM services",
			 n, p);
	if (rc == 1)
		total = srv_res_i64(res, 0, 0);
	sg_db_res_free(res);
	res = NULL;
	p[n++] = srv_i64(lim, srv_limit(r));
	p[n++] = srv_i64(off, srv_offset(r));
	snprintf(sql, sizeof(sql),
		 "SELECT " SVC_COLS " FROM " SVC_FROM "%s ORDER BY sv.created_at, sv.id LIMIT $%d "
		 "OFFSET $%d",
		 gw ? " WHERE sv.gateway_id = $1" : "", n - 1, n);
	if (rc >= 0)
		rc = sg_db_query(c, &res, sql, n, p);
	for (int i = 0; i < rc; i++)
		json_array_append_new(items, service_json(res, i));
	sg_db_res_free(res);
	if (rc < 0) {
		json_decref(items);
		srv_dberr(out, c, rc);
	} else {
		srv_json(out, 200,
			 json_pack("{s:o,s:I,s:I,s:I}", "items", items, "total", (json_int_t)total,
				   "limit", (json_int_t)srv_limit(r), "offset",
				   (json_int_t)srv_offset(r)));
	}
	sg_db_release(c);
}

/* A subdomain: one DNS label, lower case (RFC 1123 section 2.1: letters, digits, hyphens
 * inside). */
static bool dns_label(const char *v)
{
	size_t n = strlen(v);

	if (!n || n > 63 || v[0] == '-' || v[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= '0' && v[i] <= '9') || v[i] == '-'))
			return false;
	}
	return true;
}

/* The port of "host:port", "[v6]:port" or ":port" as typed; 0 when it has none. */
static int64_t port_of(const char *local)
{
	const char *colon = strrchr(local, ':');
	int64_t v = 0;

	if (!colon || !colon[1] || (strchr(local, ':') != colon && local[0] != '['))
		return 0;
	for (const char *q = colon + 1; *q; q++) {
		if (*q < '0' || *q > '9' || (v = v * 10 + (*q - '0')) > 65535)
			return 0;
	}
	return v;
}

/* What a new service is given. */
struct svc_new {
	char sub[64], domain[256], url[300], dns_type[8], listen[80];
	char client_id[SRV_ID_LEN + 1], res_id[SRV_ID_LEN + 1], target_id[SRV_ID_LEN + 1];
	char ip4[64], ip6[64], crypto[8];
	int64_t port, public_port;
	json_t *expose;
	const char *public_address;
};

/* The gateway a service goes to (x->gw), its expose settings and address (kept in *g). */
static int svc_gateway(struct sg_db_conn *c, struct wctx *x, json_t *b, struct sg_db_res **g,
		       struct svc_new *sn)
{
	const char *p[] = {jstr(b, "gateway_id")};
	int rc;

	if (p[0]) {
		rc = sg_db_query(c, g, "SELECT id, expose, public_address FROM gateways WHERE id = $1",
				 1, p);
		if (rc == 0)
			return refuse(x, 404, "gateway_id", "no such gateway");
	} else {
		rc = sg_db_query(c, g,
				 "SELECT id, expose, public_address FROM gateways WHERE expose IS "
				 "NOT NULL ORDER BY created_at, id LIMIT 2",
				 0, NULL);
		if (rc == 0)
			return refuse(x, 409, "gateway_id",
				      "no gateway takes services: set a gateway's expose settings "
				      "(PUT /api/v1/gateways/{id}/config)");
		if (rc > 1)
			return refuse(x, 409, "gateway_id",
				      "several gateways take services: name one (gateway_id)");
	}
	if (rc < 0)
		return rc;
	snprintf(x->gw, sizeof(x->gw), "%s", sg_db_res_get(*g, 0, 0));
	sn->expose = parse_json(sg_db_res_get(*g, 0, 1));
	sn->public_address = sg_db_res_get(*g, 0, 2);
	if (!json_is_object(sn->expose))
		return refuse(x, 409, "gateway_id",
			      "this gateway takes no services (its expose settings are not set)");
	if (!sn->public_address)
		return refuse(x, 409, "gateway_id",
			      "the gateway has no public_address for its services' DNS records");
	return 0;
}

/* The subdomain (given, else random) and the name it makes; 409 when the gateway serves it. */
static int svc_name(struct sg_db_conn *c, struct wctx *x, json_t *b, struct svc_new *sn)
{
	const char *base = jstr(sn->expose, "domain");
	const char *p[3];
	struct sg_db_res *res = NULL;
	int rc;

	if (jstr(b, "subdomain")) {
		snprintf(sn->sub, sizeof(sn->sub), "%s", jstr(b, "subdomain"));
		if (!dns_label(sn->sub))
			return refuse(x, 400, "subdomain",
				      "must be one DNS label in lower case: a-z, 0-9 and '-' inside, "
				      "at most 63 characters");
	} else {
		static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
		uint8_t rnd[SVC_SUB_RANDOM];

		if (!sg_random_bytes(rnd, sizeof(rnd)))
			return SG_EIO;
		sn->sub[0] = 's';
		for (int i = 0; i < SVC_SUB_RANDOM; i++)
			sn->sub[1 + i] = b32[rnd[i] & 31];
		sn->sub[1 + SVC_SUB_RANDOM] = 0;
	}
	/* A DNS name has at most 253 characters (sn->domain holds 255: the check is the bound). */
	int n = snprintf(sn->domain, sizeof(sn->domain), "%s.%s", sn->sub, base);
	if (n < 0 || n > 253)
		return refuse(x, 422, "subdomain", "%s.%s is longer than a DNS name may be", sn->sub,
			      base);
	p[0] = x->gw;
	p[1] = sn->sub;
	p[2] = sn->domain;
	rc = sg_db_query(c, &res,
			 "SELECT 1 FROM services WHERE gateway_id = $1 AND subdomain = $2 UNION ALL "
			 "SELECT 1 FROM resources WHERE gateway_id = $1 AND (domain = $3 OR "
			 "',' || aliases || ',' LIKE '%,' || CAST($3 AS TEXT) || ',%')",
			 3, p);
	sg_db_res_free(res);
	if (rc < 0)
		return rc;
	if (rc > 0)
		return refuse(x, 409, "subdomain", "%s is served by this gateway already", sn->domain);
	return 0;
}

/* tcp/udp: the lowest port of expose.ports no resource of the protocol has. */
static int svc_public_port(struct sg_db_conn *c, struct wctx *x, const char *proto,
			   struct svc_new *sn)
{
	json_t *ports = json_object_get(sn->expose, "ports");
	int64_t first, last;
	struct sg_db_res *res = NULL;
	const char *p[] = {x->gw, proto};
	uint8_t *used;
	int rc;

	if (json_array_size(ports) != 2)
		return refuse(x, 409, "protocol",
			      "the gateway takes no %s services (its expose settings have no ports)",
			      proto);
	first = json_integer_value(json_array_get(ports, 0));
	last = json_integer_value(json_array_get(ports, 1));
	rc = sg_db_query(c, &res,
			 "SELECT port FROM resources WHERE gateway_id = $1 AND protocol = $2 AND "
			 "port IS NOT NULL",
			 2, p);
	if (rc < 0)
		return rc;
	used = calloc((size_t)(last - first + 1), 1);
	if (!used) {
		sg_db_res_free(res);
		return SG_ENOMEM;
	}
	for (int i = 0; i < rc; i++) {
		int64_t v = srv_res_i64(res, i, 0);

		if (v >= first && v <= last)
			used[v - first] = 1;
	}
	sg_db_res_free(res);
	sn->public_port = 0;
	for (int64_t v = first; v <= last && !sn->public_port; v++) {
		if (!used[v - first])
			sn->public_port = v;
	}
	free(used);
	if (!sn->public_port)
		return refuse(x, 409, "protocol", "no free %s port in [%lld, %lld]", proto,
			      (long long)first, (long long)last);
	return 0;
}

/* The service's WireGuard client in the expose network, with its addresses. */
static int svc_client(struct srv *s, struct sg_db_conn *c, struct wctx *x, json_t *b,
		      const char *name, struct svc_new *sn)
{
	const char *net = jstr(sn->expose, "network_id");
	const char *p[] = {net};
	struct sg_db_res *res = NULL;
	char why[256] = "", desc[320];
	struct client_new cn = {.network_id = net,
				.name = name,
				.description = desc,
				.pub_classic = jstr(b, "public_key"),
				.pub_fips = jstr(b, "public_key_fips"),
				.keepalive = 25,
				.enabled = true};
	int rc;

	if (!exists(c,
		    "SELECT 1 FROM clients WHERE network_id = $1 AND is_relay = 1 AND enabled = 1 "
		    "AND endpoint IS NOT NULL",
		    net))
		return refuse(x, 409, "gateway_id",
			      "the gateway's expose network has no enabled hub with an endpoint "
			      "(the gateway host's WireGuard peer)");
	snprintf(desc, sizeof(desc), "exposed service %s (%s)", sn->domain,
		 jstr(b, "local_address"));
	rc = srv_client_insert(s, c, &cn, sn->client_id, why, sizeof(why));
	if (rc == SG_EEXIST || (rc < 0 && !why[0]))
		return rc; /* an address race: the transaction is run again */
	if (rc == SRV_LICENSE)
		return refuse(x, 402, NULL, "%s", why);
	if (rc) {
		char field[64] = "";
		const char *bar = strchr(why, '|'), *msg = why;

		if (bar && (size_t)(bar - why) < sizeof(field)) {
			memcpy(field, why, (size_t)(bar - why));
			field[bar - why] = 0;
			msg = bar + 1;
		}
		/* x->field outlives this frame: one of the request's own names. */
		return refuse(x, rc == SG_EINVAL ? 400 : 409,
			      !strcmp(field, "public_key")	? "public_key"
			      : !strcmp(field, "public_key_fips") ? "public_key_fips"
			      : !strcmp(field, "network_id")	? "gateway_id"
								: NULL,
			      "%s", msg);
	}
	p[0] = sn->client_id;
	rc = sg_db_query(c, &res,
			 "SELECT c.assigned_ip4, c.assigned_ip6, n.fips_required FROM clients c "
			 "JOIN networks n ON n.id = c.network_id WHERE c.id = $1",
			 1, p);
	if (rc == 1) {
		snprintf(sn->ip4, sizeof(sn->ip4), "%s",
			 sg_db_res_get(res, 0, 0) ? sg_db_res_get(res, 0, 0) : "");
		snprintf(sn->ip6, sizeof(sn->ip6), "%s",
			 sg_db_res_get(res, 0, 1) ? sg_db_res_get(res, 0, 1) : "");
		snprintf(sn->crypto, sizeof(sn->crypto), "%s",
			 srv_res_i64(res, 0, 2) ? "fips" : "classic");
	}
	sg_db_res_free(res);
	if (rc != 1)
		return rc < 0 ? rc : SG_EIO;
	if (sn->ip4[0])
		snprintf(sn->listen, sizeof(sn->listen), "%s:%lld", sn->ip4, (long long)sn->port);
	else
		snprintf(sn->listen, sizeof(sn->listen), "[%s]:%lld", sn->ip6, (long long)sn->port);
	return 0;
}

/* What the DNS record and the public URL say. */
static void svc_public(const char *proto, struct svc_new *sn)
{
	int fam = 0;
	uint8_t a[16];
	const char *scheme = jstr(sn->expose, "scheme") ? jstr(sn->expose, "scheme") : "https";
	json_t *hp = json_object_get(sn->expose, "http_port");

	if (srv_addr_parse(&fam, a, sn->public_address))
		fam = 0;
	snprintf(sn->dns_type, sizeof(sn->dns_type), "%s",
		 fam == 4 ? "A" : fam == 6 ? "AAAA" : "CNAME");
	if (!strcmp(proto, "http")) {
		if (json_is_integer(hp) && json_integer_value(hp) != (strcmp(scheme, "https") ? 80 : 443))
			snprintf(sn->url, sizeof(sn->url), "%s://%s:%lld", scheme, sn->domain,
				 (long long)json_integer_value(hp));
		else
			snprintf(sn->url, sizeof(sn->url), "%s://%s", scheme, sn->domain);
	} else {
		snprintf(sn->url, sizeof(sn->url), "%s://%s:%lld", proto, sn->domain,
			 (long long)sn->public_port);
	}
}

static int svc_create_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct wctx *x = ctx;
	json_t *b = x->r->json;
	const char *proto = jstr(b, "protocol");
	const char *auth = jstr(b, "auth") ? jstr(b, "auth") : "public";
	struct svc_new sn = {0};
	struct sg_db_res *g = NULL, *res = NULL;
	struct subject sj = {0};
	char name[80], now[24], port[24], pport[24], serial[24], hash[97], addr[80], *conf = NULL;
	int status = 0, rc;

	json_decref(x->result);
	x->result = NULL;
	sg_memzero(x->token, sizeof(x->token));
	x->status = 0;
	srv_uuid(x->id);
	srv_uuid(sn.res_id);
	srv_uuid(sn.target_id);
	srv_i64(now, srv_now());
	rc = svc_gateway(c, x, b, &g, &sn);
	if (!rc)
		rc = bump(c, x->gw);
	if (rc)
		goto out;
	if (strcmp(proto, "http") && strcmp(auth, "public")) {
		rc = refuse(x, 422, "auth", "a %s service is public (auth is for http services)",
			    proto);
		goto out;
	}
	if (!strcmp(auth, "login") && !s->base_url[0]) {
		rc = refuse(x, 422, "auth",
			    "login through this server needs the server's --public-url");
		goto out;
	}
	sn.port = jhas(b, "port") ? json_integer_value(json_object_get(b, "port"))
				  : port_of(jstr(b, "local_address"));
	if (!sn.port) {
		rc = refuse(x, 400, "port", "local_address has no port: give port");
		goto out;
	}
	rc = svc_name(c, x, b, &sn);
	if (!rc && strcmp(proto, "http"))
		rc = svc_public_port(c, x, proto, &sn);
	if (rc)
		goto out;
	if (jstr(b, "name"))
		snprintf(name, sizeof(name), "%s", jstr(b, "name"));
	else
		snprintf(name, sizeof(name), "expose-%s", sn.sub);
	rc = svc_client(s, c, x, b, name, &sn);
	if (rc)
		goto out;
	svc_public(proto, &sn);
	if (!strcmp(auth, "api_key")) {
		srv_new_token(x->token, "sgs_");
		srv_token_hash(hash, x->token);
	}
	{
		const char *p[] = {sn.res_id,
				   x->gw,
				   name,
				   proto,
				   strcmp(proto, "http") ? NULL : sn.domain,
				   strcmp(proto, "http") ? srv_i64(pport, sn.public_port) : NULL,
				   auth,
				   x->token[0] ? hash : "",
				   now};

		rc = srv_neg(sg_db_exec(c,
					"INSERT INTO resources (id, gateway_id, name, protocol, domain, "
					"port, auth, api_keys, enabled, created_at, updated_at) VALUES "
					"($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $9)",
					9, p));
	}
	if (rc)
		goto out;
	{
		/* A connect check, so a client that is not listening yet (or gone) gets no
		 * requests; udp: passive health only. */
		const char *hc = strcmp(proto, "udp") ? "{\"interval_ms\":2000,\"type\":\"tcp\"}" : NULL;
		const char *p[] = {sn.target_id, sn.res_id, sn.listen, hc, now};

		rc = srv_neg(sg_db_exec(c,
					"INSERT INTO targets (id, resource_id, address, weight, "
					"health_check, created_at, updated_at) VALUES ($1, $2, $3, 1, "
					"$4, $5, $5)",
					5, p));
	}
	if (rc)
		goto out;
	{
		const char *q[] = {x->gw};

		rc = sg_db_query(c, &res, "SELECT config_serial FROM gateways WHERE id = $1", 1, q);
		if (rc != 1) {
			rc = rc < 0 ? rc : SG_EIO;
			goto out;
		}
		srv_i64(serial, srv_res_i64(res, 0, 0));
		sg_db_res_free(res);
		res = NULL;
	}
	{
		const char *p[] = {x->id,
				   name,
				   x->gw,
				   sn.res_id,
				   sn.target_id,
				   sn.client_id,
				   proto,
				   jstr(b, "local_address"),
				   sn.sub,
				   srv_i64(port, sn.port),
				   strcmp(proto, "http") ? pport : NULL,
				   sn.url,
				   sn.domain,
				   sn.dns_type,
				   sn.public_address,
				   auth,
				   sn.ip4[0] ? sn.ip4 : NULL,
				   sn.ip6[0] ? sn.ip6 : NULL,
				   sn.listen,
				   sn.crypto,
				   serial,
				   x->r->who.user_id[0] ? x->r->who.user_id : NULL,
				   now};

		rc = sg_db_exec(c,
				"INSERT INTO services (id, name, gateway_id, resource_id, target_id, "
				"client_id, protocol, local_address, subdomain, port, public_port, "
				"public_url, dns_name, dns_type, dns_value, auth, tunnel_address, "
				"tunnel_address6, listen, crypto_mode, config_serial, created_by, "
				"created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "
				"$12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)",
				23, p);
		if (rc == SG_EEXIST) /* the same subdomain at the same moment */
			rc = refuse(x, 409, "subdomain", "%s is served by this gateway already",
				    sn.domain);
		rc = srv_neg(rc);
	}
	if (rc)
		goto out;
	sj.resource_id = sn.res_id;
	sj.has_domain = !strcmp(proto, "http");
	rc = recheck(s, c, x, x->gw, &sj);
	if (rc)
		goto out;
	conf = srv_render_config(s, c, sn.client_id, &status, addr, sizeof(addr));
	x->result = service_get(c, x->id);
	if (!conf || !x->result) {
		rc = SG_EIO;
		goto out;
	}
	{
		json_t *d = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "gateway_id", x->gw, "protocol",
				      proto, "subdomain", sn.sub, "public_url", sn.url, "client_id",
				      sn.client_id, "resource_id", sn.res_id);

		rc = srv_audit(c, x->r, "service.created", "service", x->id, name, "create", d);
		json_decref(d);
	}
	if (rc)
		goto out;
	json_object_set_new(json_object_get(x->result, "tunnel"), "config", json_string(conf));
	if (x->token[0])
		json_object_set_new(x->result, "api_key", json_string(x->token));
out:
	if (conf) {
		sg_memzero(conf, strlen(conf));
		free(conf);
	}
	json_decref(sn.expose);
	sg_db_res_free(g);
	sg_db_res_free(res);
	return rc;
}

void h_services_create(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct wctx x = {.r = r, .result_status = 201};
	struct sg_db_conn *c = sg_db_acquire(s->db);
	int rc;

	/* retry: a client address another creation took at the same moment */
	rc = srv_tx(s, c, svc_create_tx, &x, true);
	reply(out, c, &x, rc);
	sg_db_release(c);
}

static int svc_delete_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct wctx *x = ctx;
	struct sg_db_res *res = NULL;
	const char *p[] = {x->id};
	int rc = sg_db_query(c, &res,
			     "SELECT gateway_id, resource_id, client_id, name, public_url FROM "
			     "services WHERE id = $1",
			     1, p);

	(void)s;
	if (rc != 1) {
		sg_db_res_free(res);
		return rc < 0 ? rc : refuse(x, 404, NULL, "no such service");
	}
	rc = bump(c, sg_db_res_get(res, 0, 0));
	if (!rc) {
		const char *q[] = {sg_db_res_get(res, 0, 1)};

		rc = srv_neg(sg_db_exec(c, "DELETE FROM resources WHERE id = $1", 1, q));
	}
	if (!rc && sg_db_res_get(res, 0, 2)) {
		const char *q[] = {sg_db_res_get(res, 0, 2)};

		rc = srv_neg(sg_db_exec(c, "DELETE FROM clients WHERE id = $1", 1, q));
	}
	if (!rc)
		rc = srv_neg(sg_db_exec(c, "DELETE FROM services WHERE id = $1", 1, p));
	if (!rc) {
		json_t *d = json_pack("{s:s,s:s}", "gateway_id", sg_db_res_get(res, 0, 0),
				      "public_url", sg_db_res_get(res, 0, 4));

		rc = srv_audit(c, x->r, "service.deleted", "service", x->id,
			       sg_db_res_get(res, 0, 3), "delete", d);
		json_decref(d);
	}
	sg_db_res_free(res);
	return rc;
}

void h_services_delete(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct wctx x = {.r = r};
	struct sg_db_conn *c = sg_db_acquire(s->db);
	int rc;

	snprintf(x.id, sizeof(x.id), "%s", r->params[0]);
	rc = srv_tx(s, c, svc_delete_tx, &x, false);
	reply(out, c, &x, rc);
	sg_db_release(c);
}
