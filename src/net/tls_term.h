/* TLS termination for the gateway's HTTPS listener (issue 15): OpenSSL's libssl over a
 * non-blocking socket the caller owns and polls, with one certificate per domain chosen by SNI
 * (RFC 6066 section 3) and a default certificate for clients that name no configured domain.
 * ALPN (RFC 7301) picks the application protocol from the server's list.
 *
 * Like tls.c, this is the one place of the gateway that touches OpenSSL: keys and certificates
 * are read by libssl, keys for a self-signed fallback come from tls_cert.c. TLS 1.2 at least;
 * OpenSSL's default suites (the FIPS-only selection of tls.c applies to the tunnel transport).
 */
#ifndef SG_NET_TLS_TERM_H
#define SG_NET_TLS_TERM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/compiler.h"

struct sg_tls_term;
struct sg_tls_term_conn;

struct sg_tls_term_cert {
	const char *const *names; /* host names, "*.example.com" matches one more label */
	size_t n_names;
	const char *cert_file, *key_file; /* PEM: chain (leaf first) and private key */
};

/* Builds the server: a default certificate and per-name ones. alpn: protocols in the server's
 * order of preference ("h2", "http/1.1"), may be empty. On failure *out is NULL and err names
 * the file and the reason. 0 or SG_EINVAL / SG_ECRYPTO / SG_ENOMEM. */
int sg_tls_term_new(struct sg_tls_term **out, const char *default_cert, const char *default_key,
		    const struct sg_tls_term_cert *certs, size_t n_certs, const char *const *alpn,
		    size_t n_alpn, char *err, size_t errlen) SG_WUR;
/* Drops the caller's reference; the memory goes with the last connection made from it. */
void sg_tls_term_free(struct sg_tls_term *t);

/* A server-side connection on fd (not closed by free). NULL on failure. */
struct sg_tls_term_conn *sg_tls_term_conn_new(struct sg_tls_term *t, int fd);
void sg_tls_term_conn_free(struct sg_tls_term_conn *c);

/* 1 when the handshake is done, 0 while it needs more I/O, -1 when it failed (the reason is
 * in sg_tls_term_error). */
int sg_tls_term_handshake(struct sg_tls_term_conn *c);
/* As recv/send: > 0 bytes, 0 at the end of the stream (read), -EAGAIN, -EIO. */
ssize_t sg_tls_term_read(struct sg_tls_term_conn *c, uint8_t *p, size_t n);
ssize_t sg_tls_term_write(struct sg_tls_term_conn *c, const uint8_t *p, size_t n);
/* Extra poll events the last operation asked for (EPOLLIN when a write needs to read first,
 * EPOLLOUT when a read or the handshake needs to write). */
uint32_t sg_tls_term_events(const struct sg_tls_term_conn *c);
/* True when bytes wait inside the library, decrypted or read ahead from the socket (no poll
 * event will announce them). */
bool sg_tls_term_pending(const struct sg_tls_term_conn *c);
/* True once the server has sent its first handshake flight: the costly step of a handshake
 * (the key share and the certificate's signature) is behind it. */
bool sg_tls_term_replied(const struct sg_tls_term_conn *c);
/* The SNI name the client sent (NULL if none) and the ALPN protocol chosen (NULL if none). */
const char *sg_tls_term_sni(const struct sg_tls_term_conn *c);
const char *sg_tls_term_alpn(const struct sg_tls_term_conn *c);
const char *sg_tls_term_error(const struct sg_tls_term_conn *c);

#endif
