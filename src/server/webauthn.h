/* WebAuthn (W3C Web Authentication Level 3) data of passkeys, parsed with bounds and no I/O:
 * the authenticator data (section 6.1), the attestation object (section 6.5, formats "none"
 * and packed self-attestation), the credential public key as a COSE key (RFC 9052 section 7,
 * EC2 keys of alg -7 ES256 and -35 ES384 only) and the client data JSON (section 5.8.1).
 * The ceremonies that use them are in routes_passkeys.c; the fuzz target is
 * tests/fuzz/fuzz_webauthn.c.
 *
 * CBOR (RFC 8949) is decoded with libcbor, after a walk of our own over the item's heads that
 * bounds it first: definite lengths only, no tags, at most WA_CBOR_MAX_DEPTH levels of nesting,
 * every length within the input (libcbor's own limits are memory, and freeing a deeply nested
 * item recurses). Every error names what and where: "authenticatorData: byte 55: ...". */
#ifndef SG_SERVER_WEBAUTHN_H
#define SG_SERVER_WEBAUTHN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WA_MAX_CRED_ID	   1023 /* credentialIdLength (section 6.5.1: at most 1023) */
#define WA_MAX_AUTH_DATA   2048
#define WA_MAX_ATT_OBJECT  8192
#define WA_MAX_CLIENT_DATA 4096
#define WA_MAX_SIG	   128 /* DER ECDSA P-384: at most 104 bytes */
#define WA_CHALLENGE_LEN   32
#define WA_CBOR_MAX_DEPTH  4
#define WA_WHY_LEN	   200

/* Flags of the authenticator data (section 6.1). */
enum {
	WA_UP = 0x01, /* user present */
	WA_UV = 0x04, /* user verified */
	WA_BE = 0x08, /* backup eligible */
	WA_BS = 0x10, /* backed up */
	WA_AT = 0x40, /* attested credential data included */
	WA_ED = 0x80  /* extension data included */
};

enum { WA_ES256 = -7, WA_ES384 = -35 };

struct wa_cose_key {
	int alg;	  /* WA_ES256 or WA_ES384 */
	size_t coord_len; /* 32 (P-256) or 48 (P-384) */
	uint8_t x[48], y[48];
};

struct wa_auth_data {
	uint8_t rp_id_hash[32];
	uint8_t flags;
	uint32_t sign_count;
	/* With WA_AT (a registration): */
	uint8_t aaguid[16];
	uint8_t cred_id[WA_MAX_CRED_ID];
	size_t cred_id_len;
	struct wa_cose_key key;
	const uint8_t *cose; /* the key's own bytes, inside the parsed input */
	size_t cose_len;
};

struct wa_attestation {
	char fmt[16];	  /* "none" or "packed" */
	bool self_signed; /* packed self-attestation: sig by the credential's own key */
	int64_t alg;
	uint8_t sig[WA_MAX_SIG];
	size_t sig_len;
	uint8_t auth_data[WA_MAX_AUTH_DATA];
	size_t auth_data_len;
};

/* The length of the one CBOR item at p (definite lengths, no tags, at most max_depth levels);
 * false with why set. */
bool wa_cbor_walk(const uint8_t *p, size_t n, int max_depth, size_t *len, char *why, size_t wl);

/* A COSE_Key (the whole of p[0..n)): kty 2 (EC2), alg -7 with crv 1 (P-256) or alg -35 with
 * crv 2 (P-384), x and y of the curve's length. 0 or -1 with why. */
int wa_cose_parse(const uint8_t *p, size_t n, struct wa_cose_key *k, char *why, size_t wl);

/* Authenticator data. registration: attested credential data must be there (WA_AT), else
 * must not. Extension data (WA_ED) is walked over and skipped. The whole input is consumed.
 * ad->cose points into p. */
int wa_auth_data_parse(const uint8_t *p, size_t n, bool registration, struct wa_auth_data *ad,
		       char *why, size_t wl);

/* An attestation object: {"fmt", "attStmt", "authData"}. "none" (an empty statement) and
 * "packed" without x5c (self-attestation: alg and sig, checked by the caller against the
 * credential key) are accepted; packed with a certificate chain and every other format are
 * refused, naming it. */
int wa_attestation_parse(const uint8_t *p, size_t n, struct wa_attestation *a, char *why,
			 size_t wl);

/* The client data JSON: type must be type ("webauthn.create" / "webauthn.get"), origin exactly
 * origin, crossOrigin absent or false; challenge gets the decoded challenge (it must be
 * WA_CHALLENGE_LEN bytes of strict base64url). */
int wa_client_data_parse(const uint8_t *p, size_t n, const char *type, const char *origin,
			 uint8_t challenge[WA_CHALLENGE_LEN], char *why, size_t wl);

/* The relying party of a --public-url: origin "scheme://host[:port]" (default ports left out,
 * as browsers serialize it) and rp_id its host. Refused (why): no URL, an IP address (WebAuthn
 * needs a domain), plain http to anything but localhost (browsers allow WebAuthn only in a
 * secure context). */
bool wa_relying_party(const char *public_url, char origin[256], char rp_id[256],
		      const char **why);

#endif
