/* Agents and policies (issue 14, docs/AGENTS.md): /api/policies, /api/enrollment-tokens,
 * /api/peers (managed nodes: registration, sessions, status reports, their configuration as a
 * long poll) and /api/tunnels.
 *
 * Credentials. An admin makes a one-time enrolment token (sge_..., only its SHA-384 stored); the
 * agent registers with it and its own X25519 public key; from then on it logs in with a
 * key-possession proof over a stateless challenge (as client sessions do, with its own label),
 * which gives an agent session (sga_..., one hour). Revoking a peer marks it revoked and deletes
 * its sessions in one transaction: its next request, a parked long poll included, is refused.
 *
 * Configuration. What an agent runs is computed, not stored: the enabled policies expanded for
 * it (policy.c), plus the WireGuard configuration of the client it is bound to. Its revision is
 * an HMAC of the content under a key from the master key, so it changes exactly when the content
 * does (secrets included) without revealing them. The long poll parks the request (srv_park)
 * until sync_state.revision moves (triggers on every table the content depends on; the server
 * polls it four times a second, so a change made by any server of a cluster wakes the agents of
 * all of them) and recomputes it then; agents whose content did not change wait on.
 *
 * Every agent recomputes after any change, so the policies and peers are read once per revision
 * into a shared snapshot rather than once per agent.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "crypto/crypto.h"
#include "secureguard/sg_errors.h"
#include "server/api.h"
#include "server/audit.h"
#include "server/policy.h"
#include "server/srv_int.h"

#define ENROLL_TTL_DEFAULT_H 24
#define ONLINE_POLLS	     3	 /* a peer is online when it reported within 3 poll intervals */
#define WG_ONLINE_S	     180 /* WireGuard: REJECT_AFTER_TIME (whitepaper section 6.1) */
#define DEFAULT_IFNAME	     "sg0"

/* ---- small helpers ------------------------------------------------------------------------- */

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static bool jhas(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return v && !json_is_null(v);
}

/* A JSON value as compact text (malloc'd), or NULL. */
static char *jtext(json_t *v)
{
	return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* Tags (validated, duplicates dropped) as a comma list; NULL with why on a bad one. arr may be
 * NULL (no tags). */
static char *tag_list(json_t *arr, const char **why)
{
	size_t i, cap = json_array_size(arr) * 66 + 1, n = 0;
	json_t *e;
	char *out = calloc(1, cap);

	if (!out) {
		*why = "out of memory";
		return NULL;
	}
	json_array_foreach(arr, i, e)
	{
		const char *t = json_string_value(e);

		if (!t || !pol_tag_ok(t)) {
			*why = "a tag is 1 to 64 of A-Z a-z 0-9 . _ -";
			free(out);
			return NULL;
		}
		if (!pol_list_has(out, t))
			n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? "," : "", t);
	}
	return out;
}

/* An interface name as the kernel takes it (1..15, no '/', not . or ..), restricted to the
 * characters wg-quick accepts. */
static bool ifname_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > 15 || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (const char *p = s; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '=' || *p == '+' ||
		      *p == '.' || *p == '-'))
			return false;
	}
	return true;
}

/* The revision on connection c (a handler's own: taking a second connection from the pool while
 * holding one would deadlock once every worker did so). */
static int64_t sync_revision(struct sg_db_conn *c)
{
	struct sg_db_res *res = NULL;
	int rc = sg_db_query(c, &res, "SELECT revision FROM sync_state WHERE id = 1", 0, NULL);
	int64_t rev = rc == 1 ? srv_res_i64(res, 0, 0) : rc < 0 ? rc : SG_ENOENT;

	sg_db_res_free(res);
	return rev;
}

int64_t srv_sync_revision(struct srv *s)
{
	struct sg_db_conn *c = sg_db_acquire(s->db);
	int64_t rev = sync_revision(c);

	sg_db_release(c);
	return rev;
}

/* ---- lookups for the policy checks ---------------------------------------------------------- */

static bool exists(struct sg_db_conn *c, const char *sql, const char *id)
{
	struct sg_db_res *res = NULL;
	const char *p[] = {id};
	int rc = sg_db_query(c, &res, sql, 1, p);

	sg_db_res_free(res);
	return rc == 1;
}

static bool peer_exists(void *ctx, const char *id)
{
	return exists(ctx, "SELECT 1 FROM agents WHERE id = $1 AND revoked = 0", id);
}

static bool client_exists(void *ctx, const char *id)
{
	return exists(ctx, "SELECT 1 FROM clients WHERE id = $1", id);
}

/* The live peers with the certificates their agents last reported (PeerStatus.certificates),
 * for pol_check's certificate references; read only when a tunnel names a certificate. */
struct cert_peers {
	struct sg_db_res *res; /* the peers' strings point into it */
	struct pol_peer *peers;
	char **certs;
	size_t n;
};

static bool names_cert(json_t *pol)
{
	json_t *t;
	size_t i;

	json_array_foreach(json_object_get(pol, "tunnels"), i, t)
	{
		if (jstr(t, "local_cert"))
			return true;
	}
	return false;
}

static void cert_peers_free(struct cert_peers *cp)
{
	for (size_t i = 0; cp->certs && i < cp->n; i++)
		free(cp->certs[i]);
	free(cp->certs);
	free(cp->peers);
	sg_db_res_free(cp->res);
	memset(cp, 0, sizeof(*cp));
}

static int cert_peers_load(struct sg_db_conn *c, struct cert_peers *cp)
{
	int rc = sg_db_query(
	    c, &cp->res,
	    "SELECT id, name, tags, report FROM agents WHERE revoked = 0 ORDER BY name", 0, NULL);

	if (rc < 0)
		return rc;
	cp->n = (size_t)rc;
	cp->peers = calloc(cp->n ? cp->n : 1, sizeof(*cp->peers));
	cp->certs = calloc(cp->n ? cp->n : 1, sizeof(*cp->certs));
	if (!cp->peers || !cp->certs)
		return SG_ENOMEM;
	for (size_t i = 0; i < cp->n; i++) {
		const char *rep = sg_db_res_get(cp->res, (int)i, 3);
		json_t *doc = rep ? json_loads(rep, 0, NULL) : NULL;
		json_t *certs = json_object_get(doc, "certificates"), *e;
		size_t k, len = 1;

		cp->peers[i] = (struct pol_peer){.id = sg_db_res_get(cp->res, (int)i, 0),
						 .name = sg_db_res_get(cp->res, (int)i, 1),
						 .tags = sg_db_res_get(cp->res, (int)i, 2)};
		if (json_is_array(certs)) {
			json_array_foreach(certs, k, e)
			{
				if (json_string_value(e))
					len += strlen(json_string_value(e)) + 1;
			}
			cp->certs[i] = calloc(1, len);
			json_array_foreach(certs, k, e)
			{
				/* A comma would split a name in the list: no file name has one. */
				if (!cp->certs[i] || !json_string_value(e) ||
				    strchr(json_string_value(e), ','))
					continue;
				if (*cp->certs[i])
					strcat(cp->certs[i], ",");
				strcat(cp->certs[i], json_string_value(e));
			}
			cp->peers[i].certs = cp->certs[i] ? cp->certs[i] : "";
		}
		json_decref(doc);
	}
	return 0;
}

/* ---- secrets ------------------------------------------------------------------------------- */

struct seal_ctx {
	struct srv *s;
	const char *policy_id;
};

static char *seal_cb(void *ctx, const char *plain)
{
	struct seal_ctx *x = ctx;

	return srv_seal(x->s, plain, x->policy_id, "psk");
}

static char *open_cb(void *ctx, const char *policy_id, const char *sealed)
{
	return srv_open(ctx, sealed, policy_id, "psk");
}

/* A topology pair's key: base64url(HMAC-SHA-384(psk_key, "secureguard pair psk v1" || policy id
 * || 0 || tunnel name)), 64 characters: the same on both sides and on every server, and new for
 * a new policy. */
static char *derive_cb(void *ctx, const char *policy_id, const char *name)
{
	struct srv *s = ctx;
	static const char label[] = "secureguard pair psk v1";
	uint8_t mac[SG_SHA384_LEN];
	struct sg_iov iov[4] = {{label, sizeof(label) - 1},
				{policy_id, strlen(policy_id)},
				{"", 1},
				{name, strlen(name)}};
	char *out = malloc(4 * ((sizeof(mac) + 2) / 3) + 1);

	if (!out || !sg_hmac_sha384(mac, s->psk_key, sizeof(s->psk_key), iov, 4)) {
		free(out);
		return NULL;
	}
	srv_b64url(out, mac, sizeof(mac));
	sg_memzero(mac, sizeof(mac));
	return out;
}

/* ---- policies ------------------------------------------------------------------------------ */

#define POLICY_COLS                                                                                \
	"id, name, description, version, enabled, priority, applies_to, topology, tunnels, "       \
	"warnings, created_at, updated_at"
#define POLICY_KINDS "sssibijjjjii"

static json_t *policy_get(struct sg_db_conn *c, const char *id)
{
	struct sg_db_res *res = NULL;
	const char *p[] = {id};
	json_t *j = NULL;

	if (sg_db_query(c, &res, "SELECT " POLICY_COLS " FROM policies WHERE id = $1", 1, p) == 1)
		j = srv_row_json(res, 0, POLICY_KINDS);
	sg_db_res_free(res);
	return j;
}

void h_policies_list(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	const char *p[3];
	int n = 0, en = api_query_bool(r->route, r, "enabled");
	char where[64] = "";

	if (en >= 0) {
		p[n++] = en ? "1" : "0";
		snprintf(where, sizeof(where), " AND enabled = $1");
	}
	srv_list_page(s, out, "policies", POLICY_COLS, POLICY_KINDS, where, "priority DESC, name",
		      p, n, srv_limit(r), srv_offset(r));
}

