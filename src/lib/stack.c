/* The userspace TCP/IP stack over lwIP; see stack.h. Everything that touches lwIP runs on the
 * stack thread; other threads hand it work with stack_call (as engine_call does for engines). */
#include "lib/stack.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <lwip/init.h>
#include <lwip/ip.h>
#include <lwip/ip4.h>
#include <lwip/ip6.h>
#include <lwip/netif.h>
#include <lwip/pbuf.h>
#include <lwip/tcp.h>
#include <lwip/timeouts.h>
#include <lwip/udp.h>

#include <secureguard/sg_errors.h>

#include "crypto/crypto.h"
#include "net/evloop.h"

/* Bytes moved per socket read into lwIP: at most what its send buffer has room for. */
#define PUMP_BUF 16384
/* Local stream socket buffers: with lwIP's 64 KiB window this keeps a connection's data in
 * flight bounded to a few hundred KiB end to end. */
#define SOCK_BUF (256 * 1024)
/* Connections waiting for sg_tcp_accept per listener; more are reset. */
#define ACCEPT_MAX 64

struct stack_call {
	struct stack_call *next;
	void (*fn)(void *arg);
	void *arg;
	bool done;
};

/* The process's one lwIP and its thread (stack.h: lwIP is one per process by design). */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int refs;
	bool lwip_ready;
	pthread_t thread;
	struct evloop *loop;
	int wake_fd;
	struct evloop_source src_wake;
	bool stop;
	struct stack_call *calls;
	struct stack_if *ifs; /* attached interfaces (stack thread; changed under mu) */
} S = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .wake_fd = -1};

struct sconn;

struct stack_if {
	struct stack_if *next;
	struct netif netif;
	struct engine *eng;
	struct sg_log_local *log;
	unsigned mtu;
	bool has_v4;
	/* Inbound packets from the engine thread (guarded by S.mu). */
	uint8_t *rxq;
	uint16_t *rxq_len;
	size_t rxq_head, rxq_count;
	uint8_t *txbuf; /* one outbound packet, flattened */
	struct stack_counters c;
	struct sconn *conns;
	struct stack_listener *listeners;
	struct stack_udp *udps;
};

struct connect_wait {
	bool done;
	int result;
	int fd;
};

struct sconn {
	struct sconn *next;
	struct stack_if *s;
	struct tcp_pcb *pcb;
	int fd;		  /* our end of the socket pair */
	int app_fd;	  /* the app's end until handed over (-1 after) */
	struct evloop_source src;
	uint32_t events;  /* what src is registered for (0: not registered) */
	struct pbuf *rx;  /* received, not yet written to fd */
	bool rx_fin;	  /* the peer sent FIN */
	bool fd_shut;	  /* ... and fd was shut for writing after rx drained */
	bool tx_eof;	  /* the app shut its side: FIN sent */
	bool established;
	struct connect_wait *waiter; /* sg_tcp_connect waiting (guarded by S.mu) */
};

struct accepted {
	int fd;
	struct sockaddr_storage from;
};

struct stack_listener {
	struct stack_listener *next;
	struct stack_if *s; /* NULL once the interface went away */
	struct tcp_pcb *pcb;
	int efd; /* eventfd semaphore: readable while q is not empty */
	struct accepted q[ACCEPT_MAX];
	size_t qhead, qcount; /* guarded by S.mu */
};

struct udp_dgram {
	uint16_t len;
	struct sockaddr_storage from;
	uint8_t *data;
};

struct stack_udp {
	struct stack_udp *next;
	struct stack_if *s;
	struct udp_pcb *pcb;
	int efd;
	struct udp_dgram q[STACK_UDPQ];
	size_t qhead, qcount; /* guarded by S.mu */
	uint64_t dropped;
};

/* ---- the stack thread --------------------------------------------------------------------- */

