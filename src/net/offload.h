/* TUN offloads, as pure functions over buffers (no I/O): what a TUN device opened with
 * IFF_VNET_HDR and TUNSETOFFLOAD hands us and takes from us.
 *
 * Read side: every read starts with a struct virtio_net_hdr (virtio spec 1.x, 5.1.6 "Device
 * Operation"; legacy layout, 10 bytes, host byte order). With TUN_F_TSO4/6 (and TUN_F_USO4/6)
 * the kernel hands us TCP (UDP) super-packets of up to 64 KiB that we must cut into gso_size
 * segments ourselves, as a NIC doing TSO would (RFC 793/9293 sequence numbers, RFC 791 header
 * checksum and ID, RFC 8200 payload length); with TUN_F_CSUM even a single packet may carry a
 * partial checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM) that we must complete. offload_tx_parse()
 * checks the header against the packet itself (the kernel's values are never used as offsets
 * before they are checked, and hdr_len, which the kernel fills with its linear length rather
 * than the header length, is not used at all), offload_tx_next() yields the segments.
 *
 * Write side: packets decrypted from the tunnel are complete and checksummed; the GRO table
 * coalesces consecutive in-order TCP segments of one flow into one super-packet with a
 * GSO virtio_net_hdr, so the kernel's TCP stack sees one packet instead of forty (the kernel's
 * own GRO rules, net/ipv4/tcp_offload.c tcp_gro_receive, decide what may be merged).
 */
#ifndef SG_NET_OFFLOAD_H
#define SG_NET_OFFLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"

/* sizeof(struct virtio_net_hdr): flags, gso_type, hdr_len, gso_size, csum_start, csum_offset. */
#define OFFLOAD_VNET_HDR_LEN 10
/* Largest IP packet on either side (IPv4 total length, and what TUN's 64 KiB GSO limit gives). */
#define OFFLOAD_MAX_PKT 65535

/* virtio_net_hdr values (include/uapi/linux/virtio_net.h). */
#define OFFLOAD_F_NEEDS_CSUM 1
#define OFFLOAD_F_DATA_VALID 2
#define OFFLOAD_GSO_NONE     0
#define OFFLOAD_GSO_TCPV4    1
#define OFFLOAD_GSO_TCPV6    4
#define OFFLOAD_GSO_UDP_L4   5
#define OFFLOAD_GSO_ECN	     0x80

struct offload_vnet_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
};

/* Host byte order, as TUN uses for the legacy header (TUNSETVNETLE/BE not set). */
void offload_vnet_hdr_decode(struct offload_vnet_hdr *h, const uint8_t p[OFFLOAD_VNET_HDR_LEN]);
void offload_vnet_hdr_encode(uint8_t p[OFFLOAD_VNET_HDR_LEN], const struct offload_vnet_hdr *h);

/* ---- read side: segmentation ------------------------------------------------------------ */

/* A parsed TUN read. Either a plain packet (one segment: the packet itself, checksum completed
 * in place) or a GSO super-packet to cut into `segments` packets. */
struct offload_tx {
	uint8_t *pkt;	   /* the IP packet, after the virtio header */
	size_t len;	   /* its length */
	bool gso;	   /* false: one segment, pkt itself */
	bool v6;	   /* IP version of a GSO packet */
	uint8_t proto;	   /* IPPROTO_TCP or IPPROTO_UDP (GSO) */
	size_t l3len;	   /* IP header length (GSO) */
	size_t hdrs;	   /* IP + TCP/UDP header length (GSO) */
	size_t gso_size;   /* payload bytes per segment (GSO) */
	size_t segments;   /* how many segments offload_tx_next() yields */
	size_t next;	   /* index of the next segment */
	size_t seg_max;	   /* longest segment: what the scratch buffer must hold */
	uint32_t seq0;	   /* TCP sequence number of the first segment */
	uint16_t id0;	   /* IPv4 identification of the first segment */
	uint8_t tcp_flags; /* TCP flags of the super-packet */
};

