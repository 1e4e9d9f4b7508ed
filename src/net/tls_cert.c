/* Certificates for the TLS transport; see tls_cert.h. */
#include "net/tls_cert.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <secureguard/sg_errors.h>

#include "common/file.h"
#include "crypto/crypto.h"
#include "crypto/hsm.h"

#define SAN_MAX 4096

static void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

const char *tls_ossl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *s = e ? ERR_reason_error_string(e) : NULL;
	return s ? s : "unknown OpenSSL error";
}

static bool valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > SG_TLS_CERT_NAME_MAX || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* A DNS name for a SAN (RFC 5280 section 4.2.1.6, preferred name syntax of RFC 1034, with a
 * leading "*." wildcard allowed): labels of letters, digits and hyphens, 1..63 each, 253 in all. */
static bool valid_dns(const char *s)
{
	size_t n = strlen(s), label = 0;
	if (n == 0 || n > 253)
		return false;
	if (s[0] == '*' && s[1] == '.')
		s += 2;
	for (; *s; s++) {
		char c = *s;
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-'))
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0;
}

/* Opens a new file (never an existing one) with the given mode. */
static FILE *create_file(const char *path, mode_t mode, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0) {
		errf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	/* The umask may have taken bits off, never added any: make the mode exact. */
	(void)fchmod(fd, mode);
	FILE *f = fdopen(fd, "w");
	if (!f) {
		errf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
	}
	return f;
}

/* Creates <dir>/<name><ext> (never an existing file) with the mode; path gets its name. */
static FILE *create_in(const char *dir, const char *name, const char *ext, mode_t mode,
		       char path[4096], char *err, size_t errlen)
{
	int n = snprintf(path, 4096, "%s/%s%s", dir, name, ext);
	if (n < 0 || n >= 4096) {
		errf(err, errlen, "%s: path too long", dir);
		return NULL;
	}
	return create_file(path, mode, err, errlen);
}

static int write_pem(const char *dir, const char *name, const char *ext, EVP_PKEY *key, X509 *x,
		     char *err, size_t errlen)
{
	char path[4096];
	FILE *f = create_in(dir, name, ext, key ? 0600 : 0644, path, err, errlen);
	if (!f)
		return SG_EIO;
	int ok =
	    key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(f, x);
	if (fclose(f) != 0)
		ok = 0;
	if (!ok) {
		errf(err, errlen, "%s: write failed", path);
		(void)unlink(path);
		return SG_EIO;
	}
	return 0;
}

/* <dir>/<name><ext> holding text and a newline (0644: a key URI is no secret). */
static int write_text(const char *dir, const char *name, const char *ext, const char *text,
		      char *err, size_t errlen)
{
	char path[4096];
	FILE *f = create_in(dir, name, ext, 0644, path, err, errlen);
	if (!f)
		return SG_EIO;
	bool ok = fprintf(f, "%s\n", text) > 0;
	if (fclose(f) != 0 || !ok) {
		errf(err, errlen, "%s: write failed", path);
		(void)unlink(path);
		return SG_EIO;
	}
	return 0;
}

static int ensure_dir(const char *dir, char *err, size_t errlen)
{
	struct stat st;
	if (mkdir(dir, 0700) == 0)
		return 0;
	if (errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	errf(err, errlen, "%s: %s", dir, errno == EEXIST ? "not a directory" : strerror(errno));
	return SG_EIO;
}

static int add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value, char *err, size_t errlen)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, v3, nid, value);
	if (!e || X509_add_ext(x, e, -1) != 1) {
		X509_EXTENSION_free(e);
		errf(err, errlen, "extension %s=%s: %s", OBJ_nid2sn(nid), value, tls_ossl_reason());
		return SG_ECRYPTO;
	}
	X509_EXTENSION_free(e);
	return 0;
}

