/* The wg(8) / wg-quick(8) configuration format.
 *
 * [Interface]                        [Peer]
 *   PrivateKey, ListenPort, FwMark     PublicKey, PresharedKey, AllowedIPs, Endpoint,
 *   wg-quick: Address, DNS, MTU,       PersistentKeepalive
 *   Table, PreUp, PostUp, PreDown,     SecureGuard: FipsPublicKey, CryptoMode
 *   PostDown, SaveConfig
 *   SecureGuard: FipsPrivateKey, CryptoMode, FipsStrict    SecureGuard: Transport,
 *   TLS: TlsListenPort, TlsCertificate,                    TlsEndpoint, TlsServerName
 *   TlsPrivateKey, TlsCA, TlsCRL, RequireClientCert, TlsSessionKey, RequireSessionToken,
 *   TlsSessionToken
 *
 * A peer has a PublicKey, a FipsPublicKey, or both. A FIPS-only peer gets its FIPS peer id
 * (sg_fips_peer_id) as public_key, with public_key_derived set, so code that identifies peers by
 * public key works unchanged; the serializer does not write a derived PublicKey.
 *
 * The parser is fed one line at a time and does no I/O (no files, no name resolution: Endpoint
 * hosts are kept as text for the caller to resolve), so it is fuzzed directly. Keys are
 * case-insensitive, '#' starts a comment, and whitespace inside the values of wg(8) keys is
 * ignored as wg(8) does. Errors read "line 7: AllowedIPs: bad prefix length 33". Everything is
 * bounded: line length, peers, allowed IPs per peer and in total, addresses, DNS entries, hooks.
 *
 * The serializer writes the layout of `wg showconf`, preceded by the wg-quick keys in the order
 * wg-quick's SaveConfig writes them.
 */
#ifndef SG_CONFIG_WGCONF_H
#define SG_CONFIG_WGCONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"
#include "config/key.h"

#define SG_WGCONF_MAX_LINE	4096 /* characters per line, without the newline */
/* Peers: the kernel module's MAX_PEERS_PER_DEVICE, as secureguardd (WG_MAX_PEERS). Parsed, a
 * peer costs 192 bytes here plus its allowed IPs and host names. */
#define SG_WGCONF_MAX_PEERS	(1u << 20)
#define SG_WGCONF_MAX_PEER_IPS	4096	    /* AllowedIPs entries of one peer */
#define SG_WGCONF_MAX_TOTAL_IPS (1u << 22) /* of all peers together: 4 per peer at the most peers */
#define SG_WGCONF_MAX_ADDRESSES 64
#define SG_WGCONF_MAX_DNS	32
#define SG_WGCONF_MAX_HOOKS	32  /* of each kind */
#define SG_WGCONF_HOST_MAX	253 /* a DNS name (RFC 1035) or an IPv6 literal with zone */
#define SG_WGCONF_TABLE_MAX	31
#define SG_WGCONF_ERR_MAX	256
#define SG_WGCONF_PATH_MAX	4095 /* TLS file paths: absolute, at most this long */
/* Longest text of an IP prefix, "ffff:...:255.255.255.255/128" plus NUL. */
#define SG_WGCONF_PREFIX_STRLEN 50

/* An address with a prefix length; family is AF_INET or AF_INET6. */
struct sg_wgconf_ip {
	int family;
	uint8_t cidr;
	uint8_t addr[16]; /* network byte order; 4 bytes used for AF_INET */
};

struct sg_wgconf_dns {
	bool is_search; /* a search domain rather than a server (wg-quick's rule) */
	char name[SG_WGCONF_HOST_MAX + 1];
};

enum sg_wgconf_hook {
	SG_WGCONF_PRE_UP,
	SG_WGCONF_POST_UP,
	SG_WGCONF_PRE_DOWN,
	SG_WGCONF_POST_DOWN,
	SG_WGCONF_NHOOKS
};

/* CryptoMode values; UNSET means the key was not given (a peer then inherits the interface's). */
enum sg_wgconf_mode {
	SG_WGCONF_MODE_UNSET = 0,
	SG_WGCONF_MODE_AUTO,
	SG_WGCONF_MODE_FIPS,
	SG_WGCONF_MODE_CLASSIC,
};
/* "auto", "fips", "classic" (NULL for UNSET). */
const char *sg_wgconf_mode_name(enum sg_wgconf_mode m);

