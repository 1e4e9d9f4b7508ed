/* Name resolution inside the tunnel (sg_resolve): the config's [Interface] DNS servers asked
 * over the userspace stack's UDP. The DNS protocol is c-ares' (Debian's libc-ares: query ids,
 * retries, answers checked against the question, A and AAAA); its sockets are given to it as
 * stack UDP sockets through ares_set_socket_functions, so no query leaves outside the tunnel.
 * TCP fallback for truncated answers is refused (c-ares then tries the next server). */
#include "lib/dns.h"

#include <arpa/inet.h>
#include <ares.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <secureguard/sg_errors.h>

#define DNS_SOCKS 8

struct dns_sock {
	struct stack_udp *u;
	int fd; /* the stack socket's eventfd: what c-ares polls and names the socket by */
	struct sockaddr_storage to;
	socklen_t tolen;
};

struct dns_ctx {
	struct stack_if *s;
	struct dns_sock socks[DNS_SOCKS];
	bool done;
	int status;
	struct sockaddr_storage out;
	socklen_t outlen;
	int family;
};

static struct dns_sock *find(struct dns_ctx *c, ares_socket_t fd)
{
	for (int i = 0; i < DNS_SOCKS; i++)
		if (c->socks[i].u && c->socks[i].fd == fd)
			return &c->socks[i];
	return NULL;
}

static ares_socket_t d_socket(int family, int type, int proto, void *user)
{
	struct dns_ctx *c = user;
	(void)proto;
	if (type != SOCK_DGRAM) {
		errno = EAFNOSUPPORT; /* no TCP: truncated answers fall to the next server */
		return ARES_SOCKET_BAD;
	}
	for (int i = 0; i < DNS_SOCKS; i++) {
		struct dns_sock *d = &c->socks[i];
		if (d->u)
			continue;
		struct sockaddr_storage any;
		memset(&any, 0, sizeof(any));
		any.ss_family = (sa_family_t)family;
		socklen_t len = family == AF_INET6 ? sizeof(struct sockaddr_in6)
						   : sizeof(struct sockaddr_in);
		if (stack_udp_open(c->s, (struct sockaddr *)&any, len, &d->u) != 0) {
			d->u = NULL;
			errno = ENOBUFS;
			return ARES_SOCKET_BAD;
		}
		d->fd = stack_udp_fd(d->u);
		return d->fd;
	}
	errno = EMFILE;
	return ARES_SOCKET_BAD;
}

static int d_close(ares_socket_t fd, void *user)
{
	struct dns_sock *d = find(user, fd);
	if (!d)
		return -1;
	stack_udp_close(d->u);
	d->u = NULL;
	return 0;
}

static int d_connect(ares_socket_t fd, const struct sockaddr *addr, ares_socklen_t len,
		     void *user)
{
	struct dns_sock *d = find(user, fd);
	if (!d || len > sizeof(d->to)) {
		errno = EBADF;
		return -1;
	}
	memcpy(&d->to, addr, len);
	d->tolen = len;
	return 0;
}

static ares_ssize_t d_recvfrom(ares_socket_t fd, void *buf, size_t cap, int flags,
			       struct sockaddr *from, ares_socklen_t *fromlen, void *user)
{
	struct dns_sock *d = find(user, fd);
	struct sockaddr_storage f;
	size_t n = 0;
	(void)flags;
	if (!d) {
		errno = EBADF;
		return -1;
	}
	int r = stack_udp_recvfrom(d->u, buf, cap, &n, &f);
	if (r == SG_EAGAIN) {
		errno = EAGAIN;
		return -1;
	}
	if (r != 0) {
		errno = ECONNREFUSED;
		return -1;
	}
	if (from && fromlen) {
		socklen_t fl = f.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						       : sizeof(struct sockaddr_in);
		memcpy(from, &f, fl < *fromlen ? fl : *fromlen);
		*fromlen = fl;
	}
	return (ares_ssize_t)(n < cap ? n : cap);
}

