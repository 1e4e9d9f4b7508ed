/* Unit tests for src/config/wgconf.c: the wg(8) / wg-quick(8) config parser and serializer.
 *
 * - a full wg-quick example, every field checked;
 * - the lexical rules wg(8) has: case-insensitive keys, '#' comments anywhere, whitespace
 *   dropped inside values, CRLF, sections, repeated AllowedIPs lines;
 * - every error message, with its line number;
 * - every limit, at the limit and one past it;
 * - serializer: the exact `wg showconf` layout, and parse(serialize(x)) == x.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include <secureguard/sg_errors.h>

#include "config/wgconf.h"
#include "crypto/crypto.h"
#include "test_util.h"

#define PRIV "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
#define PUB1 "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
#define PUB2 "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0="
#define PSK  "FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE="

static const char full_example[] = "# A road-warrior client, as in wg-quick(8)\n"
				   "[Interface]\n"
				   "Address = 10.200.100.8/24, fd00::8/64\n"
				   "Address = 10.200.101.8\n"
				   "DNS = 10.200.100.1, 2001:db8::53, example.com\n"
				   "MTU = 1380\n"
				   "Table = 1234\n"
				   "PreUp = echo pre-up %i\n"
				   "PostUp = iptables -A FORWARD -i %i -j ACCEPT; echo done\n"
				   "PreDown = logger \"going down\"\n"
				   "PostDown = iptables -D FORWARD -i %i -j ACCEPT\n"
				   "SaveConfig = true\n"
				   "PrivateKey = " PRIV "\n"
				   "ListenPort = 51820\n"
				   "FwMark = 0x1234\n"
				   "\n"
				   "[Peer]\n"
				   "PublicKey = " PUB1 "\n"
				   "PresharedKey = " PSK "\n"
				   "AllowedIPs = 0.0.0.0/0, ::/0\n"
				   "Endpoint = demo.wireguard.com:51820\n"
				   "PersistentKeepalive = 25\n"
				   "\n"
				   "[Peer]\n"
				   "PublicKey = " PUB2 "\n"
				   "AllowedIPs = 10.10.0.0/16\n"
				   "AllowedIPs = 192.168.1.7/32\n"
				   "Endpoint = [2001:db8::1]:443\n"
				   "PersistentKeepalive = off\n";

static void parse_ok(struct sg_wgconf *c, const char *text)
{
	sg_wgconf_init(c);
	int ret = sg_wgconf_parse(c, text, strlen(text));

	if (ret)
		fail_msg("unexpected error: %s", sg_wgconf_error(c));
}

static void key_is(const uint8_t key[32], const char *b64)
{
	uint8_t want[32];

	assert_int_equal(sg_key_from_base64(want, b64, strlen(b64)), 0);
	assert_memory_equal(key, want, 32);
}

static void ip_is(const struct sg_wgconf_ip *ip, const char *text)
{
	char buf[SG_WGCONF_PREFIX_STRLEN];

	sg_wgconf_ip_format(buf, ip);
	assert_string_equal(buf, text);
}

static void test_full_example(void **state)
{
	struct sg_wgconf c;

	(void)state;
	parse_ok(&c, full_example);
	assert_true(c.has_private_key);
	key_is(c.private_key, PRIV);
	assert_true(c.has_listen_port);
	assert_int_equal(c.listen_port, 51820);
	assert_true(c.has_fwmark);
	assert_int_equal(c.fwmark, 0x1234);
	assert_int_equal(c.n_addresses, 3);
	ip_is(&c.addresses[0], "10.200.100.8/24");
	ip_is(&c.addresses[1], "fd00::8/64");
	ip_is(&c.addresses[2], "10.200.101.8/32");
	assert_int_equal(c.n_dns, 3);
	assert_string_equal(c.dns[0].name, "10.200.100.1");
	assert_false(c.dns[0].is_search);
	assert_string_equal(c.dns[1].name, "2001:db8::53");
	assert_false(c.dns[1].is_search);
	assert_string_equal(c.dns[2].name, "example.com");
	assert_true(c.dns[2].is_search);
	assert_true(c.has_mtu);
	assert_int_equal(c.mtu, 1380);
	assert_true(c.has_table);
	assert_string_equal(c.table, "1234");
	assert_true(c.save_config);
	assert_int_equal(c.n_hooks[SG_WGCONF_PRE_UP], 1);
	assert_string_equal(c.hooks[SG_WGCONF_PRE_UP][0], "echo pre-up %i");
	assert_string_equal(c.hooks[SG_WGCONF_POST_UP][0],
			    "iptables -A FORWARD -i %i -j ACCEPT; echo done");
	assert_string_equal(c.hooks[SG_WGCONF_PRE_DOWN][0], "logger \"going down\"");
	assert_string_equal(c.hooks[SG_WGCONF_POST_DOWN][0], "iptables -D FORWARD -i %i -j ACCEPT");

	assert_int_equal(c.n_peers, 2);
	struct sg_wgconf_peer *p = &c.peers[0];

	assert_true(p->has_public_key);
	key_is(p->public_key, PUB1);
	assert_true(p->has_preshared_key);
	key_is(p->preshared_key, PSK);
	assert_int_equal(p->n_allowed_ips, 2);
	ip_is(&p->allowed_ips[0], "0.0.0.0/0");
	ip_is(&p->allowed_ips[1], "::/0");
	assert_true(p->has_endpoint);
	assert_string_equal(p->endpoint_host, "demo.wireguard.com");
	assert_int_equal(p->endpoint_port, 51820);
	assert_true(p->has_keepalive);
	assert_int_equal(p->keepalive, 25);
	assert_int_equal(p->line, 17);

	p = &c.peers[1];
	key_is(p->public_key, PUB2);
	assert_false(p->has_preshared_key);
	assert_int_equal(p->n_allowed_ips, 2);
	ip_is(&p->allowed_ips[0], "10.10.0.0/16");
	ip_is(&p->allowed_ips[1], "192.168.1.7/32");
	assert_string_equal(p->endpoint_host, "2001:db8::1");
	assert_int_equal(p->endpoint_port, 443);
	assert_true(p->has_keepalive);
	assert_int_equal(p->keepalive, 0);
	sg_wgconf_free(&c);
}

/* Keys in any case, whitespace anywhere in wg(8) values, comments, CRLF, blank lines. */
static void test_lexical(void **state)
{
	struct sg_wgconf c;

	(void)state;
	parse_ok(&c, "  [ interface ]  # comment\r\n"
		     "\tprivatekey=" PRIV "\r\n"
		     "LISTENPORT =  5 1 8 2 0\n"
		     "fwmark = OFF\n"
		     "#[Peer]\n"
		     "   # only a comment\n"
		     "\n"
		     "[PEER]\n"
		     "publickey = " PUB1 "\n"
		     "Allowed IPs = 10.0.0.1 , 10.0.0.2/31,\tfd00::1\n"
		     "endpoint = 192.0.2.1 : 51820\n"
		     "persistentkeepalive = 0");
	assert_true(c.has_private_key);
	assert_int_equal(c.listen_port, 51820);
	assert_true(c.has_fwmark);
	assert_int_equal(c.fwmark, 0);
	assert_int_equal(c.n_peers, 1);
	assert_int_equal(c.peers[0].n_allowed_ips, 3);
	ip_is(&c.peers[0].allowed_ips[0], "10.0.0.1/32");
	ip_is(&c.peers[0].allowed_ips[1], "10.0.0.2/31");
	ip_is(&c.peers[0].allowed_ips[2], "fd00::1/128");
	assert_string_equal(c.peers[0].endpoint_host, "192.0.2.1");
	assert_int_equal(c.peers[0].endpoint_port, 51820);
	sg_wgconf_free(&c);

	/* An empty file and a file of comments are valid, empty configurations. */
	parse_ok(&c, "");
	assert_int_equal(c.n_peers, 0);
	sg_wgconf_free(&c);
	parse_ok(&c, "# nothing\n\n   \n");
	sg_wgconf_free(&c);
	/* The hook keeps inner whitespace; everything after '#' is a comment, even there. */
	parse_ok(&c, "[Interface]\nPostUp =   ip  route add 10.9.0.0/16 dev %i  # why\n");
	assert_string_equal(c.hooks[SG_WGCONF_POST_UP][0], "ip  route add 10.9.0.0/16 dev %i");
	sg_wgconf_free(&c);
	/* Later values win, as in wg(8); an empty AllowedIPs is an empty list. */
	parse_ok(&c, "[Interface]\nListenPort=1\nListenPort=2\n[Peer]\nPublicKey=" PUB1
		     "\nAllowedIPs=\n");
	assert_int_equal(c.listen_port, 2);
	assert_int_equal(c.peers[0].n_allowed_ips, 0);
	sg_wgconf_free(&c);
}

