/* TLS-over-TCP transport with mutual TLS; see tls.h and docs/TLS.md. */
#include "net/tls.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <secureguard/sg_errors.h>

#include "common/log.h"
#include "crypto/crypto.h"
#include "net/addr.h"
#include "net/tls_cert.h"

/* Per-source table of a listener: fixed size, so a flood of sources cannot grow memory. A slot
 * is found by a keyed hash and a short linear probe; slots without connections whose bucket has
 * refilled are indistinguishable from fresh ones and are reused. */
#define SRC_SLOTS 4096
#define SRC_PROBE 8
/* Family byte, then the IPv4 address or the IPv6 /64. */
#define SRC_KEY_LEN 9

/* Accepts per readiness event, so one listener cannot starve the other sources of the loop. */
#define ACCEPT_BATCH 64
/* Unsent bytes the kernel may hold per socket (TCP_NOTSENT_LOWAT): enough to keep a fast path
 * busy, small enough that a stalled path makes us drop instead of queueing seconds of data. */
#define NOTSENT_LOWAT (128 * 1024)
/* OpenSSL's read buffer with read-ahead: four largest records (plaintext, content type, tag and
 * header), taken by one read(2) when they have arrived; released while idle. */
#define READ_AHEAD_LEN (4 * (TLS_RECORD_MAX + 256 + 5))
/* TLS record content type of a handshake record (RFC 8446 section 5.1): the first byte of
 * every TLS client's first flight. */
#define TLS_CT_HANDSHAKE 0x16

#define NS_PER_MS 1000000ull

enum conn_state {
	ST_CONNECTING, /* client: TCP connect in progress */
	ST_HANDSHAKE,  /* TLS handshake */
	ST_GREETING,   /* client: handshake done, waiting for the server's greeting */
	ST_TOKEN,      /* server: greeting sent, waiting for the client's hello (session token) */
	ST_UP,	       /* frames flow */
	ST_DEAD,       /* torn down; memory kept until nobody is inside a callback */
};

struct src_entry {
	uint8_t key[SRC_KEY_LEN];
	uint64_t last_ns;
	uint64_t tokens; /* nanoseconds of credit, as the kernel's WireGuard ratelimiter */
	uint32_t conns;
	bool used;
};

struct sg_tls_ctx {
	SSL_CTX *ssl;
	enum sg_tls_role role;
	bool fips, have_ca, have_pin;
	uint8_t pin[SG_TLS_PIN_LEN];
	char *server_name;
	/* Server: session tokens required, verified with this key (tls_token.h). */
	bool require_token;
	struct tls_token_key token_key;
	/* Client: the token sent when a server asks (malloc'd; NULL = none). */
	uint8_t *token;
	size_t token_len;
	uint64_t handshake_ns, idle_ns, keepalive_ns;
	uint32_t max_conns, per_source, rate, burst;
};

struct sg_tls_listener {
	struct sg_tls_ctx *ctx;
	struct evloop *loop;
	struct sg_tls_callbacks cbs;
	int fd, tfd;
	struct evloop_source src, tsrc;
	uint16_t port;
	bool paused; /* accept stopped until the next tick (out of file descriptors) */
	unsigned iterating;
	uint64_t tick_ns;
	uint64_t seed;
	struct sg_tls_conn *conns;
	struct sg_tls_listener_stats st;
	struct sg_log_ratelimit log_rl;
	struct src_entry sources[SRC_SLOTS];
};

struct sg_tls_conn {
	struct sg_tls_ctx *ctx;
	struct evloop *loop;
	struct sg_tls_listener *listener; /* NULL for a client connection */
	struct sg_tls_conn *prev, *next;  /* in the listener's list */
	struct sg_tls_callbacks cbs;
	void *user;
	int fd, tfd;
	struct evloop_source src, tsrc;
	SSL *ssl;
	enum conn_state state;
	bool peeked;	  /* server: the first byte was checked to be TLS */
	bool reported_up; /* on_state(up) was called */
	bool hs_want_write;
	bool tx_blocked; /* the last SSL_write wanted the socket: EPOLLOUT writes the rest */
	bool rx_held;	 /* frames given to on_message since the last on_rx_done */
	bool zombie; /* dead, to be freed when busy drops to 0 */
	unsigned busy;
	uint32_t events;
	struct src_entry *source;
	uint8_t greeting_flags;
	bool has_token;		  /* server: admitted with a session token, claims in tok */
	struct tls_token_claims tok;
	uint64_t token_end_ns;	  /* ... and closed at its expiry (monotonic) */
	uint64_t deadline_ns, last_rx_ns, last_tx_ns, keepalive_ns;
	union wg_sockaddr peer;
	char peer_str[ADDR_ENDPOINT_STRLEN];
	char why[96]; /* set by the verify callback when it refuses for a reason of ours */
	struct sg_tls_conn_stats st;
	struct tls_rxbuf rx;
	size_t txhead, txtail; /* unsent bytes are txbuf[txhead..txtail) */
	uint8_t rxmem[TLS_RXBUF_SIZE];
	uint8_t txbuf[SG_TLS_TXBUF_SIZE];
};

static void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* The reason of the most recent OpenSSL error, for messages. */
static const char *ossl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *s = e ? ERR_reason_error_string(e) : NULL;
	return s ? s : "unknown OpenSSL error";
}

/* ---- context ------------------------------------------------------------------------------ */

/* Replaces OpenSSL's chain verification (SSL_CTX_set_cert_verify_callback) so that a pin can
 * stand alone or be required on top of the CA. The error left in the store context becomes
 * SSL_get_verify_result, which the refusal line names. */
static int verify_chain(X509_STORE_CTX *store, void *arg)
{
	struct sg_tls_ctx *ctx = arg;
	SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct sg_tls_conn *c = ssl ? SSL_get_app_data(ssl) : NULL;
	X509 *leaf = X509_STORE_CTX_get0_cert(store);
	uint8_t pin[SG_TLS_PIN_LEN];

	if (!leaf)
		return 0;
	if (ctx->have_ca && X509_verify_cert(store) <= 0)
		return 0;
	if (ctx->have_pin) {
		if (tls_cert_spki_sha256(leaf, pin) != 0 || !sg_memeq(pin, ctx->pin, sizeof(pin))) {
			X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
			if (c)
				snprintf(c->why, sizeof(c->why), "certificate pin mismatch");
			return 0;
		}
	}
	X509_STORE_CTX_set_error(store, X509_V_OK);
	return 1;
}

/* Whether a CA certificate in st signed crl. */
static bool crl_signed_by_store(X509_STORE *st, X509_CRL *crl)
{
	STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(st);
	const X509_NAME *issuer = X509_CRL_get_issuer(crl);

	for (int i = 0; i < sk_X509_OBJECT_num(objs); i++) {
		X509 *ca = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));

		if (ca && !X509_NAME_cmp(X509_get_subject_name(ca), issuer) &&
		    X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1)
			return true;
	}
	ERR_clear_error();
	return false;
}

/* A verification store with the CA certificates of ca_file and, with crl_file, its CRLs. Each
 * CRL is checked before it is taken: signed by a CA of ca_file and not past its nextUpdate.
 * Either would otherwise refuse every peer at the next handshake, with a reason far from the
 * cause. NULL with err set on any problem. */
