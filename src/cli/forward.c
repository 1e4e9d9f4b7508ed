/* secureguard forward [--config FILE] [--tcp] [--udp] [-v] REMOTE:PORT LOCAL:PORT
 *
 * Port forwarding through a tunnel as a normal user (no TUN device, no CAP_NET_ADMIN): the
 * tunnel runs in this process on libsecureguard's userspace stack (include/secureguard/sg.h,
 * the public API, as any app would use it). Listens on LOCAL and carries each TCP connection
 * (and, with --udp, each UDP client's datagrams) to REMOTE inside the tunnel, like `ssh -L`.
 * REMOTE is an address or a name inside the tunnel: with DNS in the config's [Interface] a name
 * is asked of those servers through the tunnel (sg_resolve), else of the system's resolver. The
 * config is a wg-quick file whose [Interface] has an Address. Ctrl-C stops.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <secureguard/sg.h>

#include "cli/cli.h"
#include "common/compiler.h"
#include "crypto/crypto.h"

/* UDP clients remembered at once, and how long one may stay silent before its socket in the
 * tunnel is closed. */
#define UDP_CLIENTS  256
#define UDP_IDLE_SEC 60

static volatile sig_atomic_t stop_requested;
static atomic_int active_conns;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* ---- TCP ---------------------------------------------------------------------------------- */

struct tcp_job {
	sg_engine *e;
	int client;
	struct sockaddr_storage remote;
	socklen_t remote_len;
};

static void *tcp_worker(void *arg)
{
	struct tcp_job *j = arg;
	int fd = -1;
	sg_result r =
	    sg_tcp_connect(j->e, (struct sockaddr *)&j->remote, j->remote_len, 15000, &fd);
	if (r != SG_EOK) {
		fprintf(stderr, "%s: connection through the tunnel failed: %s\n", CLI_PROG,
			r == SG_EAGAIN ? "timed out" : sg_strerror(r));
	} else {
		cli_relay(j->client, fd, &stop_requested);
		close(fd);
	}
	close(j->client);
	free(j);
	atomic_fetch_sub(&active_conns, 1);
	return NULL;
}

/* ---- UDP ---------------------------------------------------------------------------------- */

struct udp_client {
	struct sockaddr_storage addr;
	socklen_t len;
	sg_udp *u;
	time_t last;
};

struct udp_fwd {
	sg_engine *e;
	int local;
	struct sockaddr_storage remote;
	socklen_t remote_len;
	struct udp_client c[UDP_CLIENTS];
};

static struct udp_client *udp_client_for(struct udp_fwd *f, const struct sockaddr_storage *from,
					 socklen_t len, time_t now)
{
	struct udp_client *free_slot = NULL;
	for (int i = 0; i < UDP_CLIENTS; i++) {
		struct udp_client *c = &f->c[i];
		if (c->u && now - c->last > UDP_IDLE_SEC) {
			sg_udp_close(c->u);
			c->u = NULL;
		}
		if (c->u && c->len == len && !memcmp(&c->addr, from, len))
			return c;
		if (!c->u && !free_slot)
			free_slot = c;
	}
	if (!free_slot)
		return NULL; /* full: dropped, as UDP may be */
	struct sockaddr_storage any;
	memset(&any, 0, sizeof(any));
	any.ss_family = f->remote.ss_family;
	if (sg_udp_open(f->e, (struct sockaddr *)&any,
			any.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						  : sizeof(struct sockaddr_in),
			&free_slot->u) != SG_EOK)
		return NULL;
	memcpy(&free_slot->addr, from, len);
	free_slot->len = len;
	return free_slot;
}

