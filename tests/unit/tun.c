/* The TUN priority queue's steering rule (src/net/tun.c; tun.h, tun_prio_prog_load): the kernel
 * runs the program on each packet sent into the interface and puts it in the queue it returns.
 * Here the program runs on packets of each kind through BPF_PROG_TEST_RUN (root: loading a
 * program needs CAP_BPF or CAP_SYS_ADMIN; skipped without). */
#include <errno.h>
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "test_util.h"

#include "net/tun.h"

static int prog = -1;

static int setup(void **state)
{
	(void)state;
	prog = tun_prio_prog_load();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (prog >= 0)
		close(prog);
	return 0;
}

/* The queue the program picks for the IP packet pkt (the test run wants an Ethernet header in
 * front, which it takes off before the program sees the packet). */
static unsigned run(const uint8_t *pkt, size_t len)
{
	uint8_t frame[14 + 2048];
	union bpf_attr a;

	assert_true(len <= sizeof(frame) - 14);
	memset(frame, 0, 14);
	frame[12] = (pkt[0] >> 4) == 6 ? 0x86 : 0x08;
	frame[13] = (pkt[0] >> 4) == 6 ? 0xdd : 0x00;
	memcpy(frame + 14, pkt, len);
	memset(&a, 0, sizeof(a));
	a.test.prog_fd = (uint32_t)prog;
	a.test.data_in = (uint64_t)(uintptr_t)frame;
	a.test.data_size_in = (uint32_t)(14 + len);
	a.test.repeat = 1;
	if (syscall(SYS_bpf, BPF_PROG_TEST_RUN, &a, sizeof(a)) != 0)
		fail_msg("BPF_PROG_TEST_RUN: %s", strerror(errno));
	return a.test.retval;
}

/* An IPv4 packet: 20-byte header, protocol proto, l4 (l4len bytes) after it. */
static size_t v4(uint8_t *p, uint8_t proto, const uint8_t *l4, size_t l4len, uint16_t frag)
{
	size_t len = 20 + l4len;
	memset(p, 0, 20);
	p[0] = 0x45;
	p[2] = (uint8_t)(len >> 8), p[3] = (uint8_t)len;
	p[6] = (uint8_t)(frag >> 8), p[7] = (uint8_t)frag;
	p[8] = 64;
	p[9] = proto;
	p[12] = 10, p[15] = 1;
	p[16] = 10, p[19] = 2;
	memcpy(p + 20, l4, l4len);
	return len;
}

static size_t v6(uint8_t *p, uint8_t next, const uint8_t *l4, size_t l4len)
{
	memset(p, 0, 40);
	p[0] = 0x60;
	p[4] = (uint8_t)(l4len >> 8), p[5] = (uint8_t)l4len;
	p[6] = next;
	p[7] = 64;
	p[8] = 0xfd, p[23] = 1;
	p[24] = 0xfd, p[39] = 2;
	memcpy(p + 40, l4, l4len);
	return 40 + l4len;
}

/* A TCP header of hdrlen bytes (20 or 32: with timestamps) with flags, then payload bytes. */
static size_t tcp(uint8_t *t, size_t hdrlen, uint8_t flags, size_t payload)
{
	memset(t, 0, hdrlen + payload);
	t[0] = 0x9c, t[1] = 0x40; /* 40000 */
	t[2] = 0x14, t[3] = 0x51; /* 5201 */
	t[12] = (uint8_t)((hdrlen / 4) << 4);
	t[13] = flags;
	return hdrlen + payload;
}

static size_t udp(uint8_t *u, uint16_t sport, uint16_t dport, size_t payload)
{
	memset(u, 0, 8 + payload);
	u[0] = (uint8_t)(sport >> 8), u[1] = (uint8_t)sport;
	u[2] = (uint8_t)(dport >> 8), u[3] = (uint8_t)dport;
	u[4] = (uint8_t)((8 + payload) >> 8), u[5] = (uint8_t)(8 + payload);
	return 8 + payload;
}

