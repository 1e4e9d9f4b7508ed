/* Small helpers shared by the unit tests (cmocka). */
#ifndef SG_TEST_UTIL_H
#define SG_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/bytes.h"

static inline int test_nibble(char c)
{
	return sg_hexval(c);
}

/* Decodes hex (spaces ignored) into out, which holds cap bytes; fails the test on a bad digit or
 * overflow. Returns the number of bytes written. */
static inline size_t test_unhex_cap(uint8_t *out, size_t cap, const char *s)
{
	size_t n = 0;
	while (*s != '\0') {
		if (*s == ' ') {
			s++;
			continue;
		}
		int hi = test_nibble(s[0]);
		int lo = s[1] != '\0' ? test_nibble(s[1]) : -1;
		assert_true(hi >= 0 && lo >= 0);
		assert_true(n < cap);
		out[n++] = (uint8_t)(hi << 4 | lo);
		s += 2;
	}
	return n;
}

/* As test_unhex_cap for a buffer the caller sized from the string (strlen/2 bytes). */
#define test_unhex(out, hex) test_unhex_cap((out), strlen(hex) / 2, (hex))

/* Fills an array from hex and checks the string had exactly its size. */
#define HEX(arr, s) assert_int_equal(test_unhex_cap((arr), sizeof(arr), (s)), sizeof(arr))

static inline void fill_seq(uint8_t *p, size_t n, uint8_t start)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(start + i);
}

#define assert_bytes_equal(a, b, n) assert_memory_equal((a), (b), (n))

/* The factor by which a test stretches the protocol deadlines it sets (a handshake that must
 * finish within 300 ms) and the bounds of its waits: SG_TEST_TIME_SCALE, 1 when unset. make check-arm sets it, as qemu-user
 * runs the code about ten times slower than the host (tests/CMakeLists.txt). */
static inline uint32_t test_time_scale(void)
{
	const char *s = getenv("SG_TEST_TIME_SCALE");
	long v = s ? strtol(s, NULL, 10) : 1;
	return v >= 1 && v <= 100 ? (uint32_t)v : 1;
}

#endif
