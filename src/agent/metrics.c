/* The agent's metrics in Prometheus' text format (version 0.0.4), with the design document's
 * names for IPsec (ipsec_tunnel_state, ipsec_tunnel_bytes_in, ipsec_tunnel_bytes_out,
 * ipsec_rekey_events_total, ipsec_policy_sync_errors_total) and their WireGuard equivalents, and
 * a small listener for `GET /metrics` on the agent's loop (--metrics-listen). The listener reads
 * one request head (at most 4 KiB, 16 connections at a time, 5 s each), answers and closes. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/agent_int.h"
#include "common/log.h"
#include "secureguard/sg_errors.h"

#define HEAD_MAX  4096
#define MAX_CONNS 16

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

char *agent_metrics_text(struct agent *a, size_t *len)
{
	static const struct {
		const char *name, *type, *help;
		int what;
	} per[] = {
	    {"state", "gauge", "1 when the tunnel is up, else 0", 0},
	    {"bytes_in", "counter", "bytes received through the tunnel", 1},
	    {"bytes_out", "counter", "bytes sent through the tunnel", 2},
	    {"packets_in", "counter", "packets received through the tunnel", 3},
	    {"packets_out", "counter", "packets sent through the tunnel", 4},
	    {"restarts_total", "counter", "restarts by the agent's watchdog", 5},
	};
	static const char *const kinds[] = {"ipsec", "wireguard"};
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	json_t *wg = json_array(), *w, *p;
	size_t i, j;

	if (!f) {
		json_decref(wg);
		return NULL;
	}
	for (int k = 0; k < 2; k++) {
		for (size_t m = 0; m < SG_ARRAY_LEN(per); m++) {
			char name[64];

			snprintf(name, sizeof(name), "%s_tunnel_%s", kinds[k], per[m].name);
			family(f, name, per[m].type, per[m].help);
			for (i = 0; i < a->ntuns; i++) {
				struct tun *u = &a->tuns[i];
				unsigned long long v = 0;

				if (strcmp(u->be->ops->type, kinds[k]))
					continue;
				switch (per[m].what) {
				case 0: v = u->st.state == TS_UP; break;
				case 1: v = u->base_in + u->st.bytes_in; break;
				case 2: v = u->base_out + u->st.bytes_out; break;
				case 3: v = u->base_pin + u->st.packets_in; break;
				case 4: v = u->base_pout + u->st.packets_out; break;
				case 5: v = (unsigned long long)u->restarts; break;
				}
				fprintf(f, "%s{name=\"%s\"} %llu\n", name, u->name, v);
			}
		}
	}
	family(f, "ipsec_rekey_events_total", "counter", "SAs rekeyed under an unchanged tunnel");
	for (i = 0; i < a->ntuns; i++) {
		if (!strcmp(a->tuns[i].be->ops->type, "ipsec"))
			fprintf(f, "ipsec_rekey_events_total{name=\"%s\"} %llu\n", a->tuns[i].name,
				(unsigned long long)a->tuns[i].rekeys);
	}
	family(f, "ipsec_policy_sync_errors_total", "counter",
	       "configurations that could not be fetched, were refused, or failed to apply");
	fprintf(f, "ipsec_policy_sync_errors_total %lu\n", a->sync_errors);
	/* WireGuard peers, as the interfaces list them. */
	for (i = 0; i < a->ntuns; i++) {
		if (a->tuns[i].be->ops->report)
			a->tuns[i].be->ops->report(a->tuns[i].be, a->tuns[i].t, wg);
	}
	family(f, "wireguard_peer_last_handshake_seconds", "gauge",
	       "unix time of the peer's last handshake (0: none)");
	json_array_foreach(wg, i, w)
	{
		json_array_foreach(json_object_get(w, "peers"), j, p)
		fprintf(f, "wireguard_peer_last_handshake_seconds{interface=\"%s\",public_key=\"%s\"} "
			   "%lld\n",
			jstr(w, "interface"), jstr(p, "public_key"),
			(long long)json_integer_value(json_object_get(p, "last_handshake")));
	}
	family(f, "wireguard_peer_bytes_in", "counter", "bytes received from the peer");
	json_array_foreach(wg, i, w)
	{
		json_array_foreach(json_object_get(w, "peers"), j, p)
		fprintf(f, "wireguard_peer_bytes_in{interface=\"%s\",public_key=\"%s\"} %lld\n",
			jstr(w, "interface"), jstr(p, "public_key"),
			(long long)json_integer_value(json_object_get(p, "rx_bytes")));
	}
	family(f, "wireguard_peer_bytes_out", "counter", "bytes sent to the peer");
	json_array_foreach(wg, i, w)
	{
		json_array_foreach(json_object_get(w, "peers"), j, p)
		fprintf(f, "wireguard_peer_bytes_out{interface=\"%s\",public_key=\"%s\"} %lld\n",
			jstr(w, "interface"), jstr(p, "public_key"),
			(long long)json_integer_value(json_object_get(p, "tx_bytes")));
	}
	family(f, "secureguard_agent_server_reachable", "gauge",
	       "1 when the last exchange with the server succeeded");
	fprintf(f, "secureguard_agent_server_reachable %d\n", a->server_ok ? 1 : 0);
	family(f, "secureguard_agent_uptime_seconds", "gauge", "seconds since the agent started");
	fprintf(f, "secureguard_agent_uptime_seconds %llu\n",
		(unsigned long long)((evloop_now_ns() - a->started_ns) / 1000000000ull));
	json_decref(wg);
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

