/* The push channel's client (ARCHITECTURE.md, "One of each": one push-channel client on top of
 * the one HTTP client): a long poll of a resource that carries a revision, for the processes
 * that wait on the management server for changes (the agent now; the gateway and `expose`
 * later).
 *
 * One request is outstanding at a time: GET URL?since=REVISION&wait=SECONDS. The server answers
 * at once when the resource differs from `since`, else holds the request until it changes (200)
 * or the wait ends (204). A 200 goes to the callback, which gives the next `since`; a 204 starts
 * the next request at once. A failure (no answer, 5xx, 429, or a status the callback refuses)
 * is retried with exponential backoff (1, 2, 4 ... seconds, at most the poll interval, with
 * jitter); after three failures in a row it falls back to plain polls (wait=0) every poll
 * interval, and goes back to waiting with the first answer. So a change reaches the caller as
 * soon as the server has it, and the poll interval bounds the delay when pushes cannot get
 * through (a proxy that cuts long requests). Everything runs on the caller's event loop.
 */
#ifndef SG_NET_LONGPOLL_H
#define SG_NET_LONGPOLL_H

#include <stdbool.h>
#include <stddef.h>

#include "common/compiler.h"
#include "net/evloop.h"
#include "net/httpc.h"

struct sg_longpoll;

/* What the caller makes of an answer. */
enum sg_longpoll_next {
	SG_LONGPOLL_NEXT,    /* fine: poll again (now) */
	SG_LONGPOLL_RETRY,   /* a failure: poll again after the backoff */
	SG_LONGPOLL_PAUSE,   /* stop until sg_longpoll_kick (e.g. while logging in again) */
};

/* r->status 200 or a failure (any other status, or r->error); 204s are not passed on.
 * Returns what to do next. */
typedef enum sg_longpoll_next (*sg_longpoll_cb)(void *ctx, const struct sg_httpc_resp *r);
/* The headers of the next request (NULL-terminated "Name: value" list), e.g. a fresh
 * Authorization; may return NULL. Called before every request. */
typedef const char *const *(*sg_longpoll_headers_fn)(void *ctx);

struct sg_longpoll_opts {
	const char *url;	  /* the resource (copied); since and wait are appended */
	int wait_s;		  /* how long the server may hold a request; 0: plain polls */
	int poll_s;		  /* plain-poll interval and the largest backoff (default 60) */
	size_t max_body;	  /* 0: 4 MiB */
	const char *ca_file;	  /* HTTPS trust (copied); NULL: the system's */
};

int sg_longpoll_new(struct sg_longpoll **out, struct evloop *loop, struct sg_httpc *h,
		    const struct sg_longpoll_opts *o, sg_longpoll_headers_fn headers,
		    sg_longpoll_cb cb, void *ctx) SG_WUR;
/* Cancels the outstanding request (no callback) and frees. Not from inside the callback. */
void sg_longpoll_free(struct sg_longpoll *lp);
/* The revision the caller has (copied; NULL: none, the first answer is the whole resource). */
void sg_longpoll_set_since(struct sg_longpoll *lp, const char *since);
/* Polls now: starts, resumes after a pause, or cuts a backoff short. A request in flight is
 * left to finish. */
void sg_longpoll_kick(struct sg_longpoll *lp);
/* Consecutive failures so far (0 after an answer). */
int sg_longpoll_failures(const struct sg_longpoll *lp);

/* The delay before retry number n (1-based) after failures: 2^(n-1) seconds with up to 25%
 * jitter either way, at most max_s. Exposed for tests. */
unsigned sg_longpoll_backoff_ms(int n, int max_s, unsigned jitter_seed);

#endif
