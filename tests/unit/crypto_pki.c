/* Unit tests for certificates, keys and RFC 7427 signatures (src/crypto/pki.c), on the test PKI
 * in tests/vectors/pki (README there). The AlgorithmIdentifiers are RFC 7427 appendix A's,
 * checked byte for byte. */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "test_util.h"

#include <secureguard/sg_errors.h>

#include "common/b64.h"
#include "crypto/crypto.h"
#include "crypto/pki.h"

static uint8_t *slurp(const char *name, size_t *len)
{
	char path[512];
	const char *dir = getenv("SG_VECTORS");
	snprintf(path, sizeof(path), "%s/pki/%s", dir ? dir : "tests/vectors", name);
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s (SG_VECTORS)", path);
	uint8_t *buf = malloc(1 << 16);
	*len = fread(buf, 1, 1 << 16, f);
	fclose(f);
	return buf;
}

static struct sg_cert *cert(const char *name)
{
	size_t n;
	uint8_t *d = slurp(name, &n);
	struct sg_cert *c;
	assert_int_equal(sg_cert_load(d, n, &c), 0);
	free(d);
	return c;
}

static struct sg_privkey *key(const char *name)
{
	size_t n;
	uint8_t *d = slurp(name, &n);
	struct sg_privkey *k;
	assert_int_equal(sg_privkey_load(d, n, &k), 0);
	sg_memzero(d, n);
	free(d);
	return k;
}

static void test_certs(void **state)
{
	(void)state;
	struct sg_cert *ca = cert("ca.pem"), *moon = cert("moon.pem"), *sun = cert("sun.pem"),
		       *other = cert("other_ca.pem"), *old = cert("expired.pem");
	char name[128];
	assert_string_equal(sg_cert_name(moon, name, sizeof(name)),
			    "CN=moon.example,O=SecureGuard Test,C=CH");
	/* DER round trip: the DER loads to the same certificate. */
	const uint8_t *der, *subj;
	size_t dl, sl;
	sg_cert_der(moon, &der, &dl);
	struct sg_cert *again;
	assert_int_equal(sg_cert_load(der, dl, &again), 0);
	sg_cert_subject(again, &subj, &sl);
	assert_true(sg_cert_has_id(moon, 9, subj, sl)); /* ID_DER_ASN1_DN */
	sg_cert_free(again);
	/* Identities: subjectAltName of the right kind only. */
	assert_true(sg_cert_has_id(moon, 2, (const uint8_t *)"moon.example", 12));
	assert_true(sg_cert_has_id(moon, 2, (const uint8_t *)"MOON.example", 12));
	assert_false(sg_cert_has_id(moon, 2, (const uint8_t *)"sun.example", 11));
	assert_true(sg_cert_has_id(moon, 1, (const uint8_t *)"\xc0\x00\x02\x01", 4));
	assert_false(sg_cert_has_id(moon, 1, (const uint8_t *)"\xc0\x00\x02\x02", 4));
	assert_true(sg_cert_has_id(sun, 3, (const uint8_t *)"sun@example.net", 15));
	assert_false(sg_cert_has_id(sun, 2, (const uint8_t *)"sun@example.net", 15));
	sg_cert_subject(sun, &subj, &sl);
	assert_false(sg_cert_has_id(moon, 9, subj, sl));
	/* Chains. */
	const char *why = NULL;
	assert_int_equal(sg_cert_verify(moon, NULL, 0, &ca, 1, &why), 0);
	assert_int_equal(sg_cert_verify(sun, NULL, 0, &ca, 1, &why), 0);
	assert_int_equal(sg_cert_verify(moon, NULL, 0, &other, 1, &why), SG_EAUTH);
	assert_non_null(strstr(why, "local issuer"));
	assert_int_equal(sg_cert_verify(old, NULL, 0, &ca, 1, &why), SG_EAUTH);
	assert_string_equal(why, "certificate has expired");
	/* CERTREQ names CAs by the SHA-1 of their SubjectPublicKeyInfo. */
	uint8_t h1[20], h2[20];
	assert_true(sg_cert_spki_sha1(ca, h1));
	assert_true(sg_cert_spki_sha1(other, h2));
	assert_memory_not_equal(h1, h2, 20);
	/* Garbage and trailing bytes are refused. */
	struct sg_cert *bad;
	assert_int_equal(sg_cert_load((const uint8_t *)"not a cert", 10, &bad), SG_EINVAL);
	uint8_t *padded = malloc(dl + 1);
	memcpy(padded, der, dl);
	padded[dl] = 0;
	assert_int_equal(sg_cert_load(padded, dl + 1, &bad), SG_EINVAL);
	free(padded);
	sg_cert_free(ca);
	sg_cert_free(moon);
	sg_cert_free(sun);
	sg_cert_free(other);
	sg_cert_free(old);
}

