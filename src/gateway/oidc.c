/* The gateway as an OpenID Connect relying party (auth "login"): OpenID Connect Core 1.0 with
 * the authorization code flow and PKCE (RFC 7636, S256), discovery (OpenID Connect Discovery
 * 1.0) and the provider's keys from its JWKS (RFC 7517). ID tokens (RFC 7519 JWTs) are checked
 * with the public key only: ES384 or RS256 (RFC 7518 section 3), through src/crypto.
 *
 * Nothing is kept per login in the gateway: the state, nonce and code verifier of a login in
 * progress ride in a short-lived cookie bound to the callback path (the browser holds the
 * verifier; an attacker without it cannot redeem a code), and the session is the ID token
 * itself in an HttpOnly cookie, verified on every request until it expires. So a flood of
 * login starts costs no memory, and no secret is shared with the provider (a public client).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "crypto/crypto.h"
#include "gateway/gw_int.h"
#include "net/httpc.h"

#define JWT_MAX	       8192u
#define LOGIN_TTL_S    600
#define REFRESH_NS     (3600 * NS_PER_S)
#define RETRY_NS       (5 * NS_PER_S)
#define KID_REFETCH_NS (30 * NS_PER_S)
#define CLOCK_SKEW_S   60

enum { OS_IDLE = 0, OS_DISCOVERY, OS_JWKS, OS_READY };

struct oidc_key {
	char kid[96];
	bool ec;
	uint8_t x[SG_P384_COORD_LEN], y[SG_P384_COORD_LEN];
	uint8_t n[1024];
	size_t nlen;
	uint8_t e[8];
	size_t elen;
};

struct gw_oidc {
	struct gw_res *r;
	int state;
	bool have_keys;
	char *authz_ep, *token_ep, *jwks_uri;
	struct oidc_key keys[16];
	size_t n_keys;
	uint64_t next_fetch_ns, last_kid_fetch_ns;
	struct sg_httpc_req *req;
};

/* ---- base64url (RFC 4648 section 5, no padding) --------------------------------------------- */

static const char b64u[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t b64u_enc(char *out, const uint8_t *in, size_t len)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[o++] = b64u[(v >> 18) & 63];
		out[o++] = b64u[(v >> 12) & 63];
		if (i + 1 < len)
			out[o++] = b64u[(v >> 6) & 63];
		if (i + 2 < len)
			out[o++] = b64u[v & 63];
	}
	out[o] = '\0';
	return o;
}

/* Decodes into out (at most cap bytes); -1 on a character outside the alphabet, padding, a
 * length that cannot be base64, or no room. */
static long b64u_dec(uint8_t *out, size_t cap, const char *in, size_t len)
{
	uint32_t v = 0;
	int bits = 0;
	size_t o = 0;
	if (len % 4 == 1)
		return -1;
	for (size_t i = 0; i < len; i++) {
		const char *p = memchr(b64u, in[i], 64);
		if (!p || !in[i])
			return -1;
		v = (v << 6) | (uint32_t)(p - b64u);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= cap)
				return -1;
			out[o++] = (uint8_t)(v >> bits);
		}
	}
	return (long)o;
}

/* ---- provider metadata and keys ------------------------------------------------------------- */

void gw_oidc_free(struct gw_oidc *o)
{
	if (!o)
		return;
	sg_httpc_cancel(o->req);
	free(o->authz_ep);
	free(o->token_ep);
	free(o->jwks_uri);
	free(o);
}

static void fetch(struct gw_oidc *o);

static void fail_fetch(struct gw_oidc *o, const char *what, const char *why)
{
	char b[160];
	sg_log(SG_LOG_WARN, "gw_oidc_fetch_failed", "resource=%s what=%s reason=%s",
	       o->r->conf->id, what, sg_log_quote(b, sizeof(b), why));
	o->state = o->have_keys ? OS_READY : OS_IDLE;
	o->next_fetch_ns = o->r->rt->gw->now_ns + RETRY_NS;
}

