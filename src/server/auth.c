/* Authentication of the management server: admin logins with access JWTs (HS384, RFC 7519 and
 * RFC 7518 section 3.2) and rotating refresh tokens with reuse detection, API keys, client
 * sessions from a key-possession proof, the per-IP failure limiter and account lockout; and the
 * user and API key endpoints.
 *
 * Tokens (refresh "sgr_", API keys "sgk_", client sessions "sgs_", temporary access "sgt_") are
 * 32 random bytes; the database stores only hex(SHA-384(token)) and finds a token by that hash,
 * so no comparison ever runs over a secret byte by byte.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "crypto/crypto.h"
#include "secureguard/sg_errors.h"
#include "server/srv_int.h"

#define JWT_HEADER "{\"alg\":\"HS384\",\"typ\":\"JWT\"}"

/* ---- JWT ------------------------------------------------------------------------------------ */

#define JWT_ISSUER "secureguard-server"
/* Leeway for clocks of servers in a cluster (RFC 7519 section 4.1.4 and 4.1.5: "some small
 * leeway ... to account for clock skew"). */
#define JWT_LEEWAY 60

/* Claims: sub (user id), role (informational: every request re-reads the user), iat, exp, jti,
 * iss, gen (the user's token generation when issued) and sid (the login, i.e. the refresh-token
 * family, it belongs to). A token is refused once its user's generation moved (password change,
 * role change, disabled, logout everywhere) or its login was revoked (logout, refresh-token
 * reuse): see srv_authenticate. */
