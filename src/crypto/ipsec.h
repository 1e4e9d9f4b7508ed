/* SecureGuard crypto module, IKEv2/ESP part: the algorithms of RFC 7296 and its transforms, over
 * the same OpenSSL 3 EVP boundary as crypto.h (nothing outside src/crypto includes OpenSSL).
 *
 *   key exchange  DH groups 14, 15 (MODP, RFC 3526), 19, 20, 21 (ECP, RFC 5903), 31 (Curve25519,
 *                 RFC 8031), with the IKE wire encodings and peer public value validation
 *   AEAD          AES-GCM with a 16-byte ICV, 128 and 256-bit keys (RFC 4106 / RFC 5282) and
 *                 ChaCha20-Poly1305 (RFC 7634): key material = key || 4-byte salt, nonce =
 *                 salt || 8-byte IV
 *   IKE cipher    AES-CBC 128/192/256 (RFC 3602) with HMAC-SHA2 integrity truncated to half
 *                 (RFC 4868: HMAC-SHA-256-128, -384-192, -512-256)
 *   PRF           HMAC-SHA-256/384/512 (RFC 4868), prf+ (RFC 7296 2.13), SKEYSEED (2.14, 2.18)
 *
 * FIPS: every approved algorithm here (the MODP and ECP groups, AES, SHA-2/HMAC) is fetched with
 * the fips suite's property query, so with OpenSSL's FIPS provider active it runs in the module;
 * Curve25519 and ChaCha20-Poly1305 come from the default provider and are refused by the FIPS
 * profile above this layer (sg_ke_group_fips, sg_ipsec_aead_fips).
 *
 * Conventions as in crypto.h: bool results are warn_unused_result, secrets are wiped on failure.
 */
#ifndef SG_CRYPTO_IPSEC_H
#define SG_CRYPTO_IPSEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"
#include "crypto/crypto.h"

/* ---- hashes, HMAC, PRF (IKEv2 transform type 2 IDs) --------------------------------------- */

enum sg_prf {
	SG_PRF_HMAC_SHA2_256 = 5,
	SG_PRF_HMAC_SHA2_384 = 6,
	SG_PRF_HMAC_SHA2_512 = 7,
};
#define SG_PRF_MAX_LEN 64

/* Output length of the PRF (32, 48, 64), 0 for an unknown id. Also its preferred key size. */
size_t sg_prf_len(unsigned prf);
/* HMAC-SHA2 of the concatenated iovs under key (any length). */
bool sg_prf(unsigned prf, uint8_t *out, const uint8_t *key, size_t keylen, const struct sg_iov *iov,
	    size_t niov) SG_WUR;
/* prf+ (RFC 7296 2.13): T1 = prf(K, S | 0x01), Tn = prf(K, Tn-1 | S | n); out = T1 | T2 | ...
 * truncated to outlen, which must be at most 255 * sg_prf_len. S is the concatenated iovs. */
bool sg_prf_plus(unsigned prf, uint8_t *out, size_t outlen, const uint8_t *key, size_t keylen,
		 const struct sg_iov *seed, size_t nseed) SG_WUR;
/* SHA-256/384/512 by output length (32, 48, 64), for signatures and NAT detection. */
bool sg_sha2(size_t len, uint8_t *out, const struct sg_iov *iov, size_t niov) SG_WUR;
/* SHA-1 (20 bytes): only where IKEv2 itself fixes it, NAT detection hashes (RFC 7296 2.23)
 * and certificate hashes; never as a negotiable algorithm. */
bool sg_sha1(uint8_t out[20], const struct sg_iov *iov, size_t niov) SG_WUR;

/* ---- integrity (transform type 3 IDs) ----------------------------------------------------- */

enum sg_integ {
	SG_INTEG_HMAC_SHA2_256_128 = 12,
	SG_INTEG_HMAC_SHA2_384_192 = 13,
	SG_INTEG_HMAC_SHA2_512_256 = 14,
};
/* Key length (32, 48, 64) and ICV length (16, 24, 32); 0 for an unknown id. */
size_t sg_integ_key_len(unsigned integ);
size_t sg_integ_icv_len(unsigned integ);
/* The truncated HMAC (RFC 4868 2.3). */
bool sg_integ_icv(unsigned integ, uint8_t *icv, const uint8_t *key, const struct sg_iov *iov,
		  size_t niov) SG_WUR;
/* Constant-time check of an ICV. */
bool sg_integ_verify(unsigned integ, const uint8_t *icv, const uint8_t *key,
		     const struct sg_iov *iov, size_t niov) SG_WUR;

/* ---- AES-CBC (transform type 1 ID 12, RFC 3602) --------------------------------------------- */

/* keylen 16, 24 or 32; len a multiple of 16 (the caller pads, as IKE's SK payload does); in
 * and out may be equal. */
