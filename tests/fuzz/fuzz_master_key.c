/* Fuzz target for the sealed master key file (src/server/keys.c, srv_master_sealed_parse): what
 * `secureguard server --key-uri` reads before it asks the token for anything.
 *
 * Checks, besides ASan/UBSan: a file taken has exactly the four lines of the format (their
 * lengths are fixed), both points are on P-384, and a refusal says which line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "server/srv_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* head + "token-key " 98 + "ephemeral " 98 + "sealed " 184, each line with its newline */
	const size_t whole = 43 + (10 + 98 + 1) + (10 + 98 + 1) + (7 + 184 + 1);
	struct srv_sealed_master m;
	const char *why = NULL;
	char *in = malloc(size ? size : 1);

	if (!in)
		return 0;
	memcpy(in, data, size);
	if (srv_master_sealed_parse(in, size, &m, &why) == 0) {
		if (size != whole || !sg_p384_public_valid(m.token_pub) ||
		    !sg_p384_public_valid(m.eph_pub))
			abort();
	} else if (!why || strncmp(why, "line ", 5)) {
		abort();
	}
	free(in);
	return 0;
}
