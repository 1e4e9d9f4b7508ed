/* Internals of the WireGuard core shared by device.c, send.c, receive.c and timers.c, and by the
 * unit tests (which inspect keypairs and drive timers). Not part of the interface. */
#ifndef SG_WG_WG_INT_H
#define SG_WG_WG_INT_H

#include <secureguard/sg_errors.h>

#include "allowedips.h"
#include "cookie.h"
#include "messages.h"
#include "noise.h"
#include "ratelimiter.h"
#include "replay.h"
#include "wg.h"

#define NSEC 1000000000ULL

/* Whitepaper section 6.1 and the kernel's messages.h. */
#define REKEY_AFTER_MESSAGES     (1ULL << 60)
#define REJECT_AFTER_MESSAGES    WG_REJECT_AFTER_MESSAGES
#define REKEY_TIMEOUT            (5 * NSEC)
#define REKEY_TIMEOUT_JITTER_MAX (NSEC / 3)
#define REKEY_AFTER_TIME         (120 * NSEC)
#define REJECT_AFTER_TIME        (180 * NSEC)
#define REKEY_ATTEMPT_TIME       (90 * NSEC)
#define KEEPALIVE_TIMEOUT        (10 * NSEC)
#define MAX_TIMER_HANDSHAKES     (90 / 5)
#define INITIATIONS_PER_SECOND   50
#define MAX_STAGED_PACKETS       128
#define INDEX_BUCKETS            4096
/* The peer tables start with this many buckets and double when they hold as many peers. */
#define PEER_BUCKETS_MIN         1024
/* FIPS negotiation (docs/PROTOCOL.md): an `auto` peer falls back to classic after a reject or
 * after this many unanswered FIPS initiations, and tries FIPS again after FIPS_RETRY_AFTER. */
#define FIPS_FALLBACK_ATTEMPTS   2
#define FIPS_RETRY_AFTER         (600 * NSEC)
/* Handshake messages count this many times towards the under-load threshold in FIPS mode: a
 * P-384 decode and ECDH costs about 12 X25519 operations (bench/handshake.sh). */
#define FIPS_LOAD_WEIGHT         12
/* At most one mode-negotiation event per peer per this interval (they become log lines). */
#define MODE_EVENT_INTERVAL      (10 * NSEC)

enum index_kind { INDEX_HANDSHAKE, INDEX_KEYPAIR };

/* An entry in the receiver-index table: what a received index refers to. */
struct index_entry {
	uint32_t index; /* our local index, as it appears on the wire (host order) */
	enum index_kind kind;
	bool hashed;
	struct wg_peer *peer;
	struct wg_keypair *keypair; /* kind == INDEX_KEYPAIR */
	struct index_entry *next;
};

struct wg_keypair {
	struct index_entry entry;
	const struct sg_suite *suite; /* AEAD and nonce of the mode it was made in */
	uint8_t wire_mode;	      /* WG_MODE_CLASSIC or WG_MODE_FIPS, byte 1 of its data */
	uint8_t send_key[32];
	uint8_t recv_key[32];
	struct sg_aead *tx, *rx; /* the two keys, set up once for the session's packets */
	uint64_t send_counter;
	struct wg_replay replay;
	uint64_t birth;
	uint32_t remote_index;
	bool send_valid, recv_valid;
	bool initiator;
	/* Ops prepared under this keypair and not yet completed (wg.h's split data path); a
	 * keypair retired meanwhile is `dead` (out of the index and of its peer) and freed by the
	 * last of them. */
	uint32_t ops;
	bool dead;
};

enum handshake_state {
	HANDSHAKE_ZEROED,
	HANDSHAKE_CREATED_INITIATION,
	HANDSHAKE_CONSUMED_INITIATION,
	HANDSHAKE_CREATED_RESPONSE,
	HANDSHAKE_CONSUMED_RESPONSE,
};

struct wg_handshake {
	enum handshake_state state;
	enum sg_suite_id mode; /* of the handshake in flight */
	struct index_entry entry;
	struct noise_symmetric sym;
	uint8_t ephemeral_priv[NOISE_MAX_PRIV];
	uint8_t remote_ephemeral[NOISE_MAX_PUB];
	uint8_t latest_timestamp[NOISE_TIMESTAMP_LEN];
	uint32_t remote_index;
	uint64_t last_initiation_consumption;
	bool has_consumed_initiation;
};

