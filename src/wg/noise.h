/* Noise_IKpsk2 symmetric state and handshake messages (whitepaper section 5.4), over either
 * crypto suite (src/crypto: classic = WireGuard's, fips = P-384/AES-256-GCM/SHA-384). Pure functions over caller-owned state: no peers, no indexes, no
 * time. The device layer (device.c) owns the per-peer state and calls these.
 *
 * Handshake pattern (Noise IKpsk2):
 *   <- s
 *   ...
 *   -> e, es, s, ss        (initiation; payload: TAI64N timestamp)
 *   <- e, ee, se, psk      (response; payload: empty)
 */
#ifndef SG_WG_NOISE_H
#define SG_WG_NOISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"

#include "crypto/crypto.h"

/* Buffers are sized for the larger suite; the suite says how much of each is used.
 *   classic: Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s (WireGuard, byte for byte)
 *   fips:    Noise_IKpsk2_P384_AESGCM_SHA384 (SecureGuard's FIPS mode, docs/PROTOCOL.md) */
#define NOISE_KEY_LEN	    32 /* AEAD key, both suites */
#define NOISE_HASH_LEN	    32 /* classic HASHLEN (kept for the classic-only callers) */
#define NOISE_MAX_HASH	    48 /* SHA-384 */
#define NOISE_MAX_PUB	    49 /* compressed P-384 point */
#define NOISE_MAX_PRIV	    48
#define NOISE_MAX_DH	    48
#define NOISE_TAG_LEN	    16
#define NOISE_TIMESTAMP_LEN 12

extern const char noise_construction[];      /* "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s" */
extern const char noise_construction_fips[]; /* "Noise_IKpsk2_P384_AESGCM_SHA384" */
extern const char wg_identifier[];	     /* "WireGuard v1 zx2c4 Jason@zx2c4.com" */
extern const char sg_fips_identifier[];	     /* "SecureGuard FIPS v1 <...>" */
extern const char wg_label_mac1[];	     /* "mac1----" */
extern const char wg_label_cookie[];	     /* "cookie--" */

/* Chaining key and handshake hash, and the suite they belong to. */
struct noise_symmetric {
	const struct sg_suite *suite;
	uint8_t ck[NOISE_MAX_HASH];
	uint8_t h[NOISE_MAX_HASH];
};

/* The construction name and prologue (identifier) of a suite. */
const char *noise_construction_of(enum sg_suite_id id);
const char *noise_identifier_of(enum sg_suite_id id);

/* InitializeSymmetric(protocol name of the suite); MixHash(prologue); MixHash(responder static
 * public key). */
bool noise_init(struct noise_symmetric *s, const struct sg_suite *suite, const uint8_t *prologue,
		size_t prologue_len, const uint8_t *responder_static) SG_WUR;
/* The suite's KDF_n (Noise HKDF = RFC 5869 HKDF with an empty info, over the suite's HMAC):
 * t0 = HMAC(ck, in); t1 = HMAC(t0, 0x1); t2 = HMAC(t0, t1 || 0x2); t3 = HMAC(t0, t2 || 0x3).
 * Each output is hash_len bytes; any of t1..t3 may be NULL. */
bool noise_kdf(const struct sg_suite *suite, uint8_t *t1, uint8_t *t2, uint8_t *t3,
	       const uint8_t *ck, const uint8_t *in, size_t inlen) SG_WUR;
/* h = HASH(h || data) */
bool noise_mix_hash(struct noise_symmetric *s, const uint8_t *data, size_t len) SG_WUR;
/* ck = KDF1(ck, ikm): the "e" token in psk mode mixes the ephemeral into the key too. */
bool noise_mix_key(struct noise_symmetric *s, const uint8_t *ikm, size_t len) SG_WUR;
/* (ck, key) = KDF2(ck, DH(priv, pub)); key (32 bytes) may be NULL. Fails when the DH fails (an
 * all-zero X25519 result, a P-384 point off the curve). */
bool noise_mix_dh(struct noise_symmetric *s, uint8_t key[NOISE_KEY_LEN], const uint8_t *priv,
		  const uint8_t *pub) SG_WUR;
/* As noise_mix_dh with a precomputed DH result (static-static), dh_shared_len bytes. */
bool noise_mix_precomputed(struct noise_symmetric *s, uint8_t key[NOISE_KEY_LEN],
			   const uint8_t *dh) SG_WUR;
/* (ck, t, key) = KDF3(ck, psk); h = HASH(h || t). The PSK is 32 bytes in both suites. */
bool noise_mix_psk(struct noise_symmetric *s, uint8_t key[NOISE_KEY_LEN],
		   const uint8_t psk[32]) SG_WUR;
