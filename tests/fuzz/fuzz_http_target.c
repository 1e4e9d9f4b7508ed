/* Fuzz target for the management server's request-target decoding (src/server/http.c,
 * srv_http_decode_target): the input, up to its first NUL, is a request target as it comes off
 * the wire ("/api/clients?name=a%20b&limit=5").
 *
 * Checks, besides ASan/UBSan: an accepted target yields path segments and query pairs that are
 * NUL-free UTF-8, with no query name twice; a refused one yields a 4xx problem document
 * (RFC 9457: type, title, status, detail) that is valid JSON. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/audit.h"
#include "server/srv_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *target = malloc(size + 1);
	struct srv_req r;
	struct srv_resp out;
	struct srv_target t;

	if (!target)
		return 0;
	memcpy(target, data, size);
	target[size] = 0;
	memset(&r, 0, sizeof(r));
	memset(&out, 0, sizeof(out));
	r.target = target;
	if (srv_http_decode_target(&r, &out, &t)) {
		if (out.status)
			abort();
		for (int i = 0; i < t.nseg; i++) {
			if (!sg_utf8_valid(t.seg[i], strlen(t.seg[i])))
				abort();
		}
		for (int i = 0; i < r.nquery; i++) {
			if (!r.query[i].name[0] ||
			    !sg_utf8_valid(r.query[i].name, strlen(r.query[i].name)) ||
			    !sg_utf8_valid(r.query[i].value, strlen(r.query[i].value)))
				abort();
			for (int j = 0; j < i; j++) {
				if (!strcmp(r.query[i].name, r.query[j].name))
					abort();
			}
		}
	} else {
		json_t *j = json_loadb(out.body, out.len, 0, NULL);

		if (out.status < 400 || out.status > 499 || !j ||
		    !json_is_string(json_object_get(j, "detail")) ||
		    json_integer_value(json_object_get(j, "status")) != out.status ||
		    strcmp(out.ctype, "application/problem+json"))
			abort();
		json_decref(j);
	}
	srv_resp_clear(&out);
	free(r.decoded);
	free(target);
	return 0;
}
