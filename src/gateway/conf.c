/* Gateway configuration: strict JSON validation into an arena-backed model; see conf.h. */
#include "gateway/conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <secureguard/sg_errors.h>

#include "common/file.h"
#include "net/http1.h"
#include "net/addr.h"

/* ---- arena ------------------------------------------------------------------------------ */

struct gw_arena {
	struct gw_arena *next;
	size_t used, cap;
	_Alignas(16) unsigned char data[];
};

static void *arena_alloc(struct gw_arena **head, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	struct gw_arena *a = *head;
	if (!a || a->cap - a->used < n) {
		size_t cap = n > 16384 ? n : 16384;
		struct gw_arena *b = malloc(sizeof(*b) + cap);
		if (!b)
			return NULL;
		b->next = a;
		b->used = 0;
		b->cap = cap;
		*head = b;
		a = b;
	}
	void *p = a->data + a->used;
	a->used += n;
	memset(p, 0, n);
	return p;
}

static void arena_free(struct gw_arena *a)
{
	while (a) {
		struct gw_arena *n = a->next;
		free(a);
		a = n;
	}
}

/* ---- validation context ----------------------------------------------------------------- */

/* Validation goes on after a problem, so that every problem of a document is found (the
 * server lists them all); the first one is also kept as the message of gw_conf_parse. */
struct vctx {
	struct gw_arena **arena;
	char *err;
	size_t errlen;
	gw_conf_problem_fn cb;
	void *cb_ctx;
	unsigned nerr;
	char path[192];
	size_t plen;
	bool oom;
};

static bool verr(struct vctx *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool verr(struct vctx *v, const char *fmt, ...)
{
	char msg[GW_CONF_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (v->nerr++ == 0 && v->errlen)
		snprintf(v->err, v->errlen, "%s%s%s", v->path, v->plen ? ": " : "", msg);
	if (v->cb)
		v->cb(v->cb_ctx, v->path, msg);
	return false;
}

/* Path segments: push returns the old length to restore. */
static size_t push_key(struct vctx *v, const char *key)
{
	size_t old = v->plen;
	int n = snprintf(v->path + v->plen, sizeof(v->path) - v->plen, "%s%s", v->plen ? "." : "",
			 key);
	if (n > 0 && v->plen + (size_t)n < sizeof(v->path))
		v->plen += (size_t)n;
	return old;
}

static size_t push_index(struct vctx *v, size_t i)
{
	size_t old = v->plen;
	int n = snprintf(v->path + v->plen, sizeof(v->path) - v->plen, "[%zu]", i);
	if (n > 0 && v->plen + (size_t)n < sizeof(v->path))
		v->plen += (size_t)n;
	return old;
}

static void pop(struct vctx *v, size_t old)
{
	v->plen = old;
	v->path[old] = '\0';
}

static void *v_alloc(struct vctx *v, size_t n)
{
	void *p = arena_alloc(v->arena, n ? n : 1);
	if (!p) {
		v->oom = true;
		verr(v, "out of memory");
	}
	return p;
}

static const char *vstrdup(struct vctx *v, const char *s)
{
	size_t n = strlen(s);
	char *p = v_alloc(v, n + 1);
	if (p)
		memcpy(p, s, n + 1);
	return p;
}

/* Every key of obj must be in allowed (NULL-terminated). */
static bool check_keys(struct vctx *v, json_t *obj, const char *const *allowed)
{
	const char *key;
	json_t *val;
	bool ok = true;
	json_object_foreach(obj, key, val)
	{
		bool known = false;
		for (size_t i = 0; allowed[i]; i++)
			if (strcmp(key, allowed[i]) == 0)
				known = true;
		if (!known) {
			size_t o = push_key(v, key);
			ok = verr(v, "unknown field");
			pop(v, o);
		}
	}
	return ok;
}

/* Printable ASCII without controls, 1..max bytes (names, regions, paths). */
static bool text_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

static bool id_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > GW_CONF_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return false;
	}
	return true;
}

/* A string field. required: absent is an error; otherwise *out stays NULL. */
static bool get_str(struct vctx *v, json_t *obj, const char *key, bool required, size_t max,
		    const char **out)
{
	json_t *j = json_object_get(obj, key);
	*out = NULL;
	if (!j) {
		if (!required)
			return true;
		size_t o = push_key(v, key);
		verr(v, "required");
		pop(v, o);
		return false;
	}
	size_t o = push_key(v, key);
	bool ok = false;
	if (!json_is_string(j))
		verr(v, "must be a string");
	else if (!text_ok(json_string_value(j), max))
		verr(v, "must be 1..%zu printable ASCII characters", max);
	else
		ok = (*out = vstrdup(v, json_string_value(j))) != NULL;
	pop(v, o);
	return ok;
}

static bool get_id(struct vctx *v, json_t *obj, const char *key, bool required, const char **out)
{
	if (!get_str(v, obj, key, required, GW_CONF_ID_MAX, out))
		return false;
	if (*out && !id_ok(*out)) {
		size_t o = push_key(v, key);
		verr(v, "must be 1..%d characters of [A-Za-z0-9._-]", GW_CONF_ID_MAX);
		pop(v, o);
		return false;
	}
	return true;
}

static bool get_u64(struct vctx *v, json_t *obj, const char *key, uint64_t lo, uint64_t hi,
		    uint64_t def, uint64_t *out)
{
	json_t *j = json_object_get(obj, key);
	*out = def;
	if (!j)
		return true;
	size_t o = push_key(v, key);
	bool ok = false;
	if (!json_is_integer(j))
		verr(v, "must be an integer");
	else if (json_integer_value(j) < 0 || (uint64_t)json_integer_value(j) < lo ||
		 (uint64_t)json_integer_value(j) > hi)
		verr(v, "must be %llu..%llu", (unsigned long long)lo, (unsigned long long)hi);
	else {
		*out = (uint64_t)json_integer_value(j);
		ok = true;
	}
	pop(v, o);
	return ok;
}