static X509_STORE *store_load(const char *ca_file, const char *crl_file, char *err, size_t errlen)
{
	X509_STORE *st = X509_STORE_new();
	STACK_OF(X509_INFO) *infos = NULL;
	BIO *bio = NULL;
	int ncrl = 0;

	if (!st) {
		errf(err, errlen, "out of memory");
		return NULL;
	}
	if (X509_STORE_load_file(st, ca_file) != 1) {
		errf(err, errlen, "%s: CA certificates: %s", ca_file, ossl_reason());
		goto fail;
	}
	if (!crl_file)
		return st;
	bio = BIO_new_file(crl_file, "r");
	if (!bio) {
		errf(err, errlen, "%s: cannot open: %s", crl_file, ossl_reason());
		goto fail;
	}
	infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL);
	if (!infos) {
		errf(err, errlen, "%s: not PEM: %s", crl_file, ossl_reason());
		goto fail;
	}
	for (int i = 0; i < sk_X509_INFO_num(infos); i++) {
		X509_INFO *xi = sk_X509_INFO_value(infos, i);
		char name[256];
		const ASN1_TIME *next;

		if (xi->x509 || xi->x_pkey) {
			errf(err, errlen, "%s: holds a certificate or key; a CRL file holds CRLs only",
			     crl_file);
			goto fail;
		}
		if (!xi->crl)
			continue;
		ncrl++;
		X509_NAME_oneline(X509_CRL_get_issuer(xi->crl), name, sizeof(name));
		if (!crl_signed_by_store(st, xi->crl)) {
			errf(err, errlen, "%s: CRL %d (issuer %s) is not signed by a CA of %s",
			     crl_file, ncrl, name, ca_file);
			goto fail;
		}
		next = X509_CRL_get0_nextUpdate(xi->crl);
		if (next && X509_cmp_current_time(next) < 0) {
			errf(err, errlen, "%s: CRL %d (issuer %s) is past its nextUpdate: make a new one "
					  "(secureguard cert crl)",
			     crl_file, ncrl, name);
			goto fail;
		}
		if (X509_STORE_add_crl(st, xi->crl) != 1) {
			errf(err, errlen, "%s: CRL %d: %s", crl_file, ncrl, ossl_reason());
			goto fail;
		}
	}
	if (ncrl == 0) {
		errf(err, errlen, "%s: no CRL in the file", crl_file);
		goto fail;
	}
	/* Every certificate of the chain, not only the leaf (RFC 5280 section 6.3). */
	X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	BIO_free(bio);
	return st;
fail:
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	BIO_free(bio);
	X509_STORE_free(st);
	return NULL;
}

/* The session-token key: a small PEM file (a P-384 SubjectPublicKeyInfo). */
static int load_token_key(struct tls_token_key *k, const char *file, char *err, size_t errlen)
{
	char buf[4096];
	const char *why = "unreadable";
	FILE *f = fopen(file, "re");
	size_t n;

	if (!f) {
		errf(err, errlen, "%s: session token key: %s", file, strerror(errno));
		return SG_EINVAL;
	}
	n = fread(buf, 1, sizeof(buf), f);
	bool too_long = n == sizeof(buf) && fgetc(f) != EOF;
	fclose(f);
	if (too_long || tls_token_key_from_pem(k, buf, n, &why) != 0) {
		errf(err, errlen, "%s: session token key: %s", file,
		     too_long ? "larger than a P-384 public key" : why);
		return SG_EINVAL;
	}
	return 0;
}

static uint64_t ms_or(uint32_t v, uint32_t def)
{
	return (uint64_t)(v ? v : def) * NS_PER_MS;
}

/* Suites and groups (docs/TLS.md). FIPS: SP 800-52r2 section 3.3.1 suites with AES-GCM only,
 * NIST curves only (X25519 and ChaCha20-Poly1305 are not FIPS-approved), ECDSA or RSA(-PSS)
 * signatures with SHA-2. Otherwise TLS 1.3's default suites, and in TLS 1.2 only ECDHE with an
 * AEAD, so every session has forward secrecy. */
static int set_algorithms(SSL_CTX *s, bool fips, char *err, size_t errlen)
{
	const char *suites13 = fips ? "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256"
				    : "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:"
				      "TLS_AES_128_GCM_SHA256";
	const char *ciphers12 = fips ? "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
				       "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"
				     : "ECDHE+AESGCM:ECDHE+CHACHA20";
	const char *groups = fips ? "P-384:P-256" : "X25519:P-256:P-384";
	const char *sigalgs = "ECDSA+SHA384:ECDSA+SHA256:ECDSA+SHA512:rsa_pss_rsae_sha384:"
			      "rsa_pss_rsae_sha256:rsa_pss_rsae_sha512:rsa_pss_pss_sha384:"
			      "rsa_pss_pss_sha256:rsa_pss_pss_sha512:RSA+SHA384:RSA+SHA256:"
			      "RSA+SHA512";

	if (SSL_CTX_set_ciphersuites(s, suites13) != 1 ||
	    SSL_CTX_set_cipher_list(s, ciphers12) != 1) {
		errf(err, errlen, "cipher suites: %s", ossl_reason());
		return SG_ECRYPTO;
	}
	if (SSL_CTX_set1_groups_list(s, groups) != 1) {
		errf(err, errlen, "groups %s: %s", groups, ossl_reason());
		return SG_ECRYPTO;
	}
	if (fips && (SSL_CTX_set1_sigalgs_list(s, sigalgs) != 1 ||
		     SSL_CTX_set1_client_sigalgs_list(s, sigalgs) != 1)) {
		errf(err, errlen, "signature algorithms: %s", ossl_reason());
		return SG_ECRYPTO;
	}
	return 0;
}

