/* TLS termination with SNI and ALPN; see tls_term.h. */
#include "net/tls_term.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <secureguard/sg_errors.h>

#include "net/tls_cert.h"

struct name_ctx {
	char *name; /* lowercase; "*.x" for a wildcard */
	SSL_CTX *ctx;
};

struct sg_tls_term {
	int refs; /* the owner's, plus one per connection (the SNI callback uses t) */
	SSL_CTX *dflt;
	SSL_CTX **ctxs;
	size_t n_ctxs;
	struct name_ctx *names;
	size_t n_names;
	unsigned char alpn[64]; /* wire format: length-prefixed names */
	size_t alpn_len;
};

struct sg_tls_term_conn {
	struct sg_tls_term *t;
	SSL *ssl;
	uint32_t events;
	char err[160];
	char alpn[32];
};

#define errf(err, errlen, ...) snprintf((err), (errlen), __VA_ARGS__)

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	struct sg_tls_term *t = arg;
	unsigned char *sel = NULL;
	unsigned char sel_len = 0;
	(void)ssl;
	/* Server preference: SSL_select_next_proto walks the first list. */
	if (SSL_select_next_proto(&sel, &sel_len, t->alpn, (unsigned int)t->alpn_len, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	*outlen = sel_len;
	return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *find_ctx(struct sg_tls_term *t, const char *name)
{
	char low[256];
	size_t n = strlen(name);
	if (n == 0 || n >= sizeof(low))
		return NULL;
	for (size_t i = 0; i < n; i++)
		low[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] + 32) : name[i];
	low[n] = '\0';
	if (low[n - 1] == '.')
		low[n - 1] = '\0';
	for (size_t i = 0; i < t->n_names; i++)
		if (strcmp(t->names[i].name, low) == 0)
			return t->names[i].ctx;
	const char *dot = strchr(low, '.');
	if (!dot)
		return NULL;
	for (size_t i = 0; i < t->n_names; i++)
		if (t->names[i].name[0] == '*' && strcmp(t->names[i].name + 1, dot) == 0)
			return t->names[i].ctx;
	return NULL;
}

static int sni_cb(SSL *ssl, int *alert, void *arg)
{
	struct sg_tls_term *t = arg;
	(void)alert;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	if (!name)
		return SSL_TLSEXT_ERR_OK; /* the default certificate */
	SSL_CTX *ctx = find_ctx(t, name);
	if (ctx && ctx != SSL_get_SSL_CTX(ssl))
		SSL_set_SSL_CTX(ssl, ctx);
	return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *make_ctx(struct sg_tls_term *t, const char *cert, const char *key, char *err,
			 size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		errf(err, errlen, "SSL_CTX_new: %s", tls_ossl_reason());
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				  SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		errf(err, errlen, "%s: %s", cert, tls_ossl_reason());
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		errf(err, errlen, "%s: %s", key, tls_ossl_reason());
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		errf(err, errlen, "%s does not match %s", key, cert);
		goto fail;
	}
	SSL_CTX_set_tlsext_servername_callback(ctx, sni_cb);
	SSL_CTX_set_tlsext_servername_arg(ctx, t);
	if (t->alpn_len)
		SSL_CTX_set_alpn_select_cb(ctx, alpn_select, t);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

int sg_tls_term_new(struct sg_tls_term **out, const char *default_cert, const char *default_key,
		    const struct sg_tls_term_cert *certs, size_t n_certs, const char *const *alpn,
		    size_t n_alpn, char *err, size_t errlen)
{
	*out = NULL;
	struct sg_tls_term *t = calloc(1, sizeof(*t));
	if (!t)
		return SG_ENOMEM;
	t->refs = 1;
	for (size_t i = 0; i < n_alpn; i++) {
		size_t l = strlen(alpn[i]);
		if (l == 0 || l > 255 || t->alpn_len + 1 + l > sizeof(t->alpn)) {
			errf(err, errlen, "ALPN list too long");
			sg_tls_term_free(t);
			return SG_EINVAL;
		}
		t->alpn[t->alpn_len++] = (unsigned char)l;
		memcpy(t->alpn + t->alpn_len, alpn[i], l);
		t->alpn_len += l;
	}
	ERR_clear_error();
	t->dflt = make_ctx(t, default_cert, default_key, err, errlen);
	if (!t->dflt)
		goto fail;
	size_t total = 0;
	for (size_t i = 0; i < n_certs; i++)
		total += certs[i].n_names;
	t->ctxs = calloc(n_certs ? n_certs : 1, sizeof(*t->ctxs));
	t->names = calloc(total ? total : 1, sizeof(*t->names));
	if (!t->ctxs || !t->names) {
		errf(err, errlen, "out of memory");
		sg_tls_term_free(t);
		return SG_ENOMEM;
	}
	for (size_t i = 0; i < n_certs; i++) {
		SSL_CTX *ctx = make_ctx(t, certs[i].cert_file, certs[i].key_file, err, errlen);
		if (!ctx)
			goto fail;
		t->ctxs[t->n_ctxs++] = ctx;
		for (size_t k = 0; k < certs[i].n_names; k++) {
			char *n = strdup(certs[i].names[k]);
			if (!n) {
				errf(err, errlen, "out of memory");
				sg_tls_term_free(t);
				return SG_ENOMEM;
			}
			for (char *p = n; *p; p++)
				if (*p >= 'A' && *p <= 'Z')
					*p = (char)(*p + 32);
			t->names[t->n_names].name = n;
			t->names[t->n_names++].ctx = ctx;
		}
	}
	ERR_clear_error();
	*out = t;
	return 0;
fail:
	ERR_clear_error();
	sg_tls_term_free(t);
	return SG_ECRYPTO;
}

void sg_tls_term_free(struct sg_tls_term *t)
{
	if (!t || --t->refs > 0)
		return;
	for (size_t i = 0; i < t->n_names; i++)
		free(t->names[i].name);
	free(t->names);
	for (size_t i = 0; i < t->n_ctxs; i++)
		SSL_CTX_free(t->ctxs[i]);
	free(t->ctxs);
	SSL_CTX_free(t->dflt);
	free(t);
}

struct sg_tls_term_conn *sg_tls_term_conn_new(struct sg_tls_term *t, int fd)
{
	struct sg_tls_term_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->ssl = SSL_new(t->dflt);
	if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) {
		SSL_free(c->ssl);
		free(c);
		ERR_clear_error();
		return NULL;
	}
	SSL_set_accept_state(c->ssl);
	/* One read per record instead of two (its 5-byte header, then the rest), and several
	 * records at once when they are there; sg_tls_term_pending counts what waits unread. */
	SSL_set_read_ahead(c->ssl, 1);
	c->t = t;
	t->refs++;
	return c;
}

void sg_tls_term_conn_free(struct sg_tls_term_conn *c)
{
	if (!c)
		return;
	SSL_free(c->ssl);
	sg_tls_term_free(c->t);
	free(c);
}

/* Maps an SSL error after an operation: -EAGAIN or -EIO. The caller polls for its own direction
 * anyway; c->events records only the other one (a read that must write first, a write that
 * must read), which a level-triggered poll would otherwise never be asked for. dir is EPOLLIN
 * for a read, EPOLLOUT for a write, 0 for the handshake (both recorded). */
static int map_err(struct sg_tls_term_conn *c, int r, uint32_t dir)
{
	int e = SSL_get_error(c->ssl, r);
	switch (e) {
	case SSL_ERROR_WANT_READ:
		c->events = dir == EPOLLIN ? 0 : EPOLLIN;
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		c->events = dir == EPOLLOUT ? 0 : EPOLLOUT;
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		snprintf(c->err, sizeof(c->err), "%s", errno ? strerror(errno) : "connection closed");
		break;
	default:
		snprintf(c->err, sizeof(c->err), "%s", tls_ossl_reason());
		break;
	}
	ERR_clear_error();
	return -EIO;
}

int sg_tls_term_handshake(struct sg_tls_term_conn *c)
{
	c->events = 0;
	ERR_clear_error();
	int r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		const unsigned char *p = NULL;
		unsigned int n = 0;
		SSL_get0_alpn_selected(c->ssl, &p, &n);
		if (p && n < sizeof(c->alpn)) {
			memcpy(c->alpn, p, n);
			c->alpn[n] = '\0';
		}
		return 1;
	}
	int m = map_err(c, r, 0);
	return m == -EAGAIN ? 0 : -1;
}

