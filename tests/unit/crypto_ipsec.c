/* Known-answer tests for the IKEv2/ESP algorithms (src/crypto/ipsec.c). Every vector names its
 * source:
 *   RFC 5903 8.1-8.3   ECP groups 19, 20, 21 (P-521: the RFC's scalars and shared x; the
 *                      public points are derived and checked by agreement from both sides)
 *   RFC 8031 2 / RFC 7748 6.1   Curve25519 (group 31)
 *   RFC 7634 A.1, A.2  ChaCha20-Poly1305 for ESP and for IKEv2's SK payload
 *   RFC 4106 4         AES-GCM-16 in ESP form (key || salt, 8-byte IV) on the GCM
 *                      specification's test cases 4 (AES-128) and 16 (AES-256), McGrew & Viega
 *   RFC 4231 4.3       HMAC-SHA-256/384/512 ("Jefe"), the PRFs and, truncated, RFC 4868 ICVs
 *   NIST SP 800-38A F.2.1, F.2.5   AES-CBC-128/256
 *   NIST SP 800-135 IKEv2 KDF      SKEYSEED, prf+ DKM, child DKM with and without D-H, rekey
 *                      SKEYSEED, SHA-256 case of the NIST ACVP server's IKEv2 KDF known-answer
 *                      test (usnistgov/ACVP-Server, IkeV2Tests "IKEv2 SHA2-256")
 * MODP groups 14 and 15 have no published IKE vector: both sides must agree, and the RFC 7296 /
 * SP 800-56A public value checks must refuse 0, 1 and values not below p. */
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#include <secureguard/sg_errors.h>

#include "crypto/ipsec.h"
#include "ikev2_kdf_vector.h"

static int setup(void **state)
{
	(void)state;
	return sg_crypto_init();
}

/* ---- ECP (RFC 5903) ------------------------------------------------------------------------ */

struct ecp_vec {
	unsigned group;
	const char *i, *gi, *r, *gr, *shared;
};

static void check_ecp(const struct ecp_vec *v)
{
	uint8_t i[66], r[66], gi[132], gr[132], shared[66], got[132], s1[66], s2[66];
	size_t flen = sg_ke_shared_len(v->group), plen = sg_ke_public_len(v->group);
	assert_int_equal(test_unhex_cap(i, sizeof(i), v->i), flen);
	assert_int_equal(test_unhex_cap(r, sizeof(r), v->r), flen);
	assert_int_equal(test_unhex_cap(shared, sizeof(shared), v->shared), flen);
	struct sg_ke *a = sg_ke_from_private(v->group, i, flen);
	struct sg_ke *b = sg_ke_from_private(v->group, r, flen);
	assert_non_null(a);
	assert_non_null(b);
	if (v->gi) {
		assert_int_equal(test_unhex_cap(gi, sizeof(gi), v->gi), plen);
		assert_int_equal(test_unhex_cap(gr, sizeof(gr), v->gr), plen);
		assert_true(sg_ke_public(a, got));
		assert_memory_equal(got, gi, plen);
		assert_true(sg_ke_public(b, got));
		assert_memory_equal(got, gr, plen);
	} else {
		assert_true(sg_ke_public(a, gi));
		assert_true(sg_ke_public(b, gr));
	}
	assert_int_equal(sg_ke_derive(a, gr, plen, s1), 0);
	assert_int_equal(sg_ke_derive(b, gi, plen, s2), 0);
	assert_memory_equal(s1, shared, flen);
	assert_memory_equal(s2, shared, flen);
	/* A point off the curve, and a wrong length, are refused. */
	gr[plen - 1] ^= 1;
	assert_int_equal(sg_ke_derive(a, gr, plen, s1), SG_EINVAL);
	assert_true(sg_is_zero(s1, flen));
	assert_int_equal(sg_ke_derive(a, gr, plen - 1, s1), SG_EINVAL);
	memset(got, 0, plen); /* the point at infinity has no affine encoding */
	assert_int_equal(sg_ke_derive(a, got, plen, s1), SG_EINVAL);
	sg_ke_free(a);
	sg_ke_free(b);
}

