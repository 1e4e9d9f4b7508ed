/* The outer UDP socket; see udp.h. */
#include "net/udp.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/addr.h"

static void set_bufsize(int fd, int force_opt, int opt)
{
	int size = UDP_SOCKBUF;
	/* FORCE ignores rmem_max/wmem_max but needs CAP_NET_ADMIN; fall back quietly. */
	if (setsockopt(fd, SOL_SOCKET, force_opt, &size, sizeof(size)) != 0)
		(void)setsockopt(fd, SOL_SOCKET, opt, &size, sizeof(size));
}

int udp_open(struct udp_sock *u, uint16_t port, uint32_t fwmark, bool offload, const char **why)
{
	union wg_sockaddr sa;
	socklen_t salen;
	int err;

	u->fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	u->family = AF_INET6;
	if (u->fd < 0 && errno == EAFNOSUPPORT) {
		u->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		u->family = AF_INET;
	}
	if (u->fd < 0) {
		*why = "socket";
		return -errno;
	}
	memset(&sa, 0, sizeof(sa));
	if (u->family == AF_INET6) {
		int off = 0;
		if (setsockopt(u->fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) != 0) {
			err = -errno;
			*why = "IPV6_V6ONLY";
			goto fail;
		}
		sa.in6.sin6_family = AF_INET6;
		sa.in6.sin6_addr = in6addr_any;
		sa.in6.sin6_port = htons(port);
		salen = sizeof(sa.in6);
	} else {
		sa.in4.sin_family = AF_INET;
		sa.in4.sin_addr.s_addr = htonl(INADDR_ANY);
		sa.in4.sin_port = htons(port);
		salen = sizeof(sa.in4);
	}
	/* Where each datagram was sent to, for sticky sources (udp.h). The dual-stack socket gets
	 * IPV6_PKTINFO for both families, and IP_PKTINFO too for IPv4 datagrams, whose
	 * ipi_spec_dst is the local address to answer from even for a datagram sent to a
	 * broadcast address. Both exist since Linux 2.6.14; without them replies simply follow
	 * routing, so a refusal is not fatal. */
	int on = 1;
	if (u->family == AF_INET6)
		(void)setsockopt(u->fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof(on));
	(void)setsockopt(u->fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof(on));
	set_bufsize(u->fd, SO_RCVBUFFORCE, SO_RCVBUF);
	set_bufsize(u->fd, SO_SNDBUFFORCE, SO_SNDBUF);
	u->fwmark = 0;
	if (fwmark != 0) {
		err = udp_set_fwmark(u, fwmark);
		if (err != 0) {
			*why = "SO_MARK";
			goto fail;
		}
	}
	if (bind(u->fd, &sa.sa, salen) != 0) {
		err = -errno;
		*why = "bind";
		goto fail;
	}
	salen = sizeof(sa);
	if (getsockname(u->fd, &sa.sa, &salen) != 0) {
		err = -errno;
		*why = "getsockname";
		goto fail;
	}
	u->port = ntohs(u->family == AF_INET6 ? sa.in6.sin6_port : sa.in4.sin_port);
	u->gso = u->gro = false;
	if (offload) {
		/* The kernel knows UDP_SEGMENT if it can report it (wireguard-go probes the same
		 * way); whether the route's device can do it shows at the first send. */
		int v = 0;
		socklen_t vlen = sizeof(v);
		u->gso = getsockopt(u->fd, IPPROTO_UDP, UDP_SEGMENT, &v, &vlen) == 0;
		int one = 1;
		u->gro = setsockopt(u->fd, IPPROTO_UDP, UDP_GRO, &one, sizeof(one)) == 0;
	}
	return 0;
fail:
	close(u->fd);
	u->fd = -1;
	return err;
}

void udp_close(struct udp_sock *u)
{
	if (u->fd >= 0)
		close(u->fd);
	u->fd = -1;
	u->port = 0;
	u->gso = u->gro = false;
}

int udp_set_fwmark(struct udp_sock *u, uint32_t mark)
{
	if (setsockopt(u->fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) != 0)
		return -errno;
	u->fwmark = mark;
	return 0;
}

/* ---- receive ------------------------------------------------------------------------------ */

