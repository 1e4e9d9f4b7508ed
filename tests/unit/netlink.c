/* Unit tests for the rtnetlink parsers and builders (src/net/netlink.c, src/net/route.c), with
 * messages built here by hand as the kernel sends them: link events for our interface and
 * others, route and address notifications (ours, another interface's, multipath, cloned),
 * route answers and dumps (RTA_OIF, RTAX_MTU inside RTA_METRICS, multipath hops, errors and
 * the end of a dump), requests checked attribute by attribute, and truncated or inconsistent
 * lengths rejected without reading past the buffer. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdlib.h>

#include "test_util.h"

#include <secureguard/sg_errors.h>

#include "net/netlink.h"
#include "net/route.h"

#define OURS 7

static const struct linkmon_link ours = {OURS, LINKMON_OWN_NS, "wg0"};

struct msgbuf {
	uint8_t b[4096] __attribute__((aligned(4)));
	size_t len;   /* bytes of complete messages */
	size_t start; /* of the message being built */
};

static void msg_begin(struct msgbuf *m, uint16_t type, uint32_t seq, const void *hdr, size_t hlen)
{
	struct nlmsghdr nh = {.nlmsg_type = type, .nlmsg_seq = seq};
	m->start = m->len;
	memset(m->b + m->len, 0, NLMSG_SPACE(hlen));
	memcpy(m->b + m->len, &nh, sizeof(nh));
	memcpy(m->b + m->len + NLMSG_HDRLEN, hdr, hlen);
	m->len += NLMSG_SPACE(hlen);
}

static void msg_attr(struct msgbuf *m, uint16_t type, const void *data, size_t dlen)
{
	struct rtattr rta = {.rta_len = (unsigned short)RTA_LENGTH(dlen), .rta_type = type};
	memset(m->b + m->len, 0, RTA_SPACE(dlen));
	memcpy(m->b + m->len, &rta, sizeof(rta));
	memcpy(m->b + m->len + RTA_LENGTH(0), data, dlen);
	m->len += RTA_SPACE(dlen);
}

static void msg_end(struct msgbuf *m)
{
	uint32_t l = (uint32_t)(m->len - m->start);
	memcpy(m->b + m->start, &l, sizeof(l));
}

static void route_msg(struct msgbuf *m, uint16_t type, uint32_t seq, int family, uint32_t oif,
		      uint32_t mtu, unsigned flags)
{
	struct rtmsg rtm = {.rtm_family = (unsigned char)family,
			    .rtm_dst_len = family == AF_INET ? 24 : 64,
			    .rtm_type = RTN_UNICAST,
			    .rtm_flags = flags};
	uint8_t dst[16] = {198, 51, 100, 0};
	msg_begin(m, type, seq, &rtm, sizeof(rtm));
	msg_attr(m, RTA_DST, dst, family == AF_INET ? 4 : 16);
	if (oif)
		msg_attr(m, RTA_OIF, &oif, sizeof(oif));
	if (mtu) {
		uint8_t metrics[RTA_SPACE(4) * 2];
		struct rtattr a = {.rta_len = RTA_LENGTH(4), .rta_type = RTAX_ADVMSS};
		uint32_t advmss = 1200;
		memcpy(metrics, &a, sizeof(a));
		memcpy(metrics + RTA_LENGTH(0), &advmss, 4);
		a.rta_type = RTAX_MTU;
		memcpy(metrics + RTA_SPACE(4), &a, sizeof(a));
		memcpy(metrics + RTA_SPACE(4) + RTA_LENGTH(0), &mtu, 4);
		msg_attr(m, RTA_METRICS, metrics, sizeof(metrics));
	}
	msg_end(m);
}

static void link_msg(struct msgbuf *m, uint16_t type, int index, unsigned flags, const char *name,
		     uint32_t mtu)
{
	struct ifinfomsg ifi = {.ifi_index = index, .ifi_flags = flags};
	msg_begin(m, type, 0, &ifi, sizeof(ifi));
	msg_attr(m, IFLA_IFNAME, name, strlen(name) + 1);
	msg_attr(m, IFLA_MTU, &mtu, sizeof(mtu));
	msg_end(m);
}

