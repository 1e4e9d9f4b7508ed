/* SecureGuard IKEv2 core: the public interface of src/ike's state machines, sans-I/O like src/wg.
 *
 * The core runs IKE SAs and their Child SAs (RFC 7296): IKE_SA_INIT with NAT detection, COOKIE
 * under load and INVALID_KE_PAYLOAD with the retry; IKE_AUTH with a pre-shared key and the first
 * Child SA with traffic selector narrowing; INFORMATIONAL DELETE of IKE and Child SAs; liveness
 * checks (DPD); retransmission with exponential backoff over a message-ID window of one. It never
 * opens a socket or reads a clock: the caller passes the monotonic time `now` (nanoseconds) into
 * every call and gets datagrams, installed SAs and events back through the upcall table, as the
 * WireGuard core does (wg.h). Randomness (SPIs, nonces, key pairs) comes from src/crypto.
 *
 * Threading: not thread-safe; one event loop owns an ike_ctx. Upcalls run inside the call that
 * caused them and must not call back into the context.
 */
#ifndef SG_IKE_IKE_H
#define SG_IKE_IKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"
#include "ike/ike_msg.h"
#include "crypto/pki.h"
#include "ike/proposal.h"

#define IKE_PORT       500
#define IKE_NATT_PORT  4500
#define IKE_MAX_ID     512 /* a DER DN can be longer than a name */
#define IKE_MAX_PSK    256
#define IKE_MAX_TS_CFG 8
#define IKE_MAX_CHILD_CFG 8 /* children per connection */
#define IKE_MAX_ADDRS	  8 /* remote address ranges per connection */
/* Retransmission (RFC 7296 2.1), charon's defaults: 4 s, x1.8 each time, 5 retransmits. */
#define IKE_RETX_BASE_NS (4ull * 1000000000ull)
#define IKE_RETX_TRIES	 5
/* Half-open IKE SAs above which IKE_SA_INIT requests must carry a cookie (2.6). */
#define IKE_COOKIE_THRESHOLD 64
/* Half-open IKE SAs kept at most (more requests are dropped and counted). */
#define IKE_MAX_HALF_OPEN 1024

struct ike_endpoint {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	uint16_t port;
};

struct ike_identity {
	uint8_t type; /* enum ike_id_type */
	uint16_t len;
	uint8_t data[IKE_MAX_ID];
};

/* A traffic selector range as configured (one address range and protocol/port range). */
struct ike_ts_cfg {
	uint8_t type; /* IKE_TS_IPV4_ADDR_RANGE or IKE_TS_IPV6_ADDR_RANGE */
	uint8_t proto;
	uint16_t port_start, port_end;
	uint8_t start[16], end[16];
};

enum ike_dpd_action { IKE_DPD_CLEAR = 0, IKE_DPD_RESTART = 1 };

struct ike_child_cfg {
	char name[64];
	struct ike_prop_cfg props[IKE_PROP_MAX];
	unsigned nprops;
	struct ike_ts_cfg local_ts[IKE_MAX_TS_CFG], remote_ts[IKE_MAX_TS_CFG];
	unsigned nlocal_ts, nremote_ts;
	bool transport; /* transport mode (USE_TRANSPORT_MODE), else tunnel */
	/* Lifetimes by time (0 = none): rekey (soft) and delete (hard). A key exchange group in
	 * the ESP proposals means PFS on rekeying. Byte and packet lifetimes are counted by the
	 * data path, which calls ike_child_expired. */
	uint64_t rekey_time_ns, life_time_ns;
	enum ike_dpd_action dpd_action; /* restart: brought up again when DPD declares the peer
					 * dead */
};

/* RFC 7383 fragmentation, swanctl.conf's `fragmentation`: yes (and force, an IKEv1 setting)
 * announce, accept and send fragments; accept announces and accepts them but never sends any;
 * no neither announces nor accepts them. */
enum ike_frag_mode { IKE_FRAG_YES = 0, IKE_FRAG_ACCEPT = 1, IKE_FRAG_NO = 2 };

/* A range of peer addresses a responder accepts a connection from (remote_addrs). */
struct ike_addr_range {
	int family; /* AF_INET or AF_INET6 */
	uint8_t start[16], end[16];
	bool single; /* one address: preferred over ranges when several connections match */
};

