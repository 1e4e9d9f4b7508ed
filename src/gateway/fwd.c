/* Port forwarding for tcp and udp resources: a public port whose connections (tcp) or flows
 * (udp, keyed by the client's address and port) go to one target each, chosen by the
 * balancer, with the resource's source lists, rate limits, connection limit and idle timeout.
 *
 * A listening socket is a refcounted port object: a new config generation that keeps the
 * port takes the socket over (no connection is refused during a reload), and udp flows of the
 * old generation keep sending their replies through it until they end. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "gateway/gw_int.h"

#define FLOW_BUF     (64u * 1024)
#define UDP_MAX	     65535u
#define ACCEPT_BATCH 64
#define RECV_BATCH   64

struct gw_port {
	struct gw *gw;
	int refs;
	int fd;
	enum gw_proto proto;
	uint16_t port;
	struct evloop_source src;
	struct gw_res *owner; /* the current generation's resource; NULL when closed */
	struct gw_link flows; /* udp flows */
};

struct tcp_flow {
	struct gw_link link; /* gw->flows */
	struct gw *gw;
	struct gw_res *r;
	struct gw_rt *rt;
	struct gw_target *t;
	int cfd, ufd;
	struct evloop_source csrc, usrc;
	uint32_t cev, uev;
	struct gw_buf c2u, u2c;
	bool connected, c_eof, u_eof, u_shut, c_shut;
	uint64_t tried;
	uint32_t tries;
	uint64_t deadline_ns, start_ns, bytes_in, bytes_out;
	uint8_t skey[17];
	char client[64];
};

struct udp_flow {
	struct gw_link link; /* port->flows */
	struct gw_port *port;
	struct gw_res *r;
	struct gw_rt *rt;
	struct gw_target *t;
	int fd;
	struct evloop_source src;
	struct sockaddr_storage client;
	socklen_t clen;
	uint64_t last_ns, start_ns, bytes_in, bytes_out;
	uint8_t skey[17]; /* the source's entry in gw->src (its flows count there) */
	char client_str[64];
};

static void port_put(struct gw_port *p)
{
	if (!p || --p->refs > 0)
		return;
	evloop_del(p->gw->loop, &p->src);
	close(p->fd);
	free(p);
}

/* ---- tcp -------------------------------------------------------------------------------- */

static void tcp_log(struct tcp_flow *f, const char *reason)
{
	struct gw_access a = {
	    .resource = f->r->conf->id,
	    .target = f->t ? f->t->conf->id : NULL,
	    .status = f->connected ? 0 : 502,
	    .bytes_in = f->bytes_in,
	    .bytes_out = f->bytes_out,
	    .dur_ns = f->gw->now_ns - f->start_ns,
	    .reason = reason,
	    .proto = "tcp",
	};
	snprintf(a.client, sizeof(a.client), "%s", f->client);
	gw_access_log(f->gw, &a);
}

static void tcp_close(struct tcp_flow *f, const char *reason)
{
	tcp_log(f, reason);
	gw_list_del(&f->link);
	evloop_del(f->gw->loop, &f->csrc);
	close(f->cfd);
	if (f->ufd >= 0) {
		evloop_del(f->gw->loop, &f->usrc);
		close(f->ufd);
	}
	if (f->t)
		f->t->active--;
	f->r->flows--;
	gw_src_conn_dec(f->gw, f->skey);
	gw_buf_free(&f->c2u);
	gw_buf_free(&f->u2c);
	gw_rt_put(f->rt);
	free(f);
}

static void tcp_event(void *ctx, uint32_t ev);
static void tcp_up_event(void *ctx, uint32_t ev);