static void test_value_parsers(void **state)
{
	char why[128], host[SG_WGCONF_HOST_MAX + 1];
	uint32_t mark;
	uint16_t u16;
	struct sg_wgconf_ip ip;

	(void)state;
	assert_int_equal(sg_wgconf_parse_fwmark(&mark, "0xffffffff", why, sizeof(why)), 0);
	assert_int_equal(mark, 0xffffffffu);
	assert_int_equal(sg_wgconf_parse_fwmark(&mark, "0x00000000000001", why, sizeof(why)), 0);
	assert_int_equal(mark, 1);
	assert_int_equal(sg_wgconf_parse_fwmark(&mark, "4294967295", why, sizeof(why)), 0);
	assert_int_equal(mark, 0xffffffffu);
	assert_int_equal(sg_wgconf_parse_fwmark(&mark, "4294967296", why, sizeof(why)), SG_EPARSE);
	assert_string_equal(why, "neither off nor a number 0-0xffffffff: `4294967296'");
	assert_int_equal(sg_wgconf_parse_fwmark(&mark, "0x100000000", why, sizeof(why)), SG_EPARSE);
	assert_int_equal(sg_wgconf_parse_fwmark(&mark, "0x", why, sizeof(why)), SG_EPARSE);
	assert_int_equal(sg_wgconf_parse_fwmark(&mark, "-1", why, sizeof(why)), SG_EPARSE);
	assert_int_equal(sg_wgconf_parse_fwmark(&mark, "0xg", why, sizeof(why)), SG_EPARSE);

	assert_int_equal(sg_wgconf_parse_port(&u16, "65535", why, sizeof(why)), 0);
	assert_int_equal(u16, 65535);
	assert_int_equal(sg_wgconf_parse_port(&u16, "0", why, sizeof(why)), 0);
	assert_int_equal(sg_wgconf_parse_port(&u16, "65536", why, sizeof(why)), SG_EPARSE);
	assert_int_equal(sg_wgconf_parse_port(&u16, "+1", why, sizeof(why)), SG_EPARSE);
	assert_int_equal(sg_wgconf_parse_port(&u16, "000001", why, sizeof(why)), SG_EPARSE);

	assert_int_equal(sg_wgconf_parse_keepalive(&u16, "Off", why, sizeof(why)), 0);
	assert_int_equal(u16, 0);
	assert_int_equal(sg_wgconf_parse_keepalive(&u16, "65535", why, sizeof(why)), 0);
	assert_int_equal(sg_wgconf_parse_keepalive(&u16, "65536", why, sizeof(why)), SG_EPARSE);
	assert_string_equal(why, "neither off nor 0-65535 seconds: `65536'");

	assert_int_equal(sg_wgconf_parse_ip(&ip, "::ffff:1.2.3.4/128", why, sizeof(why)), 0);
	assert_int_equal(ip.family, AF_INET6);
	assert_int_equal(sg_wgconf_parse_ip(&ip, "1.2.3.4/", why, sizeof(why)), SG_EPARSE);
	assert_string_equal(why, "bad prefix length `'");
	assert_int_equal(sg_wgconf_parse_ip(&ip, "1.2.3.4/-1", why, sizeof(why)), SG_EPARSE);
	assert_int_equal(sg_wgconf_parse_ip(&ip, "fd00::/129", why, sizeof(why)), SG_EPARSE);
	assert_string_equal(why, "bad prefix length 129");
	assert_int_equal(sg_wgconf_parse_ip(&ip, "1.2.3/8", why, sizeof(why)), SG_EPARSE);
	assert_string_equal(why, "bad IP address `1.2.3'");
	assert_int_equal(sg_wgconf_parse_ip(&ip, "fe80::1%eth0", why, sizeof(why)), SG_EPARSE);

	assert_int_equal(sg_wgconf_parse_endpoint(host, &u16, "[fe80::1%eth0]:1", why, sizeof(why)),
			 0);
	assert_string_equal(host, "fe80::1%eth0");
	assert_int_equal(u16, 1);
	assert_int_equal(
	    sg_wgconf_parse_endpoint(host, &u16, "a-b.example_x.org:65535", why, sizeof(why)), 0);
	assert_string_equal(host, "a-b.example_x.org");
	assert_int_equal(sg_wgconf_parse_endpoint(host, &u16, "[1.2.3.4]:5", why, sizeof(why)),
			 SG_EPARSE);
	assert_int_equal(sg_wgconf_parse_endpoint(host, &u16, "h:0", why, sizeof(why)), SG_EPARSE);
	assert_int_equal(sg_wgconf_parse_endpoint(host, &u16, ":80", why, sizeof(why)), SG_EPARSE);
	assert_int_equal(sg_wgconf_parse_endpoint(host, &u16, "[::1]80", why, sizeof(why)),
			 SG_EPARSE);
	assert_string_equal(why, "no port in `[::1]80'");
}

