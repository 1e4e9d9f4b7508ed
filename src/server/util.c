/* Small helpers of the management server: input validation, addresses, encodings, ids, rows to
 * JSON, audit rows for a request, and the transaction retry loop. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/b64.h"
#include "crypto/crypto.h"
#include "secureguard/sg_errors.h"
#include "server/api.h"
#include "server/audit.h"
#include "server/srv_int.h"

/* ---- validation -------------------------------------------------------------------------- */

static const char *type_name(enum field_type t)
{
	switch (t) {
	case F_STR:
		return "a string";
	case F_INT:
		return "an integer";
	case F_BOOL:
		return "a boolean";
	case F_STRLIST:
		return "an array of strings";
	}
	return "?";
}

static bool type_ok(json_t *v, enum field_type t)
{
	size_t i;
	json_t *e;

	switch (t) {
	case F_STR:
		return json_is_string(v);
	case F_INT:
		return json_is_integer(v);
	case F_BOOL:
		return json_is_boolean(v);
	case F_STRLIST:
		if (!json_is_array(v) || json_array_size(v) > 256)
			return false;
		json_array_foreach(v, i, e)
		{
			if (!json_is_string(e))
				return false;
		}
		return true;
	}
	return false;
}

bool srv_check_fields(struct srv_req *r, struct srv_resp *out, const struct field_spec *spec,
		      size_t n)
{
	const char *key;
	json_t *v;
	size_t i;

	if (!json_is_object(r->json)) {
		srv_error(out, 400, NULL, "the body must be a JSON object");
		return false;
	}
	json_object_foreach(r->json, key, v)
	{
		for (i = 0; i < n; i++) {
			if (!strcmp(spec[i].name, key))
				break;
		}
		if (i == n) {
			srv_error(out, 400, key, "unknown field");
			return false;
		}
		if (json_is_null(v) && spec[i].nullable)
			continue;
		if (!type_ok(v, spec[i].type)) {
			srv_error(out, 400, key, "must be %s", type_name(spec[i].type));
			return false;
		}
	}
	for (i = 0; i < n; i++) {
		if (spec[i].required && !json_object_get(r->json, spec[i].name)) {
			srv_error(out, 400, spec[i].name, "required");
			return false;
		}
	}
	return true;
}

bool srv_json_prescan(const char *b, size_t n, char *why, size_t whylen)
{
	size_t depth = 0, items = 0, line = 1;
	bool in_str = false, esc = false;

	/* jansson allows 2048 levels and any number of values; a small body of "[{},{},...]"
	 * would cost about eighty times its size. Only structure outside strings counts. */
	for (size_t i = 0; i < n; i++) {
		char ch = b[i];

		if (ch == '\n')
			line++;
		if (in_str) {
			if (esc)
				esc = false;
			else if (ch == '\\')
				esc = true;
			else if (ch == '"')
				in_str = false;
			continue;
		}
		switch (ch) {
		case '"':
			in_str = true;
			break;
		case '{':
		case '[':
			if (++depth > SRV_JSON_MAX_DEPTH) {
				snprintf(why, whylen, "nested deeper than %d levels (line %zu)",
					 SRV_JSON_MAX_DEPTH, line);
				return false;
			}
			if (++items > SRV_JSON_MAX_ITEMS) {
				snprintf(why, whylen, "more than %d values (line %zu)",
					 SRV_JSON_MAX_ITEMS, line);
				return false;
			}
			break;
		case ',':
			if (++items > SRV_JSON_MAX_ITEMS) {
				snprintf(why, whylen, "more than %d values (line %zu)",
					 SRV_JSON_MAX_ITEMS, line);
				return false;
			}
			break;
		case '}':
		case ']':
			if (depth)
				depth--;
			break;
		default:
			break;
		}
	}
	return true;
}