static char *jwt_make(const struct srv *s, const char *sub, const char *role, int64_t gen,
		      const char *sid, int64_t now)
{
	char h64[64], *p64 = NULL, *payload = NULL, *tok = NULL, jti[SRV_ID_LEN + 1];
	json_t *claims;
	uint8_t mac[SG_SHA384_LEN];
	char m64[72];
	size_t plen, tlen;
	struct sg_iov iov[3];

	srv_uuid(jti);
	claims = json_pack("{s:s,s:s,s:I,s:I,s:s,s:s,s:I,s:s}", "sub", sub, "role", role, "iat",
			   (json_int_t)now, "exp", (json_int_t)(now + s->access_ttl), "jti", jti,
			   "iss", JWT_ISSUER, "gen", (json_int_t)gen, "sid", sid);
	payload = claims ? json_dumps(claims, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(claims);
	if (!payload)
		return NULL;
	plen = strlen(payload);
	p64 = malloc(4 * (plen / 3 + 1) + 1);
	if (!p64)
		goto out;
	srv_b64url(h64, (const uint8_t *)JWT_HEADER, strlen(JWT_HEADER));
	srv_b64url(p64, (const uint8_t *)payload, plen);
	iov[0] = (struct sg_iov){h64, strlen(h64)};
	iov[1] = (struct sg_iov){".", 1};
	iov[2] = (struct sg_iov){p64, strlen(p64)};
	if (!sg_hmac_sha384(mac, s->jwt_key, sizeof(s->jwt_key), iov, 3))
		goto out;
	srv_b64url(m64, mac, sizeof(mac));
	tlen = strlen(h64) + strlen(p64) + strlen(m64) + 3;
	tok = malloc(tlen);
	if (tok)
		snprintf(tok, tlen, "%s.%s.%s", h64, p64, m64);
out:
	free(payload);
	free(p64);
	return tok;
}

static bool claim_id(json_t *j, const char *name, char out[SRV_ID_LEN + 1])
{
	json_t *v = json_object_get(j, name);

	if (!json_is_string(v) || strlen(json_string_value(v)) != SRV_ID_LEN)
		return false;
	memcpy(out, json_string_value(v), SRV_ID_LEN + 1);
	return true;
}

int srv_jwt_check(const struct srv *s, const char *tok, struct srv_jwt *out)
{
	const char *d1 = strchr(tok, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	char h64[64];
	uint8_t mac[SG_SHA384_LEN], got[SG_SHA384_LEN + 2];
	uint8_t *payload = NULL;
	struct sg_iov iov;
	json_t *j = NULL, *v;
	int64_t now = srv_now();
	int n, rc = SG_EAUTH;

	memset(out, 0, sizeof(*out));
	if (!d1 || !d2 || strchr(d2 + 1, '.') || strlen(tok) > 4096)
		return SG_EAUTH;
	/* Only our exact header: no "alg":"none", no algorithm substitution. */
	srv_b64url(h64, (const uint8_t *)JWT_HEADER, strlen(JWT_HEADER));
	if ((size_t)(d1 - tok) != strlen(h64) || memcmp(tok, h64, strlen(h64)))
		return SG_EAUTH;
	iov = (struct sg_iov){tok, (size_t)(d2 - tok)};
	if (!sg_hmac_sha384(mac, s->jwt_key, sizeof(s->jwt_key), &iov, 1))
		return SG_EAUTH;
	/* Strict base64url (no padding, no other characters, zero trailing bits): one spelling
	 * per signature, so a token cannot be varied and still pass. */
	if (srv_b64url_decode(got, sizeof(got), d2 + 1, strlen(d2 + 1)) != SG_SHA384_LEN ||
	    !sg_memeq(got, mac, SG_SHA384_LEN))
		return SG_EAUTH;
	payload = malloc((size_t)(d2 - d1));
	if (!payload)
		return SG_ENOMEM;
	n = srv_b64url_decode(payload, (size_t)(d2 - d1), d1 + 1, (size_t)(d2 - d1 - 1));
	if (n <= 0)
		goto out;
	j = json_loadb((const char *)payload, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
	/* RFC 7519 section 4.1: iss must be ours, exp in the future, nbf (if any) and iat not in
	 * the future, beyond the leeway. */
	v = json_object_get(j, "iss");
	if (!json_is_string(v) || strcmp(json_string_value(v), JWT_ISSUER))
		goto out;
	v = json_object_get(j, "exp");
	if (!json_is_integer(v) || json_integer_value(v) <= now)
		goto out;
	v = json_object_get(j, "iat");
	if (!json_is_integer(v) || json_integer_value(v) > now + JWT_LEEWAY)
		goto out;
	v = json_object_get(j, "nbf");
	if (v && (!json_is_integer(v) || json_integer_value(v) > now + JWT_LEEWAY))
		goto out;
	v = json_object_get(j, "gen");
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		goto out;
	out->gen = json_integer_value(v);
	if (!claim_id(j, "sub", out->sub) || !claim_id(j, "sid", out->sid))
		goto out;
	rc = 0;
out:
	json_decref(j);
	free(payload);
	return rc;
}

/* ---- per-IP limiter ------------------------------------------------------------------------- */

/* Attempts are counted when they start (so a burst of slow password checks cannot all slip in
 * before the first one fails) and refunded when they succeed. IPv6 sources are grouped by /64:
 * one host usually holds a whole /64 and could otherwise rotate through it. When every slot is
 * taken, the one to reuse is an expired slot, else the one with the fewest attempts: flooding
 * from many addresses does not flush out the record of an address already over its limit. */
#define IP_SLOTS 4096
static struct ip_slot {
	char ip[64];
	int64_t start;
	int count;
} ip_slots[IP_SLOTS];
static pthread_mutex_t ip_lock = PTHREAD_MUTEX_INITIALIZER;

void srv_ip_source(char out[64], const char *ip)
{
	struct in6_addr a;

	if (strchr(ip, ':') && inet_pton(AF_INET6, ip, &a) == 1) {
		memset(a.s6_addr + 8, 0, 8);
		inet_ntop(AF_INET6, &a, out, 64);
		strncat(out, "/64", 63 - strlen(out));
		return;
	}
	snprintf(out, 64, "%s", ip);
}

static struct ip_slot *ip_find(struct srv *s, const char *ip, bool create)
{
	int64_t now = srv_now();
	struct ip_slot *victim = NULL;
	bool vexp = false;
	char key[64];

	srv_ip_source(key, ip);
	for (int i = 0; i < IP_SLOTS; i++) {
		struct ip_slot *sl = &ip_slots[i];
		bool expired = !sl->ip[0] || now - sl->start >= s->ip_fail_window;

		if (sl->ip[0] && !strcmp(sl->ip, key)) {
			if (expired) {
				sl->start = now;
				sl->count = 0;
			}
			return sl;
		}
		if (!victim || (expired && !vexp) ||
		    (expired == vexp &&
		     (sl->count < victim->count ||
		      (sl->count == victim->count && sl->start < victim->start)))) {
			victim = sl;
			vexp = expired;
		}
	}
	if (!create)
		return NULL;
	snprintf(victim->ip, sizeof(victim->ip), "%s", key);
	victim->start = now;
	victim->count = 0;
	return victim;
}

/* With --redis the counts live in sg:rate_limit:{source}:auth_fail, shared by every server;
 * while Redis is away each server counts alone here (never unlimited, never refusing all). */
#define LIVE_EP "auth_fail"

bool srv_ip_limited(struct srv *s, const char *ip)
{
	struct ip_slot *sl;
	bool limited;
	int rc = srv_live_count(ip, LIVE_EP, "check", s->ip_fail_window, s->ip_fail_limit, NULL);

	if (rc >= 0)
		return rc == 0;
	pthread_mutex_lock(&ip_lock);
	sl = ip_find(s, ip, false);
	limited = sl && sl->count >= s->ip_fail_limit;
	pthread_mutex_unlock(&ip_lock);
	return limited;
}

void srv_ip_failed(struct srv *s, const char *ip)
{
	if (srv_live_count(ip, LIVE_EP, "fail", s->ip_fail_window, s->ip_fail_limit, NULL) >= 0)
		return;
	pthread_mutex_lock(&ip_lock);
	ip_find(s, ip, true)->count++;
	pthread_mutex_unlock(&ip_lock);
}

bool srv_ip_attempt(struct srv *s, const char *ip)
{
	struct ip_slot *sl;
	bool ok;
	int rc = srv_live_count(ip, LIVE_EP, "attempt", s->ip_fail_window, s->ip_fail_limit, NULL);

	if (rc >= 0)
		return rc == 1;
	pthread_mutex_lock(&ip_lock);
	sl = ip_find(s, ip, true);
	ok = sl->count < s->ip_fail_limit;
	if (ok)
		sl->count++;
	pthread_mutex_unlock(&ip_lock);
	return ok;
}

int srv_ip_retry_secs(struct srv *s, const char *ip)
{
	struct ip_slot *sl;
	int64_t left = 1;
	int secs = 1;

	if (srv_live_count(ip, LIVE_EP, "check", s->ip_fail_window, s->ip_fail_limit, &secs) >= 0)
		return SG_MAX(secs, 1);
	pthread_mutex_lock(&ip_lock);
	sl = ip_find(s, ip, false);
	if (sl && sl->count >= s->ip_fail_limit)
		left = sl->start + s->ip_fail_window - srv_now();
	pthread_mutex_unlock(&ip_lock);
	return (int)SG_MAX(left, 1);
}

void srv_ip_refund(struct srv *s, const char *ip)
{
	struct ip_slot *sl;

	if (srv_live_count(ip, LIVE_EP, "refund", s->ip_fail_window, s->ip_fail_limit, NULL) >= 0)
		return;
	pthread_mutex_lock(&ip_lock);
	sl = ip_find(s, ip, false);
	if (sl && sl->count > 0)
		sl->count--;
	pthread_mutex_unlock(&ip_lock);
}

/* ---- authentication of a request ------------------------------------------------------------ */

int srv_bump_token_gen(struct sg_db_conn *c, const char *user_id)
{
	const char *p[] = {user_id};
	int rc = srv_neg(
	    sg_db_exec(c, "UPDATE admin_users SET token_gen = token_gen + 1 WHERE id = $1", 1, p));

	/* The OpenID provider's single sign-on sessions (routes_oidc.c) end with the tokens: a
	 * password or role change, disabling, logging out everywhere. */
	if (!rc)
		rc = srv_neg(sg_db_exec(c, "DELETE FROM oidc_sessions WHERE user_id = $1", 1, p));
	/* So do the user's MFA-gated VPN sessions (routes_vpn.c): their peers leave the hubs. */
	if (!rc)
		rc = srv_vpn_end_user(c, user_id, "credentials_changed");
	return rc;
}

static void set_name(struct srv_principal *p, const char *a, const char *b)
{
	snprintf(p->name, sizeof(p->name), "%s%s", a, b ? b : "");
}

bool srv_authenticate(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	const char *h = srv_header(r, "Authorization"), *tok;
	struct sg_db_conn *c = NULL;
	struct sg_db_res *res = NULL;
	char hash[97], now[24];
	int64_t t = srv_now();
	bool ok = false;
	int rc;

	if (!h || strncasecmp(h, "Bearer ", 7)) {
		srv_error(out, 401, NULL,
			  "missing credentials: send Authorization: Bearer <token>");
		return false;
	}
	tok = h + 7;
	c = sg_db_acquire(s->db);
	srv_i64(now, t);
	if (!strncmp(tok, "sgk_", 4)) {
		const char *p[] = {hash};

		srv_token_hash(hash, tok);
		rc = sg_db_query(c, &res,
				 "SELECT k.id, k.name, k.role, k.expires_at, k.revoked, u.id, "
				 "u.role, u.enabled, k.last_used FROM api_keys k JOIN admin_users u ON "
				 "u.id = k.user_id WHERE k.key_hash = $1",
				 1, p);
		if (rc < 0) {
			srv_dberr(out, c, rc);
			goto out;
		}
		if (rc != 1 || srv_res_i64(res, 0, 4) ||
		    (sg_db_res_get(res, 0, 3) && srv_res_i64(res, 0, 3) <= t) ||
		    !srv_res_i64(res, 0, 7)) {
			srv_error(out, 401, NULL, "invalid, revoked or expired API key");
			goto out;
		}
		r->who.kind = PRINCIPAL_APIKEY;
		snprintf(r->who.id, sizeof(r->who.id), "%s", sg_db_res_get(res, 0, 0));
		snprintf(r->who.user_id, sizeof(r->who.user_id), "%s", sg_db_res_get(res, 0, 5));
		set_name(&r->who, "apikey:", sg_db_res_get(res, 0, 1));
		/* A key never has more rights than its owner has now. */
		r->who.role = SG_MIN(srv_role_parse(sg_db_res_get(res, 0, 2)),
				     srv_role_parse(sg_db_res_get(res, 0, 6)));
		/* last_used to the minute: a write per request would serialise every API-key
		 * request on SQLite's write lock (p99 55-80 ms against 6-8 ms with a JWT). */
		if (!sg_db_res_get(res, 0, 8) || t - srv_res_i64(res, 0, 8) >= 60) {
			const char *u[] = {now, r->who.id};

			(void)sg_db_exec(c, "UPDATE api_keys SET last_used = $1 WHERE id = $2", 2,
					 u);
		}
		ok = true;
	} else if (!strncmp(tok, "sgs_", 4)) {
		const char *p[] = {hash};

		srv_token_hash(hash, tok);
		rc = sg_db_query(c, &res,
				 "SELECT s.client_id, c.name, c.enabled, s.expires_at FROM "
				 "client_sessions s JOIN clients c ON c.id = s.client_id WHERE "
				 "s.token_hash = $1",
				 1, p);
		if (rc < 0) {
			srv_dberr(out, c, rc);
			goto out;
		}
		if (rc != 1 || !srv_res_i64(res, 0, 2) || srv_res_i64(res, 0, 3) <= t) {
			srv_error(out, 401, NULL, "invalid or expired client session");
			goto out;
		}
		r->who.kind = PRINCIPAL_CLIENT;
		r->who.role = ROLE_NONE;
		snprintf(r->who.id, sizeof(r->who.id), "%s", sg_db_res_get(res, 0, 0));
		set_name(&r->who, sg_db_res_get(res, 0, 1), NULL);
		ok = true;
	} else if (!strncmp(tok, "sga_", 4)) {
		const char *p[] = {hash};

		/* An agent's session (routes_agents.c): a revoked agent is cut off here, at its
		 * next request, since revocation also deletes its sessions. */
		srv_token_hash(hash, tok);
		rc = sg_db_query(c, &res,
				 "SELECT s.agent_id, a.name, a.revoked, s.expires_at FROM "
				 "agent_sessions s JOIN agents a ON a.id = s.agent_id WHERE "
				 "s.token_hash = $1",
				 1, p);
		if (rc < 0) {
			srv_dberr(out, c, rc);
			goto out;
		}
		if (rc != 1 || srv_res_i64(res, 0, 2) || srv_res_i64(res, 0, 3) <= t) {
			srv_error(out, 401, NULL, "invalid or expired agent session");
			goto out;
		}
		r->who.kind = PRINCIPAL_AGENT;
		r->who.role = ROLE_NONE;
		snprintf(r->who.id, sizeof(r->who.id), "%s", sg_db_res_get(res, 0, 0));
		set_name(&r->who, "agent:", sg_db_res_get(res, 0, 1));
		ok = true;
	} else {
		struct srv_jwt jwt;
		const char *p[2] = {jwt.sub, jwt.sid};

		if (srv_jwt_check(s, tok, &jwt)) {
			srv_error(out, 401, NULL, "invalid or expired access token");
			goto out;
		}
		/* Revocation reaches access tokens (docs/SERVER.md, "Revocation"): the user must
		 * exist and be enabled, the token's generation must be the user's current one,
		 * and its login must still have a refresh token that is not revoked. One indexed
		 * lookup per request, on both engines. */
		rc = sg_db_query(c, &res,
				 "SELECT u.email, u.role, u.enabled, u.token_gen, CASE WHEN EXISTS "
				 "(SELECT 1 FROM refresh_tokens t WHERE t.family_id = $2 AND "
				 "t.user_id = u.id AND t.revoked = 0) THEN 1 ELSE 0 END, CASE WHEN "
				 "NOT " SRV_SQL_HAS_2FA("u") " AND (SELECT require_2fa FROM settings "
				 "WHERE id = 1) = 1 THEN 1 ELSE 0 END FROM admin_users u WHERE u.id = $1",
				 2, p);
		if (rc < 0) {
			srv_dberr(out, c, rc);
			goto out;
		}
		if (rc != 1 || !srv_res_i64(res, 0, 2) || srv_res_i64(res, 0, 3) != jwt.gen ||
		    !srv_res_i64(res, 0, 4)) {
			srv_error(out, 401, NULL, "invalid, expired or revoked access token");
			goto out;
		}
		r->who.kind = PRINCIPAL_USER;
		r->who.role = srv_role_parse(sg_db_res_get(res, 0, 1));
		r->who.needs_2fa = srv_res_i64(res, 0, 5) != 0;
		snprintf(r->who.id, sizeof(r->who.id), "%s", jwt.sub);
		snprintf(r->who.user_id, sizeof(r->who.user_id), "%s", jwt.sub);
		set_name(&r->who, sg_db_res_get(res, 0, 0), NULL);
		ok = true;
	}
out:
	sg_db_res_free(res);
	sg_db_release(c);
	return ok;
}

/* ---- login ---------------------------------------------------------------------------------- */

/* Hashes of a password nobody has, one per scheme, verified for unknown e-mails. */
static char *dummy_hash[2];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void make_dummy(void)
{
	dummy_hash[0] = srv_pw_hash("secureguard timing equaliser", false);
	dummy_hash[1] = srv_pw_hash("secureguard timing equaliser", true);
}

static bool valid_email(const char *e)
{
	const char *at = strchr(e, '@');

	return srv_valid_text(e, 254, false) && at && at != e && at[1] && !strchr(at + 1, '@') &&
	       !strchr(e, ' ') && !strchr(e, ',');
}

static bool fips_setting(struct sg_db_conn *c);

struct token_pair {
	char refresh[64];
	char *access;
};

static int issue_tokens(struct srv *s, struct sg_db_conn *c, const char *user_id, const char *role,
			int64_t gen, const char *family, struct token_pair *tp)
{
	char id[SRV_ID_LEN + 1], hash[97], exp[24], now[24];
	const char *p[] = {id, user_id, family, hash, exp, now};
	int64_t t = srv_now();

	srv_uuid(id);
	srv_new_token(tp->refresh, "sgr_");
	srv_token_hash(hash, tp->refresh);
	srv_i64(exp, t + s->refresh_ttl);
	srv_i64(now, t);
	tp->access = jwt_make(s, user_id, role, gen, family, t);
	if (!tp->access)
		return SG_ENOMEM;
	return srv_neg(sg_db_exec(c,
				  "INSERT INTO refresh_tokens (id, user_id, family_id, "
				  "token_hash, expires_at, revoked, created_at) VALUES "
				  "($1, $2, $3, $4, $5, 0, $6)",
				  6, p));
}

static json_t *token_json(struct srv *s, struct token_pair *tp, const char *uid, const char *email,
			  const char *role)
{
	return json_pack("{s:s,s:s,s:i,s:s,s:{s:s,s:s,s:s}}", "access_token", tp->access,
			 "token_type", "Bearer", "expires_in", s->access_ttl, "refresh_token",
			 tp->refresh, "user", "id", uid, "email", email, "role", role);
}

/* Browsers (the admin console) ask for the refresh token as a cookie instead of in the body
 * ("refresh_cookie": true at login): HttpOnly, so no script of the page can read it and carry it
 * away; SameSite=Strict, so no other site's page makes the browser send it (RFC 6265bis section
 * 5.6.7); Path=/api/auth, so it goes to the auth routes only; Secure when the server speaks
 * HTTPS. The access token then lives in the page's memory only, and a reload gets a new one
 * from POST /api/auth/refresh with the cookie. */
#define REFRESH_COOKIE "sg_refresh"

static void set_refresh_cookie(struct srv *s, struct srv_resp *out, const char *token)
{
	char v[200];

	snprintf(v, sizeof(v),
		 REFRESH_COOKIE "=%s; Path=/api/auth; Max-Age=%d; HttpOnly; SameSite=Strict%s",
		 token ? token : "", token ? s->refresh_ttl : 0, s->tls ? "; Secure" : "");
	srv_resp_header(out, "Set-Cookie", v);
	sg_memzero(v, sizeof(v));
}

void srv_login_answer(struct srv *s, struct srv_req *r, struct srv_resp *out, json_t *tokens)
{
	char tok[80];

	if (!json_is_true(json_object_get(r->json, "refresh_cookie"))) {
		srv_json(out, 200, tokens);
		return;
	}
	snprintf(tok, sizeof(tok), "%s",
		 json_string_value(json_object_get(tokens, "refresh_token")) ?: "");
	json_object_del(tokens, "refresh_token");
	srv_json(out, 200, tokens);
	set_refresh_cookie(s, out, tok);
	sg_memzero(tok, sizeof(tok));
}

bool srv_cookie_get(const char *header, const char *name, char *out, size_t len)
{
	const char *p = header;
	size_t n = strlen(name);

	while (p && *p) {
		while (*p == ' ' || *p == ';')
			p++;
		if (!strncmp(p, name, n) && p[n] == '=') {
			const char *v = p + n + 1;
			size_t vl = strcspn(v, "; ");

			if (!vl || vl >= len)
				return false;
			memcpy(out, v, vl);
			out[vl] = 0;
			return true;
		}
		p = strchr(p, ';');
	}
	return false;
}

/* The sg_refresh cookie's value into out; false when there is none that looks like a refresh
 * token. */
static bool refresh_cookie(struct srv_req *r, char *out, size_t len)
{
	return srv_cookie_get(srv_header(r, "cookie"), REFRESH_COOKIE, out, len) &&
	       !strncmp(out, "sgr_", 4) && strlen(out) > 4;
}

/* Account lockout is per (account, source): a source (an IPv4 address, an IPv6 /64) that fails
 * --lockout times in a row against one account is locked out of that account for --lockout-secs,
 * doubling with each further lock of the series (up to LOCK_MAX_SECS), until a login from that
 * source succeeds or it stays quiet for LOCK_FORGET_SECS. Other sources are not affected: an
 * attacker cannot lock the owner out, only himself. A source locked out of one account can still
 * try others, within the per-address limit (--login-ip-limit); an attacker spread over many
 * addresses gets about --lockout guesses per address and doubling, against passwords of at least
 * 12 characters and the hashing cost of each guess. */
#define LOCK_MAX_SECS	 86400
#define LOCK_FORGET_SECS 86400
/* A source that logged in to the account within this long is known (its logins queue apart from
 * others' for password hashing, srv_pw_check). */
#define KNOWN_SOURCE_SECS (30 * 86400)

static int64_t lock_secs(const struct srv *s, int64_t earlier_locks)
{
	int64_t d = s->lockout_secs, cap = SG_MAX((int64_t)s->lockout_secs, LOCK_MAX_SECS);

	for (int64_t i = 0; i < earlier_locks && d < cap; i++)
		d *= 2;
	return SG_MIN(d, cap);
}

/* Records a failed login: first the failure count (and the lock once it reaches lockout_after)
 * in a transaction of its own, then the audit row. Counting never depends on the audit write
 * succeeding: a request that makes the audit insert fail must not escape the lockout. */
struct fail_ctx {
	struct srv_req *r;
	const char *uid, *email, *reason;
	char source[64];
	bool locked;
	int64_t lock_secs;
};

static int fail_count_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct fail_ctx *x = ctx;
	struct sg_db_res *res = NULL;
	char now[24], quiet[24], until[24];
	int64_t t = srv_now();
	const char *p[] = {x->uid, x->source, srv_i64(now, t),
			   srv_i64(quiet, t - LOCK_FORGET_SECS)};
	int rc;

	x->locked = false;
	x->lock_secs = 0;
	/* A source quiet for a day (and not locked) starts its count and its backoff over. */
	rc =
	    srv_neg(sg_db_exec(c,
			       "DELETE FROM login_failures WHERE user_id = $1 AND source = $2 AND "
			       "last_failure < $4 AND (locked_until IS NULL OR locked_until <= $3)",
			       4, p));
	if (!rc)
		rc = srv_neg(sg_db_exec(
		    c,
		    "INSERT INTO login_failures (user_id, source, failures, locks, last_failure) "
		    "VALUES ($1, $2, 1, 0, $3) ON CONFLICT (user_id, source) DO UPDATE SET "
		    "failures = login_failures.failures + 1, last_failure = $3",
		    3, p));
	if (!rc)
		rc = srv_neg(sg_db_exec(c,
					"UPDATE admin_users SET failed_logins = failed_logins + 1 "
					"WHERE id = $1",
					1, p));
	if (!rc)
		rc = srv_neg(sg_db_query(c, &res,
					 "SELECT failures, locks FROM login_failures WHERE "
					 "user_id = $1 AND source = $2",
					 2, p));
	if (!rc && sg_db_res_rows(res) == 1 && srv_res_i64(res, 0, 0) >= s->lockout_after) {
		const char *q[] = {x->uid, x->source, srv_i64(until, 0)};

		x->lock_secs = lock_secs(s, srv_res_i64(res, 0, 1));
		srv_i64(until, t + x->lock_secs);
		rc =
		    srv_neg(sg_db_exec(c,
				       "UPDATE login_failures SET failures = 0, locks = locks + 1, "
				       "locked_until = $3 WHERE user_id = $1 AND source = $2",
				       3, q));
		/* admin_users.locked_until shows the latest lock of any source. */
		if (!rc)
			rc = srv_neg(sg_db_exec(c,
						"UPDATE admin_users SET locked_until = $3 WHERE "
						"id = $1 AND $2 = $2 AND (locked_until IS NULL OR "
						"locked_until < $3)",
						3, q));
		x->locked = true;
	}
	sg_db_res_free(res);
	return rc;
}

static int fail_audit_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct fail_ctx *x = ctx;
	json_t *d = json_pack("{s:s,s:s}", "email", x->email, "reason", x->reason);
	int rc;

	(void)s;
	if (x->locked) {
		json_object_set_new(d, "locked", json_true());
		json_object_set_new(d, "lock_secs", json_integer(x->lock_secs));
	}
	rc = srv_audit(c, x->r, "user.failed_login", "user", x->uid, x->email, "login", d);
	json_decref(d);
	return rc;
}

void srv_login_failed(struct srv *s, struct srv_req *r, struct sg_db_conn *c, const char *uid,
		      const char *email, const char *reason)
{
	struct fail_ctx x = {r, uid, email, reason, "", false, 0};
	int rc = 0;

	srv_ip_source(x.source, r->source_ip);
	/* A wrong second-factor code counts like a wrong password: a source guessing codes
	 * after a stolen password is locked out of the account the same way. */
	if (uid && (!strcmp(reason, "bad_password") || !strcmp(reason, "bad_code") ||
		    !strcmp(reason, "bad_passkey") || !strcmp(reason, "passkey_counter"))) {
		rc = srv_tx(s, c, fail_count_tx, &x, false);
		if (rc)
			srv_log(SG_LOG_ERROR, "failed_login_not_counted", "err=%s",
				sg_err_name(rc));
		else if (x.locked)
			srv_log_limited(SG_LOG_WARN, "account_locked",
					"user=%s src=%s lock_secs=%lld", uid, x.source,
					(long long)x.lock_secs);
	}
	rc = srv_tx(s, c, fail_audit_tx, &x, false);
	if (rc)
		srv_log(SG_LOG_ERROR, "failed_login_not_recorded", "err=%s", sg_err_name(rc));
}

/* What a successful login records, in the caller's transaction: this source's failures go
 * (locks of other sources stay), the source becomes known (see srv_pw_check), the account's
 * last_login is t. */
static int login_success(struct sg_db_conn *c, const char *uid, const char *source, int64_t t)
{
	char now[24];
	const char *p[] = {srv_i64(now, t), uid, source};
	int rc = srv_neg(sg_db_exec(c,
				    "DELETE FROM login_failures WHERE user_id = $2 AND source = $3 "
				    "AND $1 = $1",
				    3, p));

	if (!rc)
		rc = srv_neg(sg_db_exec(c,
					"INSERT INTO login_known (user_id, source, last_success) "
					"VALUES ($2, $3, $1) ON CONFLICT (user_id, source) DO UPDATE "
					"SET last_success = $1",
					3, p));
	if (!rc)
		rc = srv_neg(sg_db_exec(c,
					"UPDATE admin_users SET failed_logins = 0, locked_until = "
					"(SELECT MAX(locked_until) FROM login_failures WHERE user_id = "
					"$2 AND locked_until > $1), last_login = $1 WHERE id = $2",
					2, p));
	return rc;
}

int srv_login_success(struct sg_db_conn *c, const struct srv_login *who, int64_t t)
{
	return login_success(c, who->user_id, who->source, t);
}

/* The end of a successful login (password, or password and second factor: second names it for
 * the audit row): this source's failures cleared, the source known, tokens issued, audited; in
 * one transaction, retried on a serialisation conflict. */
int srv_login_finish(struct srv *s, struct srv_req *r, struct sg_db_conn *c, const char *uid,
		     const char *email, const char *role, int64_t gen, const char *second,
		     const char *method, json_t **result)
{
	struct token_pair tpair = {{0}, NULL}, *tp = &tpair;
	char source[64];
	int64_t t = srv_now();
	int rc = 0;

	srv_ip_source(source, r->source_ip);
	r->who.kind = PRINCIPAL_USER;
	r->who.role = srv_role_parse(role);
	snprintf(r->who.id, sizeof(r->who.id), "%s", uid);
	snprintf(r->who.name, sizeof(r->who.name), "%s", email);
	for (int attempt = 0; attempt < 20; attempt++) {
		char family[SRV_ID_LEN + 1];
		json_t *d = second   ? json_pack("{s:s}", "second_factor", second)
			    : method ? json_pack("{s:s}", "method", method)
				     : NULL;

		free(tp->access);
		tp->access = NULL;
		srv_uuid(family);
		rc = sg_db_begin(c);
		if (!rc)
			rc = login_success(c, uid, source, t);
		if (!rc)
			rc = issue_tokens(s, c, uid, role, gen, family, tp);
		if (!rc)
			rc = srv_audit(c, r, "user.login", "user", uid, email, "login", d);
		if (!rc)
			rc = sg_db_commit(c);
		json_decref(d);
		if (rc != SG_EAGAIN)
			break;
		sg_db_rollback(c);
	}
	if (rc)
		sg_db_rollback(c);
	else if (!(*result = token_json(s, tp, uid, email, role)))
		rc = SG_ENOMEM;
	free(tp->access);
	sg_memzero(tp->refresh, sizeof(tp->refresh));
	return rc;
}

int srv_password_login(struct srv *s, struct srv_req *r, const char *email, const char *password,
		       struct srv_login *who)
{
	struct sg_db_conn *c = NULL;
	struct sg_db_res *res = NULL;
	char uid[SRV_ID_LEN + 1] = "", role[32] = "";
	char *pwhash = NULL;
	bool found, fips, verified, enabled = false, locked = false, known = false, second = false;
	int64_t t = srv_now(), gen = 0;
	int rc, status = 401;

	memset(who, 0, sizeof(*who));
	if (!email || !password || !valid_email(email) || !*password || strlen(password) > 1024)
		return 401;
	/* Counted now, refunded on success: in-flight attempts count against the limit. */
	if (!srv_ip_attempt(s, r->source_ip)) {
		srv_log_limited(SG_LOG_WARN, "login_rate_limited", "src=%s", r->source_ip);
		who->why = "too many failed logins from this address; retry later";
		who->retry = srv_ip_retry_secs(s, r->source_ip);
		return 429;
	}
	srv_ip_source(who->source, r->source_ip);
	pthread_once(&dummy_once, make_dummy);
	c = sg_db_acquire(s->db);
	{
		const char *p[] = {email, who->source};

		rc = sg_db_query(
		    c, &res,
		    "SELECT u.id, u.password_hash, u.role, u.enabled, u.token_gen, "
		    "f.locked_until, k.last_success, CASE WHEN " SRV_SQL_HAS_2FA("u") " THEN 1 "
		    "ELSE 0 END FROM admin_users u LEFT JOIN "
		    "login_failures f ON f.user_id = u.id AND f.source = $2 LEFT JOIN "
		    "login_known k ON k.user_id = u.id AND k.source = $2 WHERE u.email = $1",
		    2, p);
	}
	if (rc < 0) {
		srv_ip_refund(s, r->source_ip);
		status = 503;
		goto out;
	}
	found = rc == 1;
	fips = fips_setting(c);
	if (found) {
		snprintf(uid, sizeof(uid), "%s", sg_db_res_get(res, 0, 0));
		snprintf(role, sizeof(role), "%s", sg_db_res_get(res, 0, 2));
		pwhash = strdup(sg_db_res_get(res, 0, 1) ? sg_db_res_get(res, 0, 1) : "");
		enabled = srv_res_i64(res, 0, 3) != 0;
		gen = srv_res_i64(res, 0, 4);
		locked = sg_db_res_get(res, 0, 5) && srv_res_i64(res, 0, 5) > t;
		known = sg_db_res_get(res, 0, 6) && srv_res_i64(res, 0, 6) > t - KNOWN_SOURCE_SECS;
		second = srv_res_i64(res, 0, 7) != 0;
	}
	sg_db_res_free(res);
	res = NULL;
	/* The slow part runs without a database connection, so a flood of logins cannot take the
	 * pool from everyone else; and it runs on every path (unknown e-mail, locked, disabled),
	 * so the response time does not tell which case it was. */
	sg_db_release(c);
	c = NULL;
	/* A login from a source the account logged in from before waits apart from the others: a
	 * brute force (from addresses that never succeeded) fills its own queue, and the owner
	 * logging in from a known address still gets a turn. */
	if (found && pwhash)
		rc = srv_pw_check(pwhash, password, known);
	else
		rc = dummy_hash[fips] ? srv_pw_check(dummy_hash[fips], password, false) : 0;
	if (rc == SG_EAGAIN) {
		/* Not a failed attempt: nothing was checked. Answered at once whatever the
		 * account, so it tells nothing about it. */
		srv_ip_refund(s, r->source_ip);
		srv_log_limited(SG_LOG_WARN, "login_queue_full", "src=%s", r->source_ip);
		who->why = "too many logins in progress; retry";
		who->retry = 1;
		status = 429;
		goto out;
	}
	verified = found && rc == 1;
	c = sg_db_acquire(s->db);
	if (!found)
		srv_login_failed(s, r, c, NULL, email, "unknown_user");
	else if (locked)
		srv_login_failed(s, r, c, uid, email, "locked");
	else if (!verified)
		srv_login_failed(s, r, c, uid, email, "bad_password");
	else if (!enabled)
		srv_login_failed(s, r, c, uid, email, "disabled");
	else {
		srv_ip_refund(s, r->source_ip);
		snprintf(who->user_id, sizeof(who->user_id), "%s", uid);
		snprintf(who->email, sizeof(who->email), "%s", email);
		snprintf(who->role, sizeof(who->role), "%s", role);
		who->gen = gen;
		who->second = second;
		status = 200;
	}
out:
	free(pwhash);
	sg_db_res_free(res);
	sg_db_release(c);
	return status;
}

bool srv_login_refused(struct srv_resp *out, int status, const struct srv_login *who)
{
	if (status == 200)
		return false;
	if (status == 429) {
		srv_error(out, 429, NULL, "%s", who->why);
		srv_retry_after(out, who->retry);
	} else if (status == 503) {
		srv_error(out, 503, NULL, "the database is busy; retry");
		srv_retry_after(out, 1);
	} else {
		srv_error(out, 401, NULL, "invalid credentials");
	}
	return true;
}

void h_login(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	static const struct field_spec spec[] = {{"email", F_STR, true, false},
						 {"password", F_STR, true, false},
						 {"refresh_cookie", F_BOOL, false, false}};
	const char *email, *password;
	struct sg_db_conn *c = NULL;
	struct srv_login who;
	json_t *result = NULL;
	int rc, status;

	if (!srv_query_check(r, out, NULL) || !srv_check_fields(r, out, spec, SG_ARRAY_LEN(spec)))
		return;
	email = json_string_value(json_object_get(r->json, "email"));
	password = json_string_value(json_object_get(r->json, "password"));
	if (!valid_email(email)) {
		srv_error(out, 400, "email", "not an e-mail address");
		return;
	}
	if (!*password || strlen(password) > 1024) {
		srv_error(out, 400, "password", "must be 1 to 1024 characters");
		return;
	}
	status = srv_password_login(s, r, email, password, &who);
	if (srv_login_refused(out, status, &who))
		return;
	c = sg_db_acquire(s->db);
	/* The password was right; an account with a second factor answers a challenge instead
	 * of tokens (routes_mfa.c) and the login completes at POST /api/auth/login/mfa. */
	if (who.second) {
		srv_mfa_challenge(s, r, c, who.user_id, email, out);
		goto out;
	}
	rc = srv_login_finish(s, r, c, who.user_id, email, who.role, who.gen, NULL, NULL,
			      &result);
	if (rc) {
		srv_dberr(out, c, rc);
		goto out;
	}
	srv_login_answer(s, r, out, result);
out:
	sg_db_release(c);
}

struct refresh_ctx {
	struct srv_req *r;
	const char *token;
	struct token_pair tp;
	char uid[SRV_ID_LEN + 1], email[256], role[32];
	int status;
	const char *msg;
};

/* A used token presented again: it was stolen, or the legitimate holder's copy was. Either
 * way the whole family is revoked (RFC 9700 section 4.14.2) and the caller answers 401. */
static int refresh_reuse(struct sg_db_conn *c, struct refresh_ctx *x, const char *family)
{
	const char *f[] = {family};
	json_t *d = json_pack("{s:s}", "family_id", family);
	int rc;

	rc = srv_neg(
	    sg_db_exec(c, "UPDATE refresh_tokens SET revoked = 1 WHERE family_id = $1", 1, f));
	if (!rc)
		rc = srv_audit(c, x->r, "user.token_reuse", "user", x->uid, x->email, "refresh", d);
	json_decref(d);
	x->status = 401;
	x->msg = "refresh token reused: every token of this login is revoked";
	return rc;
}

static int refresh_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct refresh_ctx *x = ctx;
	struct sg_db_res *res = NULL;
	char hash[97], now[24];
	const char *p[] = {hash};
	int64_t t = srv_now();
	int rc;

	free(x->tp.access);
	x->tp.access = NULL;
	srv_token_hash(hash, x->token);
	rc = sg_db_query(c, &res,
			 "SELECT t.id, t.user_id, t.family_id, t.expires_at, t.used_at, t.revoked, "
			 "u.email, u.role, u.enabled, u.token_gen FROM refresh_tokens t JOIN "
			 "admin_users u ON u.id = t.user_id WHERE t.token_hash = $1",
			 1, p);
	if (rc < 0)
		goto out;
	x->status = 401;
	x->msg = "invalid or expired refresh token";
	if (rc != 1) {
		rc = 1;
		goto out;
	}
	snprintf(x->uid, sizeof(x->uid), "%s", sg_db_res_get(res, 0, 1));
	snprintf(x->email, sizeof(x->email), "%s", sg_db_res_get(res, 0, 6));
	snprintf(x->role, sizeof(x->role), "%s", sg_db_res_get(res, 0, 7));
	x->r->who.kind = PRINCIPAL_USER;
	x->r->who.role = srv_role_parse(x->role);
	snprintf(x->r->who.id, sizeof(x->r->who.id), "%s", x->uid);
	snprintf(x->r->who.name, sizeof(x->r->who.name), "%s", x->email);
	if (sg_db_res_get(res, 0, 4) || srv_res_i64(res, 0, 5)) {
		rc = refresh_reuse(c, x, sg_db_res_get(res, 0, 2));
		goto out; /* committed, and the caller answers 401 */
	}
	if (srv_res_i64(res, 0, 3) <= t || !srv_res_i64(res, 0, 8)) {
		rc = 1;
		goto out;
	}
	{
		const char *u[] = {srv_i64(now, t), sg_db_res_get(res, 0, 0)};

		rc = sg_db_exec(c,
				"UPDATE refresh_tokens SET used_at = $1 WHERE id = $2 AND used_at "
				"IS NULL AND revoked = 0",
				2, u);
		if (rc == 0) {
			/* Another transaction used (or revoked) the token between our read and
			 * this write: the same token presented twice at once is reuse too. Under
			 * PostgreSQL's READ COMMITTED this is where a concurrent replay shows. */
			rc = refresh_reuse(c, x, sg_db_res_get(res, 0, 2));
			goto out;
		}
		if (rc < 0)
			goto out;
	}
	rc = issue_tokens(s, c, x->uid, x->role, srv_res_i64(res, 0, 9), sg_db_res_get(res, 0, 2),
			  &x->tp);
	if (!rc)
		rc = srv_audit(c, x->r, "user.token_refreshed", "user", x->uid, x->email, "refresh",
			       NULL);
	x->status = 200;
out:
	sg_db_res_free(res);
	return rc;
}

