/* A managed process's credential and session at the management server; mgmt.h says what. */
#include "net/mgmt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/b64.h"
#include "common/file.h"
#include "common/log.h"
#include "config/key.h"
#include "crypto/crypto.h"
#include "net/longpoll.h"
#include "secureguard/sg_errors.h"

/* docs/AGENTS.md: HMAC-SHA-384(X25519(ours, theirs), label || challenge || ours || theirs). */
#define AUTH_LABEL "secureguard agent auth v1"

enum step { ST_IDLE, ST_REGISTER, ST_CHALLENGE, ST_SESSION, ST_READY, ST_DONE };

struct sg_mgmt {
	struct evloop *loop;
	struct sg_httpc *h;
	char *server, *ca_file, *dir, *name, *enroll;
	json_t *fields;
	int retry_max_s;
	sg_mgmt_cb cb;
	void *ctx;
	uint8_t priv[32], pub[32];
	char pub64[SG_KEY_BASE64_LEN + 1];
	char id[40];
	char auth[128]; /* "Authorization: Bearer sga_..." */
	enum step step;
	int failures;
	int tfd;
	struct evloop_source tsrc;
	bool busy; /* a request of the login is in flight */
	struct call *calls; /* requests in flight (cancelled by sg_mgmt_free) */
};

/* ---- files ---------------------------------------------------------------------------------- */

static void path_of(char *out, size_t n, const struct sg_mgmt *m, const char *ext)
{
	snprintf(out, n, "%s/%s.%s", m->dir, m->name, ext);
}

/* Writes a file atomically with mode 0600 (temporary, fsync, rename). */
static int write_file(const char *path, const char *data, size_t len)
{
	return sg_file_replace(path, data, len, 0600) ? SG_EIO : 0;
}

/* A small file of ours: not a link, not readable by others when secret. NULL when absent. */
static char *read_small(const char *path, bool secret, char *why, size_t n, int *rc)
{
	struct stat st;
	char *buf = NULL;
	ssize_t got;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	*rc = 0;
	if (fd < 0) {
		if (errno != ENOENT) {
			snprintf(why, n, "%s: %s", path, strerror(errno));
			*rc = SG_EIO;
		}
		return NULL;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > 65536 ||
	    (secret && (st.st_mode & 077))) {
		snprintf(why, n, "%s: %s", path,
			 secret && (st.st_mode & 077) ? "readable by group or others (chmod 600)"
						      : "not a small regular file");
		*rc = SG_EPERM;
		close(fd);
		return NULL;
	}
	buf = calloc(1, (size_t)st.st_size + 1);
	got = buf ? read(fd, buf, (size_t)st.st_size) : -1;
	close(fd);
	if (got != st.st_size) {
		free(buf);
		snprintf(why, n, "%s: read error", path);
		*rc = SG_EIO;
		return NULL;
	}
	return buf;
}

static int load_identity(struct sg_mgmt *m, char *why, size_t n)
{
	char path[4200];
	int rc;
	char *text;
	json_t *j;

	path_of(path, sizeof(path), m, "json");
	text = read_small(path, true, why, n, &rc);
	if (!text)
		return rc;
	j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	free(text);
	/* An identity at another server is none here: that one needs its own enrolment. */
	if (json_is_string(json_object_get(j, "id")) &&
	    json_is_string(json_object_get(j, "server")) &&
	    !strcmp(json_string_value(json_object_get(j, "server")), m->server) &&
	    strlen(json_string_value(json_object_get(j, "id"))) < sizeof(m->id))
		snprintf(m->id, sizeof(m->id), "%s", json_string_value(json_object_get(j, "id")));
	else if (!json_is_object(j)) {
		snprintf(why, n, "%s: not the identity this program writes", path);
		rc = SG_EPARSE;
	}
	json_decref(j);
	return rc;
}

