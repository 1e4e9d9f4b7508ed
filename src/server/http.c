/* The request side of the management server above the HTTP front (httpd.c): decoding of the
 * request target, the route table with each route's minimum role, authentication, bodies, JSON
 * responses and errors, and Prometheus metrics (request counts by route and status, latency
 * histograms by route). */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "crypto/crypto.h"
#include "secureguard/sg_errors.h"
#include "server/audit.h"
#include "server/api.h"
#include "server/httpd.h"
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

/* Events an attacker can cause at will: counted always, logged at most once per period. */
#define LIMITED_EVENTS 32
static struct limited_event {
	const char *event; /* a string literal of the caller */
	uint64_t total, suppressed;
	struct timespec last; /* CLOCK_MONOTONIC of the last line logged */
} limited[LIMITED_EVENTS];
static pthread_mutex_t limited_lock = PTHREAD_MUTEX_INITIALIZER;

void srv_log_limited(int level, const char *event, const char *fmt, ...)
{
	char buf[SG_LOG_LINE_MAX];
	struct limited_event *e = NULL;
	struct timespec now;
	uint64_t suppressed = 0;
	bool emit = false;
	va_list ap;

	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&limited_lock);
	for (int i = 0; i < LIMITED_EVENTS; i++) {
		if (!limited[i].event || !strcmp(limited[i].event, event)) {
			e = &limited[i];
			break;
		}
	}
	if (e) {
		if (!e->event) {
			e->event = event;
			e->last.tv_sec = now.tv_sec - SRV_LOG_LIMIT_SECS;
		}
		e->total++;
		if (now.tv_sec - e->last.tv_sec >= SRV_LOG_LIMIT_SECS) {
			emit = true;
			suppressed = e->suppressed;
			e->suppressed = 0;
			e->last = now;
		} else {
			e->suppressed++;
		}
	} else {
		emit = true; /* more event names than slots: a programming error, not an attack */
	}
	pthread_mutex_unlock(&limited_lock);
	if (!emit || !sg_log_enabled((enum sg_log_level)level))
		return;
	buf[0] = 0;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(buf, sizeof(buf), fmt, ap);
		va_end(ap);
	}
	srv_log(level, event, "%s%ssuppressed=%llu", buf, buf[0] ? " " : "",
		(unsigned long long)suppressed);
}

/* ---- routes -----------------------------------------------------------------------------------
 */

/* Routes open to anyone take small bodies only (a login is well under 2 KiB). */
#define PUBLIC_BODY_MAX 8192

/* The routes are api_routes (api_spec.c); metrics have a slot per route and one for requests
 * that matched none. */
#define MAX_ROUTES	128
#define NROUTES		api_nroutes
#define ROUTE_UNMATCHED NROUTES

/* Matches the decoded path segments against pattern ("/api/users/{id}": {id} is a parameter),
 * collecting parameters. 1 = match. */
static int match(const char *pattern, char *const *seg, int nseg, const char **params,
		 int *nparams)
{
	const char *p = pattern;
	int i = 0;

	*nparams = 0;
	while (*p == '/') {
		const char *e = strchr(p + 1, '/');
		size_t n = e ? (size_t)(e - p - 1) : strlen(p + 1);

		if (i >= nseg)
			return 0;
		if (n >= 2 && p[1] == '{' && p[n] == '}') {
			if (!seg[i][0] || *nparams >= 2)
				return 0;
			params[(*nparams)++] = seg[i];
		} else if (strlen(seg[i]) != n || memcmp(seg[i], p + 1, n)) {
			return 0;
		}
		i++;
		p += n + 1;
	}
	return i == nseg;
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
static struct route_metrics metrics[MAX_ROUTES + 1];

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
	snprintf(buf, len, "%s %s", api_routes[i].method, api_routes[i].path);
	return buf;
}

/* The front whose connection metrics /metrics shows (one server per process). */
static const struct srv_httpd *httpd_for_metrics;

