/* The crypto ceiling of the parallel data path: two devices wired together in memory (as
 * bench/handshake_bench.c does) complete one handshake in classic or FIPS mode, then for a given
 * time A sends batches of BATCH inner IPv4 packets of INNER_LEN bytes to B through the split data
 * path of wg.h ("the data path in three steps"), with the AEAD step of every batch spread over
 * `lanes` threads by the daemon's crypto pool (src/daemon/cpool.c, compiled in):
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
#include <arpa/inet.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "daemon/cpool.h"
#include "wg/wg.h"

#define BATCH	  64
#define INNER_LEN 1420 /* the default TUN MTU, and the packet that fills it */
#define SLOT_LEN  2048 /* > 16-byte header + INNER_LEN + 16-byte tag */
#define SEQ_OFF	  28   /* the sequence number, after the IPv4 and UDP headers */
#define NS_PER_S  1000000000ULL
#define BATCH_NS  1000ULL /* simulated time per batch */
#define WARMUP	  4	  /* untimed batches per lane count: keys each lane's EVP context */

struct node {
	struct wg_device *dev;
	struct wg_peer *peer;
	struct wg_endpoint ep;
	unsigned long complete;
};

static struct node nodes[2];

/* Datagrams in flight. During the handshake a FIFO pump() drains; in the data phase A's send
 * upcall fills it with one batch, which B then opens in place. */
static struct {
	int to;
	size_t len;
	uint8_t buf[SLOT_LEN];
} slots[BATCH];
static size_t nslots;
static bool data_phase;

/* The prepare step's output buffers and the ops: allocated once, statically. */
static uint8_t stage[BATCH][SLOT_LEN];
static struct wg_crypt_op send_ops[BATCH], recv_ops[BATCH];
static uint8_t inner[INNER_LEN];

static uint64_t sim_now;
static uint64_t next_seq;	     /* of the next packet A sends */
static uint64_t expect_seq;	     /* of the next packet B must deliver */
static uint64_t delivered_bytes;     /* inner bytes B delivered */
static unsigned long delivered_pkts; /* packets B delivered */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("datapath_bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

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
		    const uint8_t *buf, size_t len)
{
	struct node *from = ctx;

	(void)peer;
	(void)to;
	if (data_phase && from != &nodes[0])
		die("B sent a %zu-byte datagram during the data phase", len);
	if (nslots == BATCH || len > SLOT_LEN)
		die("datagram of %zu bytes does not fit (%zu slots used)", len, nslots);
	slots[nslots].to = from == &nodes[0] ? 1 : 0;
	slots[nslots].len = len;
	memcpy(slots[nslots].buf, buf, len);
	nslots++;
}

