/* `secureguard agent [options]` and `secureguard agent status`: the command line, the process
 * (signals, the loop), and the status a running agent leaves in its state directory. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent_int.h"
#include "cli/cli.h"
#include "common/log.h"
#include "common/logopt.h"
#include "config/key.h"
#include "crypto/crypto.h"
#include "secureguard/sg_errors.h"

#define DEFAULT_STATE "/var/lib/secureguard-agent"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: secureguard agent --server URL [--state-dir DIR] [--enroll TOKEN]\n"
		"                         [--interface IFNAME] [options]\n"
		"       secureguard agent status [--state-dir DIR] [--json]\n"
		"  --server URL            the management server (https://... or http://...)\n"
		"  --state-dir DIR         identity, last-known-good configuration, status\n"
		"                          (default " DEFAULT_STATE ", created 0700)\n"
		"  --enroll TOKEN          register with this one-time token (sge_...) when not\n"
		"                          registered yet\n"
		"  --name NAME             this node's name (default: the host name)\n"
		"  --interface IFNAME      the WireGuard interface of a bound client (default sg0)\n"
		"  --address IP            where other peers reach this node's IKE daemon\n"
		"  --subnet CIDR           a network behind this node (repeatable)\n"
		"  --vici URI              the IKE daemon's VICI socket (strongSwan's charon or\n"
		"                          secureguard-iked; default unix:///var/run/charon.vici)\n"
		"  --x509-dir DIR          certificates of local_cert (default /etc/swanctl/x509)\n"
		"  --ca-file FILE          trust for an HTTPS server (default: the system's)\n"
		"  --metrics-listen HOST:PORT   serve Prometheus metrics at /metrics\n"
		"  --monitor-interval SECS tunnel checks (default 10)\n"
		"  --restart-interval SECS between watchdog restarts (default 30)\n"
		"  --restarts N            restarts before a tunnel is reported failed (default 3)\n"
		"  --wait SECS             how long the server may hold a poll (default 50)\n"
		SG_LOG_USAGE
		"  -v, --verbose           the same as --log-level debug\n");
}

/* ---- status ------------------------------------------------------------------------------ */

static int status_cmd(int argc, char **argv)
{
	static const struct option opts[] = {{"state-dir", required_argument, NULL, 's'},
					     {"json", no_argument, NULL, 'j'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	const char *dir = DEFAULT_STATE;
	bool as_json = false;
	char why[512];
	json_t *s, *t;
	size_t i;
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (opt == 's')
			dir = optarg;
		else if (opt == 'j')
			as_json = true;
		else {
			usage(opt == 'h' ? stdout : stderr);
			return opt == 'h' ? 0 : 2;
		}
	}
	s = agent_state_read_json(dir, "status.json", why, sizeof(why));
	if (!s) {
		fprintf(stderr, "secureguard agent status: %s\n", why);
		return 1;
	}
	{
		json_int_t pid = json_integer_value(json_object_get(s, "pid"));
		bool alive = pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);

		json_object_set_new(s, "running", json_boolean(alive));
	}
	if (as_json) {
		char *text = json_dumps(s, JSON_INDENT(2) | JSON_SORT_KEYS);

		printf("%s\n", text ? text : "{}");
		free(text);
		json_decref(s);
		return 0;
	}
	printf("agent %s (%s)%s\n", json_string_value(json_object_get(s, "name")),
	       json_string_value(json_object_get(s, "id")),
	       json_is_true(json_object_get(s, "running")) ? "" : " - not running");
	printf("  server:    %s (%s)\n", json_string_value(json_object_get(s, "server")),
	       json_is_true(json_object_get(s, "server_reachable")) ? "reachable"
								     : "not reachable");
	{
		json_int_t last = json_integer_value(json_object_get(s, "last_sync"));

		if (last)
			printf("  last sync: %lld s ago, revision %.16s\n",
			       (long long)(time(NULL) - last),
			       json_string_value(json_object_get(s, "revision")));
		else
			printf("  last sync: never (running on the last-known-good configuration)\n");
	}
	printf("  state:     %s\n", json_string_value(json_object_get(s, "state")));
	printf("\n  %-32s %-9s %-12s %-10s %12s %12s %8s  %s\n", "TUNNEL", "TYPE", "BACKEND",
	       "STATE", "BYTES IN", "BYTES OUT", "RESTARTS", "REASON");
	json_array_foreach(json_object_get(s, "tunnels"), i, t)
	printf("  %-32s %-9s %-12s %-10s %12lld %12lld %8lld  %s\n",
	       json_string_value(json_object_get(t, "name")),
	       json_string_value(json_object_get(t, "type")),
	       json_string_value(json_object_get(t, "backend")),
	       json_string_value(json_object_get(t, "state")),
	       (long long)json_integer_value(json_object_get(t, "bytes_in")),
	       (long long)json_integer_value(json_object_get(t, "bytes_out")),
	       (long long)json_integer_value(json_object_get(t, "restarts")),
	       json_string_value(json_object_get(t, "reason"))
		   ? json_string_value(json_object_get(t, "reason"))
		   : "");
	json_array_foreach(json_object_get(s, "errors"), i, t)
	printf("  error: %s%s%s\n",
	       json_string_value(json_object_get(t, "tunnel"))
		   ? json_string_value(json_object_get(t, "tunnel"))
		   : "",
	       json_string_value(json_object_get(t, "tunnel")) ? ": " : "",
	       json_string_value(json_object_get(t, "detail")));
	json_decref(s);
	return fflush(stdout) ? 1 : 0;
}

