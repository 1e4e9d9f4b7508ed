/* The parser of the browser's return to `secureguard connect --oidc`'s loopback listener
 * (RFC 8252 section 7.3): "GET /callback?code=...&state=... HTTP/1.1". Only the request line
 * matters; it is bounded (4 KiB), and every value is percent-decoded into a fixed buffer. */
#include <string.h>

#include "cli/connect_oidc.h"
#include "common/bytes.h"

#define LINE_MAX_LEN 4096

/* Decodes s[0..n) (application/x-www-form-urlencoded: '+' is a space) into out; false when it
 * does not fit, has a bad escape or decodes to a NUL or a control character. */
static bool decode(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			int hi = i + 2 < n ? sg_hexval(s[i + 1]) : -1;
			int lo = i + 2 < n ? sg_hexval(s[i + 2]) : -1;

			if (hi < 0 || lo < 0)
				return false;
			c = hi * 16 + lo;
			i += 2;
		} else if (c == '+') {
			c = ' ';
		}
		if (c < 0x20 || c == 0x7f || o + 1 >= cap)
			return false;
		out[o++] = (char)c;
	}
	out[o] = 0;
	return true;
}

int cli_oidc_callback_parse(const char *buf, size_t len, const char *path, struct cli_oidc_cb *cb,
			    const char **why)
{
	const char *eol = memchr(buf, '\n', len < LINE_MAX_LEN ? len : LINE_MAX_LEN);
	const char *t, *end, *q;
	size_t pl = strlen(path);

	memset(cb, 0, sizeof(*cb));
	*why = NULL;
	if (!eol) {
		if (len < LINE_MAX_LEN)
			return 0;
		*why = "the request line is longer than 4 KiB";
		return -1;
	}
	if (len < 4 || memcmp(buf, "GET ", 4)) {
		*why = "not a GET";
		return -1;
	}
	t = buf + 4;
	end = memchr(t, ' ', (size_t)(eol - t));
	if (!end || (size_t)(eol - end) < 9 || memcmp(end, " HTTP/1.", 8)) {
		*why = "not an HTTP/1 request line";
		return -1;
	}
	q = memchr(t, '?', (size_t)(end - t));
	if ((size_t)((q ? q : end) - t) != pl || memcmp(t, path, pl)) {
		*why = "another path";
		return -1;
	}
	if (!q) {
		*why = "no query: neither code nor error";
		return -1;
	}
	for (q++; q < end;) {
		const char *amp = memchr(q, '&', (size_t)(end - q)), *eq;
		const char *stop = amp ? amp : end;
		struct {
			const char *name;
			char *out;
			size_t cap;
			bool *seen;
		} f[] = {{"code", cb->code, sizeof(cb->code), &cb->has_code},
			 {"state", cb->state, sizeof(cb->state), &cb->has_state},
			 {"error", cb->error, sizeof(cb->error), &cb->has_error},
			 {"error_description", cb->desc, sizeof(cb->desc), &cb->has_desc}};

		eq = memchr(q, '=', (size_t)(stop - q));
		for (size_t i = 0; eq && i < sizeof(f) / sizeof(f[0]); i++) {
			bool *seen = f[i].seen;

			if ((size_t)(eq - q) != strlen(f[i].name) || memcmp(q, f[i].name, (size_t)(eq - q)))
				continue;
			/* RFC 6749 section 3.1: a parameter must not be sent more than once. */
			if (*seen) {
				*why = "a repeated parameter";
				return -1;
			}
			if (!decode(eq + 1, (size_t)(stop - eq - 1), f[i].out, f[i].cap)) {
				*why = "a parameter too long or badly encoded";
				return -1;
			}
			*seen = true;
		}
		q = stop + (stop < end);
	}
	if (!cb->has_code && !cb->has_error) {
		*why = "neither code nor error";
		return -1;
	}
	return 1;
}