static bool b64_field(json_t *k, const char *name, uint8_t *out, size_t cap, size_t *len)
{
	const char *s = json_string_value(json_object_get(k, name));
	long n = s ? b64u_dec(out, cap, s, strlen(s)) : -1;
	if (n <= 0)
		return false;
	*len = (size_t)n;
	return true;
}

static void jwks_done(void *ctx, const struct sg_httpc_resp *resp)
{
	struct gw_oidc *o = ctx;
	o->req = NULL;
	if (resp->error || resp->status != 200) {
		fail_fetch(o, "jwks", resp->error ? resp->error : "HTTP status not 200");
		return;
	}
	json_t *j = json_loadb(resp->body, resp->len, JSON_REJECT_DUPLICATES, NULL);
	json_t *keys = json_object_get(j, "keys");
	size_t n = 0;
	struct oidc_key tmp[SG_ARRAY_LEN(o->keys)];
	for (size_t i = 0; json_is_array(keys) && i < json_array_size(keys) && n < SG_ARRAY_LEN(tmp);
	     i++) {
		json_t *k = json_array_get(keys, i);
		const char *kty = json_string_value(json_object_get(k, "kty"));
		const char *use = json_string_value(json_object_get(k, "use"));
		const char *kid = json_string_value(json_object_get(k, "kid"));
		const char *crv = json_string_value(json_object_get(k, "crv"));
		struct oidc_key *e = &tmp[n];
		size_t xl = 0, yl = 0;
		if (!kty || (use && strcmp(use, "sig") != 0))
			continue;
		memset(e, 0, sizeof(*e));
		snprintf(e->kid, sizeof(e->kid), "%s", kid ? kid : "");
		if (strcmp(kty, "EC") == 0 && crv && strcmp(crv, "P-384") == 0 &&
		    b64_field(k, "x", e->x, sizeof(e->x), &xl) && xl == SG_P384_COORD_LEN &&
		    b64_field(k, "y", e->y, sizeof(e->y), &yl) && yl == SG_P384_COORD_LEN) {
			e->ec = true;
			n++;
		} else if (strcmp(kty, "RSA") == 0 && b64_field(k, "n", e->n, sizeof(e->n), &e->nlen) &&
			   b64_field(k, "e", e->e, sizeof(e->e), &e->elen)) {
			n++;
		}
	}
	json_decref(j);
	if (n == 0) {
		fail_fetch(o, "jwks", "no usable P-384 or RSA signing key");
		return;
	}
	memcpy(o->keys, tmp, n * sizeof(tmp[0]));
	o->n_keys = n;
	o->have_keys = true;
	o->state = OS_READY;
	o->next_fetch_ns = o->r->rt->gw->now_ns + REFRESH_NS;
	sg_log(SG_LOG_INFO, "gw_oidc_ready", "resource=%s issuer=%s keys=%zu", o->r->conf->id,
	       o->r->conf->oidc.issuer, n);
}

static char *dup_url(json_t *j, const char *name)
{
	const char *s = json_string_value(json_object_get(j, name));
	if (!s || (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0) ||
	    strlen(s) > 1024 || strpbrk(s, " \"<>\\#"))
		return NULL;
	return strdup(s);
}

