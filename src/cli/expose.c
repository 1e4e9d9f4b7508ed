/* secureguard expose [options] LOCAL:PORT http|tcp|udp
 *
 * Makes a service on this machine reachable through a gateway, as a normal user (no TUN device,
 * no CAP_NET_ADMIN): the exchange with the management server is its /api/v1/services API
 * (docs/openapi.json); docs/EMBEDDING.md ("Commands built on it") is the user's view.
 *
 *   1. a key pair of its own (the private key never leaves this process);
 *   2. POST /api/v1/services: the server makes a client in the gateway's expose network, a
 *      resource on the gateway (NAME.domain for http, a public port for tcp/udp) whose one
 *      target is that client's tunnel address, and answers the public URL and the tunnel config;
 *   3. the tunnel up in this process (libsecureguard's userspace stack, the public API as any
 *      app uses it), listening inside the tunnel on tunnel.listen;
 *   4. every connection (http, tcp) or datagram (udp) the gateway sends there is carried to
 *      LOCAL; bytes only, nothing is parsed;
 *   5. the public URL printed once the gateway runs a document with it (status "active");
 *   6. Ctrl-C (SIGINT/SIGTERM): DELETE /api/v1/services/{id}, then the tunnel goes down.
 *
 * The server talk is the one HTTP client (src/net/httpc.c, libcurl on the event loop), waited
 * for on a loop of its own: this command has nothing else to do meanwhile.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <secureguard/sg.h>

#include "cli/api.h"
#include "cli/cli.h"
#include "common/compiler.h"
#include "config/key.h"
#include "crypto/crypto.h"
#include "net/evloop.h"
#include "net/httpc.h"

#define UDP_PEERS      256 /* gateway sources remembered at once (each has a local socket) */
#define UDP_IDLE_SEC   60
#define RECHECK_SEC    30 /* how often a running service is looked up (deleted elsewhere?) */
#define TOKEN_MAX      4096
#define DELETE_TRIES   3

static volatile sig_atomic_t stop_requested;
static atomic_int active_conns;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* ---- the server's API ---------------------------------------------------------------------- */

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* DELETE /api/v1/services/{id}, tried again on no answer (the server may be restarting). */
static bool delete_service(struct cli_api *a, const char *id)
{
	char path[256], why[512];
	struct cli_api_call c;

	snprintf(path, sizeof(path), "/api/v1/services/%s", id);
	for (int i = 0; i < DELETE_TRIES; i++) {
		long st = cli_api_call(a, "DELETE", path, NULL, &c);
		cli_api_complaint(why, sizeof(why), &c);
		json_decref(c.body);
		if (st == 204 || st == 404) /* 404: already gone */
			return true;
		if (st) /* an answer that is not "done": trying again changes nothing */
			break;
		sleep(1);
	}
	fprintf(stderr,
		"%s: the service %s could not be removed: %s\n"
		"  remove it with: DELETE %s%s\n",
		CLI_PROG, id, why, a->base, path);
	return false;
}

/* ---- TCP (http, tcp): the gateway's connections to LOCAL ------------------------------------- */

struct tcp_job {
	int tunnel;
	struct sockaddr_storage local;
	socklen_t local_len;
	const char *local_spec;
};

static void *tcp_worker(void *arg)
{
	struct tcp_job *j = arg;
	int fd = socket(j->local.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&j->local, j->local_len) != 0) {
		/* Closing the tunnel side tells the gateway at once (it answers 502 for http). */
		fprintf(stderr, "%s: %s: %s (a connection from the gateway closed)\n", CLI_PROG,
			j->local_spec, strerror(errno));
	} else {
		cli_relay(j->tunnel, fd, &stop_requested);
	}
	if (fd >= 0)
		close(fd);
	close(j->tunnel);
	free(j);
	atomic_fetch_sub(&active_conns, 1);
	return NULL;
}

struct tcp_server {
	sg_listener *l;
	struct sockaddr_storage local;
	socklen_t local_len;
	const char *local_spec;
};

