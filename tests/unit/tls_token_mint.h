/* Session tokens made in tests (tests/unit/tls_token.c, tests/unit/tls.c): a fixed P-384 key,
 * its PEM, and a compact JWS of any header and claims, signed as the server signs them. */
#ifndef SG_TEST_TLS_TOKEN_MINT_H
#define SG_TEST_TLS_TOKEN_MINT_H

#include <stdio.h>
#include <string.h>

#include "common/b64.h"
#include "crypto/crypto.h"
#include "net/tls_token.h"

/* A scalar below P-384's order (which starts 0xff...): any 0x11 pattern is. */
static inline void mint_priv(uint8_t priv[SG_P384_PRIV_LEN], uint8_t fill)
{
	memset(priv, fill, SG_P384_PRIV_LEN);
}

/* The SubjectPublicKeyInfo PEM of priv's public key, as the server publishes it. */
static inline void mint_pem(char *out, size_t cap, const uint8_t priv[SG_P384_PRIV_LEN])
{
	static const uint8_t prefix[] = {0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86,
					 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
					 0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00, 0x04};
	uint8_t der[sizeof(prefix) + 96];
	char b64[256];

	memcpy(der, prefix, sizeof(prefix));
	if (!sg_p384_public_xy(der + sizeof(prefix), der + sizeof(prefix) + 48, priv))
		abort();
	sg_b64_encode(b64, der, sizeof(der), false);
	snprintf(out, cap,
		 "-----BEGIN PUBLIC KEY-----\n%.64s\n%.64s\n%s\n-----END PUBLIC KEY-----\n", b64,
		 b64 + 64, b64 + 128);
}

/* header.claims.signature; returns its length. */
static inline size_t mint_jws(char *out, size_t cap, const uint8_t priv[SG_P384_PRIV_LEN],
			      const char *header, const char *claims)
{
	uint8_t sig[SG_ES384_SIG_LEN];
	size_t n;

	if (cap < 4 * (strlen(header) + strlen(claims) + 200) / 3)
		abort();
	sg_b64_encode(out, (const uint8_t *)header, strlen(header), true);
	strcat(out, ".");
	n = strlen(out);
	sg_b64_encode(out + n, (const uint8_t *)claims, strlen(claims), true);
	n = strlen(out);
	if (!sg_es384_sign(sig, priv, out, n))
		abort();
	out[n++] = '.';
	sg_b64_encode(out + n, sig, sizeof(sig), true);
	return strlen(out);
}

#define MINT_HEADER "{\"alg\":\"ES384\",\"kid\":\"k1\",\"typ\":\"sg-tls-session+jwt\"}"

/* The claims the server writes, for client key cpk (base64) valid over [nbf, exp). */
static inline size_t mint_token(char *out, size_t cap, const uint8_t priv[SG_P384_PRIV_LEN],
				const char *cpk, const char *sid, long long nbf, long long exp)
{
	char claims[512];

	snprintf(claims, sizeof(claims),
		 "{\"iss\":\"https://sg.example\",\"sub\":\"c-1\",\"sid\":\"%s\",\"net\":\"n-1\","
		 "\"cpk\":\"%s\",\"nbf\":%lld,\"iat\":%lld,\"exp\":%lld}",
		 sid, cpk, nbf, nbf, exp);
	return mint_jws(out, cap, priv, MINT_HEADER, claims);
}

#endif