static void *udp_main(void *arg)
{
	struct udp_fwd *f = arg;
	uint8_t *buf = malloc(65536);
	struct pollfd p[1 + UDP_CLIENTS];

	while (buf && !stop_requested) {
		int n = 1;
		p[0] = (struct pollfd){.fd = f->local, .events = POLLIN};
		int idx[1 + UDP_CLIENTS];
		for (int i = 0; i < UDP_CLIENTS; i++)
			if (f->c[i].u) {
				idx[n] = i;
				p[n++] = (struct pollfd){.fd = sg_udp_fd(f->c[i].u), .events = POLLIN};
			}
		if (poll(p, (nfds_t)n, 1000) <= 0)
			continue;
		time_t now = time(NULL);
		if (p[0].revents & POLLIN) {
			struct sockaddr_storage from;
			socklen_t flen = sizeof(from);
			ssize_t r = recvfrom(f->local, buf, 65536, 0, (struct sockaddr *)&from, &flen);
			struct udp_client *c = r >= 0 ? udp_client_for(f, &from, flen, now) : NULL;
			if (c) {
				c->last = now;
				(void)sg_udp_sendto(c->u, buf, (size_t)r, (struct sockaddr *)&f->remote,
						    f->remote_len);
			}
		}
		for (int k = 1; k < n; k++) {
			struct udp_client *c = &f->c[idx[k]];
			size_t len;
			if (!(p[k].revents & POLLIN) || !c->u)
				continue;
			while (sg_udp_recvfrom(c->u, buf, 65536, &len, NULL) == SG_EOK) {
				c->last = now;
				sendto(f->local, buf, SG_MIN(len, (size_t)65536), 0,
				       (struct sockaddr *)&c->addr, c->len);
			}
		}
	}
	for (int i = 0; i < UDP_CLIENTS; i++)
		sg_udp_close(f->c[i].u);
	free(buf);
	return NULL;
}

/* ---- the command -------------------------------------------------------------------------- */

static void forward_usage(FILE *f)
{
	fprintf(f,
		"Usage: %s forward [--config FILE] [--tcp] [--udp] [-v] REMOTE:PORT LOCAL:PORT\n"
		"  Carries connections to LOCAL:PORT through the tunnel of FILE (default\n"
		"  $XDG_CONFIG_HOME/secureguard/client.conf) to REMOTE:PORT, as a normal user.\n"
		"  TCP by default; --udp forwards UDP (both with --tcp --udp).\n",
		CLI_PROG);
}

