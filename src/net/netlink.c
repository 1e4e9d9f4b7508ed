/* rtnetlink link monitor; see netlink.h. */
#include "net/netlink.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <secureguard/sg_errors.h>

int linkmon_open(void)
{
	struct sockaddr_nl sa;
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	memset(&sa, 0, sizeof(sa));
	sa.nl_family = AF_NETLINK;
	sa.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE |
		       RTMGRP_IPV6_ROUTE;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int err = -errno;
		close(fd);
		return err;
	}
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
		}
		size_t step = RTA_ALIGN(rta.rta_len);
		if (step >= len)
			return;
		p += step;
		len -= step;
	}
}

/* Does a route message name `ifindex` as its output interface (RTA_OIF, or a hop of
 * RTA_MULTIPATH)? Cloned routes (IPv6 exceptions) are not routing changes. */
static void parse_route(const uint8_t *p, size_t len, int ifindex, struct linkmon_event *ev)
{
	struct rtmsg rtm;
	if (len < sizeof(rtm))
		return;
	memcpy(&rtm, p, sizeof(rtm));
	if (rtm.rtm_flags & RTM_F_CLONED)
		return;
	ev->routing_changed = true;
	size_t off = NLMSG_ALIGN(sizeof(rtm));
	while (off + sizeof(struct rtattr) <= len) {
		struct rtattr rta;
		memcpy(&rta, p + off, sizeof(rta));
		if (rta.rta_len < sizeof(rta) || rta.rta_len > len - off)
			return;
		const uint8_t *data = p + off + RTA_LENGTH(0);
		size_t dlen = rta.rta_len - RTA_LENGTH(0);
		if (rta.rta_type == RTA_OIF && dlen >= sizeof(uint32_t)) {
			uint32_t oif;
			memcpy(&oif, data, sizeof(oif));
			if (oif == (uint32_t)ifindex)
				ev->own_routes_changed = true;
		} else if (rta.rta_type == RTA_MULTIPATH) {
			size_t h = 0;
			while (h + sizeof(struct rtnexthop) <= dlen) {
				struct rtnexthop nh;
				memcpy(&nh, data + h, sizeof(nh));
				if (nh.rtnh_len < sizeof(nh) || nh.rtnh_len > dlen - h)
					break;
				if (nh.rtnh_ifindex == ifindex)
					ev->own_routes_changed = true;
				h += RTNH_ALIGN(nh.rtnh_len);
			}
		}
		off += RTA_ALIGN(rta.rta_len);
	}
}

int linkmon_parse(const uint8_t *buf, size_t len, int ifindex, const char *name,
		  struct linkmon_event *ev)
{
	while (len >= sizeof(struct nlmsghdr)) {
		struct nlmsghdr nh;
		memcpy(&nh, buf, sizeof(nh));
		if (nh.nlmsg_len < sizeof(nh) || nh.nlmsg_len > len)
			return SG_EPARSE;
		const uint8_t *payload = buf + NLMSG_HDRLEN;
		size_t plen = nh.nlmsg_len - NLMSG_HDRLEN;
		if ((nh.nlmsg_type == RTM_NEWROUTE || nh.nlmsg_type == RTM_DELROUTE)) {
			parse_route(payload, plen, ifindex, ev);
		} else if ((nh.nlmsg_type == RTM_NEWADDR || nh.nlmsg_type == RTM_DELADDR) &&
			   plen >= sizeof(struct ifaddrmsg)) {
			struct ifaddrmsg ifa;
			memcpy(&ifa, payload, sizeof(ifa));
			ev->routing_changed = true;
			if ((int)ifa.ifa_index == ifindex)
				ev->own_routes_changed = true;
		} else if ((nh.nlmsg_type == RTM_NEWLINK || nh.nlmsg_type == RTM_DELLINK) &&
			   plen >= sizeof(struct ifinfomsg)) {
			struct ifinfomsg ifi;
			memcpy(&ifi, payload, sizeof(ifi));
			/* Any link's change may move routes (IPv4 drops a down link's routes
			 * without a notification); ours also carries its route MTUs. */
			ev->routing_changed = true;
			if (ifi.ifi_index == ifindex) {
				ev->own_routes_changed = true;
				if (nh.nlmsg_type == RTM_DELLINK) {
					ev->deleted = true;
				} else {
					ev->seen = true;
					ev->up = (ifi.ifi_flags & IFF_UP) != 0;
					size_t off = NLMSG_ALIGN(sizeof(ifi));
					if (off < plen)
						parse_link_attrs(payload + off, plen - off, name,
								 ev);
				}
			}
		}
		size_t step = NLMSG_ALIGN(nh.nlmsg_len);
		if (step >= len)
			break;
		buf += step;
		len -= step;
	}
	return 0;
}

int linkmon_read(int fd, int ifindex, const char *name, struct linkmon_event *ev)
{
	/* 8 KiB is the size the kernel uses for rtnetlink multicast messages (NLMSG_GOODSIZE). */
	uint8_t buf[8192] __attribute__((aligned(4)));
	for (;;) {
		struct sockaddr_nl from;
		socklen_t fromlen = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from,
				     &fromlen);
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
		if (fromlen < sizeof(from) || from.nl_pid != 0)
			continue;
		if (linkmon_parse(buf, (size_t)n, ifindex, name, ev) != 0)
			continue;
	}
}
