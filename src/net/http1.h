/* A strict HTTP/1.1 message-head parser and chunked-body decoder, the gateway's and the
 * management server's (src/server/httpd.c), sans-I/O in the picohttpparser style (STYLE.md): the caller passes the bytes it has, the parser keeps no
 * state between calls for heads, allocates nothing, and points into the caller's buffer.
 *
 * Why our own: Debian 12 packages neither llhttp nor picohttpparser (only node-llhttp's
 * JavaScript sources), and its libhttp-parser 2.9.4 is archived upstream and lenient where a
 * proxy must not be (it had request smuggling bugs, CVE-2019-15605). A proxy sits between two
 * parsers that must agree on where each message ends, so this one accepts only the plain
 * RFC 9112 grammar and refuses everything two implementations could read differently:
 *   - lines end in CRLF; a bare CR or bare LF anywhere in the head is an error (RFC 9112
 *     section 2.2 allows a lenient LF, a proxy should not);
 *   - no whitespace between a field name and its colon (section 5.1: MUST reject with 400);
 *   - no obs-fold continuation lines (section 5.2: a server MUST reject or unfold; we reject);
 *   - no control characters in values (RFC 9110 section 5.5: NUL, CR, LF are dangerous);
 *   - Content-Length: one header with digits only, no lists, no duplicates, even equal ones;
 *   - Transfer-Encoding: exactly "chunked" in an HTTP/1.1 request, and never together with
 *     Content-Length (section 6.1: such a message is a smuggling attempt; we answer 400 and
 *     close rather than letting TE win);
 *   - HTTP/1.1 requests need exactly one Host (section 3.2: 400 otherwise).
 * Limits: the whole head (request line + fields) is at most lim->max_head bytes (431), the
 * request target at most lim->max_target (414), at most lim->max_headers fields (431).
 */
#ifndef SG_NET_HTTP1_H
#define SG_NET_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"

/* Largest number of fields a head may carry (the array size; the limit may be lower). */
#define SG_HTTP_MAX_HEADERS 128

/* The fields the parser and its callers act on, recognised once while parsing so that
 * callers switch on a number instead of comparing names again for every field. */
enum sg_http_field {
	SG_HF_OTHER = 0,
	SG_HF_HOST,
	SG_HF_CONTENT_LENGTH,
	SG_HF_TRANSFER_ENCODING,
	SG_HF_CONNECTION,
	SG_HF_UPGRADE,
	SG_HF_EXPECT,
	SG_HF_COOKIE,
	SG_HF_AUTHORIZATION,
	SG_HF_KEEP_ALIVE,
	SG_HF_PROXY_CONNECTION,
	SG_HF_TE,
	SG_HF_TRAILER,
	SG_HF_PROXY_AUTHENTICATE,
	SG_HF_PROXY_AUTHORIZATION,
};

struct sg_http_header {
	const char *name;
	size_t name_len;
	const char *value; /* without leading and trailing OWS */
	size_t value_len;
	uint8_t id; /* enum sg_http_field */
	bool hop;   /* hop-by-hop: see sg_http_hop_by_hop */
};

struct sg_http_limits {
	size_t max_head;    /* bytes of request line + fields + final CRLF */
	size_t max_target;  /* bytes of the request target */
	size_t max_headers; /* number of fields, <= SG_HTTP_MAX_HEADERS */
};

enum sg_http_body {
	SG_HTTP_BODY_NONE = 0,
	SG_HTTP_BODY_LENGTH,	 /* content_length bytes */
	SG_HTTP_BODY_CHUNKED, /* chunked transfer coding */
	SG_HTTP_BODY_CLOSE,	 /* response only: until the connection closes */
};

/* Known methods; anything else that is a token is SG_HTTP_M_OTHER. */
enum sg_http_method {
	SG_HTTP_M_OTHER = 0,
	SG_HTTP_M_GET,
	SG_HTTP_M_HEAD,
	SG_HTTP_M_POST,
	SG_HTTP_M_PUT,
	SG_HTTP_M_DELETE,
	SG_HTTP_M_OPTIONS,
	SG_HTTP_M_TRACE,
	SG_HTTP_M_PATCH,
	SG_HTTP_M_CONNECT,
};

struct sg_http_msg {
	/* Request: method and target. Response: status and reason. */
	const char *method;
	size_t method_len;
	enum sg_http_method method_id;
	const char *target;
	size_t target_len;
	int status;
	int minor; /* HTTP/1.<minor>: 0 or 1 */