static bool get_u32(struct vctx *v, json_t *obj, const char *key, uint32_t lo, uint32_t hi,
		    uint32_t def, uint32_t *out)
{
	uint64_t x;
	bool ok = get_u64(v, obj, key, lo, hi, def, &x);
	*out = (uint32_t)x; /* the default after a problem */
	return ok;
}

/* An optional object / array field: NULL when absent, error when of another type. */
static bool get_obj(struct vctx *v, json_t *obj, const char *key, json_t **out)
{
	json_t *j = json_object_get(obj, key);
	*out = NULL;
	if (!j)
		return true;
	if (!json_is_object(j)) {
		size_t o = push_key(v, key);
		verr(v, "must be an object");
		pop(v, o);
		return false;
	}
	*out = j;
	return true;
}

static bool get_arr(struct vctx *v, json_t *obj, const char *key, size_t max, json_t **out)
{
	json_t *j = json_object_get(obj, key);
	*out = NULL;
	if (!j)
		return true;
	size_t o = push_key(v, key);
	bool ok = false;
	if (!json_is_array(j))
		verr(v, "must be an array");
	else if (json_array_size(j) > max)
		verr(v, "at most %zu entries", max);
	else {
		*out = j;
		ok = true;
	}
	pop(v, o);
	return ok;
}

static bool get_enum(struct vctx *v, json_t *obj, const char *key, const char *const *names,
		     int def, int *out)
{
	const char *s;
	*out = def;
	if (!get_str(v, obj, key, false, 32, &s))
		return false;
	if (!s)
		return true;
	for (int i = 0; names[i]; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = i;
			return true;
		}
	size_t o = push_key(v, key);
	char list[128] = "";
	for (int i = 0; names[i]; i++) {
		strncat(list, i ? ", " : "", sizeof(list) - strlen(list) - 1);
		strncat(list, names[i], sizeof(list) - strlen(list) - 1);
	}
	verr(v, "must be one of %s", list);
	pop(v, o);
	return false;
}

/* ---- addresses -------------------------------------------------------------------------- */

static bool parse_cidr(struct vctx *v, json_t *j, struct gw_cidr *c)
{
	const char *why = NULL;
	if (!json_is_string(j))
		return verr(v, "must be a string (CIDR such as 10.0.0.0/8 or 2001:db8::/32)");
	const char *s = json_string_value(j);
	size_t n = strlen(s);
	if (n > 64)
		return verr(v, "too long for a CIDR");
	if (!memchr(s, '/', n)) {
		/* A single address. */
		if (addr_parse_ip(s, n, &c->family, c->addr) != 0)
			return verr(v, "not an IP address or CIDR: \"%s\"", s);
		c->bits = c->family == AF_INET ? 32 : 128;
		return true;
	}
	if (addr_parse_prefix(s, n, &c->family, c->addr, &c->bits, &why) != 0)
		return verr(v, "not a CIDR (%s): \"%s\"", why ? why : "malformed", s);
	return true;
}

static bool get_cidrs(struct vctx *v, json_t *obj, const char *key, size_t max,
		      struct gw_cidr **out, size_t *n)
{
	json_t *arr;
	*out = NULL;
	*n = 0;
	if (!get_arr(v, obj, key, max, &arr))
		return false;
	if (!arr)
		return true;
	size_t cnt = json_array_size(arr);
	struct gw_cidr *c = v_alloc(v, cnt * sizeof(*c));
	if (!c)
		return false;
	bool ok = true;
	size_t o = push_key(v, key);
	for (size_t i = 0; i < cnt; i++) {
		size_t o2 = push_index(v, i);
		ok &= parse_cidr(v, json_array_get(arr, i), &c[i]);
		pop(v, o2);
	}
	pop(v, o);
	*out = c;
	*n = cnt;
	return ok;
}

bool gw_cidr_match(const struct gw_cidr *c, int family, const uint8_t *addr)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (family == AF_INET6 && c->family == AF_INET && memcmp(addr, mapped, 12) == 0) {
		family = AF_INET;
		addr += 12;
	}
	if (family != c->family)
		return false;
	unsigned full = c->bits / 8, rest = c->bits % 8;
	if (memcmp(addr, c->addr, full) != 0)
		return false;
	if (rest) {
		uint8_t mask = (uint8_t)(0xff << (8 - rest));
		if ((addr[full] & mask) != (c->addr[full] & mask))
			return false;
	}
	return true;
}

/* ---- domains ---------------------------------------------------------------------------- */

/* RFC 1123 host name, lowercase after folding; "*." allowed as the first label when
 * wildcard. Writes the lowercase form into out (size >= 254). */
static bool domain_ok(const char *s, bool wildcard, char *out)
{
	size_t n = strlen(s), label = 0;
	if (n == 0 || n > 253)
		return false;
	size_t i = 0;
	if (wildcard && n > 2 && s[0] == '*' && s[1] == '.') {
		out[0] = '*';
		out[1] = '.';
		i = 2;
	}
	for (; i < n; i++) {
		char c = s[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c + 32);
		out[i] = c;
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
		if (c == '-' && label == 0)
			return false;
		if (++label > 63)
			return false;
	}
	out[n] = '\0';
	return label > 0 && s[n - 1] != '-';
}

bool gw_domain_ok(const char *s, bool wildcard)
{
	char low[256];
	return strlen(s) < sizeof(low) && domain_ok(s, wildcard, low);
}

/* ---- pieces ----------------------------------------------------------------------------- */

static bool parse_rate(struct vctx *v, json_t *obj, const char *key, struct gw_rate *r)
{
	json_t *j;
	r->rate = r->burst = 0;
	if (!get_obj(v, obj, key, &j))
		return false;
	if (!j)
		return true;
	size_t o = push_key(v, key);
	static const char *const keys[] = {"rate", "burst", NULL};
	bool ok = check_keys(v, j, keys);
	ok &= get_u32(v, j, "rate", 1, 1000000, 0, &r->rate);
	ok &= get_u32(v, j, "burst", 1, 1000000, 0, &r->burst);
	if (!json_object_get(j, "rate"))
		ok = verr(v, "rate: required");
	if (ok && r->burst == 0)
		r->burst = r->rate;
	pop(v, o);
	return ok;
}

