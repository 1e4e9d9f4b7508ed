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
	sa.nl_groups = RTMGRP_LINK;
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
		if ((nh.nlmsg_type == RTM_NEWLINK || nh.nlmsg_type == RTM_DELLINK) &&
		    plen >= sizeof(struct ifinfomsg)) {
			struct ifinfomsg ifi;
			memcpy(&ifi, payload, sizeof(ifi));
			if (ifi.ifi_index == ifindex) {
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