void srv_http_set_front(const struct srv_httpd *h)
{
	/* One metrics slot per route: a table outgrowing it is a build mistake, caught at the
	 * first start. */
	if (api_nroutes > MAX_ROUTES) {
		fprintf(stderr, "secureguard server: %zu routes, metrics hold %d\n", api_nroutes,
			MAX_ROUTES);
		abort();
	}
	httpd_for_metrics = h;
}

static char *metrics_text(struct srv *s, size_t *len)
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
	srv_httpd_metrics(httpd_for_metrics, f);
	srv_live_metrics(f);
	fprintf(f,
		"# HELP secureguard_events_total Events an attacker can cause at will, counted "
		"(and logged at most once per %d s).\n"
		"# TYPE secureguard_events_total counter\n",
		SRV_LOG_LIMIT_SECS);
	pthread_mutex_lock(&limited_lock);
	for (int i = 0; i < LIMITED_EVENTS && limited[i].event; i++)
		fprintf(f, "secureguard_events_total{event=\"%s\"} %llu\n", limited[i].event,
			(unsigned long long)limited[i].total);
	pthread_mutex_unlock(&limited_lock);
	fprintf(f,
		"# HELP secureguard_password_checks_total Password hashes verified (every login "
		"attempt costs one, whatever its outcome).\n"
		"# TYPE secureguard_password_checks_total counter\n"
		"secureguard_password_checks_total %llu\n",
		srv_pw_checks());
	{
		struct sg_db_conn *c;
		struct sg_db_res *res = NULL;
		int size, in_use, waiting, rc;

		sg_db_pool_stats(s->db, &size, &in_use, &waiting);
		fprintf(f,
			"# HELP secureguard_db_connections The database pool's connections.\n"
			"# TYPE secureguard_db_connections gauge\n"
			"secureguard_db_connections{state=\"in_use\"} %d\n"
			"secureguard_db_connections{state=\"idle\"} %d\n"
			"# HELP secureguard_db_waiting Requests waiting for a database connection.\n"
			"# TYPE secureguard_db_waiting gauge\n"
			"secureguard_db_waiting %d\n",
			in_use, size - in_use, waiting);
		/* The scrape's own query: whether the database answers, and the chain's length
		 * (the newest row's id: ids are contiguous from 1, AUDIT.md). */
		c = sg_db_acquire(s->db);
		rc = sg_db_query(c, &res, "SELECT COALESCE(MAX(id), 0) FROM audit_log", 0, NULL);
		fprintf(f,
			"# HELP secureguard_db_up Whether the database answered this scrape's query.\n"
			"# TYPE secureguard_db_up gauge\n"
			"secureguard_db_up %d\n",
			rc == 1);
		if (rc == 1)
			fprintf(f,
				"# HELP secureguard_audit_chain_length Rows in the audit hash chain.\n"
				"# TYPE secureguard_audit_chain_length gauge\n"
				"secureguard_audit_chain_length %lld\n",
				(long long)srv_res_i64(res, 0, 0));
		sg_db_res_free(res);
		sg_db_release(c);
	}
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* ---- responses --------------------------------------------------------------------------------
 */

void srv_resp_clear(struct srv_resp *out)
{
	free(out->body);
	if (out->stream_free)
		out->stream_free(out->stream_cls);
	memset(out, 0, sizeof(*out));
}

bool srv_resp_header(struct srv_resp *out, const char *name, const char *value)
{
	size_t room = sizeof(out->headers) - out->hlen;
	int n;

	if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
		return false;
	n = snprintf(out->headers + out->hlen, room, "%s: %s\r\n", name, value);
	if (n > 0 && (size_t)n < room) {
		out->hlen += (size_t)n;
		return true;
	}
	out->headers[out->hlen] = 0;
	return false;
}

void srv_body(struct srv_resp *out, int status, const char *ctype, const void *buf, size_t len,
	      const char *disposition)
{
	char *b = malloc(len + 1);

	if (!b) {
		static const char oom[] = "{\"type\":\"about:blank\",\"title\":\"Internal Server "
					  "Error\",\"status\":500,\"detail\":\"out of memory\"}";

		srv_resp_clear(out);
		out->status = 500;
		snprintf(out->ctype, sizeof(out->ctype), "application/problem+json");
		out->body = strdup(oom);
		out->len = out->body ? strlen(oom) : 0;
		return;
	}
	memcpy(b, buf, len);
	b[len] = 0;
	srv_body_take(out, status, ctype, b, len);
	if (disposition)
		srv_resp_header(out, "Content-Disposition", disposition);
}

