/* Passkeys (WebAuthn Level 3) for admin logins (docs/SERVER.md "Passkeys"): as the second step
 * after a password, as a login without a password, and as the second factor an instance that
 * requires one accepts.
 *
 *   POST   /api/auth/passkeys/options        registration options with a fresh challenge
 *   POST   /api/auth/passkeys                the authenticator's answer: the passkey is added
 *   GET    /api/auth/passkeys                the caller's passkeys
 *   PUT    /api/auth/passkeys/{id}           rename one
 *   DELETE /api/auth/passkeys/{id}           remove one
 *   DELETE /api/users/{id}/passkeys          a super_admin removes every passkey of a user
 *   POST   /api/auth/login/passkey/options   login options (with an mfa_token: that account's
 *                                            passkeys; without: any discoverable one)
 *   POST   /api/auth/login/passkey           the assertion: the usual tokens
 *
 * The relying party is --public-url: its host is the rpId, its origin the only origin
 * accepted (wa_relying_party). A challenge is 32 random bytes, stored by its hash with what it
 * is for (registration, second step, login without a password), the user it is bound to and
 * an expiry; it is deleted when an answer comes back, whatever the outcome, so it is good for
 * one try. Signatures are verified through src/crypto (ECDSA P-256 and P-384, the FIPS
 * boundary). Wrong assertions count toward the per-address limit and the per-(account, source)
 * lockout as wrong passwords do. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "crypto/crypto.h"
#include "secureguard/sg_errors.h"
#include "server/srv_int.h"
#include "server/webauthn.h"

#define CHALLENGE_TTL	 300 /* seconds to answer: browsers' default ceremony timeout */
#define MAX_PASSKEYS	 20  /* per user */
#define MAX_ANON_PENDING 10000 /* login challenges without an account, all sources together */

#define PK_COLS                                                                                    \
	"id, name, CASE WHEN alg = -7 THEN 'ES256' ELSE 'ES384' END AS algorithm, "                \
	"credential_id, aaguid, backup_eligible, backed_up, user_verified, sign_count, "           \
	"created_at, last_used_at"
#define PK_KINDS "sssssbbbiii"

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static bool relying_party(const struct srv *s, struct srv_resp *out, char origin[256],
			  char rp_id[256])
{
	const char *why;

	if (wa_relying_party(s->base_url, origin, rp_id, &why))
		return true;
	srv_error(out, 409, NULL, "%s", why);
	return false;
}

/* Every answer checked counts toward the per-address limit (refunded when it was right). */
static bool attempt(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	if (srv_ip_attempt(s, r->source_ip))
		return true;
	srv_log_limited(SG_LOG_WARN, "login_rate_limited", "src=%s", r->source_ip);
	srv_error(out, 429, NULL, "too many failed attempts from this address; retry later");
	srv_retry_after(out, srv_ip_retry_secs(s, r->source_ip));
	return false;
}

/* A base64url field of the credential into buf; false with a 400 naming it. */
static bool field_b64(struct srv_resp *out, json_t *obj, const char *name, const char *path,
		      uint8_t *buf, size_t cap, size_t *len, bool required)
{
	const char *v = jstr(obj, name);
	int n;

	*len = 0;
	if (!v) {
		if (required)
			srv_error(out, 400, path, "missing");
		return !required;
	}
	n = srv_b64url_decode(buf, cap, v, strlen(v));
	if (n <= 0) {
		srv_error(out, 400, path, "not base64url (RFC 4648 section 5, no padding) of 1..%zu bytes",
			  cap);
		return false;
	}
	*len = (size_t)n;
	return true;
}

static bool sha256(uint8_t out[32], const void *p, size_t n)
{
	struct sg_iov iov = {p, n};

	return sg_sha256(out, &iov, 1);
}

/* ECDSA of authData || SHA-256(clientDataJSON) (section 6.3.3 step 11, 7.2 step 20). */
static bool verify_sig(const struct wa_cose_key *k, const uint8_t *sig, size_t siglen,
		       const uint8_t *ad, size_t adlen, const uint8_t cdhash[32])
{
	uint8_t *msg = malloc(adlen + 32);
	bool ok;

	if (!msg)
		return false;
	memcpy(msg, ad, adlen);
	memcpy(msg + adlen, cdhash, 32);
	ok = sg_ecdsa_verify_der(k->x, k->y, k->coord_len, sig, siglen, msg, adlen + 32);
	free(msg);
	return ok;
}

/* ---- challenges ------------------------------------------------------------------------------- */

struct chal_ctx {
	struct srv_req *r;
	const char *purpose, *uid, *mfa_hash;
	char hash[97];
	bool full;
};

static int chal_new_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct chal_ctx *x = ctx;
	char now[24], exp[24], source[64], max[24];
	int64_t t = srv_now();
	const char *p[] = {x->hash, x->purpose, x->uid, x->mfa_hash, source,
			   srv_i64(exp, t + CHALLENGE_TTL), srv_i64(now, t)};
	int rc;

	(void)s;
	srv_ip_source(source, x->r->source_ip);
	/* Expired ones go with each new one: the table holds only the last few minutes. */
	rc = srv_neg(sg_db_exec(c, "DELETE FROM webauthn_challenges WHERE expires_at <= $1", 1,
				p + 6));
	if (!rc && !x->uid) {
		struct sg_db_res *res = NULL;
		const char *q[] = {p[6], srv_i64(max, MAX_ANON_PENDING)};

		/* Anyone may ask for login options: their number is bounded (and each source's
		 * rate, SRV_RATE_TOKEN). */
		rc = sg_db_query(c, &res,
				 "SELECT CASE WHEN COUNT(*) >= $2 THEN 1 ELSE 0 END FROM "
				 "webauthn_challenges WHERE user_id IS NULL AND expires_at > $1",
				 2, q);
		x->full = rc == 1 && srv_res_i64(res, 0, 0);
		sg_db_res_free(res);
		if (rc < 0)
			return rc;
		if (x->full)
			return 1;
		rc = 0;
	}
	if (!rc)
		rc = srv_neg(sg_db_exec(c,
					"INSERT INTO webauthn_challenges (challenge_hash, purpose, "
					"user_id, mfa_token_hash, source, expires_at, created_at) "
					"VALUES ($1, $2, $3, $4, $5, $6, $7)",
					7, p));
	return rc;
}

