/* Unit tests for the allowed-IPs trie (src/wg/allowedips.c).
 *
 * - fixed cases: overlaps, defaults, host routes, masking, moves, removal, walks, bad input;
 * - the classic cases of the Linux driver's selftest (drivers/net/wireguard/selftest/
 *   allowedips.c, Jason A. Donenfeld), as facts: which peer each address routes to;
 * - a randomised comparison with a naive linear table (longest match by scanning), also of the
 *   per-owner walks and removals over hundreds of owners whose prefixes move between them;
 * - the owner index checked by wg_allowedips_check after every fixture and along the way;
 * - allocation failure injection: SG_ENOMEM leaves the table unchanged, nothing leaks; the owner
 *   index growing, shrinking and sorting for a walk under failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include <secureguard/sg_errors.h>

#include "wg/allowedips.h"

#define B4(x)	       (uint8_t)((x) >> 24), (uint8_t)((x) >> 16), (uint8_t)((x) >> 8), (uint8_t)(x)
#define V4(a, b, c, d) ((const uint8_t[4]){(a), (b), (c), (d)})
#define V6(a, b, c, d) ((const uint8_t[16]){B4(a), B4(b), B4(c), B4(d)})

/* Owners are just distinct addresses. */
static char peers[64];
#define PA (&peers[0])
#define PB (&peers[1])
#define PC (&peers[2])
#define PD (&peers[3])
#define PE (&peers[4])
#define PF (&peers[5])
#define PG (&peers[6])
#define PH (&peers[7])

static struct wg_allowedips *t;

static int setup(void **state)
{
	(void)state;
	t = wg_allowedips_new();
	return t ? 0 : -1;
}

static int teardown(void **state)
{
	int bad = wg_allowedips_check(t);

	(void)state;
	if (bad)
		print_error("teardown: wg_allowedips_check failed at allowedips.c:%d\n", bad);
	wg_allowedips_free(t);
	t = NULL;
	return bad ? -1 : 0;
}

/* The owner index and the tries agree (allowedips.c names the failed check by its line). */
static void check_consistent(unsigned line)
{
	int bad = wg_allowedips_check(t);

	if (bad)
		fail_msg("line %u: wg_allowedips_check failed at allowedips.c:%d", line, bad);
}
#define CHECK_CONSISTENT() check_consistent(__LINE__)

static void ins(int family, const uint8_t *addr, uint8_t cidr, void *owner, unsigned line)
{
	int ret = wg_allowedips_insert(t, family, addr, cidr, owner);

	if (ret)
		fail_msg("line %u: insert failed: %s", line, sg_err_name(ret));
}
#define INS4(o, a, b, c, d, cidr) ins(AF_INET, V4(a, b, c, d), (cidr), (o), __LINE__)
#define INS6(o, a, b, c, d, cidr) ins(AF_INET6, V6(a, b, c, d), (cidr), (o), __LINE__)

static void look(int family, const uint8_t *addr, void *want, unsigned line)
{
	void *got = wg_allowedips_lookup(t, family, addr);

	if (got != want)
		fail_msg("line %u: lookup: expected owner %td, got %td", line,
			 want ? (char *)want - peers : -1, got ? (char *)got - peers : -1);
}
#define LOOK4(o, a, b, c, d) look(AF_INET, V4(a, b, c, d), (o), __LINE__)
#define LOOK6(o, a, b, c, d) look(AF_INET6, V6(a, b, c, d), (o), __LINE__)

/* Each family holds at most 2n - 1 nodes for n prefixes (see allowedips.c). */
static void check_node_bound(void)
{
	size_t n = wg_allowedips_count(t), nodes = wg_allowedips_node_count(t);

	assert_true(nodes >= n);
	assert_true(nodes <= 2 * n);
	CHECK_CONSISTENT();
}

/* ---- walk helpers -------------------------------------------------------------------------- */

struct walked {
	int family;
	uint8_t addr[16];
	uint8_t cidr;
};

struct walk_ctx {
	struct walked items[256];
	size_t n;
	size_t stop_after; /* 0 = never */
};

static int collect(void *ctx, int family, const uint8_t *addr, uint8_t cidr)
{
	struct walk_ctx *w = ctx;

	assert_true(w->n < SG_ARRAY_LEN(w->items));
	w->items[w->n].family = family;
	memset(w->items[w->n].addr, 0, 16);
	memcpy(w->items[w->n].addr, addr, family == AF_INET ? 4 : 16);
	w->items[w->n].cidr = cidr;
	w->n++;
	if (w->stop_after && w->n == w->stop_after)
		return 7;
	return 0;
}

static void assert_walked(const struct walked *w, int family, const uint8_t *addr, uint8_t cidr)
{
	assert_int_equal(w->family, family);
	assert_memory_equal(w->addr, addr, family == AF_INET ? 4 : 16);
	assert_int_equal(w->cidr, cidr);
}

/* ---- fixed cases --------------------------------------------------------------------------- */

static void test_empty(void **state)
{
	(void)state;
	assert_int_equal(wg_allowedips_count(t), 0);
	LOOK4(NULL, 0, 0, 0, 0);
	LOOK4(NULL, 255, 255, 255, 255);
	LOOK6(NULL, 0, 0, 0, 0);
	assert_int_equal(wg_allowedips_remove(t, AF_INET, V4(10, 0, 0, 0), 8, NULL), SG_ENOENT);
	wg_allowedips_remove_by_owner(t, PA);
	struct walk_ctx w = {.n = 0};
	assert_int_equal(wg_allowedips_walk_owner(t, PA, collect, &w), 0);
	assert_int_equal(w.n, 0);
	/* NULL table is tolerated by the control-plane calls. */
	assert_int_equal(wg_allowedips_count(NULL), 0);
	wg_allowedips_free(NULL);
}

static void test_invalid(void **state)
{
	(void)state;
	assert_int_equal(wg_allowedips_insert(t, AF_INET, V4(1, 2, 3, 4), 33, PA), SG_EINVAL);
	assert_int_equal(wg_allowedips_insert(t, AF_INET6, V6(1, 2, 3, 4), 129, PA), SG_EINVAL);
	assert_int_equal(wg_allowedips_insert(t, AF_INET6, V6(1, 2, 3, 4), 255, PA), SG_EINVAL);
	assert_int_equal(wg_allowedips_insert(t, AF_UNIX, V6(1, 2, 3, 4), 8, PA), SG_EINVAL);
	assert_int_equal(wg_allowedips_insert(t, AF_UNSPEC, V6(1, 2, 3, 4), 0, PA), SG_EINVAL);
	assert_int_equal(wg_allowedips_insert(t, AF_INET, V4(1, 2, 3, 4), 8, NULL), SG_EINVAL);
	assert_int_equal(wg_allowedips_insert(t, AF_INET, NULL, 8, PA), SG_EINVAL);
	assert_int_equal(wg_allowedips_insert(NULL, AF_INET, V4(1, 2, 3, 4), 8, PA), SG_EINVAL);
	assert_int_equal(wg_allowedips_remove(t, AF_INET, V4(1, 2, 3, 4), 33, NULL), SG_EINVAL);
	assert_int_equal(wg_allowedips_remove(t, 12345, V4(1, 2, 3, 4), 8, NULL), SG_EINVAL);
	assert_int_equal(wg_allowedips_count(t), 0);
	assert_int_equal(wg_allowedips_node_count(t), 0);
	assert_null(wg_allowedips_lookup(t, AF_UNIX, V6(1, 2, 3, 4)));
	/* The boundaries themselves are valid. */
	assert_int_equal(wg_allowedips_insert(t, AF_INET, V4(1, 2, 3, 4), 32, PA), 0);
	assert_int_equal(wg_allowedips_insert(t, AF_INET6, V6(1, 2, 3, 4), 128, PA), 0);
	assert_int_equal(wg_allowedips_count(t), 2);
}

