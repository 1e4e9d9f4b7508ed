/* `secureguard agent`: the state machine of the design (register -> sync -> apply -> monitor ->
 * sync), on one event loop (src/net/evloop.c) with the one HTTP client (src/net/httpc.c) and the
 * push channel on it (src/net/longpoll.c). docs/AGENTS.md is the user's view.
 *
 *   start    load the identity and the last-known-good configuration from the state directory
 *            and apply it at once (tunnels come back even while the server is away)
 *   register with an enrolment token when not registered yet (its own key pair: the credential)
 *   auth     log in with a key-possession proof; again whenever the server says 401
 *   sync     long-poll the configuration; each new one is checked, then applied
 *   apply    reconcile: create, update and delete only the tunnels that changed; a policy whose
 *            tunnels fail to apply is rolled back to what ran before, and reported
 *   monitor  every --monitor-interval seconds: each tunnel's state and counters; the watchdog
 *            restarts one that is down (at once, then --restart-interval apart, --restarts
 *            times), then reports it failed with the reason; reports go to the server
 *
 * The server being away changes nothing that runs: syncs back off exponentially (to the poll
 * interval) and the tunnels stay as they are. Stopping the agent leaves the tunnels up.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/agent_int.h"
#include "common/b64.h"
#include "common/log.h"
#include "config/key.h"
#include "crypto/crypto.h"
#include "net/tls_cert.h"
#include "secureguard/sg_errors.h"

#define AUTH_LABEL "secureguard agent auth v1"

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* ---- the server's API ---------------------------------------------------------------------- */

typedef void (*api_cb)(struct agent *a, long status, json_t *body, const char *err);

struct call {
	struct agent *a;
	api_cb cb;
};

static void api_done(void *ctx, const struct sg_httpc_resp *r)
{
	struct call *c = ctx;
	json_t *body = NULL;

	if (!r->error && r->len)
		body = json_loadb(r->body, r->len, 0, NULL);
	c->cb(c->a, r->error ? 0 : r->status, body, r->error);
	json_decref(body);
	free(c);
}

static void api(struct agent *a, const char *method, const char *path, json_t *body, bool auth,
		api_cb cb)
{
	struct sg_httpc_opts o = {.timeout_ms = 15000, .max_body = 4u << 20, .ca_file = a->ca_file};
	const char *hdrs[3] = {"Content-Type: application/json", NULL, NULL};
	struct call *c = calloc(1, sizeof(*c));
	char url[2048], *text = body ? json_dumps(body, JSON_COMPACT) : NULL;

	if (!c || (body && !text)) {
		free(c);
		free(text);
		cb(a, 0, NULL, "out of memory");
		return;
	}
	c->a = a;
	c->cb = cb;
	if (auth && a->session[0])
		hdrs[1] = a->auth_hdr;
	snprintf(url, sizeof(url), "%s%s", a->server, path);
	if (!sg_httpc_request(a->http, method, url, hdrs, text, text ? strlen(text) : 0, &o,
			      api_done, c)) {
		free(c);
		cb(a, 0, NULL, "the request could not be started");
	}
	if (text) {
		sg_memzero(text, strlen(text)); /* the enrolment token, a report */
		free(text);
	}
}

static const char *detail(json_t *body)
{
	const char *d = jstr(body, "detail");

	return d ? d : "no detail";
}

/* ---- status files and reports ---------------------------------------------------------- */

static const char *state_name(const struct tun *u)
{
	if (u->failed)
		return "failed";
	switch (u->st.state) {
	case TS_UP:
		return "up";
	case TS_CONNECTING:
		return "connecting";
	default:
		return "down";
	}
}

/* Whether the agent keeps it up itself (an initiator, or an interface). */
static bool keeps_up(const struct tun *u)
{
	const char *sa = jstr(u->t, "start_action");

	return !strcmp(u->be->ops->type, "wireguard") || !sa || !strcmp(sa, "start");
}

static const char *agent_state(struct agent *a)
{
	bool down = false;

	for (size_t i = 0; i < a->ntuns; i++) {
		if (a->tuns[i].failed)
			return "failed";
		if (keeps_up(&a->tuns[i]) && a->tuns[i].st.state != TS_UP)
			down = true;
	}
	return down || json_array_size(a->errors) ? "degraded" : "ok";
}

static json_t *tunnels_json(struct agent *a)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < a->ntuns; i++) {
		struct tun *u = &a->tuns[i];
		json_t *o = json_pack(
		    "{s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:i}", "name", u->name, "type",
		    u->be->ops->type, "backend", u->be->name, "state", state_name(u), "bytes_in",
		    (json_int_t)(u->base_in + u->st.bytes_in), "bytes_out",
		    (json_int_t)(u->base_out + u->st.bytes_out), "packets_in",
		    (json_int_t)(u->base_pin + u->st.packets_in), "packets_out",
		    (json_int_t)(u->base_pout + u->st.packets_out), "rekeys", (json_int_t)u->rekeys,
		    "restarts", u->restarts);

		if (!o)
			continue;
		if (jstr(u->t, "policy_id"))
			json_object_set_new(o, "policy_id", json_string(jstr(u->t, "policy_id")));
		if (u->st.state != TS_UP && u->reason[0])
			json_object_set_new(o, "reason", json_string(u->reason));
		if (u->st.state == TS_UP && u->st.established_at > 0)
			json_object_set_new(o, "established_at",
					    json_integer(u->st.established_at));
		json_array_append_new(arr, o);
	}
	return arr;
}

