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
