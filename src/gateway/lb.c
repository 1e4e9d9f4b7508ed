/* Target choice and target health: balancing strategies, active health checks (TCP connect or
 * an HTTP status), passive ejection after consecutive errors. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "gateway/gw_int.h"

bool gw_target_usable(const struct gw_target *t, uint64_t now_ns)
{
	return t->healthy && now_ns >= t->ejected_until_ns;
}

void gw_target_passive(struct gw_target *t, bool ok, uint64_t now_ns)
{
	const struct gw_resource_conf *rc = t->res->conf;
	if (ok) {
		t->passive_fails = 0;
		return;
	}
	if (++t->passive_fails < rc->eject_after || now_ns < t->ejected_until_ns)
		return;
	t->ejected_until_ns = now_ns + (uint64_t)rc->eject_ms * NS_PER_MS;
	t->passive_fails = 0;
	sg_log(SG_LOG_WARN, "gw_target_ejected", "resource=%s target=%s address=%s for_ms=%u",
	       rc->id, t->conf->id, t->conf->address, rc->eject_ms);
}

static bool candidate(const struct gw_target *t, uint64_t tried, uint64_t now_ns)
{
	return gw_target_usable(t, now_ns) && !(tried & (1ull << (t->index & 63)));
}

/* Smooth weighted round-robin (as nginx): every pick adds each candidate's weight to its
 * current value, takes the largest and subtracts the total from it. Over any window of
 * sum(weights) picks each target is chosen exactly weight times, evenly spread. */
static struct gw_target *pick_weighted(struct gw_res *r, uint64_t tried, uint64_t now_ns,
				       const char *region)
{
	struct gw_target *best = NULL;
	int64_t total = 0;
	for (size_t i = 0; i < r->n_targets; i++) {
		struct gw_target *t = &r->targets[i];
		if (!candidate(t, tried, now_ns))
			continue;
		if (region && (!t->conf->region || strcmp(t->conf->region, region) != 0))
			continue;
		t->cur_weight += t->conf->weight;
		total += t->conf->weight;
		if (!best || t->cur_weight > best->cur_weight)
			best = t;
	}
	if (best)
		best->cur_weight -= total;
	return best;
}

struct gw_target *gw_lb_pick(struct gw_res *r, uint64_t tried_mask, const char *sticky_id,
			     size_t sticky_len, uint64_t now_ns)
{
	if (sticky_id && sticky_len) {
		for (size_t i = 0; i < r->n_targets; i++) {
			struct gw_target *t = &r->targets[i];
			if (strlen(t->conf->id) == sticky_len &&
			    memcmp(t->conf->id, sticky_id, sticky_len) == 0 &&
			    candidate(t, tried_mask, now_ns))
				return t;
		}
	}
	switch (r->conf->lb) {
	case GW_LB_ROUND_ROBIN:
		for (size_t k = 0; k < r->n_targets; k++) {
			struct gw_target *t = &r->targets[(r->rr + k) % r->n_targets];
			if (candidate(t, tried_mask, now_ns)) {
				r->rr += k + 1;
				return t;
			}
		}
		return NULL;
	case GW_LB_WEIGHTED:
		return pick_weighted(r, tried_mask, now_ns, NULL);
	case GW_LB_LEAST_CONN: {
		/* Fewest requests in flight per unit of weight; ties go round-robin. */
		struct gw_target *best = NULL;
		for (size_t k = 0; k < r->n_targets; k++) {
			struct gw_target *t = &r->targets[(r->rr + k) % r->n_targets];
			if (!candidate(t, tried_mask, now_ns))
				continue;
			if (!best || (uint64_t)t->active * best->conf->weight <
					 (uint64_t)best->active * t->conf->weight)
				best = t;
		}
		r->rr++;
		return best;
	}
	case GW_LB_REGION: {
		/* The gateway's own region first; the others only when none is usable there. */
		const char *region = r->rt->conf->region;
		struct gw_target *t = region ? pick_weighted(r, tried_mask, now_ns, region) : NULL;
		return t ? t : pick_weighted(r, tried_mask, now_ns, NULL);
	}
	}
	return NULL;
}

/* ---- active health checks --------------------------------------------------------------- */

struct gw_probe {
	struct gw_target *t;
	int fd;
	struct evloop_source src;
	uint64_t deadline_ns;
	bool connected, sent;
	char buf[128];
	size_t len, off;
	char req[512];
	size_t req_len;
};

static void probe_end(struct gw_probe *p, bool ok, const char *why)
{
	struct gw_target *t = p->t;
	struct gw *gw = t->res->rt->gw;
	const struct gw_health_check *hc = &t->conf->hc;
	evloop_del(gw->loop, &p->src);
	close(p->fd);
	t->probe = NULL;
	free(p);
	if (ok) {
		t->fail_streak = 0;
		t->ejected_until_ns = 0; /* the check reaches it: passive ejection ends */
		if (!t->healthy && ++t->ok_streak >= hc->healthy) {
			t->healthy = true;
			sg_log(SG_LOG_INFO, "gw_target_up", "resource=%s target=%s address=%s",
			       t->res->conf->id, t->conf->id, t->conf->address);
		}
	} else {
		t->ok_streak = 0;
		if (t->healthy && ++t->fail_streak >= hc->unhealthy) {
			char b[96];
			t->healthy = false;
			sg_log(SG_LOG_WARN, "gw_target_down", "resource=%s target=%s address=%s reason=%s",
			       t->res->conf->id, t->conf->id, t->conf->address,
			       sg_log_quote(b, sizeof(b), why));
			gw_target_drop_idle(t);
		}
	}
}

