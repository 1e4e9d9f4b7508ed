/* secureguardd's view of the host's routing, kept as the kernel module keeps its own (it looks
 * routes up for every packet, with a cache that route changes invalidate); here without a system
 * call per packet:
 *
 *   - Sticky sources (docs/DATAPATH.md): when routing may have changed (the link monitor saw a
 *     route, address or link change) and whenever a peer's endpoint or its source changes, the
 *     route to the peer is asked of the kernel (RTM_GETROUTE from the sticky source, with our
 *     fwmark and ports). If it leaves through another interface than the one the peer's packets
 *     arrive on, or the kernel refuses the source, the core stops using that source and routing
 *     picks one (wg_peer_set_source_usable), as the kernel's send4/send6 drop src_if4/src_if6.
 *     At most ROUTING_WINDOW questions are in flight; the answers come back on the event loop.
 *   - Route MTUs: when a route through the TUN interface (or the interface) changes, the routes
 *     whose output is the interface are dumped (both families, every table) and those with an
 *     MTU of their own go to the core (wg_device_set_route_mtus), which pads to them.
 *
 * Control plane only: the data path reads nothing here. */
#ifndef SG_ENGINE_ROUTING_H
#define SG_ENGINE_ROUTING_H

#include <stdbool.h>
#include <stdint.h>

#include "common/compiler.h"
#include "net/evloop.h"
#include "wg/wg.h"

struct routing;

struct routing_stats {
	uint64_t queries;	   /* route questions asked about peers */
	uint64_t sources_dropped;  /* sticky sources the core was told not to use */
	uint64_t sources_restored; /* ... and told to use again */
	uint64_t mtu_reloads;	   /* route MTU dumps completed */
	uint64_t errors;	   /* failed sends and lost answers */
};

/* Opens the request socket and starts with a load of the route MTUs. 0 or a negative errno. */
int routing_new(struct routing **out, struct evloop *loop, struct wg_device *dev,
		int ifindex) SG_WUR;
void routing_free(struct routing *r);

/* What the link monitor saw (linkmon_event's routing_changed / own_routes_changed); `lost`:
 * notifications were lost (ENOBUFS), so both. */
void routing_changed(struct routing *r, bool any, bool own);
/* The core's WG_EVENT_SOURCE_CHANGED for this peer (from inside an upcall: only queued here). */
void routing_peer_changed(struct routing *r, struct wg_peer *peer);
/* The core's peer_removed upcall. */
void routing_peer_removed(struct routing *r, struct wg_peer *peer);
/* The UDP socket's fwmark and port, which the route questions carry. A new fwmark can change
 * every answer. */
void routing_set_socket(struct routing *r, uint32_t fwmark, uint16_t port);
/* The TUN interface's index here, 0 once it has left for another namespace (its routes there
 * are not seen: no route MTUs). */
void routing_set_ifindex(struct routing *r, int ifindex);
/* Sends what is due; call once per loop turn, after the core's work of the turn. */
void routing_run(struct routing *r, uint64_t now);
/* True when the last routing_run stopped a round early to keep the turn short (it looks at
 * ROUTING_SKIP_PER_TURN peers at the most): the loop should come back at once. */
bool routing_wants_turn(const struct routing *r);
void routing_get_stats(const struct routing *r, struct routing_stats *out);

#endif
