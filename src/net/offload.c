/* TUN offloads: segmentation of GSO reads, completion of partial checksums, coalescing of TCP
 * segments for writes; see offload.h. */
#include "net/offload.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include <secureguard/sg_errors.h>

#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_CWR 0x80

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

void offload_vnet_hdr_decode(struct offload_vnet_hdr *h, const uint8_t p[OFFLOAD_VNET_HDR_LEN])
{
	h->flags = p[0];
	h->gso_type = p[1];
	memcpy(&h->hdr_len, p + 2, 2);
	memcpy(&h->gso_size, p + 4, 2);
	memcpy(&h->csum_start, p + 6, 2);
	memcpy(&h->csum_offset, p + 8, 2);
}

void offload_vnet_hdr_encode(uint8_t p[OFFLOAD_VNET_HDR_LEN], const struct offload_vnet_hdr *h)
{
	p[0] = h->flags;
	p[1] = h->gso_type;
	memcpy(p + 2, &h->hdr_len, 2);
	memcpy(p + 4, &h->gso_size, 2);
	memcpy(p + 6, &h->csum_start, 2);
	memcpy(p + 8, &h->csum_offset, 2);
}

/* ---- checksums ---------------------------------------------------------------------------- */

static uint64_t add_carry(uint64_t acc, uint64_t v)
{
	acc += v;
	return acc + (acc < v); /* end-around carry */
}

uint16_t offload_csum(const uint8_t *p, size_t len, uint32_t sum)
{
	uint64_t acc = 0, v;

	/* Eight bytes at a time in host order: the one's-complement sum of byte-swapped words is
	 * the byte-swapped sum (RFC 1071 2(B)), so one swap at the end gives the big-endian sum. */
	while (len >= 8) {
		memcpy(&v, p, 8);
		acc = add_carry(acc, v);
		p += 8;
		len -= 8;
	}
	if (len > 0) {
		uint8_t tail[8] = {0}; /* an odd last byte is the high half of a zero-padded word */
		memcpy(tail, p, len);
		memcpy(&v, tail, 8);
		acc = add_carry(acc, v);
	}
	acc = (acc & 0xffffffffu) + (acc >> 32);
	acc = (acc & 0xffffffffu) + (acc >> 32);
	acc = (acc & 0xffffu) + (acc >> 16);
	acc = (acc & 0xffffu) + (acc >> 16);
	uint64_t be = (uint64_t)ntohs((uint16_t)acc) + sum;
	be = (be & 0xffffu) + (be >> 16);
	be = (be & 0xffffu) + (be >> 16);
	be = (be & 0xffffu) + (be >> 16);
	return (uint16_t)be;
}

/* Pseudo-header sum (RFC 9293 3.1 for IPv4, RFC 8200 8.1 for IPv6): the addresses are
 * contiguous in both headers; the upper-layer length is 32 bits in IPv6, 16 in IPv4. */
static uint32_t pseudo_sum(const uint8_t *ip, bool v6, uint8_t proto, size_t l4len)
{
	uint32_t s = v6 ? offload_csum(ip + 8, 32, 0) : offload_csum(ip + 12, 8, 0);
	return s + proto + (uint32_t)(l4len >> 16) + (uint32_t)(l4len & 0xffff);
}

static void ipv4_set_csum(uint8_t *ip, size_t l3len)
{
	ip[10] = ip[11] = 0;
	put16(ip + 10, (uint16_t)~offload_csum(ip, l3len, 0));
}

/* ---- read side ---------------------------------------------------------------------------- */

static int bad(const char **why, const char *what)
{
	*why = what;
	return SG_EPARSE;
}

