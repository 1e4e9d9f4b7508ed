/* The management server's Redis client (redis.h): a small pool of connections for commands and
 * one subscribing connection in a thread of its own. */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "crypto/crypto.h"
#include "net/stream.h"
#include "secureguard/sg_errors.h"
#include "server/redis.h"
#include "server/srv_int.h"

#define POOL 8
#define CONNECT_MS 1000
#define COMMAND_MS 1000
#define RETRY_MS 1000
/* Our largest reply is a page of clients' connection states (500 of a few hundred bytes, live.c);
 * anything near this is wrong. */
#define MAX_REPLY (1u << 20)

struct rconn {
	pthread_mutex_t m;
	struct sg_stream *st;
	redisReader *rd;
};

struct srv_redis {
	struct srv_redis_url u;
	struct sg_stream_tls tls;
	struct rconn pool[POOL];
	atomic_uint next;
	atomic_llong retry_at; /* monotonic ms: no new connection before this */
	atomic_bool up;
	atomic_ullong cmd_ok, cmd_err, conn_ok, conn_err;
	/* The subscriber (srv_redis_subscribe). */
	pthread_t sub;
	bool sub_started;
	atomic_bool stop, subscribed;
	char channel[64];
	void (*fn)(void *arg);
	void *arg;
};

static long long mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* ---- the URL --------------------------------------------------------------------------------- */

/* Copies [s, s+n) into out (size max) percent-decoded; false when it does not fit, or holds a
 * bad escape or a NUL. */
static bool pct_copy(char *out, size_t max, const char *s, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= n)
				return false;
			hi = srv_hexval(s[i + 1]);
			lo = hi < 0 ? -1 : srv_hexval(s[i + 2]);
			if (lo < 0 || (hi == 0 && lo == 0))
				return false;
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		if (o + 1 >= max)
			return false;
		out[o++] = c;
	}
	out[o] = 0;
	return true;
}

static bool plain_copy(char *out, size_t max, const char *s, size_t n)
{
	if (n >= max || memchr(s, 0, n))
		return false;
	memcpy(out, s, n);
	out[n] = 0;
	return true;
}

