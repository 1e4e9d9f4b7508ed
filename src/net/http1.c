/* Strict HTTP/1.1 head parser and chunked decoder; see http1.h. Grammar references are to
 * RFC 9112 (message syntax) and RFC 9110 (semantics). */
#include "net/http1.h"

#include <string.h>

#include "common/bytes.h"

/* tchar (RFC 9110 section 5.6.2). */
static bool is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	switch (c) {
	case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
	case '-': case '.': case '^': case '_': case '`': case '|': case '~':
		return true;
	default:
		return false;
	}
}

/* field-vchar / SP / HTAB (RFC 9110 section 5.5), obs-text allowed. */
static bool is_value_char(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static char lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

static bool ieqn(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (lower(a[i]) != lower(b[i]))
			return false;
	return true;
}

bool sg_http_ieq(const char *a, size_t alen, const char *b)
{
	return alen == strlen(b) && ieqn(a, b, alen);
}

const struct sg_http_header *sg_http_find(const struct sg_http_msg *msg, const char *name)
{
	for (size_t i = 0; i < msg->n_headers; i++)
		if (sg_http_ieq(msg->headers[i].name, msg->headers[i].name_len, name))
			return &msg->headers[i];
	return NULL;
}

/* Calls fn for each comma-separated element of a field value (RFC 9110 section 5.6.1),
 * trimmed; empty elements are skipped. Stops when fn returns false. */
typedef bool (*elem_fn)(void *ctx, const char *s, size_t n);
static bool each_elem(const char *v, size_t n, elem_fn fn, void *ctx)
{
	size_t i = 0;
	while (i < n) {
		size_t s = i;
		while (i < n && v[i] != ',')
			i++;
		size_t e = i;
		while (s < e && (v[s] == ' ' || v[s] == '\t'))
			s++;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e > s && !fn(ctx, v + s, e - s))
			return false;
		i++;
	}
	return true;
}

struct conn_tokens {
	bool close, keep_alive, upgrade;
};

static bool conn_token(void *ctx, const char *s, size_t n)
{
	struct conn_tokens *t = ctx;
	if (sg_http_ieq(s, n, "close"))
		t->close = true;
	else if (sg_http_ieq(s, n, "keep-alive"))
		t->keep_alive = true;
	else if (sg_http_ieq(s, n, "upgrade"))
		t->upgrade = true;
	return true;
}

struct name_match {
	const char *name;
	size_t len;
	bool found;
};

static bool match_token(void *ctx, const char *s, size_t n)
{
	struct name_match *m = ctx;
	if (n == m->len && ieqn(s, m->name, n)) {
		m->found = true;
		return false;
	}
	return true;
}

bool sg_http_hop_by_hop(const struct sg_http_msg *msg, const struct sg_http_header *h)
{
	(void)msg;
	return h->hop;
}

static const struct {
	const char *name;
	uint8_t len, id;
	bool hop; /* RFC 9110 section 7.6.1 */
} known_fields[] = {
    {"host", 4, SG_HF_HOST, false},
    {"content-length", 14, SG_HF_CONTENT_LENGTH, false},
    {"transfer-encoding", 17, SG_HF_TRANSFER_ENCODING, true},
    {"connection", 10, SG_HF_CONNECTION, true},
    {"upgrade", 7, SG_HF_UPGRADE, true},
    {"expect", 6, SG_HF_EXPECT, false},
    {"cookie", 6, SG_HF_COOKIE, false},
    {"authorization", 13, SG_HF_AUTHORIZATION, false},
    {"keep-alive", 10, SG_HF_KEEP_ALIVE, true},
    {"proxy-connection", 16, SG_HF_PROXY_CONNECTION, true},
    {"te", 2, SG_HF_TE, true},
    {"trailer", 7, SG_HF_TRAILER, true},
    {"proxy-authenticate", 18, SG_HF_PROXY_AUTHENTICATE, true},
    {"proxy-authorization", 19, SG_HF_PROXY_AUTHORIZATION, true},
};

