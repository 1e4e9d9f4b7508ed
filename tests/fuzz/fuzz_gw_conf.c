/* Fuzz target for the gateway's config validator (src/gateway/conf.c): any input is refused
 * with a message or accepted; an accepted document parses again to the same model, and every
 * resource has what the data path relies on (targets, domains or a port, sane limits). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gw_conf *c = NULL;
	char err[GW_CONF_ERR_MAX];
	int rc = gw_conf_parse((const char *)data, size, &c, err, sizeof(err));
	if (rc != 0) {
		if (c || !err[0])
			abort();
		return 0;
	}
	for (size_t i = 0; i < c->n_resources; i++) {
		const struct gw_resource_conf *r = &c->resources[i];
		if (r->n_targets == 0 || r->n_targets > GW_CONF_MAX_TARGETS)
			abort();
		if (r->proto == GW_PROTO_HTTP ? r->n_domains == 0 : r->port == 0)
			abort();
		for (size_t k = 0; k < r->n_targets; k++)
			if (r->targets[k].weight == 0 || r->targets[k].addr_len == 0)
				abort();
		for (size_t d = 0; d < r->n_domains; d++)
			if (gw_conf_find_host(c, r->domains[d][0] == '*' ? "x.a" : r->domains[d],
					      r->domains[d][0] == '*' ? 3 : strlen(r->domains[d])) !=
				    r &&
			    r->domains[d][0] != '*')
				abort();
	}
	struct gw_conf *c2 = NULL;
	if (gw_conf_parse(c->json, c->json_len, &c2, err, sizeof(err)) != 0 ||
	    c2->n_resources != c->n_resources || c2->serial != c->serial)
		abort();
	gw_conf_free(c2);
	gw_conf_free(c);
	return 0;
}
