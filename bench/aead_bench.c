/* The AEAD alone, per message, as the data path calls it: seal then open (in place) of
 * 1420-byte messages with the 64-bit counter nonce, one thread, through src/crypto's session
 * keys (sg_aead: one EVP context keyed once, each message only sets its nonce) and, when built
 * with -DSG_BENCH_SODIUM, through libsodium's crypto_aead_chacha20poly1305_ietf (the
 * alternative the classic suite could use, outside the FIPS boundary). bench/datapath.sh runs it
 * beside datapath_bench and `openssl speed`, so the data path's loss splits into what OpenSSL
 * costs per message and what the data path adds.
 *
 *   aead_bench [-t SECONDS]     SECONDS per implementation (default 2)
 *
 * One line of key=value pairs per implementation: cpu_s_per_gb is CPU seconds per 1e9 bytes
 * sealed once and opened once (the unit of datapath_bench's figure). Every open is checked.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crypto/crypto.h"
#ifdef SG_BENCH_SODIUM
#include <sodium.h>
#endif

#define MSG_LEN 1420
#define BATCH	64

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
	bool (*seal)(void *k, uint8_t *m, const uint8_t nonce[12]);
	bool (*open)(void *k, uint8_t *m, const uint8_t nonce[12]);
	void *seal_key, *open_key;
};

static bool evp_seal(void *k, uint8_t *m, const uint8_t nonce[12])
{
	return sg_aead_seal(k, m, m, MSG_LEN, nonce);
}

static bool evp_open(void *k, uint8_t *m, const uint8_t nonce[12])
{
	return sg_aead_open(k, m, m, MSG_LEN + SG_AEAD_TAG_LEN, nonce);
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

/* Batches of BATCH messages: all sealed, then all opened, as the data path's batches are. */
static void run(const struct impl *im, double secs)
{
	uint64_t counter = 0, msgs = 0;
	uint8_t nonce[12];
	double c0 = cpu_now(), c;

	do {
		for (size_t i = 0; i < BATCH; i++) {
			sg_wg_nonce(nonce, counter + i);
			if (!im->seal(im->seal_key, buf[i], nonce))
				die("seal failed");
		}
		for (size_t i = 0; i < BATCH; i++) {
			sg_wg_nonce(nonce, counter + i);
			if (!im->open(im->open_key, buf[i], nonce))
				die("open failed: the implementation does not round-trip");
		}
		counter += BATCH;
		msgs += BATCH;
	} while ((c = cpu_now()) - c0 < secs);
	c -= c0;
	printf("impl=%s msg_bytes=%d messages=%llu cpu_s=%.3f cpu_s_per_gb=%.3f\n", im->name,
	       MSG_LEN, (unsigned long long)msgs, c, c / ((double)msgs * MSG_LEN / 1e9));
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static const uint8_t key[32] = {0x42, 7, 1};
	double secs = 2;
	int opt;

	while ((opt = getopt(argc, argv, "t:")) != -1) {
		if (opt != 't' || (secs = atof(optarg)) <= 0) {
			fprintf(stderr, "usage: %s [-t SECONDS]\n", argv[0]);
			return 2;
		}
	}
	if (sg_crypto_init() != 0)
		die("crypto init");
	for (size_t i = 0; i < BATCH; i++)
		for (size_t j = 0; j < MSG_LEN; j++)
			buf[i][j] = (uint8_t)(i + j * 7);

	struct impl evp[2] = {
	    {"openssl-chacha20-poly1305", evp_seal, evp_open,
	     sg_aead_new(SG_SUITE_CLASSIC, key, true), sg_aead_new(SG_SUITE_CLASSIC, key, false)},
	    {"openssl-aes-256-gcm", evp_seal, evp_open, sg_aead_new(SG_SUITE_FIPS, key, true),
	     sg_aead_new(SG_SUITE_FIPS, key, false)},
	};
	for (size_t i = 0; i < 2; i++) {
		if (evp[i].seal_key == NULL || evp[i].open_key == NULL)
			die("sg_aead_new failed");
		run(&evp[i], secs);
		sg_aead_free(evp[i].seal_key);
		sg_aead_free(evp[i].open_key);
	}
#ifdef SG_BENCH_SODIUM
	if (sodium_init() < 0)
		die("sodium_init failed");
	/* The same key and nonces give the same ciphertext as OpenSSL's (RFC 8439): checked on
	 * one message so that the comparison is between equal computations. */
	uint8_t a[MSG_LEN + SG_AEAD_TAG_LEN], b[MSG_LEN + SG_AEAD_TAG_LEN], nonce[12];
	struct sg_aead *k = sg_aead_new(SG_SUITE_CLASSIC, key, true);
	memcpy(a, buf[0], MSG_LEN);
	memcpy(b, buf[0], MSG_LEN);
	sg_wg_nonce(nonce, 5);
	if (k == NULL || !sg_aead_seal(k, a, a, MSG_LEN, nonce) ||
	    !sodium_seal((void *)key, b, nonce) || memcmp(a, b, sizeof(a)) != 0)
		die("libsodium and OpenSSL disagree on a ChaCha20-Poly1305 message");
	sg_aead_free(k);
	struct impl so = {"libsodium-chacha20-poly1305", sodium_seal, sodium_open, (void *)key,
			  (void *)key};
	run(&so, secs);
#endif
	return 0;
}
