/* ESP packets (esp.h); sections are RFC 4303's unless another RFC is named. */
#include <string.h>

#include <secureguard/sg_errors.h>

#include "crypto/ipsec.h"
#include "ike/esp.h"
#include "ike/ike_msg.h"

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
	p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool is_aead(uint16_t encr)
{
	return encr == IKE_ENCR_AES_GCM_16 || encr == IKE_ENCR_CHACHA20_POLY1305;
}

uint32_t esp_spi(const uint8_t *buf, size_t len)
{
	return len >= 4 ? get32(buf) : 0;
}

int esp_sa_init(struct esp_sa *sa, uint32_t spi, uint16_t encr, uint16_t encr_bits, uint16_t integ,
		const uint8_t *key, size_t key_len, const uint8_t *integ_key, size_t integ_len,
		bool esn, bool encrypt)
{
	memset(sa, 0, sizeof(*sa));
	sa->spi = spi;
	sa->encr = encr;
	sa->encr_bits = encr_bits;
	sa->integ = integ;
	sa->esn = esn;
	if (spi < 256)
		return SG_EINVAL; /* 2.1: reserved */
	if (is_aead(encr)) {
		if (integ || key_len < SG_IPSEC_SALT_LEN)
			return SG_EINVAL;
		sa->aead = sg_ipsec_aead_new(encr, key, key_len - SG_IPSEC_SALT_LEN, encrypt);
		if (!sa->aead)
			return SG_EINVAL;
		sa->iv_len = SG_IPSEC_IV_LEN;
		sa->icv_len = SG_IPSEC_ICV_LEN;
		sa->block = 4; /* 2.4: the ICV is 4-byte aligned */
		/* The IV is a counter (RFC 4106 3.1, RFC 7634 2) offset by a random start, so it is
		 * unique per key and says nothing about the sequence number. */
		if (encrypt)
			sa->seq_iv_base = sg_random_u64();
		return 0;
	}
	if (encr != IKE_ENCR_AES_CBC || (key_len != 16 && key_len != 24 && key_len != 32) ||
	    key_len * 8 != encr_bits || !sg_integ_key_len(integ) ||
	    integ_len != sg_integ_key_len(integ))
		return SG_EINVAL;
	memcpy(sa->ek, key, key_len);
	memcpy(sa->ak, integ_key, integ_len);
	sa->iv_len = 16;
	sa->icv_len = sg_integ_icv_len(integ);
	sa->block = 16;
	return 0;
}

void esp_sa_wipe(struct esp_sa *sa)
{
	sg_aead_free(sa->aead);
	sg_memzero(sa, sizeof(*sa));
}

static int count(struct esp_sa *sa, size_t bytes)
{
	sa->bytes += bytes;
	sa->packets++;
	if ((sa->hard_bytes && sa->bytes > sa->hard_bytes) ||
	    (sa->hard_packets && sa->packets > sa->hard_packets)) {
		sa->hard_reached = true;
		return ESP_E_HARD;
	}
	if (!sa->soft_reported && ((sa->soft_bytes && sa->bytes >= sa->soft_bytes) ||
				   (sa->soft_packets && sa->packets >= sa->soft_packets))) {
		sa->soft_reported = true;
		return ESP_SOFT;
	}
	return ESP_OK;
}

/* The associated data (RFC 4106 5, RFC 7634 2.1): SPI and the sequence number, 32 or 64 bits. */
static size_t make_aad(const struct esp_sa *sa, uint64_t seq, uint8_t aad[12])
{
	put32(aad, sa->spi);
	if (sa->esn) {
		put32(aad + 4, (uint32_t)(seq >> 32));
		put32(aad + 8, (uint32_t)seq);
		return 12;
	}
	put32(aad + 4, (uint32_t)seq);
	return 8;
}

