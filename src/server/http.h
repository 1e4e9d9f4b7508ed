/* Starting the HTTP listener of the management server (http.c). */
#ifndef SG_SERVER_HTTP_H
#define SG_SERVER_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct srv;
struct MHD_Daemon;

struct srv_http_opts {
	const struct sockaddr *addr;
	const char *tls_cert, *tls_key; /* PEM text; NULL = plain HTTP */
	int max_connections;
	int timeout;	     /* seconds a connection may stay idle */
	int request_timeout; /* seconds to receive a whole request (headers and body) */
	int max_per_ip;	     /* concurrent connections from one address */
};

/* Starts libmicrohttpd (a thread per connection); NULL with err set on failure. */
struct MHD_Daemon *srv_http_start(struct srv *s, const struct srv_http_opts *o, char *err,
				  size_t errlen);
/* Closes connections whose request is not complete request_timeout seconds after the
 * connection opened or its previous response finished. Call about once a second; returns how
 * many it closed. */
int srv_http_reap(void);
/* The bound port (after listening on port 0). */
uint16_t srv_http_port(struct MHD_Daemon *d);

#endif
