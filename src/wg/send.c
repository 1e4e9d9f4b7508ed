/* Outbound path: handshake messages, keepalives and transport data (whitepaper 5.4.6), after the
 * kernel's send.c. Packets that wait for a session are staged per peer (the only allocation on
 * the data path, and only before a session exists). */
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "crypto/crypto.h"
#include "wg_int.h"

#define PADDING_MULTIPLE 16

void send_buffer(struct wg_peer *peer, const uint8_t *buf, size_t len, uint8_t ttl)
{
	struct wg_device *dev = peer->dev;
	if (!peer->has_endpoint || !dev->up)
		return;
	if (peer->src_rejected) {
		/* Routing leaves through another interface than the peer's packets come in on:
		 * let it pick the source (the kernel's send4/send6 drop src_if4 so). */
		struct wg_endpoint to = peer->endpoint;
		memset(&to.src6, 0, sizeof(to.src6));
		to.src_ifindex = 0;
		to.has_src = false;
		dev->io.send(dev->io.ctx, peer, &to, buf, len, ttl);
	} else {
		dev->io.send(dev->io.ctx, peer, &peer->endpoint, buf, len, ttl);
	}
	peer->tx_bytes += len;
	peer->tx_packets++;
}

bool send_handshake_initiation(struct wg_peer *peer, uint64_t now, bool is_retry)
{
	uint8_t msg[WG_FIPS_INITIATION_LEN];
	size_t len;
	int mode;

	if (!is_retry)
		peer->handshake_attempts = 0;
	/* Nothing leaves a device that is down; coming up starts afresh (wg_device_set_up). */
	if (!peer->dev->up)
		return false;
	/* At most one initiation per REKEY_TIMEOUT (whitepaper 6.1). */
	if (peer->has_sent_handshake &&
	    !birthdate_expired(peer->last_sent_handshake, REKEY_TIMEOUT, now))
		return false;
	if (!peer->has_endpoint)
		return false;
	mode = peer_choose_mode(peer, now);
	if (mode < 0) {
		/* Keys or policy leave no mode: say so (rate-limited), never hang silently. */
		if (peer->dev->has_key || peer->dev->has_fips_key)
			peer_emit_mode(peer, WG_EVENT_MODE_UNUSABLE,
				       peer_effective_mode(peer) == WG_CRYPTO_FIPS
					       ? "fips_required_no_fips_keys"
				       : peer_effective_mode(peer) == WG_CRYPTO_CLASSIC
					       ? "classic_required_no_classic_keys"
					       : "no_common_keys",
				       now);
		return false;
	}
	peer->last_sent_handshake = now;
	peer->has_sent_handshake = true;
	len = handshake_create_initiation(peer, (enum sg_suite_id)mode, msg, now);
	if (!len || !cookie_add_macs(&peer->act->cookie, (enum sg_suite_id)mode, msg, len, now))
		return false;
	timers_any_authenticated_packet_traversal(peer, now);
	timers_any_authenticated_packet_sent(peer);
	send_buffer(peer, msg, len, 0);
	timers_handshake_initiated(peer, now);
	if (mode == SG_SUITE_FIPS)
		peer->fips_unanswered++;
	else
		peer->fips_unanswered = 0;
	peer_emit(peer, WG_EVENT_HANDSHAKE_INITIATED, is_retry ? "retry" : "first");
	return true;
}

void send_handshake_response(struct wg_peer *peer, uint64_t now)
{
	uint8_t msg[WG_FIPS_RESPONSE_LEN];
	size_t len;

	peer->last_sent_handshake = now;
	peer->has_sent_handshake = true;
	len = handshake_create_response(peer, msg); /* 0 unless an initiation made peer->act */
	if (!len || !cookie_add_macs(&peer->act->cookie, peer->act->hs.mode, msg, len, now))
		return;
	if (!handshake_begin_session(peer, now))
		return;
	timers_session_derived(peer, now);
	timers_any_authenticated_packet_traversal(peer, now);
	timers_any_authenticated_packet_sent(peer);
	send_buffer(peer, msg, len, 0);
}

