/* Noise IKpsk2 core against the public Noise test vector, plus WireGuard's TAI64N. */
#include <stdio.h>

#include "test_util.h"

#include "crypto/crypto.h"
#include "wg/noise.h"

#include "noise_vector.h"
#define CLASSIC sg_suite_get(SG_SUITE_CLASSIC)

static void test_vector_handshake_and_transport(void **state)
{
	struct noise_symmetric si, sr;
	uint8_t prologue[64], msg1[256], msg2[256], expect[256], payload[256], got[256];
	uint8_t i_s[32], i_spub[32], i_e[32], i_rs[32], psk[32], r_s[32], r_spub[32], r_e[32];
	uint8_t key[32], ss_i[32], ss_r[32], rs_learned[32], hh[32];
	size_t plen, clen;

	size_t prolen = test_unhex(prologue, v_init_prologue);
	test_unhex(i_s, v_init_static);
	test_unhex(i_e, v_init_ephemeral);
	test_unhex(i_rs, v_init_remote_static);
	test_unhex(psk, v_psk);
	test_unhex(r_s, v_resp_static);
	test_unhex(r_e, v_resp_ephemeral);
	test_unhex(hh, v_handshake_hash);
	assert_true(sg_x25519_public(i_spub, i_s));
	assert_true(sg_x25519_public(r_spub, r_s));
	assert_memory_equal(r_spub, i_rs, 32);

	/* Both sides: InitializeSymmetric, MixHash(prologue), MixHash(rs) (pre-message <- s). */
	assert_true(noise_init(&si, CLASSIC, prologue, prolen, i_rs));
	assert_true(noise_init(&sr, CLASSIC, prologue, prolen, r_spub));

	/* Message 1: -> e, es, s, ss, {payload} */
	plen = test_unhex(payload, v_messages[0].payload);
	clen = test_unhex(expect, v_messages[0].ciphertext);
	assert_int_equal(clen, 32 + 48 + plen + 16);
	assert_true(sg_x25519(ss_i, i_s, i_rs));
	assert_true(noise_write_msg1(&si, msg1, msg1 + 32, msg1 + 80, payload, plen, i_e, i_spub,
				     i_rs, ss_i));
	assert_memory_equal(msg1, expect, clen);

	assert_true(noise_read_msg1_static(&sr, key, rs_learned, msg1, msg1 + 32, r_s));
	assert_memory_equal(rs_learned, i_spub, 32);
	assert_true(sg_x25519(ss_r, r_s, rs_learned));
	assert_memory_equal(ss_i, ss_r, 32);
	assert_true(noise_read_msg1_payload(&sr, key, got, msg1 + 80, plen + 16, ss_r));
	assert_memory_equal(got, payload, plen);
	assert_memory_equal(si.h, sr.h, 32);

	/* Message 2: <- e, ee, se, psk, {payload} */
	plen = test_unhex(payload, v_messages[1].payload);
	clen = test_unhex(expect, v_messages[1].ciphertext);
	assert_int_equal(clen, 32 + plen + 16);
	assert_true(noise_write_msg2(&sr, msg2, msg2 + 32, payload, plen, r_e, msg1, rs_learned,
				     psk));
	assert_memory_equal(msg2, expect, clen);
	assert_true(noise_read_msg2(&si, got, msg2 + 32, plen + 16, msg2, i_e, i_s, psk));
	assert_memory_equal(got, payload, plen);

	/* The final handshake hash. */
	assert_memory_equal(si.h, hh, 32);
	assert_memory_equal(sr.h, hh, 32);

	/* Split, then transport messages alternate initiator/responder with nonces 0, 0, 1, 1. */
	uint8_t i_send[32], i_recv[32], r_recv[32], r_send[32];
	assert_true(noise_split(&si, i_send, i_recv));
	assert_true(noise_split(&sr, r_recv, r_send));
	assert_memory_equal(i_send, r_recv, 32);
	assert_memory_equal(i_recv, r_send, 32);
	for (size_t m = 2; m < sizeof(v_messages) / sizeof(v_messages[0]); m++) {
		uint8_t nonce[12], ct[256];
		bool from_initiator = (m % 2) == 0;
		uint64_t n = (m - 2) / 2;
		plen = test_unhex(payload, v_messages[m].payload);
		clen = test_unhex(expect, v_messages[m].ciphertext);
		sg_wg_nonce(nonce, n);
		assert_true(sg_chacha20poly1305_encrypt(ct, payload, plen, NULL, 0, nonce,
							from_initiator ? i_send : r_send));
		assert_int_equal(clen, plen + 16);
		assert_memory_equal(ct, expect, clen);
		assert_true(sg_chacha20poly1305_decrypt(got, ct, clen, NULL, 0, nonce,
							from_initiator ? r_recv : i_recv));
		assert_memory_equal(got, payload, plen);
	}
}

