/* The configuration an agent receives, checked before any of it is used (it is input, even from
 * our own server: and the copy on disk may have been edited), and the digest that tells a changed
 * tunnel from an unchanged one. Fuzzed: tests/fuzz/fuzz_agent_config.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "crypto/crypto.h"
#include "secureguard/sg_errors.h"

static bool chars_ok(const char *s, const char *extra, size_t max)
{
	size_t n = strlen(s);

	if (!n || n > max)
		return false;
	for (const char *p = s; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr(extra, *p)))
			return false;
	}
	return true;
}

/* Printable, no controls (they end up in VICI messages, files and logs). */
static bool text_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (!n || n > max)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return false;
	}
	return true;
}

/* A JSON string without an escaped NUL (which C strings would cut short). */
static const char *cstr(json_t *v)
{
	const char *s = json_string_value(v);

	return s && json_string_length(v) == strlen(s) ? s : NULL;
}

struct field {
	const char *name;
	char kind; /* s string, a array of strings, i integer, b boolean */
	size_t max; /* string length, or array items */
	long long lo, hi;
	const char *const *enumv;
};

static const char *const types[] = {"ipsec", "wireguard", NULL};
static const char *const auths[] = {"psk", "pubkey", NULL};
static const char *const modes[] = {"tunnel", "transport", NULL};
static const char *const starts[] = {"none", "start", "trap", NULL};
static const char *const dpds[] = {"clear", "trap", "restart", NULL};

static const struct field fields[] = {
    {"type", 's', 16, 0, 0, types},
    {"version", 'i', 0, 1, 2, NULL},
    {"local_addrs", 'a', 16, 0, 0, NULL},
    {"remote_addrs", 'a', 16, 0, 0, NULL},
    {"local_ts", 'a', 256, 0, 0, NULL},
    {"remote_ts", 'a', 4096, 0, 0, NULL},
    {"proposals", 'a', 16, 0, 0, NULL},
    {"esp_proposals", 'a', 16, 0, 0, NULL},
    {"ah_proposals", 'a', 16, 0, 0, NULL},
    {"auth", 's', 8, 0, 0, auths},
    {"secret", 's', 1024, 0, 0, NULL},
    {"local_id", 's', 255, 0, 0, NULL},
    {"remote_id", 's', 255, 0, 0, NULL},
    {"local_cert", 's', 128, 0, 0, NULL},
    {"rekey_time", 'i', 0, 0, 7 * 86400, NULL},
    {"life_time", 'i', 0, 0, 7 * 86400, NULL},
    {"dpd_delay", 'i', 0, 0, 86400, NULL},
    {"dpd_action", 's', 16, 0, 0, dpds},
    {"mode", 's', 16, 0, 0, modes},
    {"start_action", 's', 16, 0, 0, starts},
    {"encap", 'b', 0, 0, 0, NULL},
    {"client_id", 's', 64, 0, 0, NULL},
    {"network_id", 's', 64, 0, 0, NULL},
    {"interface", 's', 15, 0, 0, NULL},
    {"config", 's', 1u << 20, 0, 0, NULL},
    {"policy_id", 's', 64, 0, 0, NULL},
    {"policy_name", 's', 255, 0, 0, NULL},
    {"policy_version", 'i', 0, 0, 1LL << 53, NULL},
    {"priority", 'i', 0, 0, 1LL << 53, NULL},
};

static bool enum_ok(const char *const *e, const char *v)
{
	for (; *e; e++) {
		if (!strcmp(*e, v))
			return true;
	}
	return false;
}

static int check_field(const struct field *f, json_t *v, const char *tname, char *why, size_t n)
{
	size_t i;
	json_t *e;

	if (json_is_null(v))
		return 0;
	switch (f->kind) {
	case 's': {
		const char *s = cstr(v);

		/* The configuration file keeps its newlines; everything else is one line. */
		if (!s || (strcmp(f->name, "config") ? !text_ok(s, f->max)
						       : strlen(s) > f->max || !*s) ||
		    (f->enumv && !enum_ok(f->enumv, s)))
			goto bad;
		if (!strcmp(f->name, "config")) {
			for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
				if ((*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f)
					goto bad;
			}
		}
		if (!strcmp(f->name, "local_cert") && (!chars_ok(s, "._-", 128) || s[0] == '.'))
			goto bad;
		if (!strcmp(f->name, "interface") && !chars_ok(s, "._-=+", 15))
			goto bad;
		return 0;
	}
	case 'a':
		if (!json_is_array(v) || json_array_size(v) > f->max)
			goto bad;
		json_array_foreach(v, i, e)
		{
			if (!cstr(e) || !text_ok(json_string_value(e), 256) ||
			    strchr(json_string_value(e), ','))
				goto bad;
		}
		return 0;
	case 'i':
		if (!json_is_integer(v) || json_integer_value(v) < f->lo ||
		    json_integer_value(v) > f->hi)
			goto bad;
		return 0;
	case 'b':
		if (!json_is_boolean(v))
			goto bad;
		return 0;
	}
bad:
	snprintf(why, n, "tunnel %.64s: field %s has a bad value", tname, f->name);
	return SG_EPARSE;
}

