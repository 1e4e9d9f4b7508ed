/* The HTTP/1.1 data path: clients, upstream connections to targets, and the exchange of one
 * request between them. docs/GATEWAY.md describes the behaviour; the comments here say why.
 *
 * Every client carries at most one exchange at a time (pipelined requests wait in its input
 * buffer). Bytes move in bounded buffers: a side is read only while the buffer its data goes to
 * has room, so a slow reader slows the writer instead of growing memory (backpressure).
 * Requests are re-framed: the target sees our own head (hop-by-hop fields removed, one framing
 * header, X-Forwarded-* and Forwarded set by us) and a body re-encoded from what the strict
 * parser accepted, so client and target can never disagree on where a request ends.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <secureguard/sg_errors.h>

#include "common/log.h"
#include "gateway/gw_int.h"
#include "net/tls_term.h"

#define CLIENT_OUT_CAP	   GW_CLIENT_OUT_CAP
#define UP_IN_CAP	   (64u * 1024)
#define UP_OUT_EXTRA	   4096u
#define POOL_MAX	   64u
#define POOL_IDLE_NS	   (30 * NS_PER_S)
#define POOL_FRESH_NS	   NS_PER_S /* pooled this recently: taken without a liveness peek */
#define CLOSING_NS	   (5 * NS_PER_S)
#define ACCEPT_BATCH	   64
#define CHUNK_OVERHEAD	   32u /* hex size line and CRLFs around one re-encoded chunk */
#define GW_OIDC_INFLIGHT_MAX 256u /* token exchanges in flight, all resources */
#define HS_TURN_NS	   NS_PER_MS /* first steps of TLS handshakes per loop turn (hs_step) */

/* ---- buffers ---------------------------------------------------------------------------- */

bool gw_buf_alloc(struct gw_buf *b, uint32_t cap)
{
	if (b->p)
		return true;
	b->p = malloc(cap);
	if (!b->p)
		return false;
	b->cap = cap;
	b->off = b->len = 0;
	return true;
}

void gw_buf_free(struct gw_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->cap = b->off = b->len = 0;
}

bool gw_buf_put(struct gw_buf *b, const void *s, size_t n)
{
	if (gw_buf_space(b) < n)
		return false;
	memcpy(gw_buf_tail(b), s, n);
	b->len += (uint32_t)n;
	return true;
}

