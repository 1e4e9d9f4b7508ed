/* Handshake throughput of the protocol core, one core: two devices wired together in memory
 * (as tests/unit/device.c does) run full handshakes, initiation -> response -> first data (the
 * initiator's keepalive that confirms the session to the responder), for a given time, in
 * classic or FIPS mode. Both sides run on this one thread, so the rate is "handshakes per second
 * per core" with both ends' work counted, which is what the ECDH bound in bench/handshake.sh
 * assumes too.
 *
 * The clock is simulated: each handshake starts REKEY_TIMEOUT + 1 s after the previous one, past
 * the per-peer initiation rate limit, the responder's flood limit and the TAI64N granularity, and
 * far below the under-load rate, so no cookie round trip happens. Every handshake is checked to
 * complete on both sides in the requested mode.
 *
 *   handshake_bench -m classic|fips [-t SECONDS | -n COUNT] [-s]
 * prints one line of key=value pairs (bench/handshake.sh formats them); per_core is handshakes
 * per CPU second of this thread. -s adds the cost split: the public-key primitives the handshake
 * calls (the same crypto API functions the core calls through its suite table), each called as
 * many times as the handshakes called it (HS_* below; checked with callgrind: 6 ECDH and 2 key
 * generations per handshake once the static-static DH is cached), timed in slices interleaved
 * with the handshakes, against the handshakes' own CPU time; "rest" is everything else
 * (hashing, AEAD, MACs, randomness, indexes, timers, allocation).
 *
 * Built by bench/handshake.sh (cc against the build's static libraries), not by CMake.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BENCH_NAME     "handshake_bench"
#define BENCH_SLOTS    8
#define BENCH_SLOT_LEN 256
#include "bench_core.h"

/* Public-key operations of one handshake, both sides together (noise.c, handshake.c):
 *   DH:      initiator es, ee, se; responder es, ee, se (ss is computed once per peer and kept);
 *   keygen:  one ephemeral key pair per side (sg_suite.dh_generate), whose public key goes
 *            straight into the message (noise_write_msg1_known/msg2_known: no second
 *            derivation). */
#define HS_DH	  6
#define HS_KEYGEN 2

static struct bench_pair pair;
static bool overflow;

static void io_send(void *ctx, struct wg_peer *peer, const struct wg_endpoint *to,
		    const uint8_t *buf, size_t len, uint8_t ttl)
{
	if (!bench_queue(ctx, buf, len))
		overflow = true;
}

static void io_deliver(void *ctx, struct wg_peer *peer, const uint8_t *pkt, size_t len)
{
}

static void io_event(void *ctx, const struct wg_event *ev)
{
	struct bench_node *n = ctx;
	if (ev->type == WG_EVENT_HANDSHAKE_COMPLETE)
		n->complete++;
}

/* Operands of the primitives timed for the cost split (-s). */
static uint8_t k_priv[48], k_pub[49], k_priv2[48], k_pub2[49], k_out[48], k_out_pub[49];

static bool p384_dh(void)
{
	return sg_p384_ecdh(k_out, k_priv, k_pub2);
}

static bool p384_gen(void)
{
	return sg_p384_generate(k_priv2, k_out_pub);
}

static bool x25519_dh(void)
{
	return sg_x25519(k_out, k_priv, k_pub2);
}

static bool x25519_gen(void)
{
	return sg_x25519_generate(k_priv2, k_out_pub);
}

/* CPU seconds for n calls of a primitive. */
static double timed(bool (*fn)(void), unsigned long n)
{
	double t0 = thread_cpu_now();
	for (unsigned long i = 0; i < n; i++)
		if (!fn())
			die("primitive failed");
	return thread_cpu_now() - t0;
}

