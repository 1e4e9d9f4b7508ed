/* License keys: parsing, canonical form, ECDSA P-384 verification and signing (license.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/b64.h"
#include "crypto/crypto.h"
#include "secureguard/sg_errors.h"
#include "server/audit.h"
#include "server/license.h"
#include "server/srv_int.h"

#define HEAD "SecureGuard license v1"

/* The vendor's public key (x || y, hex), overridden by CMake's SG_LICENSE_VENDOR_KEY. Its
 * private half stays with the vendor, never in this repository. */
#ifndef SG_LICENSE_VENDOR_KEY
#define SG_LICENSE_VENDOR_KEY                                                                      \
	"377ef28fec41d0081914f8be50e3eddccecd95446fc6f8eb63eeeb9ae2a277fe9d4d93729def341cb96b01cd0f" \
	"cc7d1889b6adb7fe06baa80477f6bd66e50ee05099180883ccbe2a88e575a49937f9fdfcea081cb872afd61e47" \
	"b9a055b538aa"
#endif
/* The test key's public half; its private half is tests/license/test-vendor.key, public on
 * purpose. Only a build configured with SG_LICENSE_TEST_KEY=ON (make check) accepts it. */
#define TEST_KEY                                                                                   \
	"4342ddb4d12a42377f19843be840dc332f95ca958e00cb2c26eb7ade9a75d8eaf53f4ed923d890b125ca75fe47" \
	"870119dd4dbbb71e418f5ec67d0724b8f1d03d6bcc32eebe3f35cb23ef36c823ddebb44034fbc3f1fa84c0411869" \
	"b6ee32eafc"

#ifndef SG_LICENSE_TEST_KEY
#define SG_LICENSE_TEST_KEY 0
#endif

bool srv_license_test_build(void)
{
	return SG_LICENSE_TEST_KEY;
}

static bool unhex(uint8_t *out, size_t n, const char *hex)
{
	if (strlen(hex) != 2 * n)
		return false;
	for (size_t i = 0; i < n; i++) {
		int hi = srv_hexval(hex[2 * i]), lo = srv_hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

void srv_license_time(char out[21], int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (!gmtime_r(&tt, &tm) || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 1970)
		snprintf(out, 21, "(out of range)");
	else
		strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* RFC 3339 UTC to the second; refused unless writing it out again gives the same text (so
 * 2027-02-30 and 24:00:00 are refused, not normalised). */
static bool parse_time(const char *s, int64_t *out)
{
	struct tm tm = {0};
	char again[21];
	const char *end;
	time_t t;

	if (strlen(s) != 20)
		return false;
	end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!end || *end)
		return false;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return false;
	srv_license_time(again, (int64_t)t);
	if (strcmp(again, s))
		return false;
	*out = (int64_t)t;
	return true;
}

static bool name_char(char c, bool lower_only)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
	       (!lower_only && ((c >= 'A' && c <= 'Z') || c == '.' || c == '_'));
}

static bool valid_id(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!name_char(s[i], false))
			return false;
	return true;
}

static bool valid_customer(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > 128 || s[0] == ' ' || s[n - 1] == ' ' || !sg_utf8_valid(s, n))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	/* C1 controls (U+0080..U+009F) are 0xC2 0x80..0x9F in UTF-8 */
	for (size_t i = 0; i + 1 < n; i++)
		if ((unsigned char)s[i] == 0xc2 && (unsigned char)s[i + 1] < 0xa0)
			return false;
	return true;
}

static bool parse_seats(const char *s, int64_t *out)
{
	size_t n = strlen(s);
	int64_t v = 0;

	if (!n || n > 8 || s[0] == '0')
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	if (v > 10000000)
		return false;
	*out = v;
	return true;
}

static bool parse_features(const char *s, struct srv_license *l)
{
	l->nfeatures = 0;
	while (*s) {
		size_t n = strcspn(s, ",");

		if (!n || n > 32 || l->nfeatures == SRV_LICENSE_MAX_FEATURES)
			return false;
		for (size_t i = 0; i < n; i++)
			if (!name_char(s[i], true))
				return false;
		memcpy(l->features[l->nfeatures], s, n);
		l->features[l->nfeatures][n] = 0;
		if (l->nfeatures &&
		    strcmp(l->features[l->nfeatures - 1], l->features[l->nfeatures]) >= 0)
			return false; /* ascending, no repeats: one spelling of a set */
		l->nfeatures++;
		s += n;
		if (*s == ',' && !*++s)
			return false; /* a trailing comma */
	}
	return true;
}

