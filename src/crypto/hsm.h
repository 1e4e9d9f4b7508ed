/* Private keys in a PKCS#11 token (an HSM, a smart card, SoftHSM2 in the tests), named by an
 * RFC 7512 URI ("pkcs11:token=sg;object=master;type=private"). The key never leaves the token:
 * OpenSSL reaches it through libp11's "pkcs11" engine (Debian: libengine-pkcs11-openssl), and
 * every operation on it (ECDSA or RSA signatures, ECDH) runs inside the token. hsm.c is the only
 * file that uses OpenSSL's ENGINE API (deprecated in 3.0, still present; Debian 12 has no
 * PKCS#11 provider): a provider can replace it there alone.
 *
 * The PIN comes from the environment or a file, never from a command line: SECUREGUARD_PKCS11_PIN,
 * else the file named by SECUREGUARD_PKCS11_PIN_FILE (its first line), else the URI's
 * pin-source=file:PATH (RFC 7512 section 2.3). A URI with pin-value= is refused. The PKCS#11
 * module is the URI's module-path= attribute, else SECUREGUARD_PKCS11_MODULE, else p11-kit's
 * proxy (which loads the modules registered with p11-kit, SoftHSM2's among them). */
#ifndef SG_CRYPTO_HSM_H
#define SG_CRYPTO_HSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"
#include "crypto/crypto.h"

#define SG_HSM_PIN_MAX 256
#define SG_HSM_URI_MAX 1024

struct sg_hsm_key;

/* True if s names a PKCS#11 object ("pkcs11:" prefix). */
bool sg_hsm_is_uri(const char *s);

/* The PIN as described above, into pin (NUL-terminated; the caller wipes it with sg_memzero).
 * 0, or SG_ENOENT (no PIN anywhere) / SG_EIO / SG_EINVAL with err set. The PIN itself is never
 * part of err. */
int sg_hsm_pin_read(const char *uri, char pin[SG_HSM_PIN_MAX], char *err, size_t errlen) SG_WUR;

/* Logs in to the token of uri with pin and finds its private key (EC or RSA). 0, or a negative
 * SG_E* code with err naming the URI (never the PIN) and the token's reason. */
int sg_hsm_key_open(const char *uri, const char *pin, struct sg_hsm_key **out, char *err,
		    size_t errlen) SG_WUR;
/* The same, with the PIN from sg_hsm_pin_read (wiped before it returns). */
int sg_hsm_key_open_env(const char *uri, struct sg_hsm_key **out, char *err, size_t errlen) SG_WUR;
void sg_hsm_key_free(struct sg_hsm_key *k);

/* The key as OpenSSL's EVP_PKEY, owned by k: for signing certificates (net/tls_cert.c). */
struct evp_pkey_st;
struct evp_pkey_st *sg_hsm_key_pkey(const struct sg_hsm_key *k);

/* For a P-384 key: its public point, SEC1 compressed. False for another kind of key. */
bool sg_hsm_key_p384_public(const struct sg_hsm_key *k, uint8_t pub[SG_P384_PUB_LEN]) SG_WUR;
/* ECDH (SP 800-56A) inside the token: the X coordinate of the token's scalar times peer (a
 * compressed P-384 point). */
bool sg_hsm_key_p384_ecdh(const struct sg_hsm_key *k, uint8_t out[SG_P384_SHARED_LEN],
			  const uint8_t peer[SG_P384_PUB_LEN]) SG_WUR;

#endif