/* ---- certificates ------------------------------------------------------------------------ */

#define AGENT_MAX_CERTS 256 /* as the server's PeerStatus takes them */

static bool cert_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > 128 || s[0] == '.')
		return false;
	for (; *s; s++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-'))
			return false;
	}
	return true;
}

static int str_cmp(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* The validity of a certificate file, for the server's expiry list (GET /api/certificates):
 * {name, not_after, subject}, or NULL when it is not a readable PEM certificate (the file may
 * be DER or a chain swanctl takes; the name is still reported). */
static json_t *cert_expiry(const char *path, const char *name)
{
	struct sg_tls_cert_info ci;
	char *buf = NULL, err[160];
	json_t *o = NULL;
	struct stat st;
	size_t len;
	FILE *f = fopen(path, "re");

	if (!f)
		return NULL;
	if (fstat(fileno(f), &st) || st.st_size <= 0 || st.st_size > SG_TLS_CERT_PEM_MAX)
		goto out;
	buf = malloc((size_t)st.st_size);
	len = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
	if (!len || sg_tls_cert_pem_info(buf, len, &ci, err, sizeof(err)) || ci.not_after < 0)
		goto out; /* (the API takes Unix times from 1970 on) */
	o = json_pack("{s:s,s:I}", "name", name, "not_after", (json_int_t)ci.not_after);
	if (o && ci.subject[0])
		json_object_set_new(o, "subject", json_string(ci.subject));
out:
	free(buf);
	fclose(f);
	return o;
}

/* What a policy's local_cert may name here: the regular files of swanctl's x509 directory
 * whose key is in private/ under the same name (as the VICI backend loads them), sorted. The
 * server checks pubkey policies against this list, reported with every status; *expiry gets
 * the validity of those that are PEM certificates. */
static json_t *scan_certs(const char *x509, json_t **expiry)
{
	char *names[AGENT_MAX_CERTS], path[PATH_MAX];
	size_t n = 0;
	json_t *out = json_array();
	struct dirent *e;
	struct stat st;
	DIR *d = opendir(x509);

	*expiry = json_array();
	if (!d || !out || !*expiry) {
		if (d)
			closedir(d);
		return out; /* no directory: no certificates */
	}
	while ((e = readdir(d)) && n < AGENT_MAX_CERTS) {
		if (!cert_name_ok(e->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", x509, e->d_name);
		if (stat(path, &st) || !S_ISREG(st.st_mode))
			continue;
		snprintf(path, sizeof(path), "%s/../private/%s", x509, e->d_name);
		if (stat(path, &st) || !S_ISREG(st.st_mode))
			continue;
		names[n] = strdup(e->d_name);
		if (names[n])
			n++;
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), str_cmp);
	for (size_t i = 0; i < n; i++) {
		json_t *x;

		json_array_append_new(out, json_string(names[i]));
		snprintf(path, sizeof(path), "%s/%s", x509, names[i]);
		if ((x = cert_expiry(path, names[i])))
			json_array_append_new(*expiry, x);
		free(names[i]);
	}
	return out;
}

/* Rescans the certificates; true when they changed (worth a report): a new name, or a file
 * renewed under the same name. */
static bool certs_changed(struct agent *a)
{
	json_t *exp = NULL;
	json_t *now = scan_certs(a->x509_dir ? a->x509_dir : "/etc/swanctl/x509", &exp);

	if (!now || !exp ||
	    (a->certs && json_equal(now, a->certs) && a->cert_expiry &&
	     json_equal(exp, a->cert_expiry))) {
		json_decref(now);
		json_decref(exp);
		return false;
	}
	json_decref(a->certs);
	json_decref(a->cert_expiry);
	a->certs = now;
	a->cert_expiry = exp;
	return true;
}

static json_t *report_json(struct agent *a)
{
	json_t *wg = json_array();
	json_t *r = json_pack("{s:s,s:s,s:s,s:[ss],s:o,s:O}", "state", agent_state(a), "version",
			      SG_VERSION, "platform", "linux", "backends", a->vici->name,
			      a->wg->name, "tunnels", tunnels_json(a), "errors", a->errors);

	if (!r) {
		json_decref(wg);
		return NULL;
	}
	if (a->revision[0])
		json_object_set_new(r, "revision", json_string(a->revision));
	if (a->certs)
		json_object_set(r, "certificates", a->certs);
	if (a->cert_expiry && json_array_size(a->cert_expiry) && !a->no_cert_expiry)
		json_object_set(r, "certificate_expiry", a->cert_expiry);
	for (size_t i = 0; i < a->ntuns; i++) {
		struct tun *u = &a->tuns[i];

		if (u->be->ops->report)
			u->be->ops->report(u->be, u->t, wg);
	}
	json_object_set_new(r, "wireguard", wg);
	return r;
}

/* What `secureguard agent status` shows (state directory: status.json). */
static void write_status(struct agent *a)
{
	json_t *s = json_pack("{s:i,s:s,s:s,s:s,s:s,s:b,s:I,s:I,s:s,s:o,s:O,s:I}", "pid",
			      (int)getpid(), "server", a->server, "id", a->id, "name", a->name,
			      "state", agent_state(a), "server_reachable", a->server_ok, "last_sync",
			      (json_int_t)a->last_sync, "updated", (json_int_t)time(NULL),
			      "revision", a->revision, "tunnels", tunnels_json(a), "errors",
			      a->errors, "sync_errors", (json_int_t)a->sync_errors);

	if (s && a->certs)
		json_object_set(s, "certificates", a->certs);
	if (s && agent_state_write_json(a->state_dir, "status.json", s))
		sg_log(SG_LOG_WARN, "state_write_failed", "file=status.json");
	json_decref(s);
}

static void auth_start(struct agent *a);
static void report(struct agent *a);

static void report_done(struct agent *a, long status, json_t *body, const char *err)
{
	a->reporting = false;
	if (status == 200) {
		const char *rev = jstr(body, "revision");

		a->server_ok = true;
		a->last_report_ns = evloop_now_ns();
		/* The server has a newer configuration than we run: fetch it now. */
		if (rev && strcmp(rev, a->revision) && a->lp)
			sg_longpoll_kick(a->lp);
		return;
	}
	if (status == 401) {
		auth_start(a);
		return;
	}
	if (!status)
		a->server_ok = false;
	sg_log(SG_LOG_WARN, "report_failed", "status=%ld reason=\"%s\"", status,
	       err ? err : detail(body));
	/* A server of an earlier release does not know certificate_expiry (400 naming it): the
	 * rest of the report matters more, so it goes again without. */
	if (status == 400 && !a->no_cert_expiry && jstr(body, "field") &&
	    (!strcmp(jstr(body, "field"), "certificate_expiry") ||
	     !strcmp(jstr(body, "field"), "not_after") || !strcmp(jstr(body, "field"), "subject"))) {
		a->no_cert_expiry = true;
		sg_log(SG_LOG_WARN, "report_field_dropped", "field=certificate_expiry");
		report(a);
	}
}

static void report(struct agent *a)
{
	char path[128];
	json_t *r;

	if (a->reporting || !a->session[0] || !a->id[0])
		return;
	r = report_json(a);
	if (!r)
		return;
	a->reporting = true;
	snprintf(path, sizeof(path), "/api/peers/%s/status", a->id);
	api(a, "PUT", path, r, true, report_done);
	json_decref(r);
}

/* ---- applying a configuration ---------------------------------------------------------- */

static struct tun *find(struct agent *a, const char *name)
{
	for (size_t i = 0; i < a->ntuns; i++) {
		if (!strcmp(a->tuns[i].name, name))
			return &a->tuns[i];
	}
	return NULL;
}

static struct agent_backend *backend_of(struct agent *a, json_t *t)
{
	const char *type = jstr(t, "type");

	return type && !strcmp(type, "wireguard") ? a->wg : a->vici;
}

static struct tun *add_tun(struct agent *a, json_t *t, const char *hash)
{
	struct tun *u;

	if (a->ntuns == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 16;
		struct tun *n = realloc(a->tuns, cap * sizeof(*n));

		if (!n)
			return NULL;
		a->tuns = n;
		a->cap = cap;
	}
	u = &a->tuns[a->ntuns++];
	memset(u, 0, sizeof(*u));
	snprintf(u->name, sizeof(u->name), "%s", jstr(t, "name"));
	snprintf(u->hash, sizeof(u->hash), "%s", hash);
	u->t = json_deep_copy(t);
	u->be = backend_of(a, t);
	return u;
}

static void del_tun(struct agent *a, struct tun *u)
{
	json_decref(u->t);
	*u = a->tuns[--a->ntuns];
}

/* What applying a policy's tunnels did, to undo it. */
enum opk { OP_CREATE, OP_UPDATE, OP_REMOVE };
struct op {
	enum opk k;
	json_t *t, *old; /* the tunnel after and before (references) */
};

static void log_op(const char *event, json_t *t, const char *why)
{
	char q[256];

	sg_log(why ? SG_LOG_WARN : SG_LOG_INFO, event, "tunnel=%s type=%s policy=%s%s%s",
	       jstr(t, "name"), jstr(t, "type") ? jstr(t, "type") : "ipsec",
	       jstr(t, "policy_name") ? jstr(t, "policy_name") : "-", why ? " reason=" : "",
	       why ? sg_log_quote(q, sizeof(q), why) : "");
}

static int do_op(struct agent *a, const struct op *o, char *why, size_t n)
{
	struct agent_backend *b = backend_of(a, o->t);
	struct tun *u;
	int rc;

	why[0] = 0;
	switch (o->k) {
	case OP_CREATE:
		rc = b->ops->create(b, o->t, why, n);
		if (rc)
			return rc;
		u = add_tun(a, o->t, "");
		if (!u)
			return SG_ENOMEM;
		agent_tunnel_hash(o->t, u->hash);
		snprintf(u->reason, sizeof(u->reason), "%.190s", why);
		log_op("tunnel_created", o->t, NULL);
		return 0;
	case OP_UPDATE:
		rc = b->ops->update(b, o->old, o->t, why, n);
		if (rc)
			return rc;
		u = find(a, jstr(o->t, "name"));
		if (u) {
			json_decref(u->t);
			u->t = json_deep_copy(o->t);
			agent_tunnel_hash(o->t, u->hash);
			u->streak = 0;
			u->failed = false;
			u->next_try = 0;
			snprintf(u->reason, sizeof(u->reason), "%.190s", why);
		}
		log_op("tunnel_updated", o->t, NULL);
		return 0;
	case OP_REMOVE:
		rc = backend_of(a, o->old)->ops->remove(backend_of(a, o->old), o->old, why, n);
		if (rc)
			return rc;
		u = find(a, jstr(o->old, "name"));
		if (u)
			del_tun(a, u);
		log_op("tunnel_removed", o->old, NULL);
		return 0;
	}
	return SG_EINVAL;
}

static void undo(struct agent *a, struct op *ops, size_t n)
{
	char why[256];

	while (n--) {
		struct op r = ops[n];

		if (r.k == OP_CREATE) {
			r.k = OP_REMOVE;
			r.old = r.t;
		} else if (r.k == OP_UPDATE) {
			json_t *tmp = r.t;

			r.t = r.old;
			r.old = tmp;
		} else {
			r.k = OP_CREATE;
			r.t = r.old;
		}
		if (do_op(a, &r, why, sizeof(why)))
			log_op("rollback_failed", r.t ? r.t : r.old, why);
	}
}

static void add_error(struct agent *a, const char *policy, const char *tunnel, const char *why)
{
	json_t *e = json_pack("{s:s?,s:s?,s:s}", "policy_id", policy, "tunnel", tunnel, "detail",
			      why);

	if (e)
		json_array_append_new(a->errors, e);
}

static bool same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* Applies one policy's part (policy NULL: tunnels of no policy) of the configuration. */
static void apply_group(struct agent *a, json_t *want, const char *policy)
{
	struct op *ops = calloc(json_array_size(want) + a->ntuns + 1, sizeof(*ops));
	json_t **held = calloc(a->ntuns + 1, sizeof(*held));
	size_t nops = 0, done = 0, nheld = 0, i;
	bool executed;
	char why[256] = "";
	json_t *t;
	int rc = 0;

	if (!ops || !held) {
		add_error(a, policy, NULL, "out of memory");
		goto out;
	}
	/* Removals first (a name may pass from one tunnel to another), then changes, then new
	 * ones. Old versions are held until the end, for the undo. */
	for (i = 0; i < a->ntuns; i++) {
		struct tun *u = &a->tuns[i];
		bool wanted = false;
		size_t k;

		if (!same(jstr(u->t, "policy_id"), policy))
			continue;
		json_array_foreach(want, k, t)
		{
			if (!strcmp(jstr(t, "name"), u->name))
				wanted = true;
		}
		if (!wanted) {
			held[nheld] = json_incref(u->t);
			ops[nops++] = (struct op){OP_REMOVE, NULL, held[nheld++]};
		}
	}
	json_array_foreach(want, i, t)
	{
		struct tun *u = find(a, jstr(t, "name"));
		char h[97];

		if (!same(jstr(t, "policy_id"), policy))
			continue;
		if (!u) {
			ops[nops++] = (struct op){OP_CREATE, t, NULL};
			continue;
		}
		agent_tunnel_hash(t, h);
		/* Unchanged: not touched, whatever its state. */
		if (!strcmp(h, u->hash))
			continue;
		held[nheld] = json_incref(u->t);
		ops[nops++] = (struct op){OP_UPDATE, t, held[nheld++]};
	}
	/* The node must have what the tunnels need before anything is changed. */
	for (i = 0; i < nops && !rc; i++) {
		if (ops[i].k != OP_REMOVE && backend_of(a, ops[i].t)->ops->validate)
			rc = backend_of(a, ops[i].t)
				 ->ops->validate(backend_of(a, ops[i].t), ops[i].t, why, sizeof(why));
		if (rc)
			add_error(a, policy, jstr(ops[i].t, "name"), why);
	}
	executed = !rc;
	/* done counts the failing operation too, so it is undone with the others: an update
	 * stopped the old tunnel first, a creation may have loaded a key. */
	for (i = 0; i < nops && !rc; i++, done++) {
		rc = do_op(a, &ops[i], why, sizeof(why));
		if (rc) {
			json_t *bad = ops[i].t ? ops[i].t : ops[i].old;

			log_op("tunnel_apply_failed", bad, why);
			add_error(a, policy, jstr(bad, "name"), why);
		}
	}
	if (rc && done) {
		sg_log(SG_LOG_WARN, "policy_rolled_back", "policy=%s tunnels=%zu",
		       policy ? policy : "-", done);
		undo(a, ops, done);
	}
	/* Tried again on the watchdog's schedule when that disturbs nothing that runs: a check
	 * that failed (a certificate file to come), new tunnels only. A change of running tunnels
	 * that failed waits for the next configuration: trying it again would cut them again. */
	if (rc) {
		bool disruptive = false;

		for (i = 0; executed && i < done; i++)
			disruptive |= ops[i].k != OP_CREATE;
		if (!disruptive)
			a->retry_apply = true;
	}
out:
	for (i = 0; i < nheld; i++)
		json_decref(held[i]);
	free(held);
	free(ops);
}

static void save_applied(struct agent *a)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < a->ntuns; i++)
		json_array_append(arr, a->tuns[i].t);
	if (agent_state_write_json(a->state_dir, "applied.json", arr))
		sg_log(SG_LOG_ERROR, "state_write_failed", "file=applied.json");
	json_decref(arr);
}

