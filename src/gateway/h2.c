/* HTTP/2 to clients (RFC 9113) with nghttp2 from Debian: after ALPN "h2" on the TLS listener,
 * or with prior knowledge (the connection preface) on the plain one.
 *
 * nghttp2 does the framing, HPACK, flow control and the HTTP/2 message rules (pseudo-headers,
 * field validity, Content-Length against DATA). Each stream then becomes a *virtual client*
 * of the HTTP/1.1 path in proxy.c: its request is written into the virtual client's input as
 * an HTTP/1.1 head (with `Connection: close`, so the exchange ends with the stream) and a body
 * re-framed as chunked (or kept under its Content-Length), and goes through the same strict
 * parser, routing, rules, balancing and retries as any HTTP/1.1 request. The HTTP/1.1 response
 * the exchange writes is parsed back once for its head and sent as HEADERS and DATA frames.
 *
 * WebSockets over HTTP/2 (RFC 8441): the gateway sends SETTINGS_ENABLE_CONNECT_PROTOCOL, and an
 * extended CONNECT (:protocol websocket) becomes an HTTP/1.1 upgrade request (RFC 6455 section
 * 4.1: GET, Upgrade: websocket, a fresh Sec-WebSocket-Key) through the same path; the target's
 * 101 becomes the stream's 200, and then the stream's DATA and the upgraded connection's bytes
 * are carried unchanged both ways (RFC 8441 section 5). The end of the stream is the end of
 * the connection in both directions.
 *
 * Flow control gives backpressure: the gateway does not let nghttp2 open windows by itself
 * (no automatic WINDOW_UPDATE); a stream's window opens by the bytes that moved on towards its
 * target, so a slow target slows its client and the memory per stream stays bounded by the
 * window. Responses are pulled by nghttp2's data provider from the virtual client's output.
 */
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "common/log.h"
#include "crypto/crypto.h"
#include "gateway/gw_int.h"

#define H2_MAX_STREAMS	 64u
#define H2_WINDOW	 65535u /* per stream: what a stream may have in flight towards us */
#define H2_CONN_WINDOW	 (H2_MAX_STREAMS * H2_WINDOW)
#define H2_MAX_FIELDS	 SG_HTTP_MAX_HEADERS

static const uint8_t preface[GW_H2_PREFACE_LEN] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

struct gw_h2_stream {
	struct gw_link link; /* h2->streams */
	struct gw_h2 *h2;
	int32_t id;
	struct gw_client *vc; /* NULL once the exchange is over */
	/* Request: the head being collected, then DATA waiting for room in vc->in. */
	struct sbuf_h2 {
		char *p;
		size_t len, cap;
	} head;
	size_t n_fields;
	bool have_host, has_cl, chunked, end_stream, end_written, bad;
	bool websocket; /* an extended CONNECT for a WebSocket (RFC 8441) */
	int bad_status; /* with bad: the answer (431 unless said) */
	char method[16];
	struct gw_buf pending;
	/* Response. */
	bool head_sent, eof, closed, dirty;
};

struct gw_h2 {
	struct gw_client *c;
	nghttp2_session *session;
	struct gw_link streams;
	uint32_t n_streams;
	const uint8_t *send_p; /* bytes nghttp2 gave us that did not fit c->out yet */
	size_t send_len;
	bool running, broken, freeing;
};

int gw_h2_preface(const uint8_t *buf, size_t len)
{
	size_t n = len < GW_H2_PREFACE_LEN ? len : GW_H2_PREFACE_LEN;
	if (memcmp(buf, preface, n) != 0)
		return 0;
	return len >= GW_H2_PREFACE_LEN ? 1 : -1;
}

static void head_put(struct gw_h2_stream *s, const char *p, size_t n)
{
	if (s->bad)
		return;
	size_t max = s->h2->c->gw->rt->conf->limits.max_head;
	if (s->head.len + n > max) {
		s->bad = true; /* answered 431 below */
		return;
	}
	if (s->head.len + n + 1 > s->head.cap) {
		size_t cap = s->head.cap ? s->head.cap * 2 : 1024;
		while (cap < s->head.len + n + 1)
			cap *= 2;
		char *q = realloc(s->head.p, cap);
		if (!q) {
			s->bad = true;
			return;
		}
		s->head.p = q;
		s->head.cap = cap;
	}
	memcpy(s->head.p + s->head.len, p, n);
	s->head.len += n;
}

