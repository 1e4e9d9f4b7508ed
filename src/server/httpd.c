/* The management server's HTTP/1.1 front; httpd.h says why it exists and how it is shaped. */
#include "server/httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "net/evloop.h"
#include "net/http1.h"
#include "net/tls_term.h"
#include "secureguard/sg_errors.h"
#include "server/srv_int.h"

/* Request head: the request line and headers, at most this many bytes (431 beyond), of which
 * the target at most URL_MAX (414 beyond), in at most MAX_HEADERS fields. */
#define HEAD_MAX    16384
#define URL_MAX	    8192
#define MAX_HEADERS 64
#define READ_CHUNK  65536
/* A socket (or TLS) call that must wait: for readability, or for writability. */
#define WANT_READ  (-1001)
#define WANT_WRITE (-1002)
/* Unsent response bytes may wait this long for the client to read them before the response
 * is abandoned and the connection closed. */
#define WRITE_STALL_MS 30000
#define TICK_MS	       250
/* Connections looked at to pick one to reclaim when every slot is taken. */
#define RECLAIM_SAMPLE 64
/* After an error answer, what the client still sends is read and dropped this long before the
 * close, so the answer is not lost to a reset (the "lingering close" of RFC 9112 9.6). */
#define LINGER_S 2
#define NS	       1000000000ull

enum cstate {
	C_IDLE,	 /* no byte of a request yet (fresh, or kept alive after a response) */
	C_TLS,	 /* TLS handshake in progress */
	C_HEAD,	 /* request head arriving */
	C_BODY,	 /* head complete, body arriving */
	C_BUSY,	 /* a worker has it */
	C_LINGER, /* answered an error and half-closed: reading what the client still sends */
	C_PARKED, /* a long poll waiting for a change (srv_park) or its deadline */
	C_CLOSED /* being torn down */
};

/* Intrusive doubly linked lists (a head is a link to itself). */
struct link {
	struct link *prev, *next;
};

struct ipent {
	struct ipent *next;
	struct link idle, reading; /* its connections in those states, oldest first */
	uint8_t key[17]; /* family byte, then the IPv4 address or the IPv6 /64 */
	int conns;	 /* I/O thread only */
	int running;	 /* queued or in a worker; under qlock */
};

struct hconn {
	struct evloop_source src;
	struct link glink;  /* the server's idle or reading list, or the work queue */
	struct link iplink; /* its address's idle or reading list */
	struct hconn *dead_next;
	struct srv_httpd *h;
	int fd;
	struct sg_tls_term_conn *tls;
	enum cstate st;
	uint64_t since; /* when the state began (C_HEAD/C_BODY: the request's first byte) */
	struct ipent *ip;
	char ip_text[64];
	char local_text[64]; /* where it reached us (local_address), found at its first request */
	/* The request's id and start, kept while it is parked (srv_req.request_id). */
	char req_id[SRV_REQUEST_ID_MAX];
	struct timespec req_started;
	/* When the request was complete and queued for a handler thread (its first run). */
	struct timespec queued;
	/* The request being framed (src/net/http1.c parses the head). */
	char *in; /* the head's bytes as they arrive (at most HEAD_MAX) */
	size_t in_len, in_cap;
	bool head_done, msg_done;
	char *fields; /* NUL-terminated copies: method, target, then name\0value\0 pairs */
	const char *method, *target;
	struct srv_kv kv[MAX_HEADERS];
	int nh;
	bool head_method;
	enum sg_http_body body_kind;
	uint64_t body_left; /* Content-Length bytes still to come */
	struct sg_http_chunked chunked;
	char *body;
	size_t body_len, body_cap, body_limit;
	size_t body_held; /* of the shared body budget (body_reserve) */
	/* Bytes read past a complete request (pipelining), kept for after the response. */
	char *left;
	size_t left_len;
	bool want_close; /* client asked, HTTP/1.0, or an error */
	bool peer_gone;
	/* A parked request (srv_park): when its wait ends, whether this run is its last, whether
	 * the worker parked it, and the wake generation its last run started in. */
	uint64_t park_deadline;
	bool park_expired, park_pending;
	unsigned long run_gen;
};

struct srv_httpd {
	struct srv *s;
	struct evloop *loop;
	struct evloop_source lsrc, tsrc, esrc;
	int lfd, tfd, efd;
	struct sg_tls_term *tls;
	uint16_t port;
	int max_conns, max_per_ip, idle_s, head_s, req_s, nworkers;
	pthread_t io;
	pthread_t *workers;
	int started_workers;
	bool io_started;
	/* I/O thread state. */
	struct link idle, reading; /* list heads; oldest first */
	struct link parked;	    /* parked long polls (any order) */
	struct hconn *dead;	    /* closed in this loop turn; freed after it (evloop.h) */
	int nconns, nbusy;
	struct ipent **ips;
	size_t ipmask;
	/* Work queue and returns, under qlock. */
	pthread_mutex_t qlock;
	pthread_cond_t qcond;
	struct link queue;
	struct hconn **returned; /* max_conns entries */
	int nreturned;
	struct hconn **back; /* the I/O thread's copy of returned */
	bool workers_exit;
	atomic_bool stopping, abort_writes;
	/* srv_httpd_wake: parked requests run again. */
	atomic_ulong wake_gen;
	atomic_bool wake_pending;
	/* Request bodies beyond BODY_FREE bytes each, against body_budget (body_reserve). */
	atomic_size_t body_used;
	size_t body_budget;
	atomic_ullong body_refused;
	/* Counters (metrics). */
	atomic_ullong accepted, refused_capacity, refused_per_ip, reclaimed_idle, reclaimed_slow,
	    timeout_idle, timeout_head, timeout_body, framing_errors;
	atomic_int cur_state[C_CLOSED];
	/* Refusal log lines: one per 10 s with a count of the rest. */
	uint64_t refuse_log_at;
	unsigned long refuse_suppressed;
};


/* ---- lists ------------------------------------------------------------------------------- */

#define conn_of(l, member) ((struct hconn *)((char *)(l) - offsetof(struct hconn, member)))

static void link_init(struct link *head)
{
	head->prev = head->next = head;
}

static bool link_empty(const struct link *head)
{
	return head->next == head;
}

static void link_del(struct link *l)
{
	if (!l->next)
		return;
	l->prev->next = l->next;
	l->next->prev = l->prev;
	l->prev = l->next = NULL;
}

static void link_add_tail(struct link *head, struct link *l)
{
	link_del(l);
	l->prev = head->prev;
	l->next = head;
	head->prev->next = l;
	head->prev = l;
}

static void set_state(struct hconn *c, enum cstate st, uint64_t now)
{
	struct srv_httpd *h = c->h;

	if (c->st < C_CLOSED)
		atomic_fetch_sub(&h->cur_state[c->st], 1);
	c->st = st;
	c->since = now;
	if (st < C_CLOSED)
		atomic_fetch_add(&h->cur_state[st], 1);
	switch (st) {
	case C_IDLE:
		link_add_tail(&h->idle, &c->glink);
		link_add_tail(&c->ip->idle, &c->iplink);
		break;
	case C_TLS:
	case C_HEAD:
	case C_LINGER:
		link_add_tail(&h->reading, &c->glink);
		link_add_tail(&c->ip->reading, &c->iplink);
		break;
	case C_BODY: /* keeps its place: ordered by the request's first byte */
		break;
	case C_PARKED:
		link_add_tail(&h->parked, &c->glink);
		link_del(&c->iplink);
		break;
	default:
		link_del(&c->glink);
		link_del(&c->iplink);
	}
}

