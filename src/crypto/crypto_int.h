/* Internals of the crypto module, shared by its .c files only (STYLE.md habit 1).
 *
 * util.c   lifecycle: fetches every algorithm once (pthread_once), FIPS detection, utilities,
 *          randomness, suite tables
 * evp.c    per-thread cached EVP contexts and the AEAD / digest / MAC helpers over them
 * classic.c X25519, ChaCha20-Poly1305, HChaCha20/XChaCha20-Poly1305, BLAKE2s, WireGuard KDF
 * fips.c   P-384 ECDH, AES-256-GCM, SHA-384, HMAC-SHA-384, HKDF-SHA-384
 *
 * Internal cross-file symbols carry the sg__ prefix so they never collide with the public API.
 */
#ifndef SG_CRYPTO_CRYPTO_INT_H
#define SG_CRYPTO_CRYPTO_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "crypto/crypto.h"

enum sg__cipher_id {
	SG__CIPHER_CHACHA20_POLY1305, /* classic AEAD, one-shot calls */
	SG__CIPHER_CHACHA20,	      /* raw keystream: HChaCha20, the classic session AEAD */
	SG__CIPHER_AES256_GCM,	      /* fips AEAD */
	SG__CIPHER_AES128_GCM,	      /* IPsec (ipsec.c) */
	SG__CIPHER_AES128_CBC,
	SG__CIPHER_AES192_CBC,
	SG__CIPHER_AES256_CBC,
	SG__CIPHER_COUNT,
};

enum sg__md_id {
	SG__MD_BLAKE2S256,
	SG__MD_SHA384,
	SG__MD_SHA256, /* IPsec (ipsec.c) */
	SG__MD_SHA512,
	SG__MD_SHA1,   /* only NAT detection and certificate hashes (RFC 7296) */
	SG__MD_COUNT,
};

enum sg__mac_id {
	SG__MAC_BLAKE2S128,   /* keyed BLAKE2s, 16-byte output */
	SG__MAC_HMAC_BLAKE2S, /* HMAC over BLAKE2s-256 */
	SG__MAC_HMAC_SHA384,  /* HMAC over SHA-384 */
	SG__MAC_HMAC_SHA256,  /* IPsec PRF and integrity (ipsec.c) */
	SG__MAC_HMAC_SHA512,
	SG__MAC_HMAC_SHA1, /* only TOTP (RFC 6238, the server's second factor) */
	SG__MAC_POLY1305,  /* the classic session AEAD's tag (evp.c, RFC 8439 section 2.8) */
	SG__MAC_COUNT,
};

/* Everything fetched once by sg_crypto_init(); read-only afterwards, so shared by all threads. */
struct sg__algs {
	EVP_CIPHER *cipher[SG__CIPHER_COUNT];
	EVP_MD *md[SG__MD_COUNT];
	EVP_MAC *mac[SG__MAC_COUNT];
	EVP_KDF *hkdf;
	/* Property queries: classic uses the default provider, fips uses "fips=yes" when the FIPS
	 * provider is available. */
	const char *classic_propq;
	const char *fips_propq;
	bool fips_active;
	/* Which suites OpenSSL could provide: an OpenSSL configured with only the FIPS provider
	 * (no default provider) has no X25519, ChaCha20 or BLAKE2s, and SecureGuard then runs FIPS
	 * mode alone. NULL entries above belong to a missing suite. */
	bool classic_ok, fips_ok;
};

/* The fetched algorithms, or NULL when sg_crypto_init() failed. Calls sg_crypto_init(). */
const struct sg__algs *sg__algs(void);

/* Random bytes, n <= SG__RANDOM_POOL_MAX, for the draws a handshake makes (X25519 key
 * generation, indexes, jitter): each OpenSSL 3.0 RAND_bytes costs about 2 us here whatever its
 * length (a getpid system call for fork detection, the DRBG's lock and its reseed check), and
 * a classic handshake made five of them, 3% of its time. So each thread draws 512 bytes at a
 * time into a page that a fork wipes (evp.c) and hands them out once each. Same DRBG, same
 * bytes; only the calls are fewer. Larger requests, and threads whose page cannot be made
 * wipe-on-fork, go to RAND_bytes directly. Not used by sg_random_bytes, so nothing else (the
 * fips suite's keys, IVs, the server's secrets) changes. */
#define SG__RANDOM_POOL_MAX 64
bool sg__random_pool(void *buf, size_t n);
/* sg__random_pool, or the test hook of sg_crypto_set_random when one is set (util.c). */
bool sg__random_small(void *buf, size_t n);

