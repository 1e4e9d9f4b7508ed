/* Fuzz target for the SG-TLS framing (src/net/tls_frame.c): the input is a control byte and a
 * byte stream as TLS would deliver it after the handshake.
 *
 * Control byte: bit 0 = the stream starts with the server's greeting (client side); bits 1-7
 * seed the sizes of the pieces the stream is cut into. The stream is parsed twice: by a naive
 * reference written here, over the whole input at once, and through tls_rxbuf fed piece by
 * piece as SSL_read would. Both must find the same greeting verdict and the same frames, in the
 * same order, with the same bytes; the buffer must never hold more than its capacity. As the
 * daemon's receiver does (tls.h, on_rx_done), frames taken are held in place until
 * tls_rxbuf_reuses says the next append would overwrite them, and checked after every append:
 * one that reached the memory of a held frame is caught. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <secureguard/sg_errors.h>

#include "net/tls_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FRAMES 4096

struct frame {
	size_t off, len; /* in the stream */
};

static struct frame ref[MAX_FRAMES];
static const uint8_t *held[MAX_FRAMES]; /* frames taken since the buffer last reused memory */

/* Reference: 1 = greeting good (or not expected), 0 = incomplete, -1 = mismatch. */
static int ref_parse(const uint8_t *s, size_t n, bool greet, size_t *nframes, uint8_t *flags,
		     uint16_t *idle)
{
	size_t pos = 0;
	*nframes = 0;
	if (greet) {
		for (size_t i = 0; i < 8 && i < n; i++)
			if (s[i] != (uint8_t) "SG-TLS/1"[i])
				return -1;
		if (n < 12)
			return 0;
		*flags = s[8];
		*idle = (uint16_t)(s[10] * 256 + s[11]);
		pos = 12;
	}
	while (n - pos >= 2 && *nframes < MAX_FRAMES) {
		size_t len = (size_t)s[pos] * 256 + s[pos + 1];
		if (n - pos - 2 < len)
			break;
		ref[*nframes].off = pos + 2;
		ref[(*nframes)++].len = len;
		pos += 2 + len;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *mem;
	struct tls_rxbuf r;
	struct tls_greeting g;
	const char *why = NULL;
	size_t nref, got = 0;
	uint8_t flags = 0;
	uint16_t idle = 0;

	if (size < 1)
		return 0;
	if (!mem && !(mem = malloc(TLS_RXBUF_SIZE)))
		abort();
	bool greet = data[0] & 1;
	uint32_t seed = data[0] >> 1;
	const uint8_t *s = data + 1;
	size_t n = size - 1;
	int want = ref_parse(s, n, greet, &nref, &flags, &idle);

	tls_rxbuf_init(&r, mem, TLS_RXBUF_SIZE);
	bool greeted = !greet;
	int verdict = 1;
	size_t off = 0, held_from = 0;
	while (off < n) {
		size_t avail;
		if (tls_rxbuf_reuses(&r))
			held_from = got; /* the receiver finishes its frames first */
		uint8_t *p = tls_rxbuf_space(&r, &avail);
		if (avail == 0 || p < mem || p + avail > mem + TLS_RXBUF_SIZE)
			abort(); /* a frame always fits; never past the buffer */
		seed = seed * 1103515245u + 12345u;
		size_t piece = 1 + (seed >> 8) % 20000;
		size_t k = piece < avail ? piece : avail;
		if (k > n - off)
			k = n - off;
		memcpy(p, s + off, k);
		tls_rxbuf_commit(&r, k);
		off += k;
		for (size_t i = held_from; i < got; i++)
			if (ref[i].len && memcmp(held[i - held_from], s + ref[i].off, ref[i].len))
				abort(); /* a held frame was overwritten before tls_rxbuf_reuses said so */
		if (!greeted) {
			int ret = tls_rxbuf_take_greeting(&r, &g, &why);
			if (ret < 0) {
				if (!why)
					abort();
				verdict = -1;
				break;
			}
			if (ret == 0)
				continue;
			if (g.flags != flags || g.idle_timeout_s != idle)
				abort();
			greeted = true;
		}
		const uint8_t *msg;
		size_t len;
		while (got < MAX_FRAMES && tls_rxbuf_take_frame(&r, &msg, &len) == 1) {
			if (got >= nref || len != ref[got].len ||
			    (len && memcmp(msg, s + ref[got].off, len) != 0))
				abort();
			held[got - held_from] = msg;
			got++;
		}
		if (got == MAX_FRAMES)
			break;
	}
	if (verdict == 1 && !greeted)
		verdict = 0;
	if (verdict != want)
		abort();
	if (want == 1 && got != nref)
		abort();
	return 0;
}
