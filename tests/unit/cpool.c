/* The crypto pool (src/engine/cpool.c): every op of every batch is sealed exactly once, by some
 * lane, whatever the batch size (below and above the parallel threshold) and however late a
 * worker wakes; the results equal the one-thread results. */
#include <stdatomic.h>
#include <stdlib.h>

#include "test_util.h"

#include "crypto/crypto.h"
#include "engine/cpool.h"

#define OPS 300
#define LEN 96

static struct sg_aead *key;
static uint8_t bufs[OPS][LEN + 16], want[OPS][LEN + 16];
static struct wg_crypt_op ops[OPS];

static void fill_batch(size_t n, uint32_t round)
{
	for (size_t i = 0; i < n; i++) {
		memset(bufs[i], (int)(i + round), LEN);
		ops[i] = (struct wg_crypt_op){.aead = key,
					      .data = bufs[i],
					      .len = LEN,
					      .encrypt = true,
					      .counter = round * 1000ull + i};
		sg_suite_get(SG_SUITE_CLASSIC)->nonce(ops[i].nonce, ops[i].counter);
	}
}

static int setup(void **state)
{
	uint8_t k[32];
	for (int i = 0; i < 32; i++)
		k[i] = (uint8_t)(i * 7 + 1);
	key = sg_aead_new(SG_SUITE_CLASSIC, k, true);
	return key ? 0 : -1;
}

static int teardown(void **state)
{
	sg_aead_free(key);
	return 0;
}

static void check_batch(size_t n)
{
	for (size_t i = 0; i < n; i++) {
		assert_true(ops[i].ok);
		memcpy(want[i], bufs[i], LEN + 16);
	}
}

static void run_rounds(unsigned lanes)
{
	struct cpool *p;
	assert_int_equal(cpool_new(&p, lanes), 0);
	assert_int_equal(cpool_lanes(p), lanes);
	for (uint32_t round = 0; round < 3000; round++) {
		size_t n = 1 + (round * 37u) % OPS; /* 1 .. 300: both sides of the threshold */
		fill_batch(n, round);
		cpool_run(p, ops, n);
		check_batch(n);
		/* The same batch sealed on this thread alone gives the same bytes. */
		fill_batch(n, round);
		for (size_t i = 0; i < n; i++) {
			assert_true(sg_aead_seal(key, bufs[i], bufs[i], LEN, ops[i].nonce));
			assert_memory_equal(bufs[i], want[i], LEN + 16);
		}
	}
	cpool_free(p);
}

static void test_one_lane(void **state)
{
	run_rounds(1);
}

static void test_four_lanes(void **state)
{
	run_rounds(4);
}

static void test_lanes_clamped_and_default(void **state)
{
	struct cpool *p;
	const char *why = "";
	assert_int_equal(cpool_new(&p, 0), 0);
	assert_int_equal(cpool_lanes(p), 1);
	cpool_free(p);
	assert_int_equal(cpool_new(&p, 1000), 0);
	assert_int_equal(cpool_lanes(p), SG_AEAD_LANES);
	cpool_free(p);
	setenv("SG_CRYPTO_THREADS", "3", 1);
	assert_int_equal(cpool_default_lanes(&why), 3);
	assert_string_equal(why, "SG_CRYPTO_THREADS");
	/* Nonsense falls back to the CPU count. */
	setenv("SG_CRYPTO_THREADS", "0", 1);
	unsigned n = cpool_default_lanes(&why);
	assert_string_equal(why, "cpus");
	assert_true(n >= 1 && n <= SG_AEAD_LANES);
	setenv("SG_CRYPTO_THREADS", "2x", 1);
	cpool_default_lanes(&why);
	assert_string_equal(why, "cpus");
	unsetenv("SG_CRYPTO_THREADS");
	cpool_free(NULL);
}

/* cpool_run_fn: any batch, each index once, on lanes in range. */
static _Atomic unsigned hits[OPS];
static _Atomic unsigned bad_lane;

static void count_hit(void *ctx, size_t i, unsigned lane)
{
	if (lane >= *(unsigned *)ctx)
		bad_lane++;
	hits[i]++;
}

static void test_run_fn(void **state)
{
	(void)state;
	struct cpool *p;
	unsigned lanes = 3;
	assert_int_equal(cpool_new(&p, lanes), 0);
	for (size_t n = 0; n <= OPS; n += 37) {
		for (size_t i = 0; i < OPS; i++)
			hits[i] = 0;
		cpool_run_fn(p, n, count_hit, &lanes);
		for (size_t i = 0; i < OPS; i++)
			assert_int_equal(hits[i], i < n ? 1 : 0);
	}
	assert_int_equal(bad_lane, 0);
	cpool_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_one_lane),
	    cmocka_unit_test(test_four_lanes),
	    cmocka_unit_test(test_lanes_clamped_and_default),
	    cmocka_unit_test(test_run_fn),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