/* A GSO super-packet: every offset the header claims is checked against the packet itself. */
static int parse_gso(struct offload_tx *tx, const struct offload_vnet_hdr *h, const char **why)
{
	uint8_t *pkt = tx->pkt;
	size_t plen = tx->len, l3, l4;
	uint8_t type = h->gso_type & (uint8_t)~OFFLOAD_GSO_ECN;
	unsigned ver = pkt[0] >> 4;
	uint8_t want;

	if (!(h->flags & OFFLOAD_F_NEEDS_CSUM))
		return bad(why, "virtio-net: GSO packet without NEEDS_CSUM");
	if (type == OFFLOAD_GSO_TCPV4) {
		if (ver != 4)
			return bad(why, "virtio-net: GSO_TCPV4 packet is not IPv4");
		want = IPPROTO_TCP;
	} else if (type == OFFLOAD_GSO_TCPV6) {
		if (ver != 6)
			return bad(why, "virtio-net: GSO_TCPV6 packet is not IPv6");
		want = IPPROTO_TCP;
	} else if (type == OFFLOAD_GSO_UDP_L4) {
		if (ver != 4 && ver != 6)
			return bad(why, "virtio-net: GSO_UDP_L4 packet is not IP");
		if (h->gso_type & OFFLOAD_GSO_ECN)
			return bad(why, "virtio-net: ECN flag on a UDP GSO packet");
		want = IPPROTO_UDP;
	} else {
		return bad(why, "virtio-net: unsupported gso_type");
	}

	if (ver == 4) {
		if (plen < 20)
			return bad(why, "GSO packet: IPv4 header truncated");
		l3 = (size_t)(pkt[0] & 0x0f) * 4;
		if (l3 < 20)
			return bad(why, "GSO packet: IPv4 header length below 20");
		if (l3 > plen)
			return bad(why, "GSO packet: IPv4 header longer than the packet");
		if (get16(pkt + 2) != plen)
			return bad(why,
				   "GSO packet: IPv4 total length differs from the read length");
		if (get16(pkt + 6) & 0x3fff)
			return bad(why, "GSO packet: IPv4 fragment");
		if (pkt[9] != want)
			return bad(why, "GSO packet: IPv4 protocol does not match gso_type");
		tx->id0 = get16(pkt + 4);
	} else {
		if (plen < 40)
			return bad(why, "GSO packet: IPv6 header truncated");
		l3 = 40;
		if (get16(pkt + 4) != plen - 40)
			return bad(why,
				   "GSO packet: IPv6 payload length differs from the read length");
		/* Extension headers land here too: the kernel's TCP and UDP send none. */
		if (pkt[6] != want)
			return bad(why, "GSO packet: IPv6 next header does not match gso_type");
	}
	if (h->csum_start != l3)
		return bad(why, "virtio-net: csum_start is not the transport header offset");
	if (want == IPPROTO_TCP) {
		if (h->csum_offset != 16)
			return bad(why, "virtio-net: csum_offset is not the TCP checksum");
		if (plen < l3 + 20)
			return bad(why, "GSO packet: TCP header truncated");
		l4 = (size_t)(pkt[l3 + 12] >> 4) * 4;
		if (l4 < 20)
			return bad(why, "GSO packet: TCP data offset below 5");
		if (l3 + l4 > plen)
			return bad(why, "GSO packet: TCP header longer than the packet");
		tx->seq0 = get32(pkt + l3 + 4);
		tx->tcp_flags = pkt[l3 + 13];
	} else {
		if (h->csum_offset != 6)
			return bad(why, "virtio-net: csum_offset is not the UDP checksum");
		if (plen < l3 + 8)
			return bad(why, "GSO packet: UDP header truncated");
		l4 = 8;
	}
	if (h->gso_size == 0)
		return bad(why, "virtio-net: gso_size is zero");
	if (plen == l3 + l4)
		return bad(why, "GSO packet: no payload");
	if (l3 + l4 + h->gso_size > OFFLOAD_MAX_PKT)
		return bad(why, "virtio-net: gso_size plus headers exceeds 65535");

	size_t payload = plen - l3 - l4;
	tx->gso = true;
	tx->v6 = ver == 6;
	tx->proto = want;
	tx->l3len = l3;
	tx->hdrs = l3 + l4;
	tx->gso_size = h->gso_size;
	tx->segments = (payload + tx->gso_size - 1) / tx->gso_size;
	tx->seg_max = tx->hdrs + (payload < tx->gso_size ? payload : tx->gso_size);
	return 0;
}

