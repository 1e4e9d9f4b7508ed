/* libsecureguard: MFA-gated VPN sessions (sg_session_open, sg_session_open_oidc,
 * sg_session_end; docs/SERVER.md "MFA-gated VPN sessions", docs/EMBEDDING.md). An app (and
 * `secureguard connect`) proves the client owner's password and TOTP code to the management
 * server, or redeems the code of a login through its OpenID provider; the server's hubs then
 * list the client as a peer until the session ends. Two requests of the management API over the one HTTP
 * client (src/net/httpc.c), each on a loop of its own and waited for: no thread, no global
 * state. The password, the code and the request text are wiped after use. */
#include <secureguard/sg.h>

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "net/evloop.h"
#include "net/httpc.h"

#define SESSION_TIMEOUT_MS 30000 /* password hashing on a busy server takes its time */

struct answer {
	bool done;
	long status;
	json_t *body;
	char err[200];
};

static void answered(void *ctx, const struct sg_httpc_resp *r)
{
	struct answer *a = ctx;

	a->done = true;
	a->status = r->error ? 0 : r->status;
	if (r->error)
		snprintf(a->err, sizeof(a->err), "%s", r->error);
	else if (r->len)
		a->body = json_loadb(r->body, r->len, 0, NULL);
}

static void say(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (!why || !whylen)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

static const char *jstr(json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));

	return v ? v : "?";
}

/* POST server_url + path with req (wiped after sending); the answer in *a. */
static sg_result post(const char *server_url, const char *ca_file, const char *path, json_t *req,
		      struct answer *a, char *why, size_t whylen)
{
	struct evloop *loop = NULL;
	struct sg_httpc *http = NULL;
	struct sg_httpc_opts o = {.timeout_ms = SESSION_TIMEOUT_MS, .ca_file = ca_file};
	const char *hdrs[] = {"Content-Type: application/json", "Accept: application/json", NULL};
	char url[2048];
	size_t n = strlen(server_url);
	char *text = json_dumps(req, JSON_COMPACT);
	sg_result rc = SG_ENOMEM;

	memset(a, 0, sizeof(*a));
	while (n && server_url[n - 1] == '/')
		n--;
	if ((size_t)snprintf(url, sizeof(url), "%.*s%s", (int)n, server_url, path) >= sizeof(url)) {
		say(why, whylen, "%s", "the server URL is too long");
		rc = SG_EINVAL;
		goto out;
	}
	if (!text || evloop_new(&loop) || sg_httpc_new(&http, loop))
		goto out;
	if (!sg_httpc_request(http, "POST", url, hdrs, text, strlen(text), &o, answered, a)) {
		say(why, whylen, "%s: %s", url, "the request could not be started (a bad URL?)");
		rc = SG_EINVAL;
		goto out;
	}
	sg_memzero(text, strlen(text));
	while (!a->done) {
		if (evloop_run_once(loop, 1000) < 0) {
			say(why, whylen, "%s", "event loop failed");
			rc = SG_EIO;
			goto out;
		}
	}
	rc = SG_EOK;
	if (!a->status) {
		say(why, whylen, "no answer from the server: %s", a->err);
		rc = SG_EIO;
	}
out:
	if (text) {
		sg_memzero(text, strlen(text));
		free(text);
	}
	if (http)
		sg_httpc_free(http);
	if (loop)
		evloop_free(loop);
	return rc;
}

/* The server's refusal as an sg_result, its problem document's detail in why. */
static sg_result refused(const struct answer *a, char *why, size_t whylen)
{
	const char *detail = json_string_value(json_object_get(a->body, "detail"));
	say(why, whylen, "%s (HTTP %ld)", detail ? detail : "refused", a->status);
	switch (a->status) {
	case 400: return SG_EINVAL;
	case 401: return SG_EAUTH;
	case 403: return SG_EPERM;
	case 404: return SG_ENOENT;
	case 409: return SG_EEXIST;
	case 429: return SG_ELIMIT;
	case 503: return SG_EAGAIN;
	default: return SG_EIO;
	}
}

static sg_result open_post(const char *server_url, const char *ca_file, const char *path,
			   json_t *body, char *token, size_t token_len, int64_t *expires_at,
			   char *why, size_t whylen);

/* Wipes the string member k of a request object (a secret sent). */
static void wipe(json_t *body, const char *k)
{
	const char *v = json_string_value(json_object_get(body, k));

	if (v)
		sg_memzero((char *)v, strlen(v));
}

