/* MFA-gated VPN sessions (docs/SERVER.md "MFA-gated VPN sessions", issue 22).
 *
 * A network with mfa_required lists a client on its hubs only while the client's owner holds an
 * open session here (render.c): the hub's agent follows within a second of a change (the
 * sessions table moves sync_state.revision, schema migration 12), adding the peer when a session
 * opens and removing it (UAPI remove=true: its handshake state and keypairs go with it) when the
 * session ends.
 *
 *   POST   /api/vpn-sessions          the owner's e-mail, password and a TOTP (or recovery) code
 *                                     and the client: a session of the network's
 *                                     mfa_session_hours (or less, duration_seconds) and its token
 *   POST   /api/vpn-sessions/oidc     a code of the OpenID provider's login (client
 *                                     secureguard-cli: `secureguard connect --oidc`), its PKCE
 *                                     verifier, redirect URI and nonce, and the client: the same
 *                                     session, the second factor proven on the provider's page
 *   POST   /api/vpn-sessions/end      the session's token: the user ends it (`secureguard
 *                                     disconnect`)
 *   POST   /api/vpn-sessions/tls-token  the session's token: its TLS session token again
 *                                     (`secureguard connect --tls-token-out`)
 *   GET    /api/tls-session-key       the public key that verifies TLS session tokens
 *   GET    /api/vpn-sessions          admins: who is connected, and the history
 *   DELETE /api/vpn-sessions/{id}     admins: revoke one
 *
 * Opening is a login: the same per-address limit, per-(account, source) lockout, password
 * hashing queue and timing for unknown accounts as POST /api/auth/login (srv_password_login),
 * and the code counts and is spent as at POST /api/auth/login/mfa. The session token is only
 * stored as its SHA-384. Every step is audited: vpn_session.opened, .ended (by the user),
 * .revoked (by an admin), .expired (by the server), failed attempts as user.login_failed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "common/log.h"
#include "crypto/crypto.h"
#include "secureguard/sg_errors.h"
#include "server/api.h"
#include "server/srv_int.h"

#define VPN_COLS                                                                                   \
	"v.id, v.client_id, c.name AS client_name, c.network_id, v.user_id, u.email AS "          \
	"user_email, v.source_ip, v.created_at, "                                                 \
	"v.expires_at, v.ended_at, v.end_reason, v.ended_by, CASE WHEN v.ended_at IS NULL AND "    \
	"v.expires_at > $1 THEN 1 ELSE 0 END AS active"
#define VPN_KINDS "sssssssiiissb"
#define VPN_FROM                                                                                   \
	"vpn_sessions v LEFT JOIN clients c ON c.id = v.client_id LEFT JOIN admin_users u ON "     \
	"u.id = v.user_id"

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* ---- opening -------------------------------------------------------------------------------- */

struct open_ctx {
	struct srv_req *r;
	const struct srv_login *who;
	const char *client, *code, *hash; /* code NULL: proven at the OpenID provider */
	int64_t want; /* duration_seconds asked for, 0 = the network's */
	/* out */
	int status;
	const char *field;
	char msg[192];
	bool wrong; /* the code was wrong: counted after the rollback */
	char id[SRV_ID_LEN + 1], cid[SRV_ID_LEN + 1], cname[128], net[SRV_ID_LEN + 1];
	char cpk[64]; /* the client's WireGuard public key, for its TLS session token */
	int64_t expires, opened;
};

