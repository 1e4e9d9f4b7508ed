/* rtnetlink monitor: tells the daemon when its TUN interface is deleted (RTM_DELLINK for its
 * ifindex), renamed, moved to another network namespace, or goes up/down, and when routing
 * changes: a route or an address anywhere (the route to a peer may now leave through another
 * interface, which decides whether its sticky source still fits), or a route through the TUN
 * interface (whose MTU bounds padding).
 *
 * A moved interface stays in sight: the socket listens to every namespace the kernel has an id
 * for in ours (NETLINK_LISTEN_ALL_NSID), the RTM_DELLINK of the move names the id and the new
 * index (IFLA_NEW_NETNSID, IFLA_NEW_IFINDEX), and that namespace's link messages then come with
 * the id. Only link messages about our interface are taken from another namespace: its routes
 * and addresses are not the daemon's socket's.
 *
 * The message parser is bounded and separate from the socket so it can be fuzzed. */
#ifndef SG_NET_NETLINK_H
#define SG_NET_NETLINK_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"

/* Where our interface is, as the monitor's socket sees it. */
#define LINKMON_OWN_NS (-1) /* the socket's own namespace */
struct linkmon_link {
	int ifindex;
	int nsid; /* LINKMON_OWN_NS, or the id of the namespace it moved to */
	const char *name;
};

struct linkmon_event {
	bool deleted; /* RTM_DELLINK for our index */
	bool moved;   /* ... naming the namespace it went to: new_nsid, new_ifindex */
	int new_nsid; /* -1 when it moved on from a namespace whose ids are not ours */
	int new_ifindex;
	bool seen;    /* any RTM_NEWLINK for our index */
	bool up;      /* IFF_UP in the last RTM_NEWLINK seen */
	bool renamed; /* IFLA_IFNAME differs from the name we know */
	char name[IF_NAMESIZE];
	unsigned mtu; /* IFLA_MTU of the last RTM_NEWLINK, 0 if absent */
	/* A route or address changed anywhere, or a link other than ours changed (its routes go
	 * with it, silently for IPv4): where datagrams to the peers leave may have changed. */
	bool routing_changed;
	/* A route through our interface, an address on it, or the interface itself changed: the
	 * MTUs of routes through it may have. */
	bool own_routes_changed;
};

/* One message of a buffer of netlink messages. */
struct netlink_msg {
	uint16_t type;
	uint32_t seq;
	const uint8_t *payload; /* after the header */
	size_t len;		/* of the payload */
};
/* Steps through a buffer of netlink messages (*buf and *len advance): 1 with *m filled while
 * there is one, 0 at the end, SG_EPARSE when a length is inconsistent (nothing more is read). */
int netlink_next(const uint8_t **buf, size_t *len, struct netlink_msg *m) SG_WUR;

/* A non-blocking, close-on-exec NETLINK_ROUTE socket bound to the multicast `groups`
 * (RTMGRP_*, 0 for none), or a negative errno. */
int netlink_route_socket(uint32_t groups) SG_WUR;

/* A non-blocking NETLINK_ROUTE socket subscribed to link, IPv4/IPv6 address and IPv4/IPv6
 * route notifications, or a negative errno. *all_nsid says whether it also hears the link
 * messages of other namespaces (NETLINK_LISTEN_ALL_NSID needs CAP_NET_BROADCAST: open it before
 * dropping privileges). */
int linkmon_open(bool *all_nsid) SG_WUR;

/* Parses one buffer of netlink messages that came from namespace `from_nsid` (LINKMON_OWN_NS:
 * the socket's) for events about `link`, merging them into *ev. Malformed messages end the
 * parse. Returns 0 or SG_EPARSE. */
int linkmon_parse(const uint8_t *buf, size_t len, int from_nsid, const struct linkmon_link *link,
		  struct linkmon_event *ev) SG_WUR;

/* Reads everything waiting on the socket into *ev. Returns 0, or -ENOBUFS when the kernel
 * dropped messages (the caller must then check the interface itself), or another negative
 * errno. */
int linkmon_read(int fd, const struct linkmon_link *link, struct linkmon_event *ev) SG_WUR;

#endif