int sg_tls_ctx_new(struct sg_tls_ctx **out, const struct sg_tls_config *cfg, enum sg_tls_role role,
		   char *err, size_t errlen)
{
	struct sg_tls_ctx *ctx;
	int ret = SG_EINVAL;

	*out = NULL;
	if ((cfg->cert_file == NULL) != (cfg->key_file == NULL)) {
		errf(err, errlen, "a certificate needs its key and a key its certificate");
		return SG_EINVAL;
	}
	if (role == SG_TLS_SERVER && !cfg->cert_file) {
		errf(err, errlen, "a TLS server needs a certificate and key");
		return SG_EINVAL;
	}
	if (role == SG_TLS_CLIENT && !cfg->ca_file && !cfg->pin_sha256) {
		errf(err, errlen,
		     "a TLS client needs a CA file or a pinned server key to verify the "
		     "server");
		return SG_EINVAL;
	}
	if (role == SG_TLS_SERVER && cfg->require_client_cert && !cfg->ca_file &&
	    !cfg->pin_sha256) {
		errf(err, errlen, "RequireClientCert needs a CA file (or a pin) to verify clients");
		return SG_EINVAL;
	}
	if (role == SG_TLS_SERVER && cfg->require_session_token && !cfg->session_key_file) {
		errf(err, errlen, "RequireSessionToken needs the server's key (TlsSessionKey)");
		return SG_EINVAL;
	}
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return SG_ENOMEM;
	ctx->role = role;
	if (role == SG_TLS_SERVER && cfg->require_session_token) {
		ret = load_token_key(&ctx->token_key, cfg->session_key_file, err, errlen);
		if (ret != 0)
			goto fail;
		ctx->require_token = true;
	}
	ctx->fips = cfg->fips;
	ctx->handshake_ns = ms_or(cfg->handshake_timeout_ms, SG_TLS_DEFAULT_HANDSHAKE_MS);
	ctx->idle_ns = ms_or(cfg->idle_timeout_ms, SG_TLS_DEFAULT_IDLE_MS);
	ctx->keepalive_ns =
	    cfg->keepalive_ms ? (uint64_t)cfg->keepalive_ms * NS_PER_MS : ctx->idle_ns / 3;
	ctx->max_conns = cfg->max_conns ? cfg->max_conns : SG_TLS_DEFAULT_MAX_CONNS;
	ctx->per_source =
	    cfg->max_conns_per_source ? cfg->max_conns_per_source : SG_TLS_DEFAULT_PER_SOURCE;
	ctx->rate = cfg->rate_per_source ? cfg->rate_per_source : SG_TLS_DEFAULT_RATE;
	ctx->burst = cfg->burst_per_source ? cfg->burst_per_source : SG_TLS_DEFAULT_BURST;
	if (cfg->server_name) {
		ctx->server_name = strdup(cfg->server_name);
		if (!ctx->server_name) {
			ret = SG_ENOMEM;
			goto fail;
		}
	}
	if (cfg->pin_sha256) {
		memcpy(ctx->pin, cfg->pin_sha256, SG_TLS_PIN_LEN);
		ctx->have_pin = true;
	}

	/* With an active FIPS provider, every algorithm of the context comes from it. */
	const char *propq = cfg->fips && sg_crypto_fips_provider_active() ? "fips=yes" : NULL;
	ERR_clear_error();
	ctx->ssl = SSL_CTX_new_ex(
	    NULL, propq, role == SG_TLS_SERVER ? TLS_server_method() : TLS_client_method());
	if (!ctx->ssl) {
		errf(err, errlen, "TLS context: %s", ossl_reason());
		ret = SG_ECRYPTO;
		goto fail;
	}
	SSL_CTX_set_min_proto_version(ctx->ssl, TLS1_2_VERSION);
	/* No renegotiation (its attacks, RFC 5746) and no resumption: every connection is
	 * authenticated by certificate, and no ticket keys need rotating. */
	SSL_CTX_set_options(ctx->ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET |
					  SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_session_cache_mode(ctx->ssl, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx->ssl, 0);
	/* Our send buffer only grows at its end, so a retried SSL_write may see it longer. Idle
	 * connections give OpenSSL's record buffers back. We present exactly the chain in
	 * cert_file: the store that verifies peers must not decide it (OpenSSL would add our CA).
	 */
	SSL_CTX_set_mode(ctx->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
				       SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				       SSL_MODE_RELEASE_BUFFERS | SSL_MODE_NO_AUTO_CHAIN);
	/* Read ahead: one read(2) takes all the records that have arrived (up to READ_AHEAD_LEN)
	 * instead of two reads, header and body, per record. conn_read calls SSL_read while OpenSSL
	 * holds bytes (SSL_has_pending), so no record stays buffered unseen. */
	SSL_CTX_set_read_ahead(ctx->ssl, 1);
	SSL_CTX_set_default_read_buffer_len(ctx->ssl, READ_AHEAD_LEN);
	ret = set_algorithms(ctx->ssl, cfg->fips, err, errlen);
	if (ret != 0)
		goto fail;
	ret = SG_EINVAL;
	if (cfg->cert_file) {
		if (SSL_CTX_use_certificate_chain_file(ctx->ssl, cfg->cert_file) != 1) {
			errf(err, errlen, "%s: certificate: %s", cfg->cert_file, ossl_reason());
			goto fail;
		}
		if (SSL_CTX_use_PrivateKey_file(ctx->ssl, cfg->key_file, SSL_FILETYPE_PEM) != 1) {
			errf(err, errlen, "%s: private key: %s", cfg->key_file, ossl_reason());
			goto fail;
		}
		if (SSL_CTX_check_private_key(ctx->ssl) != 1) {
			errf(err, errlen, "%s: private key does not match %s", cfg->key_file,
			     cfg->cert_file);
			goto fail;
		}
	}
	if (cfg->crl_file && !cfg->ca_file) {
		errf(err, errlen, "a CRL needs the CA file its CRLs are checked against");
		goto fail;
	}
	if (cfg->ca_file) {
		X509_STORE *st = store_load(cfg->ca_file, cfg->crl_file, err, errlen);

		if (!st)
			goto fail;
		SSL_CTX_set_cert_store(ctx->ssl, st);
		ctx->have_ca = true;
		if (role == SG_TLS_SERVER) {
			/* The CA names we accept go into CertificateRequest, so a client with
			 * several certificates can pick. */
			STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->ca_file);
			if (names)
				SSL_CTX_set_client_CA_list(ctx->ssl, names);
		}
	}
	SSL_CTX_set_cert_verify_callback(ctx->ssl, verify_chain, ctx);
	SSL_CTX_set_verify_depth(ctx->ssl, 4);
	if (role == SG_TLS_CLIENT)
		SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_PEER, NULL);
	else if (cfg->require_client_cert)
		SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
				   NULL);
	else
		SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_NONE, NULL);
	*out = ctx;
	return 0;
fail:
	sg_tls_ctx_free(ctx);
	return ret;
}

int sg_tls_ctx_reload(struct sg_tls_ctx *ctx, const char *ca_file, const char *crl_file,
		      char *err, size_t errlen)
{
	X509_STORE *st;

	if (!ca_file) {
		errf(err, errlen, "no CA file to reload");
		return SG_EINVAL;
	}
	st = store_load(ca_file, crl_file, err, errlen);
	if (!st)
		return SG_EINVAL;
	/* Verification runs inside SSL_do_handshake on this thread: no handshake holds the old
	 * store now, and the next one takes the new. */
	SSL_CTX_set_cert_store(ctx->ssl, st);
	ctx->have_ca = true;
	return 0;
}

void sg_tls_ctx_free(struct sg_tls_ctx *ctx)
{
	if (!ctx)
		return;
	SSL_CTX_free(ctx->ssl);
	free(ctx->server_name);
	if (ctx->token) {
		sg_memzero(ctx->token, ctx->token_len);
		free(ctx->token);
	}
	sg_memzero(ctx, sizeof(*ctx));
	free(ctx);
}

/* ---- sources (listener) ------------------------------------------------------------------- */

static void source_key(const union wg_sockaddr *sa, uint8_t key[SRC_KEY_LEN])
{
	memset(key, 0, SRC_KEY_LEN);
	key[0] = (uint8_t)sa->sa.sa_family;
	if (sa->sa.sa_family == AF_INET)
		memcpy(key + 1, &sa->in4.sin_addr, 4);
	else /* one host usually owns a whole /64, as the kernel's ratelimiter counts */
		memcpy(key + 1, &sa->in6.sin6_addr, 8);
}

static uint64_t source_hash(uint64_t seed, const uint8_t key[SRC_KEY_LEN])
{
	uint64_t h = seed;
	for (int i = 0; i < SRC_KEY_LEN; i++)
		h = (h ^ key[i]) * 0x100000001b3ull; /* FNV-1a steps from a random seed */
	h ^= h >> 32;
	h *= 0x9e3779b97f4a7c15ull;
	return h ^ (h >> 29);
}

static uint64_t source_cost(const struct sg_tls_ctx *ctx)
{
	return 1000000000ull / ctx->rate;
}

/* A slot without connections whose bucket is full again behaves as a fresh one: reusable. */
static bool source_idle(const struct sg_tls_ctx *ctx, const struct src_entry *e, uint64_t now)
{
	uint64_t max = source_cost(ctx) * ctx->burst;
	return e->conns == 0 && (now - e->last_ns >= max || e->tokens + (now - e->last_ns) >= max);
}

/* The entry of a source, created with a full bucket if new; NULL when every slot of the probe
 * window belongs to a source with connections or a recently drawn bucket. */
static struct src_entry *source_get(struct sg_tls_listener *l, const uint8_t key[SRC_KEY_LEN],
				    uint64_t now)
{
	uint64_t h = source_hash(l->seed, key);
	struct src_entry *spare = NULL;

	for (unsigned i = 0; i < SRC_PROBE; i++) {
		struct src_entry *e = &l->sources[(h + i) % SRC_SLOTS];
		if (e->used && memcmp(e->key, key, SRC_KEY_LEN) == 0)
			return e;
		if (!spare && (!e->used || source_idle(l->ctx, e, now)))
			spare = e;
	}
	if (spare) {
		memcpy(spare->key, key, SRC_KEY_LEN);
		spare->used = true;
		spare->conns = 0;
		spare->last_ns = now;
		spare->tokens = source_cost(l->ctx) * l->ctx->burst;
	}
	return spare;
}

/* Token bucket: one connection costs 1/rate seconds of credit, at most burst of them saved. */
static bool source_take(const struct sg_tls_ctx *ctx, struct src_entry *e, uint64_t now)
{
	uint64_t cost = source_cost(ctx), max = cost * ctx->burst;
	uint64_t elapsed = now - e->last_ns;
	e->tokens = elapsed >= max ? max : SG_MIN(max, e->tokens + elapsed);
	e->last_ns = now;
	if (e->tokens < cost)
		return false;
	e->tokens -= cost;
	return true;
}

/* ---- logging ------------------------------------------------------------------------------ */