/* Connects to the next target. false when none is left. */
static bool tcp_connect(struct tcp_flow *f)
{
	struct gw *gw = f->gw;
	for (;;) {
		struct gw_target *t = gw_lb_pick(f->r, f->tried, NULL, 0, gw->now_ns);
		if (!t || f->tries > f->r->conf->retries)
			return false;
		f->tried |= 1ull << (t->index & 63);
		f->tries++;
		int fd = socket(t->conf->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return false;
		if ((connect(fd, (const struct sockaddr *)&t->conf->addr, t->conf->addr_len) != 0 &&
		     errno != EINPROGRESS) ||
		    evloop_add(gw->loop, &f->usrc, fd, EPOLLOUT, tcp_up_event, f) != 0) {
			t->failures++;
			gw_target_passive(t, false, gw->now_ns);
			close(fd);
			continue;
		}
		f->ufd = fd;
		f->uev = EPOLLOUT;
		f->t = t;
		t->active++;
		t->requests++;
		f->deadline_ns = gw->now_ns + (uint64_t)f->r->conf->connect_timeout_ms * NS_PER_MS;
		return true;
	}
}

static void tcp_up_failed(struct tcp_flow *f, const char *why)
{
	struct gw_target *t = f->t;
	char b[96];
	sg_log(SG_LOG_WARN, "gw_target_failed", "resource=%s target=%s reason=%s",
	       f->r->conf->id, t->conf->id, sg_log_quote(b, sizeof(b), why));
	t->failures++;
	gw_target_passive(t, false, f->gw->now_ns);
	t->active--;
	f->t = NULL;
	evloop_del(f->gw->loop, &f->usrc);
	close(f->ufd);
	f->ufd = -1;
	if (!tcp_connect(f))
		tcp_close(f, why);
}

/* Moves what can move; closes the flow when both directions are done. */
static void tcp_pump(struct tcp_flow *f)
{
	struct gw *gw = f->gw;
	bool moved = false;
	for (int guard = 0; guard < 16; guard++) {
		bool progress = false;
		if (!f->c_eof && gw_buf_space(&f->c2u) > 0) {
			ssize_t r = recv(f->cfd, gw_buf_tail(&f->c2u), gw_buf_space(&f->c2u), 0);
			if (r > 0) {
				f->c2u.len += (uint32_t)r;
				f->bytes_in += (uint64_t)r;
				progress = true;
			} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
				f->c_eof = true;
				progress = true;
			}
		}
		if (f->connected && f->c2u.len) {
			ssize_t w = send(f->ufd, gw_buf_data(&f->c2u), f->c2u.len, MSG_NOSIGNAL);
			if (w > 0) {
				gw_buf_consume(&f->c2u, (size_t)w);
				progress = true;
			} else if (w < 0 && errno != EAGAIN && errno != EINTR) {
				tcp_close(f, strerror(errno));
				return;
			}
		}
		if (f->connected && !f->u_eof && gw_buf_space(&f->u2c) > 0) {
			ssize_t r = recv(f->ufd, gw_buf_tail(&f->u2c), gw_buf_space(&f->u2c), 0);
			if (r > 0) {
				f->u2c.len += (uint32_t)r;
				f->bytes_out += (uint64_t)r;
				progress = true;
			} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
				f->u_eof = true;
				progress = true;
			}
		}
		if (f->u2c.len) {
			ssize_t w = send(f->cfd, gw_buf_data(&f->u2c), f->u2c.len, MSG_NOSIGNAL);
			if (w > 0) {
				gw_buf_consume(&f->u2c, (size_t)w);
				progress = true;
			} else if (w < 0 && errno != EAGAIN && errno != EINTR) {
				tcp_close(f, "client gone");
				return;
			}
		}
		/* Half-closes travel on (a client that shuts its sending side still reads). */
		if (f->connected && f->c_eof && f->c2u.len == 0 && !f->u_shut) {
			shutdown(f->ufd, SHUT_WR);
			f->u_shut = true;
		}
		if (f->u_eof && f->u2c.len == 0 && !f->c_shut) {
			shutdown(f->cfd, SHUT_WR);
			f->c_shut = true;
		}
		moved |= progress;
		if (!progress)
			break;
	}
	if ((f->c_shut && f->u_shut) || (f->u_eof && f->u2c.len == 0 && f->c_eof)) {
		tcp_close(f, NULL);
		return;
	}
	if (moved)
		f->deadline_ns = gw->now_ns + (uint64_t)f->r->conf->idle_timeout_ms * NS_PER_MS;
	uint32_t cw = 0, uw = 0;
	if (!f->c_eof && gw_buf_space(&f->c2u) > 0)
		cw |= EPOLLIN;
	if (f->u2c.len)
		cw |= EPOLLOUT;
	if (f->connected) {
		if (!f->u_eof && gw_buf_space(&f->u2c) > 0)
			uw |= EPOLLIN;
		if (f->c2u.len)
			uw |= EPOLLOUT;
	} else {
		uw = EPOLLOUT;
	}
	if (cw != f->cev && evloop_mod(gw->loop, &f->csrc, cw) == 0)
		f->cev = cw;
	if (f->ufd >= 0 && uw != f->uev && evloop_mod(gw->loop, &f->usrc, uw) == 0)
		f->uev = uw;
}

