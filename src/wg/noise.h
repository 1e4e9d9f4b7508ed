/* Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s symmetric state and WireGuard's handshake messages
 * (whitepaper section 5.4). Pure functions over caller-owned state: no peers, no indexes, no
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

#define NOISE_KEY_LEN       32
#define NOISE_HASH_LEN      32
#define NOISE_TAG_LEN       16
#define NOISE_TIMESTAMP_LEN 12

extern const char noise_construction[];  /* "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s" */
extern const char wg_identifier[];       /* "WireGuard v1 zx2c4 Jason@zx2c4.com" */
extern const char wg_label_mac1[];       /* "mac1----" */
extern const char wg_label_cookie[];     /* "cookie--" */

/* Chaining key and handshake hash. */
struct noise_symmetric {
	uint8_t ck[NOISE_HASH_LEN];
	uint8_t h[NOISE_HASH_LEN];
};

/* h = HASH(protocol name); ck = h; MixHash(prologue); MixHash(responder static public key). */
bool noise_init(struct noise_symmetric *s, const uint8_t *prologue, size_t prologue_len,
		const uint8_t responder_static[NOISE_KEY_LEN]) SG_WUR;
/* h = HASH(h || data) */
bool noise_mix_hash(struct noise_symmetric *s, const uint8_t *data, size_t len) SG_WUR;
/* ck = KDF1(ck, ikm): the "e" token in psk mode mixes the ephemeral into the key too. */
bool noise_mix_key(struct noise_symmetric *s, const uint8_t *ikm, size_t len) SG_WUR;
/* (ck, key) = KDF2(ck, DH(priv, pub)); key may be NULL. Fails on an all-zero DH result. */
bool noise_mix_dh(struct noise_symmetric *s, uint8_t key[NOISE_KEY_LEN],
		  const uint8_t priv[NOISE_KEY_LEN], const uint8_t pub[NOISE_KEY_LEN]) SG_WUR;
/* As noise_mix_dh with a precomputed DH result (static-static). */
bool noise_mix_precomputed(struct noise_symmetric *s, uint8_t key[NOISE_KEY_LEN],
			   const uint8_t dh[NOISE_KEY_LEN]) SG_WUR;
/* (ck, t, key) = KDF3(ck, psk); h = HASH(h || t). */
bool noise_mix_psk(struct noise_symmetric *s, uint8_t key[NOISE_KEY_LEN],
		   const uint8_t psk[NOISE_KEY_LEN]) SG_WUR;
/* dst = AEAD(key, 0, src, h); h = HASH(h || dst). dst has len + 16 bytes. */
bool noise_encrypt_and_hash(struct noise_symmetric *s, uint8_t *dst, const uint8_t *src,
			    size_t len, const uint8_t key[NOISE_KEY_LEN]) SG_WUR;
/* src is len bytes of ciphertext+tag; dst gets len - 16 bytes (dst may be NULL when len == 16).
 * h = HASH(h || src) only on success. */
bool noise_decrypt_and_hash(struct noise_symmetric *s, uint8_t *dst, const uint8_t *src,
			    size_t len, const uint8_t key[NOISE_KEY_LEN]) SG_WUR;
/* (first, second) = KDF2(ck, empty): the initiator sends with first, the responder with second. */
bool noise_split(const struct noise_symmetric *s, uint8_t first[NOISE_KEY_LEN],
		 uint8_t second[NOISE_KEY_LEN]) SG_WUR;
void noise_symmetric_wipe(struct noise_symmetric *s);

/* The four message operations of IKpsk2, over any payload length, so the Noise test vectors run
 * through exactly the code WireGuard's messages use. `key` is scratch for the cipher key; all
 * functions leave `s` updated on success and undefined on failure (the caller discards it). */

/* -> e, es, s, ss, {payload} */
bool noise_write_msg1(struct noise_symmetric *s, uint8_t e_pub[NOISE_KEY_LEN],
		      uint8_t enc_static[NOISE_KEY_LEN + NOISE_TAG_LEN], uint8_t *enc_payload,
		      const uint8_t *payload, size_t plen, const uint8_t e_priv[NOISE_KEY_LEN],
		      const uint8_t s_pub[NOISE_KEY_LEN], const uint8_t rs_pub[NOISE_KEY_LEN],
		      const uint8_t ss[NOISE_KEY_LEN]) SG_WUR;
/* Responder, first half: e, es, s. Returns the initiator's static key in `rs_out` (so the caller
 * can look up the peer and its precomputed static-static DH) and the cipher key in `key`. */
bool noise_read_msg1_static(struct noise_symmetric *s, uint8_t key[NOISE_KEY_LEN],
			    uint8_t rs_out[NOISE_KEY_LEN], const uint8_t e_pub[NOISE_KEY_LEN],
			    const uint8_t enc_static[NOISE_KEY_LEN + NOISE_TAG_LEN],
			    const uint8_t s_priv[NOISE_KEY_LEN]) SG_WUR;
/* Responder, second half: ss, {payload}. enc_len includes the tag. */
bool noise_read_msg1_payload(struct noise_symmetric *s, uint8_t key[NOISE_KEY_LEN],
			     uint8_t *payload, const uint8_t *enc_payload, size_t enc_len,
			     const uint8_t ss[NOISE_KEY_LEN]) SG_WUR;
/* <- e, ee, se, psk, {payload}: re = initiator ephemeral, rs = initiator static. */
bool noise_write_msg2(struct noise_symmetric *s, uint8_t e_pub[NOISE_KEY_LEN],
		      uint8_t *enc_payload, const uint8_t *payload, size_t plen,
		      const uint8_t e_priv[NOISE_KEY_LEN], const uint8_t re_pub[NOISE_KEY_LEN],
		      const uint8_t rs_pub[NOISE_KEY_LEN], const uint8_t psk[NOISE_KEY_LEN]) SG_WUR;
/* Initiator reads the response; enc_len includes the tag. */
bool noise_read_msg2(struct noise_symmetric *s, uint8_t *payload, const uint8_t *enc_payload,
		     size_t enc_len, const uint8_t re_pub[NOISE_KEY_LEN],
		     const uint8_t e_priv[NOISE_KEY_LEN], const uint8_t s_priv[NOISE_KEY_LEN],
		     const uint8_t psk[NOISE_KEY_LEN]) SG_WUR;

/* TAI64N of a wall-clock time in ns since the Unix epoch: 8 bytes big-endian 2^62 + 10 + seconds,
 * 4 bytes big-endian nanoseconds. The nanoseconds are rounded down to a power of two below
 * 1 s / 50 so the timestamp does not leak a precise clock (as the kernel does). */
void noise_tai64n(uint8_t out[NOISE_TIMESTAMP_LEN], uint64_t realtime_ns);

#endif
