/* A WireGuard device's settings as the cross-platform UAPI carries them
 * (https://www.wireguard.com/xplatform/, docs/PROTOCOL.md "UAPI"), and the one writer of its
 * set requests: `secureguard set/setconf/syncconf/up` (over the control socket, src/cli/ipc.c),
 * the agent (through the CLI's functions) and libsecureguard (in memory, src/lib/sg.c) all send
 * what wgdev_set_text writes. flags say which fields a request carries; the rest is left alone.
 */
#ifndef SG_CONFIG_WGDEV_H
#define SG_CONFIG_WGDEV_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config/key.h"
#include "config/strbuf.h"
#include "config/wgconf.h"

#define WGDEV_MAX_PEERS	   SG_WGCONF_MAX_PEERS
#define WGDEV_MAX_PEER_IPS SG_WGCONF_MAX_PEER_IPS

/* wgdev.flags */
#define WGDEV_HAS_PRIVATE_KEY 0x01u
#define WGDEV_HAS_PUBLIC_KEY  0x02u
#define WGDEV_HAS_LISTEN_PORT 0x04u
#define WGDEV_HAS_FWMARK      0x08u
#define WGDEV_REPLACE_PEERS   0x10u
#define WGDEV_HAS_FIPS_KEY    0x20u /* fips_private_key (all zero: remove) */
#define WGDEV_HAS_CRYPTO_MODE 0x40u
#define WGDEV_HAS_FIPS_STRICT 0x80u
#define WGDEV_HAS_TLS_PORT    0x100u
#define WGDEV_HAS_TLS_CERT    0x200u
#define WGDEV_HAS_TLS_KEY     0x400u
#define WGDEV_HAS_TLS_CA      0x800u
#define WGDEV_HAS_TLS_RCC     0x1000u /* require_client_cert */
#define WGDEV_HAS_TLS_CRL     0x2000u
#define WGDEV_HAS_TLS_SKEY    0x4000u /* tls_session_key */
#define WGDEV_HAS_TLS_RST     0x8000u /* require_session_token */
#define WGDEV_HAS_TLS_TOKEN   0x10000u /* tls_session_token */
#define WGDEV_HAS_TLS                                                                              \
	(WGDEV_HAS_TLS_PORT | WGDEV_HAS_TLS_CERT | WGDEV_HAS_TLS_KEY | WGDEV_HAS_TLS_CA |          \
	 WGDEV_HAS_TLS_RCC | WGDEV_HAS_TLS_CRL | WGDEV_HAS_TLS_SKEY | WGDEV_HAS_TLS_RST |          \
	 WGDEV_HAS_TLS_TOKEN)

/* wgdev_peer.flags */
#define WGDEV_PEER_REMOVE	    0x01u
#define WGDEV_PEER_HAS_PSK	    0x02u
#define WGDEV_PEER_HAS_KEEPALIVE    0x04u
#define WGDEV_PEER_REPLACE_IPS	    0x08u
#define WGDEV_PEER_HAS_ENDPOINT	    0x10u
#define WGDEV_PEER_HAS_FIPS_KEY	    0x20u  /* fips_public_key (all zero: remove) */
#define WGDEV_PEER_HAS_CRYPTO_MODE  0x40u  /* crypto_mode; SG_WGCONF_MODE_UNSET sends "inherit" */
#define WGDEV_PEER_HAS_TRANSPORT    0x80u  /* transport (UNSET sends "udp") */
#define WGDEV_PEER_HAS_TLS_ENDPOINT 0x100u /* tls_endpoint (+ tls_server_name); family 0 clears */

struct wgdev_peer {
	enum sg_wgconf_transport transport;
	struct sockaddr_storage tls_endpoint;
	char *tls_server_name; /* never NULL (sg_wgconf_host_set); "" = none */
	char transport_active[8]; /* get only: "udp" or "tls", "" if absent */
	uint8_t fips_public_key[SG_FIPS_PUB_LEN];
	enum sg_wgconf_mode crypto_mode;
	char session[8]; /* get only: crypto_session ("fips", "classic", "none"), "" if absent */
	uint16_t remote_caps; /* get only */
	bool fallback;	      /* get only */
	uint8_t public_key[SG_KEY_LEN];
	uint8_t preshared_key[SG_KEY_LEN];
	unsigned int flags;
	struct sockaddr_storage endpoint;
	uint16_t keepalive;
	int64_t handshake_sec, handshake_nsec;
	uint64_t rx_bytes, tx_bytes;
	struct sg_wgconf_ip *ips;
	size_t n_ips, cap_ips;
};

struct wgdev {
	char name[IFNAMSIZ];
	unsigned int flags;
	uint8_t private_key[SG_KEY_LEN];
	uint8_t public_key[SG_KEY_LEN];
	uint8_t fips_private_key[SG_FIPS_PRIV_LEN];
	uint8_t fips_public_key[SG_FIPS_PUB_LEN]; /* derived on get */
	enum sg_wgconf_mode crypto_mode;
	bool fips_strict;
	uint16_t tls_listen_port;
	char *tls_certificate, *tls_private_key, *tls_ca, *tls_crl; /* malloc'd; NULL = none */
	char *tls_session_key, *tls_session_token;		    /* malloc'd; NULL = none */
	bool require_client_cert, require_session_token;
	uint16_t listen_port;
	uint32_t fwmark;
	struct wgdev_peer *peers;
	size_t n_peers, cap_peers;
};

/* A zeroed device named ifname, or NULL out of memory. */
struct wgdev *wgdev_new(const char *ifname);
/* Wipes the keys and frees. NULL is fine. */
void wgdev_free(struct wgdev *dev);
/* Appends a zeroed peer; NULL at WGDEV_MAX_PEERS or out of memory. */
struct wgdev_peer *wgdev_add_peer(struct wgdev *dev);
/* Appends an allowed IP; -ENOSPC at WGDEV_MAX_PEER_IPS, -ENOMEM. */
int wgdev_peer_add_ip(struct wgdev_peer *peer, const struct sg_wgconf_ip *ip);

/* Formats an endpoint as wg(8) does: "1.2.3.4:51820" or "[fd00::1]:51820". */
void wgdev_endpoint_format(char *buf, size_t len, const struct sockaddr_storage *ss);

/* The set request for dev ("set=1\n" ... blank line) appended to b (which the caller wipes:
 * it holds keys). Device keys first, then per peer; a peer's transport after its TLS endpoint
 * and before its endpoint, so the transport starts with what it needs. */
void wgdev_set_text(struct sg_strbuf *b, const struct wgdev *dev);

/* Resolves an Endpoint/TlsEndpoint host for wgdev_from_conf. 0, or -1 with why filled. */
typedef int (*wgdev_resolve_fn)(void *ctx, struct sockaddr_storage *out, const char *host,
				uint16_t port, char *why, size_t whylen);

/* A parsed config as a device request. Without append: replace_peers and the unset interface
 * fields reset, as `wg setconf`. Every peer replaces its allowed IPs. With explicit_peers, every
 * peer also carries its crypto mode, transport and keepalive even when the file leaves them out
 * (they are reset to inherit/udp/0 on a peer that stays: a live change of a running device).
 * 0, -ENOMEM, or -1 when resolve failed (why says why). */
int wgdev_from_conf(const struct sg_wgconf *conf, const char *ifname, bool append,
		    bool explicit_peers, wgdev_resolve_fn resolve, void *ctx, struct wgdev **out,
		    char *why, size_t whylen);

#endif
