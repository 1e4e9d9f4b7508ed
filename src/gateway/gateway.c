/* The gateway process: configuration generations and their atomic swap, listeners, TLS,
 * signals and the periodic tick; see gateway.h and docs/GATEWAY.md. */
#include "gateway/gateway.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <secureguard/sg_errors.h>

#include "common/log.h"
#include "common/logopt.h"
#include "crypto/crypto.h"
#include "gateway/gw_int.h"
#include "net/addr.h"
#include "net/httpc.h"
#include "net/tls_cert.h"
#include "net/tls_term.h"

#define TICK_NS (100 * NS_PER_MS)
#define SELF_SIGNED "gateway-self-signed"

void gw_ip_str(int family, const uint8_t *addr, char *out, size_t size)
{
	if (!inet_ntop(family, addr, out, (socklen_t)size))
		snprintf(out, size, "?");
}

void gw_sockaddr_str(const void *sa, char *out, size_t size)
{
	const struct sockaddr *s = sa;
	char ip[INET6_ADDRSTRLEN];
	uint8_t key[17];
	if (s->sa_family == AF_INET) {
		const struct sockaddr_in *a = sa;
		gw_ip_str(AF_INET, (const uint8_t *)&a->sin_addr, ip, sizeof(ip));
		snprintf(out, size, "%s:%u", ip, ntohs(a->sin_port));
	} else {
		const struct sockaddr_in6 *a = sa;
		gw_src_key(key, AF_INET6, (const uint8_t *)&a->sin6_addr);
		if (key[0] == 4) {
			gw_ip_str(AF_INET, key + 1, ip, sizeof(ip));
			snprintf(out, size, "%s:%u", ip, ntohs(a->sin6_port));
		} else {
			gw_ip_str(AF_INET6, key + 1, ip, sizeof(ip));
			snprintf(out, size, "[%s]:%u", ip, ntohs(a->sin6_port));
		}
	}
}

/* ---- generations ------------------------------------------------------------------------ */

struct gw_rt *gw_rt_get(struct gw_rt *rt)
{
	rt->refs++;
	return rt;
}

static void rt_free(struct gw_rt *rt)
{
	gw_health_stop(rt);
	gw_fwd_release(rt);
	for (size_t i = 0; i < rt->n_res; i++) {
		free(rt->res[i].targets);
		gw_oidc_free(rt->res[i].oidc);
	}
	free(rt->res);
	gw_conf_free(rt->conf);
	free(rt);
}

void gw_rt_put(struct gw_rt *rt)
{
	if (rt && --rt->refs == 0)
		rt_free(rt);
}

/* The runtime state of a config; health, counters and balancer state carry over from the
 * previous generation for targets that keep their resource id, id and address. */
