/* Linux TUN device: layer-3 packets, no packet-information header (IFF_TUN | IFF_NO_PI), as
 * wireguard-go creates it. The interface lives as long as the fd (not persistent), so closing the
 * fd removes it. */
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
	int ifindex;
	char name[IF_NAMESIZE];
};

/* True if name can be an interface name and a socket file name: 1..15 bytes, no '/', ':', '%'
 * or white space, not "." or "..". */
bool tun_name_valid(const char *name);

/* Creates the TUN interface `name` (non-blocking fd, close-on-exec) and sets its MTU.
 * 0 or a negative errno; *why names the step that failed. */
int tun_open(struct tun *t, const char *name, unsigned mtu, const char **why) SG_WUR;
void tun_close(struct tun *t);

/* Sets the interface MTU with SIOCSIFMTU. 0 or a negative errno. */
int tun_set_mtu(const char *name, unsigned mtu) SG_WUR;

/* One packet: its length, -EAGAIN when none is waiting, or another negative errno (-EBADFD or
 * -EIO once the interface is gone). */
ssize_t tun_read(struct tun *t, uint8_t *buf, size_t size);
/* Writes one packet: 0 or a negative errno. */
int tun_write(struct tun *t, const uint8_t *pkt, size_t len);

#endif