/* Headers a handler set (Retry-After, ...) survive a new body. */
void srv_body_take(struct srv_resp *out, int status, const char *ctype, char *buf, size_t len)
{
	char hdr[sizeof(out->headers)];
	size_t hlen = out->hlen;

	memcpy(hdr, out->headers, sizeof(hdr));
	srv_resp_clear(out);
	memcpy(out->headers, hdr, sizeof(hdr));
	out->hlen = hlen;
	out->status = status;
	snprintf(out->ctype, sizeof(out->ctype), "%s", ctype);
	out->body = buf;
	out->len = len;
}

void srv_stream(struct srv_resp *out, int status, const char *ctype, const char *disposition,
		srv_stream_fn fn, void (*free_fn)(void *cls), void *cls)
{
	srv_resp_clear(out);
	out->status = status;
	snprintf(out->ctype, sizeof(out->ctype), "%s", ctype);
	out->stream = fn;
	out->stream_free = free_fn;
	out->stream_cls = cls;
	if (disposition)
		srv_resp_header(out, "Content-Disposition", disposition);
}

void srv_json(struct srv_resp *out, int status, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

	json_decref(j);
	if (!s) {
		srv_error(out, 500, NULL, "out of memory");
		return;
	}
	srv_body(out, status, "application/json", s, strlen(s), NULL);
	free(s);
}

static const char *status_title(int status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 402: return "Payment Required";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 417: return "Expectation Failed";
	case 501: return "Not Implemented";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return status < 500 ? "Client Error" : "Server Error";
	}
}

/* Every error is an RFC 9457 problem document: type (always about:blank: the status says it
 * all), title (the status's reason phrase), status, detail (what is wrong, for a human), and
 * our extension member field (the input at fault) when there is one. */
void srv_error(struct srv_resp *out, int status, const char *field, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	json_t *j;
	char *s;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* A message can quote input: keep the document valid UTF-8. */
	sg_utf8_sanitize(msg);
	j = json_pack("{s:s,s:s,s:i,s:s}", "type", "about:blank", "title", status_title(status),
		      "status", status, "detail", msg);
	if (j && field) {
		char f[128];

		snprintf(f, sizeof(f), "%s", field);
		sg_utf8_sanitize(f);
		json_object_set_new(j, "field", json_string(f));
	}
	s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!s) {
		static const char oom[] = "{\"type\":\"about:blank\",\"title\":\"Internal Server "
					  "Error\",\"status\":500,\"detail\":\"out of memory\"}";

		srv_body(out, 500, "application/problem+json", oom, sizeof(oom) - 1, NULL);
		return;
	}
	srv_body(out, status, "application/problem+json", s, strlen(s), NULL);
	free(s);
}

void srv_problems(struct srv_resp *out, int status, const char *detail, json_t *errors,
		  json_t *warnings)
{
	json_t *j = json_pack("{s:s,s:s,s:i,s:s}", "type", "about:blank", "title",
			      status_title(status), "status", status, "detail", detail);
	char *s;

	if (j && errors)
		json_object_set(j, "errors", errors);
	if (j && warnings && json_array_size(warnings))
		json_object_set(j, "warnings", warnings);
	json_decref(errors);
	json_decref(warnings);
	s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!s) {
		srv_error(out, 500, NULL, "out of memory");
		return;
	}
	srv_body(out, status, "application/problem+json", s, strlen(s), NULL);
	free(s);
}

void srv_park(struct srv_resp *out, int ms)
{
	srv_body(out, 204, "", "", 0, NULL);
	out->park_ms = ms > 0 ? ms : 1;
}

void srv_retry_after(struct srv_resp *out, int secs)
{
	char v[16];

	snprintf(v, sizeof(v), "%d", secs > 0 ? secs : 1);
	srv_resp_header(out, "Retry-After", v);
}