static void classify(struct sg_http_header *h)
{
	h->id = SG_HF_OTHER;
	h->hop = false;
	for (size_t i = 0; i < SG_ARRAY_LEN(known_fields); i++)
		if (known_fields[i].len == h->name_len && ieqn(h->name, known_fields[i].name, h->name_len)) {
			h->id = known_fields[i].id;
			h->hop = known_fields[i].hop;
			return;
		}
}

/* A Connection token names a field to be removed as well (RFC 9110 section 7.6.1). */
static bool mark_hop(void *ctx, const char *s, size_t n)
{
	struct sg_http_msg *msg = ctx;
	for (size_t i = 0; i < msg->n_headers; i++) {
		struct sg_http_header *h = &msg->headers[i];
		if (!h->hop && n == h->name_len && ieqn(h->name, s, n))
			h->hop = true;
	}
	return true;
}

static const struct {
	const char *name;
	enum sg_http_method id;
} methods[] = {
    {"GET", SG_HTTP_M_GET},	       {"HEAD", SG_HTTP_M_HEAD},   {"POST", SG_HTTP_M_POST},
    {"PUT", SG_HTTP_M_PUT},	       {"DELETE", SG_HTTP_M_DELETE}, {"OPTIONS", SG_HTTP_M_OPTIONS},
    {"TRACE", SG_HTTP_M_TRACE},     {"PATCH", SG_HTTP_M_PATCH}, {"CONNECT", SG_HTTP_M_CONNECT},
};

static enum sg_http_method method_id(const char *s, size_t n)
{
	/* Methods are case-sensitive (RFC 9110 section 9.1). */
	for (size_t i = 0; i < SG_ARRAY_LEN(methods); i++)
		if (strlen(methods[i].name) == n && memcmp(methods[i].name, s, n) == 0)
			return methods[i].id;
	return SG_HTTP_M_OTHER;
}

/* Finds the end of the head: the first empty line. Checks that every CR is followed by LF and
 * that there is no LF without CR. Returns the head length, 0 if not there yet, -1 on a bare
 * CR/LF (with *at its offset). */
static long find_head_end(const char *b, size_t len, size_t start, size_t *at)
{
	size_t line_start = start;
	for (size_t i = start; i < len; i++) {
		if (b[i] == '\n') {
			*at = i;
			return -1;
		}
		if (b[i] != '\r')
			continue;
		if (i + 1 >= len)
			return 0;
		if (b[i + 1] != '\n') {
			*at = i;
			return -1;
		}
		if (i == line_start && i != start)
			return (long)(i + 2);
		line_start = i + 2;
		i++;
	}
	return 0;
}

