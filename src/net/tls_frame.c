/* SG-TLS greeting and frames; see tls_frame.h and docs/TLS.md. */
#include "net/tls_frame.h"

#include <string.h>

#include <secureguard/sg_errors.h>

void tls_greeting_encode(uint8_t out[TLS_GREETING_LEN], const struct tls_greeting *g)
{
	memcpy(out, TLS_MAGIC, TLS_MAGIC_LEN);
	out[8] = g->flags;
	out[9] = 0; /* reserved */
	out[10] = (uint8_t)(g->idle_timeout_s >> 8);
	out[11] = (uint8_t)g->idle_timeout_s;
}

int tls_greeting_parse(const uint8_t *buf, size_t len, struct tls_greeting *g, const char **why)
{
	/* Compare what has arrived so far, so a wrong service is told at its first bytes rather
	 * than after waiting for twelve that may never come. */
	size_t n = SG_MIN(len, (size_t)TLS_MAGIC_LEN);
	if (memcmp(buf, TLS_MAGIC, n) != 0) {
		*why = "greeting mismatch: not an SG-TLS/1 server";
		return SG_EPARSE;
	}
	if (len < TLS_GREETING_LEN)
		return 0;
	g->flags = buf[8];
	/* buf[9] is reserved: sent as 0, ignored. */
	g->idle_timeout_s = (uint16_t)(buf[10] << 8 | buf[11]);
	return TLS_GREETING_LEN;
}

void tls_frame_header(uint8_t out[TLS_FRAME_HDR_LEN], size_t len)
{
	out[0] = (uint8_t)(len >> 8);
	out[1] = (uint8_t)len;
}

void tls_rxbuf_init(struct tls_rxbuf *r, uint8_t *mem, size_t cap)
{
	r->buf = mem;
	r->cap = cap;
	r->head = r->tail = 0;
}

uint8_t *tls_rxbuf_space(struct tls_rxbuf *r, size_t *avail)
{
	if (r->head == r->tail) {
		r->head = r->tail = 0;
	} else if (r->head > 0 && r->cap - r->tail < TLS_RECORD_MAX) {
		/* Pending bytes are less than one frame, so after the move at least
		 * cap - (HDR + FRAME_MAX) bytes are free: a whole frame can always complete. */
		memmove(r->buf, r->buf + r->head, r->tail - r->head);
		r->tail -= r->head;
		r->head = 0;
	}
	*avail = r->cap - r->tail;
	return r->buf + r->tail;
}

bool tls_rxbuf_reuses(const struct tls_rxbuf *r)
{
	/* The two cases of tls_rxbuf_space that write below the tail. */
	return r->head > 0 && (r->head == r->tail || r->cap - r->tail < TLS_RECORD_MAX);
}

void tls_rxbuf_commit(struct tls_rxbuf *r, size_t n)
{
	if (n > r->cap - r->tail)
		n = r->cap - r->tail; /* never past the end, whatever the caller says */
	r->tail += n;
}

int tls_rxbuf_take_greeting(struct tls_rxbuf *r, struct tls_greeting *g, const char **why)
{
	int ret = tls_greeting_parse(r->buf + r->head, r->tail - r->head, g, why);
	if (ret <= 0)
		return ret;
	r->head += (size_t)ret;
	return 1;
}

int tls_rxbuf_take_frame(struct tls_rxbuf *r, const uint8_t **msg, size_t *len)
{
	size_t have = r->tail - r->head;
	if (have < TLS_FRAME_HDR_LEN)
		return 0;
	const uint8_t *p = r->buf + r->head;
	size_t n = (size_t)p[0] << 8 | p[1];
	if (have - TLS_FRAME_HDR_LEN < n)
		return 0;
	*msg = p + TLS_FRAME_HDR_LEN;
	*len = n;
	r->head += TLS_FRAME_HDR_LEN + n;
	return 1;
}

void tls_rxbuf_consume(struct tls_rxbuf *r, size_t n)
{
	r->head += SG_MIN(n, r->tail - r->head);
}

size_t tls_rxbuf_pending(const struct tls_rxbuf *r)
{
	return r->tail - r->head;
}
