/* Per-thread cached EVP contexts and the AEAD / digest / MAC helpers built on them.
 *
 * The AEADs run once per packet, so nothing here may allocate per call: each thread keeps one
 * context per algorithm, created on first use, and every call only re-keys it
 * (EVP_CipherInit_ex2 with a NULL cipher resets key and IV but keeps the provider context;
 * EVP_MAC_init with a key re-keys in place). The contexts are freed by a pthread key destructor
 * when the thread exits.
 */
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "common/bytes.h"
#include "crypto/crypto_int.h"

#define TAG_LEN SG_AEAD_TAG_LEN
/* The largest digest block sg__hmac_md_iov takes (SHA-512's). */
#define HMAC_MAX_BLOCK 128

/* EVP update calls take an int length; feed longer buffers in chunks of this many bytes (a
 * multiple of every block size, so streaming modes see whole blocks until the last chunk). */
#define CHUNK ((size_t)1 << 30)

/* The last X25519 private keys used by this thread, as EVP_PKEYs with their derive contexts: a
 * device's static key takes part in every handshake and in the static-static DH of every peer it
 * is given, and an ephemeral in two DHs after its key generation. */
#define X25519_CACHE 4

/* The classic session AEAD (ChaCha20-Poly1305 from ChaCha20 and Poly1305, below) runs one
 * ChaCha20 pass over [one key block || message || zeros to a whole block] in this thread's
 * scratch buffer; messages up to CHAPOLY_MAX bytes (jumbo frames) fit, longer ones take two
 * passes. */
#define CHAPOLY_BLOCK 64
#define CHAPOLY_MAX   9216

struct x25519_entry {
	uint8_t priv[SG_X25519_KEY_LEN];
	EVP_PKEY *key;	      /* its public half is a stand-in: see x25519_import */
	EVP_PKEY_CTX *derive; /* made by the first DH with this key */
	uint8_t pub[SG_X25519_KEY_LEN];
	bool has_pub; /* pub computed (sg__x25519_public) */
	uint64_t used;
};

/* Random bytes drawn ahead from OpenSSL's DRBG for sg__random_pool, in a page of its own that
 * the kernel zeroes in a forked child (MADV_WIPEONFORK), so a child never repeats its parent's
 * bytes: avail reads 0 there and the child refills from OpenSSL, which reseeds after a fork.
 * A second guard where the kernel's is missing (qemu-user accepts the advice and ignores it:
 * `make check-arm` showed a child repeating its parent's bytes): a fork generation counted by
 * a pthread_atfork child handler; a pool filled in another generation is wiped and refilled. */
#define RAND_POOL_LEN 512
struct rand_pool {
	size_t avail; /* the bytes not yet handed out are buf[0..avail) */
	unsigned long gen; /* fork_gen when buf was filled */
	uint8_t buf[RAND_POOL_LEN];
};

static volatile unsigned long fork_gen;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static bool atfork_ok;

static void on_fork_child(void)
{
	fork_gen++;
}

static void atfork_init(void)
{
	atfork_ok = pthread_atfork(NULL, NULL, on_fork_child) == 0;
}

struct tls_ctx {
	_Alignas(CHAPOLY_BLOCK) uint8_t chapoly[CHAPOLY_BLOCK + CHAPOLY_MAX + CHAPOLY_BLOCK];
	EVP_CIPHER_CTX *cipher[SG__CIPHER_COUNT];
	EVP_MD_CTX *md[SG__MD_COUNT];
	EVP_MAC_CTX *mac[SG__MAC_COUNT];
	struct x25519_entry x25519[X25519_CACHE];
	uint64_t x25519_tick;
	/* OpenSSL 3.0 looks the key type up by name (under locks, through every name of every
	 * key manager) for each EVP_PKEY_new_raw_*_key_ex and each EVP_PKEY_CTX it makes: about
	 * 30,000 instructions a key (callgrind), and a handshake makes eight. So each thread keeps
	 * one import context for private keys, and one peer public key whose 32 bytes are replaced
	 * before each DH (X25519's set_params takes an encoded public key). */
	EVP_PKEY_CTX *x25519_import;
	EVP_PKEY *x25519_peer;
	struct rand_pool *pool; /* mmap'd; NULL until first use or when pool_off */
	bool pool_off;		/* the page could not be made wipe-on-fork: no pool */
};

static _Thread_local struct tls_ctx *tls;
static pthread_key_t tls_key;
static pthread_once_t tls_key_once = PTHREAD_ONCE_INIT;
static bool tls_key_ok;

/* Empties a cache entry (EVP_PKEY_free cleanses the private key). */
static void x25519_drop(struct x25519_entry *e)
{
	EVP_PKEY_CTX_free(e->derive);
	EVP_PKEY_free(e->key);
	sg_memzero(e, sizeof(*e));
}

