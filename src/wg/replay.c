/* Anti-replay sliding window, RFC 6479 style (see replay.h).
 *
 * Positions in the ring are counter + 1, so that `greatest` == 0 can mean "nothing received yet"
 * and counter 0 is still the first valid one: the convention of the Linux driver's
 * counter_validate(), whose accept/reject decisions this reproduces exactly (the unit test runs
 * the driver's selftest sequence).
 */
#include "wg/replay.h"

#include <assert.h>
#include <string.h>

#include "common/compiler.h"

#define BITS_PER_WORD (8 * sizeof(unsigned long))
#define RING_WORDS    (WG_REPLAY_BITS_TOTAL / BITS_PER_WORD)

/* The window must leave at least one whole word of the ring unused, or advancing into a new
 * word would zero bits that are still inside the window. */
static_assert(WG_REPLAY_WINDOW <= WG_REPLAY_BITS_TOTAL - BITS_PER_WORD, "window too large");
static_assert((RING_WORDS & (RING_WORDS - 1)) == 0, "ring size must be a power of two");
static_assert(sizeof(((struct wg_replay *)0)->bitmap) * 8 == WG_REPLAY_BITS_TOTAL, "bitmap size");

void wg_replay_init(struct wg_replay *r)
{
	memset(r, 0, sizeof(*r));
}

bool wg_replay_check(struct wg_replay *r, uint64_t counter)
{
	uint64_t pos, word, cur, top;
	unsigned long bit, *slot;

	if (unlikely(counter >= WG_REJECT_AFTER_MESSAGES))
		return false;
	/* No overflow below: counter < 2^64 - 2^13 - 1. */
	pos = counter + 1;
	/* Too old: more than WG_REPLAY_WINDOW behind the greatest counter seen. */
	if (unlikely(pos + WG_REPLAY_WINDOW < r->greatest))
		return false;

	word = pos / BITS_PER_WORD;
	if (likely(pos > r->greatest)) {
		/* Slide forwards: zero the words the window enters (all of them after a jump of a
		 * whole ring or more). The word of the old greatest keeps its bits. */
		cur = r->greatest / BITS_PER_WORD;
		top = SG_MIN(word - cur, (uint64_t)RING_WORDS);
		for (uint64_t i = 1; i <= top; i++)
			r->bitmap[(cur + i) & (RING_WORDS - 1)] = 0;
		r->greatest = pos;
	}

	slot = &r->bitmap[word & (RING_WORDS - 1)];
	bit = 1UL << (pos % BITS_PER_WORD);
	if (*slot & bit)
		return false;
	*slot |= bit;
	return true;
}
