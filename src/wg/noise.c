/* Noise_IKpsk2 symmetric operations, as WireGuard uses them (whitepaper 5.4; Noise spec 5.2). */
#include "noise.h"

#include <string.h>

#include "common/bytes.h"
#include "crypto/crypto.h"

const char noise_construction[] = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
const char wg_identifier[] = "WireGuard v1 zx2c4 Jason@zx2c4.com";
const char wg_label_mac1[] = "mac1----";
const char wg_label_cookie[] = "cookie--";

bool noise_init(struct noise_symmetric *s, const uint8_t *prologue, size_t prologue_len,
		const uint8_t responder_static[NOISE_KEY_LEN])
{
	/* The name is longer than HASHLEN, so h = HASH(name) (Noise spec 5.2 InitializeSymmetric). */
	struct sg_iov iov = {noise_construction, sizeof(noise_construction) - 1};
	if (!sg_blake2s(s->h, &iov, 1))
		return false;
	memcpy(s->ck, s->h, NOISE_HASH_LEN);
	return noise_mix_hash(s, prologue, prologue_len) &&
	       noise_mix_hash(s, responder_static, NOISE_KEY_LEN);
}

bool noise_mix_hash(struct noise_symmetric *s, const uint8_t *data, size_t len)
{
	struct sg_iov iov[2] = {{s->h, NOISE_HASH_LEN}, {data, len}};
	return sg_blake2s(s->h, iov, 2);
}

bool noise_mix_key(struct noise_symmetric *s, const uint8_t *ikm, size_t len)
{
	return sg_wg_kdf(s->ck, NULL, NULL, s->ck, ikm, len);
}

bool noise_mix_precomputed(struct noise_symmetric *s, uint8_t key[NOISE_KEY_LEN],
			   const uint8_t dh[NOISE_KEY_LEN])
{
	return sg_wg_kdf(s->ck, key, NULL, s->ck, dh, NOISE_KEY_LEN);
}

bool noise_mix_dh(struct noise_symmetric *s, uint8_t key[NOISE_KEY_LEN],
		  const uint8_t priv[NOISE_KEY_LEN], const uint8_t pub[NOISE_KEY_LEN])
{
	uint8_t dh[NOISE_KEY_LEN];
	bool ok = sg_x25519(dh, priv, pub) && noise_mix_precomputed(s, key, dh);
	sg_memzero(dh, sizeof(dh));
	return ok;
}

bool noise_mix_psk(struct noise_symmetric *s, uint8_t key[NOISE_KEY_LEN],
		   const uint8_t psk[NOISE_KEY_LEN])
{
	uint8_t t[NOISE_HASH_LEN];
	bool ok = sg_wg_kdf(s->ck, t, key, s->ck, psk, NOISE_KEY_LEN) &&
		  noise_mix_hash(s, t, sizeof(t));
	sg_memzero(t, sizeof(t));
	return ok;
}

bool noise_encrypt_and_hash(struct noise_symmetric *s, uint8_t *dst, const uint8_t *src,
			    size_t len, const uint8_t key[NOISE_KEY_LEN])
{
	uint8_t nonce[12];
	sg_wg_nonce(nonce, 0);
	return sg_chacha20poly1305_encrypt(dst, src, len, s->h, NOISE_HASH_LEN, nonce, key) &&
	       noise_mix_hash(s, dst, len + NOISE_TAG_LEN);
}

bool noise_decrypt_and_hash(struct noise_symmetric *s, uint8_t *dst, const uint8_t *src,
			    size_t len, const uint8_t key[NOISE_KEY_LEN])
{
	uint8_t nonce[12], scratch[NOISE_TAG_LEN];
	if (len < NOISE_TAG_LEN)
		return false;
	sg_wg_nonce(nonce, 0);
	if (!dst) {
		if (len != NOISE_TAG_LEN)
			return false;
		dst = scratch; /* an empty payload: nothing to write */
	}
	if (!sg_chacha20poly1305_decrypt(dst, src, len, s->h, NOISE_HASH_LEN, nonce, key))
		return false;
	return noise_mix_hash(s, src, len);
}

bool noise_split(const struct noise_symmetric *s, uint8_t first[NOISE_KEY_LEN],
		 uint8_t second[NOISE_KEY_LEN])
{
	return sg_wg_kdf(first, second, NULL, s->ck, NULL, 0);
}

void noise_symmetric_wipe(struct noise_symmetric *s)
{
	sg_memzero(s, sizeof(*s));
}

void noise_tai64n(uint8_t out[NOISE_TIMESTAMP_LEN], uint64_t realtime_ns)
{
	uint64_t sec = realtime_ns / 1000000000ULL;
	uint32_t nsec = (uint32_t)(realtime_ns % 1000000000ULL);
	/* rounddown_pow_of_two(1e9 / 50) = 2^24: the kernel's resolution (noise.c tai64n_now). */
	nsec &= ~((1U << 24) - 1);
	sg_put_be64(out, 0x400000000000000aULL + sec);
	sg_put_be32(out + 8, nsec);
}

