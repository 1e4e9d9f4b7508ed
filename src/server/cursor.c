/* Opaque cursors of keyset pagination: cursor.h says what is in one and why. */
#include "server/cursor.h"

#include <string.h>

#include "common/b64.h"
#include "crypto/crypto.h"

#define CURSOR_VERSION 1
#define CURSOR_LABEL   "secureguard cursor v1"

static void put64(uint8_t *p, int64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)(v & 0xff);
}

static int64_t get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return (int64_t)v; /* negative when the top bit is set: refused by the caller */
}

static bool id_ok(const char *id, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f') ||
		      id[i] == '-'))
			return false;
	}
	return true;
}

static bool mac(uint8_t out[SRV_CURSOR_MAC_LEN], const uint8_t key[SRV_CURSOR_KEY_LEN],
		const uint8_t *scope, size_t scopelen, const uint8_t *payload, size_t len)
{
	uint8_t full[SG_SHA384_LEN];
	/* The scope's length first: scope and payload cannot trade bytes. */
	uint8_t slen[8];
	struct sg_iov iov[] = {{CURSOR_LABEL, sizeof(CURSOR_LABEL) - 1},
			       {slen, sizeof(slen)},
			       {scope, scopelen},
			       {payload, len}};
	bool ok;

	put64(slen, (int64_t)scopelen);
	ok = sg_hmac_sha384(full, key, SRV_CURSOR_KEY_LEN, iov, 4);
	memcpy(out, full, SRV_CURSOR_MAC_LEN);
	sg_memzero(full, sizeof(full));
	return ok;
}

bool srv_cursor_encode(char out[SRV_CURSOR_MAX + 1], const uint8_t key[SRV_CURSOR_KEY_LEN],
		       const uint8_t *scope, size_t scopelen, const struct srv_cursor *c)
{
	uint8_t bin[SRV_CURSOR_BIN_MAX];
	size_t idlen = strnlen(c->id, sizeof(c->id)), n = 0;

	out[0] = 0;
	if (c->total < 0 || c->pos < 0 || c->key < 0 || idlen > SRV_CURSOR_ID_MAX ||
	    !id_ok(c->id, idlen))
		return false;
	bin[n++] = CURSOR_VERSION;
	put64(bin + n, c->total);
	n += 8;
	put64(bin + n, c->pos);
	n += 8;
	put64(bin + n, c->key);
	n += 8;
	bin[n++] = (uint8_t)idlen;
	memcpy(bin + n, c->id, idlen);
	n += idlen;
	if (!mac(bin + n, key, scope, scopelen, bin, n))
		return false;
	n += SRV_CURSOR_MAC_LEN;
	sg_b64_encode(out, bin, n, true);
	return true;
}

bool srv_cursor_decode(struct srv_cursor *c, const uint8_t key[SRV_CURSOR_KEY_LEN],
		       const uint8_t *scope, size_t scopelen, const char *in, const char **why)
{
	uint8_t bin[SRV_CURSOR_BIN_MAX], want[SRV_CURSOR_MAC_LEN];
	size_t len = strnlen(in, SRV_CURSOR_MAX + 1), idlen;
	int n;

	memset(c, 0, sizeof(*c));
	if (len > SRV_CURSOR_MAX) {
		*why = "too long to be a cursor of this server";
		return false;
	}
	n = sg_b64_decode(bin, sizeof(bin), in, len, true);
	if (n < 0) {
		*why = "not a cursor of this server (not base64url)";
		return false;
	}
	/* The smallest is an integer key with an empty id. */
	if (n < 1 + 24 + 1 + SRV_CURSOR_MAC_LEN || bin[0] != CURSOR_VERSION) {
		*why = "not a cursor of this server (length or version)";
		return false;
	}
	idlen = bin[25];
	if ((size_t)n != 26 + idlen + SRV_CURSOR_MAC_LEN) {
		*why = "not a cursor of this server (length)";
		return false;
	}
	/* The MAC before any field is believed. */
	if (!mac(want, key, scope, scopelen, bin, (size_t)n - SRV_CURSOR_MAC_LEN) ||
	    !sg_memeq(want, bin + n - SRV_CURSOR_MAC_LEN, SRV_CURSOR_MAC_LEN)) {
		*why = "altered, or not a cursor of this list with these filters: start again "
		       "without it";
		return false;
	}
	c->total = get64(bin + 1);
	c->pos = get64(bin + 9);
	c->key = get64(bin + 17);
	/* Only this server's key makes a MAC that matches, and it writes no such fields; checked
	 * all the same, so a leaked key cannot reach the SQL with them. */
	if (c->total < 0 || c->pos < 0 || c->key < 0 || idlen > SRV_CURSOR_ID_MAX ||
	    !id_ok((const char *)bin + 26, idlen)) {
		memset(c, 0, sizeof(*c));
		*why = "not a cursor of this server (fields out of range)";
		return false;
	}
	memcpy(c->id, bin + 26, idlen);
	c->id[idlen] = 0;
	return true;
}
