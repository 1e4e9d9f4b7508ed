/* Unit tests for the VICI codec, client and server (src/vici).
 *
 * The byte vectors are written by hand from the format in strongSwan's
 * src/libcharon/plugins/vici/README.md ("Message format" and its example message), so the codec
 * is checked against the specification, not against itself. The client and server are then run
 * against each other over a real unix socket, the server on the project's event loop in a thread.
 * The integration test tests/integration/test_vici.sh runs them against strongSwan's own charon
 * and swanctl.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include <secureguard/sg_errors.h>

#include "vici/vici.h"
#include "vici/vici_client.h"
#include "vici/vici_server.h"

/* The README's example:  key1 = value1, section1 { sub-section { key2 = value2 },
 * list1 [ item1, item2 ] } */
static const uint8_t readme_msg[] = {
    3,	 4,   'k', 'e', 'y', '1', 0,   6,   'v', 'a', 'l', 'u', 'e', '1', 1,   8,
    's', 'e', 'c', 't', 'i', 'o', 'n', '1', 1,	 11,  's', 'u', 'b', '-', 's', 'e',
    'c', 't', 'i', 'o', 'n', 3,	  4,   'k', 'e', 'y', '2', 0,	6,   'v', 'a', 'l',
    'u', 'e', '2', 2,	4,   5,	  'l', 'i', 's', 't', '1', 5,	0,   5,	  'i', 't',
    'e', 'm', '1', 5,	0,   5,	  'i', 't', 'e', 'm', '2', 6,	2,
};

static void build_readme(struct vici_builder *b)
{
	vici_builder_init(b);
	vici_add_kv_str(b, "key1", "value1");
	vici_add_section_start(b, "section1");
	vici_add_section_start(b, "sub-section");
	vici_add_kv_fmt(b, "key2", "value%d", 2);
	vici_add_section_end(b);
	vici_add_list_start(b, "list1");
	vici_add_list_item_str(b, "item1");
	vici_add_list_item(b, "item2", 5);
	vici_add_list_end(b);
	vici_add_section_end(b);
}

static void test_build_readme_example(void **state)
{
	struct vici_builder b;
	const uint8_t *m;
	size_t len;
	const char *why = NULL;
	(void)state;
	build_readme(&b);
	assert_int_equal(vici_builder_finish(&b, &m, &len, &why), 0);
	assert_int_equal(len, sizeof(readme_msg));
	assert_memory_equal(m, readme_msg, len);
	vici_builder_free(&b);
}

static void test_parse_readme_example(void **state)
{
	struct vici_msg *msg;
	const char *why = NULL;
	(void)state;
	assert_int_equal(vici_msg_parse(readme_msg, sizeof(readme_msg), &msg, &why), 0);
	const struct vici_node *root = vici_msg_root(msg);
	assert_int_equal(vici_node_count(root), 2);
	assert_string_equal(vici_get_str(root, "key1"), "value1");
	assert_string_equal(vici_get_str(root, "section1.sub-section.key2"), "value2");
	assert_null(vici_get_str(root, "section1.sub-section")); /* a section, not a value */
	assert_null(vici_get_str(root, "section1.key2"));	 /* wrong level */
	assert_null(vici_find(root, "key1.x"));			 /* through a key-value */
	const struct vici_node *l = vici_find(root, "section1.list1");
	assert_non_null(l);
	assert_int_equal(l->type, VICI_NODE_LIST);
	assert_int_equal(vici_node_count(l), 2);
	assert_int_equal(l->child->type, VICI_NODE_ITEM);
	assert_string_equal((const char *)l->child->value, "item1");
	assert_string_equal((const char *)l->child->next->value, "item2");
	assert_ptr_equal(l->parent, vici_find(root, "section1"));

	/* Re-encoding the tree gives the same bytes. */
	struct vici_builder b;
	const uint8_t *m;
	size_t len;
	vici_builder_init(&b);
	vici_add_tree(&b, root);
	assert_int_equal(vici_builder_finish(&b, &m, &len, &why), 0);
	assert_int_equal(len, sizeof(readme_msg));
	assert_memory_equal(m, readme_msg, len);
	vici_builder_free(&b);
	vici_msg_free(msg);
}

