/* libsecureguard: the SecureGuard engine (WireGuard, FIPS mode, TLS transport) for apps.
 *
 * The one public header. An app makes an engine from a configuration text, chooses where its
 * inner packets go, and connects:
 *
 *     struct sg_options o;
 *     sg_options_init(&o);
 *     o.packet_io = SG_IO_STACK;             // or SG_IO_TUN_FD / SG_IO_PACKETS
 *     sg_engine *e;
 *     char why[256];
 *     if (sg_init(&e, config_text, &o, why, sizeof(why)) != SG_EOK) ... why says what was wrong
 *     sg_connect(e);                          // the engine runs on its own thread
 *     int fd;
 *     sg_tcp_connect(e, (struct sockaddr *)&db, sizeof(db), 5000, &fd);  // a TCP connection
 *     ...read(fd) / write(fd) as with any socket...                        // inside the tunnel
 *     sg_disconnect(e);                       // from any thread
 *     sg_free(e);
 *
 * Configuration: the wg-quick / SecureGuard file format (docs/TLS.md, docs/PROTOCOL.md):
 * [Interface] PrivateKey, FipsPrivateKey, CryptoMode, FipsStrict, ListenPort, FwMark,
 * TlsListenPort, TlsCertificate, TlsPrivateKey, TlsCA, RequireClientCert, and for the userspace
 * stack Address (IPv4 and IPv6, several) and MTU; [Peer] PublicKey, FipsPublicKey,
 * PresharedKey, AllowedIPs, Endpoint, PersistentKeepalive, CryptoMode, Transport, TlsEndpoint,
 * TlsServerName. DNS is what sg_resolve asks (inside the tunnel). wg-quick's Table,
 * PreUp/PostUp/PreDown/PostDown and SaveConfig are accepted and ignored: an app sets up its own
 * routes.
 *
 * Errors: every call that can fail returns an sg_result (0 = SG_EOK, negative = error);
 * sg_strerror() names it. No call aborts the process on bad input.
 *
 * Threads: there is no global state; any number of engines may live in one process (the
 * userspace stack is lwIP, one per process by its design: each engine has its own interface in
 * it, its sockets are bound to it, and packets for another engine's addresses are dropped).
 * Every call says from which threads it may be made. Callbacks run on the engine's thread;
 * they must not block, and may call only the functions marked "also from a callback".
 *
 * ABI: opaque handles; structures passed in start with struct_size (set by sg_options_init),
 * so fields can be added at the end. SG_ABI_VERSION changes only when existing calls change;
 * the library's soname is libsecureguard.so.SG_ABI_VERSION.
 */
#ifndef SECUREGUARD_SG_H
#define SECUREGUARD_SG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <secureguard/sg_errors.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SG_ABI_VERSION 1

#if defined(__GNUC__)
#define SG_API __attribute__((visibility("default")))
#else
#define SG_API
#endif

/* The library's version, e.g. "0.1.0"; never NULL. Any thread. */
SG_API const char *sg_version(void);
/* The SG_ABI_VERSION the library was built with. Any thread. */
SG_API int sg_abi_version(void);

typedef struct sg_engine sg_engine;
typedef struct sg_listener sg_listener;
typedef struct sg_udp sg_udp;

/* Where the engine's inner packets go. */
enum sg_packet_io {
	/* A TUN fd the app opened and configured (Android's VpnService.establish(), Linux's
	 * /dev/net/tun with IFF_TUN | IFF_NO_PI). The engine uses a duplicate; the app keeps and
	 * closes its own. */
	SG_IO_TUN_FD = 1,
	/* Packets through callbacks (iOS's NEPacketTunnelFlow): decrypted packets come to
	 * options.packet_out, the app writes outbound ones with sg_packet_write. */
	SG_IO_PACKETS = 2,
	/* The userspace TCP/IP stack: no device, no privileges; the app opens TCP and UDP sockets
	 * inside the tunnel with sg_tcp_connect, sg_tcp_listen and sg_udp_open. */
	SG_IO_STACK = 3,
};

