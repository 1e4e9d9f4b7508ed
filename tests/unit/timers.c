/* The per-peer timers as named events (whitepaper 6.2-6.5, the kernel's timers.c), driven on one
 * device with a simulated monotonic clock. Sent datagrams are captured in the send upcall; when a
 * test needs a session, it plays the remote peer itself with the Noise functions of noise.c
 * (initiation, then the data key from the device's response), so no second device is involved. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>

#include "test_util.h"

#include "common/bytes.h"
#include "crypto/crypto.h"
#include "wg/wg_int.h"

#define CLASSIC sg_suite_get(SG_SUITE_CLASSIC)

#define MAX_SENT 256

struct sent {
	uint64_t at;
	size_t len;
	uint8_t buf[256]; /* only the first bytes of big datagrams are kept */
};

/* The remote peer as the test plays it. */
struct remote {
	uint8_t priv[32], pub[32];
	uint8_t e_priv[32];
	struct noise_symmetric sym;
	uint64_t real_ns;      /* its wall clock, for the timestamps of its initiations */
	uint32_t local_index;  /* its sender index */
	uint32_t remote_index; /* the device's index from the response */
	uint8_t send_key[32], recv_key[32];
	uint64_t counter;
};

static struct {
	struct wg_device *dev;
	struct wg_peer *peer;
	struct wg_endpoint ep; /* the remote's outer address */
	uint64_t now;
	struct sent sent[MAX_SENT];
	size_t nsent;
	unsigned events[WG_EVENT_PACKET_DROPPED + 1];
	uint64_t last_event_at[WG_EVENT_PACKET_DROPPED + 1];
	unsigned retries; /* HANDSHAKE_INITIATED with reason "retry" */
	struct remote r;
} t;

static void io_send(void *ctx, struct wg_peer *peer, const struct wg_endpoint *to,
		    const uint8_t *buf, size_t len, uint8_t ttl)
{
	assert_true(t.nsent < MAX_SENT);
	assert_true(wg_endpoint_eq(to, &t.ep));
	struct sent *s = &t.sent[t.nsent++];
	s->at = t.now;
	s->len = len;
	memcpy(s->buf, buf, len < sizeof(s->buf) ? len : sizeof(s->buf));
}

static void io_deliver(void *ctx, struct wg_peer *peer, const uint8_t *pkt, size_t len)
{
}

static uint64_t io_realtime(void *ctx)
{
	return 1700000000ULL * NSEC + t.now;
}

static void io_event(void *ctx, const struct wg_event *ev)
{
	if (getenv("SG_TEST_TRACE"))
		fprintf(stderr, "t=%.3f event=%d reason=%s\n", (double)t.now / NSEC, ev->type,
			ev->reason ? ev->reason : "-");
	t.events[ev->type]++;
	t.last_event_at[ev->type] = t.now;
	if (ev->type == WG_EVENT_HANDSHAKE_INITIATED && ev->reason &&
	    strcmp(ev->reason, "retry") == 0)
		t.retries++;
}

static void ep4(struct wg_endpoint *ep, const char *ip, uint16_t port)
{
	memset(ep, 0, sizeof(*ep));
	ep->addr.in4.sin_family = AF_INET;
	ep->addr.in4.sin_port = htons(port);
	assert_int_equal(inet_pton(AF_INET, ip, &ep->addr.in4.sin_addr), 1);
}

static int setup(void **state)
{
	struct wg_io io = {
	    .send = io_send, .deliver = io_deliver, .realtime_ns = io_realtime, .event = io_event};
	uint8_t priv[32], pub[32];

	memset(&t, 0, sizeof(t));
	t.now = 1000 * NSEC;
	t.dev = wg_device_new(&io);
	assert_non_null(t.dev);
	assert_true(sg_x25519_generate(priv, pub));
	assert_int_equal(wg_device_set_private_key(t.dev, priv), 0);
	assert_true(sg_x25519_generate(t.r.priv, t.r.pub));
	t.r.real_ns = 1600000000ULL * NSEC;
	t.r.local_index = 0x11223344;
	assert_int_equal(wg_device_add_peer(t.dev, t.r.pub, &t.peer), 0);
	uint8_t addr[4] = {10, 0, 0, 2};
	assert_int_equal(wg_peer_add_allowed_ip(t.peer, AF_INET, addr, 32), 0);
	ep4(&t.ep, "192.0.2.2", 51820);
	wg_peer_set_endpoint(t.peer, &t.ep);
	sg_memzero(priv, sizeof(priv));
	return 0;
}

