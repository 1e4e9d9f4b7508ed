/* TLS-over-TCP transport with mutual TLS (issue 7), for networks that block UDP. docs/TLS.md
 * describes the wire format, limits, timeouts, FIPS restrictions and TCP-over-TCP.
 *
 * A listener accepts many clients on a TCP port; a client connects to one peer. After the TLS
 * handshake (TLS 1.3, 1.2 at least; OpenSSL 3) the server sends the 12-byte greeting
 * "SG-TLS/1" flags reserved idle-timeout, and then both directions carry length-prefixed frames
 * (tls_frame.h), one WireGuard/SecureGuard datagram each, so the protocol core above is the same
 * over UDP and over TLS. A zero-length frame is a keepalive.
 *
 * Everything is non-blocking and runs on the daemon's epoll loop (evloop.h), in its one thread.
 * Timers: every listener and every client connection owns one CLOCK_MONOTONIC timerfd on the same
 * loop, so the daemon calls nothing periodically. A listener's timer ticks every
 * clamp(shortest timeout / 4, 10 ms, 1 s) and checks its connections' deadlines (O(n), n is
 * bounded by max_conns); a client's timer is armed for its next deadline.
 *
 * Memory per connection is bounded: a receive buffer of TLS_RXBUF_SIZE and a send buffer of
 * SG_TLS_TXBUF_SIZE bytes, allocated once. When the send buffer cannot take a datagram (the TCP
 * send buffer is full and ours behind it too), the datagram is dropped and counted, as a full UDP
 * socket would drop it: the tunnel above retransmits what matters, and queueing without bound
 * would only add latency (TCP-over-TCP meltdown, docs/TLS.md).
 *
 * Lifetime: a connection is reported with on_state(up) once it can carry frames, and with
 * on_state(down, reason) exactly once when it ends -- for a client connection also when it never
 * came up. The connection is freed right after that callback returns. sg_tls_conn_close ends a
 * connection without calling on_state. Callbacks may send on any connection and may close any
 * connection, including their own; listeners and contexts are freed outside callbacks.
 *
 * Every refusal is logged as one line, event tls_refused (server side) or tls_connect_failed
 * (client side), naming the peer and the reason, e.g.
 *   event=tls_refused peer=10.0.0.2:41234 reason="certificate verify failed: unable to get local
 *   issuer certificate"
 * Refusal lines are rate limited (bursts of 20, then 5 per second; `suppressed=N` counts what
 * was left out) so a flood cannot fill the log.
 */
#ifndef SG_NET_TLS_H
#define SG_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/compiler.h"
#include "net/evloop.h"
#include "net/tls_cert.h"
#include "net/tls_frame.h"
#include "net/tls_token.h"
#include "wg/wg.h"

/* Send buffer per connection: two largest frames. */
#define SG_TLS_TXBUF_SIZE (2u * (TLS_FRAME_HDR_LEN + TLS_FRAME_MAX))

/* Defaults for the zero values of sg_tls_config's limits. */
#define SG_TLS_DEFAULT_HANDSHAKE_MS 10000u
#define SG_TLS_DEFAULT_IDLE_MS	    180000u /* WireGuard keeps a live tunnel busier than this */
#define SG_TLS_DEFAULT_MAX_CONNS    1024u
#define SG_TLS_DEFAULT_PER_SOURCE   16u
#define SG_TLS_DEFAULT_RATE	    10u /* new connections per second per source */
#define SG_TLS_DEFAULT_BURST	    20u

enum sg_tls_role {
	SG_TLS_SERVER = 0,
	SG_TLS_CLIENT = 1,
};

