/* Known-answer tests for the fips suite (P-384, AES-256-GCM, SHA-384, HMAC/HKDF-SHA-384) and
 * for both suite tables. Every vector names its source. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#include "crypto/crypto.h"

/* ---- helpers ------------------------------------------------------------------------------- */

static int setup(void **state)
{
	(void)state;
	if (sg_crypto_init() != 0)
		return -1;
	print_message("OpenSSL FIPS provider %s\n",
		      sg_crypto_fips_provider_active()
			  ? "active: fips suite uses fips=yes"
			  : "not available: fips suite uses the default provider");
	return 0;
}

/* ---- SHA-384 ------------------------------------------------------------------------------- */

static void test_sha384(void **state)
{
	/* FIPS 180-4 examples (NIST CSRC "SHA384.pdf"): "abc" and the 896-bit two-block message;
	 * the empty message from NIST CAVP SHA384ShortMsg.rsp, Len = 0. */
	static const char msg896[] = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
				     "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
	uint8_t expect[48], out[48];
	struct sg_iov iov = {"abc", 3};
	struct sg_iov parts[3] = {{msg896, 5}, {msg896 + 5, 0}, {msg896 + 5, 112 - 5}};

	(void)state;
	assert_int_equal(sizeof(msg896) - 1, 112);
	HEX(expect, "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
		    "8086072ba1e7cc2358baeca134c825a7");
	assert_true(sg_sha384(out, &iov, 1));
	assert_memory_equal(out, expect, 48);

	HEX(expect, "09330c33f71147e83d192fc782cd1b4753111b173b3b05d22fa08086e3b0f712"
		    "fcc7c71a557e2db966c3e9fa91746039");
	assert_true(sg_sha384(out, parts, 3));
	assert_memory_equal(out, expect, 48);

	HEX(expect, "38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da"
		    "274edebfe76f65fbd51ad2f14898b95b");
	assert_true(sg_sha384(out, NULL, 0));
	assert_memory_equal(out, expect, 48);
}

/* ---- HMAC-SHA-384 -------------------------------------------------------------------------- */

static void test_hmac_sha384_rfc4231(void **state)
{
	/* RFC 4231 section 4, test cases 1, 2, 3, 4, 6, 7 (HMAC-SHA-384 rows). Case 5 is a
	 * truncated output and is not applicable. */
	static const char tc7_data[] =
	    "This is a test using a larger than block-size key and a larger than block-size data. "
	    "The key needs to be hashed before being used by the HMAC algorithm.";
	struct {
		uint8_t key[131];
		size_t keylen;
		uint8_t data[160];
		size_t datalen;
		const char *mac;
	} tc[6];
	uint8_t expect[48], out[48];

	(void)state;
	memset(tc, 0, sizeof(tc));
	/* 1: key = 0x0b * 20, data = "Hi There" */
	memset(tc[0].key, 0x0b, 20);
	tc[0].keylen = 20;
	memcpy(tc[0].data, "Hi There", 8);
	tc[0].datalen = 8;
	tc[0].mac = "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c"
		    "faea9ea9076ede7f4af152e8b2fa9cb6";
	/* 2: key = "Jefe", data = "what do ya want for nothing?" */
	memcpy(tc[1].key, "Jefe", 4);
	tc[1].keylen = 4;
	memcpy(tc[1].data, "what do ya want for nothing?", 28);
	tc[1].datalen = 28;
	tc[1].mac = "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e"
		    "8e2240ca5e69e2c78b3239ecfab21649";
	/* 3: key = 0xaa * 20, data = 0xdd * 50 */
	memset(tc[2].key, 0xaa, 20);
	tc[2].keylen = 20;
	memset(tc[2].data, 0xdd, 50);
	tc[2].datalen = 50;
	tc[2].mac = "88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b"
		    "2a5ab39dc13814b94e3ab6e101a34f27";
	/* 4: key = 0x01 .. 0x19, data = 0xcd * 50 */
	fill_seq(tc[3].key, 25, 1);
	tc[3].keylen = 25;
	memset(tc[3].data, 0xcd, 50);
	tc[3].datalen = 50;
	tc[3].mac = "3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e"
		    "6801dd23c4a7d679ccf8a386c674cffb";
	/* 6: key = 0xaa * 131, data = "Test Using Larger Than Block-Size Key - Hash Key First" */
	memset(tc[4].key, 0xaa, 131);
	tc[4].keylen = 131;
	memcpy(tc[4].data, "Test Using Larger Than Block-Size Key - Hash Key First", 54);
	tc[4].datalen = 54;
	tc[4].mac = "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c6"
		    "0c2ef6ab4030fe8296248df163f44952";
	/* 7: key = 0xaa * 131, data = tc7_data (152 bytes) */
	memset(tc[5].key, 0xaa, 131);
	tc[5].keylen = 131;
	assert_int_equal(sizeof(tc7_data) - 1, 152);
	memcpy(tc[5].data, tc7_data, 152);
	tc[5].datalen = 152;
	tc[5].mac = "6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5"
		    "a678cc31e799176d3860e6110c46523e";

	for (size_t i = 0; i < 6; i++) {
		struct sg_iov iov[2] = {
		    {tc[i].data, tc[i].datalen / 2},
		    {tc[i].data + tc[i].datalen / 2, tc[i].datalen - tc[i].datalen / 2}};

		HEX(expect, tc[i].mac);
		assert_true(sg_hmac_sha384(out, tc[i].key, tc[i].keylen, iov, 2));
		assert_memory_equal(out, expect, 48);
	}
}