static int refuse(struct open_ctx *x, int status, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int refuse(struct open_ctx *x, int status, const char *field, const char *fmt, ...)
{
	va_list ap;

	x->status = status;
	x->field = field;
	va_start(ap, fmt);
	vsnprintf(x->msg, sizeof(x->msg), fmt, ap);
	va_end(ap);
	return 1;
}

static int open_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct open_ctx *x = ctx;
	struct sg_db_res *res = NULL;
	const char *uid = x->who->user_id;
	int64_t t = srv_now(), secs;
	bool recovery;
	int rc, n;

	x->wrong = false;
	recovery = false;
	/* The code first: without it nothing about the account's clients is told. */
	rc = x->code ? srv_mfa_spend(s, c, x->r, uid, x->who->email, x->code, &recovery) : 1;
	if (rc < 0)
		return rc;
	if (rc == 0) {
		x->wrong = true;
		return refuse(x, 401, "code", "%s", "wrong code");
	}
	{
		const char *p[] = {x->client, uid};

		rc = sg_db_query(c, &res,
				 "SELECT c.id, c.name, c.network_id, c.enabled, n.mfa_required, "
				 "n.mfa_session_hours, c.is_relay, c.public_key_classic FROM clients c "
				 "JOIN networks n ON "
				 "n.id = c.network_id WHERE (c.id = $1 OR c.name = $1) AND "
				 "c.owner_id = $2 ORDER BY c.created_at, c.id",
				 2, p);
	}
	if (rc < 0)
		return rc;
	n = rc;
	if (n == 0) {
		sg_db_res_free(res);
		return refuse(x, 404, "client", "this account owns no client \"%s\"", x->client);
	}
	if (n > 1) {
		sg_db_res_free(res);
		return refuse(x, 409, "client",
			      "this account owns several clients named \"%s\": give its id",
			      x->client);
	}
	snprintf(x->cid, sizeof(x->cid), "%s", sg_db_res_get(res, 0, 0));
	snprintf(x->cname, sizeof(x->cname), "%s", sg_db_res_get(res, 0, 1));
	snprintf(x->net, sizeof(x->net), "%s", sg_db_res_get(res, 0, 2));
	snprintf(x->cpk, sizeof(x->cpk), "%s", sg_db_res_get(res, 0, 7) ? sg_db_res_get(res, 0, 7) : "");
	if (!srv_res_i64(res, 0, 3) || srv_res_i64(res, 0, 6) || !srv_res_i64(res, 0, 4)) {
		const char *why = !srv_res_i64(res, 0, 3)   ? "is disabled"
				  : srv_res_i64(res, 0, 6) ? "is a hub: hubs need no session"
							   : "is in a network that does not require "
							     "MFA (mfa_required is false): it is a "
							     "peer without a session";

		sg_db_res_free(res);
		return refuse(x, 409, "client", "client \"%s\" %s", x->cname, why);
	}
	secs = srv_res_i64(res, 0, 5) * 3600;
	sg_db_res_free(res);
	if (x->want && x->want < secs)
		secs = x->want;
	x->expires = t + secs;
	x->opened = t;
	srv_uuid(x->id);
	{
		char now[24], exp[24];
		const char *p[] = {x->id, x->cid, uid, x->hash, x->r->source_ip,
				   srv_i64(exp, x->expires), srv_i64(now, t)};
		const char *q[] = {x->cid, now, uid};
		json_t *d;
		int replaced;

		/* One session per client: a new one replaces what was open. */
		replaced = sg_db_exec(c,
				      "UPDATE vpn_sessions SET ended_at = $2, end_reason = 'replaced', "
				      "ended_by = $3 WHERE client_id = $1 AND ended_at IS NULL",
				      3, q);
		if (replaced < 0)
			return replaced;
		rc = srv_neg(sg_db_exec(c,
					"INSERT INTO vpn_sessions (id, client_id, user_id, token_hash, "
					"source_ip, expires_at, created_at) VALUES ($1, $2, $3, $4, "
					"$5, $6, $7)",
					7, p));
		/* A login through the provider was recorded there (oidc.authorized). */
		if (!rc && x->code)
			rc = srv_login_success(c, x->who, t);
		if (rc)
			return rc;
		d = json_pack("{s:s,s:s,s:s,s:I,s:s,s:i}", "client_id", x->cid, "network_id", x->net,
			      "user_id", uid, "expires_at", (json_int_t)x->expires, "second",
			      !x->code ? "oidc" : recovery ? "recovery_code" : "totp", "replaced",
			      replaced);
		rc = srv_audit(c, x->r, "vpn_session.opened", "vpn_session", x->id, x->cname,
			       "create", d);
		json_decref(d);
	}
	return rc;
}

/* The TLS transport's session token (docs/TLS.md "Session tokens"): what a hub's TLS listener
 * with RequireSessionToken admits, for the client's WireGuard key (cpk) and the session's time,
 * checked with the public key only (GET /api/tls-session-key). NULL if the client has no classic
 * key or signing failed: the session stands without it. */