/* "DNS:a,DNS:b,IP:192.0.2.1": every entry checked first, so nothing in it can add fields. */
static int build_san(const struct sg_tls_cert_req *req, char *san, size_t size, char *err,
		     size_t errlen)
{
	size_t pos = 0;
	san[0] = '\0';
	for (size_t i = 0; i < req->n_dns + req->n_ips; i++) {
		bool dns = i < req->n_dns;
		const char *v = dns ? req->dns[i] : req->ips[i - req->n_dns];
		uint8_t ip[16];
		if (dns && !valid_dns(v)) {
			errf(err, errlen, "--dns %s: not a valid DNS name", v);
			return SG_EINVAL;
		}
		if (!dns && inet_pton(AF_INET, v, ip) != 1 && inet_pton(AF_INET6, v, ip) != 1) {
			errf(err, errlen, "--ip %s: not an IPv4 or IPv6 address", v);
			return SG_EINVAL;
		}
		int n = snprintf(san + pos, size - pos, "%s%s:%s", pos ? "," : "",
				 dns ? "DNS" : "IP", v);
		if (n < 0 || (size_t)n >= size - pos) {
			errf(err, errlen, "too many subjectAltName entries");
			return SG_ERANGE;
		}
		pos += (size_t)n;
	}
	return 0;
}

/* Builds and signs one certificate for key: self-signed when issuer is NULL. */
static X509 *make_cert(const struct sg_tls_cert_req *req, EVP_PKEY *key, X509 *issuer,
		       EVP_PKEY *issuer_key, bool ca, const char *propq, char *err, size_t errlen)
{
	X509 *x = X509_new_ex(NULL, propq);
	EVP_MD_CTX *md = NULL;
	BIGNUM *bn = NULL;
	X509V3_CTX v3;
	uint8_t serial[16];
	char san[SAN_MAX];
	bool ok = false;

	if (!x)
		goto out;
	/* RFC 5280 section 4.1.2.2: positive, at most 20 octets; 127 random bits. */
	if (!sg_random_bytes(serial, sizeof(serial))) {
		errf(err, errlen, "no randomness for the serial number");
		goto out;
	}
	serial[0] = (uint8_t)((serial[0] & 0x7f) | 0x40);
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
		goto crypto;
	if (X509_set_version(x, X509_VERSION_3) != 1)
		goto crypto;
	X509_NAME *subject = X509_get_subject_name(x);
	if (X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_UTF8,
				       (const unsigned char *)"SecureGuard", -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
				       (const unsigned char *)req->name, -1, -1, 0) != 1)
		goto crypto;
	if (X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : subject) != 1)
		goto crypto;
	if (!ASN1_TIME_set(X509_getm_notBefore(x), (time_t)req->not_before) ||
	    !ASN1_TIME_set(X509_getm_notAfter(x), (time_t)req->not_after))
		goto crypto;
	if (X509_set_pubkey(x, key) != 1)
		goto crypto;

	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	if (add_ext(x, &v3, NID_basic_constraints,
		    ca ? "critical,CA:TRUE,pathlen:0" : "critical,CA:FALSE", err, errlen) != 0 ||
	    add_ext(x, &v3, NID_key_usage,
		    ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature", err,
		    errlen) != 0 ||
	    add_ext(x, &v3, NID_subject_key_identifier, "hash", err, errlen) != 0 ||
	    add_ext(x, &v3, NID_authority_key_identifier, "keyid:always", err, errlen) != 0)
		goto out;
	if (!ca) {
		if (add_ext(x, &v3, NID_ext_key_usage, "serverAuth,clientAuth", err, errlen) != 0)
			goto out;
		if (build_san(req, san, sizeof(san), err, errlen) != 0)
			goto out;
		if (san[0] == '\0' && valid_dns(req->name))
			snprintf(san, sizeof(san), "DNS:%s", req->name);
		if (san[0] && add_ext(x, &v3, NID_subject_alt_name, san, err, errlen) != 0)
			goto out;
	}
	md = EVP_MD_CTX_new();
	if (!md || EVP_DigestSignInit_ex(md, NULL, "SHA384", NULL, propq, issuer_key, NULL) != 1 ||
	    X509_sign_ctx(x, md) <= 0)
		goto crypto;
	ok = true;
	goto out;
