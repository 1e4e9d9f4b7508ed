/* Fuzz target for the agent's check of a configuration from the server or its state directory
 * (src/agent/desired.c): any input is refused with a reason or accepted; an accepted one has a
 * name and a type for every tunnel, unique names, and digests every tunnel. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL), *t;
	char why[256] = "", h[97];
	size_t i;

	if (!doc)
		return 0;
	if (agent_config_check(doc, why, sizeof(why))) {
		if (!why[0])
			abort();
		json_decref(doc);
		return 0;
	}
	json_array_foreach(json_object_get(doc, "tunnels"), i, t)
	{
		if (!json_is_string(json_object_get(t, "name")) ||
		    !json_is_string(json_object_get(t, "type")))
			abort();
		agent_tunnel_hash(t, h);
		if (strlen(h) != 96)
			abort();
	}
	json_decref(doc);
	return 0;
}
