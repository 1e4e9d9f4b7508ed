/* Two instances of the WireGuard core wired together in memory, with a simulated clock: full
 * handshakes, data both ways, rekeying on time and on message count, expiry, replayed and
 * reordered packets, cookies under load, timestamp replay, roaming, timers. */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "test_util.h"

#include "common/bytes.h"
#include "crypto/crypto.h"
#include "wg/wg_int.h"

#define MAX_FLIGHT 512

struct datagram {
	int from; /* index of the sending node */
	struct wg_endpoint src, dst;
	size_t len;
	uint8_t ttl; /* what the core asked the socket for (0 = default) */
	uint8_t buf[2048];
};

struct node {
	int id;
	struct wg_device *dev;
	struct wg_endpoint ep; /* our outer address */
	uint8_t priv[32], pub[32];
	struct wg_peer *peer;  /* the other node */
	size_t delivered;
	uint8_t last_delivered[2048];
	size_t last_delivered_len;
	uint8_t order[1024]; /* the fill byte of each delivered packet, in delivery order */
	unsigned events[WG_EVENT_MODE_UNUSABLE + 1];
	const char *last_fail_reason;
	const char *last_mode_reason;
	uint8_t fips_priv[WG_FIPS_PRIV_LEN], fips_pub[WG_FIPS_PUB_LEN];
	unsigned sent; /* datagrams handed to the send upcall */
};

static struct {
	struct node n[2];
	struct datagram flight[MAX_FLIGHT];
	size_t nflight;
	uint64_t now;
	uint64_t real_base;
	bool drop_all;   /* simulate a dead network */
	bool drop_fips;  /* a middlebox that drops every FIPS-mode datagram */
} sim;

static void ep4(struct wg_endpoint *ep, const char *ip, uint16_t port)
{
	memset(ep, 0, sizeof(*ep));
	ep->addr.in4.sin_family = AF_INET;
	ep->addr.in4.sin_port = htons(port);
	inet_pton(AF_INET, ip, &ep->addr.in4.sin_addr);
}

static void io_send(void *ctx, struct wg_peer *peer, const struct wg_endpoint *to, const uint8_t *buf,
		    size_t len, uint8_t ttl)
{
	struct node *n = ctx;
	n->sent++;
	if (sim.drop_all || (sim.drop_fips && len > 1 && buf[1] == WG_MODE_FIPS))
		return;
	assert_true(sim.nflight < MAX_FLIGHT);
	assert_true(len <= sizeof(sim.flight[0].buf));
	struct datagram *d = &sim.flight[sim.nflight++];
	d->from = n->id;
	d->src = n->ep;
	d->dst = *to;
	d->len = len;
	d->ttl = ttl;
	memcpy(d->buf, buf, len);
}

static void io_deliver(void *ctx, struct wg_peer *peer, const uint8_t *pkt, size_t len)
{
	struct node *n = ctx;
	if (n->delivered < sizeof(n->order) && len > 20)
		n->order[n->delivered] = pkt[20];
	n->delivered++;
	memcpy(n->last_delivered, pkt, len);
	n->last_delivered_len = len;
}

static uint64_t io_realtime(void *ctx)
{
	return sim.real_base + sim.now;
}

static void io_event(void *ctx, const struct wg_event *ev)
{
	struct node *n = ctx;
	if (getenv("SG_TEST_TRACE"))
		fprintf(stderr, "t=%.3f node=%d event=%d reason=%s\n", (double)sim.now / NSEC, n->id,
			ev->type, ev->reason ? ev->reason : "-");
	n->events[ev->type]++;
	if (ev->type == WG_EVENT_HANDSHAKE_FAILED)
		n->last_fail_reason = ev->reason;
	if (ev->type >= WG_EVENT_MODE_REFUSED)
		n->last_mode_reason = ev->reason;
}

/* Delivers every datagram in flight (and what they cause) until the network is quiet. */
static void pump(void)
{
	for (int rounds = 0; sim.nflight && rounds < 64; rounds++) {
		size_t count = sim.nflight;
		struct datagram *batch = malloc(count * sizeof(*batch));
		memcpy(batch, sim.flight, count * sizeof(*batch));
		sim.nflight = 0;
		for (size_t i = 0; i < count; i++) {
			struct node *to = NULL;
			for (int k = 0; k < 2; k++)
				if (wg_endpoint_eq(&sim.n[k].ep, &batch[i].dst))
					to = &sim.n[k];
			if (to)
				wg_device_receive(to->dev, sim.now, &batch[i].src, batch[i].buf,
						  batch[i].len);
		}
		free(batch);
	}
}

static void advance(uint64_t ns)
{
	/* Step through every deadline so timers fire in order, as an event loop would. */
	uint64_t end = sim.now + ns;
	for (;;) {
		uint64_t next = UINT64_MAX;
		for (int k = 0; k < 2; k++) {
			uint64_t d = wg_device_next_deadline(sim.n[k].dev);
			if (d < next)
				next = d;
		}
		if (next > end)
			break;
		if (next > sim.now)
			sim.now = next;
		for (int k = 0; k < 2; k++)
			wg_device_tick(sim.n[k].dev, sim.now);
		pump();
	}
	sim.now = end;
}

/* A minimal IPv4 packet from 10.9.0.(src) to 10.9.0.(dst) with `payload` bytes. */
static size_t make_ip4(uint8_t *p, int src, int dst, size_t payload, uint8_t fill)
{
	size_t len = 20 + payload;
	memset(p, fill, len);
	memset(p, 0, 20);
	p[0] = 0x45;
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	p[8] = 64;
	p[9] = 17;
	p[12] = 10, p[13] = 9, p[14] = 0, p[15] = (uint8_t)src;
	p[16] = 10, p[17] = 9, p[18] = 0, p[19] = (uint8_t)dst;
	return len;
}

static int send_ip(int from, size_t payload, uint8_t fill)
{
	uint8_t pkt[1500];
	size_t len = make_ip4(pkt, from + 1, 2 - from, payload, fill);
	return wg_device_send(sim.n[from].dev, sim.now, pkt, len);
}

static int setup(void **state)
{
	struct wg_io io = {.send = io_send, .deliver = io_deliver, .realtime_ns = io_realtime,
			   .event = io_event};
	memset(&sim, 0, sizeof(sim));
	sim.now = 1000 * NSEC;
	sim.real_base = 1700000000ULL * NSEC;
	for (int k = 0; k < 2; k++) {
		struct node *n = &sim.n[k];
		n->id = k;
		io.ctx = n;
		n->dev = wg_device_new(&io);
		assert_non_null(n->dev);
		assert_true(sg_x25519_generate(n->priv, n->pub));
		assert_int_equal(wg_device_set_private_key(n->dev, n->priv), 0);
	}
	ep4(&sim.n[0].ep, "192.0.2.1", 51820);
	ep4(&sim.n[1].ep, "192.0.2.2", 51821);
	for (int k = 0; k < 2; k++) {
		struct node *n = &sim.n[k], *o = &sim.n[1 - k];
		assert_int_equal(wg_device_add_peer(n->dev, o->pub, &n->peer), 0);
		uint8_t addr[4] = {10, 9, 0, (uint8_t)(o->id + 1)};
		assert_int_equal(wg_peer_add_allowed_ip(n->peer, AF_INET, addr, 32), 0);
		wg_peer_set_endpoint(n->peer, &o->ep);
	}
	return 0;
}

static int teardown(void **state)
{
	for (int k = 0; k < 2; k++)
		wg_device_free(sim.n[k].dev);
	return 0;
}

static void handshake(int initiator)
{
	assert_int_equal(send_ip(initiator, 100, 0xaa), 0);
	pump();
}

static void test_handshake_and_data(void **state)
{
	struct node *a = &sim.n[0], *b = &sim.n[1];
	handshake(0);
	/* The staged packet went out after the response; B confirmed with it. */
	assert_int_equal(b->delivered, 1);
	assert_int_equal(b->last_delivered_len, 120);
	assert_int_equal(a->events[WG_EVENT_HANDSHAKE_COMPLETE], 1);
	assert_int_equal(b->events[WG_EVENT_HANDSHAKE_COMPLETE], 1);
	assert_non_null(a->peer->kp_current);
	assert_non_null(b->peer->kp_current);
	assert_null(b->peer->kp_next);
	for (int i = 0; i < 50; i++) {
		assert_int_equal(send_ip(0, 1000, (uint8_t)i), 0);
		assert_int_equal(send_ip(1, 10, (uint8_t)i), 0);
	}
	pump();
	assert_int_equal(b->delivered, 51);
	assert_int_equal(a->delivered, 50);
	/* Counters: outer bytes, same on both ends. */
	struct wg_peer_stats sa, sb;
	wg_peer_get_stats(a->peer, &sa);
	wg_peer_get_stats(b->peer, &sb);
	assert_int_equal(sa.tx_bytes, sb.rx_bytes);
	assert_int_equal(sb.tx_bytes, sa.rx_bytes);
	assert_true(sa.last_handshake_real_ns > 0);
	/* A packet to an address nobody owns has no route. */
	uint8_t pkt[100];
	size_t len = make_ip4(pkt, 1, 77, 10, 0);
	assert_int_equal(wg_device_send(a->dev, sim.now, pkt, len), SG_ENOROUTE);
	/* Not an IP packet. */
	pkt[0] = 0x10;
	assert_int_equal(wg_device_send(a->dev, sim.now, pkt, len), SG_EINVAL);
}

static void test_handshake_from_responder_side(void **state)
{
	handshake(1);
	assert_int_equal(sim.n[0].delivered, 1);
	assert_int_equal(send_ip(0, 64, 1), 0);
	pump();
	assert_int_equal(sim.n[1].delivered, 1);
}

