/* A gateway managed by the server (`secureguard gateway --server URL`, docs/GATEWAY.md):
 * enrolled as a managed peer (net/mgmt.h), its configuration pushed over the long poll of
 * /api/peers/{id}/config (net/longpoll.h) into the same path a file takes (validate, swap
 * atomically, keep as last-known-good), its health and counters reported, its decisions sent
 * for the audit chain (events.c). With the server away it serves its last-known-good
 * configuration, also after a restart, and catches up when the server is back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <secureguard/sg_errors.h>

#include "common/log.h"
#include "crypto/crypto.h"
#include "gateway/gw_int.h"
#include "net/longpoll.h"
#include "net/mgmt.h"

#define WAIT_S 60 /* how long the server may hold a poll */

static const char *const *lp_headers(void *ctx)
{
	struct gw *gw = ctx;
	gw->lp_hdrs[0] = sg_mgmt_auth(gw->mgmt);
	gw->lp_hdrs[1] = NULL;
	return gw->lp_hdrs;
}

/* ---- reports -------------------------------------------------------------------------------- */

static json_t *report_json(struct gw *gw)
{
	const struct gw_rt *rt = gw->rt;
	json_t *res = json_array();
	bool degraded = gw->server_rejected;
	for (size_t i = 0; rt && i < rt->n_res; i++) {
		const struct gw_res *r = &rt->res[i];
		uint64_t req = 0;
		for (int k = 0; k < 6; k++)
			req += r->status_class[k];
		json_t *ts = json_array();
		for (size_t k = 0; k < r->n_targets; k++) {
			const struct gw_target *t = &r->targets[k];
			bool up = t->healthy && t->ejected_until_ns <= gw->now_ns;
			degraded |= !up;
			json_array_append_new(ts, json_pack("{s:s,s:b,s:I,s:I,s:I}", "id", t->conf->id,
							    "healthy", up, "requests",
							    (json_int_t)t->requests, "failures",
							    (json_int_t)t->failures, "active",
							    (json_int_t)t->active));
		}
		json_array_append_new(res, json_pack("{s:s,s:I,s:I,s:I,s:I,s:o}", "id", r->conf->id,
						     "requests", (json_int_t)req, "denied",
						     (json_int_t)r->denied, "rate_limited",
						     (json_int_t)r->limited, "flows",
						     (json_int_t)r->flows, "targets", ts));
	}
	json_t *j = json_pack("{s:s,s:s,s:s,s:{s:I,s:I,s:I,s:o}}", "state",
			      degraded ? "degraded" : "ok", "version", SG_VERSION, "platform",
			      "linux", "gateway", "serial",
			      (json_int_t)(rt ? rt->conf->serial : 0), "connections",
			      (json_int_t)gw->n_clients, "config_rejected", (json_int_t)gw->rejected,
			      "resources", res);
	if (j && gw->revision[0])
		json_object_set_new(j, "revision", json_string(gw->revision));
	return j;
}

static void reported(void *ctx, long status, json_t *body, const char *err)
{
	struct gw *gw = ctx;
	(void)body;
	gw->reporting = false;
	if (status == 200)
		return;
	if (status == 401)
		sg_mgmt_relogin(gw->mgmt);
	else
		sg_log(SG_LOG_DEBUG, "gw_report_failed", "status=%ld reason=\"%s\"", status,
		       err ? err : "refused");
}

static void report(struct gw *gw)
{
	char path[128];
	if (gw->reporting || !sg_mgmt_auth(gw->mgmt))
		return;
	json_t *j = report_json(gw);
	if (!j)
		return;
	snprintf(path, sizeof(path), "/api/peers/%s/status", sg_mgmt_id(gw->mgmt));
	gw->reporting = true;
	sg_mgmt_api(gw->mgmt, "PUT", path, j, true, reported, gw);
	json_decref(j);
}

/* ---- the configuration ------------------------------------------------------------------------ */

static enum sg_longpoll_next on_config(void *ctx, const struct sg_httpc_resp *r)
{
	struct gw *gw = ctx;
	if (r->error || r->status == 0 || r->status >= 500 || r->status == 429) {
		if (gw->server_ok || !sg_longpoll_failures(gw->lp))
			sg_log(SG_LOG_WARN, "gw_server_unreachable",
			       "reason=\"%s\" serving_serial=%llu", r->error ? r->error : "no answer",
			       (unsigned long long)(gw->rt ? gw->rt->conf->serial : 0));
		gw->server_ok = false;
		return SG_LONGPOLL_RETRY;
	}
	gw->server_ok = true;
	if (r->status == 401) {
		sg_mgmt_relogin(gw->mgmt);
		return SG_LONGPOLL_PAUSE;
	}
	if (r->status != 200) {
		sg_log(SG_LOG_WARN, "gw_sync_failed", "status=%ld", r->status);
		return SG_LONGPOLL_RETRY;
	}
	json_t *doc = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, NULL);
	json_t *g = json_object_get(doc, "gateway");
	const char *rev = json_string_value(json_object_get(doc, "revision"));
	if (!json_is_object(g) || !rev || strlen(rev) >= sizeof(gw->revision)) {
		sg_log(SG_LOG_ERROR, "gw_sync_failed",
		       "reason=\"the answer carries no gateway configuration (is this credential a "
		       "gateway's?)\"");
		json_decref(doc);
		return SG_LONGPOLL_RETRY;
	}
	char *text = json_dumps(g, JSON_COMPACT);
	char err[GW_CONF_ERR_MAX + 64], q[GW_CONF_ERR_MAX + 96];
	int rc = text ? gw_apply_text(gw, text, strlen(text), err, sizeof(err)) : SG_ENOMEM;
	if (text) {
		sg_memzero(text, strlen(text)); /* client secrets */
		free(text);
	}
	/* Whatever came of it, this revision is known: the next poll waits for a newer one (a
	 * document this gateway refuses is not fetched again and again). */
	snprintf(gw->revision, sizeof(gw->revision), "%s", rev);
	sg_longpoll_set_since(gw->lp, rev);
	json_decref(doc);
	gw->server_rejected = rc != 0;
	if (rc) {
		gw->rejected++;
		sg_log(SG_LOG_ERROR, "gw_config_rejected", "source=server reason=%s keeping_serial=%llu",
		       sg_log_quote(q, sizeof(q), err),
		       (unsigned long long)(gw->rt ? gw->rt->conf->serial : 0));
	} else {
		gw->reloads++;
	}
	gw->next_report_ns = 0; /* report the new state at once */
	return SG_LONGPOLL_NEXT;
}

