/* Inbound path: every datagram from the outer socket (whitepaper 5.4, 6), after the kernel's
 * receive.c. Nothing here trusts the input: each message type has one exact length (data: a
 * minimum), and every drop is counted in the device stats. */
#include <arpa/inet.h>
#include <string.h>

#include "common/bytes.h"
#include "crypto/crypto.h"
#include "wg_int.h"

static void drop(struct wg_device *dev, uint64_t *counter, const char *why,
		 const struct wg_endpoint *from, struct wg_peer *peer)
{
	(*counter)++;
	if (dev->io.event) {
		struct wg_event ev = {WG_EVENT_PACKET_DROPPED, peer, why, from};
		dev->io.event(dev->io.ctx, &ev);
	}
}

/* The bytes a cookie is bound to: source address then port. */
static size_t endpoint_bytes(const struct wg_endpoint *ep, uint8_t out[18])
{
	if (ep->addr.sa.sa_family == AF_INET) {
		memcpy(out, &ep->addr.in4.sin_addr, 4);
		memcpy(out + 4, &ep->addr.in4.sin_port, 2);
		return 6;
	}
	memcpy(out, &ep->addr.in6.sin6_addr, 16);
	memcpy(out + 16, &ep->addr.in6.sin6_port, 2);
	return 18;
}

/* Under load when more than WG_UNDER_LOAD_RATE handshake messages arrived in the current second,
 * and for one second after (the kernel keeps last_under_load the same way). */
static bool under_load(struct wg_device *dev, uint64_t now, unsigned weight)
{
	if (now - dev->load_window_start >= NSEC || now < dev->load_window_start) {
		dev->load_window_start = now;
		dev->load_window_count = 0;
	}
	dev->load_window_count += weight;
	if (dev->forced_under_load || dev->load_window_count > WG_UNDER_LOAD_RATE) {
		dev->last_under_load = now;
		dev->was_under_load = true;
		return true;
	}
	if (dev->was_under_load) {
		if (now - dev->last_under_load < NSEC)
			return true;
		dev->was_under_load = false;
	}
	return false;
}

/* under_load() without counting: what the next handshake message would see. */
static bool under_load_peek(const struct wg_device *dev, uint64_t now)
{
	bool window = now - dev->load_window_start < NSEC && now >= dev->load_window_start;
	return dev->forced_under_load || (window && dev->load_window_count > WG_UNDER_LOAD_RATE) ||
	       (dev->was_under_load && now - dev->last_under_load < NSEC);
}

bool wg_device_handshake_costly(struct wg_device *dev, uint64_t now,
				const struct wg_endpoint *from, const uint8_t *buf, size_t len)
{
	uint8_t src[18];

	if (len < 4 || buf[2] != 0 || buf[3] != 0 ||
	    (buf[1] != WG_MODE_CLASSIC && buf[1] != WG_MODE_FIPS) ||
	    (from->addr.sa.sa_family != AF_INET && from->addr.sa.sa_family != AF_INET6))
		return false;
	bool fips = buf[1] == WG_MODE_FIPS;
	enum sg_suite_id mode = fips ? SG_SUITE_FIPS : SG_SUITE_CLASSIC;
	if (!(buf[0] == WG_MSG_INITIATION &&
	      len == (fips ? WG_FIPS_INITIATION_LEN : WG_MSG_INITIATION_LEN)) &&
	    !(buf[0] == WG_MSG_RESPONSE && len == (fips ? WG_FIPS_RESPONSE_LEN : WG_MSG_RESPONSE_LEN)))
		return false;
	if (!dev->checker.keys[mode].valid)
		return false; /* dropped, or a rate-limited reject: cheap */
	size_t srclen = endpoint_bytes(from, src);
	bool load = under_load_peek(dev, now);
	enum cookie_mac_state st =
	    cookie_validate(&dev->checker, mode, buf, len, load, src, srclen, now);
	if (st == COOKIE_INVALID_MAC || (load && st == COOKIE_VALID_MAC_NO_COOKIE))
		return false;
	return true;
}

