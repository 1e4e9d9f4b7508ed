/* Crypto module lifecycle, utilities, randomness and the suite tables. */
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/rand.h>

#include <secureguard/sg_errors.h>

#include "crypto/crypto_int.h"

/* ---- lifecycle ----------------------------------------------------------------------------- */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_result = SG_ECRYPTO;
static struct sg__algs algs;

static void free_algs(void)
{
	for (size_t i = 0; i < SG__CIPHER_COUNT; i++)
		EVP_CIPHER_free(algs.cipher[i]);
	for (size_t i = 0; i < SG__MD_COUNT; i++)
		EVP_MD_free(algs.md[i]);
	for (size_t i = 0; i < SG__MAC_COUNT; i++)
		EVP_MAC_free(algs.mac[i]);
	EVP_KDF_free(algs.hkdf);
	memset(&algs, 0, sizeof(algs));
}

/* X25519 is not fetched ahead like the others (EVP_PKEY takes a name per call): probe it. */
static bool classic_x25519_ok(const char *propq)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "X25519", propq);
	bool ok = ctx != NULL && EVP_PKEY_keygen_init(ctx) == 1;

	EVP_PKEY_CTX_free(ctx);
	return ok;
}

static void do_init(void)
{
	const char *cq, *fq;

	/* Load openssl.cnf first: that is where a FIPS provider gets configured and activated. */
	if (OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL) != 1)
		return;

	algs.fips_active = OSSL_PROVIDER_available(NULL, "fips") == 1;
	algs.fips_propq = algs.fips_active ? "fips=yes" : NULL;
	/* WireGuard's algorithms (ChaCha20, BLAKE2s) are not FIPS-approved, so the classic suite
	 * always comes from the default provider. If openssl.cnf made "fips=yes" a default
	 * property, "-fips" drops it from the query (property(7), "-name" override). */
	algs.classic_propq = EVP_default_properties_is_fips_enabled(NULL) ? "-fips" : NULL;
	cq = algs.classic_propq;
	fq = algs.fips_propq;

	algs.cipher[SG__CIPHER_CHACHA20_POLY1305] = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", cq);
	algs.cipher[SG__CIPHER_CHACHA20] = EVP_CIPHER_fetch(NULL, "ChaCha20", cq);
	algs.cipher[SG__CIPHER_AES256_GCM] = EVP_CIPHER_fetch(NULL, "AES-256-GCM", fq);
	algs.md[SG__MD_BLAKE2S256] = EVP_MD_fetch(NULL, "BLAKE2S-256", cq);
	algs.md[SG__MD_SHA384] = EVP_MD_fetch(NULL, "SHA384", fq);
	algs.mac[SG__MAC_BLAKE2S128] = EVP_MAC_fetch(NULL, "BLAKE2SMAC", cq);
	algs.mac[SG__MAC_HMAC_BLAKE2S] = EVP_MAC_fetch(NULL, "HMAC", cq);
	algs.mac[SG__MAC_POLY1305] = EVP_MAC_fetch(NULL, "POLY1305", cq);
	algs.mac[SG__MAC_HMAC_SHA384] = EVP_MAC_fetch(NULL, "HMAC", fq);
	algs.hkdf = EVP_KDF_fetch(NULL, "HKDF", fq);
	/* IPsec (ipsec.c): optional, the functions that need one fail without it. */
	algs.cipher[SG__CIPHER_AES128_GCM] = EVP_CIPHER_fetch(NULL, "AES-128-GCM", fq);
	algs.cipher[SG__CIPHER_AES128_CBC] = EVP_CIPHER_fetch(NULL, "AES-128-CBC", fq);
	algs.cipher[SG__CIPHER_AES192_CBC] = EVP_CIPHER_fetch(NULL, "AES-192-CBC", fq);
	algs.cipher[SG__CIPHER_AES256_CBC] = EVP_CIPHER_fetch(NULL, "AES-256-CBC", fq);
	algs.md[SG__MD_SHA256] = EVP_MD_fetch(NULL, "SHA256", fq);
	algs.md[SG__MD_SHA512] = EVP_MD_fetch(NULL, "SHA512", fq);
	algs.md[SG__MD_SHA1] = EVP_MD_fetch(NULL, "SHA1", fq);
	algs.mac[SG__MAC_HMAC_SHA256] = EVP_MAC_fetch(NULL, "HMAC", fq);
	algs.mac[SG__MAC_HMAC_SHA512] = EVP_MAC_fetch(NULL, "HMAC", fq);
	algs.mac[SG__MAC_HMAC_SHA1] = EVP_MAC_fetch(NULL, "HMAC", fq);

	algs.classic_ok = algs.cipher[SG__CIPHER_CHACHA20_POLY1305] &&
			  algs.cipher[SG__CIPHER_CHACHA20] && algs.md[SG__MD_BLAKE2S256] &&
			  algs.mac[SG__MAC_BLAKE2S128] && algs.mac[SG__MAC_HMAC_BLAKE2S] &&
			  algs.mac[SG__MAC_POLY1305] && classic_x25519_ok(cq);
	algs.fips_ok = algs.cipher[SG__CIPHER_AES256_GCM] && algs.md[SG__MD_SHA384] &&
		       algs.mac[SG__MAC_HMAC_SHA384] && algs.hkdf;
	/* One suite is enough to run: a FIPS-only OpenSSL runs FIPS mode alone. Classic parts that
	 * were fetched while the suite is incomplete are dropped, so no half-suite is ever used. */
	if (!algs.classic_ok) {
		EVP_CIPHER_free(algs.cipher[SG__CIPHER_CHACHA20_POLY1305]);
		EVP_CIPHER_free(algs.cipher[SG__CIPHER_CHACHA20]);
		EVP_MD_free(algs.md[SG__MD_BLAKE2S256]);
		EVP_MAC_free(algs.mac[SG__MAC_BLAKE2S128]);
		EVP_MAC_free(algs.mac[SG__MAC_HMAC_BLAKE2S]);
		EVP_MAC_free(algs.mac[SG__MAC_POLY1305]);
		algs.cipher[SG__CIPHER_CHACHA20_POLY1305] = algs.cipher[SG__CIPHER_CHACHA20] = NULL;
		algs.md[SG__MD_BLAKE2S256] = NULL;
		algs.mac[SG__MAC_BLAKE2S128] = algs.mac[SG__MAC_HMAC_BLAKE2S] = NULL;
		algs.mac[SG__MAC_POLY1305] = NULL;
	}
	if (!algs.fips_ok)
		goto fail;
	init_result = 0;
	return;
