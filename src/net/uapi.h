/* The WireGuard cross-platform userspace API (https://www.wireguard.com/xplatform/), spoken on
 * /var/run/wireguard/IFNAME.sock exactly as wireguard-go does, so `wg`, `wg-quick` and our own
 * tools drive secureguardd unchanged.
 *
 * This module is the protocol engine only: it is fed the bytes a client sent and produces the
 * bytes to answer; it never touches a socket (the daemon moves the bytes), so it is unit-tested
 * and fuzzed directly. It acts on a wg_device and on the outer socket through `struct uapi_host`.
 *
 * Semantics, as wireguard-go's device/uapi.go (facts checked against it):
 *  - A connection carries any number of operations: "get=1\n\n" or "set=1\n" followed by
 *    key=value lines and a blank line. Each answer ends with "errno=N\n\n" (N = 0 or -errno).
 *    Any other operation line closes the connection without an answer.
 *  - set is applied LINE BY LINE, as it is read. A line that fails stops the operation: the lines
 *    before it stay applied (there is no rollback, exactly as in wireguard-go), the error is
 *    answered, and the rest of the request is ignored until the client closes. The failing errno
 *    is -EPROTO for a line without '=', -EINVAL for a bad key or value, -EADDRINUSE when the
 *    port cannot be bound or the fwmark set, -EIO for a line of 64 KiB or more (Go's
 *    bufio.Scanner limit), and -EMSGSIZE for a set request over UAPI_REQUEST_MAX bytes (our own
 *    bound; wireguard-go has none).
 *  - Keys before the first public_key are device keys (private_key, listen_port, fwmark,
 *    replace_peers); after it, peer keys (update_only, remove, preshared_key, endpoint,
 *    persistent_keepalive_interval, replace_allowed_ips, allowed_ip [with a leading '-' to remove
 *    one], protocol_version). A public_key equal to our own selects a throw-away peer: its lines
 *    are checked but change nothing.
 *  - SecureGuard adds device keys fips_private_key, crypto_mode, fips_strict and peer keys
 *    fips_public_key, crypto_mode; get adds those that are set plus, where FIPS is configured,
 *    crypto_session, remote_capabilities and crypto_fallback (docs/PROTOCOL.md, "UAPI").
 *  - get answers private_key (if set), listen_port (if not 0), fwmark (if not 0), then per peer
 *    public_key, preshared_key, protocol_version=1, endpoint (if known),
 *    last_handshake_time_sec/_nsec, tx_bytes, rx_bytes, persistent_keepalive_interval,
 *    allowed_ip lines. Keys are lowercase hex. Peers come in insertion order (wireguard-go: map
 *    order, i.e. unspecified).
 * Known differences, all at the edges: lines longer than UAPI_LINE_MAX (4 KiB; only absurd
 * leading zeros make a valid one that long) are rejected as an invalid value; a failed
 * listen_port change keeps the old socket bound (wireguard-go is left without one); the all-zero
 * public key is not a throw-away peer before a private key was ever set (an accident of
 * wireguard-go's zero-initialised identity); operations pipelined after a set on one connection
 * are answered (wireguard-go's bufio.Scanner may swallow them).
 */
#ifndef SG_NET_UAPI_H
#define SG_NET_UAPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"
#include "wg/wg.h"

/* Longest key=value line we parse. */
#define UAPI_LINE_MAX 4096
/* Go's bufio.MaxScanTokenSize: a line this long (without its newline) fails with -EIO. */
#define UAPI_SCAN_MAX 65536
/* Longest set request (bytes after "set=1\n"): `wg setconf` of a million peers with a key, an
 * endpoint and an allowed IP each sends about 200 MiB in one request (WG_MAX_PEERS peers with a
 * preshared key and a few allowed IPs fit); larger requests fail with -EMSGSIZE. Lines are
 * applied as they stream in, so this bounds time spent on one request, not memory. */
#define UAPI_REQUEST_MAX (1u << 30)

