/* The TLS transport inside secureguardd (docs/TLS.md): a listener for peers that reach us over
 * TLS, client connections to peers configured with Transport = tls or auto, and the choice
 * between UDP and TLS per peer. The protocol core sees a TLS connection as an endpoint with a
 * non-zero tls_conn id; this module maps ids to connections.
 *
 * Transport per peer:
 *   udp   (default) WireGuard over UDP only
 *   tls   always over a TLS connection to the peer's TlsEndpoint
 *   auto  UDP first; after TLSMGR_UDP_ATTEMPTS handshake initiations over UDP without a completed
 *         handshake, over TLS; while on TLS, every probe interval one initiation goes out over
 *         UDP, and when the peer answers there the tunnel moves back to UDP (roaming does it)
 *         and the TLS connection is closed. Both moves are logged (event=transport_switch).
 *
 * Everything runs in the daemon's one thread on its epoll loop.
 */
#ifndef SG_ENGINE_TLSMGR_H
#define SG_ENGINE_TLSMGR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"
#include "net/evloop.h"
#include "wg/wg.h"

/* Handshake initiations over UDP without an answer before `auto` moves to TLS (the first and two
 * retries: about 10 s). */
#define TLSMGR_UDP_ATTEMPTS 3
/* How often an `auto` peer on TLS probes UDP again (SG_TLS_PROBE_SECS overrides it). */
#define TLSMGR_PROBE_SECS 60
/* Reconnect backoff of a client connection: 1, 2, 4 ... up to this many seconds. */
#define TLSMGR_BACKOFF_MAX_SECS 30

struct tlsmgr;

int tlsmgr_new(struct tlsmgr **out, struct evloop *loop, struct wg_device *dev) SG_WUR;
/* Where received datagrams go. Without it each goes to wg_device_receive, copied, as it is taken
 * from its TLS record. With it, rx gets each datagram in place in the connection's receive
 * buffer (it may change it there: the core decrypts in place), and rx_done comes when the
 * datagrams of one read are done with, before that memory is reused: the daemon prepares them
 * as a batch and opens them on its crypto lanes at rx_done, as the datagrams of one recvmmsg. */
struct tlsmgr_rx_hooks {
	void *ctx;
	void (*rx)(void *ctx, const struct wg_endpoint *from, uint8_t *buf, size_t len);
	void (*rx_done)(void *ctx);
};
/* Right after tlsmgr_new, before any connection (they copy the callbacks they are made with). */
void tlsmgr_set_rx(struct tlsmgr *m, const struct tlsmgr_rx_hooks *hooks);
/* Every client connection's socket goes through fn before it connects (engine.h, protect). */
void tlsmgr_set_protect(struct tlsmgr *m, bool (*fn)(void *ctx, int fd), void *ctx);
/* Closes every connection and the listener; forgets every peer's transport state. */
void tlsmgr_free(struct tlsmgr *m);

/* The UAPI's transport keys and hooks (net/uapi.h: transport_set, transport_get, set_done). */
int tlsmgr_set(struct tlsmgr *m, struct wg_peer *peer, const char *key, const char *value,
	       char *why, size_t whylen) SG_WUR;
void tlsmgr_get(struct tlsmgr *m, struct wg_peer *peer,
		void (*emit)(void *ectx, const char *key, const char *value), void *ectx);
int tlsmgr_apply(struct tlsmgr *m, char *why, size_t whylen) SG_WUR;

/* Sends a datagram the core addressed to a TLS endpoint (to->tls_conn != 0). A connection that
 * is gone or full drops it (counted), as UDP would. */
void tlsmgr_send(struct tlsmgr *m, const struct wg_endpoint *to, const uint8_t *buf, size_t len);
/* Writes what tlsmgr_send queued (it writes only whole TLS records itself). The daemon calls it
 * at the end of every loop turn, beside the UDP flush, so the datagrams of a batch share TLS
 * records and writes, and none waits longer than its turn. */
void tlsmgr_flush(struct tlsmgr *m);
/* Core events the transport choice follows (handshake initiated / complete). */
void tlsmgr_event(struct tlsmgr *m, const struct wg_event *ev);
/* A peer is about to be removed from the device (drops its client connection). The daemon
 * calls it for every peer before wg_device_remove_peer through the UAPI's remove hook; peers
 * removed otherwise are noticed lazily. */
void tlsmgr_forget_peer(struct tlsmgr *m, struct wg_peer *peer);

#endif