void h_policies_get(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct sg_db_conn *c = sg_db_acquire(s->db);
	json_t *j = policy_get(c, r->params[0]);

	sg_db_release(c);
	if (!j) {
		srv_error(out, 404, NULL, "no such policy");
		return;
	}
	srv_json(out, 200, j);
}

/* The 422 of a policy with problems: a summary naming the first, and every one in errors. */
static void refuse_policy(struct srv_resp *out, json_t *errors, json_t *warnings)
{
	json_t *first = json_array_get(errors, 0);
	char detail[512];

	snprintf(detail, sizeof(detail), "the policy has %zu problem%s; the first: %s: %s",
		 json_array_size(errors), json_array_size(errors) == 1 ? "" : "s",
		 jstr(first, "field"), jstr(first, "detail"));
	srv_problems(out, 422, detail, errors, warnings);
}

struct policy_ctx {
	struct srv_req *r;
	const char *id;
	json_t *pol;	  /* the whole policy after the change (checked) */
	json_t *tunnels;  /* stored form */
	json_t *secrets;  /* stored form */
	json_t *warnings; /* stored with it */
	int64_t version;
	bool create;
	int status;
	char why[160];
	json_t *result;
};

static int policy_write_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct policy_ctx *x = ctx;
	json_t *topo = json_object_get(x->pol, "topology");
	char *applies = jtext(json_object_get(x->pol, "applies_to"));
	char *tunnels = jtext(x->tunnels), *secrets = jtext(x->secrets);
	char *warnings = jtext(x->warnings), *topology = json_is_object(topo) ? jtext(topo) : NULL;
	char now[24], ver[24], prio[24];
	const char *name = jstr(x->pol, "name");
	int rc = SG_ENOMEM;

	(void)s;
	if (!applies || !tunnels || !secrets || !warnings || (json_is_object(topo) && !topology))
		goto out;
	srv_i64(now, srv_now());
	srv_i64(ver, x->version);
	srv_i64(prio, json_integer_value(json_object_get(x->pol, "priority")));
	{
		const char *p[] = {x->id,
				   name,
				   jstr(x->pol, "description") ? jstr(x->pol, "description") : "",
				   ver,
				   json_is_false(json_object_get(x->pol, "enabled")) ? "0" : "1",
				   prio,
				   applies,
				   tunnels,
				   secrets,
				   topology,
				   warnings,
				   now,
				   x->r->who.user_id[0] ? x->r->who.user_id : NULL};

		if (x->create)
			rc = sg_db_exec(c,
					"INSERT INTO policies (id, name, description, version, "
					"enabled, priority, applies_to, tunnels, secrets, topology, "
					"warnings, created_at, updated_at, created_by) VALUES ($1, $2, "
					"$3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13)",
					13, p);
		else
			rc = sg_db_exec(c,
					"UPDATE policies SET name = $2, description = $3, version = "
					"$4, enabled = $5, priority = $6, applies_to = $7, tunnels = "
					"$8, secrets = $9, topology = $10, warnings = $11, updated_at "
					"= $12 WHERE id = $1",
					12, p);
	}
	if (rc == SG_EEXIST) {
		x->status = 409;
		snprintf(x->why, sizeof(x->why), "a policy named \"%.64s\" exists", name);
		goto out;
	}
	if (rc < 0)
		goto out;
	if (rc == 0) {
		x->status = 404;
		snprintf(x->why, sizeof(x->why), "no such policy");
		rc = SG_ENOENT;
		goto out;
	}
	{
		json_t *d = json_pack("{s:s,s:I,s:i,s:s?}", "name", name, "version",
				      (json_int_t)x->version, "tunnels",
				      (int)json_array_size(x->tunnels), "topology",
				      json_is_object(topo) ? jstr(topo, "type") : NULL);

		rc = srv_audit(c, x->r, x->create ? "policy.created" : "policy.updated", "policy",
			       x->id, name, x->create ? "create" : "update", d);
		json_decref(d);
	}
	if (rc)
		goto out;
	x->result = policy_get(c, x->id);
	rc = x->result ? 0 : SG_ENOMEM;
out:
	free(applies);
	free(tunnels);
	free(warnings);
	free(topology);
	if (secrets) {
		sg_memzero(secrets, strlen(secrets));
		free(secrets);
	}
	return rc;
}

/* Checks pol, seals its secrets (keeping old_secrets of tunnels sent without one), writes it.
 * Takes no ownership. */
static void policy_save(struct srv *s, struct srv_req *r, struct srv_resp *out, json_t *pol,
			json_t *old_secrets, const char *id, int64_t version, bool create)
{
	struct sg_db_conn *c = sg_db_acquire(s->db);
	struct pol_lookup lk = {
	    .peer_exists = peer_exists, .client_exists = client_exists, .ctx = c};
	struct cert_peers cp = {0};
	json_t *errors = json_array(), *warnings = json_array(), *t;
	struct seal_ctx sc = {s, id};
	struct policy_ctx x = {.r = r, .id = id, .pol = pol, .version = version, .create = create,
			       .status = 500};
	size_t i;
	int rc;

	/* A tunnel sent without its secret keeps the stored one (by name). */
	json_array_foreach(json_object_get(pol, "tunnels"), i, t)
	{
		const char *key = jstr(t, "name") ? jstr(t, "name") : "";

		if (json_is_object(t) && !jhas(t, "secret") && jstr(old_secrets, key))
			json_object_set_new(t, "has_secret", json_true());
	}
	if (!errors || !warnings)
		goto oom;
	if (!json_is_object(json_object_get(pol, "topology")))
		json_object_set_new(pol, "topology", json_null());
	if (!jhas(pol, "applies_to"))
		json_object_set_new(pol, "applies_to", json_array());
	if (!jhas(pol, "tunnels"))
		json_object_set_new(pol, "tunnels", json_array());
	if (!jhas(pol, "priority"))
		json_object_set_new(pol, "priority", json_integer(100));
	if (names_cert(pol)) {
		rc = cert_peers_load(c, &cp);
		if (rc == SG_ENOMEM)
			goto oom;
		if (rc) {
			srv_dberr(out, c, rc);
			goto out;
		}
		lk.peers = cp.peers;
		lk.npeers = cp.n;
	}
	if (pol_check(pol, &lk, errors, warnings)) {
		refuse_policy(out, errors, warnings);
		errors = warnings = NULL;
		goto out;
	}
	x.tunnels = pol_split_secrets(json_object_get(pol, "tunnels"), old_secrets, seal_cb, &sc,
				      &x.secrets);
	if (!x.tunnels)
		goto oom;
	x.warnings = warnings;
	rc = srv_tx(s, c, policy_write_tx, &x, false);
	if (rc && (x.status == 409 || x.status == 404))
		srv_error(out, x.status, x.status == 409 ? "name" : NULL, "%s", x.why);
	else if (rc)
		srv_dberr(out, c, rc);
	else {
		srv_json(out, create ? 201 : 200, x.result);
		x.result = NULL;
	}
	goto out;
oom:
	srv_error(out, 503, NULL, "out of memory");
out:
	json_decref(x.result);
	json_decref(x.tunnels);
	json_decref(x.secrets);
	json_decref(errors);
	json_decref(warnings);
	cert_peers_free(&cp);
	sg_db_release(c);
}

void h_policies_create(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	char id[SRV_ID_LEN + 1];

	srv_uuid(id);
	policy_save(s, r, out, r->json, NULL, id, 1, true);
}

void h_policies_update(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct sg_db_conn *c = sg_db_acquire(s->db);
	struct sg_db_res *res = NULL;
	const char *p[] = {r->params[0]};
	json_t *pol = NULL, *secrets = NULL;
	int64_t version;
	int rc;

	rc = sg_db_query(c, &res,
			 "SELECT " POLICY_COLS ", secrets FROM policies WHERE id = $1", 1, p);
	if (rc < 0)
		srv_dberr(out, c, rc);
	sg_db_release(c);
	if (rc < 0)
		goto out;
	if (rc != 1) {
		srv_error(out, 404, NULL, "no such policy");
		goto out;
	}
	pol = srv_row_json(res, 0, POLICY_KINDS);
	secrets = json_loads(sg_db_res_get(res, 0, 12), 0, NULL);
	version = srv_res_i64(res, 0, 3) + 1;
	/* The stored policy, with the fields given replacing its own. */
	json_object_del(pol, "warnings");
	json_object_del(pol, "created_at");
	json_object_del(pol, "updated_at");
	json_object_del(pol, "version");
	json_object_update(pol, r->json);
	policy_save(s, r, out, pol, secrets, r->params[0], version, false);
out:
	sg_db_res_free(res);
	json_decref(pol);
	json_decref(secrets);
}

static int policy_delete_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct srv_req *r = ctx;
	struct sg_db_res *res = NULL;
	const char *p[] = {r->params[0]};
	char name[128];
	int rc;

	(void)s;
	rc = sg_db_query(c, &res, "SELECT name FROM policies WHERE id = $1", 1, p);
	if (rc < 0)
		return rc;
	if (rc != 1) {
		sg_db_res_free(res);
		return SG_ENOENT;
	}
	snprintf(name, sizeof(name), "%s", sg_db_res_get(res, 0, 0));
	sg_db_res_free(res);
	rc = sg_db_exec(c, "DELETE FROM policies WHERE id = $1", 1, p);
	if (rc < 0)
		return rc;
	return srv_audit(c, r, "policy.deleted", "policy", r->params[0], name, "delete", NULL);
}