static void test_signatures(void **state)
{
	static const uint8_t rsa256[] = {0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
					 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00};
	static const uint8_t ec384[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
					0x48, 0xce, 0x3d, 0x04, 0x03, 0x03};
	(void)state;
	struct sg_cert *moon = cert("moon.pem"), *sun = cert("sun.pem");
	struct sg_privkey *mk = key("moon.key"), *sk = key("sun.key");
	assert_true(sg_privkey_matches(mk, moon));
	assert_false(sg_privkey_matches(mk, sun));
	assert_int_equal(sg_privkey_hash(mk), 3); /* P-384: SHA-384 */
	assert_int_equal(sg_privkey_hash(sk), 2);
	const uint8_t msg[] = "the octets an IKE_AUTH signs";
	uint8_t sig[SG_SIG_MAX];
	size_t sl = sizeof(sig), al;
	const uint8_t *algid;
	const char *why;
	/* ECDSA with SHA-384. */
	assert_int_equal(sg_sig_create(mk, 3, false, msg, sizeof(msg), &algid, &al, sig, &sl), 0);
	assert_int_equal(al, sizeof(ec384));
	assert_memory_equal(algid, ec384, al);
	assert_int_equal(sg_sig_verify(moon, algid, al, msg, sizeof(msg), sig, sl, &why), 0);
	assert_int_equal(sg_sig_verify(moon, algid, al, msg, sizeof(msg) - 1, sig, sl, &why),
			 SG_EAUTH);
	assert_int_equal(sg_sig_verify(sun, algid, al, msg, sizeof(msg), sig, sl, &why), SG_EINVAL);
	assert_string_equal(why, "signature algorithm does not fit the certificate's key");
	/* RSA PKCS#1 v1.5 with SHA-256, -384, -512. */
	for (unsigned h = 2; h <= 4; h++) {
		sl = sizeof(sig);
		assert_int_equal(sg_sig_create(sk, h, false, msg, sizeof(msg), &algid, &al, sig, &sl), 0);
		assert_int_equal(sl, 256);
		if (h == 2)
			assert_memory_equal(algid, rsa256, sizeof(rsa256));
		assert_int_equal(sg_sig_verify(sun, algid, al, msg, sizeof(msg), sig, sl, &why), 0);
		sig[10] ^= 1;
		assert_int_equal(sg_sig_verify(sun, algid, al, msg, sizeof(msg), sig, sl, &why),
				 SG_EAUTH);
	}
	/* RSASSA-PSS without parameters (SHA-1 and MGF1-SHA-1 by default) is refused as such. */
	static const uint8_t pss[] = {0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48,
				      0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a};
	assert_int_equal(sg_sig_verify(sun, pss, sizeof(pss), msg, sizeof(msg), sig, sl, &why),
			 SG_EINVAL);
	assert_string_equal(why,
			    "RSASSA-PSS parameters not supported (SHA-256/384/512, MGF1, trailer 1)");
	/* RSASSA-PSS with SHA-256/384/512 (RFC 4055, RFC 7427 A.4.3 without the explicit
	 * trailer field, as charon sends it): made, verified, and ECDSA keys refused. */
	static const uint8_t pss256[] = {
	    0x30, 0x41, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a,
	    0x30, 0x34, 0xa0, 0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65,
	    0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a,
	    0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08, 0x30, 0x0d, 0x06, 0x09, 0x60,
	    0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0xa2, 0x03, 0x02,
	    0x01, 0x20};
	for (unsigned h = 2; h <= 4; h++) {
		sl = sizeof(sig);
		assert_int_equal(sg_sig_create(sk, h, true, msg, sizeof(msg), &algid, &al, sig, &sl),
				 0);
		assert_true(al <= SG_SIG_ALGID_MAX);
		assert_true(sg_sig_is_pss(algid, al));
		if (h == 2) {
			assert_int_equal(al, sizeof(pss256));
			assert_memory_equal(algid, pss256, al);
		}
		assert_int_equal(sg_sig_verify(sun, algid, al, msg, sizeof(msg), sig, sl, &why), 0);
		assert_int_equal(
		    sg_sig_verify(sun, algid, al, msg, sizeof(msg) - 1, sig, sl, &why), SG_EAUTH);
	}
	/* The same parameters with the explicit default trailer field (RFC 7427's example
	 * form): taken too. */
	uint8_t trailer[sizeof(pss256) + 5];
	sl = sizeof(sig);
	assert_int_equal(sg_sig_create(sk, 2, true, msg, sizeof(msg), &algid, &al, sig, &sl), 0);
	memcpy(trailer, pss256, sizeof(pss256));
	trailer[1] += 5, trailer[14] += 5;
	memcpy(trailer + sizeof(pss256), "\xa3\x03\x02\x01\x01", 5);
	assert_int_equal(sg_sig_verify(sun, trailer, sizeof(trailer), msg, sizeof(msg), sig, sl, &why),
			 0);
	assert_false(sg_sig_is_pss(rsa256, sizeof(rsa256)));
	sl = sizeof(sig);
	assert_int_equal(sg_sig_create(mk, 3, true, msg, sizeof(msg), &algid, &al, sig, &sl),
			 SG_EINVAL);
	sg_privkey_free(mk);
	sg_privkey_free(sk);
	sg_cert_free(moon);
	sg_cert_free(sun);
}