/* Reconciles what runs with doc's tunnels, policy by policy. */
static void apply(struct agent *a, json_t *doc)
{
	json_t *want = json_object_get(doc, "tunnels"), *policies = json_array(), *t;
	size_t i, k;

	json_array_clear(a->errors);
	a->retry_apply = false;
	/* Every policy that has a tunnel here now or had one before, and "none". */
	json_array_append_new(policies, json_null());
	json_array_foreach(want, i, t)
	{
		if (jstr(t, "policy_id"))
			json_array_append_new(policies, json_string(jstr(t, "policy_id")));
	}
	for (i = 0; i < a->ntuns; i++) {
		if (jstr(a->tuns[i].t, "policy_id"))
			json_array_append_new(policies, json_string(jstr(a->tuns[i].t, "policy_id")));
	}
	json_array_foreach(policies, i, t)
	{
		bool seen = false;
		json_t *u;

		json_array_foreach(policies, k, u)
		{
			if (k >= i)
				break;
			if (json_equal(u, t))
				seen = true;
		}
		if (!seen)
			apply_group(a, want, json_string_value(t));
	}
	json_decref(policies);
	save_applied(a);
	if (json_array_size(a->errors))
		a->sync_errors++;
	a->dirty = true;
}

/* A configuration from the server: checked, kept as last-known-good, applied. */
static int take_config(struct agent *a, json_t *doc, bool from_disk)
{
	char why[256];

	if (agent_config_check(doc, why, sizeof(why))) {
		sg_log(SG_LOG_ERROR, "config_refused", "source=%s reason=\"%s\"",
		       from_disk ? "state" : "server", why);
		return SG_EPARSE;
	}
	if (!from_disk && agent_state_write_json(a->state_dir, "desired.json", doc))
		sg_log(SG_LOG_ERROR, "state_write_failed", "file=desired.json");
	json_decref(a->desired);
	a->desired = json_incref(doc);
	snprintf(a->revision, sizeof(a->revision), "%s", jstr(doc, "revision"));
	a->poll_s = (int)json_integer_value(json_object_get(doc, "poll_interval"));
	sg_log(SG_LOG_INFO, "config_received", "source=%s revision=%.16s tunnels=%zu",
	       from_disk ? "last-known-good" : "server", a->revision,
	       json_array_size(json_object_get(doc, "tunnels")));
	apply(a, doc);
	return 0;
}