void send_reject(struct wg_device *dev, const struct wg_endpoint *to, uint8_t wire_mode,
		 uint32_t index, uint16_t caps, enum wg_reject_reason reason)
{
	uint8_t msg[WG_MSG_REJECT_LEN] = {0};

	if (!dev->up)
		return;
	msg[0] = WG_MSG_REJECT;
	msg[1] = wire_mode;
	sg_put_le32(msg + 4, index);
	sg_put_le16(msg + 8, caps);
	msg[10] = (uint8_t)reason;
	dev->io.send(dev->io.ctx, NULL, to, msg, sizeof(msg), 0);
}

static size_t padded_len(size_t len, uint16_t mtu)
{
	size_t last = len;
	if (mtu == 0)
		return (len + PADDING_MULTIPLE - 1) & ~(size_t)(PADDING_MULTIPLE - 1);
	/* Pad to 16 but never beyond the MTU (wireguard-go calculatePaddingSize). */
	if (last > mtu)
		last %= mtu;
	size_t padded = (last + PADDING_MULTIPLE - 1) & ~(size_t)(PADDING_MULTIPLE - 1);
	if (padded > mtu)
		padded = mtu;
	return len + (padded - last);
}

/* Bytes of the datagram that carries an inner packet of `len` bytes, at most: a route MTU only
 * ever pads less than the device's (packet_mtu). */
static size_t datagram_len(const struct wg_device *dev, size_t len)
{
	return WG_MSG_DATA_HEADER_LEN + padded_len(len, dev->mtu) + SG_AEAD_TAG_LEN;
}

/* Destination address of an IP packet, or NULL if it is not IPv4/IPv6. */
static const uint8_t *ip_destination(const uint8_t *pkt, size_t len, int *family)
{
	if (len >= 20 && (pkt[0] >> 4) == 4) {
		*family = AF_INET;
		return pkt + 16;
	}
	if (len >= 40 && (pkt[0] >> 4) == 6) {
		*family = AF_INET6;
		return pkt + 24;
	}
	return NULL;
}

static bool prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned bytes = bits / 8, rest = bits % 8;
	if (memcmp(a, b, bytes) != 0)
		return false;
	return rest == 0 || ((a[bytes] ^ b[bytes]) & (uint8_t)(0xff00 >> rest)) == 0;
}

/* The MTU to pad a packet to: the device's, or the smallest MTU of a route through the interface
 * that covers the destination (wg_device_set_route_mtus; the kernel pads to dst_mtu). */
static uint16_t packet_mtu(const struct wg_device *dev, const uint8_t *pkt, size_t len)
{
	int family;
	const uint8_t *dst;
	uint16_t mtu = dev->mtu;

	if (!dev->n_route_mtus || !len || !(dst = ip_destination(pkt, len, &family)))
		return mtu;
	for (size_t i = 0; i < dev->n_route_mtus; i++) {
		const struct wg_route_mtu *r = &dev->route_mtus[i];
		if (r->family == family && (mtu == 0 || r->mtu < mtu) &&
		    prefix_match(r->addr, dst, r->cidr))
			mtu = r->mtu;
	}
	return mtu;
}

/* Is this WireGuard's (or our FIPS mode's) message, by type, mode byte and exact length? */
static bool looks_like_wg(const uint8_t *m, size_t len)
{
	if (len < 4 || m[2] != 0 || m[3] != 0 || (m[1] != WG_MODE_CLASSIC && m[1] != WG_MODE_FIPS))
		return false;
	bool fips = m[1] == WG_MODE_FIPS;
	switch (m[0]) {
	case WG_MSG_INITIATION:
		return len == (fips ? WG_FIPS_INITIATION_LEN : WG_MSG_INITIATION_LEN);
	case WG_MSG_RESPONSE:
		return len == (fips ? WG_FIPS_RESPONSE_LEN : WG_MSG_RESPONSE_LEN);
	case WG_MSG_COOKIE:
		return len == (fips ? WG_FIPS_COOKIE_LEN : WG_MSG_COOKIE_LEN);
	case WG_MSG_DATA:
		/* Header, plaintext, tag: the padding is to 16 bytes but stops at the MTU, so any
		 * length from a keepalive's on. */
		return len >= WG_MSG_DATA_MIN_LEN;
	case WG_MSG_REJECT:
		return len == WG_MSG_REJECT_LEN;
	default:
		return false;
	}
}

