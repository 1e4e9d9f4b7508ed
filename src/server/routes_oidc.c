/* The management server as an OpenID Connect provider (issue 15, docs/GATEWAY.md "Logins
 * through the server"): the gateways' login resources send browsers here, the admin logs in
 * with the server's own account, and the gateway gets an ID token it checks with the public
 * key only (the JWKS), sharing no secret with the server.
 *
 *   OpenID Connect Discovery 1.0 section 4   GET /.well-known/openid-configuration
 *   RFC 7517 (JWK Set), RFC 7638 (key id)     GET /oauth2/jwks
 *   OpenID Connect Core 1.0 section 3.1.2     GET/POST /oauth2/authorize (code flow)
 *   RFC 6749 section 4.1.3, RFC 7636 4.6      POST /oauth2/token (PKCE S256 required)
 *   OpenID Connect Core 1.0 section 5.3       GET /oauth2/userinfo
 *
 * Clients are the login resources served through this server (auth login without an oidc
 * block of their own): client_id is the resource's id, and the redirect URIs are
 * http(s)://DOMAIN[:PORT]/.sg/oidc/callback for its domain and aliases (a wildcard alias
 * stands for one label). Public clients: PKCE instead of a client secret (RFC 7636; OAuth 2.0
 * Security BCP, RFC 9700 section 2.1.1). Tokens are ES384 JWTs (RFC 7518 section 3.4) signed
 * with a P-384 key derived from the master key, the same on every server of a cluster.
 *
 * Codes are single use and live 60 s; a login here sets a session cookie (8 h) so that the
 * next resource's login needs no password again. Both are stored hashed (SHA-384).
 *
 * One more client is built in: secureguard-cli, `secureguard connect --oidc` (docs/SERVER.md
 * "VPN sessions through the OpenID provider"), a native app (RFC 8252) whose redirect URI is a
 * loopback listener on any port (section 7.3). Its codes open VPN sessions (POST
 * /api/vpn-sessions/oidc, srv_oidc_redeem), never tokens; it is given one only after a login
 * with a second factor made on this page just now (no single sign-on from the cookie).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "crypto/crypto.h"
#include "secureguard/sg_errors.h"
#include "server/api.h"
#include "server/srv_int.h"

#define OP_CODE_TTL	60
#define OP_SESSION_TTL	(8 * 3600)
#define OP_COOKIE	"sg_op"
/* Session tokens: made by a password alone, or by a password and a second factor. The prefix
 * is part of what is hashed and stored, so a client cannot change it: a token with another
 * prefix matches no row. */
#define OP_SESSION_PW	"sgo_"
#define OP_SESSION_2F	"sgo2_"
#define REDIRECT_PATH	"/.sg/oidc/callback"
#define OP_MAX_DOMAINS	32

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* The issuer is --public-url: without it the server is no provider (tokens name their issuer,
 * and an issuer taken from a Host header could be anything). */
static bool op_enabled(struct srv *s, struct srv_resp *out)
{
	if (s->base_url[0])
		return true;
	srv_error(out, 404, NULL,
		  "this server is not an OpenID provider: start it with --public-url");
	return false;
}

static bool op_limited(struct srv_req *r, struct srv_resp *out, enum srv_rate_class cls)
{
	int retry;
	char ra[16];

	if (srv_rate_allow(cls, r->source_ip, &retry))
		return false;
	srv_error(out, 429, NULL, "too many requests from this address; retry later");
	snprintf(ra, sizeof(ra), "%d", retry);
	srv_resp_header(out, "Retry-After", ra);
	return true;
}

/* ---- keys and tokens ------------------------------------------------------------------------ */

void h_oidc_discovery(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	char u[5][320];
	static const char *const ep[] = {"/oauth2/authorize", "/oauth2/token", "/oauth2/jwks",
					 "/oauth2/userinfo"};

	if (!op_enabled(s, out) || op_limited(r, out, SRV_RATE_PUBLIC))
		return;
	for (size_t i = 0; i < SG_ARRAY_LEN(ep); i++)
		snprintf(u[i], sizeof(u[i]), "%s%s", s->base_url, ep[i]);
	srv_json(out, 200,
		 json_pack("{s:s,s:s,s:s,s:s,s:s,s:[s],s:[s],s:[s],s:[s],s:[s],s:[s],s:[sss],"
			   "s:[sssssss],s:b}",
			   "issuer", s->base_url, "authorization_endpoint", u[0], "token_endpoint",
			   u[1], "jwks_uri", u[2], "userinfo_endpoint", u[3],
			   "response_types_supported", "code", "subject_types_supported", "public",
			   "id_token_signing_alg_values_supported", "ES384",
			   "token_endpoint_auth_methods_supported", "none",
			   "code_challenge_methods_supported", "S256", "grant_types_supported",
			   "authorization_code", "scopes_supported", "openid", "email", "profile",
			   "claims_supported", "iss", "sub", "aud", "exp", "iat", "email", "name",
			   "request_parameter_supported", 0));
}

void h_oidc_jwks(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	char x[72], y[72];

	if (!op_enabled(s, out) || op_limited(r, out, SRV_RATE_PUBLIC))
		return;
	srv_b64url(x, s->oidc_x, sizeof(s->oidc_x));
	srv_b64url(y, s->oidc_y, sizeof(s->oidc_y));
	srv_json(out, 200,
		 json_pack("{s:[{s:s,s:s,s:s,s:s,s:s,s:s,s:s}]}", "keys", "kty", "EC", "crv", "P-384",
			   "x", x, "y", y, "use", "sig", "alg", "ES384", "kid", s->oidc_kid));
}

static char *jwt_sign(const struct srv *s, json_t *claims, const char *typ)
{
	return srv_jws_es384(s->oidc_priv, s->oidc_kid, claims, typ);
}

char *srv_jws_es384(const uint8_t priv[48], const char *kid, json_t *claims, const char *typ)
{
	json_t *h = json_pack("{s:s,s:s,s:s}", "alg", "ES384", "kid", kid, "typ", typ);
	char *ht = h ? json_dumps(h, JSON_COMPACT) : NULL;
	char *ct = json_dumps(claims, JSON_COMPACT);
	char *out = NULL;
	uint8_t sig[SG_ES384_SIG_LEN];
	size_t n;

	json_decref(h);
	if (!ht || !ct)
		goto out;
	n = 4 * ((strlen(ht) + 2) / 3) + 4 * ((strlen(ct) + 2) / 3) + 4 * (96 / 3) + 4;
	out = malloc(n);
	if (!out)
		goto out;
	srv_b64url(out, (const uint8_t *)ht, strlen(ht));
	strcat(out, ".");
	srv_b64url(out + strlen(out), (const uint8_t *)ct, strlen(ct));
	if (!sg_es384_sign(sig, priv, out, strlen(out))) {
		free(out);
		out = NULL;
		goto out;
	}
	strcat(out, ".");
	srv_b64url(out + strlen(out), sig, sizeof(sig));
out:
	free(ht);
	free(ct);
	return out;
}

