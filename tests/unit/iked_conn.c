/* Unit tests for the IKE daemon's connection configuration (src/iked/conn.c): a load-conn
 * message as swanctl sends it, into the core's peer configuration, and the refusals that name
 * what is wrong. */
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#include <secureguard/sg_errors.h>

#include "iked/iked.h"
#include "vici/swanctl_conf.h"

/* The load-conn message of a swanctl.conf text, through the project's parser. */
static int conn_from_text(const char *text, struct iked_conn *c, char *err, size_t errlen)
{
	struct swanctl_conf sc;
	swanctl_init(&sc);
	while (*text) {
		const char *nl = strchr(text, '\n');
		size_t n = nl ? (size_t)(nl - text) : strlen(text);
		assert_int_equal(swanctl_feed(&sc, text, n), 0);
		text += n + (nl ? 1 : 0);
	}
	assert_int_equal(swanctl_finish(&sc), 0);
	assert_string_equal(sc.items[0].cmd, "load-conn");
	const uint8_t *raw;
	size_t len;
	struct vici_msg *m;
	assert_int_equal(vici_builder_finish(&sc.items[0].msg, &raw, &len, NULL), 0);
	assert_int_equal(vici_msg_parse(raw, len, &m, NULL), 0);
	int rc = iked_conn_from_vici(vici_msg_root(m), NULL, c, err, errlen);
	vici_msg_free(m);
	swanctl_free(&sc);
	return rc;
}

#define CONN(extra_conn, extra_child, local_id)                                                    \
	"connections {\n  gw {\n    remote_addrs = 192.0.2.2\n    proposals = "                    \
	"aes256gcm16-prfsha384-ecp384\n" extra_conn                                                \
	"    local {\n      auth = psk\n      id = " local_id                                      \
	"\n    }\n    remote {\n      auth = psk\n      id = @b.example\n    }\n"                  \
	"    children {\n      net {\n        local_ts = 10.1.0.0/16\n        remote_ts = "        \
	"10.2.0.0/24, 10.3.0.7\n" extra_child "      }\n    }\n  }\n}\n"