static void test_overlapping(void **state)
{
	(void)state;
	INS4(PA, 10, 0, 0, 0, 8);
	INS4(PB, 10, 1, 0, 0, 16);
	INS4(PC, 10, 1, 2, 0, 24);
	INS4(PD, 10, 1, 2, 3, 32);
	LOOK4(PA, 10, 200, 0, 1);
	LOOK4(PB, 10, 1, 200, 1);
	LOOK4(PC, 10, 1, 2, 4);
	LOOK4(PD, 10, 1, 2, 3);
	LOOK4(NULL, 11, 1, 2, 3);
	LOOK4(NULL, 9, 255, 255, 255);
	/* Inserted the other way round, the answers are the same. */
	INS4(PD, 172, 16, 2, 3, 32);
	INS4(PC, 172, 16, 2, 0, 24);
	INS4(PB, 172, 16, 0, 0, 16);
	INS4(PA, 172, 0, 0, 0, 8);
	LOOK4(PA, 172, 200, 0, 1);
	LOOK4(PB, 172, 16, 200, 1);
	LOOK4(PC, 172, 16, 2, 4);
	LOOK4(PD, 172, 16, 2, 3);
	/* Siblings that only share a prefix nobody owns. */
	INS4(PE, 192, 168, 0, 0, 24);
	INS4(PF, 192, 168, 1, 0, 24);
	LOOK4(PE, 192, 168, 0, 77);
	LOOK4(PF, 192, 168, 1, 77);
	LOOK4(NULL, 192, 168, 2, 77);
	/* The families do not mix. */
	LOOK6(NULL, 0x0a010203, 0, 0, 0);
	assert_int_equal(wg_allowedips_count(t), 10);
	check_node_bound();
}

static void test_default_routes(void **state)
{
	(void)state;
	INS4(PA, 1, 2, 3, 4, 0); /* host bits masked: 0.0.0.0/0 */
	LOOK4(PA, 0, 0, 0, 0);
	LOOK4(PA, 255, 255, 255, 255);
	LOOK4(PA, 128, 0, 0, 0);
	LOOK6(NULL, 0, 0, 0, 0);
	INS6(PB, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0);
	LOOK6(PB, 0, 0, 0, 0);
	LOOK6(PB, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff);
	LOOK6(PB, 0x80000000, 0, 0, 1);
	/* More specific routes win over the default. */
	INS4(PC, 10, 0, 0, 0, 8);
	INS6(PD, 0xfd000000, 0, 0, 0, 8);
	LOOK4(PC, 10, 9, 9, 9);
	LOOK4(PA, 11, 9, 9, 9);
	LOOK6(PD, 0xfd123456, 0, 0, 1);
	LOOK6(PB, 0xfe123456, 0, 0, 1);
	/* The default routes are walked as 0.0.0.0/0 and ::/0. */
	struct walk_ctx w = {.n = 0};
	assert_int_equal(wg_allowedips_walk_owner(t, PA, collect, &w), 0);
	assert_int_equal(w.n, 1);
	assert_walked(&w.items[0], AF_INET, V4(0, 0, 0, 0), 0);
	w.n = 0;
	assert_int_equal(wg_allowedips_walk_owner(t, PB, collect, &w), 0);
	assert_int_equal(w.n, 1);
	assert_walked(&w.items[0], AF_INET6, V6(0, 0, 0, 0), 0);
	/* Removing the default keeps the specific routes. */
	assert_int_equal(wg_allowedips_remove(t, AF_INET, V4(0, 0, 0, 0), 0, PA), 0);
	LOOK4(NULL, 11, 9, 9, 9);
	LOOK4(PC, 10, 9, 9, 9);
	assert_int_equal(wg_allowedips_remove(t, AF_INET6, V6(0, 0, 0, 0), 0, NULL), 0);
	LOOK6(NULL, 0xfe123456, 0, 0, 1);
	LOOK6(PD, 0xfd123456, 0, 0, 1);
	assert_int_equal(wg_allowedips_count(t), 2);
	check_node_bound();
}

static void test_host_routes(void **state)
{
	(void)state;
	INS4(PA, 192, 0, 2, 1, 32);
	INS4(PB, 192, 0, 2, 2, 32);
	INS4(PC, 255, 255, 255, 255, 32);
	INS4(PD, 0, 0, 0, 0, 32);
	LOOK4(PA, 192, 0, 2, 1);
	LOOK4(PB, 192, 0, 2, 2);
	LOOK4(NULL, 192, 0, 2, 3);
	LOOK4(PC, 255, 255, 255, 255);
	LOOK4(NULL, 255, 255, 255, 254);
	LOOK4(PD, 0, 0, 0, 0);
	LOOK4(NULL, 0, 0, 0, 1);
	INS6(PA, 0x20010db8, 0, 0, 1, 128);
	INS6(PB, 0x20010db8, 0, 0, 0, 128);
	INS6(PC, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 128);
	INS6(PD, 0, 0, 0, 0, 128);
	LOOK6(PA, 0x20010db8, 0, 0, 1);
	LOOK6(PB, 0x20010db8, 0, 0, 0);
	LOOK6(NULL, 0x20010db8, 0, 0, 2);
	LOOK6(NULL, 0x20010db8, 0, 1, 1);
	LOOK6(PC, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff);
	LOOK6(NULL, 0xffffffff, 0xffffffff, 0xffffffff, 0xfffffffe);
	LOOK6(PD, 0, 0, 0, 0);
	LOOK6(NULL, 0, 0, 0, 1);
	/* A /128 under a /127 and a /64, last bit deciding. */
	INS6(PE, 0x20010db8, 0, 0, 0, 64);
	INS6(PF, 0x20010db8, 0, 0, 0, 127);
	LOOK6(PB, 0x20010db8, 0, 0, 0);
	LOOK6(PA, 0x20010db8, 0, 0, 1);
	LOOK6(PE, 0x20010db8, 0, 0, 2);
	assert_int_equal(wg_allowedips_remove(t, AF_INET6, V6(0x20010db8, 0, 0, 1), 128, PA), 0);
	LOOK6(PF, 0x20010db8, 0, 0, 1);
	check_node_bound();
}

static void test_host_bits_masked(void **state)
{
	(void)state;
	INS4(PA, 10, 1, 2, 3, 8);
	INS4(PB, 192, 168, 77, 255, 23); /* 192.168.76.0/23 */
	INS6(PC, 0x20010db8, 0x12345678, 0x9abcdef0, 0x12345678, 33);
	LOOK4(PA, 10, 200, 200, 200);
	LOOK4(PB, 192, 168, 76, 0);
	LOOK4(PB, 192, 168, 77, 0);
	LOOK4(NULL, 192, 168, 78, 0);
	LOOK6(PC, 0x20010db8, 0x00000000, 0, 0);
	LOOK6(PC, 0x20010db8, 0x7fffffff, 0, 0);
	LOOK6(NULL, 0x20010db8, 0x80000000, 0, 0);
	/* The same prefix written with other host bits is the same entry. */
	INS4(PD, 10, 9, 9, 9, 8);
	assert_int_equal(wg_allowedips_count(t), 3);
	LOOK4(PD, 10, 1, 2, 3);
	assert_int_equal(wg_allowedips_remove(t, AF_INET, V4(10, 255, 0, 1), 8, PD), 0);
	LOOK4(NULL, 10, 1, 2, 3);
	/* Walks report the masked network address. */
	struct walk_ctx w = {.n = 0};
	assert_int_equal(wg_allowedips_walk_owner(t, PB, collect, &w), 0);
	assert_int_equal(w.n, 1);
	assert_walked(&w.items[0], AF_INET, V4(192, 168, 76, 0), 23);
	w.n = 0;
	assert_int_equal(wg_allowedips_walk_owner(t, PC, collect, &w), 0);
	assert_int_equal(w.n, 1);
	assert_walked(&w.items[0], AF_INET6, V6(0x20010db8, 0, 0, 0), 33);
}

