/* The outer UDP socket: one dual-stack IPv6 socket (IPV6_V6ONLY off) bound to the listen port,
 * so IPv4 peers arrive as ::ffff:a.b.c.d and are handed to the core as AF_INET endpoints; an
 * AF_INET socket when the kernel has no IPv6. Datagrams are received with recvmmsg and sent with
 * sendmmsg from a queue the core's send upcall fills (STYLE.md habit 7: no syscall per packet
 * where a batch will do).
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
/* Send queue: up to UDP_TX_SLOTS datagrams or UDP_TX_ARENA bytes before a flush. */
#define UDP_TX_SLOTS 64
#define UDP_TX_ARENA (256u * 1024u)
/* Socket buffers asked for (wireguard-go asks 7 MiB; the kernel caps SO_RCVBUF by rmem_max
 * unless we hold CAP_NET_ADMIN for SO_RCVBUFFORCE). */
#define UDP_SOCKBUF (4 << 20)

struct udp_sock {
	int fd; /* -1 when closed */
	int family;
	uint16_t port; /* the bound port */
	uint32_t fwmark;
};

/* Opens and binds a socket on `port` (0 = any free port) with SO_MARK `fwmark` (0 = none).
 * On failure u->fd is -1 and *why names the step. 0 or a negative errno. */
int udp_open(struct udp_sock *u, uint16_t port, uint32_t fwmark, const char **why) SG_WUR;
void udp_close(struct udp_sock *u);
/* Sets SO_MARK (needs CAP_NET_ADMIN). 0 or a negative errno. */
int udp_set_fwmark(struct udp_sock *u, uint32_t mark) SG_WUR;

struct udp_rx {
	struct mmsghdr msgs[UDP_BATCH];
	struct iovec iov[UDP_BATCH];
	struct wg_endpoint from[UDP_BATCH];
	uint8_t *bufs; /* UDP_BATCH * UDP_RX_BUF */
	uint64_t truncated;
};
int udp_rx_init(struct udp_rx *rx) SG_WUR;
void udp_rx_free(struct udp_rx *rx);
/* Receives up to UDP_BATCH datagrams. Returns how many (0 if none waiting) or a negative errno.
 * Datagram i is udp_rx_buf(rx, i), rx->msgs[i].msg_len bytes long, from rx->from[i] (IPv4-mapped
 * sources already turned into AF_INET). Truncated datagrams are skipped (length 0). */
int udp_recv_batch(struct udp_sock *u, struct udp_rx *rx) SG_WUR;
uint8_t *udp_rx_buf(struct udp_rx *rx, int i);

struct udp_tx {
	struct mmsghdr msgs[UDP_TX_SLOTS];
	struct iovec iov[UDP_TX_SLOTS];
	union wg_sockaddr dst[UDP_TX_SLOTS];
	uint8_t *arena;
	size_t used;
	unsigned count;
	/* Counters. */
	uint64_t sent, failed;
	int last_error; /* last negative errno of a failed datagram */
};
int udp_tx_init(struct udp_tx *tx) SG_WUR;
void udp_tx_free(struct udp_tx *tx);
/* Queues a copy of the datagram for `to`, flushing first when the queue is full. A datagram the
 * socket's family cannot reach is counted as failed. */
void udp_tx_queue(struct udp_sock *u, struct udp_tx *tx, const struct wg_endpoint *to,
		  const uint8_t *buf, size_t len);
/* Sends the queue. Datagrams that fail (unreachable, buffer full) are dropped and counted, as
 * UDP may drop them anyway; the protocol retransmits what matters. */
void udp_tx_flush(struct udp_sock *u, struct udp_tx *tx);

#endif