crypto:
	errf(err, errlen, "certificate for %s: %s", req->name, tls_ossl_reason());
out:
	EVP_MD_CTX_free(md);
	BN_free(bn);
	if (!ok) {
		X509_free(x);
		x = NULL;
	}
	return x;
}

static EVP_PKEY *new_key(const char *propq, char *err, size_t errlen)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, propq, "EC", "P-384");
	if (!k)
		errf(err, errlen, "P-384 key generation%s: %s", propq ? " (FIPS provider)" : "",
		     tls_ossl_reason());
	return k;
}

static int check_req(const struct sg_tls_cert_req *req, char *err, size_t errlen)
{
	if (!req->name || !valid_name(req->name)) {
		errf(err, errlen, "name %s: use 1-64 of A-Z a-z 0-9 . _ - (not starting with .)",
		     req->name ? req->name : "(none)");
		return SG_EINVAL;
	}
	if (req->not_after <= req->not_before) {
		errf(err, errlen, "validity: the end must come after the start");
		return SG_EINVAL;
	}
	return 0;
}

/* A new key and a self-signed certificate (a CA when ca), written as <out_dir>/<file>.key and
 * .crt; the key file goes again if the certificate cannot be written. With req->key_uri the key
 * is the token's: no .key is written, <out_dir>/<file>.key-uri names it instead. */
static int make_self_signed(const char *out_dir, const char *file, const struct sg_tls_cert_req *req,
			    bool ca, char *err, size_t errlen)
{
	const char *propq = req->fips ? "fips=yes" : NULL;
	struct sg_hsm_key *hk = NULL;
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	int ret = check_req(req, err, errlen);

	if (ret != 0)
		return ret;
	ERR_clear_error();
	if (req->key_uri) {
		ret = sg_hsm_key_open_env(req->key_uri, &hk, err, errlen);
		if (ret != 0)
			return ret;
		key = sg_hsm_key_pkey(hk);
		EVP_PKEY_up_ref(key);
	}
	ret = SG_ECRYPTO;
	if (!key)
		key = new_key(propq, err, errlen);
	if (!key)
		goto out;
	x = make_cert(req, key, NULL, key, ca, propq, err, errlen);
	if (!x)
		goto out;
	ret = ensure_dir(out_dir, err, errlen);
	if (ret != 0)
		goto out;
	/* Key first: a certificate without its key would be useless. */
	if (hk)
		ret = write_text(out_dir, file, ".key-uri", req->key_uri, err, errlen);
	else
		ret = write_pem(out_dir, file, ".key", key, NULL, err, errlen);
	if (ret == 0) {
		ret = write_pem(out_dir, file, ".crt", NULL, x, err, errlen);
		if (ret != 0) {
			char path[4096];
			snprintf(path, sizeof(path), "%s/%s%s", out_dir, file,
				 hk ? ".key-uri" : ".key");
			(void)unlink(path);
		}
	}
out:
	X509_free(x);
	EVP_PKEY_free(key);
	sg_hsm_key_free(hk);
	ERR_clear_error();
	return ret;
}

int sg_tls_cert_make_ca(const char *out_dir, const struct sg_tls_cert_req *req, char *err,
			size_t errlen)
{
	return make_self_signed(out_dir, "ca", req, true, err, errlen);
}

int sg_tls_cert_self_signed(const char *out_dir, const struct sg_tls_cert_req *req, char *err,
			    size_t errlen)
{
	return make_self_signed(out_dir, req->name, req, false, err, errlen);
}

/* The CA's certificate and key: ca.key, or the token key that ca.key-uri names (then *hk holds
 * it, *key is a reference the caller frees first, and *hk is freed after it). */