static void test_simultaneous_initiation(void **state)
{
	assert_int_equal(send_ip(0, 10, 1), 0);
	assert_int_equal(send_ip(1, 10, 2), 0);
	pump();
	advance(20 * NSEC);
	assert_int_equal(send_ip(0, 10, 3), 0);
	assert_int_equal(send_ip(1, 10, 4), 0);
	pump();
	assert_true(sim.n[0].delivered >= 1);
	assert_true(sim.n[1].delivered >= 1);
}

static void test_rekey_after_time(void **state)
{
	struct node *a = &sim.n[0], *b = &sim.n[1];
	handshake(0);
	struct wg_keypair *first = a->peer->kp_current;
	uint32_t first_index = first->entry.index;
	/* Traffic both ways every 10 s; past REKEY_AFTER_TIME the initiator rekeys. */
	for (int t = 0; t < 13; t++) {
		advance(10 * NSEC);
		assert_int_equal(send_ip(0, 10, 1), 0);
		assert_int_equal(send_ip(1, 10, 1), 0);
		pump();
	}
	assert_true(a->events[WG_EVENT_REKEY] >= 1);
	assert_int_not_equal(a->peer->kp_current->entry.index, first_index);
	assert_int_equal(a->events[WG_EVENT_HANDSHAKE_COMPLETE], 2);
	/* The old session is the previous one and still decrypts late packets. */
	assert_non_null(a->peer->kp_previous);
	size_t before = b->delivered;
	assert_int_equal(send_ip(0, 10, 2), 0);
	pump();
	assert_int_equal(b->delivered, before + 1);
}

static void test_rekey_after_messages(void **state)
{
	struct node *a = &sim.n[0];
	handshake(0);
	uint32_t idx = a->peer->kp_current->entry.index;
	advance(REKEY_TIMEOUT + NSEC); /* one initiation per REKEY_TIMEOUT at most */
	a->peer->kp_current->send_counter = REKEY_AFTER_MESSAGES + 1;
	/* The receiver's window must accept the jump too. */
	assert_int_equal(send_ip(0, 10, 1), 0);
	pump();
	assert_int_equal(a->events[WG_EVENT_REKEY], 1);
	assert_int_not_equal(a->peer->kp_current->entry.index, idx);
}

static void test_reject_after_messages(void **state)
{
	struct node *a = &sim.n[0], *b = &sim.n[1];
	handshake(0);
	a->peer->kp_current->send_counter = REJECT_AFTER_MESSAGES;
	size_t before = b->delivered;
	sim.drop_all = true; /* the rekey cannot complete */
	assert_int_equal(send_ip(0, 10, 1), 0);
	sim.drop_all = false;
	pump();
	assert_int_equal(b->delivered, before); /* nothing sent with an exhausted key */
	assert_false(a->peer->kp_current->send_valid);
}

static void test_expiry_and_zeroing(void **state)
{
	struct node *a = &sim.n[0], *b = &sim.n[1];
	handshake(0);
	/* The network dies: after REJECT_AFTER_TIME nothing is sent with the old keys. */
	sim.drop_all = true;
	advance(REJECT_AFTER_TIME + NSEC);
	assert_int_equal(send_ip(0, 10, 1), 0);
	sim.drop_all = false;
	size_t before = b->delivered;
	sim.nflight = 0;
	pump();
	assert_int_equal(b->delivered, before);
	/* Handshake attempts give up after REKEY_ATTEMPT_TIME... */
	sim.drop_all = true;
	advance(REKEY_ATTEMPT_TIME + 20 * NSEC); /* 20 tries of 5 s + jitter */
	assert_true(a->events[WG_EVENT_HANDSHAKE_GAVE_UP] >= 1);
	assert_int_equal(a->peer->staged.count, 0);
	/* ... and every key is wiped after 3 x REJECT_AFTER_TIME. */
	advance(3 * REJECT_AFTER_TIME + NSEC);
	assert_true(a->events[WG_EVENT_KEYS_ZEROED] >= 1);
	assert_null(a->peer->kp_current);
	assert_null(a->peer->kp_previous);
	assert_null(b->peer->kp_current);
	assert_int_equal(a->peer->act->hs.state, HANDSHAKE_ZEROED);
	/* And a new session comes up when the network returns. */
	sim.drop_all = false;
	handshake(0);
	assert_int_equal(b->delivered, before + 1);
}

static void test_replay_and_reorder(void **state)
{
	struct node *a = &sim.n[0], *b = &sim.n[1];
	handshake(0);
	/* Capture 20 data packets, deliver them in reverse order, then all again. */
	for (int i = 0; i < 20; i++)
		assert_int_equal(send_ip(0, 30, (uint8_t)i), 0);
	size_t count = sim.nflight;
	assert_int_equal(count, 20);
	struct datagram *saved = malloc(count * sizeof(*saved));
	memcpy(saved, sim.flight, count * sizeof(*saved));
	sim.nflight = 0;
	size_t before = b->delivered;
	for (size_t i = count; i-- > 0;) {
		struct datagram d = saved[i];
		wg_device_receive(b->dev, sim.now, &d.src, d.buf, d.len);
	}
	assert_int_equal(b->delivered, before + count);
	struct wg_device_stats st;
	for (size_t i = 0; i < count; i++) {
		struct datagram d = saved[i];
		wg_device_receive(b->dev, sim.now, &d.src, d.buf, d.len);
	}
	wg_device_get_stats(b->dev, &st);
	assert_int_equal(st.rx_replayed, count);
	assert_int_equal(b->delivered, before + count);
	/* A tampered packet fails authentication. */
	saved[0].buf[40] ^= 1;
	wg_device_receive(b->dev, sim.now, &saved[0].src, saved[0].buf, saved[0].len);
	wg_device_get_stats(b->dev, &st);
	assert_int_equal(st.rx_decrypt_fail, 1);
	free(saved);
	(void)a;
}

static void test_timestamp_replay_rejected(void **state)
{
	struct node *a = &sim.n[0], *b = &sim.n[1];
	assert_int_equal(send_ip(0, 10, 1), 0);
	assert_int_equal(sim.nflight, 1);
	struct datagram init = sim.flight[0];
	pump();
	assert_int_equal(b->events[WG_EVENT_HANDSHAKE_COMPLETE], 1);
	/* Replay the initiation later: same timestamp, rejected, no new session. */
	advance(2 * NSEC);
	struct datagram d = init;
	wg_device_receive(b->dev, sim.now, &d.src, d.buf, d.len);
	assert_int_equal(sim.nflight, 0);
	assert_string_equal(b->last_fail_reason, "timestamp_replayed");
	struct wg_device_stats st;
	wg_device_get_stats(b->dev, &st);
	assert_int_equal(st.rx_handshake_fail, 1);
	(void)a;
}

static void test_initiation_flood_limited(void **state)
{
	struct node *a = &sim.n[0], *b = &sim.n[1];
	/* Fresh initiations (new timestamps) faster than 50/s: only the first is consumed. */
	struct datagram inits[3];
	for (int i = 0; i < 3; i++) {
		handshake_clear(a->peer);
		a->peer->has_sent_handshake = false;
		sim.real_base += NSEC; /* a later wall clock, so timestamps increase */
		wg_peer_initiate(a->peer, sim.now);
		assert_int_equal(sim.nflight, 1);
		inits[i] = sim.flight[0];
		sim.nflight = 0;
	}
	for (int i = 0; i < 3; i++)
		wg_device_receive(b->dev, sim.now + (uint64_t)i * NSEC / 1000, &inits[i].src,
				  inits[i].buf, inits[i].len);
	struct wg_device_stats st;
	wg_device_get_stats(b->dev, &st);
	assert_int_equal(st.rx_rate_limited, 2);
	assert_int_equal(sim.nflight, 1); /* one response */
	sim.nflight = 0;
}

static void test_cookie_under_load(void **state)
{
	struct node *a = &sim.n[0], *b = &sim.n[1];
	wg_device_force_under_load(b->dev, true);
	assert_int_equal(send_ip(0, 10, 1), 0);
	pump();
	/* B answered with a cookie reply instead of a response. */
	struct wg_device_stats st;
	wg_device_get_stats(b->dev, &st);
	assert_int_equal(st.rx_cookie_sent, 1);
	assert_int_equal(a->events[WG_EVENT_COOKIE_RECEIVED], 1);
	assert_true(a->peer->act->cookie.cookie_valid);
	assert_int_equal(b->events[WG_EVENT_HANDSHAKE_COMPLETE], 0);
	/* The retry after REKEY_TIMEOUT carries mac2 and is accepted. */
	advance(REKEY_TIMEOUT + NSEC);
	assert_int_equal(a->events[WG_EVENT_HANDSHAKE_COMPLETE], 1);
	assert_int_equal(b->delivered, 1);
	/* A forged cookie reply (wrong key) is rejected. */
	uint8_t reply[WG_MSG_COOKIE_LEN] = {WG_MSG_COOKIE};
	memcpy(reply + 4, &a->peer->kp_current->entry.index, 4);
	wg_device_receive(a->dev, sim.now, &b->ep, reply, sizeof(reply));
	wg_device_get_stats(a->dev, &st);
	assert_int_equal(st.rx_bad_mac, 1);
	wg_device_force_under_load(b->dev, false);
}

static void test_under_load_detected_by_rate(void **state)
{
	struct node *a = &sim.n[0], *b = &sim.n[1];
	/* Many initiations with a valid mac1 in one second put B under load by itself. */
	uint8_t msg[WG_MSG_INITIATION_LEN];
	assert_int_equal(handshake_create_initiation(a->peer, SG_SUITE_CLASSIC, msg, sim.now),
			 sizeof(msg));
	assert_true(cookie_add_macs(&a->peer->act->cookie, SG_SUITE_CLASSIC, msg, sizeof(msg), sim.now));
	for (int i = 0; i < WG_UNDER_LOAD_RATE + 10; i++) {
		uint8_t copy[sizeof(msg)];
		memcpy(copy, msg, sizeof(msg));
		wg_device_receive(b->dev, sim.now, &a->ep, copy, sizeof(copy));
	}
	struct wg_device_stats st;
	wg_device_get_stats(b->dev, &st);
	assert_true(st.rx_cookie_sent >= 9);
	sim.nflight = 0;
	/* One second later the load is gone and a handshake goes through normally. */
	advance(2 * NSEC);
	handshake_clear(a->peer);
	a->peer->has_sent_handshake = false;
	sim.real_base += 10 * NSEC;
	handshake(0);
	assert_int_equal(b->delivered, 1);
}