struct error_case {
	const char *text;
	const char *error;
};

/* Every message the parser can give, with the line it names. */
static const struct error_case error_cases[] = {
    {"[Interface]\nListenPort = 65536\n", "line 2: ListenPort: not a port number 0-65535: `65536'"},
    {"[Interface]\nListenPort = http\n", "line 2: ListenPort: not a port number 0-65535: `http'"},
    {"[Interface]\nFwMark = 0x1g\n",
     "line 2: FwMark: neither off nor a number 0-0xffffffff: `0x1g'"},
    {"[Interface]\nPrivateKey = abc\n", "line 2: PrivateKey: not a base64 key of 44 characters"},
    {"[Interface]\nPrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmn=\n",
     "line 2: PrivateKey: not a base64 key of 44 characters"},
    {"[Interface]\nPrivateKey =\n", "line 2: PrivateKey: empty value"},
    {"[Interface]\nAddress = 10.0.0.1/33\n", "line 2: Address: bad prefix length 33"},
    {"[Interface]\nAddress = 10.0.0.300\n", "line 2: Address: bad IP address `10.0.0.300'"},
    {"[Interface]\nAddress = , ,\n", "line 2: Address: empty value"},
    {"[Interface]\nDNS = 1.2.3.999\n", "line 2: DNS: bad server address `1.2.3.999'"},
    {"[Interface]\nDNS = bad!domain\n", "line 2: DNS: bad search domain `bad!domain'"},
    {"[Interface]\nMTU = 67\n", "line 2: MTU: not a number 68-65535: `67'"},
    {"[Interface]\nMTU = 1420b\n", "line 2: MTU: not a number 68-65535: `1420b'"},
    {"[Interface]\nTable = a/b\n",
     "line 2: Table: neither off, auto, a table number nor a name: `a/b'"},
    {"[Interface]\nTable = 4294967296\n",
     "line 2: Table: neither off, auto, a table number nor a name: `4294967296'"},
    {"[Interface]\nTable = -1\n",
     "line 2: Table: neither off, auto, a table number nor a name: `-1'"},
    {"[Interface]\nSaveConfig = yes\n", "line 2: SaveConfig: neither true nor false: `yes'"},
    {"[Interface]\nPostUp =   \n", "line 2: PostUp: empty value"},
    {"[Peer]\nPublicKey = " PUB1 "\nAllowedIPs = 10.0.0.0/8, 10.1.0.0/33\n",
     "line 3: AllowedIPs: bad prefix length 33"},
    {"[Peer]\nPublicKey = " PUB1 "\nAllowedIPs = 10.0.0.0/8,,10.1.0.0/16\n",
     "line 3: AllowedIPs: empty entry in list"},
    {"[Peer]\nPublicKey = " PUB1 "\nAllowedIPs = 10.0.0.0/x\n",
     "line 3: AllowedIPs: bad prefix length `x'"},
    {"[Peer]\nPublicKey = " PUB1 "\nAllowedIPs = fd00::/64/1\n",
     "line 3: AllowedIPs: bad prefix length `64/1'"},
    {"[Peer]\nPublicKey = " PUB1 "\nAllowedIPs = host.example/32\n",
     "line 3: AllowedIPs: bad IP address `host.example'"},
    {"[Peer]\nPublicKey = " PUB1 "\nEndpoint = 1.2.3.4\n",
     "line 3: Endpoint: no port in `1.2.3.4'"},
    {"[Peer]\nPublicKey = " PUB1 "\nEndpoint = fd00::1:51820\n",
     "line 3: Endpoint: an IPv6 address needs brackets, [addr]:port, in `fd00::1:51820'"},
    {"[Peer]\nPublicKey = " PUB1 "\nEndpoint = [fd00::1:51820\n",
     "line 3: Endpoint: no closing ']' in `[fd00::1:51820'"},
    {"[Peer]\nPublicKey = " PUB1 "\nEndpoint = [nothex]:1\n",
     "line 3: Endpoint: bad IPv6 address in `[nothex]:1'"},
    {"[Peer]\nPublicKey = " PUB1 "\nEndpoint = bad/host:1\n",
     "line 3: Endpoint: bad host in `bad/host:1'"},
    {"[Peer]\nPublicKey = " PUB1 "\nEndpoint = h:65536\n",
     "line 3: Endpoint: bad port (1-65535) in `h:65536'"},
    {"[Peer]\nPublicKey = " PUB1 "\nPersistentKeepalive = -1\n",
     "line 3: PersistentKeepalive: neither off nor 0-65535 seconds: `-1'"},
    {"[Peer]\nPublicKey = " PUB1 "\nPresharedKey = " PUB1 "x\n",
     "line 3: PresharedKey: not a base64 key of 44 characters"},
    {"[Peer]\nPublicKey = AAAA\n", "line 2: PublicKey: not a base64 key of 44 characters"},
    {"ListenPort = 1\n", "line 1: ListenPort: only valid in the [Interface] section"},
    {"[Interface]\nPublicKey = " PUB1 "\n", "line 2: PublicKey: only valid in the [Peer] section"},
    {"[Peer]\nPublicKey = " PUB1 "\nListenPort = 1\n",
     "line 3: ListenPort: only valid in the [Interface] section"},
    {"[Interface]\nFoo = bar\n", "line 2: unknown key `Foo'"},
    {"[Interface]\n[Peers]\n",
     "line 2: unknown section `[Peers]' (expected [Interface] or [Peer])"},
    {"[Interface]\nListenPort\n",
     "line 2: expected `Key = Value' or a [Section], got `ListenPort'"},
    {"[Interface]\n\n[Peer]\nAllowedIPs = 10.0.0.1/32\n", "line 3: [Peer] without a PublicKey or FipsPublicKey"},
    {"[Interface]\nListenPort = 1\0\n", "line 2: contains a NUL character"},
};