/* The TTL (hop limit) of a packet that may be a tunnel's datagram looping back through us: a
 * UDP datagram carrying a WireGuard message, or an IP fragment (the later fragments of a big
 * datagram show no UDP header). -1 for anything else. Only the fixed IPv6 header is looked at:
 * a datagram a host fragments or sends itself has no other extension header before these. */
static int nested_ttl(const uint8_t *p, size_t len)
{
	size_t off;
	if (len >= 20 && (p[0] >> 4) == 4) {
		size_t ihl = (size_t)(p[0] & 0x0f) * 4;
		if (ihl < 20 || ihl > len)
			return -1;
		if ((p[6] & 0x20) || ((p[6] & 0x1f) | p[7]))
			return p[8]; /* MF set or a fragment offset */
		if (p[9] != IPPROTO_UDP)
			return -1;
		off = ihl;
		if (len < off + 8 || !looks_like_wg(p + off + 8, len - off - 8))
			return -1;
		return p[8];
	}
	if (len >= 40 && (p[0] >> 4) == 6) {
		if (p[6] == IPPROTO_FRAGMENT)
			return p[7];
		if (p[6] != IPPROTO_UDP || len < 48 || !looks_like_wg(p + 48, len - 48))
			return -1;
		return p[7];
	}
	return -1;
}

/* Step 1 of sending one packet with kp: the counter, the header and the padded plaintext in buf
 * (datagram_len bytes). False if the keypair is used up. */
static bool encrypt_prepare(struct wg_peer *peer, struct wg_keypair *kp, const uint8_t *pkt,
			    size_t len, uint8_t *buf, struct wg_crypt_op *op)
{
	size_t plen = padded_len(len, packet_mtu(peer->dev, pkt, len));
	/* A nested datagram leaves a step closer to its end (see wg_device_send); route() has
	 * dropped those with no step left. */
	int ttl = len ? nested_ttl(pkt, len) : -1;
	uint8_t outer_ttl =
	    ttl < 0 ? 0
		    : (uint8_t)SG_MIN(SG_MAX(ttl - WG_NESTED_TTL_STEP, 1), WG_NESTED_TTL_MAX);

	if (kp->send_counter >= REJECT_AFTER_MESSAGES) {
		kp->send_valid = false;
		return false;
	}
	uint64_t counter = kp->send_counter++;
	memset(buf, 0, WG_MSG_DATA_HEADER_LEN);
	buf[0] = WG_MSG_DATA;
	buf[1] = kp->wire_mode;
	sg_put_le32(buf + 4, kp->remote_index);
	sg_put_le64(buf + 8, counter);
	/* A keepalive passes pkt == NULL; a caller may have built the packet in place already. */
	if (len && pkt != buf + WG_MSG_DATA_HEADER_LEN)
		memmove(buf + WG_MSG_DATA_HEADER_LEN, pkt, len);
	memset(buf + WG_MSG_DATA_HEADER_LEN + len, 0, plen - len);
	*op = (struct wg_crypt_op){
	    .aead = kp->tx,
	    .data = buf + WG_MSG_DATA_HEADER_LEN,
	    .len = plen,
	    .encrypt = true,
	    .peer = peer,
	    .kp = kp,
	    .msg = buf,
	    .msg_len = WG_MSG_DATA_HEADER_LEN + plen + SG_AEAD_TAG_LEN,
	    .inner_len = len,
	    .counter = counter,
	    .ttl = outer_ttl,
	};
	kp->suite->nonce(op->nonce, counter);
	kp->ops++;
	return true;
}

