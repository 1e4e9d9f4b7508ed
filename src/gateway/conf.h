/* The gateway's configuration: sites, resources and their targets, rules, limits. One JSON
 * document (docs/GATEWAY.md gives every field), the same whether it comes from a file
 * (`secureguard gateway --config FILE`) or, later, pushed by the management server.
 *
 * gw_conf_parse is strict and bounded: unknown fields, wrong types, out-of-range numbers, bad
 * addresses, duplicate ids, domains or ports are refused with one message naming the field by
 * its path ("resources[1].targets[0].weight: must be 1..1000"). A parsed config is immutable
 * and lives in one arena; the running gateway swaps the whole thing atomically.
 *
 * Persistence (last-known-good): gw_conf_save writes the accepted document to DIR/config.json
 * with mode 0600 through a temporary file, fsync and rename, so a crash leaves the old file or
 * the new one, never a mix; gw_conf_load_file reads it back through the same validator.
 */
#ifndef SG_GATEWAY_CONF_H
#define SG_GATEWAY_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/compiler.h"

#define GW_CONF_MAX_BYTES     (1u << 20)
#define GW_CONF_MAX_SITES     64
#define GW_CONF_MAX_RESOURCES 256
#define GW_CONF_MAX_TARGETS   64
#define GW_CONF_MAX_DOMAINS   32
#define GW_CONF_MAX_RULES     64
#define GW_CONF_MAX_CIDRS     64
#define GW_CONF_MAX_KEYS      64
#define GW_CONF_MAX_NETWORKS  16
#define GW_CONF_ID_MAX	      64
#define GW_CONF_ERR_MAX	      256

enum gw_proto { GW_PROTO_HTTP = 0, GW_PROTO_TCP, GW_PROTO_UDP };
enum gw_lb { GW_LB_ROUND_ROBIN = 0, GW_LB_WEIGHTED, GW_LB_LEAST_CONN, GW_LB_REGION };
enum gw_auth { GW_AUTH_PUBLIC = 0, GW_AUTH_API_KEY, GW_AUTH_LOGIN };
enum gw_action { GW_ACT_ALLOW = 0, GW_ACT_DENY, GW_ACT_AUTH };
enum gw_hc_type { GW_HC_NONE = 0, GW_HC_TCP, GW_HC_HTTP };

struct gw_cidr {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	uint8_t bits;
};

struct gw_rate {
	uint32_t rate;	/* tokens per second; 0 = no limit */
	uint32_t burst; /* bucket size */
};

struct gw_health_check {
	enum gw_hc_type type;
	const char *path; /* HTTP: request target, "/" by default */
	uint32_t interval_ms, timeout_ms;
	uint32_t healthy, unhealthy; /* consecutive results that change the state */
	uint16_t status_min, status_max;
};

struct gw_target_conf {
	const char *id;
	const char *address; /* as written: "10.9.0.2:8080" */
	struct sockaddr_storage addr;
	socklen_t addr_len;
	uint32_t weight;
	const char *region; /* NULL: none */
	struct gw_health_check hc;
};

struct gw_rule {
	const char *path_prefix; /* NULL: any; a trailing '*' is implied: prefix match */
	const char *path_exact;	 /* NULL: any */
	uint32_t methods;	 /* bit (1 << sg_http_method), 0: any; SG_HTTP_M_OTHER never matches */
	const char *header_name; /* NULL: any */
	const char *header_value; /* NULL: the field is present */
	struct gw_cidr *sources;
	size_t n_sources;
	enum gw_action action;
};

/* OpenID Connect relying party (auth "login"): the issuer's discovery document names its
 * endpoints and keys; the gateway is a public client using PKCE (RFC 7636), with an optional
 * client secret for providers that require one. */
struct gw_oidc_conf {
	const char *issuer;	   /* https://idp.example.com (discovery at /.well-known/...) */
	const char *client_id;
	const char *client_secret; /* NULL: none (public client) */
	const char *scopes;	   /* "openid email" by default */
	const char *redirect_path; /* "/.sg/oidc/callback" by default, on each of the domains */
	const char *ca_file;	   /* NULL: the system's trust store */
};

