/* secureguard connect --oidc: an MFA-gated VPN session opened with a login through the
 * management server's OpenID provider (docs/SERVER.md "VPN sessions through the OpenID
 * provider"), as a native app does it (RFC 8252):
 *
 *   1. a listener on 127.0.0.1 and an ephemeral port: the redirect URI
 *      http://127.0.0.1:PORT/callback (section 7.3; the server allows any port);
 *   2. the authorization request in the user's browser (section 6: the system browser, never
 *      an embedded one): client_id secureguard-cli, PKCE S256 (RFC 7636), a state and a nonce,
 *      each 128 bits or more from the CSPRNG; printed, and opened with xdg-open unless
 *      --no-browser (a browser on another machine cannot reach the listener: then use the
 *      password and code instead);
 *   3. the login page asks the account's password and second factor (TOTP or a passkey); the
 *      browser comes back with a code and the state. A request with another state is answered
 *      400 and ignored (RFC 6749 section 10.12: not ours), the wait goes on;
 *   4. the code, its verifier, the redirect URI and the nonce go to POST /api/vpn-sessions/oidc
 *      (sg_session_open_oidc), the browser is told the outcome.
 *
 * The verifier never leaves this process but for that POST, and is wiped after. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/connect_oidc.h"
#include "crypto/crypto.h"

#define CALLBACK_PATH "/callback"
#define CLIENT_ID     "secureguard-cli"
#define REQ_WAIT_MS   5000 /* for one browser request's line, once connected */

extern char **environ;

static void b64url(char *out, const uint8_t *in, size_t n)
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
			     (i + 2 < n ? in[i + 2] : 0);

		out[o++] = al[v >> 18 & 63];
		out[o++] = al[v >> 12 & 63];
		if (i + 1 < n)
			out[o++] = al[v >> 6 & 63];
		if (i + 2 < n)
			out[o++] = al[v & 63];
	}
	out[o] = 0;
}

/* n random bytes as base64url into out (4 * n / 3 + 2 bytes). */
static bool random_b64url(char *out, size_t n)
{
	uint8_t b[48];

	if (n > sizeof(b) || !sg_random_bytes(b, n))
		return false;
	b64url(out, b, n);
	sg_memzero(b, sizeof(b));
	return true;
}

static void pct(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    strchr("-._~", *p))
			fputc(*p, f);
		else
			fprintf(f, "%%%02X", *p);
	}
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Answers the browser and closes: a small page that loads nothing. */
static void reply(int fd, int status, const char *title, const char *text)
{
	char body[1024], head[512];
	int bl = snprintf(body, sizeof(body),
			  "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
			  "<title>%s</title></head><body><h1>%s</h1><p>%s</p></body></html>\n",
			  title, title, text);
	int hl;

	if (bl < 0 || (size_t)bl >= sizeof(body))
		bl = 0;
	hl = snprintf(head, sizeof(head),
		      "HTTP/1.1 %d %s\r\nContent-Type: text/html; charset=utf-8\r\n"
		      "Content-Security-Policy: default-src 'none'\r\nReferrer-Policy: no-referrer\r\n"
		      "Cache-Control: no-store\r\nConnection: close\r\nContent-Length: %d\r\n\r\n",
		      status, status == 200 ? "OK" : status == 404 ? "Not Found" : "Bad Request", bl);
	if (send(fd, head, (size_t)hl, MSG_NOSIGNAL) == hl && bl)
		(void)send(fd, body, (size_t)bl, MSG_NOSIGNAL);
	close(fd);
}

/* Reads one browser request's line from fd (bounded in size and time) into cb: 1 parsed, else
 * answered and closed (-1). */
static int read_request(int fd, struct cli_oidc_cb *cb)
{
	char buf[4200];
	size_t len = 0;
	int64_t end = now_ms() + REQ_WAIT_MS;
	const char *why = "no request";
	int rc = 0;

	while (rc == 0 && len < sizeof(buf) - 1) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int64_t left = end - now_ms();
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
		rc = cli_oidc_callback_parse(buf, len, CALLBACK_PATH, cb, &why);
	}
	sg_memzero(buf, sizeof(buf));
	if (rc == 1)
		return 1;
	if (rc == 0)
		why = "no complete request";
	reply(fd, strcmp(why, "another path") ? 400 : 404, "Not here",
	      "This is secureguard connect's sign-in listener.");
	return -1;
}