/* Per-thread contexts, created on first use in each thread and freed at thread exit. None of
 * them allocates again once created, which keeps the per-packet path free of malloc. NULL only
 * when the first allocation fails. */
EVP_CIPHER_CTX *sg__cipher_ctx(enum sg__cipher_id id);
/* X25519(priv, pub) into out through the cached key's derive context and this thread's peer
 * key object: true, or false (out unspecified; the caller wipes it). */
bool sg__x25519_derive(const struct sg__algs *a, const uint8_t priv[SG_X25519_KEY_LEN],
		       const uint8_t pub[SG_X25519_KEY_LEN], uint8_t out[SG_X25519_KEY_LEN]);
/* The public key of priv, X25519(priv, 9), kept with the cached key: true, or false (pub
 * unspecified). sg_x25519_forget (crypto.h) drops the cached key. */
bool sg__x25519_public(const struct sg__algs *a, const uint8_t priv[SG_X25519_KEY_LEN],
		       uint8_t pub[SG_X25519_KEY_LEN]);
EVP_MD_CTX *sg__md_ctx(enum sg__md_id id);
/* A P-384 public key from its SEC1 compressed point (NULL if it is not one on the curve), and
 * the compressed form of an uncompressed point 04 || X || Y (fips.c; hsm.c uses both). */
EVP_PKEY *sg__p384_pub_key(const struct sg__algs *a, const uint8_t pub[SG_P384_PUB_LEN]);
void sg__p384_compress(uint8_t out[SG_P384_PUB_LEN], const uint8_t in[97]);
EVP_MAC_CTX *sg__mac_ctx(enum sg__mac_id id);

/* AEAD seal/open with a 96-bit nonce and 16-byte tag over a cached context; the conventions of
 * sg_chacha20poly1305_encrypt/_decrypt in crypto.h (dst may equal src; wiped on failure). */
bool sg__aead_seal(enum sg__cipher_id id, uint8_t *dst, const uint8_t *src, size_t len,
		   const uint8_t *ad, size_t adlen, const uint8_t nonce[12], const uint8_t *key);
bool sg__aead_open(enum sg__cipher_id id, uint8_t *dst, const uint8_t *src, size_t len,
		   const uint8_t *ad, size_t adlen, const uint8_t nonce[12], const uint8_t *key);

/* AEAD keyed once for many messages, with the IPsec salt (ipsec.c builds it, evp.c runs it):
 * seal/open with additional data on a lane. */
struct sg_aead *sg__aead_new_cipher(enum sg__cipher_id id, const uint8_t *key, size_t keylen,
				    const uint8_t *salt, size_t saltlen, bool encrypt);
/* The nonce prefix (IPsec salt) given at creation, and its length. */
const uint8_t *sg__aead_salt(const struct sg_aead *k, size_t *len);
bool sg__aead_seal_ad(struct sg_aead *k, unsigned lane, uint8_t *dst, const uint8_t *src,
		      size_t len, const uint8_t *ad, size_t adlen, const uint8_t nonce[12]);
bool sg__aead_open_ad(struct sg_aead *k, unsigned lane, uint8_t *dst, const uint8_t *src,
		      size_t len, const uint8_t *ad, size_t adlen, const uint8_t nonce[12]);

/* Digest of the concatenated iovs; outlen must be the digest's size. */
bool sg__digest_iov(enum sg__md_id id, uint8_t *out, size_t outlen, const struct sg_iov *iov,
		    size_t niov);
/* RFC 2104 HMAC over a digest, computed as two digests on this thread's context of that digest:
 * OpenSSL 3.0's EVP_MAC HMAC keeps three digest contexts and copies between them per call, a
 * third more instructions than the two digests for the short messages of a handshake
 * (HMAC-BLAKE2s, callgrind). Used for HMAC-BLAKE2s only: the fips suite keeps the FIPS
 * provider's HMAC. outlen must be the digest's size; out is wiped on failure. */
bool sg__hmac_md_iov(enum sg__md_id id, uint8_t *out, size_t outlen, const uint8_t *key,
		     size_t keylen, const struct sg_iov *iov, size_t niov);
/* MAC of the concatenated iovs under key; outlen must be the MAC's size. */
bool sg__mac_iov(enum sg__mac_id id, uint8_t *out, size_t outlen, const uint8_t *key, size_t keylen,
		 const struct sg_iov *iov, size_t niov);

#endif
