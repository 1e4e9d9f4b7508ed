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
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <secureguard/sg_errors.h>

#include "crypto/crypto.h"

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

static int write_pem(const char *dir, const char *name, const char *ext, EVP_PKEY *key, X509 *x,
		     char *err, size_t errlen)
{
	char path[4096];
	int n = snprintf(path, sizeof(path), "%s/%s%s", dir, name, ext);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		errf(err, errlen, "%s: path too long", dir);
		return SG_ERANGE;
	}
	FILE *f = create_file(path, key ? 0600 : 0644, err, errlen);
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
 * .crt; the key file goes again if the certificate cannot be written. */
static int make_self_signed(const char *out_dir, const char *file, const struct sg_tls_cert_req *req,
			    bool ca, char *err, size_t errlen)
{
	const char *propq = req->fips ? "fips=yes" : NULL;
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	int ret = check_req(req, err, errlen);

	if (ret != 0)
		return ret;
	ERR_clear_error();
	ret = SG_ECRYPTO;
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
	ret = write_pem(out_dir, file, ".key", key, NULL, err, errlen);
	if (ret == 0) {
		ret = write_pem(out_dir, file, ".crt", NULL, x, err, errlen);
		if (ret != 0) {
			char path[4096];
			snprintf(path, sizeof(path), "%s/%s.key", out_dir, file);
			(void)unlink(path);
		}
	}
out:
	X509_free(x);
	EVP_PKEY_free(key);
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

static int load_ca(const char *ca_dir, X509 **cert, EVP_PKEY **key, char *err, size_t errlen)
{
	char path[4096];
	FILE *f;

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
	snprintf(path, sizeof(path), "%s/%s", ca_dir, SG_TLS_CA_KEY);
	f = fopen(path, "r");
	if (!f) {
		errf(err, errlen, "%s: %s", path, strerror(errno));
		return SG_ENOENT;
	}
	*key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (!*key) {
		errf(err, errlen, "%s: not a PEM private key: %s", path, tls_ossl_reason());
		return SG_EPARSE;
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
	char san[SAN_MAX];
	int ret = check_req(req, err, errlen);

	if (ret != 0)
		return ret;
	ret = build_san(req, san, sizeof(san), err, errlen); /* fail before any file is made */
	if (ret != 0)
		return ret;
	ERR_clear_error();
	ret = load_ca(ca_dir, &ca, &ca_key, err, errlen);
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
