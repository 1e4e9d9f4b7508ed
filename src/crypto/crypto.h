/* SecureGuard crypto module: the single crypto boundary (ARCHITECTURE.md).
 *
 * Every cryptographic operation in SecureGuard goes through this header; nothing else includes an
 * OpenSSL crypto header. Two suites, each a table of functions over OpenSSL 3 EVP:
 *   classic  X25519, ChaCha20-Poly1305, BLAKE2s (WireGuard)
 *   fips     ECDH P-384, AES-256-GCM, SHA-384, HMAC/HKDF-SHA-384 (SP 800-56C two-step KDF)
 * When an OpenSSL FIPS provider is configured and active, the fips suite fetches every algorithm
 * with the "fips=yes" property query.
 *
 * Conventions: functions returning bool return true on success and are warn_unused_result; on
 * failure, output buffers holding secrets are wiped. Functions are thread-safe after
 * sg_crypto_init(). Buffers may not overlap unless a function says so.
 */
#ifndef SG_CRYPTO_CRYPTO_H
#define SG_CRYPTO_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"

/* ---- lifecycle --------------------------------------------------------------------------- */

/* Fetches algorithms once per process. Idempotent and thread-safe; every other function calls it
 * lazily too, but calling it early surfaces a broken OpenSSL install at start-up.
 * Returns 0 (the fips suite is available, and the classic one when OpenSSL offers it: see
 * sg_crypto_classic_available) or SG_ECRYPTO. */
int sg_crypto_init(void) SG_WUR;
/* False when OpenSSL cannot provide the classic suite (configured with only the FIPS provider):
 * then only FIPS mode works, and classic keys are refused. */
bool sg_crypto_classic_available(void);
/* True when OpenSSL's FIPS provider is loaded and available (then the fips suite uses it). */
bool sg_crypto_fips_provider_active(void);
/* OpenSSL version string, e.g. "OpenSSL 3.0.19 27 Jan 2026". */
const char *sg_crypto_library_version(void);
/* Where each suite's algorithms come from, asked of OpenSSL for every algorithm fetched (the
 * proof docs/FIPS.md points to), as key=value text for logs:
 *   fips_suite=fips classic_suite=default fips_provider="OpenSSL FIPS Provider 3.0.20"
 *   fips_self_test=passed
 * A suite whose algorithms come from more than one provider is "mixed:NAME+NAME"; a missing
 * one "none". fips_self_test runs the FIPS provider's own self-tests again (OSSL_PROVIDER_self_test)
 * and is "passed", "failed" or "n/a" without a FIPS provider. Returns out. */
char *sg_crypto_describe(char *out, size_t len);

/* ---- utilities --------------------------------------------------------------------------- */

/* Wipes n bytes; never optimised away (explicit_bzero). */
void sg_memzero(void *p, size_t n);
/* Constant-time comparison: true iff the n bytes are equal. Time depends only on n. */
bool sg_memeq(const void *a, const void *b, size_t n) SG_WUR;
/* Constant-time test that n bytes are all zero. */
bool sg_is_zero(const void *p, size_t n) SG_WUR;
/* CSPRNG (OpenSSL RAND_bytes / DRBG). */
bool sg_random_bytes(void *buf, size_t n) SG_WUR;
/* Uniform random 32-bit value, or 64-bit value (for jitter, indexes). Aborts if the CSPRNG fails:
 * a process that cannot get randomness must not go on. */
uint32_t sg_random_u32(void);
uint64_t sg_random_u64(void);

/* Test hook: replace the CSPRNG behind sg_random_bytes/u32/u64 (NULL restores it).
 * Only for unit tests that need reproducible runs. */
typedef bool (*sg_random_fn)(void *ctx, void *buf, size_t n);
void sg_crypto_set_random(sg_random_fn fn, void *ctx);

/* Scatter list used by the hash/MAC functions below. */
struct sg_iov {
	const void *base;
	size_t len;
};