struct gw_rt *gw_rt_new(struct gw *gw, struct gw_conf *conf, const struct gw_rt *old)
{
	struct gw_rt *rt = calloc(1, sizeof(*rt));
	if (!rt)
		return NULL;
	rt->refs = 1;
	rt->gw = gw;
	rt->n_res = conf->n_resources;
	rt->res = calloc(rt->n_res ? rt->n_res : 1, sizeof(*rt->res));
	if (!rt->res) {
		free(rt);
		return NULL;
	}
	for (size_t i = 0; i < rt->n_res; i++) {
		struct gw_res *r = &rt->res[i];
		r->conf = &conf->resources[i];
		r->rt = rt;
		r->index = (uint32_t)i;
		r->lfd = -1;
		r->n_targets = r->conf->n_targets;
		r->targets = calloc(r->n_targets, sizeof(*r->targets));
		if (!r->targets) {
			for (size_t k = 0; k < i; k++)
				free(rt->res[k].targets);
			free(rt->res);
			free(rt);
			return NULL;
		}
		const struct gw_res *orr = NULL;
		for (size_t k = 0; old && k < old->n_res; k++)
			if (strcmp(old->res[k].conf->id, r->conf->id) == 0)
				orr = &old->res[k];
		if (orr) {
			memcpy(r->status_class, orr->status_class, sizeof(r->status_class));
			memcpy(r->lat_count, orr->lat_count, sizeof(r->lat_count));
			r->lat_sum = orr->lat_sum;
			r->denied = orr->denied;
			r->limited = orr->limited;
			r->flows_total = orr->flows_total;
			r->flows_refused = orr->flows_refused;
			r->rr = orr->rr;
		}
		for (size_t k = 0; k < r->n_targets; k++) {
			struct gw_target *t = &r->targets[k];
			t->conf = &r->conf->targets[k];
			t->res = r;
			t->index = (uint32_t)k;
			t->healthy = true;
			gw_list_init(&t->idle);
			for (size_t j = 0; orr && j < orr->n_targets; j++) {
				const struct gw_target *ot = &orr->targets[j];
				if (strcmp(ot->conf->id, t->conf->id) != 0 ||
				    strcmp(ot->conf->address, t->conf->address) != 0)
					continue;
				t->healthy = ot->healthy;
				t->ok_streak = ot->ok_streak;
				t->fail_streak = ot->fail_streak;
				t->passive_fails = ot->passive_fails;
				t->ejected_until_ns = ot->ejected_until_ns;
				t->next_check_ns = ot->next_check_ns;
				t->cur_weight = ot->cur_weight;
				t->requests = ot->requests;
				t->failures = ot->failures;
			}
		}
	}
	rt->conf = conf;
	return rt;
}

/* ---- TLS -------------------------------------------------------------------------------- */

static int ensure_self_signed(struct gw *gw, const struct gw_conf *conf, char *crt, char *key,
			      size_t size, char *err, size_t errlen)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/tls", gw->opts.state_dir);
	snprintf(crt, size, "%s/%s.crt", dir, SELF_SIGNED);
	snprintf(key, size, "%s/%s.key", dir, SELF_SIGNED);
	if (access(crt, R_OK) == 0 && access(key, R_OK) == 0)
		return 0;
	(void)unlink(crt);
	(void)unlink(key);
	const char *dns[40];
	size_t n = 0;
	for (size_t i = 0; i < conf->n_resources && n < SG_ARRAY_LEN(dns); i++)
		for (size_t d = 0; d < conf->resources[i].n_domains && n < SG_ARRAY_LEN(dns); d++)
			dns[n++] = conf->resources[i].domains[d];
	int64_t now = (int64_t)time(NULL);
	struct sg_tls_cert_req req = {
	    .name = SELF_SIGNED,
	    .dns = dns,
	    .n_dns = n,
	    .not_before = now - 3600,
	    .not_after = now + 397 * 86400, /* the longest life browsers accept */
	};
	int rc = sg_tls_cert_self_signed(dir, &req, err, errlen);
	if (rc == 0)
		sg_log(SG_LOG_WARN, "gw_self_signed_certificate",
		       "file=%s reason=\"no certificate configured for some domains\"", crt);
	return rc;
}

/* A TLS server for a config: each resource's own certificate for its domains, the
 * self-signed one for the rest. */
static int build_tls(struct gw *gw, const struct gw_conf *conf, struct sg_tls_term **out,
		     char *err, size_t errlen)
{
	char crt[4200], key[4200];
	int rc = ensure_self_signed(gw, conf, crt, key, sizeof(crt), err, errlen);
	if (rc != 0)
		return rc;
	struct sg_tls_term_cert *certs = calloc(conf->n_resources + 1, sizeof(*certs));
	if (!certs)
		return SG_ENOMEM;
	size_t n = 0;
	for (size_t i = 0; i < conf->n_resources; i++) {
		const struct gw_resource_conf *r = &conf->resources[i];
		if (!r->tls_cert)
			continue;
		certs[n].names = r->domains;
		certs[n].n_names = r->n_domains;
		certs[n].cert_file = r->tls_cert;
		certs[n].key_file = r->tls_key;
		n++;
	}
	static const char *const alpn[] = {"h2", "http/1.1"};
	rc = sg_tls_term_new(out, crt, key, certs, n, alpn, SG_ARRAY_LEN(alpn), err, errlen);
	free(certs);
	return rc;
}

