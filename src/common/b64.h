/* Base64 (RFC 4648 section 4, padded) and base64url (section 5, unpadded): one copy for every
 * component (the server's tokens and keys, the agent's key proofs). */
#ifndef SG_COMMON_B64_H
#define SG_COMMON_B64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* out: room for 4 * ceil(len / 3) + 1 characters. url: base64url without padding. */
void sg_b64_encode(char *out, const uint8_t *in, size_t len, bool url);
/* Decodes len characters of in strictly (one spelling per byte string): base64 with exactly
 * the padding to a multiple of 4, base64url with none; the byte count, SG_EPARSE on a character
 * outside the alphabet, wrong padding or nonzero bits left over, SG_ERANGE past outmax. */
int sg_b64_decode(uint8_t *out, size_t outmax, const char *in, size_t len, bool url);
/* Base32 (RFC 4648 section 6) without padding, upper case: the form authenticator apps take a
 * TOTP secret in (otpauth URIs). out: room for ceil(8 * len / 5) + 1 characters. */
void sg_b32_encode(char *out, const uint8_t *in, size_t len);

#endif
