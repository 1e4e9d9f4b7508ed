/* Per-source token bucket for handshake messages under load (the kernel's ratelimiter.c
 * policy: 20 packets per second per IPv4 address or IPv6 /64, bursts of 5). Fixed-size table:
 * memory stays bounded whatever a flood sends; colliding sources share a bucket. */
#ifndef SG_WG_RATELIMITER_H
#define SG_WG_RATELIMITER_H

#include <stdbool.h>
#include <stdint.h>

#define RATELIMITER_SLOTS 4096

struct ratelimiter_entry {
	uint8_t key[8];
	uint64_t last_ns;
	uint64_t tokens;
	bool used;
};

struct ratelimiter {
	uint64_t seed;
	struct ratelimiter_entry slots[RATELIMITER_SLOTS];
};

void ratelimiter_init(struct ratelimiter *r);
/* key: 4 bytes (IPv4) or 16 bytes (IPv6, only the /64 counts). True if the packet may pass. */
bool ratelimiter_allow(struct ratelimiter *r, const uint8_t *addr, unsigned addrlen, uint64_t now);

#endif