static bool parse_hc(struct vctx *v, json_t *t, struct gw_health_check *hc, enum gw_proto proto)
{
	json_t *j;
	memset(hc, 0, sizeof(*hc));
	if (!get_obj(v, t, "health_check", &j))
		return false;
	if (!j)
		return true;
	size_t o = push_key(v, "health_check");
	static const char *const keys[] = {"type", "path", "interval_ms", "timeout_ms",
					   "healthy", "unhealthy", "status", NULL};
	static const char *const types[] = {"none", "tcp", "http", NULL};
	int type;
	bool ok = check_keys(v, j, keys);
	ok &= get_enum(v, j, "type", types, GW_HC_TCP, &type);
	ok &= get_str(v, j, "path", false, 1024, &hc->path);
	ok &= get_u32(v, j, "interval_ms", 100, 3600000, 5000, &hc->interval_ms);
	ok &= get_u32(v, j, "timeout_ms", 50, 60000, 0, &hc->timeout_ms);
	ok &= get_u32(v, j, "healthy", 1, 100, 2, &hc->healthy);
	ok &= get_u32(v, j, "unhealthy", 1, 100, 2, &hc->unhealthy);
	hc->type = (enum gw_hc_type)type;
	if (hc->timeout_ms == 0)
		hc->timeout_ms = hc->interval_ms < 2000 ? hc->interval_ms : 2000;
	if (hc->timeout_ms > hc->interval_ms)
		ok = verr(v, "timeout_ms must not exceed interval_ms");
	if (hc->type == GW_HC_HTTP && proto != GW_PROTO_HTTP)
		ok = verr(v, "type http needs an http resource");
	if (hc->path && (hc->path[0] != '/' || strchr(hc->path, ' ')))
		ok = verr(v, "path must start with / and contain no spaces");
	if (hc->path && hc->type != GW_HC_HTTP)
		ok = verr(v, "path is only for type http");
	if (!hc->path)
		hc->path = "/";
	hc->status_min = 200;
	hc->status_max = 399;
	json_t *st = json_object_get(j, "status");
	if (st) {
		size_t o2 = push_key(v, "status");
		if (!json_is_array(st) || json_array_size(st) != 2 ||
		    !json_is_integer(json_array_get(st, 0)) ||
		    !json_is_integer(json_array_get(st, 1))) {
			ok = verr(v, "must be [min, max], e.g. [200, 399]");
		} else {
			json_int_t a = json_integer_value(json_array_get(st, 0));
			json_int_t b = json_integer_value(json_array_get(st, 1));
			if (a < 100 || b > 599 || a > b)
				ok = verr(v, "must be 100 <= min <= max <= 599");
			else {
				hc->status_min = (uint16_t)a;
				hc->status_max = (uint16_t)b;
			}
		}
		pop(v, o2);
		if (hc->type != GW_HC_HTTP)
			ok = verr(v, "status is only for type http");
	}
	pop(v, o);
	return ok;
}

static bool parse_target(struct vctx *v, json_t *j, struct gw_target_conf *t, enum gw_proto proto)
{
	static const char *const keys[] = {"id", "address", "weight", "region", "health_check",
					   NULL};
	if (!json_is_object(j))
		return verr(v, "must be an object");
	bool ok = check_keys(v, j, keys);
	ok &= get_id(v, j, "id", true, &t->id);
	ok &= get_str(v, j, "address", true, 80, &t->address);
	ok &= get_u32(v, j, "weight", 1, 1000, 1, &t->weight);
	ok &= get_str(v, j, "region", false, 64, &t->region);
	ok &= parse_hc(v, j, &t->hc, proto);
	if (!t->address)
		return false;
	struct wg_endpoint ep;
	char zone[ADDR_ZONE_MAX + 1];
	const char *why = NULL;
	size_t o = push_key(v, "address");
	if (addr_parse_endpoint(t->address, strlen(t->address), &ep, zone, &why) != 0 || zone[0]) {
		verr(v, "not IP:PORT or [IPv6]:PORT (%s): \"%s\"", why ? why : "zones not allowed",
		     t->address);
		pop(v, o);
		return false;
	}
	if (ntohs(ep.addr.in4.sin_port) == 0) {
		verr(v, "port 0");
		pop(v, o);
		return false;
	}
	pop(v, o);
	if (ep.addr.sa.sa_family == AF_INET) {
		memcpy(&t->addr, &ep.addr.in4, sizeof(ep.addr.in4));
		t->addr_len = sizeof(struct sockaddr_in);
	} else {
		memcpy(&t->addr, &ep.addr.in6, sizeof(ep.addr.in6));
		t->addr_len = sizeof(struct sockaddr_in6);
	}
	return ok;
}

