/* PKCS#11 keys through libp11's engine (hsm.h). The one file of SecureGuard that uses OpenSSL's
 * ENGINE API and the EC_KEY calls an engine key needs: both are deprecated in OpenSSL 3.0 but
 * present, and Debian 12 ships libp11's engine but no PKCS#11 provider. */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <secureguard/sg_errors.h>

#include "crypto/crypto_int.h"
#include "crypto/hsm.h"

#define HSM_ENGINE_ID	   "pkcs11"
#define HSM_DEFAULT_MODULE "p11-kit-proxy.so"

struct sg_hsm_key {
	ENGINE *e;
	EVP_PKEY *k;
};

bool sg_hsm_is_uri(const char *s)
{
	return s && !strncmp(s, "pkcs11:", 7);
}

/* The value of query attribute `name` of a PKCS#11 URI (after '?', attributes separated by
 * '&'), copied to out; false when absent or longer than cap. */
static bool uri_query(const char *uri, const char *name, char *out, size_t cap)
{
	const char *q = strchr(uri, '?');
	size_t nl = strlen(name);

	while (q) {
		const char *a = q + 1, *end = strchr(a, '&');
		size_t al = end ? (size_t)(end - a) : strlen(a);

		if (al > nl && a[nl] == '=' && !strncmp(a, name, nl)) {
			if (al - nl - 1 >= cap)
				return false;
			memcpy(out, a + nl + 1, al - nl - 1);
			out[al - nl - 1] = 0;
			return true;
		}
		q = end;
	}
	return false;
}

static const char *ossl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *s = e ? ERR_reason_error_string(e) : NULL;

	return s ? s : "no reason given";
}

/* The first line of a PIN file (at most SG_HSM_PIN_MAX - 1 bytes). */
static int pin_from_file(const char *path, char pin[SG_HSM_PIN_MAX], char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0) {
		snprintf(err, errlen, "PIN file %s: %s", path, strerror(errno));
		return SG_EIO;
	}
	n = read(fd, pin, SG_HSM_PIN_MAX);
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "PIN file %s: %s", path, strerror(errno));
		return SG_EIO;
	}
	if (n == SG_HSM_PIN_MAX) {
		sg_memzero(pin, SG_HSM_PIN_MAX);
		snprintf(err, errlen, "PIN file %s: longer than %d bytes", path, SG_HSM_PIN_MAX - 1);
		return SG_EINVAL;
	}
	pin[n] = 0;
	pin[strcspn(pin, "\r\n")] = 0;
	return 0;
}

int sg_hsm_pin_read(const char *uri, char pin[SG_HSM_PIN_MAX], char *err, size_t errlen)
{
	const char *env = getenv("SECUREGUARD_PKCS11_PIN");
	char src[SG_HSM_URI_MAX];

	pin[0] = 0;
	if (env && *env) {
		if (strlen(env) >= SG_HSM_PIN_MAX) {
			snprintf(err, errlen, "SECUREGUARD_PKCS11_PIN: longer than %d bytes",
				 SG_HSM_PIN_MAX - 1);
			return SG_EINVAL;
		}
		snprintf(pin, SG_HSM_PIN_MAX, "%s", env);
		return 0;
	}
	env = getenv("SECUREGUARD_PKCS11_PIN_FILE");
	if (env && *env)
		return pin_from_file(env, pin, err, errlen);
	if (uri && uri_query(uri, "pin-source", src, sizeof(src))) {
		if (strncmp(src, "file:", 5)) {
			snprintf(err, errlen, "%s: pin-source must be file:PATH", uri);
			return SG_EINVAL;
		}
		return pin_from_file(src + 5 + (strncmp(src + 5, "//", 2) ? 0 : 2), pin, err,
				     errlen);
	}
	snprintf(err, errlen,
		 "no PIN for %s: set SECUREGUARD_PKCS11_PIN or SECUREGUARD_PKCS11_PIN_FILE, or "
		 "pin-source=file:PATH in the URI (never on the command line)",
		 uri ? uri : "the token");
	return SG_ENOENT;
}