static void discovery_done(void *ctx, const struct sg_httpc_resp *resp)
{
	struct gw_oidc *o = ctx;
	const struct gw_oidc_conf *oc = &o->r->conf->oidc;
	o->req = NULL;
	if (resp->error || resp->status != 200) {
		fail_fetch(o, "discovery", resp->error ? resp->error : "HTTP status not 200");
		return;
	}
	json_t *j = json_loadb(resp->body, resp->len, JSON_REJECT_DUPLICATES, NULL);
	const char *iss = json_string_value(json_object_get(j, "issuer"));
	/* OpenID Connect Discovery 1.0 section 4.3: the issuer must be exactly the one asked. */
	if (!iss || strcmp(iss, oc->issuer) != 0) {
		json_decref(j);
		fail_fetch(o, "discovery", "issuer in the document differs from the configured one");
		return;
	}
	char *a = dup_url(j, "authorization_endpoint"), *t = dup_url(j, "token_endpoint"),
	     *k = dup_url(j, "jwks_uri");
	json_decref(j);
	if (!a || !t || !k) {
		free(a);
		free(t);
		free(k);
		fail_fetch(o, "discovery", "authorization_endpoint, token_endpoint or jwks_uri missing");
		return;
	}
	free(o->authz_ep);
	free(o->token_ep);
	free(o->jwks_uri);
	o->authz_ep = a;
	o->token_ep = t;
	o->jwks_uri = k;
	o->state = OS_JWKS;
	struct sg_httpc_opts opts = {.ca_file = oc->ca_file, .max_body = 256 * 1024};
	o->req = sg_httpc_request(o->r->rt->gw->httpc, "GET", o->jwks_uri, NULL, NULL, 0, &opts,
				  jwks_done, o);
	if (!o->req)
		fail_fetch(o, "jwks", "request not started");
}

static void fetch(struct gw_oidc *o)
{
	const struct gw_oidc_conf *oc = &o->r->conf->oidc;
	char url[640];
	size_t l = strlen(oc->issuer);
	snprintf(url, sizeof(url), "%s%s.well-known/openid-configuration", oc->issuer,
		 l && oc->issuer[l - 1] == '/' ? "" : "/");
	struct sg_httpc_opts opts = {.ca_file = oc->ca_file, .max_body = 256 * 1024};
	o->state = OS_DISCOVERY;
	o->req = sg_httpc_request(o->r->rt->gw->httpc, "GET", url, NULL, NULL, 0, &opts,
				  discovery_done, o);
	if (!o->req)
		fail_fetch(o, "discovery", "request not started");
}

void gw_oidc_tick(struct gw_rt *rt, uint64_t now_ns)
{
	for (size_t i = 0; i < rt->n_res; i++) {
		struct gw_res *r = &rt->res[i];
		if (r->conf->auth != GW_AUTH_LOGIN || !rt->gw->httpc)
			continue;
		if (!r->oidc) {
			r->oidc = calloc(1, sizeof(*r->oidc));
			if (!r->oidc)
				continue;
			r->oidc->r = r;
		}
		struct gw_oidc *o = r->oidc;
		if ((o->state == OS_IDLE || o->state == OS_READY) && now_ns >= o->next_fetch_ns)
			fetch(o);
	}
}

struct gw_oidc *gw_oidc_with_key(struct gw_res *r, const char *kid, const uint8_t x[48],
				 const uint8_t y[48])
{
	struct gw_oidc *o = calloc(1, sizeof(*o));
	if (!o)
		return NULL;
	o->r = r;
	o->state = OS_READY;
	o->have_keys = true;
	o->n_keys = 1;
	o->keys[0].ec = true;
	snprintf(o->keys[0].kid, sizeof(o->keys[0].kid), "%s", kid);
	memcpy(o->keys[0].x, x, SG_P384_COORD_LEN);
	memcpy(o->keys[0].y, y, SG_P384_COORD_LEN);
	o->next_fetch_ns = UINT64_MAX;
	return o;
}

bool gw_oidc_ready(const struct gw_res *r)
{
	return r->oidc && r->oidc->have_keys && r->oidc->authz_ep;
}

/* ---- ID tokens -------------------------------------------------------------------------------- */

static const struct oidc_key *find_key(struct gw_oidc *o, const char *kid, bool ec)
{
	for (size_t i = 0; i < o->n_keys; i++)
		if (o->keys[i].ec == ec && (!kid || strcmp(o->keys[i].kid, kid) == 0))
			return &o->keys[i];
	return NULL;
}

