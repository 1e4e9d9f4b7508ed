/* What the admin console (web/, docs/CONSOLE.md) needs from the server beyond the resources:
 *
 * - its files, served at / from the directory the build put them in (--console-dir), with a
 *   strict Content-Security-Policy: scripts, styles, images and requests from this origin only
 *   (QR codes are data: and blob: images), no framing, no inline script;
 * - GET /api/events: live updates as server-sent events, each response parked (srv_park) until
 *   a new audit row exists or `wait` seconds passed, so a waiting console holds no worker thread;
 * - GET /api/stats: counts for the dashboard and the samples of the last hour;
 * - GET /api/audit/verify: the hash chain's state, checked again only when it grew;
 * - GET /api/certificates: the expiry of the certificates and the age of the keys it knows of.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secureguard/sg_errors.h"
#include "server/api.h"
#include "server/audit.h"
#include "server/srv_int.h"

/* ---- the console's files ------------------------------------------------------------------ */

/* 'self' only. img-src adds data: (the QR codes of temporary access, which the API answers in
 * base64) and blob: (a client's QR code fetched with the access token). */
#define CSP                                                                                        \
	"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "    \
	"connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "              \
	"form-action 'self'; frame-ancestors 'none'"
#define CONSOLE_FILE_MAX (16u << 20)

static const struct {
	const char *ext, *ctype;
} ctypes[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".json", "application/json"},
    {".webmanifest", "application/manifest+json"},
    {".woff2", "font/woff2"},
    {".txt", "text/plain; charset=utf-8"},
};

static const char *ctype_of(const char *name)
{
	const char *dot = strrchr(name, '.');

	for (size_t i = 0; dot && i < SG_ARRAY_LEN(ctypes); i++) {
		if (!strcmp(dot, ctypes[i].ext))
			return ctypes[i].ctype;
	}
	return NULL;
}

/* Whether the client takes gzip (RFC 9110 section 12.5.3): a "gzip" coding in Accept-Encoding
 * whose weight is not zero. */
bool srv_accepts_gzip(const char *h)
{

	while (h && *h) {
		size_t n;

		h += strspn(h, " \t,");
		n = strcspn(h, " \t,;");
		if (n == 4 && !strncasecmp(h, "gzip", 4)) {
			const char *p = h + n;

			p += strspn(p, " \t");
			if (*p != ';')
				return true;
			p++;
			p += strspn(p, " \t");
			/* q=0, q=0.0, q=0.00, q=0.000 refuse it */
			if (!strncasecmp(p, "q=", 2)) {
				p += 2;
				if (*p == '0') {
					p++;
					if (*p == '.')
						p += 1 + strspn(p + 1, "0");
					if (!*p || *p == ',' || *p == ' ' || *p == '\t')
						return false;
				}
			}
			return true;
		}
		h += n;
		h = strchr(h, ',');
	}
	return false;
}

/* Reads dir/rel (a regular file, not through a symbolic link at the last step) into a malloc'd
 * buffer; NULL with errno set. */
static char *read_file(const char *dir, const char *rel, size_t *len)
{
	char path[PATH_MAX];
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, rel) >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (size_t)st.st_size > CONSOLE_FILE_MAX) {
		errno = ENOENT;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		goto out;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n <= 0) {
			free(buf);
			buf = NULL;
			errno = EIO;
			goto out;
		}
		got += (size_t)n;
	}
	*len = got;
out:
	close(fd);
	return buf;
}

/* A path segment of a console file: letters, digits, '-', '_', '.', not starting with a dot. */
static bool safe_segment(const char *s)
{
	if (!*s || *s == '.' || strlen(s) > 128)
		return false;
	for (; *s; s++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.'))
			return false;
	}
	return true;
}

