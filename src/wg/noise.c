/* Noise_IKpsk2 symmetric operations, as WireGuard uses them (whitepaper 5.4; Noise spec 5.2). */
#include "noise.h"

#include <string.h>

#include "common/bytes.h"
#include "crypto/crypto.h"

const char noise_construction[] = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
const char noise_construction_fips[] = "Noise_IKpsk2_P384_AESGCM_SHA384";
const char wg_identifier[] = "WireGuard v1 zx2c4 Jason@zx2c4.com";
const char sg_fips_identifier[] = "SecureGuard FIPS v1";
const char wg_label_mac1[] = "mac1----";
const char wg_label_cookie[] = "cookie--";

const char *noise_construction_of(enum sg_suite_id id)
{
	return id == SG_SUITE_FIPS ? noise_construction_fips : noise_construction;
}

const char *noise_identifier_of(enum sg_suite_id id)
{
	return id == SG_SUITE_FIPS ? sg_fips_identifier : wg_identifier;
}

bool noise_init(struct noise_symmetric *s, const struct sg_suite *suite, const uint8_t *prologue,
		size_t prologue_len, const uint8_t *responder_static)
{
	const char *name = noise_construction_of(suite->id);
	size_t nlen = strlen(name);

	s->suite = suite;
	/* Noise spec 5.2 InitializeSymmetric: a name of at most HASHLEN bytes is zero-padded to
	 * HASHLEN (the fips name, 31 < 48), a longer one is hashed (the classic name, 37 > 32). */
	memset(s->h, 0, sizeof(s->h));
	if (nlen <= suite->hash_len) {
		memcpy(s->h, name, nlen);
	} else {
		struct sg_iov iov = {name, nlen};
		if (!suite->hash(s->h, &iov, 1))
			return false;
	}
	memcpy(s->ck, s->h, suite->hash_len);
	return noise_mix_hash(s, prologue, prologue_len) &&
	       noise_mix_hash(s, responder_static, suite->dh_pub_len);
}

bool noise_kdf(const struct sg_suite *suite, uint8_t *t1, uint8_t *t2, uint8_t *t3,
	       const uint8_t *ck, const uint8_t *in, size_t inlen)
{
	static const uint8_t empty[1];
	uint8_t t0[NOISE_MAX_HASH], out[NOISE_MAX_HASH], c;
	size_t hl = suite->hash_len;
	struct sg_iov iov[2] = {{in ? in : empty, inlen}, {NULL, 0}};
	bool ok = suite->hmac(t0, ck, hl, iov, 1);

	/* t_i = HMAC(t0, t_{i-1} || i), stopping after the last output wanted. */
	uint8_t *outs[3] = {t1, t2, t3};
	int last = t3 ? 3 : t2 ? 2 : 1;
	for (int i = 1; ok && i <= last; i++) {
		c = (uint8_t)i;
		if (i == 1) {
			iov[0] = (struct sg_iov){&c, 1};
			ok = suite->hmac(out, t0, hl, iov, 1);
		} else {
			iov[0] = (struct sg_iov){out, hl};
			iov[1] = (struct sg_iov){&c, 1};
			ok = suite->hmac(out, t0, hl, iov, 2);
		}
		if (ok && outs[i - 1])
			memcpy(outs[i - 1], out, hl);
	}
	sg_memzero(t0, sizeof(t0));
	sg_memzero(out, sizeof(out));
	return ok;
}

bool noise_mix_hash(struct noise_symmetric *s, const uint8_t *data, size_t len)
{
	struct sg_iov iov[2] = {{s->h, s->suite->hash_len}, {data, len}};
	return s->suite->hash(s->h, iov, 2);
}

bool noise_mix_key(struct noise_symmetric *s, const uint8_t *ikm, size_t len)
{
	return noise_kdf(s->suite, s->ck, NULL, NULL, s->ck, ikm, len);
}