static int load_ca(const char *ca_dir, X509 **cert, EVP_PKEY **key, struct sg_hsm_key **hk,
		   char *err, size_t errlen)
{
	char path[4096], uri[SG_HSM_URI_MAX + 2];
	FILE *f;

	*hk = NULL;
	snprintf(path, sizeof(path), "%s/%s", ca_dir, SG_TLS_CA_CERT);
	f = fopen(path, "r");
	if (!f) {
		errf(err, errlen, "%s: %s", path, strerror(errno));
		return SG_ENOENT;
	}
	*cert = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!*cert) {
		errf(err, errlen, "%s: not a PEM certificate: %s", path, tls_ossl_reason());
		return SG_EPARSE;
	}
	snprintf(path, sizeof(path), "%s/%s", ca_dir, SG_TLS_CA_KEY_URI);
	f = fopen(path, "r");
	if (f) {
		bool got = fgets(uri, sizeof(uri), f) != NULL;
		fclose(f);
		uri[got ? strcspn(uri, "\r\n") : 0] = 0;
		if (!sg_hsm_is_uri(uri)) {
			errf(err, errlen, "%s: expected one line, a pkcs11: URI", path);
			return SG_EPARSE;
		}
		int rc = sg_hsm_key_open_env(uri, hk, err, errlen);
		if (rc != 0)
			return rc;
		*key = sg_hsm_key_pkey(*hk);
		EVP_PKEY_up_ref(*key);
	} else {
		snprintf(path, sizeof(path), "%s/%s", ca_dir, SG_TLS_CA_KEY);
		f = fopen(path, "r");
		if (!f) {
			errf(err, errlen, "%s: %s (and no %s)", path, strerror(errno),
			     SG_TLS_CA_KEY_URI);
			return SG_ENOENT;
		}
		*key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
		if (!*key) {
			errf(err, errlen, "%s: not a PEM private key: %s", path, tls_ossl_reason());
			return SG_EPARSE;
		}
	}
	if (X509_check_private_key(*cert, *key) != 1) {
		errf(err, errlen, "%s does not match %s/%s", path, ca_dir, SG_TLS_CA_CERT);
		return SG_EINVAL;
	}
	return 0;
}

int sg_tls_cert_issue(const char *ca_dir, const struct sg_tls_cert_req *req, const char *out_dir,
		      char *err, size_t errlen)
{
	const char *propq = req->fips ? "fips=yes" : NULL;
	X509 *ca = NULL, *x = NULL;
	EVP_PKEY *ca_key = NULL, *key = NULL;
	struct sg_hsm_key *hk = NULL;
	char san[SAN_MAX];
	int ret = check_req(req, err, errlen);

	if (ret != 0)
		return ret;
	ret = build_san(req, san, sizeof(san), err, errlen); /* fail before any file is made */
	if (ret != 0)
		return ret;
	ERR_clear_error();
	ret = load_ca(ca_dir, &ca, &ca_key, &hk, err, errlen);
	if (ret != 0)
		goto out;
	ret = SG_ECRYPTO;
	key = new_key(propq, err, errlen);
	if (!key)
		goto out;
	x = make_cert(req, key, ca, ca_key, false, propq, err, errlen);
	if (!x)
		goto out;
	ret = ensure_dir(out_dir, err, errlen);
	if (ret != 0)
		goto out;
	ret = write_pem(out_dir, req->name, ".key", key, NULL, err, errlen);
	if (ret == 0) {
		ret = write_pem(out_dir, req->name, ".crt", NULL, x, err, errlen);
		if (ret != 0) {
			char path[4096];
			snprintf(path, sizeof(path), "%s/%s.key", out_dir, req->name);
			(void)unlink(path);
		}
	}
out:
	X509_free(x);
	X509_free(ca);
	EVP_PKEY_free(key);
	EVP_PKEY_free(ca_key);
	sg_hsm_key_free(hk);
	ERR_clear_error();
	return ret;
}

