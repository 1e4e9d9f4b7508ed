/* IKEv2/ESP algorithms (ipsec.h) over OpenSSL 3 EVP. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/dh.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <openssl/params.h>

#include <secureguard/sg_errors.h>

#include "crypto/crypto_int.h"
#include "crypto/ipsec.h"

/* ---- PRF, hashes, integrity ---------------------------------------------------------------- */

static int prf_mac(unsigned prf, size_t *len)
{
	switch (prf) {
	case SG_PRF_HMAC_SHA2_256:
		*len = 32;
		return SG__MAC_HMAC_SHA256;
	case SG_PRF_HMAC_SHA2_384:
		*len = 48;
		return SG__MAC_HMAC_SHA384;
	case SG_PRF_HMAC_SHA2_512:
		*len = 64;
		return SG__MAC_HMAC_SHA512;
	}
	*len = 0;
	return -1;
}

size_t sg_prf_len(unsigned prf)
{
	size_t len;
	(void)prf_mac(prf, &len);
	return len;
}

bool sg_prf(unsigned prf, uint8_t *out, const uint8_t *key, size_t keylen, const struct sg_iov *iov,
	    size_t niov)
{
	size_t len;
	int mac = prf_mac(prf, &len);
	const struct sg__algs *a = sg__algs();
	if (mac < 0 || a == NULL || a->mac[mac] == NULL)
		return false;
	return sg__mac_iov((enum sg__mac_id)mac, out, len, key, keylen, iov, niov);
}

#define PRF_PLUS_MAX_SEED 8

bool sg_prf_plus(unsigned prf, uint8_t *out, size_t outlen, const uint8_t *key, size_t keylen,
		 const struct sg_iov *seed, size_t nseed)
{
	size_t hl = sg_prf_len(prf);
	uint8_t t[SG_PRF_MAX_LEN];
	struct sg_iov iov[PRF_PLUS_MAX_SEED + 2];
	bool ok = false;

	if (hl == 0 || out == NULL || nseed > PRF_PLUS_MAX_SEED || outlen > 255 * hl)
		return false;
	/* RFC 7296 2.13: T1 = prf(K, S | 0x01), Tn = prf(K, Tn-1 | S | n). */
	for (size_t done = 0, n = 1; done < outlen; n++) {
		uint8_t counter = (uint8_t)n;
		size_t k = 0;
		if (n > 1)
			iov[k++] = (struct sg_iov){t, hl};
		for (size_t i = 0; i < nseed; i++)
			iov[k++] = seed[i];
		iov[k++] = (struct sg_iov){&counter, 1};
		if (!sg_prf(prf, t, key, keylen, iov, k))
			goto out;
		size_t take = SG_MIN(hl, outlen - done);
		memcpy(out + done, t, take);
		done += take;
	}
	ok = true;
out:
	sg_memzero(t, sizeof(t));
	if (!ok)
		sg_memzero(out, outlen);
	return ok;
}

bool sg_sha2(size_t len, uint8_t *out, const struct sg_iov *iov, size_t niov)
{
	enum sg__md_id id;
	switch (len) {
	case 32:
		id = SG__MD_SHA256;
		break;
	case 48:
		id = SG__MD_SHA384;
		break;
	case 64:
		id = SG__MD_SHA512;
		break;
	default:
		return false;
	}
	const struct sg__algs *a = sg__algs();
	return a && a->md[id] && sg__digest_iov(id, out, len, iov, niov);
}

bool sg_sha1(uint8_t out[20], const struct sg_iov *iov, size_t niov)
{
	const struct sg__algs *a = sg__algs();
	return a && a->md[SG__MD_SHA1] && sg__digest_iov(SG__MD_SHA1, out, 20, iov, niov);
}

/* RFC 4868 2.1: key length = the hash's output, ICV = half of it. */
static unsigned integ_prf(unsigned integ)
{
	switch (integ) {
	case SG_INTEG_HMAC_SHA2_256_128:
		return SG_PRF_HMAC_SHA2_256;
	case SG_INTEG_HMAC_SHA2_384_192:
		return SG_PRF_HMAC_SHA2_384;
	case SG_INTEG_HMAC_SHA2_512_256:
		return SG_PRF_HMAC_SHA2_512;
	}
	return 0;
}

size_t sg_integ_key_len(unsigned integ)
{
	return sg_prf_len(integ_prf(integ));
}