/* ---- HKDF-SHA-384 -------------------------------------------------------------------------- */

/* RFC 2202 section 3, test cases 1 and 2: HMAC-SHA-1, used only for TOTP (the server's second
 * factor); it must come from the same provider as the suite, the FIPS one included. */
static void test_hmac_sha1_rfc2202(void **state)
{
	static const uint8_t mac1[20] = {0xb6, 0x17, 0x31, 0x86, 0x55, 0x05, 0x72, 0x64, 0xe2, 0x8b,
					 0xc0, 0xb6, 0xfb, 0x37, 0x8c, 0x8e, 0xf1, 0x46, 0xbe, 0x00};
	static const uint8_t mac2[20] = {0xef, 0xfc, 0xdf, 0x6a, 0xe5, 0xeb, 0x2f, 0xa2, 0xd2, 0x74,
					 0x16, 0xd5, 0xf1, 0x84, 0xdf, 0x9c, 0x25, 0x9a, 0x7c, 0x79};
	uint8_t key[20], out[20];
	struct sg_iov iov = {"Hi There", 8};
	struct sg_iov iov2 = {"what do ya want for nothing?", 28};

	(void)state;
	memset(key, 0x0b, sizeof(key));
	assert_true(sg_hmac_sha1(out, key, sizeof(key), &iov, 1));
	assert_memory_equal(out, mac1, 20);
	assert_true(sg_hmac_sha1(out, (const uint8_t *)"Jefe", 4, &iov2, 1));
	assert_memory_equal(out, mac2, 20);
}

