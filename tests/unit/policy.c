/* Unit tests of the policy checks and expansion (src/server/policy.c): every check of the issue
 * found at once and by field, proposals in strongSwan's syntax, and the topologies: a mesh of N
 * is N(N-1)/2 tunnels with each side's half on its peer, hub-and-spoke routes spoke to spoke
 * through the hub, site-to-site pairs left with right; both sides agree on names, addresses,
 * selectors and the derived key. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/policy.h"

static json_t *parse(const char *text)
{
	json_error_t err;
	json_t *j = json_loads(text, 0, &err);

	if (!j)
		fail_msg("bad test JSON at %d: %s", err.column, err.text);
	return j;
}

/* The fields the errors name, in order, comma-separated. */
static void fields(json_t *list, char *out, size_t len)
{
	json_t *e;
	size_t i, n = 0;

	out[0] = 0;
	json_array_foreach(list, i, e)
	n += (size_t)snprintf(out + n, len - n, "%s%s", i ? "," : "",
			      json_string_value(json_object_get(e, "field")));
}

static bool no_peer(void *ctx, const char *id)
{
	(void)ctx;
	return strcmp(id, "00000000-0000-4000-8000-000000000000") != 0;
}

static void test_check_all_at_once(void **state)
{
	struct pol_lookup lk = {no_peer, NULL, NULL, NULL, 0};
	json_t *pol = parse(
	    "{\"name\":\"hq\",\"applies_to\":[\"00000000-0000-4000-8000-000000000000\",\"a b\"],"
	    "\"tunnels\":[{\"name\":\"t1\",\"version\":1,\"remote_addrs\":[\"bad host!\"],"
	    "\"local_ts\":[\"10.0.0.1/24\"],\"remote_ts\":[],\"auth\":\"psk\",\"secret\":\"short\","
	    "\"proposals\":[\"aes256gcm16-prfsha256-x25519\",\"aes128-sha256\",\"rot13-sha1\"],"
	    "\"esp_proposals\":[\"aes128-sha1-modp1024\"],\"rekey_time\":60,\"life_time\":"
	    "100000},{\"name\":\"t1\",\"auth\":\"pubkey\",\"remote_addrs\":[\"vpn.example.com\"],"
	    "\"local_ts\":[\"10.0.0.0/8\"],\"remote_ts\":[\"fd00::/64\"],\"ah_proposals\":["
	    "\"sha256\"],\"mode\":\"transport\"}]}");
	json_t *errors = json_array(), *warnings = json_array();
	char f[2048];
	size_t n = pol_check(pol, &lk, errors, warnings);

	(void)state;
	fields(errors, f, sizeof(f));
	assert_string_equal(
	    f, "applies_to[0],applies_to[1],tunnels[0].remote_addrs[0],tunnels[0].local_ts[0],"
	       "tunnels[0].remote_ts,tunnels[0].secret,tunnels[0].proposals[0],"
	       "tunnels[0].proposals[1],tunnels[0].proposals[2],tunnels[0].rekey_time,"
	       "tunnels[0].life_time,tunnels[1].name,tunnels[1].remote_ts,tunnels[1].local_cert");
	assert_int_equal(n, json_array_size(errors));
	fields(warnings, f, sizeof(f));
	assert_string_equal(f, "tunnels[0].esp_proposals[0],tunnels[1].remote_id,"
			       "tunnels[1].ah_proposals,tunnels[1].mode");
	/* The reasons say what is wrong. */
	assert_non_null(strstr(json_string_value(json_object_get(json_array_get(errors, 6),
								 "detail")),
			       "IKEv2"));
	assert_non_null(strstr(json_string_value(json_object_get(json_array_get(errors, 7),
								 "detail")),
			       "key exchange"));
	assert_non_null(strstr(json_string_value(json_object_get(json_array_get(errors, 8),
								 "detail")),
			       "rot13"));
	json_decref(pol);
	json_decref(errors);
	json_decref(warnings);
}

