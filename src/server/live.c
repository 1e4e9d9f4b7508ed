/* The live state several servers share through Redis (`--redis`, docs/OPERATIONS.md "Redis"):
 * request rates and failed-attempt counts per source, the single use of client and agent
 * challenges, clients' live connection state, temporary access grants and the change channel.
 * Without --redis every function here says "not configured" and its callers keep their state in
 * this process or the database, as a single server does.
 *
 * Keys (the product design's names, under its "sg:" prefix):
 *   sg:rate_limit:{source}:{endpoint}  counter, TTL = the endpoint's window
 *   sg:handshake:nonce:{nonce}         a spent challenge, TTL = until the challenge expires
 *   sg:connection:{client_id}          JSON state as a hub reported it, TTL = 3 report intervals
 *   sg:connections:online              sorted set of online clients, score = entry's expiry
 *   sg:temp_access:{sha384 of token}   grant id, "revoked" or "used up", TTL = until it expires
 *   sg:temp_access:loaded              every unexpired grant has its key, TTL = 60 s
 * and the channel sg:sync, published after every successful write. */
#include <hiredis/hiredis.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
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
		"# HELP secureguard_redis_refused_total Client and agent logins and temporary "
		"access creations refused because Redis was away (challenges' single use and "
		"grants are kept there).\n"
		"# TYPE secureguard_redis_refused_total counter\n"
		"secureguard_redis_refused_total %llu\n",
		atomic_load(&local_decisions), atomic_load(&refused_away));
}

/* One command of n arguments, their lengths taken with strlen (keys, numbers, JSON text). */
static redisReply *cmd_strs(int n, const char **argv)
{
	size_t *lens = malloc((size_t)n * sizeof(*lens));
	redisReply *rp;

	if (!lens)
		return NULL;
	for (int i = 0; i < n; i++)
		lens[i] = strlen(argv[i]);
	rp = srv_redis_cmd(live, n, argv, lens);
	free(lens);
	return rp;
}

/* ---- sg:connection:{client_id} ------------------------------------------------------------ */

/* KEYS[1] the sorted set of online clients (score: when their entry expires, Unix seconds),
 * KEYS[2..] the clients' keys (CONN_PREFIX, 14 characters, and the id); ARGV[1] the TTL, ARGV[2] now, then per client its state (""
 * deletes it) and "1" when online. Expired members go at each call, so the set never grows
 * past the clients reported within one TTL. */
static const char conn_script[] =
    "local ttl, now = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
    "for i = 2, #KEYS do\n"
    "  local k, v, on = KEYS[i], ARGV[2 * i - 1], ARGV[2 * i]\n"
    "  local id = string.sub(k, 15)\n"
    "  if v == '' then redis.call('DEL', k) else redis.call('SET', k, v, 'EX', ttl) end\n"
    "  if on == '1' then redis.call('ZADD', KEYS[1], now + ttl, id)\n"
    "  else redis.call('ZREM', KEYS[1], id) end\n"
    "end\n"
    "return #KEYS - 1\n";

#define CONN_PREFIX "sg:connection:"
#define CONN_ONLINE "sg:connections:online"

int srv_live_conn_put(json_t *states, int ttl)
{
	size_t n = json_object_size(states), k = 0, argc = 3 * n + 6;
	const char **argv = NULL;
	char **own = NULL; /* the keys and the JSON texts */
	char ttls[24], now[24], nkeys[24];
	const char *id;
	json_t *v;
	redisReply *rp;
	int rc = -1;

	if (!live || !n)
		return live ? 0 : -1;
	argv = calloc(argc, sizeof(*argv));
	own = calloc(2 * n, sizeof(*own));
	if (!argv || !own)
		goto out;
	/* EVAL script numkeys | the set, n keys | ttl now, (state, online) per key */
	argv[0] = "EVAL";
	argv[1] = conn_script;
	argv[2] = srv_i64(nkeys, (int64_t)n + 1);
	argv[3] = CONN_ONLINE;
	argv[4 + n] = srv_i64(ttls, ttl);
	argv[5 + n] = srv_i64(now, srv_now());
	json_object_foreach(states, id, v)
	{
		size_t len = strlen(CONN_PREFIX) + strlen(id) + 1;

		own[2 * k] = malloc(len);
		own[2 * k + 1] = json_is_object(v) ? json_dumps(v, JSON_COMPACT) : strdup("");
		if (!own[2 * k] || !own[2 * k + 1])
			goto out;
		snprintf(own[2 * k], len, "%s%s", CONN_PREFIX, id);
		argv[4 + k] = own[2 * k];
		argv[6 + n + 2 * k] = own[2 * k + 1];
		argv[7 + n + 2 * k] = json_is_true(json_object_get(v, "online")) ? "1" : "0";
		k++;
	}
	rp = cmd_strs((int)argc, argv);
	rc = rp && rp->type == REDIS_REPLY_INTEGER ? 0 : -1;
	freeReplyObject(rp);
out:
	for (size_t i = 0; own && i < 2 * n; i++)
		free(own[i]);
	free(own);
	free(argv);
	return rc;
}

