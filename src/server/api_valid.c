/* Input validation from the API description (api.h): parameters, bodies, and the named string
 * formats whose rules the document states. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "config/key.h"
#include "gateway/conf.h"
#include "net/addr.h"
#include "server/api.h"
#include "server/api_formats.h"
#include "server/audit.h"

/* ---- formats ------------------------------------------------------------------------------- */

size_t api_utf8_len(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

static bool no_controls(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return false;
	}
	return true;
}

static bool is_hex(char c)
{
	return sg_hexval(c) >= 0;
}

static bool chk_uuid(const char *s, const char **why)
{
	*why = "must be a UUID (8-4-4-4-12 hexadecimal digits)";
	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23 ? s[i] != '-' : !is_hex(s[i]))
			return false;
	}
	return true;
}

static bool chk_text(const char *s, const char **why)
{
	return srv_text_check(s, false, why);
}

static bool chk_name(const char *s, const char **why)
{
	return srv_text_check(s, true, why);
}

static bool chk_email(const char *s, const char **why)
{
	const char *at = strchr(s, '@');

	*why = "not an e-mail address (one @, no spaces, commas or control characters)";
	return no_controls(s) && at && at != s && at[1] && !strchr(at + 1, '@') &&
	       !strchr(s, ' ') && !strchr(s, ',') && srv_text_check(s, true, why);
}

static bool chk_subnet(const char *s, int fam, int lo, int hi, const char **why)
{
	struct srv_prefix p;

	if (srv_prefix_parse(&p, s, false, why))
		return false;
	if (p.family != fam) {
		*why = fam == 4 ? "must be an IPv4 prefix" : "must be an IPv6 prefix";
		return false;
	}
	if (p.len < lo || p.len > hi) {
		*why = fam == 4 ? "prefix length must be 8 to 30" : "prefix length must be 48 to 126";
		return false;
	}
	return true;
}

static bool chk_subnet4(const char *s, const char **why)
{
	return chk_subnet(s, 4, 8, 30, why);
}

static bool chk_subnet6(const char *s, const char **why)
{
	return chk_subnet(s, 6, 48, 126, why);
}

static bool chk_cidr(const char *s, const char **why)
{
	struct srv_prefix p;

	return !srv_prefix_parse(&p, s, false, why);
}

static bool chk_ip(const char *s, const char **why)
{
	int fam;
	uint8_t a[16];

	*why = "not an IP address";
	return !srv_addr_parse(&fam, a, s);
}

static bool chk_endpoint(const char *s, const char **why)
{
	*why = "must be HOST:PORT or [IPv6]:PORT";
	return srv_valid_endpoint(s);
}

static bool chk_wg_key(const char *s, const char **why)
{
	uint8_t k[SG_FIPS_PUB_LEN];

	*why = "must be a base64 X25519 public key (44 characters)";
	return !sg_key_from_base64(k, s, strlen(s));
}

static bool chk_fips_key(const char *s, const char **why)
{
	uint8_t k[SG_FIPS_PUB_LEN];

	*why = "must be a base64 compressed P-384 point on the curve (68 characters)";
	return !sg_fipskey_pub_from_base64(k, s, strlen(s));
}

static bool chk_b64url_len(const char *s, size_t bytes)
{
	uint8_t buf[64];
	size_t n = strlen(s);

	return n <= 4 * sizeof(buf) / 3 + 2 && srv_b64url_decode(buf, sizeof(buf), s, n) == (int)bytes;
}

static bool chk_challenge(const char *s, const char **why)
{
	*why = "must be a challenge from /api/auth/client/challenge (base64url of 32 bytes)";
	return chk_b64url_len(s, 32);
}

static bool chk_proof(const char *s, const char **why)
{
	*why = "must be base64url of 48 bytes";
	return chk_b64url_len(s, 48);
}

/* WebAuthn's binary values in JSON (PublicKeyCredential's toJSON(), section 5.1): strict
 * base64url, no padding, the unused bits of the last character zero. */