static void test_roaming(void **state)
{
	struct node *a = &sim.n[0], *b = &sim.n[1];
	handshake(0);
	/* B moves to a new address and sends: A learns it from the authenticated packet. */
	ep4(&b->ep, "198.51.100.7", 40000);
	assert_int_equal(send_ip(1, 10, 1), 0);
	pump();
	assert_true(a->events[WG_EVENT_ENDPOINT_CHANGED] >= 1);
	assert_true(wg_endpoint_eq(&a->peer->endpoint, &b->ep));
	size_t before = b->delivered;
	assert_int_equal(send_ip(0, 10, 2), 0);
	pump();
	assert_int_equal(b->delivered, before + 1);
	/* A forged (unauthenticated) packet from elsewhere does not move the endpoint. */
	struct wg_endpoint evil;
	ep4(&evil, "203.0.113.66", 666);
	uint8_t junk[64] = {WG_MSG_DATA};
	memcpy(junk + 4, &a->peer->kp_current->entry.index, 4);
	wg_device_receive(a->dev, sim.now, &evil, junk, sizeof(junk));
	assert_true(wg_endpoint_eq(&a->peer->endpoint, &b->ep));
}

/* Sticky sources: the local address B's datagrams arrive on (what the socket layer puts in the
 * endpoint) is refreshed on every authenticated packet and used for A's replies, but it is no
 * roaming event, because the remote address and port stayed the same. */
static void test_sticky_source_refreshed(void **state)
{
	struct node *a = &sim.n[0], *b = &sim.n[1];
	handshake(0);
	unsigned changed = a->events[WG_EVENT_ENDPOINT_CHANGED];
	/* io_send stamps each datagram with the sender's ep, so B's datagrams now reach A as
	 * if sent to A's second address 192.0.2.101 on interface 7. */
	b->ep.has_src = true;
	inet_pton(AF_INET, "192.0.2.101", &b->ep.src4);
	b->ep.src_ifindex = 7;
	assert_int_equal(send_ip(1, 10, 1), 0);
	pump();
	assert_int_equal(a->events[WG_EVENT_ENDPOINT_CHANGED], changed);
	assert_true(a->peer->endpoint.has_src);
	assert_int_equal(a->peer->endpoint.src4.s_addr, b->ep.src4.s_addr);
	assert_int_equal(a->peer->endpoint.src_ifindex, 7);
	assert_true(wg_endpoint_eq(&a->peer->endpoint, &b->ep));
	/* A's reply carries that source down to the socket layer. */
	assert_int_equal(send_ip(0, 10, 2), 0);
	assert_int_equal(sim.nflight, 1);
	assert_true(sim.flight[0].dst.has_src);
	assert_int_equal(sim.flight[0].dst.src4.s_addr, b->ep.src4.s_addr);
	pump();
	/* Another local address, same remote: refreshed again, still no event. */
	inet_pton(AF_INET, "192.0.2.102", &b->ep.src4);
	b->ep.src_ifindex = 8;
	assert_int_equal(send_ip(1, 10, 3), 0);
	pump();
	assert_int_equal(a->events[WG_EVENT_ENDPOINT_CHANGED], changed);
	assert_int_equal(a->peer->endpoint.src4.s_addr, b->ep.src4.s_addr);
	assert_int_equal(a->peer->endpoint.src_ifindex, 8);
	/* A forged packet with yet another source changes nothing. */
	struct wg_endpoint forged = b->ep;
	inet_pton(AF_INET, "192.0.2.103", &forged.src4);
	uint8_t junk[64] = {WG_MSG_DATA};
	memcpy(junk + 4, &a->peer->kp_current->entry.index, 4);
	wg_device_receive(a->dev, sim.now, &forged, junk, sizeof(junk));
	assert_int_equal(a->peer->endpoint.src4.s_addr, b->ep.src4.s_addr);
	/* A remote that moves is still an event, and brings its own source. */
	ep4(&b->ep, "198.51.100.9", 40001);
	assert_int_equal(send_ip(1, 10, 4), 0);
	pump();
	assert_int_equal(a->events[WG_EVENT_ENDPOINT_CHANGED], changed + 1);
	assert_false(a->peer->endpoint.has_src);
	/* An endpoint set by configuration has no source: the kernel picks it. */
	struct wg_endpoint conf;
	ep4(&conf, "192.0.2.2", 51821);
	wg_peer_set_endpoint(a->peer, &conf);
	assert_false(a->peer->endpoint.has_src);
}

static void test_keepalive_timers(void **state)
{
	struct node *a = &sim.n[0], *b = &sim.n[1];
	handshake(0);
	/* B received data and sent nothing: after KEEPALIVE_TIMEOUT it sends a keepalive. */
	struct wg_peer_stats before, after;
	wg_peer_get_stats(a->peer, &before);
	advance(KEEPALIVE_TIMEOUT + NSEC);
	wg_peer_get_stats(a->peer, &after);
	assert_int_equal(after.rx_bytes - before.rx_bytes, 32);
	/* Persistent keepalive: every interval, even when idle; turning it on sends one now. */
	wg_peer_set_persistent_keepalive(b->peer, 25, sim.now);
	pump();
	wg_peer_get_stats(a->peer, &before);
	assert_int_equal(before.rx_bytes - after.rx_bytes, 32);
	advance(100 * NSEC);
	wg_peer_get_stats(a->peer, &after);
	/* 4 keepalives in 100 s, plus whatever rekeys on the way did not happen (idle). */
	assert_int_equal((after.rx_bytes - before.rx_bytes) % 32, 0);
	assert_true(after.rx_bytes - before.rx_bytes >= 4 * 32);
}

static void test_new_handshake_when_unanswered(void **state)
{
	struct node *a = &sim.n[0], *b = &sim.n[1];
	handshake(0);
	/* A sends data but hears nothing back (B's keepalives are lost): after
	 * KEEPALIVE_TIMEOUT + REKEY_TIMEOUT A initiates again. */
	unsigned before = a->events[WG_EVENT_HANDSHAKE_INITIATED];
	sim.drop_all = true;
	advance(KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + NSEC);
	sim.drop_all = false;
	assert_int_equal(a->events[WG_EVENT_HANDSHAKE_INITIATED], before + 1);
	(void)b;
}

static void test_malformed_messages(void **state)
{
	struct node *b = &sim.n[1];
	uint8_t buf[2048];
	struct wg_device_stats st;
	const size_t sizes[] = {0, 1, 3, 4, 31, 32, 63, 64, 65, 91, 92, 93, 147, 148, 149, 2048};
	/* Every type with every interesting length, random contents. */
	for (uint32_t type = 0; type < 6; type++) {
		for (size_t s = 0; s < SG_ARRAY_LEN(sizes); s++) {
			assert_true(sg_random_bytes(buf, sizeof(buf)));
			buf[0] = (uint8_t)type;
			buf[1] = buf[2] = buf[3] = 0;
			wg_device_receive(b->dev, sim.now, &sim.n[0].ep, buf, sizes[s]);
		}
	}
	/* Non-zero reserved bytes are not WireGuard. */
	buf[0] = 1;
	buf[1] = 1;
	wg_device_receive(b->dev, sim.now, &sim.n[0].ep, buf, 148);
	wg_device_get_stats(b->dev, &st);
	assert_int_equal(st.rx_datagrams, 6 * SG_ARRAY_LEN(sizes) + 1);
	uint64_t dropped = st.rx_invalid + st.rx_bad_mac + st.rx_unknown_index;
	assert_int_equal(dropped, st.rx_datagrams);
	assert_int_equal(b->delivered, 0);
	assert_int_equal(sim.nflight, 0);
}

static void test_source_address_checked(void **state)
{
	struct node *a = &sim.n[0], *b = &sim.n[1];
	handshake(0);
	/* A packet from A whose inner source is not in A's allowed IPs at B is dropped. */
	uint8_t pkt[100];
	size_t len = make_ip4(pkt, 99, 2, 10, 0);
	assert_int_equal(wg_device_send(a->dev, sim.now, pkt, len), 0);
	pump();
	struct wg_device_stats st;
	wg_device_get_stats(b->dev, &st);
	assert_int_equal(st.rx_bad_source, 1);
	assert_int_equal(b->delivered, 1);
}

static void test_psk_mismatch_and_match(void **state)
{
	struct node *a = &sim.n[0], *b = &sim.n[1];
	uint8_t psk[32];
	assert_true(sg_random_bytes(psk, 32));
	wg_peer_set_preshared_key(a->peer, psk);
	handshake(0);
	assert_int_equal(a->events[WG_EVENT_HANDSHAKE_COMPLETE], 0);
	wg_peer_set_preshared_key(b->peer, psk);
	advance(REKEY_TIMEOUT + NSEC);
	assert_int_equal(a->events[WG_EVENT_HANDSHAKE_COMPLETE], 1);
	assert_int_equal(b->delivered, 1);
}

