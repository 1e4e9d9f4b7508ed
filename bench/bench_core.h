/* Helpers shared by the benchmark programs of bench/ (handshake_bench.c, datapath_bench.c,
 * flood_gen.c). Header-only, every function static inline: each program is compiled alone with
 * cc against the build's static libraries by its script, not by CMake.
 *
 * Define BENCH_NAME (the program's name, the prefix of its error messages) before including.
 * struct bench_pair, two devices wired together in memory (as tests/unit/device.c does), also
 * needs BENCH_SLOTS and BENCH_SLOT_LEN: how many datagrams can be in flight, and the largest.
 */
#ifndef SG_BENCH_CORE_H
#define SG_BENCH_CORE_H

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "crypto/crypto.h"
#include "wg/wg_int.h"

#ifndef BENCH_NAME
#error "define BENCH_NAME before including bench_core.h"
#endif

static inline void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static inline void die(const char *fmt, ...)
{
	va_list ap;

	fputs(BENCH_NAME ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* Seconds of CLOCK_MONOTONIC. */
static inline double wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds of the calling thread alone. */
static inline double thread_cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* User + system time of the process: every thread included. */
static inline double process_cpu_now(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* A fresh random X25519 static key for dev; the private half is wiped here. */
static inline bool bench_new_x25519_key(struct wg_device *dev)
{
	uint8_t priv[WG_KEY_LEN], pub[WG_KEY_LEN];
	bool ok = sg_x25519_generate(priv, pub) && wg_device_set_private_key(dev, priv) == 0;

	sg_memzero(priv, sizeof(priv));
	return ok;
}

/* A fresh random P-384 static key for dev's FIPS mode; the private half is wiped here. */
static inline bool bench_new_fips_key(struct wg_device *dev)
{
	uint8_t priv[WG_FIPS_PRIV_LEN], pub[WG_FIPS_PUB_LEN];
	bool ok = sg_p384_generate(priv, pub) && wg_device_set_fips_private_key(dev, priv) == 0;

	sg_memzero(priv, sizeof(priv));
	return ok;
}

#if defined(BENCH_SLOTS) && defined(BENCH_SLOT_LEN)

struct bench_pair;

struct bench_node {
	struct bench_pair *pair;
	struct wg_device *dev;
	struct wg_peer *peer; /* the other node */
	struct wg_endpoint ep;
	unsigned long complete; /* WG_EVENT_HANDSHAKE_COMPLETE events */
};

/* Node 0 (A) and node 1 (B), the datagrams in flight between them and the simulated clock. */
struct bench_pair {
	struct bench_node nodes[2];
	struct {
		int to;
		size_t len;
		uint8_t buf[BENCH_SLOT_LEN];
	} slots[BENCH_SLOTS];
	size_t nslots;
	uint64_t now;
};

/* For the send upcall: queues a datagram from node `from` to the other node; false when it
 * does not fit (no slot left, or too long), and then nothing is queued. */
static inline bool bench_queue(struct bench_node *from, const uint8_t *buf, size_t len)
{
	struct bench_pair *p = from->pair;

	if (p->nslots == BENCH_SLOTS || len > BENCH_SLOT_LEN)
		return false;
	p->slots[p->nslots].to = from == &p->nodes[0] ? 1 : 0;
	p->slots[p->nslots].len = len;
	memcpy(p->slots[p->nslots].buf, buf, len);
	p->nslots++;
	return true;
}

/* Delivers every datagram in flight, and what they cause, in order, until none is left. */
static inline void bench_pump(struct bench_pair *p)
{
	for (size_t head = 0; head < p->nslots; head++) {
		int to = p->slots[head].to;

		wg_device_receive(p->nodes[to].dev, p->now, &p->nodes[1 - to].ep,
				  p->slots[head].buf, p->slots[head].len);
	}
	p->nslots = 0;
}

/* The realtime_ns upcall: a fixed date plus the simulated clock, so TAI64N timestamps grow. */
static inline uint64_t bench_realtime(void *ctx)
{
	const struct bench_node *n = ctx;

	return 1700000000ULL * NSEC + n->pair->now;
}

/* Two devices with random keys, each the other's peer (allowed IPs 0.0.0.0/0, endpoints
 * 192.0.2.1:51820 and 192.0.2.2:51821), in classic or FIPS mode. io gives the upcalls; each
 * node is its own ctx. */
static inline void bench_pair_setup(struct bench_pair *p, const struct wg_io *io, bool fips)
{
	for (int k = 0; k < 2; k++) {
		struct bench_node *n = &p->nodes[k];
		struct wg_io nio = *io;

		n->pair = p;
		nio.ctx = n;
		n->dev = wg_device_new(&nio);
		if (!n->dev || !bench_new_x25519_key(n->dev))
			die("classic key");
		memset(&n->ep, 0, sizeof(n->ep));
		n->ep.addr.in4.sin_family = AF_INET;
		n->ep.addr.in4.sin_port = htons((uint16_t)(51820 + k));
		n->ep.addr.in4.sin_addr.s_addr = htonl(0xc0000201u + (uint32_t)k);
		if (fips) {
			if (!bench_new_fips_key(n->dev) ||
			    wg_device_set_crypto_mode(n->dev, WG_CRYPTO_FIPS))
				die("FIPS key");
		} else if (wg_device_set_crypto_mode(n->dev, WG_CRYPTO_CLASSIC)) {
			die("crypto mode");
		}
	}
	for (int k = 0; k < 2; k++) {
		struct bench_node *n = &p->nodes[k], *o = &p->nodes[1 - k];
		uint8_t pub[WG_KEY_LEN], fpub[WG_FIPS_PUB_LEN];
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
}

/* One full handshake started by node 0, REKEY_TIMEOUT + 1 s after the last one (past the
 * per-peer initiation limit, whitepaper 6.1), until the network is quiet: initiation, response
 * and the initiator's keepalive that confirms the session to the responder. */
static inline void bench_handshake(struct bench_pair *p)
{
	p->now += REKEY_TIMEOUT + NSEC;
	wg_peer_initiate(p->nodes[0].peer, p->now);
	bench_pump(p);
}

static inline void bench_pair_free(struct bench_pair *p)
{
	for (int k = 0; k < 2; k++)
		wg_device_free(p->nodes[k].dev);
}

#endif /* BENCH_SLOTS && BENCH_SLOT_LEN */

#endif /* SG_BENCH_CORE_H */
