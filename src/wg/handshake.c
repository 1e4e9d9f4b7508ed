/* WireGuard's handshake messages (whitepaper 5.4.2, 5.4.3) and session start (5.4.5), on top of
 * the Noise operations in noise.c. The per-peer state lives in struct wg_handshake. */
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "crypto/crypto.h"
#include "wg_int.h"


/* Message layouts by type and mode (messages.h). */
static const struct wg_hs_layout init_layout[2] = {
    [SG_SUITE_CLASSIC] = {WG_MSG_INITIATION_LEN, 8, 40, 88, NOISE_TIMESTAMP_LEN},
    [SG_SUITE_FIPS] = {WG_FIPS_INITIATION_LEN, 8, 8 + 49, 8 + 49 + 49 + 16, WG_FIPS_INIT_PAYLOAD},
};
static const struct wg_hs_layout resp_layout[2] = {
    [SG_SUITE_CLASSIC] = {WG_MSG_RESPONSE_LEN, 12, 0, 44, 0},
    [SG_SUITE_FIPS] = {WG_FIPS_RESPONSE_LEN, 12, 0, 12 + 49, WG_FIPS_RESP_PAYLOAD},
};

const struct wg_hs_layout *handshake_layout(int type, enum sg_suite_id mode)
{
	return type == WG_MSG_INITIATION ? &init_layout[mode] : &resp_layout[mode];
}

static uint8_t wire_mode(enum sg_suite_id mode)
{
	return mode == SG_SUITE_FIPS ? WG_MODE_FIPS : WG_MODE_CLASSIC;
}

/* ---- negotiation (docs/PROTOCOL.md, "Negotiation") ---------------------------------------- */

enum wg_crypto_mode peer_effective_mode(const struct wg_peer *peer)
{
	return peer->crypto_mode != WG_CRYPTO_INHERIT ? peer->crypto_mode : peer->dev->crypto_mode;
}

static bool fips_ss_ready(struct wg_peer *peer)
{
	struct wg_device *dev = peer->dev;

	if (!dev->has_fips_key || !peer->has_fips)
		return false;
	struct wg_peer_active *a = peer_activate(peer);
	if (!a)
		return false;
	/* Both keys were validated when set, so a failure here is transient (memory): it is not
	 * cached, the next handshake tries again. */
	if (a->fips_ss != SS_OK && sg_p384_ecdh(a->fips_static_static, dev->fips_private, peer->fips_public))
		a->fips_ss = SS_OK;
	return a->fips_ss == SS_OK;
}

/* The classic static-static DH, computed on the peer's first handshake rather than when it is
 * added (an X25519 per peer was most of the time `wg setconf` took). A small-order public key
 * fails for good, until one of the keys changes. */
static bool classic_ss_ready(struct wg_peer *peer)
{
	struct wg_device *dev = peer->dev;

	if (!dev->has_key || !peer->has_classic)
		return false;
	struct wg_peer_active *a = peer_activate(peer);
	if (!a)
		return false;
	if (a->ss == SS_UNKNOWN) {
		a->ss = sg_x25519(a->static_static, dev->static_private, peer->public_key) ? SS_OK
											  : SS_BAD;
		if (a->ss == SS_BAD)
			sg_memzero(a->static_static, sizeof(a->static_static));
	}
	return a->ss == SS_OK;
}

bool peer_can_mode(struct wg_peer *peer, enum sg_suite_id mode)
{
	if (mode == SG_SUITE_FIPS)
		return fips_ss_ready(peer);
	return classic_ss_ready(peer);
}

bool peer_mode_allowed(const struct wg_peer *peer, enum sg_suite_id mode)
{
	switch (peer_effective_mode(peer)) {
	case WG_CRYPTO_FIPS:
		return mode == SG_SUITE_FIPS;
	case WG_CRYPTO_CLASSIC:
		return mode == SG_SUITE_CLASSIC;
	default:
		return true;
	}
}

int peer_choose_mode(struct wg_peer *peer, uint64_t now)
{
	bool fips = peer_mode_allowed(peer, SG_SUITE_FIPS) && peer_can_mode(peer, SG_SUITE_FIPS);
	bool classic = peer_mode_allowed(peer, SG_SUITE_CLASSIC) && peer_can_mode(peer, SG_SUITE_CLASSIC);

	if (peer->fallback && now >= peer->fallback_until)
		peer->fallback = false; /* time to try FIPS again */
	if (fips && !(classic && peer->fallback))
		return SG_SUITE_FIPS;
	if (classic)
		return SG_SUITE_CLASSIC;
	return -1;
}