void h_refresh(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	static const struct field_spec spec[] = {{"refresh_token", F_STR, false, false}};
	struct refresh_ctx x = {.r = r};
	struct sg_db_conn *c;
	char cookie[80];
	bool from_cookie = false;
	int rc;

	if (!srv_query_check(r, out, NULL) ||
	    (r->json && !srv_check_fields(r, out, spec, SG_ARRAY_LEN(spec))))
		return;
	x.token = json_string_value(json_object_get(r->json, "refresh_token"));
	if (!x.token && refresh_cookie(r, cookie, sizeof(cookie))) {
		x.token = cookie;
		from_cookie = true;
	}
	if (!x.token) {
		srv_error(out, 401, "refresh_token",
			  "no refresh token: neither in the body nor in a sg_refresh cookie");
		return;
	}
	if (strncmp(x.token, "sgr_", 4) || strlen(x.token) > 64) {
		srv_error(out, 400, "refresh_token", "not a refresh token");
		return;
	}
	c = sg_db_acquire(s->db);
	rc = srv_tx(s, c, refresh_tx, &x, false);
	if (rc < 0) {
		srv_dberr(out, c, rc);
	} else if (x.status != 200) {
		srv_error(out, x.status, "refresh_token", "%s", x.msg);
		if (from_cookie) /* a dead login: the browser forgets it */
			set_refresh_cookie(s, out, NULL);
	} else if (from_cookie) {
		json_t *j = token_json(s, &x.tp, x.uid, x.email, x.role);

		json_object_del(j, "refresh_token");
		srv_json(out, 200, j);
		set_refresh_cookie(s, out, x.tp.refresh);
	} else {
		srv_json(out, 200, token_json(s, &x.tp, x.uid, x.email, x.role));
	}
	free(x.tp.access);
	sg_memzero(x.tp.refresh, sizeof(x.tp.refresh));
	sg_memzero(cookie, sizeof(cookie));
	sg_db_release(c);
}

