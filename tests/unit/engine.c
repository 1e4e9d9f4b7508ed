/* The engine's turn budget (src/engine/engine.c, TURN_BYTES; docs/DATAPATH.md, "Latency under
 * load"): two engines in one process (ENGINE_PACKETS, UDP on the loopback), B with a small
 * budget. A received batch larger than the budget is worked through over several turns:
 *   - every packet is delivered, once, in the order it was sent, also when the socket has
 *     nothing new to wake the loop for the rest of the batch;
 *   - a packet that B's side writes meanwhile is sealed and sent before B has finished the
 *     batch: it waits for one budget of the other direction, not for the whole batch.
 * Order and counts only; no timing is asserted (the waits below are bounds, not measures). */
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"

#include <secureguard/sg_errors.h>

#include "crypto/crypto.h"
#include "engine/engine.h"

#define N_PKTS	 64
#define PKT_LEN	 1000
#define B_BUDGET 4096
#define MAX_SEEN 4096

struct side {
	struct engine *e;
	pthread_t thread;
	bool running;
	uint8_t priv[32], pub[32];
};

static struct side A, B;

/* What B delivered: the sequence number in each packet, and B's datagrams sent by then. */
static uint32_t seen_seq[MAX_SEEN];
static uint64_t seen_tx[MAX_SEEN];
static size_t nseen;
static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;

static void b_deliver(void *ctx, const uint8_t *pkt, size_t len)
{
	struct engine_stats st;
	(void)ctx;
	if (len < 28 + 4 || pkt[9] != 17)
		return;
	engine_get_stats(B.e, &st); /* the loop thread: allowed */
	uint64_t tx = st.udp_tx;
	pthread_mutex_lock(&seen_mu);
	if (nseen < MAX_SEEN) {
		seen_seq[nseen] = (uint32_t)pkt[28] << 24 | (uint32_t)pkt[29] << 16 |
				  (uint32_t)pkt[30] << 8 | pkt[31];
		seen_tx[nseen] = tx;
		nseen++;
	}
	pthread_mutex_unlock(&seen_mu);
}

