/* SecureGuard WireGuard protocol core: the public interface of src/wg, sans-I/O.
 *
 * The core implements the whole protocol of the WireGuard whitepaper (Noise_IKpsk2 handshake,
 * cookies, keypairs, replay window, timers, allowed IPs). It never opens a socket, reads a clock
 * or sleeps: the caller passes the monotonic time `now` (nanoseconds, any fixed origin) into every
 * call, and the core reaches the outside only through the upcall table below (as OpenBSD's
 * if_wg/wg_noise split does). Randomness comes from the crypto module (sg_random_bytes).
 *
 * Threading: a wg_device and its peers are not thread-safe; the caller serialises all calls on one
 * device (the daemon runs one event loop). The one exception is wg_crypt_op_run, the AEAD step
 * of the split data path below, which other threads may run. Upcalls run synchronously inside the call that caused
 * them; an upcall must not call back into the device except the read-only getters.
 */
#ifndef SG_WG_WG_H
#define SG_WG_WG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/compiler.h"

#define WG_KEY_LEN 32
/* FIPS mode keys: a P-384 private scalar and a SEC1 compressed public point. */
#define WG_FIPS_PRIV_LEN 48
#define WG_FIPS_PUB_LEN	 49

/* Crypto mode policy (docs/PROTOCOL.md), per device and per peer:
 *   auto    FIPS when both sides have FIPS keys, else classic; falls back to classic after a
 *           reject or a FIPS handshake timeout (the default)
 *   fips    FIPS only, whatever a packet says
 *   classic WireGuard only
 * A peer's WG_CRYPTO_INHERIT takes the device's. */
enum wg_crypto_mode {
	WG_CRYPTO_INHERIT = 0,
	WG_CRYPTO_AUTO,
	WG_CRYPTO_FIPS,
	WG_CRYPTO_CLASSIC,
};
/* "auto", "fips", "classic", "inherit". */
const char *wg_crypto_mode_name(enum wg_crypto_mode m);
/* Parses the three names (and "inherit" when allow_inherit); -1 if unknown. */
int wg_crypto_mode_parse(const char *s, bool allow_inherit);
/* Transport overhead: 16-byte header + 16-byte tag; payload padded to 16 bytes. */
#define WG_DATA_OVERHEAD   32
#define WG_DATA_HEADER_LEN 16
/* Largest inner IP packet the core accepts from the caller (bigger than any sane MTU). */
#define WG_MAX_INNER 65535
/* Largest datagram the core emits: inner packet padded to 16 + overhead. */
#define WG_MAX_DATAGRAM (WG_MAX_INNER + 16 + WG_DATA_OVERHEAD)

/* An outer UDP endpoint, IPv4 or IPv6 (sa_family tells which; AF_UNSPEC = none). */
union wg_sockaddr {
	struct sockaddr sa;
	struct sockaddr_in in4;
	struct sockaddr_in6 in6;
};
/* With has_src, also the local address the peer's last datagram arrived on (src4 for an AF_INET
 * endpoint, src6 for AF_INET6) and the interface it came in on: replies leave from that address
 * ("sticky sockets", as the kernel's socket.c and wireguard-go do), so a multi-homed host answers
 * from the address the peer talks to and NAT or a stateful firewall on the way passes them.
 * Without it (an endpoint set by configuration) the kernel picks the source by routing. */
struct wg_endpoint {
	union wg_sockaddr addr;
	/* Non-zero: the datagram travels over the caller's TLS connection with this id (the TLS
	 * transport, docs/TLS.md) rather than UDP; addr is then the connection's remote address. */
	uint32_t tls_conn;
	union {
		struct in_addr src4;
		struct in6_addr src6;
	};
	uint32_t src_ifindex;
	bool has_src;
};
/* True if both endpoints have the same family, remote address and port, and the same transport
 * (UDP, or the same TLS connection). The local source is not compared: it is not part of the
 * peer's identity for roaming. */
bool wg_endpoint_eq(const struct wg_endpoint *a, const struct wg_endpoint *b);
/* True if both have the same sticky source (or neither has one): has_src, the source address of
 * the endpoint's family and src_ifindex. */
bool wg_endpoint_same_source(const struct wg_endpoint *a, const struct wg_endpoint *b);

struct wg_device;
struct wg_peer;

