/* X.509 certificates, private keys and RFC 7427 signatures (pki.h) over OpenSSL 3. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <secureguard/sg_errors.h>

#include "crypto/crypto_int.h"
#include "crypto/ipsec.h"
#include "crypto/pki.h"

struct sg_cert {
	X509 *x;
	uint8_t *der;
	size_t der_len;
	uint8_t *subject;
	size_t subject_len;
	unsigned refs; /* sg_cert_ref; freed when the last holder lets go */
};

struct sg_privkey {
	EVP_PKEY *k;
	unsigned refs;
};

/* ---- AlgorithmIdentifiers of RFC 7427 appendix A ------------------------------------------- */

static const uint8_t rsa256[] = {0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
				 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00};
static const uint8_t rsa384[] = {0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
				 0xf7, 0x0d, 0x01, 0x01, 0x0c, 0x05, 0x00};
static const uint8_t rsa512[] = {0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
				 0xf7, 0x0d, 0x01, 0x01, 0x0d, 0x05, 0x00};
static const uint8_t ec256[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
				0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
static const uint8_t ec384[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
				0x48, 0xce, 0x3d, 0x04, 0x03, 0x03};
static const uint8_t ec512[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
				0x48, 0xce, 0x3d, 0x04, 0x03, 0x04};

struct algid {
	const uint8_t *der;
	size_t len;
	bool rsa;
	const char *md;
	unsigned hash;
};

static const struct algid algids[] = {
    {rsa256, sizeof(rsa256), true, "SHA256", 2}, {rsa384, sizeof(rsa384), true, "SHA384", 3},
    {rsa512, sizeof(rsa512), true, "SHA512", 4}, {ec256, sizeof(ec256), false, "SHA256", 2},
    {ec384, sizeof(ec384), false, "SHA384", 3},	 {ec512, sizeof(ec512), false, "SHA512", 4},
};

/* ---- loading --------------------------------------------------------------------------------- */

static bool is_pem(const uint8_t *data, size_t len)
{
	static const char tag[] = "-----BEGIN";
	for (size_t i = 0; i + sizeof(tag) - 1 <= len && i < 4096; i++)
		if (!memcmp(data + i, tag, sizeof(tag) - 1))
			return true;
	return false;
}

int sg_cert_load(const uint8_t *data, size_t len, struct sg_cert **out)
{
	*out = NULL;
	if (!data || !len || len > 1 << 20 || sg_crypto_init() != 0)
		return SG_EINVAL;
	X509 *x = NULL;
	if (is_pem(data, len)) {
		BIO *b = BIO_new_mem_buf(data, (int)len);
		x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
		BIO_free(b);
	} else {
		const unsigned char *p = data;
		x = d2i_X509(NULL, &p, (long)len);
		if (x && p != data + len) {
			X509_free(x);
			x = NULL; /* trailing bytes */
		}
	}
	ERR_clear_error();
	if (!x)
		return SG_EINVAL;
	struct sg_cert *c = calloc(1, sizeof(*c));
	unsigned char *der = NULL, *subj = NULL;
	int dl = i2d_X509(x, &der), sl = i2d_X509_NAME(X509_get_subject_name(x), &subj);
	if (!c || dl <= 0 || sl <= 0) {
		OPENSSL_free(der);
		OPENSSL_free(subj);
		X509_free(x);
		free(c);
		return SG_ENOMEM;
	}
	c->refs = 1;
	c->x = x;
	c->der = der;
	c->der_len = (size_t)dl;
	c->subject = subj;
	c->subject_len = (size_t)sl;
	*out = c;
	return 0;
}

struct sg_cert *sg_cert_ref(struct sg_cert *c)
{
	if (c)
		c->refs++;
	return c;
}

void sg_cert_free(struct sg_cert *c)
{
	if (!c || --c->refs)
		return;
	X509_free(c->x);
	OPENSSL_free(c->der);
	OPENSSL_free(c->subject);
	free(c);
}

void sg_cert_der(const struct sg_cert *c, const uint8_t **der, size_t *len)
{
	*der = c->der;
	*len = c->der_len;
}

void sg_cert_subject(const struct sg_cert *c, const uint8_t **der, size_t *len)
{
	*der = c->subject;
	*len = c->subject_len;
}

bool sg_cert_spki_sha1(const struct sg_cert *c, uint8_t out[20])
{
	X509_PUBKEY *pk = X509_get_X509_PUBKEY(c->x);
	unsigned char *der = NULL;
	int n = pk ? i2d_X509_PUBKEY(pk, &der) : -1;
	if (n <= 0)
		return false;
	struct sg_iov iov = {der, (size_t)n};
	bool ok = sg_sha1(out, &iov, 1);
	OPENSSL_free(der);
	return ok;
}

bool sg_cert_has_id(const struct sg_cert *c, int type, const uint8_t *id, size_t len)
{
	if (type == 9) { /* DER DN: equal names (canonical comparison by OpenSSL) */
		const unsigned char *p = id;
		X509_NAME *n = d2i_X509_NAME(NULL, &p, (long)len);
		bool eq = n && p == id + len && X509_NAME_cmp(n, X509_get_subject_name(c->x)) == 0;
		X509_NAME_free(n);
		ERR_clear_error();
		return eq;
	}
	int gtype = type == 2		       ? GEN_DNS
		    : type == 3		       ? GEN_EMAIL
		    : (type == 1 || type == 5) ? GEN_IPADD
					       : -1;
	if (gtype < 0)
		return false;
	GENERAL_NAMES *names = X509_get_ext_d2i(c->x, NID_subject_alt_name, NULL, NULL);
	bool found = false;
	for (int i = 0; names && i < sk_GENERAL_NAME_num(names) && !found; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
		if (g->type != gtype)
			continue;
		const ASN1_STRING *s = gtype == GEN_IPADD ? g->d.iPAddress : g->d.ia5;
		size_t sl = (size_t)ASN1_STRING_length(s);
		const unsigned char *sd = ASN1_STRING_get0_data(s);
		if (sl != len)
			continue;
		found = gtype == GEN_IPADD ? !memcmp(sd, id, len)
					   : !strncasecmp((const char *)sd, (const char *)id, len);
	}
	GENERAL_NAMES_free(names);
	return found;
}

bool sg_cert_is_rsa(const struct sg_cert *c)
{
	EVP_PKEY *pub = X509_get0_pubkey(c->x);
	bool rsa = pub && EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA;
	ERR_clear_error();
	return rsa;
}

bool sg_cert_is_ca(const struct sg_cert *c)
{
	int r = X509_check_ca(c->x);
	ERR_clear_error();
	return r == 1 || r == 3;
}

const char *sg_cert_name(const struct sg_cert *c, char *buf, size_t size)
{
	BIO *b = BIO_new(BIO_s_mem());
	buf[0] = 0;
	if (b && X509_NAME_print_ex(b, X509_get_subject_name(c->x), 0, XN_FLAG_RFC2253) >= 0) {
		int n = BIO_read(b, buf, (int)size - 1);
		buf[n > 0 ? n : 0] = 0;
	}
	BIO_free(b);
	return buf;
}

int sg_cert_verify(const struct sg_cert *leaf, struct sg_cert *const *untrusted, size_t nuntrusted,
		   struct sg_cert *const *cas, size_t ncas, const char **why)
{
	static const char *dummy;
	if (!why)
		why = &dummy;
	X509_STORE *store = X509_STORE_new();
	STACK_OF(X509) *chain = sk_X509_new_null();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int rc = SG_ENOMEM;
	if (!store || !chain || !ctx)
		goto out;
	for (size_t i = 0; i < ncas; i++)
		if (X509_STORE_add_cert(store, cas[i]->x) != 1)
			goto out;
	for (size_t i = 0; i < nuntrusted; i++)
		if (!sk_X509_push(chain, untrusted[i]->x))
			goto out;
	if (X509_STORE_CTX_init(ctx, store, leaf->x, chain) != 1)
		goto out;
	if (X509_verify_cert(ctx) == 1) {
		rc = 0;
	} else {
		*why = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
		rc = SG_EAUTH;
	}
out:
	if (rc == SG_ENOMEM)
		*why = "out of memory";
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	sk_X509_free(chain); /* the certificates stay with their sg_certs */
	X509_STORE_free(store);
	return rc;
}

/* OpenSSL's passphrase callback: the given passphrase, or none (never the terminal prompt that a
 * NULL callback would give). `asked` records that the key was encrypted. */
struct key_pass {
	const uint8_t *pass;
	size_t len;
	bool asked;
};

static int key_pass_cb(char *buf, int size, int rwflag, void *u)
{
	struct key_pass *w = u;
	(void)rwflag;
	w->asked = true;
	if (!w->pass || !w->len || w->len > (size_t)size)
		return -1;
	memcpy(buf, w->pass, w->len);
	return (int)w->len;
}

/* The key in data (PEM, traditional or PKCS#8, encrypted or not; DER, PKCS#8 encrypted or not,
 * or traditional), decrypted with w's passphrase when it is encrypted. */
static EVP_PKEY *key_read(const uint8_t *data, size_t len, struct key_pass *w)
{
	EVP_PKEY *k = NULL;
	if (is_pem(data, len)) {
		BIO *b = BIO_new_mem_buf(data, (int)len);
		k = b ? PEM_read_bio_PrivateKey(b, NULL, key_pass_cb, w) : NULL;
		BIO_free(b);
	} else {
		const unsigned char *p = data;
		k = d2i_AutoPrivateKey(NULL, &p, (long)len);
		if (!k) {
			BIO *b = BIO_new_mem_buf(data, (int)len);
			k = b ? d2i_PKCS8PrivateKey_bio(b, NULL, key_pass_cb, w) : NULL;
			BIO_free(b);
		}
	}
	ERR_clear_error();
	return k;
}

int sg_privkey_decrypt(const uint8_t *data, size_t len, const uint8_t *pass, size_t passlen,
		       uint8_t **der, size_t *derlen)
{
	*der = NULL;
	*derlen = 0;
	if (!data || !len || len > 1 << 20 || passlen > 1024 || sg_crypto_init() != 0)
		return SG_EINVAL;
	struct key_pass w = {.pass = pass, .len = passlen};
	EVP_PKEY *k = key_read(data, len, &w);
	if (!k)
		return w.asked ? SG_EAUTH : SG_EINVAL;
	unsigned char *enc = NULL;
	int n = i2d_PrivateKey(k, &enc);
	EVP_PKEY_free(k);
	if (n <= 0) {
		ERR_clear_error();
		return SG_ECRYPTO;
	}
	uint8_t *copy = malloc((size_t)n);
	if (copy)
		memcpy(copy, enc, (size_t)n);
	OPENSSL_clear_free(enc, (size_t)n);
	if (!copy)
		return SG_ENOMEM;
	*der = copy;
	*derlen = (size_t)n;
	return 0;
}

int sg_privkey_load(const uint8_t *data, size_t len, struct sg_privkey **out)
{
	*out = NULL;
	if (!data || !len || len > 1 << 20 || sg_crypto_init() != 0)
		return SG_EINVAL;
	struct key_pass w = {0};
	EVP_PKEY *k = key_read(data, len, &w);
	if (!k)
		return SG_EINVAL;
	if (EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA && EVP_PKEY_get_base_id(k) != EVP_PKEY_EC) {
		EVP_PKEY_free(k);
		return SG_EINVAL; /* RSA and ECDSA keys only */
	}
	struct sg_privkey *pk = calloc(1, sizeof(*pk));
	if (!pk) {
		EVP_PKEY_free(k);
		return SG_ENOMEM;
	}
	pk->k = k;
	pk->refs = 1;
	*out = pk;
	return 0;
}

struct sg_privkey *sg_privkey_ref(struct sg_privkey *k)
{
	if (k)
		k->refs++;
	return k;
}

void sg_privkey_free(struct sg_privkey *k)
{
	if (!k || --k->refs)
		return;
	EVP_PKEY_free(k->k); /* cleanses */
	free(k);
}

bool sg_privkey_matches(const struct sg_privkey *k, const struct sg_cert *c)
{
	EVP_PKEY *pub = X509_get0_pubkey(c->x);
	bool eq = pub && EVP_PKEY_eq(k->k, pub) == 1;
	ERR_clear_error();
	return eq;
}

bool sg_privkey_is_rsa(const struct sg_privkey *k)
{
	return EVP_PKEY_get_base_id(k->k) == EVP_PKEY_RSA;
}

unsigned sg_privkey_hash(const struct sg_privkey *k)
{
	if (EVP_PKEY_get_base_id(k->k) == EVP_PKEY_EC) {
		int bits = EVP_PKEY_get_bits(k->k);
		return bits > 384 ? 4 : bits > 256 ? 3 : 2;
	}
	return 2;
}

/* ---- RSASSA-PSS (RFC 4055, RFC 7427 A.4.3): SHA-2 with MGF1 of the same hash and a salt of
 * the hash's length, the hash AlgorithmIdentifiers with NULL parameters as in RFC 7427's
 * example. */

#define PSS_ALGID_LEN 67

static const uint8_t oid_pss[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a};
static const uint8_t oid_mgf1[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08};

/* SEQUENCE { rsassaPss, SEQUENCE { [0] hash, [1] SEQUENCE { mgf1, hash }, [2] INTEGER salt } } */
static void pss_algid(unsigned hash, uint8_t out[PSS_ALGID_LEN])
{
	const uint8_t h[] = {0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
			     0x65, 0x03, 0x04, 0x02, (uint8_t)(hash - 1), 0x05, 0x00};
	uint8_t *p = out;
	*p++ = 0x30, *p++ = 0x41, *p++ = 0x06, *p++ = sizeof(oid_pss);
	memcpy(p, oid_pss, sizeof(oid_pss)), p += sizeof(oid_pss);
	*p++ = 0x30, *p++ = 0x34;
	*p++ = 0xa0, *p++ = sizeof(h);
	memcpy(p, h, sizeof(h)), p += sizeof(h);
	*p++ = 0xa1, *p++ = 0x1c, *p++ = 0x30, *p++ = 0x1a, *p++ = 0x06, *p++ = sizeof(oid_mgf1);
	memcpy(p, oid_mgf1, sizeof(oid_mgf1)), p += sizeof(oid_mgf1);
	memcpy(p, h, sizeof(h)), p += sizeof(h);
	*p++ = 0xa2, *p++ = 0x03, *p++ = 0x02, *p++ = 0x01;
	*p++ = (uint8_t)(hash == 2 ? 32 : hash == 3 ? 48 : 64);
}

static const char *md_of_nid(int nid)
{
	return nid == NID_sha256 ? "SHA256" : nid == NID_sha384 ? "SHA384"
					 : nid == NID_sha512 ? "SHA512"
							     : NULL;
}

struct pss {
	const char *md, *mgf1;
	int salt;
};

/* Parameters of an RSASSA-PSS AlgorithmIdentifier (any valid encoding, RFC 4055 3.1 defaults
 * applied): SHA-2 hashes only, trailer 1. 1: parsed; 0: not PSS; -1: PSS we do not take. */
static int pss_parse(const uint8_t *algid, size_t len, struct pss *out, const char **why)
{
	const unsigned char *p = algid;
	X509_ALGOR *a = d2i_X509_ALGOR(NULL, &p, (long)len);
	int rc = 0;
	RSA_PSS_PARAMS *pp = NULL;
	X509_ALGOR *mh = NULL;
	if (!a || p != algid + len || OBJ_obj2nid(a->algorithm) != NID_rsassaPss)
		goto out;
	rc = -1;
	*why = "RSASSA-PSS parameters not supported (SHA-256/384/512, MGF1, trailer 1)";
	if (!a->parameter || a->parameter->type != V_ASN1_SEQUENCE ||
	    !(pp = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(RSA_PSS_PARAMS), a->parameter)))
		goto out;
	out->md = md_of_nid(pp->hashAlgorithm ? OBJ_obj2nid(pp->hashAlgorithm->algorithm)
					      : NID_sha1);
	if (!pp->maskGenAlgorithm || OBJ_obj2nid(pp->maskGenAlgorithm->algorithm) != NID_mgf1 ||
	    !pp->maskGenAlgorithm->parameter ||
	    pp->maskGenAlgorithm->parameter->type != V_ASN1_SEQUENCE ||
	    !(mh = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(X509_ALGOR),
					     pp->maskGenAlgorithm->parameter)))
		goto out; /* MGF1 with SHA-1 (the default) is not taken */
	out->mgf1 = md_of_nid(OBJ_obj2nid(mh->algorithm));
	long salt = pp->saltLength ? ASN1_INTEGER_get(pp->saltLength) : 20;
	long trailer = pp->trailerField ? ASN1_INTEGER_get(pp->trailerField) : 1;
	if (!out->md || !out->mgf1 || salt < 0 || salt > 512 || trailer != 1)
		goto out;
	out->salt = (int)salt;
	rc = 1;