/* Distinguished names written as text (strongSwan's identification.c syntax and encoding),
 * matched against certificates and DNs a peer sends. */
static void test_dn(void **state)
{
	/* Built by hand from X.690: SEQUENCE of SETs of {OID, value}; PrintableString where the
	 * characters allow, IA5String for E=, UTF8String otherwise (strongSwan's atodn). */
	static const char want_hex[] =
	    "3067310b300906035504061302434831133011060355040a130a7374726f6e675377616e310d300b06"
	    "0355040313046d6f6f6e3122302006092a864886f70d01090116136d6f6f6e407374726f6e67737761"
	    "6e2e6f72673110300e060355040b0c075ac3bc72696368";
	uint8_t want[128], der[512], der2[512];
	size_t wl = strlen(want_hex) / 2, dl, dl2;
	const char *why = NULL;
	char text[256];
	(void)state;
	for (size_t i = 0; i < wl; i++)
		sscanf(want_hex + 2 * i, "%2hhx", &want[i]);
	assert_int_equal(sg_dn_from_text("C=CH, O=strongSwan, CN=moon, E=moon@strongswan.org, "
					 "OU=Z\xc3\xbcrich",
					 der, sizeof(der), &dl, &why),
			 0);
	assert_int_equal(dl, wl);
	assert_memory_equal(der, want, wl);
	/* The slash form, names in any case, spaces around the parts: the same DER. */
	assert_int_equal(sg_dn_from_text("/c=CH/o = strongSwan/cn=moon /email=moon@strongswan.org"
					 "/ou=Z\xc3\xbcrich",
					 der2, sizeof(der2), &dl2, &why),
			 0);
	assert_int_equal(dl2, wl);
	assert_memory_equal(der2, want, wl);
	assert_string_equal(sg_dn_to_text(der, dl, text, sizeof(text)),
			    "C=CH, O=strongSwan, CN=moon, E=moon@strongswan.org, OU=Z\xc3\xbcrich");
	assert_true(sg_dn_valid(der, dl));
	assert_false(sg_dn_valid(der, dl - 1));
	/* Errors name the problem. */
	const struct {
		const char *text, *why;
	} bad[] = {
	    {"C=CH, XX=y", "unknown attribute in the DN"},
	    {"C=CH, CN", "a DN part is not name=value"},
	    {"C=CH, CN=", "an empty value in the DN"},
	    {"CN=\xff\xfe", "a DN value that is not UTF-8"},
	    {"", "an empty DN"},
	};
	for (size_t i = 0; i < SG_ARRAY_LEN(bad); i++) {
		why = NULL;
		assert_int_equal(sg_dn_from_text(bad[i].text, der2, sizeof(der2), &dl2, &why),
				 SG_EINVAL);
		assert_non_null(why);
		if (strncmp(why, bad[i].why, strlen(bad[i].why)))
			fail_msg("%s: got \"%s\"", bad[i].text, why);
	}
	assert_int_equal(sg_dn_from_text("C=CH, O=strongSwan", der2, 8, &dl2, &why), SG_ERANGE);
	/* Matching: case and string type do not matter, order and count do; "*" is a wildcard. */
	struct sg_cert *moon = cert("moon.pem");
	const uint8_t *subj;
	size_t sl;
	unsigned wc = 9;
	sg_cert_subject(moon, &subj, &sl);
	assert_int_equal(sg_dn_from_text("C=ch, O=SecureGuard test, CN=MOON.example", der2,
					 sizeof(der2), &dl2, &why),
			 0);
	assert_memory_not_equal(der2, subj, SG_MIN(dl2, sl)); /* PrintableString vs UTF8String */
	assert_true(sg_dn_match(der2, dl2, subj, sl, &wc));
	assert_int_equal(wc, 0);
	assert_true(sg_cert_has_id(moon, 9, der2, dl2));
	assert_int_equal(sg_dn_from_text("C=CH, O=*, CN=*", der2, sizeof(der2), &dl2, &why), 0);
	assert_true(sg_dn_match(der2, dl2, subj, sl, &wc));
	assert_int_equal(wc, 2);
	assert_false(sg_cert_has_id(moon, 9, der2, dl2)); /* a wildcard is no identity */
	const char *const no[] = {"C=CH, O=SecureGuard Test", "CN=moon.example, O=SecureGuard Test, C=CH",
				  "C=CH, O=SecureGuard Test, CN=mars.example",
				  "C=CH, OU=SecureGuard Test, CN=moon.example"};
	for (size_t i = 0; i < SG_ARRAY_LEN(no); i++) {
		assert_int_equal(sg_dn_from_text(no[i], der2, sizeof(der2), &dl2, &why), 0);
		if (sg_dn_match(der2, dl2, subj, sl, NULL))
			fail_msg("%s matched moon's subject", no[i]);
	}
	assert_false(sg_dn_match(subj, sl - 1, subj, sl, NULL));
	/* CA flags: the test CA is one, moon is not. */
	struct sg_cert *ca = cert("ca.pem");
	assert_true(sg_cert_is_ca(ca));
	assert_false(sg_cert_is_ca(moon));
	/* References: a holder keeps the certificate alive after its loader lets go. */
	assert_ptr_equal(sg_cert_ref(ca), ca);
	sg_cert_free(ca);
	assert_true(sg_cert_is_ca(ca));
	sg_cert_free(ca);
	sg_cert_free(moon);
}