enum wg_event_type {
	WG_EVENT_HANDSHAKE_INITIATED, /* we sent an initiation (reason: "first" or "retry") */
	WG_EVENT_HANDSHAKE_COMPLETE,  /* a new session is confirmed or started with the peer */
	WG_EVENT_HANDSHAKE_FAILED,    /* a handshake message was rejected (reason says why) */
	WG_EVENT_HANDSHAKE_GAVE_UP,   /* REKEY_ATTEMPT_TIME passed without an answer */
	WG_EVENT_ENDPOINT_CHANGED,    /* authenticated packet from a new outer address (roaming) */
	WG_EVENT_REKEY,               /* a rekey was started (reason: "time" or "messages") */
	WG_EVENT_KEYS_ZEROED,         /* all session keys wiped after 3 x REJECT_AFTER_TIME */
	WG_EVENT_COOKIE_SENT,         /* under load: answered a handshake with a cookie reply */
	WG_EVENT_COOKIE_RECEIVED,     /* a cookie reply was accepted from the peer */
	WG_EVENT_PACKET_DROPPED,      /* debug level: a datagram was dropped (reason says why) */
	WG_EVENT_SOURCE_CHANGED,      /* the peer's endpoint, or the local address or interface its
				       * packets arrive on, changed: the caller may check that the
				       * sticky source still suits routing (wg_peer_set_source_usable) */
	WG_EVENT_MODE_REFUSED,  /* we refused a handshake for its crypto mode (peer may be NULL) */
	WG_EVENT_MODE_REJECTED, /* the peer refused our handshake's mode (reason says why) */
	WG_EVENT_MODE_FALLBACK, /* an auto peer fell back from FIPS to classic ("reject"/"timeout") */
	WG_EVENT_MODE_UNUSABLE, /* no mode allowed by policy has keys on both sides */
};

struct wg_event {
	enum wg_event_type type;
	struct wg_peer *peer;               /* NULL when no peer is known (e.g. garbage) */
	const char *reason;                 /* static string or NULL */
	const struct wg_endpoint *endpoint; /* source/destination involved, or NULL */
};

/* Upcalls from the core to its caller. */
struct wg_io {
	void *ctx;
	/* Send one datagram to `to` (the peer's current endpoint). `ttl` is the outer packet's TTL
	 * (IPv4) or hop limit (IPv6): 0 leaves the system's default; non-zero only for a datagram
	 * that carries a nested WireGuard datagram (the routing-loop bound, wg_device_send). */
	void (*send)(void *ctx, struct wg_peer *peer, const struct wg_endpoint *to,
		     const uint8_t *buf, size_t len, uint8_t ttl);
	/* Deliver one decrypted, source-checked inner IP packet to the TUN device. */
	void (*deliver)(void *ctx, struct wg_peer *peer, const uint8_t *pkt, size_t len);
	/* Wall clock, nanoseconds since the Unix epoch: only for TAI64N timestamps and
	 * last_handshake_time. */
	uint64_t (*realtime_ns)(void *ctx);
	/* Structured events for logs; may be NULL. */
	void (*event)(void *ctx, const struct wg_event *ev);
	/* Optional: the peer is about to be freed (removed by the caller or replaced); the caller
	 * drops what it keeps about it. */
	void (*peer_removed)(void *ctx, struct wg_peer *peer);
};

/* Counters for hostile or useless input, per device. */
struct wg_device_stats {
	uint64_t rx_datagrams;      /* every datagram passed to wg_device_receive */
	uint64_t rx_invalid;        /* unknown type, wrong length for its type */
	uint64_t rx_bad_mac;        /* mac1 (or mac2 when required) did not verify */
	uint64_t rx_handshake_fail; /* authenticated MACs but Noise failed (unknown peer, replayed
				       timestamp, decryption) */
	uint64_t rx_rate_limited;   /* initiations over the per-peer limit */
	uint64_t rx_cookie_sent;    /* handshakes answered with a cookie reply */
	uint64_t rx_unknown_index;  /* data/response for no receiver index we know */
	uint64_t rx_decrypt_fail;   /* data that failed authentication */
	uint64_t rx_replayed;       /* data whose counter was replayed or too old */
	uint64_t rx_bad_source;     /* inner source address not in the peer's allowed IPs */
	uint64_t rx_bad_inner;      /* decrypted payload is not a valid IPv4/IPv6 packet */
	uint64_t tx_no_route;       /* TUN packets with no peer for their destination */
	uint64_t tx_no_endpoint;    /* TUN packets to a peer that has no endpoint yet */
	uint64_t tx_loop;	    /* nested WireGuard datagrams whose TTL ran out: a routing loop */
	uint64_t rx_down;	    /* datagrams that arrived while the interface was down */
};