static char *tls_token_sign(const struct srv *s, const char *sid, const char *cid, const char *net,
			    const char *cpk, int64_t opened, int64_t expires)
{
	json_t *claims;
	char *tok;

	if (!cpk || !cpk[0])
		return NULL;
	claims = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I}", "iss",
			   s->base_url[0] ? s->base_url : "secureguard-server", "sub", cid, "sid",
			   sid, "net", net, "cpk", cpk, "nbf", (json_int_t)opened, "iat",
			   (json_int_t)srv_now(), "exp", (json_int_t)expires);
	tok = claims ? srv_jws_es384(s->tlstok_priv, s->tlstok_kid, claims, "sg-tls-session+jwt")
		     : NULL;
	json_decref(claims);
	return tok;
}

/* The public key that verifies session tokens: a JWK (RFC 7517) and the PEM SubjectPublicKeyInfo
 * a daemon's TlsSessionKey file holds. Public, as a JWKS is. */
void h_tls_session_key(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	static const uint8_t spki[] = {0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86,
				       0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
				       0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00, 0x04};
	uint8_t der[sizeof(spki) + 96];
	char x[72], y[72], b64[200], pem[320];
	int retry;

	if (!srv_rate_allow(SRV_RATE_PUBLIC, r->source_ip, &retry)) {
		srv_error(out, 429, NULL, "too many requests from this address; retry later");
		srv_retry_after(out, retry);
		return;
	}
	memcpy(der, spki, sizeof(spki));
	memcpy(der + sizeof(spki), s->tlstok_x, 48);
	memcpy(der + sizeof(spki) + 48, s->tlstok_y, 48);
	sg_b64_encode(b64, der, sizeof(der), false);
	snprintf(pem, sizeof(pem),
		 "-----BEGIN PUBLIC KEY-----\n%.64s\n%.64s\n%s\n-----END PUBLIC KEY-----\n", b64,
		 b64 + 64, b64 + 128);
	srv_b64url(x, s->tlstok_x, sizeof(s->tlstok_x));
	srv_b64url(y, s->tlstok_y, sizeof(s->tlstok_y));
	srv_json(out, 200,
		 json_pack("{s:s,s:s,s:{s:s,s:s,s:s,s:s,s:s,s:s,s:s},s:s}", "alg", "ES384", "kid",
			   s->tlstok_kid, "jwk", "kty", "EC", "crv", "P-384", "x", x, "y", y, "use",
			   "sig", "alg", "ES384", "kid", s->tlstok_kid, "pem", pem));
}

/* Opens the session of x for who (the factors proven) and answers it. A code's attempt was
 * counted on the address (srv_ip_attempt) when x->code is set. */
static void open_run(struct srv *s, struct srv_req *r, struct srv_resp *out, struct sg_db_conn *c,
		     struct open_ctx *x, const struct srv_login *who)
{
	char tok[64], hash[97];
	int rc;

	srv_new_token(tok, "sgv_");
	srv_token_hash(hash, tok);
	x->who = who;
	x->hash = hash;
	rc = srv_tx(s, c, open_tx, x, false);
	if (rc < 0) {
		srv_dberr(out, c, rc);
	} else if (rc > 0) {
		if (x->wrong)
			srv_login_failed(s, r, c, who->user_id, who->email, "bad_code");
		else if (x->code)
			srv_ip_refund(s, r->source_ip);
		srv_error(out, x->status, x->field, "%s", x->msg);
	} else {
		if (x->code)
			srv_ip_refund(s, r->source_ip);
		srv_log(SG_LOG_INFO, "vpn_session_opened", "client=%s user=%s expires_at=%lld",
			x->cid, who->user_id, (long long)x->expires);
		char *tls = tls_token_sign(s, x->id, x->cid, x->net, x->cpk, x->opened, x->expires);

		srv_json(out, 201,
			 json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:s?}", "id", x->id,
				   "session_token", tok, "client_id", x->cid, "client_name", x->cname,
				   "network_id", x->net, "user_id", who->user_id, "expires_at",
				   (json_int_t)x->expires, "expires_in",
				   (json_int_t)(x->expires - srv_now()), "tls_session_token", tls));
		free(tls);
	}
	sg_memzero(tok, sizeof(tok));
}

