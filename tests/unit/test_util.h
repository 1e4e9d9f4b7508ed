/* Small helpers shared by the unit tests (cmocka). */
#ifndef SG_TEST_UTIL_H
#define SG_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

/* Decodes a hex string into out (which must hold strlen(hex)/2 bytes); returns the length. */
static inline size_t test_unhex(uint8_t *out, const char *hex)
{
	size_t n = strlen(hex) / 2;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(hex + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
	return n;
}

#define assert_bytes_equal(a, b, n) assert_memory_equal((a), (b), (n))

#endif