static void tls_free(void *p)
{
	struct tls_ctx *t = p;

	if (t == NULL)
		return;
	for (size_t i = 0; i < SG__CIPHER_COUNT; i++)
		EVP_CIPHER_CTX_free(t->cipher[i]); /* cleanses key schedules */
	for (size_t i = 0; i < SG__MD_COUNT; i++)
		EVP_MD_CTX_free(t->md[i]);
	for (size_t i = 0; i < SG__MAC_COUNT; i++)
		EVP_MAC_CTX_free(t->mac[i]);
	for (size_t i = 0; i < X25519_CACHE; i++)
		x25519_drop(&t->x25519[i]);
	EVP_PKEY_CTX_free(t->x25519_import);
	EVP_PKEY_free(t->x25519_peer);
	if (t->pool != NULL) {
		sg_memzero(t->pool, sizeof(*t->pool));
		munmap(t->pool, sizeof(*t->pool));
	}
	sg_memzero(t, sizeof(*t));
	free(t);
	/* Runs in the exiting thread: a later crypto call from another destructor starts afresh. */
	if (tls == t)
		tls = NULL;
}

static void tls_key_create(void)
{
	tls_key_ok = pthread_key_create(&tls_key, tls_free) == 0;
}

static struct tls_ctx *tls_get(void)
{
	struct tls_ctx *t;

	if (likely(tls != NULL))
		return tls;
	if (pthread_once(&tls_key_once, tls_key_create) != 0 || !tls_key_ok)
		return NULL;
	/* Aligned for the scratch buffer; sizeof is a multiple of the alignment (C11 7.22.3.1). */
	t = aligned_alloc(_Alignof(struct tls_ctx), sizeof(*t));
	if (t == NULL)
		return NULL;
	memset(t, 0, sizeof(*t));
	if (pthread_setspecific(tls_key, t) != 0) {
		free(t);
		return NULL;
	}
	tls = t;
	return t;
}

/* The u-coordinate of the X25519 base point (RFC 7748 section 4.1). */
static const uint8_t x25519_base[SG_X25519_KEY_LEN] = {9};

/* An X25519 key from its private bytes through this thread's import context; NULL on failure.
 *
 * The key is imported with the base point as a stand-in public key, because OpenSSL computes
 * the public key of a private key imported alone, with its fixed-base code: 567,000
 * instructions against 504,000 for a DH (callgrind; 47 us against 40 us here), and a
 * handshake generates two keys. The public key is computed only when asked for
 * (sg__x25519_public), as X25519(priv, 9), which is its definition (RFC 7748 section 6.1).
 * Nothing reads the stand-in: OpenSSL's X25519 derive uses the private half of its own key
 * and the public half of the peer's, and the key never leaves this file. Should an OpenSSL
 * refuse the pair, the key is imported alone. */
static EVP_PKEY *x25519_import(struct tls_ctx *t, const struct sg__algs *a,
			       const uint8_t priv[SG_X25519_KEY_LEN])
{
	OSSL_PARAM params[3];
	EVP_PKEY *key = NULL;

	if (t->x25519_import == NULL) {
		t->x25519_import = EVP_PKEY_CTX_new_from_name(NULL, "X25519", a->classic_propq);
		if (t->x25519_import == NULL || EVP_PKEY_fromdata_init(t->x25519_import) != 1) {
			EVP_PKEY_CTX_free(t->x25519_import);
			t->x25519_import = NULL;
			return NULL;
		}
	}
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PRIV_KEY, (void *)priv,
						      SG_X25519_KEY_LEN);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)x25519_base,
						      SG_X25519_KEY_LEN);
	params[2] = OSSL_PARAM_construct_end();
	if (EVP_PKEY_fromdata(t->x25519_import, &key, EVP_PKEY_KEYPAIR, params) == 1)
		return key;
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_PKEY_fromdata(t->x25519_import, &key, EVP_PKEY_KEYPAIR, params) != 1)
		return NULL;
	return key;
}

/* The cache entry of priv, made if it is not there (evicting the least recently used), or NULL
 * (no thread state or out of memory). */
static struct x25519_entry *x25519_entry(struct tls_ctx *t, const struct sg__algs *a,
					 const uint8_t priv[SG_X25519_KEY_LEN])
{
	struct x25519_entry *e;
	EVP_PKEY *key;
	size_t lru = 0;

	t->x25519_tick++;
	for (size_t i = 0; i < X25519_CACHE; i++) {
		if (t->x25519[i].key && sg_memeq(t->x25519[i].priv, priv, SG_X25519_KEY_LEN)) {
			t->x25519[i].used = t->x25519_tick;
			return &t->x25519[i];
		}
		if (t->x25519[i].used < t->x25519[lru].used)
			lru = i;
	}
	key = x25519_import(t, a, priv);
	if (key == NULL)
		return NULL;
	e = &t->x25519[lru];
	x25519_drop(e);
	memcpy(e->priv, priv, SG_X25519_KEY_LEN);
	e->key = key;
	e->used = t->x25519_tick;
	return e;
}

/* This thread's peer key holding pub, or NULL. */
static EVP_PKEY *x25519_peer(struct tls_ctx *t, const struct sg__algs *a,
			     const uint8_t pub[SG_X25519_KEY_LEN])
{
	if (t->x25519_peer == NULL) {
		t->x25519_peer = EVP_PKEY_new_raw_public_key_ex(NULL, "X25519", a->classic_propq,
								pub, SG_X25519_KEY_LEN);
		return t->x25519_peer;
	}
	if (EVP_PKEY_set1_encoded_public_key(t->x25519_peer, pub, SG_X25519_KEY_LEN) != 1) {
		/* Not expected; a fresh object next time. */
		EVP_PKEY_free(t->x25519_peer);
		t->x25519_peer = NULL;
	}
	return t->x25519_peer;
}

