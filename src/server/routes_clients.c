/* /api/clients: clients of a network, their addresses, keys and rendered configs.
 *
 * Addresses: the lowest free host address of each of the network's subnets. Two concurrent
 * creations may pick the same one; the UNIQUE (network_id, assigned_ip4/6) constraints refuse the
 * second, which then redoes its transaction (srv_tx with retry_exist). On PostgreSQL the
 * network row is also locked (SELECT ... FOR UPDATE) so creations in one network queue instead of
 * colliding; SQLite's BEGIN IMMEDIATE already serializes writers.
 *
 * Keys: unless the client supplies its public key(s), the server generates an X25519 pair and a
 * P-384 pair and stores the private keys sealed with AES-256-GCM under the at-rest key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/key.h"
#include "crypto/crypto.h"
#include "secureguard/sg_errors.h"
#include "server/api.h"
#include "server/srv_int.h"

#define CLIENT_COLS                                                                                \
	"id, network_id, name, description, public_key_classic, public_key_fips, assigned_ip4, "   \
	"assigned_ip6, allowed_ips, persistent_keepalive, is_relay, endpoint, listen_port, "       \
	"enabled, temp_access_id, expires_at, last_handshake, created_at, updated_at, CASE WHEN "  \
	"private_key_classic_enc IS NULL AND private_key_fips_enc IS NULL THEN 0 ELSE 1 END AS "   \
	"server_generated_keys, online, bytes_sent, bytes_received, owner_id"
#define CLIENT_KINDS "sssssssslibsibsiiiibbiis"

json_t *srv_client_get(struct sg_db_conn *c, const char *id)
{
	struct sg_db_res *res = NULL;
	const char *p[] = {id};
	json_t *j = NULL;

	if (sg_db_query(c, &res, "SELECT " CLIENT_COLS " FROM clients WHERE id = $1", 1, p) == 1)
		j = srv_row_json(res, 0, CLIENT_KINDS);
	sg_db_res_free(res);
	return j;
}

/* Fresh key pairs: public keys as base64, private keys sealed. */
struct keyset {
	char pub[SG_KEY_BASE64_LEN + 1], pubf[SG_FIPS_PUB_BASE64_LEN + 1];
	char *enc, *encf;
};

static int gen_keys(struct srv *s, const char *id, struct keyset *k)
{
	uint8_t priv[SG_X25519_KEY_LEN], pub[SG_X25519_KEY_LEN];
	uint8_t fpriv[SG_FIPS_PRIV_LEN], fpub[SG_FIPS_PUB_LEN];
	char p64[SG_FIPS_PRIV_BASE64_LEN + 1];
	int rc = SG_ECRYPTO;

	k->enc = k->encf = NULL;
	if (!sg_x25519_generate(priv, pub) || sg_fipskey_generate(fpriv, fpub))
		goto out;
	sg_key_to_base64(k->pub, pub);
	sg_fipskey_pub_to_base64(k->pubf, fpub);
	sg_key_to_base64(p64, priv);
	k->enc = srv_seal(s, p64, id, "classic");
	sg_fipskey_priv_to_base64(p64, fpriv);
	k->encf = srv_seal(s, p64, id, "fips");
	if (k->enc && k->encf)
		rc = 0;
out:
	sg_memzero(priv, sizeof(priv));
	sg_memzero(fpriv, sizeof(fpriv));
	sg_memzero(p64, sizeof(p64));
	return rc;
}

static void keyset_free(struct keyset *k)
{
	free(k->enc);
	free(k->encf);
	k->enc = k->encf = NULL;
}

/* Supplied public keys must match the network's mode. 0, or 1 with why set. */
static int check_supplied(bool fips, const char *pub, const char *pubf, char *why, size_t wl)
{
	if (fips && !pubf) {
		snprintf(why, wl,
			 "public_key_fips|this network is fips_required: supply "
			 "public_key_fips (or no key, to have the server generate them)");
		return 1;
	}
	if (!fips && !pub) {
		snprintf(why, wl,
			 "public_key|this network is not fips_required: supply public_key "
			 "(or no key, to have the server generate them)");
		return 1;
	}
	return 0;
}

/* Public keys are unique within a network (the hub's too): SRV_CONFLICT with why naming the
 * field when another client than `self` (NULL: any) has one of these keys. The UNIQUE indexes
 * of schema migration 4 back this up against races; this check gives the answer a field. */
