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
#define GW_KINDS  "ssssjissbiii"

/* The columns of a gateway; online is computed against the agents' poll interval. */
static void gw_cols(struct srv *s, char *buf, size_t len)
{
	snprintf(buf, len,
		 "g.id, g.name, g.region, g.public_address, g.limits, g.config_serial, g.agent_id, "
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

static int gw_create_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct wctx *x = ctx;
	json_t *b = x->r->json;
	const char *name = jstr(b, "name");
	char *key = srv_text_fold(name), *limits = limits_text(b), now[24];
	const char *p[] = {x->gw,
			   name,
			   key,
			   jstr(b, "region"),
			   jstr(b, "public_address"),
			   limits,
			   x->r->who.user_id[0] ? x->r->who.user_id : NULL,
			   srv_i64(now, srv_now())};
	struct subject sj = {0};
	int64_t expires;
	int rc;

	if (!key || !limits) {
		rc = SG_ENOMEM;
		goto out;
	}
	rc = sg_db_exec(c,
			"INSERT INTO gateways (id, name, name_key, region, public_address, limits, "
			"created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
			"$8)",
			8, p);
	if (rc == SG_EEXIST) {
		rc = refuse(x, 409, "name", "a gateway named \"%s\" exists", name);
		goto out;
	}
	if (rc < 0)
		goto out;
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
#undef SET
	snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), " WHERE id = $1");
	rc = sg_db_exec(c, sql, n, p);
	if (rc == SG_EEXIST)
		rc = refuse(x, 409, "name", "a gateway with this name exists");
	if (rc >= 0)
		rc = recheck(s, c, x, x->gw, &sj);
	if (!rc) {
		x->result = gateway_get(s, c, x->gw, false);
		rc = x->result ? srv_audit(c, x->r, "gateway.updated", "gateway", x->gw,
					   jstr(x->result, "name"), "update", b)
			       : SG_ENOMEM;
	}
	free(key);
	free(limits);
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