static void test_parse_binary_and_empty(void **state)
{
	/* A binary value with NUL (e.g. a key blob), an empty value, an empty message. */
	static const uint8_t in[] = {3, 1, 'k', 0, 3, 'a', 0, 'b', 3, 1, 'e', 0, 0};
	struct vici_msg *msg;
	(void)state;
	assert_int_equal(vici_msg_parse(in, sizeof(in), &msg, NULL), 0);
	const struct vici_node *k = vici_find(vici_msg_root(msg), "k");
	assert_non_null(k);
	assert_int_equal(k->value_len, 3);
	assert_false(vici_node_is_str(k));
	assert_null(vici_get_str(vici_msg_root(msg), "k"));
	assert_string_equal(vici_get_str(vici_msg_root(msg), "e"), "");
	vici_msg_free(msg);
	assert_int_equal(vici_msg_parse(in, 0, &msg, NULL), 0);
	assert_int_equal(vici_node_count(vici_msg_root(msg)), 0);
	vici_msg_free(msg);
}

struct bad_case {
	const char *name;
	uint8_t bytes[16];
	size_t len;
	const char *why;
};

static void test_parse_rejects(void **state)
{
	static const struct bad_case cases[] = {
	    {"unknown element 0", {0}, 1, "unknown element type"},
	    {"unknown element 7", {7}, 1, "unknown element type"},
	    {"name length missing", {3}, 1, "truncated name length"},
	    {"name past end", {1, 5, 'a'}, 3, "name runs past the end"},
	    {"NUL in name", {3, 2, 'a', 0, 0, 0}, 6, "name contains a NUL byte"},
	    {"value length missing", {3, 1, 'a', 0}, 4, "truncated value length"},
	    {"value past end", {3, 1, 'a', 0, 9, 'x'}, 6, "value runs past the end"},
	    {"stray section end", {2}, 1, "section end without an open section"},
	    {"stray list end", {6}, 1, "list end without an open list"},
	    {"section closed as list", {1, 1, 's', 6}, 4, "list end without an open list"},
	    {"list closed as section", {4, 1, 'l', 2}, 4, "section end without an open section"},
	    {"item outside list", {5, 0, 0}, 3, "list item outside a list"},
	    {"kv inside list",
	     {4, 1, 'l', 3, 1, 'a', 0, 0, 6},
	     9,
	     "only list items may appear inside a list"},
	    {"section inside list",
	     {4, 1, 'l', 1, 1, 's', 2, 6},
	     8,
	     "only list items may appear inside a list"},
	    {"unclosed section", {1, 1, 's'}, 3, "unclosed section or list at the end"},
	    {"unclosed list", {4, 1, 'l', 5, 0, 0}, 6, "unclosed section or list at the end"},
	};
	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(cases); i++) {
		struct vici_msg *msg = (void *)1;
		const char *why = NULL;
		int err = vici_msg_parse(cases[i].bytes, cases[i].len, &msg, &why);
		if (err != SG_EPARSE || !why || strcmp(why, cases[i].why) != 0)
			fail_msg("%s: got %d \"%s\", expected \"%s\"", cases[i].name, err,
				 why ? why : "(null)", cases[i].why);
		assert_null(msg);
	}
}

static void test_parse_depth_and_size(void **state)
{
	uint8_t buf[3 * (VICI_MAX_DEPTH + 1) + VICI_MAX_DEPTH + 1];
	size_t n = 0;
	struct vici_msg *msg;
	const char *why;
	(void)state;
	/* Exactly VICI_MAX_DEPTH levels: fine. */
	for (unsigned i = 0; i < VICI_MAX_DEPTH; i++) {
		buf[n++] = 1, buf[n++] = 1, buf[n++] = 's';
	}
	for (unsigned i = 0; i < VICI_MAX_DEPTH; i++)
		buf[n++] = 2;
	assert_int_equal(vici_msg_parse(buf, n, &msg, &why), 0);
	vici_msg_free(msg);
	/* One more: refused. */
	n = 0;
	for (unsigned i = 0; i <= VICI_MAX_DEPTH; i++) {
		buf[n++] = 1, buf[n++] = 1, buf[n++] = 's';
	}
	for (unsigned i = 0; i <= VICI_MAX_DEPTH; i++)
		buf[n++] = 2;
	assert_int_equal(vici_msg_parse(buf, n, &msg, &why), SG_EPARSE);
	assert_string_equal(why, "sections and lists nested too deep");

	uint8_t *big = calloc(1, VICI_MAX_PACKET + 1);
	assert_non_null(big);
	assert_int_equal(vici_msg_parse(big, VICI_MAX_PACKET + 1, &msg, &why), SG_ERANGE);
	free(big);
}