/* ---- revocation ----------------------------------------------------------------------------- */

#define REVOKED_MAX	   100000 /* entries in revoked.txt */
#define REVOKED_LINE_MAX   256

struct revoked_entry {
	char serial[41]; /* upper-case hex, at most 20 octets (RFC 5280 section 4.1.2.2) */
	int64_t when;
};

/* Reads ca_dir/revoked.txt (missing: none). Every line is checked; a bad one is an error that
 * names the file and line. *out is malloc'd. */
static int revoked_read(const char *ca_dir, struct revoked_entry **out, int *n, char *err,
			size_t errlen)
{
	char path[4096], line[REVOKED_LINE_MAX + 2];
	struct revoked_entry *v = NULL;
	int cap = 0, lineno = 0;
	FILE *f;

	*out = NULL;
	*n = 0;
	snprintf(path, sizeof(path), "%s/%s", ca_dir, SG_TLS_CA_REVOKED);
	f = fopen(path, "r");
	if (!f)
		return errno == ENOENT ? 0 : (errf(err, errlen, "%s: %s", path, strerror(errno)),
					      SG_EIO);
	while (fgets(line, sizeof(line), f)) {
		char *sp, *end;
		size_t hex;
		long long when;

		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			errf(err, errlen, "%s:%d: line longer than %d characters", path, lineno,
			     REVOKED_LINE_MAX);
			goto bad;
		}
		hex = strspn(line, "0123456789ABCDEF");
		if (hex == 0 || hex > 40 || line[hex] != ' ') {
			errf(err, errlen, "%s:%d: expected an upper-case hex serial number and a space",
			     path, lineno);
			goto bad;
		}
		sp = line + hex + 1;
		errno = 0;
		when = strtoll(sp, &end, 10);
		if (errno || end == sp || when < 0 || (*end != ' ' && *end != '\n' && *end)) {
			errf(err, errlen, "%s:%d: expected the revocation time in Unix seconds", path,
			     lineno);
			goto bad;
		}
		if (*n >= REVOKED_MAX) {
			errf(err, errlen, "%s: more than %d entries", path, REVOKED_MAX);
			goto bad;
		}
		if (*n == cap) {
			struct revoked_entry *nv;

			cap = cap ? cap * 2 : 64;
			nv = realloc(v, (size_t)cap * sizeof(*v));
			if (!nv) {
				errf(err, errlen, "out of memory");
				goto bad;
			}
			v = nv;
		}
		memcpy(v[*n].serial, line, hex);
		v[*n].serial[hex] = 0;
		v[*n].when = when;
		(*n)++;
	}
	if (ferror(f)) {
		errf(err, errlen, "%s: read error", path);
		goto bad;
	}
	fclose(f);
	*out = v;
	return 0;
bad:
	fclose(f);
	free(v);
	*n = 0;
	return SG_EPARSE;
}

static int serial_hex(const ASN1_INTEGER *ai, char out[41], char *err, size_t errlen)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(ai, NULL);
	char *h = bn ? BN_bn2hex(bn) : NULL;
	int ret = 0;

	if (!h || BN_is_negative(bn) || strlen(h) > 40) {
		errf(err, errlen, "unusable serial number");
		ret = SG_EPARSE;
	} else {
		snprintf(out, 41, "%s", h);
	}
	OPENSSL_free(h);
	BN_free(bn);
	return ret;
}