static int load_key(struct sg_mgmt *m, bool make, char *why, size_t n)
{
	char path[4200], b64[SG_KEY_BASE64_LEN + 2];
	int rc;
	char *text;

	path_of(path, sizeof(path), m, "key");
	text = read_small(path, true, why, n, &rc);
	if (text) {
		size_t len = strcspn(text, "\r\n");

		rc = len == SG_KEY_BASE64_LEN && !sg_key_from_base64(m->priv, text, len) &&
			     sg_x25519_public(m->pub, m->priv)
			 ? 0
			 : SG_EPARSE;
		if (rc)
			snprintf(why, n, "%s: not a base64 X25519 private key", path);
		sg_memzero(text, strlen(text));
		free(text);
	} else if (!rc && make) {
		if (!sg_x25519_generate(m->priv, m->pub)) {
			snprintf(why, n, "no randomness for a key");
			return SG_ECRYPTO;
		}
		sg_key_to_base64(b64, m->priv);
		strcat(b64, "\n");
		rc = write_file(path, b64, strlen(b64));
		sg_memzero(b64, sizeof(b64));
		if (rc)
			snprintf(why, n, "%s: could not write it", path);
	} else if (!rc) {
		snprintf(why, n, "%s: missing (enrol again with --enroll TOKEN)", path);
		rc = SG_ENOENT;
	}
	if (!rc)
		sg_key_to_base64(m->pub64, m->pub);
	return rc;
}

void sg_mgmt_forget(struct sg_mgmt *m)
{
	char path[4200];

	path_of(path, sizeof(path), m, "key");
	unlink(path);
	path_of(path, sizeof(path), m, "json");
	unlink(path);
	m->id[0] = 0;
	m->auth[0] = 0;
}

/* ---- requests ----------------------------------------------------------------------------- */

struct call {
	struct sg_mgmt *m;
	sg_mgmt_api_cb cb;
	void *ctx;
	struct sg_httpc_req *req;
	struct call *next;
};

static void unlink_call(struct call *c)
{
	for (struct call **p = &c->m->calls; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
}

static void api_done(void *ctx, const struct sg_httpc_resp *r)
{
	struct call *c = ctx;
	json_t *body = NULL;

	unlink_call(c);
	if (!r->error && r->len)
		body = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, NULL);
	c->cb(c->ctx, r->error ? 0 : r->status, body, r->error);
	json_decref(body);
	free(c);
}

void sg_mgmt_api(struct sg_mgmt *m, const char *method, const char *path, json_t *body,
		 bool auth, sg_mgmt_api_cb cb, void *ctx)
{
	struct sg_httpc_opts o = {.timeout_ms = 15000, .max_body = 4u << 20, .ca_file = m->ca_file};
	const char *hdrs[3] = {"Content-Type: application/json", NULL, NULL};
	struct call *c = calloc(1, sizeof(*c));
	char url[2048], *text = body ? json_dumps(body, JSON_COMPACT) : NULL;

	if (!c || (body && !text)) {
		free(c);
		free(text);
		cb(ctx, 0, NULL, "out of memory");
		return;
	}
	c->m = m;
	c->cb = cb;
	c->ctx = ctx;
	if (auth && m->auth[0])
		hdrs[1] = m->auth;
	snprintf(url, sizeof(url), "%s%s", m->server, path);
	c->req = sg_httpc_request(m->h, method, url, hdrs, text, text ? strlen(text) : 0, &o,
				  api_done, c);
	if (c->req) {
		c->next = m->calls;
		m->calls = c;
	} else {
		free(c);
		cb(ctx, 0, NULL, "the request could not be started");
	}
	if (text) {
		sg_memzero(text, strlen(text)); /* an enrolment token, a proof */
		free(text);
	}
}

static const char *detail(json_t *body)
{
	const char *d = json_string_value(json_object_get(body, "detail"));

	return d ? d : "no detail";
}

/* ---- the steps ----------------------------------------------------------------------------- */

static void step(struct sg_mgmt *m);

static void retry(struct sg_mgmt *m)
{
	m->failures++;
	m->busy = false;
	if (evloop_timer_arm(m->tfd, evloop_now_ns() +
					     (uint64_t)sg_longpoll_backoff_ms(m->failures,
								      m->retry_max_s,
								      sg_random_u32()) *
						 1000000ull))
		sg_log(SG_LOG_ERROR, "mgmt_timer_failed", NULL);
}

static void on_timer(void *ctx, uint32_t events)
{
	struct sg_mgmt *m = ctx;

	(void)events;
	evloop_timer_ack(m->tfd);
	step(m);
}

static void finish(struct sg_mgmt *m, enum sg_mgmt_event ev, const char *why)
{
	m->busy = false;
	m->step = ev == SG_MGMT_READY ? ST_READY : ST_DONE;
	m->cb(m->ctx, ev, why);
}