struct wg_peer_stats {
	uint64_t rx_bytes, tx_bytes;      /* outer datagram bytes, as wireguard-go counts */
	uint64_t rx_packets, tx_packets;  /* ... and those datagrams */
	uint64_t last_handshake_real_ns;  /* wall clock of the last completed handshake, 0 = never */
	uint16_t persistent_keepalive;    /* seconds, 0 = off */
	bool has_endpoint;
	struct wg_endpoint endpoint;
	int mode;	      /* of the current session: SG_SUITE_CLASSIC, SG_SUITE_FIPS, -1 = none */
	uint16_t remote_caps; /* capabilities the peer sent in FIPS handshakes, 0 = unknown */
	bool fallback;	      /* an auto peer that fell back to classic for now */
	bool src_rejected;    /* the endpoint's sticky source is not used (routing disagrees) */
};

/* ---- device ------------------------------------------------------------------------------ */

/* New device with no key and no peers. `io` is copied. NULL on allocation failure. */
struct wg_device *wg_device_new(const struct wg_io *io);
/* Frees the device and all its peers, wiping every key. NULL is a no-op. */
void wg_device_free(struct wg_device *dev);

/* Sets the static private key (NULL or all-zero removes it). Peers whose public key equals the
 * new public key are removed, as in wireguard-go; all sessions are reset.
 * Returns 0 or a negative SG_E* code. */
int wg_device_set_private_key(struct wg_device *dev, const uint8_t key[WG_KEY_LEN]) SG_WUR;
/* Copies the private/public key; false if none is set. */
bool wg_device_get_private_key(const struct wg_device *dev, uint8_t key[WG_KEY_LEN]);
bool wg_device_get_public_key(const struct wg_device *dev, uint8_t key[WG_KEY_LEN]);

/* The FIPS static key (P-384 scalar; NULL or all-zero removes it). Peers whose FIPS public key
 * equals ours are removed; all sessions are reset. 0, SG_EINVAL (scalar out of range),
 * SG_ECRYPTO. */
int wg_device_set_fips_private_key(struct wg_device *dev,
				   const uint8_t key[WG_FIPS_PRIV_LEN]) SG_WUR;
bool wg_device_get_fips_private_key(const struct wg_device *dev, uint8_t key[WG_FIPS_PRIV_LEN]);
bool wg_device_get_fips_public_key(const struct wg_device *dev, uint8_t key[WG_FIPS_PUB_LEN]);
/* The device's policy (WG_CRYPTO_INHERIT is refused with SG_EINVAL). Sessions whose mode the
 * new policy no longer allows are reset. */
int wg_device_set_crypto_mode(struct wg_device *dev, enum wg_crypto_mode mode) SG_WUR;
enum wg_crypto_mode wg_device_get_crypto_mode(const struct wg_device *dev);

/* Process one datagram received on the outer socket from `from`. Never fails: bad input is
 * dropped and counted. `buf` may be modified (decryption happens in place). */
void wg_device_receive(struct wg_device *dev, uint64_t now, const struct wg_endpoint *from,
		       uint8_t *buf, size_t len);
/* Process one IP packet read from the TUN device: route it to a peer by destination address,
 * encrypt and send it, or queue it and start a handshake (also while the device has no private
 * key yet: what waits goes out once one is set). Returns 0, or SG_ENOROUTE (no peer's allowed IPs
 * cover the destination, or that peer has no endpoint: the kernel answers both with ICMP
 * destination unreachable), SG_EINVAL (not IP), SG_ELOOP or SG_EDOWN; the packet is consumed
 * (copied) either way.
 *
 * Routing loops: a packet that is itself a WireGuard datagram (UDP carrying a message of type 1-5
 * in either mode), or any IP fragment (a big datagram's later fragments show no UDP header), is
 * sent with an outer TTL / hop limit WG_NESTED_TTL_STEP below its own, capped at
 * WG_NESTED_TTL_MAX; one whose own TTL is WG_NESTED_TTL_STEP or less is dropped (SG_ELOOP,
 * counted in tx_loop). A loop through secureguardd interfaces therefore encapsulates a packet at
 * most WG_NESTED_TTL_MAX / WG_NESTED_TTL_STEP + 1 = 9 times (the first time with the system's
 * default TTL, then 56, 48, ... 8). Legitimate nesting keeps room: each level costs 60-80 bytes
 * of MTU, so nobody nests 9 deep, and a 3-level onion still leaves with a TTL of 40 or more. */