int main(int argc, char **argv)
{
	const char *mode = NULL;
	double secs = 5;
	long count = 0;
	bool want_split = false;
	int opt;

	while ((opt = getopt(argc, argv, "m:t:n:s")) != -1) {
		switch (opt) {
		case 'm':
			mode = optarg;
			break;
		case 't':
			secs = atof(optarg);
			break;
		case 'n':
			count = atol(optarg);
			break;
		case 's':
			want_split = true;
			break;
		default:
			mode = NULL;
			optind = argc;
			break;
		}
	}
	if (!mode || (strcmp(mode, "classic") != 0 && strcmp(mode, "fips") != 0) || secs <= 0 ||
	    count < 0) {
		fprintf(stderr, "usage: %s -m classic|fips [-t SECONDS | -n COUNT] [-s]\n",
			argv[0]);
		return 2;
	}
	bool fips = strcmp(mode, "fips") == 0;
	if (sg_crypto_init() != 0)
		die("crypto init");
	const struct wg_io io = {.send = io_send,
				 .deliver = io_deliver,
				 .realtime_ns = bench_realtime,
				 .event = io_event};
	bench_pair_setup(&pair, &io, fips);
	bool (*dh)(void) = fips ? p384_dh : x25519_dh;
	bool (*gen)(void) = fips ? p384_gen : x25519_gen;
	if (fips ? !sg_p384_generate(k_priv, k_pub) || !sg_p384_generate(k_priv2, k_pub2)
		 : !sg_x25519_generate(k_priv, k_pub) || !sg_x25519_generate(k_priv2, k_pub2))
		die("keys");
	pair.now = 1000 * NSEC;
	bench_handshake(&pair); /* warm-up: computes and keeps the static-static DH of each peer */
	/* With -s, slices of 0.2 s of handshakes alternate with as many calls of each primitive as
	 * those handshakes made, so both see the same machine load (other processes, the SMT
	 * sibling) and the split compares like with like. */
	unsigned long done = 0, base0 = pair.nodes[0].complete, base1 = pair.nodes[1].complete;
	double hs_cpu = 0, dh_cpu = 0, gen_cpu = 0;
	double w0 = wall_now(), w_end = w0 + secs;
	for (;;) {
		double c0 = thread_cpu_now(), slice_end = wall_now() + (want_split ? 0.2 : secs);
		unsigned long n = 0;
		for (;;) {
			bench_handshake(&pair);
			n++;
			if (count ? done + n >= (unsigned long)count
				  : n % 8 == 0 && wall_now() >= slice_end)
				break;
		}
		hs_cpu += thread_cpu_now() - c0;
		done += n;
		if (want_split) {
			dh_cpu += timed(dh, HS_DH * n);
			gen_cpu += timed(gen, HS_KEYGEN * n);
		}
		if (count ? done >= (unsigned long)count : wall_now() >= w_end)
			break;
	}
	double wall = wall_now() - w0;
	/* Initiator: session on the response; responder: on the confirming first data. */
	if (overflow || pair.nodes[0].complete - base0 != done ||
	    pair.nodes[1].complete - base1 != done)
		die("a handshake did not complete on both sides");
	struct wg_peer_stats ps;
	wg_peer_get_stats(pair.nodes[1].peer, &ps);
	if (ps.mode != (fips ? SG_SUITE_FIPS : SG_SUITE_CLASSIC))
		die("session in the wrong mode");
	printf("mode=%s handshakes=%lu cpu_s=%.3f wall_s=%.3f per_core=%.1f", mode, done, hs_cpu,
	       wall, (double)done / hs_cpu);
	if (want_split) {
		double per = (double)done;
		double rest = hs_cpu - dh_cpu - gen_cpu;
		printf(" hs_us=%.1f dh_us=%.1f keygen_us=%.1f split_dh_pct=%.1f"
		       " split_keygen_pct=%.1f split_rest_pct=%.1f",
		       hs_cpu / per * 1e6, dh_cpu / (HS_DH * per) * 1e6,
		       gen_cpu / (HS_KEYGEN * per) * 1e6, 100 * dh_cpu / hs_cpu,
		       100 * gen_cpu / hs_cpu, 100 * rest / hs_cpu);
	}
	printf("\n");
	bench_pair_free(&pair);
	return 0;
}