/* What the engine needs from the daemon besides the device. */
struct uapi_host {
	void *ctx;
	/* Binds the outer socket to `port` (0 = any free port). 0 or a negative errno. */
	int (*set_listen_port)(void *ctx, uint16_t port);
	/* The port the outer socket is bound to, 0 if none. */
	uint16_t (*listen_port)(void *ctx);
	/* Sets SO_MARK on the outer socket (0 = none). 0 or a negative errno. */
	int (*set_fwmark)(void *ctx, uint32_t mark);
	uint32_t (*fwmark)(void *ctx);
	/* Monotonic time in ns, as passed to the core. */
	uint64_t (*now)(void *ctx);
	/* Optional: interface index for an IPv6 zone name (0 if unknown). NULL: numeric zones
	 * only. */
	uint32_t (*zone_index)(void *ctx, const char *zone);
	/* Optional: name for a scope id, written into name (IF_NAMESIZE); false to print it as a
	 * number. */
	bool (*zone_name)(void *ctx, uint32_t index, char *name);
	/* Optional: the interface's FipsStrict flag, owned by the host (NULL: fips_strict is
	 * refused as unsupported). */
	bool *fips_strict;
	/* Optional: the TLS transport's keys (docs/TLS.md, "Configuration"): device keys starting
	 * with "tls_" (peer == NULL) and the peer keys "transport", "tls_endpoint",
	 * "tls_server_name". value is NUL-terminated. Returns 0, or a negative errno with a
	 * reason in why. NULL: those keys are invalid. */
	int (*transport_set)(void *ctx, struct wg_peer *peer, const char *key, const char *value,
			     char *why, size_t whylen);
	/* Optional: emits the transport's keys for `get` (peer == NULL: the device's). */
	void (*transport_get)(void *ctx, struct wg_peer *peer,
			      void (*emit)(void *ectx, const char *key, const char *value),
			      void *ectx);
	/* Optional: a set request ended without error; applies what needs the whole request (a
	 * TLS listener wants its port, certificate and key together). 0, or a negative errno with
	 * a reason in why, answered as the request's errno. */
	int (*set_done)(void *ctx, char *why, size_t whylen);
	/* Optional: a smaller bound than UAPI_REQUEST_MAX on a set request (0: that one), so
	 * tests reach it without a gigabyte of input. */
	size_t request_max;
};

struct uapi_conn;

/* A new protocol state for one control connection. `host` is copied; `dev` must outlive it.
 * NULL on allocation failure. */
struct uapi_conn *uapi_conn_new(struct wg_device *dev, const struct uapi_host *host);
/* Frees the connection state, wiping buffered lines and answers (they hold keys). */
void uapi_conn_free(struct uapi_conn *c);

/* Feeds bytes the client sent. Returns how many were consumed: the engine stops right after an
 * operation has been answered, so the caller writes that answer before feeding the rest (this
 * bounds the memory a client that never reads can make us use). */
size_t uapi_conn_input(struct uapi_conn *c, const uint8_t *in, size_t len) SG_WUR;
/* The client closed its sending side: a set in progress is finished and answered, as
 * wireguard-go does at end of input; the connection then wants to close. */
void uapi_conn_eof(struct uapi_conn *c);

/* Bytes waiting to be sent to the client (NULL/0 when none). */
const uint8_t *uapi_conn_output(const struct uapi_conn *c, size_t *len);
/* The first n output bytes were sent; they are wiped. A get is written in pieces of about
 * UAPI_GET_CHUNK bytes (a few peers at a time): once a piece is all sent, this writes the next,
 * so a million peers stream through a buffer of that size instead of one of 300 MiB. Callers
 * loop on uapi_conn_output until it is empty. */
void uapi_conn_output_consumed(struct uapi_conn *c, size_t n);
#define UAPI_GET_CHUNK (64u << 10)

/* True once the connection should be closed after its output is sent. */
bool uapi_conn_want_close(const struct uapi_conn *c);
/* True while a set operation is in progress, or a get is still being written: like
 * wireguard-go's IPC mutex (held by a get until it is written too), other connections must wait
 * until it ends, so a get never sees half a configuration and the peer it will write next is
 * never removed under it. */
bool uapi_conn_busy(const struct uapi_conn *c);

/* The last error of this connection: errno value (negative) and a message naming the line and
 * what is wrong ("line 3: listen_port: invalid value"); 0 and "" if none. Never contains a
 * value from the request, so it may be logged. */
int uapi_conn_last_errno(const struct uapi_conn *c);
const char *uapi_conn_last_error(const struct uapi_conn *c);

#endif