static void test_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(error_cases); i++) {
		struct sg_wgconf c;
		const char *t = error_cases[i].text;
		/* The NUL case: its length runs to the last newline. */
		size_t len = strlen(t);

		if (strstr(error_cases[i].error, "NUL"))
			len += 2;
		sg_wgconf_init(&c);
		assert_int_equal(sg_wgconf_parse(&c, t, len), SG_EPARSE);
		if (strcmp(sg_wgconf_error(&c), error_cases[i].error))
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, sg_wgconf_error(&c),
				 error_cases[i].error);
		/* Errors are sticky: a later line does not overwrite the first message. */
		assert_int_equal(sg_wgconf_parse_line(&c, "[Interface]", 11), SG_EPARSE);
		assert_string_equal(sg_wgconf_error(&c), error_cases[i].error);
		sg_wgconf_free(&c);
	}
}

/* A key value never appears in an error message. */
static void test_errors_hide_keys(void **state)
{
	struct sg_wgconf c;
	const char *t = "[Interface]\nPrivateKey = " PRIV "AAAA\n";

	(void)state;
	sg_wgconf_init(&c);
	assert_int_equal(sg_wgconf_parse(&c, t, strlen(t)), SG_EPARSE);
	assert_null(strstr(sg_wgconf_error(&c), "yAnz5"));
	sg_wgconf_free(&c);

	/* Typos that turn the key into a key name, a section or an address, which the messages
	 * quote: the key must not come along (it used to, 38 characters of it). */
	static const struct {
		const char *text, *error;
	} cases[] = {
	    {"[Interface]\nPrivateKey " PRIV "\n",
	     "line 2: unknown key `(53 characters, not shown: may hold a key)'"},
	    {"[Interface]\nPrivateKey: " PRIV "\n",
	     "line 2: unknown key `(54 characters, not shown: may hold a key)'"},
	    {"[Interface]\nyAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk\n",
	     "line 2: expected `Key = Value' or a [Section], got `(43 characters, not shown: may "
	     "hold a key)'"},
	    {"[" PRIV "]\n", "line 1: unknown key `(44 characters, not shown: may hold a key)'"},
	    {"[Peer]\nPublicKey = " PUB1
	     "\nAllowedIPs = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk\n",
	     "line 3: AllowedIPs: bad IP address `(43 characters, not shown: may hold a key)'"},
	};

	for (size_t i = 0; i < SG_ARRAY_LEN(cases); i++) {
		sg_wgconf_init(&c);
		assert_int_equal(sg_wgconf_parse(&c, cases[i].text, strlen(cases[i].text)),
				 SG_EPARSE);
		if (strcmp(sg_wgconf_error(&c), cases[i].error))
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, sg_wgconf_error(&c),
				 cases[i].error);
		sg_wgconf_free(&c);
	}
	/* Ordinary long values are still quoted (cut at 48 characters). */
	sg_wgconf_init(&c);
	t = "[Interface]\nTable = a-very-long-table-name-that-is-too-long\n";
	assert_int_equal(sg_wgconf_parse(&c, t, strlen(t)), SG_EPARSE);
	assert_non_null(strstr(sg_wgconf_error(&c), "`a-very-long-table-name-that-is-too-long'"));
	sg_wgconf_free(&c);
}

static void test_line_limit(void **state)
{
	struct sg_wgconf c;
	char *line = malloc(SG_WGCONF_MAX_LINE + 2);

	(void)state;
	assert_non_null(line);
	memset(line, ' ', SG_WGCONF_MAX_LINE + 1);
	memcpy(line, "[Peer]", 6);
	sg_wgconf_init(&c);
	/* Exactly at the limit (plus its newline) is fine. */
	line[SG_WGCONF_MAX_LINE] = '\n';
	assert_int_equal(sg_wgconf_parse_line(&c, line, SG_WGCONF_MAX_LINE + 1), 0);
	line[SG_WGCONF_MAX_LINE] = ' ';
	assert_int_equal(sg_wgconf_parse_line(&c, line, SG_WGCONF_MAX_LINE + 1), SG_EPARSE);
	assert_string_equal(sg_wgconf_error(&c), "line 2: longer than 4096 characters");
	sg_wgconf_free(&c);
	free(line);
}