bool srv_console_serve(struct srv *s, struct srv_req *r, struct srv_resp *out,
		       const struct srv_target *t)
{
	char rel[PATH_MAX] = "", gzrel[PATH_MAX + 8];
	const char *ctype, *last;
	bool spa, gz = false;
	size_t len = 0, k = 0;
	char *buf = NULL;

	if (strcmp(r->method, "GET") && strcmp(r->method, "HEAD"))
		return false;
	/* The API's own space stays the API's: an unknown /api path is a 404 problem. */
	if (!strncmp(r->target, "/api/", 5) || !strcmp(r->target, "/api") ||
	    !strncmp(r->target, "/metrics", 8))
		return false;
	if (!s->console_dir[0]) {
		srv_error(out, 404, NULL,
			  "this server has no admin console (start it with --console-dir DIR: see "
			  "docs/CONSOLE.md)");
		return true;
	}
	for (int i = 0; i < t->nseg; i++) {
		if (!safe_segment(t->seg[i])) {
			srv_error(out, 404, NULL, "no such file");
			return true;
		}
		k += (size_t)snprintf(rel + k, sizeof(rel) - k, "%s%s", i ? "/" : "", t->seg[i]);
		if (k >= sizeof(rel) - 4) {
			srv_error(out, 404, NULL, "no such file");
			return true;
		}
	}
	/* The console's screens (/, /clients, /guest) are one page: a path whose last segment
	 * has no extension gets index.html, which routes in the browser. */
	last = t->nseg ? t->seg[t->nseg - 1] : "";
	spa = !strchr(last, '.');
	if (spa)
		snprintf(rel, sizeof(rel), "index.html");
	ctype = ctype_of(rel);
	if (!ctype) {
		srv_error(out, 404, NULL, "no such file");
		return true;
	}
	if (srv_accepts_gzip(srv_header(r, "accept-encoding"))) {
		snprintf(gzrel, sizeof(gzrel), "%s.gz", rel);
		buf = read_file(s->console_dir, gzrel, &len);
		gz = buf != NULL;
	}
	if (!buf)
		buf = read_file(s->console_dir, rel, &len);
	if (!buf) {
		if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR)
			srv_error(out, 404, NULL,
				  spa ? "the admin console is not built in %s" : "no such file",
				  s->console_dir);
		else
			srv_error(out, 500, NULL, "cannot read the console's files");
		return true;
	}
	srv_body_take(out, 200, ctype, buf, len);
	srv_resp_header(out, "Content-Security-Policy", CSP);
	srv_resp_header(out, "Referrer-Policy", "no-referrer");
	/* Vite names the bundle's files by their content hash: they never change. index.html
	 * names the current ones, so it is checked every time. */
	srv_resp_header(out, "Cache-Control",
			!strncmp(rel, "assets/", 7) ? "public, max-age=31536000, immutable"
						    : "no-cache");
	srv_resp_header(out, "Vary", "Accept-Encoding");
	if (gz)
		srv_resp_header(out, "Content-Encoding", "gzip");
	return true;
}

/* ---- counts ----------------------------------------------------------------------------- */

#define ONLINE_POLLS 3 /* as routes_agents.c: a peer is online within 3 poll intervals */
#define SAMPLE_SECS  10
#define HISTORY	     (3600 / SAMPLE_SECS)

struct sample {
	int64_t v[12]; /* in the order of stat_names */
};
static const char *const stat_names[] = {
    "ts",	"clients", "clients_enabled", "clients_online", "bytes_received",  "bytes_sent",
    "networks", "peers",   "peers_online",    "gateways",	"gateways_online", "audit_head"};

static pthread_mutex_t hist_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sample hist[HISTORY];
static size_t hist_n, hist_next;