static bool chk_b64url(const char *s, const char **why)
{
	size_t n = strlen(s);
	uint8_t *buf = malloc(n);
	bool ok = buf && srv_b64url_decode(buf, n, s, n) > 0;

	*why = "must be base64url (RFC 4648 section 5) without padding";
	free(buf);
	return ok;
}

static bool chk_refresh(const char *s, const char **why)
{
	*why = "not a refresh token (sgr_...)";
	return !strncmp(s, "sgr_", 4) && strlen(s) <= 64;
}

static bool chk_mfa_token(const char *s, const char **why)
{
	*why = "not an mfa_token (sgm_...)";
	return !strncmp(s, "sgm_", 4) && strlen(s) <= 64;
}

static bool chk_temp_ref(const char *s, const char **why)
{
	const char *u;

	*why = "must be a temporary access token (sgt_...) or a grant id (UUID)";
	if (!strncmp(s, "sgt_", 4)) {
		for (const char *p = s + 4; *p; p++) {
			if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
				    *p))
				return false;
		}
		return strlen(s) > 4 && strlen(s) <= 64;
	}
	return chk_uuid(s, &u);
}

const struct api_format api_f_uuid = {"uuid", NULL, chk_uuid, NULL};
const struct api_format api_f_password = {"password", NULL, NULL, NULL}; /* any characters */
const struct api_format api_f_binary = {"binary", NULL, NULL, NULL};
/* Output only (an agent's WireGuard configuration): several lines. */
const struct api_format api_f_wg_config = {
    "wg-config", "A wg-quick configuration file: lines separated by newlines.", NULL, NULL};
/* Output only (a public key): PEM text (RFC 7468), several lines. */
const struct api_format api_f_pem = {"pem", "PEM text (RFC 7468): lines separated by newlines.",
				     NULL, NULL};
const struct api_format api_f_text = {
    "text",
    "Printable text, stored in Unicode NFC: no control or invisible characters (zero-width, bidi "
    "controls, format characters).",
    chk_text, srv_text_nfc};
const struct api_format api_f_name = {
    "name",
    "A name: printable text, stored in Unicode NFC, without control or invisible characters "
    "(zero-width, bidi controls, format characters) and without a space at either end. Names "
    "that must be unique compare without regard to case or normalisation.",
    chk_name, srv_text_nfc};
const struct api_format api_f_email = {
    "email", "An e-mail address: one @ with text on both sides, no spaces, commas, control or "
	     "invisible characters. Stored and compared case-folded (Unicode NFC, then lower case): "
	     "VIEW@example.com and view@example.com are one address.",
    chk_email, srv_text_fold};
const struct api_format api_f_subnet4 = {
    "ipv4-subnet", "An IPv4 network prefix A.B.C.D/N with N from 8 to 30 and no host bits set.",
    chk_subnet4, NULL};
const struct api_format api_f_subnet6 = {
    "ipv6-subnet", "An IPv6 network prefix with length 48 to 126 and no host bits set.",
    chk_subnet6, NULL};
const struct api_format api_f_cidr = {
    "cidr", "An IPv4 or IPv6 prefix ADDRESS/LENGTH with no host bits set.", chk_cidr, NULL};
const struct api_format api_f_ip = {"ip", "An IPv4 or IPv6 address.", chk_ip, NULL};
const struct api_format api_f_endpoint = {
    "endpoint", "HOST:PORT or [IPv6]:PORT (a host name, or an address; port 1-65535).",
    chk_endpoint, NULL};
const struct api_format api_f_wg_key = {
    "wireguard-key", "A WireGuard (X25519) public key: base64 of 32 bytes, 44 characters.",
    chk_wg_key, NULL};
const struct api_format api_f_fips_key = {
    "fips-key",
    "A SecureGuard FIPS (P-384) public key: base64 of the 49-byte compressed point, 68 "
    "characters; the point must be on the curve.",
    chk_fips_key, NULL};
const struct api_format api_f_challenge = {
    "challenge", "base64url (no padding) of the 32 bytes from /api/auth/client/challenge.",
    chk_challenge, NULL};
