/* Anti-replay window for transport data counters (whitepaper section 5.4.6; the sliding window
 * of RFC 6479, as the Linux driver implements it in drivers/net/wireguard/receive.c).
 *
 * The bitmap is a ring of machine words. Sliding forwards only zeroes the words that the new
 * greatest counter enters, never shifts bits, so the cost per packet is O(1) amortised and at
 * most WG_REPLAY_BITS_TOTAL / BITS_PER_LONG word writes. One word of the ring is kept as slack
 * (RFC 6479 section 2: "redundant bits"), hence the usable window is one word shorter than the
 * ring; the window is fixed at 8192 - 64 bits whatever the word size, so behaviour does not
 * depend on the platform.
 *
 * Not thread-safe; preallocated (it lives inside the keypair), so the hot path does not allocate.
 */
#ifndef SG_WG_REPLAY_H
#define SG_WG_REPLAY_H

#include <stdbool.h>
#include <stdint.h>

#define WG_REPLAY_BITS_TOTAL 8192
#define WG_REPLAY_WINDOW     (WG_REPLAY_BITS_TOTAL - 64) /* 8128 usable counters */
/* Reject-After-Messages of the whitepaper (section 6.1, table): 2^64 - 2^13 - 1, the same value
 * as wireguard-go's RejectAfterMessages. No counter at or above it is ever accepted. */
#define WG_REJECT_AFTER_MESSAGES (UINT64_MAX - 8192)

struct wg_replay {
	/* One more than the greatest counter accepted so far; 0 while none was (the Linux
	 * driver's convention, which lets counter 0 be the first valid one). */
	uint64_t greatest;
	unsigned long bitmap[WG_REPLAY_BITS_TOTAL / (8 * sizeof(unsigned long))];
};

/* Empty window: every counter below WG_REJECT_AFTER_MESSAGES is acceptable. */
void wg_replay_init(struct wg_replay *r);

/* Call only AFTER the packet authenticated (else forged counters would slide the window).
 * Returns true and records `counter` if it is new: not seen before, not more than
 * WG_REPLAY_WINDOW behind the greatest counter seen, and below WG_REJECT_AFTER_MESSAGES.
 * Returns false (and changes nothing) otherwise. */
bool wg_replay_check(struct wg_replay *r, uint64_t counter);

#endif
