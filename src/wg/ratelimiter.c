#include "ratelimiter.h"

#include <string.h>

#include "crypto/crypto.h"

#define PACKETS_PER_SECOND 20
#define PACKETS_BURSTABLE  5
#define PACKET_COST        (1000000000ULL / PACKETS_PER_SECOND)
#define TOKEN_MAX          (PACKET_COST * PACKETS_BURSTABLE)

void ratelimiter_init(struct ratelimiter *r)
{
	memset(r, 0, sizeof(*r));
	r->seed = sg_random_u64() | 1;
}

bool ratelimiter_allow(struct ratelimiter *r, const uint8_t *addr, unsigned addrlen, uint64_t now)
{
	uint8_t key[8] = {0};
	uint64_t h = r->seed;

	/* IPv6 sources are limited per /64, as one host usually owns a whole /64. */
	memcpy(key, addr, addrlen == 4 ? 4 : 8);
	if (addrlen == 4)
		key[7] = 4;
	for (int i = 0; i < 8; i++)
		h = (h ^ key[i]) * 0x100000001b3ULL;
	h ^= h >> 29;
	struct ratelimiter_entry *e = &r->slots[h % RATELIMITER_SLOTS];

	if (!e->used || memcmp(e->key, key, sizeof(key)) != 0) {
		/* New source (or a collision with an idle one): start with a full bucket. */
		if (e->used && now - e->last_ns < 1000000000ULL) {
			/* Busy slot owned by someone else: share its bucket rather than evict it,
			 * so a flood cannot reset another source's limit. */
		} else {
			memcpy(e->key, key, sizeof(key));
			e->used = true;
			e->last_ns = now;
			e->tokens = TOKEN_MAX - PACKET_COST;
			return true;
		}
	}
	uint64_t tokens = e->tokens + (now - e->last_ns);
	if (tokens > TOKEN_MAX)
		tokens = TOKEN_MAX;
	e->last_ns = now;
	if (tokens >= PACKET_COST) {
		e->tokens = tokens - PACKET_COST;
		return true;
	}
	e->tokens = tokens;
	return false;
}
