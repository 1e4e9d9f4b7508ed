/* Policies of the agents issue (docs/AGENTS.md): the checks a policy must pass, and how the
 * policies expand into the tunnels of one managed node ("peer"). Pure functions over jansson
 * values: no database, no I/O, so they are unit-tested and fuzzed directly (tests/unit/policy.c,
 * tests/fuzz/fuzz_policy.c); routes_agents.c supplies the lookups and secrets.
 *
 * A tunnel's fields take the names of strongSwan's swanctl.conf (connections.<conn> and its
 * children): version, local_addrs, remote_addrs, local_ts, remote_ts, proposals, esp_proposals,
 * ah_proposals, auth (psk or pubkey), secret, local_id, remote_id, local_cert, rekey_time,
 * life_time, dpd_delay, dpd_action, mode, start_action, encap. A tunnel of type "wireguard"
 * names a SecureGuard client (client_id) whose configuration the node runs.
 *
 * A policy either lists its tunnels and the peers they apply to (applies_to: peer ids or tags),
 * or describes a topology over tags whose one tunnel is the template of every pair:
 * site-to-site (every peer of left with every peer of right), hub-and-spoke (every spoke with
 * every hub; spokes reach each other through the hub), mesh (every pair of members: N(N-1)/2).
 */
#ifndef SG_SERVER_POLICY_H
#define SG_SERVER_POLICY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Bounds (also in the API description). */
#define POL_NAME_MAX	   64 /* policy, tunnel and tag names */
#define POL_PEER_NAME_MAX  32
#define POL_SECRET_MIN	   8
#define POL_SECRET_MAX	   256
#define POL_LIFETIME_MIN   300	 /* 5 minutes */
#define POL_LIFETIME_MAX   86400 /* 24 hours */
#define POL_DEFAULT_REKEY  3600
#define POL_DEFAULT_DPD	   30
#define POL_DPD_MAX	   3600
#define POL_MAX_SELECTORS  64
#define POL_MAX_TUNNELS	   64

struct pol_peer;

/* Lookups the checks need from the store; NULL skips that check. */
struct pol_lookup {
	bool (*peer_exists)(void *ctx, const char *id);
	bool (*client_exists)(void *ctx, const char *id);
	void *ctx;
	/* The peers, for certificate references that exist: each peer a policy selects must
	 * have its local_cert (with the key) as its agent last reported (certs); NULL skips. */
	const struct pol_peer *peers;
	size_t npeers;
};

/* Checks a whole policy (after the API description's type checks: every field has its JSON
 * type). Each problem is appended to errors, each caveat to warnings, as {"field", "detail"}
 * with the field as a path ("tunnels[1].esp_proposals[0]"). Returns the number of errors. */
size_t pol_check(json_t *pol, const struct pol_lookup *lk, json_t *errors, json_t *warnings);

/* One IKE, ESP or AH proposal in strongSwan's syntax ("aes256gcm16-prfsha256-x25519"):
 * 0 when valid, else -1 with why set. aead reports an AEAD cipher (GCM, CCM, ChaCha20-Poly1305);
 * weak an algorithm kept for compatibility only (3DES, MD5, modp1024, ...), named in weak_name. */
enum pol_proto { POL_IKE, POL_ESP, POL_AH };
int pol_proposal_check(const char *prop, enum pol_proto proto, bool *aead, const char **weak_name,
		       char *why, size_t whylen);

/* A managed node as the expansion (and pol_check's certificate check) sees it. */
struct pol_peer {
	const char *id, *name, *address, *platform;
	const char *tags;    /* comma-separated */
	const char *subnets; /* comma-separated prefixes */
	/* The certificate files (with their keys) of its x509 directory, comma-separated, as its
	 * agent last reported them; NULL when it has not reported them (only pol_check reads it).
	 */
	const char *certs;
};

/* Gives a tunnel's pre-shared key: a stored one (sealed; open it) or one derived for a
 * topology pair. Each returns a malloc'd secret (wiped and freed by the caller) or NULL. */
struct pol_secrets {
	/* The stored secret of a tunnel of a policy, sealed as the store keeps it. */
	char *(*open)(void *ctx, const char *policy_id, const char *sealed);
	/* A key for the pair's tunnel name, the same on both sides and on every server. */
	char *(*derive)(void *ctx, const char *policy_id, const char *tunnel_name);
	void *ctx;
};

/* The tunnels of peers[self] from every enabled policy (policies: an array of stored policies,
 * highest priority first, each with its "secrets" object as pol_split_secrets made it). Each tunnel is complete: defaults filled, addresses and traffic
 * selectors resolved, the secret in clear, policy_id/policy_name/policy_version added.
 * problems (may be NULL) gets strings about what could not be expanded (a peer without an
 * address, two policies naming one tunnel). NULL only out of memory. */
json_t *pol_expand(json_t *policies, const struct pol_peer *peers, size_t npeers, size_t self,
		   const struct pol_secrets *sec, json_t *problems);

/* True when item is one of the comma-separated list. */
bool pol_list_has(const char *list, const char *item);
/* True when peer matches a selector list (peer ids or tags). */
bool pol_selects(json_t *selectors, const struct pol_peer *peer);

/* The stored form of a tunnel list: the tunnels without their secrets (each with has_secret)
 * and, in *secrets, an object from tunnel name ("" for an unnamed template) to the sealed
 * secret (seal() gives the sealed text). A tunnel sent without a secret keeps its entry of
 * old_secrets (may be NULL), so a policy read, changed and written back keeps its keys.
 * Returns the new array, or NULL (out of memory, a seal failure) with *secrets NULL. */
json_t *pol_split_secrets(json_t *tunnels, json_t *old_secrets,
			  char *(*seal)(void *ctx, const char *s), void *ctx, json_t **secrets);

/* Valid as a peer name (a host name label: letters, digits, '-', 1..32, not starting with '-')
 * and as a tag ([A-Za-z0-9._-], 1..64). */
bool pol_peer_name_ok(const char *s);
bool pol_tag_ok(const char *s);

#endif
