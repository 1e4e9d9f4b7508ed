/* secureguardd's event loop: wires the I/O shell (src/net) to the WireGuard core (src/wg).
 *
 * One thread, one epoll set: the TUN fd (packets to encrypt), the UDP socket (datagrams to
 * decrypt), a timerfd armed at wg_device_next_deadline(), a signalfd (INT/TERM/HUP stop, USR1
 * logs counters), an rtnetlink socket (our interface deleted), inotify on the socket directory
 * (our socket file deleted or replaced), the UAPI listening socket and its connections.
 */
#ifndef SG_DAEMON_DAEMON_H
#define SG_DAEMON_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

#include "common/compiler.h"

struct daemon_opts {
	const char *ifname;
	unsigned mtu;	      /* TUN MTU, TUN_DEFAULT_MTU if 0 */
	const char *sock_dir; /* CTLSOCK_DIR if NULL */
	bool no_offload;      /* no TUN offloads, UDP GSO or GRO (SG_DISABLE_OFFLOAD=1) */
	bool fips_strict;     /* --fips-strict: checked by main; reported by the UAPI */
};

struct daemon_ctx;

/* Creates the TUN interface, the control socket, the device and the outer socket.
 * 0 or a negative errno with *why saying what failed. Signals INT, TERM, HUP and USR1 must be
 * blocked by the caller (they are read from a signalfd). */
int daemon_init(struct daemon_ctx **out, const struct daemon_opts *opts, const char **why) SG_WUR;
/* Runs until a stop signal, the interface's or the socket's removal, or a fatal error.
 * Returns the process exit status: 0 for a requested or expected stop, 1 for an error. */
int daemon_run(struct daemon_ctx *d);
/* Logs `stopping` with the counters, closes everything, removes the socket file and frees the
 * device, wiping every key. NULL is a no-op. */
void daemon_free(struct daemon_ctx *d);

/* Logs every counter (device drops, TUN and UDP) at INFO as event `event`. */
void daemon_log_stats(struct daemon_ctx *d, const char *event);
const char *daemon_ifname(const struct daemon_ctx *d);
uint16_t daemon_listen_port(const struct daemon_ctx *d);

#endif
