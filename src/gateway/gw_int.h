/* Gateway internals shared by its files (not an interface for other components). */
#ifndef SG_GATEWAY_GW_INT_H
#define SG_GATEWAY_GW_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gateway/conf.h"
#include "gateway/gateway.h"
#include "net/http1.h"
#include "net/evloop.h"
#include "net/tls_term.h"
#include "wg/wg.h"

struct sg_mgmt;
struct sg_longpoll;
struct gw_events;

#define NS_PER_MS 1000000ull
#define NS_PER_S  1000000000ull

/* ---- intrusive list --------------------------------------------------------------------- */

struct gw_link {
	struct gw_link *prev, *next;
};

static inline void gw_list_init(struct gw_link *h)
{
	h->prev = h->next = h;
}
static inline bool gw_list_empty(const struct gw_link *h)
{
	return h->next == h;
}
static inline void gw_list_add(struct gw_link *h, struct gw_link *n)
{
	n->next = h->next;
	n->prev = h;
	h->next->prev = n;
	h->next = n;
}
static inline void gw_list_del(struct gw_link *n)
{
	if (!n->next)
		return;
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = NULL;
}
#define gw_container(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* ---- byte buffer with a fixed capacity -------------------------------------------------- */

struct gw_buf {
	uint8_t *p;
	uint32_t cap, off, len;
};

static inline uint8_t *gw_buf_data(struct gw_buf *b)
{
	return b->p + b->off;
}
/* Free space at the end, after moving the data to the front if that helps. */
static inline size_t gw_buf_space(struct gw_buf *b)
{
	if (b->off && b->cap - b->off - b->len < b->cap / 2) {
		for (uint32_t i = 0; i < b->len; i++)
			b->p[i] = b->p[b->off + i];
		b->off = 0;
	}
	return b->cap - b->off - b->len;
}
static inline uint8_t *gw_buf_tail(struct gw_buf *b)
{
	return b->p + b->off + b->len;
}
static inline void gw_buf_consume(struct gw_buf *b, size_t n)
{
	b->off += (uint32_t)n;
	b->len -= (uint32_t)n;
	if (b->len == 0)
		b->off = 0;
}
bool gw_buf_alloc(struct gw_buf *b, uint32_t cap);
void gw_buf_free(struct gw_buf *b);
/* Appends all of s or nothing; false when it does not fit. */
bool gw_buf_put(struct gw_buf *b, const void *s, size_t n);

/* ---- runtime state of one config generation --------------------------------------------- */

struct gw_bucket {
	uint64_t tokens_milli; /* thousandths of a token */
	uint64_t last_ns;
};

#define GW_LAT_BUCKETS 12
extern const double gw_lat_bounds[GW_LAT_BUCKETS]; /* seconds */

struct gw_res;

struct gw_target {
	const struct gw_target_conf *conf;
	struct gw_res *res;
	uint32_t index;
	/* Active health: starts healthy so a fresh gateway serves at once. */
	bool healthy;
	uint32_t ok_streak, fail_streak;
	uint64_t next_check_ns;
	struct gw_probe *probe;
	/* Passive health. */
	uint32_t passive_fails;
	uint64_t ejected_until_ns;
	/* Balancing. */
	uint32_t active;
	int64_t cur_weight;
	/* Idle keep-alive connections to this target. */
	struct gw_link idle;
	uint32_t n_idle;
	/* Counters. */
	uint64_t requests, failures, bytes_in, bytes_out;
};

struct gw_res {
	const struct gw_resource_conf *conf;
	struct gw_rt *rt;
	uint32_t index;
	struct gw_target *targets;
	size_t n_targets;
	uint64_t rr;
	struct gw_bucket bucket; /* per resource */
	/* tcp/udp: the listening socket and its flows */
	int lfd;
	struct evloop_source lsrc;
	uint32_t flows;
	struct gw_link udp_flows;
	/* Counters. */
	uint64_t status_class[6]; /* [0]: no response (aborted), [1..5]: 1xx..5xx */
	uint64_t lat_count[GW_LAT_BUCKETS + 1];
	double lat_sum;
	uint64_t denied, limited, flows_total, flows_refused;
	struct gw_oidc *oidc; /* auth login: the provider's endpoints and keys (oidc.c) */
};

struct gw_rt {
	int refs;
	struct gw *gw;
	struct gw_conf *conf;
	struct gw_res *res;
	size_t n_res;
	bool retired; /* replaced by a newer generation */
};

/* A generation for conf (owned from here; freed with the last reference). State carries over
 * from old for targets with the same resource id, id and address. NULL without memory. */
struct gw_rt *gw_rt_new(struct gw *gw, struct gw_conf *conf, const struct gw_rt *old);
struct gw_rt *gw_rt_get(struct gw_rt *rt);
void gw_rt_put(struct gw_rt *rt);

