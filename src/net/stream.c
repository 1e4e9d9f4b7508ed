/* Blocking streams with deadlines over TCP or TLS (stream.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net/stream.h"
#include "secureguard/sg_errors.h"

struct sg_stream {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	char why[160]; /* the last failure, for sg_stream_error */
};

static long long mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Waits until fd is ready for events or the deadline: 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, short events, long long deadline)
{
	for (;;) {
		struct pollfd p = {.fd = fd, .events = events};
		long long left = deadline - mono_ms();
		int n;

		if (left <= 0)
			return 0;
		n = poll(&p, 1, (int)SG_MIN(left, 60000LL));
		if (n > 0)
			return 1;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

static int tcp_connect(const char *host, const char *port, long long deadline, char *err,
		       size_t errlen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG}, *ai, *a;
	int fd = -1, rc, one = 1;

	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc) {
		snprintf(err, errlen, "%s: %s", host, gai_strerror(rc));
		return -1;
	}
	snprintf(err, errlen, "%s:%s: no address", host, port);
	for (a = ai; a; a = a->ai_next) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    a->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, a->ai_addr, a->ai_addrlen) && errno != EINPROGRESS) {
			snprintf(err, errlen, "%s:%s: %s", host, port, strerror(errno));
		} else if ((rc = wait_fd(fd, POLLOUT, deadline)) <= 0) {
			snprintf(err, errlen, "%s:%s: %s", host, port,
				 rc ? strerror(errno) : "no answer (connect timed out)");
		} else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) || soerr) {
			snprintf(err, errlen, "%s:%s: %s", host, port, strerror(soerr));
		} else {
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			/* A peer that vanished without a reset is noticed by keepalives. */
			setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
			break;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

static const char *ssl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	return r ? r : "TLS failure";
}

/* Runs one SSL call until it completes, waiting for the socket as it asks, up to deadline:
 * the call's result, or -1 (error) / -2 (timeout). */
static int ssl_wait(struct sg_stream *st, int n, long long deadline)
{
	int e = SSL_get_error(st->ssl, n), w;

	if (e == SSL_ERROR_WANT_READ) {
		w = wait_fd(st->fd, POLLIN, deadline);
	} else if (e == SSL_ERROR_WANT_WRITE) {
		w = wait_fd(st->fd, POLLOUT, deadline);
	} else {
		/* The peer's alert says why it ended the session (a client certificate it
		 * wanted, say): kept for sg_stream_error. */
		if (e == SSL_ERROR_SSL)
			snprintf(st->why, sizeof(st->why), "TLS: %s", ssl_reason());
		return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
	}
	if (w == 0)
		snprintf(st->why, sizeof(st->why), "no answer within the deadline");
	return w > 0 ? 1 : w == 0 ? -2 : -1;
}