/* Roaming (whitepaper 2.1): the endpoint follows the source of the latest authenticated packet.
 * The local address it arrived on is refreshed on every one, so replies stay sticky to it even
 * when only that side moved (e.g. the peer now talks to our second address); only a change of the
 * remote part is an event worth logging. */
static void update_endpoint(struct wg_peer *peer, const struct wg_endpoint *from)
{
	bool same = peer->has_endpoint && wg_endpoint_eq(&peer->endpoint, from);
	bool same_src = same && wg_endpoint_same_source(&peer->endpoint, from);
	if (same_src)
		return; /* the common case: nothing to copy, and the verdict on the source stands */
	peer->endpoint = *from;
	peer->has_endpoint = true;
	peer->src_rejected = false; /* a new source: used until the caller says otherwise */
	if (!peer->dev->io.event)
		return;
	struct wg_event ev = {same ? WG_EVENT_SOURCE_CHANGED : WG_EVENT_ENDPOINT_CHANGED, peer,
			      NULL, &peer->endpoint};
	peer->dev->io.event(peer->dev->io.ctx, &ev);
	if (!same) {
		ev.type = WG_EVENT_SOURCE_CHANGED;
		peer->dev->io.event(peer->dev->io.ctx, &ev);
	}
}

static void receive_cookie(struct wg_device *dev, enum sg_suite_id mode, const uint8_t *buf,
			   const struct wg_endpoint *from, uint64_t now)
{
	struct index_entry *e = index_lookup(dev, sg_le32(buf + 4));
	if (!e) {
		drop(dev, &dev->stats.rx_unknown_index, "cookie_unknown_index", from, NULL);
		return;
	}
	/* An index belongs to a handshake or a session: its peer is active. */
	if (!cookie_consume_reply(&e->peer->act->cookie, mode, buf, now)) {
		drop(dev, &dev->stats.rx_bad_mac, "cookie_decrypt", from, e->peer);
		return;
	}
	peer_emit(e->peer, WG_EVENT_COOKIE_RECEIVED, NULL);
}

static const char *reject_reason_name(uint8_t reason)
{
	switch (reason) {
	case WG_REJECT_FIPS_REQUIRED:
		return "peer_requires_fips";
	case WG_REJECT_FIPS_UNAVAILABLE:
		return "peer_has_no_fips";
	case WG_REJECT_CLASSIC_REQUIRED:
		return "peer_allows_classic_only";
	case WG_REJECT_VERSION:
		return "peer_version_mismatch";
	default:
		return "peer_rejected_unknown_reason";
	}
}

/* A reject answers one of our initiations (docs/PROTOCOL.md, "Reject"). It is not
 * authenticated: it is honoured only for the initiation in flight with that index and mode, it
 * can only move an `auto` peer to the other mode (which dropping FIPS packets would also do),
 * and a `fips` peer only logs it. */