/* ---- per-source state ------------------------------------------------------------------- */

#define GW_SRC_SLOTS 16384
#define GW_SRC_PROBE 8

struct gw_src_entry {
	uint8_t key[17]; /* family byte + 16 address bytes */
	uint32_t res;	 /* resource index + 1 for rate buckets; 0 for the connection count */
	bool used;
	uint32_t conns;
	struct gw_bucket bucket;
	uint64_t last_ns;
};

/* ---- the process ------------------------------------------------------------------------ */

struct gw_listener {
	struct gw *gw;
	int fd;
	struct evloop_source src;
	bool tls;
	bool metrics;
	union wg_sockaddr addr;
};

struct gw {
	struct evloop *loop;
	struct gw_opts opts;
	struct gw_rt *rt; /* current generation */
	struct gw_listener http, https, metrics;
	int tfd;
	struct evloop_source tsrc;
	uint64_t now_ns;
	struct gw_link conns;  /* clients and idle upstream connections (timeouts) */
	struct gw_link grave;  /* closed clients, freed after the loop turn */
	struct sg_http_msg msg; /* scratch for the head being handled (one thread) */
	struct gw_link flows;  /* tcp flows */
	/* TLS clients whose handshake's first step waits for a later loop turn (proxy.c,
	 * hs_step), in arrival order, and the time this turn has spent on first steps. */
	struct gw_link hs_wait;
	uint64_t hs_turn_ns;
	uint32_t n_clients;
	struct gw_src_entry *src;
	FILE *access_log;
	struct sg_tls_term *tls;
	struct sg_httpc *httpc; /* the one HTTP client (identity providers, the server) */
	bool stop;
	int exit_code;
	/* Managed by the server (managed.c, events.c). */
	struct sg_mgmt *mgmt;
	struct sg_longpoll *lp;
	const char *lp_hdrs[2];
	char revision[160];    /* of the configuration last received */
	bool server_ok, server_rejected, reporting;
	uint64_t next_report_ns;
	struct gw_events *events;
	/* Counters. */
	uint64_t reloads, rejected, accepted, refused_conns;
	uint32_t oidc_inflight; /* token exchanges in progress (capped) */
	uint64_t bad_requests;
};

/* ---- connections ------------------------------------------------------------------------ */

#define LOG_FIELD_MAX 256 /* path and host kept per exchange for the access log */

enum conn_kind { K_CLIENT = 1, K_UPSTREAM = 2 };

enum cstate {
	C_TLS = 0, /* TLS handshake */
	C_HEAD,	   /* waiting for a request head */
	C_BUSY,	   /* an exchange is in progress */
	C_TUNNEL,  /* WebSocket: bytes flow both ways unchanged */
	C_CLOSING, /* flushing the last response, then close */
	C_H2,	   /* an HTTP/2 connection: its streams are virtual clients (h2.c) */
	C_WAIT,	   /* a login callback waits for the identity provider's token endpoint */
};

struct gw_upstream;

struct gw_exchange {
	struct gw_rt *rt;
	struct gw_res *res;
	struct gw_target *t;
	struct gw_upstream *u;
	char *head; /* the request head as sent to targets (kept for retries) */
	size_t head_len;
	enum sg_http_method method;
	enum sg_http_body req_body;
	uint64_t req_left, req_bytes, max_body;
	struct sg_http_chunked req_ch;
	bool req_done, retryable, expect_continue;
	uint32_t tries;
	uint64_t tried_mask;
	bool resp_started, resp_head_done, resp_done, resp_keepalive, resp_chunked_out;
	bool resp_close_out; /* the client's body ends when we close */
	int status;
	enum sg_http_body resp_body;
	uint64_t resp_left;
	struct sg_http_chunked resp_ch;
	bool client_keepalive, websocket, https;
	uint64_t start_ns, sent_ns, bytes_out;
	struct sg_httpc_req *oidc_req; /* a login's code exchange in progress (C_WAIT) */
	/* Text kept for the access log and the login: allocated with the connection's first
	 * request and dropped with its buffers when it idles (an idle connection stays small). */
	struct gw_xtext {
		char user[64];
		char sticky_set[GW_CONF_ID_MAX + 1];
		char method_s[16];
		char path[LOG_FIELD_MAX];
		char host[LOG_FIELD_MAX];
	} *s;
};