static bool parse_rule(struct vctx *v, json_t *j, struct gw_rule *r)
{
	static const char *const keys[] = {"path", "methods", "header", "sources", "action", NULL};
	static const char *const actions[] = {"allow", "deny", "auth", NULL};
	if (!json_is_object(j))
		return verr(v, "must be an object");
	const char *path;
	int action = GW_ACT_ALLOW;
	bool ok = check_keys(v, j, keys);
	ok &= get_str(v, j, "path", false, 1024, &path);
	ok &= get_cidrs(v, j, "sources", GW_CONF_MAX_CIDRS, &r->sources, &r->n_sources);
	if (!json_object_get(j, "action")) {
		size_t o = push_key(v, "action");
		ok = verr(v, "required (allow, deny or auth)");
		pop(v, o);
	} else {
		ok &= get_enum(v, j, "action", actions, 0, &action);
	}
	r->action = (enum gw_action)action;
	if (path) {
		size_t n = strlen(path);
		if (path[0] != '/') {
			size_t o = push_key(v, "path");
			ok = verr(v, "must start with /");
			pop(v, o);
		} else if (path[n - 1] == '*') {
			char *p = (char *)vstrdup(v, path);
			if (p) {
				p[n - 1] = '\0';
				r->path_prefix = p;
			}
		} else {
			r->path_exact = path;
		}
	}
	json_t *m;
	ok &= get_arr(v, j, "methods", 16, &m);
	if (m) {
		size_t o = push_key(v, "methods");
		for (size_t i = 0; i < json_array_size(m); i++) {
			json_t *e = json_array_get(m, i);
			size_t o2 = push_index(v, i);
			static const char *const names[] = {"", "GET", "HEAD", "POST", "PUT",
							    "DELETE", "OPTIONS", "TRACE", "PATCH",
							    NULL};
			int id = 0;
			for (int k = 1; names[k] && json_is_string(e); k++)
				if (strcmp(names[k], json_string_value(e)) == 0)
					id = k;
			if (id == 0)
				ok = verr(v, "must be one of GET HEAD POST PUT DELETE OPTIONS TRACE PATCH");
			else
				r->methods |= 1u << id;
			pop(v, o2);
		}
		pop(v, o);
	}
	json_t *h;
	ok &= get_obj(v, j, "header", &h);
	if (h) {
		size_t o = push_key(v, "header");
		static const char *const hkeys[] = {"name", "value", NULL};
		ok &= check_keys(v, h, hkeys);
		ok &= get_str(v, h, "name", true, 128, &r->header_name);
		ok &= get_str(v, h, "value", false, 1024, &r->header_value);
		for (const char *p = r->header_name ? r->header_name : ""; *p; p++)
			if (!strchr("!#$%&'*+-.^_`|~", *p) &&
			    !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			      (*p >= '0' && *p <= '9'))) {
				ok = verr(v, "name: not a field name token");
				break;
			}
		pop(v, o);
	}
	return ok;
}

static bool field_err(struct vctx *v, const char *key, const char *msg)
{
	size_t o = push_key(v, key);
	verr(v, "%s", msg);
	pop(v, o);
	return false;
}

/* An http(s) URL without spaces, quotes or fragment: the issuer. */
static bool url_ok(const char *s)
{
	if (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0)
		return false;
	for (const char *p = s; *p; p++)
		if (*p <= ' ' || *p == '"' || *p == '#' || *p == '<' || *p == '>' || *p == '\\' ||
		    (unsigned char)*p >= 0x7f)
			return false;
	return true;
}

static bool parse_oidc(struct vctx *v, json_t *j, struct gw_oidc_conf *o)
{
	static const char *const keys[] = {"issuer",	    "client_id", "client_secret", "scopes",
					   "redirect_path", "ca_file",	 NULL};
	size_t old = push_key(v, "oidc");
	bool ok = check_keys(v, j, keys);
	ok &= get_str(v, j, "issuer", true, 512, &o->issuer);
	ok &= get_str(v, j, "client_id", true, 256, &o->client_id);
	ok &= get_str(v, j, "client_secret", false, 512, &o->client_secret);
	ok &= get_str(v, j, "scopes", false, 256, &o->scopes);
	ok &= get_str(v, j, "redirect_path", false, 256, &o->redirect_path);
	ok &= get_str(v, j, "ca_file", false, 1024, &o->ca_file);
	if (o->issuer && !url_ok(o->issuer))
		ok = field_err(v, "issuer", "must be an http(s) URL without spaces or quotes");
	if (o->redirect_path &&
	    (o->redirect_path[0] != '/' || strpbrk(o->redirect_path, "?# %\\")))
		ok = field_err(v, "redirect_path", "a path starting with / without query or escapes");
	for (const char *p = o->scopes ? o->scopes : ""; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr(" _-.:/", *p))) {
			ok = field_err(v, "scopes", "letters, digits and _-.:/ separated by spaces");
			break;
		}
	for (const char *p = o->client_id ? o->client_id : ""; *p; p++)
		if (*p == '&' || *p == '=' || *p == '%' || *p == '+' || *p == ' ') {
			ok = field_err(v, "client_id", "no &=%+ or spaces");
			break;
		}
	if (!o->scopes)
		o->scopes = "openid email";
	if (!o->redirect_path)
		o->redirect_path = "/.sg/oidc/callback";
	pop(v, old);
	return ok;
}