static void receive_reject(struct wg_device *dev, const uint8_t *buf,
			   const struct wg_endpoint *from, uint64_t now)
{
	struct index_entry *e = index_lookup(dev, sg_le32(buf + 4));
	enum sg_suite_id mode = buf[1] == WG_MODE_FIPS ? SG_SUITE_FIPS : SG_SUITE_CLASSIC;
	uint16_t caps = sg_le16(buf + 8);
	uint8_t reason = buf[10];

	if (!e || e->kind != INDEX_HANDSHAKE) {
		drop(dev, &dev->stats.rx_unknown_index, "reject_unknown_index", from, NULL);
		return;
	}
	struct wg_peer *peer = e->peer;
	if (peer->act->hs.state != HANDSHAKE_CREATED_INITIATION || peer->act->hs.mode != mode) {
		drop(dev, &dev->stats.rx_invalid, "reject_not_in_flight", from, peer);
		return;
	}
	/* caps are not recorded: a reject is unauthenticated, stats show only handshake caps. */
	bool is_auto = peer_effective_mode(peer) == WG_CRYPTO_AUTO;
	bool to_classic = is_auto && mode == SG_SUITE_FIPS &&
			  peer_can_mode(peer, SG_SUITE_CLASSIC) && (caps & WG_CAP_CLASSIC);
	bool to_fips = is_auto && mode == SG_SUITE_CLASSIC && reason == WG_REJECT_FIPS_REQUIRED &&
		       (caps & WG_CAP_FIPS) && peer_can_mode(peer, SG_SUITE_FIPS);
	/* At most one reject-driven switch per REKEY_TIMEOUT: forged rejects must not make us
	 * send initiations faster than the retry timer would, nor reset its attempt count. */
	bool may_switch = !peer->last_reject_switch ||
			  birthdate_expired(peer->last_reject_switch, REKEY_TIMEOUT, now);
	peer_emit_mode(peer, WG_EVENT_MODE_REJECTED,
		       to_fips && may_switch ? "peer_requires_fips_switching"
					     : reject_reason_name(reason),
		       now);
	/* fips or classic peers: a packet never changes the mode. Otherwise the initiation is
	 * void, and the other mode goes out at once. */
	if (!may_switch || !(to_classic || to_fips))
		return;
	peer->last_reject_switch = now ? now : 1;
	handshake_clear(peer);
	if (to_classic)
		peer_fallback(peer, "reject", now);
	else
		peer->fallback = false;
	peer->has_sent_handshake = false;
	send_handshake_initiation(peer, now, true);
}

static void authenticated_received(struct wg_peer *peer, size_t len, uint64_t now)
{
	peer->rx_bytes += len;
	peer->rx_packets++;
	timers_any_authenticated_packet_received(peer);
	timers_any_authenticated_packet_traversal(peer, now);
}

