/* A blocking byte stream to one server, over TCP or TLS, where every call has a deadline: the
 * management server's connections to Redis (src/server/redis.c). TLS is OpenSSL's, kept in
 * src/net beside the other TLS code so the server's files include no OpenSSL header.
 *
 * The socket is non-blocking underneath and each call waits with poll() for at most its
 * timeout, so a peer that stops answering costs the caller that long and no more. */
#ifndef SG_NET_STREAM_H
#define SG_NET_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/compiler.h"

struct sg_stream_tls {
	const char *ca_file;   /* PEM CA(s) the server certificate must chain to; NULL: the
				* system's trust store */
	const char *cert_file; /* client certificate and key (PEM), optional */
	const char *key_file;
	bool no_verify; /* trust any certificate (tests against a self-signed server only) */
};

struct sg_stream;

/* Connects to host:port (a name or an address literal) within timeout_ms, then completes the
 * TLS handshake when tls is not NULL (the certificate must name host, and chain to the CA).
 * 0 and *out, or a negative SG_E* code with the reason in err. */
int sg_stream_connect(struct sg_stream **out, const char *host, const char *port,
		      const struct sg_stream_tls *tls, int timeout_ms, char *err,
		      size_t errlen) SG_WUR;
/* Writes all len bytes: 0, or -1 (error or timeout). */
int sg_stream_write(struct sg_stream *st, const void *buf, size_t len, int timeout_ms) SG_WUR;
/* Reads what is there, up to max bytes, waiting at most timeout_ms for the first: the count,
 * 0 at the end of the stream, -1 on an error, -2 on the timeout. */
ssize_t sg_stream_read(struct sg_stream *st, void *buf, size_t max, int timeout_ms) SG_WUR;
/* Why the last call failed, when the stream knows more than "error" (a TLS alert from the peer,
 * a timeout); NULL otherwise. */
const char *sg_stream_error(const struct sg_stream *st);
void sg_stream_close(struct sg_stream *st);

#endif