uint16_t device_caps(const struct wg_device *dev)
{
	uint16_t caps = WG_CAP_VERSION_BITS;

	if (dev->has_fips_key && dev->crypto_mode != WG_CRYPTO_CLASSIC)
		caps |= WG_CAP_FIPS;
	if (dev->has_key && dev->crypto_mode != WG_CRYPTO_FIPS)
		caps |= WG_CAP_CLASSIC;
	return caps;
}

uint16_t peer_local_caps(struct wg_peer *peer)
{
	uint16_t caps = WG_CAP_VERSION_BITS;

	/* FIPS only when a FIPS session with this peer is possible: both keys and their DH. */
	if (peer_can_mode(peer, SG_SUITE_FIPS) && peer_mode_allowed(peer, SG_SUITE_FIPS))
		caps |= WG_CAP_FIPS;
	if (peer->dev->has_key && peer->has_classic && peer_mode_allowed(peer, SG_SUITE_CLASSIC))
		caps |= WG_CAP_CLASSIC;
	return caps;
}

void peer_emit_mode(struct wg_peer *peer, enum wg_event_type type, const char *reason,
		    uint64_t now)
{
	struct wg_peer_active *a = peer_activate(peer);

	/* Without memory for the rate limit's state the event is emitted anyway. */
	if (a) {
		uint64_t *last = &a->last_mode_event[type - WG_EVENT_MODE_REFUSED];
		/* 0 = never: the simulated and monotonic clocks never start at 0 in practice, and
		 * if one did the first event would only be emitted one interval late. */
		if (*last && now - *last < MODE_EVENT_INTERVAL)
			return;
		*last = now ? now : 1;
	}
	peer_emit(peer, type, reason);
}

void peer_fallback(struct wg_peer *peer, const char *reason, uint64_t now)
{
	peer->fallback = true;
	peer->fallback_until = now + FIPS_RETRY_AFTER;
	peer->fips_unanswered = 0;
	peer_emit_mode(peer, WG_EVENT_MODE_FALLBACK, reason, now);
}

static bool kp_mode_dropped(const struct wg_peer *peer, const struct wg_keypair *kp, int only)
{
	if (!kp)
		return false;
	if (only >= 0)
		return (int)kp->suite->id == only;
	return !peer_mode_allowed(peer, kp->suite->id);
}

void peer_drop_sessions(struct wg_peer *peer, int only_mode)
{
	struct wg_device *dev = peer->dev;
	struct wg_keypair **kps[3] = {&peer->kp_next, &peer->kp_current, &peer->kp_previous};

	for (int i = 0; i < 3; i++) {
		if (kp_mode_dropped(peer, *kps[i], only_mode)) {
			keypair_destroy(dev, *kps[i]);
			*kps[i] = NULL;
		}
	}
	struct wg_handshake *hs = peer->act ? &peer->act->hs : NULL;
	if (hs && hs->state != HANDSHAKE_ZEROED &&
	    (only_mode >= 0 ? (int)hs->mode == only_mode : !peer_mode_allowed(peer, hs->mode)))
		handshake_clear(peer);
}

/* ---- messages ----------------------------------------------------------------------------- */

static const uint8_t *static_public(const struct wg_device *dev, enum sg_suite_id mode)
{
	return mode == SG_SUITE_FIPS ? dev->fips_public : dev->static_public;
}

static const uint8_t *static_private(const struct wg_device *dev, enum sg_suite_id mode)
{
	return mode == SG_SUITE_FIPS ? dev->fips_private : dev->static_private;
}

static const uint8_t *peer_static(const struct wg_peer *peer, enum sg_suite_id mode)
{
	return mode == SG_SUITE_FIPS ? peer->fips_public : peer->public_key;
}

/* Only after peer_can_mode(peer, mode) said yes (it computes the result). */
static const uint8_t *peer_ss(const struct wg_peer *peer, enum sg_suite_id mode)
{
	return mode == SG_SUITE_FIPS ? peer->act->fips_static_static : peer->act->static_static;
}

static bool symmetric_init(struct noise_symmetric *sym, enum sg_suite_id mode,
			   const uint8_t *responder_pub)
{
	const char *id = noise_identifier_of(mode);
	return noise_init(sym, sg_suite_get(mode), (const uint8_t *)id, strlen(id), responder_pub);
}

/* A new random local index for the handshake, unique in the device's index table. */
static void handshake_rehash(struct wg_peer *peer)
{
	struct wg_handshake *hs = &peer->act->hs;
	index_remove(peer->dev, &hs->entry);
	hs->entry.kind = INDEX_HANDSHAKE;
	hs->entry.peer = peer;
	hs->entry.keypair = NULL;
	index_insert(peer->dev, &hs->entry);
}

