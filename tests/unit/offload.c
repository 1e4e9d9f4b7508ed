/* Unit tests for the TUN offload helpers (src/net/offload.c).
 *
 * Segmentation: IPv4 and IPv6 TCP super-packets (with TCP options, a sequence number that wraps,
 * FIN/PSH/CWR on the super-packet) and UDP ones are cut, and every segment is checked field by
 * field: lengths, IPv4 ID, sequence numbers, flags, payload bytes, and IPv4 header and TCP/UDP
 * checksums verified with a naive RFC 1071 sum written here, independent of offload_csum.
 * Malformed virtio headers and truncated packets must be rejected with a reason; random
 * corruption must never produce out-of-bounds segments.
 * Coalescing: segments merged by the GRO table and cut again must give back the very same
 * packets; the kernel's merge rules (order, ACK, PSH, short segments, checksums, flows) hold.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <linux/virtio_net.h>
#include <netinet/in.h>

#include <secureguard/sg_errors.h>

#include "net/offload.h"

#define VH	   OFFLOAD_VNET_HDR_LEN
#define TCP_FIN	   0x01
#define TCP_SYN	   0x02
#define TCP_PSH	   0x08
#define TCP_ACK	   0x10
#define TCP_CWR	   0x80
#define FRAME_MAX  (VH + 65535)
#define MAX_FRAMES 512

/* ---- naive reference ---------------------------------------------------------------------- */

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wbe16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void wbe32(uint8_t *p, uint32_t v)
{
	wbe16(p, (uint16_t)(v >> 16));
	wbe16(p + 2, (uint16_t)v);
}

/* RFC 1071, word by word. */
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

/* The pseudo-header as bytes (RFC 9293 3.1, RFC 8200 8.1), summed. */
static uint32_t naive_pseudo(const uint8_t *ip, bool v6, uint8_t proto, size_t l4len)
{
	uint8_t ph[40];
	memset(ph, 0, sizeof(ph));
	if (v6) {
		memcpy(ph, ip + 8, 32);
		wbe32(ph + 32, (uint32_t)l4len);
		ph[39] = proto;
		return naive_add(0, ph, 40);
	}
	memcpy(ph, ip + 12, 8);
	ph[9] = proto;
	wbe16(ph + 10, (uint16_t)l4len);
	return naive_add(0, ph, 12);
}

static bool naive_ip4_ok(const uint8_t *ip)
{
	return naive_fold(naive_add(0, ip, (size_t)(ip[0] & 15) * 4)) == 0xffff;
}

static bool naive_l4_ok(const uint8_t *ip, size_t len, bool v6, uint8_t proto)
{
	size_t l3 = v6 ? 40 : (size_t)(ip[0] & 15) * 4;
	return naive_fold(naive_add(naive_pseudo(ip, v6, proto, len - l3), ip + l3, len - l3)) ==
	       0xffff;
}

static void naive_fix_ip4(uint8_t *ip)
{
	ip[10] = ip[11] = 0;
	wbe16(ip + 10, (uint16_t)~naive_fold(naive_add(0, ip, (size_t)(ip[0] & 15) * 4)));
}

static void naive_fix_l4(uint8_t *ip, size_t len, bool v6, uint8_t proto)
{
	size_t l3 = v6 ? 40 : (size_t)(ip[0] & 15) * 4, at = l3 + (proto == IPPROTO_TCP ? 16 : 6);
	ip[at] = ip[at + 1] = 0;
	uint16_t c = (uint16_t)~naive_fold(
	    naive_add(naive_pseudo(ip, v6, proto, len - l3), ip + l3, len - l3));
	wbe16(ip + at, c ? c : 0xffff);
}

/* ---- building super-packets --------------------------------------------------------------- */

struct spec {
	bool v6;
	uint8_t proto;
	size_t opt_len; /* TCP options, multiple of 4 */
	uint8_t flags;
	uint32_t seq;
	uint16_t id;
	size_t payload;
	uint16_t gso_size;
	uint8_t gso_type;
	uint8_t vflags;
	uint16_t sport;
};

static struct spec tcp4(void)
{
	return (struct spec){.proto = IPPROTO_TCP,
			     .opt_len = 12,
			     .flags = TCP_ACK | TCP_PSH | TCP_FIN | TCP_CWR,
			     .seq = 0xfffff000u, /* wraps within the packet */
			     .id = 0xfffe,	 /* and so does the IPv4 ID */
			     .payload = 5000,
			     .gso_size = 1448,
			     .gso_type = OFFLOAD_GSO_TCPV4,
			     .vflags = OFFLOAD_F_NEEDS_CSUM,
			     .sport = 40000};
}

static struct spec tcp6(void)
{
	struct spec s = tcp4();
	s.v6 = true;
	s.gso_type = OFFLOAD_GSO_TCPV6;
	s.gso_size = 1428;
	s.payload = 60000;
	return s;
}

static size_t l3_of(const struct spec *s)
{
	return s->v6 ? 40 : 20;
}

static size_t l4_of(const struct spec *s)
{
	return s->proto == IPPROTO_TCP ? 20 + s->opt_len : 8;
}

