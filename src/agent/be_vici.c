/* The VICI backend: ipsec tunnels into strongSwan's charon or secureguard-iked (which speaks the
 * same VICI), through the project's one VICI codec and client (src/vici).
 *
 * A tunnel is one connection with one child of the same name, loaded with `load-conn` in
 * swanctl.conf's terms (the policy's fields are swanctl's names, so the mapping is direct), its
 * pre-shared key with `load-shared` (owners: both identities), its certificate's private key
 * with `load-key`. The connection is loaded with start_action = none whatever the policy says:
 * the agent starts it itself (`initiate`), so it sees why a start fails (the control-log lines
 * of the initiation: AUTHENTICATION_FAILED is a key mismatch, retransmits a peer that does not
 * answer) and restarts it on its own schedule (the watchdog, agent.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "crypto/crypto.h"
#include "secureguard/sg_errors.h"
#include "vici/vici_client.h"

#define CERT_MAX	    (256u << 10)

struct vpriv {
	char uri[512];
	char x509[1024];
	int timeout_ms, init_ms; /* every request; an initiation */
	struct vici_client *c;
	bool named; /* the daemon's name is known */
};

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* A connection to the daemon, made (again) when needed. */
static struct vici_client *conn(struct agent_backend *b, char *why, size_t n)
{
	struct vpriv *v = b->priv;
	const char *w = NULL;

	if (v->c)
		return v->c;
	if (vici_client_connect(v->uri, v->timeout_ms, &v->c, &w)) {
		snprintf(why, n, "the IKE daemon is not reachable at %s: %s", v->uri, w ? w : "?");
		v->c = NULL;
		return NULL;
	}
	if (!v->named) {
		struct vici_msg *m = NULL;

		if (!vici_client_request(v->c, "version", NULL, NULL, NULL, &m, &w) && m) {
			const char *d = vici_get_str(vici_msg_root(m), "daemon");

			/* secureguard-iked names itself; charon is strongSwan's. */
			snprintf(b->name, sizeof(b->name), "%s",
				 d && strstr(d, "iked") ? "iked" : "strongswan");
			v->named = true;
		}
		vici_msg_free(m);
	}
	return v->c;
}

static void drop(struct vpriv *v)
{
	vici_client_free(v->c);
	v->c = NULL;
}

/* Runs cmd; 0 when the daemon says success (or the command has no success flag). */
static int command(struct agent_backend *b, const char *cmd, struct vici_builder *req,
		   vici_event_fn on_event, void *ctx, struct vici_msg **resp, char *why, size_t n)
{
	struct vpriv *v = b->priv;
	struct vici_client *c = conn(b, why, n);
	struct vici_msg *m = NULL;
	const char *w = NULL, *ok;
	int rc;

	if (resp)
		*resp = NULL;
	if (!c)
		return SG_EIO;
	rc = vici_client_request(c, cmd, req, on_event, ctx, &m, &w);
	if (rc == SG_EIO || rc == SG_EPARSE) {
		snprintf(why, n, "%s: %s", cmd, w ? w : "the IKE daemon went away");
		drop(v);
		return rc;
	}
	if (rc) {
		snprintf(why, n, "%s: %s", cmd, w ? w : sg_strerror(rc));
		return rc;
	}
	ok = vici_get_str(vici_msg_root(m), "success");
	if (ok && strcmp(ok, "yes")) {
		const char *e = vici_get_str(vici_msg_root(m), "errmsg");

		snprintf(why, n, "%s: %s", cmd, e ? e : "failed");
		vici_msg_free(m);
		return SG_EIO;
	}
	if (resp)
		*resp = m;
	else
		vici_msg_free(m);
	return 0;
}

static void add_list(struct vici_builder *b, const char *name, json_t *arr)
{
	size_t i;
	json_t *e;

	if (!json_is_array(arr))
		return;
	vici_add_list_start(b, name);
	json_array_foreach(arr, i, e)
	vici_add_list_item_str(b, json_string_value(e));
	vici_add_list_end(b);
}

static void add_int(struct vici_builder *b, const char *name, json_t *t, const char *key)
{
	json_t *v = json_object_get(t, key);

	if (json_is_integer(v))
		vici_add_kv_fmt(b, name, "%lld", (long long)json_integer_value(v));
}