size_t sg_integ_icv_len(unsigned integ)
{
	return sg_prf_len(integ_prf(integ)) / 2;
}

bool sg_integ_icv(unsigned integ, uint8_t *icv, const uint8_t *key, const struct sg_iov *iov,
		  size_t niov)
{
	uint8_t full[SG_PRF_MAX_LEN];
	unsigned prf = integ_prf(integ);
	size_t kl = sg_prf_len(prf);
	if (kl == 0 || !sg_prf(prf, full, key, kl, iov, niov)) {
		if (kl)
			sg_memzero(icv, kl / 2);
		return false;
	}
	memcpy(icv, full, kl / 2);
	sg_memzero(full, sizeof(full));
	return true;
}

bool sg_integ_verify(unsigned integ, const uint8_t *icv, const uint8_t *key,
		     const struct sg_iov *iov, size_t niov)
{
	uint8_t want[SG_PRF_MAX_LEN / 2];
	size_t n = sg_integ_icv_len(integ);
	bool ok = n && sg_integ_icv(integ, want, key, iov, niov) && sg_memeq(want, icv, n);
	sg_memzero(want, sizeof(want));
	return ok;
}

/* ---- AES-CBC ------------------------------------------------------------------------------- */

bool sg_aes_cbc(bool encrypt, uint8_t *out, const uint8_t *in, size_t len, const uint8_t *key,
		size_t keylen, const uint8_t iv[16])
{
	const struct sg__algs *a = sg__algs();
	enum sg__cipher_id id = keylen == 16   ? SG__CIPHER_AES128_CBC
				: keylen == 24 ? SG__CIPHER_AES192_CBC
					       : SG__CIPHER_AES256_CBC;
	EVP_CIPHER_CTX *ctx;
	int outl = 0, fin = 0;
	bool ok = false;

	if (a == NULL || (keylen != 16 && keylen != 24 && keylen != 32) || len % 16 != 0 ||
	    len > INT_MAX || out == NULL || (in == NULL && len) || key == NULL || iv == NULL ||
	    a->cipher[id] == NULL)
		return false;
	/* IKE messages only (control plane): a context per call is fine. */
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL || EVP_CipherInit_ex2(ctx, a->cipher[id], key, iv, encrypt, NULL) != 1 ||
	    EVP_CIPHER_CTX_set_padding(ctx, 0) != 1)
		goto out;
	if (len && EVP_CipherUpdate(ctx, out, &outl, in, (int)len) != 1)
		goto out;
	ok = EVP_CipherFinal_ex(ctx, out + outl, &fin) == 1 && (size_t)(outl + fin) == len;
out:
	EVP_CIPHER_CTX_free(ctx);
	if (!ok)
		sg_memzero(out, len);
	return ok;
}

/* ---- AEAD ---------------------------------------------------------------------------------- */

struct sg_aead *sg_ipsec_aead_new(unsigned alg, const uint8_t *keymat, size_t keylen, bool encrypt)
{
	enum sg__cipher_id id;
	if (keymat == NULL)
		return NULL;
	if (alg == SG_IPSEC_AES_GCM_16 && keylen == 16)
		id = SG__CIPHER_AES128_GCM;
	else if (alg == SG_IPSEC_AES_GCM_16 && keylen == 32)
		id = SG__CIPHER_AES256_GCM;
	else if (alg == SG_IPSEC_CHACHA20_POLY1305 && keylen == 32)
		id = SG__CIPHER_CHACHA20_POLY1305;
	else
		return NULL;
	return sg__aead_new_cipher(id, keymat, keylen, keymat + keylen, SG_IPSEC_SALT_LEN, encrypt);
}

static void ipsec_nonce(uint8_t nonce[12], const struct sg_aead *k, const uint8_t iv[8])
{
	size_t sl;
	const uint8_t *salt = sg__aead_salt(k, &sl);
	/* RFC 4106 4 and RFC 7634 2: nonce = salt (4 bytes) || IV (8 bytes). */
	memcpy(nonce, salt, SG_IPSEC_SALT_LEN);
	memcpy(nonce + SG_IPSEC_SALT_LEN, iv, SG_IPSEC_IV_LEN);
}

