/* The crypto ceiling of the parallel data path: two devices wired together in memory (as
 * bench/handshake_bench.c does) complete one handshake in classic or FIPS mode, then for a given
 * time A sends batches of BATCH inner IPv4 packets of INNER_LEN bytes to B through the split data
 * path of wg.h ("the data path in three steps"), with the AEAD step of every batch spread over
 * `lanes` threads by the daemon's crypto pool (src/engine/cpool.c, compiled in):
 *
 *   A: BATCH x wg_device_send_prepare, cpool_run, BATCH x wg_device_send_complete
 *      (the send upcall copies each datagram into one of BATCH preallocated slots);
 *   B: BATCH x wg_device_receive_prepare on the slots, cpool_run, BATCH x receive_complete
 *      (the deliver upcall checks each packet's length and sequence number and counts it).
 *
 * No sockets, no TUN device, no syscalls per packet: this is the most the daemon's crypto part
 * can do, not a tunnel's throughput. Every byte counted was sealed once and opened once, so one
 * lane is bounded by half of `openssl speed` for the suite's AEAD (bench/datapath.sh prints it).
 *
 * The simulated clock advances 1 us per batch, so no timer is due and no rekey starts
 * (REKEY_AFTER_TIME is 120 s of that clock, REKEY_AFTER_MESSAGES 2^60); any event during the
 * data phase, any datagram B sends, or any packet not delivered in order aborts the run.
 *
 *   datapath_bench -m classic|fips [-t SECONDS] [-l MAX_LANES]
 * runs lanes = 1 .. MAX_LANES (default: the CPUs this process may run on, at most SG_AEAD_LANES),
 * SECONDS each (default 5), and prints one line of key=value pairs per lane count: gbps is inner
 * bits per wall-clock second / 1e9, cpu_s is user + system time of all threads (getrusage).
 *
 * Built by bench/datapath.sh (cc against the build's static libraries), not by CMake.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/cpool.h"

#define BATCH	  64
#define INNER_LEN 1420	  /* the default TUN MTU, and the packet that fills it */
#define SLOT_LEN  2048	  /* > 16-byte header + INNER_LEN + 16-byte tag */
#define SEQ_OFF	  28	  /* the sequence number, after the IPv4 and UDP headers */
#define BATCH_NS  1000ULL /* simulated time per batch */
#define WARMUP	  4	  /* untimed batches per lane count: keys each lane's EVP context */

#define BENCH_NAME     "datapath_bench"
#define BENCH_SLOTS    BATCH
#define BENCH_SLOT_LEN SLOT_LEN
#include "bench_core.h"

/* Datagrams in flight. During the handshake a FIFO bench_pump() drains them; in the data phase
 * A's send upcall fills the slots with one batch, which B then opens in place. */
static struct bench_pair pair;
static bool data_phase;

/* The prepare step's output buffers and the ops: allocated once, statically. */
static uint8_t stage[BATCH][SLOT_LEN];
static struct wg_crypt_op send_ops[BATCH], recv_ops[BATCH];
static uint8_t inner[INNER_LEN];

static uint64_t next_seq;	     /* of the next packet A sends */
static uint64_t expect_seq;	     /* of the next packet B must deliver */
static uint64_t delivered_bytes;     /* inner bytes B delivered */
static unsigned long delivered_pkts; /* packets B delivered */

static const char *event_name(enum wg_event_type t)
{
	static const char *const names[] = {
	    [WG_EVENT_HANDSHAKE_INITIATED] = "handshake_initiated",
	    [WG_EVENT_HANDSHAKE_COMPLETE] = "handshake_complete",
	    [WG_EVENT_HANDSHAKE_FAILED] = "handshake_failed",
	    [WG_EVENT_HANDSHAKE_GAVE_UP] = "handshake_gave_up",
	    [WG_EVENT_ENDPOINT_CHANGED] = "endpoint_changed",
	    [WG_EVENT_REKEY] = "rekey",
	    [WG_EVENT_KEYS_ZEROED] = "keys_zeroed",
	    [WG_EVENT_COOKIE_SENT] = "cookie_sent",
	    [WG_EVENT_COOKIE_RECEIVED] = "cookie_received",
	    [WG_EVENT_PACKET_DROPPED] = "packet_dropped",
	    [WG_EVENT_MODE_REFUSED] = "mode_refused",
	    [WG_EVENT_MODE_REJECTED] = "mode_rejected",
	    [WG_EVENT_MODE_FALLBACK] = "mode_fallback",
	    [WG_EVENT_MODE_UNUSABLE] = "mode_unusable",
	};
	if ((size_t)t < sizeof(names) / sizeof(names[0]) && names[t])
		return names[t];
	return "unknown";
}