struct gw_client {
	struct gw_link link; /* gw->conns, later gw->grave */
	enum conn_kind kind;
	struct gw *gw;
	struct gw_listener *l;
	struct gw_link hs; /* gw->hs_wait while its handshake's first step waits */
	int fd;
	struct evloop_source src;
	uint32_t ev;
	struct sg_tls_term_conn *tls;
	int family;
	uint8_t ip[16];
	uint8_t skey[17];
	char ip_str[48];
	struct gw_buf in, out;
	enum cstate state;
	uint64_t deadline_ns;
	uint64_t last_io_ns;
	bool eof, dead, in_pump, has_x;
	bool hs_go;	  /* its handshake's first step has waited its turn (gw_hs_run) */
	bool rd;	  /* the socket may have bytes: poll said so and no read has drained it */
	bool clean_close; /* closing after a complete response */
	bool lingering;	  /* response sent, write side shut, draining what the client sends */
	uint32_t drained;
	uint32_t requests;
	/* HTTP/2: h2 on the connection; on a stream's virtual client (no fd, no socket of its
	 * own) the stream, and in/out carry HTTP/1.1 bytes made from and to its frames. */
	struct gw_h2 *h2;
	struct gw_h2_stream *h2s;
	struct gw_exchange x;
};

struct gw_upstream {
	struct gw_link link; /* gw->conns while idle in a pool, target->idle */
	enum conn_kind kind;
	struct gw_link pool;
	struct gw *gw;
	int fd;
	struct evloop_source src;
	uint32_t ev;
	struct gw_target *t;
	struct gw_rt *rt;
	struct gw_client *owner;
	struct gw_buf in, out;
	uint64_t deadline_ns;
	uint64_t pooled_ns; /* when it last went into its target's pool */
	bool connected, reused, eof;
	bool rd; /* as gw_client.rd */
};

/* ---- files ------------------------------------------------------------------------------ */

/* proxy.c: HTTP clients. */
void sg_http_accept(struct gw_listener *l);
void gw_conns_tick(struct gw *gw);
void gw_conns_close_all(struct gw *gw);
void gw_reap(struct gw *gw);
/* After each loop turn: first steps of TLS handshakes that waited, within the turn's budget.
 * True while some still wait (the next poll must not block). */
bool gw_hs_run(struct gw *gw);
void gw_client_pump(struct gw_client *c);
void gw_client_close(struct gw_client *c);
#define GW_CLIENT_OUT_CAP (64u * 1024)

/* h2.c: HTTP/2 to clients (RFC 9113) with nghttp2. */
#define GW_H2_PREFACE_LEN 24
/* 1: buf starts with the client connection preface, 0: not, -1: too short to say. */
int gw_h2_preface(const uint8_t *buf, size_t len);
/* Turns c (after ALPN "h2" or a prior-knowledge preface) into an HTTP/2 connection. */
int gw_h2_start(struct gw_client *c) SG_WUR;
/* The connection's pump: bytes in c->in to the session, streams, frames out. */
void gw_h2_pump(struct gw_client *c);
uint32_t gw_h2_events(struct gw_client *c);
/* c's streams are closed and the session freed (from gw_client_close). */
void gw_h2_free(struct gw_client *c);
/* A stream's virtual client: after its pump, and when it closes. */
void gw_h2_stream_pumped(struct gw_client *vc);
void gw_h2_stream_closed(struct gw_client *vc);
/* Response bytes of a stream's virtual client were taken (client_write for vc). */
bool gw_h2_stream_output(struct gw_client *vc);
bool gw_h2_idle(const struct gw_client *c);
/* The idle upstream connections of a target are closed (target or generation removed). */
void gw_target_drop_idle(struct gw_target *t);

/* lb.c: target choice, health. */
struct gw_target *gw_lb_pick(struct gw_res *r, uint64_t tried_mask, const char *sticky_id,
			     size_t sticky_len, uint64_t now_ns);
bool gw_target_usable(const struct gw_target *t, uint64_t now_ns);
void gw_target_passive(struct gw_target *t, bool ok, uint64_t now_ns);
void gw_health_tick(struct gw_rt *rt, uint64_t now_ns);
void gw_health_stop(struct gw_rt *rt);

/* policy.c: access checks and rate limits. */
enum gw_verdict {
	GW_V_PASS = 0,
	GW_V_DENY,	/* 403 */
	GW_V_AUTH,	/* 401: authentication required */
	GW_V_LIMITED,	/* 429 */
	GW_V_LOGIN,	/* auth login: no valid session; redirect to the provider */
	GW_V_UNAVAILABLE, /* auth login: the provider's keys are not known yet (503) */
};
struct gw_policy_in {
	int family;
	const uint8_t *addr;
	const struct sg_http_msg *req; /* NULL for tcp/udp */
	const char *path;
	size_t path_len;
};
struct gw_policy_out {
	uint32_t retry_after_s;
	bool authenticated;
	char user[64]; /* "key:<first 8 hex>" for an API key, the email or sub of a login */
	const char *reason;
	const struct sg_http_header *auth_header; /* the Authorization that authenticated */
};
enum gw_verdict gw_policy_check(struct gw *gw, struct gw_res *r, const struct gw_policy_in *in,
				struct gw_policy_out *out, uint64_t now_ns);