static size_t seen_count(void)
{
	pthread_mutex_lock(&seen_mu);
	size_t n = nseen;
	pthread_mutex_unlock(&seen_mu);
	return n;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* An IPv4/UDP packet from 10.0.0.S to 10.0.0.D carrying seq (the allowed-IPs checks only look at
 * the addresses; the header checksum is right anyway). */
static void make_pkt(uint8_t *p, size_t len, uint8_t s, uint8_t d, uint32_t seq)
{
	memset(p, 0, len);
	p[0] = 0x45;
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	p[8] = 64;
	p[9] = 17;
	p[12] = 10, p[15] = s;
	p[16] = 10, p[19] = d;
	uint32_t sum = 0;
	for (int i = 0; i < 20; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	p[10] = (uint8_t)(~sum >> 8);
	p[11] = (uint8_t)~sum;
	p[20] = 0x30, p[21] = 0x39; /* ports 12345 */
	p[22] = 0x30, p[23] = 0x39;
	p[24] = (uint8_t)((len - 20) >> 8);
	p[25] = (uint8_t)(len - 20);
	p[28] = (uint8_t)(seq >> 24), p[29] = (uint8_t)(seq >> 16);
	p[30] = (uint8_t)(seq >> 8), p[31] = (uint8_t)seq;
}

static void *run_loop(void *arg)
{
	struct side *s = arg;
	(void)engine_run(s->e);
	return NULL;
}

static void start(struct side *s)
{
	assert_int_equal(pthread_create(&s->thread, NULL, run_loop, s), 0);
	s->running = true;
}

static void stop(struct side *s)
{
	engine_stop(s->e, "test");
	assert_int_equal(pthread_join(s->thread, NULL), 0);
	s->running = false;
}

static void uapi_set(struct engine *e, const char *req)
{
	char *reply = NULL;
	size_t rlen = 0;
	assert_int_equal(engine_uapi(e, req, strlen(req), &reply, &rlen), 0);
	assert_non_null(strstr(reply, "errno=0\n"));
	sg_memzero(reply, rlen);
	free(reply);
}

static void hex(char *out, const uint8_t *k)
{
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", k[i]);
}

static void get_port(struct engine *e, void *arg)
{
	*(uint16_t *)arg = engine_listen_port(e);
}

static void get_stats(struct engine *e, void *arg)
{
	engine_get_stats(e, arg);
}

static void init_side(struct side *s, size_t turn_bytes,
		      void (*deliver)(void *, const uint8_t *, size_t))
{
	struct engine_opts o = {
	    .io = ENGINE_PACKETS, .ifname = "test", .lanes = 1, .turn_bytes = turn_bytes};
	const char *why = "";
	o.hooks.deliver = deliver;
	assert_true(sg_x25519_generate(s->priv, s->pub));
	int err = engine_init(&s->e, &o, &why);
	if (err != 0)
		fail_msg("engine_init: %s: %s", why, strerror(-err));
}

static void noop_deliver(void *ctx, const uint8_t *pkt, size_t len)
{
	(void)ctx, (void)pkt, (void)len;
}

static void test_budget_splits_batch_in_order(void **state)
{
	(void)state;
	char req[512], ka[65], kb[65], pa[65], pb[65];
	uint8_t pkt[PKT_LEN];
	uint16_t port_b = 0;
	struct engine_stats st;
	long bound_ms = 10000L * (long)test_time_scale();

	init_side(&A, 0, noop_deliver);
	init_side(&B, B_BUDGET, b_deliver);
	hex(ka, A.priv), hex(kb, B.priv), hex(pa, A.pub), hex(pb, B.pub);
	engine_call(B.e, get_port, &port_b);
	assert_int_not_equal(port_b, 0);
	snprintf(req, sizeof(req),
		 "set=1\nprivate_key=%s\nlisten_port=0\npublic_key=%s\nendpoint=127.0.0.1:%u\n"
		 "allowed_ip=10.0.0.2/32\n\n",
		 ka, pb, port_b);
	uapi_set(A.e, req);
	snprintf(req, sizeof(req),
		 "set=1\nprivate_key=%s\npublic_key=%s\nallowed_ip=10.0.0.1/32\n\n", kb, pa);
	uapi_set(B.e, req);
	start(&A);
	start(&B);

	/* The handshake, and B's first data packet (B may send only after it). */
	long waited = 0;
	for (uint32_t probe = 1000000; seen_count() == 0; probe++) {
		make_pkt(pkt, PKT_LEN, 1, 2, probe);
		int r = engine_packet_write(A.e, pkt, PKT_LEN); /* SG_EFULL: the next round */
		assert_true(r == 0 || r == SG_EFULL);
		sleep_ms(20);
		waited += 20;
		if (waited > bound_ms)
			fail_msg("no packet crossed the tunnel");
	}

	/* B's loop stopped: A's datagrams wait in B's socket, then B's side writes one packet. */
	stop(&B);
	pthread_mutex_lock(&seen_mu);
	nseen = 0;
	pthread_mutex_unlock(&seen_mu);
	engine_call(A.e, get_stats, &st);
	uint64_t a_tx0 = st.udp_tx;
	for (uint32_t i = 0; i < N_PKTS; i++) {
		make_pkt(pkt, PKT_LEN, 1, 2, i);
		assert_int_equal(engine_packet_write(A.e, pkt, PKT_LEN), 0);
	}
	for (waited = 0;; waited += 10) {
		engine_call(A.e, get_stats, &st);
		if (st.udp_tx >= a_tx0 + N_PKTS)
			break;
		if (waited > bound_ms)
			fail_msg("A sent %llu of %d", (unsigned long long)(st.udp_tx - a_tx0),
				 N_PKTS);
		sleep_ms(10);
	}
	engine_get_stats(B.e, &st); /* no loop runs on B: the caller owns it */
	uint64_t b_tx0 = st.udp_tx, b_resumed0 = st.udp_rx_resumed;
	make_pkt(pkt, 100, 2, 1, 7);
	assert_int_equal(engine_packet_write(B.e, pkt, 100), 0);
	start(&B);
	for (waited = 0; seen_count() < N_PKTS; waited += 10) {
		if (waited > bound_ms)
			fail_msg("B delivered %zu of %d", seen_count(), N_PKTS);
		sleep_ms(10);
	}
	stop(&B);
	stop(&A);

	/* All of them, once, in order. */
	assert_int_equal(nseen, N_PKTS);
	for (size_t i = 0; i < nseen; i++)
		assert_int_equal(seen_seq[i], i);
	engine_get_stats(B.e, &st);
	/* The batch outlasted B's budget and was finished on later turns... */
	assert_true(st.udp_rx_resumed > b_resumed0);
	/* ... and B's own packet left between them: before the batch's last packet was
	 * delivered, not after it. */
	assert_int_equal(seen_tx[0], b_tx0);
	assert_true(seen_tx[nseen - 1] > b_tx0);

	engine_free(A.e);
	engine_free(B.e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_budget_splits_batch_in_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