sg_result sg_session_open(const char *server_url, const char *ca_file, const char *client,
			  const char *email, const char *password, const char *code,
			  int duration_seconds, char *token, size_t token_len, int64_t *expires_at,
			  char *why, size_t whylen)
{
	json_t *body = NULL;
	sg_result rc;

	if (why && whylen)
		why[0] = 0;
	if (token && token_len)
		token[0] = 0;
	if (!server_url || !client || !email || !password || !code || !token || token_len < 2 ||
	    duration_seconds < 0) {
		say(why, whylen, "%s",
		    "server_url, client, email, password, code and a token buffer are required");
		return SG_EINVAL;
	}
	body = json_pack("{s:s,s:s,s:s,s:s}", "client", client, "email", email,
			 "password", password, "code", code);
	if (body && duration_seconds)
		json_object_set_new(body, "duration_seconds", json_integer(duration_seconds));
	if (!body) {
		say(why, whylen, "%s", "invalid UTF-8 in an argument, or out of memory");
		return SG_EINVAL;
	}
	rc = open_post(server_url, ca_file, "/api/vpn-sessions", body, token, token_len, expires_at,
		       why, whylen);
	/* The request object held the password and the code. */
	wipe(body, "password");
	wipe(body, "code");
	json_decref(body);
	return rc;
}

sg_result sg_session_open_oidc(const char *server_url, const char *ca_file, const char *client,
			       const char *oidc_code, const char *code_verifier,
			       const char *redirect_uri, const char *nonce, int duration_seconds,
			       char *token, size_t token_len, int64_t *expires_at, char *why,
			       size_t whylen)
{
	json_t *body;
	sg_result rc;

	if (why && whylen)
		why[0] = 0;
	if (token && token_len)
		token[0] = 0;
	if (!server_url || !client || !oidc_code || !code_verifier || !redirect_uri || !token ||
	    token_len < 2 || duration_seconds < 0) {
		say(why, whylen, "%s",
		    "server_url, client, oidc_code, code_verifier, redirect_uri and a token buffer "
		    "are required");
		return SG_EINVAL;
	}
	body = json_pack("{s:s,s:s,s:s,s:s}", "client", client, "oidc_code", oidc_code,
			 "code_verifier", code_verifier, "redirect_uri", redirect_uri);
	if (body && nonce)
		json_object_set_new(body, "nonce", json_string(nonce));
	if (body && duration_seconds)
		json_object_set_new(body, "duration_seconds", json_integer(duration_seconds));
	if (!body) {
		say(why, whylen, "%s", "invalid UTF-8 in an argument, or out of memory");
		return SG_EINVAL;
	}
	rc = open_post(server_url, ca_file, "/api/vpn-sessions/oidc", body, token, token_len,
		       expires_at, why, whylen);
	wipe(body, "code_verifier");
	json_decref(body);
	return rc;
}

/* POSTs an opening request and reads the session of its answer (201). */
static sg_result open_post(const char *server_url, const char *ca_file, const char *path,
			   json_t *body, char *token, size_t token_len, int64_t *expires_at,
			   char *why, size_t whylen)
{
	struct answer a = {0};
	const char *tok;
	sg_result rc = post(server_url, ca_file, path, body, &a, why, whylen);

	if (rc == SG_EOK && a.status != 201)
		rc = refused(&a, why, whylen);
	if (rc == SG_EOK) {
		tok = json_string_value(json_object_get(a.body, "session_token"));
		if (!tok) {
			say(why, whylen, "%s", "the server's answer has no session_token");
			rc = SG_EPARSE;
		} else if (strlen(tok) >= token_len) {
			say(why, whylen, "%s", "the token buffer is too small");
			rc = SG_ERANGE;
		} else {
			memcpy(token, tok, strlen(tok) + 1);
			if (expires_at)
				*expires_at = json_integer_value(json_object_get(a.body, "expires_at"));
			say(why, whylen, "session %s of client %s", jstr(a.body, "id"),
			    jstr(a.body, "client_name"));
		}
		if (tok)
			sg_memzero((char *)tok, strlen(tok));
	}
	json_decref(a.body);
	return rc;
}

sg_result sg_session_end(const char *server_url, const char *ca_file, const char *token, char *why,
			 size_t whylen)
{
	json_t *body;
	struct answer a = {0};
	sg_result rc;

	if (why && whylen)
		why[0] = 0;
	if (!server_url || !token) {
		say(why, whylen, "%s", "server_url and token are required");
		return SG_EINVAL;
	}
	body = json_pack("{s:s}", "session_token", token);
	if (!body)
		return SG_EINVAL;
	rc = post(server_url, ca_file, "/api/vpn-sessions/end", body, &a, why, whylen);
	if (rc == SG_EOK && a.status != 204)
		rc = refused(&a, why, whylen);
	json_decref(body);
	json_decref(a.body);
	return rc;
}
