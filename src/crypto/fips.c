/* The fips suite: ECDH P-384, AES-256-GCM, SHA-384, HMAC-SHA-384, HKDF-SHA-384. Every algorithm
 * is fetched with the "fips=yes" property query when OpenSSL's FIPS provider is available
 * (sg_crypto_init), so in that case every operation below runs inside the FIPS module, except
 * the public point derivation of sg_p384_public (see there). */
#include <pthread.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/kdf.h>
#include <openssl/obj_mac.h>
#include <openssl/params.h>

#include "common/bytes.h"
#include "crypto/crypto_int.h"

/* ---- P-384 (FIPS 186-4 D.1.2.4, SP 800-56A rev3) ------------------------------------------- */

/* The order n of the P-384 base point, big-endian (FIPS 186-4 D.1.2.4). */
static const uint8_t p384_order[SG_P384_PRIV_LEN] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc7, 0x63, 0x4d, 0x81, 0xf4, 0x37, 0x2d, 0xdf,
    0x58, 0x1a, 0x0d, 0xb2, 0x48, 0xb0, 0xa7, 0x7a, 0xec, 0xec, 0x19, 0x6a, 0xcc, 0xc5, 0x29, 0x73,
};

/* A private scalar must lie in [1, n-1] (SP 800-56A rev3 5.6.1.2). Constant time: the scalar is
 * secret, so compare by a full borrow chain rather than memcmp. */
static bool p384_scalar_valid(const uint8_t d[SG_P384_PRIV_LEN])
{
	uint32_t borrow = 0;

	for (int i = SG_P384_PRIV_LEN - 1; i >= 0; i--)
		borrow = ((uint32_t)d[i] - p384_order[i] - borrow) >> 31;
	/* borrow == 1 iff d < n */
	return (borrow & (uint32_t)!sg_is_zero(d, SG_P384_PRIV_LEN)) == 1;
}

/* An EVP_PKEY from OSSL_PARAMs: a private key (scalar only) or a public key (SEC1 point). */
static EVP_PKEY *p384_fromdata(const struct sg__algs *a, OSSL_PARAM *params, int selection)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", a->fips_propq);
	EVP_PKEY *key = NULL;

	if (ctx == NULL)
		return NULL;
	if (EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &key, selection, params) != 1)
		key = NULL;
	EVP_PKEY_CTX_free(ctx);
	return key;
}

static EVP_PKEY *p384_priv_key(const struct sg__algs *a, const uint8_t priv[SG_P384_PRIV_LEN])
{
	/* OSSL_PARAM integers are unsigned in native byte order (OSSL_PARAM(3)); build that copy
	 * of the big-endian scalar on the stack, where it can be wiped, instead of a BIGNUM. */
	uint8_t native[SG_P384_PRIV_LEN];
	OSSL_PARAM params[3];
	EVP_PKEY *key;

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	for (int i = 0; i < SG_P384_PRIV_LEN; i++)
		native[i] = priv[SG_P384_PRIV_LEN - 1 - i];
#else
	memcpy(native, priv, SG_P384_PRIV_LEN);
#endif
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, "P-384", 0);
	params[1] = OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_PRIV_KEY, native, sizeof(native));
	params[2] = OSSL_PARAM_construct_end();
	key = p384_fromdata(a, params, EVP_PKEY_KEYPAIR);
	sg_memzero(native, sizeof(native));
	return key;
}

EVP_PKEY *sg__p384_pub_key(const struct sg__algs *a, const uint8_t pub[SG_P384_PUB_LEN])
{
	OSSL_PARAM params[3];

	/* Only the compressed form is part of our wire format. fromdata decodes the point with
	 * EC_POINT_oct2point, which recovers Y and refuses an X that is not on the curve or not a
	 * field element. */
	if (pub[0] != 0x02 && pub[0] != 0x03)
		return NULL;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, "P-384", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)pub,
						      SG_P384_PUB_LEN);
	params[2] = OSSL_PARAM_construct_end();
	return p384_fromdata(a, params, EVP_PKEY_PUBLIC_KEY);
}