int sg_tls_cert_revoke(const char *ca_dir, const char *cert_file, char serial[41], bool *already,
		       char *err, size_t errlen)
{
	X509 *ca = NULL, *x = NULL;
	EVP_PKEY *ca_key = NULL;
	struct sg_hsm_key *hk = NULL;
	struct revoked_entry *v = NULL;
	char path[4096], cn[SG_TLS_CERT_NAME_MAX + 1] = "";
	int n = 0, ret;
	FILE *f;

	*already = false;
	ret = load_ca(ca_dir, &ca, &ca_key, &hk, err, errlen);
	if (ret != 0)
		goto out;
	f = fopen(cert_file, "r");
	if (!f) {
		errf(err, errlen, "%s: %s", cert_file, strerror(errno));
		ret = SG_ENOENT;
		goto out;
	}
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!x) {
		errf(err, errlen, "%s: not a PEM certificate: %s", cert_file, tls_ossl_reason());
		ret = SG_EPARSE;
		goto out;
	}
	/* Only what this CA issued: a serial number means something only within its issuer. */
	if (X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(ca)) != 0 ||
	    X509_verify(x, X509_get0_pubkey(ca)) != 1) {
		errf(err, errlen, "%s was not issued by the CA in %s", cert_file, ca_dir);
		ret = SG_EINVAL;
		goto out;
	}
	ret = serial_hex(X509_get0_serialNumber(x), serial, err, errlen);
	if (ret != 0)
		goto out;
	(void)X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
	for (char *p = cn; *p; p++)
		if (*p <= ' ' || *p == 0x7f)
			*p = '_';
	ret = revoked_read(ca_dir, &v, &n, err, errlen);
	if (ret != 0)
		goto out;
	for (int i = 0; i < n; i++)
		if (!strcmp(v[i].serial, serial))
			*already = true;
	if (*already)
		goto out;
	snprintf(path, sizeof(path), "%s/%s", ca_dir, SG_TLS_CA_REVOKED);
	{
		int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
		char line[REVOKED_LINE_MAX];
		int len = snprintf(line, sizeof(line), "%s %lld %s\n", serial,
				   (long long)time(NULL), cn[0] ? cn : "-");

		if (fd < 0 || write(fd, line, (size_t)len) != len || fsync(fd) != 0) {
			errf(err, errlen, "%s: %s", path, strerror(errno));
			ret = SG_EIO;
		}
		if (fd >= 0)
			close(fd);
	}
out:
	free(v);
	X509_free(x);
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	sg_hsm_key_free(hk);
	ERR_clear_error();
	return ret;
}

/* The next CRL number (RFC 5280 section 5.2.3: monotonically increasing), kept in crlnumber. */
static int next_crl_number(const char *ca_dir, long long *num, char *err, size_t errlen)
{
	char path[4096], buf[32] = "";
	FILE *f;
	int e;

	snprintf(path, sizeof(path), "%s/%s", ca_dir, SG_TLS_CA_CRLNUMBER);
	*num = 1;
	f = fopen(path, "r");
	if (f) {
		char *end;

		if (!fgets(buf, sizeof(buf), f) || (*num = strtoll(buf, &end, 10) + 1) < 2 ||
		    (*end != '\n' && *end)) {
			fclose(f);
			errf(err, errlen, "%s: not a CRL number", path);
			return SG_EPARSE;
		}
		fclose(f);
	} else if (errno != ENOENT) {
		errf(err, errlen, "%s: %s", path, strerror(errno));
		return SG_EIO;
	}
	snprintf(buf, sizeof(buf), "%lld\n", *num);
	e = sg_file_replace(path, buf, strlen(buf), 0644);
	if (e) {
		errf(err, errlen, "%s: %s", path, strerror(e));
		return SG_EIO;
	}
	return 0;
}

