/* secureguard-iked internals: the IKE daemon's state shared by its files.
 *
 *   main.c     command line, start-up, privileges, daemonizing
 *   iked.c     the I/O shell: UDP 500/4500 (RFC 3948 demultiplexing), the TUN device and its
 *              routes, the ESP data path, timers, and the IKE core's upcalls
 *   conn.c     a connection's VICI message (load-conn) into an ike_peer_cfg
 *   vicicmd.c  the VICI commands swanctl sends, and the events it listens to
 */
#ifndef SG_IKED_IKED_H
#define SG_IKED_IKED_H

#include <stdbool.h>
#include <netdb.h>
#include <stdint.h>

#include "ike/esp.h"
#include "ike/ike.h"
#include "net/evloop.h"
#include "net/offload.h"
#include "net/tun.h"
#include "net/udp.h"
#include "vici/vici_server.h"

#define IKED_TUN_NAME	  "ipsec0"
#define IKED_TUN_MTU	  1400
#define IKED_MAX_SECRETS  64
#define IKED_MAX_CREDS	  32
#define IKED_KEEPALIVE_NS (20ull * 1000000000ull) /* RFC 3948 4: NAT keepalives */

/* What only the daemon uses of a child config (cfg.children[i] has the rest). */
struct iked_child_opts {
	bool start; /* start_action = start */
	bool trap;  /* start_action = trap */
	uint64_t rekey_bytes, life_bytes, rekey_packets, life_packets;
};

#define IKED_MAX_HOSTS 4 /* host names in remote_addrs */

/* A connection as loaded: the core's peer config and what only the daemon uses. */
struct iked_conn {
	struct iked_conn *next;
	struct ike_peer_cfg cfg;
	struct iked_child_opts child[IKE_MAX_CHILD_CFG];
	bool has_remote;
	/* Host names in remote_addrs (host_first: the first entry, where we initiate to), resolved
	 * asynchronously (iked_resolve): their addresses follow the nliteral written ones in
	 * cfg.remote_addrs. remote_port: as configured (0: 500). */
	char hosts[IKED_MAX_HOSTS][256];
	unsigned nhosts, nliteral;
	bool host_first;
	uint16_t remote_port;
	char remote_addrs[256], local_addrs[256]; /* as written, for list-conns */
	/* Certificates (auth = pubkey), owned: ours, and the CAs named by remote cacerts (none:
	 * every CA loaded with load-cert). iked_conn_release frees them. */
	struct sg_cert *cert;
	struct sg_cert *cacerts[IKE_MAX_CAS];
	unsigned ncacerts;
};

struct iked_secret {
	char id[64];
	uint8_t data[256];
	size_t len;
	struct ike_identity owners[8];
	unsigned nowners;
};

/* A certification authority (swanctl.conf authorities, VICI load-authority): a trust anchor
 * with a name, for connections that name no cacerts. */
struct iked_authority {
	char name[64];
	struct sg_cert *cert;
};

/* A trap (start_action = trap, VICI install): the child's routes go through the TUN device
 * before any SA exists, and a packet that matches its selectors while no Child SA carries it
 * starts one (the packet itself is dropped, as the kernel's acquire drops it with charon). */
#define IKED_ACQUIRE_RETRY_NS (2ull * 1000000000ull) /* between acquires of one trap */
struct iked_trap {
	struct iked_trap *next;
	char conn[64], child[64];
	bool transport;
	struct ike_ts local_ts[IKE_MAX_TS_CFG], remote_ts[IKE_MAX_TS_CFG];
	unsigned nlocal_ts, nremote_ts;
	bool acquiring;	    /* an initiation is under way */
	uint64_t acquire_at; /* when the last one started */
	uint64_t acquires;
};

/* Host names of a connection being resolved (getaddrinfo_a, polled from the loop's timer every
 * IKED_RESOLVE_POLL_NS), and the child to initiate once they are ("": none). */
#define IKED_RESOLVE_POLL_NS (20ull * 1000000ull)
#define IKED_MAX_RESOLVES 32 /* resolutions under way at once */
struct iked_resolve {
	struct iked_resolve *next;
	char conn[64], child[64];
	unsigned n;
	struct gaicb cb[IKED_MAX_HOSTS];
	struct gaicb *list[IKED_MAX_HOSTS];
	struct addrinfo hints;
	char port[8];
};

