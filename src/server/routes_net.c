/* /api/networks: networks (subnets, DNS servers, FIPS requirement, MTU, MFA-gated sessions:
 * routes_vpn.c) and their peers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secureguard/sg_errors.h"
#include "server/srv_int.h"

#define NET_COLS                                                                                   \
	"id, name, subnet4, subnet6, dns_servers, fips_required, mtu, created_at, updated_at, "     \
	"mfa_required, mfa_session_hours"
#define NET_KINDS "sssslbiiibi"

/* A network as every answer shows it: its columns and how many clients it has. */
#define NET_COLS_COUNT                                                                             \
	NET_COLS ", (SELECT COUNT(*) FROM clients WHERE network_id = networks.id) AS client_count"
#define NET_KINDS_COUNT NET_KINDS "i"

static json_t *net_get(struct sg_db_conn *c, const char *id, int *rc)
{
	struct sg_db_res *res = NULL;
	const char *p[] = {id};
	json_t *j = NULL;

	*rc = sg_db_query(c, &res, "SELECT " NET_COLS_COUNT " FROM networks WHERE id = $1", 1, p);
	if (*rc == 1)
		j = srv_row_json(res, 0, NET_KINDS_COUNT);
	sg_db_res_free(res);
	return j;
}

void h_networks_list(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	const char *p[2];

	srv_list_page(s, out, "networks", NET_COLS_COUNT, NET_KINDS_COUNT, "", "name, id", p, 0,
		      srv_limit(r), srv_offset(r));
}

void h_networks_get(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct sg_db_conn *c;
	json_t *j;
	int rc;

	c = sg_db_acquire(s->db);
	j = net_get(c, r->params[0], &rc);
	if (rc < 0)
		srv_dberr(out, c, rc);
	else if (!j)
		srv_error(out, 404, NULL, "no such network");
	else
		srv_json(out, 200, j);
	sg_db_release(c);
}

struct net_ctx {
	struct srv_req *r;
	const char *id, *name, *dns;
	char *name_key; /* the name case-folded: unique (schema migration 7) */
	char sub4[64], sub6[64];
	bool set_name, set_sub4, set_sub6, set_dns, set_fips, set_mtu, set_mfa, set_hours;
	int mfa;
	int64_t hours; /* mfa_session_hours */
	bool has_sub4, has_sub6;
	int fips;
	int64_t mtu; /* 0 = NULL */
	int status;
	const char *msg, *field;
	json_t *result;
};

/* Reads the body of POST/PUT into x. Its shape, types, ranges and formats were checked against
 * NetworkCreate/NetworkUpdate (api_spec.c) before the handler ran; what is left is putting the
 * values in canonical form. false (with out set) only when memory runs out. */
static bool net_parse(struct srv_req *r, struct srv_resp *out, struct net_ctx *x, char **dns)
{
	json_t *v;
	const char *why;

	*dns = NULL;
	if ((v = json_object_get(r->json, "name"))) {
		x->set_name = true;
		x->name = json_string_value(v);
		x->name_key = srv_text_fold(x->name);
		if (!x->name_key) {
			srv_error(out, 503, NULL, "out of memory");
			return false;
		}
	}
	for (int fam = 4; fam <= 6; fam += 2) {
		const char *key = fam == 4 ? "subnet4" : "subnet6";
		struct srv_prefix pf;

		v = json_object_get(r->json, key);
		if (!v)
			continue;
		if (fam == 4)
			x->set_sub4 = true;
		else
			x->set_sub6 = true;
		if (json_is_null(v) || srv_prefix_parse(&pf, json_string_value(v), false, &why))
			continue;
		srv_prefix_format(fam == 4 ? x->sub4 : x->sub6, &pf);
		if (fam == 4)
			x->has_sub4 = true;
		else
			x->has_sub6 = true;
	}
	if ((v = json_object_get(r->json, "dns_servers"))) {
		x->set_dns = true;
		*dns = srv_prefix_list(v, true, &why);
		if (!*dns) {
			srv_error(out, 503, NULL, "%s", why);
			return false;
		}
		x->dns = *dns;
	}
	if ((v = json_object_get(r->json, "fips_required"))) {
		x->set_fips = true;
		x->fips = json_is_true(v);
	}
	if ((v = json_object_get(r->json, "mtu"))) {
		x->set_mtu = true;
		x->mtu = json_is_null(v) ? 0 : json_integer_value(v);
	}
	if ((v = json_object_get(r->json, "mfa_required"))) {
		x->set_mfa = true;
		x->mfa = json_is_true(v);
	}
	x->hours = 8;
	if ((v = json_object_get(r->json, "mfa_session_hours"))) {
		x->set_hours = true;
		x->hours = json_integer_value(v);
	}
	return true;
}