bool sg_ipsec_aead_seal(struct sg_aead *k, unsigned lane, uint8_t *dst, const uint8_t *src,
			size_t len, const uint8_t *ad, size_t adlen,
			const uint8_t iv[SG_IPSEC_IV_LEN])
{
	uint8_t nonce[12];
	if (k == NULL || iv == NULL)
		return false;
	ipsec_nonce(nonce, k, iv);
	return sg__aead_seal_ad(k, lane, dst, src, len, ad, adlen, nonce);
}

bool sg_ipsec_aead_open(struct sg_aead *k, unsigned lane, uint8_t *dst, const uint8_t *src,
			size_t len, const uint8_t *ad, size_t adlen,
			const uint8_t iv[SG_IPSEC_IV_LEN])
{
	uint8_t nonce[12];
	if (k == NULL || iv == NULL)
		return false;
	ipsec_nonce(nonce, k, iv);
	return sg__aead_open_ad(k, lane, dst, src, len, ad, adlen, nonce);
}

bool sg_ipsec_aead_fips(unsigned alg, size_t keylen)
{
	return alg == SG_IPSEC_AES_GCM_16 && (keylen == 16 || keylen == 32);
}

/* ---- key exchange -------------------------------------------------------------------------- */

struct sg_ke {
	unsigned group;
	EVP_PKEY *key;
};

struct group_info {
	unsigned id;
	const char *name; /* strongSwan's keyword */
	const char *ossl; /* OpenSSL group or curve name */
	int nid;	  /* ECP curves */
	size_t pub_len;	  /* IKE encoding */
	size_t shared_len;
	bool fips;
};

static const struct group_info groups[] = {
    {SG_KE_MODP_2048, "modp2048", "modp_2048", 0, 256, 256, true},
    {SG_KE_MODP_3072, "modp3072", "modp_3072", 0, 384, 384, true},
    {SG_KE_ECP_256, "ecp256", "P-256", NID_X9_62_prime256v1, 64, 32, true},
    {SG_KE_ECP_384, "ecp384", "P-384", NID_secp384r1, 96, 48, true},
    {SG_KE_ECP_521, "ecp521", "P-521", NID_secp521r1, 132, 66, true},
    {SG_KE_CURVE25519, "curve25519", "X25519", 0, 32, 32, false},
};

static const struct group_info *group_info(unsigned id)
{
	for (size_t i = 0; i < SG_ARRAY_LEN(groups); i++)
		if (groups[i].id == id)
			return &groups[i];
	return NULL;
}

static bool is_modp(const struct group_info *g)
{
	return g->id == SG_KE_MODP_2048 || g->id == SG_KE_MODP_3072;
}

static const char *group_propq(const struct sg__algs *a, const struct group_info *g)
{
	return g->id == SG_KE_CURVE25519 ? a->classic_propq : a->fips_propq;
}

size_t sg_ke_public_len(unsigned group)
{
	const struct group_info *g = group_info(group);
	return g ? g->pub_len : 0;
}

size_t sg_ke_shared_len(unsigned group)
{
	const struct group_info *g = group_info(group);
	return g ? g->shared_len : 0;
}

bool sg_ke_group_fips(unsigned group)
{
	const struct group_info *g = group_info(group);
	return g && g->fips;
}

const char *sg_ke_group_name(unsigned group)
{
	const struct group_info *g = group_info(group);
	return g ? g->name : NULL;
}

unsigned sg_ke_group(const struct sg_ke *ke)
{
	return ke->group;
}

void sg_ke_free(struct sg_ke *ke)
{
	if (!ke)
		return;
	EVP_PKEY_free(ke->key); /* OpenSSL clears private key material */
	free(ke);
}

static EVP_PKEY *generate(const struct sg__algs *a, const struct group_info *g)
{
	const char *pq = group_propq(a, g);
	if (g->id == SG_KE_CURVE25519)
		return a->classic_ok ? EVP_PKEY_Q_keygen(NULL, pq, "X25519") : NULL;
	if (!is_modp(g))
		return EVP_PKEY_Q_keygen(NULL, pq, "EC", g->ossl);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "DH", pq);
	EVP_PKEY *key = NULL;
	OSSL_PARAM params[2] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)g->ossl, 0),
	    OSSL_PARAM_construct_end()};
	if (ctx == NULL || EVP_PKEY_keygen_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_params(ctx, params) != 1 || EVP_PKEY_generate(ctx, &key) != 1)
		key = NULL;
	EVP_PKEY_CTX_free(ctx);
	return key;
}