struct logout_ctx {
	struct srv_req *r;
	const char *token;
	bool found;
};

static int logout_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct logout_ctx *x = ctx;
	char hash[97];
	int rc;

	(void)s;
	if (x->token) {
		const char *p[] = {hash, x->r->who.id};

		/* That login ends: its refresh tokens, and (through the family) its access
		 * tokens, the one just used among them when it is the caller's own. */
		srv_token_hash(hash, x->token);
		rc = sg_db_exec(
		    c,
		    "UPDATE refresh_tokens SET revoked = 1 WHERE family_id IN (SELECT "
		    "family_id FROM refresh_tokens WHERE token_hash = $1 AND user_id = $2)",
		    2, p);
		x->found = rc > 0;
	} else {
		const char *p[] = {x->r->who.id};

		/* Everywhere: every refresh token, and every access token through the user's
		 * token generation. */
		rc =
		    sg_db_exec(c, "UPDATE refresh_tokens SET revoked = 1 WHERE user_id = $1", 1, p);
		if (rc >= 0)
			rc = srv_bump_token_gen(c, x->r->who.id);
		x->found = true;
	}
	if (rc < 0)
		return rc;
	return srv_audit(c, x->r, "user.logout", "user", x->r->who.id, x->r->who.name, "logout",
			 NULL);
}