static void test_check_valid(void **state)
{
	json_t *pol = parse("{\"name\":\"p\",\"applies_to\":[\"branch\"],\"tunnels\":[{"
			    "\"name\":\"hq\",\"remote_addrs\":[\"192.0.2.1\"],\"local_ts\":["
			    "\"10.1.0.0/16\",\"fd01::/64\"],\"remote_ts\":[\"10.0.0.0/16\"],"
			    "\"auth\":\"psk\",\"secret\":\"12345678\",\"proposals\":["
			    "\"aes256gcm16-prfsha384-ecp384\",\"default\"],\"esp_proposals\":["
			    "\"aes256gcm16-x25519-esn\"],\"rekey_time\":300,\"life_time\":86400}]}");
	json_t *errors = json_array(), *warnings = json_array();

	(void)state;
	assert_int_equal(pol_check(pol, NULL, errors, warnings), 0);
	assert_int_equal(json_array_size(warnings), 0);
	json_decref(pol);
	json_decref(errors);
	json_decref(warnings);
}

static void test_check_topology(void **state)
{
	json_t *pol = parse("{\"name\":\"m\",\"applies_to\":[\"x\"],\"topology\":{\"type\":"
			    "\"mesh\",\"hubs\":[\"h\"]},\"tunnels\":[{\"auth\":\"psk\","
			    "\"local_ts\":[\"10.0.0.0/8\"]},{\"name\":\"two\",\"auth\":\"psk\"}]}");
	json_t *errors = json_array(), *warnings = json_array();
	char f[1024];

	(void)state;
	pol_check(pol, NULL, errors, warnings);
	fields(errors, f, sizeof(f));
	assert_string_equal(f, "topology.hubs,topology.members,applies_to,tunnels,"
			       "tunnels[0].local_ts");
	json_decref(pol);
	json_decref(errors);
	json_decref(warnings);
}

/* Certificate references that exist: each peer a policy selects must have reported the file
 * (with its key); a peer without a report is a warning, one that is not selected is ignored. */
static void test_check_certs(void **state)
{
	static const struct pol_peer peers[] = {
	    {"00000000-0000-4000-8000-000000000001", "hq", "192.0.2.1", "linux", "hq", NULL,
	     "hq.pem,other.pem"},
	    {"00000000-0000-4000-8000-000000000002", "b1", "192.0.2.2", "linux", "branch", NULL,
	     "b.pem"},
	    {"00000000-0000-4000-8000-000000000003", "b2", "192.0.2.3", "linux", "branch", NULL,
	     ""},
	    {"00000000-0000-4000-8000-000000000004", "b3", "192.0.2.4", "linux", "branch", NULL,
	     NULL},
	    {"00000000-0000-4000-8000-000000000005", "x", "192.0.2.5", "linux", "lab", NULL, ""},
	};
	const struct pol_lookup lk = {.peers = peers, .npeers = sizeof(peers) / sizeof(peers[0])};
	json_t *pol = parse("{\"name\":\"c\",\"topology\":{\"type\":\"site-to-site\",\"left\":["
			    "\"hq\"],\"right\":[\"branch\"]},\"tunnels\":[{\"auth\":\"pubkey\","
			    "\"local_cert\":\"b.pem\",\"remote_id\":\"CN=x\"}]}");
	json_t *errors = json_array(), *warnings = json_array();
	const char *d;

	(void)state;
	assert_int_equal(pol_check(pol, &lk, errors, warnings), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 0), "field")),
			    "tunnels[0].local_cert");
	d = json_string_value(json_object_get(json_array_get(errors, 0), "detail"));
	assert_non_null(strstr(d, "\"b.pem\""));
	assert_non_null(strstr(d, "peers hq, b2,"));
	assert_null(strstr(d, "b1"));
	assert_null(strstr(d, ", x"));
	assert_int_equal(json_array_size(warnings), 1);
	d = json_string_value(json_object_get(json_array_get(warnings, 0), "detail"));
	assert_non_null(strstr(d, "peer b3 "));
	json_decref(pol);
	json_array_clear(errors);
	json_array_clear(warnings);
	/* Applies to hq only, which has the file: no problem. */
	pol = parse("{\"name\":\"c\",\"applies_to\":[\"00000000-0000-4000-8000-000000000001\"],"
		    "\"tunnels\":[{\"name\":\"t\",\"remote_addrs\":[\"192.0.2.9\"],\"local_ts\":["
		    "\"10.0.0.0/8\"],\"remote_ts\":[\"10.9.0.0/16\"],\"auth\":\"pubkey\","
		    "\"local_cert\":\"other.pem\",\"remote_id\":\"CN=x\"}]}");
	assert_int_equal(pol_check(pol, &lk, errors, warnings), 0);
	assert_int_equal(json_array_size(warnings), 0);
	/* Without the peers (NULL lookups) the check is skipped. */
	assert_int_equal(pol_check(pol, NULL, errors, warnings), 0);
	json_decref(pol);
	json_decref(errors);
	json_decref(warnings);
}