int udp_rx_init(struct udp_rx *rx)
{
	memset(rx, 0, sizeof(*rx));
	rx->bufs = malloc((size_t)UDP_BATCH * UDP_RX_BUF);
	return rx->bufs ? 0 : -ENOMEM;
}

void udp_rx_free(struct udp_rx *rx)
{
	free(rx->bufs);
	rx->bufs = NULL;
}

uint8_t *udp_rx_buf(struct udp_rx *rx, int i)
{
	return rx->bufs + (size_t)i * UDP_RX_BUF;
}

static bool v4mapped(const struct in6_addr *a)
{
	static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	return memcmp(a, prefix, sizeof(prefix)) == 0;
}

/* The control messages of buffer i: the GRO segment size, and the local address the datagram
 * was sent to as the source of rx->from[i] (already unmapped). CMSG_NXTHDR stops at the end of
 * what the kernel wrote; each payload is checked for length before it is read. */
static void parse_ctrl(struct udp_sock *u, struct udp_rx *rx, int i)
{
	struct msghdr *h = &rx->msgs[i].msg_hdr;
	struct wg_endpoint *ep = &rx->from[i];
	int family = ep->addr.sa.sa_family;
	bool have_v4 = false;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
		if (u->gro && c->cmsg_level == IPPROTO_UDP && c->cmsg_type == UDP_GRO &&
		    c->cmsg_len >= CMSG_LEN(sizeof(int))) {
			int seg;
			memcpy(&seg, CMSG_DATA(c), sizeof(seg));
			/* A size that makes no sense leaves the buffer as one datagram. */
			if (seg > 0 && (size_t)seg < rx->msgs[i].msg_len) {
				rx->seg_size[i] = (size_t)seg;
				rx->gro_msgs++;
			}
		} else if (family == AF_INET && c->cmsg_level == IPPROTO_IP &&
			   c->cmsg_type == IP_PKTINFO &&
			   c->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
			struct in_pktinfo pi;
			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			if (pi.ipi_spec_dst.s_addr != htonl(INADDR_ANY)) {
				ep->src4 = pi.ipi_spec_dst;
				ep->src_ifindex = (uint32_t)pi.ipi_ifindex;
				ep->has_src = true;
				have_v4 = true;
			}
		} else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
			   c->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
			struct in6_pktinfo pi;
			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			if (IN6_IS_ADDR_UNSPECIFIED(&pi.ipi6_addr))
				continue;
			if (family == AF_INET6 && !v4mapped(&pi.ipi6_addr)) {
				ep->src6 = pi.ipi6_addr;
			} else if (family == AF_INET && v4mapped(&pi.ipi6_addr) && !have_v4) {
				/* An IPv4 datagram on the dual-stack socket; IP_PKTINFO, when it
				 * comes too, is preferred (ipi_spec_dst). */
				memcpy(&ep->src4, (const uint8_t *)&pi.ipi6_addr + 12, 4);
			} else {
				continue;
			}
			ep->src_ifindex = pi.ipi6_ifindex;
			ep->has_src = true;
		}
	}
}

int udp_recv_batch(struct udp_sock *u, struct udp_rx *rx)
{
	for (int i = 0; i < UDP_BATCH; i++) {
		rx->iov[i].iov_base = udp_rx_buf(rx, i);
		rx->iov[i].iov_len = UDP_RX_BUF;
		memset(&rx->msgs[i], 0, sizeof(rx->msgs[i]));
		rx->msgs[i].msg_hdr.msg_iov = &rx->iov[i];
		rx->msgs[i].msg_hdr.msg_iovlen = 1;
		rx->msgs[i].msg_hdr.msg_name = &rx->from[i].addr;
		rx->msgs[i].msg_hdr.msg_namelen = sizeof(rx->from[i].addr);
		/* Each message its own control buffer: the kernel writes them all in one call. */
		rx->msgs[i].msg_hdr.msg_control = rx->ctrl[i].buf;
		rx->msgs[i].msg_hdr.msg_controllen = sizeof(rx->ctrl[i].buf);
	}
	int n;
	do
		n = recvmmsg(u->fd, rx->msgs, UDP_BATCH, MSG_DONTWAIT, NULL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		if (rx->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
			rx->msgs[i].msg_len = 0;
			rx->truncated++;
		}
		addr_unmap_endpoint(&rx->from[i], &rx->from[i]);
		/* The slot is reused: no source unless this datagram's control says one. */
		memset(&rx->from[i].src6, 0, sizeof(rx->from[i].src6));
		rx->from[i].src_ifindex = 0;
		rx->from[i].has_src = false;
		rx->seg_size[i] = rx->msgs[i].msg_len;
		parse_ctrl(u, rx, i);
	}
	return n;
}

