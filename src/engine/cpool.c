/* The crypto pool; see cpool.h. */
#include "engine/cpool.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "crypto/crypto.h"

/* Ops a thread claims at a time: enough to amortise the shared counter, few enough that the
 * threads finish together. */
#define CLAIM 4
/* Below this many ops the caller's thread works alone. */
#define PARALLEL_MIN 8
/* A worker that finished a batch watches for the next one this long before it sleeps, and the
 * caller watches for the workers to finish this long before it sleeps: under a steady flow the
 * next batch comes within tens of microseconds, and a futex wake-up costs about as much as a
 * batch's crypto (measured with bench/datapath.sh: without spinning, two lanes gained 10%). */
#define SPIN_NS 50000

struct worker {
	struct cpool *pool;
	pthread_t thread;
	unsigned lane;
	bool started;
};

struct cpool {
	unsigned lanes;
	struct worker *workers; /* lanes - 1 of them */
	pthread_mutex_t lock;
	pthread_cond_t start; /* workers sleep here for a new batch */
	pthread_cond_t idle;  /* the caller sleeps here for the workers to leave a batch */
	/* The batch, written under lock. A worker joins a batch (active++) under the lock and
	 * leaves it (active--) under the lock after its last op; the caller closes a batch only
	 * under the lock with no worker in it, so a worker never sees half of one batch and half
	 * of the next. gen and active are also read without the lock, as hints to spin on. */
	_Atomic uint64_t gen;
	cpool_fn fn; /* the batch's work: fn(ctx, i, lane) for i in [0, n) */
	void *ctx;
	size_t n;
	_Atomic unsigned active;
	unsigned sleepers; /* workers waiting on `start` */
	bool waiter;	   /* the caller waits on `idle` */
	_Atomic bool stop;
	_Atomic size_t next; /* the next op to claim in the current batch */
};

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* Spins until cond(p, arg) or SPIN_NS pass; true if cond came true. */
static bool spin_until(struct cpool *p, bool (*cond)(struct cpool *, uint64_t), uint64_t arg)
{
	uint64_t start = 0;
	for (unsigned i = 0;; i++) {
		if (cond(p, arg))
			return true;
		if ((i & 63) == 0) {
			uint64_t t = mono_ns();
			if (start == 0)
				start = t;
			else if (t - start > SPIN_NS)
				return false;
		}
		cpu_relax();
	}
}

static bool new_batch(struct cpool *p, uint64_t seen)
{
	return atomic_load_explicit(&p->gen, memory_order_relaxed) != seen ||
	       atomic_load_explicit(&p->stop, memory_order_relaxed);
}

static bool workers_out(struct cpool *p, uint64_t unused)
{
	(void)unused;
	return atomic_load_explicit(&p->active, memory_order_relaxed) == 0;
}

static void work(struct cpool *p, cpool_fn fn, void *ctx, size_t n, unsigned lane)
{
	size_t i;

	while ((i = atomic_fetch_add_explicit(&p->next, CLAIM, memory_order_relaxed)) < n) {
		size_t end = i + CLAIM < n ? i + CLAIM : n;
		for (; i < end; i++)
			fn(ctx, i, lane);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct cpool *p = w->pool;
	uint64_t seen = 0;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->stop && p->gen == seen) {
			pthread_mutex_unlock(&p->lock);
			bool soon = spin_until(p, new_batch, seen);
			pthread_mutex_lock(&p->lock);
			if (soon || p->stop || p->gen != seen)
				continue;
			p->sleepers++;
			pthread_cond_wait(&p->start, &p->lock);
			p->sleepers--;
		}
		if (p->stop)
			break;
		seen = p->gen;
		cpool_fn fn = p->fn;
		void *ctx = p->ctx;
		size_t n = p->n;
		/* Woken too late: the caller finished the batch alone and closed it (n = 0). Such
		 * a worker must not touch `next`, which the next batch may already be using. */
		if (n == 0)
			continue;
		atomic_fetch_add_explicit(&p->active, 1, memory_order_relaxed);
		pthread_mutex_unlock(&p->lock);
		work(p, fn, ctx, n, w->lane);
		pthread_mutex_lock(&p->lock);
		if (atomic_fetch_sub_explicit(&p->active, 1, memory_order_release) == 1 &&
		    p->waiter)
			pthread_cond_signal(&p->idle);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static void stop_workers(struct cpool *p)
{
	pthread_mutex_lock(&p->lock);
	atomic_store(&p->stop, true);
	pthread_cond_broadcast(&p->start);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i + 1 < p->lanes; i++)
		if (p->workers[i].started)
			pthread_join(p->workers[i].thread, NULL);
}

