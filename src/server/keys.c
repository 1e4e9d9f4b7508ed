/* Keys of the management server, all derived from one master key file.
 *
 * The master key is 64 random bytes, stored hex-encoded in a file of mode 0600 (created on first
 * start). Every server of a PostgreSQL cluster must share the same file (--key-file), because
 * access tokens signed by one server are checked by another and private keys sealed by one are
 * opened by another. From it, HKDF-SHA-384 (RFC 5869) with distinct info labels derives:
 *   "secureguard-server jwt-hs384 v1"     48 bytes, the HS384 key of access tokens (RFC 7518 3.2)
 *   "secureguard-server at-rest v1"       32 bytes, AES-256-GCM key of private keys in the db
 *   "secureguard-server client-auth v1"   32 bytes, the X25519 key clients prove theirs against
 *   "secureguard-server challenge v1"     32 bytes, HMAC key of stateless client-auth challenges
 *   "secureguard-server oidc-es384 v1"    48 bytes, the OpenID provider's P-384 signing scalar
 *                                         (" #N" appended while a value is not below the order)
 *
 * With --key-uri the master key is sealed by a P-384 key in a PKCS#11 token (crypto/hsm.h) and
 * the key file holds no secret: an ECIES envelope (SEC 1 section 5.1 with HKDF-SHA-384 and
 * AES-256-GCM) of the 64 bytes to the token's public key:
 *   secureguard-master-key v1 pkcs11-p384-ecdh
 *   token-key HEX      the token key's public point, SEC1 compressed (49 bytes)
 *   ephemeral HEX      E = e*G of a one-time scalar e, thrown away once the file is written
 *   sealed HEX         iv[12] || AES-256-GCM(KEK, master)[64] || tag[16]
 * KEK = HKDF-SHA-384(salt = E || T, ikm = x(e*T) = x(t*E), info "secureguard-server master-kek
 * v1"), 32 bytes; the additional data is the first line, T and E. Opening needs t*E, which only
 * the token computes (CKM_ECDH1_DERIVE); the file yields nothing without it (computational
 * Diffie-Hellman on P-384). docs/SERVER.md, "Master key in an HSM".
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "crypto/hsm.h"
#include "secureguard/sg_errors.h"
#include "server/srv_int.h"

#define MASTER_LEN 64

static int read_master(const char *path, uint8_t key[MASTER_LEN], char *err, size_t errlen)
{
	char buf[2 * MASTER_LEN + 2];
	struct stat st;
	ssize_t n;
	int fd, rc = SG_EIO;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return errno == ENOENT ? SG_ENOENT : SG_EIO;
	}
	if (fstat(fd, &st) || (st.st_mode & 077)) {
		snprintf(err, errlen, "%s: must not be readable by group or others (chmod 600)",
			 path);
		goto out;
	}
	n = read(fd, buf, sizeof(buf));
	if (n < 2 * MASTER_LEN || (n > 2 * MASTER_LEN && buf[2 * MASTER_LEN] != '\n')) {
		snprintf(err, errlen, "%s: must hold %d hex digits", path, 2 * MASTER_LEN);
		rc = SG_EPARSE;
		goto out;
	}
	for (int i = 0; i < MASTER_LEN; i++) {
		int hi = sg_hexval(buf[2 * i]), lo = sg_hexval(buf[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			snprintf(err, errlen, "%s: not hex at offset %d", path, 2 * i);
			rc = SG_EPARSE;
			goto out;
		}
		key[i] = (uint8_t)(hi << 4 | lo);
	}
	rc = 0;
out:
	sg_memzero(buf, sizeof(buf));
	close(fd);
	return rc;
}

/* Writes a new file of mode 0600 whole to a temporary file, then links it into place: link(2)
 * fails with EEXIST when another server got there first, so two servers starting at once never
 * overwrite each other's key, and neither ever reads a key file the other has not finished. */
