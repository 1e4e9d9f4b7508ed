/* Key encodings. Every character is mapped with masks instead of table lookups or branches, so
 * the time and memory access pattern depend only on the length of the text, not on the key. */
#include "config/key.h"

#include <string.h>

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

/* Canonical RFC 4648 base64 of n bytes: 4 * ceil(n / 3) characters with '=' padding, and a NUL. */
static void b64_encode(char *out, const uint8_t *in, size_t n)
{
	size_t i, o = 0;

	for (i = 0; i < n; i += 3) {
		size_t left = n - i;
		uint32_t w = (uint32_t)in[i] << 16;

		if (left > 1)
			w |= (uint32_t)in[i + 1] << 8;
		if (left > 2)
			w |= in[i + 2];
		out[o++] = b64_char((w >> 18) & 63);
		out[o++] = b64_char((w >> 12) & 63);
		out[o++] = left > 1 ? b64_char((w >> 6) & 63) : '=';
		out[o++] = left > 2 ? b64_char(w & 63) : '=';
	}
	out[o] = '\0';
}

/* Decodes exactly the canonical encoding of n bytes (length, alphabet, padding and zero unused
 * bits all checked; the padding positions depend only on n, never on the data). */
static int b64_decode(uint8_t *out, size_t n, const char *in, size_t len)
{
	unsigned int bad = 0;
	size_t i, o = 0;

	if (len != 4 * ((n + 2) / 3)) {
		sg_memzero(out, n);
		return SG_EPARSE;
	}
	for (i = 0; o < n; i += 4) {
		size_t left = n - o;
		uint32_t w = b64_value((unsigned char)in[i], &bad) << 18 |
			     b64_value((unsigned char)in[i + 1], &bad) << 12;

		if (left > 1)
			w |= b64_value((unsigned char)in[i + 2], &bad) << 6;
		else
			bad |= (((unsigned char)in[i + 2] ^ (unsigned int)'=') + 0xffu) >> 8;
		if (left > 2)
			w |= b64_value((unsigned char)in[i + 3], &bad);
		else
			bad |= (((unsigned char)in[i + 3] ^ (unsigned int)'=') + 0xffu) >> 8;
		out[o++] = (uint8_t)(w >> 16);
		if (left > 1)
			out[o++] = (uint8_t)(w >> 8);
		if (left > 2)
			out[o++] = (uint8_t)w;
		/* The bits past the last byte must be zero (RFC 4648 section 3.5), so each key has
		 * exactly one spelling. */
		if (left == 1)
			bad |= ((w & 0xffff) + 0xffffu) >> 16;
		else if (left == 2)
			bad |= ((w & 0xff) + 0xffu) >> 8;
	}
	if (bad) {
		sg_memzero(out, n);
		return SG_EPARSE;
	}
	return 0;
}

void sg_key_to_base64(char out[SG_KEY_BASE64_LEN + 1], const uint8_t key[SG_KEY_LEN])
{
	b64_encode(out, key, SG_KEY_LEN);
}

int sg_key_from_base64(uint8_t key[SG_KEY_LEN], const char *in, size_t len)
{
	return b64_decode(key, SG_KEY_LEN, in, len);
}

static void hex_encode(char *out, const uint8_t *in, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned int hi = in[i] >> 4, lo = in[i] & 15u;

		out[2 * i] = (char)('0' + hi + at_least(hi, 10) * ('a' - '0' - 10));
		out[2 * i + 1] = (char)('0' + lo + at_least(lo, 10) * ('a' - '0' - 10));
	}
	out[2 * n] = '\0';
}