int srv_redis_url_parse(const char *url, struct srv_redis_url *u, const char **why)
{
	const char *p, *end, *at, *hostend, *q;
	size_t len;

	memset(u, 0, sizeof(*u));
	snprintf(u->port, sizeof(u->port), "6379");
	len = strnlen(url, 4096);
	if (len >= 4096) {
		*why = "longer than 4095 characters";
		return SG_EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)url[i] <= 0x20 || url[i] == 0x7f) {
			*why = "spaces or control characters";
			return SG_EINVAL;
		}
	}
	if (!strncmp(url, "redis://", 8)) {
		p = url + 8;
	} else if (!strncmp(url, "rediss://", 9)) {
		p = url + 9;
		u->tls = true;
	} else {
		*why = "expected redis://HOST[:PORT][/DB] or rediss://... (TLS)";
		return SG_EINVAL;
	}
	end = p + strcspn(p, "/?");
	/* userinfo: the last '@' before the path, so a password may hold an escaped one. */
	at = NULL;
	for (const char *x = p; x < end; x++)
		if (*x == '@')
			at = x;
	if (at) {
		const char *colon = memchr(p, ':', (size_t)(at - p));

		if (colon) {
			if (!pct_copy(u->user, sizeof(u->user), p, (size_t)(colon - p)) ||
			    !pct_copy(u->password, sizeof(u->password), colon + 1,
				      (size_t)(at - colon - 1))) {
				*why = "user or password: too long or a bad %-escape";
				return SG_EINVAL;
			}
		} else if (!pct_copy(u->password, sizeof(u->password), p, (size_t)(at - p))) {
			/* redis://PASSWORD@host, as redis-cli -u takes it */
			*why = "password: too long or a bad %-escape";
			return SG_EINVAL;
		}
		p = at + 1;
	}
	if (*p == '[') {
		hostend = memchr(p, ']', (size_t)(end - p));
		if (!hostend || !plain_copy(u->host, sizeof(u->host), p + 1, (size_t)(hostend - p - 1)) ||
		    !strchr(u->host, ':')) {
			*why = "host: an IPv6 address goes in brackets: [::1]";
			return SG_EINVAL;
		}
		hostend++;
	} else {
		hostend = memchr(p, ':', (size_t)(end - p));
		if (!hostend)
			hostend = end;
		if (!plain_copy(u->host, sizeof(u->host), p, (size_t)(hostend - p))) {
			*why = "host: too long";
			return SG_EINVAL;
		}
	}
	if (!u->host[0]) {
		*why = "no host";
		return SG_EINVAL;
	}
	for (const char *h = u->host; *h; h++) {
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:_",
			    *h)) {
			*why = "host: not a name or an address";
			return SG_EINVAL;
		}
	}
	if (hostend < end) {
		long port = 0;

		if (*hostend != ':' || hostend + 1 == end || end - hostend - 1 > 5) {
			*why = "port: expected :1 to :65535";
			return SG_EINVAL;
		}
		for (const char *x = hostend + 1; x < end; x++) {
			if (*x < '0' || *x > '9') {
				*why = "port: expected :1 to :65535";
				return SG_EINVAL;
			}
			port = port * 10 + (*x - '0');
		}
		if (port < 1 || port > 65535) {
			*why = "port: expected :1 to :65535";
			return SG_EINVAL;
		}
		snprintf(u->port, sizeof(u->port), "%ld", port);
	}
	p = end;
	if (*p == '/') {
		p++;
		q = p + strcspn(p, "?");
		if (q > p) {
			if (q - p > 4) {
				*why = "database: expected /0 to /1023";
				return SG_EINVAL;
			}
			for (const char *x = p; x < q; x++) {
				if (*x < '0' || *x > '9') {
					*why = "database: expected /0 to /1023";
					return SG_EINVAL;
				}
				u->db = u->db * 10 + (*x - '0');
			}
			if (u->db > 1023) {
				*why = "database: expected /0 to /1023";
				return SG_EINVAL;
			}
		}
		p = q;
	}
	if (*p == '?') {
		p++;
		while (*p) {
			size_t n = strcspn(p, "&");
			const char *eq = memchr(p, '=', n);
			char *dst = NULL;

			if (eq && eq - p == 2 && !strncmp(p, "ca", 2))
				dst = u->ca;
			else if (eq && eq - p == 4 && !strncmp(p, "cert", 4))
				dst = u->cert;
			else if (eq && eq - p == 3 && !strncmp(p, "key", 3))
				dst = u->key;
			if (!dst) {
				*why = "parameters: only ca=FILE, cert=FILE and key=FILE are known";
				return SG_EINVAL;
			}
			if (!pct_copy(dst, sizeof(u->ca), eq + 1, (size_t)(p + n - eq - 1)) ||
			    !dst[0]) {
				*why = "parameters: a file name is empty, too long or badly escaped";
				return SG_EINVAL;
			}
			p += n;
			if (*p == '&')
				p++;
		}
		if (!u->tls) {
			*why = "ca, cert and key need rediss:// (TLS)";
			return SG_EINVAL;
		}
	}
	if (u->cert[0] != 0 && !u->key[0]) {
		*why = "cert=FILE needs key=FILE";
		return SG_EINVAL;
	}
	if (u->user[0] && !u->password[0]) {
		*why = "a user needs a password (redis://USER:PASSWORD@HOST)";
		return SG_EINVAL;
	}
	return 0;
}

/* ---- connections ----------------------------------------------------------------------------- */

static void conn_drop(struct rconn *c)
{
	sg_stream_close(c->st);
	c->st = NULL;
	if (c->rd)
		redisReaderFree(c->rd);
	c->rd = NULL;
}

/* Sends one command on st and reads its reply through rd: the reply, or NULL on an I/O error
 * or a timeout (the connection is then unusable). */
static redisReply *roundtrip(struct sg_stream *st, redisReader *rd, int argc, const char **argv,
			     const size_t *lens)
{
	char *cmd = NULL, buf[4096];
	int n = redisFormatCommandArgv(&cmd, argc, argv, lens);
	void *reply = NULL;
	size_t got = 0;

	if (n < 0)
		return NULL;
	if (sg_stream_write(st, cmd, (size_t)n, COMMAND_MS)) {
		redisFreeCommand(cmd);
		return NULL;
	}
	redisFreeCommand(cmd);
	for (;;) {
		ssize_t k;

		if (redisReaderGetReply(rd, &reply) != REDIS_OK)
			return NULL;
		if (reply)
			return reply;
		k = sg_stream_read(st, buf, sizeof(buf), COMMAND_MS);
		if (k <= 0 || (got += (size_t)k) > MAX_REPLY ||
		    redisReaderFeed(rd, buf, (size_t)k) != REDIS_OK)
			return NULL;
	}
}