bool srv_valid_text(const char *s, size_t max, bool allow_empty)
{
	size_t n = strlen(s);

	if (n > max || (!n && !allow_empty))
		return false;
	/* Control characters would break the config file comments and the CSV export. */
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return false;
	}
	return true;
}

static bool parse_i64(const char *s, int64_t *v)
{
	char *end;
	long long x;

	if (!*s || strlen(s) > 20)
		return false;
	errno = 0;
	x = strtoll(s, &end, 10);
	if (errno || *end || (s[0] != '-' && (s[0] < '0' || s[0] > '9')))
		return false;
	*v = x;
	return true;
}

bool srv_query_int(struct srv_req *r, struct srv_resp *out, const char *name, int64_t lo,
		   int64_t hi, int64_t *val, int64_t dflt)
{
	const char *s = srv_query(r, name);

	*val = dflt;
	if (!s)
		return true;
	if (!parse_i64(s, val) || *val < lo || *val > hi) {
		srv_error(out, 400, name, "must be an integer from %lld to %lld", (long long)lo,
			  (long long)hi);
		return false;
	}
	return true;
}

bool srv_query_bool(struct srv_req *r, struct srv_resp *out, const char *name, int *val)
{
	const char *s = srv_query(r, name);

	*val = -1;
	if (!s)
		return true;
	if (!strcmp(s, "true") || !strcmp(s, "1"))
		*val = 1;
	else if (!strcmp(s, "false") || !strcmp(s, "0"))
		*val = 0;
	else {
		srv_error(out, 400, name, "must be true or false");
		return false;
	}
	return true;
}

/* ---- addresses --------------------------------------------------------------------------- */

int srv_addr_parse(int *family, uint8_t addr[16], const char *s)
{
	memset(addr, 0, 16);
	if (strlen(s) >= 64)
		return SG_EPARSE;
	if (inet_pton(AF_INET, s, addr) == 1) {
		*family = 4;
		return 0;
	}
	if (inet_pton(AF_INET6, s, addr) == 1) {
		*family = 6;
		return 0;
	}
	return SG_EPARSE;
}

void srv_addr_format(char out[64], int family, const uint8_t addr[16])
{
	if (!inet_ntop(family == 4 ? AF_INET : AF_INET6, addr, out, 64))
		out[0] = 0;
}

int srv_prefix_parse(struct srv_prefix *p, const char *s, bool host_bits_ok, const char **why)
{
	char buf[64];
	const char *slash = strchr(s, '/');
	int64_t len;
	int bits;

	memset(p, 0, sizeof(*p));
	if (!slash || (size_t)(slash - s) >= sizeof(buf)) {
		*why = "must be ADDRESS/LENGTH";
		return SG_EPARSE;
	}
	memcpy(buf, s, (size_t)(slash - s));
	buf[slash - s] = 0;
	if (srv_addr_parse(&p->family, p->addr, buf)) {
		*why = "bad address";
		return SG_EPARSE;
	}
	bits = p->family == 4 ? 32 : 128;
	if (!parse_i64(slash + 1, &len) || len < 0 || len > bits || slash[1] == '-') {
		*why = "bad prefix length";
		return SG_EPARSE;
	}
	p->len = (int)len;
	for (int i = p->len; i < bits; i++) {
		if (p->addr[i / 8] & (0x80 >> (i % 8))) {
			if (!host_bits_ok) {
				*why = "host bits set (not a network address)";
				return SG_EPARSE;
			}
			p->addr[i / 8] &= (uint8_t) ~(0x80 >> (i % 8));
		}
	}
	return 0;
}

void srv_prefix_format(char out[64], const struct srv_prefix *p)
{
	char a[64];
	size_t n;

	srv_addr_format(a, p->family, p->addr);
	n = strlen(a);
	snprintf(a + n, sizeof(a) - n, "/%d", p->len);
	memcpy(out, a, 64);
}

