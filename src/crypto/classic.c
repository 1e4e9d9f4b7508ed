/* The classic (WireGuard) suite: X25519, ChaCha20-Poly1305, XChaCha20-Poly1305, BLAKE2s and the
 * WireGuard KDF, all over OpenSSL 3 EVP with the default provider. */
#include <string.h>

#include "common/bytes.h"
#include "crypto/crypto_int.h"

/* ---- X25519 (RFC 7748) --------------------------------------------------------------------- */

void sg_x25519_clamp(uint8_t priv[SG_X25519_KEY_LEN])
{
	/* RFC 7748 section 5, decodeScalar25519. */
	priv[0] &= 248;
	priv[31] &= 127;
	priv[31] |= 64;
}

bool sg_x25519_public(uint8_t pub[SG_X25519_KEY_LEN], const uint8_t priv[SG_X25519_KEY_LEN])
{
	const struct sg__algs *a = sg__algs();

	if (a == NULL || pub == NULL || priv == NULL)
		return false;
	return sg__x25519_public(a, priv, pub);
}

bool sg_x25519_generate(uint8_t priv[SG_X25519_KEY_LEN], uint8_t pub[SG_X25519_KEY_LEN])
{
	/* Through the test hook when one is set, so that key generation is reproducible. */
	if (priv == NULL || pub == NULL || !sg__random_small(priv, SG_X25519_KEY_LEN))
		goto fail;
	sg_x25519_clamp(priv);
	if (!sg_x25519_public(pub, priv))
		goto fail;
	return true;
fail:
	sg_memzero(priv, priv != NULL ? SG_X25519_KEY_LEN : 0);
	return false;
}

bool sg_x25519(uint8_t out[SG_X25519_KEY_LEN], const uint8_t priv[SG_X25519_KEY_LEN],
	       const uint8_t pub[SG_X25519_KEY_LEN])
{
	const struct sg__algs *a = sg__algs();
	bool ok = false;

	if (out == NULL)
		return false;
	if (a == NULL || priv == NULL || pub == NULL || !sg__x25519_derive(a, priv, pub, out))
		goto out;
	/* A low-order peer point gives an all-zero secret. RFC 7748 section 6.1 lets a protocol
	 * reject it and WireGuard does (the kernel's curve25519() fails the handshake). OpenSSL
	 * refuses it too, but this constant-time check is the one we rely on. */
	ok = !sg_is_zero(out, SG_X25519_KEY_LEN);
out:
	if (!ok)
		sg_memzero(out, SG_X25519_KEY_LEN);
	return ok;
}

/* ---- ChaCha20-Poly1305 (RFC 8439) ---------------------------------------------------------- */

bool sg_chacha20poly1305_encrypt(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
				 size_t adlen, const uint8_t nonce[12],
				 const uint8_t key[SG_CHACHA_KEY_LEN])
{
	return sg__aead_seal(SG__CIPHER_CHACHA20_POLY1305, dst, src, len, ad, adlen, nonce, key);
}

bool sg_chacha20poly1305_decrypt(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
				 size_t adlen, const uint8_t nonce[12],
				 const uint8_t key[SG_CHACHA_KEY_LEN])
{
	return sg__aead_open(SG__CIPHER_CHACHA20_POLY1305, dst, src, len, ad, adlen, nonce, key);
}

void sg_wg_nonce(uint8_t nonce[12], uint64_t counter)
{
	/* Whitepaper 5.4.6: 32 bits of zeros followed by the 64-bit little-endian counter. */
	memset(nonce, 0, 4);
	sg_put_le64(nonce + 4, counter);
}

/* ---- HChaCha20 / XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha-03) --------------------------- */