static bool reply_ok(redisReply *rp)
{
	return rp && rp->type != REDIS_REPLY_ERROR;
}

/* Why a command got no reply. Over TLS 1.3 a server that wants a client certificate checks
 * it after our handshake has finished, so its alert can race our first command: when the
 * connection closed and we gave none, say what the likely cause is. */
static const char *no_answer(const struct srv_redis *r, const struct sg_stream *st)
{
	const char *why = sg_stream_error(st);

	if (why)
		return why;
	if (r->u.tls && !r->tls.cert_file)
		return "no answer (the connection closed; over TLS without a client certificate: "
		       "if Redis has tls-auth-clients yes, give cert=FILE&key=FILE)";
	return "no answer (the connection closed)";
}

/* A new connection, authenticated and on the URL's database: 0, or -1 with the reason. */
static int conn_open(struct srv_redis *r, struct sg_stream **st, redisReader **rd, char *err,
		     size_t errlen)
{
	redisReply *rp;
	char db[8];

	*rd = NULL;
	if (sg_stream_connect(st, r->u.host, r->u.port, r->u.tls ? &r->tls : NULL, CONNECT_MS,
			      err, errlen))
		return -1;
	*rd = redisReaderCreate();
	if (!*rd) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (r->u.password[0]) {
		const char *a[3] = {"AUTH", r->u.user, r->u.password};
		const size_t l[3] = {4, strlen(r->u.user), strlen(r->u.password)};

		/* AUTH USER PASSWORD is an ACL user (Redis 6); AUTH PASSWORD the default one. */
		rp = r->u.user[0] ? roundtrip(*st, *rd, 3, a, l)
				  : roundtrip(*st, *rd, 2, (const char *[]){a[0], a[2]},
					      (const size_t[]){l[0], l[2]});
		if (!reply_ok(rp)) {
			/* Redis's own words ("WRONGPASS invalid username-password pair"): no
			 * secret in them. */
			snprintf(err, errlen, "AUTH refused: %.200s",
				 rp ? rp->str : no_answer(r, *st));
			freeReplyObject(rp);
			goto fail;
		}
		freeReplyObject(rp);
	}
	if (r->u.db) {
		snprintf(db, sizeof(db), "%d", r->u.db);
		rp = roundtrip(*st, *rd, 2, (const char *[]){"SELECT", db},
			       (const size_t[]){6, strlen(db)});
		if (!reply_ok(rp)) {
			snprintf(err, errlen, "SELECT %s refused: %.200s", db,
				 rp ? rp->str : no_answer(r, *st));
			freeReplyObject(rp);
			goto fail;
		}
		freeReplyObject(rp);
	}
	return 0;
fail:
	sg_stream_close(*st);
	*st = NULL;
	if (*rd)
		redisReaderFree(*rd);
	*rd = NULL;
	return -1;
}

/* Connects c unless Redis failed within the last second: true when c is usable. */
static bool conn_ensure(struct srv_redis *r, struct rconn *c)
{
	char err[256], q[300];

	if (c->st)
		return true;
	if (mono_ms() < atomic_load(&r->retry_at))
		return false;
	if (conn_open(r, &c->st, &c->rd, err, sizeof(err))) {
		atomic_store(&r->retry_at, mono_ms() + RETRY_MS);
		atomic_fetch_add(&r->conn_err, 1);
		atomic_store(&r->up, false);
		srv_log_limited(SG_LOG_WARN, "redis_unreachable", "msg=%s",
				sg_log_quote(q, sizeof(q), err));
		return false;
	}
	atomic_fetch_add(&r->conn_ok, 1);
	return true;
}