static void log_refusal(struct sg_tls_listener *l, const char *peer, const char *reason)
{
	char q[256];
	uint64_t suppressed = 0;

	/* A flood must not fill the log: bursts of 20 lines, then 5 per second. */
	if (!sg_log_ratelimit_allow(&l->log_rl, evloop_now_ns(), &suppressed))
		return;
	sg_log_quote(q, sizeof(q), reason);
	if (suppressed)
		sg_log(SG_LOG_WARN, "tls_refused", "peer=%s reason=%s suppressed=%llu", peer, q,
		       (unsigned long long)suppressed);
	else
		sg_log(SG_LOG_WARN, "tls_refused", "peer=%s reason=%s", peer, q);
}

/* ---- connections -------------------------------------------------------------------------- */

static void conn_free(struct sg_tls_conn *c)
{
	struct sg_tls_listener *l = c->listener;
	if (l) {
		if (c->prev)
			c->prev->next = c->next;
		else
			l->conns = c->next;
		if (c->next)
			c->next->prev = c->prev;
	}
	free(c);
}

/* Frees a dead connection now, or marks it for whoever holds it inside a callback or a walk of
 * the listener's list. */
static void conn_release(struct sg_tls_conn *c)
{
	if (c->busy > 0 || (c->listener && c->listener->iterating > 0)) {
		c->zombie = true;
		return;
	}
	conn_free(c);
}

/* Closes the socket and TLS state and gives back the source's slot; the memory stays. */
static void conn_teardown(struct sg_tls_conn *c, bool notify)
{
	if (c->ssl) {
		/* A close_notify for a peer we talked to; a refused handshake already sent its
		 * alert. Non-blocking: if the socket cannot take it, the FIN says enough. */
		if (notify && SSL_is_init_finished(c->ssl)) {
			ERR_clear_error();
			(void)SSL_shutdown(c->ssl);
		}
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	ERR_clear_error();
	evloop_del(c->loop, &c->src);
	evloop_del(c->loop, &c->tsrc);
	if (c->fd >= 0)
		close(c->fd);
	if (c->tfd >= 0)
		close(c->tfd);
	c->fd = c->tfd = -1;
	if (c->listener) {
		c->listener->st.conns--;
		if (c->source)
			c->source->conns--;
	}
	c->source = NULL;
	c->state = ST_DEAD;
}

/* Ends a connection for `reason`: logs it, tells the caller (for a connection it knows) and
 * frees it when nobody is inside it. */
static void conn_end(struct sg_tls_conn *c, const char *reason)
{
	char q[256];

	if (c->state == ST_DEAD)
		return;
	bool was_up = c->reported_up;
	if (c->listener && !was_up) {
		c->listener->st.refused_handshake++;
		log_refusal(c->listener, c->peer_str, reason);
	} else if (!c->listener && !was_up) {
		sg_log(SG_LOG_WARN, "tls_connect_failed", "peer=%s reason=%s", c->peer_str,
		       sg_log_quote(q, sizeof(q), reason));
	} else {
		sg_log(SG_LOG_INFO, "tls_down", "peer=%s reason=%s", c->peer_str,
		       sg_log_quote(q, sizeof(q), reason));
	}
	conn_teardown(c, was_up);
	/* The caller hears of every connection it made and of every accepted one it saw up. */
	if ((was_up || !c->listener) && c->cbs.on_state) {
		c->busy++;
		c->cbs.on_state(c->cbs.user, c, false, reason);
		c->busy--;
	}
	conn_release(c);
}

/* Why an SSL call failed, in words for the log and on_state. */
static const char *ssl_failure(struct sg_tls_conn *c, int ret, char *buf, size_t size)
{
	int e = SSL_get_error(c->ssl, ret);
	unsigned long code;

	switch (e) {
	case SSL_ERROR_ZERO_RETURN:
		return "closed by peer";
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() != 0)
			break;
		if (ret == 0 || errno == 0)
			return c->state == ST_UP ? "connection closed by peer"
						 : "connection closed during handshake";
		snprintf(buf, size, "%s", strerror(errno));
		return buf;
	default:
		break;
	}
	code = ERR_peek_last_error();
	if (code == 0)
		return "TLS protocol error";
	if (ERR_GET_LIB(code) == ERR_LIB_SSL) {
		switch (ERR_GET_REASON(code)) {
		case SSL_R_CERTIFICATE_VERIFY_FAILED:
			snprintf(buf, size, "certificate verify failed: %s",
				 c->why[0] ? c->why
					   : X509_verify_cert_error_string(
						 SSL_get_verify_result(c->ssl)));
			return buf;
		case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
			return "no client certificate";
		case SSL_R_NO_SHARED_CIPHER:
			return "no shared cipher (a FIPS server accepts only AES-GCM suites)";
		default:
			break;
		}
	}
	const char *r = ERR_reason_error_string(code);
	snprintf(buf, size, "%s", r ? r : "TLS protocol error");
	return buf;
}

static void conn_update_events(struct sg_tls_conn *c)
{
	uint32_t ev;

	if (c->state == ST_DEAD)
		return;
	if (c->state == ST_CONNECTING)
		ev = EPOLLOUT;
	else
		ev = EPOLLIN | ((c->tx_blocked || c->hs_want_write) ? EPOLLOUT : 0);
	if (ev == c->events)
		return;
	if (evloop_mod(c->loop, &c->src, ev) != 0) {
		conn_end(c, "epoll_ctl failed");
		return;
	}
	c->events = ev;
}

/* Writes what the socket takes: every queued byte (all), or whole records only, leaving the
 * last partial record for the flush at the end of the batch. With SSL_MODE_ENABLE_PARTIAL_WRITE
 * each SSL_write sends one record of up to TLS_RECORD_MAX bytes, however many frames that holds;
 * it is always given everything queued, so a retry is never shorter than the write it retries.
 * Returns false if the connection ended. */
static bool conn_flush(struct sg_tls_conn *c, bool all)
{
	char buf[128];

	while (c->txtail - c->txhead >= (all ? 1u : TLS_RECORD_MAX)) {
		ERR_clear_error();
		int n = SSL_write(c->ssl, c->txbuf + c->txhead, (int)(c->txtail - c->txhead));
		if (n > 0) {
			c->tx_blocked = false;
			c->st.tx_records++;
			c->txhead += (size_t)n;
			if (c->txhead == c->txtail)
				c->txhead = c->txtail = 0;
			continue;
		}
		int e = SSL_get_error(c->ssl, n);
		if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
			c->tx_blocked = true; /* EPOLLOUT is asked for until a write goes through */
			return true;
		}
		conn_end(c, ssl_failure(c, n, buf, sizeof(buf)));
		return false;
	}
	return true;
}

/* Appends one frame to the send buffer. Unsent bytes move to the front only when the frame
 * would not fit behind them; a retried SSL_write may see its data moved
 * (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER) and longer, never changed. */
static int conn_queue(struct sg_tls_conn *c, const uint8_t *msg, size_t len)
{
	size_t need = TLS_FRAME_HDR_LEN + len, pending = c->txtail - c->txhead;
	if (SG_TLS_TXBUF_SIZE - pending < need)
		return SG_EFULL;
	if (SG_TLS_TXBUF_SIZE - c->txtail < need) {
		memmove(c->txbuf, c->txbuf + c->txhead, pending);
		c->txhead = 0;
		c->txtail = pending;
	}
	tls_frame_header(c->txbuf + c->txtail, len);
	if (len)
		memcpy(c->txbuf + c->txtail + TLS_FRAME_HDR_LEN, msg, len);
	c->txtail += need;
	return 0;
}

/* The next time a client connection's timer must look at it. */
static uint64_t conn_next_deadline(const struct sg_tls_conn *c)
{
	if (c->state != ST_UP)
		return c->deadline_ns;
	return SG_MIN(c->last_rx_ns + c->ctx->idle_ns, c->last_tx_ns + c->keepalive_ns);
}

