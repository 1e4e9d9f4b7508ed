/* Unit tests for the swanctl.conf parser (src/vici/swanctl_conf.c): the VICI messages it makes
 * for a connection and a secret, and errors that name the line. tests/integration/test_vici.sh
 * loads the same kind of file into strongSwan's charon through it and compares with swanctl. */
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#include <secureguard/sg_errors.h>

#include "vici/swanctl_conf.h"

static int feed_text(struct swanctl_conf *c, const char *text)
{
	while (*text) {
		const char *nl = strchr(text, '\n');
		size_t n = nl ? (size_t)(nl - text) : strlen(text);
		int err = swanctl_feed(c, text, n);
		if (err)
			return err;
		text += n + (nl ? 1 : 0);
	}
	return swanctl_finish(c);
}

static const char conf[] =
    "# site to site\n"
    "connections {\n"
    "  home {\n"
    "    version = 2\n"
    "    local_addrs = 192.0.2.1\n"
    "    remote_addrs = 192.0.2.2 , 192.0.2.3\n"
    "    proposals = aes256gcm16-prfsha384-ecp384, chacha20poly1305-prfsha256-x25519\n"
    "    dpd_delay = 30s   # liveness\n"
    "    local-1 {\n"
    "      auth = psk\n"
    "      id = a@example.net\n"
    "    }\n"
    "    remote {\n"
    "      auth = psk\n"
    "      id = \"CN=peer, O=Example \\\"quoted\\\"\"\n"
    "    }\n"
    "    children {\n"
    "      net {\n"
    "        local_ts = 10.1.0.0/16\n"
    "        remote_ts = 10.2.0.0/16,10.3.0.0/16\n"
    "        esp_proposals = aes256gcm16\n"
    "        start_action = none\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n"
    "secrets {\n"
    "  ike-home {\n"
    "    id-a = a@example.net\n"
    "    id-b = b@example.net\n"
    "    secret = 0x0102ff\n"
    "  }\n"
    "  ike-2 {\n"
    "    secret = \"a # is not a comment here\"\n"
    "  }\n"
    "}\n"
    "authorities {\n"
    "  strongswan {\n"
    "    cacert = strongswanCert.pem\n"
    "  }\n"
    "  other {\n"
    "    file = /etc/swanctl/x509ca/other.pem\n"
    "  }\n"
    "}\n";

static void test_parse(void **state)
{
	struct swanctl_conf c;
	struct vici_msg *m;
	const uint8_t *raw;
	size_t len;
	(void)state;
	swanctl_init(&c);
	assert_int_equal(feed_text(&c, conf), 0);
	assert_int_equal(c.nitems, 5);
	assert_string_equal(c.items[0].cmd, "load-conn");
	assert_string_equal(c.items[0].name, "home");
	assert_int_equal(vici_builder_finish(&c.items[0].msg, &raw, &len, NULL), 0);
	assert_int_equal(vici_msg_parse(raw, len, &m, NULL), 0);
	const struct vici_node *r = vici_msg_root(m);
	assert_string_equal(vici_get_str(r, "home.version"), "2");
	assert_string_equal(vici_get_str(r, "home.dpd_delay"), "30s");
	const struct vici_node *l = vici_find(r, "home.remote_addrs");
	assert_int_equal(l->type, VICI_NODE_LIST);
	assert_int_equal(vici_node_count(l), 2);
	assert_string_equal((const char *)l->child->next->value, "192.0.2.3");
	l = vici_find(r, "home.proposals");
	assert_string_equal((const char *)l->child->next->value,
			    "chacha20poly1305-prfsha256-x25519");
	assert_string_equal(vici_get_str(r, "home.local-1.id"), "a@example.net");
	assert_string_equal(vici_get_str(r, "home.remote.id"), "CN=peer, O=Example \"quoted\"");
	l = vici_find(r, "home.children.net.remote_ts");
	assert_int_equal(vici_node_count(l), 2);
	assert_string_equal(vici_get_str(r, "home.children.net.start_action"), "none");
	vici_msg_free(m);

	assert_string_equal(c.items[1].cmd, "load-shared");
	assert_int_equal(vici_builder_finish(&c.items[1].msg, &raw, &len, NULL), 0);
	assert_int_equal(vici_msg_parse(raw, len, &m, NULL), 0);
	r = vici_msg_root(m);
	assert_string_equal(vici_get_str(r, "type"), "IKE");
	assert_string_equal(vici_get_str(r, "id"), "ike-home");
	const struct vici_node *d = vici_find(r, "data");
	assert_int_equal(d->value_len, 3);
	assert_memory_equal(d->value, "\x01\x02\xff", 3);
	assert_int_equal(vici_node_count(vici_find(r, "owners")), 2);
	vici_msg_free(m);
	assert_int_equal(vici_builder_finish(&c.items[2].msg, &raw, &len, NULL), 0);
	assert_int_equal(vici_msg_parse(raw, len, &m, NULL), 0);
	assert_string_equal(vici_get_str(vici_msg_root(m), "data"), "a # is not a comment here");
	vici_msg_free(m);
	/* Authorities: load-authority messages naming the file, for the caller to read. */
	assert_string_equal(c.items[3].cmd, "load-authority");
	assert_string_equal(c.items[3].name, "strongswan");
	assert_int_equal(vici_builder_finish(&c.items[3].msg, &raw, &len, NULL), 0);
	assert_int_equal(vici_msg_parse(raw, len, &m, NULL), 0);
	assert_string_equal(vici_get_str(vici_msg_root(m), "strongswan.cacert"),
			    "strongswanCert.pem");
	vici_msg_free(m);
	assert_int_equal(vici_builder_finish(&c.items[4].msg, &raw, &len, NULL), 0);
	assert_int_equal(vici_msg_parse(raw, len, &m, NULL), 0);
	assert_string_equal(vici_get_str(vici_msg_root(m), "other.file"),
			    "/etc/swanctl/x509ca/other.pem");
	vici_msg_free(m);
	swanctl_free(&c);
}

