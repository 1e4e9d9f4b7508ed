/* WireGuard's handshake messages (whitepaper 5.4.2, 5.4.3) and session start (5.4.5), on top of
 * the Noise operations in noise.c. The per-peer state lives in struct wg_handshake. */
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "crypto/crypto.h"
#include "wg_int.h"


static bool handshake_init_symmetric(struct wg_handshake *hs, const uint8_t responder_pub[32])
{
	return noise_init(&hs->sym, (const uint8_t *)wg_identifier, strlen(wg_identifier),
			  responder_pub);
}

/* A new random local index for the handshake, unique in the device's index table. */
static void handshake_rehash(struct wg_peer *peer)
{
	struct wg_handshake *hs = &peer->hs;
	index_remove(peer->dev, &hs->entry);
	hs->entry.kind = INDEX_HANDSHAKE;
	hs->entry.peer = peer;
	hs->entry.keypair = NULL;
	index_insert(peer->dev, &hs->entry);
}

bool handshake_create_initiation(struct wg_peer *peer, uint8_t out[WG_MSG_INITIATION_LEN],
				 uint64_t now)
{
	struct wg_device *dev = peer->dev;
	struct wg_handshake *hs = &peer->hs;
	struct wg_msg_initiation *m = (struct wg_msg_initiation *)out;
	uint8_t ts[NOISE_TIMESTAMP_LEN], e_pub[32];
	bool ok = false;

	if (!dev->has_key || !peer->static_static_ok)
		goto out;
	memset(out, 0, WG_MSG_INITIATION_LEN);
	m->type_reserved[0] = WG_MSG_INITIATION;
	noise_tai64n(ts, dev->io.realtime_ns(dev->io.ctx));
	if (!sg_x25519_generate(hs->ephemeral_priv, e_pub) ||
	    !handshake_init_symmetric(hs, peer->public_key) ||
	    !noise_write_msg1(&hs->sym, m->ephemeral, m->encrypted_static, m->encrypted_timestamp,
			      ts, sizeof(ts), hs->ephemeral_priv, dev->static_public,
			      peer->public_key, peer->static_static))
		goto out;
	handshake_rehash(peer);
	sg_put_le32(m->sender_index, hs->entry.index);
	hs->state = HANDSHAKE_CREATED_INITIATION;
	ok = true;
out:
	if (!ok)
		handshake_clear(peer);
	return ok;
}

struct wg_peer *handshake_consume_initiation(struct wg_device *dev, const uint8_t *msg,
					     uint64_t now)
{
	const struct wg_msg_initiation *m = (const struct wg_msg_initiation *)msg;
	struct noise_symmetric sym;
	uint8_t key[32], s[32], ts[NOISE_TIMESTAMP_LEN];
	struct wg_peer *peer = NULL;

	if (!dev->has_key)
		return NULL;
	if (!noise_init(&sym, (const uint8_t *)wg_identifier, strlen(wg_identifier),
			dev->static_public) ||
	    !noise_read_msg1_static(&sym, key, s, m->ephemeral, m->encrypted_static,
				    dev->static_private))
		goto fail;
	/* Which peer is this? */
	peer = wg_device_find_peer(dev, s);
	if (!peer || !peer->static_static_ok)
		goto fail;
	if (!noise_read_msg1_payload(&sym, key, ts, m->encrypted_timestamp,
				     sizeof(m->encrypted_timestamp), peer->static_static))
		goto fail;
	struct wg_handshake *hs = &peer->hs;
	/* Replay: the timestamp must be greater than any seen from this peer (5.1). Flood: at
	 * most INITIATIONS_PER_SECOND initiations consumed per peer. */
	if (memcmp(ts, hs->latest_timestamp, NOISE_TIMESTAMP_LEN) <= 0) {
		peer_emit(peer, WG_EVENT_HANDSHAKE_FAILED, "timestamp_replayed");
		goto fail_peer;
	}
	if (hs->has_consumed_initiation &&
	    hs->last_initiation_consumption + NSEC / INITIATIONS_PER_SECOND > now) {
		peer_emit(peer, WG_EVENT_HANDSHAKE_FAILED, "initiation_flood");
		dev->stats.rx_rate_limited++;
		goto fail_peer_counted;
	}
	memcpy(hs->remote_ephemeral, m->ephemeral, 32);
	memcpy(hs->latest_timestamp, ts, NOISE_TIMESTAMP_LEN);
	hs->sym = sym;
	hs->remote_index = sg_le32(m->sender_index);
	hs->last_initiation_consumption = now;
	hs->has_consumed_initiation = true;
	hs->state = HANDSHAKE_CONSUMED_INITIATION;
	sg_memzero(&sym, sizeof(sym));
	sg_memzero(key, sizeof(key));
	return peer;

fail:
	if (peer)
		peer_emit(peer, WG_EVENT_HANDSHAKE_FAILED, "initiation_decrypt");
fail_peer:
	dev->stats.rx_handshake_fail++;
fail_peer_counted:
	sg_memzero(&sym, sizeof(sym));
	sg_memzero(key, sizeof(key));
	return NULL;
}

bool handshake_create_response(struct wg_peer *peer, uint8_t out[WG_MSG_RESPONSE_LEN])
{
	struct wg_handshake *hs = &peer->hs;
	struct wg_msg_response *m = (struct wg_msg_response *)out;
	uint8_t e_pub[32];
	bool ok = false;

	if (hs->state != HANDSHAKE_CONSUMED_INITIATION)
		goto out;
	memset(out, 0, WG_MSG_RESPONSE_LEN);
	m->type_reserved[0] = WG_MSG_RESPONSE;
	sg_put_le32(m->receiver_index, hs->remote_index);
	if (!sg_x25519_generate(hs->ephemeral_priv, e_pub) ||
	    !noise_write_msg2(&hs->sym, m->ephemeral, m->encrypted_nothing, NULL, 0,
			      hs->ephemeral_priv, hs->remote_ephemeral, peer->public_key, peer->psk))
		goto out;
	handshake_rehash(peer);
	sg_put_le32(m->sender_index, hs->entry.index);
	hs->state = HANDSHAKE_CREATED_RESPONSE;
	ok = true;
out:
	if (!ok)
		handshake_clear(peer);
	return ok;
}

struct wg_peer *handshake_consume_response(struct wg_device *dev, const uint8_t *msg)
{
	const struct wg_msg_response *m = (const struct wg_msg_response *)msg;
	struct index_entry *e = index_lookup(dev, sg_le32(m->receiver_index));
	struct noise_symmetric sym;

	if (!e || e->kind != INDEX_HANDSHAKE) {
		dev->stats.rx_unknown_index++;
		return NULL;
	}
	struct wg_peer *peer = e->peer;
	struct wg_handshake *hs = &peer->hs;
	if (hs->state != HANDSHAKE_CREATED_INITIATION || !dev->has_key)
		goto fail;
	sym = hs->sym;
	if (!noise_read_msg2(&sym, NULL, m->encrypted_nothing, sizeof(m->encrypted_nothing),
			     m->ephemeral, hs->ephemeral_priv, dev->static_private, peer->psk)) {
		sg_memzero(&sym, sizeof(sym));
		goto fail;
	}
	hs->sym = sym;
	sg_memzero(&sym, sizeof(sym));
	memcpy(hs->remote_ephemeral, m->ephemeral, 32);
	hs->remote_index = sg_le32(m->sender_index);
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
	struct wg_handshake *hs = &peer->hs;
	struct wg_keypair *kp;
	bool initiator;

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
	kp->initiator = initiator;
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