/* ---- the watchdog ---------------------------------------------------------------------- */

static void monitor(struct agent *a)
{
	uint64_t now = evloop_now_ns();
	bool changed = false;

	for (size_t i = 0; i < a->ntuns; i++) {
		struct tun *u = &a->tuns[i];
		enum agent_tstate before = u->st.state;
		uint64_t last_sa = u->st.sa_id, in = u->st.bytes_in, out = u->st.bytes_out;
		uint64_t pin = u->st.packets_in, pout = u->st.packets_out, act = u->st.activity;
		char why[256];

		if (u->be->ops->status(u->be, u->t, &u->st))
			u->st.state = TS_DOWN;
		if (u->st.state == TS_UP) {
			/* A new SA under an unchanged tunnel: a rekey; its counters start again. */
			if (last_sa && u->st.sa_id != last_sa && before == TS_UP) {
				u->rekeys++;
				u->base_in += in;
				u->base_out += out;
				u->base_pin += pin;
				u->base_pout += pout;
			}
			if (u->streak || u->failed)
				sg_log(SG_LOG_INFO, "tunnel_restored", "tunnel=%s restarts=%d",
				       u->name, u->streak);
			u->streak = 0;
			u->failed = false;
			u->reason[0] = 0;
		} else if (u->st.reason[0] && !u->streak) {
			snprintf(u->reason, sizeof(u->reason), "%.190s", u->st.reason);
		}
		if (act != u->st.activity)
			changed = true;
		if (before != u->st.state) {
			changed = true;
			if (before == TS_UP)
				sg_log(SG_LOG_WARN, "tunnel_down", "tunnel=%s reason=\"%s\"", u->name,
				       u->st.reason);
		}
		if (u->st.state == TS_UP || u->failed)
			continue;
		/* A responder's configuration is reloaded when it went (the daemon restarted);
		 * the agent does not start it. */
		if (!keeps_up(u)) {
			if (!u->st.loaded && now >= u->next_try) {
				u->next_try = now + (uint64_t)a->restart_s * 1000000000ull;
				if (u->be->ops->create(u->be, u->t, why, sizeof(why)))
					snprintf(u->reason, sizeof(u->reason), "%.190s", why);
			}
			continue;
		}
		if (now < u->next_try)
			continue;
		if (u->streak >= a->max_restarts) {
			u->failed = true;
			changed = true;
			sg_log(SG_LOG_ERROR, "watchdog_gave_up", "tunnel=%s restarts=%d reason=\"%s\"",
			       u->name, u->streak, u->reason);
			continue;
		}
		u->streak++;
		u->restarts++;
		u->next_try = now + (uint64_t)a->restart_s * 1000000000ull;
		why[0] = 0;
		if (u->st.loaded ? u->be->ops->start(u->be, u->t, why, sizeof(why))
				 : u->be->ops->create(u->be, u->t, why, sizeof(why))) {
			if (why[0])
				snprintf(u->reason, sizeof(u->reason), "%.190s", why);
		} else if (why[0]) {
			snprintf(u->reason, sizeof(u->reason), "%.190s", why);
		}
		sg_log(SG_LOG_WARN, "watchdog_restart", "tunnel=%s attempt=%d of=%d reason=\"%s\"",
		       u->name, u->streak, a->max_restarts, u->reason);
		changed = true;
	}
	/* A policy that could not be applied is tried again on the watchdog's schedule. */
	if (a->retry_apply && a->desired && now >= a->retry_at && a->apply_tries < a->max_restarts) {
		a->apply_tries++;
		a->retry_at = now + (uint64_t)a->restart_s * 1000000000ull;
		sg_log(SG_LOG_INFO, "apply_retry", "attempt=%d", a->apply_tries);
		apply(a, a->desired);
	}
	if (certs_changed(a))
		changed = true;
	write_status(a);
	if (changed || a->dirty ||
	    now - a->last_report_ns >= (uint64_t)(a->poll_s > 0 ? a->poll_s : 60) * 1000000000ull) {
		a->dirty = false;
		report(a);
	}
}