static void receive_handshake(struct wg_device *dev, enum sg_suite_id mode, uint8_t *buf,
			      size_t len, uint32_t type, const struct wg_endpoint *from,
			      uint64_t now)
{
	uint8_t src[18];
	size_t srclen = endpoint_bytes(from, src);
	bool load = under_load(dev, now, mode == SG_SUITE_FIPS ? FIPS_LOAD_WEIGHT : 1);
	enum cookie_mac_state st;
	struct wg_peer *peer;

	if (!dev->checker.keys[mode].valid) {
		/* We have no static key of this mode, so mac1 cannot be checked: answer an
		 * initiation with an unauthenticated reject (rate-limited per source, smaller than
		 * what it answers, so no amplification) so the initiator learns why. */
		/* Only a device with a FIPS key does this: one without stays as silent towards
		 * unauthenticated packets as WireGuard is (an auto peer then falls back by
		 * timeout instead of at once). */
		if (type == WG_MSG_INITIATION && dev->has_fips_key &&
		    ratelimiter_allow(dev->reject_limiter, src, srclen == 6 ? 4 : 16, now)) {
			enum wg_reject_reason r = mode == SG_SUITE_FIPS ? WG_REJECT_FIPS_UNAVAILABLE
									: WG_REJECT_FIPS_REQUIRED;
			send_reject(dev, from, buf[1], sg_le32(buf + 4), device_caps(dev), r);
			if (dev->io.event) {
				struct wg_event ev = {WG_EVENT_MODE_REFUSED, NULL,
						      mode == SG_SUITE_FIPS ? "no_fips_key"
									    : "no_classic_key",
						      from};
				dev->io.event(dev->io.ctx, &ev);
			}
		}
		drop(dev, &dev->stats.rx_bad_mac, "no_key_for_mode", from, NULL);
		return;
	}
	st = cookie_validate(&dev->checker, mode, buf, len, load, src, srclen, now);
	if (st == COOKIE_INVALID_MAC) {
		drop(dev, &dev->stats.rx_bad_mac, "bad_mac1", from, NULL);
		return;
	}
	if (load && st == COOKIE_VALID_MAC_NO_COOKIE) {
		/* Under load: prove the source address first (whitepaper 5.3). */
		uint8_t reply[WG_MSG_COOKIE_LEN];
		size_t rlen = cookie_create_reply(&dev->checker, mode, reply, buf, len,
						  sg_le32(buf + 4), src, srclen, now);
		if (rlen) {
			dev->io.send(dev->io.ctx, NULL, from, reply, rlen, 0);
			dev->stats.rx_cookie_sent++;
			struct wg_event ev = {WG_EVENT_COOKIE_SENT, NULL, NULL, from};
			if (dev->io.event)
				dev->io.event(dev->io.ctx, &ev);
		}
		return;
	}
	if (load && !ratelimiter_allow(dev->ratelimiter, src, srclen == 6 ? 4 : 16, now)) {
		drop(dev, &dev->stats.rx_rate_limited, "source_rate_limited", from, NULL);
		return;
	}

	if (type == WG_MSG_INITIATION) {
		enum wg_reject_reason refuse;
		struct wg_peer *refused;
		peer = handshake_consume_initiation(dev, mode, buf, now, &refuse, &refused);
		if (refuse) {
			/* Authenticated peer, refused mode: tell it why. */
			if (ratelimiter_allow(dev->reject_limiter, src, srclen == 6 ? 4 : 16, now))
				send_reject(dev, from, buf[1], sg_le32(buf + 4),
					    peer_local_caps(refused), refuse);
			return;
		}
		if (!peer)
			return;
		update_endpoint(peer, from);
		authenticated_received(peer, len, now);
		send_handshake_response(peer, now);
	} else {
		peer = handshake_consume_response(dev, mode, buf);
		if (!peer)
			return;
		update_endpoint(peer, from);
		/* Before sending: the kernel sends asynchronously, so its data_sent timer event
		 * comes after this receive event; keep that order. */
		authenticated_received(peer, len, now);
		if (handshake_begin_session(peer, now)) {
			timers_session_derived(peer, now);
			timers_handshake_complete(peer);
			peer_emit(peer, WG_EVENT_HANDSHAKE_COMPLETE, "initiator");
			/* Sends what is staged, or a keepalive to confirm the session at once. */
			send_keepalive(peer, now);
		}
	}
}

/* Rekey on the receiving side: the initiator renews before the responder would have to. */
static void keep_key_fresh(struct wg_peer *peer, uint64_t now)
{
	struct wg_keypair *kp = peer->kp_current;
	if (peer->sent_lastminute_handshake || !kp || !kp->send_valid || !kp->initiator)
		return;
	if (birthdate_expired(kp->birth, REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT, now)) {
		peer->sent_lastminute_handshake = true;
		if (send_handshake_initiation(peer, now, false))
			peer_emit(peer, WG_EVENT_REKEY, "time");
	}
}

/* Length of the IP packet at the start of the payload, or 0 if it is not a valid one. Also
 * returns the source address for the allowed-IPs check. */
static size_t inner_packet(const uint8_t *p, size_t len, int *family, const uint8_t **src)
{
	if (len >= 20 && (p[0] >> 4) == 4) {
		size_t total = (size_t)p[2] << 8 | p[3];
		if (total < 20 || total > len || (p[0] & 0x0f) < 5)
			return 0;
		*family = AF_INET;
		*src = p + 12;
		return total;
	}
	if (len >= 40 && (p[0] >> 4) == 6) {
		size_t total = 40 + ((size_t)p[4] << 8 | p[5]);
		if (total > len)
			return 0;
		*family = AF_INET6;
		*src = p + 8;
		return total;
	}
	return 0;
}

/* Step 1 of a transport data message: its keypair, checked for mode and age, and the op that
 * opens it in place. False if it was dropped. */