/* An installed Child SA in the data path. */
struct iked_child {
	struct iked_child *next;
	char conn[64], name[64];
	uint32_t unique_id;
	uint32_t spi_in, spi_out;
	struct esp_sa in, out;
	struct ike_ts local_ts[IKE_MAX_TS], remote_ts[IKE_MAX_TS];
	unsigned nlocal_ts, nremote_ts;
	struct ike_endpoint remote;
	bool rx_seen; /* authentic ESP in this receive batch: the core hears of it once */
	uint64_t installed_at;
	uint16_t encr, encr_bits, integ;
	bool esn, transport;
};

/* The data path's batches (esp.h's three steps): up to IKED_BATCH packets are prepared in
 * order, their cipher work run together (on the crypto lanes when there are several), and
 * completed in order. An outbound packet is laid out in its own slot of IKED_SLOT bytes (TUN
 * packets are at most the MTU, IKED_TUN_MTU; a bigger one takes the one-by-one path); an
 * inbound one is opened where it was received. */
#define IKED_BATCH 64
#define IKED_SLOT  2048

struct iked_op {
	struct esp_op op;
	struct iked_child *ch;
	int prep; /* the prepare's result (ESP_OK or ESP_SOFT) */
};

/* A VICI command waiting for the IKE core: initiate (answered when the child is up or failed),
 * terminate of the IKE SA or of a child's Child SAs (when they are gone). */
enum iked_pending_kind {
	IKED_PENDING_INITIATE,
	IKED_PENDING_TERMINATE,
	IKED_PENDING_TERMINATE_CHILD,
};

struct iked_pending {
	struct iked_pending *next;
	uint64_t conn_id;
	char name[64];	/* the connection */
	char child[64]; /* the child config ("": any) */
	enum iked_pending_kind kind;
	int loglevel; /* control-log events up to this level (the request's loglevel) */
	/* Resolved while its own command handler still runs: answered by the handler. */
	bool done, ok;
	char err[192];
};

struct cpool;

struct iked {
	struct evloop *loop;
	struct cpool *pool; /* the crypto lanes (src/engine/cpool.h), NULL: the loop thread only */
	struct ike_ctx *ike;
	struct vici_server *vici;
	struct udp_sock u500, u4500;
	struct udp_rx rx;
	struct udp_tx tx500, tx4500;
	struct tun tun;
	int timer_fd, signal_fd;
	struct evloop_source src_u500, src_u4500, src_tun, src_timer, src_signal;
	struct iked_conn *conns;
	struct iked_secret secrets[IKED_MAX_SECRETS];
	unsigned nsecrets;
	/* load-cert (flag CA) and load-key. */
	struct sg_cert *cas[IKED_MAX_CREDS];
	unsigned ncas;
	struct sg_privkey *keys[IKED_MAX_CREDS];
	unsigned nkeys;
	struct iked_authority authorities[IKED_MAX_CREDS];
	unsigned nauthorities;
	struct iked_child *children;
	struct iked_trap *traps;
	struct iked_resolve *resolves;
	uint32_t next_child_id;
	struct iked_pending *pending;
	struct iked_pending *handling; /* the pending of the command being handled, or NULL */
	uint64_t started_ns, started_real_ns;
	char conf_dir[256]; /* of --conf: where its x509, x509ca and private files are */
	uint64_t keepalive_at;
	bool stop;
	/* Data path counters. */
	uint64_t esp_in, esp_out, esp_dropped, tun_no_sa, tun_dropped;
	uint8_t pkt[65536 + 256];
	/* TUN offloads (net/offload.h), as secureguardd uses them: reads may be GSO super-packets
	 * cut into segments before encryption (frame, seg), decrypted TCP segments of one flow are
	 * coalesced into one write (gro, gro_mem); gro_off once the kernel refuses GSO writes. */
	uint8_t *frame, *seg, *gro_mem;
	struct offload_gro gro;
	bool gro_off;
	/* Batches (IKED_BATCH ops each way; tx_slots: IKED_BATCH * IKED_SLOT bytes). */
	struct iked_op tx_ops[IKED_BATCH], rx_ops[IKED_BATCH];
	unsigned ntx, nrx;
	uint8_t *tx_slots;
	struct ike_endpoint rx_from[IKED_BATCH];
};