static void test_peer_limit(void **state)
{
	struct sg_wgconf c;

	(void)state;
	/* The kernel module's limit, as secureguardd's; reached here through a lower one (a
	 * million parsed peers would take over a gigabyte). */
	assert_int_equal(SG_WGCONF_MAX_PEERS, 1048576);
	sg_wgconf_init(&c);
	c.max_peers = 20000;
	for (unsigned int i = 0; i < 20000; i++)
		assert_int_equal(sg_wgconf_parse_line(&c, "[Peer]\n", 7), 0);
	assert_int_equal(c.n_peers, 20000);
	assert_int_equal(sg_wgconf_parse_line(&c, "[Peer]\n", 7), SG_EPARSE);
	assert_string_equal(sg_wgconf_error(&c), "line 20001: more than 20000 peers");
	sg_wgconf_free(&c);
}

static void test_allowed_ip_limits(void **state)
{
	struct sg_wgconf c;
	char line[64];
	unsigned int n = 0;

	(void)state;
	sg_wgconf_init(&c);
	assert_int_equal(sg_wgconf_parse_line(&c, "[Peer]", 6), 0);
	for (; n < SG_WGCONF_MAX_PEER_IPS; n++) {
		int len =
		    snprintf(line, sizeof(line), "AllowedIPs = 10.%u.%u.0/24", n >> 8, n & 255);

		assert_int_equal(sg_wgconf_parse_line(&c, line, (size_t)len), 0);
	}
	assert_int_equal(c.peers[0].n_allowed_ips, SG_WGCONF_MAX_PEER_IPS);
	assert_int_equal(sg_wgconf_parse_line(&c, "AllowedIPs = 1.1.1.1", 20), SG_EPARSE);
	assert_string_equal(sg_wgconf_error(&c),
			    "line 4098: AllowedIPs: more than 4096 per peer or 4194304 in all");
	sg_wgconf_free(&c);

	/* The total over all peers: 16 full peers, then one more entry. */
	sg_wgconf_init(&c);
	for (unsigned int p = 0; p < SG_WGCONF_MAX_TOTAL_IPS / SG_WGCONF_MAX_PEER_IPS; p++) {
		assert_int_equal(sg_wgconf_parse_line(&c, "[Peer]", 6), 0);
		for (unsigned int i = 0; i < SG_WGCONF_MAX_PEER_IPS; i++) {
			struct sg_wgconf_ip ip = {.family = AF_INET, .cidr = 32};

			assert_int_equal(sg_wgconf_peer_add_ip(&c, &c.peers[p], &ip), 0);
		}
	}
	assert_int_equal(sg_wgconf_parse_line(&c, "[Peer]", 6), 0);
	assert_int_equal(sg_wgconf_parse_line(&c, "AllowedIPs = 1.1.1.1", 20), SG_EPARSE);
	sg_wgconf_free(&c);
}

static void test_interface_limits(void **state)
{
	struct sg_wgconf c;
	char line[64];

	(void)state;
	sg_wgconf_init(&c);
	assert_int_equal(sg_wgconf_parse_line(&c, "[Interface]", 11), 0);
	for (unsigned int i = 0; i < SG_WGCONF_MAX_ADDRESSES; i++) {
		int len = snprintf(line, sizeof(line), "Address = 10.0.%u.1/24", i);

		assert_int_equal(sg_wgconf_parse_line(&c, line, (size_t)len), 0);
	}
	assert_int_equal(sg_wgconf_parse_line(&c, "Address = 10.9.9.9", 18), SG_EPARSE);
	assert_string_equal(sg_wgconf_error(&c), "line 66: Address: more than 64 addresses");
	sg_wgconf_free(&c);

	sg_wgconf_init(&c);
	assert_int_equal(sg_wgconf_parse_line(&c, "[Interface]", 11), 0);
	for (unsigned int i = 0; i < SG_WGCONF_MAX_DNS; i++) {
		int len = snprintf(line, sizeof(line), "DNS = 10.0.0.%u", i);

		assert_int_equal(sg_wgconf_parse_line(&c, line, (size_t)len), 0);
	}
	assert_int_equal(sg_wgconf_parse_line(&c, "DNS = a.example", 15), SG_EPARSE);
	assert_string_equal(sg_wgconf_error(&c), "line 34: DNS: more than 32 entries");
	sg_wgconf_free(&c);

	sg_wgconf_init(&c);
	assert_int_equal(sg_wgconf_parse_line(&c, "[Interface]", 11), 0);
	for (unsigned int i = 0; i < SG_WGCONF_MAX_HOOKS; i++)
		assert_int_equal(sg_wgconf_parse_line(&c, "PreDown = true", 14), 0);
	assert_int_equal(sg_wgconf_parse_line(&c, "PreDown = true", 14), SG_EPARSE);
	assert_string_equal(sg_wgconf_error(&c), "line 34: PreDown: more than 32 commands");
	sg_wgconf_free(&c);

	/* A DNS name longer than 253 characters. */
	char longname[300];

	memset(longname, 'a', sizeof(longname));
	memcpy(longname, "DNS = ", 6);
	sg_wgconf_init(&c);
	assert_int_equal(sg_wgconf_parse_line(&c, "[Interface]", 11), 0);
	assert_int_equal(sg_wgconf_parse_line(&c, longname, sizeof(longname)), SG_EPARSE);
	assert_non_null(strstr(sg_wgconf_error(&c), "DNS: longer than 253 characters"));
	sg_wgconf_free(&c);
}

