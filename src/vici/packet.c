/* VICI packets and the length-prefixed stream (vici.h). */
#include <stdlib.h>
#include <string.h>

#include <secureguard/sg_errors.h>

#include "crypto/crypto.h"
#include "vici/vici.h"

int vici_packet_decode(const uint8_t *pkt, size_t len, struct vici_packet *out, const char **why)
{
	static const char *dummy;
	if (!why)
		why = &dummy;
	memset(out, 0, sizeof(*out));
	if (len < 1) {
		*why = "empty packet";
		return SG_EPARSE;
	}
	if (len > VICI_MAX_PACKET) {
		*why = "packet larger than 512 KiB";
		return SG_ERANGE;
	}
	if (pkt[0] > VICI_EVENT) {
		*why = "unknown packet type";
		return SG_EPARSE;
	}
	out->type = pkt[0];
	size_t pos = 1;
	if (vici_type_named(out->type)) {
		if (len < 2) {
			*why = "named packet without a name";
			return SG_EPARSE;
		}
		size_t nl = pkt[1];
		pos = 2;
		if (nl == 0) {
			*why = "empty packet name";
			return SG_EPARSE;
		}
		if (nl > len - pos) {
			*why = "packet name runs past the end";
			return SG_EPARSE;
		}
		if (memchr(pkt + pos, 0, nl)) {
			*why = "packet name contains a NUL byte";
			return SG_EPARSE;
		}
		memcpy(out->name, pkt + pos, nl);
		out->name[nl] = 0;
		pos += nl;
	}
	out->msg = pkt + pos;
	out->msg_len = len - pos;
	return 0;
}

int vici_packet_encode(struct vici_builder *out, enum vici_packet_type type, const char *name,
		       const uint8_t *msg, size_t msg_len, const char **why)
{
	static const char *dummy;
	if (!why)
		why = &dummy;
	if ((unsigned)type > VICI_EVENT) {
		*why = "unknown packet type";
		return SG_EINVAL;
	}
	size_t nl = 0;
	bool named = vici_type_named(type);
	if (named) {
		nl = name ? strlen(name) : 0;
		if (nl == 0 || nl > VICI_MAX_NAME) {
			*why =
			    nl ? "packet name longer than 255 bytes" : "packet type needs a name";
			return SG_EINVAL;
		}
	}
	size_t body = 1 + (named ? 1 + nl : 0) + msg_len;
	if (body > VICI_MAX_PACKET) {
		*why = "packet larger than 512 KiB";
		return SG_ERANGE;
	}
	uint8_t hdr[6] = {(uint8_t)(body >> 24), (uint8_t)(body >> 16), (uint8_t)(body >> 8),
			  (uint8_t)body,	 (uint8_t)type,		(uint8_t)nl};
	size_t start = out->len;
	int err = vici_packet_encode_raw(out, hdr, named ? 6 : 5, why);
	if (!err && named)
		err = vici_packet_encode_raw(out, name, nl, why);
	if (!err)
		err = vici_packet_encode_raw(out, msg, msg_len, why);
	if (err)
		out->len = start;
	return err;
}

int vici_packet_encode_raw(struct vici_builder *out, const void *data, size_t len, const char **why)
{
	static const char *dummy;
	if (!why)
		why = &dummy;
	if (out->err) {
		*why = out->why;
		return out->err;
	}
	if (!len)
		return 0;
	/* Raw byte queues (framed output, received input) are bounded by their users; this bound
	 * only keeps the arithmetic safe. */
	if (len > SIZE_MAX / 4 - out->len) {
		*why = "buffer too large";
		return SG_ERANGE;
	}
	size_t need = out->len + len;
	if (need > out->cap) {
		size_t cap = out->cap ? out->cap : 256;
		while (cap < need)
			cap *= 2;
		uint8_t *n = malloc(cap);
		if (!n) {
			*why = "out of memory";
			return SG_ENOMEM;
		}
		if (out->buf) {
			memcpy(n, out->buf, out->len);
			sg_memzero(out->buf, out->cap);
			free(out->buf);
		}
		out->buf = n;
		out->cap = cap;
	}
	memcpy(out->buf + out->len, data, len);
	out->len += len;
	return 0;
}

void vici_stream_init(struct vici_stream *s)
{
	memset(s, 0, sizeof(*s));
}

void vici_stream_free(struct vici_stream *s)
{
	if (s->body) {
		sg_memzero(s->body, s->body_len);
		free(s->body);
	}
	memset(s, 0, sizeof(*s));
}

void vici_stream_next(struct vici_stream *s)
{
	vici_stream_free(s);
}

long vici_stream_feed(struct vici_stream *s, const uint8_t *data, size_t len, const char **why)
{
	static const char *dummy;
	size_t used = 0;
	if (!why)
		why = &dummy;
	if (s->ready)
		return 0;
	while (s->hdr_got < 4 && used < len)
		s->hdr[s->hdr_got++] = data[used++];
	if (s->hdr_got < 4)
		return (long)used;
	if (!s->body) {
		uint32_t n = (uint32_t)s->hdr[0] << 24 | (uint32_t)s->hdr[1] << 16 |
			     (uint32_t)s->hdr[2] << 8 | s->hdr[3];
		if (n == 0) {
			*why = "packet of length 0";
			return SG_EPARSE;
		}
		if (n > VICI_MAX_PACKET) {
			*why = "packet larger than 512 KiB";
			return SG_EPARSE;
		}
		s->body = malloc(n);
		if (!s->body) {
			*why = "out of memory";
			return SG_ENOMEM;
		}
		s->body_len = n;
		s->body_got = 0;
	}
	size_t take = SG_MIN(len - used, s->body_len - s->body_got);
	memcpy(s->body + s->body_got, data + used, take);
	s->body_got += take;
	used += take;
	if (s->body_got == s->body_len)
		s->ready = true;
	return (long)used;
}