static int key_taken(struct sg_db_conn *c, const char *network_id, const char *self,
		     const char *pub, const char *pubf, char *why, size_t wl)
{
	static const char *const sql[2] = {
	    "SELECT 1 FROM clients WHERE network_id = $1 AND public_key_classic = $2 AND id <> $3",
	    "SELECT 1 FROM clients WHERE network_id = $1 AND public_key_fips = $2 AND id <> $3"};
	const char *keys[2] = {pub, pubf};

	for (int k = 0; k < 2; k++) {
		struct sg_db_res *res = NULL;
		const char *p[] = {network_id, keys[k], self ? self : ""};
		int rc;

		if (!keys[k])
			continue;
		rc = sg_db_query(c, &res, sql[k], 3, p);
		sg_db_res_free(res);
		if (rc < 0)
			return rc;
		if (rc > 0) {
			snprintf(why, wl,
				 "%s|another client of this network already has this public key",
				 k ? "public_key_fips" : "public_key");
			return SRV_CONFLICT;
		}
	}
	return 0;
}

int srv_client_insert(struct srv *s, struct sg_db_conn *c, const struct client_new *cn,
		      char out_id[SRV_ID_LEN + 1], char *why, size_t whylen)
{
	struct sg_db_res *net = NULL, *used = NULL;
	const char *p[] = {cn->network_id};
	char ip4[64] = "", ip6[64] = "", now[24], ka[24], port[24], exp[24];
	struct keyset k = {{0}, {0}, NULL, NULL};
	bool pg = sg_db_conn_engine(c) == SG_DB_POSTGRES;
	int rc;

	srv_uuid(out_id);
	/* The seat first: on PostgreSQL it takes the license's lock before the network's row. */
	rc = srv_license_seat(s, c, why, whylen);
	if (rc)
		return rc;
	rc = sg_db_query(c, &net,
			 pg ? "SELECT subnet4, subnet6, fips_required FROM networks WHERE id = $1 "
			      "FOR UPDATE"
			    : "SELECT subnet4, subnet6, fips_required FROM networks WHERE id = $1",
			 1, p);
	if (rc < 0)
		goto out;
	if (rc != 1) {
		snprintf(why, whylen, "network_id|no such network");
		rc = SG_ENOENT;
		goto out;
	}
	for (int fam = 0; fam < 2; fam++) {
		const char *sub = sg_db_res_get(net, 0, fam);
		struct srv_prefix pf;
		const char *w;
		char **list;
		int n;

		if (!sub)
			continue;
		if (srv_prefix_parse(&pf, sub, false, &w)) {
			snprintf(why, whylen, "network_id|the network's subnet is unreadable");
			rc = SG_EINVAL;
			goto out;
		}
		rc = sg_db_query(c, &used,
				 fam ? "SELECT assigned_ip6 FROM clients WHERE network_id = $1 AND "
				       "assigned_ip6 IS NOT NULL"
				     : "SELECT assigned_ip4 FROM clients WHERE network_id = $1 AND "
				       "assigned_ip4 IS NOT NULL",
				 1, p);
		if (rc < 0)
			goto out;
		n = rc;
		list = calloc((size_t)n + 1, sizeof(*list));
		if (!list) {
			rc = SG_ENOMEM;
			goto out;
		}
		for (int i = 0; i < n; i++)
			list[i] = (char *)sg_db_res_get(used, i, 0);
		rc = srv_alloc_addr(fam ? ip6 : ip4, &pf, list, n);
		free(list);
		sg_db_res_free(used);
		used = NULL;
		if (rc == SG_EFULL) {
			snprintf(why, whylen,
				 "network_id|the network's %s subnet has no free address",
				 fam ? "IPv6" : "IPv4");
			goto out;
		}
		if (rc)
			goto out;
	}
	if (cn->pub_classic || cn->pub_fips) {
		if (check_supplied(srv_res_i64(net, 0, 2) != 0, cn->pub_classic, cn->pub_fips, why,
				   whylen)) {
			rc = SG_EINVAL;
			goto out;
		}
		rc = key_taken(c, cn->network_id, NULL, cn->pub_classic, cn->pub_fips, why, whylen);
		if (rc)
			goto out;
	} else {
		rc = gen_keys(s, out_id, &k);
		if (rc)
			goto out;
	}
	{
		const char *q[] = {out_id,
				   cn->network_id,
				   cn->name,
				   cn->description ? cn->description : "",
				   k.enc ? k.pub : cn->pub_classic,
				   k.enc ? k.pubf : cn->pub_fips,
				   k.enc,
				   k.encf,
				   ip4[0] ? ip4 : NULL,
				   ip6[0] ? ip6 : NULL,
				   cn->allowed_ips ? cn->allowed_ips : "",
				   srv_i64(ka, cn->keepalive),
				   cn->is_relay ? "1" : "0",
				   cn->endpoint,
				   cn->has_listen_port ? srv_i64(port, cn->listen_port) : NULL,
				   cn->enabled ? "1" : "0",
				   cn->temp_access_id,
				   cn->expires_at ? srv_i64(exp, cn->expires_at) : NULL,
				   srv_i64(now, srv_now()),
				   cn->owner_id};

		rc = sg_db_exec(
		    c,
		    "INSERT INTO clients (id, network_id, name, description, "
		    "public_key_classic, public_key_fips, private_key_classic_enc, "
		    "private_key_fips_enc, assigned_ip4, assigned_ip6, allowed_ips, "
		    "persistent_keepalive, is_relay, endpoint, listen_port, enabled, "
		    "temp_access_id, expires_at, created_at, updated_at, owner_id) VALUES ($1, "
		    "$2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, "
		    "$18, $19, $19, $20)",
		    20, q);
		rc = srv_neg(rc);
	}
out:
	keyset_free(&k);
	sg_db_res_free(net);
	sg_db_res_free(used);
	return rc;
}