/* SEC1 2.3.3 point compression of an uncompressed point 04 || X || Y. */
void sg__p384_compress(uint8_t out[SG_P384_PUB_LEN], const uint8_t in[97])
{
	out[0] = (uint8_t)(0x02 | (in[96] & 1));
	memcpy(out + 1, in + 1, 48);
}

bool sg_p384_generate(uint8_t priv[SG_P384_PRIV_LEN], uint8_t pub[SG_P384_PUB_LEN])
{
	/* OpenSSL's key generation rather than sg_random_bytes + sg_p384_public: in FIPS mode the
	 * key pair must come from the module's own generator and pairwise test (SP 800-56A
	 * 5.6.1.2), so the random test hook does not apply here. */
	const struct sg__algs *a = sg__algs();
	EVP_PKEY *key = NULL;
	BIGNUM *d = NULL;
	uint8_t full[97];
	size_t n = 0;
	bool ok = false;

	if (priv == NULL || pub == NULL)
		return false;
	if (a == NULL)
		goto out;
	key = EVP_PKEY_Q_keygen(NULL, a->fips_propq, "EC", "P-384");
	if (key == NULL || EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &d) != 1)
		goto out;
	if (BN_bn2binpad(d, priv, SG_P384_PRIV_LEN) != SG_P384_PRIV_LEN)
		goto out;
	if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, full, sizeof(full),
					    &n) != 1 ||
	    n != sizeof(full) || full[0] != 0x04)
		goto out;
	sg__p384_compress(pub, full);
	ok = true;
out:
	if (!ok)
		sg_memzero(priv, SG_P384_PRIV_LEN);
	BN_clear_free(d);
	EVP_PKEY_free(key);
	return ok;
}

bool sg_p384_public(uint8_t pub[SG_P384_PUB_LEN], const uint8_t priv[SG_P384_PRIV_LEN])
{
	/* OpenSSL 3.0's EVP_PKEY_fromdata does not derive the public point from a bare private
	 * scalar, and no EVP operation returns d*G; the EC_GROUP/EC_POINT API (not deprecated in
	 * 3.0) does, with the constant-time Montgomery ladder for a secret scalar. */
	const struct sg__algs *a = sg__algs();
	EC_GROUP *group = NULL;
	EC_POINT *point = NULL;
	BIGNUM *d = NULL;
	bool ok = false;

	if (pub == NULL || priv == NULL || a == NULL || !p384_scalar_valid(priv))
		return false;
	group = EC_GROUP_new_by_curve_name_ex(NULL, a->fips_propq, NID_secp384r1);
	d = BN_secure_new();
	if (group == NULL || d == NULL || (point = EC_POINT_new(group)) == NULL)
		goto out;
	if (BN_bin2bn(priv, SG_P384_PRIV_LEN, d) == NULL)
		goto out;
	BN_set_flags(d, BN_FLG_CONSTTIME);
	if (EC_POINT_mul(group, point, d, NULL, NULL, NULL) != 1)
		goto out;
	ok = EC_POINT_point2oct(group, point, POINT_CONVERSION_COMPRESSED, pub, SG_P384_PUB_LEN,
				NULL) == SG_P384_PUB_LEN;
out:
	BN_clear_free(d);
	EC_POINT_clear_free(point);
	EC_GROUP_free(group);
	return ok;
}

bool sg_p384_public_valid(const uint8_t pub[SG_P384_PUB_LEN])
{
	const struct sg__algs *a = sg__algs();
	EVP_PKEY *key;

	if (a == NULL || pub == NULL)
		return false;
	key = sg__p384_pub_key(a, pub);
	EVP_PKEY_free(key);
	return key != NULL;
}

