/* Two-factor logins for admins (docs/SERVER.md "Two-factor logins"): TOTP enrolment, the second
 * step of a login, removal, a super_admin's reset, and ten single-use recovery codes.
 *
 *   POST   /api/auth/totp           start enrolment: the secret (base32), its otpauth URI, or
 *                                   (?format=qr) a PNG of it; asked again within 10 minutes it
 *                                   answers the same secret, so the JSON and the QR agree
 *   POST   /api/auth/totp/confirm   a code of the new secret turns it on; the recovery codes
 *   DELETE /api/auth/totp           a code (or recovery code) turns it off
 *   POST   /api/auth/login/mfa      mfa_token from the password step + a code: the tokens
 *   DELETE /api/users/{id}/totp     a super_admin turns off another user's second factor
 *
 * Secrets are sealed with the server's at-rest key, bound to the user id (srv_seal). A code is
 * good once: the step it matched is stored, and a code of that step or an earlier one is
 * refused (RFC 6238 section 5.2). Wrong codes count toward the same per-(account, source)
 * lockout as wrong passwords, and every attempt toward the per-address login limit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "crypto/crypto.h"
#include "secureguard/sg_errors.h"
#include "server/srv_int.h"

#define MFA_TOKEN_TTL	 300 /* an mfa_token lives five minutes */
#define MFA_MAX_ATTEMPTS 5   /* wrong codes that end an mfa_token */
#define PENDING_TTL	 600 /* an enrolment not confirmed in ten minutes starts over */

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* RFC 3986 percent-encoding of a label part of the otpauth URI (unreserved and '@' kept, as the
 * Key Uri Format's own examples write e-mail addresses). */
static void pct(char *out, size_t cap, const char *in)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)in; *p && o + 4 < cap; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~@", *p)) {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	out[o] = 0;
}

/* The key of a sealed base32 secret; false when it does not open (wrong key file, tampering). */
static bool open_key(const struct srv *s, const char *blob, const char *uid,
		     uint8_t key[SRV_TOTP_KEY_LEN])
{
	char *b32 = blob ? srv_open(s, blob, uid, "totp") : NULL;
	bool ok = b32 && srv_totp_b32_decode(key, b32) == 0;

	srv_free_secret(b32);
	return ok;
}

static bool is_totp_code(const char *code)
{
	if (strlen(code) != 6)
		return false;
	for (int i = 0; i < 6; i++)
		if (code[i] < '0' || code[i] > '9')
			return false;
	return true;
}

/* Hash of a recovery code as stored: bound to the user, so one table serves everyone. */
static void recovery_hash(char out[97], const char *uid, const char *norm)
{
	char buf[SRV_ID_LEN + SRV_RECOVERY_LEN + 2];

	snprintf(buf, sizeof(buf), "%s:%s", uid, norm);
	srv_token_hash(out, buf);
	sg_memzero(buf, sizeof(buf));
}

/* Every code checked counts toward the per-address login limit (refunded when it was right),
 * as a password does: 429 with Retry-After past it. */
static bool attempt(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	if (srv_ip_attempt(s, r->source_ip))
		return true;
	srv_log_limited(SG_LOG_WARN, "login_rate_limited", "src=%s", r->source_ip);
	srv_error(out, 429, NULL, "too many failed attempts from this address; retry later");
	srv_retry_after(out, srv_ip_retry_secs(s, r->source_ip));
	return false;
}

/* A second factor presented: a TOTP code (matched against the secret) or a recovery code
 * (normalised and hashed). */
struct factor {
	bool recovery;
	uint64_t step; /* TOTP: the step matched, 0 = no match */
	char rhash[97];
};