/* conn.c: one connection from its load-conn message (the single top-level section). *err gets a
 * message for the VICI client on failure. 0 or SG_EINVAL. Certificates come as data (what
 * swanctl sends) or, from a --conf file, as file names: absolute, or relative to
 * base_dir/x509 (certs) and base_dir/x509ca (cacerts), swanctl's layout; base_dir NULL: data
 * only. */
int iked_conn_from_vici(const struct vici_node *root, const char *base_dir, struct iked_conn *out,
			char *err, size_t errlen) SG_WUR;
void iked_conn_release(struct iked_conn *c);
/* Reads a file of at most 1 MiB (certificates, keys). 0 or a negative errno. */
int iked_read_file(const char *path, uint8_t **data, size_t *len) SG_WUR;
/* Parses an identity as strongSwan does: IPv4/IPv6 address, "@fqdn" or a name with a dot, an
 * e-mail address with '@'. 0 or SG_EINVAL. */
int iked_identity_parse(const char *s, struct ike_identity *id) SG_WUR;
/* Formats an identity for list-conns / list-sas. */
const char *iked_identity_str(const struct ike_identity *id, char *buf, size_t size);
/* "30s", "10m", "2h", "1d" or seconds: 0 or SG_EINVAL. */
int iked_duration(const char *s, uint64_t *ns) SG_WUR;

/* iked.c */
int iked_init(struct iked *d, const char *vici_uri, const char **why) SG_WUR;
/* Starts the crypto lanes (SG_CRYPTO_THREADS, as for secureguardd): after dropping
 * privileges, so the threads never hold more than the loop. 0 or a negative errno. */
int iked_start_lanes(struct iked *d) SG_WUR;
void iked_free(struct iked *d);
int iked_run(struct iked *d);
/* Loads or replaces a connection (PSK filled from the secrets) and starts it if asked. */
int iked_load_conn(struct iked *d, const struct iked_conn *conn, char *err, size_t errlen) SG_WUR;
int iked_unload_conn(struct iked *d, const char *name) SG_WUR;
int iked_load_secret(struct iked *d, const struct iked_secret *s) SG_WUR;
void iked_unload_secret(struct iked *d, const char *id);
/* Installs the trap of a connection's child (replacing one of the same names), or removes it.
 * 0, SG_ENOENT (no such connection, child, or trap). */
int iked_trap_install(struct iked *d, const char *conn, const char *child) SG_WUR;
int iked_trap_uninstall(struct iked *d, const char *conn, const char *child);
/* An initiation a trap started has ended (the child up, or failed): a later packet may start
 * another. */
void iked_trap_done(struct iked *d, const char *conn, const char *child);
/* Resolves the connection's host names (remote_addrs) and, with a child, initiates it when they
 * are resolved (or answers the initiate waiting on it with the failure). 0 or SG_ENOENT,
 * SG_ENOMEM, SG_EFULL (IKED_MAX_RESOLVES under way), SG_EIO (the resolver refused it). */
int iked_resolve_start(struct iked *d, const char *conn, const char *child) SG_WUR;
/* Starts the named child of a connection: at once, or after resolving its host names. As
 * ike_initiate, plus VICI_PENDING-like 0 when a resolution was started. */
int iked_initiate(struct iked *d, const char *conn, const char *child) SG_WUR;
/* Reapplies secrets to every connection (after a change of either). */
void iked_apply_secrets(struct iked *d);
uint64_t iked_now(void);

/* vicicmd.c */
extern const struct vici_server_ops iked_vici_ops;
void iked_vici_ike_event(struct iked *d, const struct ike_event *ev);
void iked_vici_child_event(struct iked *d, struct iked_child *ch, bool up);
/* An initiate waiting on conn/child failed before the core started it (msg says why). */
void iked_vici_initiate_failed(struct iked *d, const char *conn, const char *child,
			       const char *msg);

#endif
