/* Fuzz target for the management server's form bodies (src/server/http.c, srv_http_form: the
 * OpenID provider's login form and token requests, application/x-www-form-urlencoded).
 *
 * Checks, besides ASan/UBSan: an accepted body yields an object of strings with non-empty
 * names, all valid UTF-8 without NUL; a refused one a 400 problem document that is valid JSON. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/audit.h"
#include "server/srv_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct srv_resp out;
	json_t *o, *v;
	const char *k;

	memset(&out, 0, sizeof(out));
	o = srv_http_form((const char *)data, size, &out);
	if (o) {
		if (out.status || !json_is_object(o))
			abort();
		json_object_foreach(o, k, v)
		{
			const char *s = json_string_value(v);

			if (!k[0] || !s || !sg_utf8_valid(k, strlen(k)) ||
			    !sg_utf8_valid(s, strlen(s)) || json_string_length(v) != strlen(s))
				abort();
		}
		json_decref(o);
	} else {
		json_t *j = json_loadb(out.body, out.len, 0, NULL);

		if (out.status != 400 && out.status != 503)
			abort();
		if (!j || !json_is_string(json_object_get(j, "detail")))
			abort();
		json_decref(j);
	}
	srv_resp_clear(&out);
	return 0;
}