size_t handshake_create_initiation(struct wg_peer *peer, enum sg_suite_id mode, uint8_t *out,
				   uint64_t now)
{
	struct wg_device *dev = peer->dev;
	const struct sg_suite *su = sg_suite_get(mode);
	const struct wg_hs_layout *L = &init_layout[mode];
	uint8_t payload[WG_FIPS_INIT_PAYLOAD];
	bool ok = false;

	if (!peer_can_mode(peer, mode)) /* which makes peer->act */
		goto out;
	struct wg_handshake *hs = &peer->act->hs;
	memset(out, 0, L->len);
	out[0] = WG_MSG_INITIATION;
	out[1] = wire_mode(mode);
	noise_tai64n(payload, dev->io.realtime_ns(dev->io.ctx));
	if (mode == SG_SUITE_FIPS)
		sg_put_le16(payload + NOISE_TIMESTAMP_LEN, peer_local_caps(peer));
	/* The ephemeral goes straight into the message. */
	if (!su->dh_generate(hs->ephemeral_priv, out + L->ephemeral) ||
	    !symmetric_init(&hs->sym, mode, peer_static(peer, mode)) ||
	    !noise_write_msg1_known(&hs->sym, out + L->ephemeral, out + L->enc_static,
				    out + L->payload, payload, L->payload_len, hs->ephemeral_priv,
				    static_public(dev, mode), peer_static(peer, mode),
				    peer_ss(peer, mode)))
		goto out;
	handshake_rehash(peer);
	sg_put_le32(out + 4, hs->entry.index);
	hs->state = HANDSHAKE_CREATED_INITIATION;
	hs->mode = mode;
	peer->last_init_mode = mode;
	ok = true;
out:
	if (!ok)
		handshake_clear(peer);
	return ok ? L->len : 0;
}

static struct wg_peer *find_peer(struct wg_device *dev, enum sg_suite_id mode, const uint8_t *s)
{
	struct wg_peer *peer;

	if (mode == SG_SUITE_FIPS)
		return wg_device_find_peer_fips(dev, s);
	peer = wg_device_find_peer(dev, s);
	return peer && peer->has_classic ? peer : NULL;
}

struct wg_peer *handshake_consume_initiation(struct wg_device *dev, enum sg_suite_id mode,
					     const uint8_t *msg, uint64_t now,
					     enum wg_reject_reason *refuse, struct wg_peer **refused)
{
	const struct wg_hs_layout *L = &init_layout[mode];
	struct noise_symmetric sym;
	uint8_t key[NOISE_KEY_LEN], s[NOISE_MAX_PUB], payload[WG_FIPS_INIT_PAYLOAD];
	struct wg_peer *peer = NULL;