out:
	X509_ALGOR_free(mh);
	RSA_PSS_PARAMS_free(pp);
	X509_ALGOR_free(a);
	ERR_clear_error();
	return rc;
}

static const struct algid *find_algid(bool rsa, unsigned hash)
{
	for (size_t i = 0; i < SG_ARRAY_LEN(algids); i++)
		if (algids[i].rsa == rsa && algids[i].hash == hash)
			return &algids[i];
	return NULL;
}

int sg_sig_create(const struct sg_privkey *k, unsigned hash, bool pss, const uint8_t *data,
		  size_t len, const uint8_t **algid, size_t *algid_len, uint8_t *sig, size_t *siglen)
{
	static uint8_t pss_ids[3][PSS_ALGID_LEN];
	const struct sg__algs *a = sg__algs();
	bool rsa = EVP_PKEY_get_base_id(k->k) == EVP_PKEY_RSA;
	const struct algid *al = find_algid(rsa, hash);
	if (!al || !a || (pss && !rsa))
		return SG_EINVAL;
	if (pss) {
		pss_algid(hash, pss_ids[hash - 2]); /* the same bytes every time */
	}
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	size_t n = *siglen;
	int rc = SG_ECRYPTO;
	if (ctx &&
	    EVP_DigestSignInit_ex(ctx, &pctx, al->md, NULL, a->fips_propq, k->k, NULL) == 1 &&
	    (!rsa || EVP_PKEY_CTX_set_rsa_padding(pctx, pss ? RSA_PKCS1_PSS_PADDING
							: RSA_PKCS1_PADDING) == 1) &&
	    (!pss || (EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1 &&
		      EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, al->md, NULL) == 1)) &&
	    EVP_DigestSign(ctx, sig, &n, data, len) == 1) {
		*siglen = n;
		*algid = pss ? pss_ids[hash - 2] : al->der;
		*algid_len = pss ? PSS_ALGID_LEN : al->len;
		rc = 0;
	}
	ERR_clear_error();
	EVP_MD_CTX_free(ctx);
	return rc;
}