static void wake(void)
{
	uint64_t one = 1;
	while (write(S.wake_fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

static bool on_stack_thread(void)
{
	return S.refs > 0 && pthread_equal(S.thread, pthread_self());
}

/* Runs fn(arg) on the stack thread and waits for it. */
static void stack_call(void (*fn)(void *arg), void *arg)
{
	struct stack_call c = {.fn = fn, .arg = arg};

	if (on_stack_thread()) {
		fn(arg);
		return;
	}
	pthread_mutex_lock(&S.mu);
	c.next = S.calls;
	S.calls = &c;
	pthread_mutex_unlock(&S.mu);
	wake();
	pthread_mutex_lock(&S.mu);
	while (!c.done)
		pthread_cond_wait(&S.cv, &S.mu);
	pthread_mutex_unlock(&S.mu);
}

static bool is_ours(struct stack_if *s, const uint8_t *pkt, size_t len)
{
	if (len >= 20 && pkt[0] >> 4 == 4) {
		ip4_addr_t dst;
		memcpy(&dst.addr, pkt + 16, 4);
		return s->has_v4 && ip4_addr_cmp(&dst, netif_ip4_addr(&s->netif));
	}
	if (len >= 40 && pkt[0] >> 4 == 6) {
		ip6_addr_t dst;
		memset(&dst, 0, sizeof(dst));
		memcpy(dst.addr, pkt + 24, 16);
		for (int i = 0; i < LWIP_IPV6_NUM_ADDRESSES; i++)
			if (ip6_addr_isvalid(netif_ip6_addr_state(&s->netif, i)) &&
			    memcmp(netif_ip6_addr(&s->netif, i)->addr, dst.addr, 16) == 0)
				return true;
	}
	return false;
}

static void drain_rx(struct stack_if *s)
{
	struct sg_log_local *prev = sg_log_set_local(s->log);
	for (;;) {
		pthread_mutex_lock(&S.mu);
		size_t head = s->rxq_head, n = s->rxq_count;
		pthread_mutex_unlock(&S.mu);
		if (!n)
			break;
		for (size_t i = 0; i < n; i++) {
			size_t slot = (head + i) % STACK_RXQ;
			const uint8_t *pkt = s->rxq + slot * s->mtu;
			size_t len = s->rxq_len[slot];
			if (!is_ours(s, pkt, len)) {
				s->c.rx_not_ours++;
				continue;
			}
			struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_RAM);
			if (!p) {
				s->c.rx_dropped++;
				continue;
			}
			pbuf_take(p, pkt, (u16_t)len);
			s->c.rx_packets++;
			if (s->netif.input(p, &s->netif) != ERR_OK)
				pbuf_free(p);
		}
		pthread_mutex_lock(&S.mu);
		s->rxq_head = (head + n) % STACK_RXQ;
		s->rxq_count -= n;
		pthread_mutex_unlock(&S.mu);
	}
	sg_log_set_local(prev);
}

static void on_wake(void *ctx, uint32_t events)
{
	uint64_t v;
	while (read(S.wake_fd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&S.mu);
	while (S.calls) {
		struct stack_call *c = S.calls;
		S.calls = c->next;
		pthread_mutex_unlock(&S.mu);
		c->fn(c->arg);
		pthread_mutex_lock(&S.mu);
		c->done = true;
	}
	pthread_cond_broadcast(&S.cv);
	pthread_mutex_unlock(&S.mu);
	for (struct stack_if *s = S.ifs; s; s = s->next)
		drain_rx(s);
}

static void *stack_main(void *arg)
{
	(void)arg;
	while (!S.stop) {
		u32_t ms = sys_timeouts_sleeptime();
		int timeout = ms == SYS_TIMEOUTS_SLEEPTIME_INFINITE ? -1 : (int)SG_MIN(ms, 60000u);
		(void)evloop_run_once(S.loop, timeout);
		sys_check_timeouts();
	}
	return NULL;
}

/* Starts the thread for the first interface (lwIP itself is initialised once per process and
 * lives on between; only the thread and its loop come and go). Called with S.mu held. */
static int stack_ref(void)
{
	if (S.refs++ > 0)
		return 0;
	int err = evloop_new(&S.loop);
	if (err == 0) {
		S.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (S.wake_fd < 0)
			err = -errno;
	}
	if (err == 0)
		err = evloop_add(S.loop, &S.src_wake, S.wake_fd, EPOLLIN, on_wake, NULL);
	if (err == 0 && !S.lwip_ready) {
		lwip_init();
		S.lwip_ready = true;
	}
	S.stop = false;
	if (err == 0 && pthread_create(&S.thread, NULL, stack_main, NULL) != 0)
		err = -EAGAIN;
	if (err != 0) {
		if (S.wake_fd >= 0)
			close(S.wake_fd);
		S.wake_fd = -1;
		evloop_free(S.loop);
		S.loop = NULL;
		S.refs--;
	}
	return err;
}

static void stop_thread(void *arg)
{
	(void)arg;
	S.stop = true;
}

/* Called without S.mu. */
static void stack_unref(void)
{
	pthread_mutex_lock(&S.mu);
	bool last = S.refs == 1;
	pthread_mutex_unlock(&S.mu);
	if (last) {
		stack_call(stop_thread, NULL);
		pthread_join(S.thread, NULL);
		pthread_mutex_lock(&S.mu);
		evloop_free(S.loop);
		S.loop = NULL;
		close(S.wake_fd);
		S.wake_fd = -1;
	} else {
		pthread_mutex_lock(&S.mu);
	}
	S.refs--;
	pthread_mutex_unlock(&S.mu);
}

/* ---- the interface ------------------------------------------------------------------------ */

static err_t output(struct stack_if *s, struct pbuf *p)
{
	if (p->tot_len > s->mtu)
		return ERR_BUF;
	pbuf_copy_partial(p, s->txbuf, p->tot_len, 0);
	int r = engine_packet_write(s->eng, s->txbuf, p->tot_len);
	if (r == SG_EFULL) {
		/* TCP keeps the segment and sends it again shortly (TF_NAGLEMEMERR). */
		s->c.tx_full++;
		return ERR_MEM;
	}
	if (r != 0)
		return ERR_IF;
	s->c.tx_packets++;
	return ERR_OK;
}

static err_t output4(struct netif *netif, struct pbuf *p, const ip4_addr_t *ipaddr)
{
	(void)ipaddr;
	return output(netif->state, p);
}

static err_t output6(struct netif *netif, struct pbuf *p, const ip6_addr_t *ipaddr)
{
	(void)ipaddr;
	return output(netif->state, p);
}

static err_t if_init(struct netif *netif)
{
	struct stack_if *s = netif->state;
	netif->name[0] = 's';
	netif->name[1] = 'g';
	netif->mtu = (u16_t)s->mtu;
#if LWIP_ND6_ALLOW_RA_UPDATES
	netif->mtu6 = (u16_t)s->mtu;
#endif
	netif->output = output4;
	netif->output_ip6 = output6;
	netif->flags = 0; /* point to point: no ARP, no neighbour discovery */
	return ERR_OK;
}

struct attach_args {
	struct stack_if *s;
	const struct sg_wgconf_ip *addrs;
	size_t n;
	int err;
	char *why;
	size_t whylen;
};

static void attach_on_stack(void *arg)
{
	struct attach_args *a = arg;
	struct stack_if *s = a->s;
	ip4_addr_t ip = {0}, mask = {0}, gw = {0};

	for (size_t i = 0; i < a->n; i++) {
		if (a->addrs[i].family != AF_INET)
			continue;
		memcpy(&ip.addr, a->addrs[i].addr, 4);
		uint8_t cidr = a->addrs[i].cidr;
		mask.addr = cidr ? htonl(0xffffffffu << (32 - cidr)) : 0;
		s->has_v4 = true;
		break;
	}
	if (!netif_add(&s->netif, &ip, &mask, &gw, s, if_init, ip_input)) {
		a->err = SG_ENOMEM;
		snprintf(a->why, a->whylen, "lwIP refused the interface");
		return;
	}
	for (size_t i = 0; i < a->n; i++) {
		if (a->addrs[i].family != AF_INET6)
			continue;
		ip6_addr_t a6;
		s8_t idx;
		memset(&a6, 0, sizeof(a6));
		memcpy(a6.addr, a->addrs[i].addr, 16);
		ip6_addr_assign_zone(&a6, IP6_UNICAST, &s->netif);
		if (netif_add_ip6_address(&s->netif, &a6, &idx) != ERR_OK) {
			a->err = SG_EFULL;
			snprintf(a->why, a->whylen, "at most %d IPv6 addresses",
				 LWIP_IPV6_NUM_ADDRESSES);
			netif_remove(&s->netif);
			return;
		}
		/* No duplicate address detection through a tunnel: usable at once. */
		netif_ip6_addr_set_state(&s->netif, idx, IP6_ADDR_PREFERRED);
	}
#if LWIP_IPV6_AUTOCONFIG
	s->netif.ip6_autoconfig_enabled = 0;
#endif
	netif_set_up(&s->netif);
	netif_set_link_up(&s->netif);
#if LWIP_IPV6_SEND_ROUTER_SOLICIT
	s->netif.rs_count = 0; /* no router to solicit inside a tunnel */
#endif
	pthread_mutex_lock(&S.mu);
	s->next = S.ifs;
	S.ifs = s;
	pthread_mutex_unlock(&S.mu);
}

int stack_attach(struct stack_if **out, struct engine *eng, const struct sg_wgconf_ip *addrs,
		 size_t n, unsigned mtu, struct sg_log_local *log, char *why, size_t whylen)
{
	struct stack_if *s;
	bool any = false;

	*out = NULL;
	for (size_t i = 0; i < n; i++)
		any = any || addrs[i].family == AF_INET || addrs[i].family == AF_INET6;
	if (!any) {
		snprintf(why, whylen, "the userspace stack needs an Address in [Interface]");
		return SG_EINVAL;
	}
	if (mtu < 1280 || mtu > 65535) {
		snprintf(why, whylen, "MTU %u: the userspace stack takes 1280 to 65535", mtu);
		return SG_ERANGE;
	}
	s = calloc(1, sizeof(*s));
	if (!s || !(s->rxq = malloc((size_t)STACK_RXQ * mtu)) ||
	    !(s->rxq_len = calloc(STACK_RXQ, sizeof(*s->rxq_len))) || !(s->txbuf = malloc(mtu))) {
		if (s) {
			free(s->rxq);
			free(s->rxq_len);
		}
		free(s);
		snprintf(why, whylen, "out of memory");
		return SG_ENOMEM;
	}
	s->eng = eng;
	s->log = log;
	s->mtu = mtu;
	pthread_mutex_lock(&S.mu);
	int err = stack_ref();
	pthread_mutex_unlock(&S.mu);
	if (err != 0) {
		free(s->rxq);
		free(s->rxq_len);
		free(s->txbuf);
		free(s);
		snprintf(why, whylen, "stack thread: %s", strerror(-err));
		return SG_ENOMEM;
	}
	struct attach_args a = {.s = s, .addrs = addrs, .n = n, .why = why, .whylen = whylen};
	stack_call(attach_on_stack, &a);
	if (a.err != 0) {
		stack_unref();
		free(s->rxq);
		free(s->rxq_len);
		free(s->txbuf);
		free(s);
		return a.err;
	}
	*out = s;
	return 0;
}

void stack_input(struct stack_if *s, const uint8_t *pkt, size_t len)
{
	if (len > s->mtu)
		return;
	pthread_mutex_lock(&S.mu);
	if (s->rxq_count == STACK_RXQ) {
		/* A full queue drops, as a NIC's ring does: TCP sends again. */
		s->c.rx_dropped++;
		pthread_mutex_unlock(&S.mu);
		return;
	}
	size_t slot = (s->rxq_head + s->rxq_count) % STACK_RXQ;
	memcpy(s->rxq + slot * s->mtu, pkt, len);
	s->rxq_len[slot] = (uint16_t)len;
	bool was_empty = s->rxq_count++ == 0;
	pthread_mutex_unlock(&S.mu);
	if (was_empty)
		wake();
}

void stack_get_counters(struct stack_if *s, struct stack_counters *out)
{
	pthread_mutex_lock(&S.mu);
	*out = s->c;
	pthread_mutex_unlock(&S.mu);
}

/* ---- addresses ---------------------------------------------------------------------------- */

static int to_lwip(const struct sockaddr *sa, socklen_t len, ip_addr_t *ip, u16_t *port)
{
	memset(ip, 0, sizeof(*ip));
	if (sa && sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		IP_SET_TYPE(ip, IPADDR_TYPE_V4);
		ip_2_ip4(ip)->addr = in->sin_addr.s_addr;
		*port = ntohs(in->sin_port);
		return 0;
	}
	if (sa && sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			IP_SET_TYPE(ip, IPADDR_TYPE_V4);
			memcpy(&ip_2_ip4(ip)->addr, in6->sin6_addr.s6_addr + 12, 4);
		} else {
			IP_SET_TYPE(ip, IPADDR_TYPE_V6);
			memcpy(ip_2_ip6(ip)->addr, in6->sin6_addr.s6_addr, 16);
		}
		*port = ntohs(in6->sin6_port);
		return 0;
	}
	return SG_EINVAL;
}

static void from_lwip(struct sockaddr_storage *ss, const ip_addr_t *ip, u16_t port)
{
	memset(ss, 0, sizeof(*ss));
	if (IP_IS_V4(ip)) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		in->sin_addr.s_addr = ip_2_ip4(ip)->addr;
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		memcpy(in6->sin6_addr.s6_addr, ip_2_ip6(ip)->addr, 16);
	}
}

/* ---- TCP: moving bytes between lwIP and the local socket ---------------------------------- */

static void conn_event(void *ctx, uint32_t events);

static void conn_interest(struct sconn *c, uint32_t want)
{
	struct evloop *l = S.loop;
	if (want == c->events)
		return;
	if (!want) {
		/* Out of epoll: a hung-up socket would otherwise report EPOLLHUP forever. */
		evloop_del(l, &c->src);
	} else if (!c->events) {
		if (evloop_add(l, &c->src, c->fd, want, conn_event, c) != 0)
			want = 0;
	} else if (evloop_mod(l, &c->src, want) != 0) {
		evloop_del(l, &c->src);
		want = 0;
	}
	c->events = want;
}

static void conn_unlink(struct sconn *c)
{
	for (struct sconn **pp = &c->s->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
}

/* Ends the connection's life here: the pcb (aborted unless already gone or handed to
 * tcp_close), our socket, what lwIP had received. c is freed after the loop turn would be
 * safer, but evloop_del neutralises the batch, so freeing now is fine (evloop.h). */
static void conn_free(struct sconn *c, bool abort_pcb)
{
	if (c->pcb) {
		tcp_arg(c->pcb, NULL);
		tcp_recv(c->pcb, NULL);
		tcp_sent(c->pcb, NULL);
		tcp_err(c->pcb, NULL);
		if (abort_pcb)
			tcp_abort(c->pcb);
		else if (tcp_close(c->pcb) != ERR_OK)
			tcp_abort(c->pcb);
		c->pcb = NULL;
	}
	conn_interest(c, 0);
	if (c->fd >= 0)
		close(c->fd);
	if (c->app_fd >= 0)
		close(c->app_fd);
	if (c->rx)
		pbuf_free(c->rx);
	pthread_mutex_lock(&S.mu);
	if (c->waiter) {
		c->waiter->done = true;
		c->waiter->result = SG_ENOROUTE;
		c->waiter->fd = -1;
		c->waiter = NULL;
		pthread_cond_broadcast(&S.cv);
	}
	pthread_mutex_unlock(&S.mu);
	conn_unlink(c);
	free(c);
}

static void conn_update(struct sconn *c)
{
	uint32_t want = 0;
	if (c->rx)
		want |= EPOLLOUT;
	/* Read the app's bytes only while lwIP can take some. */
	if (c->established && !c->tx_eof && c->pcb && tcp_sndbuf(c->pcb) > 0 &&
	    tcp_sndqueuelen(c->pcb) < TCP_SND_QUEUELEN)
		want |= EPOLLIN;
	conn_interest(c, want);
	/* Both directions done: lwIP finishes the close on its own. */
	if (c->tx_eof && c->rx_fin && c->fd_shut && !c->rx)
		conn_free(c, false);
}

/* Received bytes to the app's socket; the window opens by what it took. Returns false when the
 * connection was freed. */
static bool flush_rx(struct sconn *c)
{
	while (c->rx) {
		ssize_t n = send(c->fd, c->rx->payload, c->rx->len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (n <= 0) {
			conn_free(c, true); /* the app closed its socket */
			return false;
		}
		c->rx = pbuf_free_header(c->rx, (u16_t)n);
		if (c->pcb)
			tcp_recved(c->pcb, (u16_t)n);
	}
	if (c->rx_fin && !c->fd_shut) {
		shutdown(c->fd, SHUT_WR);
		c->fd_shut = true;
	}
	return true;
}

static bool pump_tx(struct sconn *c)
{
	uint8_t buf[PUMP_BUF];
	bool wrote = false;

	while (c->pcb && !c->tx_eof) {
		size_t room = tcp_sndbuf(c->pcb);
		if (room == 0 || tcp_sndqueuelen(c->pcb) >= TCP_SND_QUEUELEN)
			break;
		ssize_t n = recv(c->fd, buf, SG_MIN(room, sizeof(buf)), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			conn_free(c, true);
			return false;
		}
		if (n == 0) {
			c->tx_eof = true;
			tcp_shutdown(c->pcb, 0, 1); /* FIN */
			wrote = true;
			break;
		}
		if (tcp_write(c->pcb, buf, (u16_t)n, TCP_WRITE_FLAG_COPY) != ERR_OK) {
			conn_free(c, true);
			return false;
		}
		wrote = true;
	}
	if (wrote && c->pcb)
		tcp_output(c->pcb);
	return true;
}

static void conn_event(void *ctx, uint32_t events)
{
	struct sconn *c = ctx;
	struct sg_log_local *prev = sg_log_set_local(c->s->log);

	if ((events & EPOLLOUT) && !flush_rx(c))
		goto out;
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !pump_tx(c))
		goto out;
	if ((events & EPOLLERR) && !(events & EPOLLIN)) {
		conn_free(c, true);
		goto out;
	}
	conn_update(c);
out:
	sg_log_set_local(prev);
}

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	struct sconn *c = arg;
	(void)pcb;
	(void)err;
	if (!c) {
		if (p)
			pbuf_free(p);
		return ERR_OK;
	}
	if (!p)
		c->rx_fin = true;
	else if (c->rx)
		pbuf_cat(c->rx, p);
	else
		c->rx = p;
	if (!flush_rx(c))
		return ERR_ABRT; /* conn_free aborted the pcb */
	conn_update(c);
	return ERR_OK;
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	struct sconn *c = arg;
	(void)pcb;
	(void)len;
	if (!c)
		return ERR_OK;
	/* Room again: take more of the app's bytes now rather than on the next poll. */
	if (!pump_tx(c))
		return ERR_ABRT;
	conn_update(c);
	return ERR_OK;
}

static void on_err(void *arg, err_t err)
{
	struct sconn *c = arg;
	(void)err;
	if (!c)
		return;
	c->pcb = NULL; /* already freed by lwIP */
	conn_free(c, false);
}

static struct sconn *conn_new(struct stack_if *s)
{
	int sv[2];
	struct sconn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		free(c);
		return NULL;
	}
	int sz = SOCK_BUF;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
	c->s = s;
	c->fd = sv[0];
	c->app_fd = sv[1];
	c->next = s->conns;
	s->conns = c;
	return c;
}