void agent_on_tick(void *ctx, uint32_t events)
{
	struct agent *a = ctx;

	(void)events;
	evloop_timer_ack(a->tfd);
	monitor(a);
	if (evloop_timer_arm(a->tfd, evloop_now_ns() + (uint64_t)a->monitor_s * 1000000000ull))
		sg_log(SG_LOG_ERROR, "timer_failed", NULL);
}

/* ---- sync ------------------------------------------------------------------------------- */

static const char *const *lp_headers(void *ctx)
{
	struct agent *a = ctx;

	a->hdrs[0] = a->session[0] ? a->auth_hdr : NULL;
	a->hdrs[1] = NULL;
	return a->hdrs;
}

static void revoked(struct agent *a);

static enum sg_longpoll_next on_config(void *ctx, const struct sg_httpc_resp *r)
{
	struct agent *a = ctx;
	json_t *doc;

	if (r->error || r->status == 0) {
		if (a->server_ok || !sg_longpoll_failures(a->lp))
			sg_log(SG_LOG_WARN, "server_unreachable", "reason=\"%s\"",
			       r->error ? r->error : "no answer");
		a->server_ok = false;
		a->sync_errors++;
		return SG_LONGPOLL_RETRY;
	}
	a->server_ok = true;
	if (r->status == 401) {
		auth_start(a);
		return SG_LONGPOLL_PAUSE;
	}
	if (r->status != 200) {
		sg_log(SG_LOG_WARN, "sync_failed", "status=%ld", r->status);
		a->sync_errors++;
		return SG_LONGPOLL_RETRY;
	}
	doc = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, NULL);
	a->last_sync = time(NULL);
	if (!doc || take_config(a, doc, false)) {
		json_decref(doc);
		a->sync_errors++;
		return SG_LONGPOLL_RETRY;
	}
	a->apply_tries = 0;
	a->retry_at = evloop_now_ns() + (uint64_t)a->restart_s * 1000000000ull;
	sg_longpoll_set_since(a->lp, a->revision);
	json_decref(doc);
	monitor(a);
	return SG_LONGPOLL_NEXT;
}