static char *read_small(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf = NULL;
	ssize_t r;

	if (fd < 0)
		return NULL;
	if (!fstat(fd, &st) && S_ISREG(st.st_mode) && (size_t)st.st_size <= CERT_MAX &&
	    (buf = malloc((size_t)st.st_size + 1))) {
		r = read(fd, buf, (size_t)st.st_size);
		if (r != st.st_size) {
			free(buf);
			buf = NULL;
		} else {
			buf[r] = 0;
			*len = (size_t)r;
		}
	}
	close(fd);
	return buf;
}

/* The private key of a certificate: swanctl's layout, x509/NAME beside private/NAME. */
static void key_path(struct vpriv *v, const char *cert, char *out, size_t n)
{
	snprintf(out, n, "%s/../private/%s", v->x509, cert);
}

static int validate(struct agent_backend *b, json_t *t, char *why, size_t n)
{
	struct vpriv *v = b->priv;
	const char *cert = jstr(t, "local_cert");
	char path[2048];

	if (!cert)
		return 0;
	snprintf(path, sizeof(path), "%s/%s", v->x509, cert);
	if (access(path, R_OK)) {
		snprintf(why, n, "certificate reference local_cert: %s: %s", path, strerror(errno));
		return SG_ENOENT;
	}
	key_path(v, cert, path, sizeof(path));
	if (access(path, R_OK)) {
		snprintf(why, n, "the private key of local_cert: %s: %s", path, strerror(errno));
		return SG_ENOENT;
	}
	return 0;
}

static int load_secret(struct agent_backend *b, json_t *t, char *why, size_t n)
{
	struct vici_builder req;
	const char *secret = jstr(t, "secret"), *lid = jstr(t, "local_id");
	const char *rid = jstr(t, "remote_id");
	json_t *la = json_object_get(t, "local_addrs"), *ra = json_object_get(t, "remote_addrs");
	char id[256];
	int rc;

	if (!secret)
		return 0;
	/* The owners: the identities, or the addresses standing in for them. */
	if (!lid && json_is_string(json_array_get(la, 0)) &&
	    strcmp(json_string_value(json_array_get(la, 0)), "%any"))
		lid = json_string_value(json_array_get(la, 0));
	if (!rid && json_is_string(json_array_get(ra, 0)) &&
	    strcmp(json_string_value(json_array_get(ra, 0)), "%any"))
		rid = json_string_value(json_array_get(ra, 0));
	snprintf(id, sizeof(id), "sg-%s", jstr(t, "name"));
	vici_builder_init(&req);
	vici_add_kv_str(&req, "id", id);
	vici_add_kv_str(&req, "type", "IKE");
	vici_add_kv(&req, "data", secret, strlen(secret));
	vici_add_list_start(&req, "owners");
	if (lid)
		vici_add_list_item_str(&req, lid);
	if (rid)
		vici_add_list_item_str(&req, rid);
	vici_add_list_end(&req);
	rc = command(b, "load-shared", &req, NULL, NULL, NULL, why, n);
	vici_builder_free(&req);
	return rc;
}

static int load_key(struct agent_backend *b, json_t *t, char *why, size_t n)
{
	struct vpriv *v = b->priv;
	const char *cert = jstr(t, "local_cert");
	struct vici_builder req;
	char path[2048];
	size_t len = 0;
	char *pem;
	int rc;

	if (!cert)
		return 0;
	key_path(v, cert, path, sizeof(path));
	pem = read_small(path, &len);
	if (!pem) {
		snprintf(why, n, "%s: cannot read", path);
		return SG_EIO;
	}
	vici_builder_init(&req);
	vici_add_kv_str(&req, "type", "any");
	vici_add_kv(&req, "data", pem, len);
	rc = command(b, "load-key", &req, NULL, NULL, NULL, why, n);
	vici_builder_free(&req);
	sg_memzero(pem, len);
	free(pem);
	return rc;
}