static bool all_digits(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* Parses the fields from p (just after the start line's CRLF) to end (the final CRLF's start)
 * and derives the body framing. is_req selects request rules. Returns 0 or -status. */
static int parse_fields(const char *p, const char *end, const struct sg_http_limits *lim,
			struct sg_http_msg *msg, bool is_req, bool no_body, int bad, const char **why)
{
	struct conn_tokens ct = {0};
	bool have_cl = false, have_te = false, te_chunked = false, have_host = false;
	bool have_upgrade_ws = false, have_conn = false;
	size_t max_headers = lim->max_headers;
	if (max_headers == 0 || max_headers > SG_HTTP_MAX_HEADERS)
		max_headers = SG_HTTP_MAX_HEADERS;

	msg->n_headers = 0;
	while (p < end) {
		const char *eol = memchr(p, '\r', (size_t)(end - p));
		/* find_head_end guaranteed CRLF pairs; eol is within [p, end]. */
		if (p[0] == ' ' || p[0] == '\t') {
			*why = "obsolete line folding (a field line starts with whitespace)";
			return -bad;
		}
		const char *colon = p;
		while (colon < eol && is_tchar((unsigned char)*colon))
			colon++;
		if (colon == p || colon == eol || *colon != ':') {
			*why = (colon < eol && (*colon == ' ' || *colon == '\t'))
				   ? "whitespace between a field name and its colon"
				   : "malformed field line (no token name followed by ':')";
			return -bad;
		}
		if (msg->n_headers >= max_headers) {
			*why = "too many header fields";
			return is_req ? -431 : -bad;
		}
		const char *v = colon + 1, *ve = eol;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		for (const char *q = v; q < ve; q++)
			if (!is_value_char((unsigned char)*q)) {
				*why = "control character in a field value";
				return -bad;
			}
		struct sg_http_header *h = &msg->headers[msg->n_headers++];
		h->name = p;
		h->name_len = (size_t)(colon - p);
		h->value = v;
		h->value_len = (size_t)(ve - v);
		classify(h);

		if (h->id == SG_HF_CONTENT_LENGTH) {
			if (have_cl) {
				*why = "more than one Content-Length";
				return -bad;
			}
			have_cl = true;
			if (!all_digits(h->value, h->value_len) || h->value_len > 15) {
				*why = "Content-Length is not a plain decimal number";
				return -bad;
			}
			uint64_t n = 0;
			for (size_t i = 0; i < h->value_len; i++)
				n = n * 10 + (uint64_t)(h->value[i] - '0');
			msg->content_length = n;
		} else if (h->id == SG_HF_TRANSFER_ENCODING) {
			if (have_te) {
				*why = "more than one Transfer-Encoding";
				return -bad;
			}
			have_te = true;
			if (sg_http_ieq(h->value, h->value_len, "chunked")) {
				te_chunked = true;
			} else if (is_req) {
				*why = "Transfer-Encoding other than chunked";
				return -501;
			}
		} else if (h->id == SG_HF_CONNECTION) {
			each_elem(h->value, h->value_len, conn_token, &ct);
			have_conn = true;
		} else if (h->id == SG_HF_HOST) {
			if (have_host) {
				*why = "more than one Host";
				return -bad;
			}
			have_host = true;
			msg->host = h->value;
			msg->host_len = h->value_len;
		} else if (h->id == SG_HF_UPGRADE) {
			struct name_match m = {.name = "websocket", .len = 9};
			each_elem(h->value, h->value_len, match_token, &m);
			have_upgrade_ws = m.found;
		} else if (is_req && h->id == SG_HF_EXPECT) {
			if (sg_http_ieq(h->value, h->value_len, "100-continue"))
				msg->expect_continue = true;
		}
		p = eol + 2;
	}

	for (size_t i = 0; have_conn && i < msg->n_headers; i++)
		if (msg->headers[i].id == SG_HF_CONNECTION)
			each_elem(msg->headers[i].value, msg->headers[i].value_len, mark_hop, msg);
	if (have_cl && have_te) {
		/* RFC 9112 section 6.1: "ought to be handled as an error"; the usual smuggling. */
		*why = "both Content-Length and Transfer-Encoding";
		return -bad;
	}
	if (have_te && msg->minor == 0) {
		*why = "Transfer-Encoding in an HTTP/1.0 message";
		return -bad;
	}
	if (is_req && msg->minor == 1 && !have_host) {
		*why = "HTTP/1.1 request without Host";
		return -400;
	}
	msg->conn_upgrade = ct.upgrade;
	msg->upgrade_websocket = ct.upgrade && have_upgrade_ws;
	msg->keep_alive = msg->minor == 1 ? !ct.close : (ct.keep_alive && !ct.close);
	if (no_body)
		msg->body = SG_HTTP_BODY_NONE;
	else if (te_chunked)
		msg->body = SG_HTTP_BODY_CHUNKED;
	else if (have_te) /* response with another coding: ends when the connection does */
		msg->body = SG_HTTP_BODY_CLOSE;
	else if (have_cl)
		msg->body = msg->content_length ? SG_HTTP_BODY_LENGTH : SG_HTTP_BODY_NONE;
	else
		msg->body = is_req ? SG_HTTP_BODY_NONE : SG_HTTP_BODY_CLOSE;
	if (msg->body == SG_HTTP_BODY_CLOSE)
		msg->keep_alive = false;
	return 0;
}

static void msg_reset(struct sg_http_msg *msg)
{
	msg->method = msg->target = msg->host = NULL;
	msg->method_len = msg->target_len = msg->host_len = 0;
	msg->method_id = SG_HTTP_M_OTHER;
	msg->status = 0;
	msg->minor = 1;
	msg->n_headers = 0;
	msg->body = SG_HTTP_BODY_NONE;
	msg->content_length = 0;
	msg->keep_alive = msg->conn_upgrade = msg->upgrade_websocket = false;
	msg->expect_continue = false;
}

/* "HTTP/1.x" at p (8 bytes available). Returns the minor version, -1 for another well-formed
 * version (505), -2 for garbage (400). */
static int parse_version(const char *p, size_t n)
{
	if (n != 8 || memcmp(p, "HTTP/", 5) != 0 || p[6] != '.' || p[5] < '0' || p[5] > '9' ||
	    p[7] < '0' || p[7] > '9')
		return -2;
	if (p[5] != '1' || (p[7] != '0' && p[7] != '1'))
		return -1;
	return p[7] - '0';
}

int sg_http_parse_request(const char *buf, size_t len, const struct sg_http_limits *lim,
			  struct sg_http_msg *msg, const char **why)
{
	size_t start = 0, at = 0;
	msg_reset(msg);
	*why = NULL;
	/* Empty lines before the request line (a client's extra CRLF after a body). */
	for (int i = 0; i < 4 && start + 1 < len && buf[start] == '\r' && buf[start + 1] == '\n'; i++)
		start += 2;
	if (start < len && buf[start] == '\n') {
		*why = "bare LF in the request head";
		return -400;
	}
	long end = find_head_end(buf, len, start, &at);
	if (end < 0) {
		*why = buf[at] == '\n' ? "bare LF in the request head" : "bare CR in the request head";
		return -400;
	}
	if (end == 0) {
		if (len - start > lim->max_head) {
			const char *eol = memchr(buf + start, '\r', len - start);
			*why = eol ? "request head too large" : "request line too long";
			return eol ? -431 : -414;
		}
		return SG_HTTP_INCOMPLETE;
	}
	if ((size_t)end - start > lim->max_head) {
		*why = "request head too large";
		return -431;
	}
	const char *p = buf + start;
	const char *eol = memchr(p, '\r', (size_t)end - start);
	/* request-line = method SP request-target SP HTTP-version (RFC 9112 section 3). */
	const char *sp1 = p;
	while (sp1 < eol && is_tchar((unsigned char)*sp1))
		sp1++;
	if (sp1 == p || sp1 == eol || *sp1 != ' ') {
		*why = "malformed request line (method)";
		return -400;
	}
	const char *t = sp1 + 1, *sp2 = t;
	while (sp2 < eol && (unsigned char)*sp2 > 0x20 && *sp2 != 0x7f)
		sp2++;
	if (sp2 == t || sp2 == eol || *sp2 != ' ') {
		*why = "malformed request line (target)";
		return -400;
	}
	int minor = parse_version(sp2 + 1, (size_t)(eol - sp2 - 1));
	if (minor == -2) {
		*why = "malformed request line (version)";
		return -400;
	}
	if (minor == -1) {
		*why = "HTTP version not supported";
		return -505;
	}
	msg->method = p;
	msg->method_len = (size_t)(sp1 - p);
	msg->method_id = method_id(p, msg->method_len);
	msg->target = t;
	msg->target_len = (size_t)(sp2 - t);
	msg->minor = minor;
	if (msg->target_len > lim->max_target) {
		*why = "request target too long";
		return -414;
	}
	if (msg->method_id == SG_HTTP_M_CONNECT) {
		*why = "CONNECT is not supported";
		return -501;
	}
	/* origin-form, absolute-form, or "*" for OPTIONS (RFC 9112 section 3.2). */
	bool origin = t[0] == '/';
	bool asterisk = msg->target_len == 1 && t[0] == '*' && msg->method_id == SG_HTTP_M_OPTIONS;
	bool absolute = msg->target_len > 7 && (sg_http_ieq(t, 7, "http://") ||
						(msg->target_len > 8 && sg_http_ieq(t, 8, "https://")));
	if (!origin && !asterisk && !absolute) {
		*why = "request target is not origin-form, absolute-form or * for OPTIONS";
		return -400;
	}
	int rc = parse_fields(eol + 2, buf + end - 2, lim, msg, true, false, 400, why);
	if (rc < 0)
		return rc;
	return (int)end;
}

int sg_http_parse_response(const char *buf, size_t len, const struct sg_http_limits *lim,
			   enum sg_http_method req_method, struct sg_http_msg *msg,
			   const char **why)
{
	size_t at = 0;
	msg_reset(msg);
	*why = NULL;
	long end = find_head_end(buf, len, 0, &at);
	if (end < 0) {
		*why = "bare CR or LF in the response head";
		return -502;
	}
	if (end == 0) {
		if (len > lim->max_head) {
			*why = "response head too large";
			return -502;
		}
		return SG_HTTP_INCOMPLETE;
	}
	if ((size_t)end > lim->max_head) {
		*why = "response head too large";
		return -502;
	}
	const char *eol = memchr(buf, '\r', (size_t)end);
	/* status-line = HTTP-version SP status-code SP [reason-phrase] (RFC 9112 section 4). */
	size_t ll = (size_t)(eol - buf);
	if (ll < 12 || buf[8] != ' ' || (ll > 12 && buf[12] != ' ')) {
		*why = "malformed status line";
		return -502;
	}
	int minor = parse_version(buf, 8);
	if (minor < 0) {
		*why = "unsupported HTTP version in the status line";
		return -502;
	}
	if (buf[9] < '1' || buf[9] > '5' || buf[10] < '0' || buf[10] > '9' || buf[11] < '0' ||
	    buf[11] > '9') {
		*why = "malformed status code";
		return -502;
	}
	for (const char *q = buf + 12; q < eol; q++)
		if (!is_value_char((unsigned char)*q)) {
			*why = "control character in the reason phrase";
			return -502;
		}
	msg->minor = minor;
	msg->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	msg->target = ll > 13 ? buf + 13 : buf + ll;
	msg->target_len = ll > 13 ? ll - 13 : 0;
	/* RFC 9112 section 6.3: no body for HEAD, 1xx, 204, 304. */
	bool no_body = req_method == SG_HTTP_M_HEAD || msg->status < 200 || msg->status == 204 ||
		       msg->status == 304;
	int rc = parse_fields(eol + 2, buf + end - 2, lim, msg, false, no_body, 502, why);
	if (rc < 0)
		return rc;
	return (int)end;
}

/* RFC 3986 section 5.2.4 remove_dot_segments, plus decoding of percent-encoded unreserved
 * characters (section 6.2.2.2) so that rules see one spelling of a path: "/a/./b/../%61dmin"
 * is "/a/admin". The normalized path is also what the target receives, so the target serves
 * exactly what the rules allowed. Returns the length, or -1 for a path we refuse (bad %XX,
 * an encoded NUL, or a backslash that some servers take for a slash). */
int sg_http_normalize_path(const char *in, size_t len, char *out, size_t cap)
{
	size_t o = 0;
	if (len == 0 || in[0] != '/' || cap < 2)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char ch = in[i];
		/* The parser lets no control bytes or spaces into a target; refuse them here too
		 * so the function stands on its own. */
		if (ch == '\\' || (unsigned char)ch <= 0x20 || ch == 0x7f)
			return -1;
		if (ch == '%') {
			if (i + 2 >= len)
				return -1;
			int hi = -1, lo = -1;
			char h = in[i + 1], l = in[i + 2];
			hi = (h >= '0' && h <= '9') ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10 : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
			lo = (l >= '0' && l <= '9') ? l - '0' : (l >= 'a' && l <= 'f') ? l - 'a' + 10 : (l >= 'A' && l <= 'F') ? l - 'A' + 10 : -1;
			if (hi < 0 || lo < 0)
				return -1;
			int v = hi * 16 + lo;
			if (v == 0)
				return -1;
			bool unreserved = (v >= 'a' && v <= 'z') || (v >= 'A' && v <= 'Z') ||
					  (v >= '0' && v <= '9') || v == '-' || v == '.' || v == '_' ||
					  v == '~';
			if (o + 3 >= cap)
				return -1;
			if (unreserved) {
				out[o++] = (char)v;
			} else {
				out[o++] = '%';
				out[o++] = "0123456789ABCDEF"[v >> 4];
				out[o++] = "0123456789ABCDEF"[v & 15];
			}
			i += 2;
			continue;
		}
		if (o + 1 >= cap)
			return -1;
		out[o++] = ch;
	}
	/* Dot segments, in place: each segment is copied unless it is "." or "..". */
	size_t r = 0, w = 0;
	while (r < o) {
		/* out[r] == '/' here */
		size_t s = r + 1, e = s;
		while (e < o && out[e] != '/')
			e++;
		size_t n = e - s;
		if (n == 1 && out[s] == '.') {
			if (e == o)
				out[w++] = '/';
		} else if (n == 2 && out[s] == '.' && out[s + 1] == '.') {
			while (w > 0 && out[w - 1] != '/')
				w--;
			if (w > 0)
				w--;
			if (e == o)
				out[w++] = '/';
		} else {
			out[w++] = '/';
			memmove(out + w, out + s, n);
			w += n;
		}
		r = e;
	}
	if (w == 0)
		out[w++] = '/';
	out[w] = '\0';
	return (int)w;
}