/* Writes the virtio header and the packet as the kernel would hand them over: the transport
 * checksum field holds only the pseudo-header sum (CHECKSUM_PARTIAL), hdr_len is the kernel's
 * linear length (here: all of it), which the parser must not rely on. Returns the frame length. */
static size_t build(uint8_t *f, const struct spec *s)
{
	uint8_t *p = f + VH;
	size_t l3 = l3_of(s), l4 = l4_of(s), len = l3 + l4 + s->payload;

	memset(p, 0, l3 + l4);
	if (s->v6) {
		static const uint8_t src[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
		static const uint8_t dst[16] = {0x20, 0x01, 0x0d, 0xb8, [14] = 0x12, [15] = 2};
		p[0] = 0x60;
		p[1] = 0x0a; /* traffic class and flow label */
		p[2] = 0xbc;
		p[3] = 0xde;
		wbe16(p + 4, (uint16_t)(len - 40));
		p[6] = s->proto;
		p[7] = 64;
		memcpy(p + 8, src, 16);
		memcpy(p + 24, dst, 16);
	} else {
		p[0] = 0x45;
		p[1] = 0x10;
		wbe16(p + 2, (uint16_t)len);
		wbe16(p + 4, s->id);
		p[6] = 0x40; /* DF */
		p[8] = 64;
		p[9] = s->proto;
		memcpy(p + 12, (const uint8_t[]){10, 0, 0, 1, 10, 0, 0, 2}, 8);
		naive_fix_ip4(p);
	}
	uint8_t *t = p + l3;
	wbe16(t, s->sport);
	wbe16(t + 2, 5201);
	if (s->proto == IPPROTO_TCP) {
		wbe32(t + 4, s->seq);
		wbe32(t + 8, 0x01020304);
		t[12] = (uint8_t)((l4 / 4) << 4);
		t[13] = s->flags;
		wbe16(t + 14, 0x1f00);
		for (size_t i = 20; i < l4; i++)
			t[i] = 1; /* NOP */
		if (s->opt_len >= 12) {
			/* a timestamp option, as Linux sends */
			memcpy(t + 22, (const uint8_t[]){8, 10, 0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78},
			       10);
		}
	} else {
		wbe16(t + 4, (uint16_t)(l4 + s->payload));
	}
	for (size_t i = 0; i < s->payload; i++)
		p[l3 + l4 + i] = (uint8_t)(i * 7 + 3 + i / 251);
	size_t at = l3 + (s->proto == IPPROTO_TCP ? 16 : 6);
	wbe16(p + at, naive_fold(naive_pseudo(p, s->v6, s->proto, len - l3)));

	struct offload_vnet_hdr h = {
	    .flags = s->vflags,
	    .gso_type = s->gso_type,
	    .hdr_len = (uint16_t)(len > 0xffff ? 0xffff : len),
	    .gso_size = s->gso_size,
	    .csum_start = (uint16_t)l3,
	    .csum_offset = (uint16_t)(s->proto == IPPROTO_TCP ? 16 : 6),
	};
	offload_vnet_hdr_encode(f, &h);
	return VH + len;
}

/* ---- segmentation ------------------------------------------------------------------------- */

static uint8_t frame[FRAME_MAX], pristine[FRAME_MAX], scratch[65535];

/* Cuts `frame` and checks every segment against the spec and the pristine copy. */
static void check_segments(const struct spec *s, size_t flen)
{
	struct offload_tx tx;
	const char *why = NULL;
	const uint8_t *seg;
	size_t seg_len;
	size_t l3 = l3_of(s), l4 = l4_of(s), hdrs = l3 + l4;
	size_t want = (s->payload + s->gso_size - 1) / s->gso_size, i;
	const uint8_t *op = pristine + VH;

	memcpy(pristine, frame, flen);
	assert_int_equal(offload_tx_parse(&tx, frame, flen, &why), 0);
	assert_true(tx.gso);
	assert_int_equal(tx.segments, want);
	assert_int_equal(tx.hdrs, hdrs);
	for (i = 0;; i++) {
		int r = offload_tx_next(&tx, scratch, sizeof(scratch), &seg, &seg_len);
		if (r == 0)
			break;
		assert_int_equal(r, 1);
		assert_true(i < want);
		bool last = i + 1 == want;
		size_t n = last ? s->payload - i * s->gso_size : s->gso_size;
		assert_int_equal(seg_len, hdrs + n);
		assert_true(seg_len <= tx.seg_max);
		assert_memory_equal(seg + hdrs, op + hdrs + i * s->gso_size, n);
		if (s->v6) {
			assert_int_equal(be16(seg + 4), seg_len - 40);
			assert_memory_equal(seg, op, 4);
			assert_memory_equal(seg + 6, op + 6, 34);
		} else {
			assert_int_equal(be16(seg + 2), seg_len);
			assert_int_equal(be16(seg + 4), (uint16_t)(s->id + i));
			assert_int_equal(seg[1], op[1]);
			assert_int_equal(seg[6], op[6]);
			assert_int_equal(seg[8], op[8]);
			assert_memory_equal(seg + 12, op + 12, 8);
			assert_true(naive_ip4_ok(seg));
		}
		const uint8_t *t = seg + l3, *ot = op + l3;
		assert_memory_equal(t, ot, 4); /* ports */
		if (s->proto == IPPROTO_TCP) {
			uint8_t f = s->flags;
			if (!last)
				f &= (uint8_t) ~(TCP_FIN | TCP_PSH);
			if (i > 0)
				f &= (uint8_t)~TCP_CWR;
			assert_int_equal(be32(t + 4), (uint32_t)(s->seq + i * s->gso_size));
			assert_memory_equal(t + 8, ot + 8, 5); /* ACK, data offset */
			assert_int_equal(t[13], f);
			assert_memory_equal(t + 14, ot + 14, 2);
			assert_memory_equal(t + 18, ot + 18, l4 - 18); /* urgent ptr, options */
		} else {
			assert_int_equal(be16(t + 4), 8 + n);
			assert_int_not_equal(be16(t + 6), 0);
		}
		assert_true(naive_l4_ok(seg, seg_len, s->v6, s->proto));
	}
	assert_int_equal(i, want);
	assert_int_equal(offload_tx_next(&tx, scratch, sizeof(scratch), &seg, &seg_len), 0);
}

static void test_vnet_hdr_layout(void **state)
{
	(void)state;
	/* Our byte layout is the kernel's struct, host order. */
	struct virtio_net_hdr k = {.flags = 1,
				   .gso_type = 4,
				   .hdr_len = 0x1234,
				   .gso_size = 1448,
				   .csum_start = 40,
				   .csum_offset = 16};
	uint8_t b[VH];
	struct offload_vnet_hdr h;
	assert_int_equal(sizeof(k), VH);
	memcpy(b, &k, VH);
	offload_vnet_hdr_decode(&h, b);
	assert_int_equal(h.flags, 1);
	assert_int_equal(h.gso_type, 4);
	assert_int_equal(h.hdr_len, 0x1234);
	assert_int_equal(h.gso_size, 1448);
	assert_int_equal(h.csum_start, 40);
	assert_int_equal(h.csum_offset, 16);
	uint8_t b2[VH];
	offload_vnet_hdr_encode(b2, &h);
	assert_memory_equal(b, b2, VH);
}

static void test_csum_matches_naive(void **state)
{
	(void)state;
	srand(7);
	for (int round = 0; round < 2000; round++) {
		size_t off = (size_t)rand() % 16, n = (size_t)rand() % 1600;
		uint32_t init = (uint32_t)rand() & 0x3ffff;
		for (size_t i = 0; i < off + n; i++)
			scratch[i] = (uint8_t)rand();
		if (round % 5 == 0)
			memset(scratch + off, 0xff, n); /* all-ones words: carries everywhere */
		assert_int_equal(offload_csum(scratch + off, n, init),
				 naive_fold(naive_add(init, scratch + off, n)));
	}
}

static void test_tcp4_gso(void **state)
{
	(void)state;
	struct spec s = tcp4();
	check_segments(&s, build(frame, &s));
	/* Payload an exact multiple of gso_size: no short last segment. */
	s.payload = 3 * 1448;
	check_segments(&s, build(frame, &s));
	/* One segment's worth only. */
	s.payload = 100;
	check_segments(&s, build(frame, &s));
	/* Largest super-packet, no options, ECN flag in gso_type. */
	s = tcp4();
	s.opt_len = 0;
	s.payload = 65535 - 40;
	s.gso_size = 1380;
	s.gso_type |= OFFLOAD_GSO_ECN;
	check_segments(&s, build(frame, &s));
}

static void test_tcp6_gso(void **state)
{
	(void)state;
	struct spec s = tcp6();
	check_segments(&s, build(frame, &s));
	s.flags = TCP_ACK;
	s.payload = 65535 - 40 - 32;
	s.gso_size = 536;
	check_segments(&s, build(frame, &s));
}

static void test_udp_gso(void **state)
{
	(void)state;
	struct spec s = tcp4();
	s.proto = IPPROTO_UDP;
	s.gso_type = OFFLOAD_GSO_UDP_L4;
	s.gso_size = 1200;
	s.payload = 20 * 1200 + 7;
	check_segments(&s, build(frame, &s));
	s.v6 = true;
	check_segments(&s, build(frame, &s));
}

static void test_needs_csum_plain(void **state)
{
	(void)state;
	struct offload_tx tx;
	const char *why = NULL;
	const uint8_t *seg;
	size_t seg_len;

	for (int v6 = 0; v6 < 2; v6++) {
		for (int udp = 0; udp < 2; udp++) {
			struct spec s = v6 ? tcp6() : tcp4();
			s.gso_type = OFFLOAD_GSO_NONE;
			s.gso_size = 0;
			s.payload = 1001; /* odd: the last byte is a padded word */
			if (udp)
				s.proto = IPPROTO_UDP;
			size_t flen = build(frame, &s), plen = flen - VH;
			assert_false(naive_l4_ok(frame + VH, plen, s.v6, s.proto));
			assert_int_equal(offload_tx_parse(&tx, frame, flen, &why), 0);
			assert_false(tx.gso);
			assert_int_equal(tx.segments, 1);
			assert_int_equal(offload_tx_next(&tx, NULL, 0, &seg, &seg_len), 1);
			assert_ptr_equal(seg, frame + VH); /* no copy */
			assert_int_equal(seg_len, plen);
			assert_true(naive_l4_ok(seg, seg_len, s.v6, s.proto));
			assert_int_equal(offload_tx_next(&tx, NULL, 0, &seg, &seg_len), 0);
		}
	}
	/* No flags at all: the packet goes through untouched (DATA_VALID changes nothing). */
	struct spec s = tcp4();
	s.gso_type = OFFLOAD_GSO_NONE;
	s.vflags = OFFLOAD_F_DATA_VALID;
	size_t flen = build(frame, &s);
	memcpy(pristine, frame, flen);
	assert_int_equal(offload_tx_parse(&tx, frame, flen, &why), 0);
	assert_int_equal(offload_tx_next(&tx, NULL, 0, &seg, &seg_len), 1);
	assert_memory_equal(seg, pristine + VH, flen - VH);
	/* Not even IP: not ours to judge here (the core refuses it). */
	memset(frame, 0, VH);
	frame[VH] = 0xee;
	assert_int_equal(offload_tx_parse(&tx, frame, VH + 1, &why), 0);
}

static void test_scratch_too_small(void **state)
{
	(void)state;
	struct offload_tx tx;
	const char *why = NULL;
	const uint8_t *seg;
	size_t seg_len;
	struct spec s = tcp4();
	size_t flen = build(frame, &s);
	assert_int_equal(offload_tx_parse(&tx, frame, flen, &why), 0);
	assert_int_equal(tx.seg_max, 20 + 32 + 1448);
	assert_int_equal(offload_tx_next(&tx, scratch, tx.seg_max - 1, &seg, &seg_len), SG_ERANGE);
	assert_int_equal(offload_tx_next(&tx, scratch, tx.seg_max, &seg, &seg_len), 1);
}

/* One malformation: changes the built frame, may change its length. */
enum bad_kind {
	BAD_FLAGS,
	BAD_UFO,
	BAD_GSO_TYPE,
	BAD_NO_NEEDS_CSUM,
	BAD_V4_TYPE_ON_V6,
	BAD_V6_TYPE_ON_V4,
	BAD_CSUM_START,
	BAD_CSUM_OFFSET,
	BAD_GSO_SIZE_ZERO,
	BAD_GSO_SIZE_HUGE,
	BAD_IHL,
	BAD_TOT_LEN,
	BAD_FRAGMENT,
	BAD_PROTO,
	BAD_V6_EXT_HDR,
	BAD_V6_PLEN,
	BAD_DOFF_SMALL,
	BAD_DOFF_BEYOND,
	BAD_NO_PAYLOAD,
	BAD_ECN_UDP,
	BAD_VERSION,
	BAD_PLAIN_CSUM_START,
	BAD_PLAIN_CSUM_OFFSET,
	BAD_PLAIN_ECN,
	BAD_COUNT,
};

static size_t make_bad(enum bad_kind k)
{
	struct spec s =
	    (k == BAD_V4_TYPE_ON_V6 || k == BAD_V6_EXT_HDR || k == BAD_V6_PLEN) ? tcp6() : tcp4();
	struct offload_vnet_hdr h;
	if (k == BAD_ECN_UDP) {
		s.proto = IPPROTO_UDP;
		s.gso_type = OFFLOAD_GSO_UDP_L4 | OFFLOAD_GSO_ECN;
	}
	if (k >= BAD_PLAIN_CSUM_START)
		s.gso_type = OFFLOAD_GSO_NONE;
	if (k == BAD_NO_PAYLOAD)
		s.payload = 0;
	size_t flen = build(frame, &s);
	uint8_t *p = frame + VH;
	offload_vnet_hdr_decode(&h, frame);
	switch (k) {
	case BAD_FLAGS:
		h.flags |= 4;
		break;
	case BAD_UFO:
		h.gso_type = 3;
		break;
	case BAD_GSO_TYPE:
		h.gso_type = 0x22;
		break;
	case BAD_NO_NEEDS_CSUM:
		h.flags = 0;
		break;
	case BAD_V4_TYPE_ON_V6:
		h.gso_type = OFFLOAD_GSO_TCPV4;
		break;
	case BAD_V6_TYPE_ON_V4:
		h.gso_type = OFFLOAD_GSO_TCPV6;
		break;
	case BAD_CSUM_START:
		h.csum_start = 24;
		break;
	case BAD_CSUM_OFFSET:
		h.csum_offset = 6;
		break;
	case BAD_GSO_SIZE_ZERO:
		h.gso_size = 0;
		break;
	case BAD_GSO_SIZE_HUGE:
		h.gso_size = 65535 - 40;
		break;
	case BAD_IHL:
		p[0] = 0x44;
		break;
	case BAD_TOT_LEN:
		wbe16(p + 2, (uint16_t)(flen - VH - 1));
		break;
	case BAD_FRAGMENT:
		p[6] |= 0x20; /* MF */
		break;
	case BAD_PROTO:
		p[9] = IPPROTO_UDP;
		break;
	case BAD_V6_EXT_HDR:
		p[6] = 0; /* hop-by-hop options */
		break;
	case BAD_V6_PLEN:
		wbe16(p + 4, (uint16_t)(flen - VH - 40 + 1));
		break;
	case BAD_DOFF_SMALL:
		p[20 + 12] = 4 << 4;
		break;
	case BAD_DOFF_BEYOND:
		/* a 60-byte TCP header claimed in a packet that ends inside it */
		p[20 + 12] = 15 << 4;
		flen = VH + 20 + 40;
		wbe16(p + 2, 60);
		break;
	case BAD_NO_PAYLOAD:
	case BAD_ECN_UDP:
		break;
	case BAD_VERSION:
		p[0] = 0x55;
		break;
	case BAD_PLAIN_CSUM_START:
		h.csum_start = (uint16_t)(flen - VH);
		break;
	case BAD_PLAIN_CSUM_OFFSET:
		h.csum_offset = (uint16_t)(flen - VH - h.csum_start - 1);
		break;
	case BAD_PLAIN_ECN:
		h.gso_type = OFFLOAD_GSO_ECN;
		break;
	case BAD_COUNT:
		break;
	}
	offload_vnet_hdr_encode(frame, &h);
	return flen;
}

static void test_malformed_rejected(void **state)
{
	(void)state;
	struct offload_tx tx;
	const char *why;

	for (int k = 0; k < BAD_COUNT; k++) {
		size_t flen = make_bad((enum bad_kind)k);
		why = NULL;
		int r = offload_tx_parse(&tx, frame, flen, &why);
		if (r != SG_EPARSE)
			fail_msg("malformation %d accepted", k);
		assert_non_null(why);
		assert_int_equal(tx.segments, 0); /* nothing to iterate on failure */
	}
	/* Reads too short for a header, or with nothing after it. */
	memset(frame, 0, VH);
	for (size_t n = 0; n <= VH; n++) {
		why = NULL;
		assert_int_equal(offload_tx_parse(&tx, frame, n, &why), SG_EPARSE);
		assert_non_null(why);
	}
	assert_int_equal(offload_tx_parse(&tx, frame, VH + 65536, &why), SG_EPARSE);
}

/* A GSO read cut short anywhere is rejected: the lengths in the IP header no longer match. */
static void test_truncated_rejected(void **state)
{
	(void)state;
	struct offload_tx tx;
	const char *why;
	struct spec specs[3] = {tcp4(), tcp6(), tcp4()};
	specs[1].payload = 3000;
	specs[2].proto = IPPROTO_UDP;
	specs[2].gso_type = OFFLOAD_GSO_UDP_L4;

	for (int i = 0; i < 3; i++) {
		size_t flen = build(pristine, &specs[i]);
		for (size_t n = 0; n < flen; n++) {
			memcpy(frame, pristine, n);
			why = NULL;
			if (offload_tx_parse(&tx, frame, n, &why) != SG_EPARSE)
				fail_msg("spec %d truncated to %zu accepted", i, n);
			assert_non_null(why);
		}
	}
}

/* Random corruption of header bytes: either rejected, or every segment stays within the
 * packet and the scratch size promised. */
static void test_random_corruption_bounded(void **state)
{
	(void)state;
	struct offload_tx tx;
	const char *why;
	const uint8_t *seg;
	size_t seg_len;
	srand(11);
	for (int round = 0; round < 20000; round++) {
		struct spec s = round & 1 ? tcp6() : tcp4();
		s.payload = 1 + (size_t)rand() % 4000;
		s.gso_size = (uint16_t)(1 + rand() % 1500);
		size_t flen = build(frame, &s);
		int flips = 1 + rand() % 3;
		for (int f = 0; f < flips; f++)
			frame[(size_t)rand() % (VH + 80)] ^= (uint8_t)(1u << (rand() % 8));
		if (rand() % 4 == 0)
			flen -= (size_t)rand() % flen;
		why = NULL;
		if (offload_tx_parse(&tx, frame, flen, &why) != 0) {
			assert_non_null(why);
			continue;
		}
		size_t total = 0, count = 0;
		int r;
		while ((r = offload_tx_next(&tx, scratch, sizeof(scratch), &seg, &seg_len)) > 0) {
			assert_true(seg_len <= tx.seg_max);
			assert_true(seg_len <= 65535);
			if (tx.gso) {
				assert_true(seg_len > tx.hdrs);
				total += seg_len - tx.hdrs;
			}
			count++;
		}
		assert_int_equal(r, 0);
		assert_int_equal(count, tx.segments);
		if (tx.gso)
			assert_int_equal(total, flen - VH - tx.hdrs);
	}
}

/* ---- coalescing --------------------------------------------------------------------------- */

struct out_frame {
	uint8_t hdr[VH];
	uint8_t *pkt;
	size_t len;
};
static struct out_frame outs[MAX_FRAMES];
static size_t nouts;

static void capture(void *ctx, const uint8_t hdr[VH], const uint8_t *pkt, size_t len)
{
	(void)ctx;
	assert_true(nouts < MAX_FRAMES);
	memcpy(outs[nouts].hdr, hdr, VH);
	outs[nouts].pkt = malloc(len);
	assert_non_null(outs[nouts].pkt);
	memcpy(outs[nouts].pkt, pkt, len);
	outs[nouts].len = len;
	nouts++;
}

static void outs_reset(void)
{
	for (size_t i = 0; i < nouts; i++)
		free(outs[i].pkt);
	nouts = 0;
}

/* A list of packets (the segments the tests feed in, and what comes back). */
struct pkts {
	uint8_t *p[MAX_FRAMES];
	size_t len[MAX_FRAMES];
	size_t n;
};

static void pkts_add(struct pkts *l, const uint8_t *p, size_t len)
{
	assert_true(l->n < MAX_FRAMES);
	l->p[l->n] = malloc(len);
	assert_non_null(l->p[l->n]);
	memcpy(l->p[l->n], p, len);
	l->len[l->n++] = len;
}

static void pkts_free(struct pkts *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->p[i]);
	l->n = 0;
}

