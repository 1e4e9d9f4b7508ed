/* Unit tests for the destination-unreachable builder (src/net/icmp.c): the error for IPv4 and
 * IPv6 packets field by field, checksums verified with a naive RFC 1071 sum written here, the
 * quoting limits (576 bytes in all for IPv4, 1280 for IPv6), and every case where no error may
 * be sent (RFC 1122 3.2.2, RFC 1812 4.3.2.7, RFC 4443 2.4(e)). Random bytes never make it read
 * or write out of bounds (the fuzz target goes further). */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdlib.h>

#include "test_util.h"

#include "net/icmp.h"

/* RFC 1071, one 16-bit word at a time: 0xffff over a correct message. */
static uint16_t naive_sum(const uint8_t *p, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static size_t ip4(uint8_t *p, const char *src, const char *dst, uint8_t proto, size_t payload)
{
	size_t len = 20 + payload;
	memset(p, 0, len);
	for (size_t i = 20; i < len; i++)
		p[i] = (uint8_t)i;
	p[0] = 0x45;
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	p[6] = 0x40; /* DF */
	p[8] = 64;
	p[9] = proto;
	inet_pton(AF_INET, src, p + 12);
	inet_pton(AF_INET, dst, p + 16);
	return len;
}

static size_t ip6(uint8_t *p, const char *src, const char *dst, uint8_t nh, size_t payload)
{
	size_t len = 40 + payload;
	memset(p, 0, len);
	for (size_t i = 40; i < len; i++)
		p[i] = (uint8_t)i;
	p[0] = 0x60;
	p[4] = (uint8_t)(payload >> 8);
	p[5] = (uint8_t)payload;
	p[6] = nh;
	p[7] = 64;
	inet_pton(AF_INET6, src, p + 8);
	inet_pton(AF_INET6, dst, p + 24);
	return len;
}

static void test_ipv4_host_unreachable(void **state)
{
	uint8_t pkt[1500], out[ICMP_ERR_MAX];
	size_t len = ip4(pkt, "198.51.100.1", "198.51.100.99", IPPROTO_ICMP, 64);
	pkt[20] = 8; /* echo request */
	size_t n = icmp_unreach_build(out, sizeof(out), pkt, len);
	assert_int_equal(n, 20 + 8 + len);
	assert_int_equal(out[0], 0x45);
	assert_int_equal(out[2] << 8 | out[3], n);
	assert_int_equal(out[9], IPPROTO_ICMP);
	assert_true(out[8] > 0);
	/* From the unreachable destination, to the sender. */
	assert_memory_equal(out + 12, pkt + 16, 4);
	assert_memory_equal(out + 16, pkt + 12, 4);
	assert_int_equal(naive_sum(out, 20, 0), 0xffff);
	assert_int_equal(out[20], 3); /* destination unreachable */
	assert_int_equal(out[21], 1); /* host unreachable */
	assert_int_equal(naive_sum(out + 20, n - 20, 0), 0xffff);
	assert_memory_equal(out + 28, pkt, len);
	/* A big packet is quoted only so far that the error stays within 576 bytes. */
	len = ip4(pkt, "198.51.100.1", "198.51.100.99", IPPROTO_UDP, 1400);
	n = icmp_unreach_build(out, sizeof(out), pkt, len);
	assert_int_equal(n, 576);
	assert_memory_equal(out + 28, pkt, 576 - 28);
	assert_int_equal(naive_sum(out + 20, n - 20, 0), 0xffff);
	/* The first fragment of a datagram gets one (odd length: the checksum pads). */
	len = ip4(pkt, "198.51.100.1", "198.51.100.99", IPPROTO_UDP, 101);
	pkt[6] = 0x20; /* MF */
	n = icmp_unreach_build(out, sizeof(out), pkt, len);
	assert_int_equal(n, 28 + len);
	assert_int_equal(naive_sum(out + 20, n - 20, 0), 0xffff);
	/* A buffer too small: nothing. */
	assert_int_equal(icmp_unreach_build(out, n - 1, pkt, len), 0);
}

static void test_ipv4_no_error(void **state)
{
	uint8_t pkt[200], out[ICMP_ERR_MAX];
	static const struct {
		const char *src, *dst, *why;
	} addrs[] = {
	    {"198.51.100.1", "224.0.0.1", "multicast destination"},
	    {"198.51.100.1", "255.255.255.255", "limited broadcast"},
	    {"198.51.100.1", "0.0.0.0", "this host"},
	    {"0.0.0.0", "198.51.100.99", "unspecified source"},
	    {"127.0.0.1", "198.51.100.99", "loopback source"},
	    {"239.1.2.3", "198.51.100.99", "multicast source"},
	    {"240.0.0.1", "198.51.100.99", "class E source"},
	};
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		size_t len = ip4(pkt, addrs[i].src, addrs[i].dst, IPPROTO_UDP, 20);
		if (icmp_unreach_build(out, sizeof(out), pkt, len) != 0)
			fail_msg("an error for: %s", addrs[i].why);
	}
	/* ICMP errors (and unknown types) get none; queries do. */
	static const struct {
		uint8_t type;
		bool error;
	} types[] = {{0, true}, {8, true}, {13, true}, {3, false}, {4, false},
		     {5, false}, {11, false}, {12, false}, {19, false}, {200, false}};
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		size_t len = ip4(pkt, "198.51.100.1", "198.51.100.99", IPPROTO_ICMP, 8);
		pkt[20] = types[i].type;
		assert_int_equal(icmp_unreach_build(out, sizeof(out), pkt, len) != 0, types[i].error);
	}
	/* An ICMP packet too short to show its type. */
	size_t len = ip4(pkt, "198.51.100.1", "198.51.100.99", IPPROTO_ICMP, 0);
	assert_int_equal(icmp_unreach_build(out, sizeof(out), pkt, len), 0);
	/* A later fragment. */
	len = ip4(pkt, "198.51.100.1", "198.51.100.99", IPPROTO_UDP, 40);
	pkt[7] = 1;
	assert_int_equal(icmp_unreach_build(out, sizeof(out), pkt, len), 0);
	/* Malformed: header length under 20 or beyond the packet, total length under it. */
	len = ip4(pkt, "198.51.100.1", "198.51.100.99", IPPROTO_UDP, 40);
	pkt[0] = 0x44;
	assert_int_equal(icmp_unreach_build(out, sizeof(out), pkt, len), 0);
	pkt[0] = 0x4f;
	assert_int_equal(icmp_unreach_build(out, sizeof(out), pkt, 40), 0);
	pkt[0] = 0x45;
	pkt[2] = 0, pkt[3] = 19;
	assert_int_equal(icmp_unreach_build(out, sizeof(out), pkt, len), 0);
	/* Neither IPv4 nor IPv6, or too short for its header. */
	pkt[0] = 0x55;
	assert_int_equal(icmp_unreach_build(out, sizeof(out), pkt, len), 0);
	pkt[0] = 0x45;
	assert_int_equal(icmp_unreach_build(out, sizeof(out), pkt, 19), 0);
}

