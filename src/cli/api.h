/* The management server's API as the CLI's commands call it (expose, connect, disconnect): one
 * request at a time, waited for on a loop of the command's own, over the one HTTP client
 * (src/net/httpc.c). */
#ifndef SG_CLI_API_H
#define SG_CLI_API_H

#include <jansson.h>
#include <stdbool.h>

#include "net/evloop.h"
#include "net/httpc.h"

struct cli_api {
	char base[1024]; /* server URL without a trailing '/' */
	char *auth_hdr;	 /* "Authorization: Bearer ..." or NULL (wiped and freed by close) */
	const char *ca_file;
	long timeout_ms; /* 0: 15 s */
	struct evloop *loop;
	struct sg_httpc *http;
};

struct cli_api_call {
	bool done;
	long status;
	json_t *body; /* the answer's JSON, or NULL; the caller json_decref()s it */
	char err[256];
};

/* The loop and the HTTP client for server (a trailing '/' dropped); false when they cannot be
 * made. a must be zeroed first; cli_api_close frees what this made, also after a failure. */
bool cli_api_open(struct cli_api *a, const char *server, const char *ca_file);
void cli_api_close(struct cli_api *a);
/* One request (req: a JSON body or NULL), waited for. The HTTP status; 0 when no answer came
 * (why in c->err). The request text is wiped after sending (it may hold a password). */
long cli_api_call(struct cli_api *a, const char *method, const char *path, json_t *req,
		  struct cli_api_call *c);
/* "what the server said": an RFC 9457 problem document's detail (and field), or the status. */
void cli_api_complaint(char *out, size_t len, const struct cli_api_call *c);

#endif
