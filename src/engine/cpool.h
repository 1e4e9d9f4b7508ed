/* The crypto pool: the AEAD step of a batch of packets spread over several threads.
 *
 * The event loop thread prepares a batch (wg.h's split data path: routing, counters, headers),
 * cpool_run seals or opens the batch's ops on the pool's threads and on the calling thread at
 * once, and returns when every op is done; the loop thread then completes the ops in batch order,
 * so each peer's packets leave (and arrive at the TUN device) in the order they came, as the
 * kernel module's per-peer queues keep them. A fork-join per batch: the loop thread never waits
 * for a packet of a later batch, no packet buffer changes hands between batches, and a keypair
 * can only be retired by the loop thread while no worker runs.
 *
 * Small batches stay on the calling thread (waking a worker costs more than a few packets'
 * crypto), so an idle tunnel's latency does not depend on the pool.
 */
#ifndef SG_ENGINE_CPOOL_H
#define SG_ENGINE_CPOOL_H

#include <stddef.h>

#include "common/compiler.h"
#include "wg/wg.h"

struct cpool;

/* A pool of `lanes` crypto lanes: the caller's thread (lane 0) and lanes - 1 worker threads,
 * started here (1 = no threads: cpool_run works alone). lanes is clamped to [1, SG_AEAD_LANES].
 * 0 or a negative errno (thread creation). Call after dropping privileges: threads keep the
 * capabilities they were created with. */
int cpool_new(struct cpool **out, unsigned lanes) SG_WUR;
/* Stops and joins the workers. NULL is a no-op. */
void cpool_free(struct cpool *p);
unsigned cpool_lanes(const struct cpool *p);
/* Runs wg_crypt_op_run on ops[0..n) and returns when all are done. */
void cpool_run(struct cpool *p, struct wg_crypt_op *ops, size_t n);
/* The same for any batch: fn(ctx, i, lane) for every i in [0, n), each once, on some lane
 * (secureguard-iked's ESP ops, esp.h). fn may only touch op i and what is safe on its lane. */
typedef void (*cpool_fn)(void *ctx, size_t i, unsigned lane);
void cpool_run_fn(struct cpool *p, size_t n, cpool_fn fn, void *ctx);
/* The default number of lanes: SG_CRYPTO_THREADS if set (1..16), else half the CPUs this process
 * may run on (at least 1, at most SG_AEAD_LANES). *why says where the number came from. */
unsigned cpool_default_lanes(const char **why);

#endif