static void test_builder_rejects(void **state)
{
	struct vici_builder b;
	const uint8_t *m;
	size_t len;
	const char *why;
	char longname[300];
	(void)state;
	memset(longname, 'n', sizeof(longname));
	longname[256] = 0;

#define EXPECT_FAIL(code, msgtxt)                                                                  \
	do {                                                                                       \
		assert_int_equal(vici_builder_finish(&b, &m, &len, &why), (code));                 \
		assert_string_equal(why, (msgtxt));                                                \
		assert_null(m);                                                                    \
		vici_builder_free(&b);                                                             \
	} while (0)

	vici_builder_init(&b);
	vici_add_list_item_str(&b, "x");
	EXPECT_FAIL(SG_EINVAL, "list item outside a list");

	vici_builder_init(&b);
	vici_add_list_start(&b, "l");
	vici_add_kv_str(&b, "k", "v");
	EXPECT_FAIL(SG_EINVAL, "only items may be added inside a list");

	vici_builder_init(&b);
	vici_add_list_start(&b, "l");
	vici_add_section_start(&b, "s");
	EXPECT_FAIL(SG_EINVAL, "only items may be added inside a list");

	vici_builder_init(&b);
	vici_add_section_end(&b);
	EXPECT_FAIL(SG_EINVAL, "section end without an open section");

	vici_builder_init(&b);
	vici_add_section_start(&b, "s");
	vici_add_list_end(&b);
	EXPECT_FAIL(SG_EINVAL, "list end without an open list");

	vici_builder_init(&b);
	vici_add_section_start(&b, "s");
	EXPECT_FAIL(SG_EINVAL, "unclosed section or list");

	vici_builder_init(&b);
	vici_add_kv_str(&b, longname, "v");
	EXPECT_FAIL(SG_ERANGE, "name longer than 255 bytes");

	/* The error is sticky: later valid calls do not clear it. */
	vici_builder_init(&b);
	char *bigval = malloc(VICI_MAX_VALUE + 1);
	assert_non_null(bigval);
	memset(bigval, 'v', VICI_MAX_VALUE + 1);
	vici_add_kv(&b, "k", bigval, VICI_MAX_VALUE + 1);
	vici_add_kv_str(&b, "ok", "fine");
	EXPECT_FAIL(SG_ERANGE, "value longer than 65535 bytes");

	vici_builder_init(&b);
	for (unsigned i = 0; i <= VICI_MAX_DEPTH; i++)
		vici_add_section_start(&b, "s");
	EXPECT_FAIL(SG_ERANGE, "sections and lists nested too deep");

	/* 512 KiB in total: nine 64 KiB values do not fit. */
	vici_builder_init(&b);
	for (int i = 0; i < 9; i++)
		vici_add_kv(&b, "k", bigval, VICI_MAX_VALUE);
	EXPECT_FAIL(SG_ERANGE, "message larger than 512 KiB");
	free(bigval);

	/* A 255-byte name and a 65535-byte value are the largest allowed. */
	vici_builder_init(&b);
	longname[255] = 0;
	vici_add_kv(&b, longname, "", 0);
	assert_int_equal(vici_builder_finish(&b, &m, &len, &why), 0);
	assert_int_equal(len, 1 + 1 + 255 + 2);
	vici_builder_free(&b);
#undef EXPECT_FAIL
}