struct redisReply *srv_redis_cmd(struct srv_redis *r, int argc, const char **argv,
				 const size_t *lens)
{
	unsigned start = atomic_fetch_add(&r->next, 1);
	struct rconn *c = NULL;
	redisReply *rp = NULL;

	/* A free connection if there is one, else wait for the one our turn points at. */
	for (unsigned i = 0; i < POOL && !c; i++) {
		if (!pthread_mutex_trylock(&r->pool[(start + i) % POOL].m))
			c = &r->pool[(start + i) % POOL];
	}
	if (!c) {
		c = &r->pool[start % POOL];
		pthread_mutex_lock(&c->m);
	}
	for (int attempt = 0; attempt < 2 && !rp; attempt++) {
		bool reused = c->st != NULL;

		if (!conn_ensure(r, c))
			break;
		rp = roundtrip(c->st, c->rd, argc, argv, lens);
		if (!rp) {
			conn_drop(c);
			/* A new connection that does not answer (a Redis stopped but still
			 * accepting): treat it as away for a second, as a refused connect. */
			if (!reused)
				atomic_store(&r->retry_at, mono_ms() + RETRY_MS);
			/* A kept connection may have died with a restarted Redis: one more try on
			 * a new one. (A command it did run before dying may so run twice; the
			 * commands here are counters and sets, where that errs toward the limit.) */
			if (!reused)
				break;
		}
	}
	pthread_mutex_unlock(&c->m);
	if (rp && rp->type == REDIS_REPLY_ERROR) {
		char q[300];

		srv_log_limited(SG_LOG_WARN, "redis_error", "cmd=%s msg=%s", argv[0],
				sg_log_quote(q, sizeof(q), rp->str));
		freeReplyObject(rp);
		atomic_fetch_add(&r->cmd_err, 1);
		return NULL;
	}
	if (!rp) {
		atomic_fetch_add(&r->cmd_err, 1);
		atomic_store(&r->up, false);
		srv_log_limited(SG_LOG_WARN, "redis_unreachable", "cmd=%s", argv[0]);
		return NULL;
	}
	atomic_fetch_add(&r->cmd_ok, 1);
	atomic_store(&r->up, true);
	return rp;
}

bool srv_redis_up(const struct srv_redis *r)
{
	return r && atomic_load(&r->up);
}

bool srv_redis_ping(struct srv_redis *r)
{
	redisReply *rp = srv_redis_cmd(r, 1, (const char *[]){"PING"}, (const size_t[]){4});

	freeReplyObject(rp);
	return rp != NULL;
}

int srv_redis_open(struct srv_redis **out, const char *url, char *err, size_t errlen)
{
	struct srv_redis *r;
	const char *why = NULL, *pw;
	char e[256];
	struct sg_stream *st;
	redisReader *rd;
	redisReply *rp;

	*out = NULL;
	r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return SG_ENOMEM;
	}
	for (int i = 0; i < POOL; i++)
		pthread_mutex_init(&r->pool[i].m, NULL);
	if (srv_redis_url_parse(url, &r->u, &why)) {
		snprintf(err, errlen, "--redis: %s", why);
		srv_redis_close(r);
		return SG_EINVAL;
	}
	pw = getenv("SG_REDIS_PASSWORD");
	if (!r->u.password[0] && pw && *pw) {
		if (strlen(pw) >= sizeof(r->u.password)) {
			snprintf(err, errlen, "SG_REDIS_PASSWORD: longer than %zu bytes",
				 sizeof(r->u.password) - 1);
			srv_redis_close(r);
			return SG_EINVAL;
		}
		snprintf(r->u.password, sizeof(r->u.password), "%s", pw);
	}
	r->tls.ca_file = r->u.ca[0] ? r->u.ca : NULL;
	r->tls.cert_file = r->u.cert[0] ? r->u.cert : NULL;
	r->tls.key_file = r->u.key[0] ? r->u.key : NULL;
	/* The first connection at start, so a wrong address, password or CA is named now. */
	if (conn_open(r, &st, &rd, e, sizeof(e))) {
		snprintf(err, errlen, "--redis %s:%s: %s", r->u.host, r->u.port, e);
		srv_redis_close(r);
		return SG_EIO;
	}
	rp = roundtrip(st, rd, 1, (const char *[]){"PING"}, (const size_t[]){4});
	if (!reply_ok(rp)) {
		snprintf(err, errlen, "--redis %s:%s: PING: %.200s", r->u.host, r->u.port,
			 rp ? rp->str : no_answer(r, st));
		freeReplyObject(rp);
		sg_stream_close(st);
		redisReaderFree(rd);
		srv_redis_close(r);
		return SG_EIO;
	}
	freeReplyObject(rp);
	r->pool[0].st = st;
	r->pool[0].rd = rd;
	atomic_store(&r->up, true);
	atomic_fetch_add(&r->conn_ok, 1);
	*out = r;
	return 0;
}

/* ---- the subscriber -------------------------------------------------------------------------- */

static void nap(struct srv_redis *r, int ms)
{
	for (int i = 0; i < ms / 50 && !atomic_load(&r->stop); i++)
		usleep(50000);
}

static bool is_message(const redisReply *rp)
{
	return rp && rp->type == REDIS_REPLY_ARRAY && rp->elements == 3 &&
	       rp->element[0]->type == REDIS_REPLY_STRING &&
	       !strcmp(rp->element[0]->str, "message");
}

