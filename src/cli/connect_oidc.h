/* secureguard connect --oidc: a login through the management server's OpenID provider as a
 * native app (RFC 8252), and the parser of what the browser brings back to its loopback
 * listener (fed bytes, no I/O: fuzzed by tests/fuzz/fuzz_oidc_callback.c). */
#ifndef SG_CLI_CONNECT_OIDC_H
#define SG_CLI_CONNECT_OIDC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <secureguard/sg.h>

/* The redirect's query (RFC 6749 section 4.1.2 and 4.1.2.1), percent-decoded. */
struct cli_oidc_cb {
	char code[256], state[128], error[64], desc[256];
	bool has_code, has_state, has_error, has_desc;
};

/* The request line of the browser's request in buf (len bytes so far): 1 when it is a GET of
 * path with its query in cb; 0 when the line is not complete yet; -1 when it is something else
 * (another path, another method, a malformed or repeated parameter, a value too long), *why
 * saying which. */
int cli_oidc_callback_parse(const char *buf, size_t len, const char *path, struct cli_oidc_cb *cb,
			    const char **why);

/* The whole login: a listener on 127.0.0.1 (an ephemeral port), the authorization URL printed
 * (and opened with xdg-open unless no_browser), the browser's return awaited for timeout_s
 * seconds (a request with another state is answered 400 and ignored), then the code redeemed
 * with sg_session_open_oidc. Results as sg_session_open; SG_EAGAIN when no browser came back in
 * time; SG_EPERM also when the provider denied the login (no second factor). */
sg_result cli_connect_oidc(const char *server, const char *ca_file, const char *client,
			   int duration_seconds, bool no_browser, int timeout_s, char *token,
			   size_t token_len, int64_t *expires_at, char *why, size_t whylen);

#endif