/* ---- validation shared by create and update -------------------------------------------------- */

struct client_ctx {
	struct srv_req *r;
	struct client_new cn;
	const char *id;
	char *allowed;
	bool set[16];
	int status;
	char why[256];
	json_t *result;
	char new_id[SRV_ID_LEN + 1];
};

enum { S_NAME, S_DESC, S_ALLOWED, S_KA, S_RELAY, S_ENDPOINT, S_PORT, S_ENABLED, S_OWNER };

static const struct field_spec client_spec[] = {
    {"network_id", F_STR, false, false},
    {"name", F_STR, false, false},
    {"description", F_STR, false, false},
    {"public_key", F_STR, false, true},
    {"public_key_fips", F_STR, false, true},
    {"allowed_ips", F_STRLIST, false, false},
    {"persistent_keepalive", F_INT, false, false},
    {"is_relay", F_BOOL, false, false},
    {"endpoint", F_STR, false, true},
    {"listen_port", F_INT, false, true},
    {"enabled", F_BOOL, false, false},
    {"owner_id", F_STR, false, true},
};

static bool parse_pubkeys(struct srv_resp *out, json_t *body, const char **pub, const char **pubf)
{
	uint8_t k[SG_FIPS_PUB_LEN];

	*pub = json_string_value(json_object_get(body, "public_key"));
	*pubf = json_string_value(json_object_get(body, "public_key_fips"));
	if (*pub && sg_key_from_base64(k, *pub, strlen(*pub))) {
		srv_error(out, 400, "public_key",
			  "must be a base64 X25519 public key (44 characters)");
		return false;
	}
	if (*pubf && sg_fipskey_pub_from_base64(k, *pubf, strlen(*pubf))) {
		srv_error(out, 400, "public_key_fips",
			  "must be a base64 compressed P-384 point on the curve (68 characters)");
		return false;
	}
	return true;
}

