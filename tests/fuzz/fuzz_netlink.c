/* Fuzz target for the rtnetlink parsers (src/net/netlink.c, src/net/route.c): the input is one
 * buffer of netlink messages as a recv on a NETLINK_ROUTE socket returns it, parsed both as the
 * link monitor's notifications and as answers to route requests. Neither may read outside the
 * buffer (the replay copies it to an exact-size allocation, so ASan sees it); every route they
 * report must be consistent: a known family and a prefix no longer than its addresses. */
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
	int r = linkmon_parse(data, size, IFINDEX, "wg0", &ev);
	if (r != 0 && r != SG_EPARSE)
		abort();
	if (ev.name[IF_NAMESIZE - 1] != '\0')
		abort();
	if (ev.seen && !ev.own_routes_changed)
		abort(); /* an event of ours is one of our routes' too */
	r = route_parse(data, size, IFINDEX, check, NULL);
	if (r != 0 && r != SG_EPARSE)
		abort();
	return 0;
}
