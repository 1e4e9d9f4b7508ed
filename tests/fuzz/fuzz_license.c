/* Fuzz target for license files (src/server/license.c, srv_license_parse and
 * srv_license_verify): what `secureguard server --license` and `secureguard license show` read.
 *
 * Checks, besides ASan/UBSan: a refusal names a line (or the size or the canonical form); a
 * license taken writes back out to exactly the bytes it was read from (the canonical form is
 * the text), its fields are in their ranges, and its state and limit are defined at any time. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/license.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char canon[SRV_LICENSE_MAX_BYTES], *in = malloc(size ? size : 1);
	struct srv_license l;
	const char *why = NULL;
	int64_t limit;

	if (!in)
		return 0;
	memcpy(in, data, size);
	if (srv_license_parse(in, size, &l, &why) == 0) {
		size_t n = srv_license_canonical(&l, canon, sizeof(canon));

		if (n != l.canon_len || memcmp(canon, in, n) || l.seats < 1 ||
		    l.seats > 10000000 || l.expiry <= l.not_before ||
		    l.nfeatures > SRV_LICENSE_MAX_FEATURES)
			abort();
		if (srv_license_verify(&l, &why) && !why)
			abort();
		srv_license_state(&l, l.expiry, &limit);
		if (limit < SRV_FREE_CLIENTS)
			abort();
	} else if (!why || (strncmp(why, "line ", 5) && strcmp(why, "not in canonical form") &&
			    strcmp(why, "longer than 4096 bytes"))) {
		abort();
	}
	free(in);
	return 0;
}
