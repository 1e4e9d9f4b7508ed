/* Fuzz target for the gateway's ID token check (src/gateway/oidc.c, gw_oidc_verify): any
 * input, treated as a compact JWS, is refused with a reason and never accepted (nobody but the
 * holder of the provider's key can sign; the key here is the RFC 6979 A.2.6 public key, whose
 * private half the fuzzer does not have). Bounds: base64url lengths, JSON of any shape, kid
 * and alg of any type. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "gateway/gw_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct gw gw;
static struct gw_rt *rt;

static const uint8_t x[48] = {
    0xec, 0x3a, 0x4e, 0x41, 0x5b, 0x4e, 0x19, 0xa4, 0x56, 0x86, 0x18, 0x02, 0x9f, 0x42, 0x7f, 0xa5,
    0xda, 0x9a, 0x8b, 0xc4, 0xae, 0x92, 0xe0, 0x2e, 0x06, 0xaa, 0xe5, 0x28, 0x6b, 0x30, 0x0c, 0x64,
    0xde, 0xf8, 0xf0, 0xea, 0x90, 0x55, 0x86, 0x60, 0x64, 0xa2, 0x54, 0x51, 0x54, 0x80, 0xbc, 0x13};
static const uint8_t y[48] = {
    0x80, 0x15, 0xd9, 0xb7, 0x2d, 0x7d, 0x57, 0x24, 0x4e, 0xa8, 0xef, 0x9a, 0xc0, 0xc6, 0x21, 0x89,
    0x67, 0x08, 0xa5, 0x93, 0x67, 0xf9, 0xdf, 0xb9, 0xf5, 0x4c, 0xa8, 0x4b, 0x3f, 0x1c, 0x9d, 0xb1,
    0x28, 0x8b, 0x23, 0x1c, 0x3a, 0xe0, 0xd4, 0xfe, 0x73, 0x44, 0xfd, 0x25, 0x33, 0x26, 0x47, 0x20};

static void setup(void)
{
	static const char doc[] =
	    "{\"resources\": [{\"id\": \"l\", \"domains\": [\"l.test\"], \"auth\": \"login\","
	    " \"oidc\": {\"issuer\": \"https://idp.test\", \"client_id\": \"gw\"},"
	    " \"targets\": [{\"id\": \"t\", \"address\": \"10.0.0.1:80\"}]}]}";
	struct gw_conf *c = NULL;
	char err[GW_CONF_ERR_MAX];
	if (sg_crypto_init() != 0 || gw_conf_parse(doc, strlen(doc), &c, err, sizeof(err)) != 0)
		abort();
	rt = gw_rt_new(&gw, c, NULL);
	if (!rt)
		abort();
	rt->res[0].oidc = gw_oidc_with_key(&rt->res[0], "k1", x, y);
	if (!rt->res[0].oidc)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!rt)
		setup();
	char *tok = malloc(size + 1);
	if (!tok)
		return 0;
	memcpy(tok, data, size);
	tok[size] = '\0';
	char user[64];
	const char *why = NULL;
	int64_t exp;
	int rc = gw_oidc_verify(rt->res[0].oidc, tok, size, size & 1 ? "n" : NULL, user,
				sizeof(user), &exp, &why);
	if (rc == 0 || !why)
		abort();
	free(tok);
	return 0;
}
