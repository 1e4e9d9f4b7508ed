/* The one HTTP client (ARCHITECTURE.md, "One of each"): libcurl's multi interface driven by the
 * project's event loop, for the processes that talk to the management server or to an identity
 * provider (the gateway now; the agent and `expose` later). Requests never block the loop: curl's
 * sockets and its timer are sources of the evloop, and a finished request calls back on it.
 *
 * Bounded: a response body larger than max_body fails the request; every request has a total
 * timeout. HTTPS verifies the server's certificate against the system store or ca_file. */
#ifndef SG_NET_HTTPC_H
#define SG_NET_HTTPC_H

#include <stdbool.h>
#include <stddef.h>

#include "common/compiler.h"
#include "net/evloop.h"

struct sg_httpc;
struct sg_httpc_req;

struct sg_httpc_resp {
	long status;	   /* HTTP status, 0 when no response came */
	const char *body;  /* NUL-terminated copy of the body (valid during the callback) */
	size_t len;
	const char *error; /* NULL on a response; else why there was none, or it was refused */
};

typedef void (*sg_httpc_cb)(void *ctx, const struct sg_httpc_resp *r);

struct sg_httpc_opts {
	long timeout_ms;     /* 0: 10 s */
	size_t max_body;     /* 0: 1 MiB */
	const char *ca_file; /* NULL: the system's trust store */
};

int sg_httpc_new(struct sg_httpc **out, struct evloop *loop) SG_WUR;
/* Cancels what is pending (no callbacks) and frees. Not from inside a callback. */
void sg_httpc_free(struct sg_httpc *h);

/* Starts a request; headers is a NULL-terminated list of "Name: value" (may be NULL), body
 * NULL for none. cb runs exactly once, from the loop, unless the request is cancelled. NULL
 * when it could not even start (no memory, bad URL). */
struct sg_httpc_req *sg_httpc_request(struct sg_httpc *h, const char *method, const char *url,
				      const char *const *headers, const void *body, size_t len,
				      const struct sg_httpc_opts *o, sg_httpc_cb cb, void *ctx);
void sg_httpc_cancel(struct sg_httpc_req *r);
/* The ctx given to sg_httpc_request (for a caller that frees it on cancel). */
void *sg_httpc_ctx(const struct sg_httpc_req *r);

#endif