static bool aud_has(json_t *aud, const char *client_id)
{
	if (json_is_string(aud))
		return strcmp(json_string_value(aud), client_id) == 0;
	for (size_t i = 0; json_is_array(aud) && i < json_array_size(aud); i++)
		if (json_is_string(json_array_get(aud, i)) &&
		    strcmp(json_string_value(json_array_get(aud, i)), client_id) == 0)
			return true;
	return false;
}

/* Checks an ID token (OpenID Connect Core section 3.1.3.7): signature by a key of the JWKS,
 * iss, aud, exp, iat/nbf within the clock skew, and the nonce when one is given. user gets
 * the email or sub. 0, or -1 with *why. */
int gw_oidc_verify(struct gw_oidc *o, const char *tok, size_t len, const char *nonce, char *user,
		   size_t ulen, int64_t *exp_out, const char **why)
{
	const struct gw_oidc_conf *oc = &o->r->conf->oidc;
	*why = NULL;
	if (len > JWT_MAX) {
		*why = "token too long";
		return -1;
	}
	const char *d1 = memchr(tok, '.', len);
	const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok)) : NULL;
	if (!d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok))) {
		*why = "not a JWS compact serialization";
		return -1;
	}
	uint8_t hdr[1024], body[JWT_MAX], sig[1024];
	long hl = b64u_dec(hdr, sizeof(hdr) - 1, tok, (size_t)(d1 - tok));
	long bl = b64u_dec(body, sizeof(body) - 1, d1 + 1, (size_t)(d2 - d1 - 1));
	long sl = b64u_dec(sig, sizeof(sig), d2 + 1, len - (size_t)(d2 + 1 - tok));
	/* An empty signature decodes (to nothing): an unsigned token ("alg": "none") is then
	 * refused for its algorithm below, which is what the log should say. */
	if (hl <= 0 || bl <= 0 || sl < 0) {
		*why = "bad base64url";
		return -1;
	}
	json_t *h = json_loadb((const char *)hdr, (size_t)hl, JSON_REJECT_DUPLICATES, NULL);
	json_t *p = json_loadb((const char *)body, (size_t)bl, JSON_REJECT_DUPLICATES, NULL);
	int rc = -1;
	if (!json_is_object(h) || !json_is_object(p)) {
		*why = "header or claims are not JSON objects";
		goto out;
	}
	const char *alg = json_string_value(json_object_get(h, "alg"));
	const char *kid = json_string_value(json_object_get(h, "kid"));
	/* Only the algorithms we know; "none" and HMAC never (RFC 8725 section 3.1). */
	bool ec = alg && strcmp(alg, "ES384") == 0;
	if (!ec && !(alg && strcmp(alg, "RS256") == 0)) {
		*why = "algorithm not ES384 or RS256";
		goto out;
	}
	if (json_object_get(h, "crit")) {
		*why = "crit header not understood";
		goto out;
	}
	const struct oidc_key *k = find_key(o, kid, ec);
	if (!k) {
		/* A rotated key: fetch the JWKS again, at most every 30 s. */
		uint64_t now = o->r->rt->gw->now_ns;
		if (o->state == OS_READY && now - o->last_kid_fetch_ns >= KID_REFETCH_NS) {
			o->last_kid_fetch_ns = now;
			o->next_fetch_ns = now;
		}
		*why = "no key with this kid and algorithm";
		goto out;
	}
	size_t signed_len = (size_t)(d2 - tok);
	bool good = ec ? sl == SG_ES384_SIG_LEN && sg_es384_verify(sig, k->x, k->y, tok, signed_len)
		       : sl > 0 && sg_rs256_verify(sig, (size_t)sl, k->n, k->nlen, k->e, k->elen, tok,
					 signed_len);
	if (!good) {
		*why = "bad signature";
		goto out;
	}
	int64_t now_s = (int64_t)(evloop_realtime_ns() / NS_PER_S);
	const char *iss = json_string_value(json_object_get(p, "iss"));
	json_t *exp = json_object_get(p, "exp"), *iat = json_object_get(p, "iat");
	json_t *nbf = json_object_get(p, "nbf");
	if (!iss || strcmp(iss, oc->issuer) != 0) {
		*why = "issuer differs";
		goto out;
	}
	if (!aud_has(json_object_get(p, "aud"), oc->client_id)) {
		*why = "audience is not this gateway's client";
		goto out;
	}
	if (!json_is_integer(exp) || json_integer_value(exp) + CLOCK_SKEW_S <= now_s) {
		*why = "expired";
		goto out;
	}
	if ((iat && (!json_is_integer(iat) || json_integer_value(iat) > now_s + CLOCK_SKEW_S)) ||
	    (nbf && (!json_is_integer(nbf) || json_integer_value(nbf) > now_s + CLOCK_SKEW_S))) {
		*why = "issued in the future";
		goto out;
	}
	if (nonce) {
		const char *n = json_string_value(json_object_get(p, "nonce"));
		if (!n || strlen(n) != strlen(nonce) || !sg_memeq(n, nonce, strlen(nonce))) {
			*why = "nonce differs";
			goto out;
		}
	}
	const char *who = json_string_value(json_object_get(p, "email"));
	if (!who)
		who = json_string_value(json_object_get(p, "sub"));
	if (!who) {
		*why = "no sub";
		goto out;
	}
	snprintf(user, ulen, "%s", who);
	for (char *q = user; *q; q++)
		if ((unsigned char)*q < 0x21 || (unsigned char)*q > 0x7e || *q == '"' || *q == ',')
			*q = '_'; /* it goes into a header and the log */
	if (exp_out)
		*exp_out = json_integer_value(exp);
	rc = 0;