static void test_ipv6_address_unreachable(void **state)
{
	uint8_t pkt[2000], out[ICMP_ERR_MAX];
	size_t len = ip6(pkt, "2001:db8:1::1", "2001:db8:1::99", IPPROTO_ICMPV6, 64);
	pkt[40] = 128; /* echo request */
	size_t n = icmp_unreach_build(out, sizeof(out), pkt, len);
	assert_int_equal(n, 40 + 8 + len);
	assert_int_equal(out[0] >> 4, 6);
	assert_int_equal(out[4] << 8 | out[5], n - 40);
	assert_int_equal(out[6], IPPROTO_ICMPV6);
	assert_true(out[7] > 0);
	assert_memory_equal(out + 8, pkt + 24, 16);
	assert_memory_equal(out + 24, pkt + 8, 16);
	assert_int_equal(out[40], 1); /* destination unreachable */
	assert_int_equal(out[41], 3); /* address unreachable, as the kernel module sends */
	/* RFC 8200 8.1: addresses, 32-bit length, next header, then the message. */
	uint32_t pseudo = naive_sum(out + 8, 32, 0) + (uint32_t)(n - 40) + IPPROTO_ICMPV6;
	assert_int_equal(naive_sum(out + 40, n - 40, pseudo), 0xffff);
	assert_memory_equal(out + 48, pkt, len);
	/* Quoted up to the IPv6 minimum MTU. */
	len = ip6(pkt, "2001:db8:1::1", "2001:db8:1::99", IPPROTO_UDP, 1500);
	n = icmp_unreach_build(out, sizeof(out), pkt, len);
	assert_int_equal(n, ICMP_ERR_MAX);
	pseudo = naive_sum(out + 8, 32, 0) + (uint32_t)(n - 40) + IPPROTO_ICMPV6;
	assert_int_equal(naive_sum(out + 40, n - 40, pseudo), 0xffff);
	/* Through extension headers to an echo request: an error; to an error: none. */
	len = ip6(pkt, "2001:db8:1::1", "2001:db8:1::99", IPPROTO_HOPOPTS, 8 + 8 + 8);
	pkt[40] = IPPROTO_DSTOPTS, pkt[41] = 0;
	pkt[48] = IPPROTO_ICMPV6, pkt[49] = 0;
	pkt[56] = 128;
	assert_int_equal(icmp_unreach_build(out, sizeof(out), pkt, len), 48 + len);
	pkt[56] = 1;
	assert_int_equal(icmp_unreach_build(out, sizeof(out), pkt, len), 0);
	/* A later fragment hides its upper layer: it gets one. */
	len = ip6(pkt, "2001:db8:1::1", "2001:db8:1::99", IPPROTO_FRAGMENT, 8 + 8);
	pkt[40] = IPPROTO_ICMPV6, pkt[42] = 0, pkt[43] = 8 << 3;
	pkt[48] = 1;
	assert_int_equal(icmp_unreach_build(out, sizeof(out), pkt, len), 48 + len);
	/* The first fragment shows it. */
	pkt[43] = 1; /* offset 0, more fragments */
	assert_int_equal(icmp_unreach_build(out, sizeof(out), pkt, len), 0);
}