/* ---- send --------------------------------------------------------------------------------- */

int udp_tx_init(struct udp_tx *tx)
{
	memset(tx, 0, sizeof(*tx));
	tx->arena = malloc(UDP_TX_ARENA);
	return tx->arena ? 0 : -ENOMEM;
}

void udp_tx_free(struct udp_tx *tx)
{
	free(tx->arena);
	tx->arena = NULL;
}

/* The destination in the socket's family: IPv4 goes out of the dual-stack socket as
 * ::ffff:a.b.c.d; on an IPv4-only socket only IPv4 (or mapped) endpoints can be reached. */
static socklen_t to_sockaddr(const struct udp_sock *u, const struct wg_endpoint *to,
			     union wg_sockaddr *out)
{
	struct wg_endpoint plain;

	memset(out, 0, sizeof(*out));
	if (u->family == AF_INET6) {
		if (to->addr.sa.sa_family == AF_INET6) {
			out->in6 = to->addr.in6;
			return sizeof(out->in6);
		}
		if (to->addr.sa.sa_family != AF_INET)
			return 0;
		out->in6.sin6_family = AF_INET6;
		out->in6.sin6_port = to->addr.in4.sin_port;
		uint8_t *a = (uint8_t *)&out->in6.sin6_addr;
		a[10] = a[11] = 0xff;
		memcpy(a + 12, &to->addr.in4.sin_addr, 4);
		return sizeof(out->in6);
	}
	addr_unmap_endpoint(&plain, to);
	if (plain.addr.sa.sa_family != AF_INET)
		return 0;
	out->in4 = plain.addr.in4;
	return sizeof(out->in4);
}

/* The source control message for `to`, if it has a source the socket can use. On the dual-stack
 * socket an IPv4 destination goes out mapped, and the kernel's IPv4 path (ip_cmsg_send) takes
 * its source from an IPV6_PKTINFO with a mapped address, so both families use IPV6_PKTINFO
 * there. The interface index is left 0 (routing picks the device, as wireguard-go does for IPv4
 * and the kernel's socket.c for both), except for a link-local source, which is only an address
 * together with its interface. */
static void set_src(const struct udp_sock *u, const struct wg_endpoint *to, struct udp_tx_slot *sl)
{
	memset(&sl->src, 0, sizeof(sl->src));
	sl->src_level = 0;
	if (!to->has_src)
		return;
	if (to->addr.sa.sa_family == AF_INET && u->family == AF_INET6) {
		uint8_t *a = (uint8_t *)&sl->src.v6.ipi6_addr;
		a[10] = a[11] = 0xff;
		memcpy(a + 12, &to->src4, 4);
		sl->src_level = IPPROTO_IPV6;
	} else if (to->addr.sa.sa_family == AF_INET && u->family == AF_INET) {
		sl->src.v4.ipi_spec_dst = to->src4;
		sl->src_level = IPPROTO_IP;
	} else if (to->addr.sa.sa_family == AF_INET6 && u->family == AF_INET6 &&
		   !v4mapped(&to->src6)) {
		sl->src.v6.ipi6_addr = to->src6;
		if (IN6_IS_ADDR_LINKLOCAL(&to->src6))
			sl->src.v6.ipi6_ifindex = to->src_ifindex;
		sl->src_level = IPPROTO_IPV6;
	}
}