/* ---- applying a config ------------------------------------------------------------------ */

/* Makes conf the running generation, or leaves everything as it was and says why. conf is
 * owned from here on (freed on failure). save: keep it as last-known-good. */
static int apply_config(struct gw *gw, struct gw_conf *conf, bool save, char *err, size_t errlen)
{
	struct sg_tls_term *tls = NULL;
	if (gw->opts.https_addr) {
		int rc = build_tls(gw, conf, &tls, err, errlen);
		if (rc != 0) {
			gw_conf_free(conf);
			return rc;
		}
	}
	struct gw_rt *old = gw->rt;
	struct gw_rt *rt = gw_rt_new(gw, conf, old);
	if (!rt) {
		snprintf(err, errlen, "out of memory");
		sg_tls_term_free(tls);
		gw_conf_free(conf);
		return SG_ENOMEM;
	}
	if (gw_fwd_open(gw, rt, old, err, errlen) != 0) {
		rt->refs = 0;
		rt_free(rt);
		sg_tls_term_free(tls);
		return SG_EIO;
	}
	if (save && gw->opts.state_dir) {
		char serr[512];
		if (gw_conf_save(conf, gw->opts.state_dir, serr, sizeof(serr)) != 0)
			sg_log(SG_LOG_ERROR, "gw_config_not_saved", "reason=%s",
			       sg_log_quote((char[600]){0}, 600, serr));
	}
	if (tls) {
		sg_tls_term_free(gw->tls);
		gw->tls = tls;
	}
	gw->rt = rt;
	if (old) {
		old->retired = true;
		gw_health_stop(old);
		for (size_t i = 0; i < old->n_res; i++)
			for (size_t k = 0; k < old->res[i].n_targets; k++)
				gw_target_drop_idle(&old->res[i].targets[k]);
		gw_rt_put(old);
	}
	size_t nt = 0;
	for (size_t i = 0; i < conf->n_resources; i++)
		nt += conf->resources[i].n_targets;
	/* Login resources start reading their provider's metadata now, not at the next tick. */
	gw_oidc_tick(rt, evloop_now_ns());
	sg_log(SG_LOG_INFO, "gw_config_applied", "serial=%llu resources=%zu targets=%zu",
	       (unsigned long long)conf->serial, conf->n_resources, nt);
	return 0;
}

/* The server's own provider is reached like the server: with the CA given for it. */
static void server_ca(struct gw *gw, struct gw_conf *conf)
{
	size_t n = gw->opts.server ? strlen(gw->opts.server) : 0;
	if (!n || !gw->opts.ca_file)
		return;
	while (n && gw->opts.server[n - 1] == '/')
		n--;
	for (size_t i = 0; i < conf->n_resources; i++) {
		struct gw_oidc_conf *o = &conf->resources[i].oidc;
		if (o->issuer && !o->ca_file && !strncmp(o->issuer, gw->opts.server, n) &&
		    (o->issuer[n] == '\0' || o->issuer[n] == '/'))
			o->ca_file = gw->opts.ca_file;
	}
}

int gw_apply_text(struct gw *gw, const char *text, size_t len, char *err, size_t errlen)
{
	struct gw_conf *conf = NULL;
	int rc = gw_conf_parse(text, len, &conf, err, errlen);
	if (rc != 0)
		return rc;
	server_ca(gw, conf);
	return apply_config(gw, conf, true, err, errlen);
}

static void reload(struct gw *gw)
{
	char err[GW_CONF_ERR_MAX + 64], q[GW_CONF_ERR_MAX + 96];
	struct gw_conf *conf = NULL;
	if (!gw->opts.config_file) {
		sg_log(SG_LOG_INFO, "gw_reload_ignored", "reason=\"no --config file\"");
		return;
	}
	int rc = gw_conf_load_file(gw->opts.config_file, &conf, err, sizeof(err));
	if (rc == 0)
		rc = apply_config(gw, conf, true, err, sizeof(err));
	if (rc != 0) {
		gw->rejected++;
		sg_log(SG_LOG_ERROR, "gw_config_rejected", "reason=%s keeping_serial=%llu",
		       sg_log_quote(q, sizeof(q), err), (unsigned long long)gw->rt->conf->serial);
		return;
	}
	gw->reloads++;
}