static void conn_went_up(struct sg_tls_conn *c)
{
	c->state = ST_UP;
	c->reported_up = true;
	c->last_rx_ns = c->last_tx_ns = evloop_now_ns();
	if (c->listener)
		c->listener->st.up++;
	/* A client's timer was set for the handshake deadline: now keepalive and idle count. */
	else if (evloop_timer_arm(c->tfd, conn_next_deadline(c)) != 0)
		sg_log(SG_LOG_ERROR, "tls_timer_failed", "peer=%s", c->peer_str);
	sg_log(SG_LOG_INFO, "tls_up", "peer=%s version=%s cipher=%s", c->peer_str,
	       SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl));
	if (c->cbs.on_state) {
		c->busy++;
		c->cbs.on_state(c->cbs.user, c, true, "up");
		c->busy--;
	}
}

/* Server, ST_TOKEN: the client's hello. 1: admitted (claims kept, expiry timed, an older
 * connection with the same session ended); 0: more bytes needed; -1: refused and ended. */
static int conn_take_token(struct sg_tls_conn *c)
{
	struct sg_tls_listener *l = c->listener;
	const uint8_t *tok;
	size_t toklen;
	const char *why = "malformed hello";
	char reason[160], tag[SG_LOG_KEY_TAG_SIZE], q[96];
	int64_t now = (int64_t)time(NULL);
	int r = tls_hello_parse(c->rx.buf + c->rx.head, tls_rxbuf_pending(&c->rx), &tok, &toklen,
				&why);

	if (r == 0)
		return 0;
	if (r > 0 && tls_token_verify(tok, toklen, &c->ctx->token_key, now, &c->tok, &why) == 0) {
		tls_rxbuf_consume(&c->rx, (size_t)r);
		c->has_token = true;
		c->token_end_ns = evloop_now_ns() + (uint64_t)(c->tok.exp - now) * 1000 * NS_PER_MS;
		sg_log(SG_LOG_INFO, "tls_token_accepted",
		       "peer=%s client=%s session=%s expires_in=%llds", c->peer_str,
		       sg_log_key_tag(tag, c->tok.client_key), sg_log_quote(q, sizeof(q), c->tok.sid),
		       (long long)(c->tok.exp - now));
		/* One connection per session: a token copied elsewhere takes over the tunnel's
		 * connection at most until the owner reconnects (both show in the log), never adds
		 * a second one. */
		l->iterating++;
		for (struct sg_tls_conn *o = l->conns; o; o = o->next)
			if (o != c && o->has_token && o->state != ST_DEAD &&
			    !strcmp(o->tok.sid, c->tok.sid))
				conn_end(o, "session token used by a newer connection");
		l->iterating--;
		return 1;
	}
	snprintf(reason, sizeof(reason), "%s", why);
	conn_end(c, reason);
	return -1;
}

/* Client: the server asked for a session token (TLS_GREETING_TOKEN): the hello goes first. The
 * send buffer is empty so early, and a hello is far smaller. False if the connection ended. */
static bool client_send_token(struct sg_tls_conn *c)
{
	if (!c->ctx->token) {
		conn_end(c, "the server requires a session token (set TlsSessionToken)");
		return false;
	}
	tls_hello_encode(c->txbuf + c->txtail, c->ctx->token_len);
	memcpy(c->txbuf + c->txtail + TLS_HELLO_HDR_LEN, c->ctx->token, c->ctx->token_len);
	c->txtail += TLS_HELLO_HDR_LEN + c->ctx->token_len;
	return conn_flush(c, true);
}

/* The frames given to on_message so far are done with (on_rx_done). */
static void conn_rx_done(struct sg_tls_conn *c)
{
	if (!c->rx_held)
		return;
	c->rx_held = false;
	if (c->cbs.on_rx_done) {
		c->busy++;
		c->cbs.on_rx_done(c->cbs.user, c);
		c->busy--;
	}
}

/* Reads and dispatches everything TLS has for us. The frames of several records stay in the
 * receive buffer until it must be reused, so the receiver gets them as one batch (on_rx_done):
 * a read(2) of four records (read-ahead) is about 47 datagrams of 1380 bytes. */
static void conn_read_frames(struct sg_tls_conn *c)
{
	char buf[128];

	while (c->state == ST_GREETING || c->state == ST_TOKEN || c->state == ST_UP) {
		size_t avail;
		if (c->rx_held && tls_rxbuf_reuses(&c->rx)) {
			conn_rx_done(c);
			continue; /* the receiver may have ended the connection */
		}
		uint8_t *p = tls_rxbuf_space(&c->rx, &avail);
		if (avail == 0) {
			conn_end(c, "receive buffer full"); /* cannot happen: a frame always fits */
			return;
		}
		ERR_clear_error();
		int n = SSL_read(c->ssl, p, (int)SG_MIN(avail, (size_t)INT32_MAX));
		if (n <= 0) {
			int e = SSL_get_error(c->ssl, n);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
				return;
			conn_end(c, ssl_failure(c, n, buf, sizeof(buf)));
			return;
		}
		tls_rxbuf_commit(&c->rx, (size_t)n);
		c->st.rx_records++;
		c->last_rx_ns = evloop_now_ns();
		if (c->state == ST_TOKEN) {
			int r = conn_take_token(c);
			if (r < 0)
				return;
			if (r == 0)
				continue;
			conn_went_up(c);
		}
		if (c->state == ST_GREETING) {
			struct tls_greeting g;
			const char *why = "greeting mismatch";
			int r = tls_rxbuf_take_greeting(&c->rx, &g, &why);
			if (r < 0) {
				conn_end(c, why);
				return;
			}
			if (r == 0)
				continue;
			c->greeting_flags = g.flags;
			/* Keep the server from timing us out: keepalives at a third of its idle
			 * timeout at most. */
			if (g.idle_timeout_s)
				c->keepalive_ns =
				    SG_MIN(c->keepalive_ns,
					   (uint64_t)g.idle_timeout_s * 1000 * NS_PER_MS / 3);
			if ((g.flags & TLS_GREETING_TOKEN) && !client_send_token(c))
				return;
			conn_went_up(c);
		}
		const uint8_t *msg;
		size_t len;
		while (c->state == ST_UP && tls_rxbuf_take_frame(&c->rx, &msg, &len) == 1) {
			if (len == 0) {
				c->st.rx_keepalives++;
				continue;
			}
			c->st.rx_msgs++;
			c->st.rx_bytes += len;
			if (c->cbs.on_message) {
				c->busy++;
				/* Ours: the frame lies in rxmem, which the receiver may change. */
				c->cbs.on_message(c->cbs.user, c, (uint8_t *)msg, len);
				c->busy--;
				c->rx_held = true;
			}
		}
		/* Without on_rx_done a frame is done with when on_message returns. */
		if (!c->cbs.on_rx_done)
			c->rx_held = false;
		/* OpenSSL holds no more bytes (read-ahead took what the socket had): the socket's
		 * next bytes wake us again (epoll is level-triggered), so no SSL_read that could
		 * only say WANT_READ after a read(2) that says EAGAIN. */
		if (c->state == ST_UP && !SSL_has_pending(c->ssl))
			return;
	}
}

static void conn_read(struct sg_tls_conn *c)
{
	conn_read_frames(c);
	conn_rx_done(c); /* also after an end: the frames' memory lives while we are inside */
}

