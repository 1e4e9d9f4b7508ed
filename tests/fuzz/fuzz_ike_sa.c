/* Fuzz target: the SA payload parser (ike_parse_sa), with a build-and-parse round trip. */
#include "ike_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ike_sa_payload sa, again;
	static uint8_t mem[IKE_MAX_MSG];
	const char *why = NULL;
	int rc = ike_parse_sa(data, size, &sa, &why);
	IKE_FUZZ_RC(rc, why);
	ike_fuzz_need(sa.nprops >= 1 && sa.nprops <= IKE_MAX_PROPOSALS);
	struct ike_buf b;
	size_t len;
	ike_buf_init(&b, mem, sizeof(mem));
	ike_put_sa(&b, &sa);
	const uint8_t *body = ike_fuzz_body(&b, &len);
	ike_fuzz_need(ike_parse_sa(body, len, &again, &why) == 0);
	ike_fuzz_need(again.nprops == sa.nprops);
	for (unsigned i = 0; i < sa.nprops; i++) {
		const struct ike_proposal *p = &sa.props[i], *q = &again.props[i];
		ike_fuzz_need(p->num == q->num && p->protocol == q->protocol &&
			      p->spi_len == q->spi_len && !memcmp(p->spi, q->spi, p->spi_len) &&
			      p->ntrans == q->ntrans);
		for (unsigned t = 0; t < p->ntrans; t++)
			ike_fuzz_need(p->trans[t].type == q->trans[t].type &&
				      p->trans[t].id == q->trans[t].id &&
				      p->trans[t].keylen == q->trans[t].keylen);
	}
	return 0;
}