size_t srv_license_canonical(const struct srv_license *l, char *out, size_t cap)
{
	char nb[21], ex[21], feat[SRV_LICENSE_MAX_FEATURES * 34 + 1] = "";
	size_t off = 0;
	int n;

	for (int i = 0; i < l->nfeatures; i++) {
		off += (size_t)snprintf(feat + off, sizeof(feat) - off, "%s%s", i ? "," : "",
					l->features[i]);
	}
	srv_license_time(nb, l->not_before);
	srv_license_time(ex, l->expiry);
	n = snprintf(out, cap,
		     HEAD "\nid: %s\ncustomer: %s\nseats: %lld\nfeatures: %s\nnot_before: %s\n"
			  "expiry: %s\n",
		     l->id, l->customer, (long long)l->seats, feat, nb, ex);
	return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

/* One "key: value" line at *p into val (cap bytes); moves *p past its newline. */
static bool take_line(const char **p, const char *end, const char *key, char *val, size_t cap)
{
	size_t kl = strlen(key);
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	size_t vl;

	if (!nl || (size_t)(nl - *p) < kl + 2 || memcmp(*p, key, kl) || (*p)[kl] != ':' ||
	    (*p)[kl + 1] != ' ')
		return false;
	vl = (size_t)(nl - *p) - kl - 2;
	if (vl >= cap || memchr(*p + kl + 2, 0, vl))
		return false;
	memcpy(val, *p + kl + 2, vl);
	val[vl] = 0;
	*p = nl + 1;
	return true;
}

int srv_license_parse(const char *buf, size_t len, struct srv_license *l, const char **why)
{
	const char *p = buf, *end = buf + len;
	char v[SRV_LICENSE_MAX_FEATURES * 34 + 1], canon[SRV_LICENSE_MAX_BYTES];
	size_t cl;
	int dec;

	memset(l, 0, sizeof(*l));
	if (len > SRV_LICENSE_MAX_BYTES) {
		*why = "longer than 4096 bytes";
		return SG_EPARSE;
	}
	if (len < sizeof(HEAD) || memcmp(buf, HEAD "\n", sizeof(HEAD))) {
		*why = "line 1: expected \"" HEAD "\"";
		return SG_EPARSE;
	}
	p += sizeof(HEAD);
	if (!take_line(&p, end, "id", l->id, sizeof(l->id)) || !valid_id(l->id)) {
		*why = "line 2: expected id: and 1-64 of A-Z a-z 0-9 . _ -";
		return SG_EPARSE;
	}
	if (!take_line(&p, end, "customer", l->customer, sizeof(l->customer)) ||
	    !valid_customer(l->customer)) {
		*why = "line 3: expected customer: and 1-128 bytes of UTF-8 text";
		return SG_EPARSE;
	}
	if (!take_line(&p, end, "seats", v, sizeof(v)) || !parse_seats(v, &l->seats)) {
		*why = "line 4: expected seats: and a number from 1 to 10000000";
		return SG_EPARSE;
	}
	if (!take_line(&p, end, "features", v, sizeof(v)) || !parse_features(v, l)) {
		*why = "line 5: expected features: and up to 16 names of a-z 0-9 -, comma-separated "
		       "and in ascending order";
		return SG_EPARSE;
	}
	if (!take_line(&p, end, "not_before", v, sizeof(v)) || !parse_time(v, &l->not_before)) {
		*why = "line 6: expected not_before: and a UTC time as 2026-12-01T00:00:00Z";
		return SG_EPARSE;
	}
	if (!take_line(&p, end, "expiry", v, sizeof(v)) || !parse_time(v, &l->expiry)) {
		*why = "line 7: expected expiry: and a UTC time as 2027-12-01T00:00:00Z";
		return SG_EPARSE;
	}
	if (l->expiry <= l->not_before) {
		*why = "line 7: the expiry must come after not_before";
		return SG_EPARSE;
	}
	l->canon_len = (size_t)(p - buf);
	if (!take_line(&p, end, "signature", v, sizeof(v)) || strlen(v) != 128 ||
	    (dec = sg_b64_decode(l->sig, sizeof(l->sig), v, 128, false)) != (int)sizeof(l->sig)) {
		*why = "line 8: expected signature: and 128 base64 characters (96 bytes)";
		return SG_EPARSE;
	}
	if (p != end) {
		*why = "line 9: unexpected text after the signature";
		return SG_EPARSE;
	}
	/* Every field took one spelling only, so the canonical form is the file's text. */
	cl = srv_license_canonical(l, canon, sizeof(canon));
	if (cl != l->canon_len || memcmp(canon, buf, cl)) {
		*why = "not in canonical form";
		return SG_EPARSE;
	}
	return 0;
}

static bool verify_with(const struct srv_license *l, const char *hex, const char *canon)
{
	uint8_t xy[2 * SG_P384_COORD_LEN];

	return unhex(xy, sizeof(xy), hex) &&
	       sg_es384_verify(l->sig, xy, xy + SG_P384_COORD_LEN, canon, l->canon_len);
}

int srv_license_verify(struct srv_license *l, const char **why)
{
	char canon[SRV_LICENSE_MAX_BYTES];

	l->test_key = false;
	if (srv_license_canonical(l, canon, sizeof(canon)) != l->canon_len) {
		*why = "not in canonical form";
		return SG_EAUTH;
	}
	if (verify_with(l, SG_LICENSE_VENDOR_KEY, canon))
		return 0;
	if (verify_with(l, TEST_KEY, canon)) {
		if (!SG_LICENSE_TEST_KEY) {
			*why = "signed by the test key, which only test builds accept";
			return SG_EAUTH;
		}
		l->test_key = true;
		return 0;
	}
	*why = "the signature does not verify: the file was altered, or it was not signed by "
	       "SecureGuard's license key";
	return SG_EAUTH;
}

/* The whole of a small file (at most cap - 1 bytes), NUL-terminated. */
static int read_all(const char *path, char *buf, size_t cap, size_t *len, char *err,
		    size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t got = 0;
	ssize_t n;

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return SG_EIO;
	}
	while (got < cap && (n = read(fd, buf + got, cap - got)) > 0)
		got += (size_t)n;
	close(fd);
	if (got == cap) {
		snprintf(err, errlen, "%s: longer than %zu bytes", path, cap - 1);
		return SG_EPARSE;
	}
	buf[got] = 0;
	*len = got;
	return 0;
}

