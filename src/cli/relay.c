/* What the commands that run a tunnel in this process (forward, expose) share: HOST:PORT
 * arguments, the engine's log and event lines on stderr, and the byte relay between a local
 * socket and a connection inside the tunnel. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <secureguard/sg.h>

#include "cli/cli.h"

#define RELAY_BUF 65536

int cli_split_hostport(const char *s, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *colon;
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (!rb || rb[1] != ':')
			return -1;
		snprintf(host, hostlen, "%.*s", (int)(rb - s - 1), s + 1);
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -1;
		snprintf(host, hostlen, "%.*s", (int)(colon - s), s);
	}
	snprintf(port, portlen, "%s", colon + 1);
	char *end;
	long p = strtol(port, &end, 10);
	return (*end || p < 1 || p > 65535 || !*port) ? -1 : 0;
}

int cli_resolve_hostport(const char *spec, bool local, int socktype, struct sockaddr_storage *out,
			 socklen_t *outlen)
{
	char host[256], port[16];
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = socktype}, *res = NULL;

	if (cli_split_hostport(spec, host, sizeof(host), port, sizeof(port)) != 0) {
		fprintf(stderr, "%s: `%s': not HOST:PORT (port 1-65535)\n", CLI_PROG, spec);
		return -1;
	}
	if (local && !host[0])
		snprintf(host, sizeof(host), "localhost");
	int r = getaddrinfo(host, port, &hints, &res);
	if (r != 0 || !res) {
		fprintf(stderr, "%s: `%s': %s\n", CLI_PROG, spec, gai_strerror(r));
		return -1;
	}
	memcpy(out, res->ai_addr, res->ai_addrlen);
	*outlen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

void cli_sg_log(void *ctx, int level, const char *line)
{
	(void)ctx;
	(void)level;
	fprintf(stderr, "%s\n", line);
}

void cli_sg_event(void *ctx, const struct sg_event *ev)
{
	(void)ctx;
	if (ev->type == SG_EVENT_HANDSHAKE_COMPLETE)
		fprintf(stderr, "%s: tunnel up (peer %s at %s)\n", CLI_PROG, ev->peer,
			ev->endpoint);
	else if (ev->type == SG_EVENT_HANDSHAKE_FAILED)
		fprintf(stderr, "%s: handshake with %s failed (%s)\n", CLI_PROG, ev->peer,
			ev->reason);
}

void cli_relay(int a, int b, volatile sig_atomic_t *stop)
{
	char *buf = malloc(RELAY_BUF);
	struct pollfd p[2] = {{.fd = a, .events = POLLIN}, {.fd = b, .events = POLLIN}};
	int open_dirs = 2;

	while (buf && open_dirs > 0 && !*stop) {
		int n = poll(p, 2, 1000);
		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2 && n > 0; i++) {
			if (!p[i].revents)
				continue;
			int to = i ? a : b;
			ssize_t r = read(p[i].fd, buf, RELAY_BUF);
			if (r <= 0) {
				shutdown(to, SHUT_WR);
				p[i].fd = -1;
				open_dirs--;
				if (r < 0)
					open_dirs = 0;
				continue;
			}
			/* A blocking write: a slow reader holds this one back (flow control). */
			for (ssize_t off = 0; off < r;) {
				ssize_t w = write(to, buf + off, (size_t)(r - off));
				if (w < 0 && errno == EINTR)
					continue;
				if (w <= 0) {
					open_dirs = 0;
					break;
				}
				off += w;
			}
		}
	}
	free(buf);
}