/* A new challenge for purpose ("register", "mfa", "login"), bound to uid and mfa_hash (may be
 * NULL); b64 gets its base64url. 0, 1 when too many are pending, or a database error. */
static int chal_new(struct srv *s, struct srv_req *r, struct sg_db_conn *c, const char *purpose,
		    const char *uid, const char *mfa_hash, char b64[64])
{
	uint8_t ch[WA_CHALLENGE_LEN];
	struct chal_ctx x = {.r = r, .purpose = purpose, .uid = uid, .mfa_hash = mfa_hash};

	if (!sg_random_bytes(ch, sizeof(ch)))
		return SG_ECRYPTO;
	srv_b64url(b64, ch, sizeof(ch));
	srv_token_hash(x.hash, b64);
	return srv_tx(s, c, chal_new_tx, &x, false);
}

struct chal_take {
	char hash[97];
	char purpose[16], uid[SRV_ID_LEN + 1], mfa_hash[97];
	bool found;
};

static int chal_take_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct chal_take *x = ctx;
	struct sg_db_res *res = NULL;
	char now[24];
	const char *p[] = {x->hash, srv_i64(now, srv_now())};
	int rc;

	(void)s;
	x->found = false;
	rc = sg_db_query(c, &res,
			 "SELECT purpose, user_id, mfa_token_hash FROM webauthn_challenges WHERE "
			 "challenge_hash = $1 AND expires_at > $2",
			 2, p);
	if (rc < 0)
		return rc;
	if (rc == 1) {
		snprintf(x->purpose, sizeof(x->purpose), "%s", sg_db_res_get(res, 0, 0));
		snprintf(x->uid, sizeof(x->uid), "%s", sg_db_res_get(res, 0, 1) ?: "");
		snprintf(x->mfa_hash, sizeof(x->mfa_hash), "%s", sg_db_res_get(res, 0, 2) ?: "");
	}
	sg_db_res_free(res);
	/* Single use: of two answers with one challenge, one deletes it. */
	rc = sg_db_exec(c, "DELETE FROM webauthn_challenges WHERE challenge_hash = $1", 1, p);
	if (rc < 0)
		return rc;
	x->found = rc == 1 && x->purpose[0];
	return 0;
}

/* The challenge of a client data (decoded), spent; false when it was not ours, used or
 * expired. */
static int chal_take(struct srv *s, struct sg_db_conn *c, const uint8_t ch[WA_CHALLENGE_LEN],
		     struct chal_take *x)
{
	char b64[64];

	memset(x, 0, sizeof(*x));
	srv_b64url(b64, ch, WA_CHALLENGE_LEN);
	srv_token_hash(x->hash, b64);
	return srv_tx(s, c, chal_take_tx, x, false);
}

/* ---- registration ----------------------------------------------------------------------------- */

struct reg_ctx {
	struct srv_req *r;
	const char *uid;
	char email[256];
	int status;
	char msg[160];
	/* options */
	json_t *exclude;
	int count;
};

static int reg_options_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct reg_ctx *x = ctx;
	struct sg_db_res *res = NULL;
	const char *p[] = {x->uid};
	int rc;

	(void)s;
	rc = sg_db_query(c, &res, "SELECT email FROM admin_users WHERE id = $1", 1, p);
	if (rc < 0)
		return rc;
	if (rc != 1) {
		sg_db_res_free(res);
		x->status = 404;
		snprintf(x->msg, sizeof(x->msg), "no such user");
		return 1;
	}
	snprintf(x->email, sizeof(x->email), "%s", sg_db_res_get(res, 0, 0));
	sg_db_res_free(res);
	res = NULL;
	rc = sg_db_query(c, &res,
			 "SELECT credential_id, transports FROM passkeys WHERE user_id = $1 "
			 "ORDER BY created_at",
			 1, p);
	if (rc < 0)
		return rc;
	x->count = rc;
	json_array_clear(x->exclude);
	for (int i = 0; i < rc; i++)
		json_array_append_new(x->exclude, json_pack("{s:s,s:s}", "type", "public-key", "id",
							    sg_db_res_get(res, i, 0)));
	sg_db_res_free(res);
	if (x->count >= MAX_PASSKEYS) {
		x->status = 409;
		snprintf(x->msg, sizeof(x->msg), "%d passkeys is the most an account may have: remove one first",
			 MAX_PASSKEYS);
		return 1;
	}
	return srv_audit(c, x->r, "user.passkey_registration_started", "user", x->uid, x->email,
			 "update", NULL);
}

