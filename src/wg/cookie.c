/* MACs and cookies: whitepaper 5.4.4 (mac1/mac2) and 5.4.7 (cookie reply); the fips variants
 * are specified in docs/PROTOCOL.md. */
#include "cookie.h"

#include <string.h>

#include "common/bytes.h"
#include "noise.h"

static bool derive(struct cookie_keys *k, enum sg_suite_id mode, const uint8_t *pub)
{
	const struct sg_suite *su = sg_suite_get(mode);
	uint8_t h[48];
	struct sg_iov iov[2] = {{wg_label_mac1, 8}, {pub, su->dh_pub_len}};

	memset(k, 0, sizeof(*k));
	k->valid = su->hash(k->mac1_key, iov, 2);
	iov[0].base = wg_label_cookie;
	k->valid = k->valid && su->hash(h, iov, 2);
	memcpy(k->cookie_key, h, sizeof(k->cookie_key));
	sg_memzero(h, sizeof(h));
	return k->valid;
}

/* The 16-byte MAC of the suite: keyed BLAKE2s-128 (classic, whitepaper 5.4.4) or HMAC-SHA-384
 * truncated to 16 bytes (fips, SP 800-107 5.3.3 truncation). */
static bool mac16(enum sg_suite_id mode, uint8_t out[WG_COOKIE_LEN], const uint8_t *key,
		  size_t keylen, const uint8_t *data, size_t len)
{
	struct sg_iov iov = {data, len};
	uint8_t full[SG_SHA384_LEN];
	bool ok;

	if (mode == SG_SUITE_CLASSIC)
		return sg_blake2s_mac128(out, key, keylen, &iov, 1);
	ok = sg_hmac_sha384(full, key, keylen, &iov, 1);
	memcpy(out, full, WG_COOKIE_LEN);
	sg_memzero(full, sizeof(full));
	return ok;
}

static size_t mac1_keylen(enum sg_suite_id mode)
{
	return sg_suite_get(mode)->hash_len;
}

bool cookie_checker_set_key(struct cookie_checker *c, enum sg_suite_id mode, const uint8_t *pub)
{
	if (!pub) {
		sg_memzero(&c->keys[mode], sizeof(c->keys[mode]));
		return true;
	}
	return derive(&c->keys[mode], mode, pub);
}

void cookie_checker_wipe(struct cookie_checker *c)
{
	sg_memzero(c, sizeof(*c));
}

bool cookie_maker_init(struct cookie_maker *m, const uint8_t peer_pub[32])
{
	memset(m, 0, sizeof(*m));
	return derive(&m->keys[SG_SUITE_CLASSIC], SG_SUITE_CLASSIC, peer_pub);
}

bool cookie_maker_set_key(struct cookie_maker *m, enum sg_suite_id mode, const uint8_t *pub)
{
	if (!pub) {
		sg_memzero(&m->keys[mode], sizeof(m->keys[mode]));
		return true;
	}
	return derive(&m->keys[mode], mode, pub);
}

void cookie_maker_wipe(struct cookie_maker *m)
{
	sg_memzero(m, sizeof(*m));
}

static bool expired(uint64_t birth, uint64_t age, uint64_t now)
{
	return birth + age <= now;
}

/* cookie = MAC(secret, source address and port): the secret changes every two minutes. */
static bool make_cookie(struct cookie_checker *c, enum sg_suite_id mode,
			uint8_t out[WG_COOKIE_LEN], const uint8_t *src, size_t srclen, uint64_t now)
{
	if (!c->has_secret || expired(c->secret_birth, COOKIE_SECRET_MAX_AGE_NS, now)) {
		if (!sg_random_bytes(c->secret, sizeof(c->secret)))
			return false;
		c->secret_birth = now;
		c->has_secret = true;
	}
	return mac16(mode, out, c->secret, sizeof(c->secret), src, srclen);
}

enum cookie_mac_state cookie_validate(struct cookie_checker *c, enum sg_suite_id mode,
				      const uint8_t *msg, size_t len, bool check_cookie,
				      const uint8_t *src, size_t srclen, uint64_t now)
{
	uint8_t mac[WG_COOKIE_LEN], cookie[WG_COOKIE_LEN];
	enum cookie_mac_state ret = COOKIE_INVALID_MAC;
	const uint8_t *macs = msg + len - sizeof(struct wg_msg_macs);
	const struct cookie_keys *k = &c->keys[mode];

	if (!k->valid || len < sizeof(struct wg_msg_macs) + 4)
		return COOKIE_INVALID_MAC;
	/* mac1 = MAC(HASH(LABEL_MAC1 || Spub_m'), msg up to mac1) */
	if (!mac16(mode, mac, k->mac1_key, mac1_keylen(mode), msg, (size_t)(macs - msg)) ||
	    !sg_memeq(mac, macs, WG_COOKIE_LEN))
		goto out;
	ret = COOKIE_VALID_MAC_NO_COOKIE;
	if (!check_cookie)
		goto out;
	/* mac2 = MAC(cookie, msg up to mac2) */
	if (!make_cookie(c, mode, cookie, src, srclen, now))
		goto out;
	if (!mac16(mode, mac, cookie, sizeof(cookie), msg, (size_t)(macs - msg) + WG_COOKIE_LEN))
		goto out;
	if (sg_memeq(mac, macs + WG_COOKIE_LEN, WG_COOKIE_LEN))
		ret = COOKIE_VALID_MAC_WITH_COOKIE;
out:
	sg_memzero(cookie, sizeof(cookie));
	return ret;
}