#define WG_NESTED_TTL_MAX  64
#define WG_NESTED_TTL_STEP 8
int wg_device_send(struct wg_device *dev, uint64_t now, const uint8_t *pkt, size_t len);
/* Fire every timer that is due at `now`. */
void wg_device_tick(struct wg_device *dev, uint64_t now);
/* Earliest monotonic time at which wg_device_tick has work, or UINT64_MAX if none. */
uint64_t wg_device_next_deadline(const struct wg_device *dev);

/* Load detection for cookies: the core counts handshake messages itself (more than
 * WG_UNDER_LOAD_RATE per second puts the device under load for one second). The caller may also
 * force it (e.g. when its receive queue of handshake packets is long), and tests use this. */
#define WG_UNDER_LOAD_RATE 1000
void wg_device_force_under_load(struct wg_device *dev, bool on);

void wg_device_get_stats(const struct wg_device *dev, struct wg_device_stats *out);

/* The TUN MTU: transport payloads are padded to a multiple of 16 but never beyond it
 * (default 1420; 0 = always pad to 16). */
void wg_device_set_mtu(struct wg_device *dev, uint16_t mtu);

/* Route MTUs (whitepaper 5.4.6 pads "to the MTU"; the kernel module pads to the MTU of the route
 * the packet took, dst_mtu): routes through the interface that carry their own MTU, smaller than
 * the interface's. A packet to a destination one of them covers is padded to at most the
 * smallest such MTU (never more than the kernel would: a route with a longer prefix and no MTU
 * is not known here). The table replaces the previous one; at most WG_ROUTE_MTU_MAX entries
 * (SG_ERANGE beyond: the caller then passes one default route per family with the smallest MTU).
 * Host bits of addr are ignored. 0, SG_EINVAL or SG_ERANGE. */
#define WG_ROUTE_MTU_MAX 64
struct wg_route_mtu {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	uint8_t cidr;
	uint16_t mtu;
};
int wg_device_set_route_mtus(struct wg_device *dev, const struct wg_route_mtu *routes,
			     size_t n) SG_WUR;

/* Interface state, as the kernel module follows its net_device's (default: up). Going down
 * drops every session, handshake and waiting packet and stops every timer (the kernel's
 * wg_stop); while down nothing is sent and received datagrams are dropped (rx_down). Coming up
 * sends what waits and a keepalive to every peer with persistent keepalive, at once (wg_open).
 * Not while split-path ops are in flight. */
void wg_device_set_up(struct wg_device *dev, bool up, uint64_t now);
bool wg_device_is_up(const struct wg_device *dev);
/* Sends what waits for a session on every peer (starting their handshakes). Call it after
 * setting a private key (classic or FIPS): packets and persistent keepalives that came before
 * the key then leave, as the kernel module sends its staged packets when it gets its first key.
 * Nothing while the device is down or split-path ops are in flight. */
void wg_device_send_staged(struct wg_device *dev, uint64_t now);

/* ---- the data path in three steps, for parallel crypto ---------------------------------------
 *
 * wg_device_send and wg_device_receive do all the work of one packet on the calling thread. A
 * caller that spreads the AEAD work of a batch over several threads (as the kernel module and
 * wireguard-go do) uses three steps per packet instead:
 *   1. wg_device_send_prepare / wg_device_receive_prepare, on the device's thread: routing,
 *      keypair, counter and header; everything but the AEAD. Returns 1 with `op` filled in.
 *   2. wg_crypt_op_run, on any thread: the AEAD alone, in place. Several threads may run ops at
 *      once, each with its own lane (0 .. SG_AEAD_LANES-1, crypto.h), even ops of one keypair.
 *   3. wg_device_send_complete / wg_device_receive_complete, on the device's thread, in the
 *      order of step 1 (so each peer's packets keep their order): replay window, roaming,
 *      timers, then the send or deliver upcall.
 * Between an op's prepare and its complete the only calls allowed on the device are other
 * prepares and completes (peers therefore live on; a keypair that a handshake or a policy change
 * retires meanwhile is kept until its last op completes, and that op is dropped). Every prepared
 * op must be completed exactly once. Removing a peer, changing the device's key or freeing the
 * device with ops in flight is a caller bug (asserted). */
