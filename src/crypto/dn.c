/* Distinguished names (pki.h): strongSwan's text form to DER and back, and the comparison of a
 * configured DN (with "*" wildcards) with one a peer sends. Over OpenSSL's X509_NAME, behind the
 * crypto boundary with the rest of X.509.
 *
 * The text form is the one swanctl.conf identities use (strongSwan's identification.c: "C=CH,
 * O=strongSwan, CN=moon", or "/C=CH/O=strongSwan/CN=moon" when it starts with a slash): RDNs in
 * the order written (the order of the DER SEQUENCE), attribute names from the table below
 * (case-insensitive), spaces around names and values ignored, no escapes (a value cannot hold
 * the separator). Values are encoded as strongSwan encodes them, so the DER is byte for byte
 * the one charon would send: PrintableString when every character is in its set (X.680 41.4),
 * else UTF8String; IA5String for e-mail addresses and unstructuredName.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include <secureguard/sg_errors.h>

#include "crypto/pki.h"

struct rdn_name {
	const char *name;
	const char *oid;
	bool ia5;
};

/* strongSwan's x501rdns table (names, OIDs, string types); the first name of an OID is the one
 * printed. */
static const struct rdn_name rdn_names[] = {
    {"ND", "0.2.262.1.10.7.20", false},
    {"UID", "0.9.2342.19200300.100.1.1", false},
    {"DC", "0.9.2342.19200300.100.1.25", false},
    {"CN", "2.5.4.3", false},
    {"SN", "2.5.4.4", false},
    {"serialNumber", "2.5.4.5", false},
    {"C", "2.5.4.6", false},
    {"L", "2.5.4.7", false},
    {"ST", "2.5.4.8", false},
    {"STREET", "2.5.4.9", false},
    {"O", "2.5.4.10", false},
    {"OU", "2.5.4.11", false},
    {"T", "2.5.4.12", false},
    {"D", "2.5.4.13", false},
    {"postalAddress", "2.5.4.16", false},
    {"postalCode", "2.5.4.17", false},
    {"N", "2.5.4.41", false},
    {"G", "2.5.4.42", false},
    {"I", "2.5.4.43", false},
    {"dnQualifier", "2.5.4.46", false},
    {"dmdName", "2.5.4.54", false},
    {"pseudonym", "2.5.4.65", false},
    {"ID", "2.5.4.45", false},
    {"EN", "2.16.840.1.113730.3.1.3", false},
    {"employeeNumber", "2.16.840.1.113730.3.1.3", false},
    {"E", "1.2.840.113549.1.9.1", true},
    {"Email", "1.2.840.113549.1.9.1", true},
    {"emailAddress", "1.2.840.113549.1.9.1", true},
    {"UN", "1.2.840.113549.1.9.2", true},
    {"unstructuredName", "1.2.840.113549.1.9.2", true},
    {"UA", "1.2.840.113549.1.9.8", false},
    {"unstructuredAddress", "1.2.840.113549.1.9.8", false},
};

#define DN_MAX_RDNS 32

static bool printable(const char *s, size_t n)
{
	static const char set[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 "
				  "'()+,-./:=?";
	for (size_t i = 0; i < n; i++)
		if (!s[i] || !strchr(set, s[i]))
			return false;
	return true;
}

/* Well-formed UTF-8 without NUL (RFC 3629), for a UTF8String value taken as it is written. */
static bool utf8_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		size_t k = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2
				    : (c & 0xf8) == 0xf0   ? 3
							   : 9;
		if (!c || k > 3 || i + k >= n || (k == 1 && c < 0xc2))
			return false;
		for (size_t j = 1; j <= k; j++)
			if (((unsigned char)s[i + j] & 0xc0) != 0x80)
				return false;
		i += k + 1;
	}
	return true;
}

static const struct rdn_name *rdn_by_name(const char *s, size_t n)
{
	for (size_t i = 0; i < SG_ARRAY_LEN(rdn_names); i++)
		if (strlen(rdn_names[i].name) == n && !strncasecmp(rdn_names[i].name, s, n))
			return &rdn_names[i];
	return NULL;
}

static bool add_rdn(X509_NAME *name, const struct rdn_name *r, const char *v, size_t n)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(r->oid, 1);
	int type = r->ia5 ? V_ASN1_IA5STRING : printable(v, n) ? V_ASN1_PRINTABLESTRING
							       : V_ASN1_UTF8STRING;
	/* A type without the MBSTRING flag is taken as it is: the bytes are the value. */
	bool ok = obj && X509_NAME_add_entry_by_OBJ(name, obj, type, (const unsigned char *)v,
						    (int)n, -1, 0) == 1;
	ASN1_OBJECT_free(obj);
	return ok;
}