static int stats_read(struct srv *s, struct sg_db_conn *c, struct sample *out)
{
	struct sg_db_res *res = NULL;
	char since[24];
	const char *p[] = {since};
	int rc;

	srv_i64(since, srv_now() - (int64_t)ONLINE_POLLS * s->agent_poll);
	rc = sg_db_query(
	    c, &res,
	    "SELECT (SELECT count(*) FROM clients), (SELECT count(*) FROM clients WHERE enabled = "
	    "1), (SELECT count(*) FROM clients WHERE enabled = 1 AND online = 1), (SELECT "
	    "coalesce(sum(bytes_received), 0) FROM clients), (SELECT coalesce(sum(bytes_sent), 0) "
	    "FROM clients), (SELECT count(*) FROM networks), (SELECT count(*) FROM agents WHERE "
	    "revoked = 0), (SELECT count(*) FROM agents WHERE revoked = 0 AND last_seen >= $1), "
	    "(SELECT count(*) FROM gateways), (SELECT count(*) FROM gateways g JOIN agents a ON "
	    "a.id = g.agent_id WHERE a.revoked = 0 AND a.last_seen >= $1), (SELECT "
	    "coalesce(max(id), 0) FROM audit_log)",
	    1, p);
	if (rc == 1) {
		int64_t live = srv_live_conn_online(); /* with --redis: what hubs report now */

		out->v[0] = srv_now();
		for (int i = 0; i < 11; i++)
			out->v[i + 1] = srv_res_i64(res, 0, i);
		if (live >= 0)
			out->v[3] = live;
	}
	sg_db_res_free(res);
	return rc == 1 ? 0 : rc < 0 ? rc : SG_EIO;
}

static json_t *sample_json(const struct sample *sm)
{
	json_t *j = json_object();

	for (size_t i = 0; j && i < SG_ARRAY_LEN(stat_names); i++)
		json_object_set_new(j, stat_names[i], json_integer(sm->v[i]));
	return j;
}

/* When an events stream last ran (monotonic seconds): the main loop watches the audit log only
 * while someone listens. */
static _Atomic int64_t listening_until;
static int64_t audit_seen = -1;
static int ticks;

static int64_t mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

bool srv_console_tick(struct srv *s)
{
	bool grew = false;

	if (ticks++ % (SAMPLE_SECS * 4) == 0) {
		struct sg_db_conn *c = sg_db_acquire(s->db);
		struct sample sm;

		if (!stats_read(s, c, &sm)) {
			pthread_mutex_lock(&hist_lock);
			hist[hist_next] = sm;
			hist_next = (hist_next + 1) % HISTORY;
			if (hist_n < HISTORY)
				hist_n++;
			pthread_mutex_unlock(&hist_lock);
		}
		sg_db_release(c);
	}
	if (atomic_load(&listening_until) >= mono_s()) {
		struct sg_db_conn *c = sg_db_acquire(s->db);
		struct sg_db_res *res = NULL;

		if (sg_db_query(c, &res, "SELECT coalesce(max(id), 0) FROM audit_log", 0, NULL) ==
		    1) {
			int64_t head = srv_res_i64(res, 0, 0);

			grew = audit_seen >= 0 && head != audit_seen;
			audit_seen = head;
		}
		sg_db_res_free(res);
		sg_db_release(c);
	} else {
		audit_seen = -1;
	}
	return grew;
}

void h_stats(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct sg_db_conn *c = sg_db_acquire(s->db);
	struct sample sm;
	json_t *j, *h;
	int rc;

	(void)r;
	rc = stats_read(s, c, &sm);
	if (rc) {
		srv_dberr(out, c, rc);
		sg_db_release(c);
		return;
	}
	sg_db_release(c);
	h = json_array();
	pthread_mutex_lock(&hist_lock);
	for (size_t i = 0; i < hist_n; i++)
		json_array_append_new(
		    h, sample_json(&hist[(hist_next + HISTORY - hist_n + i) % HISTORY]));
	pthread_mutex_unlock(&hist_lock);
	j = json_pack("{s:o,s:o,s:s,s:s}", "current", sample_json(&sm), "history", h, "database",
		      "ok", "version", SG_VERSION);
	srv_json(out, 200, j);
}

/* ---- certificates and keys ---------------------------------------------------------------- */

#define CERT_WARN_DAYS	   30
#define CERT_RESOURCES_MAX 1000
#define CERT_NODES_MAX	   1000