bool sg_http_host_ok(const char *h, size_t n)
{
	if (n == 0 || n > 260)
		return false;
	size_t i = 0;
	if (h[0] == '[') { /* IP-literal */
		while (i < n && h[i] != ']')
			i++;
		if (i == n)
			return false;
		for (size_t k = 1; k < i; k++)
			if (!((h[k] >= '0' && h[k] <= '9') || (h[k] >= 'a' && h[k] <= 'f') ||
			      (h[k] >= 'A' && h[k] <= 'F') || h[k] == ':' || h[k] == '.'))
				return false;
		i++;
	} else {
		for (; i < n && h[i] != ':'; i++)
			if (!((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= 'A' && h[i] <= 'Z') ||
			      (h[i] >= '0' && h[i] <= '9') || h[i] == '-' || h[i] == '.'))
				return false;
	}
	if (i < n) {
		if (h[i] != ':' || i + 1 == n || n - i - 1 > 5)
			return false;
		for (size_t k = i + 1; k < n; k++)
			if (h[k] < '0' || h[k] > '9')
				return false;
	}
	return true;
}

/* Finds NAME=VALUE in the Cookie fields (RFC 6265 section 4.2.1). */
bool sg_http_cookie_next(const char **p, const char *e, const char **pair, size_t *n)
{
	const char *s = *p;
	while (s < e && (*s == ' ' || *s == ';'))
		s++;
	if (s >= e)
		return false;
	const char *q = s;
	while (q < e && *q != ';')
		q++;
	*pair = s;
	*n = (size_t)(q - s);
	*p = q;
	return true;
}