static void addr_msg(struct msgbuf *m, uint16_t type, uint32_t index)
{
	struct ifaddrmsg ifa = {.ifa_family = AF_INET, .ifa_prefixlen = 24, .ifa_index = index};
	uint8_t a[4] = {192, 0, 2, 1};
	msg_begin(m, type, 0, &ifa, sizeof(ifa));
	msg_attr(m, IFA_ADDRESS, a, 4);
	msg_end(m);
}

static struct linkmon_event parse(const struct msgbuf *m)
{
	struct linkmon_event ev;
	memset(&ev, 0, sizeof(ev));
	assert_int_equal(linkmon_parse(m->b, m->len, LINKMON_OWN_NS, &ours, &ev), 0);
	return ev;
}

static void test_link_events(void **state)
{
	struct msgbuf m = {0};
	link_msg(&m, RTM_NEWLINK, OURS, IFF_UP, "wg0", 1300);
	struct linkmon_event ev = parse(&m);
	assert_true(ev.seen && ev.up && !ev.renamed && !ev.deleted);
	assert_int_equal(ev.mtu, 1300);
	assert_true(ev.routing_changed && ev.own_routes_changed);
	/* Another link: routing may change (its routes go with it), our state does not. */
	m.len = 0;
	link_msg(&m, RTM_NEWLINK, OURS + 1, 0, "eth0", 1500);
	ev = parse(&m);
	assert_false(ev.seen || ev.own_routes_changed);
	assert_true(ev.routing_changed);
	/* Down, renamed, then deleted, in one buffer. */
	m.len = 0;
	link_msg(&m, RTM_NEWLINK, OURS, 0, "wg1", 1420);
	link_msg(&m, RTM_DELLINK, OURS, 0, "wg1", 1420);
	ev = parse(&m);
	assert_true(ev.seen && !ev.up && ev.renamed && ev.deleted);
	assert_string_equal(ev.name, "wg1");
}

static void test_moved_link(void **state)
{
	struct msgbuf m = {0};
	struct linkmon_event ev;
	/* The move, as the kernel reports it here: the namespace's id here and the new index. */
	struct ifinfomsg ifi = {.ifi_index = OURS};
	int32_t nsid = 0, idx = 3;
	msg_begin(&m, RTM_DELLINK, 0, &ifi, sizeof(ifi));
	msg_attr(&m, IFLA_IFNAME, "wg0", 4);
	msg_attr(&m, IFLA_NEW_NETNSID, &nsid, sizeof(nsid));
	msg_attr(&m, IFLA_NEW_IFINDEX, &idx, sizeof(idx));
	msg_end(&m);
	ev = parse(&m);
	assert_true(ev.deleted && ev.moved);
	assert_int_equal(ev.new_nsid, 0);
	assert_int_equal(ev.new_ifindex, 3);
	/* From then on: its messages come from namespace 0 with index 3. */
	const struct linkmon_link moved = {3, 0, "wg0"};
	m.len = 0;
	link_msg(&m, RTM_NEWLINK, 3, IFF_UP, "wg0", 1420);
	memset(&ev, 0, sizeof(ev));
	assert_int_equal(linkmon_parse(m.b, m.len, 0, &moved, &ev), 0);
	assert_true(ev.seen && ev.up);
	assert_false(ev.routing_changed || ev.own_routes_changed);
	/* Index 3 here is another link; another namespace's routes are not ours. */
	memset(&ev, 0, sizeof(ev));
	assert_int_equal(linkmon_parse(m.b, m.len, LINKMON_OWN_NS, &moved, &ev), 0);
	assert_false(ev.seen);
	assert_true(ev.routing_changed);
	m.len = 0;
	route_msg(&m, RTM_NEWROUTE, 0, AF_INET, 3, 1299, 0);
	addr_msg(&m, RTM_NEWADDR, 3);
	link_msg(&m, RTM_NEWLINK, 3, IFF_UP, "wg0", 1420);
	memset(&ev, 0, sizeof(ev));
	assert_int_equal(linkmon_parse(m.b, m.len, 1, &moved, &ev), 0);
	assert_false(ev.seen || ev.routing_changed || ev.own_routes_changed);
	/* Moving on from there names an id of that namespace's: not followed. */
	m.len = 0;
	ifi.ifi_index = 3;
	msg_begin(&m, RTM_DELLINK, 0, &ifi, sizeof(ifi));
	msg_attr(&m, IFLA_NEW_NETNSID, &nsid, sizeof(nsid));
	msg_end(&m);
	memset(&ev, 0, sizeof(ev));
	assert_int_equal(linkmon_parse(m.b, m.len, 0, &moved, &ev), 0);
	assert_true(ev.deleted);
	assert_false(ev.moved);
}