void h_passkey_reg_options(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	char origin[256], rp_id[256], ch[64], handle[64], instance[128] = "SecureGuard";
	struct reg_ctx x = {.r = r, .uid = r->who.user_id, .exclude = json_array()};
	struct sg_db_conn *c;
	struct sg_db_res *res = NULL;
	int rc;

	if (!relying_party(s, out, origin, rp_id))
		goto out0;
	c = sg_db_acquire(s->db);
	rc = srv_tx(s, c, reg_options_tx, &x, false);
	if (rc > 0) {
		srv_error(out, x.status, NULL, "%s", x.msg);
		goto out;
	}
	if (!rc)
		rc = chal_new(s, r, c, "register", x.uid, NULL, ch);
	if (rc) {
		srv_dberr(out, c, rc);
		goto out;
	}
	if (sg_db_query(c, &res, "SELECT instance_name FROM settings WHERE id = 1", 0, NULL) == 1 &&
	    sg_db_res_get(res, 0, 0))
		snprintf(instance, sizeof(instance), "%s", sg_db_res_get(res, 0, 0));
	/* The user handle is the account's id (no personal data, section 14.6.1). */
	srv_b64url(handle, (const uint8_t *)x.uid, strlen(x.uid));
	/* PublicKeyCredentialCreationOptionsJSON (section 5.1.3.1): binary values in base64url. */
	srv_json(out, 200,
		 json_pack("{s:s,s:{s:s,s:s},s:{s:s,s:s,s:s},s:[{s:s,s:i},{s:s,s:i}],s:i,s:O,"
			   "s:{s:s,s:b,s:s},s:s}",
			   "challenge", ch, "rp", "id", rp_id, "name", instance, "user", "id", handle,
			   "name", x.email, "displayName", x.email, "pubKeyCredParams", "type",
			   "public-key", "alg", WA_ES256, "type", "public-key", "alg", WA_ES384,
			   "timeout", CHALLENGE_TTL * 1000, "excludeCredentials", x.exclude,
			   "authenticatorSelection", "residentKey", "preferred",
			   "requireResidentKey", 0, "userVerification", "preferred", "attestation",
			   "none"));
out:
	sg_db_res_free(res);
	sg_db_release(c);
out0:
	json_decref(x.exclude);
}

/* The account's e-mail and number of passkeys, in the caller's transaction: 0, 1 when there is
 * no such account, or a database error. */
static int account(struct sg_db_conn *c, const char *uid, char email[256], int64_t *n)
{
	struct sg_db_res *res = NULL;
	const char *p[] = {uid};
	int rc = sg_db_query(c, &res,
			     "SELECT email, (SELECT COUNT(*) FROM passkeys WHERE user_id = $1) FROM "
			     "admin_users WHERE id = $1",
			     1, p);

	if (rc == 1) {
		snprintf(email, 256, "%s", sg_db_res_get(res, 0, 0));
		*n = srv_res_i64(res, 0, 1);
	}
	sg_db_res_free(res);
	return rc < 0 ? rc : rc != 1;
}

struct add_ctx {
	struct srv_req *r;
	const char *uid, *name, *cred_b64, *transports, *fmt;
	const struct wa_auth_data *ad;
	char id[SRV_ID_LEN + 1], email[256];
	int status;
	const char *msg;
};

static int add_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct add_ctx *x = ctx;
	struct sg_db_res *res = NULL;
	char now[24], alg[8], cnt[24], aaguid[33], *cose = NULL;
	int64_t n = 0;
	json_t *d;
	int rc;

	(void)s;
	rc = account(c, x->uid, x->email, &n);
	if (rc > 0) {
		x->status = 404;
		x->msg = "no such user";
	}
	if (rc)
		return rc;
	if (n >= MAX_PASSKEYS) {
		x->status = 409;
		x->msg = "20 passkeys is the most an account may have: remove one first";
		return 1;
	}
	{
		const char *q[] = {x->cred_b64};

		rc = sg_db_query(c, &res, "SELECT 1 FROM passkeys WHERE credential_id = $1", 1, q);
		sg_db_res_free(res);
		if (rc < 0)
			return rc;
		if (rc > 0) {
			x->status = 409;
			x->msg = "this passkey is registered already";
			return 1;
		}
	}
	cose = malloc(4 * (x->ad->cose_len / 3 + 2));
	if (!cose)
		return SG_ENOMEM;
	srv_b64url(cose, x->ad->cose, x->ad->cose_len);
	srv_hex(aaguid, x->ad->aaguid, 16);
	srv_uuid(x->id);
	snprintf(alg, sizeof(alg), "%d", x->ad->key.alg);
	{
		const char *q[] = {x->id,
				   x->uid,
				   x->cred_b64,
				   cose,
				   alg,
				   srv_i64(cnt, x->ad->sign_count),
				   x->name,
				   aaguid,
				   (x->ad->flags & WA_BE) ? "1" : "0",
				   (x->ad->flags & WA_BS) ? "1" : "0",
				   (x->ad->flags & WA_UV) ? "1" : "0",
				   x->transports,
				   srv_i64(now, srv_now())};

		/* credential_id is UNIQUE: a race that passed the check above fails here. */
		rc = srv_neg(sg_db_exec(c,
					"INSERT INTO passkeys (id, user_id, credential_id, public_key, "
					"alg, sign_count, name, aaguid, backup_eligible, backed_up, "
					"user_verified, transports, created_at) VALUES ($1, $2, $3, "
					"$4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
					13, q));
	}
	free(cose);
	if (rc == SG_EEXIST) {
		x->status = 409;
		x->msg = "this passkey is registered already";
		return 1;
	}
	if (rc)
		return rc;
	d = json_pack("{s:s,s:s,s:s,s:s,s:b,s:b}", "passkey_id", x->id, "name", x->name,
		      "algorithm", x->ad->key.alg == WA_ES256 ? "ES256" : "ES384", "attestation",
		      x->fmt, "user_verified", (x->ad->flags & WA_UV) != 0, "backup_eligible",
		      (x->ad->flags & WA_BE) != 0);
	rc = srv_audit(c, x->r, "user.passkey_added", "user", x->uid, x->email, "update", d);
	json_decref(d);
	return rc;
}