void h_vpn_open(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	const char *email = jstr(r->json, "email"), *password = jstr(r->json, "password");
	json_t *dur = json_object_get(r->json, "duration_seconds");
	struct open_ctx x = {.r = r, .client = jstr(r->json, "client"), .code = jstr(r->json, "code")};
	struct sg_db_conn *c = NULL;
	struct srv_login who;
	int status;

	x.want = dur ? json_integer_value(dur) : 0;
	status = srv_password_login(s, r, email, password, &who);
	if (srv_login_refused(out, status, &who))
		return;
	/* From here the request acts as the user: the audit rows name him. */
	r->who.kind = PRINCIPAL_USER;
	r->who.role = srv_role_parse(who.role);
	snprintf(r->who.id, sizeof(r->who.id), "%s", who.user_id);
	snprintf(r->who.user_id, sizeof(r->who.user_id), "%s", who.user_id);
	snprintf(r->who.name, sizeof(r->who.name), "%s", who.email);
	c = sg_db_acquire(s->db);
	if (!who.second) {
		srv_login_failed(s, r, c, who.user_id, who.email, "no_second_factor");
		srv_error(out, 403, NULL,
			  "this account has no second factor: turn on TOTP (POST /api/auth/totp) "
			  "before opening a VPN session");
		goto out;
	}
	/* The code counts toward the per-address limit as at the login's second step. */
	if (!srv_ip_attempt(s, r->source_ip)) {
		srv_log_limited(SG_LOG_WARN, "login_rate_limited", "src=%s", r->source_ip);
		srv_error(out, 429, NULL, "too many failed attempts from this address; retry later");
		srv_retry_after(out, srv_ip_retry_secs(s, r->source_ip));
		goto out;
	}
	open_run(s, r, out, c, &x, &who);
out:
	sg_db_release(c);
}

/* The user of a redeemed code, as a login of the password step would fill it: 0, SG_ENOENT
 * (gone or disabled), SG_EPERM (no second factor any more), or a database error. */
static int oidc_user(struct sg_db_conn *c, struct srv_req *r, const char *uid, struct srv_login *who)
{
	struct sg_db_res *res = NULL;
	const char *p[] = {uid};
	int rc = sg_db_query(c, &res,
			     "SELECT u.email, u.role, u.token_gen, CASE WHEN " SRV_SQL_HAS_2FA("u")
			     " THEN 1 ELSE 0 END FROM admin_users u WHERE u.id = $1 AND "
			     "u.enabled = 1",
			     1, p);

	if (rc == 1) {
		memset(who, 0, sizeof(*who));
		snprintf(who->user_id, sizeof(who->user_id), "%s", uid);
		snprintf(who->email, sizeof(who->email), "%s", sg_db_res_get(res, 0, 0));
		snprintf(who->role, sizeof(who->role), "%s", sg_db_res_get(res, 0, 1));
		who->gen = srv_res_i64(res, 0, 2);
		who->second = srv_res_i64(res, 0, 3) != 0;
		srv_ip_source(who->source, r->source_ip);
		rc = who->second ? 0 : SG_EPERM;
	} else if (rc >= 0) {
		rc = SG_ENOENT;
	}
	sg_db_res_free(res);
	return rc;
}

/* The login was the OpenID provider's page (client secureguard-cli), where the second factor was
 * asked of the account: the code, bound to that login by PKCE, opens the session. */
