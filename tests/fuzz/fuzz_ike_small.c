/* Fuzz target: the small payload parsers (KE, AUTH, Nonce, CERT, CERTREQ, SKF). The first byte
 * picks the parser, the rest is the body; each view must lie inside the body. */
#include "ike_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *why = NULL;
	if (size < 1)
		return 0;
	const uint8_t *b = data + 1;
	size_t n = size - 1;
	int rc;
	switch (data[0] % 6) {
	case 0: {
		struct ike_ke ke;
		rc = ike_parse_ke(b, n, &ke, &why);
		IKE_FUZZ_RC(rc, why);
		ike_fuzz_need(ke.len >= 1 && ke.data + ke.len == b + n);
		break;
	}
	case 1: {
		struct ike_auth a;
		rc = ike_parse_auth(b, n, &a, &why);
		IKE_FUZZ_RC(rc, why);
		ike_fuzz_need(a.len >= 1 && a.data + a.len == b + n);
		break;
	}
	case 2:
		rc = ike_parse_nonce(b, n, &why);
		IKE_FUZZ_RC(rc, why);
		ike_fuzz_need(n >= IKE_NONCE_MIN && n <= IKE_NONCE_MAX);
		break;
	case 3: {
		struct ike_cert c;
		rc = ike_parse_cert(b, n, &c, &why);
		IKE_FUZZ_RC(rc, why);
		ike_fuzz_need(c.len >= 1 && c.data + c.len == b + n);
		break;
	}
	case 4: {
		struct ike_cert c;
		rc = ike_parse_certreq(b, n, &c, &why);
		IKE_FUZZ_RC(rc, why);
		ike_fuzz_need(c.encoding != 4 || c.len % 20 == 0);
		break;
	}
	case 5: {
		struct ike_skf f;
		rc = ike_parse_skf(b, n, &f, &why);
		IKE_FUZZ_RC(rc, why);
		ike_fuzz_need(f.number >= 1 && f.number <= f.total && f.enc + f.enc_len == b + n);
		break;
	}
	}
	return 0;
}
