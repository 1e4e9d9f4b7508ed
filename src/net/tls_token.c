/* Session tokens of the TLS transport; see tls_token.h and docs/TLS.md. */
#include "net/tls_token.h"

#include <string.h>

#include <secureguard/sg_errors.h>

#include "common/b64.h"
#include "crypto/crypto.h"
#include "net/tls_frame.h"

/* ---- hello -------------------------------------------------------------------------------- */

void tls_hello_encode(uint8_t out[TLS_HELLO_HDR_LEN], size_t len)
{
	memcpy(out, TLS_MAGIC, TLS_MAGIC_LEN);
	out[8] = TLS_HELLO_TOKEN;
	out[9] = 0; /* reserved */
	out[10] = (uint8_t)(len >> 8);
	out[11] = (uint8_t)len;
}

int tls_hello_parse(const uint8_t *buf, size_t len, const uint8_t **tok, size_t *toklen,
		    const char **why)
{
	/* As the client checks the server's greeting: at the first byte that differs, so a client
	 * that sends frames at once (one without TlsSessionToken) is told without waiting. */
	size_t n = SG_MIN(len, (size_t)TLS_MAGIC_LEN);
	if (memcmp(buf, TLS_MAGIC, n) != 0) {
		*why =
		    "no session token (the client sent no SG-TLS/1 hello: is TlsSessionToken set?)";
		return SG_EPARSE;
	}
	if (len >= 9 && buf[8] != TLS_HELLO_TOKEN) {
		*why = "hello of an unknown type";
		return SG_EPARSE;
	}
	if (len < TLS_HELLO_HDR_LEN)
		return 0;
	/* buf[9] is reserved: sent as 0, ignored. */
	size_t tl = (size_t)buf[10] << 8 | buf[11];
	if (tl == 0 || tl > TLS_TOKEN_MAX) {
		*why = "session token length out of bounds";
		return SG_EPARSE;
	}
	if (len - TLS_HELLO_HDR_LEN < tl)
		return 0;
	*tok = buf + TLS_HELLO_HDR_LEN;
	*toklen = tl;
	return (int)(TLS_HELLO_HDR_LEN + tl);
}

/* ---- public key --------------------------------------------------------------------------- */

/* SubjectPublicKeyInfo of an uncompressed P-384 point (RFC 5480): SEQUENCE { SEQUENCE {
 * id-ecPublicKey, secp384r1 }, BIT STRING 0x04 || x || y }: this prefix, then 96 bytes. */
static const uint8_t spki_p384[] = {0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86,
				    0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
				    0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00, 0x04};

int tls_token_key_from_pem(struct tls_token_key *k, const char *pem, size_t len, const char **why)
{
	static const char begin[] = "-----BEGIN PUBLIC KEY-----",
			  end[] = "-----END PUBLIC KEY-----";
	char b64[256];
	uint8_t der[160];
	size_t nb = 0;
	const char *p, *e;

	memset(k, 0, sizeof(*k));
	p = len >= sizeof(begin) - 1 ? memmem(pem, len, begin, sizeof(begin) - 1) : NULL;
	if (!p) {
		*why = "no \"BEGIN PUBLIC KEY\" block";
		return SG_EPARSE;
	}
	p += sizeof(begin) - 1;
	e = memmem(p, len - (size_t)(p - pem), end, sizeof(end) - 1);
	if (!e) {
		*why = "no \"END PUBLIC KEY\" line";
		return SG_EPARSE;
	}
	for (; p < e; p++) {
		if (*p == '\n' || *p == '\r' || *p == ' ' || *p == '\t')
			continue;
		if (nb == sizeof(b64)) {
			*why = "not a P-384 public key (too long)";
			return SG_EPARSE;
		}
		b64[nb++] = *p;
	}
	int n = sg_b64_decode(der, sizeof(der), b64, nb, false);
	if (n != (int)(sizeof(spki_p384) + 2 * TLS_TOKEN_COORD) ||
	    memcmp(der, spki_p384, sizeof(spki_p384)) != 0) {
		*why = "not an uncompressed P-384 public key";
		return SG_EPARSE;
	}
	memcpy(k->x, der + sizeof(spki_p384), TLS_TOKEN_COORD);
	memcpy(k->y, der + sizeof(spki_p384) + TLS_TOKEN_COORD, TLS_TOKEN_COORD);
	return 0;
}