struct wg_keypair;
struct wg_crypt_op {
	/* Step 2's input and output. */
	struct sg_aead *aead;
	uint8_t *data; /* the AEAD's buffer, in place */
	size_t len;    /* send: padded plaintext length; receive: ciphertext + tag length */
	uint8_t nonce[12];
	bool encrypt;
	bool ok; /* set by wg_crypt_op_run */
	/* The core's own. */
	struct wg_peer *peer;
	struct wg_keypair *kp;
	uint8_t *msg;	  /* the whole datagram */
	size_t msg_len;	  /* its length */
	size_t inner_len; /* send: the packet's length before padding (0 = keepalive) */
	uint64_t counter;
	uint8_t ttl;		 /* send: the outer TTL for the send upcall (0 = default) */
	struct wg_endpoint from; /* receive: where it came from */
};

/* Like wg_device_send, but when the packet can go out now it is written to `out` (header and
 * padded plaintext, out_size bytes available) and 1 is returned with `op` ready for step 2. A
 * packet already at out + WG_DATA_HEADER_LEN is not copied (a caller can build it there). 0:
 * the packet was handled without an op (staged for a handshake, or sent at once because `out`
 * is too small); negative: as wg_device_send. */
int wg_device_send_prepare(struct wg_device *dev, uint64_t now, const uint8_t *pkt, size_t len,
			   uint8_t *out, size_t out_size, struct wg_crypt_op *op) SG_WUR;
/* Sends the sealed datagram (the send upcall) unless sealing failed; updates the timers. */
void wg_device_send_complete(struct wg_device *dev, uint64_t now, struct wg_crypt_op *op);
/* Like wg_device_receive for every message; a transport data message is not opened but
 * returned as an op (1), decrypted in place in `buf`, which must stay valid until the complete.
 * 0: the datagram was handled (a handshake message) or dropped. */
int wg_device_receive_prepare(struct wg_device *dev, uint64_t now, const struct wg_endpoint *from,
			      uint8_t *buf, size_t len, struct wg_crypt_op *op) SG_WUR;
void wg_device_receive_complete(struct wg_device *dev, uint64_t now, struct wg_crypt_op *op);
/* For a caller that queues handshake messages to process them later (secureguardd does, so
 * their public-key work never runs between data packets): true if this datagram is a handshake
 * initiation or response of its mode's exact length whose MACs call for the Noise work: mac1
 * valid, and mac2 too when the device is under load. Everything else is cheap (garbage, a bad
 * mac1, or under load a message that only earns a cookie reply): pass it to wg_device_receive at
 * once. Counts nothing; the message is counted when it is processed. */
bool wg_device_handshake_costly(struct wg_device *dev, uint64_t now,
				const struct wg_endpoint *from, const uint8_t *buf, size_t len);
/* Step 2: seals or opens op->data in place with the op's key on `lane`; sets and returns op->ok. */
bool wg_crypt_op_run(struct wg_crypt_op *op, unsigned lane);

/* ---- peers ------------------------------------------------------------------------------- */

/* The most peers a device takes: the kernel module's MAX_PEERS_PER_DEVICE (2^20). */
#define WG_MAX_PEERS (1u << 20)

/* Adds a peer. Errors: SG_EEXIST (already a peer), SG_EINVAL (our own public key), SG_EFULL
 * (WG_MAX_PEERS peers already), SG_ENOMEM. An idle peer costs its configuration only: what a
 * handshake needs is made when it first handshakes. */
int wg_device_add_peer(struct wg_device *dev, const uint8_t pubkey[WG_KEY_LEN],
		       struct wg_peer **out) SG_WUR;
/* The peer with this key, added if there is none (*created says which); errors as
 * wg_device_add_peer but never SG_EEXIST. */
int wg_device_get_or_add_peer(struct wg_device *dev, const uint8_t pubkey[WG_KEY_LEN],
			      struct wg_peer **out, bool *created) SG_WUR;
struct wg_peer *wg_device_find_peer(const struct wg_device *dev, const uint8_t pubkey[WG_KEY_LEN]);
/* Removes and frees a peer (wiping its keys and its allowed IPs). */
void wg_device_remove_peer(struct wg_device *dev, struct wg_peer *peer);
void wg_device_remove_all_peers(struct wg_device *dev);
/* Iteration in insertion order: for (p = wg_device_first_peer(d); p; p = wg_peer_next(p)). */
struct wg_peer *wg_device_first_peer(const struct wg_device *dev);
struct wg_peer *wg_peer_next(const struct wg_peer *peer);
size_t wg_device_peer_count(const struct wg_device *dev);

const uint8_t *wg_peer_public_key(const struct wg_peer *peer);
/* The stable 32-byte identifier of a FIPS-only peer (sg_fips_peer_id in crypto.h). It stands
 * where the public key does in the UAPI and in `wg show`. */