bool agent_metrics_request_ok(const char *buf, size_t len)
{
	static const char get[] = "GET /metrics";
	size_t n = sizeof(get) - 1;

	return len > n && !memcmp(buf, get, n) && (buf[n] == ' ' || buf[n] == '?');
}

/* ---- the listener --------------------------------------------------------------------------- */

struct mconn {
	struct evloop_source src;
	struct agent *a;
	int fd;
	char head[HEAD_MAX];
	size_t len;
	uint64_t since;
};

static struct mconn *conns[MAX_CONNS];
/* Closed connections, freed at the next accept: the loop may still hold an event for one in
 * the turn that closed it (evloop.h). */
static struct mconn *dead[MAX_CONNS];
static size_t ndead;

static void mclose(struct mconn *c, int slot)
{
	evloop_del(c->a->loop, &c->src);
	close(c->fd);
	c->fd = -1;
	conns[slot] = NULL;
	dead[ndead++] = c; /* at most MAX_CONNS are open, so at most that many die per turn */
}

static void answer(struct mconn *c)
{
	char head[256];
	size_t blen = 0;
	char *body = NULL;
	bool ok = agent_metrics_request_ok(c->head, c->len);
	int n;

	if (ok)
		body = agent_metrics_text(c->a, &blen);
	if (!body) {
		ok = false;
		body = strdup("only GET /metrics is served here\n");
		blen = body ? strlen(body) : 0;
	}
	n = snprintf(head, sizeof(head),
		     "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4\r\n"
		     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
		     ok ? "200 OK" : "404 Not Found", blen);
	/* Small enough for the socket buffer of a fresh connection; a client that does not
	 * read loses the answer, never blocks the agent. */
	(void)send(c->fd, head, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (body)
		(void)send(c->fd, body, blen, MSG_NOSIGNAL | MSG_DONTWAIT);
	free(body);
}

static void on_conn(void *ctx, uint32_t events)
{
	struct mconn *c = ctx;
	int slot = -1;
	ssize_t r;

	for (int i = 0; i < MAX_CONNS; i++) {
		if (conns[i] == c)
			slot = i;
	}
	if (slot < 0 || c->fd < 0)
		return;
	(void)events;
	r = recv(c->fd, c->head + c->len, sizeof(c->head) - 1 - c->len, MSG_DONTWAIT);
	if (r <= 0) {
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		mclose(c, slot);
		return;
	}
	c->len += (size_t)r;
	c->head[c->len] = 0;
	if (strstr(c->head, "\r\n\r\n") || strstr(c->head, "\n\n") ||
	    c->len >= sizeof(c->head) - 1) {
		answer(c);
		mclose(c, slot);
	}
}

static void on_accept(void *ctx, uint32_t events)
{
	struct agent *a = ctx;
	uint64_t now = evloop_now_ns();
	int fd, slot = -1;

	(void)events;
	/* Connections closed in earlier turns are freed now. */
	while (ndead)
		free(dead[--ndead]);
	for (int i = 0; i < MAX_CONNS; i++) {
		if (conns[i] && now - conns[i]->since > 5000000000ull)
			mclose(conns[i], i);
	}
	fd = accept4(a->mfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	for (int i = 0; i < MAX_CONNS; i++) {
		if (!conns[i]) {
			slot = i;
			break;
		}
	}
	if (slot < 0) {
		close(fd);
		return;
	}
	conns[slot] = calloc(1, sizeof(**conns));
	if (!conns[slot]) {
		close(fd);
		return;
	}
	conns[slot]->a = a;
	conns[slot]->fd = fd;
	conns[slot]->since = now;
	if (evloop_add(a->loop, &conns[slot]->src, fd, EPOLLIN, on_conn, conns[slot])) {
		close(fd);
		free(conns[slot]);
		conns[slot] = NULL;
	}
}

int agent_metrics_listen(struct agent *a, const char *hostport, char *why, size_t n)
{
	struct sockaddr_storage ss = {0};
	socklen_t sl;
	char host[128];
	const char *colon = strrchr(hostport, ':');
	long port;
	int one = 1;

	if (!colon || (size_t)(colon - hostport) >= sizeof(host)) {
		snprintf(why, n, "--metrics-listen: HOST:PORT, not %s", hostport);
		return SG_EINVAL;
	}
	memcpy(host, hostport, (size_t)(colon - hostport));
	host[colon - hostport] = 0;
	port = strtol(colon + 1, NULL, 10);
	if (port < 1 || port > 65535) {
		snprintf(why, n, "--metrics-listen: bad port in %s", hostport);
		return SG_EINVAL;
	}
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		host[strlen(host) - 1] = 0;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
			goto bad;
		sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			goto bad;
		sl = sizeof(*s4);
	}
	a->mfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (a->mfd < 0)
		goto sys;
	setsockopt(a->mfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(a->mfd, (struct sockaddr *)&ss, sl) || listen(a->mfd, 16))
		goto sys;
	if (evloop_add(a->loop, &a->msrc, a->mfd, EPOLLIN, on_accept, a))
		goto sys;
	return 0;
bad:
	snprintf(why, n, "--metrics-listen: %s is not a numeric address", host);
	return SG_EINVAL;
sys:
	snprintf(why, n, "--metrics-listen %s: %s", hostport, strerror(errno));
	if (a->mfd >= 0)
		close(a->mfd);
	a->mfd = -1;
	return SG_EIO;
}