int sg_sig_verify(const struct sg_cert *c, const uint8_t *algid, size_t algid_len,
		  const uint8_t *data, size_t len, const uint8_t *sig, size_t siglen,
		  const char **why)
{
	static const char *dummy;
	const struct sg__algs *a = sg__algs();
	if (!why)
		why = &dummy;
	const struct algid *al = NULL;
	struct pss pss = {0};
	for (size_t i = 0; i < SG_ARRAY_LEN(algids); i++)
		if (algids[i].len == algid_len && !memcmp(algids[i].der, algid, algid_len))
			al = &algids[i];
	int is_pss = al ? 0 : pss_parse(algid, algid_len, &pss, why);
	if (is_pss < 0)
		return SG_EINVAL;
	if ((!al && !is_pss) || !a) {
		*why = "signature algorithm not supported (RSA PKCS#1 v1.5, RSASSA-PSS or ECDSA, "
		       "SHA-2)";
		return SG_EINVAL;
	}
	EVP_PKEY *pub = X509_get0_pubkey(c->x);
	bool rsa = pub && EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA;
	if (!pub || rsa != (is_pss || al->rsa) || (!rsa && EVP_PKEY_get_base_id(pub) != EVP_PKEY_EC)) {
		*why = "signature algorithm does not fit the certificate's key";
		return SG_EINVAL;
	}
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	int rc = SG_EAUTH;
	if (ctx &&
	    EVP_DigestVerifyInit_ex(ctx, &pctx, is_pss ? pss.md : al->md, NULL, a->fips_propq, pub,
				    NULL) == 1 &&
	    (!rsa || EVP_PKEY_CTX_set_rsa_padding(pctx, is_pss ? RSA_PKCS1_PSS_PADDING
							   : RSA_PKCS1_PADDING) == 1) &&
	    (!is_pss || (EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, pss.salt) == 1 &&
			 EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, pss.mgf1, NULL) == 1)) &&
	    EVP_DigestVerify(ctx, sig, siglen, data, len) == 1)
		rc = 0;
	else
		*why = "signature does not verify";
	ERR_clear_error();
	EVP_MD_CTX_free(ctx);
	return rc;
}

bool sg_sig_is_pss(const uint8_t *algid, size_t len)
{
	struct pss pss;
	const char *why;
	return pss_parse(algid, len, &pss, &why) != 0;
}