/* The claims of one of our own tokens of type typ, or NULL (signature, issuer, expiry). */
static json_t *jwt_open(const struct srv *s, const char *tok, const char *typ)
{
	const char *d1 = strchr(tok, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	uint8_t hb[512], cb[4096], sig[SG_ES384_SIG_LEN + 2];
	json_t *h = NULL, *c = NULL;
	int hl, cl, sl;

	if (!d1 || !d2 || strchr(d2 + 1, '.') || strlen(tok) > 6000)
		return NULL;
	hl = srv_b64url_decode(hb, sizeof(hb), tok, (size_t)(d1 - tok));
	cl = srv_b64url_decode(cb, sizeof(cb), d1 + 1, (size_t)(d2 - d1 - 1));
	sl = srv_b64url_decode(sig, sizeof(sig), d2 + 1, strlen(d2 + 1));
	if (hl <= 0 || cl <= 0 || sl != SG_ES384_SIG_LEN ||
	    !sg_es384_verify(sig, s->oidc_x, s->oidc_y, tok, (size_t)(d2 - tok)))
		return NULL;
	h = json_loadb((const char *)hb, (size_t)hl, JSON_REJECT_DUPLICATES, NULL);
	c = json_loadb((const char *)cb, (size_t)cl, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(h) || !json_is_object(c) || !jstr(h, "typ") ||
	    strcmp(jstr(h, "typ"), typ) || !jstr(c, "iss") || strcmp(jstr(c, "iss"), s->base_url) ||
	    !json_is_integer(json_object_get(c, "exp")) ||
	    json_integer_value(json_object_get(c, "exp")) <= srv_now()) {
		json_decref(c);
		c = NULL;
	}
	json_decref(h);
	return c;
}

/* ---- clients and redirect URIs -------------------------------------------------------------- */

static bool host_matches(const char *host, size_t n, const char *domain)
{
	size_t dl = strlen(domain);

	if (dl > 2 && domain[0] == '*' && domain[1] == '.') {
		/* One label more (RFC 6125 section 6.4.3, as the gateway matches it). */
		const char *dot = memchr(host, '.', n);

		return dot && dot != host && (size_t)(host + n - dot) == dl - 1 &&
		       !strncasecmp(dot, domain + 1, dl - 1);
	}
	return n == dl && !strncasecmp(host, domain, n);
}

bool srv_oidc_redirect_ok(const char *uri, const char *const *domains, size_t ndomains)
{
	const char *p = uri, *host, *end;
	size_t hl;

	if (!strncmp(p, "https://", 8))
		p += 8;
	else if (!strncmp(p, "http://", 7))
		p += 7;
	else
		return false;
	host = p;
	while (*p && *p != '/' && *p != ':' && *p != '?' && *p != '#' && *p != '@')
		p++;
	hl = (size_t)(p - host);
	if (!hl || hl > 253 || *p == '@' || *p == '?' || *p == '#')
		return false;
	for (size_t i = 0; i < hl; i++) {
		if (!isalnum((unsigned char)host[i]) && host[i] != '-' && host[i] != '.')
			return false;
	}
	if (*p == ':') {
		long port = 0;

		for (end = ++p; *p >= '0' && *p <= '9' && p - end < 6; p++)
			port = port * 10 + (*p - '0');
		if (p == end || port < 1 || port > 65535 || (*end == '0'))
			return false;
	}
	/* Exactly the callback path: no query, fragment or other path (RFC 9700 section 4.1.3,
	 * exact matching). */
	if (strcmp(p, REDIRECT_PATH))
		return false;
	for (size_t i = 0; i < ndomains; i++) {
		if (domains[i] && host_matches(host, hl, domains[i]))
			return true;
	}
	return false;
}

struct op_client {
	char id[SRV_ID_LEN + 1];
	char name[160];
	char domains[OP_MAX_DOMAINS][254];
	size_t ndomains;
	bool loopback; /* SRV_OIDC_CLI: a native app's loopback redirect URIs */
};

/* RFC 8252 section 7.3: http://127.0.0.1:PORT/PATH or http://[::1]:PORT/PATH, any port (the
 * app binds an ephemeral one), a path of unreserved characters and '/', no query or fragment.
 * Not "localhost" (section 8.3: a name may resolve elsewhere, or be caught by a firewall). */
bool srv_oidc_loopback_ok(const char *uri)
{
	const char *p = uri, *digits;
	long port = 0;

	if (!strncmp(p, "http://127.0.0.1:", 17))
		p += 17;
	else if (!strncmp(p, "http://[::1]:", 13))
		p += 13;
	else
		return false;
	for (digits = p; *p >= '0' && *p <= '9' && p - digits < 6; p++)
		port = port * 10 + (*p - '0');
	if (p == digits || *digits == '0' || port < 1 || port > 65535 || *p != '/')
		return false;
	/* The rest: a path of at most 200 characters. */
	return strlen(p) <= 200 &&
	       strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/") ==
		   strlen(p);
}

/* A login resource served through this provider; 0, SG_ENOENT or a database error. */
static int client_get(struct sg_db_conn *c, const char *id, struct op_client *cl)
{
	struct sg_db_res *res = NULL;
	const char *p[] = {id};
	int rc;
	const char *a;

	if (!strcmp(id, SRV_OIDC_CLI)) {
		memset(cl, 0, sizeof(*cl));
		snprintf(cl->id, sizeof(cl->id), "%s", SRV_OIDC_CLI);
		snprintf(cl->name, sizeof(cl->name), "%s", "a VPN session (secureguard connect)");
		cl->loopback = true;
		return 0;
	}
	rc = sg_db_query(c, &res,
			     "SELECT id, name, domain, aliases FROM resources WHERE id = $1 AND "
			     "auth = 'login' AND oidc IS NULL AND enabled = 1 AND protocol = 'http'",
			     1, p);
	if (rc != 1) {
		sg_db_res_free(res);
		return rc < 0 ? rc : SG_ENOENT;
	}
	memset(cl, 0, sizeof(*cl));
	snprintf(cl->id, sizeof(cl->id), "%s", sg_db_res_get(res, 0, 0));
	snprintf(cl->name, sizeof(cl->name), "%s", sg_db_res_get(res, 0, 1));
	if (sg_db_res_get(res, 0, 2))
		snprintf(cl->domains[cl->ndomains++], 254, "%s", sg_db_res_get(res, 0, 2));
	for (a = sg_db_res_get(res, 0, 3); a && *a && cl->ndomains < OP_MAX_DOMAINS;) {
		size_t n = strcspn(a, ",");

		if (n && n < 254)
			snprintf(cl->domains[cl->ndomains++], 254, "%.*s", (int)n, a);
		a += n + (a[n] == ',');
	}
	sg_db_res_free(res);
	return 0;
}

static bool redirect_ok(const struct op_client *cl, const char *uri)
{
	const char *d[OP_MAX_DOMAINS];

	if (cl->loopback)
		return srv_oidc_loopback_ok(uri);
	for (size_t i = 0; i < cl->ndomains; i++)
		d[i] = cl->domains[i];
	return srv_oidc_redirect_ok(uri, d, cl->ndomains);
}

/* ---- the authorization request ---------------------------------------------------------------- */

/* The request's parameters: the query of a GET, the form of a POST (both in r). */
struct areq {
	const char *response_type, *client_id, *redirect_uri, *scope, *state, *nonce;
	const char *challenge, *method, *prompt;
	struct op_client cl;
};

static const char *param(struct srv_req *r, const char *name)
{
	return r->json ? jstr(r->json, name) : srv_query(r, name);
}

static void areq_read(struct srv_req *r, struct areq *a)
{
	a->response_type = param(r, "response_type");
	a->client_id = param(r, "client_id");
	a->redirect_uri = param(r, "redirect_uri");
	a->scope = param(r, "scope");
	a->state = param(r, "state");
	a->nonce = param(r, "nonce");
	a->challenge = param(r, "code_challenge");
	a->method = param(r, "code_challenge_method");
	a->prompt = param(r, "prompt");
}

/* Appends name=value to a query (RFC 3986: unreserved characters as they are). */
static void qappend(FILE *f, bool *first, const char *name, const char *v)
{
	if (!v)
		return;
	fprintf(f, "%c%s=", *first ? '?' : '&', name);
	*first = false;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (isalnum(*p) || strchr("-._~", *p))
			fputc(*p, f);
		else
			fprintf(f, "%%%02X", *p);
	}
}