static void test_move_owner(void **state)
{
	(void)state;
	INS4(PA, 10, 0, 0, 0, 24);
	INS4(PA, 10, 0, 1, 0, 24);
	INS6(PA, 0xfd000000, 0, 0, 0, 8);
	LOOK4(PA, 10, 0, 0, 5);
	INS4(PB, 10, 0, 0, 0, 24); /* moves */
	assert_int_equal(wg_allowedips_count(t), 3);
	LOOK4(PB, 10, 0, 0, 5);
	LOOK4(PA, 10, 0, 1, 5);
	/* The old owner no longer holds it: neither removal nor walks see it. */
	assert_int_equal(wg_allowedips_remove(t, AF_INET, V4(10, 0, 0, 0), 24, PA), SG_ENOENT);
	LOOK4(PB, 10, 0, 0, 5);
	struct walk_ctx w = {.n = 0};
	assert_int_equal(wg_allowedips_walk_owner(t, PA, collect, &w), 0);
	assert_int_equal(w.n, 2);
	assert_walked(&w.items[0], AF_INET, V4(10, 0, 1, 0), 24);
	assert_walked(&w.items[1], AF_INET6, V6(0xfd000000, 0, 0, 0), 8);
	/* Re-inserting with the same owner is a no-op. */
	INS4(PB, 10, 0, 0, 0, 24);
	assert_int_equal(wg_allowedips_count(t), 3);
	/* remove_by_owner of the old owner leaves the moved prefix alone. */
	wg_allowedips_remove_by_owner(t, PA);
	assert_int_equal(wg_allowedips_count(t), 1);
	LOOK4(PB, 10, 0, 0, 5);
	LOOK4(NULL, 10, 0, 1, 5);
	LOOK6(NULL, 0xfd000000, 0, 0, 1);
}

static void test_remove(void **state)
{
	(void)state;
	INS4(PA, 10, 0, 0, 0, 8);
	INS4(PB, 10, 1, 0, 0, 16);
	INS4(PC, 10, 1, 1, 0, 24);
	INS4(PD, 10, 1, 128, 0, 24);
	/* Wrong owner, wrong length, absent prefix, ownerless branch node: all ENOENT. */
	assert_int_equal(wg_allowedips_remove(t, AF_INET, V4(10, 1, 0, 0), 16, PA), SG_ENOENT);
	assert_int_equal(wg_allowedips_remove(t, AF_INET, V4(10, 1, 0, 0), 17, PB), SG_ENOENT);
	assert_int_equal(wg_allowedips_remove(t, AF_INET, V4(10, 2, 0, 0), 16, NULL), SG_ENOENT);
	INS4(PE, 10, 2, 0, 0, 24);
	INS4(PE, 10, 3, 0, 0, 24); /* creates an ownerless 10.2.0.0/15 */
	assert_int_equal(wg_allowedips_remove(t, AF_INET, V4(10, 2, 0, 0), 15, NULL), SG_ENOENT);
	/* Removing a middle node keeps what is below and above it. */
	assert_int_equal(wg_allowedips_remove(t, AF_INET, V4(10, 1, 0, 0), 16, PB), 0);
	LOOK4(PA, 10, 1, 2, 3);
	LOOK4(PC, 10, 1, 1, 3);
	LOOK4(PD, 10, 1, 128, 3);
	assert_int_equal(wg_allowedips_remove(t, AF_INET, V4(10, 1, 0, 0), 16, PB), SG_ENOENT);
	/* Removing the top keeps the leaves. */
	assert_int_equal(wg_allowedips_remove(t, AF_INET, V4(10, 0, 0, 0), 8, NULL), 0);
	LOOK4(NULL, 10, 1, 2, 3);
	LOOK4(PC, 10, 1, 1, 3);
	LOOK4(PE, 10, 3, 0, 1);
	assert_int_equal(wg_allowedips_count(t), 4);
	check_node_bound();
	assert_int_equal(wg_allowedips_remove(t, AF_INET, V4(10, 1, 1, 0), 24, PC), 0);
	assert_int_equal(wg_allowedips_remove(t, AF_INET, V4(10, 1, 128, 0), 24, PD), 0);
	assert_int_equal(wg_allowedips_remove(t, AF_INET, V4(10, 2, 0, 0), 24, PE), 0);
	check_node_bound();
	assert_int_equal(wg_allowedips_remove(t, AF_INET, V4(10, 3, 0, 0), 24, PE), 0);
	assert_int_equal(wg_allowedips_count(t), 0);
	assert_int_equal(wg_allowedips_node_count(t), 0);
	LOOK4(NULL, 10, 3, 0, 1);
}

static void test_remove_by_owner(void **state)
{
	(void)state;
	for (int i = 0; i < 32; i++) {
		INS4(i % 2 ? PA : PB, 10, (uint8_t)i, 0, 0, 16);
		INS6(i % 3 ? PA : PC, 0xfd000000 | (uint32_t)i << 8, 0, 0, 0, 24);
	}
	INS4(PA, 0, 0, 0, 0, 0);
	INS4(PB, 10, 0, 0, 0, 8);
	size_t before = wg_allowedips_count(t);
	wg_allowedips_remove_by_owner(t, PA);
	assert_int_equal(wg_allowedips_count(t), before - 16 - 21 - 1);
	check_node_bound();
	for (int i = 0; i < 32; i++) {
		LOOK4(PB, 10, (uint8_t)i, 1, 1); /* odd ones fall back to the /8 of PB */
		LOOK6(i % 3 ? NULL : PC, 0xfd000000 | (uint32_t)i << 8, 0, 0, 1);
	}
	LOOK4(NULL, 11, 0, 0, 0);
	wg_allowedips_remove_by_owner(t, NULL); /* owns nothing */
	wg_allowedips_remove_by_owner(t, PB);
	wg_allowedips_remove_by_owner(t, PC);
	assert_int_equal(wg_allowedips_count(t), 0);
	assert_int_equal(wg_allowedips_node_count(t), 0);
}