/* A refused registration, audited with its reason (never the data itself). */
struct refused_ctx {
	struct srv_req *r;
	const char *why;
};

static int refused_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct refused_ctx *x = ctx;
	json_t *d = json_pack("{s:s}", "reason", x->why);
	int rc;

	(void)s;
	rc = srv_audit(c, x->r, "user.passkey_refused", "user", x->r->who.user_id, x->r->who.name,
		       "update", d);
	json_decref(d);
	return rc;
}

static void reg_refused(struct srv *s, struct srv_req *r, struct sg_db_conn *c, const char *why)
{
	struct refused_ctx x = {r, why};

	if (srv_tx(s, c, refused_tx, &x, false))
		srv_log(SG_LOG_ERROR, "passkey_refusal_not_recorded", "user=%s", r->who.user_id);
}

static const char *const transports_ok[] = {"usb",	  "nfc",      "ble",   "smart-card",
					    "hybrid", "internal", "cable", NULL};

void h_passkey_register(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	json_t *cred = json_object_get(r->json, "credential"), *resp;
	const char *name = jstr(r->json, "name"), *cred_id;
	char origin[256], rp_id[256], why[WA_WHY_LEN], field[64] = "", transports[128] = "";
	uint8_t cd[WA_MAX_CLIENT_DATA], *att = NULL, ch[WA_CHALLENGE_LEN], h[32], cdhash[32];
	size_t cdlen, attlen;
	struct wa_attestation *a = NULL;
	struct wa_auth_data *ad = NULL;
	struct chal_take tk;
	struct add_ctx x = {.r = r, .uid = r->who.user_id};
	struct sg_db_conn *c = NULL;
	json_t *tr, *j;
	int rc;

	resp = json_object_get(cred, "response");
	cred_id = jstr(cred, "id");
	if (!relying_party(s, out, origin, rp_id) || !attempt(s, r, out))
		return;
	att = malloc(WA_MAX_ATT_OBJECT);
	a = malloc(sizeof(*a));
	ad = malloc(sizeof(*ad));
	if (!att || !a || !ad) {
		srv_error(out, 503, NULL, "out of memory");
		goto out;
	}
	if (!field_b64(out, resp, "clientDataJSON", "credential.response.clientDataJSON", cd,
		       sizeof(cd), &cdlen, true) ||
	    !field_b64(out, resp, "attestationObject", "credential.response.attestationObject",
		       att, WA_MAX_ATT_OBJECT, &attlen, true))
		goto out;
	json_array_foreach(json_object_get(resp, "transports"), rc, tr)
	{
		const char *t = json_string_value(tr);
		bool ok = false;

		for (int i = 0; t && transports_ok[i]; i++)
			ok |= !strcmp(t, transports_ok[i]);
		if (ok && strlen(transports) + strlen(t) + 2 < sizeof(transports) &&
		    !strstr(transports, t))
			snprintf(transports + strlen(transports),
				 sizeof(transports) - strlen(transports), "%s%s",
				 transports[0] ? "," : "", t);
	}
	c = sg_db_acquire(s->db);
	if (wa_client_data_parse(cd, cdlen, "webauthn.create", origin, ch, why, sizeof(why))) {
		snprintf(field, sizeof(field), "credential.response.clientDataJSON");
		goto refused;
	}
	rc = chal_take(s, c, ch, &tk);
	if (rc) {
		srv_dberr(out, c, rc);
		goto out;
	}
	if (!tk.found || strcmp(tk.purpose, "register") || strcmp(tk.uid, x.uid)) {
		snprintf(why, sizeof(why),
			 "clientDataJSON: the challenge is not one this server gave you for a "
			 "registration, or it was used or expired: ask for new options");
		snprintf(field, sizeof(field), "credential.response.clientDataJSON");
		goto refused;
	}
	snprintf(field, sizeof(field), "credential.response.attestationObject");
	if (wa_attestation_parse(att, attlen, a, why, sizeof(why)) ||
	    wa_auth_data_parse(a->auth_data, a->auth_data_len, true, ad, why, sizeof(why)))
		goto refused;
	if (!sha256(h, rp_id, strlen(rp_id)) || !sg_memeq(h, ad->rp_id_hash, 32)) {
		snprintf(why, sizeof(why),
			 "authenticatorData: rpIdHash is not SHA-256 of this server's rpId \"%.120s\"",
			 rp_id);
		goto refused;
	}
	if (!(ad->flags & WA_UP)) {
		snprintf(why, sizeof(why), "authenticatorData: the user was not present (flag UP)");
		goto refused;
	}
	if ((ad->flags & WA_BS) && !(ad->flags & WA_BE)) {
		snprintf(why, sizeof(why),
			 "authenticatorData: flag BS (backed up) without BE (backup eligible)");
		goto refused;
	}
	{
		char *want = malloc(4 * (ad->cred_id_len / 3 + 2));

		if (want)
			srv_b64url(want, ad->cred_id, ad->cred_id_len);
		rc = want && cred_id && !strcmp(want, cred_id);
		free(want);
		if (!rc) {
			snprintf(field, sizeof(field), "credential.id");
			snprintf(why, sizeof(why),
				 "credential.id is not the credential id of the authenticator data");
			goto refused;
		}
	}
	if (!sha256(cdhash, cd, cdlen)) {
		srv_error(out, 500, NULL, "SHA-256 failed");
		goto out;
	}
	if (a->self_signed) {
		if (a->alg != ad->key.alg) {
			snprintf(why, sizeof(why),
				 "attestationObject: packed self-attestation alg %lld is not the "
				 "credential's %d",
				 (long long)a->alg, ad->key.alg);
			goto refused;
		}
		if (!verify_sig(&ad->key, a->sig, a->sig_len, a->auth_data, a->auth_data_len,
				cdhash)) {
			snprintf(why, sizeof(why),
				 "attestationObject: the self-attestation signature does not verify");
			goto refused;
		}
	}
	x.name = name ? name : "Passkey";
	x.cred_b64 = cred_id;
	x.transports = transports;
	x.fmt = a->fmt;
	x.ad = ad;
	rc = srv_tx(s, c, add_tx, &x, false);
	if (rc > 0) {
		srv_error(out, x.status, x.status == 409 ? "credential" : NULL, "%s", x.msg);
		goto out;
	}
	if (rc) {
		srv_dberr(out, c, rc);
		goto out;
	}
	srv_ip_refund(s, r->source_ip);
	j = srv_row_get(c, "SELECT " PK_COLS " FROM passkeys WHERE id = $1", x.id, PK_KINDS);
	if (j)
		srv_json(out, 201, j);
	else
		srv_error(out, 500, NULL, "the passkey was added but could not be read back");
	goto out;
refused:
	reg_refused(s, r, c, why);
	srv_error(out, 400, field, "%s", why);
out:
	free(att);
	free(a);
	free(ad);
	sg_db_release(c);
}