fail:
	free_algs();
}

int sg_crypto_init(void)
{
	if (pthread_once(&init_once, do_init) != 0)
		return SG_ECRYPTO;
	return init_result;
}

const struct sg__algs *sg__algs(void)
{
	return sg_crypto_init() == 0 ? &algs : NULL;
}

bool sg_crypto_classic_available(void)
{
	return sg_crypto_init() == 0 && algs.classic_ok;
}

bool sg_crypto_fips_provider_active(void)
{
	return sg_crypto_init() == 0 && algs.fips_active;
}

const char *sg_crypto_library_version(void)
{
	return OpenSSL_version(OPENSSL_VERSION);
}

/* Folds one algorithm's provider into what a suite has so far ("" at first). */
static void note_provider(char *acc, size_t len, const OSSL_PROVIDER *p)
{
	const char *name = p ? OSSL_PROVIDER_get0_name(p) : "none";

	if (!acc[0])
		snprintf(acc, len, "%s", name);
	else if (!strstr(acc, name))
		snprintf(acc + strlen(acc), len - strlen(acc), "+%s", name);
}

static void suite_text(char *out, size_t len, const char *acc)
{
	if (!acc[0])
		snprintf(out, len, "none");
	else if (strchr(acc, '+'))
		snprintf(out, len, "mixed:%s", acc);
	else
		snprintf(out, len, "%s", acc);
}