/* settings.allow_classic_fallback: 1 when this instance allows networks without FIPS (classic
 * WireGuard), 0 when every network must be fips_required; negative on a database error. */
static int classic_allowed(struct sg_db_conn *c)
{
	struct sg_db_res *res = NULL;
	int rc = sg_db_query(c, &res, "SELECT allow_classic_fallback FROM settings WHERE id = 1", 0,
			     NULL);

	if (rc < 0)
		return rc;
	rc = rc == 1 && srv_res_i64(res, 0, 0) ? 1 : 0;
	sg_db_res_free(res);
	return rc;
}

static const char classic_refused[] =
    "this instance allows no classic WireGuard network (settings.allow_classic_fallback is "
    "false)";

static int net_create_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct net_ctx *x = ctx;
	char now[24], mtu[24], hours[24], fips[2] = {(char)('0' + x->fips), 0};
	const char *p[] = {x->id,
			   x->name,
			   x->has_sub4 ? x->sub4 : NULL,
			   x->has_sub6 ? x->sub6 : NULL,
			   x->dns ? x->dns : "",
			   fips,
			   x->mtu ? srv_i64(mtu, x->mtu) : NULL,
			   srv_i64(now, srv_now()),
			   x->name_key,
			   x->mfa ? "1" : "0",
			   srv_i64(hours, x->hours)};
	int rc;

	(void)s;
	json_decref(x->result);
	x->result = NULL;
	if (!x->set_fips) {
		struct sg_db_res *res = NULL;

		/* Default: what the instance requires. */
		rc = sg_db_query(c, &res, "SELECT fips_required FROM settings WHERE id = 1", 0,
				 NULL);
		if (rc < 0)
			return rc;
		fips[0] = rc == 1 && srv_res_i64(res, 0, 0) ? '1' : '0';
		sg_db_res_free(res);
	}
	if (fips[0] == '0') {
		rc = classic_allowed(c);
		if (rc < 0)
			return rc;
		if (!rc) {
			x->status = 409;
			x->field = "fips_required";
			x->msg = classic_refused;
			return 1;
		}
	}
	rc = sg_db_exec(
	    c,
	    "INSERT INTO networks (id, name, subnet4, subnet6, dns_servers, "
	    "fips_required, mtu, created_at, updated_at, name_key, mfa_required, "
	    "mfa_session_hours) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, $11)",
	    11, p);
	if (rc == SG_EEXIST) {
		x->status = 409;
		x->field = "name";
		x->msg = "a network with this name exists";
		return 1;
	}
	if (rc < 0)
		return rc;
	x->result = net_get(c, x->id, &rc);
	if (rc < 0)
		return rc;
	return srv_audit(c, x->r, "network.created", "network", x->id, x->name, "create",
			 x->result);
}

void h_networks_create(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct net_ctx x = {.r = r};
	char id[SRV_ID_LEN + 1], *dns = NULL;
	struct sg_db_conn *c;
	int rc;

	if (!net_parse(r, out, &x, &dns))
		goto out;
	if (!x.has_sub4 && !x.has_sub6) {
		srv_error(out, 400, "subnet4", "a network needs subnet4, subnet6 or both");
		goto out;
	}
	srv_uuid(id);
	x.id = id;
	c = sg_db_acquire(s->db);
	rc = srv_tx(s, c, net_create_tx, &x, false);
	if (rc < 0)
		srv_dberr(out, c, rc);
	else if (rc > 0)
		srv_error(out, x.status, x.field, "%s", x.msg);
	else {
		srv_json(out, 201, x.result);
		x.result = NULL;
	}
	sg_db_release(c);
out:
	json_decref(x.result);
	free(dns);
	free(x.name_key);
}