bool sg_ke_supported(unsigned group)
{
	const struct group_info *g = group_info(group);
	const struct sg__algs *a = sg__algs();
	if (!g || !a)
		return false;
	if (g->id == SG_KE_CURVE25519)
		return a->classic_ok;
	return true;
}

struct sg_ke *sg_ke_new(unsigned group)
{
	const struct group_info *g = group_info(group);
	const struct sg__algs *a = sg__algs();
	struct sg_ke *ke;
	if (!g || !a || (ke = calloc(1, sizeof(*ke))) == NULL)
		return NULL;
	ke->group = group;
	ke->key = generate(a, g);
	if (!ke->key) {
		free(ke);
		return NULL;
	}
	return ke;
}

/* An EC key pair from a big-endian scalar: the public point by EC_POINT_mul (OpenSSL 3.0's
 * fromdata does not derive it; see sg_p384_public in fips.c), then both imported. */
static EVP_PKEY *ec_from_private(const struct sg__algs *a, const struct group_info *g,
				 const uint8_t *priv, size_t len)
{
	EC_GROUP *grp = EC_GROUP_new_by_curve_name_ex(NULL, a->fips_propq, g->nid);
	EC_POINT *pt = NULL;
	BIGNUM *d = BN_secure_new();
	EVP_PKEY *key = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	uint8_t pub[1 + 2 * 66], native[66];
	size_t plen = 1 + g->pub_len;

	if (grp == NULL || d == NULL || len != g->shared_len || (pt = EC_POINT_new(grp)) == NULL ||
	    BN_bin2bn(priv, (int)len, d) == NULL || BN_is_zero(d) ||
	    BN_cmp(d, EC_GROUP_get0_order(grp)) >= 0)
		goto out;
	BN_set_flags(d, BN_FLG_CONSTTIME);
	if (EC_POINT_mul(grp, pt, d, NULL, NULL, NULL) != 1 ||
	    EC_POINT_point2oct(grp, pt, POINT_CONVERSION_UNCOMPRESSED, pub, plen, NULL) != plen)
		goto out;
	/* OSSL_PARAM integers are native-endian (OSSL_PARAM(3)). */
	if (BN_bn2nativepad(d, native, (int)len) != (int)len)
		goto out;
	OSSL_PARAM params[4] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)g->ossl, 0),
	    OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_PRIV_KEY, native, len),
	    OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, plen),
	    OSSL_PARAM_construct_end()};
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", a->fips_propq);
	if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_KEYPAIR, params) != 1)
		key = NULL;
out:
	sg_memzero(native, sizeof(native));
	EVP_PKEY_CTX_free(ctx);
	BN_clear_free(d);
	EC_POINT_free(pt);
	EC_GROUP_free(grp);
	return key;
}

struct sg_ke *sg_ke_from_private(unsigned group, const uint8_t *priv, size_t len)
{
	const struct group_info *g = group_info(group);
	const struct sg__algs *a = sg__algs();
	struct sg_ke *ke;
	if (!g || !a || !priv || is_modp(g) || (ke = calloc(1, sizeof(*ke))) == NULL)
		return NULL;
	ke->group = group;
	if (g->id == SG_KE_CURVE25519)
		ke->key = len == 32 && a->classic_ok
			      ? EVP_PKEY_new_raw_private_key_ex(NULL, "X25519", a->classic_propq,
								priv, len)
			      : NULL;
	else
		ke->key = ec_from_private(a, g, priv, len);
	if (!ke->key) {
		free(ke);
		return NULL;
	}
	return ke;
}

bool sg_ke_public(const struct sg_ke *ke, uint8_t *out)
{
	const struct group_info *g = group_info(ke->group);
	uint8_t buf[1 + 2 * 66];
	size_t n = 0;

	if (g->id == SG_KE_CURVE25519) {
		n = 32;
		return EVP_PKEY_get_raw_public_key(ke->key, out, &n) == 1 && n == 32;
	}
	if (!is_modp(g)) {
		/* RFC 5903 7: x || y without SEC1's 0x04 prefix. */
		if (EVP_PKEY_get_octet_string_param(ke->key, OSSL_PKEY_PARAM_PUB_KEY, buf,
						    sizeof(buf), &n) != 1 ||
		    n != 1 + g->pub_len || buf[0] != 0x04)
			return false;
		memcpy(out, buf + 1, g->pub_len);
		return true;
	}
	/* RFC 7296 3.4: g^x big-endian, zero-padded to the prime's length. */
	BIGNUM *y = NULL;
	bool ok = EVP_PKEY_get_bn_param(ke->key, OSSL_PKEY_PARAM_PUB_KEY, &y) == 1 &&
		  BN_bn2binpad(y, out, (int)g->pub_len) == (int)g->pub_len;
	BN_free(y);
	return ok;
}