void h_policies_delete(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct sg_db_conn *c = sg_db_acquire(s->db);
	int rc = srv_tx(s, c, policy_delete_tx, r, false);

	if (rc == SG_ENOENT)
		srv_error(out, 404, NULL, "no such policy");
	else if (rc)
		srv_dberr(out, c, rc);
	else
		srv_body(out, 204, "", "", 0, NULL);
	sg_db_release(c);
}

/* ---- enrolment tokens ---------------------------------------------------------------------- */

#define ENROLL_COLS                                                                                \
	"id, name, tags, client_id, created_by, expires_at, used_at, agent_id, revoked, "          \
	"created_at"
#define ENROLL_KINDS "sslssiisbi"

struct enroll_ctx {
	struct srv_req *r;
	char id[SRV_ID_LEN + 1], hash[97];
	const char *name, *client_id;
	char *tags;
	int64_t expires_at;
	bool no_client;
	json_t *result;
};

static int enroll_create_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct enroll_ctx *x = ctx;
	struct sg_db_res *res = NULL;
	char exp[24], now[24];
	const char *p[] = {x->id,
			   x->hash,
			   x->name,
			   x->tags,
			   x->client_id,
			   x->r->who.user_id[0] ? x->r->who.user_id : NULL,
			   srv_i64(exp, x->expires_at),
			   srv_i64(now, srv_now())};
	int rc;

	(void)s;
	if (x->client_id && !client_exists(c, x->client_id)) {
		x->no_client = true;
		return SG_ENOENT;
	}
	rc = sg_db_exec(c,
			"INSERT INTO enrollment_tokens (id, token_hash, name, tags, client_id, "
			"created_by, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, "
			"$8)",
			8, p);
	if (rc < 0)
		return rc;
	{
		json_t *d = json_pack("{s:s?,s:s,s:s?,s:I}", "name", x->name, "tags", x->tags,
				      "client_id", x->client_id, "expires_at",
				      (json_int_t)x->expires_at);

		rc = srv_audit(c, x->r, "enrollment_token.created", "enrollment_token", x->id,
			       x->name, "create", d);
		json_decref(d);
	}
	if (rc)
		return rc;
	rc = sg_db_query(c, &res, "SELECT " ENROLL_COLS " FROM enrollment_tokens WHERE id = $1",
			 1, p);
	if (rc == 1)
		x->result = srv_row_json(res, 0, ENROLL_KINDS);
	sg_db_res_free(res);
	return rc < 0 ? rc : x->result ? 0 : SG_ENOMEM;
}

void h_enroll_create(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct enroll_ctx x = {.r = r};
	struct sg_db_conn *c;
	const char *why = NULL;
	char token[64];
	json_t *tags = json_object_get(r->json, "tags");
	int64_t hours = jhas(r->json, "expires_in_hours")
			    ? json_integer_value(json_object_get(r->json, "expires_in_hours"))
			    : ENROLL_TTL_DEFAULT_H;
	int rc;

	x.tags = tag_list(tags, &why);
	if (!x.tags) {
		srv_error(out, 400, "tags", "%s", why);
		return;
	}
	x.name = jstr(r->json, "name");
	x.client_id = jstr(r->json, "client_id");
	x.expires_at = srv_now() + hours * 3600;
	srv_uuid(x.id);
	srv_new_token(token, "sge_");
	srv_token_hash(x.hash, token);
	c = sg_db_acquire(s->db);
	rc = srv_tx(s, c, enroll_create_tx, &x, false);
	if (rc && x.no_client) {
		srv_error(out, 404, "client_id", "no such client");
	} else if (rc) {
		srv_dberr(out, c, rc);
	} else {
		json_object_set_new(x.result, "token", json_string(token));
		srv_json(out, 201, x.result);
		x.result = NULL;
	}
	sg_memzero(token, sizeof(token));
	json_decref(x.result);
	free(x.tags);
	sg_db_release(c);
}

void h_enroll_list(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	const char *p[2];

	srv_list_page(s, out, "enrollment_tokens", ENROLL_COLS, ENROLL_KINDS, "",
		      "created_at DESC, id", p, 0, srv_limit(r), srv_offset(r));
}

static int enroll_delete_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct srv_req *r = ctx;
	const char *p[] = {r->params[0]};
	int rc;

	(void)s;
	rc = sg_db_exec(c,
			"UPDATE enrollment_tokens SET revoked = 1 WHERE id = $1 AND revoked = 0 "
			"AND used_at IS NULL",
			1, p);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return SG_ENOENT;
	return srv_audit(c, r, "enrollment_token.revoked", "enrollment_token", r->params[0], NULL,
			 "revoke", NULL);
}

void h_enroll_delete(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct sg_db_conn *c = sg_db_acquire(s->db);
	int rc = srv_tx(s, c, enroll_delete_tx, r, false);

	if (rc == SG_ENOENT)
		srv_error(out, 404, NULL, "no such unused enrolment token");
	else if (rc)
		srv_dberr(out, c, rc);
	else
		srv_body(out, 204, "", "", 0, NULL);
	sg_db_release(c);
}

/* ---- peers --------------------------------------------------------------------------------- */

#define PEER_KINDS "ssslssslssslsbbsiii"

/* The columns of a peer; online is computed against the poll interval. */
static void peer_cols(struct srv *s, char *buf, size_t len, const char *prefix)
{
	snprintf(buf, len,
		 "%1$sid, %1$sname, %1$spublic_key, %1$stags, %1$sclient_id, %1$sinterface, "
		 "%1$saddress, %1$ssubnets, %1$shostname, %1$splatform, %1$sversion, "
		 "%1$sbackends, %1$sstate, CASE WHEN %1$srevoked = 0 AND %1$slast_seen >= %2$lld "
		 "THEN 1 ELSE 0 END AS online, %1$srevoked, %1$sapplied_revision, "
		 "%1$slast_seen, %1$screated_at, %1$supdated_at",
		 prefix, (long long)(srv_now() - (int64_t)ONLINE_POLLS * s->agent_poll));
}

static json_t *peer_get(struct srv *s, struct sg_db_conn *c, const char *id, bool detail)
{
	struct sg_db_res *res = NULL;
	const char *p[] = {id};
	char cols[768], sql[1024];
	json_t *j = NULL;

	peer_cols(s, cols, sizeof(cols), "");
	snprintf(sql, sizeof(sql), "SELECT %s%s FROM agents WHERE id = $1", cols,
		 detail ? ", report" : "");
	if (sg_db_query(c, &res, sql, 1, p) == 1) {
		j = srv_row_json(res, 0, detail ? PEER_KINDS "j" : PEER_KINDS);
	}
	sg_db_res_free(res);
	return j;
}

#define END_COLS                                                                                   \
	"a.id AS peer_id, a.name AS peer_name, t.name, t.type, t.policy_id, t.backend, t.state, "  \
	"t.reason, t.bytes_in, t.bytes_out, t.packets_in, t.packets_out, t.rekeys, t.restarts, "   \
	"t.established_at, t.updated_at"
#define END_KINDS "ssssssssiiiiiiii"

void h_peers_list(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	const char *p[4];
	char where[160] = "", cols[768];
	int n = 0, rev = api_query_bool(r->route, r, "revoked");

	if (srv_query(r, "tag")) {
		p[n++] = srv_query(r, "tag");
		snprintf(where + strlen(where), sizeof(where) - strlen(where),
			 " AND ',' || tags || ',' LIKE '%%,' || $%d || ',%%'", n);
	}
	if (rev >= 0) {
		p[n++] = rev ? "1" : "0";
		snprintf(where + strlen(where), sizeof(where) - strlen(where), " AND revoked = $%d",
			 n);
	}
	peer_cols(s, cols, sizeof(cols), "");
	srv_list_page(s, out, "agents", cols, PEER_KINDS, where, "created_at, id", p, n,
		      srv_limit(r), srv_offset(r));
}

void h_peers_get(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct sg_db_conn *c;
	struct sg_db_res *res = NULL;
	const char *p[] = {r->params[0]};
	json_t *j, *ends;
	int rc;

	if (r->who.kind == PRINCIPAL_AGENT && strcmp(r->who.id, r->params[0])) {
		srv_error(out, 403, NULL, "an agent sees only itself");
		return;
	}
	c = sg_db_acquire(s->db);
	j = peer_get(s, c, r->params[0], true);
	if (!j) {
		srv_error(out, 404, NULL, "no such peer");
		goto out;
	}
	rc = sg_db_query(c, &res,
			 "SELECT " END_COLS " FROM agent_tunnels t JOIN agents a ON a.id = "
			 "t.agent_id WHERE t.agent_id = $1 ORDER BY t.name",
			 1, p);
	if (rc < 0) {
		json_decref(j);
		srv_dberr(out, c, rc);
		goto out;
	}
	ends = json_array();
	for (int i = 0; i < rc; i++)
		json_array_append_new(ends, srv_row_json(res, i, END_KINDS));
	json_object_set_new(j, "tunnels", ends);
	if (!json_is_object(json_object_get(j, "report")))
		json_object_set_new(j, "report", json_null());
	srv_json(out, 200, j);
out:
	sg_db_res_free(res);
	sg_db_release(c);
}

/* ---- registration -------------------------------------------------------------------------- */

struct reg_ctx {
	struct srv_req *r;
	char id[SRV_ID_LEN + 1], hash[97];
	char *subnets, *backends;
	int status;
	char why[160];
	const char *field;
	json_t *result;
};