static void on_mgmt(void *ctx, enum sg_mgmt_event ev, const char *why)
{
	struct gw *gw = ctx;
	char q[300];
	if (ev == SG_MGMT_READY) {
		if (!gw->lp) {
			char url[2048];
			struct sg_longpoll_opts o = {.url = url, .wait_s = WAIT_S,
						     .poll_s = gw->opts.poll_s,
						     .ca_file = gw->opts.ca_file};
			snprintf(url, sizeof(url), "%s/api/peers/%s/config",
				 sg_mgmt_server(gw->mgmt), sg_mgmt_id(gw->mgmt));
			if (sg_longpoll_new(&gw->lp, gw->loop, gw->httpc, &o, lp_headers, on_config,
					    gw) != 0) {
				sg_log(SG_LOG_ERROR, "gw_sync_failed", "reason=\"out of memory\"");
				return;
			}
			if (gw->revision[0])
				sg_longpoll_set_since(gw->lp, gw->revision);
		}
		sg_longpoll_kick(gw->lp);
		gw->next_report_ns = 0;
		return;
	}
	if (ev == SG_MGMT_REVOKED) {
		/* Deleted at the server, or enrolled again elsewhere: what it was told to serve is
		 * no longer its to serve. */
		char path[4200];
		sg_log(SG_LOG_ERROR, "gw_revoked", "reason=%s", sg_log_quote(q, sizeof(q), why));
		sg_mgmt_forget(gw->mgmt);
		snprintf(path, sizeof(path), "%s/config.json", gw->opts.state_dir);
		unlink(path);
		fprintf(stderr, "gateway: this gateway's credential was revoked by the server; its "
				"configuration and credential are deleted\n");
		gw->exit_code = 3;
		gw->stop = true;
		return;
	}
	sg_log(SG_LOG_ERROR, "gw_enrolment_refused", "reason=%s", sg_log_quote(q, sizeof(q), why));
	fprintf(stderr, "gateway: %s\n", why ? why : "enrolment refused");
	gw->exit_code = 1;
	gw->stop = true;
}

int gw_managed_start(struct gw *gw, char *err, size_t errlen)
{
	char host[256] = "";
	json_t *fields;
	gethostname(host, sizeof(host) - 1);
	fields = json_pack("{s:s,s:s,s:s}", "name", "gateway", "platform", "linux", "version",
			   SG_VERSION);
	if (!fields) {
		snprintf(err, errlen, "out of memory");
		return SG_ENOMEM;
	}
	if (host[0])
		json_object_set_new(fields, "hostname", json_string(host));
	struct sg_mgmt_opts o = {.server = gw->opts.server,
				 .ca_file = gw->opts.ca_file,
				 .state_dir = gw->opts.state_dir,
				 .name = "gateway",
				 .enroll = gw->opts.enroll,
				 .fields = fields,
				 .retry_max_s = gw->opts.poll_s};
	int rc = sg_mgmt_new(&gw->mgmt, gw->loop, gw->httpc, &o, on_mgmt, gw, err, errlen);
	json_decref(fields);
	if (rc)
		return rc;
	if (gw_events_new(gw)) {
		snprintf(err, errlen, "out of memory");
		return SG_ENOMEM;
	}
	sg_mgmt_start(gw->mgmt);
	return 0;
}

void gw_managed_tick(struct gw *gw, uint64_t now_ns)
{
	if (!gw->mgmt)
		return;
	if (now_ns >= gw->next_report_ns && sg_mgmt_auth(gw->mgmt)) {
		gw->next_report_ns = now_ns + (uint64_t)gw->opts.report_s * NS_PER_S;
		report(gw);
	}
	gw_events_tick(gw, now_ns);
}

void gw_managed_free(struct gw *gw)
{
	/* After the HTTP client: its requests are gone without callbacks. */
	sg_longpoll_free(gw->lp);
	gw->lp = NULL;
	sg_mgmt_free(gw->mgmt);
	gw->mgmt = NULL;
	gw_events_free(gw);
}