static void io_deliver(void *ctx, struct wg_peer *peer, const uint8_t *pkt, size_t len)
{
	(void)peer;
	if (ctx != &nodes[1] || !data_phase)
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

static uint64_t io_realtime(void *ctx)
{
	(void)ctx;
	return 1700000000ULL * NS_PER_S + sim_now;
}

static void io_event(void *ctx, const struct wg_event *ev)
{
	struct node *n = ctx;

	if (data_phase)
		die("event %s (%s) on %c during the data phase", event_name(ev->type),
		    ev->reason ? ev->reason : "-", n == &nodes[0] ? 'A' : 'B');
	if (ev->type == WG_EVENT_HANDSHAKE_COMPLETE)
		n->complete++;
}

/* Delivers every handshake datagram in flight, and what it causes, in order. */
static void pump(void)
{
	for (size_t head = 0; head < nslots; head++)
		wg_device_receive(nodes[slots[head].to].dev, sim_now,
				  &nodes[1 - slots[head].to].ep, slots[head].buf, slots[head].len);
	nslots = 0;
}

static void setup(bool fips)
{
	for (int k = 0; k < 2; k++) {
		struct node *n = &nodes[k];
		struct wg_io io = {.ctx = n,
				   .send = io_send,
				   .deliver = io_deliver,
				   .realtime_ns = io_realtime,
				   .event = io_event};
		uint8_t priv[32], pub[32];
		n->dev = wg_device_new(&io);
		if (!n->dev || !sg_x25519_generate(priv, pub) ||
		    wg_device_set_private_key(n->dev, priv))
			die("classic key");
		sg_memzero(priv, sizeof(priv));
		wg_device_set_mtu(n->dev, INNER_LEN);
		memset(&n->ep, 0, sizeof(n->ep));
		n->ep.addr.in4.sin_family = AF_INET;
		n->ep.addr.in4.sin_port = htons((uint16_t)(51820 + k));
		n->ep.addr.in4.sin_addr.s_addr = htonl(0xc0000201u + (uint32_t)k);
		if (fips) {
			uint8_t fpriv[WG_FIPS_PRIV_LEN], fpub[WG_FIPS_PUB_LEN];
			if (!sg_p384_generate(fpriv, fpub) ||
			    wg_device_set_fips_private_key(n->dev, fpriv) ||
			    wg_device_set_crypto_mode(n->dev, WG_CRYPTO_FIPS))
				die("FIPS key");
			sg_memzero(fpriv, sizeof(fpriv));
		} else if (wg_device_set_crypto_mode(n->dev, WG_CRYPTO_CLASSIC)) {
			die("crypto mode");
		}
	}
	for (int k = 0; k < 2; k++) {
		struct node *n = &nodes[k], *o = &nodes[1 - k];
		uint8_t pub[32], fpub[WG_FIPS_PUB_LEN];
		uint8_t all4[4] = {0};
		if (!wg_device_get_public_key(o->dev, pub) ||
		    wg_device_add_peer(n->dev, pub, &n->peer))
			die("peer");
		if (fips && (!wg_device_get_fips_public_key(o->dev, fpub) ||
			     wg_peer_set_fips_public_key(n->peer, fpub)))
			die("FIPS peer key");
		wg_peer_set_endpoint(n->peer, &o->ep);
		if (wg_peer_add_allowed_ip(n->peer, AF_INET, all4, 0))
			die("allowed IP");
	}
	/* A initiates; its keepalive after the response confirms the session to B. */
	sim_now = 1000 * NS_PER_S;
	wg_peer_initiate(nodes[0].peer, sim_now);
	pump();
	struct wg_peer_stats ps;
	wg_peer_get_stats(nodes[1].peer, &ps);
	if (nodes[0].complete != 1 || nodes[1].complete != 1 ||
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
	struct wg_device *a = nodes[0].dev, *b = nodes[1].dev;
	unsigned long before = delivered_pkts;

	sim_now += BATCH_NS;
	for (size_t i = 0; i < BATCH; i++) {
		memcpy(inner + SEQ_OFF, &next_seq, sizeof(next_seq));
		int r = wg_device_send_prepare(a, sim_now, inner, INNER_LEN, stage[i], SLOT_LEN,
					       &send_ops[i]);
		if (r != 1)
			die("send_prepare of packet %llu returned %d, not an op",
			    (unsigned long long)next_seq, r);
		next_seq++;
	}
	cpool_run(pool, send_ops, BATCH);
	for (size_t i = 0; i < BATCH; i++)
		wg_device_send_complete(a, sim_now, &send_ops[i]);
	if (nslots != BATCH)
		die("A sent %zu datagrams for a batch of %d", nslots, BATCH);

	for (size_t i = 0; i < BATCH; i++) {
		int r = wg_device_receive_prepare(b, sim_now, &nodes[0].ep, slots[i].buf,
						  slots[i].len, &recv_ops[i]);
		if (r != 1)
			die("receive_prepare of datagram %zu (%zu bytes) returned %d, not an op",
			    i, slots[i].len, r);
	}
	cpool_run(pool, recv_ops, BATCH);
	for (size_t i = 0; i < BATCH; i++)
		wg_device_receive_complete(b, sim_now, &recv_ops[i]);
	nslots = 0;
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

static double wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* User + system time of the process: every thread, the pool's workers included. */
static double cpu_now(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
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
	double c0 = cpu_now(), w0 = wall_now(), w_end = w0 + secs, w;
	do
		batch(pool);
	while ((w = wall_now()) < w_end);
	double cpu = cpu_now() - c0, wall = w - w0;
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
		fprintf(stderr, "usage: %s -m classic|fips [-t SECONDS] [-l MAX_LANES]\n",
			argv[0]);
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
	for (int k = 0; k < 2; k++)
		wg_device_free(nodes[k].dev);
	return 0;
}