char *sg_crypto_describe(char *out, size_t len)
{
	char f[96] = "", c[96] = "", fs[112], cs[112], ver[96] = "", name[96] = "";
	const char *selftest = "n/a";
	OSSL_PROVIDER *fips;

	if (sg_crypto_init() != 0) {
		snprintf(out, len, "fips_suite=none classic_suite=none");
		return out;
	}
	/* The FIPS suite: every algorithm it fetched, and the P-384 key operations (fetched per
	 * use; probed here with the same query). */
	note_provider(f, sizeof(f), EVP_CIPHER_get0_provider(algs.cipher[SG__CIPHER_AES256_GCM]));
	note_provider(f, sizeof(f), EVP_MD_get0_provider(algs.md[SG__MD_SHA384]));
	note_provider(f, sizeof(f), EVP_MAC_get0_provider(algs.mac[SG__MAC_HMAC_SHA384]));
	note_provider(f, sizeof(f), EVP_KDF_get0_provider(algs.hkdf));
	{
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", algs.fips_propq);

		if (ctx && EVP_PKEY_keygen_init(ctx) == 1)
			note_provider(f, sizeof(f), EVP_PKEY_CTX_get0_provider(ctx));
		else
			note_provider(f, sizeof(f), NULL);
		EVP_PKEY_CTX_free(ctx);
	}
	if (algs.classic_ok) {
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "X25519", algs.classic_propq);

		note_provider(c, sizeof(c),
			      EVP_CIPHER_get0_provider(algs.cipher[SG__CIPHER_CHACHA20_POLY1305]));
		note_provider(c, sizeof(c), EVP_MD_get0_provider(algs.md[SG__MD_BLAKE2S256]));
		note_provider(c, sizeof(c), EVP_MAC_get0_provider(algs.mac[SG__MAC_BLAKE2S128]));
		note_provider(c, sizeof(c), EVP_MAC_get0_provider(algs.mac[SG__MAC_HMAC_BLAKE2S]));
		if (ctx && EVP_PKEY_keygen_init(ctx) == 1)
			note_provider(c, sizeof(c), EVP_PKEY_CTX_get0_provider(ctx));
		EVP_PKEY_CTX_free(ctx);
	}
	suite_text(fs, sizeof(fs), f);
	suite_text(cs, sizeof(cs), c);
	fips = algs.fips_active ? OSSL_PROVIDER_load(NULL, "fips") : NULL;
	if (fips) {
		const char *n = NULL, *v = NULL;
		OSSL_PARAM q[] = {OSSL_PARAM_construct_utf8_ptr("name", (char **)&n, 0),
				  OSSL_PARAM_construct_utf8_ptr("version", (char **)&v, 0),
				  OSSL_PARAM_construct_end()};

		if (OSSL_PROVIDER_get_params(fips, q) == 1) {
			snprintf(name, sizeof(name), "%s", n ? n : "");
			snprintf(ver, sizeof(ver), "%s", v ? v : "");
		}
		selftest = OSSL_PROVIDER_self_test(fips) == 1 ? "passed" : "failed";
		OSSL_PROVIDER_unload(fips);
	}
	snprintf(out, len, "fips_suite=%s classic_suite=%s fips_provider=\"%s%s%s\" "
			   "fips_self_test=%s",
		 fs, cs, name[0] ? name : "none", ver[0] ? " " : "", ver, selftest);
	return out;
}

/* ---- utilities ----------------------------------------------------------------------------- */

void sg_memzero(void *p, size_t n)
{
	if (p != NULL && n > 0)
		explicit_bzero(p, n);
}

bool sg_memeq(const void *a, const void *b, size_t n)
{
	if (n == 0)
		return true;
	return CRYPTO_memcmp(a, b, n) == 0;
}

