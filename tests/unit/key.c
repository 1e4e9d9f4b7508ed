/* Unit tests for src/config/key.c: the base64 (wg(8)) and hex (UAPI) key encodings.
 *
 * - known answers: fixed keys, and the RFC 7748 section 6.1 X25519 pair in wg(8)'s base64;
 * - every one of the 64 symbols at every position, against a naive table-driven reference;
 * - random keys round-trip and match the reference encoder;
 * - strict rejects: length, alphabet, '=' placement, non-canonical padding bits; a rejected
 *   input leaves the output zeroed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <secureguard/sg_errors.h>

#include "config/key.h"
#include "crypto/crypto.h"
#include "test_util.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Naive reference encoder (RFC 4648 section 4), table-driven. */
static void ref_base64(char out[45], const uint8_t key[32])
{
	size_t o = 0;

	for (size_t i = 0; i < 32; i += 3) {
		uint32_t w = (uint32_t)key[i] << 16;

		if (i + 1 < 32)
			w |= (uint32_t)key[i + 1] << 8;
		if (i + 2 < 32)
			w |= key[i + 2];
		out[o++] = alphabet[(w >> 18) & 63];
		out[o++] = alphabet[(w >> 12) & 63];
		out[o++] = i + 1 < 32 ? alphabet[(w >> 6) & 63] : '=';
		out[o++] = i + 2 < 32 ? alphabet[w & 63] : '=';
	}
	out[o] = '\0';
}

static void check_b64(const char *hex, const char *b64)
{
	uint8_t key[32], back[32];
	char out[SG_KEY_BASE64_LEN + 1];

	test_unhex(key, hex);
	sg_key_to_base64(out, key);
	assert_string_equal(out, b64);
	assert_int_equal(sg_key_from_base64(back, b64, strlen(b64)), 0);
	assert_memory_equal(back, key, 32);
}

