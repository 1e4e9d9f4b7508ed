/* A process the management server manages (a gateway; the steps are docs/AGENTS.md's):
 * its own X25519 key pair kept in its state directory (mode 0600), enrolment with a one-time
 * token at /api/peers/register, key-possession logins at /api/auth/agent, and the session they
 * give, on the one HTTP client (net/httpc.h). The push channel (net/longpoll.h) and reports use
 * the session's Authorization header.
 *
 * Files in the state directory: NAME.key (the private key, base64, 0600) and NAME.json
 * ({"server", "id"}: who it is at which server). With no NAME.json the token is needed; with
 * one, the token is not used again (a systemd unit may keep --enroll on its command line).
 *
 * Failures (no server, 5xx, 429) are retried with backoff; a refused token (401, 409, 410,
 * 400) and a revoked credential (403) are final and reported through the callback. */
#ifndef SG_NET_MGMT_H
#define SG_NET_MGMT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/compiler.h"
#include "net/evloop.h"
#include "net/httpc.h"

struct sg_mgmt;

enum sg_mgmt_event {
	SG_MGMT_READY,	 /* a session: requests may carry sg_mgmt_auth() now */
	SG_MGMT_REVOKED, /* the server revoked this credential (403) */
	SG_MGMT_REFUSED, /* the enrolment token was refused for good (why says how) */
};

typedef void (*sg_mgmt_cb)(void *ctx, enum sg_mgmt_event ev, const char *why);

struct sg_mgmt_opts {
	const char *server;    /* base URL: https://host[:port] (a trailing / is dropped) */
	const char *ca_file;   /* HTTPS trust; NULL: the system's */
	const char *state_dir; /* exists, 0700 */
	const char *name;      /* file stem: NAME.key, NAME.json */
	const char *enroll;    /* the one-time token; used only when not enrolled yet */
	json_t *fields;	       /* sent with the registration besides token and public_key */
	int retry_max_s;       /* longest wait between retries (default 60) */
};

/* Reads the key and identity (or makes the key when enrolling). 0, or a negative SG_E* with
 * why (no identity and no token, an unreadable or loose file ...). */
int sg_mgmt_new(struct sg_mgmt **out, struct evloop *loop, struct sg_httpc *h,
		const struct sg_mgmt_opts *o, sg_mgmt_cb cb, void *ctx, char *why,
		size_t n) SG_WUR;
void sg_mgmt_free(struct sg_mgmt *m);
/* Registers when needed, then logs in; SG_MGMT_READY once a session exists. */
void sg_mgmt_start(struct sg_mgmt *m);
/* The session was refused (a 401 from the server): logs in again. */
void sg_mgmt_relogin(struct sg_mgmt *m);
/* "Authorization: Bearer ..." of the current session, or NULL. */
const char *sg_mgmt_auth(const struct sg_mgmt *m);
/* The peer id at the server ("" before enrolment). */
const char *sg_mgmt_id(const struct sg_mgmt *m);
const char *sg_mgmt_server(const struct sg_mgmt *m);
/* Deletes the key and identity files (after SG_MGMT_REVOKED). */
void sg_mgmt_forget(struct sg_mgmt *m);

/* A JSON request to the server with the session (when auth) on the one HTTP client; cb gets
 * the status (0: no answer) and the parsed body (NULL when not JSON), from the loop. */
typedef void (*sg_mgmt_api_cb)(void *ctx, long status, json_t *body, const char *err);
void sg_mgmt_api(struct sg_mgmt *m, const char *method, const char *path, json_t *body,
		 bool auth, sg_mgmt_api_cb cb, void *ctx);

#endif