static void test_tampered_messages_fail(void **state)
{
	struct noise_symmetric si, sr;
	uint8_t i_s[32], i_spub[32], i_e[32], r_s[32], r_spub[32], msg1[112], key[32], rs[32];
	uint8_t ss[32], payload[16] = {0}, got[16];

	test_unhex(i_s, v_init_static);
	test_unhex(i_e, v_init_ephemeral);
	test_unhex(r_s, v_resp_static);
	assert_true(sg_x25519_public(i_spub, i_s));
	assert_true(sg_x25519_public(r_spub, r_s));
	assert_true(sg_x25519(ss, i_s, r_spub));
	for (size_t flip = 0; flip < sizeof(msg1); flip += 7) {
		assert_true(noise_init(&si, CLASSIC, NULL, 0, r_spub));
		assert_true(noise_init(&sr, CLASSIC, NULL, 0, r_spub));
		assert_true(noise_write_msg1(&si, msg1, msg1 + 32, msg1 + 80, payload, 16, i_e,
					     i_spub, r_spub, ss));
		msg1[flip] ^= 0x01;
		bool ok = noise_read_msg1_static(&sr, key, rs, msg1, msg1 + 32, r_s) &&
			  noise_read_msg1_payload(&sr, key, got, msg1 + 80, 32, ss);
		assert_false(ok);
	}
	/* A low-order ephemeral (all zero) makes the DH fail. */
	memset(msg1, 0, 32);
	assert_true(noise_init(&sr, CLASSIC, NULL, 0, r_spub));
	assert_false(noise_read_msg1_static(&sr, key, rs, msg1, msg1 + 32, r_s));
}

static void test_tai64n(void **state)
{
	uint8_t t[12], u[12];
	/* 2020-01-01T00:00:00.5Z: seconds 1577836800 + 2^62 + 10, nanoseconds rounded to 2^24. */
	noise_tai64n(t, 1577836800ULL * 1000000000ULL + 500000000ULL);
	const uint8_t want[12] = {0x40, 0x00, 0x00, 0x00, 0x5e, 0x0b, 0xe1, 0x0a,
				  0x1d, 0x00, 0x00, 0x00};
	assert_memory_equal(t, want, 12);
	/* Monotonic in time, and equal within one 2^24 ns step. */
	noise_tai64n(u, 1577836800ULL * 1000000000ULL + 500000001ULL);
	assert_memory_equal(t, u, 12);
	noise_tai64n(u, 1577836801ULL * 1000000000ULL);
	assert_true(memcmp(u, t, 12) > 0);
}

/* The suite KDF equals RFC 5869 HKDF with an empty info, computed independently: classic against
 * sg_wg_kdf (checked by the cacophony vector above), fips against OpenSSL's HKDF-SHA-384. */
static void test_kdf_matches_hkdf(void **state)
{
	const struct sg_suite *fips = sg_suite_get(SG_SUITE_FIPS);
	uint8_t ck[48], in[57], t[3][48], want[144], w1[32], w2[32], w3[32];

	(void)state;
	for (size_t i = 0; i < sizeof(ck); i++)
		ck[i] = (uint8_t)(i * 7 + 1);
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(0xa0 ^ i);
	assert_true(noise_kdf(fips, t[0], t[1], t[2], ck, in, sizeof(in)));
	assert_true(sg_hkdf_sha384(want, sizeof(want), ck, 48, in, sizeof(in), NULL, 0));
	assert_memory_equal(t, want, sizeof(want));
	/* Empty input (Split). */
	assert_true(noise_kdf(fips, t[0], t[1], NULL, ck, NULL, 0));
	assert_true(sg_hkdf_sha384(want, 96, ck, 48, (const uint8_t *)"", 0, NULL, 0));
	assert_memory_equal(t, want, 96);
	assert_true(noise_kdf(CLASSIC, t[0], t[1], t[2], ck, in, sizeof(in)));
	assert_true(sg_wg_kdf(w1, w2, w3, ck, in, sizeof(in)));
	assert_memory_equal(t[0], w1, 32);
	assert_memory_equal(t[1], w2, 32);
	assert_memory_equal(t[2], w3, 32);
}

