/* A small epoll reactor on the monotonic clock (as Redis' ae.c, and for the same lesson: timers
 * use CLOCK_MONOTONIC, never wall time). One thread; sources are level-triggered.
 *
 * Ownership: a source is memory owned by the caller and registered by pointer. evloop_del may be
 * called from inside a callback, also for another source of the same batch; the deleted source
 * is not called again, but its memory must stay valid until evloop_run_once returns, so free it
 * afterwards.
 */
#ifndef SG_NET_EVLOOP_H
#define SG_NET_EVLOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "common/compiler.h"

typedef void (*evloop_fn)(void *ctx, uint32_t events);

struct evloop_source {
	evloop_fn fn;
	void *ctx;
	int fd;
	bool active;
};

struct evloop;

/* 0 or a negative errno. */
int evloop_new(struct evloop **out) SG_WUR;
void evloop_free(struct evloop *l);

/* Registers fd for events (EPOLLIN, EPOLLOUT, ...). 0 or a negative errno. */
int evloop_add(struct evloop *l, struct evloop_source *src, int fd, uint32_t events, evloop_fn fn,
	       void *ctx) SG_WUR;
int evloop_mod(struct evloop *l, struct evloop_source *src, uint32_t events) SG_WUR;
/* Unregisters (no-op for an inactive source). Does not close the fd. */
void evloop_del(struct evloop *l, struct evloop_source *src);

/* Waits up to timeout_ms (-1 = forever) and dispatches what is ready. Returns the number of
 * events, 0 on timeout or EINTR, or a negative errno. */
int evloop_run_once(struct evloop *l, int timeout_ms);

/* CLOCK_MONOTONIC in nanoseconds: the `now` of the protocol core. */
uint64_t evloop_now_ns(void);
/* CLOCK_REALTIME in nanoseconds since the epoch. */
uint64_t evloop_realtime_ns(void);

/* A CLOCK_MONOTONIC timerfd (non-blocking, close-on-exec), or a negative errno. */
int evloop_timer_new(void) SG_WUR;
/* Arms the timer for the absolute monotonic time `deadline_ns` (UINT64_MAX disarms; a time in
 * the past fires at once). 0 or a negative errno. */
int evloop_timer_arm(int tfd, uint64_t deadline_ns) SG_WUR;
/* Reads the expiration count so a level-triggered timer stops being readable. */
void evloop_timer_ack(int tfd);

#endif