int sg_tls_cert_crl(const char *ca_dir, const char *out_file, long days, bool fips, int *count,
		    char *err, size_t errlen)
{
	const char *propq = fips ? "fips=yes" : NULL;
	X509 *ca = NULL;
	EVP_PKEY *ca_key = NULL;
	struct sg_hsm_key *hk = NULL;
	X509_CRL *crl = NULL;
	EVP_MD_CTX *md = NULL;
	ASN1_TIME *t = NULL;
	ASN1_INTEGER *num = NULL;
	struct revoked_entry *v = NULL;
	char tmp[4200];
	long long number;
	time_t now = time(NULL);
	int n = 0, ret;
	FILE *f;

	*count = 0;
	if (days < 1 || days > 3650) {
		errf(err, errlen, "--days: 1 to 3650");
		return SG_EINVAL;
	}
	ret = load_ca(ca_dir, &ca, &ca_key, &hk, err, errlen);
	if (ret == 0)
		ret = revoked_read(ca_dir, &v, &n, err, errlen);
	if (ret != 0)
		goto out;
	ret = SG_ECRYPTO;
	crl = X509_CRL_new_ex(NULL, propq);
	t = ASN1_TIME_new();
	if (!crl || !t || X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
	    X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)) != 1 ||
	    !ASN1_TIME_set(t, now) || X509_CRL_set1_lastUpdate(crl, t) != 1 ||
	    !ASN1_TIME_set(t, now + (time_t)days * 86400) || X509_CRL_set1_nextUpdate(crl, t) != 1)
		goto crypto;
	for (int i = 0; i < n; i++) {
		X509_REVOKED *r = X509_REVOKED_new();
		BIGNUM *bn = NULL;
		ASN1_INTEGER *sn = NULL;
		bool ok = r && BN_hex2bn(&bn, v[i].serial) > 0 &&
			  (sn = BN_to_ASN1_INTEGER(bn, NULL)) &&
			  X509_REVOKED_set_serialNumber(r, sn) == 1 &&
			  ASN1_TIME_set(t, (time_t)v[i].when) &&
			  X509_REVOKED_set_revocationDate(r, t) == 1 && X509_CRL_add0_revoked(crl, r);

		BN_free(bn);
		ASN1_INTEGER_free(sn);
		if (!ok) {
			X509_REVOKED_free(r);
			goto crypto;
		}
	}
	if (X509_CRL_sort(crl) != 1)
		goto crypto;
	ret = next_crl_number(ca_dir, &number, err, errlen);
	if (ret != 0)
		goto out;
	ret = SG_ECRYPTO;
	num = ASN1_INTEGER_new();
	if (!num || ASN1_INTEGER_set_int64(num, number) != 1 ||
	    X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) != 1)
		goto crypto;
	{
		X509V3_CTX v3;
		X509_EXTENSION *ext;

		X509V3_set_ctx(&v3, ca, NULL, NULL, crl, 0);
		ext = X509V3_EXT_conf_nid(NULL, &v3, NID_authority_key_identifier, "keyid:always");
		if (!ext || X509_CRL_add_ext(crl, ext, -1) != 1) {
			X509_EXTENSION_free(ext);
			goto crypto;
		}
		X509_EXTENSION_free(ext);
	}
	md = EVP_MD_CTX_new();
	if (!md || EVP_DigestSignInit_ex(md, NULL, "SHA384", NULL, propq, ca_key, NULL) != 1 ||
	    X509_CRL_sign_ctx(crl, md) <= 0)
		goto crypto;
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", out_file, (int)getpid());
	(void)unlink(tmp);
	f = create_file(tmp, 0644, err, errlen);
	ret = SG_EIO;
	if (!f)
		goto out;
	if (!PEM_write_X509_CRL(f, crl) || fflush(f) != 0 || fsync(fileno(f)) != 0) {
		fclose(f);
		(void)unlink(tmp);
		errf(err, errlen, "%s: write failed", tmp);
		goto out;
	}
	if (fclose(f) != 0 || rename(tmp, out_file) != 0) {
		errf(err, errlen, "%s: %s", out_file, strerror(errno));
		(void)unlink(tmp);
		goto out;
	}
	*count = n;
	ret = 0;
	goto out;
crypto:
	errf(err, errlen, "CRL: %s", tls_ossl_reason());