static void *tcp_main(void *arg)
{
	struct tcp_server *s = arg;
	pthread_attr_t attr;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	while (!stop_requested) {
		struct pollfd p = {.fd = sg_listener_fd(s->l), .events = POLLIN};
		if (poll(&p, 1, 500) <= 0)
			continue;
		int fd = -1;
		if (sg_tcp_accept(s->l, &fd, NULL) != SG_EOK)
			continue;
		struct tcp_job *j = calloc(1, sizeof(*j));
		pthread_t t;
		if (j) {
			j->tunnel = fd;
			j->local = s->local;
			j->local_len = s->local_len;
			j->local_spec = s->local_spec;
			atomic_fetch_add(&active_conns, 1);
		}
		if (!j || pthread_create(&t, &attr, tcp_worker, j) != 0) {
			if (j)
				atomic_fetch_sub(&active_conns, 1);
			free(j);
			close(fd);
		}
	}
	pthread_attr_destroy(&attr);
	return NULL;
}

/* ---- UDP: datagrams from the gateway to LOCAL and the answers back ----------------------------
 */

struct udp_peer {
	struct sockaddr_storage from; /* the gateway's side inside the tunnel */
	int fd;			      /* connected to LOCAL; -1: free */
	time_t last;
};

struct udp_server {
	sg_udp *u;
	struct sockaddr_storage local;
	socklen_t local_len;
	struct udp_peer p[UDP_PEERS];
};

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
	return x->sin6_port == y->sin6_port && !memcmp(&x->sin6_addr, &y->sin6_addr, 16);
}

static struct udp_peer *udp_peer_for(struct udp_server *s, const struct sockaddr_storage *from,
				     time_t now)
{
	struct udp_peer *free_slot = NULL;

	for (int i = 0; i < UDP_PEERS; i++) {
		struct udp_peer *p = &s->p[i];
		if (p->fd >= 0 && now - p->last > UDP_IDLE_SEC) {
			close(p->fd);
			p->fd = -1;
		}
		if (p->fd >= 0 && same_addr(&p->from, from))
			return p;
		if (p->fd < 0 && !free_slot)
			free_slot = p;
	}
	if (!free_slot)
		return NULL; /* full: dropped, as UDP may be */
	int fd = socket(s->local.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&s->local, s->local_len) != 0) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	free_slot->fd = fd;
	free_slot->from = *from;
	return free_slot;
}

static void *udp_main(void *arg)
{
	struct udp_server *s = arg;
	uint8_t *buf = malloc(65536);
	struct pollfd p[1 + UDP_PEERS];
	int idx[1 + UDP_PEERS];

	while (buf && !stop_requested) {
		int n = 1;
		p[0] = (struct pollfd){.fd = sg_udp_fd(s->u), .events = POLLIN};
		for (int i = 0; i < UDP_PEERS; i++)
			if (s->p[i].fd >= 0) {
				idx[n] = i;
				p[n++] = (struct pollfd){.fd = s->p[i].fd, .events = POLLIN};
			}
		if (poll(p, (nfds_t)n, 500) <= 0)
			continue;
		time_t now = time(NULL);
		if (p[0].revents & POLLIN) {
			struct sockaddr_storage from;
			size_t len;
			while (sg_udp_recvfrom(s->u, buf, 65536, &len, &from) == SG_EOK) {
				struct udp_peer *up = udp_peer_for(s, &from, now);
				if (!up)
					continue;
				up->last = now;
				(void)send(up->fd, buf, SG_MIN(len, (size_t)65536), 0);
			}
		}
		for (int k = 1; k < n; k++) {
			struct udp_peer *up = &s->p[idx[k]];
			if (!(p[k].revents & POLLIN) || up->fd < 0)
				continue;
			ssize_t r;
			while ((r = recv(up->fd, buf, 65536, 0)) >= 0) {
				up->last = now;
				(void)sg_udp_sendto(
				    s->u, buf, (size_t)r, (struct sockaddr *)&up->from,
				    up->from.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
								   : sizeof(struct sockaddr_in));
			}
		}
	}
	for (int i = 0; i < UDP_PEERS; i++)
		if (s->p[i].fd >= 0)
			close(s->p[i].fd);
	free(buf);
	return NULL;
}

