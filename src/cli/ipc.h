/* Client of the cross-platform WireGuard UAPI (https://www.wireguard.com/xplatform/), spoken by
 * secureguardd and wireguard-go on the unix socket /var/run/wireguard/IFNAME.sock:
 *   "get=1\n\n"          -> "key=value\n"... "errno=N\n\n"
 *   "set=1\nkey=value\n...\n" -> "errno=N\n\n"
 * Keys travel as 64 hex digits. Functions here return 0 or a negative errno value, because the
 * daemon reports errno numbers and the messages print them with strerror().
 */
#ifndef SG_CLI_IPC_H
#define SG_CLI_IPC_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config/key.h"
#include "config/wgconf.h"

#define CLI_SOCK_DIR	"/var/run/wireguard"
#define CLI_SOCK_SUFFIX ".sock"

/* cli_device.flags */
#define CLI_DEV_HAS_PRIVATE_KEY 0x01u
#define CLI_DEV_HAS_PUBLIC_KEY	0x02u
#define CLI_DEV_HAS_LISTEN_PORT 0x04u
#define CLI_DEV_HAS_FWMARK	0x08u
#define CLI_DEV_REPLACE_PEERS	0x10u
#define CLI_DEV_HAS_FIPS_KEY	0x20u /* fips_private_key (all zero: remove) */
#define CLI_DEV_HAS_CRYPTO_MODE 0x40u
#define CLI_DEV_HAS_FIPS_STRICT 0x80u
#define CLI_DEV_HAS_TLS_PORT	0x100u
#define CLI_DEV_HAS_TLS_CERT	0x200u
#define CLI_DEV_HAS_TLS_KEY	0x400u
#define CLI_DEV_HAS_TLS_CA	0x800u
#define CLI_DEV_HAS_TLS_RCC	0x1000u /* require_client_cert */
#define CLI_DEV_HAS_TLS                                                                            \
	(CLI_DEV_HAS_TLS_PORT | CLI_DEV_HAS_TLS_CERT | CLI_DEV_HAS_TLS_KEY | CLI_DEV_HAS_TLS_CA | \
	 CLI_DEV_HAS_TLS_RCC)

/* cli_peer.flags */
#define CLI_PEER_REMOVE	       0x01u
#define CLI_PEER_HAS_PSK       0x02u
#define CLI_PEER_HAS_KEEPALIVE 0x04u
#define CLI_PEER_REPLACE_IPS   0x08u
#define CLI_PEER_HAS_ENDPOINT  0x10u
#define CLI_PEER_HAS_FIPS_KEY  0x20u /* fips_public_key (all zero: remove) */
#define CLI_PEER_HAS_CRYPTO_MODE 0x40u /* crypto_mode; SG_WGCONF_MODE_UNSET sends "inherit" */
#define CLI_PEER_HAS_TRANSPORT	 0x80u /* transport (UNSET sends "udp") */
#define CLI_PEER_HAS_TLS_ENDPOINT 0x100u /* tls_endpoint (+ tls_server_name); family 0 clears */

struct cli_peer {
	enum sg_wgconf_transport transport;
	struct sockaddr_storage tls_endpoint;
	char tls_server_name[SG_WGCONF_HOST_MAX + 1];
	char transport_active[8]; /* get only: "udp" or "tls", "" if absent */
	uint8_t fips_public_key[SG_FIPS_PUB_LEN];
	enum sg_wgconf_mode crypto_mode;
	char session[8];      /* get only: crypto_session ("fips", "classic", "none"), "" if absent */
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

struct cli_device {
	char name[IFNAMSIZ];
	unsigned int flags;
	uint8_t private_key[SG_KEY_LEN];
	uint8_t public_key[SG_KEY_LEN];
	uint8_t fips_private_key[SG_FIPS_PRIV_LEN];
	uint8_t fips_public_key[SG_FIPS_PUB_LEN]; /* derived on get */
	enum sg_wgconf_mode crypto_mode;
	bool fips_strict;
	uint16_t tls_listen_port;
	char *tls_certificate, *tls_private_key, *tls_ca; /* malloc'd; NULL = none */
	bool require_client_cert;
	uint16_t listen_port;
	uint32_t fwmark;
	struct cli_peer *peers;
	size_t n_peers, cap_peers;
};

/* Bounds on what a get reply may hold, so a broken daemon cannot exhaust memory. */
#define CLI_MAX_PEERS	   SG_WGCONF_MAX_PEERS
#define CLI_MAX_PEER_IPS   SG_WGCONF_MAX_PEER_IPS
#define CLI_MAX_REPLY_LINE 4096
/* The whole reply: the per-peer bounds alone would still allow 16384 x 4096 allowed IPs
 * (gigabytes), and a daemon streaming unknown keys would keep us reading forever. A full
 * config file's worth (16384 peers, 65536 allowed IPs) is under 10 MiB. */
#define CLI_MAX_REPLY_BYTES (64u << 20)

/* A zeroed device named ifname, or NULL out of memory. */
struct cli_device *cli_device_new(const char *ifname);
/* Wipes the keys and frees. NULL is fine. */
void cli_device_free(struct cli_device *dev);
/* Appends a zeroed peer; NULL at CLI_MAX_PEERS or out of memory. */
struct cli_peer *cli_device_add_peer(struct cli_device *dev);
/* Appends an allowed IP; -ENOSPC at CLI_MAX_PEER_IPS, -ENOMEM. */
int cli_peer_add_ip(struct cli_peer *peer, const struct sg_wgconf_ip *ip);

/* True when ifname is a valid interface name (1-15 characters, no '/', not "." or ".."). */
bool cli_ifname_valid(const char *ifname);
/* True when the control socket of ifname accepts connections (a stale socket is removed, as
 * wg(8) does). */
bool cli_ipc_exists(const char *ifname);
/* The interfaces with a live control socket, in directory order (as `wg show interfaces`).
 * *names is a malloc'd array of malloc'd strings; free with cli_ipc_list_free. */
int cli_ipc_list(char ***names, size_t *n);
void cli_ipc_list_free(char **names, size_t n);
/* Reads the running configuration. *out is NULL on failure. */
int cli_ipc_get(const char *ifname, struct cli_device **out);
/* Applies dev (only the fields its flags name). */
int cli_ipc_set(const struct cli_device *dev);

/* "auto", "fips", "classic"; SG_WGCONF_MODE_UNSET for anything else. */
enum sg_wgconf_mode cli_mode_parse(const char *s);

/* Formats an endpoint as wg(8) does: "1.2.3.4:51820" or "[fd00::1]:51820". */
void cli_endpoint_format(char *buf, size_t len, const struct sockaddr_storage *ss);

#endif