static void session_done(void *ctx, long status, json_t *body, const char *err)
{
	struct sg_mgmt *m = ctx;
	const char *tok = json_string_value(json_object_get(body, "session_token"));

	if (status == 200 && tok && strlen(tok) < sizeof(m->auth) - 32) {
		snprintf(m->auth, sizeof(m->auth), "Authorization: Bearer %s", tok);
		m->failures = 0;
		sg_log(SG_LOG_INFO, "mgmt_logged_in", "id=%s", m->id);
		finish(m, SG_MGMT_READY, NULL);
		return;
	}
	if (status == 403) {
		finish(m, SG_MGMT_REVOKED, detail(body));
		return;
	}
	sg_log(SG_LOG_WARN, "mgmt_login_failed", "status=%ld reason=\"%s\"", status,
	       err ? err : detail(body));
	m->step = ST_CHALLENGE;
	retry(m);
}

static void challenge_done(void *ctx, long status, json_t *body, const char *err)
{
	struct sg_mgmt *m = ctx;
	const char *ch64 = json_string_value(json_object_get(body, "challenge"));
	const char *sp64 = json_string_value(json_object_get(body, "server_public_key"));
	uint8_t ch[40], spub[34], shared[32], mac[SG_SHA384_LEN];
	char proof[72], chal[64];
	json_t *req;

	if (status != 200 || !ch64 || !sp64 || strlen(ch64) >= sizeof(chal) ||
	    sg_b64_decode(ch, sizeof(ch), ch64, strlen(ch64), true) != 32 ||
	    sg_key_from_base64(spub, sp64, strlen(sp64))) {
		sg_log(SG_LOG_WARN, "mgmt_login_failed", "step=challenge status=%ld reason=\"%s\"",
		       status, err ? err : detail(body));
		retry(m);
		return;
	}
	{
		static const char label[] = AUTH_LABEL;
		struct sg_iov iov[4] = {{label, sizeof(label) - 1}, {ch, 32}, {m->pub, 32},
					{spub, 32}};
		bool ok = sg_x25519(shared, m->priv, spub) &&
			  sg_hmac_sha384(mac, shared, sizeof(shared), iov, 4);

		sg_memzero(shared, sizeof(shared));
		if (!ok) {
			retry(m);
			return;
		}
	}
	sg_b64_encode(proof, mac, sizeof(mac), true);
	snprintf(chal, sizeof(chal), "%s", ch64);
	req = json_pack("{s:s,s:s,s:s}", "public_key", m->pub64, "challenge", chal, "proof", proof);
	m->step = ST_SESSION;
	sg_mgmt_api(m, "POST", "/api/auth/agent", req, false, session_done, m);
	json_decref(req);
}

static void register_done(void *ctx, long status, json_t *body, const char *err)
{
	struct sg_mgmt *m = ctx;
	const char *id = json_string_value(json_object_get(body, "id"));

	if (status == 201 && id && strlen(id) < sizeof(m->id)) {
		char path[4200], *text;
		json_t *me = json_pack("{s:s,s:s}", "server", m->server, "id", id);

		text = me ? json_dumps(me, JSON_COMPACT) : NULL;
		json_decref(me);
		path_of(path, sizeof(path), m, "json");
		if (!text || write_file(path, text, strlen(text))) {
			free(text);
			finish(m, SG_MGMT_REFUSED, "its identity could not be written");
			return;
		}
		free(text);
		snprintf(m->id, sizeof(m->id), "%s", id);
		m->failures = 0;
		sg_log(SG_LOG_INFO, "mgmt_enrolled", "id=%s", m->id);
		m->step = ST_CHALLENGE;
		m->busy = false;
		step(m);
		return;
	}
	/* The token is refused: retrying it cannot help. */
	if (status == 400 || status == 401 || status == 409 || status == 410) {
		char why[256];

		snprintf(why, sizeof(why), "enrolment refused (%ld): %s", status, detail(body));
		finish(m, SG_MGMT_REFUSED, why);
		return;
	}
	sg_log(SG_LOG_WARN, "mgmt_enrol_failed", "status=%ld reason=\"%s\"", status,
	       err ? err : detail(body));
	retry(m);
}

static void step(struct sg_mgmt *m)
{
	if (m->busy || m->step == ST_DONE || m->step == ST_READY)
		return;
	m->busy = true;
	if (m->step == ST_REGISTER) {
		json_t *req = json_deep_copy(m->fields);

		if (!req)
			req = json_object();
		json_object_set_new(req, "token", json_string(m->enroll));
		json_object_set_new(req, "public_key", json_string(m->pub64));
		sg_mgmt_api(m, "POST", "/api/peers/register", req, false, register_done, m);
		json_decref(req);
		return;
	}
	m->step = ST_CHALLENGE;
	{
		json_t *empty = json_object();

		sg_mgmt_api(m, "POST", "/api/auth/client/challenge", empty, false, challenge_done,
			    m);
		json_decref(empty);
	}
}