void srv_dberr(struct srv_resp *out, struct sg_db_conn *c, int rc)
{
	char q[256];

	if (rc == SG_EAGAIN) {
		srv_error(out, 503, NULL, "the database is busy; retry");
		srv_resp_header(out, "Retry-After", "1");
		return;
	}
	if (rc == SG_EIO && c && sg_db_conn_engine(c) == SG_DB_POSTGRES) {
		/* The database is away (restarting, failing over, unreachable): the pool
		 * reconnects by itself when it is back, so tell the client to retry rather than
		 * report a fault. One log line per 10 s, not one per request. */
		srv_log_limited(SG_LOG_ERROR, "db_unreachable", "msg=%s",
				sg_log_quote(q, sizeof(q), sg_db_errmsg(c)));
		srv_error(out, 503, NULL, "the database is unreachable; retry");
		srv_resp_header(out, "Retry-After", "1");
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
	for (int i = 0; i < r->nquery; i++) {
		if (!strcmp(r->query[i].name, name))
			return r->query[i].value;
	}
	return NULL;
}

const char *srv_header(struct srv_req *r, const char *name)
{
	for (int i = 0; i < r->nheaders; i++) {
		if (!strcasecmp(r->headers[i].name, name))
			return r->headers[i].value;
	}
	return NULL;
}

bool srv_query_check(struct srv_req *r, struct srv_resp *out, const char *const *allowed)
{
	for (int i = 0; i < r->nquery; i++) {
		const char *const *a = allowed;

		while (a && *a && strcmp(*a, r->query[i].name))
			a++;
		if (!a || !*a) {
			srv_error(out, 400, r->query[i].name, "unknown query parameter");
			return false;
		}
	}
	return true;
}

/* ---- decoding of the request target ------------------------------------------------------
 * The target is decoded once, strictly, before anything looks at it: the path into segments
 * (each percent-decoded on its own, so "%2F" is data, never a separator), the query into
 * name=value pairs ('+' is a space, as in forms). A bad escape, NUL, bytes that are not UTF-8,
 * a parameter without '=', an empty one or a repeated one is a 400 naming it: a value the
 * client did not mean must never be half-understood. */


/* Decodes s[0..n) into out (room for n + 1), NUL-terminated. false on a bad escape, an escaped
 * NUL, or bytes that are not UTF-8 once decoded. */
static bool pct_decode(char *out, const char *s, size_t n, bool plus)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int hi, lo;

			if (n - i < 3)
				return false;
			hi = sg_hexval(s[i + 1]);
			lo = sg_hexval(s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return false;
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else if (plus && s[i] == '+') {
			out[o++] = ' ';
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = 0;
	return sg_utf8_valid(out, o);
}

bool srv_http_decode_target(struct srv_req *r, struct srv_resp *out, struct srv_target *t)
{
	const char *u = r->target, *q = strchr(u, '?');
	size_t plen = q ? (size_t)(q - u) : strlen(u), tlen = strlen(u);
	char *d;

	t->nseg = 0;
	r->nquery = 0;
	if (u[0] != '/' || strchr(u, '#')) {
		srv_error(out, 400, NULL, "the request target must be a path (origin form)");
		return false;
	}
	r->decoded = d = malloc(tlen + SRV_MAX_SEGMENTS + 2 * SRV_MAX_QUERY + 2);
	if (!d) {
		srv_error(out, 503, NULL, "out of memory");
		return false;
	}
	/* A trailing slash names the same resource. */
	if (plen > 1 && u[plen - 1] == '/')
		plen--;
	for (size_t i = 1; plen > 1 && i <= plen;) {
		const char *e = memchr(u + i, '/', plen - i);
		size_t n = e ? (size_t)(e - (u + i)) : plen - i;

		if (t->nseg == SRV_MAX_SEGMENTS) {
			srv_error(out, 404, NULL, "no such endpoint");
			return false;
		}
		if (!pct_decode(d, u + i, n, false)) {
			srv_error(out, 400, NULL,
				  "the path has a bad percent escape, an encoded NUL, or bytes that "
				  "are not UTF-8");
			return false;
		}
		if (!strcmp(d, ".") || !strcmp(d, "..")) {
			srv_error(out, 400, NULL, "the path may not have . or .. segments");
			return false;
		}
		t->seg[t->nseg++] = d;
		d += strlen(d) + 1;
		i += n + 1;
	}
	if (!q || !q[1])
		return true;
	for (const char *p = q + 1;;) {
		const char *amp = strchr(p, '&'), *eq;
		size_t n = amp ? (size_t)(amp - p) : strlen(p);
		char *name;

		eq = memchr(p, '=', n);
		name = d;
		if (!pct_decode(d, p, eq ? (size_t)(eq - p) : n, true)) {
			srv_error(out, 400, NULL,
				  "a query parameter name has a bad percent escape, an encoded NUL, "
				  "or bytes that are not UTF-8");
			return false;
		}
		d += strlen(d) + 1;
		if (!name[0]) {
			srv_error(out, 400, NULL, "the query has an empty parameter");
			return false;
		}
		if (!eq) {
			srv_error(out, 400, name, "query parameter without a value (name=value)");
			return false;
		}
		if (!pct_decode(d, eq + 1, n - (size_t)(eq + 1 - p), true)) {
			srv_error(out, 400, name,
				  "bad percent escape, encoded NUL, or bytes that are not UTF-8");
			return false;
		}
		for (int i = 0; i < r->nquery; i++) {
			if (!strcmp(r->query[i].name, name)) {
				srv_error(out, 400, name, "query parameter given more than once");
				return false;
			}
		}
		if (r->nquery == SRV_MAX_QUERY) {
			srv_error(out, 400, name, "more than %d query parameters", SRV_MAX_QUERY);
			return false;
		}
		r->query[r->nquery].name = name;
		r->query[r->nquery].value = d;
		r->nquery++;
		d += strlen(d) + 1;
		if (!amp)
			break;
		p = amp + 1;
	}
	return true;
}

json_t *srv_http_form(const char *body, size_t len, struct srv_resp *out)
{
	char *buf = malloc(len + 1), *name, *val;
	json_t *o = json_object();
	size_t i = 0;

	if (!buf || !o) {
		free(buf);
		json_decref(o);
		srv_error(out, 503, NULL, "out of memory");
		return NULL;
	}
	while (i < len) {
		const char *p = body + i, *amp = memchr(p, '&', len - i), *eq;
		size_t n = amp ? (size_t)(amp - p) : len - i;

		eq = memchr(p, '=', n);
		name = buf;
		if (!pct_decode(name, p, eq ? (size_t)(eq - p) : n, true) || !name[0]) {
			srv_error(out, 400, NULL,
				  "a form field name is empty, has a bad percent escape, an encoded "
				  "NUL, or bytes that are not UTF-8");
			goto fail;
		}
		if (!eq) {
			srv_error(out, 400, name, "form field without a value (name=value)");
			goto fail;
		}
		val = name + strlen(name) + 1;
		if (!pct_decode(val, eq + 1, n - (size_t)(eq + 1 - p), true)) {
			srv_error(out, 400, name,
				  "bad percent escape, encoded NUL, or bytes that are not UTF-8");
			goto fail;
		}
		if (json_object_get(o, name)) {
			srv_error(out, 400, name, "form field given more than once");
			goto fail;
		}
		json_object_set_new(o, name, json_string(val));
		i += n + 1;
	}
	sg_memzero(buf, len + 1); /* a password */
	free(buf);
	return o;
fail:
	sg_memzero(buf, len + 1);
	free(buf);
	json_decref(o);
	return NULL;
}

/* ---- dispatch ---------------------------------------------------------------------------------
 */

/* The route for method and decoded segments; NROUTES when none, with *path_matched telling 405
 * from 404. */
static size_t find_route(const char *method, const struct srv_target *t, const char **params,
			 int *nparams, bool *path_matched)
{
	size_t i;

	*path_matched = false;
	size_t get = NROUTES;

	for (i = 0; i < NROUTES; i++) {
		if (!match(api_routes[i].path, t->seg, t->nseg, params, nparams))
			continue;
		*path_matched = true;
		if (!strcmp(api_routes[i].method, method))
			return i;
		if (!strcmp(method, "HEAD") && !strcmp(api_routes[i].method, "GET") &&
		    get == NROUTES)
			get = i;
	}
	/* HEAD is GET without the body, unless a route says otherwise. */
	if (get < NROUTES)
		match(api_routes[get].path, t->seg, t->nseg, params, nparams);
	return get;
}

size_t srv_http_body_limit(struct srv *s, const char *method, const char *target)
{
	struct srv_req r = {.target = target};
	struct srv_resp out = {0};
	struct srv_target t;
	const char *params[2];
	int np;
	bool pm;
	size_t i, lim = s->max_body;

	if (srv_http_decode_target(&r, &out, &t)) {
		i = find_route(method, &t, params, &np, &pm);
		/* Open to anyone: small bodies only (a login is well under 2 KiB). */
		if (i < NROUTES && (api_routes[i].flags & AUTH_PUBLIC))
			lim = SG_MIN(s->max_body, (size_t)PUBLIC_BODY_MAX);
	}
	srv_resp_clear(&out);
	free(r.decoded);
	return lim;
}

/* application/json, with at most a charset parameter of utf-8 (RFC 8259 section 8.1). */
static bool json_media_type(const char *ct)
{
	const char *p;

	if (!ct || strncasecmp(ct, "application/json", 16))
		return false;
	p = ct + 16;
	while (*p == ' ' || *p == '\t')
		p++;
	if (!*p)
		return true;
	if (*p++ != ';')
		return false;
	while (*p == ' ' || *p == '\t')
		p++;
	if (strncasecmp(p, "charset=", 8))
		return false;
	p += 8;
	if (!strncasecmp(p, "\"utf-8\"", 7))
		p += 7;
	else if (!strncasecmp(p, "utf-8", 5))
		p += 5;
	else
		return false;
	while (*p == ' ' || *p == '\t')
		p++;
	return !*p;
}

/* The body of POST/PUT as the route wants it into r->json; false with out set. */
static bool read_body(const struct api_route *rt, struct srv_req *r, struct srv_resp *out)
{
	json_error_t jerr;
	char why[128];

	if (!rt->body) {
		if (r->body_len) {
			srv_error(out, 400, NULL, "%s %s takes no body", rt->method, rt->path);
			return false;
		}
		return true;
	}
	if (!r->body_len) {
		if (rt->body_required) {
			srv_error(out, 400, NULL, "a JSON body is required");
			return false;
		}
		r->json = json_object();
		return true;
	}
	if (rt->body_form) {
		const char *ct = srv_header(r, "content-type");

		/* A form (RFC 6749 section 4.1.3, HTML's login form): no charset other than
		 * UTF-8. */
		if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) ||
		    (ct[33] && ct[33] != ';') || (ct[33] == ';' && !strcasestr(ct, "utf-8"))) {
			srv_error(out, 415, NULL,
				  "the body must be Content-Type: application/x-www-form-urlencoded");
			return false;
		}
		r->json = srv_http_form(r->body, r->body_len, out);
		return r->json && api_check_body(rt, r, out);
	}
	if (!json_media_type(srv_header(r, "content-type"))) {
		srv_error(out, 415, NULL,
			  "the body must be Content-Type: application/json (charset utf-8 if "
			  "given)");
		return false;
	}
	if (!srv_json_prescan(r->body, r->body_len, why, sizeof(why))) {
		srv_error(out, 400, NULL, "JSON body refused: %s", why);
		return false;
	}
	/* Duplicate keys are refused: a body must say one thing per field. */
	r->json = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!r->json) {
		srv_error(out, 400, NULL, "bad JSON at line %d column %d: %s", jerr.line,
			  jerr.column, jerr.text);
		return false;
	}
	if (!json_is_object(r->json)) {
		srv_error(out, 400, NULL, "the body must be a JSON object");
		return false;
	}
	return api_check_body(rt, r, out);
}