void sg_key_to_hex(char out[SG_KEY_HEX_LEN + 1], const uint8_t key[SG_KEY_LEN])
{
	hex_encode(out, key, SG_KEY_LEN);
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

static int hex_decode(uint8_t *out, size_t n, const char *in, size_t len)
{
	unsigned int bad = 0;

	if (len != 2 * n) {
		sg_memzero(out, n);
		return SG_EPARSE;
	}
	for (size_t i = 0; i < n; i++)
		out[i] = (uint8_t)(hex_value((unsigned char)in[2 * i], &bad) << 4 |
				   hex_value((unsigned char)in[2 * i + 1], &bad));
	if (bad) {
		sg_memzero(out, n);
		return SG_EPARSE;
	}
	return 0;
}

int sg_key_from_hex(uint8_t key[SG_KEY_LEN], const char *in, size_t len)
{
	return hex_decode(key, SG_KEY_LEN, in, len);
}

bool sg_key_is_zero(const uint8_t key[SG_KEY_LEN])
{
	return sg_is_zero(key, SG_KEY_LEN);
}

/* ---- FIPS keys ------------------------------------------------------------------------------ */

int sg_fipskey_generate(uint8_t priv[SG_FIPS_PRIV_LEN], uint8_t pub[SG_FIPS_PUB_LEN])
{
	return sg_p384_generate(priv, pub) ? 0 : SG_ECRYPTO;
}

int sg_fipskey_public(uint8_t pub[SG_FIPS_PUB_LEN], const uint8_t priv[SG_FIPS_PRIV_LEN])
{
	/* Fails for a scalar outside [1, n-1], so this also validates a private key. */
	return sg_p384_public(pub, priv) ? 0 : SG_EINVAL;
}

void sg_fipskey_priv_to_base64(char out[SG_FIPS_PRIV_BASE64_LEN + 1],
			       const uint8_t priv[SG_FIPS_PRIV_LEN])
{
	b64_encode(out, priv, SG_FIPS_PRIV_LEN);
}

int sg_fipskey_priv_from_base64(uint8_t priv[SG_FIPS_PRIV_LEN], const char *in, size_t len)
{
	uint8_t pub[SG_FIPS_PUB_LEN];
	int ret = b64_decode(priv, SG_FIPS_PRIV_LEN, in, len);

	if (ret == 0 && !sg_p384_public(pub, priv)) {
		sg_memzero(priv, SG_FIPS_PRIV_LEN);
		ret = SG_EINVAL;
	}
	return ret;
}

void sg_fipskey_pub_to_base64(char out[SG_FIPS_PUB_BASE64_LEN + 1],
			      const uint8_t pub[SG_FIPS_PUB_LEN])
{
	b64_encode(out, pub, SG_FIPS_PUB_LEN);
}

int sg_fipskey_pub_from_base64(uint8_t pub[SG_FIPS_PUB_LEN], const char *in, size_t len)
{
	int ret = b64_decode(pub, SG_FIPS_PUB_LEN, in, len);

	if (ret == 0 && !sg_fipskey_pub_valid(pub)) {
		memset(pub, 0, SG_FIPS_PUB_LEN);
		ret = SG_EINVAL;
	}
	return ret;
}

void sg_fipskey_priv_to_hex(char out[2 * SG_FIPS_PRIV_LEN + 1], const uint8_t priv[SG_FIPS_PRIV_LEN])
{
	hex_encode(out, priv, SG_FIPS_PRIV_LEN);
}

int sg_fipskey_priv_from_hex(uint8_t priv[SG_FIPS_PRIV_LEN], const char *in, size_t len)
{
	uint8_t pub[SG_FIPS_PUB_LEN];
	int ret = hex_decode(priv, SG_FIPS_PRIV_LEN, in, len);

	if (ret == 0 && !sg_is_zero(priv, SG_FIPS_PRIV_LEN) && !sg_p384_public(pub, priv)) {
		sg_memzero(priv, SG_FIPS_PRIV_LEN);
		ret = SG_EINVAL;
	}
	return ret;
}

void sg_fipskey_pub_to_hex(char out[2 * SG_FIPS_PUB_LEN + 1], const uint8_t pub[SG_FIPS_PUB_LEN])
{
	hex_encode(out, pub, SG_FIPS_PUB_LEN);
}

int sg_fipskey_pub_from_hex(uint8_t pub[SG_FIPS_PUB_LEN], const char *in, size_t len)
{
	int ret = hex_decode(pub, SG_FIPS_PUB_LEN, in, len);

	if (ret == 0 && !sg_fipskey_pub_valid(pub)) {
		memset(pub, 0, SG_FIPS_PUB_LEN);
		ret = SG_EINVAL;
	}
	return ret;
}

bool sg_fipskey_pub_valid(const uint8_t pub[SG_FIPS_PUB_LEN])
{
	return sg_p384_public_valid(pub);
}