/* Exactly what `wg showconf` prints for the same state, and the wg-quick keys in front. */
static void test_serialize_layout(void **state)
{
	struct sg_wgconf c;
	char *text;
	size_t len;

	(void)state;
	parse_ok(&c, full_example);
	assert_int_equal(sg_wgconf_serialize(&c, SG_WGCONF_WG_ONLY, &text, &len), 0);
	assert_int_equal(strlen(text), len);
	assert_string_equal(text, "[Interface]\n"
				  "ListenPort = 51820\n"
				  "FwMark = 0x1234\n"
				  "PrivateKey = " PRIV "\n"
				  "\n"
				  "[Peer]\n"
				  "PublicKey = " PUB1 "\n"
				  "PresharedKey = " PSK "\n"
				  "AllowedIPs = 0.0.0.0/0, ::/0\n"
				  "Endpoint = demo.wireguard.com:51820\n"
				  "PersistentKeepalive = 25\n"
				  "\n"
				  "[Peer]\n"
				  "PublicKey = " PUB2 "\n"
				  "AllowedIPs = 10.10.0.0/16, 192.168.1.7/32\n"
				  "Endpoint = [2001:db8::1]:443\n");
	sg_memzero(text, len);
	free(text);
	assert_int_equal(sg_wgconf_serialize(&c, 0, &text, &len), 0);
	assert_non_null(strstr(text, "[Interface]\n"
				     "Address = 10.200.100.8/24\n"
				     "Address = fd00::8/64\n"
				     "Address = 10.200.101.8/32\n"
				     "DNS = 10.200.100.1\n"
				     "DNS = 2001:db8::53\n"
				     "DNS = example.com\n"
				     "MTU = 1380\n"
				     "Table = 1234\n"
				     "SaveConfig = true\n"
				     "PreUp = echo pre-up %i\n"
				     "PostUp = iptables -A FORWARD -i %i -j ACCEPT; echo done\n"
				     "PreDown = logger \"going down\"\n"
				     "PostDown = iptables -D FORWARD -i %i -j ACCEPT\n"
				     "ListenPort = 51820\n"));
	free(text);
	sg_wgconf_free(&c);

	/* No peers: the interface section and its blank line, as `wg showconf`. */
	parse_ok(&c, "[Interface]\nListenPort = 0\n");
	assert_int_equal(sg_wgconf_serialize(&c, 0, &text, &len), 0);
	assert_string_equal(text, "[Interface]\n\n");
	free(text);
	sg_wgconf_free(&c);
}

/* Field by field: the struct has padding. */
static void compare_ips(const struct sg_wgconf_ip *a, const struct sg_wgconf_ip *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(a[i].family, b[i].family);
		assert_int_equal(a[i].cidr, b[i].cidr);
		assert_memory_equal(a[i].addr, b[i].addr, a[i].family == AF_INET ? 4 : 16);
	}
}

static void compare_conf(const struct sg_wgconf *a, const struct sg_wgconf *b)
{
	assert_int_equal(a->has_private_key, b->has_private_key);
	assert_memory_equal(a->private_key, b->private_key, 32);
	assert_int_equal(a->listen_port, b->listen_port);
	assert_int_equal(a->fwmark, b->fwmark);
	assert_int_equal(a->n_addresses, b->n_addresses);
	compare_ips(a->addresses, b->addresses, a->n_addresses);
	assert_int_equal(a->n_dns, b->n_dns);
	for (size_t i = 0; i < a->n_dns; i++)
		assert_string_equal(a->dns[i].name, b->dns[i].name);
	assert_int_equal(a->mtu, b->mtu);
	assert_string_equal(a->table, b->table);
	assert_int_equal(a->save_config, b->save_config);
	for (int h = 0; h < SG_WGCONF_NHOOKS; h++) {
		assert_int_equal(a->n_hooks[h], b->n_hooks[h]);
		for (size_t i = 0; i < a->n_hooks[h]; i++)
			assert_string_equal(a->hooks[h][i], b->hooks[h][i]);
	}
	assert_int_equal(a->n_peers, b->n_peers);
	for (size_t i = 0; i < a->n_peers; i++) {
		const struct sg_wgconf_peer *p = &a->peers[i], *q = &b->peers[i];

		assert_memory_equal(p->public_key, q->public_key, 32);
		assert_int_equal(p->has_preshared_key, q->has_preshared_key);
		assert_memory_equal(p->preshared_key, q->preshared_key, 32);
		assert_int_equal(p->has_endpoint, q->has_endpoint);
		assert_string_equal(p->endpoint_host, q->endpoint_host);
		assert_int_equal(p->endpoint_port, q->endpoint_port);
		assert_int_equal(p->keepalive, q->keepalive);
		assert_int_equal(p->n_allowed_ips, q->n_allowed_ips);
		compare_ips(p->allowed_ips, q->allowed_ips, p->n_allowed_ips);
	}
}

static void round_trip(const char *text)
{
	struct sg_wgconf a, b;
	char *out, *out2;
	size_t len, len2;

	parse_ok(&a, text);
	assert_int_equal(sg_wgconf_serialize(&a, 0, &out, &len), 0);
	parse_ok(&b, out);
	compare_conf(&a, &b);
	assert_int_equal(sg_wgconf_serialize(&b, 0, &out2, &len2), 0);
	assert_int_equal(len, len2);
	assert_string_equal(out, out2);
	free(out);
	free(out2);
	sg_wgconf_free(&a);
	sg_wgconf_free(&b);
}