int agent_config_check(json_t *doc, char *why, size_t n)
{
	json_t *tunnels = json_object_get(doc, "tunnels"), *t, *u;
	const char *rev = cstr(json_object_get(doc, "revision"));
	json_t *poll = json_object_get(doc, "poll_interval");
	size_t i, j;

	if (!json_is_object(doc)) {
		snprintf(why, n, "the configuration is not an object");
		return SG_EPARSE;
	}
	if (!rev || !chars_ok(rev, "", 128)) {
		snprintf(why, n, "revision: missing or not alphanumeric");
		return SG_EPARSE;
	}
	if (!cstr(json_object_get(doc, "peer_id")) ||
	    !chars_ok(json_string_value(json_object_get(doc, "peer_id")), "-", 64)) {
		snprintf(why, n, "peer_id: missing or malformed");
		return SG_EPARSE;
	}
	if (!json_is_integer(poll) || json_integer_value(poll) < 1 ||
	    json_integer_value(poll) > 86400) {
		snprintf(why, n, "poll_interval: not 1 to 86400 seconds");
		return SG_EPARSE;
	}
	if (!json_is_array(tunnels) || json_array_size(tunnels) > AGENT_MAX_TUNNELS) {
		snprintf(why, n, "tunnels: not an array of at most %d", AGENT_MAX_TUNNELS);
		return SG_EPARSE;
	}
	json_array_foreach(tunnels, i, t)
	{
		const char *name = cstr(json_object_get(t, "name"));
		const char *type = cstr(json_object_get(t, "type"));
		const char *key;
		json_t *v;

		if (!json_is_object(t) || !name || !chars_ok(name, "._-", AGENT_NAME_MAX) ||
		    name[0] == '.' || name[0] == '-') {
			snprintf(why, n, "tunnels[%zu]: no valid name", i);
			return SG_EPARSE;
		}
		if (!type || !enum_ok(types, type)) {
			snprintf(why, n, "tunnel %.64s: type is not ipsec or wireguard", name);
			return SG_EPARSE;
		}
		if (!strcmp(type, "wireguard") &&
		    (!chars_ok(name, "._-=+", 15) ||
		     !json_is_string(json_object_get(t, "config")))) {
			snprintf(why, n, "tunnel %.64s: a wireguard tunnel needs an interface name "
					 "(1-15 characters) and its config",
				 name);
			return SG_EPARSE;
		}
		if (!strcmp(type, "ipsec") && !json_is_string(json_object_get(t, "auth"))) {
			snprintf(why, n, "tunnel %.64s: an ipsec tunnel needs auth", name);
			return SG_EPARSE;
		}
		json_object_foreach(t, key, v)
		{
			size_t k;

			if (!strcmp(key, "name"))
				continue;
			for (k = 0; k < SG_ARRAY_LEN(fields); k++) {
				if (!strcmp(fields[k].name, key))
					break;
			}
			/* Fields a newer server adds are ignored, not refused. */
			if (k < SG_ARRAY_LEN(fields) && check_field(&fields[k], v, name, why, n))
				return SG_EPARSE;
		}
		json_array_foreach(tunnels, j, u)
		{
			if (j >= i)
				break;
			if (!strcmp(json_string_value(json_object_get(u, "name")), name)) {
				snprintf(why, n, "two tunnels named %.64s", name);
				return SG_EPARSE;
			}
		}
	}
	return 0;
}

void agent_tunnel_hash(json_t *t, char out[97])
{
	static const char hex[] = "0123456789abcdef";
	json_t *c = json_deep_copy(t);
	uint8_t d[SG_SHA384_LEN];
	char *s;

	out[0] = 0;
	if (!c)
		return;
	json_object_del(c, "policy_version");
	json_object_del(c, "policy_name");
	json_object_del(c, "priority");
	s = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(c);
	if (!s)
		return;
	{
		struct sg_iov iov = {s, strlen(s)};

		if (sg_sha384(d, &iov, 1)) {
			for (int i = 0; i < SG_SHA384_LEN; i++) {
				out[2 * i] = hex[d[i] >> 4];
				out[2 * i + 1] = hex[d[i] & 15];
			}
			out[96] = 0;
		}
	}
	sg_memzero(s, strlen(s));
	free(s);
}