static bool factor_read(const struct srv *s, const char *uid, const char *blob, int64_t last,
			const char *code, struct factor *f)
{
	char norm[SRV_RECOVERY_LEN + 1];

	memset(f, 0, sizeof(*f));
	if (is_totp_code(code)) {
		uint8_t key[SRV_TOTP_KEY_LEN];

		if (!open_key(s, blob, uid, key))
			return false;
		f->step = srv_totp_match(key, sizeof(key), code, srv_now(),
					 last > 0 ? (uint64_t)last : 0);
		sg_memzero(key, sizeof(key));
		return f->step != 0;
	}
	if (!srv_recovery_normalize(norm, code))
		return false;
	f->recovery = true;
	recovery_hash(f->rhash, uid, norm);
	sg_memzero(norm, sizeof(norm));
	return true;
}

/* Spends the factor inside the caller's transaction: 1 when it was good and is now used, 0
 * when not (replayed step, unknown or used recovery code), <0 on a database error. */
static int factor_spend(struct sg_db_conn *c, struct srv_req *r, const char *uid,
			const char *email, const struct factor *f)
{
	char now[24], step[24];
	int rc;

	srv_i64(now, srv_now());
	if (!f->recovery) {
		const char *p[] = {uid, srv_i64(step, (int64_t)f->step)};

		/* Checked again here, under the row's write lock: two requests with the same code
		 * cannot both pass. */
		rc = sg_db_exec(c,
				"UPDATE admin_users SET totp_last_step = $2 WHERE id = $1 AND "
				"totp_last_step < $2",
				2, p);
		return rc < 0 ? rc : rc == 1;
	}
	{
		const char *p[] = {uid, f->rhash, now};
		struct sg_db_res *res = NULL;
		json_t *d;

		rc = sg_db_exec(c,
				"UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND "
				"code_hash = $2 AND used_at IS NULL",
				3, p);
		if (rc != 1)
			return rc < 0 ? rc : 0;
		rc = sg_db_query(c, &res,
				 "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND "
				 "used_at IS NULL",
				 1, p);
		if (rc < 0)
			return rc;
		d = json_pack("{s:I}", "recovery_codes_left", (json_int_t)srv_res_i64(res, 0, 0));
		sg_db_res_free(res);
		rc = srv_audit(c, r, "user.recovery_code_used", "user", uid, email, "login", d);
		json_decref(d);
		return rc < 0 ? rc : 1;
	}
}

int srv_mfa_spend(struct srv *s, struct sg_db_conn *c, struct srv_req *r, const char *uid,
		  const char *email, const char *code, bool *recovery)
{
	struct sg_db_res *res = NULL;
	const char *p[] = {uid};
	struct factor f;
	bool good;
	int rc;

	*recovery = false;
	rc = sg_db_query(c, &res, "SELECT totp_secret, totp_last_step FROM admin_users WHERE id = $1",
			 1, p);
	if (rc < 0)
		return rc;
	if (rc != 1 || !sg_db_res_get(res, 0, 0)) {
		sg_db_res_free(res);
		return 0;
	}
	good = factor_read(s, uid, sg_db_res_get(res, 0, 0), srv_res_i64(res, 0, 1), code, &f);
	sg_db_res_free(res);
	rc = good ? factor_spend(c, r, uid, email, &f) : 0;
	*recovery = f.recovery;
	sg_memzero(&f, sizeof(f));
	return rc;
}

/* ---- the second step of a login ----------------------------------------------------------- */

struct challenge_ctx {
	struct srv_req *r;
	const char *uid, *email, *hash;
};

static int challenge_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct challenge_ctx *x = ctx;
	char now[24], exp[24], source[64];
	int64_t t = srv_now();
	const char *p[] = {x->hash, x->uid, source, srv_i64(exp, t + MFA_TOKEN_TTL),
			   srv_i64(now, t)};
	int rc;

	(void)s;
	srv_ip_source(source, x->r->source_ip);
	/* Expired ones go with each new one: the table holds only the last five minutes. */
	rc = srv_neg(sg_db_exec(c, "DELETE FROM mfa_tokens WHERE expires_at <= $1", 1, p + 4));
	if (!rc)
		rc = srv_neg(sg_db_exec(c,
					"INSERT INTO mfa_tokens (token_hash, user_id, source, "
					"attempts, expires_at, created_at) VALUES ($1, $2, $3, 0, "
					"$4, $5)",
					5, p));
	if (!rc)
		rc = srv_audit(c, x->r, "user.mfa_required", "user", x->uid, x->email, "login",
			       NULL);
	return rc;
}

