/* IKEv2 state machines (ike.h): IKE SAs, their exchanges and Child SAs. Section numbers are
 * RFC 7296's unless another RFC is named.
 *
 * NAT traversal: the data path carries ESP in UDP (RFC 3948) in every case, so the core always
 * pretends to be behind a NAT (2.23 allows a host to do so; strongSwan's encap=yes does the same):
 * its NAT_DETECTION_SOURCE_IP never matches, both sides move to port 4500 after IKE_SA_INIT, and
 * the peer address follows the source of authenticated messages.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <secureguard/sg_errors.h>

#include "crypto/ipsec.h"
#include "crypto/pki.h"
#include "ike/ike.h"
#include "ike/keys.h"

#define SCRATCH		     16384
#define HALF_OPEN_TIMEOUT_NS (30ull * 1000000000ull)
#define NONCE_LEN	     32
/* RFC 7383: the largest fragment message we send, charon's default fragment_size (a 1280-byte
 * IP datagram) less the IPv6 and UDP headers and the non-ESP marker; and the most fragments of
 * one message, and the most bytes reassembled, we accept. */
#define FRAG_MSG   IKE_FRAG_MAX_MSG
#define FRAG_MAX   32
#define FRAG_BLOB  ((size_t)FRAG_MAX * (FRAG_MSG + 4))
#define FRAG_BYTES 65535u

/* One message being reassembled from authenticated fragments (RFC 7383 2.6). */
struct frag_rx {
	bool active;
	uint32_t mid;
	uint16_t total, have;
	uint8_t first;
	size_t bytes;
	uint8_t *part[FRAG_MAX];
	size_t len[FRAG_MAX];
};

enum req_kind {
	REQ_NONE,
	REQ_INIT,
	REQ_AUTH,
	REQ_DELETE_IKE,
	REQ_DPD,
	REQ_REKEY_CHILD,
	REQ_REKEY_IKE,
	REQ_DELETE_CHILD,
	REQ_CREATE_CHILD,
};

struct ike_child {
	struct ike_child *next;
	/* Its configuration as it was made (the live one of the same name is used while the
	 * peer has it: see child_cfg_of). */
	struct ike_child_cfg cfg;
	bool delete_wanted; /* ike_terminate_child: a DELETE waits for the request window */
	uint32_t spi_in, spi_out;
	struct ike_chosen prop;
	struct ike_child_keys keys;
	struct ike_ts_payload local_ts, remote_ts;
	bool transport;
	uint64_t rekey_at, expire_at; /* 0 = none */
	bool replaced;		      /* a rekey made its successor: it waits for its DELETE */
	bool we_made; /* we initiated the exchange that created it (2.17: key order) */
	/* A rekey of this child that the peer started and we answered (2.8.1): the child it
	 * made and the lowest nonce of that exchange. */
	uint32_t peer_new_spi;
	uint8_t peer_nmin[IKE_NONCE_MAX];
	size_t peer_nmin_len;
};

struct ike_peer {
	struct ike_peer *next;
	struct ike_peer_cfg cfg;
};

struct ike_sa {
	struct ike_sa *next;
	struct ike_ctx *ctx;
	struct ike_peer *peer; /* NULL for a responder until IKE_AUTH names the initiator */
	enum ike_sa_state state;
	bool initiator;
	uint8_t spi_i[8], spi_r[8];
	struct ike_endpoint remote;
	uint16_t local_port;
	struct ike_chosen prop;
	struct sg_ke *ke;
	uint16_t ke_group;
	uint8_t ni[IKE_NONCE_MAX], nr[IKE_NONCE_MAX];
	size_t ni_len, nr_len;
	uint8_t *msg1, *msg2; /* IKE_SA_INIT request and response, signed by AUTH (2.15) */
	size_t msg1_len, msg2_len;
	uint8_t cookie[64];
	size_t cookie_len;
	unsigned sig_hashes; /* the peer's SIGNATURE_HASH_ALGORITHMS (RFC 7427 4), bit per id */
	struct ike_sa_keys keys;
	bool keyed;
	uint32_t next_mid; /* our next request */
	uint32_t peer_mid; /* the peer's next request */
	/* The request in flight (window of one). */
	uint8_t *req;
	size_t req_len;
	enum req_kind req_kind;
	unsigned retx;
	uint64_t retx_at, req_deadline;
	/* The last response, for a retransmitted request. */
	uint8_t *resp;
	size_t resp_len;
	uint32_t resp_mid;
	bool have_resp;
	uint32_t child_spi; /* our inbound SPI offered in IKE_AUTH */
	struct ike_child *children;
	uint64_t last_rx, expire_at;
	uint64_t established_at;
	uint32_t unique_id;
	uint64_t rekey_at; /* IKE SA rekey, 0 = none */
	bool rekey_wanted; /* a rekey of the IKE SA (ike) or children waits for the window */
	/* Our rekey in flight: of a child (old SPI, new SPI) or of the IKE SA (new SPI). */
	uint32_t rk_old, rk_spi;
	uint8_t rk_ike_spi[8];
	uint8_t rk_nonce[NONCE_LEN];
	struct sg_ke *rk_ke;
	/* A rekey of this IKE SA that the peer started and we answered (2.8.2). */
	uint8_t peer_new_spi_i[8], peer_new_spi_r[8];
	bool peer_rekeyed;
	uint8_t peer_nmin[IKE_NONCE_MAX];
	size_t peer_nmin_len;
	bool replaced;	  /* the IKE SA was rekeyed: it waits for its DELETE */
	uint32_t del_spi; /* REQ_DELETE_CHILD: our inbound SPI being deleted */
	/* RFC 7383: both sides sent IKEV2_FRAGMENTATION_SUPPORTED; the stored request and
	 * response are then lists of fragments ([4-byte length][message]...) when packed. */
	bool frag;    /* we may send fragments (both announced; ours not fragmentation=accept) */
	bool frag_ok; /* we accept fragments (both announced support) */
	bool req_packed, resp_packed;
	struct frag_rx rx_frag[2]; /* [0] requests from the peer, [1] responses */
	struct ike_identity their_id; /* as authenticated in IKE_AUTH (type 0 before) */
	/* Children: the one an initiator creates in IKE_AUTH, those waiting to be created with
	 * CREATE_CHILD_SA, and the one being created (REQ_CREATE_CHILD). */
	char auth_child[64];
	char want[IKE_MAX_CHILD_CFG][64];
	unsigned nwant;
	char mk_child[64];
};

struct ike_ctx {
	struct ike_io io;
	struct ike_peer *peers;
	struct ike_sa *sas;
	unsigned half_open;
	uint32_t next_unique;
	bool force_cookies;
	uint8_t cookie_secret[32];
	struct ike_stats stats;
	uint8_t scratch[SCRATCH];
	/* The fragments seal() made of the message in scratch (frag_len 0: none). */
	uint8_t frag[FRAG_BLOB];
	size_t frag_len;
	size_t frag_msg; /* ike_set_fragment_size */
};

static const uint8_t zero_spi[8];

/* ---- small helpers ---------------------------------------------------------------------- */

static void event_full(struct ike_ctx *c, struct ike_event *ev)
{
	if (!c->io.event)
		return;
	if (!ev->peer && ev->sa && ev->sa->peer)
		ev->peer = ev->sa->peer->cfg.name;
	c->io.event(c->io.ctx, ev);
}

static void event(struct ike_ctx *c, enum ike_event_type t, struct ike_sa *sa, const char *why)
{
	struct ike_event ev = {.type = t, .sa = sa, .reason = why};
	event_full(c, &ev);
}

static void event_child(struct ike_ctx *c, enum ike_event_type t, struct ike_sa *sa,
			const char *child, const char *why)
{
	struct ike_event ev = {.type = t, .sa = sa, .reason = why, .child = child};
	event_full(c, &ev);
}

static void reject(struct ike_ctx *c, struct ike_sa *sa, const char *why)
{
	event(c, IKE_EV_REJECTED, sa, why);
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
	uint8_t *d = malloc(n ? n : 1);
	if (d && n)
		memcpy(d, p, n);
	return d;
}

static void frag_reset(struct frag_rx *r)
{
	for (unsigned i = 0; i < FRAG_MAX; i++) {
		if (r->part[i]) {
			sg_memzero(r->part[i], r->len[i]);
			free(r->part[i]);
		}
	}
	memset(r, 0, sizeof(*r));
}

static void free_wiped(uint8_t *p, size_t n)
{
	if (p) {
		sg_memzero(p, n);
		free(p);
	}
}

static uint32_t new_child_spi(void)
{
	/* SPIs 0..255 are reserved (RFC 4303 2.1). */
	uint32_t s;
	do
		s = sg_random_u32();
	while (s < 256);
	return s;
}

static bool is_half_open(const struct ike_sa *sa)
{
	return !sa->initiator && sa->state == IKE_SA_CONNECTING;
}