static void add_auth(struct vpriv *v, struct vici_builder *req, json_t *t, bool local,
		     char *why, size_t n)
{
	const char *auth = jstr(t, "auth"), *id = jstr(t, local ? "local_id" : "remote_id");
	const char *cert = jstr(t, "local_cert");

	vici_add_section_start(req, local ? "local" : "remote");
	vici_add_kv_str(req, "auth", auth);
	if (id)
		vici_add_kv_str(req, "id", id);
	if (local && cert) {
		char path[2048];
		size_t len = 0;
		char *pem;

		snprintf(path, sizeof(path), "%s/%s", v->x509, cert);
		pem = read_small(path, &len);
		if (pem) {
			vici_add_list_start(req, "certs");
			vici_add_list_item(req, pem, len);
			vici_add_list_end(req);
			free(pem);
		} else {
			snprintf(why, n, "%s: cannot read", path);
		}
	}
	vici_add_section_end(req);
}

/* The trust anchors for the peers' certificates: every file of swanctl's x509ca directory
 * (beside x509), as `swanctl --load-creds` loads them, so a daemon started afresh verifies peers
 * without an admin's help. A file the daemon refuses is named in why. */
static int load_cas(struct agent_backend *b, char *why, size_t n)
{
	struct vpriv *v = b->priv;
	char dir[1200];
	struct dirent *e;
	DIR *d;
	int rc = 0;

	snprintf(dir, sizeof(dir), "%s/../x509ca", v->x509);
	d = opendir(dir);
	if (!d)
		return 0; /* none: the peers' CAs come from elsewhere */
	while (!rc && (e = readdir(d))) {
		struct vici_builder req;
		char path[2048];
		size_t len = 0;
		char *pem;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		pem = read_small(path, &len);
		if (!pem)
			continue;
		vici_builder_init(&req);
		vici_add_kv_str(&req, "type", "X509");
		vici_add_kv_str(&req, "flag", "CA");
		vici_add_kv(&req, "data", pem, len);
		rc = command(b, "load-cert", &req, NULL, NULL, NULL, why, n);
		if (rc)
			snprintf(why + strlen(why), n - strlen(why), " (%.64s)", e->d_name);
		vici_builder_free(&req);
		free(pem);
	}
	closedir(d);
	return rc;
}

static int load_conn(struct agent_backend *b, json_t *t, char *why, size_t n)
{
	struct vpriv *v = b->priv;
	const char *name = jstr(t, "name");
	struct vici_builder req;
	json_t *encap = json_object_get(t, "encap");
	int rc;

	why[0] = 0;
	vici_builder_init(&req);
	vici_add_section_start(&req, name);
	add_int(&req, "version", t, "version");
	add_list(&req, "local_addrs", json_object_get(t, "local_addrs"));
	add_list(&req, "remote_addrs", json_object_get(t, "remote_addrs"));
	add_list(&req, "proposals", json_object_get(t, "proposals"));
	if (json_is_boolean(encap))
		vici_add_kv_str(&req, "encap", json_is_true(encap) ? "yes" : "no");
	add_int(&req, "dpd_delay", t, "dpd_delay");
	add_int(&req, "rekey_time", t, "rekey_time");
	add_auth(v, &req, t, true, why, n);
	add_auth(v, &req, t, false, why, n);
	vici_add_section_start(&req, "children");
	vici_add_section_start(&req, name);
	add_list(&req, "local_ts", json_object_get(t, "local_ts"));
	add_list(&req, "remote_ts", json_object_get(t, "remote_ts"));
	add_list(&req, "esp_proposals", json_object_get(t, "esp_proposals"));
	add_list(&req, "ah_proposals", json_object_get(t, "ah_proposals"));
	if (jstr(t, "mode"))
		vici_add_kv_str(&req, "mode", jstr(t, "mode"));
	if (jstr(t, "dpd_action"))
		vici_add_kv_str(&req, "dpd_action", jstr(t, "dpd_action"));
	add_int(&req, "rekey_time", t, "rekey_time");
	add_int(&req, "life_time", t, "life_time");
	/* Started by the agent (see the top of the file); trap stays the daemon's. */
	vici_add_kv_str(&req, "start_action",
			jstr(t, "start_action") && !strcmp(jstr(t, "start_action"), "trap") ? "trap"
											 : "none");
	vici_add_section_end(&req);
	vici_add_section_end(&req);
	vici_add_section_end(&req);
	rc = why[0] ? SG_EIO : command(b, "load-conn", &req, NULL, NULL, NULL, why, n);
	vici_builder_free(&req);
	return rc;
}