struct gw_resource_conf {
	const char *id;
	const char *name;
	const char *site; /* site id; targets must be inside its networks */
	enum gw_proto proto;
	const char **domains; /* lowercase; "*.example.com" matches one more label */
	size_t n_domains;
	uint16_t port; /* tcp/udp: public port */
	enum gw_auth auth;
	struct gw_oidc_conf oidc; /* auth login */
	uint8_t (*api_keys)[48]; /* SHA-384 of each accepted bearer key */
	size_t n_api_keys;
	enum gw_lb lb;
	const char *sticky_cookie; /* NULL: no sticky sessions */
	struct gw_rate rate_source, rate_resource;
	uint64_t max_body;
	struct gw_cidr *allow, *deny;
	size_t n_allow, n_deny;
	struct gw_rule *rules;
	size_t n_rules;
	const char *tls_cert, *tls_key; /* PEM files for this resource's domains, or NULL */
	uint32_t max_conns;	  /* tcp/udp: concurrent connections or flows */
	uint32_t idle_timeout_ms; /* tcp/udp: idle flows are closed */
	uint32_t connect_timeout_ms, response_timeout_ms;
	uint32_t retries; /* further targets tried for an idempotent request */
	uint32_t eject_ms, eject_after; /* passive health: eject after N consecutive errors */
	struct gw_target_conf *targets;
	size_t n_targets;
};

struct gw_site_conf {
	const char *id;
	const char *name;
	struct gw_cidr *networks;
	size_t n_networks;
};

struct gw_limits {
	uint32_t max_conns, max_conns_per_source;
	uint32_t header_timeout_ms; /* whole request head, from its first byte (slowloris) */
	uint32_t idle_timeout_ms;   /* keep-alive wait for the next request */
	uint32_t body_timeout_ms;   /* no progress while reading a body */
	uint32_t max_head, max_target, max_headers;
	uint64_t max_body; /* default for resources */
};

struct gw_conf {
	uint64_t serial; /* the server's version of this config; 0 for a local file */
	const char *id;	 /* the gateway's id at the management server (NULL: a local file) */
	const char *name;
	const char *region; /* this gateway's region, for region-aware balancing */
	struct gw_limits limits;
	struct gw_site_conf *sites;
	size_t n_sites;
	struct gw_resource_conf *resources;
	size_t n_resources;

	/* The document as accepted (for saving); owned. */
	char *json;
	size_t json_len;
	struct gw_arena *arena;
};

/* Parses and validates a document. On failure *out is NULL and err says what and where.
 * 0 or SG_EPARSE / SG_EINVAL / SG_ENOMEM. */
int gw_conf_parse(const char *json, size_t len, struct gw_conf **out, char *err,
		  size_t errlen) SG_WUR;
void gw_conf_free(struct gw_conf *c);

/* Every problem of a document, not only the first: cb gets each with the field's path
 * ("resources[1].targets[0].weight", "" for the document as a whole) and what is wrong. Returns
 * the number of problems (0: the document is valid, as gw_conf_parse would accept it), or
 * SG_ENOMEM. The management server checks the documents it renders with it. */
typedef void (*gw_conf_problem_fn)(void *ctx, const char *path, const char *detail);
int gw_conf_check(const char *json, size_t len, gw_conf_problem_fn cb, void *ctx) SG_WUR;

/* Reads and parses a file (at most GW_CONF_MAX_BYTES). err names the file. */
int gw_conf_load_file(const char *path, struct gw_conf **out, char *err, size_t errlen) SG_WUR;

/* Writes c->json to dir/config.json (0600) atomically. 0 or a negative errno with err. */
int gw_conf_save(const struct gw_conf *c, const char *dir, char *err, size_t errlen) SG_WUR;

/* Resource lookup by host (lowercase or not; a port suffix is ignored): exact domain first,
 * then "*.parent". NULL when no HTTP resource serves it. */
const struct gw_resource_conf *gw_conf_find_host(const struct gw_conf *c, const char *host,
						 size_t len);

/* Address in CIDR (family must match; IPv4-mapped IPv6 sources are compared as IPv4). */
bool gw_cidr_match(const struct gw_cidr *c, int family, const uint8_t *addr);

const char *gw_proto_name(enum gw_proto p);

/* A host name as resources take it (RFC 1123 labels, any case; "*.name" when wildcard). */
bool gw_domain_ok(const char *s, bool wildcard);

#endif