int srv_live_conn_overlay(json_t *clients)
{
	size_t n = json_array_size(clients), i;
	const char **argv;
	char **keys;
	redisReply *rp = NULL;
	json_t *c;
	int rc = -1;

	if (!live)
		return -1;
	if (!n)
		return 0;
	argv = calloc(n + 1, sizeof(*argv));
	keys = calloc(n, sizeof(*keys));
	if (!argv || !keys)
		goto out;
	argv[0] = "MGET";
	json_array_foreach(clients, i, c)
	{
		const char *id = json_string_value(json_object_get(c, "id"));
		size_t len = strlen(CONN_PREFIX) + (id ? strlen(id) : 0) + 1;

		keys[i] = malloc(len);
		if (!keys[i])
			goto out;
		snprintf(keys[i], len, "%s%s", CONN_PREFIX, id ? id : "");
		argv[i + 1] = keys[i];
	}
	rp = cmd_strs((int)n + 1, argv);
	if (!rp || rp->type != REDIS_REPLY_ARRAY || rp->elements != n)
		goto out;
	json_array_foreach(clients, i, c)
	{
		const redisReply *e = rp->element[i];
		/* Our own JSON, but read like any input: bounded by the reply's length. */
		json_t *st = e->type == REDIS_REPLY_STRING
				 ? json_loadb(e->str, e->len, JSON_REJECT_DUPLICATES, NULL)
				 : NULL;
		static const char *const nums[] = {"last_handshake", "bytes_sent",
						   "bytes_received"};

		/* No entry: nobody reported the client within the TTL, so it is not online (the
		 * database keeps the last handshake and bytes it recorded). */
		json_object_set_new(c, "online",
				    json_boolean(json_is_true(json_object_get(st, "online"))));
		for (size_t j = 0; j < SG_ARRAY_LEN(nums); j++) {
			json_t *x = json_object_get(st, nums[j]);

			if (json_is_integer(x) && json_integer_value(x) > 0)
				json_object_set(c, nums[j], x);
		}
		json_decref(st);
	}
	rc = 0;
out:
	freeReplyObject(rp);
	for (i = 0; keys && i < n; i++)
		free(keys[i]);
	free(keys);
	free(argv);
	return rc;
}

int64_t srv_live_conn_online(void)
{
	char now[24], from[26];
	redisReply *rp;
	int64_t n = -1;

	if (!live)
		return -1;
	snprintf(from, sizeof(from), "(%s", srv_i64(now, srv_now()));
	rp = cmd_strs(4, (const char *[]){"ZCOUNT", CONN_ONLINE, from, "+inf"});
	if (rp && rp->type == REDIS_REPLY_INTEGER)
		n = rp->integer;
	freeReplyObject(rp);
	return n;
}

/* ---- sg:temp_access:{token} ---------------------------------------------------------------- */

/* Keyed by the token's SHA-384 (hex, as the database keeps it): the token itself never leaves
 * the server. The value is the grant's id while it may be redeemed, "revoked" or "used up" once
 * it may not (so every server answers 410 as the database would, until the grant expires).
 * sg:temp_access:loaded says every grant of the database that has not expired has its key (set
 * by srv_live_temp_fill), so a missing key means "no such grant" only while it is there. It
 * lasts a minute: a key lost in any other way than a restart of Redis (an eviction, a server of
 * an earlier release that writes none during a rolling upgrade) refuses a valid link for a
 * minute at most, for one query a minute on the database while links are redeemed. */