static void conn_start(struct sconn *c, struct tcp_pcb *pcb)
{
	c->pcb = pcb;
	tcp_arg(pcb, c);
	tcp_recv(pcb, on_recv);
	tcp_sent(pcb, on_sent);
	tcp_err(pcb, on_err);
}

/* ---- TCP: connect ------------------------------------------------------------------------- */

static err_t on_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
	struct sconn *c = arg;
	(void)pcb;
	(void)err;
	c->established = true;
	pthread_mutex_lock(&S.mu);
	if (c->waiter) {
		c->waiter->done = true;
		c->waiter->result = 0;
		c->waiter->fd = c->app_fd;
		c->app_fd = -1;
		c->waiter = NULL;
		pthread_cond_broadcast(&S.cv);
	}
	pthread_mutex_unlock(&S.mu);
	conn_update(c);
	return ERR_OK;
}

struct connect_args {
	struct stack_if *s;
	ip_addr_t ip;
	u16_t port;
	struct connect_wait *w;
	struct sconn *c;
	int err;
};

static void connect_on_stack(void *arg)
{
	struct connect_args *a = arg;
	struct sconn *c = conn_new(a->s);
	if (!c) {
		a->err = SG_ENOMEM;
		return;
	}
	struct tcp_pcb *pcb = tcp_new_ip_type(IP_GET_TYPE(&a->ip));
	if (!pcb) {
		conn_free(c, false);
		a->err = SG_ENOMEM;
		return;
	}
	tcp_bind_netif(pcb, &a->s->netif);
	conn_start(c, pcb);
	c->waiter = a->w;
	if (tcp_connect(pcb, &a->ip, a->port, on_connected) != ERR_OK) {
		c->waiter = NULL;
		conn_free(c, true);
		a->err = SG_ENOROUTE;
		return;
	}
	a->c = c;
}