static bool client_parse(struct srv_req *r, struct srv_resp *out, struct client_ctx *x, bool create)
{
	struct client_new *cn = &x->cn;
	const char *why;
	json_t *v;

	if (!srv_check_fields(r, out, client_spec, SG_ARRAY_LEN(client_spec)))
		return false;
	if (!create) {
		static const char *const fixed[] = {"network_id", "public_key", "public_key_fips"};

		for (size_t i = 0; i < SG_ARRAY_LEN(fixed); i++) {
			if (json_object_get(r->json, fixed[i])) {
				srv_error(out, 400, fixed[i], "cannot change here%s",
					  i ? " (use POST /api/clients/{id}/regenerate-keys)" : "");
				return false;
			}
		}
	} else {
		cn->network_id = json_string_value(json_object_get(r->json, "network_id"));
		if (!cn->network_id) {
			srv_error(out, 400, "network_id", "required");
			return false;
		}
		if (!json_object_get(r->json, "name")) {
			srv_error(out, 400, "name", "required");
			return false;
		}
		if (!parse_pubkeys(out, r->json, &cn->pub_classic, &cn->pub_fips))
			return false;
		cn->keepalive = 25;
		cn->enabled = true;
	}
	if ((v = json_object_get(r->json, "name"))) {
		x->set[S_NAME] = true;
		cn->name = json_string_value(v);
		if (!srv_valid_text(cn->name, 64, false)) {
			srv_error(out, 400, "name", "must be 1 to 64 printable characters");
			return false;
		}
	}
	if ((v = json_object_get(r->json, "description"))) {
		x->set[S_DESC] = true;
		cn->description = json_string_value(v);
		if (!srv_valid_text(cn->description, 256, true)) {
			srv_error(out, 400, "description", "at most 256 printable characters");
			return false;
		}
	}
	if ((v = json_object_get(r->json, "allowed_ips"))) {
		x->set[S_ALLOWED] = true;
		x->allowed = srv_prefix_list(v, false, &why);
		if (!x->allowed) {
			srv_error(out, 400, "allowed_ips", "%s", why);
			return false;
		}
		cn->allowed_ips = x->allowed;
	}
	if ((v = json_object_get(r->json, "persistent_keepalive"))) {
		x->set[S_KA] = true;
		cn->keepalive = json_integer_value(v);
		if (cn->keepalive < 0 || cn->keepalive > 65535) {
			srv_error(out, 400, "persistent_keepalive", "must be 0 to 65535 seconds");
			return false;
		}
	}
	if ((v = json_object_get(r->json, "is_relay"))) {
		x->set[S_RELAY] = true;
		cn->is_relay = json_is_true(v);
	}
	if ((v = json_object_get(r->json, "endpoint"))) {
		x->set[S_ENDPOINT] = true;
		cn->endpoint = json_string_value(v);
		if (cn->endpoint && !srv_valid_endpoint(cn->endpoint)) {
			srv_error(out, 400, "endpoint", "must be HOST:PORT or [IPv6]:PORT");
			return false;
		}
	}
	if ((v = json_object_get(r->json, "listen_port"))) {
		x->set[S_PORT] = true;
		cn->has_listen_port = !json_is_null(v);
		cn->listen_port = json_integer_value(v);
		if (cn->has_listen_port && (cn->listen_port < 1 || cn->listen_port > 65535)) {
			srv_error(out, 400, "listen_port", "must be 1 to 65535 or null");
			return false;
		}
	}
	if ((v = json_object_get(r->json, "enabled"))) {
		x->set[S_ENABLED] = true;
		cn->enabled = json_is_true(v);
	}
	if ((v = json_object_get(r->json, "owner_id"))) {
		x->set[S_OWNER] = true;
		cn->owner_id = json_string_value(v);
	} else if (create) {
		/* The creating admin (an API key's user) owns it unless the body says otherwise. */
		cn->owner_id = r->who.user_id[0] ? r->who.user_id : NULL;
	}
	if (create && cn->is_relay && !cn->endpoint) {
		srv_error(out, 400, "endpoint",
			  "a relay (hub) needs an endpoint clients can reach");
		return false;
	}
	return true;
}

/* An owner must be a user of this server: 0, 1 with why set, or <0. */
static int owner_check(struct sg_db_conn *c, const char *owner, char *why, size_t wl)
{
	struct sg_db_res *res = NULL;
	const char *p[] = {owner};
	int rc;

	if (!owner)
		return 0;
	rc = sg_db_query(c, &res, "SELECT 1 FROM admin_users WHERE id = $1", 1, p);
	sg_db_res_free(res);
	if (rc < 0)
		return rc;
	if (rc == 1)
		return 0;
	snprintf(why, wl, "owner_id|no such user");
	return 1;
}

/* "field|message" from srv_client_insert to a 400/404/409. */
static void insert_error(struct srv_resp *out, int rc, const char *why)
{
	char field[64] = "";
	const char *bar = strchr(why, '|');

	if (bar && (size_t)(bar - why) < sizeof(field)) {
		memcpy(field, why, (size_t)(bar - why));
		field[bar - why] = 0;
		why = bar + 1;
	}
	srv_error(out, rc == SG_EFULL || rc == SRV_CONFLICT ? 409 : 400, field[0] ? field : NULL,
		  "%s", why);
}

