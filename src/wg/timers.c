/* Per-peer timers as named events, after the kernel's timers.c (whitepaper 6.2-6.5). The data
 * path calls the timers_* events; timers_tick fires what is due at `now`, and timers_next tells the
 * caller when to wake up next. */
#include <stdlib.h>

#include "crypto/crypto.h"
#include "wg_int.h"

/* ---- the device's min-heap of peers, keyed by each peer's earliest armed timer ---------- */

static void heap_set(struct wg_device *dev, size_t i, struct wg_peer *p)
{
	dev->heap[i] = p;
	p->heap_pos = i;
}

static void heap_up(struct wg_device *dev, size_t i)
{
	struct wg_peer *p = dev->heap[i];
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (dev->heap[parent]->heap_key <= p->heap_key)
			break;
		heap_set(dev, i, dev->heap[parent]);
		i = parent;
	}
	heap_set(dev, i, p);
}

static void heap_down(struct wg_device *dev, size_t i)
{
	struct wg_peer *p = dev->heap[i];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		uint64_t key = p->heap_key;
		if (l < dev->heap_len && dev->heap[l]->heap_key < key)
			m = l, key = dev->heap[l]->heap_key;
		if (r < dev->heap_len && dev->heap[r]->heap_key < key)
			m = r;
		if (m == i)
			break;
		heap_set(dev, i, dev->heap[m]);
		i = m;
	}
	heap_set(dev, i, p);
}

int timers_reserve(struct wg_device *dev, size_t n)
{
	if (n <= dev->heap_cap)
		return 0;
	size_t cap = dev->heap_cap ? dev->heap_cap : 16;
	while (cap < n)
		cap *= 2;
	struct wg_peer **h = realloc(dev->heap, cap * sizeof(*h));
	if (!h)
		return SG_ENOMEM;
	dev->heap = h;
	dev->heap_cap = cap;
	return 0;
}

/* Re-files the peer in the heap after one of its timers changed. */
void timers_refile(struct wg_peer *peer)
{
	struct wg_device *dev = peer->dev;
	uint64_t key = UINT64_MAX;
	for (int t = 0; t < TIMER_COUNT; t++)
		if (peer->timer_armed[t] && peer->timer_at[t] < key)
			key = peer->timer_at[t];
	if (peer->in_heap && key == peer->heap_key)
		return;
	if (key == UINT64_MAX) {
		if (!peer->in_heap)
			return;
		size_t i = peer->heap_pos;
		struct wg_peer *last = dev->heap[--dev->heap_len];
		peer->in_heap = false;
		if (last != peer) {
			uint64_t old = peer->heap_key;
			heap_set(dev, i, last);
			if (last->heap_key < old)
				heap_up(dev, i);
			else
				heap_down(dev, i);
		}
		peer->heap_key = UINT64_MAX;
		return;
	}
	if (!peer->in_heap) {
		/* Room was reserved when the peer was added (timers_reserve). */
		peer->heap_key = key;
		peer->in_heap = true;
		heap_set(dev, dev->heap_len++, peer);
		heap_up(dev, peer->heap_pos);
		return;
	}
	uint64_t old = peer->heap_key;
	peer->heap_key = key;
	if (key < old)
		heap_up(dev, peer->heap_pos);
	else
		heap_down(dev, peer->heap_pos);
}

static void arm(struct wg_peer *peer, enum wg_timer_id t, uint64_t at)
{
	peer->timer_at[t] = at;
	peer->timer_armed[t] = true;
	timers_refile(peer);
}

static void disarm(struct wg_peer *peer, enum wg_timer_id t)
{
	if (!peer->timer_armed[t])
		return;
	peer->timer_armed[t] = false;
	timers_refile(peer);
}

static uint64_t jitter(void)
{
	return sg_random_u32() % REKEY_TIMEOUT_JITTER_MAX;
}

/* After an authenticated data packet is sent: if we hear nothing back for
 * KEEPALIVE + REKEY_TIMEOUT, start a new handshake. */
void timers_data_sent(struct wg_peer *peer, uint64_t now)
{
	if (!peer->timer_armed[TIMER_NEW_HANDSHAKE])
		arm(peer, TIMER_NEW_HANDSHAKE, now + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + jitter());
}

/* After an authenticated data packet is received: answer with a keepalive if we send nothing. */
void timers_data_received(struct wg_peer *peer, uint64_t now)
{
	if (!peer->timer_armed[TIMER_SEND_KEEPALIVE])
		arm(peer, TIMER_SEND_KEEPALIVE, now + KEEPALIVE_TIMEOUT);
	else
		peer->need_another_keepalive = true;
}

void timers_any_authenticated_packet_sent(struct wg_peer *peer)
{
	disarm(peer, TIMER_SEND_KEEPALIVE);
}

void timers_any_authenticated_packet_received(struct wg_peer *peer)
{
	disarm(peer, TIMER_NEW_HANDSHAKE);
}

void timers_handshake_initiated(struct wg_peer *peer, uint64_t now)
{
	arm(peer, TIMER_RETRANSMIT_HANDSHAKE, now + REKEY_TIMEOUT + jitter());
}