static void test_proposals(void **state)
{
	static const struct {
		const char *p;
		enum pol_proto proto;
		int ok;
		bool aead;
	} cases[] = {
	    {"aes256gcm16-prfsha256-x25519", POL_IKE, 0, true},
	    {"aes256-sha256-modp3072", POL_IKE, 0, false},
	    {"aes256gcm16-x25519", POL_IKE, -1, true},	   /* AEAD IKE needs a PRF */
	    {"aes256-sha256", POL_IKE, -1, false},	   /* no key exchange */
	    {"aes256gcm16-sha256-prfsha256-x25519", POL_IKE, -1, true},
	    {"aes256-aes256gcm16-prfsha256-ecp256", POL_IKE, -1, true},
	    {"aes128gcm16", POL_ESP, 0, true},
	    {"chacha20poly1305-esn", POL_ESP, 0, true},
	    {"aes128", POL_ESP, -1, false},		   /* no integrity */
	    {"aes128-sha256-prfsha256", POL_ESP, -1, false}, /* PRF in ESP */
	    {"sha256-modp2048", POL_AH, 0, false},
	    {"aes128-sha256", POL_AH, -1, false},
	    {"aes128--sha256", POL_ESP, -1, false},
	    {"aes128-sha256-", POL_ESP, -1, false},
	    {"", POL_ESP, -1, false},
	    {"default", POL_IKE, 0, false},
	};
	char why[128];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool aead = false;
		const char *weak = NULL;
		int rc = pol_proposal_check(cases[i].p, cases[i].proto, &aead, &weak, why,
					    sizeof(why));

		if (rc != cases[i].ok)
			fail_msg("%s: %d (%s)", cases[i].p, rc, rc ? why : "");
		if (!rc)
			assert_int_equal(aead, cases[i].aead);
	}
	{
		bool aead;
		const char *weak = NULL;

		assert_int_equal(pol_proposal_check("3des-md5-modp1024", POL_IKE, &aead, &weak, why,
						    sizeof(why)),
				 0);
		assert_string_equal(weak, "3des");
	}
}

/* ---- expansion ---------------------------------------------------------------------------- */

static char *fake_derive(void *ctx, const char *policy_id, const char *name)
{
	char *s = malloc(256);

	(void)ctx;
	snprintf(s, 256, "k:%s:%s", policy_id, name);
	return s;
}

static char *fake_open(void *ctx, const char *policy_id, const char *sealed)
{
	char *s = malloc(256);

	(void)ctx;
	snprintf(s, 256, "open(%s,%s)", policy_id, sealed);
	return s;
}

static const struct pol_secrets secrets = {fake_open, fake_derive, NULL};