/* ---- classic suite (WireGuard) ----------------------------------------------------------- */

#define SG_X25519_KEY_LEN    32
#define SG_CHACHA_KEY_LEN    32
#define SG_AEAD_TAG_LEN      16
#define SG_BLAKE2S_LEN       32
#define SG_BLAKE2S_MAC_LEN   16
#define SG_XCHACHA_NONCE_LEN 24

/* RFC 7748 clamping of a private key, in place. */
void sg_x25519_clamp(uint8_t priv[SG_X25519_KEY_LEN]);
/* New clamped private key and its public key. */
bool sg_x25519_generate(uint8_t priv[SG_X25519_KEY_LEN], uint8_t pub[SG_X25519_KEY_LEN]) SG_WUR;
/* Public key of a private key (the private key is clamped by X25519 itself, not modified). */
bool sg_x25519_public(uint8_t pub[SG_X25519_KEY_LEN], const uint8_t priv[SG_X25519_KEY_LEN]) SG_WUR;
/* X25519(priv, pub). Fails (and wipes out) if the result is all zeros (low-order point), as
 * WireGuard requires. */
bool sg_x25519(uint8_t out[SG_X25519_KEY_LEN], const uint8_t priv[SG_X25519_KEY_LEN],
	       const uint8_t pub[SG_X25519_KEY_LEN]) SG_WUR;

/* Each thread keeps its last four X25519 private keys ready, with their public keys once asked
 * for (a device's static key serves every handshake). Forgets one of them: call it when an
 * ephemeral key is wiped, so no copy of it outlives the handshake. */
void sg_x25519_forget(const uint8_t priv[SG_X25519_KEY_LEN]);

/* RFC 8439 ChaCha20-Poly1305 with a 96-bit nonce.
 * encrypt: dst receives len bytes of ciphertext followed by the 16-byte tag (dst may equal src).
 * decrypt: src is len bytes of ciphertext+tag (len >= 16), dst receives len-16 bytes of
 * plaintext (dst may equal src); false on a bad tag, and dst is then wiped. */
bool sg_chacha20poly1305_encrypt(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
				 size_t adlen, const uint8_t nonce[12],
				 const uint8_t key[SG_CHACHA_KEY_LEN]) SG_WUR;
bool sg_chacha20poly1305_decrypt(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
				 size_t adlen, const uint8_t nonce[12],
				 const uint8_t key[SG_CHACHA_KEY_LEN]) SG_WUR;
/* The WireGuard nonce: 32 zero bits then the 64-bit little-endian counter. */
void sg_wg_nonce(uint8_t nonce[12], uint64_t counter);
/* The Noise AESGCM nonce (Noise spec 12.4): 32 zero bits then the 64-bit big-endian counter;
 * used by the fips suite in handshakes and transport data alike. */
void sg_noise_aesgcm_nonce(uint8_t nonce[12], uint64_t counter);

/* HChaCha20 (draft-irtf-cfrg-xchacha section 2.2), built on OpenSSL's ChaCha20 keystream. */
bool sg_hchacha20(uint8_t out[32], const uint8_t nonce[16], const uint8_t key[32]) SG_WUR;
/* XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha section 2.3); same conventions as above. Used by
 * WireGuard's cookie reply. */
bool sg_xchacha20poly1305_encrypt(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
				  size_t adlen, const uint8_t nonce[SG_XCHACHA_NONCE_LEN],
				  const uint8_t key[32]) SG_WUR;
bool sg_xchacha20poly1305_decrypt(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
				  size_t adlen, const uint8_t nonce[SG_XCHACHA_NONCE_LEN],
				  const uint8_t key[32]) SG_WUR;

/* BLAKE2s-256 of the concatenation of the iovs (RFC 7693). */
bool sg_blake2s(uint8_t out[SG_BLAKE2S_LEN], const struct sg_iov *iov, size_t niov) SG_WUR;
/* Keyed BLAKE2s with a 16-byte output: WireGuard's MAC(key, input) for mac1/mac2 and the cookie.
 * keylen 1..32. */