/* The segments of a super-packet built from `s`, appended to `l`. */
static void segments_of(const struct spec *s, struct pkts *l)
{
	struct offload_tx tx;
	const char *why = NULL;
	const uint8_t *seg;
	size_t seg_len;
	size_t flen = build(frame, s);
	assert_int_equal(offload_tx_parse(&tx, frame, flen, &why), 0);
	while (offload_tx_next(&tx, scratch, sizeof(scratch), &seg, &seg_len) > 0)
		pkts_add(l, seg, seg_len);
}

/* Cuts every emitted frame again (as the receiving kernel would) into `l`. */
static void resegment_outs(struct pkts *l)
{
	struct offload_tx tx;
	const char *why = NULL;
	const uint8_t *seg;
	size_t seg_len;
	static uint8_t f[FRAME_MAX];
	for (size_t i = 0; i < nouts; i++) {
		memcpy(f, outs[i].hdr, VH);
		memcpy(f + VH, outs[i].pkt, outs[i].len);
		if (offload_tx_parse(&tx, f, VH + outs[i].len, &why) != 0)
			fail_msg("emitted frame %zu does not parse: %s", i, why);
		while (offload_tx_next(&tx, scratch, sizeof(scratch), &seg, &seg_len) > 0)
			pkts_add(l, seg, seg_len);
	}
}