int srv_mfa_token_new(struct srv *s, struct srv_req *r, struct sg_db_conn *c, const char *uid,
		      const char *email, char tok[64])
{
	char hash[97];
	struct challenge_ctx x = {r, uid, email, hash};
	int rc;

	srv_new_token(tok, "sgm_");
	srv_token_hash(hash, tok);
	rc = srv_tx(s, c, challenge_tx, &x, false);
	if (rc)
		sg_memzero(tok, 64);
	return rc;
}

void srv_mfa_challenge(struct srv *s, struct srv_req *r, struct sg_db_conn *c, const char *uid,
		       const char *email, struct srv_resp *out)
{
	char tok[64];
	struct sg_db_res *res = NULL;
	const char *p[] = {uid};
	json_t *methods = json_array();
	int rc;

	/* Which second factors the account has, so a client knows what to offer. */
	rc = sg_db_query(c, &res,
			 "SELECT CASE WHEN totp_secret IS NULL THEN 0 ELSE 1 END, CASE WHEN EXISTS "
			 "(SELECT 1 FROM passkeys WHERE user_id = $1) THEN 1 ELSE 0 END FROM "
			 "admin_users WHERE id = $1",
			 1, p);
	if (rc == 1 && srv_res_i64(res, 0, 0))
		json_array_append_new(methods, json_string("totp"));
	if (rc == 1 && srv_res_i64(res, 0, 1))
		json_array_append_new(methods, json_string("passkey"));
	sg_db_res_free(res);
	rc = srv_mfa_token_new(s, r, c, uid, email, tok);
	if (rc)
		srv_dberr(out, c, rc);
	else
		srv_json(out, 200,
			 json_pack("{s:b,s:s,s:i,s:O}", "mfa_required", 1, "mfa_token", tok,
				   "expires_in", MFA_TOKEN_TTL, "methods", methods));
	json_decref(methods);
	sg_memzero(tok, sizeof(tok));
}

struct mfa_login_ctx {
	struct srv_req *r;
	const char *hash, *uid, *email;
	const struct factor *f;
	bool token_gone; /* the mfa_token was used or expired meanwhile */
};

static int mfa_login_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct mfa_login_ctx *x = ctx;
	char now[24];
	const char *p[] = {x->hash, srv_i64(now, srv_now())};
	int rc;

	(void)s;
	x->token_gone = false;
	/* Single use: of two requests with one mfa_token, one deletes it. */
	rc = sg_db_exec(c, "DELETE FROM mfa_tokens WHERE token_hash = $1 AND expires_at > $2", 2,
			p);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		x->token_gone = true;
		return 1;
	}
	rc = factor_spend(c, x->r, x->uid, x->email, x->f);
	return rc < 0 ? rc : rc == 1 ? 0 : 1;
}

/* A wrong code (or passkey answer): counted on the mfa_token (five end it) and toward the
 * source's lockout. */
void srv_mfa_wrong(struct srv *s, struct srv_req *r, struct sg_db_conn *c, const char *hash,
		   const char *uid, const char *email, const char *reason)
{
	const char *p[] = {hash};
	char max[8];
	const char *q[] = {hash, max};

	snprintf(max, sizeof(max), "%d", MFA_MAX_ATTEMPTS);
	(void)sg_db_exec(c, "UPDATE mfa_tokens SET attempts = attempts + 1 WHERE token_hash = $1",
			 1, p);
	(void)sg_db_exec(c, "DELETE FROM mfa_tokens WHERE token_hash = $1 AND attempts >= $2", 2,
			 q);
	srv_login_failed(s, r, c, uid, email, reason);
}