enum wg_timer_id {
	TIMER_RETRANSMIT_HANDSHAKE,
	TIMER_SEND_KEEPALIVE,
	TIMER_NEW_HANDSHAKE,
	TIMER_ZERO_KEY_MATERIAL,
	TIMER_PERSISTENT_KEEPALIVE,
	TIMER_COUNT,
};

/* Packets waiting for a session: a ring allocated when the first packet waits and freed when the
 * ring empties, so an idle peer costs 16 bytes here instead of 2 KiB (100,000 peers). */
struct wg_staged_slots {
	uint8_t *pkt[MAX_STAGED_PACKETS]; /* each malloc'd: only before a session exists */
	size_t len[MAX_STAGED_PACKETS];
};

struct wg_staged {
	struct wg_staged_slots *s; /* NULL while nothing waits */
	unsigned head, count;
};

/* A static-static DH result: not computed yet, computed, or failed for good (a classic public
 * key of small order; our key changing resets it). */
enum ss_state { SS_UNKNOWN, SS_OK, SS_BAD };

/* What only a peer that handshakes needs: the handshake in flight, the MAC and cookie keys
 * derived from its public keys, the two static-static DH results and the negotiation events'
 * rate limit. Made when the peer first handshakes (either way), kept until it is removed: an
 * idle peer costs its configuration only (docs/DATAPATH.md, "A million peers"). */
struct wg_peer_active {
	struct wg_handshake hs;
	struct cookie_maker cookie;
	uint8_t static_static[32]; /* DH(our static, their static) */
	enum ss_state ss;
	uint8_t fips_static_static[48];
	enum ss_state fips_ss;
	/* per negotiation event type (WG_EVENT_MODE_REFUSED ...), for the log rate limit */
	uint64_t last_mode_event[WG_EVENT_MODE_UNUSABLE - WG_EVENT_MODE_REFUSED + 1];
};

struct wg_peer {
	struct wg_device *dev;
	struct wg_peer *list_next, *list_prev; /* insertion order */
	struct wg_peer *hash_next, *fips_hash_next;
	uint8_t public_key[32]; /* X25519 key, or for a FIPS-only peer wg_fips_peer_id() */
	bool has_classic;	/* public_key is an X25519 key */
	bool pubkey_is_id;	/* public_key was a FIPS peer id: never a classic key, even after the
				 * FIPS key changes or goes */
	uint8_t psk[32];
	/* FIPS identity. Its DH with our static, like the classic one, is computed on first use
	 * (struct wg_peer_active). */
	uint8_t fips_public[WG_FIPS_PUB_LEN];
	bool has_fips;
	enum wg_crypto_mode crypto_mode; /* WG_CRYPTO_INHERIT: the device's */
	bool fallback;			 /* an auto peer fell back to classic ... */
	uint64_t fallback_until;	 /* ... until then */
	enum sg_suite_id last_init_mode;
	unsigned fips_unanswered; /* FIPS initiations sent since the last completed handshake */
	uint64_t last_reject_switch; /* a reject moved us to the other mode (0 = never) */
	uint16_t remote_caps; /* from its last FIPS handshake message, 0 = unknown */
	struct wg_peer_active *act; /* NULL until the peer first handshakes (peer_activate) */
	struct wg_keypair *kp_next, *kp_current, *kp_previous;
	struct wg_endpoint endpoint;
	bool has_endpoint;
	bool src_rejected; /* endpoint.src is not used for sending (wg_peer_set_source_usable) */
	uint16_t keepalive_interval;
	uint64_t timer_at[TIMER_COUNT];
	bool timer_armed[TIMER_COUNT];
	uint64_t heap_key; /* earliest armed timer; the device's timer heap is ordered by it */
	size_t heap_pos;
	bool in_heap;
	bool need_another_keepalive;
	bool sent_lastminute_handshake;
	unsigned handshake_attempts;
	uint64_t last_sent_handshake;
	bool has_sent_handshake;
	uint64_t last_handshake_real_ns;
	uint64_t rx_bytes, tx_bytes;
	uint64_t rx_packets, tx_packets;
	struct wg_staged staged;
	void *user;
};