static void set_state(struct ike_sa *sa, enum ike_sa_state st)
{
	if (is_half_open(sa))
		sa->ctx->half_open--;
	sa->state = st;
	if (is_half_open(sa))
		sa->ctx->half_open++;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
	p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- SA lifecycle ------------------------------------------------------------------------ */

static void child_free(struct ike_sa *sa, struct ike_child *ch, bool notify)
{
	if (notify && sa->ctx->io.child_down) {
		sa->ctx->io.child_down(sa->ctx->io.ctx, sa, ch->spi_in, ch->spi_out);
		event_child(sa->ctx, IKE_EV_CHILD_DOWN, sa, ch->cfg.name, NULL);
	}
	ike_child_keys_wipe(&ch->keys);
	sg_memzero(ch, sizeof(*ch));
	free(ch);
}

static void sa_unlink_free(struct ike_sa *sa, bool notify, const char *why)
{
	struct ike_ctx *c = sa->ctx;
	for (struct ike_sa **pp = &c->sas; *pp; pp = &(*pp)->next)
		if (*pp == sa) {
			*pp = sa->next;
			break;
		}
	if (is_half_open(sa))
		c->half_open--;
	/* Children asked for and not made: say so (an initiate waits for them). */
	if (notify && sa->peer) {
		const char *cwhy = why ? why : "the IKE SA went away";
		if (sa->initiator && sa->state < IKE_SA_ESTABLISHED && sa->auth_child[0])
			event_child(c, IKE_EV_CHILD_FAILED, sa, sa->auth_child, cwhy);
		if (sa->req_kind == REQ_CREATE_CHILD && sa->mk_child[0])
			event_child(c, IKE_EV_CHILD_FAILED, sa, sa->mk_child, cwhy);
		for (unsigned i = 0; i < sa->nwant; i++)
			event_child(c, IKE_EV_CHILD_FAILED, sa, sa->want[i], cwhy);
	}
	while (sa->children) {
		struct ike_child *ch = sa->children;
		sa->children = ch->next;
		child_free(sa, ch, notify);
	}
	if (notify && sa->replaced) {
		/* Rekeyed: IKE_EV_IKE_REKEYED was reported for its successor. */
	} else if (notify && sa->state >= IKE_SA_ESTABLISHED) {
		c->stats.ike_down++;
		event(c, IKE_EV_IKE_DOWN, sa, why);
	} else if (notify && why) {
		event(c, IKE_EV_IKE_DOWN, sa, why);
	}
	sg_ke_free(sa->ke);
	sg_ke_free(sa->rk_ke);
	ike_sa_keys_wipe(&sa->keys);
	free_wiped(sa->msg1, sa->msg1_len);
	free_wiped(sa->msg2, sa->msg2_len);
	free_wiped(sa->req, sa->req_len);
	free_wiped(sa->resp, sa->resp_len);
	frag_reset(&sa->rx_frag[0]);
	frag_reset(&sa->rx_frag[1]);
	sg_memzero(sa, sizeof(*sa));
	free(sa);
}

static struct ike_sa *sa_new(struct ike_ctx *c, bool initiator)
{
	struct ike_sa *sa = calloc(1, sizeof(*sa));
	if (!sa)
		return NULL;
	sa->ctx = c;
	sa->initiator = initiator;
	sa->unique_id = ++c->next_unique;
	sa->state = IKE_SA_CONNECTING;
	sa->local_port = IKE_PORT;
	if (!initiator)
		c->half_open++;
	sa->next = c->sas;
	c->sas = sa;
	return sa;
}

static struct ike_sa *find_sa(struct ike_ctx *c, const uint8_t spi_i[8], const uint8_t spi_r[8],
			      bool any_r)
{
	for (struct ike_sa *sa = c->sas; sa; sa = sa->next)
		if (!memcmp(sa->spi_i, spi_i, 8) && (any_r || !memcmp(sa->spi_r, spi_r, 8)))
			return sa;
	return NULL;
}

static struct ike_peer *find_peer(struct ike_ctx *c, const char *name)
{
	for (struct ike_peer *p = c->peers; p; p = p->next)
		if (!strcmp(p->cfg.name, name))
			return p;
	return NULL;
}

static const struct ike_child_cfg *find_child_cfg(const struct ike_peer_cfg *cfg, const char *name)
{
	for (unsigned i = 0; i < cfg->nchildren; i++)
		if (!strcmp(cfg->children[i].name, name))
			return &cfg->children[i];
	return NULL;
}

/* A Child SA's configuration: the peer's current one of its name (a reload applies from the
 * next rekey), else the one it was made with. */
static const struct ike_child_cfg *child_cfg_of(const struct ike_sa *sa, const struct ike_child *ch)
{
	const struct ike_child_cfg *cc = sa->peer ? find_child_cfg(&sa->peer->cfg, ch->cfg.name)
						  : NULL;
	return cc ? cc : &ch->cfg;
}

/* ---- sending ------------------------------------------------------------------------------- */

static void send_to(struct ike_sa *sa, const uint8_t *buf, size_t len)
{
	sa->ctx->io.send(sa->ctx->io.ctx, sa->local_port, &sa->remote, buf, len);
}

/* A stored request or response: one message, or its fragments when packed. */
static void send_stored(struct ike_sa *sa, const uint8_t *buf, size_t len, bool packed)
{
	if (!packed) {
		send_to(sa, buf, len);
		return;
	}
	for (size_t at = 0; at + 4 <= len;) {
		size_t n = (size_t)buf[at] << 24 | (size_t)buf[at + 1] << 16 |
			   (size_t)buf[at + 2] << 8 | buf[at + 3];
		if (n > len - at - 4)
			return;
		send_to(sa, buf + at + 4, n);
		at += 4 + n;
	}
}

/* Seals the message in scratch: as one SK payload, or, when both sides support RFC 7383
 * and it would not fit in FRAG_MSG bytes, as fragments into ctx->frag (which the next
 * send_request or send_response takes). Only a message whose first payload is SK can be
 * fragmented (2.5.3); nothing before SK is sent after IKE_SA_INIT here. */
static int seal(struct ike_sa *sa, struct ike_buf *b)
{
	struct ike_ctx *c = sa->ctx;
	c->frag_len = 0;
	if (!sa->frag || b->err || b->sk != IKE_HDR_LEN ||
	    b->len + ike_sk_overhead(&sa->keys.out) <= c->frag_msg)
		return ike_seal_sk(b, &sa->keys.out);
	unsigned n;
	int err = ike_fragment_sk(b, &sa->keys.out, c->frag_msg, FRAG_MAX, c->frag, sizeof(c->frag),
				  &c->frag_len, &n);
	if (err)
		c->frag_len = 0;
	else
		c->stats.fragmented++;
	return err;
}

static void begin_msg(struct ike_sa *sa, struct ike_buf *b, uint8_t exchange, bool response,
		      uint32_t mid)
{
	struct ike_header h = {.exchange = exchange,
			       .flags = (uint8_t)((sa->initiator ? IKE_FLAG_INITIATOR : 0) |
						  (response ? IKE_FLAG_RESPONSE : 0)),
			       .msg_id = mid};
	memcpy(h.spi_i, sa->spi_i, 8);
	memcpy(h.spi_r, sa->spi_r, 8);
	ike_buf_init(b, sa->ctx->scratch, sizeof(sa->ctx->scratch));
	ike_put_header(b, &h);
}

/* Sends a request built in scratch and keeps it for retransmission. */
static int send_request(struct ike_sa *sa, struct ike_buf *b, enum req_kind kind, uint64_t now)
{
	struct ike_ctx *c = sa->ctx;
	free_wiped(sa->req, sa->req_len);
	sa->req_packed = c->frag_len != 0;
	sa->req_len = c->frag_len ? c->frag_len : b->len;
	sa->req = dup_bytes(c->frag_len ? c->frag : b->p, sa->req_len);
	c->frag_len = 0;
	if (!sa->req) {
		sa->req_len = 0;
		return SG_ENOMEM;
	}
	sa->req_kind = kind;
	sa->retx = 0;
	sa->retx_at = now + IKE_RETX_BASE_NS;
	uint64_t total = 0, t = IKE_RETX_BASE_NS;
	for (unsigned i = 0; i <= IKE_RETX_TRIES; i++, t = t * 9 / 5)
		total += t;
	sa->req_deadline = now + total;
	if (kind == REQ_DPD && sa->peer && sa->peer->cfg.dpd_timeout_ns)
		sa->req_deadline = now + sa->peer->cfg.dpd_timeout_ns;
	send_stored(sa, sa->req, sa->req_len, sa->req_packed);
	return 0;
}

static void request_done(struct ike_sa *sa)
{
	free_wiped(sa->req, sa->req_len);
	sa->req = NULL;
	sa->req_len = 0;
	sa->req_kind = REQ_NONE;
}

static void send_response(struct ike_sa *sa, struct ike_buf *b, uint32_t mid)
{
	struct ike_ctx *c = sa->ctx;
	free_wiped(sa->resp, sa->resp_len);
	sa->resp_packed = c->frag_len != 0;
	size_t len = c->frag_len ? c->frag_len : b->len;
	sa->resp = dup_bytes(c->frag_len ? c->frag : b->p, len);
	c->frag_len = 0;
	sa->resp_len = sa->resp ? len : 0;
	sa->resp_mid = mid;
	sa->have_resp = sa->resp != NULL;
	if (sa->resp)
		send_stored(sa, sa->resp, sa->resp_len, sa->resp_packed);
	else
		send_to(sa, b->p, b->len);
}

/* An unencrypted reply to an IKE_SA_INIT request that creates no state (INVALID_KE, COOKIE,
 * NO_PROPOSAL_CHOSEN): 2.6, 1.3. */
static void reply_notify_stateless(struct ike_ctx *c, uint16_t port, const struct ike_endpoint *to,
				   const struct ike_header *req, uint16_t type, const uint8_t *data,
				   size_t len)
{
	struct ike_buf b;
	struct ike_header h = {.exchange = IKE_SA_INIT, .flags = IKE_FLAG_RESPONSE, .msg_id = 0};
	memcpy(h.spi_i, req->spi_i, 8);
	ike_buf_init(&b, c->scratch, sizeof(c->scratch));
	ike_put_header(&b, &h);
	ike_put_notify(&b, 0, NULL, 0, type, data, len);
	if (ike_finish(&b) == 0)
		c->io.send(c->io.ctx, port, to, b.p, b.len);
}

/* NAT detection data (2.23): SHA-1(SPIi | SPIr | IP | port). The source hash is of a random
 * address: see the comment at the top. */
static void nat_d(uint8_t out[20], const uint8_t spi_i[8], const uint8_t spi_r[8],
		  const struct ike_endpoint *ep, bool fake)
{
	uint8_t port[2] = {(uint8_t)(ep->port >> 8), (uint8_t)ep->port};
	uint8_t rnd[16];
	size_t alen = ep->family == AF_INET ? 4 : 16;
	if (fake && !sg_random_bytes(rnd, sizeof(rnd)))
		memset(rnd, 0xa5, sizeof(rnd));
	struct sg_iov iov[4] = {{spi_i, 8}, {spi_r, 8}, {fake ? rnd : ep->addr, alen}, {port, 2}};
	if (!sg_sha1(out, iov, 4))
		memset(out, 0, 20);
}

/* ---- traffic selectors (2.9) ------------------------------------------------------------- */

static void ts_from_cfg(const struct ike_ts_cfg *cfg, unsigned n, struct ike_ts_payload *out)
{
	out->n = 0;
	for (unsigned i = 0; i < n && out->n < IKE_MAX_TS; i++) {
		struct ike_ts *t = &out->ts[out->n++];
		memset(t, 0, sizeof(*t));
		t->type = cfg[i].type;
		t->proto = cfg[i].proto;
		t->port_start = cfg[i].port_start;
		t->port_end = cfg[i].port_end;
		memcpy(t->start, cfg[i].start, 16);
		memcpy(t->end, cfg[i].end, 16);
	}
}

/* The intersection of the peer's selectors with ours: each pair that overlaps in address,
 * protocol and ports gives one narrowed selector. */
static void ts_narrow(const struct ike_ts_payload *theirs, const struct ike_ts_cfg *ours,
		      unsigned nours, struct ike_ts_payload *out)
{
	out->n = 0;
	for (unsigned i = 0; i < theirs->n; i++)
		for (unsigned j = 0; j < nours && out->n < IKE_MAX_TS; j++) {
			const struct ike_ts *a = &theirs->ts[i];
			const struct ike_ts_cfg *b = &ours[j];
			if (a->type != b->type)
				continue;
			size_t al = a->type == IKE_TS_IPV4_ADDR_RANGE ? 4 : 16;
			if (a->proto && b->proto && a->proto != b->proto)
				continue;
			struct ike_ts r;
			memset(&r, 0, sizeof(r));
			r.type = a->type;
			r.proto = a->proto ? a->proto : b->proto;
			r.port_start = SG_MAX(a->port_start, b->port_start);
			r.port_end = SG_MIN(a->port_end, b->port_end);
			memcpy(r.start, memcmp(a->start, b->start, al) > 0 ? a->start : b->start,
			       al);
			memcpy(r.end, memcmp(a->end, b->end, al) < 0 ? a->end : b->end, al);
			if (r.port_start > r.port_end || memcmp(r.start, r.end, al) > 0)
				continue;
			out->ts[out->n++] = r;
		}
}

/* True if every selector of `sub` lies within one of `sup` (the responder may only narrow). */
static bool ts_within(const struct ike_ts_payload *sub, const struct ike_ts_payload *sup)
{
	for (unsigned i = 0; i < sub->n; i++) {
		const struct ike_ts *a = &sub->ts[i];
		size_t al = a->type == IKE_TS_IPV4_ADDR_RANGE ? 4 : 16;
		bool ok = false;
		for (unsigned j = 0; j < sup->n && !ok; j++) {
			const struct ike_ts *b = &sup->ts[j];
			ok = a->type == b->type && (!b->proto || a->proto == b->proto) &&
			     a->port_start >= b->port_start && a->port_end <= b->port_end &&
			     memcmp(a->start, b->start, al) >= 0 && memcmp(a->end, b->end, al) <= 0;
		}
		if (!ok)
			return false;
	}
	return sub->n > 0;
}

static unsigned props_no_ke(const struct ike_child_cfg *cc, struct ike_prop_cfg *out);
static uint16_t child_pfs_group(const struct ike_child_cfg *cc);

static bool ts_equal(const struct ike_ts *a, const struct ike_ts_cfg *b)
{
	size_t al = a->type == IKE_TS_IPV4_ADDR_RANGE ? 4 : 16;
	return a->type == b->type && a->proto == b->proto && a->port_start == b->port_start &&
	       a->port_end == b->port_end && !memcmp(a->start, b->start, al) &&
	       !memcmp(a->end, b->end, al);
}

/* charon's rating of configured selectors against proposed ones (peer_cfg.c get_ts_match): each
 * proposed selector, the first weighing the most, adds 5 for a configured one equal to it and
 * 1 for one that overlaps it. 0: nothing in common. */
static unsigned ts_rate(const struct ike_ts_cfg *cfg, unsigned ncfg, const struct ike_ts_payload *sup)
{
	unsigned match = 0, round = sup->n;
	for (unsigned i = 0; i < sup->n; i++, round--)
		for (unsigned j = 0; j < ncfg; j++) {
			struct ike_ts_payload one = {.n = 1}, out;
			one.ts[0] = sup->ts[i];
			if (ts_equal(&sup->ts[i], &cfg[j])) {
				match += round * 5;
				continue;
			}
			ts_narrow(&one, &cfg[j], 1, &out);
			if (out.n)
				match += round;
		}
	return match;
}

/* The child config for a Child SA the peer proposes (IKE_AUTH, or CREATE_CHILD_SA without
 * REKEY_SA): the best rated on both sides (TSi against our remote selectors, TSr against our
 * local ones) whose proposals accept the offer; ties go to the first configured. In IKE_AUTH
 * (no_ke) key exchange transforms are left out. On success the choice and the narrowed
 * selectors are in ch; else NULL with the notify to answer and why. */
static const struct ike_child_cfg *select_child(const struct ike_peer_cfg *cfg,
						const struct ike_ts_payload *tsi,
						const struct ike_ts_payload *tsr,
						const struct ike_sa_payload *sap, uint16_t ke, bool no_ke,
						struct ike_child *ch, uint16_t *err, const char **why)
{
	unsigned rate[IKE_MAX_CHILD_CFG];
	bool tried[IKE_MAX_CHILD_CFG] = {0};
	for (unsigned i = 0; i < cfg->nchildren; i++) {
		const struct ike_child_cfg *cc = &cfg->children[i];
		unsigned r = ts_rate(cc->remote_ts, cc->nremote_ts, tsi),
			 l = ts_rate(cc->local_ts, cc->nlocal_ts, tsr);
		rate[i] = r && l ? r + l : 0;
	}
	*err = IKE_N_TS_UNACCEPTABLE;
	*why = "traffic selectors do not overlap the configured ones";
	for (;;) {
		int best = -1;
		for (unsigned i = 0; i < cfg->nchildren; i++)
			if (rate[i] && !tried[i] && (best < 0 || rate[i] > rate[best]))
				best = (int)i;
		if (best < 0)
			return NULL;
		tried[best] = true;
		const struct ike_child_cfg *cc = &cfg->children[best];
		struct ike_prop_cfg noke[IKE_PROP_MAX];
		const char *w = NULL;
		int rc = no_ke ? ike_prop_choose(noke, props_no_ke(cc, noke), sap, 0, false,
						 &ch->prop, &w)
			       : ike_prop_choose(cc->props, cc->nprops, sap, ke,
						 child_pfs_group(cc) != 0, &ch->prop, &w);
		if (rc || ch->prop.spi_len != 4) {
			*err = IKE_N_NO_PROPOSAL_CHOSEN;
			*why = w ? w : "no acceptable ESP proposal";
			continue;
		}
		/* TSi are the initiator's side: our remote; TSr ours. */
		ts_narrow(tsi, cc->remote_ts, cc->nremote_ts, &ch->remote_ts);
		ts_narrow(tsr, cc->local_ts, cc->nlocal_ts, &ch->local_ts);
		if (ch->remote_ts.n && ch->local_ts.n)
			return cc;
	}
}

/* ---- AUTH (2.15) --------------------------------------------------------------------------- */

/* AUTH = prf(prf(PSK, "Key Pad for IKEv2"), <SignedOctets>), SignedOctets = RealMessage |
 * Nonce of the other side | prf(SK_p, ID payload body). */
static bool psk_auth(const struct ike_sa *sa, bool of_initiator, const uint8_t *psk, size_t psk_len,
		     const uint8_t *id_body, size_t id_len, uint8_t *out)
{
	static const char pad[] = "Key Pad for IKEv2";
	uint16_t prf = sa->keys.prf;
	size_t pl = sa->keys.prf_len;
	uint8_t key[SG_PRF_MAX_LEN], maced[SG_PRF_MAX_LEN];
	struct sg_iov p = {pad, sizeof(pad) - 1}, id = {id_body, id_len};
	bool ok = sg_prf(prf, key, psk, psk_len, &p, 1) &&
		  sg_prf(prf, maced, of_initiator ? sa->keys.sk_pi : sa->keys.sk_pr, pl, &id, 1);
	if (ok) {
		struct sg_iov so[3] = {
		    {of_initiator ? sa->msg1 : sa->msg2,
		     of_initiator ? sa->msg1_len : sa->msg2_len},
		    {of_initiator ? sa->nr : sa->ni, of_initiator ? sa->nr_len : sa->ni_len},
		    {maced, pl}};
		ok = sg_prf(prf, out, key, pl, so, 3);
	}
	sg_memzero(key, sizeof(key));
	sg_memzero(maced, sizeof(maced));
	return ok;
}

/* ---- certificates and signatures (RFC 7427) ------------------------------------------------- */

/* Our identity: the configured one, or the certificate's subject DN (type IKE_ID_ANY). */
static void my_id(const struct ike_peer_cfg *cfg, uint8_t *type, const uint8_t **data, size_t *len)
{
	/* A DN the certificate holds goes out as the certificate's own subject, byte for byte:
	 * the peer then finds exactly the identity its check of the certificate sees. */
	if (cfg->cert && (cfg->local_id.type == IKE_ID_ANY ||
			  (cfg->local_id.type == IKE_ID_DER_ASN1_DN &&
			   sg_cert_has_id(cfg->cert, IKE_ID_DER_ASN1_DN, cfg->local_id.data,
					  cfg->local_id.len)))) {
		*type = IKE_ID_DER_ASN1_DN;
		sg_cert_subject(cfg->cert, data, len);
		return;
	}
	*type = cfg->local_id.type;
	*data = cfg->local_id.data;
	*len = cfg->local_id.len;
}

static bool my_id_body(const struct ike_peer_cfg *cfg, uint8_t *out, size_t cap, size_t *len)
{
	uint8_t t;
	const uint8_t *d;
	size_t n;
	my_id(cfg, &t, &d, &n);
	if (4 + n > cap)
		return false;
	out[0] = t;
	out[1] = out[2] = out[3] = 0;
	memcpy(out + 4, d, n);
	*len = 4 + n;
	return true;
}

/* 2.15: RealMessage | Nonce of the other side | prf(SK_p, ID payload body). */
static uint8_t *signed_octets(const struct ike_sa *sa, bool of_initiator, const uint8_t *id_body,
			      size_t id_len, size_t *len)
{
	const uint8_t *msg = of_initiator ? sa->msg1 : sa->msg2;
	size_t ml = of_initiator ? sa->msg1_len : sa->msg2_len;
	const uint8_t *n = of_initiator ? sa->nr : sa->ni;
	size_t nl = of_initiator ? sa->nr_len : sa->ni_len;
	size_t pl = sa->keys.prf_len;
	uint8_t *o = malloc(ml + nl + pl);
	struct sg_iov id = {id_body, id_len};
	if (!o)
		return NULL;
	memcpy(o, msg, ml);
	memcpy(o + ml, n, nl);
	if (!sg_prf(sa->keys.prf, o + ml + nl, of_initiator ? sa->keys.sk_pi : sa->keys.sk_pr, pl,
		    &id, 1)) {
		free(o);
		return NULL;
	}
	*len = ml + nl + pl;
	return o;
}

/* Our CERT and AUTH payloads (after the ID payload). */
static int put_my_auth(struct ike_sa *sa, struct ike_buf *b, const struct ike_peer_cfg *cfg,
		       bool of_initiator, const uint8_t *idb, size_t idl)
{
	if (cfg->local_auth != IKE_AUTHC_PUBKEY) {
		uint8_t auth[SG_PRF_MAX_LEN];
		if (!psk_auth(sa, of_initiator, cfg->psk, cfg->psk_len, idb, idl, auth))
			return SG_ECRYPTO;
		ike_put_auth(b, IKE_AUTH_PSK, auth, sa->keys.prf_len);
		sg_memzero(auth, sizeof(auth));
		return 0;
	}
	if (!cfg->cert || !cfg->key)
		return SG_ENOKEY;
	/* RFC 7427 4: a hash the peer announced, ours by preference. */
	unsigned h = sg_privkey_hash(cfg->key);
	if (!(sa->sig_hashes & (1u << h)))
		for (h = 4; h >= 2 && !(sa->sig_hashes & (1u << h)); h--)
			;
	if (h < 2)
		return SG_EUNSUPPORTED; /* the peer takes no RFC 7427 signature */
	const uint8_t *der, *algid;
	size_t dl, al, ol, sl = SG_SIG_MAX;
	uint8_t data[1 + SG_SIG_ALGID_MAX + SG_SIG_MAX];
	sg_cert_der(cfg->cert, &der, &dl);
	ike_put_cert(b, IKE_PL_CERT, 4, der, dl);
	uint8_t *oct = signed_octets(sa, of_initiator, idb, idl, &ol);
	if (!oct)
		return SG_ENOMEM;
	int err = sg_sig_create(cfg->key, h, cfg->sign_pss, oct, ol, &algid, &al,
				data + 1 + SG_SIG_ALGID_MAX, &sl);
	free(oct);
	if (err || al > SG_SIG_ALGID_MAX)
		return err ? err : SG_ECRYPTO;
	/* 3.8 / RFC 7427 3: length of the AlgorithmIdentifier, itself, the signature. */
	data[0] = (uint8_t)al;
	memcpy(data + 1, algid, al);
	memmove(data + 1 + al, data + 1 + SG_SIG_ALGID_MAX, sl);
	ike_put_auth(b, IKE_AUTH_DIGITAL_SIGNATURE, data, 1 + al + sl);
	return 0;
}

/* CERTREQ naming the CAs of every peer that wants certificates (3.7). */
static void put_certreq(struct ike_buf *b, struct ike_ctx *c, const struct ike_peer_cfg *only)
{
	uint8_t hashes[IKE_MAX_CAS * 4 * 20];
	size_t n = 0;
	for (struct ike_peer *p = c->peers; p; p = p->next) {
		const struct ike_peer_cfg *cfg = only ? only : &p->cfg;
		if (cfg->remote_auth == IKE_AUTHC_PUBKEY)
			for (unsigned i = 0; i < cfg->ncas && n + 20 <= sizeof(hashes); i++)
				if (sg_cert_spki_sha1(cfg->cas[i], hashes + n))
					n += 20;
		if (only)
			break;
	}
	if (n)
		ike_put_cert(b, IKE_PL_CERTREQ, 4, hashes, n);
}

static void put_sig_hashes(struct ike_buf *b)
{
	static const uint8_t h[] = {0, 2, 0, 3, 0, 4}; /* SHA-256, SHA-384, SHA-512 */
	ike_put_notify(b, 0, NULL, 0, IKE_N_SIGNATURE_HASH_ALGORITHMS, h, sizeof(h));
}

static void get_sig_hashes(struct ike_sa *sa, const struct ike_msg *m)
{
	const struct ike_payload *p = ike_find_notify(m, IKE_N_SIGNATURE_HASH_ALGORITHMS);
	struct ike_notify n;
	const char *why;
	sa->sig_hashes = 0;
	if (p && !ike_parse_notify(p->body, p->len, &n, &why))
		for (size_t i = 0; i + 1 < n.len; i += 2) {
			unsigned h = (unsigned)(n.data[i] << 8 | n.data[i + 1]);
			if (h < 16)
				sa->sig_hashes |= 1u << h;
		}
}

/* Verifies the peer's AUTH (and, with certificates, its chain and that it proves the
 * identity). NULL, or why not. */
static const char *check_peer_auth(struct ike_sa *sa, const struct ike_peer_cfg *cfg,
				   bool of_initiator, const struct ike_msg *m,
				   const struct ike_id *id, const struct ike_auth *auth)
{
	if (cfg->remote_auth != IKE_AUTHC_PUBKEY) {
		uint8_t want[SG_PRF_MAX_LEN];
		bool ok = auth->method == IKE_AUTH_PSK && auth->len == sa->keys.prf_len &&
			  psk_auth(sa, of_initiator, cfg->psk, cfg->psk_len, id->body, id->body_len,
				   want) &&
			  sg_memeq(want, auth->data, auth->len);
		sg_memzero(want, sizeof(want));
		return ok ? NULL : "AUTH does not verify";
	}
	if (auth->method != IKE_AUTH_DIGITAL_SIGNATURE)
		return "the peer must authenticate with an RFC 7427 signature (AUTH method 14)";
	size_t al = auth->data[0];
	if (1 + al >= auth->len)
		return "AUTH: AlgorithmIdentifier runs past the signature";
	/* The first CERT is the end entity's (3.6); more are intermediates. */
	struct sg_cert *leaf = NULL, *inter[4];
	unsigned ninter = 0;
	const char *why = NULL;
	for (unsigned i = 0; i < m->npl; i++) {
		struct ike_cert c;
		if (m->pl[i].type != IKE_PL_CERT ||
		    ike_parse_cert(m->pl[i].body, m->pl[i].len, &c, &why) || c.encoding != 4)
			continue;
		struct sg_cert *x;
		if (sg_cert_load(c.data, c.len, &x))
			continue;
		if (!leaf)
			leaf = x;
		else if (ninter < SG_ARRAY_LEN(inter))
			inter[ninter++] = x;
		else
			sg_cert_free(x);
	}
	const char *res = NULL;
	if (!leaf) {
		res = "no X.509 certificate in the peer's IKE_AUTH";
	} else if (!cfg->ncas) {
		res = "no CA certificate is loaded for this connection";
	} else if (sg_cert_verify(leaf, inter, ninter, cfg->cas, cfg->ncas,
				  &why)) {
		res = why ? why : "the peer's certificate does not chain to a trusted CA";
	} else if (!sg_cert_has_id(leaf, id->type, id->data, id->len)) {
		res = "the peer's certificate does not hold its identity";
	} else if (cfg->require_pss && !sg_sig_is_pss(auth->data + 1, al)) {
		res = "the peer must sign with RSASSA-PSS (auth = rsa/pss)";
	} else {
		size_t ol;
		uint8_t *oct = signed_octets(sa, of_initiator, id->body, id->body_len, &ol);
		if (!oct || sg_sig_verify(leaf, auth->data + 1, al, oct, ol, auth->data + 1 + al,
					  auth->len - 1 - al, &why))
			res = oct ? (why ? why : "signature does not verify") : "out of memory";
		free(oct);
	}
	sg_cert_free(leaf);
	for (unsigned i = 0; i < ninter; i++)
		sg_cert_free(inter[i]);
	return res;
}

/* The identity the peer sent against the configured one. A DN matches by its attributes (case
 * and string types aside), with "*" values as wildcards (strongSwan's rules); *exact (may be
 * NULL) says whether it matched without any wildcard. */
static bool id_match(const struct ike_identity *cfg, const struct ike_id *got, bool *exact)
{
	bool dummy;
	if (!exact)
		exact = &dummy;
	*exact = false;
	if (cfg->type == IKE_ID_ANY)
		return true; /* any identity the certificate proves (checked with it) */
	if (cfg->type != got->type)
		return false;
	if (cfg->type == IKE_ID_DER_ASN1_DN) {
		unsigned wc = 0;
		bool ok = sg_dn_match(cfg->data, cfg->len, got->data, got->len, &wc);
		*exact = ok && !wc;
		return ok;
	}
	*exact = cfg->len == got->len && !memcmp(cfg->data, got->data, got->len);
	return *exact;
}

static void keep_their_id(struct ike_sa *sa, const struct ike_id *id)
{
	memset(&sa->their_id, 0, sizeof(sa->their_id));
	if (id->len > sizeof(sa->their_id.data))
		return;
	sa->their_id.type = id->type;
	sa->their_id.len = (uint16_t)id->len;
	memcpy(sa->their_id.data, id->data, id->len);
}

static bool id_equal(const struct ike_identity *cfg, const struct ike_id *got)
{
	return id_match(cfg, got, NULL);
}

/* ---- Child SAs ------------------------------------------------------------------------------ */

static uint64_t jitter(uint64_t t)
{
	/* Up to a tenth earlier, so two peers with one configuration rarely rekey at once. */
	return t ? t - (t / 10 ? sg_random_u64() % (t / 10) : 0) : 0;
}

/* Installs a Child SA made from child config cc (copied into it). */
static void install_child(struct ike_sa *sa, struct ike_child *ch, const struct ike_child_cfg *cc,
			  uint64_t now)
{
	if (&ch->cfg != cc)
		ch->cfg = *cc;
	cc = &ch->cfg;
	ch->rekey_at = cc->rekey_time_ns ? now + jitter(cc->rekey_time_ns) : 0;
	ch->expire_at = cc->life_time_ns ? now + cc->life_time_ns : 0;
	const struct ike_child_keys *k = &ch->keys;
	/* 2.17: the keys of the SA from the exchange's initiator come first. */
	bool in_is_i = !ch->we_made;
	struct ike_child_info info = {
	    .name = cc->name,
	    .spi_in = ch->spi_in,
	    .spi_out = ch->spi_out,
	    .encr = k->encr,
	    .encr_bits = k->encr_bits,
	    .integ = k->integ,
	    .esn = ch->prop.esn != 0,
	    .transport = ch->transport,
	    .encap = true,
	    .key_in = in_is_i ? k->enc_i : k->enc_r,
	    .key_out = in_is_i ? k->enc_r : k->enc_i,
	    .integ_in = in_is_i ? k->int_i : k->int_r,
	    .integ_out = in_is_i ? k->int_r : k->int_i,
	    .key_len = k->enc_len,
	    .integ_len = k->int_len,
	    .local_ts = ch->local_ts.ts,
	    .remote_ts = ch->remote_ts.ts,
	    .nlocal_ts = ch->local_ts.n,
	    .nremote_ts = ch->remote_ts.n,
	    .remote = sa->remote,
	};
	info.local.port = sa->local_port;
	ch->next = sa->children;
	sa->children = ch;
	if (sa->ctx->io.child_up)
		sa->ctx->io.child_up(sa->ctx->io.ctx, sa, &info);
	event_child(sa->ctx, IKE_EV_CHILD_UP, sa, cc->name, NULL);
}

/* The child proposals without key exchange groups: IKE_AUTH creates its Child SA from the IKE
 * SA's keys, so its SA payloads carry no Transform Type 4 (1.2). */
static unsigned props_no_ke(const struct ike_child_cfg *cc, struct ike_prop_cfg *out)
{
	for (unsigned i = 0; i < cc->nprops; i++) {
		out[i] = cc->props[i];
		out[i].n[IKE_TRANS_KE] = 0;
	}
	return cc->nprops;
}

static void established(struct ike_sa *sa, uint64_t now)
{
	set_state(sa, IKE_SA_ESTABLISHED);
	sa->last_rx = now;
	sa->established_at = now;
	sa->expire_at = 0;
	sa->rekey_at = sa->peer->cfg.rekey_time_ns ? now + jitter(sa->peer->cfg.rekey_time_ns) : 0;
	sa->ctx->stats.ike_up++;
	event(sa->ctx, IKE_EV_IKE_UP, sa, NULL);
	/* The IKE_SA_INIT messages and the key pair are no longer needed. */
	free_wiped(sa->msg1, sa->msg1_len);
	free_wiped(sa->msg2, sa->msg2_len);
	sa->msg1 = sa->msg2 = NULL;
	sg_ke_free(sa->ke);
	sa->ke = NULL;
}

/* ---- initiator --------------------------------------------------------------------------- */

static int send_init(struct ike_sa *sa, uint64_t now)
{
	const struct ike_peer_cfg *cfg = &sa->peer->cfg;
	struct ike_buf b;
	struct ike_sa_payload sap;
	uint8_t pub[SG_KE_MAX_PUBLIC], nd[20];
	if (!sa->ke || sg_ke_group(sa->ke) != sa->ke_group) {
		sg_ke_free(sa->ke);
		sa->ke = sg_ke_new(sa->ke_group);
		if (!sa->ke)
			return SG_ECRYPTO;
	}
	if (!sg_ke_public(sa->ke, pub))
		return SG_ECRYPTO;
	/* 2.6: a retry with a cookie repeats every other payload unchanged (the cookie covers
	 * Ni), so the nonce is made once per IKE SA. */
	if (!sa->ni_len) {
		sa->ni_len = NONCE_LEN;
		if (!sg_random_bytes(sa->ni, sa->ni_len))
			return SG_ECRYPTO;
	}
	memset(sa->spi_r, 0, 8);
	sa->next_mid = 0;
	begin_msg(sa, &b, IKE_SA_INIT, false, 0);
	/* 2.6: the cookie goes first. */
	if (sa->cookie_len)
		ike_put_notify(&b, 0, NULL, 0, IKE_N_COOKIE, sa->cookie, sa->cookie_len);
	ike_prop_offer(cfg->props, cfg->nprops, NULL, 0, &sap);
	ike_put_sa(&b, &sap);
	ike_put_ke(&b, sa->ke_group, pub, sg_ke_public_len(sa->ke_group));
	ike_put_nonce(&b, sa->ni, sa->ni_len);
	nat_d(nd, sa->spi_i, zero_spi, &sa->remote, true);
	ike_put_notify(&b, 0, NULL, 0, IKE_N_NAT_DETECTION_SOURCE_IP, nd, 20);
	nat_d(nd, sa->spi_i, zero_spi, &sa->remote, false);
	ike_put_notify(&b, 0, NULL, 0, IKE_N_NAT_DETECTION_DESTINATION_IP, nd, 20);
	put_sig_hashes(&b);
	if (cfg->fragmentation != IKE_FRAG_NO)
		ike_put_notify(&b, 0, NULL, 0, IKE_N_IKEV2_FRAGMENTATION_SUPPORTED, NULL, 0);
	int err = ike_finish(&b);
	if (err)
		return err;
	free_wiped(sa->msg1, sa->msg1_len);
	sa->msg1 = dup_bytes(b.p, b.len);
	sa->msg1_len = b.len;
	if (!sa->msg1)
		return SG_ENOMEM;
	sa->next_mid = 1;
	return send_request(sa, &b, REQ_INIT, now);
}

static struct ike_child *child_by_cfg(struct ike_sa *sa, const char *name)
{
	for (struct ike_child *ch = sa->children; ch; ch = ch->next)
		if (!ch->replaced && !ch->delete_wanted && !strcmp(ch->cfg.name, name))
			return ch;
	return NULL;
}

static bool child_wanted(const struct ike_sa *sa, const char *name)
{
	if (sa->state < IKE_SA_ESTABLISHED && sa->initiator && !strcmp(sa->auth_child, name))
		return true;
	if (sa->req_kind == REQ_CREATE_CHILD && !strcmp(sa->mk_child, name))
		return true;
	for (unsigned i = 0; i < sa->nwant; i++)
		if (!strcmp(sa->want[i], name))
			return true;
	return false;
}

static void maintenance(struct ike_sa *sa, uint64_t now);

/* The IKE SA of a peer that new children can be created over: ours being made, or any one
 * established and not being replaced or deleted. */
static struct ike_sa *sa_for_peer(struct ike_ctx *c, const struct ike_peer *p)
{
	for (struct ike_sa *sa = c->sas; sa; sa = sa->next)
		if (sa->peer == p && !sa->replaced &&
		    (sa->state == IKE_SA_ESTABLISHED ||
		     (sa->initiator && sa->state < IKE_SA_ESTABLISHED)))
			return sa;
	return NULL;
}

int ike_initiate(struct ike_ctx *c, const char *name, const char *child, uint64_t now)
{
	struct ike_peer *p = find_peer(c, name);
	if (!p || !p->cfg.nchildren)
		return SG_ENOENT;
	const struct ike_child_cfg *cc = child ? find_child_cfg(&p->cfg, child) : &p->cfg.children[0];
	if (!cc)
		return SG_ENOENT;
	struct ike_sa *sa = sa_for_peer(c, p);
	if (sa) {
		if (sa->state == IKE_SA_ESTABLISHED && child_by_cfg(sa, cc->name))
			return SG_EEXIST;
		if (child_wanted(sa, cc->name))
			return 0;
		if (sa->nwant >= IKE_MAX_CHILD_CFG)
			return SG_EFULL;
		snprintf(sa->want[sa->nwant++], sizeof(sa->want[0]), "%s", cc->name);
		maintenance(sa, now);
		return 0;
	}
	if (!p->cfg.remote.family)
		return SG_ENOROUTE; /* a responder-only connection (remote_addrs without an address) */
	sa = sa_new(c, true);
	if (!sa)
		return SG_ENOMEM;
	sa->peer = p;
	sa->remote = p->cfg.remote;
	snprintf(sa->auth_child, sizeof(sa->auth_child), "%s", cc->name);
	if (!sg_random_bytes(sa->spi_i, 8)) {
		sa_unlink_free(sa, false, NULL);
		return SG_ECRYPTO;
	}
	sa->ke_group = p->cfg.props[0].alg[IKE_TRANS_KE][0].id;
	int err = send_init(sa, now);
	if (err)
		sa_unlink_free(sa, false, NULL);
	else
		event(c, IKE_EV_INITIATING, sa, NULL);
	return err;
}

static bool group_offered(const struct ike_peer_cfg *cfg, uint16_t g)
{
	for (unsigned i = 0; i < cfg->nprops; i++)
		for (unsigned j = 0; j < cfg->props[i].n[IKE_TRANS_KE]; j++)
			if (cfg->props[i].alg[IKE_TRANS_KE][j].id == g)
				return true;
	return false;
}

static void fail_sa(struct ike_sa *sa, const char *why)
{
	reject(sa->ctx, sa, why);
	sa_unlink_free(sa, true, why);
}

static int send_auth(struct ike_sa *sa, uint64_t now)
{
	const struct ike_peer_cfg *cfg = &sa->peer->cfg;
	const struct ike_child_cfg *cc = find_child_cfg(cfg, sa->auth_child);
	uint8_t idb[4 + 1024];
	if (!cc)
		return SG_ENOENT; /* the child config was unloaded meanwhile */
	size_t idl;
	struct ike_buf b;
	struct ike_sa_payload sap;
	struct ike_ts_payload tsi, tsr;
	uint8_t spi[4];
	if (!my_id_body(cfg, idb, sizeof(idb), &idl))
		return SG_EINVAL;
	sa->child_spi = new_child_spi();
	put_be32(spi, sa->child_spi);
	begin_msg(sa, &b, IKE_AUTH, false, sa->next_mid);
	ike_begin_sk(&b, &sa->keys.out);
	ike_put_id(&b, IKE_PL_IDI, idb[0], idb + 4, idl - 4);
	if (cfg->remote_auth == IKE_AUTHC_PUBKEY)
		put_certreq(&b, sa->ctx, cfg);
	int aerr = put_my_auth(sa, &b, cfg, true, idb, idl);
	if (aerr)
		return aerr;
	if (cc->transport)
		ike_put_notify(&b, 0, NULL, 0, IKE_N_USE_TRANSPORT_MODE, NULL, 0);
	struct ike_prop_cfg noke[IKE_PROP_MAX];
	ike_prop_offer(noke, props_no_ke(cc, noke), spi, 4, &sap);
	ike_put_sa(&b, &sap);
	ts_from_cfg(cc->local_ts, cc->nlocal_ts, &tsi);
	ts_from_cfg(cc->remote_ts, cc->nremote_ts, &tsr);
	ike_put_ts(&b, IKE_PL_TSI, &tsi);
	ike_put_ts(&b, IKE_PL_TSR, &tsr);
	int err = seal(sa, &b);
	if (err)
		return err;
	sa->next_mid++;
	set_state(sa, IKE_SA_AUTHENTICATING);
	return send_request(sa, &b, REQ_AUTH, now);
}

static void init_response(struct ike_sa *sa, struct ike_msg *m, uint64_t now)
{
	const struct ike_peer_cfg *cfg = &sa->peer->cfg;
	const char *why = NULL;
	struct ike_notify n;
	const struct ike_payload *p;
	/* Error notifies first (1.2, 2.6, 1.3). */
	if ((p = ike_find_notify(m, IKE_N_COOKIE)) &&
	    !ike_parse_notify(p->body, p->len, &n, &why)) {
		if (n.len < 1 || n.len > sizeof(sa->cookie) || sa->cookie_len) {
			fail_sa(sa, "bad or repeated COOKIE from the responder");
			return;
		}
		memcpy(sa->cookie, n.data, n.len);
		sa->cookie_len = n.len;
		event(sa->ctx, IKE_EV_COOKIE, sa, "responder asked for a cookie");
		if (send_init(sa, now))
			fail_sa(sa, "could not resend IKE_SA_INIT");
		return;
	}
	if ((p = ike_find_notify(m, IKE_N_INVALID_KE_PAYLOAD)) &&
	    !ike_parse_notify(p->body, p->len, &n, &why)) {
		uint16_t g = n.len == 2 ? (uint16_t)(n.data[0] << 8 | n.data[1]) : 0;
		if (!g || g == sa->ke_group || !group_offered(cfg, g)) {
			fail_sa(sa, "INVALID_KE_PAYLOAD names a group we did not offer");
			return;
		}
		sa->ke_group = g;
		event(sa->ctx, IKE_EV_INVALID_KE, sa, "responder asked for another group");
		if (send_init(sa, now))
			fail_sa(sa, "could not resend IKE_SA_INIT");
		return;
	}
	for (unsigned i = 0; i < m->npl; i++)
		if (m->pl[i].type == IKE_PL_NOTIFY &&
		    !ike_parse_notify(m->pl[i].body, m->pl[i].len, &n, &why) &&
		    IKE_N_IS_ERROR(n.type)) {
			fail_sa(sa, n.type == IKE_N_NO_PROPOSAL_CHOSEN
					? "peer: NO_PROPOSAL_CHOSEN"
					: "peer answered with an error notify");
			return;
		}
	struct ike_sa_payload sap;
	struct ike_ke ke;
	const struct ike_payload *psa = ike_find(m, IKE_PL_SA), *pke = ike_find(m, IKE_PL_KE),
				 *pn = ike_find(m, IKE_PL_NONCE);
	if (!psa || !pke || !pn || ike_parse_sa(psa->body, psa->len, &sap, &why) ||
	    ike_parse_ke(pke->body, pke->len, &ke, &why) ||
	    ike_parse_nonce(pn->body, pn->len, &why) ||
	    ike_prop_accept(cfg->props, cfg->nprops, &sap, &sa->prop, &why)) {
		fail_sa(sa, why ? why : "IKE_SA_INIT response lacks SA, KE or Nonce");
		return;
	}
	if (ke.group != sa->ke_group || sa->prop.ke != sa->ke_group) {
		fail_sa(sa, "the responder's KE group differs from ours");
		return;
	}
	memcpy(sa->spi_r, m->hdr.spi_r, 8);
	get_sig_hashes(sa, m);
	sa->frag_ok = cfg->fragmentation != IKE_FRAG_NO &&
		      ike_find_notify(m, IKE_N_IKEV2_FRAGMENTATION_SUPPORTED) != NULL;
	sa->frag = sa->frag_ok && cfg->fragmentation == IKE_FRAG_YES;
	memcpy(sa->nr, pn->body, pn->len);
	sa->nr_len = pn->len;
	uint8_t gir[SG_KE_MAX_SHARED];
	size_t gl = sg_ke_shared_len(sa->ke_group);
	if (sg_ke_derive(sa->ke, ke.data, ke.len, gir) ||
	    ike_derive_sa_keys(&sa->prop, true, gir, gl, sa->ni, sa->ni_len, sa->nr, sa->nr_len,
			       sa->spi_i, sa->spi_r, 0, NULL, &sa->keys)) {
		sg_memzero(gir, sizeof(gir));
		fail_sa(sa, "the responder's KE value is invalid");
		return;
	}
	sg_memzero(gir, sizeof(gir));
	sa->keyed = true;
	free_wiped(sa->msg2, sa->msg2_len);
	sa->msg2 = dup_bytes(m->raw, m->hdr.length);
	sa->msg2_len = m->hdr.length;
	request_done(sa);
	/* NAT-T (2.23, RFC 3948): on to port 4500. */
	sa->local_port = IKE_NATT_PORT;
	sa->remote.port = IKE_NATT_PORT;
	if (!sa->msg2 || send_auth(sa, now))
		fail_sa(sa, "could not send IKE_AUTH");
}

/* The name of an error notify for logs and events. */
static const char *notify_name(uint16_t type)
{
	switch (type) {
	case IKE_N_NO_PROPOSAL_CHOSEN:
		return "peer: NO_PROPOSAL_CHOSEN";
	case IKE_N_TS_UNACCEPTABLE:
		return "peer: TS_UNACCEPTABLE";
	case IKE_N_INVALID_SYNTAX:
		return "peer: INVALID_SYNTAX";
	case IKE_N_TEMPORARY_FAILURE:
		return "peer: TEMPORARY_FAILURE";
	case IKE_N_CHILD_SA_NOT_FOUND:
		return "peer: CHILD_SA_NOT_FOUND";
	case IKE_N_INVALID_KE_PAYLOAD:
		return "peer: INVALID_KE_PAYLOAD";
	default:
		return "peer answered with an error notify";
	}
}

static uint16_t error_notify(const struct ike_msg *m, struct ike_notify *n);

/* The Child SA of an IKE_AUTH response: absent (an error notify) leaves the IKE SA up without
 * it (1.2), and says why. */
static void take_auth_child(struct ike_sa *sa, struct ike_msg *m, uint64_t now)
{
	const char *why = NULL;
	struct ike_notify n;
	const struct ike_child_cfg *cc = find_child_cfg(&sa->peer->cfg, sa->auth_child);
	const struct ike_payload *psa = ike_find(m, IKE_PL_SA), *pti = ike_find(m, IKE_PL_TSI),
				 *ptr = ike_find(m, IKE_PL_TSR);
	struct ike_sa_payload sap;
	struct ike_ts_payload ours_i, ours_r;
	uint16_t err = error_notify(m, &n);
	if (!cc) {
		event_child(sa->ctx, IKE_EV_CHILD_FAILED, sa, sa->auth_child,
			    "the child config was unloaded");
		return;
	}
	if (err) {
		event_child(sa->ctx, IKE_EV_CHILD_FAILED, sa, cc->name, notify_name(err));
		return;
	}
	struct ike_child *ch = calloc(1, sizeof(*ch));
	if (!ch) {
		event_child(sa->ctx, IKE_EV_CHILD_FAILED, sa, cc->name, "out of memory");
		return;
	}
	struct ike_prop_cfg noke[IKE_PROP_MAX];
	unsigned nnoke = props_no_ke(cc, noke);
	if (!psa || !pti || !ptr || ike_parse_sa(psa->body, psa->len, &sap, &why) ||
	    ike_prop_accept(noke, nnoke, &sap, &ch->prop, &why) || ch->prop.spi_len != 4 ||
	    ike_parse_ts(pti->body, pti->len, &ch->local_ts, &why) ||
	    ike_parse_ts(ptr->body, ptr->len, &ch->remote_ts, &why)) {
		why = why ? why : "no Child SA in the IKE_AUTH response";
		reject(sa->ctx, sa, why);
		event_child(sa->ctx, IKE_EV_CHILD_FAILED, sa, cc->name, why);
		free(ch);
		return;
	}
	ts_from_cfg(cc->local_ts, cc->nlocal_ts, &ours_i);
	ts_from_cfg(cc->remote_ts, cc->nremote_ts, &ours_r);
	if (!ts_within(&ch->local_ts, &ours_i) || !ts_within(&ch->remote_ts, &ours_r)) {
		why = "the responder widened the traffic selectors";
		reject(sa->ctx, sa, why);
		event_child(sa->ctx, IKE_EV_CHILD_FAILED, sa, cc->name, why);
		free(ch);
		return;
	}
	ch->transport = cc->transport && ike_find_notify(m, IKE_N_USE_TRANSPORT_MODE);
	ch->we_made = true;
	ch->spi_in = sa->child_spi;
	ch->spi_out = get_be32(ch->prop.spi);
	if (ike_derive_child_keys(&ch->prop, sa->keys.prf, sa->keys.sk_d, NULL, 0, sa->ni,
				  sa->ni_len, sa->nr, sa->nr_len, &ch->keys)) {
		event_child(sa->ctx, IKE_EV_CHILD_FAILED, sa, cc->name, "key derivation failed");
		free(ch);
		return;
	}
	install_child(sa, ch, cc, now);
}

static void auth_response(struct ike_sa *sa, struct ike_msg *m, uint64_t now)
{
	const struct ike_peer_cfg *cfg = &sa->peer->cfg;
	const char *why = NULL;
	struct ike_notify n;
	for (unsigned i = 0; i < m->npl; i++)
		if (m->pl[i].type == IKE_PL_NOTIFY &&
		    !ike_parse_notify(m->pl[i].body, m->pl[i].len, &n, &why) &&
		    n.type == IKE_N_AUTHENTICATION_FAILED) {
			fail_sa(sa, "peer: AUTHENTICATION_FAILED");
			return;
		}
	const struct ike_payload *pid = ike_find(m, IKE_PL_IDR), *pa = ike_find(m, IKE_PL_AUTH);
	struct ike_id id;
	struct ike_auth auth;
	if (!pid || !pa || ike_parse_id(pid->body, pid->len, &id, &why) ||
	    ike_parse_auth(pa->body, pa->len, &auth, &why)) {
		fail_sa(sa, why ? why : "IKE_AUTH response lacks IDr or AUTH");
		return;
	}
	if (!id_equal(&cfg->remote_id, &id)) {
		fail_sa(sa, "the responder's identity is not the configured one");
		return;
	}
	const char *bad = check_peer_auth(sa, cfg, false, m, &id, &auth);
	if (bad) {
		sa->ctx->stats.rx_auth_failed++;
		fail_sa(sa, bad);
		return;
	}
	request_done(sa);
	keep_their_id(sa, &id);
	established(sa, now);
	take_auth_child(sa, m, now);
	maintenance(sa, now); /* children queued meanwhile */
}

/* ---- responder ----------------------------------------------------------------------------- */

/* 2.6: Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>). */
static void make_cookie(struct ike_ctx *c, const uint8_t *ni, size_t ni_len,
			const struct ike_endpoint *from, const uint8_t spi_i[8], uint8_t out[33])
{
	out[0] = 1;
	struct sg_iov iov[4] = {{ni, ni_len},
				{from->addr, from->family == AF_INET ? 4 : 16},
				{spi_i, 8},
				{c->cookie_secret, sizeof(c->cookie_secret)}};
	if (!sg_sha2(32, out + 1, iov, 4))
		memset(out + 1, 0, 32);
}

/* How specifically a peer's remote_addrs hold an address: 0 not, 1 as anyone (none
 * configured), 2 in a range or prefix, 3 as the address itself. */
static int addr_score(const struct ike_peer_cfg *cfg, const struct ike_endpoint *from)
{
	if (!cfg->nremote_addrs)
		return 1;
	int best = 0;
	size_t al = from->family == AF_INET ? 4 : 16;
	for (unsigned i = 0; i < cfg->nremote_addrs; i++) {
		const struct ike_addr_range *r = &cfg->remote_addrs[i];
		if (r->family == from->family && memcmp(from->addr, r->start, al) >= 0 &&
		    memcmp(from->addr, r->end, al) <= 0)
			best = SG_MAX(best, r->single ? 3 : 2);
	}
	return best;
}

/* The connection for an IKE_SA_INIT, which names no identity (charon's choice): among the
 * peers whose remote_addrs hold the sender, the most specific first, then in the order they
 * were added, the first whose IKE proposals match. NULL with *why if none. */
static const struct ike_peer_cfg *responder_cfg(struct ike_ctx *c, const struct ike_endpoint *from,
						const struct ike_sa_payload *sap, uint16_t ke,
						struct ike_chosen *ch, const char **why)
{
	bool any = false;
	for (int score = 3; score >= 1; score--)
		for (struct ike_peer *p = c->peers; p; p = p->next) {
			if (addr_score(&p->cfg, from) != score)
				continue;
			any = true;
			if (!ike_prop_choose(p->cfg.props, p->cfg.nprops, sap, ke, false, ch, why))
				return &p->cfg;
		}
	if (!any)
		*why = "no connection takes IKE_SA_INIT from this address (remote_addrs)";
	return NULL;
}

static void init_request(struct ike_ctx *c, uint16_t port, const struct ike_endpoint *from,
			 struct ike_msg *m, uint64_t now)
{
	const char *why = NULL;
	struct ike_sa *sa = find_sa(c, m->hdr.spi_i, zero_spi, true);
	if (sa && !sa->initiator && sa->state == IKE_SA_CONNECTING && sa->have_resp &&
	    sa->msg1_len == m->hdr.length && !memcmp(sa->msg1, m->raw, m->hdr.length)) {
		send_stored(sa, sa->resp, sa->resp_len,
			    sa->resp_packed); /* a retransmitted request */
		return;
	}
	if (sa) {
		reject(c, NULL, "IKE_SA_INIT for an SPI in use");
		return;
	}
	if (memcmp(m->hdr.spi_r, zero_spi, 8) || m->hdr.msg_id != 0) {
		reject(c, NULL, "IKE_SA_INIT request with a responder SPI or message ID");
		return;
	}
	if (!c->peers) {
		reject(c, NULL, "IKE_SA_INIT but no connection is configured");
		return;
	}
	const struct ike_payload *pn = ike_find(m, IKE_PL_NONCE), *psa = ike_find(m, IKE_PL_SA),
				 *pke = ike_find(m, IKE_PL_KE);
	if (!pn || !psa || !pke || ike_parse_nonce(pn->body, pn->len, &why)) {
		reject(c, NULL, why ? why : "IKE_SA_INIT lacks SA, KE or Nonce");
		return;
	}
	/* Cookies under load (2.6): stateless until the initiator proves its address. */
	if (c->force_cookies || c->half_open >= IKE_COOKIE_THRESHOLD) {
		uint8_t want[33];
		struct ike_notify n;
		make_cookie(c, pn->body, pn->len, from, m->hdr.spi_i, want);
		bool ok = m->npl && m->pl[0].type == IKE_PL_NOTIFY &&
			  !ike_parse_notify(m->pl[0].body, m->pl[0].len, &n, &why) &&
			  n.type == IKE_N_COOKIE && n.len == sizeof(want) &&
			  sg_memeq(n.data, want, sizeof(want));
		if (!ok) {
			c->stats.cookies_sent++;
			event(c, IKE_EV_COOKIE, NULL, "asked the initiator for a cookie");
			reply_notify_stateless(c, port, from, &m->hdr, IKE_N_COOKIE, want,
					       sizeof(want));
			return;
		}
	}
	if (c->half_open >= IKE_MAX_HALF_OPEN) {
		c->stats.rx_dropped_half_open++;
		reject(c, NULL, "too many half-open IKE SAs");
		return;
	}
	struct ike_sa_payload sap;
	struct ike_ke ke;
	struct ike_chosen ch;
	if (ike_parse_sa(psa->body, psa->len, &sap, &why) ||
	    ike_parse_ke(pke->body, pke->len, &ke, &why)) {
		reject(c, NULL, why);
		reply_notify_stateless(c, port, from, &m->hdr, IKE_N_INVALID_SYNTAX, NULL, 0);
		return;
	}
	const struct ike_peer_cfg *cfg = responder_cfg(c, from, &sap, ke.group, &ch, &why);
	if (!cfg) {
		reject(c, NULL, why);
		reply_notify_stateless(c, port, from, &m->hdr, IKE_N_NO_PROPOSAL_CHOSEN, NULL, 0);
		return;
	}
	if (ke.group != ch.ke) {
		/* 1.3: the group we want, and no state. */
		uint8_t g[2] = {(uint8_t)(ch.ke >> 8), (uint8_t)ch.ke};
		event(c, IKE_EV_INVALID_KE, NULL, "asked the initiator for another group");
		reply_notify_stateless(c, port, from, &m->hdr, IKE_N_INVALID_KE_PAYLOAD, g, 2);
		return;
	}
	sa = sa_new(c, false);
	if (!sa)
		return;
	memcpy(sa->spi_i, m->hdr.spi_i, 8);
	sa->remote = *from;
	sa->local_port = port;
	sa->prop = ch;
	sa->ke_group = ch.ke;
	sa->expire_at = now + HALF_OPEN_TIMEOUT_NS;
	sa->peer_mid = 1;
	memcpy(sa->ni, pn->body, pn->len);
	sa->ni_len = pn->len;
	sa->nr_len = NONCE_LEN;
	uint8_t gir[SG_KE_MAX_SHARED], pub[SG_KE_MAX_PUBLIC], nd[20];
	int err;
	sa->ke = sg_ke_new(ch.ke);
	if (!sa->ke || !sg_random_bytes(sa->spi_r, 8) || !sg_random_bytes(sa->nr, sa->nr_len) ||
	    !sg_ke_public(sa->ke, pub)) {
		sa_unlink_free(sa, false, NULL);
		return;
	}
	err = sg_ke_derive(sa->ke, ke.data, ke.len, gir);
	if (err) {
		sa_unlink_free(sa, false, NULL);
		reject(c, NULL, "the initiator's KE value is invalid");
		reply_notify_stateless(c, port, from, &m->hdr, IKE_N_INVALID_SYNTAX, NULL, 0);
		return;
	}
	err = ike_derive_sa_keys(&ch, false, gir, sg_ke_shared_len(ch.ke), sa->ni, sa->ni_len,
				 sa->nr, sa->nr_len, sa->spi_i, sa->spi_r, 0, NULL, &sa->keys);
	sg_memzero(gir, sizeof(gir));
	if (err) {
		sa_unlink_free(sa, false, NULL);
		return;
	}
	sa->keyed = true;
	struct ike_buf b;
	struct ike_sa_payload ans;
	begin_msg(sa, &b, IKE_SA_INIT, true, 0);
	ike_prop_answer(&ch, NULL, 0, &ans);
	ike_put_sa(&b, &ans);
	ike_put_ke(&b, ch.ke, pub, sg_ke_public_len(ch.ke));
	ike_put_nonce(&b, sa->nr, sa->nr_len);
	nat_d(nd, sa->spi_i, sa->spi_r, from, true);
	ike_put_notify(&b, 0, NULL, 0, IKE_N_NAT_DETECTION_SOURCE_IP, nd, 20);
	nat_d(nd, sa->spi_i, sa->spi_r, from, false);
	ike_put_notify(&b, 0, NULL, 0, IKE_N_NAT_DETECTION_DESTINATION_IP, nd, 20);
	put_sig_hashes(&b);
	put_certreq(&b, c, NULL);
	get_sig_hashes(sa, m);
	/* RFC 7383 2.3, with the connection's fragmentation setting. */
	sa->frag_ok = cfg->fragmentation != IKE_FRAG_NO &&
		      ike_find_notify(m, IKE_N_IKEV2_FRAGMENTATION_SUPPORTED) != NULL;
	sa->frag = sa->frag_ok && cfg->fragmentation == IKE_FRAG_YES;
	if (sa->frag_ok)
		ike_put_notify(&b, 0, NULL, 0, IKE_N_IKEV2_FRAGMENTATION_SUPPORTED, NULL, 0);
	if (ike_finish(&b)) {
		sa_unlink_free(sa, false, NULL);
		return;
	}
	sa->msg1 = dup_bytes(m->raw, m->hdr.length);
	sa->msg1_len = m->hdr.length;
	sa->msg2 = dup_bytes(b.p, b.len);
	sa->msg2_len = b.len;
	if (!sa->msg1 || !sa->msg2) {
		sa_unlink_free(sa, false, NULL);
		return;
	}
	send_response(sa, &b, 0);
}

/* Our identity (as sent) against the IDr an initiator asked for, either way round, as charon's
 * get_peer_match: a DN by its attributes (with wildcards in IDr), %any matching anything. */
static bool my_id_matches(const struct ike_peer_cfg *cfg, const struct ike_id *idr)
{
	uint8_t t;
	const uint8_t *d;
	size_t n;
	my_id(cfg, &t, &d, &n);
	if (t == IKE_ID_ANY)
		return true;
	if (t != idr->type)
		return false;
	if (t == IKE_ID_DER_ASN1_DN)
		return sg_dn_match(idr->data, idr->len, d, n, NULL) ||
		       sg_dn_match(d, n, idr->data, idr->len, NULL);
	return n == idr->len && !memcmp(d, idr->data, n);
}

/* The peer an IKE_AUTH request binds the SA to (see ike_add_peer). NULL with *why. */
static struct ike_peer *peer_for_auth(struct ike_sa *sa, const struct ike_msg *m,
				      const struct ike_id *idi, const struct ike_auth *auth,
				      const char **why)
{
	const struct ike_payload *pidr = ike_find(m, IKE_PL_IDR);
	struct ike_id idr;
	const char *w = NULL;
	bool has_idr = pidr && !ike_parse_id(pidr->body, pidr->len, &idr, &w);
	struct ike_sa_payload chosen;
	ike_prop_answer(&sa->prop, NULL, 0, &chosen);
	bool psk = auth->method == IKE_AUTH_PSK;
	struct ike_peer *best = NULL;
	int best_score = 0;
	*why = "no connection for the initiator's identity";
	for (struct ike_peer *p = sa->ctx->peers; p; p = p->next) {
		bool exact;
		struct ike_chosen tmp;
		if (!id_match(&p->cfg.remote_id, idi, &exact))
			continue;
		int id_score = p->cfg.remote_id.type == IKE_ID_ANY ? 1 : exact ? 3 : 2;
		int a = addr_score(&p->cfg, &sa->remote);
		if (!a) {
			*why = "no connection for the initiator's identity from its address";
			continue;
		}
		if (has_idr && !my_id_matches(&p->cfg, &idr)) {
			*why = "no connection has the identity the initiator asked for (IDr)";
			continue;
		}
		if ((p->cfg.remote_auth == IKE_AUTHC_PUBKEY) == psk) {
			*why = "the connection for this identity expects another authentication "
			       "method";
			continue;
		}
		if (ike_prop_choose(p->cfg.props, p->cfg.nprops, &chosen, sa->prop.ke, false, &tmp,
				    &w)) {
			*why = "the connection for this identity does not accept the IKE SA's "
			       "algorithms";
			continue;
		}
		int score = id_score * 8 + a;
		if (score > best_score) {
			best = p;
			best_score = score;
		}
	}
	return best;
}

static void auth_fail_response(struct ike_sa *sa, uint32_t mid)
{
	struct ike_buf b;
	begin_msg(sa, &b, IKE_AUTH, true, mid);
	ike_begin_sk(&b, &sa->keys.out);
	ike_put_notify(&b, 0, NULL, 0, IKE_N_AUTHENTICATION_FAILED, NULL, 0);
	if (ike_seal_sk(&b, &sa->keys.out) == 0) /* small: never fragmented */
		send_to(sa, b.p, b.len);
}

static void auth_request(struct ike_sa *sa, struct ike_msg *m, uint64_t now)
{
	const char *why = NULL;
	const struct ike_payload *pid = ike_find(m, IKE_PL_IDI), *pa = ike_find(m, IKE_PL_AUTH);
	struct ike_id id;
	struct ike_auth auth;
	if (!pid || !pa || ike_parse_id(pid->body, pid->len, &id, &why) ||
	    ike_parse_auth(pa->body, pa->len, &auth, &why)) {
		reject(sa->ctx, sa, why ? why : "IKE_AUTH request lacks IDi or AUTH");
		auth_fail_response(sa, m->hdr.msg_id);
		sa_unlink_free(sa, false, NULL);
		return;
	}
	const char *bad = NULL;
	struct ike_peer *p = peer_for_auth(sa, m, &id, &auth, &bad);
	bad = p ? check_peer_auth(sa, &p->cfg, true, m, &id, &auth) : bad;
	if (bad) {
		sa->ctx->stats.rx_auth_failed++;
		reject(sa->ctx, sa, bad);
		auth_fail_response(sa, m->hdr.msg_id);
		sa_unlink_free(sa, false, NULL);
		return;
	}
	sa->peer = p;
	keep_their_id(sa, &id);
	const struct ike_peer_cfg *cfg = &p->cfg;
	uint8_t idb[4 + 1024];
	size_t idl;
	if (!my_id_body(cfg, idb, sizeof(idb), &idl)) {
		sa_unlink_free(sa, false, NULL);
		return;
	}
	/* The Child SA (1.2, 2.9), of the child config that fits the proposed selectors. */
	struct ike_child *ch = calloc(1, sizeof(*ch));
	const struct ike_payload *psa = ike_find(m, IKE_PL_SA), *pti = ike_find(m, IKE_PL_TSI),
				 *ptr = ike_find(m, IKE_PL_TSR);
	struct ike_sa_payload sap, ans;
	struct ike_ts_payload tsi, tsr;
	const struct ike_child_cfg *cc = NULL;
	uint16_t child_err = 0;
	const char *child_why = NULL;
	if (!ch) {
		child_err = IKE_N_TEMPORARY_FAILURE;
	} else if (!psa || !pti || !ptr || ike_parse_sa(psa->body, psa->len, &sap, &child_why) ||
		   ike_parse_ts(pti->body, pti->len, &tsi, &child_why) ||
		   ike_parse_ts(ptr->body, ptr->len, &tsr, &child_why)) {
		child_err = IKE_N_INVALID_SYNTAX;
	} else {
		cc = select_child(cfg, &tsi, &tsr, &sap, 0, true, ch, &child_err, &child_why);
		if (cc)
			child_err = 0;
	}
	struct ike_buf b;
	begin_msg(sa, &b, IKE_AUTH, true, m->hdr.msg_id);
	ike_begin_sk(&b, &sa->keys.out);
	ike_put_id(&b, IKE_PL_IDR, idb[0], idb + 4, idl - 4);
	if (put_my_auth(sa, &b, cfg, false, idb, idl)) {
		reject(sa->ctx, sa,
		       "could not make our AUTH (certificate, key, or no common hash)");
		free(ch);
		auth_fail_response(sa, m->hdr.msg_id);
		sa_unlink_free(sa, false, NULL);
		return;
	}
	if (!child_err) {
		ch->spi_in = new_child_spi();
		ch->spi_out = get_be32(ch->prop.spi);
		ch->transport = cc->transport && ike_find_notify(m, IKE_N_USE_TRANSPORT_MODE);
		uint8_t spi[4];
		put_be32(spi, ch->spi_in);
		if (ch->transport)
			ike_put_notify(&b, 0, NULL, 0, IKE_N_USE_TRANSPORT_MODE, NULL, 0);
		ike_prop_answer(&ch->prop, spi, 4, &ans);
		ike_put_sa(&b, &ans);
		ike_put_ts(&b, IKE_PL_TSI, &ch->remote_ts);
		ike_put_ts(&b, IKE_PL_TSR, &ch->local_ts);
	} else {
		ike_put_notify(&b, 0, NULL, 0, child_err, NULL, 0);
		reject(sa->ctx, sa, child_why ? child_why : "Child SA refused");
	}
	if (seal(sa, &b)) {
		free(ch);
		sa_unlink_free(sa, false, NULL);
		return;
	}
	sa->peer_mid = m->hdr.msg_id + 1;
	send_response(sa, &b, m->hdr.msg_id);
	established(sa, now);
	if (!child_err && !ike_derive_child_keys(&ch->prop, sa->keys.prf, sa->keys.sk_d, NULL, 0,
						 sa->ni, sa->ni_len, sa->nr, sa->nr_len, &ch->keys))
		install_child(sa, ch, cc, now);
	else
		free(ch);
}

/* ---- INFORMATIONAL ------------------------------------------------------------------------ */

static void move_children(struct ike_sa *from, struct ike_sa *to);
static struct ike_child *child_by_in(struct ike_sa *sa, uint32_t spi);
static void child_remove(struct ike_sa *sa, struct ike_child *ch);

static void informational_request(struct ike_sa *sa, struct ike_msg *m)
{
	const char *why = NULL;
	struct ike_buf b;
	bool delete_ike = false;
	uint8_t spis[IKE_MAX_DELETE_SPIS * 4];
	unsigned nspis = 0;
	for (unsigned i = 0; i < m->npl; i++) {
		struct ike_delete d;
		if (m->pl[i].type != IKE_PL_DELETE ||
		    ike_parse_delete(m->pl[i].body, m->pl[i].len, &d, &why))
			continue;
		if (d.protocol == IKE_PROTO_IKE) {
			delete_ike = true;
			continue;
		}
		for (unsigned k = 0; k < d.nspi; k++) {
			uint32_t out = get_be32(d.spis + 4 * k);
			for (struct ike_child **pp = &sa->children; *pp; pp = &(*pp)->next)
				if ((*pp)->spi_out == out) {
					struct ike_child *ch = *pp;
					*pp = ch->next;
					if (nspis < IKE_MAX_DELETE_SPIS)
						put_be32(spis + 4 * nspis++, ch->spi_in);
					child_free(sa, ch, true);
					break;
				}
		}
	}
	begin_msg(sa, &b, IKE_INFORMATIONAL, true, m->hdr.msg_id);
	ike_begin_sk(&b, &sa->keys.out);
	/* 1.4.1: answer a Child SA delete with the deletes of our halves. */
	if (!delete_ike && nspis)
		ike_put_delete(&b, IKE_PROTO_ESP, 4, spis, nspis);
	if (seal(sa, &b))
		return;
	sa->peer_mid = m->hdr.msg_id + 1;
	send_response(sa, &b, m->hdr.msg_id);
	if (delete_ike) {
		if (sa->peer_rekeyed) {
			/* A rekey we answered made its successor (2.18): the children live on. */
			struct ike_sa *ns =
			    find_sa(sa->ctx, sa->peer_new_spi_i, sa->peer_new_spi_r, false);
			if (ns)
				move_children(sa, ns);
			sa->replaced = true;
		}
		set_state(sa, IKE_SA_DELETING);
		sa_unlink_free(sa, true, "deleted by the peer");
	}
}

static void informational_response(struct ike_sa *sa, uint64_t now)
{
	enum req_kind k = sa->req_kind;
	request_done(sa);
	if (k == REQ_DELETE_IKE) {
		sa_unlink_free(sa, true, "deleted");
		return;
	}
	if (k == REQ_DELETE_CHILD) {
		struct ike_child *ch = child_by_in(sa, sa->del_spi);
		if (ch)
			child_remove(sa, ch);
	}
	maintenance(sa, now);
}

int ike_terminate(struct ike_ctx *c, const char *name, uint64_t now)
{
	int found = SG_ENOENT;
	struct ike_sa *next;
	for (struct ike_sa *sa = c->sas; sa; sa = next) {
		next = sa->next;
		if (!sa->peer || strcmp(sa->peer->cfg.name, name))
			continue;
		found = 0;
		if (sa->state != IKE_SA_ESTABLISHED) {
			sa_unlink_free(sa, true, "terminated before it was established");
			continue;
		}
		/* A request in flight (DPD) is abandoned: delete takes the window. */
		struct ike_buf b;
		begin_msg(sa, &b, IKE_INFORMATIONAL, false, sa->next_mid);
		ike_begin_sk(&b, &sa->keys.out);
		ike_put_delete(&b, IKE_PROTO_IKE, 0, NULL, 0);
		if (seal(sa, &b) || send_request(sa, &b, REQ_DELETE_IKE, now)) {
			sa_unlink_free(sa, true, "deleted");
			continue;
		}
		sa->next_mid++;
		set_state(sa, IKE_SA_DELETING);
		event(c, IKE_EV_DELETING, sa, "terminated");
	}
	return found;
}

static void send_dpd(struct ike_sa *sa, uint64_t now)
{
	struct ike_buf b;
	begin_msg(sa, &b, IKE_INFORMATIONAL, false, sa->next_mid);
	ike_begin_sk(&b, &sa->keys.out);
	if (seal(sa, &b) == 0 && send_request(sa, &b, REQ_DPD, now) == 0)
		sa->next_mid++;
}

/* ---- rekeying (1.3.2, 1.3.3, 2.8, 2.17, 2.18) ----------------------------------------------- */

static struct ike_child *child_by_in(struct ike_sa *sa, uint32_t spi)
{
	for (struct ike_child *ch = sa->children; ch; ch = ch->next)
		if (ch->spi_in == spi)
			return ch;
	return NULL;
}

static struct ike_child *child_by_out(struct ike_sa *sa, uint32_t spi)
{
	for (struct ike_child *ch = sa->children; ch; ch = ch->next)
		if (ch->spi_out == spi)
			return ch;
	return NULL;
}

static void child_remove(struct ike_sa *sa, struct ike_child *ch)
{
	for (struct ike_child **pp = &sa->children; *pp; pp = &(*pp)->next)
		if (*pp == ch) {
			*pp = ch->next;
			child_free(sa, ch, true);
			return;
		}
}

/* The lower of two nonces as octet strings (2.8.1: "the lowest of the four nonces"). */
static int nonce_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	int r = memcmp(a, b, SG_MIN(al, bl));
	return r ? r : (al > bl) - (al < bl);
}