/* 302 back to the client with code, or with error (Core 1.0 section 3.1.2.5 and 3.1.2.6). */
static void redirect_back(struct srv_resp *out, const struct areq *a, const char *code,
			  const char *error, const char *desc)
{
	char *loc = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&loc, &n);
	bool first = true;

	if (!f) {
		srv_error(out, 503, NULL, "out of memory");
		return;
	}
	fputs(a->redirect_uri, f);
	qappend(f, &first, "code", code);
	qappend(f, &first, "error", error);
	qappend(f, &first, "error_description", desc);
	qappend(f, &first, "state", a->state);
	if (fclose(f) || !loc) {
		free(loc);
		srv_error(out, 503, NULL, "out of memory");
		return;
	}
	srv_body(out, 302, "", "", 0, NULL);
	if (!srv_resp_header(out, "Location", loc))
		srv_error(out, 400, "redirect_uri", "the answer does not fit a redirect");
	free(loc);
}

/* Checks what must hold before anything goes back to redirect_uri (an unknown client or a
 * redirect URI that is not the client's is never redirected to: Core 1.0 section 3.1.2.6,
 * RFC 6749 section 4.1.2.1); the rest is answered by redirect. true when the request may go on. */
static bool areq_check(struct srv *s, struct sg_db_conn *c, struct srv_resp *out, struct areq *a)
{
	int rc = client_get(c, a->client_id, &a->cl);

	if (rc == SG_ENOENT) {
		srv_error(out, 400, "client_id",
			  "no login resource with this id is served through this provider");
		return false;
	}
	if (rc) {
		srv_dberr(out, c, rc);
		return false;
	}
	if (!redirect_ok(&a->cl, a->redirect_uri)) {
		srv_error(out, 400, "redirect_uri", "%s",
			  a->cl.loopback
			      ? "not a loopback redirect URI (RFC 8252 section 7.3: "
				"http://127.0.0.1:PORT/PATH or http://[::1]:PORT/PATH)"
			      : "not a redirect URI of this client (http(s)://DOMAIN" REDIRECT_PATH
				" for one of the resource's domains)");
		return false;
	}
	(void)s;
	if (!strstr(a->scope, "openid") ||
	    (strcmp(a->scope, "openid") && strncmp(a->scope, "openid ", 7) &&
	     !strstr(a->scope, " openid"))) {
		redirect_back(out, a, NULL, "invalid_scope", "the scope must include openid");
		return false;
	}
	if (strlen(a->challenge) < 43 ||
	    strspn(a->challenge, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") !=
		strlen(a->challenge)) {
		redirect_back(out, a, NULL, "invalid_request",
			      "code_challenge must be base64url of SHA-256 (PKCE S256)");
		return false;
	}
	return true;
}

/* A new code for user uid (stored hashed, single use, 60 s): 0 or a database error. */
static int code_new(struct sg_db_conn *c, const struct areq *a, const char *uid, int64_t auth_time,
		    char code[64])
{
	char hash[97], now[24], exp[24], at[24], old[24];
	int64_t t = srv_now();
	const char *p[] = {hash,
			   a->client_id,
			   a->redirect_uri,
			   uid,
			   a->nonce,
			   a->challenge,
			   a->scope,
			   srv_i64(at, auth_time),
			   srv_i64(exp, t + OP_CODE_TTL),
			   srv_i64(now, t)};
	const char *q[] = {srv_i64(old, t - OP_CODE_TTL)};
	int rc;

	srv_new_token(code, "sgc_");
	srv_token_hash(hash, code);
	/* Codes past their time go as new ones come (an index on expires_at). */
	rc = sg_db_exec(c, "DELETE FROM oidc_codes WHERE expires_at < $1", 1, q);
	if (rc >= 0)
		rc = sg_db_exec(c,
				"INSERT INTO oidc_codes (code_hash, client_id, redirect_uri, user_id, "
				"nonce, code_challenge, scope, auth_time, expires_at, created_at) "
				"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
				10, p);
	return srv_neg(rc);
}

/* The user of the provider's session cookie, when it is valid and the user enabled. A session
 * made by a password alone ends when the account gets a second factor, or the instance starts
 * requiring one: the login page would ask for one now. */
static bool session_user(struct sg_db_conn *c, struct srv_req *r, char uid[SRV_ID_LEN + 1],
			 int64_t *auth_time)
{
	const char *ck = srv_header(r, "cookie");
	char tok[80], hash[97], now[24];
	struct sg_db_res *res = NULL;
	const char *p[] = {hash, srv_i64(now, srv_now())};
	bool ok, second;

	if (!srv_cookie(ck, OP_COOKIE, tok, sizeof(tok)))
		return false;
	second = !strncmp(tok, OP_SESSION_2F, strlen(OP_SESSION_2F));
	srv_token_hash(hash, tok);
	sg_memzero(tok, sizeof(tok));
	ok = sg_db_query(c, &res,
			 second ? "SELECT s.user_id, s.auth_time FROM oidc_sessions s JOIN "
				  "admin_users u ON u.id = s.user_id WHERE s.token_hash = $1 AND "
				  "s.expires_at > $2 AND u.enabled = 1"
				: "SELECT s.user_id, s.auth_time FROM oidc_sessions s JOIN "
				  "admin_users u ON u.id = s.user_id WHERE s.token_hash = $1 AND "
				  "s.expires_at > $2 AND u.enabled = 1 AND NOT " SRV_SQL_HAS_2FA("u") " AND "
				  "NOT EXISTS (SELECT 1 FROM settings WHERE require_2fa = 1)",
			 2, p) == 1;
	if (ok) {
		snprintf(uid, SRV_ID_LEN + 1, "%s", sg_db_res_get(res, 0, 0));
		*auth_time = srv_res_i64(res, 0, 1);
	}
	sg_db_res_free(res);
	return ok;
}

static void html_esc(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default: fputc(*s, f);
		}
	}
}