void h_logout(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	static const struct field_spec spec[] = {{"refresh_token", F_STR, false, false}};
	struct logout_ctx x = {.r = r};
	struct sg_db_conn *c;
	char cookie[80];
	bool from_cookie = false;
	int rc;

	if (!srv_query_check(r, out, NULL) || !srv_check_fields(r, out, spec, SG_ARRAY_LEN(spec)))
		return;
	x.token = json_string_value(json_object_get(r->json, "refresh_token"));
	/* A browser's login (the console): its cookie names the login to end. */
	if (!x.token && refresh_cookie(r, cookie, sizeof(cookie))) {
		x.token = cookie;
		from_cookie = true;
	}
	if (x.token && strlen(x.token) > 64) {
		srv_error(out, 400, "refresh_token", "not a refresh token");
		return;
	}
	c = sg_db_acquire(s->db);
	rc = srv_tx(s, c, logout_tx, &x, false);
	if (rc)
		srv_dberr(out, c, rc);
	else
		srv_json(out, 200, json_pack("{s:b}", "revoked", x.found));
	if (from_cookie)
		set_refresh_cookie(s, out, NULL);
	sg_memzero(cookie, sizeof(cookie));
	sg_db_release(c);
}

/* ---- client sessions ------------------------------------------------------------------------ */

/* A client proves it holds the private key of its classic public key: the server hands out a
 * single-use random challenge; the client answers
 *   proof = HMAC-SHA-384(X25519(client_priv, server_pub),
 *                        "secureguard client auth v1" || challenge || client_pub || server_pub)
 * and only the holder of client_priv (or of the server's key) can compute it. The challenge makes
 * every proof fresh; binding both public keys stops a proof from being replayed to another
 * server or for another key. */
#define CHALLENGE_TTL 60
/* Challenges are stateless, so requesting them fills nothing: 32 bytes of
 *   expiry (8, big-endian seconds) || nonce (8 random) || HMAC-SHA-384(chal_key, label ||
 *   expiry || nonce) truncated to 16 bytes.
 * Only a challenge that completed a valid proof is remembered (until it expires), to refuse
 * its replay; failed attempts are counted per address instead. */
#define USED_CHALLENGES 8192
static const char chal_label[] = "secureguard challenge v1";
static struct {
	uint8_t nonce[8];
	int64_t expires;
} used_challenges[USED_CHALLENGES];
static pthread_mutex_t challenge_lock = PTHREAD_MUTEX_INITIALIZER;

static bool challenge_mac(const struct srv *s, const uint8_t ch[16], uint8_t mac[16])
{
	uint8_t full[SG_SHA384_LEN];
	struct sg_iov iov[2] = {{chal_label, sizeof(chal_label) - 1}, {ch, 16}};

	if (!sg_hmac_sha384(full, s->chal_key, sizeof(s->chal_key), iov, 2))
		return false;
	memcpy(mac, full, 16);
	return true;
}