enum sg_loglevel {
	SG_LOG_LEVEL_ERROR = 0,
	SG_LOG_LEVEL_WARN = 1,
	SG_LOG_LEVEL_INFO = 2,
	SG_LOG_LEVEL_DEBUG = 3,
};

enum sg_event_type {
	SG_EVENT_HANDSHAKE_COMPLETE = 1, /* a session with the peer is up */
	SG_EVENT_HANDSHAKE_FAILED = 2,	 /* a handshake gave up or was refused (reason) */
	SG_EVENT_ENDPOINT_CHANGED = 3,	 /* the peer roamed */
	SG_EVENT_KEYS_ZEROED = 4,	 /* the session expired without traffic */
	SG_EVENT_MODE_FALLBACK = 5,	 /* an auto peer fell back from FIPS to classic */
	SG_EVENT_STOPPED = 6,		 /* the engine's thread ended (reason) */
};

struct sg_event {
	int type;		/* enum sg_event_type */
	const char *peer;	/* the peer's public key in base64, "" if none */
	const char *endpoint;	/* "203.0.113.1:51820", "" if none */
	const char *reason;	/* a short word ("timeout", "requested", ...), "" if none */
};

/* Callbacks; ctx is options.ctx. They run on the engine's thread. */
typedef void (*sg_log_fn)(void *ctx, int level, const char *line);
typedef void (*sg_event_fn)(void *ctx, const struct sg_event *ev);
/* SG_IO_PACKETS: one decrypted IP packet for the app (copy it: the buffer is reused). */
typedef void (*sg_packet_fn)(void *ctx, const void *packet, size_t len);
/* Android: VpnService.protect(fd) for every outer socket before it is used (UDP, TLS); return
 * non-zero when protected, 0 to refuse the socket. */
typedef int (*sg_protect_fn)(void *ctx, int fd);

struct sg_options {
	size_t struct_size; /* sizeof(struct sg_options), set by sg_options_init */
	int packet_io;	    /* enum sg_packet_io; SG_IO_STACK by default */
	int tun_fd;	    /* SG_IO_TUN_FD */
	unsigned mtu;	    /* inner MTU; 0: the config's MTU, else 1420 */
	void *ctx;
	sg_log_fn log;	/* NULL: no log lines */
	int log_level;	/* enum sg_loglevel; INFO by default */
	sg_event_fn event;
	sg_packet_fn packet_out; /* SG_IO_PACKETS */
	sg_protect_fn protect;
	unsigned crypto_threads; /* 0: half the CPUs (SG_CRYPTO_THREADS) */
};

/* Defaults into *o. Any thread. */
SG_API void sg_options_init(struct sg_options *o);

/* Makes an engine from a configuration text (see above) without starting it. On failure
 * *out is NULL and why (if not NULL) says what was wrong and where ("line 7: AllowedIPs: bad
 * prefix length 33"). Endpoint host names are resolved here. Any thread. */
SG_API sg_result sg_init(sg_engine **out, const char *config, const struct sg_options *opts,
			 char *why, size_t whylen);
/* Starts the engine's thread: handshakes begin as packets need them (or at once for peers
 * with PersistentKeepalive). SG_EEXIST if already connected. Any thread but a callback. */
SG_API sg_result sg_connect(sg_engine *e);
/* Stops the engine's thread. TCP connections made with sg_tcp_connect / sg_tcp_accept end
 * (their fds read end-of-file); listeners and UDP sockets stay and work again after the next
 * sg_connect. Waits for the thread unless called from a callback (then it returns at once
 * and the thread ends after the callback). Any thread, also from a callback. */
SG_API sg_result sg_disconnect(sg_engine *e);
/* Disconnects, frees everything and wipes every key. Any thread but a callback. NULL is a
 * no-op. */
SG_API void sg_free(sg_engine *e);

/* Applies a new configuration text to a live engine, touching only what changed (as
 * `wg syncconf`): peers that stay keep their sessions, removed peers go, new peers come.
 * A bad text changes nothing (why says what was wrong). Addresses of the userspace stack are
 * not changed live. Any thread but a callback. */