ssize_t sg_tls_term_read(struct sg_tls_term_conn *c, uint8_t *p, size_t n)
{
	size_t got = 0;
	c->events = 0;
	ERR_clear_error();
	int r = SSL_read_ex(c->ssl, p, n, &got);
	if (r == 1)
		return (ssize_t)got;
	int m = map_err(c, r, EPOLLIN);
	return m;
}

ssize_t sg_tls_term_write(struct sg_tls_term_conn *c, const uint8_t *p, size_t n)
{
	size_t put = 0;
	c->events = 0;
	ERR_clear_error();
	int r = SSL_write_ex(c->ssl, p, n, &put);
	if (r == 1)
		return (ssize_t)put;
	int m = map_err(c, r, EPOLLOUT);
	return m == 0 ? -EIO : m;
}

uint32_t sg_tls_term_events(const struct sg_tls_term_conn *c)
{
	return c->events;
}

bool sg_tls_term_pending(const struct sg_tls_term_conn *c)
{
	/* Decrypted bytes and, with read-ahead, records read from the socket but not yet
	 * decrypted: neither will be announced by poll. */
	return SSL_has_pending(c->ssl) == 1;
}

bool sg_tls_term_replied(const struct sg_tls_term_conn *c)
{
	return BIO_number_written(SSL_get_wbio(c->ssl)) > 0;
}

const char *sg_tls_term_sni(const struct sg_tls_term_conn *c)
{
	return SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);
}

const char *sg_tls_term_alpn(const struct sg_tls_term_conn *c)
{
	return c->alpn[0] ? c->alpn : NULL;
}

const char *sg_tls_term_error(const struct sg_tls_term_conn *c)
{
	return c->err[0] ? c->err : "TLS error";
}