#define TEMP_PREFIX "sg:temp_access:"
#define TEMP_LOADED TEMP_PREFIX "loaded"
#define TEMP_LOADED_TTL "60"
#define TEMP_KEY    (sizeof(TEMP_PREFIX) + 96)

static void temp_key(char key[TEMP_KEY], const char *hash)
{
	snprintf(key, TEMP_KEY, TEMP_PREFIX "%.96s", hash);
}

int srv_live_temp_put(const char *hash, const char *value, int64_t expires_at)
{
	char key[TEMP_KEY], ttl[24];
	redisReply *rp;
	int rc;

	if (!live)
		return 0;
	temp_key(key, hash);
	srv_i64(ttl, SG_MAX(expires_at - srv_now(), 1));
	rp = cmd_strs(5, (const char *[]){"SET", key, value, "EX", ttl});
	rc = rp && rp->type == REDIS_REPLY_STATUS ? 0 : -1;
	freeReplyObject(rp);
	if (rc)
		atomic_fetch_add(&refused_away, 1);
	return rc;
}

void srv_live_temp_end(const char *hash, const char *why)
{
	char key[TEMP_KEY];

	if (!live)
		return;
	temp_key(key, hash);
	/* When this fails the key keeps the grant's id until it expires; harmless: the id only
	 * sends a redeem on to the database, which refuses the grant. */
	freeReplyObject(cmd_strs(5, (const char *[]){"SET", key, why, "XX", "KEEPTTL"}));
}

int srv_live_temp_check(const char *hash, char *why, size_t len)
{
	char key[TEMP_KEY];
	redisReply *rp;
	int rc = -1;

	if (!live)
		return -1;
	temp_key(key, hash);
	rp = cmd_strs(3, (const char *[]){"MGET", TEMP_LOADED, key});
	if (rp && rp->type == REDIS_REPLY_ARRAY && rp->elements == 2) {
		const redisReply *v = rp->element[1];

		if (rp->element[0]->type != REDIS_REPLY_STRING)
			rc = -2;
		else if (v->type != REDIS_REPLY_STRING)
			rc = 0;
		else if (v->len == SRV_ID_LEN)
			rc = 1;
		else {
			snprintf(why, len, "%.*s", (int)SG_MIN(v->len, 32), v->str);
			rc = 2;
		}
	}
	freeReplyObject(rp);
	return rc;
}

/* KEYS: the grants' keys, then the marker; ARGV: the values and TTLs in pairs, then the
 * marker's TTL. */
static const char fill_script[] =
    "for i = 1, #KEYS - 1 do\n"
    "  redis.call('SET', KEYS[i], ARGV[2 * i - 1], 'EX', ARGV[2 * i])\n"
    "end\n"
    "redis.call('SET', KEYS[#KEYS], '1', 'EX', ARGV[#ARGV])\n"
    "return #KEYS - 1\n";

int srv_live_temp_fill(const char *const *hashes, const char *const *values, const int64_t *expires,
		       size_t n)
{
	size_t argc = 3 * n + 5;
	const char **argv = calloc(argc, sizeof(*argv));
	char(*keys)[TEMP_KEY] = calloc(n + 1, sizeof(*keys));
	char(*ttls)[24] = calloc(n + 1, sizeof(*ttls));
	char nkeys[24];
	redisReply *rp = NULL;
	int rc = -1;

	if (!live || !argv || !keys || !ttls)
		goto out;
	argv[0] = "EVAL";
	argv[1] = fill_script;
	argv[2] = srv_i64(nkeys, (int64_t)n + 1);
	for (size_t i = 0; i < n; i++) {
		temp_key(keys[i], hashes[i]);
		argv[3 + i] = keys[i];
		argv[4 + n + 2 * i] = values[i];
		argv[5 + n + 2 * i] = srv_i64(ttls[i], SG_MAX(expires[i] - srv_now(), 1));
	}
	argv[3 + n] = TEMP_LOADED;
	argv[4 + 3 * n] = TEMP_LOADED_TTL;
	rp = cmd_strs((int)argc, argv);
	rc = rp && rp->type == REDIS_REPLY_INTEGER ? 0 : -1;
out:
	freeReplyObject(rp);
	free(ttls);
	free(keys);
	free(argv);
	return rc;
}