/* Transport values (docs/TLS.md); UNSET sends nothing (the daemon's default is udp). */
enum sg_wgconf_transport {
	SG_WGCONF_TRANSPORT_UNSET = 0,
	SG_WGCONF_TRANSPORT_UDP,
	SG_WGCONF_TRANSPORT_TLS,
	SG_WGCONF_TRANSPORT_AUTO,
};
/* "udp", "tls", "auto" (NULL for UNSET). */
const char *sg_wgconf_transport_name(enum sg_wgconf_transport t);

/* The host names of a peer are never NULL: "" (static) until set, then owned by the peer (set
 * them with sg_wgconf_host_set). A million-peer file is parsed in memory, so a peer holds
 * pointers rather than three 254-byte arrays. */
struct sg_wgconf_peer {
	enum sg_wgconf_transport transport;
	bool has_tls_endpoint;
	uint16_t tls_endpoint_port;
	char *tls_endpoint_host;
	char *tls_server_name; /* "" = the endpoint's host when a name */
	uint8_t fips_public_key[SG_FIPS_PUB_LEN];
	bool has_fips_public_key;
	bool public_key_derived; /* FIPS-only: public_key is the FIPS peer id */
	enum sg_wgconf_mode crypto_mode;
	uint8_t public_key[SG_KEY_LEN];
	uint8_t preshared_key[SG_KEY_LEN];
	bool has_public_key;
	bool has_preshared_key;
	bool has_endpoint;
	bool has_keepalive;
	uint16_t keepalive; /* seconds, 0 = off */
	uint16_t endpoint_port;
	/* Host as written, without brackets: an IPv4/IPv6 literal or a name to resolve. */
	char *endpoint_host;
	struct sg_wgconf_ip *allowed_ips;
	size_t n_allowed_ips, cap_allowed_ips;
	unsigned int line; /* of its [Peer] header, for messages */
};

struct sg_wgconf {
	/* [Interface], TLS transport (malloc'd absolute paths, NULL = not set) */
	bool has_tls_listen_port;
	uint16_t tls_listen_port;
	char *tls_certificate, *tls_private_key, *tls_ca;
	char *tls_crl; /* TlsCRL: PEM CRLs checked on every peer chain (docs/TLS.md) */
	bool require_client_cert;
	/* Session tokens (docs/TLS.md, phase 2): the listener's key (PEM) and whether it requires
	 * them; the client's token file. */
	char *tls_session_key, *tls_session_token;
	bool require_session_token;

	/* [Interface], SecureGuard keys */
	uint8_t fips_private_key[SG_FIPS_PRIV_LEN];
	bool has_fips_private_key;
	enum sg_wgconf_mode crypto_mode;
	bool fips_strict;

	/* [Interface], wg(8) keys */
	uint8_t private_key[SG_KEY_LEN];
	bool has_private_key;
	bool has_listen_port;
	bool has_fwmark;
	uint16_t listen_port;
	uint32_t fwmark; /* 0 = off */

	/* [Interface], wg-quick(8) keys */
	struct sg_wgconf_ip addresses[SG_WGCONF_MAX_ADDRESSES];
	size_t n_addresses;
	struct sg_wgconf_dns dns[SG_WGCONF_MAX_DNS];
	size_t n_dns;
	bool has_mtu;
	bool has_table;
	bool save_config;
	uint32_t mtu;
	char table[SG_WGCONF_TABLE_MAX + 1]; /* "off", "auto", a number or a table name */
	char *hooks[SG_WGCONF_NHOOKS][SG_WGCONF_MAX_HOOKS];
	size_t n_hooks[SG_WGCONF_NHOOKS];

	struct sg_wgconf_peer *peers;
	size_t n_peers, cap_peers;
	size_t total_ips;
	/* A lower peer limit than SG_WGCONF_MAX_PEERS (0: that one), so tests can reach the limit
	 * without a gigabyte of peers. */
	size_t max_peers;