static void test_conn(void **state)
{
	struct iked_conn c;
	char err[256];
	(void)state;
	assert_int_equal(
	    conn_from_text(CONN("    dpd_delay = 30s\n    rekey_time = 2h\n",
				"        start_action = start\n        mode = transport\n"
				"        rekey_time = 10m\n        rekey_bytes = 2m\n",
				"a@example.net"),
			   &c, err, sizeof(err)),
	    0);
	assert_string_equal(c.cfg.name, "gw");
	assert_int_equal(c.cfg.remote.family, AF_INET);
	assert_int_equal(c.cfg.remote.addr[3], 2);
	assert_int_equal(c.cfg.remote.port, 500);
	assert_true(c.has_remote && c.child[0].start);
	assert_int_equal(c.cfg.nchildren, 1);
	assert_int_equal(c.cfg.local_id.type, IKE_ID_RFC822_ADDR);
	assert_int_equal(c.cfg.remote_id.type, IKE_ID_FQDN);
	assert_int_equal(c.cfg.remote_id.len, 9); /* "@b.example" without the @ */
	assert_int_equal(c.cfg.dpd_delay_ns, 30000000000ull);
	assert_int_equal(c.cfg.rekey_time_ns, 7200000000000ull);
	assert_int_equal(c.cfg.children[0].rekey_time_ns, 600000000000ull);
	assert_int_equal(c.cfg.children[0].life_time_ns, 660000000000ull); /* 110% */
	assert_int_equal(c.child[0].rekey_bytes, 2u << 20);
	assert_true(c.cfg.children[0].transport);
	assert_int_equal(c.cfg.children[0].nremote_ts, 2);
	assert_int_equal(c.cfg.children[0].remote_ts[0].end[3], 255);
	assert_int_equal(c.cfg.children[0].remote_ts[1].start[3], 7); /* a single address */
	assert_int_equal(c.cfg.children[0].remote_ts[1].end[3], 7);
	assert_int_equal(c.cfg.nprops, 1);
	assert_int_equal(c.cfg.children[0].nprops, 1); /* the default ESP proposals */

	static const struct {
		const char *text, *err;
	} bad[] = {
	    {CONN("    mobike = yes\n", "", "a.example"),
	     "mobike is not supported (set mobike = no)"},
	    {CONN("    fips = yes\n", "        esp_proposals = chacha20poly1305\n", "a.example"),
	     "esp_proposals: 'chacha20poly1305': algorithm outside the FIPS profile"},
	    {CONN("", "        start_action = route\n", "a.example"),
	     "start_action = route: none, trap and start are supported"},
	    {CONN("", "        mode = beet\n", "a.example"),
	     "mode = beet: tunnel and transport are supported"},
	    {CONN("    local_port = 4501\n", "", "a.example"),
	     "local_port = 4501: the daemon listens on 500 and 4500"},
	    {CONN("", "", "\"CN=a, XX=b\""),
	     "local: id 'CN=a, XX=b' is not an identity (an address, FQDN, e-mail address, a DN "
	     "such as \"C=CH, O=Org, CN=name\" with the attributes strongSwan knows, or a typed "
	     "one: fqdn:, email:, asn1dn:, keyid:, ipv4:, ipv6:)"},
	    {CONN("", "", "%any"), "local: an id is needed with psk"},
	    {CONN("    dpd_delay = soon\n", "", "a.example"), "dpd_delay: bad duration 'soon'"},
	    {CONN("", "        rekey_time = 2h\n        life_time = 1h\n", "a.example"),
	     "life_time is shorter than rekey_time"},
	};
	for (size_t i = 0; i < SG_ARRAY_LEN(bad); i++) {
		err[0] = 0;
		if (conn_from_text(bad[i].text, &c, err, sizeof(err)) != SG_EINVAL ||
		    strcmp(err, bad[i].err) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, bad[i].err);
	}
}