static int64_t get_be64s(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return (int64_t)v;
}

void h_client_challenge(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	uint8_t ch[32];
	char c64[48], pub64[48];
	uint64_t exp = (uint64_t)(srv_now() + CHALLENGE_TTL);

	if (!srv_query_check(r, out, NULL) || !srv_check_fields(r, out, NULL, 0))
		return;
	if (srv_ip_limited(s, r->source_ip)) {
		srv_error(out, 429, NULL, "too many failed attempts from this address");
		srv_retry_after(out, srv_ip_retry_secs(s, r->source_ip));
		return;
	}
	for (int i = 0; i < 8; i++)
		ch[i] = (uint8_t)(exp >> (56 - 8 * i));
	if (!sg_random_bytes(ch + 8, 8) || !challenge_mac(s, ch, ch + 16)) {
		srv_error(out, 500, NULL, "no randomness");
		return;
	}
	srv_b64url(c64, ch, sizeof(ch));
	srv_b64(pub64, s->auth_pub, sizeof(s->auth_pub));
	srv_json(out, 200,
		 json_pack("{s:s,s:s,s:i}", "challenge", c64, "server_public_key", pub64,
			   "expires_in", CHALLENGE_TTL));
}

bool srv_challenge_valid(const struct srv *s, const uint8_t ch[32])
{
	uint8_t mac[16];
	int64_t t = srv_now(), exp = get_be64s(ch);
	bool used = false;

	if (!challenge_mac(s, ch, mac) || !sg_memeq(mac, ch + 16, 16) || exp <= t ||
	    exp > t + CHALLENGE_TTL)
		return false;
	/* With --redis a challenge spent on any server is spent on all (the spend below is
	 * the authority; this only answers early). Redis away: let the spend refuse. */
	if (srv_live_on())
		return srv_live_nonce(ch + 8, exp, false) != 0;
	pthread_mutex_lock(&challenge_lock);
	for (int i = 0; i < USED_CHALLENGES && !used; i++)
		used =
		    used_challenges[i].expires > t && !memcmp(used_challenges[i].nonce, ch + 8, 8);
	pthread_mutex_unlock(&challenge_lock);
	return !used;
}

const char *srv_challenge_spend(const uint8_t ch[32])
{
	int64_t t = srv_now();
	int free_slot = -1;
	const char *why = NULL;

	if (srv_live_on()) {
		/* Fail closed: without Redis another server could not see this spend, and a
		 * replayed proof would pass there. */
		int rc = srv_live_nonce(ch + 8, get_be64s(ch), true);

		return rc < 0 ? SRV_LIVE_AWAY : rc == 0 ? "challenge already used" : NULL;
	}
	pthread_mutex_lock(&challenge_lock);
	for (int i = 0; i < USED_CHALLENGES; i++) {
		if (used_challenges[i].expires > t) {
			if (!memcmp(used_challenges[i].nonce, ch + 8, 8)) {
				why = "challenge already used";
				break;
			}
		} else if (free_slot < 0) {
			free_slot = i;
		}
	}
	if (!why && free_slot < 0)
		why = "too many client logins in the last minute; retry later";
	if (!why) {
		memcpy(used_challenges[free_slot].nonce, ch + 8, 8);
		used_challenges[free_slot].expires = get_be64s(ch);
	}
	pthread_mutex_unlock(&challenge_lock);
	return why;
}

const char *srv_key_proof(struct srv *s, bool known, const uint8_t pub[32],
			  const uint8_t ch[SRV_CHALLENGE_LEN], const uint8_t proof[SG_SHA384_LEN],
			  const char *label)
{
	struct sg_iov iov[4] = {{label, strlen(label)},
				{ch, SRV_CHALLENGE_LEN},
				{pub, 32},
				{s->auth_pub, 32}};
	uint8_t shared[32], mac[SG_SHA384_LEN];
	const char *reason = NULL;

	if (!srv_challenge_valid(s, ch))
		return "unknown, expired or used challenge";
	if (!known)
		return "unknown public key";
	if (!sg_x25519(shared, s->auth_priv, pub))
		return "bad public key";
	if (!sg_hmac_sha384(mac, shared, sizeof(shared), iov, 4) ||
	    !sg_memeq(mac, proof, sizeof(mac)))
		reason = "bad proof";
	else
		reason = srv_challenge_spend(ch); /* single use */
	sg_memzero(shared, sizeof(shared));
	return reason;
}

void h_client_auth(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	static const struct field_spec spec[] = {{"public_key", F_STR, true, false},
						 {"challenge", F_STR, true, false},
						 {"proof", F_STR, true, false}};
	const char *pub64, *ch64, *pr64;
	uint8_t pub[32], ch[34], proof[SG_SHA384_LEN + 2];
	static const char label[] = "secureguard client auth v1";
	struct sg_db_conn *c = NULL;
	struct sg_db_res *res = NULL;
	char cid[SRV_ID_LEN + 1] = "", token[64] = "", hash[97], now[24], exp[24], sid[37];
	const char *reason = NULL;
	int64_t t = srv_now();
	int rc;

	if (!srv_query_check(r, out, NULL) || !srv_check_fields(r, out, spec, SG_ARRAY_LEN(spec)))
		return;
	pub64 = json_string_value(json_object_get(r->json, "public_key"));
	ch64 = json_string_value(json_object_get(r->json, "challenge"));
	pr64 = json_string_value(json_object_get(r->json, "proof"));
	if (strlen(pub64) != 44 || srv_b64_decode(pub, sizeof(pub), pub64, 44) != 32) {
		srv_error(out, 400, "public_key", "must be a base64 X25519 public key");
		return;
	}
	if (srv_b64url_decode(ch, sizeof(ch), ch64, strlen(ch64)) != 32) {
		srv_error(out, 400, "challenge",
			  "must be a challenge from /api/auth/client/challenge");
		return;
	}
	if (srv_b64url_decode(proof, sizeof(proof), pr64, strlen(pr64)) != SG_SHA384_LEN) {
		srv_error(out, 400, "proof", "must be base64url of 48 bytes");
		return;
	}
	if (srv_ip_limited(s, r->source_ip)) {
		srv_error(out, 429, NULL, "too many failed attempts from this address");
		srv_retry_after(out, srv_ip_retry_secs(s, r->source_ip));
		return;
	}
	c = sg_db_acquire(s->db);
	{
		const char *p[] = {pub64, srv_i64(now, t)};

		rc = sg_db_query(c, &res,
				 "SELECT id, name FROM clients WHERE public_key_classic = $1 AND "
				 "enabled = 1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY "
				 "created_at LIMIT 1",
				 2, p);
	}
	if (rc < 0) {
		srv_dberr(out, c, rc);
		goto out;
	}
	reason = srv_key_proof(s, rc == 1, pub, ch, proof, label);
	if (rc == 1) {
		snprintf(cid, sizeof(cid), "%s", sg_db_res_get(res, 0, 0));
		r->who.kind = PRINCIPAL_CLIENT;
		snprintf(r->who.id, sizeof(r->who.id), "%s", cid);
		snprintf(r->who.name, sizeof(r->who.name), "%s", sg_db_res_get(res, 0, 1));
	}
	if (reason && !strcmp(reason, SRV_LIVE_AWAY)) {
		srv_error(out, 503, NULL, "%s", reason);
		srv_retry_after(out, 1);
		goto out;
	}
	if (reason) {
		json_t *d = json_pack("{s:s,s:s}", "reason", reason, "public_key", pub64);

		srv_ip_failed(s, r->source_ip);
		rc = sg_db_begin(c);
		if (!rc)
			rc = srv_audit(c, r, "client.auth", "client", cid[0] ? cid : NULL,
				       cid[0] ? r->who.name : NULL, "failure", d);
		if (!rc)
			rc = sg_db_commit(c);
		if (rc)
			sg_db_rollback(c);
		json_decref(d);
		srv_error(out, 401, NULL, "client authentication failed: %s", reason);
		goto out;
	}
	srv_new_token(token, "sgs_");
	srv_token_hash(hash, token);
	srv_uuid(sid);
	srv_i64(exp, t + s->session_ttl);
	for (int attempt = 0; attempt < 20; attempt++) {
		const char *p[] = {sid, cid, hash, exp, now};

		rc = sg_db_begin(c);
		if (!rc)
			rc = srv_neg(
			    sg_db_exec(c,
				       "INSERT INTO client_sessions (id, client_id, "
				       "token_hash, expires_at, created_at) VALUES ($1, $2, "
				       "$3, $4, $5)",
				       5, p));
		if (!rc)
			rc = srv_audit(c, r, "client.auth", "client", cid, r->who.name, "success",
				       NULL);
		if (!rc)
			rc = sg_db_commit(c);
		if (rc != SG_EAGAIN)
			break;
		sg_db_rollback(c);
	}
	if (rc) {
		sg_db_rollback(c);
		srv_dberr(out, c, rc);
		goto out;
	}
	srv_json(out, 200,
		 json_pack("{s:s,s:s,s:i,s:s}", "session_token", token, "token_type", "Bearer",
			   "expires_in", s->session_ttl, "client_id", cid));
out:
	sg_memzero(token, sizeof(token));
	sg_db_res_free(res);
	sg_db_release(c);
}

void h_me(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	static const char *const kinds[] = {"none", "user", "api_key", "client", "agent"};

	(void)s;
	if (!srv_query_check(r, out, NULL))
		return;
	srv_json(
	    out, 200,
	    json_pack("{s:s,s:s,s:s,s:s,s:b}", "kind", kinds[r->who.kind], "id", r->who.id, "name",
		      r->who.name, "role",
		      r->who.kind == PRINCIPAL_CLIENT  ? "client"
		      : r->who.kind == PRINCIPAL_AGENT ? "agent"
						       : srv_role_name(r->who.role),
		      "needs_2fa", r->who.needs_2fa));
}

