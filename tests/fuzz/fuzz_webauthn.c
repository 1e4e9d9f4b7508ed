/* Fuzz target for the WebAuthn data of passkeys (src/server/webauthn.c): the first byte picks
 * the parser, the rest is its input: 0 an attestation object (and its authenticator data), 1
 * authenticator data of an assertion, 2 a COSE key, 3 a client data JSON, anything else the CBOR
 * walk alone.
 *
 * Checks, besides ASan/UBSan: what parses is within its bounds (a credential id of 1..1023
 * bytes, a COSE key of ES256 or ES384 with coordinates of the curve's length, the key's bytes
 * inside the input); a COSE key parsed out of authenticator data parses again on its own to the
 * same key; the CBOR walk never claims more bytes than it was given; every refusal says why. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/webauthn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_key(const struct wa_cose_key *k)
{
	if (!((k->alg == WA_ES256 && k->coord_len == 32) || (k->alg == WA_ES384 && k->coord_len == 48)))
		abort();
}

static void check_auth_data(const uint8_t *p, size_t n, bool reg, int rc,
			    const struct wa_auth_data *ad, const char *why)
{
	struct wa_cose_key again;
	char w[WA_WHY_LEN];

	if (rc) {
		if (!why[0])
			abort();
		return;
	}
	if (!reg)
		return;
	if (!ad->cred_id_len || ad->cred_id_len > WA_MAX_CRED_ID || !ad->cose ||
	    ad->cose < p || ad->cose + ad->cose_len > p + n)
		abort();
	check_key(&ad->key);
	if (wa_cose_parse(ad->cose, ad->cose_len, &again, w, sizeof(w)) ||
	    memcmp(&again, &ad->key, sizeof(again)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct wa_attestation a;
	static struct wa_auth_data ad;
	struct wa_cose_key k;
	uint8_t ch[WA_CHALLENGE_LEN];
	char why[WA_WHY_LEN] = "";
	size_t len;
	int rc;

	if (!size)
		return 0;
	switch (data[0]) {
	case 0:
		rc = wa_attestation_parse(data + 1, size - 1, &a, why, sizeof(why));
		if (rc) {
			if (!why[0])
				abort();
			break;
		}
		if (a.auth_data_len > WA_MAX_AUTH_DATA || a.sig_len > WA_MAX_SIG ||
		    (a.self_signed && !a.sig_len))
			abort();
		why[0] = 0;
		rc = wa_auth_data_parse(a.auth_data, a.auth_data_len, true, &ad, why, sizeof(why));
		check_auth_data(a.auth_data, a.auth_data_len, true, rc, &ad, why);
		break;
	case 1:
		rc = wa_auth_data_parse(data + 1, size - 1, false, &ad, why, sizeof(why));
		check_auth_data(data + 1, size - 1, false, rc, &ad, why);
		rc = wa_auth_data_parse(data + 1, size - 1, true, &ad, why, sizeof(why));
		check_auth_data(data + 1, size - 1, true, rc, &ad, why);
		break;
	case 2:
		rc = wa_cose_parse(data + 1, size - 1, &k, why, sizeof(why));
		if (!rc)
			check_key(&k);
		else if (!why[0])
			abort();
		break;
	case 3:
		rc = wa_client_data_parse(data + 1, size - 1, "webauthn.get", "https://sg.example.com",
					  ch, why, sizeof(why));
		if (rc && !why[0])
			abort();
		break;
	default:
		if (wa_cbor_walk(data + 1, size - 1, WA_CBOR_MAX_DEPTH, &len, why, sizeof(why))) {
			if (len == 0 || len > size - 1)
				abort();
		} else if (!why[0]) {
			abort();
		}
		break;
	}
	return 0;
}