const struct api_format api_f_proof = {"proof", "base64url (no padding) of 48 bytes.",
				       chk_proof, NULL};
const struct api_format api_f_b64url = {
    "base64url", "Bytes in base64url (RFC 4648 section 5) without padding, as WebAuthn's JSON "
		 "forms carry them.",
    chk_b64url, NULL};
const struct api_format api_f_refresh = {
    "refresh-token", "A refresh token: sgr_ and base64url, at most 64 characters.", chk_refresh, NULL};
const struct api_format api_f_mfa_token = {
    "mfa-token", "An mfa_token from a login's password step: sgm_ and base64url, at most 64 "
		 "characters.",
    chk_mfa_token, NULL};
const struct api_format api_f_temp_ref = {
    "temp-access-ref",
    "A temporary access token (sgt_ and base64url, at most 64 characters) or a grant id (UUID).",
    chk_temp_ref, NULL};

static bool chk_domain(const char *s, const char **why)
{
	*why = "not a host name (RFC 1123 labels of letters, digits and '-'; *.name for a "
	       "wildcard)";
	return gw_domain_ok(s, true);
}

static bool chk_ip_port(const char *s, const char **why)
{
	struct wg_endpoint ep;
	char zone[ADDR_ZONE_MAX + 1];
	const char *w = NULL;

	*why = "must be IP:PORT or [IPv6]:PORT (an address behind a tunnel; no host names)";
	return !addr_parse_endpoint(s, strlen(s), &ep, zone, &w) && !zone[0] &&
	       ntohs(ep.addr.in4.sin_port) != 0;
}

static bool chk_sha384_hex(const char *s, const char **why)
{
	*why = "must be a SHA-384 in lowercase hex (96 digits; sha384sum prints it)";
	if (strlen(s) != 96)
		return false;
	for (const char *p = s; *p; p++) {
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	}
	return true;
}

const struct api_format api_f_domain = {
    "domain",
    "A host name: RFC 1123 labels of letters, digits and '-', stored in lower case; '*.name' "
    "matches exactly one more label (a wildcard).",
    chk_domain, NULL};
const struct api_format api_f_ip_port = {
    "ip-port", "IP:PORT or [IPv6]:PORT: an address (no host name) and a port 1-65535.",
    chk_ip_port, NULL};
const struct api_format api_f_sha384_hex = {
    "sha384-hex", "A SHA-384 digest in lowercase hexadecimal, 96 digits.", chk_sha384_hex,
    NULL};

/* ---- values -------------------------------------------------------------------------------- */

#define fail(out, field, ...) srv_error(out, 400, field, __VA_ARGS__)

/* Lower-cases in place: ids compare as stored (lower case). */
static void lower(char *s)
{
	for (; *s; s++) {
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s + 32);
	}
}

static bool check_string(const struct api_schema *sc, const char *v, const char *field,
			 struct srv_resp *out)
{
	size_t n = api_utf8_len(v);
	const char *why = NULL;

	if (!*v && !sc->allow_empty && !sc->enumv) {
		fail(out, field, "must not be empty");
		return false;
	}
	if (sc->min_len && n < (size_t)sc->min_len) {
		fail(out, field, "must be at least %d characters", sc->min_len);
		return false;
	}
	if (sc->max_len && n > (size_t)sc->max_len) {
		fail(out, field, "must be at most %d characters", sc->max_len);
		return false;
	}
	if (sc->enumv) {
		char list[256] = "";

		for (const char *const *e = sc->enumv; *e; e++) {
			if (!strcmp(*e, v))
				return true;
		}
		for (const char *const *e = sc->enumv; *e; e++)
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
				 e == sc->enumv ? "" : ", ", *e);
		fail(out, field, "must be one of: %s", list);
		return false;
	}
	/* No format lets a control character through unless it says so (passwords). */
	if (!sc->format && !no_controls(v)) {
		fail(out, field, "must not contain control characters");
		return false;
	}
	if (sc->format && sc->format->check && *v && !sc->format->check(v, &why)) {
		fail(out, field, "%s", why);
		return false;
	}
	return true;
}