static void test_hkdf_sha384_wycheproof(void **state)
{
	/* Wycheproof testvectors/hkdf_sha384_test.json (C2SP/wycheproof), by tcId. */
	static const struct {
		int tcid;
		const char *ikm, *salt, *info, *okm;
	} vec[] = {
	    {1, "60ab7f45b0ad534683b3a6c020d4f775", "", "",
	     "3f8b0e4a7b2bff01a26a18f1e07c0218897a324e"},
	    {6, "5b01b2da3166f217cdd68de8af60078f", "", "6884cfa7ffe8f27bf4ebc6e46a7e01488c79243a",
	     "7bf6c7c72fa9bf184f9a2e13077a0e1afb9d976a5574fb7ec819d8bafb9b10f962e6fa8bc6a844ee0b"
	     "609eee34aaaa025065a7e3a7fe4678a005640f7dc286c2"},
	    {9, "08867e76311126089356623ba5381e73", "0c164c443edcdfaedb1ab150f047951f", "",
	     "59debea3637c46394e2fb2790ebf8760de4986f36a6b142305bb62d1466dd56fa201c96814a2e5846a"
	     "cdf141733ccc54df9e6ccbaebf84c4f40e21201e180b12"},
	    {12, "8677dc79233ef3480777c4c601ef4f0b", "ad88db718244e2cb60e35f874d7ad81f",
	     "a38f634d947819a9bfa792174b42baa20c9fce15",
	     "758546362a070c0f13cbfbf1756e8f29b7819fb903c7ed4f97a56be3c8f81e8c37aef5c0f8e5d2b17e"
	     "b1aa02ec04c33f546cb2f3d193e930a9f89ec9ce3a82b5"},
	    {20, "34bae5a158c1678aa76a744417a70d7a",
	     "1532075f363e061133780ac959bf653c7687d181b9431215d6f62dd2f1ec3019d61c50fa82c70ae25e"
	     "624c849a276b0c57d7c02a4d753fe84a1a6621e9a5ef01",
	     "87ec30aa53acfc3d09ccc1d57d654fdbce403cd4",
	     "9413c6e1b27f829fb82252b5ac5e14a54503e5f433fc8182a6b556bd7b8e04ac34b0d6006950d59171"
	     "32"},
	    {22, "5943c65bc33bf05a205b04be8ae0ab2e",
	     "000000000000000000000000000000000000000000000000000000000000000000000000000000000"
	     "000000000000000",
	     "be082f301a03f87787a80fbea88941214d50c42b",
	     "6f93965b7399bdcaef06c151056ba14b7392a1521af1145e0c1d05e34b6f19f3"},
	};

	(void)state;
	for (size_t v = 0; v < sizeof(vec) / sizeof(vec[0]); v++) {
		uint8_t ikm[64], salt[64], info[64], okm[64], out[64];
		size_t ikmlen = test_unhex_cap(ikm, sizeof(ikm), vec[v].ikm);
		size_t saltlen = test_unhex_cap(salt, sizeof(salt), vec[v].salt);
		size_t infolen = test_unhex_cap(info, sizeof(info), vec[v].info);
		size_t okmlen = test_unhex_cap(okm, sizeof(okm), vec[v].okm);

		print_message("wycheproof hkdf_sha384 tcId %d\n", vec[v].tcid);
		memset(out, 0, sizeof(out));
		assert_true(sg_hkdf_sha384(out, okmlen, saltlen ? salt : NULL, saltlen, ikm, ikmlen,
					   infolen ? info : NULL, infolen));
		assert_memory_equal(out, okm, okmlen);
	}
}

/* RFC 5869 section 2 written out over sg_hmac_sha384 (itself checked against RFC 4231): the
 * naive reference the EVP_KDF-based sg_hkdf_sha384 is compared with. */
static void ref_hkdf_sha384(uint8_t *out, size_t outlen, const uint8_t *salt, size_t saltlen,
			    const uint8_t *ikm, size_t ikmlen, const uint8_t *info, size_t infolen)
{
	static const uint8_t zeros[48];
	uint8_t prk[48], t[48];
	size_t tlen = 0;
	struct sg_iov in = {ikm, ikmlen};

	if (saltlen == 0) { /* 2.2: "if not provided, it is set to a string of HashLen zeros" */
		salt = zeros;
		saltlen = sizeof(zeros);
	}
	assert_true(sg_hmac_sha384(prk, salt, saltlen, &in, 1));
	for (uint8_t i = 1; outlen > 0; i++) {
		struct sg_iov iov[3] = {{t, tlen}, {info, infolen}, {&i, 1}};
		size_t n = outlen < 48 ? outlen : 48;

		assert_true(sg_hmac_sha384(t, prk, sizeof(prk), iov, 3));
		tlen = 48;
		memcpy(out, t, n);
		out += n;
		outlen -= n;
	}
}

static void test_hkdf_sha384_reference_and_limits(void **state)
{
	static uint8_t out[255 * 48 + 1], ref[255 * 48];
	uint8_t salt[80], ikm[70], info[200];
	static const size_t lens[] = {1, 47, 48, 49, 100, 255 * 48};

	(void)state;
	fill_seq(salt, sizeof(salt), 0x30);
	fill_seq(ikm, sizeof(ikm), 0x90);
	fill_seq(info, sizeof(info), 0x05);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t sl = (i * 37) % sizeof(salt), il = (i * 29) % sizeof(ikm);
		size_t nl = (i * 53) % sizeof(info);

		/* Empty salt, IKM and info are all legal in RFC 5869 and appear here (i == 0). */
		assert_true(sg_hkdf_sha384(out, lens[i], sl ? salt : NULL, sl, il ? ikm : NULL, il,
					   nl ? info : NULL, nl));
		ref_hkdf_sha384(ref, lens[i], salt, sl, ikm, il, info, nl);
		assert_memory_equal(out, ref, lens[i]);
	}
	/* RFC 5869 section 2.3: L <= 255 * HashLen; and L = 0 is refused. */
	assert_false(sg_hkdf_sha384(out, 255 * 48 + 1, salt, 16, ikm, 16, NULL, 0));
	assert_false(sg_hkdf_sha384(out, 0, salt, 16, ikm, 16, NULL, 0));
}