int offload_tx_parse(struct offload_tx *tx, uint8_t *frame, size_t len, const char **why)
{
	struct offload_vnet_hdr h;

	memset(tx, 0, sizeof(*tx));
	if (len < OFFLOAD_VNET_HDR_LEN)
		return bad(why, "TUN read shorter than the virtio-net header");
	if (len == OFFLOAD_VNET_HDR_LEN)
		return bad(why, "TUN read: empty packet after the virtio-net header");
	if (len - OFFLOAD_VNET_HDR_LEN > OFFLOAD_MAX_PKT)
		return bad(why, "TUN read: packet longer than 65535 bytes");
	offload_vnet_hdr_decode(&h, frame);
	if (h.flags & ~(OFFLOAD_F_NEEDS_CSUM | OFFLOAD_F_DATA_VALID))
		return bad(why, "virtio-net: unknown flags");
	tx->pkt = frame + OFFLOAD_VNET_HDR_LEN;
	tx->len = len - OFFLOAD_VNET_HDR_LEN;
	tx->segments = 1;
	tx->seg_max = tx->len;
	if (h.gso_type != OFFLOAD_GSO_NONE) {
		int err = parse_gso(tx, &h, why);
		if (err != 0) {
			memset(tx, 0, sizeof(*tx));
			return err;
		}
		return 0;
	}
	if (h.flags & OFFLOAD_F_NEEDS_CSUM) {
		/* CHECKSUM_PARTIAL: the field holds the pseudo-header sum; sum from csum_start to
		 * the end and store the complement, as the kernel's skb_checksum_help does. */
		size_t start = h.csum_start, field = start + h.csum_offset;
		if (start >= tx->len || field + 2 > tx->len) {
			memset(tx, 0, sizeof(*tx));
			return bad(why, "virtio-net: csum_start/csum_offset beyond the packet");
		}
		uint16_t c = (uint16_t)~offload_csum(tx->pkt + start, tx->len - start, 0);
		put16(tx->pkt + field, c ? c : 0xffff);
	}
	return 0;
}

int offload_tx_next(struct offload_tx *tx, uint8_t *scratch, size_t scratch_size,
		    const uint8_t **seg, size_t *seg_len)
{
	if (tx->next >= tx->segments)
		return 0;
	if (!tx->gso) {
		tx->next++;
		*seg = tx->pkt;
		*seg_len = tx->len;
		return 1;
	}
	if (scratch_size < tx->seg_max)
		return SG_ERANGE;

	size_t i = tx->next++;
	size_t off = tx->hdrs + i * tx->gso_size;
	size_t n = tx->len - off < tx->gso_size ? tx->len - off : tx->gso_size;
	size_t total = tx->hdrs + n, l4len = total - tx->l3len;
	uint8_t *o = scratch, *l4 = scratch + tx->l3len;

	memcpy(o, tx->pkt, tx->hdrs);
	memcpy(o + tx->hdrs, tx->pkt + off, n);
	if (tx->v6) {
		put16(o + 4, (uint16_t)l4len);
	} else {
		/* What a NIC doing TSO does: consecutive IDs from the first one (RFC 6864 allows
		 * any for atomic datagrams; Linux increments). */
		put16(o + 2, (uint16_t)total);
		put16(o + 4, (uint16_t)(tx->id0 + i));
		ipv4_set_csum(o, tx->l3len);
	}
	size_t csum_at;
	if (tx->proto == IPPROTO_TCP) {
		/* FIN and PSH end the data: last segment only. CWR marks one window reduction
		 * (RFC 3168 6.1.2): first segment only, as the kernel's tcp_gso_segment does. */
		uint8_t flags = tx->tcp_flags;
		if (i + 1 < tx->segments)
			flags &= (uint8_t) ~(TCP_FIN | TCP_PSH);
		if (i > 0)
			flags &= (uint8_t)~TCP_CWR;
		put32(l4 + 4, tx->seq0 + (uint32_t)(i * tx->gso_size));
		l4[13] = flags;
		csum_at = 16;
	} else {
		put16(l4 + 4, (uint16_t)l4len);
		csum_at = 6;
	}
	l4[csum_at] = l4[csum_at + 1] = 0;
	uint16_t c = (uint16_t)~offload_csum(l4, l4len, pseudo_sum(o, tx->v6, tx->proto, l4len));
	/* A UDP checksum of zero means "none" (RFC 768): send all ones instead. */
	put16(l4 + csum_at, c ? c : 0xffff);
	*seg = o;
	*seg_len = total;
	return 1;
}

/* ---- write side --------------------------------------------------------------------------- */

static const uint8_t zero_hdr[OFFLOAD_VNET_HDR_LEN];

struct gro_pkt {
	bool tcp;	/* IPv4/IPv6 TCP with ports readable: can be matched to a flow */
	bool candidate; /* and may be merged */
	bool v6;
	size_t l3, l4, payload;
	uint32_t seq;
	uint8_t flags;
};