bool sg_blake2s_mac128(uint8_t out[SG_BLAKE2S_MAC_LEN], const uint8_t *key, size_t keylen,
		       const struct sg_iov *iov, size_t niov) SG_WUR;
/* HMAC-BLAKE2s-256 (RFC 2104 over BLAKE2s, block size 64). */
bool sg_hmac_blake2s(uint8_t out[SG_BLAKE2S_LEN], const uint8_t *key, size_t keylen,
		     const struct sg_iov *iov, size_t niov) SG_WUR;
/* WireGuard's KDF_n (whitepaper section 5.4): HKDF over HMAC-BLAKE2s with the chaining key as
 * salt and an empty info: t0 = HMAC(ck, in); t1 = HMAC(t0, 0x1); t2 = HMAC(t0, t1 || 0x2);
 * t3 = HMAC(t0, t2 || 0x3). Any of t1..t3 may be NULL (not wanted); t1 may alias ck. */
bool sg_wg_kdf(uint8_t *t1, uint8_t *t2, uint8_t *t3, const uint8_t ck[SG_BLAKE2S_LEN],
	       const uint8_t *in, size_t inlen) SG_WUR;

/* ---- fips suite ------------------------------------------------------------------------- */

#define SG_P384_PRIV_LEN   48
#define SG_P384_PUB_LEN    49 /* SEC1 compressed: 0x02|0x03 (parity of Y) || X */
#define SG_P384_SHARED_LEN 48
#define SG_SHA384_LEN      48
#define SG_AES256_KEY_LEN  32

/* New P-384 key pair; priv is the big-endian scalar, pub is a SEC1 compressed point (the only
 * encoding of public keys in SecureGuard's FIPS mode: 49 bytes on the wire instead of 97). */
bool sg_p384_generate(uint8_t priv[SG_P384_PRIV_LEN], uint8_t pub[SG_P384_PUB_LEN]) SG_WUR;
bool sg_p384_public(uint8_t pub[SG_P384_PUB_LEN], const uint8_t priv[SG_P384_PRIV_LEN]) SG_WUR;
/* True if pub is a compressed point on P-384 (SP 800-56A 5.6.2.3.4 partial validation; the
 * curve has cofactor 1, so that is full validation). */
bool sg_p384_public_valid(const uint8_t pub[SG_P384_PUB_LEN]) SG_WUR;
/* ECDH (SP 800-56A): the X coordinate of priv * pub, pub compressed. Fails on an encoding that
 * is not a compressed point on the curve, or a scalar out of range. */
bool sg_p384_ecdh(uint8_t out[SG_P384_SHARED_LEN], const uint8_t priv[SG_P384_PRIV_LEN],
		  const uint8_t pub[SG_P384_PUB_LEN]) SG_WUR;
/* Runs the fips suite's known-answer self-tests once per process (later calls return the
 * cached result). False: FIPS mode must not be used. */
bool sg_fips_suite_usable(void) SG_WUR;
/* The stable 32-byte identifier of a FIPS-only peer (where WireGuard has the X25519 public key:
 * the UAPI, `wg show`): SHA-384("SecureGuard FIPS peer id v1" || compressed public key)
 * truncated to 32 bytes. */
#define SG_FIPS_PEER_ID_LABEL "SecureGuard FIPS peer id v1"
bool sg_fips_peer_id(uint8_t id[32], const uint8_t pub[SG_P384_PUB_LEN]) SG_WUR;
/* AES-256-GCM with a 96-bit IV and 16-byte tag; same conventions as ChaCha20-Poly1305 above. */
bool sg_aes256gcm_encrypt(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
			  size_t adlen, const uint8_t iv[12], const uint8_t key[SG_AES256_KEY_LEN]) SG_WUR;