static json_t *int_or_null(int64_t v)
{
	return v ? json_integer(v) : json_null();
}

/* One entry of the list; `owner` ("resource_id" or "peer_id") gets owner_id, the other null. */
static json_t *cert_item(const char *kind, const char *name, const char *owner,
			 const char *owner_id, const char *subject, int64_t nb, int64_t na,
			 int64_t created, const char *state, const char *detail)
{
	json_t *o = json_pack("{s:s,s:s,s:n,s:n,s:o,s:o,s:o,s:o,s:s,s:s}", "kind", kind, "name",
			      name, "resource_id", "peer_id", "subject",
			      subject ? json_string(subject) : json_null(), "not_before",
			      int_or_null(nb), "not_after", int_or_null(na), "created_at",
			      int_or_null(created), "state", state, "detail", detail);

	if (o && owner && owner_id)
		json_object_set_new(o, owner, json_string(owner_id));
	return o;
}

/* A certificate with a known expiry: ok, expiring within CERT_WARN_DAYS, or expired. */
static json_t *cert_dated(const char *kind, const char *name, const char *owner,
			  const char *owner_id, const char *subject, int64_t nb, int64_t na,
			  int64_t now)
{
	int64_t left = na - now;
	const char *state = left <= 0 ? "expired"
			    : left <= (int64_t)CERT_WARN_DAYS * 86400 ? "expiring"
								       : "ok";
	char detail[96];

	if (left <= 0)
		snprintf(detail, sizeof(detail), "expired %lld days ago",
			 (long long)(-left / 86400));
	else
		snprintf(detail, sizeof(detail), "expires in %lld days", (long long)(left / 86400));
	return cert_item(kind, name, owner, owner_id, subject, nb, na, 0, state, detail);
}

/* The nodes' certificates, as their agents last reported them (PeerStatus.certificate_expiry,
 * checked by the API when it arrived), by node and file; at most CERT_NODES_MAX entries. */
static int node_certs(struct sg_db_conn *c, json_t *items, int64_t now)
{
	struct sg_db_res *res = NULL;
	size_t added = 0;
	int rc = sg_db_query(c, &res,
			     "SELECT id, name, report FROM agents WHERE revoked = 0 AND report IS NOT "
			     "NULL ORDER BY name",
			     0, NULL);

	for (int i = 0; i < rc && added < CERT_NODES_MAX; i++) {
		json_t *doc = json_loads(sg_db_res_get(res, i, 2), 0, NULL), *e;
		json_t *list = json_object_get(doc, "certificate_expiry");
		size_t k;

		json_array_foreach(list, k, e) {
			const char *file = json_string_value(json_object_get(e, "name"));
			json_t *na = json_object_get(e, "not_after");
			char name[200];

			if (!file || !json_is_integer(na) || added >= CERT_NODES_MAX)
				continue;
			snprintf(name, sizeof(name), "%s: %s", sg_db_res_get(res, i, 1), file);
			json_array_append_new(
			    items, cert_dated("node_cert", name, "peer_id", sg_db_res_get(res, i, 0),
					      json_string_value(json_object_get(e, "subject")), 0,
					      json_integer_value(na), now));
			added++;
		}
		json_decref(doc);
	}
	sg_db_res_free(res);
	return rc < 0 ? rc : 0;
}