/* ---- per-address slots --------------------------------------------------------------------- */

static void ip_key(const struct sockaddr_storage *ss, uint8_t key[17], char *text, size_t tl)
{
	memset(key, 0, 17);
	text[0] = 0;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;

		key[0] = 4;
		memcpy(key + 1, &a->sin_addr, 4);
		inet_ntop(AF_INET, &a->sin_addr, text, (socklen_t)tl);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;

		if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
			key[0] = 4;
			memcpy(key + 1, a->sin6_addr.s6_addr + 12, 4);
			inet_ntop(AF_INET, a->sin6_addr.s6_addr + 12, text, (socklen_t)tl);
		} else {
			/* One /64 is one subscriber: an address per connection costs nothing. */
			key[0] = 6;
			memcpy(key + 1, &a->sin6_addr, 8);
			inet_ntop(AF_INET6, &a->sin6_addr, text, (socklen_t)tl);
		}
	}
}

static size_t ip_hash(const uint8_t key[17])
{
	uint64_t x = 1469598103934665603ull;

	for (int i = 0; i < 17; i++)
		x = (x ^ key[i]) * 1099511628211ull;
	return (size_t)(x ^ (x >> 29));
}

static struct ipent *ip_get(struct srv_httpd *h, const uint8_t key[17], bool create)
{
	size_t b = ip_hash(key) & h->ipmask;
	struct ipent *e;

	for (e = h->ips[b]; e; e = e->next) {
		if (!memcmp(e->key, key, 17))
			return e;
	}
	if (!create)
		return NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	memcpy(e->key, key, 17);
	link_init(&e->idle);
	link_init(&e->reading);
	e->next = h->ips[b];
	h->ips[b] = e;
	return e;
}

/* Drops a reference; the entry goes with its last connection. */
static void ip_put(struct srv_httpd *h, struct ipent *e)
{
	size_t b;

	if (!e || --e->conns > 0)
		return;
	b = ip_hash(e->key) & h->ipmask;
	for (struct ipent **pp = &h->ips[b]; *pp; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			free(e);
			return;
		}
	}
}

/* ---- connections (I/O thread) -------------------------------------------------------------- */

/* Bodies are read before the request is authenticated, and slots grow with the machine: at
 * 1 MiB a body, 15,000 slots would be 15 GiB that anyone could make the server hold. So each body
 * gets its first BODY_FREE bytes for nothing (every ordinary request fits) and the rest from one
 * budget for all connections; past it, 503 (Retry-After) and the next body gets its chance. */
#define BODY_FREE 16384

static bool body_reserve(struct hconn *c, size_t cap)
{
	size_t need = cap > BODY_FREE ? cap - BODY_FREE : 0, used;

	if (need <= c->body_held)
		return true;
	used = atomic_fetch_add(&c->h->body_used, need - c->body_held);
	if (used + (need - c->body_held) > c->h->body_budget) {
		atomic_fetch_sub(&c->h->body_used, need - c->body_held);
		atomic_fetch_add(&c->h->body_refused, 1);
		return false;
	}
	c->body_held = need;
	return true;
}

static void request_reset(struct hconn *c)
{
	free(c->in);
	free(c->fields);
	free(c->body);
	c->in = c->fields = c->body = NULL;
	c->in_len = c->in_cap = 0;
	c->head_done = c->msg_done = false;
	c->method = c->target = NULL;
	c->nh = 0;
	c->head_method = false;
	c->body_kind = SG_HTTP_BODY_NONE;
	c->body_left = 0;
	memset(&c->chunked, 0, sizeof(c->chunked));
	c->body_len = c->body_cap = 0;
	c->body_limit = 0;
	atomic_fetch_sub(&c->h->body_used, c->body_held);
	c->body_held = 0;
}

static void conn_close(struct hconn *c)
{
	struct srv_httpd *h = c->h;

	evloop_del(h->loop, &c->src);
	set_state(c, C_CLOSED, 0);
	sg_tls_term_conn_free(c->tls);
	close(c->fd);
	ip_put(h, c->ip);
	request_reset(c);
	free(c->left);
	c->left = NULL;
	h->nconns--;
	/* The loop may still hold an event for it in this turn. */
	c->dead_next = h->dead;
	h->dead = c;
}

static void free_dead(struct srv_httpd *h)
{
	while (h->dead) {
		struct hconn *c = h->dead;

		h->dead = c->dead_next;
		free(c);
	}
}

/* What a TLS call that could not go on waits for. */
static long tls_wait(struct hconn *c, ssize_t n)
{
	if (n >= 0)
		return (long)n;
	if (n != -EAGAIN)
		return SG_EIO;
	return sg_tls_term_events(c->tls) & EPOLLIN ? WANT_READ : WANT_WRITE;
}

static long conn_raw_write(struct hconn *c, const void *buf, size_t len)
{
	ssize_t n;

	if (c->tls) {
		n = sg_tls_term_write(c->tls, buf, len);
		return n == 0 ? WANT_WRITE : tls_wait(c, n);
	}
	n = send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n >= 0)
		return (long)n;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return WANT_WRITE;
	if (errno == EINTR)
		return 0;
	return SG_EIO;
}

/* Response head: status line, our fixed headers, the handler's, framing. */
static char *format_head(const struct srv_resp *r, bool head_only, bool close, size_t *len)
{
	static const char *const reasons[][2] = {
	    {"200", "OK"},
	    {"201", "Created"},
	    {"204", "No Content"},
	    {"302", "Found"},
	    {"400", "Bad Request"},
	    {"401", "Unauthorized"},
	    {"402", "Payment Required"},
	    {"403", "Forbidden"},
	    {"404", "Not Found"},
	    {"405", "Method Not Allowed"},
	    {"408", "Request Timeout"},
	    {"409", "Conflict"},
	    {"410", "Gone"},
	    {"411", "Length Required"},
	    {"413", "Content Too Large"},
	    {"414", "URI Too Long"},
	    {"415", "Unsupported Media Type"},
	    {"417", "Expectation Failed"},
	    {"422", "Unprocessable Content"},
	    {"429", "Too Many Requests"},
	    {"431", "Request Header Fields Too Large"},
	    {"500", "Internal Server Error"},
	    {"501", "Not Implemented"},
	    {"503", "Service Unavailable"},
	    {"505", "HTTP Version Not Supported"},
	};
	const char *reason = "Unknown";
	char code[8], *buf = NULL;
	size_t blen = 0;
	FILE *f;

	snprintf(code, sizeof(code), "%d", r->status);
	for (size_t i = 0; i < SG_ARRAY_LEN(reasons); i++) {
		if (!strcmp(reasons[i][0], code))
			reason = reasons[i][1];
	}
	f = open_memstream(&buf, &blen);
	if (!f)
		return NULL;
	fprintf(f, "HTTP/1.1 %d %s\r\n", r->status, reason);
	if (r->ctype[0])
		fprintf(f, "Content-Type: %s\r\n", r->ctype);
	/* Answers are not stored, unless the handler says how (the console's files). */
	if (!r->hlen || !strstr(r->headers, "Cache-Control:"))
		fputs("Cache-Control: no-store\r\n", f);
	fputs("X-Content-Type-Options: nosniff\r\n", f);
	fwrite(r->headers, 1, r->hlen, f);
	if (r->stream)
		fputs("Transfer-Encoding: chunked\r\n", f);
	else if (r->status != 204 && r->status >= 200)
		fprintf(f, "Content-Length: %zu\r\n", r->len);
	if (close)
		fputs("Connection: close\r\n", f);
	fputs("\r\n", f);
	(void)head_only;
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	*len = blen;
	return buf;
}