/* ---- the caller's passkeys -------------------------------------------------------------------- */

void h_passkeys_list(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	const char *p[3] = {r->who.user_id};

	srv_list_page(s, out, "passkeys", PK_COLS, PK_KINDS, " AND user_id = $1", "created_at, id",
		      p, 1, srv_limit(r), srv_offset(r));
}

struct pk_ctx {
	struct srv_req *r;
	const char *id, *name;
	bool gone;
};

static int rename_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct pk_ctx *x = ctx;
	const char *p[] = {x->id, x->r->who.user_id, x->name};
	json_t *d;
	int rc;

	(void)s;
	rc = sg_db_exec(c, "UPDATE passkeys SET name = $3 WHERE id = $1 AND user_id = $2", 3, p);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		x->gone = true;
		return 1;
	}
	d = json_pack("{s:s,s:s}", "passkey_id", x->id, "name", x->name);
	rc = srv_audit(c, x->r, "user.passkey_renamed", "user", x->r->who.user_id, x->r->who.name,
		       "update", d);
	json_decref(d);
	return rc;
}

void h_passkey_rename(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct pk_ctx x = {.r = r, .id = r->params[0], .name = jstr(r->json, "name")};
	struct sg_db_conn *c = sg_db_acquire(s->db);
	int rc = srv_tx(s, c, rename_tx, &x, false);
	json_t *j;

	if (x.gone) {
		srv_error(out, 404, NULL, "no such passkey of yours");
	} else if (rc) {
		srv_dberr(out, c, rc);
	} else if ((j = srv_row_get(c, "SELECT " PK_COLS " FROM passkeys WHERE id = $1", x.id,
				    PK_KINDS))) {
		srv_json(out, 200, j);
	} else {
		srv_error(out, 404, NULL, "no such passkey of yours");
	}
	sg_db_release(c);
}

static int delete_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct pk_ctx *x = ctx;
	struct sg_db_res *res = NULL;
	const char *p[] = {x->id, x->r->who.user_id};
	json_t *d;
	int rc;

	(void)s;
	rc = sg_db_query(c, &res, "SELECT name FROM passkeys WHERE id = $1 AND user_id = $2", 2, p);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		sg_db_res_free(res);
		x->gone = true;
		return 1;
	}
	d = json_pack("{s:s,s:s}", "passkey_id", x->id, "name", sg_db_res_get(res, 0, 0));
	sg_db_res_free(res);
	rc = srv_neg(sg_db_exec(c, "DELETE FROM passkeys WHERE id = $1 AND user_id = $2", 2, p));
	if (!rc)
		rc = srv_audit(c, x->r, "user.passkey_removed", "user", x->r->who.user_id,
			       x->r->who.name, "update", d);
	json_decref(d);
	return rc;
}

void h_passkey_delete(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct pk_ctx x = {.r = r, .id = r->params[0]};
	struct sg_db_conn *c = sg_db_acquire(s->db);
	int rc = srv_tx(s, c, delete_tx, &x, false);

	if (x.gone)
		srv_error(out, 404, NULL, "no such passkey of yours");
	else if (rc)
		srv_dberr(out, c, rc);
	else
		srv_body(out, 204, "application/json", "", 0, NULL);
	sg_db_release(c);
}

/* A super_admin removes every passkey of another user (a lost or stolen authenticator): like
 * DELETE /api/users/{id}/totp, every session of the user ends too. */
struct reset_ctx {
	struct srv_req *r;
	int status;
	const char *msg;
};

static int reset_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct reset_ctx *x = ctx;
	const char *uid = x->r->params[0];
	const char *p[] = {uid};
	char email[256];
	int64_t n = 0;
	json_t *d;
	int rc;

	(void)s;
	rc = account(c, uid, email, &n);
	if (rc > 0) {
		x->status = 404;
		x->msg = "no such user";
	}
	if (rc)
		return rc;
	if (!n) {
		x->status = 409;
		x->msg = "this user has no passkey";
		return 1;
	}
	rc = srv_neg(sg_db_exec(c, "DELETE FROM passkeys WHERE user_id = $1", 1, p));
	if (!rc)
		rc = srv_neg(sg_db_exec(c, "DELETE FROM webauthn_challenges WHERE user_id = $1", 1, p));
	if (!rc)
		rc = srv_bump_token_gen(c, uid);
	if (!rc)
		rc = srv_neg(sg_db_exec(c, "UPDATE refresh_tokens SET revoked = 1 WHERE user_id = $1",
					1, p));
	d = json_pack("{s:I}", "passkeys_removed", (json_int_t)n);
	if (!rc)
		rc = srv_audit(c, x->r, "user.passkeys_reset", "user", uid, email, "update", d);
	json_decref(d);
	return rc;
}