/* X25519(e's key, pub) into out. */
static bool x25519_entry_derive(struct tls_ctx *t, const struct sg__algs *a,
				struct x25519_entry *e, const uint8_t pub[SG_X25519_KEY_LEN],
				uint8_t out[SG_X25519_KEY_LEN])
{
	EVP_PKEY *peer;
	size_t n = SG_X25519_KEY_LEN;
	bool ok;

	if (e->derive == NULL) {
		e->derive = EVP_PKEY_CTX_new_from_pkey(NULL, e->key, a->classic_propq);
		if (e->derive == NULL || EVP_PKEY_derive_init(e->derive) != 1) {
			EVP_PKEY_CTX_free(e->derive);
			e->derive = NULL;
			return false;
		}
	}
	if ((peer = x25519_peer(t, a, pub)) == NULL)
		return false;
	/* No peer validation (validate_peer 0): OpenSSL's X25519 public check only asks whether
	 * the key has public bytes, and would build a key context for it (13,000 instructions).
	 * Every 32-byte string is a valid X25519 input (RFC 7748 section 5); the low-order points
	 * give an all-zero result, which both OpenSSL's derive and sg_x25519 refuse. The peer is
	 * set again before every derive because its bytes change in place. */
	ok = EVP_PKEY_derive_set_peer_ex(e->derive, peer, 0) == 1 &&
	     EVP_PKEY_derive(e->derive, out, &n) == 1 && n == SG_X25519_KEY_LEN;
	if (!ok) {
		/* A context that failed half-way is not reused. */
		EVP_PKEY_CTX_free(e->derive);
		e->derive = NULL;
	}
	return ok;
}

bool sg__x25519_derive(const struct sg__algs *a, const uint8_t priv[SG_X25519_KEY_LEN],
		       const uint8_t pub[SG_X25519_KEY_LEN], uint8_t out[SG_X25519_KEY_LEN])
{
	struct tls_ctx *t = tls_get();
	struct x25519_entry *e = t ? x25519_entry(t, a, priv) : NULL;

	return e != NULL && x25519_entry_derive(t, a, e, pub, out);
}

bool sg__x25519_public(const struct sg__algs *a, const uint8_t priv[SG_X25519_KEY_LEN],
		       uint8_t pub[SG_X25519_KEY_LEN])
{
	struct tls_ctx *t = tls_get();
	struct x25519_entry *e = t ? x25519_entry(t, a, priv) : NULL;

	if (e == NULL)
		return false;
	if (!e->has_pub) {
		if (!x25519_entry_derive(t, a, e, x25519_base, e->pub))
			return false;
		e->has_pub = true;
	}
	memcpy(pub, e->pub, SG_X25519_KEY_LEN);
	return true;
}

void sg_x25519_forget(const uint8_t priv[SG_X25519_KEY_LEN])
{
	struct tls_ctx *t = tls;

	if (t == NULL || priv == NULL)
		return;
	for (size_t i = 0; i < X25519_CACHE; i++) {
		if (t->x25519[i].key && sg_memeq(t->x25519[i].priv, priv, SG_X25519_KEY_LEN))
			x25519_drop(&t->x25519[i]);
	}
}

/* ---- random pool ---------------------------------------------------------------------------- */

