/* WireGuard wire formats (whitepaper section 5.4). All integers little-endian. The structs are
 * only used for offsets and sizes; fields are read with sg_le32/sg_le64, never by casting a
 * received buffer to a struct. */
#ifndef SG_WG_MESSAGES_H
#define SG_WG_MESSAGES_H

#include <stddef.h>
#include <stdint.h>

enum wg_message_type {
	WG_MSG_INITIATION = 1,
	WG_MSG_RESPONSE = 2,
	WG_MSG_COOKIE = 3,
	WG_MSG_DATA = 4,
	WG_MSG_REJECT = 5, /* SecureGuard: "no common crypto mode" (docs/PROTOCOL.md) */
};

/* Byte 1 of every message (the first "reserved" byte of WireGuard): the crypto mode. Classic
 * messages are byte-identical to WireGuard; bytes 2 and 3 stay zero in both modes. */
enum wg_wire_mode {
	WG_MODE_CLASSIC = 0x00,
	WG_MODE_FIPS = 0x01,
};

/* Capabilities (docs/PROTOCOL.md): bit 0 FIPS, bit 1 classic, bits 2-7 reserved (zero), bits
 * 8-15 protocol version. Little-endian on the wire. */
#define WG_CAP_FIPS	    0x0001
#define WG_CAP_CLASSIC	    0x0002
#define WG_CAP_VERSION	    1
#define WG_CAP_VERSION_BITS (WG_CAP_VERSION << 8)

/* Reject reasons (byte 10 of a reject message). */
enum wg_reject_reason {
	WG_REJECT_FIPS_REQUIRED = 1,	/* we allow only FIPS with you; you offered classic */
	WG_REJECT_FIPS_UNAVAILABLE = 2, /* we have no FIPS key or allow only classic here */
	WG_REJECT_CLASSIC_REQUIRED = 3, /* we allow only classic with you; you offered FIPS */
	WG_REJECT_VERSION = 4,		/* we do not speak your protocol version */
};

#define WG_COOKIE_LEN       16
#define WG_COOKIE_NONCE_LEN 24

struct wg_msg_macs {
	uint8_t mac1[WG_COOKIE_LEN];
	uint8_t mac2[WG_COOKIE_LEN];
};

struct wg_msg_initiation {
	uint8_t type_reserved[4];
	uint8_t sender_index[4];
	uint8_t ephemeral[32];
	uint8_t encrypted_static[32 + 16];
	uint8_t encrypted_timestamp[12 + 16];
	struct wg_msg_macs macs;
};

struct wg_msg_response {
	uint8_t type_reserved[4];
	uint8_t sender_index[4];
	uint8_t receiver_index[4];
	uint8_t ephemeral[32];
	uint8_t encrypted_nothing[16];
	struct wg_msg_macs macs;
};

struct wg_msg_cookie {
	uint8_t type_reserved[4];
	uint8_t receiver_index[4];
	uint8_t nonce[WG_COOKIE_NONCE_LEN];
	uint8_t encrypted_cookie[WG_COOKIE_LEN + 16];
};

struct wg_msg_data_header {
	uint8_t type_reserved[4];
	uint8_t receiver_index[4];
	uint8_t counter[8];
};

/* FIPS mode (P-384 points are 49 bytes compressed; payloads carry capabilities):
 *   initiation: type|mode|0|0, sender 4, ephemeral 49, static 49+16, {TAI64N 12, caps 2}+16,
 *               mac1 16, mac2 16                                            = 184 bytes
 *   response:   type|mode|0|0, sender 4, receiver 4, ephemeral 49, {caps 2}+16, mac1, mac2
 *                                                                           = 111 bytes
 *   cookie:     type|mode|0|0, receiver 4, nonce 12, {cookie 16}+16         = 52 bytes
 *   reject:     type|mode|0|0, receiver 4, caps 2, reason 1, 0              = 12 bytes
 *   data:       as classic (16-byte header, AES-256-GCM tag 16). */
#define WG_FIPS_INITIATION_LEN 184
#define WG_FIPS_RESPONSE_LEN   111
#define WG_FIPS_COOKIE_LEN     52
#define WG_MSG_REJECT_LEN      12
#define WG_FIPS_INIT_PAYLOAD   14 /* TAI64N || capabilities */
#define WG_FIPS_RESP_PAYLOAD   2  /* capabilities */

/* Offsets in a handshake message of either mode, from the suite's point length P and the
 * plaintext payload length L: everything after the ephemeral shifts with P. */
struct wg_hs_layout {
	size_t len;	   /* whole message */
	size_t ephemeral;  /* offset of the ephemeral point */
	size_t enc_static; /* initiation only */
	size_t payload;	   /* offset of the encrypted payload */
	size_t payload_len; /* plaintext length; the sealed payload has 16 more */
};

#define WG_MSG_INITIATION_LEN  148
#define WG_MSG_RESPONSE_LEN    92
#define WG_MSG_COOKIE_LEN      64
#define WG_MSG_DATA_HEADER_LEN 16
#define WG_MSG_DATA_MIN_LEN    (WG_MSG_DATA_HEADER_LEN + 16) /* a keepalive */

_Static_assert(sizeof(struct wg_msg_initiation) == WG_MSG_INITIATION_LEN, "initiation size");
_Static_assert(sizeof(struct wg_msg_response) == WG_MSG_RESPONSE_LEN, "response size");
_Static_assert(sizeof(struct wg_msg_cookie) == WG_MSG_COOKIE_LEN, "cookie size");
_Static_assert(sizeof(struct wg_msg_data_header) == WG_MSG_DATA_HEADER_LEN, "data header size");

#endif