static void start_browser(const char *url)
{
	posix_spawn_file_actions_t fa;
	char *argv[] = {"xdg-open", (char *)url, NULL};
	pid_t pid;
	int err;

	if (posix_spawn_file_actions_init(&fa))
		return;
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	err = posix_spawnp(&pid, "xdg-open", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (err)
		fprintf(stderr, "%s: xdg-open: %s: open the address yourself\n", CLI_PROG,
			strerror(err));
	/* Not waited for: it may stay as long as the browser it started; it is reaped when this
	 * process ends. */
}

/* The authorization request's URL (malloc'd). */
static char *authorize_url(const char *server, const char *redirect, const char *state,
			   const char *nonce, const char *challenge)
{
	char *url = NULL;
	size_t n = strlen(server), len = 0;
	FILE *f = open_memstream(&url, &len);

	if (!f)
		return NULL;
	while (n && server[n - 1] == '/')
		n--;
	fprintf(f, "%.*s/oauth2/authorize?response_type=code&client_id=" CLIENT_ID "&redirect_uri=",
		(int)n, server);
	pct(f, redirect);
	fprintf(f, "&scope=openid&state=%s&nonce=%s&code_challenge=%s&code_challenge_method=S256",
		state, nonce, challenge);
	if (fclose(f)) {
		free(url);
		return NULL;
	}
	return url;
}

sg_result cli_connect_oidc(const char *server, const char *ca_file, const char *client,
			   int duration_seconds, bool no_browser, int timeout_s, char *token,
			   size_t token_len, int64_t *expires_at, char *why, size_t whylen)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	char verifier[72], challenge[48], state[32], nonce[32], redirect[64], *url = NULL;
	uint8_t h[SG_SHA256_LEN];
	struct cli_oidc_cb cb;
	int64_t end = now_ms() + (int64_t)timeout_s * 1000;
	sg_result rc = SG_EIO;
	int lfd;

	memset(&cb, 0, sizeof(cb));
	snprintf(why, whylen, "%s", "");
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 8) ||
	    getsockname(lfd, (struct sockaddr *)&sa, &sl)) {
		snprintf(why, whylen, "a listener on 127.0.0.1: %s", strerror(errno));
		goto out;
	}
	snprintf(redirect, sizeof(redirect), "http://127.0.0.1:%u" CALLBACK_PATH,
		 (unsigned)ntohs(sa.sin_port));
	/* RFC 7636 section 4.1: 32 random bytes make a 43-character verifier. */
	if (!random_b64url(verifier, 32) || !random_b64url(state, 16) ||
	    !random_b64url(nonce, 16) ||
	    !sg_sha256(h, &(struct sg_iov){verifier, strlen(verifier)}, 1)) {
		snprintf(why, whylen, "%s", "no randomness or SHA-256");
		rc = SG_ECRYPTO;
		goto out;
	}
	b64url(challenge, h, sizeof(h));
	url = authorize_url(server, redirect, state, nonce, challenge);
	if (!url) {
		rc = SG_ENOMEM;
		goto out;
	}
	fprintf(stderr, "To sign in, open this address in a browser on this machine:\n\n  %s\n\n",
		url);
	fflush(stderr);
	if (!no_browser)
		start_browser(url);
	for (;;) {
		struct pollfd p = {.fd = lfd, .events = POLLIN};
		int64_t left = end - now_ms();
		int fd;

		if (left <= 0) {
			snprintf(why, whylen, "no browser came back to %s within %d s", redirect,
				 timeout_s);
			rc = SG_EAGAIN;
			goto out;
		}
		if (poll(&p, 1, (int)(left > 60000 ? 60000 : left)) <= 0)
			continue;
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0 || read_request(fd, &cb) != 1)
			continue;
		/* RFC 6749 section 10.12: a response without our state is not for us. */
		if (!cb.has_state || strcmp(cb.state, state)) {
			reply(fd, 400, "Not this sign-in",
			      "The state does not match the sign-in secureguard connect started: "
			      "ignored.");
			fprintf(stderr, "%s: ignored a request to the listener with another state\n",
				CLI_PROG);
			sg_memzero(&cb, sizeof(cb));
			continue;
		}
		if (cb.has_error) {
			snprintf(why, whylen, "the sign-in was refused: %s%s%s", cb.error,
				 cb.has_desc ? ": " : "", cb.desc);
			rc = strcmp(cb.error, "access_denied") ? SG_EAUTH : SG_EPERM;
			reply(fd, 200, "Not signed in",
			      "The server refused the sign-in: see the terminal.");
			goto out;
		}
		rc = sg_session_open_oidc(server, ca_file, client, cb.code, verifier, redirect, nonce,
					  duration_seconds, token, token_len, expires_at, why,
					  whylen);
		reply(fd, 200, rc == SG_EOK ? "Signed in" : "Not connected",
		      rc == SG_EOK ? "The VPN session is open: you can close this tab."
				   : "The session could not be opened: see the terminal.");
		goto out;
	}
out:
	sg_memzero(verifier, sizeof(verifier));
	sg_memzero(&cb, sizeof(cb));
	free(url);
	if (lfd >= 0)
		close(lfd);
	return rc;
}