struct initlog {
	char reason[192];
	int retransmits;
	bool answered; /* the peer sent something back */
};

/* The first line that says why an initiation fails, in words a user acts on. */
static void on_log(void *ctx, const char *event, const struct vici_node *msg)
{
	static const struct {
		const char *needle, *also, *reason;
	} map[] = {
	    {"AUTHENTICATION_FAILED", NULL, "key mismatch: the peer refused our authentication"},
	    {"MAC mismatched", NULL, "key mismatch: the peer's pre-shared key differs"},
	    {"authentication of", "failed", "key mismatch: authentication failed"},
	    {"no shared key found", NULL, "no pre-shared key for the peer's identity"},
	    {"NO_PROPOSAL_CHOSEN", NULL, "no proposal in common with the peer"},
	    {"no acceptable proposal", NULL, "no proposal in common with the peer"},
	    {"TS_UNACCEPTABLE", NULL, "the peer does not accept the traffic selectors"},
	    {"TS_UNACCEPT", NULL, "the peer does not accept the traffic selectors"},
	    {"unable to resolve", NULL, "the peer's address does not resolve"},
	    {"no trusted", NULL, "the peer's certificate is not trusted"},
	    {"peer not responding", NULL, "peer unreachable: no answer to IKE"},
	    {"giving up after", NULL, "peer unreachable: no answer to IKE"},
	};
	struct initlog *l = ctx;
	const char *line;

	if (strcmp(event, "control-log"))
		return;
	line = vici_get_str(msg, "msg");
	if (!line)
		return;
	if (strstr(line, "retransmit"))
		l->retransmits++;
	if (strstr(line, "parsed IKE_SA_INIT response") || strstr(line, "received packet"))
		l->answered = true;
	if (l->reason[0])
		return;
	for (size_t i = 0; i < SG_ARRAY_LEN(map); i++) {
		if (strstr(line, map[i].needle) && (!map[i].also || strstr(line, map[i].also))) {
			snprintf(l->reason, sizeof(l->reason), "%s", map[i].reason);
			return;
		}
	}
}

static int stop(struct agent_backend *b, json_t *t, char *why, size_t n);

static int start(struct agent_backend *b, json_t *t, char *why, size_t n)
{
	struct vpriv *v = b->priv;
	const char *name = jstr(t, "name"), *w = NULL;
	struct vici_builder req;
	struct initlog l = {0};
	struct vici_client *c = conn(b, why, n);
	int rc;

	if (!c)
		return SG_EIO;
	/* An attempt still trying from before goes first: attempts must not pile up. */
	{
		char ignored[192];

		(void)stop(b, t, ignored, sizeof(ignored));
		c = conn(b, why, n);
		if (!c)
			return SG_EIO;
	}
	if (vici_client_register(c, "control-log", true, &w))
		w = NULL; /* then without the log lines: the reasons are vaguer */
	vici_builder_init(&req);
	vici_add_kv_str(&req, "child", name);
	vici_add_kv_str(&req, "ike", name);
	vici_add_kv_fmt(&req, "timeout", "%d", v->init_ms);
	vici_client_set_timeout(c, v->init_ms + 2000);
	rc = command(b, "initiate", &req, on_log, &l, NULL, why, n);
	if (v->c) {
		vici_client_set_timeout(v->c, v->timeout_ms);
		if (vici_client_register(v->c, "control-log", false, &w))
			drop(v);
	}
	vici_builder_free(&req);
	if (rc && l.reason[0])
		snprintf(why, n, "%s", l.reason);
	else if (rc && !l.answered &&
		 (l.retransmits || strstr(why, "timeout") || strstr(why, "not established")))
		snprintf(why, n, "peer unreachable: no answer to IKE");
	return rc;
}

