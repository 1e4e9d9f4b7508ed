/* HTTP front of the management server: libmicrohttpd's access handler, body collection with a
 * size limit, the route table with each route's minimum role, authentication, JSON responses,
 * and Prometheus metrics (request counts by route and status, latency histograms by route). */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "secureguard/sg_errors.h"
#include "server/audit.h"
#include "server/http.h"
#include "server/srv_int.h"

/* ---- logging ----------------------------------------------------------------------------------
 */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void srv_log(int level, const char *event, const char *fmt, ...)
{
	char buf[SG_LOG_LINE_MAX];
	va_list ap;

	if (!sg_log_enabled((enum sg_log_level)level))
		return;
	buf[0] = 0;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(buf, sizeof(buf), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_lock(&log_lock);
	sg_log((enum sg_log_level)level, event, "%s", buf);
	pthread_mutex_unlock(&log_lock);
}

/* ---- routes -----------------------------------------------------------------------------------
 */

enum { AUTH_PUBLIC = 1, AUTH_CLIENT_OK = 2, AUTH_USER_ONLY = 4 };

/* Routes open to anyone take small bodies only (a login is well under 2 KiB). */
#define PUBLIC_BODY_MAX 8192

struct route {
	const char *method;
	const char *pattern; /* segments; ":" is a parameter */
	srv_handler fn;
	enum srv_role min_role;
	int flags;
};

static const struct route routes[] = {
    {"POST", "/api/auth/login", h_login, ROLE_NONE, AUTH_PUBLIC},
    {"POST", "/api/auth/refresh", h_refresh, ROLE_NONE, AUTH_PUBLIC},
    {"POST", "/api/auth/logout", h_logout, ROLE_VIEWER, AUTH_USER_ONLY},
    {"POST", "/api/auth/client/challenge", h_client_challenge, ROLE_NONE, AUTH_PUBLIC},
    {"POST", "/api/auth/client", h_client_auth, ROLE_NONE, AUTH_PUBLIC},
    {"GET", "/api/auth/me", h_me, ROLE_VIEWER, AUTH_CLIENT_OK},
    {"GET", "/api/users", h_users_list, ROLE_SUPER, 0},
    {"POST", "/api/users", h_users_create, ROLE_SUPER, 0},
    {"GET", "/api/users/:", h_users_get, ROLE_SUPER, 0},
    {"PUT", "/api/users/:", h_users_update, ROLE_SUPER, 0},
    {"DELETE", "/api/users/:", h_users_delete, ROLE_SUPER, 0},
    {"GET", "/api/api-keys", h_apikeys_list, ROLE_VIEWER, AUTH_USER_ONLY},
    {"POST", "/api/api-keys", h_apikeys_create, ROLE_VIEWER, AUTH_USER_ONLY},
    {"DELETE", "/api/api-keys/:", h_apikeys_delete, ROLE_VIEWER, AUTH_USER_ONLY},
    {"GET", "/api/networks", h_networks_list, ROLE_VIEWER, 0},
    {"POST", "/api/networks", h_networks_create, ROLE_ADMIN, 0},
    {"GET", "/api/networks/:", h_networks_get, ROLE_VIEWER, 0},
    {"PUT", "/api/networks/:", h_networks_update, ROLE_ADMIN, 0},
    {"DELETE", "/api/networks/:", h_networks_delete, ROLE_ADMIN, 0},
    {"GET", "/api/networks/:/peers", h_networks_peers, ROLE_VIEWER, 0},
    {"GET", "/api/clients", h_clients_list, ROLE_VIEWER, 0},
    {"POST", "/api/clients", h_clients_create, ROLE_ADMIN, 0},
    {"GET", "/api/clients/:", h_clients_get, ROLE_VIEWER, 0},
    {"PUT", "/api/clients/:", h_clients_update, ROLE_ADMIN, 0},
    {"DELETE", "/api/clients/:", h_clients_delete, ROLE_ADMIN, 0},
    {"GET", "/api/clients/:/config", h_clients_config, ROLE_ADMIN, 0},
    {"POST", "/api/clients/:/regenerate-keys", h_clients_regen, ROLE_ADMIN, 0},
    {"GET", "/api/temp-access", h_temp_list, ROLE_VIEWER, 0},
    {"POST", "/api/temp-access", h_temp_create, ROLE_ADMIN, 0},
    {"GET", "/api/temp-access/:", h_temp_redeem, ROLE_NONE, AUTH_PUBLIC},
    {"DELETE", "/api/temp-access/:", h_temp_delete, ROLE_ADMIN, 0},
    {"GET", "/api/audit", h_audit_list, ROLE_VIEWER, 0},
    {"GET", "/api/audit/export", h_audit_export, ROLE_ADMIN, 0},
    {"GET", "/api/connections", h_conn_list, ROLE_VIEWER, 0},
    {"POST", "/api/connections", h_conn_create, ROLE_ADMIN, AUTH_CLIENT_OK},
    {"GET", "/api/settings", h_settings_get, ROLE_VIEWER, 0},
    {"PUT", "/api/settings", h_settings_put, ROLE_SUPER, 0},
    {"GET", "/api/openapi.json", h_openapi, ROLE_NONE, AUTH_PUBLIC},
    /* Built-ins (handled in dispatch): health and metrics. */
    {"GET", "/api/health", NULL, ROLE_NONE, AUTH_PUBLIC},
    {"GET", "/metrics", NULL, ROLE_NONE, AUTH_PUBLIC},
};
#define NROUTES		SG_ARRAY_LEN(routes)
#define ROUTE_HEALTH	(NROUTES - 2)
#define ROUTE_METRICS	(NROUTES - 1)
#define ROUTE_UNMATCHED NROUTES

/* Matches path against pattern, collecting parameters. 1 = match. */
static int match(const char *pattern, const char *path, struct srv_req *r)
{
	const char *p = pattern, *u = path;

	r->nparams = 0;
	while (*p && *u) {
		if (*p == ':') {
			const char *e = strchr(u, '/');
			size_t n = e ? (size_t)(e - u) : strlen(u);

			if (!n || r->nparams >= 2)
				return 0;
			r->params[r->nparams++] = u; /* terminated later: copied */
			u += n;
			p++;
			continue;
		}
		if (*p != *u)
			return 0;
		p++;
		u++;
	}
	return !*p && !*u;
}

/* ---- metrics ----------------------------------------------------------------------------------
 */

static const double buckets[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NBUCKETS SG_ARRAY_LEN(buckets)
#define NSTATUS	 16

struct route_metrics {
	int status[NSTATUS];
	uint64_t count[NSTATUS];
	uint64_t hist[NBUCKETS];
	uint64_t n;
	double sum;
};

static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static struct route_metrics metrics[NROUTES + 1];

static void metrics_record(size_t route, int status, double secs)
{
	struct route_metrics *m = &metrics[route];

	pthread_mutex_lock(&metrics_lock);
	for (int i = 0; i < NSTATUS; i++) {
		if (m->status[i] == status || !m->status[i]) {
			m->status[i] = status;
			m->count[i]++;
			break;
		}
	}
	for (size_t i = 0; i < NBUCKETS; i++) {
		if (secs <= buckets[i])
			m->hist[i]++;
	}
	m->n++;
	m->sum += secs;
	pthread_mutex_unlock(&metrics_lock);
}

static const char *route_label(size_t i, char *buf, size_t len)
{
	if (i >= NROUTES)
		return "unmatched";
	snprintf(buf, len, "%s %s", routes[i].method, routes[i].pattern);
	return buf;
}

static char *metrics_text(size_t *len)
{
	char *buf = NULL, lbl[128];
	FILE *f = open_memstream(&buf, len);

	if (!f)
		return NULL;
	fprintf(f, "# HELP secureguard_http_requests_total HTTP requests by route and status.\n"
		   "# TYPE secureguard_http_requests_total counter\n");
	pthread_mutex_lock(&metrics_lock);
	for (size_t r = 0; r <= NROUTES; r++) {
		for (int i = 0; i < NSTATUS && metrics[r].status[i]; i++)
			fprintf(
			    f, "secureguard_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
			    route_label(r, lbl, sizeof(lbl)), metrics[r].status[i],
			    (unsigned long long)metrics[r].count[i]);
	}
	fprintf(f, "# HELP secureguard_http_request_duration_seconds Time to handle a request.\n"
		   "# TYPE secureguard_http_request_duration_seconds histogram\n");
	for (size_t r = 0; r <= NROUTES; r++) {
		const struct route_metrics *m = &metrics[r];

		if (!m->n)
			continue;
		route_label(r, lbl, sizeof(lbl));
		for (size_t b = 0; b < NBUCKETS; b++)
			fprintf(f,
				"secureguard_http_request_duration_seconds_bucket{route=\"%s\",le="
				"\"%g\"} "
				"%llu\n",
				lbl, buckets[b], (unsigned long long)m->hist[b]);
		fprintf(
		    f,
		    "secureguard_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} "
		    "%llu\n",
		    lbl, (unsigned long long)m->n);
		fprintf(f, "secureguard_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n",
			lbl, m->sum);
		fprintf(f, "secureguard_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
			lbl, (unsigned long long)m->n);
	}
	pthread_mutex_unlock(&metrics_lock);
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* ---- responses --------------------------------------------------------------------------------
 */

static void set_resp(struct srv_resp *out, int status, struct MHD_Response *m)
{
	if (out->mhd)
		MHD_destroy_response(out->mhd);
	out->status = status;
	out->mhd = m;
}

void srv_body(struct srv_resp *out, int status, const char *ctype, const void *buf, size_t len,
	      const char *disposition)
{
	struct MHD_Response *m =
	    MHD_create_response_from_buffer(len, (void *)buf, MHD_RESPMEM_MUST_COPY);

	if (!m) {
		set_resp(out, 500, NULL);
		return;
	}
	MHD_add_response_header(m, "Content-Type", ctype);
	MHD_add_response_header(m, "Cache-Control", "no-store");
	MHD_add_response_header(m, "X-Content-Type-Options", "nosniff");
	if (disposition)
		MHD_add_response_header(m, "Content-Disposition", disposition);
	set_resp(out, status, m);
}

void srv_json(struct srv_resp *out, int status, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

	json_decref(j);
	if (!s) {
		static const char oom[] = "{\"error\":\"out of memory\"}";

		srv_body(out, 500, "application/json", oom, sizeof(oom) - 1, NULL);
		return;
	}
	srv_body(out, status, "application/json", s, strlen(s), NULL);
	free(s);
}

void srv_error(struct srv_resp *out, int status, const char *field, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	json_t *j;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	j = json_pack("{s:s}", "error", msg);
	if (j && field)
		json_object_set_new(j, "field", json_string(field));
	srv_json(out, status, j);
}

void srv_custom(struct srv_resp *out, int status, struct MHD_Response *resp)
{
	set_resp(out, status, resp);
}

void srv_dberr(struct srv_resp *out, struct sg_db_conn *c, int rc)
{
	char q[256];

	if (rc == SG_EAGAIN) {
		srv_error(out, 503, NULL, "the database is busy; retry");
		return;
	}
	srv_log(SG_LOG_ERROR, "db_error", "err=%s msg=%s", sg_err_name(rc),
		sg_log_quote(q, sizeof(q), c ? sg_db_errmsg(c) : ""));
	srv_error(out, 500, NULL, "internal database error");
}

/* ---- request helpers --------------------------------------------------------------------------
 */

const char *srv_query(struct srv_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *srv_header(struct srv_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

struct qcheck {
	const char *const *allowed;
	const char *bad;
	int count;
};

static enum MHD_Result qcheck_it(void *cls, enum MHD_ValueKind kind, const char *key,
				 const char *value)
{
	struct qcheck *q = cls;

	(void)kind;
	(void)value;
	q->count++;
	for (const char *const *a = q->allowed; *a; a++) {
		if (!strcmp(*a, key))
			return MHD_YES;
	}
	q->bad = key;
	return MHD_NO;
}

bool srv_query_check(struct srv_req *r, struct srv_resp *out, const char *const *allowed)
{
	static const char *const none[] = {NULL};
	struct qcheck q = {allowed ? allowed : none, NULL, 0};

	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, qcheck_it, &q);
	if (q.bad) {
		char name[64];

		snprintf(name, sizeof(name), "%s", q.bad);
		srv_error(out, 400, name, "unknown query parameter");
		return false;
	}
	return true;
}

/* ---- dispatch ---------------------------------------------------------------------------------
 */

struct conn_state {
	struct srv_req req;
	size_t cap;
	size_t limit; /* body bytes accepted: max_body, or PUBLIC_BODY_MAX on a public route */
	struct timespec t0;
	char path[1024];
	char p0[128], p1[128];
};

static double elapsed(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static void source_ip(struct MHD_Connection *conn, char out[64])
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

	out[0] = 0;
	if (!ci || !ci->client_addr)
		return;
	if (ci->client_addr->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, out,
			  64);
	else if (ci->client_addr->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ci->client_addr)->sin6_addr, out,
			  64);
}

static bool copy_param(char *dst, size_t cap, const char *src)
{
	const char *e = strchr(src, '/');
	size_t n = e ? (size_t)(e - src) : strlen(src);

	if (n >= cap)
		return false;
	memcpy(dst, src, n);
	dst[n] = 0;
	return true;
}

/* The route for method and path (path has its trailing slash dropped in place); NROUTES when
 * none, with *path_matched telling 405 from 404. */
static size_t find_route(const char *method, char *path, struct srv_req *r, bool *path_matched)
{
	size_t i;

	*path_matched = false;
	/* A trailing slash names the same resource. */
	if (strlen(path) > 1 && path[strlen(path) - 1] == '/')
		path[strlen(path) - 1] = 0;
	for (i = 0; i < NROUTES; i++) {
		if (!match(routes[i].pattern, path, r))
			continue;
		*path_matched = true;
		if (!strcmp(routes[i].method, method) ||
		    (!strcmp(method, "HEAD") && !strcmp(routes[i].method, "GET")))
			break;
	}
	return i;
}

struct qutf8 {
	const char *bad;
};

static enum MHD_Result qutf8_it(void *cls, enum MHD_ValueKind kind, const char *key,
				const char *value)
{
	struct qutf8 *q = cls;

	(void)kind;
	if (!sg_utf8_valid(key, strlen(key)) || (value && !sg_utf8_valid(value, strlen(value)))) {
		q->bad = key;
		return MHD_NO;
	}
	return MHD_YES;
}

/* Query names and values, after percent-decoding, must be UTF-8: PostgreSQL refuses anything
 * else as text (22021), and it is never a meaningful filter. */
static bool query_utf8(struct srv_req *r, struct srv_resp *out)
{
	struct qutf8 q = {NULL};
	char name[64];

	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, qutf8_it, &q);
	if (!q.bad)
		return true;
	snprintf(name, sizeof(name), "%s", q.bad);
	sg_utf8_sanitize(name);
	srv_error(out, 400, name, "query parameter is not valid UTF-8");
	return false;
}

static void dispatch(struct srv *s, struct conn_state *cs, struct srv_resp *out, size_t *route)
{
	struct srv_req *r = &cs->req;
	bool path_matched;
	size_t i;

	*route = ROUTE_UNMATCHED;
	snprintf(cs->path, sizeof(cs->path), "%s", r->url);
	i = find_route(r->method, cs->path, r, &path_matched);
	if (i == NROUTES) {
		if (path_matched)
			srv_error(out, 405, NULL, "method %s not allowed here", r->method);
		else
			srv_error(out, 404, NULL, "no such endpoint");
		return;
	}
	*route = i;
	if ((r->nparams > 0 && !copy_param(cs->p0, sizeof(cs->p0), r->params[0])) ||
	    (r->nparams > 1 && !copy_param(cs->p1, sizeof(cs->p1), r->params[1]))) {
		srv_error(out, 404, NULL, "no such resource");
		return;
	}
	/* Ids and tokens are ASCII; bytes that are not UTF-8 can name nothing (and PostgreSQL
	 * refuses them as text). */
	if ((r->nparams > 0 && !sg_utf8_valid(cs->p0, strlen(cs->p0))) ||
	    (r->nparams > 1 && !sg_utf8_valid(cs->p1, strlen(cs->p1)))) {
		srv_error(out, 404, "id", "no such resource (the path is not valid UTF-8)");
		return;
	}
	r->params[0] = cs->p0;
	r->params[1] = cs->p1;
	if (r->body_too_big) {
		srv_error(out, 413, NULL, "request body larger than %zu bytes", cs->limit);
		return;
	}
	if (!query_utf8(r, out))
		return;
	if (i == ROUTE_HEALTH || i == ROUTE_METRICS) {
		if (r->body_len) {
			srv_error(out, 400, NULL, "%s takes no body", r->method);
			return;
		}
	}
	if (i == ROUTE_HEALTH) {
		if (srv_query_check(r, out, NULL))
			srv_json(out, 200,
				 json_pack("{s:s,s:s}", "status", "ok", "version", SG_VERSION));
		return;
	}
	if (i == ROUTE_METRICS) {
		size_t len = 0;
		char *t = metrics_text(&len);

		if (!t) {
			srv_error(out, 500, NULL, "out of memory");
			return;
		}
		srv_body(out, 200, "text/plain; version=0.0.4", t, len, NULL);
		free(t);
		return;
	}
	/* Who is asking, and whether they may, before any work on the body: parsing JSON costs
	 * many times its size in memory, and that is not for anonymous callers to spend. */
	if (!(routes[i].flags & AUTH_PUBLIC)) {
		if (!srv_authenticate(s, r, out))
			return;
		if (r->who.kind == PRINCIPAL_CLIENT && !(routes[i].flags & AUTH_CLIENT_OK)) {
			srv_error(out, 403, NULL, "a client session may not use this endpoint");
			return;
		}
		if (r->who.kind == PRINCIPAL_APIKEY && (routes[i].flags & AUTH_USER_ONLY)) {
			srv_error(out, 403, NULL,
				  "this endpoint needs a user login, not an API key");
			return;
		}
		if (r->who.kind != PRINCIPAL_CLIENT && r->who.role < routes[i].min_role) {
			srv_error(out, 403, NULL, "role %s may not do this (needs %s)",
				  srv_role_name(r->who.role), srv_role_name(routes[i].min_role));
			return;
		}
	}
	if (!strcmp(r->method, "POST") || !strcmp(r->method, "PUT")) {
		json_error_t jerr;
		char why[128];

		if (!r->body_len) {
			r->json = json_object();
		} else if (!srv_json_prescan(r->body, r->body_len, why, sizeof(why))) {
			srv_error(out, 400, NULL, "JSON body refused: %s", why);
			return;
		} else {
			/* Duplicate keys are refused: a body must say one thing per field. */
			r->json = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr);
			if (!r->json) {
				srv_error(out, 400, NULL, "bad JSON at line %d column %d: %s",
					  jerr.line, jerr.column, jerr.text);
				return;
			}
			if (!json_is_object(r->json)) {
				srv_error(out, 400, NULL, "the body must be a JSON object");
				return;
			}
		}
	} else if (r->body_len) {
		srv_error(out, 400, NULL, "%s takes no body", r->method);
		return;
	}
	routes[i].fn(s, r, out);
}

/* ---- connection deadlines ---------------------------------------------------------------------
 * libmicrohttpd's timeout is for idleness only: a client sending one header byte a second keeps
 * its connection (and, here, a thread) forever. Every connection is therefore tracked from
 * accept: a request must arrive complete (headers and body) within request_timeout seconds of
 * the connection opening or of the previous response; srv_http_reap, called every second,
 * shuts down the socket of any connection past that deadline, which ends its thread. Time spent
 * handling a request and sending its response (an audit export can be long) does not count. */

struct conn_track {
	struct conn_track *prev, *next;
	struct timespec start; /* connection opened, or the previous response finished */
	bool busy;	       /* the request is complete and being handled */
	bool reaped;
	int fd;
};

static pthread_mutex_t track_lock = PTHREAD_MUTEX_INITIALIZER;
static struct conn_track track_head = {&track_head, &track_head, {0, 0}, false, false, -1};
static int request_timeout = 30;

static struct conn_track *track_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

static void track_busy(struct MHD_Connection *conn, bool busy)
{
	struct conn_track *t = track_of(conn);

	if (!t)
		return;
	pthread_mutex_lock(&track_lock);
	t->busy = busy;
	if (!busy)
		clock_gettime(CLOCK_MONOTONIC, &t->start);
	pthread_mutex_unlock(&track_lock);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct conn_track *t;

	(void)cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
		    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);

		t = calloc(1, sizeof(*t));
		*socket_context = t;
		if (!t)
			return; /* untracked: only the idle timeout applies */
		clock_gettime(CLOCK_MONOTONIC, &t->start);
		t->fd = ci ? ci->connect_fd : -1;
		pthread_mutex_lock(&track_lock);
		t->next = track_head.next;
		t->prev = &track_head;
		track_head.next->prev = t;
		track_head.next = t;
		pthread_mutex_unlock(&track_lock);
		return;
	}
	/* MHD_CONNECTION_NOTIFY_CLOSED comes before libmicrohttpd closes the socket, so the
	 * reaper never touches a descriptor number that was reused. */
	t = *socket_context;
	if (!t)
		return;
	pthread_mutex_lock(&track_lock);
	t->prev->next = t->next;
	t->next->prev = t->prev;
	pthread_mutex_unlock(&track_lock);
	free(t);
	*socket_context = NULL;
}

