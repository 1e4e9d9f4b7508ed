/* Error codes: every code has a distinct value, a message and a name (include/secureguard). */
#include "test_util.h"

#include <secureguard/sg_errors.h>

static void test_error_table(void **state)
{
	static const int codes[] = {
#define CODE(name, val, msg) val,
		SG_ERRNO_MAP(CODE)
#undef CODE
	};
	for (size_t i = 0; i < (sizeof(codes) / sizeof(codes[0])); i++) {
		assert_true(codes[i] <= 0);
		assert_string_not_equal(sg_strerror(codes[i]), "unknown error");
		assert_true(strncmp(sg_err_name(codes[i]), "SG_E", 4) == 0);
		for (size_t j = i + 1; j < (sizeof(codes) / sizeof(codes[0])); j++)
			assert_int_not_equal(codes[i], codes[j]);
	}
	assert_string_equal(sg_err_name(SG_EINVAL), "SG_EINVAL");
	assert_string_equal(sg_strerror(0), "success");
	assert_string_equal(sg_strerror(12345), "unknown error");
	assert_string_equal(sg_err_name(-9999), "SG_E?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
