/* Fuzz target: the configuration payload parser (ike_parse_cp). */
#include "ike_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ike_cp cp;
	const char *why = NULL;
	int rc = ike_parse_cp(data, size, &cp, &why);
	IKE_FUZZ_RC(rc, why);
	size_t total = 4;
	for (unsigned i = 0; i < cp.nattr; i++) {
		ike_fuzz_need(cp.attr[i].data + cp.attr[i].len <= data + size);
		total += 4 + cp.attr[i].len;
	}
	ike_fuzz_need(total == size);
	return 0;
}
