/* Linux TUN device: layer-3 packets, no packet-information header (IFF_TUN | IFF_NO_PI), as
 * wireguard-go creates it. The interface lives as long as the fd (not persistent), so closing the
 * fd removes it.
 *
 * With offloads (IFF_VNET_HDR and TUNSETOFFLOAD: checksum, TSO4/6 and, where the kernel has it,
 * USO4/6) every read and write starts with a struct virtio_net_hdr, reads can be GSO
 * super-packets of up to 64 KiB and carry partial checksums: see net/offload.h for what to do
 * with them. Without (asked for, or the kernel refuses), reads and writes are plain packets. */
#ifndef SG_NET_TUN_H
#define SG_NET_TUN_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/compiler.h"

/* wireguard-go's DefaultMTU: 1500 minus the largest outer overhead (IPv6 40 + UDP 8 + WG 32). */
#define TUN_DEFAULT_MTU 1420

struct tun {
	int fd;
	int prio_fd; /* the priority queue (tun_open), -1 without one */
	int ifindex;
	char name[IF_NAMESIZE];
	bool vnet_hdr;	   /* reads and writes start with a virtio_net_hdr */
	unsigned offloads; /* TUN_F_* flags the kernel accepted (0 without vnet_hdr) */
};

/* sizeof(struct virtio_net_hdr), and the largest read: that header and a 64 KiB packet. */
#define TUN_VNET_HDR_LEN 10
#define TUN_READ_MAX	 (TUN_VNET_HDR_LEN + 65535)

/* True if name can be an interface name and a socket file name: 1..15 bytes, no '/', ':', '%'
 * or white space, not "." or "..". */
bool tun_name_valid(const char *name);

/* Creates the TUN interface `name` (non-blocking fd, close-on-exec) and sets its MTU. With
 * `offload`, asks for a virtio_net_hdr and the offloads; if the kernel refuses TUNSETOFFLOAD the
 * interface is made again without them (t->vnet_hdr says which it got).
 *
 * With `prio`, the interface gets two queues where the kernel allows it (IFF_MULTI_QUEUE and
 * an eBPF steering program, TUNSETSTEERINGEBPF, which needs CAP_BPF or CAP_SYS_ADMIN): packets
 * that are not part of a bulk transfer (the rule at tun_prio_prog_load) go to the second,
 * t->prio_fd, which the caller reads first; the rest to t->fd. Each queue is a FIFO ring in
 * the kernel, so a ping or a TCP ACK no longer waits behind the TCP super-packets queued before
 * it. Without (another kernel, no privilege), t->prio_fd is -1 and everything comes through
 * t->fd, in order.
 * 0 or a negative errno; *why names the step that failed. */
int tun_open(struct tun *t, const char *name, unsigned mtu, bool offload, bool prio,
	     const char **why) SG_WUR;
/* Takes a TUN fd someone else opened (an app's, Android's VpnService): works on a duplicate
 * (close-on-exec, made non-blocking: the flag is shared with the caller's fd), which tun_close
 * closes; the caller keeps and closes its own. The fd must be IFF_TUN | IFF_NO_PI; with
 * IFF_VNET_HDR its reads and writes carry the header. The MTU is left as the opener set it.
 * 0 or a negative errno; *why names the step that failed. */
int tun_adopt(struct tun *t, int fd, const char **why) SG_WUR;
void tun_close(struct tun *t);

/* True while the fd is still attached to its interface (TUNGETIFF does not fail with EBADFD).
 * This tells a deleted interface from one moved to another network namespace: both send
 * RTM_DELLINK here, but only deletion detaches the fd (a moved one keeps working, as it does
 * for wireguard-go). */
bool tun_attached(const struct tun *t);

/* Whether the interface is administratively up (IFF_UP, SIOCGIFFLAGS by name in the caller's
 * network namespace): 1, 0, or a negative errno. */
int tun_is_up(const struct tun *t) SG_WUR;

/* Sets the interface MTU with SIOCSIFMTU. 0 or a negative errno. */
int tun_set_mtu(const char *name, unsigned mtu) SG_WUR;

/* One packet (with t->vnet_hdr: the virtio_net_hdr and the packet): its length, -EAGAIN when
 * none is waiting, or another negative errno (-EBADFD or -EIO once the interface is gone). */
ssize_t tun_read(struct tun *t, uint8_t *buf, size_t size);
/* The same from the priority queue (t->prio_fd, which must be open). */
ssize_t tun_read_prio(struct tun *t, uint8_t *buf, size_t size);

/* The priority queue's rule, which the steering program applies to each packet the kernel
 * sends into the interface (it returns the queue): 1 (priority) for ICMP and ICMPv6, DNS (UDP
 * from or to port 53), and TCP segments without payload and without SYN, FIN or RST (pure ACKs
 * and window updates);
 * 0 (bulk) for everything else: TCP with data, other UDP, IPv4 fragments, IPv6 with extension
 * headers, anything unparsed. Within a flow nothing is reordered but a pure ACK passing the
 * flow's own data in the same direction, which TCP takes as it takes a reordered ACK.
 *
 * Loads the steering program (BPF_PROG_TYPE_SOCKET_FILTER, run by the kernel on the IP packet):
 * a program fd, or a negative errno. Exposed for the unit test, which runs it on packets
 * (BPF_PROG_TEST_RUN). */
int tun_prio_prog_load(void) SG_WUR;
/* Writes one complete packet (with t->vnet_hdr, behind an all-zero virtio_net_hdr): 0 or a
 * negative errno. */
int tun_write(struct tun *t, const uint8_t *pkt, size_t len);
/* Writes a virtio_net_hdr (TUN_VNET_HDR_LEN bytes) and a packet; only with t->vnet_hdr.
 * 0 or a negative errno. */
int tun_write_vnet(struct tun *t, const uint8_t *hdr, const uint8_t *pkt, size_t len);

#endif