static void test_packets(void **state)
{
	/* CMD_REQUEST "version" with an empty message: length 9, type 0, name. */
	static const uint8_t version_req[] = {0, 0, 0, 9, 0, 7, 'v', 'e', 'r', 's', 'i', 'o', 'n'};
	static const uint8_t confirm[] = {0, 0, 0, 1, 5};
	struct vici_builder out;
	struct vici_packet p;
	const char *why;
	(void)state;
	vici_builder_init(&out);
	assert_int_equal(vici_packet_encode(&out, VICI_CMD_REQUEST, "version", NULL, 0, &why), 0);
	assert_int_equal(out.len, sizeof(version_req));
	assert_memory_equal(out.buf, version_req, out.len);
	out.len = 0;
	assert_int_equal(vici_packet_encode(&out, VICI_EVENT_CONFIRM, "ignored", NULL, 0, &why), 0);
	assert_memory_equal(out.buf, confirm, sizeof(confirm));
	out.len = 0;
	assert_int_equal(vici_packet_encode(&out, VICI_EVENT, "", NULL, 0, &why), SG_EINVAL);
	assert_int_equal(vici_packet_encode(&out, (enum vici_packet_type)8, NULL, NULL, 0, &why),
			 SG_EINVAL);
	assert_int_equal(out.len, 0);
	/* A CMD_RESPONSE carrying the README message. */
	assert_int_equal(
	    vici_packet_encode(&out, VICI_CMD_RESPONSE, NULL, readme_msg, sizeof(readme_msg), &why),
	    0);
	assert_int_equal(out.len, 4 + 1 + sizeof(readme_msg));
	assert_int_equal(vici_packet_decode(out.buf + 4, out.len - 4, &p, &why), 0);
	assert_int_equal(p.type, VICI_CMD_RESPONSE);
	assert_string_equal(p.name, "");
	assert_int_equal(p.msg_len, sizeof(readme_msg));
	assert_memory_equal(p.msg, readme_msg, p.msg_len);
	vici_builder_free(&out);

	assert_int_equal(vici_packet_decode(version_req + 4, 9, &p, &why), 0);
	assert_int_equal(p.type, VICI_CMD_REQUEST);
	assert_string_equal(p.name, "version");
	assert_int_equal(p.msg_len, 0);

	static const uint8_t bad_type[] = {8};
	static const uint8_t no_name[] = {7};
	static const uint8_t empty_name[] = {3, 0};
	static const uint8_t short_name[] = {0, 5, 'a', 'b'};
	static const uint8_t nul_name[] = {7, 2, 'a', 0};
	assert_int_equal(vici_packet_decode(bad_type, 1, &p, &why), SG_EPARSE);
	assert_string_equal(why, "unknown packet type");
	assert_int_equal(vici_packet_decode(no_name, 1, &p, &why), SG_EPARSE);
	assert_int_equal(vici_packet_decode(empty_name, 2, &p, &why), SG_EPARSE);
	assert_int_equal(vici_packet_decode(short_name, 4, &p, &why), SG_EPARSE);
	assert_string_equal(why, "packet name runs past the end");
	assert_int_equal(vici_packet_decode(nul_name, 4, &p, &why), SG_EPARSE);
	assert_int_equal(vici_packet_decode(bad_type, 0, &p, &why), SG_EPARSE);
	assert_string_equal(vici_type_name(VICI_EVENT_UNKNOWN), "EVENT_UNKNOWN");
	assert_string_equal(vici_type_name(9), "?");
}

static void test_stream(void **state)
{
	static const uint8_t two[] = {0, 0, 0, 1, 5, 0, 0, 0, 2, 1, 9};
	struct vici_stream s;
	const char *why;
	(void)state;
	/* Byte by byte: the first packet completes at byte 5 and feeding stops there. */
	vici_stream_init(&s);
	size_t pos = 0;
	int packets = 0;
	while (pos < sizeof(two)) {
		long n = vici_stream_feed(&s, two + pos, 1, &why);
		assert_true(n == 1);
		pos++;
		if (s.ready) {
			packets++;
			if (packets == 1) {
				assert_int_equal(s.body_len, 1);
				assert_int_equal(s.body[0], 5);
				assert_int_equal(pos, 5);
			} else {
				assert_int_equal(s.body_len, 2);
				assert_int_equal(s.body[1], 9);
			}
			/* Nothing more is taken until the packet is consumed. */
			assert_int_equal(vici_stream_feed(&s, two, 1, &why), 0);
			vici_stream_next(&s);
		}
	}
	assert_int_equal(packets, 2);
	/* All at once: two calls. */
	long n = vici_stream_feed(&s, two, sizeof(two), &why);
	assert_int_equal(n, 5);
	vici_stream_next(&s);
	n = vici_stream_feed(&s, two + 5, sizeof(two) - 5, &why);
	assert_int_equal(n, 6);
	assert_true(s.ready);
	vici_stream_free(&s);

	static const uint8_t zero[] = {0, 0, 0, 0};
	static const uint8_t huge[] = {0, 8, 0, 1};
	vici_stream_init(&s);
	assert_int_equal(vici_stream_feed(&s, zero, 4, &why), SG_EPARSE);
	vici_stream_free(&s);
	assert_int_equal(vici_stream_feed(&s, huge, 4, &why), SG_EPARSE);
	assert_string_equal(why, "packet larger than 512 KiB");
	vici_stream_free(&s);
}