static void stream_free(struct gw_h2_stream *s)
{
	gw_list_del(&s->link);
	s->h2->n_streams--;
	free(s->head.p);
	gw_buf_free(&s->pending);
	free(s);
}

/* ---- nghttp2 callbacks (no sending from inside them: streams are marked dirty) ---------- */

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
	struct gw_h2 *h2 = user;
	if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	struct gw_h2_stream *s = calloc(1, sizeof(*s));
	if (!s)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	s->h2 = h2;
	s->id = frame->hd.stream_id;
	gw_list_add(&h2->streams, &s->link);
	h2->n_streams++;
	nghttp2_session_set_stream_user_data(session, s->id, s);
	/* The request line comes first; it is patched in when :method and :path are known. */
	return 0;
}

/* Pseudo-headers arrive first (nghttp2 checks that); the request line and Host are written
 * when the head ends, the other fields as they come. */
static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
		     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *user)
{
	(void)flags;
	(void)user;
	if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	struct gw_h2_stream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
	if (!s || s->bad)
		return 0;
	if (++s->n_fields > H2_MAX_FIELDS) {
		s->bad = true;
		return 0;
	}
	if (namelen && name[0] == ':') {
		/* Kept in the head buffer as "\x01name value\n" until the head is complete. */
		if (namelen == 7 && memcmp(name, ":method", 7) == 0) {
			snprintf(s->method, sizeof(s->method), "%.*s", (int)valuelen, value);
			if (valuelen >= sizeof(s->method))
				s->bad = true;
		}
		head_put(s, "\x01", 1);
		head_put(s, (const char *)name, namelen);
		head_put(s, " ", 1);
		head_put(s, (const char *)value, valuelen);
		head_put(s, "\n", 1);
		return 0;
	}
	/* RFC 9113 section 8.2.2: connection-specific fields are malformed in HTTP/2 (nghttp2
	 * refuses them); TE other than "trailers" too. Host is kept only without :authority. */
	if (namelen == 4 && memcmp(name, "host", 4) == 0)
		s->have_host = true;
	if (namelen == 14 && memcmp(name, "content-length", 14) == 0)
		s->has_cl = true;
	if (namelen == 2 && memcmp(name, "te", 2) == 0)
		return 0;
	head_put(s, (const char *)name, namelen);
	head_put(s, ": ", 2);
	head_put(s, (const char *)value, valuelen);
	head_put(s, "\r\n", 2);
	return 0;
}

/* Base64 (RFC 4648 section 4, padded) of 16 bytes: a Sec-WebSocket-Key. */
static void b64_16(char out[25], const uint8_t in[16])
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < 15; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = t[v >> 18 & 63];
		out[o++] = t[v >> 12 & 63];
		out[o++] = t[v >> 6 & 63];
		out[o++] = t[v & 63];
	}
	out[o++] = t[in[15] >> 2];
	out[o++] = t[(in[15] & 3) << 4];
	out[o++] = '=';
	out[o++] = '=';
	out[o] = 0;
}

