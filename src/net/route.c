/* rtnetlink route requests and answers; see route.h. */
#include "net/route.h"
#include "net/netlink.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <secureguard/sg_errors.h>

#ifndef NETLINK_GET_STRICT_CHK
#define NETLINK_GET_STRICT_CHK 12 /* Linux 4.20 */
#endif
#ifndef RTA_IP_PROTO
#define RTA_IP_PROTO 27 /* Linux 4.17, with RTA_SPORT and RTA_DPORT */
#define RTA_SPORT    28
#define RTA_DPORT    29
#endif

int route_sock_open(void)
{
	int fd = netlink_route_socket(0);
	if (fd < 0)
		return fd;
	/* Older kernels ignore a dump's filter attributes; the answers are filtered again. */
	int on = 1;
	(void)setsockopt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &on, sizeof(on));
	return fd;
}

/* Appends an attribute; false if it does not fit. */
static bool put_attr(uint8_t *buf, size_t size, size_t *len, uint16_t type, const void *data,
		     size_t dlen)
{
	struct rtattr rta;
	size_t need = RTA_SPACE(dlen);
	if (*len + need > size)
		return false;
	rta.rta_len = (unsigned short)RTA_LENGTH(dlen);
	rta.rta_type = type;
	memset(buf + *len, 0, need);
	memcpy(buf + *len, &rta, sizeof(rta));
	memcpy(buf + *len + RTA_LENGTH(0), data, dlen);
	*len += need;
	return true;
}

/* The headers of a request; returns their length, 0 if too small. */
static size_t put_headers(uint8_t *buf, size_t size, uint16_t flags, uint32_t seq, int family,
			  uint8_t dst_len, uint8_t src_len)
{
	size_t len = NLMSG_SPACE(sizeof(struct rtmsg));
	if (len > size)
		return 0;
	memset(buf, 0, len);
	struct nlmsghdr nh = {.nlmsg_type = RTM_GETROUTE, .nlmsg_flags = flags, .nlmsg_seq = seq};
	struct rtmsg rtm = {.rtm_family = (unsigned char)family,
			    .rtm_dst_len = dst_len,
			    .rtm_src_len = src_len};
	memcpy(buf, &nh, sizeof(nh));
	memcpy(buf + NLMSG_HDRLEN, &rtm, sizeof(rtm));
	return len;
}

static size_t finish(uint8_t *buf, size_t len)
{
	uint32_t l = (uint32_t)len;
	memcpy(buf + offsetof(struct nlmsghdr, nlmsg_len), &l, sizeof(l));
	return len;
}

size_t route_dump_request(uint8_t *buf, size_t size, uint32_t seq, int family, int oif)
{
	uint32_t o = (uint32_t)oif;
	size_t len = put_headers(buf, size, NLM_F_REQUEST | NLM_F_DUMP, seq, family, 0, 0);
	if (!len || !put_attr(buf, size, &len, RTA_OIF, &o, sizeof(o)))
		return 0;
	return finish(buf, len);
}

size_t route_get_request(uint8_t *buf, size_t size, uint32_t seq, int family, const uint8_t *dst,
			 const uint8_t *src, uint32_t mark, uint16_t sport, uint16_t dport)
{
	size_t alen = family == AF_INET ? 4 : 16;
	uint8_t bits = (uint8_t)(alen * 8);
	size_t len = put_headers(buf, size, NLM_F_REQUEST, seq, family, bits, src ? bits : 0);
	if (!len || !put_attr(buf, size, &len, RTA_DST, dst, alen))
		return 0;
	if (src && !put_attr(buf, size, &len, RTA_SRC, src, alen))
		return 0;
	if (mark && !put_attr(buf, size, &len, RTA_MARK, &mark, sizeof(mark)))
		return 0;
	if (sport && dport) {
		/* Policy rules may match on ports (ip rule ... sport/dport). */
		uint8_t proto = IPPROTO_UDP;
		uint16_t sp = htons(sport), dp = htons(dport);
		if (!put_attr(buf, size, &len, RTA_IP_PROTO, &proto, sizeof(proto)) ||
		    !put_attr(buf, size, &len, RTA_SPORT, &sp, sizeof(sp)) ||
		    !put_attr(buf, size, &len, RTA_DPORT, &dp, sizeof(dp)))
			return 0;
	}
	return finish(buf, len);
}

