/* Unit tests of license keys (src/server/license.c): the canonical form, refusals naming the
 * line, every single-bit change of a signed license refused, the states and limits over time.
 *
 * Built twice (tests/CMakeLists.txt): unit.license links license.c as the test build compiles
 * it (SG_LICENSE_TEST_KEY on: a license of the test key is accepted), unit.license_release
 * compiles license.c again without SG_LICENSE_TEST_KEY, as the release build does, and proves
 * that such a build refuses the same license, naming the test key. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secureguard/sg_errors.h"
#include "server/license.h"

#ifndef SG_TEST_LICENSE_KEY
#error "SG_TEST_LICENSE_KEY: the path of tests/license/test-vendor.key"
#endif

static const char *signed_license(char *out, size_t cap, int64_t nb, int64_t ex)
{
	struct srv_license l;
	char err[256];

	memset(&l, 0, sizeof(l));
	snprintf(l.id, sizeof(l.id), "T-0001");
	snprintf(l.customer, sizeof(l.customer), "Ex\xc3\xa4mple GmbH");
	l.seats = 300;
	snprintf(l.features[0], sizeof(l.features[0]), "ha");
	snprintf(l.features[1], sizeof(l.features[1]), "hsm");
	l.nfeatures = 2;
	l.not_before = nb;
	l.expiry = ex;
	if (srv_license_sign(&l, SG_TEST_LICENSE_KEY, out, cap, err, sizeof(err)))
		fail_msg("sign: %s", err);
	return out;
}

static void test_roundtrip(void **state)
{
	char text[SRV_LICENSE_MAX_BYTES], canon[SRV_LICENSE_MAX_BYTES];
	struct srv_license l;
	const char *why = NULL;

	(void)state;
	signed_license(text, sizeof(text), 1796083200, 1827619200);
	assert_int_equal(srv_license_parse(text, strlen(text), &l, &why), 0);
	assert_string_equal(l.id, "T-0001");
	assert_int_equal(l.seats, 300);
	assert_int_equal(l.nfeatures, 2);
	assert_string_equal(l.features[1], "hsm");
	assert_int_equal(l.not_before, 1796083200);
	assert_int_equal(l.expiry, 1827619200);
	assert_int_equal(srv_license_canonical(&l, canon, sizeof(canon)), l.canon_len);
	assert_memory_equal(canon, text, l.canon_len);
	assert_non_null(strstr(text, "not_before: 2026-12-01T00:00:00Z\nexpiry: "
				     "2027-12-01T00:00:00Z\nsignature: "));
#if SG_LICENSE_TEST_KEY
	assert_int_equal(srv_license_verify(&l, &why), 0);
	assert_true(l.test_key);
	assert_true(srv_license_test_build());
#else
	/* The release build: the same license, refused, and the reason says why. */
	assert_int_equal(srv_license_verify(&l, &why), SG_EAUTH);
	assert_string_equal(why, "signed by the test key, which only test builds accept");
	assert_false(srv_license_test_build());
#endif
}

/* Every bit of a signed license, flipped alone: refused by the parser (naming a line) or by the
 * signature check. */
static void test_bit_flips(void **state)
{
	char text[SRV_LICENSE_MAX_BYTES];
	struct srv_license l;
	const char *why;
	size_t n;

	(void)state;
	signed_license(text, sizeof(text), 1796083200, 1827619200);
	n = strlen(text);
	for (size_t i = 0; i < n * 8; i++) {
		text[i / 8] ^= (char)(1 << (i % 8));
		why = NULL;
		int rc = srv_license_parse(text, n, &l, &why);
		if (!rc)
			rc = srv_license_verify(&l, &why);
		if (!rc)
			fail_msg("bit %zu flipped: accepted", i);
		assert_non_null(why);
		text[i / 8] ^= (char)(1 << (i % 8));
	}
}