static int write_new(const char *path, const char *text, size_t len, bool replace, char *err,
		     size_t errlen)
{
	char tmp[PATH_MAX];
	int fd, rc = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp)) {
		snprintf(err, errlen, "%s: path too long", path);
		return SG_EINVAL;
	}
	fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		return SG_EIO;
	}
	if (write(fd, text, len) != (ssize_t)len || fsync(fd)) {
		snprintf(err, errlen, "%s: write failed", tmp);
		rc = SG_EIO;
	}
	if (close(fd) && !rc)
		rc = SG_EIO;
	/* replace (seal-key): rename(2) puts the new file in place whole, or leaves the old. */
	if (!rc && (replace ? rename(tmp, path) : link(tmp, path)) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		rc = errno == EEXIST ? SG_EEXIST : SG_EIO;
	}
	unlink(tmp);
	return rc;
}

static int create_master(const char *path, uint8_t key[MASTER_LEN], char *err, size_t errlen)
{
	char hex[2 * MASTER_LEN + 2];
	int rc;

	if (!sg_random_bytes(key, MASTER_LEN)) {
		snprintf(err, errlen, "no randomness for the master key");
		return SG_ECRYPTO;
	}
	srv_hex(hex, key, MASTER_LEN);
	hex[2 * MASTER_LEN] = '\n';
	rc = write_new(path, hex, 2 * MASTER_LEN + 1, false, err, errlen);
	sg_memzero(hex, sizeof(hex));
	return rc;
}

static bool derive(uint8_t *out, size_t len, const uint8_t master[MASTER_LEN], const char *info)
{
	return sg_hkdf_sha384(out, len, NULL, 0, master, MASTER_LEN, (const uint8_t *)info,
			      strlen(info));
}

/* An ES384 key of the server (the OpenID provider's, the TLS session tokens'): a scalar in
 * [1, n) (a 384-bit value is at or above P-384's order with probability about 2^-190; the next
 * label then), its public point, and its key id: the RFC 7638 thumbprint,
 * base64url(SHA-256({"crv":"P-384","kty":"EC","x":X,"y":Y})). */
static bool derive_es384(uint8_t priv[48], uint8_t px[48], uint8_t py[48], char kid[48],
			 const uint8_t master[MASTER_LEN], const char *base)
{
	char label[96], x[72], y[72], jwk[256];
	uint8_t h[SG_SHA256_LEN];

	for (int i = 0; i < 16; i++) {
		if (i)
			snprintf(label, sizeof(label), "%s #%d", base, i);
		else
			snprintf(label, sizeof(label), "%s", base);
		if (!derive(priv, 48, master, label))
			return false;
		if (sg_p384_public_xy(px, py, priv)) {
			struct sg_iov iov;

			srv_b64url(x, px, 48);
			srv_b64url(y, py, 48);
			snprintf(jwk, sizeof(jwk), "{\"crv\":\"P-384\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
				 x, y);
			iov = (struct sg_iov){jwk, strlen(jwk)};
			if (!sg_sha256(h, &iov, 1))
				return false;
			srv_b64url(kid, h, sizeof(h));
			return true;
		}
	}
	return false;
}

/* ---- a master key sealed by a token ------------------------------------------------------ */

#define SEALED_HEAD "secureguard-master-key v1 pkcs11-p384-ecdh"
#define SEALED_LEN  (12 + MASTER_LEN + SG_AEAD_TAG_LEN)
#define KEK_INFO    "secureguard-server master-kek v1"