char *srv_prefix_list(json_t *arr, bool addresses_only, const char **why)
{
	size_t i, cap, n = 0;
	json_t *e;
	char *list;

	cap = json_array_size(arr) * 64 + 1;
	list = calloc(1, cap);
	if (!list) {
		*why = "out of memory";
		return NULL;
	}
	json_array_foreach(arr, i, e)
	{
		char one[64];
		const char *s = json_string_value(e);

		if (addresses_only) {
			int fam;
			uint8_t a[16];

			if (srv_addr_parse(&fam, a, s)) {
				*why = "not an IP address";
				goto fail;
			}
			srv_addr_format(one, fam, a);
		} else {
			struct srv_prefix p;

			if (srv_prefix_parse(&p, s, false, why))
				goto fail;
			srv_prefix_format(one, &p);
		}
		n += (size_t)snprintf(list + n, cap - n, "%s%s", n ? "," : "", one);
	}
	return list;
fail:
	free(list);
	return NULL;
}

bool srv_valid_endpoint(const char *s)
{
	const char *colon, *host_end;
	int64_t port;
	size_t hl;

	if (strlen(s) > 255)
		return false;
	if (s[0] == '[') {
		char a[64];
		uint8_t b[16];
		int fam;

		host_end = strchr(s, ']');
		if (!host_end || host_end[1] != ':' || (size_t)(host_end - s - 1) >= sizeof(a))
			return false;
		memcpy(a, s + 1, (size_t)(host_end - s - 1));
		a[host_end - s - 1] = 0;
		if (srv_addr_parse(&fam, b, a) || fam != 6)
			return false;
		colon = host_end + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || colon == s)
			return false;
		hl = (size_t)(colon - s);
		for (size_t i = 0; i < hl; i++) {
			char ch = s[i];

			if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			      (ch >= '0' && ch <= '9') || ch == '.' || ch == '-'))
				return false;
		}
	}
	return parse_i64(colon + 1, &port) && port >= 1 && port <= 65535 && colon[1] != '-' &&
	       colon[1] != '0';
}

/* Offsets of host addresses from the network address are compared as 64-bit numbers: the
 * allocator hands out at most 2^32 addresses of any prefix. */
static uint64_t low64(const uint8_t a[16], int nbytes)
{
	uint64_t v = 0;

	for (int i = nbytes > 8 ? nbytes - 8 : 0; i < nbytes; i++)
		v = (v << 8) | a[i];
	return v;
}