out:
	json_decref(h);
	json_decref(p);
	return rc;
}

/* ---- the login ------------------------------------------------------------------------------- */

/* application/x-www-form-urlencoded / query component escaping (RFC 3986 unreserved kept). */
static size_t url_esc(char *out, size_t cap, const char *s)
{
	size_t o = 0;
	for (; *s && o + 4 < cap; s++) {
		unsigned char ch = (unsigned char)*s;
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '.' || ch == '_' || ch == '~') {
			out[o++] = (char)ch;
		} else {
			out[o++] = '%';
			out[o++] = "0123456789ABCDEF"[ch >> 4];
			out[o++] = "0123456789ABCDEF"[ch & 15];
		}
	}
	out[o] = '\0';
	return o;
}

static void redirect_uri(const struct gw_res *r, const char *host, bool https, char *out,
			 size_t cap)
{
	snprintf(out, cap, "%s://%s%s", https ? "https" : "http", host, r->conf->oidc.redirect_path);
}

int gw_oidc_login(struct gw_res *r, const char *host, bool https, const char *return_to,
		  char *location, size_t loc_cap, char *cookie, size_t cookie_cap)
{
	struct gw_oidc *o = r->oidc;
	const struct gw_oidc_conf *oc = &r->conf->oidc;
	uint8_t rnd[64], ch[SG_SHA256_LEN];
	char state[32], nonce[32], verifier[48], challenge[48], ret[700], ru[600], e1[1800],
	    e2[800], e3[64];
	if (!gw_oidc_ready(r) || !sg_random_bytes(rnd, sizeof(rnd)))
		return -1;
	b64u_enc(state, rnd, 16);
	b64u_enc(nonce, rnd + 16, 16);
	b64u_enc(verifier, rnd + 32, 32); /* 43 characters (RFC 7636 section 4.1) */
	struct sg_iov iov = {.base = verifier, .len = strlen(verifier)};
	if (!sg_sha256(ch, &iov, 1))
		return -1;
	b64u_enc(challenge, ch, sizeof(ch));
	sg_memzero(rnd, sizeof(rnd));
	/* Only a local path may be returned to (no open redirect). */
	if (return_to[0] != '/' || return_to[1] == '/' || return_to[1] == '\\' ||
	    strlen(return_to) > 500)
		return_to = "/";
	b64u_enc(ret, (const uint8_t *)return_to, strlen(return_to));
	redirect_uri(r, host, https, ru, sizeof(ru));
	url_esc(e1, sizeof(e1), ru);
	url_esc(e2, sizeof(e2), oc->scopes);
	url_esc(e3, sizeof(e3), oc->client_id);
	int n = snprintf(location, loc_cap,
			 "%s%cresponse_type=code&client_id=%s&redirect_uri=%s&scope=%s&state=%s"
			 "&nonce=%s&code_challenge=%s&code_challenge_method=S256",
			 o->authz_ep, strchr(o->authz_ep, '?') ? '&' : '?', e3, e1, e2, state,
			 nonce, challenge);
	int m = snprintf(cookie, cookie_cap,
			 "sg_oidc_%s=%s.%s.%s.%s; Path=%s; Max-Age=%d; HttpOnly; SameSite=Lax%s",
			 r->conf->id, state, nonce, verifier, ret, oc->redirect_path, LOGIN_TTL_S,
			 https ? "; Secure" : "");
	sg_memzero(verifier, sizeof(verifier));
	return n > 0 && (size_t)n < loc_cap && m > 0 && (size_t)m < cookie_cap ? 0 : -1;
}