static void test_peer_management(void **state)
{
	struct node *a = &sim.n[0];
	struct wg_peer *p;
	uint8_t k[32], pub[32];
	assert_int_equal(wg_device_add_peer(a->dev, sim.n[1].pub, &p), SG_EEXIST);
	assert_int_equal(wg_device_add_peer(a->dev, a->pub, &p), SG_EINVAL);
	assert_true(sg_x25519_generate(k, pub));
	assert_int_equal(wg_device_add_peer(a->dev, pub, &p), 0);
	assert_int_equal(wg_device_peer_count(a->dev), 2);
	assert_ptr_equal(wg_device_find_peer(a->dev, pub), p);
	/* A prefix given to the new peer moves away from the old one. */
	uint8_t addr[4] = {10, 9, 0, 2};
	assert_int_equal(wg_peer_add_allowed_ip(p, AF_INET, addr, 32), 0);
	assert_int_equal(send_ip(0, 10, 1), SG_ENOROUTE); /* p has no endpoint */
	wg_device_remove_peer(a->dev, p);
	assert_int_equal(wg_device_peer_count(a->dev), 1);
	assert_int_equal(send_ip(0, 10, 1), SG_ENOROUTE); /* the prefix left with p */
	/* Setting our key to the public key of a peer removes that peer. */
	assert_int_equal(wg_device_set_private_key(a->dev, sim.n[1].priv), 0);
	assert_int_equal(wg_device_peer_count(a->dev), 0);
}

/* An idle peer is its configuration only: what a handshake needs (struct wg_peer_active: MAC
 * keys, static-static DH, handshake state) is made when it first handshakes. The peer table
 * grows past its first 1,024 buckets and every peer stays reachable. */
static void test_idle_peers_are_lazy(void **state)
{
	struct node *a = &sim.n[0], *b = &sim.n[1];
	enum { EXTRA = 3000 };
	static uint8_t keys[EXTRA][32];
	struct wg_peer *p;

	assert_null(a->peer->act);
	assert_null(b->peer->act);
	for (unsigned i = 0; i < EXTRA; i++) {
		uint8_t priv[32];
		assert_true(sg_x25519_generate(priv, keys[i]));
		assert_int_equal(wg_device_add_peer(a->dev, keys[i], &p), 0);
		uint8_t addr[4] = {10, 10, (uint8_t)(i >> 8), (uint8_t)i};
		assert_int_equal(wg_peer_add_allowed_ip(p, AF_INET, addr, 32), 0);
	}
	assert_int_equal(wg_device_peer_count(a->dev), EXTRA + 1);
	for (unsigned i = 0; i < EXTRA; i++) {
		p = wg_device_find_peer(a->dev, keys[i]);
		assert_non_null(p);
		assert_memory_equal(wg_peer_public_key(p), keys[i], 32);
		assert_null(p->act);
	}
	assert_ptr_equal(wg_device_find_peer(a->dev, b->pub), a->peer);
	/* A handshake makes the state of the two peers that took part, and no other. */
	handshake(0);
	assert_int_equal(b->delivered, 1);
	assert_non_null(a->peer->act);
	assert_non_null(b->peer->act);
	assert_int_equal(a->peer->act->ss, SS_OK);
	for (unsigned i = 0; i < EXTRA; i++)
		assert_null(wg_device_find_peer(a->dev, keys[i])->act);
	/* Removing every other extra peer leaves the rest findable. */
	for (unsigned i = 0; i < EXTRA; i += 2)
		wg_device_remove_peer(a->dev, wg_device_find_peer(a->dev, keys[i]));
	for (unsigned i = 0; i < EXTRA; i++)
		assert_true((wg_device_find_peer(a->dev, keys[i]) != NULL) == (i % 2 == 1));
	/* A new private key drops the DH result; the next handshake computes it again. */
	uint8_t priv[32], pub[32];
	assert_true(sg_x25519_generate(priv, pub));
	assert_int_equal(wg_device_set_private_key(b->dev, priv), 0);
	assert_int_equal(b->peer->act->ss, SS_UNKNOWN);
	assert_int_equal(wg_device_set_private_key(b->dev, b->priv), 0);
	sim.now += REKEY_TIMEOUT + NSEC;
	handshake(1);
	assert_int_equal(a->delivered, 1);
	assert_int_equal(b->peer->act->ss, SS_OK);
}

/* A small-order public key: its DH with our key fails when it would first be needed, so no
 * initiation goes out and the peer is reported unusable, as when it was computed up front. */
static void test_small_order_peer_unusable(void **state)
{
	struct node *a = &sim.n[0];
	static const uint8_t zero[32]; /* the identity point: X25519 gives all zeros */
	struct wg_peer *p;
	struct wg_endpoint ep;

	assert_int_equal(wg_device_add_peer(a->dev, zero, &p), 0);
	uint8_t addr[4] = {10, 8, 0, 1};
	assert_int_equal(wg_peer_add_allowed_ip(p, AF_INET, addr, 32), 0);
	ep4(&ep, "192.0.2.9", 9);
	wg_peer_set_endpoint(p, &ep);
	uint8_t pkt[64];
	size_t len = make_ip4(pkt, 1, 9, 20, 0);
	pkt[16] = 10, pkt[17] = 8, pkt[18] = 0, pkt[19] = 1;
	unsigned sent = a->sent;
	(void)wg_device_send(a->dev, sim.now, pkt, len);
	assert_int_equal(a->sent, sent);
	assert_int_equal(a->events[WG_EVENT_MODE_UNUSABLE], 1);
	assert_non_null(p->act);
	assert_int_equal(p->act->ss, SS_BAD);
}

/* ---- FIPS mode (docs/PROTOCOL.md) -------------------------------------------------------- */

/* Gives node k a FIPS key pair, and (when `known`) tells the other node about it. */
static void fips_key(int k, bool known)
{
	struct node *n = &sim.n[k], *o = &sim.n[1 - k];
	assert_true(sg_p384_generate(n->fips_priv, n->fips_pub));
	assert_int_equal(wg_device_set_fips_private_key(n->dev, n->fips_priv), 0);
	if (known)
		assert_int_equal(wg_peer_set_fips_public_key(o->peer, n->fips_pub), 0);
}

static int session_mode(int k)
{
	struct wg_peer_stats ps;
	wg_peer_get_stats(sim.n[k].peer, &ps);
	return ps.mode;
}

/* Every data message in flight has this mode byte; returns how many there were. */
static size_t count_data(uint8_t mode)
{
	size_t n = 0;
	for (size_t i = 0; i < sim.nflight; i++) {
		if (sim.flight[i].buf[0] != WG_MSG_DATA)
			continue;
		assert_int_equal(sim.flight[i].buf[1], mode);
		n++;
	}
	return n;
}

static void test_fips_handshake_and_data(void **state)
{
	struct node *a = &sim.n[0], *b = &sim.n[1];
	fips_key(0, true);
	fips_key(1, true);
	/* Both auto with both key kinds: FIPS wins. The initiation is the FIPS size. */
	assert_int_equal(send_ip(0, 100, 0xaa), 0);
	assert_int_equal(sim.nflight, 1);
	assert_int_equal(sim.flight[0].len, WG_FIPS_INITIATION_LEN);
	assert_int_equal(sim.flight[0].buf[1], WG_MODE_FIPS);
	pump();
	assert_int_equal(b->delivered, 1);
	assert_int_equal(session_mode(0), SG_SUITE_FIPS);
	assert_int_equal(session_mode(1), SG_SUITE_FIPS);
	struct wg_peer_stats ps;
	wg_peer_get_stats(a->peer, &ps);
	assert_int_equal(ps.remote_caps, WG_CAP_FIPS | WG_CAP_CLASSIC | WG_CAP_VERSION_BITS);
	/* Data both ways carries mode byte 0x01. */
	for (int i = 0; i < 20; i++) {
		assert_int_equal(send_ip(0, 1000, (uint8_t)i), 0);
		assert_int_equal(send_ip(1, 30, (uint8_t)i), 0);
	}
	assert_int_equal(count_data(WG_MODE_FIPS), 40);
	/* Replay one FIPS data packet after the others: counted as replayed. */
	struct datagram again = sim.flight[0];
	pump();
	assert_int_equal(b->delivered, 21);
	assert_int_equal(a->delivered, 20);
	assert_int_equal(b->last_delivered_len, 1020);
	wg_device_receive(b->dev, sim.now, &again.src, again.buf, again.len);
	struct wg_device_stats st;
	wg_device_get_stats(b->dev, &st);
	assert_int_equal(st.rx_replayed, 1);
	/* A classic-mode copy of a FIPS data packet is refused by mode, not by decryption. */
	struct datagram d = sim.flight[0];
	assert_int_equal(send_ip(0, 10, 1), 0);
	d = sim.flight[0];
	sim.nflight = 0;
	d.buf[1] = WG_MODE_CLASSIC;
	wg_device_receive(b->dev, sim.now, &d.src, d.buf, d.len);
	wg_device_get_stats(b->dev, &st);
	assert_int_equal(st.rx_invalid, 1);
	/* Rekey after time stays in FIPS. */
	advance(REKEY_AFTER_TIME + NSEC);
	assert_int_equal(send_ip(0, 10, 2), 0);
	pump();
	assert_true(a->events[WG_EVENT_HANDSHAKE_COMPLETE] >= 2);
	assert_int_equal(session_mode(0), SG_SUITE_FIPS);
	assert_int_equal(a->events[WG_EVENT_MODE_FALLBACK], 0);
}

static void test_fips_only_both(void **state)
{
	struct node *a = &sim.n[0], *b = &sim.n[1];
	fips_key(0, true);
	fips_key(1, true);
	assert_int_equal(wg_device_set_crypto_mode(a->dev, WG_CRYPTO_FIPS), 0);
	assert_int_equal(wg_device_set_crypto_mode(b->dev, WG_CRYPTO_FIPS), 0);
	handshake(1);
	assert_int_equal(session_mode(0), SG_SUITE_FIPS);
	assert_int_equal(a->delivered, 1);
	struct wg_peer_stats ps;
	wg_peer_get_stats(b->peer, &ps);
	/* A fips interface advertises FIPS only. */
	assert_int_equal(ps.remote_caps, WG_CAP_FIPS | WG_CAP_VERSION_BITS);
}