static void test_ecp_rfc5903(void **state)
{
	static const struct ecp_vec vecs[] = {
	    {SG_KE_ECP_256, /* 8.1 */
	     "C88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433",
	     "DAD0B65394221CF9B051E1FECA5787D098DFE637FC90B9EF945D0C3772581180"
	     "5271A0461CDB8252D61F1C456FA3E59AB1F45B33ACCF5F58389E0577B8990BB3",
	     "C6EF9C5D78AE012A011164ACB397CE2088685D8F06BF9BE0B283AB46476BEE53",
	     "D12DFB5289C8D4F81208B70270398C342296970A0BCCB74C736FC7554494BF63"
	     "56FBF3CA366CC23E8157854C13C58D6AAC23F046ADA30F8353E74F33039872AB",
	     "D6840F6B42F6EDAFD13116E0E12565202FEF8E9ECE7DCE03812464D04B9442DE"},
	    {SG_KE_ECP_384, /* 8.2 */
	     "099F3C7034D4A2C699884D73A375A67F7624EF7C6B3C0F160647B67414DCE655"
	     "E35B538041E649EE3FAEF896783AB194",
	     "667842D7D180AC2CDE6F74F37551F55755C7645C20EF73E31634FE72B4C55EE6"
	     "DE3AC808ACB4BDB4C88732AEE95F41AA"
	     "9482ED1FC0EEB9CAFC4984625CCFC23F65032149E0E144ADA024181535A0F38E"
	     "EB9FCFF3C2C947DAE69B4C634573A81C",
	     "41CB0779B4BDB85D47846725FBEC3C9430FAB46CC8DC5060855CC9BDA0AA2942"
	     "E0308312916B8ED2960E4BD55A7448FC",
	     "E558DBEF53EECDE3D3FCCFC1AEA08A89A987475D12FD950D83CFA41732BC509D"
	     "0D1AC43A0336DEF96FDA41D0774A3571"
	     "DCFBEC7AACF3196472169E838430367F66EEBE3C6E70C416DD5F0C68759DD1FF"
	     "F83FA40142209DFF5EAAD96DB9E6386C",
	     "11187331C279962D93D604243FD592CB9D0A926F422E47187521287E7156C5C4"
	     "D603135569B9E9D09CF5D4A270F59746"},
	    {SG_KE_ECP_521, /* 8.3 */
	     "0037ADE9319A89F4DABDB3EF411AACCCA5123C61ACAB57B5393DCE47608172A0"
	     "95AA85A30FE1C2952C6771D937BA9777F5957B2639BAB072462F68C27A57382D4A52",
	     NULL,
	     "0145BA99A847AF43793FDD0E872E7CDFA16BE30FDC780F97BCCC3F078380201E"
	     "9C677D600B343757A3BDBF2A3163E4C2F869CCA7458AA4A4EFFC311F5CB151685EB9",
	     NULL,
	     "01144C7D79AE6956BC8EDB8E7C787C4521CB086FA64407F97894E5E6B2D79B04"
	     "D1427E73CA4BAA240A34786859810C06B3C715A3A8CC3151F2BEE417996D19F3DDEA"},
	};
	(void)state;
	for (size_t k = 0; k < SG_ARRAY_LEN(vecs); k++)
		check_ecp(&vecs[k]);
}

/* ---- Curve25519 (RFC 8031, vectors of RFC 7748 6.1) ---------------------------------------- */

