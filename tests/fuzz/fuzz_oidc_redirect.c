/* Fuzz target for the OpenID provider's redirect URI check (src/server/routes_oidc.c,
 * srv_oidc_redirect_ok): the input, up to its first NUL, is a redirect_uri; the client's
 * domains are app.example.com and *.w.example.com.
 *
 * Checks, besides ASan/UBSan: an accepted URI is http(s), its host is one of the domains (or
 * one label under the wildcard) and its path exactly the gateway's callback, with no query,
 * fragment or user information: a code never goes anywhere else. The same input as a loopback
 * redirect URI of secureguard-cli (srv_oidc_loopback_ok, RFC 8252 section 7.3): an accepted one
 * is http on 127.0.0.1 or [::1], a port of 1..65535, a path, and nothing else. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/srv_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const domains[] = {"app.example.com", "*.w.example.com"};
	char *uri = malloc(size + 1), *host, *end;

	if (!uri)
		return 0;
	memcpy(uri, data, size);
	uri[size] = 0;
	if (srv_oidc_loopback_ok(uri)) {
		const char *p = !strncmp(uri, "http://127.0.0.1:", 17) ? uri + 17
				: !strncmp(uri, "http://[::1]:", 13)   ? uri + 13
								       : NULL;
		char *e;
		long port;

		if (!p || strpbrk(uri, "?#@%\\ "))
			abort();
		port = strtol(p, &e, 10);
		if (port < 1 || port > 65535 || *e != '/' || *p == '0')
			abort();
	}
	if (srv_oidc_redirect_ok(uri, domains, 2)) {
		host = strstr(uri, "://");
		if ((strncmp(uri, "https://", 8) && strncmp(uri, "http://", 7)) || !host ||
		    strpbrk(uri, "?#@"))
			abort();
		host += 3;
		end = strchr(host, '/');
		if (!end || strcmp(end, "/.sg/oidc/callback"))
			abort();
		*end = 0;
		if (strchr(host, ':'))
			*strchr(host, ':') = 0;
		if (strcasecmp(host, "app.example.com")) {
			size_t n = strlen(host);
			const char *dot = strchr(host, '.');

			if (n <= 14 || !dot || dot == host || strcasecmp(dot, ".w.example.com"))
				abort();
		}
	}
	free(uri);
	return 0;
}