/* OpenSSL has no HChaCha20, but it can be recovered from OpenSSL's raw ChaCha20:
 *
 * - EVP "ChaCha20" takes a 16-byte IV = 4-byte little-endian block counter || 12-byte nonce,
 *   which fill ChaCha state words 12, 13, 14, 15 in that order (RFC 8439 section 2.3). The
 *   HChaCha20 state (draft section 2.2) is the ChaCha state with those four words holding the
 *   16-byte HChaCha20 nonce instead, so passing that nonce as the IV gives exactly its state.
 * - Encrypting 64 zero bytes returns one keystream block: the state after the 20 rounds plus
 *   the initial state, word by word mod 2^32 (the feed-forward of RFC 8439 section 2.3).
 * - HChaCha20 outputs words 0..3 and 12..15 of the state after the rounds, without the
 *   feed-forward. Those initial words are known (the constants and the nonce), so subtracting
 *   them undoes the addition. Words 4..11 would need the key and are not used.
 */
static const uint32_t chacha_sigma[4] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574};

bool sg_hchacha20(uint8_t out[32], const uint8_t nonce[16], const uint8_t key[32])
{
	static const uint8_t zeros[64];
	const struct sg__algs *a = sg__algs();
	EVP_CIPHER_CTX *ctx;
	const EVP_CIPHER *cipher = NULL;
	uint8_t block[64];
	int outl = 0;
	bool ok = false;

	if (out == NULL)
		return false;
	if (a == NULL || nonce == NULL || key == NULL)
		goto out;
	ctx = sg__cipher_ctx(SG__CIPHER_CHACHA20);
	if (ctx == NULL)
		goto out;
	if (EVP_CIPHER_CTX_get0_cipher(ctx) == NULL)
		cipher = a->cipher[SG__CIPHER_CHACHA20];
	if (EVP_CipherInit_ex2(ctx, cipher, key, nonce, 1, NULL) != 1)
		goto out;
	if (EVP_CipherUpdate(ctx, block, &outl, zeros, (int)sizeof(block)) != 1 ||
	    outl != (int)sizeof(block))
		goto out;
	for (int i = 0; i < 4; i++) {
		sg_put_le32(out + 4 * i, sg_le32(block + 4 * i) - chacha_sigma[i]);
		sg_put_le32(out + 16 + 4 * i, sg_le32(block + 48 + 4 * i) - sg_le32(nonce + 4 * i));
	}
	ok = true;
out:
	sg_memzero(block, sizeof(block));
	if (!ok)
		sg_memzero(out, 32);
	return ok;
}

/* Draft section 2.3: subkey = HChaCha20(key, nonce[0..16]); then ChaCha20-Poly1305 with the
 * subkey and the 96-bit nonce 0x00000000 || nonce[16..24]. */
static bool xchacha_setup(uint8_t subkey[32], uint8_t nonce12[12],
			  const uint8_t nonce[SG_XCHACHA_NONCE_LEN], const uint8_t key[32])
{
	if (nonce == NULL)
		return false;
	memset(nonce12, 0, 4);
	memcpy(nonce12 + 4, nonce + 16, 8);
	return sg_hchacha20(subkey, nonce, key);
}

bool sg_xchacha20poly1305_encrypt(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
				  size_t adlen, const uint8_t nonce[SG_XCHACHA_NONCE_LEN],
				  const uint8_t key[32])
{
	uint8_t subkey[32], nonce12[12];
	bool ok = false;

	if (dst == NULL || len > SIZE_MAX - SG_AEAD_TAG_LEN)
		return false;
	if (!xchacha_setup(subkey, nonce12, nonce, key)) {
		sg_memzero(dst, len + SG_AEAD_TAG_LEN);
		goto out;
	}
	ok = sg_chacha20poly1305_encrypt(dst, src, len, ad, adlen, nonce12, subkey);
out:
	sg_memzero(subkey, sizeof(subkey));
	return ok;
}

bool sg_xchacha20poly1305_decrypt(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
				  size_t adlen, const uint8_t nonce[SG_XCHACHA_NONCE_LEN],
				  const uint8_t key[32])
{
	uint8_t subkey[32], nonce12[12];
	bool ok = false;

	if (dst == NULL || len < SG_AEAD_TAG_LEN)
		return false;
	if (!xchacha_setup(subkey, nonce12, nonce, key)) {
		sg_memzero(dst, len - SG_AEAD_TAG_LEN);
		goto out;
	}
	ok = sg_chacha20poly1305_decrypt(dst, src, len, ad, adlen, nonce12, subkey);
out:
	sg_memzero(subkey, sizeof(subkey));
	return ok;
}