int srv_mfa_login(struct srv *s, struct srv_req *r, struct sg_db_conn *c, const char *token,
		  const char *code, struct srv_mfa_login *m)
{
	struct sg_db_res *res = NULL;
	char hash[97], source[64];
	struct factor f;
	struct mfa_login_ctx x = {.r = r, .hash = hash, .uid = m->user_id, .email = m->email,
				  .f = &f};
	int64_t t = srv_now(), last;
	bool enabled, locked, good;
	char *blob = NULL;
	int rc, status = 401;

	memset(m, 0, sizeof(*m));
	memset(&f, 0, sizeof(f));
	m->field = "mfa_token";
	if (!srv_ip_attempt(s, r->source_ip)) {
		srv_log_limited(SG_LOG_WARN, "login_rate_limited", "src=%s", r->source_ip);
		m->retry = srv_ip_retry_secs(s, r->source_ip);
		return 429;
	}
	if (!token || !code)
		return 401;
	srv_token_hash(hash, token);
	srv_ip_source(source, r->source_ip);
	{
		const char *p[] = {hash, source};

		rc = sg_db_query(c, &res,
				 "SELECT m.user_id, m.expires_at, u.email, u.role, u.enabled, "
				 "u.token_gen, u.totp_secret, u.totp_last_step, f.locked_until FROM "
				 "mfa_tokens m JOIN admin_users u ON u.id = m.user_id LEFT JOIN "
				 "login_failures f ON f.user_id = u.id AND f.source = $2 WHERE "
				 "m.token_hash = $1",
				 2, p);
	}
	if (rc < 0) {
		status = rc;
		goto out;
	}
	if (rc != 1 || srv_res_i64(res, 0, 1) <= t)
		goto out;
	snprintf(m->user_id, sizeof(m->user_id), "%s", sg_db_res_get(res, 0, 0));
	snprintf(m->email, sizeof(m->email), "%s", sg_db_res_get(res, 0, 2));
	snprintf(m->role, sizeof(m->role), "%s", sg_db_res_get(res, 0, 3));
	enabled = srv_res_i64(res, 0, 4) != 0;
	m->gen = srv_res_i64(res, 0, 5);
	/* No TOTP secret: the account's second factor is a passkey (routes_passkeys.c); a code
	 * can then only be wrong. */
	blob = strdup(sg_db_res_get(res, 0, 6) ?: "");
	last = srv_res_i64(res, 0, 7);
	locked = sg_db_res_get(res, 0, 8) && srv_res_i64(res, 0, 8) > t;
	sg_db_res_free(res);
	res = NULL;
	m->field = "code";
	if (!blob) {
		status = SG_ENOMEM;
		goto out;
	}
	if (!enabled || locked) {
		srv_login_failed(s, r, c, m->user_id, m->email, enabled ? "locked" : "disabled");
		goto out;
	}
	good = factor_read(s, m->user_id, *blob ? blob : NULL, last, code, &f);
	if (good) {
		rc = srv_tx(s, c, mfa_login_tx, &x, false);
		if (rc < 0) {
			status = rc;
			goto out;
		}
		if (x.token_gone) {
			m->field = "mfa_token";
			goto out;
		}
		good = rc == 0;
	}
	if (!good) {
		srv_mfa_wrong(s, r, c, hash, m->user_id, m->email, "bad_code");
		goto out;
	}
	srv_ip_refund(s, r->source_ip);
	m->second = f.recovery ? "recovery_code" : "totp";
	m->field = NULL;
	status = 200;
out:
	free(blob);
	sg_memzero(&f, sizeof(f));
	sg_db_res_free(res);
	return status;
}

