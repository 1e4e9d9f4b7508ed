/* Session tokens of the TLS transport (docs/TLS.md, "Session tokens (phase 2)"): the pure,
 * allocation-free half, so it is fuzzed on its own (tests/fuzz/fuzz_tls_token.c).
 *
 * The management server signs a token when a VPN session opens (POST /api/vpn-sessions, password
 * and TOTP): a compact JWS (RFC 7515 section 7.1), ES384 (RFC 7518 section 3.4), with the header
 * {"alg":"ES384","kid":...,"typ":"sg-tls-session+jwt"} and the claims
 *
 *   cpk  the client's WireGuard public key (base64, 32 bytes)
 *   sid  the VPN session's id        sub  the client's id        net  its network's id
 *   nbf, iat, exp  Unix seconds      iss  the server
 *
 * A listener with RequireSessionToken announces it in its greeting (flag TLS_GREETING_TOKEN) and
 * the client answers with its hello, the token inside:
 *
 *   0        8      9          10               12
 *   +--------+------+----------+----------------+------------------+
 *   |"SG-TLS/1"     | type = 1 | reserved = 0   | length, u16 BE   | token (length bytes) |
 *
 * length is 1..TLS_TOKEN_MAX. Another type, or a length out of bounds, is refused.
 */
#ifndef SG_NET_TLS_TOKEN_H
#define SG_NET_TLS_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"

#define TLS_HELLO_HDR_LEN 12
#define TLS_HELLO_TOKEN	  0x01u
#define TLS_TOKEN_MAX	  4096u
#define TLS_TOKEN_ID_MAX  64 /* sid, sub, net: with their NUL */
#define TLS_TOKEN_KEY_LEN 32 /* WireGuard public key */
#define TLS_TOKEN_COORD	  48 /* P-384 coordinate */
#define TLS_TOKEN_TYP	  "sg-tls-session+jwt"
/* Clock difference between the server that signed and the listener, allowed on nbf only: an
 * expired token is refused to the second. */
#define TLS_TOKEN_LEEWAY_S 60

/* The server's public key (P-384). */
struct tls_token_key {
	uint8_t x[TLS_TOKEN_COORD], y[TLS_TOKEN_COORD];
};

struct tls_token_claims {
	uint8_t client_key[TLS_TOKEN_KEY_LEN];
	char sid[TLS_TOKEN_ID_MAX], sub[TLS_TOKEN_ID_MAX], net[TLS_TOKEN_ID_MAX];
	int64_t nbf, exp, iat;
};

/* Writes the hello's 12 header bytes for a token of len bytes (1..TLS_TOKEN_MAX). */
void tls_hello_encode(uint8_t out[TLS_HELLO_HDR_LEN], size_t len);
/* Parses a hello at the start of buf: the bytes it takes (header and token) with *tok and
 * *toklen pointing into buf, 0 when more bytes are needed (what is there so far matches), or
 * SG_EPARSE with *why set. */
int tls_hello_parse(const uint8_t *buf, size_t len, const uint8_t **tok, size_t *toklen,
		    const char **why) SG_WUR;

/* A P-384 public key from PEM text (SubjectPublicKeyInfo, "BEGIN PUBLIC KEY", as `openssl pkey
 * -pubout` and GET /api/vpn-sessions/signing-key write it). 0 or SG_EPARSE with *why. */
int tls_token_key_from_pem(struct tls_token_key *k, const char *pem, size_t len,
			   const char **why) SG_WUR;

/* Verifies tok (len bytes, a compact JWS) with k at now (Unix seconds): the signature first,
 * then the header (ES384, typ) and the claims (all present, nbf - leeway <= now < exp). 0 with
 * *c filled, or SG_EPARSE / SG_EAUTH (bad signature) / SG_ESTALE (expired, or not yet valid)
 * with *why set; *c is zeroed then. */
int tls_token_verify(const uint8_t *tok, size_t len, const struct tls_token_key *k, int64_t now,
		     struct tls_token_claims *c, const char **why) SG_WUR;

#endif
