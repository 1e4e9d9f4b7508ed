/* Gateway internals shared by its files (not an interface for other components). */
#ifndef SG_GATEWAY_GW_INT_H
#define SG_GATEWAY_GW_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gateway/conf.h"
#include "gateway/gateway.h"
#include "gateway/http1.h"
#include "net/evloop.h"
#include "net/tls_term.h"
#include "wg/wg.h"

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
	struct gw_http_msg msg; /* scratch for the head being handled (one thread) */
	struct gw_link flows;  /* tcp flows */
	uint32_t n_clients;
	struct gw_src_entry *src;
	FILE *access_log;
	struct sg_tls_term *tls;
	bool stop;
	/* Counters. */
	uint64_t reloads, rejected, accepted, refused_conns;
	uint64_t bad_requests;
};

/* ---- files ------------------------------------------------------------------------------ */

/* proxy.c: HTTP clients. */
void gw_http_accept(struct gw_listener *l);
void gw_conns_tick(struct gw *gw);
void gw_conns_close_all(struct gw *gw);
void gw_reap(struct gw *gw);
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
};
struct gw_policy_in {
	int family;
	const uint8_t *addr;
	const struct gw_http_msg *req; /* NULL for tcp/udp */
	const char *path;
	size_t path_len;
};
struct gw_policy_out {
	uint32_t retry_after_s;
	bool authenticated;
	char user[24]; /* "key:<first 8 hex>" for an API key */
	const char *reason;
	const struct gw_http_header *auth_header; /* the Authorization that authenticated */
};
enum gw_verdict gw_policy_check(struct gw *gw, struct gw_res *r, const struct gw_policy_in *in,
				struct gw_policy_out *out, uint64_t now_ns);
/* Source address key, with IPv4-mapped IPv6 folded to IPv4. */
void gw_src_key(uint8_t key[17], int family, const uint8_t *addr);
/* Connection count per source: false when the limit is reached. */
bool gw_src_conn_inc(struct gw *gw, const uint8_t key[17], uint32_t limit, uint64_t now_ns);
void gw_src_conn_dec(struct gw *gw, const uint8_t key[17]);
/* Token bucket step: true if a token was taken, else *retry_s is the wait. */
bool gw_bucket_take(struct gw_bucket *b, const struct gw_rate *rate, uint64_t now_ns,
		    uint32_t *retry_s);

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

#endif