static void tcp_event(void *ctx, uint32_t ev)
{
	struct tcp_flow *f = ctx;
	f->gw->now_ns = evloop_now_ns();
	if ((ev & EPOLLERR) && !(ev & EPOLLIN)) {
		tcp_close(f, "client connection error");
		return;
	}
	tcp_pump(f);
}

static void tcp_up_event(void *ctx, uint32_t ev)
{
	struct tcp_flow *f = ctx;
	f->gw->now_ns = evloop_now_ns();
	if (!f->connected) {
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(f->ufd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
		if (err || (ev & (EPOLLERR | EPOLLHUP))) {
			tcp_up_failed(f, err ? strerror(err) : "connection failed");
			return;
		}
		f->connected = true;
		gw_target_passive(f->t, true, f->gw->now_ns);
		f->deadline_ns =
		    f->gw->now_ns + (uint64_t)f->r->conf->idle_timeout_ms * NS_PER_MS;
	}
	tcp_pump(f);
}

static void deny_log(struct gw_res *r, const char *proto, const char *client, const char *why)
{
	char b[64];
	sg_log(SG_LOG_INFO, "gw_denied", "resource=%s proto=%s client=%s reason=%s", r->conf->id,
	       proto, client, sg_log_quote(b, sizeof(b), why));
}

static void src_of(const struct sockaddr_storage *ss, int *family, const uint8_t **ip)
{
	*family = ss->ss_family;
	*ip = ss->ss_family == AF_INET ? (const uint8_t *)&((struct sockaddr_in *)ss)->sin_addr
				       : (const uint8_t *)&((struct sockaddr_in6 *)ss)->sin6_addr;
}

/* The resource's source lists and rate limits for a new connection or flow. */
static bool admit(struct gw_res *r, const char *proto, const struct sockaddr_storage *ss,
		  const char *client)
{
	struct gw *gw = r->rt->gw;
	int family;
	const uint8_t *ip;
	src_of(ss, &family, &ip);
	struct gw_policy_in in = {.family = family, .addr = ip};
	struct gw_policy_out out = {0};
	enum gw_verdict v = gw_policy_check(gw, r, &in, &out, gw->now_ns);
	if (v == GW_V_PASS)
		return true;
	if (v == GW_V_LIMITED)
		r->limited++;
	else
		r->denied++;
	deny_log(r, proto, client, out.reason);
	uint8_t key[17];
	char ipb[48];
	gw_src_key(key, family, ip);
	gw_ip_str(key[0] == 4 ? AF_INET : AF_INET6, key + 1, ipb, sizeof(ipb));
	char why[128];
	snprintf(why, sizeof(why), "%s: %s", proto, out.reason ? out.reason : "refused");
	gw_event(gw, "access_denied", r, ipb, NULL, NULL, NULL, NULL, 0, why);
	return false;
}

static void tcp_accept(struct gw_port *p)
{
	struct gw *gw = p->gw;
	struct gw_res *r = p->owner;
	gw->now_ns = evloop_now_ns();
	for (int i = 0; r && i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(p->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		int family;
		const uint8_t *ip;
		src_of(&ss, &family, &ip);
		uint8_t key[17];
		gw_src_key(key, family, ip);
		char client[64];
		gw_sockaddr_str(&ss, client, sizeof(client));
		if (!admit(r, "tcp", &ss, client)) {
			close(fd);
			continue;
		}
		if (r->flows >= r->conf->max_conns ||
		    !gw_src_conn_inc(gw, key, gw->rt->conf->limits.max_conns_per_source, gw->now_ns)) {
			r->flows_refused++;
			deny_log(r, "tcp", client, "connection limit");
			close(fd);
			continue;
		}
		struct tcp_flow *f = calloc(1, sizeof(*f));
		if (!f || !gw_buf_alloc(&f->c2u, FLOW_BUF) || !gw_buf_alloc(&f->u2c, FLOW_BUF)) {
			if (f) {
				gw_buf_free(&f->c2u);
				free(f);
			}
			gw_src_conn_dec(gw, key);
			close(fd);
			continue;
		}
		f->gw = gw;
		f->r = r;
		f->rt = gw_rt_get(r->rt);
		f->cfd = fd;
		f->ufd = -1;
		f->start_ns = gw->now_ns;
		memcpy(f->skey, key, sizeof(key));
		snprintf(f->client, sizeof(f->client), "%s", client);
		r->flows++;
		r->flows_total++;
		int one = 1;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		gw_list_add(&gw->flows, &f->link);
		f->cev = 0; /* nothing is read before the target answers */
		if (evloop_add(gw->loop, &f->csrc, fd, f->cev, tcp_event, f) != 0 || !tcp_connect(f)) {
			tcp_close(f, "no target reachable");
			continue;
		}
	}
}

/* ---- udp -------------------------------------------------------------------------------- */

static void udp_close(struct udp_flow *f, const char *reason)
{
	struct gw *gw = f->port->gw;
	struct gw_access a = {
	    .resource = f->r->conf->id,
	    .target = f->t->conf->id,
	    .bytes_in = f->bytes_in,
	    .bytes_out = f->bytes_out,
	    .dur_ns = gw->now_ns - f->start_ns,
	    .reason = reason,
	    .proto = "udp",
	};
	snprintf(a.client, sizeof(a.client), "%s", f->client_str);
	gw_access_log(gw, &a);
	gw_list_del(&f->link);
	evloop_del(gw->loop, &f->src);
	close(f->fd);
	f->t->active--;
	f->r->flows--;
	gw_src_conn_dec(gw, f->skey);
	gw_rt_put(f->rt);
	port_put(f->port);
	free(f);
}

static void udp_reply_event(void *ctx, uint32_t ev)
{
	struct udp_flow *f = ctx;
	struct gw *gw = f->port->gw;
	static uint8_t buf[UDP_MAX];
	gw->now_ns = evloop_now_ns();
	for (int i = 0; i < RECV_BATCH; i++) {
		ssize_t n = recv(f->fd, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			/* ICMP port unreachable from the target: note it, keep the flow. */
			f->t->failures++;
			return;
		}
		f->bytes_out += (uint64_t)n;
		f->last_ns = gw->now_ns;
		(void)sendto(f->port->fd, buf, (size_t)n, MSG_DONTWAIT, (struct sockaddr *)&f->client,
			     f->clen);
	}
}

static bool same_addr(const struct sockaddr_storage *a, socklen_t al,
		      const struct sockaddr_storage *b, socklen_t bl)
{
	return al == bl && memcmp(a, b, al) == 0;
}

static struct udp_flow *udp_flow_new(struct gw_port *p, const struct sockaddr_storage *ss,
				     socklen_t sl)
{
	struct gw *gw = p->gw;
	struct gw_res *r = p->owner;
	char client[64];
	gw_sockaddr_str(ss, client, sizeof(client));
	if (!admit(r, "udp", ss, client))
		return NULL;
	if (r->flows >= r->conf->max_conns) {
		r->flows_refused++;
		deny_log(r, "udp", client, "flow limit");
		return NULL;
	}
	/* A flow is a connection for max_conns_per_source: one address may not hold a
	 * resource's flows (or the table) by sending from many ports. */
	int family;
	const uint8_t *ip;
	uint8_t key[17];
	src_of(ss, &family, &ip);
	gw_src_key(key, family, ip);
	if (!gw_src_conn_inc(gw, key, gw->rt->conf->limits.max_conns_per_source, gw->now_ns)) {
		r->flows_refused++;
		deny_log(r, "udp", client, "flow limit per source");
		return NULL;
	}
	uint64_t tried = 0;
	for (uint32_t tries = 0; tries <= r->conf->retries; tries++) {
		struct gw_target *t = gw_lb_pick(r, tried, NULL, 0, gw->now_ns);
		if (!t)
			break;
		tried |= 1ull << (t->index & 63);
		int fd = socket(t->conf->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			break;
		if (connect(fd, (const struct sockaddr *)&t->conf->addr, t->conf->addr_len) != 0) {
			close(fd);
			t->failures++;
			gw_target_passive(t, false, gw->now_ns);
			continue;
		}
		struct udp_flow *f = calloc(1, sizeof(*f));
		if (!f || evloop_add(gw->loop, &f->src, fd, EPOLLIN, udp_reply_event, f) != 0) {
			free(f);
			close(fd);
			break;
		}
		f->port = p;
		p->refs++;
		f->r = r;
		f->rt = gw_rt_get(r->rt);
		f->t = t;
		t->active++;
		t->requests++;
		f->fd = fd;
		memcpy(&f->client, ss, sl);
		f->clen = sl;
		f->start_ns = f->last_ns = gw->now_ns;
		snprintf(f->client_str, sizeof(f->client_str), "%s", client);
		memcpy(f->skey, key, sizeof(key));
		r->flows++;
		r->flows_total++;
		gw_list_add(&p->flows, &f->link);
		return f;
	}
	gw_src_conn_dec(gw, key);
	return NULL;
}

static void udp_recv(struct gw_port *p)
{
	struct gw *gw = p->gw;
	static uint8_t buf[UDP_MAX];
	gw->now_ns = evloop_now_ns();
	for (int i = 0; i < RECV_BATCH && p->owner; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		ssize_t n = recvfrom(p->fd, buf, sizeof(buf), 0, (struct sockaddr *)&ss, &sl);
		if (n < 0)
			return;
		struct udp_flow *f = NULL;
		for (struct gw_link *l = p->flows.next; l != &p->flows; l = l->next) {
			struct udp_flow *g = gw_container(l, struct udp_flow, link);
			if (same_addr(&g->client, g->clen, &ss, sl)) {
				f = g;
				break;
			}
		}
		if (!f)
			f = udp_flow_new(p, &ss, sl);
		if (!f)
			continue;
		f->bytes_in += (uint64_t)n;
		f->last_ns = gw->now_ns;
		(void)send(f->fd, buf, (size_t)n, MSG_DONTWAIT);
	}
}

static void port_event(void *ctx, uint32_t ev)
{
	struct gw_port *p = ctx;
	if (!p->owner)
		return;
	if (p->proto == GW_PROTO_TCP)
		tcp_accept(p);
	else
		udp_recv(p);
}

/* ---- generations ------------------------------------------------------------------------ */

static struct gw_res *find_port(struct gw_rt *rt, enum gw_proto proto, uint16_t port)
{
	for (size_t i = 0; rt && i < rt->n_res; i++)
		if (rt->res[i].conf->proto == proto && rt->res[i].conf->port == port)
			return &rt->res[i];
	return NULL;
}

static int bind_port(enum gw_proto proto, uint16_t port, char *err, size_t errlen)
{
	int fd = socket(AF_INET6, (proto == GW_PROTO_TCP ? SOCK_STREAM : SOCK_DGRAM) |
				      SOCK_NONBLOCK | SOCK_CLOEXEC,
			0);
	if (fd < 0) {
		snprintf(err, errlen, "%s port %u: socket: %s", gw_proto_name(proto), port,
			 strerror(errno));
		return -1;
	}
	int one = 1, zero = 0;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons(port),
				  .sin6_addr = IN6ADDR_ANY_INIT};
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    (proto == GW_PROTO_TCP && listen(fd, 1024) != 0)) {
		snprintf(err, errlen, "%s port %u: %s", gw_proto_name(proto), port, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int gw_fwd_open(struct gw *gw, struct gw_rt *rt, struct gw_rt *old, char *err, size_t errlen)
{
	/* Phase 1: new ports (nothing is changed yet if one cannot be bound). */
	for (size_t i = 0; i < rt->n_res; i++) {
		struct gw_res *r = &rt->res[i];
		if (r->conf->proto == GW_PROTO_HTTP)
			continue;
		struct gw_res *o = find_port(old, r->conf->proto, r->conf->port);
		if (o && o->lfd >= 0)
			continue;
		int fd = bind_port(r->conf->proto, r->conf->port, err, errlen);
		struct gw_port *p = fd >= 0 ? calloc(1, sizeof(*p)) : NULL;
		if (!p) {
			if (fd >= 0)
				close(fd);
			for (size_t k = 0; k < i; k++)
				if (rt->res[k].lsrc.ctx && !find_port(old, rt->res[k].conf->proto,
								      rt->res[k].conf->port)) {
					struct gw_port *q = rt->res[k].lsrc.ctx;
					rt->res[k].lsrc.ctx = NULL;
					rt->res[k].lfd = -1;
					q->owner = NULL;
					port_put(q);
				}
			if (fd >= 0)
				snprintf(err, errlen, "out of memory");
			return -1;
		}
		p->gw = gw;
		p->refs = 1;
		p->fd = fd;
		p->proto = r->conf->proto;
		p->port = r->conf->port;
		gw_list_init(&p->flows);
		r->lfd = fd;
		r->lsrc.ctx = p; /* the port object, registered in phase 2 */
	}
	/* Phase 2: take over kept ports, register new ones, close dropped ones. */
	for (size_t i = 0; i < rt->n_res; i++) {
		struct gw_res *r = &rt->res[i];
		if (r->conf->proto == GW_PROTO_HTTP)
			continue;
		struct gw_res *o = find_port(old, r->conf->proto, r->conf->port);
		struct gw_port *p;
		if (o && o->lfd >= 0) {
			p = o->lsrc.ctx;
			o->lfd = -1;
			o->lsrc.ctx = NULL;
			r->lfd = p->fd;
			r->lsrc.ctx = p;
			p->owner = r;
			continue;
		}
		p = r->lsrc.ctx;
		p->owner = r;
		if (evloop_add(gw->loop, &p->src, p->fd, EPOLLIN, port_event, p) != 0)
			sg_log(SG_LOG_ERROR, "gw_listen_failed", "resource=%s port=%u", r->conf->id,
			       r->conf->port);
		else
			sg_log(SG_LOG_INFO, "gw_listening", "resource=%s proto=%s port=%u",
			       r->conf->id, gw_proto_name(r->conf->proto), r->conf->port);
	}
	for (size_t i = 0; old && i < old->n_res; i++) {
		struct gw_res *o = &old->res[i];
		if (o->conf->proto == GW_PROTO_HTTP || o->lfd < 0 || !o->lsrc.ctx)
			continue;
		struct gw_port *p = o->lsrc.ctx;
		o->lfd = -1;
		o->lsrc.ctx = NULL;
		p->owner = NULL;
		evloop_del(gw->loop, &p->src);
		/* The resource is gone: so are its udp flows (tcp connections run until idle). */
		while (!gw_list_empty(&p->flows))
			udp_close(gw_container(p->flows.next, struct udp_flow, link), "resource removed");
		port_put(p);
	}
	return 0;
}

void gw_fwd_release(struct gw_rt *rt)
{
	for (size_t i = 0; i < rt->n_res; i++) {
		struct gw_res *r = &rt->res[i];
		if (r->lsrc.ctx) {
			struct gw_port *p = r->lsrc.ctx;
			r->lsrc.ctx = NULL;
			r->lfd = -1;
			p->owner = NULL;
			port_put(p);
		}
	}
}

void gw_fwd_tick(struct gw *gw)
{
	uint64_t now = gw->now_ns;
	for (struct gw_link *l = gw->flows.next, *next; l != &gw->flows; l = next) {
		next = l->next;
		struct tcp_flow *f = gw_container(l, struct tcp_flow, link);
		if (now < f->deadline_ns)
			continue;
		if (!f->connected) {
			tcp_up_failed(f, "connect timeout");
		} else {
			tcp_close(f, "idle timeout");
		}
	}
	struct gw_rt *rt = gw->rt;
	for (size_t i = 0; i < rt->n_res; i++) {
		struct gw_port *p = rt->res[i].lsrc.ctx;
		if (!p || p->proto != GW_PROTO_UDP)
			continue;
		for (struct gw_link *l = p->flows.next, *next; l != &p->flows; l = next) {
			next = l->next;
			struct udp_flow *f = gw_container(l, struct udp_flow, link);
			if (now - f->last_ns >= (uint64_t)f->r->conf->idle_timeout_ms * NS_PER_MS)
				udp_close(f, "idle timeout");
		}
	}
}

void gw_fwd_close_all(struct gw *gw)
{
	while (!gw_list_empty(&gw->flows))
		tcp_close(gw_container(gw->flows.next, struct tcp_flow, link), "shutdown");
	struct gw_rt *rt = gw->rt;
	for (size_t i = 0; rt && i < rt->n_res; i++) {
		struct gw_port *p = rt->res[i].lsrc.ctx;
		if (!p || p->proto != GW_PROTO_UDP)
			continue;
		p->refs++;
		while (!gw_list_empty(&p->flows))
			udp_close(gw_container(p->flows.next, struct udp_flow, link), "shutdown");
		port_put(p);
	}
}
