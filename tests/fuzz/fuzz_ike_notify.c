/* Fuzz target: the Notify payload parser (ike_parse_notify), with a round trip. */
#include "ike_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ike_notify n, again;
	static uint8_t mem[IKE_MAX_MSG];
	const char *why = NULL;
	int rc = ike_parse_notify(data, size, &n, &why);
	IKE_FUZZ_RC(rc, why);
	ike_fuzz_need(n.data + n.len == data + size);
	struct ike_buf b;
	size_t len;
	ike_buf_init(&b, mem, sizeof(mem));
	ike_put_notify(&b, n.protocol, n.spi, n.spi_len, n.type, n.data, n.len);
	const uint8_t *body = ike_fuzz_body(&b, &len);
	ike_fuzz_need(len == size && ike_parse_notify(body, len, &again, &why) == 0);
	ike_fuzz_need(again.type == n.type && again.spi_len == n.spi_len && again.len == n.len);
	return 0;
}