static void test_walk_order_and_stop(void **state)
{
	(void)state;
	/* Inserted in scrambled order, with other owners interleaved. */
	INS6(PA, 0x20010db8, 0, 0, 0, 32);
	INS4(PA, 192, 168, 0, 0, 16);
	INS4(PB, 192, 168, 1, 0, 24);
	INS4(PA, 10, 0, 0, 0, 8);
	INS6(PA, 0, 0, 0, 0, 0);
	INS4(PA, 10, 0, 0, 0, 16);
	INS4(PA, 192, 168, 0, 1, 32);
	INS6(PB, 0x20010db8, 0, 0, 0, 48);
	INS6(PA, 0x20010db8, 0x80000000, 0, 0, 33);
	INS4(PA, 10, 0, 0, 0, 24);
	INS4(PA, 9, 255, 255, 255, 32);
	INS6(PA, 0xfe800000, 0, 0, 0, 10);

	struct walk_ctx w = {.n = 0};
	assert_int_equal(wg_allowedips_walk_owner(t, PA, collect, &w), 0);
	assert_int_equal(w.n, 10);
	assert_walked(&w.items[0], AF_INET, V4(9, 255, 255, 255), 32);
	assert_walked(&w.items[1], AF_INET, V4(10, 0, 0, 0), 8);
	assert_walked(&w.items[2], AF_INET, V4(10, 0, 0, 0), 16);
	assert_walked(&w.items[3], AF_INET, V4(10, 0, 0, 0), 24);
	assert_walked(&w.items[4], AF_INET, V4(192, 168, 0, 0), 16);
	assert_walked(&w.items[5], AF_INET, V4(192, 168, 0, 1), 32);
	assert_walked(&w.items[6], AF_INET6, V6(0, 0, 0, 0), 0);
	assert_walked(&w.items[7], AF_INET6, V6(0x20010db8, 0, 0, 0), 32);
	assert_walked(&w.items[8], AF_INET6, V6(0x20010db8, 0x80000000, 0, 0), 33);
	assert_walked(&w.items[9], AF_INET6, V6(0xfe800000, 0, 0, 0), 10);

	/* Early stop: the callback's value comes back, nothing more is visited. */
	for (size_t stop = 1; stop <= 10; stop++) {
		struct walk_ctx s = {.n = 0, .stop_after = stop};

		assert_int_equal(wg_allowedips_walk_owner(t, PA, collect, &s), 7);
		assert_int_equal(s.n, stop);
		assert_memory_equal(s.items, w.items, stop * sizeof(s.items[0]));
	}
	/* Owner with nothing, and the other owner. */
	w.n = 0;
	assert_int_equal(wg_allowedips_walk_owner(t, PC, collect, &w), 0);
	assert_int_equal(w.n, 0);
	assert_int_equal(wg_allowedips_walk_owner(t, PB, collect, &w), 0);
	assert_int_equal(w.n, 2);
	assert_walked(&w.items[0], AF_INET, V4(192, 168, 1, 0), 24);
	assert_walked(&w.items[1], AF_INET6, V6(0x20010db8, 0, 0, 0), 48);
}

/* ---- the Linux selftest's classic cases ---------------------------------------------------- */

static void test_kernel_classic(void **state)
{
	(void)state;
	INS4(PA, 192, 168, 4, 0, 24);
	INS4(PB, 192, 168, 4, 4, 32);
	INS4(PC, 192, 168, 0, 0, 16);
	INS4(PD, 192, 95, 5, 64, 27);
	INS4(PC, 192, 95, 5, 65, 27); /* replaces the previous one; needs masking */
	INS6(PD, 0x26075300, 0x60006b00, 0, 0xc05f0543, 128);
	INS6(PC, 0x26075300, 0x60006b00, 0, 0, 64);
	INS4(PE, 0, 0, 0, 0, 0);
	INS6(PE, 0, 0, 0, 0, 0);
	INS6(PF, 0, 0, 0, 0, 0); /* replaces the previous one */
	INS6(PG, 0x24046800, 0, 0, 0, 32);
	INS6(PH, 0x24046800, 0x40040800, 0xdeadbeef, 0xdeadbeef, 64); /* needs masking */
	INS6(PA, 0x24046800, 0x40040800, 0xdeadbeef, 0xdeadbeef, 128);
	INS6(PC, 0x24446800, 0x40e40800, 0xdeaebeef, 0xdefbeef, 128);
	INS6(PB, 0x24446800, 0xf0e40800, 0xeeaebeef, 0, 98);
	INS4(PG, 64, 15, 112, 0, 20);
	INS4(PH, 64, 15, 123, 211, 25); /* needs masking */
	INS4(PA, 10, 0, 0, 0, 25);
	INS4(PB, 10, 0, 0, 128, 25);
	INS4(PA, 10, 1, 0, 0, 30);
	INS4(PB, 10, 1, 0, 4, 30);
	INS4(PC, 10, 1, 0, 8, 29);
	INS4(PD, 10, 1, 0, 16, 29);

	LOOK4(PA, 192, 168, 4, 20);
	LOOK4(PA, 192, 168, 4, 0);
	LOOK4(PB, 192, 168, 4, 4);
	LOOK4(PC, 192, 168, 200, 182);
	LOOK4(PC, 192, 95, 5, 68);
	LOOK4(PE, 192, 95, 5, 96);
	LOOK6(PD, 0x26075300, 0x60006b00, 0, 0xc05f0543);
	LOOK6(PC, 0x26075300, 0x60006b00, 0, 0xc02e01ee);
	LOOK6(PF, 0x26075300, 0x60006b01, 0, 0);
	LOOK6(PG, 0x24046800, 0x40040806, 0, 0x1006);
	LOOK6(PG, 0x24046800, 0x40040806, 0x1234, 0x5678);
	LOOK6(PF, 0x240467ff, 0x40040806, 0x1234, 0x5678);
	LOOK6(PF, 0x24046801, 0x40040806, 0x1234, 0x5678);
	LOOK6(PH, 0x24046800, 0x40040800, 0x1234, 0x5678);
	LOOK6(PH, 0x24046800, 0x40040800, 0, 0);
	LOOK6(PH, 0x24046800, 0x40040800, 0x10101010, 0x10101010);
	LOOK6(PA, 0x24046800, 0x40040800, 0xdeadbeef, 0xdeadbeef);
	LOOK4(PG, 64, 15, 116, 26);
	LOOK4(PG, 64, 15, 127, 3);
	LOOK4(PG, 64, 15, 123, 1);
	LOOK4(PH, 64, 15, 123, 128);
	LOOK4(PH, 64, 15, 123, 129);
	LOOK4(PA, 10, 0, 0, 52);
	LOOK4(PB, 10, 0, 0, 220);
	LOOK4(PA, 10, 1, 0, 2);
	LOOK4(PB, 10, 1, 0, 6);
	LOOK4(PC, 10, 1, 0, 10);
	LOOK4(PD, 10, 1, 0, 20);
	check_node_bound();

	INS4(PA, 1, 0, 0, 0, 32);
	INS4(PA, 64, 0, 0, 0, 32);
	INS4(PA, 128, 0, 0, 0, 32);
	INS4(PA, 192, 0, 0, 0, 32);
	INS4(PA, 255, 0, 0, 0, 32);
	wg_allowedips_remove_by_owner(t, PA);
	assert_ptr_not_equal(wg_allowedips_lookup(t, AF_INET, V4(1, 0, 0, 0)), PA);
	assert_ptr_not_equal(wg_allowedips_lookup(t, AF_INET, V4(64, 0, 0, 0)), PA);
	assert_ptr_not_equal(wg_allowedips_lookup(t, AF_INET, V4(128, 0, 0, 0)), PA);
	assert_ptr_not_equal(wg_allowedips_lookup(t, AF_INET, V4(192, 0, 0, 0)), PA);
	assert_ptr_not_equal(wg_allowedips_lookup(t, AF_INET, V4(255, 0, 0, 0)), PA);
	check_node_bound();

	wg_allowedips_clear(t);
	assert_int_equal(wg_allowedips_node_count(t), 0);
	INS4(PA, 192, 168, 0, 0, 16);
	INS4(PA, 192, 168, 0, 0, 24);
	wg_allowedips_remove_by_owner(t, PA);
	LOOK4(NULL, 192, 168, 0, 1);
	assert_int_equal(wg_allowedips_node_count(t), 0);

	/* 128 host routes that each differ from all-ones in one bit: the deepest tree shape. */
	for (unsigned i = 0; i < 128; i++) {
		uint8_t ip[16];

		memset(ip, 0xff, sizeof(ip));
		ip[i / 8] = (uint8_t) ~(0x80u >> (i % 8));
		ins(AF_INET6, ip, 128, PA, __LINE__);
	}
	assert_int_equal(wg_allowedips_count(t), 128);
	check_node_bound();
	for (unsigned i = 0; i < 128; i++) {
		uint8_t ip[16];

		memset(ip, 0xff, sizeof(ip));
		ip[i / 8] = (uint8_t) ~(0x80u >> (i % 8));
		look(AF_INET6, ip, PA, __LINE__);
		ip[15] ^= (i == 127) ? 0x02 : 0x01;
		look(AF_INET6, ip, NULL, __LINE__);
	}
	wg_allowedips_clear(t);

	/* Walk of one owner's mixed prefixes, as masked network addresses. */
	INS4(PA, 192, 95, 5, 93, 27);
	INS6(PA, 0x26075300, 0x60006b00, 0, 0xc05f0543, 128);
	INS4(PA, 10, 1, 0, 20, 29);
	INS6(PA, 0x26075300, 0x6d8a6bf8, 0xdab1f1df, 0xc05f1523, 83);
	INS6(PA, 0x26075300, 0x6d8a6bf8, 0xdab1f1df, 0xc05f1523, 21);
	struct walk_ctx w = {.n = 0};
	assert_int_equal(wg_allowedips_walk_owner(t, PA, collect, &w), 0);
	assert_int_equal(w.n, 5);
	assert_walked(&w.items[0], AF_INET, V4(10, 1, 0, 16), 29);
	assert_walked(&w.items[1], AF_INET, V4(192, 95, 5, 64), 27);
	assert_walked(&w.items[2], AF_INET6, V6(0x26075000, 0, 0, 0), 21);
	assert_walked(&w.items[3], AF_INET6, V6(0x26075300, 0x60006b00, 0, 0xc05f0543), 128);
	assert_walked(&w.items[4], AF_INET6, V6(0x26075300, 0x6d8a6bf8, 0xdab1e000, 0), 83);
}