static ares_ssize_t d_sendv(ares_socket_t fd, const struct iovec *iov, int n, void *user)
{
	struct dns_sock *d = find(user, fd);
	uint8_t buf[2048];
	size_t len = 0;
	if (!d || !d->tolen) {
		errno = EBADF;
		return -1;
	}
	for (int i = 0; i < n; i++) {
		if (len + iov[i].iov_len > sizeof(buf)) {
			errno = EMSGSIZE;
			return -1;
		}
		memcpy(buf + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	int r = stack_udp_sendto(d->u, buf, len, (struct sockaddr *)&d->to, d->tolen);
	if (r != 0) {
		errno = r == SG_EFULL ? EAGAIN : ENETUNREACH;
		return -1;
	}
	return (ares_ssize_t)len;
}

static const struct ares_socket_functions funcs = {
    .asocket = d_socket,
    .aclose = d_close,
    .aconnect = d_connect,
    .arecvfrom = d_recvfrom,
    .asendv = d_sendv,
};

static void on_answer(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
	struct dns_ctx *c = arg;
	(void)timeouts;
	c->done = true;
	c->status = status;
	if (status != ARES_SUCCESS || !res)
		goto out;
	for (struct ares_addrinfo_node *n = res->nodes; n; n = n->ai_next) {
		if (c->family != AF_UNSPEC && n->ai_family != c->family)
			continue;
		if (n->ai_addrlen <= sizeof(c->out)) {
			memcpy(&c->out, n->ai_addr, n->ai_addrlen);
			c->outlen = n->ai_addrlen;
			break;
		}
	}
	if (!c->outlen)
		c->status = ARES_ENODATA;
out:
	if (res)
		ares_freeaddrinfo(res);
}

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static int lib_status = ARES_ENOTINITIALIZED;
static void lib_init(void)
{
	lib_status = ares_library_init(ARES_LIB_INIT_ALL);
}

int dns_resolve(struct stack_if *s, const char *servers, const char *name, int family,
		int timeout_ms, struct sockaddr_storage *out, socklen_t *outlen, char *why,
		size_t whylen)
{
	struct dns_ctx c;
	ares_channel ch = NULL;
	struct ares_options opts;
	int ret;

	memset(&c, 0, sizeof(c));
	c.s = s;
	c.family = family;
	pthread_once(&lib_once, lib_init);
	if (lib_status != ARES_SUCCESS) {
		snprintf(why, whylen, "c-ares: %s", ares_strerror(lib_status));
		return SG_EIO;
	}
	memset(&opts, 0, sizeof(opts));
	/* Per try; c-ares tries every server up to `tries` times within the caller's limit. */
	opts.timeout = 1000;
	opts.tries = 3;
	opts.lookups = (char *)"b"; /* DNS only: no hosts file for names inside the tunnel */
	int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS;
	if ((ret = ares_init_options(&ch, &opts, mask)) != ARES_SUCCESS) {
		snprintf(why, whylen, "c-ares: %s", ares_strerror(ret));
		return SG_ENOMEM;
	}
	if ((ret = ares_set_servers_csv(ch, servers)) != ARES_SUCCESS) {
		snprintf(why, whylen, "DNS servers %s: %s", servers, ares_strerror(ret));
		ares_destroy(ch);
		return SG_EINVAL;
	}
	ares_set_socket_functions(ch, &funcs, &c);
	struct ares_addrinfo_hints hints = {.ai_family = family};
	ares_getaddrinfo(ch, name, NULL, &hints, on_answer, &c);

	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!c.done) {
		ares_socket_t socks[ARES_GETSOCK_MAXNUM];
		int bits = ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM);
		struct pollfd p[ARES_GETSOCK_MAXNUM];
		int n = 0;
		for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++)
			if (ARES_GETSOCK_READABLE(bits, i))
				p[n++] = (struct pollfd){.fd = socks[i], .events = POLLIN};
		struct timeval tv, *tvp = ares_timeout(ch, NULL, &tv);
		int wait = tvp ? (int)(tvp->tv_sec * 1000 + tvp->tv_usec / 1000) + 1 : 100;
		clock_gettime(CLOCK_MONOTONIC, &t);
		long spent = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
		if (timeout_ms >= 0 && spent >= timeout_ms)
			break;
		if (timeout_ms >= 0 && wait > timeout_ms - spent)
			wait = (int)(timeout_ms - spent);
		int r = poll(p, (nfds_t)n, wait);
		if (r < 0 && errno != EINTR)
			break;
		if (r <= 0) {
			ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD); /* timeouts */
			continue;
		}
		for (int i = 0; i < n && !c.done; i++)
			if (p[i].revents)
				ares_process_fd(ch, p[i].fd, ARES_SOCKET_BAD);
	}
	bool done = c.done;
	ares_destroy(ch); /* cancels a query still open (on_answer runs with ARES_EDESTRUCTION) */
	for (int i = 0; i < DNS_SOCKS; i++)
		if (c.socks[i].u)
			stack_udp_close(c.socks[i].u);
	if (!done) {
		snprintf(why, whylen, "%s: no answer from %s within %d ms", name, servers, timeout_ms);
		return SG_EAGAIN;
	}
	if (c.status != ARES_SUCCESS) {
		snprintf(why, whylen, "%s: %s", name, ares_strerror(c.status));
		return c.status == ARES_ENOTFOUND || c.status == ARES_ENODATA ? SG_ENOENT
									      : SG_ENOROUTE;
	}
	*out = c.out;
	*outlen = c.outlen;
	return 0;
}