static void test_ipv6_no_error(void **state)
{
	uint8_t pkt[200], out[ICMP_ERR_MAX];
	static const struct {
		const char *src, *dst, *why;
	} addrs[] = {
	    {"2001:db8:1::1", "ff02::1", "multicast destination"},
	    {"::", "2001:db8:1::99", "unspecified source"},
	    {"::1", "2001:db8:1::99", "loopback source"},
	    {"ff02::2", "2001:db8:1::99", "multicast source"},
	};
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		size_t len = ip6(pkt, addrs[i].src, addrs[i].dst, IPPROTO_UDP, 20);
		if (icmp_unreach_build(out, sizeof(out), pkt, len) != 0)
			fail_msg("an error for: %s", addrs[i].why);
	}
	for (int type = 0; type < 256; type++) {
		size_t len = ip6(pkt, "2001:db8:1::1", "2001:db8:1::99", IPPROTO_ICMPV6, 8);
		pkt[40] = (uint8_t)type;
		bool expect = type >= 128 && type != 137; /* no error for errors or redirects */
		assert_int_equal(icmp_unreach_build(out, sizeof(out), pkt, len) != 0, expect);
	}
	/* A payload length beyond the packet, or headers running past its end. */
	size_t len = ip6(pkt, "2001:db8:1::1", "2001:db8:1::99", IPPROTO_UDP, 20);
	pkt[5] = 21;
	assert_int_equal(icmp_unreach_build(out, sizeof(out), pkt, len), 0);
	len = ip6(pkt, "2001:db8:1::1", "2001:db8:1::99", IPPROTO_HOPOPTS, 8);
	pkt[40] = IPPROTO_UDP, pkt[41] = 5; /* 48 bytes of header in an 8-byte payload */
	assert_int_equal(icmp_unreach_build(out, sizeof(out), pkt, len), 0);
	len = ip6(pkt, "2001:db8:1::1", "2001:db8:1::99", IPPROTO_FRAGMENT, 4);
	assert_int_equal(icmp_unreach_build(out, sizeof(out), pkt, len), 0);
	assert_int_equal(icmp_unreach_build(out, sizeof(out), pkt, 39), 0);
}

static void test_random_input_bounded(void **state)
{
	uint8_t pkt[1600], out[ICMP_ERR_MAX + 16];
	srand(7);
	for (int i = 0; i < 20000; i++) {
		size_t len = (size_t)rand() % sizeof(pkt);
		for (size_t k = 0; k < len; k++)
			pkt[k] = (uint8_t)rand();
		pkt[0] = (uint8_t)((rand() & 1 ? 0x40 : 0x60) | (pkt[0] & 0x0f));
		memset(out + ICMP_ERR_MAX, 0xa5, 16);
		size_t n = icmp_unreach_build(out, ICMP_ERR_MAX, pkt, len);
		assert_true(n <= ICMP_ERR_MAX);
		for (int k = 0; k < 16; k++)
			assert_int_equal(out[ICMP_ERR_MAX + k], 0xa5);
		if (n && (out[0] >> 4) == 4)
			assert_int_equal(naive_sum(out + 20, n - 20, 0), 0xffff);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ipv4_host_unreachable),
	    cmocka_unit_test(test_ipv4_no_error),
	    cmocka_unit_test(test_ipv6_address_unreachable),
	    cmocka_unit_test(test_ipv6_no_error),
	    cmocka_unit_test(test_random_input_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