static int net_update_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct net_ctx *x = ctx;
	json_t *cur, *d = json_object();
	char now[24];
	int rc;

	(void)s;
	json_decref(x->result);
	x->result = NULL;
	cur = NULL;
	if (sg_db_conn_engine(c) == SG_DB_POSTGRES) {
		/* Lock the row before counting its clients: srv_client_insert takes the same lock,
		 * so no client can be added between the count below and the subnet change.
		 * (SQLite's BEGIN IMMEDIATE already serializes writers.) */
		const char *p[] = {x->id};

		rc = sg_db_exec(c, "SELECT id FROM networks WHERE id = $1 FOR UPDATE", 1, p);
		if (rc < 0)
			goto out;
	}
	cur = net_get(c, x->id, &rc);
	if (rc < 0)
		goto out;
	if (!cur) {
		x->status = 404;
		x->msg = "no such network";
		rc = 1;
		goto out;
	}
	if (x->set_fips && !x->fips) {
		rc = classic_allowed(c);
		if (rc < 0)
			goto out;
		if (!rc) {
			x->status = 409;
			x->field = "fips_required";
			x->msg = classic_refused;
			rc = 1;
			goto out;
		}
	}
	if (x->set_sub4 || x->set_sub6) {
		bool h4 =
		    x->set_sub4 ? x->has_sub4 : !json_is_null(json_object_get(cur, "subnet4"));
		bool h6 =
		    x->set_sub6 ? x->has_sub6 : !json_is_null(json_object_get(cur, "subnet6"));
		struct sg_db_res *res = NULL;
		const char *p[] = {x->id};

		if (!h4 && !h6) {
			x->status = 400;
			x->field = "subnet4";
			x->msg = "a network needs subnet4, subnet6 or both";
			rc = 1;
			goto out;
		}
		rc = sg_db_query(c, &res, "SELECT COUNT(*) FROM clients WHERE network_id = $1", 1,
				 p);
		if (rc < 0)
			goto out;
		rc = srv_res_i64(res, 0, 0) > 0;
		sg_db_res_free(res);
		if (rc) {
			x->status = 409;
			x->field = x->set_sub4 ? "subnet4" : "subnet6";
			x->msg = "subnets cannot change while the network has clients";
			goto out;
		}
	}
#define UPD(col, val, jv)                                                                          \
	do {                                                                                       \
		const char *pp[] = {val, x->id};                                                   \
		rc = sg_db_exec(c, "UPDATE networks SET " col " = $1 WHERE id = $2", 2, pp);       \
		if (rc < 0)                                                                        \
			goto out;                                                                  \
		json_object_set_new(d, col, jv);                                                   \
	} while (0)
	if (x->set_name) {
		UPD("name", x->name, json_string(x->name));
		{
			const char *pp[] = {x->name_key, x->id};

			rc = sg_db_exec(c, "UPDATE networks SET name_key = $1 WHERE id = $2", 2, pp);
			if (rc < 0)
				goto out;
		}
	}
	if (x->set_sub4)
		UPD("subnet4", x->has_sub4 ? x->sub4 : NULL,
		    x->has_sub4 ? json_string(x->sub4) : json_null());
	if (x->set_sub6)
		UPD("subnet6", x->has_sub6 ? x->sub6 : NULL,
		    x->has_sub6 ? json_string(x->sub6) : json_null());
	if (x->set_dns)
		UPD("dns_servers", x->dns, json_string(x->dns));
	if (x->set_fips)
		UPD("fips_required", x->fips ? "1" : "0", json_boolean(x->fips));
	if (x->set_mtu) {
		char m[24];

		UPD("mtu", x->mtu ? srv_i64(m, x->mtu) : NULL,
		    x->mtu ? json_integer(x->mtu) : json_null());
	}
	if (x->set_mfa)
		UPD("mfa_required", x->mfa ? "1" : "0", json_boolean(x->mfa));
	if (x->set_hours) {
		char h[24];

		UPD("mfa_session_hours", srv_i64(h, x->hours), json_integer(x->hours));
	}
	UPD("updated_at", srv_i64(now, srv_now()), json_integer(srv_now()));