static int offset_of(const struct srv_prefix *p, const char *addr, uint64_t *off)
{
	uint8_t a[16];
	int fam, nbytes = p->family == 4 ? 4 : 16;

	if (srv_addr_parse(&fam, a, addr) || fam != p->family)
		return -1;
	/* Outside the prefix, or beyond the low 64 bits the allocator uses: never a candidate. */
	for (int i = 0; i < 8 * nbytes - 64; i++) {
		if ((a[i / 8] ^ p->addr[i / 8]) & (0x80 >> (i % 8)))
			return -1;
	}
	for (int i = 0; i < p->len; i++) {
		if ((a[i / 8] ^ p->addr[i / 8]) & (0x80 >> (i % 8)))
			return -1;
	}
	*off = low64(a, nbytes) - low64(p->addr, nbytes);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int srv_alloc_addr(char out[64], const struct srv_prefix *p, char **used, int n)
{
	int bits = p->family == 4 ? 32 : 128, host = bits - p->len;
	uint64_t *offs, last, cand = 1, base = 0;
	int m = 0, nbytes = p->family == 4 ? 4 : 16;
	uint8_t a[16];

	if (host < 2)
		return SG_EFULL;
	/* IPv4: network and broadcast addresses excluded; IPv6: the subnet-router anycast
	 * address (offset 0) excluded (RFC 4291 section 2.6.1). */
	last = host >= 33 ? 0xffffffffu : ((uint64_t)1 << host) - (p->family == 4 ? 2 : 1);
	offs = calloc((size_t)n + 1, sizeof(*offs));
	if (!offs)
		return SG_ENOMEM;
	for (int i = 0; i < n; i++) {
		if (used[i] && !offset_of(p, used[i], &offs[m]))
			m++;
	}
	qsort(offs, (size_t)m, sizeof(*offs), cmp_u64);
	for (int i = 0; i < m; i++) {
		if (offs[i] < cand)
			continue;
		if (offs[i] > cand)
			break;
		cand++;
	}
	free(offs);
	if (cand > last)
		return SG_EFULL;
	memcpy(a, p->addr, 16);
	base = low64(a, nbytes) + cand;
	for (int i = nbytes - 1; i >= (nbytes - 8 < 0 ? 0 : nbytes - 8); i--) {
		a[i] = (uint8_t)base;
		base >>= 8;
	}
	srv_addr_format(out, p->family, a);
	return 0;
}

/* ---- misc ---------------------------------------------------------------------------------- */

void srv_uuid(char out[SRV_ID_LEN + 1])
{
	uint8_t b[16];
	char h[33];

	if (!sg_random_bytes(b, sizeof(b)))
		abort();			/* no randomness: nothing safe to do */
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* RFC 9562 section 5.4: version 4 */
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* variant 10 */
	srv_hex(h, b, 16);
	snprintf(out, SRV_ID_LEN + 1, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16,
		 h + 20);
}

int64_t srv_now(void)
{
	return (int64_t)time(NULL);
}

void srv_b64url(char *out, const uint8_t *in, size_t len)
{
	sg_b64_encode(out, in, len, true);
}

int srv_b64url_decode(uint8_t *out, size_t outmax, const char *in, size_t len)
{
	return sg_b64_decode(out, outmax, in, len, true);
}

void srv_b64(char *out, const uint8_t *in, size_t len)
{
	sg_b64_encode(out, in, len, false);
}

int srv_b64_decode(uint8_t *out, size_t outmax, const char *in, size_t len)
{
	return sg_b64_decode(out, outmax, in, len, false);
}

void srv_hex(char *out, const uint8_t *in, size_t len)
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = d[in[i] >> 4];
		out[2 * i + 1] = d[in[i] & 15];
	}
	out[2 * len] = 0;
}

void srv_token_hash(char out[97], const char *token)
{
	uint8_t h[SG_SHA384_LEN];
	struct sg_iov iov = {token, strlen(token)};

	if (!sg_sha384(h, &iov, 1))
		abort();
	srv_hex(out, h, sizeof(h));
}

void srv_new_token(char out[64], const char *prefix)
{
	uint8_t b[32];
	size_t n = strlen(prefix);

	if (!sg_random_bytes(b, sizeof(b)))
		abort();
	memcpy(out, prefix, n);
	srv_b64url(out + n, b, sizeof(b));
	sg_memzero(b, sizeof(b));
}

const char *srv_role_name(enum srv_role r)
{
	switch (r) {
	case ROLE_SUPER:
		return "super_admin";
	case ROLE_ADMIN:
		return "admin";
	case ROLE_VIEWER:
		return "viewer";
	case ROLE_NONE:
		break;
	}
	return "none";
}

enum srv_role srv_role_parse(const char *s)
{
	if (!s)
		return ROLE_NONE;
	if (!strcmp(s, "super_admin"))
		return ROLE_SUPER;
	if (!strcmp(s, "admin"))
		return ROLE_ADMIN;
	if (!strcmp(s, "viewer"))
		return ROLE_VIEWER;
	return ROLE_NONE;
}

char *srv_i64(char buf[24], int64_t v)
{
	snprintf(buf, 24, "%lld", (long long)v);
	return buf;
}

int64_t srv_res_i64(const struct sg_db_res *res, int row, int col)
{
	const char *v = sg_db_res_get(res, row, col);

	return v ? strtoll(v, NULL, 10) : 0;
}