static int reg_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct reg_ctx *x = ctx;
	json_t *b = x->r->json;
	struct sg_db_res *res = NULL;
	const char *name = jstr(b, "name"), *pub = jstr(b, "public_key");
	char now[24], tid[SRV_ID_LEN + 1], *tags = NULL, *client = NULL, *gateway = NULL;
	char gw_name[33];
	int64_t t = srv_now();
	int rc;

	srv_i64(now, t);
	{
		const char *p[] = {x->hash};

		rc = sg_db_query(c, &res,
				 "SELECT id, tags, client_id, expires_at, used_at, revoked, "
				 "gateway_id FROM enrollment_tokens WHERE token_hash = $1",
				 1, p);
	}
	if (rc < 0)
		return rc;
	if (rc != 1) {
		x->status = 401;
		snprintf(x->why, sizeof(x->why), "unknown enrolment token");
		rc = SG_EAUTH;
		goto out;
	}
	if (sg_db_res_get(res, 0, 4) || srv_res_i64(res, 0, 5) || srv_res_i64(res, 0, 3) <= t) {
		x->status = 410;
		snprintf(x->why, sizeof(x->why), "the enrolment token was %s",
			 sg_db_res_get(res, 0, 4) ? "used already"
			 : srv_res_i64(res, 0, 5) ? "revoked"
						  : "valid until it expired");
		rc = SG_EAUTH;
		goto out;
	}
	snprintf(tid, sizeof(tid), "%s", sg_db_res_get(res, 0, 0));
	tags = strdup(sg_db_res_get(res, 0, 1) ? sg_db_res_get(res, 0, 1) : "");
	client = sg_db_res_get(res, 0, 2) ? strdup(sg_db_res_get(res, 0, 2)) : NULL;
	gateway = sg_db_res_get(res, 0, 6) ? strdup(sg_db_res_get(res, 0, 6)) : NULL;
	rc = sg_db_res_get(res, 0, 6) && !gateway;
	sg_db_res_free(res);
	res = NULL;
	if (!tags || rc) {
		rc = SG_ENOMEM;
		goto out;
	}
	/* A gateway's token (routes_gateways.c): the peer is the gateway's credential. */
	if (gateway) {
		rc = srv_gateway_enrolling(s, c, x->r, gateway, gw_name);
		if (rc)
			goto out;
		name = gw_name;
	}
	if (exists(c, "SELECT 1 FROM agents WHERE name = $1 AND revoked = 0", name)) {
		x->status = 409;
		x->field = "name";
		snprintf(x->why, sizeof(x->why), "a peer named \"%s\" exists", name);
		rc = SG_EEXIST;
		goto out;
	}
	if (exists(c, "SELECT 1 FROM agents WHERE public_key = $1 AND revoked = 0", pub)) {
		x->status = 409;
		x->field = "public_key";
		snprintf(x->why, sizeof(x->why), "another peer has this public key");
		rc = SG_EEXIST;
		goto out;
	}
	{
		const char *p[] = {x->id,
				   name,
				   pub,
				   tags,
				   client,
				   jstr(b, "interface"),
				   jstr(b, "address"),
				   x->subnets ? x->subnets : "",
				   jstr(b, "hostname"),
				   jstr(b, "platform"),
				   jstr(b, "version"),
				   x->backends ? x->backends : "",
				   tid,
				   now};

		rc = sg_db_exec(c,
				"INSERT INTO agents (id, name, public_key, tags, client_id, "
				"interface, address, subnets, hostname, platform, version, "
				"backends, enrollment_token_id, created_at, updated_at) VALUES ($1, "
				"$2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)",
				14, p);
	}
	if (rc < 0)
		goto out;
	{
		const char *p[] = {tid, now, x->id};

		/* Single use: a second registration racing this one finds it used. */
		rc = sg_db_exec(c,
				"UPDATE enrollment_tokens SET used_at = $2, agent_id = $3 WHERE id = "
				"$1 AND used_at IS NULL",
				3, p);
	}
	if (rc == 0) {
		x->status = 410;
		snprintf(x->why, sizeof(x->why), "the enrolment token was used already");
		rc = SG_EAUTH;
		goto out;
	}
	if (rc < 0)
		goto out;
	if (gateway && (rc = srv_gateway_enrolled(c, x->r, gateway, x->id)))
		goto out;
	{
		json_t *d = json_pack("{s:s,s:s,s:s?}", "enrollment_token_id", tid, "tags", tags,
				      "client_id", client);

		rc = srv_audit(c, x->r, "agent.registered", "agent", x->id, name, "register", d);
		json_decref(d);
	}
	if (rc)
		goto out;
	x->result = peer_get(s, c, x->id, false);
	rc = x->result ? 0 : SG_ENOMEM;
out:
	sg_db_res_free(res);
	free(tags);
	free(client);
	free(gateway);
	return rc;
}

static char *backend_list(json_t *arr)
{
	size_t i, n = 0, cap = json_array_size(arr) * 16 + 1;
	json_t *e;
	char *out = calloc(1, cap);

	if (!out)
		return NULL;
	json_array_foreach(arr, i, e)
	n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? "," : "", json_string_value(e));
	return out;
}

void h_peers_register(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct reg_ctx x = {.r = r, .status = 500};
	struct sg_db_conn *c;
	const char *why = NULL, *name = jstr(r->json, "name");
	int rc;

	if (!pol_peer_name_ok(name)) {
		srv_error(out, 400, "name",
			  "a peer name is 1 to 32 letters, digits or '-', not starting with '-'");
		return;
	}
	if (jhas(r->json, "interface") && !ifname_ok(jstr(r->json, "interface"))) {
		srv_error(out, 400, "interface", "not an interface name");
		return;
	}
	if (srv_ip_limited(s, r->source_ip)) {
		srv_error(out, 429, NULL, "too many failed attempts from this address");
		srv_resp_header(out, "Retry-After", "60");
		return;
	}
	{
		/* Anyone may try: at most a few registrations per address and second. */
		int retry;
		char ra[16];

		if (!srv_rate_allow(SRV_RATE_REGISTER, r->source_ip, &retry)) {
			snprintf(ra, sizeof(ra), "%d", retry);
			srv_error(out, 429, NULL, "too many registrations from this address");
			srv_resp_header(out, "Retry-After", ra);
			return;
		}
	}
	if (jhas(r->json, "subnets")) {
		x.subnets = srv_prefix_list(json_object_get(r->json, "subnets"), false, &why);
		if (!x.subnets) {
			srv_error(out, 400, "subnets", "%s", why);
			return;
		}
	}
	x.backends = backend_list(json_object_get(r->json, "backends"));
	srv_uuid(x.id);
	srv_token_hash(x.hash, jstr(r->json, "token"));
	c = sg_db_acquire(s->db);
	rc = srv_tx(s, c, reg_tx, &x, false);
	if (rc && x.status != 500) {
		if (x.status == 401)
			srv_ip_failed(s, r->source_ip);
		srv_error(out, x.status, x.status == 401 || x.status == 410 ? "token" : x.field,
			  "%s", x.why);
	} else if (rc) {
		srv_dberr(out, c, rc);
	} else {
		srv_log(SG_LOG_INFO, "agent_registered", "agent=%s name=%s src=%s", x.id, name,
			r->source_ip);
		srv_json(out, 201, x.result);
		x.result = NULL;
	}
	json_decref(x.result);
	free(x.subnets);
	free(x.backends);
	sg_db_release(c);
}

/* ---- agent sessions ------------------------------------------------------------------------- */