/* The value of query parameter name in q (not decoded; codes and states are URL-safe). */
static bool query_param(const char *q, size_t ql, const char *name, const char **v, size_t *vl)
{
	size_t nl = strlen(name);
	const char *p = q, *e = q + ql;
	while (p < e) {
		const char *amp = memchr(p, '&', (size_t)(e - p));
		const char *end = amp ? amp : e;
		if ((size_t)(end - p) > nl && memcmp(p, name, nl) == 0 && p[nl] == '=') {
			*v = p + nl + 1;
			*vl = (size_t)(end - p) - nl - 1;
			return true;
		}
		p = end + 1;
	}
	return false;
}

struct token_call {
	gw_oidc_done_fn done;
	void *ctx;
	struct gw_res *r;
	char nonce[32];
	char ret[520];
};

static void token_done(void *ctx, const struct sg_httpc_resp *resp)
{
	struct token_call *tc = ctx;
	struct gw_oidc_result res = {0};
	json_t *j = NULL;
	if (resp->error || resp->status != 200) {
		res.error = resp->error ? resp->error : "the token endpoint refused the code";
		goto out;
	}
	j = json_loadb(resp->body, resp->len, JSON_REJECT_DUPLICATES, NULL);
	const char *id = json_string_value(json_object_get(j, "id_token"));
	if (!id) {
		res.error = "no id_token in the token response";
		goto out;
	}
	if (gw_oidc_verify(tc->r->oidc, id, strlen(id), tc->nonce, res.user, sizeof(res.user),
			   &res.exp, &res.error) != 0)
		goto out;
	res.id_token = id;
	res.return_to = tc->ret;
out:
	tc->done(tc->ctx, &res);
	json_decref(j);
	free(tc);
}

