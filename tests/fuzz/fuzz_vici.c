/* Fuzz target for the VICI codec (src/vici): the input is a byte stream as a VICI socket would
 * deliver it, fed to the stream reader in chunks whose sizes come from the input itself. Every
 * complete packet is decoded and its message parsed; a message that parses must re-encode from
 * its tree to exactly the same bytes (the format has one encoding per tree), and its packet must
 * frame back to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vici/vici.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_packet(const uint8_t *body, size_t len)
{
	struct vici_packet p;
	struct vici_msg *m;
	const char *why = NULL;
	if (vici_packet_decode(body, len, &p, &why) != 0) {
		if (!why)
			abort(); /* every rejection says why */
		return;
	}
	if (vici_msg_parse(p.msg, p.msg_len, &m, &why) != 0) {
		if (!why)
			abort();
		return;
	}
	struct vici_builder b, frame;
	const uint8_t *out;
	size_t out_len;
	vici_builder_init(&b);
	vici_add_tree(&b, vici_msg_root(m));
	if (vici_builder_finish(&b, &out, &out_len, &why) != 0)
		abort();
	if (out_len != p.msg_len || memcmp(out, p.msg, out_len) != 0)
		abort(); /* not canonical: decode and encode disagree */
	vici_builder_init(&frame);
	if (vici_packet_encode(&frame, p.type, p.name, out, out_len, &why) != 0)
		abort();
	if (frame.len != 4 + len || memcmp(frame.buf + 4, body, len) != 0)
		abort();
	vici_builder_free(&frame);
	vici_builder_free(&b);
	vici_msg_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vici_stream s;
	size_t pos = 0;
	unsigned chunk = size ? (data[0] % 7) + 1 : 1; /* 1..7-byte feeds, or whole */
	vici_stream_init(&s);
	while (pos < size) {
		size_t n = chunk == 7 ? size - pos : SG_MIN(chunk, size - pos);
		const char *why = NULL;
		long used = vici_stream_feed(&s, data + pos, n, &why);
		if (used < 0) {
			if (!why)
				abort();
			break;
		}
		pos += (size_t)used;
		if (s.ready) {
			check_packet(s.body, s.body_len);
			vici_stream_next(&s);
		} else if ((size_t)used != n) {
			abort(); /* the stream stops early only at a complete packet */
		}
	}
	vici_stream_free(&s);
	return 0;
}
