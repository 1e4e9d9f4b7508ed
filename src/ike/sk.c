/* The SK payload (RFC 7296 3.14, RFC 5282 for AEAD) and SKF fragments (RFC 7383 2.5): seal and
 * open with an IKE SA's keys, through src/crypto (ike_msg.h). */
#include <string.h>

#include <secureguard/sg_errors.h>

#include "crypto/ipsec.h"
#include "ike/ike_msg.h"

static bool is_aead(uint16_t encr)
{
	return encr == IKE_ENCR_AES_GCM_16 || encr == IKE_ENCR_CHACHA20_POLY1305;
}

static size_t iv_len(const struct ike_sk_keys *k)
{
	return is_aead(k->encr) ? SG_IPSEC_IV_LEN : 16;
}

static size_t icv_len(const struct ike_sk_keys *k)
{
	return is_aead(k->encr) ? SG_IPSEC_ICV_LEN : sg_integ_icv_len(k->integ);
}

int ike_sk_keys_init(struct ike_sk_keys *k, uint16_t encr, uint16_t encr_bits, uint16_t integ,
		     const uint8_t *ek, const uint8_t *ak, bool encrypt)
{
	size_t kl = encr_bits / 8;
	memset(k, 0, sizeof(*k));
	k->encr = encr;
	k->encr_bits = encr_bits;
	k->integ = integ;
	if (is_aead(encr)) {
		if (integ != 0 || (encr == IKE_ENCR_CHACHA20_POLY1305 && kl != 32) ||
		    (encr == IKE_ENCR_AES_GCM_16 && kl != 16 && kl != 32))
			return SG_EINVAL;
		memcpy(k->ek, ek, kl + SG_IPSEC_SALT_LEN);
		/* Random start: two SAs with one key never happen, but a counter from 0 would
		 * make IVs predictable for no gain. */
		k->iv_counter = sg_random_u64();
		k->aead = sg_ipsec_aead_new(encr, k->ek, kl, encrypt);
		if (!k->aead) {
			ike_sk_keys_wipe(k);
			return SG_ENOMEM;
		}
		return 0;
	}
	if (encr != IKE_ENCR_AES_CBC || (kl != 16 && kl != 24 && kl != 32) ||
	    sg_integ_key_len(integ) == 0)
		return SG_EINVAL;
	memcpy(k->ek, ek, kl);
	memcpy(k->ak, ak, sg_integ_key_len(integ));
	return 0;
}

void ike_sk_keys_wipe(struct ike_sk_keys *k)
{
	sg_aead_free(k->aead);
	sg_memzero(k, sizeof(*k));
}

size_t ike_sk_overhead(const struct ike_sk_keys *k)
{
	/* IV, padding up to a block (CBC), the pad length byte, the ICV. */
	return iv_len(k) + (is_aead(k->encr) ? 0 : 15) + 1 + icv_len(k);
}

void ike_begin_sk(struct ike_buf *b, const struct ike_sk_keys *k)
{
	ike_begin_payload(b, IKE_PL_SK, false);
	if (b->err)
		return;
	b->sk = b->open;
	b->open = IKE_BUF_NONE; /* inner payloads open their own; the SK length is set at sealing */
	uint8_t zero[16] = {0};
	ike_put_bytes(b, zero, iv_len(k)); /* the IV, filled in at sealing */
}

int ike_seal_sk(struct ike_buf *b, struct ike_sk_keys *k)
{
	if (b->err)
		return b->err;
	if (b->sk == IKE_BUF_NONE)
		return SG_EINVAL;
	size_t ivl = iv_len(k), icvl = icv_len(k);
	size_t iv_at = b->sk + IKE_PAYLOAD_HDR_LEN, pt_at = iv_at + ivl;
	size_t inner = b->len - pt_at;
	/* Padding (3.14): any values; the pad length byte says how many. CBC needs whole blocks;
	 * the AEADs need none. */
	size_t pad = is_aead(k->encr) ? 0 : (16 - (inner + 1) % 16) % 16;
	uint8_t zero[32] = {0}; /* padding (< 16) and the ICV's room (up to 32) */
	ike_put_bytes(b, zero, pad);
	ike_put_u8(b, (uint8_t)pad);
	size_t ct_len = b->len - pt_at;
	ike_put_bytes(b, zero, icvl);
	if (b->err)
		return b->err;
	size_t sk_len = b->len - b->sk;
	if (sk_len > 0xffff)
		return SG_ERANGE;
	b->p[b->sk + 2] = (uint8_t)(sk_len >> 8);
	b->p[b->sk + 3] = (uint8_t)sk_len;
	int err = ike_finish(b);
	if (err)
		return err;
	uint8_t *iv = b->p + iv_at, *pt = b->p + pt_at;
	if (is_aead(k->encr)) {
		uint64_t c = k->iv_counter++;
		for (int i = 7; i >= 0; i--, c >>= 8)
			iv[i] = (uint8_t)c;
		/* RFC 5282 5.1: the associated data is the IKE header and the SK header. */
		if (!sg_ipsec_aead_seal(k->aead, 0, pt, pt, ct_len - 0, b->p, iv_at, iv))
			return SG_ECRYPTO;
		/* The AEAD wrote ct_len + 16 bytes: the ICV slot reserved above. */
	} else {
		if (!sg_random_bytes(iv, ivl) ||
		    !sg_aes_cbc(true, pt, pt, ct_len, k->ek, k->encr_bits / 8, iv))
			return SG_ECRYPTO;
		/* 3.14: the ICV covers the message from the IKE header to the end of the
		 * ciphertext. */
		struct sg_iov all = {b->p, pt_at + ct_len};
		if (!sg_integ_icv(k->integ, b->p + pt_at + ct_len, k->ak, &all, 1))
			return SG_ECRYPTO;
	}
	b->sk = IKE_BUF_NONE;
	return 0;
}

