/* Unit tests of the agent's pure parts: the check of a configuration (src/agent/desired.c), the
 * digest that decides what changed, the state directory's files (src/agent/state.c), and the
 * push channel's backoff (src/net/longpoll.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent.h"
#include "crypto/crypto.h"
#include "net/longpoll.h"
#include "secureguard/sg_errors.h"

static const char good[] =
    "{\"peer_id\":\"590eccdf-8409-4d7a-a974-c9733d6658f9\",\"poll_interval\":60,\"revision\":"
    "\"0b1fd472e8ab\",\"problems\":[],\"tunnels\":[{\"name\":\"hs-hub-spoke1\",\"type\":\"ipsec\","
    "\"auth\":\"psk\",\"secret\":\"a secret of some length\",\"local_addrs\":[\"192.0.2.1\"],"
    "\"remote_addrs\":[\"192.0.2.2\"],\"local_ts\":[\"10.1.0.0/24\"],\"remote_ts\":["
    "\"10.2.0.0/24\"],\"proposals\":[\"aes256gcm16-prfsha256-x25519\"],\"version\":2,"
    "\"rekey_time\":3600,\"start_action\":\"start\",\"encap\":false,\"policy_id\":\"p1\","
    "\"policy_version\":3,\"future_field\":{\"x\":1}},{\"name\":\"sg0\",\"type\":\"wireguard\","
    "\"client_id\":\"c\",\"config\":\"[Interface]\\nPrivateKey = x\\n\\n[Peer]\\nPublicKey = y\\n\"}]}";

static json_t *parse(const char *s)
{
	json_t *j = json_loads(s, 0, NULL);

	assert_non_null(j);
	return j;
}

static void test_config_check(void **state)
{
	static const struct {
		const char *path, *json, *why;
	} bad[] = {
	    {NULL, "[]", "not an object"},
	    {"revision", "\"a b\"", "revision"},
	    {"poll_interval", "0", "poll_interval"},
	    {"tunnels", "{}", "tunnels"},
	    {"t0.name", "\"-x\"", "no valid name"},
	    {"t0.name", "\"a/b\"", "no valid name"},
	    {"t0.type", "\"gre\"", "type"},
	    {"t0.auth", "null", "needs auth"},
	    {"t0.local_ts", "[\"10.0.0.0/8,10.1.0.0/16\"]", "local_ts"},
	    {"t0.secret", "\"a\\u0001b\"", "secret"},
	    {"t0.version", "3", "version"},
	    {"t0.start_action", "\"sometimes\"", "start_action"},
	    {"t0.local_cert", "\"../etc/shadow\"", "local_cert"},
	    {"t1.name", "\"an-interface-name-too-long\"", "wireguard"},
	    {"t1.config", "\"a\\u0000b\"", "config"},
	    {"t1.name", "\"hs-hub-spoke1\"", "two tunnels"},
	};
	char why[256];
	json_t *doc = parse(good);

	(void)state;
	assert_int_equal(agent_config_check(doc, why, sizeof(why)), 0);
	json_decref(doc);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *v;

		doc = parse(good);
		v = json_loads(bad[i].json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
		assert_non_null(v);
		if (!bad[i].path) {
			json_decref(doc);
			doc = v;
		} else if (bad[i].path[0] == 't' && bad[i].path[2] == '.') {
			json_t *t = json_array_get(json_object_get(doc, "tunnels"),
						   (size_t)(bad[i].path[1] - '0'));

			json_object_set_new(t, bad[i].path + 3, v);
		} else {
			json_object_set_new(doc, bad[i].path, v);
		}
		why[0] = 0;
		if (agent_config_check(doc, why, sizeof(why)) != SG_EPARSE)
			fail_msg("case %zu (%s) accepted", i, bad[i].why);
		if (!strstr(why, bad[i].why))
			fail_msg("case %zu: reason \"%s\" does not say %s", i, why, bad[i].why);
		json_decref(doc);
	}
}

static void test_hash(void **state)
{
	json_t *a = parse("{\"name\":\"t\",\"type\":\"ipsec\",\"secret\":\"12345678\","
			  "\"policy_version\":1,\"priority\":5,\"policy_name\":\"p\"}");
	json_t *b = parse("{\"priority\":9,\"policy_version\":7,\"secret\":\"12345678\","
			  "\"type\":\"ipsec\",\"name\":\"t\",\"policy_name\":\"q\"}");
	char ha[97], hb[97];

	(void)state;
	agent_tunnel_hash(a, ha);
	agent_tunnel_hash(b, hb);
	assert_int_equal(strlen(ha), 96);
	/* Key order, the policy's version, name and priority do not change the tunnel. */
	assert_string_equal(ha, hb);
	json_object_set_new(b, "secret", json_string("123456789"));
	agent_tunnel_hash(b, hb);
	assert_string_not_equal(ha, hb);
	json_decref(a);
	json_decref(b);
}

static void test_state_files(void **state)
{
	char dir[] = "/tmp/sg-agent-unit.XXXXXX", why[256], path[128];
	uint8_t priv[32], pub[32], priv2[32], pub2[32];
	json_t *j, *back;
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(dir));
	chmod(dir, 0700);
	assert_int_equal(agent_state_dir(dir, why, sizeof(why)), 0);
	j = parse(good);
	assert_int_equal(agent_state_write_json(dir, "desired.json", j), 0);
	snprintf(path, sizeof(path), "%s/desired.json", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	back = agent_state_read_json(dir, "desired.json", why, sizeof(why));
	assert_non_null(back);
	assert_true(json_equal(j, back));
	json_decref(back);
	/* A file others may read is refused (it holds secrets). */
	chmod(path, 0644);
	assert_null(agent_state_read_json(dir, "desired.json", why, sizeof(why)));
	assert_non_null(strstr(why, "chmod 600"));
	unlink(path);
	/* The key pair: made once, read back the same, 0600. */
	assert_int_equal(agent_state_key(dir, false, priv, pub, why, sizeof(why)), SG_ENOENT);
	assert_int_equal(agent_state_key(dir, true, priv, pub, why, sizeof(why)), 0);
	assert_int_equal(agent_state_key(dir, false, priv2, pub2, why, sizeof(why)), 0);
	assert_memory_equal(priv, priv2, 32);
	assert_memory_equal(pub, pub2, 32);
	snprintf(path, sizeof(path), "%s/agent.key", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	unlink(path);
	/* A directory others may write to is not trusted. */
	chmod(dir, 0777);
	assert_int_equal(agent_state_dir(dir, why, sizeof(why)), SG_EPERM);
	rmdir(dir);
	json_decref(j);
}

static void test_backoff(void **state)
{
	(void)state;
	for (unsigned seed = 0; seed < 2000; seed += 7) {
		unsigned b1 = sg_longpoll_backoff_ms(1, 60, seed);
		unsigned b3 = sg_longpoll_backoff_ms(3, 60, seed);
		unsigned b9 = sg_longpoll_backoff_ms(9, 60, seed);

		assert_in_range(b1, 750, 1250);	   /* 1 s +-25% */
		assert_in_range(b3, 3000, 5000);   /* 4 s +-25% */
		assert_in_range(b9, 45000, 60000); /* capped at the poll interval */
	}
	assert_in_range(sg_longpoll_backoff_ms(30, 5, 12345), 3750, 5000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config_check),
	    cmocka_unit_test(test_hash),
	    cmocka_unit_test(test_state_files),
	    cmocka_unit_test(test_backoff),
	};

	if (sg_crypto_init())
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
