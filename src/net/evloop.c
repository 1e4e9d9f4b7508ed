/* epoll reactor; see evloop.h. */
#include "net/evloop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define EVLOOP_BATCH 64

struct evloop {
	int epfd;
	/* The batch being dispatched, so evloop_del can neutralise entries not yet handled. */
	struct epoll_event batch[EVLOOP_BATCH];
	int batch_len, batch_pos;
};

int evloop_new(struct evloop **out)
{
	*out = NULL;
	struct evloop *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		int err = -errno;
		free(l);
		return err;
	}
	*out = l;
	return 0;
}

void evloop_free(struct evloop *l)
{
	if (!l)
		return;
	close(l->epfd);
	free(l);
}

int evloop_add(struct evloop *l, struct evloop_source *src, int fd, uint32_t events, evloop_fn fn,
	       void *ctx)
{
	struct epoll_event ev = {.events = events, .data.ptr = src};
	src->fn = fn;
	src->ctx = ctx;
	src->fd = fd;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
		return -errno;
	src->active = true;
	return 0;
}

int evloop_mod(struct evloop *l, struct evloop_source *src, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = src};
	if (!src->active)
		return -EINVAL;
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, src->fd, &ev) == 0 ? 0 : -errno;
}

void evloop_del(struct evloop *l, struct evloop_source *src)
{
	if (!src->active)
		return;
	(void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, src->fd, NULL);
	src->active = false;
	for (int i = l->batch_pos; i < l->batch_len; i++)
		if (l->batch[i].data.ptr == src)
			l->batch[i].data.ptr = NULL;
}

int evloop_run_once(struct evloop *l, int timeout_ms)
{
	int n = epoll_wait(l->epfd, l->batch, EVLOOP_BATCH, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	l->batch_len = n;
	for (l->batch_pos = 0; l->batch_pos < n;) {
		struct epoll_event ev = l->batch[l->batch_pos++];
		struct evloop_source *src = ev.data.ptr;
		if (src && src->active)
			src->fn(src->ctx, ev.events);
	}
	l->batch_len = l->batch_pos = 0;
	return n;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t evloop_now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

uint64_t evloop_realtime_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

int evloop_timer_new(void)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int evloop_timer_arm(int tfd, uint64_t deadline_ns)
{
	struct itimerspec its;
	memset(&its, 0, sizeof(its));
	if (deadline_ns != UINT64_MAX) {
		/* it_value 0 would disarm: a deadline at time 0 is simply "now". */
		if (deadline_ns == 0)
			deadline_ns = 1;
		its.it_value.tv_sec = (time_t)(deadline_ns / 1000000000ull);
		its.it_value.tv_nsec = (long)(deadline_ns % 1000000000ull);
	}
	return timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0 ? 0 : -errno;
}

void evloop_timer_ack(int tfd)
{
	uint64_t expirations;
	while (read(tfd, &expirations, sizeof(expirations)) < 0 && errno == EINTR)
		;
}