/* How a side authenticates (each direction on its own, RFC 7296 2.15). */
enum ike_auth_class {
	IKE_AUTHC_PSK = 0,    /* pre-shared key */
	IKE_AUTHC_PUBKEY = 1, /* X.509 certificate, RFC 7427 digital signature (method 14) */
};
#define IKE_MAX_CAS 8
/* A remote identity of this type matches any identity its certificate proves. */
#define IKE_ID_ANY 0

struct ike_peer_cfg {
	char name[64];
	struct ike_endpoint remote; /* where an initiator sends IKE_SA_INIT */
	/* Who may start it as initiator (none: anyone). A responder picks the connection for an
	 * IKE_SA_INIT among those whose addresses hold the sender, the most specific first, by
	 * the first whose IKE proposals match; IKE_AUTH then binds the SA to the connection whose
	 * identities match (see ike_add_peer). */
	struct ike_addr_range remote_addrs[IKE_MAX_ADDRS];
	unsigned nremote_addrs;
	struct ike_identity local_id, remote_id;
	uint8_t psk[IKE_MAX_PSK];
	size_t psk_len;
	/* Certificates (crypto/pki.h): the core takes a reference of each while the peer is
	 * configured, so the caller may free its own at any time. local_auth PUBKEY: our
	 * certificate (sent in CERT) and its private key; with local_id of type IKE_ID_ANY the
	 * certificate's subject DN is our identity. remote_auth PUBKEY: the CAs the peer's
	 * certificate must chain to (CERTREQ names them); none: every certificate is refused. */
	uint8_t local_auth, remote_auth;
	/* RSASSA-PSS (swanctl.conf auth = rsa/pss): ours signs with it (an RSA key), theirs
	 * must; RSA PKCS#1 v1.5 and ECDSA otherwise, and PSS is always taken from a peer. */
	bool sign_pss, require_pss;
	struct sg_cert *cert;
	struct sg_privkey *key;
	struct sg_cert *cas[IKE_MAX_CAS];
	unsigned ncas;
	struct ike_prop_cfg props[IKE_PROP_MAX];
	unsigned nprops;
	/* The children, at least one. An initiator creates the one it is asked for with
	 * IKE_AUTH and others with CREATE_CHILD_SA over the same IKE SA; a responder picks the
	 * one whose traffic selectors fit the proposed ones best (charon's rating). */
	struct ike_child_cfg children[IKE_MAX_CHILD_CFG];
	unsigned nchildren;
	uint64_t dpd_delay_ns;	 /* 0 = no liveness checks */
	uint64_t dpd_timeout_ns; /* 0 = the retransmission schedule decides */
	uint64_t rekey_time_ns;	 /* IKE SA rekeying (2.18), 0 = never */
	uint8_t fragmentation;	 /* enum ike_frag_mode */
	bool fips;		 /* the FIPS profile: only approved algorithms offered or accepted */
};

enum ike_sa_state {
	IKE_SA_CONNECTING, /* IKE_SA_INIT sent, or received and answered */
	IKE_SA_AUTHENTICATING,
	IKE_SA_ESTABLISHED,
	IKE_SA_DELETING,
	IKE_SA_DEAD,
};

/* A Child SA pair as installed in the data path (ESP). Keys: key || salt for the AEADs. */
struct ike_child_info {
	const char *name;
	uint32_t spi_in, spi_out; /* network byte order values, as on the wire */
	uint16_t encr, encr_bits, integ;
	bool esn, transport, encap; /* encap: UDP-encapsulated (RFC 3948) */
	const uint8_t *key_in, *key_out, *integ_in, *integ_out;
	size_t key_len, integ_len;
	const struct ike_ts *local_ts, *remote_ts;
	unsigned nlocal_ts, nremote_ts;
	struct ike_endpoint local, remote;
};

enum ike_event_type {
	IKE_EV_IKE_UP,		/* IKE SA established */
	IKE_EV_IKE_DOWN,	/* IKE SA gone (reason) */
	IKE_EV_CHILD_UP,	/* Child SA installed */
	IKE_EV_CHILD_DOWN,	/* Child SA removed */
	IKE_EV_REJECTED,	/* a message was refused (reason) */
	IKE_EV_RETRANSMIT,	/* a request was sent again */
	IKE_EV_INVALID_KE,	/* the peer asked for another group; retrying */
	IKE_EV_COOKIE,		/* sent or received a cookie */
	IKE_EV_DPD_DEAD,	/* liveness check failed */
	IKE_EV_IKE_REKEYED,	/* a new IKE SA replaced an old one (sa is the new one) */
	IKE_EV_CHILD_REKEYED,	/* a new Child SA replaced an old one */
	IKE_EV_REKEY_COLLISION, /* simultaneous rekeying resolved (2.8.1, 2.8.2) */
	IKE_EV_INITIATING,	/* IKE_SA_INIT sent for a new IKE SA */
	IKE_EV_CHILD_CREATING,	/* CREATE_CHILD_SA sent for a new Child SA (child) */
	IKE_EV_CHILD_FAILED,	/* a Child SA was not created (child, reason) */
	IKE_EV_IKE_REKEYING,	/* rekeying of the IKE SA started by us */
	IKE_EV_CHILD_REKEYING,	/* rekeying of a Child SA (spi_old) started by us */
	IKE_EV_DELETING,	/* DELETE of the IKE SA sent (reason) */
};

