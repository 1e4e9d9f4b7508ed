/* secureguardd's view of routing: sticky-source checks and route MTUs; see routing.h. */
#include "engine/routing.h"

#include <errno.h>
#include <linux/rtnetlink.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "net/addr.h"
#include "net/route.h"

/* Questions in flight at once (each answer is a few hundred bytes: the socket's buffer holds
 * them all), peers waiting for one, and how long an answer may take before it counts as lost. */
#define ROUTING_WINDOW	   32
#define ROUTING_QUEUE	   256
#define ROUTING_TIMEOUT_NS (2ull * 1000000000ull)
/* Peers a round looks at in one loop turn: with a million peers a whole round in one turn held
 * the loop for tens of milliseconds (most peers have no sticky source to ask about). */
#define ROUTING_SKIP_PER_TURN 16384
/* Checks caused by peers' packets (a new source) are limited: a peer flapping between two of
 * our addresses must not turn its datagrams into route questions. Past the limit, one full round
 * a second covers them. */
#define PEER_CHECKS_PER_SEC 200
#define PEER_CHECKS_BURST   400
#define LATER_ROUND_NS	    1000000000ull

struct query {
	uint32_t seq;
	struct wg_peer *peer; /* NULL once the peer is gone */
	struct wg_endpoint ep; /* the endpoint as asked about */
	uint64_t sent;
};

struct routing {
	struct evloop *loop;
	struct wg_device *dev;
	int ifindex;
	int fd;
	struct evloop_source src;
	uint8_t *buf; /* ROUTE_RECV_BUF */
	uint32_t seq;
	uint32_t fwmark;
	uint16_t port;

	/* Route MTUs: a dump of one family at a time. */
	bool mtu_wanted;
	int mtu_family; /* the family being dumped, 0 when none */
	uint32_t mtu_seq;
	uint64_t mtu_sent;
	struct wg_route_mtu pend[WG_ROUTE_MTU_MAX];
	size_t npend;
	bool overflow;
	uint16_t min_mtu[2]; /* per family (0: IPv4, 1: IPv6), for an overflowing table */
	size_t loaded;	     /* entries in the core's table */

	/* Sticky sources: rounds over every peer, and single peers. */
	bool round_wanted;
	bool in_round;
	struct wg_peer *cursor; /* the round's next peer */
	bool more;		/* the last turn stopped at ROUTING_SKIP_PER_TURN */
	bool later;		/* a round is owed to rate-limited single checks ... */
	uint64_t later_at;	/* ... from then */
	struct wg_peer *queue[ROUTING_QUEUE];
	size_t qlen;
	struct query q[ROUTING_WINDOW];
	size_t nq;
	struct sg_log_ratelimit peer_rl;

	struct routing_stats st;
};

static void on_readable(void *ctx, uint32_t events);

int routing_new(struct routing **out, struct evloop *loop, struct wg_device *dev, int ifindex)
{
	struct routing *r = calloc(1, sizeof(*r));
	int err;

	*out = NULL;
	if (!r)
		return -ENOMEM;
	r->buf = malloc(ROUTE_RECV_BUF);
	if (!r->buf) {
		free(r);
		return -ENOMEM;
	}
	r->loop = loop;
	r->dev = dev;
	r->ifindex = ifindex;
	r->peer_rl.rate = PEER_CHECKS_PER_SEC;
	r->peer_rl.burst = PEER_CHECKS_BURST;
	r->mtu_wanted = true;
	r->fd = route_sock_open();
	if (r->fd < 0) {
		err = r->fd;
		goto fail;
	}
	err = evloop_add(loop, &r->src, r->fd, EPOLLIN, on_readable, r);
	if (err != 0)
		goto fail;
	*out = r;
	return 0;
fail:
	if (r->fd >= 0)
		close(r->fd);
	free(r->buf);
	free(r);
	return err;
}

void routing_free(struct routing *r)
{
	if (!r)
		return;
	evloop_del(r->loop, &r->src);
	close(r->fd);
	free(r->buf);
	free(r);
}

bool routing_wants_turn(const struct routing *r)
{
	return r->more;
}

void routing_get_stats(const struct routing *r, struct routing_stats *out)
{
	*out = r->st;
}

void routing_changed(struct routing *r, bool any, bool own)
{
	if (any)
		r->round_wanted = true;
	if (own)
		r->mtu_wanted = true;
}

void routing_set_ifindex(struct routing *r, int ifindex)
{
	r->ifindex = ifindex;
	r->mtu_wanted = true;
}