static int client_create_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct client_ctx *x = ctx;
	int rc;

	json_decref(x->result);
	x->result = NULL;
	x->why[0] = 0;
	rc = owner_check(c, x->cn.owner_id, x->why, sizeof(x->why));
	if (rc)
		return rc > 0 ? SG_EINVAL : rc;
	rc = srv_client_insert(s, c, &x->cn, x->new_id, x->why, sizeof(x->why));
	if (rc)
		return rc;
	x->result = srv_client_get(c, x->new_id);
	if (!x->result)
		return SG_EIO;
	return srv_audit(c, x->r, "client.created", "client", x->new_id, x->cn.name, "create",
			 x->result);
}

void h_clients_create(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct client_ctx x = {.r = r};
	struct sg_db_conn *c;
	int rc;

	if (!srv_query_check(r, out, NULL) || !client_parse(r, out, &x, true))
		goto out;
	c = sg_db_acquire(s->db);
	rc = srv_tx(s, c, client_create_tx, &x, true);
	if (rc == SRV_LICENSE)
		srv_license_refuse(out, x.why);
	else if (rc && x.why[0])
		insert_error(out, rc, x.why);
	else if (rc)
		srv_dberr(out, c, rc);
	else {
		srv_json(out, 201, x.result);
		x.result = NULL;
	}
	sg_db_release(c);
out:
	json_decref(x.result);
	free(x.allowed);
}

/* With --redis, online, the last handshake and the bytes are what the hubs report now
 * (sg:connection:{client_id}, live.c) over the database's record: every server shows the same
 * live state, and a client whose hub stopped reporting reads offline once its entry expires.
 * When Redis is away the answer keeps the database's record. This one: over a page of
 * srv_list_page, which writes its answer as text. */
static void live_overlay_page(struct srv_resp *out)
{
	json_t *doc;

	if (!srv_live_on() || out->status != 200 || !out->body)
		return;
	doc = json_loadb(out->body, out->len, 0, NULL);
	if (doc && !srv_live_conn_overlay(json_object_get(doc, "items")))
		srv_json(out, 200, doc);
	else
		json_decref(doc);
}

void h_clients_get(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct sg_db_conn *c;
	json_t *j;

	if (!srv_query_check(r, out, NULL))
		return;
	c = sg_db_acquire(s->db);
	j = srv_client_get(c, r->params[0]);
	sg_db_release(c);
	if (!j) {
		srv_error(out, 404, NULL, "no such client");
		return;
	}
	{
		json_t *one = json_pack("[O]", j); /* as live_overlay_page */

		(void)srv_live_conn_overlay(one);
		json_decref(one);
	}
	srv_json(out, 200, j);
}

void h_clients_list(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	char where[512] = "", like[160];
	const char *p[8];
	int n = 0, enabled, online;

	/* Validated against the route's parameters (api_spec.c) before we run. */
	enabled = api_query_bool(r->route, r, "enabled");
	if (srv_query(r, "network_id")) {
		p[n++] = srv_query(r, "network_id");
		snprintf(where + strlen(where), sizeof(where) - strlen(where),
			 " AND network_id = $%d", n);
	}
	if (srv_query(r, "name")) {
		p[n++] = srv_query(r, "name");
		snprintf(where + strlen(where), sizeof(where) - strlen(where), " AND name = $%d",
			 n);
	}
	if (enabled >= 0) {
		p[n++] = enabled ? "1" : "0";
		snprintf(where + strlen(where), sizeof(where) - strlen(where), " AND enabled = $%d",
			 n);
	}
	online = api_query_bool(r->route, r, "online");
	if (online >= 0) {
		p[n++] = online ? "1" : "0";
		snprintf(where + strlen(where), sizeof(where) - strlen(where), " AND online = $%d",
			 n);
	}
	if (srv_query(r, "q")) {
		const char *q = srv_query(r, "q");
		size_t k = 0;

		/* A substring match with LIKE on both engines: the pattern's own % _ and \ are
		 * escaped, ASCII letters folded (lower() folds ASCII on SQLite); the search text is
		 * at most 64 characters (api_spec.c), so the escaped pattern fits. */
		like[k++] = '%';
		for (; *q && k < sizeof(like) - 3; q++) {
			char ch = (*q >= 'A' && *q <= 'Z') ? (char)(*q - 'A' + 'a') : *q;

			if (ch == '%' || ch == '_' || ch == '\\')
				like[k++] = '\\';
			like[k++] = ch;
		}
		like[k++] = '%';
		like[k] = 0;
		p[n++] = like;
		snprintf(where + strlen(where), sizeof(where) - strlen(where),
			 " AND (lower(name) LIKE $%d ESCAPE '\\' OR assigned_ip4 LIKE $%d ESCAPE '\\' "
			 "OR assigned_ip6 LIKE $%d ESCAPE '\\')",
			 n, n, n);
	}
	srv_list_keyset(s, r, out, "clients", CLIENT_COLS, CLIENT_KINDS, where, p, n,
			SRV_KEYSET_CREATED_ID);
	live_overlay_page(out);
}