bool cookie_add_macs(struct cookie_maker *m, enum sg_suite_id mode, uint8_t *msg, size_t len,
		     uint64_t now)
{
	uint8_t *macs = msg + len - sizeof(struct wg_msg_macs);
	size_t upto = (size_t)(macs - msg);
	const struct cookie_keys *k = &m->keys[mode];

	if (!k->valid || !mac16(mode, macs, k->mac1_key, mac1_keylen(mode), msg, upto))
		return false;
	memcpy(m->last_mac1, macs, WG_COOKIE_LEN);
	m->have_sent_mac1 = true;
	m->last_mac1_mode = mode;
	if (m->cookie_valid && m->cookie_mode == mode &&
	    !expired(m->cookie_birth, COOKIE_SECRET_MAX_AGE_NS - COOKIE_SECRET_LATENCY_NS, now))
		return mac16(mode, macs + WG_COOKIE_LEN, m->cookie, WG_COOKIE_LEN, msg,
			     upto + WG_COOKIE_LEN);
	memset(macs + WG_COOKIE_LEN, 0, WG_COOKIE_LEN);
	return true;
}

size_t cookie_create_reply(struct cookie_checker *c, enum sg_suite_id mode, uint8_t *out,
			   const uint8_t *msg, size_t len, uint32_t sender_index,
			   const uint8_t *src, size_t srclen, uint64_t now)
{
	const uint8_t *mac1 = msg + len - sizeof(struct wg_msg_macs);
	uint8_t cookie[WG_COOKIE_LEN];
	size_t outlen = mode == SG_SUITE_FIPS ? WG_FIPS_COOKIE_LEN : WG_MSG_COOKIE_LEN;
	size_t nlen = mode == SG_SUITE_FIPS ? 12 : WG_COOKIE_NONCE_LEN;
	uint8_t *nonce = out + 8, *sealed = out + 8 + nlen;
	bool ok;

	memset(out, 0, outlen);
	out[0] = WG_MSG_COOKIE;
	out[1] = mode == SG_SUITE_FIPS ? WG_MODE_FIPS : WG_MODE_CLASSIC;
	sg_put_le32(out + 4, sender_index);
	/* msg.cookie = AEAD(HASH(LABEL_COOKIE || Spub_m), random nonce, cookie, last mac1) */
	ok = sg_random_bytes(nonce, nlen) && make_cookie(c, mode, cookie, src, srclen, now);
	if (ok && mode == SG_SUITE_FIPS)
		ok = sg_aes256gcm_encrypt(sealed, cookie, WG_COOKIE_LEN, mac1, WG_COOKIE_LEN, nonce,
					  c->keys[mode].cookie_key);
	else if (ok)
		ok = sg_xchacha20poly1305_encrypt(sealed, cookie, WG_COOKIE_LEN, mac1, WG_COOKIE_LEN,
						  nonce, c->keys[mode].cookie_key);
	sg_memzero(cookie, sizeof(cookie));
	return ok ? outlen : 0;
}

bool cookie_consume_reply(struct cookie_maker *m, enum sg_suite_id mode, const uint8_t *reply,
			  uint64_t now)
{
	size_t nlen = mode == SG_SUITE_FIPS ? 12 : WG_COOKIE_NONCE_LEN;
	const uint8_t *nonce = reply + 8, *sealed = reply + 8 + nlen;
	uint8_t cookie[WG_COOKIE_LEN];
	bool ok;

	if (!m->have_sent_mac1 || m->last_mac1_mode != mode || !m->keys[mode].valid)
		return false;
	if (mode == SG_SUITE_FIPS)
		ok = sg_aes256gcm_decrypt(cookie, sealed, WG_COOKIE_LEN + SG_AEAD_TAG_LEN,
					  m->last_mac1, WG_COOKIE_LEN, nonce, m->keys[mode].cookie_key);
	else
		ok = sg_xchacha20poly1305_decrypt(cookie, sealed, WG_COOKIE_LEN + SG_AEAD_TAG_LEN,
						  m->last_mac1, WG_COOKIE_LEN, nonce,
						  m->keys[mode].cookie_key);
	if (!ok) {
		sg_memzero(cookie, sizeof(cookie)); /* may hold unauthenticated plaintext */
		return false;
	}
	memcpy(m->cookie, cookie, WG_COOKIE_LEN);
	sg_memzero(cookie, sizeof(cookie));
	m->cookie_birth = now;
	m->cookie_valid = true;
	m->cookie_mode = mode;
	m->have_sent_mac1 = false;
	return true;
}
