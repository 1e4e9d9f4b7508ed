/* Fuzz target for the TUN offload helpers (src/net/offload.c): the input is one TUN read, a
 * virtio_net_hdr and a packet, as the kernel would hand it to us.
 *
 * Checks, besides ASan/UBSan: a read is either rejected with a reason or cut into exactly the
 * segments announced, none longer than tx.seg_max, whose payloads add up to the super-packet's;
 * every segment of an IPv4 GSO packet has a header checksum that verifies, and every TCP/UDP
 * segment a transport checksum that verifies (naive RFC 1071 sums, written here). Then the
 * segments go through the GRO table, and what it emits, cut again, must be the very same
 * segments in the same order. */
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/offload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SEGS 2048

static uint32_t naive_add(uint32_t sum, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	return sum;
}

static uint16_t naive_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static bool l4_ok(const uint8_t *ip, size_t len, bool v6, size_t l3, uint8_t proto)
{
	uint8_t ph[40];
	size_t l4len = len - l3, phlen;
	memset(ph, 0, sizeof(ph));
	if (v6) {
		memcpy(ph, ip + 8, 32);
		ph[34] = (uint8_t)(l4len >> 8);
		ph[35] = (uint8_t)l4len;
		ph[39] = proto;
		phlen = 40;
	} else {
		memcpy(ph, ip + 12, 8);
		ph[9] = proto;
		ph[10] = (uint8_t)(l4len >> 8);
		ph[11] = (uint8_t)l4len;
		phlen = 12;
	}
	return naive_fold(naive_add(naive_add(0, ph, phlen), ip + l3, l4len)) == 0xffff;
}

/* The segments, kept for the GRO round trip. */
struct seglist {
	uint8_t *buf; /* MAX_SEGS * OFFLOAD_MAX_PKT would be too much: packed instead */
	size_t off[MAX_SEGS], len[MAX_SEGS];
	size_t n, used, cap;
};

static void seg_add(struct seglist *l, const uint8_t *p, size_t len)
{
	if (l->n == MAX_SEGS || l->used + len > l->cap)
		abort(); /* sized for the worst case below */
	memcpy(l->buf + l->used, p, len);
	l->off[l->n] = l->used;
	l->len[l->n++] = len;
	l->used += len;
}

static struct seglist in, back;
static uint8_t *scratch, *refr;

static void emitted(void *ctx, const uint8_t hdr[OFFLOAD_VNET_HDR_LEN], const uint8_t *pkt,
		    size_t len)
{
	struct offload_tx tx;
	const char *why = NULL;
	const uint8_t *seg;
	size_t seg_len;
	(void)ctx;
	if (len > OFFLOAD_MAX_PKT)
		abort();
	memcpy(refr, hdr, OFFLOAD_VNET_HDR_LEN);
	memcpy(refr + OFFLOAD_VNET_HDR_LEN, pkt, len);
	if (offload_tx_parse(&tx, refr, OFFLOAD_VNET_HDR_LEN + len, &why) != 0)
		abort(); /* the table emitted something we would not accept ourselves */
	while (offload_tx_next(&tx, scratch, OFFLOAD_MAX_PKT, &seg, &seg_len) > 0)
		seg_add(&back, seg, seg_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct offload_tx tx;
	const char *why = NULL;
	const uint8_t *seg;
	size_t seg_len;
	static uint8_t *frame, *gro_mem;
	static struct offload_gro gro;

	if (!frame) {
		frame = malloc(OFFLOAD_VNET_HDR_LEN + OFFLOAD_MAX_PKT);
		scratch = malloc(OFFLOAD_MAX_PKT);
		refr = malloc(OFFLOAD_VNET_HDR_LEN + OFFLOAD_MAX_PKT);
		gro_mem = malloc((size_t)OFFLOAD_GRO_FLOWS * OFFLOAD_GRO_BUF);
		/* Segments of one read: at most 65535 payload bytes plus headers per segment. */
		in.cap = back.cap = (size_t)MAX_SEGS * 130 + 2 * OFFLOAD_MAX_PKT;
		in.buf = malloc(in.cap);
		back.buf = malloc(back.cap);
		if (!frame || !scratch || !refr || !gro_mem || !in.buf || !back.buf)
			abort();
	}
	if (size > OFFLOAD_VNET_HDR_LEN + OFFLOAD_MAX_PKT)
		return 0;
	memcpy(frame, data, size);
	if (offload_tx_parse(&tx, frame, size, &why) != 0) {
		if (!why)
			abort();
		return 0;
	}
	/* Bound the work (and the list) on tiny gso_size values. */
	if (tx.segments > MAX_SEGS)
		return 0;

	in.n = in.used = back.n = back.used = 0;
	size_t total = 0, count = 0;
	int r;
	while ((r = offload_tx_next(&tx, scratch, OFFLOAD_MAX_PKT, &seg, &seg_len)) > 0) {
		if (seg_len > tx.seg_max || seg_len > OFFLOAD_MAX_PKT)
			abort();
		if (tx.gso) {
			if (seg_len <= tx.hdrs)
				abort();
			total += seg_len - tx.hdrs;
			if (!tx.v6 && naive_fold(naive_add(0, seg, tx.l3len)) != 0xffff)
				abort();
			if (!l4_ok(seg, seg_len, tx.v6, tx.l3len, tx.proto))
				abort();
		}
		seg_add(&in, seg, seg_len);
		count++;
	}
	if (r != 0 || count != tx.segments)
		abort();
	if (tx.gso && total != tx.len - tx.hdrs)
		abort();

	offload_gro_init(&gro, gro_mem, emitted, NULL);
	for (size_t i = 0; i < in.n; i++)
		offload_gro_add(&gro, in.buf + in.off[i], in.len[i]);
	offload_gro_flush(&gro);
	if (back.n != in.n)
		abort();
	for (size_t i = 0; i < in.n; i++)
		if (back.len[i] != in.len[i] ||
		    memcmp(back.buf + back.off[i], in.buf + in.off[i], in.len[i]) != 0)
			abort();
	return 0;
}