/* ---- AES-256-GCM --------------------------------------------------------------------------- */

/* McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)", test cases 13-16 (AES-256), also
 * in NIST CAVP gcmEncryptExtIV256. */
static const struct {
	int tc;
	const char *key, *iv, *pt, *aad, *ct, *tag;
} gcm_vec[] = {
    {13, "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {14, "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "00000000000000000000000000000000", "",
     "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"},
    {15, "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e24"
     "49a6b525b16aedf5aa0de657ba637b391aafd255",
     "",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b10"
     "56828838c5f61e6393ba7a0abcc9f662898015ad",
     "b094dac5d93471bdec1a502270e3cc6c"},
    {16, "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e24"
     "49a6b525b16aedf5aa0de657ba637b39",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b10"
     "56828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

static void test_aes256gcm_vectors(void **state)
{
	(void)state;
	for (size_t v = 0; v < sizeof(gcm_vec) / sizeof(gcm_vec[0]); v++) {
		uint8_t key[32], iv[12], pt[64], aad[20], sealed[64 + 16], out[64 + 16];
		size_t ptlen, aadlen, n;

		print_message("GCM test case %d\n", gcm_vec[v].tc);
		HEX(key, gcm_vec[v].key);
		HEX(iv, gcm_vec[v].iv);
		ptlen = test_unhex_cap(pt, sizeof(pt), gcm_vec[v].pt);
		aadlen = test_unhex_cap(aad, sizeof(aad), gcm_vec[v].aad);
		n = test_unhex_cap(sealed, sizeof(sealed), gcm_vec[v].ct);
		assert_int_equal(n, ptlen);
		assert_int_equal(test_unhex_cap(sealed + n, 16, gcm_vec[v].tag), 16);

		assert_true(
		    sg_aes256gcm_encrypt(out, pt, ptlen, aadlen ? aad : NULL, aadlen, iv, key));
		assert_memory_equal(out, sealed, ptlen + 16);
		memset(out, 0, sizeof(out));
		assert_true(sg_aes256gcm_decrypt(out, sealed, ptlen + 16, aadlen ? aad : NULL,
						 aadlen, iv, key));
		assert_memory_equal(out, pt, ptlen);
		/* In place. */
		memcpy(out, pt, ptlen);
		assert_true(sg_aes256gcm_encrypt(out, out, ptlen, aad, aadlen, iv, key));
		assert_memory_equal(out, sealed, ptlen + 16);
		assert_true(sg_aes256gcm_decrypt(out, out, ptlen + 16, aad, aadlen, iv, key));
		assert_memory_equal(out, pt, ptlen);
	}
}

static void test_aes256gcm_bad_tag(void **state)
{
	/* Test case 16 with a flipped tag bit, a flipped ciphertext bit, a changed AAD byte. */
	uint8_t key[32], iv[12], aad[20], sealed[60 + 16], bad[60 + 16], out[60];

	(void)state;
	HEX(key, gcm_vec[3].key);
	HEX(iv, gcm_vec[3].iv);
	HEX(aad, gcm_vec[3].aad);
	assert_int_equal(test_unhex_cap(sealed, 60, gcm_vec[3].ct), 60);
	assert_int_equal(test_unhex_cap(sealed + 60, 16, gcm_vec[3].tag), 16);

	memcpy(bad, sealed, sizeof(bad));
	bad[sizeof(bad) - 1] ^= 0x01;
	memset(out, 0x5a, sizeof(out));
	assert_false(sg_aes256gcm_decrypt(out, bad, sizeof(bad), aad, sizeof(aad), iv, key));
	assert_true(sg_is_zero(out, sizeof(out)));

	memcpy(bad, sealed, sizeof(bad));
	bad[7] ^= 0x20;
	memset(out, 0x5a, sizeof(out));
	assert_false(sg_aes256gcm_decrypt(out, bad, sizeof(bad), aad, sizeof(aad), iv, key));
	assert_true(sg_is_zero(out, sizeof(out)));

	aad[19] ^= 1;
	assert_false(sg_aes256gcm_decrypt(out, sealed, sizeof(sealed), aad, sizeof(aad), iv, key));
	aad[19] ^= 1;
	assert_false(sg_aes256gcm_decrypt(out, sealed, sizeof(sealed), aad, 19, iv, key));
	assert_false(sg_aes256gcm_decrypt(out, sealed, 15, aad, sizeof(aad), iv, key));

	/* In place: the forged buffer's plaintext area is wiped. */
	memcpy(bad, sealed, sizeof(bad));
	bad[70] ^= 0x04;
	assert_false(sg_aes256gcm_decrypt(bad, bad, sizeof(bad), aad, sizeof(aad), iv, key));
	assert_true(sg_is_zero(bad, 60));

	/* And the cached context still works after the failures. */
	assert_true(sg_aes256gcm_decrypt(out, sealed, sizeof(sealed), aad, sizeof(aad), iv, key));
}

/* ---- ECDH P-384 ---------------------------------------------------------------------------- */

/* NIST CAVP KAS ECC CDH primitive test vectors (ecccdhtestvectors.zip, KAS_ECC_CDH_PrimitiveTest
 * .txt), [P-384] COUNT = 0 and COUNT = 1. */
static const struct {
	const char *qcavsx, *qcavsy, *diut, *qiutx, *qiuty, *ziut;
} cdh_vec[] = {
    {"a7c76b970c3b5fe8b05d2838ae04ab47697b9eaf52e764592efda27fe7513272734466b400091adbf2d68c58"
     "e0c50066",
     "ac68f19f2e1cb879aed43a9969b91a0839c4c38a49749b661efedf243451915ed0905a32b060992b468c6476"
     "6fc8437a",
     "3cc3122a68f0d95027ad38c067916ba0eb8c38894d22e1b15618b6818a661774ad463b205da88cf699ab4d43"
     "c9cf98a1",
     "9803807f2f6d2fd966cdd0290bd410c0190352fbec7ff6247de1302df86f25d34fe4a97bef60cff548355c01"
     "5dbb3e5f",
     "ba26ca69ec2f5b5d9dad20cc9da711383a9dbe34ea3fa5a2af75b46502629ad54dd8b7d73a8abb06a3a3be47"
     "d650cc99",
     "5f9d29dc5e31a163060356213669c8ce132e22f57c9a04f40ba7fcead493b457e5621e766c40a2e3d4d6a04b"
     "25e533f1"},
    {"30f43fcf2b6b00de53f624f1543090681839717d53c7c955d1d69efaf0349b7363acb447240101cbb3af6641"
     "ce4b88e0",
     "25e46c0c54f0162a77efcc27b6ea792002ae2ba82714299c860857a68153ab62e525ec0530d81b5aa1589798"
     "1e858757",
     "92860c21bde06165f8e900c687f8ef0a05d14f290b3f07d8b3a8cc6404366e5d5119cd6d03fb12dc58e89f13"
     "df9cd783",
     "ea4018f5a307c379180bf6a62fd2ceceebeeb7d4df063a66fb838aa35243419791f7e2c9d4803c9319aa0eb0"
     "3c416b66",
     "68835a91484f05ef028284df6436fb88ffebabcdd69ab0133e6735a1bcfb37203d10d340a8328a7b68770ca7"
     "5878a1a6",
     "a23742a2c267d7425fda94b93f93bbcc24791ac51cd8fd501a238d40812f4cbfc59aac9520d758cf789c7630"
     "0c69d2ff"},
};

/* SEC1 compressed point (02 | parity of Y) || X from the CAVP coordinates (SEC1 2.3.3). */
static void sec1(uint8_t pub[49], const char *x, const char *y)
{
	uint8_t ybytes[48];

	assert_int_equal(test_unhex_cap(ybytes, 48, y), 48);
	pub[0] = (uint8_t)(0x02 | (ybytes[47] & 1));
	assert_int_equal(test_unhex_cap(pub + 1, 48, x), 48);
}

static void test_p384_cavp_cdh(void **state)
{
	(void)state;
	for (size_t v = 0; v < sizeof(cdh_vec) / sizeof(cdh_vec[0]); v++) {
		uint8_t d[48], qcavs[49], qiut[49], z[48], pub[49], out[48];

		print_message("CAVP P-384 COUNT = %zu\n", v);
		HEX(d, cdh_vec[v].diut);
		sec1(qcavs, cdh_vec[v].qcavsx, cdh_vec[v].qcavsy);
		sec1(qiut, cdh_vec[v].qiutx, cdh_vec[v].qiuty);
		HEX(z, cdh_vec[v].ziut);

		assert_true(sg_p384_public(pub, d));
		assert_memory_equal(pub, qiut, 49);
		assert_true(sg_p384_ecdh(out, d, qcavs));
		assert_memory_equal(out, z, 48);
	}
}

static void test_p384_invalid_inputs(void **state)
{
	/* The order n of P-384 (FIPS 186-4 D.1.2.4). */
	static const char order_hex[] =
	    "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f437"
	    "2ddf581a0db248b0a77aecec196accc52973";
	uint8_t d[48], qcavs[49], bad[49], out[48], pub[49], n[48];

	(void)state;
	HEX(d, cdh_vec[0].diut);
	sec1(qcavs, cdh_vec[0].qcavsx, cdh_vec[0].qcavsy);

	/* An X with no point on the curve: x = 1 (x^3 - 3x + b is not a square mod p; found with
	 * EC_POINT_oct2point). The other parity byte of a valid X is a valid point (-Q), so only
	 * the X coordinate can be wrong in this encoding. */
	memset(bad, 0, 49);
	bad[0] = 0x02;
	bad[48] = 1;
	memset(out, 0xaa, sizeof(out));
	assert_false(sg_p384_ecdh(out, d, bad));
	assert_true(sg_is_zero(out, sizeof(out)));
	/* The all-zero encoding and the point at infinity (a lone 0x00) are refused. */
	memset(bad, 0, 49);
	assert_false(sg_p384_ecdh(out, d, bad));
	/* Only the compressed SEC1 form is accepted: prefix 04 (or 06/07 hybrid) is refused. */
	memcpy(bad, qcavs, 49);
	bad[0] = 0x04;
	assert_false(sg_p384_ecdh(out, d, bad));
	bad[0] = 0x06;
	assert_false(sg_p384_ecdh(out, d, bad));
	/* A coordinate that is not a field element: x = 2^384 - 1 > p. */
	memcpy(bad, qcavs, 49);
	memset(bad + 1, 0xff, 48);
	assert_false(sg_p384_ecdh(out, d, bad));
	/* The other parity is -Q: a valid point, and the shared X coordinate is the same. */
	memcpy(bad, qcavs, 49);
	bad[0] ^= 0x01;
	assert_true(sg_p384_ecdh(out, d, bad));

	/* Private scalars out of [1, n-1] (SP 800-56A 5.6.1.2). */
	memset(out, 0xaa, sizeof(out));
	memset(d, 0, sizeof(d));
	assert_false(sg_p384_ecdh(out, d, qcavs));
	assert_true(sg_is_zero(out, sizeof(out)));
	assert_false(sg_p384_public(pub, d));
	HEX(n, order_hex);
	assert_false(sg_p384_ecdh(out, n, qcavs));
	assert_false(sg_p384_public(pub, n));
	memset(d, 0xff, sizeof(d));
	assert_false(sg_p384_public(pub, d));
	/* n - 1 is the largest valid scalar; 1 the smallest (its public key is G). */
	memcpy(d, n, 48);
	d[47] -= 1;
	assert_true(sg_p384_public(pub, d));
	assert_true(sg_p384_ecdh(out, d, qcavs));
	memset(d, 0, sizeof(d));
	d[47] = 1;
	assert_true(sg_p384_public(pub, d));
	/* G from FIPS 186-4 D.1.2.4 (Gx). */
	HEX(n, "aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a5"
	       "45e38"
	       "72760ab7");
	assert_memory_equal(pub + 1, n, 48);
}

static void test_p384_generate_agree(void **state)
{
	uint8_t a[48], ap[49], b[48], bp[49], pub[49], s1[48], s2[48];

	(void)state;
	assert_true(sg_p384_generate(a, ap));
	assert_true(sg_p384_generate(b, bp));
	assert_true(ap[0] == 0x02 || ap[0] == 0x03);
	assert_false(sg_memeq(a, b, 48));
	/* The public key recomputed from the private scalar matches the generated one. */
	assert_true(sg_p384_public(pub, a));
	assert_memory_equal(pub, ap, 49);
	assert_true(sg_p384_public(pub, b));
	assert_memory_equal(pub, bp, 49);
	/* Both sides agree. */
	assert_true(sg_p384_ecdh(s1, a, bp));
	assert_true(sg_p384_ecdh(s2, b, ap));
	assert_memory_equal(s1, s2, 48);
	assert_false(sg_is_zero(s1, 48));
}

/* ---- suite tables -------------------------------------------------------------------------- */

/* Exercises a suite only through its table, as the protocol code will. */
static void exercise_suite(const struct sg_suite *s, const uint8_t *hash_abc)
{
	uint8_t a[97], ap[97], b[97], bp[97], pub[97], s1[48], s2[48];
	uint8_t key[32], nonce[12], pt[40], ct[40 + 16], out[48], ad[5] = {1, 2, 3, 4, 5};
	struct sg_iov iov = {"abc", 3};

	assert_true(s->dh_generate(a, ap));
	assert_true(s->dh_generate(b, bp));
	assert_true(s->dh_public(pub, a));
	assert_memory_equal(pub, ap, s->dh_pub_len);
	assert_true(s->dh(s1, a, bp));
	assert_true(s->dh(s2, b, ap));
	assert_memory_equal(s1, s2, s->dh_shared_len);

	fill_seq(key, sizeof(key), 0x42);
	fill_seq(pt, sizeof(pt), 0x01);
	memset(nonce, 0, sizeof(nonce));
	nonce[11] = 7;
	assert_true(s->aead_encrypt(ct, pt, sizeof(pt), ad, sizeof(ad), nonce, key));
	assert_true(s->aead_decrypt(out, ct, sizeof(ct), ad, sizeof(ad), nonce, key));
	assert_memory_equal(out, pt, sizeof(pt));
	ct[0] ^= 1;
	assert_false(s->aead_decrypt(out, ct, sizeof(ct), ad, sizeof(ad), nonce, key));

	assert_true(s->hash(out, &iov, 1));
	assert_memory_equal(out, hash_abc, s->hash_len);
	assert_true(s->hmac(out, key, sizeof(key), &iov, 1));
	assert_false(sg_is_zero(out, s->hash_len));
}

static void test_selftest_and_peer_id(void **state)
{
	uint8_t priv[48], pub[49], id1[32], id2[32];

	(void)state;
	assert_true(sg_fips_suite_usable());
	assert_true(sg_fips_suite_usable()); /* cached */
	assert_true(sg_p384_generate(priv, pub));
	assert_true(sg_fips_peer_id(id1, pub));
	assert_true(sg_fips_peer_id(id2, pub));
	assert_memory_equal(id1, id2, 32);
	pub[5] ^= 1;
	assert_true(sg_fips_peer_id(id2, pub));
	assert_memory_not_equal(id1, id2, 32);
	/* Public-key validation: a generated point is valid, x = 1 is not on the curve. */
	pub[5] ^= 1;
	assert_true(sg_p384_public_valid(pub));
	memset(pub, 0, sizeof(pub));
	pub[0] = 0x02;
	pub[48] = 1;
	assert_false(sg_p384_public_valid(pub));
	/* The AES-GCM nonce of the fips suite is big-endian (Noise spec 12.4). */
	uint8_t n[12];
	sg_noise_aesgcm_nonce(n, 0x0102030405060708ULL);
	static const uint8_t want[12] = {0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
	assert_memory_equal(n, want, 12);
	sg_memzero(priv, sizeof(priv));
}

static void test_suite_tables(void **state)
{
	const struct sg_suite *fips = sg_suite_get(SG_SUITE_FIPS);
	const struct sg_suite *classic = sg_suite_get(SG_SUITE_CLASSIC);
	uint8_t sha384_abc[48], blake2s_abc[32], mac[48], expect[48], key[20];
	struct sg_iov iov = {"Hi There", 8};

	(void)state;
	assert_non_null(fips);
	assert_int_equal(fips->id, SG_SUITE_FIPS);
	assert_string_equal(fips->name, "fips");
	assert_int_equal(fips->dh_priv_len, SG_P384_PRIV_LEN);
	assert_int_equal(fips->dh_pub_len, SG_P384_PUB_LEN);
	assert_int_equal(fips->dh_shared_len, SG_P384_SHARED_LEN);
	assert_int_equal(fips->hash_len, SG_SHA384_LEN);
	assert_int_equal(fips->aead_key_len, 32);
	assert_non_null(classic);
	assert_string_equal(classic->name, "classic");
	assert_int_equal(classic->aead_key_len, 32);

	/* FIPS 180-4 SHA-384("abc"); RFC 7693 BLAKE2s-256("abc"). */
	HEX(sha384_abc, "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
			"8086072ba1e7cc2358baeca134c825a7");
	HEX(blake2s_abc, "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
	exercise_suite(fips, sha384_abc);
	exercise_suite(classic, blake2s_abc);

	/* The fips table's hmac is HMAC-SHA-384: RFC 4231 test case 1. */
	memset(key, 0x0b, sizeof(key));
	HEX(expect, "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c"
		    "faea9ea9076ede7f4af152e8b2fa9cb6");
	assert_true(fips->hmac(mac, key, sizeof(key), &iov, 1));
	assert_memory_equal(mac, expect, 48);
}

/* PBKDF2-HMAC-SHA-384 (RFC 8018 section 5.2, SP 800-132): RFC 6070's inputs with SHA-384,
 * values computed independently with Python's hashlib.pbkdf2_hmac. */
static void test_pbkdf2_sha384(void **state)
{
	static const char salt16[] = "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d"
				     "\x0e\x0f";
	static const struct {
		const char *pw, *salt;
		unsigned iter;
		size_t len;
		const char *hex;
		bool below_sp800_132; /* the FIPS provider refuses: salt < 128 bits, < 1000 rounds */
	} v[] = {
	    {"correct horse battery", salt16, 1000, 48,
	     "f9c607bf3457bb39bbe4887dd15ab79b0e2552d868f0379c1b2f1c796f24ad438ff90c43f7ae3a3508be3e"
	     "3945f64c04",
	     false},
	    {"password", "salt", 1, 48,
	     "c0e14f06e49e32d73f9f52ddf1d0c5c7191609233631dadd76a567db42b78676b38fc800cc53ddb642f5c7"
	     "4442e62be4",
	     true},
	    {"password", "salt", 4096, 48,
	     "559726be38db125bc85ed7895f6e3cf574c7a01c080c3447db1e8a76764deb3c307b94853fbe424f6488c5"
	     "f4f1289626",
	     true},
	    {"passwordPASSWORDpassword", "saltSALTsaltSALTsaltSALTsaltSALTsalt", 4096, 64,
	     "819143ad66df9a552559b9e131c52ae6c5c1b0eed18f4d283b8c5c9eaeb92b392c147cc2d2869d58ffe2f7"
	     "da13d15f8d925721f0ed1afafa24480d55cf6060b1",
	     false},
	};
	bool on_provider = sg_crypto_fips_provider_active();
	uint8_t out[64], want[64];

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		size_t saltlen = v[i].salt == salt16 ? 16 : strlen(v[i].salt);
		bool ok = sg_pbkdf2_sha384(out, v[i].len, v[i].pw, strlen(v[i].pw),
					   (const uint8_t *)v[i].salt, saltlen, v[i].iter);

		for (size_t k = 0; k < v[i].len; k++)
			sscanf(v[i].hex + 2 * k, "%2hhx", &want[k]);
		if (on_provider && v[i].below_sp800_132) {
			/* SP 800-132's lower bounds, enforced by the FIPS provider. */
			assert_false(ok);
			continue;
		}
		assert_true(ok);
		assert_memory_equal(out, want, v[i].len);
	}
	assert_false(sg_pbkdf2_sha384(out, 48, "pw", 2, (const uint8_t *)"salt", 4, 0));
}

/* Run as unit.crypto_fips.provider: the vectors above on OpenSSL's FIPS provider, and nothing of
 * the FIPS suite from anywhere else. */
static void test_on_fips_provider(void **state)
{
	const char *want = getenv("SG_EXPECT_FIPS_PROVIDER");
	char d[512];

	(void)state;
	if (!want || strcmp(want, "1"))
		skip();
	assert_true(sg_crypto_fips_provider_active());
	sg_crypto_describe(d, sizeof(d));
	print_message("%s\n", d);
	assert_non_null(strstr(d, "fips_suite=fips "));
	assert_non_null(strstr(d, "fips_self_test=passed"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_on_fips_provider),
	    cmocka_unit_test(test_sha384),
	    cmocka_unit_test(test_pbkdf2_sha384),
	    cmocka_unit_test(test_hmac_sha1_rfc2202),
	    cmocka_unit_test(test_hmac_sha384_rfc4231),
	    cmocka_unit_test(test_hkdf_sha384_wycheproof),
	    cmocka_unit_test(test_hkdf_sha384_reference_and_limits),
	    cmocka_unit_test(test_aes256gcm_vectors),
	    cmocka_unit_test(test_aes256gcm_bad_tag),
	    cmocka_unit_test(test_p384_cavp_cdh),
	    cmocka_unit_test(test_p384_invalid_inputs),
	    cmocka_unit_test(test_p384_generate_agree),
	    cmocka_unit_test(test_suite_tables),
	    cmocka_unit_test(test_selftest_and_peer_id),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
