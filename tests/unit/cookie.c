/* MACs, cookies and the under-load rate limiter (whitepaper 5.3, 5.4.4, 5.4.7). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>

#include "test_util.h"

#include "crypto/crypto.h"
#include "wg/cookie.h"
#include "wg/ratelimiter.h"

#define NS 1000000000ULL

static void fill_msg(uint8_t msg[148])
{
	memset(msg, 0, 148);
	msg[0] = 1;
	for (int i = 4; i < 116; i++)
		msg[i] = (uint8_t)(i * 7);
}

/* mac1 = BLAKE2s-128 keyed with BLAKE2s("mac1----" || responder public key). Expected values
 * computed independently with Python's hashlib.blake2s (digest_size=16, key=...), public key
 * 00 01 .. 1f, message bytes i*7 for offsets 4..115 after the type word 01 00 00 00. */
static void test_mac1_known_answer(void **state)
{
	uint8_t pub[32], msg[148], want_key[32], want_mac[16], want_ck[32];
	struct cookie_maker m;
	struct cookie_checker c = {0};
	for (int i = 0; i < 32; i++)
		pub[i] = (uint8_t)i;
	test_unhex(want_key, "4fb2527ac956001553dc1ad9b55171b7d9daa3de1cdbcd71451830170c7e6cac");
	test_unhex(want_mac, "4467ce3f5a5ca963096642460df1550e");
	test_unhex(want_ck, "3dd5869c5202e45146936d1644f76ff697061661c181f3fd450eae43932eacec");
	assert_true(cookie_maker_init(&m, pub));
	assert_memory_equal(m.keys[SG_SUITE_CLASSIC].mac1_key, want_key, 32);
	assert_memory_equal(m.keys[SG_SUITE_CLASSIC].cookie_key, want_ck, 32);
	fill_msg(msg);
	assert_true(cookie_add_macs(&m, SG_SUITE_CLASSIC, msg, sizeof(msg), 0));
	assert_memory_equal(msg + 116, want_mac, 16);
	static const uint8_t zero[16];
	assert_memory_equal(msg + 132, zero, 16); /* no cookie yet: mac2 is zero */
	assert_true(cookie_checker_set_key(&c, SG_SUITE_CLASSIC, pub));
	uint8_t src[6] = {192, 0, 2, 1, 0x30, 0x39};
	assert_int_equal(cookie_validate(&c, SG_SUITE_CLASSIC, msg, sizeof(msg), false, src, 6, 0),
			 COOKIE_VALID_MAC_NO_COOKIE);
	assert_int_equal(cookie_validate(&c, SG_SUITE_CLASSIC, msg, sizeof(msg), true, src, 6, 0),
			 COOKIE_VALID_MAC_NO_COOKIE);
	msg[20] ^= 1;
	assert_int_equal(cookie_validate(&c, SG_SUITE_CLASSIC, msg, sizeof(msg), false, src, 6, 0),
			 COOKIE_INVALID_MAC);
	/* No key: nothing validates. */
	msg[20] ^= 1;
	assert_true(cookie_checker_set_key(&c, SG_SUITE_CLASSIC, NULL));
	assert_int_equal(cookie_validate(&c, SG_SUITE_CLASSIC, msg, sizeof(msg), false, src, 6, 0),
			 COOKIE_INVALID_MAC);
}