static void assert_same_pkts(const struct pkts *a, const struct pkts *b)
{
	assert_int_equal(a->n, b->n);
	for (size_t i = 0; i < a->n; i++) {
		assert_int_equal(a->len[i], b->len[i]);
		assert_memory_equal(a->p[i], b->p[i], a->len[i]);
	}
}

static uint8_t *gro_mem;
static struct offload_gro gro;

static int gro_setup(void **state)
{
	(void)state;
	gro_mem = malloc((size_t)OFFLOAD_GRO_FLOWS * OFFLOAD_GRO_BUF);
	offload_gro_init(&gro, gro_mem, capture, NULL);
	nouts = 0;
	return gro_mem ? 0 : -1;
}

static int gro_teardown(void **state)
{
	(void)state;
	outs_reset();
	free(gro_mem);
	return 0;
}

static void feed(const struct pkts *l)
{
	for (size_t i = 0; i < l->n; i++)
		offload_gro_add(&gro, l->p[i], l->len[i]);
}

static void check_gso_frame(const struct out_frame *o, bool v6, size_t l4, size_t gso_size)
{
	struct offload_vnet_hdr h;
	size_t l3 = v6 ? 40 : 20;
	offload_vnet_hdr_decode(&h, o->hdr);
	assert_int_equal(h.flags, OFFLOAD_F_NEEDS_CSUM);
	assert_int_equal(h.gso_type, v6 ? OFFLOAD_GSO_TCPV6 : OFFLOAD_GSO_TCPV4);
	assert_int_equal(h.hdr_len, l3 + l4);
	assert_int_equal(h.gso_size, gso_size);
	assert_int_equal(h.csum_start, l3);
	assert_int_equal(h.csum_offset, 16);
	assert_true(o->len <= 65535);
	if (v6) {
		assert_int_equal(be16(o->pkt + 4), o->len - 40);
	} else {
		assert_int_equal(be16(o->pkt + 2), o->len);
		assert_true(naive_ip4_ok(o->pkt));
	}
	/* CHECKSUM_PARTIAL: the field holds the pseudo-header sum. */
	assert_int_equal(be16(o->pkt + l3 + 16),
			 naive_fold(naive_pseudo(o->pkt, v6, IPPROTO_TCP, o->len - l3)));
}