struct op_step;
static void login_page(struct srv_resp *out, int status, const struct areq *a,
		       const struct op_step *step, const char *msg);

/* One step of the login page: the form's own fields after the request's hidden ones. The
 * password and a second factor are steps; another kind of factor is one more. */
struct op_step {
	void (*fields)(FILE *f, const struct op_step *st);
	const char *arg;
	bool totp, passkey; /* the second step: the account's factors */
};

static void hidden(FILE *f, const char *name, const char *v)
{
	fprintf(f, "<input type=\"hidden\" name=\"%s\" value=\"", name);
	html_esc(f, v);
	fputs("\">", f);
}

/* arg: the e-mail typed before, or NULL. */
static void step_password(FILE *f, const struct op_step *st)
{
	const char *email = st->arg;

	fputs("<label for=\"email\">E-mail</label><input id=\"email\" name=\"email\" "
	      "type=\"email\" autocomplete=\"username\" required value=\"",
	      f);
	html_esc(f, email);
	fputs("\"><label for=\"password\">Password</label><input id=\"password\" name=\"password\" "
	      "type=\"password\" autocomplete=\"current-password\" required>"
	      "<button id=\"signin\" type=\"submit\">Sign in</button>",
	      f);
}

/* arg: the mfa_token of the password step (docs/SERVER.md "Two-factor logins"). The code's
 * field when the account has TOTP (its recovery codes come with it); the passkey's button when
 * it has one: /oauth2/login.js asks the browser for an assertion (the challenge from POST
 * /api/auth/login/passkey/options with this mfa_token) and posts it as the credential field
 * (disabled until then: a code's post does not carry it). */
static void step_second(FILE *f, const struct op_step *st)
{
	hidden(f, "mfa_token", st->arg);
	if (st->totp || !st->passkey)
		fputs("<label for=\"code\">Code from your authenticator app, or a recovery "
		      "code</label><input id=\"code\" name=\"code\" type=\"text\" "
		      "autocomplete=\"one-time-code\" autocapitalize=\"none\" spellcheck=\"false\" "
		      "maxlength=\"32\" required autofocus>"
		      "<button id=\"verify\" type=\"submit\">Verify</button>",
		      f);
	if (st->passkey)
		fputs("<input type=\"hidden\" name=\"credential\" disabled>"
		      "<button id=\"passkey\" type=\"button\">Use a passkey</button>"
		      "<p id=\"passkey-error\" class=\"err\" role=\"alert\" hidden></p>"
		      "<script src=\"/oauth2/login.js\"></script>",
		      f);
}

/* The second step's page for the login of mfa_token: which factors the account has. */
static void second_page(struct sg_db_conn *c, struct srv_resp *out, int status,
			const struct areq *a, const char *mfa_token, const char *msg)
{
	struct op_step st = {step_second, mfa_token, false, false};
	struct sg_db_res *res = NULL;
	char hash[97];
	const char *p[] = {hash};

	srv_token_hash(hash, mfa_token);
	if (sg_db_query(c, &res,
			"SELECT CASE WHEN u.totp_secret IS NULL THEN 0 ELSE 1 END, CASE WHEN EXISTS "
			"(SELECT 1 FROM passkeys k WHERE k.user_id = u.id) THEN 1 ELSE 0 END FROM "
			"mfa_tokens m JOIN admin_users u ON u.id = m.user_id WHERE m.token_hash = $1",
			1, p) == 1) {
		st.totp = srv_res_i64(res, 0, 0) != 0;
		st.passkey = srv_res_i64(res, 0, 1) != 0;
	}
	sg_db_res_free(res);
	login_page(out, status, a, &st, msg);
}

/* The login page at a step: the request rides along in hidden fields to the POST. */
static void login_page(struct srv_resp *out, int status, const struct areq *a,
		       const struct op_step *step, const char *msg)
{
	static const char *const names[] = {"response_type", "client_id",      "redirect_uri",
					    "scope",	     "state",	       "nonce",
					    "code_challenge", "code_challenge_method"};
	const char *vals[] = {a->response_type, a->client_id, a->redirect_uri, a->scope,
			      a->state,	       a->nonce,     a->challenge,     a->method};
	char *page = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&page, &n);

	if (!f) {
		srv_error(out, 503, NULL, "out of memory");
		return;
	}
	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	      "<meta name=\"viewport\" content=\"width=device-width\"><title>Sign in</title>"
	      "<style>body{font-family:sans-serif;max-width:22em;margin:4em auto}"
	      "label,input,button{display:block;width:100%;margin:.4em 0}.err{color:#b00}"
	      "</style></head><body><h1>Sign in</h1><p>to <b>",
	      f);
	html_esc(f, a->cl.name);
	fputs("</b> with your SecureGuard account</p>", f);
	if (msg) {
		fputs("<p class=\"err\" role=\"alert\">", f);
		html_esc(f, msg);
		fputs("</p>", f);
	}
	fputs("<form method=\"post\" action=\"/oauth2/authorize\">", f);
	for (size_t i = 0; i < SG_ARRAY_LEN(names); i++) {
		if (vals[i])
			hidden(f, names[i], vals[i]);
	}
	step->fields(f, step);
	fputs("</form></body></html>\n", f);
	if (fclose(f) || !page) {
		free(page);
		srv_error(out, 503, NULL, "out of memory");
		return;
	}
	srv_body_take(out, status, "text/html; charset=utf-8", page, n);
	/* Not framed anywhere (clickjacking), nothing loaded from elsewhere; the passkey step's
	 * script is a file of this server (no inline script) that talks to this server only. No
	 * form-action: browsers apply it to the redirect that follows the form, to the client. */
	srv_resp_header(out, "Content-Security-Policy",
			step->passkey ? "default-src 'none'; script-src 'self'; connect-src 'self'; "
					"style-src 'unsafe-inline'; frame-ancestors 'none'; "
					"base-uri 'none'"
				      : "default-src 'none'; style-src 'unsafe-inline'; "
					"frame-ancestors 'none'; base-uri 'none'");
	srv_resp_header(out, "X-Frame-Options", "DENY");
	srv_resp_header(out, "Referrer-Policy", "no-referrer");
}

