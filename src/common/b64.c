/* Base64 and base64url; b64.h. */
#include "common/b64.h"

#include <string.h>

#include "secureguard/sg_errors.h"

static const char b64std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void sg_b64_encode(char *out, const uint8_t *in, size_t len, bool url)
{
	const char *alpha = url ? b64url : b64std;
	size_t i, o = 0;

	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o++] = alpha[v >> 18];
		out[o++] = alpha[(v >> 12) & 63];
		out[o++] = alpha[(v >> 6) & 63];
		out[o++] = alpha[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;

		out[o++] = alpha[v >> 18];
		out[o++] = alpha[(v >> 12) & 63];
		if (!url) {
			out[o++] = '=';
			out[o++] = '=';
		}
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;

		out[o++] = alpha[v >> 18];
		out[o++] = alpha[(v >> 12) & 63];
		out[o++] = alpha[(v >> 6) & 63];
		if (!url)
			out[o++] = '=';
	}
	out[o] = 0;
}

/* Strict RFC 4648 decoding, so that each byte string has exactly one accepted spelling (a JWT
 * signature with "==" appended was accepted): only the alphabet's 64 characters; base64 with
 * exactly the '=' padding to a multiple of 4 (section 3.2), base64url (as JWTs use it, RFC 7515
 * section 2) with no '=' at all; and the unused bits of the last character zero (section 3.5). */
int sg_b64_decode(uint8_t *out, size_t outmax, const char *in, size_t len, bool url)
{
	const char *alpha = url ? b64url : b64std;
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;

	if (!url) {
		size_t eq = 0;

		if (len % 4)
			return SG_EPARSE;
		while (eq < 2 && eq < len && in[len - 1 - eq] == '=')
			eq++;
		len -= eq;
		if (eq && (len * 6) % 8 != (eq == 1 ? 2u : 4u))
			return SG_EPARSE; /* more '=' than the data needs, or fewer */
	}
	for (size_t i = 0; i < len; i++) {
		const char *p = in[i] ? memchr(alpha, in[i], 64) : NULL;

		if (!p)
			return SG_EPARSE;
		acc = acc << 6 | (uint32_t)(p - alpha);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= outmax)
				return SG_ERANGE;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	if (bits >= 6 || (acc & ((1u << bits) - 1)))
		return SG_EPARSE;
	return (int)o;
}

void sg_b32_encode(char *out, const uint8_t *in, size_t len)
{
	static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < len; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			*out++ = alpha[(acc >> bits) & 31];
		}
	}
	if (bits > 0)
		*out++ = alpha[(acc << (5 - bits)) & 31];
	*out = 0;
}