void h_agent_auth(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	static const char label[] = "secureguard agent auth v1";
	const char *pub64 = jstr(r->json, "public_key"), *ch64 = jstr(r->json, "challenge");
	const char *pr64 = jstr(r->json, "proof"), *reason = NULL;
	uint8_t pub[34], ch[34], proof[SG_SHA384_LEN + 2];
	struct sg_db_conn *c;
	struct sg_db_res *res = NULL;
	char aid[SRV_ID_LEN + 1] = "", token[64] = "", hash[97], now[24], exp[24], sid[37];
	bool revoked = false;
	int64_t t = srv_now();
	int rc;

	if (srv_b64_decode(pub, sizeof(pub), pub64, strlen(pub64)) != 32 ||
	    srv_b64url_decode(ch, sizeof(ch), ch64, strlen(ch64)) != SRV_CHALLENGE_LEN ||
	    srv_b64url_decode(proof, sizeof(proof), pr64, strlen(pr64)) != SG_SHA384_LEN) {
		srv_error(out, 400, NULL, "public_key, challenge or proof does not decode");
		return;
	}
	if (srv_ip_limited(s, r->source_ip)) {
		srv_error(out, 429, NULL, "too many failed attempts from this address");
		srv_resp_header(out, "Retry-After", "60");
		return;
	}
	c = sg_db_acquire(s->db);
	{
		const char *p[] = {pub64};

		/* A live agent with this key first; else a revoked one, to say so. */
		rc = sg_db_query(c, &res,
				 "SELECT id, name, revoked FROM agents WHERE public_key = $1 ORDER BY "
				 "revoked, created_at DESC LIMIT 1",
				 1, p);
	}
	if (rc < 0) {
		srv_dberr(out, c, rc);
		goto out;
	}
	reason = srv_key_proof(s, rc == 1, pub, ch, proof, label);
	if (rc == 1) {
		snprintf(aid, sizeof(aid), "%s", sg_db_res_get(res, 0, 0));
		revoked = srv_res_i64(res, 0, 2) != 0;
		snprintf(r->who.name, sizeof(r->who.name), "agent:%s", sg_db_res_get(res, 0, 1));
	}
	if (!reason && revoked)
		reason = "this agent has been revoked";
	if (reason && !strcmp(reason, SRV_LIVE_AWAY)) {
		srv_error(out, 503, NULL, "%s", reason);
		srv_retry_after(out, 1);
		goto out;
	}
	if (reason) {
		json_t *d = json_pack("{s:s,s:s}", "reason", reason, "public_key", pub64);

		if (!revoked)
			srv_ip_failed(s, r->source_ip);
		rc = sg_db_begin(c);
		if (!rc)
			rc = srv_audit(c, r, "agent.auth", "agent", aid[0] ? aid : NULL,
				       aid[0] ? r->who.name + 6 : NULL, "failure", d);
		if (!rc)
			rc = sg_db_commit(c);
		if (rc)
			sg_db_rollback(c);
		json_decref(d);
		if (revoked && !strcmp(reason, "this agent has been revoked"))
			srv_error(out, 403, NULL, "%s", reason);
		else
			srv_error(out, 401, NULL, "agent authentication failed: %s", reason);
		goto out;
	}
	r->who.kind = PRINCIPAL_AGENT;
	snprintf(r->who.id, sizeof(r->who.id), "%s", aid);
	srv_new_token(token, "sga_");
	srv_token_hash(hash, token);
	srv_uuid(sid);
	srv_i64(exp, t + s->session_ttl);
	srv_i64(now, t);
	for (int attempt = 0; attempt < 20; attempt++) {
		const char *p[] = {sid, aid, hash, exp, now};
		const char *d[] = {aid, now};

		rc = sg_db_begin(c);
		/* Expired sessions of this agent go as it gets a new one. */
		if (!rc)
			rc = srv_neg(sg_db_exec(c,
						"DELETE FROM agent_sessions WHERE agent_id = $1 AND "
						"expires_at <= $2",
						2, d));
		if (!rc)
			rc = srv_neg(sg_db_exec(c,
						"INSERT INTO agent_sessions (id, agent_id, token_hash, "
						"expires_at, created_at) VALUES ($1, $2, $3, $4, $5)",
						5, p));
		if (!rc)
			rc = srv_audit(c, r, "agent.auth", "agent", aid, r->who.name + 6, "success",
				       NULL);
		if (!rc)
			rc = sg_db_commit(c);
		if (rc != SG_EAGAIN)
			break;
		sg_db_rollback(c);
	}
	if (rc) {
		sg_db_rollback(c);
		srv_dberr(out, c, rc);
		goto out;
	}
	srv_json(out, 200,
		 json_pack("{s:s,s:s,s:i,s:s}", "session_token", token, "token_type", "Bearer",
			   "expires_in", s->session_ttl, "agent_id", aid));
out:
	sg_memzero(token, sizeof(token));
	sg_db_res_free(res);
	sg_db_release(c);
}

/* ---- peer changes -------------------------------------------------------------------------- */

struct peer_ctx {
	struct srv_req *r;
	char *tags, *subnets;
	int status;
	const char *field;
	char why[160];
	json_t *result;
};

static int peer_update_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct peer_ctx *x = ctx;
	json_t *b = x->r->json;
	const char *id = x->r->params[0];
	char sql[512] = "UPDATE agents SET updated_at = $1", now[24], name[80] = "";
	const char *p[8];
	int n = 1, rc;

	if (!exists(c, "SELECT 1 FROM agents WHERE id = $1 AND revoked = 0", id)) {
		x->status = 404;
		snprintf(x->why, sizeof(x->why), "no such peer");
		return SG_ENOENT;
	}
	p[0] = srv_i64(now, srv_now());
#define SETCOL(col, val)                                                                           \
	do {                                                                                       \
		p[n++] = (val);                                                                    \
		snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), ", " col " = $%d", n);      \
	} while (0)
	if (json_object_get(b, "name"))
		SETCOL("name", jstr(b, "name"));
	if (x->tags)
		SETCOL("tags", x->tags);
	if (json_object_get(b, "address"))
		SETCOL("address", jstr(b, "address"));
	if (x->subnets)
		SETCOL("subnets", x->subnets);
	if (json_object_get(b, "client_id")) {
		const char *cid = jstr(b, "client_id");

		if (cid && !client_exists(c, cid)) {
			x->status = 404;
			x->field = "client_id";
			snprintf(x->why, sizeof(x->why), "no such client");
			return SG_ENOENT;
		}
		SETCOL("client_id", cid);
	}
	if (json_object_get(b, "interface"))
		SETCOL("interface", jstr(b, "interface"));
#undef SETCOL
	p[n++] = id;
	snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), " WHERE id = $%d", n);
	rc = sg_db_exec(c, sql, n, p);
	if (rc == SG_EEXIST) {
		x->status = 409;
		x->field = "name";
		snprintf(x->why, sizeof(x->why), "another peer has this name");
		return rc;
	}
	if (rc < 0)
		return rc;
	x->result = peer_get(s, c, id, false);
	if (!x->result)
		return SG_ENOMEM;
	snprintf(name, sizeof(name), "%s", jstr(x->result, "name"));
	{
		json_t *d = json_deep_copy(b);

		rc = srv_audit(c, x->r, "agent.updated", "agent", id, name, "update", d);
		json_decref(d);
	}
	return rc;
}

void h_peers_update(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct peer_ctx x = {.r = r, .status = 500};
	struct sg_db_conn *c;
	const char *why = NULL;
	int rc;

	if (jhas(r->json, "name") && !pol_peer_name_ok(jstr(r->json, "name"))) {
		srv_error(out, 400, "name",
			  "a peer name is 1 to 32 letters, digits or '-', not starting with '-'");
		return;
	}
	if (json_object_get(r->json, "name") && !jhas(r->json, "name")) {
		srv_error(out, 400, "name", "must be a string, not null");
		return;
	}
	if (jhas(r->json, "tags")) {
		x.tags = tag_list(json_object_get(r->json, "tags"), &why);
		if (!x.tags) {
			srv_error(out, 400, "tags", "%s", why);
			return;
		}
	}
	if (jhas(r->json, "subnets")) {
		x.subnets = srv_prefix_list(json_object_get(r->json, "subnets"), false, &why);
		if (!x.subnets) {
			free(x.tags);
			srv_error(out, 400, "subnets", "%s", why);
			return;
		}
	}
	c = sg_db_acquire(s->db);
	rc = srv_tx(s, c, peer_update_tx, &x, false);
	if (rc && x.status != 500) {
		srv_error(out, x.status, x.field, "%s", x.why);
	} else if (rc) {
		srv_dberr(out, c, rc);
	} else {
		srv_json(out, 200, x.result);
		x.result = NULL;
	}
	json_decref(x.result);
	free(x.tags);
	free(x.subnets);
	sg_db_release(c);
}

static int peer_revoke_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct srv_req *r = ctx;
	struct sg_db_res *res = NULL;
	const char *p[] = {r->params[0], NULL};
	char now[24], name[64];
	int rc;

	(void)s;
	rc = sg_db_query(c, &res, "SELECT name FROM agents WHERE id = $1 AND revoked = 0", 1, p);
	if (rc < 0)
		return rc;
	if (rc != 1) {
		sg_db_res_free(res);
		return SG_ENOENT;
	}
	snprintf(name, sizeof(name), "%s", sg_db_res_get(res, 0, 0));
	sg_db_res_free(res);
	p[1] = srv_i64(now, srv_now());
	rc = sg_db_exec(c,
			"UPDATE agents SET revoked = 1, state = 'revoked', updated_at = $2 WHERE "
			"id = $1",
			2, p);
	if (rc >= 0)
		rc = sg_db_exec(c, "DELETE FROM agent_sessions WHERE agent_id = $1", 1, p);
	if (rc >= 0)
		rc = sg_db_exec(c, "DELETE FROM agent_tunnels WHERE agent_id = $1", 1, p);
	if (rc < 0)
		return rc;
	return srv_audit(c, r, "agent.revoked", "agent", r->params[0], name, "revoke", NULL);
}

void h_peers_delete(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct sg_db_conn *c = sg_db_acquire(s->db);
	int rc = srv_tx(s, c, peer_revoke_tx, r, false);

	if (rc == SG_ENOENT)
		srv_error(out, 404, NULL, "no such peer (or revoked already)");
	else if (rc)
		srv_dberr(out, c, rc);
	else {
		srv_log(SG_LOG_INFO, "agent_revoked", "agent=%s", r->params[0]);
		srv_body(out, 204, "", "", 0, NULL);
	}
	sg_db_release(c);
}

/* ---- configuration ------------------------------------------------------------------------- */

/* What every agent's configuration is computed from, read once per sync revision. */
struct snapshot {
	int64_t rev;
	int refs;
	json_t *policies;
	struct sg_db_res *res; /* the peers' strings point into it */
	struct pol_peer *peers; /* in name order (the expansion's) */
	size_t *by_id;		/* indexes of peers in id order */
	size_t npeers;
};

static pthread_mutex_t snap_lock = PTHREAD_MUTEX_INITIALIZER;
static struct snapshot *snap_cur;

static void snap_put(struct snapshot *sn)
{
	bool last;

	if (!sn)
		return;
	pthread_mutex_lock(&snap_lock);
	last = --sn->refs == 0;
	pthread_mutex_unlock(&snap_lock);
	if (!last)
		return;
	json_decref(sn->policies);
	sg_db_res_free(sn->res);
	free(sn->peers);
	free(sn->by_id);
	free(sn);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pol_peer *)a)->name, ((const struct pol_peer *)b)->name);
}

/* qsort has no context argument: the array the indexes point into, per thread. */
static _Thread_local const struct pol_peer *sort_base;

static int id_cmp(const void *a, const void *b)
{
	return strcmp(sort_base[*(const size_t *)a].id, sort_base[*(const size_t *)b].id);
}