void h_vpn_open_oidc(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	json_t *dur = json_object_get(r->json, "duration_seconds");
	struct open_ctx x = {.r = r, .client = jstr(r->json, "client")};
	struct sg_db_conn *c;
	struct srv_login who;
	char uid[SRV_ID_LEN + 1];
	const char *why;
	int rc, retry;

	if (!s->base_url[0]) {
		srv_error(out, 404, NULL,
			  "this server is not an OpenID provider: start it with --public-url");
		return;
	}
	/* A guess costs a token bucket of the address, as at the token endpoint (a code has 256
	 * random bits and its verifier as many). */
	if (!srv_rate_allow(SRV_RATE_TOKEN, r->source_ip, &retry)) {
		srv_error(out, 429, NULL, "too many requests from this address; retry later");
		srv_retry_after(out, retry);
		return;
	}
	x.want = dur ? json_integer_value(dur) : 0;
	c = sg_db_acquire(s->db);
	rc = srv_oidc_redeem(s, r, c, jstr(r->json, "oidc_code"), jstr(r->json, "redirect_uri"),
			     jstr(r->json, "code_verifier"), jstr(r->json, "nonce"), uid, &why);
	if (rc < 0) {
		srv_dberr(out, c, rc);
		goto out;
	}
	if (rc > 0) {
		srv_error(out, 401, "oidc_code", "%s", why);
		goto out;
	}
	rc = oidc_user(c, r, uid, &who);
	if (rc == SG_ENOENT) {
		srv_error(out, 401, "oidc_code", "the user is gone or disabled");
		goto out;
	}
	if (rc == SG_EPERM) {
		/* Removed between the login and now. */
		srv_error(out, 403, NULL, "this account has no second factor any more");
		goto out;
	}
	if (rc) {
		srv_dberr(out, c, rc);
		goto out;
	}
	r->who.kind = PRINCIPAL_USER;
	r->who.role = srv_role_parse(who.role);
	snprintf(r->who.id, sizeof(r->who.id), "%s", who.user_id);
	snprintf(r->who.user_id, sizeof(r->who.user_id), "%s", who.user_id);
	snprintf(r->who.name, sizeof(r->who.name), "%s", who.email);
	open_run(s, r, out, c, &x, &who);
out:
	sg_db_release(c);
}

/* ---- ending --------------------------------------------------------------------------------- */

struct end_ctx {
	struct srv_req *r;
	const char *id, *hash; /* one of them */
	const char *reason, *event;
	int status;
	const char *msg;
};

static int end_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct end_ctx *x = ctx;
	struct sg_db_res *res = NULL;
	char now[24], sid[SRV_ID_LEN + 1], cname[128];
	int64_t t = srv_now();
	json_t *d;
	int rc;

	(void)s;
	srv_i64(now, t);
	{
		const char *p[] = {x->id ? x->id : x->hash, now};

		rc = sg_db_query(c, &res,
				 x->id ? "SELECT v.id, v.client_id, v.user_id, u.email, c.name, CASE "
					 "WHEN v.ended_at IS NULL AND v.expires_at > $2 THEN 1 ELSE 0 "
					 "END FROM " VPN_FROM " WHERE v.id = $1"
				       : "SELECT v.id, v.client_id, v.user_id, u.email, c.name, CASE "
					 "WHEN v.ended_at IS NULL AND v.expires_at > $2 THEN 1 ELSE 0 "
					 "END FROM " VPN_FROM " WHERE v.token_hash = $1",
				 2, p);
	}
	if (rc < 0)
		return rc;
	if (rc != 1 || (!x->id && !srv_res_i64(res, 0, 5))) {
		/* A token is worth nothing once its session ended: the same answer as unknown. */
		sg_db_res_free(res);
		x->status = 404;
		x->msg = x->id ? "no such session" : "no open session has this token";
		return 1;
	}
	if (!srv_res_i64(res, 0, 5)) {
		sg_db_res_free(res);
		x->status = 409;
		x->msg = "the session has ended already";
		return 1;
	}
	snprintf(sid, sizeof(sid), "%s", sg_db_res_get(res, 0, 0));
	snprintf(cname, sizeof(cname), "%s",
		 sg_db_res_get(res, 0, 4) ? sg_db_res_get(res, 0, 4) : "");
	if (!x->id) {
		/* The user ends his own: he is the actor. */
		x->r->who.kind = PRINCIPAL_USER;
		snprintf(x->r->who.id, sizeof(x->r->who.id), "%s", sg_db_res_get(res, 0, 2));
		snprintf(x->r->who.name, sizeof(x->r->who.name), "%s",
			 sg_db_res_get(res, 0, 3) ? sg_db_res_get(res, 0, 3) : "");
	}
	d = json_pack("{s:s,s:s,s:s}", "client_id", sg_db_res_get(res, 0, 1), "user_id",
		      sg_db_res_get(res, 0, 2), "reason", x->reason);
	sg_db_res_free(res);
	{
		const char *p[] = {sid, now, x->reason, x->r->who.id};

		rc = sg_db_exec(c,
				"UPDATE vpn_sessions SET ended_at = $2, end_reason = $3, ended_by = "
				"$4 WHERE id = $1 AND ended_at IS NULL",
				4, p);
	}
	if (rc >= 0)
		rc = srv_audit(c, x->r, x->event, "vpn_session", sid, cname, "delete", d);
	json_decref(d);
	return srv_neg(rc);
}

