/* rtnetlink route requests and answers: how secureguardd asks the kernel's routing what the
 * kernel module learns from its own route lookups. Two questions:
 *   - which interface the datagrams to a peer leave through (RTM_GETROUTE for the peer's address,
 *     from its sticky source, with our fwmark and ports): a sticky source is dropped when it is
 *     another interface than the one the peer's packets arrive on, as the kernel's send4/send6
 *     do after a route change invalidates their dst_cache;
 *   - which routes through the TUN interface carry an MTU of their own (a dump of the routes
 *     whose output interface is ours): the kernel pads each packet to its route's MTU.
 * Request builders and a bounded answer parser (fuzzed), plus the socket; no state. */
#ifndef SG_NET_ROUTE_H
#define SG_NET_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"

/* Room for the largest request built here. */
#define ROUTE_REQ_MAX 128
/* A receive buffer this large never truncates an rtnetlink answer (the kernel caps its dump
 * messages at 32 KiB). */
#define ROUTE_RECV_BUF 32768

/* A non-blocking NETLINK_ROUTE socket for requests (no multicast groups), with strict checking
 * of dump requests where the kernel has it (so a dump filtered by interface is filtered by the
 * kernel). Returns the fd or a negative errno. */
int route_sock_open(void) SG_WUR;

/* RTM_GETROUTE dump of the routes of `family` (AF_INET or AF_INET6) in every table whose output
 * interface is `oif`. Returns the request's length, 0 if `size` is too small. */
size_t route_dump_request(uint8_t *buf, size_t size, uint32_t seq, int family, int oif);

/* RTM_GETROUTE for one destination, as a datagram of ours would be routed: from `src` (NULL:
 * any), with SO_MARK `mark` (0: none), UDP from `sport` to `dport` (host order, 0: leave out).
 * Addresses are 4 bytes for AF_INET, 16 for AF_INET6. Returns the length, 0 if too small. */
size_t route_get_request(uint8_t *buf, size_t size, uint32_t seq, int family, const uint8_t *dst,
			 const uint8_t *src, uint32_t mark, uint16_t sport, uint16_t dport);

/* One message of an answer. */
struct route_msg {
	enum { ROUTE_MSG_ROUTE, ROUTE_MSG_DONE, ROUTE_MSG_ERROR } kind;
	uint32_t seq;
	int error;	  /* ROUTE_MSG_ERROR: a negative errno, or 0 for an acknowledgement */
	int family;	  /* ROUTE_MSG_ROUTE: AF_INET or AF_INET6 */
	uint8_t dst[16];  /* the destination prefix (zeros: a default route) */
	uint8_t dst_len;  /* its length in bits */
	uint8_t type;	  /* RTN_UNICAST, RTN_LOCAL, ... */
	uint32_t oif;	  /* RTA_OIF, or the first hop's interface of a multipath route; 0: none */
	bool via_ifindex; /* the `ifindex` given to route_parse is the output or one of the hops */
	uint32_t mtu;	  /* RTAX_MTU of RTA_METRICS, 0 if none */
	bool cloned;	  /* RTM_F_CLONED: a cached exception, not a route of the table */
};

/* Parses the payload of one RTM_NEWROUTE / RTM_DELROUTE message (struct rtmsg and its
 * attributes) into *m, which is cleared first; `ifindex` > 0 sets via_ifindex. False if it is
 * malformed or of another family than IPv4/IPv6. */
bool route_msg_parse(const uint8_t *p, size_t len, int ifindex, struct route_msg *m) SG_WUR;

/* Parses a buffer of rtnetlink messages (one recv), calling `cb` for each route, end of dump
 * and error message; other types are skipped. Stops at the first malformed message and returns
 * SG_EPARSE, else 0. */
int route_parse(const uint8_t *buf, size_t len, int ifindex,
		void (*cb)(void *ctx, const struct route_msg *m), void *ctx) SG_WUR;

#endif