/* The policies and live peers as of revision rev (read after rev, so never older). */
static int snap_load(struct sg_db_conn *c, int64_t rev, struct snapshot **out)
{
	struct snapshot *sn = calloc(1, sizeof(*sn));
	struct sg_db_res *pres = NULL;
	int rc;

	*out = NULL;
	if (!sn)
		return SG_ENOMEM;
	sn->rev = rev;
	sn->refs = 1;
	rc = sg_db_query(c, &pres,
			 "SELECT id, name, version, enabled, priority, applies_to, topology, "
			 "tunnels, secrets FROM policies WHERE enabled = 1 ORDER BY priority DESC, "
			 "name",
			 0, NULL);
	if (rc < 0)
		goto fail;
	sn->policies = json_array();
	for (int i = 0; i < rc; i++)
		json_array_append_new(sn->policies, srv_row_json(pres, i, "ssibijjjj"));
	sg_db_res_free(pres);
	rc = sg_db_query(c, &sn->res,
			 "SELECT id, name, address, platform, tags, subnets FROM agents WHERE "
			 "revoked = 0",
			 0, NULL);
	if (rc < 0)
		goto fail;
	sn->npeers = (size_t)rc;
	sn->peers = calloc(sn->npeers ? sn->npeers : 1, sizeof(*sn->peers));
	sn->by_id = calloc(sn->npeers ? sn->npeers : 1, sizeof(*sn->by_id));
	if (!sn->peers || !sn->by_id) {
		rc = SG_ENOMEM;
		goto fail;
	}
	for (int i = 0; i < rc; i++) {
		sn->peers[i] = (struct pol_peer){
		    .id = sg_db_res_get(sn->res, i, 0),
		    .name = sg_db_res_get(sn->res, i, 1),
		    .address = sg_db_res_get(sn->res, i, 2),
		    .platform = sg_db_res_get(sn->res, i, 3),
		    .tags = sg_db_res_get(sn->res, i, 4),
		    .subnets = sg_db_res_get(sn->res, i, 5),
		};
	}
	/* Ordered by name for the expansion (a stable tunnel order), searched by id. */
	qsort(sn->peers, sn->npeers, sizeof(*sn->peers), name_cmp);
	for (size_t i = 0; i < sn->npeers; i++)
		sn->by_id[i] = i;
	sort_base = sn->peers;
	qsort(sn->by_id, sn->npeers, sizeof(*sn->by_id), id_cmp);
	*out = sn;
	return 0;
fail:
	json_decref(sn->policies);
	sg_db_res_free(sn->res);
	free(sn->peers);
	free(sn->by_id);
	free(sn);
	return rc;
}

static int snap_get(struct srv *s, struct sg_db_conn *c, struct snapshot **out)
{
	int64_t rev = sync_revision(c);
	struct snapshot *sn, *old = NULL;
	int rc;

	if (rev < 0)
		return (int)rev;
	pthread_mutex_lock(&snap_lock);
	if (snap_cur && snap_cur->rev == rev) {
		snap_cur->refs++;
		*out = snap_cur;
		pthread_mutex_unlock(&snap_lock);
		return 0;
	}
	pthread_mutex_unlock(&snap_lock);
	rc = snap_load(c, rev, &sn);
	if (rc)
		return rc;
	pthread_mutex_lock(&snap_lock);
	if (!snap_cur || snap_cur->rev <= rev) {
		old = snap_cur;
		snap_cur = sn;
		sn->refs++; /* the cache's reference */
	}
	pthread_mutex_unlock(&snap_lock);
	snap_put(old); /* the cache's reference to the one it replaced */
	*out = sn;
	return 0;
}