void udp_tx_queue(struct udp_sock *u, struct udp_tx *tx, const struct wg_endpoint *to,
		  const uint8_t *buf, size_t len, uint8_t ttl)
{
	if (len > UDP_TX_ARENA) {
		tx->failed++;
		tx->last_error = -EMSGSIZE;
		return;
	}
	if (tx->count == UDP_TX_SLOTS || tx->used + len > UDP_TX_ARENA)
		udp_tx_flush(u, tx);
	struct udp_tx_slot *sl = &tx->slots[tx->count];
	sl->dst_len = to_sockaddr(u, to, &sl->dst);
	if (sl->dst_len == 0) {
		tx->failed++;
		tx->last_error = -EAFNOSUPPORT;
		return;
	}
	set_src(u, to, sl);
	sl->ttl = ttl;
	memcpy(tx->arena + tx->used, buf, len);
	sl->off = tx->used;
	sl->len = len;
	tx->used += len;
	tx->count++;
}

static bool same_dst(const struct udp_tx_slot *a, const struct udp_tx_slot *b)
{
	/* to_sockaddr zeroes the whole union first, so bytes compare. */
	return a->dst_len == b->dst_len && memcmp(&a->dst, &b->dst, a->dst_len) == 0;
}

static bool same_src(const struct udp_tx_slot *a, const struct udp_tx_slot *b)
{
	/* set_src zeroes the whole union first, so bytes compare. */
	return a->src_level == b->src_level && memcmp(&a->src, &b->src, sizeof(a->src)) == 0;
}

/* Appends one control message to a message's buffer (sized UDP_TX_CTRL for the two at most). */
static void add_cmsg(struct msghdr *h, int level, int type, const void *data, size_t len)
{
	struct cmsghdr *c = (struct cmsghdr *)((char *)h->msg_control + h->msg_controllen);
	c->cmsg_level = level;
	c->cmsg_type = type;
	c->cmsg_len = CMSG_LEN(len);
	memcpy(CMSG_DATA(c), data, len);
	h->msg_controllen += CMSG_SPACE(len);
}

/* Messages for the datagrams from slot `from` on. With GSO a message takes a run of datagrams
 * for one destination and from one source, adjacent in the arena, all of the first one's size
 * except the last, which may be shorter (the kernel's rule for UDP_SEGMENT). Returns how many
 * messages. */
static unsigned build_msgs(const struct udp_sock *u, struct udp_tx *tx, unsigned from)
{
	unsigned m = 0;

	for (unsigned i = from; i < tx->count; m++) {
		const struct udp_tx_slot *first = &tx->slots[i];
		size_t bytes = first->len;
		unsigned j = i + 1;
		if (u->gso) {
			while (j < tx->count && j - i < UDP_GSO_MAX_SEGS) {
				const struct udp_tx_slot *prev = &tx->slots[j - 1];
				const struct udp_tx_slot *s = &tx->slots[j];
				if (prev->len != first->len || s->len > first->len ||
				    s->off != prev->off + prev->len ||
				    bytes + s->len > UDP_GSO_MAX_BYTES || !same_dst(first, s) ||
				    !same_src(first, s) || s->ttl != first->ttl)
					break;
				bytes += s->len;
				j++;
			}
		}
		struct msghdr *h = &tx->msgs[m].msg_hdr;
		memset(&tx->msgs[m], 0, sizeof(tx->msgs[m]));
		tx->iov[m].iov_base = tx->arena + first->off;
		tx->iov[m].iov_len = bytes;
		h->msg_name = (void *)&first->dst;
		h->msg_namelen = first->dst_len;
		h->msg_iov = &tx->iov[m];
		h->msg_iovlen = 1;
		h->msg_control = tx->ctrl[m].buf;
		h->msg_controllen = 0;
		if (j - i > 1) {
			uint16_t seg = (uint16_t)first->len;
			add_cmsg(h, IPPROTO_UDP, UDP_SEGMENT, &seg, sizeof(seg));
		}
		if (first->src_level == IPPROTO_IP)
			add_cmsg(h, IPPROTO_IP, IP_PKTINFO, &first->src.v4, sizeof(first->src.v4));
		else if (first->src_level == IPPROTO_IPV6)
			add_cmsg(h, IPPROTO_IPV6, IPV6_PKTINFO, &first->src.v6,
				 sizeof(first->src.v6));
		if (first->ttl) {
			/* An IPv4 destination goes out of the dual-stack socket through the IPv4
			 * path, which reads IP_TTL (ip_cmsg_send); IPv6 reads IPV6_HOPLIMIT. */
			int ttl = first->ttl;
			bool v4 = first->dst.sa.sa_family == AF_INET ||
				  v4mapped(&first->dst.in6.sin6_addr);
			add_cmsg(h, v4 ? IPPROTO_IP : IPPROTO_IPV6, v4 ? IP_TTL : IPV6_HOPLIMIT, &ttl,
				 sizeof(ttl));
		}
		if (h->msg_controllen == 0)
			h->msg_control = NULL;
		tx->msg_segs[m] = j - i;
		i = j;
	}
	return m;
}