static void test_gro_roundtrip(void **state)
{
	(void)state;
	struct pkts in = {0}, back = {0};
	for (int v6 = 0; v6 < 2; v6++) {
		struct spec s = v6 ? tcp6() : tcp4();
		s.flags = TCP_ACK | TCP_PSH;
		s.payload = v6 ? 40 * 1428 + 99 : 30 * 1448 + 5;
		segments_of(&s, &in);
		uint64_t merged = gro.merged;
		feed(&in);
		/* PSH rides on the last segment: it closes the super-packet, which leaves at once.
		 */
		assert_int_equal(nouts, 1);
		offload_gro_flush(&gro);
		assert_int_equal(nouts, 1);
		check_gso_frame(&outs[0], s.v6, l4_of(&s), s.gso_size);
		assert_int_equal(gro.merged - merged, in.n - 1);
		resegment_outs(&back);
		assert_same_pkts(&in, &back);
		pkts_free(&in);
		pkts_free(&back);
		outs_reset();
	}
}

static void test_gro_passthrough(void **state)
{
	(void)state;
	struct pkts in = {0}, back = {0};
	/* UDP, SYN, FIN, CWR, IPv4 options, no payload: written as they came, in order. */
	struct spec s = tcp4();
	s.proto = IPPROTO_UDP;
	s.gso_type = OFFLOAD_GSO_UDP_L4;
	s.payload = 3 * 1448;
	segments_of(&s, &in);
	s = tcp4(); /* CWR on the first, FIN on the last: those two pass, the middle merges */
	segments_of(&s, &in);
	s.flags = TCP_SYN;
	s.payload = 10;
	s.sport = 1;
	segments_of(&s, &in);
	feed(&in);
	offload_gro_flush(&gro);
	resegment_outs(&back);
	assert_same_pkts(&in, &back);
	for (size_t i = 0; i < nouts; i++) {
		struct offload_vnet_hdr h;
		offload_vnet_hdr_decode(&h, outs[i].hdr);
		if (h.gso_type == OFFLOAD_GSO_NONE) {
			static const uint8_t zero[VH];
			assert_memory_equal(outs[i].hdr, zero, VH);
		}
	}
	pkts_free(&in);
	pkts_free(&back);
	outs_reset();

	/* An IPv4 header with options is never merged. */
	s = tcp4();
	s.flags = TCP_ACK;
	s.payload = 2 * 1448;
	segments_of(&s, &in);
	for (size_t i = 0; i < in.n; i++) {
		uint8_t *q = malloc(in.len[i] + 4);
		assert_non_null(q);
		memcpy(q, in.p[i], 20);
		memcpy(q + 24, in.p[i] + 20, in.len[i] - 20);
		memcpy(q + 20, (const uint8_t[]){1, 1, 1, 0}, 4); /* NOP NOP NOP EOL */
		q[0] = 0x46;
		wbe16(q + 2, (uint16_t)(in.len[i] + 4));
		naive_fix_ip4(q);
		free(in.p[i]);
		in.p[i] = q;
		in.len[i] += 4;
	}
	feed(&in);
	offload_gro_flush(&gro);
	assert_int_equal(nouts, 2);
	assert_int_equal(gro.merged, 1); /* only the middle segment of the block above */
	pkts_free(&in);
	outs_reset();
}