/* Step 3: send what was sealed. A failed seal sends nothing (the counter is burnt, which is
 * harmless). */
static void encrypt_complete(struct wg_crypt_op *op, uint64_t now)
{
	struct wg_peer *peer = op->peer;
	bool retired = op->kp->dead; /* by a policy change: its mode may now be refused */

	keypair_release(op->kp);
	op->kp = NULL;
	if (!op->ok || retired)
		return;
	send_buffer(peer, op->msg, op->msg_len, op->ttl);
	timers_any_authenticated_packet_traversal(peer, now);
	timers_any_authenticated_packet_sent(peer);
	if (op->inner_len)
		timers_data_sent(peer, now);
}

/* Encrypts one packet with the current keypair and sends it, all on this thread. False if the
 * keypair is used up. */
static bool encrypt_and_send(struct wg_peer *peer, struct wg_keypair *kp, const uint8_t *pkt,
			     size_t len, uint64_t now)
{
	struct wg_crypt_op op;

	if (!encrypt_prepare(peer, kp, pkt, len, peer->dev->scratch, &op))
		return false;
	wg_crypt_op_run(&op, 0);
	encrypt_complete(&op, now);
	return true;
}

/* Rekey on the sending side when the session is old or has sent too much (whitepaper 6.2). */
static void keep_key_fresh(struct wg_peer *peer, uint64_t now)
{
	struct wg_keypair *kp = peer->kp_current;
	if (!kp || !kp->send_valid)
		return;
	/* Every packet sent past the limit lands here until the new session is up: report the
	 * rekey only when an initiation went out (one per REKEY_TIMEOUT), not once per packet. */
	if (kp->send_counter > REKEY_AFTER_MESSAGES) {
		if (send_handshake_initiation(peer, now, false))
			peer_emit(peer, WG_EVENT_REKEY, "messages");
	} else if (kp->initiator && birthdate_expired(kp->birth, REKEY_AFTER_TIME, now)) {
		if (send_handshake_initiation(peer, now, false))
			peer_emit(peer, WG_EVENT_REKEY, "time");
	}
}

static struct wg_keypair *usable_keypair(struct wg_peer *peer, uint64_t now)
{
	struct wg_keypair *kp = peer->kp_current;
	if (!kp || !kp->send_valid)
		return NULL;
	if (birthdate_expired(kp->birth, REJECT_AFTER_TIME, now) ||
	    kp->send_counter >= REJECT_AFTER_MESSAGES) {
		kp->send_valid = false;
		return NULL;
	}
	return kp;
}

void staged_purge(struct wg_peer *peer)
{
	struct wg_staged *q = &peer->staged;
	while (q->count) {
		unsigned i = q->head;
		free(q->s->pkt[i]);
		q->head = (q->head + 1) % MAX_STAGED_PACKETS;
		q->count--;
	}
	q->head = 0;
	free(q->s);
	q->s = NULL;
}

/* Copies a packet into the peer's staging queue; the oldest is dropped when it is full. */
static void stage(struct wg_peer *peer, const uint8_t *pkt, size_t len)
{
	struct wg_staged *q = &peer->staged;
	if (!q->s && !(q->s = calloc(1, sizeof(*q->s))))
		return;
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		return;
	if (len) /* a keepalive passes pkt == NULL: memcpy(NULL, 0) is still undefined */
		memcpy(copy, pkt, len);
	if (q->count == MAX_STAGED_PACKETS) {
		free(q->s->pkt[q->head]);
		q->s->pkt[q->head] = NULL;
		q->head = (q->head + 1) % MAX_STAGED_PACKETS;
		q->count--;
	}
	unsigned tail = (q->head + q->count) % MAX_STAGED_PACKETS;
	q->s->pkt[tail] = copy;
	q->s->len[tail] = len;
	q->count++;
}