struct sg_tls_config {
	/* PEM files. cert (chain, leaf first) and key: required for a server, optional for a
	 * client (then needed when the server requires client certificates). ca: the CA(s) a
	 * peer certificate must chain to. */
	const char *cert_file;
	const char *key_file;
	const char *ca_file;
	/* Optional, with ca_file: PEM certificate revocation lists (RFC 5280 section 5), one per CA
	 * that issues certificates in a peer's chain. With it every certificate of the chain is
	 * checked (X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL): a revoked one, or one whose
	 * issuer has no CRL in the file, or a CRL past its nextUpdate, is refused. */
	const char *crl_file;
	/* Optional: the peer certificate's SubjectPublicKeyInfo must hash to this (SG_TLS_PIN_LEN
	 * bytes; sg_tls_pin_from_cert_file computes it). With a CA file both must hold; without
	 * one the pin alone authenticates the peer (a self-signed certificate is fine; its dates
	 * and names are not checked: the key is the identity). A server checks it on client
	 * certificates, so only with require_client_cert. */
	const uint8_t *pin_sha256;
	/* Server: ask for a client certificate and refuse clients without a valid one. */
	bool require_client_cert;
	/* Server: require a session token in the client's hello (tls_token.h), signed by the P-384
	 * key in session_key_file (PEM); with require_client_cert both must hold, without it the
	 * token alone authenticates the client. */
	bool require_session_token;
	const char *session_key_file;
	/* FIPS-approved suites and groups only (docs/TLS.md): TLS_AES_256_GCM_SHA384,
	 * TLS_AES_128_GCM_SHA256, ECDHE-{ECDSA,RSA}-AES-GCM in TLS 1.2, P-384/P-256; with an active
	 * FIPS provider every algorithm is fetched with "fips=yes". */
	bool fips;
	/* Client: the name or IP literal the server certificate must carry (and SNI for a name);
	 * NULL checks no name. sg_tls_client_new may override it per connection. */
	const char *server_name;
	/* Limits; 0 means the SG_TLS_DEFAULT_* value. */
	uint32_t handshake_timeout_ms; /* accept/connect to greeting */
	uint32_t idle_timeout_ms;      /* nothing received for this long: close */
	uint32_t keepalive_ms;	       /* nothing sent for this long: send a keepalive
					* (default idle/3; a client uses at most the server's
					* announced idle/3) */
	uint32_t max_conns;	       /* listener: connections in total, handshaking or up */
	uint32_t max_conns_per_source; /* listener: per IPv4 address or IPv6 /64 */
	uint32_t rate_per_source;      /* listener: new connections per second per source */
	uint32_t burst_per_source;     /* listener: ... and the burst allowed */
};

struct sg_tls_ctx;
struct sg_tls_listener;
struct sg_tls_conn;

struct sg_tls_callbacks {
	void *user;
	/* One datagram received (len 1..65535; keepalives are not reported). msg points into the
	 * connection's receive buffer; the callee may change it in place (the daemon decrypts
	 * there). Without on_rx_done it is valid until on_message returns; with it, until the
	 * next on_rx_done returns, so a receiver can collect the datagrams of one read(2) and
	 * process them as a batch. */
	void (*on_message)(void *user, struct sg_tls_conn *conn, uint8_t *msg, size_t len);
	/* Optional: the datagrams given to on_message since the last call are about to be
	 * overwritten: finish with them. Called at least once per socket read event that gave any
	 * (after up to TLS_RXBUF_SIZE - TLS_RECORD_MAX bytes of them, about four TLS records), also
	 * when the connection ends meanwhile (on_state(down) may have come first). */
	void (*on_rx_done)(void *user, struct sg_tls_conn *conn);
	/* up: frames may flow. down: the connection ended (reason says why) and is freed when
	 * this returns. */
	void (*on_state)(void *user, struct sg_tls_conn *conn, bool up, const char *reason);
	/* Optional: a client connection's socket before it connects (an app's "protect this
	 * socket", engine.h); false fails the connection. */
	bool (*protect)(void *user, int fd);
};

struct sg_tls_conn_stats {
	uint64_t rx_msgs, tx_msgs;	       /* datagrams */
	uint64_t rx_bytes, tx_bytes;	       /* datagram bytes */
	uint64_t rx_keepalives, tx_keepalives; /* zero-length frames */
	uint64_t tx_dropped;		       /* datagrams dropped: send buffer full */
	uint64_t tx_records;		       /* SSL_write calls that wrote: TLS records */
	uint64_t rx_records;		       /* SSL_read calls that returned data */
};

struct sg_tls_listener_stats {
	uint64_t accepted;	    /* TCP connections accepted for a handshake */
	uint64_t up;		    /* connections that completed handshake and greeting */
	uint64_t refused_rate;	    /* per-source rate limit */
	uint64_t refused_source;    /* per-source connection cap (or source table full) */
	uint64_t refused_total;	    /* total connection cap */
	uint64_t refused_handshake; /* TLS failures, plain TCP data, handshake timeouts, tokens */
	uint64_t token_expired;	    /* closed when their session token expired */
	uint64_t idle_closed;	    /* closed after idle_timeout_ms without data */
	uint32_t conns;		    /* current connections */
};

/* Builds the TLS context for one role from cfg (files are read now; cfg is not kept). On
 * failure *out is NULL and err holds one line naming the file or setting. 0 or SG_EINVAL,
 * SG_ECRYPTO, SG_ENOMEM. */
int sg_tls_ctx_new(struct sg_tls_ctx **out, const struct sg_tls_config *cfg, enum sg_tls_role role,
		   char *err, size_t errlen) SG_WUR;
/* Frees the context; every listener and connection made with it must be gone. */
void sg_tls_ctx_free(struct sg_tls_ctx *ctx);
/* Reads ca_file and crl_file (NULL: no revocation check) again into ctx: handshakes from now on
 * use them. Every CRL must be signed by a CA of ca_file. On any error the lists in use stay and
 * err says what was wrong (which file, which CRL). 0 or SG_EINVAL / SG_ENOMEM. */
