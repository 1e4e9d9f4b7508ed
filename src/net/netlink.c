/* rtnetlink link monitor; see netlink.h. */
#include "net/netlink.h"
#include "net/route.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <secureguard/sg_errors.h>

int netlink_route_socket(uint32_t groups)
{
	struct sockaddr_nl sa;
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	memset(&sa, 0, sizeof(sa));
	sa.nl_family = AF_NETLINK;
	sa.nl_groups = groups;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int linkmon_open(bool *all_nsid)
{
	int fd = netlink_route_socket(RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR |
					RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE);
	int on = 1;
	*all_nsid = fd >= 0 && setsockopt(fd, SOL_NETLINK, NETLINK_LISTEN_ALL_NSID, &on,
					  sizeof(on)) == 0;
	return fd;
}

static void parse_link_attrs(const uint8_t *p, size_t len, const char *name,
			     struct linkmon_event *ev)
{
	/* rtattr walk with explicit bounds: each attribute's length covers its header and stays
	 * inside the message. */
	while (len >= sizeof(struct rtattr)) {
		struct rtattr rta;
		memcpy(&rta, p, sizeof(rta));
		if (rta.rta_len < sizeof(rta) || rta.rta_len > len)
			return;
		const uint8_t *data = p + RTA_LENGTH(0);
		size_t dlen = rta.rta_len - RTA_LENGTH(0);
		if (rta.rta_type == IFLA_IFNAME && dlen > 0) {
			size_t n = strnlen((const char *)data, dlen);
			if (n > 0 && n < IF_NAMESIZE) {
				memcpy(ev->name, data, n);
				ev->name[n] = '\0';
				ev->renamed = strcmp(ev->name, name) != 0;
			}
		} else if (rta.rta_type == IFLA_MTU && dlen >= sizeof(uint32_t)) {
			uint32_t mtu;
			memcpy(&mtu, data, sizeof(mtu));
			ev->mtu = mtu;
		} else if (rta.rta_type == IFLA_NEW_NETNSID && dlen >= sizeof(int32_t)) {
			int32_t id;
			memcpy(&id, data, sizeof(id));
			ev->moved = id >= 0;
			ev->new_nsid = id;
		} else if (rta.rta_type == IFLA_NEW_IFINDEX && dlen >= sizeof(int32_t)) {
			int32_t idx;
			memcpy(&idx, data, sizeof(idx));
			ev->new_ifindex = idx;
		}
		size_t step = RTA_ALIGN(rta.rta_len);
		if (step >= len)
			return;
		p += step;
		len -= step;
	}
}

/* A route notification: a routing change unless it is a cloned route (an IPv6 exception);
 * ours if its output interface, or a hop of it, is `ifindex` (route.c parses it). One that
 * cannot be parsed still counts as a change. */
static void parse_route(const uint8_t *p, size_t len, int ifindex, struct linkmon_event *ev)
{
	struct route_msg m;
	if (!route_msg_parse(p, len, ifindex, &m)) {
		ev->routing_changed = true;
		return;
	}
	if (m.cloned)
		return;
	ev->routing_changed = true;
	if (m.via_ifindex)
		ev->own_routes_changed = true;
}

int netlink_next(const uint8_t **buf, size_t *len, struct netlink_msg *m)
{
	struct nlmsghdr nh;
	if (*len < sizeof(nh))
		return 0;
	memcpy(&nh, *buf, sizeof(nh));
	if (nh.nlmsg_len < sizeof(nh) || nh.nlmsg_len > *len) {
		*len = 0;
		return SG_EPARSE;
	}
	m->type = nh.nlmsg_type;
	m->seq = nh.nlmsg_seq;
	m->payload = *buf + NLMSG_HDRLEN;
	m->len = nh.nlmsg_len - NLMSG_HDRLEN;
	size_t step = NLMSG_ALIGN(nh.nlmsg_len);
	if (step >= *len) {
		*buf += *len;
		*len = 0;
	} else {
		*buf += step;
		*len -= step;
	}
	return 1;
}

int linkmon_parse(const uint8_t *buf, size_t len, int from_nsid, const struct linkmon_link *link,
		  struct linkmon_event *ev)
{
	struct netlink_msg msg;
	int r;
	bool here = from_nsid == LINKMON_OWN_NS;	      /* the socket's namespace */
	bool link_here = link->nsid == LINKMON_OWN_NS; /* our interface is in it */
	while ((r = netlink_next(&buf, &len, &msg)) == 1) {
		const uint8_t *payload = msg.payload;
		size_t plen = msg.len;
		if (msg.type == RTM_NEWROUTE || msg.type == RTM_DELROUTE) {
			if (here)
				parse_route(payload, plen, link_here ? link->ifindex : 0, ev);
		} else if ((msg.type == RTM_NEWADDR || msg.type == RTM_DELADDR) &&
			   plen >= sizeof(struct ifaddrmsg)) {
			struct ifaddrmsg ifa;
			memcpy(&ifa, payload, sizeof(ifa));
			if (!here)
				continue;
			ev->routing_changed = true;
			if (link_here && (int)ifa.ifa_index == link->ifindex)
				ev->own_routes_changed = true;
		} else if ((msg.type == RTM_NEWLINK || msg.type == RTM_DELLINK) &&
			   plen >= sizeof(struct ifinfomsg)) {
			struct ifinfomsg ifi;
			memcpy(&ifi, payload, sizeof(ifi));
			/* Any link's change may move routes (IPv4 drops a down link's routes
			 * without a notification); ours also carries its route MTUs. */
			if (here)
				ev->routing_changed = true;
			if (from_nsid != link->nsid || ifi.ifi_index != link->ifindex)
				continue;
			if (link_here)
				ev->own_routes_changed = true;
			if (msg.type == RTM_DELLINK) {
				ev->deleted = true;
				ev->moved = false;
				ev->new_nsid = -1;
				ev->new_ifindex = ifi.ifi_index;
			} else {
				ev->seen = true;
				ev->up = (ifi.ifi_flags & IFF_UP) != 0;
			}
			size_t off = NLMSG_ALIGN(sizeof(ifi));
			if (off < plen)
				parse_link_attrs(payload + off, plen - off, link->name, ev);
			/* A move on from another namespace names an id in that one's space, which
			 * means nothing here. */
			if (ev->moved && !link_here) {
				ev->moved = false;
				ev->new_nsid = -1;
			}
		}
	}
	return r;
}

int linkmon_read(int fd, const struct linkmon_link *link, struct linkmon_event *ev)
{
	/* 8 KiB is the size the kernel uses for rtnetlink multicast messages (NLMSG_GOODSIZE). */
	uint8_t buf[8192] __attribute__((aligned(4)));
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctrl;
	for (;;) {
		struct sockaddr_nl from;
		struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
		struct msghdr mh = {.msg_name = &from,
				    .msg_namelen = sizeof(from),
				    .msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = ctrl.b,
				    .msg_controllen = sizeof(ctrl.b)};
		ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -errno;
		}
		if (n == 0)
			return 0;
		/* Only the kernel (port id 0) speaks for links; a malformed batch is skipped. */
		if (mh.msg_namelen < sizeof(from) || from.nl_pid != 0)
			continue;
		/* Messages of another namespace carry its id (NETLINK_LISTEN_ALL_NSID). */
		int nsid = LINKMON_OWN_NS;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_NETLINK && c->cmsg_type == NETLINK_LISTEN_ALL_NSID &&
			    c->cmsg_len >= CMSG_LEN(sizeof(int)))
				memcpy(&nsid, CMSG_DATA(c), sizeof(nsid));
		if (linkmon_parse(buf, (size_t)n, nsid, link, ev) != 0)
			continue;
	}
}