SG_API sg_result sg_set_config(sg_engine *e, const char *config, char *why, size_t whylen);

/* ---- statistics ---------------------------------------------------------------------------- */

struct sg_peer_stats {
	char public_key[48];	/* base64 */
	char endpoint[64];	/* "" if none */
	char crypto_mode[8];	/* of the current session: "classic", "fips" or "none" */
	char transport[8];	/* "udp" or "tls" */
	int64_t last_handshake_sec; /* wall clock (Unix time), 0: never */
	uint64_t rx_bytes, tx_bytes, rx_packets, tx_packets;
};

struct sg_stats {
	uint16_t listen_port;
	uint64_t inner_rx_packets, inner_tx_packets; /* to/from the TUN fd, callbacks or stack */
	uint64_t udp_rx, udp_tx;
	size_t n_peers;
	struct sg_peer_stats *peers;
};

/* A snapshot; free it with sg_stats_free. Any thread but a callback. */
SG_API sg_result sg_get_stats(sg_engine *e, struct sg_stats **out);
SG_API void sg_stats_free(struct sg_stats *s);

/* ---- SG_IO_PACKETS ------------------------------------------------------------------------- */

/* Queues one outbound IP packet. SG_EFULL when the engine's queue is full (back-pressure: try
 * again shortly), SG_ERANGE when larger than the MTU, SG_EDOWN when not connected. Any thread,
 * also from a callback. */
SG_API sg_result sg_packet_write(sg_engine *e, const void *packet, size_t len);

/* ---- SG_IO_STACK: sockets inside the tunnel ------------------------------------------------ */

/* A TCP connection to `to` (IPv4 or IPv6) through the tunnel, waiting up to timeout_ms (-1: the
 * stack's own timeouts). *fd is one end of a local stream socket: read and write it as the
 * connection (shutdown(SHUT_WR) sends FIN; close() ends the connection); it is the caller's to
 * close. Flow control carries through: a reader that stops reading closes the TCP window, a
 * peer that stops reading makes writes to fd block (or EAGAIN). SG_ENOROUTE when refused or
 * unreachable, SG_EAGAIN on timeout, SG_EDOWN when not connected. Any thread but a callback. */
SG_API sg_result sg_tcp_connect(sg_engine *e, const struct sockaddr *to, socklen_t tolen,
				int timeout_ms, int *fd);
/* Listens on `local` (address and port; an unspecified address takes both families' tunnel
 * addresses). Any thread but a callback. */
SG_API sg_result sg_tcp_listen(sg_engine *e, const struct sockaddr *local, socklen_t len,
			       sg_listener **out);
/* Readable (poll/epoll) while a connection waits to be accepted. */
SG_API int sg_listener_fd(const sg_listener *l);
/* One accepted connection as with sg_tcp_connect's fd; from (if not NULL) gets the peer's
 * address. SG_EAGAIN when none waits. Any thread but a callback. */
SG_API sg_result sg_tcp_accept(sg_listener *l, int *fd, struct sockaddr_storage *from);
/* Stops listening; connections already accepted go on. Any thread but a callback. */
SG_API void sg_listener_close(sg_listener *l);

/* Resolves a name inside the tunnel: the config's [Interface] DNS servers are asked through
 * the stack (nothing leaves outside the tunnel). An IP literal is returned as it is. family:
 * AF_INET, AF_INET6 or AF_UNSPEC; the port of *out is 0. SG_ENOENT: no such name (or no address
 * of the family); SG_EAGAIN: no answer within timeout_ms; SG_EINVAL: no DNS in the config.
 * why (if not NULL) says what happened. Any thread but a callback. */
SG_API sg_result sg_resolve(sg_engine *e, const char *name, int family, int timeout_ms,
			    struct sockaddr_storage *out, socklen_t *outlen, char *why,
			    size_t whylen);

/* A UDP socket on `local` (port 0: any). Any thread but a callback. */
SG_API sg_result sg_udp_open(sg_engine *e, const struct sockaddr *local, socklen_t len,
			     sg_udp **out);
