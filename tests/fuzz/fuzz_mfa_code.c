/* Fuzz target for what a user types as a second factor (src/server/totp.c): the input, up to its
 * first NUL, as a TOTP code (srv_totp_match) and as a recovery code (srv_recovery_normalize),
 * and as a base32 secret (srv_totp_b32_decode).
 *
 * Checks, besides ASan/UBSan: a match is a step within the window of now and after the last one
 * used; a normalised recovery code has the stored form (xxxx-xxxx-xxxx-xxxx over base32's lower
 * case alphabet) and normalises to itself; a decoded secret encodes back to the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "server/srv_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t key[SRV_TOTP_KEY_LEN] = "12345678901234567890";
	const int64_t now = 1111111111;
	char *in = malloc(size + 1), norm[SRV_RECOVERY_LEN + 1], again[SRV_RECOVERY_LEN + 1];
	uint8_t k[SRV_TOTP_KEY_LEN];
	uint64_t step;

	if (!in)
		return 0;
	memcpy(in, data, size);
	in[size] = 0;
	step = srv_totp_match(key, sizeof(key), in, now, 0);
	if (step && (step + SRV_TOTP_WINDOW < (uint64_t)now / SRV_TOTP_PERIOD ||
		     step > (uint64_t)now / SRV_TOTP_PERIOD + SRV_TOTP_WINDOW))
		abort();
	if (step && srv_totp_match(key, sizeof(key), in, now, step))
		abort();
	if (srv_recovery_normalize(norm, in)) {
		if (strlen(norm) != SRV_RECOVERY_LEN)
			abort();
		for (int i = 0; i < SRV_RECOVERY_LEN; i++) {
			char ch = norm[i];

			if (i % 5 == 4 ? ch != '-'
				       : !((ch >= 'a' && ch <= 'z') || (ch >= '2' && ch <= '7')))
				abort();
		}
		if (!srv_recovery_normalize(again, norm) || strcmp(again, norm))
			abort();
	}
	if (srv_totp_b32_decode(k, in) == 0) {
		char b32[SRV_TOTP_B32_LEN + 1];

		sg_b32_encode(b32, k, sizeof(k));
		if (strcmp(b32, in))
			abort();
	}
	free(in);
	return 0;
}