/* Rules that stop a merge: each case feeds segments and says how many frames must come out. */
static void test_gro_rules(void **state)
{
	(void)state;
	struct pkts in = {0}, back = {0}, seq = {0};
	struct spec s = tcp4();
	s.flags = TCP_ACK;
	s.payload = 4 * 1448;
	segments_of(&s, &in);
	assert_int_equal(in.n, 4);

	/* Out of order: 0 2 1 3 -> [0] [2] [1] [3]; nothing is merged out of sequence. */
	size_t order[4] = {0, 2, 1, 3};
	for (int i = 0; i < 4; i++)
		offload_gro_add(&gro, in.p[order[i]], in.len[order[i]]);
	offload_gro_flush(&gro);
	assert_int_equal(nouts, 4);
	for (int i = 0; i < 4; i++)
		assert_memory_equal(outs[i].pkt, in.p[order[i]], in.len[order[i]]);
	outs_reset();

	/* A bad checksum in the middle: it passes on its own, after what came before it. */
	in.p[1][60] ^= 0x55;
	feed(&in);
	offload_gro_flush(&gro);
	assert_int_equal(nouts, 3);
	assert_memory_equal(outs[1].pkt, in.p[1], in.len[1]);
	assert_int_equal(outs[0].len, in.len[0]);
	check_gso_frame(&outs[2], false, 32, 1448);
	in.p[1][60] ^= 0x55;
	outs_reset();

	/* A different ACK number on segment 2: [0 1] [2] [3]. */
	wbe32(in.p[2] + 20 + 8, 0x01020305);
	naive_fix_l4(in.p[2], in.len[2], false, IPPROTO_TCP);
	feed(&in);
	offload_gro_flush(&gro);
	assert_int_equal(nouts, 3);
	check_gso_frame(&outs[0], false, 32, 1448);
	resegment_outs(&back);
	assert_same_pkts(&in, &back);
	pkts_free(&back);
	wbe32(in.p[2] + 20 + 8, 0x01020304);
	naive_fix_l4(in.p[2], in.len[2], false, IPPROTO_TCP);
	outs_reset();

	/* PSH on segment 1 ends that super-packet: [0 1] [2 3]. */
	in.p[1][20 + 13] |= TCP_PSH;
	naive_fix_l4(in.p[1], in.len[1], false, IPPROTO_TCP);
	feed(&in);
	assert_int_equal(nouts, 1); /* emitted at once: nothing can follow a PSH */
	offload_gro_flush(&gro);
	assert_int_equal(nouts, 2);
	resegment_outs(&back);
	assert_same_pkts(&in, &back);
	pkts_free(&back);
	in.p[1][20 + 13] &= (uint8_t)~TCP_PSH;
	naive_fix_l4(in.p[1], in.len[1], false, IPPROTO_TCP);
	outs_reset();
	pkts_free(&in);

	/* A short segment ends it too: 1448 1000 | 1448. */
	s.payload = 1448 + 1000;
	segments_of(&s, &seq);
	s.seq += 1448 + 1000;
	s.id = (uint16_t)(s.id + 2);
	s.payload = 1448;
	segments_of(&s, &seq);
	feed(&seq);
	offload_gro_flush(&gro);
	assert_int_equal(nouts, 2);
	check_gso_frame(&outs[0], false, 32, 1448);
	resegment_outs(&back);
	assert_same_pkts(&seq, &back);
	pkts_free(&back);
	pkts_free(&seq);
	outs_reset();

	/* A bigger segment after a smaller first one is not merged: 1000 | 1448. */
	s = tcp4();
	s.flags = TCP_ACK;
	s.payload = 1000;
	s.gso_size = 1000;
	segments_of(&s, &seq);
	s.seq += 1000;
	s.id = (uint16_t)(s.id + 1);
	s.payload = 1448;
	s.gso_size = 1448;
	segments_of(&s, &seq);
	feed(&seq);
	offload_gro_flush(&gro);
	assert_int_equal(nouts, 2);
	pkts_free(&seq);
	outs_reset();
}

