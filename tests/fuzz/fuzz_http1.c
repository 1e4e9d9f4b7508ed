/* Fuzz target for the HTTP/1.1 parsing of the gateway and the server (src/net/http1.c). The first byte picks
 * what the rest is fed to:
 *   0: the request head parser: a head it accepts lies inside the input, its fields point
 *      into the head, and every shorter prefix is "incomplete" or the same error class;
 *   1: the response head parser (for GET and HEAD);
 *   2: the chunked decoder, whole and byte by byte: both see the same data and the same end;
 *   3: path normalization: the result is a fixed point and has no dot segments.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/http1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct sg_http_limits lim = {.max_head = 8192, .max_target = 2048, .max_headers = 64};

static void check_msg(const char *b, int n, const struct sg_http_msg *m)
{
	if (n <= 0)
		return;
	for (size_t i = 0; i < m->n_headers; i++) {
		const struct sg_http_header *h = &m->headers[i];
		if (h->name < b || h->name + h->name_len > b + n || h->value < b ||
		    h->value + h->value_len > b + n || h->name_len == 0)
			abort();
	}
	if (m->body == SG_HTTP_BODY_LENGTH && m->content_length == 0)
		abort();
}

static void fuzz_request(const char *b, size_t n)
{
	struct sg_http_msg m;
	const char *why = NULL;
	int rc = sg_http_parse_request(b, n, &lim, &m, &why);
	if (rc > (int)n)
		abort();
	if (rc < 0 && (!why || rc < -599 || rc > -400))
		abort();
	check_msg(b, rc, &m);
	if (rc > 0) {
		if (m.method_len == 0 || m.target_len == 0 || m.target_len > lim.max_target)
			abort();
		/* A shorter prefix of an accepted head is never accepted. */
		if (sg_http_parse_request(b, (size_t)rc - 1, &lim, &m, &why) > 0)
			abort();
	}
}

static void fuzz_response(const char *b, size_t n)
{
	struct sg_http_msg m;
	const char *why = NULL;
	for (int k = 0; k < 2; k++) {
		int rc = sg_http_parse_response(b, n, &lim, k ? SG_HTTP_M_HEAD : SG_HTTP_M_GET, &m, &why);
		if (rc > (int)n || (rc < 0 && (rc != -502 || !why)))
			abort();
		check_msg(b, rc, &m);
		if (rc > 0 && (m.status < 100 || m.status > 599 ||
			       (k == 1 && m.body != SG_HTTP_BODY_NONE)))
			abort();
	}
}

static int decode(const uint8_t *b, size_t n, size_t step, uint8_t *out, size_t *olen,
		  size_t *end)
{
	struct sg_http_chunked c;
	memset(&c, 0, sizeof(c));
	size_t pos = 0;
	*olen = 0;
	while (pos < n) {
		size_t len = n - pos < step ? n - pos : step;
		size_t used, dl;
		const uint8_t *d;
		const char *why;
		int rc = sg_http_chunked_feed(&c, b + pos, len, &used, &d, &dl, &why);
		if (rc < 0) {
			if (!why)
				abort();
			return -1;
		}
		if (used > len || (dl && (d < b + pos || d + dl > b + pos + used)))
			abort();
		if (dl)
			memcpy(out + *olen, d, dl);
		*olen += dl;
		pos += used;
		if (rc == 1) {
			*end = pos;
			return 1;
		}
		if (used == 0 && len)
			abort(); /* no progress on non-empty input */
	}
	*end = pos;
	return 0;
}

static void fuzz_chunked(const uint8_t *b, size_t n)
{
	uint8_t *o1 = malloc(n + 1), *o2 = malloc(n + 1);
	size_t l1, l2, e1, e2;
	if (!o1 || !o2)
		abort();
	int r1 = decode(b, n, n ? n : 1, o1, &l1, &e1);
	int r2 = decode(b, n, 1, o2, &l2, &e2);
	if (r1 != r2 || (r1 >= 0 && (l1 != l2 || e1 != e2 || memcmp(o1, o2, l1) != 0)))
		abort();
	free(o1);
	free(o2);
}

static void fuzz_path(const char *b, size_t n)
{
	char out[4096], again[4096];
	int rc = sg_http_normalize_path(b, n, out, sizeof(out));
	if (rc < 0)
		return;
	if (out[0] != '/' || strlen(out) != (size_t)rc)
		abort();
	if (strstr(out, "/./") || strstr(out, "/../"))
		abort();
	int rc2 = sg_http_normalize_path(out, (size_t)rc, again, sizeof(again));
	if (rc2 != rc || memcmp(out, again, (size_t)rc) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *b = (const char *)data + 1;
	size_t n = size - 1;
	switch (data[0] % 4) {
	case 0:
		fuzz_request(b, n);
		break;
	case 1:
		fuzz_response(b, n);
		break;
	case 2:
		fuzz_chunked(data + 1, n);
		break;
	default:
		fuzz_path(b, n);
		break;
	}
	return 0;
}