/* A login callback from this source may go on to the token endpoint (fixed per-source rate). */
bool gw_callback_allowed(struct gw *gw, struct gw_res *r, int family, const uint8_t *addr,
			 uint64_t now_ns, uint32_t *retry_s);
/* Source address key, with IPv4-mapped IPv6 folded to IPv4. */
void gw_src_key(uint8_t key[17], int family, const uint8_t *addr);
/* Connection count per source: false when the limit is reached. */
bool gw_src_conn_inc(struct gw *gw, const uint8_t key[17], uint32_t limit, uint64_t now_ns);
void gw_src_conn_dec(struct gw *gw, const uint8_t key[17]);
/* Token bucket step: true if a token was taken, else *retry_s is the wait. */
bool gw_bucket_take(struct gw_bucket *b, const struct gw_rate *rate, uint64_t now_ns,
		    uint32_t *retry_s);

/* oidc.c: OpenID Connect relying party for auth "login". */
struct gw_oidc;
struct sg_httpc_req;
struct gw_oidc_result {
	const char *error; /* NULL: logged in */
	const char *id_token;
	const char *return_to;
	char user[64];
	int64_t exp;
};
typedef void (*gw_oidc_done_fn)(void *ctx, const struct gw_oidc_result *r);
void gw_oidc_tick(struct gw_rt *rt, uint64_t now_ns);
void gw_oidc_free(struct gw_oidc *o);
bool gw_oidc_ready(const struct gw_res *r);
int gw_oidc_verify(struct gw_oidc *o, const char *tok, size_t len, const char *nonce, char *user,
		   size_t ulen, int64_t *exp_out, const char **why);
/* The redirect to the provider for a new login, and the login cookie to set with it. */
int gw_oidc_login(struct gw_res *r, const char *host, bool https, const char *return_to,
		  char *location, size_t loc_cap, char *cookie, size_t cookie_cap);
/* Starts the code exchange of a callback; done runs once unless gw_oidc_cancel. NULL with
 * *why when the callback is refused at once. */
struct sg_httpc_req *gw_oidc_callback(struct gw_res *r, const char *host, bool https,
				      const char *query, size_t ql, const char *cookie,
				      size_t cookie_len, gw_oidc_done_fn done, void *ctx,
				      const char **why);
void gw_oidc_cancel(struct sg_httpc_req *req);
/* Test and fuzz hook: a provider context with one P-384 key and no discovery. */
struct gw_oidc *gw_oidc_with_key(struct gw_res *r, const char *kid, const uint8_t x[48],
				 const uint8_t y[48]);

/* fwd.c: tcp and udp resources. */
int gw_fwd_open(struct gw *gw, struct gw_rt *rt, struct gw_rt *old, char *err, size_t errlen);
void gw_fwd_tick(struct gw *gw);
void gw_fwd_close_all(struct gw *gw);
void gw_fwd_release(struct gw_rt *rt); /* a generation's listening sockets */

/* metrics.c */
void gw_metrics_render(struct gw *gw, struct gw_buf *out);
void gw_observe(struct gw_res *r, int status, uint64_t dur_ns);
struct gw_access {
	const char *resource, *target, *user, *method, *host, *reason;
	const char *path;
	size_t path_len, method_len, host_len;
	char client[64];
	int status;
	uint64_t bytes_in, bytes_out, dur_ns;
	const char *proto;
};
void gw_access_log(struct gw *gw, const struct gw_access *a);

/* gateway.c */
void gw_sockaddr_str(const void *sa, char *out, size_t size); /* "ip:port" */
void gw_ip_str(int family, const uint8_t *addr, char *out, size_t size);

/* ---- managed by the server (managed.c, events.c) ----------------------------------------- */

/* Validates a configuration document and makes it the running one (kept as last-known-good);
 * 0, or an error with err (the running one is kept). gateway.c. */
int gw_apply_text(struct gw *gw, const char *text, size_t len, char *err, size_t errlen);
int gw_managed_start(struct gw *gw, char *err, size_t errlen);
void gw_managed_tick(struct gw *gw, uint64_t now_ns);
void gw_managed_free(struct gw *gw);
/* An event for the server's audit chain (a denial, a login, a refused credential); nothing
 * when the gateway is not managed. */
void gw_event(struct gw *gw, const char *type, const struct gw_res *r, const char *client,
	      const char *user, const char *method, const char *host, const char *path, int status,
	      const char *reason);
void gw_events_tick(struct gw *gw, uint64_t now_ns);
int gw_events_new(struct gw *gw);
void gw_events_free(struct gw *gw);

#endif