static bool buf_printf(struct gw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool buf_printf(struct gw_buf *b, const char *fmt, ...)
{
	size_t space = gw_buf_space(b);
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf((char *)gw_buf_tail(b), space, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= space)
		return false;
	b->len += (uint32_t)n;
	return true;
}

/* A growing string for building a head once (then copied into a buffer). */
struct sbuf {
	char *p;
	size_t len, cap;
	bool bad;
};

static void sb_put(struct sbuf *s, const char *p, size_t n)
{
	if (s->bad)
		return;
	if (s->len + n + 1 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		while (cap < s->len + n + 1)
			cap *= 2;
		char *q = realloc(s->p, cap);
		if (!q) {
			s->bad = true;
			return;
		}
		s->p = q;
		s->cap = cap;
	}
	memcpy(s->p + s->len, p, n);
	s->len += n;
	s->p[s->len] = '\0';
}

static void sb_str(struct sbuf *s, const char *p)
{
	sb_put(s, p, strlen(p));
}

/* ---- client I/O (plain or TLS) ---------------------------------------------------------- */

/* >0 bytes, 0 end of stream, -EAGAIN, or another negative errno. */
static ssize_t cio_read(struct gw_client *c, uint8_t *p, size_t n)
{
	if (c->tls)
		return sg_tls_term_read(c->tls, p, n);
	ssize_t r = recv(c->fd, p, n, 0);
	if (r < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -EAGAIN : -errno;
	return r;
}

static ssize_t cio_write(struct gw_client *c, const uint8_t *p, size_t n)
{
	if (c->tls)
		return sg_tls_term_write(c->tls, p, n);
	ssize_t r = send(c->fd, p, n, MSG_NOSIGNAL);
	if (r < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -EAGAIN : -errno;
	return r;
}

/* ---- lifetime --------------------------------------------------------------------------- */

static void client_pump(struct gw_client *c);
static void up_close(struct gw_upstream *u);

static void up_event(void *ctx, uint32_t ev);

static void up_close(struct gw_upstream *u)
{
	if (u->pool.next) {
		gw_list_del(&u->pool);
		u->t->n_idle--;
	}
	gw_list_del(&u->link);
	evloop_del(u->gw->loop, &u->src);
	close(u->fd);
	gw_buf_free(&u->in);
	gw_buf_free(&u->out);
	gw_rt_put(u->rt);
	/* The loop may still hold this source in its batch: evloop_del neutralised it. */
	free(u);
}

void gw_target_drop_idle(struct gw_target *t)
{
	while (!gw_list_empty(&t->idle)) {
		struct gw_upstream *u = gw_container(t->idle.next, struct gw_upstream, pool);
		up_close(u);
	}
}

static void x_release(struct gw_client *c, bool pool_upstream);

static void client_close(struct gw_client *c)
{
	if (c->dead)
		return;
	c->dead = true;
	if (c->x.oidc_req) {
		gw_oidc_cancel(c->x.oidc_req);
		c->x.oidc_req = NULL;
		c->gw->oidc_inflight--;
	}
	if (c->has_x)
		x_release(c, false);
	gw_list_del(&c->hs);
	if (c->h2s) {
		/* A stream's virtual client: the stream ends (cleanly after a whole response). */
		gw_h2_stream_closed(c);
		gw_buf_free(&c->in);
		gw_buf_free(&c->out);
		gw_list_del(&c->link);
		gw_list_add(&c->gw->grave, &c->link);
		return;
	}
	if (c->h2)
		gw_h2_free(c);
	evloop_del(c->gw->loop, &c->src);
	sg_tls_term_conn_free(c->tls);
	c->tls = NULL;
	close(c->fd);
	c->fd = -1;
	gw_buf_free(&c->in);
	gw_buf_free(&c->out);
	gw_src_conn_dec(c->gw, c->skey);
	c->gw->n_clients--;
	gw_list_del(&c->link);
	gw_list_add(&c->gw->grave, &c->link);
}

void gw_reap(struct gw *gw)
{
	while (!gw_list_empty(&gw->grave)) {
		struct gw_client *c = gw_container(gw->grave.next, struct gw_client, link);
		gw_list_del(&c->link);
		free(c->x.s);
		free(c);
	}
}

static void set_interest(struct gw *gw, struct evloop_source *src, uint32_t *cur, uint32_t want)
{
	if (*cur == want || !src->active)
		return;
	if (evloop_mod(gw->loop, src, want) == 0)
		*cur = want;
}

/* ---- responses made by the gateway ------------------------------------------------------ */

static const char *reason_phrase(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 421: return "Misdirected Request";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Status";
	}
}

static void log_access(struct gw_client *c, int status, const char *reason);

/* Writes a complete small response. keep: the connection may carry another request. */
static void respond(struct gw_client *c, int status, bool keep, const char *extra,
		    const char *body)
{
	if (!gw_buf_alloc(&c->out, CLIENT_OUT_CAP)) {
		client_close(c);
		return;
	}
	char text[160];
	if (!body) {
		snprintf(text, sizeof(text), "%d %s\n", status, reason_phrase(status));
		body = text;
	}
	bool head = c->has_x && c->x.method == SG_HTTP_M_HEAD;
	if (!buf_printf(&c->out,
			"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
			"Content-Length: %zu\r\n%s%s\r\n%s",
			status, reason_phrase(status), strlen(body), extra ? extra : "",
			keep ? "" : "Connection: close\r\n", head ? "" : body)) {
		client_close(c);
		return;
	}
	if (!keep)
		c->state = C_CLOSING;
}

/* ---- exchange --------------------------------------------------------------------------- */

static void x_release(struct gw_client *c, bool pool_upstream)
{
	struct gw_exchange *x = &c->x;
	struct gw_upstream *u = x->u;
	if (u) {
		x->u = NULL;
		u->owner = NULL;
		struct gw_target *t = u->t;
		if (pool_upstream && !x->rt->retired && t->n_idle < POOL_MAX && u->in.len == 0 &&
		    u->out.len == 0 && !u->eof && gw_target_usable(t, c->gw->now_ns)) {
			u->reused = true;
			u->pooled_ns = c->gw->now_ns;
			u->deadline_ns = c->gw->now_ns + POOL_IDLE_NS;
			gw_list_add(&t->idle, &u->pool);
			t->n_idle++;
			gw_list_add(&c->gw->conns, &u->link);
			/* EPOLLIN reports a close too; the same interest as in use: no epoll_ctl. */
			set_interest(c->gw, &u->src, &u->ev, EPOLLIN);
		} else {
			up_close(u);
		}
	}
	if (x->t) {
		x->t->active--;
		x->t = NULL;
	}
	free(x->head);
	x->head = NULL;
	if (x->rt)
		gw_rt_put(x->rt);
	x->rt = NULL;
	x->res = NULL;
	c->has_x = false;
}

static void log_access(struct gw_client *c, int status, const char *reason)
{
	struct gw_exchange *x = &c->x;
	struct gw_access a = {
	    .resource = x->res ? x->res->conf->id : NULL,
	    .target = x->t ? x->t->conf->id : NULL,
	    .user = x->s->user[0] ? x->s->user : NULL,
	    .method = x->s->method_s,
	    .method_len = strlen(x->s->method_s),
	    .host = x->s->host,
	    .host_len = strlen(x->s->host),
	    .path = x->s->path,
	    .path_len = strlen(x->s->path),
	    .status = status,
	    .bytes_in = x->req_bytes,
	    .bytes_out = x->bytes_out,
	    .dur_ns = c->gw->now_ns - x->start_ns,
	    .reason = reason,
	    .proto = c->h2s ? "h2" : x->https ? "https" : "http",
	};
	snprintf(a.client, sizeof(a.client), "%s", c->ip_str);
	gw_access_log(c->gw, &a);
	if (x->res)
		gw_observe(x->res, status, a.dur_ns);
}

/* The exchange ended with a response from the gateway itself (no target answered). */
static void x_fail_respond(struct gw_client *c, int status, const char *reason, const char *extra)
{
	struct gw_exchange *x = &c->x;
	/* Keep the connection only if the request has been read whole: otherwise the rest of its
	 * body would be taken for the next request. */
	bool keep = x->client_keepalive && x->req_done && !c->eof;
	log_access(c, status, reason);
	x_release(c, false);
	c->state = C_HEAD;
	respond(c, status, keep, extra, NULL);
	c->deadline_ns = c->gw->now_ns + (uint64_t)c->gw->rt->conf->limits.idle_timeout_ms * NS_PER_MS;
}

static int up_connect(struct gw_client *c, struct gw_target *t, bool reuse,
		      struct gw_upstream **out);

/* Sends the request (again) to a target chosen by the balancer. false when none is left. */
static bool x_start_upstream(struct gw_client *c, const char *sticky, size_t sticky_len)
{
	struct gw_exchange *x = &c->x;
	for (;;) {
		struct gw_target *t = gw_lb_pick(x->res, x->tried_mask, sticky, sticky_len,
						 c->gw->now_ns);
		if (!t)
			return false;
		x->tried_mask |= 1ull << (t->index & 63);
		x->tries++;
		struct gw_upstream *u = NULL;
		int rc = up_connect(c, t, x->retryable, &u);
		if (rc != 0) {
			char b[160];
			sg_log(SG_LOG_WARN, "gw_target_connect_failed",
			       "resource=%s target=%s reason=%s", x->res->conf->id, t->conf->id,
			       sg_log_quote(b, sizeof(b), strerror(-rc)));
			t->failures++;
			gw_target_passive(t, false, c->gw->now_ns);
			if (!x->retryable || x->tries > x->res->conf->retries)
				return false;
			continue;
		}
		x->t = t;
		t->active++;
		t->requests++;
		x->u = u;
		u->owner = c;
		if (!gw_buf_put(&u->out, x->head, x->head_len)) {
			up_close(u);
			x->u = NULL;
			return false;
		}
		if (x->s->sticky_set[0] || (x->res->conf->sticky_cookie &&
					 (sticky_len != strlen(t->conf->id) ||
					  memcmp(sticky, t->conf->id, sticky_len) != 0)))
			snprintf(x->s->sticky_set, sizeof(x->s->sticky_set), "%s", t->conf->id);
		x->sent_ns = c->gw->now_ns;
		c->deadline_ns = c->gw->now_ns +
				 (uint64_t)(u->connected ? x->res->conf->response_timeout_ms
							 : x->res->conf->connect_timeout_ms) *
				     NS_PER_MS;
		return true;
	}
}

/* The target failed before a complete response. */
static void x_up_fail(struct gw_client *c, const char *reason, bool timeout)
{
	struct gw_exchange *x = &c->x;
	struct gw_upstream *u = x->u;
	struct gw_target *t = x->t;
	bool stale = u && u->reused && !x->resp_started && !timeout;
	char b[160];
	sg_log(stale ? SG_LOG_DEBUG : SG_LOG_WARN, "gw_target_failed",
	       "resource=%s target=%s reason=%s reused=%d", x->res->conf->id,
	       t ? t->conf->id : "-", sg_log_quote(b, sizeof(b), reason), u && u->reused);
	if (u) {
		x->u = NULL;
		u->owner = NULL;
		up_close(u);
	}
	if (t) {
		t->active--;
		x->t = NULL;
		if (!stale) {
			t->failures++;
			gw_target_passive(t, false, c->gw->now_ns);
		} else {
			/* A kept-alive connection the target had closed: the same target may be
			 * tried again on a fresh connection. */
			x->tried_mask &= ~(1ull << (t->index & 63));
			x->tries--;
		}
	}
	if (x->resp_started) {
		/* Part of the response is out: the client can only see it cut. */
		log_access(c, x->status ? x->status : 502, reason);
		client_close(c);
		return;
	}
	if (x->retryable && x->tries <= x->res->conf->retries && x_start_upstream(c, NULL, 0))
		return;
	x_fail_respond(c, timeout ? 504 : 502, reason, NULL);
}

/* The response is complete: account, then free the exchange and go on. */
static void x_done(struct gw_client *c)
{
	struct gw_exchange *x = &c->x;
	if (x->t)
		gw_target_passive(x->t, true, c->gw->now_ns);
	log_access(c, x->status, NULL);
	bool keep = x->client_keepalive && !c->eof;
	bool pool = x->resp_keepalive && x->req_done;
	x_release(c, pool);
	c->requests++;
	if (keep) {
		c->state = C_HEAD;
		c->deadline_ns =
		    c->gw->now_ns + (uint64_t)c->gw->rt->conf->limits.idle_timeout_ms * NS_PER_MS;
	} else {
		c->state = C_CLOSING;
		c->deadline_ns = c->gw->now_ns + CLOSING_NS;
	}
}

/* ---- upstream connections --------------------------------------------------------------- */

static bool pooled_alive(struct gw_upstream *u)
{
	uint8_t b;
	ssize_t r = recv(u->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* reuse: an idle connection may be taken. Only requests we can send again take one, since a
 * target may close an idle connection just as we send on it (RFC 9112 section 9.3.1). */
static int up_connect(struct gw_client *c, struct gw_target *t, bool reuse,
		      struct gw_upstream **out)
{
	struct gw *gw = c->gw;
	uint32_t out_cap = gw->rt->conf->limits.max_head + UP_OUT_EXTRA;
	while (reuse && !gw_list_empty(&t->idle)) {
		struct gw_upstream *u = gw_container(t->idle.next, struct gw_upstream, pool);
		gw_list_del(&u->pool);
		t->n_idle--;
		gw_list_del(&u->link);
		/* A target closes an idle connection after its keep-alive timeout (seconds at
		 * least), and a close that came before this turn's poll has already removed it
		 * (up_event). So a connection pooled within the last second is taken without the
		 * peek, a system call per request; should the target have closed it all the same,
		 * the request (retryable, or it would not take a pooled one) goes to a fresh
		 * connection (x_up_fail). */
		if (gw->now_ns - u->pooled_ns > POOL_FRESH_NS && !pooled_alive(u)) {
			up_close(u);
			continue;
		}
		if (!gw_buf_alloc(&u->in, UP_IN_CAP) || !gw_buf_alloc(&u->out, out_cap)) {
			up_close(u);
			return -ENOMEM;
		}
		u->eof = false;
		u->rd = false; /* nothing to read while pooled (or up_event would have closed it) */
		*out = u;
		return 0;
	}
	const struct gw_target_conf *tc = t->conf;
	int fd = socket(tc->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)&tc->addr, tc->addr_len) != 0 &&
	    errno != EINPROGRESS) {
		int e = -errno;
		close(fd);
		return e;
	}
	struct gw_upstream *u = calloc(1, sizeof(*u));
	if (!u || !gw_buf_alloc(&u->in, UP_IN_CAP) || !gw_buf_alloc(&u->out, out_cap)) {
		if (u) {
			gw_buf_free(&u->in);
			free(u);
		}
		close(fd);
		return -ENOMEM;
	}
	u->kind = K_UPSTREAM;
	u->gw = gw;
	u->fd = fd;
	u->t = t;
	u->rt = gw_rt_get(t->res->rt);
	u->ev = EPOLLOUT;
	int rc = evloop_add(gw->loop, &u->src, fd, u->ev, up_event, u);
	if (rc != 0) {
		gw_buf_free(&u->in);
		gw_buf_free(&u->out);
		gw_rt_put(u->rt);
		close(fd);
		free(u);
		return rc;
	}
	*out = u;
	return 0;
}

static void up_event(void *ctx, uint32_t ev)
{
	struct gw_upstream *u = ctx;
	if (!u->owner) {
		/* Idle in a pool: the target closed it or sent bytes nobody asked for. */
		up_close(u);
		return;
	}
	struct gw_client *c = u->owner;
	c->gw->now_ns = evloop_now_ns();
	if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		u->rd = true;
	if (!u->connected) {
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
		if (err == 0 && !(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if (err != 0 || (ev & (EPOLLERR | EPOLLHUP))) {
			x_up_fail(c, err ? strerror(err) : "connection failed", false);
			client_pump(c);
			return;
		}
		u->connected = true;
		c->deadline_ns = c->gw->now_ns +
				 (uint64_t)c->x.res->conf->response_timeout_ms * NS_PER_MS;
	}
	client_pump(c);
}

/* Upstream I/O inside the pump. Returns true on progress; x_up_fail may have run (check
 * c->x.u). */
static bool up_io(struct gw_client *c)
{
	struct gw_upstream *u = c->x.u;
	bool progress = false;
	if (!u || !u->connected)
		return false;
	while (u->out.len) {
		ssize_t w = send(u->fd, gw_buf_data(&u->out), u->out.len, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				break;
			x_up_fail(c, strerror(errno), false);
			return true;
		}
		gw_buf_consume(&u->out, (size_t)w);
		progress = true;
	}
	while (u->rd && !u->eof && gw_buf_space(&u->in) > 0) {
		ssize_t r = recv(u->fd, gw_buf_tail(&u->in), gw_buf_space(&u->in), 0);
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
				u->rd = errno == EINTR;
				break;
			}
			if (c->x.resp_body == SG_HTTP_BODY_CLOSE && c->x.resp_head_done) {
				u->eof = true; /* a reset ends a close-delimited body too */
				progress = true;
				break;
			}
			x_up_fail(c, strerror(errno), false);
			return true;
		}
		if (r == 0) {
			u->eof = true;
			progress = true;
			break;
		}
		size_t asked = gw_buf_space(&u->in);
		u->in.len += (uint32_t)r;
		c->x.resp_started = true;
		progress = true;
		if ((size_t)r < asked) {
			u->rd = false; /* drained; level-triggered epoll says when there is more */
			break;
		}
	}
	return progress;
}

/* ---- request head to target ------------------------------------------------------------- */

static bool is_forwarding_field(const struct sg_http_header *h)
{
	/* Set by us alone: an edge proxy must not pass on what the internet claims. */
	char c = (char)(h->name[0] | 0x20);
	if (c != 'x' && c != 'f')
		return false;
	return sg_http_ieq(h->name, h->name_len, "x-forwarded-for") ||
	       sg_http_ieq(h->name, h->name_len, "x-forwarded-proto") ||
	       sg_http_ieq(h->name, h->name_len, "x-forwarded-host") ||
	       sg_http_ieq(h->name, h->name_len, "x-forwarded-port") ||
	       sg_http_ieq(h->name, h->name_len, "x-real-ip") ||
	       sg_http_ieq(h->name, h->name_len, "x-forwarded-user") ||
	       sg_http_ieq(h->name, h->name_len, "forwarded");
}

/* A Cookie field without the gateway's own cookies (the login state and the session token are
 * credentials for the gateway, not for the target); nothing when none is left. */
static void put_cookies(struct sbuf *s, const struct sg_http_header *h)
{
	const char *p = h->value, *e = h->value + h->value_len, *pair;
	size_t n;
	bool any = false;
	while (sg_http_cookie_next(&p, e, &pair, &n)) {
		bool ours = (n > 11 && memcmp(pair, "sg_session_", 11) == 0) ||
			    (n > 8 && memcmp(pair, "sg_oidc_", 8) == 0);
		if (!ours) {
			sb_str(s, any ? "; " : "Cookie: ");
			sb_put(s, pair, n);
			any = true;
		}
	}
	if (any)
		sb_str(s, "\r\n");
}

static char *build_request_head(struct gw_client *c, const struct sg_http_msg *m,
				const char *path, size_t path_len, const char *query,
				size_t query_len, const struct sg_http_header *drop,
				size_t *out_len)
{
	struct gw_exchange *x = &c->x;
	struct sbuf s = {0};
	sb_put(&s, m->method, m->method_len);
	sb_str(&s, " ");
	sb_put(&s, path, path_len);
	sb_put(&s, query, query_len);
	sb_str(&s, " HTTP/1.1\r\nHost: ");
	sb_put(&s, m->host, m->host_len);
	sb_str(&s, "\r\n");
	for (size_t i = 0; i < m->n_headers; i++) {
		const struct sg_http_header *h = &m->headers[i];
		if (h == drop || h->hop || h->id == SG_HF_HOST || h->id == SG_HF_CONTENT_LENGTH ||
		    h->id == SG_HF_EXPECT || is_forwarding_field(h))
			continue;
		if (h->id == SG_HF_COOKIE) {
			put_cookies(&s, h);
			continue;
		}
		sb_put(&s, h->name, h->name_len);
		sb_str(&s, ": ");
		sb_put(&s, h->value, h->value_len);
		sb_str(&s, "\r\n");
	}
	if (x->s->user[0] && x->res->conf->auth == GW_AUTH_LOGIN) {
		sb_str(&s, "X-Forwarded-User: ");
		sb_str(&s, x->s->user);
		sb_str(&s, "\r\n");
	}
	const char *proto = x->https ? "https" : "http";
	char line[512];
	snprintf(line, sizeof(line), "X-Forwarded-For: %s\r\nX-Forwarded-Proto: %s\r\n", c->ip_str,
		 proto);
	sb_str(&s, line);
	sb_str(&s, "X-Forwarded-Host: ");
	sb_put(&s, m->host, m->host_len);
	/* RFC 7239 section 4 and 6: IPv6 nodes quoted and in brackets. */
	if (c->family == AF_INET6)
		snprintf(line, sizeof(line), "\r\nForwarded: for=\"[%s]\";proto=%s;host=\"", c->ip_str,
			 proto);
	else
		snprintf(line, sizeof(line), "\r\nForwarded: for=%s;proto=%s;host=\"", c->ip_str,
			 proto);
	sb_str(&s, line);
	sb_put(&s, m->host, m->host_len);
	sb_str(&s, "\"\r\n");
	if (m->body == SG_HTTP_BODY_LENGTH) {
		snprintf(line, sizeof(line), "Content-Length: %llu\r\n",
			 (unsigned long long)m->content_length);
		sb_str(&s, line);
	} else if (m->body == SG_HTTP_BODY_CHUNKED) {
		sb_str(&s, "Transfer-Encoding: chunked\r\n");
	} else if (m->method_id == SG_HTTP_M_POST || m->method_id == SG_HTTP_M_PUT ||
		   m->method_id == SG_HTTP_M_PATCH) {
		sb_str(&s, "Content-Length: 0\r\n");
	}
	if (x->websocket)
		sb_str(&s, "Connection: Upgrade\r\nUpgrade: websocket\r\n");
	sb_str(&s, "\r\n");
	if (s.bad) {
		free(s.p);
		return NULL;
	}
	*out_len = s.len;
	return s.p;
}

static void copy_field(char *dst, size_t cap, const char *s, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, s, n);
	dst[n] = '\0';
}

static void handle_metrics(struct gw_client *c, const struct sg_http_msg *m)
{
	bool keep = m->keep_alive && m->body == SG_HTTP_BODY_NONE;
	bool get = m->method_id == SG_HTTP_M_GET || m->method_id == SG_HTTP_M_HEAD;
	if (get && m->target_len == 8 && memcmp(m->target, "/healthz", 8) == 0) {
		/* For orchestrators: alive, which config, how many targets take traffic. */
		char body[256];
		size_t usable = 0, total = 0;
		struct gw_rt *rt = c->gw->rt;
		for (size_t i = 0; i < rt->n_res; i++)
			for (size_t k = 0; k < rt->res[i].n_targets; k++, total++)
				usable += gw_target_usable(&rt->res[i].targets[k], c->gw->now_ns);
		snprintf(body, sizeof(body),
			 "{\"status\":\"ok\",\"config_serial\":%llu,\"resources\":%zu,"
			 "\"targets\":%zu,\"targets_usable\":%zu}\n",
			 (unsigned long long)rt->conf->serial, rt->n_res, total, usable);
		respond(c, 200, keep, NULL, body);
		return;
	}
	if (!get || !((m->target_len == 8 && memcmp(m->target, "/metrics", 8) == 0))) {
		respond(c, 404, keep, NULL, "GET /metrics or /healthz here\n");
		return;
	}
	struct gw_buf body = {0};
	if (!gw_buf_alloc(&body, 1u << 20)) {
		client_close(c);
		return;
	}
	gw_metrics_render(c->gw, &body);
	if (!gw_buf_alloc(&c->out, CLIENT_OUT_CAP)) {
		gw_buf_free(&body);
		client_close(c);
		return;
	}
	/* The text may exceed the output buffer: send it with Connection: close by writing the
	 * head, then replacing the buffer with the rendered body. */
	char head[256];
	int hn = snprintf(head, sizeof(head),
			  "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
			  "Content-Length: %u\r\nConnection: close\r\n\r\n",
			  body.len);
	gw_buf_free(&c->out);
	struct gw_buf o = {0};
	uint32_t blen = m->method_id == SG_HTTP_M_HEAD ? 0 : body.len;
	if (!gw_buf_alloc(&o, (uint32_t)hn + blen + 1)) {
		gw_buf_free(&body);
		client_close(c);
		return;
	}
	(void)gw_buf_put(&o, head, (size_t)hn);
	(void)gw_buf_put(&o, body.p, blen);
	gw_buf_free(&body);
	c->out = o;
	c->state = C_CLOSING;
	c->deadline_ns = c->gw->now_ns + CLOSING_NS;
}

static void login_done(void *ctx, const struct gw_oidc_result *r)
{
	struct gw_client *c = ctx;
	struct gw_exchange *x = &c->x;
	x->oidc_req = NULL;
	c->gw->oidc_inflight--;
	c->gw->now_ns = evloop_now_ns();
	if (r->error) {
		char b[96];
		sg_log(SG_LOG_WARN, "gw_login_failed", "resource=%s client=%s reason=%s",
		       x->res->conf->id, c->ip_str, sg_log_quote(b, sizeof(b), r->error));
		gw_event(c->gw, "login_failed", x->res, c->ip_str, NULL, x->s->method_s, x->s->host,
			 x->s->path, 401, r->error);
		x_fail_respond(c, 401, r->error, NULL);
	} else {
		int64_t now = (int64_t)(evloop_realtime_ns() / NS_PER_S);
		int64_t age = r->exp > now ? r->exp - now : 0;
		size_t cap = strlen(r->id_token) + 1024;
		char *extra = malloc(cap);
		snprintf(x->s->user, sizeof(x->s->user), "%s", r->user);
		sg_log(SG_LOG_INFO, "gw_login", "resource=%s client=%s user=%s", x->res->conf->id,
		       c->ip_str, x->s->user);
		gw_event(c->gw, "login", x->res, c->ip_str, x->s->user, x->s->method_s, x->s->host,
			 x->s->path, 302, NULL);
		if (!extra) {
			x_fail_respond(c, 500, "out of memory", NULL);
		} else {
			snprintf(extra, cap,
				 "Location: %s\r\nSet-Cookie: sg_session_%s=%s; Path=/; Max-Age=%lld; "
				 "HttpOnly; SameSite=Lax%s\r\nSet-Cookie: sg_oidc_%s=; Path=%s; "
				 "Max-Age=0\r\n",
				 r->return_to, x->res->conf->id, r->id_token, (long long)age,
				 x->https ? "; Secure" : "", x->res->conf->id,
				 x->res->conf->oidc.redirect_path);
			x_fail_respond(c, 302, NULL, extra);
			free(extra);
		}
	}
	client_pump(c);
}

/* The provider sent the browser back with a code: exchange it, then set the session. */
static void login_callback(struct gw_client *c, const struct sg_http_msg *m, const char *query,
			   size_t ql, size_t head_len)
{
	struct gw_exchange *x = &c->x;
	char name[GW_CONF_ID_MAX + 16];
	const char *ck = NULL, *why = NULL;
	size_t cl = 0;
	snprintf(name, sizeof(name), "sg_oidc_%s", x->res->conf->id);
	(void)sg_http_cookie(m, name, &ck, &cl);
	x->oidc_req = gw_oidc_callback(x->res, x->s->host, x->https, query, ql, ck, cl, login_done, c,
				       &why);
	gw_buf_consume(&c->in, head_len);
	if (!x->oidc_req) {
		char b[96];
		sg_log(SG_LOG_WARN, "gw_login_failed", "resource=%s client=%s reason=%s",
		       x->res->conf->id, c->ip_str, sg_log_quote(b, sizeof(b), why));
		gw_event(c->gw, "login_failed", x->res, c->ip_str, NULL, x->s->method_s, x->s->host,
			 x->s->path, gw_oidc_ready(x->res) ? 400 : 503, why);
		x_fail_respond(c, gw_oidc_ready(x->res) ? 400 : 503, why, NULL);
		return;
	}
	c->gw->oidc_inflight++;
	c->state = C_WAIT;
	c->deadline_ns = c->gw->now_ns + 15 * NS_PER_S;
}

/* A complete request head of head_len bytes is at the front of c->in. */
static void handle_request(struct gw_client *c, struct sg_http_msg *m, size_t head_len)
{
	struct gw *gw = c->gw;
	struct gw_exchange *x = &c->x;
	struct gw_xtext *s = x->s ? x->s : malloc(sizeof(*s));
	if (!s) {
		client_close(c);
		return;
	}
	memset(x, 0, sizeof(*x));
	x->s = s;
	x->s->user[0] = x->s->sticky_set[0] = '\0';
	x->start_ns = gw->now_ns;
	x->method = m->method_id;
	x->https = c->l->tls;
	copy_field(x->s->method_s, sizeof(x->s->method_s), m->method, m->method_len);
	copy_field(x->s->path, sizeof(x->s->path), m->target, m->target_len);
	copy_field(x->s->host, sizeof(x->s->host), m->host ? m->host : "", m->host_len);
	x->client_keepalive = m->keep_alive && m->minor == 1;
	x->req_body = m->body;
	x->req_left = m->content_length;
	x->req_done = m->body == SG_HTTP_BODY_NONE;
	c->has_x = true;

	if (c->l->metrics) {
		c->has_x = false;
		gw_buf_consume(&c->in, head_len);
		handle_metrics(c, m);
		return;
	}
	x->rt = gw_rt_get(gw->rt);
	gw_buf_consume(&c->in, 0); /* the head stays in c->in until we are done with m */

	/* The request target: origin-form "/path?query", or absolute-form whose authority must
	 * name the same host as Host (RFC 9112 section 3.2.2). */
	const char *t = m->target;
	size_t tl = m->target_len;
	if (t[0] != '/' && t[0] != '*') {
		size_t skip = (t[4] == 's' || t[4] == 'S') ? 8 : 7;
		const char *auth = t + skip, *slash = memchr(auth, '/', tl - skip);
		size_t alen = slash ? (size_t)(slash - auth) : tl - skip;
		bool same = m->host && alen == m->host_len;
		for (size_t i = 0; same && i < alen; i++)
			same = (auth[i] | 0x20) == (m->host[i] | 0x20);
		if (!same) {
			gw_buf_consume(&c->in, head_len);
			x->client_keepalive = false;
			x_fail_respond(c, 400, "absolute-form target and Host differ", NULL);
			return;
		}
		t = slash ? slash : "/";
		tl = slash ? tl - (size_t)(slash - m->target) : 1;
	}
	if (!m->host || !sg_http_host_ok(m->host, m->host_len)) {
		gw_buf_consume(&c->in, head_len);
		x->client_keepalive = false;
		x_fail_respond(c, 400, "missing or malformed Host", NULL);
		return;
	}
	const struct gw_resource_conf *rc = gw_conf_find_host(x->rt->conf, m->host, m->host_len);
	if (!rc) {
		gw_buf_consume(&c->in, head_len);
		x_fail_respond(c, 404, "no resource for this host", NULL);
		return;
	}
	x->res = &x->rt->res[rc - x->rt->conf->resources];
	x->max_body = rc->max_body;

	const char *q = memchr(t, '?', tl);
	size_t plen = q ? (size_t)(q - t) : tl;
	char npath[8192 + 16];
	int nl = t[0] == '*' ? 1 : sg_http_normalize_path(t, plen, npath, sizeof(npath));
	if (t[0] == '*')
		npath[0] = '*', npath[1] = '\0';
	if (nl < 0) {
		gw_buf_consume(&c->in, head_len);
		x->client_keepalive = false;
		x_fail_respond(c, 400, "malformed path (bad percent-encoding, NUL or backslash)",
			       NULL);
		return;
	}
	if (rc->auth == GW_AUTH_LOGIN && strcmp(npath, rc->oidc.redirect_path) == 0) {
		/* The resource's source lists and rate limits hold for callbacks too, and a fixed
		 * per-source rate and a cap on exchanges in flight protect the provider. */
		struct gw_policy_in cin = {.family = c->family, .addr = c->ip};
		struct gw_policy_out cout = {0};
		uint32_t retry = 1;
		enum gw_verdict cv = gw_policy_check(gw, x->res, &cin, &cout, gw->now_ns);
		if (cv == GW_V_PASS &&
		    (!gw_callback_allowed(gw, x->res, c->family, c->ip, gw->now_ns, &retry) ||
		     gw->oidc_inflight >= GW_OIDC_INFLIGHT_MAX))
			cv = GW_V_LIMITED;
		if (cv != GW_V_PASS) {
			char extra[64];
			gw_buf_consume(&c->in, head_len);
			snprintf(extra, sizeof(extra), "Retry-After: %u\r\n",
				 cv == GW_V_LIMITED ? (cout.retry_after_s ? cout.retry_after_s : retry) : 1);
			x_fail_respond(c, cv == GW_V_LIMITED ? 429 : 403,
				       cv == GW_V_LIMITED ? "login callbacks too fast" : cout.reason,
				       cv == GW_V_LIMITED ? extra : NULL);
			return;
		}
		login_callback(c, m, q ? q + 1 : "", q ? tl - plen - 1 : 0, head_len);
		return;
	}
	/* Where a login returns to: the path and query as the client sent them. */
	char ret_to[520];
	snprintf(ret_to, sizeof(ret_to), "%.*s", (int)SG_MIN(tl, 500), t);
	struct gw_policy_in pin = {
	    .family = c->family, .addr = c->ip, .req = m, .path = npath, .path_len = (size_t)nl};
	struct gw_policy_out pout = {0};
	enum gw_verdict v = gw_policy_check(gw, x->res, &pin, &pout, gw->now_ns);
	if (pout.authenticated)
		snprintf(x->s->user, sizeof(x->s->user), "%s", pout.user);
	if (v != GW_V_PASS) {
		gw_buf_consume(&c->in, head_len);
		x->res->denied += v != GW_V_LIMITED;
		char extra[3000] = "";
		int status = 403;
		if (v == GW_V_LOGIN && (m->method_id == SG_HTTP_M_GET || m->method_id == SG_HTTP_M_HEAD)) {
			/* A browser: to the provider, back to this path afterwards. */
			char loc[2048], cookie[700];
			if (gw_oidc_login(x->res, x->s->host, x->https, ret_to, loc, sizeof(loc), cookie,
					  sizeof(cookie)) == 0) {
				status = 302;
				snprintf(extra, sizeof(extra), "Location: %s\r\nSet-Cookie: %s\r\n", loc,
					 cookie);
			} else {
				status = 503;
				snprintf(extra, sizeof(extra), "Retry-After: 2\r\n");
			}
		} else if (v == GW_V_LOGIN) {
			status = 401;
			snprintf(extra, sizeof(extra), "WWW-Authenticate: Bearer realm=\"%s\"\r\n",
				 rc->id);
		} else if (v == GW_V_UNAVAILABLE) {
			status = 503;
			snprintf(extra, sizeof(extra), "Retry-After: 2\r\n");
		} else if (v == GW_V_AUTH) {
			status = 401;
			snprintf(extra, sizeof(extra),
				 "WWW-Authenticate: Bearer realm=\"%s\"\r\n", rc->id);
		} else if (v == GW_V_LIMITED) {
			status = 429;
			x->res->limited++;
			snprintf(extra, sizeof(extra), "Retry-After: %u\r\n", pout.retry_after_s);
		}
		char b1[64], b2[96];
		/* A credential that was sent and did not hold (a session or bearer token, a key). */
		bool refused = (v == GW_V_LOGIN && pout.reason && strcmp(pout.reason, "login required")) ||
			       (v == GW_V_AUTH && sg_http_find(m, "authorization"));
		if (status == 302) {
			x->res->denied--; /* a redirect to log in is no denial */
			if (refused)
				gw_event(gw, "credential_refused", x->res, c->ip_str, NULL,
					 x->s->method_s, x->s->host, x->s->path, 302, pout.reason);
			/* The access log says why a token sent was not taken (expired, bad
			 * signature, ...): without a server there is no audit event to say it. */
			x_fail_respond(c, 302, refused ? pout.reason : "login", extra);
			return;
		}
		gw_event(gw, refused ? "credential_refused" : "access_denied", x->res, c->ip_str,
			 x->s->user[0] ? x->s->user : NULL, x->s->method_s, x->s->host, x->s->path,
			 status, pout.reason);
		sg_log(SG_LOG_INFO, "gw_denied", "resource=%s client=%s status=%d reason=%s path=%s",
		       rc->id, c->ip_str, status, sg_log_quote(b1, sizeof(b1), pout.reason),
		       sg_log_quote(b2, sizeof(b2), x->s->path));
		x_fail_respond(c, status, pout.reason, extra);
		return;
	}
	if (m->body == SG_HTTP_BODY_LENGTH && m->content_length > x->max_body) {
		gw_buf_consume(&c->in, head_len);
		x->client_keepalive = false;
		x_fail_respond(c, 413, "body larger than the resource's max_body", NULL);
		return;
	}
	x->websocket = m->upgrade_websocket && m->method_id == SG_HTTP_M_GET;
	bool idempotent = m->method_id == SG_HTTP_M_GET || m->method_id == SG_HTTP_M_HEAD ||
			  m->method_id == SG_HTTP_M_OPTIONS || m->method_id == SG_HTTP_M_TRACE ||
			  m->method_id == SG_HTTP_M_PUT || m->method_id == SG_HTTP_M_DELETE;
	/* Retried only when the whole request is in the head we keep (RFC 9110 section 9.2.2). */
	x->retryable = idempotent && m->body == SG_HTTP_BODY_NONE && !x->websocket;
	x->expect_continue = m->expect_continue && m->body != SG_HTTP_BODY_NONE;

	const char *sticky = NULL;
	size_t sticky_len = 0;
	if (rc->sticky_cookie)
		(void)sg_http_cookie(m, rc->sticky_cookie, &sticky, &sticky_len);

	x->head = build_request_head(c, m, npath, (size_t)nl, q ? q : "", q ? tl - plen : 0,
				     pout.auth_header, &x->head_len);
	gw_buf_consume(&c->in, head_len); /* m points into c->in: not used after this */
	if (!x->head) {
		x_fail_respond(c, 500, "out of memory", NULL);
		return;
	}
	if (!x_start_upstream(c, sticky, sticky_len)) {
		x_fail_respond(c, 503, "no healthy target", NULL);
		return;
	}
	c->state = C_BUSY;
	if (x->expect_continue) {
		/* RFC 9110 section 10.1.1: we checked what we could; the body may come. */
		if (!gw_buf_alloc(&c->out, CLIENT_OUT_CAP) ||
		    !gw_buf_put(&c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25))
			client_close(c);
	}
}

/* ---- request body ----------------------------------------------------------------------- */

/* Moves body bytes from c->in to the upstream's output. */
static bool x_req_body(struct gw_client *c)
{
	struct gw_exchange *x = &c->x;
	struct gw_upstream *u = x->u;
	bool progress = false;
	if (x->req_done || !u || c->in.len == 0)
		return false;
	if (x->req_body == SG_HTTP_BODY_LENGTH) {
		size_t n = SG_MIN((uint64_t)c->in.len, x->req_left);
		n = SG_MIN(n, gw_buf_space(&u->out));
		if (n == 0)
			return false;
		(void)gw_buf_put(&u->out, gw_buf_data(&c->in), n);
		gw_buf_consume(&c->in, n);
		x->req_left -= n;
		x->req_bytes += n;
		x->req_done = x->req_left == 0;
		return true;
	}
	/* chunked: decode, check the cap, re-encode (extensions and trailers dropped). */
	while (c->in.len && gw_buf_space(&u->out) > CHUNK_OVERHEAD) {
		size_t room = gw_buf_space(&u->out) - CHUNK_OVERHEAD, used = 0, dlen = 0;
		const uint8_t *data = NULL;
		const char *why = NULL;
		int rc = sg_http_chunked_feed(&x->req_ch, gw_buf_data(&c->in), SG_MIN(c->in.len, room),
					 &used, &data, &dlen, &why);
		if (rc < 0) {
			char b[96];
			sg_log(SG_LOG_INFO, "gw_bad_request", "client=%s reason=%s", c->ip_str,
			       sg_log_quote(b, sizeof(b), why));
			c->gw->bad_requests++;
			if (x->resp_started) {
				client_close(c);
			} else {
				x->client_keepalive = false;
				x_fail_respond(c, 400, why, NULL);
			}
			return true;
		}
		if (dlen) {
			x->req_bytes += dlen;
			if (x->req_bytes > x->max_body) {
				if (x->resp_started) {
					client_close(c);
				} else {
					x->client_keepalive = false;
					x_fail_respond(c, 413, "body larger than the resource's max_body",
						       NULL);
				}
				return true;
			}
			char hex[24];
			int hn = snprintf(hex, sizeof(hex), "%zx\r\n", dlen);
			(void)gw_buf_put(&u->out, hex, (size_t)hn);
			(void)gw_buf_put(&u->out, data, dlen);
			(void)gw_buf_put(&u->out, "\r\n", 2);
		}
		gw_buf_consume(&c->in, used);
		progress = true;
		if (rc == 1) {
			(void)gw_buf_put(&u->out, "0\r\n\r\n", 5);
			x->req_done = true;
			break;
		}
		if (used == 0)
			break;
	}
	return progress;
}

/* ---- response --------------------------------------------------------------------------- */

static bool write_response_head(struct gw_client *c, const struct sg_http_msg *m)
{
	struct gw_exchange *x = &c->x;
	struct gw_buf *o = &c->out;
	bool ok = buf_printf(o, "HTTP/1.1 %d ", m->status);
	ok = ok && gw_buf_put(o, m->target, m->target_len) && gw_buf_put(o, "\r\n", 2);
	for (size_t i = 0; ok && i < m->n_headers; i++) {
		const struct sg_http_header *h = &m->headers[i];
		if (h->hop)
			continue;
		if (h->id == SG_HF_CONTENT_LENGTH && m->body != SG_HTTP_BODY_NONE)
			continue; /* written below from our framing */
		ok = gw_buf_put(o, h->name, h->name_len) && gw_buf_put(o, ": ", 2) &&
		     gw_buf_put(o, h->value, h->value_len) && gw_buf_put(o, "\r\n", 2);
	}
	if (!ok)
		return false;
	if (m->status == 101) {
		ok = buf_printf(o, "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
		return ok;
	}
	switch (m->body) {
	case SG_HTTP_BODY_LENGTH:
		ok = buf_printf(o, "Content-Length: %llu\r\n", (unsigned long long)m->content_length);
		break;
	case SG_HTTP_BODY_CHUNKED:
	case SG_HTTP_BODY_CLOSE:
		if (x->client_keepalive) {
			x->resp_chunked_out = true;
			ok = buf_printf(o, "Transfer-Encoding: chunked\r\n");
		} else {
			x->resp_close_out = true;
		}
		break;
	case SG_HTTP_BODY_NONE:
		break;
	}
	if (ok && x->s->sticky_set[0])
		ok = buf_printf(o, "Set-Cookie: %s=%s; Path=/; HttpOnly; SameSite=Lax%s\r\n",
				x->res->conf->sticky_cookie, x->s->sticky_set,
				x->https ? "; Secure" : "");
	if (ok && !x->client_keepalive)
		ok = buf_printf(o, "Connection: close\r\n");
	return ok && gw_buf_put(o, "\r\n", 2);
}

static bool x_resp(struct gw_client *c)
{
	struct gw_exchange *x = &c->x;
	struct gw_upstream *u = x->u;
	bool progress = false;
	if (!u)
		return false;
	while (!x->resp_head_done) {
		if (u->in.len == 0) {
			if (u->eof) {
				x_up_fail(c, "target closed the connection before a response", false);
				return true;
			}
			return progress;
		}
		struct sg_http_msg *m = &c->gw->msg;
		struct sg_http_limits lim = {.max_head = c->gw->rt->conf->limits.max_head,
					     .max_target = c->gw->rt->conf->limits.max_head,
					     .max_headers = SG_HTTP_MAX_HEADERS};
		const char *why = NULL;
		int rc = sg_http_parse_response((const char *)gw_buf_data(&u->in), u->in.len, &lim,
						x->method, m, &why);
		if (rc == SG_HTTP_INCOMPLETE) {
			if (u->eof) {
				x_up_fail(c, "target closed the connection inside a response head",
					  false);
				return true;
			}
			return progress;
		}
		if (rc < 0) {
			/* Nothing went to the client yet: answer 502 ourselves. */
			x->resp_started = false;
			x_up_fail(c, why, false);
			return true;
		}
		if (m->status < 200 && m->status != 101) {
			gw_buf_consume(&u->in, (size_t)rc); /* 100, 103: not passed on */
			progress = true;
			continue;
		}
		if (m->status == 101 && !x->websocket) {
			x->resp_started = false;
			x_up_fail(c, "101 Switching Protocols without an upgrade request", false);
			return true;
		}
		if (x->websocket && m->status == 101 && !m->upgrade_websocket) {
			x->resp_started = false;
			x_up_fail(c, "101 without Upgrade: websocket", false);
			return true;
		}
		if (!gw_buf_alloc(&c->out, CLIENT_OUT_CAP)) {
			client_close(c);
			return true;
		}
		if (c->out.len + (uint32_t)rc + 1024 > c->out.cap)
			return progress; /* the 100 Continue is still going out */
		x->status = m->status;
		x->resp_body = m->body;
		x->resp_left = m->content_length;
		x->resp_keepalive = m->keep_alive;
		uint32_t before = c->out.len;
		if (!write_response_head(c, m)) {
			c->out.len = before;
			x->resp_started = false;
			x_up_fail(c, "response head too large", false);
			return true;
		}
		gw_buf_consume(&u->in, (size_t)rc);
		x->resp_head_done = true;
		progress = true;
		c->deadline_ns = UINT64_MAX;
		if (m->status == 101) {
			c->state = C_TUNNEL;
			x->req_done = true;
			c->deadline_ns = c->gw->now_ns +
					 (uint64_t)x->res->conf->idle_timeout_ms * NS_PER_MS;
			return true;
		}
		if (m->body == SG_HTTP_BODY_NONE) {
			x->resp_done = true;
			x_done(c);
			return true;
		}
	}
	/* Body. */
	while (!x->resp_done) {
		size_t space = gw_buf_space(&c->out);
		if (u->in.len == 0) {
			if (!u->eof)
				break;
			if (x->resp_body != SG_HTTP_BODY_CLOSE) {
				x_up_fail(c, "target closed the connection inside a response body",
					  false);
				return true;
			}
			if (x->resp_chunked_out) {
				if (space < 5)
					break;
				(void)gw_buf_put(&c->out, "0\r\n\r\n", 5);
			}
			x->resp_done = true;
			x->resp_keepalive = false;
			break;
		}
		if (space <= CHUNK_OVERHEAD)
			break;
		if (x->resp_body == SG_HTTP_BODY_LENGTH) {
			size_t n = SG_MIN((uint64_t)u->in.len, x->resp_left);
			n = SG_MIN(n, space);
			(void)gw_buf_put(&c->out, gw_buf_data(&u->in), n);
			gw_buf_consume(&u->in, n);
			x->resp_left -= n;
			x->bytes_out += n;
			progress = true;
			if (x->resp_left == 0)
				x->resp_done = true;
		} else if (x->resp_body == SG_HTTP_BODY_CHUNKED) {
			size_t used = 0, dlen = 0;
			const uint8_t *data = NULL;
			const char *why = NULL;
			size_t feed = SG_MIN(u->in.len, space - CHUNK_OVERHEAD);
			int rc = sg_http_chunked_feed(&x->resp_ch, gw_buf_data(&u->in), feed, &used, &data,
						 &dlen, &why);
			if (rc < 0) {
				x_up_fail(c, why, false);
				return true;
			}
			if (dlen) {
				x->bytes_out += dlen;
				if (x->resp_chunked_out) {
					char hex[24];
					int hn = snprintf(hex, sizeof(hex), "%zx\r\n", dlen);
					(void)gw_buf_put(&c->out, hex, (size_t)hn);
					(void)gw_buf_put(&c->out, data, dlen);
					(void)gw_buf_put(&c->out, "\r\n", 2);
				} else {
					(void)gw_buf_put(&c->out, data, dlen);
				}
			}
			gw_buf_consume(&u->in, used);
			progress = true;
			if (rc == 1) {
				if (x->resp_chunked_out)
					(void)gw_buf_put(&c->out, "0\r\n\r\n", 5);
				x->resp_done = true;
			}
		} else { /* close-delimited */
			size_t n = SG_MIN((size_t)u->in.len, space - CHUNK_OVERHEAD);
			if (x->resp_chunked_out) {
				char hex[24];
				int hn = snprintf(hex, sizeof(hex), "%zx\r\n", n);
				(void)gw_buf_put(&c->out, hex, (size_t)hn);
				(void)gw_buf_put(&c->out, gw_buf_data(&u->in), n);
				(void)gw_buf_put(&c->out, "\r\n", 2);
			} else {
				(void)gw_buf_put(&c->out, gw_buf_data(&u->in), n);
			}
			gw_buf_consume(&u->in, n);
			x->bytes_out += n;
			progress = true;
		}
	}
	if (x->resp_done) {
		if (u->in.len)
			x->resp_keepalive = false; /* bytes after the response: not reusable */
		x_done(c);
		return true;
	}
	return progress;
}

/* WebSocket after 101: both directions unchanged. */
static bool tunnel_move(struct gw_client *c)
{
	struct gw_exchange *x = &c->x;
	struct gw_upstream *u = x->u;
	bool progress = false;
	if (!u)
		return false;
	if (c->in.len) {
		size_t n = SG_MIN((size_t)c->in.len, gw_buf_space(&u->out));
		if (n) {
			(void)gw_buf_put(&u->out, gw_buf_data(&c->in), n);
			gw_buf_consume(&c->in, n);
			x->req_bytes += n;
			progress = true;
		}
	}
	if (u->in.len) {
		size_t n = SG_MIN((size_t)u->in.len, gw_buf_space(&c->out));
		if (n) {
			(void)gw_buf_put(&c->out, gw_buf_data(&u->in), n);
			gw_buf_consume(&u->in, n);
			x->bytes_out += n;
			progress = true;
		}
	}
	if (progress)
		c->deadline_ns = c->gw->now_ns + (uint64_t)x->res->conf->idle_timeout_ms * NS_PER_MS;
	if ((u->eof && u->in.len == 0) || (c->eof && c->in.len == 0 && u->out.len == 0)) {
		x->status = 101;
		log_access(c, 101, NULL);
		x_release(c, false);
		c->state = C_CLOSING;
		c->deadline_ns = c->gw->now_ns + CLOSING_NS;
		return true;
	}
	return progress;
}

/* ---- the client's pump ------------------------------------------------------------------ */

static void bad_request(struct gw_client *c, int status, const char *why)
{
	char b[96];
	c->gw->bad_requests++;
	sg_log(SG_LOG_INFO, "gw_bad_request", "client=%s status=%d reason=%s", c->ip_str, status,
	       sg_log_quote(b, sizeof(b), why));
	respond(c, status, false, NULL, NULL);
	c->deadline_ns = c->gw->now_ns + CLOSING_NS;
}

static bool client_read(struct gw_client *c)
{
	bool progress = false;
	if (c->eof || c->h2s) /* a stream's bytes are put into c->in by h2.c */
		return false;
	/* Only after poll said readable: a read that would find nothing costs a syscall per
	 * turn (TLS may hold bytes of its own that no poll announces). */
	if (!c->rd && !(c->tls && sg_tls_term_pending(c->tls)))
		return false;
	if (!gw_buf_alloc(&c->in, c->gw->rt->conf->limits.max_head + 1024)) {
		client_close(c);
		return false;
	}
	while (gw_buf_space(&c->in) > 0) {
		ssize_t r = cio_read(c, gw_buf_tail(&c->in), gw_buf_space(&c->in));
		if (r == -EAGAIN) {
			c->rd = false;
			break;
		}
		if (r <= 0) {
			c->eof = true;
			progress = true;
			break;
		}
		if (c->state == C_HEAD && c->in.len == 0) /* first byte of a head: its clock */
			c->deadline_ns = c->gw->now_ns +
					 (uint64_t)c->gw->rt->conf->limits.header_timeout_ms *
					     NS_PER_MS;
		size_t asked = gw_buf_space(&c->in);
		c->in.len += (uint32_t)r;
		c->last_io_ns = c->gw->now_ns;
		progress = true;
		/* A short read drained the socket. TLS reads ahead as much as the socket has, so
		 * with nothing left inside the library it is drained too, or nearly: poll is
		 * level-triggered and says so if not, which costs less than a read finding
		 * nothing after every request. */
		if ((size_t)r < asked && (!c->tls || !sg_tls_term_pending(c->tls))) {
			c->rd = false;
			break;
		}
	}
	return progress;
}

static bool client_write(struct gw_client *c)
{
	bool progress = false;
	if (c->h2s)
		return gw_h2_stream_output(c);
	while (c->out.len) {
		ssize_t w = cio_write(c, gw_buf_data(&c->out), c->out.len);
		if (w == -EAGAIN)
			break;
		if (w <= 0) {
			client_close(c);
			return true;
		}
		gw_buf_consume(&c->out, (size_t)w);
		c->last_io_ns = c->gw->now_ns;
		progress = true;
	}
	return progress;
}

static bool client_head(struct gw_client *c)
{
	if (c->in.len == 0)
		return false;
	if (c->out.len > 0)
		return false; /* finish the previous response first (pipelining) */
	const struct gw_limits *l = &c->gw->rt->conf->limits;
	struct sg_http_limits lim = {
	    .max_head = l->max_head, .max_target = l->max_target, .max_headers = l->max_headers};
	const char *why = NULL;
	int rc = sg_http_parse_request((const char *)gw_buf_data(&c->in), c->in.len, &lim,
				       &c->gw->msg, &why);
	if (rc == SG_HTTP_INCOMPLETE && c->requests == 0 && !c->h2s &&
	    gw_h2_preface(gw_buf_data(&c->in), c->in.len) == -1)
		return false;
	if (c->requests == 0 && !c->h2s && gw_h2_preface(gw_buf_data(&c->in), c->in.len) == 1) {
		/* HTTP/2 with prior knowledge (RFC 9113 section 3.3) on a plain listener. */
		if (gw_h2_start(c) != 0)
			client_close(c);
		return true;
	}
	if (rc == SG_HTTP_INCOMPLETE)
		return false;
	if (rc < 0) {
		bad_request(c, -rc, why);
		return true;
	}
	handle_request(c, &c->gw->msg, (size_t)rc);
	return true;
}

static void update_interest(struct gw_client *c)
{
	struct gw_upstream *u = c->has_x ? c->x.u : NULL;
	uint32_t want = 0;
	if (c->hs.next)
		return; /* waits for its handshake's turn with its events off (hs_step) */
	if (c->h2) {
		set_interest(c->gw, &c->src, &c->ev, gw_h2_events(c));
		return;
	}
	/* Reading stays on while an exchange runs (a pipelined request waits in c->in, the end
	 * of the stream is noticed): one interest for the whole keep-alive connection, so a
	 * request costs no epoll_ctl unless a write has to wait. */
	bool want_read = c->lingering || (!c->eof && c->state != C_CLOSING &&
			 (!c->in.p || gw_buf_space(&c->in) > 0) &&
			 (c->state == C_HEAD || c->state == C_TLS || c->state == C_TUNNEL ||
			  c->state == C_BUSY));
	if (want_read)
		want |= EPOLLIN;
	if (c->out.len)
		want |= EPOLLOUT;
	if (c->tls) /* a read that must write first, or the other way round */
		want |= sg_tls_term_events(c->tls);
	/* A client that sent everything is still watched for a reset, so a cancelled request
	 * stops the exchange. */
	if (!want && !c->eof && c->state == C_BUSY)
		want = EPOLLRDHUP;
	set_interest(c->gw, &c->src, &c->ev, want);
	if (u) {
		uint32_t uw = 0;
		if (!u->connected) {
			uw = EPOLLOUT;
		} else {
			if (!u->eof && gw_buf_space(&u->in) > 0)
				uw |= EPOLLIN;
			if (u->out.len)
				uw |= EPOLLOUT;
		}
		set_interest(c->gw, &u->src, &u->ev, uw);
	}
}

/* Lingering close (as nginx's lingering_close): closing a socket with unread bytes makes the
 * kernel send a reset, which can destroy the response still in flight to the client (a 413
 * in the middle of an upload). So the write side is shut and what the client still sends is
 * read and dropped, up to LINGER_BYTES or LINGER_NS, before the close. True while lingering. */
#define LINGER_BYTES (1u << 20)
#define LINGER_NS    (2 * NS_PER_S)
static bool linger(struct gw_client *c)
{
	if (!c->lingering) {
		if (c->tls || shutdown(c->fd, SHUT_WR) != 0)
			return false;
		c->lingering = true;
		c->deadline_ns = c->gw->now_ns + LINGER_NS;
	}
	uint8_t sink[4096];
	for (;;) {
		ssize_t r = recv(c->fd, sink, sizeof(sink), 0);
		if (r > 0) {
			c->drained += (uint32_t)r;
			if (c->drained > LINGER_BYTES)
				return false;
			continue;
		}
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return true;
		return false; /* end of stream or error: close now */
	}
}

/* TLS handshakes take their turn. The first step of a handshake (the server's key share and
 * the certificate's signature: about a millisecond of CPU with a P-384 key, against some tens
 * of microseconds for a proxied request) is done for at most HS_TURN_NS per loop turn; the
 * clients over that wait in arrival order, their events off, and go first in the next turn
 * (gw_hs_run). Without this a burst of new connections was handshaken back to back in one
 * turn: 64 ClientHellos in one epoll batch held every established connection, and the
 * clients' Finished and first requests, for 64 ms of CPU (0.6 s on a loaded machine; wrk's
 * latency correction made that its p99). Later steps (the client's Finished) are cheap and
 * never wait. Returns as sg_tls_term_handshake, or -2 when the client waits. */
static int hs_step(struct gw_client *c)
{
	struct gw *gw = c->gw;
	bool first = !sg_tls_term_replied(c->tls);
	if (first && !c->hs_go &&
	    (!gw_list_empty(&gw->hs_wait) || gw->hs_turn_ns >= HS_TURN_NS)) {
		if (!c->hs.next) {
			gw_list_add(gw->hs_wait.prev, &c->hs); /* at the tail */
			set_interest(gw, &c->src, &c->ev, 0);
		}
		return -2;
	}
	c->hs_go = false;
	uint64_t t0 = first ? evloop_now_ns() : 0;
	int rc = sg_tls_term_handshake(c->tls);
	if (first) {
		gw->now_ns = evloop_now_ns();
		gw->hs_turn_ns += gw->now_ns - t0;
	}
	return rc;
}

bool gw_hs_run(struct gw *gw)
{
	while (!gw_list_empty(&gw->hs_wait) && gw->hs_turn_ns < HS_TURN_NS) {
		struct gw_client *c = gw_container(gw->hs_wait.next, struct gw_client, hs);
		gw_list_del(&c->hs);
		c->hs_go = true;
		client_pump(c); /* its interest comes back in update_interest */
	}
	gw->hs_turn_ns = 0;
	return !gw_list_empty(&gw->hs_wait);
}

static void client_pump(struct gw_client *c)
{
	if (c->in_pump || c->dead)
		return;
	if (c->state == C_H2) {
		gw_h2_pump(c);
		return;
	}
	c->in_pump = true;
	for (int guard = 0; guard < 64 && !c->dead; guard++) {
		bool progress = false;
		if (c->state == C_TLS) {
			int rc = hs_step(c);
			if (rc == -2)
				break; /* waits in gw->hs_wait, its events off */
			if (rc < 0) {
				client_close(c);
				break;
			}
			if (rc == 0)
				break;
			const char *alpn = sg_tls_term_alpn(c->tls);
			if (alpn && strcmp(alpn, "h2") == 0) {
				c->in_pump = false;
				if (gw_h2_start(c) != 0)
					client_close(c);
				else
					gw_h2_pump(c);
				return;
			}
			c->state = C_HEAD;
			c->deadline_ns = c->gw->now_ns +
					 (uint64_t)c->gw->rt->conf->limits.header_timeout_ms *
					     NS_PER_MS;
			progress = true;
		}
		bool read_ok = c->state == C_HEAD || c->state == C_TUNNEL || c->state == C_BUSY;
		if (read_ok)
			progress |= client_read(c);
		if (c->dead)
			break;
		switch (c->state) {
		case C_HEAD:
			if (c->eof && c->in.len == 0 && c->out.len == 0) {
				client_close(c);
				break;
			}
			progress |= client_head(c);
			if (!c->dead && c->state == C_HEAD && c->eof && c->out.len == 0) {
				client_close(c); /* a partial head, then the end */
			}
			break;
		case C_BUSY:
			progress |= x_req_body(c);
			if (!c->dead && c->state == C_BUSY)
				progress |= up_io(c);
			if (!c->dead && c->state == C_BUSY && c->has_x)
				progress |= x_resp(c);
			if (!c->dead && c->state == C_BUSY && c->eof && !c->x.req_done) {
				/* The client left inside its request body. */
				log_access(c, 499, "client closed inside the request");
				client_close(c);
			}
			break;
		case C_TUNNEL:
			progress |= up_io(c);
			if (!c->dead && c->state == C_TUNNEL)
				progress |= tunnel_move(c);
			break;
		case C_CLOSING:
		case C_TLS:
		case C_H2:
		case C_WAIT:
			break;
		}
		if (c->dead)
			break;
		if (c->out.len)
			progress |= client_write(c);
		if (c->dead)
			break;
		if (c->state == C_H2) {
			c->in_pump = false;
			gw_h2_pump(c);
			return;
		}
		if (c->state == C_CLOSING && c->out.len == 0) {
			c->clean_close = true;
			if (c->h2s || c->eof || !linger(c)) {
				client_close(c);
				break;
			}
		}
		if (!progress)
			break;
	}
	c->in_pump = false;
	if (c->dead)
		return;
	update_interest(c);
	if (c->h2s)
		gw_h2_stream_pumped(c);
}

void gw_client_pump(struct gw_client *c)
{
	client_pump(c);
}

void gw_client_close(struct gw_client *c)
{
	client_close(c);
}

static void client_event(void *ctx, uint32_t ev)
{
	struct gw_client *c = ctx;
	c->gw->now_ns = evloop_now_ns();
	if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->rd = true;
	if ((ev & (EPOLLERR | EPOLLHUP)) && !(ev & EPOLLIN)) {
		if (c->has_x && c->state != C_HEAD)
			log_access(c, 499, "client connection reset");
		client_close(c);
		return;
	}
	if ((ev & EPOLLRDHUP) && !(ev & EPOLLIN) && c->state == C_BUSY && c->x.req_done) {
		/* The client half-closed while we wait for the target: it may still read the
		 * response, after which the connection closes. */
		c->eof = true;
	}
	client_pump(c);
}

/* ---- accept and timeouts ---------------------------------------------------------------- */

static void client_event(void *ctx, uint32_t ev);

void sg_http_accept(struct gw_listener *l)
{
	struct gw *gw = l->gw;
	gw->now_ns = evloop_now_ns();
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		const struct gw_limits *lim = &gw->rt->conf->limits;
		int family = ss.ss_family;
		const uint8_t *ip = family == AF_INET
					? (const uint8_t *)&((struct sockaddr_in *)&ss)->sin_addr
					: (const uint8_t *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
		uint8_t key[17];
		gw_src_key(key, family, ip);
		if (gw->n_clients >= lim->max_conns ||
		    !gw_src_conn_inc(gw, key, l->metrics ? UINT32_MAX : lim->max_conns_per_source,
				     gw->now_ns)) {
			gw->refused_conns++;
			close(fd);
			continue;
		}
		struct gw_client *c = calloc(1, sizeof(*c));
		if (!c) {
			gw_src_conn_dec(gw, key);
			close(fd);
			continue;
		}
		c->kind = K_CLIENT;
		c->gw = gw;
		c->l = l;
		c->fd = fd;
		memcpy(c->skey, key, sizeof(key));
		/* IPv4-mapped peers on a dual-stack socket are shown and matched as IPv4. */
		if (key[0] == 4) {
			c->family = AF_INET;
			memcpy(c->ip, key + 1, 4);
		} else {
			c->family = AF_INET6;
			memcpy(c->ip, key + 1, 16);
		}
		gw_ip_str(c->family, c->ip, c->ip_str, sizeof(c->ip_str));
		int one = 1;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->state = C_HEAD;
		c->rd = true; /* the request may have come with the handshake of TCP */
		if (l->tls) {
			c->tls = sg_tls_term_conn_new(gw->tls, fd);
			if (!c->tls) {
				gw_src_conn_dec(gw, key);
				close(fd);
				free(c);
				continue;
			}
			c->state = C_TLS;
		}
		c->ev = EPOLLIN;
		if (evloop_add(gw->loop, &c->src, fd, c->ev, client_event, c) != 0) {
			sg_tls_term_conn_free(c->tls);
			gw_src_conn_dec(gw, key);
			close(fd);
			free(c);
			continue;
		}
		c->deadline_ns = gw->now_ns + (uint64_t)lim->header_timeout_ms * NS_PER_MS;
		gw_list_add(&gw->conns, &c->link);
		gw->n_clients++;
		gw->accepted++;
	}
}

static void client_timeout(struct gw_client *c)
{
	struct gw_exchange *x = &c->x;
	switch (c->state) {
	case C_TLS:
		client_close(c);
		return;
	case C_HEAD:
		if (c->in.len && c->out.len == 0) {
			/* Slowloris: the head did not arrive in time. */
			bad_request(c, 408, "request head not complete within header_timeout_ms");
			client_pump(c);
		} else {
			client_close(c);
		}
		return;
	case C_BUSY:
		if (x->u && !x->u->connected) {
			x_up_fail(c, "connect timeout", true);
		} else if (!x->req_done && c->gw->now_ns - c->last_io_ns >=
						    (uint64_t)c->gw->rt->conf->limits.body_timeout_ms *
							NS_PER_MS) {
			if (x->resp_started) {
				client_close(c);
				return;
			}
			x->client_keepalive = false;
			x_fail_respond(c, 408, "request body stalled", NULL);
		} else if (!x->resp_started) {
			x_up_fail(c, "response timeout", true);
		} else {
			/* A response in progress: as long as bytes move it may take its time. */
			c->deadline_ns = c->gw->now_ns +
					 (uint64_t)x->res->conf->response_timeout_ms * NS_PER_MS;
			if (c->gw->now_ns - c->last_io_ns <
			    (uint64_t)x->res->conf->response_timeout_ms * NS_PER_MS)
				return;
			log_access(c, x->status, "response stalled");
			client_close(c);
			return;
		}
		if (!c->dead)
			client_pump(c);
		return;
	case C_TUNNEL:
		log_access(c, 101, "websocket idle timeout");
		client_close(c);
		return;
	case C_CLOSING:
		client_close(c);
		return;
	case C_WAIT:
		gw_oidc_cancel(x->oidc_req);
		x->oidc_req = NULL;
		c->gw->oidc_inflight--;
		x->client_keepalive = false;
		x_fail_respond(c, 504, "identity provider did not answer", NULL);
		client_pump(c);
		return;
	case C_H2:
		if (gw_h2_idle(c))
			client_close(c);
		else
			c->deadline_ns = c->gw->now_ns +
					 (uint64_t)c->gw->rt->conf->limits.idle_timeout_ms * NS_PER_MS;
		return;
	}
}

void gw_conns_tick(struct gw *gw)
{
	uint64_t now = gw->now_ns;
	struct gw_link expired, pending;
	gw_list_init(&expired);
	gw_list_init(&pending);
	/* First collect, then act: a timeout may close or take other connections of the list
	 * (a retry takes an idle upstream from a pool). Both kinds start with their link and
	 * then their kind. */
	for (struct gw_link *l = gw->conns.next, *next; l != &gw->conns; l = next) {
		next = l->next;
		struct gw_client *c = gw_container(l, struct gw_client, link);
		/* A kept-alive connection idle for a second holds no buffers: idle connections
		 * cost a few hundred bytes each, not 80 KiB (busy ones keep theirs). */
		if (c->kind == K_CLIENT && c->state == C_HEAD && !c->h2s && c->in.len == 0 &&
		    c->out.len == 0 && c->in.p && now - c->last_io_ns > NS_PER_S &&
		    (!c->tls || !sg_tls_term_pending(c->tls))) {
			gw_buf_free(&c->in);
			gw_buf_free(&c->out);
			free(c->x.s);
			c->x.s = NULL;
		}
		uint64_t dl = c->kind == K_CLIENT
				  ? c->deadline_ns
				  : gw_container(l, struct gw_upstream, link)->deadline_ns;
		if (now >= dl) {
			gw_list_del(l);
			gw_list_add(&expired, l);
		} else if (c->kind == K_CLIENT && c->tls && sg_tls_term_pending(c->tls) &&
			   c->state != C_CLOSING) {
			/* TLS holds decrypted bytes no poll event will announce (a turn that
			 * stopped reading early): another turn for it, below. */
			gw_list_del(l);
			gw_list_add(&pending, l);
		}
	}
	while (!gw_list_empty(&pending)) {
		struct gw_link *l = pending.next;
		gw_list_del(l);
		gw_list_add(&gw->conns, l);
		struct gw_client *c = gw_container(l, struct gw_client, link);
		if (c->state == C_H2)
			gw_h2_pump(c);
		else
			client_pump(c);
	}
	while (!gw_list_empty(&expired)) {
		struct gw_link *l = expired.next;
		gw_list_del(l);
		gw_list_add(&gw->conns, l);
		struct gw_client *c = gw_container(l, struct gw_client, link);
		if (c->kind == K_CLIENT)
			client_timeout(c);
		else
			up_close(gw_container(l, struct gw_upstream, link));
	}
}

void gw_conns_close_all(struct gw *gw)
{
	while (!gw_list_empty(&gw->conns)) {
		struct gw_link *l = gw->conns.next;
		struct gw_client *c = gw_container(l, struct gw_client, link);
		if (c->kind == K_CLIENT)
			client_close(c);
		else
			up_close(gw_container(l, struct gw_upstream, link));
	}
	gw_reap(gw);
}