static void nonce_min(const uint8_t *a, size_t al, const uint8_t *b, size_t bl, uint8_t *out,
		      size_t *outl)
{
	bool a_low = nonce_cmp(a, al, b, bl) <= 0;
	*outl = a_low ? al : bl;
	memcpy(out, a_low ? a : b, *outl);
}

/* A rekeyed IKE SA's children, and those waiting to be created, go to its successor. */
static void move_children(struct ike_sa *from, struct ike_sa *to)
{
	while (from->children) {
		struct ike_child *ch = from->children;
		from->children = ch->next;
		ch->next = to->children;
		to->children = ch;
	}
	for (unsigned i = 0; i < from->nwant; i++)
		if (to->nwant < IKE_MAX_CHILD_CFG && !child_wanted(to, from->want[i]))
			memcpy(to->want[to->nwant++], from->want[i], sizeof(to->want[0]));
	from->nwant = 0;
}

static int start_delete_child(struct ike_sa *sa, struct ike_child *ch, uint64_t now)
{
	struct ike_buf b;
	uint8_t spi[4];
	put_be32(spi, ch->spi_in);
	begin_msg(sa, &b, IKE_INFORMATIONAL, false, sa->next_mid);
	ike_begin_sk(&b, &sa->keys.out);
	ike_put_delete(&b, IKE_PROTO_ESP, 4, spi, 1);
	int err = seal(sa, &b);
	if (!err)
		err = send_request(sa, &b, REQ_DELETE_CHILD, now);
	if (err)
		return err;
	sa->next_mid++;
	sa->del_spi = ch->spi_in;
	ch->replaced = true;
	return 0;
}