bool sg_p384_ecdh(uint8_t out[SG_P384_SHARED_LEN], const uint8_t priv[SG_P384_PRIV_LEN],
		  const uint8_t pub[SG_P384_PUB_LEN])
{
	const struct sg__algs *a = sg__algs();
	EVP_PKEY *key = NULL, *peer = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	size_t n = SG_P384_SHARED_LEN;
	bool ok = false;

	if (out == NULL)
		return false;
	if (a == NULL || priv == NULL || pub == NULL || !p384_scalar_valid(priv))
		goto out;
	key = p384_priv_key(a, priv);
	peer = sg__p384_pub_key(a, pub);
	if (key == NULL || peer == NULL)
		goto out;
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, a->fips_propq);
	/* The peer point was decoded by EC_POINT_oct2point (sg__p384_pub_key), which refuses a point
	 * off the curve or with a coordinate outside the field: SP 800-56A rev3 5.6.2.3.4 partial
	 * validation, which for a curve of cofactor 1 (P-384) is full validation (the n*Q check of
	 * 5.6.2.3.3 cannot fail). So skip EVP_PKEY_derive_set_peer's own check, which repeats it
	 * with an n*Q multiplication: a quarter of a FIPS handshake's cost. */
	if (ctx == NULL || EVP_PKEY_derive_init(ctx) != 1 ||
	    EVP_PKEY_derive_set_peer_ex(ctx, peer, 0) != 1)
		goto out;
	ok = EVP_PKEY_derive(ctx, out, &n) == 1 && n == SG_P384_SHARED_LEN;
out:
	if (!ok)
		sg_memzero(out, SG_P384_SHARED_LEN);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(peer);
	EVP_PKEY_free(key);
	return ok;
}

/* ---- AES-256-GCM (SP 800-38D) -------------------------------------------------------------- */

bool sg_aes256gcm_encrypt(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
			  size_t adlen, const uint8_t iv[12], const uint8_t key[SG_AES256_KEY_LEN])
{
	return sg__aead_seal(SG__CIPHER_AES256_GCM, dst, src, len, ad, adlen, iv, key);
}

bool sg_aes256gcm_decrypt(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
			  size_t adlen, const uint8_t iv[12], const uint8_t key[SG_AES256_KEY_LEN])
{
	return sg__aead_open(SG__CIPHER_AES256_GCM, dst, src, len, ad, adlen, iv, key);
}

/* ---- SHA-384, HMAC-SHA-384, HKDF-SHA-384 --------------------------------------------------- */

bool sg_sha384(uint8_t out[SG_SHA384_LEN], const struct sg_iov *iov, size_t niov)
{
	return sg__digest_iov(SG__MD_SHA384, out, SG_SHA384_LEN, iov, niov);
}

bool sg_hmac_sha384(uint8_t out[SG_SHA384_LEN], const uint8_t *key, size_t keylen,
		    const struct sg_iov *iov, size_t niov)
{
	return sg__mac_iov(SG__MAC_HMAC_SHA384, out, SG_SHA384_LEN, key, keylen, iov, niov);
}

/* HMAC-SHA-1 from the same provider as the suite: HMAC with SHA-1 stays approved for message
 * authentication (SP 800-131A rev2 section 10, SP 800-107), which is all TOTP asks of it. */
bool sg_hmac_sha1(uint8_t out[SG_SHA1_LEN], const uint8_t *key, size_t keylen,
		  const struct sg_iov *iov, size_t niov)
{
	return sg__mac_iov(SG__MAC_HMAC_SHA1, out, SG_SHA1_LEN, key, keylen, iov, niov);
}

bool sg_pbkdf2_sha384(uint8_t *out, size_t outlen, const char *password, size_t pwlen,
		      const uint8_t *salt, size_t saltlen, unsigned iterations)
{
	const struct sg__algs *a = sg__algs();
	EVP_KDF *kdf = NULL;
	EVP_KDF_CTX *kctx = NULL;
	OSSL_PARAM params[6], *p = params;
	bool ok = false;

	if (a == NULL || out == NULL || outlen == 0 || !iterations || (!password && pwlen))
		return false;
	/* Fetched per call (a login's cost is the iterations, not the fetch). */
	kdf = EVP_KDF_fetch(NULL, "PBKDF2", a->fips_propq);
	kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	if (kctx == NULL)
		goto out;
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA384", 0);
	if (a->fips_propq != NULL)
		*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_PROPERTIES,
							(char *)a->fips_propq, 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
						 (void *)(password ? password : ""), pwlen);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, saltlen);
	*p++ = OSSL_PARAM_construct_uint(OSSL_KDF_PARAM_ITER, &iterations);
	*p = OSSL_PARAM_construct_end();
	ok = EVP_KDF_derive(kctx, out, outlen, params) == 1;