/* ---- a flat JSON object ------------------------------------------------------------------- */

/* The header and the claims are flat objects of strings and integers (the server writes them
 * with jansson, compact). This reader takes exactly that: no nesting, no arrays, no \u escapes
 * (none of our values needs one), bounded lengths, no duplicate keys; unknown keys are skipped.
 * Strings are unescaped into the caller's buffer. */
struct jfield {
	const char *name;
	char *str; /* a string into str (cap bytes with its NUL), or an integer into num */
	size_t cap;
	int64_t *num;
	bool seen;
};

#define JKEY_MAX 32
#define JVAL_MAX 128

static size_t jws(const char *s, size_t i, size_t n)
{
	while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	return i;
}

/* A string at s[*i] (the opening quote) into out (cap bytes); false if malformed or too long. */
static bool jstring(const char *s, size_t n, size_t *i, char *out, size_t cap)
{
	size_t o = 0, j = *i;

	if (j >= n || s[j] != '"')
		return false;
	for (j++; j < n && s[j] != '"'; j++) {
		char ch = s[j];
		if ((unsigned char)ch < 0x20)
			return false;
		if (ch == '\\') {
			if (++j >= n)
				return false;
			switch (s[j]) {
			case '"':
				ch = '"';
				break;
			case '\\':
				ch = '\\';
				break;
			case '/':
				ch = '/';
				break;
			case 'b':
				ch = '\b';
				break;
			case 'f':
				ch = '\f';
				break;
			case 'n':
				ch = '\n';
				break;
			case 'r':
				ch = '\r';
				break;
			case 't':
				ch = '\t';
				break;
			default:
				return false; /* \u: not in our tokens */
			}
		}
		if (o + 1 >= cap)
			return false;
		out[o++] = ch;
	}
	if (j >= n)
		return false;
	out[o] = 0;
	*i = j + 1;
	return true;
}

/* An integer (optional minus, 1..18 digits, no leading zeros) at s[*i]. */
static bool jint(const char *s, size_t n, size_t *i, int64_t *out)
{
	size_t j = *i, digits = 0;
	bool neg = false;
	int64_t v = 0;

	if (j < n && s[j] == '-') {
		neg = true;
		j++;
	}
	if (j < n && s[j] == '0' && j + 1 < n && s[j + 1] >= '0' && s[j + 1] <= '9')
		return false;
	for (; j < n && s[j] >= '0' && s[j] <= '9'; j++) {
		if (++digits > 18)
			return false;
		v = v * 10 + (s[j] - '0');
	}
	if (digits == 0)
		return false;
	*out = neg ? -v : v;
	*i = j;
	return true;
}

static bool jobject(const char *s, size_t n, struct jfield *f, size_t nf)
{
	char key[JKEY_MAX], skip[JVAL_MAX];
	size_t i = jws(s, 0, n);
	unsigned members = 0;

	if (i >= n || s[i++] != '{')
		return false;
	i = jws(s, i, n);
	if (i < n && s[i] == '}')
		return jws(s, i + 1, n) == n;
	for (;;) {
		struct jfield *hit = NULL;

		if (++members > 32 || !jstring(s, n, &i, key, sizeof(key)))
			return false;
		i = jws(s, i, n);
		if (i >= n || s[i++] != ':')
			return false;
		i = jws(s, i, n);
		for (size_t k = 0; k < nf && !hit; k++)
			if (!strcmp(f[k].name, key))
				hit = &f[k];
		if (hit && hit->seen)
			return false; /* a duplicate: which one would a reader take? */
		if (i >= n)
			return false;
		if (s[i] == '"') {
			if (hit && !hit->str)
				return false;
			if (!jstring(s, n, &i, hit ? hit->str : skip,
				     hit ? hit->cap : sizeof(skip)))
				return false;
		} else {
			int64_t v;
			if (hit && !hit->num)
				return false;
			if (!jint(s, n, &i, &v))
				return false;
			if (hit)
				*hit->num = v;
		}
		if (hit)
			hit->seen = true;
		i = jws(s, i, n);
		if (i >= n)
			return false;
		if (s[i] == '}')
			return jws(s, i + 1, n) == n;
		if (s[i++] != ',')
			return false;
		i = jws(s, i, n);
	}
}