static int client_update_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct client_ctx *x = ctx;
	struct client_new *cn = &x->cn;
	json_t *cur, *d = json_object();
	char now[24], buf[24];
	int rc = 0;

	(void)s;
	json_decref(x->result);
	x->result = NULL;
	cur = srv_client_get(c, x->id);
	if (!cur) {
		x->status = 404;
		snprintf(x->why, sizeof(x->why), "no such client");
		rc = 1;
		goto out;
	}
	{
		bool relay =
		    x->set[S_RELAY] ? cn->is_relay : json_is_true(json_object_get(cur, "is_relay"));
		bool ep = x->set[S_ENDPOINT] ? cn->endpoint != NULL
					     : !json_is_null(json_object_get(cur, "endpoint"));

		if (relay && !ep) {
			x->status = 400;
			snprintf(x->why, sizeof(x->why),
				 "endpoint|a relay (hub) needs an endpoint clients can reach");
			rc = 1;
			goto out;
		}
	}
#define UPD(col, val, jv)                                                                          \
	do {                                                                                       \
		const char *pp[] = {val, x->id};                                                   \
		rc = sg_db_exec(c, "UPDATE clients SET " col " = $1 WHERE id = $2", 2, pp);        \
		if (rc < 0)                                                                        \
			goto out;                                                                  \
		json_object_set_new(d, col, jv);                                                   \
	} while (0)
	if (x->set[S_NAME])
		UPD("name", cn->name, json_string(cn->name));
	if (x->set[S_DESC])
		UPD("description", cn->description, json_string(cn->description));
	if (x->set[S_ALLOWED])
		UPD("allowed_ips", cn->allowed_ips, json_string(cn->allowed_ips));
	if (x->set[S_KA])
		UPD("persistent_keepalive", srv_i64(buf, cn->keepalive),
		    json_integer(cn->keepalive));
	if (x->set[S_RELAY])
		UPD("is_relay", cn->is_relay ? "1" : "0", json_boolean(cn->is_relay));
	if (x->set[S_ENDPOINT])
		UPD("endpoint", cn->endpoint,
		    cn->endpoint ? json_string(cn->endpoint) : json_null());
	if (x->set[S_PORT])
		UPD("listen_port", cn->has_listen_port ? srv_i64(buf, cn->listen_port) : NULL,
		    cn->has_listen_port ? json_integer(cn->listen_port) : json_null());
	if (x->set[S_ENABLED])
		UPD("enabled", cn->enabled ? "1" : "0", json_boolean(cn->enabled));
	if (x->set[S_OWNER]) {
		const char *old = json_string_value(json_object_get(cur, "owner_id"));

		rc = owner_check(c, cn->owner_id, x->why, sizeof(x->why));
		if (rc > 0)
			x->status = 400;
		if (rc)
			goto out;
		UPD("owner_id", cn->owner_id, cn->owner_id ? json_string(cn->owner_id) : json_null());
		/* A session belongs to the owner who opened it: a new owner starts without. */
		if (!old || !cn->owner_id || strcmp(old, cn->owner_id)) {
			const char *pp[] = {x->id, srv_i64(now, srv_now()), x->r->who.id};

			rc = sg_db_exec(c,
					"UPDATE vpn_sessions SET ended_at = $2, end_reason = "
					"'owner_changed', ended_by = $3 WHERE client_id = $1 AND "
					"ended_at IS NULL",
					3, pp);
			if (rc < 0)
				goto out;
			json_object_set_new(d, "vpn_sessions_ended", json_integer(rc));
		}
	}
	UPD("updated_at", srv_i64(now, srv_now()), json_integer(srv_now()));
#undef UPD
	rc = srv_audit(c, x->r, "client.updated", "client", x->id,
		       x->set[S_NAME] ? cn->name : json_string_value(json_object_get(cur, "name")),
		       "update", d);
	if (!rc)
		x->result = srv_client_get(c, x->id);
out:
	json_decref(cur);
	json_decref(d);
	return rc;
}

