/* TOTP codes (RFC 6238 over RFC 4226's HOTP) and recovery codes for the admins' second factor
 * (routes_mfa.c, docs/SERVER.md "Two-factor logins"). What every authenticator app speaks:
 * HMAC-SHA-1, 6 digits, 30-second steps from the Unix epoch, a 160-bit secret (RFC 4226 section
 * 4, R6). The HMAC comes from src/crypto, through the same provider as the FIPS suite. */
#include <stdio.h>
#include <string.h>

#include "common/b64.h"
#include "common/log.h"
#include "crypto/crypto.h"
#include "secureguard/sg_errors.h"
#include "server/srv_int.h"

/* RFC 4226 section 5.3: HMAC over the 8-byte big-endian counter, dynamic truncation to 31 bits,
 * modulo 10^6. */
bool srv_totp_code(const uint8_t *key, size_t keylen, uint64_t step, char out[7])
{
	uint8_t msg[8], mac[SG_SHA1_LEN];
	struct sg_iov iov = {msg, sizeof(msg)};
	uint32_t v;
	int off;

	for (int i = 7; i >= 0; i--, step >>= 8)
		msg[i] = (uint8_t)step;
	if (!sg_hmac_sha1(mac, key, keylen, &iov, 1))
		return false;
	off = mac[SG_SHA1_LEN - 1] & 0x0f;
	v = ((uint32_t)(mac[off] & 0x7f) << 24) | (uint32_t)mac[off + 1] << 16 |
	    (uint32_t)mac[off + 2] << 8 | mac[off + 3];
	snprintf(out, 7, "%06u", (unsigned)(v % 1000000u));
	sg_memzero(mac, sizeof(mac));
	return true;
}

/* Every step of the window is computed and compared in full whatever matched, so the time taken
 * does not say which step (or how many digits) was right. */
uint64_t srv_totp_match(const uint8_t *key, size_t keylen, const char *code, int64_t now,
			uint64_t last_step)
{
	uint64_t cur = (uint64_t)(now < 0 ? 0 : now) / SRV_TOTP_PERIOD, found = 0;

	if (strlen(code) != 6)
		return 0;
	for (int d = -SRV_TOTP_WINDOW; d <= SRV_TOTP_WINDOW; d++) {
		uint64_t step = cur + (uint64_t)(int64_t)d;
		char want[7];
		bool same;

		if (!srv_totp_code(key, keylen, step, want))
			return 0;
		same = sg_memeq(want, code, 6);
		/* The latest matching step wins; a step at or before the last one used is a replay
		 * (RFC 6238 section 5.2: "MUST NOT accept the second attempt"). */
		if (same && step > last_step && step > found)
			found = step;
		sg_memzero(want, sizeof(want));
	}
	return found;
}

bool srv_totp_secret(uint8_t key[SRV_TOTP_KEY_LEN], char b32[SRV_TOTP_B32_LEN + 1])
{
	if (!sg_random_bytes(key, SRV_TOTP_KEY_LEN))
		return false;
	sg_b32_encode(b32, key, SRV_TOTP_KEY_LEN);
	return true;
}

int srv_totp_b32_decode(uint8_t key[SRV_TOTP_KEY_LEN], const char *b32)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t n = 0;

	if (strlen(b32) != SRV_TOTP_B32_LEN)
		return SG_EPARSE;
	for (const char *p = b32; *p; p++) {
		const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", *q = strchr(alpha, *p);

		if (!q || !*p)
			return SG_EPARSE;
		acc = (acc << 5) | (uint32_t)(q - alpha);
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			key[n++] = (uint8_t)(acc >> bits);
		}
	}
	return n == SRV_TOTP_KEY_LEN ? 0 : SG_EPARSE;
}

/* 16 characters of base32's lower-case alphabet (80 bits) in four groups: xxxx-xxxx-xxxx-xxxx. */
bool srv_recovery_code(char out[SRV_RECOVERY_LEN + 1])
{
	static const char alpha[] = "abcdefghijklmnopqrstuvwxyz234567";
	uint8_t b[16];
	int o = 0;

	if (!sg_random_bytes(b, sizeof(b)))
		return false;
	for (int i = 0; i < 16; i++) {
		if (i && i % 4 == 0)
			out[o++] = '-';
		out[o++] = alpha[b[i] & 31];
	}
	out[o] = 0;
	sg_memzero(b, sizeof(b));
	return true;
}

/* What a user typed, in the stored spelling: lower case, the dashes and spaces people add or
 * drop left out. False when it cannot be a recovery code. */
bool srv_recovery_normalize(char out[SRV_RECOVERY_LEN + 1], const char *in)
{
	int n = 0;

	for (const char *p = in; *p; p++) {
		char ch = *p;

		if (ch == '-' || ch == ' ')
			continue;
		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '2' && ch <= '7')) || n >= 16)
			return false;
		if (n && n % 4 == 0)
			out[n / 4 * 5 - 1] = '-';
		out[n / 4 * 5 + n % 4] = ch;
		n++;
	}
	if (n != 16)
		return false;
	out[SRV_RECOVERY_LEN] = 0;
	return true;
}
