/* Fuzz target for the list cursors (src/server/cursor.c): the input, up to its first NUL, as the
 * cursor query parameter (srv_cursor_decode), and its bytes as the fields of a cursor to encode.
 *
 * Checks, besides ASan/UBSan: a cursor that decodes has fields in range and encodes back to the
 * same text (one spelling per cursor); one made by srv_cursor_encode decodes to what was put in,
 * and is refused under another scope, with any one character changed, and cut short. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/cursor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t key[SRV_CURSOR_KEY_LEN] = "fuzz cursor key, 32 bytes long!";
static const uint8_t scope[] = "clients\0 AND network_id = $1";

static int64_t field(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n && i < 8; i++)
		v = v << 8 | p[i];
	return (int64_t)(v >> 1); /* 0 .. 2^63-1 */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1), again[SRV_CURSOR_MAX + 1], enc[SRV_CURSOR_MAX + 1];
	struct srv_cursor c, d;
	const char *why = NULL;

	if (!in)
		return 0;
	memcpy(in, data, size);
	in[size] = 0;
	if (srv_cursor_decode(&c, key, scope, sizeof(scope), in, &why)) {
		if (c.total < 0 || c.pos < 0 || c.key < 0 || strlen(c.id) > SRV_CURSOR_ID_MAX ||
		    !srv_cursor_encode(again, key, scope, sizeof(scope), &c) || strcmp(again, in))
			abort();
	} else if (!why || !*why) {
		abort();
	}
	free(in);

	/* The bytes as fields: total, pos, key, then an id of [0-9a-f-] picked by the rest. */
	memset(&c, 0, sizeof(c));
	c.total = field(data, size);
	c.pos = size > 8 ? field(data + 8, size - 8) : 0;
	c.key = size > 16 ? field(data + 16, size - 16) : 0;
	for (size_t i = 24; i < size && i - 24 < SRV_CURSOR_ID_MAX; i++)
		c.id[i - 24] = "0123456789abcdef-"[data[i] % 17];
	if (!srv_cursor_encode(enc, key, scope, sizeof(scope), &c))
		abort();
	if (strlen(enc) > SRV_CURSOR_MAX || !srv_cursor_decode(&d, key, scope, sizeof(scope), enc, &why) ||
	    d.total != c.total || d.pos != c.pos || d.key != c.key || strcmp(d.id, c.id))
		abort();
	if (srv_cursor_decode(&d, key, scope, sizeof(scope) - 1, enc, &why))
		abort(); /* another list or filter */
	if (size > 0) {
		size_t at = data[0] % strlen(enc);

		/* Any other character of the alphabet at one place: a different byte string. */
		strcpy(again, enc);
		again[at] = again[at] == 'A' ? 'B' : 'A';
		if (srv_cursor_decode(&d, key, scope, sizeof(scope), again, &why))
			abort();
		again[at] = 0;
		if (srv_cursor_decode(&d, key, scope, sizeof(scope), again, &why))
			abort();
	}
	return 0;
}
