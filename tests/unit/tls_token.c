/* Session tokens of the TLS transport (src/net/tls_token.c): the client's hello, the server's
 * public key in PEM, and the verification of a token (signature, header, claims, time). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <secureguard/sg_errors.h>

#include "tls_token_mint.h"

#define CPK "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=" /* bytes 1..32 */
#define NOW 1800000000LL

static uint8_t priv[SG_P384_PRIV_LEN];
static struct tls_token_key key;

static int setup(void **state)
{
	char pem[512];
	const char *why = NULL;

	(void)state;
	mint_priv(priv, 0x11);
	mint_pem(pem, sizeof(pem), priv);
	return tls_token_key_from_pem(&key, pem, strlen(pem), &why);
}

static void test_hello(void **state)
{
	uint8_t buf[TLS_HELLO_HDR_LEN + TLS_TOKEN_MAX + 4];
	const uint8_t *tok = NULL;
	size_t toklen = 0;
	const char *why = NULL;

	(void)state;
	tls_hello_encode(buf, 5);
	memcpy(buf + TLS_HELLO_HDR_LEN, "a.b.c", 5);
	/* Every prefix asks for more; the whole takes exactly header and token. */
	for (size_t n = 0; n < TLS_HELLO_HDR_LEN + 5; n++)
		assert_int_equal(tls_hello_parse(buf, n, &tok, &toklen, &why), 0);
	assert_int_equal(tls_hello_parse(buf, sizeof(buf), &tok, &toklen, &why),
			 TLS_HELLO_HDR_LEN + 5);
	assert_ptr_equal(tok, buf + TLS_HELLO_HDR_LEN);
	assert_int_equal(toklen, 5);
	/* A frame (a client without a token) is refused at its first byte. */
	static const uint8_t frame[] = {0x00, 0x94, 0x01};
	assert_int_equal(tls_hello_parse(frame, 1, &tok, &toklen, &why), SG_EPARSE);
	assert_non_null(strstr(why, "no session token"));
	/* Another type; a length of 0 or over the bound. */
	buf[8] = 2;
	assert_int_equal(tls_hello_parse(buf, 9, &tok, &toklen, &why), SG_EPARSE);
	tls_hello_encode(buf, 0);
	assert_int_equal(tls_hello_parse(buf, TLS_HELLO_HDR_LEN, &tok, &toklen, &why), SG_EPARSE);
	tls_hello_encode(buf, TLS_TOKEN_MAX + 1);
	assert_int_equal(tls_hello_parse(buf, TLS_HELLO_HDR_LEN, &tok, &toklen, &why), SG_EPARSE);
	tls_hello_encode(buf, TLS_TOKEN_MAX);
	assert_int_equal(tls_hello_parse(buf, sizeof(buf), &tok, &toklen, &why),
			 TLS_HELLO_HDR_LEN + TLS_TOKEN_MAX);
}

static void test_key_pem(void **state)
{
	struct tls_token_key k;
	char pem[512];
	const char *why = NULL;

	(void)state;
	mint_pem(pem, sizeof(pem), priv);
	assert_int_equal(tls_token_key_from_pem(&k, pem, strlen(pem), &why), 0);
	assert_memory_equal(&k, &key, sizeof(k));
	assert_int_equal(tls_token_key_from_pem(&k, "hello", 5, &why), SG_EPARSE);
	/* A P-256 key (openssl ecparam -name prime256v1 | openssl pkey -pubout). */
	static const char p256[] =
	    "-----BEGIN PUBLIC KEY-----\n"
	    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEt6J8E8Dkpv1b2iM0yJcQn8TsVMgJ\n"
	    "eUeXKyHSZB+ZFQfH6tbWyWIn3WDXv0aZmCnZt6T8jVnNrPq6WrIy1dABEA==\n"
	    "-----END PUBLIC KEY-----\n";
	assert_int_equal(tls_token_key_from_pem(&k, p256, strlen(p256), &why), SG_EPARSE);
	assert_non_null(strstr(why, "P-384"));
	/* Cut short: no END line. */
	assert_int_equal(tls_token_key_from_pem(&k, pem, 60, &why), SG_EPARSE);
}

static void test_verify(void **state)
{
	char tok[2048];
	struct tls_token_claims c;
	const char *why = NULL;
	size_t n;
	uint8_t want[32];

	(void)state;
	for (int i = 0; i < 32; i++)
		want[i] = (uint8_t)(i + 1);
	n = mint_token(tok, sizeof(tok), priv, CPK, "s-1", NOW - 10, NOW + 100);
	assert_int_equal(tls_token_verify((uint8_t *)tok, n, &key, NOW, &c, &why), 0);
	assert_memory_equal(c.client_key, want, 32);
	assert_string_equal(c.sid, "s-1");
	assert_string_equal(c.sub, "c-1");
	assert_string_equal(c.net, "n-1");
	assert_int_equal(c.exp, NOW + 100);

	/* Expired to the second; not yet valid beyond the leeway. */
	assert_int_equal(tls_token_verify((uint8_t *)tok, n, &key, NOW + 100, &c, &why), SG_ESTALE);
	assert_string_equal(why, "session token expired");
	assert_int_equal(c.exp, 0); /* zeroed on refusal */
	assert_int_equal(
	    tls_token_verify((uint8_t *)tok, n, &key, NOW - 10 - TLS_TOKEN_LEEWAY_S, &c, &why), 0);
	assert_int_equal(
	    tls_token_verify((uint8_t *)tok, n, &key, NOW - 11 - TLS_TOKEN_LEEWAY_S, &c, &why),
	    SG_ESTALE);

	/* Any bit flipped in the signed part or the signature: refused by the signature. */
	for (size_t i = 0; i < n; i += 7) {
		char t2[2048];
		memcpy(t2, tok, n);
		if (t2[i] == '.')
			continue;
		t2[i] = t2[i] == 'A' ? 'B' : 'A';
		int r = tls_token_verify((uint8_t *)t2, n, &key, NOW, &c, &why);
		assert_true(r == SG_EAUTH || r == SG_EPARSE);
	}
	/* Another server's key. */
	uint8_t other[SG_P384_PRIV_LEN];
	mint_priv(other, 0x22);
	n = mint_token(tok, sizeof(tok), other, CPK, "s-1", NOW - 10, NOW + 100);
	assert_int_equal(tls_token_verify((uint8_t *)tok, n, &key, NOW, &c, &why), SG_EAUTH);
	assert_non_null(strstr(why, "does not verify"));
}