struct ike_sa;

struct ike_event {
	enum ike_event_type type;
	struct ike_sa *sa;  /* may be NULL (a message for no SA) */
	const char *reason; /* static text or NULL */
	const char *peer;   /* the peer config's name, or NULL */
	const char *child;  /* CHILD_*: the child config's name, or NULL */
	/* IKE_REKEYED: the IKE SA replaced (sa is its successor), or NULL when it is not known
	 * yet. CHILD_REKEYED: inbound SPIs of the old and the new Child SA; CHILD_REKEYING: the
	 * old one. */
	struct ike_sa *old;
	uint32_t spi_old, spi_new;
	unsigned retransmit; /* RETRANSMIT: which one (1..) */
};

struct ike_io {
	void *ctx;
	/* One IKE datagram from local port `from_port` to `to`. When from_port is 4500 the
	 * caller adds the non-ESP marker (RFC 3948 2.2). */
	void (*send)(void *ctx, uint16_t from_port, const struct ike_endpoint *to,
		     const uint8_t *buf, size_t len);
	void (*child_up)(void *ctx, struct ike_sa *sa, const struct ike_child_info *info);
	void (*child_down)(void *ctx, struct ike_sa *sa, uint32_t spi_in, uint32_t spi_out);
	void (*event)(void *ctx, const struct ike_event *ev); /* may be NULL */
};

struct ike_stats {
	uint64_t rx, rx_invalid, rx_no_sa, rx_auth_failed, rx_dropped_half_open, cookies_sent,
	    retransmits, ike_up, ike_down;
	/* RFC 7383: messages sent as fragments, and messages reassembled from fragments. */
	uint64_t fragmented, reassembled;
};

struct ike_ctx;

struct ike_ctx *ike_new(const struct ike_io *io);
/* Frees every SA (no DELETE is sent: use ike_terminate first), wiping keys. */
void ike_free(struct ike_ctx *c);

/* Peers: the configurations IKE SAs are made from (copied). A responder binds an IKE SA to the
 * peer whose remote_id matches the initiator's ID (IDi: exact before wildcards before %any),
 * whose local identity matches IDr when the initiator sent one, whose remote_addrs hold the
 * initiator's address, whose IKE proposals accept the algorithms IKE_SA_INIT chose and whose
 * remote auth class is the AUTH payload's; among several, the most specific. */
int ike_add_peer(struct ike_ctx *c, const struct ike_peer_cfg *cfg) SG_WUR;
void ike_remove_peer(struct ike_ctx *c, const char *name);

/* Brings up the named child (NULL: the connection's first) of the named peer: over the peer's IKE
 * SA with CREATE_CHILD_SA when there is one (queued until it is established and its request
 * window is free), else with a new IKE SA that creates it in IKE_AUTH. 0 (under way; a
 * CHILD_UP or CHILD_FAILED event follows, or IKE_DOWN), SG_EEXIST (that child is installed),
 * SG_ENOENT (no such peer or child), SG_ENOROUTE (no IKE SA, and the peer has no address to
 * initiate to), SG_ENOMEM, SG_ECRYPTO. */
int ike_initiate(struct ike_ctx *c, const char *peer, const char *child, uint64_t now) SG_WUR;
/* Deletes the peer's IKE SAs with an INFORMATIONAL DELETE (waiting for the answer, then
 * removing them, or after retransmissions fail). */
int ike_terminate(struct ike_ctx *c, const char *peer, uint64_t now) SG_WUR;
/* Deletes the peer's Child SAs of the named child config (INFORMATIONAL DELETE, one at a time
 * through the request window); the IKE SA stays. 0 or SG_ENOENT (none installed). */
int ike_terminate_child(struct ike_ctx *c, const char *peer, const char *child,
			uint64_t now) SG_WUR;