static void test_refusals(void **state)
{
	static const struct {
		const char *from, *to, *why;
	} cases[] = {
	    {"seats: 300", "seats: 0300", "line 4"},
	    {"seats: 300", "seats: 0", "line 4"},
	    {"seats: 300", "seats:  300", "line 4"},
	    {"features: ha,hsm", "features: hsm,ha", "line 5"},
	    {"features: ha,hsm", "features: ha,ha", "line 5"},
	    {"features: ha,hsm", "features: ha,", "line 5"},
	    {"features: ha,hsm", "features: HA", "line 5"},
	    {"expiry: 2027-12-01T00:00:00Z", "expiry: 2027-02-30T00:00:00Z", "line 7"},
	    {"expiry: 2027-12-01T00:00:00Z", "expiry: 2027-12-01 00:00:00Z", "line 7"},
	    {"expiry: 2027-12-01T00:00:00Z", "expiry: 2025-12-01T00:00:00Z", "line 7"},
	    {"customer: ", "customer:  ", "line 3"},
	    {"id: T-0001", "id: T 0001", "line 2"},
	    {"SecureGuard license v1", "SecureGuard license v2", "line 1"},
	};
	char text[SRV_LICENSE_MAX_BYTES], bad[SRV_LICENSE_MAX_BYTES + 64];
	struct srv_license l;
	const char *why;

	(void)state;
	signed_license(text, sizeof(text), 1796083200, 1827619200);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *at = strstr(text, cases[i].from);

		assert_non_null(at);
		snprintf(bad, sizeof(bad), "%.*s%s%s", (int)(at - text), text, cases[i].to,
			 at + strlen(cases[i].from));
		why = NULL;
		assert_int_equal(srv_license_parse(bad, strlen(bad), &l, &why), SG_EPARSE);
		if (strncmp(why, cases[i].why, strlen(cases[i].why)))
			fail_msg("%s -> %s: %s", cases[i].from, cases[i].to, why);
	}
	/* Text after the signature, a missing newline, a NUL inside. */
	snprintf(bad, sizeof(bad), "%sx\n", text);
	assert_int_equal(srv_license_parse(bad, strlen(bad), &l, &why), SG_EPARSE);
	assert_string_equal(why, "line 9: unexpected text after the signature");
	assert_int_equal(srv_license_parse(text, strlen(text) - 1, &l, &why), SG_EPARSE);
	memcpy(bad, text, strlen(text));
	bad[30] = 0;
	assert_int_equal(srv_license_parse(bad, strlen(text), &l, &why), SG_EPARSE);
}

static void test_states(void **state)
{
	char text[SRV_LICENSE_MAX_BYTES];
	struct srv_license l;
	const char *why;
	int64_t limit, nb = 1796083200, ex = 1827619200;

	(void)state;
	assert_int_equal(srv_license_state(NULL, ex, &limit), SRV_LIC_NONE);
	assert_int_equal(limit, SRV_FREE_CLIENTS);
	signed_license(text, sizeof(text), nb, ex);
	assert_int_equal(srv_license_parse(text, strlen(text), &l, &why), 0);
	assert_int_equal(srv_license_state(&l, nb - 1, &limit), SRV_LIC_EARLY);
	assert_int_equal(limit, SRV_FREE_CLIENTS);
	assert_int_equal(srv_license_state(&l, nb, &limit), SRV_LIC_VALID);
	assert_int_equal(limit, 300);
	assert_int_equal(srv_license_state(&l, ex, &limit), SRV_LIC_GRACE);
	assert_int_equal(limit, 300);
	assert_int_equal(srv_license_state(&l, ex + SRV_LICENSE_GRACE_SECS - 1, &limit),
			 SRV_LIC_GRACE);
	assert_int_equal(srv_license_state(&l, ex + SRV_LICENSE_GRACE_SECS, &limit),
			 SRV_LIC_EXPIRED);
	assert_int_equal(limit, SRV_FREE_CLIENTS);
	/* Fewer seats than the free edition never lower the limit. */
	l.seats = 3;
	assert_int_equal(srv_license_state(&l, nb, &limit), SRV_LIC_VALID);
	assert_int_equal(limit, SRV_FREE_CLIENTS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip),
	    cmocka_unit_test(test_bit_flips),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_states),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