/* dst = AEAD(key, 0, src, h); h = HASH(h || dst). dst has len + 16 bytes. */
bool noise_encrypt_and_hash(struct noise_symmetric *s, uint8_t *dst, const uint8_t *src,
			    size_t len, const uint8_t key[NOISE_KEY_LEN]) SG_WUR;
/* src is len bytes of ciphertext+tag; dst gets len - 16 bytes (dst may be NULL when len == 16).
 * h = HASH(h || src) only on success. */
bool noise_decrypt_and_hash(struct noise_symmetric *s, uint8_t *dst, const uint8_t *src,
			    size_t len, const uint8_t key[NOISE_KEY_LEN]) SG_WUR;
/* (first, second) = KDF2(ck, empty), each truncated to the 32-byte AEAD key (Noise spec 5.2
 * Split, "if HASHLEN is 64 ... truncates"): the initiator sends with first. */
bool noise_split(const struct noise_symmetric *s, uint8_t first[NOISE_KEY_LEN],
		 uint8_t second[NOISE_KEY_LEN]) SG_WUR;
void noise_symmetric_wipe(struct noise_symmetric *s);

/* The four message operations of IKpsk2, over any payload length, so the Noise test vectors run
 * through exactly the code the messages use. Keys and points have the lengths of the suite of
 * `s` (dh_pub_len, dh_priv_len, dh_shared_len); enc_static has dh_pub_len + 16 bytes. All
 * functions leave `s` updated on success and undefined on failure (the caller discards it). */

/* -> e, es, s, ss, {payload} */
bool noise_write_msg1(struct noise_symmetric *s, uint8_t *e_pub, uint8_t *enc_static,
		      uint8_t *enc_payload, const uint8_t *payload, size_t plen,
		      const uint8_t *e_priv, const uint8_t *s_pub, const uint8_t *rs_pub,
		      const uint8_t *ss) SG_WUR;
/* As noise_write_msg1 with the ephemeral public key already computed (by the key generation
 * that made e_priv): saves a scalar multiplication, which is most of a P-384 message's cost. */
bool noise_write_msg1_known(struct noise_symmetric *s, const uint8_t *e_pub, uint8_t *enc_static,
			    uint8_t *enc_payload, const uint8_t *payload, size_t plen,
			    const uint8_t *e_priv, const uint8_t *s_pub, const uint8_t *rs_pub,
			    const uint8_t *ss) SG_WUR;
/* Responder, first half: e, es, s. Returns the initiator's static key in `rs_out` (so the caller
 * can look up the peer and its precomputed static-static DH) and the cipher key in `key`. */
bool noise_read_msg1_static(struct noise_symmetric *s, uint8_t key[NOISE_KEY_LEN],
			    uint8_t *rs_out, const uint8_t *e_pub, const uint8_t *enc_static,
			    const uint8_t *s_priv) SG_WUR;
/* Responder, second half: ss, {payload}. enc_len includes the tag. */
bool noise_read_msg1_payload(struct noise_symmetric *s, uint8_t key[NOISE_KEY_LEN],
			     uint8_t *payload, const uint8_t *enc_payload, size_t enc_len,
			     const uint8_t *ss) SG_WUR;
/* <- e, ee, se, psk, {payload}: re = initiator ephemeral, rs = initiator static. */
bool noise_write_msg2(struct noise_symmetric *s, uint8_t *e_pub, uint8_t *enc_payload,
		      const uint8_t *payload, size_t plen, const uint8_t *e_priv,
		      const uint8_t *re_pub, const uint8_t *rs_pub, const uint8_t psk[32]) SG_WUR;
/* As noise_write_msg2 with the ephemeral public key already computed. */
bool noise_write_msg2_known(struct noise_symmetric *s, const uint8_t *e_pub, uint8_t *enc_payload,
			    const uint8_t *payload, size_t plen, const uint8_t *e_priv,
			    const uint8_t *re_pub, const uint8_t *rs_pub, const uint8_t psk[32]) SG_WUR;
/* Initiator reads the response; enc_len includes the tag. */
bool noise_read_msg2(struct noise_symmetric *s, uint8_t *payload, const uint8_t *enc_payload,
		     size_t enc_len, const uint8_t *re_pub, const uint8_t *e_priv,
		     const uint8_t *s_priv, const uint8_t psk[32]) SG_WUR;

/* TAI64N of a wall-clock time in ns since the Unix epoch: 8 bytes big-endian 2^62 + 10 + seconds,
 * 4 bytes big-endian nanoseconds. The nanoseconds are rounded down to a power of two below
 * 1 s / 50 so the timestamp does not leak a precise clock (as the kernel does). */
void noise_tai64n(uint8_t out[NOISE_TIMESTAMP_LEN], uint64_t realtime_ns);

#endif