/* ---- randomised comparison with a naive table ---------------------------------------------- */

struct ref_entry {
	int family;
	uint8_t addr[16]; /* masked */
	uint8_t cidr;
	void *owner;
};

struct ref {
	struct ref_entry *e;
	size_t n, cap;
};

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* splitmix64 with a fixed seed: failures reproduce */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void mask_bytes(uint8_t *a, unsigned len, unsigned cidr)
{
	for (unsigned i = 0; i < len; i++) {
		if (cidr >= 8 * (i + 1))
			continue;
		a[i] &= cidr <= 8 * i ? 0 : (uint8_t)(0xff00u >> (cidr - 8 * i));
	}
}

static bool ref_covers(const struct ref_entry *e, int family, const uint8_t *addr)
{
	unsigned len = family == AF_INET ? 4 : 16;
	uint8_t m[16];

	if (e->family != family)
		return false;
	memcpy(m, addr, len);
	mask_bytes(m, len, e->cidr);
	return memcmp(m, e->addr, len) == 0;
}

static struct ref_entry *ref_find(struct ref *r, int family, const uint8_t *masked, uint8_t cidr)
{
	for (size_t i = 0; i < r->n; i++) {
		struct ref_entry *e = &r->e[i];

		if (e->family == family && e->cidr == cidr &&
		    !memcmp(e->addr, masked, family == AF_INET ? 4 : 16))
			return e;
	}
	return NULL;
}

static void ref_insert(struct ref *r, int family, const uint8_t *addr, uint8_t cidr, void *owner)
{
	struct ref_entry k = {.family = family, .cidr = cidr, .owner = owner}, *e;

	memcpy(k.addr, addr, family == AF_INET ? 4 : 16);
	mask_bytes(k.addr, family == AF_INET ? 4 : 16, cidr);
	e = ref_find(r, family, k.addr, cidr);
	if (e) {
		e->owner = owner;
		return;
	}
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 256;
		r->e = realloc(r->e, r->cap * sizeof(*r->e));
		assert_non_null(r->e);
	}
	r->e[r->n++] = k;
}

static int ref_remove(struct ref *r, int family, const uint8_t *addr, uint8_t cidr, void *owner)
{
	uint8_t m[16] = {0};
	struct ref_entry *e;

	memcpy(m, addr, family == AF_INET ? 4 : 16);
	mask_bytes(m, family == AF_INET ? 4 : 16, cidr);
	e = ref_find(r, family, m, cidr);
	if (!e || (owner && e->owner != owner))
		return SG_ENOENT;
	*e = r->e[--r->n];
	return 0;
}

static void ref_remove_owner(struct ref *r, void *owner)
{
	for (size_t i = 0; i < r->n;) {
		if (r->e[i].owner == owner)
			r->e[i] = r->e[--r->n];
		else
			i++;
	}
}

/* Longest match by scanning; *covering = how many prefixes contain addr. */
static void *ref_lookup(const struct ref *r, int family, const uint8_t *addr, unsigned *covering)
{
	const struct ref_entry *best = NULL;

	*covering = 0;
	for (size_t i = 0; i < r->n; i++) {
		if (!ref_covers(&r->e[i], family, addr))
			continue;
		++*covering;
		if (!best || r->e[i].cidr > best->cidr)
			best = &r->e[i];
	}
	return best ? best->owner : NULL;
}

static int cmp_entry(const void *pa, const void *pb)
{
	const struct ref_entry *a = pa, *b = pb;
	int c;

	if (a->family != b->family)
		return a->family == AF_INET ? -1 : 1;
	c = memcmp(a->addr, b->addr, 16);
	if (c)
		return c;
	return (int)a->cidr - (int)b->cidr;
}

/* Walking each owner yields exactly the reference's entries of that owner, sorted. */
static void compare_walks(const struct ref *r, char *owners, size_t nowners)
{
	struct ref_entry *sorted = calloc(r->n + 1, sizeof(*sorted));

	assert_non_null(sorted);
	for (size_t o = 0; o < nowners; o++) {
		struct walk_ctx *w = calloc(1, sizeof(*w));
		size_t k = 0;

		assert_non_null(w);
		for (size_t i = 0; i < r->n; i++) {
			if (r->e[i].owner == &owners[o])
				sorted[k++] = r->e[i];
		}
		assert_true(k <= SG_ARRAY_LEN(w->items));
		qsort(sorted, k, sizeof(*sorted), cmp_entry);
		assert_int_equal(wg_allowedips_walk_owner(t, &owners[o], collect, w), 0);
		assert_int_equal(w->n, k);
		for (size_t i = 0; i < k; i++)
			assert_walked(&w->items[i], sorted[i].family, sorted[i].addr,
				      sorted[i].cidr);
		free(w);
	}
	free(sorted);
}

