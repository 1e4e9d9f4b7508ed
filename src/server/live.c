/* The live state several servers share through Redis (`--redis`, docs/OPERATIONS.md "Redis"):
 * request rates and failed-attempt counts per source, the single use of client and agent
 * challenges, and the change channel. Without --redis every function here says "not
 * configured" and its callers keep their state in this process, as a single server does.
 *
 * Keys (the product design's names, under its "sg:" prefix):
 *   sg:rate_limit:{source}:{endpoint}  counter, TTL = the endpoint's window
 *   sg:handshake:nonce:{nonce}         a spent challenge, TTL = until the challenge expires
 * and the channel sg:sync, published after every successful write. */
#include <hiredis/hiredis.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "server/redis.h"
#include "server/srv_int.h"

static struct srv_redis *live;
static atomic_ullong local_decisions, refused_away;

/* One atomic step on a counter of a fixed window (Redis runs a script alone):
 *   check   allowed while the count is below the limit
 *   fail    count one (allowed: still within the limit)
 *   attempt count one unless the limit is reached (then nothing counted, refused)
 *   hit     count one; allowed while within the limit
 *   refund  take one back (never below 0)
 * It answers {allowed, milliseconds left in the window}. The first count sets the window's
 * expiry; a key found without one (PTTL -1) gets it too, so no counter lives forever. */
static const char count_script[] =
    "local k, win, lim, op = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]\n"
    "if op == 'refund' then\n"
    "  if tonumber(redis.call('GET', k) or '0') > 0 then redis.call('DECR', k) end\n"
    "  return {1, 0}\n"
    "end\n"
    "if op == 'check' then\n"
    "  local n = tonumber(redis.call('GET', k) or '0')\n"
    "  return {n < lim and 1 or 0, redis.call('PTTL', k)}\n"
    "end\n"
    "local n = redis.call('INCR', k)\n"
    "if redis.call('PTTL', k) < 0 then redis.call('EXPIRE', k, win) end\n"
    "if op == 'attempt' and n > lim then\n"
    "  redis.call('DECR', k)\n"
    "  return {0, redis.call('PTTL', k)}\n"
    "end\n"
    "return {n <= lim and 1 or 0, redis.call('PTTL', k)}\n";

void srv_live_set(struct srv_redis *r)
{
	live = r;
}

bool srv_live_on(void)
{
	return live != NULL;
}

int srv_live_count(const char *ip, const char *endpoint, const char *op, int window, int limit,
		   int *retry_secs)
{
	char key[160], win[16], lim[16], src[64];
	const char *argv[7];
	size_t lens[7];
	redisReply *rp;
	int ok = -1;

	if (!live)
		return -1;
	srv_ip_source(src, ip);
	snprintf(key, sizeof(key), "sg:rate_limit:%s:%s", src, endpoint);
	snprintf(win, sizeof(win), "%d", window);
	snprintf(lim, sizeof(lim), "%d", limit);
	argv[0] = "EVAL";
	argv[1] = count_script;
	argv[2] = "1";
	argv[3] = key;
	argv[4] = win;
	argv[5] = lim;
	argv[6] = op;
	for (int i = 0; i < 7; i++)
		lens[i] = strlen(argv[i]);
	rp = srv_redis_cmd(live, 7, argv, lens);
	if (rp && rp->type == REDIS_REPLY_ARRAY && rp->elements == 2 &&
	    rp->element[0]->type == REDIS_REPLY_INTEGER &&
	    rp->element[1]->type == REDIS_REPLY_INTEGER) {
		long long ms = rp->element[1]->integer;

		ok = rp->element[0]->integer == 1;
		if (retry_secs)
			*retry_secs = ms > 0 ? (int)((ms + 999) / 1000) : 1;
	}
	freeReplyObject(rp);
	if (ok < 0)
		atomic_fetch_add(&local_decisions, 1);
	return ok;
}

int srv_live_nonce(const uint8_t nonce[8], int64_t expires, bool spend)
{
	char key[64], ttl[24];
	redisReply *rp;
	int64_t left = expires - srv_now();
	int res = -1;

	if (!live)
		return -1;
	memcpy(key, "sg:handshake:nonce:", 19);
	for (int i = 0; i < 8; i++)
		snprintf(key + 19 + 2 * i, 3, "%02x", nonce[i]);
	snprintf(ttl, sizeof(ttl), "%lld", (long long)SG_MAX(left, 1));
	if (spend) {
		const char *argv[] = {"SET", key, "1", "NX", "EX", ttl};
		size_t lens[6];

		for (int i = 0; i < 6; i++)
			lens[i] = strlen(argv[i]);
		rp = srv_redis_cmd(live, 6, argv, lens);
		if (rp)
			res = rp->type == REDIS_REPLY_STATUS; /* OK; nil when it was there */
	} else {
		rp = srv_redis_cmd(live, 2, (const char *[]){"EXISTS", key},
				   (const size_t[]){6, strlen(key)});
		if (rp && rp->type == REDIS_REPLY_INTEGER)
			res = rp->integer == 0;
	}
	freeReplyObject(rp);
	if (res < 0)
		atomic_fetch_add(&refused_away, 1);
	return res;
}

void srv_live_publish(void)
{
	redisReply *rp;

	if (!live)
		return;
	rp = srv_redis_cmd(live, 3, (const char *[]){"PUBLISH", "sg:sync", "1"},
			   (const size_t[]){7, 7, 1});
	freeReplyObject(rp);
}

bool srv_live_ready(void)
{
	return !live || srv_redis_ping(live);
}

void srv_live_metrics(FILE *f)
{
	if (!live)
		return;
	srv_redis_metrics(live, f);
	fprintf(f,
		"# HELP secureguard_redis_local_decisions_total Rate limits decided by this "
		"server alone because Redis was away.\n"
		"# TYPE secureguard_redis_local_decisions_total counter\n"
		"secureguard_redis_local_decisions_total %llu\n"
		"# HELP secureguard_redis_refused_total Client and agent logins refused because "
		"Redis was away (their challenges' single use is kept there).\n"
		"# TYPE secureguard_redis_refused_total counter\n"
		"secureguard_redis_refused_total %llu\n",
		atomic_load(&local_decisions), atomic_load(&refused_away));
}