void routing_set_socket(struct routing *r, uint32_t fwmark, uint16_t port)
{
	if (fwmark != r->fwmark)
		r->round_wanted = true;
	r->fwmark = fwmark;
	r->port = port;
}

static bool queued(const struct routing *r, const struct wg_peer *peer)
{
	for (size_t i = 0; i < r->qlen; i++)
		if (r->queue[i] == peer)
			return true;
	for (size_t i = 0; i < r->nq; i++)
		if (r->q[i].peer == peer)
			return true;
	return false;
}

/* A single peer to check soon, within the rate limit (else a later full round covers it). */
static void enqueue_limited(struct routing *r, struct wg_peer *peer)
{
	if (queued(r, peer))
		return;
	if (r->qlen == ROUTING_QUEUE ||
	    !sg_log_ratelimit_allow(&r->peer_rl, evloop_now_ns(), NULL)) {
		if (!r->later) {
			r->later = true;
			r->later_at = evloop_now_ns() + LATER_ROUND_NS;
		}
		return;
	}
	r->queue[r->qlen++] = peer;
}

void routing_peer_changed(struct routing *r, struct wg_peer *peer)
{
	enqueue_limited(r, peer);
}

void routing_peer_removed(struct routing *r, struct wg_peer *peer)
{
	/* Called before the peer leaves the list, so its successor is still there. */
	if (r->cursor == peer)
		r->cursor = wg_peer_next(peer);
	for (size_t i = 0; i < r->qlen;) {
		if (r->queue[i] == peer)
			r->queue[i] = r->queue[--r->qlen];
		else
			i++;
	}
	for (size_t i = 0; i < r->nq; i++)
		if (r->q[i].peer == peer)
			r->q[i].peer = NULL;
}

/* The peer's endpoint, if it has a sticky source worth asking routing about: UDP, a source and
 * the interface it came in on, and no link-local address (which is only usable together with
 * its interface anyway). */
static bool wants_check(struct wg_peer *peer, struct wg_endpoint *ep)
{
	struct wg_peer_stats st;
	wg_peer_get_stats(peer, &st);
	if (!st.has_endpoint || st.endpoint.tls_conn || !st.endpoint.has_src ||
	    !st.endpoint.src_ifindex)
		return false;
	if (st.endpoint.addr.sa.sa_family == AF_INET6 &&
	    (IN6_IS_ADDR_LINKLOCAL(&st.endpoint.addr.in6.sin6_addr) ||
	     IN6_IS_ADDR_LINKLOCAL(&st.endpoint.src6) ||
	     IN6_IS_ADDR_V4MAPPED(&st.endpoint.addr.in6.sin6_addr)))
		return false;
	*ep = st.endpoint;
	return true;
}

static uint32_t next_seq(struct routing *r)
{
	if (++r->seq == 0)
		r->seq = 1;
	return r->seq;
}