/* A random address near one of a few bases, so that prefixes overlap and nest. */
static void random_addr(uint8_t *a, unsigned len, const uint8_t bases[][16], size_t nbases)
{
	const uint8_t *b = bases[rnd() % nbases];
	unsigned keep = (unsigned)(rnd() % (8 * len + 1));

	for (unsigned i = 0; i < len; i++)
		a[i] = (uint8_t)rnd();
	/* keep the first `keep` bits of the base */
	for (unsigned i = 0; i < len; i++) {
		uint8_t m = keep >= 8 * (i + 1) ? 0xff
			    : keep <= 8 * i	? 0
						: (uint8_t)(0xff00u >> (keep - 8 * i));

		a[i] = (uint8_t)((b[i] & m) | (a[i] & ~m));
	}
}

static uint8_t random_cidr(unsigned bits)
{
	uint64_t r = rnd() % 20;

	/* Favour the extremes and the common lengths, spread the rest over the longer half:
	 * short prefixes (and default routes above all) are rare, or every lookup would hit. */
	if (r == 0)
		return rnd() % 10 ? (uint8_t)(1 + rnd() % (bits / 4)) : 0;
	if (r <= 2)
		return (uint8_t)bits;
	if (r <= 4)
		return (uint8_t)(bits == 32 ? 24 : 64);
	return (uint8_t)(bits / 4 + rnd() % (3 * bits / 4 + 1));
}

static void test_random_vs_reference(void **state)
{
	const size_t nowners = 12;
	const unsigned rounds = 60000;
	uint8_t bases[8][16];
	struct ref r = {0};
	unsigned lookups = 0, hits = 0, nested = 0, covering;

	(void)state;
	rng_state = 0x5eed5eedULL;
	for (size_t i = 0; i < SG_ARRAY_LEN(bases); i++)
		for (size_t j = 0; j < 16; j++)
			bases[i][j] = (uint8_t)rnd();

	for (unsigned k = 0; k < rounds; k++) {
		int family = rnd() % 2 ? AF_INET : AF_INET6;
		unsigned len = family == AF_INET ? 4 : 16;
		uint8_t a[16];
		uint64_t op = rnd() % 100;
		void *owner = &peers[rnd() % nowners];

		/* mostly near the bases, sometimes anywhere */
		random_addr(a, len, (const uint8_t(*)[16])bases, SG_ARRAY_LEN(bases));
		if (rnd() % 4 == 0) {
			for (unsigned i = 0; i < len; i++)
				a[i] = (uint8_t)rnd();
		}
		if (op < 35 && r.n < 1500) {
			uint8_t cidr = random_cidr(8 * len);

			assert_int_equal(wg_allowedips_insert(t, family, a, cidr, owner), 0);
			ref_insert(&r, family, a, cidr, owner);
		} else if (op < 55) {
			/* remove something that exists (half the time) or random */
			uint8_t cidr = random_cidr(8 * len);
			void *who = rnd() % 3 ? owner : NULL;

			if (r.n && rnd() % 2) {
				struct ref_entry *e = &r.e[rnd() % r.n];

				family = e->family;
				memcpy(a, e->addr, 16);
				cidr = e->cidr;
				if (rnd() % 2)
					who = e->owner;
			}
			assert_int_equal(wg_allowedips_remove(t, family, a, cidr, who),
					 ref_remove(&r, family, a, cidr, who));
		} else if (op < 56) {
			wg_allowedips_remove_by_owner(t, owner);
			ref_remove_owner(&r, owner);
		} else if (op < 58) {
			/* drop the default route, if any, so that misses happen too */
			memset(a, 0, sizeof(a));
			assert_int_equal(wg_allowedips_remove(t, family, a, 0, NULL),
					 ref_remove(&r, family, a, 0, NULL));
		} else {
			void *want = ref_lookup(&r, family, a, &covering);
			void *got = wg_allowedips_lookup(t, family, a);

			if (want != got)
				fail_msg("round %u: lookup mismatch: reference %td, trie %td", k,
					 want ? (char *)want - peers : -1,
					 got ? (char *)got - peers : -1);
			lookups++;
			hits += want != NULL;
			nested += covering >= 2;
		}
		assert_int_equal(wg_allowedips_count(t), r.n);
		if (k % 1000 == 0) {
			check_node_bound();
			compare_walks(&r, peers, nowners);
		}
	}
	/* The comparison must have exercised both answers. */
	assert_true(lookups > rounds / 3);
	assert_true(hits > lookups / 4);
	assert_true(lookups - hits > lookups / 20);
	assert_true(nested > lookups / 4);

	/* Drain everything through exact removals: the trie must end empty. */
	compare_walks(&r, peers, nowners);
	while (r.n) {
		struct ref_entry e = r.e[r.n - 1];

		assert_int_equal(wg_allowedips_remove(t, e.family, e.addr, e.cidr, e.owner), 0);
		r.n--;
	}
	assert_int_equal(wg_allowedips_count(t), 0);
	assert_int_equal(wg_allowedips_node_count(t), 0);
	free(r.e);
}

static size_t ref_owned(const struct ref *r, const void *owner)
{
	size_t k = 0;

	for (size_t i = 0; i < r->n; i++)
		k += r->e[i].owner == owner;
	return k;
}

/* Hundreds of owners (a few of them large, so that walks sort both on the stack and in a heap
 * array), prefixes moving between them one at a time and owner to owner, per-owner walks and
 * removals compared with the reference, and the owner index checked along the way. */
