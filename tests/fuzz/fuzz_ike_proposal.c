/* Fuzz target: strongSwan proposal keywords (ike_prop_parse), for IKE and ESP, with and without
 * the FIPS profile. A proposal that parses must negotiate with itself: offered, chosen by the
 * same configuration, answered and accepted by the offerer. */
#include <stdlib.h>
#include <string.h>

#include "ike/proposal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[512];
	if (size >= sizeof(s))
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	for (int v = 0; v < 4; v++) {
		struct ike_prop_cfg p;
		struct ike_sa_payload offer, answer;
		struct ike_chosen c, acc;
		const char *why = NULL;
		uint8_t proto = v & 1 ? IKE_PROTO_ESP : IKE_PROTO_IKE;
		if (ike_prop_parse(s, proto, v & 2, &p, &why) != 0) {
			if (!why)
				abort();
			continue;
		}
		ike_prop_offer(&p, 1, (const uint8_t *)"\1\2\3\4", proto == IKE_PROTO_ESP ? 4 : 0,
			       &offer);
		if (ike_prop_choose(&p, 1, &offer, 0, false, &c, &why) != 0)
			abort();
		ike_prop_answer(&c, (const uint8_t *)"\5\6\7\10", c.spi_len, &answer);
		if (ike_prop_accept(&p, 1, &answer, &acc, &why) != 0)
			abort();
		if (acc.encr != c.encr || acc.ke != c.ke || acc.prf != c.prf ||
		    acc.integ != c.integ)
			abort();
	}
	return 0;
}