void h_login_mfa(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	const char *token = jstr(r->json, "mfa_token"), *code = jstr(r->json, "code");
	struct sg_db_conn *c = sg_db_acquire(s->db);
	struct srv_mfa_login m;
	json_t *result = NULL;
	int rc = srv_mfa_login(s, r, c, token, code, &m);

	if (rc == 429) {
		srv_error(out, 429, NULL, "too many failed attempts from this address; retry later");
		srv_retry_after(out, m.retry);
	} else if (rc < 0) {
		srv_dberr(out, c, rc);
	} else if (rc != 200) {
		if (!strcmp(m.field, "mfa_token"))
			srv_error(out, 401, "mfa_token", "invalid or expired mfa_token: log in again");
		else
			srv_error(out, 401, "code", "wrong code");
	} else {
		rc = srv_login_finish(s, r, c, m.user_id, m.email, m.role, m.gen, m.second, NULL,
				      &result);
		if (rc)
			srv_dberr(out, c, rc);
		else
			srv_login_answer(s, r, out, result);
	}
	sg_db_release(c);
}

/* ---- enrolment ------------------------------------------------------------------------------ */

struct totp_ctx {
	struct srv_req *r;
	const struct srv *s;
	const char *code; /* confirm / delete */
	int status;
	const char *field, *msg;
	/* start */
	char b32[SRV_TOTP_B32_LEN + 1];
	char email[256], issuer[256];
	int64_t expires_in;
	/* confirm */
	char codes[SRV_RECOVERY_CODES][SRV_RECOVERY_LEN + 1];
	/* delete: the factor was wrong (counted after the rollback) */
	bool wrong;
};

static int refuse(struct totp_ctx *x, int status, const char *field, const char *msg)
{
	x->status = status;
	x->field = field;
	x->msg = msg;
	return 1;
}

static int start_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct totp_ctx *x = ctx;
	struct sg_db_res *res = NULL;
	const char *uid = x->r->who.user_id;
	const char *p[] = {uid};
	int64_t t = srv_now();
	int rc;

	rc = sg_db_query(c, &res,
			 "SELECT email, CASE WHEN totp_secret IS NULL THEN 0 ELSE 1 END, totp_pending, "
			 "totp_pending_at, "
			 "(SELECT instance_name FROM settings WHERE id = 1) FROM admin_users "
			 "WHERE id = $1",
			 1, p);
	if (rc < 0)
		return rc;
	if (rc != 1) {
		sg_db_res_free(res);
		return refuse(x, 404, NULL, "no such user");
	}
	snprintf(x->email, sizeof(x->email), "%s", sg_db_res_get(res, 0, 0));
	snprintf(x->issuer, sizeof(x->issuer), "%s",
		 sg_db_res_get(res, 0, 4) ? sg_db_res_get(res, 0, 4) : "SecureGuard");
	if (srv_res_i64(res, 0, 1)) {
		sg_db_res_free(res);
		return refuse(x, 409, NULL,
			      "two-factor authentication is already on: turn it off first "
			      "(DELETE /api/auth/totp)");
	}
	/* A pending secret younger than PENDING_TTL is answered again. */
	if (sg_db_res_get(res, 0, 2) && srv_res_i64(res, 0, 3) > t - PENDING_TTL) {
		char *b = srv_open(s, sg_db_res_get(res, 0, 2), uid, "totp");

		if (b && strlen(b) == SRV_TOTP_B32_LEN) {
			memcpy(x->b32, b, sizeof(x->b32));
			x->expires_in = srv_res_i64(res, 0, 3) + PENDING_TTL - t;
			srv_free_secret(b);
			sg_db_res_free(res);
			return 0;
		}
		srv_free_secret(b);
	}
	sg_db_res_free(res);
	{
		uint8_t key[SRV_TOTP_KEY_LEN];
		char now[24], *sealed;

		if (!srv_totp_secret(key, x->b32))
			return SG_ECRYPTO;
		sg_memzero(key, sizeof(key));
		sealed = srv_seal(s, x->b32, uid, "totp");
		if (!sealed)
			return SG_ECRYPTO;
		{
			const char *q[] = {uid, sealed, srv_i64(now, t)};

			rc = srv_neg(sg_db_exec(c,
						"UPDATE admin_users SET totp_pending = $2, "
						"totp_pending_at = $3 WHERE id = $1",
						3, q));
		}
		free(sealed);
		x->expires_in = PENDING_TTL;
	}
	if (!rc)
		rc = srv_audit(c, x->r, "user.totp_enrolment_started", "user", uid, x->email,
			       "update", NULL);
	return rc;
}

