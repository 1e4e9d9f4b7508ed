/* The push channel's client; longpoll.h says what and why. */
#include "net/longpoll.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "crypto/crypto.h"

/* After this many failures in a row, plain polls until the next answer. */
#define PLAIN_AFTER 3
/* A long request may take the server's wait plus this long before it counts as lost. */
#define GRACE_MS 15000L

struct sg_longpoll {
	struct evloop *loop;
	struct sg_httpc *h;
	struct sg_httpc_req *req; /* outstanding, or NULL */
	char *url, *ca_file, *since;
	int wait_s, poll_s;
	size_t max_body;
	sg_longpoll_headers_fn headers;
	sg_longpoll_cb cb;
	void *ctx;
	int tfd;
	struct evloop_source tsrc;
	int failures;
	int last_wait;	     /* the wait the outstanding (or last) request asked for */
	uint64_t started_ns; /* when it was sent */
	bool paused, armed;
};

unsigned sg_longpoll_backoff_ms(int n, int max_s, unsigned jitter_seed)
{
	uint64_t ms = 1000, cap = (uint64_t)(max_s > 0 ? max_s : 60) * 1000;
	int64_t jitter;

	for (int i = 1; i < n && ms < cap; i++)
		ms *= 2;
	if (ms > cap)
		ms = cap;
	/* +-25%, so that agents that lost the server together do not come back together. */
	jitter = (int64_t)(jitter_seed % (unsigned)(ms / 2 + 1)) - (int64_t)(ms / 4);
	ms = (uint64_t)((int64_t)ms + jitter);
	return (unsigned)(ms > cap ? cap : ms);
}

static void issue(struct sg_longpoll *lp);

static void arm(struct sg_longpoll *lp, unsigned ms)
{
	lp->armed = evloop_timer_arm(lp->tfd, evloop_now_ns() + (uint64_t)ms * 1000000ull) == 0;
	if (!lp->armed)
		issue(lp); /* a timer that cannot be armed must not stall the channel */
}

static void on_timer(void *ctx, uint32_t events)
{
	struct sg_longpoll *lp = ctx;

	(void)events;
	evloop_timer_ack(lp->tfd);
	lp->armed = false;
	if (!lp->paused && !lp->req)
		issue(lp);
}

static void on_answer(void *ctx, const struct sg_httpc_resp *r)
{
	struct sg_longpoll *lp = ctx;
	enum sg_longpoll_next next;
	uint64_t took_ms = (evloop_now_ns() - lp->started_ns) / 1000000ull;

	lp->req = NULL;
	if (!r->error && r->status == 204) {
		lp->failures = 0;
		/* Waiting again at once, unless the server did not wait at all (then not faster
		 * than once a second: a server that never holds requests must not spin us). */
		if (lp->wait_s <= 0)
			arm(lp, (unsigned)lp->poll_s * 1000);
		else if (took_ms < 1000 && lp->last_wait > 0)
			arm(lp, 1000);
		else
			issue(lp);
		return;
	}
	next = lp->cb(lp->ctx, r);
	if (next == SG_LONGPOLL_PAUSE) {
		lp->paused = true;
		return;
	}
	if (next == SG_LONGPOLL_NEXT) {
		lp->failures = 0;
		if (lp->wait_s <= 0)
			arm(lp, (unsigned)lp->poll_s * 1000);
		else
			issue(lp);
		return;
	}
	lp->failures++;
	arm(lp, sg_longpoll_backoff_ms(lp->failures, lp->poll_s, sg_random_u32()));
}

static void issue(struct sg_longpoll *lp)
{
	struct sg_httpc_opts o = {.max_body = lp->max_body, .ca_file = lp->ca_file};
	int wait = lp->failures >= PLAIN_AFTER ? 0 : lp->wait_s;
	size_t n = strlen(lp->url) + (lp->since ? strlen(lp->since) * 3 : 0) + 48;
	char *url = malloc(n);
	const char *sep = strchr(lp->url, '?') ? "&" : "?";

	if (!url) {
		arm(lp, 1000);
		return;
	}
	if (lp->since && *lp->since) {
		/* A revision is hex from the server; anything else is sent escaped. */
		size_t k = (size_t)snprintf(url, n, "%s%ssince=", lp->url, sep);

		for (const unsigned char *p = (const unsigned char *)lp->since; *p && k + 4 < n; p++)
			k += (size_t)snprintf(url + k, n - k,
					      (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
						      (*p >= 'A' && *p <= 'Z')
						  ? "%c"
						  : "%%%02X",
					      *p);
		snprintf(url + k, n - k, "&wait=%d", wait);
	} else {
		snprintf(url, n, "%s", lp->url);
	}
	o.timeout_ms = (long)wait * 1000 + GRACE_MS;
	lp->last_wait = lp->since && *lp->since ? wait : 0;
	lp->started_ns = evloop_now_ns();
	lp->req = sg_httpc_request(lp->h, "GET", url, lp->headers ? lp->headers(lp->ctx) : NULL,
				   NULL, 0, &o, on_answer, lp);
	free(url);
	if (!lp->req) {
		lp->failures++;
		arm(lp, sg_longpoll_backoff_ms(lp->failures, lp->poll_s, sg_random_u32()));
	}
}

int sg_longpoll_new(struct sg_longpoll **out, struct evloop *loop, struct sg_httpc *h,
		    const struct sg_longpoll_opts *o, sg_longpoll_headers_fn headers,
		    sg_longpoll_cb cb, void *ctx)
{
	struct sg_longpoll *lp = calloc(1, sizeof(*lp));
	int rc;

	*out = NULL;
	if (!lp)
		return -12; /* -ENOMEM */
	lp->loop = loop;
	lp->h = h;
	lp->url = strdup(o->url);
	lp->ca_file = o->ca_file ? strdup(o->ca_file) : NULL;
	lp->wait_s = o->wait_s;
	lp->poll_s = o->poll_s > 0 ? o->poll_s : 60;
	lp->max_body = o->max_body ? o->max_body : 4u << 20;
	lp->headers = headers;
	lp->cb = cb;
	lp->ctx = ctx;
	lp->paused = true;
	lp->tfd = evloop_timer_new();
	if (!lp->url || (o->ca_file && !lp->ca_file) || lp->tfd < 0) {
		rc = lp->tfd < 0 ? lp->tfd : -12;
		goto fail;
	}
	rc = evloop_add(loop, &lp->tsrc, lp->tfd, EPOLLIN, on_timer, lp);
	if (rc)
		goto fail;
	*out = lp;
	return 0;
fail:
	if (lp->tfd >= 0)
		close(lp->tfd);
	free(lp->url);
	free(lp->ca_file);
	free(lp);
	return rc;
}

void sg_longpoll_free(struct sg_longpoll *lp)
{
	if (!lp)
		return;
	if (lp->req)
		sg_httpc_cancel(lp->req);
	evloop_del(lp->loop, &lp->tsrc);
	close(lp->tfd);
	free(lp->url);
	free(lp->ca_file);
	free(lp->since);
	free(lp);
}

void sg_longpoll_set_since(struct sg_longpoll *lp, const char *since)
{
	free(lp->since);
	lp->since = since ? strdup(since) : NULL;
}

void sg_longpoll_kick(struct sg_longpoll *lp)
{
	lp->paused = false;
	if (lp->req)
		return;
	if (lp->armed && !evloop_timer_arm(lp->tfd, UINT64_MAX))
		lp->armed = false;
	issue(lp);
}

int sg_longpoll_failures(const struct sg_longpoll *lp)
{
	return lp->failures;
}
