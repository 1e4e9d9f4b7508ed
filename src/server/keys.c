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
		int hi = srv_hexval(buf[2 * i]), lo = srv_hexval(buf[2 * i + 1]);

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

static int create_master(const char *path, uint8_t key[MASTER_LEN], char *err, size_t errlen)
{
	char hex[2 * MASTER_LEN + 2], tmp[PATH_MAX];
	int fd, rc = 0;

	if (!sg_random_bytes(key, MASTER_LEN)) {
		snprintf(err, errlen, "no randomness for the master key");
		return SG_ECRYPTO;
	}
	srv_hex(hex, key, MASTER_LEN);
	hex[2 * MASTER_LEN] = '\n';
	/* Written whole to a temporary file, then linked into place: link(2) fails with EEXIST
	 * when another server got there first, so two servers starting at once never overwrite
	 * each other's key, and neither ever reads a key file the other has not finished. */
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp)) {
		snprintf(err, errlen, "%s: path too long", path);
		rc = SG_EINVAL;
		goto out;
	}
	fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		rc = SG_EIO;
		goto out;
	}
	if (write(fd, hex, 2 * MASTER_LEN + 1) != 2 * MASTER_LEN + 1 || fsync(fd)) {
		snprintf(err, errlen, "%s: write failed", tmp);
		rc = SG_EIO;
	}
	if (close(fd) && !rc)
		rc = SG_EIO;
	if (!rc && link(tmp, path) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		rc = errno == EEXIST ? SG_EEXIST : SG_EIO;
	}
	unlink(tmp);
out:
	sg_memzero(hex, sizeof(hex));
	return rc;
}

static bool derive(uint8_t *out, size_t len, const uint8_t master[MASTER_LEN], const char *info)
{
	return sg_hkdf_sha384(out, len, NULL, 0, master, MASTER_LEN, (const uint8_t *)info,
			      strlen(info));
}

/* The provider's key: a scalar in [1, n) (a 384-bit value is at or above P-384's order with
 * probability about 2^-190; the next label then), its public point, and its key id: the RFC 7638
 * thumbprint, base64url(SHA-256({"crv":"P-384","kty":"EC","x":X,"y":Y})). */
static bool derive_oidc(struct srv *s, const uint8_t master[MASTER_LEN])
{
	char label[64], x[72], y[72], jwk[256];
	uint8_t h[SG_SHA256_LEN];

	for (int i = 0; i < 16; i++) {
		snprintf(label, sizeof(label), i ? "secureguard-server oidc-es384 v1 #%d"
						 : "secureguard-server oidc-es384 v1",
			 i);
		if (!derive(s->oidc_priv, sizeof(s->oidc_priv), master, label))
			return false;
		if (sg_p384_public_xy(s->oidc_x, s->oidc_y, s->oidc_priv)) {
			struct sg_iov iov;

			srv_b64url(x, s->oidc_x, sizeof(s->oidc_x));
			srv_b64url(y, s->oidc_y, sizeof(s->oidc_y));
			snprintf(jwk, sizeof(jwk), "{\"crv\":\"P-384\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
				 x, y);
			iov = (struct sg_iov){jwk, strlen(jwk)};
			if (!sg_sha256(h, &iov, 1))
				return false;
			srv_b64url(s->oidc_kid, h, sizeof(h));
			return true;
		}
	}
	return false;
}

int srv_keys_load(struct srv *s, const char *path, char *err, size_t errlen)
{
	uint8_t master[MASTER_LEN];
	int rc;

	rc = read_master(path, master, err, errlen);
	if (rc == SG_ENOENT) {
		rc = create_master(path, master, err, errlen);
		if (rc == SG_EEXIST)
			rc = read_master(path, master, err, errlen);
		else if (!rc)
			fprintf(stderr, "secureguard server: created master key file %s\n", path);
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
	    !derive_oidc(s, master)) {
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