static void test_auto_falls_back_when_peer_has_no_fips(void **state)
{
	struct node *a = &sim.n[0], *b = &sim.n[1];
	/* A knows a FIPS key for B, but B runs without one (classic only). B stays silent towards
	 * the FIPS initiation it cannot authenticate (as WireGuard is towards anything it cannot
	 * authenticate); A falls back to classic after FIPS_FALLBACK_ATTEMPTS unanswered ones. */
	uint8_t priv[48], pub[49];
	assert_true(sg_p384_generate(priv, pub));
	assert_int_equal(wg_peer_set_fips_public_key(a->peer, pub), 0);
	fips_key(0, false);
	handshake(0);
	assert_int_equal(b->events[WG_EVENT_MODE_REFUSED], 0);
	assert_int_equal(session_mode(0), -1);
	advance((FIPS_FALLBACK_ATTEMPTS + 1) * (REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX));
	assert_int_equal(a->events[WG_EVENT_MODE_FALLBACK], 1);
	assert_string_equal(a->last_mode_reason, "timeout");
	assert_int_equal(session_mode(0), SG_SUITE_CLASSIC);
	assert_int_equal(b->delivered, 1);
	/* Ten minutes later A tries FIPS again at a rekey and falls back again, while the classic
	 * session goes on carrying data. */
	uint64_t delivered = b->delivered;
	for (int i = 0; i < 70; i++) {
		advance(10 * NSEC);
		assert_int_equal(send_ip(0, 10, 1), 0);
		pump();
	}
	assert_int_equal(a->events[WG_EVENT_MODE_FALLBACK], 2);
	assert_int_equal(session_mode(0), SG_SUITE_CLASSIC);
	assert_true(b->delivered >= delivered + 69);
}

static void test_classic_policy_refuses_fips_authenticated(void **state)
{
	struct node *a = &sim.n[0], *b = &sim.n[1];
	fips_key(0, true);
	fips_key(1, true);
	/* B has a FIPS key but allows classic only with A: it authenticates A's FIPS initiation
	 * and refuses it by policy; A (auto) falls back. */
	wg_peer_set_crypto_mode(b->peer, WG_CRYPTO_CLASSIC);
	handshake(0);
	assert_int_equal(b->events[WG_EVENT_MODE_REFUSED], 1);
	assert_string_equal(b->last_mode_reason, "peer_offered_fips_classic_only");
	assert_string_equal(a->last_mode_reason, "reject");
	assert_int_equal(session_mode(0), SG_SUITE_CLASSIC);
	assert_int_equal(session_mode(1), SG_SUITE_CLASSIC);
}

static void test_fips_only_vs_classic_only_refused(void **state)
{
	struct node *a = &sim.n[0], *b = &sim.n[1];
	/* A: CryptoMode = fips, knows B's FIPS key. B: classic only (no FIPS key). */
	fips_key(0, false);
	uint8_t priv[48], pub[49];
	assert_true(sg_p384_generate(priv, pub));
	assert_int_equal(wg_peer_set_fips_public_key(a->peer, pub), 0);
	assert_int_equal(wg_device_set_crypto_mode(a->dev, WG_CRYPTO_FIPS), 0);
	handshake(0);
	/* B cannot authenticate a FIPS initiation and, without a FIPS key, stays silent. */
	assert_int_equal(b->events[WG_EVENT_MODE_REFUSED], 0);
	assert_int_equal(a->events[WG_EVENT_MODE_REJECTED], 0);
	assert_int_equal(a->events[WG_EVENT_MODE_FALLBACK], 0);
	assert_int_equal(session_mode(0), -1);
	/* B's classic initiation to A is refused with its reason, and B says so. */
	handshake(1);
	assert_int_equal(a->events[WG_EVENT_MODE_REFUSED], 1);
	assert_string_equal(a->last_mode_reason, "peer_offered_classic_fips_required");
	assert_int_equal(b->events[WG_EVENT_MODE_REJECTED], 1);
	assert_string_equal(b->last_mode_reason, "peer_requires_fips");
	assert_int_equal(session_mode(1), -1);
	/* Retries never produce a session, and the events stay rate-limited. */
	advance(30 * NSEC);
	assert_int_equal(session_mode(0), -1);
	assert_int_equal(session_mode(1), -1);
	assert_true(a->events[WG_EVENT_MODE_REJECTED] <= 4);
	assert_int_equal(a->delivered + b->delivered, 0);
}

static void test_forged_reject_cannot_downgrade_fips_peer(void **state)
{
	struct node *a = &sim.n[0], *b = &sim.n[1];
	fips_key(0, true);
	fips_key(1, true);
	wg_peer_set_crypto_mode(a->peer, WG_CRYPTO_FIPS);
	assert_int_equal(send_ip(0, 10, 1), 0);
	assert_int_equal(sim.nflight, 1);
	struct datagram init = sim.flight[0];
	sim.nflight = 0;
	/* An on-path attacker answers with a reject naming A's index: "classic only". */
	uint8_t rej[WG_MSG_REJECT_LEN] = {WG_MSG_REJECT, WG_MODE_FIPS};
	memcpy(rej + 4, init.buf + 4, 4);
	rej[8] = WG_CAP_CLASSIC;
	rej[9] = WG_CAP_VERSION;
	rej[10] = WG_REJECT_FIPS_UNAVAILABLE;
	wg_device_receive(a->dev, sim.now, &b->ep, rej, sizeof(rej));
	assert_int_equal(a->events[WG_EVENT_MODE_REJECTED], 1);
	assert_int_equal(a->events[WG_EVENT_MODE_FALLBACK], 0);
	assert_int_equal(sim.nflight, 0); /* no classic initiation went out */
	/* The real initiation still completes in FIPS. */
	wg_device_receive(b->dev, sim.now, &init.src, init.buf, init.len);
	pump();
	assert_int_equal(session_mode(0), SG_SUITE_FIPS);
	assert_int_equal(b->delivered, 1);
	/* A reject for an index with no initiation in flight is ignored. */
	wg_device_receive(a->dev, sim.now, &b->ep, rej, sizeof(rej));
	assert_int_equal(a->events[WG_EVENT_MODE_REJECTED], 1);
}

static void test_auto_falls_back_on_timeout(void **state)
{
	struct node *a = &sim.n[0], *b = &sim.n[1];
	fips_key(0, true);
	fips_key(1, true);
	/* A network that drops FIPS datagrams: after FIPS_FALLBACK_ATTEMPTS retries, classic. */
	sim.drop_fips = true;
	assert_int_equal(send_ip(0, 10, 1), 0);
	pump();
	assert_int_equal(session_mode(0), -1);
	advance((FIPS_FALLBACK_ATTEMPTS + 1) * (REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX));
	assert_int_equal(a->events[WG_EVENT_MODE_FALLBACK], 1);
	assert_string_equal(a->last_mode_reason, "timeout");
	assert_int_equal(session_mode(0), SG_SUITE_CLASSIC);
	assert_int_equal(b->delivered, 1);
	sim.drop_fips = false;
}

static void test_fips_cookie_under_load(void **state)
{
	struct node *a = &sim.n[0], *b = &sim.n[1];
	fips_key(0, true);
	fips_key(1, true);
	wg_device_force_under_load(b->dev, true);
	assert_int_equal(send_ip(0, 10, 1), 0);
	pump();
	struct wg_device_stats st;
	wg_device_get_stats(b->dev, &st);
	assert_int_equal(st.rx_cookie_sent, 1);
	assert_int_equal(a->events[WG_EVENT_COOKIE_RECEIVED], 1);
	assert_int_equal(a->peer->act->cookie.cookie_mode, SG_SUITE_FIPS);
	advance(REKEY_TIMEOUT + NSEC);
	assert_int_equal(session_mode(0), SG_SUITE_FIPS);
	assert_int_equal(b->delivered, 1);
	wg_device_force_under_load(b->dev, false);
}

static void test_fips_only_peer_identity(void **state)
{
	struct node *a = &sim.n[0], *b = &sim.n[1];
	/* Both sides FIPS only: no classic keys at all; peers known by their FIPS peer id. */
	assert_int_equal(wg_device_set_private_key(a->dev, NULL), 0);
	assert_int_equal(wg_device_set_private_key(b->dev, NULL), 0);
	wg_device_remove_all_peers(a->dev);
	wg_device_remove_all_peers(b->dev);
	for (int k = 0; k < 2; k++) {
		struct node *n = &sim.n[k];
		assert_true(sg_p384_generate(n->fips_priv, n->fips_pub));
		assert_int_equal(wg_device_set_fips_private_key(n->dev, n->fips_priv), 0);
	}
	for (int k = 0; k < 2; k++) {
		struct node *n = &sim.n[k], *o = &sim.n[1 - k];
		uint8_t id[32], id2[32];
		wg_fips_peer_id(id, o->fips_pub);
		wg_fips_peer_id(id2, o->fips_pub);
		assert_memory_equal(id, id2, 32);
		assert_int_equal(wg_device_add_peer(n->dev, id, &n->peer), 0);
		assert_int_equal(wg_peer_set_fips_public_key(n->peer, o->fips_pub), 0);
		assert_true(wg_peer_is_fips_only(n->peer));
		assert_ptr_equal(wg_device_find_peer_fips(n->dev, o->fips_pub), n->peer);
		uint8_t addr[4] = {10, 9, 0, (uint8_t)(o->id + 1)};
		assert_int_equal(wg_peer_add_allowed_ip(n->peer, AF_INET, addr, 32), 0);
		wg_peer_set_endpoint(n->peer, &o->ep);
	}
	/* The same FIPS key on a second peer is refused; so is a point off the curve. */
	struct wg_peer *p2;
	uint8_t other[32] = {1}, bad[49] = {0x02};
	bad[48] = 1;
	assert_int_equal(wg_device_add_peer(a->dev, other, &p2), 0);
	assert_int_equal(wg_peer_set_fips_public_key(p2, b->fips_pub), SG_EEXIST);
	assert_int_equal(wg_peer_set_fips_public_key(p2, bad), SG_EINVAL);
	assert_int_equal(wg_peer_set_fips_public_key(p2, a->fips_pub), SG_EINVAL);
	wg_device_remove_peer(a->dev, p2);
	handshake(0);
	assert_int_equal(session_mode(0), SG_SUITE_FIPS);
	assert_int_equal(b->delivered, 1);
	assert_int_equal(send_ip(1, 10, 3), 0);
	pump();
	assert_int_equal(a->delivered, 1);
}