struct cancel_args {
	struct stack_if *s;
	struct connect_wait *w;
};

static void cancel_on_stack(void *arg)
{
	struct cancel_args *a = arg;
	pthread_mutex_lock(&S.mu);
	bool done = a->w->done;
	pthread_mutex_unlock(&S.mu);
	if (done)
		return;
	for (struct sconn *c = a->s->conns; c; c = c->next)
		if (c->waiter == a->w) {
			conn_free(c, true);
			break;
		}
	pthread_mutex_lock(&S.mu);
	a->w->result = SG_EAGAIN;
	pthread_mutex_unlock(&S.mu);
}

int stack_tcp_connect(struct stack_if *s, const struct sockaddr *to, socklen_t tolen,
		      int timeout_ms, int *fd)
{
	struct connect_wait w = {.fd = -1};
	struct connect_args a = {.s = s, .w = &w};

	*fd = -1;
	if (to_lwip(to, tolen, &a.ip, &a.port) != 0 || a.port == 0)
		return SG_EINVAL;
	stack_call(connect_on_stack, &a);
	if (a.err != 0)
		return a.err;
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	if (timeout_ms >= 0) {
		until.tv_sec += timeout_ms / 1000;
		until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&S.mu);
	while (!w.done) {
		if (timeout_ms < 0) {
			pthread_cond_wait(&S.cv, &S.mu);
		} else if (pthread_cond_timedwait(&S.cv, &S.mu, &until) == ETIMEDOUT) {
			break;
		}
	}
	bool done = w.done;
	pthread_mutex_unlock(&S.mu);
	if (!done) {
		struct cancel_args ca = {.s = s, .w = &w};
		stack_call(cancel_on_stack, &ca);
	}
	if (w.result == 0 && w.fd >= 0) {
		*fd = w.fd;
		return 0;
	}
	if (w.fd >= 0)
		close(w.fd);
	return w.result ? w.result : SG_EAGAIN;
}