/* ---- users ---------------------------------------------------------------------------------- */

#define USER_COLS                                                                                  \
	"id, email, role, enabled, failed_logins, locked_until, last_login, created_at, CASE WHEN " \
	"totp_secret IS NULL THEN 0 ELSE 1 END AS totp_enabled, (SELECT COUNT(*) FROM passkeys pk " \
	"WHERE pk.user_id = admin_users.id) AS passkeys"
#define USER_KINDS "sssbiiiibi"

static bool fips_setting(struct sg_db_conn *c)
{
	struct sg_db_res *res = NULL;
	bool fips = true;

	if (sg_db_query(c, &res, "SELECT fips_required FROM settings WHERE id = 1", 0, NULL) == 1)
		fips = srv_res_i64(res, 0, 0) != 0;
	sg_db_res_free(res);
	return fips;
}

static bool valid_password(struct srv_resp *out, const char *pw)
{
	if (strlen(pw) < 12 || strlen(pw) > 1024) {
		srv_error(out, 400, "password", "must be 12 to 1024 characters");
		return false;
	}
	return true;
}

void h_users_list(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	const char *p[2];

	srv_list_page(s, out, "admin_users", USER_COLS, USER_KINDS, "", "email, id", p, 0,
		      srv_limit(r), srv_offset(r));
}

static json_t *user_get(struct sg_db_conn *c, const char *id, int *rc)
{
	struct sg_db_res *res = NULL;
	const char *p[] = {id};
	json_t *j = NULL;

	*rc = sg_db_query(c, &res, "SELECT " USER_COLS " FROM admin_users WHERE id = $1", 1, p);
	if (*rc == 1)
		j = srv_row_json(res, 0, USER_KINDS);
	sg_db_res_free(res);
	return j;
}

struct user_ctx {
	struct srv_req *r;
	const char *id, *email, *role, *pwhash;
	int enabled; /* -1 = unchanged */
	bool unlock;
	int status;
	const char *msg, *field;
	json_t *result;
};

static int user_create_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct user_ctx *x = ctx;
	char now[24], en[2] = {(char)('0' + (x->enabled != 0)), 0};
	const char *p[] = {x->id, x->email, x->pwhash, x->role, en, srv_i64(now, srv_now())};
	json_t *d;
	int rc;

	(void)s;
	rc = sg_db_exec(c,
			"INSERT INTO admin_users (id, email, password_hash, role, enabled, "
			"failed_logins, created_at) VALUES ($1, $2, $3, $4, $5, 0, $6)",
			6, p);
	if (rc == SG_EEXIST) {
		x->status = 409;
		x->field = "email";
		x->msg = "a user with this e-mail exists";
		return 1;
	}
	if (rc < 0)
		return rc;
	d = json_pack("{s:s,s:b}", "role", x->role, "enabled", x->enabled != 0);
	rc = srv_audit(c, x->r, "user.created", "user", x->id, x->email, "create", d);
	json_decref(d);
	if (!rc)
		x->result = user_get(c, x->id, &rc);
	return rc < 0 ? rc : 0;
}

void h_users_create(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	static const struct field_spec spec[] = {{"email", F_STR, true, false},
						 {"password", F_STR, true, false},
						 {"role", F_STR, true, false},
						 {"enabled", F_BOOL, false, false}};
	struct user_ctx x = {.r = r, .enabled = 1};
	char id[SRV_ID_LEN + 1];
	struct sg_db_conn *c;
	bool fips;
	char *hash;
	json_t *en;
	int rc;

	if (!srv_query_check(r, out, NULL) || !srv_check_fields(r, out, spec, SG_ARRAY_LEN(spec)))
		return;
	x.email = json_string_value(json_object_get(r->json, "email"));
	x.role = json_string_value(json_object_get(r->json, "role"));
	en = json_object_get(r->json, "enabled");
	if (en)
		x.enabled = json_is_true(en);
	if (!valid_email(x.email)) {
		srv_error(out, 400, "email", "not an e-mail address");
		return;
	}
	if (srv_role_parse(x.role) == ROLE_NONE) {
		srv_error(out, 400, "role", "must be super_admin, admin or viewer");
		return;
	}
	if (!valid_password(out, json_string_value(json_object_get(r->json, "password"))))
		return;
	/* No database connection is held while hashing (see h_login). */
	c = sg_db_acquire(s->db);
	fips = fips_setting(c);
	sg_db_release(c);
	hash = srv_pw_hash(json_string_value(json_object_get(r->json, "password")), fips);
	c = sg_db_acquire(s->db);
	if (!hash) {
		srv_error(out, 500, NULL, "password hashing failed");
		goto out;
	}
	srv_uuid(id);
	x.id = id;
	x.pwhash = hash;
	rc = srv_tx(s, c, user_create_tx, &x, false);
	if (rc < 0)
		srv_dberr(out, c, rc);
	else if (rc > 0)
		srv_error(out, x.status, x.field, "%s", x.msg);
	else {
		srv_json(out, 201, x.result);
		x.result = NULL;
	}
out:
	json_decref(x.result);
	free(hash);
	sg_db_release(c);
}

void h_users_get(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct sg_db_conn *c;
	json_t *j;
	int rc;

	if (!srv_query_check(r, out, NULL))
		return;
	c = sg_db_acquire(s->db);
	j = user_get(c, r->params[0], &rc);
	if (rc < 0)
		srv_dberr(out, c, rc);
	else if (!j)
		srv_error(out, 404, NULL, "no such user");
	else
		srv_json(out, 200, j);
	sg_db_release(c);
}

/* Serializes the transactions that change roles or remove users, before they read anything.
 * Under PostgreSQL's READ COMMITTED two of them could each count the other's super_admin as
 * still enabled and both commit, leaving none; SQLite's BEGIN IMMEDIATE already serializes. */
#define USER_ADMIN_LOCK "6000765028494475267" /* 0x5347000000000003, pg_advisory_xact_lock */

static int user_admin_lock(struct sg_db_conn *c)
{
	const char *p[] = {USER_ADMIN_LOCK};

	if (sg_db_conn_engine(c) != SG_DB_POSTGRES)
		return 0;
	return srv_neg(sg_db_exec(c, "SELECT pg_advisory_xact_lock($1)", 1, p));
}

/* Refuses a change that would leave no enabled super_admin. */
static int last_super_guard(struct sg_db_conn *c, struct user_ctx *x)
{
	struct sg_db_res *res = NULL;
	int rc;

	rc = sg_db_query(
	    c, &res, "SELECT COUNT(*) FROM admin_users WHERE role = 'super_admin' AND enabled = 1",
	    0, NULL);
	if (rc < 0)
		return rc;
	rc = srv_res_i64(res, 0, 0) < 1 ? 1 : 0;
	sg_db_res_free(res);
	if (rc) {
		x->status = 409;
		x->msg = "at least one enabled super_admin must remain";
	}
	return rc;
}

static int user_update_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct user_ctx *x = ctx;
	const char *p[] = {x->id};
	json_t *d = json_object(), *cur;
	int rc;

	(void)s;
	json_decref(x->result);
	x->result = NULL;
	cur = NULL;
	rc = user_admin_lock(c);
	if (rc < 0)
		goto out;
	cur = user_get(c, x->id, &rc);
	if (rc < 0)
		goto out;
	if (!cur) {
		x->status = 404;
		x->msg = "no such user";
		rc = 1;
		goto out;
	}
#define UPD(sql, val, key, jv)                                                                     \
	do {                                                                                       \
		const char *pp[] = {val, x->id};                                                   \
		rc = sg_db_exec(c, sql, 2, pp);                                                    \
		if (rc < 0)                                                                        \
			goto out;                                                                  \
		json_object_set_new(d, key, jv);                                                   \
	} while (0)
	if (x->email) {
		UPD("UPDATE admin_users SET email = $1 WHERE id = $2", x->email, "email",
		    json_string(x->email));
	}
	if (x->role)
		UPD("UPDATE admin_users SET role = $1 WHERE id = $2", x->role, "role",
		    json_string(x->role));
	if (x->enabled >= 0)
		UPD("UPDATE admin_users SET enabled = $1 WHERE id = $2", x->enabled ? "1" : "0",
		    "enabled", json_boolean(x->enabled));
	if (x->pwhash)
		UPD("UPDATE admin_users SET password_hash = $1, failed_logins = 0, locked_until = "
		    "NULL WHERE id = $2",
		    x->pwhash, "password_changed", json_true());
	if (x->unlock)
		UPD("UPDATE admin_users SET failed_logins = 0, locked_until = NULL WHERE id = "
		    "$2 AND $1 = $1",
		    "1", "unlocked", json_true());
#undef UPD
	if (x->pwhash || (x->enabled == 0)) {
		/* New password or disabled: every refresh token of the user dies. */
		rc =
		    sg_db_exec(c, "UPDATE refresh_tokens SET revoked = 1 WHERE user_id = $1", 1, p);
		if (rc < 0)
			goto out;
	}
	if (x->pwhash || x->enabled == 0 ||
	    (x->role && strcmp(x->role, json_string_value(json_object_get(cur, "role"))))) {
		/* And every access token: a disabled user enabled again does not get old tokens
		 * back; after a role change no token carries the old role (a refresh gives one
		 * with the new role). */
		rc = srv_bump_token_gen(c, x->id);
		if (rc < 0)
			goto out;
	}
	if (x->pwhash || x->unlock) {
		rc = sg_db_exec(c, "DELETE FROM login_failures WHERE user_id = $1", 1, p);
		if (rc < 0)
			goto out;
	}
	rc = last_super_guard(c, x);
	if (rc)
		goto out;
	rc = srv_audit(c, x->r, "user.updated", "user", x->id,
		       json_string_value(json_object_get(cur, "email")), "update", d);
	if (!rc)
		x->result = user_get(c, x->id, &rc);
	rc = srv_neg(rc);