static int stop(struct agent_backend *b, json_t *t, char *why, size_t n)
{
	struct vici_builder req;
	int rc;

	vici_builder_init(&req);
	vici_add_kv_str(&req, "ike", jstr(t, "name"));
	vici_add_kv_str(&req, "timeout", "2000");
	vici_add_kv_str(&req, "force", "yes");
	rc = command(b, "terminate", &req, NULL, NULL, NULL, why, n);
	vici_builder_free(&req);
	return rc;
}

static int create(struct agent_backend *b, json_t *t, char *why, size_t n)
{
	const char *sa = jstr(t, "start_action");
	int rc = validate(b, t, why, n);

	if (!rc)
		rc = load_secret(b, t, why, n);
	if (!rc)
		rc = load_key(b, t, why, n);
	if (!rc && jstr(t, "auth") && !strcmp(jstr(t, "auth"), "pubkey"))
		rc = load_cas(b, why, n);
	if (!rc)
		rc = load_conn(b, t, why, n);
	if (rc)
		return rc;
	/* An initiator brings it up now; a responder waits for its peer. A start that fails is
	 * not a failed load: the watchdog takes it from here. */
	if (!sa || !strcmp(sa, "start")) {
		char w[192];

		if (start(b, t, w, sizeof(w)))
			snprintf(why, n, "%s", w);
	}
	return 0;
}

static int unload(struct agent_backend *b, json_t *t, char *why, size_t n)
{
	struct vici_builder req;
	char id[256];
	int rc;

	vici_builder_init(&req);
	vici_add_kv_str(&req, "name", jstr(t, "name"));
	rc = command(b, "unload-conn", &req, NULL, NULL, NULL, why, n);
	vici_builder_free(&req);
	if (rc == SG_EIO && !((struct vpriv *)b->priv)->c)
		return rc;
	if (jstr(t, "secret")) {
		char w[192];

		snprintf(id, sizeof(id), "sg-%s", jstr(t, "name"));
		vici_builder_init(&req);
		vici_add_kv_str(&req, "id", id);
		(void)command(b, "unload-shared", &req, NULL, NULL, NULL, w, sizeof(w));
		vici_builder_free(&req);
	}
	return rc;
}

static int remove_tunnel(struct agent_backend *b, json_t *t, char *why, size_t n)
{
	char w[192];
	int rc;

	(void)stop(b, t, w, sizeof(w));
	rc = unload(b, t, why, n);
	/* Not loaded (any more) is what we want. */
	if (rc && strstr(why, "not found"))
		rc = 0;
	return rc;
}

static int update(struct agent_backend *b, json_t *old, json_t *t, char *why, size_t n)
{
	char w[192];
	int rc;

	/* The SAs of the old settings go; the new ones come up as a new tunnel would. */
	(void)stop(b, old, w, sizeof(w));
	if (jstr(old, "secret") && !jstr(t, "secret"))
		(void)unload(b, old, w, sizeof(w));
	rc = create(b, t, why, n);
	return rc;
}

struct sastat {
	const char *name;
	struct agent_tstat *st;
	bool found_ike;
};

static uint64_t num(const struct vici_node *sec, const char *k)
{
	const char *s = vici_get_str(sec, k);

	return s ? strtoull(s, NULL, 10) : 0;
}

static void on_sa(void *ctx, const char *event, const struct vici_node *msg)
{
	struct sastat *x = ctx;

	if (strcmp(event, "list-sa"))
		return;
	for (const struct vici_node *ike = msg->child; ike; ike = ike->next) {
		const struct vici_node *children;
		const char *state;

		if (ike->type != VICI_NODE_SECTION || strcmp(ike->name, x->name))
			continue;
		x->found_ike = true;
		state = vici_get_str(ike, "state");
		if (state && strcmp(state, "ESTABLISHED") && x->st->state == TS_DOWN)
			x->st->state = TS_CONNECTING;
		children = vici_find(ike, "child-sas");
		for (const struct vici_node *ch = children ? children->child : NULL; ch;
		     ch = ch->next) {
			const char *cs = vici_get_str(ch, "state"), *cn = vici_get_str(ch, "name");

			if (ch->type != VICI_NODE_SECTION || !cn || strcmp(cn, x->name))
				continue;
			if (cs && !strcmp(cs, "INSTALLED") && state &&
			    !strcmp(state, "ESTABLISHED")) {
				uint64_t id = num(ch, "uniqueid");

				/* Of two (a rekey in progress), the newer. */
				if (x->st->state == TS_UP && id < x->st->sa_id)
					continue;
				x->st->state = TS_UP;
				x->st->sa_id = id;
				x->st->bytes_in = num(ch, "bytes-in");
				x->st->bytes_out = num(ch, "bytes-out");
				x->st->packets_in = num(ch, "packets-in");
				x->st->packets_out = num(ch, "packets-out");
				x->st->established_at = (int64_t)time(NULL) -
							(int64_t)num(ike, "established");
			} else if (x->st->state == TS_DOWN) {
				x->st->state = TS_CONNECTING;
			}
		}
	}
}