bool sg_http_cookie(const struct sg_http_msg *m, const char *name, const char **val,
			size_t *vlen)
{
	size_t nl = strlen(name);
	for (size_t i = 0; i < m->n_headers; i++) {
		const struct sg_http_header *h = &m->headers[i];
		if (!sg_http_ieq(h->name, h->name_len, "cookie"))
			continue;
		const char *p = h->value, *e = h->value + h->value_len, *pair;
		size_t n;
		while (sg_http_cookie_next(&p, e, &pair, &n)) {
			if (n > nl && memcmp(pair, name, nl) == 0 && pair[nl] == '=') {
				*val = pair + nl + 1;
				*vlen = n - nl - 1;
				return true;
			}
		}
	}
	return false;
}

/* ---- chunked ---------------------------------------------------------------------------- */

enum {
	CH_SIZE = 0,  /* hex digits of chunk-size */
	CH_EXT,	      /* chunk-ext up to CR */
	CH_SIZE_LF,   /* LF after the size line */
	CH_DATA,      /* chunk-data */
	CH_DATA_CR,   /* CR after data */
	CH_DATA_LF,   /* LF after data */
	CH_TRAILER,   /* start of a trailer line or the final CRLF */
	CH_TRAILER_NAME,
	CH_TRAILER_LINE,
	CH_TRAILER_LF,
	CH_FINAL_LF,
	CH_DONE,
};