out:
	if (rc == SG_EEXIST) {
		x->status = 409;
		x->field = "email";
		x->msg = "a user with this e-mail exists";
		rc = 1;
	}
	json_decref(cur);
	json_decref(d);
	return rc;
}

void h_users_update(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	static const struct field_spec spec[] = {{"email", F_STR, false, false},
						 {"password", F_STR, false, false},
						 {"role", F_STR, false, false},
						 {"enabled", F_BOOL, false, false},
						 {"unlock", F_BOOL, false, false}};
	struct user_ctx x = {.r = r, .enabled = -1, .id = r->params[0]};
	const char *pw;
	struct sg_db_conn *c;
	char *hash = NULL;
	json_t *v;
	int rc;

	if (!srv_query_check(r, out, NULL) || !srv_check_fields(r, out, spec, SG_ARRAY_LEN(spec)))
		return;
	x.email = json_string_value(json_object_get(r->json, "email"));
	x.role = json_string_value(json_object_get(r->json, "role"));
	pw = json_string_value(json_object_get(r->json, "password"));
	if ((v = json_object_get(r->json, "enabled")))
		x.enabled = json_is_true(v);
	x.unlock = json_is_true(json_object_get(r->json, "unlock"));
	if (x.email && !valid_email(x.email)) {
		srv_error(out, 400, "email", "not an e-mail address");
		return;
	}
	if (x.role && srv_role_parse(x.role) == ROLE_NONE) {
		srv_error(out, 400, "role", "must be super_admin, admin or viewer");
		return;
	}
	if (pw && !valid_password(out, pw))
		return;
	c = sg_db_acquire(s->db);
	if (pw) {
		bool fips = fips_setting(c);

		sg_db_release(c);
		hash = srv_pw_hash(pw, fips);
		c = sg_db_acquire(s->db);
		if (!hash) {
			srv_error(out, 500, NULL, "password hashing failed");
			goto out;
		}
		x.pwhash = hash;
	}
	rc = srv_tx(s, c, user_update_tx, &x, false);
	if (rc < 0)
		srv_dberr(out, c, rc);
	else if (rc > 0)
		srv_error(out, x.status, x.field, "%s", x.msg);
	else {
		srv_json(out, 200, x.result);
		x.result = NULL;
	}
out:
	json_decref(x.result);
	free(hash);
	sg_db_release(c);
}

static int user_delete_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct user_ctx *x = ctx;
	const char *p[] = {x->id};
	json_t *cur;
	int rc;

	(void)s;
	rc = user_admin_lock(c);
	if (rc < 0)
		return rc;
	cur = user_get(c, x->id, &rc);
	if (rc < 0)
		return rc;
	if (!cur) {
		x->status = 404;
		x->msg = "no such user";
		return 1;
	}
	/* The clients the user owned keep no owner (clients.owner_id has no foreign key, schema
	 * migration 12): on an mfa_required network nobody can open their sessions until an
	 * admin gives them another owner. Their sessions go with the user (ON DELETE CASCADE). */
	rc = sg_db_exec(c, "UPDATE clients SET owner_id = NULL WHERE owner_id = $1", 1, p);
	if (rc >= 0)
		rc = sg_db_exec(c, "DELETE FROM admin_users WHERE id = $1", 1, p);
	if (rc >= 0)
		rc = last_super_guard(c, x);
	if (!rc)
		rc = srv_audit(c, x->r, "user.deleted", "user", x->id,
			       json_string_value(json_object_get(cur, "email")), "delete", NULL);
	json_decref(cur);
	return rc;
}

void h_users_delete(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct user_ctx x = {.r = r, .id = r->params[0]};
	struct sg_db_conn *c;
	int rc;

	if (!srv_query_check(r, out, NULL))
		return;
	if (!strcmp(r->params[0], r->who.user_id)) {
		srv_error(out, 409, NULL, "you cannot delete yourself");
		return;
	}
	c = sg_db_acquire(s->db);
	rc = srv_tx(s, c, user_delete_tx, &x, false);
	if (rc < 0)
		srv_dberr(out, c, rc);
	else if (rc > 0)
		srv_error(out, x.status, NULL, "%s", x.msg);
	else
		srv_body(out, 204, "application/json", "", 0, NULL);
	sg_db_release(c);
}

/* ---- API keys ------------------------------------------------------------------------------- */

#define KEY_COLS  "id, user_id, name, prefix, role, expires_at, last_used, revoked, created_at"
#define KEY_KINDS "sssssiibi"

void h_apikeys_list(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	const char *p[3] = {r->who.user_id};
	bool all = r->who.role == ROLE_SUPER;

	/* A super_admin sees every key (to revoke a leaked one); others see their own. */
	srv_list_page(s, out, "api_keys", KEY_COLS, KEY_KINDS, all ? "" : " AND user_id = $1",
		      "created_at, id", p, all ? 0 : 1, srv_limit(r), srv_offset(r));
}

struct key_ctx {
	struct srv_req *r;
	const char *id, *name, *role, *prefix, *hash, *expires;
	int status;
	const char *msg;
};

static int key_create_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct key_ctx *x = ctx;
	char now[24];
	const char *p[] = {x->id,   x->r->who.user_id, x->name,	   x->prefix,
			   x->hash, x->role,	       x->expires, srv_i64(now, srv_now())};
	json_t *d;
	int rc;

	(void)s;
	rc = sg_db_exec(
	    c,
	    "INSERT INTO api_keys (id, user_id, name, prefix, key_hash, role, "
	    "expires_at, revoked, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8)",
	    8, p);
	if (rc < 0)
		return rc;
	d = json_pack("{s:s,s:s}", "role", x->role, "prefix", x->prefix);
	rc = srv_audit(c, x->r, "api_key.created", "api_key", x->id, x->name, "create", d);
	json_decref(d);
	return rc;
}

void h_apikeys_create(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	static const struct field_spec spec[] = {{"name", F_STR, true, false},
						 {"role", F_STR, false, false},
						 {"expires_in_days", F_INT, false, true}};
	struct key_ctx x = {.r = r};
	char id[SRV_ID_LEN + 1], key[64], prefix[16], hash[97], exp[24];
	json_t *v;
	struct sg_db_conn *c;
	int rc;

	if (!srv_query_check(r, out, NULL) || !srv_check_fields(r, out, spec, SG_ARRAY_LEN(spec)))
		return;
	x.name = json_string_value(json_object_get(r->json, "name"));
	x.role = json_string_value(json_object_get(r->json, "role"));
	if (!srv_valid_text(x.name, 64, false)) {
		srv_error(out, 400, "name", "must be 1 to 64 printable characters");
		return;
	}
	if (!x.role)
		x.role = srv_role_name(r->who.role);
	if (srv_role_parse(x.role) == ROLE_NONE) {
		srv_error(out, 400, "role", "must be super_admin, admin or viewer");
		return;
	}
	if (srv_role_parse(x.role) > r->who.role) {
		srv_error(out, 403, "role", "a key cannot have more rights than its owner");
		return;
	}
	v = json_object_get(r->json, "expires_in_days");
	if (v && !json_is_null(v)) {
		if (json_integer_value(v) < 1 || json_integer_value(v) > 3650) {
			srv_error(out, 400, "expires_in_days", "must be 1 to 3650");
			return;
		}
		x.expires = srv_i64(exp, srv_now() + json_integer_value(v) * 86400);
	}
	srv_uuid(id);
	srv_new_token(key, "sgk_");
	snprintf(prefix, sizeof(prefix), "%.12s", key);
	srv_token_hash(hash, key);
	x.id = id;
	x.prefix = prefix;
	x.hash = hash;
	c = sg_db_acquire(s->db);
	rc = srv_tx(s, c, key_create_tx, &x, false);
	if (rc)
		srv_dberr(out, c, rc);
	else
		srv_json(out, 201,
			 json_pack("{s:s,s:s,s:s,s:s,s:s,s:o}", "id", id, "name", x.name, "role",
				   x.role, "prefix", prefix, "key", key, "expires_at",
				   x.expires ? json_integer(strtoll(x.expires, NULL, 10))
					     : json_null()));
	sg_memzero(key, sizeof(key));
	sg_db_release(c);
}

static int key_delete_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct key_ctx *x = ctx;
	struct sg_db_res *res = NULL;
	const char *p[] = {x->id};
	int rc;

	(void)s;
	rc = sg_db_query(c, &res, "SELECT user_id, name FROM api_keys WHERE id = $1", 1, p);
	if (rc < 0)
		return rc;
	if (rc != 1 ||
	    (x->r->who.role != ROLE_SUPER && strcmp(sg_db_res_get(res, 0, 0), x->r->who.user_id))) {
		x->status = 404;
		x->msg = "no such API key";
		sg_db_res_free(res);
		return 1;
	}
	rc = sg_db_exec(c, "UPDATE api_keys SET revoked = 1 WHERE id = $1", 1, p);
	if (rc >= 0)
		rc = srv_audit(c, x->r, "api_key.revoked", "api_key", x->id,
			       sg_db_res_get(res, 0, 1), "revoke", NULL);
	sg_db_res_free(res);
	return rc;
}

void h_apikeys_delete(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct key_ctx x = {.r = r, .id = r->params[0]};
	struct sg_db_conn *c;
	int rc;

	if (!srv_query_check(r, out, NULL))
		return;
	c = sg_db_acquire(s->db);
	rc = srv_tx(s, c, key_delete_tx, &x, false);
	if (rc < 0)
		srv_dberr(out, c, rc);
	else if (rc > 0)
		srv_error(out, x.status, NULL, "%s", x.msg);
	else
		srv_body(out, 204, "application/json", "", 0, NULL);
	sg_db_release(c);
}