void h_users_passkeys_reset(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	struct reset_ctx x = {.r = r};
	struct sg_db_conn *c;
	int rc;

	if (!strcmp(r->params[0], r->who.user_id)) {
		srv_error(out, 409, NULL,
			  "your own passkeys are removed one by one: DELETE /api/auth/passkeys/{id}");
		return;
	}
	c = sg_db_acquire(s->db);
	rc = srv_tx(s, c, reset_tx, &x, false);
	if (rc > 0)
		srv_error(out, x.status, NULL, "%s", x.msg);
	else if (rc)
		srv_dberr(out, c, rc);
	else
		srv_body(out, 204, "application/json", "", 0, NULL);
	sg_db_release(c);
}

/* ---- login ------------------------------------------------------------------------------------ */

void h_passkey_login_options(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	const char *token = jstr(r->json, "mfa_token");
	char origin[256], rp_id[256], ch[64], mhash[97], uid[SRV_ID_LEN + 1] = "";
	struct sg_db_conn *c = NULL;
	struct sg_db_res *res = NULL;
	json_t *allow = json_array();
	int rc, retry;

	if (!relying_party(s, out, origin, rp_id))
		goto out;
	if (!srv_rate_allow(SRV_RATE_TOKEN, r->source_ip, &retry)) {
		srv_log_limited(SG_LOG_WARN, "passkey_options_rate_limited", "src=%s",
				r->source_ip);
		srv_error(out, 429, NULL, "too many requests from this address; retry later");
		srv_retry_after(out, retry);
		goto out;
	}
	c = sg_db_acquire(s->db);
	if (token) {
		char now[24];
		const char *p[] = {mhash, srv_i64(now, srv_now())};

		srv_token_hash(mhash, token);
		rc = sg_db_query(c, &res,
				 "SELECT m.user_id, k.credential_id, k.transports FROM mfa_tokens m "
				 "LEFT JOIN passkeys k ON k.user_id = m.user_id WHERE "
				 "m.token_hash = $1 AND m.expires_at > $2 ORDER BY k.created_at",
				 2, p);
		if (rc < 0) {
			srv_dberr(out, c, rc);
			goto out;
		}
		if (rc == 0) {
			srv_error(out, 401, "mfa_token", "invalid or expired mfa_token: log in again");
			goto out;
		}
		snprintf(uid, sizeof(uid), "%s", sg_db_res_get(res, 0, 0));
		for (int i = 0; i < rc; i++) {
			const char *id = sg_db_res_get(res, i, 1), *t = sg_db_res_get(res, i, 2);
			json_t *e, *ta = json_array();

			if (!id)
				continue;
			for (const char *q = t; q && *q;) {
				size_t l = strcspn(q, ",");

				json_array_append_new(ta, json_stringn(q, l));
				q += l + (q[l] == ',');
			}
			e = json_pack("{s:s,s:s}", "type", "public-key", "id", id);
			if (json_array_size(ta))
				json_object_set(e, "transports", ta);
			json_decref(ta);
			json_array_append_new(allow, e);
		}
		if (!json_array_size(allow)) {
			srv_error(out, 409, NULL, "this account has no passkey: enter a code");
			goto out;
		}
	}
	rc = chal_new(s, r, c, token ? "mfa" : "login", token ? uid : NULL, token ? mhash : NULL,
		      ch);
	if (rc > 0) {
		srv_log_limited(SG_LOG_WARN, "passkey_options_full", "src=%s", r->source_ip);
		srv_error(out, 503, NULL, "too many passkey logins pending; retry");
		srv_retry_after(out, 1);
		goto out;
	}
	if (rc) {
		srv_dberr(out, c, rc);
		goto out;
	}
	/* PublicKeyCredentialRequestOptionsJSON (section 5.5.1). Without a password, the
	 * authenticator must verify the user (PIN or biometrics): the passkey is then both
	 * factors. Without allowCredentials, the browser offers the passkeys it holds for the
	 * rpId (discoverable credentials). */
	srv_json(out, 200,
		 json_pack("{s:s,s:s,s:i,s:O,s:s}", "challenge", ch, "rpId", rp_id, "timeout",
			   CHALLENGE_TTL * 1000, "allowCredentials", allow, "userVerification",
			   token ? "preferred" : "required"));
out:
	json_decref(allow);
	sg_db_res_free(res);
	sg_db_release(c);
}

struct use_ctx {
	const char *pid, *mfa_hash;
	int64_t old_count, new_count;
	bool backed_up;
	bool token_gone, raced;
};

/* The passkey's counter moves (only forward: a concurrent use of the same counter value loses)
 * and the mfa_token is spent, in one transaction. */
static int use_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct use_ctx *x = ctx;
	char now[24], oc[24], nc[24];
	const char *p[] = {x->pid, srv_i64(oc, x->old_count), srv_i64(nc, x->new_count),
			   srv_i64(now, srv_now()), x->backed_up ? "1" : "0"};
	int rc;

	(void)s;
	x->token_gone = x->raced = false;
	if (x->mfa_hash) {
		const char *q[] = {x->mfa_hash, p[3]};

		rc = sg_db_exec(c,
				"DELETE FROM mfa_tokens WHERE token_hash = $1 AND expires_at > $2",
				2, q);
		if (rc < 0)
			return rc;
		if (rc == 0) {
			x->token_gone = true;
			return 1;
		}
	}
	rc = sg_db_exec(c,
			"UPDATE passkeys SET sign_count = $3, last_used_at = $4, backed_up = $5 "
			"WHERE id = $1 AND sign_count = $2",
			5, p);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		x->raced = true;
		return 1;
	}
	return 0;
}