static void test_curve25519(void **state)
{
	uint8_t a_priv[32], a_pub[32], b_priv[32], b_pub[32], shared[32], out[32];
	(void)state;
	HEX(a_priv, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
	HEX(a_pub, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
	HEX(b_priv, "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
	HEX(b_pub, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
	HEX(shared, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
	struct sg_ke *a = sg_ke_from_private(SG_KE_CURVE25519, a_priv, 32);
	struct sg_ke *b = sg_ke_from_private(SG_KE_CURVE25519, b_priv, 32);
	assert_non_null(a);
	assert_non_null(b);
	assert_true(sg_ke_public(a, out));
	assert_memory_equal(out, a_pub, 32);
	assert_true(sg_ke_public(b, out));
	assert_memory_equal(out, b_pub, 32);
	assert_int_equal(sg_ke_derive(a, b_pub, 32, out), 0);
	assert_memory_equal(out, shared, 32);
	assert_int_equal(sg_ke_derive(b, a_pub, 32, out), 0);
	assert_memory_equal(out, shared, 32);
	/* RFC 8031 2.2: the all-zero result of a low-order point is refused. */
	memset(b_pub, 0, 32);
	assert_int_equal(sg_ke_derive(a, b_pub, 32, out), SG_EINVAL);
	assert_true(sg_is_zero(out, 32));
	assert_int_equal(sg_ke_derive(a, a_pub, 31, out), SG_EINVAL);
	assert_false(sg_ke_group_fips(SG_KE_CURVE25519));
	assert_string_equal(sg_ke_group_name(SG_KE_CURVE25519), "curve25519");
	sg_ke_free(a);
	sg_ke_free(b);
}

/* ---- MODP (RFC 3526 groups) ---------------------------------------------------------------- */

static void check_modp(unsigned group, size_t len)
{
	uint8_t pa[384], pb[384], s1[384], s2[384], bad[384];
	assert_int_equal(sg_ke_public_len(group), len);
	assert_int_equal(sg_ke_shared_len(group), len);
	assert_true(sg_ke_group_fips(group));
	struct sg_ke *a = sg_ke_new(group), *b = sg_ke_new(group);
	assert_non_null(a);
	assert_non_null(b);
	assert_true(sg_ke_public(a, pa));
	assert_true(sg_ke_public(b, pb));
	assert_int_equal(sg_ke_derive(a, pb, len, s1), 0);
	assert_int_equal(sg_ke_derive(b, pa, len, s2), 0);
	assert_memory_equal(s1, s2, len);
	/* 0, 1 and values at or above p are refused (RFC 7296 5, SP 800-56A 5.6.2.3.1). The
	 * RFC 3526 primes start and end with 64 one-bits but are not all ones, so 0xff..ff and
	 * 0xff..fe are above p. (p-1 itself is refused by the same OpenSSL check, 2 <= y <= p-2;
	 * the test does not carry the prime's digits to build it.) */
	memset(bad, 0, len);
	assert_int_equal(sg_ke_derive(a, bad, len, s1), SG_EINVAL);
	assert_true(sg_is_zero(s1, len));
	bad[len - 1] = 1;
	assert_int_equal(sg_ke_derive(a, bad, len, s1), SG_EINVAL);
	memset(bad, 0xff, len);
	assert_int_equal(sg_ke_derive(a, bad, len, s1), SG_EINVAL);
	bad[len - 1] = 0xfe;
	assert_int_equal(sg_ke_derive(a, bad, len, s1), SG_EINVAL);
	assert_int_equal(sg_ke_derive(a, pb, len - 1, s1), SG_EINVAL);
	sg_ke_free(a);
	sg_ke_free(b);
}

static void test_modp(void **state)
{
	(void)state;
	check_modp(SG_KE_MODP_2048, 256);
	check_modp(SG_KE_MODP_3072, 384);
	assert_int_equal(sg_ke_public_len(1), 0);
	assert_null(sg_ke_new(2));
	assert_null(sg_ke_from_private(SG_KE_MODP_2048, (const uint8_t *)"x", 1));
}

static void test_generated_ecp_and_x25519(void **state)
{
	static const unsigned groups[] = {SG_KE_ECP_256, SG_KE_ECP_384, SG_KE_ECP_521,
					  SG_KE_CURVE25519};
	(void)state;
	for (size_t g = 0; g < SG_ARRAY_LEN(groups); g++) {
		uint8_t pa[132], pb[132], s1[66], s2[66];
		size_t pl = sg_ke_public_len(groups[g]), sl = sg_ke_shared_len(groups[g]);
		struct sg_ke *a = sg_ke_new(groups[g]), *b = sg_ke_new(groups[g]);
		assert_non_null(a);
		assert_non_null(b);
		assert_int_equal(sg_ke_group(a), groups[g]);
		assert_true(sg_ke_public(a, pa));
		assert_true(sg_ke_public(b, pb));
		assert_int_equal(sg_ke_derive(a, pb, pl, s1), 0);
		assert_int_equal(sg_ke_derive(b, pa, pl, s2), 0);
		assert_memory_equal(s1, s2, sl);
		sg_ke_free(a);
		sg_ke_free(b);
	}
}

/* ---- AEAD ---------------------------------------------------------------------------------- */

struct aead_vec {
	const char *name;
	unsigned alg;
	size_t keylen;
	const char *keymat, *iv, *aad, *plain, *cipher;
};

static void check_aead(const struct aead_vec *v)
{
	uint8_t keymat[36], iv[8], aad[64], plain[128], cipher[144], out[144];
	size_t kl = test_unhex_cap(keymat, sizeof(keymat), v->keymat);
	assert_int_equal(kl, v->keylen + 4);
	HEX(iv, v->iv);
	size_t al = test_unhex_cap(aad, sizeof(aad), v->aad);
	size_t pl = test_unhex_cap(plain, sizeof(plain), v->plain);
	size_t cl = test_unhex_cap(cipher, sizeof(cipher), v->cipher);
	assert_int_equal(cl, pl + 16);
	struct sg_aead *e = sg_ipsec_aead_new(v->alg, keymat, v->keylen, true);
	struct sg_aead *d = sg_ipsec_aead_new(v->alg, keymat, v->keylen, false);
	assert_non_null(e);
	assert_non_null(d);
	assert_true(sg_ipsec_aead_seal(e, 0, out, plain, pl, aad, al, iv));
	if (memcmp(out, cipher, cl) != 0)
		fail_msg("%s: ciphertext differs", v->name);
	/* Another lane gives the same, and opening in place restores the plaintext. */
	assert_true(sg_ipsec_aead_seal(e, 3, out, plain, pl, aad, al, iv));
	assert_memory_equal(out, cipher, cl);
	assert_true(sg_ipsec_aead_open(d, 1, out, out, cl, aad, al, iv));
	assert_memory_equal(out, plain, pl);
	/* A flipped bit anywhere (ciphertext, ICV, associated data, IV) fails and wipes. */
	memcpy(out, cipher, cl);
	out[cl - 1] ^= 1;
	assert_false(sg_ipsec_aead_open(d, 0, out, out, cl, aad, al, iv));
	assert_true(sg_is_zero(out, pl));
	memcpy(out, cipher, cl);
	if (al) {
		aad[0] ^= 0x80;
		assert_false(sg_ipsec_aead_open(d, 0, out, out, cl, aad, al, iv));
		aad[0] ^= 0x80;
	}
	memcpy(out, cipher, cl);
	iv[7] ^= 1;
	assert_false(sg_ipsec_aead_open(d, 0, out, out, cl, aad, al, iv));
	/* Direction is fixed at creation. */
	assert_false(sg_ipsec_aead_open(e, 0, out, cipher, cl, aad, al, iv));
	sg_aead_free(e);
	sg_aead_free(d);
}

static void test_aead_vectors(void **state)
{
	static const struct aead_vec vecs[] = {
	    {"RFC 7634 A.1 (ESP)", SG_IPSEC_CHACHA20_POLY1305, 32,
	     "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f a0a1a2a3",
	     "1011121314151617", "0102030400000005",
	     "45000054a6f200004001e778c6336405c000020508005b7a3a080000553bec100007362708090a0b0c"
	     "0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435"
	     "363701020204",
	     "24039428b97f417e3c13753a4f05087b67c352e6a7fab1b982d466ef407ae5c614ee8099d52844eb61"
	     "aa95dfab4c02f72aa71e7c4c4f64c9befe2facc638e8f3cbec163fac469b502773f6fb94e664da9165"
	     "b82829f641e076aaa8266b7fb0f7b11b369907e1ad43"},
	    {"RFC 7634 A.2 (IKEv2)", SG_IPSEC_CHACHA20_POLY1305, 32,
	     "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f a0a1a2a3",
	     "1011121314151617", "c0c1c2c3c4c5c6c7d0d1d2d3d4d5d6d72e202500000000090000004529000029",
	     "0000000c000040010000000a00",
	     "610394701f8d017f7c129248896b71bfe25236efd7cdc67066906315b2"},
	    {"GCM test case 4 in RFC 4106 form", SG_IPSEC_AES_GCM_16, 16,
	     "feffe9928665731c6d6a8f9467308308 cafebabe", "facedbaddecaf888",
	     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
	     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532f"
	     "cf0e2449a6b525b16aedf5aa0de657ba637b39",
	     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d"
	     "8f6a5aac84aa051ba30b396a0aac973d58e0915bc94fbc3221a5db94fae95ae7121a47"},
	    {"GCM test case 16 in RFC 4106 form", SG_IPSEC_AES_GCM_16, 32,
	     "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308 cafebabe",
	     "facedbaddecaf888", "feedfacedeadbeeffeedfacedeadbeefabaddad2",
	     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532f"
	     "cf0e2449a6b525b16aedf5aa0de657ba637b39",
	     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7"
	     "b08b1056828838c5f61e6393ba7a0abcc9f66276fc6ece0f4e1768cddf8853bb2d551b"},
	};
	(void)state;
	for (size_t k = 0; k < SG_ARRAY_LEN(vecs); k++)
		check_aead(&vecs[k]);
	uint8_t km[36] = {0};
	assert_null(sg_ipsec_aead_new(SG_IPSEC_AES_GCM_16, km, 24, true)); /* not offered */
	assert_null(sg_ipsec_aead_new(SG_IPSEC_CHACHA20_POLY1305, km, 16, true));
	assert_null(sg_ipsec_aead_new(3, km, 32, true));
	assert_true(sg_ipsec_aead_fips(SG_IPSEC_AES_GCM_16, 32));
	assert_false(sg_ipsec_aead_fips(SG_IPSEC_CHACHA20_POLY1305, 32));
}

/* ---- HMAC / PRF / integrity (RFC 4231 4.3, RFC 4868) ---------------------------------------- */

static void test_prf_and_integ(void **state)
{
	static const char *const want[] = {
	    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
	    "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239"
	    "ecfab21649",
	    "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f"
	    "65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
	};
	static const unsigned prfs[] = {SG_PRF_HMAC_SHA2_256, SG_PRF_HMAC_SHA2_384,
					SG_PRF_HMAC_SHA2_512};
	static const unsigned integs[] = {SG_INTEG_HMAC_SHA2_256_128, SG_INTEG_HMAC_SHA2_384_192,
					  SG_INTEG_HMAC_SHA2_512_256};
	const char *data = "what do ya want for nothing?";
	/* Split across iovs: the MAC sees the concatenation. */
	struct sg_iov iov[2] = {{data, 10}, {data + 10, strlen(data) - 10}};
	(void)state;
	for (size_t k = 0; k < 3; k++) {
		uint8_t exp[64], out[64], key[64];
		size_t n = test_unhex_cap(exp, sizeof(exp), want[k]);
		assert_int_equal(sg_prf_len(prfs[k]), n);
		assert_true(sg_prf(prfs[k], out, (const uint8_t *)"Jefe", 4, iov, 2));
		assert_memory_equal(out, exp, n);
		/* RFC 4868: the ICV is the first half; the key is n bytes. */
		assert_int_equal(sg_integ_key_len(integs[k]), n);
		assert_int_equal(sg_integ_icv_len(integs[k]), n / 2);
		memset(key, 0x0b, sizeof(key));
		assert_true(sg_prf(prfs[k], exp, key, n, iov, 2));
		assert_true(sg_integ_icv(integs[k], out, key, iov, 2));
		assert_memory_equal(out, exp, n / 2);
		assert_true(sg_integ_verify(integs[k], exp, key, iov, 2));
		exp[n / 2 - 1] ^= 1;
		assert_false(sg_integ_verify(integs[k], exp, key, iov, 2));
	}
	uint8_t o[64];
	assert_int_equal(sg_prf_len(2), 0);
	assert_false(sg_prf(2, o, (const uint8_t *)"k", 1, iov, 2));
}

/* ---- AES-CBC (SP 800-38A F.2.1, F.2.5) ----------------------------------------------------- */

static void test_aes_cbc(void **state)
{
	static const char *pt = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
				"30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";
	static const struct {
		const char *key, *ct;
	} v[] = {
	    {"2b7e151628aed2a6abf7158809cf4f3c",
	     "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2"
	     "73bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7"},
	    {"603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
	     "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d"
	     "39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b"},
	};
	uint8_t iv[16], p[64], c[64], out[64], key[32];
	(void)state;
	fill_seq(iv, 16, 0);
	HEX(p, pt);
	for (size_t k = 0; k < 2; k++) {
		size_t kl = test_unhex_cap(key, sizeof(key), v[k].key);
		HEX(c, v[k].ct);
		assert_true(sg_aes_cbc(true, out, p, 64, key, kl, iv));
		assert_memory_equal(out, c, 64);
		assert_true(sg_aes_cbc(false, out, out, 64, key, kl, iv));
		assert_memory_equal(out, p, 64);
	}
	assert_false(sg_aes_cbc(true, out, p, 63, key, 16, iv)); /* not whole blocks */
	assert_false(sg_aes_cbc(true, out, p, 64, key, 20, iv));
	/* AES-192 exists too (a round trip; its KAT is SP 800-38A F.2.3, same plaintext). */
	assert_true(sg_aes_cbc(true, out, p, 64, key, 24, iv));
	assert_true(sg_aes_cbc(false, out, out, 64, key, 24, iv));
	assert_memory_equal(out, p, 64);
}

/* ---- IKEv2 KDF (SP 800-135 5.2, NIST ACVP "IKEv2 SHA2-256") -------------------------------- */

static void test_ikev2_kdf_sp800_135(void **state)
{
	uint8_t ni[256], nr[256], gir[28], girn[28], spii[8], spir[8];
	uint8_t skeyseed[32], dkm[384], dkm_child[384], dkm_dh[384], rekey[32], out[384];
	const unsigned prf = SG_PRF_HMAC_SHA2_256;
	(void)state;
	HEX(ni, KDF_NI);
	HEX(nr, KDF_NR);
	HEX(gir, KDF_GIR);
	HEX(girn, KDF_GIR_NEW);
	HEX(spii, KDF_SPII);
	HEX(spir, KDF_SPIR);
	HEX(skeyseed, KDF_SKEYSEED);
	HEX(dkm, KDF_DKM);
	HEX(dkm_child, KDF_DKM_CHILD);
	HEX(dkm_dh, KDF_DKM_CHILD_DH);
	HEX(rekey, KDF_SKEYSEED_REKEY);

	/* SKEYSEED = prf(Ni | Nr, g^ir) (RFC 7296 2.14). */
	uint8_t nonces[512];
	memcpy(nonces, ni, 256);
	memcpy(nonces + 256, nr, 256);
	struct sg_iov g = {gir, sizeof(gir)};
	assert_true(sg_prf(prf, out, nonces, sizeof(nonces), &g, 1));
	assert_memory_equal(out, skeyseed, 32);
	/* DKM = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr), 3072 bits. */
	struct sg_iov s[4] = {{ni, 256}, {nr, 256}, {spii, 8}, {spir, 8}};
	assert_true(sg_prf_plus(prf, out, sizeof(dkm), skeyseed, 32, s, 4));
	assert_memory_equal(out, dkm, sizeof(dkm));
	/* SK_d is the first PRF-length of DKM; child KEYMAT = prf+(SK_d, Ni | Nr) (2.17). */
	const uint8_t *sk_d = dkm;
	assert_true(sg_prf_plus(prf, out, sizeof(dkm_child), sk_d, 32, s, 2));
	assert_memory_equal(out, dkm_child, sizeof(dkm_child));
	/* With PFS: prf+(SK_d, g^ir (new) | Ni | Nr). */
	struct sg_iov sd[3] = {{girn, sizeof(girn)}, {ni, 256}, {nr, 256}};
	assert_true(sg_prf_plus(prf, out, sizeof(dkm_dh), sk_d, 32, sd, 3));
	assert_memory_equal(out, dkm_dh, sizeof(dkm_dh));
	/* IKE SA rekey: SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) (2.18). */
	assert_true(sg_prf(prf, out, sk_d, 32, sd, 3));
	assert_memory_equal(out, rekey, 32);
	/* prf+ is bounded by 255 blocks. */
	uint8_t *big = malloc(255 * 32 + 1);
	assert_non_null(big);
	assert_true(sg_prf_plus(prf, big, 255 * 32, sk_d, 32, s, 2));
	assert_false(sg_prf_plus(prf, big, 255 * 32 + 1, sk_d, 32, s, 2));
	free(big);
}

static void test_sha(void **state)
{
	/* FIPS 180-4 examples ("abc"), as the NAT-D and signature hashes use them. */
	uint8_t out[64], exp[64];
	struct sg_iov abc = {"abc", 3};
	(void)state;
	assert_true(sg_sha1(out, &abc, 1));
	HEX(exp, "a9993e364706816aba3e25717850c26c9cd0d89d0000000000000000000000000000000000000000"
		 "000000000000000000000000000000000000000000000000");
	assert_memory_equal(out, exp, 20);
	assert_true(sg_sha2(32, out, &abc, 1));
	test_unhex(exp, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_memory_equal(out, exp, 32);
	assert_false(sg_sha2(20, out, &abc, 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ecp_rfc5903),	 cmocka_unit_test(test_curve25519),
	    cmocka_unit_test(test_modp),	 cmocka_unit_test(test_generated_ecp_and_x25519),
	    cmocka_unit_test(test_aead_vectors), cmocka_unit_test(test_prf_and_integ),
	    cmocka_unit_test(test_aes_cbc),	 cmocka_unit_test(test_ikev2_kdf_sp800_135),
	    cmocka_unit_test(test_sha),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