static void conn_handshake(struct sg_tls_conn *c)
{
	char buf[160];

	if (c->listener && !c->peeked) {
		/* Tell a plain TCP client from a TLS one by its first byte, for a log line that
		 * says what happened rather than "wrong version number". */
		uint8_t b;
		ssize_t n = recv(c->fd, &b, 1, MSG_PEEK);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (n < 0) {
			conn_end(c, strerror(errno));
			return;
		}
		if (n == 0) {
			conn_end(c, "closed before the handshake");
			return;
		}
		if (b != TLS_CT_HANDSHAKE) {
			conn_end(c, "not TLS (plain TCP data)");
			return;
		}
		c->peeked = true;
	}
	ERR_clear_error();
	int r = SSL_do_handshake(c->ssl);
	c->hs_want_write = false;
	if (r != 1) {
		int e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_READ)
			return;
		if (e == SSL_ERROR_WANT_WRITE) {
			c->hs_want_write = true;
			return;
		}
		conn_end(c, ssl_failure(c, r, buf, sizeof(buf)));
		return;
	}
	if (!c->listener) {
		c->state = ST_GREETING;
		return;
	}
	/* Server: greet, then frames may flow (the client's certificate, if required, has been
	 * verified: in TLS 1.3 it came before the client's Finished). */
	struct tls_greeting g = {
	    .flags = (uint8_t)((c->ctx->fips ? TLS_GREETING_FIPS : 0) |
			       (c->ctx->require_token ? TLS_GREETING_TOKEN : 0)),
	    .idle_timeout_s = (uint16_t)SG_MIN(
		(c->ctx->idle_ns + 999 * NS_PER_MS) / (1000 * NS_PER_MS), (uint64_t)UINT16_MAX),
	};
	tls_greeting_encode(c->txbuf, &g);
	c->txhead = 0;
	c->txtail = TLS_GREETING_LEN;
	if (!conn_flush(c, true))
		return;
	if (c->ctx->require_token) {
		c->state = ST_TOKEN; /* up once the hello's token verifies (conn_read) */
		return;
	}
	conn_went_up(c);
}

static void conn_check_timers(struct sg_tls_conn *c, uint64_t now)
{
	if (c->state == ST_DEAD)
		return;
	if (c->state != ST_UP) {
		if (now >= c->deadline_ns)
			conn_end(c, c->state == ST_TOKEN ? "no session token before the handshake "
							   "timeout"
							 : "handshake timeout");
		return;
	}
	if (c->has_token && now >= c->token_end_ns) {
		c->listener->st.token_expired++;
		conn_end(c, "session token expired");
		return;
	}
	if (now - c->last_rx_ns >= c->ctx->idle_ns) {
		if (c->listener)
			c->listener->st.idle_closed++;
		conn_end(c, "idle timeout");
		return;
	}
	/* Queued bytes will go out as soon as the socket takes them: no keepalive needed then. */
	if (now - c->last_tx_ns >= c->keepalive_ns && c->txtail == c->txhead &&
	    sg_tls_conn_send(c, NULL, 0) != 0)
		c->last_tx_ns = now; /* cannot happen with an empty buffer; do not retry at once */
}

static void conn_event(void *arg, uint32_t events)
{
	struct sg_tls_conn *c = arg;
	char buf[128];

	c->busy++;
	if (c->state == ST_CONNECTING) {
		int soerr = 0;
		socklen_t len = sizeof(soerr);
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
			soerr = errno;
		if (soerr != 0) {
			snprintf(buf, sizeof(buf), "connect: %s", strerror(soerr));
			conn_end(c, buf);
		} else if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
			c->state = ST_HANDSHAKE;
		}
	}
	if (c->state == ST_HANDSHAKE)
		conn_handshake(c);
	if (c->state == ST_GREETING || c->state == ST_TOKEN || c->state == ST_UP) {
		if (conn_flush(c, true))
			conn_read(c);
	}
	conn_update_events(c);
	c->busy--;
	if (c->zombie && c->busy == 0)
		conn_release(c);
}

static void client_timer(void *arg, uint32_t events)
{
	struct sg_tls_conn *c = arg;

	c->busy++;
	evloop_timer_ack(c->tfd);
	conn_check_timers(c, evloop_now_ns());
	if (c->state != ST_DEAD) {
		conn_update_events(c);
		if (c->state != ST_DEAD && evloop_timer_arm(c->tfd, conn_next_deadline(c)) != 0)
			conn_end(c, "timerfd_settime failed");
	}
	c->busy--;
	if (c->zombie && c->busy == 0)
		conn_release(c);
}

static struct sg_tls_conn *conn_alloc(struct sg_tls_ctx *ctx, struct evloop *loop,
				      const struct sg_tls_callbacks *cbs)
{
	struct sg_tls_conn *c = malloc(sizeof(*c));
	if (!c)
		return NULL;
	/* Only the header needs zeroing; the buffers are written before they are read. */
	memset(c, 0, offsetof(struct sg_tls_conn, rxmem));
	c->ctx = ctx;
	c->loop = loop;
	c->cbs = *cbs;
	c->fd = c->tfd = -1;
	c->keepalive_ns = ctx->keepalive_ns;
	tls_rxbuf_init(&c->rx, c->rxmem, sizeof(c->rxmem));
	return c;
}

static void set_tcp_options(int fd)
{
	int one = 1, lowat = NOTSENT_LOWAT;
	/* Frames are whole datagrams: send each at once (docs/TLS.md, TCP-over-TCP). */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof(lowat));
}

static void format_peer(struct sg_tls_conn *c)
{
	struct wg_endpoint ep;
	memset(&ep, 0, sizeof(ep));
	ep.addr = c->peer;
	if (addr_format_endpoint(c->peer_str, sizeof(c->peer_str), &ep, NULL) < 0)
		snprintf(c->peer_str, sizeof(c->peer_str), "?");
}

/* conn_flush from outside the connection's own events. 0, or SG_EIO when it ended. */
static int conn_write(struct sg_tls_conn *c, bool all)
{
	c->busy++;
	bool alive = conn_flush(c, all);
	if (alive)
		conn_update_events(c);
	alive = alive && c->state != ST_DEAD;
	c->busy--;
	if (c->zombie && c->busy == 0)
		conn_release(c);
	return alive ? 0 : SG_EIO; /* ended: on_state(down) has been called */
}

/* Queues a frame and writes everything (all) or whole records only. */
static int conn_send(struct sg_tls_conn *c, const uint8_t *msg, size_t len, bool all)
{
	if (len > TLS_FRAME_MAX)
		return SG_ERANGE;
	if (c->state != ST_UP)
		return SG_EAGAIN;
	if (conn_queue(c, msg, len) != 0) {
		/* As a full UDP socket: drop. The tunnel above retransmits what matters. */
		c->st.tx_dropped++;
		return SG_EFULL;
	}
	c->last_tx_ns = evloop_now_ns();
	if (len == 0) {
		c->st.tx_keepalives++;
	} else {
		c->st.tx_msgs++;
		c->st.tx_bytes += len;
	}
	/* While the socket is known full, the EPOLLOUT event writes. */
	if (c->tx_blocked || (!all && c->txtail - c->txhead < TLS_RECORD_MAX))
		return 0;
	return conn_write(c, all);
}

int sg_tls_conn_send(struct sg_tls_conn *c, const uint8_t *msg, size_t len)
{
	return conn_send(c, msg, len, true);
}

int sg_tls_conn_queue(struct sg_tls_conn *c, const uint8_t *msg, size_t len)
{
	return conn_send(c, msg, len, false);
}

int sg_tls_conn_flush(struct sg_tls_conn *c)
{
	if (c->state != ST_UP || c->tx_blocked || c->txtail == c->txhead)
		return 0;
	return conn_write(c, true);
}

const union wg_sockaddr *sg_tls_conn_peer(const struct sg_tls_conn *c)
{
	return &c->peer;
}

const char *sg_tls_conn_peer_str(const struct sg_tls_conn *c)
{
	return c->peer_str;
}

bool sg_tls_conn_is_up(const struct sg_tls_conn *c)
{
	return c->state == ST_UP;
}

uint8_t sg_tls_conn_greeting_flags(const struct sg_tls_conn *c)
{
	return c->greeting_flags;
}

const struct tls_token_claims *sg_tls_conn_token(const struct sg_tls_conn *c)
{
	return c->has_token ? &c->tok : NULL;
}

int sg_tls_ctx_set_session_token(struct sg_tls_ctx *ctx, const uint8_t *tok, size_t len)
{
	uint8_t *copy = NULL;

	if (len > TLS_TOKEN_MAX)
		return SG_ERANGE;
	if (len) {
		copy = malloc(len);
		if (!copy)
			return SG_ENOMEM;
		memcpy(copy, tok, len);
	}
	if (ctx->token) {
		sg_memzero(ctx->token, ctx->token_len);
		free(ctx->token);
	}
	ctx->token = copy;
	ctx->token_len = len;
	return 0;
}

