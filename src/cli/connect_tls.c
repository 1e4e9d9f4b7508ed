/* secureguard connect --tls-token-out FILE: the session's TLS session token (docs/TLS.md,
 * "Session tokens") fetched with the session token that connect just got (POST
 * /api/vpn-sessions/tls-token) and written where the client's config points TlsSessionToken.
 * The file is written beside FILE (0600) and renamed over it, so the daemon, which watches it,
 * never reads half a token. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/api.h"
#include "cli/cli.h"
#include "common/file.h"
#include "crypto/crypto.h"

bool cli_connect_write_tls_token(const char *server, const char *ca, const char *session_token,
				 const char *path)
{
	struct cli_api a = {0};
	struct cli_api_call c = {0};
	char why[300], *line = NULL;
	const char *tok = NULL;
	size_t n = 0;
	bool ok = false;
	int e;

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
	n = strlen(tok) + 1;
	if ((line = malloc(n)) == NULL) {
		fprintf(stderr, "%s: out of memory\n", CLI_PROG);
		goto out;
	}
	memcpy(line, tok, n - 1);
	line[n - 1] = '\n';
	e = sg_file_replace(path, line, n, 0600);
	if (e) {
		fprintf(stderr, "%s: %s: %s\n", CLI_PROG, path, strerror(e));
		goto out;
	}
	printf("TLS session token written to %s\n", path);
	ok = true;
out:
	if (tok)
		sg_memzero((char *)tok, strlen(tok));
	if (line) {
		sg_memzero(line, n);
		free(line);
	}
	json_decref(c.body);
	cli_api_close(&a);
	return ok;
}