void h_totp_start(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct totp_ctx x = {.r = r, .s = s};
	const char *fmt = srv_query(r, "format");
	char issuer[768], account[768], *uri = NULL;
	struct sg_db_conn *c = sg_db_acquire(s->db);
	int rc = srv_tx(s, c, start_tx, &x, false);

	if (rc > 0) {
		srv_error(out, x.status, x.field, "%s", x.msg);
		goto out;
	}
	if (rc) {
		srv_dberr(out, c, rc);
		goto out;
	}
	/* Key Uri Format (the otpauth scheme every authenticator app reads): label
	 * "issuer:account", the issuer again as a parameter, the RFC 6238 defaults spelled out. */
	pct(issuer, sizeof(issuer), x.issuer);
	pct(account, sizeof(account), x.email);
	if (asprintf(&uri,
		     "otpauth://totp/%s:%s?secret=%s&issuer=%s&algorithm=SHA1&digits=6&period=%d",
		     issuer, account, x.b32, issuer, SRV_TOTP_PERIOD) < 0) {
		uri = NULL;
		srv_error(out, 503, NULL, "out of memory");
		goto out;
	}
	if (fmt && !strcmp(fmt, "qr")) {
		size_t len;
		uint8_t *png = srv_qr_png(uri, &len);

		if (!png) {
			srv_error(out, 500, NULL, "QR code generation failed");
			goto out;
		}
		srv_body(out, 200, "image/png", png, len, NULL);
		free(png);
	} else {
		srv_json(out, 200,
			 json_pack("{s:s,s:s,s:s,s:i,s:i,s:I}", "secret", x.b32, "otpauth_uri", uri,
				   "algorithm", "SHA1", "digits", 6, "period", SRV_TOTP_PERIOD,
				   "expires_in", (json_int_t)x.expires_in));
	}
out:
	if (uri)
		sg_memzero(uri, strlen(uri));
	free(uri);
	sg_memzero(x.b32, sizeof(x.b32));
	sg_db_release(c);
}