static bool hex_field(const char **p, const char *end, const char *name, uint8_t *out, size_t n)
{
	size_t nl = strlen(name);

	if ((size_t)(end - *p) < nl + 1 + 2 * n + 1 || memcmp(*p, name, nl) || (*p)[nl] != ' ' ||
	    (*p)[nl + 1 + 2 * n] != '\n')
		return false;
	*p += nl + 1;
	for (size_t i = 0; i < n; i++) {
		int hi = sg_hexval((*p)[2 * i]), lo = sg_hexval((*p)[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	*p += 2 * n + 1;
	return true;
}

int srv_master_sealed_parse(const char *buf, size_t len, struct srv_sealed_master *m,
			    const char **why)
{
	const char *p = buf, *end = buf + len;

	if (len < sizeof(SEALED_HEAD) || memcmp(buf, SEALED_HEAD "\n", sizeof(SEALED_HEAD))) {
		*why = "line 1: expected \"" SEALED_HEAD "\"";
		return SG_EPARSE;
	}
	p += sizeof(SEALED_HEAD);
	if (!hex_field(&p, end, "token-key", m->token_pub, sizeof(m->token_pub)) ||
	    !sg_p384_public_valid(m->token_pub)) {
		*why = "line 2: expected token-key and 98 hex digits of a P-384 point";
		return SG_EPARSE;
	}
	if (!hex_field(&p, end, "ephemeral", m->eph_pub, sizeof(m->eph_pub)) ||
	    !sg_p384_public_valid(m->eph_pub)) {
		*why = "line 3: expected ephemeral and 98 hex digits of a P-384 point";
		return SG_EPARSE;
	}
	if (!hex_field(&p, end, "sealed", m->sealed, sizeof(m->sealed))) {
		*why = "line 4: expected sealed and 184 hex digits";
		return SG_EPARSE;
	}
	if (p != end) {
		*why = "line 5: unexpected text after the sealed key";
		return SG_EPARSE;
	}
	return 0;
}

static bool kek_of(uint8_t kek[SG_AES256_KEY_LEN], const uint8_t shared[SG_P384_SHARED_LEN],
		   const struct srv_sealed_master *m, uint8_t *ad, size_t *adn)
{
	uint8_t salt[2 * SG_P384_PUB_LEN];

	memcpy(salt, m->eph_pub, SG_P384_PUB_LEN);
	memcpy(salt + SG_P384_PUB_LEN, m->token_pub, SG_P384_PUB_LEN);
	memcpy(ad, SEALED_HEAD, sizeof(SEALED_HEAD) - 1);
	memcpy(ad + sizeof(SEALED_HEAD) - 1, m->token_pub, SG_P384_PUB_LEN);
	memcpy(ad + sizeof(SEALED_HEAD) - 1 + SG_P384_PUB_LEN, m->eph_pub, SG_P384_PUB_LEN);
	*adn = sizeof(SEALED_HEAD) - 1 + 2 * SG_P384_PUB_LEN;
	return sg_hkdf_sha384(kek, SG_AES256_KEY_LEN, salt, sizeof(salt), shared,
			      SG_P384_SHARED_LEN, (const uint8_t *)KEK_INFO, strlen(KEK_INFO));
}

/* Opens m with the token: ECDH inside it, then the KEK and AES-256-GCM here. */
static int unseal_master(struct sg_hsm_key *k, const struct srv_sealed_master *m,
			 uint8_t master[MASTER_LEN], const char *path, char *err, size_t errlen)
{
	uint8_t pub[SG_P384_PUB_LEN], shared[SG_P384_SHARED_LEN], kek[SG_AES256_KEY_LEN];
	uint8_t ad[sizeof(SEALED_HEAD) + 2 * SG_P384_PUB_LEN];
	size_t adn;
	int rc = SG_ECRYPTO;

	if (!sg_hsm_key_p384_public(k, pub)) {
		snprintf(err, errlen, "the token's key is not a P-384 EC key");
		return SG_EINVAL;
	}
	if (!sg_memeq(pub, m->token_pub, SG_P384_PUB_LEN)) {
		snprintf(err, errlen, "%s was sealed by another token key than --key-uri names", path);
		return SG_EAUTH;
	}
	if (!sg_hsm_key_p384_ecdh(k, shared, m->eph_pub)) {
		snprintf(err, errlen, "%s: the token refused ECDH with its key (CKA_DERIVE?)", path);
		goto out;
	}
	if (!kek_of(kek, shared, m, ad, &adn))
		goto out;
	if (!sg_aes256gcm_decrypt(master, m->sealed + 12, MASTER_LEN + SG_AEAD_TAG_LEN, ad, adn,
				  m->sealed, kek)) {
		snprintf(err, errlen, "%s: the sealed master key does not open (altered file?)",
			 path);
		rc = SG_EAUTH;
		goto out;
	}
	rc = 0;
out:
	sg_memzero(shared, sizeof(shared));
	sg_memzero(kek, sizeof(kek));
	return rc;
}

static bool is_sealed_file(const char *path)
{
	char head[sizeof(SEALED_HEAD)];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	bool sealed = fd >= 0 && read(fd, head, sizeof(head)) == (ssize_t)sizeof(head) &&
		      !memcmp(head, SEALED_HEAD, sizeof(head) - 1);

	if (fd >= 0)
		close(fd);
	return sealed;
}

/* master sealed to the token's public key and written to path (replacing the file when
 * replace), as in create_master; opened once through the token before it is written, so a
 * token that cannot derive is found now, not at the next start. */
static int seal_master(struct sg_hsm_key *k, const char *path, const uint8_t master[MASTER_LEN],
		       bool replace, char *err, size_t errlen)
{
	struct srv_sealed_master m;
	uint8_t eph[SG_P384_PRIV_LEN], shared[SG_P384_SHARED_LEN], kek[SG_AES256_KEY_LEN];
	uint8_t ad[sizeof(SEALED_HEAD) + 2 * SG_P384_PUB_LEN], check[MASTER_LEN];
	char text[sizeof(SEALED_HEAD) + 64 + 4 * SG_P384_PUB_LEN + 2 * SEALED_LEN];
	size_t adn, off;
	int rc = SG_ECRYPTO;

	if (!sg_hsm_key_p384_public(k, m.token_pub)) {
		snprintf(err, errlen, "the token's key is not a P-384 EC key (make one with "
				      "pkcs11-tool --keypairgen --key-type EC:secp384r1)");
		return SG_EINVAL;
	}
	if (!sg_random_bytes(m.sealed, 12) || !sg_p384_generate(eph, m.eph_pub) ||
	    !sg_p384_ecdh(shared, eph, m.token_pub) || !kek_of(kek, shared, &m, ad, &adn) ||
	    !sg_aes256gcm_encrypt(m.sealed + 12, master, MASTER_LEN, ad, adn, m.sealed, kek)) {
		snprintf(err, errlen, "sealing the master key failed");
		goto out;
	}
	rc = unseal_master(k, &m, check, path, err, errlen);
	if (!rc && !sg_memeq(check, master, MASTER_LEN)) {
		snprintf(err, errlen, "the token's ECDH disagrees with its public key");
		rc = SG_ECRYPTO;
	}
	if (rc)
		goto out;
	off = (size_t)snprintf(text, sizeof(text), "%s\ntoken-key ", SEALED_HEAD);
	srv_hex(text + off, m.token_pub, SG_P384_PUB_LEN);
	off += 2 * SG_P384_PUB_LEN;
	off += (size_t)snprintf(text + off, sizeof(text) - off, "\nephemeral ");
	srv_hex(text + off, m.eph_pub, SG_P384_PUB_LEN);
	off += 2 * SG_P384_PUB_LEN;
	off += (size_t)snprintf(text + off, sizeof(text) - off, "\nsealed ");
	srv_hex(text + off, m.sealed, SEALED_LEN);
	off += 2 * SEALED_LEN;
	text[off++] = '\n';
	rc = write_new(path, text, off, replace, err, errlen);
out:
	sg_memzero(eph, sizeof(eph));
	sg_memzero(shared, sizeof(shared));
	sg_memzero(kek, sizeof(kek));
	sg_memzero(check, sizeof(check));
	return rc;
}

static int create_sealed(struct sg_hsm_key *k, const char *path, uint8_t master[MASTER_LEN],
			 char *err, size_t errlen)
{
	int rc;

	if (!sg_random_bytes(master, MASTER_LEN)) {
		snprintf(err, errlen, "no randomness for the master key");
		return SG_ECRYPTO;
	}
	rc = seal_master(k, path, master, false, err, errlen);
	if (rc)
		sg_memzero(master, MASTER_LEN);
	return rc;
}

int srv_keys_seal(const char *path, const char *uri, char *err, size_t errlen)
{
	uint8_t master[MASTER_LEN];
	struct sg_hsm_key *k = NULL;
	int rc;

	if (is_sealed_file(path)) {
		snprintf(err, errlen, "%s is already sealed by a token", path);
		return SG_EEXIST;
	}
	rc = read_master(path, master, err, errlen);
	if (!rc)
		rc = sg_hsm_key_open_env(uri, &k, err, errlen);
	if (!rc)
		rc = seal_master(k, path, master, true, err, errlen);
	sg_hsm_key_free(k);
	sg_memzero(master, sizeof(master));
	return rc;
}

/* Reads the key file whole (at most 4 KiB); SG_ENOENT when it does not exist. */
static int read_small(const char *path, char *buf, size_t cap, size_t *len, char *err,
		      size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n;

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return errno == ENOENT ? SG_ENOENT : SG_EIO;
	}
	n = read(fd, buf, cap);
	close(fd);
	if (n < 0 || (size_t)n == cap) {
		snprintf(err, errlen, "%s: %s", path, n < 0 ? strerror(errno) : "too long");
		return SG_EIO;
	}
	*len = (size_t)n;
	return 0;
}

/* The master key with --key-uri: the sealed file opened by the token, or made on first start. */
static int load_sealed(const char *path, const char *uri, uint8_t master[MASTER_LEN], char *err,
		       size_t errlen)
{
	struct sg_hsm_key *k = NULL;
	struct srv_sealed_master m;
	char buf[1024];
	const char *why;
	size_t len;
	int rc;

	rc = sg_hsm_key_open_env(uri, &k, err, errlen);
	if (rc)
		return rc;
	rc = read_small(path, buf, sizeof(buf), &len, err, errlen);
	if (rc == SG_ENOENT) {
		rc = create_sealed(k, path, master, err, errlen);
		if (!rc) {
			fprintf(stderr,
				"secureguard server: created master key file %s, sealed by the "
				"token's key %.*s\n",
				path, (int)strcspn(uri, "?"), uri);
			goto out;
		}
		if (rc != SG_EEXIST) /* another server made it first: read theirs */
			goto out;
		rc = read_small(path, buf, sizeof(buf), &len, err, errlen);
	}
	if (rc)
		goto out;
	if (len >= 2 * MASTER_LEN && sg_hexval(buf[0]) >= 0 && !is_sealed_file(path)) {
		snprintf(err, errlen,
			 "%s holds a plain master key, not one sealed by the token: --key-uri "
			 "starts from a new key file (docs/SERVER.md, \"Master key in an HSM\")",
			 path);
		rc = SG_EINVAL;
		goto out;
	}
	rc = srv_master_sealed_parse(buf, len, &m, &why);
	if (rc) {
		snprintf(err, errlen, "%s: %s", path, why);
		goto out;
	}
	rc = unseal_master(k, &m, master, path, err, errlen);
out:
	sg_hsm_key_free(k);
	return rc;
}

int srv_keys_load(struct srv *s, const char *path, const char *key_uri, char *err, size_t errlen)
{
	uint8_t master[MASTER_LEN];
	int rc;

	if (key_uri) {
		rc = load_sealed(path, key_uri, master, err, errlen);
	} else if (is_sealed_file(path)) {
		snprintf(err, errlen,
			 "%s is sealed by a PKCS#11 token: start with --key-uri 'pkcs11:...' and "
			 "the token's PIN in SECUREGUARD_PKCS11_PIN or SECUREGUARD_PKCS11_PIN_FILE",
			 path);
		rc = SG_EINVAL;
	} else {
		rc = read_master(path, master, err, errlen);
		if (rc == SG_ENOENT) {
			rc = create_master(path, master, err, errlen);
			if (rc == SG_EEXIST)
				rc = read_master(path, master, err, errlen);
			else if (!rc)
				fprintf(stderr,
					"secureguard server: created master key file %s\n", path);
		}
	}
	if (rc)
		goto out;
	if (!derive(s->jwt_key, sizeof(s->jwt_key), master, "secureguard-server jwt-hs384 v1") ||
	    !derive(s->enc_key, sizeof(s->enc_key), master, "secureguard-server at-rest v1") ||
	    !derive(s->auth_priv, sizeof(s->auth_priv), master,
		    "secureguard-server client-auth v1") ||
	    !derive(s->chal_key, sizeof(s->chal_key), master, "secureguard-server challenge v1") ||
	    !derive(s->psk_key, sizeof(s->psk_key), master, "secureguard-server policy-psk v1") ||
	    !derive(s->etag_key, sizeof(s->etag_key), master,
		    "secureguard-server agent-revision v1") ||
	    !derive(s->cursor_key, sizeof(s->cursor_key), master,
		    "secureguard-server list-cursor v1") ||
	    !derive_es384(s->oidc_priv, s->oidc_x, s->oidc_y, s->oidc_kid, master,
			  "secureguard-server oidc-es384 v1") ||
	    !derive_es384(s->tlstok_priv, s->tlstok_x, s->tlstok_y, s->tlstok_kid, master,
			  "secureguard-server tls-session-es384 v1")) {
		snprintf(err, errlen, "key derivation failed");
		rc = SG_ECRYPTO;
		goto out;
	}
	sg_x25519_clamp(s->auth_priv);
	if (!sg_x25519_public(s->auth_pub, s->auth_priv)) {
		snprintf(err, errlen, "key derivation failed");
		rc = SG_ECRYPTO;
	}
out:
	sg_memzero(master, sizeof(master));
	return rc;
}

/* Sealed form: "v1:" base64(iv[12] || ciphertext || tag[16]); the additional data binds the blob
 * to its client and key kind, so a blob copied to another row does not open. */
static size_t make_ad(char *ad, size_t cap, const char *client_id, const char *kind)
{
	return (size_t)snprintf(ad, cap, "secureguard client key|%s|%s", client_id, kind);
}

char *srv_seal(const struct srv *s, const char *plain, const char *client_id, const char *kind)
{
	size_t n = strlen(plain), adn;
	uint8_t *buf = NULL;
	char ad[160], *out = NULL;

	if (n > 1024)
		return NULL;
	adn = make_ad(ad, sizeof(ad), client_id, kind);
	buf = malloc(12 + n + SG_AEAD_TAG_LEN);
	out = malloc(3 + 4 * ((12 + n + SG_AEAD_TAG_LEN + 2) / 3) + 1);
	if (!buf || !out || !sg_random_bytes(buf, 12) ||
	    !sg_aes256gcm_encrypt(buf + 12, (const uint8_t *)plain, n, (const uint8_t *)ad, adn,
				  buf, s->enc_key)) {
		free(out);
		out = NULL;
		goto done;
	}
	memcpy(out, "v1:", 3);
	srv_b64(out + 3, buf, 12 + n + SG_AEAD_TAG_LEN);
done:
	free(buf);
	return out;
}

char *srv_open(const struct srv *s, const char *blob, const char *client_id, const char *kind)
{
	size_t bl, adn;
	uint8_t *buf;
	char ad[160], *plain = NULL;
	int n;

	if (!blob || strncmp(blob, "v1:", 3))
		return NULL;
	bl = strlen(blob + 3);
	if (bl > 4096)
		return NULL;
	buf = malloc(bl);
	if (!buf)
		return NULL;
	n = srv_b64_decode(buf, bl, blob + 3, bl);
	if (n < 12 + SG_AEAD_TAG_LEN)
		goto out;
	plain = malloc((size_t)n - 12 - SG_AEAD_TAG_LEN + 1);
	if (!plain)
		goto out;
	adn = make_ad(ad, sizeof(ad), client_id, kind);
	if (!sg_aes256gcm_decrypt((uint8_t *)plain, buf + 12, (size_t)n - 12, (const uint8_t *)ad,
				  adn, buf, s->enc_key)) {
		free(plain);
		plain = NULL;
		goto out;
	}
	plain[n - 12 - SG_AEAD_TAG_LEN] = 0;
out:
	sg_memzero(buf, bl);
	free(buf);
	return plain;
}

void srv_free_secret(char *p)
{
	if (p) {
		sg_memzero(p, strlen(p));
		free(p);
	}
}