static json_t *find(json_t *tunnels, const char *name)
{
	json_t *t;
	size_t i;

	json_array_foreach(tunnels, i, t)
	{
		if (!strcmp(json_string_value(json_object_get(t, "name")), name))
			return t;
	}
	return NULL;
}

static const char *sget(json_t *t, const char *k)
{
	return json_string_value(json_object_get(t, k));
}

static void list_text(json_t *arr, char *out, size_t len)
{
	json_t *e;
	size_t i, n = 0;

	out[0] = 0;
	json_array_foreach(arr, i, e)
	n += (size_t)snprintf(out + n, len - n, "%s%s", i ? "," : "", json_string_value(e));
}

static void test_mesh(void **state)
{
	enum { N = 7 };
	struct pol_peer peers[N];
	char ids[N][40], names[N][16], addrs[N][16], subs[N][24];
	json_t *pols = parse("[{\"id\":\"P\",\"name\":\"mesh\",\"version\":3,\"enabled\":true,"
			     "\"priority\":100,\"topology\":{\"type\":\"mesh\",\"members\":["
			     "\"cluster\"]},\"tunnels\":[{\"auth\":\"psk\"}],\"secrets\":{}}]");
	size_t total = 0;
	json_t *all[N];

	(void)state;
	for (int i = 0; i < N; i++) {
		snprintf(ids[i], sizeof(ids[i]), "id-%d", i);
		snprintf(names[i], sizeof(names[i]), "node%d", i);
		snprintf(addrs[i], sizeof(addrs[i]), "192.0.2.%d", i + 1);
		snprintf(subs[i], sizeof(subs[i]), "10.%d.0.0/16", i);
		peers[i] = (struct pol_peer){
		    ids[i],  names[i], addrs[i], "linux", i == N - 1 ? "other" : "x,cluster",
		    subs[i], NULL};
	}
	for (int i = 0; i < N; i++) {
		json_t *problems = json_array();

		all[i] = pol_expand(pols, peers, N, (size_t)i, &secrets, problems);
		assert_non_null(all[i]);
		assert_int_equal(json_array_size(problems), 0);
		json_decref(problems);
		total += json_array_size(all[i]);
	}
	/* Members: the first N-1 (the last has no cluster tag): (N-1)(N-2)/2 tunnels, each once
	 * on both of its peers. */
	assert_int_equal(total, (size_t)(N - 1) * (N - 2));
	assert_int_equal(json_array_size(all[N - 1]), 0);
	for (int i = 0; i < N - 1; i++) {
		assert_int_equal(json_array_size(all[i]), N - 2);
		for (int j = i + 1; j < N - 1; j++) {
			char name[160], buf[192];
			json_t *a, *b;

			snprintf(name, sizeof(name), "mesh-%s-%s", names[i], names[j]);
			a = find(all[i], name);
			b = find(all[j], name);
			assert_non_null(a);
			assert_non_null(b);
			/* Mirror images of each other. */
			list_text(json_object_get(a, "local_ts"), buf, sizeof(buf));
			assert_string_equal(buf, subs[i]);
			list_text(json_object_get(b, "remote_ts"), buf, sizeof(buf));
			assert_string_equal(buf, subs[i]);
			list_text(json_object_get(a, "remote_addrs"), buf, sizeof(buf));
			assert_string_equal(buf, addrs[j]);
			assert_string_equal(sget(a, "secret"), sget(b, "secret"));
			snprintf(buf, sizeof(buf), "k:P:%s", name);
			assert_string_equal(sget(a, "secret"), buf);
			/* One side starts, the other answers. */
			assert_string_equal(sget(a, "start_action"), "start");
			assert_string_equal(sget(b, "start_action"), "none");
			assert_string_equal(sget(a, "policy_id"), "P");
			assert_int_equal(json_integer_value(json_object_get(a, "policy_version")), 3);
			assert_int_equal(json_integer_value(json_object_get(a, "rekey_time")), 3600);
		}
	}
	for (int i = 0; i < N; i++)
		json_decref(all[i]);
	json_decref(pols);
}