int srv_http_reap(void)
{
	struct timespec now;
	int n = 0;

	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&track_lock);
	for (struct conn_track *t = track_head.next; t != &track_head; t = t->next) {
		if (t->busy || t->reaped || t->fd < 0 ||
		    now.tv_sec - t->start.tv_sec < request_timeout)
			continue;
		/* Wakes the connection's thread with end-of-file; it then closes the socket. */
		shutdown(t->fd, SHUT_RDWR);
		t->reaped = true;
		n++;
	}
	pthread_mutex_unlock(&track_lock);
	if (n)
		srv_log(SG_LOG_WARN, "http_request_deadline",
			"closed=%d reason=request_not_complete_within_%ds", n, request_timeout);
	return n;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct srv *s = cls;
	struct conn_state *cs = *con_cls;
	struct srv_resp out = {0, NULL};
	enum MHD_Result ret;
	size_t route;
	const char *ua;

	(void)version;
	if (!cs) {
		cs = calloc(1, sizeof(*cs));
		if (!cs)
			return MHD_NO;
		clock_gettime(CLOCK_MONOTONIC, &cs->t0);
		cs->req.conn = conn;
		cs->req.url = url;
		cs->req.method = method;
		source_ip(conn, cs->req.source_ip);
		ua = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "User-Agent");
		if (ua) {
			size_t n = strlen(ua);

			/* Cut at a character boundary, then neither control characters nor bytes
			 * that are not UTF-8 reach the audit log or the server log. */
			if (n >= sizeof(cs->req.user_agent)) {
				n = sizeof(cs->req.user_agent) - 1;
				while (n > 0 && ((unsigned char)ua[n] & 0xc0) == 0x80)
					n--;
			}
			memcpy(cs->req.user_agent, ua, n);
			cs->req.user_agent[n] = 0;
			sg_utf8_sanitize(cs->req.user_agent);
			for (char *p = cs->req.user_agent; *p; p++) {
				if ((unsigned char)*p < 0x20 || *p == 0x7f)
					*p = '?';
			}
		}
		{
			bool pm;
			struct srv_req scratch = {0};

			snprintf(cs->path, sizeof(cs->path), "%s", url);
			route = find_route(method, cs->path, &scratch, &pm);
			cs->limit = route < NROUTES && (routes[route].flags & AUTH_PUBLIC)
					? SG_MIN(s->max_body, (size_t)PUBLIC_BODY_MAX)
					: s->max_body;
		}
		*con_cls = cs;
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		if (cs->req.body_too_big || cs->req.body_len + n > cs->limit) {
			/* Read and drop the rest so the client gets its 413 instead of a reset. */
			cs->req.body_too_big = true;
			free(cs->req.body);
			cs->req.body = NULL;
			cs->req.body_len = 0;
			return MHD_YES;
		}
		if (cs->req.body_len + n + 1 > cs->cap) {
			size_t cap = SG_MAX(cs->cap * 2, cs->req.body_len + n + 1);
			char *b = realloc(cs->req.body, cap);

			if (!b)
				return MHD_NO;
			cs->req.body = b;
			cs->cap = cap;
		}
		memcpy(cs->req.body + cs->req.body_len, upload_data, n);
		cs->req.body_len += n;
		cs->req.body[cs->req.body_len] = 0;
		return MHD_YES;
	}
	track_busy(conn, true);
	dispatch(s, cs, &out, &route);
	if (!out.mhd)
		srv_error(&out, 500, NULL, "no response");
	if (!out.mhd)
		return MHD_NO;
	metrics_record(route, out.status, elapsed(&cs->t0));
	if (out.status >= 500 || sg_log_enabled(SG_LOG_DEBUG)) {
		char lbl[128], q[160];

		/* The route pattern, never the path: a path can carry a temporary access token. */
		srv_log(out.status >= 500 ? SG_LOG_WARN : SG_LOG_DEBUG, "http_request",
			"method=%s route=%s status=%d src=%s", method,
			sg_log_quote(q, sizeof(q), route_label(route, lbl, sizeof(lbl))),
			out.status, cs->req.source_ip);
	}
	ret = MHD_queue_response(conn, (unsigned)out.status, out.mhd);
	MHD_destroy_response(out.mhd);
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct conn_state *cs = *con_cls;

	(void)cls;
	(void)toe;
	track_busy(conn, false);
	if (!cs)
		return;
	json_decref(cs->req.json);
	free(cs->req.body);
	free(cs);
	*con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512], q[600];

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = 0;
	srv_log(SG_LOG_WARN, "http_library", "msg=%s", sg_log_quote(q, sizeof(q), buf));
}

struct MHD_Daemon *srv_http_start(struct srv *s, const struct srv_http_opts *o, char *err,
				  size_t errlen)
{
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
			 MHD_USE_POLL | MHD_USE_ERROR_LOG;
	struct MHD_Daemon *d;

	if (o->addr->sa_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (o->tls_cert)
		flags |= MHD_USE_TLS;
	request_timeout = o->request_timeout;
	d = MHD_start_daemon(
	    flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	    MHD_OPTION_SOCK_ADDR, o->addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
	    MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL, MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned)o->max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    (unsigned)o->max_per_ip, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->timeout,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024),
	    o->tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, o->tls_cert,
	    MHD_OPTION_HTTPS_MEM_KEY, o->tls_key, MHD_OPTION_END);
	if (!d)
		snprintf(err, errlen,
			 "cannot start the HTTP listener (address in use, or a bad "
			 "certificate or key)");
	return d;
}

uint16_t srv_http_port(struct MHD_Daemon *d)
{
	const union MHD_DaemonInfo *i = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);

	return i ? i->port : 0;
}