static void password_page(struct srv_resp *out, int status, const struct areq *a,
			  const char *email, const char *msg)
{
	struct op_step st = {step_password, email, false, false};

	login_page(out, status, a, &st, msg);
}

struct grant_ctx {
	struct srv_req *r;
	const struct areq *a;
	const struct srv_login *who; /* after a password: the login to record */
	const char *second;	     /* and the second factor it passed: "totp", ... */
	const char *uid, *email;
	int64_t auth_time;
	bool new_session;
	char code[64], session[64];
};

static int grant_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct grant_ctx *x = ctx;
	int rc = code_new(c, x->a, x->uid, x->auth_time, x->code);
	json_t *d;

	(void)s;
	if (!rc && x->new_session) {
		char hash[97], exp[24], now[24], at[24];
		int64_t t = srv_now();
		const char *p[] = {hash, x->uid, srv_i64(at, x->auth_time),
				   srv_i64(exp, t + OP_SESSION_TTL), srv_i64(now, t)};
		const char *q[] = {now};

		srv_new_token(x->session, x->second ? OP_SESSION_2F : OP_SESSION_PW);
		srv_token_hash(hash, x->session);
		/* A login with the password, as POST /api/auth/login records it. */
		rc = srv_login_success(c, x->who, t);
		if (!rc)
			rc = srv_neg(
			    sg_db_exec(c, "DELETE FROM oidc_sessions WHERE expires_at < $1", 1, q));
		if (!rc)
			rc = srv_neg(sg_db_exec(c,
						"INSERT INTO oidc_sessions (token_hash, user_id, "
						"auth_time, expires_at, created_at) VALUES ($1, $2, "
						"$3, $4, $5)",
						5, p));
	}
	if (rc)
		return rc;
	d = json_pack("{s:s,s:s,s:b}", "client_id", x->a->client_id, "redirect_uri",
		      x->a->redirect_uri, "password", x->new_session);
	if (d && x->second)
		json_object_set_new(d, "second_factor", json_string(x->second));
	rc = srv_audit(c, x->r, "oidc.authorized", "resource", x->a->client_id, x->a->cl.name,
		       "login", d);
	json_decref(d);
	return rc;
}

/* A code for the user, back to the client (and the session cookie after a login: who, and
 * second the second factor it passed or NULL). */
static void grant(struct srv *s, struct sg_db_conn *c, struct srv_req *r, struct srv_resp *out,
		  const struct areq *a, const char *uid, const struct srv_login *who,
		  const char *second, int64_t auth_time)
{
	bool new_session = who != NULL;
	struct grant_ctx x = {.r = r, .a = a, .who = who, .second = second, .uid = uid,
			      .email = who ? who->email : NULL, .auth_time = auth_time,
			      .new_session = new_session};
	int rc = srv_tx(s, c, grant_tx, &x, false);

	if (rc) {
		srv_dberr(out, c, rc);
	} else {
		redirect_back(out, a, x.code, NULL, NULL);
		if (new_session && out->status == 302) {
			char ck[160];

			snprintf(ck, sizeof(ck),
				 OP_COOKIE "=%s; Path=/oauth2; Max-Age=%d; HttpOnly; SameSite=Lax%s",
				 x.session, OP_SESSION_TTL, s->tls || !strncmp(s->base_url, "https:", 6)
							   ? "; Secure"
							   : "");
			srv_resp_header(out, "Set-Cookie", ck);
			sg_memzero(ck, sizeof(ck));
		}
	}
	sg_memzero(x.code, sizeof(x.code));
	sg_memzero(x.session, sizeof(x.session));
}

void h_oidc_authorize(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct areq a;
	struct sg_db_conn *c;
	char uid[SRV_ID_LEN + 1];
	int64_t at;

	if (!op_enabled(s, out) || op_limited(r, out, SRV_RATE_PUBLIC))
		return;
	areq_read(r, &a);
	c = sg_db_acquire(s->db);
	if (!areq_check(s, c, out, &a))
		goto out;
	if ((a.prompt && !strcmp(a.prompt, "login")) || (a.cl.loopback && !a.prompt)) {
		/* A VPN session proves the user is at the keyboard now: always the page for
		 * secureguard-cli, never the cookie of an earlier login. */
		password_page(out, 200, &a, NULL, NULL);
	} else if (!a.cl.loopback && session_user(c, r, uid, &at)) {
		/* Signed in here already: straight back (single sign-on). */
		grant(s, c, r, out, &a, uid, NULL, NULL, at);
	} else if (a.prompt && !strcmp(a.prompt, "none")) {
		redirect_back(out, &a, NULL, "login_required", "no session at the provider");
	} else {
		password_page(out, 200, &a, NULL, NULL);
	}
out:
	sg_db_release(c);
}

/* The instance requires a second factor of every admin (settings.require_2fa); a database
 * error counts as yes. */
static bool instance_requires_2fa(struct sg_db_conn *c)
{
	struct sg_db_res *res = NULL;
	int rc = sg_db_query(c, &res, "SELECT 1 FROM settings WHERE require_2fa = 1", 0, NULL);

	sg_db_res_free(res);
	return rc != 0;
}

/* After the second step: the code for the user, as a login with that factor. */
static void second_passed(struct srv *s, struct sg_db_conn *c, struct srv_req *r,
			  struct srv_resp *out, const struct areq *a, const char *uid,
			  const char *email, const char *role, int64_t gen, const char *second)
{
	struct srv_login who;

	memset(&who, 0, sizeof(who));
	snprintf(who.user_id, sizeof(who.user_id), "%s", uid);
	snprintf(who.email, sizeof(who.email), "%s", email);
	snprintf(who.role, sizeof(who.role), "%s", role);
	who.gen = gen;
	who.second = true;
	srv_ip_source(who.source, r->source_ip);
	grant(s, c, r, out, a, uid, &who, second, srv_now());
}

/* The second step with a passkey: the assertion /oauth2/login.js posted (the credential field,
 * as POST /api/auth/login/passkey takes it), checked by srv_passkey_verify with the same
 * challenge, counter, limits and audit. */
