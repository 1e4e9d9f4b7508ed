/* WireGuard MACs and cookies (whitepaper 5.4.4 and 5.4.7): mac1 on every handshake message,
 * mac2 with a cookie when the responder is under load, and the cookie reply. In FIPS mode the
 * same construction runs on the fips suite (docs/PROTOCOL.md, "MACs and cookies"): keyed BLAKE2s
 * becomes HMAC-SHA-384 truncated to 16 bytes, and the XChaCha20-Poly1305 cookie reply becomes
 * AES-256-GCM with a random 96-bit nonce.
 */
#ifndef SG_WG_COOKIE_H
#define SG_WG_COOKIE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"
#include "crypto/crypto.h"
#include "messages.h"

#define COOKIE_SECRET_MAX_AGE_NS (120ULL * 1000000000ULL)
#define COOKIE_SECRET_LATENCY_NS (5ULL * 1000000000ULL)

/* Keys derived from one public key (ours in the checker, the peer's in the maker). */
struct cookie_keys {
	uint8_t mac1_key[48];   /* HASH(LABEL_MAC1 || public key): 32 (classic) or 48 (fips) */
	uint8_t cookie_key[32]; /* HASH(LABEL_COOKIE || public key), truncated to 32 bytes */
	bool valid;
};

/* The receiving side: our own keys, and the secret that cookies are made from. */
struct cookie_checker {
	struct cookie_keys keys[2]; /* by enum sg_suite_id */
	uint8_t secret[32];	    /* rotated every 2 minutes */
	uint64_t secret_birth;
	bool has_secret;
};

/* The sending side, per peer: the keys derived from the peer's public keys and the latest cookie
 * it gave us (valid only for handshakes of the mode it came in). */
struct cookie_maker {
	struct cookie_keys keys[2];
	uint8_t cookie[WG_COOKIE_LEN];
	uint64_t cookie_birth;
	bool cookie_valid;
	enum sg_suite_id cookie_mode;
	uint8_t last_mac1[WG_COOKIE_LEN];
	bool have_sent_mac1;
	enum sg_suite_id last_mac1_mode;
};

enum cookie_mac_state {
	COOKIE_INVALID_MAC,
	COOKIE_VALID_MAC_NO_COOKIE,
	COOKIE_VALID_MAC_WITH_COOKIE,
};

/* (Re)derives the checker's keys for a suite from our public key of that suite (32 or 49
 * bytes); NULL clears them (then every MAC of that mode fails). */
bool cookie_checker_set_key(struct cookie_checker *c, enum sg_suite_id mode,
			    const uint8_t *pub) SG_WUR;
void cookie_checker_wipe(struct cookie_checker *c);
/* Clears the maker, then derives the classic keys from peer_pub (32 bytes). */
bool cookie_maker_init(struct cookie_maker *m, const uint8_t peer_pub[32]) SG_WUR;
/* Derives (or with NULL clears) the keys of another suite from the peer's key of that suite. */
bool cookie_maker_set_key(struct cookie_maker *m, enum sg_suite_id mode, const uint8_t *pub) SG_WUR;
void cookie_maker_wipe(struct cookie_maker *m);

/* Checks mac1 of a handshake message of `len` bytes (macs are its last 32 bytes), and mac2 when
 * check_cookie is set. `src`/`srclen` identify the sender (address and port bytes). */
enum cookie_mac_state cookie_validate(struct cookie_checker *c, enum sg_suite_id mode,
				      const uint8_t *msg, size_t len, bool check_cookie,
				      const uint8_t *src, size_t srclen, uint64_t now);
/* Fills mac1 (and mac2 if we hold a fresh cookie of this mode) at the end of an outgoing
 * handshake message. */
bool cookie_add_macs(struct cookie_maker *m, enum sg_suite_id mode, uint8_t *msg, size_t len,
		     uint64_t now) SG_WUR;
/* Builds a cookie reply (WG_MSG_COOKIE_LEN or WG_FIPS_COOKIE_LEN bytes, see messages.h) to the
 * handshake message `msg` whose sender index is `sender_index`; returns its length or 0. */
size_t cookie_create_reply(struct cookie_checker *c, enum sg_suite_id mode, uint8_t *out,
			   const uint8_t *msg, size_t len, uint32_t sender_index,
			   const uint8_t *src, size_t srclen, uint64_t now) SG_WUR;
/* Decrypts a cookie reply of this mode addressed to us and stores the cookie. */
bool cookie_consume_reply(struct cookie_maker *m, enum sg_suite_id mode, const uint8_t *reply,
			  uint64_t now) SG_WUR;

#endif