/* Parses a TUN read: `frame` is the virtio_net_hdr followed by the packet, `len` bytes in all.
 * Completes a partial checksum in place (so `frame` must be writable). 0, or SG_EPARSE with *why
 * naming what is wrong and where (the read is to be dropped). */
int offload_tx_parse(struct offload_tx *tx, uint8_t *frame, size_t len, const char **why) SG_WUR;

/* The next segment: 1 with *seg and *seg_len set (into `scratch` for GSO packets, which must hold
 * tx->seg_max bytes; the packet itself otherwise), 0 when all were produced, SG_ERANGE if
 * scratch is too small. Each GSO segment is a complete packet: IPv4 total length, ID (the first
 * one's plus the segment index) and header checksum, IPv6 payload length, TCP sequence number,
 * FIN/PSH only on the last and CWR only on the first segment, UDP length, and the TCP/UDP
 * checksum over the pseudo-header. */
int offload_tx_next(struct offload_tx *tx, uint8_t *scratch, size_t scratch_size,
		    const uint8_t **seg, size_t *seg_len) SG_WUR;

/* ---- write side: TCP coalescing --------------------------------------------------------- */

/* Flows coalesced at once; a packet of a further flow pushes out the oldest one. */
#define OFFLOAD_GRO_FLOWS 8
/* Bytes each flow buffer must hold: a virtio header and a packet of OFFLOAD_MAX_PKT. */
#define OFFLOAD_GRO_BUF (OFFLOAD_VNET_HDR_LEN + OFFLOAD_MAX_PKT)

/* Called with a virtio header and a packet to write to the TUN device (the header is all zero
 * for a packet that goes out as it came). */
typedef void (*offload_emit_fn)(void *ctx, const uint8_t hdr[OFFLOAD_VNET_HDR_LEN],
				const uint8_t *pkt, size_t len);

struct offload_gro_flow {
	uint8_t *buf; /* OFFLOAD_GRO_BUF bytes: virtio header room, then the packet */
	size_t len;   /* packet bytes held; 0 = free */
	size_t l3len, l4len;
	size_t gso_size; /* payload of the first segment */
	size_t segments;
	uint32_t next_seq; /* sequence number the next appended segment must have */
	bool closed;	   /* PSH seen or a short segment appended: nothing may follow */
	bool v6;
	uint64_t age; /* insertion stamp, to pick the oldest */
};

struct offload_gro {
	struct offload_gro_flow flows[OFFLOAD_GRO_FLOWS];
	offload_emit_fn emit;
	void *ctx;
	uint64_t stamp;
	/* Counters. */
	uint64_t merged;  /* segments appended to an earlier one */
	uint64_t written; /* packets emitted (coalesced or not) */
};

/* Sets up the table over `mem` (OFFLOAD_GRO_FLOWS * OFFLOAD_GRO_BUF bytes, owned by the caller). */
void offload_gro_init(struct offload_gro *g, uint8_t *mem, offload_emit_fn emit, void *ctx);
/* Takes one complete IP packet (not modified): holds it for coalescing, or emits it at once when
 * it cannot be merged (not TCP, flags other than ACK/PSH, no payload, bad checksum, IP options or
 * fragments), after first emitting what is held for the same connection, so no flow is
 * reordered. */
void offload_gro_add(struct offload_gro *g, const uint8_t *pkt, size_t len);
/* Emits everything held. Call at the end of each receive batch. */
void offload_gro_flush(struct offload_gro *g);

/* ---- checksums -------------------------------------------------------------------------- */

/* RFC 1071 one's-complement sum of `len` bytes added to `sum`, folded to 16 bits (not
 * complemented), as a host-order number of the big-endian 16-bit words. */
uint16_t offload_csum(const uint8_t *p, size_t len, uint32_t sum);

#endif
