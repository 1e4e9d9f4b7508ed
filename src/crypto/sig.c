/* Signatures of JSON Web Tokens (RFC 7518 section 3): ES384 (ECDSA P-384 with SHA-384, the
 * signature as r || s) and RS256 (RSASSA-PKCS1-v1_5 with SHA-256), verified with a public key
 * from a JWK; ES384 signing and the (x, y) of a key's JWK for an issuer (the management
 * server's OpenID provider); ECDSA P-256 and P-384 with DER signatures (WebAuthn passkeys);
 * SHA-256 for PKCE (RFC 7636 section 4.2). With OpenSSL's FIPS provider active,
 * every algorithm is fetched with "fips=yes" (P-384, SHA-2 and RSA verification are approved).
 * Not on any hot path: contexts are made per call. */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/params.h>
#include <openssl/rsa.h>

#include "crypto/crypto_int.h"

static const char *propq(void)
{
	const struct sg__algs *a = sg__algs();
	return a && a->fips_active ? a->fips_propq : NULL;
}

static EVP_PKEY *key_fromdata(const char *type, OSSL_PARAM *params)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, propq());
	EVP_PKEY *key = NULL;
	if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
		key = NULL;
	EVP_PKEY_CTX_free(ctx);
	return key;
}

static bool verify(EVP_PKEY *key, const char *md, const uint8_t *sig, size_t siglen,
		   const void *msg, size_t len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx && EVP_DigestVerifyInit_ex(ctx, NULL, md, NULL, propq(), key, NULL) == 1 &&
		  EVP_DigestVerify(ctx, sig, siglen, msg, len) == 1;
	EVP_MD_CTX_free(ctx);
	return ok;
}

bool sg_es384_verify(const uint8_t sig[SG_ES384_SIG_LEN], const uint8_t x[SG_P384_COORD_LEN],
		     const uint8_t y[SG_P384_COORD_LEN], const void *msg, size_t len)
{
	uint8_t point[1 + 2 * SG_P384_COORD_LEN];
	point[0] = 0x04; /* SEC1 uncompressed */
	memcpy(point + 1, x, SG_P384_COORD_LEN);
	memcpy(point + 1 + SG_P384_COORD_LEN, y, SG_P384_COORD_LEN);
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"P-384", 0),
	    OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)),
	    OSSL_PARAM_construct_end(),
	};
	/* fromdata checks the point is on the curve. */
	EVP_PKEY *key = key_fromdata("EC", params);
	if (!key)
		return false;
	/* JWS carries r || s; OpenSSL wants the DER ECDSA-Sig-Value (RFC 3279 section 2.2.3). */
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, SG_P384_COORD_LEN, NULL);
	BIGNUM *s = BN_bin2bn(sig + SG_P384_COORD_LEN, SG_P384_COORD_LEN, NULL);
	unsigned char *der = NULL;
	int dlen = -1;
	bool ok = false;
	if (es && r && s && ECDSA_SIG_set0(es, r, s) == 1) {
		r = s = NULL; /* owned by es now */
		dlen = i2d_ECDSA_SIG(es, &der);
	}
	if (dlen > 0)
		ok = verify(key, "SHA384", der, (size_t)dlen, msg, len);
	OPENSSL_free(der);
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	EVP_PKEY_free(key);
	return ok;
}

bool sg_ecdsa_verify_der(const uint8_t *x, const uint8_t *y, size_t coord_len, const uint8_t *sig,
			 size_t siglen, const void *msg, size_t len)
{
	uint8_t point[1 + 2 * SG_P384_COORD_LEN];
	const char *group = coord_len == 32 ? "P-256" : "P-384", *md = coord_len == 32 ? "SHA256"
											 : "SHA384";
	if ((coord_len != 32 && coord_len != SG_P384_COORD_LEN) || !sig || siglen < 8 ||
	    siglen > 2 * coord_len + 9)
		return false;
	/* Strict DER: the encoding must be the one d2i/i2d round-trips to, so a signature has one
	 * spelling (BER leniency would let a signature be replayed in another form). */
	const unsigned char *p = sig;
	ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
	unsigned char *der = NULL;
	int dlen = es ? i2d_ECDSA_SIG(es, &der) : -1;
	bool strict = es && p == sig + siglen && dlen == (int)siglen && !memcmp(der, sig, siglen);
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	if (!strict)
		return false;
	point[0] = 0x04; /* SEC1 uncompressed */
	memcpy(point + 1, x, coord_len);
	memcpy(point + 1 + coord_len, y, coord_len);
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0),
	    OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * coord_len),
	    OSSL_PARAM_construct_end(),
	};
	/* fromdata checks the point is on the curve. */
	EVP_PKEY *key = key_fromdata("EC", params);
	bool ok = key && verify(key, md, sig, siglen, msg, len);
	EVP_PKEY_free(key);
	return ok;
}