/* The index of peer id in sn->peers, or npeers. */
static size_t snap_find(const struct snapshot *sn, const char *id)
{
	size_t lo = 0, hi = sn->npeers;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(sn->peers[sn->by_id[mid]].id, id);

		if (!c)
			return sn->by_id[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return sn->npeers;
}

/* A WireGuard tunnel: the client's rendered configuration. false (with a problem) when it
 * cannot be rendered. */
static bool wg_tunnel(struct srv *s, struct sg_db_conn *c, json_t *t, json_t *problems)
{
	struct sg_db_res *res = NULL;
	const char *cid = jstr(t, "client_id"), *p[] = {cid};
	char why[160];
	int status = 0;
	char *conf;

	if (sg_db_query(c, &res, "SELECT network_id FROM clients WHERE id = $1", 1, p) != 1) {
		sg_db_res_free(res);
		json_array_append_new(problems, json_sprintf("wireguard tunnel %s: client %s is "
							     "gone",
							     jstr(t, "name"), cid));
		return false;
	}
	json_object_set_new(t, "network_id", json_string(sg_db_res_get(res, 0, 0)));
	sg_db_res_free(res);
	conf = srv_render_config(s, c, cid, &status, why, sizeof(why));
	if (!conf) {
		json_array_append_new(problems,
				      json_sprintf("wireguard tunnel %s: %s", jstr(t, "name"), why));
		return false;
	}
	json_object_set_new(t, "config", json_string(conf));
	srv_free_secret(conf);
	return true;
}

/* The last revision computed for each agent, by sync revision: a status report answers it
 * without computing the configuration again (the long poll that woke the agent just did).
 * Direct-mapped: a collision only costs a recomputation. */
#define REV_CACHE 4096
static struct {
	char id[SRV_ID_LEN + 1];
	int64_t sync;
	char rev[49];
} rev_cache[REV_CACHE];
static pthread_mutex_t rev_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t rev_slot(const char *id)
{
	uint64_t h = 1469598103934665603ull;

	for (const char *p = id; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	return (size_t)(h % REV_CACHE);
}

static void rev_put(const char *id, int64_t sync, const char *rev)
{
	size_t i = rev_slot(id);

	pthread_mutex_lock(&rev_lock);
	snprintf(rev_cache[i].id, sizeof(rev_cache[i].id), "%s", id);
	rev_cache[i].sync = sync;
	snprintf(rev_cache[i].rev, sizeof(rev_cache[i].rev), "%s", rev);
	pthread_mutex_unlock(&rev_lock);
}

static bool rev_get(const char *id, int64_t sync, char out[49])
{
	size_t i = rev_slot(id);
	bool hit;

	pthread_mutex_lock(&rev_lock);
	hit = !strcmp(rev_cache[i].id, id) && rev_cache[i].sync == sync;
	if (hit)
		memcpy(out, rev_cache[i].rev, 49);
	pthread_mutex_unlock(&rev_lock);
	return hit;
}

/* The configuration of agent id: tunnels, problems, revision. NULL with *status (404, 500). */
static json_t *agent_config(struct srv *s, struct sg_db_conn *c, const char *id, int *status)
{
	struct snapshot *sn = NULL;
	struct sg_db_res *res = NULL;
	const char *p[] = {id};
	struct pol_secrets sec = {open_cb, derive_cb, s};
	json_t *doc = NULL, *tunnels = NULL, *problems = json_array(), *t;
	uint8_t mac[SG_SHA384_LEN];
	char *text = NULL, rev[SG_SHA384_LEN + 1];
	size_t self, i;
	int rc;

	*status = 500;
	rc = sg_db_query(c, &res, "SELECT revoked, client_id, interface FROM agents WHERE id = $1",
			 1, p);
	if (rc != 1) {
		if (rc >= 0)
			*status = 404;
		goto out;
	}
	if (srv_res_i64(res, 0, 0)) {
		tunnels = json_array();
	} else {
		if (snap_get(s, c, &sn))
			goto out;
		self = snap_find(sn, id);
		tunnels = pol_expand(sn->policies, sn->peers, sn->npeers, self, &sec, problems);
		if (!tunnels)
			goto out;
		/* The bound client's interface comes first of the WireGuard ones. */
		if (sg_db_res_get(res, 0, 1)) {
			bool dup = false;

			json_array_foreach(tunnels, i, t)
			{
				if (jstr(t, "client_id") &&
				    !strcmp(jstr(t, "client_id"), sg_db_res_get(res, 0, 1)))
					dup = true;
			}
			if (!dup)
				json_array_insert_new(
				    tunnels, 0,
				    json_pack("{s:s,s:s,s:s}", "type", "wireguard", "name",
					      sg_db_res_get(res, 0, 2) ? sg_db_res_get(res, 0, 2)
								       : DEFAULT_IFNAME,
					      "client_id", sg_db_res_get(res, 0, 1)));
		}
		for (i = 0; i < json_array_size(tunnels);) {
			t = json_array_get(tunnels, i);
			if (jstr(t, "type") && !strcmp(jstr(t, "type"), "wireguard")) {
				if (!jhas(t, "name"))
					json_object_set_new(t, "name",
							    json_string(jstr(t, "interface")
									    ? jstr(t, "interface")
									    : DEFAULT_IFNAME));
				if (!wg_tunnel(s, c, t, problems)) {
					json_array_remove(tunnels, i);
					continue;
				}
			}
			i++;
		}
	}
	doc = json_pack("{s:s,s:i,s:O,s:O}", "peer_id", id, "poll_interval", s->agent_poll,
			"tunnels", tunnels, "problems", problems);
	if (doc && !srv_res_i64(res, 0, 0)) {
		/* A gateway's credential: its document too (routes_gateways.c). */
		json_t *gw = srv_gateway_agent_doc(s, c, id, json_object_get(doc, "problems"), &rc);

		if (rc) {
			json_decref(doc);
			doc = NULL;
			goto out;
		}
		if (gw)
			json_object_set_new(doc, "gateway", gw);
	}
	text = doc ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	if (!text) {
		json_decref(doc);
		doc = NULL;
		goto out;
	}
	{
		struct sg_iov iov = {text, strlen(text)};

		if (!sg_hmac_sha384(mac, s->etag_key, sizeof(s->etag_key), &iov, 1)) {
			json_decref(doc);
			doc = NULL;
			goto out;
		}
	}
	srv_hex(rev, mac, 24);
	json_object_set_new(doc, "revision", json_string(rev));
	if (sn)
		rev_put(id, sn->rev, rev);
out:
	if (text) {
		sg_memzero(text, strlen(text));
		free(text);
	}
	json_decref(tunnels);
	json_decref(problems);
	sg_db_res_free(res);
	snap_put(sn);
	return doc;
}

/* What an admin may see: no secrets, no private keys. */
static void strip_secrets(json_t *doc)
{
	json_t *t;
	size_t i;

	json_array_foreach(json_object_get(doc, "tunnels"), i, t)
	{
		json_object_del(t, "secret");
		json_object_del(t, "config");
	}
	srv_gateway_strip(doc);
}

void h_peers_config(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	const char *since = srv_query(r, "since");
	int64_t wait = api_query_int(r->route, r, "wait");
	struct sg_db_conn *c;
	json_t *doc;
	int status;

	if (r->who.kind == PRINCIPAL_AGENT && strcmp(r->who.id, r->params[0])) {
		srv_error(out, 403, NULL, "an agent gets only its own configuration");
		return;
	}
	c = sg_db_acquire(s->db);
	doc = agent_config(s, c, r->params[0], &status);
	sg_db_release(c);
	if (!doc) {
		if (status == 404)
			srv_error(out, 404, NULL, "no such peer");
		else
			srv_error(out, 503, NULL, "the configuration could not be computed; retry");
		return;
	}
	if (since && !strcmp(since, jstr(doc, "revision"))) {
		json_decref(doc);
		if (wait > 0 && !r->park_expired)
			srv_park(out, (int)wait * 1000);
		else
			srv_body(out, 204, "", "", 0, NULL);
		return;
	}
	if (r->who.kind != PRINCIPAL_AGENT)
		strip_secrets(doc);
	srv_json(out, 200, doc);
}

/* ---- status reports ------------------------------------------------------------------------ */

/* "192.0.2.1:51820" or "[2001:db8::1]:51820" into an address and a port; false otherwise. */
static bool split_endpoint(const char *ep, char ip[64], char port[8])
{
	const char *colon;
	size_t n;

	if (!ep)
		return false;
	if (ep[0] == '[') {
		const char *end = strchr(ep, ']');

		if (!end || end[1] != ':')
			return false;
		n = (size_t)(end - ep - 1);
		colon = end + 1;
		ep++;
	} else {
		colon = strrchr(ep, ':');
		if (!colon)
			return false;
		n = (size_t)(colon - ep);
	}
	if (!n || n >= 64 || strlen(colon + 1) >= 8 || !colon[1])
		return false;
	memcpy(ip, ep, n);
	ip[n] = 0;
	snprintf(port, 8, "%s", colon + 1);
	for (const char *d = port; *d; d++) {
		if (*d < '0' || *d > '9')
			return false;
	}
	{
		int fam;
		uint8_t a[16];

		return !srv_addr_parse(&fam, a, ip) && atoi(port) >= 1 && atoi(port) <= 65535;
	}
}

static int connlog(struct sg_db_conn *c, const char *client, const char *event, const char *now,
		   json_t *peer, const char *reason)
{
	char ip[64], port[8], tx[24], rx[24];
	const char *mode = jstr(peer, "crypto_mode");
	bool ep = peer && split_endpoint(jstr(peer, "endpoint"), ip, port);
	/* From the client's side: what it sent is what the hub received. */
	const char *p[] = {client,
			   now,
			   event,
			   ep ? ip : NULL,
			   ep ? port : NULL,
			   mode && strcmp(mode, "none") ? mode : NULL,
			   srv_i64(tx, peer ? json_integer_value(json_object_get(peer, "rx_bytes"))
					    : 0),
			   srv_i64(rx, peer ? json_integer_value(json_object_get(peer, "tx_bytes"))
					    : 0),
			   reason};

	return srv_neg(sg_db_exec(c,
				  "INSERT INTO connection_log (client_id, ts, event, source_ip, "
				  "source_port, crypto_mode, bytes_sent, bytes_received, "
				  "disconnect_reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
				  9, p));
}

/* One client's live state for sg:connection:{client_id} (live.c); peer NULL: the hub itself. */
static json_t *live_state(const char *agent_id, int64_t t, json_t *peer, bool online)
{
	const char *mode = jstr(peer, "crypto_mode");

	if (!peer)
		return json_pack("{s:b,s:s,s:I}", "online", 1, "reported_by", agent_id,
				 "reported_at", (json_int_t)t);
	/* From the client's side, as in the database: what it sent is what the hub received. */
	return json_pack("{s:b,s:I,s:s?,s:s?,s:I,s:I,s:s,s:I}", "online", online, "last_handshake",
			 json_integer_value(json_object_get(peer, "last_handshake")), "endpoint",
			 jstr(peer, "endpoint"), "crypto_mode",
			 mode && strcmp(mode, "none") ? mode : NULL, "bytes_sent",
			 json_integer_value(json_object_get(peer, "rx_bytes")), "bytes_received",
			 json_integer_value(json_object_get(peer, "tx_bytes")), "reported_by",
			 agent_id, "reported_at", (json_int_t)t);
}

/* The hub's view of its network's clients: handshakes, online state, bytes, connection log.
 * With --redis, live (an object) gets each client's state for sg:connection:{client_id}. */
static int report_wireguard(struct sg_db_conn *c, const char *agent_id, json_t *wg, int64_t t,
			    json_t *live)
{
	struct sg_db_res *res = NULL;
	const char *p[] = {agent_id};
	char now[24];
	int rc, n;

	srv_i64(now, t);
	rc = sg_db_query(c, &res,
			 "SELECT c.network_id, c.id FROM agents a JOIN clients c ON c.id = "
			 "a.client_id WHERE a.id = $1",
			 1, p);
	if (rc != 1) {
		sg_db_res_free(res);
		return srv_neg(rc);
	}
	{
		char net[SRV_ID_LEN + 1], hub[SRV_ID_LEN + 1];
		struct sg_db_res *cl = NULL;
		json_t *peers = NULL, *w, *pe;
		size_t i, j;

		snprintf(net, sizeof(net), "%s", sg_db_res_get(res, 0, 0));
		snprintf(hub, sizeof(hub), "%s", sg_db_res_get(res, 0, 1));
		sg_db_res_free(res);
		/* The report about the bound client's interface. */
		json_array_foreach(wg, i, w)
		{
			if (!jstr(w, "client_id") || !strcmp(jstr(w, "client_id"), hub))
				peers = json_object_get(w, "peers");
		}
		{
			const char *q[] = {hub};

			/* The hub is up while its agent reports. */
			if (live)
				json_object_set_new(live, hub, live_state(agent_id, t, NULL, true));
			rc = srv_neg(sg_db_exec(
			    c, "UPDATE clients SET online = 1 WHERE id = $1 AND online = 0", 1, q));
			if (rc)
				return rc;
		}
		{
			const char *q[] = {net, hub};

			n = sg_db_query(c, &cl,
					"SELECT id, public_key_classic, public_key_fips, "
					"last_handshake, online, bytes_sent, bytes_received FROM "
					"clients WHERE network_id = $1 AND id <> $2",
					2, q);
		}
		if (n < 0)
			return n;
		for (int k = 0; k < n; k++) {
			const char *cid = sg_db_res_get(cl, k, 0), *pk = sg_db_res_get(cl, k, 1);
			const char *fk = sg_db_res_get(cl, k, 2);
			int64_t last = srv_res_i64(cl, k, 3), hs = 0;
			bool was_online = srv_res_i64(cl, k, 4) != 0, online;
			json_t *found = NULL;
			char hsb[24], txb[24], rxb[24];

			json_array_foreach(peers, j, pe)
			{
				if ((pk && jstr(pe, "public_key") && !strcmp(pk, jstr(pe, "public_key"))) ||
				    (fk && jstr(pe, "fips_public_key") &&
				     !strcmp(fk, jstr(pe, "fips_public_key")))) {
					found = pe;
					break;
				}
			}
			if (found)
				hs = json_integer_value(json_object_get(found, "last_handshake"));
			online = found && hs >= t - WG_ONLINE_S && hs > 0;
			if (live)
				json_object_set_new(live, cid,
						    found ? live_state(agent_id, t, found, online)
							  : json_null());
			if (found && hs > last) {
				const char *q[] = {cid, srv_i64(hsb, hs),
						   srv_i64(txb, json_integer_value(json_object_get(
								    found, "rx_bytes"))),
						   srv_i64(rxb, json_integer_value(json_object_get(
								    found, "tx_bytes"))),
						   online ? "1" : "0"};

				rc = srv_neg(sg_db_exec(c,
							"UPDATE clients SET last_handshake = $2, "
							"bytes_sent = $3, bytes_received = $4, online "
							"= $5 WHERE id = $1",
							5, q));
				if (!rc && online && !was_online)
					rc = connlog(c, cid, "connect", now, found, NULL);
				if (!rc)
					rc = connlog(c, cid, "handshake", now, found, NULL);
			} else if (was_online && !online) {
				const char *q[] = {cid};

				rc = srv_neg(sg_db_exec(c, "UPDATE clients SET online = 0 WHERE id = $1",
							1, q));
				if (!rc)
					rc = connlog(c, cid, "disconnect", now, found,
						     found ? "no handshake for 180 s"
							   : "no longer a peer of the hub");
			} else if (found) {
				const char *q[] = {cid,
						   srv_i64(txb, json_integer_value(json_object_get(
								    found, "rx_bytes"))),
						   srv_i64(rxb, json_integer_value(json_object_get(
								    found, "tx_bytes")))};

				rc = srv_neg(sg_db_exec(c,
							"UPDATE clients SET bytes_sent = $2, "
							"bytes_received = $3 WHERE id = $1 AND "
							"(bytes_sent <> $2 OR bytes_received <> $3)",
							3, q));
			}
			if (rc)
				break;
		}
		sg_db_res_free(cl);
	}
	return rc;
}

struct status_ctx {
	struct srv_req *r;
	char *report, *backends;
	json_t *live; /* with --redis: what report_wireguard found, written after the commit */
};

static int status_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct status_ctx *x = ctx;
	json_t *b = x->r->json, *t;
	const char *id = x->r->params[0];
	int64_t now_t = srv_now();
	char now[24];
	size_t i;
	int rc;

	(void)s;
	srv_i64(now, now_t);
	{
		const char *p[] = {id,
				   jstr(b, "state"),
				   jstr(b, "revision"),
				   x->report,
				   now,
				   jstr(b, "version"),
				   jstr(b, "platform"),
				   x->backends};

		rc = sg_db_exec(c,
				"UPDATE agents SET state = $2, applied_revision = $3, report = $4, "
				"last_seen = $5, version = COALESCE($6, version), platform = "
				"COALESCE($7, platform), backends = COALESCE($8, backends) WHERE id "
				"= $1 AND revoked = 0",
				8, p);
	}
	if (rc < 0)
		return rc;
	if (rc == 0)
		return SG_ENOENT;
	{
		const char *p[] = {id};

		rc = sg_db_exec(c, "DELETE FROM agent_tunnels WHERE agent_id = $1", 1, p);
		if (rc < 0)
			return rc;
	}
	json_array_foreach(json_object_get(b, "tunnels"), i, t)
	{
		char v[6][24], est[24];
		static const char *const k[] = {"bytes_in",   "bytes_out", "packets_in",
						"packets_out", "rekeys",    "restarts"};
		const char *p[15];

		for (int j = 0; j < 6; j++)
			srv_i64(v[j], json_integer_value(json_object_get(t, k[j])));
		p[0] = id;
		p[1] = jstr(t, "name");
		p[2] = jstr(t, "type") ? jstr(t, "type") : "ipsec";
		p[3] = jstr(t, "policy_id");
		p[4] = jstr(t, "backend");
		p[5] = jstr(t, "state");
		p[6] = jstr(t, "reason");
		for (int j = 0; j < 6; j++)
			p[7 + j] = v[j];
		p[13] = jhas(t, "established_at")
			    ? srv_i64(est, json_integer_value(json_object_get(t, "established_at")))
			    : NULL;
		p[14] = now;
		rc = sg_db_exec(c,
				"INSERT INTO agent_tunnels (agent_id, name, type, policy_id, backend, "
				"state, reason, bytes_in, bytes_out, packets_in, packets_out, "
				"rekeys, restarts, established_at, updated_at) VALUES ($1, $2, $3, $4, "
				"$5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
				15, p);
		if (rc == SG_EEXIST)
			continue; /* the same name twice in one report: the first counts */
		if (rc < 0)
			return rc;
	}
	json_object_clear(x->live); /* a retried transaction starts afresh */
	return report_wireguard(c, id, json_object_get(b, "wireguard"), now_t, x->live);
}

void h_peers_status(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct status_ctx x = {.r = r};
	struct sg_db_conn *c;
	json_t *doc;
	int rc, status;

	if (strcmp(r->who.id, r->params[0])) {
		srv_error(out, 403, NULL, "an agent reports only about itself");
		return;
	}
	x.report = jtext(r->json);
	if (jhas(r->json, "backends"))
		x.backends = backend_list(json_object_get(r->json, "backends"));
	if (srv_live_on())
		x.live = json_object();
	c = sg_db_acquire(s->db);
	rc = x.report ? srv_tx(s, c, status_tx, &x, false) : SG_ENOMEM;
	if (rc == SG_ENOENT) {
		/* Revoked between its login and now. */
		srv_error(out, 403, NULL, "this agent has been revoked");
		goto out;
	}
	if (rc) {
		srv_dberr(out, c, rc);
		goto out;
	}
	/* After the commit, outside the transaction's locks. Three report intervals, as a peer's
	 * online state (ONLINE_POLLS): agents report at least once per poll interval. While Redis
	 * is away reads show the database's record; after, the next reports refill it. */
	if (x.live)
		(void)srv_live_conn_put(x.live, ONLINE_POLLS * s->agent_poll);
	{
		char rev[49];
		int64_t sync = sync_revision(c);

		if (sync >= 0 && rev_get(r->params[0], sync, rev)) {
			srv_json(out, 200,
				 json_pack("{s:s,s:s}", "status", "recorded", "revision", rev));
			goto out;
		}
	}
	doc = agent_config(s, c, r->params[0], &status);
	if (!doc) {
		srv_error(out, 503, NULL, "the configuration could not be computed; retry");
		goto out;
	}
	srv_json(out, 200,
		 json_pack("{s:s,s:s}", "status", "recorded", "revision", jstr(doc, "revision")));
	json_decref(doc);
out:
	json_decref(x.live);
	free(x.report);
	free(x.backends);
	sg_db_release(c);
}

/* ---- tunnels ------------------------------------------------------------------------------- */

/* Groups ends (rows in name order) into tunnels. */
static json_t *group_tunnels(struct sg_db_res *res, int n)
{
	json_t *items = json_array(), *cur = NULL;
	int up = 0, total = 0;

	for (int i = 0; i <= n; i++) {
		const char *name = i < n ? sg_db_res_get(res, i, 2) : NULL;

		if (cur && (!name || strcmp(name, jstr(cur, "name")))) {
			json_object_set_new(cur, "state",
					    json_string(up == total ? "up"
							: up	    ? "partial"
								    : "down"));
			json_array_append_new(items, cur);
			cur = NULL;
		}
		if (!name)
			break;
		if (!cur) {
			cur = json_pack("{s:s,s:s,s:s?,s:[]}", "name", name, "type",
					sg_db_res_get(res, i, 3), "policy_id",
					sg_db_res_get(res, i, 4), "ends");
			up = total = 0;
		}
		json_array_append_new(json_object_get(cur, "ends"), srv_row_json(res, i, END_KINDS));
		total++;
		up += !strcmp(sg_db_res_get(res, i, 6), "up");
	}
	return items;
}

void h_tunnels_list(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct sg_db_conn *c = sg_db_acquire(s->db);
	struct sg_db_res *cnt = NULL, *res = NULL;
	const char *peer = srv_query(r, "peer_id");
	int64_t limit = srv_limit(r), offset = srv_offset(r);
	char lim[24], off[24], sql[1024];
	const char *p[3];
	int rc, n = 0;
	json_t *items;

	if (peer)
		p[n++] = peer;
	snprintf(sql, sizeof(sql),
		 "SELECT COUNT(DISTINCT t.name) FROM agent_tunnels t JOIN agents a ON a.id = "
		 "t.agent_id WHERE a.revoked = 0%s",
		 peer ? " AND t.agent_id = $1" : "");
	rc = sg_db_query(c, &cnt, sql, n, p);
	if (rc < 0)
		goto dberr;
	p[n] = srv_i64(lim, limit);
	p[n + 1] = srv_i64(off, offset);
	snprintf(sql, sizeof(sql),
		 "SELECT " END_COLS " FROM agent_tunnels t JOIN agents a ON a.id = t.agent_id "
		 "WHERE a.revoked = 0 AND t.name IN (SELECT DISTINCT t2.name FROM agent_tunnels t2 "
		 "JOIN agents a2 ON a2.id = t2.agent_id WHERE a2.revoked = 0%s ORDER BY t2.name "
		 "LIMIT $%d OFFSET $%d) ORDER BY t.name, a.name",
		 peer ? " AND t2.agent_id = $1" : "", n + 1, n + 2);
	rc = sg_db_query(c, &res, sql, n + 2, p);
	if (rc < 0)
		goto dberr;
	items = group_tunnels(res, rc);
	srv_json(out, 200,
		 json_pack("{s:o,s:I,s:I,s:I}", "items", items, "total",
			   (json_int_t)srv_res_i64(cnt, 0, 0), "limit", (json_int_t)limit, "offset",
			   (json_int_t)offset));
	goto out;
dberr:
	srv_dberr(out, c, rc);
out:
	sg_db_res_free(cnt);
	sg_db_res_free(res);
	sg_db_release(c);
}

void h_tunnels_get(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct sg_db_conn *c = sg_db_acquire(s->db);
	struct sg_db_res *res = NULL;
	const char *p[] = {r->params[0]};
	int rc;
	json_t *items;

	rc = sg_db_query(c, &res,
			 "SELECT " END_COLS " FROM agent_tunnels t JOIN agents a ON a.id = "
			 "t.agent_id WHERE a.revoked = 0 AND t.name = $1 ORDER BY a.name",
			 1, p);
	if (rc < 0) {
		srv_dberr(out, c, rc);
	} else if (rc == 0) {
		srv_error(out, 404, NULL, "no agent reports a tunnel of this name");
	} else {
		items = group_tunnels(res, rc);
		srv_json(out, 200, json_incref(json_array_get(items, 0)));
		json_decref(items);
	}
	sg_db_res_free(res);
	sg_db_release(c);
}