/* ---- TCP: listen -------------------------------------------------------------------------- */

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	struct stack_listener *l = arg;
	if (err != ERR_OK || !pcb || !l)
		return ERR_VAL;
	pthread_mutex_lock(&S.mu);
	bool full = l->qcount == ACCEPT_MAX;
	pthread_mutex_unlock(&S.mu);
	struct sconn *c = full ? NULL : conn_new(l->s);
	if (!c) {
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	conn_start(c, pcb);
	c->established = true;
	pthread_mutex_lock(&S.mu);
	struct accepted *q = &l->q[(l->qhead + l->qcount++) % ACCEPT_MAX];
	q->fd = c->app_fd;
	from_lwip(&q->from, &pcb->remote_ip, pcb->remote_port);
	pthread_mutex_unlock(&S.mu);
	c->app_fd = -1;
	uint64_t one = 1;
	(void)!write(l->efd, &one, sizeof(one));
	conn_update(c);
	return ERR_OK;
}

struct listen_args {
	struct stack_listener *l;
	ip_addr_t ip;
	u16_t port;
	int err;
};

static void listen_on_stack(void *arg)
{
	struct listen_args *a = arg;
	struct stack_listener *l = a->l;
	bool any = ip_addr_isany(&a->ip);
	struct tcp_pcb *pcb = tcp_new_ip_type(any ? IPADDR_TYPE_ANY : IP_GET_TYPE(&a->ip));
	if (!pcb) {
		a->err = SG_ENOMEM;
		return;
	}
	tcp_bind_netif(pcb, &l->s->netif);
	if (tcp_bind(pcb, any ? IP_ANY_TYPE : &a->ip, a->port) != ERR_OK) {
		tcp_abort(pcb);
		a->err = SG_EEXIST;
		return;
	}
	struct tcp_pcb *lp = tcp_listen_with_backlog(pcb, ACCEPT_MAX);
	if (!lp) {
		tcp_abort(pcb);
		a->err = SG_ENOMEM;
		return;
	}
	l->pcb = lp;
	tcp_arg(lp, l);
	tcp_accept(lp, on_accept);
	l->next = l->s->listeners;
	l->s->listeners = l;
}