static int teardown(void **state)
{
	wg_device_free(t.dev);
	sg_memzero(&t.r, sizeof(t.r));
	return 0;
}

/* Moves the clock to `end`, stopping at every deadline the device reports on the way (as the
 * daemon's event loop does) and firing it. */
static void run_until(uint64_t end)
{
	for (;;) {
		uint64_t next = wg_device_next_deadline(t.dev);
		if (next > end)
			break;
		assert_true(next >= t.now); /* a due timer is never left behind */
		t.now = next;
		wg_device_tick(t.dev, t.now);
	}
	t.now = end;
}

static size_t count_type(uint8_t type)
{
	size_t n = 0;
	for (size_t i = 0; i < t.nsent; i++)
		if (t.sent[i].buf[0] == type)
			n++;
	return n;
}

/* One IPv4 packet from 10.0.0.1 to the peer's 10.0.0.2. */
static int send_packet(size_t payload)
{
	uint8_t p[200] = {0};
	size_t len = 20 + payload;
	assert_true(len <= sizeof(p));
	p[0] = 0x45;
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	p[8] = 64;
	p[9] = 17;
	p[12] = 10, p[15] = 1;
	p[16] = 10, p[19] = 2;
	return wg_device_send(t.dev, t.now, p, len);
}

/* The remote sends a fresh handshake initiation to the device. */
static void remote_send_initiation(void)
{
	uint8_t msg[WG_MSG_INITIATION_LEN] = {WG_MSG_INITIATION}, dev_pub[32], ss[32], e_pub[32];
	uint8_t ts[NOISE_TIMESTAMP_LEN];
	struct cookie_maker m;

	assert_true(wg_device_get_public_key(t.dev, dev_pub));
	sg_put_le32(msg + 4, t.r.local_index);
	t.r.real_ns += NSEC; /* a later timestamp than the previous one */
	noise_tai64n(ts, t.r.real_ns);
	assert_true(sg_x25519_generate(t.r.e_priv, e_pub));
	assert_true(sg_x25519(ss, t.r.priv, dev_pub));
	assert_true(
	    noise_init(&t.r.sym, CLASSIC, (const uint8_t *)wg_identifier, strlen(wg_identifier), dev_pub));
	assert_true(noise_write_msg1(&t.r.sym, msg + 8, msg + 40, msg + 88, ts, sizeof(ts),
				     t.r.e_priv, t.r.pub, dev_pub, ss));
	assert_true(cookie_maker_init(&m, dev_pub));
	assert_true(cookie_add_macs(&m, SG_SUITE_CLASSIC, msg, sizeof(msg), t.now));
	sg_memzero(ss, sizeof(ss));
	cookie_maker_wipe(&m);
	wg_device_receive(t.dev, t.now, &t.ep, msg, sizeof(msg));
}

/* The remote consumes the device's response (the last datagram sent) and derives its keys. */
static void remote_consume_response(void)
{
	uint8_t psk[32] = {0};
	assert_true(t.nsent > 0);
	const struct sent *s = &t.sent[t.nsent - 1];
	assert_int_equal(s->len, WG_MSG_RESPONSE_LEN);
	assert_int_equal(s->buf[0], WG_MSG_RESPONSE);
	assert_int_equal(sg_le32(s->buf + 8), t.r.local_index);
	t.r.remote_index = sg_le32(s->buf + 4);
	assert_true(noise_read_msg2(&t.r.sym, NULL, s->buf + 44, 16, s->buf + 12, t.r.e_priv,
				    t.r.priv, psk));
	assert_true(noise_split(&t.r.sym, t.r.send_key, t.r.recv_key));
	noise_symmetric_wipe(&t.r.sym);
	t.r.counter = 0;
}

/* The remote sends a transport packet: a keepalive (payload == 0) or an IPv4 packet from
 * 10.0.0.2 with `payload` bytes. */
