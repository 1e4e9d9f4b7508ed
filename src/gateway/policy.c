/* Who may reach a resource: source lists, L7 rules, bearer API keys, token-bucket rate limits
 * per source and per resource, and connection counts per source. */
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "crypto/crypto.h"
#include "gateway/gw_int.h"

void gw_src_key(uint8_t key[17], int family, const uint8_t *addr)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	memset(key, 0, 17);
	if (family == AF_INET6 && memcmp(addr, mapped, 12) == 0) {
		family = AF_INET;
		addr += 12;
	}
	if (family == AF_INET) {
		key[0] = 4;
		memcpy(key + 1, addr, 4);
	} else {
		key[0] = 6;
		memcpy(key + 1, addr, 16);
	}
}

/* FNV-1a over the key and the resource, with a per-process seed so a remote party cannot
 * aim many sources at one probe window. */
static uint32_t src_hash(const uint8_t key[17], uint32_t res)
{
	static uint32_t seed;
	if (!seed)
		seed = sg_random_u32() | 1;
	uint32_t h = 2166136261u ^ seed;
	for (int i = 0; i < 17; i++)
		h = (h ^ key[i]) * 16777619u;
	h = (h ^ res) * 16777619u;
	return h;
}

/* The entry for (key, res), made if needed. An idle entry may be replaced: a bucket unused
 * for a while has refilled and is the same as a new one; an entry with open connections is
 * never replaced (NULL when the window is full of them). */
static struct gw_src_entry *src_get(struct gw *gw, const uint8_t key[17], uint32_t res,
				    uint64_t now_ns, bool create)
{
	uint32_t h = src_hash(key, res);
	struct gw_src_entry *victim = NULL;
	for (uint32_t i = 0; i < GW_SRC_PROBE; i++) {
		struct gw_src_entry *e = &gw->src[(h + i) % GW_SRC_SLOTS];
		if (e->used && e->res == res && memcmp(e->key, key, 17) == 0)
			return e;
		if (!e->used) {
			if (!victim || victim->used)
				victim = e;
		} else if (e->conns == 0 && (!victim || (victim->used && e->last_ns < victim->last_ns))) {
			victim = e;
		}
	}
	if (!create || !victim)
		return NULL;
	memset(victim, 0, sizeof(*victim));
	victim->used = true;
	memcpy(victim->key, key, 17);
	victim->res = res;
	victim->last_ns = now_ns;
	return victim;
}

bool gw_src_conn_inc(struct gw *gw, const uint8_t key[17], uint32_t limit, uint64_t now_ns)
{
	struct gw_src_entry *e = src_get(gw, key, 0, now_ns, true);
	if (!e || e->conns >= limit)
		return false;
	e->conns++;
	e->last_ns = now_ns;
	return true;
}

void gw_src_conn_dec(struct gw *gw, const uint8_t key[17])
{
	struct gw_src_entry *e = src_get(gw, key, 0, 0, false);
	if (e && e->conns)
		e->conns--;
}

bool gw_bucket_take(struct gw_bucket *b, const struct gw_rate *rate, uint64_t now_ns,
		    uint32_t *retry_s)
{
	uint64_t cap = (uint64_t)rate->burst * 1000;
	if (b->last_ns == 0) {
		b->tokens_milli = cap;
	} else if (now_ns > b->last_ns) {
		/* rate tokens per second = rate * 1000 milli-tokens per 1e9 ns. */
		uint64_t add = (now_ns - b->last_ns) * rate->rate / 1000000;
		b->tokens_milli = b->tokens_milli + add > cap ? cap : b->tokens_milli + add;
	}
	b->last_ns = now_ns;
	if (b->tokens_milli >= 1000) {
		b->tokens_milli -= 1000;
		return true;
	}
	uint64_t need = 1000 - b->tokens_milli;
	uint64_t per_s = (uint64_t)rate->rate * 1000;
	*retry_s = (uint32_t)((need + per_s - 1) / per_s);
	if (*retry_s == 0)
		*retry_s = 1;
	return false;
}

