/* Fuzz target for the rtnetlink parsers (src/net/netlink.c, src/net/route.c): the input is one
 * buffer of netlink messages as a recv on a NETLINK_ROUTE socket returns it, after a first byte
 * that picks the namespaces involved, parsed both as the link monitor's notifications and as
 * answers to route requests. Neither may read outside the buffer (the replay copies it to an
 * exact-size allocation, so ASan sees it); what they report must be consistent: routes of a
 * known family with a prefix no longer than its addresses, no routing change from another
 * namespace, a move followed only from the socket's own. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <secureguard/sg_errors.h>

#include "net/netlink.h"
#include "net/route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define IFINDEX 7

static void check(void *ctx, const struct route_msg *m)
{
	(void)ctx;
	if (m->kind == ROUTE_MSG_ROUTE) {
		if (m->family != AF_INET && m->family != AF_INET6)
			abort();
		if (m->dst_len > (m->family == AF_INET ? 32 : 128))
			abort();
	} else if (m->kind == ROUTE_MSG_ERROR) {
		if (m->error > 0)
			abort();
	} else if (m->kind != ROUTE_MSG_DONE) {
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct linkmon_event ev;
	memset(&ev, 0, sizeof(ev));
	/* The first byte picks where the messages come from and where our link is: our own
	 * namespace or another one with id 0 or 1 (a moved interface). */
	if (size < 1)
		return 0;
	struct linkmon_link link = {IFINDEX, (data[0] & 3) == 3 ? 1 : (data[0] & 3) - 1, "wg0"};
	int from = ((data[0] >> 2) & 3) == 3 ? 1 : ((data[0] >> 2) & 3) - 1;
	data++;
	size--;
	int r = linkmon_parse(data, size, from, &link, &ev);
	if (r != 0 && r != SG_EPARSE)
		abort();
	if (ev.name[IF_NAMESIZE - 1] != '\0')
		abort();
	if (ev.seen && link.nsid == LINKMON_OWN_NS && !ev.own_routes_changed)
		abort(); /* an event of ours here is one of our routes' too */
	if (from != LINKMON_OWN_NS && ev.routing_changed)
		abort(); /* another namespace's routes are not ours */
	if (ev.moved && (link.nsid != LINKMON_OWN_NS || ev.new_nsid < 0))
		abort(); /* a move is followed only from here, to a namespace with an id */
	r = route_parse(data, size, IFINDEX, check, NULL);
	if (r != 0 && r != SG_EPARSE)
		abort();
	return 0;
}
