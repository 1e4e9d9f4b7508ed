/* Fuzz target: the classic session AEAD (src/crypto/evp.c builds RFC 8439's ChaCha20-Poly1305
 * from OpenSSL's ChaCha20 and Poly1305) against OpenSSL's ChaCha20-Poly1305 cipher (the one-shot
 * sg_chacha20poly1305_*), differentially. Input: a flags byte, 32 key bytes, 12 nonce bytes, an
 * AD length byte, then AD and data. Flags bit 0 picks the IPsec form (RFC 7634, with AD; the
 * nonce's first 4 bytes are the salt) over the WireGuard form (no AD); bit 1 in place; bits 4-7
 * a lane. Three checks, any difference aborts:
 *   seal   the data sealed both ways: equal bytes, and the session opens it back;
 *   open   the data taken as ciphertext || tag: both accept or both refuse, the same plaintext,
 *          a refused output all zeros;
 *   tamper the sealed data with the bit picked by the last data byte flipped: both refuse. */
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "crypto/ipsec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXLEN 20000

static uint8_t sealed_ref[MAXLEN + 16], sealed[MAXLEN + 16], out_ref[MAXLEN + 16], out[MAXLEN + 16];

static bool session_seal(struct sg_aead *k, bool ipsec, unsigned lane, uint8_t *dst,
			 const uint8_t *src, size_t len, const uint8_t *ad, size_t adlen,
			 const uint8_t nonce[12])
{
	return ipsec ? sg_ipsec_aead_seal(k, lane, dst, src, len, ad, adlen, nonce + 4)
		     : sg_aead_seal_lane(k, lane, dst, src, len, nonce);
}

static bool session_open(struct sg_aead *k, bool ipsec, unsigned lane, uint8_t *dst,
			 const uint8_t *src, size_t len, const uint8_t *ad, size_t adlen,
			 const uint8_t nonce[12])
{
	return ipsec ? sg_ipsec_aead_open(k, lane, dst, src, len, ad, adlen, nonce + 4)
		     : sg_aead_open_lane(k, lane, dst, src, len, nonce);
}

/* Opens in (len >= 16) both ways; aborts unless they agree. Returns the verdict. */
static bool open_both(struct sg_aead *d, bool ipsec, bool in_place, unsigned lane,
		      const uint8_t *in, size_t len, const uint8_t *ad, size_t adlen,
		      const uint8_t nonce[12], const uint8_t key[32])
{
	bool a, b;

	memset(out_ref, 0x5a, len);
	a = sg_chacha20poly1305_decrypt(out_ref, in, len, ad, adlen, nonce, key);
	memset(out, 0xa5, len);
	if (in_place)
		memcpy(out, in, len);
	b = session_open(d, ipsec, lane, out, in_place ? out : in, len, ad, adlen, nonce);
	if (a != b || memcmp(out, out_ref, len - 16) != 0)
		abort();
	if (!b && !sg_is_zero(out, len - 16))
		abort();
	return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t keymat[36], nonce[12];
	struct sg_aead *e, *d;
	const uint8_t *ad, *msg;
	size_t adlen, len;
	bool ipsec, in_place;
	unsigned lane;

	if (size < 46 || sg_crypto_init() != 0)
		return 0;
	ipsec = data[0] & 1;
	in_place = data[0] & 2;
	lane = (data[0] >> 4) % SG_AEAD_LANES;
	memcpy(keymat, data + 1, 32);
	memcpy(nonce, data + 33, 12);
	memcpy(keymat + 32, nonce, 4); /* the IPsec salt */
	adlen = ipsec ? data[45] : 0;
	if (46 + adlen > size)
		adlen = size - 46;
	ad = data + 46;
	msg = ad + adlen;
	len = size - 46 - adlen;
	if (len > MAXLEN)
		return 0;
	e = ipsec ? sg_ipsec_aead_new(SG_IPSEC_CHACHA20_POLY1305, keymat, 32, true)
		  : sg_aead_new(SG_SUITE_CLASSIC, keymat, true);
	d = ipsec ? sg_ipsec_aead_new(SG_IPSEC_CHACHA20_POLY1305, keymat, 32, false)
		  : sg_aead_new(SG_SUITE_CLASSIC, keymat, false);
	if (e == NULL || d == NULL)
		abort();

	/* seal */
	if (!sg_chacha20poly1305_encrypt(sealed_ref, msg, len, ad, adlen, nonce, keymat))
		abort();
	if (in_place)
		memcpy(sealed, msg, len);
	if (!session_seal(e, ipsec, lane, sealed, in_place ? sealed : msg, len, ad, adlen, nonce) ||
	    memcmp(sealed, sealed_ref, len + 16) != 0)
		abort();
	if (!open_both(d, ipsec, in_place, lane, sealed, len + 16, ad, adlen, nonce, keymat) ||
	    (len > 0 && memcmp(out, msg, len) != 0))
		abort();
	/* open */
	if (len >= 16)
		(void)open_both(d, ipsec, in_place, lane, msg, len, ad, adlen, nonce, keymat);
	/* tamper */
	if (len > 0) {
		size_t bit = msg[len - 1] * 61u % ((len + 16) * 8);

		sealed[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		if (open_both(d, ipsec, in_place, lane, sealed, len + 16, ad, adlen, nonce, keymat))
			abort();
	}
	sg_aead_free(e);
	sg_aead_free(d);
	return 0;
}