struct wg_device {
	struct wg_io io;
	bool has_key; /* classic static key */
	uint8_t static_private[32];
	uint8_t static_public[32];
	bool has_fips_key;
	uint8_t fips_private[WG_FIPS_PRIV_LEN];
	uint8_t fips_public[WG_FIPS_PUB_LEN];
	enum wg_crypto_mode crypto_mode; /* WG_CRYPTO_AUTO by default */
	/* Peers by FIPS public key, and below by public key: chained hash tables of a power of
	 * two buckets (NULL until the first peer), doubled when they hold as many peers. */
	struct wg_peer **fips_buckets;
	size_t fips_nbuckets, fips_count;
	struct ratelimiter *reject_limiter; /* rejects sent to unauthenticated sources */
	struct cookie_checker checker;
	struct ratelimiter *ratelimiter;
	struct wg_allowedips *aips;
	struct wg_peer *peers_head, *peers_tail;
	size_t peer_count;
	uint64_t hash_seed;
	struct wg_peer **peer_buckets;
	size_t peer_nbuckets;
	/* Min-heap of peers with an armed timer, by heap_key: next_deadline is O(1) and a tick
	 * touches only the peers that are due, whatever the number of peers. Capacity is reserved
	 * when a peer is added, so the data path never allocates for it. */
	struct wg_peer **heap;
	size_t heap_len, heap_cap;
	struct index_entry *index_buckets[INDEX_BUCKETS];
	/* Load detection: handshake messages counted per one-second window. */
	uint64_t load_window_start;
	uint32_t load_window_count;
	uint64_t last_under_load;
	bool was_under_load;
	bool forced_under_load;
	uint16_t mtu;
	/* Routes through the interface with a smaller MTU (wg_device_set_route_mtus). */
	struct wg_route_mtu route_mtus[WG_ROUTE_MTU_MAX];
	size_t n_route_mtus;
	bool up; /* the interface is up (wg_device_set_up) */
	/* Split data-path ops prepared and not yet completed (wg.h): no peer may go meanwhile. */
	size_t ops_in_flight;
	struct wg_device_stats stats;
	uint8_t scratch[WG_MAX_DATAGRAM];
};

/* device.c */
/* Gives e a new random index, unique in the table, and inserts it. */
void index_insert(struct wg_device *dev, struct index_entry *e);
/* Inserts e under the index it already has (a keypair taking over its handshake's index). */
void index_insert_keep(struct wg_device *dev, struct index_entry *e);
void index_remove(struct wg_device *dev, struct index_entry *e);
struct index_entry *index_lookup(struct wg_device *dev, uint32_t index);
void peer_emit(struct wg_peer *peer, enum wg_event_type type, const char *reason);
void keypairs_clear(struct wg_peer *peer);
void keypair_destroy(struct wg_device *dev, struct wg_keypair *kp); /* NULL ok */
/* An op prepared under kp has completed: frees a dead keypair after its last op. */
void keypair_release(struct wg_keypair *kp);
void handshake_clear(struct wg_peer *peer);
/* The peer's active state, made on first use; NULL when out of memory. */
struct wg_peer_active *peer_activate(struct wg_peer *peer);

/* negotiation (handshake.c) */
enum wg_crypto_mode peer_effective_mode(const struct wg_peer *peer);
bool peer_can_mode(struct wg_peer *peer, enum sg_suite_id mode);
/* The mode for our next initiation to the peer, or -1 if none can be used. */
int peer_choose_mode(struct wg_peer *peer, uint64_t now);
/* Our capabilities towards this peer (its effective mode and our keys). */
uint16_t peer_local_caps(struct wg_peer *peer);
/* The peer's policy allows this mode. */
bool peer_mode_allowed(const struct wg_peer *peer, enum sg_suite_id mode);
/* Destroys the peer's keypairs and in-flight handshake of modes its policy no longer allows, or
 * of `mode` when only_mode >= 0 (its key went away). */