static void dispatch(struct srv *s, struct srv_req *r, struct srv_resp *out, size_t *route)
{
	const struct api_route *rt;
	struct srv_target t;
	bool path_matched;
	size_t i;

	*route = ROUTE_UNMATCHED;
	if (!srv_http_decode_target(r, out, &t))
		return;
	i = find_route(r->method, &t, r->params, &r->nparams, &path_matched);
	if (i == NROUTES) {
		if (path_matched)
			srv_error(out, 405, NULL, "method %s not allowed here", r->method);
		else if (!srv_console_serve(s, r, out, &t)) /* the admin console's files */
			srv_error(out, 404, NULL, "no such endpoint");
		return;
	}
	*route = i;
	rt = &api_routes[i];
	r->route = rt;
	/* Who is asking, and whether they may, before any work on the input: parsing JSON costs
	 * many times its size in memory, and that is not for anonymous callers to spend. */
	if (!(rt->flags & AUTH_PUBLIC)) {
		if (!srv_authenticate(s, r, out))
			return;
		if (r->who.kind == PRINCIPAL_CLIENT && !(rt->flags & AUTH_CLIENT_OK)) {
			srv_error(out, 403, NULL, "a client session may not use this endpoint");
			return;
		}
		if (r->who.kind == PRINCIPAL_AGENT &&
		    !(rt->flags & (AUTH_AGENT_OK | AUTH_AGENT_ONLY))) {
			srv_error(out, 403, NULL, "an agent session may not use this endpoint");
			return;
		}
		if (r->who.kind != PRINCIPAL_AGENT && (rt->flags & AUTH_AGENT_ONLY)) {
			srv_error(out, 403, NULL, "only an agent's session may use this endpoint");
			return;
		}
		if (r->who.kind == PRINCIPAL_APIKEY && (rt->flags & AUTH_USER_ONLY)) {
			srv_error(out, 403, NULL,
				  "this endpoint needs a user login, not an API key");
			return;
		}
		if (r->who.needs_2fa && !(rt->flags & AUTH_MFA_SETUP)) {
			srv_error(out, 403, NULL,
				  "this instance requires two-factor authentication: enrol first "
				  "(POST /api/auth/totp, then POST /api/auth/totp/confirm)");
			return;
		}
		if (r->who.kind != PRINCIPAL_CLIENT && r->who.kind != PRINCIPAL_AGENT &&
		    r->who.role < rt->min_role) {
			srv_error(out, 403, NULL, "role %s may not do this (needs %s)",
				  srv_role_name(r->who.role), srv_role_name(rt->min_role));
			return;
		}
	}
	if (!api_check_params(rt, r, out) || !read_body(rt, r, out))
		return;
	if (!rt->fn && !strcmp(rt->path, "/api/health")) {
		srv_json(out, 200,
			 json_pack("{s:s,s:s,s:o}", "status", "ok", "version", SG_VERSION, "license",
				   srv_license_json(s, srv_now())));
		return;
	}
	if (!rt->fn) {
		size_t len = 0;
		char *m = metrics_text(s, &len);

		if (!m) {
			srv_error(out, 500, NULL, "out of memory");
			return;
		}
		srv_body(out, 200, "text/plain; version=0.0.4", m, len, NULL);
		free(m);
		return;
	}
	rt->fn(s, r, out);
}