static int start_delete_ike(struct ike_sa *sa, uint64_t now)
{
	struct ike_buf b;
	begin_msg(sa, &b, IKE_INFORMATIONAL, false, sa->next_mid);
	ike_begin_sk(&b, &sa->keys.out);
	ike_put_delete(&b, IKE_PROTO_IKE, 0, NULL, 0);
	int err = seal(sa, &b);
	if (!err)
		err = send_request(sa, &b, REQ_DELETE_IKE, now);
	if (err)
		return err;
	sa->next_mid++;
	set_state(sa, IKE_SA_DELETING);
	return 0;
}

static uint16_t child_pfs_group(const struct ike_child_cfg *cc)
{
	for (unsigned i = 0; i < cc->nprops; i++)
		if (cc->props[i].n[IKE_TRANS_KE])
			return cc->props[i].alg[IKE_TRANS_KE][0].id;
	return 0;
}

/* CREATE_CHILD_SA for a Child SA of config cc: the rekey of `old` (1.3.3), or a new one
 * (1.3.1: old NULL). group: the PFS key exchange (0: none). */
static int send_create(struct ike_sa *sa, struct ike_child *old, const struct ike_child_cfg *cc,
		       uint16_t group, uint64_t now)
{
	struct ike_buf b;
	struct ike_sa_payload sap;
	struct ike_ts_payload tsi, tsr;
	uint8_t spi[4], oldspi[4], pub[SG_KE_MAX_PUBLIC];
	sg_ke_free(sa->rk_ke);
	sa->rk_ke = NULL;
	if (group && (!(sa->rk_ke = sg_ke_new(group)) || !sg_ke_public(sa->rk_ke, pub)))
		return SG_ECRYPTO;
	if (!sa->rk_spi)
		sa->rk_spi = new_child_spi();
	if (!sg_random_bytes(sa->rk_nonce, NONCE_LEN))
		return SG_ECRYPTO;
	put_be32(spi, sa->rk_spi);
	begin_msg(sa, &b, IKE_CREATE_CHILD_SA, false, sa->next_mid);
	ike_begin_sk(&b, &sa->keys.out);
	if (old) {
		sa->rk_old = old->spi_in;
		put_be32(oldspi, old->spi_in);
		/* 1.3.3: REKEY_SA names the SA by the SPI we receive on. */
		ike_put_notify(&b, IKE_PROTO_ESP, oldspi, 4, IKE_N_REKEY_SA, NULL, 0);
	}
	if (old ? old->transport : cc->transport)
		ike_put_notify(&b, 0, NULL, 0, IKE_N_USE_TRANSPORT_MODE, NULL, 0);
	ike_prop_offer(cc->props, cc->nprops, spi, 4, &sap);
	ike_put_sa(&b, &sap);
	ike_put_nonce(&b, sa->rk_nonce, NONCE_LEN);
	if (group)
		ike_put_ke(&b, group, pub, sg_ke_public_len(group));
	if (old) {
		tsi = old->local_ts;
		tsr = old->remote_ts;
	} else {
		ts_from_cfg(cc->local_ts, cc->nlocal_ts, &tsi);
		ts_from_cfg(cc->remote_ts, cc->nremote_ts, &tsr);
	}
	ike_put_ts(&b, IKE_PL_TSI, &tsi);
	ike_put_ts(&b, IKE_PL_TSR, &tsr);
	int err = seal(sa, &b);
	if (!err)
		err = send_request(sa, &b, old ? REQ_REKEY_CHILD : REQ_CREATE_CHILD, now);
	if (!err)
		sa->next_mid++;
	return err;
}