int stack_tcp_listen(struct stack_if *s, const struct sockaddr *local, socklen_t len,
		     struct stack_listener **out)
{
	struct listen_args a;

	*out = NULL;
	memset(&a, 0, sizeof(a));
	if (to_lwip(local, len, &a.ip, &a.port) != 0 || a.port == 0)
		return SG_EINVAL;
	a.l = calloc(1, sizeof(*a.l));
	if (!a.l)
		return SG_ENOMEM;
	a.l->s = s;
	a.l->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC | EFD_SEMAPHORE);
	if (a.l->efd < 0) {
		free(a.l);
		return SG_EIO;
	}
	stack_call(listen_on_stack, &a);
	if (a.err != 0) {
		close(a.l->efd);
		free(a.l);
		return a.err;
	}
	*out = a.l;
	return 0;
}

int stack_listener_fd(const struct stack_listener *l)
{
	return l->efd;
}

int stack_tcp_accept(struct stack_listener *l, int *fd, struct sockaddr_storage *from)
{
	*fd = -1;
	pthread_mutex_lock(&S.mu);
	if (!l->qcount) {
		bool down = !l->s;
		pthread_mutex_unlock(&S.mu);
		return down ? SG_EDOWN : SG_EAGAIN;
	}
	struct accepted *q = &l->q[l->qhead];
	l->qhead = (l->qhead + 1) % ACCEPT_MAX;
	l->qcount--;
	*fd = q->fd;
	if (from)
		*from = q->from;
	pthread_mutex_unlock(&S.mu);
	uint64_t v;
	(void)!read(l->efd, &v, sizeof(v));
	return 0;
}