/* Turns the collected fields into an HTTP/1.1 head in the virtual client's input. */
static void stream_start(struct gw_h2 *h2, struct gw_h2_stream *s)
{
	struct gw_client *c = h2->c;
	struct gw *gw = c->gw;
	struct gw_client *vc = calloc(1, sizeof(*vc));
	if (!vc) {
		s->bad = true;
		return;
	}
	vc->kind = c->kind;
	vc->gw = gw;
	vc->l = c->l;
	vc->fd = -1;
	vc->family = c->family;
	memcpy(vc->ip, c->ip, sizeof(vc->ip));
	memcpy(vc->skey, c->skey, sizeof(vc->skey));
	memcpy(vc->ip_str, c->ip_str, sizeof(vc->ip_str));
	vc->h2s = s;
	vc->state = C_HEAD;
	vc->deadline_ns = gw->now_ns + (uint64_t)gw->rt->conf->limits.header_timeout_ms * NS_PER_MS;
	vc->last_io_ns = gw->now_ns;
	gw_list_add(&gw->conns, &vc->link);
	s->vc = vc;
	uint32_t cap = gw->rt->conf->limits.max_head + 2048;
	if (!gw_buf_alloc(&vc->in, cap)) {
		s->bad = true;
		return;
	}
	/* Pull the pseudo-headers out of the buffer. */
	const char *method = NULL, *path = NULL, *authority = NULL, *protocol = NULL;
	size_t ml = 0, pl = 0, al = 0, pl_proto = 0;
	char *fields = s->head.p ? s->head.p : (char *)"";
	size_t flen = s->head.len;
	struct gw_buf *o = &vc->in;
	for (size_t i = 0; i < flen;) {
		char *e = memchr(fields + i, '\n', flen - i);
		size_t end = e ? (size_t)(e - fields) : flen;
		if (fields[i] == '\x01') {
			char *sp = memchr(fields + i, ' ', end - i);
			if (sp) {
				const char *n = fields + i + 1;
				size_t nl = (size_t)(sp - n), vl = end - (size_t)(sp + 1 - fields);
				if (nl == 7 && memcmp(n, ":method", 7) == 0)
					method = sp + 1, ml = vl;
				else if (nl == 5 && memcmp(n, ":path", 5) == 0)
					path = sp + 1, pl = vl;
				else if (nl == 10 && memcmp(n, ":authority", 10) == 0)
					authority = sp + 1, al = vl;
				else if (nl == 9 && memcmp(n, ":protocol", 9) == 0)
					protocol = sp + 1, pl_proto = vl;
			}
			i = end + 1;
			continue;
		}
		/* A regular field line ends in "\r\n"; skip to after it. */
		char *crlf = memchr(fields + i, '\r', flen - i);
		i = crlf ? (size_t)(crlf - fields) + 2 : flen;
	}
	bool connect = method && ml == 7 && memcmp(method, "CONNECT", 7) == 0;
	if (connect && !(protocol && sg_http_ieq(protocol, pl_proto, "websocket"))) {
		/* A tunnel to anywhere (RFC 9113 section 8.5) or another protocol: not offered. */
		s->bad = true;
		s->bad_status = 501;
		return;
	}
	if (!method || !path || s->bad) {
		s->bad = true;
		return;
	}
	/* RFC 8441 section 5: CONNECT with :protocol websocket is the upgrade request of RFC 6455
	 * section 4.1. nghttp2 has checked that :protocol comes only with CONNECT, :scheme and
	 * :path (section 4). */
	s->websocket = connect;
	if (s->websocket) {
		method = "GET";
		ml = 3;
		s->chunked = false; /* DATA is the connection's bytes, unframed */
	}
	bool ok = gw_buf_put(o, method, ml) && gw_buf_put(o, " ", 1) && gw_buf_put(o, path, pl) &&
		  gw_buf_put(o, " HTTP/1.1\r\n", 11);
	if (authority && !s->have_host)
		ok = ok && gw_buf_put(o, "Host: ", 6) && gw_buf_put(o, authority, al) &&
		     gw_buf_put(o, "\r\n", 2);
	for (size_t i = 0; ok && i < flen;) {
		char *e = memchr(fields + i, '\n', flen - i);
		size_t end = e ? (size_t)(e - fields) + 1 : flen;
		/* A WebSocket's key is the gateway's own (below). */
		if (fields[i] != '\x01' &&
		    !(s->websocket && end - i > 18 && memcmp(fields + i, "sec-websocket-key:", 18) == 0))
			ok = gw_buf_put(o, fields + i, end - i);
		i = end;
	}
	if (s->websocket) {
		/* The key is the gateway's: the client of RFC 8441 sends none and checks no
		 * Sec-WebSocket-Accept. "close": a refusal ends the stream like any response. */
		uint8_t key[16];
		char k64[25];
		ok = ok && sg_random_bytes(key, sizeof(key));
		b64_16(k64, key);
		static const char up[] = "\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n";
		ok = ok && gw_buf_put(o, "Sec-WebSocket-Key: ", 19) && gw_buf_put(o, k64, 24) &&
		     gw_buf_put(o, up, sizeof(up) - 1);
	} else {
		ok = ok && gw_buf_put(o, "Connection: close\r\n", 19);
	}
	if (!s->end_stream && s->chunked)
		ok = ok && gw_buf_put(o, "Transfer-Encoding: chunked\r\n", 28);
	ok = ok && gw_buf_put(o, "\r\n", 2);
	if (!ok)
		s->bad = true;
	free(s->head.p);
	s->head.p = NULL;
	s->head.len = s->head.cap = 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
	struct gw_h2 *h2 = user;
	struct gw_h2_stream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
	if (!s)
		return 0;
	if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST &&
	    (frame->hd.flags & NGHTTP2_FLAG_END_HEADERS)) {
		s->end_stream = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
		/* Without a content-length the body is re-framed as chunked; a request that ends
		 * with its HEADERS has none. */
		s->chunked = !s->has_cl;
		s->end_written = s->end_stream;
		stream_start(h2, s);
		s->dirty = true;
	} else if ((frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS) &&
		   (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
		s->end_stream = true; /* trailers (HEADERS) are dropped, as for HTTP/1.1 */
		s->dirty = true;
	}
	return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t id, const uint8_t *data,
			 size_t len, void *user)
{
	(void)flags;
	(void)user;
	struct gw_h2_stream *s = nghttp2_session_get_stream_user_data(session, id);
	if (!s || !s->vc) {
		/* Nobody reads it: give the window back at once. */
		nghttp2_session_consume(session, id, len);
		return 0;
	}
	/* The window guarantees the room: at most H2_WINDOW bytes are unconsumed. */
	if (!gw_buf_alloc(&s->pending, H2_WINDOW + 1) || !gw_buf_put(&s->pending, data, len))
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	s->dirty = true;
	return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t id, uint32_t error_code, void *user)
{
	(void)error_code;
	(void)user;
	struct gw_h2_stream *s = nghttp2_session_get_stream_user_data(session, id);
	if (!s)
		return 0;
	nghttp2_session_set_stream_user_data(session, id, NULL);
	s->closed = true;
	if (!s->vc)
		stream_free(s);
	else
		s->dirty = true; /* the client reset it: the exchange is closed after this call */
	return 0;
}