static int send_child_rekey(struct ike_sa *sa, struct ike_child *old, uint16_t group, uint64_t now)
{
	return send_create(sa, old, child_cfg_of(sa, old), group, now);
}

static int send_child_create(struct ike_sa *sa, const struct ike_child_cfg *cc, uint16_t group,
			     uint64_t now)
{
	snprintf(sa->mk_child, sizeof(sa->mk_child), "%s", cc->name);
	return send_create(sa, NULL, cc, group, now);
}

static int send_ike_rekey(struct ike_sa *sa, uint16_t group, uint64_t now)
{
	const struct ike_peer_cfg *cfg = &sa->peer->cfg;
	struct ike_buf b;
	struct ike_sa_payload sap;
	uint8_t pub[SG_KE_MAX_PUBLIC];
	sg_ke_free(sa->rk_ke);
	/* 2.18: a rekey of the IKE SA always has a new key exchange. */
	if (!(sa->rk_ke = sg_ke_new(group)) || !sg_ke_public(sa->rk_ke, pub) ||
	    !sg_random_bytes(sa->rk_nonce, NONCE_LEN))
		return SG_ECRYPTO;
	if (sg_is_zero(sa->rk_ike_spi, 8) && !sg_random_bytes(sa->rk_ike_spi, 8))
		return SG_ECRYPTO;
	begin_msg(sa, &b, IKE_CREATE_CHILD_SA, false, sa->next_mid);
	ike_begin_sk(&b, &sa->keys.out);
	ike_prop_offer(cfg->props, cfg->nprops, sa->rk_ike_spi, 8, &sap);
	ike_put_sa(&b, &sap);
	ike_put_nonce(&b, sa->rk_nonce, NONCE_LEN);
	ike_put_ke(&b, group, pub, sg_ke_public_len(group));
	int err = seal(sa, &b);
	if (!err)
		err = send_request(sa, &b, REQ_REKEY_IKE, now);
	if (!err)
		sa->next_mid++;
	return err;
}

