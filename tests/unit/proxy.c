/* Unit tests of the client address behind trusted proxies (src/server/proxy.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "server/proxy.h"
#include "server/srv_int.h"

static const char *resolve(const struct srv_proxies *t, const char *peer, const char *name,
			   const char *v1, const char *v2)
{
	static char out[64];
	struct srv_kv h[3] = {{"host", "x"}, {name, v1}, {name, v2}};

	srv_client_addr(t, peer, h, v2 ? 3 : v1 ? 2 : 1, out);
	return out;
}

static void test_parse(void **state)
{
	struct srv_proxies t;
	char err[256];

	(void)state;
	memset(&t, 0, sizeof(t));
	assert_int_equal(
	    srv_proxies_parse(&t, "127.0.0.1,10.0.0.0/8,fd00::/8,::1", err, sizeof(err)), 0);
	assert_int_equal(t.n, 4);
	assert_int_equal(t.net[0].bits, 128);
	assert_int_equal(t.net[1].bits, 104);
	assert_int_equal(srv_proxies_parse(&t, "192.0.2.0/24", err, sizeof(err)), 0);
	assert_int_equal(t.n, 5);
	/* Refusals say which range and why, and leave the list as it was. */
	assert_int_equal(srv_proxies_parse(&t, "10.0.0.0/8,10.0.0.1/8", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "range 2"));
	assert_non_null(strstr(err, "host bits"));
	assert_int_equal(t.n, 5);
	assert_int_equal(srv_proxies_parse(&t, "10.0.0.0/33", err, sizeof(err)), -1);
	assert_int_equal(srv_proxies_parse(&t, "", err, sizeof(err)), -1);
	assert_int_equal(srv_proxies_parse(&t, "10.0.0.0/8,", err, sizeof(err)), -1);
	assert_int_equal(srv_proxies_parse(&t, "proxy.example", err, sizeof(err)), -1);
	assert_int_equal(srv_proxies_parse(&t, "10.0.0.0/-8", err, sizeof(err)), -1);
	assert_int_equal(srv_proxies_parse(&t, " 10.0.0.1", err, sizeof(err)), -1);
	assert_int_equal(t.n, 5);
}

static void test_xff(void **state)
{
	struct srv_proxies t;
	char err[256];
	const char *x = "x-forwarded-for";

	(void)state;
	memset(&t, 0, sizeof(t));
	/* No ranges: the peer, whatever the header says. */
	assert_string_equal(resolve(&t, "127.0.0.1", x, "198.51.100.7", NULL), "127.0.0.1");
	assert_int_equal(srv_proxies_parse(&t, "127.0.0.1,10.0.0.0/8", err, sizeof(err)), 0);
	/* An untrusted peer's header is ignored. */
	assert_string_equal(resolve(&t, "192.0.2.1", x, "198.51.100.7", NULL), "192.0.2.1");
	/* A trusted peer: the right-most address that is not a proxy. */
	assert_string_equal(resolve(&t, "127.0.0.1", x, "198.51.100.7", NULL), "198.51.100.7");
	assert_string_equal(resolve(&t, "127.0.0.1", x, "1.1.1.1, 198.51.100.7", NULL),
			    "198.51.100.7");
	assert_string_equal(resolve(&t, "127.0.0.1", x, "1.1.1.1, 198.51.100.7, 10.1.2.3", NULL),
			    "198.51.100.7");
	/* Several header lines are one list, in order. */
	assert_string_equal(resolve(&t, "127.0.0.1", x, "1.1.1.1", "198.51.100.7"), "198.51.100.7");
	/* Garbage a client sent stays on the left of what the proxy appended. */
	assert_string_equal(resolve(&t, "127.0.0.1", x, "bogus, 198.51.100.7", NULL),
			    "198.51.100.7");
	/* Garbage at the right: the last trusted address. */
	assert_string_equal(resolve(&t, "127.0.0.1", x, "198.51.100.7, bogus", NULL), "127.0.0.1");
	assert_string_equal(resolve(&t, "127.0.0.1", x, "198.51.100.7, 10.0.0.2, unknown", NULL),
			    "127.0.0.1");
	assert_string_equal(resolve(&t, "127.0.0.1", x, "1.2.3.4, unknown, 10.0.0.2", NULL),
			    "10.0.0.2");
	/* All trusted: the left-most. */
	assert_string_equal(resolve(&t, "127.0.0.1", x, "10.0.0.9, 10.0.0.2", NULL), "10.0.0.9");
	/* No header, or an empty one: the peer. */
	assert_string_equal(resolve(&t, "127.0.0.1", x, NULL, NULL), "127.0.0.1");
	assert_string_equal(resolve(&t, "127.0.0.1", x, " , ", NULL), "127.0.0.1");
	/* Forms: IPv6, with brackets and ports, IPv4 with a port, mapped IPv4 normalised. */
	assert_string_equal(resolve(&t, "127.0.0.1", x, "2001:DB8::1", NULL), "2001:db8::1");
	assert_string_equal(resolve(&t, "127.0.0.1", x, "[2001:db8::1]:443", NULL), "2001:db8::1");
	assert_string_equal(resolve(&t, "127.0.0.1", x, "198.51.100.7:5555", NULL), "198.51.100.7");
	assert_string_equal(resolve(&t, "127.0.0.1", x, "::ffff:198.51.100.7", NULL),
			    "198.51.100.7");
	/* Not addresses. */
	assert_string_equal(resolve(&t, "127.0.0.1", x, "198.51.100.007", NULL), "127.0.0.1");
	assert_string_equal(resolve(&t, "127.0.0.1", x, "198.51.100.7:", NULL), "127.0.0.1");
	assert_string_equal(resolve(&t, "127.0.0.1", x, "198.51.100.7:123456", NULL), "127.0.0.1");
	assert_string_equal(resolve(&t, "127.0.0.1", x, "[2001:db8::1", NULL), "127.0.0.1");
	assert_string_equal(resolve(&t, "127.0.0.1", x, "fe80::1%eth0", NULL), "127.0.0.1");
	assert_string_equal(resolve(&t, "127.0.0.1", x, "1.2.3.4 5.6.7.8", NULL), "127.0.0.1");
	/* The other header is not read. */
	assert_string_equal(resolve(&t, "127.0.0.1", "forwarded", "for=198.51.100.7", NULL),
			    "127.0.0.1");
	/* A trusted IPv6 peer. */
	assert_int_equal(srv_proxies_parse(&t, "fd00::/8", err, sizeof(err)), 0);
	assert_string_equal(resolve(&t, "fd00::5", x, "198.51.100.7", NULL), "198.51.100.7");
	assert_string_equal(resolve(&t, "fe00::5", x, "198.51.100.7", NULL), "fe00::5");
}