static struct rand_pool *rand_pool(struct tls_ctx *t)
{
	if (t->pool != NULL || t->pool_off)
		return t->pool;
	t->pool_off = true; /* until the page below is ready */
#ifdef MADV_WIPEONFORK /* Linux 4.14 */
	if (pthread_once(&atfork_once, atfork_init) != 0 || !atfork_ok)
		return NULL;
	void *p = mmap(NULL, sizeof(*t->pool), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	/* Without the wipe on fork a child could hand out its parent's bytes again: no pool. */
	if (madvise(p, sizeof(*t->pool), MADV_WIPEONFORK) != 0) {
		munmap(p, sizeof(*t->pool));
		return NULL;
	}
	(void)madvise(p, sizeof(*t->pool), MADV_DONTDUMP); /* best effort: not in core dumps */
	t->pool_off = false;
	t->pool = p;
#endif
	return t->pool;
}

bool sg__random_pool(void *buf, size_t n)
{
	struct tls_ctx *t = tls_get();
	struct rand_pool *p = t != NULL && n <= SG__RANDOM_POOL_MAX ? rand_pool(t) : NULL;

	if (p == NULL)
		return n <= INT_MAX && RAND_bytes(buf, (int)n) == 1;
	if (p->gen != fork_gen) { /* filled before a fork: the parent may hand these out too */
		sg_memzero(p->buf, sizeof(p->buf));
		p->avail = 0;
		p->gen = fork_gen;
	}
	if (p->avail < n) {
		if (RAND_bytes(p->buf, RAND_POOL_LEN) != 1) {
			p->avail = 0;
			return false;
		}
		p->avail = RAND_POOL_LEN;
	}
	/* Taken from the end and wiped at once, so no byte is handed out twice or kept. */
	p->avail -= n;
	memcpy(buf, p->buf + p->avail, n);
	sg_memzero(p->buf + p->avail, n);
	return true;
}

EVP_CIPHER_CTX *sg__cipher_ctx(enum sg__cipher_id id)
{
	struct tls_ctx *t = tls_get();

	if (t == NULL)
		return NULL;
	if (unlikely(t->cipher[id] == NULL))
		t->cipher[id] = EVP_CIPHER_CTX_new();
	return t->cipher[id];
}

EVP_MD_CTX *sg__md_ctx(enum sg__md_id id)
{
	struct tls_ctx *t = tls_get();

	if (t == NULL)
		return NULL;
	if (unlikely(t->md[id] == NULL))
		t->md[id] = EVP_MD_CTX_new();
	return t->md[id];
}

/* A MAC context with its fixed parameters set: the BLAKE2s MAC's 16-byte output size, the HMAC
 * digests (fetched with the same property query as the suite). */
static EVP_MAC_CTX *mac_ctx_new(const struct sg__algs *a, enum sg__mac_id id)
{
	OSSL_PARAM params[3], *p = params;
	size_t size = SG_BLAKE2S_MAC_LEN;
	const char *propq = NULL;
	EVP_MAC_CTX *ctx = a->mac[id] ? EVP_MAC_CTX_new(a->mac[id]) : NULL;

	if (ctx == NULL)
		return NULL;
	switch (id) {
	case SG__MAC_BLAKE2S128:
		*p++ = OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size);
		break;
	case SG__MAC_HMAC_BLAKE2S:
		*p++ = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "BLAKE2S-256", 0);
		propq = a->classic_propq;
		break;
	case SG__MAC_HMAC_SHA384:
		*p++ = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA384", 0);
		propq = a->fips_propq;
		break;
	case SG__MAC_HMAC_SHA256:
		*p++ = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
		propq = a->fips_propq;
		break;
	case SG__MAC_HMAC_SHA512:
		*p++ = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA512", 0);
		propq = a->fips_propq;
		break;
	case SG__MAC_HMAC_SHA1:
		*p++ = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA1", 0);
		propq = a->fips_propq;
		break;
	case SG__MAC_POLY1305: /* no parameters: the one-time key comes with EVP_MAC_init */
	case SG__MAC_COUNT:
		break;
	}
	if (propq != NULL)
		*p++ =
		    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_PROPERTIES, (char *)propq, 0);
	*p = OSSL_PARAM_construct_end();
	if (EVP_MAC_CTX_set_params(ctx, params) != 1) {
		EVP_MAC_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

EVP_MAC_CTX *sg__mac_ctx(enum sg__mac_id id)
{
	const struct sg__algs *a = sg__algs();
	struct tls_ctx *t;

	if (a == NULL || (t = tls_get()) == NULL)
		return NULL;
	if (unlikely(t->mac[id] == NULL))
		t->mac[id] = mac_ctx_new(a, id);
	return t->mac[id];
}

/* ---- AEAD ---------------------------------------------------------------------------------- */

/* Keys the cached context for one message. The first call binds the cipher; later calls pass a
 * NULL cipher so OpenSSL keeps its provider context and only resets key, IV and state. */
static EVP_CIPHER_CTX *aead_begin(enum sg__cipher_id id, const uint8_t *key, const uint8_t *nonce,
				  int enc)
{
	const struct sg__algs *a = sg__algs();
	EVP_CIPHER_CTX *ctx;
	const EVP_CIPHER *cipher = NULL;

	/* A NULL key or IV would make EVP_CipherInit_ex2 keep the previous caller's. A NULL
	 * cipher: its suite is not available (crypto_int.h). */
	if (key == NULL || nonce == NULL || a == NULL || a->cipher[id] == NULL ||
	    (ctx = sg__cipher_ctx(id)) == NULL)
		return NULL;
	if (unlikely(EVP_CIPHER_CTX_get0_cipher(ctx) == NULL))
		cipher = a->cipher[id];
	if (EVP_CipherInit_ex2(ctx, cipher, key, nonce, enc, NULL) != 1)
		return NULL;
	return ctx;
}

/* Feeds n bytes (out == NULL: additional data) in int-sized chunks. */
static bool aead_update(EVP_CIPHER_CTX *ctx, uint8_t *out, const uint8_t *in, size_t n)
{
	while (n > 0) {
		size_t chunk = SG_MIN(n, CHUNK);
		int outl = 0;

		if (EVP_CipherUpdate(ctx, out, &outl, in, (int)chunk) != 1)
			return false;
		if (out != NULL) {
			if ((size_t)outl != chunk)
				return false;
			out += chunk;
		}
		in += chunk;
		n -= chunk;
	}
	return true;
}

/* Seal and open on a context keyed and given its nonce: the bodies shared by the one-shot
 * functions (per-thread context, re-keyed per call) and sg_aead (keyed once per session). */
static bool seal_ctx(EVP_CIPHER_CTX *ctx, uint8_t *dst, const uint8_t *src, size_t len,
		     const uint8_t *ad, size_t adlen)
{
	int outl = 0;

	if (!aead_update(ctx, NULL, ad, adlen) || !aead_update(ctx, dst, src, len))
		return false;
	if (EVP_CipherFinal_ex(ctx, dst + len, &outl) != 1 || outl != 0)
		return false;
	return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, dst + len) == 1;
}