static int start_sync(struct agent *a)
{
	char url[2048];
	struct sg_longpoll_opts o = {.url = url, .wait_s = a->wait_s, .poll_s = a->poll_s,
				     .ca_file = a->ca_file};

	if (a->lp) {
		sg_longpoll_kick(a->lp);
		return 0;
	}
	snprintf(url, sizeof(url), "%s/api/peers/%s/config", a->server, a->id);
	if (sg_longpoll_new(&a->lp, a->loop, a->http, &o, lp_headers, on_config, a))
		return SG_ENOMEM;
	if (a->revision[0])
		sg_longpoll_set_since(a->lp, a->revision);
	sg_longpoll_kick(a->lp);
	return 0;
}

/* ---- auth -------------------------------------------------------------------------------- */

static void auth_retry(struct agent *a)
{
	a->auth_failures++;
	a->auth_at = evloop_now_ns() + (uint64_t)sg_longpoll_backoff_ms(a->auth_failures,
								      a->poll_s, sg_random_u32()) *
					       1000000ull;
	if (evloop_timer_arm(a->afd, a->auth_at))
		sg_log(SG_LOG_ERROR, "timer_failed", NULL);
}

static void session_done(struct agent *a, long status, json_t *body, const char *err)
{
	const char *tok = jstr(body, "session_token");

	a->authing = false;
	if (status == 200 && tok && strlen(tok) < sizeof(a->session)) {
		snprintf(a->session, sizeof(a->session), "%s", tok);
		snprintf(a->auth_hdr, sizeof(a->auth_hdr), "Authorization: Bearer %s", tok);
		a->auth_failures = 0;
		a->server_ok = true;
		sg_log(SG_LOG_INFO, "logged_in", "agent=%s", a->id);
		if (start_sync(a))
			sg_log(SG_LOG_ERROR, "sync_failed", "reason=\"out of memory\"");
		a->dirty = true;
		return;
	}
	if (status == 403) {
		revoked(a);
		return;
	}
	a->server_ok = status != 0;
	sg_log(SG_LOG_WARN, "login_failed", "status=%ld reason=\"%s\"", status,
	       err ? err : detail(body));
	auth_retry(a);
}