/* ---- verification ------------------------------------------------------------------------- */

static int refuse(struct tls_token_claims *c, const char **why, const char *reason, int ret)
{
	memset(c, 0, sizeof(*c));
	*why = reason;
	return ret;
}

int tls_token_verify(const uint8_t *tok, size_t len, const struct tls_token_key *k, int64_t now,
		     struct tls_token_claims *c, const char **why)
{
	const char *s = (const char *)tok;
	const char *d1, *d2;
	uint8_t sig[SG_ES384_SIG_LEN + 3], hdr[512], body[2048], cpk[TLS_TOKEN_KEY_LEN + 3];
	char alg[16], typ[32], kid[96], iss[256], cpk64[64];
	int hl, bl, sl;

	memset(c, 0, sizeof(*c));
	if (len == 0 || len > TLS_TOKEN_MAX)
		return refuse(c, why, "malformed session token (length)", SG_EPARSE);
	d1 = memchr(s, '.', len);
	d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - s)) : NULL;
	if (!d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - s)))
		return refuse(c, why, "malformed session token (not a compact JWS)", SG_EPARSE);
	/* The signature before anything else is read: unsigned bytes reach no parser. */
	sl = sg_b64_decode(sig, sizeof(sig), d2 + 1, len - (size_t)(d2 + 1 - s), true);
	if (sl != SG_ES384_SIG_LEN)
		return refuse(c, why, "malformed session token (signature)", SG_EPARSE);
	if (!sg_es384_verify(sig, k->x, k->y, s, (size_t)(d2 - s)))
		return refuse(c, why,
			      "session token signature does not verify (forged, or signed "
			      "by another server: check TlsSessionKey)",
			      SG_EAUTH);
	hl = sg_b64_decode(hdr, sizeof(hdr), s, (size_t)(d1 - s), true);
	bl = sg_b64_decode(body, sizeof(body), d1 + 1, (size_t)(d2 - d1 - 1), true);
	if (hl <= 0 || bl <= 0)
		return refuse(c, why, "malformed session token (base64url)", SG_EPARSE);
	struct jfield h[] = {{"alg", alg, sizeof(alg), NULL, false},
			     {"typ", typ, sizeof(typ), NULL, false},
			     {"kid", kid, sizeof(kid), NULL, false}};
	if (!jobject((const char *)hdr, (size_t)hl, h, SG_ARRAY_LEN(h)) || !h[0].seen || !h[1].seen)
		return refuse(c, why, "malformed session token (header)", SG_EPARSE);
	if (strcmp(alg, "ES384") || strcmp(typ, TLS_TOKEN_TYP))
		return refuse(c, why, "not a session token (header alg/typ)", SG_EPARSE);
	struct jfield f[] = {{"cpk", cpk64, sizeof(cpk64), NULL, false},
			     {"sid", c->sid, sizeof(c->sid), NULL, false},
			     {"sub", c->sub, sizeof(c->sub), NULL, false},
			     {"net", c->net, sizeof(c->net), NULL, false},
			     {"nbf", NULL, 0, &c->nbf, false},
			     {"exp", NULL, 0, &c->exp, false},
			     {"iat", NULL, 0, &c->iat, false},
			     {"iss", iss, sizeof(iss), NULL, false}};
	if (!jobject((const char *)body, (size_t)bl, f, SG_ARRAY_LEN(f)))
		return refuse(c, why, "malformed session token (claims)", SG_EPARSE);
	for (size_t i = 0; i < SG_ARRAY_LEN(f); i++)
		if (!f[i].seen)
			return refuse(c, why, "session token lacks a claim", SG_EPARSE);
	if (sg_b64_decode(cpk, sizeof(cpk), cpk64, strlen(cpk64), false) != TLS_TOKEN_KEY_LEN ||
	    !c->sid[0])
		return refuse(c, why, "malformed session token (cpk or sid)", SG_EPARSE);
	memcpy(c->client_key, cpk, sizeof(c->client_key));
	if (now >= c->exp)
		return refuse(c, why, "session token expired", SG_ESTALE);
	if (now < c->nbf - TLS_TOKEN_LEEWAY_S)
		return refuse(c, why, "session token not yet valid (clocks apart?)", SG_ESTALE);
	return 0;
}