static void ctx_error(struct srv_resp *out, struct client_ctx *x)
{
	const char *bar = strchr(x->why, '|');

	if (bar) {
		char field[64];

		snprintf(field, sizeof(field), "%.*s", (int)(bar - x->why), x->why);
		srv_error(out, x->status, field, "%s", bar + 1);
	} else {
		srv_error(out, x->status, NULL, "%s", x->why);
	}
}

void h_clients_update(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct client_ctx x = {.r = r, .id = r->params[0]};
	struct sg_db_conn *c;
	int rc;

	if (!srv_query_check(r, out, NULL) || !client_parse(r, out, &x, false))
		goto out;
	c = sg_db_acquire(s->db);
	rc = srv_tx(s, c, client_update_tx, &x, false);
	if (rc < 0)
		srv_dberr(out, c, rc);
	else if (rc > 0)
		ctx_error(out, &x);
	else {
		srv_json(out, 200, x.result);
		x.result = NULL;
	}
	sg_db_release(c);
out:
	json_decref(x.result);
	free(x.allowed);
}

static int client_delete_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct client_ctx *x = ctx;
	const char *p[] = {x->id};
	json_t *cur;
	int rc;

	(void)s;
	cur = srv_client_get(c, x->id);
	if (!cur) {
		x->status = 404;
		snprintf(x->why, sizeof(x->why), "no such client");
		return 1;
	}
	rc = sg_db_exec(c, "DELETE FROM clients WHERE id = $1", 1, p);
	if (rc >= 0)
		rc = srv_audit(c, x->r, "client.deleted", "client", x->id,
			       json_string_value(json_object_get(cur, "name")), "delete", NULL);
	json_decref(cur);
	return rc;
}

void h_clients_delete(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct client_ctx x = {.r = r, .id = r->params[0]};
	struct sg_db_conn *c;
	int rc;

	if (!srv_query_check(r, out, NULL))
		return;
	c = sg_db_acquire(s->db);
	rc = srv_tx(s, c, client_delete_tx, &x, false);
	if (rc < 0)
		srv_dberr(out, c, rc);
	else if (rc > 0)
		ctx_error(out, &x);
	else
		srv_body(out, 204, "application/json", "", 0, NULL);
	sg_db_release(c);
}

struct config_ctx {
	struct srv_req *r;
	const char *id, *format;
	char *text;
	int status;
	char why[128];
};

static int config_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct config_ctx *x = ctx;
	json_t *d;
	int rc;

	srv_free_secret(x->text);
	x->text = srv_render_config(s, c, x->id, &x->status, x->why, sizeof(x->why));
	if (!x->text)
		return x->status == 404 ? 1 : SG_EIO;
	d = json_pack("{s:s}", "format", x->format);
	rc = srv_audit(c, x->r, "config.downloaded", "client", x->id, NULL, "download", d);
	json_decref(d);
	return rc;
}

void h_clients_config(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	static const char *const allowed[] = {"format", NULL};
	struct config_ctx x = {.r = r, .id = r->params[0], .format = "conf"};
	struct sg_db_conn *c;
	char disp[160];
	int rc;

	if (!srv_query_check(r, out, allowed))
		return;
	if (srv_query(r, "format"))
		x.format = srv_query(r, "format");
	if (strcmp(x.format, "conf") && strcmp(x.format, "qr")) {
		srv_error(out, 400, "format", "must be conf or qr");
		return;
	}
	c = sg_db_acquire(s->db);
	rc = srv_tx(s, c, config_tx, &x, false);
	if (rc > 0)
		srv_error(out, 404, NULL, "%s", x.why);
	else if (rc == SG_EIO)
		srv_error(out, 500, NULL, "%s", x.why);
	else if (rc)
		srv_dberr(out, c, rc);
	else if (!strcmp(x.format, "qr")) {
		size_t len;
		uint8_t *png = NULL;

		if (strlen(x.text) > SRV_QR_MAX_BYTES) {
			srv_error(out, 422, "format",
				  "the config is %zu bytes, more than a QR code holds (%d); "
				  "download it as a file instead",
				  strlen(x.text), SRV_QR_MAX_BYTES);
		} else if (!(png = srv_qr_png(x.text, &len))) {
			srv_error(out, 500, NULL, "QR code generation failed");
		} else {
			srv_body(out, 200, "image/png", png, len, NULL);
			free(png);
		}
	} else {
		snprintf(disp, sizeof(disp), "attachment; filename=\"sg-%.8s.conf\"", x.id);
		srv_body(out, 200, "text/plain; charset=utf-8", x.text, strlen(x.text), disp);
	}
	srv_free_secret(x.text);
	sg_db_release(c);
}