static void log_refusal(struct srv_httpd *h, const char *reason, const char *ip)
{
	uint64_t now = evloop_now_ns();

	/* Under attack a line per refused connection would be the attack's second front: one
	 * line per 10 s, the rest counted in it and in the metrics. */
	if (h->refuse_log_at && now - h->refuse_log_at < 10 * NS) {
		h->refuse_suppressed++;
		return;
	}
	srv_log(SG_LOG_WARN, "http_connection_refused", "reason=%s src=%s suppressed=%lu", reason,
		ip, h->refuse_suppressed);
	h->refuse_log_at = now;
	h->refuse_suppressed = 0;
}

/* The JSON error answer of the API's shape as one buffer (head and body), Connection: close. */
static char *error_answer(int status, const char *msg, size_t *len)
{
	struct srv_resp r = {0};
	char *head, *all = NULL;
	size_t hl = 0;

	srv_error(&r, status, NULL, "%s", msg);
	if (status == 429 || status == 503)
		srv_resp_header(&r, "Retry-After", "1");
	head = format_head(&r, false, true, &hl);
	if (head)
		all = malloc(hl + r.len);
	if (all) {
		memcpy(all, head, hl);
		memcpy(all + hl, r.body, r.len);
		*len = hl + r.len;
	}
	free(head);
	srv_resp_clear(&r);
	return all;
}

/* Answers a framing problem from the I/O thread (never blocks: a client that does not read
 * loses the answer), half-closes, and lingers. */
static void fail_now(struct hconn *c, int status, const char *msg)
{
	size_t len = 0;
	char *all;

	atomic_fetch_add(&c->h->framing_errors, 1);
	if (c->st == C_TLS || c->st == C_LINGER) {
		conn_close(c);
		return;
	}
	all = error_answer(status, msg, &len);
	if (all)
		(void)conn_raw_write(c, all, len);
	free(all);
	request_reset(c);
	c->want_close = true;
	if (!c->tls)
		shutdown(c->fd, SHUT_WR);
	set_state(c, C_LINGER, evloop_now_ns());
}

/* ---- framing (I/O thread) -------------------------------------------------------------------
 * The head is collected until the strict parser of src/net/http1.c (the gateway's: CRLF only,
 * one Content-Length, never with Transfer-Encoding, one Host, no obs-fold) says it is complete
 * or wrong; then the body by Content-Length or chunked coding, bounded by the route's limit. */

static const struct sg_http_limits head_limits = {HEAD_MAX, URL_MAX, MAX_HEADERS};

static int count_header(const struct sg_http_msg *m, const char *name)
{
	int n = 0;

	for (size_t i = 0; i < m->n_headers; i++)
		n += sg_http_ieq(m->headers[i].name, m->headers[i].name_len, name);
	return n;
}

/* Keeps what the handler will see of a complete head (NUL-terminated, names in lower case) and
 * decides about the body. false when the connection was answered and is going away. */
static bool head_complete(struct hconn *c, const struct sg_http_msg *m)
{
	struct srv_httpd *h = c->h;
	size_t need = m->method_len + m->target_len + 2, o = 0;
	const struct sg_http_header *ex;

	for (size_t i = 0; i < m->n_headers; i++)
		need += m->headers[i].name_len + m->headers[i].value_len + 2;
	c->fields = malloc(need);
	if (!c->fields) {
		fail_now(c, 503, "out of memory");
		return false;
	}
#define KEEP(dst, p, n, low)                                                                       \
	do {                                                                                       \
		(dst) = c->fields + o;                                                             \
		for (size_t k_ = 0; k_ < (n); k_++) {                                              \
			char ch_ = (p)[k_];                                                        \
			c->fields[o++] = (low) && ch_ >= 'A' && ch_ <= 'Z' ? (char)(ch_ + 32) : ch_; \
		}                                                                                  \
		c->fields[o++] = 0;                                                                \
	} while (0)
	KEEP(c->method, m->method, m->method_len, false);
	KEEP(c->target, m->target, m->target_len, false);
	for (size_t i = 0; i < m->n_headers; i++) {
		const char *nm, *val;

		if (memchr(m->headers[i].value, 0, m->headers[i].value_len)) {
			fail_now(c, 400, "a header value contains a NUL byte");
			return false;
		}
		KEEP(nm, m->headers[i].name, m->headers[i].name_len, true);
		KEEP(val, m->headers[i].value, m->headers[i].value_len, false);
		c->kv[c->nh].name = nm;
		c->kv[c->nh].value = val;
		c->nh++;
	}
#undef KEEP
	c->head_done = true;
	c->head_method = m->method_id == SG_HTTP_M_HEAD;
	c->body_kind = m->body;
	c->body_left = m->body == SG_HTTP_BODY_LENGTH ? m->content_length : 0;
	if (!m->keep_alive || m->minor == 0)
		c->want_close = true;
	if (m->method_id == SG_HTTP_M_CONNECT) {
		fail_now(c, 405, "CONNECT is not served");
		return false;
	}
	/* We switch to no other protocol; an Upgrade is answered as a plain request (RFC 9110
	 * section 7.8) and the connection closed after it. */
	if (m->conn_upgrade)
		c->want_close = true;
	if (count_header(m, "content-type") > 1 || count_header(m, "authorization") > 1) {
		fail_now(c, 400, "Content-Type and Authorization may appear once");
		return false;
	}
	c->body_limit = srv_http_body_limit(h->s, c->method, c->target);
	if (m->body == SG_HTTP_BODY_LENGTH && m->content_length > c->body_limit) {
		fail_now(c, 413, "the request body is larger than this endpoint takes");
		return false;
	}
	ex = sg_http_find(m, "expect");
	if (ex) {
		if (!m->expect_continue || count_header(m, "expect") != 1) {
			fail_now(c, 417, "only Expect: 100-continue is understood");
			return false;
		}
		if (m->minor == 1 && (m->body == SG_HTTP_BODY_CHUNKED ||
				      (m->body == SG_HTTP_BODY_LENGTH && m->content_length))) {
			static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

			/* Small enough for any socket buffer at this point of a connection. */
			if (conn_raw_write(c, cont, sizeof(cont) - 1) != (long)sizeof(cont) - 1) {
				conn_close(c);
				return false;
			}
		}
	}
	set_state(c, C_BODY, c->since);
	return true;
}