json_t *srv_row_json(const struct sg_db_res *res, int row, const char *kinds)
{
	json_t *o = json_object();
	int cols = sg_db_res_cols(res);

	for (int i = 0; i < cols && kinds[i]; i++) {
		const char *name = sg_db_res_colname(res, i), *v = sg_db_res_get(res, row, i);
		json_t *j;

		if (kinds[i] == '-')
			continue;
		if (!v) {
			json_object_set_new(o, name, kinds[i] == 'l' ? json_array() : json_null());
			continue;
		}
		switch (kinds[i]) {
		case 'i':
			j = json_integer(strtoll(v, NULL, 10));
			break;
		case 'b':
			j = json_boolean(strcmp(v, "0") && strcmp(v, "f") && strcmp(v, "false"));
			break;
		case 'l': {
			const char *p = v;

			j = json_array();
			while (*p) {
				const char *c = strchr(p, ',');
				size_t n = c ? (size_t)(c - p) : strlen(p);

				if (n)
					json_array_append_new(j, json_stringn(p, n));
				p += n + (c ? 1 : 0);
			}
			break;
		}
		case 'j':
			j = json_loads(v, JSON_DECODE_ANY, NULL);
			if (!j)
				j = json_string(v);
			break;
		default:
			j = json_string(v);
		}
		json_object_set_new(o, name, j ? j : json_null());
	}
	return o;
}

bool srv_cookie(const char *header, const char *name, char *out, size_t len)
{
	size_t nl = strlen(name);

	for (const char *p = header; p && *p;) {
		while (*p == ' ' || *p == ';')
			p++;
		if (!strncmp(p, name, nl) && p[nl] == '=') {
			size_t n = strcspn(p + nl + 1, ";");

			if (n >= len)
				return false;
			memcpy(out, p + nl + 1, n);
			out[n] = 0;
			return n > 0;
		}
		p += strcspn(p, ";");
	}
	return false;
}

json_t *srv_row_get(struct sg_db_conn *c, const char *sql, const char *id, const char *kinds)
{
	struct sg_db_res *res = NULL;
	const char *p[] = {id};
	json_t *j = NULL;

	if (sg_db_query(c, &res, sql, 1, p) == 1)
		j = srv_row_json(res, 0, kinds);
	sg_db_res_free(res);
	return j;
}

/* A JSON string of valid UTF-8 (what the database holds): quotes, backslashes and control
 * characters escaped, the rest as is. */
/* The _unlocked stdio calls: the stream is this thread's own (open_memstream). */
static void json_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s, *run = p;

	/* Runs that need no escaping in one write: a call per character was most of a page. */
	fputc_unlocked('"', f);
	for (; *p; p++) {
		if (*p != '"' && *p != '\\' && *p >= 0x20 && *p != 0x7f)
			continue;
		fwrite_unlocked(run, 1, (size_t)(p - run), f);
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else
			fprintf(f, "\\u%04x", *p);
		run = p + 1;
	}
	fwrite_unlocked(run, 1, (size_t)(p - run), f);
	fputc_unlocked('"', f);
}

void srv_row_json_text(FILE *f, const struct sg_db_res *res, int row, const char *kinds)
{
	int cols = sg_db_res_cols(res);
	bool first = true;

	fputc_unlocked('{', f);
	for (int i = 0; i < cols && kinds[i]; i++) {
		const char *v = sg_db_res_get(res, row, i);

		if (kinds[i] == '-')
			continue;
		if (!first)
			fputc_unlocked(',', f);
		first = false;
		json_str(f, sg_db_res_colname(res, i));
		fputc_unlocked(':', f);
		if (!v) {
			fputs_unlocked(kinds[i] == 'l' ? "[]" : "null", f);
			continue;
		}
		switch (kinds[i]) {
		case 'i':
			fprintf(f, "%lld", strtoll(v, NULL, 10));
			break;
		case 'b':
			fputs_unlocked(strcmp(v, "0") && strcmp(v, "f") && strcmp(v, "false") ? "true"
										  : "false",
			      f);
			break;
		case 'l': {
			const char *p = v;
			bool any = false;

			fputc_unlocked('[', f);
			while (*p) {
				const char *c = strchr(p, ',');
				size_t n = c ? (size_t)(c - p) : strlen(p);

				if (n) {
					char *one = strndup(p, n);

					if (any)
						fputc_unlocked(',', f);
					json_str(f, one ? one : "");
					free(one);
					any = true;
				}
				p += n + (c ? 1 : 0);
			}
			fputc_unlocked(']', f);
			break;
		}
		case 'j': {
			json_t *j = json_loads(v, JSON_DECODE_ANY, NULL);
			char *t = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

			if (t)
				fputs_unlocked(t, f);
			else
				json_str(f, v);
			free(t);
			json_decref(j);
			break;
		}
		default:
			json_str(f, v);
		}
	}
	fputc_unlocked('}', f);
}