	*refuse = 0;
	*refused = NULL;
	if (mode == SG_SUITE_FIPS ? !dev->has_fips_key : !dev->has_key)
		return NULL;
	if (!symmetric_init(&sym, mode, static_public(dev, mode)) ||
	    !noise_read_msg1_static(&sym, key, s, msg + L->ephemeral, msg + L->enc_static,
				    static_private(dev, mode)))
		goto fail;
	/* Which peer is this? */
	peer = find_peer(dev, mode, s);
	if (!peer || !peer_can_mode(peer, mode))
		goto fail;
	if (!noise_read_msg1_payload(&sym, key, payload, msg + L->payload, L->payload_len + 16,
				     peer_ss(peer, mode)))
		goto fail;
	struct wg_handshake *hs = &peer->act->hs; /* peer_can_mode made it */
	/* Replay: the timestamp must be greater than any seen from this peer (5.1). Flood: at
	 * most INITIATIONS_PER_SECOND initiations consumed per peer. Checked first, so replayed
	 * or flooding copies never get a reject either. */
	if (memcmp(payload, hs->latest_timestamp, NOISE_TIMESTAMP_LEN) <= 0) {
		peer_emit(peer, WG_EVENT_HANDSHAKE_FAILED, "timestamp_replayed");
		goto fail_peer;
	}
	if (hs->has_consumed_initiation &&
	    hs->last_initiation_consumption + NSEC / INITIATIONS_PER_SECOND > now) {
		peer_emit(peer, WG_EVENT_HANDSHAKE_FAILED, "initiation_flood");
		dev->stats.rx_rate_limited++;
		goto fail_peer_counted;
	}
	/* A refusal below does not record the timestamp: the initiator answers a reject with an
	 * initiation of the other mode at once, within the same TAI64N tick (2^24 ns), which must
	 * not look like a replay. Copies of a refused initiation get rate-limited rejects. */
	uint16_t caps = mode == SG_SUITE_FIPS ? sg_le16(payload + NOISE_TIMESTAMP_LEN) : 0;
	if (mode == SG_SUITE_FIPS && (caps >> 8) != WG_CAP_VERSION) {
		*refuse = WG_REJECT_VERSION;
		*refused = peer;
		peer_emit_mode(peer, WG_EVENT_MODE_REFUSED, "version", now);
		goto fail_peer;
	}
	/* Policy: the mode must be one this peer may use (docs/PROTOCOL.md). Checked after the
	 * Noise message authenticated the peer, so the refusal names a real peer. */
	if (!peer_mode_allowed(peer, mode)) {
		*refuse = mode == SG_SUITE_FIPS ? WG_REJECT_CLASSIC_REQUIRED : WG_REJECT_FIPS_REQUIRED;
		*refused = peer;
		peer_emit_mode(peer, WG_EVENT_MODE_REFUSED,
			       mode == SG_SUITE_FIPS ? "peer_offered_fips_classic_only"
						     : "peer_offered_classic_fips_required",
			       now);
		goto fail_peer;
	}
	if (mode == SG_SUITE_FIPS)
		peer->remote_caps = caps;
	/* A FIPS initiation that authenticated: the peer can do FIPS, stop falling back. */
	if (mode == SG_SUITE_FIPS)
		peer->fallback = false;
	memcpy(hs->remote_ephemeral, msg + L->ephemeral, sg_suite_get(mode)->dh_pub_len);
	memcpy(hs->latest_timestamp, payload, NOISE_TIMESTAMP_LEN);
	hs->last_initiation_consumption = now;
	hs->has_consumed_initiation = true;
	hs->sym = sym;
	hs->mode = mode;
	hs->remote_index = sg_le32(msg + 4);
	hs->state = HANDSHAKE_CONSUMED_INITIATION;
	sg_memzero(&sym, sizeof(sym));
	sg_memzero(key, sizeof(key));
	sg_memzero(payload, sizeof(payload));
	return peer;

fail:
	if (peer)
		peer_emit(peer, WG_EVENT_HANDSHAKE_FAILED, "initiation_decrypt");
fail_peer:
	dev->stats.rx_handshake_fail++;
fail_peer_counted:
	sg_memzero(&sym, sizeof(sym));
	sg_memzero(key, sizeof(key));
	sg_memzero(payload, sizeof(payload));
	return NULL;
}

size_t handshake_create_response(struct wg_peer *peer, uint8_t *out)
{
	if (!peer->act)
		return 0; /* no initiation was consumed */
	struct wg_handshake *hs = &peer->act->hs;
	enum sg_suite_id mode = hs->mode;
	const struct sg_suite *su = sg_suite_get(mode);
	const struct wg_hs_layout *L = &resp_layout[mode];
	uint8_t payload[WG_FIPS_RESP_PAYLOAD];
	bool ok = false;

	if (hs->state != HANDSHAKE_CONSUMED_INITIATION)
		goto out;
	memset(out, 0, L->len);
	out[0] = WG_MSG_RESPONSE;
	out[1] = wire_mode(mode);
	sg_put_le32(out + 8, hs->remote_index);
	sg_put_le16(payload, peer_local_caps(peer));
	if (!su->dh_generate(hs->ephemeral_priv, out + L->ephemeral) ||
	    !noise_write_msg2_known(&hs->sym, out + L->ephemeral, out + L->payload,
				    L->payload_len ? payload : NULL, L->payload_len,
				    hs->ephemeral_priv, hs->remote_ephemeral, peer_static(peer, mode),
				    peer->psk))
		goto out;
	handshake_rehash(peer);
	sg_put_le32(out + 4, hs->entry.index);
	hs->state = HANDSHAKE_CREATED_RESPONSE;
	ok = true;
out:
	if (!ok)
		handshake_clear(peer);
	return ok ? L->len : 0;
}