bool noise_write_msg1(struct noise_symmetric *s, uint8_t e_pub[NOISE_KEY_LEN],
		      uint8_t enc_static[NOISE_KEY_LEN + NOISE_TAG_LEN], uint8_t *enc_payload,
		      const uint8_t *payload, size_t plen, const uint8_t e_priv[NOISE_KEY_LEN],
		      const uint8_t s_pub[NOISE_KEY_LEN], const uint8_t rs_pub[NOISE_KEY_LEN],
		      const uint8_t ss[NOISE_KEY_LEN])
{
	uint8_t key[NOISE_KEY_LEN];
	bool ok =
		/* e */
		sg_x25519_public(e_pub, e_priv) && noise_mix_hash(s, e_pub, NOISE_KEY_LEN) &&
		noise_mix_key(s, e_pub, NOISE_KEY_LEN) &&
		/* es */
		noise_mix_dh(s, key, e_priv, rs_pub) &&
		/* s */
		noise_encrypt_and_hash(s, enc_static, s_pub, NOISE_KEY_LEN, key) &&
		/* ss */
		noise_mix_precomputed(s, key, ss) &&
		/* {payload} */
		noise_encrypt_and_hash(s, enc_payload, payload, plen, key);
	sg_memzero(key, sizeof(key));
	return ok;
}

bool noise_read_msg1_static(struct noise_symmetric *s, uint8_t key[NOISE_KEY_LEN],
			    uint8_t rs_out[NOISE_KEY_LEN], const uint8_t e_pub[NOISE_KEY_LEN],
			    const uint8_t enc_static[NOISE_KEY_LEN + NOISE_TAG_LEN],
			    const uint8_t s_priv[NOISE_KEY_LEN])
{
	/* e */
	return noise_mix_hash(s, e_pub, NOISE_KEY_LEN) && noise_mix_key(s, e_pub, NOISE_KEY_LEN) &&
	       /* es */
	       noise_mix_dh(s, key, s_priv, e_pub) &&
	       /* s */
	       noise_decrypt_and_hash(s, rs_out, enc_static, NOISE_KEY_LEN + NOISE_TAG_LEN, key);
}

bool noise_read_msg1_payload(struct noise_symmetric *s, uint8_t key[NOISE_KEY_LEN],
			     uint8_t *payload, const uint8_t *enc_payload, size_t enc_len,
			     const uint8_t ss[NOISE_KEY_LEN])
{
	/* ss */
	return noise_mix_precomputed(s, key, ss) &&
	       /* {payload} */
	       noise_decrypt_and_hash(s, payload, enc_payload, enc_len, key);
}

bool noise_write_msg2(struct noise_symmetric *s, uint8_t e_pub[NOISE_KEY_LEN],
		      uint8_t *enc_payload, const uint8_t *payload, size_t plen,
		      const uint8_t e_priv[NOISE_KEY_LEN], const uint8_t re_pub[NOISE_KEY_LEN],
		      const uint8_t rs_pub[NOISE_KEY_LEN], const uint8_t psk[NOISE_KEY_LEN])
{
	uint8_t key[NOISE_KEY_LEN];
	bool ok =
		/* e */
		sg_x25519_public(e_pub, e_priv) && noise_mix_hash(s, e_pub, NOISE_KEY_LEN) &&
		noise_mix_key(s, e_pub, NOISE_KEY_LEN) &&
		/* ee */
		noise_mix_dh(s, NULL, e_priv, re_pub) &&
		/* se */
		noise_mix_dh(s, NULL, e_priv, rs_pub) &&
		/* psk */
		noise_mix_psk(s, key, psk) &&
		/* {payload} */
		noise_encrypt_and_hash(s, enc_payload, payload, plen, key);
	sg_memzero(key, sizeof(key));
	return ok;
}

bool noise_read_msg2(struct noise_symmetric *s, uint8_t *payload, const uint8_t *enc_payload,
		     size_t enc_len, const uint8_t re_pub[NOISE_KEY_LEN],
		     const uint8_t e_priv[NOISE_KEY_LEN], const uint8_t s_priv[NOISE_KEY_LEN],
		     const uint8_t psk[NOISE_KEY_LEN])
{
	uint8_t key[NOISE_KEY_LEN];
	bool ok =
		/* e */
		noise_mix_hash(s, re_pub, NOISE_KEY_LEN) && noise_mix_key(s, re_pub, NOISE_KEY_LEN) &&
		/* ee */
		noise_mix_dh(s, NULL, e_priv, re_pub) &&
		/* se */
		noise_mix_dh(s, NULL, s_priv, re_pub) &&
		/* psk */
		noise_mix_psk(s, key, psk) &&
		/* {payload} */
		noise_decrypt_and_hash(s, payload, enc_payload, enc_len, key);
	sg_memzero(key, sizeof(key));
	return ok;
}