static void passkey_step(struct srv *s, struct srv_req *r, struct srv_resp *out,
			 const struct areq *a, const char *token, const char *credential)
{
	json_t *cred = json_loads(credential, JSON_REJECT_DUPLICATES, NULL), *why = NULL;
	struct srv_resp *refusal = calloc(1, sizeof(*refusal));
	struct srv_passkey_user u;
	struct sg_db_conn *c = NULL;
	const char *detail, *field;

	if (!refusal) {
		srv_error(out, 503, NULL, "out of memory");
		goto out;
	}
	if (!json_is_object(cred)) {
		c = sg_db_acquire(s->db);
		second_page(c, out, 400, a, token, "The passkey's answer did not arrive; try again.");
		goto out;
	}
	if (!srv_passkey_verify(s, r, cred, token, refusal, &u)) {
		c = sg_db_acquire(s->db);
		second_passed(s, c, r, out, a, u.user_id, u.email, u.role, u.gen, "passkey");
		goto out;
	}
	/* The refusal as the page says it: the API's problem document holds why. */
	why = refusal->body ? json_loadb(refusal->body, refusal->len, 0, NULL) : NULL;
	detail = jstr(why, "detail");
	field = jstr(why, "field");
	c = sg_db_acquire(s->db);
	if (field && !strcmp(field, "mfa_token")) {
		password_page(out, 401, a, NULL,
			      "The sign-in expired or had too many wrong answers; sign in again.");
	} else if (refusal->status == 429) {
		second_page(c, out, 429, a, token, "Too many attempts from this address; try later.");
		srv_retry_after(out, srv_ip_retry_secs(s, r->source_ip));
	} else {
		char msg[600];

		snprintf(msg, sizeof(msg), "The passkey was not accepted: %s",
			 detail ? detail : "refused");
		second_page(c, out, refusal->status >= 500 ? 503 : 401, a, token, msg);
	}
out:
	if (refusal)
		srv_resp_clear(refusal);
	free(refusal);
	json_decref(why);
	json_decref(cred);
	sg_db_release(c);
}

/* The second step: the mfa_token of the password step and a code, checked as
 * POST /api/auth/login/mfa checks them (srv_mfa_login), or a passkey's assertion. */
static void second_step(struct srv *s, struct srv_req *r, struct srv_resp *out,
			const struct areq *a, const char *token)
{
	struct sg_db_conn *c;
	struct srv_mfa_login m;
	const char *credential = jstr(r->json, "credential");
	int rc;

	if (credential && *credential) {
		passkey_step(s, r, out, a, token, credential);
		return;
	}
	c = sg_db_acquire(s->db);
	rc = srv_mfa_login(s, r, c, token, jstr(r->json, "code"), &m);
	if (rc == 429) {
		second_page(c, out, 429, a, token, "Too many attempts from this address; try later.");
		srv_retry_after(out, m.retry);
	} else if (rc < 0) {
		second_page(c, out, 503, a, token, "The server is busy; try again.");
		srv_retry_after(out, 1);
	} else if (rc != 200 && !strcmp(m.field, "mfa_token")) {
		/* Expired (five minutes), used, or ended by five wrong codes. */
		password_page(out, 401, a, NULL,
			      "The sign-in expired or had too many wrong codes; sign in again.");
	} else if (rc != 200) {
		second_page(c, out, 401, a, token, "Wrong code.");
	} else {
		second_passed(s, c, r, out, a, m.user_id, m.email, m.role, m.gen, m.second);
	}
	sg_memzero(&m, sizeof(m));
	sg_db_release(c);
}

void h_oidc_authorize_post(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct areq a;
	struct sg_db_conn *c;
	struct srv_login who;
	const char *email = jstr(r->json, "email"), *pw = jstr(r->json, "password");
	const char *token = jstr(r->json, "mfa_token");
	char tok[64];
	int status;

	if (!op_enabled(s, out))
		return;
	areq_read(r, &a);
	c = sg_db_acquire(s->db);
	if (!areq_check(s, c, out, &a))
		goto out;
	sg_db_release(c);
	c = NULL;
	if (token) {
		second_step(s, r, out, &a, token);
		goto out;
	}
	/* The server's own login: the same limits, lockout and audit as POST /api/auth/login. */
	status = srv_password_login(s, r, email, pw, &who);
	if (status == 429) {
		password_page(out, 429, &a, email, "Too many attempts from this address; try later.");
		srv_retry_after(out, who.retry);
		goto out;
	}
	if (status != 200) {
		password_page(out, status == 503 ? 503 : 401, &a, email,
			      status == 503 ? "The server is busy; try again."
					    : "Wrong e-mail or password.");
		goto out;
	}
	c = sg_db_acquire(s->db);
	if (!who.second && a.cl.loopback) {
		/* A VPN session needs a second factor; the password alone is not let through, as
		 * POST /api/vpn-sessions refuses it (403). The app hears why. */
		srv_login_failed(s, r, c, who.user_id, email, "no_second_factor");
		redirect_back(out, &a, NULL, "access_denied",
			      "this account has no second factor: VPN sessions need one (TOTP or a "
			      "passkey)");
		goto out;
	}
	if (who.second) {
		/* The account's second factor: the next step of this page, with an mfa_token as
		 * POST /api/auth/login answers it. */
		int rc = srv_mfa_token_new(s, r, c, who.user_id, who.email, tok);

		if (rc)
			password_page(out, 503, &a, email, "The server is busy; try again.");
		else
			second_page(c, out, 200, &a, tok, NULL);
		sg_memzero(tok, sizeof(tok));
		goto out;
	}
	/* The instance requires a second factor (require_2fa) and this account has none yet: it
	 * sets one up at the server's console first, and is not let through on its password. */
	if (instance_requires_2fa(c)) {
		srv_login_failed(s, r, c, who.user_id, email, "second_factor_required");
		password_page(out, 401, &a, email,
			      "This server requires a second factor: set one up in the "
			      "SecureGuard console first, then sign in again.");
		goto out;
	}
	grant(s, c, r, out, &a, who.user_id, &who, NULL, srv_now());
out:
	sg_db_release(c);
}

/* ---- the login page's script ------------------------------------------------------------------ */

/* The passkey step of the login page (step_second): served from here, never inline, so the
 * page's policy needs no 'unsafe-inline' for scripts. */