int esp_encap_prepare(struct esp_sa *sa, const uint8_t *pkt, size_t len, uint8_t *out, size_t cap,
		      struct esp_op *op)
{
	uint8_t next;
	const uint8_t *payload = pkt;
	size_t plen = len;
	if (sa->hard_reached)
		return ESP_E_HARD;
	if (len < 20)
		return ESP_E_SHORT;
	if (sa->transport) {
		/* Transport mode: the upper-layer payload; the receiver rebuilds the header. */
		if ((pkt[0] >> 4) == 4) {
			size_t ihl = (size_t)(pkt[0] & 15) * 4;
			if (ihl < 20 || ihl > len)
				return ESP_E_SHORT;
			next = pkt[9];
			payload = pkt + ihl;
			plen = len - ihl;
		} else if ((pkt[0] >> 4) == 6 && len >= 40) {
			next = pkt[6];
			payload = pkt + 40;
			plen = len - 40;
		} else {
			return ESP_E_SHORT;
		}
	} else {
		next = (pkt[0] >> 4) == 6 ? ESP_NEXT_IPV6 : ESP_NEXT_IPV4;
	}
	/* 3.3.3: a 32-bit counter must not cycle; with ESN the 64-bit one effectively never. */
	if ((!sa->esn && sa->seq >= UINT32_MAX) || sa->seq == UINT64_MAX)
		return ESP_E_SEQ;
	size_t pad = (sa->block - (plen + 2) % sa->block) % sa->block;
	size_t total = ESP_HDR_LEN + sa->iv_len + plen + pad + 2 + sa->icv_len;
	if (total > cap)
		return ESP_E_SPACE;
	uint64_t seq = ++sa->seq;
	uint8_t *iv = out + ESP_HDR_LEN, *pt = iv + sa->iv_len;
	put32(out, sa->spi);
	put32(out + 4, (uint32_t)seq);
	memmove(pt, payload, plen);
	/* 2.4: padding bytes 1, 2, 3, ... */
	for (size_t i = 0; i < pad; i++)
		pt[plen + i] = (uint8_t)(i + 1);
	pt[plen + pad] = (uint8_t)pad;
	pt[plen + pad + 1] = next;
	if (sa->aead) {
		uint64_t ivv = sa->seq_iv_base + seq;
		for (int i = 7; i >= 0; i--, ivv >>= 8)
			iv[i] = (uint8_t)ivv;
	} else if (!sg_random_bytes(iv, 16)) {
		return ESP_E_CRYPTO;
	}
	*op = (struct esp_op){.sa = sa, .buf = out, .len = total, .seq = seq, .encrypt = true};
	return count(sa, plen);
}

void esp_op_run(struct esp_op *op, unsigned lane)
{
	struct esp_sa *sa = op->sa;
	uint8_t *iv = op->buf + ESP_HDR_LEN, *ct = iv + sa->iv_len;
	size_t ct_len = op->len - ESP_HDR_LEN - sa->iv_len - sa->icv_len;
	uint8_t aad[12], hi[4];
	op->result = 0;
	if (sa->aead) {
		size_t al = make_aad(sa, op->seq, aad);
		bool ok = op->encrypt ? sg_ipsec_aead_seal(sa->aead, lane, ct, ct, ct_len, aad, al, iv)
				      : sg_ipsec_aead_open(sa->aead, lane, ct, ct, ct_len + sa->icv_len,
							   aad, al, iv);
		if (!ok)
			op->result = op->encrypt ? ESP_E_CRYPTO : ESP_E_AUTH;
		return;
	}
	/* 3.3.2.1: the ICV covers header, IV and ciphertext, and with ESN the high 32 bits of the
	 * sequence number (2.2.1), which are not sent. Encrypt, then MAC; verify, then decrypt. */
	put32(hi, (uint32_t)(op->seq >> 32));
	struct sg_iov iov[2] = {{op->buf, ESP_HDR_LEN + 16 + ct_len}, {hi, sa->esn ? 4u : 0u}};
	if (op->encrypt) {
		if (!sg_aes_cbc(true, ct, ct, ct_len, sa->ek, sa->encr_bits / 8u, iv) ||
		    !sg_integ_icv(sa->integ, ct + ct_len, sa->ak, iov, 2))
			op->result = ESP_E_CRYPTO;
		return;
	}
	if (!sg_integ_verify(sa->integ, ct + ct_len, sa->ak, iov, 2))
		op->result = ESP_E_AUTH;
	else if (!sg_aes_cbc(false, ct, ct, ct_len, sa->ek, sa->encr_bits / 8u, iv))
		op->result = ESP_E_CRYPTO;
}

