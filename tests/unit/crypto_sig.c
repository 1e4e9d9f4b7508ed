/* Unit tests of the JSON Web Token signature helpers (src/crypto/sig.c): ES384 against the
 * RFC 6979 appendix A.2.6 P-384/SHA-384 vector, ECDSA with DER signatures (WebAuthn) against
 * A.2.5 (P-256/SHA-256) and A.2.6, RS256 against a signature made by Python's
 * cryptography package (2048-bit key, e = 65537), SHA-256 against FIPS 180-2 appendix B. */
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#include "crypto/crypto.h"

/* RFC 6979 A.2.6: public key U = (Ux, Uy), message "sample", SHA-384, signature (r, s). */
static const char ux[] = "EC3A4E415B4E19A4568618029F427FA5DA9A8BC4AE92E02E06AAE5286B300C64"
			 "DEF8F0EA9055866064A254515480BC13";
static const char uy[] = "8015D9B72D7D57244EA8EF9AC0C621896708A59367F9DFB9F54CA84B3F1C9DB1"
			 "288B231C3AE0D4FE7344FD2533264720";
static const char rs[] = "94EDBB92A5ECB8AAD4736E56C691916B3F88140666CE9FA73D64C4EA95AD133C"
			 "81A648152E44ACF96E36DD1E80FABE46"
			 "99EF4AEB15F178CEA1FE40DB2603138F130E740A19624526203B6351D0A3A94F"
			 "A329C145786E679E7B82C71A38628AC8";

static void test_es384(void **state)
{
	uint8_t x[48], y[48], sig[96];
	(void)state;
	test_unhex_cap(x, sizeof(x), ux);
	test_unhex_cap(y, sizeof(y), uy);
	test_unhex_cap(sig, sizeof(sig), rs);
	assert_true(sg_es384_verify(sig, x, y, "sample", 6));
	assert_false(sg_es384_verify(sig, x, y, "sampl3", 6));
	sig[95] ^= 1;
	assert_false(sg_es384_verify(sig, x, y, "sample", 6));
	sig[95] ^= 1;
	/* A point off the curve is refused before any verification. */
	y[47] ^= 1;
	assert_false(sg_es384_verify(sig, x, y, "sample", 6));
	y[47] ^= 1;
	/* r = 0 is never valid. */
	memset(sig, 0, 48);
	assert_false(sg_es384_verify(sig, x, y, "sample", 6));
}

/* DER ECDSA-Sig-Value of r || s (each n bytes): what WebAuthn authenticators send. */
static size_t der_sig(uint8_t *out, const uint8_t *rs_, size_t n)
{
	size_t o = 2;

	for (int k = 0; k < 2; k++) {
		const uint8_t *v = rs_ + k * n;
		size_t len = n;

		while (len > 1 && !v[0] && !(v[1] & 0x80))
			v++, len--;
		out[o++] = 0x02;
		out[o++] = (uint8_t)(len + (v[0] >> 7));
		if (v[0] & 0x80)
			out[o++] = 0;
		memcpy(out + o, v, len);
		o += len;
	}
	out[0] = 0x30;
	out[1] = (uint8_t)(o - 2);
	return o;
}

/* RFC 6979 A.2.5: P-256, message "sample", SHA-256. */
static const char ux256[] = "60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6";
static const char uy256[] = "7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299";
static const char rs256_[] = "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716"
			     "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8";

/* WebAuthn's ES256 and ES384 (DER signatures) against the RFC 6979 vectors of both curves. */
static void test_ecdsa_der(void **state)
{
	uint8_t x[48], y[48], rsb[96], der[120], bad[121];
	size_t n;
	(void)state;
	test_unhex_cap(x, 32, ux256);
	test_unhex_cap(y, 32, uy256);
	test_unhex_cap(rsb, 64, rs256_);
	n = der_sig(der, rsb, 32);
	assert_true(sg_ecdsa_verify_der(x, y, 32, der, n, "sample", 6));
	assert_false(sg_ecdsa_verify_der(x, y, 32, der, n, "sampl3", 6));
	der[n - 1] ^= 1;
	assert_false(sg_ecdsa_verify_der(x, y, 32, der, n, "sample", 6));
	der[n - 1] ^= 1;
	/* Not strict DER: a byte after the sequence, a long-form length. */
	memcpy(bad, der, n);
	bad[n] = 0;
	assert_false(sg_ecdsa_verify_der(x, y, 32, bad, n + 1, "sample", 6));
	bad[0] = 0x30;
	bad[1] = 0x81;
	bad[2] = der[1];
	memcpy(bad + 3, der + 2, n - 2);
	assert_false(sg_ecdsa_verify_der(x, y, 32, bad, n + 1, "sample", 6));
	/* The wrong curve's length, a point off the curve. */
	assert_false(sg_ecdsa_verify_der(x, y, 48, der, n, "sample", 6));
	y[31] ^= 1;
	assert_false(sg_ecdsa_verify_der(x, y, 32, der, n, "sample", 6));

	test_unhex_cap(x, 48, ux);
	test_unhex_cap(y, 48, uy);
	test_unhex_cap(rsb, 96, rs);
	n = der_sig(der, rsb, 48);
	assert_true(sg_ecdsa_verify_der(x, y, 48, der, n, "sample", 6));
	assert_false(sg_ecdsa_verify_der(x, y, 32, der, n, "sample", 6));
	der[n - 1] ^= 1;
	assert_false(sg_ecdsa_verify_der(x, y, 48, der, n, "sample", 6));
}