static const char login_js[] =
	"// The OpenID provider's login page, its passkey step (docs/GATEWAY.md \"Logins through the\n"
	"// server\"): a file, so that the page's Content-Security-Policy allows no inline script.\n"
	"(function () {\n"
	"	'use strict';\n"
	"	var btn = document.getElementById('passkey');\n"
	"	if (!btn) return;\n"
	"	var form = btn.form, err = document.getElementById('passkey-error');\n"
	"	function enc(buf) {\n"
	"		var b = new Uint8Array(buf), s = '';\n"
	"		for (var i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);\n"
	"		return btoa(s).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');\n"
	"	}\n"
	"	function dec(s) {\n"
	"		var bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4));\n"
	"		var out = new Uint8Array(bin.length);\n"
	"		for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);\n"
	"		return out;\n"
	"	}\n"
	"	function fail(msg) {\n"
	"		err.textContent = msg;\n"
	"		err.hidden = false;\n"
	"		btn.disabled = false;\n"
	"	}\n"
	"	if (!window.PublicKeyCredential || !navigator.credentials) {\n"
	"		fail('This browser cannot use passkeys here.');\n"
	"		btn.disabled = true;\n"
	"		return;\n"
	"	}\n"
	"	btn.addEventListener('click', function () {\n"
	"		btn.disabled = true;\n"
	"		err.hidden = true;\n"
	"		fetch('/api/auth/login/passkey/options', {\n"
	"			method: 'POST',\n"
	"			headers: { 'Content-Type': 'application/json' },\n"
	"			body: JSON.stringify({ mfa_token: form.elements.mfa_token.value }),\n"
	"			credentials: 'omit'\n"
	"		}).then(function (r) {\n"
	"			return r.json().then(function (o) {\n"
	"				if (!r.ok) throw new Error(o.detail || 'the server refused (' + r.status + ')');\n"
	"				return navigator.credentials.get({ publicKey: {\n"
	"					challenge: dec(o.challenge), rpId: o.rpId, timeout: o.timeout,\n"
	"					userVerification: o.userVerification,\n"
	"					allowCredentials: (o.allowCredentials || []).map(function (c) {\n"
	"						var d = { type: 'public-key', id: dec(c.id) };\n"
	"						if (c.transports && c.transports.length) d.transports = c.transports;\n"
	"						return d;\n"
	"					})\n"
	"				} });\n"
	"			});\n"
	"		}).then(function (c) {\n"
	"			var r = c.response, a = { id: enc(c.rawId), type: 'public-key', response: {\n"
	"				clientDataJSON: enc(r.clientDataJSON),\n"
	"				authenticatorData: enc(r.authenticatorData),\n"
	"				signature: enc(r.signature) } };\n"
	"			if (r.userHandle && r.userHandle.byteLength) a.response.userHandle = enc(r.userHandle);\n"
	"			form.elements.credential.value = JSON.stringify(a);\n"
	"			form.elements.credential.disabled = false;\n"
	"			if (form.elements.code) form.elements.code.disabled = true;\n"
	"			form.submit();\n"
	"		}).catch(function (e) {\n"
	"			fail('The passkey did not answer: ' + (e && e.message ? e.message : e));\n"
	"		});\n"
	"	});\n"
	"})();\n";

void h_oidc_login_js(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	if (!op_enabled(s, out) || op_limited(r, out, SRV_RATE_PUBLIC))
		return;
	srv_body(out, 200, "text/javascript; charset=utf-8", login_js, sizeof(login_js) - 1, NULL);
	srv_resp_header(out, "Cache-Control", "no-cache");
	srv_resp_header(out, "X-Content-Type-Options", "nosniff");
}

/* ---- the token endpoint ---------------------------------------------------------------------- */

/* An RFC 6749 section 5.2 error ("error", "error_description") in an RFC 9457 document. */
static void token_error(struct srv_resp *out, int status, const char *error, const char *desc)
{
	json_t *errs = json_array();

	srv_problems(out, status, desc, errs, NULL);
	if (out->body) {
		json_t *j = json_loadb(out->body, out->len, 0, NULL);
		char *t;

		json_object_set_new(j, "error", json_string(error));
		json_object_set_new(j, "error_description", json_string(desc));
		json_object_del(j, "errors");
		t = j ? json_dumps(j, JSON_COMPACT) : NULL;
		json_decref(j);
		if (t)
			srv_body_take(out, status, "application/problem+json", t, strlen(t));
	}
}

struct code_row {
	char client_id[SRV_ID_LEN + 1], user_id[SRV_ID_LEN + 1];
	char redirect_uri[2100], challenge[160], nonce[520], scope[520];
	int64_t auth_time, expires_at;
	bool has_nonce;
};

/* Takes the code (single use: the first redemption wins); 0, SG_ENOENT or a database error. */
static int code_take(struct srv *s, struct sg_db_conn *c, const char *code, struct code_row *cr)
{
	char hash[97];
	struct sg_db_res *res = NULL;
	const char *p[] = {hash};
	int rc;

	(void)s;
	srv_token_hash(hash, code);
	rc = sg_db_begin(c);
	if (rc)
		return rc;
	rc = sg_db_query(c, &res,
			 "SELECT client_id, user_id, redirect_uri, code_challenge, nonce, scope, "
			 "auth_time, expires_at FROM oidc_codes WHERE code_hash = $1 AND used = 0",
			 1, p);
	if (rc == 1) {
		snprintf(cr->client_id, sizeof(cr->client_id), "%s", sg_db_res_get(res, 0, 0));
		snprintf(cr->user_id, sizeof(cr->user_id), "%s", sg_db_res_get(res, 0, 1));
		snprintf(cr->redirect_uri, sizeof(cr->redirect_uri), "%s", sg_db_res_get(res, 0, 2));
		snprintf(cr->challenge, sizeof(cr->challenge), "%s", sg_db_res_get(res, 0, 3));
		cr->has_nonce = sg_db_res_get(res, 0, 4) != NULL;
		snprintf(cr->nonce, sizeof(cr->nonce), "%s",
			 cr->has_nonce ? sg_db_res_get(res, 0, 4) : "");
		snprintf(cr->scope, sizeof(cr->scope), "%s", sg_db_res_get(res, 0, 5));
		cr->auth_time = srv_res_i64(res, 0, 6);
		cr->expires_at = srv_res_i64(res, 0, 7);
		rc = sg_db_exec(c, "UPDATE oidc_codes SET used = 1 WHERE code_hash = $1 AND used = 0",
				1, p);
		rc = rc == 1 ? 0 : rc < 0 ? rc : SG_ENOENT;
	} else {
		rc = rc < 0 ? rc : SG_ENOENT;
	}
	sg_db_res_free(res);
	if (!rc)
		rc = sg_db_commit(c);
	if (rc)
		sg_db_rollback(c);
	return rc;
}

