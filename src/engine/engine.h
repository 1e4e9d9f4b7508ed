/* The engine: the I/O shell (src/net) wired to the WireGuard core (src/wg). secureguardd is a
 * thin main() over it, and libsecureguard (src/lib, include/secureguard/sg.h) wraps it for apps;
 * there is no other copy (ARCHITECTURE.md, "One of each").
 *
 * One thread runs the loop (engine_run), one epoll set: the packet source (a TUN device the
 * engine creates, a TUN fd handed in, or packets an app writes with engine_packet_write), the UDP
 * socket (datagrams to decrypt), a timerfd armed at wg_device_next_deadline(), an eventfd that
 * wakes the loop for work from other threads (engine_call, engine_stop, written packets), and,
 * as the options ask: a signalfd (INT/TERM/HUP stop, USR1 logs counters), an rtnetlink socket
 * (our interface deleted, moved, up/down, MTU), inotify on the socket directory (our socket
 * file deleted or replaced), the UAPI listening socket and its connections. The AEAD work of
 * each batch is spread over the crypto lanes (cpool.h); the TLS transport (tlsmgr.h) and the
 * routing watcher (routing.h) run on the same loop.
 *
 * Thread-safety: engine_init, engine_run and engine_free belong to one owner thread at a time;
 * engine_stop, engine_call, engine_packet_write and engine_uapi may be called from any thread.
 */
#ifndef SG_ENGINE_ENGINE_H
#define SG_ENGINE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"
#include "net/evloop.h"
#include "wg/wg.h"

/* Where inner packets come from and go to. */
enum engine_packet_io {
	ENGINE_TUN_CREATE = 0, /* a TUN interface named opts.ifname, created (and removed) here */
	ENGINE_TUN_FD,	       /* a TUN fd the caller opened (Android's VpnService, Linux) */
	ENGINE_PACKETS,	       /* packets through hooks.deliver and engine_packet_write */
};

struct engine_hooks {
	void *ctx;
	/* ENGINE_PACKETS: one decrypted packet (loop thread). */
	void (*deliver)(void *ctx, const uint8_t *pkt, size_t len);
	/* A core event, after the engine has logged it and acted on it (loop thread). */
	void (*event)(void *ctx, const struct wg_event *ev);
	/* Called with every outer socket (UDP, TLS client connections) before it is used, e.g.
	 * Android's VpnService.protect(); false: the socket is not used. */
	bool (*protect)(void *ctx, int fd);
};

struct engine_opts {
	enum engine_packet_io io;
	const char *ifname; /* ENGINE_TUN_CREATE: the interface; otherwise a name for logs */
	int tun_fd;	    /* ENGINE_TUN_FD: duplicated, the caller keeps (and closes) its own */
	unsigned mtu;	    /* TUN_DEFAULT_MTU if 0 */
	bool ctlsock;	      /* a UAPI control socket named after ifname */
	const char *sock_dir; /* CTLSOCK_DIR if NULL */
	bool signals;	      /* INT/TERM/HUP/USR1 from a signalfd (the caller blocks them) */
	bool link_monitor;    /* follow the TUN interface with rtnetlink (TUN modes) */
	bool no_offload;      /* no TUN offloads, UDP GSO or GRO (SG_DISABLE_OFFLOAD=1) */
	bool fips_strict;     /* --fips-strict: checked by main; reported by the UAPI */
	unsigned lanes;	      /* crypto lanes; 0: cpool_default_lanes */
	/* Bytes of packets worked through per source (TUN reads, received datagrams) per loop
	 * turn before the other sources get theirs; 0: the default, 128 KiB (engine.c). */
	size_t turn_bytes;
	struct engine_hooks hooks;
};

struct engine;

/* Creates the packet source, the control socket if asked, the device and the outer socket.
 * 0 or a negative errno with *why saying what failed. */
int engine_init(struct engine **out, const struct engine_opts *opts, const char **why) SG_WUR;
/* Runs the loop on the calling thread until a stop (engine_stop, a stop signal, the interface's
 * or the socket's removal, or a fatal error). Returns the process exit status: 0 for a
 * requested or expected stop, 1 for an error. May be called again after it returned. */
int engine_run(struct engine *e);
/* Logs `stopping` with the counters, closes everything, removes the socket file and frees the
 * device, wiping every key. Not while engine_run runs. NULL is a no-op. */
void engine_free(struct engine *e);

/* Any thread (also from a hook): asks the loop to stop; engine_run returns after its turn.
 * reason is a static string for the log. */
void engine_stop(struct engine *e, const char *reason);
/* Any thread: runs fn(e, arg) on the loop thread between two turns and returns when it has
 * run. Inline when called from the loop thread or while no loop runs. */
void engine_call(struct engine *e, void (*fn)(struct engine *e, void *arg), void *arg);
/* ENGINE_PACKETS, any thread: queues one outbound IP packet (at most the MTU) for encryption.
 * 0, SG_EFULL when the queue is full (back-pressure: try again after a turn), SG_ERANGE when
 * larger than the MTU, SG_EINVAL in another mode. */
int engine_packet_write(struct engine *e, const uint8_t *pkt, size_t len) SG_WUR;
/* Any thread: one UAPI exchange ("get=1\n\n" or "set=1\n...\n\n") as over the control socket;
 * *reply is a malloc'd NUL-terminated answer ending in "errno=N\n\n" that may hold keys (wipe
 * it). 0 or a negative errno (-ENOMEM). */
int engine_uapi(struct engine *e, const char *req, size_t len, char **reply,
		size_t *reply_len) SG_WUR;

/* Logs every counter (device drops, TUN and UDP) at INFO as event `event`. Loop thread. */
void engine_log_stats(struct engine *e, const char *event);
const char *engine_ifname(const struct engine *e);
/* Loop thread (or through engine_call). */
uint16_t engine_listen_port(const struct engine *e);
struct wg_device *engine_device(struct engine *e);
struct evloop *engine_loop(struct engine *e);
unsigned engine_mtu(const struct engine *e);

/* Data-path counters of the engine itself (the core has its own, wg_device_get_stats). */
struct engine_stats {
	uint64_t tun_rx, tun_tx, tun_tx_errors, udp_rx, udp_tx, udp_tx_failed;
	uint64_t packets_queued, packets_queue_full;
	/* Turns that went on with a received batch an earlier turn's budget left. */
	uint64_t udp_rx_resumed;
};
/* Loop thread (or through engine_call). */
void engine_get_stats(const struct engine *e, struct engine_stats *out);

#endif