bool sg_aes256gcm_decrypt(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
			  size_t adlen, const uint8_t iv[12], const uint8_t key[SG_AES256_KEY_LEN]) SG_WUR;
bool sg_sha384(uint8_t out[SG_SHA384_LEN], const struct sg_iov *iov, size_t niov) SG_WUR;
bool sg_hmac_sha384(uint8_t out[SG_SHA384_LEN], const uint8_t *key, size_t keylen,
		    const struct sg_iov *iov, size_t niov) SG_WUR;
/* HMAC-SHA-1 (RFC 2104): for TOTP codes (RFC 6238), which every authenticator app computes
 * with it; not for anything new. */
#define SG_SHA1_LEN 20
bool sg_hmac_sha1(uint8_t out[SG_SHA1_LEN], const uint8_t *key, size_t keylen,
		  const struct sg_iov *iov, size_t niov) SG_WUR;
/* RFC 5869 HKDF-SHA-384 (extract then expand), as SP 800-56C rev2 two-step KDF. outlen <= 255*48. */
/* PBKDF2-HMAC-SHA-384 (SP 800-132, RFC 8018): out gets outlen bytes from the password, salt and
 * iteration count. Fetched from the FIPS provider like the rest of the suite. */
bool sg_pbkdf2_sha384(uint8_t *out, size_t outlen, const char *password, size_t pwlen,
		      const uint8_t *salt, size_t saltlen, unsigned iterations) SG_WUR;
bool sg_hkdf_sha384(uint8_t *out, size_t outlen, const uint8_t *salt, size_t saltlen,
		    const uint8_t *ikm, size_t ikmlen, const uint8_t *info, size_t infolen) SG_WUR;

/* ---- JSON Web Token signatures (RFC 7518 section 3), sig.c ---------------------------------- */

#define SG_P384_COORD_LEN 48
#define SG_ES384_SIG_LEN  96 /* r || s (RFC 7518 section 3.4) */
#define SG_SHA256_LEN	  32
/* ES384: ECDSA P-384 / SHA-384 over msg with the public key (x, y) of a JWK. False for a bad
 * signature, a point not on the curve or any failure. */
bool sg_es384_verify(const uint8_t sig[SG_ES384_SIG_LEN], const uint8_t x[SG_P384_COORD_LEN],
		     const uint8_t y[SG_P384_COORD_LEN], const void *msg, size_t len) SG_WUR;
/* RS256: RSASSA-PKCS1-v1_5 / SHA-256 with the big-endian modulus n (2048..8192 bits) and
 * exponent e of a JWK; siglen must equal the modulus length. */
bool sg_rs256_verify(const uint8_t *sig, size_t siglen, const uint8_t *n, size_t nlen,
		     const uint8_t *e, size_t elen, const void *msg, size_t len) SG_WUR;
bool sg_sha256(uint8_t out[SG_SHA256_LEN], const struct sg_iov *iov, size_t niov) SG_WUR;
/* ECDSA verification as WebAuthn (COSE algorithms -7 ES256 and -35 ES384, RFC 9053 section
 * 2.1) and X.509 carry it: the public key is the affine point (x, y), each coordinate
 * coord_len bytes (32: P-256 with SHA-256; 48: P-384 with SHA-384), the signature a DER
 * ECDSA-Sig-Value (RFC 3279 section 2.2.3). False for another length, a point not on the
 * curve, a signature that is not strict DER or does not verify. */
bool sg_ecdsa_verify_der(const uint8_t *x, const uint8_t *y, size_t coord_len, const uint8_t *sig,
			 size_t siglen, const void *msg, size_t len) SG_WUR;
/* ES384 signature (r || s) over msg with the private scalar priv (an issuer's key). */
bool sg_es384_sign(uint8_t sig[SG_ES384_SIG_LEN], const uint8_t priv[SG_P384_PRIV_LEN],
		   const void *msg, size_t len) SG_WUR;