int sg_tls_ctx_reload(struct sg_tls_ctx *ctx, const char *ca_file, const char *crl_file,
		      char *err, size_t errlen) SG_WUR;
/* After sg_tls_ctx_reload: ends, with reason "certificate revoked" (on_state(down) as usual),
 * the listener's connections whose peer chain a CRL now revokes; returns how many. */
unsigned sg_tls_listener_recheck(struct sg_tls_listener *l);
/* The same for one client connection (its server's chain): true if it was ended. */
bool sg_tls_conn_recheck(struct sg_tls_conn *c);

/* Listens on addr (IPv4, or IPv6 dual-stack for ::; port 0 picks one) with a server context.
 * 0 or a negative errno / SG_E* code (err says which step). */
int sg_tls_listener_new(struct sg_tls_listener **out, struct evloop *loop, struct sg_tls_ctx *ctx,
			const union wg_sockaddr *addr, const struct sg_tls_callbacks *cbs,
			char *err, size_t errlen) SG_WUR;
/* The bound port (host order). */
uint16_t sg_tls_listener_port(const struct sg_tls_listener *l);
void sg_tls_listener_stats(const struct sg_tls_listener *l, struct sg_tls_listener_stats *st);
/* Closes the listener and all its connections (without callbacks). Not from a callback. */
void sg_tls_listener_free(struct sg_tls_listener *l);

/* Starts connecting to addr with a client context; server_name overrides the context's (NULL:
 * keep it). The outcome comes through on_state. 0 or a negative errno / SG_E* code. */
int sg_tls_client_new(struct sg_tls_conn **out, struct evloop *loop, struct sg_tls_ctx *ctx,
		      const union wg_sockaddr *addr, const char *server_name,
		      const struct sg_tls_callbacks *cbs, char *err, size_t errlen) SG_WUR;

/* Queues one datagram (len <= 65535; 0 sends a keepalive) and writes what the socket takes.
 * 0; SG_EFULL when the send buffer cannot take it (dropped and counted); SG_EAGAIN when the
 * connection is not up; SG_ERANGE when too long; SG_EIO when writing ended the connection
 * (on_state(down) has then been called and, outside a callback of this connection, it is freed). */
int sg_tls_conn_send(struct sg_tls_conn *conn, const uint8_t *msg, size_t len) SG_WUR;
/* Queues one datagram as sg_tls_conn_send does, but writes only whole TLS records
 * (TLS_RECORD_MAX bytes of frames); sg_tls_conn_flush writes the rest. A sender with a batch
 * (the daemon: what one loop turn produced) queues each datagram and flushes once at its end,
 * so the datagrams of a batch share records and write(2)s instead of one each, and a lone
 * datagram (a ping) waits for nothing but the end of its batch. Returns as sg_tls_conn_send. */
int sg_tls_conn_queue(struct sg_tls_conn *conn, const uint8_t *msg, size_t len) SG_WUR;
/* Writes what is queued, unless the socket is known full (then EPOLLOUT writes it). 0, or SG_EIO
 * when writing ended the connection (as sg_tls_conn_send). */
int sg_tls_conn_flush(struct sg_tls_conn *conn);
/* The remote address (IPv4-mapped addresses shown as AF_INET). */
const union wg_sockaddr *sg_tls_conn_peer(const struct sg_tls_conn *conn);
/* "192.0.2.1:443" / "[2001:db8::1]:443", for logs. */
const char *sg_tls_conn_peer_str(const struct sg_tls_conn *conn);
bool sg_tls_conn_is_up(const struct sg_tls_conn *conn);
/* Flags of the server's greeting (client side; 0 before it came). */
uint8_t sg_tls_conn_greeting_flags(const struct sg_tls_conn *conn);
/* Client context: the session token to send when a server asks for one (TLS_GREETING_TOKEN),
 * copied; len 0 forgets it. Connections made from now on use it. 0 or SG_ERANGE / SG_ENOMEM. */
int sg_tls_ctx_set_session_token(struct sg_tls_ctx *ctx, const uint8_t *tok, size_t len) SG_WUR;
/* Server side: the claims of the session token the connection was admitted with; NULL when it
 * needed none. */
const struct tls_token_claims *sg_tls_conn_token(const struct sg_tls_conn *conn);
void sg_tls_conn_stats(const struct sg_tls_conn *conn, struct sg_tls_conn_stats *st);
/* Per-connection pointer for the caller (e.g. its peer). */
void sg_tls_conn_set_user(struct sg_tls_conn *conn, void *user);
void *sg_tls_conn_get_user(const struct sg_tls_conn *conn);
/* Closes and frees the connection (deferred to the end of its own callback when called from
 * one); on_state is not called. */
void sg_tls_conn_close(struct sg_tls_conn *conn);

#endif