int srv_license_load(const char *path, struct srv_license *l, char *err, size_t errlen)
{
	char buf[SRV_LICENSE_MAX_BYTES + 1];
	const char *why;
	size_t len;
	int rc;

	rc = read_all(path, buf, sizeof(buf), &len, err, errlen);
	if (rc)
		return rc;
	rc = srv_license_parse(buf, len, l, &why);
	if (!rc)
		rc = srv_license_verify(l, &why);
	if (rc)
		snprintf(err, errlen, "license %s: %s", path, why);
	return rc;
}

int srv_license_sign(struct srv_license *l, const char *key_file, char *out, size_t cap,
		     char *err, size_t errlen)
{
	char hex[2 * SG_P384_PRIV_LEN + 2], b64[129];
	uint8_t priv[SG_P384_PRIV_LEN];
	struct srv_license check;
	const char *why;
	size_t len, n;
	int rc;

	rc = read_all(key_file, hex, sizeof(hex), &len, err, errlen);
	if (rc)
		goto out;
	if (len && hex[len - 1] == '\n')
		hex[--len] = 0;
	if (!unhex(priv, sizeof(priv), hex)) {
		snprintf(err, errlen, "%s: expected 96 hex digits (a P-384 scalar)",
			 key_file);
		rc = SG_EPARSE;
		goto out;
	}
	n = srv_license_canonical(l, out, cap);
	if (!n || n + 12 + 128 + 1 >= cap || !sg_es384_sign(l->sig, priv, out, n)) {
		snprintf(err, errlen, "signing failed");
		rc = SG_ECRYPTO;
		goto out;
	}
	sg_b64_encode(b64, l->sig, sizeof(l->sig), false);
	snprintf(out + n, cap - n, "signature: %s\n", b64);
	/* What was written must read back: the fields were in range and in canonical form. */
	if (srv_license_parse(out, strlen(out), &check, &why)) {
		snprintf(err, errlen, "the fields do not make a valid license: %s", why);
		rc = SG_EINVAL;
	}
out:
	sg_memzero(hex, sizeof(hex));
	sg_memzero(priv, sizeof(priv));
	return rc;
}

enum srv_license_state srv_license_state(const struct srv_license *l, int64_t now,
					 int64_t *client_limit)
{
	enum srv_license_state st;

	if (!l)
		st = SRV_LIC_NONE;
	else if (now < l->not_before)
		st = SRV_LIC_EARLY;
	else if (now < l->expiry)
		st = SRV_LIC_VALID;
	else if (now < l->expiry + SRV_LICENSE_GRACE_SECS)
		st = SRV_LIC_GRACE;
	else
		st = SRV_LIC_EXPIRED;
	*client_limit = (st == SRV_LIC_VALID || st == SRV_LIC_GRACE) && l->seats > SRV_FREE_CLIENTS
			    ? l->seats
			    : SRV_FREE_CLIENTS;
	return st;
}

const char *srv_license_state_name(enum srv_license_state st)
{
	switch (st) {
	case SRV_LIC_VALID:
		return "valid";
	case SRV_LIC_EARLY:
		return "not_yet_valid";
	case SRV_LIC_GRACE:
		return "grace";
	case SRV_LIC_EXPIRED:
		return "expired";
	default:
		return "none";
	}
}