static void test_hub_and_spoke(void **state)
{
	struct pol_peer peers[] = {
	    {"h", "hub", "192.0.2.1", NULL, "hub", "10.0.0.0/24", NULL},
	    {"s1", "spoke1", "192.0.2.2", NULL, "spoke", "10.1.0.0/24", NULL},
	    {"s2", "spoke2", "192.0.2.3", NULL, "spoke", "", NULL},
	    {"s3", "spoke3", NULL, NULL, "spoke", "10.3.0.0/24", NULL}, /* no address */
	};
	json_t *pols = parse("[{\"id\":\"P\",\"name\":\"hs\",\"version\":1,\"enabled\":true,"
			     "\"priority\":5,\"topology\":{\"type\":\"hub-and-spoke\",\"hubs\":["
			     "\"h\"],\"spokes\":[\"spoke\"]},\"tunnels\":[{\"name\":\"vpn\","
			     "\"auth\":\"psk\"}],\"secrets\":{\"vpn\":\"SEALED\"}}]");
	json_t *hub, *s1, *s3, *problems = json_array();
	char buf[256];

	(void)state;
	hub = pol_expand(pols, peers, 4, 0, &secrets, NULL);
	s1 = pol_expand(pols, peers, 4, 1, &secrets, NULL);
	s3 = pol_expand(pols, peers, 4, 3, &secrets, problems);
	assert_int_equal(json_array_size(hub), 2);
	assert_int_equal(json_array_size(s1), 1);
	assert_int_equal(json_array_size(s3), 0);
	assert_int_equal(json_array_size(problems), 1);
	/* The hub side of spoke1's tunnel also carries spoke2 (its address: no subnets). */
	list_text(json_object_get(find(hub, "vpn-hub-spoke1"), "local_ts"), buf, sizeof(buf));
	assert_string_equal(buf, "10.0.0.0/24,192.0.2.3/32");
	list_text(json_object_get(find(s1, "vpn-hub-spoke1"), "remote_ts"), buf, sizeof(buf));
	assert_string_equal(buf, "10.0.0.0/24,192.0.2.3/32");
	assert_string_equal(sget(find(s1, "vpn-hub-spoke1"), "start_action"), "start");
	assert_string_equal(sget(find(hub, "vpn-hub-spoke1"), "start_action"), "none");
	/* A stored template secret is used by every pair. */
	assert_string_equal(sget(find(s1, "vpn-hub-spoke1"), "secret"), "open(P,SEALED)");
	json_decref(hub);
	json_decref(s1);
	json_decref(s3);
	json_decref(problems);
	json_decref(pols);
}