static void gro_parse(const uint8_t *pkt, size_t len, struct gro_pkt *p)
{
	memset(p, 0, sizeof(*p));
	if (len < 20 || len > OFFLOAD_MAX_PKT)
		return;
	unsigned ver = pkt[0] >> 4;
	bool ok = true;
	if (ver == 4) {
		p->l3 = (size_t)(pkt[0] & 0x0f) * 4;
		if (p->l3 < 20 || pkt[9] != IPPROTO_TCP || len < p->l3 + 20)
			return;
		/* No options (the kernel's GRO wants ihl 5 too), no fragments, a length that
		 * matches, and a header checksum that verifies: the merged header is rebuilt. */
		ok = p->l3 == 20 && get16(pkt + 2) == len && !(get16(pkt + 6) & 0x3fff) &&
		     offload_csum(pkt, 20, 0) == 0xffff;
	} else if (ver == 6) {
		p->l3 = 40;
		if (len < 60 || pkt[6] != IPPROTO_TCP)
			return;
		p->v6 = true;
		ok = get16(pkt + 4) == len - 40;
	} else {
		return;
	}
	p->tcp = true;
	const uint8_t *th = pkt + p->l3;
	p->l4 = (size_t)(th[12] >> 4) * 4;
	if (!ok || p->l4 < 20 || p->l3 + p->l4 > len)
		return;
	p->flags = th[13];
	if (p->flags != TCP_ACK && p->flags != (TCP_ACK | TCP_PSH))
		return;
	p->payload = len - p->l3 - p->l4;
	if (p->payload == 0)
		return;
	p->seq = get32(th + 4);
	/* The merged packet goes up as CHECKSUM_PARTIAL, which the kernel trusts: so merge only
	 * segments whose own checksum verifies, and let bad ones reach TCP, which drops them. */
	if (offload_csum(th, len - p->l3, pseudo_sum(pkt, p->v6, IPPROTO_TCP, len - p->l3)) !=
	    0xffff)
		return;
	p->candidate = true;
}

static uint8_t *flow_pkt(const struct offload_gro_flow *f)
{
	return f->buf + OFFLOAD_VNET_HDR_LEN;
}

/* Same connection: addresses and ports. */
static bool same_conn(const struct offload_gro_flow *f, const uint8_t *pkt, const struct gro_pkt *p)
{
	const uint8_t *q = flow_pkt(f);
	if (f->len == 0 || f->v6 != p->v6)
		return false;
	if (p->v6 ? memcmp(q + 8, pkt + 8, 32) != 0 : memcmp(q + 12, pkt + 12, 8) != 0)
		return false;
	return memcmp(q + f->l3len, pkt + p->l3, 4) == 0;
}

/* The rules of the kernel's tcp_gro_receive and inet_gro_receive: in sequence, same ACK, window
 * and options, same TOS/TTL/DF (traffic class, flow label, hop limit), no bigger than the
 * first segment, and nothing after a short or PSH segment. */
static bool can_append(const struct offload_gro_flow *f, const uint8_t *pkt,
		       const struct gro_pkt *p)
{
	const uint8_t *q = flow_pkt(f);
	const uint8_t *qt = q + f->l3len, *pt = pkt + p->l3;

	if (f->closed || p->seq != f->next_seq || p->payload > f->gso_size ||
	    f->len + p->payload > OFFLOAD_MAX_PKT || p->l4 != f->l4len)
		return false;
	if (memcmp(qt + 8, pt + 8, 4) != 0 || memcmp(qt + 14, pt + 14, 2) != 0 ||
	    memcmp(qt + 20, pt + 20, p->l4 - 20) != 0)
		return false;
	if (p->v6)
		return memcmp(q, pkt, 4) == 0 && q[7] == pkt[7];
	return q[1] == pkt[1] && q[8] == pkt[8] && (q[6] & 0xe0) == (pkt[6] & 0xe0);
}