static int confirm_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct totp_ctx *x = ctx;
	struct sg_db_res *res = NULL;
	const char *uid = x->r->who.user_id;
	const char *p[] = {uid};
	uint8_t key[SRV_TOTP_KEY_LEN];
	char now[24], step_s[24], email[256];
	int64_t t = srv_now();
	uint64_t step = 0;
	bool opened;
	int rc;

	rc = sg_db_query(c, &res,
			 "SELECT email, CASE WHEN totp_secret IS NULL THEN 0 ELSE 1 END, totp_pending, "
			 "totp_pending_at FROM "
			 "admin_users WHERE id = $1",
			 1, p);
	if (rc < 0)
		return rc;
	if (rc != 1) {
		sg_db_res_free(res);
		return refuse(x, 404, NULL, "no such user");
	}
	snprintf(email, sizeof(email), "%s", sg_db_res_get(res, 0, 0));
	if (srv_res_i64(res, 0, 1)) {
		sg_db_res_free(res);
		return refuse(x, 409, NULL, "two-factor authentication is already on");
	}
	if (!sg_db_res_get(res, 0, 2) || srv_res_i64(res, 0, 3) <= t - PENDING_TTL) {
		sg_db_res_free(res);
		return refuse(x, 409, NULL,
			      "no enrolment pending (or it is older than 10 minutes): start with "
			      "POST /api/auth/totp");
	}
	opened = open_key(s, sg_db_res_get(res, 0, 2), uid, key);
	sg_db_res_free(res);
	if (!opened)
		return refuse(x, 409, NULL,
			      "the pending secret does not open with this server's key: start "
			      "again with POST /api/auth/totp");
	if (is_totp_code(x->code))
		step = srv_totp_match(key, sizeof(key), x->code, t, 0);
	sg_memzero(key, sizeof(key));
	if (!step) {
		x->wrong = true;
		return refuse(x, 400, "code",
			      "wrong code: enter the 6 digits the app shows now (check the "
			      "device's clock if it keeps failing)");
	}
	{
		const char *q[] = {uid, srv_i64(step_s, (int64_t)step)};

		rc = srv_neg(sg_db_exec(c,
					"UPDATE admin_users SET totp_secret = totp_pending, "
					"totp_pending = NULL, totp_pending_at = NULL, "
					"totp_last_step = $2 WHERE id = $1",
					2, q));
	}
	if (!rc)
		rc = srv_neg(sg_db_exec(c, "DELETE FROM recovery_codes WHERE user_id = $1", 1, p));
	for (int i = 0; !rc && i < SRV_RECOVERY_CODES; i++) {
		char h[97];
		const char *q[] = {uid, h, srv_i64(now, t)};

		if (!srv_recovery_code(x->codes[i]))
			return SG_ECRYPTO;
		recovery_hash(h, uid, x->codes[i]);
		rc = srv_neg(sg_db_exec(c,
					"INSERT INTO recovery_codes (user_id, code_hash, used_at, "
					"created_at) VALUES ($1, $2, NULL, $3)",
					3, q));
	}
	if (!rc)
		rc = srv_audit(c, x->r, "user.totp_enabled", "user", uid, email, "update", NULL);
	return rc;
}

void h_totp_confirm(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct totp_ctx x = {.r = r, .s = s, .code = jstr(r->json, "code")};
	struct sg_db_conn *c;
	int rc;

	if (!attempt(s, r, out))
		return;
	c = sg_db_acquire(s->db);
	rc = srv_tx(s, c, confirm_tx, &x, false);
	if (rc > 0) {
		srv_error(out, x.status, x.field, "%s", x.msg);
	} else if (rc) {
		srv_dberr(out, c, rc);
	} else {
		json_t *a = json_array();

		srv_ip_refund(s, r->source_ip);
		for (int i = 0; i < SRV_RECOVERY_CODES; i++)
			json_array_append_new(a, json_string(x.codes[i]));
		srv_json(out, 200, json_pack("{s:o}", "recovery_codes", a));
	}
	sg_memzero(x.codes, sizeof(x.codes));
	sg_db_release(c);
}

/* ---- removal -------------------------------------------------------------------------------- */

static int clear_totp(struct sg_db_conn *c, const char *uid)
{
	const char *p[] = {uid};
	int rc;

	rc = srv_neg(sg_db_exec(c,
				"UPDATE admin_users SET totp_secret = NULL, totp_pending = NULL, "
				"totp_pending_at = NULL, totp_last_step = 0 WHERE id = $1",
				1, p));
	if (!rc)
		rc = srv_neg(sg_db_exec(c, "DELETE FROM recovery_codes WHERE user_id = $1", 1, p));
	if (!rc)
		rc = srv_neg(sg_db_exec(c, "DELETE FROM mfa_tokens WHERE user_id = $1", 1, p));
	return rc;
}