static bool open_ctx(EVP_CIPHER_CTX *ctx, uint8_t *dst, const uint8_t *src, size_t ctlen,
		     const uint8_t *ad, size_t adlen, uint8_t tag[TAG_LEN])
{
	int outl = 0;

	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, tag) != 1)
		return false;
	if (!aead_update(ctx, NULL, ad, adlen) || !aead_update(ctx, dst, src, ctlen))
		return false;
	/* The tag comparison (constant time inside OpenSSL) happens here. */
	return EVP_CipherFinal_ex(ctx, dst + ctlen, &outl) == 1 && outl == 0;
}

bool sg__aead_seal(enum sg__cipher_id id, uint8_t *dst, const uint8_t *src, size_t len,
		   const uint8_t *ad, size_t adlen, const uint8_t nonce[12], const uint8_t *key)
{
	EVP_CIPHER_CTX *ctx;

	if (dst == NULL || (src == NULL && len > 0) || (ad == NULL && adlen > 0) ||
	    len > SIZE_MAX - TAG_LEN)
		return false;
	ctx = aead_begin(id, key, nonce, 1);
	if (ctx != NULL && seal_ctx(ctx, dst, src, len, ad, adlen))
		return true;
	sg_memzero(dst, len + TAG_LEN);
	return false;
}

bool sg__aead_open(enum sg__cipher_id id, uint8_t *dst, const uint8_t *src, size_t len,
		   const uint8_t *ad, size_t adlen, const uint8_t nonce[12], const uint8_t *key)
{
	EVP_CIPHER_CTX *ctx;
	uint8_t tag[TAG_LEN];
	size_t ctlen;

	if (dst == NULL || src == NULL || len < TAG_LEN || (ad == NULL && adlen > 0))
		return false;
	ctlen = len - TAG_LEN;
	/* Copy the tag first: with dst == src the plaintext never reaches it, but the copy keeps
	 * that reasoning out of the correctness argument. */
	memcpy(tag, src + ctlen, TAG_LEN);
	ctx = aead_begin(id, key, nonce, 0);
	if (ctx != NULL && open_ctx(ctx, dst, src, ctlen, ad, adlen, tag))
		return true;
	sg_memzero(dst, ctlen);
	return false;
}

/* ---- AEAD keyed once per session ----------------------------------------------------------- */

struct sg_aead {
	const EVP_CIPHER *cipher;
	int enc;
	/* ChaCha20-Poly1305 built here from ChaCha20 and Poly1305 (below): the lanes are raw
	 * ChaCha20 contexts. */
	bool chapoly;
	/* Lane 0 is keyed by sg_aead_new; lane i > 0 by its own thread on first use, from the
	 * key kept here (wiped by sg_aead_free). */
	uint8_t key[32];
	uint8_t salt[4]; /* IPsec: the nonce's fixed prefix (RFC 4106 4, RFC 7634 2) */
	size_t saltlen;
	EVP_CIPHER_CTX *ctx[SG_AEAD_LANES];
};

static EVP_CIPHER_CTX *aead_lane(struct sg_aead *k, unsigned lane)
{
	EVP_CIPHER_CTX *ctx;

	if (lane >= SG_AEAD_LANES)
		return NULL;
	if ((ctx = k->ctx[lane]) != NULL)
		return ctx;
	/* The key schedule (and GCM's hash key) is computed here, once per lane; each message
	 * then only sets its nonce, which is what makes a session key cheaper than the one-shot
	 * calls. */
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL ||
	    EVP_CipherInit_ex2(ctx, k->cipher, k->key, NULL, k->chapoly ? 1 : k->enc, NULL) != 1) {
		EVP_CIPHER_CTX_free(ctx);
		return NULL;
	}
	return k->ctx[lane] = ctx;
}

/* ChaCha20-Poly1305 (RFC 8439 section 2.8) from OpenSSL's raw ChaCha20 cipher and Poly1305 MAC,
 * for the classic session keys. OpenSSL 3.0's own ChaCha20-Poly1305 cipher spends a third of
 * its time per 1420-byte message outside the bulk code: it runs the one-block ChaCha20 twice
 * (block 0 for the Poly1305 key, and a whole block for the message's last bytes). Here one
 * ChaCha20 call from block counter 0 covers [64 zero bytes || message || zeros up to a whole
 * block] in the thread's scratch buffer, all of it in the bulk code: block 0 becomes the
 * Poly1305 key (section 2.6), blocks 1.. encrypt the message (section 2.4). The copy in and out
 * costs far less than the block calls it saves (docs/DATAPATH.md). The one-shot calls keep
 * OpenSSL's ChaCha20-Poly1305, which the unit and fuzz tests compare this with. */

/* Poly1305 under otk over AD || pad16 || ciphertext || pad16 || le64(adlen) || le64(ctlen). */
static bool chapoly_tag(uint8_t tag[TAG_LEN], const uint8_t otk[32], const uint8_t *ad,
			size_t adlen, const uint8_t *ct, size_t ctlen)
{
	static const uint8_t zeros[16];
	EVP_MAC_CTX *mac = sg__mac_ctx(SG__MAC_POLY1305);
	uint8_t lens[16];
	size_t n = 0;

	sg_put_le64(lens, adlen);
	sg_put_le64(lens + 8, ctlen);
	if (mac == NULL || EVP_MAC_init(mac, otk, 32, NULL) != 1)
		return false;
	if (adlen > 0 && (EVP_MAC_update(mac, ad, adlen) != 1 ||
			  ((adlen & 15) && EVP_MAC_update(mac, zeros, 16 - (adlen & 15)) != 1)))
		return false;
	if (ctlen > 0 && (EVP_MAC_update(mac, ct, ctlen) != 1 ||
			  ((ctlen & 15) && EVP_MAC_update(mac, zeros, 16 - (ctlen & 15)) != 1)))
		return false;
	return EVP_MAC_update(mac, lens, sizeof(lens)) == 1 &&
	       EVP_MAC_final(mac, tag, &n, TAG_LEN) == 1 && n == TAG_LEN;
}

