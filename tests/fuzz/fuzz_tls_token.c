/* Fuzz target for the TLS transport's session tokens (src/net/tls_token.c). The first byte picks
 * what the rest is:
 *   0  a client hello as the listener receives it (tls_hello_parse on every prefix: a verdict on
 *      a prefix must never contradict the verdict on the whole)
 *   1  a token as received: verified with a fixed key (nearly always refused by the signature)
 *   2  header and claims JSON, split at the first NUL: signed here with the fixed key, so the
 *      JSON readers behind the signature check are reached, then verified
 *   3  a PEM public key (tls_token_key_from_pem)
 * Claims must come out zeroed on every refusal and NUL-terminated on success. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <secureguard/sg_errors.h>

#include "../unit/tls_token_mint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_claims(int r, const struct tls_token_claims *c)
{
	static const struct tls_token_claims zero;

	if (r != 0) {
		if (memcmp(c, &zero, sizeof(zero)))
			abort();
		return;
	}
	if (!memchr(c->sid, 0, sizeof(c->sid)) || !memchr(c->sub, 0, sizeof(c->sub)) ||
	    !memchr(c->net, 0, sizeof(c->net)) || !c->sid[0])
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t priv[SG_P384_PRIV_LEN];
	static struct tls_token_key key;
	static bool ready;
	struct tls_token_claims c;
	const char *why = NULL;

	if (!ready) {
		char pem[512];
		mint_priv(priv, 0x11);
		mint_pem(pem, sizeof(pem), priv);
		if (tls_token_key_from_pem(&key, pem, strlen(pem), &why) != 0)
			abort();
		ready = true;
	}
	if (size < 1)
		return 0;
	const uint8_t *p = data + 1;
	size_t n = size - 1;
	switch (data[0] & 3) {
	case 0: {
		const uint8_t *tok = NULL;
		size_t toklen = 0;
		int whole = tls_hello_parse(p, n, &tok, &toklen, &why);
		if (whole > 0 &&
		    ((size_t)whole > n || toklen == 0 || toklen > TLS_TOKEN_MAX ||
		     tok != p + TLS_HELLO_HDR_LEN || (size_t)whole != TLS_HELLO_HDR_LEN + toklen))
			abort();
		for (size_t i = 0; i < n && i < TLS_HELLO_HDR_LEN + 8; i++) {
			int r = tls_hello_parse(p, i, &tok, &toklen, &why);
			/* A prefix refused means the whole is refused; a prefix taken is the whole.
			 */
			if ((r < 0 && whole >= 0) || (r > 0 && r != whole))
				abort();
		}
		break;
	}
	case 1: {
		int r = tls_token_verify(p, n, &key, 1800000000, &c, &why);
		check_claims(r, &c);
		break;
	}
	case 2: {
		const uint8_t *nul = memchr(p, 0, n);
		char header[600], claims[2100], tok[4 * (600 + 2100 + 200) / 3 + 16];
		size_t hl = nul ? (size_t)(nul - p) : 0;
		if (!nul || hl >= sizeof(header) || n - hl - 1 >= sizeof(claims))
			return 0;
		memcpy(header, p, hl);
		header[hl] = 0;
		memcpy(claims, nul + 1, n - hl - 1);
		claims[n - hl - 1] = 0;
		if (strlen(claims) != n - hl - 1)
			return 0; /* a NUL inside: the minting helper takes C strings */
		size_t tl = mint_jws(tok, sizeof(tok), priv, header, claims);
		int r = tls_token_verify((const uint8_t *)tok, tl, &key, 1800000000, &c, &why);
		check_claims(r, &c);
		break;
	}
	default: {
		struct tls_token_key k;
		static const struct tls_token_key zero;
		/* Refused: the key comes out zeroed, never half filled. */
		if (tls_token_key_from_pem(&k, (const char *)p, n, &why) != 0 &&
		    memcmp(&k, &zero, sizeof(k)))
			abort();
		break;
	}
	}
	return 0;
}