int sg_hsm_key_open(const char *uri, const char *pin, struct sg_hsm_key **out, char *err,
		    size_t errlen)
{
	char module[SG_HSM_URI_MAX], path[SG_HSM_URI_MAX], scratch[8];
	const char *env = getenv("SECUREGUARD_PKCS11_MODULE");
	struct sg_hsm_key *k = NULL;
	ENGINE *e = NULL;
	bool inited = false;
	int rc = SG_ECRYPTO;

	*out = NULL;
	if (!sg_hsm_is_uri(uri) || strlen(uri) >= SG_HSM_URI_MAX) {
		snprintf(err, errlen, "%.64s: not a pkcs11: URI (RFC 7512)", uri ? uri : "");
		return SG_EINVAL;
	}
	if (uri_query(uri, "pin-value", scratch, sizeof(scratch)) || strstr(uri, "pin-value=")) {
		snprintf(err, errlen,
			 "the key URI carries pin-value: a PIN does not belong on a command line "
			 "(SECUREGUARD_PKCS11_PIN, SECUREGUARD_PKCS11_PIN_FILE or pin-source=file:)");
		return SG_EINVAL;
	}
	if (!pin || !*pin) {
		snprintf(err, errlen, "%s: no PIN", uri);
		return SG_EINVAL;
	}
	if (sg_crypto_init() != 0) {
		snprintf(err, errlen, "the crypto library does not initialise");
		return SG_ECRYPTO;
	}
	if (!uri_query(uri, "module-path", module, sizeof(module)))
		snprintf(module, sizeof(module), "%s", env && *env ? env : HSM_DEFAULT_MODULE);
	/* libp11 takes the path part only: the query (module-path, pin-source) is ours. */
	snprintf(path, sizeof(path), "%.*s", (int)strcspn(uri, "?"), uri);

	ERR_clear_error();
	ENGINE_load_builtin_engines();
	e = ENGINE_by_id(HSM_ENGINE_ID);
	if (!e) {
		snprintf(err, errlen,
			 "OpenSSL has no \"%s\" engine (install libengine-pkcs11-openssl): %s",
			 HSM_ENGINE_ID, ossl_reason());
		goto fail;
	}
	if (!ENGINE_ctrl_cmd_string(e, "MODULE_PATH", module, 0)) {
		snprintf(err, errlen, "PKCS#11 module %s: %s", module, ossl_reason());
		goto fail;
	}
	if (!ENGINE_init(e)) {
		snprintf(err, errlen, "PKCS#11 module %s does not load: %s", module, ossl_reason());
		goto fail;
	}
	inited = true;
	/* Set before the key is looked for, so libp11 never asks a terminal for it. */
	if (!ENGINE_ctrl_cmd_string(e, "PIN", pin, 0)) {
		snprintf(err, errlen, "%s: the engine takes no PIN: %s", path, ossl_reason());
		goto fail;
	}
	k = calloc(1, sizeof(*k));
	if (!k) {
		rc = SG_ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	k->k = ENGINE_load_private_key(e, path, NULL, NULL);
	/* The engine keeps its own copy of the PIN for re-logins; ours is the caller's to wipe. */
	if (!k->k) {
		rc = SG_ENOENT;
		snprintf(err, errlen,
			 "%s: no private key (token absent, wrong PIN, or no such object in module "
			 "%s): %s",
			 path, module, ossl_reason());
		goto fail;
	}
	if (EVP_PKEY_get_base_id(k->k) != EVP_PKEY_EC && EVP_PKEY_get_base_id(k->k) != EVP_PKEY_RSA) {
		rc = SG_EINVAL;
		snprintf(err, errlen, "%s: neither an EC nor an RSA key", path);
		goto fail;
	}
	k->e = e;
	*out = k;
	ERR_clear_error();
	return 0;
fail:
	if (k) {
		EVP_PKEY_free(k->k);
		free(k);
	}
	if (e) {
		if (inited)
			ENGINE_finish(e);
		ENGINE_free(e);
	}
	ERR_clear_error();
	return rc;
}

int sg_hsm_key_open_env(const char *uri, struct sg_hsm_key **out, char *err, size_t errlen)
{
	char pin[SG_HSM_PIN_MAX];
	int rc;

	*out = NULL;
	rc = sg_hsm_pin_read(uri, pin, err, errlen);
	if (!rc)
		rc = sg_hsm_key_open(uri, pin, out, err, errlen);
	sg_memzero(pin, sizeof(pin));
	return rc;
}

void sg_hsm_key_free(struct sg_hsm_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->k);
	ENGINE_finish(k->e);
	ENGINE_free(k->e);
	free(k);
}

struct evp_pkey_st *sg_hsm_key_pkey(const struct sg_hsm_key *k)
{
	return k->k;
}

/* The token's EC key as OpenSSL's EC_KEY (owned by the EVP_PKEY), when it is on P-384. */
static const EC_KEY *p384_of(const struct sg_hsm_key *k)
{
	const EC_KEY *ec = EVP_PKEY_get0_EC_KEY(k->k);
	const EC_GROUP *g = ec ? EC_KEY_get0_group(ec) : NULL;

	return g && EC_GROUP_get_curve_name(g) == NID_secp384r1 && EC_KEY_get0_public_key(ec)
		   ? ec
		   : NULL;
}

bool sg_hsm_key_p384_public(const struct sg_hsm_key *k, uint8_t pub[SG_P384_PUB_LEN])
{
	const EC_KEY *ec = p384_of(k);
	bool ok = ec && EC_POINT_point2oct(EC_KEY_get0_group(ec), EC_KEY_get0_public_key(ec),
					   POINT_CONVERSION_COMPRESSED, pub, SG_P384_PUB_LEN,
					   NULL) == SG_P384_PUB_LEN;

	ERR_clear_error();
	return ok;
}

bool sg_hsm_key_p384_ecdh(const struct sg_hsm_key *k, uint8_t out[SG_P384_SHARED_LEN],
			  const uint8_t peer[SG_P384_PUB_LEN])
{
	const struct sg__algs *a = sg__algs();
	EVP_PKEY *p = a && p384_of(k) ? sg__p384_pub_key(a, peer) : NULL;
	EVP_PKEY_CTX *ctx = p ? EVP_PKEY_CTX_new(k->k, k->e) : NULL;
	size_t n = SG_P384_SHARED_LEN;
	bool ok;

	/* libp11 runs CKM_ECDH1_DERIVE in the token; the shared secret is what comes out. */
	ok = ctx && EVP_PKEY_derive_init(ctx) == 1 && EVP_PKEY_derive_set_peer(ctx, p) == 1 &&
	     EVP_PKEY_derive(ctx, out, &n) == 1 && n == SG_P384_SHARED_LEN;
	if (!ok)
		sg_memzero(out, SG_P384_SHARED_LEN);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(p);
	ERR_clear_error();
	return ok;
}