#define CH_LINE_MAX	4096
#define CH_TRAILER_MAX	8192

int sg_http_chunked_feed(struct sg_http_chunked *c, const uint8_t *in, size_t len, size_t *consumed,
		    const uint8_t **data, size_t *data_len, const char **why)
{
	size_t i = 0;
	*data = NULL;
	*data_len = 0;
	*why = NULL;
	while (i < len && c->state != CH_DONE) {
		uint8_t b = in[i];
		switch (c->state) {
		case CH_SIZE: {
			int h = sg_hexval(b);
			if (h >= 0) {
				if (c->line_len >= 15) { /* 2^60: far beyond any body cap */
					*why = "chunk size too large";
					return -1;
				}
				c->left = (c->left << 4) | (uint64_t)h;
				c->line_len++;
				i++;
				break;
			}
			if (c->line_len == 0) {
				*why = "chunk size is not hexadecimal";
				return -1;
			}
			if (b == ';') {
				c->state = CH_EXT;
				i++;
			} else if (b == '\r') {
				c->state = CH_SIZE_LF;
				i++;
			} else {
				/* No BWS before ';' or CR: two parsers could disagree on it. */
				*why = "unexpected byte after the chunk size";
				return -1;
			}
			break;
		}
		case CH_EXT:
			/* chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ): tokens, quoted
			 * strings; we only check the bytes are printable and the line bounded. */
			if (b == '\r') {
				c->state = CH_SIZE_LF;
			} else if (b == '\n' || (b < 0x20 && b != '\t') || b == 0x7f) {
				*why = "control character in a chunk extension";
				return -1;
			} else if (++c->line_len > CH_LINE_MAX) {
				*why = "chunk extension too long";
				return -1;
			}
			i++;
			break;
		case CH_SIZE_LF:
			if (b != '\n') {
				*why = "chunk size line does not end in CRLF";
				return -1;
			}
			i++;
			c->line_len = 0;
			c->state = c->left ? CH_DATA : CH_TRAILER;
			break;
		case CH_DATA: {
			size_t n = len - i;
			if (n > c->left)
				n = (size_t)c->left;
			*data = in + i;
			*data_len = n;
			c->left -= n;
			i += n;
			if (c->left == 0)
				c->state = CH_DATA_CR;
			*consumed = i;
			return 0;
		}
		case CH_DATA_CR:
			if (b != '\r') {
				*why = "chunk data longer than its size";
				return -1;
			}
			c->state = CH_DATA_LF;
			i++;
			break;
		case CH_DATA_LF:
			if (b != '\n') {
				*why = "chunk data not followed by CRLF";
				return -1;
			}
			c->state = CH_SIZE;
			c->left = 0;
			c->line_len = 0;
			i++;
			break;
		case CH_TRAILER:
			if (b == '\r') {
				c->state = CH_FINAL_LF;
			} else if (!is_tchar(b)) {
				*why = "malformed trailer field";
				return -1;
			} else {
				c->state = CH_TRAILER_NAME;
				c->trailers++;
			}
			i++;
			break;
		case CH_TRAILER_NAME:
			/* field-name ":" as in the head (no whitespace before the colon). */
			if (b == ':') {
				c->state = CH_TRAILER_LINE;
			} else if (!is_tchar(b)) {
				*why = "malformed trailer field name";
				return -1;
			}
			if (++c->trailers > CH_TRAILER_MAX) {
				*why = "trailer section too large";
				return -1;
			}
			i++;
			break;
		case CH_TRAILER_LINE:
			if (b == '\r') {
				c->state = CH_TRAILER_LF;
			} else if (b == '\n' || (b < 0x20 && b != '\t') || b == 0x7f) {
				*why = "control character in a trailer field";
				return -1;
			}
			if (++c->trailers > CH_TRAILER_MAX) {
				*why = "trailer section too large";
				return -1;
			}
			i++;
			break;
		case CH_TRAILER_LF:
			if (b != '\n') {
				*why = "trailer line does not end in CRLF";
				return -1;
			}
			c->state = CH_TRAILER;
			i++;
			break;
		case CH_FINAL_LF:
			if (b != '\n') {
				*why = "final chunk does not end in CRLF";
				return -1;
			}
			c->state = CH_DONE;
			c->done = true;
			i++;
			break;
		default:
			break;
		}
	}
	*consumed = i;
	return c->state == CH_DONE ? 1 : 0;
}