static void test_route_and_address_events(void **state)
{
	struct msgbuf m = {0};
	route_msg(&m, RTM_NEWROUTE, 0, AF_INET, OURS + 3, 0, 0);
	struct linkmon_event ev = parse(&m);
	assert_true(ev.routing_changed);
	assert_false(ev.own_routes_changed);
	m.len = 0;
	route_msg(&m, RTM_DELROUTE, 0, AF_INET6, OURS, 1299, 0);
	ev = parse(&m);
	assert_true(ev.routing_changed && ev.own_routes_changed);
	/* A cloned route (an IPv6 exception) is no routing change. */
	m.len = 0;
	route_msg(&m, RTM_NEWROUTE, 0, AF_INET6, OURS, 1280, RTM_F_CLONED);
	ev = parse(&m);
	assert_false(ev.routing_changed || ev.own_routes_changed);
	/* A multipath route with one hop through us. */
	m.len = 0;
	struct rtmsg rtm = {.rtm_family = AF_INET, .rtm_type = RTN_UNICAST};
	uint8_t hops[2 * sizeof(struct rtnexthop)] = {0};
	struct rtnexthop nh = {.rtnh_len = sizeof(nh), .rtnh_ifindex = 3};
	memcpy(hops, &nh, sizeof(nh));
	nh.rtnh_ifindex = OURS;
	memcpy(hops + sizeof(nh), &nh, sizeof(nh));
	msg_begin(&m, RTM_NEWROUTE, 0, &rtm, sizeof(rtm));
	msg_attr(&m, RTA_MULTIPATH, hops, sizeof(hops));
	msg_end(&m);
	ev = parse(&m);
	assert_true(ev.own_routes_changed);
	/* Addresses: anywhere changes routing; on our interface, our routes too. */
	m.len = 0;
	addr_msg(&m, RTM_NEWADDR, 3);
	ev = parse(&m);
	assert_true(ev.routing_changed && !ev.own_routes_changed);
	m.len = 0;
	addr_msg(&m, RTM_DELADDR, OURS);
	ev = parse(&m);
	assert_true(ev.routing_changed && ev.own_routes_changed);
}

static void test_malformed_events(void **state)
{
	struct msgbuf m = {0};
	struct linkmon_event ev;
	route_msg(&m, RTM_NEWROUTE, 0, AF_INET, OURS, 1299, 0);
	/* A message longer than the buffer, and one shorter than its header. */
	memset(&ev, 0, sizeof(ev));
	assert_int_equal(linkmon_parse(m.b, m.len - 4, LINKMON_OWN_NS, &ours, &ev), SG_EPARSE);
	uint32_t l = 8;
	memcpy(m.b, &l, sizeof(l));
	assert_int_equal(linkmon_parse(m.b, m.len, LINKMON_OWN_NS, &ours, &ev), SG_EPARSE);
	/* An attribute longer than its message is not followed. */
	m.len = 0;
	route_msg(&m, RTM_NEWROUTE, 0, AF_INET, OURS, 0, 0);
	size_t oif_at = m.len - RTA_SPACE(4);
	unsigned short big = 200;
	memcpy(m.b + oif_at, &big, sizeof(big));
	memset(&ev, 0, sizeof(ev));
	assert_int_equal(linkmon_parse(m.b, m.len, LINKMON_OWN_NS, &ours, &ev), 0);
	assert_false(ev.own_routes_changed);
	/* Random bytes never crash (the fuzz target goes further). */
	srand(11);
	for (int i = 0; i < 20000; i++) {
		size_t len = (size_t)rand() % 256;
		for (size_t k = 0; k < len; k++)
			m.b[k] = (uint8_t)rand();
		memset(&ev, 0, sizeof(ev));
		int r = linkmon_parse(m.b, len, rand() % 3 - 1, &ours, &ev);
		assert_true(r == 0 || r == SG_EPARSE);
	}
}