/* Starts whatever rekeying or deleting is due, if the request window is free. */
/* Starts whatever rekeying, deleting or creating is due, if the request window is free: one
 * exchange at a time (a window of one), the IKE SA's rekey first. */
static void maintenance(struct ike_sa *sa, uint64_t now)
{
	if (sa->req || sa->state != IKE_SA_ESTABLISHED || sa->replaced)
		return;
	if (sa->rekey_wanted || (sa->rekey_at && now >= sa->rekey_at)) {
		sa->rekey_wanted = false;
		sa->rekey_at = 0;
		memset(sa->rk_ike_spi, 0, 8);
		if (send_ike_rekey(sa, sa->prop.ke, now))
			reject(sa->ctx, sa, "could not start rekeying the IKE SA");
		else
			event(sa->ctx, IKE_EV_IKE_REKEYING, sa, NULL);
		return;
	}
	for (struct ike_child *ch = sa->children; ch; ch = ch->next) {
		if (ch->replaced)
			continue;
		if (ch->delete_wanted || (ch->expire_at && now >= ch->expire_at)) {
			if (start_delete_child(sa, ch, now))
				reject(sa->ctx, sa, "could not delete a Child SA");
			return;
		}
		if (ch->rekey_at && now >= ch->rekey_at) {
			ch->rekey_at = 0;
			sa->rk_spi = 0;
			if (send_child_rekey(sa, ch, child_pfs_group(child_cfg_of(sa, ch)), now)) {
				reject(sa->ctx, sa, "could not start rekeying a Child SA");
			} else {
				struct ike_event ev = {.type = IKE_EV_CHILD_REKEYING,
						       .sa = sa,
						       .child = ch->cfg.name,
						       .spi_old = ch->spi_in};
				event_full(sa->ctx, &ev);
			}
			return;
		}
	}
	while (sa->nwant) {
		char name[64];
		snprintf(name, sizeof(name), "%s", sa->want[0]);
		memmove(sa->want[0], sa->want[1], (size_t)--sa->nwant * sizeof(sa->want[0]));
		const struct ike_child_cfg *cc = find_child_cfg(&sa->peer->cfg, name);
		const char *why = NULL;
		if (!cc)
			why = "the child config was unloaded";
		else if (child_by_cfg(sa, name))
			continue; /* made meanwhile (the peer created it) */
		sa->rk_spi = 0;
		if (!why && send_child_create(sa, cc, child_pfs_group(cc), now))
			why = "could not send CREATE_CHILD_SA";
		if (why) {
			event_child(sa->ctx, IKE_EV_CHILD_FAILED, sa, name, why);
			continue;
		}
		event_child(sa->ctx, IKE_EV_CHILD_CREATING, sa, name, NULL);
		return;
	}
}

int ike_rekey(struct ike_ctx *c, const char *peer, const char *child, bool ike_sa, uint64_t now)
{
	for (struct ike_sa *sa = c->sas; sa; sa = sa->next) {
		if (!sa->peer || strcmp(sa->peer->cfg.name, peer) ||
		    sa->state != IKE_SA_ESTABLISHED || sa->replaced)
			continue;
		bool found = ike_sa;
		if (ike_sa)
			sa->rekey_wanted = true;
		else
			for (struct ike_child *ch = sa->children; ch; ch = ch->next)
				if (!ch->replaced && (!child || !strcmp(ch->cfg.name, child))) {
					ch->rekey_at = now; /* due now: started in turn */
					found = true;
				}
		if (!found)
			continue;
		bool busy = sa->req != NULL;
		maintenance(sa, now);
		return busy ? SG_EAGAIN : 0;
	}
	return SG_ENOENT;
}

int ike_terminate_child(struct ike_ctx *c, const char *peer, const char *child, uint64_t now)
{
	int found = SG_ENOENT;
	for (struct ike_sa *sa = c->sas; sa; sa = sa->next) {
		if (!sa->peer || strcmp(sa->peer->cfg.name, peer) ||
		    sa->state != IKE_SA_ESTABLISHED || sa->replaced)
			continue;
		for (struct ike_child *ch = sa->children; ch; ch = ch->next)
			if (!ch->replaced && !strcmp(ch->cfg.name, child)) {
				ch->delete_wanted = true;
				found = 0;
			}
		maintenance(sa, now);
	}
	return found;
}

void ike_child_expired(struct ike_sa *sa, uint32_t spi_in, bool hard, uint64_t now)
{
	struct ike_child *ch = child_by_in(sa, spi_in);
	if (!ch || ch->replaced)
		return;
	if (hard)
		ch->expire_at = now;
	else
		ch->rekey_at = now;
	maintenance(sa, now);
}

/* An error notify in a CREATE_CHILD_SA response, or 0. */
static uint16_t error_notify(const struct ike_msg *m, struct ike_notify *n)
{
	const char *why;
	for (unsigned i = 0; i < m->npl; i++)
		if (m->pl[i].type == IKE_PL_NOTIFY &&
		    !ike_parse_notify(m->pl[i].body, m->pl[i].len, n, &why) &&
		    IKE_N_IS_ERROR(n->type))
			return n->type;
	return 0;
}

static void child_answer_error(struct ike_sa *sa, uint32_t mid, uint16_t type, const uint8_t *data,
			       size_t len, const char *why)
{
	struct ike_buf b;
	begin_msg(sa, &b, IKE_CREATE_CHILD_SA, true, mid);
	ike_begin_sk(&b, &sa->keys.out);
	ike_put_notify(&b, 0, NULL, 0, type, data, len);
	if (seal(sa, &b) == 0) {
		sa->peer_mid = mid + 1;
		send_response(sa, &b, mid);
	}
	reject(sa->ctx, sa, why);
}

static void ike_rekey_request(struct ike_sa *sa, struct ike_msg *m,
			      const struct ike_sa_payload *sap, const uint8_t *ni, size_t ni_len,
			      uint64_t now)
{
	struct ike_ctx *c = sa->ctx;
	const struct ike_peer_cfg *cfg = &sa->peer->cfg;
	const char *why = NULL;
	const struct ike_payload *pke = ike_find(m, IKE_PL_KE);
	struct ike_ke ke;
	struct ike_chosen ch;
	uint32_t mid = m->hdr.msg_id;
	if (sa->replaced || sa->state != IKE_SA_ESTABLISHED) {
		child_answer_error(sa, mid, IKE_N_TEMPORARY_FAILURE, NULL, 0,
				   "IKE SA rekey refused: this IKE SA is being replaced");
		return;
	}
	if (!pke || ike_parse_ke(pke->body, pke->len, &ke, &why)) {
		child_answer_error(sa, mid, IKE_N_INVALID_SYNTAX, NULL, 0,
				   why ? why : "IKE SA rekey without a KE payload");
		return;
	}
	if (ike_prop_choose(cfg->props, cfg->nprops, sap, ke.group, true, &ch, &why) ||
	    ch.spi_len != 8) {
		child_answer_error(sa, mid, IKE_N_NO_PROPOSAL_CHOSEN, NULL, 0, why);
		return;
	}
	if (ke.group != ch.ke) {
		uint8_t g[2] = {(uint8_t)(ch.ke >> 8), (uint8_t)ch.ke};
		child_answer_error(sa, mid, IKE_N_INVALID_KE_PAYLOAD, g, 2,
				   "IKE SA rekey with another group: asked for ours");
		return;
	}
	struct ike_sa *ns = sa_new(c, false);
	uint8_t gir[SG_KE_MAX_SHARED], pub[SG_KE_MAX_PUBLIC];
	if (!ns)
		return;
	set_state(ns, IKE_SA_ESTABLISHED);
	ns->peer = sa->peer;
	ns->remote = sa->remote;
	ns->local_port = sa->local_port;
	ns->frag = sa->frag; /* RFC 7383 2.3: negotiated once, kept across rekeys */
	ns->their_id = sa->their_id;
	ns->prop = ch;
	memcpy(ns->spi_i, ch.spi, 8);
	memcpy(ns->ni, ni, ni_len);
	ns->ni_len = ni_len;
	ns->nr_len = NONCE_LEN;
	struct sg_ke *k = sg_ke_new(ch.ke);
	int err = !k || !sg_random_bytes(ns->spi_r, 8) || !sg_random_bytes(ns->nr, NONCE_LEN) ||
		  !sg_ke_public(k, pub);
	if (!err)
		err = sg_ke_derive(k, ke.data, ke.len, gir);
	if (!err)
		err = ike_derive_sa_keys(&ch, false, gir, sg_ke_shared_len(ch.ke), ns->ni,
					 ns->ni_len, ns->nr, ns->nr_len, ns->spi_i, ns->spi_r,
					 sa->prop.prf, sa->keys.sk_d, &ns->keys);
	sg_memzero(gir, sizeof(gir));
	if (err) {
		sg_ke_free(k);
		sa_unlink_free(ns, false, NULL);
		child_answer_error(sa, mid, IKE_N_INVALID_SYNTAX, NULL, 0,
				   "IKE SA rekey: the peer's KE value is invalid");
		return;
	}
	struct ike_buf b;
	struct ike_sa_payload ans;
	begin_msg(sa, &b, IKE_CREATE_CHILD_SA, true, mid);
	ike_begin_sk(&b, &sa->keys.out);
	ike_prop_answer(&ch, ns->spi_r, 8, &ans);
	ike_put_sa(&b, &ans);
	ike_put_nonce(&b, ns->nr, ns->nr_len);
	ike_put_ke(&b, ch.ke, pub, sg_ke_public_len(ch.ke));
	sg_ke_free(k);
	if (seal(sa, &b)) {
		sa_unlink_free(ns, false, NULL);
		return;
	}
	sa->peer_mid = mid + 1;
	send_response(sa, &b, mid);
	ns->keyed = true;
	ns->last_rx = now;
	ns->established_at = now;
	ns->rekey_at = cfg->rekey_time_ns ? now + jitter(cfg->rekey_time_ns) : 0;
	struct ike_event rev = {.type = IKE_EV_IKE_REKEYED, .sa = ns, .old = sa};
	event_full(c, &rev);
	if (sa->req_kind == REQ_REKEY_IKE) {
		/* 2.8.2: both sides rekey at once; settled when our own exchange completes. */
		memcpy(sa->peer_new_spi_i, ns->spi_i, 8);
		memcpy(sa->peer_new_spi_r, ns->spi_r, 8);
		nonce_min(ns->ni, ns->ni_len, ns->nr, ns->nr_len, sa->peer_nmin,
			  &sa->peer_nmin_len);
		sa->peer_rekeyed = true;
		return;
	}
	/* The peer deletes the old IKE SA; the children live on in the new one. */
	move_children(sa, ns);
	sa->replaced = true;
}

static void child_create_request(struct ike_sa *sa, struct ike_msg *m, uint64_t now)
{
	const struct ike_child_cfg *cc = NULL;
	const char *why = NULL;
	uint32_t mid = m->hdr.msg_id;
	const struct ike_payload *psa = ike_find(m, IKE_PL_SA), *pn = ike_find(m, IKE_PL_NONCE),
				 *pke = ike_find(m, IKE_PL_KE), *pti = ike_find(m, IKE_PL_TSI),
				 *ptr = ike_find(m, IKE_PL_TSR),
				 *prk = ike_find_notify(m, IKE_N_REKEY_SA);
	struct ike_sa_payload sap;
	if (!psa || !pn || ike_parse_sa(psa->body, psa->len, &sap, &why) ||
	    ike_parse_nonce(pn->body, pn->len, &why)) {
		child_answer_error(sa, mid, IKE_N_INVALID_SYNTAX, NULL, 0,
				   why ? why : "CREATE_CHILD_SA without SA or Nonce");
		return;
	}
	if (sap.props[0].protocol == IKE_PROTO_IKE) {
		ike_rekey_request(sa, m, &sap, pn->body, pn->len, now);
		return;
	}
	struct ike_child *old = NULL;
	if (prk) {
		struct ike_notify n;
		if (ike_parse_notify(prk->body, prk->len, &n, &why) || n.spi_len != 4 ||
		    !(old = child_by_out(sa, get_be32(n.spi))) || old->replaced) {
			child_answer_error(sa, mid, IKE_N_CHILD_SA_NOT_FOUND, NULL, 0,
					   "rekey of a Child SA we do not have");
			return;
		}
	}
	struct ike_child *ch = calloc(1, sizeof(*ch));
	struct ike_ts_payload tsi, tsr;
	struct ike_ke ke = {0};
	if (!ch)
		return;
	if (!pti || !ptr || ike_parse_ts(pti->body, pti->len, &tsi, &why) ||
	    ike_parse_ts(ptr->body, ptr->len, &tsr, &why) ||
	    (pke && ike_parse_ke(pke->body, pke->len, &ke, &why))) {
		free(ch);
		child_answer_error(sa, mid, IKE_N_INVALID_SYNTAX, NULL, 0,
				   why ? why : "CREATE_CHILD_SA without traffic selectors");
		return;
	}
	if (old) {
		/* A rekey keeps the child's configuration (2.8). */
		cc = child_cfg_of(sa, old);
		if (ike_prop_choose(cc->props, cc->nprops, &sap, ke.group,
				    child_pfs_group(cc) != 0, &ch->prop, &why) ||
		    ch->prop.spi_len != 4) {
			free(ch);
			child_answer_error(sa, mid, IKE_N_NO_PROPOSAL_CHOSEN, NULL, 0, why);
			return;
		}
		ts_narrow(&tsi, cc->remote_ts, cc->nremote_ts, &ch->remote_ts);
		ts_narrow(&tsr, cc->local_ts, cc->nlocal_ts, &ch->local_ts);
		if (!ch->remote_ts.n || !ch->local_ts.n) {
			free(ch);
			child_answer_error(sa, mid, IKE_N_TS_UNACCEPTABLE, NULL, 0,
					   "traffic selectors do not overlap the configured ones");
			return;
		}
	} else {
		uint16_t err_type;
		cc = select_child(&sa->peer->cfg, &tsi, &tsr, &sap, ke.group, false, ch, &err_type,
				  &why);
		if (!cc) {
			free(ch);
			child_answer_error(sa, mid, err_type, NULL, 0, why);
			return;
		}
	}
	if (ch->prop.ke && ke.group != ch->prop.ke) {
		uint8_t g[2] = {(uint8_t)(ch->prop.ke >> 8), (uint8_t)ch->prop.ke};
		free(ch);
		child_answer_error(sa, mid, IKE_N_INVALID_KE_PAYLOAD, g, 2,
				   "Child SA with another PFS group: asked for ours");
		return;
	}
	uint8_t nr[NONCE_LEN], gir[SG_KE_MAX_SHARED], pub[SG_KE_MAX_PUBLIC];
	size_t gl = 0;
	struct sg_ke *k = NULL;
	int err = !sg_random_bytes(nr, sizeof(nr));
	if (!err && ch->prop.ke) {
		k = sg_ke_new(ch->prop.ke);
		err = !k || !sg_ke_public(k, pub) || sg_ke_derive(k, ke.data, ke.len, gir);
		gl = sg_ke_shared_len(ch->prop.ke);
	}
	if (!err)
		err = ike_derive_child_keys(&ch->prop, sa->keys.prf, sa->keys.sk_d, gl ? gir : NULL,
					    gl, pn->body, pn->len, nr, sizeof(nr), &ch->keys);
	sg_memzero(gir, sizeof(gir));
	if (err) {
		sg_ke_free(k);
		free(ch);
		child_answer_error(sa, mid, IKE_N_INVALID_SYNTAX, NULL, 0,
				   "CREATE_CHILD_SA: bad KE value or key derivation failed");
		return;
	}
	ch->spi_in = new_child_spi();
	ch->spi_out = get_be32(ch->prop.spi);
	ch->transport = cc->transport && ike_find_notify(m, IKE_N_USE_TRANSPORT_MODE);
	ch->we_made = false;
	struct ike_buf b;
	struct ike_sa_payload ans;
	uint8_t spi[4];
	put_be32(spi, ch->spi_in);
	begin_msg(sa, &b, IKE_CREATE_CHILD_SA, true, mid);
	ike_begin_sk(&b, &sa->keys.out);
	if (ch->transport)
		ike_put_notify(&b, 0, NULL, 0, IKE_N_USE_TRANSPORT_MODE, NULL, 0);
	ike_prop_answer(&ch->prop, spi, 4, &ans);
	ike_put_sa(&b, &ans);
	ike_put_nonce(&b, nr, sizeof(nr));
	if (k)
		ike_put_ke(&b, ch->prop.ke, pub, sg_ke_public_len(ch->prop.ke));
	sg_ke_free(k);
	ike_put_ts(&b, IKE_PL_TSI, &ch->remote_ts);
	ike_put_ts(&b, IKE_PL_TSR, &ch->local_ts);
	if (seal(sa, &b)) {
		ike_child_keys_wipe(&ch->keys);
		free(ch);
		return;
	}
	sa->peer_mid = mid + 1;
	send_response(sa, &b, mid);
	uint32_t old_spi = old ? old->spi_in : 0, new_spi = ch->spi_in;
	if (old) {
		if (sa->req_kind == REQ_REKEY_CHILD && sa->rk_old == old->spi_in) {
			/* 2.8.1: we are rekeying it too; settled when our exchange completes. */
			old->peer_new_spi = ch->spi_in;
			nonce_min(pn->body, pn->len, nr, sizeof(nr), old->peer_nmin,
				  &old->peer_nmin_len);
		} else {
			old->replaced = true; /* the peer deletes it */
		}
	}
	install_child(sa, ch, cc, now);
	if (old_spi) {
		struct ike_event ev = {.type = IKE_EV_CHILD_REKEYED,
				       .sa = sa,
				       .child = cc->name,
				       .spi_old = old_spi,
				       .spi_new = new_spi};
		event_full(sa->ctx, &ev);
	}
}