static void test_random_many_owners(void **state)
{
	static char owners[400];
	const size_t nowners = SG_ARRAY_LEN(owners);
	const unsigned rounds = 30000;
	uint8_t bases[4][16];
	struct ref r = {0};
	unsigned moves = 0, bulk = 0, dropped = 0, covering;
	size_t order[SG_ARRAY_LEN(owners)];

	(void)state;
	rng_state = 0x0a11ce5ULL;
	for (size_t i = 0; i < SG_ARRAY_LEN(bases); i++)
		for (size_t j = 0; j < 16; j++)
			bases[i][j] = (uint8_t)rnd();

	for (unsigned k = 0; k < rounds; k++) {
		int family = rnd() % 2 ? AF_INET : AF_INET6;
		unsigned len = family == AF_INET ? 4 : 16;
		/* a quarter of the traffic goes to 8 large owners */
		char *owner = &owners[rnd() % 4 ? rnd() % nowners : rnd() % 8];
		uint64_t op = rnd() % 100;
		uint8_t a[16] = {0};

		random_addr(a, len, (const uint8_t(*)[16])bases, SG_ARRAY_LEN(bases));
		if (op < 30 && r.n < 1500) {
			uint8_t cidr = random_cidr(8 * len);

			assert_int_equal(wg_allowedips_insert(t, family, a, cidr, owner), 0);
			ref_insert(&r, family, a, cidr, owner);
		} else if (op < 50 && r.n) {
			/* move an existing prefix to another owner, if it has room to be walked */
			struct ref_entry *e = &r.e[rnd() % r.n];

			if (ref_owned(&r, owner) < 200) {
				moves += e->owner != owner;
				assert_int_equal(
				    wg_allowedips_insert(t, e->family, e->addr, e->cidr, owner), 0);
				e->owner = owner;
			}
		} else if (op < 52) {
			/* one owner takes over all of another's prefixes (a re-keyed peer) */
			char *from = &owners[rnd() % nowners];

			if (from != owner && ref_owned(&r, owner) + ref_owned(&r, from) <= 200) {
				for (size_t i = 0; i < r.n; i++) {
					struct ref_entry *e = &r.e[i];

					if (e->owner != from)
						continue;
					assert_int_equal(wg_allowedips_insert(t, e->family, e->addr,
									      e->cidr, owner),
							 0);
					e->owner = owner;
				}
				bulk++;
				struct walk_ctx w = {.n = 0};
				assert_int_equal(wg_allowedips_walk_owner(t, from, collect, &w), 0);
				assert_int_equal(w.n, 0);
			}
		} else if (op < 65 && r.n) {
			struct ref_entry e = r.e[rnd() % r.n];
			void *who = rnd() % 2 ? e.owner : owner;

			assert_int_equal(wg_allowedips_remove(t, e.family, e.addr, e.cidr, who),
					 ref_remove(&r, e.family, e.addr, e.cidr, who));
		} else if (op < 68) {
			dropped += ref_owned(&r, owner) != 0;
			wg_allowedips_remove_by_owner(t, owner);
			ref_remove_owner(&r, owner);
			struct walk_ctx w = {.n = 0};
			assert_int_equal(wg_allowedips_walk_owner(t, owner, collect, &w), 0);
			assert_int_equal(w.n, 0);
		} else {
			void *want = ref_lookup(&r, family, a, &covering);

			assert_ptr_equal(wg_allowedips_lookup(t, family, a), want);
		}
		assert_int_equal(wg_allowedips_count(t), r.n);
		if (k % 100 == 0)
			CHECK_CONSISTENT();
		if (k % 3000 == 0)
			compare_walks(&r, owners, nowners);
	}
	assert_true(moves > rounds / 10);
	assert_true(bulk > rounds / 200);
	assert_true(dropped > rounds / 100);
	compare_walks(&r, owners, nowners);
	check_node_bound();

	/* Remove every owner in a shuffled order, as a replacing setconf does. */
	for (size_t i = 0; i < nowners; i++)
		order[i] = i;
	for (size_t i = nowners - 1; i > 0; i--) {
		size_t j = rnd() % (i + 1), x = order[i];

		order[i] = order[j];
		order[j] = x;
	}
	for (size_t i = 0; i < nowners; i++) {
		char *o = &owners[order[i]];

		wg_allowedips_remove_by_owner(t, o);
		ref_remove_owner(&r, o);
		assert_int_equal(wg_allowedips_count(t), r.n);
		if (i % 40 == 0) {
			check_node_bound();
			compare_walks(&r, owners, nowners);
		}
	}
	assert_int_equal(wg_allowedips_count(t), 0);
	assert_int_equal(wg_allowedips_node_count(t), 0);
	CHECK_CONSISTENT();
	free(r.e);
}

/* Many insert/remove cycles over random prefixes leave nothing behind. */
static void test_add_remove_cycles(void **state)
{
	uint8_t addrs[200][16], cidrs[200];
	int fams[200];

	(void)state;
	rng_state = 0xc0ffeeULL;
	for (unsigned cycle = 0; cycle < 50; cycle++) {
		for (unsigned i = 0; i < 200; i++) {
			fams[i] = i % 2 ? AF_INET : AF_INET6;
			for (unsigned j = 0; j < 16; j++)
				addrs[i][j] = (uint8_t)rnd();
			cidrs[i] = (uint8_t)(rnd() % (fams[i] == AF_INET ? 33 : 129));
			assert_int_equal(wg_allowedips_insert(t, fams[i], addrs[i], cidrs[i], PA),
					 0);
		}
		check_node_bound();
		if (cycle % 2) {
			/* Exact removal; duplicates among the random prefixes are ENOENT the
			 * second time, so removal is counted rather than asserted one by one. */
			for (unsigned i = 0; i < 200; i++)
				(void)wg_allowedips_remove(t, fams[i], addrs[i], cidrs[i], NULL);
		} else {
			wg_allowedips_remove_by_owner(t, PA);
		}
		assert_int_equal(wg_allowedips_count(t), 0);
		assert_int_equal(wg_allowedips_node_count(t), 0);
	}
}

/* ---- allocation failures ------------------------------------------------------------------- */

struct fail_alloc {
	long fail_at; /* allocation number that fails (0-based), -1 = never */
	long calls;
	long live;
};

static void *fa_zalloc(void *ctx, size_t size)
{
	struct fail_alloc *fa = ctx;

	if (fa->calls++ == fa->fail_at)
		return NULL;
	fa->live++;
	return calloc(1, size);
}

static void fa_free(void *ctx, void *ptr)
{
	struct fail_alloc *fa = ctx;

	fa->live--;
	free(ptr);
}

static void test_enomem(void **state)
{
	struct fail_alloc fa = {.fail_at = 0};
	const struct wg_allowedips_allocator alloc = {&fa, fa_zalloc, fa_free};

	(void)state;
	assert_null(wg_allowedips_new_with_allocator(&alloc));
	assert_int_equal(fa.live, 0);

	/* Swap the fixture's table for one that fails on demand. */
	wg_allowedips_free(t);
	fa.fail_at = -1;
	t = wg_allowedips_new_with_allocator(&alloc);
	assert_non_null(t);
	INS4(PA, 10, 0, 0, 0, 24);
	INS4(PB, 10, 0, 1, 0, 24); /* under a branch node 10.0.0.0/23 */
	INS6(PC, 0x20010db8, 0, 0, 0, 32);
	size_t count = wg_allowedips_count(t), nodes = wg_allowedips_node_count(t);

	/* 10.0.2.0/24 needs a new node and a new branch node: fail either allocation. */
	for (long which = 0; which < 2; which++) {
		fa.fail_at = fa.calls + which;
		assert_int_equal(wg_allowedips_insert(t, AF_INET, V4(10, 0, 2, 0), 24, PD),
				 SG_ENOMEM);
		assert_int_equal(wg_allowedips_count(t), count);
		assert_int_equal(wg_allowedips_node_count(t), nodes);
		LOOK4(PA, 10, 0, 0, 1);
		LOOK4(PB, 10, 0, 1, 1);
		LOOK4(NULL, 10, 0, 2, 1);
		struct walk_ctx w = {.n = 0};
		assert_int_equal(wg_allowedips_walk_owner(t, PB, collect, &w), 0);
		assert_int_equal(w.n, 1);
		assert_walked(&w.items[0], AF_INET, V4(10, 0, 1, 0), 24);
	}
	/* A new leaf and a node above an existing one need one allocation each. */
	fa.fail_at = fa.calls;
	assert_int_equal(wg_allowedips_insert(t, AF_INET6, V6(0x20010db8, 1, 0, 0), 64, PD),
			 SG_ENOMEM);
	fa.fail_at = fa.calls;
	assert_int_equal(wg_allowedips_insert(t, AF_INET, V4(10, 0, 0, 0), 8, PD), SG_ENOMEM);
	fa.fail_at = fa.calls;
	assert_int_equal(wg_allowedips_insert(t, AF_INET, V4(1, 0, 0, 0), 8, PD), SG_ENOMEM);
	assert_int_equal(wg_allowedips_count(t), count);
	assert_int_equal(wg_allowedips_node_count(t), nodes);
	LOOK4(NULL, 10, 1, 0, 0);
	LOOK6(PC, 0x20010db8, 1, 0, 0);

	/* Re-owning a prefix or a branch node allocates no node (and PD fits the owner index). */
	fa.fail_at = fa.calls;
	INS4(PD, 10, 0, 0, 0, 24);
	INS4(PD, 10, 0, 0, 0, 23);
	assert_int_equal(wg_allowedips_count(t), count + 1);
	assert_int_equal(wg_allowedips_node_count(t), nodes);
	LOOK4(PD, 10, 0, 0, 1);

	/* With memory back, the insert works, and freeing returns every allocation. */
	fa.fail_at = -1;
	INS4(PD, 10, 0, 2, 0, 24);
	LOOK4(PD, 10, 0, 2, 1);
	wg_allowedips_free(t);
	t = NULL;
	assert_int_equal(fa.live, 0);
}