static void flow_emit(struct offload_gro *g, struct offload_gro_flow *f)
{
	uint8_t *pkt = flow_pkt(f);

	if (f->len == 0)
		return;
	if (f->segments == 1) {
		g->emit(g->ctx, zero_hdr, pkt, f->len);
	} else {
		size_t l4len = f->len - f->l3len;
		struct offload_vnet_hdr h = {
		    .flags = OFFLOAD_F_NEEDS_CSUM,
		    .gso_type = f->v6 ? OFFLOAD_GSO_TCPV6 : OFFLOAD_GSO_TCPV4,
		    .hdr_len = (uint16_t)(f->l3len + f->l4len),
		    .gso_size = (uint16_t)f->gso_size,
		    .csum_start = (uint16_t)f->l3len,
		    .csum_offset = 16,
		};
		if (f->v6) {
			put16(pkt + 4, (uint16_t)l4len);
		} else {
			put16(pkt + 2, (uint16_t)f->len);
			ipv4_set_csum(pkt, f->l3len);
		}
		/* CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum; the kernel adds
		 * the rest when (if ever) it needs the checksum. */
		put16(pkt + f->l3len + 16,
		      offload_csum(NULL, 0, pseudo_sum(pkt, f->v6, IPPROTO_TCP, l4len)));
		offload_vnet_hdr_encode(f->buf, &h);
		g->emit(g->ctx, f->buf, pkt, f->len);
	}
	g->written++;
	f->len = 0;
}

static void flow_start(struct offload_gro *g, struct offload_gro_flow *f, const uint8_t *pkt,
		       size_t len, const struct gro_pkt *p)
{
	memcpy(flow_pkt(f), pkt, len);
	f->len = len;
	f->l3len = p->l3;
	f->l4len = p->l4;
	f->gso_size = p->payload;
	f->segments = 1;
	f->next_seq = p->seq + (uint32_t)p->payload;
	f->closed = (p->flags & TCP_PSH) != 0;
	f->v6 = p->v6;
	f->age = ++g->stamp;
}

void offload_gro_init(struct offload_gro *g, uint8_t *mem, offload_emit_fn emit, void *ctx)
{
	memset(g, 0, sizeof(*g));
	for (size_t i = 0; i < OFFLOAD_GRO_FLOWS; i++)
		g->flows[i].buf = mem + i * OFFLOAD_GRO_BUF;
	g->emit = emit;
	g->ctx = ctx;
}

void offload_gro_add(struct offload_gro *g, const uint8_t *pkt, size_t len)
{
	struct offload_gro_flow *f = NULL;
	struct gro_pkt p;

	gro_parse(pkt, len, &p);
	if (p.tcp) {
		for (size_t i = 0; i < OFFLOAD_GRO_FLOWS && !f; i++)
			if (same_conn(&g->flows[i], pkt, &p))
				f = &g->flows[i];
	}
	if (!p.candidate) {
		if (f)
			flow_emit(g, f); /* what came before it on its connection goes first */
		g->emit(g->ctx, zero_hdr, pkt, len);
		g->written++;
		return;
	}
	if (f && can_append(f, pkt, &p)) {
		memcpy(flow_pkt(f) + f->len, pkt + p.l3 + p.l4, p.payload);
		f->len += p.payload;
		f->next_seq += (uint32_t)p.payload;
		f->segments++;
		g->merged++;
		if (p.flags & TCP_PSH) {
			flow_pkt(f)[f->l3len + 13] |= TCP_PSH;
			f->closed = true;
		}
		if (p.payload < f->gso_size)
			f->closed = true;
	} else {
		if (f) {
			flow_emit(g, f);
		} else {
			f = &g->flows[0];
			for (size_t i = 0; i < OFFLOAD_GRO_FLOWS; i++) {
				struct offload_gro_flow *c = &g->flows[i];
				if (c->len == 0) {
					f = c;
					break;
				}
				if (c->age < f->age)
					f = c;
			}
			flow_emit(g, f);
		}
		flow_start(g, f, pkt, len, &p);
	}
	/* Nothing more can join: free the slot now. */
	if (f->closed || f->len + f->gso_size > OFFLOAD_MAX_PKT)
		flow_emit(g, f);
}

void offload_gro_flush(struct offload_gro *g)
{
	/* Oldest first, so flows leave in the order they started. */
	for (;;) {
		struct offload_gro_flow *oldest = NULL;
		for (size_t i = 0; i < OFFLOAD_GRO_FLOWS; i++) {
			struct offload_gro_flow *f = &g->flows[i];
			if (f->len != 0 && (!oldest || f->age < oldest->age))
				oldest = f;
		}
		if (!oldest)
			return;
		flow_emit(g, oldest);
	}
}