static void test_hops_bounded(void **state)
{
	struct srv_proxies t;
	char err[256], v[4096];
	size_t o = 0;

	(void)state;
	memset(&t, 0, sizeof(t));
	assert_int_equal(srv_proxies_parse(&t, "10.0.0.0/8", err, sizeof(err)), 0);
	/* 200 trusted hops after the client: only the right-most 32 are looked at. */
	o += (size_t)snprintf(v + o, sizeof(v) - o, "198.51.100.7");
	for (int i = 0; i < 200; i++)
		o += (size_t)snprintf(v + o, sizeof(v) - o, ", 10.0.%d.%d", i / 250, i % 250 + 1);
	assert_string_equal(resolve(&t, "10.0.0.1", "x-forwarded-for", v, NULL), "10.0.0.169");
	/* A client's long list on the left of the proxy's address costs nothing. */
	o = 0;
	for (int i = 0; i < 300; i++)
		o += (size_t)snprintf(v + o, sizeof(v) - o, "1.2.3.%d, ", i % 250);
	snprintf(v + o, sizeof(v) - o, "198.51.100.7");
	assert_string_equal(resolve(&t, "10.0.0.1", "x-forwarded-for", v, NULL), "198.51.100.7");
}

static void test_forwarded(void **state)
{
	struct srv_proxies t;
	char err[256];
	const char *f = "forwarded";

	(void)state;
	memset(&t, 0, sizeof(t));
	assert_int_equal(srv_proxies_parse(&t, "127.0.0.1,203.0.113.43", err, sizeof(err)), 0);
	t.forwarded = true;
	assert_string_equal(
	    resolve(&t, "127.0.0.1", f, "for=192.0.2.60;proto=http;by=203.0.113.43", NULL),
	    "192.0.2.60");
	assert_string_equal(
	    resolve(&t, "127.0.0.1", f, "For=\"[2001:db8:cafe::17]:4711\", for=203.0.113.43", NULL),
	    "2001:db8:cafe::17");
	assert_string_equal(resolve(&t, "127.0.0.1", f, "for=192.0.2.43, for=198.51.100.17", NULL),
			    "198.51.100.17");
	assert_string_equal(resolve(&t, "127.0.0.1", f, "for=\"192.0.2.43:80\"", NULL),
			    "192.0.2.43");
	assert_string_equal(resolve(&t, "127.0.0.1", f, "proto=https;for=\"\\1\\92.0.2.43\"", NULL),
			    "192.0.2.43");
	/* unknown and obfuscated identifiers, elements without for=: the walk stops there. */
	assert_string_equal(resolve(&t, "127.0.0.1", f, "for=unknown", NULL), "127.0.0.1");
	assert_string_equal(resolve(&t, "127.0.0.1", f, "for=_hidden, for=203.0.113.43", NULL),
			    "203.0.113.43");
	assert_string_equal(resolve(&t, "127.0.0.1", f, "proto=http", NULL), "127.0.0.1");
	/* Syntax errors: a quoted comma does not split; errors do not reach the next line. */
	assert_string_equal(resolve(&t, "127.0.0.1", f, "for=\"1.2.3.4, 5.6.7.8\"", NULL),
			    "127.0.0.1");
	assert_string_equal(resolve(&t, "127.0.0.1", f, "for=\"1.2.3.4", "for=192.0.2.60"),
			    "192.0.2.60");
	assert_string_equal(resolve(&t, "127.0.0.1", f, "for=1.2.3.4;for=5.6.7.8", NULL),
			    "127.0.0.1");
	assert_string_equal(resolve(&t, "127.0.0.1", f, "for=1.2.3.4 x", NULL), "127.0.0.1");
	assert_string_equal(resolve(&t, "127.0.0.1", f, "for=[::1]", NULL), "127.0.0.1");
	assert_string_equal(resolve(&t, "127.0.0.1", f, "=1.2.3.4", NULL), "127.0.0.1");
	/* X-Forwarded-For is not read in this mode. */
	assert_string_equal(resolve(&t, "127.0.0.1", "x-forwarded-for", "192.0.2.60", NULL),
			    "127.0.0.1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_xff),
	    cmocka_unit_test(test_hops_bounded),
	    cmocka_unit_test(test_forwarded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
