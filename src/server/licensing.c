/* What the server does with its license (docs/SERVER.md, "Licenses"): a limit on the number of
 * clients, checked where a client is made; warnings in the log and /api/health while a license
 * is in its grace period or not (yet) valid. Never a network call, and never anything stopped:
 * past the limit only the creation of more clients is refused. */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "secureguard/sg_errors.h"
#include "server/srv_int.h"

static const struct srv_license *lic(const struct srv *s)
{
	return s->has_license ? &s->license : NULL;
}

/* What the license's state means, for the log, /api/health and the 402; "" when all is well. */
static void warning(const struct srv *s, enum srv_license_state st, char *out, size_t cap)
{
	char a[21], b[21];

	out[0] = 0;
	if (st == SRV_LIC_NONE || st == SRV_LIC_VALID)
		return;
	srv_license_time(a, st == SRV_LIC_EARLY ? s->license.not_before : s->license.expiry);
	srv_license_time(b, s->license.expiry + SRV_LICENSE_GRACE_SECS);
	if (st == SRV_LIC_EARLY)
		snprintf(out, cap, "license %s is valid from %s: the free edition (%d clients) until then",
			 s->license.id, a, SRV_FREE_CLIENTS);
	else if (st == SRV_LIC_GRACE)
		snprintf(out, cap,
			 "license %s expired on %s; its %lld seats hold until %s, then the free "
			 "edition's %d: renew it",
			 s->license.id, a, (long long)s->license.seats, b, SRV_FREE_CLIENTS);
	else
		snprintf(out, cap,
			 "license %s expired on %s (grace ended %s): the free edition's %d clients; "
			 "existing clients keep working",
			 s->license.id, a, b, SRV_FREE_CLIENTS);
}

int srv_license_seat(const struct srv *s, struct sg_db_conn *c, char *why, size_t whylen)
{
	struct sg_db_res *res = NULL;
	enum srv_license_state st;
	int64_t limit, have;
	char w[256];
	int rc;

	st = srv_license_state(lic(s), srv_now(), &limit);
	/* PostgreSQL (read committed): servers of a cluster creating clients at once take turns
	 * here, so two of them never both take the last seat. SQLite's BEGIN IMMEDIATE already
	 * makes writers take turns. */
	if (sg_db_conn_engine(c) == SG_DB_POSTGRES) {
		rc = sg_db_query(c, &res, "SELECT pg_advisory_xact_lock(7353413)", 0, NULL);
		sg_db_res_free(res);
		res = NULL;
		if (rc < 0)
			return rc;
	}
	rc = sg_db_query(c, &res, "SELECT COUNT(*) FROM clients", 0, NULL);
	if (rc < 0)
		return rc;
	have = srv_res_i64(res, 0, 0);
	sg_db_res_free(res);
	if (have < limit)
		return 0;
	warning(s, st, w, sizeof(w));
	if (st == SRV_LIC_VALID || st == SRV_LIC_GRACE)
		snprintf(why, whylen,
			 "license %s (%s) allows %lld clients and this instance has %lld: delete "
			 "clients or install a license with more seats%s%s",
			 s->license.id, s->license.customer, (long long)limit, (long long)have,
			 w[0] ? "; " : "", w);
	else
		snprintf(why, whylen,
			 "the free edition allows %lld clients and this instance has %lld: install "
			 "a license (secureguard server --license FILE; docs/SERVER.md, "
			 "\"Licenses\")%s%s",
			 (long long)limit, (long long)have, w[0] ? "; " : "", w);
	return SRV_LICENSE;
}

void srv_license_refuse(struct srv_resp *out, const char *why)
{
	srv_error(out, 402, NULL, "%s", why);
}

json_t *srv_license_json(const struct srv *s, int64_t now)
{
	enum srv_license_state st;
	int64_t limit;
	char w[256];
	json_t *j;

	st = srv_license_state(lic(s), now, &limit);
	j = json_pack("{s:s,s:s,s:I}", "edition",
		      st == SRV_LIC_VALID || st == SRV_LIC_GRACE ? "licensed" : "free", "status",
		      srv_license_state_name(st), "client_limit", (json_int_t)limit);
	if (!j || st == SRV_LIC_NONE)
		return j;
	json_object_set_new(j, "expires_at", json_integer(s->license.expiry));
	json_object_set_new(j, "grace_ends_at",
			    json_integer(s->license.expiry + SRV_LICENSE_GRACE_SECS));
	warning(s, st, w, sizeof(w));
	if (w[0])
		json_object_set_new(j, "warning", json_string(w));
	return j;
}

void srv_license_log(const struct srv *s, bool startup)
{
	enum srv_license_state st;
	int64_t limit;
	char w[256], nb[21], ex[21];

	st = srv_license_state(lic(s), srv_now(), &limit);
	if (startup && s->has_license) {
		srv_license_time(nb, s->license.not_before);
		srv_license_time(ex, s->license.expiry);
		srv_log(SG_LOG_INFO, "license_loaded",
			"id=%s seats=%lld not_before=%s expiry=%s state=%s client_limit=%lld%s",
			s->license.id, (long long)s->license.seats, nb, ex,
			srv_license_state_name(st), (long long)limit,
			s->license.test_key ? " signer=test-key" : "");
	} else if (startup) {
		srv_log(SG_LOG_INFO, "license_none", "edition=free client_limit=%lld",
			(long long)limit);
	}
	warning(s, st, w, sizeof(w));
	if (w[0])
		srv_log(SG_LOG_WARN,
			st == SRV_LIC_GRACE	? "license_grace"
			: st == SRV_LIC_EARLY ? "license_not_yet_valid"
						: "license_expired",
			"%s", w);
}