/* The group an INVALID_KE_PAYLOAD answer to our CREATE_CHILD_SA asks for, if the child's
 * proposals offer it and it is not the one we sent (1.3), else 0. */
static uint16_t child_retry_group(const struct ike_sa *sa, const struct ike_child_cfg *cc,
				  const struct ike_notify *n)
{
	if (n->len != 2 || !sa->rk_ke)
		return 0;
	uint16_t g = (uint16_t)(n->data[0] << 8 | n->data[1]);
	for (unsigned i = 0; i < cc->nprops; i++)
		for (unsigned j = 0; j < cc->props[i].n[IKE_TRANS_KE]; j++)
			if (cc->props[i].alg[IKE_TRANS_KE][j].id == g)
				return g != sg_ke_group(sa->rk_ke) ? g : 0;
	return 0;
}

/* The responder's answer to our CREATE_CHILD_SA (a new Child SA or a rekey), checked against
 * what we offered (cc's proposals, our KE and nonce, the selectors we proposed: the answer may
 * only narrow them) and keyed. The new child (SPIs and keys set, not installed), or NULL with
 * *why. */
static struct ike_child *child_answer(struct ike_sa *sa, struct ike_msg *m,
				      const struct ike_child_cfg *cc,
				      const struct ike_ts_payload *ours_i,
				      const struct ike_ts_payload *ours_r, uint8_t *nmin,
				      size_t *nmin_len, const char **why)
{
	const struct ike_payload *psa = ike_find(m, IKE_PL_SA), *pn = ike_find(m, IKE_PL_NONCE),
				 *pke = ike_find(m, IKE_PL_KE), *pti = ike_find(m, IKE_PL_TSI),
				 *ptr = ike_find(m, IKE_PL_TSR);
	struct ike_sa_payload sap;
	struct ike_ke ke = {0};
	struct ike_child *ch = calloc(1, sizeof(*ch));
	uint8_t gir[SG_KE_MAX_SHARED];
	size_t gl = 0;
	*why = NULL;
	if (!ch) {
		*why = "out of memory";
		return NULL;
	}
	if (!psa || !pn || !pti || !ptr || ike_parse_sa(psa->body, psa->len, &sap, why) ||
	    ike_parse_nonce(pn->body, pn->len, why) ||
	    ike_prop_accept(cc->props, cc->nprops, &sap, &ch->prop, why) ||
	    ch->prop.spi_len != 4 || ike_parse_ts(pti->body, pti->len, &ch->local_ts, why) ||
	    ike_parse_ts(ptr->body, ptr->len, &ch->remote_ts, why) ||
	    (pke && ike_parse_ke(pke->body, pke->len, &ke, why)) ||
	    (ch->prop.ke != 0) != (sa->rk_ke != NULL) ||
	    (ch->prop.ke && (ke.group != ch->prop.ke || sg_ke_group(sa->rk_ke) != ch->prop.ke)) ||
	    !ts_within(&ch->local_ts, ours_i) || !ts_within(&ch->remote_ts, ours_r)) {
		free(ch);
		if (!*why)
			*why = "bad CREATE_CHILD_SA response";
		return NULL;
	}
	if (ch->prop.ke) {
		gl = sg_ke_shared_len(ch->prop.ke);
		if (sg_ke_derive(sa->rk_ke, ke.data, ke.len, gir)) {
			free(ch);
			*why = "CREATE_CHILD_SA: the peer's KE value is invalid";
			return NULL;
		}
	}
	int err = ike_derive_child_keys(&ch->prop, sa->keys.prf, sa->keys.sk_d, gl ? gir : NULL, gl,
					sa->rk_nonce, NONCE_LEN, pn->body, pn->len, &ch->keys);
	sg_memzero(gir, sizeof(gir));
	sg_ke_free(sa->rk_ke);
	sa->rk_ke = NULL;
	if (err) {
		free(ch);
		*why = "Child SA key derivation failed";
		return NULL;
	}
	if (nmin)
		nonce_min(sa->rk_nonce, NONCE_LEN, pn->body, pn->len, nmin, nmin_len);
	ch->spi_in = sa->rk_spi;
	ch->spi_out = get_be32(ch->prop.spi);
	ch->we_made = true;
	return ch;
}

static void child_rekey_response(struct ike_sa *sa, struct ike_msg *m, uint64_t now)
{
	const char *why = NULL;
	struct ike_notify n;
	struct ike_child *old = child_by_in(sa, sa->rk_old);
	const struct ike_child_cfg *cc = old ? child_cfg_of(sa, old) : NULL;
	uint16_t err_type = error_notify(m, &n);
	request_done(sa);
	uint16_t g = err_type == IKE_N_INVALID_KE_PAYLOAD && old ? child_retry_group(sa, cc, &n) : 0;
	if (g) {
		event(sa->ctx, IKE_EV_INVALID_KE, sa, "Child SA rekey: peer asked for another group");
		if (send_child_rekey(sa, old, g, now) == 0)
			return;
	}
	if (err_type || !old) {
		/* TEMPORARY_FAILURE, CHILD_SA_NOT_FOUND (the peer deleted it meanwhile), ...: try
		 * again later if the child is still there (2.25). */
		reject(sa->ctx, sa, "Child SA rekey refused by the peer");
		if (old)
			old->rekey_at = now + 10ull * 1000000000ull;
		return;
	}
	uint8_t mine[IKE_NONCE_MAX]; /* the lowest nonce of our exchange */
	size_t ml = 0;
	struct ike_child *ch =
	    child_answer(sa, m, cc, &old->local_ts, &old->remote_ts, mine, &ml, &why);
	if (!ch) {
		reject(sa->ctx, sa, why);
		old->rekey_at = now + 10ull * 1000000000ull;
		return;
	}
	ch->transport = old->transport;
	install_child(sa, ch, cc, now);
	struct ike_event ev = {.type = IKE_EV_CHILD_REKEYED,
			       .sa = sa,
			       .child = cc->name,
			       .spi_old = old->spi_in,
			       .spi_new = ch->spi_in};
	event_full(sa->ctx, &ev);
	/* 2.8.1: with a collision, the exchange with the lowest nonce made the redundant SA, and
	 * its initiator deletes that; the other side deletes the old SA. */
	if (old->peer_new_spi) {
		event(sa->ctx, IKE_EV_REKEY_COLLISION, sa, "simultaneous Child SA rekey");
		if (nonce_cmp(mine, ml, old->peer_nmin, old->peer_nmin_len) < 0) {
			old->replaced = true; /* the peer deletes the old one */
			if (start_delete_child(sa, ch, now))
				child_remove(sa, ch);
			return;
		}
	}
	if (start_delete_child(sa, old, now))
		child_remove(sa, old);
}

/* The answer to our CREATE_CHILD_SA for a new Child SA (sa->mk_child). */
static void child_create_response(struct ike_sa *sa, struct ike_msg *m, uint64_t now)
{
	const char *why = NULL;
	struct ike_notify n;
	char name[64];
	snprintf(name, sizeof(name), "%s", sa->mk_child);
	sa->mk_child[0] = 0;
	const struct ike_child_cfg *cc = find_child_cfg(&sa->peer->cfg, name);
	uint16_t err_type = error_notify(m, &n);
	request_done(sa);
	uint16_t g = err_type == IKE_N_INVALID_KE_PAYLOAD && cc ? child_retry_group(sa, cc, &n) : 0;
	if (g) {
		event(sa->ctx, IKE_EV_INVALID_KE, sa, "new Child SA: peer asked for another group");
		if (send_child_create(sa, cc, g, now) == 0)
			return;
	}
	struct ike_child *ch = NULL;
	if (!cc) {
		why = "the child config was unloaded";
	} else if (err_type) {
		why = notify_name(err_type);
	} else {
		struct ike_ts_payload ours_i, ours_r;
		ts_from_cfg(cc->local_ts, cc->nlocal_ts, &ours_i);
		ts_from_cfg(cc->remote_ts, cc->nremote_ts, &ours_r);
		ch = child_answer(sa, m, cc, &ours_i, &ours_r, NULL, NULL, &why);
	}
	if (!ch) {
		reject(sa->ctx, sa, why);
		event_child(sa->ctx, IKE_EV_CHILD_FAILED, sa, name, why);
	} else {
		ch->transport = cc->transport && ike_find_notify(m, IKE_N_USE_TRANSPORT_MODE);
		install_child(sa, ch, cc, now);
	}
	maintenance(sa, now);
}

static void ike_rekey_response(struct ike_sa *sa, struct ike_msg *m, uint64_t now)
{
	struct ike_ctx *c = sa->ctx;
	const struct ike_peer_cfg *cfg = &sa->peer->cfg;
	const char *why = NULL;
	struct ike_notify n;
	uint16_t err_type = error_notify(m, &n);
	request_done(sa);
	struct ike_sa *peer_new =
	    sa->peer_rekeyed ? find_sa(c, sa->peer_new_spi_i, sa->peer_new_spi_r, false) : NULL;
	if (err_type == IKE_N_INVALID_KE_PAYLOAD && n.len == 2) {
		uint16_t g = (uint16_t)(n.data[0] << 8 | n.data[1]);
		if (group_offered(cfg, g) && g != sg_ke_group(sa->rk_ke)) {
			event(c, IKE_EV_INVALID_KE, sa,
			      "IKE SA rekey: peer asked for another group");
			if (send_ike_rekey(sa, g, now) == 0)
				return;
		}
	}
	struct ike_sa_payload sap;
	struct ike_ke ke;
	struct ike_chosen ch;
	const struct ike_payload *psa = ike_find(m, IKE_PL_SA), *pn = ike_find(m, IKE_PL_NONCE),
				 *pke = ike_find(m, IKE_PL_KE);
	if (err_type || !psa || !pn || !pke || ike_parse_sa(psa->body, psa->len, &sap, &why) ||
	    ike_parse_nonce(pn->body, pn->len, &why) ||
	    ike_parse_ke(pke->body, pke->len, &ke, &why) ||
	    ike_prop_accept(cfg->props, cfg->nprops, &sap, &ch, &why) || ch.spi_len != 8 ||
	    ke.group != ch.ke || ch.ke != sg_ke_group(sa->rk_ke)) {
		reject(c, sa,
		       err_type ? "IKE SA rekey refused by the peer"
				: (why ? why : "bad IKE SA rekey response"));
		if (peer_new) {
			/* The peer's rekey won by default: the children go with it. */
			move_children(sa, peer_new);
			sa->replaced = true;
		} else {
			sa->rekey_at = now + 10ull * 1000000000ull;
		}
		return;
	}
	struct ike_sa *ns = sa_new(c, true);
	uint8_t gir[SG_KE_MAX_SHARED];
	if (!ns)
		return;
	ns->peer = sa->peer;
	ns->remote = sa->remote;
	ns->local_port = sa->local_port;
	ns->frag = sa->frag; /* RFC 7383 2.3: negotiated once, kept across rekeys */
	ns->their_id = sa->their_id;
	ns->prop = ch;
	memcpy(ns->spi_i, sa->rk_ike_spi, 8);
	memcpy(ns->spi_r, ch.spi, 8);
	memcpy(ns->ni, sa->rk_nonce, NONCE_LEN);
	ns->ni_len = NONCE_LEN;
	memcpy(ns->nr, pn->body, pn->len);
	ns->nr_len = pn->len;
	int err = sg_ke_derive(sa->rk_ke, ke.data, ke.len, gir);
	if (!err)
		err = ike_derive_sa_keys(&ch, true, gir, sg_ke_shared_len(ch.ke), ns->ni,
					 ns->ni_len, ns->nr, ns->nr_len, ns->spi_i, ns->spi_r,
					 sa->prop.prf, sa->keys.sk_d, &ns->keys);
	sg_memzero(gir, sizeof(gir));
	sg_ke_free(sa->rk_ke);
	sa->rk_ke = NULL;
	if (err) {
		sa_unlink_free(ns, false, NULL);
		reject(c, sa, "IKE SA rekey: the peer's KE value is invalid");
		return;
	}
	set_state(ns, IKE_SA_ESTABLISHED);
	ns->keyed = true;
	ns->last_rx = now;
	ns->established_at = now;
	ns->rekey_at = cfg->rekey_time_ns ? now + jitter(cfg->rekey_time_ns) : 0;
	struct ike_event rev = {.type = IKE_EV_IKE_REKEYED, .sa = ns, .old = sa};
	event_full(c, &rev);
	if (peer_new) {
		/* 2.8.2: the new SA made with the lowest nonce is redundant; its initiator
		 * deletes it, and the other side deletes the old one. */
		uint8_t mine[IKE_NONCE_MAX];
		size_t ml;
		nonce_min(ns->ni, ns->ni_len, ns->nr, ns->nr_len, mine, &ml);
		event(c, IKE_EV_REKEY_COLLISION, ns, "simultaneous IKE SA rekey");
		if (nonce_cmp(mine, ml, sa->peer_nmin, sa->peer_nmin_len) < 0) {
			move_children(sa, peer_new);
			sa->replaced = true; /* the peer deletes the old one */
			ns->replaced = true; /* no IKE_DOWN for the redundant one either */
			if (start_delete_ike(ns, now))
				sa_unlink_free(ns, false, NULL);
			return;
		}
	}
	if (peer_new)
		peer_new->replaced = true; /* redundant: the peer deletes it */
	move_children(sa, ns);
	sa->replaced = true;
	if (start_delete_ike(sa, now))
		sa_unlink_free(sa, true, "rekeyed");
}

/* ---- receive ------------------------------------------------------------------------------- */

/* RFC 7383 2.6: one SKF message. Each fragment is authenticated and decrypted on its own and
 * kept; when all `total` are there, their contents joined are parsed as the inner chain into m
 * (*whole then holds the bytes m points into, for the caller to free). 1: kept or a duplicate,
 * nothing to do yet; 0: m is complete; else an error with *why. */
static int take_fragment(struct ike_sa *sa, struct ike_msg *m, uint8_t *buf, bool response,
			 uint8_t **whole, const char **why)
{
	const struct ike_payload *p = &m->pl[m->npl - 1];
	struct ike_skf f;
	const uint8_t *content;
	size_t len;
	uint8_t first;
	int err = ike_parse_skf(p->body, p->len, &f, why);
	if (err)
		return err;
	if (f.total > FRAG_MAX) {
		*why = "more than 32 fragments";
		return SG_ERANGE;
	}
	struct frag_rx *r = &sa->rx_frag[response ? 1 : 0];
	/* A fragment of a message already reassembled, or of an older set: nothing to do. */
	if (r->active && r->mid == m->hdr.msg_id && r->total == f.total && r->part[f.number - 1])
		return 1;
	err = ike_open_skf(m, buf, &sa->keys.in, &content, &len, &first, why);
	if (err)
		return err;
	/* 2.6.2: a set with another total (the sender changed its fragment size) replaces the
	 * one being collected; so does a later message. */
	if (r->active && (r->mid != m->hdr.msg_id || r->total != f.total))
		frag_reset(r);
	if (r->bytes + len > FRAG_BYTES) {
		frag_reset(r);
		*why = "fragments add up to more than 64 KiB";
		return SG_ERANGE;
	}
	uint8_t *copy = dup_bytes(content, len);
	if (!copy) {
		*why = "out of memory";
		return SG_ENOMEM;
	}
	r->active = true;
	r->mid = m->hdr.msg_id;
	r->total = f.total;
	r->part[f.number - 1] = copy;
	r->len[f.number - 1] = len;
	r->bytes += len;
	r->have++;
	if (f.number == 1)
		r->first = first;
	if (r->have < r->total)
		return 1;
	uint8_t *all = malloc(r->bytes ? r->bytes : 1);
	if (!all) {
		frag_reset(r);
		*why = "out of memory";
		return SG_ENOMEM;
	}
	size_t at = 0;
	for (unsigned i = 0; i < r->total; i++) {
		memcpy(all + at, r->part[i], r->len[i]);
		at += r->len[i];
	}
	first = r->first;
	frag_reset(r);
	err = ike_parse_chain(m, first, all, at, 0, why);
	if (err) {
		free(all);
		return err;
	}
	sa->ctx->stats.reassembled++;
	*whole = all;
	return 0;
}

