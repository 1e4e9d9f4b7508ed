/* rtnetlink link monitor: tells the daemon when its TUN interface is deleted (RTM_DELLINK for
 * its ifindex), renamed, or goes up/down. The message parser is bounded and separate from the
 * socket so it can be tested with crafted buffers. */
#ifndef SG_NET_NETLINK_H
#define SG_NET_NETLINK_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"

struct linkmon_event {
	bool deleted; /* RTM_DELLINK for our index */
	bool seen;    /* any RTM_NEWLINK for our index */
	bool up;      /* IFF_UP in the last RTM_NEWLINK seen */
	bool renamed; /* IFLA_IFNAME differs from the name we know */
	char name[IF_NAMESIZE];
	unsigned mtu; /* IFLA_MTU of the last RTM_NEWLINK, 0 if absent */
};

/* A non-blocking NETLINK_ROUTE socket subscribed to RTMGRP_LINK, or a negative errno. */
int linkmon_open(void) SG_WUR;

/* Parses one buffer of netlink messages for events about `ifindex` (named `name`), merging them
 * into *ev. Malformed messages end the parse. Returns 0 or SG_EPARSE. */
int linkmon_parse(const uint8_t *buf, size_t len, int ifindex, const char *name,
		  struct linkmon_event *ev) SG_WUR;

/* Reads everything waiting on the socket into *ev. Returns 0, or -ENOBUFS when the kernel
 * dropped messages (the caller must then check the interface itself), or another negative
 * errno. */
int linkmon_read(int fd, int ifindex, const char *name, struct linkmon_event *ev) SG_WUR;

#endif