/* ---- listeners -------------------------------------------------------------------------- */

static void listener_event(void *ctx, uint32_t ev)
{
	sg_http_accept(ctx);
}

static int listen_on(struct gw *gw, struct gw_listener *l, const char *spec, bool tls,
		     bool metrics, char *err, size_t errlen)
{
	struct wg_endpoint ep;
	char zone[ADDR_ZONE_MAX + 1];
	const char *why = NULL;
	l->fd = -1;
	if (addr_parse_endpoint(spec, strlen(spec), &ep, zone, &why) != 0) {
		snprintf(err, errlen, "%s: not ADDRESS:PORT (%s)", spec, why ? why : "malformed");
		return -1;
	}
	socklen_t sl = ep.addr.sa.sa_family == AF_INET ? sizeof(struct sockaddr_in)
						       : sizeof(struct sockaddr_in6);
	int fd = socket(ep.addr.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1, zero = 0;
	if (fd < 0) {
		snprintf(err, errlen, "%s: socket: %s", spec, strerror(errno));
		return -1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ep.addr.sa.sa_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, &ep.addr.sa, sl) != 0 || listen(fd, 4096) != 0) {
		snprintf(err, errlen, "%s: %s", spec, strerror(errno));
		close(fd);
		return -1;
	}
	l->gw = gw;
	l->fd = fd;
	l->tls = tls;
	l->metrics = metrics;
	l->addr = ep.addr;
	if (evloop_add(gw->loop, &l->src, fd, EPOLLIN, listener_event, l) != 0) {
		snprintf(err, errlen, "%s: epoll", spec);
		close(fd);
		l->fd = -1;
		return -1;
	}
	sg_log(SG_LOG_INFO, "gw_listening", "address=%s proto=%s", spec,
	       metrics ? "metrics" : tls ? "https" : "http");
	return 0;
}

static void listener_close(struct gw *gw, struct gw_listener *l)
{
	if (l->fd < 0 || !l->gw)
		return;
	evloop_del(gw->loop, &l->src);
	close(l->fd);
	l->fd = -1;
}

/* ---- the loop --------------------------------------------------------------------------- */

static void tick_event(void *ctx, uint32_t ev)
{
	struct gw *gw = ctx;
	evloop_timer_ack(gw->tfd);
	gw->now_ns = evloop_now_ns();
	gw_conns_tick(gw);
	gw_fwd_tick(gw);
	gw_health_tick(gw->rt, gw->now_ns);
	gw_oidc_tick(gw->rt, gw->now_ns);
	gw_managed_tick(gw, gw->now_ns);
	if (gw->access_log)
		fflush(gw->access_log);
	if (evloop_timer_arm(gw->tfd, gw->now_ns + TICK_NS) != 0)
		sg_log(SG_LOG_ERROR, "gw_timer_failed", NULL);
}

static int sfd = -1;
static struct evloop_source sig_src;

/* SIGHUP: a new access log file by the same name (the old one kept when it cannot be opened). */
static void reopen_access_log(struct gw *gw)
{
	const char *path = gw->opts.access_log;
	int fd;
	FILE *f;

	if (!gw->access_log || gw->access_log == stdout || !path)
		return;
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	f = fd >= 0 ? fdopen(fd, "a") : NULL;
	if (!f) {
		sg_log(SG_LOG_WARN, "gw_access_log_reopen_failed", "errno=%d", errno);
		if (fd >= 0)
			close(fd);
		return;
	}
	fclose(gw->access_log);
	gw->access_log = f;
}

