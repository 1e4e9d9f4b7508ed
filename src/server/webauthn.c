/* WebAuthn data of passkeys, parsed with bounds (webauthn.h). */
#include <cbor.h>
#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "server/srv_int.h"
#include "server/webauthn.h"

static int fail(char *why, size_t wl, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *why, size_t wl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, wl, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- CBOR ------------------------------------------------------------------------------------ */

bool wa_cbor_walk(const uint8_t *p, size_t n, int max_depth, size_t *len, char *why, size_t wl)
{
	/* Items still to read at each open level; level 0 holds the one top-level item. */
	uint64_t pending[WA_CBOR_MAX_DEPTH + 1];
	size_t off = 0;
	int depth = 0;

	if (max_depth > WA_CBOR_MAX_DEPTH)
		max_depth = WA_CBOR_MAX_DEPTH;
	pending[0] = 1;
	for (;;) {
		uint8_t ib, major, ai;
		uint64_t v;
		size_t at = off;

		while (depth > 0 && pending[depth] == 0)
			depth--;
		if (pending[depth] == 0)
			break;
		pending[depth]--;
		if (off >= n) {
			fail(why, wl, "byte %zu: the CBOR item ends early", off);
			return false;
		}
		ib = p[off++];
		major = ib >> 5;
		ai = ib & 31;
		if (ai < 24) {
			v = ai;
		} else if (ai <= 27) {
			size_t k = (size_t)1 << (ai - 24);

			if (n - off < k) {
				fail(why, wl, "byte %zu: the CBOR item ends early", at);
				return false;
			}
			v = 0;
			for (size_t i = 0; i < k; i++)
				v = v << 8 | p[off++];
		} else {
			fail(why, wl, "byte %zu: CBOR indefinite length or reserved value (0x%02x)", at,
			     ib);
			return false;
		}
		switch (major) {
		case 0: /* unsigned and negative integers */
		case 1:
			break;
		case 2: /* byte and text strings */
		case 3:
			if (v > n - off) {
				fail(why, wl, "byte %zu: a CBOR string of %llu bytes, %zu left", at,
				     (unsigned long long)v, n - off);
				return false;
			}
			off += (size_t)v;
			break;
		case 4: /* arrays and maps: every item takes at least one byte */
		case 5:
			if (major == 5 && v > (n - off) / 2 + 1)
				v = n; /* refused just below */
			else if (major == 5)
				v *= 2;
			if (v > n - off) {
				fail(why, wl, "byte %zu: a CBOR %s of more items than bytes left", at,
				     major == 4 ? "array" : "map");
				return false;
			}
			if (depth + 1 > max_depth) {
				fail(why, wl, "byte %zu: CBOR nested deeper than %d levels", at,
				     max_depth);
				return false;
			}
			pending[++depth] = v;
			break;
		case 6:
			fail(why, wl, "byte %zu: CBOR tags are not used by WebAuthn", at);
			return false;
		default: /* 7: false, true, null, undefined, floats */
			if (ai < 20 || ai == 24 || ai > 27) {
				fail(why, wl, "byte %zu: CBOR simple value %u not used by WebAuthn",
				     at, (unsigned)ai);
				return false;
			}
			break;
		}
	}
	*len = off;
	return true;
}

/* Decodes exactly p[0..n) with libcbor after the walk bounded it. */
static cbor_item_t *cbor_decode(const uint8_t *p, size_t n, int depth, const char *what,
				char *why, size_t wl)
{
	struct cbor_load_result res;
	char w[WA_WHY_LEN];
	size_t len;
	cbor_item_t *it;

	if (!wa_cbor_walk(p, n, depth, &len, w, sizeof(w))) {
		fail(why, wl, "%s: %s", what, w);
		return NULL;
	}
	if (len != n) {
		fail(why, wl, "%s: byte %zu: %zu bytes after the CBOR item", what, len, n - len);
		return NULL;
	}
	it = cbor_load(p, n, &res);
	if (!it || res.error.code != CBOR_ERR_NONE || res.read != n) {
		if (it)
			cbor_decref(&it);
		fail(why, wl, "%s: byte %zu: not valid CBOR", what, res.error.position);
		return NULL;
	}
	return it;
}

static bool item_int(cbor_item_t *it, int64_t *v)
{
	uint64_t u;

	if (!cbor_isa_uint(it) && !cbor_isa_negint(it))
		return false;
	u = cbor_get_int(it);
	if (u > INT64_MAX)
		return false;
	*v = cbor_isa_uint(it) ? (int64_t)u : -1 - (int64_t)u;
	return true;
}

static bool item_text_is(cbor_item_t *it, const char *s)
{
	return cbor_isa_string(it) && cbor_string_is_definite(it) &&
	       cbor_string_length(it) == strlen(s) &&
	       !memcmp(cbor_string_handle(it), s, strlen(s));
}

static bool item_bytes(cbor_item_t *it, const uint8_t **b, size_t *n)
{
	if (!cbor_isa_bytestring(it) || !cbor_bytestring_is_definite(it))
		return false;
	*b = cbor_bytestring_handle(it);
	*n = cbor_bytestring_length(it);
	return true;
}

/* ---- COSE key --------------------------------------------------------------------------------- */

int wa_cose_parse(const uint8_t *p, size_t n, struct wa_cose_key *k, char *why, size_t wl)
{
	cbor_item_t *m = cbor_decode(p, n, 1, "COSE key", why, wl);
	struct cbor_pair *pairs;
	int64_t kty = 0, alg = 0, crv = 0;
	const uint8_t *x = NULL, *y = NULL;
	size_t xl = 0, yl = 0, np;
	bool seen[5] = {false};
	int rc = -1;

	memset(k, 0, sizeof(*k));
	if (!m)
		return -1;
	if (!cbor_isa_map(m) || !cbor_map_is_definite(m)) {
		fail(why, wl, "COSE key: not a CBOR map");
		goto out;
	}
	pairs = cbor_map_handle(m);
	np = cbor_map_size(m);
	for (size_t i = 0; i < np; i++) {
		int64_t label, v = 0;
		int slot;

		if (!item_int(pairs[i].key, &label)) {
			fail(why, wl, "COSE key: entry %zu: a label that is not an integer", i);
			goto out;
		}
		slot = label == 1 ? 0 : label == 3 ? 1 : label == -1 ? 2 : label == -2 ? 3
		       : label == -3				     ? 4
								     : -1;
		if (slot < 0)
			continue; /* kid, key_ops ...: not needed to verify */
		if (seen[slot]) {
			fail(why, wl, "COSE key: label %lld given twice", (long long)label);
			goto out;
		}
		seen[slot] = true;
		if (slot <= 2 && !item_int(pairs[i].value, &v)) {
			fail(why, wl, "COSE key: label %lld: not an integer", (long long)label);
			goto out;
		}
		if (slot == 0)
			kty = v;
		else if (slot == 1)
			alg = v;
		else if (slot == 2)
			crv = v;
		else if (!item_bytes(pairs[i].value, slot == 3 ? &x : &y, slot == 3 ? &xl : &yl)) {
			fail(why, wl, "COSE key: label %lld: not a byte string", (long long)label);
			goto out;
		}
	}
	if (!seen[1]) {
		fail(why, wl, "COSE key: no algorithm (label 3)");
		goto out;
	}
	if (alg != WA_ES256 && alg != WA_ES384) {
		const char *name = alg == -8	? " (EdDSA)"
				   : alg == -257 ? " (RS256)"
				   : alg == -36	 ? " (ES512)"
				   : alg == -37	 ? " (PS256)"
						 : "";

		fail(why, wl,
		     "COSE key: algorithm %lld%s is not accepted: only -7 (ES256) and -35 (ES384)",
		     (long long)alg, name);
		goto out;
	}
	if (kty != 2) {
		fail(why, wl, "COSE key: key type %lld, not 2 (EC2)", (long long)kty);
		goto out;
	}
	k->alg = (int)alg;
	k->coord_len = alg == WA_ES256 ? 32 : 48;
	if (crv != (alg == WA_ES256 ? 1 : 2)) {
		fail(why, wl, "COSE key: algorithm %lld needs curve %d (%s), not %lld",
		     (long long)alg, alg == WA_ES256 ? 1 : 2, alg == WA_ES256 ? "P-256" : "P-384",
		     (long long)crv);
		goto out;
	}
	if (!x || !y || xl != k->coord_len || yl != k->coord_len) {
		fail(why, wl, "COSE key: x and y must be %zu bytes each", k->coord_len);
		goto out;
	}
	memcpy(k->x, x, xl);
	memcpy(k->y, y, yl);
	rc = 0;
out:
	cbor_decref(&m);
	return rc;
}

/* ---- authenticator data ----------------------------------------------------------------------- */

int wa_auth_data_parse(const uint8_t *p, size_t n, bool registration, struct wa_auth_data *ad,
		       char *why, size_t wl)
{
	char w[WA_WHY_LEN];
	size_t off = 37, len;

	memset(ad, 0, sizeof(*ad));
	if (n < 37)
		return fail(why, wl,
			    "authenticatorData: %zu bytes, shorter than the 37 of rpIdHash, flags "
			    "and signCount",
			    n);
	if (n > WA_MAX_AUTH_DATA)
		return fail(why, wl, "authenticatorData: %zu bytes, more than %d", n,
			    WA_MAX_AUTH_DATA);
	memcpy(ad->rp_id_hash, p, 32);
	ad->flags = p[32];
	ad->sign_count = (uint32_t)p[33] << 24 | (uint32_t)p[34] << 16 | (uint32_t)p[35] << 8 |
			 p[36];
	if (registration && !(ad->flags & WA_AT))
		return fail(why, wl,
			    "authenticatorData: byte 32: no attested credential data (flag AT)");
	if (!registration && (ad->flags & WA_AT))
		return fail(why, wl,
			    "authenticatorData: byte 32: attested credential data in an assertion");
	if (ad->flags & WA_AT) {
		if (n - off < 18)
			return fail(why, wl,
				    "authenticatorData: byte %zu: attested credential data ends "
				    "early",
				    off);
		memcpy(ad->aaguid, p + off, 16);
		off += 16;
		ad->cred_id_len = (size_t)p[off] << 8 | p[off + 1];
		off += 2;
		if (ad->cred_id_len == 0 || ad->cred_id_len > WA_MAX_CRED_ID)
			return fail(why, wl,
				    "authenticatorData: byte %zu: credentialIdLength %zu is not in "
				    "1..%d",
				    off - 2, ad->cred_id_len, WA_MAX_CRED_ID);
		if (n - off < ad->cred_id_len)
			return fail(why, wl,
				    "authenticatorData: byte %zu: the credential id (%zu bytes) "
				    "ends early",
				    off, ad->cred_id_len);
		memcpy(ad->cred_id, p + off, ad->cred_id_len);
		off += ad->cred_id_len;
		if (!wa_cbor_walk(p + off, n - off, 1, &len, w, sizeof(w)))
			return fail(why, wl, "authenticatorData: credential public key at byte %zu: %s",
				    off, w);
		if (wa_cose_parse(p + off, len, &ad->key, w, sizeof(w)))
			return fail(why, wl, "authenticatorData: byte %zu: %s", off, w);
		ad->cose = p + off;
		ad->cose_len = len;
		off += len;
	}
	if (ad->flags & WA_ED) {
		if (!wa_cbor_walk(p + off, n - off, WA_CBOR_MAX_DEPTH, &len, w, sizeof(w)))
			return fail(why, wl, "authenticatorData: extensions at byte %zu: %s", off,
				    w);
		if (p[off] >> 5 != 5)
			return fail(why, wl,
				    "authenticatorData: byte %zu: extensions are not a CBOR map", off);
		off += len;
	}
	if (off != n)
		return fail(why, wl, "authenticatorData: byte %zu: %zu bytes after the end", off,
			    n - off);
	return 0;
}

/* ---- attestation object ----------------------------------------------------------------------- */

int wa_attestation_parse(const uint8_t *p, size_t n, struct wa_attestation *a, char *why,
			 size_t wl)
{
	cbor_item_t *m, *fmt = NULL, *stmt = NULL, *ad = NULL;
	struct cbor_pair *pairs;
	const uint8_t *b;
	size_t np, bl;
	int rc = -1;

	memset(a, 0, sizeof(*a));
	if (n > WA_MAX_ATT_OBJECT)
		return fail(why, wl, "attestationObject: %zu bytes, more than %d", n,
			    WA_MAX_ATT_OBJECT);
	m = cbor_decode(p, n, WA_CBOR_MAX_DEPTH, "attestationObject", why, wl);
	if (!m)
		return -1;
	if (!cbor_isa_map(m) || !cbor_map_is_definite(m)) {
		fail(why, wl, "attestationObject: not a CBOR map");
		goto out;
	}
	pairs = cbor_map_handle(m);
	np = cbor_map_size(m);
	for (size_t i = 0; i < np; i++) {
		cbor_item_t **slot = item_text_is(pairs[i].key, "fmt")	    ? &fmt
				     : item_text_is(pairs[i].key, "attStmt")  ? &stmt
				     : item_text_is(pairs[i].key, "authData") ? &ad
									      : NULL;

		if (!slot)
			continue;
		if (*slot) {
			fail(why, wl, "attestationObject: entry %zu: a key given twice", i);
			goto out;
		}
		*slot = pairs[i].value;
	}
	if (!fmt || !cbor_isa_string(fmt) || !cbor_string_is_definite(fmt)) {
		fail(why, wl, "attestationObject: no fmt text");
		goto out;
	}
	if (!stmt || !cbor_isa_map(stmt)) {
		fail(why, wl, "attestationObject: no attStmt map");
		goto out;
	}
	if (!ad || !item_bytes(ad, &b, &bl)) {
		fail(why, wl, "attestationObject: no authData byte string");
		goto out;
	}
	if (bl > WA_MAX_AUTH_DATA) {
		fail(why, wl, "attestationObject: authData of %zu bytes, more than %d", bl,
		     WA_MAX_AUTH_DATA);
		goto out;
	}
	memcpy(a->auth_data, b, bl);
	a->auth_data_len = bl;
	if (item_text_is(fmt, "none")) {
		snprintf(a->fmt, sizeof(a->fmt), "none");
		if (cbor_map_size(stmt) != 0) {
			fail(why, wl, "attestationObject: format none with a statement that is not "
				      "empty");
			goto out;
		}
	} else if (item_text_is(fmt, "packed")) {
		struct cbor_pair *sp = cbor_map_handle(stmt);
		bool have_alg = false;

		snprintf(a->fmt, sizeof(a->fmt), "packed");
		for (size_t i = 0; i < cbor_map_size(stmt); i++) {
			if (item_text_is(sp[i].key, "x5c")) {
				fail(why, wl,
				     "attestationObject: packed attestation with a certificate "
				     "chain (x5c) is not accepted: register with attestation "
				     "\"none\" (the console asks for it)");
				goto out;
			}
			if (item_text_is(sp[i].key, "alg")) {
				if (have_alg || !item_int(sp[i].value, &a->alg)) {
					fail(why, wl, "attestationObject: attStmt alg: not one integer");
					goto out;
				}
				have_alg = true;
			} else if (item_text_is(sp[i].key, "sig")) {
				if (a->sig_len || !item_bytes(sp[i].value, &b, &bl) || !bl ||
				    bl > WA_MAX_SIG) {
					fail(why, wl,
					     "attestationObject: attStmt sig: not one byte string of "
					     "1..%d bytes",
					     WA_MAX_SIG);
					goto out;
				}
				memcpy(a->sig, b, bl);
				a->sig_len = bl;
			}
		}
		if (!have_alg || !a->sig_len) {
			fail(why, wl, "attestationObject: packed attStmt without alg and sig");
			goto out;
		}
		a->self_signed = true;
	} else {
		char name[24];
		size_t l = cbor_string_length(fmt);

		l = l < sizeof(name) - 1 ? l : sizeof(name) - 1;
		memcpy(name, cbor_string_handle(fmt), l);
		name[l] = 0;
		for (size_t i = 0; i < l; i++)
			if (!isprint((unsigned char)name[i]) || name[i] == '"')
				name[i] = '?';
		fail(why, wl,
		     "attestationObject: attestation format \"%s\" is not accepted: only \"none\" "
		     "and packed self-attestation (register with attestation \"none\")",
		     name);
		goto out;
	}
	rc = 0;
out:
	cbor_decref(&m);
	return rc;
}

/* ---- client data ------------------------------------------------------------------------------ */

/* A value from the client quoted in an error: at most 80 printable ASCII characters. */
static void quote(char *out, size_t cap, const char *in)
{
	size_t o = 0;

	for (; in && *in && o + 4 < cap && o < 80; in++)
		out[o++] = (*in >= 0x20 && *in < 0x7f && *in != '"' && *in != '\\') ? *in : '?';
	if (in && *in && o + 4 < cap) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = 0;
}

int wa_client_data_parse(const uint8_t *p, size_t n, const char *type, const char *origin,
			 uint8_t challenge[WA_CHALLENGE_LEN], char *why, size_t wl)
{
	json_error_t err;
	json_t *j, *v;
	const char *s;
	char q[96];
	int rc = -1;

	if (n > WA_MAX_CLIENT_DATA)
		return fail(why, wl, "clientDataJSON: %zu bytes, more than %d", n,
			    WA_MAX_CLIENT_DATA);
	j = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &err);
	if (!j)
		return fail(why, wl, "clientDataJSON: line %d column %d: %s", err.line,
			    err.column, err.text);
	if (!json_is_object(j)) {
		fail(why, wl, "clientDataJSON: not an object");
		goto out;
	}
	s = json_string_value(json_object_get(j, "type"));
	if (!s || strcmp(s, type)) {
		quote(q, sizeof(q), s);
		fail(why, wl, "clientDataJSON: type \"%s\", not \"%s\"", s ? q : "(none)", type);
		goto out;
	}
	s = json_string_value(json_object_get(j, "challenge"));
	if (!s || srv_b64url_decode(challenge, WA_CHALLENGE_LEN, s, strlen(s)) !=
			  WA_CHALLENGE_LEN) {
		fail(why, wl, "clientDataJSON: challenge is not %d bytes of base64url",
		     WA_CHALLENGE_LEN);
		goto out;
	}
	s = json_string_value(json_object_get(j, "origin"));
	if (!s || strcmp(s, origin)) {
		quote(q, sizeof(q), s);
		fail(why, wl, "clientDataJSON: origin \"%s\" is not this server's \"%s\"",
		     s ? q : "(none)", origin);
		goto out;
	}
	v = json_object_get(j, "crossOrigin");
	if (v && !json_is_false(v)) {
		fail(why, wl, "clientDataJSON: crossOrigin: made in a frame of another site");
		goto out;
	}
	rc = 0;
out:
	json_decref(j);
	return rc;
}