int esp_encap(struct esp_sa *sa, unsigned lane, const uint8_t *pkt, size_t len, uint8_t *out,
	      size_t cap, size_t *out_len)
{
	struct esp_op op;
	int rc = esp_encap_prepare(sa, pkt, len, out, cap, &op);
	if (rc < 0)
		return rc;
	esp_op_run(&op, lane);
	if (op.result)
		return op.result;
	*out_len = op.len;
	return rc;
}

/* Appendix A2.2: the 64-bit sequence number of a received low half, from the window. */
static uint64_t infer_seq(const struct esp_sa *sa, uint32_t low)
{
	if (!sa->esn)
		return low;
	uint32_t th = (uint32_t)(sa->seq >> 32), tl = (uint32_t)sa->seq;
	uint32_t w = ESP_REPLAY_WINDOW;
	uint32_t hi;
	if (tl >= w - 1)
		hi = low >= tl - w + 1 ? th : th + 1;
	else
		hi = low >= tl - w + 1 ? th - 1 : th; /* tl - w + 1 wraps below zero */
	return (uint64_t)hi << 32 | low;
}

static bool bit_get(const struct esp_sa *sa, uint64_t seq)
{
	uint64_t i = seq % ESP_REPLAY_WINDOW;
	return sa->bitmap[i / 64] >> (i % 64) & 1;
}

static void bit_set(struct esp_sa *sa, uint64_t seq)
{
	uint64_t i = seq % ESP_REPLAY_WINDOW;
	sa->bitmap[i / 64] |= 1ull << (i % 64);
}

/* 3.4.3: a sequence number is acceptable if above the highest seen, or within the window and
 * not seen. Checked before the ICV (cheap), recorded after it (so a forgery moves nothing). */
static bool replay_ok(const struct esp_sa *sa, uint64_t seq)
{
	if (seq == 0 && !sa->esn)
		return false;
	if (seq > sa->seq)
		return true;
	if (sa->seq - seq >= ESP_REPLAY_WINDOW)
		return false;
	return !bit_get(sa, seq);
}

static void replay_update(struct esp_sa *sa, uint64_t seq)
{
	if (seq > sa->seq) {
		uint64_t gap = seq - sa->seq;
		if (gap >= ESP_REPLAY_WINDOW) {
			memset(sa->bitmap, 0, sizeof(sa->bitmap));
		} else {
			/* Clear the slots that now stand for the new numbers. */
			for (uint64_t s = sa->seq + 1; s <= seq; s++) {
				uint64_t i = s % ESP_REPLAY_WINDOW;
				if (i % 64 == 0 && seq - s >= 63) {
					sa->bitmap[i / 64] = 0;
					s += 63;
					continue;
				}
				sa->bitmap[i / 64] &= ~(1ull << (i % 64));
			}
		}
		sa->seq = seq;
	}
	bit_set(sa, seq);
}

int esp_decap_prepare(struct esp_sa *sa, uint8_t *buf, size_t len, struct esp_op *op)
{
	if (sa->hard_reached)
		return ESP_E_HARD;
	if (len < ESP_HDR_LEN + sa->iv_len + sa->block + sa->icv_len || get32(buf) != sa->spi) {
		sa->malformed++;
		return ESP_E_SHORT;
	}
	uint64_t seq = infer_seq(sa, get32(buf + 4));
	if (!replay_ok(sa, seq)) {
		sa->replayed++;
		return ESP_E_REPLAY;
	}
	if ((len - ESP_HDR_LEN - sa->iv_len - sa->icv_len) % sa->block) {
		sa->malformed++;
		return ESP_E_SHORT;
	}
	*op = (struct esp_op){.sa = sa, .buf = buf, .len = len, .seq = seq};
	return ESP_OK;
}