/* Stack thread: the listening pcb and the connections nobody accepted. */
static void listener_shut(struct stack_listener *l)
{
	if (l->pcb) {
		tcp_arg(l->pcb, NULL);
		tcp_accept(l->pcb, NULL);
		tcp_close(l->pcb);
		l->pcb = NULL;
	}
	pthread_mutex_lock(&S.mu);
	while (l->qcount) {
		close(l->q[l->qhead].fd);
		l->qhead = (l->qhead + 1) % ACCEPT_MAX;
		l->qcount--;
	}
	pthread_mutex_unlock(&S.mu);
}

static void listener_close_on_stack(void *arg)
{
	struct stack_listener *l = arg;
	listener_shut(l);
	if (l->s)
		for (struct stack_listener **pp = &l->s->listeners; *pp; pp = &(*pp)->next)
			if (*pp == l) {
				*pp = l->next;
				break;
			}
}

void stack_listener_close(struct stack_listener *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&S.mu);
	bool attached = l->s != NULL;
	pthread_mutex_unlock(&S.mu);
	if (attached)
		stack_call(listener_close_on_stack, l);
	close(l->efd);
	free(l);
}

/* ---- UDP ---------------------------------------------------------------------------------- */

static void on_udp_recv(void *arg, struct udp_pcb *pcb, struct pbuf *p, const ip_addr_t *addr,
			u16_t port)
{
	struct stack_udp *u = arg;
	(void)pcb;
	pthread_mutex_lock(&S.mu);
	if (!u || u->qcount == STACK_UDPQ) {
		if (u)
			u->dropped++;
		pthread_mutex_unlock(&S.mu);
		pbuf_free(p);
		return;
	}
	pthread_mutex_unlock(&S.mu);
	uint8_t *data = malloc(p->tot_len ? p->tot_len : 1);
	if (!data) {
		pbuf_free(p);
		return;
	}
	pbuf_copy_partial(p, data, p->tot_len, 0);
	pthread_mutex_lock(&S.mu);
	struct udp_dgram *d = &u->q[(u->qhead + u->qcount++) % STACK_UDPQ];
	d->data = data;
	d->len = p->tot_len;
	from_lwip(&d->from, addr, port);
	pthread_mutex_unlock(&S.mu);
	pbuf_free(p);
	uint64_t one = 1;
	(void)!write(u->efd, &one, sizeof(one));
}

struct udp_args {
	struct stack_udp *u;
	ip_addr_t ip;
	u16_t port;
	const void *buf;
	size_t len;
	int err;
};

static void udp_open_on_stack(void *arg)
{
	struct udp_args *a = arg;
	struct stack_udp *u = a->u;
	bool any = ip_addr_isany(&a->ip);
	u->pcb = udp_new_ip_type(any ? IPADDR_TYPE_ANY : IP_GET_TYPE(&a->ip));
	if (!u->pcb) {
		a->err = SG_ENOMEM;
		return;
	}
	udp_bind_netif(u->pcb, &u->s->netif);
	if (udp_bind(u->pcb, any ? IP_ANY_TYPE : &a->ip, a->port) != ERR_OK) {
		udp_remove(u->pcb);
		u->pcb = NULL;
		a->err = SG_EEXIST;
		return;
	}
	udp_recv(u->pcb, on_udp_recv, u);
	u->next = u->s->udps;
	u->s->udps = u;
}

int stack_udp_open(struct stack_if *s, const struct sockaddr *local, socklen_t len,
		   struct stack_udp **out)
{
	struct udp_args a;

	*out = NULL;
	memset(&a, 0, sizeof(a));
	if (local && to_lwip(local, len, &a.ip, &a.port) != 0)
		return SG_EINVAL;
	a.u = calloc(1, sizeof(*a.u));
	if (!a.u)
		return SG_ENOMEM;
	a.u->s = s;
	a.u->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC | EFD_SEMAPHORE);
	if (a.u->efd < 0) {
		free(a.u);
		return SG_EIO;
	}
	stack_call(udp_open_on_stack, &a);
	if (a.err != 0) {
		close(a.u->efd);
		free(a.u);
		return a.err;
	}
	*out = a.u;
	return 0;
}

int stack_udp_fd(const struct stack_udp *u)
{
	return u->efd;
}

