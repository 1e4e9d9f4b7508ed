/* The agent (`secureguard agent`, docs/AGENTS.md): registers a node with the management server,
 * waits on its configuration (the push channel, net/longpoll.h), applies it to the local tunnel
 * software through backends, watches the tunnels, repairs them and reports back; on
 * last-known-good configuration while the server is away.
 *
 * Files: agent.c (the command, the state machine, the server's API), state.c (the state
 * directory), desired.c (the server's configuration checked, and the plan of what changed),
 * be_vici.c (strongSwan's charon and secureguard-iked over VICI), be_wg.c (secureguardd over
 * its UAPI), metrics.c (Prometheus text and its listener).
 */
#ifndef SG_AGENT_AGENT_H
#define SG_AGENT_AGENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"

/* ---- backends: the design's IPsecManager operations ---------------------------------------
 * Each tunnel of the configuration goes to the backend of its type: "ipsec" tunnels to the
 * VICI backend (strongSwan's charon, or secureguard-iked, which speaks the same VICI),
 * "wireguard" tunnels to the UAPI backend (secureguardd). Windows (NetIPsec through
 * PowerShell's New-NetIPsecRule/Get-NetIPsecQuickModeSA) and macOS (IKEv2 configuration
 * profiles and scutil --nc) fill the same table; docs/AGENTS.md has the plan. Every operation
 * returns 0 or a negative SG_E* with why set (for the log and the report). */

enum agent_tstate { TS_DOWN = 0, TS_UP = 1, TS_CONNECTING = 2 };

struct agent_tstat {
	enum agent_tstate state;
	char reason[192];   /* why it is down, when known */
	bool loaded;	    /* the backend has the tunnel's configuration */
	uint64_t bytes_in, bytes_out, packets_in, packets_out; /* of the current SA */
	uint64_t sa_id;	    /* changes when the SA is rekeyed (0: none) */
	int64_t established_at; /* unix seconds, 0 when not up */
	uint64_t activity;	/* changes when something worth reporting did (a handshake) */
};

struct agent_backend;

struct agent_backend_ops {
	const char *type; /* the tunnel type it takes: "ipsec" or "wireguard" */
	/* ValidateConfig: what the node must have (certificate files ...). */
	int (*validate)(struct agent_backend *b, json_t *t, char *why, size_t n);
	/* CreateTunnel (loads it, and starts it when start_action is start). */
	int (*create)(struct agent_backend *b, json_t *t, char *why, size_t n);
	/* UpdateTunnel: from old to t, keeping what it can. */
	int (*update)(struct agent_backend *b, json_t *old, json_t *t, char *why, size_t n);
	/* DeleteTunnel. */
	int (*remove)(struct agent_backend *b, json_t *t, char *why, size_t n);
	/* StartTunnel: brings it up (the watchdog's restart). */
	int (*start)(struct agent_backend *b, json_t *t, char *why, size_t n);
	/* GetTunnelStatus, GetStatistics and GetSAInfo at once. */
	int (*status)(struct agent_backend *b, json_t *t, struct agent_tstat *st);
	/* Extra report data for the server (WireGuard peers), appended to out; may be NULL. */
	void (*report)(struct agent_backend *b, json_t *t, json_t *out);
	/* Cleanup. */
	void (*free)(struct agent_backend *b);
};

struct agent_backend {
	const struct agent_backend_ops *ops;
	char name[32]; /* as reported: "strongswan", "iked", "secureguardd" */
	void *priv;
};

/* VICI at uri (NULL: strongSwan's default socket); x509_dir: where local_cert files are;
 * timeout_ms bounds every request, init_ms how long an initiation is waited for. */
int agent_vici_new(struct agent_backend **out, const char *uri, const char *x509_dir,
		   int timeout_ms, int init_ms) SG_WUR;
/* secureguardd; configuration files go to dir (0700). self: this program, for `up`/`down`. */
int agent_wg_new(struct agent_backend **out, const char *dir, const char *self) SG_WUR;

/* ---- the configuration (desired.c) -------------------------------------------------------- */

#define AGENT_MAX_TUNNELS 4096
#define AGENT_NAME_MAX	  200

/* Checks a configuration document from the server (or the state directory) before anything of
 * it is used: types, names, sizes. 0, or SG_EPARSE with why naming the field. */
int agent_config_check(json_t *doc, char *why, size_t n) SG_WUR;
/* The digest that decides whether a tunnel changed: SHA-384 (hex) of its canonical JSON, less
 * what does not change the tunnel (policy version and name, priority). */
void agent_tunnel_hash(json_t *t, char out[97]);

/* ---- the state directory (state.c) -------------------------------------------------------- */

/* Creates dir (0700) if needed; refuses one that group or others can write. */
int agent_state_dir(const char *dir, char *why, size_t n) SG_WUR;
/* Writes a file atomically (temporary, fsync, rename) with mode 0600. */
int agent_state_write(const char *dir, const char *name, const char *data, size_t len) SG_WUR;
/* The same for JSON (compact, sorted keys). */
int agent_state_write_json(const char *dir, const char *name, json_t *j) SG_WUR;
/* Reads a JSON file of at most 64 MiB; NULL when absent or bad (why set). */
json_t *agent_state_read_json(const char *dir, const char *name, char *why, size_t n);
/* The agent's X25519 key pair: read, or made (mode 0600) when make is true. */
int agent_state_key(const char *dir, bool make, uint8_t priv[32], uint8_t pub[32], char *why,
		    size_t n) SG_WUR;

/* ---- metrics (metrics.c) ------------------------------------------------------------------ */

struct agent;
/* The Prometheus text of the agent's state (malloc'd). */
char *agent_metrics_text(struct agent *a, size_t *len);
/* Listens on host:port for GET /metrics on the agent's loop. */
int agent_metrics_listen(struct agent *a, const char *hostport, char *why, size_t n) SG_WUR;
/* True when buf (a request head) asks for the metrics. */
bool agent_metrics_request_ok(const char *buf, size_t len);

/* ---- commands ------------------------------------------------------------------------------ */

/* `secureguard agent ...`; argv[0] is "agent". */
int sg_agent_cmd(int argc, char **argv);

#endif