static bool check_int(const struct api_schema *sc, int64_t v, const char *field,
		      struct srv_resp *out)
{
	if ((sc->has_min && v < sc->min) || (sc->has_max && v > sc->max)) {
		if (sc->has_min && sc->has_max)
			fail(out, field, "must be an integer from %lld to %lld",
			     (long long)sc->min, (long long)sc->max);
		else if (sc->has_min)
			fail(out, field, "must be an integer of at least %lld", (long long)sc->min);
		else
			fail(out, field, "must be an integer of at most %lld", (long long)sc->max);
		return false;
	}
	return true;
}

static const char *type_name(const struct api_schema *sc)
{
	switch (sc->type) {
	case AT_STRING:
		return "a string";
	case AT_INTEGER:
		return "an integer";
	case AT_BOOLEAN:
		return "true or false";
	case AT_ARRAY:
		return sc->items && sc->items->type == AT_STRING ? "an array of strings"
								 : "an array";
	case AT_OBJECT:
		return "an object";
	case AT_ANY:
		return "a value";
	}
	return "?";
}

static bool check_json(const struct api_schema *sc, json_t *v, const char *field,
		       struct srv_resp *out);

static bool check_object(const struct api_schema *sc, json_t *v, const char *field,
			 struct srv_resp *out)
{
	const char *key;
	json_t *x;

	json_object_foreach(v, key, x)
	{
		int i;

		for (i = 0; i < sc->nprops; i++) {
			if (!strcmp(sc->props[i].name, key))
				break;
		}
		if (i == sc->nprops) {
			if (sc->open)
				continue;
			srv_error(out, 400, key, "unknown field");
			return false;
		}
		if (!check_json(sc->props[i].schema, x, field ? field : key, out))
			return false;
	}
	for (int i = 0; i < sc->nprops; i++) {
		if ((sc->props[i].flags & P_REQUIRED) && !json_object_get(v, sc->props[i].name)) {
			srv_error(out, 400, sc->props[i].name, "required");
			return false;
		}
	}
	if (json_object_size(v) < (size_t)sc->min_props) {
		srv_error(out, 400, field, "nothing to change: give at least one field");
		return false;
	}
	return true;
}

static bool check_json(const struct api_schema *sc, json_t *v, const char *field,
		       struct srv_resp *out)
{
	if (json_is_null(v)) {
		if (sc->nullable)
			return true;
		fail(out, field, "must be %s, not null", type_name(sc));
		return false;
	}
	switch (sc->type) {
	case AT_STRING:
		if (!json_is_string(v))
			break;
		if (sc->format == &api_f_uuid) {
			/* Stored in lower case: compare as stored. */
			char *l = strdup(json_string_value(v));

			if (!l) {
				srv_error(out, 503, NULL, "out of memory");
				return false;
			}
			lower(l);
			json_string_set(v, l);
			free(l);
		} else if (sc->format && sc->format->normalize) {
			char *n = sc->format->normalize(json_string_value(v));

			if (n && strcmp(n, json_string_value(v)))
				json_string_set(v, n);
			free(n);
		}
		return check_string(sc, json_string_value(v), field, out);
	case AT_INTEGER:
		if (!json_is_integer(v))
			break;
		return check_int(sc, json_integer_value(v), field, out);
	case AT_BOOLEAN:
		if (!json_is_boolean(v))
			break;
		return true;
	case AT_ARRAY: {
		size_t i;
		json_t *e;

		if (!json_is_array(v))
			break;
		if (sc->max_items && json_array_size(v) > (size_t)sc->max_items) {
			fail(out, field, "at most %d items", sc->max_items);
			return false;
		}
		json_array_foreach(v, i, e)
		{
			if (!check_json(sc->items, e, field, out))
				return false;
		}
		return true;
	}
	case AT_OBJECT:
		if (!json_is_object(v))
			break;
		return check_object(sc, v, field, out);
	case AT_ANY:
		return true;
	}
	fail(out, field, "must be %s", type_name(sc));
	return false;
}