static ssize_t read_body(nghttp2_session *session, int32_t id, uint8_t *buf, size_t length,
			 uint32_t *flags, nghttp2_data_source *source, void *user)
{
	(void)session;
	(void)id;
	(void)user;
	struct gw_h2_stream *s = source->ptr;
	struct gw_client *vc = s->vc;
	if (vc && vc->out.len) {
		size_t n = vc->out.len < length ? vc->out.len : length;
		memcpy(buf, gw_buf_data(&vc->out), n);
		gw_buf_consume(&vc->out, n);
		s->dirty = true; /* room for more of the response */
		return (ssize_t)n;
	}
	if (s->eof) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		return 0;
	}
	if (!vc)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* the exchange failed: reset */
	return NGHTTP2_ERR_DEFERRED;
}

/* ---- streams ---------------------------------------------------------------------------- */

/* Moves DATA into the virtual client's input, framed, and opens the window by what moved. */
static void stream_feed(struct gw_h2_stream *s)
{
	struct gw_client *vc = s->vc;
	bool moved = false;
	if (!vc || vc->dead)
		return;
	while (s->pending.len) {
		size_t space = gw_buf_space(&vc->in);
		size_t n = s->pending.len;
		if (s->chunked) {
			if (space <= 32)
				break;
			n = n < space - 32 ? n : space - 32;
			char hex[24];
			int hn = snprintf(hex, sizeof(hex), "%zx\r\n", n);
			(void)gw_buf_put(&vc->in, hex, (size_t)hn);
			(void)gw_buf_put(&vc->in, gw_buf_data(&s->pending), n);
			(void)gw_buf_put(&vc->in, "\r\n", 2);
		} else {
			n = n < space ? n : space;
			if (n == 0)
				break;
			(void)gw_buf_put(&vc->in, gw_buf_data(&s->pending), n);
		}
		gw_buf_consume(&s->pending, n);
		nghttp2_session_consume(s->h2->session, s->id, n);
		moved = true;
	}
	if (s->websocket && s->end_stream && s->pending.len == 0 && !vc->eof) {
		/* The client ended its side (RFC 8441 section 5: as a TCP FIN): the tunnel ends
		 * once what it sent is with the target. */
		vc->eof = true;
		moved = true;
	}
	if (s->end_stream && s->pending.len == 0 && s->chunked && !s->end_written &&
	    gw_buf_space(&vc->in) >= 5) {
		(void)gw_buf_put(&vc->in, "0\r\n\r\n", 5);
		s->end_written = true;
		moved = true;
	}
	if (moved) {
		/* The exchange has input to move on (and the body clock restarts). */
		vc->last_io_ns = vc->gw->now_ns;
		s->dirty = true;
	}
}