static void signal_event(void *ctx, uint32_t ev)
{
	struct gw *gw = ctx;
	struct signalfd_siginfo si;
	while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			/* logrotate's postrotate too: the log file and the access log are
			 * reopened by name. */
			sg_log_reopen_request();
			reopen_access_log(gw);
			sg_log(SG_LOG_INFO, "gw_reload", "file=%s",
			       gw->opts.config_file ? gw->opts.config_file : "-");
			reload(gw);
		} else {
			sg_log(SG_LOG_INFO, "gw_stopping", "signal=%u", si.ssi_signo);
			gw->stop = true;
		}
	}
}

int gw_run(const struct gw_opts *o)
{
	struct gw *gw = calloc(1, sizeof(*gw));
	char err[GW_CONF_ERR_MAX + 128], q[GW_CONF_ERR_MAX + 160];
	int ret = 1;
	if (!gw)
		return 1;
	gw->opts = *o;
	gw->tfd = -1;
	gw->http.fd = gw->https.fd = gw->metrics.fd = -1;
	gw_list_init(&gw->conns);
	gw_list_init(&gw->grave);
	gw_list_init(&gw->flows);
	gw_list_init(&gw->hs_wait);
	gw->src = calloc(GW_SRC_SLOTS, sizeof(*gw->src));
	if (!gw->src || evloop_new(&gw->loop) != 0 || sg_httpc_new(&gw->httpc, gw->loop) != 0) {
		fprintf(stderr, "gateway: out of memory\n");
		goto out;
	}
	if (mkdir(o->state_dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "gateway: --state-dir %s: %s\n", o->state_dir, strerror(errno));
		goto out;
	}
	/* The config: --config FILE, else the last one this gateway accepted. */
	struct gw_conf *conf = NULL;
	bool from_file = o->config_file != NULL;
	char lkg[4200];
	snprintf(lkg, sizeof(lkg), "%s/config.json", o->state_dir);
	int lrc = gw_conf_load_file(from_file ? o->config_file : lkg, &conf, err, sizeof(err));
	if (lrc == SG_ENOENT && !from_file && o->server) {
		/* Managed, and nothing from the server yet: serve nothing until it comes. */
		static const char empty[] = "{\"resources\": []}";
		lrc = gw_conf_parse(empty, sizeof(empty) - 1, &conf, err, sizeof(err));
		if (lrc == 0)
			sg_log(SG_LOG_INFO, "gw_config_waiting", "server=%s", o->server);
	} else if (lrc == 0 && !from_file) {
		sg_log(SG_LOG_WARN, "gw_config_last_known_good", "file=%s serial=%llu", lkg,
		       (unsigned long long)conf->serial);
	}
	if (lrc != 0) {
		fprintf(stderr, "gateway: %s\n", err);
		if (!from_file)
			fprintf(stderr, "gateway: give --config FILE or --server URL (no "
					"last-known-good configuration in %s)\n",
				o->state_dir);
		goto out;
	}
	server_ca(gw, conf);
	if (o->access_log) {
		if (strcmp(o->access_log, "-") == 0) {
			gw->access_log = stdout;
		} else {
			int fd = open(o->access_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
			gw->access_log = fd >= 0 ? fdopen(fd, "a") : NULL;
			if (!gw->access_log) {
				fprintf(stderr, "gateway: --access-log %s: %s\n", o->access_log,
					strerror(errno));
				if (fd >= 0)
					close(fd);
				gw_conf_free(conf);
				goto out;
			}
		}
	}
	if (apply_config(gw, conf, from_file, err, sizeof(err)) != 0) {
		fprintf(stderr, "gateway: %s\n", err);
		goto out;
	}
	const char *http = o->http_addr ? o->http_addr : "[::]:80";
	if ((strcmp(http, "off") != 0 && listen_on(gw, &gw->http, http, false, false, err, sizeof(err)) != 0) ||
	    (o->https_addr && listen_on(gw, &gw->https, o->https_addr, true, false, err, sizeof(err)) != 0) ||
	    (o->metrics_addr &&
	     listen_on(gw, &gw->metrics, o->metrics_addr, false, true, err, sizeof(err)) != 0)) {
		fprintf(stderr, "gateway: listen %s\n", err);
		goto out;
	}
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	gw->tfd = evloop_timer_new();
	if (sfd < 0 || gw->tfd < 0 ||
	    evloop_add(gw->loop, &sig_src, sfd, EPOLLIN, signal_event, gw) != 0 ||
	    evloop_add(gw->loop, &gw->tsrc, gw->tfd, EPOLLIN, tick_event, gw) != 0 ||
	    evloop_timer_arm(gw->tfd, evloop_now_ns() + TICK_NS) != 0) {
		fprintf(stderr, "gateway: signalfd/timerfd: %s\n", strerror(errno));
		goto out;
	}
	if (o->server && gw_managed_start(gw, err, sizeof(err)) != 0) {
		fprintf(stderr, "gateway: %s\n", err);
		goto out;
	}
	sg_log(SG_LOG_INFO, "gw_started", "state_dir=%s", sg_log_quote(q, sizeof(q), o->state_dir));
	bool hs_waiting = false;
	while (!gw->stop) {
		int n = evloop_run_once(gw->loop, hs_waiting ? 0 : -1);
		hs_waiting = gw_hs_run(gw);
		gw_reap(gw);
		if (n < 0) {
			sg_log(SG_LOG_ERROR, "gw_loop_failed", "errno=%d", -n);
			goto out;
		}
	}
	ret = gw->exit_code;
out:
	if (gw->loop) {
		listener_close(gw, &gw->http);
		listener_close(gw, &gw->https);
		listener_close(gw, &gw->metrics);
		gw_conns_close_all(gw);
		gw_fwd_close_all(gw);
		if (gw->rt) {
			gw_health_stop(gw->rt);
			for (size_t i = 0; i < gw->rt->n_res; i++)
				for (size_t k = 0; k < gw->rt->res[i].n_targets; k++)
					gw_target_drop_idle(&gw->rt->res[i].targets[k]);
			gw_rt_put(gw->rt);
		}
		if (sfd >= 0) {
			evloop_del(gw->loop, &sig_src);
			close(sfd);
			sfd = -1;
		}
		if (gw->tfd >= 0) {
			evloop_del(gw->loop, &gw->tsrc);
			close(gw->tfd);
		}
		gw_managed_free(gw);
		sg_httpc_free(gw->httpc);
		evloop_free(gw->loop);
	}
	sg_tls_term_free(gw->tls);
	if (gw->access_log && gw->access_log != stdout)
		fclose(gw->access_log);
	else if (gw->access_log)
		fflush(stdout);
	free(gw->src);
	free(gw);
	return ret;
}

/* ---- command line ----------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: secureguard gateway --state-dir DIR [--config FILE] [--http ADDR|off]\n"
		"                           [--https ADDR] [--metrics ADDR] [--access-log FILE|-]\n"
		"                           [--log-level error|warn|info|debug] [--log-format text|json]\n"
		"                           [--log-file FILE [--log-max-size BYTES] [--log-files N]]\n"
		"                           [--syslog]\n"
		"       secureguard gateway --server URL --state-dir DIR [--enroll TOKEN]\n"
		"                           [--ca-file FILE] [--report-interval SECS]\n"
		"                           [--poll-interval SECS] [--http ADDR] [--https ADDR] ...\n"
		"       secureguard gateway --check FILE\n\n"
		"The zero-trust edge proxy: HTTP(S), TCP and UDP to targets behind the tunnels\n"
		"(docs/GATEWAY.md). --config is the JSON configuration (SIGHUP reloads it; a bad\n"
		"file is refused and the running one kept); without it the last configuration\n"
		"accepted, kept in DIR/config.json, is used. ADDR is IP:PORT or [IPv6]:PORT;\n"
		"--http defaults to [::]:80, --https (TLS, SNI, a self-signed certificate in\n"
		"DIR/tls for domains without one) and --metrics (Prometheus) are off unless given.\n"
		"--check FILE only validates FILE: exit 0 and a summary, or 1 and the error.\n"
		"--server URL: managed by the management server: enrolled once with --enroll TOKEN\n"
		"(from POST /api/v1/gateways; the credential stays in DIR), its configuration\n"
		"pushed, kept in DIR/config.json and served from there while the server is away;\n"
		"--ca-file is the CA of the server's certificate (default: the system's).\n"
		"Exit status 3: the server revoked this gateway.\n");
}

int gw_cmd(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"state-dir", required_argument, NULL, 's'}, {"config", required_argument, NULL, 'c'},
	    {"http", required_argument, NULL, 'H'},	 {"https", required_argument, NULL, 'S'},
	    {"metrics", required_argument, NULL, 'm'},	 {"access-log", required_argument, NULL, 'a'},
	    SG_LOG_LONGOPTS,				 {"help", no_argument, NULL, 'h'},
	    {"check", required_argument, NULL, 'k'},
	    {"server", required_argument, NULL, 'V'},	 {"enroll", required_argument, NULL, 'E'},
	    {"ca-file", required_argument, NULL, 'C'},	 {"report-interval", required_argument, NULL, 'R'},
	    {"poll-interval", required_argument, NULL, 'P'},
	    {NULL, 0, NULL, 0},
	};
	struct gw_opts o = {.report_s = 15, .poll_s = 60};
	struct sg_logopt logopt;
	const char *check = NULL;
	char lerr[PATH_MAX + 64];
	int ch;
	sg_logopt_init(&logopt);
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 's': o.state_dir = optarg; break;
		case 'c': o.config_file = optarg; break;
		case 'H': o.http_addr = optarg; break;
		case 'S': o.https_addr = optarg; break;
		case 'm': o.metrics_addr = optarg; break;
		case 'a': o.access_log = optarg; break;
		case 'k': check = optarg; break;
		case 'V': o.server = optarg; break;
		case 'E': o.enroll = optarg; break;
		case 'C': o.ca_file = optarg; break;
		case 'R':
		case 'P': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > 3600) {
				fprintf(stderr, "gateway: --%s must be 1..3600 seconds\n",
					ch == 'R' ? "report-interval" : "poll-interval");
				return 1;
			}
			if (ch == 'R')
				o.report_s = (int)v;
			else
				o.poll_s = (int)v;
			break;
		}
		case 'h': usage(stdout); return 0;
		default:
			switch (sg_logopt_parse(&logopt, ch, optarg, "gateway")) {
			case 1: break;
			case 0: usage(stderr); return 1;
			default: return 1;
			}
		}
	}
	if (check && optind == argc) {
		/* `--check FILE`: validate only, as `nginx -t` (for scripts and the server). */
		struct gw_conf *c = NULL;
		char err[GW_CONF_ERR_MAX + 64];
		if (gw_conf_load_file(check, &c, err, sizeof(err)) != 0) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		size_t nt = 0;
		for (size_t i = 0; i < c->n_resources; i++)
			nt += c->resources[i].n_targets;
		printf("%s: valid (serial %llu, %zu resources, %zu targets)\n", check,
		       (unsigned long long)c->serial, c->n_resources, nt);
		gw_conf_free(c);
		return 0;
	}
	if (o.server && o.config_file) {
		fprintf(stderr, "gateway: --config and --server exclude each other (a managed gateway "
				"gets its configuration from the server)\n");
		return 1;
	}
	if ((o.enroll || o.ca_file) && !o.server) {
		fprintf(stderr, "gateway: --enroll and --ca-file go with --server\n");
		return 1;
	}
	if (optind != argc || !o.state_dir) {
		fprintf(stderr, "gateway: %s\n\n", optind != argc ? "unexpected argument" :
								    "--state-dir is required");
		usage(stderr);
		return 1;
	}
	if (sg_logopt_apply(&logopt, "secureguard-gateway", lerr, sizeof(lerr)) != 0) {
		fprintf(stderr, "gateway: %s\n", lerr);
		return 1;
	}
	if (sg_crypto_init() != 0) {
		fprintf(stderr, "gateway: crypto initialisation failed\n");
		return 1;
	}
	sg_log_set_context("component=gateway");
	return gw_run(&o);
}