static int hexnib(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* A problem at path key (relative to the current path). */
static bool key_err(struct vctx *v, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool key_err(struct vctx *v, const char *key, const char *fmt, ...)
{
	char msg[GW_CONF_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return field_err(v, key, msg);
}

static bool parse_domains(struct vctx *v, json_t *doms, struct gw_resource_conf *r)
{
	bool ok = true;
	r->n_domains = json_array_size(doms);
	r->domains = v_alloc(v, r->n_domains * sizeof(char *));
	if (!r->domains) {
		r->n_domains = 0;
		return false;
	}
	size_t o = push_key(v, "domains");
	for (size_t i = 0; i < r->n_domains; i++) {
		json_t *d = json_array_get(doms, i);
		char low[256];
		size_t o2 = push_index(v, i);
		if (!json_is_string(d) || !domain_ok(json_string_value(d), true, low))
			ok = verr(v, "not a host name (RFC 1123, optionally *.name)");
		else if (!(r->domains[i] = vstrdup(v, low)))
			ok = false;
		pop(v, o2);
	}
	pop(v, o);
	return ok;
}

static bool parse_api_keys(struct vctx *v, json_t *keysj, struct gw_resource_conf *r)
{
	bool ok = true;
	r->n_api_keys = json_array_size(keysj);
	r->api_keys = v_alloc(v, r->n_api_keys * 48 + 1);
	if (!r->api_keys) {
		r->n_api_keys = 0;
		return false;
	}
	size_t o = push_key(v, "api_keys");
	for (size_t i = 0; i < r->n_api_keys; i++) {
		json_t *k = json_array_get(keysj, i);
		size_t o2 = push_index(v, i);
		const char *s = json_is_string(k) ? json_string_value(k) : "";
		if (strlen(s) != 96) {
			ok = verr(v, "must be the SHA-384 of the key in lowercase hex (96 "
				     "characters; sha384sum prints it)");
		} else {
			for (size_t b = 0; b < 48; b++) {
				int hi = hexnib(s[2 * b]), lo = hexnib(s[2 * b + 1]);
				if (hi < 0 || lo < 0) {
					ok = verr(v, "not lowercase hexadecimal");
					break;
				}
				r->api_keys[i][b] = (uint8_t)(hi << 4 | lo);
			}
		}
		pop(v, o2);
	}
	pop(v, o);
	return ok;
}

static bool parse_rules(struct vctx *v, json_t *rules, struct gw_resource_conf *r)
{
	bool ok = true;
	r->n_rules = json_array_size(rules);
	r->rules = v_alloc(v, r->n_rules * sizeof(*r->rules));
	if (!r->rules) {
		r->n_rules = 0;
		return false;
	}
	size_t o = push_key(v, "rules");
	for (size_t i = 0; i < r->n_rules; i++) {
		size_t o2 = push_index(v, i);
		ok &= parse_rule(v, json_array_get(rules, i), &r->rules[i]);
		if (r->rules[i].action == GW_ACT_AUTH && r->n_api_keys == 0 &&
		    r->auth != GW_AUTH_LOGIN)
			ok = verr(v, "action auth needs api_keys or auth login on the resource");
		pop(v, o2);
	}
	pop(v, o);
	return ok;
}

static bool parse_targets(struct vctx *v, json_t *tg, struct gw_resource_conf *r,
			  const struct gw_conf *c)
{
	bool ok = true;
	r->n_targets = json_array_size(tg);
	r->targets = v_alloc(v, r->n_targets * sizeof(*r->targets));
	if (!r->targets) {
		r->n_targets = 0;
		return false;
	}
	const struct gw_site_conf *site = NULL;
	if (r->site) {
		for (size_t i = 0; i < c->n_sites; i++)
			if (c->sites[i].id && strcmp(c->sites[i].id, r->site) == 0)
				site = &c->sites[i];
		if (!site)
			ok = key_err(v, "site", "no site with id \"%s\"", r->site);
	}
	size_t o = push_key(v, "targets");
	for (size_t i = 0; i < r->n_targets; i++) {
		size_t o2 = push_index(v, i);
		struct gw_target_conf *t = &r->targets[i];
		ok &= parse_target(v, json_array_get(tg, i), t, r->proto);
		for (size_t k = 0; k < i && t->id; k++)
			if (r->targets[k].id && strcmp(r->targets[k].id, t->id) == 0) {
				ok = verr(v, "id \"%s\" used twice in this resource", t->id);
				break;
			}
		if (site && t->addr_len) {
			int fam = t->addr.ss_family;
			const uint8_t *ad =
			    fam == AF_INET
				? (const uint8_t *)&((struct sockaddr_in *)&t->addr)->sin_addr
				: (const uint8_t *)&((struct sockaddr_in6 *)&t->addr)->sin6_addr;
			bool in = false;
			for (size_t k = 0; k < site->n_networks && !in; k++)
				in = gw_cidr_match(&site->networks[k], fam, ad);
			if (!in)
				ok = verr(v, "address %s is outside site \"%s\"'s networks",
					  t->address, site->id);
		}
		pop(v, o2);
	}
	pop(v, o);
	return ok;
}

static bool parse_resource(struct vctx *v, json_t *j, struct gw_resource_conf *r,
			   const struct gw_conf *c)
{
	static const char *const keys[] = {
	    "id",	   "name",	   "site",	 "protocol",   "domains", "port",
	    "auth",	   "api_keys",	   "lb",	 "sticky_cookie", "rate_limit", "max_body",
	    "allow",	   "deny",	   "rules",	 "tls",	       "max_conns", "idle_timeout_ms",
	    "connect_timeout_ms", "response_timeout_ms", "retries", "eject_ms", "eject_after",
	    "targets",	   "oidc",	   NULL};
	static const char *const protos[] = {"http", "tcp", "udp", NULL};
	static const char *const auths[] = {"public", "api_key", "login", NULL};
	static const char *const lbs[] = {"round_robin", "weighted", "least_conn", "region", NULL};
	int proto, auth, lb;
	if (!json_is_object(j))
		return verr(v, "must be an object");
	bool ok = check_keys(v, j, keys);
	ok &= get_id(v, j, "id", true, &r->id);
	ok &= get_str(v, j, "name", false, 128, &r->name);
	ok &= get_id(v, j, "site", false, &r->site);
	/* What depends on the protocol is checked only when the protocol is known. */
	bool proto_ok = get_enum(v, j, "protocol", protos, GW_PROTO_HTTP, &proto);
	ok &= proto_ok;
	r->proto = (enum gw_proto)proto;
	if (!r->name)
		r->name = r->id;
	bool auth_ok = get_enum(v, j, "auth", auths, GW_AUTH_PUBLIC, &auth);
	ok &= auth_ok;
	ok &= get_enum(v, j, "lb", lbs, GW_LB_ROUND_ROBIN, &lb);
	r->auth = (enum gw_auth)auth;
	r->lb = (enum gw_lb)lb;

	json_t *doms;
	uint32_t port;
	ok &= get_arr(v, j, "domains", GW_CONF_MAX_DOMAINS, &doms);
	ok &= get_u32(v, j, "port", 1, 65535, 0, &port);
	r->port = (uint16_t)port;
	if (proto_ok && r->proto == GW_PROTO_HTTP) {
		if (!doms || json_array_size(doms) == 0)
			ok = field_err(v, "domains", "an http resource needs at least one domain");
		else
			ok &= parse_domains(v, doms, r);
		if (port)
			ok = field_err(v, "port", "only for tcp and udp resources (http is served "
						  "on --http/--https)");
	} else if (proto_ok) {
		if (doms)
			ok = field_err(v, "domains", "only for http resources");
		if (!port && !json_object_get(j, "port"))
			ok = key_err(v, "port", "required for a %s resource", protos[proto]);
	}

	json_t *keysj;
	ok &= get_arr(v, j, "api_keys", GW_CONF_MAX_KEYS, &keysj);
	if (keysj)
		ok &= parse_api_keys(v, keysj, r);
	json_t *oj;
	ok &= get_obj(v, j, "oidc", &oj);
	if (auth_ok && (r->auth == GW_AUTH_LOGIN) != (oj != NULL))
		ok = field_err(v, oj ? "oidc" : "auth",
			       oj ? "only with auth login" : "login needs an oidc object (issuer, "
							    "client_id)");
	if (oj)
		ok &= parse_oidc(v, oj, &r->oidc);
	if (auth_ok && r->auth == GW_AUTH_API_KEY && json_array_size(keysj) == 0)
		ok = field_err(v, "api_keys", "auth api_key needs at least one key");
	if (proto_ok && auth_ok && r->proto != GW_PROTO_HTTP && r->auth != GW_AUTH_PUBLIC)
		ok = key_err(v, "auth",
			     "a %s resource has no requests to authenticate: use public with "
			     "allow/deny",
			     protos[proto]);

	ok &= get_str(v, j, "sticky_cookie", false, 64, &r->sticky_cookie);
	if (r->sticky_cookie) {
		for (const char *p = r->sticky_cookie; *p; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			      (*p >= '0' && *p <= '9') || *p == '_' || *p == '-')) {
				ok = field_err(v, "sticky_cookie", "cookie name must be [A-Za-z0-9_-]");
				break;
			}
		if (proto_ok && r->proto != GW_PROTO_HTTP)
			ok = field_err(v, "sticky_cookie", "only for http resources");
	}

	json_t *rl;
	ok &= get_obj(v, j, "rate_limit", &rl);
	if (rl) {
		size_t o = push_key(v, "rate_limit");
		static const char *const rk[] = {"per_source", "per_resource", NULL};
		ok &= check_keys(v, rl, rk);
		ok &= parse_rate(v, rl, "per_source", &r->rate_source);
		ok &= parse_rate(v, rl, "per_resource", &r->rate_resource);
		pop(v, o);
	}
	ok &= get_u64(v, j, "max_body", 0, 1ull << 40, c->limits.max_body, &r->max_body);
	ok &= get_cidrs(v, j, "allow", GW_CONF_MAX_CIDRS, &r->allow, &r->n_allow);
	ok &= get_cidrs(v, j, "deny", GW_CONF_MAX_CIDRS, &r->deny, &r->n_deny);

	json_t *rules;
	ok &= get_arr(v, j, "rules", GW_CONF_MAX_RULES, &rules);
	if (rules && proto_ok && r->proto != GW_PROTO_HTTP)
		ok = key_err(v, "rules", "only for http resources (use allow/deny for %s)",
			     protos[proto]);
	else if (rules)
		ok &= parse_rules(v, rules, r);

	json_t *tls;
	ok &= get_obj(v, j, "tls", &tls);
	if (tls) {
		size_t o = push_key(v, "tls");
		static const char *const tk[] = {"cert", "key", NULL};
		ok &= check_keys(v, tls, tk);
		ok &= get_str(v, tls, "cert", true, 1024, &r->tls_cert);
		ok &= get_str(v, tls, "key", true, 1024, &r->tls_key);
		if (proto_ok && r->proto != GW_PROTO_HTTP)
			ok = verr(v, "only for http resources");
		pop(v, o);
	}

	ok &= get_u32(v, j, "max_conns", 1, 1000000, 1024, &r->max_conns);
	ok &= get_u32(v, j, "idle_timeout_ms", 100, 86400000,
		      r->proto == GW_PROTO_UDP ? 30000 : 300000, &r->idle_timeout_ms);
	ok &= get_u32(v, j, "connect_timeout_ms", 50, 60000, 3000, &r->connect_timeout_ms);
	ok &= get_u32(v, j, "response_timeout_ms", 100, 3600000, 60000, &r->response_timeout_ms);
	ok &= get_u32(v, j, "retries", 0, 16, 2, &r->retries);
	ok &= get_u32(v, j, "eject_ms", 100, 3600000, 10000, &r->eject_ms);
	ok &= get_u32(v, j, "eject_after", 1, 1000, 3, &r->eject_after);

	json_t *tg;
	ok &= get_arr(v, j, "targets", GW_CONF_MAX_TARGETS, &tg);
	if (!tg || json_array_size(tg) == 0) {
		if (!tg && json_object_get(j, "targets"))
			return false; /* not an array: said already */
		return field_err(v, "targets", "at least one target");
	}
	ok &= parse_targets(v, tg, r, c);
	return ok;
}

static bool parse_limits(struct vctx *v, json_t *root, struct gw_limits *l)
{
	json_t *j;
	if (!get_obj(v, root, "limits", &j))
		return false;
	json_t *empty = NULL;
	if (!j)
		j = empty = json_object();
	if (!j)
		return verr(v, "out of memory");
	size_t o = push_key(v, "limits");
	static const char *const keys[] = {"max_conns",	      "max_conns_per_source",
					   "header_timeout_ms", "idle_timeout_ms",
					   "body_timeout_ms",   "max_head",
					   "max_target",	      "max_headers",
					   "max_body",	      NULL};
	bool ok = check_keys(v, j, keys);
	ok &= get_u32(v, j, "max_conns", 1, 1000000, 20000, &l->max_conns);
	ok &= get_u32(v, j, "max_conns_per_source", 1, 1000000, 512, &l->max_conns_per_source);
	ok &= get_u32(v, j, "header_timeout_ms", 100, 600000, 10000, &l->header_timeout_ms);
	ok &= get_u32(v, j, "idle_timeout_ms", 100, 3600000, 60000, &l->idle_timeout_ms);
	ok &= get_u32(v, j, "body_timeout_ms", 100, 3600000, 30000, &l->body_timeout_ms);
	ok &= get_u32(v, j, "max_head", 1024, 65536, 16384, &l->max_head);
	ok &= get_u32(v, j, "max_target", 64, 65536, 8192, &l->max_target);
	ok &= get_u32(v, j, "max_headers", 8, SG_HTTP_MAX_HEADERS, 100, &l->max_headers);
	ok &= get_u64(v, j, "max_body", 0, 1ull << 40, 64ull << 20, &l->max_body);
	if (l->max_target > l->max_head)
		ok = verr(v, "max_target must not exceed max_head");
	pop(v, o);
	json_decref(empty);
	return ok;
}

static bool parse_sites(struct vctx *v, json_t *sites, struct gw_conf *c)
{
	bool ok = true;
	c->n_sites = json_array_size(sites);
	c->sites = v_alloc(v, c->n_sites * sizeof(*c->sites));
	if (!c->sites) {
		c->n_sites = 0;
		return false;
	}
	size_t o = push_key(v, "sites");
	for (size_t i = 0; i < c->n_sites; i++) {
		json_t *s = json_array_get(sites, i);
		struct gw_site_conf *st = &c->sites[i];
		static const char *const sk[] = {"id", "name", "networks", NULL};
		size_t o2 = push_index(v, i);
		if (!json_is_object(s)) {
			ok = verr(v, "must be an object");
			pop(v, o2);
			continue;
		}
		ok &= check_keys(v, s, sk);
		ok &= get_id(v, s, "id", true, &st->id);
		ok &= get_str(v, s, "name", false, 128, &st->name);
		bool nets = get_cidrs(v, s, "networks", GW_CONF_MAX_NETWORKS, &st->networks,
				      &st->n_networks);
		ok &= nets;
		if (nets && st->n_networks == 0)
			ok = verr(v, "networks: at least one CIDR (the tunnel addresses the site's "
				     "targets use)");
		for (size_t k = 0; k < i && st->id; k++)
			if (c->sites[k].id && strcmp(c->sites[k].id, st->id) == 0) {
				ok = verr(v, "id \"%s\" used twice", st->id);
				break;
			}
		pop(v, o2);
	}
	pop(v, o);
	return ok;
}

/* Conflicts of resource i with those before it: ids, ports, domains. */
static bool resource_conflicts(struct vctx *v, const struct gw_conf *c, size_t i)
{
	const struct gw_resource_conf *r = &c->resources[i];
	bool ok = true;
	for (size_t k = 0; k < i; k++) {
		const struct gw_resource_conf *q = &c->resources[k];
		if (r->id && q->id && strcmp(q->id, r->id) == 0)
			ok = verr(v, "id \"%s\" used twice", r->id);
		if (r->proto != GW_PROTO_HTTP && r->port && q->proto == r->proto &&
		    q->port == r->port)
			ok = verr(v, "%s port %u already used by resource \"%s\"",
				  gw_proto_name(r->proto), r->port, q->id ? q->id : "?");
		for (size_t a = 0; a < r->n_domains; a++)
			for (size_t b = 0; b < q->n_domains; b++)
				if (r->domains[a] && q->domains[b] &&
				    strcmp(r->domains[a], q->domains[b]) == 0)
					ok = verr(v, "domain %s already served by resource \"%s\"",
						  r->domains[a], q->id ? q->id : "?");
	}
	for (size_t a = 0; a < r->n_domains; a++)
		for (size_t b = 0; b < a; b++)
			if (r->domains[a] && r->domains[b] && strcmp(r->domains[a], r->domains[b]) == 0)
				ok = verr(v, "domain %s listed twice", r->domains[a]);
	return ok;
}

static bool parse_root(struct vctx *v, json_t *root, struct gw_conf *c)
{
	static const char *const keys[] = {"serial", "id", "name", "region", "limits", "sites",
					   "resources", NULL};
	if (!json_is_object(root))
		return verr(v, "the document must be a JSON object");
	bool ok = check_keys(v, root, keys);
	ok &= get_u64(v, root, "serial", 0, (1ull << 53), 0, &c->serial);
	ok &= get_id(v, root, "id", false, &c->id);
	ok &= get_str(v, root, "name", false, 128, &c->name);
	ok &= get_str(v, root, "region", false, 64, &c->region);
	ok &= parse_limits(v, root, &c->limits);

	json_t *sites;
	ok &= get_arr(v, root, "sites", GW_CONF_MAX_SITES, &sites);
	if (sites)
		ok &= parse_sites(v, sites, c);

	json_t *res;
	if (!get_arr(v, root, "resources", GW_CONF_MAX_RESOURCES, &res))
		return false;
	if (!res)
		return field_err(v, "resources", "required (may be empty)");
	c->n_resources = json_array_size(res);
	c->resources = v_alloc(v, c->n_resources * sizeof(*c->resources));
	if (!c->resources && c->n_resources) {
		c->n_resources = 0;
		return false;
	}
	size_t o = push_key(v, "resources");
	for (size_t i = 0; i < c->n_resources && !v->oom; i++) {
		size_t o2 = push_index(v, i);
		ok &= parse_resource(v, json_array_get(res, i), &c->resources[i], c);
		ok &= resource_conflicts(v, c, i);
		pop(v, o2);
	}
	pop(v, o);
	return ok && !v->oom;
}

const char *gw_proto_name(enum gw_proto p)
{
	switch (p) {
	case GW_PROTO_HTTP:
		return "http";
	case GW_PROTO_TCP:
		return "tcp";
	case GW_PROTO_UDP:
		return "udp";
	}
	return "?";
}

/* Validates json into a model (out may be NULL: check only). Problems go to err (the first)
 * and to cb (each). 0, or SG_EPARSE / SG_EINVAL / SG_ENOMEM; *nerr gets the count. */
static int conf_parse(const char *json, size_t len, struct gw_conf **out, char *err,
		      size_t errlen, gw_conf_problem_fn cb, void *cb_ctx, unsigned *nerr)
{
	if (out)
		*out = NULL;
	*nerr = 0;
	if (errlen)
		err[0] = '\0';
	if (len > GW_CONF_MAX_BYTES) {
		snprintf(err, errlen, "document larger than %u bytes", GW_CONF_MAX_BYTES);
		if (cb)
			cb(cb_ctx, "", err);
		*nerr = 1;
		return SG_EINVAL;
	}
	json_error_t jerr;
	/* JSON_REJECT_DUPLICATES: two "targets" keys must not silently pick one. */
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(err, errlen, "line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
		if (cb)
			cb(cb_ctx, "", err);
		*nerr = 1;
		return SG_EPARSE;
	}
	struct gw_arena *arena = NULL;
	struct vctx v = {.arena = &arena, .err = err, .errlen = errlen, .cb = cb, .cb_ctx = cb_ctx};
	struct gw_conf *c = v_alloc(&v, sizeof(*c));
	int rc = SG_ENOMEM;
	if (!c)
		goto fail;
	c->arena = NULL;
	if (!parse_root(&v, root, c) || v.nerr) {
		rc = v.oom ? SG_ENOMEM : SG_EINVAL;
		goto fail;
	}
	if (!out) {
		rc = 0;
		goto fail; /* checked only: nothing to keep */
	}
	c->json = malloc(len + 1);
	if (!c->json)
		goto fail;
	memcpy(c->json, json, len);
	c->json[len] = '\0';
	c->json_len = len;
	c->arena = arena;
	json_decref(root);
	*out = c;
	return 0;
fail:
	*nerr = v.nerr;
	if (rc == SG_ENOMEM && errlen && !err[0])
		snprintf(err, errlen, "out of memory");
	json_decref(root);
	arena_free(arena);
	return rc;
}

int gw_conf_parse(const char *json, size_t len, struct gw_conf **out, char *err, size_t errlen)
{
	unsigned n;
	return conf_parse(json, len, out, err, errlen, NULL, NULL, &n);
}

int gw_conf_check(const char *json, size_t len, gw_conf_problem_fn cb, void *ctx)
{
	char err[GW_CONF_ERR_MAX];
	unsigned n;
	int rc = conf_parse(json, len, NULL, err, sizeof(err), cb, ctx, &n);
	if (rc == SG_ENOMEM)
		return rc;
	return rc ? (int)(n ? n : 1) : 0;
}

void gw_conf_free(struct gw_conf *c)
{
	if (!c)
		return;
	free(c->json);
	arena_free(c->arena); /* c itself lives in the arena */
}

int gw_conf_load_file(const char *path, struct gw_conf **out, char *err, size_t errlen)
{
	*out = NULL;
	FILE *f = fopen(path, "rb");
	if (!f) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return e == ENOENT ? SG_ENOENT : SG_EIO;
	}
	char *buf = malloc(GW_CONF_MAX_BYTES + 1);
	if (!buf) {
		fclose(f);
		snprintf(err, errlen, "out of memory");
		return SG_ENOMEM;
	}
	size_t n = fread(buf, 1, GW_CONF_MAX_BYTES + 1, f);
	bool bad = ferror(f);
	fclose(f);
	if (bad) {
		free(buf);
		snprintf(err, errlen, "%s: read error", path);
		return SG_EIO;
	}
	if (n > GW_CONF_MAX_BYTES) {
		free(buf);
		snprintf(err, errlen, "%s: larger than %u bytes", path, GW_CONF_MAX_BYTES);
		return SG_EINVAL;
	}
	char inner[GW_CONF_ERR_MAX];
	int rc = gw_conf_parse(buf, n, out, inner, sizeof(inner));
	free(buf);
	if (rc != 0)
		snprintf(err, errlen, "%s: %s", path, inner);
	return rc;
}

int gw_conf_save(const struct gw_conf *c, const char *dir, char *err, size_t errlen)
{
	char dst[4096];
	if (snprintf(dst, sizeof(dst), "%s/config.json", dir) >= (int)sizeof(dst)) {
		snprintf(err, errlen, "%s: path too long", dir);
		return -ENAMETOOLONG;
	}
	/* 0600 in any case (it names addresses). */
	int e = sg_file_replace(dst, c->json, c->json_len, 0600);
	if (e) {
		snprintf(err, errlen, "%s: %s (the previous file is unchanged)", dst, strerror(e));
		return -e;
	}
	return 0;
}

const struct gw_resource_conf *gw_conf_find_host(const struct gw_conf *c, const char *host,
						 size_t len)
{
	char h[256];
	/* Strip a port: "name:8080"; an IPv6 literal "[...]" never matches a domain. */
	if (len && host[0] == '[')
		return NULL;
	const char *colon = memchr(host, ':', len);
	if (colon)
		len = (size_t)(colon - host);
	if (len && host[len - 1] == '.') /* absolute form "example.com." */
		len--;
	if (len == 0 || len >= sizeof(h))
		return NULL;
	for (size_t i = 0; i < len; i++)
		h[i] = (host[i] >= 'A' && host[i] <= 'Z') ? (char)(host[i] + 32) : host[i];
	h[len] = '\0';
	const char *dot = strchr(h, '.');
	for (size_t i = 0; i < c->n_resources; i++) {
		const struct gw_resource_conf *r = &c->resources[i];
		for (size_t d = 0; d < r->n_domains; d++)
			if (strcmp(r->domains[d], h) == 0)
				return r;
	}
	if (!dot)
		return NULL;
	for (size_t i = 0; i < c->n_resources; i++) {
		const struct gw_resource_conf *r = &c->resources[i];
		for (size_t d = 0; d < r->n_domains; d++)
			if (r->domains[d][0] == '*' && strcmp(r->domains[d] + 1, dot) == 0)
				return r;
	}
	return NULL;
}