/* ---- the agent --------------------------------------------------------------------------- */

static bool int_opt(const char *name, const char *v, long lo, long hi, int *out)
{
	char *end;
	long x;

	errno = 0;
	x = strtol(v, &end, 10);
	if (errno || *end || x < lo || x > hi) {
		fprintf(stderr, "secureguard agent: %s takes %ld to %ld\n", name, lo, hi);
		return false;
	}
	*out = (int)x;
	return true;
}

/* The host name as a peer name: letters, digits and '-' (the rest become '-'), at most 32. */
static void default_name(char out[64])
{
	char host[256] = "";
	size_t n = 0;

	gethostname(host, sizeof(host) - 1);
	for (const char *p = host; *p && *p != '.' && n < 32; p++)
		out[n++] = (char)(((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
				   (*p >= '0' && *p <= '9'))
				      ? *p
				      : '-');
	while (n && out[0] == '-') {
		memmove(out, out + 1, n - 1);
		n--;
	}
	out[n] = 0;
	if (!n)
		snprintf(out, 64, "node");
}

static void on_signal(void *ctx, uint32_t events)
{
	struct agent *a = ctx;
	struct signalfd_siginfo si;

	(void)events;
	if (read(a->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) { /* logrotate: the log file reopened by name */
			sg_log_reopen_request();
			sg_log(SG_LOG_INFO, "log_reopened", "signal=SIGHUP");
			return;
		}
		sg_log(SG_LOG_INFO, "agent_stopping", "signal=%s",
		       si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
		a->stop = true;
	}
}

enum {
	O_SERVER = 256,
	O_STATE,
	O_ENROLL,
	O_NAME,
	O_IFNAME,
	O_ADDRESS,
	O_SUBNET,
	O_VICI,
	O_X509,
	O_CA,
	O_METRICS,
	O_MONITOR,
	O_RESTART,
	O_RESTARTS,
	O_WAIT,
};

static int setup(struct agent *a, char *why, size_t n)
{
	char wgdir[4096];
	json_t *me;
	int rc;
	sigset_t set;

	rc = agent_state_dir(a->state_dir, why, n);
	if (rc)
		return rc;
	me = agent_state_read_json(a->state_dir, "agent.json", why, n);
	if (me) {
		const char *id = json_string_value(json_object_get(me, "id"));
		const char *nm = json_string_value(json_object_get(me, "name"));

		if (!id || strlen(id) >= sizeof(a->id)) {
			snprintf(why, n, "%s/agent.json: no agent id", a->state_dir);
			json_decref(me);
			return SG_EPARSE;
		}
		snprintf(a->id, sizeof(a->id), "%s", id);
		if (nm)
			snprintf(a->name, sizeof(a->name), "%s", nm);
		a->registered = true;
		json_decref(me);
	} else if (!a->enroll) {
		snprintf(why, n,
			 "not registered yet (%s/agent.json): give an enrolment token with "
			 "--enroll",
			 a->state_dir);
		return SG_ENOENT;
	}
	rc = agent_state_key(a->state_dir, !a->registered, a->priv, a->pub, why, n);
	if (rc)
		return rc;
	sg_key_to_base64(a->pub64, a->pub);
	snprintf(wgdir, sizeof(wgdir), "%s/wg", a->state_dir);
	if (agent_wg_new(&a->wg, wgdir, a->self) ||
	    agent_vici_new(&a->vici, a->vici_uri, a->x509_dir, 5000,
			   a->restart_s * 1000 < 8000 ? SG_MAX(a->restart_s * 1000, 1000) : 8000)) {
		snprintf(why, n, "%.400s: cannot set up the backends", wgdir);
		return SG_EIO;
	}
	if (evloop_new(&a->loop) || sg_httpc_new(&a->http, a->loop)) {
		snprintf(why, n, "cannot start the event loop or the HTTP client");
		return SG_ENOMEM;
	}
	a->tfd = evloop_timer_new();
	a->afd = evloop_timer_new();
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	a->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (a->tfd < 0 || a->afd < 0 || a->sfd < 0 ||
	    evloop_add(a->loop, &a->tsrc, a->tfd, EPOLLIN, agent_on_tick, a) ||
	    evloop_add(a->loop, &a->asrc, a->afd, EPOLLIN, agent_on_auth_timer, a) ||
	    evloop_add(a->loop, &a->ssrc, a->sfd, EPOLLIN, on_signal, a) ||
	    evloop_timer_arm(a->tfd, evloop_now_ns() + (uint64_t)a->monitor_s * 1000000000ull)) {
		snprintf(why, n, "cannot set up timers and signals: %s", strerror(errno));
		return SG_EIO;
	}
	if (a->metrics_listen && agent_metrics_listen(a, a->metrics_listen, why, n))
		return SG_EIO;
	return 0;
}

static void teardown(struct agent *a)
{
	sg_longpoll_free(a->lp);
	sg_httpc_free(a->http);
	for (size_t i = 0; i < a->ntuns; i++)
		json_decref(a->tuns[i].t);
	free(a->tuns);
	if (a->vici)
		a->vici->ops->free(a->vici);
	if (a->wg)
		a->wg->ops->free(a->wg);
	json_decref(a->desired);
	json_decref(a->errors);
	json_decref(a->certs);
	json_decref(a->cert_expiry);
	json_decref(a->subnets);
	if (a->loop)
		evloop_free(a->loop);
	for (int *fd = (int[]){a->tfd, a->afd, a->sfd, a->mfd}, k = 0; k < 4; k++) {
		if (fd[k] > 0)
			close(fd[k]);
	}
	sg_memzero(a->priv, sizeof(a->priv));
	sg_memzero(a->session, sizeof(a->session));
	sg_memzero(a->auth_hdr, sizeof(a->auth_hdr));
}

int sg_agent_cmd(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"server", required_argument, NULL, O_SERVER},
	    {"state-dir", required_argument, NULL, O_STATE},
	    {"enroll", required_argument, NULL, O_ENROLL},
	    {"name", required_argument, NULL, O_NAME},
	    {"interface", required_argument, NULL, O_IFNAME},
	    {"address", required_argument, NULL, O_ADDRESS},
	    {"subnet", required_argument, NULL, O_SUBNET},
	    {"vici", required_argument, NULL, O_VICI},
	    {"x509-dir", required_argument, NULL, O_X509},
	    {"ca-file", required_argument, NULL, O_CA},
	    {"metrics-listen", required_argument, NULL, O_METRICS},
	    {"monitor-interval", required_argument, NULL, O_MONITOR},
	    {"restart-interval", required_argument, NULL, O_RESTART},
	    {"restarts", required_argument, NULL, O_RESTARTS},
	    {"wait", required_argument, NULL, O_WAIT},
	    SG_LOG_LONGOPTS,
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct agent a = {.state_dir = DEFAULT_STATE, .monitor_s = 10, .restart_s = 30,
			  .max_restarts = 3, .wait_s = 50, .poll_s = 60, .tfd = -1, .afd = -1,
			  .sfd = -1, .mfd = -1};
	char why[512] = "";
	struct sg_logopt logopt;
	ssize_t sl;
	int opt;

	if (argc >= 2 && !strcmp(argv[1], "status"))
		return status_cmd(argc - 1, argv + 1);
	a.subnets = json_array();
	a.errors = json_array();
	default_name(a.name);
	sg_logopt_init(&logopt);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (opt) {
		case O_SERVER:
			a.server = optarg;
			break;
		case O_STATE:
			a.state_dir = optarg;
			break;
		case O_ENROLL:
			a.enroll = optarg;
			break;
		case O_NAME:
			if (strlen(optarg) >= sizeof(a.name)) {
				fprintf(stderr, "secureguard agent: --name is at most 32 characters\n");
				goto usage;
			}
			snprintf(a.name, sizeof(a.name), "%s", optarg);
			break;
		case O_IFNAME:
			a.ifname = optarg;
			break;
		case O_ADDRESS:
			a.address = optarg;
			break;
		case O_SUBNET:
			json_array_append_new(a.subnets, json_string(optarg));
			break;
		case O_VICI:
			a.vici_uri = optarg;
			break;
		case O_X509:
			a.x509_dir = optarg;
			break;
		case O_CA:
			a.ca_file = optarg;
			break;
		case O_METRICS:
			a.metrics_listen = optarg;
			break;
		case O_MONITOR:
			if (!int_opt("--monitor-interval", optarg, 1, 3600, &a.monitor_s))
				goto usage;
			break;
		case O_RESTART:
			if (!int_opt("--restart-interval", optarg, 1, 3600, &a.restart_s))
				goto usage;
			break;
		case O_RESTARTS:
			if (!int_opt("--restarts", optarg, 0, 100, &a.max_restarts))
				goto usage;
			break;
		case O_WAIT:
			if (!int_opt("--wait", optarg, 0, 300, &a.wait_s))
				goto usage;
			break;
		case 'v':
			logopt.level = SG_LOG_DEBUG;
			break;
		case 'h':
			usage(stdout);
			json_decref(a.subnets);
			json_decref(a.errors);
			return 0;
		default:
			if (sg_logopt_parse(&logopt, opt, optarg, "secureguard agent") != 1)
				goto usage;
		}
	}
	if (optind != argc || !a.server ||
	    (strncmp(a.server, "http://", 7) && strncmp(a.server, "https://", 8))) {
		fprintf(stderr, "secureguard agent: --server http(s)://HOST[:PORT] is required\n");
		goto usage;
	}
	if (a.ifname && !cli_ifname_valid(a.ifname)) {
		fprintf(stderr, "secureguard agent: --interface: not an interface name\n");
		goto usage;
	}
	sl = readlink("/proc/self/exe", a.self, sizeof(a.self) - 1);
	if (sl <= 0) {
		fprintf(stderr, "secureguard agent: cannot find its own program\n");
		goto fail;
	}
	a.self[sl] = 0;
	if (sg_crypto_init()) {
		snprintf(why, sizeof(why), "the crypto library does not initialise");
		goto fail;
	}
	sg_log_open("secureguard-agent", SG_LOG_TO_STDERR);
	if (sg_logopt_apply(&logopt, "secureguard-agent", why, sizeof(why)))
		goto fail;
	if (setup(&a, why, sizeof(why)))
		goto fail;
	a.started_ns = evloop_now_ns();
	sg_log(SG_LOG_INFO, "agent_started",
	       "agent=%s name=%s server=%s registered=%s version=" SG_VERSION " pid=%d",
	       a.id[0] ? a.id : "-", a.name, a.server, a.registered ? "yes" : "no",
	       (int)getpid());
	agent_begin(&a);
	while (!a.stop)
		(void)evloop_run_once(a.loop, 1000);
	/* The tunnels stay: an agent restarted or stopped leaves them to run. */
	sg_log(SG_LOG_INFO, "agent_stopped", "exit=%d", a.exit_code);
	teardown(&a);
	return a.exit_code;
usage:
	usage(stderr);
	json_decref(a.subnets);
	json_decref(a.errors);
	return 2;
fail:
	fprintf(stderr, "secureguard agent: %s\n", why);
	teardown(&a);
	return 1;
}
