/* The outer UDP socket: one dual-stack IPv6 socket (IPV6_V6ONLY off) bound to the listen port,
 * so IPv4 peers arrive as ::ffff:a.b.c.d and are handed to the core as AF_INET endpoints; an
 * AF_INET socket when the kernel has no IPv6. Datagrams are received with recvmmsg and sent with
 * sendmmsg from a queue the core's send upcall fills (STYLE.md habit 7: no syscall per packet
 * where a batch will do).
 *
 * With offloads, consecutive queued datagrams to one endpoint that all have the same size (the
 * last may be shorter) leave as one message with UDP_SEGMENT (UDP GSO, Linux 4.18): the kernel
 * builds the datagrams from one buffer in one pass through the stack. If the kernel refuses
 * (EIO: no checksum offload on the route's device; EINVAL or EMSGSIZE: segments larger than the
 * path MTU), GSO is turned off for the socket and the datagrams are sent one by one. On
 * receive, UDP_GRO (Linux 5.0) lets the kernel hand us a run of datagrams of one flow as one
 * buffer, with their size in a control message.
 *
 * Sticky sources: IP_PKTINFO / IPV6_RECVPKTINFO tell, per received datagram, the local address it
 * was sent to; the endpoint handed to the core carries it, and a datagram queued for an endpoint
 * with a source leaves from that address (an IP_PKTINFO or IPV6_PKTINFO control message), as the
 * kernel's WireGuard and wireguard-go do. A multi-homed host thus answers from the address the
 * peer talks to, which NAT and stateful firewalls on the way require. If the address has gone
 * away (the kernel answers EINVAL, ENETUNREACH or ENODEV), the datagram is sent again without it
 * and the kernel picks the source by routing.
 */
#ifndef SG_NET_UDP_H
#define SG_NET_UDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/compiler.h"
#include "wg/wg.h"

#define UDP_BATCH 32
/* Larger than any UDP payload, so nothing is ever truncated. */
#define UDP_RX_BUF 65536
/* Send queue: up to UDP_TX_SLOTS datagrams or UDP_TX_ARENA bytes before a flush (a few
 * segmented 64 KiB super-packets from the TUN device). */
#define UDP_TX_SLOTS 256
#define UDP_TX_ARENA (512u * 1024u)
/* One GSO message: at most 64 segments (UDP_MAX_SEGMENTS, 64 in the kernels that have GSO at
 * all; newer ones allow more) and as many bytes as one IPv4 datagram can carry (65535-20-8). */
#define UDP_GSO_MAX_SEGS  64
#define UDP_GSO_MAX_BYTES 65507u
/* Socket buffers asked for (wireguard-go asks 7 MiB; the kernel caps SO_RCVBUF by rmem_max
 * unless we hold CAP_NET_ADMIN for SO_RCVBUFFORCE). */
#define UDP_SOCKBUF (4 << 20)

struct udp_sock {
	int fd; /* -1 when closed */
	int family;
	uint16_t port; /* the bound port */
	uint32_t fwmark;
	bool gso; /* UDP_SEGMENT is used for sending */
	bool gro; /* UDP_GRO is on: received buffers may hold several datagrams */
};

/* Opens and binds a socket on `port` (0 = any free port) with SO_MARK `fwmark` (0 = none);
 * with `offload`, uses UDP GSO and GRO when the kernel has them. On failure u->fd is -1 and
 * *why names the step. 0 or a negative errno. */
int udp_open(struct udp_sock *u, uint16_t port, uint32_t fwmark, bool offload,
	     const char **why) SG_WUR;
void udp_close(struct udp_sock *u);
/* Sets SO_MARK (needs CAP_NET_ADMIN). 0 or a negative errno. */
int udp_set_fwmark(struct udp_sock *u, uint32_t mark) SG_WUR;

/* Control messages per received buffer: the UDP_GRO segment size, IP_PKTINFO and, on the
 * dual-stack socket, IPV6_PKTINFO (which IPv4 datagrams also get, with a mapped address). */
#define UDP_RX_CTRL                                                                                \
	(CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(struct in_pktinfo)) +                         \
	 CMSG_SPACE(sizeof(struct in6_pktinfo)))