void sg_tls_conn_stats(const struct sg_tls_conn *c, struct sg_tls_conn_stats *st)
{
	*st = c->st;
}

void sg_tls_conn_set_user(struct sg_tls_conn *c, void *user)
{
	c->user = user;
}

void *sg_tls_conn_get_user(const struct sg_tls_conn *c)
{
	return c->user;
}

void sg_tls_conn_close(struct sg_tls_conn *c)
{
	if (!c)
		return;
	if (c->state != ST_DEAD) {
		sg_log(SG_LOG_INFO, "tls_down", "peer=%s reason=closed_locally", c->peer_str);
		conn_teardown(c, c->reported_up);
	}
	conn_release(c);
}

/* Whether the peer chain of an established connection is revoked by a CRL of the context's
 * store as it is now (after sg_tls_ctx_reload). Other verification failures (a certificate that
 * expired since the handshake) do not end a connection here. */
static bool conn_revoked(struct sg_tls_conn *c)
{
	X509_STORE_CTX *x;
	X509 *leaf;
	bool revoked = false;

	if (c->state == ST_DEAD || !c->ssl || !c->ctx->have_ca || !SSL_is_init_finished(c->ssl))
		return false;
	leaf = SSL_get0_peer_certificate(c->ssl);
	if (!leaf)
		return false;
	x = X509_STORE_CTX_new();
	if (x && X509_STORE_CTX_init(x, SSL_CTX_get_cert_store(c->ctx->ssl), leaf,
				     SSL_get_peer_cert_chain(c->ssl)) == 1) {
		X509_STORE_CTX_set_default(x, c->listener ? "ssl_client" : "ssl_server");
		if (X509_verify_cert(x) <= 0)
			revoked = X509_STORE_CTX_get_error(x) == X509_V_ERR_CERT_REVOKED;
	}
	X509_STORE_CTX_free(x);
	ERR_clear_error();
	return revoked;
}

bool sg_tls_conn_recheck(struct sg_tls_conn *c)
{
	if (!c || !conn_revoked(c))
		return false;
	conn_end(c, "certificate revoked");
	return true;
}

/* ---- listener ----------------------------------------------------------------------------- */

static void listener_tick(void *arg, uint32_t events)
{
	struct sg_tls_listener *l = arg;
	uint64_t now = evloop_now_ns();

	evloop_timer_ack(l->tfd);
	l->iterating++;
	for (struct sg_tls_conn *c = l->conns; c; c = c->next)
		conn_check_timers(c, now);
	l->iterating--;
	/* Free what ended during the walk (nobody can be inside those now). */
	for (struct sg_tls_conn *c = l->conns, *next; c; c = next) {
		next = c->next;
		if (c->zombie && c->busy == 0)
			conn_free(c);
	}
	if (l->paused && evloop_mod(l->loop, &l->src, EPOLLIN) == 0)
		l->paused = false;
	if (evloop_timer_arm(l->tfd, now + l->tick_ns) != 0)
		sg_log(SG_LOG_ERROR, "tls_timer_failed", "port=%u", l->port);
}

unsigned sg_tls_listener_recheck(struct sg_tls_listener *l)
{
	unsigned n = 0;

	if (!l)
		return 0;
	l->iterating++;
	for (struct sg_tls_conn *c = l->conns; c; c = c->next) {
		if (conn_revoked(c)) {
			conn_end(c, "certificate revoked");
			n++;
		}
	}
	l->iterating--;
	for (struct sg_tls_conn *c = l->conns, *next; c; c = next) {
		next = c->next;
		if (c->zombie && c->busy == 0)
			conn_free(c);
	}
	return n;
}

static void refuse_fd(struct sg_tls_listener *l, int fd, const char *peer, const char *reason,
		      uint64_t *counter)
{
	(*counter)++;
	close(fd);
	log_refusal(l, peer, reason);
}

static void listener_accept_one(struct sg_tls_listener *l, int fd, const union wg_sockaddr *sa)
{
	struct sg_tls_ctx *ctx = l->ctx;
	struct sg_tls_conn *c;
	struct wg_endpoint ep;
	char peer[ADDR_ENDPOINT_STRLEN];
	uint8_t key[SRC_KEY_LEN];
	uint64_t now = evloop_now_ns();

	memset(&ep, 0, sizeof(ep));
	ep.addr = *sa;
	addr_unmap_endpoint(&ep, &ep);
	if (addr_format_endpoint(peer, sizeof(peer), &ep, NULL) < 0)
		snprintf(peer, sizeof(peer), "?");
	if (l->st.conns >= ctx->max_conns) {
		refuse_fd(l, fd, peer, "too many connections", &l->st.refused_total);
		return;
	}
	source_key(&ep.addr, key);
	struct src_entry *src = source_get(l, key, now);
	if (!src) {
		refuse_fd(l, fd, peer, "source table full", &l->st.refused_source);
		return;
	}
	if (src->conns >= ctx->per_source) {
		refuse_fd(l, fd, peer, "too many connections from this source",
			  &l->st.refused_source);
		return;
	}
	if (!source_take(ctx, src, now)) {
		refuse_fd(l, fd, peer, "connection rate limit", &l->st.refused_rate);
		return;
	}
	c = conn_alloc(ctx, l->loop, &l->cbs);
	if (!c) {
		refuse_fd(l, fd, peer, "out of memory", &l->st.refused_total);
		return;
	}
	c->listener = l;
	c->fd = fd;
	c->peer = ep.addr;
	memcpy(c->peer_str, peer, sizeof(peer));
	c->state = ST_HANDSHAKE;
	c->deadline_ns = now + ctx->handshake_ns;
	set_tcp_options(fd);
	ERR_clear_error();
	c->ssl = SSL_new(ctx->ssl);
	if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) {
		log_refusal(l, peer, "SSL_new failed");
		l->st.refused_total++;
		if (c->ssl)
			SSL_free(c->ssl);
		close(fd);
		free(c);
		return;
	}
	SSL_set_app_data(c->ssl, c);
	SSL_set_accept_state(c->ssl);
	if (evloop_add(l->loop, &c->src, fd, EPOLLIN, conn_event, c) != 0) {
		log_refusal(l, peer, "epoll_ctl failed");
		l->st.refused_total++;
		SSL_free(c->ssl);
		close(fd);
		free(c);
		return;
	}
	c->events = EPOLLIN;
	c->source = src;
	src->conns++;
	l->st.conns++;
	l->st.accepted++;
	c->next = l->conns;
	if (l->conns)
		l->conns->prev = c;
	l->conns = c;
}

static void listener_event(void *arg, uint32_t events)
{
	struct sg_tls_listener *l = arg;

	for (int i = 0; i < ACCEPT_BATCH; i++) {
		union wg_sockaddr sa;
		socklen_t salen = sizeof(sa);
		memset(&sa, 0, sizeof(sa));
		int fd = accept4(l->fd, &sa.sa, &salen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				/* The pending connection stays readable: stop listening until the
				 * next tick instead of spinning on it. */
				char q[96];
				sg_log(SG_LOG_ERROR, "tls_accept_failed", "port=%u error=%s",
				       l->port, sg_log_quote(q, sizeof(q), strerror(errno)));
				if (evloop_mod(l->loop, &l->src, 0) == 0)
					l->paused = true;
			}
			return;
		}
		listener_accept_one(l, fd, &sa);
	}
}

