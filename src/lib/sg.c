/* libsecureguard: the public C API (include/secureguard/sg.h) over the engine (src/engine), the
 * same one secureguardd runs, and the userspace stack (stack.h). This file only translates:
 * configuration text to UAPI requests, the engine's events and log lines to the app's
 * callbacks, the engine's loop to a thread of its own. */
#include <secureguard/sg.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "config/key.h"
#include "config/strbuf.h"
#include "config/wgconf.h"
#include "config/wgdev.h"
#include "crypto/crypto.h"
#include "engine/engine.h"
#include "lib/dns.h"
#include "lib/stack.h"
#include "net/addr.h"
#include "net/tun.h"

struct sg_engine {
	struct engine *eng;
	struct sg_options opts;
	struct sg_log_local log;
	struct stack_if *stack;
	char dns[512]; /* the config's DNS servers, comma-separated ("" = none) */
	pthread_mutex_t mu; /* connect/disconnect/free */
	pthread_t thread;
	bool joinable;		 /* a thread was started and not yet joined */
	atomic_bool running;	 /* the engine's thread is in engine_run */
	pthread_t running_thread; /* valid while running */
	const char *stop_reason;
};

static void setwhy(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void setwhy(char *why, size_t whylen, const char *fmt, ...)
{
	if (!why || !whylen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

const char *sg_version(void)
{
	return SG_VERSION;
}

int sg_abi_version(void)
{
	return SG_ABI_VERSION;
}

void sg_options_init(struct sg_options *o)
{
	memset(o, 0, sizeof(*o));
	o->struct_size = sizeof(*o);
	o->packet_io = SG_IO_STACK;
	o->tun_fd = -1;
	o->log_level = SG_LOG_LEVEL_INFO;
}

/* ---- configuration text to UAPI ------------------------------------------------------------ */

/* One try of the system's resolver: an app decides itself whether to wait for the network. */
static int resolve(void *ctx, struct sockaddr_storage *out, const char *host, uint16_t port,
		   char *why, size_t whylen)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM}, *res = NULL;
	char serv[8];
	(void)ctx;
	snprintf(serv, sizeof(serv), "%u", (unsigned)port);
	int r = getaddrinfo(host, serv, &hints, &res);
	if (r != 0 || !res) {
		setwhy(why, whylen, "Endpoint %s: %s", host, r ? gai_strerror(r) : "no address");
		return -1;
	}
	int ret = -1;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
		    ai->ai_addrlen <= sizeof(*out)) {
			memset(out, 0, sizeof(*out));
			memcpy(out, ai->ai_addr, ai->ai_addrlen);
			ret = 0;
			break;
		}
	}
	freeaddrinfo(res);
	if (ret)
		setwhy(why, whylen, "Endpoint %s: neither IPv4 nor IPv6 address", host);
	return ret;
}

/* The set request for a config (the one writer, src/config/wgdev.c): every peer with its mode,
 * transport and keepalive spelled out, so a live change resets what the text left out. With
 * old_priv (hex), an unchanged private key is left out, so live changes keep the sessions;
 * remove[n_remove] (hex public keys) are peers to remove. */
static int conf_request(struct sg_strbuf *b, const struct sg_wgconf *c, bool replace_peers,
			const char *old_priv, char (*remove)[SG_KEY_HEX_LEN + 1], size_t n_remove,
			char *why, size_t whylen)
{
	struct wgdev *dev = NULL;
	char hex[SG_KEY_HEX_LEN + 1];
	int r = wgdev_from_conf(c, "sg", true, true, resolve, NULL, &dev, why, whylen);

	if (r == -ENOMEM)
		return SG_ENOMEM;
	if (r != 0)
		return SG_ENOROUTE;
	if (replace_peers)
		dev->flags |= WGDEV_REPLACE_PEERS;
	if (old_priv && (dev->flags & WGDEV_HAS_PRIVATE_KEY)) {
		sg_key_to_hex(hex, dev->private_key);
		if (!strcmp(old_priv, hex))
			dev->flags &= ~WGDEV_HAS_PRIVATE_KEY;
	}
	for (size_t i = 0; i < n_remove; i++) {
		struct wgdev_peer *p = wgdev_add_peer(dev);
		if (!p || sg_key_from_hex(p->public_key, remove[i], strlen(remove[i])) != 0) {
			wgdev_free(dev);
			setwhy(why, whylen, "out of memory");
			return SG_ENOMEM;
		}
		p->flags = WGDEV_PEER_REMOVE;
	}
	wgdev_set_text(b, dev);
	wgdev_free(dev);
	sg_memzero(hex, sizeof(hex));
	return 0;
}