/* Several children, remote_addrs as addresses, prefixes and ranges, fragmentation. */
static void test_children_and_addrs(void **state)
{
	struct iked_conn c;
	char err[256];
	(void)state;
	static const char text[] =
	    "connections {\n  gw {\n    remote_addrs = 192.0.2.2, 198.51.100.0/24, "
	    "203.0.113.5-203.0.113.9\n    fragmentation = accept\n"
	    "    local {\n      auth = psk\n      id = a.example\n    }\n"
	    "    remote {\n      auth = psk\n      id = b.example\n    }\n"
	    "    children {\n"
	    "      net {\n        local_ts = 10.1.0.0/16\n        remote_ts = 10.2.0.0/16\n"
	    "        start_action = start\n      }\n"
	    "      dmz {\n        local_ts = 10.1.0.0/16\n        remote_ts = 10.9.0.0/24\n"
	    "        dpd_action = restart\n        life_packets = 1k\n      }\n"
	    "    }\n  }\n}\n";
	assert_int_equal(conn_from_text(text, &c, err, sizeof(err)), 0);
	assert_int_equal(c.cfg.nchildren, 2);
	assert_string_equal(c.cfg.children[0].name, "net");
	assert_string_equal(c.cfg.children[1].name, "dmz");
	assert_true(c.child[0].start);
	assert_false(c.child[1].start);
	assert_int_equal(c.child[1].life_packets, 1024);
	assert_int_equal(c.cfg.children[1].dpd_action, IKE_DPD_RESTART);
	assert_int_equal(c.cfg.children[1].remote_ts[0].end[2], 0);
	assert_int_equal(c.cfg.fragmentation, IKE_FRAG_ACCEPT);
	assert_true(c.has_remote);
	assert_int_equal(c.cfg.remote.addr[3], 2);
	assert_int_equal(c.cfg.nremote_addrs, 3);
	assert_true(c.cfg.remote_addrs[0].single);
	assert_false(c.cfg.remote_addrs[1].single);
	assert_int_equal(c.cfg.remote_addrs[1].end[3], 255);
	assert_int_equal(c.cfg.remote_addrs[2].start[3], 5);
	assert_int_equal(c.cfg.remote_addrs[2].end[3], 9);
	assert_string_equal(c.remote_addrs, "192.0.2.2, 198.51.100.0/24, 203.0.113.5-203.0.113.9");
	/* A host name first: where we initiate to once resolved; until then the list matches
	 * no address (an entry of no family), not anyone. */
	static const char named[] =
	    "connections {\n  gw {\n    remote_addrs = moon.example, 198.51.100.7\n"
	    "    remote_port = 4501\n"
	    "    local {\n      auth = psk\n      id = a.example\n    }\n"
	    "    remote {\n      auth = psk\n      id = b.example\n    }\n"
	    "    children {\n      net {\n        local_ts = 10.1.0.0/16\n"
	    "        remote_ts = 10.2.0.0/16\n      }\n    }\n  }\n}\n";
	assert_int_equal(conn_from_text(named, &c, err, sizeof(err)), 0);
	assert_true(c.has_remote && c.host_first);
	assert_int_equal(c.nhosts, 1);
	assert_string_equal(c.hosts[0], "moon.example");
	assert_int_equal(c.cfg.remote.family, 0);
	assert_int_equal(c.remote_port, 4501);
	assert_int_equal(c.nliteral, 1);
	assert_int_equal(c.cfg.nremote_addrs, 2);
	assert_int_equal(c.cfg.remote_addrs[1].family, 0);
	/* fragmentation = no. */
	assert_int_equal(
	    conn_from_text(CONN("    fragmentation = no\n", "", "a.example"), &c, err, sizeof(err)), 0);
	assert_int_equal(c.cfg.fragmentation, IKE_FRAG_NO);
	static const struct {
		const char *text, *err;
	} bad[] = {
	    {"connections {\n  gw {\n    remote_addrs = moon_example\n    local {\n      auth = "
	     "psk\n      id = a\n    }\n    remote {\n      auth = psk\n      id = b\n    }\n"
	     "    children {\n      n {\n        local_ts = 10.1.0.0/16\n        remote_ts = "
	     "10.2.0.0/16\n      }\n    }\n  }\n}\n",
	     "remote_addrs: 'moon_example' is not an address, prefix, range or host name"},
	    {CONN("    fragmentation = maybe\n", "", "a.example"),
	     "fragmentation = maybe: yes, accept, force or no"},
	    {"connections {\n  gw {\n    remote_addrs = 192.0.2.9-192.0.2.1\n    local {\n      "
	     "auth = psk\n      id = a\n    }\n    remote {\n      auth = psk\n      id = b\n"
	     "    }\n    children {\n      n {\n        local_ts = 10.1.0.0/16\n        "
	     "remote_ts = 10.2.0.0/16\n      }\n    }\n  }\n}\n",
	     "remote_addrs: '192.0.2.9-192.0.2.1' is not an address, prefix, range or host "
	     "name"},
	};
	for (size_t i = 0; i < SG_ARRAY_LEN(bad); i++) {
		err[0] = 0;
		if (conn_from_text(bad[i].text, &c, err, sizeof(err)) != SG_EINVAL ||
		    strcmp(err, bad[i].err) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, bad[i].err);
	}
}

