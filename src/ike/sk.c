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

/* Encrypts ct_len bytes at iv_at + IV length in place and writes the ICV after them: the
 * associated data (AEAD, RFC 5282 5.1) or the integrity-protected prefix (CBC, 7296 3.14) is
 * everything before the IV, i.e. the IKE header and the SK or SKF payload's header. */
static int encrypt_at(uint8_t *p, size_t iv_at, size_t ct_len, struct ike_sk_keys *k)
{
	size_t ivl = iv_len(k), pt_at = iv_at + ivl;
	uint8_t *iv = p + iv_at, *pt = p + pt_at;
	if (is_aead(k->encr)) {
		uint64_t c = k->iv_counter++;
		for (int i = 7; i >= 0; i--, c >>= 8)
			iv[i] = (uint8_t)c;
		/* The AEAD writes ct_len + 16 bytes: the ICV slot reserved by the caller. */
		if (!sg_ipsec_aead_seal(k->aead, 0, pt, pt, ct_len, p, iv_at, iv))
			return SG_ECRYPTO;
		return 0;
	}
	if (!sg_random_bytes(iv, ivl) ||
	    !sg_aes_cbc(true, pt, pt, ct_len, k->ek, k->encr_bits / 8, iv))
		return SG_ECRYPTO;
	struct sg_iov all = {p, pt_at + ct_len};
	if (!sg_integ_icv(k->integ, p + pt_at + ct_len, k->ak, &all, 1))
		return SG_ECRYPTO;
	return 0;
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
	int e = encrypt_at(b->p, iv_at, ct_len, k);
	if (e)
		return e;
	b->sk = IKE_BUF_NONE;
	return 0;
}

int ike_seal_skf(const struct ike_header *h, uint8_t first, uint16_t number, uint16_t total,
		 const uint8_t *pt, size_t pt_len, struct ike_sk_keys *k, uint8_t *out, size_t cap,
		 size_t *out_len)
{
	size_t ivl = iv_len(k), icvl = icv_len(k);
	size_t pad = is_aead(k->encr) ? 0 : (16 - (pt_len + 1) % 16) % 16;
	size_t skf = IKE_HDR_LEN, iv_at = skf + IKE_PAYLOAD_HDR_LEN + 4, pt_at = iv_at + ivl;
	size_t ct_len = pt_len + pad + 1, len = pt_at + ct_len + icvl;
	if (!number || number > total || len > cap || len - skf > 0xffff)
		return SG_ERANGE;
	struct ike_buf b;
	ike_buf_init(&b, out, cap);
	ike_put_header(&b, h);
	if (b.err)
		return b.err;
	out[16] = IKE_PL_SKF;
	for (int i = 0; i < 4; i++)
		out[24 + i] = (uint8_t)(len >> (24 - 8 * i));
	/* RFC 7383 2.5: the first inner payload's type in fragment 1, zero in the others. */
	out[skf] = number == 1 ? first : IKE_PL_NONE;
	out[skf + 1] = 0;
	out[skf + 2] = (uint8_t)((len - skf) >> 8);
	out[skf + 3] = (uint8_t)(len - skf);
	out[skf + 4] = (uint8_t)(number >> 8);
	out[skf + 5] = (uint8_t)number;
	out[skf + 6] = (uint8_t)(total >> 8);
	out[skf + 7] = (uint8_t)total;
	memmove(out + pt_at, pt, pt_len);
	memset(out + pt_at + pt_len, 0, pad);
	out[pt_at + pt_len + pad] = (uint8_t)pad;
	memset(out + pt_at + ct_len, 0, icvl);
	int e = encrypt_at(out, iv_at, ct_len, k);
	if (e)
		return e;
	*out_len = len;
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

int ike_fragment_sk(struct ike_buf *b, struct ike_sk_keys *k, size_t max_msg, unsigned max_frags,
		    uint8_t *out, size_t cap, size_t *out_len, unsigned *count)
{
	if (b->err)
		return b->err;
	if (b->sk == IKE_BUF_NONE)
		return SG_EINVAL;
	size_t ivl = iv_len(k), icvl = icv_len(k);
	size_t fixed =
	    IKE_HDR_LEN + IKE_PAYLOAD_HDR_LEN + 4 + ivl + 1 + icvl + (is_aead(k->encr) ? 0 : 15);
	if (max_msg <= fixed + 16)
		return SG_ERANGE;
	size_t room = max_msg - fixed;
	size_t pt_at = b->sk + IKE_PAYLOAD_HDR_LEN + ivl;
	if (pt_at > b->len)
		return SG_EINVAL;
	const uint8_t *pt = b->p + pt_at;
	size_t pt_len = b->len - pt_at;
	size_t total = pt_len ? (pt_len + room - 1) / room : 1;
	if (total > max_frags || total > 0xffff)
		return SG_ERANGE;
	struct ike_header h = {.exchange = b->p[18], .flags = b->p[19]};
	memcpy(h.spi_i, b->p, 8);
	memcpy(h.spi_r, b->p + 8, 8);
	h.msg_id = (uint32_t)b->p[20] << 24 | (uint32_t)b->p[21] << 16 | (uint32_t)b->p[22] << 8 |
		   b->p[23];
	uint8_t first = b->p[b->sk];
	size_t used = 0;
	for (size_t i = 0; i < total; i++) {
		size_t chunk = pt_len - i * room < room ? pt_len - i * room : room, flen;
		if (cap - used < 4)
			return SG_ERANGE;
		int err = ike_seal_skf(&h, first, (uint16_t)(i + 1), (uint16_t)total, pt + i * room,
				       chunk, k, out + used + 4, cap - used - 4, &flen);
		if (err)
			return err;
		out[used] = (uint8_t)(flen >> 24);
		out[used + 1] = (uint8_t)(flen >> 16);
		out[used + 2] = (uint8_t)(flen >> 8);
		out[used + 3] = (uint8_t)flen;
		used += 4 + flen;
	}
	b->sk = IKE_BUF_NONE;
	*out_len = used;
	*count = (unsigned)total;
	return 0;
}