struct seen {
	struct route_msg msgs[8];
	size_t n;
};

static void collect(void *ctx, const struct route_msg *rm)
{
	struct seen *s = ctx;
	if (s->n < 8)
		s->msgs[s->n] = *rm;
	s->n++;
}

static void test_route_answers(void **state)
{
	struct msgbuf m = {0};
	struct seen s = {0};
	route_msg(&m, RTM_NEWROUTE, 41, AF_INET, OURS, 1299, 0);
	route_msg(&m, RTM_NEWROUTE, 41, AF_INET6, 3, 0, 0);
	/* An error answer (the kernel's nlmsgerr: a negative errno and the request's header). */
	struct nlmsgerr e = {.error = -EINVAL};
	msg_begin(&m, NLMSG_ERROR, 42, &e, sizeof(e));
	msg_end(&m);
	int32_t done = 0;
	msg_begin(&m, NLMSG_DONE, 41, &done, sizeof(done));
	msg_end(&m);
	/* Other types are skipped. */
	link_msg(&m, RTM_NEWLINK, OURS, IFF_UP, "wg0", 1420);
	assert_int_equal(route_parse(m.b, m.len, OURS, collect, &s), 0);
	assert_int_equal(s.n, 4);
	assert_int_equal(s.msgs[0].kind, ROUTE_MSG_ROUTE);
	assert_int_equal(s.msgs[0].seq, 41);
	assert_int_equal(s.msgs[0].family, AF_INET);
	assert_int_equal(s.msgs[0].dst_len, 24);
	assert_int_equal(s.msgs[0].dst[2], 100);
	assert_int_equal(s.msgs[0].oif, OURS);
	assert_true(s.msgs[0].via_ifindex);
	assert_int_equal(s.msgs[0].mtu, 1299);
	assert_int_equal(s.msgs[0].type, RTN_UNICAST);
	assert_int_equal(s.msgs[1].family, AF_INET6);
	assert_int_equal(s.msgs[1].oif, 3);
	assert_false(s.msgs[1].via_ifindex);
	assert_int_equal(s.msgs[1].mtu, 0);
	assert_int_equal(s.msgs[2].kind, ROUTE_MSG_ERROR);
	assert_int_equal(s.msgs[2].seq, 42);
	assert_int_equal(s.msgs[2].error, -EINVAL);
	assert_int_equal(s.msgs[3].kind, ROUTE_MSG_DONE);
	/* A destination of the wrong size for its family is malformed, and parsing stops. */
	m.len = 0;
	struct rtmsg rtm = {.rtm_family = AF_INET, .rtm_dst_len = 32};
	uint8_t dst[16] = {0};
	msg_begin(&m, RTM_NEWROUTE, 1, &rtm, sizeof(rtm));
	msg_attr(&m, RTA_DST, dst, 16);
	msg_end(&m);
	s.n = 0;
	assert_int_equal(route_parse(m.b, m.len, OURS, collect, &s), SG_EPARSE);
	assert_int_equal(s.n, 0);
	/* A prefix longer than the family's addresses, too. */
	m.len = 0;
	rtm.rtm_dst_len = 33;
	msg_begin(&m, RTM_NEWROUTE, 1, &rtm, sizeof(rtm));
	msg_end(&m);
	assert_int_equal(route_parse(m.b, m.len, OURS, collect, &s), SG_EPARSE);
	/* Random bytes never crash. */
	srand(13);
	for (int i = 0; i < 20000; i++) {
		size_t len = (size_t)rand() % 256;
		for (size_t k = 0; k < len; k++)
			m.b[k] = (uint8_t)rand();
		s.n = 0;
		int r = route_parse(m.b, len, OURS, collect, &s);
		assert_true(r == 0 || r == SG_EPARSE);
	}
}

/* Finds attribute `type` in a request; its payload and length. */
static const uint8_t *find_attr(const uint8_t *req, size_t len, uint16_t type, size_t *dlen)
{
	size_t off = NLMSG_SPACE(sizeof(struct rtmsg));
	while (off + sizeof(struct rtattr) <= len) {
		struct rtattr rta;
		memcpy(&rta, req + off, sizeof(rta));
		assert_true(rta.rta_len >= sizeof(rta) && off + rta.rta_len <= len);
		if (rta.rta_type == type) {
			*dlen = rta.rta_len - RTA_LENGTH(0);
			return req + off + RTA_LENGTH(0);
		}
		off += RTA_ALIGN(rta.rta_len);
	}
	return NULL;
}