static void test_fips_malformed(void **state)
{
	struct node *a = &sim.n[0], *b = &sim.n[1];
	fips_key(0, true);
	fips_key(1, true);
	uint8_t msg[WG_FIPS_INITIATION_LEN + 1] = {WG_MSG_INITIATION, WG_MODE_FIPS};
	struct wg_device_stats st;
	/* Wrong lengths for the FIPS forms, an unknown mode, nonzero reserved bytes. */
	wg_device_receive(b->dev, sim.now, &a->ep, msg, WG_MSG_INITIATION_LEN);
	wg_device_receive(b->dev, sim.now, &a->ep, msg, sizeof(msg));
	msg[1] = 2;
	wg_device_receive(b->dev, sim.now, &a->ep, msg, WG_FIPS_INITIATION_LEN);
	msg[1] = WG_MODE_FIPS;
	msg[2] = 1;
	wg_device_receive(b->dev, sim.now, &a->ep, msg, WG_FIPS_INITIATION_LEN);
	msg[0] = WG_MSG_REJECT;
	msg[2] = 0;
	wg_device_receive(b->dev, sim.now, &a->ep, msg, WG_MSG_REJECT_LEN + 1);
	wg_device_get_stats(b->dev, &st);
	assert_int_equal(st.rx_invalid, 5);
	/* A well-sized FIPS initiation with garbage fails mac1. */
	msg[0] = WG_MSG_INITIATION;
	wg_device_receive(b->dev, sim.now, &a->ep, msg, WG_FIPS_INITIATION_LEN);
	wg_device_get_stats(b->dev, &st);
	assert_int_equal(st.rx_bad_mac, 1);
	assert_int_equal(sim.nflight, 0);
}

/* Review findings (docs/PROTOCOL.md section 7): a policy change leaves no session or handshake
 * of the refused mode anywhere (in flight, next, current, previous). */
static void test_policy_change_drops_sessions(void **state)
{
	struct node *a = &sim.n[0], *b = &sim.n[1];
	/* S1: A's classic initiation is in flight when A becomes fips-only; the classic response
	 * must not complete a session. */
	assert_int_equal(send_ip(0, 10, 1), 0);
	assert_int_equal(sim.nflight, 1);
	assert_int_equal(sim.flight[0].buf[1], WG_MODE_CLASSIC);
	assert_int_equal(wg_device_set_crypto_mode(a->dev, WG_CRYPTO_FIPS), 0);
	pump();
	assert_int_equal(session_mode(0), -1);
	assert_int_equal(b->delivered, 0);
	/* S1b: B consumed a classic initiation (classic next keypair) when B becomes fips-only;
	 * A's first data must not promote it. */
	assert_int_equal(wg_device_set_crypto_mode(a->dev, WG_CRYPTO_AUTO), 0);
	/* Catch A's next classic initiation (its retry timer) without delivering anything. */
	sim.nflight = 0;
	for (int i = 0; i < 20 && !sim.nflight; i++) {
		sim.now += NSEC / 2;
		wg_device_tick(a->dev, sim.now);
	}
	assert_int_equal(sim.nflight, 1);
	struct datagram init = sim.flight[0];
	assert_int_equal(init.buf[0], WG_MSG_INITIATION);
	sim.nflight = 0;
	wg_device_receive(b->dev, sim.now, &init.src, init.buf, init.len);
	assert_non_null(b->peer->kp_next);
	assert_int_equal(wg_device_set_crypto_mode(b->dev, WG_CRYPTO_FIPS), 0);
	assert_null(b->peer->kp_next);
	pump();
	assert_int_equal(session_mode(1), -1);
	assert_int_equal(b->delivered, 0);
}

/* Forged rejects cannot make an auto peer send initiations faster than its retry timer, nor
 * reset its attempts: at most one reject-driven switch per REKEY_TIMEOUT. */
static void test_forged_rejects_rate_limited(void **state)
{
	struct node *a = &sim.n[0], *b = &sim.n[1];
	fips_key(0, true);
	fips_key(1, true);
	sim.drop_all = false;
	assert_int_equal(send_ip(0, 10, 1), 0);
	size_t sent = 0;
	for (int i = 0; i < 100; i++) {
		/* The initiation in flight, whatever its mode: reject it. */
		assert_true(sim.nflight >= 1);
		struct datagram d = sim.flight[sim.nflight - 1];
		sim.nflight = 0;
		uint8_t rej[WG_MSG_REJECT_LEN] = {WG_MSG_REJECT, d.buf[1]};
		memcpy(rej + 4, d.buf + 4, 4);
		rej[8] = WG_CAP_FIPS | WG_CAP_CLASSIC;
		rej[9] = WG_CAP_VERSION;
		rej[10] = d.buf[1] == WG_MODE_FIPS ? WG_REJECT_FIPS_UNAVAILABLE : WG_REJECT_FIPS_REQUIRED;
		wg_device_receive(a->dev, sim.now, &b->ep, rej, sizeof(rej));
		sent += sim.nflight;
		if (!sim.nflight)
			break;
	}
	/* One switch went out; the rest waited for the retry timer. */
	assert_int_equal(sent, 1);
	assert_true(a->events[WG_EVENT_MODE_FALLBACK] <= 1);
}

/* A FIPS-only peer stays without a classic key when its FIPS key changes or goes. */
static void test_fips_only_peer_key_removed(void **state)
{
	struct node *a = &sim.n[0];
	uint8_t priv[48], pub[49], pub2[49], id[32];
	struct wg_peer *p;

	assert_true(sg_p384_generate(priv, pub));
	wg_fips_peer_id(id, pub);
	assert_int_equal(wg_device_add_peer(a->dev, id, &p), 0);
	assert_int_equal(wg_peer_set_fips_public_key(p, pub), 0);
	assert_true(wg_peer_is_fips_only(p));
	assert_true(sg_p384_generate(priv, pub2));
	assert_int_equal(wg_peer_set_fips_public_key(p, pub2), 0);
	assert_true(wg_peer_is_fips_only(p));
	assert_int_equal(wg_peer_set_fips_public_key(p, NULL), 0);
	assert_true(wg_peer_is_fips_only(p));
	assert_false(peer_can_mode(p, SG_SUITE_CLASSIC));
	assert_int_equal(peer_choose_mode(p, sim.now), -1);
	sg_memzero(priv, sizeof(priv));
}

/* ---- the split data path (prepare / run on any thread / complete) -------------------------- */

struct lane_job {
	struct wg_crypt_op *ops;
	size_t n, first, step;
	unsigned lane;
	bool reverse;
};

static void *run_lane(void *arg)
{
	struct lane_job *j = arg;
	for (size_t k = 0; k < j->n; k++) {
		size_t i = j->reverse ? j->n - 1 - k : k;
		if (i % j->step == j->first)
			wg_crypt_op_run(&j->ops[i], j->lane);
	}
	return NULL;
}

/* Runs the ops on `threads` threads at once, each with its own lane, op i on thread i % threads. */
static void run_threads(struct wg_crypt_op *ops, size_t n, size_t threads, bool reverse)
{
	pthread_t t[4];
	struct lane_job j[4];
	assert_true(threads <= 4);
	for (size_t k = 0; k < threads; k++) {
		j[k] = (struct lane_job){ops, n, k, threads, (unsigned)(k + 1), reverse};
		assert_int_equal(pthread_create(&t[k], NULL, run_lane, &j[k]), 0);
	}
	for (size_t k = 0; k < threads; k++)
		pthread_join(t[k], NULL);
}

static void test_split_path_threads_keep_order(void **state)
{
	struct node *a = &sim.n[0], *b = &sim.n[1];
	enum { N = 40 };
	static uint8_t out[N][2048];
	struct wg_crypt_op ops[N];
	uint8_t pkt[1500];

	handshake(0);
	size_t before = b->delivered;
	/* A: 40 packets prepared, sealed on three threads at once (one keypair, three lanes),
	 * completed in order: they leave in order, with increasing counters. */
	for (int i = 0; i < N; i++) {
		size_t len = make_ip4(pkt, 1, 2, 200 + (size_t)i * 20, (uint8_t)i);
		assert_int_equal(wg_device_send_prepare(a->dev, sim.now, pkt, len, out[i],
							sizeof(out[i]), &ops[i]),
				 1);
	}
	assert_int_equal(sim.nflight, 0); /* nothing leaves before its complete */
	run_threads(ops, N, 3, false);
	for (int i = 0; i < N; i++) {
		assert_true(ops[i].ok);
		wg_device_send_complete(a->dev, sim.now, &ops[i]);
	}
	assert_int_equal(sim.nflight, N);
	for (size_t i = 1; i < N; i++)
		assert_true(sg_le64(sim.flight[i].buf + 8) == sg_le64(sim.flight[i - 1].buf + 8) + 1);
	/* B: opened on two threads in reverse order, one of them tampered with, completed in
	 * arrival order: 39 delivered, in order, the tampered one counted. */
	size_t count = sim.nflight;
	struct datagram *got = malloc(count * sizeof(*got));
	memcpy(got, sim.flight, count * sizeof(*got));
	sim.nflight = 0;
	got[7].buf[got[7].len - 1] ^= 0x80;
	for (size_t i = 0; i < count; i++)
		assert_int_equal(wg_device_receive_prepare(b->dev, sim.now, &got[i].src, got[i].buf,
							   got[i].len, &ops[i]),
				 1);
	run_threads(ops, count, 2, true);
	for (size_t i = 0; i < count; i++)
		wg_device_receive_complete(b->dev, sim.now, &ops[i]);
	assert_int_equal(b->delivered, before + N - 1);
	for (size_t k = 0, i = 0; i < N; i++) {
		if (i == 7)
			continue;
		assert_int_equal(b->order[before + k], i);
		k++;
	}
	struct wg_device_stats st;
	wg_device_get_stats(b->dev, &st);
	assert_int_equal(st.rx_decrypt_fail, 1);
	free(got);
}

