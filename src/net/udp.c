/* The outer UDP socket; see udp.h. */
#include "net/udp.h"

#include <errno.h>
#include <netinet/in.h>
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

int udp_open(struct udp_sock *u, uint16_t port, uint32_t fwmark, const char **why)
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

void udp_tx_queue(struct udp_sock *u, struct udp_tx *tx, const struct wg_endpoint *to,
		  const uint8_t *buf, size_t len)
{
	if (len > UDP_TX_ARENA) {
		tx->failed++;
		tx->last_error = -EMSGSIZE;
		return;
	}
	if (tx->count == UDP_TX_SLOTS || tx->used + len > UDP_TX_ARENA)
		udp_tx_flush(u, tx);
	unsigned i = tx->count;
	socklen_t salen = to_sockaddr(u, to, &tx->dst[i]);
	if (salen == 0) {
		tx->failed++;
		tx->last_error = -EAFNOSUPPORT;
		return;
	}
	memcpy(tx->arena + tx->used, buf, len);
	tx->iov[i].iov_base = tx->arena + tx->used;
	tx->iov[i].iov_len = len;
	memset(&tx->msgs[i], 0, sizeof(tx->msgs[i]));
	tx->msgs[i].msg_hdr.msg_name = &tx->dst[i];
	tx->msgs[i].msg_hdr.msg_namelen = salen;
	tx->msgs[i].msg_hdr.msg_iov = &tx->iov[i];
	tx->msgs[i].msg_hdr.msg_iovlen = 1;
	tx->used += len;
	tx->count++;
}

void udp_tx_flush(struct udp_sock *u, struct udp_tx *tx)
{
	unsigned start = 0;
	while (start < tx->count) {
		if (u->fd < 0) {
			tx->failed += tx->count - start;
			tx->last_error = -EBADF;
			break;
		}
		int n = sendmmsg(u->fd, tx->msgs + start, tx->count - start, MSG_DONTWAIT);
		if (n > 0) {
			tx->sent += (unsigned)n;
			start += (unsigned)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
			/* Socket buffer full: drop the rest rather than stall the loop. */
			tx->failed += tx->count - start;
			tx->last_error = -errno;
			break;
		}
		/* This datagram cannot go (no route, EMSGSIZE, firewall): skip it only. */
		tx->failed++;
		tx->last_error = n < 0 ? -errno : -EIO;
		start++;
	}
	/* The queue held ciphertext and handshake messages only, nothing secret: no wipe. */
	tx->count = 0;
	tx->used = 0;
}
