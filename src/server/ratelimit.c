/* Request rates per source address for what anyone may call without credentials (the OpenID
 * provider's endpoints, registrations): token buckets in a fixed table, so that a flood from
 * many addresses costs no memory. A source is an IPv4 address or an IPv6 /64 (one host's
 * share of addresses). Slots are found by hashing (class, source) into a probe window of 8;
 * when all 8 are taken by others, the one idle longest is reused (so a flood of new addresses
 * evicts old buckets rather than refusing everyone; each of its addresses still gets only its
 * own bucket). */
#include <arpa/inet.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "crypto/crypto.h"
#include "server/srv_int.h"

#define SLOTS 4096
#define PROBE 8

static const struct {
	double rate, burst; /* per second, bucket size */
	const char *endpoint; /* with --redis: sg:rate_limit:{source}:{endpoint} */
} classes[SRV_RATE_N] = {
    [SRV_RATE_PUBLIC] = {10, 50, "public"}, /* pages, keys, discovery: browsers load a few */
    [SRV_RATE_TOKEN] = {5, 20, "token"},     /* code redemptions: one per login */
    [SRV_RATE_REGISTER] = {2, 30, "register"}, /* enrolments: one per node, ever */
};

struct slot {
	uint8_t key[17]; /* class, then the source's 16 bytes (IPv4: mapped) */
	bool used;
	double tokens;
	uint64_t last_ns;
};

static struct slot table[SLOTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t seed[16];
static bool seeded;

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* The key of (cls, ip): IPv6 cut to its /64, IPv4 as mapped IPv6. */
static void make_key(uint8_t key[17], enum srv_rate_class cls, const char *ip)
{
	struct in6_addr a6;
	struct in_addr a4;

	memset(key, 0, 17);
	key[0] = (uint8_t)cls;
	if (inet_pton(AF_INET, ip, &a4) == 1) {
		key[11] = key[12] = 0xff;
		memcpy(key + 13, &a4, 4);
	} else if (inet_pton(AF_INET6, ip, &a6) == 1) {
		memcpy(key + 1, &a6, 8);
	} else {
		/* Not an address (a Unix socket ...): one shared bucket. */
		key[16] = 1;
	}
}

static uint32_t hash(const uint8_t key[17])
{
	uint8_t h[SG_SHA256_LEN];
	struct sg_iov iov[2] = {{seed, sizeof(seed)}, {key, 17}};

	if (!sg_sha256(h, iov, 2))
		return key[16] | (uint32_t)key[15] << 8;
	return (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16;
}

bool srv_rate_allow(enum srv_rate_class cls, const char *ip, int *retry_after)
{
	uint8_t key[17];
	uint32_t h;
	struct slot *sl = NULL, *oldest = NULL;
	uint64_t now = now_ns();
	bool ok;

	*retry_after = 1;
	if ((unsigned)cls >= SRV_RATE_N)
		return false;
	/* Shared by every server with --redis: a fixed window of burst/rate seconds holding
	 * `burst` requests (the same long-run rate; at a window's edge up to twice the burst).
	 * Redis away: this server's own bucket below. */
	{
		int win = (int)(classes[cls].burst / classes[cls].rate + 0.999);
		int rc = srv_live_count(ip, classes[cls].endpoint, "hit", win,
					(int)classes[cls].burst, retry_after);

		if (rc >= 0)
			return rc == 1;
		*retry_after = 1;
	}
	pthread_mutex_lock(&lock);
	if (!seeded) {
		/* A secret seed: nobody can aim many sources at one probe window. */
		seeded = sg_random_bytes(seed, sizeof(seed));
	}
	make_key(key, cls, ip);
	h = hash(key);
	for (int i = 0; i < PROBE; i++) {
		struct slot *x = &table[(h + (uint32_t)i) % SLOTS];

		if (x->used && !memcmp(x->key, key, sizeof(key))) {
			sl = x;
			break;
		}
		if (!oldest || !x->used || (oldest->used && x->last_ns < oldest->last_ns))
			oldest = x;
	}
	if (!sl) {
		sl = oldest;
		memcpy(sl->key, key, sizeof(key));
		sl->used = true;
		sl->tokens = classes[cls].burst;
		sl->last_ns = now;
	}
	sl->tokens += (double)(now - sl->last_ns) / 1e9 * classes[cls].rate;
	if (sl->tokens > classes[cls].burst)
		sl->tokens = classes[cls].burst;
	sl->last_ns = now;
	ok = sl->tokens >= 1;
	if (ok)
		sl->tokens -= 1;
	else
		*retry_after = (int)((1 - sl->tokens) / classes[cls].rate) + 1;
	pthread_mutex_unlock(&lock);
	return ok;
}