void timers_handshake_complete(struct wg_peer *peer)
{
	disarm(peer, TIMER_RETRANSMIT_HANDSHAKE);
	peer->handshake_attempts = 0;
	peer->fips_unanswered = 0;
	peer->sent_lastminute_handshake = false;
	peer->last_handshake_real_ns = peer->dev->io.realtime_ns(peer->dev->io.ctx);
}

/* After a session key is derived: wipe everything if nothing new happens for 3 x REJECT. */
void timers_session_derived(struct wg_peer *peer, uint64_t now)
{
	arm(peer, TIMER_ZERO_KEY_MATERIAL, now + 3 * REJECT_AFTER_TIME);
}

void timers_any_authenticated_packet_traversal(struct wg_peer *peer, uint64_t now)
{
	if (peer->keepalive_interval)
		arm(peer, TIMER_PERSISTENT_KEEPALIVE, now + peer->keepalive_interval * NSEC);
}

void timers_stop(struct wg_peer *peer)
{
	for (int t = 0; t < TIMER_COUNT; t++)
		disarm(peer, (enum wg_timer_id)t);
	peer->need_another_keepalive = false;
}

void timers_disarm_persistent_keepalive(struct wg_peer *peer)
{
	disarm(peer, TIMER_PERSISTENT_KEEPALIVE);
}

static void expired_retransmit_handshake(struct wg_peer *peer, uint64_t now)
{
	if (peer->handshake_attempts > MAX_TIMER_HANDSHAKES) {
		/* REKEY_ATTEMPT_TIME is over: drop what waits for a session and stop trying
		 * until new traffic asks again. */
		peer_emit(peer, WG_EVENT_HANDSHAKE_GAVE_UP, "no_response");
		disarm(peer, TIMER_SEND_KEEPALIVE);
		staged_purge(peer);
		if (!peer->timer_armed[TIMER_ZERO_KEY_MATERIAL])
			arm(peer, TIMER_ZERO_KEY_MATERIAL, now + 3 * REJECT_AFTER_TIME);
		return;
	}
	peer->handshake_attempts++;
	/* An auto peer whose FIPS initiations go unanswered falls back to classic (a network
	 * or peer that drops them). Only when the peer has classic keys on both sides. */
	if (peer->last_init_mode == SG_SUITE_FIPS && !peer->fallback &&
	    peer->fips_unanswered >= FIPS_FALLBACK_ATTEMPTS &&
	    peer_effective_mode(peer) == WG_CRYPTO_AUTO && peer_can_mode(peer, SG_SUITE_CLASSIC))
		peer_fallback(peer, "timeout", now);
	send_handshake_initiation(peer, now, true);
}

static void expired_send_keepalive(struct wg_peer *peer, uint64_t now)
{
	send_keepalive(peer, now);
	if (peer->need_another_keepalive) {
		peer->need_another_keepalive = false;
		arm(peer, TIMER_SEND_KEEPALIVE, now + KEEPALIVE_TIMEOUT);
	}
}

static void expired_new_handshake(struct wg_peer *peer, uint64_t now)
{
	/* We sent data and heard nothing back for 15 s: the session may be dead. */
	send_handshake_initiation(peer, now, false);
}

static void expired_zero_key_material(struct wg_peer *peer, uint64_t now)
{
	handshake_clear(peer);
	keypairs_clear(peer);
	peer_emit(peer, WG_EVENT_KEYS_ZEROED, NULL);
}

static void expired_persistent_keepalive(struct wg_peer *peer, uint64_t now)
{
	if (peer->keepalive_interval)
		send_keepalive(peer, now);
}

static void timers_tick(struct wg_peer *peer, uint64_t now)
{
	static void (*const handlers[TIMER_COUNT])(struct wg_peer *, uint64_t) = {
		[TIMER_RETRANSMIT_HANDSHAKE] = expired_retransmit_handshake,
		[TIMER_SEND_KEEPALIVE] = expired_send_keepalive,
		[TIMER_NEW_HANDSHAKE] = expired_new_handshake,
		[TIMER_ZERO_KEY_MATERIAL] = expired_zero_key_material,
		[TIMER_PERSISTENT_KEEPALIVE] = expired_persistent_keepalive,
	};
	for (int t = 0; t < TIMER_COUNT; t++) {
		if (peer->timer_armed[t] && peer->timer_at[t] <= now) {
			disarm(peer, (enum wg_timer_id)t);
			handlers[t](peer, now);
		}
	}
}

void timers_tick_device(struct wg_device *dev, uint64_t now)
{
	/* Every handler re-arms strictly after `now`, so each peer leaves the top once its due
	 * timers have fired; the bound guards against a handler that would not. */
	for (size_t guard = 0; dev->heap_len && dev->heap[0]->heap_key <= now; guard++) {
		if (guard > 4 * dev->heap_len + TIMER_COUNT)
			break;
		timers_tick(dev->heap[0], now);
	}
}

uint64_t timers_next_device(const struct wg_device *dev)
{
	return dev->heap_len ? dev->heap[0]->heap_key : UINT64_MAX;
}