/* ---- the tunnel's config ------------------------------------------------------------------- */

/* The server's config with our own key line(s) after [Interface] (the contract: the server never
 * sees the private key). malloc'd; the caller wipes and frees. */
static char *config_with_keys(const char *conf, const char *key_line)
{
	const char *p = conf;

	while (*p) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		const char *s = p;
		while (len && (*s == ' ' || *s == '\t'))
			s++, len--;
		while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
			len--;
		if (len == 11 && !strncasecmp(s, "[Interface]", 11)) {
			size_t head = (size_t)((eol ? eol + 1 : p + strlen(p)) - conf);
			size_t total = strlen(conf) + strlen(key_line) + 2;
			char *out = malloc(total);
			if (!out)
				return NULL;
			snprintf(out, total, "%.*s%s%s%s", (int)head, conf, eol ? "" : "\n",
				 key_line, conf + head);
			return out;
		}
		if (!eol)
			break;
		p = eol + 1;
	}
	return NULL;
}

/* "ADDR:PORT" / "[ADDR6]:PORT", literals only (it is an address inside the tunnel). */
static int parse_listen(const char *spec, struct sockaddr_storage *out, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 1], port[16];

	memset(out, 0, sizeof(*out));
	if (!spec || cli_split_hostport(spec, host, sizeof(host), port, sizeof(port)) != 0)
		return -1;
	struct sockaddr_in *s4 = (struct sockaddr_in *)out;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)atoi(port));
		*len = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)atoi(port));
		*len = sizeof(*s6);
		return 0;
	}
	return -1;
}

/* ---- the command -------------------------------------------------------------------------- */

static void expose_usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: %s expose [--server URL] [--token-file FILE] [--ca-file FILE] [--gateway ID]\n"
	    "                   [--subdomain NAME] [--auth[=api_key|login]] [--port N]\n"
	    "                   [--fips] [--wait SEC] [-v] LOCAL:PORT http|tcp|udp\n"
	    "  Makes LOCAL:PORT reachable through a gateway of the management server, as a\n"
	    "  normal user; prints the public URL (and with --auth=api_key the header a client\n"
	    "  must send); Ctrl-C removes the service.\n"
	    "  --server     the management server (default $SECUREGUARD_SERVER)\n"
	    "  --token-file a file holding an API key (default: $SECUREGUARD_TOKEN)\n"
	    "  --ca-file    CA certificate(s) for an HTTPS server not in the system's store\n"
	    "  --gateway    the gateway's id (needed when several take services)\n"
	    "  --subdomain  the name under the gateway's domain (default: a random one)\n"
	    "  --auth       http only: api_key (the default of --auth) or login (OpenID Connect)\n"
	    "  --port       the port to listen on inside the tunnel (default LOCAL's port)\n"
	    "  --fips       send a P-384 key too (a FIPS expose network; found out by itself\n"
	    "               when the server asks for one)\n"
	    "  --wait       seconds to wait for the gateway to serve it (default 30)\n",
	    CLI_PROG);
}

/* The API key: --token-file's first line, else $SECUREGUARD_TOKEN. malloc'd header text. */
static char *auth_header(const char *token_file)
{
	char *tok = NULL, *hdr = NULL;
	size_t len = 0;

	if (token_file) {
		int err = cli_read_file(token_file, TOKEN_MAX, &tok, &len);
		if (err) {
			fprintf(stderr, "%s: %s: %s\n", CLI_PROG, token_file, strerror(-err));
			return NULL;
		}
	} else {
		const char *env = getenv("SECUREGUARD_TOKEN");
		if (!env || !*env) {
			fprintf(stderr,
				"%s: expose: no API key: give --token-file FILE or set "
				"SECUREGUARD_TOKEN\n",
				CLI_PROG);
			return NULL;
		}
		tok = strdup(env);
		len = tok ? strlen(tok) : 0;
	}
	if (!tok)
		return NULL;
	tok[strcspn(tok, "\r\n")] = '\0';
	size_t n = strlen(tok);
	for (size_t i = 0; i < n; i++) {
		if (tok[i] <= ' ' || tok[i] == 0x7f) {
			fprintf(stderr,
				"%s: expose: the API key has a blank or control character\n",
				CLI_PROG);
			goto out;
		}
	}
	if (!n) {
		fprintf(stderr, "%s: expose: the API key is empty\n", CLI_PROG);
		goto out;
	}
	size_t hlen = n + 32;
	hdr = malloc(hlen);
	if (hdr)
		snprintf(hdr, hlen, "Authorization: Bearer %s", tok);
out:
	sg_memzero(tok, len);
	free(tok);
	return hdr;
}