/* "HTTP/1.x NNN" at the start of the response: the status, or -1. */
static int status_of(const char *b, size_t n)
{
	if (n < 12 || memcmp(b, "HTTP/1.", 7) != 0 || b[8] != ' ')
		return -1;
	for (int i = 9; i < 12; i++)
		if (b[i] < '0' || b[i] > '9')
			return -1;
	return (b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0');
}

static void probe_event(void *ctx, uint32_t ev)
{
	struct gw_probe *p = ctx;
	struct gw *gw = p->t->res->rt->gw;
	const struct gw_health_check *hc = &p->t->conf->hc;
	if (!p->connected) {
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
		if (err || (ev & (EPOLLERR | EPOLLHUP))) {
			probe_end(p, false, err ? strerror(err) : "connection failed");
			return;
		}
		p->connected = true;
		if (hc->type == GW_HC_TCP) {
			probe_end(p, true, NULL);
			return;
		}
		if (evloop_mod(gw->loop, &p->src, EPOLLIN | EPOLLOUT) != 0) {
			probe_end(p, false, "epoll");
			return;
		}
	}
	if (!p->sent) {
		ssize_t w = send(p->fd, p->req + p->off, p->req_len - p->off, MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN && errno != EINTR) {
			probe_end(p, false, strerror(errno));
			return;
		}
		if (w > 0)
			p->off += (size_t)w;
		if (p->off == p->req_len) {
			p->sent = true;
			if (evloop_mod(gw->loop, &p->src, EPOLLIN) != 0) {
				probe_end(p, false, "epoll");
				return;
			}
		}
		return;
	}
	ssize_t r = recv(p->fd, p->buf + p->len, sizeof(p->buf) - p->len, 0);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r > 0)
		p->len += (size_t)r;
	if (p->len >= 12 || r <= 0) {
		int st = status_of(p->buf, p->len);
		char why[64];
		if (st < 0) {
			probe_end(p, false, "no HTTP status line");
		} else if (st < hc->status_min || st > hc->status_max) {
			snprintf(why, sizeof(why), "status %d", st);
			probe_end(p, false, why);
		} else {
			probe_end(p, true, NULL);
		}
	}
}

static void probe_start(struct gw_target *t, uint64_t now_ns)
{
	struct gw *gw = t->res->rt->gw;
	const struct gw_target_conf *tc = t->conf;
	struct gw_probe *p = calloc(1, sizeof(*p));
	if (!p)
		return;
	p->t = t;
	p->deadline_ns = now_ns + (uint64_t)tc->hc.timeout_ms * NS_PER_MS;
	if (tc->hc.type == GW_HC_HTTP) {
		/* Host: the first domain of the resource, so name-based targets answer. */
		const char *host = t->res->conf->n_domains ? t->res->conf->domains[0] : tc->address;
		if (host[0] == '*')
			host = tc->address;
		int n = snprintf(p->req, sizeof(p->req),
				 "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: secureguard-gateway/"
				 "health\r\nConnection: close\r\n\r\n",
				 tc->hc.path, host);
		p->req_len = n > 0 && (size_t)n < sizeof(p->req) ? (size_t)n : 0;
	}
	p->fd = socket(tc->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->fd < 0) {
		free(p);
		return;
	}
	t->probe = p;
	if ((connect(p->fd, (const struct sockaddr *)&tc->addr, tc->addr_len) != 0 &&
	     errno != EINPROGRESS) ||
	    evloop_add(gw->loop, &p->src, p->fd, EPOLLOUT, probe_event, p) != 0) {
		int e = errno;
		p->src.active = false;
		probe_end(p, false, strerror(e));
	}
}

void gw_health_tick(struct gw_rt *rt, uint64_t now_ns)
{
	for (size_t i = 0; i < rt->n_res; i++) {
		struct gw_res *r = &rt->res[i];
		for (size_t k = 0; k < r->n_targets; k++) {
			struct gw_target *t = &r->targets[k];
			const struct gw_health_check *hc = &t->conf->hc;
			if (hc->type == GW_HC_NONE)
				continue;
			if (t->probe) {
				if (now_ns >= t->probe->deadline_ns)
					probe_end(t->probe, false, "health check timed out");
				continue;
			}
			if (now_ns >= t->next_check_ns) {
				t->next_check_ns = now_ns + (uint64_t)hc->interval_ms * NS_PER_MS;
				probe_start(t, now_ns);
			}
		}
	}
}

void gw_health_stop(struct gw_rt *rt)
{
	for (size_t i = 0; i < rt->n_res; i++)
		for (size_t k = 0; k < rt->res[i].n_targets; k++) {
			struct gw_probe *p = rt->res[i].targets[k].probe;
			if (!p)
				continue;
			evloop_del(rt->gw->loop, &p->src);
			close(p->fd);
			free(p);
			rt->res[i].targets[k].probe = NULL;
		}
}
