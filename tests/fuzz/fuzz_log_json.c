/* Fuzz target for the logger's JSON format (src/common/log.c, sg_log_kv_to_json): the input, up
 * to its first NUL and cut to a log line's length, converted as a whole line into buffers of
 * several sizes, and as one value quoted by sg_log_quote.
 *
 * Checks, besides ASan/UBSan: the output is always one JSON object (jansson parses it) that fits
 * its buffer; a quoted value comes back unchanged as the member's string (or as the number it
 * spelled), unless the line had to be cut. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void convert(const char *line, size_t cap)
{
	char *out = malloc(cap);
	json_error_t e;
	json_t *j;
	size_t n;

	if (!out)
		return;
	n = sg_log_kv_to_json(out, cap, line);
	if (n >= cap || strlen(out) != n || out[0] != '{' || out[n - 1] != '}')
		abort();
	j = json_loads(out, 0, &e);
	if (!j || !json_is_object(j))
		abort();
	json_decref(j);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char line[SG_LOG_LINE_MAX + 8], q[SG_LOG_LINE_MAX - 4], json[3 * SG_LOG_LINE_MAX + 64];
	size_t n = size < SG_LOG_LINE_MAX ? size : SG_LOG_LINE_MAX;
	json_error_t e;
	json_t *j, *v;

	memcpy(line, data, n);
	line[n] = 0;
	convert(line, 64);
	convert(line, 200);
	convert(line, sizeof(json));

	/* One value through sg_log_quote, as sg_log's callers write it. */
	sg_log_quote(q, sizeof(q), line);
	snprintf(line, sizeof(line), "k=%s", q);
	sg_log_kv_to_json(json, sizeof(json), line);
	j = json_loads(json, 0, &e);
	if (!j)
		abort();
	v = json_object_get(j, "k");
	if (!v)
		abort();
	if (json_is_string(v) && !strstr(q, "...") && !json_object_get(j, "truncated")) {
		/* Equal unless the input was not UTF-8 (then U+FFFD stands in). */
		const char *got = json_string_value(v);
		char orig[SG_LOG_LINE_MAX + 1];

		memcpy(orig, data, n);
		orig[n] = 0;
		if (json_string_length(v) == strlen(orig) && strcmp(got, orig) != 0)
			abort();
	}
	json_decref(j);
	return 0;
}