static void remote_send_data(size_t payload)
{
	uint8_t buf[WG_MSG_DATA_HEADER_LEN + 256 + SG_AEAD_TAG_LEN] = {WG_MSG_DATA}, nonce[12];
	uint8_t *p = buf + WG_MSG_DATA_HEADER_LEN;
	size_t len = 0;

	if (payload) {
		len = 20 + payload;
		assert_true(len <= 256);
		p[0] = 0x45;
		p[2] = (uint8_t)(len >> 8);
		p[3] = (uint8_t)len;
		p[12] = 10, p[15] = 2;
		p[16] = 10, p[19] = 1;
		len = (len + 15) & ~(size_t)15;
	}
	sg_put_le32(buf + 4, t.r.remote_index);
	sg_put_le64(buf + 8, t.r.counter);
	sg_wg_nonce(nonce, t.r.counter++);
	assert_true(sg_chacha20poly1305_encrypt(p, p, len, NULL, 0, nonce, t.r.send_key));
	wg_device_receive(t.dev, t.now, &t.ep, buf, WG_MSG_DATA_HEADER_LEN + len + SG_AEAD_TAG_LEN);
}

/* A confirmed session with the device as responder. */
static void make_session(void)
{
	remote_send_initiation();
	remote_consume_response();
	remote_send_data(0); /* key confirmation */
	assert_non_null(t.peer->kp_current);
	assert_null(t.peer->kp_next);
	assert_int_equal(t.events[WG_EVENT_HANDSHAKE_COMPLETE], 1);
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_no_timers_no_deadline(void **state)
{
	/* A configured peer that never sent or received anything has no timer armed. */
	assert_int_equal(wg_device_next_deadline(t.dev), UINT64_MAX);
	wg_device_tick(t.dev, t.now + 1000 * NSEC);
	assert_int_equal(t.nsent, 0);
	/* Nor does a device without peers. */
	wg_device_remove_all_peers(t.dev);
	assert_int_equal(wg_device_next_deadline(t.dev), UINT64_MAX);
}

static void test_retransmit_then_give_up(void **state)
{
	uint64_t start = t.now;
	/* One packet and no answer ever. */
	assert_int_equal(send_packet(10), 0);
	assert_int_equal(t.nsent, 1);
	assert_int_equal(t.sent[0].len, WG_MSG_INITIATION_LEN);
	assert_int_equal(t.peer->staged.count, 1);
	run_until(start + 200 * NSEC);

	/* REKEY_ATTEMPT_TIME / REKEY_TIMEOUT retries after the first, plus one: the kernel's
	 * MAX_TIMER_HANDSHAKES + 2 initiations in all. */
	assert_int_equal(t.nsent, MAX_TIMER_HANDSHAKES + 2);
	assert_int_equal(count_type(WG_MSG_INITIATION), MAX_TIMER_HANDSHAKES + 2);
	assert_int_equal(t.retries, MAX_TIMER_HANDSHAKES + 1);
	for (size_t i = 1; i < t.nsent; i++) {
		uint64_t gap = t.sent[i].at - t.sent[i - 1].at;
		assert_true(gap >= REKEY_TIMEOUT);
		assert_true(gap < REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX);
		/* Each retry is a new handshake: new sender index. */
		assert_int_not_equal(sg_le32(t.sent[i].buf + 4), sg_le32(t.sent[i - 1].buf + 4));
	}
	/* Giving up: one REKEY_TIMEOUT (+ jitter) after the last try, ~90 s after the first. */
	assert_int_equal(t.events[WG_EVENT_HANDSHAKE_GAVE_UP], 1);
	uint64_t gave_up = t.last_event_at[WG_EVENT_HANDSHAKE_GAVE_UP];
	uint64_t after_last = gave_up - t.sent[t.nsent - 1].at;
	assert_true(after_last >= REKEY_TIMEOUT);
	assert_true(after_last < REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX);
	assert_true(gave_up - start >= REKEY_ATTEMPT_TIME + 2 * REKEY_TIMEOUT);
	assert_true(gave_up - start <
		    (MAX_TIMER_HANDSHAKES + 2) * (REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX));
	/* What waited for the session is dropped, nothing is retransmitted any more, and the
	 * residue of the partial exchange is wiped 3 x REJECT_AFTER_TIME later. */
	assert_int_equal(t.peer->staged.count, 0);
	assert_false(t.peer->timer_armed[TIMER_RETRANSMIT_HANDSHAKE]);
	assert_int_equal(wg_device_next_deadline(t.dev), gave_up + 3 * REJECT_AFTER_TIME);
	assert_int_equal(t.peer->act->hs.state, HANDSHAKE_CREATED_INITIATION);
	uint32_t hs_index = t.peer->act->hs.entry.index;
	assert_non_null(index_lookup(t.dev, hs_index));

	run_until(gave_up + 3 * REJECT_AFTER_TIME - 1);
	assert_int_equal(t.events[WG_EVENT_KEYS_ZEROED], 0);
	run_until(gave_up + 3 * REJECT_AFTER_TIME);
	assert_int_equal(t.events[WG_EVENT_KEYS_ZEROED], 1);
	assert_int_equal(t.peer->act->hs.state, HANDSHAKE_ZEROED);
	assert_null(index_lookup(t.dev, hs_index));
	assert_true(sg_is_zero(t.peer->act->hs.ephemeral_priv, 32));
	assert_int_equal(wg_device_next_deadline(t.dev), UINT64_MAX);
	assert_int_equal(t.nsent, MAX_TIMER_HANDSHAKES + 2);

	/* New traffic starts over with a fresh count of attempts. */
	assert_int_equal(send_packet(10), 0);
	assert_int_equal(t.nsent, MAX_TIMER_HANDSHAKES + 3);
	assert_int_equal(t.peer->handshake_attempts, 0);
}

static void test_one_initiation_per_rekey_timeout(void **state)
{
	uint64_t start = t.now;
	/* A burst of packets: one initiation; the packets wait (the oldest dropped past 128). */
	for (int i = 0; i < 200; i++)
		assert_int_equal(send_packet(10), 0);
	assert_int_equal(t.nsent, 1);
	assert_int_equal(t.peer->staged.count, MAX_STAGED_PACKETS);
	/* A packet every 100 ms for 60 s, timers firing in between: initiations stay at least
	 * REKEY_TIMEOUT apart. */
	for (int i = 1; i <= 600; i++) {
		run_until(start + (uint64_t)i * NSEC / 10);
		assert_int_equal(send_packet(10), 0);
	}
	assert_true(t.nsent >= 60 * NSEC / (REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX));
	assert_true(t.nsent <= 60 * NSEC / REKEY_TIMEOUT + 1);
	for (size_t i = 1; i < t.nsent; i++) {
		assert_int_equal(t.sent[i].buf[0], WG_MSG_INITIATION);
		assert_true(t.sent[i].at - t.sent[i - 1].at >= REKEY_TIMEOUT);
	}
	/* Traffic that keeps asking for a session resets the attempt count (the kernel's
	 * is_retry == false): the handshake is never given up while packets keep coming. */
	assert_int_equal(t.events[WG_EVENT_HANDSHAKE_GAVE_UP], 0);
	assert_true(t.peer->timer_armed[TIMER_RETRANSMIT_HANDSHAKE]);
}

static void test_next_deadline_is_earliest(void **state)
{
	uint64_t start = t.now;
	/* Persistent keepalive configured while there is no endpoint: nothing is sent yet. */
	wg_peer_set_endpoint(t.peer, NULL);
	wg_peer_set_persistent_keepalive(t.peer, 2, t.now);
	assert_int_equal(t.nsent, 0);
	assert_int_equal(wg_device_next_deadline(t.dev), UINT64_MAX);
	wg_peer_set_endpoint(t.peer, &t.ep);

	/* An initiation arms the retransmission (5 s + jitter) and, as an authenticated packet,
	 * the persistent keepalive (2 s): the earliest is reported. */
	wg_peer_initiate(t.peer, t.now);
	assert_int_equal(t.nsent, 1);
	assert_true(t.peer->timer_armed[TIMER_RETRANSMIT_HANDSHAKE]);
	uint64_t retransmit = t.peer->timer_at[TIMER_RETRANSMIT_HANDSHAKE];
	assert_true(retransmit >= start + REKEY_TIMEOUT);
	assert_true(retransmit < start + REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX);
	assert_int_equal(wg_device_next_deadline(t.dev), start + 2 * NSEC);

	/* A second peer with a later timer does not change the answer... */
	uint8_t priv2[32], pub2[32];
	struct wg_peer *p2;
	struct wg_endpoint ep2;
	assert_true(sg_x25519_generate(priv2, pub2));
	assert_int_equal(wg_device_add_peer(t.dev, pub2, &p2), 0);
	ep4(&ep2, "192.0.2.2", 51820); /* same address: io_send checks the destination */
	wg_peer_set_endpoint(p2, &ep2);
	t.now = start + NSEC;
	wg_peer_initiate(p2, t.now);
	assert_int_equal(t.nsent, 2);
	assert_int_equal(wg_device_next_deadline(t.dev), start + 2 * NSEC);
	/* ... one with an earlier timer does. */
	p2->timer_at[TIMER_RETRANSMIT_HANDSHAKE] = start + NSEC + NSEC / 2;
	timers_refile(p2);
	assert_int_equal(wg_device_next_deadline(t.dev), start + NSEC + NSEC / 2);
	wg_device_remove_peer(t.dev, p2);
	assert_int_equal(wg_device_next_deadline(t.dev), start + 2 * NSEC);

	/* Nothing fires a nanosecond early. */
	wg_device_tick(t.dev, start + 2 * NSEC - 1);
	assert_int_equal(t.nsent, 2);
	assert_true(t.peer->timer_armed[TIMER_PERSISTENT_KEEPALIVE]);
	/* At the deadline the persistent keepalive fires: with no session it stages a keepalive
	 * and asks for a handshake, which REKEY_TIMEOUT holds back. */
	t.now = start + 2 * NSEC;
	wg_device_tick(t.dev, t.now);
	assert_false(t.peer->timer_armed[TIMER_PERSISTENT_KEEPALIVE]);
	assert_int_equal(t.nsent, 2);
	assert_int_equal(t.peer->staged.count, 1);
	assert_int_equal(wg_device_next_deadline(t.dev), retransmit);

	/* Disarming everything brings back UINT64_MAX. */
	timers_stop(t.peer);
	assert_int_equal(wg_device_next_deadline(t.dev), UINT64_MAX);
	sg_memzero(priv2, sizeof(priv2));
}

static void test_persistent_keepalive_starts_handshake(void **state)
{
	uint64_t start = t.now;
	/* Turning persistent keepalive on with no session: the keepalive needs one, so a
	 * handshake starts at once. */
	wg_peer_set_persistent_keepalive(t.peer, 25, t.now);
	assert_int_equal(t.nsent, 1);
	assert_int_equal(t.sent[0].buf[0], WG_MSG_INITIATION);
	assert_int_equal(t.peer->staged.count, 1);
	assert_int_equal(t.peer->staged.s->len[t.peer->staged.head], 0);
	/* Each initiation pushes the keepalive out by 25 s, so it does not fire while the
	 * retries (every ~5 s) go on; after giving up, it fires 25 s after the last try and
	 * starts a fresh handshake. */
	size_t n = MAX_TIMER_HANDSHAKES + 2;
	run_until(start + n * (REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX));
	assert_int_equal(t.events[WG_EVENT_HANDSHAKE_GAVE_UP], 1);
	assert_int_equal(t.nsent, n);
	assert_int_equal(t.peer->staged.count, 0);
	run_until(t.sent[n - 1].at + 25 * NSEC - 1);
	assert_int_equal(t.nsent, n);
	run_until(t.sent[n - 1].at + 25 * NSEC);
	assert_int_equal(t.nsent, n + 1);
	assert_int_equal(t.sent[n].buf[0], WG_MSG_INITIATION);
	assert_int_equal(t.peer->handshake_attempts, 0);
	assert_int_equal(t.peer->staged.count, 1);

	/* Turning it off stops it. */
	wg_peer_set_persistent_keepalive(t.peer, 0, t.now);
	assert_false(t.peer->timer_armed[TIMER_PERSISTENT_KEEPALIVE]);
}

static void test_persistent_keepalive_with_session(void **state)
{
	make_session();
	size_t before = t.nsent;
	uint64_t start = t.now;
	/* With a session, turning it on sends a keepalive now and then one every interval of
	 * silence. */
	wg_peer_set_persistent_keepalive(t.peer, 7, t.now);
	assert_int_equal(t.nsent, before + 1);
	assert_int_equal(t.sent[before].len, WG_MSG_DATA_MIN_LEN);
	run_until(start + 22 * NSEC);
	assert_int_equal(t.nsent, before + 4);
	for (size_t i = before; i < t.nsent; i++) {
		assert_int_equal(t.sent[i].len, WG_MSG_DATA_MIN_LEN);
		assert_int_equal(t.sent[i].at, start + (i - before) * 7 * NSEC);
	}
	/* Any authenticated traffic restarts the interval. */
	t.now = start + 25 * NSEC;
	remote_send_data(0);
	run_until(start + 31 * NSEC);
	assert_int_equal(t.nsent, before + 4);
	run_until(start + 32 * NSEC);
	assert_int_equal(t.nsent, before + 5);
	assert_int_equal(t.sent[t.nsent - 1].at, start + 32 * NSEC);
}

static void test_zero_key_material(void **state)
{
	uint64_t start = t.now;
	/* Responding to an initiation derives a session: keys are wiped 3 x REJECT_AFTER_TIME
	 * later unless a newer session is derived. */
	remote_send_initiation();
	assert_int_equal(t.nsent, 1);
	assert_int_equal(t.sent[0].buf[0], WG_MSG_RESPONSE);
	assert_non_null(t.peer->kp_next);
	assert_true(t.peer->timer_armed[TIMER_ZERO_KEY_MATERIAL]);
	assert_int_equal(t.peer->timer_at[TIMER_ZERO_KEY_MATERIAL], start + 3 * REJECT_AFTER_TIME);
	remote_consume_response();
	uint32_t first_index = t.r.remote_index;

	/* A new session 100 s later moves the deadline. */
	t.now = start + 100 * NSEC;
	remote_send_initiation();
	remote_consume_response();
	uint32_t second_index = t.r.remote_index;
	remote_send_data(20); /* confirms the session and is data: keepalive timer too */
	assert_non_null(t.peer->kp_current);
	assert_null(index_lookup(t.dev, first_index)); /* the unconfirmed next was replaced */
	assert_int_equal(t.peer->timer_at[TIMER_ZERO_KEY_MATERIAL],
			 start + 100 * NSEC + 3 * REJECT_AFTER_TIME);

	run_until(start + 100 * NSEC + 3 * REJECT_AFTER_TIME - 1);
	assert_int_equal(t.events[WG_EVENT_KEYS_ZEROED], 0);
	assert_non_null(t.peer->kp_current);
	run_until(start + 100 * NSEC + 3 * REJECT_AFTER_TIME);
	assert_int_equal(t.events[WG_EVENT_KEYS_ZEROED], 1);
	assert_null(t.peer->kp_current);
	assert_null(t.peer->kp_previous);
	assert_null(t.peer->kp_next);
	assert_null(index_lookup(t.dev, second_index));
	/* Data for the wiped session is now unknown. */
	struct wg_device_stats st;
	wg_device_get_stats(t.dev, &st);
	uint64_t unknown = st.rx_unknown_index;
	remote_send_data(0);
	wg_device_get_stats(t.dev, &st);
	assert_int_equal(st.rx_unknown_index, unknown + 1);
}

static void test_keepalive_after_data_received(void **state)
{
	make_session();
	size_t before = t.nsent;
	uint64_t start = t.now;
	/* Data received and nothing sent back: one keepalive KEEPALIVE_TIMEOUT later. */
	remote_send_data(30);
	t.now = start + 3 * NSEC;
	remote_send_data(30); /* still pending: "need another keepalive" */
	run_until(start + KEEPALIVE_TIMEOUT - 1);
	assert_int_equal(t.nsent, before);
	run_until(start + KEEPALIVE_TIMEOUT);
	assert_int_equal(t.nsent, before + 1);
	assert_int_equal(t.sent[before].len, WG_MSG_DATA_MIN_LEN);
	/* ... and, because more data came meanwhile, another one a period later. */
	run_until(start + 2 * KEEPALIVE_TIMEOUT);
	assert_int_equal(t.nsent, before + 2);
	run_until(start + 5 * KEEPALIVE_TIMEOUT);
	assert_int_equal(t.nsent, before + 2);

	/* Sending anything authenticated cancels the pending keepalive. */
	remote_send_data(30);
	assert_true(t.peer->timer_armed[TIMER_SEND_KEEPALIVE]);
	assert_int_equal(send_packet(10), 0);
	assert_false(t.peer->timer_armed[TIMER_SEND_KEEPALIVE]);
	/* A received keepalive is not data: it asks for no keepalive in return. */
	remote_send_data(0);
	assert_false(t.peer->timer_armed[TIMER_SEND_KEEPALIVE]);
}

static void test_new_handshake_when_unanswered(void **state)
{
	make_session();
	size_t before = t.nsent;
	uint64_t start = t.now;
	/* We send data and hear nothing for KEEPALIVE_TIMEOUT + REKEY_TIMEOUT (+ jitter). */
	assert_int_equal(send_packet(10), 0);
	assert_int_equal(t.nsent, before + 1);
	uint64_t at = t.peer->timer_at[TIMER_NEW_HANDSHAKE];
	assert_true(at >= start + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT);
	assert_true(at < start + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX);
	/* More data does not push the deadline. */
	t.now = start + 5 * NSEC;
	assert_int_equal(send_packet(10), 0);
	assert_int_equal(t.peer->timer_at[TIMER_NEW_HANDSHAKE], at);
	run_until(at - 1);
	assert_int_equal(count_type(WG_MSG_INITIATION), 0);
	run_until(at);
	assert_int_equal(count_type(WG_MSG_INITIATION), 1);
	assert_int_equal(t.sent[t.nsent - 1].at, at);

	/* Whereas any authenticated packet received in time disarms it. */
	run_until(at + 20 * NSEC);
	assert_false(t.peer->timer_armed[TIMER_NEW_HANDSHAKE]);
	assert_int_equal(send_packet(10), 0);
	assert_true(t.peer->timer_armed[TIMER_NEW_HANDSHAKE]);
	remote_send_data(0);
	assert_false(t.peer->timer_armed[TIMER_NEW_HANDSHAKE]);
}

static void test_handshake_complete_stops_retransmit(void **state)
{
	/* The device initiates; the remote (as responder) answers; the retransmission stops
	 * and the staged packet plus nothing else goes out. */
	assert_int_equal(send_packet(10), 0);
	assert_int_equal(t.nsent, 1);
	const struct sent *init = &t.sent[0];
	uint8_t dev_pub[32], e_pub[32], resp[WG_MSG_RESPONSE_LEN] = {WG_MSG_RESPONSE},
					psk[32] = {0};
	uint8_t ss[32], rs[32], key[32], ts[NOISE_TIMESTAMP_LEN];
	struct noise_symmetric s;
	struct cookie_maker m;
	assert_true(wg_device_get_public_key(t.dev, dev_pub));
	/* Consume the initiation as the responder would. */
	assert_true(noise_init(&s, CLASSIC, (const uint8_t *)wg_identifier, strlen(wg_identifier), t.r.pub));
	assert_true(noise_read_msg1_static(&s, key, rs, init->buf + 8, init->buf + 40, t.r.priv));
	assert_memory_equal(rs, dev_pub, 32);
	assert_true(sg_x25519(ss, t.r.priv, dev_pub));
	assert_true(noise_read_msg1_payload(&s, key, ts, init->buf + 88, 28, ss));
	/* Answer it. */
	sg_put_le32(resp + 4, t.r.local_index);
	memcpy(resp + 8, init->buf + 4, 4);
	assert_true(sg_x25519_generate(t.r.e_priv, e_pub));
	assert_true(noise_write_msg2(&s, resp + 12, resp + 44, NULL, 0, t.r.e_priv, init->buf + 8,
				     dev_pub, psk));
	assert_true(cookie_maker_init(&m, dev_pub));
	assert_true(cookie_add_macs(&m, SG_SUITE_CLASSIC, resp, sizeof(resp), t.now));
	t.now += NSEC;
	wg_device_receive(t.dev, t.now, &t.ep, resp, sizeof(resp));
	assert_int_equal(t.events[WG_EVENT_HANDSHAKE_COMPLETE], 1);
	assert_false(t.peer->timer_armed[TIMER_RETRANSMIT_HANDSHAKE]);
	assert_int_equal(t.peer->handshake_attempts, 0);
	/* The staged packet went out at once (no separate keepalive needed). */
	assert_int_equal(t.nsent, 2);
	assert_int_equal(t.sent[1].buf[0], WG_MSG_DATA);
	assert_int_equal(t.sent[1].len, WG_MSG_DATA_HEADER_LEN + 32 + SG_AEAD_TAG_LEN);
	assert_int_equal(sg_le32(t.sent[1].buf + 4), t.r.local_index);
	assert_int_equal(t.peer->staged.count, 0);
	/* Nothing more until the data sent stays unanswered for KEEPALIVE + REKEY_TIMEOUT. */
	uint64_t sent_at = t.now;
	run_until(sent_at + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT - 1);
	assert_int_equal(t.nsent, 2);
	run_until(sent_at + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX);
	assert_int_equal(count_type(WG_MSG_INITIATION), 2);
	noise_symmetric_wipe(&s);
	cookie_maker_wipe(&m);
	sg_memzero(key, sizeof(key));
	sg_memzero(ss, sizeof(ss));
}

static uint64_t naive_next_deadline(void)
{
	uint64_t next = UINT64_MAX;
	for (struct wg_peer *p = wg_device_first_peer(t.dev); p; p = wg_peer_next(p))
		for (int i = 0; i < TIMER_COUNT; i++)
			if (p->timer_armed[i] && p->timer_at[i] < next)
				next = p->timer_at[i];
	return next;
}

/* The device's timer heap against a naive scan, over random timer activity on many peers. */
static void test_timer_heap_matches_naive_scan(void **state)
{
	enum { N = 300 };
	struct wg_peer *peers[N];
	uint8_t priv[32], pub[32];
	for (int i = 0; i < N; i++) {
		assert_true(sg_x25519_generate(priv, pub));
		assert_int_equal(wg_device_add_peer(t.dev, pub, &peers[i]), 0);
		wg_peer_set_endpoint(peers[i], &t.ep);
	}
	srand(7);
	for (int step = 0; step < 4000; step++) {
		t.nsent = 0;
		struct wg_peer *p = peers[rand() % N];
		switch (rand() % 4) {
		case 0:
			wg_peer_initiate(p, t.now);
			break;
		case 1:
			wg_peer_set_persistent_keepalive(p, (uint16_t)(1 + rand() % 30), t.now);
			break;
		case 2:
			wg_peer_set_persistent_keepalive(p, 0, t.now);
			break;
		default:
			t.now += (uint64_t)(rand() % 3000) * NSEC / 1000;
			wg_device_tick(t.dev, t.now);
			/* Nothing due is left armed. */
			assert_true(naive_next_deadline() > t.now);
			break;
		}
		assert_int_equal(wg_device_next_deadline(t.dev), naive_next_deadline());
	}
	for (int i = 0; i < N; i += 2)
		wg_device_remove_peer(t.dev, peers[i]);
	assert_int_equal(wg_device_next_deadline(t.dev), naive_next_deadline());
	for (int i = 1; i < N; i += 2)
		wg_device_remove_peer(t.dev, peers[i]);
	assert_int_equal(wg_device_next_deadline(t.dev), naive_next_deadline());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	    T(test_no_timers_no_deadline),
	    T(test_retransmit_then_give_up),
	    T(test_one_initiation_per_rekey_timeout),
	    T(test_next_deadline_is_earliest),
	    T(test_persistent_keepalive_starts_handshake),
	    T(test_persistent_keepalive_with_session),
	    T(test_zero_key_material),
	    T(test_keepalive_after_data_received),
	    T(test_new_handshake_when_unanswered),
	    T(test_handshake_complete_stops_retransmit),
	    T(test_timer_heap_matches_naive_scan),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