struct counter_ctx {
	struct srv_req *r;
	const char *uid, *email, *pid;
	int64_t stored, got;
};

static int counter_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct counter_ctx *x = ctx;
	json_t *d = json_pack("{s:s,s:I,s:I}", "passkey_id", x->pid, "stored_count",
			      (json_int_t)x->stored, "presented_count", (json_int_t)x->got);
	int rc;

	(void)s;
	rc = srv_audit(c, x->r, "user.passkey_counter_regressed", "user", x->uid, x->email, "login",
		       d);
	json_decref(d);
	return rc;
}

int srv_passkey_verify(struct srv *s, struct srv_req *r, json_t *cred, const char *token,
		       struct srv_resp *out, struct srv_passkey_user *who)
{
	json_t *resp;
	const char *cred_id;
	char origin[256], rp_id[256], why[WA_WHY_LEN] = "", field[64] = "credential";
	char mhash[97] = "", uid[SRV_ID_LEN + 1] = "", email[256] = "", role[32] = "", pid[SRV_ID_LEN + 1] = "";
	char source[64], *cose = NULL, *reason = "bad_passkey";
	uint8_t cd[WA_MAX_CLIENT_DATA], adb[WA_MAX_AUTH_DATA], sig[WA_MAX_SIG], uh[64], coseb[256];
	uint8_t ch[WA_CHALLENGE_LEN], h[32], cdhash[32];
	size_t cdlen, adlen, siglen, uhlen;
	struct wa_auth_data *ad = NULL;
	struct wa_cose_key key;
	struct chal_take tk;
	struct sg_db_conn *c = NULL;
	struct sg_db_res *res = NULL;
	struct use_ctx u = {0};
	int64_t t = srv_now(), gen = 0, stored = 0;
	bool enabled, locked, ok = false;
	int rc, n;

