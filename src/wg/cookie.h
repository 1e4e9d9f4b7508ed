/* WireGuard MACs and cookies (whitepaper 5.4.4 and 5.4.7): mac1 on every handshake message,
 * mac2 with a cookie when the responder is under load, and the XChaCha20-Poly1305 cookie reply.
 */
#ifndef SG_WG_COOKIE_H
#define SG_WG_COOKIE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"
#include "messages.h"

#define COOKIE_SECRET_MAX_AGE_NS (120ULL * 1000000000ULL)
#define COOKIE_SECRET_LATENCY_NS (5ULL * 1000000000ULL)

/* The receiving side: our own keys, and the secret that cookies are made from. */
struct cookie_checker {
	uint8_t mac1_key[32];   /* HASH(LABEL_MAC1 || our public key) */
	uint8_t cookie_key[32]; /* HASH(LABEL_COOKIE || our public key) */
	uint8_t secret[32];     /* rotated every 2 minutes */
	uint64_t secret_birth;
	bool has_secret;
	bool has_keys;
};

/* The sending side, per peer: the keys derived from the peer's public key and the latest cookie
 * it gave us. */
struct cookie_maker {
	uint8_t mac1_key[32];
	uint8_t cookie_key[32];
	uint8_t cookie[WG_COOKIE_LEN];
	uint64_t cookie_birth;
	bool cookie_valid;
	uint8_t last_mac1[WG_COOKIE_LEN];
	bool have_sent_mac1;
};

enum cookie_mac_state {
	COOKIE_INVALID_MAC,
	COOKIE_VALID_MAC_NO_COOKIE,
	COOKIE_VALID_MAC_WITH_COOKIE,
};

/* (Re)derives the checker's keys from our public key; NULL clears them (no key: all MACs fail). */
bool cookie_checker_set_key(struct cookie_checker *c, const uint8_t pub[32]) SG_WUR;
void cookie_checker_wipe(struct cookie_checker *c);
bool cookie_maker_init(struct cookie_maker *m, const uint8_t peer_pub[32]) SG_WUR;
void cookie_maker_wipe(struct cookie_maker *m);

/* Checks mac1 of a handshake message of `len` bytes (macs are its last 32 bytes), and mac2 when
 * check_cookie is set. `src`/`srclen` identify the sender (address and port bytes). */
enum cookie_mac_state cookie_validate(struct cookie_checker *c, const uint8_t *msg, size_t len,
				      bool check_cookie, const uint8_t *src, size_t srclen,
				      uint64_t now);
/* Fills mac1 (and mac2 if we hold a fresh cookie) at the end of an outgoing handshake message. */
bool cookie_add_macs(struct cookie_maker *m, uint8_t *msg, size_t len, uint64_t now) SG_WUR;
/* Builds a cookie reply to the handshake message `msg` whose sender index is `sender_index`. */
bool cookie_create_reply(struct cookie_checker *c, uint8_t out[WG_MSG_COOKIE_LEN],
			 const uint8_t *msg, size_t len, uint32_t sender_index, const uint8_t *src,
			 size_t srclen, uint64_t now) SG_WUR;
/* Decrypts a cookie reply addressed to us and stores the cookie. */
bool cookie_consume_reply(struct cookie_maker *m, const uint8_t reply[WG_MSG_COOKIE_LEN],
			  uint64_t now) SG_WUR;

#endif