bool sg_rs256_verify(const uint8_t *sig, size_t siglen, const uint8_t *n, size_t nlen,
		     const uint8_t *e, size_t elen, const void *msg, size_t len)
{
	/* RFC 7518 section 3.3: keys of 2048 bits or more. */
	while (nlen && n[0] == 0)
		n++, nlen--;
	if (nlen < 256 || nlen > 1024 || elen == 0 || elen > 8 || siglen != nlen)
		return false;
	/* OSSL_PARAM integers are in native byte order (OSSL_PARAM(3)): JWK's are big-endian. */
	BIGNUM *bn = BN_bin2bn(n, (int)nlen, NULL), *be = BN_bin2bn(e, (int)elen, NULL);
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY *key = NULL;
	bool ok = false;
	if (bn && be && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) == 1 &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) == 1)
		params = OSSL_PARAM_BLD_to_param(bld);
	if (params)
		key = key_fromdata("RSA", params);
	if (key)
		ok = verify(key, "SHA256", sig, siglen, msg, len);
	EVP_PKEY_free(key);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	return ok;
}

bool sg_sha256(uint8_t out[SG_SHA256_LEN], const struct sg_iov *iov, size_t niov)
{
	EVP_MD *md = EVP_MD_fetch(NULL, "SHA256", propq());
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int n = 0;
	bool ok = md && ctx && EVP_DigestInit_ex2(ctx, md, NULL) == 1;
	for (size_t i = 0; ok && i < niov; i++)
		ok = EVP_DigestUpdate(ctx, iov[i].base, iov[i].len) == 1;
	ok = ok && EVP_DigestFinal_ex(ctx, out, &n) == 1 && n == SG_SHA256_LEN;
	EVP_MD_CTX_free(ctx);
	EVP_MD_free(md);
	return ok;
}

/* d*G as an uncompressed SEC1 point, for a scalar in [1, n-1] (constant-time ladder, as
 * sg_p384_public in fips.c). */
static bool p384_point(const uint8_t priv[SG_P384_PRIV_LEN], uint8_t out[1 + 2 * SG_P384_COORD_LEN])
{
	EC_GROUP *group = EC_GROUP_new_by_curve_name_ex(NULL, propq(), NID_secp384r1);
	EC_POINT *point = group ? EC_POINT_new(group) : NULL;
	BIGNUM *d = BN_secure_new();
	bool ok = false;
	if (!group || !point || !d || !BN_bin2bn(priv, SG_P384_PRIV_LEN, d) || BN_is_zero(d) ||
	    BN_cmp(d, EC_GROUP_get0_order(group)) >= 0)
		goto out;
	BN_set_flags(d, BN_FLG_CONSTTIME);
	ok = EC_POINT_mul(group, point, d, NULL, NULL, NULL) == 1 &&
	     EC_POINT_point2oct(group, point, POINT_CONVERSION_UNCOMPRESSED, out,
				1 + 2 * SG_P384_COORD_LEN, NULL) == 1 + 2 * SG_P384_COORD_LEN;
out:
	BN_clear_free(d);
	EC_POINT_clear_free(point);
	EC_GROUP_free(group);
	return ok;
}

bool sg_p384_public_xy(uint8_t x[SG_P384_COORD_LEN], uint8_t y[SG_P384_COORD_LEN],
		       const uint8_t priv[SG_P384_PRIV_LEN])
{
	uint8_t pt[1 + 2 * SG_P384_COORD_LEN];
	if (!p384_point(priv, pt))
		return false;
	memcpy(x, pt + 1, SG_P384_COORD_LEN);
	memcpy(y, pt + 1 + SG_P384_COORD_LEN, SG_P384_COORD_LEN);
	return true;
}

bool sg_es384_sign(uint8_t sig[SG_ES384_SIG_LEN], const uint8_t priv[SG_P384_PRIV_LEN],
		   const void *msg, size_t len)
{
	uint8_t pt[1 + 2 * SG_P384_COORD_LEN], native[SG_P384_PRIV_LEN];
	unsigned char der[128];
	size_t dlen = sizeof(der);
	EVP_PKEY *key = NULL;
	EVP_MD_CTX *ctx = NULL;
	ECDSA_SIG *es = NULL;
	bool ok = false;
	if (!p384_point(priv, pt))
		return false;
	/* OSSL_PARAM integers are in native byte order (OSSL_PARAM(3)). */
	for (int i = 0; i < SG_P384_PRIV_LEN; i++)
		native[i] = priv[SG_P384_PRIV_LEN - 1 - i];
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"P-384", 0),
	    OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_PRIV_KEY, native, sizeof(native)),
	    OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt)),
	    OSSL_PARAM_construct_end(),
	};
	EVP_PKEY_CTX *kctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", propq());
	if (!kctx || EVP_PKEY_fromdata_init(kctx) != 1 ||
	    EVP_PKEY_fromdata(kctx, &key, EVP_PKEY_KEYPAIR, params) != 1)
		goto out;
	ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestSignInit_ex(ctx, NULL, "SHA384", NULL, propq(), key, NULL) != 1 ||
	    EVP_DigestSign(ctx, der, &dlen, msg, len) != 1)
		goto out;
	/* DER ECDSA-Sig-Value to JWS r || s, each left-padded to 48 bytes. */
	const unsigned char *p = der;
	es = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
	if (!es)
		goto out;
	const BIGNUM *r, *s;
	ECDSA_SIG_get0(es, &r, &s);
	ok = BN_bn2binpad(r, sig, SG_P384_COORD_LEN) == SG_P384_COORD_LEN &&
	     BN_bn2binpad(s, sig + SG_P384_COORD_LEN, SG_P384_COORD_LEN) == SG_P384_COORD_LEN;
out:
	sg_memzero(native, sizeof(native));
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(key);
	EVP_PKEY_CTX_free(kctx);
	return ok;
}
