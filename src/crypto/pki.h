/* SecureGuard crypto module, public-key part for IKEv2 authentication: X.509 certificates, their
 * chains to trusted CAs, private keys, and RFC 7427 digital signatures (RSA PKCS#1 v1.5 and
 * ECDSA over SHA-256/384/512, with their ASN.1 AlgorithmIdentifiers). Over OpenSSL 3, behind the
 * same boundary as crypto.h (nothing else includes an OpenSSL header).
 *
 * Identity types are IKEv2's (RFC 7296 3.5): 1 IPv4 address, 2 FQDN, 3 e-mail address (RFC 822),
 * 5 IPv6 address, 9 DER-encoded distinguished name. A certificate holds an identity when its
 * subject is the DN, or a subjectAltName of the matching kind is equal (names compared without
 * case). Errors: 0, SG_EINVAL (input not understood), SG_EAUTH (verification failed), SG_ENOMEM,
 * with *why saying what, where the function has one.
 */
#ifndef SG_CRYPTO_PKI_H
#define SG_CRYPTO_PKI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"

#define SG_SIG_MAX 1024 /* RSA up to 8192 bits */

struct sg_cert;
struct sg_privkey;

/* A certificate from PEM ("-----BEGIN CERTIFICATE-----") or DER. */
int sg_cert_load(const uint8_t *data, size_t len, struct sg_cert **out) SG_WUR;
/* Certificates and keys are reference counted (one thread): _ref adds a holder and returns its
 * argument, _free lets one go and frees on the last. NULL is a no-op for both. */
struct sg_cert *sg_cert_ref(struct sg_cert *c);
void sg_cert_free(struct sg_cert *c);
/* The certificate's DER (for a CERT payload), owned by the certificate. */
void sg_cert_der(const struct sg_cert *c, const uint8_t **der, size_t *len);
/* The subject as DER (an ID_DER_ASN1_DN identity), owned by the certificate. */
void sg_cert_subject(const struct sg_cert *c, const uint8_t **der, size_t *len);
/* SHA-1 of the SubjectPublicKeyInfo: what CERTREQ names a CA by (RFC 7296 3.7). */
bool sg_cert_spki_sha1(const struct sg_cert *c, uint8_t out[20]) SG_WUR;
bool sg_cert_has_id(const struct sg_cert *c, int id_type, const uint8_t *id, size_t len);
/* True if the certificate is a CA's (basicConstraints cA, or a v1 self-signed root). */
bool sg_cert_is_ca(const struct sg_cert *c);
/* True if the certificate's key is an RSA key. */
bool sg_cert_is_rsa(const struct sg_cert *c);
/* One line for logs: the subject in RFC 2253 form, truncated to size. */
const char *sg_cert_name(const struct sg_cert *c, char *buf, size_t size);
/* Verifies that `leaf` chains to one of the trusted `cas` (validity times included, at the
 * current wall time), with `untrusted` intermediates. 0 or SG_EAUTH with *why. */
int sg_cert_verify(const struct sg_cert *leaf, struct sg_cert *const *untrusted, size_t nuntrusted,
		   struct sg_cert *const *cas, size_t ncas, const char **why) SG_WUR;

/* A private key (RSA or EC) from PEM (PKCS#8, traditional) or DER. */
int sg_privkey_load(const uint8_t *data, size_t len, struct sg_privkey **out) SG_WUR;
/* A private key file as swanctl reads it, decrypted with its passphrase (secrets.private*
 * `secret`) when it is encrypted: PEM (PKCS#8 "ENCRYPTED PRIVATE KEY", or traditional with
 * Proc-Type 4,ENCRYPTED) or DER PKCS#8. *der: the key unencrypted, in DER, for sg_privkey_load;
 * the caller wipes (sg_memzero) and frees it. A key that is not encrypted comes out as it is
 * (pass ignored). SG_EAUTH: encrypted, and pass (NULL: none) does not decrypt it; SG_EINVAL: no
 * private key. Never prompts. */
int sg_privkey_decrypt(const uint8_t *data, size_t len, const uint8_t *pass, size_t passlen,
		       uint8_t **der, size_t *derlen) SG_WUR;
struct sg_privkey *sg_privkey_ref(struct sg_privkey *k);
void sg_privkey_free(struct sg_privkey *k);
/* True if the key is the private half of the certificate's public key. */
bool sg_privkey_matches(const struct sg_privkey *k, const struct sg_cert *c);

/* RFC 7427 hash algorithm identifiers (SIGNATURE_HASH_ALGORITHMS): 2 SHA-256, 3 SHA-384,
 * 4 SHA-512. The hash this key signs with by default: SHA-256 for RSA and P-256, SHA-384 for
 * P-384, SHA-512 for P-521. */
unsigned sg_privkey_hash(const struct sg_privkey *k);
bool sg_privkey_is_rsa(const struct sg_privkey *k);
/* Signs `data` (RFC 7427: the AUTH payload's signed octets) with hash `hash` (2, 3 or 4); pss
 * (RSA keys only): RSASSA-PSS (RFC 4055) with MGF1 of the same hash and a salt of its length,
 * else PKCS#1 v1.5. *algid and *algid_len: the static DER AlgorithmIdentifier (at most
 * SG_SIG_ALGID_MAX bytes); sig receives the signature (ECDSA as the DER Ecdsa-Sig-Value),
 * *siglen in: its capacity, out: its length. */
#define SG_SIG_ALGID_MAX 80
int sg_sig_create(const struct sg_privkey *k, unsigned hash, bool pss, const uint8_t *data,
		  size_t len, const uint8_t **algid, size_t *algid_len, uint8_t *sig,
		  size_t *siglen) SG_WUR;
/* Verifies a signature made with the certificate's key under the AlgorithmIdentifier `algid`:
 * RSA PKCS#1 v1.5 and ECDSA with SHA-2 (RFC 7427 A.1, A.3), and RSASSA-PSS in any encoding of
 * its parameters with SHA-2 hashes and MGF1 (RFC 4055; the algorithm must fit the key). 0,
 * SG_EAUTH, SG_EINVAL. */
int sg_sig_verify(const struct sg_cert *c, const uint8_t *algid, size_t algid_len,
		  const uint8_t *data, size_t len, const uint8_t *sig, size_t siglen,
		  const char **why) SG_WUR;

/* Distinguished names (dn.c). Text in strongSwan's form ("C=CH, O=strongSwan, CN=moon", or
 * "/C=CH/O=strongSwan/CN=moon") into DER as charon encodes it (PrintableString, else UTF8String;
 * IA5String for E=). 0, SG_EINVAL (with *why naming the problem) or SG_ERANGE (longer than cap). */
int sg_dn_from_text(const char *s, uint8_t *der, size_t cap, size_t *len, const char **why) SG_WUR;
/* "C=CH, O=strongSwan, CN=moon" of a DER DN, truncated to size; "(invalid DN)" if it is not one. */
const char *sg_dn_to_text(const uint8_t *der, size_t len, char *buf, size_t size);
/* A DN against a configured one: the same attributes in the same order, values equal without
 * regard to case or string type, and a pattern value "*" matching any value (strongSwan's
 * wildcards). *wildcards (may be NULL) gets how many matched that way. */
bool sg_dn_match(const uint8_t *pattern, size_t plen, const uint8_t *dn, size_t len,
		 unsigned *wildcards);
/* True if der is one whole DER DN. */
bool sg_dn_valid(const uint8_t *der, size_t len);

/* True if algid is an RSASSA-PSS AlgorithmIdentifier (whatever its parameters). */
bool sg_sig_is_pss(const uint8_t *algid, size_t len);

#endif
