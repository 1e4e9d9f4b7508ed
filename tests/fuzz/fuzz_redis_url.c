/* Fuzz target for the --redis URL parser (src/server/redis.c, srv_redis_url_parse): the input,
 * up to its first NUL, as a URL.
 *
 * Checks, besides ASan/UBSan: a refusal says why and leaves no password behind; an accepted URL
 * has a host, a port of 1..65535, a database of 0..1023, strings within their fields, and TLS
 * files only with rediss://. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/redis.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1);
	struct srv_redis_url u;
	const char *why = NULL;
	long port;

	if (!in)
		return 0;
	memcpy(in, data, size);
	in[size] = 0;
	if (srv_redis_url_parse(in, &u, &why)) {
		if (!why || !*why)
			abort();
		free(in);
		return 0;
	}
	port = strtol(u.port, NULL, 10);
	if (!u.host[0] || port < 1 || port > 65535 || u.db < 0 || u.db > 1023)
		abort();
	if (strnlen(u.host, sizeof(u.host)) == sizeof(u.host) ||
	    strnlen(u.user, sizeof(u.user)) == sizeof(u.user) ||
	    strnlen(u.password, sizeof(u.password)) == sizeof(u.password) ||
	    strnlen(u.ca, sizeof(u.ca)) == sizeof(u.ca))
		abort();
	if (!u.tls && (u.ca[0] || u.cert[0] || u.key[0]))
		abort();
	if (u.user[0] && !u.password[0])
		abort();
	free(in);
	return 0;
}