static bool body_append(struct hconn *c, const char *p, size_t n)
{
	if (c->body_len + n > c->body_limit) {
		fail_now(c, 413, "the request body is larger than this endpoint takes");
		return false;
	}
	if (c->body_len + n + 1 > c->body_cap) {
		size_t cap = SG_MAX(c->body_cap * 2, c->body_len + n + 1);
		char *b;

		cap = SG_MIN(SG_MAX(cap, 4096), c->body_limit + 1);
		if (!body_reserve(c, cap)) {
			fail_now(c, 503, "too many large request bodies in transit; retry");
			return false;
		}
		b = realloc(c->body, cap);
		if (!b) {
			fail_now(c, 503, "out of memory");
			return false;
		}
		c->body = b;
		c->body_cap = cap;
	}
	memcpy(c->body + c->body_len, p, n);
	c->body_len += n;
	c->body[c->body_len] = 0;
	return true;
}

/* Body bytes: *used gets how many belong to this request. false when the connection is going
 * away (answered). */
static bool body_feed(struct hconn *c, const char *buf, size_t len, size_t *used)
{
	*used = 0;
	switch (c->body_kind) {
	case SG_HTTP_BODY_LENGTH: {
		size_t take = (size_t)SG_MIN((uint64_t)len, c->body_left);

		if (take && !body_append(c, buf, take))
			return false;
		c->body_left -= take;
		*used = take;
		c->msg_done = !c->body_left;
		return true;
	}
	case SG_HTTP_BODY_CHUNKED:
		while (*used < len && !c->msg_done) {
			const uint8_t *data;
			size_t consumed = 0, dlen = 0;
			const char *why = NULL;
			int rc = sg_http_chunked_feed(&c->chunked, (const uint8_t *)buf + *used,
						      len - *used, &consumed, &data, &dlen, &why);

			if (rc < 0) {
				char msg[160];

				snprintf(msg, sizeof(msg), "malformed chunked body: %s", why);
				fail_now(c, 400, msg);
				return false;
			}
			if (dlen && !body_append(c, (const char *)data, dlen))
				return false;
			*used += consumed;
			c->msg_done = rc == 1;
			if (!consumed && !dlen && rc == 0)
				break;
		}
		return true;
	default:
		c->msg_done = true;
		return true;
	}
}

/* ---- work queue ---------------------------------------------------------------------------- */

static void enqueue(struct hconn *c)
{
	struct srv_httpd *h = c->h;

	set_state(c, C_BUSY, evloop_now_ns());
	/* Out of epoll while a worker has it: a reset would otherwise be reported again and again
	 * (EPOLLERR cannot be masked). */
	evloop_del(h->loop, &c->src);
	h->nbusy++;
	if (!c->req_id[0])
		clock_gettime(CLOCK_MONOTONIC, &c->queued);
	pthread_mutex_lock(&h->qlock);
	c->ip->running++;
	link_add_tail(&h->queue, &c->glink);
	pthread_cond_signal(&h->qcond);
	pthread_mutex_unlock(&h->qlock);
}

/* Frames what arrived in buf; on a complete request or an error, acts. Returns false when the
 * connection is no longer the reader's (answered and going away, or given to a worker). */
static bool feed(struct hconn *c, const char *buf, size_t len)
{
	size_t used = 0;

	if (!len)
		return true;
	if (c->st == C_IDLE)
		set_state(c, C_HEAD, evloop_now_ns());
	if (!c->head_done) {
		/* One parse per line end: a head can only complete at a LF. */
		bool lf = memchr(buf, '\n', len) != NULL;
		size_t keep = SG_MIN(len, HEAD_MAX + 1 - SG_MIN(c->in_len, (size_t)HEAD_MAX + 1));
		struct sg_http_msg m;
		const char *why = NULL;
		size_t prev = c->in_len;
		int rc;

		if (c->in_len + keep > c->in_cap) {
			size_t cap = SG_MAX(c->in_cap * 2, SG_MAX(c->in_len + keep, (size_t)1024));
			char *p = realloc(c->in, SG_MIN(cap, (size_t)HEAD_MAX + 1));

			if (!p) {
				fail_now(c, 503, "out of memory");
				return false;
			}
			c->in = p;
			c->in_cap = SG_MIN(cap, (size_t)HEAD_MAX + 1);
		}
		memcpy(c->in + c->in_len, buf, keep);
		c->in_len += keep;
		if (!lf) {
			if (c->in_len > HEAD_MAX) {
				fail_now(c, 431, "request header fields larger than 16384 bytes");
				return false;
			}
			return true;
		}
		rc = sg_http_parse_request(c->in, c->in_len, &head_limits, &m, &why);
		if (rc == SG_HTTP_INCOMPLETE) {
			if (c->in_len > HEAD_MAX) {
				fail_now(c, 431, "request header fields larger than 16384 bytes");
				return false;
			}
			return true;
		}
		if (rc < 0) {
			char msg[200];

			snprintf(msg, sizeof(msg), "malformed request: %s", why ? why : "bad head");
			fail_now(c, -rc, msg);
			return false;
		}
		if (!head_complete(c, &m))
			return false;
		/* What followed the head in this read: the body, perhaps a next request. */
		used = (size_t)rc - prev;
	}
	if (!c->msg_done) {
		size_t b = 0;

		if (!body_feed(c, buf + used, len - used, &b))
			return false;
		used += b;
	}
	if (!c->msg_done)
		return true;
	if (used < len) {
		/* Pipelined: kept for after the response. */
		char *l = malloc(len - used);

		if (!l) {
			conn_close(c);
			return false;
		}
		memcpy(l, buf + used, len - used);
		free(c->left);
		c->left = l;
		c->left_len = len - used;
	}
	enqueue(c);
	return false; /* not closed, but no longer ours to read */
}

static void conn_readable(struct hconn *c)
{
	static char buf[READ_CHUNK]; /* the I/O thread's only */

	for (int rounds = 0;; rounds++) {
		long n;

		if (c->tls) {
			n = tls_wait(c, sg_tls_term_read(c->tls, (uint8_t *)buf, sizeof(buf)));
		} else {
			ssize_t r = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);

			n = r >= 0 ? (long)r
			    : errno == EAGAIN || errno == EWOULDBLOCK ? WANT_READ
			    : errno == EINTR			       ? WANT_READ
								       : SG_EIO;
		}
		if (n == WANT_READ || n == WANT_WRITE)
			return;
		if (n <= 0) {
			/* End of stream: a request cut short is dropped, nothing to answer. */
			conn_close(c);
			return;
		}
		if (c->st == C_LINGER) {
			if (rounds >= 16) /* a fast sender gets no more of our time */
				conn_close(c);
			if (rounds >= 16)
				return;
			continue;
		}
		if (!feed(c, buf, (size_t)n))
			return;
		if ((size_t)n < sizeof(buf) && !(c->tls && sg_tls_term_pending(c->tls)))
			return;
	}
}

static void conn_event(void *ctx, uint32_t events)
{
	struct hconn *c = ctx;

	if (c->st == C_BUSY)
		return;
	if (c->st == C_PARKED) {
		/* Only a hang-up is watched while parked: the client gave up on its poll. */
		if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			conn_close(c);
		return;
	}
	if (c->st == C_TLS) {
		int rc = sg_tls_term_handshake(c->tls);

		if (rc == 0) {
			if (evloop_mod(c->h->loop, &c->src,
				       sg_tls_term_events(c->tls) & EPOLLOUT ? EPOLLOUT : EPOLLIN))
				conn_close(c);
			return;
		}
		if (rc < 0) {
			conn_close(c);
			return;
		}
		if (evloop_mod(c->h->loop, &c->src, EPOLLIN | EPOLLRDHUP)) {
			conn_close(c);
			return;
		}
		set_state(c, C_IDLE, evloop_now_ns());
		/* The request often came with the handshake's last flight. */
		conn_readable(c);
		return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))
		conn_readable(c);
}