#undef UPD
	rc = srv_audit(c, x->r, "network.updated", "network", x->id,
		       x->set_name ? x->name : json_string_value(json_object_get(cur, "name")),
		       "update", d);
	if (!rc)
		x->result = net_get(c, x->id, &rc);
	rc = srv_neg(rc);
out:
	if (rc == SG_EEXIST) {
		x->status = 409;
		x->field = "name";
		x->msg = "a network with this name exists";
		rc = 1;
	}
	json_decref(cur);
	json_decref(d);
	return rc;
}

void h_networks_update(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct net_ctx x = {.r = r, .id = r->params[0]};
	char *dns = NULL;
	struct sg_db_conn *c;
	int rc;

	if (!net_parse(r, out, &x, &dns))
		goto out;
	c = sg_db_acquire(s->db);
	rc = srv_tx(s, c, net_update_tx, &x, false);
	if (rc < 0)
		srv_dberr(out, c, rc);
	else if (rc > 0)
		srv_error(out, x.status, x.field, "%s", x.msg);
	else {
		srv_json(out, 200, x.result);
		x.result = NULL;
	}
	sg_db_release(c);
out:
	json_decref(x.result);
	free(dns);
	free(x.name_key);
}

static int net_delete_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct net_ctx *x = ctx;
	struct sg_db_res *res = NULL;
	const char *p[] = {x->id};
	json_t *d;
	int rc;

	(void)s;
	rc = sg_db_query(c, &res,
			 "SELECT name, (SELECT COUNT(*) FROM clients WHERE network_id = $1) FROM "
			 "networks WHERE id = $1",
			 1, p);
	if (rc < 0)
		return rc;
	if (rc != 1) {
		sg_db_res_free(res);
		x->status = 404;
		x->msg = "no such network";
		return 1;
	}
	/* Clients and temporary access of the network go with it (ON DELETE CASCADE). */
	rc = sg_db_exec(c, "DELETE FROM networks WHERE id = $1", 1, p);
	if (rc >= 0) {
		d = json_pack("{s:I}", "clients_deleted", (json_int_t)srv_res_i64(res, 0, 1));
		rc = srv_audit(c, x->r, "network.deleted", "network", x->id,
			       sg_db_res_get(res, 0, 0), "delete", d);
		json_decref(d);
	}
	sg_db_res_free(res);
	return rc;
}

void h_networks_delete(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct net_ctx x = {.r = r, .id = r->params[0]};
	struct sg_db_conn *c;
	int rc;

	c = sg_db_acquire(s->db);
	rc = srv_tx(s, c, net_delete_tx, &x, false);
	if (rc < 0)
		srv_dberr(out, c, rc);
	else if (rc > 0)
		srv_error(out, x.status, NULL, "%s", x.msg);
	else
		srv_body(out, 204, "application/json", "", 0, NULL);
	sg_db_release(c);
}

void h_networks_peers(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct sg_db_conn *c;
	const char *p[3] = {r->params[0]};
	json_t *net;
	int rc;

	c = sg_db_acquire(s->db);
	net = net_get(c, r->params[0], &rc);
	if (rc < 0)
		srv_dberr(out, c, rc);
	else if (!net)
		srv_error(out, 404, "id", "no such network");
	sg_db_release(c);
	if (!net)
		return;
	json_decref(net);
	/* Paginated like every list: a network of thousands is not one answer. */
	srv_list_page(s, out, "clients",
		      "id, name, public_key_classic, public_key_fips, assigned_ip4, assigned_ip6, "
		      "allowed_ips, is_relay, endpoint, listen_port, enabled, last_handshake",
		      "sssssslbsibi", " AND network_id = $1", "is_relay DESC, created_at, id", p, 1,
		      srv_limit(r), srv_offset(r));
}