/* Control messages per sent message: UDP_SEGMENT, one of IP_PKTINFO / IPV6_PKTINFO and one of
 * IP_TTL / IPV6_HOPLIMIT. */
#define UDP_TX_CTRL                                                                                \
	(CMSG_SPACE(sizeof(uint16_t)) + CMSG_SPACE(sizeof(struct in6_pktinfo)) +                   \
	 CMSG_SPACE(sizeof(int)))

struct udp_rx {
	struct mmsghdr msgs[UDP_BATCH];
	struct iovec iov[UDP_BATCH];
	struct wg_endpoint from[UDP_BATCH];
	size_t seg_size[UDP_BATCH];
	union {
		char buf[UDP_RX_CTRL];
		struct cmsghdr align;
	} ctrl[UDP_BATCH];
	uint8_t *bufs; /* UDP_BATCH * UDP_RX_BUF */
	uint64_t truncated;
	uint64_t gro_msgs; /* buffers that held more than one datagram */
};
int udp_rx_init(struct udp_rx *rx) SG_WUR;
void udp_rx_free(struct udp_rx *rx);
/* Receives up to UDP_BATCH buffers. Returns how many (0 if none waiting) or a negative errno.
 * Buffer i is udp_rx_buf(rx, i), rx->msgs[i].msg_len bytes long, from rx->from[i] (IPv4-mapped
 * sources already turned into AF_INET; has_src and src4/src6 say which local address it was sent
 * to, when the kernel told); it holds datagrams of rx->seg_size[i] bytes each, the
 * last one possibly shorter (just one unless the kernel coalesced them with UDP GRO).
 * Truncated buffers are skipped (length 0). */
int udp_recv_batch(struct udp_sock *u, struct udp_rx *rx) SG_WUR;
uint8_t *udp_rx_buf(struct udp_rx *rx, int i);

struct udp_tx_slot {
	size_t off, len; /* the datagram in the arena */
	union wg_sockaddr dst;
	socklen_t dst_len;
	/* The source to send from: 0 (the kernel picks), IPPROTO_IP (src.v4 as IP_PKTINFO) or
	 * IPPROTO_IPV6 (src.v6 as IPV6_PKTINFO). The union is zeroed first, so bytes compare. */
	int src_level;
	union {
		struct in_pktinfo v4;
		struct in6_pktinfo v6;
	} src;
	uint8_t ttl; /* the outer TTL / hop limit, 0 = the socket's default */
};

struct udp_tx {
	struct udp_tx_slot slots[UDP_TX_SLOTS];
	/* Built at flush: one message per datagram, or per run of datagrams with GSO. */
	struct mmsghdr msgs[UDP_TX_SLOTS];
	struct iovec iov[UDP_TX_SLOTS];
	unsigned msg_segs[UDP_TX_SLOTS];
	union {
		char buf[UDP_TX_CTRL];
		struct cmsghdr align;
	} ctrl[UDP_TX_SLOTS];
	uint8_t *arena;
	size_t used;
	unsigned count;
	/* Counters. */
	uint64_t sent, failed;
	uint64_t gso_msgs;  /* messages sent with UDP_SEGMENT */
	uint64_t stale_src; /* messages sent again without their source (address gone) */
	int last_error;	    /* last negative errno of a failed datagram */
	int gso_error;	    /* what turned GSO off (0: nothing); the caller resets it */
};
int udp_tx_init(struct udp_tx *tx) SG_WUR;
void udp_tx_free(struct udp_tx *tx);
/* Queues a copy of the datagram for `to` (from to's source address if it has one), flushing
 * first when the queue is full. `ttl` non-zero sets the datagram's TTL / hop limit (IP_TTL or
 * IPV6_HOPLIMIT, wg.h's routing-loop bound). A datagram the socket's family cannot reach is
 * counted as failed. */
void udp_tx_queue(struct udp_sock *u, struct udp_tx *tx, const struct wg_endpoint *to,
		  const uint8_t *buf, size_t len, uint8_t ttl);
/* Sends the queue. Datagrams that fail (unreachable, buffer full) are dropped and counted, as
 * UDP may drop them anyway; the protocol retransmits what matters. */
void udp_tx_flush(struct udp_sock *u, struct udp_tx *tx);

#endif
