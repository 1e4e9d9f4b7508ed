/* secureguard connect --tls-token-out FILE: the session's TLS session token (docs/TLS.md,
 * "Session tokens") fetched with the session token that connect just got (POST
 * /api/vpn-sessions/tls-token) and written where the client's config points TlsSessionToken.
 * The file is written beside FILE (0600) and renamed over it, so the daemon, which watches it,
 * never reads half a token. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/api.h"
#include "cli/cli.h"
#include "crypto/crypto.h"

bool cli_connect_write_tls_token(const char *server, const char *ca, const char *session_token,
				 const char *path)
{
	struct cli_api a = {0};
	struct cli_api_call c = {0};
	char tmp[1100], why[300];
	const char *tok = NULL;
	bool ok = false;
	int fd = -1;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		fprintf(stderr, "%s: --tls-token-out: path too long\n", CLI_PROG);
		return false;
	}
	if (!cli_api_open(&a, server, ca)) {
		fprintf(stderr, "%s: connect: cannot start the HTTP client\n", CLI_PROG);
		goto out;
	}
	json_t *req = json_pack("{s:s}", "session_token", session_token);
	long st = req ? cli_api_call(&a, "POST", "/api/vpn-sessions/tls-token", req, &c) : 0;
	json_decref(req);
	tok = json_string_value(json_object_get(c.body, "tls_session_token"));
	if (st != 200 || !tok) {
		cli_api_complaint(why, sizeof(why), &c);
		fprintf(stderr, "%s: connect: no TLS session token: %s\n", CLI_PROG, why);
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, tok, strlen(tok)) != (ssize_t)strlen(tok) ||
	    write(fd, "\n", 1) != 1 || fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
		fprintf(stderr, "%s: %s: %s\n", CLI_PROG, path, strerror(errno));
		if (fd >= 0)
			(void)unlink(tmp);
		fd = -1;
		goto out;
	}
	printf("TLS session token written to %s\n", path);
	ok = true;
out:
	if (tok)
		sg_memzero((char *)tok, strlen(tok));
	json_decref(c.body);
	cli_api_close(&a);
	return ok;
}