/* Makes room for one more connection: the oldest idle one goes first, then the oldest request
 * still arriving (slow clients hold a slot the longest). false when every slot is busy. */
static bool reclaim(struct srv_httpd *h, struct ipent *only)
{
	struct link *gl[2] = {&h->idle, &h->reading};

	for (int i = 0; i < 2; i++) {
		struct hconn *victim = NULL;

		if (only) {
			/* The address's own oldest. */
			struct link *l = i == 0 ? &only->idle : &only->reading;

			if (!link_empty(l))
				victim = conn_of(l->next, iplink);
		} else {
			/* Of the oldest RECLAIM_SAMPLE, the one whose address holds the most slots:
			 * a flood then mostly displaces itself, not the one connection of a normal
			 * client that happens to be old. */
			int k = 0;

			for (struct link *l = gl[i]->next; l != gl[i] && k < RECLAIM_SAMPLE;
			     l = l->next, k++) {
				struct hconn *c = conn_of(l, glink);

				if (!victim || c->ip->conns > victim->ip->conns)
					victim = c;
			}
		}
		if (victim) {
			atomic_fetch_add(i == 0 ? &h->reclaimed_idle : &h->reclaimed_slow, 1);
			conn_close(victim);
			return true;
		}
	}
	return false;
}

static void refuse(struct srv_httpd *h, int fd, int status, const char *reason, const char *ip)
{
	log_refusal(h, reason, ip);
	/* The documented error shape, best effort, before closing. With TLS the client sees the
	 * connection closed instead (no handshake for a connection we refuse). */
	if (!h->tls) {
		size_t len = 0;
		char *all = error_answer(status,
					 status == 429 ? "too many connections from this address"
						       : "the server is at its connection limit",
					 &len);

		if (all)
			(void)send(fd, all, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		free(all);
	}
	close(fd);
}

static void on_accept(void *ctx, uint32_t events)
{
	struct srv_httpd *h = ctx;

	(void)events;
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		uint8_t key[17];
		char text[64];
		struct ipent *e;
		struct hconn *c;
		int fd = accept4(h->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE) {
				/* Out of descriptors: an idle connection makes room next time. */
				if (!reclaim(h, NULL))
					log_refusal(h, "no_file_descriptors", "-");
			}
			return;
		}
		atomic_fetch_add(&h->accepted, 1);
		ip_key(&ss, key, text, sizeof(text));
		e = ip_get(h, key, true);
		if (!e) {
			close(fd);
			continue;
		}
		/* Our reference first: reclaiming may close the address's other connections. */
		e->conns++;
		if (e->conns > h->max_per_ip && !reclaim(h, e)) {
			atomic_fetch_add(&h->refused_per_ip, 1);
			ip_put(h, e);
			refuse(h, fd, 429, "per_address_limit", text);
			continue;
		}
		if (h->nconns >= h->max_conns && !reclaim(h, NULL)) {
			atomic_fetch_add(&h->refused_capacity, 1);
			ip_put(h, e);
			refuse(h, fd, 503, "connection_limit", text);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			ip_put(h, e);
			close(fd);
			continue;
		}
		c->h = h;
		c->fd = fd;
		c->ip = e;
		c->st = C_CLOSED;
		h->nconns++;
		snprintf(c->ip_text, sizeof(c->ip_text), "%s", text);
		{
			int one = 1;

			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		}
		request_reset(c);
		if (h->tls) {
			c->tls = sg_tls_term_conn_new(h->tls, fd);
			if (!c->tls) {
				conn_close(c);
				continue;
			}
		}
		if (evloop_add(h->loop, &c->src, fd, EPOLLIN | EPOLLRDHUP, conn_event, c)) {
			conn_close(c);
			continue;
		}
		set_state(c, h->tls ? C_TLS : C_IDLE, evloop_now_ns());
	}
}

/* Deadlines, four times a second; O(connections not in a worker). */
static void on_tick(void *ctx, uint32_t events)
{
	struct srv_httpd *h = ctx;
	uint64_t now = evloop_now_ns();
	struct link *l, *n;
	struct hconn *c;

	(void)events;
	evloop_timer_ack(h->tfd);
	for (l = h->idle.next; l != &h->idle; l = n) {
		c = conn_of(l, glink);
		n = l->next;
		if (now - c->since < (uint64_t)h->idle_s * NS)
			break; /* oldest first */
		atomic_fetch_add(&h->timeout_idle, 1);
		conn_close(c);
	}
	for (l = h->reading.next; l != &h->reading; l = n) {
		c = conn_of(l, glink);
		n = l->next;
		if (c->st == C_LINGER) {
			if (now - c->since >= (uint64_t)LINGER_S * NS)
				conn_close(c);
		} else if (c->st == C_BODY) {
			if (now - c->since >= (uint64_t)h->req_s * NS) {
				atomic_fetch_add(&h->timeout_body, 1);
				fail_now(c, 408, "the request was not complete in time");
			}
		} else if (now - c->since >= (uint64_t)h->head_s * NS) {
			atomic_fetch_add(&h->timeout_head, 1);
			if (c->st == C_TLS)
				conn_close(c);
			else
				fail_now(c, 408, "the request head was not complete in time");
		}
	}
	for (l = h->parked.next; l != &h->parked; l = n) {
		c = conn_of(l, glink);
		n = l->next;
		if (now >= c->park_deadline) {
			c->park_expired = true;
			enqueue(c);
		}
	}
	if (evloop_timer_arm(h->tfd, now + TICK_MS * 1000000ull))
		srv_log(SG_LOG_ERROR, "http_internal", "msg=\"timer re-arm failed\"");
}