int sg_dn_from_text(const char *s, uint8_t *der, size_t cap, size_t *len, const char **why)
{
	static const char *dummy;
	if (!why)
		why = &dummy;
	X509_NAME *name = X509_NAME_new();
	int rc = SG_EINVAL, count = 0;
	char sep = *s == '/' ? '/' : ',';
	if (!name) {
		*why = "out of memory";
		return SG_ENOMEM;
	}
	if (sep == '/')
		s++;
	while (*s) {
		while (*s == ' ')
			s++;
		if (!*s)
			break;
		const char *k = s;
		while (*s && *s != '=' && *s != ' ' && *s != sep)
			s++;
		size_t kn = (size_t)(s - k);
		while (*s == ' ')
			s++;
		if (*s != '=' || !kn) {
			*why = "a DN part is not name=value";
			goto out;
		}
		const struct rdn_name *r = rdn_by_name(k, kn);
		if (!r) {
			*why = "unknown attribute in the DN (C, ST, L, O, OU, CN, E, DC, UID, SN, "
			       "serialNumber, ... as strongSwan names them)";
			goto out;
		}
		for (s++; *s == ' ' || *s == '='; s++)
			;
		const char *v = s;
		while (*s && *s != sep)
			s++;
		size_t vn = (size_t)(s - v);
		while (vn && v[vn - 1] == ' ')
			vn--;
		if (*s == sep)
			s++;
		if (++count > DN_MAX_RDNS) {
			*why = "more than 32 parts in the DN";
			goto out;
		}
		if (!vn) {
			*why = "an empty value in the DN";
			goto out;
		}
		if (!utf8_ok(v, vn)) {
			*why = "a DN value that is not UTF-8";
			goto out;
		}
		if (!add_rdn(name, r, v, vn)) {
			*why = "a DN value that cannot be encoded";
			goto out;
		}
	}
	if (!count) {
		*why = "an empty DN";
		goto out;
	}
	unsigned char *p = NULL;
	int n = i2d_X509_NAME(name, &p);
	if (n <= 0 || (size_t)n > cap) {
		*why = n <= 0 ? "a DN that cannot be encoded" : "the DN is too long";
		OPENSSL_free(p);
		rc = SG_ERANGE;
		goto out;
	}
	memcpy(der, p, (size_t)n);
	*len = (size_t)n;
	OPENSSL_free(p);
	rc = 0;
out:
	X509_NAME_free(name);
	ERR_clear_error();
	return rc;
}

static X509_NAME *dn_parse(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	if (!len || len > 65535)
		return NULL;
	X509_NAME *n = d2i_X509_NAME(NULL, &p, (long)len);
	if (n && p != der + len) {
		X509_NAME_free(n);
		n = NULL;
	}
	ERR_clear_error();
	return n;
}

static const char *rdn_label(const ASN1_OBJECT *obj, char *buf, size_t size)
{
	char oid[80];
	if (OBJ_obj2txt(oid, sizeof(oid), obj, 1) <= 0)
		return "?";
	for (size_t i = 0; i < SG_ARRAY_LEN(rdn_names); i++)
		if (!strcmp(rdn_names[i].oid, oid))
			return rdn_names[i].name;
	snprintf(buf, size, "%s", oid);
	return buf;
}

const char *sg_dn_to_text(const uint8_t *der, size_t len, char *buf, size_t size)
{
	X509_NAME *n = dn_parse(der, len);
	size_t at = 0;
	if (!size)
		return buf;
	buf[0] = 0;
	if (!n) {
		snprintf(buf, size, "(invalid DN)");
		return buf;
	}
	for (int i = 0; i < X509_NAME_entry_count(n); i++) {
		const X509_NAME_ENTRY *e = X509_NAME_get_entry(n, i);
		const ASN1_STRING *v = X509_NAME_ENTRY_get_data(e);
		char lb[80];
		const char *label = rdn_label(X509_NAME_ENTRY_get_object(e), lb, sizeof(lb));
		unsigned char *u = NULL;
		int ul = ASN1_STRING_to_UTF8(&u, v);
		int w = snprintf(buf + at, size - at, "%s%s=%.*s", i ? ", " : "", label,
				 ul > 0 ? ul : 0, ul > 0 ? (const char *)u : "");
		OPENSSL_free(u);
		if (w < 0 || (size_t)w >= size - at)
			break;
		at += (size_t)w;
	}
	/* Control characters never reach a log line. */
	for (size_t i = 0; buf[i]; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = '?';
	X509_NAME_free(n);
	ERR_clear_error();
	return buf;
}

static bool value_eq(const ASN1_STRING *a, const ASN1_STRING *b)
{
	unsigned char *ua = NULL, *ub = NULL;
	int la = ASN1_STRING_to_UTF8(&ua, a), lb = ASN1_STRING_to_UTF8(&ub, b);
	/* strongSwan's rdn_equals: case-insensitive (ASCII) for text, as X.520 matching rules
	 * mostly are; other bytes compared exactly. */
	bool eq = la >= 0 && la == lb && !strncasecmp((const char *)ua, (const char *)ub, (size_t)la);
	OPENSSL_free(ua);
	OPENSSL_free(ub);
	return eq;
}

bool sg_dn_match(const uint8_t *pattern, size_t plen, const uint8_t *dn, size_t len,
		 unsigned *wildcards)
{
	X509_NAME *p = dn_parse(pattern, plen), *d = dn_parse(dn, len);
	unsigned wc = 0;
	bool ok = p && d && X509_NAME_entry_count(p) == X509_NAME_entry_count(d);
	for (int i = 0; ok && i < X509_NAME_entry_count(p); i++) {
		const X509_NAME_ENTRY *pe = X509_NAME_get_entry(p, i), *de = X509_NAME_get_entry(d, i);
		const ASN1_STRING *pv = X509_NAME_ENTRY_get_data(pe);
		ok = !OBJ_cmp(X509_NAME_ENTRY_get_object(pe), X509_NAME_ENTRY_get_object(de)) &&
		     X509_NAME_ENTRY_set(pe) == X509_NAME_ENTRY_set(de);
		if (!ok)
			break;
		if (ASN1_STRING_length(pv) == 1 && ASN1_STRING_get0_data(pv)[0] == '*') {
			wc++;
			continue;
		}
		ok = value_eq(pv, X509_NAME_ENTRY_get_data(de));
	}
	X509_NAME_free(p);
	X509_NAME_free(d);
	ERR_clear_error();
	if (ok && wildcards)
		*wildcards = wc;
	return ok;
}

bool sg_dn_valid(const uint8_t *der, size_t len)
{
	X509_NAME *n = dn_parse(der, len);
	X509_NAME_free(n);
	return n != NULL;
}
