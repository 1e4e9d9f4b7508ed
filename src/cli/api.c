/* The management server's API for the CLI's commands (api.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/api.h"
#include "crypto/crypto.h"

#define API_TIMEOUT_MS 15000

bool cli_api_open(struct cli_api *a, const char *server, const char *ca_file)
{
	snprintf(a->base, sizeof(a->base), "%s", server);
	for (size_t n = strlen(a->base); n && a->base[n - 1] == '/'; n--)
		a->base[n - 1] = '\0';
	a->ca_file = ca_file;
	return evloop_new(&a->loop) == 0 && sg_httpc_new(&a->http, a->loop) == 0;
}

void cli_api_close(struct cli_api *a)
{
	if (a->http)
		sg_httpc_free(a->http);
	if (a->loop)
		evloop_free(a->loop);
	if (a->auth_hdr) {
		sg_memzero(a->auth_hdr, strlen(a->auth_hdr));
		free(a->auth_hdr);
	}
	a->http = NULL;
	a->loop = NULL;
	a->auth_hdr = NULL;
}

static void api_done(void *ctx, const struct sg_httpc_resp *r)
{
	struct cli_api_call *c = ctx;

	c->done = true;
	c->status = r->error ? 0 : r->status;
	if (r->error)
		snprintf(c->err, sizeof(c->err), "%s", r->error);
	else if (r->len)
		c->body = json_loadb(r->body, r->len, 0, NULL);
}

long cli_api_call(struct cli_api *a, const char *method, const char *path, json_t *req,
		  struct cli_api_call *c)
{
	struct sg_httpc_opts o = {.timeout_ms = a->timeout_ms ? a->timeout_ms : API_TIMEOUT_MS,
				  .ca_file = a->ca_file};
	const char *hdrs[] = {"Content-Type: application/json", "Accept: application/json",
			      a->auth_hdr, NULL};
	char url[2048];
	char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
	bool started;

	memset(c, 0, sizeof(*c));
	if (req && !text) {
		snprintf(c->err, sizeof(c->err), "out of memory");
		return 0;
	}
	snprintf(url, sizeof(url), "%s%s", a->base, path);
	started = sg_httpc_request(a->http, method, url, hdrs, text, text ? strlen(text) : 0, &o,
				   api_done, c) != NULL;
	if (text) {
		sg_memzero(text, strlen(text));
		free(text);
	}
	if (!started) {
		snprintf(c->err, sizeof(c->err), "%.200s: the request could not be started", url);
		return 0;
	}
	while (!c->done) {
		int r = evloop_run_once(a->loop, 1000);
		if (r < 0) {
			/* Cannot happen short of a broken epoll fd; the request stays with the
			 * client, which sg_httpc_free cancels. */
			snprintf(c->err, sizeof(c->err), "event loop: %s", strerror(-r));
			return 0;
		}
	}
	return c->status;
}

void cli_api_complaint(char *out, size_t len, const struct cli_api_call *c)
{
	const char *detail = json_string_value(json_object_get(c->body, "detail"));
	const char *field = json_string_value(json_object_get(c->body, "field"));

	if (!c->status)
		snprintf(out, len, "%s", c->err);
	else if (detail && field)
		snprintf(out, len, "%s (field %s; HTTP %ld)", detail, field, c->status);
	else if (detail)
		snprintf(out, len, "%s (HTTP %ld)", detail, c->status);
	else
		snprintf(out, len, "HTTP %ld", c->status);
}