struct opts {
	const char *server, *token_file, *ca, *gateway, *subdomain, *auth, *local, *proto;
	long port;
	int wait_s;
	bool fips, verbose;
};

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
	    {"server", required_argument, NULL, 's'},
	    {"token-file", required_argument, NULL, 'T'},
	    {"ca-file", required_argument, NULL, 'C'},
	    {"gateway", required_argument, NULL, 'g'},
	    {"subdomain", required_argument, NULL, 'd'},
	    {"auth", optional_argument, NULL, 'a'},
	    {"port", required_argument, NULL, 'p'},
	    {"fips", no_argument, NULL, 'F'},
	    {"wait", required_argument, NULL, 'w'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int opt;
	long w;
	char *end;

	memset(o, 0, sizeof(*o));
	o->wait_s = 30;
	o->server = getenv("SECUREGUARD_SERVER");
	optind = 1;
	while ((opt = getopt_long(argc, argv, "s:T:C:g:d:a::p:Fw:vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			o->server = optarg;
			break;
		case 'T':
			o->token_file = optarg;
			break;
		case 'C':
			o->ca = optarg;
			break;
		case 'g':
			o->gateway = optarg;
			break;
		case 'd':
			o->subdomain = optarg;
			break;
		case 'a':
			o->auth = optarg ? optarg : "api_key";
			if (strcmp(o->auth, "api_key") && strcmp(o->auth, "login") &&
			    strcmp(o->auth, "public")) {
				fprintf(stderr, "%s: expose: --auth=%s: api_key, login or public\n",
					CLI_PROG, o->auth);
				return 1;
			}
			break;
		case 'p':
			o->port = strtol(optarg, &end, 10);
			if (*end || o->port < 1 || o->port > 65535) {
				fprintf(stderr, "%s: expose: --port %s: 1-65535\n", CLI_PROG,
					optarg);
				return 1;
			}
			break;
		case 'F':
			o->fips = true;
			break;
		case 'w':
			w = strtol(optarg, &end, 10);
			if (*end || w < 0 || w > 3600) {
				fprintf(stderr, "%s: expose: --wait %s: 0-3600 seconds\n", CLI_PROG,
					optarg);
				return 1;
			}
			o->wait_s = (int)w;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			expose_usage(stdout);
			return -1;
		default:
			expose_usage(stderr);
			return 1;
		}
	}
	if (argc - optind != 2) {
		expose_usage(stderr);
		return 1;
	}
	o->local = argv[optind];
	o->proto = argv[optind + 1];
	if (strcmp(o->proto, "http") && strcmp(o->proto, "tcp") && strcmp(o->proto, "udp")) {
		fprintf(stderr, "%s: expose: `%s': the protocol is http, tcp or udp\n", CLI_PROG,
			o->proto);
		return 1;
	}
	if (o->auth && strcmp(o->auth, "public") && strcmp(o->proto, "http")) {
		fprintf(stderr, "%s: expose: --auth is for http services only\n", CLI_PROG);
		return 1;
	}
	if (!o->server || !*o->server) {
		fprintf(stderr,
			"%s: expose: no server: give --server URL or set "
			"SECUREGUARD_SERVER\n",
			CLI_PROG);
		return 1;
	}
	return 0;
}

/* Polls the service until the gateway serves it (or wait_s passed, or Ctrl-C). 1: active, 0:
 * not yet, -1: the service is gone. */
static int wait_active(struct cli_api *a, const char *id, int wait_s)
{
	char path[256];
	struct cli_api_call c;
	time_t until = time(NULL) + wait_s;

	snprintf(path, sizeof(path), "/api/v1/services/%s", id);
	for (;;) {
		long st = cli_api_call(a, "GET", path, NULL, &c);
		const char *status = jstr(c.body, "status");
		bool active = st == 200 && status && !strcmp(status, "active");
		json_decref(c.body);
		if (st == 404)
			return -1;
		if (active)
			return 1;
		if (stop_requested || time(NULL) >= until)
			return 0;
		sleep(1);
	}
}

int cli_cmd_expose(int argc, char **argv)
{
	struct opts o;
	struct cli_api a = {0};
	struct cli_api_call c = {0};
	struct sockaddr_storage local, listen_at;
	socklen_t local_len = 0, listen_len = 0;
	uint8_t priv[SG_KEY_LEN], pub[SG_KEY_LEN];
	uint8_t fpriv[SG_FIPS_PRIV_LEN], fpub[SG_FIPS_PUB_LEN];
	char pub64[SG_KEY_BASE64_LEN + 1], fpub64[SG_FIPS_PUB_BASE64_LEN + 1];
	char key_line[256], why[512], id[128] = "";
	char *config = NULL;
	json_t *req = NULL;
	sg_engine *e = NULL;
	sg_listener *l = NULL;
	struct udp_server *us = NULL;
	struct tcp_server ts;
	pthread_t worker;
	bool worker_started = false;
	int rc = 1;

	int pr = parse_opts(argc, argv, &o);
	if (pr)
		return pr < 0 ? 0 : 1;
	bool stream = strcmp(o.proto, "udp") != 0;
	if (cli_resolve_hostport(o.local, true, stream ? SOCK_STREAM : SOCK_DGRAM, &local,
				 &local_len) != 0)
		return 1;
	a.auth_hdr = auth_header(o.token_file);
	if (!a.auth_hdr)
		return 1;
	if (!cli_api_open(&a, o.server, o.ca)) {
		fprintf(stderr, "%s: expose: cannot start the HTTP client\n", CLI_PROG);
		goto out;
	}
	if (stream) {
		/* Not fatal: the service may start later; the gateway sees refusals until then. */
		int fd = socket(local.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&local, local_len) != 0)
			fprintf(stderr, "%s: note: nothing accepts connections on %s yet (%s)\n",
				CLI_PROG, o.local, strerror(errno));
		if (fd >= 0)
			close(fd);
	}

	/* From here on Ctrl-C is ours: a service the server made is removed again. */
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	/* 1. Our own key pair: only the public half goes to the server. */
	if (!sg_x25519_generate(priv, pub)) {
		fprintf(stderr, "%s: expose: cannot generate a key pair\n", CLI_PROG);
		goto out;
	}
	sg_key_to_base64(pub64, pub);

	/* 2. The service. */
	req = json_pack("{s:s, s:s, s:s}", "protocol", o.proto, "local_address", o.local,
			"public_key", pub64);
	if (!req)
		goto oom;
	if ((o.port && json_object_set_new(req, "port", json_integer(o.port))) ||
	    (o.subdomain && json_object_set_new(req, "subdomain", json_string(o.subdomain))) ||
	    (o.auth && json_object_set_new(req, "auth", json_string(o.auth))) ||
	    (o.gateway && json_object_set_new(req, "gateway_id", json_string(o.gateway))))
		goto oom;
	long st = 0;
	for (int round = 0; round < 2; round++) {
		/* A FIPS expose network wants a P-384 key too: asked for with --fips, or when the
		 * server says so (400 on public_key_fips), once. */
		if (o.fips) {
			if (!sg_fips_suite_usable() || sg_fipskey_generate(fpriv, fpub)) {
				fprintf(stderr,
					"%s: expose: the FIPS suite is not usable here (a FIPS "
					"network needs a P-384 key)\n",
					CLI_PROG);
				goto out;
			}
			sg_fipskey_pub_to_base64(fpub64, fpub);
			if (json_object_set_new(req, "public_key_fips", json_string(fpub64)))
				goto oom;
		}
		json_decref(c.body);
		st = cli_api_call(&a, "POST", "/api/v1/services", req, &c);
		const char *field = jstr(c.body, "field");
		if (st == 400 && !o.fips && field && !strcmp(field, "public_key_fips")) {
			o.fips = true;
			continue;
		}
		break;
	}
	if (st != 201) {
		cli_api_complaint(why, sizeof(why), &c);
		fprintf(stderr, "%s: expose: %s: %s\n", CLI_PROG,
			st ? "the server refused the service" : "no answer from the server", why);
		goto out;
	}
	json_t *svc = c.body, *tun = json_object_get(svc, "tunnel");
	const char *sid = jstr(svc, "id"), *url = jstr(svc, "public_url");
	const char *tconf = jstr(tun, "config"), *listen = jstr(tun, "listen");
	if (!sid || strlen(sid) >= sizeof(id) || !*sid ||
	    strspn(sid, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_") !=
		strlen(sid)) {
		fprintf(stderr, "%s: expose: the server's answer has no usable service id\n",
			CLI_PROG);
		goto out;
	}
	snprintf(id, sizeof(id), "%s", sid);
	if (stop_requested) /* Ctrl-C while the server made it */
		goto out;
	if (!url || !tconf || parse_listen(listen, &listen_at, &listen_len) != 0) {
		fprintf(stderr,
			"%s: expose: the server's answer lacks public_url, tunnel.config or a "
			"tunnel.listen ADDRESS:PORT\n",
			CLI_PROG);
		goto out;
	}

	/* 3. The tunnel, in this process, with the key its crypto mode uses: a FIPS network's
	 * config names its peers by their P-384 keys (FipsPrivateKey), a classic one by X25519. */
	const char *mode = jstr(tun, "crypto_mode");
	if (mode && !strcmp(mode, "fips")) {
		char f64[SG_FIPS_PRIV_BASE64_LEN + 1];
		if (!o.fips) {
			fprintf(stderr,
				"%s: expose: the server answered a FIPS tunnel without being sent "
				"a P-384 key\n",
				CLI_PROG);
			goto out;
		}
		sg_fipskey_priv_to_base64(f64, fpriv);
		snprintf(key_line, sizeof(key_line), "FipsPrivateKey = %s\n", f64);
		sg_memzero(f64, sizeof(f64));
	} else {
		char k64[SG_KEY_BASE64_LEN + 1];
		sg_key_to_base64(k64, priv);
		snprintf(key_line, sizeof(key_line), "PrivateKey = %s\n", k64);
		sg_memzero(k64, sizeof(k64));
	}
	config = config_with_keys(tconf, key_line);
	sg_memzero(key_line, sizeof(key_line));
	if (!config) {
		fprintf(stderr, "%s: expose: the server's tunnel.config has no [Interface]\n",
			CLI_PROG);
		goto out;
	}
	struct sg_options so;
	sg_options_init(&so);
	so.packet_io = SG_IO_STACK;
	so.log = cli_sg_log;
	so.log_level = o.verbose ? SG_LOG_LEVEL_INFO : SG_LOG_LEVEL_WARN;
	so.event = cli_sg_event;
	sg_result r = sg_init(&e, config, &so, why, sizeof(why));
	sg_memzero(config, strlen(config));
	if (r != SG_EOK) {
		fprintf(stderr, "%s: expose: the server's tunnel config: %s\n", CLI_PROG,
			why[0] ? why : sg_strerror(r));
		goto out;
	}
	if ((r = sg_connect(e)) != SG_EOK) {
		fprintf(stderr, "%s: expose: starting the tunnel: %s\n", CLI_PROG, sg_strerror(r));
		goto out;
	}

	/* 4. Listen where the gateway connects, inside the tunnel. */
	if (stream) {
		r = sg_tcp_listen(e, (struct sockaddr *)&listen_at, listen_len, &l);
		ts = (struct tcp_server){
		    .l = l, .local = local, .local_len = local_len, .local_spec = o.local};
		if (r == SG_EOK && pthread_create(&worker, NULL, tcp_main, &ts) == 0)
			worker_started = true;
	} else {
		us = calloc(1, sizeof(*us));
		r = us ? sg_udp_open(e, (struct sockaddr *)&listen_at, listen_len, &us->u)
		       : SG_ENOMEM;
		if (r == SG_EOK) {
			us->local = local;
			us->local_len = local_len;
			for (int i = 0; i < UDP_PEERS; i++)
				us->p[i].fd = -1;
			if (pthread_create(&worker, NULL, udp_main, us) == 0)
				worker_started = true;
		}
	}
	if (!worker_started) {
		fprintf(stderr, "%s: expose: listening on %s inside the tunnel: %s\n", CLI_PROG,
			listen, r == SG_EOK ? "no thread" : sg_strerror(r));
		goto out;
	}
	fprintf(stderr, "%s: exposing %s (%s) as service %s, listening on %s in the tunnel\n",
		CLI_PROG, o.local, o.proto, id, listen);

	/* 5. The URL, once the gateway serves it. */
	int act = wait_active(&a, id, o.wait_s);
	if (act < 0) {
		fprintf(stderr, "%s: expose: the service was removed on the server\n", CLI_PROG);
		id[0] = '\0';
		goto out;
	}
	if (stop_requested) {
		rc = 0;
		goto out;
	}
	if (!act)
		fprintf(stderr,
			"%s: warning: the gateway does not serve the service yet (after %d s); it "
			"may be offline: the URL works once it is back\n",
			CLI_PROG, o.wait_s);
	const char *dns = jstr(json_object_get(svc, "dns_record"), "text");
	if (dns)
		fprintf(stderr, "%s: DNS: the name needs this record: %s\n", CLI_PROG, dns);
	printf("%s\n", url);
	const char *key = jstr(svc, "api_key");
	if (key) {
		printf("Authorization: Bearer %s\n", key);
		fprintf(stderr, "%s: clients must send the header above (shown only now)\n",
			CLI_PROG);
	}
	fflush(stdout);
	fprintf(stderr, "%s: Ctrl-C stops and removes the service\n", CLI_PROG);

	/* Runs until Ctrl-C; now and then checks the service still exists. */
	char path[256];
	snprintf(path, sizeof(path), "/api/v1/services/%s", id);
	for (time_t next = time(NULL) + RECHECK_SEC; !stop_requested;) {
		sleep(1);
		if (time(NULL) < next)
			continue;
		next = time(NULL) + RECHECK_SEC;
		struct cli_api_call g;
		long gs = cli_api_call(&a, "GET", path, NULL, &g);
		json_decref(g.body);
		if (gs == 404) {
			fprintf(stderr, "%s: expose: the service was removed on the server\n",
				CLI_PROG);
			id[0] = '\0';
			break;
		}
	}
	rc = 0;
	goto out;
oom:
	fprintf(stderr, "%s: expose: out of memory\n", CLI_PROG);
out:
	/* 6. Removed first (the gateway stops sending), then the tunnel goes down. */
	stop_requested = 1;
	if (id[0]) {
		fprintf(stderr, "%s: removing the service %s\n", CLI_PROG, id);
		if (!delete_service(&a, id))
			rc = 1;
	}
	if (worker_started)
		pthread_join(worker, NULL);
	if (l)
		sg_listener_close(l);
	if (us) {
		if (us->u)
			sg_udp_close(us->u);
		free(us);
	}
	if (e) {
		sg_disconnect(e); /* the relays see EOF and finish */
		for (int i = 0; i < 50 && atomic_load(&active_conns) > 0; i++)
			usleep(100000);
		if (atomic_load(&active_conns) == 0)
			sg_free(e); /* (else the process exit takes it) */
	}
	json_decref(req);
	json_decref(c.body);
	if (config) {
		sg_memzero(config, strlen(config));
		free(config);
	}
	sg_memzero(priv, sizeof(priv));
	sg_memzero(fpriv, sizeof(fpriv));
	cli_api_close(&a);
	return rc;
}