/* ---- parameters ---------------------------------------------------------------------------- */

/* Strict decimal: an optional '-', digits, no leading zeros (but "0"), within int64. */
static bool parse_int(const char *s, int64_t *v)
{
	const char *d = s[0] == '-' ? s + 1 : s;
	char *end;
	long long x;

	if (!*d || strlen(d) > 19 || (d[0] == '0' && d[1]) || !strcmp(s, "-0"))
		return false;
	for (const char *p = d; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
	}
	errno = 0;
	x = strtoll(s, &end, 10);
	if (errno || *end)
		return false;
	*v = x;
	return true;
}

static bool check_param(const struct api_param *p, char *v, struct srv_resp *out)
{
	const struct api_schema *sc = p->schema;
	int64_t x;

	switch (sc->type) {
	case AT_INTEGER:
		if (!parse_int(v, &x)) {
			srv_error(out, 400, p->name, "must be a decimal integer");
			return false;
		}
		return check_int(sc, x, p->name, out);
	case AT_BOOLEAN:
		if (strcmp(v, "true") && strcmp(v, "false")) {
			srv_error(out, 400, p->name, "must be true or false");
			return false;
		}
		return true;
	case AT_STRING:
		if (sc->format == &api_f_uuid)
			lower(v);
		if (sc->format && sc->format->normalize) {
			char *n = sc->format->normalize(v);

			/* In place: the decoded value's storage is ours (NFC rarely lengthens). */
			if (n && strlen(n) <= strlen(v))
				memcpy(v, n, strlen(n) + 1);
			free(n);
		}
		return check_string(sc, v, p->name, out);
	default:
		return true;
	}
}

bool api_check_params(const struct api_route *route, struct srv_req *r, struct srv_resp *out)
{
	int pi = 0;

	for (int i = 0; i < route->nparams; i++) {
		const struct api_param *p = &route->params[i];

		if (p->in != IN_PATH)
			continue;
		/* Path values live in r->decoded: ours to lower-case. */
		if (pi < r->nparams && !check_param(p, (char *)r->params[pi], out))
			return false;
		pi++;
	}
	for (int q = 0; q < r->nquery; q++) {
		const struct api_param *p = NULL;

		for (int i = 0; i < route->nparams; i++) {
			if (route->params[i].in == IN_QUERY &&
			    !strcmp(route->params[i].name, r->query[q].name))
				p = &route->params[i];
		}
		if (!p) {
			srv_error(out, 400, r->query[q].name, "unknown query parameter");
			return false;
		}
		if (!check_param(p, (char *)r->query[q].value, out))
			return false;
	}
	for (int i = 0; i < route->nparams; i++) {
		const struct api_param *p = &route->params[i];

		if (p->in == IN_QUERY && p->required && !srv_query(r, p->name)) {
			srv_error(out, 400, p->name, "required");
			return false;
		}
	}
	return true;
}

bool api_check_body(const struct api_route *route, struct srv_req *r, struct srv_resp *out)
{
	if (!route->body)
		return true;
	return check_object(route->body, r->json, NULL, out);
}

static const struct api_param *find_query(const struct api_route *route, const char *name)
{
	for (int i = 0; i < route->nparams; i++) {
		if (route->params[i].in == IN_QUERY && !strcmp(route->params[i].name, name))
			return &route->params[i];
	}
	return NULL;
}

int64_t api_query_int(const struct api_route *route, struct srv_req *r, const char *name)
{
	const struct api_param *p = find_query(route, name);
	const char *v = srv_query(r, name);
	int64_t x = 0;

	if (!v)
		v = p && p->schema->default_json ? p->schema->default_json : "0";
	if (!parse_int(v, &x))
		x = 0;
	return x;
}

int api_query_bool(const struct api_route *route, struct srv_req *r, const char *name)
{
	const struct api_param *p = find_query(route, name);
	const char *v = srv_query(r, name);

	if (!v)
		v = p && p->schema->default_json ? p->schema->default_json : NULL;
	if (!v)
		return -1;
	return !strcmp(v, "true");
}