/* Item i's message, decoded. */
static struct vici_msg *item_msg(struct swanctl_conf *c, unsigned i)
{
	const uint8_t *raw;
	size_t len;
	struct vici_msg *m = NULL;
	assert_int_equal(vici_builder_finish(&c->items[i].msg, &raw, &len, NULL), 0);
	assert_int_equal(vici_msg_parse(raw, len, &m, NULL), 0);
	return m;
}

/* Private key files (secrets.private*, rsa*, ecdsa*): load-key items naming the file (the
 * daemon reads it) with the passphrase of an encrypted one. */
static void test_keys(void **state)
{
	static const char keys[] = "secrets {\n"
				   "  private-moon {\n"
				   "    file = moon.enc.key\n"
				   "    secret = \"moon passphrase\"\n"
				   "  }\n"
				   "  rsa-sun {\n"
				   "    file = /etc/swanctl/rsa/sun.key\n"
				   "  }\n"
				   "}\n";
	struct swanctl_conf c;
	(void)state;
	swanctl_init(&c);
	assert_int_equal(feed_text(&c, keys), 0);
	assert_int_equal(c.nitems, 2);
	assert_string_equal(c.items[0].cmd, "load-key");
	struct vici_msg *m = item_msg(&c, 0);
	assert_string_equal(vici_get_str(vici_msg_root(m), "type"), "private");
	assert_string_equal(vici_get_str(vici_msg_root(m), "file"), "moon.enc.key");
	assert_string_equal(vici_get_str(vici_msg_root(m), "secret"), "moon passphrase");
	vici_msg_free(m);
	m = item_msg(&c, 1);
	assert_string_equal(vici_get_str(vici_msg_root(m), "type"), "rsa");
	assert_null(vici_find(vici_msg_root(m), "secret")); /* not carried over from the first */
	vici_msg_free(m);
	swanctl_free(&c);
}