/* The table unchanged after a failed insert: same counts, same lookup answers, same walk. */
struct snapshot {
	size_t count, nodes;
	struct walk_ctx walk;
};

static void snap(struct snapshot *s, const void *owner)
{
	s->count = wg_allowedips_count(t);
	s->nodes = wg_allowedips_node_count(t);
	memset(&s->walk, 0, sizeof(s->walk));
	assert_int_equal(wg_allowedips_walk_owner(t, owner, collect, &s->walk), 0);
}

static void assert_unchanged(const struct snapshot *s, const void *owner)
{
	struct snapshot now;

	snap(&now, owner);
	assert_int_equal(now.count, s->count);
	assert_int_equal(now.nodes, s->nodes);
	assert_int_equal(now.walk.n, s->walk.n);
	for (size_t i = 0; i < s->walk.n; i++)
		assert_walked(&now.walk.items[i], s->walk.items[i].family, s->walk.items[i].addr,
			      s->walk.items[i].cidr);
	CHECK_CONSISTENT();
}

/* The owner index grows as owners arrive: when it must and cannot, even moving an existing
 * prefix to a new owner fails cleanly; it shrinks as they leave, ignoring failures; and a walk
 * that cannot allocate its sort array still answers in order. */
static void test_enomem_owner_index(void **state)
{
	struct fail_alloc fa = {.fail_at = -1};
	const struct wg_allowedips_allocator alloc = {&fa, fa_zalloc, fa_free};
	static char owners[60];
	unsigned growth_failures = 0;
	struct snapshot before;

	(void)state;
	wg_allowedips_free(t);
	t = wg_allowedips_new_with_allocator(&alloc);
	assert_non_null(t);
	/* owners[0] holds 10.0.0.i/32 for every i */
	for (unsigned i = 0; i < SG_ARRAY_LEN(owners); i++)
		ins(AF_INET, V4(10, 0, 0, (uint8_t)i), 32, &owners[0], __LINE__);

	/* Move 10.0.0.i to owners[i], each the first prefix of a new owner, with no memory at
	 * all: only a move that needs the index to grow may fail, and then nothing changes. */
	for (unsigned i = 1; i < SG_ARRAY_LEN(owners); i++) {
		const uint8_t *a = V4(10, 0, 0, (uint8_t)i);
		int ret;

		snap(&before, &owners[0]);
		fa.fail_at = fa.calls;
		ret = wg_allowedips_insert(t, AF_INET, a, 32, &owners[i]);
		if (ret) {
			assert_int_equal(ret, SG_ENOMEM);
			assert_int_equal(fa.calls, fa.fail_at + 1); /* it did try */
			growth_failures++;
			assert_unchanged(&before, &owners[0]);
			LOOK4(&owners[0], 10, 0, 0, (uint8_t)i);
			fa.fail_at = -1;
			ins(AF_INET, a, 32, &owners[i], __LINE__);
		}
		LOOK4(&owners[i], 10, 0, 0, (uint8_t)i);
		assert_int_equal(wg_allowedips_count(t), SG_ARRAY_LEN(owners));
	}
	/* 60 owners cannot fit the initial index: it grew more than once. */
	assert_true(growth_failures >= 2);
	CHECK_CONSISTENT();

	/* A new prefix for a new owner: fail each allocation in turn until the insert fits. */
	unsigned failures = 0;
	char *newcomer = &owners[0];

	wg_allowedips_remove_by_owner(t, newcomer); /* owners[0] now holds only 10.0.0.0 */
	for (long which = 0;; which++) {
		int ret;

		snap(&before, newcomer);
		fa.fail_at = fa.calls + which;
		ret = wg_allowedips_insert(t, AF_INET, V4(10, 0, 1, 0), 24, newcomer);
		if (!ret)
			break;
		assert_int_equal(ret, SG_ENOMEM);
		assert_unchanged(&before, newcomer);
		LOOK4(NULL, 10, 0, 1, 1);
		failures++;
		assert_true(which < 8);
	}
	assert_true(failures >= 1);
	LOOK4(newcomer, 10, 0, 1, 1);
	fa.fail_at = -1;

	/* A walk with more prefixes than it sorts on the stack, with and without memory. */
	for (unsigned i = 0; i < 40; i++)
		ins(AF_INET6, V6(0x20010db8, 0, 0, 40 - i), 128, &owners[1], __LINE__);
	struct walk_ctx *w = calloc(2, sizeof(*w));

	assert_non_null(w);
	assert_int_equal(wg_allowedips_walk_owner(t, &owners[1], collect, &w[0]), 0);
	assert_int_equal(w[0].n, 41);
	assert_walked(&w[0].items[0], AF_INET, V4(10, 0, 0, 1), 32);
	for (unsigned i = 1; i <= 40; i++)
		assert_walked(&w[0].items[i], AF_INET6, V6(0x20010db8, 0, 0, i), 128);
	fa.fail_at = fa.calls;
	assert_int_equal(wg_allowedips_walk_owner(t, &owners[1], collect, &w[1]), 0);
	assert_int_equal(fa.calls, fa.fail_at + 1); /* the sort array was refused */
	assert_int_equal(w[1].n, w[0].n);
	assert_memory_equal(w[1].items, w[0].items, w[0].n * sizeof(w[0].items[0]));
	/* and an early stop in the fallback still returns the callback's value */
	w[1].n = 0;
	w[1].stop_after = 3;
	fa.fail_at = fa.calls;
	assert_int_equal(wg_allowedips_walk_owner(t, &owners[1], collect, &w[1]), 7);
	assert_int_equal(w[1].n, 3);
	assert_memory_equal(w[1].items, w[0].items, 3 * sizeof(w[0].items[0]));
	free(w);

	/* Owners leave one by one with no memory: shrinking the index fails and is skipped. */
	fa.fail_at = fa.calls;
	for (unsigned i = SG_ARRAY_LEN(owners) - 1; i >= 30; i--) {
		wg_allowedips_remove_by_owner(t, &owners[i]);
		LOOK4(NULL, 10, 0, 0, (uint8_t)i);
		fa.fail_at = fa.calls;
	}
	CHECK_CONSISTENT();
	/* With memory back the rest leave; an empty table holds no allocation but itself. */
	fa.fail_at = -1;
	for (unsigned i = 0; i < 30; i++) {
		wg_allowedips_remove_by_owner(t, &owners[i]);
		if (i % 5 == 0)
			CHECK_CONSISTENT();
	}
	assert_int_equal(wg_allowedips_count(t), 0);
	assert_int_equal(wg_allowedips_node_count(t), 0);
	assert_int_equal(fa.live, 1);
	CHECK_CONSISTENT();
	/* ... and works again from there. */
	INS4(PA, 10, 0, 0, 0, 8);
	LOOK4(PA, 10, 1, 1, 1);
	wg_allowedips_clear(t);
	assert_int_equal(fa.live, 1);
	wg_allowedips_free(t);
	t = NULL;
	assert_int_equal(fa.live, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_invalid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_overlapping, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_default_routes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_host_routes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_host_bits_masked, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_move_owner, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_remove_by_owner, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_walk_order_and_stop, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_kernel_classic, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_random_vs_reference, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_random_many_owners, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_add_remove_cycles, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_enomem, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_enomem_owner_index, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