static void stream_refuse(struct gw_h2_stream *s, int status)
{
	/* A response of the gateway's own for a stream that never became a request. */
	char st[4];
	snprintf(st, sizeof(st), "%d", status);
	nghttp2_nv nv[] = {{(uint8_t *)":status", (uint8_t *)st, 7, 3, NGHTTP2_NV_FLAG_NONE}};
	nghttp2_submit_response(s->h2->session, s->id, nv, 1, NULL);
	s->head_sent = true;
}

bool gw_h2_stream_output(struct gw_client *vc)
{
	struct gw_h2_stream *s = vc->h2s;
	if (!s || s->head_sent || s->closed || vc->out.len == 0)
		return false;
	struct sg_http_msg *m = &vc->gw->msg;
	struct sg_http_limits lim = {.max_head = GW_CLIENT_OUT_CAP, .max_target = GW_CLIENT_OUT_CAP,
				     .max_headers = SG_HTTP_MAX_HEADERS};
	const char *why = NULL;
	enum sg_http_method method = strcmp(s->method, "HEAD") == 0 ? SG_HTTP_M_HEAD : SG_HTTP_M_GET;
	int n = sg_http_parse_response((const char *)gw_buf_data(&vc->out), vc->out.len, &lim,
				       method, m, &why);
	if (n == SG_HTTP_INCOMPLETE)
		return false;
	if (n < 0) { /* our own output: cannot happen; reset rather than guess */
		nghttp2_submit_rst_stream(s->h2->session, NGHTTP2_FLAG_NONE, s->id,
					  NGHTTP2_INTERNAL_ERROR);
		s->head_sent = true;
		return true;
	}
	nghttp2_nv nv[SG_HTTP_MAX_HEADERS + 1];
	char status[4];
	char lower[SG_HTTP_MAX_HEADERS][64];
	size_t k = 0;
	/* RFC 8441 section 5: the upgrade's 101 is the extended CONNECT's 200, and the upgraded
	 * connection's bytes its DATA (the proxy let a 101 through only with Upgrade: websocket,
	 * and only to a WebSocket request). */
	bool tunnel = s->websocket && m->status == 101;
	snprintf(status, sizeof(status), "%03d", tunnel ? 200 : m->status);
	nv[k++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)status, 7, 3, NGHTTP2_NV_FLAG_NONE};
	for (size_t i = 0; i < m->n_headers; i++) {
		const struct sg_http_header *h = &m->headers[i];
		/* Connection-specific fields do not exist in HTTP/2 (RFC 9113 section 8.2.2). */
		if (sg_http_hop_by_hop(m, h) || h->name_len >= sizeof(lower[0]) ||
		    (tunnel && sg_http_ieq(h->name, h->name_len, "sec-websocket-accept")))
			continue;
		for (size_t j = 0; j < h->name_len; j++) {
			char ch = h->name[j];
			lower[k - 1][j] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
		}
		nv[k] = (nghttp2_nv){(uint8_t *)lower[k - 1], (uint8_t *)h->value, h->name_len,
				     h->value_len, NGHTTP2_NV_FLAG_NONE};
		k++;
	}
	bool body = m->body != SG_HTTP_BODY_NONE || tunnel;
	nghttp2_data_provider prd = {.source.ptr = s, .read_callback = read_body};
	/* nghttp2 copies the name/value pairs; then the head leaves the buffer. */
	int rc = nghttp2_submit_response(s->h2->session, s->id, nv, k, body ? &prd : NULL);
	gw_buf_consume(&vc->out, (size_t)n);
	s->head_sent = true;
	if (rc != 0)
		nghttp2_submit_rst_stream(s->h2->session, NGHTTP2_FLAG_NONE, s->id,
					  NGHTTP2_INTERNAL_ERROR);
	return true;
}

static void h2_run(struct gw_client *c);

void gw_h2_stream_pumped(struct gw_client *vc)
{
	struct gw_h2_stream *s = vc->h2s;
	if (!s)
		return;
	stream_feed(s);
	if (s->head_sent && vc->out.len)
		nghttp2_session_resume_data(s->h2->session, s->id);
	if (!s->h2->running)
		h2_run(s->h2->c);
}