static int parse_conf(struct sg_wgconf *c, const char *text, char *why, size_t whylen)
{
	sg_wgconf_init(c);
	if (!text) {
		setwhy(why, whylen, "no configuration");
		return SG_EINVAL;
	}
	int r = sg_wgconf_parse(c, text, strlen(text));
	if (r != 0) {
		setwhy(why, whylen, "%s", sg_wgconf_error(c));
		sg_wgconf_free(c);
		return r == SG_ENOMEM ? SG_ENOMEM : SG_EPARSE;
	}
	return 0;
}

/* Sends a set request and turns its errno into an sg_result with a message. */
static int apply(sg_engine *e, struct sg_strbuf *req, char *why, size_t whylen)
{
	char *reply = NULL;
	size_t rlen = 0;

	if (req->oom) {
		setwhy(why, whylen, "out of memory");
		return SG_ENOMEM;
	}
	int r = engine_uapi(e->eng, req->p, req->len, &reply, &rlen);
	if (r != 0) {
		setwhy(why, whylen, "applying the configuration: %s", strerror(-r));
		return r == -ENOMEM ? SG_ENOMEM : SG_EAGAIN;
	}
	const char *er = strstr(reply, "errno=");
	long n = er ? strtol(er + 6, NULL, 10) : -EIO;
	sg_memzero(reply, rlen);
	free(reply);
	if (n != 0) {
		/* The engine logged which line and why (uapi_conn_last_error). */
		setwhy(why, whylen, "the engine refused the configuration: %s (see the log)",
		       strerror((int)-n));
		return n == -EADDRINUSE ? SG_EEXIST : SG_EINVAL;
	}
	return 0;
}

/* ---- callbacks from the engine ------------------------------------------------------------- */

static void log_sink(void *ctx, enum sg_log_level level, const char *line)
{
	sg_engine *e = ctx;
	if (e->opts.log)
		e->opts.log(e->opts.ctx, (int)level, line);
}

static void on_deliver(void *ctx, const uint8_t *pkt, size_t len)
{
	sg_engine *e = ctx;
	if (e->stack)
		stack_input(e->stack, pkt, len);
	else if (e->opts.packet_out)
		e->opts.packet_out(e->opts.ctx, pkt, len);
}

static void on_engine_event(void *ctx, const struct wg_event *ev)
{
	sg_engine *e = ctx;
	struct sg_event out = {.peer = "", .endpoint = "", .reason = ev->reason ? ev->reason : ""};
	char key[SG_KEY_BASE64_LEN + 1], ep[ADDR_ENDPOINT_STRLEN];

	if (!e->opts.event)
		return;
	switch (ev->type) {
	case WG_EVENT_HANDSHAKE_COMPLETE:
		out.type = SG_EVENT_HANDSHAKE_COMPLETE;
		break;
	case WG_EVENT_HANDSHAKE_GAVE_UP:
		out.type = SG_EVENT_HANDSHAKE_FAILED;
		out.reason = "timeout";
		break;
	case WG_EVENT_MODE_REFUSED:
	case WG_EVENT_MODE_REJECTED:
	case WG_EVENT_MODE_UNUSABLE:
		out.type = SG_EVENT_HANDSHAKE_FAILED;
		break;
	case WG_EVENT_ENDPOINT_CHANGED:
		out.type = SG_EVENT_ENDPOINT_CHANGED;
		break;
	case WG_EVENT_KEYS_ZEROED:
		out.type = SG_EVENT_KEYS_ZEROED;
		break;
	case WG_EVENT_MODE_FALLBACK:
		out.type = SG_EVENT_MODE_FALLBACK;
		break;
	default:
		return;
	}
	if (ev->peer) {
		sg_key_to_base64(key, wg_peer_public_key(ev->peer));
		out.peer = key;
	}
	if (ev->endpoint && addr_format_endpoint(ep, sizeof(ep), ev->endpoint, NULL) >= 0)
		out.endpoint = ep;
	e->opts.event(e->opts.ctx, &out);
}

