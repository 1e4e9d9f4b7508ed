/* Fuzz target for the client address behind trusted proxies (src/server/proxy.c): the input,
 * up to its first NUL, in lines: the first is a --trusted-proxy list, the second the TCP peer,
 * each further one a header line, "x:VALUE" (X-Forwarded-For) or "f:VALUE" (Forwarded); both
 * header modes are run.
 *
 * Checks, besides ASan/UBSan: a refused list says why; the result is a NUL-terminated address
 * that parses back (or the peer as given, when the peer is not an address), and from an
 * untrusted peer it is the peer. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/proxy.h"
#include "server/srv_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXH 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1), *line[2 + MAXH], *p, err[256] = "";
	struct srv_kv h[MAXH];
	struct srv_proxies t;
	int n = 0, nh = 0;

	if (!in)
		return 0;
	memcpy(in, data, size);
	in[size] = 0;
	for (p = in; p && n < 2 + MAXH; n++) {
		line[n] = p;
		p = strchr(p, '\n');
		if (p)
			*p++ = 0;
	}
	memset(&t, 0, sizeof(t));
	if (n < 2 || srv_proxies_parse(&t, line[0], err, sizeof(err))) {
		if (n >= 2 && !err[0])
			abort();
		free(in);
		return 0;
	}
	if (t.n < 1 || t.n > SRV_PROXY_MAX)
		abort();
	for (int i = 2; i < n; i++) {
		if ((line[i][0] != 'x' && line[i][0] != 'f') || line[i][1] != ':')
			continue;
		h[nh].name = line[i][0] == 'x' ? "x-forwarded-for" : "forwarded";
		h[nh++].value = line[i] + 2;
	}
	for (int mode = 0; mode < 2; mode++) {
		char out[64], peer_only[64];
		uint8_t a[16];

		t.forwarded = mode;
		out[63] = 'X';
		srv_client_addr(&t, line[1], h, nh, out);
		if (!memchr(out, 0, sizeof(out)))
			abort();
		srv_client_addr(NULL, line[1], h, nh, peer_only);
		if (strncmp(peer_only, line[1], 63))
			abort();
		if (strcmp(out, peer_only) && inet_pton(AF_INET, out, a) != 1 &&
		    inet_pton(AF_INET6, out, a) != 1)
			abort();
	}
	free(in);
	return 0;
}
