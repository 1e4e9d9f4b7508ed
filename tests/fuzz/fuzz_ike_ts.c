/* Fuzz target: the traffic selector payload parser (ike_parse_ts), with a round trip. */
#include "ike_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ike_ts_payload ts, again;
	static uint8_t mem[4096];
	const char *why = NULL;
	int rc = ike_parse_ts(data, size, &ts, &why);
	IKE_FUZZ_RC(rc, why);
	ike_fuzz_need(ts.n >= 1 && ts.n <= IKE_MAX_TS);
	struct ike_buf b;
	size_t len;
	ike_buf_init(&b, mem, sizeof(mem));
	ike_put_ts(&b, IKE_PL_TSI, &ts);
	const uint8_t *body = ike_fuzz_body(&b, &len);
	ike_fuzz_need(ike_parse_ts(body, len, &again, &why) == 0);
	ike_fuzz_need(again.n == ts.n && !memcmp(again.ts, ts.ts, ts.n * sizeof(ts.ts[0])));
	return 0;
}
