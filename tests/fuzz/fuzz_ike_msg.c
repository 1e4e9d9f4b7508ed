/* Fuzz target: a whole IKE datagram (ike_parse), every payload through its parser, and the SK
 * payload through verification and decryption with fixed keys (so a seed sealed with those keys
 * reaches the inner chain parser). */
#include "crypto/ipsec.h"
#include "ike_fuzz.h"

/* A parser may refuse the payload (the core would reject the message), but must say why. */
#define CHECKED(call)                                                                              \
	do {                                                                                       \
		why = NULL;                                                                        \
		if ((call) != 0)                                                                   \
			ike_fuzz_need(why != NULL);                                                \
	} while (0)

static void payloads(const struct ike_msg *m)
{
	const char *why;
	for (unsigned i = 0; i < m->npl; i++) {
		const struct ike_payload *p = &m->pl[i];
		ike_fuzz_need(p->body >= m->raw && p->len <= IKE_MAX_MSG);
		union {
			struct ike_sa_payload sa;
			struct ike_ts_payload ts;
			struct ike_notify n;
			struct ike_delete d;
			struct ike_id id;
			struct ike_ke ke;
			struct ike_cp cp;
		} u;
		switch (p->type) {
		case IKE_PL_SA:
			CHECKED(ike_parse_sa(p->body, p->len, &u.sa, &why));
			break;
		case IKE_PL_TSI:
		case IKE_PL_TSR:
			CHECKED(ike_parse_ts(p->body, p->len, &u.ts, &why));
			break;
		case IKE_PL_NOTIFY:
			CHECKED(ike_parse_notify(p->body, p->len, &u.n, &why));
			break;
		case IKE_PL_DELETE:
			CHECKED(ike_parse_delete(p->body, p->len, &u.d, &why));
			break;
		case IKE_PL_IDI:
		case IKE_PL_IDR:
			CHECKED(ike_parse_id(p->body, p->len, &u.id, &why));
			break;
		case IKE_PL_KE:
			CHECKED(ike_parse_ke(p->body, p->len, &u.ke, &why));
			break;
		case IKE_PL_CP:
			CHECKED(ike_parse_cp(p->body, p->len, &u.cp, &why));
			break;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ike_msg m;
	static uint8_t buf[IKE_MAX_MSG];
	static struct ike_sk_keys gcm, cbc;
	static int keyed;
	const char *why = NULL;
	if (!keyed) {
		uint8_t ek[36], ak[64];
		for (int i = 0; i < 36; i++)
			ek[i] = (uint8_t)i;
		for (int i = 0; i < 64; i++)
			ak[i] = (uint8_t)(0x40 + i);
		if (sg_crypto_init() != 0 ||
		    ike_sk_keys_init(&gcm, IKE_ENCR_AES_GCM_16, 256, 0, ek, NULL, false) != 0 ||
		    ike_sk_keys_init(&cbc, IKE_ENCR_AES_CBC, 128, SG_INTEG_HMAC_SHA2_256_128, ek,
				     ak, false) != 0)
			abort();
		keyed = 1;
	}
	if (size > sizeof(buf))
		return 0;
	memcpy(buf, data, size);
	int rc = ike_parse(buf, size, &m, &why);
	IKE_FUZZ_RC(rc, why);
	ike_fuzz_need(m.hdr.length <= size && m.npl <= IKE_MAX_PAYLOADS);
	payloads(&m);
	if (m.npl && m.pl[m.npl - 1].type == IKE_PL_SK) {
		/* Two tries with different keys: each decrypts in place, so restore between. */
		struct ike_msg m2 = m;
		rc = ike_open_sk(&m2, buf, &gcm, &why);
		if (rc == 0)
			payloads(&m2);
		memcpy(buf, data, size);
		m2 = m;
		rc = ike_open_sk(&m2, buf, &cbc, &why);
		if (rc == 0)
			payloads(&m2);
	}
	if (m.npl && m.pl[m.npl - 1].type == IKE_PL_SKF) {
		const uint8_t *c;
		size_t n;
		uint8_t first;
		CHECKED(ike_open_skf(&m, buf, &gcm, &c, &n, &first, &why));
	}
	return 0;
}