static void io_send(void *ctx, struct wg_peer *peer, const struct wg_endpoint *to,
		    const uint8_t *buf, size_t len, uint8_t ttl)
{
	(void)peer;
	(void)to;
	if (data_phase && ctx != &pair.nodes[0])
		die("B sent a %zu-byte datagram during the data phase", len);
	if (!bench_queue(ctx, buf, len))
		die("datagram of %zu bytes does not fit (%zu slots used)", len, pair.nslots);
}

static void io_deliver(void *ctx, struct wg_peer *peer, const uint8_t *pkt, size_t len)
{
	(void)peer;
	if (ctx != &pair.nodes[1] || !data_phase)
		die("unexpected delivery of %zu bytes", len);
	uint64_t seq;
	memcpy(&seq, pkt + SEQ_OFF, sizeof(seq));
	if (len != INNER_LEN || seq != expect_seq)
		die("delivered %zu bytes with sequence %llu, expected %d bytes with %llu", len,
		    (unsigned long long)seq, INNER_LEN, (unsigned long long)expect_seq);
	expect_seq++;
	delivered_bytes += len;
	delivered_pkts++;
}

static void io_event(void *ctx, const struct wg_event *ev)
{
	struct bench_node *n = ctx;

	if (data_phase)
		die("event %s (%s) on %c during the data phase", event_name(ev->type),
		    ev->reason ? ev->reason : "-", n == &pair.nodes[0] ? 'A' : 'B');
	if (ev->type == WG_EVENT_HANDSHAKE_COMPLETE)
		n->complete++;
}

static void setup(bool fips)
{
	const struct wg_io io = {.send = io_send,
				 .deliver = io_deliver,
				 .realtime_ns = bench_realtime,
				 .event = io_event};

	bench_pair_setup(&pair, &io, fips);
	for (int k = 0; k < 2; k++)
		wg_device_set_mtu(pair.nodes[k].dev, INNER_LEN);
	/* A initiates; its keepalive after the response confirms the session to B. */
	pair.now = 1000 * NSEC;
	wg_peer_initiate(pair.nodes[0].peer, pair.now);
	bench_pump(&pair);
	struct wg_peer_stats ps;
	wg_peer_get_stats(pair.nodes[1].peer, &ps);
	if (pair.nodes[0].complete != 1 || pair.nodes[1].complete != 1 ||
	    ps.mode != (fips ? SG_SUITE_FIPS : SG_SUITE_CLASSIC))
		die("the handshake did not complete on both sides in %s mode",
		    fips ? "FIPS" : "classic");
}

/* A UDP-in-IPv4 packet 10.77.0.2 -> 10.77.0.1 of INNER_LEN bytes (header checksum set, though
 * the core does not check it); the sequence number goes in at SEQ_OFF per packet. */