static void test_requests(void **state)
{
	uint8_t req[ROUTE_REQ_MAX], dst[16], src[16];
	size_t dlen;
	struct nlmsghdr nh;
	struct rtmsg rtm;

	inet_pton(AF_INET, "192.0.2.2", dst);
	inet_pton(AF_INET, "192.0.2.101", src);
	size_t len = route_get_request(req, sizeof(req), 99, AF_INET, dst, src, 51820, 51820, 4000);
	assert_true(len > 0 && len <= sizeof(req));
	memcpy(&nh, req, sizeof(nh));
	memcpy(&rtm, req + NLMSG_HDRLEN, sizeof(rtm));
	assert_int_equal(nh.nlmsg_len, len);
	assert_int_equal(nh.nlmsg_type, RTM_GETROUTE);
	assert_int_equal(nh.nlmsg_flags, NLM_F_REQUEST);
	assert_int_equal(nh.nlmsg_seq, 99);
	assert_int_equal(rtm.rtm_family, AF_INET);
	assert_int_equal(rtm.rtm_dst_len, 32);
	assert_int_equal(rtm.rtm_src_len, 32);
	const uint8_t *a = find_attr(req, len, RTA_DST, &dlen);
	assert_non_null(a);
	assert_int_equal(dlen, 4);
	assert_memory_equal(a, dst, 4);
	a = find_attr(req, len, RTA_SRC, &dlen);
	assert_non_null(a);
	assert_memory_equal(a, src, 4);
	uint32_t mark;
	a = find_attr(req, len, RTA_MARK, &dlen);
	assert_non_null(a);
	memcpy(&mark, a, 4);
	assert_int_equal(mark, 51820);
	uint16_t port;
	a = find_attr(req, len, RTA_DPORT, &dlen);
	assert_non_null(a);
	memcpy(&port, a, 2);
	assert_int_equal(ntohs(port), 4000);
	/* IPv6, no source, no mark, no ports. */
	inet_pton(AF_INET6, "2001:db8::2", dst);
	len = route_get_request(req, sizeof(req), 100, AF_INET6, dst, NULL, 0, 0, 0);
	memcpy(&rtm, req + NLMSG_HDRLEN, sizeof(rtm));
	assert_int_equal(rtm.rtm_dst_len, 128);
	assert_int_equal(rtm.rtm_src_len, 0);
	assert_non_null(find_attr(req, len, RTA_DST, &dlen));
	assert_int_equal(dlen, 16);
	assert_null(find_attr(req, len, RTA_SRC, &dlen));
	assert_null(find_attr(req, len, RTA_MARK, &dlen));
	assert_null(find_attr(req, len, RTA_SPORT, &dlen));
	/* A dump of every table's routes through one interface. */
	len = route_dump_request(req, sizeof(req), 101, AF_INET6, OURS);
	memcpy(&nh, req, sizeof(nh));
	memcpy(&rtm, req + NLMSG_HDRLEN, sizeof(rtm));
	assert_int_equal(nh.nlmsg_flags, NLM_F_REQUEST | NLM_F_DUMP);
	assert_int_equal(rtm.rtm_family, AF_INET6);
	assert_int_equal(rtm.rtm_table, 0);
	uint32_t oif;
	a = find_attr(req, len, RTA_OIF, &dlen);
	assert_non_null(a);
	memcpy(&oif, a, 4);
	assert_int_equal(oif, OURS);
	/* Too small a buffer: nothing. */
	assert_int_equal(route_get_request(req, 40, 1, AF_INET6, dst, src, 1, 1, 1), 0);
	assert_int_equal(route_dump_request(req, 20, 1, AF_INET, OURS), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_link_events),
	    cmocka_unit_test(test_moved_link),
	    cmocka_unit_test(test_route_and_address_events),
	    cmocka_unit_test(test_malformed_events),
	    cmocka_unit_test(test_route_answers),
	    cmocka_unit_test(test_requests),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
