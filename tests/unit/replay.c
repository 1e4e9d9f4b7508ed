/* Unit tests for the anti-replay window (src/wg/replay.c).
 *
 * test_kernel_selftest replays, as facts, every case of the Linux driver's counter selftest
 * (drivers/net/wireguard/selftest/counter.c, Jason A. Donenfeld): which counters pass and which
 * fail, in order. The randomised tests compare against a naive reference: the set of counters
 * accepted so far and the greatest of them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wg/replay.h"

#define W   ((uint64_t)WG_REPLAY_WINDOW)
#define REJ ((uint64_t)WG_REJECT_AFTER_MESSAGES)

static struct wg_replay rp;

static void expect_counter(uint64_t counter, bool ok, unsigned line)
{
	bool got = wg_replay_check(&rp, counter);

	if (got != ok)
		fail_msg("line %u: counter %llu: expected %s, got %s", line,
			 (unsigned long long)counter, ok ? "accept" : "reject",
			 got ? "accept" : "reject");
}
#define T(n, v) expect_counter((n), (v), __LINE__)

static void test_constants(void **state)
{
	(void)state;
	assert_int_equal(WG_REPLAY_WINDOW, 8128);
	/* whitepaper 6.1: Reject-After-Messages = 2^64 - 2^13 - 1 */
	assert_true(REJ == UINT64_MAX - (1ULL << 13));
	assert_int_equal(sizeof(rp.bitmap) * 8, WG_REPLAY_BITS_TOTAL);
}

/* The Linux selftest, numbered as there; T_LIM = window + 1. */
static void test_kernel_selftest(void **state)
{
	const uint64_t lim = W + 1;
	uint64_t i;

	(void)state;
	wg_replay_init(&rp);
	T(0, true);		       /*  1 */
	T(1, true);		       /*  2 */
	T(1, false);		       /*  3 */
	T(9, true);		       /*  4 */
	T(8, true);		       /*  5 */
	T(7, true);		       /*  6 */
	T(7, false);		       /*  7 */
	T(lim, true);		       /*  8 */
	T(lim - 1, true);	       /*  9 */
	T(lim - 1, false);	       /* 10 */
	T(lim - 2, true);	       /* 11 */
	T(2, true);		       /* 12: exactly the window behind */
	T(2, false);		       /* 13 */
	T(lim + 16, true);	       /* 14 */
	T(3, false);		       /* 15: now too old */
	T(lim + 16, false);	       /* 16 */
	T(lim * 4, true);	       /* 17: jump beyond the whole ring */
	T(lim * 4 - (lim - 1), true);  /* 18 */
	T(10, false);		       /* 19 */
	T(lim * 4 - lim, false);       /* 20 */
	T(lim * 4 - (lim + 1), false); /* 21 */
	T(lim * 4 - (lim - 2), true);  /* 22 */
	T(lim * 4 + 1 - lim, false);   /* 23 */
	T(0, false);		       /* 24 */
	T(REJ, false);		       /* 25 */
	T(REJ - 1, true);	       /* 26 */
	T(REJ, false);		       /* 27 */
	T(REJ - 1, false);	       /* 28 */
	T(REJ - 2, true);	       /* 29 */
	T(REJ + 1, false);	       /* 30 */
	T(REJ + 2, false);	       /* 31 */
	T(REJ - 2, false);	       /* 32 */
	T(REJ - 3, true);	       /* 33 */
	T(0, false);		       /* 34 */

	/* A full window ascending from 1, then 0 is exactly at the edge. */
	wg_replay_init(&rp);
	for (i = 1; i <= W; ++i)
		T(i, true);
	T(0, true);
	T(0, false);

	/* Same, shifted by one: 0 falls out. */
	wg_replay_init(&rp);
	for (i = 2; i <= W + 1; ++i)
		T(i, true);
	T(1, true);
	T(0, false);

	/* Descending from the window size down to 0: all inside. */
	wg_replay_init(&rp);
	for (i = W + 1; i-- > 0;)
		T(i, true);

	/* Descending from window + 1 to 1: 0 is then one too far. */
	wg_replay_init(&rp);
	for (i = W + 2; i-- > 1;)
		T(i, true);
	T(0, false);

	/* Descending W..1, then W + 1 slides the window past 0. */
	wg_replay_init(&rp);
	for (i = W + 1; i-- > 1;)
		T(i, true);
	T(W + 1, true);
	T(0, false);

	/* Descending W..1, then 0 is still in, and W + 1 is new. */
	wg_replay_init(&rp);
	for (i = W + 1; i-- > 1;)
		T(i, true);
	T(0, true);
	T(W + 1, true);
}