static void test_split_path_keypair_retired_in_flight(void **state)
{
	struct node *a = &sim.n[0], *b = &sim.n[1];
	struct wg_crypt_op ops[5];

	handshake(0);
	struct wg_keypair *k1 = a->peer->kp_current;
	/* B sends five packets under the first session; they are held on the way. */
	for (int i = 0; i < 5; i++)
		assert_int_equal(send_ip(1, 50, (uint8_t)i), 0);
	size_t count = sim.nflight;
	struct datagram *held = malloc(count * sizeof(*held));
	memcpy(held, sim.flight, count * sizeof(*held));
	sim.nflight = 0;
	/* A second handshake: the first session becomes A's previous one. */
	advance(6 * NSEC);
	wg_peer_initiate(a->peer, sim.now);
	pump();
	assert_ptr_equal(a->peer->kp_previous, k1);
	/* A prepares the held packets (still valid under its previous session)... */
	for (size_t i = 0; i < count; i++)
		assert_int_equal(wg_device_receive_prepare(a->dev, sim.now, &held[i].src, held[i].buf,
							   held[i].len, &ops[i]),
				 1);
	/* ... then a third handshake completes before they are opened: it retires the first
	 * session while its ops are in flight. The keypair stays allocated (ASan would see a use
	 * after free otherwise), out of the index, and is freed by the last op (LSan would see a
	 * leak otherwise). */
	advance(6 * NSEC);
	wg_peer_initiate(a->peer, sim.now);
	pump();
	assert_true(k1->dead);
	assert_true(a->peer->kp_previous != k1 && a->peer->kp_current != k1);
	struct wg_device_stats st0, st1;
	wg_device_get_stats(a->dev, &st0);
	size_t before = a->delivered;
	run_threads(ops, count, 2, false);
	for (size_t i = 0; i < count; i++)
		wg_device_receive_complete(a->dev, sim.now, &ops[i]);
	wg_device_get_stats(a->dev, &st1);
	assert_int_equal(a->delivered, before);
	assert_int_equal(st1.rx_unknown_index - st0.rx_unknown_index, count);
	assert_int_equal(st1.rx_decrypt_fail, st0.rx_decrypt_fail);
	/* Data still flows on the current session. */
	assert_int_equal(send_ip(1, 50, 0x77), 0);
	pump();
	assert_int_equal(a->delivered, before + 1);
	free(held);
	(void)b;
}

/* An outbound op that does not fit the caller's buffer is sent at once, sealed inline. */
static void test_split_path_small_buffer_inline(void **state)
{
	struct node *a = &sim.n[0], *b = &sim.n[1];
	struct wg_crypt_op op;
	uint8_t out[256], pkt[1500];

	handshake(0);
	size_t before = b->delivered;
	size_t len = make_ip4(pkt, 1, 2, 1000, 0x42);
	assert_int_equal(wg_device_send_prepare(a->dev, sim.now, pkt, len, out, sizeof(out), &op), 0);
	assert_int_equal(sim.nflight, 1);
	pump();
	assert_int_equal(b->delivered, before + 1);
	assert_int_equal(b->last_delivered_len, len);
	/* Refusals are the same as wg_device_send's. */
	len = make_ip4(pkt, 1, 77, 10, 0);
	assert_int_equal(wg_device_send_prepare(a->dev, sim.now, pkt, len, out, sizeof(out), &op),
			 SG_ENOROUTE);
}

/* What a queueing caller may set aside for later: only handshake messages that need the Noise
 * work. Garbage, bad MACs and (under load) messages without a cookie are cheap, and the check
 * counts nothing. */
static void test_handshake_costly(void **state)
{
	struct node *a = &sim.n[0], *b = &sim.n[1];
	struct wg_device_stats st0, st1;

	wg_peer_initiate(a->peer, sim.now);
	assert_int_equal(sim.nflight, 1);
	struct datagram d = sim.flight[0];
	sim.nflight = 0;
	assert_int_equal(d.len, 148);
	wg_device_get_stats(b->dev, &st0);
	assert_true(wg_device_handshake_costly(b->dev, sim.now, &d.src, d.buf, d.len));
	/* Wrong length, not a handshake type, a bad mac1, a bad mode byte. */
	assert_false(wg_device_handshake_costly(b->dev, sim.now, &d.src, d.buf, d.len - 1));
	uint8_t bad[148];
	memcpy(bad, d.buf, sizeof(bad));
	bad[0] = 4;
	assert_false(wg_device_handshake_costly(b->dev, sim.now, &d.src, bad, sizeof(bad)));
	memcpy(bad, d.buf, sizeof(bad));
	bad[148 - 32] ^= 1;
	assert_false(wg_device_handshake_costly(b->dev, sim.now, &d.src, bad, sizeof(bad)));
	memcpy(bad, d.buf, sizeof(bad));
	bad[1] = 7;
	assert_false(wg_device_handshake_costly(b->dev, sim.now, &d.src, bad, sizeof(bad)));
	/* Under load a message without mac2 only earns a cookie reply. */
	wg_device_force_under_load(b->dev, true);
	assert_false(wg_device_handshake_costly(b->dev, sim.now, &d.src, d.buf, d.len));
	wg_device_force_under_load(b->dev, false);
	wg_device_get_stats(b->dev, &st1);
	assert_memory_equal(&st0, &st1, sizeof(st0));
	/* Processed later, it completes the handshake as usual. */
	wg_device_receive(b->dev, sim.now, &d.src, d.buf, d.len);
	pump();
	assert_int_equal(a->events[WG_EVENT_HANDSHAKE_COMPLETE], 1);
}

/* ---- kernel parity: interface state, settings in any order, route MTUs, loops, sources --- */

static void test_link_down_and_up(void **state)
{
	struct node *a = &sim.n[0], *b = &sim.n[1];
	struct wg_device_stats st;
	handshake(0);
	wg_peer_set_persistent_keepalive(a->peer, 0, sim.now);
	/* Down: the kernel's wg_stop drops sessions, waiting packets and timers. */
	wg_device_set_up(a->dev, false, sim.now);
	assert_false(wg_device_is_up(a->dev));
	assert_null(a->peer->kp_current);
	assert_null(a->peer->kp_next);
	assert_int_equal(a->peer->staged.count, 0);
	assert_int_equal(wg_device_next_deadline(a->dev), UINT64_MAX);
	unsigned sent = a->sent;
	/* Nothing leaves: no data, no keepalive, no handshake. */
	assert_int_equal(send_ip(0, 100, 1), SG_EDOWN);
	wg_peer_set_persistent_keepalive(a->peer, 1, sim.now);
	wg_peer_initiate(a->peer, sim.now);
	/* What arrives is dropped unanswered (B still has its session). */
	assert_int_equal(send_ip(1, 100, 2), 0);
	pump();
	advance(30 * NSEC);
	assert_int_equal(a->sent, sent);
	assert_int_equal(a->delivered, 0);
	wg_device_get_stats(a->dev, &st);
	assert_true(st.rx_down >= 1);
	/* Up: the persistent keepalive's handshake leaves at once (the kernel's wg_open). */
	wg_device_set_up(a->dev, true, sim.now);
	assert_int_equal(a->sent, sent + 1);
	assert_int_equal(sim.flight[sim.nflight - 1].buf[0], WG_MSG_INITIATION);
	unsigned done = a->events[WG_EVENT_HANDSHAKE_COMPLETE];
	pump();
	assert_int_equal(a->events[WG_EVENT_HANDSHAKE_COMPLETE], done + 1);
	assert_int_equal(send_ip(0, 100, 3), 0);
	pump();
	assert_int_equal(b->delivered, 2);
}

static void test_key_after_peer(void **state)
{
	struct node *a = &sim.n[0], *b = &sim.n[1];
	/* A has its peer (endpoint, keepalive) and a packet before it has a key: they wait. */
	assert_int_equal(wg_device_set_private_key(a->dev, NULL), 0);
	wg_peer_set_persistent_keepalive(a->peer, 1, sim.now);
	assert_int_equal(send_ip(0, 100, 0x5a), 0);
	assert_int_equal(a->sent, 0);
	assert_int_equal(a->peer->staged.count, 2);
	/* The key, then what waits: the handshake at once, and the packet with the session. */
	assert_int_equal(wg_device_set_private_key(a->dev, a->priv), 0);
	wg_device_send_staged(a->dev, sim.now);
	assert_int_equal(a->sent, 1);
	pump();
	assert_int_equal(a->events[WG_EVENT_HANDSHAKE_COMPLETE], 1);
	assert_int_equal(b->delivered, 1);
	assert_int_equal(b->last_delivered[20], 0x5a);
	/* And the keepalives go on. */
	unsigned rx = b->peer->rx_bytes;
	advance(3 * NSEC);
	assert_true(b->peer->rx_bytes > rx);
	/* Down, nothing waits and setting a key sends nothing. */
	wg_device_set_up(a->dev, false, sim.now);
	unsigned sent = a->sent;
	assert_int_equal(wg_device_set_private_key(a->dev, NULL), 0);
	assert_int_equal(wg_device_set_private_key(a->dev, a->priv), 0);
	wg_device_send_staged(a->dev, sim.now);
	assert_int_equal(a->sent, sent);
}

/* The datagram length of one 1297-byte packet from A to 10.9.0.(dst) (a session exists). */
static size_t padded_datagram(int dst)
{
	uint8_t pkt[1500];
	size_t len = make_ip4(pkt, 1, dst, 1297 - 20, 1);
	size_t n = sim.nflight;
	assert_int_equal(wg_device_send(sim.n[0].dev, sim.now, pkt, len), 0);
	assert_int_equal(sim.nflight, n + 1);
	size_t dlen = sim.flight[n].len;
	pump();
	return dlen;
}