void send_staged(struct wg_peer *peer, uint64_t now)
{
	struct wg_staged *q = &peer->staged;
	struct wg_keypair *kp = usable_keypair(peer, now);

	if (!kp) {
		send_handshake_initiation(peer, now, false);
		return;
	}
	if (!peer->has_endpoint)
		return;
	while (q->count) {
		unsigned i = q->head;
		if (!encrypt_and_send(peer, kp, q->s->pkt[i], q->s->len[i], now)) {
			send_handshake_initiation(peer, now, false);
			return;
		}
		free(q->s->pkt[i]);
		q->s->pkt[i] = NULL;
		q->head = (q->head + 1) % MAX_STAGED_PACKETS;
		q->count--;
	}
	staged_purge(peer); /* empty: give the ring back */
	keep_key_fresh(peer, now);
}

void send_keepalive(struct wg_peer *peer, uint64_t now)
{
	if (!peer->staged.count)
		stage(peer, NULL, 0);
	send_staged(peer, now);
}

/* Routing and the checks before a packet can be sent: its peer, or NULL with *err set. */
static struct wg_peer *route(struct wg_device *dev, const uint8_t *pkt, size_t len, int *err)
{
	int family;
	const uint8_t *dst;
	struct wg_peer *peer;

	if (len > WG_MAX_INNER || !(dst = ip_destination(pkt, len, &family))) {
		*err = SG_EINVAL;
		return NULL;
	}
	if (!dev->up) {
		*err = SG_EDOWN;
		return NULL;
	}
	int ttl = nested_ttl(pkt, len);
	if (ttl >= 0 && ttl <= WG_NESTED_TTL_STEP) {
		/* A tunnel's datagram that has been nested as often as its TTL allows: a loop. */
		dev->stats.tx_loop++;
		*err = SG_ELOOP;
		return NULL;
	}
	peer = wg_allowedips_lookup(dev->aips, family, dst);
	if (!peer) {
		dev->stats.tx_no_route++;
		*err = SG_ENOROUTE;
		return NULL;
	}
	/* Without a private key the packet waits like any other before a session: the kernel
	 * stages it too, and setting the key sends what waits (wg_device_set_private_key). */
	if (!peer->has_endpoint) {
		dev->stats.tx_no_endpoint++;
		*err = SG_ENOROUTE;
		return NULL;
	}
	return peer;
}

int wg_device_send(struct wg_device *dev, uint64_t now, const uint8_t *pkt, size_t len)
{
	int err = 0;
	struct wg_peer *peer = route(dev, pkt, len, &err);

	if (!peer)
		return err;
	/* Fast path: a session exists and nothing waits before this packet. */
	struct wg_keypair *kp = peer->staged.count ? NULL : usable_keypair(peer, now);
	if (kp && encrypt_and_send(peer, kp, pkt, len, now)) {
		keep_key_fresh(peer, now);
		return 0;
	}
	stage(peer, pkt, len);
	send_staged(peer, now);
	return 0;
}

int wg_device_send_prepare(struct wg_device *dev, uint64_t now, const uint8_t *pkt, size_t len,
			   uint8_t *out, size_t out_size, struct wg_crypt_op *op)
{
	int err = 0;
	struct wg_peer *peer = route(dev, pkt, len, &err);

	if (!peer)
		return err;
	struct wg_keypair *kp = peer->staged.count ? NULL : usable_keypair(peer, now);
	if (kp && out_size >= datagram_len(dev, len) && encrypt_prepare(peer, kp, pkt, len, out, op)) {
		dev->ops_in_flight++;
		keep_key_fresh(peer, now);
		return 1;
	}
	if (kp && encrypt_and_send(peer, kp, pkt, len, now)) {
		keep_key_fresh(peer, now);
		return 0;
	}
	stage(peer, pkt, len);
	send_staged(peer, now);
	return 0;
}

void wg_device_send_complete(struct wg_device *dev, uint64_t now, struct wg_crypt_op *op)
{
	dev->ops_in_flight--;
	encrypt_complete(op, now);
}