/* Boundaries not spelled out by the selftest. */
static void test_edges(void **state)
{
	(void)state;
	/* The first counter may be anything below the limit. */
	wg_replay_init(&rp);
	T(REJ - 1, true);
	T(REJ - 1 - W, true);
	T(REJ - 2 - W, false);
	T(UINT64_MAX, false);

	/* Exactly the window behind the greatest is in, one more is out (and stays rejected,
	 * unrecorded, without moving the window). */
	wg_replay_init(&rp);
	T(100000, true);
	T(100000 - W - 1, false);
	T(100000 - W, true);
	T(100000 - W, false);
	T(100000 - W + 1, true);

	/* Jumps of one word, one ring minus a word, one ring, one ring plus a word: the bits of
	 * old counters must not leak into the new positions they alias in the ring. */
	const uint64_t jumps[] = {1, 63, 64, 65, 8128, 8129, 8191, 8192, 8193, 8256, 1 << 20};
	for (size_t j = 0; j < sizeof(jumps) / sizeof(jumps[0]); j++) {
		uint64_t base = 5000, top = base + jumps[j];

		wg_replay_init(&rp);
		for (uint64_t c = base - 4000; c <= base; c++)
			T(c, true);
		T(top, true);
		/* Every counter in the new window not yet seen is accepted exactly once. */
		for (uint64_t c = top > W ? top - W : 0; c < top; c++) {
			bool fresh = c < base - 4000 || c > base;

			if (!fresh)
				continue;
			T(c, true);
			T(c, false);
		}
		/* The old ones are rejected: replays if still in the window, too old if not. */
		for (uint64_t c = base - 4000; c <= base; c++)
			T(c, false);
	}
}

/* ---- randomised comparison with a naive reference ------------------------------------------ */

/* The reference: a plain bitmap of every counter accepted, offset by `base`, plus the greatest. */
struct ref {
	uint64_t base, span;
	uint8_t *seen;
	bool any;
	uint64_t greatest;
};

static bool ref_check(struct ref *f, uint64_t c)
{
	uint64_t i;

	if (c >= REJ)
		return false;
	if (f->any && c + W < f->greatest)
		return false;
	assert_true(c >= f->base && c - f->base < f->span);
	i = c - f->base;
	if (f->seen[i / 8] & (1u << (i % 8)))
		return false;
	f->seen[i / 8] |= (uint8_t)(1u << (i % 8));
	if (!f->any || c > f->greatest)
		f->greatest = c;
	f->any = true;
	return true;
}

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* splitmix64: fixed seed, reproducible failures */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A stream that mostly advances, reordered by up to `jitter`, with duplicates and occasional
 * (3%) jumps forwards of up to `jump`, starting at `base`. Unless `to_the_end`, all n steps run;
 * otherwise the stream may stop early when it leaves [base, base + span). */
static void run_stream(uint64_t seed, uint64_t base, uint64_t span, uint64_t jitter, uint64_t jump,
		       unsigned n, bool to_the_end)
{
	struct ref f = {.base = base, .span = span};
	uint64_t next = base, c;
	unsigned k, accepted = 0, rejected = 0;
	bool hit_limit = false;

	rng_state = seed;
	f.seen = calloc(span / 8 + 1, 1);
	assert_non_null(f.seen);
	wg_replay_init(&rp);
	for (k = 0; k < n; k++) {
		uint64_t r = rnd() % 100;

		if (r < 3 && jump)
			next += 1 + rnd() % jump;
		else if (r < 80)
			next++;
		c = next;
		if (r % 4 == 0 || r >= 80) {
			/* reordered or replayed: somewhere behind (possibly beyond the window) */
			uint64_t back = rnd() % (jitter + 1);

			c = next - (back < next - base ? back : next - base);
		}
		if (c - base >= span)
			break;
		hit_limit |= c >= REJ;
		bool want = ref_check(&f, c);
		bool got = wg_replay_check(&rp, c);
		if (want != got)
			fail_msg("seed %llu step %u: counter %llu: reference %d, window %d",
				 (unsigned long long)seed, k, (unsigned long long)c, want, got);
		if (got)
			accepted++;
		else
			rejected++;
	}
	free(f.seen);
	if (to_the_end)
		assert_true(hit_limit);
	else
		assert_int_equal(k, n);
	/* The streams must exercise both outcomes to mean anything. */
	assert_true(accepted >= k / 10);
	assert_true(rejected >= k / 200);
}

static void test_random_streams(void **state)
{
	const unsigned n = 100000;

	(void)state;
	for (uint64_t seed = 1; seed <= 8; seed++) {
		/* reordering within the window */
		run_stream(seed, 0, 2 * n, W / 2, 0, n, false);
		/* reordering around and beyond the window, jumps of up to 3 windows */
		run_stream(seed * 7919, 0, 2 * n + n / 25 * 3 * W, 2 * W, 3 * W, n, false);
		/* jumps of up to 20000 that often wipe the whole ring */
		run_stream(seed * 104729, 0, 2 * n + n / 25 * 20000, W + 200, 20000, n, false);
	}
	/* At the top of the counter space, where Reject-After-Messages bites: runs into it. */
	run_stream(42, REJ - 60000, 68000, 3 * W, 2 * W, n, true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_constants),
	    cmocka_unit_test(test_kernel_selftest),
	    cmocka_unit_test(test_edges),
	    cmocka_unit_test(test_random_streams),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