/* Signed, but not what a session token must be: each is refused after the signature. */
static void test_verify_shapes(void **state)
{
	static const struct {
		const char *header, *claims;
	} bad[] = {
	    {"{\"alg\":\"ES256\",\"typ\":\"sg-tls-session+jwt\"}", NULL},
	    {"{\"alg\":\"ES384\",\"typ\":\"JWT\"}", NULL},
	    {"{\"alg\":\"ES384\",\"alg\":\"ES384\",\"typ\":\"sg-tls-session+jwt\"}", NULL},
	    {"{\"alg\":\"ES384\",\"typ\":\"sg-tls-session+jwt\",\"x\":{}}", NULL},
	    {"[]", NULL},
	    {NULL, "{\"sid\":\"s\",\"sub\":\"c\",\"net\":\"n\",\"cpk\":\"" CPK "\",\"nbf\":1,"
		   "\"iat\":1,\"exp\":1,\"exp\":9999999999,\"iss\":\"i\"}"},
	    {NULL, "{\"sid\":\"s\",\"sub\":\"c\",\"net\":\"n\",\"cpk\":\"" CPK "\",\"nbf\":1,"
		   "\"iat\":1,\"iss\":\"i\"}"},
	    {NULL, "{\"sid\":\"s\",\"sub\":\"c\",\"net\":\"n\",\"cpk\":\"AAAA\",\"nbf\":1,"
		   "\"iat\":1,\"exp\":9999999999,\"iss\":\"i\"}"},
	    {NULL, "{\"sid\":\"s\",\"sub\":\"c\",\"net\":\"n\",\"cpk\":\"" CPK "\",\"nbf\":1,"
		   "\"iat\":1,\"exp\":\"9999999999\",\"iss\":\"i\"}"},
	    {NULL, "{\"sid\":\"s\",\"sub\":\"c\",\"net\":\"n\",\"cpk\":\"" CPK "\",\"nbf\":1,"
		   "\"iat\":1,\"exp\":99999999999999999999,\"iss\":\"i\"}"},
	    {NULL, "{\"sid\":\"\\u0041\",\"sub\":\"c\",\"net\":\"n\",\"cpk\":\"" CPK "\",\"nbf\":1,"
		   "\"iat\":1,\"exp\":9999999999,\"iss\":\"i\"}"},
	    {NULL, "{\"sid\":\"s\",\"sub\":\"c\",\"net\":\"n\",\"cpk\":\"" CPK "\",\"nbf\":1,"
		   "\"iat\":1,\"exp\":9999999999,\"iss\":\"i\"} x"},
	};
	static const char good_claims[] =
	    "{\"sid\":\"s\",\"sub\":\"c\",\"net\":\"n\",\"cpk\":\"" CPK "\",\"nbf\":1,"
	    "\"iat\":1,\"exp\":9999999999,\"iss\":\"i\",\"extra\":\"ok\"}";
	char tok[2048];
	struct tls_token_claims c;
	const char *why = NULL;

	(void)state;
	size_t n = mint_jws(tok, sizeof(tok), priv, MINT_HEADER, good_claims);
	assert_int_equal(tls_token_verify((uint8_t *)tok, n, &key, NOW, &c, &why), 0);
	for (size_t i = 0; i < SG_ARRAY_LEN(bad); i++) {
		n = mint_jws(tok, sizeof(tok), priv, bad[i].header ? bad[i].header : MINT_HEADER,
			     bad[i].claims ? bad[i].claims : good_claims);
		int r = tls_token_verify((uint8_t *)tok, n, &key, NOW, &c, &why);
		if (r != SG_EPARSE)
			fail_msg("case %zu: %d (%s)", i, r, why ? why : "");
	}
	/* Not a compact JWS at all. */
	assert_int_equal(tls_token_verify((const uint8_t *)"a.b", 3, &key, NOW, &c, &why),
			 SG_EPARSE);
	assert_int_equal(tls_token_verify((const uint8_t *)"a.b.c.d", 7, &key, NOW, &c, &why),
			 SG_EPARSE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hello),
	    cmocka_unit_test(test_key_pem),
	    cmocka_unit_test(test_verify),
	    cmocka_unit_test(test_verify_shapes),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