/* (ck, temp_k) = KDF2(ck, ikm); the cipher key is temp_k truncated to 32 bytes. */
static bool mix_key2(struct noise_symmetric *s, uint8_t key[NOISE_KEY_LEN], const uint8_t *ikm,
		     size_t len)
{
	uint8_t k[NOISE_MAX_HASH];
	bool ok = noise_kdf(s->suite, s->ck, key ? k : NULL, NULL, s->ck, ikm, len);
	if (ok && key)
		memcpy(key, k, NOISE_KEY_LEN);
	sg_memzero(k, sizeof(k));
	return ok;
}

bool noise_mix_precomputed(struct noise_symmetric *s, uint8_t key[NOISE_KEY_LEN],
			   const uint8_t *dh)
{
	return mix_key2(s, key, dh, s->suite->dh_shared_len);
}

bool noise_mix_dh(struct noise_symmetric *s, uint8_t key[NOISE_KEY_LEN], const uint8_t *priv,
		  const uint8_t *pub)
{
	uint8_t dh[NOISE_MAX_DH];
	bool ok = s->suite->dh(dh, priv, pub) && noise_mix_precomputed(s, key, dh);
	sg_memzero(dh, sizeof(dh));
	return ok;
}

bool noise_mix_psk(struct noise_symmetric *s, uint8_t key[NOISE_KEY_LEN], const uint8_t psk[32])
{
	uint8_t t[NOISE_MAX_HASH], k[NOISE_MAX_HASH];
	bool ok = noise_kdf(s->suite, s->ck, t, k, s->ck, psk, 32) &&
		  noise_mix_hash(s, t, s->suite->hash_len);
	if (ok)
		memcpy(key, k, NOISE_KEY_LEN);
	sg_memzero(t, sizeof(t));
	sg_memzero(k, sizeof(k));
	return ok;
}

bool noise_encrypt_and_hash(struct noise_symmetric *s, uint8_t *dst, const uint8_t *src,
			    size_t len, const uint8_t key[NOISE_KEY_LEN])
{
	uint8_t nonce[12];
	s->suite->nonce(nonce, 0);
	return s->suite->aead_encrypt(dst, src, len, s->h, s->suite->hash_len, nonce, key) &&
	       noise_mix_hash(s, dst, len + NOISE_TAG_LEN);
}

bool noise_decrypt_and_hash(struct noise_symmetric *s, uint8_t *dst, const uint8_t *src,
			    size_t len, const uint8_t key[NOISE_KEY_LEN])
{
	uint8_t nonce[12], scratch[NOISE_TAG_LEN];
	if (len < NOISE_TAG_LEN)
		return false;
	s->suite->nonce(nonce, 0);
	if (!dst) {
		if (len != NOISE_TAG_LEN)
			return false;
		dst = scratch; /* an empty payload: nothing to write */
	}
	if (!s->suite->aead_decrypt(dst, src, len, s->h, s->suite->hash_len, nonce, key))
		return false;
	return noise_mix_hash(s, src, len);
}

