/* Fuzz target for the certificate reader behind the dashboard's expiry list
 * (sg_tls_cert_pem_info, src/net/tls_cert.c): any bytes as the PEM text a resource's tls.cert or
 * the server's --tls-cert holds.
 *
 * Checks, besides ASan/UBSan: on success the subject is NUL-terminated printable ASCII; on
 * failure the error is a non-empty message and the output is zeroed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/tls_cert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sg_tls_cert_info ci;
	char err[256] = "";
	int rc = sg_tls_cert_pem_info((const char *)data, size, &ci, err, sizeof(err));

	if (rc) {
		if (!err[0] || ci.subject[0] || ci.not_after)
			abort();
		return 0;
	}
	if (memchr(ci.subject, 0, sizeof(ci.subject)) == NULL)
		abort();
	for (const char *c = ci.subject; *c; c++) {
		if (*c < 0x20 || *c > 0x7e)
			abort();
	}
	return 0;
}
