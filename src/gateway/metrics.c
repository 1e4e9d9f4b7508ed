/* Prometheus metrics (text exposition format 0.0.4) and the JSON-lines access log. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/gw_int.h"

const double gw_lat_bounds[GW_LAT_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
					      0.1,   0.25,   0.5,   1.0,  2.5,   10.0};

void gw_observe(struct gw_res *r, int status, uint64_t dur_ns)
{
	int cls = status >= 100 && status < 600 ? status / 100 : 0;
	r->status_class[cls]++;
	double s = (double)dur_ns / 1e9;
	size_t i = 0;
	while (i < GW_LAT_BUCKETS && s > gw_lat_bounds[i])
		i++;
	r->lat_count[i]++;
	r->lat_sum += s;
}

static void put(struct gw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct gw_buf *b, const char *fmt, ...)
{
	size_t space = gw_buf_space(b);
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf((char *)gw_buf_tail(b), space, fmt, ap);
	va_end(ap);
	if (n > 0 && (size_t)n < space)
		b->len += (uint32_t)n;
}

void gw_metrics_render(struct gw *gw, struct gw_buf *b)
{
	struct gw_rt *rt = gw->rt;
	put(b, "# HELP sg_gateway_config_serial Serial of the running configuration.\n"
	       "# TYPE sg_gateway_config_serial gauge\nsg_gateway_config_serial %llu\n",
	    (unsigned long long)rt->conf->serial);
	put(b, "# TYPE sg_gateway_config_reloads_total counter\nsg_gateway_config_reloads_total "
	       "%llu\n# TYPE sg_gateway_config_rejected_total counter\n"
	       "sg_gateway_config_rejected_total %llu\n",
	    (unsigned long long)gw->reloads, (unsigned long long)gw->rejected);
	put(b, "# TYPE sg_gateway_connections gauge\nsg_gateway_connections %u\n"
	       "# TYPE sg_gateway_connections_accepted_total counter\n"
	       "sg_gateway_connections_accepted_total %llu\n"
	       "# TYPE sg_gateway_connections_refused_total counter\n"
	       "sg_gateway_connections_refused_total %llu\n"
	       "# TYPE sg_gateway_bad_requests_total counter\nsg_gateway_bad_requests_total %llu\n",
	    gw->n_clients, (unsigned long long)gw->accepted, (unsigned long long)gw->refused_conns,
	    (unsigned long long)gw->bad_requests);
	put(b, "# HELP sg_gateway_requests_total Requests per resource and status class.\n"
	       "# TYPE sg_gateway_requests_total counter\n");
	static const char *const cls[] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};
	for (size_t i = 0; i < rt->n_res; i++) {
		struct gw_res *r = &rt->res[i];
		for (int k = 0; k < 6; k++)
			if (r->status_class[k] || k == 2)
				put(b, "sg_gateway_requests_total{resource=\"%s\",code=\"%s\"} %llu\n",
				    r->conf->id, cls[k], (unsigned long long)r->status_class[k]);
	}
	put(b, "# HELP sg_gateway_request_duration_seconds Time from request head to the end of "
	       "the response.\n# TYPE sg_gateway_request_duration_seconds histogram\n");
	for (size_t i = 0; i < rt->n_res; i++) {
		struct gw_res *r = &rt->res[i];
		if (r->conf->proto != GW_PROTO_HTTP)
			continue;
		uint64_t cum = 0;
		for (int k = 0; k < GW_LAT_BUCKETS; k++) {
			cum += r->lat_count[k];
			put(b, "sg_gateway_request_duration_seconds_bucket{resource=\"%s\",le=\"%g\"} "
			       "%llu\n",
			    r->conf->id, gw_lat_bounds[k], (unsigned long long)cum);
		}
		cum += r->lat_count[GW_LAT_BUCKETS];
		put(b, "sg_gateway_request_duration_seconds_bucket{resource=\"%s\",le=\"+Inf\"} %llu\n"
		       "sg_gateway_request_duration_seconds_sum{resource=\"%s\"} %.6f\n"
		       "sg_gateway_request_duration_seconds_count{resource=\"%s\"} %llu\n",
		    r->conf->id, (unsigned long long)cum, r->conf->id, r->lat_sum, r->conf->id,
		    (unsigned long long)cum);
	}
	put(b, "# TYPE sg_gateway_denied_total counter\n# TYPE sg_gateway_rate_limited_total "
	       "counter\n# TYPE sg_gateway_flows_total counter\n"
	       "# TYPE sg_gateway_flows_refused_total counter\n# TYPE sg_gateway_flows gauge\n");
	for (size_t i = 0; i < rt->n_res; i++) {
		struct gw_res *r = &rt->res[i];
		put(b, "sg_gateway_denied_total{resource=\"%s\"} %llu\n"
		       "sg_gateway_rate_limited_total{resource=\"%s\"} %llu\n",
		    r->conf->id, (unsigned long long)r->denied, r->conf->id,
		    (unsigned long long)r->limited);
		if (r->conf->proto != GW_PROTO_HTTP)
			put(b, "sg_gateway_flows_total{resource=\"%s\"} %llu\n"
			       "sg_gateway_flows_refused_total{resource=\"%s\"} %llu\n"
			       "sg_gateway_flows{resource=\"%s\"} %u\n",
			    r->conf->id, (unsigned long long)r->flows_total, r->conf->id,
			    (unsigned long long)r->flows_refused, r->conf->id, r->flows);
	}
	put(b, "# HELP sg_gateway_target_healthy 1 when the target takes traffic (health check "
	       "passing, not ejected).\n# TYPE sg_gateway_target_healthy gauge\n"
	       "# TYPE sg_gateway_target_requests_total counter\n"
	       "# TYPE sg_gateway_target_failures_total counter\n"
	       "# TYPE sg_gateway_target_active gauge\n");
	for (size_t i = 0; i < rt->n_res; i++) {
		struct gw_res *r = &rt->res[i];
		for (size_t k = 0; k < r->n_targets; k++) {
			struct gw_target *t = &r->targets[k];
			const char *rid = r->conf->id, *tid = t->conf->id;
			put(b, "sg_gateway_target_healthy{resource=\"%s\",target=\"%s\"} %d\n"
			       "sg_gateway_target_requests_total{resource=\"%s\",target=\"%s\"} %llu\n"
			       "sg_gateway_target_failures_total{resource=\"%s\",target=\"%s\"} %llu\n"
			       "sg_gateway_target_active{resource=\"%s\",target=\"%s\"} %u\n",
			    rid, tid, gw_target_usable(t, gw->now_ns) ? 1 : 0, rid, tid,
			    (unsigned long long)t->requests, rid, tid,
			    (unsigned long long)t->failures, rid, tid, t->active);
		}
	}
}

void gw_access_log(struct gw *gw, const struct gw_access *a)
{
	if (!gw->access_log)
		return;
	char ts[40];
	uint64_t rt = evloop_realtime_ns();
	time_t s = (time_t)(rt / NS_PER_S);
	struct tm tm;
	gmtime_r(&s, &tm);
	size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof(ts) - n, ".%03uZ", (unsigned)((rt / NS_PER_MS) % 1000));
	/* jansson escapes what the client sent (paths, hosts) into valid JSON; bytes that are
	 * not UTF-8 are replaced so one bad path cannot break the line. */
	json_t *j = json_object();
	if (!j)
		return;
	json_object_set_new(j, "ts", json_string(ts));
	json_object_set_new(j, "proto", json_string(a->proto));
	json_object_set_new(j, "client", json_string(a->client));
	json_object_set_new(j, "resource", a->resource ? json_string(a->resource) : json_null());
	json_object_set_new(j, "target", a->target ? json_string(a->target) : json_null());
	json_object_set_new(j, "user", a->user ? json_string(a->user) : json_null());
	if (a->method) {
		json_t *m = json_stringn_nocheck(a->method, a->method_len);
		json_t *h = json_stringn(a->host, a->host_len);
		json_t *p = json_stringn(a->path, a->path_len);
		json_object_set_new(j, "method", m ? m : json_null());
		json_object_set_new(j, "host", h ? h : json_string("(not UTF-8)"));
		json_object_set_new(j, "path", p ? p : json_string("(not UTF-8)"));
	}
	json_object_set_new(j, "status", json_integer(a->status));
	json_object_set_new(j, "bytes_in", json_integer((json_int_t)a->bytes_in));
	json_object_set_new(j, "bytes_out", json_integer((json_int_t)a->bytes_out));
	json_object_set_new(j, "duration_ms", json_real((double)a->dur_ns / 1e6));
	if (a->reason)
		json_object_set_new(j, "reason", json_string(a->reason));
	char *line = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!line)
		return;
	fputs(line, gw->access_log);
	fputc('\n', gw->access_log);
	free(line);
}