	/* Parser state. */
	int section;
	unsigned int line;
	bool failed;
	char error[SG_WGCONF_ERR_MAX];
};

/* An empty configuration, ready to parse into. */
void sg_wgconf_init(struct sg_wgconf *conf);
/* Wipes the keys, frees everything and leaves conf as after sg_wgconf_init. */
void sg_wgconf_free(struct sg_wgconf *conf);

/* Parses one line (len bytes, a trailing "\n" or "\r\n" allowed). Returns 0, SG_EPARSE or
 * SG_ENOMEM; sg_wgconf_error() then says what and where. After an error every later call fails
 * too, with the first message kept. */
int sg_wgconf_parse_line(struct sg_wgconf *conf, const char *line, size_t len) SG_WUR;
/* Checks what only the whole file can show (every peer has a PublicKey or a FipsPublicKey, and
 * derives the peer id of FIPS-only peers). 0 or SG_EPARSE. */
int sg_wgconf_parse_finish(struct sg_wgconf *conf) SG_WUR;
/* Splits text into lines, parses each and finishes. conf must be freshly initialised. */
int sg_wgconf_parse(struct sg_wgconf *conf, const char *text, size_t len) SG_WUR;
/* The message of the first error, "" if none. */
const char *sg_wgconf_error(const struct sg_wgconf *conf);

/* Leaves out the wg-quick keys: the text `wg setconf` and `wg showconf` use. */
#define SG_WGCONF_WG_ONLY 1u

/* Serializes conf. On success *out is a NUL-terminated malloc'd text of *outlen bytes; it holds
 * the private and preshared keys, so wipe it (sg_memzero) before free. SG_ENOMEM otherwise. */
int sg_wgconf_serialize(const struct sg_wgconf *conf, unsigned int flags, char **out,
			size_t *outlen) SG_WUR;

/* Value parsers shared with the command line (`secureguard set`). Each takes a NUL-terminated
 * value without surrounding whitespace, returns 0 or SG_EPARSE, and on error writes a reason
 * (without the key name, and never quoting a key) into why. */
int sg_wgconf_parse_port(uint16_t *port, const char *s, char *why, size_t whylen) SG_WUR;
/* "off", decimal, or 0x-prefixed hex, up to 0xffffffff. */
int sg_wgconf_parse_fwmark(uint32_t *mark, const char *s, char *why, size_t whylen) SG_WUR;
/* "off" or 0-65535 seconds. */
int sg_wgconf_parse_keepalive(uint16_t *secs, const char *s, char *why, size_t whylen) SG_WUR;
/* "ip" or "ip/cidr"; without a length, the full host length (32 or 128). */
int sg_wgconf_parse_ip(struct sg_wgconf_ip *ip, const char *s, char *why, size_t whylen) SG_WUR;
/* Sets a host-name field (&peer->endpoint_host ..., NULL or set before) to a copy of `host`
 * (at most SG_WGCONF_HOST_MAX characters; "" is a shared static string, never fails).
 * SG_ENOMEM leaves the old one. */
int sg_wgconf_host_set(char **field, const char *host) SG_WUR;
/* Frees what sg_wgconf_host_set made (NULL and "" are fine). */
void sg_wgconf_host_free(char *host);
/* "host:port" or "[ipv6]:port"; host gets the host without brackets. */
int sg_wgconf_parse_endpoint(char host[SG_WGCONF_HOST_MAX + 1], uint16_t *port, const char *s,
			     char *why, size_t whylen) SG_WUR;

/* Formats "addr/cidr" into buf (SG_WGCONF_PREFIX_STRLEN bytes). */
void sg_wgconf_ip_format(char buf[SG_WGCONF_PREFIX_STRLEN], const struct sg_wgconf_ip *ip);
/* Appends an allowed IP to a peer, within the limits. 0, SG_EFULL or SG_ENOMEM. */
int sg_wgconf_peer_add_ip(struct sg_wgconf *conf, struct sg_wgconf_peer *peer,
			  const struct sg_wgconf_ip *ip) SG_WUR;
/* Appends an empty peer (line = 0). Returns it, or NULL at the limit or out of memory. */
struct sg_wgconf_peer *sg_wgconf_add_peer(struct sg_wgconf *conf);

#endif
