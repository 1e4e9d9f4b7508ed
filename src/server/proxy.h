/* The client address of a request behind a reverse proxy (`secureguard server --trusted-proxy`,
 * docs/SERVER.md "Behind a load balancer").
 *
 * When the TCP peer is inside a trusted range, the client is the right-most address of the
 * configured header (X-Forwarded-For, or RFC 7239 Forwarded: for=) that is not itself a trusted
 * proxy; from any other peer the header is ignored, so a client cannot choose its address by
 * sending one. Only one header is read: a proxy that sets X-Forwarded-For passes a Forwarded
 * header from the client through untouched (and the other way round), so reading both would
 * believe the client. Parsing is strict and bounded: at most SRV_PROXY_HOPS hops (the right-most
 * ones) are looked at, and a hop that is not an address (garbage, "unknown", an obfuscated
 * identifier) stops the walk at the last trusted address, which is then the client's. */
#ifndef SG_SERVER_PROXY_H
#define SG_SERVER_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SRV_PROXY_MAX  32 /* ranges in --trusted-proxy */
#define SRV_PROXY_HOPS 32 /* right-most hops of the header looked at */

struct srv_cidr {
	uint8_t addr[16]; /* IPv4 as IPv4-mapped IPv6 */
	uint8_t bits;	  /* prefix length over the 128 bits (IPv4 /n: 96 + n) */
};

struct srv_proxies {
	int n;
	struct srv_cidr net[SRV_PROXY_MAX];
	bool forwarded; /* read Forwarded: for= instead of X-Forwarded-For */
};

/* Adds "CIDR[,CIDR...]" (an address alone is /32 or /128) to t. 0, or -1 with what and where
 * in err (t then unchanged). */
int srv_proxies_parse(struct srv_proxies *t, const char *list, char *err, size_t el);

struct srv_kv; /* srv_int.h: a header line as received, name in lower case */

/* Writes the request's client address to out (normalised text: IPv4 dotted, IPv6 as
 * inet_ntop writes it): peer itself unless t has ranges and peer is inside one, then the
 * address the header gives (see above). Returns whether peer is a trusted proxy. */
bool srv_client_addr(const struct srv_proxies *t, const char *peer, const struct srv_kv *h, int nh,
		     char out[64]);

#endif