#define ACK 0x10
#define PSH 0x08
#define SYN 0x02
#define FIN 0x01
#define RST 0x04

static void test_prio_rule(void **state)
{
	(void)state;
	uint8_t pkt[2048], l4[2000];
	static const uint8_t echo[64] = {8, 0};
	size_t n;

	if (prog < 0)
		skip(); /* not root, or a kernel without eBPF socket filters */

	/* Priority: ICMP, ICMPv6, DNS both ways, TCP without data nor SYN/FIN/RST. */
	assert_int_equal(run(pkt, v4(pkt, 1, echo, sizeof(echo), 0)), 1);
	assert_int_equal(run(pkt, v6(pkt, 58, echo, sizeof(echo))), 1);
	assert_int_equal(run(pkt, v4(pkt, 17, l4, udp(l4, 40000, 53, 40), 0)), 1);
	assert_int_equal(run(pkt, v4(pkt, 17, l4, udp(l4, 53, 40000, 200), 0)), 1);
	assert_int_equal(run(pkt, v6(pkt, 17, l4, udp(l4, 40000, 53, 40))), 1);
	assert_int_equal(run(pkt, v4(pkt, 6, l4, tcp(l4, 20, ACK, 0), 0)), 1);
	assert_int_equal(run(pkt, v4(pkt, 6, l4, tcp(l4, 32, ACK, 0), 0x4000)), 1); /* DF */
	assert_int_equal(run(pkt, v6(pkt, 6, l4, tcp(l4, 32, ACK, 0))), 1);
	assert_int_equal(run(pkt, v4(pkt, 6, l4, tcp(l4, 20, ACK | PSH, 0), 0)), 1);

	/* Bulk: TCP with data (one byte is enough), SYN, FIN, RST; other UDP; fragments; IPv6
	 * extension headers; not IP. */
	assert_int_equal(run(pkt, v4(pkt, 6, l4, tcp(l4, 20, ACK, 1), 0)), 0);
	assert_int_equal(run(pkt, v4(pkt, 6, l4, tcp(l4, 32, ACK | PSH, 1368), 0)), 0);
	assert_int_equal(run(pkt, v6(pkt, 6, l4, tcp(l4, 32, ACK, 1000))), 0);
	assert_int_equal(run(pkt, v4(pkt, 6, l4, tcp(l4, 20, SYN, 0), 0)), 0);
	assert_int_equal(run(pkt, v4(pkt, 6, l4, tcp(l4, 20, ACK | FIN, 0), 0)), 0);
	assert_int_equal(run(pkt, v6(pkt, 6, l4, tcp(l4, 20, RST, 0))), 0);
	assert_int_equal(run(pkt, v4(pkt, 17, l4, udp(l4, 40000, 443, 40), 0)), 0);
	assert_int_equal(run(pkt, v6(pkt, 17, l4, udp(l4, 5353, 5353, 40))), 0);
	assert_int_equal(run(pkt, v4(pkt, 1, echo, sizeof(echo), 0x2000)), 0); /* MF */
	assert_int_equal(run(pkt, v4(pkt, 17, l4, udp(l4, 40000, 53, 40), 0x0010)), 0);
	assert_int_equal(run(pkt, v6(pkt, 0, l4, udp(l4, 40000, 53, 40))), 0); /* hop-by-hop */
	n = v4(pkt, 47, l4, 40, 0); /* GRE */
	assert_int_equal(run(pkt, n), 0);
	pkt[0] = 0x55; /* neither IPv4 nor IPv6 */
	assert_int_equal(run(pkt, n), 0);
	/* Short packets: the loads past the end end the program with 0. */
	assert_int_equal(run(pkt, v4(pkt, 6, l4, tcp(l4, 20, ACK, 0), 0) - 10), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_prio_rule),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