/* The peer's public value as an EVP_PKEY, validated; NULL if it is not acceptable. */
static EVP_PKEY *peer_key(const struct sg__algs *a, const struct group_info *g, const uint8_t *peer,
			  size_t len)
{
	const char *pq = group_propq(a, g);
	EVP_PKEY *key = NULL;
	EVP_PKEY_CTX *ctx = NULL, *chk = NULL;
	uint8_t buf[1 + 2 * 66];
	BIGNUM *y = NULL;
	uint8_t *native = NULL;

	if (len != g->pub_len)
		return NULL;
	if (g->id == SG_KE_CURVE25519)
		return EVP_PKEY_new_raw_public_key_ex(NULL, "X25519", pq, peer, len);
	OSSL_PARAM params[3];
	params[0] =
	    OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)g->ossl, 0);
	if (!is_modp(g)) {
		buf[0] = 0x04;
		memcpy(buf + 1, peer, len);
		params[1] =
		    OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, buf, len + 1);
	} else {
		native = malloc(len);
		if (native == NULL || (y = BN_bin2bn(peer, (int)len, NULL)) == NULL ||
		    BN_bn2nativepad(y, native, (int)len) != (int)len)
			goto out;
		params[1] = OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_PUB_KEY, native, len);
	}
	params[2] = OSSL_PARAM_construct_end();
	ctx = EVP_PKEY_CTX_new_from_name(NULL, is_modp(g) ? "DH" : "EC", pq);
	if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1) {
		key = NULL;
		goto out;
	}
	/* Full public key validation: EC point on the curve (SP 800-56A 5.6.2.3.3); DH
	 * 2 <= y <= p-2 and y^q = 1 for the named safe-prime group (5.6.2.3.1). */
	chk = EVP_PKEY_CTX_new_from_pkey(NULL, key, pq);
	if (chk == NULL || EVP_PKEY_public_check(chk) != 1) {
		EVP_PKEY_free(key);
		key = NULL;
	}
out:
	EVP_PKEY_CTX_free(chk);
	EVP_PKEY_CTX_free(ctx);
	BN_free(y);
	free(native);
	return key;
}

int sg_ke_derive(struct sg_ke *ke, const uint8_t *peer, size_t peer_len, uint8_t *shared)
{
	const struct group_info *g = group_info(ke->group);
	const struct sg__algs *a = sg__algs();
	EVP_PKEY *pk = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	size_t n = g ? g->shared_len : 0;
	int err = SG_ECRYPTO;

	if (!g || !a || !peer || !shared)
		return SG_EINVAL;
	pk = peer_key(a, g, peer, peer_len);
	if (!pk) {
		err = SG_EINVAL;
		goto out;
	}
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, ke->key, group_propq(a, g));
	if (ctx == NULL || EVP_PKEY_derive_init(ctx) != 1)
		goto out;
	/* RFC 7296 2.14: g^ir is the full-length big-endian value, leading zeros kept. */
	if (is_modp(g) && EVP_PKEY_CTX_set_dh_pad(ctx, 1) != 1)
		goto out;
	if (EVP_PKEY_derive_set_peer_ex(ctx, pk, 0) != 1) {
		err = SG_EINVAL;
		goto out;
	}
	if (EVP_PKEY_derive(ctx, shared, &n) != 1 || n != g->shared_len) {
		/* X25519 fails here on an all-zero result (a low-order point): RFC 8031 2.2. */
		err = g->id == SG_KE_CURVE25519 ? SG_EINVAL : SG_ECRYPTO;
		goto out;
	}
	if (g->id == SG_KE_CURVE25519 && sg_is_zero(shared, n)) {
		err = SG_EINVAL;
		goto out;
	}
	err = 0;
out:
	if (err)
		sg_memzero(shared, g ? g->shared_len : 0);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return err;
}