bool sg_is_zero(const void *p, size_t n)
{
	const volatile uint8_t *b = p;
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= b[i];
	/* Branch-free: (acc - 1) has bit 8 set only when acc was 0. */
	return (((unsigned int)acc - 1) >> 8) & 1;
}

/* ---- randomness ---------------------------------------------------------------------------- */

/* Test hook (sg_crypto_set_random). Set before threads start; not meant to change under load. */
static sg_random_fn random_hook;
static void *random_hook_ctx;

void sg_crypto_set_random(sg_random_fn fn, void *ctx)
{
	random_hook_ctx = ctx;
	random_hook = fn;
}

bool sg_random_bytes(void *buf, size_t n)
{
	uint8_t *p = buf;

	if (n == 0)
		return true;
	if (buf == NULL)
		return false;
	if (random_hook != NULL)
		return random_hook(random_hook_ctx, buf, n);
	/* RAND_bytes takes an int length. */
	while (n > 0) {
		size_t chunk = SG_MIN(n, (size_t)INT_MAX);

		if (RAND_bytes(p, (int)chunk) != 1) {
			sg_memzero(buf, (size_t)(p - (uint8_t *)buf));
			return false;
		}
		p += chunk;
		n -= chunk;
	}
	return true;
}

bool sg__random_small(void *buf, size_t n)
{
	if (random_hook != NULL)
		return random_hook(random_hook_ctx, buf, n);
	return sg__random_pool(buf, n);
}

uint32_t sg_random_u32(void)
{
	uint32_t v;

	if (!sg__random_small(&v, sizeof(v)))
		abort(); /* crypto.h: a process without randomness must not go on */
	return v;
}

uint64_t sg_random_u64(void)
{
	uint64_t v;

	if (!sg__random_small(&v, sizeof(v)))
		abort();
	return v;
}

/* ---- suite tables -------------------------------------------------------------------------- */

/* The public functions already have the table's signatures (array parameters decay to
 * pointers), so the tables point straight at them. */
static const struct sg_suite suite_classic = {
    .id = SG_SUITE_CLASSIC,
    .name = "classic",
    .dh_priv_len = SG_X25519_KEY_LEN,
    .dh_pub_len = SG_X25519_KEY_LEN,
    .dh_shared_len = SG_X25519_KEY_LEN,
    .hash_len = SG_BLAKE2S_LEN,
    .aead_key_len = SG_CHACHA_KEY_LEN,
    .dh_generate = sg_x25519_generate,
    .dh_public = sg_x25519_public,
    .dh = sg_x25519,
    .aead_encrypt = sg_chacha20poly1305_encrypt,
    .aead_decrypt = sg_chacha20poly1305_decrypt,
    .hash = sg_blake2s,
    .hmac = sg_hmac_blake2s,
    .nonce = sg_wg_nonce,
};

static const struct sg_suite suite_fips = {
    .id = SG_SUITE_FIPS,
    .name = "fips",
    .dh_priv_len = SG_P384_PRIV_LEN,
    .dh_pub_len = SG_P384_PUB_LEN,
    .dh_shared_len = SG_P384_SHARED_LEN,
    .hash_len = SG_SHA384_LEN,
    .aead_key_len = SG_AES256_KEY_LEN,
    .dh_generate = sg_p384_generate,
    .dh_public = sg_p384_public,
    .dh = sg_p384_ecdh,
    .aead_encrypt = sg_aes256gcm_encrypt,
    .aead_decrypt = sg_aes256gcm_decrypt,
    .hash = sg_sha384,
    .hmac = sg_hmac_sha384,
    .nonce = sg_noise_aesgcm_nonce,
};

const struct sg_suite *sg_suite_get(enum sg_suite_id id)
{
	switch (id) {
	case SG_SUITE_CLASSIC:
		return &suite_classic;
	case SG_SUITE_FIPS:
		return &suite_fips;
	}
	return NULL;
}
