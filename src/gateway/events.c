/* The gateway's decisions for the management server's audit chain (docs/GATEWAY.md, "Managed
 * by the server"): every denied access and every authentication decision (a login, a refused
 * login, a refused credential) becomes an event. A flood must not turn into a flood of audit
 * rows, so events that say the same (type, resource, client, user, status, reason) within a
 * flush interval are one event with a count and the first and last time; at most EV_SLOTS
 * different ones wait, and what does not fit is counted as dropped and reported too. Every
 * EV_FLUSH_NS the waiting events go to POST /api/v1/gateways/{id}/events in one request; while
 * the server is away they wait (new ones still aggregate), kept in memory only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "crypto/crypto.h"
#include "gateway/gw_int.h"
#include "net/mgmt.h"

#define EV_SLOTS    256
#define EV_FLUSH_NS (5 * NS_PER_S)

struct gw_ev {
	uint8_t key[32]; /* SHA-256 of what it says */
	char type[24], resource[GW_CONF_ID_MAX + 1], client[48], user[64], method[16];
	char host[128], path[256], reason[128];
	int status;
	uint64_t count, first_ms, last_ms;
};

struct gw_events {
	struct gw_ev ev[EV_SLOTS];
	size_t n;
	uint64_t dropped;
	json_t *pending; /* sent, not yet acknowledged */
	bool in_flight;
	uint64_t next_flush_ns;
};

static uint64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static void cpy(char *dst, size_t n, const char *s)
{
	snprintf(dst, n, "%s", s ? s : "");
	/* It becomes JSON text and an audit field: printable ASCII only. */
	for (char *p = dst; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
}

void gw_event(struct gw *gw, const char *type, const struct gw_res *r, const char *client,
	      const char *user, const char *method, const char *host, const char *path, int status,
	      const char *reason)
{
	struct gw_events *e = gw->events;
	struct gw_ev t = {0}, *slot = NULL;
	if (!e)
		return;
	cpy(t.type, sizeof(t.type), type);
	cpy(t.resource, sizeof(t.resource), r ? r->conf->id : NULL);
	cpy(t.client, sizeof(t.client), client);
	cpy(t.user, sizeof(t.user), user);
	cpy(t.method, sizeof(t.method), method);
	cpy(t.host, sizeof(t.host), host);
	cpy(t.path, sizeof(t.path), path);
	cpy(t.reason, sizeof(t.reason), reason);
	t.status = status;
	/* The path is not part of what makes two events one: a scan of many paths from one
	 * client is one event with a count (the first path kept). */
	struct sg_iov iov[] = {{t.type, strlen(t.type) + 1}, {t.resource, strlen(t.resource) + 1},
			       {t.client, strlen(t.client) + 1}, {t.user, strlen(t.user) + 1},
			       {t.reason, strlen(t.reason) + 1}, {&t.status, sizeof(t.status)}};
	if (!sg_sha256(t.key, iov, SG_ARRAY_LEN(iov)))
		return;
	for (size_t i = 0; i < e->n; i++)
		if (sg_memeq(e->ev[i].key, t.key, sizeof(t.key))) {
			slot = &e->ev[i];
			break;
		}
	uint64_t ms = now_ms();
	if (!slot) {
		if (e->n == EV_SLOTS) {
			e->dropped++;
			return;
		}
		slot = &e->ev[e->n++];
		*slot = t;
		slot->first_ms = ms;
	}
	slot->count++;
	slot->last_ms = ms;
}

static json_t *ev_json(const struct gw_ev *v, const char *gw_id)
{
	json_t *o = json_pack("{s:s,s:s,s:I,s:I,s:I}", "type", v->type, "client_ip", v->client,
			      "count", (json_int_t)v->count, "first", (json_int_t)v->first_ms,
			      "last", (json_int_t)v->last_ms);
	static const char *const keys[] = {"user", "method", "host", "path", "reason"};
	const char *vals[] = {v->user, v->method, v->host, v->path, v->reason};
	if (!o)
		return NULL;
	(void)gw_id;
	/* Resource ids of a server's document are its UUIDs. */
	if (strlen(v->resource) == 36)
		json_object_set_new(o, "resource_id", json_string(v->resource));
	for (size_t i = 0; i < SG_ARRAY_LEN(keys); i++)
		if (vals[i][0])
			json_object_set_new(o, keys[i], json_string(vals[i]));
	if (v->status > 0)
		json_object_set_new(o, "status", json_integer(v->status));
	return o;
}

static void sent(void *ctx, long status, json_t *body, const char *err)
{
	struct gw *gw = ctx;
	struct gw_events *e = gw->events;
	(void)body;
	e->in_flight = false;
	if (status == 200) {
		json_decref(e->pending);
		e->pending = NULL;
		return;
	}
	if (status == 401)
		sg_mgmt_relogin(gw->mgmt);
	sg_log(SG_LOG_WARN, "gw_events_not_sent", "status=%ld reason=\"%s\" waiting=%zu", status,
	       err ? err : "refused", json_array_size(json_object_get(e->pending, "events")));
}

void gw_events_tick(struct gw *gw, uint64_t now_ns)
{
	struct gw_events *e = gw->events;
	const char *id = gw->rt && gw->rt->conf->id ? gw->rt->conf->id : NULL;
	if (!e || e->in_flight || now_ns < e->next_flush_ns || !id || !sg_mgmt_auth(gw->mgmt))
		return;
	e->next_flush_ns = now_ns + EV_FLUSH_NS;
	if (!e->pending && (e->n || e->dropped)) {
		json_t *arr = json_array();
		for (size_t i = 0; i < e->n; i++)
			json_array_append_new(arr, ev_json(&e->ev[i], id));
		e->pending = json_pack("{s:o,s:I}", "events", arr, "dropped", (json_int_t)e->dropped);
		if (!e->pending)
			return;
		e->n = 0;
		e->dropped = 0;
	}
	if (!e->pending)
		return;
	char path[128];
	snprintf(path, sizeof(path), "/api/v1/gateways/%s/events", id);
	e->in_flight = true;
	sg_mgmt_api(gw->mgmt, "POST", path, e->pending, true, sent, gw);
}

int gw_events_new(struct gw *gw)
{
	gw->events = calloc(1, sizeof(*gw->events));
	return gw->events ? 0 : -1;
}

void gw_events_free(struct gw *gw)
{
	if (!gw->events)
		return;
	json_decref(gw->events->pending);
	free(gw->events);
	gw->events = NULL;
}