static void test_route_mtu_padding(void **state)
{
	struct node *a = &sim.n[0];
	handshake(0);
	uint8_t other[4] = {10, 9, 0, 3};
	assert_int_equal(wg_peer_add_allowed_ip(a->peer, AF_INET, other, 32), 0);
	wg_device_set_mtu(a->dev, 1300);
	/* Padded to the interface's MTU: 16 header + 1300 + 16 tag. */
	assert_int_equal(padded_datagram(2), 1332);
	struct wg_route_mtu r[2] = {
	    {.family = AF_INET, .addr = {10, 9, 0, 2}, .cidr = 32, .mtu = 1299},
	    {.family = AF_INET, .addr = {10, 9, 0, 77}, .cidr = 24, .mtu = 1305},
	};
	assert_int_equal(wg_device_set_route_mtus(a->dev, r, 1), 0);
	assert_int_equal(padded_datagram(2), 1331);
	assert_int_equal(padded_datagram(3), 1332); /* not covered */
	/* Covered twice: the smaller MTU; one above the interface's changes nothing. */
	r[0].mtu = 1298;
	assert_int_equal(wg_device_set_route_mtus(a->dev, r, 2), 0);
	assert_int_equal(padded_datagram(2), 1330);
	assert_int_equal(padded_datagram(3), 1332);
	r[1].mtu = 1299;
	assert_int_equal(wg_device_set_route_mtus(a->dev, r, 2), 0);
	assert_int_equal(padded_datagram(3), 1331);
	assert_int_equal(padded_datagram(2), 1330);
	/* Bad tables change nothing. */
	struct wg_route_mtu bad = {.family = AF_INET, .cidr = 33, .mtu = 1000};
	assert_int_equal(wg_device_set_route_mtus(a->dev, &bad, 1), SG_EINVAL);
	assert_int_equal(wg_device_set_route_mtus(a->dev, r, WG_ROUTE_MTU_MAX + 1), SG_ERANGE);
	assert_int_equal(padded_datagram(3), 1331);
	assert_int_equal(wg_device_set_route_mtus(a->dev, NULL, 0), 0);
	assert_int_equal(padded_datagram(2), 1332);
}

/* An IPv4 UDP packet from 10.9.0.1 to 10.9.0.2 whose payload is a WireGuard data message (a
 * datagram of another tunnel), with TTL `ttl`; `frag` sets the more-fragments flag instead and
 * makes it TCP. */
static size_t make_nested4(uint8_t *p, uint8_t ttl, bool frag)
{
	size_t len = make_ip4(p, 1, 2, 8 + 48, 0);
	p[8] = ttl;
	if (frag) {
		p[6] = 0x20;
		p[9] = 6;
		return len;
	}
	memset(p + 20, 0, 8 + 48);
	p[28] = WG_MSG_DATA; /* type 4, mode classic, two zero bytes, index, counter, ... */
	return len;
}

static void test_nested_ttl_bounds_loops(void **state)
{
	struct node *a = &sim.n[0];
	uint8_t p[200];
	struct wg_device_stats st;
	/* Staged before a session: the TTL is the packet's own, however late it leaves. */
	size_t len = make_nested4(p, 30, false);
	assert_int_equal(wg_device_send(a->dev, sim.now, p, len), 0);
	pump();
	assert_int_equal(sim.n[1].delivered, 1);
	/* With a session, straight out: 8 below its own TTL, at most 64. */
	static const struct {
		uint8_t in;
		bool frag;
		uint8_t out;
	} cases[] = {{64, false, 56}, {255, false, 64}, {9, false, 1}, {64, true, 56}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		len = make_nested4(p, cases[i].in, cases[i].frag);
		size_t n = sim.nflight;
		assert_int_equal(wg_device_send(a->dev, sim.now, p, len), 0);
		assert_int_equal(sim.nflight, n + 1);
		assert_int_equal(sim.flight[n].ttl, cases[i].out);
		pump();
	}
	/* No step left: a loop, dropped and counted. */
	len = make_nested4(p, 8, false);
	size_t n = sim.nflight;
	assert_int_equal(wg_device_send(a->dev, sim.now, p, len), SG_ELOOP);
	assert_int_equal(sim.nflight, n);
	wg_device_get_stats(a->dev, &st);
	assert_int_equal(st.tx_loop, 1);
	/* Ordinary traffic keeps the system's TTL, whatever its own: nothing leaks. A mode byte
	 * of neither mode makes the payload no WireGuard message. */
	len = make_nested4(p, 5, false);
	p[29] = 0x99;
	assert_int_equal(wg_device_send(a->dev, sim.now, p, len), 0);
	assert_int_equal(sim.flight[sim.nflight - 1].ttl, 0);
	pump();
	len = make_ip4(p, 1, 2, 100, 3);
	p[8] = 2;
	assert_int_equal(wg_device_send(a->dev, sim.now, p, len), 0);
	assert_int_equal(sim.flight[sim.nflight - 1].ttl, 0);
	pump();
	/* Handshakes and keepalives too. */
	advance(11 * NSEC);
	for (size_t i = 0; i < sim.nflight; i++)
		assert_int_equal(sim.flight[i].ttl, 0);
}

static void test_sticky_source_verdict(void **state)
{
	struct node *a = &sim.n[0], *b = &sim.n[1];
	struct wg_peer_stats st;
	handshake(0);
	/* B's packets now reach A at its second address on interface 7. */
	b->ep.has_src = true;
	inet_pton(AF_INET, "192.0.2.101", &b->ep.src4);
	b->ep.src_ifindex = 7;
	unsigned src_events = a->events[WG_EVENT_SOURCE_CHANGED];
	assert_int_equal(send_ip(1, 10, 1), 0);
	pump();
	assert_int_equal(a->events[WG_EVENT_SOURCE_CHANGED], src_events + 1);
	/* The same again: no event. */
	assert_int_equal(send_ip(1, 10, 1), 0);
	pump();
	assert_int_equal(a->events[WG_EVENT_SOURCE_CHANGED], src_events + 1);
	wg_peer_get_stats(a->peer, &st);
	assert_true(st.endpoint.has_src);
	assert_false(st.src_rejected);
	/* Routing disagrees: A's datagrams leave without the source. */
	assert_true(wg_peer_set_source_usable(a->peer, &st.endpoint, false));
	assert_int_equal(send_ip(0, 10, 2), 0);
	assert_false(sim.flight[sim.nflight - 1].dst.has_src);
	pump();
	/* B's next packets, from the same source, leave the verdict as it is. */
	assert_int_equal(send_ip(1, 10, 3), 0);
	pump();
	assert_int_equal(send_ip(0, 10, 4), 0);
	assert_false(sim.flight[sim.nflight - 1].dst.has_src);
	pump();
	wg_peer_get_stats(a->peer, &st);
	assert_true(st.src_rejected);
	assert_true(st.endpoint.has_src); /* still what was learned, for the next question */
	/* A verdict about another source than the peer's now is ignored. */
	struct wg_endpoint old = st.endpoint;
	old.src_ifindex = 9;
	assert_false(wg_peer_set_source_usable(a->peer, &old, true));
	/* Usable again: used again. */
	assert_true(wg_peer_set_source_usable(a->peer, &st.endpoint, true));
	assert_int_equal(send_ip(0, 10, 5), 0);
	assert_true(sim.flight[sim.nflight - 1].dst.has_src);
	pump();
	/* A new source is used until a verdict says otherwise. */
	assert_true(wg_peer_set_source_usable(a->peer, &st.endpoint, false));
	b->ep.src_ifindex = 8;
	assert_int_equal(send_ip(1, 10, 6), 0);
	pump();
	assert_int_equal(a->events[WG_EVENT_SOURCE_CHANGED], src_events + 2);
	assert_int_equal(send_ip(0, 10, 7), 0);
	assert_true(sim.flight[sim.nflight - 1].dst.has_src);
	assert_int_equal(sim.flight[sim.nflight - 1].dst.src_ifindex, 8);
	pump();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_handshake_and_data),
		T(test_handshake_from_responder_side),
		T(test_simultaneous_initiation),
		T(test_rekey_after_time),
		T(test_rekey_after_messages),
		T(test_reject_after_messages),
		T(test_expiry_and_zeroing),
		T(test_replay_and_reorder),
		T(test_timestamp_replay_rejected),
		T(test_initiation_flood_limited),
		T(test_cookie_under_load),
		T(test_under_load_detected_by_rate),
		T(test_roaming),
		T(test_sticky_source_refreshed),
		T(test_keepalive_timers),
		T(test_new_handshake_when_unanswered),
		T(test_malformed_messages),
		T(test_source_address_checked),
		T(test_psk_mismatch_and_match),
		T(test_peer_management),
		T(test_idle_peers_are_lazy),
		T(test_small_order_peer_unusable),
		T(test_fips_handshake_and_data),
		T(test_fips_only_both),
		T(test_auto_falls_back_when_peer_has_no_fips),
		T(test_classic_policy_refuses_fips_authenticated),
		T(test_fips_only_vs_classic_only_refused),
		T(test_forged_reject_cannot_downgrade_fips_peer),
		T(test_auto_falls_back_on_timeout),
		T(test_fips_cookie_under_load),
		T(test_fips_only_peer_identity),
		T(test_fips_malformed),
		T(test_policy_change_drops_sessions),
		T(test_forged_rejects_rate_limited),
		T(test_fips_only_peer_key_removed),
		T(test_split_path_threads_keep_order),
		T(test_split_path_keypair_retired_in_flight),
		T(test_split_path_small_buffer_inline),
		T(test_handshake_costly),
		T(test_link_down_and_up),
		T(test_key_after_peer),
		T(test_route_mtu_padding),
		T(test_nested_ttl_bounds_loops),
		T(test_sticky_source_verdict),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