void gw_h2_stream_closed(struct gw_client *vc)
{
	struct gw_h2_stream *s = vc->h2s;
	if (!s)
		return;
	struct gw_h2 *h2 = s->h2;
	s->vc = NULL;
	vc->h2s = NULL;
	if (s->closed) {
		stream_free(s);
		return;
	}
	if (h2->freeing)
		return;
	if (vc->clean_close && s->head_sent) {
		s->eof = true;
		nghttp2_session_resume_data(h2->session, s->id);
	} else if (vc->clean_close && vc->out.len == 0 && !s->head_sent) {
		stream_refuse(s, 502);
	} else {
		nghttp2_submit_rst_stream(h2->session, NGHTTP2_FLAG_NONE, s->id,
					  NGHTTP2_INTERNAL_ERROR);
	}
	if (!h2->running)
		h2_run(h2->c); /* the last frames of this stream go out now */
}

/* ---- the connection --------------------------------------------------------------------- */

int gw_h2_start(struct gw_client *c)
{
	struct gw_h2 *h2 = calloc(1, sizeof(*h2));
	nghttp2_session_callbacks *cbs = NULL;
	nghttp2_option *opt = NULL;
	if (!h2 || nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&opt) != 0) {
		free(h2);
		nghttp2_session_callbacks_del(cbs);
		return -ENOMEM;
	}
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
	nghttp2_option_set_no_auto_window_update(opt, 1);
	nghttp2_option_set_max_outbound_ack(opt, 1000);
	int rc = nghttp2_session_server_new2(&h2->session, cbs, h2, opt);
	nghttp2_session_callbacks_del(cbs);
	nghttp2_option_del(opt);
	if (rc != 0) {
		free(h2);
		return -ENOMEM;
	}
	nghttp2_settings_entry iv[] = {
	    {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, H2_MAX_STREAMS},
	    {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_WINDOW},
	    {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, c->gw->rt->conf->limits.max_head},
	    {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1}, /* RFC 8441 section 3 */
	};
	if (nghttp2_submit_settings(h2->session, NGHTTP2_FLAG_NONE, iv, SG_ARRAY_LEN(iv)) != 0 ||
	    nghttp2_session_set_local_window_size(h2->session, NGHTTP2_FLAG_NONE, 0,
						  (int32_t)H2_CONN_WINDOW) != 0) {
		nghttp2_session_del(h2->session);
		free(h2);
		return -ENOMEM;
	}
	gw_list_init(&h2->streams);
	h2->c = c;
	c->h2 = h2;
	c->state = C_H2;
	if (!gw_buf_alloc(&c->out, GW_CLIENT_OUT_CAP))
		return -ENOMEM;
	c->deadline_ns = c->gw->now_ns + (uint64_t)c->gw->rt->conf->limits.idle_timeout_ms * NS_PER_MS;
	return 0;
}

bool gw_h2_idle(const struct gw_client *c)
{
	return !c->h2 || c->h2->n_streams == 0;
}

/* Streams marked by the callbacks: start, feed, pump, or close after a client's reset. */
static bool run_dirty(struct gw_h2 *h2)
{
	bool any = false;
	for (struct gw_link *l = h2->streams.next, *next; l != &h2->streams; l = next) {
		next = l->next;
		struct gw_h2_stream *s = gw_container(l, struct gw_h2_stream, link);
		if (!s->dirty)
			continue;
		s->dirty = false;
		any = true;
		if (s->bad && !s->head_sent && !s->closed) {
			stream_refuse(s, s->bad_status ? s->bad_status : 431);
			if (s->vc) {
				s->vc->clean_close = true;
				gw_client_close(s->vc);
			}
			continue;
		}
		if (!s->vc)
			continue;
		if (s->closed) {
			gw_client_close(s->vc); /* frees s */
			continue;
		}
		stream_feed(s);
		gw_client_pump(s->vc);
	}
	return any;
}