/* Asks how a datagram to the peer would be routed. 1 sent, 0 not now (socket full), -1 failed. */
static int ask(struct routing *r, struct wg_peer *peer, const struct wg_endpoint *ep,
	       uint64_t now)
{
	uint8_t req[ROUTE_REQ_MAX];
	bool v4 = ep->addr.sa.sa_family == AF_INET;
	const uint8_t *dst = v4 ? (const uint8_t *)&ep->addr.in4.sin_addr
				: (const uint8_t *)&ep->addr.in6.sin6_addr;
	const uint8_t *src = v4 ? (const uint8_t *)&ep->src4 : (const uint8_t *)&ep->src6;
	uint16_t dport = ntohs(v4 ? ep->addr.in4.sin_port : ep->addr.in6.sin6_port);
	uint32_t seq = next_seq(r);
	size_t len = route_get_request(req, sizeof(req), seq, v4 ? AF_INET : AF_INET6, dst, src,
				       r->fwmark, r->port, dport);
	if (!len)
		return -1;
	ssize_t n = send(r->fd, req, len, MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS ? 0 : -1;
	struct query *q = &r->q[r->nq++];
	q->seq = seq;
	q->peer = peer;
	q->ep = *ep;
	q->sent = now;
	r->st.queries++;
	return 1;
}

static void commit_mtus(struct routing *r);

static void start_dump(struct routing *r, int family, uint64_t now)
{
	uint8_t req[ROUTE_REQ_MAX];
	uint32_t seq = next_seq(r);
	if (r->ifindex <= 0) {
		/* No interface here to have routes: none. */
		r->mtu_family = 0;
		commit_mtus(r);
		return;
	}
	size_t len = route_dump_request(req, sizeof(req), seq, family, r->ifindex);
	if (!len || send(r->fd, req, len, MSG_DONTWAIT) < 0) {
		/* Try again at a later turn. */
		r->st.errors++;
		r->mtu_family = 0;
		r->mtu_wanted = true;
		return;
	}
	r->mtu_family = family;
	r->mtu_seq = seq;
	r->mtu_sent = now;
}

static void commit_mtus(struct routing *r)
{
	struct wg_route_mtu all[2];
	const struct wg_route_mtu *table = r->pend;
	size_t n = r->npend;

	if (r->overflow) {
		/* More routes with an MTU than the core keeps: pad every destination of a family
		 * to the smallest (less padding, never a datagram too big for its route). */
		n = 0;
		for (int f = 0; f < 2; f++) {
			if (!r->min_mtu[f])
				continue;
			memset(&all[n], 0, sizeof(all[n]));
			all[n].family = f ? AF_INET6 : AF_INET;
			all[n].mtu = r->min_mtu[f];
			n++;
		}
		table = all;
	}
	if (wg_device_set_route_mtus(r->dev, table, n) != 0) {
		r->st.errors++;
		return;
	}
	r->st.mtu_reloads++;
	if (n != r->loaded || n)
		sg_log(SG_LOG_DEBUG, "route_mtus", "routes=%zu overflow=%s", n,
		       r->overflow ? "yes" : "no");
	r->loaded = n;
}

static void on_mtu_msg(struct routing *r, const struct route_msg *m)
{
	if (m->kind == ROUTE_MSG_ROUTE) {
		if (!m->via_ifindex || m->type != RTN_UNICAST || !m->mtu || m->mtu > 65535 ||
		    (m->family != AF_INET && m->family != AF_INET6))
			return;
		int f = m->family == AF_INET6;
		if (!r->min_mtu[f] || m->mtu < r->min_mtu[f])
			r->min_mtu[f] = (uint16_t)m->mtu;
		if (r->npend == WG_ROUTE_MTU_MAX) {
			r->overflow = true;
			return;
		}
		struct wg_route_mtu *e = &r->pend[r->npend++];
		memset(e, 0, sizeof(*e));
		e->family = m->family;
		memcpy(e->addr, m->dst, m->family == AF_INET ? 4 : 16);
		e->cidr = m->dst_len;
		e->mtu = (uint16_t)m->mtu;
		return;
	}
	/* The end of this family's dump (an error ends it too: no IPv6, say). */
	if (m->kind == ROUTE_MSG_ERROR && m->error != 0 && m->error != -EAFNOSUPPORT)
		r->st.errors++;
	if (r->mtu_family == AF_INET) {
		start_dump(r, AF_INET6, evloop_now_ns());
		return;
	}
	r->mtu_family = 0;
	commit_mtus(r);
}

static void on_answer(struct routing *r, size_t i, const struct route_msg *m)
{
	struct query q = r->q[i];
	char tag[SG_LOG_KEY_TAG_SIZE], ep[ADDR_ENDPOINT_STRLEN], src[ADDR_STRLEN];
	struct wg_peer_stats st;

	r->q[i] = r->q[--r->nq];
	if (!q.peer)
		return;
	/* The route leaves through the interface the peer's packets arrive on: the source
	 * fits. Another interface, or a source the kernel refuses (gone, EINVAL): it does not,
	 * and routing picks one (the kernel's send4/send6). */
	bool usable = m->kind == ROUTE_MSG_ROUTE && m->oif == q.ep.src_ifindex;
	wg_peer_get_stats(q.peer, &st);
	if (!wg_peer_set_source_usable(q.peer, &q.ep, usable)) {
		/* The endpoint moved on meanwhile: ask again about the new one. */
		enqueue_limited(r, q.peer);
		return;
	}
	if (usable == !st.src_rejected)
		return;
	if (usable)
		r->st.sources_restored++;
	else
		r->st.sources_dropped++;
	if (addr_format_endpoint(ep, sizeof(ep), &q.ep, NULL) < 0 ||
	    addr_format(src, sizeof(src), q.ep.addr.sa.sa_family,
			q.ep.addr.sa.sa_family == AF_INET ? (const uint8_t *)&q.ep.src4
							  : (const uint8_t *)&q.ep.src6) < 0)
		return;
	sg_log(SG_LOG_INFO, usable ? "sticky_source_restored" : "sticky_source_dropped",
	       "peer=%s endpoint=%s source=%s source_ifindex=%u route_ifindex=%u%s%s",
	       sg_log_key_tag(tag, wg_peer_public_key(q.peer)), ep, src, q.ep.src_ifindex,
	       m->kind == ROUTE_MSG_ROUTE ? m->oif : 0, m->kind == ROUTE_MSG_ERROR ? " error=" : "",
	       m->kind == ROUTE_MSG_ERROR ? strerror(-m->error) : "");
}

static void on_msg(void *ctx, const struct route_msg *m)
{
	struct routing *r = ctx;

	if (r->mtu_family && m->seq == r->mtu_seq) {
		on_mtu_msg(r, m);
		return;
	}
	for (size_t i = 0; i < r->nq; i++) {
		if (r->q[i].seq == m->seq) {
			if (m->kind != ROUTE_MSG_DONE && !(m->kind == ROUTE_MSG_ERROR && !m->error))
				on_answer(r, i, m);
			return;
		}
	}
	/* A late answer to a question given up on: nothing to do. */
}

/* Answers were dropped by the kernel: whatever was asked is asked again. */
static void lost(struct routing *r)
{
	r->st.errors++;
	r->nq = 0;
	r->round_wanted = true;
	if (r->mtu_family) {
		r->mtu_family = 0;
		r->mtu_wanted = true;
	}
}

static void on_readable(void *ctx, uint32_t events)
{
	struct routing *r = ctx;

	for (;;) {
		ssize_t n = recv(r->fd, r->buf, ROUTE_RECV_BUF, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) {
				lost(r);
				continue;
			}
			return; /* EAGAIN, or nothing more to read that makes sense */
		}
		if (n == 0)
			return;
		if (route_parse(r->buf, (size_t)n, r->ifindex, on_msg, r) != 0)
			r->st.errors++;
	}
}