static void challenge_done(struct agent *a, long status, json_t *body, const char *err)
{
	const char *ch64 = jstr(body, "challenge"), *sp64 = jstr(body, "server_public_key");
	uint8_t ch[40], spub[34], shared[32], mac[SG_SHA384_LEN];
	char proof[72], chal[64];
	json_t *req;

	if (status != 200 || !ch64 || !sp64 || strlen(ch64) >= sizeof(chal) ||
	    sg_b64_decode(ch, sizeof(ch), ch64, strlen(ch64), true) != 32 ||
	    sg_key_from_base64(spub, sp64, strlen(sp64))) {
		a->authing = false;
		a->server_ok = status != 0;
		sg_log(SG_LOG_WARN, "login_failed", "step=challenge status=%ld reason=\"%s\"", status,
		       err ? err : detail(body));
		auth_retry(a);
		return;
	}
	/* docs/AGENTS.md: HMAC-SHA-384(X25519(ours, theirs), label || challenge || ours_pub ||
	 * theirs_pub). */
	{
		static const char label[] = AUTH_LABEL;
		struct sg_iov iov[4] = {{label, sizeof(label) - 1}, {ch, 32}, {a->pub, 32},
					{spub, 32}};

		if (!sg_x25519(shared, a->priv, spub) ||
		    !sg_hmac_sha384(mac, shared, sizeof(shared), iov, 4)) {
			sg_memzero(shared, sizeof(shared));
			a->authing = false;
			auth_retry(a);
			return;
		}
		sg_memzero(shared, sizeof(shared));
	}
	sg_b64_encode(proof, mac, sizeof(mac), true);
	snprintf(chal, sizeof(chal), "%s", ch64);
	req = json_pack("{s:s,s:s,s:s}", "public_key", a->pub64, "challenge", chal, "proof", proof);
	api(a, "POST", "/api/auth/agent", req, false, session_done);
	json_decref(req);
}

static void auth_start(struct agent *a)
{
	json_t *empty;

	if (a->authing)
		return;
	a->authing = true;
	a->session[0] = 0;
	empty = json_object();
	api(a, "POST", "/api/auth/client/challenge", empty, false, challenge_done);
	json_decref(empty);
}

void agent_on_auth_timer(void *ctx, uint32_t events)
{
	struct agent *a = ctx;

	(void)events;
	evloop_timer_ack(a->afd);
	if (a->registered)
		auth_start(a);
	else
		agent_register(a);
}

/* ---- registration ---------------------------------------------------------------------- */