static bool receive_data_prepare(struct wg_device *dev, uint8_t *buf, size_t len,
				 const struct wg_endpoint *from, uint64_t now,
				 struct wg_crypt_op *op)
{
	struct index_entry *e = index_lookup(dev, sg_le32(buf + 4));

	if (!e || e->kind != INDEX_KEYPAIR) {
		drop(dev, &dev->stats.rx_unknown_index, "data_unknown_index", from, NULL);
		return false;
	}
	struct wg_keypair *kp = e->keypair;
	struct wg_peer *peer = e->peer;
	if (buf[1] != kp->wire_mode || !peer_mode_allowed(peer, kp->suite->id)) {
		/* A classic packet never opens a FIPS session's index, nor the reverse; and no
		 * session of a mode the policy refuses is used (peer_drop_sessions removes them
		 * when the policy changes; this keeps it so whatever the order of events). */
		drop(dev, &dev->stats.rx_invalid, "data_wrong_mode", from, peer);
		return false;
	}
	if (!kp->recv_valid || birthdate_expired(kp->birth, REJECT_AFTER_TIME, now) ||
	    kp->replay.greatest >= REJECT_AFTER_MESSAGES) {
		kp->recv_valid = false;
		drop(dev, &dev->stats.rx_decrypt_fail, "keypair_expired", from, peer);
		return false;
	}
	*op = (struct wg_crypt_op){
	    .aead = kp->rx,
	    .data = buf + WG_MSG_DATA_HEADER_LEN,
	    .len = len - WG_MSG_DATA_HEADER_LEN,
	    .encrypt = false,
	    .peer = peer,
	    .kp = kp,
	    .msg = buf,
	    .msg_len = len,
	    .counter = sg_le64(buf + 8),
	    .from = *from,
	};
	kp->suite->nonce(op->nonce, op->counter);
	kp->ops++;
	return true;
}

/* Step 3: what follows authentication, in the order the messages arrived. */
static void receive_data_finish(struct wg_device *dev, struct wg_crypt_op *op, uint64_t now)
{
	struct wg_keypair *kp = op->kp;
	struct wg_peer *peer = op->peer;
	const struct wg_endpoint *from = &op->from;

	if (kp->dead) {
		/* Retired by a handshake or a policy change while this message was in flight: as
		 * if it had come a moment later, when its index was gone. */
		drop(dev, &dev->stats.rx_unknown_index, "keypair_retired", from, peer);
		return;
	}
	if (!op->ok) {
		drop(dev, &dev->stats.rx_decrypt_fail, "decrypt", from, peer);
		return;
	}
	if (!wg_replay_check(&kp->replay, op->counter)) {
		drop(dev, &dev->stats.rx_replayed, "replayed", from, peer);
		return;
	}
	/* Authenticated: the source is where the peer is now (roaming, whitepaper 2.1). */
	update_endpoint(peer, from);
	if (kp == peer->kp_next) {
		/* Key confirmation for the responder: next -> current -> previous. */
		struct wg_keypair *old = peer->kp_previous;
		peer->kp_previous = peer->kp_current;
		peer->kp_current = kp;
		peer->kp_next = NULL;
		keypair_destroy(dev, old);
		timers_handshake_complete(peer);
		peer_emit(peer, WG_EVENT_HANDSHAKE_COMPLETE, "responder");
		send_staged(peer, now);
	}
	keep_key_fresh(peer, now);
	timers_any_authenticated_packet_received(peer);
	timers_any_authenticated_packet_traversal(peer, now);
	peer->rx_bytes += op->msg_len;
	peer->rx_packets++;

	size_t plen = op->len - SG_AEAD_TAG_LEN;
	if (plen == 0)
		return; /* keepalive */
	timers_data_received(peer, now);

	int family;
	const uint8_t *src;
	uint8_t *pkt = op->data;
	size_t ilen = inner_packet(pkt, plen, &family, &src);
	if (!ilen) {
		drop(dev, &dev->stats.rx_bad_inner, "bad_inner_packet", from, peer);
		return;
	}
	if (wg_allowedips_lookup(dev->aips, family, src) != peer) {
		drop(dev, &dev->stats.rx_bad_source, "source_not_allowed", from, peer);
		return;
	}
	dev->io.deliver(dev->io.ctx, peer, pkt, ilen);
}