/* ---- the relying party ------------------------------------------------------------------------ */

bool wa_relying_party(const char *url, char origin[256], char rp_id[256], const char **why)
{
	const char *h, *e;
	bool https;
	size_t hl;
	char port[8] = "";
	bool ip = true;

	*why = NULL;
	origin[0] = rp_id[0] = 0;
	if (!url || !*url) {
		*why = "passkeys need the server's --public-url (the address browsers open the "
		       "console at): its host is the WebAuthn relying party";
		return false;
	}
	https = !strncmp(url, "https://", 8);
	h = url + (https ? 8 : 7);
	if (*h == '[') {
		*why = "passkeys need a --public-url with a domain name, not an IP address";
		return false;
	}
	hl = strcspn(h, ":/?#");
	if (!hl || hl >= 254) {
		*why = "--public-url has no host";
		return false;
	}
	e = h + hl;
	if (*e == ':') {
		size_t pl = strspn(e + 1, "0123456789");

		if (!pl || pl > 5) {
			*why = "--public-url has a bad port";
			return false;
		}
		snprintf(port, sizeof(port), "%.*s", (int)pl, e + 1);
		if (!strcmp(port, https ? "443" : "80"))
			port[0] = 0;
	}
	for (size_t i = 0; i < hl; i++) {
		unsigned char c = (unsigned char)h[i];

		if (!isdigit(c) && c != '.')
			ip = false;
		rp_id[i] = (char)tolower(c);
	}
	rp_id[hl] = 0;
	if (ip) {
		*why = "passkeys need a --public-url with a domain name, not an IP address";
		rp_id[0] = 0;
		return false;
	}
	if (!https && strcmp(rp_id, "localhost") &&
	    (hl < 10 || strcmp(rp_id + hl - 10, ".localhost"))) {
		*why = "passkeys need an https --public-url (browsers offer WebAuthn only to "
		       "secure contexts; plain http only for localhost)";
		rp_id[0] = 0;
		return false;
	}
	snprintf(origin, 256, "%s://%s%s%s", https ? "https" : "http", rp_id, port[0] ? ":" : "",
		 port);
	return true;
}