static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

/* RTA_METRICS: nested attributes, of which RTAX_MTU is the one wanted. */
static uint32_t metrics_mtu(const uint8_t *p, size_t len)
{
	size_t off = 0;
	while (off + sizeof(struct rtattr) <= len) {
		struct rtattr rta;
		memcpy(&rta, p + off, sizeof(rta));
		if (rta.rta_len < sizeof(rta) || rta.rta_len > len - off)
			return 0;
		if (rta.rta_type == RTAX_MTU && rta.rta_len >= RTA_LENGTH(sizeof(uint32_t)))
			return get_u32(p + off + RTA_LENGTH(0));
		off += RTA_ALIGN(rta.rta_len);
	}
	return 0;
}

bool route_msg_parse(const uint8_t *p, size_t len, int ifindex, struct route_msg *m)
{
	struct rtmsg rtm;
	memset(m, 0, sizeof(*m));
	if (len < sizeof(rtm))
		return false;
	memcpy(&rtm, p, sizeof(rtm));
	m->cloned = (rtm.rtm_flags & RTM_F_CLONED) != 0;
	if (rtm.rtm_family != AF_INET && rtm.rtm_family != AF_INET6)
		return false;
	size_t alen = rtm.rtm_family == AF_INET ? 4 : 16;
	if (rtm.rtm_dst_len > alen * 8)
		return false;
	m->family = rtm.rtm_family;
	m->dst_len = rtm.rtm_dst_len;
	m->type = rtm.rtm_type;
	size_t off = NLMSG_ALIGN(sizeof(rtm));
	while (off + sizeof(struct rtattr) <= len) {
		struct rtattr rta;
		memcpy(&rta, p + off, sizeof(rta));
		if (rta.rta_len < sizeof(rta) || rta.rta_len > len - off)
			return false;
		const uint8_t *data = p + off + RTA_LENGTH(0);
		size_t dlen = rta.rta_len - RTA_LENGTH(0);
		switch (rta.rta_type) {
		case RTA_DST:
			if (dlen != alen)
				return false;
			memcpy(m->dst, data, alen);
			break;
		case RTA_OIF:
			if (dlen < sizeof(uint32_t))
				return false;
			m->oif = get_u32(data);
			if (ifindex > 0 && m->oif == (uint32_t)ifindex)
				m->via_ifindex = true;
			break;
		case RTA_METRICS:
			m->mtu = metrics_mtu(data, dlen);
			break;
		case RTA_MULTIPATH: {
			size_t h = 0;
			while (h + sizeof(struct rtnexthop) <= dlen) {
				struct rtnexthop nh;
				memcpy(&nh, data + h, sizeof(nh));
				if (nh.rtnh_len < sizeof(nh) || nh.rtnh_len > dlen - h)
					return false;
				if (!m->oif)
					m->oif = (uint32_t)nh.rtnh_ifindex;
				if (ifindex > 0 && nh.rtnh_ifindex == ifindex)
					m->via_ifindex = true;
				h += RTNH_ALIGN(nh.rtnh_len);
			}
			break;
		}
		default:
			break;
		}
		off += RTA_ALIGN(rta.rta_len);
	}
	return true;
}

int route_parse(const uint8_t *buf, size_t len, int ifindex,
		void (*cb)(void *ctx, const struct route_msg *m), void *ctx)
{
	struct netlink_msg msg;
	int r;
	while ((r = netlink_next(&buf, &len, &msg)) == 1) {
		struct route_msg m;
		memset(&m, 0, sizeof(m));
		if (msg.type == NLMSG_DONE) {
			m.kind = ROUTE_MSG_DONE;
		} else if (msg.type == NLMSG_ERROR) {
			int32_t e;
			if (msg.len < sizeof(e))
				return SG_EPARSE;
			memcpy(&e, msg.payload, sizeof(e));
			m.kind = ROUTE_MSG_ERROR;
			m.error = e > 0 ? -e : e; /* the kernel sends a negative errno */
		} else if (msg.type == RTM_NEWROUTE) {
			if (!route_msg_parse(msg.payload, msg.len, ifindex, &m))
				return SG_EPARSE;
			m.kind = ROUTE_MSG_ROUTE;
		} else {
			continue;
		}
		m.seq = msg.seq;
		cb(ctx, &m);
	}
	return r;
}