static void test_errors(void **state)
{
	static const struct {
		const char *text, *err;
	} bad[] = {
	    {"connections {\n  c {\n    bogus = 1\n  }\n}\n",
	     "line 3: unknown or unsupported key 'bogus' in 'c'"},
	    {"connections {\n  c {\n    local {\n      pubkeys = a.pem\n    }\n  }\n}\n",
	     "line 4: unknown or unsupported key 'pubkeys' in 'local'"},
	    {"connections {\n  c {\n    children {\n      n {\n        mode = tunnel\n        x = "
	     "1\n",
	     "line 6: unknown or unsupported key 'x' in 'n'"},
	    {"pools {\n}\n", "line 1: unknown or unsupported section 'pools' (connections, "
			     "secrets and authorities are supported)"},
	    {"connections {\n  c {\n", "line 2: section 'c' not closed at the end of the file"},
	    {"}\n", "line 1: '}' without an open section"},
	    {"key = 1\n", "line 1: key 'key' outside any section"},
	    {"connections {\n  c {\n    version = \"2\n",
	     "line 3: unterminated quoted value of 'version'"},
	    {"secrets {\n  eap-x {\n", "line 2: unsupported secret type 'eap-x' (ike, private, rsa "
				       "and ecdsa are supported)"},
	    {"secrets {\n  private-a {\n    pin = 1234\n",
	     "line 3: unknown or unsupported key 'pin' in 'private-a' (file and secret are "
	     "supported)"},
	    {"secrets {\n  rsa {\n    secret = pass\n  }\n}\n",
	     "line 4: secret 'rsa' has no 'file' key"},
	    {"secrets {\n  ecdsa {\n    secret = \"\"\n",
	     "line 3: secret of 'ecdsa' is empty or not under 256 bytes"},
	    {"secrets {\n  ike {\n    secret = 0xabc\n",
	     "line 3: secret of 'ike' is not valid 0x hex, 0s base64 or under 512 bytes"},
	    {"secrets {\n  ike {\n    id = x\n  }\n}\n",
	     "line 4: secret 'ike' has no 'secret' key"},
	    {"connections { c {\n", "line 1: text after '{' (one statement per line)"},
	    {"conn$ {\n", "line 1: bad section name"},
	    {"connections {\n  c {\n    local { auth = psk }\n",
	     "line 3: text after '{' (one statement per line)"},
	    {"connections\n", "line 1: expected 'name {', 'key = value' or '}'"},
	    {"connections {\n  c {\n    version = 2\n    version = 1\n",
	     "line 4: key 'version' given twice in 'c'"},
	    {"authorities {\n  ca {\n    cacert = ca.pem\n    crl_uris = http://crl/\n",
	     "line 4: crl_uris: revocation checking (CRL and OCSP) is not supported; remove the "
	     "key to use the CA without it"},
	    {"authorities {\n  ca {\n    ocsp_uris = http://ocsp/\n",
	     "line 3: ocsp_uris: revocation checking (CRL and OCSP) is not supported; remove the "
	     "key to use the CA without it"},
	    {"authorities {\n  ca {\n    handle = 0102\n",
	     "line 3: handle: PKCS#11 tokens are not supported"},
	    {"authorities {\n  ca {\n    cacert = a.pem\n    file = /b.pem\n",
	     "line 4: authority 'ca': cacert and file both name its certificate"},
	    {"authorities {\n  ca {\n    file = b.pem\n",
	     "line 3: file of authority 'ca' must be an absolute path"},
	    {"authorities {\n  ca {\n  }\n}\n", "line 3: authority 'ca' has no cacert or file"},
	    {"authorities {\n  ca {\n    cert_uri_base = http://x/\n",
	     "line 3: cert_uri_base: hash-and-URL certificates are not supported"},
	    {"authorities {\n  ca {\n    ca {\n", "line 3: unknown section 'ca' in authority 'ca'"},
	    {"authorities {\n  ca {\n    cacerts = a.pem\n",
	     "line 3: unknown key 'cacerts' in authority 'ca'"},
	};
	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(bad); i++) {
		struct swanctl_conf c;
		swanctl_init(&c);
		int err = feed_text(&c, bad[i].text);
		if (!err || strcmp(c.err, bad[i].err) != 0)
			fail_msg("case %zu: got %d \"%s\", want \"%s\"", i, err, c.err, bad[i].err);
		swanctl_free(&c);
	}
	/* A line longer than the limit, and a NUL byte. */
	struct swanctl_conf c;
	char *big = malloc(SWANCTL_MAX_LINE + 10);
	memset(big, 'a', SWANCTL_MAX_LINE + 10);
	swanctl_init(&c);
	assert_int_equal(swanctl_feed(&c, big, SWANCTL_MAX_LINE + 10), SG_ERANGE);
	assert_int_equal(swanctl_feed(&c, "a\0b", 3), SG_EPARSE);
	swanctl_free(&c);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_keys),
	    cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
