/* MACs and cookies: whitepaper 5.4.4 (mac1/mac2) and 5.4.7 (cookie reply). */
#include "cookie.h"

#include <string.h>

#include "common/bytes.h"
#include "crypto/crypto.h"
#include "noise.h"

static bool derive(uint8_t out[32], const char *label, const uint8_t pub[32])
{
	struct sg_iov iov[2] = {{label, 8}, {pub, 32}};
	return sg_blake2s(out, iov, 2);
}

bool cookie_checker_set_key(struct cookie_checker *c, const uint8_t pub[32])
{
	if (!pub) {
		sg_memzero(c->mac1_key, sizeof(c->mac1_key));
		sg_memzero(c->cookie_key, sizeof(c->cookie_key));
		c->has_keys = false;
		return true;
	}
	c->has_keys = derive(c->mac1_key, wg_label_mac1, pub) &&
		      derive(c->cookie_key, wg_label_cookie, pub);
	return c->has_keys;
}

void cookie_checker_wipe(struct cookie_checker *c)
{
	sg_memzero(c, sizeof(*c));
}

bool cookie_maker_init(struct cookie_maker *m, const uint8_t peer_pub[32])
{
	memset(m, 0, sizeof(*m));
	return derive(m->mac1_key, wg_label_mac1, peer_pub) &&
	       derive(m->cookie_key, wg_label_cookie, peer_pub);
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
static bool make_cookie(struct cookie_checker *c, uint8_t out[WG_COOKIE_LEN], const uint8_t *src,
			size_t srclen, uint64_t now)
{
	if (!c->has_secret || expired(c->secret_birth, COOKIE_SECRET_MAX_AGE_NS, now)) {
		if (!sg_random_bytes(c->secret, sizeof(c->secret)))
			return false;
		c->secret_birth = now;
		c->has_secret = true;
	}
	struct sg_iov iov = {src, srclen};
	return sg_blake2s_mac128(out, c->secret, sizeof(c->secret), &iov, 1);
}

enum cookie_mac_state cookie_validate(struct cookie_checker *c, const uint8_t *msg, size_t len,
				      bool check_cookie, const uint8_t *src, size_t srclen,
				      uint64_t now)
{
	uint8_t mac[WG_COOKIE_LEN], cookie[WG_COOKIE_LEN];
	enum cookie_mac_state ret = COOKIE_INVALID_MAC;
	const uint8_t *macs = msg + len - sizeof(struct wg_msg_macs);

	if (!c->has_keys || len < sizeof(struct wg_msg_macs) + 4)
		return COOKIE_INVALID_MAC;
	/* mac1 = MAC(HASH(LABEL_MAC1 || Spub_m'), msg up to mac1) */
	struct sg_iov iov = {msg, (size_t)(macs - msg)};
	if (!sg_blake2s_mac128(mac, c->mac1_key, 32, &iov, 1) || !sg_memeq(mac, macs, WG_COOKIE_LEN))
		goto out;
	ret = COOKIE_VALID_MAC_NO_COOKIE;
	if (!check_cookie)
		goto out;
	/* mac2 = MAC(cookie, msg up to mac2) */
	if (!make_cookie(c, cookie, src, srclen, now))
		goto out;
	iov.len += WG_COOKIE_LEN;
	if (!sg_blake2s_mac128(mac, cookie, sizeof(cookie), &iov, 1))
		goto out;
	if (sg_memeq(mac, macs + WG_COOKIE_LEN, WG_COOKIE_LEN))
		ret = COOKIE_VALID_MAC_WITH_COOKIE;
out:
	sg_memzero(cookie, sizeof(cookie));
	return ret;
}

bool cookie_add_macs(struct cookie_maker *m, uint8_t *msg, size_t len, uint64_t now)
{
	uint8_t *macs = msg + len - sizeof(struct wg_msg_macs);
	struct sg_iov iov = {msg, (size_t)(macs - msg)};

	if (!sg_blake2s_mac128(macs, m->mac1_key, 32, &iov, 1))
		return false;
	memcpy(m->last_mac1, macs, WG_COOKIE_LEN);
	m->have_sent_mac1 = true;
	if (m->cookie_valid &&
	    !expired(m->cookie_birth, COOKIE_SECRET_MAX_AGE_NS - COOKIE_SECRET_LATENCY_NS, now)) {
		iov.len += WG_COOKIE_LEN;
		return sg_blake2s_mac128(macs + WG_COOKIE_LEN, m->cookie, WG_COOKIE_LEN, &iov, 1);
	}
	memset(macs + WG_COOKIE_LEN, 0, WG_COOKIE_LEN);
	return true;
}

bool cookie_create_reply(struct cookie_checker *c, uint8_t out[WG_MSG_COOKIE_LEN],
			 const uint8_t *msg, size_t len, uint32_t sender_index, const uint8_t *src,
			 size_t srclen, uint64_t now)
{
	struct wg_msg_cookie *r = (struct wg_msg_cookie *)out;
	const uint8_t *mac1 = msg + len - sizeof(struct wg_msg_macs);
	uint8_t cookie[WG_COOKIE_LEN];
	bool ok;

	memset(out, 0, WG_MSG_COOKIE_LEN);
	r->type_reserved[0] = WG_MSG_COOKIE;
	sg_put_le32(r->receiver_index, sender_index);
	/* msg.cookie = XAEAD(HASH(LABEL_COOKIE || Spub_m), nonce, cookie, last mac1 received) */
	ok = sg_random_bytes(r->nonce, sizeof(r->nonce)) && make_cookie(c, cookie, src, srclen, now) &&
	     sg_xchacha20poly1305_encrypt(r->encrypted_cookie, cookie, WG_COOKIE_LEN, mac1,
					  WG_COOKIE_LEN, r->nonce, c->cookie_key);
	sg_memzero(cookie, sizeof(cookie));
	return ok;
}

bool cookie_consume_reply(struct cookie_maker *m, const uint8_t reply[WG_MSG_COOKIE_LEN],
			  uint64_t now)
{
	const struct wg_msg_cookie *r = (const struct wg_msg_cookie *)reply;
	uint8_t cookie[WG_COOKIE_LEN];

	if (!m->have_sent_mac1)
		return false;
	if (!sg_xchacha20poly1305_decrypt(cookie, r->encrypted_cookie, sizeof(r->encrypted_cookie),
					  m->last_mac1, WG_COOKIE_LEN, r->nonce, m->cookie_key)) {
		sg_memzero(cookie, sizeof(cookie)); /* may hold unauthenticated plaintext */
		return false;
	}
	memcpy(m->cookie, cookie, WG_COOKIE_LEN);
	sg_memzero(cookie, sizeof(cookie));
	m->cookie_birth = now;
	m->cookie_valid = true;
	m->have_sent_mac1 = false;
	return true;
}
