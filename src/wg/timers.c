/* Per-peer timers as named events, after the kernel's timers.c (whitepaper 6.2-6.5). The data
 * path calls the timers_* events; timers_tick fires what is due at `now`, and timers_next tells the
 * caller when to wake up next. */
#include "crypto/crypto.h"
#include "wg_int.h"

static void arm(struct wg_peer *peer, enum wg_timer_id t, uint64_t at)
{
	peer->timer_at[t] = at;
	peer->timer_armed[t] = true;
}

static void disarm(struct wg_peer *peer, enum wg_timer_id t)
{
	peer->timer_armed[t] = false;
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

void timers_tick(struct wg_peer *peer, uint64_t now)
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
			peer->timer_armed[t] = false;
			handlers[t](peer, now);
		}
	}
}

uint64_t timers_next(const struct wg_peer *peer)
{
	uint64_t next = UINT64_MAX;
	for (int t = 0; t < TIMER_COUNT; t++)
		if (peer->timer_armed[t] && peer->timer_at[t] < next)
			next = peer->timer_at[t];
	return next;
}