/* Connections coming back from workers. */
static void on_returned(void *ctx, uint32_t events)
{
	struct srv_httpd *h = ctx;
	struct hconn **back = h->back;
	int n;
	uint64_t v;

	(void)events;
	if (read(h->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&h->qlock);
	n = h->nreturned;
	memcpy(back, h->returned, sizeof(*back) * (size_t)n);
	h->nreturned = 0;
	pthread_mutex_unlock(&h->qlock);
	for (int i = 0; i < n; i++) {
		struct hconn *c = back[i];

		h->nbusy--;
		if (c->park_pending && !c->peer_gone && !atomic_load(&h->stopping)) {
			/* Parked (a close the client asked for comes after the answer). */
			c->park_pending = false;
			/* A change that came while it ran would otherwise wait for the next one. */
			if (atomic_load(&h->wake_gen) != c->run_gen) {
				enqueue(c);
				continue;
			}
			set_state(c, C_PARKED, evloop_now_ns());
			if (evloop_add(h->loop, &c->src, c->fd, EPOLLRDHUP, conn_event, c))
				conn_close(c);
			continue;
		}
		c->park_pending = false;
		if (c->want_close || c->peer_gone || atomic_load(&h->stopping)) {
			conn_close(c);
			continue;
		}
		request_reset(c);
		set_state(c, C_IDLE, evloop_now_ns());
		if (evloop_add(h->loop, &c->src, c->fd, EPOLLIN | EPOLLRDHUP, conn_event, c)) {
			conn_close(c);
			continue;
		}
		if (c->left) {
			char *l = c->left;
			size_t ll = c->left_len;

			c->left = NULL;
			c->left_len = 0;
			if (feed(c, l, ll) && c->tls && sg_tls_term_pending(c->tls))
				conn_readable(c);
			free(l);
		} else if (c->tls && sg_tls_term_pending(c->tls)) {
			conn_readable(c);
		}
	}
	if (atomic_exchange(&h->wake_pending, false)) {
		struct link *l, *nx;

		for (l = h->parked.next; l != &h->parked; l = nx) {
			nx = l->next;
			enqueue(conn_of(l, glink));
		}
	}
}

static void *io_main(void *arg)
{
	struct srv_httpd *h = arg;
	uint64_t stop_at = 0;

	while (true) {
		(void)evloop_run_once(h->loop, TICK_MS);
		free_dead(h);
		if (!atomic_load(&h->stopping))
			continue;
		if (!stop_at) {
			stop_at = evloop_now_ns();
			evloop_del(h->loop, &h->lsrc);
			close(h->lfd);
			h->lfd = -1;
			while (!link_empty(&h->idle))
				conn_close(conn_of(h->idle.next, glink));
			while (!link_empty(&h->reading))
				conn_close(conn_of(h->reading.next, glink));
			while (!link_empty(&h->parked))
				conn_close(conn_of(h->parked.next, glink));
		}
		if (!h->nbusy)
			break;
	}
	return NULL;
}

/* ---- workers ------------------------------------------------------------------------------- */

/* Writes all of buf, waiting for the socket as needed; false when the client is gone, stalls
 * past WRITE_STALL_MS, or the server is stopping past its grace. */
static bool write_all(struct hconn *c, const char *buf, size_t len)
{
	struct srv_httpd *h = c->h;
	int stalled = 0;

	while (len) {
		long n = conn_raw_write(c, buf, len);

		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			stalled = 0;
			continue;
		}
		if (n == WANT_WRITE || n == WANT_READ || n == 0) {
			struct pollfd pfd = {c->fd, n == WANT_READ ? POLLIN : POLLOUT, 0};

			if (atomic_load(&h->abort_writes) || stalled >= WRITE_STALL_MS)
				return false;
			if (poll(&pfd, 1, 200) == 0)
				stalled += 200;
			continue;
		}
		return false;
	}
	return true;
}

static void respond(struct hconn *c, struct srv_resp *r, bool head_only)
{
	char *head;
	size_t hl = 0;

	if (r->close)
		c->want_close = true;
	head = format_head(r, head_only, c->want_close, &hl);
	if (!head) {
		c->peer_gone = true;
		return;
	}
	if (!r->stream) {
		/* One write for small answers: head and body together. */
		if (!head_only && r->len && r->len <= 16384) {
			char *all = malloc(hl + r->len);

			if (all) {
				memcpy(all, head, hl);
				memcpy(all + hl, r->body, r->len);
				if (!write_all(c, all, hl + r->len))
					c->peer_gone = true;
				free(all);
				free(head);
				return;
			}
		}
		if (!write_all(c, head, hl) ||
		    (!head_only && r->len && !write_all(c, r->body, r->len)))
			c->peer_gone = true;
		free(head);
		return;
	}
	if (!write_all(c, head, hl)) {
		c->peer_gone = true;
		free(head);
		return;
	}
	free(head);
	if (head_only)
		return;
	{
		enum { CHUNK = 32768 };
		char *buf = malloc(CHUNK + 16);

		if (!buf) {
			c->peer_gone = true;
			return;
		}
		for (;;) {
			long n = r->stream(r->stream_cls, buf + 10, CHUNK);
			char sz[12];
			int sl;

			if (n < 0) {
				/* Cut short: the client sees no final chunk, so knows it is partial. */
				c->peer_gone = true;
				break;
			}
			if (n == 0) {
				if (!write_all(c, "0\r\n\r\n", 5))
					c->peer_gone = true;
				break;
			}
			sl = snprintf(sz, sizeof(sz), "%lx\r\n", (unsigned long)n);
			memcpy(buf + 10 - sl, sz, (size_t)sl);
			memcpy(buf + 10 + n, "\r\n", 2);
			if (!write_all(c, buf + 10 - sl, (size_t)sl + (size_t)n + 2)) {
				c->peer_gone = true;
				break;
			}
		}
		free(buf);
	}
}

/* "192.0.2.1:8080" or "[2001:db8::1]:8080": where this connection reached us. */
static void local_address(int fd, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char a[INET6_ADDRSTRLEN] = "";

	out[0] = 0;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl))
		return;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &in->sin_addr, a, sizeof(a));
		snprintf(out, len, "%s:%u", a, ntohs(in->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;

		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			inet_ntop(AF_INET, in6->sin6_addr.s6_addr + 12, a, sizeof(a));
			snprintf(out, len, "%s:%u", a, ntohs(in6->sin6_port));
		} else {
			inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof(a));
			snprintf(out, len, "[%s]:%u", a, ntohs(in6->sin6_port));
		}
	}
}

static void handle(struct hconn *c)
{
	struct srv_httpd *h = c->h;
	struct srv_req req;
	struct srv_resp resp;
	bool head_only = c->head_method;

	memset(&req, 0, sizeof(req));
	memset(&resp, 0, sizeof(resp));
	req.method = c->method;
	req.target = c->target;
	req.headers = c->kv;
	req.nheaders = c->nh;
	req.body = c->body;
	req.body_len = c->body_len;
	req.from_proxy = srv_client_addr(&h->s->proxies, c->ip_text, c->kv, c->nh, req.source_ip);
	/* Once per connection: a getsockname per request was one system call in 20 of a read. */
	if (!c->local_text[0])
		local_address(c->fd, c->local_text, sizeof(c->local_text));
	memcpy(req.local_addr, c->local_text, sizeof(req.local_addr));
	req.park_expired = c->park_expired;
	if (!c->req_id[0]) {
		clock_gettime(CLOCK_MONOTONIC, &c->req_started);
		req.queue_ms = (double)(c->req_started.tv_sec - c->queued.tv_sec) * 1e3 +
			       (double)(c->req_started.tv_nsec - c->queued.tv_nsec) / 1e6;
	}
	req.request_id = c->req_id;
	req.started = &c->req_started;
	c->run_gen = atomic_load(&h->wake_gen);
	srv_http_handle(h->s, &req, &resp);
	if (resp.park_ms > 0 && !c->park_expired && !atomic_load(&h->stopping)) {
		/* Parked: the request stays as it is and runs again later (on_returned). */
		if (!c->park_deadline)
			c->park_deadline = evloop_now_ns() + (uint64_t)resp.park_ms * 1000000ull;
		c->park_pending = true;
		srv_resp_clear(&resp);
		json_decref(req.json);
		free(req.decoded);
		return;
	}
	c->park_deadline = 0;
	c->park_expired = false;
	c->req_id[0] = 0; /* the next request on the connection gets its own */
	respond(c, &resp, head_only);
	srv_resp_clear(&resp);
	json_decref(req.json);
	free(req.decoded);
}