static void test_cookie_round_trip_and_expiry(void **state)
{
	uint8_t priv[32], pub[32], msg[148], reply[64];
	struct cookie_maker m;
	struct cookie_checker c = {0};
	uint8_t src[6] = {192, 0, 2, 1, 0x30, 0x39}, other[6] = {192, 0, 2, 9, 0x30, 0x39};
	uint64_t now = 1000 * NS;

	assert_true(sg_x25519_generate(priv, pub));
	assert_true(cookie_maker_init(&m, pub));
	assert_true(cookie_checker_set_key(&c, SG_SUITE_CLASSIC, pub));
	fill_msg(msg);
	assert_true(cookie_add_macs(&m, SG_SUITE_CLASSIC, msg, sizeof(msg), now));
	/* Responder under load answers with a cookie reply bound to the mac1 it got. */
	assert_true(cookie_create_reply(&c, SG_SUITE_CLASSIC, reply, msg, sizeof(msg), 0x11223344, src, 6, now));
	assert_int_equal(reply[0], 3);
	assert_int_equal(reply[4], 0x44);
	/* A reply that does not match our last mac1 is refused. */
	struct cookie_maker m2 = m;
	m2.last_mac1[0] ^= 1;
	assert_false(cookie_consume_reply(&m2, SG_SUITE_CLASSIC, reply, now));
	assert_true(cookie_consume_reply(&m, SG_SUITE_CLASSIC, reply, now));
	/* Consumed once: a second copy is refused (have_sent_mac1 cleared). */
	assert_false(cookie_consume_reply(&m, SG_SUITE_CLASSIC, reply, now));
	/* Retry with mac2 now validates, from the same source only. */
	assert_true(cookie_add_macs(&m, SG_SUITE_CLASSIC, msg, sizeof(msg), now + NS));
	assert_int_equal(cookie_validate(&c, SG_SUITE_CLASSIC, msg, sizeof(msg), true, src, 6, now + NS),
			 COOKIE_VALID_MAC_WITH_COOKIE);
	assert_int_equal(cookie_validate(&c, SG_SUITE_CLASSIC, msg, sizeof(msg), true, other, 6, now + NS),
			 COOKIE_VALID_MAC_NO_COOKIE);
	/* The sender stops using a cookie after 120 - 5 s. */
	assert_true(cookie_add_macs(&m, SG_SUITE_CLASSIC, msg, sizeof(msg), now + 116 * NS));
	static const uint8_t zero[16];
	assert_memory_equal(msg + 132, zero, 16);
	/* The responder's secret rotates every 2 minutes: an old cookie stops validating. */
	assert_true(cookie_add_macs(&m, SG_SUITE_CLASSIC, msg, sizeof(msg), now + 2 * NS)); /* mac2 with cookie */
	assert_int_equal(cookie_validate(&c, SG_SUITE_CLASSIC, msg, sizeof(msg), true, src, 6, now + 121 * NS),
			 COOKIE_VALID_MAC_NO_COOKIE);
	cookie_maker_wipe(&m);
	cookie_checker_wipe(&c);
	sg_memzero(priv, sizeof(priv));
}

static void test_ratelimiter(void **state)
{
	struct ratelimiter *r = malloc(sizeof(*r));
	uint8_t a[4] = {192, 0, 2, 1}, b[4] = {192, 0, 2, 2};
	uint8_t v6a[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1};
	uint8_t v6b[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 9, 9, 9, 9, 9, 9, 9, 9};
	uint64_t now = 5000 * NS;
	assert_non_null(r);
	ratelimiter_init(r);
	/* A burst of 5, then nothing until tokens refill at 20 per second. */
	int passed = 0;
	for (int i = 0; i < 20; i++)
		passed += ratelimiter_allow(r, a, 4, now);
	assert_int_equal(passed, 5);
	assert_true(ratelimiter_allow(r, b, 4, now)); /* another source is independent */
	assert_false(ratelimiter_allow(r, a, 4, now + NS / 40));
	assert_true(ratelimiter_allow(r, a, 4, now + NS / 20 + NS / 40));
	/* Over one simulated second of flooding, about 20 pass. */
	passed = 0;
	for (uint64_t t = 0; t < NS; t += NS / 1000)
		passed += ratelimiter_allow(r, a, 4, now + 10 * NS + t);
	assert_in_range(passed, 20, 26);
	/* IPv6 sources in one /64 share a bucket. */
	passed = 0;
	for (int i = 0; i < 10; i++) {
		passed += ratelimiter_allow(r, v6a, 16, now);
		passed += ratelimiter_allow(r, v6b, 16, now);
	}
	assert_int_equal(passed, 5);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mac1_known_answer),
		cmocka_unit_test(test_cookie_round_trip_and_expiry),
		cmocka_unit_test(test_ratelimiter),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
