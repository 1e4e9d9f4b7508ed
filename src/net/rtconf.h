/* Route and link changes through rtnetlink, for the IKE daemon's TUN device (kernel-libipsec installs
 * the same: one route per remote traffic selector, through the device, with a preferred source
 * inside the local selector). Blocking request/ack on a fresh NETLINK_ROUTE socket per call:
 * control plane only. */
#ifndef SG_NET_RTCONF_H
#define SG_NET_RTCONF_H

#include <stdbool.h>
#include <stdint.h>

#include "common/compiler.h"

/* Adds (add = true, replacing one to the same prefix) or deletes the route to
 * addr/prefix_len (family AF_INET or AF_INET6) through interface ifindex, with `src` (NULL for
 * none) as the preferred source. 0 or a negative errno (-ESRCH/-ENOENT: no such route). */
int route_change(bool add, int family, const uint8_t *addr, unsigned prefix_len, int ifindex,
		 const uint8_t *src) SG_WUR;
/* Sets the interface up. 0 or a negative errno. */
int route_link_up(int ifindex) SG_WUR;

#endif
