/* Unit tests of the gateway's sans-I/O parts: the strict HTTP/1.1 head parser and chunked
 * decoder (RFC 9112), path normalization (RFC 3986 section 5.2.4), the config validator and
 * its persistence, the balancer and the token bucket. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "gateway/gw_int.h"
#include "secureguard/sg_errors.h"

static const struct sg_http_limits lim = {.max_head = 4096, .max_target = 1024, .max_headers = 32};

static int req(const char *s, struct sg_http_msg *m, const char **why)
{
	return sg_http_parse_request(s, strlen(s), &lim, m, why);
}

static void test_request_ok(void **state)
{
	struct sg_http_msg m;
	const char *why;
	(void)state;
	const char *s = "\r\nPOST /a?b=1 HTTP/1.1\r\nHost: app.test\r\nContent-Length: 12\r\n"
			"Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nX-Empty:\r\n\r\nbody";
	int n = req(s, &m, &why);
	assert_int_equal(n, (int)(strstr(s, "\r\n\r\n") - s + 4));
	assert_int_equal(m.method_id, SG_HTTP_M_POST);
	assert_int_equal(m.target_len, 6);
	assert_memory_equal(m.target, "/a?b=1", 6);
	assert_int_equal(m.body, SG_HTTP_BODY_LENGTH);
	assert_int_equal(m.content_length, 12);
	assert_true(m.keep_alive);
	assert_true(m.upgrade_websocket);
	assert_int_equal(m.host_len, 8);
	assert_int_equal(m.n_headers, 5);
	assert_int_equal(m.headers[4].value_len, 0);
	/* Incomplete heads ask for more, at every cut. */
	for (size_t cut = 0; cut < (size_t)n; cut++)
		assert_int_equal(sg_http_parse_request(s, cut, &lim, &m, &why), SG_HTTP_INCOMPLETE);
	/* HTTP/1.0 closes unless asked; chunked and OWS trimming. */
	assert_true(req("GET / HTTP/1.0\r\n\r\n", &m, &why) > 0);
	assert_false(m.keep_alive);
	assert_true(req("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  Chunked \r\n\r\n", &m,
			&why) > 0);
	assert_int_equal(m.body, SG_HTTP_BODY_CHUNKED);
	assert_true(req("OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &m, &why) > 0);
	assert_false(m.keep_alive);
	assert_true(req("GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n", &m, &why) > 0);
}

static void expect_status(const char *s, int status, const char *why_part)
{
	struct sg_http_msg m;
	const char *why = NULL;
	int rc = req(s, &m, &why);
	if (rc != -status)
		fail_msg("%s: got %d (%s), want -%d", s, rc, why ? why : "-", status);
	assert_non_null(why);
	if (why_part && !strstr(why, why_part))
		fail_msg("%s: reason '%s' lacks '%s'", s, why, why_part);
}

static void test_request_refused(void **state)
{
	(void)state;
	/* Smuggling: RFC 9112 sections 6.1 and 6.3. */
	expect_status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
		      400, "more than one Content-Length");
	expect_status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", 400,
		      "plain decimal");
	expect_status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400, NULL);
	expect_status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
		      "Transfer-Encoding: chunked\r\n\r\n",
		      400, "both Content-Length and Transfer-Encoding");
	expect_status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
		      "Transfer-Encoding: chunked\r\n\r\n",
		      400, "more than one Transfer-Encoding");
	expect_status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501,
		      NULL);
	expect_status("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "HTTP/1.0");
	expect_status("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400, "whitespace between");
	expect_status("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400, "folding");
	expect_status("GET / HTTP/1.1\nHost: a\n\n", 400, "bare LF");
	expect_status("GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n", 400, "bare CR");
	expect_status("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01" "b\r\n\r\n", 400, "control");
	expect_status("GET / HTTP/1.1\r\n\r\n", 400, "without Host");
	expect_status("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "more than one Host");
	expect_status("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, NULL);
	expect_status("GET / HTTX/1.1\r\nHost: a\r\n\r\n", 400, "version");
	expect_status("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, NULL);
	expect_status("GET x HTTP/1.1\r\nHost: a\r\n\r\n", 400, "origin-form");
	expect_status("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", 501, "CONNECT");
	expect_status("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "method");

	/* Limits. */
	char big[6000];
	memcpy(big, "GET /", 5);
	memset(big + 5, 'a', 2000);
	strcpy(big + 2005, " HTTP/1.1\r\nHost: a\r\n\r\n");
	expect_status(big, 414, NULL);
	strcpy(big, "GET / HTTP/1.1\r\nHost: a\r\nX: ");
	memset(big + strlen(big), 'b', 5000);
	big[5900] = '\0';
	struct sg_http_msg m;
	const char *why;
	assert_int_equal(sg_http_parse_request(big, strlen(big), &lim, &m, &why), -431);
	char many[4096] = "GET / HTTP/1.1\r\nHost: a\r\n";
	for (int i = 0; i < 40; i++)
		strcat(many, "X-A: b\r\n");
	strcat(many, "\r\n");
	expect_status(many, 431, "too many");
}

static void test_response(void **state)
{
	struct sg_http_msg m;
	const char *why;
	struct sg_http_limits l = {.max_head = 4096, .max_target = 4096, .max_headers = 64};
	(void)state;
	const char *r = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
	assert_int_equal(sg_http_parse_response(r, strlen(r), &l, SG_HTTP_M_GET, &m, &why),
			 (int)strlen(r) - 3);
	assert_int_equal(m.status, 200);
	assert_int_equal(m.body, SG_HTTP_BODY_LENGTH);
	assert_true(m.keep_alive);
	r = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n";
	assert_true(sg_http_parse_response(r, strlen(r), &l, SG_HTTP_M_HEAD, &m, &why) > 0);
	assert_int_equal(m.body, SG_HTTP_BODY_NONE);
	r = "HTTP/1.1 204 No Content\r\n\r\n";
	assert_true(sg_http_parse_response(r, strlen(r), &l, SG_HTTP_M_GET, &m, &why) > 0);
	assert_int_equal(m.body, SG_HTTP_BODY_NONE);
	assert_true(m.keep_alive);
	r = "HTTP/1.0 200 OK\r\n\r\n";
	assert_true(sg_http_parse_response(r, strlen(r), &l, SG_HTTP_M_GET, &m, &why) > 0);
	assert_int_equal(m.body, SG_HTTP_BODY_CLOSE);
	assert_false(m.keep_alive);
	r = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
	assert_int_equal(sg_http_parse_response(r, strlen(r), &l, SG_HTTP_M_GET, &m, &why), -502);
	r = "HTTP/1.1 2000 OK\r\n\r\n";
	assert_int_equal(sg_http_parse_response(r, strlen(r), &l, SG_HTTP_M_GET, &m, &why), -502);
	r = "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n";
	assert_true(sg_http_parse_response(r, strlen(r), &l, SG_HTTP_M_GET, &m, &why) > 0);
	assert_true(m.upgrade_websocket);
}

/* Decodes all of s in pieces of `step` bytes; returns the decoded data (static buffer). */
static int chunked_all(const char *s, size_t len, size_t step, char *out, size_t *out_len,
		       size_t *rest)
{
	struct sg_http_chunked c = {0};
	size_t pos = 0, o = 0;
	*rest = 0;
	while (pos < len) {
		size_t n = len - pos < step ? len - pos : step;
		while (n) {
			size_t used;
			const uint8_t *d;
			size_t dl;
			const char *why;
			int rc = sg_http_chunked_feed(&c, (const uint8_t *)s + pos, n, &used, &d, &dl, &why);
			if (rc < 0) {
				assert_non_null(why);
				return -1;
			}
			if (dl)
				memcpy(out + o, d, dl);
			o += dl;
			pos += used;
			n -= used;
			if (rc == 1) {
				*out_len = o;
				*rest = len - pos;
				return 1;
			}
			if (used == 0)
				break;
		}
	}
	*out_len = o;
	return 0;
}

static void test_chunked(void **state)
{
	char out[256];
	size_t ol, rest;
	(void)state;
	const char *s = "5\r\nhello\r\n1;ext=\"q\"\r\n \r\nA\r\n0123456789\r\n0\r\nT: x\r\n\r\nNEXT";
	for (size_t step = 1; step <= strlen(s); step++) {
		assert_int_equal(chunked_all(s, strlen(s), step, out, &ol, &rest), 1);
		assert_int_equal(ol, 16);
		assert_memory_equal(out, "hello 0123456789", 16);
		assert_int_equal(rest, 4);
	}
	assert_int_equal(chunked_all("5\r\nhello", 8, 3, out, &ol, &rest), 0);
	assert_int_equal(chunked_all("5 \r\nhello\r\n0\r\n\r\n", 17, 100, out, &ol, &rest), -1);
	assert_int_equal(chunked_all("5\nhello\r\n0\r\n\r\n", 14, 100, out, &ol, &rest), -1);
	assert_int_equal(chunked_all("5\r\nhelloX\r\n0\r\n\r\n", 16, 100, out, &ol, &rest), -1);
	assert_int_equal(chunked_all("-1\r\n", 4, 100, out, &ol, &rest), -1);
	assert_int_equal(chunked_all("fffffffffffffffff\r\n", 19, 100, out, &ol, &rest), -1);
	assert_int_equal(chunked_all("0\r\nX\r\n\r\n", 8, 100, out, &ol, &rest), -1);
}

static void norm(const char *in, const char *want)
{
	char out[256];
	int n = sg_http_normalize_path(in, strlen(in), out, sizeof(out));
	if (!want) {
		assert_int_equal(n, -1);
		return;
	}
	if (n < 0 || strcmp(out, want) != 0)
		fail_msg("normalize(%s) = %s, want %s", in, n < 0 ? "(refused)" : out, want);
}

static void test_normalize(void **state)
{
	(void)state;
	norm("/", "/");
	norm("/a/b/c/./../../g", "/a/g"); /* RFC 3986 section 5.4.2 */
	norm("/mid/content=5/../6", "/mid/6");
	norm("/%61dmin/x", "/admin/x");
	norm("/a/%2e%2E/admin", "/admin");
	norm("/a%2fb", "/a%2Fb");
	norm("/..", "/");
	norm("/../../x", "/x");
	norm("/a/.", "/a/");
	norm("/a/..", "/");
	norm("//a//b", "//a//b");
	norm("/a%00", NULL);
	norm("/a%zz", NULL);
	norm("/a%4", NULL);
	norm("/a\\..\\b", NULL);
	assert_true(sg_http_host_ok("app.example.com:8443", 20));
	assert_true(sg_http_host_ok("[2001:db8::1]:80", 16));
	assert_false(sg_http_host_ok("a\"b", 3));
	assert_false(sg_http_host_ok("a:99999x", 8));
	assert_false(sg_http_host_ok("", 0));
}

static const char *conf_ok =
    "{\"serial\": 7, \"name\": \"gw1\", \"region\": \"eu\", \"limits\": {\"max_head\": 8192},"
    " \"sites\": [{\"id\": \"s1\", \"networks\": [\"10.9.0.0/24\", \"fd00::/64\"]}],"
    " \"resources\": ["
    "  {\"id\": \"web\", \"site\": \"s1\", \"domains\": [\"App.Example.com\", \"*.api.example.com\"],"
    "   \"lb\": \"weighted\", \"sticky_cookie\": \"sgsticky\", \"auth\": \"api_key\","
    "   \"api_keys\": [\"" /* not the hash of any key used here */
    "58a5bbb1f1ed2bc4c77a7db6e13e0d8fce41b45d36a0ae5c1c6c4e1e1a3d2a9f0ee5e24e1b8e8b9b1a2f0c0b8d5e6f7a\"],"
    "   \"rate_limit\": {\"per_source\": {\"rate\": 5, \"burst\": 10}},"
    "   \"rules\": [{\"path\": \"/health\", \"action\": \"allow\"},"
    "              {\"path\": \"/admin/*\", \"methods\": [\"POST\"], \"action\": \"deny\"}],"
    "   \"targets\": [{\"id\": \"a\", \"address\": \"10.9.0.2:80\", \"weight\": 3, \"region\": \"eu\","
    "                \"health_check\": {\"type\": \"http\", \"path\": \"/h\", \"interval_ms\": 1000}},"
    "               {\"id\": \"b\", \"address\": \"[fd00::3]:80\", \"weight\": 1, \"region\": \"us\"}]},"
    "  {\"id\": \"db\", \"protocol\": \"tcp\", \"port\": 5432, \"allow\": [\"192.0.2.0/24\"],"
    "   \"targets\": [{\"id\": \"pg\", \"address\": \"10.9.0.5:5432\"}]}"
    " ]}";

static void expect_conf_error(const char *json, const char *msg)
{
	struct gw_conf *c = (struct gw_conf *)1;
	char err[GW_CONF_ERR_MAX];
	assert_int_not_equal(gw_conf_parse(json, strlen(json), &c, err, sizeof(err)), 0);
	assert_null(c);
	if (!strstr(err, msg))
		fail_msg("error '%s' lacks '%s'", err, msg);
}

static void test_conf(void **state)
{
	struct gw_conf *c;
	char err[GW_CONF_ERR_MAX];
	(void)state;
	int rc = gw_conf_parse(conf_ok, strlen(conf_ok), &c, err, sizeof(err));
	if (rc != 0)
		fail_msg("%s", err);
	assert_int_equal(c->serial, 7);
	assert_int_equal(c->n_resources, 2);
	assert_int_equal(c->limits.max_head, 8192);
	assert_int_equal(c->limits.header_timeout_ms, 10000);
	const struct gw_resource_conf *web = &c->resources[0];
	assert_string_equal(web->domains[0], "app.example.com");
	assert_int_equal(web->lb, GW_LB_WEIGHTED);
	assert_int_equal(web->n_rules, 2);
	assert_string_equal(web->rules[1].path_prefix, "/admin/");
	assert_int_equal(web->rules[1].methods, 1u << SG_HTTP_M_POST);
	assert_int_equal(web->targets[0].hc.type, GW_HC_HTTP);
	assert_int_equal(web->targets[1].hc.type, GW_HC_NONE);
	assert_int_equal(web->rate_source.burst, 10);
	assert_ptr_equal(gw_conf_find_host(c, "APP.example.com:443", 19), web);
	assert_ptr_equal(gw_conf_find_host(c, "x.api.example.com", 17), web);
	assert_null(gw_conf_find_host(c, "x.y.api.example.com", 19)); /* one label only */
	assert_null(gw_conf_find_host(c, "api.example.com", 15));
	assert_null(gw_conf_find_host(c, "[::1]", 5));

	/* Kept on disk 0600, read back through the validator. */
	char dir[] = "/tmp/sg_gw_unit.XXXXXX";
	assert_non_null(mkdtemp(dir));
	assert_int_equal(gw_conf_save(c, dir, err, sizeof(err)), 0);
	char path[128];
	snprintf(path, sizeof(path), "%s/config.json", dir);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	struct gw_conf *c2;
	assert_int_equal(gw_conf_load_file(path, &c2, err, sizeof(err)), 0);
	assert_int_equal(c2->serial, 7);
	gw_conf_free(c2);
	/* A failed save leaves the old file. */
	char bad[160];
	snprintf(bad, sizeof(bad), "%s/missing", dir);
	assert_int_not_equal(gw_conf_save(c, bad, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "missing"));
	unlink(path);
	rmdir(dir);
	gw_conf_free(c);

	expect_conf_error("{", "line 1");
	expect_conf_error("[]", "must be a JSON object");
	expect_conf_error("{\"resources\": [], \"bogus\": 1}", "bogus: unknown field");
	expect_conf_error("{}", "resources: required");
	expect_conf_error("{\"resources\": [{\"id\": \"a\", \"targets\": [{\"id\": \"t\", "
			  "\"address\": \"10.0.0.1:80\"}]}]}",
			  "resources[0].domains: an http resource needs at least one domain");
	expect_conf_error("{\"resources\": [{\"id\": \"a\", \"domains\": [\"a.b\"], \"targets\": "
			  "[{\"id\": \"t\", \"address\": \"10.0.0.1\"}]}]}",
			  "resources[0].targets[0].address: not IP:PORT");
	expect_conf_error("{\"resources\": [{\"id\": \"a\", \"domains\": [\"a.b\"], \"targets\": "
			  "[{\"id\": \"t\", \"address\": \"10.0.0.1:80\", \"weight\": 0}]}]}",
			  "resources[0].targets[0].weight: must be 1..1000");
	expect_conf_error("{\"resources\": [{\"id\": \"a\", \"domains\": [\"a..b\"], \"targets\": "
			  "[{\"id\": \"t\", \"address\": \"10.0.0.1:80\"}]}]}",
			  "resources[0].domains[0]: not a host name");
	expect_conf_error("{\"sites\": [{\"id\": \"s\", \"networks\": [\"10.1.0.0/16\"]}],"
			  "\"resources\": [{\"id\": \"a\", \"site\": \"s\", \"domains\": [\"a.b\"],"
			  "\"targets\": [{\"id\": \"t\", \"address\": \"10.0.0.1:80\"}]}]}",
			  "outside site \"s\"'s networks");
	expect_conf_error("{\"resources\": [{\"id\": \"a\", \"domains\": [\"a.b\"], \"targets\": "
			  "[{\"id\": \"t\", \"address\": \"10.0.0.1:80\"}]}, {\"id\": \"b\", "
			  "\"domains\": [\"A.b\"], \"targets\": [{\"id\": \"t\", \"address\": "
			  "\"10.0.0.1:80\"}]}]}",
			  "domain a.b already served by resource \"a\"");
	expect_conf_error("{\"resources\": [{\"id\": \"a\", \"auth\": \"login\", \"domains\": [\"a.b\"],"
			  "\"targets\": [{\"id\": \"t\", \"address\": \"10.0.0.1:80\"}]}]}",
			  "login needs an oidc object");
	expect_conf_error("{\"resources\": [{\"id\": \"a\", \"auth\": \"login\", \"domains\": [\"a.b\"],"
			  "\"oidc\": {\"issuer\": \"ftp://x\", \"client_id\": \"c\"},"
			  "\"targets\": [{\"id\": \"t\", \"address\": \"10.0.0.1:80\"}]}]}",
			  "resources[0].oidc.issuer: must be an http(s) URL");
	expect_conf_error("{\"resources\": [{\"id\": \"a\", \"auth\": \"api_key\", \"domains\": "
			  "[\"a.b\"], \"targets\": [{\"id\": \"t\", \"address\": \"10.0.0.1:80\"}]}]}",
			  "needs at least one key");
	expect_conf_error("{\"resources\": [{\"id\": \"a\", \"protocol\": \"udp\", \"targets\": [{\"id\": "
			  "\"t\", \"address\": \"10.0.0.1:53\"}]}]}",
			  "port: required for a udp resource");
	expect_conf_error("{\"resources\": [{\"id\": \"a\", \"domains\": [\"a.b\"], \"targets\": "
			  "[{\"id\": \"t\", \"address\": \"10.0.0.1:80\", \"health_check\": {\"interval_ms\":"
			  " 100, \"timeout_ms\": 500}}]}]}",
			  "timeout_ms must not exceed interval_ms");
	expect_conf_error("{\"resources\": [], \"resources\": []}", "duplicate");
	expect_conf_error("{\"resources\": [{\"id\": \"a\", \"domains\": [\"a.b\"], \"rules\": [{\"path\": "
			  "\"x\", \"action\": \"deny\"}], \"targets\": [{\"id\": \"t\", \"address\": "
			  "\"10.0.0.1:80\"}]}]}",
			  "rules[0].path: must start with /");
}

struct problems {
	char paths[16][192];
	char details[16][GW_CONF_ERR_MAX];
	int n;
};

static void collect(void *ctx, const char *path, const char *detail)
{
	struct problems *p = ctx;
	if (p->n < 16) {
		snprintf(p->paths[p->n], sizeof(p->paths[0]), "%s", path);
		snprintf(p->details[p->n], sizeof(p->details[0]), "%s", detail);
	}
	p->n++;
}

static bool has_problem(const struct problems *p, const char *path, const char *detail)
{
	for (int i = 0; i < p->n && i < 16; i++)
		if (!strcmp(p->paths[i], path) && strstr(p->details[i], detail))
			return true;
	return false;
}

/* gw_conf_check finds every problem (the server lists them all), not only the first. */
static void test_conf_check(void **state)
{
	struct problems p = {0};
	(void)state;
	assert_int_equal(gw_conf_check(conf_ok, strlen(conf_ok), collect, &p), 0);
	assert_int_equal(p.n, 0);
	static const char bad[] =
	    "{\"bogus\": 1, \"limits\": {\"max_head\": 10},"
	    " \"sites\": [{\"id\": \"s\", \"networks\": [\"10.1.0.0/16\"]}],"
	    " \"resources\": ["
	    "  {\"id\": \"a\", \"site\": \"s\", \"domains\": [\"a.b\", \"x..y\"],"
	    "   \"rules\": [{\"path\": \"x\", \"action\": \"deny\"}, {\"methods\": [\"BREW\"]}],"
	    "   \"targets\": [{\"id\": \"t\", \"address\": \"10.0.0.1:80\", \"weight\": 0},"
	    "               {\"id\": \"t\", \"address\": \"nowhere\"}]},"
	    "  {\"id\": \"b\", \"protocol\": \"udp\", \"auth\": \"login\","
	    "   \"targets\": []},"
	    "  {\"id\": \"c\", \"domains\": [\"A.B\"], \"targets\": [{\"id\": \"u\", "
	    "   \"address\": \"10.1.0.1:80\"}]}]}";
	int n = gw_conf_check(bad, strlen(bad), collect, &p);
	assert_int_equal(n, p.n);
	assert_true(has_problem(&p, "bogus", "unknown field"));
	assert_true(has_problem(&p, "limits.max_head", "must be 1024..65536"));
	assert_true(has_problem(&p, "resources[0].domains[1]", "not a host name"));
	assert_true(has_problem(&p, "resources[0].rules[0].path", "must start with /"));
	assert_true(has_problem(&p, "resources[0].rules[1].action", "required"));
	assert_true(has_problem(&p, "resources[0].rules[1].methods[0]", "must be one of"));
	assert_true(has_problem(&p, "resources[0].targets[0].weight", "must be 1..1000"));
	assert_true(has_problem(&p, "resources[0].targets[0]", "outside site"));
	assert_true(has_problem(&p, "resources[0].targets[1]", "used twice"));
	assert_true(has_problem(&p, "resources[0].targets[1].address", "not IP:PORT"));
	assert_true(has_problem(&p, "resources[1].port", "required for a udp resource"));
	assert_true(has_problem(&p, "resources[1].oidc", "") ||
		    has_problem(&p, "resources[1].auth", "login needs an oidc object"));
	assert_true(has_problem(&p, "resources[1].targets", "at least one target"));
	assert_true(has_problem(&p, "resources[2]", "domain a.b already served by resource \"a\""));
	/* The first problem is what gw_conf_parse says. */
	struct gw_conf *c;
	char err[GW_CONF_ERR_MAX];
	assert_int_not_equal(gw_conf_parse(bad, strlen(bad), &c, err, sizeof(err)), 0);
	assert_string_equal(err, "bogus: unknown field");
	/* Not JSON: one problem for the document. */
	p.n = 0;
	assert_int_equal(gw_conf_check("{", 1, collect, &p), 1);
	assert_true(has_problem(&p, "", "line 1"));
}

/* A generation made from conf_ok, without a running process. */
static struct gw_rt *test_rt(struct gw *gw)
{
	struct gw_conf *c;
	char err[GW_CONF_ERR_MAX];
	if (gw_conf_parse(conf_ok, strlen(conf_ok), &c, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	struct gw_rt *rt = gw_rt_new(gw, c, NULL);
	assert_non_null(rt);
	return rt;
}

static void test_balancer(void **state)
{
	struct gw gw;
	(void)state;
	memset(&gw, 0, sizeof(gw));
	struct gw_rt *rt = test_rt(&gw);
	struct gw_res *r = &rt->res[0];
	uint64_t now = 1000000000ull;
	int count[2] = {0, 0};
	/* Weighted 3:1 is exact over any multiple of 4, and spread: never 4 in a row. */
	int run = 0, last = -1;
	for (int i = 0; i < 1000; i++) {
		struct gw_target *t = gw_lb_pick(r, 0, NULL, 0, now);
		assert_non_null(t);
		count[t->index]++;
		run = (int)t->index == last ? run + 1 : 1;
		last = (int)t->index;
		assert_true(run <= 3);
	}
	assert_int_equal(count[0], 750);
	assert_int_equal(count[1], 250);
	/* Sticky id wins while usable; the tried mask excludes. */
	assert_int_equal(gw_lb_pick(r, 0, "b", 1, now)->index, 1);
	assert_int_equal(gw_lb_pick(r, 1ull << 1, "b", 1, now)->index, 0);
	assert_null(gw_lb_pick(r, 3, NULL, 0, now));
	/* Down or ejected targets take nothing. */
	r->targets[0].healthy = false;
	for (int i = 0; i < 10; i++)
		assert_int_equal(gw_lb_pick(r, 0, NULL, 0, now)->index, 1);
	r->targets[0].healthy = true;
	for (uint32_t i = 0; i < r->conf->eject_after; i++)
		gw_target_passive(&r->targets[1], false, now);
	assert_false(gw_target_usable(&r->targets[1], now));
	assert_true(gw_target_usable(&r->targets[1], now + (uint64_t)r->conf->eject_ms * NS_PER_MS));
	/* Region-aware: the gateway is in "eu", so only a; "us" when a is gone. */
	struct gw_resource_conf *rc = (struct gw_resource_conf *)r->conf;
	rc->lb = GW_LB_REGION;
	uint64_t later = now + (uint64_t)r->conf->eject_ms * NS_PER_MS;
	for (int i = 0; i < 8; i++)
		assert_int_equal(gw_lb_pick(r, 0, NULL, 0, later)->index, 0);
	r->targets[0].healthy = false;
	assert_int_equal(gw_lb_pick(r, 0, NULL, 0, later)->index, 1);
	r->targets[0].healthy = true;
	/* Least connections, per unit of weight. */
	rc->lb = GW_LB_LEAST_CONN;
	r->targets[0].active = 5; /* weight 3: 5/3 < 2/1 */
	r->targets[1].active = 2;
	assert_int_equal(gw_lb_pick(r, 0, NULL, 0, later)->index, 0);
	r->targets[1].active = 1; /* 1/1 < 5/3 */
	assert_int_equal(gw_lb_pick(r, 0, NULL, 0, later)->index, 1);
	/* Round-robin alternates. */
	rc->lb = GW_LB_ROUND_ROBIN;
	uint32_t a = gw_lb_pick(r, 0, NULL, 0, later)->index;
	assert_int_not_equal(gw_lb_pick(r, 0, NULL, 0, later)->index, a);
	gw_rt_put(rt);
}

static void test_bucket(void **state)
{
	struct gw_bucket b = {0};
	struct gw_rate rate = {.rate = 2, .burst = 3};
	uint32_t retry = 0;
	uint64_t now = 5 * NS_PER_S;
	(void)state;
	for (int i = 0; i < 3; i++)
		assert_true(gw_bucket_take(&b, &rate, now, &retry));
	assert_false(gw_bucket_take(&b, &rate, now, &retry));
	assert_int_equal(retry, 1);
	assert_false(gw_bucket_take(&b, &rate, now + 400 * NS_PER_MS, &retry));
	assert_true(gw_bucket_take(&b, &rate, now + 500 * NS_PER_MS, &retry));
	/* Refills to the burst, not beyond. */
	now += 100 * NS_PER_S;
	for (int i = 0; i < 3; i++)
		assert_true(gw_bucket_take(&b, &rate, now, &retry));
	assert_false(gw_bucket_take(&b, &rate, now, &retry));
}

static void test_policy(void **state)
{
	struct gw gw;
	(void)state;
	memset(&gw, 0, sizeof(gw));
	gw.src = calloc(GW_SRC_SLOTS, sizeof(*gw.src));
	assert_non_null(gw.src);
	struct gw_rt *rt = test_rt(&gw);
	struct gw_res *web = &rt->res[0], *db = &rt->res[1];
	uint8_t ip[4] = {192, 0, 2, 9}, other[4] = {198, 51, 100, 1};
	struct sg_http_msg m;
	const char *why;
	struct gw_policy_out out;
	uint64_t now = NS_PER_S;

	/* A tcp resource: only the allow list applies. */
	struct gw_policy_in tin = {.family = AF_INET, .addr = ip};
	memset(&out, 0, sizeof(out));
	assert_int_equal(gw_policy_check(&gw, db, &tin, &out, now), GW_V_PASS);
	tin.addr = other;
	assert_int_equal(gw_policy_check(&gw, db, &tin, &out, now), GW_V_DENY);

	/* api_key resource: /health is allowed by rule, the rest needs the key. */
	const char *h = "GET /health HTTP/1.1\r\nHost: app.example.com\r\n\r\n";
	assert_true(req(h, &m, &why) > 0);
	struct gw_policy_in in = {.family = AF_INET, .addr = ip, .req = &m, .path = "/health",
				  .path_len = 7};
	memset(&out, 0, sizeof(out));
	assert_int_equal(gw_policy_check(&gw, web, &in, &out, now), GW_V_PASS);
	in.path = "/x";
	in.path_len = 2;
	memset(&out, 0, sizeof(out));
	assert_int_equal(gw_policy_check(&gw, web, &in, &out, now), GW_V_AUTH);
	/* The config's hash is not sha384("secret"): a wrong key is refused. */
	const char *k = "GET /x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer secret\r\n\r\n";
	assert_true(req(k, &m, &why) > 0);
	memset(&out, 0, sizeof(out));
	assert_int_equal(gw_policy_check(&gw, web, &in, &out, now), GW_V_AUTH);
	/* The right one: hash it and put it in place. */
	uint8_t d[SG_SHA384_LEN];
	struct sg_iov iov = {.base = "secret", .len = 6};
	assert_true(sg_sha384(d, &iov, 1));
	memcpy(((struct gw_resource_conf *)web->conf)->api_keys[0], d, sizeof(d));
	memset(&out, 0, sizeof(out));
	assert_int_equal(gw_policy_check(&gw, web, &in, &out, now), GW_V_PASS);
	assert_true(out.authenticated);
	assert_non_null(out.auth_header);
	assert_memory_equal(out.user, "key:", 4);
	/* POST /admin/... is denied by rule even with the key. */
	const char *p = "POST /admin/x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer secret\r\n\r\n";
	assert_true(req(p, &m, &why) > 0);
	in.path = "/admin/x";
	in.path_len = 8;
	memset(&out, 0, sizeof(out));
	assert_int_equal(gw_policy_check(&gw, web, &in, &out, now), GW_V_DENY);
	/* Per-source rate: 10 burst, 5/s; 5 used above (denied and refused requests pay too),
	 * 5 more pass, then 429. */
	in.path = "/x";
	in.path_len = 2;
	int passed = 0;
	for (int i = 0; i < 20; i++) {
		memset(&out, 0, sizeof(out));
		if (gw_policy_check(&gw, web, &in, &out, now) == GW_V_LIMITED) {
			assert_true(out.retry_after_s >= 1);
			break;
		}
		passed++;
	}
	assert_int_equal(passed, 5);
	/* Another source has its own bucket. */
	in.addr = other;
	memset(&out, 0, sizeof(out));
	assert_int_not_equal(gw_policy_check(&gw, web, &in, &out, now), GW_V_LIMITED);
	gw_rt_put(rt);
	free(gw.src);
}

/* ID tokens refused before any signature math, each for its own reason (the access log shows
 * it): an unsigned token for its algorithm, not as "bad base64url" for its empty signature. */
static void test_jwt_refused(void **state)
{
	static const char doc[] =
	    "{\"resources\": [{\"id\": \"l\", \"domains\": [\"l.test\"], \"auth\": \"login\","
	    " \"oidc\": {\"issuer\": \"https://idp.test\", \"client_id\": \"gw\"},"
	    " \"targets\": [{\"id\": \"t\", \"address\": \"10.0.0.1:80\"}]}]}";
	/* {"iss":"https://idp.test","aud":"gw","sub":"m","exp":4102444800} */
#define CLAIMS "eyJpc3MiOiJodHRwczovL2lkcC50ZXN0IiwiYXVkIjoiZ3ciLCJzdWIiOiJtIiwiZXhwIjo0MTAyNDQ0ODAwfQ"
	static const struct {
		const char *tok, *why;
	} cases[] = {
	    /* {"alg":"none"} */
	    {"eyJhbGciOiJub25lIn0." CLAIMS ".", "algorithm not ES384 or RS256"},
	    /* {"alg":"ES384","kid":"k1"} without a signature */
	    {"eyJhbGciOiJFUzM4NCIsImtpZCI6ImsxIn0." CLAIMS ".", "bad signature"},
	    /* {"alg":"RS256","kid":"k1"}: k1 is a P-384 key */
	    {"eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0." CLAIMS ".", "no key with this kid and algorithm"},
	    {"eyJhbGciOiJub25lIn0." CLAIMS ".a*b", "bad base64url"},
	};
#undef CLAIMS
	static const uint8_t x[48] = {1}, y[48] = {2};
	struct gw gw;
	struct gw_conf *c = NULL;
	char err[GW_CONF_ERR_MAX], user[64];
	(void)state;
	memset(&gw, 0, sizeof(gw));
	if (gw_conf_parse(doc, strlen(doc), &c, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	struct gw_rt *rt = gw_rt_new(&gw, c, NULL);
	assert_non_null(rt);
	rt->res[0].oidc = gw_oidc_with_key(&rt->res[0], "k1", x, y);
	assert_non_null(rt->res[0].oidc);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *why = NULL;
		assert_int_equal(gw_oidc_verify(rt->res[0].oidc, cases[i].tok, strlen(cases[i].tok),
						NULL, user, sizeof(user), NULL, &why),
				 -1);
		assert_string_equal(why, cases[i].why);
	}
	gw_rt_put(rt);
}

int main(void)
{
	if (sg_crypto_init() != 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_request_ok), cmocka_unit_test(test_request_refused),
	    cmocka_unit_test(test_response),   cmocka_unit_test(test_chunked),
	    cmocka_unit_test(test_normalize),  cmocka_unit_test(test_conf), cmocka_unit_test(test_conf_check),
	    cmocka_unit_test(test_balancer),   cmocka_unit_test(test_bucket),
	    cmocka_unit_test(test_policy),     cmocka_unit_test(test_jwt_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