static void end_run(struct srv *s, struct srv_resp *out, struct end_ctx *x)
{
	struct sg_db_conn *c = sg_db_acquire(s->db);
	int rc = srv_tx(s, c, end_tx, x, false);

	if (rc < 0)
		srv_dberr(out, c, rc);
	else if (rc > 0)
		srv_error(out, x->status, NULL, "%s", x->msg);
	else
		srv_body(out, 204, "application/json", "", 0, NULL);
	sg_db_release(c);
}

void h_vpn_end(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	char hash[97];
	struct end_ctx x = {.r = r, .hash = hash, .reason = "ended_by_user",
			    .event = "vpn_session.ended"};
	int retry;

	/* Unauthenticated: a guess costs a token bucket of the address (it cannot succeed: the
	 * token has 256 random bits). */
	if (!srv_rate_allow(SRV_RATE_TOKEN, r->source_ip, &retry)) {
		srv_error(out, 429, NULL, "too many requests from this address; retry later");
		srv_retry_after(out, retry);
		return;
	}
	srv_token_hash(hash, jstr(r->json, "session_token"));
	end_run(s, out, &x);
}

/* The open session of a session token: its TLS session token again (a client that lost the
 * file, or `secureguard connect --tls-token-out`). Unauthenticated as /end, and limited alike. */
void h_vpn_tls_token(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct sg_db_conn *c;
	struct sg_db_res *res = NULL;
	char hash[97], now[24];
	const char *p[] = {hash, srv_i64(now, srv_now())};
	int retry, rc;

	if (!srv_rate_allow(SRV_RATE_TOKEN, r->source_ip, &retry)) {
		srv_error(out, 429, NULL, "too many requests from this address; retry later");
		srv_retry_after(out, retry);
		return;
	}
	srv_token_hash(hash, jstr(r->json, "session_token"));
	c = sg_db_acquire(s->db);
	rc = sg_db_query(c, &res,
			 "SELECT v.id, v.client_id, c.network_id, c.public_key_classic, v.created_at, "
			 "v.expires_at FROM " VPN_FROM " WHERE v.token_hash = $1 AND v.ended_at IS NULL "
			 "AND v.expires_at > $2",
			 2, p);
	if (rc < 0) {
		srv_dberr(out, c, rc);
	} else if (rc != 1) {
		srv_error(out, 404, NULL, "no open session has this token");
	} else {
		int64_t exp = srv_res_i64(res, 0, 5);
		char *tls = tls_token_sign(s, sg_db_res_get(res, 0, 0), sg_db_res_get(res, 0, 1),
					   sg_db_res_get(res, 0, 2), sg_db_res_get(res, 0, 3),
					   srv_res_i64(res, 0, 4), exp);

		if (!tls)
			srv_error(out, 409, NULL,
				  "the client has no classic (X25519) key: no TLS session token");
		else
			srv_json(out, 200,
				 json_pack("{s:s,s:I}", "tls_session_token", tls, "expires_at",
					   (json_int_t)exp));
		free(tls);
	}
	sg_db_res_free(res);
	sg_db_release(c);
}

void h_vpn_revoke(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct end_ctx x = {.r = r, .id = r->params[0], .reason = "revoked",
			    .event = "vpn_session.revoked"};

	end_run(s, out, &x);
}

