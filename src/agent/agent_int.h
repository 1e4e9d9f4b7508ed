/* Internals of the agent shared by agent.c, agent_cmd.c and metrics.c. */
#ifndef SG_AGENT_AGENT_INT_H
#define SG_AGENT_AGENT_INT_H

#include <stdint.h>

#include "agent/agent.h"
#include "net/evloop.h"
#include "net/httpc.h"
#include "net/longpoll.h"

/* A tunnel the agent applied, with what the watchdog and the metrics keep about it. */
struct tun {
	char name[AGENT_NAME_MAX + 1];
	char hash[97];	/* agent_tunnel_hash of t */
	json_t *t;	/* as applied (secrets included) */
	struct agent_backend *be;
	struct agent_tstat st; /* at the last check */
	char reason[192];      /* why it is not up */
	int streak;	       /* watchdog restarts in the current outage */
	uint64_t next_try;     /* monotonic ns: the next restart */
	bool failed;	       /* the watchdog gave up */
	int restarts;	       /* watchdog restarts, ever */
	/* Counters of SAs that were rekeyed away, and the rekeys. */
	uint64_t rekeys, base_in, base_out, base_pin, base_pout;
};

struct agent {
	/* Options. */
	const char *server, *state_dir, *enroll, *ifname, *address, *vici_uri, *x509_dir;
	const char *ca_file, *metrics_listen;
	char name[64];
	char self[1024];
	json_t *subnets;
	int monitor_s, restart_s, max_restarts, wait_s, poll_s;
	/* Identity. */
	uint8_t priv[32], pub[32];
	char pub64[48], id[40];
	bool registered;
	char session[80], auth_hdr[112];
	const char *hdrs[2];
	/* I/O. */
	struct evloop *loop;
	struct sg_httpc *http;
	struct sg_longpoll *lp;
	int tfd, afd, sfd, mfd;
	struct evloop_source tsrc, asrc, ssrc, msrc;
	/* Configuration and tunnels. */
	json_t *desired; /* the last good configuration (also desired.json) */
	char revision[160];
	struct tun *tuns;
	size_t ntuns, cap;
	json_t *errors; /* what failed to apply, for the report */
	json_t *certs;	/* the x509 directory's certificates with keys, as last scanned */
	json_t *cert_expiry; /* their validity: [{name, not_after, subject}] (the dashboard's) */
	bool no_cert_expiry; /* the server refused it (an older release): reports leave it out */
	bool retry_apply;
	int apply_tries;
	uint64_t retry_at;
	struct agent_backend *vici, *wg;
	/* Progress. */
	bool authing, reporting, server_ok, dirty;
	int auth_failures;
	uint64_t auth_at, last_report_ns, started_ns;
	int64_t last_sync;
	unsigned long sync_errors;
	bool stop;
	int exit_code;
};

void agent_register(struct agent *a);
/* Starts: applies the last-known-good configuration, then registers or logs in. */
void agent_begin(struct agent *a);
int agent_load_applied(struct agent *a);
void agent_on_tick(void *ctx, uint32_t events);
void agent_on_auth_timer(void *ctx, uint32_t events);

#endif