struct sg_httpc_req *gw_oidc_callback(struct gw_res *r, const char *host, bool https,
				      const char *query, size_t ql, const char *cookie,
				      size_t cookie_len, gw_oidc_done_fn done, void *ctx,
				      const char **why)
{
	struct gw_oidc *o = r->oidc;
	const struct gw_oidc_conf *oc = &r->conf->oidc;
	const char *code, *state, *err;
	size_t code_l, state_l, err_l;
	*why = NULL;
	if (!gw_oidc_ready(r)) {
		*why = "identity provider not reachable yet";
		return NULL;
	}
	if (query_param(query, ql, "error", &err, &err_l)) {
		*why = "the identity provider returned an error";
		return NULL;
	}
	if (!query_param(query, ql, "code", &code, &code_l) ||
	    !query_param(query, ql, "state", &state, &state_l) || code_l == 0 || code_l > 2048) {
		*why = "callback without code and state";
		return NULL;
	}
	/* The login cookie: state.nonce.verifier.return_to */
	char buf[1024];
	if (!cookie || cookie_len >= sizeof(buf)) {
		*why = "no login in progress in this browser (cookie missing)";
		return NULL;
	}
	memcpy(buf, cookie, cookie_len);
	buf[cookie_len] = '\0';
	char *f[4];
	char *p = buf;
	for (int i = 0; i < 4; i++) {
		f[i] = p;
		p = strchr(p, '.');
		if (i < 3) {
			if (!p) {
				*why = "malformed login cookie";
				return NULL;
			}
			*p++ = '\0';
		}
	}
	if (strlen(f[0]) != state_l || !sg_memeq(f[0], state, state_l)) {
		*why = "state differs from the login cookie's (CSRF)";
		return NULL;
	}
	for (size_t i = 0; i < code_l; i++)
		if (!strchr(b64u, code[i]) && !strchr("~.%+/=", code[i])) {
			*why = "malformed code";
			return NULL;
		}
	struct token_call *tc = calloc(1, sizeof(*tc));
	if (!tc) {
		*why = "out of memory";
		return NULL;
	}
	tc->done = done;
	tc->ctx = ctx;
	tc->r = r;
	snprintf(tc->nonce, sizeof(tc->nonce), "%s", f[1]);
	uint8_t ret[520];
	long rl = b64u_dec(ret, sizeof(ret) - 1, f[3], strlen(f[3]));
	if (rl <= 0 || ret[0] != '/')
		snprintf(tc->ret, sizeof(tc->ret), "/");
	else
		snprintf(tc->ret, sizeof(tc->ret), "%.*s", (int)rl, (const char *)ret);
	char ru[600], e1[1800], e2[600], e3[2200], body[5000];
	redirect_uri(r, host, https, ru, sizeof(ru));
	url_esc(e1, sizeof(e1), ru);
	url_esc(e2, sizeof(e2), oc->client_id);
	char codez[2100];
	snprintf(codez, sizeof(codez), "%.*s", (int)code_l, code);
	url_esc(e3, sizeof(e3), codez);
	int n = snprintf(body, sizeof(body),
			 "grant_type=authorization_code&code=%s&redirect_uri=%s&client_id=%s"
			 "&code_verifier=%s",
			 e3, e1, e2, f[2]);
	if (oc->client_secret && n > 0 && (size_t)n < sizeof(body)) {
		char es[1600];
		url_esc(es, sizeof(es), oc->client_secret);
		n += snprintf(body + n, sizeof(body) - (size_t)n, "&client_secret=%s", es);
	}
	sg_memzero(buf, sizeof(buf));
	static const char *const hdrs[] = {"Content-Type: application/x-www-form-urlencoded",
					   "Accept: application/json", NULL};
	struct sg_httpc_opts opts = {.ca_file = oc->ca_file, .max_body = 64 * 1024};
	struct sg_httpc_req *req = NULL;
	if (n > 0 && (size_t)n < sizeof(body))
		req = sg_httpc_request(r->rt->gw->httpc, "POST", o->token_ep, hdrs, body, (size_t)n,
				       &opts, token_done, tc);
	sg_memzero(body, sizeof(body));
	if (!req) {
		free(tc);
		*why = "token request not started";
	}
	return req;
}

/* Cancelling a token call also frees its context (the client went away). */
void gw_oidc_cancel(struct sg_httpc_req *req)
{
	void *tc = sg_httpc_ctx(req);
	sg_httpc_cancel(req);
	free(tc);
}