static int tls_start(struct sg_stream *st, const char *host, const struct sg_stream_tls *tls,
		     long long deadline, char *err, size_t errlen)
{
	struct in6_addr a6;
	struct in_addr a4;
	bool literal = inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1;
	int n;

	ERR_clear_error();
	st->ctx = SSL_CTX_new(TLS_client_method());
	if (!st->ctx || !SSL_CTX_set_min_proto_version(st->ctx, TLS1_2_VERSION))
		goto ossl;
	if (tls->ca_file ? !SSL_CTX_load_verify_locations(st->ctx, tls->ca_file, NULL)
			 : !SSL_CTX_set_default_verify_paths(st->ctx)) {
		snprintf(err, errlen, "%s: cannot load the CA: %s",
			 tls->ca_file ? tls->ca_file : "system trust store", ssl_reason());
		return -1;
	}
	if (tls->cert_file &&
	    (SSL_CTX_use_certificate_chain_file(st->ctx, tls->cert_file) != 1 ||
	     SSL_CTX_use_PrivateKey_file(st->ctx, tls->key_file ? tls->key_file : tls->cert_file,
					 SSL_FILETYPE_PEM) != 1)) {
		snprintf(err, errlen, "%s: cannot load the client certificate: %s",
			 tls->cert_file, ssl_reason());
		return -1;
	}
	SSL_CTX_set_verify(st->ctx, tls->no_verify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
	st->ssl = SSL_new(st->ctx);
	if (!st->ssl || !SSL_set_fd(st->ssl, st->fd))
		goto ossl;
	if (!literal && !SSL_set_tlsext_host_name(st->ssl, host))
		goto ossl;
	if (!tls->no_verify) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(st->ssl);

		if (literal ? !X509_VERIFY_PARAM_set1_ip_asc(vp, host)
			    : !X509_VERIFY_PARAM_set1_host(vp, host, 0))
			goto ossl;
	}
	while ((n = SSL_connect(st->ssl)) != 1) {
		int w = ssl_wait(st, n, deadline);

		if (w == -2) {
			snprintf(err, errlen, "%s: TLS handshake timed out", host);
			return -1;
		}
		if (w <= 0) {
			long v = SSL_get_verify_result(st->ssl);

			if (v != X509_V_OK)
				snprintf(err, errlen, "%s: certificate verify failed: %s", host,
					 X509_verify_cert_error_string(v));
			else
				snprintf(err, errlen, "%s: TLS handshake failed: %s", host,
					 ssl_reason());
			return -1;
		}
	}
	return 0;
ossl:
	snprintf(err, errlen, "TLS: %s", ssl_reason());
	return -1;
}

int sg_stream_connect(struct sg_stream **out, const char *host, const char *port,
		      const struct sg_stream_tls *tls, int timeout_ms, char *err, size_t errlen)
{
	long long deadline = mono_ms() + timeout_ms;
	struct sg_stream *st;

	*out = NULL;
	st = calloc(1, sizeof(*st));
	if (!st) {
		snprintf(err, errlen, "out of memory");
		return SG_ENOMEM;
	}
	st->fd = tcp_connect(host, port, deadline, err, errlen);
	if (st->fd < 0) {
		free(st);
		return SG_EIO;
	}
	if (tls && tls_start(st, host, tls, deadline, err, errlen)) {
		sg_stream_close(st);
		return SG_EIO;
	}
	*out = st;
	return 0;
}

int sg_stream_write(struct sg_stream *st, const void *buf, size_t len, int timeout_ms)
{
	long long deadline = mono_ms() + timeout_ms;
	const char *p = buf;

	while (len) {
		ssize_t n;

		if (st->ssl) {
			int k = SSL_write(st->ssl, p, (int)SG_MIN(len, (size_t)1 << 30));

			if (k <= 0) {
				if (ssl_wait(st, k, deadline) <= 0)
					return -1;
				continue;
			}
			n = k;
		} else {
			n = send(st->fd, p, len, MSG_NOSIGNAL);
			if (n < 0) {
				if ((errno != EAGAIN && errno != EINTR) ||
				    (errno == EAGAIN && wait_fd(st->fd, POLLOUT, deadline) <= 0))
					return -1;
				continue;
			}
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t sg_stream_read(struct sg_stream *st, void *buf, size_t max, int timeout_ms)
{
	long long deadline = mono_ms() + timeout_ms;

	for (;;) {
		if (st->ssl) {
			int k = SSL_read(st->ssl, buf, (int)SG_MIN(max, (size_t)1 << 30)), w;

			if (k > 0)
				return k;
			w = ssl_wait(st, k, deadline);
			if (w <= 0)
				return w;
		} else {
			ssize_t n = recv(st->fd, buf, max, 0);
			int w;

			if (n >= 0)
				return n;
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -1;
			w = wait_fd(st->fd, POLLIN, deadline);
			if (w <= 0)
				return w == 0 ? -2 : -1;
		}
	}
}

const char *sg_stream_error(const struct sg_stream *st)
{
	return st && st->why[0] ? st->why : NULL;
}

void sg_stream_close(struct sg_stream *st)
{
	if (!st)
		return;
	if (st->ssl) {
		SSL_set_quiet_shutdown(st->ssl, 1);
		SSL_free(st->ssl);
	}
	SSL_CTX_free(st->ctx);
	if (st->fd >= 0)
		close(st->fd);
	free(st);
}