/* The next peer to ask about: a queued one first, then the round's. Not consumed. */
static struct wg_peer *peek(struct routing *r, bool *from_queue)
{
	if (r->qlen) {
		*from_queue = true;
		return r->queue[0];
	}
	*from_queue = false;
	return r->in_round ? r->cursor : NULL;
}

static void consume(struct routing *r, bool from_queue)
{
	if (from_queue) {
		memmove(r->queue, r->queue + 1, (r->qlen - 1) * sizeof(r->queue[0]));
		r->qlen--;
	} else if (r->cursor) {
		r->cursor = wg_peer_next(r->cursor);
	}
}

void routing_run(struct routing *r, uint64_t now)
{
	/* Answers that never came (the socket overflowed without telling, or a stuck dump). */
	for (size_t i = 0; i < r->nq;) {
		if (now - r->q[i].sent > ROUTING_TIMEOUT_NS) {
			r->st.errors++;
			r->q[i] = r->q[--r->nq];
		} else {
			i++;
		}
	}
	if (r->mtu_family && now - r->mtu_sent > ROUTING_TIMEOUT_NS) {
		r->st.errors++;
		r->mtu_family = 0;
		r->mtu_wanted = true;
	}
	if (r->mtu_wanted && !r->mtu_family) {
		r->mtu_wanted = false;
		r->npend = 0;
		r->overflow = false;
		r->min_mtu[0] = r->min_mtu[1] = 0;
		start_dump(r, AF_INET, now);
	}
	if (r->later && now >= r->later_at) {
		r->later = false;
		r->round_wanted = true;
	}
	/* A change during a round starts the next one when this one ends: every peer is asked
	 * once per round, and a steady stream of changes cannot starve the last ones. */
	if (r->round_wanted && !r->in_round) {
		r->round_wanted = false;
		r->in_round = true;
		r->cursor = wg_device_first_peer(r->dev);
	}
	r->more = false;
	for (size_t looked = 0; r->nq < ROUTING_WINDOW; looked++) {
		bool from_queue;
		if (looked == ROUTING_SKIP_PER_TURN) {
			r->more = true;
			break;
		}
		struct wg_peer *peer = peek(r, &from_queue);
		struct wg_endpoint ep;
		if (!peer) {
			r->in_round = false;
			if (!r->round_wanted)
				break;
			r->round_wanted = false;
			r->in_round = true;
			r->cursor = wg_device_first_peer(r->dev);
			if (!r->cursor) {
				r->in_round = false;
				break;
			}
			continue;
		}
		if (!wants_check(peer, &ep)) {
			consume(r, from_queue);
			continue;
		}
		int sent = ask(r, peer, &ep, now);
		if (sent == 0)
			break; /* the socket is full: the next turn goes on */
		if (sent < 0)
			r->st.errors++;
		consume(r, from_queue);
	}
}
