/* The management server's Redis client (`--redis URL`, docs/OPERATIONS.md "Redis").
 *
 * hiredis (Debian's libhiredis 0.14) formats commands (redisFormatCommandArgv) and parses
 * replies (redisReader): the mature, fuzzed parts of it. The I/O is ours (src/net/stream.c),
 * for redis:// and rediss:// alike, because hiredis 0.14 has no TLS (that came with 1.0, not in
 * Debian 12) and one I/O path means plain and TLS connections share the same deadlines,
 * reconnection and tests. Every call has a deadline (1 s to connect, 1 s per command), and
 * after a failed connection no new one is tried for a second, so while Redis is away a request
 * learns it at once instead of waiting on a connect each time. */
#ifndef SG_SERVER_REDIS_H
#define SG_SERVER_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/compiler.h"

struct redisReply;

/* A parsed --redis URL: redis[s]://[[USER]:PASSWORD@]HOST[:PORT][/DB][?ca=FILE&cert=FILE&key=FILE]
 * (user and password percent-decoded; IPv6 hosts in brackets). */
struct srv_redis_url {
	bool tls;
	char user[128];
	char password[256]; /* secret: wiped by srv_redis_close */
	char host[256];
	char port[8];
	int db; /* 0..1023 */
	char ca[512], cert[512], key[512];
};

/* 0, or SG_EINVAL with *why naming what is wrong (never the password). Bounded: no part longer
 * than its field. Fuzzed by tests/fuzz/fuzz_redis_url.c. */
int srv_redis_url_parse(const char *url, struct srv_redis_url *u, const char **why) SG_WUR;

struct srv_redis;

/* Opens the client and checks that Redis answers (AUTH, SELECT, PING) within its deadlines;
 * err says why not. A password in SG_REDIS_PASSWORD is used when the URL has none. */
int srv_redis_open(struct srv_redis **out, const char *url, char *err, size_t errlen) SG_WUR;
void srv_redis_close(struct srv_redis *r);

/* One command; the reply (free with freeReplyObject), or NULL when Redis could not be reached
 * or answered an error (both counted and logged, at most once per 10 s). */
struct redisReply *srv_redis_cmd(struct srv_redis *r, int argc, const char **argv,
				 const size_t *lens);
/* Whether the last command or connection worked (no I/O). */
bool srv_redis_up(const struct srv_redis *r);
/* A PING now: true when Redis answered. */
bool srv_redis_ping(struct srv_redis *r);

/* Subscribes to channel on a connection of its own, in a thread that resubscribes by itself
 * (every second while Redis is away); fn runs in that thread after each subscription (for
 * whatever was published while nobody listened) and for each message. */
int srv_redis_subscribe(struct srv_redis *r, const char *channel, void (*fn)(void *arg),
			void *arg) SG_WUR;
bool srv_redis_subscribed(const struct srv_redis *r);

/* Prometheus lines: secureguard_redis_up, _subscribed, _commands_total{result},
 * _connects_total{result}. */
void srv_redis_metrics(struct srv_redis *r, FILE *f);

#endif