	memset(who, 0, sizeof(*who));
	resp = json_object_get(cred, "response");
	cred_id = jstr(cred, "id");
	if (!relying_party(s, out, origin, rp_id) || !attempt(s, r, out))
		return 1;
	if (!field_b64(out, resp, "clientDataJSON", "credential.response.clientDataJSON", cd,
		       sizeof(cd), &cdlen, true) ||
	    !field_b64(out, resp, "authenticatorData", "credential.response.authenticatorData", adb,
		       sizeof(adb), &adlen, true) ||
	    !field_b64(out, resp, "signature", "credential.response.signature", sig, sizeof(sig),
		       &siglen, true) ||
	    !field_b64(out, resp, "userHandle", "credential.response.userHandle", uh,
		       sizeof(uh) - 1, &uhlen, false))
		return 1;
	ad = malloc(sizeof(*ad));
	if (!ad) {
		srv_error(out, 503, NULL, "out of memory");
		return 1;
	}
	srv_ip_source(source, r->source_ip);
	c = sg_db_acquire(s->db);
	if (token)
		srv_token_hash(mhash, token);
	if (wa_client_data_parse(cd, cdlen, "webauthn.get", origin, ch, why, sizeof(why))) {
		snprintf(field, sizeof(field), "credential.response.clientDataJSON");
		goto anonymous;
	}
	rc = chal_take(s, c, ch, &tk);
	if (rc) {
		srv_dberr(out, c, rc);
		goto out;
	}
	if (!tk.found || strcmp(tk.purpose, token ? "mfa" : "login") ||
	    (token && strcmp(tk.mfa_hash, mhash))) {
		snprintf(field, sizeof(field), "credential.response.clientDataJSON");
		snprintf(why, sizeof(why),
			 "clientDataJSON: the challenge is not one this server gave for this login, "
			 "or it was used or expired: ask for new options");
		goto anonymous;
	}
	/* The credential and its account. */
	{
		const char *p[] = {cred_id, source};

		rc = sg_db_query(c, &res,
				 "SELECT k.id, k.user_id, k.public_key, k.sign_count, u.email, u.role, "
				 "u.enabled, u.token_gen, f.locked_until FROM passkeys k JOIN "
				 "admin_users u ON u.id = k.user_id LEFT JOIN login_failures f ON "
				 "f.user_id = u.id AND f.source = $2 WHERE k.credential_id = $1",
				 2, p);
	}
	if (rc < 0) {
		srv_dberr(out, c, rc);
		goto out;
	}
	if (rc != 1) {
		reason = "unknown_passkey";
		snprintf(why, sizeof(why), "this passkey is not registered here");
		goto anonymous;
	}
	snprintf(pid, sizeof(pid), "%s", sg_db_res_get(res, 0, 0));
	snprintf(uid, sizeof(uid), "%s", sg_db_res_get(res, 0, 1));
	cose = strdup(sg_db_res_get(res, 0, 2));
	stored = srv_res_i64(res, 0, 3);
	snprintf(email, sizeof(email), "%s", sg_db_res_get(res, 0, 4));
	snprintf(role, sizeof(role), "%s", sg_db_res_get(res, 0, 5));
	enabled = srv_res_i64(res, 0, 6) != 0;
	gen = srv_res_i64(res, 0, 7);
	locked = sg_db_res_get(res, 0, 8) && srv_res_i64(res, 0, 8) > t;
	sg_db_res_free(res);
	res = NULL;
	if (!cose) {
		srv_error(out, 503, NULL, "out of memory");
		goto out;
	}
	if (token && strcmp(tk.uid, uid)) {
		snprintf(why, sizeof(why), "this passkey is not of the account that logged in");
		goto failed;
	}
	if (uhlen && (uhlen != strlen(uid) || memcmp(uh, uid, uhlen))) {
		snprintf(field, sizeof(field), "credential.response.userHandle");
		snprintf(why, sizeof(why), "userHandle is not the passkey's account");
		goto failed;
	}
	if (!enabled || locked) {
		reason = enabled ? "locked" : "disabled";
		snprintf(why, sizeof(why), "this account cannot log in now");
		goto failed;
	}
	n = srv_b64url_decode(coseb, sizeof(coseb), cose, strlen(cose));
	if (n <= 0 || wa_cose_parse(coseb, (size_t)n, &key, why, sizeof(why))) {
		srv_log(SG_LOG_ERROR, "passkey_key_unreadable", "passkey=%s", pid);
		srv_error(out, 500, NULL, "the stored key of this passkey does not parse");
		goto out;
	}
	snprintf(field, sizeof(field), "credential.response.authenticatorData");
	if (wa_auth_data_parse(adb, adlen, false, ad, why, sizeof(why)))
		goto failed;
	if (!sha256(h, rp_id, strlen(rp_id)) || !sg_memeq(h, ad->rp_id_hash, 32)) {
		snprintf(why, sizeof(why),
			 "authenticatorData: rpIdHash is not SHA-256 of this server's rpId \"%.120s\"",
			 rp_id);
		goto failed;
	}
	if (!(ad->flags & WA_UP)) {
		snprintf(why, sizeof(why), "authenticatorData: the user was not present (flag UP)");
		goto failed;
	}
	if (!token && !(ad->flags & WA_UV)) {
		snprintf(why, sizeof(why),
			 "authenticatorData: a login without a password needs user verification "
			 "(flag UV: the authenticator's PIN or biometrics)");
		goto failed;
	}
	if (!sha256(cdhash, cd, cdlen)) {
		srv_error(out, 500, NULL, "SHA-256 failed");
		goto out;
	}
	if (!verify_sig(&key, sig, siglen, adb, adlen, cdhash)) {
		snprintf(field, sizeof(field), "credential.response.signature");
		snprintf(why, sizeof(why), "the signature does not verify with this passkey's key");
		goto failed;
	}
	/* Section 6.1.1: a counter that does not move forward (when either value is not zero)
	 * says a copy of the key may exist. Refused and audited; the passkey stays, for an
	 * admin to look at. */
	if ((ad->sign_count || stored) && (int64_t)ad->sign_count <= stored) {
		struct counter_ctx cx = {r, uid, email, pid, stored, ad->sign_count};

		if (srv_tx(s, c, counter_tx, &cx, false))
			srv_log(SG_LOG_ERROR, "passkey_counter_not_recorded", "passkey=%s", pid);
		srv_log_limited(SG_LOG_WARN, "passkey_counter_regressed", "passkey=%s", pid);
		snprintf(field, sizeof(field), "credential.response.authenticatorData");
		snprintf(why, sizeof(why),
			 "the passkey's signature counter went back (%u after %lld): it may have been "
			 "copied; ask an admin",
			 ad->sign_count, (long long)stored);
		reason = "passkey_counter";
		goto failed;
	}
	u = (struct use_ctx){.pid = pid,
			     .mfa_hash = token ? mhash : NULL,
			     .old_count = stored,
			     .new_count = ad->sign_count,
			     .backed_up = (ad->flags & WA_BS) != 0};
	rc = srv_tx(s, c, use_tx, &u, false);
	if (rc < 0) {
		srv_dberr(out, c, rc);
		goto out;
	}
	if (u.token_gone) {
		srv_error(out, 401, "mfa_token", "invalid or expired mfa_token: log in again");
		goto out;
	}
	if (u.raced) {
		snprintf(why, sizeof(why), "the passkey was used at the same time: try again");
		goto failed;
	}
	srv_ip_refund(s, r->source_ip);
	snprintf(who->user_id, sizeof(who->user_id), "%s", uid);
	snprintf(who->email, sizeof(who->email), "%s", email);
	snprintf(who->role, sizeof(who->role), "%s", role);
	who->gen = gen;
	ok = true;
	goto out;
failed:
	/* A wrong assertion for a known account: counted on the mfa_token (five end it) and
	 * toward this source's lockout of the account. */
	if (token)
		srv_mfa_wrong(s, r, c, mhash, uid, email, reason);
	else
		srv_login_failed(s, r, c, uid, email, reason);
	srv_error(out, 401, field, "%s", why);
	goto out;
anonymous:
	/* No account known yet (bad client data, unknown challenge or passkey): audited without
	 * one; the per-address limit counts it. */
	srv_login_failed(s, r, c, NULL, "", reason);
	srv_error(out, 401, field, "%s", why);
out:
	free(cose);
	free(ad);
	sg_db_res_free(res);
	sg_db_release(c);
	return ok ? 0 : 1;
}

void h_passkey_login(struct srv *s, struct srv_req *r, struct srv_resp *out)
{
	const char *token = jstr(r->json, "mfa_token");
	struct srv_passkey_user who;
	struct sg_db_conn *c;
	json_t *result = NULL;
	int rc;

	if (srv_passkey_verify(s, r, json_object_get(r->json, "credential"), token, out, &who))
		return;
	c = sg_db_acquire(s->db);
	rc = srv_login_finish(s, r, c, who.user_id, who.email, who.role, who.gen,
			      token ? "passkey" : NULL, token ? NULL : "passkey", &result);
	if (rc)
		srv_dberr(out, c, rc);
	else
		srv_login_answer(s, r, out, result);
	sg_db_release(c);
}