struct regen_ctx {
	struct srv_req *r;
	const char *id, *pub, *pubf;
	int status;
	char why[256];
	json_t *result;
};

static int regen_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct regen_ctx *x = ctx;
	struct sg_db_res *res = NULL;
	struct keyset k = {{0}, {0}, NULL, NULL};
	const char *p[] = {x->id};
	char now[24];
	json_t *d;
	int rc;

	json_decref(x->result);
	x->result = NULL;
	rc =
	    sg_db_query(c, &res,
			"SELECT c.name, n.fips_required, c.network_id FROM clients c JOIN networks "
			"n ON n.id = c.network_id WHERE c.id = $1",
			1, p);
	if (rc < 0)
		return rc;
	if (rc != 1) {
		x->status = 404;
		snprintf(x->why, sizeof(x->why), "no such client");
		rc = 1;
		goto out;
	}
	if (x->pub || x->pubf) {
		if (check_supplied(srv_res_i64(res, 0, 1) != 0, x->pub, x->pubf, x->why,
				   sizeof(x->why))) {
			x->status = 400;
			rc = 1;
			goto out;
		}
		if (sg_db_conn_engine(c) == SG_DB_POSTGRES) {
			/* Queues behind client creations in the network, which lock it too. */
			const char *n[] = {sg_db_res_get(res, 0, 2)};

			rc = sg_db_exec(c, "SELECT 1 FROM networks WHERE id = $1 FOR UPDATE", 1, n);
			if (rc < 0)
				goto out;
		}
		rc = key_taken(c, sg_db_res_get(res, 0, 2), x->id, x->pub, x->pubf, x->why,
			       sizeof(x->why));
		if (rc < 0)
			goto out;
		if (rc) {
			x->status = 409;
			rc = 1;
			goto out;
		}
	} else {
		rc = gen_keys(s, x->id, &k);
		if (rc)
			goto out;
	}
	{
		const char *q[] = {k.enc ? k.pub : x->pub,
				   k.enc ? k.pubf : x->pubf,
				   k.enc,
				   k.encf,
				   srv_i64(now, srv_now()),
				   x->id};

		rc = sg_db_exec(
		    c,
		    "UPDATE clients SET public_key_classic = $1, public_key_fips = $2, "
		    "private_key_classic_enc = $3, private_key_fips_enc = $4, updated_at = "
		    "$5 WHERE id = $6",
		    6, q);
		if (rc < 0)
			goto out;
	}
	/* Sessions proved the old key. */
	rc = sg_db_exec(c, "DELETE FROM client_sessions WHERE client_id = $1", 1, p);
	if (rc < 0)
		goto out;
	d = json_pack("{s:b}", "server_generated", k.enc != NULL);
	rc = srv_audit(c, x->r, "client.keys_regenerated", "client", x->id,
		       sg_db_res_get(res, 0, 0), "regenerate_keys", d);
	json_decref(d);
	if (!rc)
		x->result = srv_client_get(c, x->id);
out:
	keyset_free(&k);
	sg_db_res_free(res);
	return rc;
}

void h_clients_regen(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	static const struct field_spec spec[] = {{"public_key", F_STR, false, true},
						 {"public_key_fips", F_STR, false, true}};
	struct regen_ctx x = {.r = r, .id = r->params[0]};
	struct sg_db_conn *c;
	int rc;

	if (!srv_query_check(r, out, NULL) || !srv_check_fields(r, out, spec, SG_ARRAY_LEN(spec)) ||
	    !parse_pubkeys(out, r->json, &x.pub, &x.pubf))
		return;
	c = sg_db_acquire(s->db);
	/* A UNIQUE key index refusing a concurrent regeneration is retried: the key check then
	 * answers 409. */
	rc = srv_tx(s, c, regen_tx, &x, true);
	if (rc < 0)
		srv_dberr(out, c, rc);
	else if (rc > 0) {
		struct client_ctx cx = {.status = x.status};

		memcpy(cx.why, x.why, sizeof(cx.why));
		ctx_error(out, &cx);
	} else {
		srv_json(out, 200, x.result);
		x.result = NULL;
	}
	json_decref(x.result);
	sg_db_release(c);
}