struct wg_peer *handshake_consume_response(struct wg_device *dev, enum sg_suite_id mode,
					   const uint8_t *msg)
{
	const struct wg_hs_layout *L = &resp_layout[mode];
	struct index_entry *e = index_lookup(dev, sg_le32(msg + 8));
	uint8_t payload[WG_FIPS_RESP_PAYLOAD];
	struct noise_symmetric sym;

	if (!e || e->kind != INDEX_HANDSHAKE) {
		dev->stats.rx_unknown_index++;
		return NULL;
	}
	struct wg_peer *peer = e->peer;
	struct wg_handshake *hs = &peer->act->hs; /* its handshake is in the index: active */
	if (hs->state != HANDSHAKE_CREATED_INITIATION || hs->mode != mode ||
	    !peer_can_mode(peer, mode) || !peer_mode_allowed(peer, mode))
		goto fail;
	sym = hs->sym;
	if (!noise_read_msg2(&sym, L->payload_len ? payload : NULL, msg + L->payload,
			     L->payload_len + 16, msg + L->ephemeral, hs->ephemeral_priv,
			     static_private(dev, mode), peer->psk)) {
		sg_memzero(&sym, sizeof(sym));
		goto fail;
	}
	if (mode == SG_SUITE_FIPS)
		peer->remote_caps = sg_le16(payload);
	hs->sym = sym;
	sg_memzero(&sym, sizeof(sym));
	memcpy(hs->remote_ephemeral, msg + L->ephemeral, sg_suite_get(mode)->dh_pub_len);
	hs->remote_index = sg_le32(msg + 4);
	hs->state = HANDSHAKE_CONSUMED_RESPONSE;
	return peer;
fail:
	peer_emit(peer, WG_EVENT_HANDSHAKE_FAILED, "response_decrypt");
	dev->stats.rx_handshake_fail++;
	return NULL;
}

/* Moves the new keypair into place (the kernel's add_new_keypair). */
static void keypairs_add(struct wg_peer *peer, struct wg_keypair *kp)
{
	struct wg_device *dev = peer->dev;
	struct wg_keypair *drop1 = NULL, *drop2 = NULL;

	if (kp->initiator) {
		/* We sent the initiation and got the response: usable at once. */
		if (peer->kp_next) {
			drop1 = peer->kp_previous;
			peer->kp_previous = peer->kp_next;
			peer->kp_next = NULL;
			drop2 = peer->kp_current;
		} else {
			drop1 = peer->kp_previous;
			peer->kp_previous = peer->kp_current;
		}
		peer->kp_current = kp;
	} else {
		/* Responder: usable only after the initiator's first data packet confirms it. */
		drop1 = peer->kp_next;
		drop2 = peer->kp_previous;
		peer->kp_next = kp;
		peer->kp_previous = NULL;
	}
	keypair_destroy(dev, drop1);
	keypair_destroy(dev, drop2);
}

bool handshake_begin_session(struct wg_peer *peer, uint64_t now)
{
	struct wg_keypair *kp;
	bool initiator;

	if (!peer->act)
		return false;
	struct wg_handshake *hs = &peer->act->hs;
	if (hs->state == HANDSHAKE_CONSUMED_RESPONSE)
		initiator = true;
	else if (hs->state == HANDSHAKE_CREATED_RESPONSE)
		initiator = false;
	else
		return false;
	kp = calloc(1, sizeof(*kp));
	if (!kp) {
		handshake_clear(peer); /* do not leave the chaining key behind */
		return false;
	}
	/* (T_send, T_recv) = KDF2(C, empty): the initiator's send key is the first. */
	bool ok = initiator ? noise_split(&hs->sym, kp->send_key, kp->recv_key)
			    : noise_split(&hs->sym, kp->recv_key, kp->send_key);
	if (!ok) {
		sg_memzero(kp, sizeof(*kp));
		free(kp);
		handshake_clear(peer);
		return false;
	}
	kp->tx = sg_aead_new(hs->mode, kp->send_key, true);
	kp->rx = sg_aead_new(hs->mode, kp->recv_key, false);
	if (!kp->tx || !kp->rx) {
		sg_aead_free(kp->tx);
		sg_aead_free(kp->rx);
		sg_memzero(kp, sizeof(*kp));
		free(kp);
		handshake_clear(peer);
		return false;
	}
	kp->initiator = initiator;
	kp->suite = sg_suite_get(hs->mode);
	kp->wire_mode = wire_mode(hs->mode);
	kp->birth = now;
	kp->remote_index = hs->remote_index;
	kp->send_valid = kp->recv_valid = true;
	wg_replay_init(&kp->replay);
	/* The keypair takes over the handshake's local index (the kernel's index replace). */
	index_remove(peer->dev, &hs->entry);
	kp->entry.index = hs->entry.index;
	kp->entry.kind = INDEX_KEYPAIR;
	kp->entry.peer = peer;
	kp->entry.keypair = kp;
	index_insert_keep(peer->dev, &kp->entry);
	handshake_clear(peer);
	keypairs_add(peer, kp);
	return true;
}