int cli_cmd_forward(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'}, {"tcp", no_argument, NULL, 't'},
	    {"udp", no_argument, NULL, 'u'},	      {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},	      {NULL, 0, NULL, 0},
	};
	const char *config_path = NULL;
	char default_path[4096];
	bool tcp = false, udp = false, verbose = false;
	int opt, rc = 1;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:tuvh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 't':
			tcp = true;
			break;
		case 'u':
			udp = true;
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			forward_usage(stdout);
			return 0;
		default:
			forward_usage(stderr);
			return 1;
		}
	}
	if (argc - optind != 2) {
		forward_usage(stderr);
		return 1;
	}
	if (!tcp && !udp)
		tcp = true;
	if (!config_path) {
		const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
		snprintf(default_path, sizeof(default_path), "%s%s/secureguard/client.conf",
			 xdg ? xdg : home ? home : ".", xdg ? "" : "/.config");
		config_path = default_path;
	}
	struct sockaddr_storage remote, local_tcp, local_udp;
	socklen_t remote_len, ltcp_len = 0, ludp_len = 0;
	char rhost[256], rport[16];
	if (cli_split_hostport(argv[optind], rhost, sizeof(rhost), rport, sizeof(rport)) != 0) {
		fprintf(stderr, "%s: `%s': not HOST:PORT (port 1-65535)\n", CLI_PROG, argv[optind]);
		return 1;
	}
	if ((tcp && cli_resolve_hostport(argv[optind + 1], true, SOCK_STREAM, &local_tcp,
					 &ltcp_len) != 0) ||
	    (udp &&
	     cli_resolve_hostport(argv[optind + 1], true, SOCK_DGRAM, &local_udp, &ludp_len) != 0))
		return 1;
	char *config = NULL;
	size_t config_len = 0;
	int err = cli_read_file(config_path, 1 << 20, &config, &config_len);
	if (err != 0) {
		fprintf(stderr, "%s: %s: %s\n", CLI_PROG, config_path, strerror(-err));
		return 1;
	}

	/* Local sockets first: a port in use fails before any tunnel comes up. */
	int ltcp = -1, ludp = -1, one = 1;
	if (tcp) {
		ltcp = socket(local_tcp.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		setsockopt(ltcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ltcp < 0 || bind(ltcp, (struct sockaddr *)&local_tcp, ltcp_len) != 0 ||
		    listen(ltcp, 64) != 0) {
			fprintf(stderr, "%s: listen on %s (TCP): %s\n", CLI_PROG, argv[optind + 1],
				strerror(errno));
			goto out;
		}
	}
	if (udp) {
		ludp = socket(local_udp.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (ludp < 0 || bind(ludp, (struct sockaddr *)&local_udp, ludp_len) != 0) {
			fprintf(stderr, "%s: bind %s (UDP): %s\n", CLI_PROG, argv[optind + 1],
				strerror(errno));
			goto out;
		}
	}

	struct sg_options o;
	sg_options_init(&o);
	o.packet_io = SG_IO_STACK;
	o.log = cli_sg_log;
	o.log_level = verbose ? SG_LOG_LEVEL_INFO : SG_LOG_LEVEL_WARN;
	o.event = cli_sg_event;
	sg_engine *e = NULL;
	char why[512];
	sg_result r = sg_init(&e, config, &o, why, sizeof(why));
	sg_memzero(config, config_len);
	free(config);
	config = NULL;
	if (r != SG_EOK) {
		fprintf(stderr, "%s: %s: %s\n", CLI_PROG, config_path, why[0] ? why : sg_strerror(r));
		goto out;
	}
	r = sg_connect(e);
	if (r != SG_EOK) {
		fprintf(stderr, "%s: starting the tunnel: %s\n", CLI_PROG, sg_strerror(r));
		sg_free(e);
		goto out;
	}
	/* REMOTE: a literal as it is; a name through the tunnel's DNS when the config has one,
	 * else the system's resolver. */
	r = sg_resolve(e, rhost, AF_UNSPEC, 10000, &remote, &remote_len, why, sizeof(why));
	if (r == SG_EINVAL && strstr(why, "no DNS"))
		r = cli_resolve_hostport(argv[optind], false, SOCK_STREAM, &remote, &remote_len) ==
			    0
			? SG_EOK
			: SG_ENOENT;
	else if (r != SG_EOK)
		fprintf(stderr, "%s: %s (DNS inside the tunnel): %s\n", CLI_PROG, rhost, why);
	if (r != SG_EOK) {
		sg_free(e);
		goto out;
	}
	if (remote.ss_family == AF_INET)
		((struct sockaddr_in *)&remote)->sin_port = htons((uint16_t)atoi(rport));
	else
		((struct sockaddr_in6 *)&remote)->sin6_port = htons((uint16_t)atoi(rport));
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	fprintf(stderr, "%s: forwarding %s%s%s %s -> %s through the tunnel (Ctrl-C stops)\n",
		CLI_PROG, tcp ? "TCP" : "", tcp && udp ? "+" : "", udp ? "UDP" : "",
		argv[optind + 1], argv[optind]);

	pthread_t udp_thread;
	struct udp_fwd *uf = NULL;
	if (udp) {
		uf = calloc(1, sizeof(*uf));
		if (uf) {
			uf->e = e;
			uf->local = ludp;
			uf->remote = remote;
			uf->remote_len = remote_len;
		}
		if (!uf || pthread_create(&udp_thread, NULL, udp_main, uf) != 0) {
			free(uf);
			uf = NULL;
			fprintf(stderr, "%s: UDP forwarding could not start\n", CLI_PROG);
		}
	}
	while (!stop_requested) {
		if (ltcp < 0) {
			pause();
			continue;
		}
		struct pollfd p = {.fd = ltcp, .events = POLLIN};
		if (poll(&p, 1, 1000) <= 0)
			continue;
		int c = accept4(ltcp, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		struct tcp_job *j = calloc(1, sizeof(*j));
		pthread_t t;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (j) {
			j->e = e;
			j->client = c;
			j->remote = remote;
			j->remote_len = remote_len;
			atomic_fetch_add(&active_conns, 1);
		}
		if (!j || pthread_create(&t, &attr, tcp_worker, j) != 0) {
			if (j)
				atomic_fetch_sub(&active_conns, 1);
			free(j);
			close(c);
		}
		pthread_attr_destroy(&attr);
	}
	fprintf(stderr, "%s: stopping\n", CLI_PROG);
	if (uf) {
		pthread_join(udp_thread, NULL);
		free(uf);
	}
	/* Ends the tunnel's connections: the relays see EOF and finish. */
	sg_disconnect(e);
	for (int i = 0; i < 50 && atomic_load(&active_conns) > 0; i++)
		usleep(100000);
	if (atomic_load(&active_conns) == 0)
		sg_free(e); /* (else the process exit takes it) */
	rc = 0;
out:
	if (config) {
		sg_memzero(config, config_len);
		free(config);
	}
	if (ltcp >= 0)
		close(ltcp);
	if (ludp >= 0)
		close(ludp);
	return rc;
}