void peer_drop_sessions(struct wg_peer *peer, int only_mode);
uint16_t device_caps(const struct wg_device *dev);
/* Emits a negotiation event at most once per MODE_EVENT_INTERVAL per peer. */
void peer_emit_mode(struct wg_peer *peer, enum wg_event_type type, const char *reason,
		    uint64_t now);
/* Falls back from FIPS to classic (auto peers only); reason "reject" or "timeout". */
void peer_fallback(struct wg_peer *peer, const char *reason, uint64_t now);
const struct wg_hs_layout *handshake_layout(int type, enum sg_suite_id mode);

/* send.c */
/* True if an initiation was sent (false: rate-limited by REKEY_TIMEOUT, no key or no endpoint). */
bool send_handshake_initiation(struct wg_peer *peer, uint64_t now, bool is_retry);
/* Sends a reject to `to` answering the initiation whose sender index is `index`. */
void send_reject(struct wg_device *dev, const struct wg_endpoint *to, uint8_t wire_mode,
		 uint32_t index, uint16_t caps, enum wg_reject_reason reason);
void send_handshake_response(struct wg_peer *peer, uint64_t now);
void send_keepalive(struct wg_peer *peer, uint64_t now);
void send_staged(struct wg_peer *peer, uint64_t now);
/* Sends to the peer's endpoint (from its sticky source unless rejected) with outer TTL `ttl`
 * (0 = default); nothing while the device is down. */
void send_buffer(struct wg_peer *peer, const uint8_t *buf, size_t len, uint8_t ttl);
void staged_purge(struct wg_peer *peer);

/* noise handshake messages, device level (handshake.c) */
/* Writes an initiation of `mode` into msg (WG_FIPS_INITIATION_LEN bytes of room); returns its
 * length, 0 on failure. */
size_t handshake_create_initiation(struct wg_peer *peer, enum sg_suite_id mode, uint8_t *msg,
				   uint64_t now) SG_WUR;
/* Returns the authenticated peer, or NULL. When the peer is known but its policy refuses this
 * mode, returns NULL with *refuse set to the reason to send back (0 otherwise). */
struct wg_peer *handshake_consume_initiation(struct wg_device *dev, enum sg_suite_id mode,
					     const uint8_t *msg, uint64_t now,
					     enum wg_reject_reason *refuse, struct wg_peer **refused);
/* Writes the response in the mode of the consumed initiation; returns its length or 0. */
size_t handshake_create_response(struct wg_peer *peer, uint8_t *msg) SG_WUR;
struct wg_peer *handshake_consume_response(struct wg_device *dev, enum sg_suite_id mode,
					   const uint8_t *msg);
bool handshake_begin_session(struct wg_peer *peer, uint64_t now) SG_WUR;

/* timers.c: named events (the kernel's timers.c) */
void timers_data_sent(struct wg_peer *peer, uint64_t now);
void timers_data_received(struct wg_peer *peer, uint64_t now);
void timers_any_authenticated_packet_sent(struct wg_peer *peer);
void timers_any_authenticated_packet_received(struct wg_peer *peer);
void timers_handshake_initiated(struct wg_peer *peer, uint64_t now);
void timers_handshake_complete(struct wg_peer *peer);
void timers_session_derived(struct wg_peer *peer, uint64_t now);
void timers_any_authenticated_packet_traversal(struct wg_peer *peer, uint64_t now);
void timers_stop(struct wg_peer *peer);
void timers_disarm_persistent_keepalive(struct wg_peer *peer);
/* Re-files the peer in the device's timer heap after its timer_at/timer_armed changed (the
 * arm/disarm helpers do this; tests that poke timer_at directly call it). */
void timers_refile(struct wg_peer *peer);
/* Fires every due timer of every peer (in deadline order). */
void timers_tick_device(struct wg_device *dev, uint64_t now);
uint64_t timers_next_device(const struct wg_device *dev);
/* Reserves heap room for n peers; SG_ENOMEM on failure. */
int timers_reserve(struct wg_device *dev, size_t n) SG_WUR;

static inline bool birthdate_expired(uint64_t birth, uint64_t age, uint64_t now)
{
	return birth + age <= now;
}

#endif