void h_certificates(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct sg_db_conn *c = sg_db_acquire(s->db);
	struct sg_db_res *res = NULL;
	int64_t now = srv_now();
	json_t *items = json_array(), *nt;
	char lim[24];
	const char *p[] = {srv_i64(lim, CERT_RESOURCES_MAX)};
	int rc;

	/* This server's certificate first, then the resources' by name, the nodes' by node and
	 * file, then the keys. */
	(void)r;
	if (s->tls_not_after) {
		json_array_append_new(items, cert_dated("server_tls", s->tls_cert_path, NULL, NULL,
							s->tls_subject, s->tls_not_before,
							s->tls_not_after, now));
	} else if (s->tls) {
		json_array_append_new(items, cert_item("server_tls", s->tls_cert_path, NULL, NULL,
						       NULL, 0, 0, 0, "unreadable",
						       s->tls_cert_err));
	}
	/* A resource's own certificate is a file on its gateway's host (tls.cert is a path): the
	 * server lists it, but only the gateway could read its expiry, and its reports do not
	 * carry it yet. */
	rc = sg_db_query(c, &res,
			 "SELECT id, name, tls FROM resources WHERE tls IS NOT NULL ORDER BY name "
			 "LIMIT $1",
			 1, p);
	if (rc < 0) {
		srv_dberr(out, c, rc);
		sg_db_release(c);
		json_decref(items);
		return;
	}
	for (int i = 0; i < rc; i++) {
		json_t *doc = json_loads(sg_db_res_get(res, i, 2), 0, NULL);
		const char *path = json_string_value(json_object_get(doc, "cert"));
		char d[400];

		if (path) {
			snprintf(d, sizeof(d),
				 "%.300s on the gateway's host: the gateway does not report its "
				 "expiry",
				 path);
			json_array_append_new(items, cert_item("resource_tls", sg_db_res_get(res, i, 1),
							       "resource_id", sg_db_res_get(res, i, 0),
							       NULL, 0, 0, 0, "unknown", d));
		}
		json_decref(doc);
	}
	sg_db_res_free(res);
	rc = node_certs(c, items, now);
	if (rc < 0) {
		srv_dberr(out, c, rc);
		sg_db_release(c);
		json_decref(items);
		return;
	}
	sg_db_release(c);
	if (s->master_key_mtime) {
		char d[256];

		/* The file's time is the key's unless `server seal-key` rewrote the file since. */
		snprintf(d, sizeof(d),
			 "derived from the master key, whose file was last written %lld days ago "
			 "(sealing rewrites the file, not the key); the keys change only with the "
			 "master key (docs/SERVER.md)",
			 (long long)((now - s->master_key_mtime) / 86400));
		json_array_append_new(
		    items, cert_item("signing_key", "access tokens (HS384)", NULL, NULL, NULL, 0,
				     0, s->master_key_mtime, "no_expiry", d));
		json_array_append_new(
		    items, cert_item("signing_key", "OpenID provider ID tokens (ES384)", NULL, NULL,
				     NULL, 0, 0, s->master_key_mtime, "no_expiry", d));
	}
	nt = json_pack("[s,s,s]",
		       "the TLS-transport certificates of nodes (secureguard cert, TlsCertificate): "
		       "they stay on the nodes; agents report only their swanctl x509 directory",
		       "gateways' certificates: a resource's tls.cert is a file the gateway reads and "
		       "the self-signed one is made by the gateway; their reports carry no expiry",
		       "the HTTPS certificates of other servers of a cluster: each answers for its "
		       "own");
	srv_json(out, 200,
		 json_pack("{s:o,s:i,s:o}", "items", items, "warn_days", CERT_WARN_DAYS,
			   "not_tracked", nt));
}

/* ---- live events -------------------------------------------------------------------------- */

#define EVENTS_BATCH 200

/* The id the client saw last: ?since=, else Last-Event-ID; -1 when neither. */
static int64_t last_seen_id(struct srv_req *r)
{
	const char *h;
	char *end;
	long long v;

	if (srv_query(r, "since"))
		return api_query_int(r->route, r, "since");
	h = srv_header(r, "last-event-id");
	if (!h || !*h)
		return -1;
	errno = 0;
	v = strtoll(h, &end, 10);
	if (errno || *end || v < 0)
		return -1;
	return v;
}