/* Sets the lane's ChaCha20 state to block counter 0 and the nonce: OpenSSL's 16-byte IV is the
 * 32-bit little-endian counter then the 96-bit nonce (RFC 8439 section 2.3). */
static bool chapoly_start(EVP_CIPHER_CTX *ctx, const uint8_t nonce[12])
{
	uint8_t iv[16] = {0};

	memcpy(iv + 4, nonce, 12);
	return EVP_CipherInit_ex2(ctx, NULL, NULL, iv, 1, NULL) == 1;
}

/* The one pass: s = [zeros || in || zeros], ChaCha20 in place. Afterwards s[0..32) is the
 * Poly1305 key and s + CHAPOLY_BLOCK holds in XOR keystream. Returns the bytes of s used (all
 * of them are wiped by the caller), or 0 on failure, after wiping them here: the caller then
 * wipes nothing, and the message copied in (the plaintext, when sealing) or whatever the
 * failed call left must not stay in the thread's buffer. len <= CHAPOLY_MAX. */
static size_t chapoly_pass(EVP_CIPHER_CTX *ctx, uint8_t *s, const uint8_t *in, size_t len)
{
	size_t total = (CHAPOLY_BLOCK + len + CHAPOLY_BLOCK - 1) & ~(size_t)(CHAPOLY_BLOCK - 1);
	int outl = 0;

	memset(s, 0, CHAPOLY_BLOCK);
	if (len > 0)
		memcpy(s + CHAPOLY_BLOCK, in, len);
	memset(s + CHAPOLY_BLOCK + len, 0, total - CHAPOLY_BLOCK - len);
	if (EVP_CipherUpdate(ctx, s, &outl, s, (int)total) != 1 || (size_t)outl != total) {
		sg_memzero(s, total);
		return 0;
	}
	return total;
}

/* Longer messages: block 0 alone into s (the context then stands at block 1). */
static bool chapoly_key_block(EVP_CIPHER_CTX *ctx, uint8_t *s)
{
	int outl = 0;

	memset(s, 0, CHAPOLY_BLOCK);
	return EVP_CipherUpdate(ctx, s, &outl, s, CHAPOLY_BLOCK) == 1 && outl == CHAPOLY_BLOCK;
}

static bool chapoly_seal(EVP_CIPHER_CTX *ctx, uint8_t *dst, const uint8_t *src, size_t len,
			 const uint8_t *ad, size_t adlen, const uint8_t nonce[12])
{
	struct tls_ctx *t = tls_get();
	size_t used = CHAPOLY_BLOCK;
	bool ok = false;

	if (t == NULL || !chapoly_start(ctx, nonce))
		return false;
	if (len <= CHAPOLY_MAX) {
		if ((used = chapoly_pass(ctx, t->chapoly, src, len)) == 0)
			goto out;
		memcpy(dst, t->chapoly + CHAPOLY_BLOCK, len);
	} else if (!chapoly_key_block(ctx, t->chapoly) || !aead_update(ctx, dst, src, len)) {
		goto out;
	}
	ok = chapoly_tag(dst + len, t->chapoly, ad, adlen, dst, len);
out:
	/* The key block, the message and the keystream past it: nothing outlives the call. */
	sg_memzero(t->chapoly, used);
	return ok;
}

/* Authenticates before any plaintext reaches dst: the tag is computed over src, and only a
 * message whose tag matches is copied out (or, when longer, decrypted). dst may equal src. */
static bool chapoly_open(EVP_CIPHER_CTX *ctx, uint8_t *dst, const uint8_t *src, size_t ctlen,
			 const uint8_t *ad, size_t adlen, const uint8_t nonce[12],
			 const uint8_t tag[TAG_LEN])
{
	struct tls_ctx *t = tls_get();
	uint8_t calc[TAG_LEN];
	size_t used = CHAPOLY_BLOCK;
	bool ok = false;

	if (t == NULL || !chapoly_start(ctx, nonce))
		return false;
	if (ctlen <= CHAPOLY_MAX) {
		if ((used = chapoly_pass(ctx, t->chapoly, src, ctlen)) == 0)
			goto out;
	} else if (!chapoly_key_block(ctx, t->chapoly)) {
		goto out;
	}
	if (!chapoly_tag(calc, t->chapoly, ad, adlen, src, ctlen) || !sg_memeq(calc, tag, TAG_LEN))
		goto out;
	if (ctlen <= CHAPOLY_MAX)
		memcpy(dst, t->chapoly + CHAPOLY_BLOCK, ctlen);
	else if (!aead_update(ctx, dst, src, ctlen))
		goto out;
	ok = true;
out:
	sg_memzero(t->chapoly, used);
	sg_memzero(calc, sizeof(calc));
	return ok;
}