static void *worker_main(void *arg)
{
	struct srv_httpd *h = arg;

	for (;;) {
		struct hconn *best = NULL;
		uint64_t one = 1;

		pthread_mutex_lock(&h->qlock);
		while (link_empty(&h->queue) && !h->workers_exit)
			pthread_cond_wait(&h->qcond, &h->qlock);
		if (link_empty(&h->queue)) {
			pthread_mutex_unlock(&h->qlock);
			return NULL;
		}
		/* Fair share: the oldest request of the address with the fewest in a worker, so
		 * one busy address cannot keep every worker to itself. */
		for (struct link *l = h->queue.next; l != &h->queue; l = l->next) {
			struct hconn *c = conn_of(l, glink);

			if (!best || c->ip->running < best->ip->running)
				best = c;
			if (best->ip->running <= 1)
				break;
		}
		link_del(&best->glink);
		pthread_mutex_unlock(&h->qlock);

		handle(best);

		pthread_mutex_lock(&h->qlock);
		best->ip->running--;
		h->returned[h->nreturned++] = best; /* room: at most max_conns are busy */
		pthread_mutex_unlock(&h->qlock);
		if (write(h->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			srv_log(SG_LOG_ERROR, "http_internal", "msg=\"eventfd write failed\"");
	}
}

/* ---- start / stop -------------------------------------------------------------------------- */

/* An eighth of the free memory, 64 MiB to 1 GiB. */
static size_t default_body_budget(void)
{
	struct sysinfo si;
	unsigned long long m = 64ull << 20;

	if (sysinfo(&si) == 0)
		m = (unsigned long long)si.freeram * si.mem_unit / 8;
	return (size_t)SG_MIN(SG_MAX(m, 64ull << 20), 1ull << 30);
}

static int default_slots(int *limit_out)
{
	struct rlimit rl;
	struct sysinfo si;
	long long by_fd, by_mem = 65536;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		if (rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			(void)setrlimit(RLIMIT_NOFILE, &rl);
			(void)getrlimit(RLIMIT_NOFILE, &rl);
		}
	} else {
		rl.rlim_cur = 1024;
	}
	*limit_out = rl.rlim_cur > 1u << 30 ? 1 << 30 : (int)rl.rlim_cur;
	/* The database pool, logs, the listener and the key files need descriptors too. */
	by_fd = (long long)*limit_out - 256;
	if (sysinfo(&si) == 0)
		/* A TLS connection reading a large head holds about 64 KiB at worst. */
		by_mem = (long long)((unsigned long long)si.freeram * si.mem_unit / 4 / 65536);
	return (int)SG_MAX(4, SG_MIN(SG_MIN(by_fd, by_mem), 65536));
}

int srv_httpd_start(struct srv_httpd **out, struct srv *s, const struct srv_httpd_opts *o,
		    char *err, size_t errlen)
{
	struct srv_httpd *h = calloc(1, sizeof(*h));
	int one = 1, rc, nofile = 0;
	socklen_t al;
	size_t buckets = 1;

	*out = NULL;
	if (!h)
		return SG_ENOMEM;
	h->s = s;
	h->lfd = h->tfd = h->efd = -1;
	link_init(&h->idle);
	link_init(&h->reading);
	link_init(&h->parked);
	link_init(&h->queue);
	pthread_mutex_init(&h->qlock, NULL);
	pthread_cond_init(&h->qcond, NULL);
	h->max_conns = default_slots(&nofile);
	if (o->max_connections > 0)
		h->max_conns = SG_MIN(o->max_connections, SG_MAX(nofile - 256, 4));
	h->max_per_ip = o->max_per_ip > 0 ? o->max_per_ip : SG_MAX(8, h->max_conns / 16);
	h->idle_s = o->idle_timeout > 0 ? o->idle_timeout : 30;
	h->head_s = o->header_timeout > 0 ? o->header_timeout : 10;
	h->req_s = o->request_timeout > 0 ? o->request_timeout : 30;
	h->nworkers = o->workers > 0 ? o->workers : 16;
	h->body_budget = o->body_memory ? o->body_memory : default_body_budget();
	while (buckets < (size_t)h->max_conns * 2)
		buckets <<= 1;
	h->ips = calloc(buckets, sizeof(*h->ips));
	h->ipmask = buckets - 1;
	h->workers = calloc((size_t)h->nworkers, sizeof(*h->workers));
	h->returned = calloc((size_t)h->max_conns, sizeof(*h->returned));
	h->back = calloc((size_t)h->max_conns, sizeof(*h->back));
	if (!h->ips || !h->workers || !h->returned || !h->back) {
		rc = SG_ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (o->tls_cert_file) {
		static const char *const alpn[] = {"http/1.1"};

		rc = sg_tls_term_new(&h->tls, o->tls_cert_file, o->tls_key_file, NULL, 0, alpn, 1,
				     err, errlen);
		if (rc)
			goto fail;
	}
	h->lfd = socket(o->addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (h->lfd < 0)
		goto fail_errno;
	setsockopt(h->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	al = o->addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					    : sizeof(struct sockaddr_in);
	if (bind(h->lfd, o->addr, al) || listen(h->lfd, 1024))
		goto fail_errno;
	{
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		if (getsockname(h->lfd, (struct sockaddr *)&ss, &sl))
			goto fail_errno;
		h->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
							 : ((struct sockaddr_in *)&ss)->sin_port);
	}
	rc = evloop_new(&h->loop);
	if (rc) {
		snprintf(err, errlen, "event loop: %s", strerror(-rc));
		goto fail;
	}
	h->tfd = evloop_timer_new();
	h->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (h->tfd < 0 || h->efd < 0)
		goto fail_errno;
	if (evloop_add(h->loop, &h->lsrc, h->lfd, EPOLLIN, on_accept, h) ||
	    evloop_add(h->loop, &h->tsrc, h->tfd, EPOLLIN, on_tick, h) ||
	    evloop_add(h->loop, &h->esrc, h->efd, EPOLLIN, on_returned, h) ||
	    evloop_timer_arm(h->tfd, evloop_now_ns() + TICK_MS * 1000000ull))
		goto fail_errno;
	for (int i = 0; i < h->nworkers; i++) {
		if (pthread_create(&h->workers[i], NULL, worker_main, h)) {
			snprintf(err, errlen, "cannot start handler threads");
			rc = SG_ENOMEM;
			goto fail;
		}
		h->started_workers++;
	}
	if (pthread_create(&h->io, NULL, io_main, h)) {
		snprintf(err, errlen, "cannot start the I/O thread");
		rc = SG_ENOMEM;
		goto fail;
	}
	h->io_started = true;
	srv_log(SG_LOG_INFO, "http_limits",
		"max_connections=%d max_per_address=%d idle_timeout=%d header_timeout=%d "
		"request_timeout=%d workers=%d",
		h->max_conns, h->max_per_ip, h->idle_s, h->head_s, h->req_s, h->nworkers);
	*out = h;
	return 0;
fail_errno:
	rc = -errno;
	snprintf(err, errlen, "cannot listen: %s", strerror(errno));
fail:
	srv_httpd_stop(h, 0);
	return rc ? rc : SG_EIO;
}

void srv_httpd_wake(struct srv_httpd *h)
{
	uint64_t one = 1;

	if (!h)
		return;
	atomic_fetch_add(&h->wake_gen, 1);
	atomic_store(&h->wake_pending, true);
	if (write(h->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		srv_log(SG_LOG_ERROR, "http_internal", "msg=\"eventfd write failed\"");
}

uint16_t srv_httpd_port(const struct srv_httpd *h)
{
	return h->port;
}

void srv_httpd_limits(const struct srv_httpd *h, int *max_connections, int *max_per_ip)
{
	*max_connections = h->max_conns;
	*max_per_ip = h->max_per_ip;
}

void srv_httpd_stop(struct srv_httpd *h, int grace)
{
	if (!h)
		return;
	if (h->io_started) {
		uint64_t one = 1, t0 = evloop_now_ns();
		bool joined = false;

		atomic_store(&h->stopping, true);
		if (write(h->efd, &one, sizeof(one)) < 0)
			srv_log(SG_LOG_ERROR, "http_internal", "msg=\"eventfd write failed\"");
		/* Requests in flight finish; past the grace their writes give up. */
		while (!joined) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			joined = !pthread_timedjoin_np(h->io, NULL, &ts);
			if (!joined && evloop_now_ns() - t0 >= (uint64_t)grace * NS)
				atomic_store(&h->abort_writes, true);
		}
	}
	pthread_mutex_lock(&h->qlock);
	h->workers_exit = true;
	pthread_cond_broadcast(&h->qcond);
	pthread_mutex_unlock(&h->qlock);
	for (int i = 0; i < h->started_workers; i++)
		pthread_join(h->workers[i], NULL);
	/* Anything still here had no worker (start-up failed half-way). */
	while (h->queue.next && !link_empty(&h->queue)) {
		struct hconn *c = conn_of(h->queue.next, glink);

		link_del(&c->glink);
		conn_close(c);
	}
	for (int i = 0; i < h->nreturned; i++)
		conn_close(h->returned[i]);
	free(h->returned);
	free(h->back);
	while (h->idle.next && !link_empty(&h->idle))
		conn_close(conn_of(h->idle.next, glink));
	while (h->reading.next && !link_empty(&h->reading))
		conn_close(conn_of(h->reading.next, glink));
	while (h->parked.next && !link_empty(&h->parked))
		conn_close(conn_of(h->parked.next, glink));
	free_dead(h);
	if (h->loop)
		evloop_free(h->loop);
	if (h->lfd >= 0)
		close(h->lfd);
	if (h->tfd >= 0)
		close(h->tfd);
	if (h->efd >= 0)
		close(h->efd);
	sg_tls_term_free(h->tls);
	if (h->ips) {
		for (size_t b = 0; b <= h->ipmask; b++) {
			while (h->ips[b]) {
				struct ipent *e = h->ips[b];

				h->ips[b] = e->next;
				free(e);
			}
		}
	}
	free(h->ips);
	free(h->workers);
	pthread_mutex_destroy(&h->qlock);
	pthread_cond_destroy(&h->qcond);
	free(h);
}

void srv_httpd_metrics(const struct srv_httpd *h, FILE *f)
{
	static const char *const names[] = {"idle",	    "tls_handshake", "reading_head",
					    "reading_body", "in_handler",    "closing",
					    "waiting"};

	if (!h)
		return;
	fprintf(f, "# HELP secureguard_http_connections Open connections by state.\n"
		   "# TYPE secureguard_http_connections gauge\n");
	for (int i = 0; i < C_CLOSED; i++)
		fprintf(f, "secureguard_http_connections{state=\"%s\"} %d\n", names[i],
			atomic_load(&((struct srv_httpd *)h)->cur_state[i]));
	fprintf(f,
		"# HELP secureguard_http_connection_slots Connection slots in all and per address.\n"
		"# TYPE secureguard_http_connection_slots gauge\n"
		"secureguard_http_connection_slots{scope=\"total\"} %d\n"
		"secureguard_http_connection_slots{scope=\"per_address\"} %d\n",
		h->max_conns, h->max_per_ip);
	fprintf(f,
		"# HELP secureguard_http_connections_accepted_total Connections accepted.\n"
		"# TYPE secureguard_http_connections_accepted_total counter\n"
		"secureguard_http_connections_accepted_total %llu\n",
		(unsigned long long)atomic_load(&((struct srv_httpd *)h)->accepted));
	fprintf(f,
		"# HELP secureguard_http_connections_refused_total Connections refused at once.\n"
		"# TYPE secureguard_http_connections_refused_total counter\n"
		"secureguard_http_connections_refused_total{reason=\"connection_limit\"} %llu\n"
		"secureguard_http_connections_refused_total{reason=\"per_address_limit\"} %llu\n",
		(unsigned long long)atomic_load(&((struct srv_httpd *)h)->refused_capacity),
		(unsigned long long)atomic_load(&((struct srv_httpd *)h)->refused_per_ip));
	fprintf(f,
		"# HELP secureguard_http_connections_reclaimed_total Connections closed to make "
		"room for new ones.\n"
		"# TYPE secureguard_http_connections_reclaimed_total counter\n"
		"secureguard_http_connections_reclaimed_total{state=\"idle\"} %llu\n"
		"secureguard_http_connections_reclaimed_total{state=\"unfinished_request\"} %llu\n",
		(unsigned long long)atomic_load(&((struct srv_httpd *)h)->reclaimed_idle),
		(unsigned long long)atomic_load(&((struct srv_httpd *)h)->reclaimed_slow));
	fprintf(f,
		"# HELP secureguard_http_connection_timeouts_total Connections closed at a "
		"deadline.\n"
		"# TYPE secureguard_http_connection_timeouts_total counter\n"
		"secureguard_http_connection_timeouts_total{phase=\"idle\"} %llu\n"
		"secureguard_http_connection_timeouts_total{phase=\"head\"} %llu\n"
		"secureguard_http_connection_timeouts_total{phase=\"body\"} %llu\n",
		(unsigned long long)atomic_load(&((struct srv_httpd *)h)->timeout_idle),
		(unsigned long long)atomic_load(&((struct srv_httpd *)h)->timeout_head),
		(unsigned long long)atomic_load(&((struct srv_httpd *)h)->timeout_body));
	fprintf(f,
		"# HELP secureguard_http_framing_errors_total Requests refused before routing "
		"(malformed, too large, timed out).\n"
		"# TYPE secureguard_http_framing_errors_total counter\n"
		"secureguard_http_framing_errors_total %llu\n",
		(unsigned long long)atomic_load(&((struct srv_httpd *)h)->framing_errors));
	fprintf(f,
		"# HELP secureguard_http_body_bytes Request body memory beyond the first %d bytes "
		"of each, against its budget (--body-memory).\n"
		"# TYPE secureguard_http_body_bytes gauge\n"
		"secureguard_http_body_bytes{of=\"used\"} %zu\n"
		"secureguard_http_body_bytes{of=\"budget\"} %zu\n"
		"# HELP secureguard_http_body_refused_total Requests answered 503: the body budget "
		"was spent.\n# TYPE secureguard_http_body_refused_total counter\n"
		"secureguard_http_body_refused_total %llu\n",
		BODY_FREE, atomic_load(&((struct srv_httpd *)h)->body_used), h->body_budget,
		(unsigned long long)atomic_load(&((struct srv_httpd *)h)->body_refused));
}