/* The affine coordinates of priv's public point, as a JWK's x and y (RFC 7518 section 6.2.1). */
bool sg_p384_public_xy(uint8_t x[SG_P384_COORD_LEN], uint8_t y[SG_P384_COORD_LEN],
		       const uint8_t priv[SG_P384_PRIV_LEN]) SG_WUR;

/* ---- suite tables ------------------------------------------------------------------------ */

enum sg_suite_id {
	SG_SUITE_CLASSIC = 0, /* WireGuard: X25519, ChaCha20-Poly1305, BLAKE2s */
	SG_SUITE_FIPS = 1,    /* P-384, AES-256-GCM, SHA-384 */
};

/* One table of functions per suite, so protocol code can be written once over both. Lengths are
 * in bytes. aead_* use a 96-bit nonce. */
struct sg_suite {
	enum sg_suite_id id;
	const char *name; /* "classic" or "fips" */
	size_t dh_priv_len, dh_pub_len, dh_shared_len;
	size_t hash_len;     /* also the HMAC output and the KDF block */
	size_t aead_key_len; /* 32 for both */
	bool (*dh_generate)(uint8_t *priv, uint8_t *pub);
	bool (*dh_public)(uint8_t *pub, const uint8_t *priv);
	bool (*dh)(uint8_t *shared, const uint8_t *priv, const uint8_t *pub);
	bool (*aead_encrypt)(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
			     size_t adlen, const uint8_t nonce[12], const uint8_t *key);
	bool (*aead_decrypt)(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
			     size_t adlen, const uint8_t nonce[12], const uint8_t *key);
	bool (*hash)(uint8_t *out, const struct sg_iov *iov, size_t niov);
	bool (*hmac)(uint8_t *out, const uint8_t *key, size_t keylen, const struct sg_iov *iov,
		     size_t niov);
	void (*nonce)(uint8_t nonce[12], uint64_t counter); /* AEAD nonce from a counter */
};

/* An AEAD key of a suite (ChaCha20-Poly1305 or AES-256-GCM) set up once for many messages in one
 * direction: a session's send or receive key. Same conventions as the one-shot functions, with
 * no associated data; the nonce comes from the suite's nonce function. NULL on allocation
 * failure or an unavailable suite.
 *
 * Threads: each of up to SG_AEAD_LANES threads uses its own lane (an EVP context keyed once, on
 * that lane's first use), so several threads can seal or open with one key at the same time as
 * long as no two use the same lane at once. sg_aead_seal/open are lane 0. sg_aead_free must not
 * race with any use. */
#define SG_AEAD_LANES 16
struct sg_aead;
struct sg_aead *sg_aead_new(enum sg_suite_id suite, const uint8_t key[32], bool encrypt);
void sg_aead_free(struct sg_aead *k); /* wipes the key and every lane's schedule; NULL is fine */
bool sg_aead_seal(struct sg_aead *k, uint8_t *dst, const uint8_t *src, size_t len,
		  const uint8_t nonce[12]) SG_WUR;
bool sg_aead_open(struct sg_aead *k, uint8_t *dst, const uint8_t *src, size_t len,
		  const uint8_t nonce[12]) SG_WUR;
/* Lane < SG_AEAD_LANES; false (output wiped) for a lane out of range or a context that could
 * not be made. */
bool sg_aead_seal_lane(struct sg_aead *k, unsigned lane, uint8_t *dst, const uint8_t *src,
		       size_t len, const uint8_t nonce[12]) SG_WUR;
bool sg_aead_open_lane(struct sg_aead *k, unsigned lane, uint8_t *dst, const uint8_t *src,
		       size_t len, const uint8_t nonce[12]) SG_WUR;

/* The table for a suite id, or NULL for an unknown id. */
const struct sg_suite *sg_suite_get(enum sg_suite_id id);

#endif