static void test_round_trip(void **state)
{
	(void)state;
	round_trip(full_example);
	round_trip("[Interface]\nTable = OFF\nPrivateKey = " PRIV "\n");
	round_trip("[Peer]\nPublicKey = " PUB1 "\nEndpoint = [fe80::1%eth0]:9\n");
	round_trip("[Peer]\nPublicKey = " PUB1 "\n[Peer]\nPublicKey = " PUB1 "\n");

	/* Random configurations: random keys, prefixes, ports, several peers. */
	for (int iter = 0; iter < 200; iter++) {
		struct sg_wgconf c;
		char *out;
		size_t len;

		sg_wgconf_init(&c);
		assert_true(sg_random_bytes(c.private_key, 32));
		c.has_private_key = true;
		c.listen_port = (uint16_t)(sg_random_u32() | 1);
		c.has_listen_port = true;
		c.fwmark = sg_random_u32() | 1;
		c.has_fwmark = true;
		unsigned int np = sg_random_u32() % 5;

		for (unsigned int i = 0; i < np; i++) {
			struct sg_wgconf_peer *p = sg_wgconf_add_peer(&c);

			assert_non_null(p);
			assert_true(sg_random_bytes(p->public_key, 32));
			p->has_public_key = true;
			p->has_preshared_key = sg_random_u32() & 1;
			if (p->has_preshared_key)
				assert_true(sg_random_bytes(p->preshared_key, 32));
			p->keepalive = (uint16_t)(sg_random_u32() | 1);
			p->has_keepalive = true;
			unsigned int nip = sg_random_u32() % 6;

			for (unsigned int j = 0; j < nip; j++) {
				struct sg_wgconf_ip ip = {0};

				ip.family = (sg_random_u32() & 1) ? AF_INET6 : AF_INET;
				assert_true(
				    sg_random_bytes(ip.addr, ip.family == AF_INET ? 4 : 16));
				ip.cidr =
				    (uint8_t)(sg_random_u32() % (ip.family == AF_INET ? 33 : 129));
				assert_int_equal(sg_wgconf_peer_add_ip(&c, p, &ip), 0);
			}
		}
		assert_int_equal(sg_wgconf_serialize(&c, 0, &out, &len), 0);
		struct sg_wgconf back;

		parse_ok(&back, out);
		compare_conf(&c, &back);
		free(out);
		sg_wgconf_free(&back);
		sg_wgconf_free(&c);
	}
}