/* Encrypted key files (swanctl's secrets.private* with a secret): decrypted with the right
 * passphrase to the same key, refused with SG_EAUTH with a wrong one or none, never prompting;
 * a key that is not encrypted passes through; garbage is SG_EINVAL. */
static void test_encrypted_keys(void **state)
{
	(void)state;
	static const struct {
		const char *file, *pass, *cert;
	} cases[] = {
	    {"moon.enc.key", "moon passphrase", "moon.pem"}, /* PKCS#8, PBES2 AES-256-CBC */
	    {"sun.enc.key", "sun passphrase", "sun.pem"},    /* traditional, Proc-Type */
	    {"moon.key", NULL, "moon.pem"},		     /* not encrypted */
	};
	for (size_t i = 0; i < SG_ARRAY_LEN(cases); i++) {
		size_t n, dn;
		uint8_t *d = slurp(cases[i].file, &n), *der;
		const uint8_t *p = (const uint8_t *)cases[i].pass;
		size_t pl = p ? strlen(cases[i].pass) : 0;
		assert_int_equal(sg_privkey_decrypt(d, n, p, pl, &der, &dn), 0);
		struct sg_privkey *k;
		assert_int_equal(sg_privkey_load(der, dn, &k), 0);
		struct sg_cert *c = cert(cases[i].cert);
		assert_true(sg_privkey_matches(k, c));
		sg_cert_free(c);
		sg_privkey_free(k);
		sg_memzero(der, dn);
		free(der);
		if (p) {
			/* Wrong passphrase, none, and the encrypted file given as a plain key. */
			der = (uint8_t *)1;
			assert_int_equal(
			    sg_privkey_decrypt(d, n, (const uint8_t *)"wrong", 5, &der, &dn),
			    SG_EAUTH);
			assert_null(der);
			assert_int_equal(sg_privkey_decrypt(d, n, NULL, 0, &der, &dn), SG_EAUTH);
			assert_int_not_equal(sg_privkey_load(d, n, &k), 0);
		}
		free(d);
	}
	/* The DER form of an encrypted PKCS#8 key (from the PEM above). */
	size_t n, dn;
	uint8_t *d = slurp("moon.enc.key", &n), *der;
	d[n] = 0; /* slurp's buffer is 64 KiB */
	char *b = strstr((char *)d, "-----\n"), *e = strstr((char *)d, "\n-----END");
	assert_non_null(b);
	assert_non_null(e);
	b += 6, *e = 0;
	uint8_t bin[2048];
	char b64[4096];
	size_t bn = 0;
	for (const char *q = b; *q; q++)
		if (*q != '\n' && bn + 1 < sizeof(b64))
			b64[bn++] = *q;
	int bl = sg_b64_decode(bin, sizeof(bin), b64, bn, false);
	assert_true(bl > 0);
	assert_int_equal(
	    sg_privkey_decrypt(bin, (size_t)bl, (const uint8_t *)"moon passphrase", 15, &der, &dn),
	    0);
	sg_memzero(der, dn);
	free(der);
	assert_int_equal(
	    sg_privkey_decrypt(bin, (size_t)bl, (const uint8_t *)"wrong", 5, &der, &dn), SG_EAUTH);
	free(d);
	/* Not a key at all. */
	assert_int_equal(sg_privkey_decrypt((const uint8_t *)"hello", 5, NULL, 0, &der, &dn),
			 SG_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_certs),
	    cmocka_unit_test(test_signatures),
	    cmocka_unit_test(test_dn),
	    cmocka_unit_test(test_encrypted_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