static int status(struct agent_backend *b, json_t *t, struct agent_tstat *st)
{
	struct vpriv *v = b->priv;
	const char *name = jstr(t, "name"), *w = NULL;
	struct sastat x = {name, st, false};
	struct vici_builder req;
	struct vici_msg *m = NULL;
	struct vici_client *c;
	int rc;

	memset(st, 0, sizeof(*st));
	c = conn(b, st->reason, sizeof(st->reason));
	if (!c)
		return SG_EIO;
	/* Loaded? */
	rc = command(b, "get-conns", NULL, NULL, NULL, &m, st->reason, sizeof(st->reason));
	if (rc)
		return rc;
	{
		const struct vici_node *list = vici_find(vici_msg_root(m), "conns");

		for (const struct vici_node *i = list ? list->child : NULL; i; i = i->next) {
			if (vici_node_is_str(i) && !strcmp((const char *)i->value, name))
				st->loaded = true;
		}
	}
	vici_msg_free(m);
	c = conn(b, st->reason, sizeof(st->reason));
	if (!c)
		return SG_EIO;
	if (vici_client_register(c, "list-sa", true, &w)) {
		snprintf(st->reason, sizeof(st->reason), "list-sa: %s", w ? w : "?");
		drop(v);
		return SG_EIO;
	}
	vici_builder_init(&req);
	vici_add_kv_str(&req, "ike", name);
	vici_add_kv_str(&req, "noblock", "yes");
	rc = command(b, "list-sas", &req, on_sa, &x, NULL, st->reason, sizeof(st->reason));
	vici_builder_free(&req);
	if (v->c)
		if (vici_client_register(v->c, "list-sa", false, &w))
			drop(v);
	if (rc)
		return rc;
	if (!st->loaded)
		snprintf(st->reason, sizeof(st->reason), "not loaded in the IKE daemon");
	else if (st->state == TS_DOWN)
		snprintf(st->reason, sizeof(st->reason), "no IKE SA");
	else if (st->state == TS_CONNECTING)
		snprintf(st->reason, sizeof(st->reason), "connecting");
	return 0;
}

static void vfree(struct agent_backend *b)
{
	struct vpriv *v = b->priv;

	drop(v);
	free(v);
	free(b);
}

static const struct agent_backend_ops vici_ops = {
    .type = "ipsec",
    .validate = validate,
    .create = create,
    .update = update,
    .remove = remove_tunnel,
    .start = start,
    .status = status,
    .report = NULL,
    .free = vfree,
};

int agent_vici_new(struct agent_backend **out, const char *uri, const char *x509_dir,
		   int timeout_ms, int init_ms)
{
	struct agent_backend *b = calloc(1, sizeof(*b));
	struct vpriv *v = calloc(1, sizeof(*v));

	*out = NULL;
	if (!b || !v) {
		free(b);
		free(v);
		return SG_ENOMEM;
	}
	snprintf(v->uri, sizeof(v->uri), "%s", uri ? uri : VICI_DEFAULT_URI);
	snprintf(v->x509, sizeof(v->x509), "%s", x509_dir ? x509_dir : "/etc/swanctl/x509");
	v->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
	v->init_ms = init_ms > 0 ? init_ms : 8000;
	b->ops = &vici_ops;
	b->priv = v;
	snprintf(b->name, sizeof(b->name), "strongswan");
	*out = b;
	return 0;
}