static void udp_send_on_stack(void *arg)
{
	struct udp_args *a = arg;
	if (!a->u->pcb) {
		a->err = SG_EDOWN;
		return;
	}
	struct pbuf *p = pbuf_alloc(PBUF_TRANSPORT, (u16_t)a->len, PBUF_RAM);
	if (!p) {
		a->err = SG_ENOMEM;
		return;
	}
	pbuf_take(p, a->buf, (u16_t)a->len);
	err_t e = udp_sendto(a->u->pcb, p, &a->ip, a->port);
	pbuf_free(p);
	a->err = e == ERR_OK ? 0 : e == ERR_MEM ? SG_EFULL : e == ERR_RTE ? SG_ENOROUTE : SG_EIO;
}

int stack_udp_sendto(struct stack_udp *u, const void *buf, size_t len, const struct sockaddr *to,
		     socklen_t tolen)
{
	struct udp_args a;

	memset(&a, 0, sizeof(a));
	if (len > 65507 || to_lwip(to, tolen, &a.ip, &a.port) != 0 || a.port == 0)
		return len > 65507 ? SG_ERANGE : SG_EINVAL;
	a.u = u;
	a.buf = buf;
	a.len = len;
	pthread_mutex_lock(&S.mu);
	bool attached = u->s != NULL;
	pthread_mutex_unlock(&S.mu);
	if (!attached)
		return SG_EDOWN;
	stack_call(udp_send_on_stack, &a);
	return a.err;
}

int stack_udp_recvfrom(struct stack_udp *u, void *buf, size_t cap, size_t *len,
		       struct sockaddr_storage *from)
{
	pthread_mutex_lock(&S.mu);
	if (!u->qcount) {
		bool down = !u->s;
		pthread_mutex_unlock(&S.mu);
		return down ? SG_EDOWN : SG_EAGAIN;
	}
	struct udp_dgram d = u->q[u->qhead];
	u->qhead = (u->qhead + 1) % STACK_UDPQ;
	u->qcount--;
	pthread_mutex_unlock(&S.mu);
	memcpy(buf, d.data, SG_MIN(cap, (size_t)d.len));
	*len = d.len;
	if (from)
		*from = d.from;
	free(d.data);
	uint64_t v;
	(void)!read(u->efd, &v, sizeof(v));
	return 0;
}

static void udp_shut(struct stack_udp *u)
{
	if (u->pcb) {
		udp_remove(u->pcb);
		u->pcb = NULL;
	}
	pthread_mutex_lock(&S.mu);
	while (u->qcount) {
		free(u->q[u->qhead].data);
		u->qhead = (u->qhead + 1) % STACK_UDPQ;
		u->qcount--;
	}
	pthread_mutex_unlock(&S.mu);
}

static void udp_close_on_stack(void *arg)
{
	struct stack_udp *u = arg;
	udp_shut(u);
	if (u->s)
		for (struct stack_udp **pp = &u->s->udps; *pp; pp = &(*pp)->next)
			if (*pp == u) {
				*pp = u->next;
				break;
			}
}

void stack_udp_close(struct stack_udp *u)
{
	if (!u)
		return;
	pthread_mutex_lock(&S.mu);
	bool attached = u->s != NULL;
	pthread_mutex_unlock(&S.mu);
	if (attached)
		stack_call(udp_close_on_stack, u);
	else
		udp_shut(u);
	close(u->efd);
	free(u);
}

/* ---- detach ------------------------------------------------------------------------------- */

static void detach_on_stack(void *arg)
{
	struct stack_if *s = arg;
	while (s->conns)
		conn_free(s->conns, true);
	for (struct stack_listener *l = s->listeners; l; l = l->next) {
		listener_shut(l);
		pthread_mutex_lock(&S.mu);
		l->s = NULL;
		pthread_mutex_unlock(&S.mu);
		/* Readable, so a waiting accept learns SG_EDOWN. */
		uint64_t one = 1;
		(void)!write(l->efd, &one, sizeof(one));
	}
	for (struct stack_udp *u = s->udps; u; u = u->next) {
		udp_shut(u);
		pthread_mutex_lock(&S.mu);
		u->s = NULL;
		pthread_mutex_unlock(&S.mu);
		uint64_t one = 1;
		(void)!write(u->efd, &one, sizeof(one));
	}
	s->listeners = NULL;
	s->udps = NULL;
	netif_remove(&s->netif);
	pthread_mutex_lock(&S.mu);
	for (struct stack_if **pp = &S.ifs; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	pthread_mutex_unlock(&S.mu);
}

static void reset_on_stack(void *arg)
{
	struct stack_if *s = arg;
	while (s->conns)
		conn_free(s->conns, true);
}

void stack_reset(struct stack_if *s)
{
	stack_call(reset_on_stack, s);
}

void stack_detach(struct stack_if *s)
{
	if (!s)
		return;
	stack_call(detach_on_stack, s);
	stack_unref();
	sg_memzero(s->rxq, (size_t)STACK_RXQ * s->mtu); /* plaintext packets */
	free(s->rxq);
	free(s->rxq_len);
	free(s->txbuf);
	free(s);
}