int cpool_new(struct cpool **out, unsigned lanes)
{
	struct cpool *p;
	int err = 0;

	*out = NULL;
	if (lanes < 1)
		lanes = 1;
	if (lanes > SG_AEAD_LANES)
		lanes = SG_AEAD_LANES;
	if (!(p = calloc(1, sizeof(*p))))
		return -ENOMEM;
	p->lanes = lanes;
	atomic_init(&p->next, 0);
	atomic_init(&p->gen, 0);
	atomic_init(&p->active, 0);
	atomic_init(&p->stop, false);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->start, NULL);
	pthread_cond_init(&p->idle, NULL);
	if (lanes > 1 && !(p->workers = calloc(lanes - 1, sizeof(*p->workers)))) {
		err = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i + 1 < lanes; i++) {
		struct worker *w = &p->workers[i];
		w->pool = p;
		w->lane = i + 1;
		if ((err = pthread_create(&w->thread, NULL, worker_main, w)) != 0) {
			err = -err;
			goto fail;
		}
		w->started = true;
		pthread_setname_np(w->thread, "sg-crypto");
	}
	*out = p;
	return 0;
fail:
	stop_workers(p);
	cpool_free(p);
	return err;
}

void cpool_free(struct cpool *p)
{
	if (!p)
		return;
	if (!p->stop)
		stop_workers(p);
	pthread_cond_destroy(&p->idle);
	pthread_cond_destroy(&p->start);
	pthread_mutex_destroy(&p->lock);
	free(p->workers);
	free(p);
}

unsigned cpool_lanes(const struct cpool *p)
{
	return p ? p->lanes : 1;
}

static void run_wg_op(void *ctx, size_t i, unsigned lane)
{
	wg_crypt_op_run(&((struct wg_crypt_op *)ctx)[i], lane);
}

void cpool_run(struct cpool *p, struct wg_crypt_op *ops, size_t n)
{
	cpool_run_fn(p, n, run_wg_op, ops);
}

void cpool_run_fn(struct cpool *p, size_t n, cpool_fn fn, void *ctx)
{
	if (p->lanes == 1 || n < PARALLEL_MIN) {
		for (size_t i = 0; i < n; i++)
			fn(ctx, i, 0);
		return;
	}
	pthread_mutex_lock(&p->lock);
	p->fn = fn;
	p->ctx = ctx;
	p->n = n;
	atomic_store_explicit(&p->next, 0, memory_order_relaxed);
	atomic_fetch_add_explicit(&p->gen, 1, memory_order_relaxed);
	if (p->sleepers)
		pthread_cond_broadcast(&p->start);
	pthread_mutex_unlock(&p->lock);

	work(p, fn, ctx, n, 0);

	/* Every op is claimed; wait for the workers still sealing theirs (a few ops each). One
	 * that comes only now finds nothing left to claim and leaves at once. */
	spin_until(p, workers_out, 0);
	pthread_mutex_lock(&p->lock);
	while (atomic_load_explicit(&p->active, memory_order_acquire)) {
		p->waiter = true;
		pthread_cond_wait(&p->idle, &p->lock);
	}
	p->waiter = false;
	p->fn = NULL;
	p->ctx = NULL;
	p->n = 0;
	pthread_mutex_unlock(&p->lock);
}

unsigned cpool_default_lanes(const char **why)
{
	const char *env = getenv("SG_CRYPTO_THREADS");
	cpu_set_t set;

	if (env && *env) {
		char *end;
		unsigned long v = strtoul(env, &end, 10);
		if (*end == '\0' && v >= 1 && v <= SG_AEAD_LANES) {
			*why = "SG_CRYPTO_THREADS";
			return (unsigned)v;
		}
	}
	*why = "cpus";
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return 1;
	/* Half the CPUs: a userspace tunnel's packets cost the kernel about as much CPU again
	 * (TUN and UDP copies, the inner and outer stacks), and lanes that compete with it for a
	 * core lose more in wake-ups than they gain (README, benchmarks: on 2 CPUs, 2 lanes
	 * carried 20-60% less TCP than 1). */
	int n = CPU_COUNT(&set) / 2;
	return n < 1 ? 1 : n > SG_AEAD_LANES ? SG_AEAD_LANES : (unsigned)n;
}