static void test_helpers(void **state)
{
	uint64_t ns;
	struct ike_identity id;
	char buf[64];
	(void)state;
	assert_int_equal(iked_duration("90", &ns), 0);
	assert_int_equal(ns, 90000000000ull);
	assert_int_equal(iked_duration("1d", &ns), 0);
	assert_int_equal(ns, 86400000000000ull);
	assert_int_equal(iked_duration("5x", &ns), SG_EINVAL);
	assert_int_equal(iked_duration("5ss", &ns), SG_EINVAL);
	assert_int_equal(iked_duration("", &ns), SG_EINVAL);
	assert_int_equal(iked_duration("99999999999999999999d", &ns), SG_EINVAL);
	assert_int_equal(iked_identity_parse("2001:db8::1", &id), 0);
	assert_int_equal(id.type, IKE_ID_IPV6_ADDR);
	assert_string_equal(iked_identity_str(&id, buf, sizeof(buf)), "2001:db8::1");
	assert_int_equal(iked_identity_parse("moon.example", &id), 0);
	assert_int_equal(id.type, IKE_ID_FQDN);
	assert_string_equal(iked_identity_str(&id, buf, sizeof(buf)), "moon.example");
	assert_int_equal(iked_identity_parse("has space", &id), SG_EINVAL);
	assert_int_equal(iked_identity_parse("@", &id), SG_EINVAL);
	/* strongSwan's forms of "any identity". */
	assert_int_equal(iked_identity_parse("", &id), 0);
	assert_int_equal(id.type, IKE_ID_ANY);
	assert_int_equal(iked_identity_parse("%any", &id), 0);
	assert_int_equal(id.type, IKE_ID_ANY);
	assert_string_equal(iked_identity_str(&id, buf, sizeof(buf)), "%any");
	/* Distinguished names as text, printed back as charon prints them. */
	char big[256];
	assert_int_equal(iked_identity_parse("C=CH, O=strongSwan, CN=moon", &id), 0);
	assert_int_equal(id.type, IKE_ID_DER_ASN1_DN);
	assert_int_equal(id.len, 0x33);
	assert_string_equal(iked_identity_str(&id, big, sizeof(big)), "C=CH, O=strongSwan, CN=moon");
	struct ike_identity id2;
	assert_int_equal(iked_identity_parse("asn1dn:/C=CH/O=strongSwan/CN=moon", &id2), 0);
	assert_int_equal(id2.len, id.len);
	assert_memory_equal(id2.data, id.data, id.len);
	char hex[2 * 0x33 + 9] = "asn1dn:#";
	for (size_t i = 0; i < id.len; i++)
		sprintf(hex + 8 + 2 * i, "%02x", id.data[i]);
	assert_int_equal(iked_identity_parse(hex, &id2), 0);
	assert_memory_equal(id2.data, id.data, id.len);
	hex[10] = 0; /* the DER cut short */
	assert_int_equal(iked_identity_parse(hex, &id2), SG_EINVAL);
	assert_int_equal(iked_identity_parse("C=CH, Q=x", &id), SG_EINVAL);
	/* Typed identities and strongSwan's @ forms. */
	const struct {
		const char *text;
		uint8_t type;
		const char *shown;
	} typed[] = {
	    {"fqdn:moon", IKE_ID_FQDN, "moon"},
	    {"email:moon@example.net", IKE_ID_RFC822_ADDR, "moon@example.net"},
	    {"userfqdn:moon@example.net", IKE_ID_RFC822_ADDR, "moon@example.net"},
	    {"@@moon@example.net", IKE_ID_RFC822_ADDR, "moon@example.net"},
	    {"ipv4:192.0.2.7", IKE_ID_IPV4_ADDR, "192.0.2.7"},
	    {"keyid:#0a0b", IKE_ID_KEY_ID, "0a0b"},
	    {"@#0a0b", IKE_ID_KEY_ID, "0a0b"},
	    {"keyid:moon", IKE_ID_KEY_ID, "moon"},
	};
	for (size_t i = 0; i < SG_ARRAY_LEN(typed); i++) {
		assert_int_equal(iked_identity_parse(typed[i].text, &id), 0);
		assert_int_equal(id.type, typed[i].type);
		assert_string_equal(iked_identity_str(&id, buf, sizeof(buf)), typed[i].shown);
	}
	assert_int_equal(iked_identity_parse("ipv4:moon", &id), SG_EINVAL);
	assert_int_equal(iked_identity_parse("keyid:#0a0", &id), SG_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_conn),
	    cmocka_unit_test(test_children_and_addrs),
	    cmocka_unit_test(test_helpers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