static struct sg_aead *aead_new(enum sg__cipher_id id, const uint8_t *key, size_t keylen,
				const uint8_t *salt, size_t saltlen, bool encrypt)
{
	const struct sg__algs *a = sg__algs();
	struct sg_aead *k;

	if (a == NULL || key == NULL || a->cipher[id] == NULL || keylen > sizeof(k->key) ||
	    (size_t)EVP_CIPHER_get_key_length(a->cipher[id]) != keylen ||
	    saltlen > sizeof(k->salt) || (salt == NULL && saltlen > 0) ||
	    (k = calloc(1, sizeof(*k))) == NULL)
		return NULL;
	k->chapoly = id == SG__CIPHER_CHACHA20_POLY1305;
	/* classic_ok (util.c) guarantees ChaCha20 and Poly1305 alongside ChaCha20-Poly1305. */
	k->cipher = k->chapoly ? a->cipher[SG__CIPHER_CHACHA20] : a->cipher[id];
	k->enc = encrypt ? 1 : 0;
	memcpy(k->key, key, keylen);
	if (saltlen)
		memcpy(k->salt, salt, saltlen);
	k->saltlen = saltlen;
	if (k->cipher == NULL || aead_lane(k, 0) == NULL) {
		sg_aead_free(k);
		return NULL;
	}
	return k;
}

struct sg_aead *sg_aead_new(enum sg_suite_id suite, const uint8_t key[32], bool encrypt)
{
	return aead_new(suite == SG_SUITE_FIPS ? SG__CIPHER_AES256_GCM
					       : SG__CIPHER_CHACHA20_POLY1305,
			key, 32, NULL, 0, encrypt);
}

struct sg_aead *sg__aead_new_cipher(enum sg__cipher_id id, const uint8_t *key, size_t keylen,
				    const uint8_t *salt, size_t saltlen, bool encrypt)
{
	return aead_new(id, key, keylen, salt, saltlen, encrypt);
}

const uint8_t *sg__aead_salt(const struct sg_aead *k, size_t *len)
{
	*len = k->saltlen;
	return k->salt;
}

bool sg__aead_seal_ad(struct sg_aead *k, unsigned lane, uint8_t *dst, const uint8_t *src,
		      size_t len, const uint8_t *ad, size_t adlen, const uint8_t nonce[12])
{
	EVP_CIPHER_CTX *ctx;
	bool ok;

	if (k == NULL || !k->enc || dst == NULL || (src == NULL && len > 0) || nonce == NULL ||
	    (ad == NULL && adlen > 0) || len > SIZE_MAX - TAG_LEN)
		return false;
	ctx = aead_lane(k, lane);
	if (ctx == NULL)
		ok = false;
	else if (k->chapoly)
		ok = chapoly_seal(ctx, dst, src, len, ad, adlen, nonce);
	else
		ok = EVP_CipherInit_ex2(ctx, NULL, NULL, nonce, 1, NULL) == 1 &&
		     seal_ctx(ctx, dst, src, len, ad, adlen);
	if (!ok)
		sg_memzero(dst, len + TAG_LEN);
	return ok;
}

bool sg__aead_open_ad(struct sg_aead *k, unsigned lane, uint8_t *dst, const uint8_t *src,
		      size_t len, const uint8_t *ad, size_t adlen, const uint8_t nonce[12])
{
	EVP_CIPHER_CTX *ctx;
	uint8_t tag[TAG_LEN];
	size_t ctlen;
	bool ok;

	if (k == NULL || k->enc || dst == NULL || src == NULL || len < TAG_LEN || nonce == NULL ||
	    (ad == NULL && adlen > 0))
		return false;
	ctlen = len - TAG_LEN;
	memcpy(tag, src + ctlen, TAG_LEN);
	ctx = aead_lane(k, lane);
	if (ctx == NULL)
		ok = false;
	else if (k->chapoly)
		ok = chapoly_open(ctx, dst, src, ctlen, ad, adlen, nonce, tag);
	else
		ok = EVP_CipherInit_ex2(ctx, NULL, NULL, nonce, 0, NULL) == 1 &&
		     open_ctx(ctx, dst, src, ctlen, ad, adlen, tag);
	if (!ok)
		sg_memzero(dst, ctlen);
	return ok;
}

void sg_aead_free(struct sg_aead *k)
{
	if (k == NULL)
		return;
	for (size_t i = 0; i < SG_AEAD_LANES; i++)
		EVP_CIPHER_CTX_free(k->ctx[i]); /* cleanses the key schedule */
	sg_memzero(k->key, sizeof(k->key));
	sg_memzero(k->salt, sizeof(k->salt));
	free(k);
}

bool sg_aead_seal_lane(struct sg_aead *k, unsigned lane, uint8_t *dst, const uint8_t *src,
		       size_t len, const uint8_t nonce[12])
{
	return sg__aead_seal_ad(k, lane, dst, src, len, NULL, 0, nonce);
}

bool sg_aead_open_lane(struct sg_aead *k, unsigned lane, uint8_t *dst, const uint8_t *src,
		       size_t len, const uint8_t nonce[12])
{
	return sg__aead_open_ad(k, lane, dst, src, len, NULL, 0, nonce);
}

bool sg_aead_seal(struct sg_aead *k, uint8_t *dst, const uint8_t *src, size_t len,
		  const uint8_t nonce[12])
{
	return sg_aead_seal_lane(k, 0, dst, src, len, nonce);
}

