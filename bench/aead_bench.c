/* The AEAD alone, per message, as the data path calls it: seal then open (in place) of
 * 1420-byte messages with the 64-bit counter nonce, one thread, through src/crypto's session
 * keys (sg_aead: keyed once per session and lane, each message only sets its nonce; classic is
 * RFC 8439's construction over OpenSSL's ChaCha20 and Poly1305, src/crypto/evp.c), beside two
 * alternatives measured only: OpenSSL's own ChaCha20-Poly1305 cipher called the way sg_aead
 * called it until December 2026 (one EVP context keyed once, per message: the nonce, one update,
 * final, the tag), and, when built with -DSG_BENCH_SODIUM, libsodium's
 * crypto_aead_chacha20poly1305_ietf (outside the FIPS boundary). bench/datapath.sh runs it
 * beside datapath_bench and `openssl speed`, so the data path's loss splits into what the AEAD
 * costs per message and what the data path adds.
 *
 *   aead_bench [-t SECONDS] [-r ROUNDS] [-n MESSAGES] [-i NAME]
 *     SECONDS of CPU per implementation (default 2), in ROUNDS rounds (default 5) that take
 *     every implementation in turn; -n: exactly MESSAGES per implementation, one round (for
 *     valgrind --tool=callgrind); -i: only the implementations whose name contains NAME.
 *
 * One line of key=value pairs per implementation: cpu_s_per_gb is the median over the rounds of
 * CPU seconds per 1e9 bytes sealed once and opened once (the unit of datapath_bench's figure);
 * of_stream the median over the rounds of the suite's streaming bound (the stream-* rows, which
 * are what `openssl speed -evp` measures) divided by it. Every open is checked.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "crypto/crypto.h"
#ifdef SG_BENCH_SODIUM
#include <sodium.h>
#endif

#define MSG_LEN	   1420
#define BATCH	   64
#define MAX_ROUNDS 64

static uint8_t buf[BATCH][MSG_LEN + SG_AEAD_TAG_LEN];

static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "aead_bench: %s\n", what);
	exit(1);
}

struct impl {
	const char *name;
	const char *suite; /* whose bound: "classic" or "fips" */
	bool (*seal)(void *k, uint8_t *m, const uint8_t nonce[12]);
	bool (*open)(void *k, uint8_t *m, const uint8_t nonce[12]); /* NULL: a streaming bound */
	void *seal_key, *open_key;
	double cost[MAX_ROUNDS]; /* CPU-s/GB per round */
	uint64_t messages;
};

static bool evp_seal(void *k, uint8_t *m, const uint8_t nonce[12])
{
	return sg_aead_seal(k, m, m, MSG_LEN, nonce);
}

static bool evp_open(void *k, uint8_t *m, const uint8_t nonce[12])
{
	return sg_aead_open(k, m, m, MSG_LEN + SG_AEAD_TAG_LEN, nonce);
}

/* OpenSSL's ChaCha20-Poly1305 cipher, one context per direction keyed once. */
static bool evp_aead_seal(void *k, uint8_t *m, const uint8_t nonce[12])
{
	int outl = 0;

	return EVP_CipherInit_ex2(k, NULL, NULL, nonce, 1, NULL) == 1 &&
	       EVP_CipherUpdate(k, m, &outl, m, MSG_LEN) == 1 &&
	       EVP_CipherFinal_ex(k, m + MSG_LEN, &outl) == 1 &&
	       EVP_CIPHER_CTX_ctrl(k, EVP_CTRL_AEAD_GET_TAG, SG_AEAD_TAG_LEN, m + MSG_LEN) == 1;
}

static bool evp_aead_open(void *k, uint8_t *m, const uint8_t nonce[12])
{
	uint8_t tag[SG_AEAD_TAG_LEN];
	int outl = 0;

	memcpy(tag, m + MSG_LEN, sizeof(tag));
	return EVP_CipherInit_ex2(k, NULL, NULL, nonce, 0, NULL) == 1 &&
	       EVP_CIPHER_CTX_ctrl(k, EVP_CTRL_AEAD_SET_TAG, SG_AEAD_TAG_LEN, tag) == 1 &&
	       EVP_CipherUpdate(k, m, &outl, m, MSG_LEN) == 1 &&
	       EVP_CipherFinal_ex(k, m + MSG_LEN, &outl) == 1;
}