static void test_base64_known(void **state)
{
	(void)state;
	check_b64("0000000000000000000000000000000000000000000000000000000000000000",
		  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
	check_b64("ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
		  "//////////////////////////////////////////8=");
	check_b64("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		  "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
	/* RFC 7748 section 6.1: Alice's private and public key. */
	check_b64("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
		  "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=");
	check_b64("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
		  "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=");
}

/* What `secureguard pubkey` computes: decode, X25519 base-point multiply, encode. */
static void test_rfc7748_pubkey(void **state)
{
	uint8_t priv[32], pub[32];
	char out[SG_KEY_BASE64_LEN + 1];
	const char *b = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=";

	(void)state;
	assert_int_equal(sg_key_from_base64(priv, b, strlen(b)), 0);
	assert_true(sg_x25519_public(pub, priv));
	sg_key_to_base64(out, pub);
	assert_string_equal(out, "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=");
}

/* Each symbol at each of the 43 data positions decodes to what the reference says. */
static void test_base64_every_symbol(void **state)
{
	(void)state;
	for (size_t pos = 0; pos < 43; pos++) {
		for (size_t s = 0; s < 64; s++) {
			char in[45], out[45];
			uint8_t key[32];

			memset(in, 'A', 43);
			in[43] = '=';
			in[44] = '\0';
			in[pos] = alphabet[s];
			/* The last symbol's two low bits are padding and must stay zero. */
			bool canonical = pos != 42 || (s & 3) == 0;

			assert_int_equal(sg_key_from_base64(key, in, 44),
					 canonical ? 0 : SG_EPARSE);
			if (!canonical)
				continue;
			ref_base64(out, key);
			assert_string_equal(out, in);
		}
	}
}

static void test_base64_random(void **state)
{
	(void)state;
	for (int i = 0; i < 2000; i++) {
		uint8_t key[32], back[32];
		char out[SG_KEY_BASE64_LEN + 1], ref[45];

		assert_true(sg_random_bytes(key, sizeof(key)));
		sg_key_to_base64(out, key);
		ref_base64(ref, key);
		assert_string_equal(out, ref);
		assert_int_equal(strlen(out), SG_KEY_BASE64_LEN);
		assert_int_equal(sg_key_from_base64(back, out, SG_KEY_BASE64_LEN), 0);
		assert_memory_equal(back, key, 32);
	}
}

static void expect_b64_reject(const char *in, size_t len)
{
	uint8_t key[32];

	memset(key, 0xaa, sizeof(key));
	assert_int_equal(sg_key_from_base64(key, in, len), SG_EPARSE);
	/* A rejected key never leaves partial (secret) bytes behind. */
	for (size_t i = 0; i < 32; i++)
		assert_int_equal(key[i], 0);
}

static void test_base64_rejects(void **state)
{
	const char *good = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
	char buf[64];

	(void)state;
	expect_b64_reject("", 0);
	expect_b64_reject(good, 43);
	expect_b64_reject("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8==", 45);
	expect_b64_reject("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8 ", 44);
	/* Each position with a character outside the alphabet. */
	static const char bad[] = {'!',	   '-',	   '_', ' ', '\n', '\0', '.', '=',
				   '\x80', '\xff', '@', '[', '`',  '{',	 ':'};
	for (size_t pos = 0; pos < 43; pos++) {
		for (size_t b = 0; b < sizeof(bad); b++) {
			memcpy(buf, good, 44);
			buf[pos] = bad[b];
			expect_b64_reject(buf, 44);
		}
	}
	/* The 44th character must be '='. */
	memcpy(buf, good, 44);
	buf[43] = 'A';
	expect_b64_reject(buf, 44);
	/* Non-canonical: "Hh8=" decodes the same bytes as "Hh9=" but sets padding bits. */
	memcpy(buf, good, 44);
	buf[42] = '9';
	expect_b64_reject(buf, 44);
	buf[42] = '+'; /* 62 = 0b111110: low bits 10 */
	expect_b64_reject(buf, 44);
	/* URL-safe alphabet (RFC 4648 section 5) is not wg(8)'s. */
	memset(buf, '_', 42);
	buf[0] = '-';
	memcpy(buf + 42, "8=", 2);
	expect_b64_reject(buf, 44);
}

static void test_hex(void **state)
{
	uint8_t key[32], back[32];
	char out[SG_KEY_HEX_LEN + 1];
	const char *lower = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
	const char *upper = "77076D0A7318A57D3C16C17251B26645DF4C2F87EBC0992AB177FBA51DB92C2A";

	(void)state;
	test_unhex(key, lower);
	sg_key_to_hex(out, key);
	assert_string_equal(out, lower);
	assert_int_equal(sg_key_from_hex(back, lower, 64), 0);
	assert_memory_equal(back, key, 32);
	assert_int_equal(sg_key_from_hex(back, upper, 64), 0);
	assert_memory_equal(back, key, 32);
	for (int i = 0; i < 500; i++) {
		char ref[65];

		assert_true(sg_random_bytes(key, sizeof(key)));
		sg_key_to_hex(out, key);
		for (size_t j = 0; j < 32; j++)
			snprintf(ref + 2 * j, 3, "%02x", key[j]);
		assert_string_equal(out, ref);
		assert_int_equal(sg_key_from_hex(back, out, 64), 0);
		assert_memory_equal(back, key, 32);
	}
}

static void test_hex_rejects(void **state)
{
	const char *good = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
	static const char bad[] = {'g', 'G', 'x', ' ', '\0', '/', ':', '@', '`', '-', '\xff'};
	char buf[70];
	uint8_t key[32];

	(void)state;
	assert_int_equal(sg_key_from_hex(key, good, 63), SG_EPARSE);
	assert_int_equal(sg_key_from_hex(key, "", 0), SG_EPARSE);
	snprintf(buf, sizeof(buf), "%s0", good);
	assert_int_equal(sg_key_from_hex(key, buf, 65), SG_EPARSE);
	for (size_t pos = 0; pos < 64; pos++) {
		for (size_t b = 0; b < sizeof(bad); b++) {
			memcpy(buf, good, 64);
			buf[pos] = bad[b];
			memset(key, 0xaa, sizeof(key));
			assert_int_equal(sg_key_from_hex(key, buf, 64), SG_EPARSE);
			assert_true(sg_key_is_zero(key));
		}
	}
}

static void test_is_zero(void **state)
{
	uint8_t key[32] = {0};

	(void)state;
	assert_true(sg_key_is_zero(key));
	for (size_t i = 0; i < 32; i++) {
		key[i] = 1;
		assert_false(sg_key_is_zero(key));
		key[i] = 0;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_base64_known),	cmocka_unit_test(test_rfc7748_pubkey),
	    cmocka_unit_test(test_base64_every_symbol), cmocka_unit_test(test_base64_random),
	    cmocka_unit_test(test_base64_rejects),	cmocka_unit_test(test_hex),
	    cmocka_unit_test(test_hex_rejects),		cmocka_unit_test(test_is_zero),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