/* RFC 6979 A.2.6's private key x: its public point is (Ux, Uy) above; a signature made with it
 * verifies, and does not after any change. */
static void test_es384_sign(void **state)
{
	uint8_t d[48], x[48], y[48], wx[48], wy[48], sig[96], sig2[96];
	(void)state;
	test_unhex_cap(d, sizeof(d),
		       "6B9D3DAD2E1B8C1C05B19875B6659F4DE23C3B667BF297BA9AA47740787137D8"
		       "96D5724E4C70A825F872C9EA60D2EDF5");
	test_unhex_cap(wx, sizeof(wx), ux);
	test_unhex_cap(wy, sizeof(wy), uy);
	assert_true(sg_p384_public_xy(x, y, d));
	assert_memory_equal(x, wx, 48);
	assert_memory_equal(y, wy, 48);
	assert_true(sg_es384_sign(sig, d, "sample", 6));
	assert_true(sg_es384_verify(sig, x, y, "sample", 6));
	assert_false(sg_es384_verify(sig, x, y, "samplE", 6));
	/* ECDSA with a random k: two signatures differ and both verify. */
	assert_true(sg_es384_sign(sig2, d, "sample", 6));
	assert_memory_not_equal(sig, sig2, 96);
	assert_true(sg_es384_verify(sig2, x, y, "sample", 6));
	/* Scalars 0 and >= n are refused. */
	memset(d, 0, sizeof(d));
	assert_false(sg_es384_sign(sig, d, "sample", 6));
	memset(d, 0xff, sizeof(d));
	assert_false(sg_p384_public_xy(x, y, d));
}

static const char rs_n[] =
	"d779dcc423191726bb70a418f06f645980eef32b0206d8255dabfbafa5e08145"
	"48bbf2f57da35f339feea37741d8488b8f626b6f780c039c61d6be39a1be1ae0"
	"b55082ff8251cc2b4d8879ec22569d30f5c07dc145d7763a707c1a8385a9d0b6"
	"26e6c2db0966b2638828e9f709253ef601901cf4bff784861b5dd4cab9bce9e9"
	"10299e15549e7acfe009131b1f7df6a8f51925811c8d2bc1da2d9f07c7453083"
	"4d21508bc26f8c3c76267e82dfa7bfe0642eb9485e614d10bdedf673770247eb"
	"5903153533a9850e0b5c4aee2ec47c83dd8a820df8c008c53313f76a26100efd"
	"46785c7d78faa16e92cccc978364bb7b36d22425889ac660c241baaf3d83dca3";
static const char rs_sig[] =
	"ac78d717720a1321ae7f02669d2316182d19228229b44faf01ed0b7adef215f1"
	"1aa43c57750c89600bda3fdbad5de07a697da11a2f23faf21bf81f1e9d46b6ad"
	"da265894bd01e18026481d845e37defefa99cba6bcac971c0eaaba563388801b"
	"d41db98ad8b9a042e453ff3386596df4a97f76ca91bc053cba44cad77a6a05b2"
	"71259f37c91427ce6bbbbcffec28c75c371d00ec0060546a30c0554dd776d6a2"
	"9d2459a7ff3aa08229b42f77249b1758887e4a43721a2ebad4e77c4274c65188"
	"dc0be4a53d1b57430d558553f723c0803bf49d6a4f4731d9c2adea73959a1107"
	"a40de82dd57bac38ef921079c303d5805e64f8d0fec4afa0bba278e48c3e912d";
static const char rs_msg[] = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ0ZXN0In0";

static void test_rs256(void **state)
{
	uint8_t n[256], sig[256], e[3] = {0x01, 0x00, 0x01};
	(void)state;
	test_unhex_cap(n, sizeof(n), rs_n);
	test_unhex_cap(sig, sizeof(sig), rs_sig);
	assert_true(sg_rs256_verify(sig, sizeof(sig), n, sizeof(n), e, 3, rs_msg, strlen(rs_msg)));
	assert_false(sg_rs256_verify(sig, sizeof(sig), n, sizeof(n), e, 3, rs_msg,
				     strlen(rs_msg) - 1));
	sig[0] ^= 0x80;
	assert_false(sg_rs256_verify(sig, sizeof(sig), n, sizeof(n), e, 3, rs_msg, strlen(rs_msg)));
	sig[0] ^= 0x80;
	/* Short keys (under 2048 bits) and mismatched lengths are refused. */
	assert_false(sg_rs256_verify(sig, 128, n, 128, e, 3, rs_msg, strlen(rs_msg)));
	assert_false(sg_rs256_verify(sig, 255, n, sizeof(n), e, 3, rs_msg, strlen(rs_msg)));
}

static void test_sha256(void **state)
{
	uint8_t out[32], want[32];
	struct sg_iov iov[2] = {{"a", 1}, {"bc", 2}};
	(void)state;
	test_unhex_cap(want, sizeof(want),
		       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_true(sg_sha256(out, iov, 2));
	assert_memory_equal(out, want, 32);
}

int main(void)
{
	if (sg_crypto_init() != 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_es384),
	    cmocka_unit_test(test_es384_sign),
	    cmocka_unit_test(test_ecdsa_der),
	    cmocka_unit_test(test_rs256),
	    cmocka_unit_test(test_sha256),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