/* What `openssl speed -evp` measures: EVP_EncryptUpdate of one message after the other on one
 * context (one key, one nonce, no tag): the streaming bound of datapath.sh, here measured in the
 * same rounds as the implementations so that load moves both alike. */
static bool stream_seal(void *k, uint8_t *m, const uint8_t nonce[12])
{
	int outl = 0;

	(void)nonce;
	return EVP_EncryptUpdate(k, m, &outl, m, MSG_LEN) == 1;
}

static EVP_CIPHER_CTX *evp_key(const char *name, const uint8_t key[32], int enc)
{
	static const uint8_t iv[12];
	EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, name, NULL);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

	if (c == NULL || ctx == NULL || EVP_CipherInit_ex2(ctx, c, key, iv, enc, NULL) != 1)
		die(name);
	EVP_CIPHER_free(c);
	return ctx;
}

#ifdef SG_BENCH_SODIUM
static bool sodium_seal(void *k, uint8_t *m, const uint8_t nonce[12])
{
	return crypto_aead_chacha20poly1305_ietf_encrypt_detached(m, m + MSG_LEN, NULL, m, MSG_LEN,
								  NULL, 0, NULL, nonce, k) == 0;
}

static bool sodium_open(void *k, uint8_t *m, const uint8_t nonce[12])
{
	return crypto_aead_chacha20poly1305_ietf_decrypt_detached(m, NULL, m, MSG_LEN, m + MSG_LEN,
								  NULL, 0, nonce, k) == 0;
}
#endif

/* Batches of BATCH messages: all sealed, then all opened, as the data path's batches are. Runs
 * for secs of CPU time, or exactly n messages (n > 0: for callgrind). Returns CPU-s/GB sealed
 * and opened (a streaming bound only seals: twice its cost per byte). */