void h_events(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	int64_t since = last_seen_id(r), wait, head;
	struct sg_db_res *res = NULL;
	struct sg_db_conn *c;
	struct sample sm;
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	int rc, n;

	wait = srv_query(r, "wait") ? api_query_int(r->route, r, "wait") : 20;
	atomic_store(&listening_until, mono_s() + wait + 30);
	c = sg_db_acquire(s->db);
	if (since >= 0) {
		char b[24], lim[24];
		const char *p[] = {srv_i64(b, since), srv_i64(lim, EVENTS_BATCH)};

		rc = sg_db_query(c, &res,
				 "SELECT " SRV_AUDIT_COLS
				 " FROM audit_log WHERE id > $1 ORDER BY id "
				 "LIMIT $2",
				 2, p);
		if (rc < 0) {
			srv_dberr(out, c, rc);
			goto out;
		}
		n = rc;
		/* Nothing new: wait for the log to grow (the main loop wakes us) or the time. */
		if (!n && wait > 0 && !r->park_expired) {
			srv_park(out, (int)(wait * 1000));
			goto out;
		}
	} else {
		n = 0;
	}
	rc = stats_read(s, c, &sm);
	if (rc) {
		srv_dberr(out, c, rc);
		goto out;
	}
	f = open_memstream(&text, &len);
	if (!f) {
		srv_error(out, 503, NULL, "out of memory");
		goto out;
	}
	/* Ask again at once: the wait happens on the server. */
	fputs("retry: 0\n\n", f);
	for (int i = 0; i < n; i++) {
		fprintf(f, "id: %s\nevent: audit\ndata: ", sg_db_res_get(res, i, 0));
		srv_row_json_text(f, res, i, SRV_AUDIT_KINDS);
		fputs("\n\n", f);
	}
	head = n ? srv_res_i64(res, n - 1, 0) : since;
	/* A first request (no id yet) starts from the newest row. */
	if (head < 0 || (!n && sm.v[11] < head))
		head = sm.v[11];
	{
		json_t *j = sample_json(&sm);
		char *d = j ? json_dumps(j, JSON_COMPACT) : NULL;

		fprintf(f, "id: %lld\nevent: stats\ndata: %s\n\n", (long long)head, d ? d : "{}");
		free(d);
		json_decref(j);
	}
	if (fclose(f)) {
		free(text);
		srv_error(out, 503, NULL, "out of memory");
		goto out;
	}
	srv_body_take(out, 200, "text/event-stream", text, len);
out:
	sg_db_res_free(res);
	sg_db_release(c);
}

/* ---- the audit chain's state -------------------------------------------------------------- */

static pthread_mutex_t verify_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	int64_t head, rows, bad_id, at;
	bool intact, valid;
	char detail[200];
} verified;

void h_audit_verify(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct sg_db_conn *c;
	char hash[SG_AUDIT_HASH_HEX_LEN + 1];
	int64_t head = 0;
	int rc;

	(void)r;
	c = sg_db_acquire(s->db);
	rc = sg_audit_head(c, &head, hash);
	if (rc) {
		srv_dberr(out, c, rc);
		sg_db_release(c);
		return;
	}
	sg_db_release(c);
	pthread_mutex_lock(&verify_lock);
	if (!verified.valid || verified.head != head) {
		int64_t bad = 0;
		char err[200] = "";

		rc = sg_audit_verify(s->db, &bad, err, sizeof(err));
		if (rc && rc != SG_EAUTH) {
			pthread_mutex_unlock(&verify_lock);
			srv_error(out, 503, NULL, "the audit log could not be read; retry");
			srv_retry_after(out, 1);
			return;
		}
		verified.valid = true;
		verified.head = head;
		verified.intact = rc == 0;
		verified.bad_id = bad;
		verified.rows = head;
		verified.at = srv_now();
		snprintf(verified.detail, sizeof(verified.detail), "%s", err);
	}
	srv_json(out, 200,
		 json_pack("{s:b,s:I,s:o,s:s,s:I}", "intact", verified.intact, "rows",
			   (json_int_t)verified.rows, "bad_id",
			   verified.intact ? json_null() : json_integer(verified.bad_id), "detail",
			   verified.detail, "checked_at", (json_int_t)verified.at));
	pthread_mutex_unlock(&verify_lock);
}