	struct sg_http_header headers[SG_HTTP_MAX_HEADERS];
	size_t n_headers;

	/* Derived from the fields. */
	enum sg_http_body body;
	uint64_t content_length;
	bool keep_alive;	/* persistent after this message (version and Connection) */
	bool conn_upgrade;	/* Connection: upgrade */
	bool upgrade_websocket; /* ... and Upgrade: websocket */
	bool expect_continue;	/* Expect: 100-continue */
	const char *host;	/* Host value (request), NULL if none */
	size_t host_len;
};

/* Return values of the head parsers besides a positive head length. */
#define SG_HTTP_INCOMPLETE 0

/* Parses a request head from buf[0..len). Returns its length in bytes (> 0) when the head is
 * complete, SG_HTTP_INCOMPLETE when more bytes are needed (and the limits still allow them),
 * or minus the HTTP status to answer (-400, -414, -431, -501, -505) with *why saying what was
 * wrong. Up to 4 empty lines before the request line are skipped (RFC 9112 section 2.2) and
 * counted in the returned length. */
int sg_http_parse_request(const char *buf, size_t len, const struct sg_http_limits *lim,
			  struct sg_http_msg *msg, const char **why) SG_WUR;

/* Parses a response head. req_method tells whether a body can follow (HEAD, CONNECT), status
 * 1xx/204/304 never have one. Returns as above; errors are -502 with *why. */
int sg_http_parse_response(const char *buf, size_t len, const struct sg_http_limits *lim,
			   enum sg_http_method req_method, struct sg_http_msg *msg,
			   const char **why) SG_WUR;

/* Finds a field by name (case-insensitive); the first one, or NULL. */
const struct sg_http_header *sg_http_find(const struct sg_http_msg *msg, const char *name);

/* True for fields a proxy must not forward (RFC 9110 section 7.6.1): Connection, Keep-Alive,
 * Proxy-Connection, TE, Transfer-Encoding, Upgrade, Proxy-Authenticate/-Authorization, Trailer,
 * and any field named in the message's Connection header (h->hop, set by the parser). */
bool sg_http_hop_by_hop(const struct sg_http_msg *msg, const struct sg_http_header *h);

/* Steps through the "name=value" pairs of one Cookie field value [*p, e): true with the next
 * pair in *pair and *n (without the separators), false at the end. */
bool sg_http_cookie_next(const char **p, const char *e, const char **pair, size_t *n);

/* The value of cookie NAME in the Cookie fields (RFC 6265 section 4.2.1), not decoded. */
bool sg_http_cookie(const struct sg_http_msg *m, const char *name, const char **val,
		    size_t *vlen);

/* Case-insensitive comparison of a counted string with a NUL-terminated one. */
bool sg_http_ieq(const char *a, size_t alen, const char *b);

/* RFC 3986 section 5.2.4 remove_dot_segments on an origin-form path (without query), with
 * percent-encoded unreserved characters decoded and other escapes in uppercase (section 6.2.2),
 * into out (NUL-terminated). Returns the length, or -1 for a path refused outright: bad %XX,
 * an encoded NUL, a backslash, or no room. */
int sg_http_normalize_path(const char *in, size_t len, char *out, size_t cap) SG_WUR;

/* A Host value we accept: reg-name of [A-Za-z0-9.-] or an IP-literal in brackets, with an
 * optional port of up to 5 digits. */
bool sg_http_host_ok(const char *h, size_t n);

/* ---- chunked transfer coding (RFC 9112 section 7.1) ------------------------------------ */

struct sg_http_chunked {
	int state;
	uint64_t left;	    /* data bytes left in the current chunk */
	uint32_t line_len;  /* bytes of the current size or trailer line */
	uint32_t trailers;  /* trailer bytes so far */
	bool done;
};

/* Feeds encoded bytes. Sets *consumed to the bytes used from in (all of them unless the body
 * ended: what follows belongs to the next message), and *data and *data_len to the next run of
 * decoded data inside in (possibly empty; call again with the rest). Returns 0, 1 when the
 * final chunk and trailers are complete, or -1 with *why on malformed framing. Chunk
 * extensions (bounded by the 4096-byte line limit) and trailers (at most 8192 bytes) are
 * checked and dropped. */
int sg_http_chunked_feed(struct sg_http_chunked *c, const uint8_t *in, size_t len, size_t *consumed,
		    const uint8_t **data, size_t *data_len, const char **why) SG_WUR;

#endif
