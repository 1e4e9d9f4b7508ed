/* Fuzz target: the Delete payload parser (ike_parse_delete), with a round trip. */
#include "ike_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ike_delete d, again;
	static uint8_t mem[1024];
	const char *why = NULL;
	int rc = ike_parse_delete(data, size, &d, &why);
	IKE_FUZZ_RC(rc, why);
	ike_fuzz_need(d.nspi <= IKE_MAX_DELETE_SPIS && 4 + (size_t)d.nspi * d.spi_len == size);
	struct ike_buf b;
	size_t len;
	ike_buf_init(&b, mem, sizeof(mem));
	ike_put_delete(&b, d.protocol, d.spi_len, d.spis, d.nspi);
	const uint8_t *body = ike_fuzz_body(&b, &len);
	ike_fuzz_need(len == size && !memcmp(body, data, size));
	ike_fuzz_need(ike_parse_delete(body, len, &again, &why) == 0 && again.nspi == d.nspi);
	return 0;
}