/* ---- life ----------------------------------------------------------------------------------- */

int sg_mgmt_new(struct sg_mgmt **out, struct evloop *loop, struct sg_httpc *h,
		const struct sg_mgmt_opts *o, sg_mgmt_cb cb, void *ctx, char *why, size_t n)
{
	struct sg_mgmt *m = calloc(1, sizeof(*m));
	int rc;

	*out = NULL;
	if (!m) {
		snprintf(why, n, "out of memory");
		return SG_ENOMEM;
	}
	m->loop = loop;
	m->h = h;
	m->cb = cb;
	m->ctx = ctx;
	m->tfd = -1;
	m->retry_max_s = o->retry_max_s > 0 ? o->retry_max_s : 60;
	m->server = strdup(o->server);
	m->dir = strdup(o->state_dir);
	m->name = strdup(o->name);
	m->ca_file = o->ca_file ? strdup(o->ca_file) : NULL;
	m->enroll = o->enroll ? strdup(o->enroll) : NULL;
	m->fields = o->fields ? json_deep_copy(o->fields) : json_object();
	if (!m->server || !m->dir || !m->name || (o->ca_file && !m->ca_file) ||
	    (o->enroll && !m->enroll) || !m->fields) {
		snprintf(why, n, "out of memory");
		rc = SG_ENOMEM;
		goto fail;
	}
	if (m->server[0] && m->server[strlen(m->server) - 1] == '/')
		m->server[strlen(m->server) - 1] = 0;
	if (strncmp(m->server, "https://", 8) && strncmp(m->server, "http://", 7)) {
		snprintf(why, n, "--server %s: not an http(s) URL", m->server);
		rc = SG_EINVAL;
		goto fail;
	}
	rc = load_identity(m, why, n);
	if (!rc && !m->id[0] && !m->enroll) {
		snprintf(why, n, "not enrolled at %s: give --enroll TOKEN (from POST "
				 "/api/v1/gateways)",
			 m->server);
		rc = SG_ENOENT;
	}
	/* A new enrolment brings a new key; an enrolled one must have its key. */
	if (!rc)
		rc = load_key(m, !m->id[0], why, n);
	if (rc)
		goto fail;
	m->step = m->id[0] ? ST_CHALLENGE : ST_REGISTER;
	m->tfd = evloop_timer_new();
	if (m->tfd < 0 || evloop_add(loop, &m->tsrc, m->tfd, EPOLLIN, on_timer, m)) {
		snprintf(why, n, "timerfd: %s", strerror(errno));
		rc = SG_EIO;
		goto fail;
	}
	*out = m;
	return 0;
fail:
	sg_mgmt_free(m);
	return rc;
}

void sg_mgmt_free(struct sg_mgmt *m)
{
	if (!m)
		return;
	while (m->calls) {
		struct call *c = m->calls;

		m->calls = c->next;
		sg_httpc_cancel(c->req);
		free(c);
	}
	if (m->tfd >= 0) {
		evloop_del(m->loop, &m->tsrc);
		close(m->tfd);
	}
	sg_memzero(m->priv, sizeof(m->priv));
	sg_memzero(m->auth, sizeof(m->auth));
	if (m->enroll) {
		sg_memzero(m->enroll, strlen(m->enroll));
		free(m->enroll);
	}
	json_decref(m->fields);
	free(m->server);
	free(m->dir);
	free(m->name);
	free(m->ca_file);
	free(m);
}

void sg_mgmt_start(struct sg_mgmt *m)
{
	step(m);
}

void sg_mgmt_relogin(struct sg_mgmt *m)
{
	if (m->step != ST_READY)
		return;
	m->auth[0] = 0;
	m->step = ST_CHALLENGE;
	step(m);
}

const char *sg_mgmt_auth(const struct sg_mgmt *m)
{
	return m->auth[0] ? m->auth : NULL;
}

const char *sg_mgmt_id(const struct sg_mgmt *m)
{
	return m->id;
}

const char *sg_mgmt_server(const struct sg_mgmt *m)
{
	return m->server;
}