static void register_done(struct agent *a, long status, json_t *body, const char *err)
{
	const char *id = jstr(body, "id");
	json_t *me;

	a->authing = false;
	if (status == 201 && id && strlen(id) < sizeof(a->id)) {
		snprintf(a->id, sizeof(a->id), "%s", id);
		me = json_pack("{s:s,s:s,s:s}", "server", a->server, "id", a->id, "name", a->name);
		if (!me || agent_state_write_json(a->state_dir, "agent.json", me)) {
			sg_log(SG_LOG_ERROR, "state_write_failed", "file=agent.json");
			a->stop = true;
			a->exit_code = 1;
			json_decref(me);
			return;
		}
		json_decref(me);
		a->registered = true;
		sg_log(SG_LOG_INFO, "registered", "agent=%s name=%s", a->id, a->name);
		auth_start(a);
		return;
	}
	/* The token is refused: retrying it cannot help. */
	if (status == 401 || status == 409 || status == 410 || status == 400) {
		sg_log(SG_LOG_ERROR, "register_refused", "status=%ld reason=\"%s\"", status,
		       detail(body));
		fprintf(stderr, "secureguard agent: registration refused (%ld): %s\n", status,
			detail(body));
		a->stop = true;
		a->exit_code = 1;
		return;
	}
	sg_log(SG_LOG_WARN, "register_failed", "status=%ld reason=\"%s\"", status,
	       err ? err : detail(body));
	auth_retry(a);
}

void agent_register(struct agent *a)
{
	char host[256] = "";
	json_t *req;

	if (a->authing)
		return;
	a->authing = true;
	gethostname(host, sizeof(host) - 1);
	req = json_pack("{s:s,s:s,s:s,s:s,s:s,s:[ss]}", "token", a->enroll, "public_key",
			a->pub64, "name", a->name, "platform", "linux", "version", SG_VERSION,
			"backends", "strongswan", "secureguardd");
	if (!req) {
		a->authing = false;
		auth_retry(a);
		return;
	}
	if (host[0])
		json_object_set_new(req, "hostname", json_string(host));
	if (a->ifname)
		json_object_set_new(req, "interface", json_string(a->ifname));
	if (a->address)
		json_object_set_new(req, "address", json_string(a->address));
	if (json_array_size(a->subnets))
		json_object_set(req, "subnets", a->subnets);
	api(a, "POST", "/api/peers/register", req, false, register_done);
	json_decref(req);
}

/* Revoked by the server: what it made this node run goes, and so does the credential. */
static void revoked(struct agent *a)
{
	char why[256];

	sg_log(SG_LOG_ERROR, "agent_revoked", "agent=%s", a->id);
	while (a->ntuns) {
		struct tun *u = &a->tuns[a->ntuns - 1];

		if (u->be->ops->remove(u->be, u->t, why, sizeof(why)))
			log_op("tunnel_remove_failed", u->t, why);
		del_tun(a, u);
	}
	save_applied(a);
	for (const char *const *f = (const char *const[]){"desired.json", "agent.json",
							   "agent.key", NULL};
	     *f; f++) {
		char path[4096];

		snprintf(path, sizeof(path), "%s/%s", a->state_dir, *f);
		unlink(path);
	}
	fprintf(stderr, "secureguard agent: this node was revoked by the server; its tunnels are "
			"removed and its credential deleted\n");
	a->stop = true;
	a->exit_code = 3;
}

/* ---- start ----------------------------------------------------------------------------------- */

int agent_load_applied(struct agent *a)
{
	char why[256];
	json_t *arr = agent_state_read_json(a->state_dir, "applied.json", why, sizeof(why));
	json_t *doc, *t;
	size_t i;

	if (!arr)
		return 0;
	/* Checked as a configuration is: the file is input too. */
	doc = json_pack("{s:s,s:s,s:i,s:O}", "revision", "applied", "peer_id", "local",
			"poll_interval", 60, "tunnels", arr);
	if (!doc || agent_config_check(doc, why, sizeof(why))) {
		sg_log(SG_LOG_ERROR, "state_refused", "file=applied.json reason=\"%s\"",
		       doc ? why : "out of memory");
		json_decref(doc);
		json_decref(arr);
		return SG_EPARSE;
	}
	json_array_foreach(arr, i, t)
	{
		char h[97];

		agent_tunnel_hash(t, h);
		if (!add_tun(a, t, h))
			break;
	}
	json_decref(doc);
	json_decref(arr);
	return 0;
}

void agent_begin(struct agent *a)
{
	char why[256];
	json_t *doc;

	if (agent_load_applied(a))
		sg_log(SG_LOG_WARN, "state_ignored", "file=applied.json");
	doc = agent_state_read_json(a->state_dir, "desired.json", why, sizeof(why));
	if (doc) {
		/* Last-known-good: what ran before runs again, server or not. */
		if (take_config(a, doc, true))
			sg_log(SG_LOG_WARN, "state_ignored", "file=desired.json");
		json_decref(doc);
	}
	monitor(a);
	if (a->registered)
		auth_start(a);
	else
		agent_register(a);
}