bool sg_aead_open(struct sg_aead *k, uint8_t *dst, const uint8_t *src, size_t len,
		  const uint8_t nonce[12])
{
	return sg_aead_open_lane(k, 0, dst, src, len, nonce);
}

/* ---- digests and MACs ---------------------------------------------------------------------- */

/* Feeds the iovs to a digest context. */
static bool digest_update_iov(EVP_MD_CTX *ctx, const struct sg_iov *iov, size_t niov)
{
	for (size_t i = 0; i < niov; i++) {
		if (iov[i].len == 0)
			continue;
		if (iov[i].base == NULL || EVP_DigestUpdate(ctx, iov[i].base, iov[i].len) != 1)
			return false;
	}
	return true;
}

bool sg__digest_iov(enum sg__md_id id, uint8_t *out, size_t outlen, const struct sg_iov *iov,
		    size_t niov)
{
	const struct sg__algs *a = sg__algs();
	EVP_MD_CTX *ctx;
	unsigned int n = 0;

	if (a == NULL || out == NULL || (iov == NULL && niov > 0) ||
	    outlen != (size_t)EVP_MD_get_size(a->md[id]))
		return false;
	ctx = a->md[id] ? sg__md_ctx(id) : NULL;
	if (ctx == NULL || EVP_DigestInit_ex2(ctx, a->md[id], NULL) != 1 ||
	    !digest_update_iov(ctx, iov, niov))
		return false;
	return EVP_DigestFinal_ex(ctx, out, &n) == 1 && n == outlen;
}

bool sg__hmac_md_iov(enum sg__md_id id, uint8_t *out, size_t outlen, const uint8_t *key,
		     size_t keylen, const struct sg_iov *iov, size_t niov)
{
	const struct sg__algs *a = sg__algs();
	const EVP_MD *md = a != NULL ? a->md[id] : NULL;
	uint8_t pad[HMAC_MAX_BLOCK], inner[EVP_MAX_MD_SIZE];
	EVP_MD_CTX *ctx;
	unsigned int n = 0;
	size_t block;
	bool ok = false;

	if (out == NULL)
		return false;
	if (md == NULL || (key == NULL && keylen > 0) || (iov == NULL && niov > 0) ||
	    outlen != (size_t)EVP_MD_get_size(md) || (ctx = sg__md_ctx(id)) == NULL)
		goto out;
	block = (size_t)EVP_MD_get_block_size(md);
	if (block > sizeof(pad) || block < outlen)
		goto out;
	/* RFC 2104 section 2: a key longer than the block is hashed first; K is zero-padded to
	 * the block and XORed with ipad (0x36) for the inner hash, opad (0x5c) for the outer. */
	memset(pad, 0, sizeof(pad));
	if (keylen > block) {
		if (EVP_DigestInit_ex2(ctx, md, NULL) != 1 || EVP_DigestUpdate(ctx, key, keylen) != 1 ||
		    EVP_DigestFinal_ex(ctx, pad, &n) != 1)
			goto out;
	} else if (keylen > 0) {
		memcpy(pad, key, keylen);
	}
	for (size_t i = 0; i < block; i++)
		pad[i] ^= 0x36;
	if (EVP_DigestInit_ex2(ctx, md, NULL) != 1 || EVP_DigestUpdate(ctx, pad, block) != 1 ||
	    !digest_update_iov(ctx, iov, niov) || EVP_DigestFinal_ex(ctx, inner, &n) != 1 ||
	    n != outlen)
		goto out;
	for (size_t i = 0; i < block; i++)
		pad[i] ^= 0x36 ^ 0x5c;
	ok = EVP_DigestInit_ex2(ctx, md, NULL) == 1 && EVP_DigestUpdate(ctx, pad, block) == 1 &&
	     EVP_DigestUpdate(ctx, inner, outlen) == 1 && EVP_DigestFinal_ex(ctx, out, &n) == 1 &&
	     n == outlen;
out:
	if (!ok)
		sg_memzero(out, outlen);
	sg_memzero(pad, sizeof(pad));
	sg_memzero(inner, sizeof(inner));
	return ok;
}

bool sg__mac_iov(enum sg__mac_id id, uint8_t *out, size_t outlen, const uint8_t *key, size_t keylen,
		 const struct sg_iov *iov, size_t niov)
{
	/* EVP_MAC_init treats a NULL key as "keep the previous key", so an empty key must still be
	 * a real pointer or a zero-length HMAC key would silently reuse the last caller's key. */
	static const uint8_t empty_key[1];
	EVP_MAC_CTX *ctx;
	size_t n = 0;
	bool ok = false;

	if (out == NULL || (iov == NULL && niov > 0) || (key == NULL && keylen > 0))
		return false;
	ctx = sg__mac_ctx(id);
	if (ctx == NULL || EVP_MAC_init(ctx, key != NULL ? key : empty_key, keylen, NULL) != 1)
		goto out;
	for (size_t i = 0; i < niov; i++) {
		if (iov[i].len == 0)
			continue;
		if (iov[i].base == NULL || EVP_MAC_update(ctx, iov[i].base, iov[i].len) != 1)
			goto out;
	}
	ok = EVP_MAC_final(ctx, out, &n, outlen) == 1 && n == outlen;
out:
	if (!ok)
		sg_memzero(out, outlen);
	return ok;
}