bool sg_aes_cbc(bool encrypt, uint8_t *out, const uint8_t *in, size_t len, const uint8_t *key,
		size_t keylen, const uint8_t iv[16]) SG_WUR;

/* ---- AEAD (transform type 1 IDs 20 and 28) ------------------------------------------------- */

enum sg_ipsec_aead_alg {
	SG_IPSEC_AES_GCM_16 = 20,	 /* RFC 4106 / 5282, key 16 or 32 bytes + 4 salt */
	SG_IPSEC_CHACHA20_POLY1305 = 28, /* RFC 7634, key 32 bytes + 4 salt */
};
#define SG_IPSEC_SALT_LEN 4
#define SG_IPSEC_IV_LEN	  8
#define SG_IPSEC_ICV_LEN  16

/* An AEAD key for one direction of an SA: `keymat` is key || salt (keylen + 4 bytes, keylen in
 * bytes: 16 or 32 for GCM, 32 for ChaCha20-Poly1305). NULL for a bad combination, an algorithm
 * OpenSSL cannot provide, or no memory. Lanes and threads as sg_aead (crypto.h). */
struct sg_aead *sg_ipsec_aead_new(unsigned alg, const uint8_t *keymat, size_t keylen, bool encrypt);
/* Seals len bytes of src into dst (len + 16 bytes: ciphertext then ICV) with nonce
 * salt || iv and associated data ad. dst may equal src. */
bool sg_ipsec_aead_seal(struct sg_aead *k, unsigned lane, uint8_t *dst, const uint8_t *src,
			size_t len, const uint8_t *ad, size_t adlen,
			const uint8_t iv[SG_IPSEC_IV_LEN]) SG_WUR;
/* Opens len bytes (ciphertext and ICV, len >= 16) into dst (len - 16 bytes); false on a bad
 * ICV (dst wiped). */
bool sg_ipsec_aead_open(struct sg_aead *k, unsigned lane, uint8_t *dst, const uint8_t *src,
			size_t len, const uint8_t *ad, size_t adlen,
			const uint8_t iv[SG_IPSEC_IV_LEN]) SG_WUR;
/* Whether the algorithm with this key length may be used in the FIPS profile. */
bool sg_ipsec_aead_fips(unsigned alg, size_t keylen);

/* ---- key exchange (transform type 4 IDs) -------------------------------------------------- */

enum sg_ke_group {
	SG_KE_MODP_2048 = 14,
	SG_KE_MODP_3072 = 15,
	SG_KE_ECP_256 = 19,
	SG_KE_ECP_384 = 20,
	SG_KE_ECP_521 = 21,
	SG_KE_CURVE25519 = 31,
};
#define SG_KE_MAX_PUBLIC 384 /* MODP-3072 */
#define SG_KE_MAX_SHARED 384

/* Lengths of the KE payload's key exchange data and of g^ir; 0 for an unsupported group. MODP:
 * the prime's length (big-endian, zero-padded, RFC 7296 3.4); ECP: x || y, each the field's
 * length (RFC 5903 7); Curve25519: 32 (RFC 8031 2). */
size_t sg_ke_public_len(unsigned group);
size_t sg_ke_shared_len(unsigned group);
/* True if OpenSSL here can do the group. */
bool sg_ke_supported(unsigned group);
/* True for the groups approved for FIPS (SP 800-56A rev3: MODP 2048+ safe primes, P-curves). */
bool sg_ke_group_fips(unsigned group);
/* strongSwan's proposal keyword: "modp2048", "ecp384", "curve25519", ...; NULL if unknown. */
const char *sg_ke_group_name(unsigned group);

struct sg_ke;
/* A fresh key pair from OpenSSL's generator. NULL if unsupported or on failure. */
struct sg_ke *sg_ke_new(unsigned group);
/* A key pair from a known private value (tests with published vectors): ECP a big-endian
 * scalar of the field's length, Curve25519 32 bytes. NULL for MODP, a bad scalar, failure. */
struct sg_ke *sg_ke_from_private(unsigned group, const uint8_t *priv, size_t len);
unsigned sg_ke_group(const struct sg_ke *ke);
/* Writes sg_ke_public_len bytes. */
bool sg_ke_public(const struct sg_ke *ke, uint8_t *out) SG_WUR;
/* g^ir from the peer's public value, sg_ke_shared_len bytes. Validates the peer's value first:
 * MODP 1 < y < p-1 and in the prime-order subgroup, ECP a point on the curve (full public key
 * validation, SP 800-56A 5.6.2.3.3), Curve25519 a non-zero result (RFC 8031 2.2). 0,
 * SG_EINVAL (the length or the value is bad), SG_ECRYPTO. */
int sg_ke_derive(struct sg_ke *ke, const uint8_t *peer, size_t peer_len, uint8_t *shared) SG_WUR;
void sg_ke_free(struct sg_ke *ke); /* wipes the private key; NULL is fine */

#endif