static void test_site_to_site_and_explicit(void **state)
{
	struct pol_peer peers[] = {
	    {"a", "hq", "192.0.2.1", NULL, "hq", "10.0.0.0/16", NULL},
	    {"b", "branch1", "192.0.2.2", NULL, "branch", "10.1.0.0/16", NULL},
	    {"c", "branch2", "192.0.2.3", NULL, "branch", "10.2.0.0/16", NULL},
	};
	json_t *pols = parse(
	    "[{\"id\":\"X\",\"name\":\"x\",\"version\":1,\"enabled\":true,\"priority\":9,"
	    "\"applies_to\":[\"b\"],\"tunnels\":[{\"name\":\"s2s-hq-branch1\",\"auth\":\"psk\","
	    "\"remote_addrs\":[\"198.51.100.1\"],\"local_ts\":[\"10.1.0.0/16\"],\"remote_ts\":["
	    "\"10.9.0.0/16\"]}],\"secrets\":{\"s2s-hq-branch1\":\"S\"}},"
	    "{\"id\":\"Y\",\"name\":\"off\",\"version\":1,\"enabled\":false,\"priority\":8,"
	    "\"applies_to\":[\"branch\"],\"tunnels\":[{\"name\":\"never\"}]},"
	    "{\"id\":\"P\",\"name\":\"s2s\",\"version\":1,\"enabled\":true,\"priority\":1,"
	    "\"topology\":{\"type\":\"site-to-site\",\"left\":[\"hq\"],\"right\":[\"branch\"]},"
	    "\"tunnels\":[{\"auth\":\"psk\",\"start_action\":\"trap\"}]}]");
	json_t *hq = pol_expand(pols, peers, 3, 0, &secrets, NULL), *problems = json_array();
	json_t *b1 = pol_expand(pols, peers, 3, 1, &secrets, problems);
	json_t *b2 = pol_expand(pols, peers, 3, 2, &secrets, NULL);

	(void)state;
	assert_int_equal(json_array_size(hq), 2);
	assert_int_equal(json_array_size(b2), 1);
	/* branch1 has the explicit tunnel (higher priority) under the pair's name: the pair is
	 * skipped there, and the problem says so. */
	assert_int_equal(json_array_size(b1), 1);
	assert_string_equal(sget(json_array_get(b1, 0), "policy_id"), "X");
	assert_string_equal(sget(json_array_get(b1, 0), "secret"), "open(X,S)");
	assert_string_equal(sget(json_array_get(b1, 0), "start_action"), "start");
	assert_int_equal(json_array_size(problems), 1);
	/* The template's start_action is kept on both sides. */
	assert_string_equal(sget(find(hq, "s2s-hq-branch2"), "start_action"), "trap");
	assert_string_equal(sget(find(b2, "s2s-hq-branch2"), "start_action"), "trap");
	json_decref(hq);
	json_decref(b1);
	json_decref(b2);
	json_decref(problems);
	json_decref(pols);
}

static char *fake_seal(void *ctx, const char *s)
{
	char *o = malloc(strlen(s) + 8);

	(void)ctx;
	sprintf(o, "sealed:%s", s);
	return o;
}

static void test_split_secrets(void **state)
{
	json_t *t = parse("[{\"name\":\"a\",\"secret\":\"12345678\"},{\"name\":\"b\"},"
			  "{\"name\":\"c\"}]");
	json_t *old = parse("{\"b\":\"sealed:old-b\",\"z\":\"gone\"}"), *sec = NULL;
	json_t *pub = pol_split_secrets(t, old, fake_seal, NULL, &sec);
	char *text;

	(void)state;
	assert_non_null(pub);
	text = json_dumps(pub, JSON_COMPACT);
	assert_string_equal(text, "[{\"name\":\"a\",\"has_secret\":true},{\"name\":\"b\","
				  "\"has_secret\":true},{\"name\":\"c\",\"has_secret\":false}]");
	free(text);
	text = json_dumps(sec, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(text, "{\"a\":\"sealed:12345678\",\"b\":\"sealed:old-b\"}");
	free(text);
	json_decref(pub);
	json_decref(sec);
	json_decref(t);
	json_decref(old);
}

static void test_names(void **state)
{
	(void)state;
	assert_true(pol_peer_name_ok("branch-1"));
	assert_false(pol_peer_name_ok("-x"));
	assert_false(pol_peer_name_ok("a_b"));
	assert_false(pol_peer_name_ok("abcdefghijabcdefghijabcdefghijabc")); /* 33 */
	assert_true(pol_tag_ok("site.eu_west-1"));
	assert_false(pol_tag_ok("a,b"));
	assert_false(pol_tag_ok(""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_check_all_at_once),
	    cmocka_unit_test(test_check_valid),
	    cmocka_unit_test(test_check_topology),
	    cmocka_unit_test(test_check_certs),
	    cmocka_unit_test(test_proposals),
	    cmocka_unit_test(test_mesh),
	    cmocka_unit_test(test_hub_and_spoke),
	    cmocka_unit_test(test_site_to_site_and_explicit),
	    cmocka_unit_test(test_split_secrets),
	    cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