__attribute__((noinline)) /* a symbol for callgrind --toggle-collect=run */
static double
run(struct impl *im, double secs, uint64_t n)
{
	static uint64_t counter;
	uint64_t msgs = 0;
	uint8_t nonce[12];
	double c0 = cpu_now(), c;

	do {
		for (size_t i = 0; i < BATCH; i++) {
			sg_wg_nonce(nonce, counter + i);
			if (!im->seal(im->seal_key, buf[i], nonce))
				die("seal failed");
		}
		for (size_t i = 0; im->open && i < BATCH; i++) {
			sg_wg_nonce(nonce, counter + i);
			if (!im->open(im->open_key, buf[i], nonce))
				die("open failed: the implementation does not round-trip");
		}
		counter += BATCH;
		msgs += BATCH;
	} while (n ? msgs < n : (c = cpu_now()) - c0 < secs);
	c = cpu_now() - c0;
	im->messages += msgs;
	return c / ((double)msgs * MSG_LEN / 1e9) * (im->open ? 1 : 2);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Seals one message with both and dies unless the bytes are equal: the implementations compared
 * do the same computation. */
static void check_same(struct impl *a, struct impl *b)
{
	uint8_t x[MSG_LEN + SG_AEAD_TAG_LEN], y[MSG_LEN + SG_AEAD_TAG_LEN], nonce[12];

	memcpy(x, buf[0], MSG_LEN);
	memcpy(y, buf[0], MSG_LEN);
	sg_wg_nonce(nonce, 1u << 31);
	if (!a->seal(a->seal_key, x, nonce) || !b->seal(b->seal_key, y, nonce) ||
	    memcmp(x, y, sizeof(x)) != 0) {
		fprintf(stderr, "aead_bench: %s and %s disagree\n", a->name, b->name);
		exit(1);
	}
}

static void add(struct impl *im, size_t *n, const char *name, const char *suite,
		bool (*seal)(void *, uint8_t *, const uint8_t *),
		bool (*open)(void *, uint8_t *, const uint8_t *), void *seal_key, void *open_key)
{
	memset(&im[*n], 0, sizeof(im[*n]));
	im[*n].name = name;
	im[*n].suite = suite;
	im[*n].seal = seal;
	im[*n].open = open;
	im[*n].seal_key = seal_key;
	im[*n].open_key = open_key;
	(*n)++;
}

int main(int argc, char **argv)
{
	static const uint8_t key[32] = {0x42, 7, 1};
	struct impl im[8];
	const char *only = NULL;
	double secs = 2;
	unsigned long long n = 0;
	size_t rounds = 5, nim = 0;
	int opt;

	while ((opt = getopt(argc, argv, "t:r:n:i:")) != -1) {
		if (opt == 't' && (secs = atof(optarg)) > 0)
			continue;
		if (opt == 'r' && (rounds = strtoul(optarg, NULL, 10)) > 0 && rounds <= MAX_ROUNDS)
			continue;
		if (opt == 'n' && (n = strtoull(optarg, NULL, 10)) > 0)
			continue;
		if (opt == 'i') {
			only = optarg;
			continue;
		}
		fprintf(stderr, "usage: %s [-t SECONDS] [-r ROUNDS] [-n MESSAGES] [-i NAME]\n",
			argv[0]);
		return 2;
	}
	if (n)
		rounds = 1;
	if (sg_crypto_init() != 0)
		die("crypto init");
	for (size_t i = 0; i < BATCH; i++)
		for (size_t j = 0; j < MSG_LEN; j++)
			buf[i][j] = (uint8_t)(i + j * 7);

	add(im, &nim, "stream-chacha20-poly1305", "classic", stream_seal, NULL,
	    evp_key("ChaCha20-Poly1305", key, 1), NULL);
	add(im, &nim, "stream-aes-256-gcm", "fips", stream_seal, NULL,
	    evp_key("AES-256-GCM", key, 1), NULL);
	add(im, &nim, "sg-chacha20-poly1305", "classic", evp_seal, evp_open,
	    sg_aead_new(SG_SUITE_CLASSIC, key, true), sg_aead_new(SG_SUITE_CLASSIC, key, false));
	add(im, &nim, "sg-aes-256-gcm", "fips", evp_seal, evp_open,
	    sg_aead_new(SG_SUITE_FIPS, key, true), sg_aead_new(SG_SUITE_FIPS, key, false));
	add(im, &nim, "openssl-evp-chacha20-poly1305", "classic", evp_aead_seal, evp_aead_open,
	    evp_key("ChaCha20-Poly1305", key, 1), evp_key("ChaCha20-Poly1305", key, 0));
#ifdef SG_BENCH_SODIUM
	if (sodium_init() < 0)
		die("sodium_init failed");
	add(im, &nim, "libsodium-chacha20-poly1305", "classic", sodium_seal, sodium_open,
	    (void *)key, (void *)key);
#endif
	for (size_t i = 0; i < nim; i++)
		if (im[i].seal_key == NULL || (im[i].open && im[i].open_key == NULL))
			die("a key could not be made");
	for (size_t i = 4; i < nim; i++)
		check_same(&im[2], &im[i]);

	/* Rounds of every implementation in turn, so that a change of load during the run reaches
	 * all of them and the per-round ratios to the streaming bound. */
	for (size_t r = 0; r < rounds; r++)
		for (size_t i = 0; i < nim; i++)
			if (only == NULL || strstr(im[i].name, only) != NULL)
				im[i].cost[r] = run(&im[i], secs / (double)rounds, n);
	for (size_t i = 0; i < nim; i++) {
		const struct impl *bound = strcmp(im[i].suite, "classic") == 0 ? &im[0] : &im[1];
		double ratio[MAX_ROUNDS], cost[MAX_ROUNDS];

		if (im[i].messages == 0)
			continue;
		for (size_t r = 0; r < rounds; r++) {
			ratio[r] = bound->messages ? bound->cost[r] / im[i].cost[r] : 0;
			cost[r] = im[i].cost[r];
		}
		printf("impl=%s suite=%s msg_bytes=%d messages=%llu rounds=%zu cpu_s_per_gb=%.3f "
		       "of_stream=%.3f\n",
		       im[i].name, im[i].suite, MSG_LEN, (unsigned long long)im[i].messages, rounds,
		       median(cost, rounds), median(ratio, rounds));
	}
	return 0;
}