out:
	if (!ok)
		sg_memzero(out, outlen);
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return ok;
}

bool sg_hkdf_sha384(uint8_t *out, size_t outlen, const uint8_t *salt, size_t saltlen,
		    const uint8_t *ikm, size_t ikmlen, const uint8_t *info, size_t infolen)
{
	/* A zero-length IKM must still be passed as a key: HKDF refuses to derive without one. */
	static const uint8_t empty[1];
	const struct sg__algs *a = sg__algs();
	EVP_KDF_CTX *kctx = NULL;
	OSSL_PARAM params[6], *p = params;
	bool ok = false;

	if (out == NULL)
		return false;
	/* RFC 5869 section 2.3: L <= 255 * HashLen. L = 0 is a caller bug, not a request. */
	if (a == NULL || outlen == 0 || outlen > 255 * SG_SHA384_LEN ||
	    (salt == NULL && saltlen > 0) || (ikm == NULL && ikmlen > 0) ||
	    (info == NULL && infolen > 0))
		goto out;
	kctx = EVP_KDF_CTX_new(a->hkdf);
	if (kctx == NULL)
		goto out;
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA384", 0);
	if (a->fips_propq != NULL)
		*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_PROPERTIES,
							(char *)a->fips_propq, 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
						 (void *)(ikm != NULL ? ikm : empty), ikmlen);
	/* An absent salt is HashLen zero bytes (RFC 5869 section 2.2), which OpenSSL applies. */
	if (saltlen > 0)
		*p++ =
		    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, saltlen);
	/* OpenSSL 3.0 caps the info at 1024 bytes and fails the derive beyond that. */
	if (infolen > 0)
		*p++ =
		    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, infolen);
	*p = OSSL_PARAM_construct_end();
	ok = EVP_KDF_derive(kctx, out, outlen, params) == 1;
out:
	if (!ok)
		sg_memzero(out, outlen <= 255 * SG_SHA384_LEN ? outlen : 0);
	EVP_KDF_CTX_free(kctx); /* cleanses the copied key, salt and PRK */
	return ok;
}

void sg_noise_aesgcm_nonce(uint8_t nonce[12], uint64_t counter)
{
	/* Noise spec 12.4: 32 bits of zeros followed by the big-endian encoding of n. */
	memset(nonce, 0, 4);
	sg_put_be64(nonce + 4, counter);
}

bool sg_fips_peer_id(uint8_t id[32], const uint8_t pub[SG_P384_PUB_LEN])
{
	uint8_t h[SG_SHA384_LEN];
	struct sg_iov iov[2] = {{SG_FIPS_PEER_ID_LABEL, sizeof(SG_FIPS_PEER_ID_LABEL) - 1},
				{pub, SG_P384_PUB_LEN}};
	bool ok = sg_sha384(h, iov, 2);

	memcpy(id, h, 32);
	return ok;
}

/* ---- self-test ------------------------------------------------------------------------------ */

/* Known-answer tests of the fips suite, run once before FIPS keys are accepted (FIPS 140-3
 * IG 10.3.A asks a module to self-test; OpenSSL's FIPS provider does its own at load, this one
 * also covers the default provider and our glue): SHA-384 "abc" (FIPS 180-4 example), HMAC-
 * SHA-384 (RFC 4231 test case 1), AES-256-GCM (GCM spec test case 14), and a P-384 pairwise
 * consistency test (SP 800-56A 5.6.2.1.4). */