int esp_decap(struct esp_sa *sa, unsigned lane, uint8_t *buf, size_t len, uint8_t **pkt,
	      size_t *pkt_len)
{
	struct esp_op op;
	int rc = esp_decap_prepare(sa, buf, len, &op);
	if (rc < 0)
		return rc;
	esp_op_run(&op, lane);
	return esp_decap_complete(&op, pkt, pkt_len);
}

int esp_decap_complete(struct esp_op *op, uint8_t **pkt, size_t *pkt_len)
{
	struct esp_sa *sa = op->sa;
	uint8_t *buf = op->buf;
	uint64_t seq = op->seq;
	uint8_t *ct = buf + ESP_HDR_LEN + sa->iv_len;
	size_t ct_len = op->len - ESP_HDR_LEN - sa->iv_len - sa->icv_len;
	if (op->result == ESP_E_AUTH) {
		sa->auth_failed++;
		return ESP_E_AUTH;
	}
	if (op->result)
		return op->result;
	/* Another copy of this packet may have been completed since the pre-check. */
	if (!replay_ok(sa, seq)) {
		sa->replayed++;
		return ESP_E_REPLAY;
	}
	/* Authentic: now it counts for the window, whatever its content. */
	replay_update(sa, seq);
	uint8_t next = ct[ct_len - 1], pad = ct[ct_len - 2];
	if ((size_t)pad + 2 > ct_len) {
		sa->malformed++;
		return ESP_E_SHORT;
	}
	for (size_t i = 0; i < pad; i++)
		if (ct[ct_len - 2 - pad + i] != (uint8_t)(i + 1)) {
			sa->malformed++;
			return ESP_E_SHORT;
		}
	size_t plen = ct_len - pad - 2;
	if (next == ESP_NEXT_NONE) {
		*pkt = NULL;
		*pkt_len = 0;
		return ESP_E_SHORT; /* 2.6: a dummy packet, silently dropped */
	}
	if (!sa->transport) {
		if (next != ESP_NEXT_IPV4 && next != ESP_NEXT_IPV6) {
			sa->malformed++;
			return ESP_E_SHORT;
		}
		*pkt = ct;
		*pkt_len = plen;
		return count(sa, plen);
	}
	/* Transport mode: rebuild an IP header in the headroom before the ESP packet (the
	 * caller provides 40 bytes). Checksums of TCP and UDP stay valid since the addresses
	 * are the SA's own (no NAT between the hosts; RFC 3948 3.1.2 otherwise). */
	size_t hl = sa->family == 6 ? 40 : 20;
	uint8_t *h = ct - hl;
	if (h < buf - 40) {
		sa->malformed++;
		return ESP_E_SHORT;
	}
	memset(h, 0, hl);
	if (sa->family == 6) {
		size_t total = plen;
		if (total > 65535)
			return ESP_E_SHORT;
		h[0] = 0x60;
		h[4] = (uint8_t)(total >> 8), h[5] = (uint8_t)total;
		h[6] = next;
		h[7] = 64;
		memcpy(h + 8, sa->remote, 16);
		memcpy(h + 24, sa->local, 16);
	} else {
		size_t total = plen + 20;
		if (total > 65535)
			return ESP_E_SHORT;
		h[0] = 0x45;
		h[2] = (uint8_t)(total >> 8), h[3] = (uint8_t)total;
		h[8] = 64;
		h[9] = next;
		memcpy(h + 12, sa->remote, 4);
		memcpy(h + 16, sa->local, 4);
		uint32_t sum = 0;
		for (int i = 0; i < 20; i += 2)
			sum += (uint32_t)(h[i] << 8 | h[i + 1]);
		while (sum >> 16)
			sum = (sum & 0xffff) + (sum >> 16);
		sum = ~sum & 0xffff;
		h[10] = (uint8_t)(sum >> 8), h[11] = (uint8_t)sum;
	}
	*pkt = h;
	*pkt_len = plen + hl;
	return count(sa, plen);
}