static void make_inner(void)
{
	uint32_t sum = 0;

	for (size_t i = 0; i < INNER_LEN; i++)
		inner[i] = (uint8_t)(i * 7 + 1);
	memset(inner, 0, 28);
	inner[0] = 0x45;
	inner[2] = INNER_LEN >> 8;
	inner[3] = INNER_LEN & 0xff;
	inner[8] = 64;
	inner[9] = 17;
	memcpy(inner + 12, (const uint8_t[]){10, 77, 0, 2, 10, 77, 0, 1}, 8);
	for (size_t i = 0; i < 20; i += 2)
		sum += (uint32_t)inner[i] << 8 | inner[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	inner[10] = (uint8_t)(~sum >> 8);
	inner[11] = (uint8_t)~sum;
	inner[21] = 0x35; /* ports 53 -> 53, UDP length, no checksum */
	inner[23] = 0x35;
	inner[24] = (INNER_LEN - 20) >> 8;
	inner[25] = (INNER_LEN - 20) & 0xff;
}

/* One batch A -> B through the three steps on both sides. */
static void batch(struct cpool *pool)
{
	struct wg_device *a = pair.nodes[0].dev, *b = pair.nodes[1].dev;
	unsigned long before = delivered_pkts;

	pair.now += BATCH_NS;
	for (size_t i = 0; i < BATCH; i++) {
		memcpy(inner + SEQ_OFF, &next_seq, sizeof(next_seq));
		int r = wg_device_send_prepare(a, pair.now, inner, INNER_LEN, stage[i], SLOT_LEN,
					       &send_ops[i]);
		if (r != 1)
			die("send_prepare of packet %llu returned %d, not an op",
			    (unsigned long long)next_seq, r);
		next_seq++;
	}
	cpool_run(pool, send_ops, BATCH);
	for (size_t i = 0; i < BATCH; i++)
		wg_device_send_complete(a, pair.now, &send_ops[i]);
	if (pair.nslots != BATCH)
		die("A sent %zu datagrams for a batch of %d", pair.nslots, BATCH);

	for (size_t i = 0; i < BATCH; i++) {
		int r = wg_device_receive_prepare(b, pair.now, &pair.nodes[0].ep, pair.slots[i].buf,
						  pair.slots[i].len, &recv_ops[i]);
		if (r != 1)
			die("receive_prepare of datagram %zu (%zu bytes) returned %d, not an op", i,
			    pair.slots[i].len, r);
	}
	cpool_run(pool, recv_ops, BATCH);
	for (size_t i = 0; i < BATCH; i++)
		wg_device_receive_complete(b, pair.now, &recv_ops[i]);
	pair.nslots = 0;
	if (delivered_pkts - before != BATCH) {
		struct wg_device_stats st;
		wg_device_get_stats(b, &st);
		die("B delivered %lu of %d packets (decrypt_fail %llu, replayed %llu, "
		    "bad_inner %llu, bad_source %llu)",
		    delivered_pkts - before, BATCH, (unsigned long long)st.rx_decrypt_fail,
		    (unsigned long long)st.rx_replayed, (unsigned long long)st.rx_bad_inner,
		    (unsigned long long)st.rx_bad_source);
	}
}

static unsigned cpu_count(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return 1;
	int n = CPU_COUNT(&set);
	return n < 1 ? 1 : (unsigned)n;
}

static void run(const char *mode, unsigned lanes, unsigned cpus, double secs)
{
	struct cpool *pool;
	int err = cpool_new(&pool, lanes);

	if (err)
		die("cpool_new(%u): %s", lanes, strerror(-err));
	data_phase = true;
	for (int i = 0; i < WARMUP; i++)
		batch(pool);
	uint64_t bytes0 = delivered_bytes;
	unsigned long pkts0 = delivered_pkts;
	double c0 = process_cpu_now(), w0 = wall_now(), w_end = w0 + secs, w;
	do
		batch(pool);
	while ((w = wall_now()) < w_end);
	double cpu = process_cpu_now() - c0, wall = w - w0;
	data_phase = false;
	cpool_free(pool);
	uint64_t bytes = delivered_bytes - bytes0;
	printf("mode=%s lanes=%u cpus=%u packets=%lu bytes=%llu wall_s=%.3f cpu_s=%.3f gbps=%.3f"
	       " cpu_s_per_gb=%.3f\n",
	       mode, lanes, cpus, delivered_pkts - pkts0, (unsigned long long)bytes, wall, cpu,
	       (double)bytes * 8 / wall / 1e9, cpu / ((double)bytes / 1e9));
	fflush(stdout);
}

int main(int argc, char **argv)
{
	const char *mode = NULL;
	double secs = 5;
	unsigned cpus = cpu_count(), max_lanes = cpus;
	int opt;

	while ((opt = getopt(argc, argv, "m:t:l:")) != -1) {
		switch (opt) {
		case 'm':
			mode = optarg;
			break;
		case 't':
			secs = atof(optarg);
			break;
		case 'l':
			max_lanes = (unsigned)atoi(optarg);
			break;
		default:
			mode = NULL;
			optind = argc;
			break;
		}
	}
	if (!mode || (strcmp(mode, "classic") != 0 && strcmp(mode, "fips") != 0) || secs <= 0 ||
	    max_lanes < 1) {
		fprintf(stderr, "usage: %s -m classic|fips [-t SECONDS] [-l MAX_LANES]\n", argv[0]);
		return 2;
	}
	if (max_lanes > SG_AEAD_LANES)
		max_lanes = SG_AEAD_LANES;
	if (sg_crypto_init() != 0)
		die("crypto init");
	make_inner();
	setup(strcmp(mode, "fips") == 0);
	for (unsigned lanes = 1; lanes <= max_lanes; lanes++)
		run(mode, lanes, cpus, secs);
	bench_pair_free(&pair);
	return 0;
}