static int on_protect(void *ctx, int fd);
static bool protect_hook(void *ctx, int fd)
{
	return on_protect(ctx, fd) != 0;
}

static int on_protect(void *ctx, int fd)
{
	sg_engine *e = ctx;
	return e->opts.protect(e->opts.ctx, fd);
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

sg_result sg_init(sg_engine **out, const char *config, const struct sg_options *opts, char *why,
		  size_t whylen)
{
	struct sg_wgconf conf;
	struct sg_strbuf req = {0};
	const char *step = "";
	int r;

	if (!out)
		return SG_EINVAL;
	*out = NULL;
	setwhy(why, whylen, "%s", "");
	if (opts && (opts->struct_size < offsetof(struct sg_options, crypto_threads) ||
		     opts->struct_size > sizeof(struct sg_options))) {
		setwhy(why, whylen, "struct sg_options from another version: use sg_options_init");
		return SG_EINVAL;
	}
	if (sg_crypto_init() != 0) {
		setwhy(why, whylen, "OpenSSL (%s) offers neither suite",
		       sg_crypto_library_version());
		return SG_ECRYPTO;
	}
	sg_engine *e = calloc(1, sizeof(*e));
	if (!e) {
		setwhy(why, whylen, "out of memory");
		return SG_ENOMEM;
	}
	sg_options_init(&e->opts);
	if (opts)
		memcpy(&e->opts, opts, opts->struct_size);
	e->opts.struct_size = sizeof(e->opts);
	e->log.level = e->opts.log_level < SG_LOG_LEVEL_ERROR	? SG_LOG_ERROR
		       : e->opts.log_level > SG_LOG_LEVEL_DEBUG ? SG_LOG_DEBUG
								: (enum sg_log_level)e->opts.log_level;
	e->log.sink = log_sink;
	e->log.sink_ctx = e;
	if (pthread_mutex_init(&e->mu, NULL) != 0) {
		free(e);
		setwhy(why, whylen, "mutex");
		return SG_ENOMEM;
	}
	struct sg_log_local *prev = sg_log_set_local(&e->log);

	r = parse_conf(&conf, config, why, whylen);
	if (r != 0)
		goto fail_conf;
	unsigned mtu = e->opts.mtu ? e->opts.mtu : conf.has_mtu ? conf.mtu : TUN_DEFAULT_MTU;
	struct engine_opts eo = {
	    .ifname = "sg",
	    .mtu = mtu,
	    .lanes = e->opts.crypto_threads,
	    .hooks = {.ctx = e, .deliver = on_deliver, .event = on_engine_event},
	};
	if (e->opts.protect)
		eo.hooks.protect = protect_hook;
	switch (e->opts.packet_io) {
	case SG_IO_TUN_FD:
		eo.io = ENGINE_TUN_FD;
		eo.tun_fd = e->opts.tun_fd;
		eo.link_monitor = true;
		break;
	case SG_IO_PACKETS:
		if (!e->opts.packet_out) {
			setwhy(why, whylen, "SG_IO_PACKETS needs options.packet_out");
			r = SG_EINVAL;
			goto fail;
		}
		eo.io = ENGINE_PACKETS;
		break;
	case SG_IO_STACK:
		eo.io = ENGINE_PACKETS;
		break;
	default:
		setwhy(why, whylen, "packet_io %d: not SG_IO_TUN_FD, SG_IO_PACKETS or SG_IO_STACK",
		       e->opts.packet_io);
		r = SG_EINVAL;
		goto fail;
	}
	r = engine_init(&e->eng, &eo, &step);
	if (r != 0) {
		setwhy(why, whylen, "%s: %s", step, strerror(-r));
		r = r == -ENOMEM ? SG_ENOMEM : r == -EPERM ? SG_EPERM : SG_EIO;
		goto fail;
	}
	for (size_t i = 0; i < conf.n_dns; i++) {
		if (conf.dns[i].is_search)
			continue;
		size_t used = strlen(e->dns);
		snprintf(e->dns + used, sizeof(e->dns) - used, "%s%s", used ? "," : "",
			 conf.dns[i].name);
	}
	if (e->opts.packet_io == SG_IO_STACK) {
		r = stack_attach(&e->stack, e->eng, conf.addresses, conf.n_addresses, mtu, &e->log,
				 why, whylen);
		if (r != 0)
			goto fail;
	}
	r = conf_request(&req, &conf, true, NULL, NULL, 0, why, whylen);
	if (r == 0)
		r = apply(e, &req, why, whylen);
	if (r != 0)
		goto fail;
	sg_strbuf_free(&req);
	sg_wgconf_free(&conf);
	sg_log_set_local(prev);
	*out = e;
	return SG_EOK;
fail:
	sg_strbuf_free(&req);
	sg_wgconf_free(&conf);
fail_conf:
	sg_log(SG_LOG_ERROR, "init_failed", "error=\"%s\"", why ? why : "");
	stack_detach(e->stack);
	engine_free(e->eng);
	sg_log_set_local(prev);
	pthread_mutex_destroy(&e->mu);
	free(e);
	return (sg_result)r;
}

static void *engine_thread(void *arg)
{
	sg_engine *e = arg;
	sg_log_set_local(&e->log);
	e->running_thread = pthread_self();
	atomic_store(&e->running, true);
	int rc = engine_run(e->eng);
	atomic_store(&e->running, false);
	if (e->opts.event) {
		struct sg_event ev = {.type = SG_EVENT_STOPPED,
				      .peer = "",
				      .endpoint = "",
				      .reason = rc == 0 ? "requested" : "error"};
		e->opts.event(e->opts.ctx, &ev);
	}
	sg_log_set_local(NULL);
	return NULL;
}

static bool on_engine_thread(sg_engine *e)
{
	return atomic_load(&e->running) && pthread_equal(e->running_thread, pthread_self());
}

sg_result sg_connect(sg_engine *e)
{
	if (!e)
		return SG_EINVAL;
	if (on_engine_thread(e))
		return SG_EEXIST;
	pthread_mutex_lock(&e->mu);
	if (e->joinable && atomic_load(&e->running)) {
		pthread_mutex_unlock(&e->mu);
		return SG_EEXIST;
	}
	if (e->joinable) { /* stopped from a callback earlier: collect that thread */
		pthread_join(e->thread, NULL);
		e->joinable = false;
	}
	atomic_store(&e->running, true); /* from now on sg_disconnect stops it */
	if (pthread_create(&e->thread, NULL, engine_thread, e) != 0) {
		atomic_store(&e->running, false);
		pthread_mutex_unlock(&e->mu);
		return SG_ENOMEM;
	}
	e->joinable = true;
	pthread_mutex_unlock(&e->mu);
	return SG_EOK;
}

sg_result sg_disconnect(sg_engine *e)
{
	if (!e)
		return SG_EINVAL;
	engine_stop(e->eng, "disconnect");
	if (on_engine_thread(e))
		return SG_EOK; /* the thread ends after this callback; joined later */
	pthread_mutex_lock(&e->mu);
	if (e->joinable) {
		pthread_join(e->thread, NULL);
		e->joinable = false;
		/* Connections cannot outlive the tunnel they ran in: their sockets read EOF. */
		if (e->stack)
			stack_reset(e->stack);
	}
	pthread_mutex_unlock(&e->mu);
	return SG_EOK;
}

void sg_free(sg_engine *e)
{
	if (!e)
		return;
	(void)sg_disconnect(e);
	struct sg_log_local *prev = sg_log_set_local(&e->log);
	stack_detach(e->stack);
	engine_free(e->eng);
	sg_log_set_local(prev);
	pthread_mutex_destroy(&e->mu);
	sg_memzero(e, sizeof(*e));
	free(e);
}

/* ---- live configuration -------------------------------------------------------------------- */

/* The running peers' public keys (hex) and the private key, from a get. */
struct running {
	char priv[SG_KEY_HEX_LEN + 1];
	char (*peers)[SG_KEY_HEX_LEN + 1];
	size_t n;
};

static int read_running(sg_engine *e, struct running *run)
{
	char *reply = NULL;
	size_t rlen = 0;
	int r = engine_uapi(e->eng, "get=1\n\n", 7, &reply, &rlen);
	if (r != 0)
		return r == -ENOMEM ? SG_ENOMEM : SG_EAGAIN;
	size_t cap = 0;
	for (char *line = reply, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (!strncmp(line, "private_key=", 12)) {
			snprintf(run->priv, sizeof(run->priv), "%s", line + 12);
		} else if (!strncmp(line, "public_key=", 11)) {
			if (run->n == cap) {
				size_t ncap = cap ? cap * 2 : 16;
				void *np = realloc(run->peers, ncap * sizeof(*run->peers));
				if (!np) {
					r = SG_ENOMEM;
					break;
				}
				run->peers = np;
				cap = ncap;
			}
			snprintf(run->peers[run->n++], sizeof(run->peers[0]), "%s", line + 11);
		}
	}
	sg_memzero(reply, rlen);
	free(reply);
	return r;
}

sg_result sg_set_config(sg_engine *e, const char *config, char *why, size_t whylen)
{
	struct sg_wgconf conf;
	struct sg_strbuf req = {0};
	struct running run = {0};
	char hex[SG_KEY_HEX_LEN + 1];

	if (!e)
		return SG_EINVAL;
	setwhy(why, whylen, "%s", "");
	struct sg_log_local *prev = sg_log_set_local(&e->log);
	int r = parse_conf(&conf, config, why, whylen);
	if (r != 0)
		goto out;
	r = read_running(e, &run);
	if (r != 0) {
		setwhy(why, whylen, "reading the running configuration failed");
		goto out_conf;
	}
	/* Build the whole request first: a name that does not resolve changes nothing. The
	 * running peers the text no longer has are moved to the front and removed. */
	size_t n_remove = 0;
	for (size_t i = 0; i < run.n; i++) {
		bool keep = false;
		for (size_t j = 0; j < conf.n_peers && !keep; j++) {
			sg_key_to_hex(hex, conf.peers[j].public_key);
			keep = strcmp(hex, run.peers[i]) == 0;
		}
		if (!keep && n_remove++ != i)
			memcpy(run.peers[n_remove - 1], run.peers[i], sizeof(run.peers[i]));
	}
	r = conf_request(&req, &conf, false, run.priv, run.peers, n_remove, why, whylen);
	if (r == 0)
		r = apply(e, &req, why, whylen);
	if (r == 0)
		sg_log(SG_LOG_INFO, "config_changed", "peers=%zu removed_or_kept=%zu", conf.n_peers,
		       run.n);
	sg_strbuf_free(&req);
out_conf:
	sg_wgconf_free(&conf);
out:
	sg_memzero(&run.priv, sizeof(run.priv));
	free(run.peers);
	sg_memzero(hex, sizeof(hex));
	sg_log_set_local(prev);
	return (sg_result)r;
}

/* ---- statistics ----------------------------------------------------------------------------- */

struct stats_arg {
	struct sg_stats *s;
	int err;
};

static void stats_on_loop(struct engine *eng, void *arg)
{
	struct stats_arg *a = arg;
	struct wg_device *dev = engine_device(eng);
	struct engine_stats es;
	size_t n = wg_device_peer_count(dev);

	engine_get_stats(eng, &es);
	a->s->listen_port = engine_listen_port(eng);
	a->s->inner_rx_packets = es.tun_rx;
	a->s->inner_tx_packets = es.tun_tx;
	a->s->udp_rx = es.udp_rx;
	a->s->udp_tx = es.udp_tx;
	a->s->peers = n ? calloc(n, sizeof(*a->s->peers)) : NULL;
	if (n && !a->s->peers) {
		a->err = SG_ENOMEM;
		return;
	}
	size_t i = 0;
	for (struct wg_peer *p = wg_device_first_peer(dev); p && i < n; p = wg_peer_next(p), i++) {
		struct sg_peer_stats *o = &a->s->peers[i];
		struct wg_peer_stats st;
		wg_peer_get_stats(p, &st);
		sg_key_to_base64(o->public_key, wg_peer_public_key(p));
		if (!st.has_endpoint ||
		    addr_format_endpoint(o->endpoint, sizeof(o->endpoint), &st.endpoint, NULL) < 0)
			o->endpoint[0] = '\0';
		snprintf(o->crypto_mode, sizeof(o->crypto_mode), "%s",
			 st.mode == SG_SUITE_FIPS	 ? "fips"
			 : st.mode == SG_SUITE_CLASSIC ? "classic"
						       : "none");
		snprintf(o->transport, sizeof(o->transport), "%s",
			 st.has_endpoint && st.endpoint.tls_conn ? "tls" : "udp");
		o->last_handshake_sec = (int64_t)(st.last_handshake_real_ns / 1000000000ull);
		o->rx_bytes = st.rx_bytes;
		o->tx_bytes = st.tx_bytes;
		o->rx_packets = st.rx_packets;
		o->tx_packets = st.tx_packets;
	}
	a->s->n_peers = i;
}

sg_result sg_get_stats(sg_engine *e, struct sg_stats **out)
{
	if (!e || !out)
		return SG_EINVAL;
	*out = NULL;
	struct stats_arg a = {.s = calloc(1, sizeof(struct sg_stats))};
	if (!a.s)
		return SG_ENOMEM;
	engine_call(e->eng, stats_on_loop, &a);
	if (a.err != 0) {
		sg_stats_free(a.s);
		return (sg_result)a.err;
	}
	*out = a.s;
	return SG_EOK;
}

void sg_stats_free(struct sg_stats *s)
{
	if (!s)
		return;
	free(s->peers);
	free(s);
}

/* ---- packets and sockets -------------------------------------------------------------------- */

sg_result sg_packet_write(sg_engine *e, const void *packet, size_t len)
{
	if (!e || !packet || e->opts.packet_io != SG_IO_PACKETS)
		return SG_EINVAL;
	if (!atomic_load(&e->running))
		return SG_EDOWN;
	return (sg_result)engine_packet_write(e->eng, packet, len);
}

static int stack_ready(sg_engine *e)
{
	if (!e || !e->stack)
		return SG_EINVAL;
	return atomic_load(&e->running) ? 0 : SG_EDOWN;
}

sg_result sg_tcp_connect(sg_engine *e, const struct sockaddr *to, socklen_t tolen,
			 int timeout_ms, int *fd)
{
	if (!fd)
		return SG_EINVAL;
	*fd = -1;
	int r = stack_ready(e);
	if (r != 0)
		return (sg_result)r;
	return (sg_result)stack_tcp_connect(e->stack, to, tolen, timeout_ms, fd);
}

sg_result sg_tcp_listen(sg_engine *e, const struct sockaddr *local, socklen_t len,
			sg_listener **out)
{
	if (!out)
		return SG_EINVAL;
	*out = NULL;
	if (!e || !e->stack)
		return SG_EINVAL;
	return (sg_result)stack_tcp_listen(e->stack, local, len, (struct stack_listener **)out);
}

int sg_listener_fd(const sg_listener *l)
{
	return l ? stack_listener_fd((const struct stack_listener *)l) : -1;
}

sg_result sg_tcp_accept(sg_listener *l, int *fd, struct sockaddr_storage *from)
{
	if (!l || !fd)
		return SG_EINVAL;
	return (sg_result)stack_tcp_accept((struct stack_listener *)l, fd, from);
}

void sg_listener_close(sg_listener *l)
{
	stack_listener_close((struct stack_listener *)l);
}

sg_result sg_resolve(sg_engine *e, const char *name, int family, int timeout_ms,
		     struct sockaddr_storage *out, socklen_t *outlen, char *why, size_t whylen)
{
	char dummy[8];
	if (!why || !whylen) {
		why = dummy;
		whylen = sizeof(dummy);
	}
	why[0] = '\0';
	if (!e || !name || !out || !outlen ||
	    (family != AF_INET && family != AF_INET6 && family != AF_UNSPEC))
		return SG_EINVAL;
	memset(out, 0, sizeof(*out));
	struct sockaddr_in *s4 = (struct sockaddr_in *)out;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;
	if (family != AF_INET6 && inet_pton(AF_INET, name, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		*outlen = sizeof(*s4);
		return SG_EOK;
	}
	if (family != AF_INET && inet_pton(AF_INET6, name, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		*outlen = sizeof(*s6);
		return SG_EOK;
	}
	if (!e->stack) {
		setwhy(why, whylen, "names are resolved inside the tunnel on the userspace stack only");
		return SG_EINVAL;
	}
	if (!e->dns[0]) {
		setwhy(why, whylen, "the config has no DNS server in [Interface]");
		return SG_EINVAL;
	}
	int r = stack_ready(e);
	if (r != 0)
		return (sg_result)r;
	r = dns_resolve(e->stack, e->dns, name, family, timeout_ms, out, outlen, why, whylen);
	if (r == 0) {
		if (out->ss_family == AF_INET)
			s4->sin_port = 0;
		else
			s6->sin6_port = 0;
	}
	return (sg_result)r;
}

sg_result sg_udp_open(sg_engine *e, const struct sockaddr *local, socklen_t len, sg_udp **out)
{
	if (!out)
		return SG_EINVAL;
	*out = NULL;
	if (!e || !e->stack)
		return SG_EINVAL;
	return (sg_result)stack_udp_open(e->stack, local, len, (struct stack_udp **)out);
}

int sg_udp_fd(const sg_udp *u)
{
	return u ? stack_udp_fd((const struct stack_udp *)u) : -1;
}

sg_result sg_udp_sendto(sg_udp *u, const void *buf, size_t len, const struct sockaddr *to,
			socklen_t tolen)
{
	if (!u || (!buf && len))
		return SG_EINVAL;
	return (sg_result)stack_udp_sendto((struct stack_udp *)u, buf, len, to, tolen);
}

sg_result sg_udp_recvfrom(sg_udp *u, void *buf, size_t cap, size_t *len,
			  struct sockaddr_storage *from)
{
	if (!u || !len || (!buf && cap))
		return SG_EINVAL;
	return (sg_result)stack_udp_recvfrom((struct stack_udp *)u, buf, cap, len, from);
}

void sg_udp_close(sg_udp *u)
{
	stack_udp_close((struct stack_udp *)u);
}