bool noise_split(const struct noise_symmetric *s, uint8_t first[NOISE_KEY_LEN],
		 uint8_t second[NOISE_KEY_LEN])
{
	uint8_t a[NOISE_MAX_HASH], b[NOISE_MAX_HASH];
	bool ok = noise_kdf(s->suite, a, b, NULL, s->ck, NULL, 0);
	if (ok) {
		memcpy(first, a, NOISE_KEY_LEN);
		memcpy(second, b, NOISE_KEY_LEN);
	}
	sg_memzero(a, sizeof(a));
	sg_memzero(b, sizeof(b));
	return ok;
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

bool noise_write_msg1(struct noise_symmetric *s, uint8_t *e_pub, uint8_t *enc_static,
		      uint8_t *enc_payload, const uint8_t *payload, size_t plen,
		      const uint8_t *e_priv, const uint8_t *s_pub, const uint8_t *rs_pub,
		      const uint8_t *ss)
{
	return s->suite->dh_public(e_pub, e_priv) &&
	       noise_write_msg1_known(s, e_pub, enc_static, enc_payload, payload, plen, e_priv,
				      s_pub, rs_pub, ss);
}

bool noise_write_msg1_known(struct noise_symmetric *s, const uint8_t *e_pub, uint8_t *enc_static,
			    uint8_t *enc_payload, const uint8_t *payload, size_t plen,
			    const uint8_t *e_priv, const uint8_t *s_pub, const uint8_t *rs_pub,
			    const uint8_t *ss)
{
	const struct sg_suite *su = s->suite;
	uint8_t key[NOISE_KEY_LEN];
	bool ok =
		/* e */
		noise_mix_hash(s, e_pub, su->dh_pub_len) && noise_mix_key(s, e_pub, su->dh_pub_len) &&
		/* es */
		noise_mix_dh(s, key, e_priv, rs_pub) &&
		/* s */
		noise_encrypt_and_hash(s, enc_static, s_pub, su->dh_pub_len, key) &&
		/* ss */
		noise_mix_precomputed(s, key, ss) &&
		/* {payload} */
		noise_encrypt_and_hash(s, enc_payload, payload, plen, key);
	sg_memzero(key, sizeof(key));
	return ok;
}

bool noise_read_msg1_static(struct noise_symmetric *s, uint8_t key[NOISE_KEY_LEN],
			    uint8_t *rs_out, const uint8_t *e_pub, const uint8_t *enc_static,
			    const uint8_t *s_priv)
{
	size_t pl = s->suite->dh_pub_len;
	/* e */
	return noise_mix_hash(s, e_pub, pl) && noise_mix_key(s, e_pub, pl) &&
	       /* es */
	       noise_mix_dh(s, key, s_priv, e_pub) &&
	       /* s */
	       noise_decrypt_and_hash(s, rs_out, enc_static, pl + NOISE_TAG_LEN, key);
}

bool noise_read_msg1_payload(struct noise_symmetric *s, uint8_t key[NOISE_KEY_LEN],
			     uint8_t *payload, const uint8_t *enc_payload, size_t enc_len,
			     const uint8_t *ss)
{
	/* ss */
	return noise_mix_precomputed(s, key, ss) &&
	       /* {payload} */
	       noise_decrypt_and_hash(s, payload, enc_payload, enc_len, key);
}

bool noise_write_msg2(struct noise_symmetric *s, uint8_t *e_pub, uint8_t *enc_payload,
		      const uint8_t *payload, size_t plen, const uint8_t *e_priv,
		      const uint8_t *re_pub, const uint8_t *rs_pub, const uint8_t psk[32])
{
	return s->suite->dh_public(e_pub, e_priv) &&
	       noise_write_msg2_known(s, e_pub, enc_payload, payload, plen, e_priv, re_pub, rs_pub,
				      psk);
}

bool noise_write_msg2_known(struct noise_symmetric *s, const uint8_t *e_pub, uint8_t *enc_payload,
			    const uint8_t *payload, size_t plen, const uint8_t *e_priv,
			    const uint8_t *re_pub, const uint8_t *rs_pub, const uint8_t psk[32])
{
	const struct sg_suite *su = s->suite;
	uint8_t key[NOISE_KEY_LEN];
	bool ok =
		/* e */
		noise_mix_hash(s, e_pub, su->dh_pub_len) && noise_mix_key(s, e_pub, su->dh_pub_len) &&
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
		     size_t enc_len, const uint8_t *re_pub, const uint8_t *e_priv,
		     const uint8_t *s_priv, const uint8_t psk[32])
{
	size_t pl = s->suite->dh_pub_len;
	uint8_t key[NOISE_KEY_LEN];
	bool ok =
		/* e */
		noise_mix_hash(s, re_pub, pl) && noise_mix_key(s, re_pub, pl) &&
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
