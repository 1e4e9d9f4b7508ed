/* The IKEv2 key schedule (keys.h). */
#include <string.h>

#include <secureguard/sg_errors.h>

#include "ike/keys.h"

size_t ike_encr_key_len(uint16_t encr, uint16_t bits)
{
	switch (encr) {
	case IKE_ENCR_AES_CBC:
		return bits == 128 || bits == 192 || bits == 256 ? bits / 8u : 0;
	case IKE_ENCR_AES_GCM_16:
		return bits == 128 || bits == 256 ? bits / 8u : 0;
	case IKE_ENCR_CHACHA20_POLY1305:
		return bits == 0 || bits == 256 ? 32 : 0;
	}
	return 0;
}

size_t ike_encr_keymat_len(uint16_t encr, uint16_t bits)
{
	size_t k = ike_encr_key_len(encr, bits);
	bool aead = encr == IKE_ENCR_AES_GCM_16 || encr == IKE_ENCR_CHACHA20_POLY1305;
	return k ? k + (aead ? SG_IPSEC_SALT_LEN : 0) : 0;
}

void ike_sa_keys_wipe(struct ike_sa_keys *k)
{
	ike_sk_keys_wipe(&k->out);
	ike_sk_keys_wipe(&k->in);
	sg_memzero(k, sizeof(*k));
}

int ike_derive_sa_keys(const struct ike_chosen *c, bool initiator, const uint8_t *gir,
		       size_t gir_len, const uint8_t *ni, size_t ni_len, const uint8_t *nr,
		       size_t nr_len, const uint8_t spi_i[8], const uint8_t spi_r[8],
		       uint16_t prf_old, const uint8_t *skd_old, struct ike_sa_keys *out)
{
	uint8_t skeyseed[SG_PRF_MAX_LEN], nonces[2 * IKE_NONCE_MAX];
	uint8_t km[3 * SG_PRF_MAX_LEN + 2 * 64 + 2 * 36];
	size_t pl = sg_prf_len(c->prf), el = ike_encr_keymat_len(c->encr, c->encr_bits);
	size_t al = c->integ ? sg_integ_key_len(c->integ) : 0;
	uint16_t bits = (uint16_t)(ike_encr_key_len(c->encr, c->encr_bits) * 8);
	int err = SG_ECRYPTO;

	memset(out, 0, sizeof(*out));
	if (!pl || !el || (c->integ && !al) || ni_len > IKE_NONCE_MAX || nr_len > IKE_NONCE_MAX ||
	    (skd_old && !sg_prf_len(prf_old)))
		return SG_EINVAL;
	if (skd_old) {
		/* 2.18: the old SA's PRF, keyed with the old SK_d. */
		struct sg_iov in[3] = {{gir, gir_len}, {ni, ni_len}, {nr, nr_len}};
		if (!sg_prf(prf_old, skeyseed, skd_old, sg_prf_len(prf_old), in, 3))
			goto out;
	} else {
		memcpy(nonces, ni, ni_len);
		memcpy(nonces + ni_len, nr, nr_len);
		struct sg_iov in = {gir, gir_len};
		if (!sg_prf(c->prf, skeyseed, nonces, ni_len + nr_len, &in, 1))
			goto out;
	}
	/* The new SA's SKEYSEED is used with the new SA's PRF; it is as long as the old PRF's
	 * output in a rekey (keys of any length are fine for HMAC). */
	size_t skl = skd_old ? sg_prf_len(prf_old) : pl;
	struct sg_iov seed[4] = {{ni, ni_len}, {nr, nr_len}, {spi_i, 8}, {spi_r, 8}};
	size_t total = 3 * pl + 2 * al + 2 * el;
	if (!sg_prf_plus(c->prf, km, total, skeyseed, skl, seed, 4))
		goto out;
	const uint8_t *p = km;
	const uint8_t *sk_ai, *sk_ar, *sk_ei, *sk_er;
	memcpy(out->sk_d, p, pl), p += pl;
	sk_ai = p, p += al;
	sk_ar = p, p += al;
	sk_ei = p, p += el;
	sk_er = p, p += el;
	memcpy(out->sk_pi, p, pl), p += pl;
	memcpy(out->sk_pr, p, pl);
	out->prf = c->prf;
	out->prf_len = pl;
	err = ike_sk_keys_init(&out->out, c->encr, bits, c->integ, initiator ? sk_ei : sk_er,
			       initiator ? sk_ai : sk_ar, true);
	if (!err)
		err = ike_sk_keys_init(&out->in, c->encr, bits, c->integ, initiator ? sk_er : sk_ei,
				       initiator ? sk_ar : sk_ai, false);
out:
	sg_memzero(skeyseed, sizeof(skeyseed));
	sg_memzero(nonces, sizeof(nonces));
	sg_memzero(km, sizeof(km));
	if (err)
		ike_sa_keys_wipe(out);
	return err;
}

void ike_child_keys_wipe(struct ike_child_keys *k)
{
	sg_memzero(k, sizeof(*k));
}

int ike_derive_child_keys(const struct ike_chosen *c, uint16_t prf, const uint8_t *sk_d,
			  const uint8_t *gir, size_t gir_len, const uint8_t *ni, size_t ni_len,
			  const uint8_t *nr, size_t nr_len, struct ike_child_keys *out)
{
	uint8_t km[2 * 36 + 2 * 64];
	size_t el = ike_encr_keymat_len(c->encr, c->encr_bits);
	size_t al = c->integ ? sg_integ_key_len(c->integ) : 0;
	size_t pl = sg_prf_len(prf);
	memset(out, 0, sizeof(*out));
	if (!el || !pl || (c->integ && !al))
		return SG_EINVAL;
	struct sg_iov seed[3];
	size_t n = 0;
	if (gir && gir_len)
		seed[n++] = (struct sg_iov){gir, gir_len};
	seed[n++] = (struct sg_iov){ni, ni_len};
	seed[n++] = (struct sg_iov){nr, nr_len};
	/* 2.17 and RFC 4301: for each SA (initiator to responder first), the encryption key,
	 * then the integrity key. */
	if (!sg_prf_plus(prf, km, 2 * (el + al), sk_d, pl, seed, n)) {
		sg_memzero(km, sizeof(km));
		return SG_ECRYPTO;
	}
	memcpy(out->enc_i, km, el);
	memcpy(out->int_i, km + el, al);
	memcpy(out->enc_r, km + el + al, el);
	memcpy(out->int_r, km + 2 * el + al, al);
	out->encr = c->encr;
	out->encr_bits = (uint16_t)(ike_encr_key_len(c->encr, c->encr_bits) * 8);
	out->integ = c->integ;
	out->enc_len = el;
	out->int_len = al;
	sg_memzero(km, sizeof(km));
	return 0;
}