void h_vpn_list(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	char where[256] = "", now[24];
	const char *p[8];
	int n = 0, active = api_query_bool(r->route, r, "active");

	p[n++] = srv_i64(now, srv_now());
	if (srv_query(r, "client_id")) {
		p[n++] = srv_query(r, "client_id");
		snprintf(where + strlen(where), sizeof(where) - strlen(where),
			 " AND v.client_id = $%d", n);
	}
	if (srv_query(r, "user_id")) {
		p[n++] = srv_query(r, "user_id");
		snprintf(where + strlen(where), sizeof(where) - strlen(where),
			 " AND v.user_id = $%d", n);
	}
	/* $1 (now) is used by the count's WHERE too, so the count binds it as well. */
	if (active >= 0)
		snprintf(where + strlen(where), sizeof(where) - strlen(where),
			 active ? " AND v.ended_at IS NULL AND v.expires_at > $1"
				: " AND (v.ended_at IS NOT NULL OR v.expires_at <= $1)");
	else
		snprintf(where + strlen(where), sizeof(where) - strlen(where),
			 " AND CAST($1 AS BIGINT) IS NOT NULL");
	srv_list_page(s, out, VPN_FROM, VPN_COLS, VPN_KINDS, where, "v.created_at DESC, v.id", p,
		      n, srv_limit(r), srv_offset(r));
}

/* ---- ends the server makes -------------------------------------------------------------------- */

/* Ends the sessions the query selects ($1: now, $2: its argument), each audited by the system. */
static int end_selected(struct sg_db_conn *c, const char *sql, const char *arg, const char *reason,
			const char *event)
{
	struct sg_db_res *res = NULL;
	char now[24];
	const char *p[] = {srv_i64(now, srv_now()), arg};
	int rc, n, done = 0;

	rc = sg_db_query(c, &res, sql, arg ? 2 : 1, p);
	if (rc < 0)
		return rc;
	n = rc;
	for (int i = 0; i < n; i++) {
		const char *q[] = {sg_db_res_get(res, i, 0), now, reason};
		json_t *d;

		rc = sg_db_exec(c,
				"UPDATE vpn_sessions SET ended_at = $2, end_reason = $3 WHERE id = $1 "
				"AND ended_at IS NULL",
				3, q);
		if (rc < 0)
			break;
		if (rc == 0)
			continue; /* another server of the cluster ended it first */
		d = json_pack("{s:s,s:s,s:s}", "client_id", sg_db_res_get(res, i, 1), "user_id",
			      sg_db_res_get(res, i, 2), "reason", reason);
		rc = srv_audit_system(c, event, "vpn_session", sg_db_res_get(res, i, 0),
				      sg_db_res_get(res, i, 3), "delete", d);
		json_decref(d);
		if (rc < 0)
			break;
		done++;
	}
	sg_db_res_free(res);
	return rc < 0 ? rc : done;
}

int srv_vpn_end_user(struct sg_db_conn *c, const char *user_id, const char *reason)
{
	return srv_neg(end_selected(c,
				    "SELECT v.id, v.client_id, v.user_id, c.name FROM " VPN_FROM
				    " WHERE v.user_id = $2 AND v.ended_at IS NULL AND v.expires_at "
				    "> $1",
				    user_id, reason, "vpn_session.ended"));
}

struct expire_ctx {
	int done;
};

static int expire_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct expire_ctx *x = ctx;
	int rc;

	(void)s;
	rc = end_selected(c,
			  "SELECT v.id, v.client_id, v.user_id, c.name FROM " VPN_FROM
			  " WHERE v.ended_at IS NULL AND v.expires_at <= $1 ORDER BY v.expires_at "
			  "LIMIT 100",
			  NULL, "expired", "vpn_session.expired");
	x->done = rc > 0 ? rc : 0;
	return srv_neg(rc);
}

int srv_vpn_expire(struct srv *s)
{
	struct sg_db_conn *c = sg_db_acquire(s->db);
	struct sg_db_res *res = NULL;
	struct expire_ctx x = {0};
	char now[24];
	const char *p[] = {srv_i64(now, srv_now())};
	int rc;

	/* The common case, nothing due, is one indexed read (idx_vpn_sessions_open). */
	rc = sg_db_query(c, &res,
			 "SELECT 1 FROM vpn_sessions WHERE ended_at IS NULL AND expires_at <= $1 "
			 "LIMIT 1",
			 1, p);
	sg_db_res_free(res);
	if (rc == 1) {
		rc = srv_tx(s, c, expire_tx, &x, false);
		if (rc)
			srv_log(SG_LOG_WARN, "vpn_expire_failed", "err=%s", sg_err_name(rc));
		else if (x.done)
			srv_log(SG_LOG_INFO, "vpn_sessions_expired", "count=%d", x.done);
	}
	sg_db_release(c);
	return x.done;
}