/* SecureGuard's FIPS keys: parsing, the derived id of a FIPS-only peer, errors, round trip. */
static void test_fips_keys(void **state)
{
	uint8_t priv[SG_FIPS_PRIV_LEN], pub[SG_FIPS_PUB_LEN], id[32];
	char privb[SG_FIPS_PRIV_BASE64_LEN + 1], pubb[SG_FIPS_PUB_BASE64_LEN + 1], text[1024];
	struct sg_wgconf c, c2;
	char *out = NULL;
	size_t outlen;

	(void)state;
	assert_int_equal(sg_fipskey_generate(priv, pub), 0);
	sg_fipskey_priv_to_base64(privb, priv);
	sg_fipskey_pub_to_base64(pubb, pub);
	assert_int_equal(strlen(privb), 64);
	assert_int_equal(strlen(pubb), 68);
	snprintf(text, sizeof(text),
		 "[Interface]\nPrivateKey = " PRIV "\nFipsPrivateKey = %s\ncryptomode = FIPS\n"
		 "FipsStrict = true\n\n[Peer]\nFipsPublicKey = %s\nCryptoMode = auto\n"
		 "AllowedIPs = 10.0.0.2/32\n\n[Peer]\nPublicKey = " PUB1 "\nFipsPublicKey = %s\n",
		 privb, pubb, pubb);
	sg_wgconf_init(&c);
	/* The same FIPS key on two peers is the daemon's business (SG_EEXIST there). */
	assert_int_equal(sg_wgconf_parse(&c, text, strlen(text)), 0);
	assert_true(c.has_fips_private_key);
	assert_memory_equal(c.fips_private_key, priv, sizeof(priv));
	assert_int_equal(c.crypto_mode, SG_WGCONF_MODE_FIPS);
	assert_true(c.fips_strict);
	assert_int_equal(c.n_peers, 2);
	assert_true(c.peers[0].public_key_derived);
	assert_true(sg_fips_peer_id(id, pub));
	assert_memory_equal(c.peers[0].public_key, id, 32);
	assert_int_equal(c.peers[0].crypto_mode, SG_WGCONF_MODE_AUTO);
	assert_false(c.peers[1].public_key_derived);
	assert_int_equal(c.peers[1].crypto_mode, SG_WGCONF_MODE_UNSET);
	/* Round trip: no derived PublicKey is written, everything else comes back. */
	assert_int_equal(sg_wgconf_serialize(&c, 0, &out, &outlen), 0);
	assert_non_null(strstr(out, "FipsPrivateKey = "));
	assert_non_null(strstr(out, "CryptoMode = fips\n"));
	assert_non_null(strstr(out, "[Peer]\nFipsPublicKey = "));
	sg_wgconf_init(&c2);
	assert_int_equal(sg_wgconf_parse(&c2, out, outlen), 0);
	assert_memory_equal(c2.peers[0].public_key, id, 32);
	assert_memory_equal(c2.peers[1].fips_public_key, pub, sizeof(pub));
	assert_true(c2.fips_strict);
	sg_memzero(out, outlen);
	free(out);
	sg_wgconf_free(&c2);
	sg_wgconf_free(&c);

	/* Errors name the key and never quote key text. */
	static const struct {
		const char *text, *want;
	} bad[] = {
	    {"[Interface]\nFipsPrivateKey = abc\n",
	     "line 2: FipsPrivateKey: not a base64 key of 64 characters"},
	    {"[Interface]\nCryptoMode = fast\n",
	     "line 2: CryptoMode: neither auto, fips nor classic: `fast'"},
	    {"[Interface]\nFipsStrict = yes\n", "line 2: FipsStrict: neither true nor false: `yes'"},
	    {"[Peer]\nFipsPublicKey = " PUB1 "\n",
	     "line 2: FipsPublicKey: not a base64 key of 68 characters"},
	    {"[Interface]\nFipsPublicKey = x\n",
	     "line 2: FipsPublicKey: only valid in the [Peer] section"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sg_wgconf_init(&c);
		assert_int_not_equal(sg_wgconf_parse(&c, bad[i].text, strlen(bad[i].text)), 0);
		assert_string_equal(sg_wgconf_error(&c), bad[i].want);
		sg_wgconf_free(&c);
	}
	/* A well-formed encoding of an X that is not on the curve, and a scalar >= n. */
	uint8_t off[SG_FIPS_PUB_LEN] = {0x02};
	off[48] = 1;
	sg_fipskey_pub_to_base64(pubb, off);
	snprintf(text, sizeof(text), "[Peer]\nFipsPublicKey = %s\n", pubb);
	sg_wgconf_init(&c);
	assert_int_not_equal(sg_wgconf_parse(&c, text, strlen(text)), 0);
	assert_string_equal(sg_wgconf_error(&c), "line 2: FipsPublicKey: not a point on P-384");
	sg_wgconf_free(&c);
	memset(priv, 0xff, sizeof(priv));
	sg_fipskey_priv_to_base64(privb, priv);
	snprintf(text, sizeof(text), "[Interface]\nFipsPrivateKey = %s\n", privb);
	sg_wgconf_init(&c);
	assert_int_not_equal(sg_wgconf_parse(&c, text, strlen(text)), 0);
	assert_string_equal(sg_wgconf_error(&c),
			    "line 2: FipsPrivateKey: not a P-384 private key (out of range)");
	assert_false(c.has_fips_private_key);
	sg_wgconf_free(&c);
}

/* The TLS transport's keys: parsed, serialized, and their errors. */
static void test_tls_keys(void **state)
{
	static const char text[] = "[Interface]\nTlsListenPort = 443\n"
				   "TlsCertificate = /etc/sg/my cert.pem \nTlsPrivateKey = /etc/sg/k.pem\n"
				   "TlsCA = /etc/sg/ca.pem\nTlsCRL = /etc/sg/ca.crl\n"
				   "RequireClientCert = true\nTlsSessionKey = /etc/sg/session.pem\n"
				   "RequireSessionToken = true\nTlsSessionToken = /run/sg/s.jwt\n\n"
				   "[Peer]\nPublicKey = " PUB1 "\nTransport = AUTO\n"
				   "TlsEndpoint = hub.example.net:443\nTlsServerName = hub.example.net\n";
	struct sg_wgconf c, c2;
	char *out = NULL;
	size_t outlen;

	(void)state;
	sg_wgconf_init(&c);
	assert_int_equal(sg_wgconf_parse(&c, text, strlen(text)), 0);
	assert_true(c.has_tls_listen_port);
	assert_int_equal(c.tls_listen_port, 443);
	assert_string_equal(c.tls_certificate, "/etc/sg/my cert.pem");
	assert_string_equal(c.tls_private_key, "/etc/sg/k.pem");
	assert_string_equal(c.tls_ca, "/etc/sg/ca.pem");
	assert_string_equal(c.tls_crl, "/etc/sg/ca.crl");
	assert_true(c.require_client_cert);
	assert_string_equal(c.tls_session_key, "/etc/sg/session.pem");
	assert_true(c.require_session_token);
	assert_string_equal(c.tls_session_token, "/run/sg/s.jwt");
	assert_int_equal(c.peers[0].transport, SG_WGCONF_TRANSPORT_AUTO);
	assert_true(c.peers[0].has_tls_endpoint);
	assert_string_equal(c.peers[0].tls_endpoint_host, "hub.example.net");
	assert_int_equal(c.peers[0].tls_endpoint_port, 443);
	assert_string_equal(c.peers[0].tls_server_name, "hub.example.net");
	assert_int_equal(sg_wgconf_serialize(&c, 0, &out, &outlen), 0);
	assert_non_null(strstr(out, "TlsCertificate = /etc/sg/my cert.pem\n"));
	assert_non_null(strstr(out, "Transport = auto\nTlsEndpoint = hub.example.net:443\n"));
	sg_wgconf_init(&c2);
	assert_int_equal(sg_wgconf_parse(&c2, out, outlen), 0);
	assert_string_equal(c2.tls_ca, "/etc/sg/ca.pem");
	assert_string_equal(c2.tls_crl, "/etc/sg/ca.crl");
	assert_string_equal(c2.tls_session_key, "/etc/sg/session.pem");
	assert_true(c2.require_session_token);
	assert_string_equal(c2.tls_session_token, "/run/sg/s.jwt");
	assert_int_equal(c2.peers[0].transport, SG_WGCONF_TRANSPORT_AUTO);
	free(out);
	sg_wgconf_free(&c2);
	sg_wgconf_free(&c);

	static const struct {
		const char *text, *want;
	} bad[] = {
	    {"[Interface]\nTlsCertificate = cert.pem\n",
	     "line 2: TlsCertificate: not an absolute path: `cert.pem'"},
	    {"[Interface]\nTlsListenPort = 70000\n", NULL},
	    {"[Interface]\nRequireClientCert = maybe\n",
	     "line 2: RequireClientCert: neither true nor false: `maybe'"},
	    {"[Interface]\nTlsSessionToken = s.jwt\n",
	     "line 2: TlsSessionToken: not an absolute path: `s.jwt'"},
	    {"[Peer]\nRequireSessionToken = true\n",
	     "line 2: RequireSessionToken: only valid in the [Interface] section"},
	    {"[Peer]\nTransport = quic\n", "line 2: Transport: neither udp, tls nor auto: `quic'"},
	    {"[Peer]\nTlsEndpoint = nohost\n", NULL},
	    {"[Peer]\nTlsServerName = bad_name!\n",
	     "line 2: TlsServerName: not a host name: `bad_name!'"},
	    {"[Interface]\nTransport = tls\n", "line 2: Transport: only valid in the [Peer] section"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sg_wgconf_init(&c);
		assert_int_not_equal(sg_wgconf_parse(&c, bad[i].text, strlen(bad[i].text)), 0);
		if (bad[i].want)
			assert_string_equal(sg_wgconf_error(&c), bad[i].want);
		else
			assert_true(strncmp(sg_wgconf_error(&c), "line 2: Tls", 11) == 0);
		sg_wgconf_free(&c);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full_example),     cmocka_unit_test(test_lexical),
	    cmocka_unit_test(test_value_parsers),    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_errors_hide_keys), cmocka_unit_test(test_line_limit),
	    cmocka_unit_test(test_peer_limit),	     cmocka_unit_test(test_allowed_ip_limits),
	    cmocka_unit_test(test_interface_limits), cmocka_unit_test(test_serialize_layout),
	    cmocka_unit_test(test_round_trip),	     cmocka_unit_test(test_fips_keys),
	    cmocka_unit_test(test_tls_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