out:
	free(v);
	EVP_MD_CTX_free(md);
	ASN1_TIME_free(t);
	ASN1_INTEGER_free(num);
	X509_CRL_free(crl);
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	sg_hsm_key_free(hk);
	ERR_clear_error();
	return ret;
}

int tls_cert_spki_sha256(X509 *cert, uint8_t pin[SG_TLS_PIN_LEN])
{
	unsigned char *der = NULL;
	unsigned int mdlen = 0;
	int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
	int ret = SG_ECRYPTO;

	if (len <= 0)
		return SG_ECRYPTO;
	if (EVP_Digest(der, (size_t)len, pin, &mdlen, EVP_sha256(), NULL) == 1 &&
	    mdlen == SG_TLS_PIN_LEN)
		ret = 0;
	OPENSSL_free(der);
	return ret;
}

int sg_tls_pin_from_cert_file(const char *path, uint8_t pin[SG_TLS_PIN_LEN], char *err,
			      size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		errf(err, errlen, "%s: %s", path, strerror(errno));
		return SG_ENOENT;
	}
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!x) {
		errf(err, errlen, "%s: no PEM certificate: %s", path, tls_ossl_reason());
		ERR_clear_error();
		return SG_EPARSE;
	}
	int ret = tls_cert_spki_sha256(x, pin);
	if (ret != 0)
		errf(err, errlen, "%s: cannot hash the public key", path);
	X509_free(x);
	return ret;
}

/* ASN1_TIME to Unix seconds: its difference from the epoch, so no time zone or timegm. */
static bool asn1_unix(const ASN1_TIME *t, int64_t *out)
{
	ASN1_TIME *epoch = ASN1_TIME_set(NULL, 0);
	int days = 0, secs = 0;
	bool ok = epoch && ASN1_TIME_diff(&days, &secs, epoch, t) == 1;

	ASN1_TIME_free(epoch);
	if (ok)
		*out = (int64_t)days * 86400 + secs;
	return ok;
}

int sg_tls_cert_pem_info(const char *pem, size_t len, struct sg_tls_cert_info *out, char *err,
			 size_t errlen)
{
	BIO *b;
	X509 *x;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	if (len > SG_TLS_CERT_PEM_MAX || len > INT32_MAX) {
		errf(err, errlen, "longer than %d bytes", SG_TLS_CERT_PEM_MAX);
		return SG_EPARSE;
	}
	b = BIO_new_mem_buf(pem, (int)len);
	if (!b) {
		errf(err, errlen, "out of memory");
		return SG_ENOMEM;
	}
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	if (!x) {
		errf(err, errlen, "no PEM certificate: %s", tls_ossl_reason());
		ERR_clear_error();
		return SG_EPARSE;
	}
	if (!asn1_unix(X509_get0_notBefore(x), &out->not_before) ||
	    !asn1_unix(X509_get0_notAfter(x), &out->not_after)) {
		errf(err, errlen, "the certificate's validity cannot be read");
		ERR_clear_error();
		ret = SG_EPARSE;
		goto out;
	}
	/* The subject's CN when it has one, else the whole name (RFC 2253 form); only printable
	 * ASCII is kept, the rest shows as '?'. */
	X509_NAME *n = X509_get_subject_name(x);
	int k = X509_NAME_get_text_by_NID(n, NID_commonName, out->subject, sizeof(out->subject));
	if (k < 0) {
		BIO *m = BIO_new(BIO_s_mem());
		char *p;
		long l;

		out->subject[0] = 0;
		if (m && X509_NAME_print_ex(m, n, 0, XN_FLAG_RFC2253) >= 0 &&
		    (l = BIO_get_mem_data(m, &p)) > 0)
			snprintf(out->subject, sizeof(out->subject), "%.*s", (int)l, p);
		BIO_free(m);
	}
	for (char *c = out->subject; *c; c++) {
		if (*c < 0x20 || *c > 0x7e)
			*c = '?';
	}
	ERR_clear_error();
out:
	X509_free(x);
	return ret;
}