static double elapsed(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static char req_prefix[17];
static atomic_ullong req_counter;

static void request_id_prefix(void)
{
	snprintf(req_prefix, sizeof(req_prefix), "%016llx", (unsigned long long)sg_random_u64());
}

/* The request's id: the X-Request-Id a trusted proxy sent when it is 1 to 64 characters of
 * [A-Za-z0-9._:-] (anything else could forge log fields), otherwise one made here: 16 random
 * hex digits drawn at start, a dash and a counter, unique across the servers of a cluster. */
static void request_id(struct srv *s, struct srv_req *r, char *out)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	const char *h = r->from_proxy ? srv_header(r, "x-request-id") : NULL;

	if (h) {
		size_t n = strlen(h);
		bool ok = n >= 1 && n < SRV_REQUEST_ID_MAX;

		for (size_t i = 0; ok && i < n; i++) {
			char c = h[i];

			ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9') || strchr("._:-", c);
		}
		if (ok) {
			memcpy(out, h, n + 1);
			return;
		}
	}
	pthread_once(&once, request_id_prefix);
	snprintf(out, SRV_REQUEST_ID_MAX, "%s-%llx", req_prefix,
		 (unsigned long long)atomic_fetch_add(&req_counter, 1) + 1);
}

/* Who made the request, for the log: "user:ID", "apikey:ID", "client:ID", "agent:ID" or "-". */
static const char *principal_label(const struct srv_principal *w, char *buf, size_t len)
{
	static const char *const kinds[] = {"-", "user", "apikey", "client", "agent"};

	if (w->kind == PRINCIPAL_NONE || !w->id[0])
		return "-";
	snprintf(buf, len, "%s:%s", kinds[w->kind], w->id);
	return buf;
}