/* Verifies and decrypts the encrypted payload at `off` (generic header) whose fixed header is
 * hdr_len bytes (SK 4, SKF 8), ending at msg_len. Returns the plaintext without padding. */
static int open_enc(uint8_t *buf, size_t msg_len, size_t off, size_t hdr_len,
		    const struct ike_sk_keys *k, uint8_t **pt, size_t *pt_len, const char **why)
{
	size_t ivl = iv_len(k), icvl = icv_len(k);
	size_t iv_at = off + hdr_len, ct_at = iv_at + ivl;
	if (msg_len < ct_at || msg_len - ct_at < icvl + 1) {
		*why = "encrypted payload shorter than its IV, ICV and pad length";
		return SG_EPARSE;
	}
	size_t ct_len = msg_len - ct_at - icvl;
	if (is_aead(k->encr)) {
		if (!sg_ipsec_aead_open(k->aead, 0, buf + ct_at, buf + ct_at, ct_len + icvl, buf,
					iv_at, buf + iv_at)) {
			*why = "encrypted payload: integrity check failed";
			return SG_EAUTH;
		}
	} else {
		if (ct_len % 16 != 0) {
			*why = "encrypted payload: ciphertext is not whole AES blocks";
			return SG_EPARSE;
		}
		struct sg_iov all = {buf, ct_at + ct_len};
		if (!sg_integ_verify(k->integ, buf + ct_at + ct_len, k->ak, &all, 1)) {
			*why = "encrypted payload: integrity check failed";
			return SG_EAUTH;
		}
		if (!sg_aes_cbc(false, buf + ct_at, buf + ct_at, ct_len, k->ek, k->encr_bits / 8,
				buf + iv_at)) {
			*why = "encrypted payload: decryption failed";
			return SG_ECRYPTO;
		}
	}
	uint8_t padlen = buf[ct_at + ct_len - 1];
	if ((size_t)padlen + 1 > ct_len) {
		*why = "encrypted payload: pad length beyond the plaintext";
		return SG_EPARSE;
	}
	*pt = buf + ct_at;
	*pt_len = ct_len - padlen - 1;
	return 0;
}

int ike_open_sk(struct ike_msg *msg, uint8_t *buf, const struct ike_sk_keys *k, const char **why)
{
	static const char *dummy;
	if (!why)
		why = &dummy;
	if (!msg->npl || msg->pl[msg->npl - 1].type != IKE_PL_SK) {
		*why = "no SK payload";
		return SG_EPARSE;
	}
	const struct ike_payload *p = &msg->pl[msg->npl - 1];
	uint8_t *pt;
	size_t pt_len;
	uint8_t first = buf[p->offset];
	int err =
	    open_enc(buf, msg->hdr.length, p->offset, IKE_PAYLOAD_HDR_LEN, k, &pt, &pt_len, why);
	if (err)
		return err;
	return ike_parse_chain(msg, first, pt, pt_len, (size_t)(pt - buf), why);
}

int ike_open_skf(const struct ike_msg *msg, uint8_t *buf, const struct ike_sk_keys *k,
		 const uint8_t **content, size_t *len, uint8_t *first, const char **why)
{
	static const char *dummy;
	struct ike_skf f;
	if (!why)
		why = &dummy;
	if (!msg->npl || msg->pl[msg->npl - 1].type != IKE_PL_SKF) {
		*why = "no SKF payload";
		return SG_EPARSE;
	}
	const struct ike_payload *p = &msg->pl[msg->npl - 1];
	int err = ike_parse_skf(p->body, p->len, &f, why);
	if (err)
		return err;
	uint8_t *pt;
	*first = buf[p->offset];
	err = open_enc(buf, msg->hdr.length, p->offset, IKE_PAYLOAD_HDR_LEN + 4, k, &pt, len, why);
	if (err)
		return err;
	*content = pt;
	return 0;
}