/* An authenticated, decrypted request or response after IKE_SA_INIT. */
static void dispatch(struct ike_sa *sa, struct ike_msg *m, bool response, uint16_t port,
		     const struct ike_endpoint *from, uint64_t now)
{
	struct ike_ctx *c = sa->ctx;
	sa->last_rx = now;
	/* RFC 3948 / 2.23: the peer's address follows its authenticated messages. */
	if (port == IKE_NATT_PORT) {
		sa->remote = *from;
		sa->local_port = IKE_NATT_PORT;
	}
	switch (m->hdr.exchange) {
	case IKE_AUTH:
		if (response && sa->req_kind == REQ_AUTH)
			auth_response(sa, m, now);
		else if (!response && !sa->initiator && sa->state == IKE_SA_CONNECTING)
			auth_request(sa, m, now);
		else
			reject(c, sa, "unexpected IKE_AUTH");
		return;
	case IKE_INFORMATIONAL:
		if (sa->state < IKE_SA_ESTABLISHED) {
			reject(c, sa, "INFORMATIONAL before the IKE SA is established");
			return;
		}
		if (response)
			informational_response(sa, now);
		else
			informational_request(sa, m);
		return;
	case IKE_CREATE_CHILD_SA:
		if (sa->state < IKE_SA_ESTABLISHED) {
			reject(c, sa, "CREATE_CHILD_SA before the IKE SA is established");
			return;
		}
		if (response && sa->req_kind == REQ_REKEY_CHILD)
			child_rekey_response(sa, m, now);
		else if (response && sa->req_kind == REQ_CREATE_CHILD)
			child_create_response(sa, m, now);
		else if (response && sa->req_kind == REQ_REKEY_IKE)
			ike_rekey_response(sa, m, now);
		else if (!response)
			child_create_request(sa, m, now);
		else
			reject(c, sa, "unexpected CREATE_CHILD_SA response");
		return;
	default:
		reject(c, sa, "unknown exchange type");
		return;
	}
}

void ike_receive(struct ike_ctx *c, uint64_t now, uint16_t port, const struct ike_endpoint *from,
		 uint8_t *buf, size_t len)
{
	struct ike_msg m;
	const char *why = NULL;
	c->stats.rx++;
	if (ike_parse(buf, len, &m, &why)) {
		c->stats.rx_invalid++;
		reject(c, NULL, why);
		return;
	}
	bool response = m.hdr.flags & IKE_FLAG_RESPONSE;
	bool from_initiator = m.hdr.flags & IKE_FLAG_INITIATOR;
	if (m.hdr.exchange == IKE_SA_INIT && !response) {
		if (!from_initiator) {
			c->stats.rx_invalid++;
			reject(c, NULL, "IKE_SA_INIT request without the initiator flag");
			return;
		}
		init_request(c, port, from, &m, now);
		return;
	}
	struct ike_sa *sa = m.hdr.exchange == IKE_SA_INIT
				? find_sa(c, m.hdr.spi_i, zero_spi, false)
				: find_sa(c, m.hdr.spi_i, m.hdr.spi_r, false);
	if (!sa || !sa->keyed) {
		if (!sa && m.hdr.exchange == IKE_SA_INIT)
			sa = find_sa(c, m.hdr.spi_i, zero_spi, true);
		if (!sa || (m.hdr.exchange != IKE_SA_INIT)) {
			c->stats.rx_no_sa++;
			reject(c, NULL, "message for no IKE SA we know");
			return;
		}
	}
	/* The I flag says who sent it: the original initiator or not (3.1). */
	if (from_initiator == sa->initiator) {
		c->stats.rx_invalid++;
		reject(c, sa, "initiator flag does not match the SA's roles");
		return;
	}
	if (m.hdr.exchange == IKE_SA_INIT) {
		if (!response || !sa->initiator || sa->state != IKE_SA_CONNECTING ||
		    sa->req_kind != REQ_INIT || m.hdr.msg_id != 0) {
			reject(c, sa, "unexpected IKE_SA_INIT response");
			return;
		}
		init_response(sa, &m, now);
		return;
	}
	if (response) {
		if (!sa->req || m.hdr.msg_id != sa->next_mid - 1) {
			reject(c, sa, "response to no request in flight");
			return;
		}
	} else if (m.hdr.msg_id != sa->peer_mid) {
		/* 2.3: a retransmitted request gets the cached response again; of a fragmented
		 * one, only its fragment 1 does (RFC 7383 2.6.1). */
		if (sa->have_resp && m.hdr.msg_id == sa->resp_mid) {
			struct ike_skf f;
			const struct ike_payload *last = m.npl ? &m.pl[m.npl - 1] : NULL;
			if (last && last->type == IKE_PL_SKF &&
			    (ike_parse_skf(last->body, last->len, &f, &why) || f.number != 1))
				return;
			send_stored(sa, sa->resp, sa->resp_len, sa->resp_packed);
			return;
		}
		reject(c, sa, "request outside the message ID window");
		return;
	}
	uint8_t last = m.npl ? m.pl[m.npl - 1].type : IKE_PL_NONE;
	if (last != IKE_PL_SK && !(last == IKE_PL_SKF && sa->frag_ok)) {
		c->stats.rx_invalid++;
		reject(c, sa, "exchange after IKE_SA_INIT without an SK payload");
		return;
	}
	uint8_t *whole = NULL; /* a message reassembled from fragments */
	int err = last == IKE_PL_SK ? ike_open_sk(&m, buf, &sa->keys.in, &why)
				    : take_fragment(sa, &m, buf, response, &whole, &why);
	if (err == 1)
		return; /* a fragment kept for later, or a duplicate */
	if (err) {
		/* 2.21.2: integrity failures are dropped without a reply. */
		c->stats.rx_invalid++;
		reject(c, sa, why);
		return;
	}
	dispatch(sa, &m, response, port, from, now);
	free(whole);
}

/* ---- timers ----------------------------------------------------------------------------- */

void ike_traffic_seen(struct ike_sa *sa, uint64_t now)
{
	sa->last_rx = now;
}

static void sa_tick(struct ike_sa *sa, uint64_t now)
{
	struct ike_ctx *c = sa->ctx;
	if (sa->expire_at && now >= sa->expire_at) {
		sa_unlink_free(sa, false, NULL); /* a half-open SA that never authenticated */
		return;
	}
	if (sa->req) {
		if (now >= sa->req_deadline) {
			enum req_kind k = sa->req_kind;
			struct ike_peer *p = sa->peer;
			/* dpd_action = restart: the children of such configs come up again. */
			char restart[IKE_MAX_CHILD_CFG][64];
			unsigned nrestart = 0;
			for (struct ike_child *ch = sa->children; k == REQ_DPD && p && ch;
			     ch = ch->next) {
				const struct ike_child_cfg *cc = child_cfg_of(sa, ch);
				bool dup = false;
				for (unsigned i = 0; i < nrestart; i++)
					dup |= !strcmp(restart[i], cc->name);
				if (cc->dpd_action == IKE_DPD_RESTART && !dup &&
				    nrestart < IKE_MAX_CHILD_CFG)
					snprintf(restart[nrestart++], sizeof(restart[0]), "%s",
						 cc->name);
			}
			char pname[64];
			snprintf(pname, sizeof(pname), "%s", p ? p->cfg.name : "");
			if (k == REQ_DPD)
				event(c, IKE_EV_DPD_DEAD, sa,
				      "peer did not answer liveness checks");
			sa_unlink_free(sa, true,
				       k == REQ_DPD ? "peer dead (DPD)"
						    : "retransmissions exhausted");
			for (unsigned i = 0; i < nrestart; i++)
				if (ike_initiate(c, pname, restart[i], now) < 0)
					reject(c, NULL, "DPD restart: could not initiate again");
			return;
		}
		if (now >= sa->retx_at && sa->retx < IKE_RETX_TRIES) {
			sa->retx++;
			uint64_t t = IKE_RETX_BASE_NS;
			for (unsigned i = 0; i < sa->retx; i++)
				t = t * 9 / 5;
			sa->retx_at = now + t;
			c->stats.retransmits++;
			struct ike_event ev = {.type = IKE_EV_RETRANSMIT, .sa = sa, .retransmit = sa->retx};
			event_full(c, &ev);
			send_stored(sa, sa->req, sa->req_len, sa->req_packed);
		}
		return;
	}
	maintenance(sa, now);
	if (!sa->req && sa->state == IKE_SA_ESTABLISHED && sa->peer && sa->peer->cfg.dpd_delay_ns &&
	    now >= sa->last_rx + sa->peer->cfg.dpd_delay_ns)
		send_dpd(sa, now);
}

void ike_tick(struct ike_ctx *c, uint64_t now)
{
	struct ike_sa *next;
	for (struct ike_sa *sa = c->sas; sa; sa = next) {
		next = sa->next;
		sa_tick(sa, now);
	}
}

uint64_t ike_next_deadline(const struct ike_ctx *c)
{
	uint64_t d = UINT64_MAX;
	for (const struct ike_sa *sa = c->sas; sa; sa = sa->next) {
		if (sa->expire_at)
			d = SG_MIN(d, sa->expire_at);
		if (sa->req) {
			d = SG_MIN(d, sa->req_deadline);
			if (sa->retx < IKE_RETX_TRIES)
				d = SG_MIN(d, sa->retx_at);
		} else if (sa->state == IKE_SA_ESTABLISHED && sa->peer && !sa->replaced) {
			if (sa->peer->cfg.dpd_delay_ns)
				d = SG_MIN(d, sa->last_rx + sa->peer->cfg.dpd_delay_ns);
			if (sa->rekey_at)
				d = SG_MIN(d, sa->rekey_at);
			if (sa->nwant || sa->rekey_wanted)
				d = 0; /* due now */
			for (const struct ike_child *ch = sa->children; ch; ch = ch->next) {
				if (ch->replaced)
					continue;
				if (ch->delete_wanted)
					d = 0;
				if (ch->rekey_at)
					d = SG_MIN(d, ch->rekey_at);
				if (ch->expire_at)
					d = SG_MIN(d, ch->expire_at);
			}
		}
	}
	return d;
}

/* ---- context, peers, inspection ----------------------------------------------------------- */

static void peer_cfg_release(struct ike_peer_cfg *cfg);

struct ike_ctx *ike_new(const struct ike_io *io)
{
	struct ike_ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->io = *io;
	c->frag_msg = FRAG_MSG;
	if (!sg_random_bytes(c->cookie_secret, sizeof(c->cookie_secret))) {
		free(c);
		return NULL;
	}
	return c;
}

int ike_set_fragment_size(struct ike_ctx *c, size_t bytes)
{
	if (bytes < IKE_FRAG_MIN || bytes > FRAG_MSG)
		return SG_EINVAL;
	c->frag_msg = bytes;
	return 0;
}

void ike_free(struct ike_ctx *c)
{
	if (!c)
		return;
	while (c->sas)
		sa_unlink_free(c->sas, false, NULL);
	while (c->peers) {
		struct ike_peer *p = c->peers;
		c->peers = p->next;
		peer_cfg_release(&p->cfg);
		sg_memzero(p, sizeof(*p));
		free(p);
	}
	sg_memzero(c, sizeof(*c));
	free(c);
}

/* The certificates and key a configuration names: held while the core keeps it. */
static void peer_cfg_hold(struct ike_peer_cfg *cfg)
{
	sg_cert_ref(cfg->cert);
	sg_privkey_ref(cfg->key);
	for (unsigned i = 0; i < cfg->ncas; i++)
		sg_cert_ref(cfg->cas[i]);
}

static void peer_cfg_release(struct ike_peer_cfg *cfg)
{
	sg_cert_free(cfg->cert);
	sg_privkey_free(cfg->key);
	for (unsigned i = 0; i < cfg->ncas; i++)
		sg_cert_free(cfg->cas[i]);
	sg_memzero(cfg, sizeof(*cfg));
}

static bool peer_cfg_ok(const struct ike_peer_cfg *cfg)
{
	bool psk = cfg->local_auth == IKE_AUTHC_PSK || cfg->remote_auth == IKE_AUTHC_PSK;
	if (!cfg->nprops || cfg->nprops > IKE_PROP_MAX || !cfg->nchildren ||
	    cfg->nchildren > IKE_MAX_CHILD_CFG || cfg->nremote_addrs > IKE_MAX_ADDRS ||
	    cfg->psk_len > IKE_MAX_PSK || (psk && cfg->psk_len == 0) ||
	    cfg->fragmentation > IKE_FRAG_NO)
		return false;
	for (unsigned i = 0; i < cfg->nchildren; i++) {
		const struct ike_child_cfg *cc = &cfg->children[i];
		if (!cc->name[0] || !cc->nprops || cc->nprops > IKE_PROP_MAX || !cc->nlocal_ts ||
		    !cc->nremote_ts || cc->nlocal_ts > IKE_MAX_TS_CFG ||
		    cc->nremote_ts > IKE_MAX_TS_CFG)
			return false;
		for (unsigned j = 0; j < i; j++)
			if (!strcmp(cfg->children[j].name, cc->name))
				return false; /* names say which child to initiate */
	}
	if (cfg->local_auth == IKE_AUTHC_PUBKEY && (!cfg->cert || !cfg->key))
		return false;
	if (cfg->sign_pss && (cfg->local_auth != IKE_AUTHC_PUBKEY ||
			      !cfg->key || !sg_privkey_is_rsa(cfg->key)))
		return false;
	if (cfg->ncas > IKE_MAX_CAS)
		return false;
	if ((cfg->remote_id.type == IKE_ID_ANY && cfg->remote_auth != IKE_AUTHC_PUBKEY) ||
	    (cfg->local_id.type == IKE_ID_ANY && cfg->local_auth != IKE_AUTHC_PUBKEY))
		return false;
	return true;
}

int ike_add_peer(struct ike_ctx *c, const struct ike_peer_cfg *cfg)
{
	if (!cfg->name[0] || !peer_cfg_ok(cfg))
		return SG_EINVAL;
	if (find_peer(c, cfg->name))
		return SG_EEXIST;
	struct ike_peer *p = calloc(1, sizeof(*p));
	if (!p)
		return SG_ENOMEM;
	p->cfg = *cfg;
	peer_cfg_hold(&p->cfg);
	/* Appended: the first peer is the one IKE_SA_INIT proposals are matched against. */
	struct ike_peer **pp = &c->peers;
	while (*pp)
		pp = &(*pp)->next;
	*pp = p;
	return 0;
}

void ike_remove_peer(struct ike_ctx *c, const char *name)
{
	struct ike_sa *next;
	for (struct ike_sa *sa = c->sas; sa; sa = next) {
		next = sa->next;
		if (sa->peer && !strcmp(sa->peer->cfg.name, name))
			sa_unlink_free(sa, true, "connection unloaded");
	}
	for (struct ike_peer **pp = &c->peers; *pp; pp = &(*pp)->next)
		if (!strcmp((*pp)->cfg.name, name)) {
			struct ike_peer *p = *pp;
			*pp = p->next;
			peer_cfg_release(&p->cfg);
			sg_memzero(p, sizeof(*p));
			free(p);
			return;
		}
}

void ike_force_cookies(struct ike_ctx *c, bool on)
{
	c->force_cookies = on;
}

void ike_get_stats(const struct ike_ctx *c, struct ike_stats *out)
{
	*out = c->stats;
}

struct ike_sa *ike_first_sa(const struct ike_ctx *c)
{
	return c->sas;
}

struct ike_sa *ike_sa_next(const struct ike_sa *sa)
{
	return sa->next;
}

enum ike_sa_state ike_sa_state(const struct ike_sa *sa)
{
	return sa->state;
}

const char *ike_sa_peer_name(const struct ike_sa *sa)
{
	return sa->peer ? sa->peer->cfg.name : NULL;
}

bool ike_sa_initiator(const struct ike_sa *sa)
{
	return sa->initiator;
}

void ike_sa_spis(const struct ike_sa *sa, uint8_t spi_i[8], uint8_t spi_r[8])
{
	memcpy(spi_i, sa->spi_i, 8);
	memcpy(spi_r, sa->spi_r, 8);
}

const struct ike_chosen *ike_sa_proposal(const struct ike_sa *sa)
{
	return &sa->prop;
}

unsigned ike_sa_child_count(const struct ike_sa *sa)
{
	unsigned n = 0;
	for (const struct ike_child *ch = sa->children; ch; ch = ch->next)
		n++;
	return n;
}

uint32_t ike_sa_unique_id(const struct ike_sa *sa)
{
	return sa->unique_id;
}

const struct ike_endpoint *ike_sa_remote(const struct ike_sa *sa)
{
	return &sa->remote;
}

uint16_t ike_sa_local_port(const struct ike_sa *sa)
{
	return sa->local_port;
}

uint64_t ike_sa_established_at(const struct ike_sa *sa)
{
	return sa->established_at;
}

void ike_sa_ids(const struct ike_sa *sa, struct ike_identity *local, struct ike_identity *remote)
{
	memset(local, 0, sizeof(*local));
	*remote = sa->their_id;
	if (!sa->peer)
		return;
	uint8_t t;
	const uint8_t *d;
	size_t n;
	my_id(&sa->peer->cfg, &t, &d, &n);
	if (n <= sizeof(local->data)) {
		local->type = t;
		local->len = (uint16_t)n;
		memcpy(local->data, d, n);
	}
}

const struct ike_peer_cfg *ike_sa_peer_cfg(const struct ike_sa *sa)
{
	return sa->peer ? &sa->peer->cfg : NULL;
}

struct ike_sa *ike_sa_by_child(const struct ike_ctx *c, uint32_t spi_in)
{
	for (struct ike_sa *sa = c->sas; sa; sa = sa->next)
		for (const struct ike_child *ch = sa->children; ch; ch = ch->next)
			if (ch->spi_in == spi_in)
				return sa;
	return NULL;
}

int ike_set_peer(struct ike_ctx *c, const struct ike_peer_cfg *cfg)
{
	struct ike_peer *p = find_peer(c, cfg->name);
	if (!p)
		return ike_add_peer(c, cfg);
	if (!peer_cfg_ok(cfg))
		return SG_EINVAL;
	struct ike_peer_cfg old = p->cfg;
	p->cfg = *cfg;
	peer_cfg_hold(&p->cfg);
	peer_cfg_release(&old);
	return 0;
}

const struct ike_peer_cfg *ike_get_peer(const struct ike_ctx *c, const char *name)
{
	struct ike_peer *p = find_peer((struct ike_ctx *)c, name);
	return p ? &p->cfg : NULL;
}

const struct ike_peer_cfg *ike_first_peer(const struct ike_ctx *c)
{
	return c->peers ? &c->peers->cfg : NULL;
}

const struct ike_peer_cfg *ike_peer_next(const struct ike_ctx *c, const struct ike_peer_cfg *cfg)
{
	for (struct ike_peer *p = c->peers; p; p = p->next)
		if (&p->cfg == cfg)
			return p->next ? &p->next->cfg : NULL;
	return NULL;
}