/* Readable (poll/epoll) while datagrams wait. */
SG_API int sg_udp_fd(const sg_udp *u);
/* Sends one datagram (at most 65,507 bytes). SG_EFULL when the socket's send queue is full.
 * Any thread but a callback. */
SG_API sg_result sg_udp_sendto(sg_udp *u, const void *buf, size_t len, const struct sockaddr *to,
			       socklen_t tolen);
/* Receives one datagram into buf (cut to cap; *len is the datagram's full length). SG_EAGAIN
 * when none waits. A socket keeps at most 256 datagrams; more are dropped. Any thread but a
 * callback. */
SG_API sg_result sg_udp_recvfrom(sg_udp *u, void *buf, size_t cap, size_t *len,
				 struct sockaddr_storage *from);
SG_API void sg_udp_close(sg_udp *u);

/* ---- MFA-gated VPN sessions (docs/SERVER.md "MFA-gated VPN sessions") ----
 * On a management server's network with mfa_required, a client is a peer of its hubs only while
 * its owner holds a session: these open and end one. They talk HTTP(S) to the server (ca_file:
 * a PEM file of the CAs that verify it; NULL: the system's trust store) and block until it
 * answers (30 s at most); no engine is needed. Any thread but a callback. */
/* Longest session token with its NUL. */
#define SG_SESSION_TOKEN_MAX 128
/* Opens a session for client (its id or name among the clients the account owns) with the
 * owner's e-mail, password and a TOTP or recovery code; duration_seconds 0: the network's
 * mfa_session_hours (else at least 10, and at most that). On SG_EOK, token (token_len bytes,
 * SG_SESSION_TOKEN_MAX is enough) holds what ends the session, *expires_at (if not NULL) its
 * end in unix seconds. Refusals: SG_EAUTH (wrong password or code; a code is good once),
 * SG_EPERM (the account has no second factor), SG_ENOENT (no such client of the account),
 * SG_EEXIST (disabled, a hub, a network without mfa_required, or a name that is ambiguous),
 * SG_ELIMIT (too many attempts: retry later), SG_EINVAL, SG_EIO (no answer); why says the
 * server's reason. password and code are not kept. */
SG_API sg_result sg_session_open(const char *server_url, const char *ca_file, const char *client,
				 const char *email, const char *password, const char *code,
				 int duration_seconds, char *token, size_t token_len,
				 int64_t *expires_at, char *why, size_t whylen);
/* Opens the same session with a login through the server's OpenID provider instead of a
 * password (docs/SERVER.md "VPN sessions through the OpenID provider"): the app sent the user's
 * browser to the server's /oauth2/authorize as client "secureguard-cli" with a loopback
 * redirect_uri (RFC 8252: http://127.0.0.1:PORT/PATH, any port), PKCE S256, a state and a
 * nonce; the login page asked the account's second factor (TOTP or a passkey); the browser
 * came back to the app's listener with a code, whose state the app checked. This redeems
 * oidc_code with its code_verifier, that redirect_uri and nonce (NULL if none was sent).
 * Results as sg_session_open; SG_EAUTH also for a code that was used, expired, or does not
 * match its verifier, redirect URI or nonce; SG_EPERM: the account has no second factor. The
 * browser step (listener, URL, state) is the app's: `secureguard connect --oidc` is one
 * (src/cli/connect_oidc.c). code_verifier is not kept. */
SG_API sg_result sg_session_open_oidc(const char *server_url, const char *ca_file,
				      const char *client, const char *oidc_code,
				      const char *code_verifier, const char *redirect_uri,
				      const char *nonce, int duration_seconds, char *token,
				      size_t token_len, int64_t *expires_at, char *why,
				      size_t whylen);
/* Ends the session of token: the hubs remove the peer with its sessions and keys. SG_ENOENT
 * when it had ended already (expired or revoked). */
SG_API sg_result sg_session_end(const char *server_url, const char *ca_file, const char *token,
				char *why, size_t whylen);

#ifdef __cplusplus
}
#endif

#endif
