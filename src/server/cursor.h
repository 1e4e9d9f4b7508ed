/* Opaque cursors of keyset pagination (docs/SERVER.md, "Lists and pages").
 *
 * A list page can end with next_cursor: the position after its last row (that row's sort key),
 * with the total counted at the walk's first page and the rows seen so far, so the next page is
 * one indexed range read, with no OFFSET scan and no COUNT(*). The client hands the cursor back
 * unchanged; the server trusts it only after its MAC: the first 16 bytes of
 * HMAC-SHA-384(key, "secureguard cursor v1" || scope || payload), where scope names the list and
 * its filters. A cursor of another list or filter, an altered one and a forged one are all
 * refused alike. The servers of a cluster derive the key from their one master key.
 *
 * Encoded: base64url, no padding, of version (1) | total (8) | pos (8) | key (8) | id length (1) |
 * id | MAC (16); integers big-endian, each 0 .. 2^63-1; id at most SRV_CURSOR_ID_MAX bytes of
 * [0-9a-f-] ("" when the list orders by an integer alone). Bounded, allocation-free, fuzzed
 * (tests/fuzz/fuzz_cursor.c).
 */
#ifndef SG_SERVER_CURSOR_H
#define SG_SERVER_CURSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SRV_CURSOR_ID_MAX  36 /* a UUID's text */
#define SRV_CURSOR_MAC_LEN 16
#define SRV_CURSOR_KEY_LEN 32
/* Bytes before base64url and characters after: 1+8+8+8+1+36+16 = 78 bytes, 104 characters. */
#define SRV_CURSOR_BIN_MAX (1 + 8 + 8 + 8 + 1 + SRV_CURSOR_ID_MAX + SRV_CURSOR_MAC_LEN)
#define SRV_CURSOR_MAX	   ((SRV_CURSOR_BIN_MAX * 4 + 2) / 3)

struct srv_cursor {
	int64_t total; /* rows matching, as counted at the walk's first page */
	int64_t pos;   /* rows before the page this cursor starts */
	int64_t key;   /* the last row's integer sort key (created_at, or id) */
	char id[SRV_CURSOR_ID_MAX + 1]; /* the last row's id when the order ends with it, or "" */
};

/* Writes the cursor (NUL-terminated, at most SRV_CURSOR_MAX characters) into out. False when a
 * field is out of range (negative, or an id too long or not [0-9a-f-]) or the MAC failed. */
bool srv_cursor_encode(char out[SRV_CURSOR_MAX + 1], const uint8_t key[SRV_CURSOR_KEY_LEN],
		       const uint8_t *scope, size_t scopelen, const struct srv_cursor *c);
/* Reads a cursor made by srv_cursor_encode with the same key and scope. False with *why set
 * (a phrase for the 400 naming the parameter) when it is not one: too long, not base64url, not
 * this version, fields out of range, or a MAC that does not match (altered, forged, or of
 * another list or filter). *c is zeroed then. Reads at most SRV_CURSOR_MAX + 1 characters. */
bool srv_cursor_decode(struct srv_cursor *c, const uint8_t key[SRV_CURSOR_KEY_LEN],
		       const uint8_t *scope, size_t scopelen, const char *in, const char **why);

#endif