/* ---- audit ----------------------------------------------------------------------------------- */

static const char *actor_type(enum srv_principal_kind k)
{
	switch (k) {
	case PRINCIPAL_USER:
		return "user";
	case PRINCIPAL_APIKEY:
		return "api_key";
	case PRINCIPAL_CLIENT:
		return "client";
	case PRINCIPAL_AGENT:
		return "agent";
	case PRINCIPAL_NONE:
		break;
	}
	return "anonymous";
}

static int audit_row(struct sg_db_conn *c, struct sg_audit_event *ev, json_t *details)
{
	char *d = details ? json_dumps(details, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	int rc;

	ev->details = d;
	rc = sg_audit_append(c, ev);
	free(d);
	return rc;
}

int srv_audit(struct sg_db_conn *c, struct srv_req *r, const char *event, const char *rtype,
	      const char *rid, const char *rname, const char *action, json_t *details)
{
	struct sg_audit_event ev = {
	    .event_type = event,
	    .actor_id = r->who.kind != PRINCIPAL_NONE ? r->who.id : NULL,
	    .actor_type = actor_type(r->who.kind),
	    .actor_name = r->who.kind != PRINCIPAL_NONE ? r->who.name : NULL,
	    .resource_type = rtype,
	    .resource_id = rid,
	    .resource_name = rname,
	    .action = action,
	    .source_ip = r->source_ip[0] ? r->source_ip : NULL,
	    .user_agent = r->user_agent[0] ? r->user_agent : NULL,
	};

	return audit_row(c, &ev, details);
}

int srv_audit_system(struct sg_db_conn *c, const char *event, const char *rtype, const char *rid,
		     const char *rname, const char *action, json_t *details)
{
	struct sg_audit_event ev = {
	    .event_type = event,
	    .actor_type = "system",
	    .actor_name = "secureguard-server",
	    .resource_type = rtype,
	    .resource_id = rid,
	    .resource_name = rname,
	    .action = action,
	};

	return audit_row(c, &ev, details);
}

/* ---- transactions ---------------------------------------------------------------------------- */

int srv_tx(struct srv *s, struct sg_db_conn *c, srv_tx_fn fn, void *ctx, bool retry_exist)
{
	int rc = SG_EAGAIN;

	/* Concurrent writers lose a race on SQLite's busy timeout, a PG serialization failure, or
	 * (address allocation) a UNIQUE constraint; the whole transaction is then redone. */
	for (int attempt = 0; attempt < 64; attempt++) {
		rc = sg_db_begin(c);
		if (!rc)
			rc = fn(s, c, ctx);
		if (!rc) {
			rc = sg_db_commit(c);
			if (!rc)
				return 0;
		}
		sg_db_rollback(c);
		if (rc != SG_EAGAIN && !(retry_exist && rc == SG_EEXIST))
			return rc;
		usleep(1000 +
		       sg_random_u32() % (2000u * (unsigned)(attempt < 10 ? attempt + 1 : 10)));
	}
	return rc;
}