/* RFC 7636 section 4.6: BASE64URL(SHA256(ASCII(code_verifier))) == code_challenge. */
static bool pkce_ok(const char *verifier, const char *challenge)
{
	uint8_t h[SG_SHA256_LEN];
	char b[48];
	struct sg_iov iov = {verifier, strlen(verifier)};
	size_t n = strlen(verifier);

	/* 43..128 of [A-Z a-z 0-9 - . _ ~] (section 4.1). */
	if (n < 43 || n > 128 ||
	    strspn(verifier, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~") != n ||
	    !sg_sha256(h, &iov, 1))
		return false;
	srv_b64url(b, h, sizeof(h));
	return strlen(b) == strlen(challenge) && sg_memeq(b, challenge, strlen(b));
}

static int refused_audit(struct srv *s, struct srv_req *r, const char *client, const char *why)
{
	struct sg_db_conn *c = sg_db_acquire(s->db);
	json_t *d = json_pack("{s:s}", "reason", why);
	int rc = sg_db_begin(c);

	if (!rc)
		rc = srv_audit(c, r, "oidc.token_refused", "resource", client, NULL, "token", d);
	if (!rc)
		rc = sg_db_commit(c);
	if (rc)
		sg_db_rollback(c);
	json_decref(d);
	sg_db_release(c);
	return rc;
}

/* What a code may be refused for at redemption; NULL when it passes. */
static const char *code_refusal(const struct code_row *cr, int64_t t, const char *client,
				const char *uri, const char *verifier)
{
	if (cr->expires_at <= t)
		return "the code has expired";
	if (strcmp(cr->client_id, client))
		return "the code was issued to another client";
	if (strcmp(cr->redirect_uri, uri))
		return "redirect_uri differs from the authorization request's";
	if (!pkce_ok(verifier, cr->challenge))
		return "code_verifier does not match the code_challenge";
	return NULL;
}

int srv_oidc_redeem(struct srv *s, struct srv_req *r, struct sg_db_conn *c, const char *code,
		    const char *redirect_uri, const char *verifier, const char *nonce,
		    char uid[SRV_ID_LEN + 1], const char **why)
{
	struct code_row cr;
	int rc = code_take(s, c, code, &cr);

	*why = NULL;
	if (rc == SG_ENOENT)
		*why = "unknown, used or expired code";
	else if (rc)
		return rc;
	else
		*why = code_refusal(&cr, srv_now(), SRV_OIDC_CLI, redirect_uri, verifier);
	/* The app's nonce: what it sent with the authorization request (Core 1.0 section 3.1.2.1;
	 * here there is no ID token to carry it back, so the app shows it). */
	if (!*why && cr.has_nonce != (nonce != NULL))
		*why = cr.has_nonce ? "nonce is missing: the authorization request had one"
				    : "nonce was not in the authorization request";
	else if (!*why && nonce &&
		 (strlen(nonce) != strlen(cr.nonce) || !sg_memeq(nonce, cr.nonce, strlen(nonce))))
		*why = "nonce differs from the authorization request's";
	if (*why) {
		(void)refused_audit(s, r, SRV_OIDC_CLI, *why);
		return 1;
	}
	snprintf(uid, SRV_ID_LEN + 1, "%s", cr.user_id);
	return 0;
}

void h_oidc_token(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	const char *code = jstr(r->json, "code"), *client = jstr(r->json, "client_id");
	const char *uri = jstr(r->json, "redirect_uri"), *verifier = jstr(r->json, "code_verifier");
	struct sg_db_conn *c;
	struct sg_db_res *res = NULL;
	struct code_row cr;
	const char *why = NULL;
	json_t *claims = NULL;
	char *id_token = NULL, *access = NULL;
	int64_t t = srv_now();
	int rc;

	if (!op_enabled(s, out) || op_limited(r, out, SRV_RATE_TOKEN))
		return;
	if (!strcmp(client, SRV_OIDC_CLI)) {
		/* Its codes open VPN sessions only (and the request's schema wants a UUID here:
		 * this holds whatever the schema becomes). */
		token_error(out, 400, "unauthorized_client",
			    "the codes of secureguard-cli open VPN sessions (POST "
			    "/api/vpn-sessions/oidc), not tokens");
		return;
	}
	c = sg_db_acquire(s->db);
	rc = code_take(s, c, code, &cr);
	if (rc == SG_ENOENT)
		why = "unknown, used or expired code";
	else if (rc) {
		srv_dberr(out, c, rc);
		goto out;
	} else
		why = code_refusal(&cr, t, client, uri, verifier);
	if (why) {
		(void)refused_audit(s, r, client, why);
		token_error(out, 400, "invalid_grant", why);
		goto out;
	}
	{
		const char *p[] = {cr.user_id};

		rc = sg_db_query(c, &res,
				 "SELECT email, role FROM admin_users WHERE id = $1 AND enabled = 1",
				 1, p);
	}
	if (rc != 1) {
		if (rc < 0) {
			srv_dberr(out, c, rc);
			goto out;
		}
		token_error(out, 400, "invalid_grant", "the user is gone or disabled");
		goto out;
	}
	/* Core 1.0 section 2: iss, sub, aud, exp, iat, auth_time, nonce; and who it is. */
	claims = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:s,s:s,s:s}", "iss", s->base_url, "sub",
			   cr.user_id, "aud", cr.client_id, "exp", (json_int_t)(t + s->oidc_ttl),
			   "iat", (json_int_t)t, "auth_time", (json_int_t)cr.auth_time, "email",
			   sg_db_res_get(res, 0, 0), "name", sg_db_res_get(res, 0, 0),
			   "secureguard_role", sg_db_res_get(res, 0, 1));
	if (claims && cr.has_nonce)
		json_object_set_new(claims, "nonce", json_string(cr.nonce));
	id_token = claims ? jwt_sign(s, claims, "JWT") : NULL;
	if (claims) {
		/* The access token (RFC 9068): for the userinfo endpoint. */
		json_object_del(claims, "nonce");
		json_object_set_new(claims, "scope", json_string(cr.scope));
		json_object_set_new(claims, "client_id", json_string(cr.client_id));
		access = jwt_sign(s, claims, "at+jwt");
	}
	if (!id_token || !access) {
		srv_error(out, 503, NULL, "the tokens could not be made; retry");
		goto out;
	}
	srv_json(out, 200,
		 json_pack("{s:s,s:s,s:i,s:s,s:s}", "access_token", access, "token_type", "Bearer",
			   "expires_in", s->oidc_ttl, "id_token", id_token, "scope", cr.scope));
out:
	if (id_token)
		sg_memzero(id_token, strlen(id_token));
	if (access)
		sg_memzero(access, strlen(access));
	free(id_token);
	free(access);
	json_decref(claims);
	sg_db_res_free(res);
	sg_db_release(c);
}

void h_oidc_userinfo(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	const char *auth = srv_header(r, "authorization");
	json_t *claims;

	if (!op_enabled(s, out) || op_limited(r, out, SRV_RATE_PUBLIC))
		return;
	claims = auth && !strncasecmp(auth, "Bearer ", 7) ? jwt_open(s, auth + 7, "at+jwt") : NULL;
	if (!claims) {
		/* RFC 6750 section 3.1. */
		srv_resp_header(out, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
		srv_error(out, 401, NULL, "a valid access token of this provider is required");
		return;
	}
	srv_json(out, 200,
		 json_pack("{s:O,s:O,s:O}", "sub", json_object_get(claims, "sub"), "email",
			   json_object_get(claims, "email"), "name", json_object_get(claims, "name")));
	json_decref(claims);
}