void wg_device_receive_complete(struct wg_device *dev, uint64_t now, struct wg_crypt_op *op)
{
	dev->ops_in_flight--;
	receive_data_finish(dev, op, now);
	keypair_release(op->kp);
	op->kp = NULL;
}

int wg_device_receive_prepare(struct wg_device *dev, uint64_t now, const struct wg_endpoint *from,
			      uint8_t *buf, size_t len, struct wg_crypt_op *op)
{
	dev->stats.rx_datagrams++;
	if (!dev->up) {
		/* The kernel module has no socket while down; ours stays bound (docs/DATAPATH.md)
		 * but answers nothing. */
		drop(dev, &dev->stats.rx_down, "interface_down", from, NULL);
		return 0;
	}
	if (len < 4 || (from->addr.sa.sa_family != AF_INET && from->addr.sa.sa_family != AF_INET6)) {
		drop(dev, &dev->stats.rx_invalid, "short", from, NULL);
		return 0;
	}
	/* Byte 0 is the type, byte 1 the mode (0 = classic, so a WireGuard message reads as type
	 * and three zero bytes), bytes 2-3 are zero. Each (type, mode) has one exact length. */
	uint8_t type = buf[0], wmode = buf[1];
	if (buf[2] != 0 || buf[3] != 0 || (wmode != WG_MODE_CLASSIC && wmode != WG_MODE_FIPS)) {
		drop(dev, &dev->stats.rx_invalid, "bad_type_or_length", from, NULL);
		return 0;
	}
	enum sg_suite_id mode = wmode == WG_MODE_FIPS ? SG_SUITE_FIPS : SG_SUITE_CLASSIC;
	bool fips = mode == SG_SUITE_FIPS;
	switch (type) {
	case WG_MSG_INITIATION:
		if (len != (fips ? WG_FIPS_INITIATION_LEN : WG_MSG_INITIATION_LEN))
			break;
		receive_handshake(dev, mode, buf, len, type, from, now);
		return 0;
	case WG_MSG_RESPONSE:
		if (len != (fips ? WG_FIPS_RESPONSE_LEN : WG_MSG_RESPONSE_LEN))
			break;
		receive_handshake(dev, mode, buf, len, type, from, now);
		return 0;
	case WG_MSG_COOKIE:
		if (len != (fips ? WG_FIPS_COOKIE_LEN : WG_MSG_COOKIE_LEN))
			break;
		receive_cookie(dev, mode, buf, from, now);
		return 0;
	case WG_MSG_DATA:
		if (len < WG_MSG_DATA_MIN_LEN)
			break;
		if (!receive_data_prepare(dev, buf, len, from, now, op))
			return 0;
		dev->ops_in_flight++;
		return 1;
	case WG_MSG_REJECT:
		if (len != WG_MSG_REJECT_LEN || buf[11] != 0)
			break;
		receive_reject(dev, buf, from, now);
		return 0;
	default:
		break;
	}
	drop(dev, &dev->stats.rx_invalid, "bad_type_or_length", from, NULL);
	return 0;
}

void wg_device_receive(struct wg_device *dev, uint64_t now, const struct wg_endpoint *from,
		       uint8_t *buf, size_t len)
{
	struct wg_crypt_op op;

	if (wg_device_receive_prepare(dev, now, from, buf, len, &op) != 1)
		return;
	wg_crypt_op_run(&op, 0);
	wg_device_receive_complete(dev, now, &op);
}