static void h2_run(struct gw_client *c)
{
	struct gw_h2 *h2 = c->h2;
	if (!h2 || h2->running)
		return;
	h2->running = true;
	for (int guard = 0; guard < 32 && !h2->broken; guard++) {
		bool progress = run_dirty(h2);
		/* Frames out, as far as the output buffer takes them. */
		for (;;) {
			if (!h2->send_len) {
				ssize_t n = nghttp2_session_mem_send(h2->session, &h2->send_p);
				if (n < 0) {
					h2->broken = true;
					break;
				}
				if (n == 0)
					break;
				h2->send_len = (size_t)n;
			}
			size_t space = gw_buf_space(&c->out);
			size_t n = h2->send_len < space ? h2->send_len : space;
			if (n == 0)
				break;
			(void)gw_buf_put(&c->out, h2->send_p, n);
			h2->send_p += n;
			h2->send_len -= n;
			progress = true;
		}
		while (c->out.len && !h2->broken) {
			ssize_t w = c->tls ? sg_tls_term_write(c->tls, gw_buf_data(&c->out), c->out.len)
					   : send(c->fd, gw_buf_data(&c->out), c->out.len, MSG_NOSIGNAL);
			if (w < 0 && !c->tls)
				w = (errno == EAGAIN || errno == EINTR) ? -EAGAIN : -EIO;
			if (w == -EAGAIN)
				break;
			if (w <= 0) {
				h2->broken = true;
				break;
			}
			gw_buf_consume(&c->out, (size_t)w);
			c->last_io_ns = c->gw->now_ns;
			progress = true;
		}
		if (!progress)
			break;
	}
	h2->running = false;
	if (h2->broken || (!nghttp2_session_want_read(h2->session) &&
			   !nghttp2_session_want_write(h2->session) && c->out.len == 0 &&
			   !h2->send_len)) {
		gw_client_close(c);
		return;
	}
	if (h2->n_streams == 0)
		c->deadline_ns =
		    c->gw->now_ns + (uint64_t)c->gw->rt->conf->limits.idle_timeout_ms * NS_PER_MS;
	else
		c->deadline_ns = UINT64_MAX;
	uint32_t want = gw_h2_events(c);
	if (c->ev != want && c->src.active && evloop_mod(c->gw->loop, &c->src, want) == 0)
		c->ev = want;
}

uint32_t gw_h2_events(struct gw_client *c)
{
	uint32_t want = 0;
	if (nghttp2_session_want_read(c->h2->session) && gw_buf_space(&c->in) > 0)
		want |= EPOLLIN;
	if (c->out.len || c->h2->send_len)
		want |= EPOLLOUT;
	if (c->tls)
		want |= sg_tls_term_events(c->tls);
	return want;
}

void gw_h2_pump(struct gw_client *c)
{
	struct gw_h2 *h2 = c->h2;
	if (!h2 || c->dead || h2->running)
		return;
	c->gw->now_ns = evloop_now_ns();
	/* Until the socket (and TLS's own buffer: no poll event announces what it already
	 * decrypted) has nothing more; nghttp2 takes all input each turn and the windows bound
	 * what a client can send before we consume, so this ends. */
	for (int guard = 0; guard < 4096; guard++) {
		/* Whatever is in c->in (the preface and frames read with it, then new bytes). */
		if (c->in.len) {
			ssize_t n = nghttp2_session_mem_recv(h2->session, gw_buf_data(&c->in), c->in.len);
			if (n < 0) {
				char b[96];
				sg_log(SG_LOG_INFO, "gw_bad_request", "client=%s proto=h2 reason=%s",
				       c->ip_str, sg_log_quote(b, sizeof(b), nghttp2_strerror((int)n)));
				c->gw->bad_requests++;
				/* nghttp2 has queued a GOAWAY where the error allows one. */
				h2_run(c);
				if (!c->dead)
					gw_client_close(c);
				return;
			}
			gw_buf_consume(&c->in, (size_t)n);
		}
		h2_run(c);
		if (c->dead)
			return;
		/* Read more. */
		if (c->eof || !gw_buf_alloc(&c->in, c->gw->rt->conf->limits.max_head + 1024))
			break;
		ssize_t r = c->tls ? sg_tls_term_read(c->tls, gw_buf_tail(&c->in), gw_buf_space(&c->in))
				   : recv(c->fd, gw_buf_tail(&c->in), gw_buf_space(&c->in), 0);
		if (r < 0 && !c->tls)
			r = (errno == EAGAIN || errno == EINTR) ? -EAGAIN : -EIO;
		if (r == -EAGAIN)
			break;
		if (r <= 0) {
			gw_client_close(c);
			return;
		}
		c->in.len += (uint32_t)r;
		c->last_io_ns = c->gw->now_ns;
	}
	h2_run(c);
}

void gw_h2_free(struct gw_client *c)
{
	struct gw_h2 *h2 = c->h2;
	if (!h2)
		return;
	h2->freeing = true;
	while (!gw_list_empty(&h2->streams)) {
		struct gw_h2_stream *s = gw_container(h2->streams.next, struct gw_h2_stream, link);
		s->closed = true;
		if (s->vc)
			gw_client_close(s->vc); /* frees s */
		else
			stream_free(s);
	}
	nghttp2_session_del(h2->session);
	free(h2);
	c->h2 = NULL;
}
