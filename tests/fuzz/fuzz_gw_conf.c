/* Fuzz target for the gateway's config validator (src/gateway/conf.c): any input is refused
 * with a message or accepted; an accepted document parses again to the same model, and every
 * resource has what the data path relies on (targets, domains or a port, sane limits).
 * gw_conf_check, which goes on after a problem to find every one, agrees: no problem exactly
 * when the document is accepted, and the first problem it reports is the parser's message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/conf.h"
#include "secureguard/sg_errors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct first {
	char msg[GW_CONF_ERR_MAX + 200];
	int n;
};

static void on_problem(void *ctx, const char *path, const char *detail)
{
	struct first *f = ctx;
	if (f->n++ == 0)
		snprintf(f->msg, sizeof(f->msg), "%s%s%s", path, path[0] ? ": " : "", detail);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gw_conf *c = NULL;
	char err[GW_CONF_ERR_MAX];
	int rc = gw_conf_parse((const char *)data, size, &c, err, sizeof(err));
	struct first f = {{0}, 0};
	int n = gw_conf_check((const char *)data, size, on_problem, &f);
	if (n < 0)
		return 0; /* out of memory */
	if ((rc == 0) != (n == 0) || n != f.n)
		abort();
	if (rc != 0) {
		if (c || !err[0])
			abort();
		/* The same first problem (the parser's message may be cut at its buffer). */
		if (rc != SG_ENOMEM && strncmp(err, f.msg, strlen(err)) != 0)
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