static void test_uri(void **state)
{
	struct sockaddr_storage ss;
	unsigned len;
	const char *why;
	(void)state;
	assert_int_equal(vici_uri_parse("unix:///var/run/charon.vici", &ss, &len, &why), 0);
	assert_int_equal(ss.ss_family, AF_UNIX);
	assert_string_equal(((struct sockaddr_un *)&ss)->sun_path, "/var/run/charon.vici");
	assert_int_equal(vici_uri_parse("tcp://127.0.0.1:4502", &ss, &len, &why), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(vici_uri_parse("tcp://[::1]:4502", &ss, &len, &why), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(vici_uri_parse("tcp://host.example:4502", &ss, &len, &why), SG_EINVAL);
	assert_int_equal(vici_uri_parse("tcp://127.0.0.1:0", &ss, &len, &why), SG_EINVAL);
	assert_int_equal(vici_uri_parse("tcp://127.0.0.1", &ss, &len, &why), SG_EINVAL);
	assert_int_equal(vici_uri_parse("unix://", &ss, &len, &why), SG_EINVAL);
	assert_int_equal(vici_uri_parse("/var/run/charon.vici", &ss, &len, &why), SG_EINVAL);
	assert_string_equal(why, "URI must start with unix:// or tcp://");
}

/* ---- client against server ---------------------------------------------------------------- */

struct srv_fixture {
	char dir[64];
	char uri[128];
	struct evloop *loop;
	struct vici_server *srv;
	pthread_t thread;
	int stop_pipe[2];
	struct evloop_source stop_src;
	volatile int stop;
	uint64_t pending_conn; /* the "slow" command's connection */
	int closed_calls;      /* written by the server thread: read with __atomic */
	int respond_rc[2];     /* the two vici_server_respond results of the last 'r' */
	int responded;
};

static bool fx_event_known(void *ctx, const char *event)
{
	(void)ctx;
	return strcmp(event, "list-item") == 0 || strcmp(event, "ike-updown") == 0;
}

static int fx_command(void *ctx, uint64_t conn, const char *cmd, const struct vici_node *req,
		      struct vici_builder *resp)
{
	struct srv_fixture *fx = ctx;
	if (strcmp(cmd, "version") == 0) {
		vici_add_kv_str(resp, "daemon", "test");
		vici_add_kv_str(resp, "version", "1.0");
		return 0;
	}
	if (strcmp(cmd, "echo") == 0) {
		vici_add_tree(resp, req);
		return 0;
	}
	if (strcmp(cmd, "stream") == 0) {
		/* Three events (to the registered client only), then the response. */
		for (int i = 0; i < 3; i++) {
			struct vici_builder ev;
			vici_builder_init(&ev);
			vici_add_kv_fmt(&ev, "n", "%d", i);
			int rc = vici_server_event(fx->srv, conn, "list-item", &ev);
			vici_builder_free(&ev);
			if (rc != 0)
				break;
		}
		vici_add_kv_str(resp, "success", "yes");
		return 0;
	}
	if (strcmp(cmd, "slow") == 0) {
		__atomic_store_n(&fx->pending_conn, conn, __ATOMIC_SEQ_CST);
		return VICI_PENDING;
	}
	if (strcmp(cmd, "fail") == 0)
		return SG_EPERM;
	if (strcmp(cmd, "badresp") == 0) {
		vici_add_section_start(resp, "unclosed");
		return 0;
	}
	return SG_ENOENT;
}

static void fx_closed(void *ctx, uint64_t conn)
{
	struct srv_fixture *fx = ctx;
	(void)conn;
	__atomic_add_fetch(&fx->closed_calls, 1, __ATOMIC_SEQ_CST);
}

static void fx_stop(void *ctx, uint32_t events)
{
	struct srv_fixture *fx = ctx;
	char c[16];
	(void)events;
	ssize_t n = read(fx->stop_pipe[0], c, sizeof(c));
	for (ssize_t i = 0; i < n; i++) {
		if (c[i] == 'q') {
			fx->stop = 1;
		} else if (c[i] == 'r' && fx->pending_conn) {
			/* Answer the pending "slow" command, after an event to it. */
			struct vici_builder b;
			vici_builder_init(&b);
			vici_add_kv_str(&b, "late", "yes");
			(void)vici_server_event(fx->srv, fx->pending_conn, "list-item", &b);
			/* No cmocka asserts on this thread: the test thread checks these. */
			fx->respond_rc[0] = vici_server_respond(fx->srv, fx->pending_conn, &b);
			fx->respond_rc[1] = vici_server_respond(fx->srv, fx->pending_conn, &b);
			vici_builder_free(&b);
			__atomic_store_n(&fx->pending_conn, 0, __ATOMIC_SEQ_CST);
			__atomic_add_fetch(&fx->responded, 1, __ATOMIC_SEQ_CST);
		} else if (c[i] == 'b') {
			struct vici_builder b;
			vici_builder_init(&b);
			vici_add_kv_str(&b, "up", "yes");
			vici_server_broadcast(fx->srv, "ike-updown", &b);
			vici_builder_free(&b);
		}
	}
}

static void *fx_thread(void *arg)
{
	struct srv_fixture *fx = arg;
	while (!fx->stop)
		if (evloop_run_once(fx->loop, 1000) < 0)
			break;
	return NULL;
}

static void fx_poke(struct srv_fixture *fx, char c)
{
	assert_int_equal(write(fx->stop_pipe[1], &c, 1), 1);
}

static int fx_setup(void **state)
{
	struct srv_fixture *fx = calloc(1, sizeof(*fx));
	const char *why = NULL;
	struct vici_server_ops ops = {
	    .ctx = fx, .command = fx_command, .event_known = fx_event_known, .closed = fx_closed};
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/sg-vici-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->uri, sizeof(fx->uri), "unix://%s/v.vici", fx->dir);
	assert_int_equal(evloop_new(&fx->loop), 0);
	assert_int_equal(pipe(fx->stop_pipe), 0);
	assert_int_equal(evloop_add(fx->loop, &fx->stop_src, fx->stop_pipe[0], 0x001, fx_stop, fx),
			 0);
	int err = vici_server_new(fx->loop, fx->uri, &ops, &fx->srv, &why);
	if (err)
		fail_msg("vici_server_new: %d %s", err, why);
	/* The socket is 0770, as charon's. */
	struct stat st;
	char path[128];
	snprintf(path, sizeof(path), "%s/v.vici", fx->dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0770);
	assert_int_equal(pthread_create(&fx->thread, NULL, fx_thread, fx), 0);
	*state = fx;
	return 0;
}

static int fx_teardown(void **state)
{
	struct srv_fixture *fx = *state;
	char path[128];
	fx_poke(fx, 'q');
	pthread_join(fx->thread, NULL);
	vici_server_free(fx->srv);
	snprintf(path, sizeof(path), "%s/v.vici", fx->dir);
	assert_int_not_equal(access(path, F_OK), 0); /* removed */
	evloop_del(fx->loop, &fx->stop_src);
	evloop_free(fx->loop);
	close(fx->stop_pipe[0]);
	close(fx->stop_pipe[1]);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

static void count_event(void *ctx, const char *event, const struct vici_node *msg)
{
	int *n = ctx;
	char want[4];
	assert_string_equal(event, "list-item");
	if (vici_get_str(msg, "late"))
		return;
	snprintf(want, sizeof(want), "%d", *n);
	assert_string_equal(vici_get_str(msg, "n"), want);
	(*n)++;
}

static void test_client_server(void **state)
{
	struct srv_fixture *fx = *state;
	struct vici_client *c;
	struct vici_msg *resp;
	const char *why = NULL;
	int err = vici_client_connect(fx->uri, 5000, &c, &why);
	if (err)
		fail_msg("connect: %s", why);

	assert_int_equal(vici_client_request(c, "version", NULL, NULL, NULL, &resp, &why), 0);
	assert_string_equal(vici_get_str(vici_msg_root(resp), "daemon"), "test");
	vici_msg_free(resp);

	/* A nested request comes back unchanged. */
	struct vici_builder req;
	build_readme(&req);
	assert_int_equal(vici_client_request(c, "echo", &req, NULL, NULL, &resp, &why), 0);
	vici_builder_free(&req);
	assert_string_equal(vici_get_str(vici_msg_root(resp), "section1.sub-section.key2"),
			    "value2");
	vici_msg_free(resp);

	assert_int_equal(vici_client_request(c, "nosuch", NULL, NULL, NULL, &resp, &why),
			 SG_ENOENT);
	assert_null(resp);
	assert_int_equal(vici_client_request(c, "fail", NULL, NULL, NULL, &resp, &why), 0);
	assert_string_equal(vici_get_str(vici_msg_root(resp), "success"), "no");
	assert_string_equal(vici_get_str(vici_msg_root(resp), "errmsg"), "operation not permitted");
	vici_msg_free(resp);
	assert_int_equal(vici_client_request(c, "badresp", NULL, NULL, NULL, &resp, &why), 0);
	assert_non_null(strstr(vici_get_str(vici_msg_root(resp), "errmsg"), "unclosed"));
	vici_msg_free(resp);

	/* Events only after registering; unknown events refused. */
	int n = 0;
	assert_int_equal(vici_client_request(c, "stream", NULL, count_event, &n, NULL, &why), 0);
	assert_int_equal(n, 0);
	assert_int_equal(vici_client_register(c, "nosuch", true, &why), SG_ENOENT);
	assert_int_equal(vici_client_register(c, "list-item", true, &why), 0);
	assert_int_equal(vici_client_request(c, "stream", NULL, count_event, &n, NULL, &why), 0);
	assert_int_equal(n, 3);
	assert_int_equal(vici_client_register(c, "list-item", false, &why), 0);
	n = 0;
	assert_int_equal(vici_client_request(c, "stream", NULL, count_event, &n, NULL, &why), 0);
	assert_int_equal(n, 0);

	/* A deferred response, with an event before it. */
	assert_int_equal(vici_client_register(c, "list-item", true, &why), 0);
	struct vici_client *c2;
	assert_int_equal(vici_client_connect(fx->uri, 5000, &c2, &why), 0);
	assert_int_equal(vici_client_register(c2, "ike-updown", true, &why), 0);
	/* Another client is served while the first waits: the server does not block. */
	fx_poke(fx, 'b'); /* broadcast ike-updown: only c2 registered it */
	char name[VICI_MAX_NAME + 1];
	struct vici_msg *ev;
	assert_int_equal(vici_client_wait_event(c2, 5000, name, &ev, &why), 0);
	assert_string_equal(name, "ike-updown");
	assert_string_equal(vici_get_str(vici_msg_root(ev), "up"), "yes");
	vici_msg_free(ev);
	assert_int_equal(vici_client_wait_event(c2, 50, name, &ev, &why), SG_EAGAIN);

	/* A client that gives up on a slow command (the server never answers in time). */
	vici_client_set_timeout(c, 300);
	err = vici_client_request(c, "slow", NULL, count_event, &n, &resp, &why);
	assert_int_equal(err, SG_EIO); /* timed out: nothing came */
	assert_string_equal(why, "timeout waiting for the VICI server");
	vici_client_free(c); /* the server's `closed` runs (bounded wait) */
	for (int i = 0; i < 500 && !__atomic_load_n(&fx->closed_calls, __ATOMIC_SEQ_CST); i++)
		usleep(10000);
	assert_int_equal(__atomic_load_n(&fx->closed_calls, __ATOMIC_SEQ_CST), 1);
	fx_poke(fx, 'r'); /* the late answer to a closed connection is dropped */
	for (int i = 0; i < 500 && !__atomic_load_n(&fx->responded, __ATOMIC_SEQ_CST); i++)
		usleep(10000);
	assert_int_equal(fx->respond_rc[0], SG_ENOENT);
	assert_int_equal(vici_client_request(c2, "version", NULL, NULL, NULL, &resp, &why), 0);
	vici_msg_free(resp);
	vici_client_free(c2);
}

/* A pending command answered while the client waits (the server thread answers on 'r'). */
static void *answer_later(void *arg)
{
	struct srv_fixture *fx = arg;
	/* Bounded: wait until the server has the command pending. */
	for (int i = 0; i < 500 && !__atomic_load_n(&fx->pending_conn, __ATOMIC_SEQ_CST); i++)
		usleep(10000);
	fx_poke(fx, 'r');
	return NULL;
}

static void test_pending_response(void **state)
{
	struct srv_fixture *fx = *state;
	struct vici_client *c;
	struct vici_msg *resp;
	const char *why = NULL;
	pthread_t t;
	int late = 0; /* count_event ignores the "late" event itself */
	assert_int_equal(vici_client_connect(fx->uri, 5000, &c, &why), 0);
	assert_int_equal(vici_client_register(c, "list-item", true, &why), 0);
	assert_int_equal(pthread_create(&t, NULL, answer_later, fx), 0);
	assert_int_equal(vici_client_request(c, "slow", NULL, count_event, &late, &resp, &why), 0);
	pthread_join(t, NULL);
	assert_string_equal(vici_get_str(vici_msg_root(resp), "late"), "yes");
	/* The response reaches the client before the server thread records the second
	 * vici_server_respond result: wait for the thread to finish the 'r' poke. */
	for (int i = 0; i < 500 && !__atomic_load_n(&fx->responded, __ATOMIC_SEQ_CST); i++)
		usleep(10000);
	assert_int_equal(__atomic_load_n(&fx->responded, __ATOMIC_SEQ_CST), 1);
	assert_int_equal(fx->respond_rc[0], 0);
	assert_int_equal(fx->respond_rc[1], SG_ENOENT); /* answered once only */
	vici_msg_free(resp);
	/* The connection goes on normally afterwards. */
	assert_int_equal(vici_client_request(c, "version", NULL, NULL, NULL, &resp, &why), 0);
	vici_msg_free(resp);
	vici_client_free(c);
}

/* Raw bytes to the server: a malformed packet closes the connection, a malformed message gets
 * an error response and the connection stays. */
static int raw_connect(const char *uri)
{
	struct sockaddr_storage ss;
	unsigned len;
	const char *why;
	assert_int_equal(vici_uri_parse(uri, &ss, &len, &why), 0);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&ss, len), 0);
	struct timeval tv = {.tv_sec = 5};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void test_server_hostile(void **state)
{
	struct srv_fixture *fx = *state;
	uint8_t buf[256];
	(void)state;
	/* A message that does not parse: an error response, connection kept. */
	static const uint8_t badmsg[] = {0, 0, 0, 4, 0, 1, 'x', 9};
	int fd = raw_connect(fx->uri);
	assert_int_equal(write(fd, badmsg, sizeof(badmsg)), sizeof(badmsg));
	ssize_t n = recv(fd, buf, sizeof(buf), 0);
	assert_true(n > 5);
	assert_int_equal(buf[4], VICI_CMD_RESPONSE);
	struct vici_msg *m;
	assert_int_equal(vici_msg_parse(buf + 5, (size_t)n - 5, &m, NULL), 0);
	assert_non_null(strstr(vici_get_str(vici_msg_root(m), "errmsg"), "unknown element type"));
	vici_msg_free(m);
	/* A response packet from a client: closed. */
	static const uint8_t resp_pkt[] = {0, 0, 0, 1, 1};
	assert_int_equal(write(fd, resp_pkt, sizeof(resp_pkt)), sizeof(resp_pkt));
	assert_int_equal(recv(fd, buf, sizeof(buf), 0), 0);
	close(fd);
	/* A declared length beyond 512 KiB: closed. */
	static const uint8_t huge[] = {0, 0x10, 0, 0, 0};
	fd = raw_connect(fx->uri);
	assert_int_equal(write(fd, huge, sizeof(huge)), sizeof(huge));
	assert_int_equal(recv(fd, buf, sizeof(buf), 0), 0);
	close(fd);
	/* Two requests in one write (pipelined): both answered, in order. */
	static const uint8_t two[] = {0,   0, 0, 9, 0, 7, 'v', 'e', 'r', 's', 'i', 'o',
				      'n', 0, 0, 0, 6, 0, 4,   'n', 'o', 'p', 'e'};
	fd = raw_connect(fx->uri);
	assert_int_equal(write(fd, two, sizeof(two)), sizeof(two));
	size_t got = 0;
	while (got < 5 || got < 4 + (size_t)buf[3] + 5) {
		n = recv(fd, buf + got, sizeof(buf) - got, 0);
		assert_true(n > 0);
		got += (size_t)n;
	}
	assert_int_equal(buf[4], VICI_CMD_RESPONSE);
	size_t first = 4 + (size_t)buf[3];
	assert_int_equal(buf[first + 4], VICI_CMD_UNKNOWN);
	close(fd);
	/* Too many connections: the extra ones are closed at once, the server stays. */
	int fds[VICI_SERVER_MAX_CONNS + 2];
	for (int i = 0; i < VICI_SERVER_MAX_CONNS + 2; i++)
		fds[i] = raw_connect(fx->uri);
	assert_int_equal(recv(fds[VICI_SERVER_MAX_CONNS + 1], buf, sizeof(buf), 0), 0);
	for (int i = 0; i < VICI_SERVER_MAX_CONNS + 2; i++)
		close(fds[i]);
	struct vici_client *c;
	struct vici_msg *resp;
	const char *why;
	/* Closing takes the server a loop turn: retry the connect briefly (bounded). */
	int err = SG_EIO;
	for (int i = 0; i < 100 && err; i++) {
		err = vici_client_connect(fx->uri, 5000, &c, &why);
		if (!err) {
			err = vici_client_request(c, "version", NULL, NULL, NULL, &resp, &why);
			if (err)
				vici_client_free(c);
		}
		if (err)
			usleep(10000);
	}
	assert_int_equal(err, 0);
	vici_msg_free(resp);
	vici_client_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_build_readme_example),
	    cmocka_unit_test(test_parse_readme_example),
	    cmocka_unit_test(test_parse_binary_and_empty),
	    cmocka_unit_test(test_parse_rejects),
	    cmocka_unit_test(test_parse_depth_and_size),
	    cmocka_unit_test(test_builder_rejects),
	    cmocka_unit_test(test_packets),
	    cmocka_unit_test(test_stream),
	    cmocka_unit_test(test_uri),
	    cmocka_unit_test_setup_teardown(test_client_server, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_pending_response, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_server_hostile, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
