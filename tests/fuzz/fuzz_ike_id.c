/* Fuzz target: the identification payload parser (ike_parse_id). */
#include "ike_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ike_id id;
	const char *why = NULL;
	int rc = ike_parse_id(data, size, &id, &why);
	IKE_FUZZ_RC(rc, why);
	ike_fuzz_need(id.len >= 1 && id.data + id.len == data + size && id.body_len == size);
	if (id.type == IKE_ID_IPV4_ADDR)
		ike_fuzz_need(id.len == 4);
	if (id.type == IKE_ID_IPV6_ADDR)
		ike_fuzz_need(id.len == 16);
	if (id.type == IKE_ID_FQDN || id.type == IKE_ID_RFC822_ADDR)
		ike_fuzz_need(id.len <= 255 && !memchr(id.data, 0, id.len));
	return 0;
}