static int delete_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct totp_ctx *x = ctx;
	struct sg_db_res *res = NULL;
	const char *uid = x->r->who.user_id;
	const char *p[] = {uid};
	struct factor f;
	bool good;
	int rc;

	rc = sg_db_query(c, &res,
			 "SELECT email, totp_secret, totp_last_step FROM admin_users WHERE id = $1",
			 1, p);
	if (rc < 0)
		return rc;
	if (rc != 1 || !sg_db_res_get(res, 0, 1)) {
		sg_db_res_free(res);
		return refuse(x, 409, NULL, "two-factor authentication is not on");
	}
	snprintf(x->email, sizeof(x->email), "%s", sg_db_res_get(res, 0, 0));
	good = factor_read(s, uid, sg_db_res_get(res, 0, 1), srv_res_i64(res, 0, 2), x->code, &f);
	sg_db_res_free(res);
	if (good) {
		rc = factor_spend(c, x->r, uid, x->email, &f);
		if (rc < 0)
			return rc;
		good = rc == 1;
	}
	sg_memzero(&f, sizeof(f));
	if (!good) {
		x->wrong = true;
		return refuse(x, 400, "code", "wrong code");
	}
	rc = clear_totp(c, uid);
	if (!rc)
		rc = srv_audit(c, x->r, "user.totp_disabled", "user", uid, x->email, "update",
			       NULL);
	return rc;
}

void h_totp_delete(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct totp_ctx x = {.r = r, .s = s, .code = jstr(r->json, "code")};
	struct sg_db_conn *c;
	int rc;

	if (!attempt(s, r, out))
		return;
	c = sg_db_acquire(s->db);
	rc = srv_tx(s, c, delete_tx, &x, false);
	if (rc > 0) {
		/* Someone holding a session without the device guesses codes to turn it off:
		 * counted like a wrong password from this source. */
		if (x.wrong)
			srv_login_failed(s, r, c, r->who.user_id, x.email, "bad_code");
		srv_error(out, x.status, x.field, "%s", x.msg);
	} else if (rc) {
		srv_dberr(out, c, rc);
	} else {
		srv_ip_refund(s, r->source_ip);
		srv_body(out, 204, "application/json", "", 0, NULL);
	}
	sg_db_release(c);
}

static int reset_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct totp_ctx *x = ctx;
	struct sg_db_res *res = NULL;
	const char *uid = x->r->params[0];
	const char *p[] = {uid};
	int rc;

	(void)s;
	rc = sg_db_query(c, &res,
			 "SELECT email, CASE WHEN totp_secret IS NULL AND totp_pending IS NULL THEN 0 ELSE 1 "
			 "END FROM "
			 "admin_users WHERE id = $1",
			 1, p);
	if (rc < 0)
		return rc;
	if (rc != 1) {
		sg_db_res_free(res);
		return refuse(x, 404, NULL, "no such user");
	}
	snprintf(x->email, sizeof(x->email), "%s", sg_db_res_get(res, 0, 0));
	if (!srv_res_i64(res, 0, 1)) {
		sg_db_res_free(res);
		return refuse(x, 409, NULL, "this user has no second factor");
	}
	sg_db_res_free(res);
	rc = clear_totp(c, uid);
	/* Whoever holds the lost device may hold a session too: every token of the user ends
	 * (docs/SERVER.md, "Revocation"). */
	if (!rc)
		rc = srv_bump_token_gen(c, uid);
	if (!rc)
		rc = srv_neg(sg_db_exec(c, "UPDATE refresh_tokens SET revoked = 1 WHERE user_id = $1",
					1, p));
	if (!rc)
		rc = srv_audit(c, x->r, "user.totp_reset", "user", uid, x->email, "update",
			       NULL);
	return rc;
}

void h_users_totp_reset(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct totp_ctx x = {.r = r, .s = s};
	struct sg_db_conn *c;
	int rc;

	if (!strcmp(r->params[0], r->who.user_id)) {
		srv_error(out, 409, NULL,
			  "your own second factor is turned off with a code: DELETE /api/auth/totp");
		return;
	}
	c = sg_db_acquire(s->db);
	rc = srv_tx(s, c, reset_tx, &x, false);
	if (rc > 0)
		srv_error(out, x.status, x.field, "%s", x.msg);
	else if (rc)
		srv_dberr(out, c, rc);
	else
		srv_body(out, 204, "application/json", "", 0, NULL);
	sg_db_release(c);
}