/* ---- BLAKE2s (RFC 7693) and the WireGuard KDF ---------------------------------------------- */

bool sg_blake2s(uint8_t out[SG_BLAKE2S_LEN], const struct sg_iov *iov, size_t niov)
{
	return sg__digest_iov(SG__MD_BLAKE2S256, out, SG_BLAKE2S_LEN, iov, niov);
}

bool sg_blake2s_mac128(uint8_t out[SG_BLAKE2S_MAC_LEN], const uint8_t *key, size_t keylen,
		       const struct sg_iov *iov, size_t niov)
{
	/* RFC 7693 section 2.5: keyed BLAKE2s takes a 1..32-byte key. */
	if (key == NULL || keylen == 0 || keylen > 32) {
		sg_memzero(out, out != NULL ? SG_BLAKE2S_MAC_LEN : 0);
		return false;
	}
	return sg__mac_iov(SG__MAC_BLAKE2S128, out, SG_BLAKE2S_MAC_LEN, key, keylen, iov, niov);
}

bool sg_hmac_blake2s(uint8_t out[SG_BLAKE2S_LEN], const uint8_t *key, size_t keylen,
		     const struct sg_iov *iov, size_t niov)
{
	return sg__hmac_md_iov(SG__MD_BLAKE2S256, out, SG_BLAKE2S_LEN, key, keylen, iov, niov);
}

bool sg_wg_kdf(uint8_t *t1, uint8_t *t2, uint8_t *t3, const uint8_t ck[SG_BLAKE2S_LEN],
	       const uint8_t *in, size_t inlen)
{
	/* Whitepaper 5.4 (= RFC 5869 HKDF over HMAC-BLAKE2s, salt ck, empty info):
	 *   t0 = HMAC(ck, in)   t1 = HMAC(t0, 0x1)   t2 = HMAC(t0, t1 || 0x2)
	 *   t3 = HMAC(t0, t2 || 0x3)
	 * Everything is computed into locals and copied out at the end, so t1 may alias ck. */
	uint8_t t0[SG_BLAKE2S_LEN], t[3][SG_BLAKE2S_LEN];
	const uint8_t ctr[3] = {1, 2, 3};
	const int want = t3 != NULL ? 3 : t2 != NULL ? 2 : t1 != NULL ? 1 : 0;
	struct sg_iov in_iov = {in, inlen};
	bool ok = false;

	if (ck == NULL || (in == NULL && inlen > 0))
		goto out;
	if (!sg_hmac_blake2s(t0, ck, SG_BLAKE2S_LEN, &in_iov, 1))
		goto out;
	for (int i = 0; i < want; i++) {
		struct sg_iov iov[2] = {
		    {i > 0 ? t[i - 1] : NULL, i > 0 ? SG_BLAKE2S_LEN : 0},
		    {&ctr[i], 1},
		};

		if (!sg_hmac_blake2s(t[i], t0, sizeof(t0), iov, 2))
			goto out;
	}
	ok = true;
	if (t1 != NULL)
		memcpy(t1, t[0], SG_BLAKE2S_LEN);
	if (t2 != NULL)
		memcpy(t2, t[1], SG_BLAKE2S_LEN);
	if (t3 != NULL)
		memcpy(t3, t[2], SG_BLAKE2S_LEN);
out:
	if (!ok) {
		/* ck may alias t1 and is then lost on failure, like every other output. */
		sg_memzero(t1, t1 != NULL ? SG_BLAKE2S_LEN : 0);
		sg_memzero(t2, t2 != NULL ? SG_BLAKE2S_LEN : 0);
		sg_memzero(t3, t3 != NULL ? SG_BLAKE2S_LEN : 0);
	}
	sg_memzero(t0, sizeof(t0));
	sg_memzero(t, sizeof(t));
	return ok;
}