/* One datagram received on local port `port` from `from` (without the non-ESP marker). */
void ike_receive(struct ike_ctx *c, uint64_t now, uint16_t port, const struct ike_endpoint *from,
		 uint8_t *buf, size_t len);
/* Rekeys the peer's IKE SA (ike_sa) or its Child SAs now (swanctl --rekey), those of the named
 * child config only when child is not NULL. 0, SG_ENOENT, or SG_EAGAIN when an exchange is in
 * flight (started when the window is free). */
int ike_rekey(struct ike_ctx *c, const char *peer, const char *child, bool ike_sa,
	      uint64_t now) SG_WUR;
/* The data path reached a byte or packet lifetime of the Child SA with inbound SPI spi_in:
 * soft starts a rekey, hard deletes it. */
void ike_child_expired(struct ike_sa *sa, uint32_t spi_in, bool hard, uint64_t now);

/* Tells the core that ESP traffic arrived for an SA (liveness: no DPD needed meanwhile). */
void ike_traffic_seen(struct ike_sa *sa, uint64_t now);
void ike_tick(struct ike_ctx *c, uint64_t now);
uint64_t ike_next_deadline(const struct ike_ctx *c);

/* RFC 7383 fragmentation (always offered; used when the peer offers it too): the largest
 * fragment message sent, IKE header included, IKE_FRAG_MIN..IKE_FRAG_MAX_MSG bytes. The default,
 * IKE_FRAG_MAX_MSG, fills a 1280-byte IPv6 datagram (charon's default fragment_size) with the
 * UDP header and the non-ESP marker. Messages that fit are never fragmented. 0 or SG_EINVAL. */
#define IKE_FRAG_MIN	 512
#define IKE_FRAG_MAX_MSG 1228
int ike_set_fragment_size(struct ike_ctx *c, size_t bytes) SG_WUR;

/* Test hook: act as if under load (cookies required). */
void ike_force_cookies(struct ike_ctx *c, bool on);
void ike_get_stats(const struct ike_ctx *c, struct ike_stats *out);

/* Inspection (list-sas). */
struct ike_sa *ike_first_sa(const struct ike_ctx *c);
struct ike_sa *ike_sa_next(const struct ike_sa *sa);
enum ike_sa_state ike_sa_state(const struct ike_sa *sa);
const char *ike_sa_peer_name(const struct ike_sa *sa);
bool ike_sa_initiator(const struct ike_sa *sa);
void ike_sa_spis(const struct ike_sa *sa, uint8_t spi_i[8], uint8_t spi_r[8]);
const struct ike_chosen *ike_sa_proposal(const struct ike_sa *sa);
unsigned ike_sa_child_count(const struct ike_sa *sa);
/* A number unique to the IKE SA within the context (list-sas "uniqueid"), from 1. */
uint32_t ike_sa_unique_id(const struct ike_sa *sa);
const struct ike_endpoint *ike_sa_remote(const struct ike_sa *sa);
uint16_t ike_sa_local_port(const struct ike_sa *sa);
/* Monotonic time the SA was established (0 = not yet). */
uint64_t ike_sa_established_at(const struct ike_sa *sa);
/* The identities of an SA: ours as sent (the configured one, or the certificate's subject), and
 * the peer's as it authenticated (type IKE_ID_ANY, 0, before IKE_AUTH). */
void ike_sa_ids(const struct ike_sa *sa, struct ike_identity *local, struct ike_identity *remote);
/* The configuration of the SA's peer, or NULL (a responder before IKE_AUTH). */
const struct ike_peer_cfg *ike_sa_peer_cfg(const struct ike_sa *sa);
/* The IKE SA that holds the Child SA with inbound SPI spi_in (it moves on IKE SA rekeys). */
struct ike_sa *ike_sa_by_child(const struct ike_ctx *c, uint32_t spi_in);

/* Adds the peer, or replaces the configuration of one with the same name in place: its SAs
 * stay up and use the new settings from their next exchange (credential and connection
 * reloads). 0 or as ike_add_peer. */
int ike_set_peer(struct ike_ctx *c, const struct ike_peer_cfg *cfg) SG_WUR;
const struct ike_peer_cfg *ike_get_peer(const struct ike_ctx *c, const char *name);
/* Iteration over peers: for (p = ike_first_peer(c); p; p = ike_peer_next(c, p)). */
const struct ike_peer_cfg *ike_first_peer(const struct ike_ctx *c);
const struct ike_peer_cfg *ike_peer_next(const struct ike_ctx *c, const struct ike_peer_cfg *p);

#endif