static void *sub_main(void *arg)
{
	struct srv_redis *r = arg;
	char err[256], q[300], buf[4096];

	while (!atomic_load(&r->stop)) {
		struct sg_stream *st = NULL;
		redisReader *rd = NULL;
		redisReply *rp;

		if (conn_open(r, &st, &rd, err, sizeof(err))) {
			srv_log_limited(SG_LOG_WARN, "redis_unreachable", "what=subscribe msg=%s",
					sg_log_quote(q, sizeof(q), err));
			nap(r, RETRY_MS);
			continue;
		}
		rp = roundtrip(st, rd, 2, (const char *[]){"SUBSCRIBE", r->channel},
			       (const size_t[]){9, strlen(r->channel)});
		if (reply_ok(rp)) {
			atomic_store(&r->subscribed, true);
			srv_log(SG_LOG_INFO, "redis_subscribed", "channel=%s", r->channel);
			r->fn(r->arg); /* whatever was published while nobody listened */
			for (;;) {
				void *m = NULL;
				ssize_t k;

				if (redisReaderGetReply(rd, &m) != REDIS_OK)
					break;
				if (m) {
					if (is_message(m))
						r->fn(r->arg);
					freeReplyObject(m);
					continue;
				}
				if (atomic_load(&r->stop))
					break;
				/* A second at most, to see stop; nothing else is sent here, so a
				 * Redis gone quiet is found by TCP keepalives or its close. */
				k = sg_stream_read(st, buf, sizeof(buf), 1000);
				if (k == -2)
					continue;
				if (k <= 0 || redisReaderFeed(rd, buf, (size_t)k) != REDIS_OK)
					break;
			}
			atomic_store(&r->subscribed, false);
			if (!atomic_load(&r->stop))
				srv_log(SG_LOG_WARN, "redis_unsubscribed", "channel=%s",
					r->channel);
		}
		freeReplyObject(rp);
		sg_stream_close(st);
		redisReaderFree(rd);
		nap(r, atomic_load(&r->stop) ? 0 : 200);
	}
	return NULL;
}

int srv_redis_subscribe(struct srv_redis *r, const char *channel, void (*fn)(void *arg),
			void *arg)
{
	if (r->sub_started || strlen(channel) >= sizeof(r->channel))
		return SG_EINVAL;
	snprintf(r->channel, sizeof(r->channel), "%s", channel);
	r->fn = fn;
	r->arg = arg;
	if (pthread_create(&r->sub, NULL, sub_main, r))
		return SG_ENOMEM;
	r->sub_started = true;
	return 0;
}

bool srv_redis_subscribed(const struct srv_redis *r)
{
	return r && atomic_load(&r->subscribed);
}

void srv_redis_metrics(struct srv_redis *r, FILE *f)
{
	if (!r)
		return;
	fprintf(f,
		"# HELP secureguard_redis_up Whether the last Redis command or connection "
		"worked.\n"
		"# TYPE secureguard_redis_up gauge\n"
		"secureguard_redis_up %d\n"
		"# HELP secureguard_redis_subscribed Whether this server is subscribed to the "
		"change channel.\n"
		"# TYPE secureguard_redis_subscribed gauge\n"
		"secureguard_redis_subscribed %d\n"
		"# HELP secureguard_redis_commands_total Redis commands by result.\n"
		"# TYPE secureguard_redis_commands_total counter\n"
		"secureguard_redis_commands_total{result=\"ok\"} %llu\n"
		"secureguard_redis_commands_total{result=\"error\"} %llu\n"
		"# HELP secureguard_redis_connects_total Connections to Redis opened, by "
		"result.\n"
		"# TYPE secureguard_redis_connects_total counter\n"
		"secureguard_redis_connects_total{result=\"ok\"} %llu\n"
		"secureguard_redis_connects_total{result=\"error\"} %llu\n",
		srv_redis_up(r), srv_redis_subscribed(r), atomic_load(&r->cmd_ok),
		atomic_load(&r->cmd_err), atomic_load(&r->conn_ok), atomic_load(&r->conn_err));
}

void srv_redis_close(struct srv_redis *r)
{
	if (!r)
		return;
	atomic_store(&r->stop, true);
	if (r->sub_started)
		pthread_join(r->sub, NULL);
	for (int i = 0; i < POOL; i++) {
		conn_drop(&r->pool[i]);
		pthread_mutex_destroy(&r->pool[i].m);
	}
	sg_memzero(r->u.password, sizeof(r->u.password));
	free(r);
}
