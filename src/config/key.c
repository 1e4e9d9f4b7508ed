/* Key encodings. Every character is mapped with masks instead of table lookups or branches, so
 * the time and memory access pattern depend only on the length of the text, not on the key. */
#include "config/key.h"

#include <secureguard/sg_errors.h>

#include "crypto/crypto.h"

/* 1 when lo <= c <= hi, else 0, for c, lo, hi below 256. Each difference fits in 9 bits of two's
 * complement, so bit 8 of the unsigned difference is its sign bit. */
static unsigned int in_range(unsigned int c, unsigned int lo, unsigned int hi)
{
	return (((lo - 1u - c) & (c - hi - 1u)) >> 8) & 1u;
}

/* 1 when v >= n, else 0, for v, n below 256. */
static unsigned int at_least(unsigned int v, unsigned int n)
{
	return (((n - 1u - v) >> 8) & 1u);
}

/* RFC 4648 section 4 alphabet: A-Z a-z 0-9 + /. */
static char b64_char(unsigned int v)
{
	unsigned int c = 'A' + v;

	c += at_least(v, 26) * ('a' - 'A' - 26);
	c -= at_least(v, 52) * (('a' + 26) - '0');
	c -= at_least(v, 62) * (('0' + 10) - '+');
	c += at_least(v, 63) * ('/' - '+' - 1);
	return (char)c;
}

/* The 6-bit value of c; sets *bad to 1 when c is not in the alphabet. */
static unsigned int b64_value(unsigned char c, unsigned int *bad)
{
	unsigned int v = 0, ok = 0, m;

	m = in_range(c, 'A', 'Z');
	v |= -m & (c - 'A');
	ok |= m;
	m = in_range(c, 'a', 'z');
	v |= -m & (c - 'a' + 26);
	ok |= m;
	m = in_range(c, '0', '9');
	v |= -m & (c - '0' + 52);
	ok |= m;
	m = in_range(c, '+', '+');
	v |= -m & 62u;
	ok |= m;
	m = in_range(c, '/', '/');
	v |= -m & 63u;
	ok |= m;
	*bad |= ok ^ 1u;
	return v & 63u;
}

void sg_key_to_base64(char out[SG_KEY_BASE64_LEN + 1], const uint8_t key[SG_KEY_LEN])
{
	size_t i, o = 0;

	/* Ten full 3-byte groups, then the last 2 bytes as three symbols and one '='. */
	for (i = 0; i + 3 <= SG_KEY_LEN; i += 3) {
		uint32_t w = (uint32_t)key[i] << 16 | (uint32_t)key[i + 1] << 8 | key[i + 2];

		out[o++] = b64_char((w >> 18) & 63);
		out[o++] = b64_char((w >> 12) & 63);
		out[o++] = b64_char((w >> 6) & 63);
		out[o++] = b64_char(w & 63);
	}
	uint32_t w = (uint32_t)key[30] << 16 | (uint32_t)key[31] << 8;

	out[o++] = b64_char((w >> 18) & 63);
	out[o++] = b64_char((w >> 12) & 63);
	out[o++] = b64_char((w >> 6) & 63);
	out[o++] = '=';
	out[o] = '\0';
}

int sg_key_from_base64(uint8_t key[SG_KEY_LEN], const char *in, size_t len)
{
	unsigned int bad = 0;
	size_t i, o = 0;

	if (len != SG_KEY_BASE64_LEN) {
		sg_memzero(key, SG_KEY_LEN);
		return SG_EPARSE;
	}
	for (i = 0; i < 40; i += 4) {
		uint32_t w = b64_value((unsigned char)in[i], &bad) << 18 |
			     b64_value((unsigned char)in[i + 1], &bad) << 12 |
			     b64_value((unsigned char)in[i + 2], &bad) << 6 |
			     b64_value((unsigned char)in[i + 3], &bad);

		key[o++] = (uint8_t)(w >> 16);
		key[o++] = (uint8_t)(w >> 8);
		key[o++] = (uint8_t)w;
	}
	uint32_t w = b64_value((unsigned char)in[40], &bad) << 18 |
		     b64_value((unsigned char)in[41], &bad) << 12 |
		     b64_value((unsigned char)in[42], &bad) << 6;

	key[o++] = (uint8_t)(w >> 16);
	key[o++] = (uint8_t)(w >> 8);
	/* The third symbol carries 2 bits past the key; a canonical encoding leaves them zero
	 * (RFC 4648 section 3.5), so each key has exactly one spelling. */
	bad |= ((w & 0xff) + 0xffu) >> 8;
	bad |= (((unsigned char)in[43] ^ (unsigned int)'=') + 0xffu) >> 8;
	if (bad) {
		sg_memzero(key, SG_KEY_LEN);
		return SG_EPARSE;
	}
	return 0;
}

void sg_key_to_hex(char out[SG_KEY_HEX_LEN + 1], const uint8_t key[SG_KEY_LEN])
{
	for (size_t i = 0; i < SG_KEY_LEN; i++) {
		unsigned int hi = key[i] >> 4, lo = key[i] & 15u;

		out[2 * i] = (char)('0' + hi + at_least(hi, 10) * ('a' - '0' - 10));
		out[2 * i + 1] = (char)('0' + lo + at_least(lo, 10) * ('a' - '0' - 10));
	}
	out[SG_KEY_HEX_LEN] = '\0';
}

static unsigned int hex_value(unsigned char c, unsigned int *bad)
{
	unsigned int v = 0, ok = 0, m;

	m = in_range(c, '0', '9');
	v |= -m & (c - '0');
	ok |= m;
	m = in_range(c, 'a', 'f');
	v |= -m & (c - 'a' + 10);
	ok |= m;
	m = in_range(c, 'A', 'F');
	v |= -m & (c - 'A' + 10);
	ok |= m;
	*bad |= ok ^ 1u;
	return v & 15u;
}

int sg_key_from_hex(uint8_t key[SG_KEY_LEN], const char *in, size_t len)
{
	unsigned int bad = 0;

	if (len != SG_KEY_HEX_LEN) {
		sg_memzero(key, SG_KEY_LEN);
		return SG_EPARSE;
	}
	for (size_t i = 0; i < SG_KEY_LEN; i++)
		key[i] = (uint8_t)(hex_value((unsigned char)in[2 * i], &bad) << 4 |
				   hex_value((unsigned char)in[2 * i + 1], &bad));
	if (bad) {
		sg_memzero(key, SG_KEY_LEN);
		return SG_EPARSE;
	}
	return 0;
}

bool sg_key_is_zero(const uint8_t key[SG_KEY_LEN])
{
	return sg_is_zero(key, SG_KEY_LEN);
}
