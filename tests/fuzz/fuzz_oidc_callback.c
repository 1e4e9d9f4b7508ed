/* Fuzz target for the parser of the browser's return to `secureguard connect --oidc`'s
 * loopback listener (src/cli/oidc_callback.c, cli_oidc_callback_parse): the input is what a
 * browser (or anything on this machine) sends to the port, fed whole and then in two pieces.
 *
 * Checks, besides ASan/UBSan: a parsed request is a GET of /callback with a code or an error;
 * the decoded values are NUL-terminated within their buffers and hold no control character;
 * feeding a prefix never gives an answer the whole would contradict (0 "need more" or the same
 * verdict). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/connect_oidc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void clean(const char *v, size_t cap)
{
	size_t n = strnlen(v, cap);

	if (n == cap)
		abort();
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cli_oidc_cb cb, part;
	const char *why;
	int rc = cli_oidc_callback_parse((const char *)data, size, "/callback", &cb, &why);

	if (rc == 1) {
		if (size < 14 || memcmp(data, "GET /callback?", 14) || (!cb.has_code && !cb.has_error))
			abort();
		clean(cb.code, sizeof(cb.code));
		clean(cb.state, sizeof(cb.state));
		clean(cb.error, sizeof(cb.error));
		clean(cb.desc, sizeof(cb.desc));
	} else if (rc == -1 && !why) {
		abort();
	}
	if (size > 1) {
		int r2 = cli_oidc_callback_parse((const char *)data, size / 2, "/callback", &part,
						 &why);

		if (r2 != 0 && r2 != rc)
			abort();
	}
	return 0;
}
