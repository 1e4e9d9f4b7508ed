/* The management server's HTTP/1.1 front (httpd.c): connections, request framing, a pool of
 * handler threads, and responses. docs/SERVER.md ("Connections and limits") is the user's view.
 *
 * Why our own and not libmicrohttpd: libmicrohttpd 0.9.75 (Debian 12) answers framing errors
 * (bad Content-Length, malformed chunks, oversized headers, HTTP/2.0 request lines) with
 * hard-coded HTML that no option replaces, while this API promises one JSON error shape for every
 * answer; and in its thread-per-connection mode every idle or slow connection holds a thread,
 * which is how a few hundred idle sockets denied service. Request heads and chunked bodies are
 * parsed by src/net/http1.c and TLS terminated by src/net/tls_term.c: the gateway's strict,
 * fuzzed parser and its termination, one of each for every HTTP listener of the product.
 *
 * Model: one I/O thread runs an epoll loop (src/net/evloop.c) that accepts, does TLS handshakes,
 * reads and frames requests, and enforces deadlines and connection budgets; a complete request
 * goes to one of `workers` handler threads, which runs the route and writes the response on the
 * socket itself (handlers block on the database), then gives the connection back to the loop.
 * A connection costs no thread while it is idle or slow, so idle and slow connections are cheap,
 * and when every slot is taken the oldest idle connection, then the oldest unfinished request, is
 * closed to make room (see srv_httpd_opts). */
#ifndef SG_SERVER_HTTPD_H
#define SG_SERVER_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "common/compiler.h"

struct srv;
struct srv_req;
struct srv_resp;

struct srv_httpd_opts {
	const struct sockaddr *addr;
	const char *tls_cert_file, *tls_key_file; /* PEM files; NULL = plain HTTP */
	/* Connection slots; 0 = what the machine carries: the open-file limit (raised to its
	 * hard limit) less a reserve, and a quarter of the available memory at a pessimistic
	 * cost per connection, at most 65536. */
	int max_connections;
	/* Slots one address (IPv4, or IPv6 /64) may hold; 0 = max_connections / 16, at least 8. */
	int max_per_ip;
	int idle_timeout;    /* s: a kept-alive connection with no request started */
	int header_timeout;  /* s: first byte of a request (or TLS hello) to its last header */
	int request_timeout; /* s: first byte of a request to its last body byte */
	int workers;	     /* handler threads; 0 = 16 */
	/* Memory for request bodies of all connections together, beyond the first 16 KiB of
	 * each; 0 = an eighth of the free memory, 64 MiB to 1 GiB. */
	size_t body_memory;
};

struct srv_httpd;

/* Listens and starts the threads. 0, or a negative code with err set. */
int srv_httpd_start(struct srv_httpd **out, struct srv *s, const struct srv_httpd_opts *o,
		    char *err, size_t errlen) SG_WUR;
/* Runs every parked request (srv_park) again, from the I/O thread: something they wait for may
 * have changed. Any thread. */
void srv_httpd_wake(struct srv_httpd *h);
/* The bound port. */
uint16_t srv_httpd_port(const struct srv_httpd *h);
/* The slots in effect (after defaults). */
void srv_httpd_limits(const struct srv_httpd *h, int *max_connections, int *max_per_ip);
/* Stops accepting, closes idle connections, lets requests in flight finish (at most
 * `grace` seconds), then stops every thread and frees. */
void srv_httpd_stop(struct srv_httpd *h, int grace);
/* Prometheus lines about connections (current by state, refused, reclaimed, timed out). */
void srv_httpd_metrics(const struct srv_httpd *h, FILE *f);

/* ---- provided by http.c ---- */
/* The most body bytes the route named by method and target accepts (known from the head). */
size_t srv_http_body_limit(struct srv *s, const char *method, const char *target);
/* Runs a request whose head and body are complete: validation, the route, metrics. out is
 * filled (never left empty). */
void srv_http_handle(struct srv *s, struct srv_req *r, struct srv_resp *out);

#endif