/* Login callbacks make the gateway call the provider's token endpoint, and anyone can start a
 * login to get a state cookie: whatever the resource's own limits, each source may complete at
 * most GW_CALLBACK_BURST callbacks at once and GW_CALLBACK_RATE per second. */
#define GW_CALLBACK_RATE  2
#define GW_CALLBACK_BURST 10
bool gw_callback_allowed(struct gw *gw, struct gw_res *r, int family, const uint8_t *addr,
			 uint64_t now_ns, uint32_t *retry_s)
{
	static const struct gw_rate rate = {.rate = GW_CALLBACK_RATE, .burst = GW_CALLBACK_BURST};
	uint8_t key[17];
	gw_src_key(key, family, addr);
	/* Its own bucket per source and resource: res ids above the resources' own. */
	struct gw_src_entry *e = src_get(gw, key, 0x80000000u | r->index, now_ns, true);
	if (!e) {
		*retry_s = 1;
		return false;
	}
	e->last_ns = now_ns;
	return gw_bucket_take(&e->bucket, &rate, now_ns, retry_s);
}

static bool cidr_any(const struct gw_cidr *c, size_t n, int family, const uint8_t *addr)
{
	for (size_t i = 0; i < n; i++)
		if (gw_cidr_match(&c[i], family, addr))
			return true;
	return false;
}

static bool rule_matches(const struct gw_rule *r, const struct gw_policy_in *in)
{
	const struct sg_http_msg *m = in->req;
	if (r->methods && !(r->methods & (1u << m->method_id)))
		return false;
	if (r->methods && m->method_id == SG_HTTP_M_OTHER)
		return false;
	if (r->path_exact && (strlen(r->path_exact) != in->path_len ||
			      memcmp(r->path_exact, in->path, in->path_len) != 0))
		return false;
	if (r->path_prefix) {
		size_t n = strlen(r->path_prefix);
		if (in->path_len < n || memcmp(r->path_prefix, in->path, n) != 0)
			return false;
	}
	if (r->n_sources && !cidr_any(r->sources, r->n_sources, in->family, in->addr))
		return false;
	if (r->header_name) {
		bool found = false;
		for (size_t i = 0; i < m->n_headers && !found; i++) {
			const struct sg_http_header *h = &m->headers[i];
			if (!sg_http_ieq(h->name, h->name_len, r->header_name))
				continue;
			found = !r->header_value || (strlen(r->header_value) == h->value_len &&
						     memcmp(r->header_value, h->value, h->value_len) == 0);
		}
		if (!found)
			return false;
	}
	return true;
}

/* A bearer key (RFC 6750 section 2.1) whose SHA-384 is one of the resource's. Every stored
 * hash is compared, in constant time, so the time says nothing about which one matched. */
static bool api_key_ok(const struct gw_resource_conf *rc, const struct sg_http_msg *m,
		       struct gw_policy_out *out)
{
	const struct sg_http_header *h = sg_http_find(m, "authorization");
	if (!h || h->value_len < 8 || !sg_http_ieq(h->value, 7, "bearer ") || h->value_len > 1024)
		return false;
	const char *key = h->value + 7;
	size_t n = h->value_len - 7;
	while (n && *key == ' ')
		key++, n--;
	if (!n)
		return false;
	uint8_t digest[SG_SHA384_LEN];
	struct sg_iov iov = {.base = (const uint8_t *)key, .len = n};
	if (!sg_sha384(digest, &iov, 1))
		return false;
	bool match = false;
	size_t which = 0;
	for (size_t i = 0; i < rc->n_api_keys; i++) {
		bool eq = sg_memeq(digest, rc->api_keys[i], SG_SHA384_LEN);
		match |= eq;
		which = eq ? i : which;
	}
	if (match) {
		out->authenticated = true;
		out->auth_header = h;
		snprintf(out->user, sizeof(out->user), "key:%02x%02x%02x%02x",
			 rc->api_keys[which][0], rc->api_keys[which][1], rc->api_keys[which][2],
			 rc->api_keys[which][3]);
	}
	sg_memzero(digest, sizeof(digest));
	return match;
}

