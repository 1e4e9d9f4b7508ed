/* Certificates for the TLS transport (`secureguard cert`, tests): P-384 ECDSA keys and X.509 v3
 * certificates signed with ECDSA-SHA-384, usable for both server and client authentication
 * (docs/TLS.md gives the equivalent openssl commands). Keys are written 0600 as unencrypted
 * PKCS#8 PEM; no file is ever overwritten. */
#ifndef SG_NET_TLS_CERT_H
#define SG_NET_TLS_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"

/* File names inside a CA directory, and of an issued certificate: <dir>/<name>.crt, .key */
#define SG_TLS_CA_CERT	     "ca.crt"
#define SG_TLS_CA_KEY	     "ca.key"
#define SG_TLS_CA_KEY_URI    "ca.key-uri" /* instead of ca.key: the CA key is in a token */
#define SG_TLS_CERT_NAME_MAX 64 /* X.520 ub-common-name */

#define SG_TLS_PIN_LEN 32 /* SHA-256 of the certificate's DER SubjectPublicKeyInfo */

struct sg_tls_cert_req {
	const char *name; /* subject CN and file name: [A-Za-z0-9._-], 1..64, not starting '.' */
	const char *const *dns; /* subjectAltName DNS entries */
	size_t n_dns;
	const char *const *ips; /* subjectAltName IP entries (IPv4 or IPv6 literals) */
	size_t n_ips;
	int64_t not_before, not_after; /* validity, Unix seconds */
	bool fips; /* fetch algorithms with "fips=yes" (fails without a FIPS provider) */
	/* sg_tls_cert_make_ca: the CA key is this PKCS#11 token key (crypto/hsm.h), not a new
	 * one; ca.key-uri holds the URI instead of a ca.key. NULL: a new key in ca.key. */
	const char *key_uri;
};

/* Creates out_dir (0700) if needed and writes ca.key and a self-signed ca.crt (CA:TRUE,
 * pathlen 0, keyCertSign and cRLSign); with req->key_uri, ca.key-uri instead of ca.key, and
 * the CA's other operations (issue, crl, revoke) sign in the token. req->dns and req->ips are
 * not used. 0 or a negative
 * SG_E* code with err set. */
int sg_tls_cert_make_ca(const char *out_dir, const struct sg_tls_cert_req *req, char *err,
			size_t errlen) SG_WUR;

/* Issues <out_dir>/<name>.key and .crt signed by the CA in ca_dir: CA:FALSE, digitalSignature,
 * extendedKeyUsage serverAuth and clientAuth, the given SANs (a DNS SAN for the name itself when
 * no --dns is given and the name is a host name). 0 or a negative SG_E* code with err set. */
int sg_tls_cert_issue(const char *ca_dir, const struct sg_tls_cert_req *req, const char *out_dir,
		      char *err, size_t errlen) SG_WUR;

/* Writes <out_dir>/<name>.key and a self-signed <name>.crt (CA:FALSE, serverAuth, the SANs of
 * req): the gateway's first-run certificate when no file is configured for a domain. */
int sg_tls_cert_self_signed(const char *out_dir, const struct sg_tls_cert_req *req, char *err,
			    size_t errlen) SG_WUR;

/* Revocation (RFC 5280 section 5). The CA directory keeps the revoked serial numbers in
 * revoked.txt, one per line: upper-case hex serial, a space, the revocation time (Unix
 * seconds), a space, the certificate's CN; and the number of the last CRL made in crlnumber. */
#define SG_TLS_CA_REVOKED   "revoked.txt"
#define SG_TLS_CA_CRLNUMBER "crlnumber"
#define SG_TLS_CRL_DAYS	    30 /* default nextUpdate of a CRL */

/* Adds the certificate in cert_file (which must be issued by the CA in ca_dir) to the CA's
 * revoked list; *already set when it was there. serial (room for 41 characters) gets its hex. */
int sg_tls_cert_revoke(const char *ca_dir, const char *cert_file, char serial[41], bool *already,
		       char *err, size_t errlen) SG_WUR;
/* Writes out_file, a PEM CRL of the CA's revoked list signed by its key (ECDSA-SHA-384), valid
 * for `days` (thisUpdate now, nextUpdate now + days), with the next CRL number. The file is
 * written beside out_file and renamed over it, so a reader (a daemon watching TlsCRL) never
 * sees half of it. *count gets the number of revoked certificates listed. */
int sg_tls_cert_crl(const char *ca_dir, const char *out_file, long days, bool fips, int *count,
		    char *err, size_t errlen) SG_WUR;

/* SHA-256 of the SubjectPublicKeyInfo of the first certificate in a PEM file: the value of a
 * pin (sg_tls_config.pin_sha256; RFC 7469 section 2.4 hashes the same bytes). 0 or SG_ENOENT /
 * SG_EPARSE / SG_ECRYPTO with err set. */
int sg_tls_pin_from_cert_file(const char *path, uint8_t pin[SG_TLS_PIN_LEN], char *err,
			      size_t errlen) SG_WUR;

/* What a server can tell about a certificate it holds (the dashboard's expiry list): the first
 * certificate of a PEM text of at most SG_TLS_CERT_PEM_MAX bytes. subject is the CN (or the whole
 * name), printable ASCII only. 0 or SG_EPARSE / SG_ENOMEM with err set. Fuzzed by
 * tests/fuzz/fuzz_cert_pem.c. */
#define SG_TLS_CERT_PEM_MAX 65536
struct sg_tls_cert_info {
	int64_t not_before, not_after; /* Unix seconds */
	char subject[128];
};
int sg_tls_cert_pem_info(const char *pem, size_t len, struct sg_tls_cert_info *out, char *err,
			 size_t errlen) SG_WUR;

/* The reason of the most recent OpenSSL error, for messages (tls.c, tls_term.c). */
const char *tls_ossl_reason(void);

/* The same for an OpenSSL X509 (for tls.c, which has one in hand). 0 or SG_ECRYPTO. */
struct x509_st;
int tls_cert_spki_sha256(struct x509_st *cert, uint8_t pin[SG_TLS_PIN_LEN]) SG_WUR;

#endif