int sg_tls_listener_new(struct sg_tls_listener **out, struct evloop *loop, struct sg_tls_ctx *ctx,
			const union wg_sockaddr *addr, const struct sg_tls_callbacks *cbs,
			char *err, size_t errlen)
{
	struct sg_tls_listener *l;
	union wg_sockaddr sa;
	socklen_t salen;
	int one = 1, ret;

	*out = NULL;
	if (ctx->role != SG_TLS_SERVER) {
		errf(err, errlen, "listener needs a server TLS context");
		return SG_EINVAL;
	}
	if (addr->sa.sa_family != AF_INET && addr->sa.sa_family != AF_INET6) {
		errf(err, errlen, "listen address: unknown family");
		return SG_EINVAL;
	}
	l = calloc(1, sizeof(*l));
	if (!l)
		return SG_ENOMEM;
	l->ctx = ctx;
	l->loop = loop;
	l->cbs = *cbs;
	l->fd = l->tfd = -1;
	l->seed = sg_random_u64();
	l->log_rl.rate = 5;
	l->log_rl.burst = 20;
	uint64_t shortest = SG_MIN(ctx->handshake_ns, SG_MIN(ctx->idle_ns, ctx->keepalive_ns));
	l->tick_ns = SG_MAX(10 * NS_PER_MS, SG_MIN(shortest / 4, 1000 * NS_PER_MS));

	l->fd = socket(addr->sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0) {
		ret = -errno;
		errf(err, errlen, "socket: %s", strerror(errno));
		goto fail;
	}
	(void)setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sa = *addr;
	salen = addr->sa.sa_family == AF_INET ? sizeof(sa.in4) : sizeof(sa.in6);
	if (addr->sa.sa_family == AF_INET6) {
		/* Dual-stack, as the UDP socket: IPv4 clients arrive as ::ffff:a.b.c.d. */
		int off = 0;
		(void)setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
	}
	if (bind(l->fd, &sa.sa, salen) != 0) {
		ret = -errno;
		errf(err, errlen, "bind: %s", strerror(errno));
		goto fail;
	}
	if (listen(l->fd, SOMAXCONN) != 0) {
		ret = -errno;
		errf(err, errlen, "listen: %s", strerror(errno));
		goto fail;
	}
	salen = sizeof(sa);
	if (getsockname(l->fd, &sa.sa, &salen) != 0) {
		ret = -errno;
		errf(err, errlen, "getsockname: %s", strerror(errno));
		goto fail;
	}
	l->port = ntohs(sa.sa.sa_family == AF_INET ? sa.in4.sin_port : sa.in6.sin6_port);
	l->tfd = evloop_timer_new();
	if (l->tfd < 0) {
		ret = l->tfd;
		errf(err, errlen, "timerfd: %s", strerror(-ret));
		goto fail;
	}
	ret = evloop_timer_arm(l->tfd, evloop_now_ns() + l->tick_ns);
	if (ret == 0)
		ret = evloop_add(loop, &l->tsrc, l->tfd, EPOLLIN, listener_tick, l);
	if (ret == 0)
		ret = evloop_add(loop, &l->src, l->fd, EPOLLIN, listener_event, l);
	if (ret != 0) {
		errf(err, errlen, "event loop: %s", strerror(-ret));
		goto fail;
	}
	sg_log(SG_LOG_INFO, "tls_listening", "port=%u fips=%d client_cert=%s session_token=%s",
	       l->port, ctx->fips,
	       SSL_CTX_get_verify_mode(ctx->ssl) & SSL_VERIFY_FAIL_IF_NO_PEER_CERT ? "required"
										   : "none",
	       ctx->require_token ? "required" : "none");
	*out = l;
	return 0;
fail:
	sg_tls_listener_free(l);
	return ret;
}

uint16_t sg_tls_listener_port(const struct sg_tls_listener *l)
{
	return l->port;
}

void sg_tls_listener_stats(const struct sg_tls_listener *l, struct sg_tls_listener_stats *st)
{
	*st = l->st;
}

void sg_tls_listener_free(struct sg_tls_listener *l)
{
	if (!l)
		return;
	while (l->conns) {
		struct sg_tls_conn *c = l->conns;
		if (c->state != ST_DEAD)
			conn_teardown(c, c->reported_up);
		conn_free(c);
	}
	evloop_del(l->loop, &l->src);
	evloop_del(l->loop, &l->tsrc);
	if (l->fd >= 0)
		close(l->fd);
	if (l->tfd >= 0)
		close(l->tfd);
	free(l);
}

/* ---- client ------------------------------------------------------------------------------- */

int sg_tls_client_new(struct sg_tls_conn **out, struct evloop *loop, struct sg_tls_ctx *ctx,
		      const union wg_sockaddr *addr, const char *server_name,
		      const struct sg_tls_callbacks *cbs, char *err, size_t errlen)
{
	struct sg_tls_conn *c;
	socklen_t salen;
	int ret;

	*out = NULL;
	if (ctx->role != SG_TLS_CLIENT) {
		errf(err, errlen, "connecting needs a client TLS context");
		return SG_EINVAL;
	}
	if (addr->sa.sa_family != AF_INET && addr->sa.sa_family != AF_INET6) {
		errf(err, errlen, "peer address: unknown family");
		return SG_EINVAL;
	}
	salen = addr->sa.sa_family == AF_INET ? sizeof(addr->in4) : sizeof(addr->in6);
	c = conn_alloc(ctx, loop, cbs);
	if (!c)
		return SG_ENOMEM;
	c->peer = *addr;
	format_peer(c);
	c->deadline_ns = evloop_now_ns() + ctx->handshake_ns;
	c->state = ST_CONNECTING;

	ERR_clear_error();
	c->ssl = SSL_new(ctx->ssl);
	if (!c->ssl) {
		errf(err, errlen, "SSL_new: %s", ossl_reason());
		ret = SG_ECRYPTO;
		goto fail;
	}
	SSL_set_app_data(c->ssl, c);
	SSL_set_connect_state(c->ssl);
	const char *name = server_name ? server_name : ctx->server_name;
	if (name) {
		struct in6_addr ip;
		/* An IP literal is checked against the certificate's IP SANs and is never sent
		 * as SNI (RFC 6066 section 3); a name is both. */
		if (inet_pton(AF_INET, name, &ip) == 1 || inet_pton(AF_INET6, name, &ip) == 1) {
			if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), name) != 1) {
				errf(err, errlen, "server IP %s: %s", name, ossl_reason());
				ret = SG_EINVAL;
				goto fail;
			}
		} else if (SSL_set1_host(c->ssl, name) != 1 ||
			   SSL_set_tlsext_host_name(c->ssl, name) != 1) {
			errf(err, errlen, "server name %s: %s", name, ossl_reason());
			ret = SG_EINVAL;
			goto fail;
		}
	}
	c->fd = socket(addr->sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		ret = -errno;
		errf(err, errlen, "socket: %s", strerror(errno));
		goto fail;
	}
	set_tcp_options(c->fd);
	if (cbs->protect && !cbs->protect(cbs->user, c->fd)) {
		ret = -EPERM;
		errf(err, errlen, "the app refused to protect the socket");
		goto fail;
	}
	if (SSL_set_fd(c->ssl, c->fd) != 1) {
		errf(err, errlen, "SSL_set_fd: %s", ossl_reason());
		ret = SG_ECRYPTO;
		goto fail;
	}
	if (connect(c->fd, &addr->sa, salen) != 0 && errno != EINPROGRESS) {
		ret = -errno;
		errf(err, errlen, "connect %s: %s", c->peer_str, strerror(errno));
		goto fail;
	}
	c->tfd = evloop_timer_new();
	if (c->tfd < 0) {
		ret = c->tfd;
		errf(err, errlen, "timerfd: %s", strerror(-ret));
		goto fail;
	}
	ret = evloop_timer_arm(c->tfd, c->deadline_ns);
	if (ret == 0)
		ret = evloop_add(loop, &c->tsrc, c->tfd, EPOLLIN, client_timer, c);
	if (ret == 0)
		ret = evloop_add(loop, &c->src, c->fd, EPOLLOUT, conn_event, c);
	if (ret != 0) {
		errf(err, errlen, "event loop: %s", strerror(-ret));
		goto fail;
	}
	c->events = EPOLLOUT;
	*out = c;
	return 0;
fail:
	conn_teardown(c, false);
	free(c);
	return ret;
}