void wg_fips_peer_id(uint8_t id[WG_KEY_LEN], const uint8_t fips_pub[WG_FIPS_PUB_LEN]);
/* Sets (NULL removes) the peer's FIPS public key. If the peer's public key is the FIPS peer id of
 * this key, the peer is FIPS-only. SG_EEXIST (another peer has it), SG_EINVAL (not a point on
 * P-384, or our own key), SG_ECRYPTO. */
int wg_peer_set_fips_public_key(struct wg_peer *peer, const uint8_t pub[WG_FIPS_PUB_LEN]) SG_WUR;
bool wg_peer_get_fips_public_key(const struct wg_peer *peer, uint8_t pub[WG_FIPS_PUB_LEN]);
struct wg_peer *wg_device_find_peer_fips(const struct wg_device *dev,
					 const uint8_t pub[WG_FIPS_PUB_LEN]);
/* True when the peer has no classic key (its public key is its FIPS peer id). */
bool wg_peer_is_fips_only(const struct wg_peer *peer);
void wg_peer_set_crypto_mode(struct wg_peer *peer, enum wg_crypto_mode mode);
enum wg_crypto_mode wg_peer_get_crypto_mode(const struct wg_peer *peer);
/* Sets the preshared key (NULL or all-zero = none). */
void wg_peer_set_preshared_key(struct wg_peer *peer, const uint8_t psk[WG_KEY_LEN]);
/* Copies the PSK (all zeros when none). */
void wg_peer_get_preshared_key(const struct wg_peer *peer, uint8_t psk[WG_KEY_LEN]);
void wg_peer_set_endpoint(struct wg_peer *peer, const struct wg_endpoint *ep);
/* Sticky sources (struct wg_endpoint): the caller's verdict on the source the peer's endpoint
 * had when it asked routing (`checked`, as wg_peer_get_stats gave it). Not usable: datagrams to
 * the peer leave without it, and routing picks the source, until the endpoint or its source
 * changes again (WG_EVENT_SOURCE_CHANGED); usable: it is used again. As the kernel module drops
 * a sticky source when the route to the peer leaves through another interface than the one its
 * packets arrive on. Ignored (false) if the endpoint changed since `checked`. */
bool wg_peer_set_source_usable(struct wg_peer *peer, const struct wg_endpoint *checked,
			       bool usable);
/* Seconds, 0 = off. Turning it on sends a keepalive at once if the peer has an endpoint and the
 * device is up; without a private key yet, the keepalive waits and starts a handshake as soon as
 * one is set (the kernel's order-independent configuration). */
void wg_peer_set_persistent_keepalive(struct wg_peer *peer, uint16_t secs, uint64_t now);
void wg_peer_get_stats(const struct wg_peer *peer, struct wg_peer_stats *out);

/* Allowed IPs. family is AF_INET (addr 4 bytes, cidr <= 32) or AF_INET6 (16 bytes, <= 128).
 * Host bits are masked; a prefix owned by another peer moves to this one.
 * Returns 0, SG_EINVAL, or SG_ENOMEM. */
int wg_peer_add_allowed_ip(struct wg_peer *peer, int family, const void *addr,
			   uint8_t cidr) SG_WUR;
int wg_peer_remove_allowed_ip(struct wg_peer *peer, int family, const void *addr,
			      uint8_t cidr) SG_WUR;
void wg_peer_clear_allowed_ips(struct wg_peer *peer);
/* Calls cb for each allowed IP of the peer; stops early and returns cb's value if non-zero. */
typedef int (*wg_allowed_ip_cb)(void *ctx, int family, const uint8_t *addr, uint8_t cidr);
int wg_peer_foreach_allowed_ip(const struct wg_peer *peer, wg_allowed_ip_cb cb, void *ctx);

/* Starts a handshake now if none is in flight (used by tests and "wg set ... endpoint"). */
void wg_peer_initiate(struct wg_peer *peer, uint64_t now);
/* Sends one handshake initiation to `to` without changing the peer's endpoint: a probe of
 * another path (the TLS transport's "is UDP back?"). If the peer answers there, roaming moves
 * the endpoint to it. False if none was sent (rate limit, no usable mode). */
bool wg_peer_probe(struct wg_peer *peer, const struct wg_endpoint *to, uint64_t now);

/* Caller's tag for a peer (the daemon stores its per-peer state here). */
void wg_peer_set_user(struct wg_peer *peer, void *user);
void *wg_peer_get_user(const struct wg_peer *peer);

#endif