/* The session of auth login: the ID token in the resource's session cookie, or a JWT as a
 * bearer token (scripts), checked with the provider's public keys. */
static enum gw_verdict login_session(struct gw_res *r, const struct sg_http_msg *m,
				     struct gw_policy_out *out)
{
	char name[GW_CONF_ID_MAX + 16];
	const char *tok = NULL;
	size_t tl = 0;
	snprintf(name, sizeof(name), "sg_session_%s", r->conf->id);
	const struct sg_http_header *h = sg_http_find(m, "authorization");
	if (h && h->value_len > 7 && sg_http_ieq(h->value, 7, "bearer ") &&
	    memchr(h->value + 7, '.', h->value_len - 7)) {
		tok = h->value + 7;
		tl = h->value_len - 7;
	} else if (!sg_http_cookie(m, name, &tok, &tl)) {
		out->reason = "login required";
		return GW_V_LOGIN;
	}
	if (!gw_oidc_ready(r)) {
		out->reason = "identity provider not reachable yet";
		return GW_V_UNAVAILABLE;
	}
	const char *why = NULL;
	if (gw_oidc_verify(r->oidc, tok, tl, NULL, out->user, sizeof(out->user), NULL, &why) != 0) {
		out->reason = why;
		out->user[0] = '\0';
		return GW_V_LOGIN;
	}
	out->authenticated = true;
	return GW_V_PASS;
}

enum gw_verdict gw_policy_check(struct gw *gw, struct gw_res *r, const struct gw_policy_in *in,
				struct gw_policy_out *out, uint64_t now_ns)
{
	const struct gw_resource_conf *rc = r->conf;
	if (rc->n_deny && cidr_any(rc->deny, rc->n_deny, in->family, in->addr)) {
		out->reason = "source in the deny list";
		return GW_V_DENY;
	}
	if (rc->n_allow && !cidr_any(rc->allow, rc->n_allow, in->family, in->addr)) {
		out->reason = "source not in the allow list";
		return GW_V_DENY;
	}
	/* Rate limits before authentication: guessing keys costs tokens too. */
	if (rc->rate_source.rate) {
		uint8_t key[17];
		gw_src_key(key, in->family, in->addr);
		struct gw_src_entry *e = src_get(gw, key, r->index + 1, now_ns, true);
		if (e) {
			e->last_ns = now_ns;
			if (!gw_bucket_take(&e->bucket, &rc->rate_source, now_ns,
					    &out->retry_after_s)) {
				out->reason = "rate limit per source";
				return GW_V_LIMITED;
			}
		}
	}
	if (rc->rate_resource.rate &&
	    !gw_bucket_take(&r->bucket, &rc->rate_resource, now_ns, &out->retry_after_s)) {
		out->reason = "rate limit of the resource";
		return GW_V_LIMITED;
	}
	if (!in->req)
		return GW_V_PASS;
	enum gw_action act = rc->auth == GW_AUTH_PUBLIC ? GW_ACT_ALLOW : GW_ACT_AUTH;
	for (size_t i = 0; i < rc->n_rules; i++)
		if (rule_matches(&rc->rules[i], in)) {
			act = rc->rules[i].action;
			break;
		}
	if (act == GW_ACT_DENY) {
		out->reason = "denied by rule";
		return GW_V_DENY;
	}
	/* A key is checked whenever one is configured, so the access log names the caller. */
	bool authed = rc->n_api_keys && api_key_ok(rc, in->req, out);
	if (!authed && rc->auth == GW_AUTH_LOGIN && (act == GW_ACT_AUTH || act == GW_ACT_ALLOW)) {
		enum gw_verdict v = login_session(r, in->req, out);
		authed = v == GW_V_PASS;
		if (!authed && act == GW_ACT_AUTH)
			return v;
	}
	if (act == GW_ACT_AUTH && !authed) {
		out->reason = "API key required";
		return GW_V_AUTH;
	}
	return GW_V_PASS;
}