/* What the kernel answers for a source that is no longer a local address: IPv4 routing says
 * ENETUNREACH (ip_route_output_key_hash_rcu, unless the socket is transparent), IPv6 EINVAL
 * (ip6_datagram_send_ctl), ENODEV for a vanished interface index, EADDRNOTAVAIL for a source
 * that cannot be used at all. */
static bool stale_src_error(int err)
{
	return err == EINVAL || err == ENETUNREACH || err == ENODEV || err == EADDRNOTAVAIL;
}

/* Drops the source of slot `at` and of every later queued datagram with the same source. */
static void clear_src(struct udp_tx *tx, unsigned at)
{
	struct udp_tx_slot stale = tx->slots[at];
	for (unsigned i = at; i < tx->count; i++) {
		if (!same_src(&tx->slots[i], &stale))
			continue;
		memset(&tx->slots[i].src, 0, sizeof(tx->slots[i].src));
		tx->slots[i].src_level = 0;
	}
}

void udp_tx_flush(struct udp_sock *u, struct udp_tx *tx)
{
	unsigned done = 0; /* datagrams sent or given up */

	while (done < tx->count) {
		if (u->fd < 0) {
			tx->failed += tx->count - done;
			tx->last_error = -EBADF;
			break;
		}
		unsigned nmsgs = build_msgs(u, tx, done), k = 0;
		bool rebuild = false;
		while (k < nmsgs && !rebuild) {
			int n = sendmmsg(u->fd, tx->msgs + k, nmsgs - k, MSG_DONTWAIT);
			if (n > 0) {
				for (int x = 0; x < n; x++, k++) {
					tx->sent += tx->msg_segs[k];
					done += tx->msg_segs[k];
					if (tx->msg_segs[k] > 1)
						tx->gso_msgs++;
				}
				continue;
			}
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 &&
			    (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
				/* Socket buffer full: drop the rest rather than stall the loop. */
				tx->failed += tx->count - done;
				tx->last_error = -errno;
				done = tx->count;
				break;
			}
			int err = n < 0 ? errno : EIO;
			/* Message k starts at slot `done`: every earlier message was counted. */
			if (tx->slots[done].src_level != 0 && stale_src_error(err)) {
				/* The source address (or its interface) is gone: send again and
				 * let routing pick, as wireguard-go clears a failed source. The
				 * next datagram from the peer brings the address it now talks to.
				 * Checked before the GSO refusal below, which may also be EINVAL:
				 * a stale source must not cost the socket its GSO. A real "no
				 * route" costs one more attempt and then counts as failed. */
				clear_src(tx, done);
				tx->stale_src++;
				rebuild = true;
				break;
			}
			if (tx->msg_segs[k] > 1 &&
			    (err == EIO || err == EINVAL || err == EMSGSIZE)) {
				/* The kernel refuses to segment (udp_send_skb): EIO, no checksum
				 * offload on the route's device; EINVAL or, since Linux 6.x,
				 * EMSGSIZE: segments larger than the path MTU, which plain sends
				 * get through by fragmenting. No GSO on this socket from now on;
				 * the rest goes one datagram per message. */
				u->gso = false;
				tx->gso_error = -err;
				rebuild = true;
				break;
			}
			/* This message cannot go (no route, EMSGSIZE, firewall): skip it only. */
			tx->failed += tx->msg_segs[k];
			tx->last_error = -err;
			done += tx->msg_segs[k];
			k++;
		}
	}
	/* The queue held ciphertext and handshake messages only, nothing secret: no wipe. */
	tx->count = 0;
	tx->used = 0;
}
