/* Text encodings of 32-byte WireGuard keys.
 *
 * base64: the wg(8) format, 44 characters of RFC 4648 section 4 base64 ending in a single '='.
 * Decoding is strict: exactly 44 characters, only the standard alphabet, and the two unused low
 * bits of the last symbol must be zero, so every key has exactly one spelling (as wg(8) demands).
 * hex: 64 hex digits, the form the cross-platform UAPI uses (https://www.wireguard.com/xplatform/).
 *
 * Decoders run in time that depends only on the length of the input, never on its value, because
 * private and preshared keys go through them.
 */
#ifndef SG_CONFIG_KEY_H
#define SG_CONFIG_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"

#define SG_KEY_LEN	  32
#define SG_KEY_BASE64_LEN 44 /* characters, without the terminating NUL */
#define SG_KEY_HEX_LEN	  64 /* characters, without the terminating NUL */

/* Writes the 44-character base64 form and a NUL into out. */
void sg_key_to_base64(char out[SG_KEY_BASE64_LEN + 1], const uint8_t key[SG_KEY_LEN]);
/* Decodes exactly len characters of base64 (no NUL needed). Returns 0, or SG_EPARSE on a wrong
 * length, a character outside the alphabet, a missing '=' or nonzero padding bits; key is then
 * zeroed. */
int sg_key_from_base64(uint8_t key[SG_KEY_LEN], const char *in, size_t len) SG_WUR;

/* Writes 64 lowercase hex digits and a NUL into out. */
void sg_key_to_hex(char out[SG_KEY_HEX_LEN + 1], const uint8_t key[SG_KEY_LEN]);
/* Decodes exactly len hex digits (either case; the UAPI writes lowercase). Returns 0, or
 * SG_EPARSE on a wrong length or a non-hex character; key is then zeroed. */
int sg_key_from_hex(uint8_t key[SG_KEY_LEN], const char *in, size_t len) SG_WUR;

/* Constant-time: true iff all 32 bytes are zero (an unset key in the UAPI). */
bool sg_key_is_zero(const uint8_t key[SG_KEY_LEN]) SG_WUR;

/* ---- FIPS keys (ECDH P-384) -------------------------------------------------------------
 * Private: the 48-byte big-endian scalar in [1, n-1], 64 characters of base64 (no padding).
 * Public: the 49-byte SEC1 compressed point, 68 characters of base64 ending in "==".
 * Same canonical base64 rules as above; hex for the UAPI (96 and 98 digits). Decoders of
 * private keys also check the scalar's range and of public keys that the point is on the curve
 * (SG_EINVAL), after the encoding itself (SG_EPARSE). */
#define SG_FIPS_PRIV_LEN	48
#define SG_FIPS_PUB_LEN		49
#define SG_FIPS_PRIV_BASE64_LEN 64
#define SG_FIPS_PUB_BASE64_LEN	68

int sg_fipskey_generate(uint8_t priv[SG_FIPS_PRIV_LEN], uint8_t pub[SG_FIPS_PUB_LEN]) SG_WUR;
int sg_fipskey_public(uint8_t pub[SG_FIPS_PUB_LEN], const uint8_t priv[SG_FIPS_PRIV_LEN]) SG_WUR;
bool sg_fipskey_pub_valid(const uint8_t pub[SG_FIPS_PUB_LEN]) SG_WUR;
void sg_fipskey_priv_to_base64(char out[SG_FIPS_PRIV_BASE64_LEN + 1],
			       const uint8_t priv[SG_FIPS_PRIV_LEN]);
int sg_fipskey_priv_from_base64(uint8_t priv[SG_FIPS_PRIV_LEN], const char *in, size_t len) SG_WUR;
void sg_fipskey_pub_to_base64(char out[SG_FIPS_PUB_BASE64_LEN + 1],
			      const uint8_t pub[SG_FIPS_PUB_LEN]);
int sg_fipskey_pub_from_base64(uint8_t pub[SG_FIPS_PUB_LEN], const char *in, size_t len) SG_WUR;
/* Hex forms for the UAPI. The private decoder accepts all zeros (removes the key in the UAPI). */
void sg_fipskey_priv_to_hex(char out[2 * SG_FIPS_PRIV_LEN + 1], const uint8_t priv[SG_FIPS_PRIV_LEN]);
int sg_fipskey_priv_from_hex(uint8_t priv[SG_FIPS_PRIV_LEN], const char *in, size_t len) SG_WUR;
void sg_fipskey_pub_to_hex(char out[2 * SG_FIPS_PUB_LEN + 1], const uint8_t pub[SG_FIPS_PUB_LEN]);
int sg_fipskey_pub_from_hex(uint8_t pub[SG_FIPS_PUB_LEN], const char *in, size_t len) SG_WUR;

#endif