void srv_http_handle(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct timespec t0;
	const char *ua;
	size_t route;
	char idbuf[SRV_REQUEST_ID_MAX];

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (!r->request_id) { /* a caller without the HTTP front's storage */
		idbuf[0] = 0;
		r->request_id = idbuf;
	}
	if (!r->started)
		r->started = &t0;
	if (!r->request_id[0])
		request_id(s, r, r->request_id);
	ua = srv_header(r, "user-agent");
	if (ua) {
		size_t n = strlen(ua);

		/* Cut at a character boundary, then neither control characters nor bytes that are
		 * not UTF-8 reach the audit log or the server log. */
		if (n >= sizeof(r->user_agent)) {
			n = sizeof(r->user_agent) - 1;
			while (n > 0 && ((unsigned char)ua[n] & 0xc0) == 0x80)
				n--;
		}
		memcpy(r->user_agent, ua, n);
		r->user_agent[n] = 0;
		sg_utf8_sanitize(r->user_agent);
		for (char *p = r->user_agent; *p; p++) {
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = '?';
		}
	}
	dispatch(s, r, out, &route);
	if (!out->status)
		srv_error(out, 500, NULL, "no response");
	srv_resp_header(out, "X-Request-Id", r->request_id);
	/* A parked request is counted once, on the run that answers it. */
	if (out->park_ms > 0 && !r->park_expired)
		return;
	metrics_record(route, out->status, elapsed(&t0));
	/* A write went through: tell the other servers (with --redis; without it PostgreSQL's
	 * NOTIFY does, from the triggers). They read the sync revision and wake their long polls
	 * when it moved, so a write that moved nothing costs them one read. */
	if (out->status >= 200 && out->status < 300 && strcmp(r->method, "GET") &&
	    strcmp(r->method, "HEAD"))
		srv_live_publish();
	if (out->status == 503 && !sg_log_enabled(SG_LOG_DEBUG)) {
		char lbl[128], q[160];

		/* Busy (login queue, database): something a flood causes at will. */
		srv_log_limited(SG_LOG_WARN, "http_busy", "method=%s route=%s src=%s request_id=%s",
				r->method,
				sg_log_quote(q, sizeof(q), route_label(route, lbl, sizeof(lbl))),
				r->source_ip, r->request_id);
	} else if (sg_log_enabled(out->status >= 500 ? SG_LOG_WARN : SG_LOG_INFO)) {
		char lbl[128], q[160], who[SRV_ID_LEN + 16], m[48];

		/* One line per request (the access log). The route pattern, never the path: a path
		 * can carry a temporary access token; nor the query string or any header but the
		 * request id. The latency counts from the first run of a parked request. */
		srv_log(out->status >= 500 ? SG_LOG_WARN : SG_LOG_INFO, "http_request",
			"request_id=%s method=%s route=%s status=%d client=%s user=%s "
			"duration_ms=%.3f queue_ms=%.3f",
			r->request_id, sg_log_quote(m, sizeof(m), r->method),
			sg_log_quote(q, sizeof(q), route_label(route, lbl, sizeof(lbl))),
			out->status, r->source_ip, principal_label(&r->who, who, sizeof(who)),
			elapsed(r->started) * 1e3, r->queue_ms);
	}
	if (r->request_id == idbuf)
		r->request_id = NULL;
	if (r->started == &t0)
		r->started = NULL;
}