static bool fips_selftest(void)
{
	static const uint8_t sha_abc[48] = {
	    0xcb, 0x00, 0x75, 0x3f, 0x45, 0xa3, 0x5e, 0x8b, 0xb5, 0xa0, 0x3d, 0x69, 0x9a, 0xc6, 0x50, 0x07,
	    0x27, 0x2c, 0x32, 0xab, 0x0e, 0xde, 0xd1, 0x63, 0x1a, 0x8b, 0x60, 0x5a, 0x43, 0xff, 0x5b, 0xed,
	    0x80, 0x86, 0x07, 0x2b, 0xa1, 0xe7, 0xcc, 0x23, 0x58, 0xba, 0xec, 0xa1, 0x34, 0xc8, 0x25, 0xa7};
	static const uint8_t hmac_tc1[48] = {
	    0xaf, 0xd0, 0x39, 0x44, 0xd8, 0x48, 0x95, 0x62, 0x6b, 0x08, 0x25, 0xf4, 0xab, 0x46, 0x90, 0x7f,
	    0x15, 0xf9, 0xda, 0xdb, 0xe4, 0x10, 0x1e, 0xc6, 0x82, 0xaa, 0x03, 0x4c, 0x7c, 0xeb, 0xc5, 0x9c,
	    0xfa, 0xea, 0x9e, 0xa9, 0x07, 0x6e, 0xde, 0x7f, 0x4a, 0xf1, 0x52, 0xe8, 0xb2, 0xfa, 0x9c, 0xb6};
	static const uint8_t gcm_c14[32] = {
	    0xce, 0xa7, 0x40, 0x3d, 0x4d, 0x60, 0x6b, 0x6e, 0x07, 0x4e, 0xc5, 0xd3, 0xba, 0xf3, 0x9d, 0x18,
	    0xd0, 0xd1, 0xc8, 0xa7, 0x99, 0x99, 0x6b, 0xf0, 0x26, 0x5b, 0x98, 0xb5, 0xd4, 0x8a, 0xb9, 0x19};
	uint8_t out[48], key[32] = {0}, iv[12] = {0}, pt[16] = {0}, ct[32], hkey[20];
	uint8_t a[SG_P384_PRIV_LEN], ap[SG_P384_PUB_LEN], b[SG_P384_PRIV_LEN], bp[SG_P384_PUB_LEN];
	uint8_t s1[48], s2[48];
	struct sg_iov iov = {"abc", 3};
	bool ok;

	memset(hkey, 0x0b, sizeof(hkey));
	ok = sg_sha384(out, &iov, 1) && !memcmp(out, sha_abc, 48);
	iov = (struct sg_iov){"Hi There", 8};
	ok = ok && sg_hmac_sha384(out, hkey, sizeof(hkey), &iov, 1) && !memcmp(out, hmac_tc1, 48);
	ok = ok && sg_aes256gcm_encrypt(ct, pt, 16, NULL, 0, iv, key) && !memcmp(ct, gcm_c14, 32);
	ok = ok && sg_aes256gcm_decrypt(pt, ct, 32, NULL, 0, iv, key);
	ct[0] ^= 1;
	ok = ok && !sg_aes256gcm_decrypt(pt, ct, 32, NULL, 0, iv, key);
	ok = ok && sg_p384_generate(a, ap) && sg_p384_generate(b, bp) && sg_p384_ecdh(s1, a, bp) &&
	     sg_p384_ecdh(s2, b, ap) && sg_memeq(s1, s2, 48);
	sg_memzero(a, sizeof(a));
	sg_memzero(b, sizeof(b));
	sg_memzero(s1, sizeof(s1));
	sg_memzero(s2, sizeof(s2));
	return ok;
}

static pthread_once_t selftest_once = PTHREAD_ONCE_INIT;
static bool selftest_ok;

static void selftest_run(void)
{
	selftest_ok = fips_selftest();
}

bool sg_fips_suite_usable(void)
{
	return pthread_once(&selftest_once, selftest_run) == 0 && selftest_ok;
}