static void test_gro_flows(void **state)
{
	(void)state;
	struct pkts a = {0}, b = {0}, mixed = {0}, back = {0};
	struct spec s = tcp6();
	s.flags = TCP_ACK;
	s.payload = 6 * 1428;
	segments_of(&s, &a);
	s.sport = 40001;
	segments_of(&s, &b);
	/* Interleaved flows each become one super-packet. */
	for (size_t i = 0; i < a.n; i++) {
		offload_gro_add(&gro, a.p[i], a.len[i]);
		offload_gro_add(&gro, b.p[i], b.len[i]);
	}
	offload_gro_flush(&gro);
	assert_int_equal(nouts, 2);
	check_gso_frame(&outs[0], true, 32, 1428);
	check_gso_frame(&outs[1], true, 32, 1428);
	outs_reset();

	/* More flows than slots: the oldest is written to make room, none is lost or reordered
	 * within its flow. */
	pkts_free(&a);
	for (uint16_t f = 0; f < OFFLOAD_GRO_FLOWS + 3; f++) {
		s.sport = (uint16_t)(1000 + f);
		s.payload = 2 * 1428;
		segments_of(&s, &mixed);
	}
	feed(&mixed);
	offload_gro_flush(&gro);
	assert_int_equal(nouts, OFFLOAD_GRO_FLOWS + 3);
	resegment_outs(&back);
	assert_same_pkts(&mixed, &back);
	pkts_free(&mixed);
	pkts_free(&back);
	pkts_free(&b);
	outs_reset();

	/* Merged packets never exceed 65535 bytes: 100 segments become two super-packets. */
	s = tcp4();
	s.flags = TCP_ACK;
	for (int i = 0; i < 3; i++) {
		s.payload = 40 * 1448;
		segments_of(&s, &mixed);
		s.seq += 40 * 1448;
		s.id = (uint16_t)(s.id + 40);
	}
	feed(&mixed);
	offload_gro_flush(&gro);
	assert_true(nouts >= 2);
	for (size_t i = 0; i < nouts; i++)
		assert_true(outs[i].len <= 65535);
	resegment_outs(&back);
	assert_same_pkts(&mixed, &back);
	pkts_free(&mixed);
	pkts_free(&back);
	outs_reset();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vnet_hdr_layout),
	    cmocka_unit_test(test_csum_matches_naive),
	    cmocka_unit_test(test_tcp4_gso),
	    cmocka_unit_test(test_tcp6_gso),
	    cmocka_unit_test(test_udp_gso),
	    cmocka_unit_test(test_needs_csum_plain),
	    cmocka_unit_test(test_scratch_too_small),
	    cmocka_unit_test(test_malformed_rejected),
	    cmocka_unit_test(test_truncated_rejected),
	    cmocka_unit_test(test_random_corruption_bounded),
	    cmocka_unit_test_setup_teardown(test_gro_roundtrip, gro_setup, gro_teardown),
	    cmocka_unit_test_setup_teardown(test_gro_passthrough, gro_setup, gro_teardown),
	    cmocka_unit_test_setup_teardown(test_gro_rules, gro_setup, gro_teardown),
	    cmocka_unit_test_setup_teardown(test_gro_flows, gro_setup, gro_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