/* The FIPS handshake through the same message operations: both sides derive the same transport
 * keys, and the construction name is zero-padded into h (Noise spec 5.2: 31 bytes <= 48). */
static void test_fips_round_trip(void **state)
{
	const struct sg_suite *fips = sg_suite_get(SG_SUITE_FIPS);
	uint8_t i_s[48], i_spub[49], r_s[48], r_spub[49], i_e[48], i_epub[49], r_e[48], r_epub[49];
	uint8_t ss_i[48], ss_r[48], psk[32] = {9}, key[32], rs[49], got[14];
	uint8_t msg1[49 + 65 + 30], msg2[49 + 18], payload[14] = {1, 2, 3};
	uint8_t i_send[32], i_recv[32], r_send[32], r_recv[32];
	struct noise_symmetric si, sr;

	(void)state;
	assert_true(sg_p384_generate(i_s, i_spub) && sg_p384_generate(r_s, r_spub));
	assert_true(sg_p384_generate(i_e, i_epub) && sg_p384_generate(r_e, r_epub));
	assert_true(sg_p384_ecdh(ss_i, i_s, r_spub) && sg_p384_ecdh(ss_r, r_s, i_spub));
	assert_true(noise_init(&si, fips, (const uint8_t *)"SecureGuard FIPS v1", 19, r_spub));
	assert_true(noise_init(&sr, fips, (const uint8_t *)"SecureGuard FIPS v1", 19, r_spub));
	assert_memory_equal(si.h, sr.h, 48);
	assert_true(noise_write_msg1(&si, msg1, msg1 + 49, msg1 + 49 + 65, payload, 14, i_e, i_spub,
				     r_spub, ss_i));
	assert_memory_equal(msg1, i_epub, 49);
	assert_true(noise_read_msg1_static(&sr, key, rs, msg1, msg1 + 49, r_s));
	assert_memory_equal(rs, i_spub, 49);
	assert_true(noise_read_msg1_payload(&sr, key, got, msg1 + 49 + 65, 30, ss_r));
	assert_memory_equal(got, payload, 14);
	assert_true(noise_write_msg2(&sr, msg2, msg2 + 49, payload, 2, r_e, msg1, rs, psk));
	assert_true(noise_read_msg2(&si, got, msg2 + 49, 18, msg2, i_e, i_s, psk));
	assert_memory_equal(si.h, sr.h, 48);
	assert_true(noise_split(&si, i_send, i_recv));
	assert_true(noise_split(&sr, r_recv, r_send));
	assert_memory_equal(i_send, r_recv, 32);
	assert_memory_equal(i_recv, r_send, 32);
	/* A wrong PSK fails the response. */
	psk[0] ^= 1;
	assert_true(noise_init(&si, fips, (const uint8_t *)"SecureGuard FIPS v1", 19, r_spub));
	assert_true(noise_write_msg1(&si, msg1, msg1 + 49, msg1 + 49 + 65, payload, 14, i_e, i_spub,
				     r_spub, ss_i));
	struct noise_symmetric si2 = si;
	assert_false(noise_read_msg2(&si2, got, msg2 + 49, 18, msg2, i_e, i_s, psk));
	noise_symmetric_wipe(&si);
	noise_symmetric_wipe(&sr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vector_handshake_and_transport),
		cmocka_unit_test(test_tampered_messages_fail),
		cmocka_unit_test(test_tai64n),
		cmocka_unit_test(test_kdf_matches_hkdf),
		cmocka_unit_test(test_fips_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
