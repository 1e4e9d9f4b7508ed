/* Shared set-up for the FIPS-mode message fuzz targets (docs/PROTOCOL.md): B is the device under
 * fuzz. A and B both have classic and FIPS keys and a live FIPS session; B also has a FIPS
 * initiation in flight to A (an `auto` peer) and to C (a FIPS-only peer with crypto mode `fips`,
 * known to B by its key only), so a fuzzed message of any type and mode reaches the deepest
 * parser it can (valid indexes, valid keys, the reject and fallback logic).
 *
 * Reproducible seeds. The seed corpora hold VALID messages, made by tests/fuzz/gen_fips_seeds.c,
 * which builds this very world and lets A (or a third device) write the messages. That works
 * because everything B's state depends on is the same in every run:
 *   - the static keys: the P-384 scalars are fixed below, the classic keys come from the
 *     deterministic random hook (as in wg_fuzz.h), which also fixes every receiver index;
 *   - what derives from P-384 ephemerals cannot be fixed by the hook (sg_p384_generate takes
 *     OpenSSL's generator, crypto.h says why), so after the real handshakes the world pins those
 *     secrets to fixed values, on both sides consistently, as if the handshakes had produced
 *     them: the A<->B session keys (data seeds decrypt), the chaining key, hash and ephemeral
 *     private key of B's initiation in flight to A (a response that A writes against that
 *     transcript decrypts), and the mac1 B last sent to A (a cookie reply decrypts).
 * Everything after the pinning is the real core code on both sides.
 */
#ifndef SG_FUZZ_FIPS_FUZZ_H
#define SG_FUZZ_FIPS_FUZZ_H

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "crypto/crypto.h"
#include "wg/wg_int.h"

/* fips_feed flags */
#define FIPS_FEED_LIVE_INDEX  0x1 /* last input byte & 1: receiver index := B's live keypair */
#define FIPS_FEED_LOAD	      0x2 /* last input byte & 2: B is under load for this input */
#define FIPS_FEED_REARM	      0x4 /* restore B's FIPS initiation in flight to A before the input */
#define FIPS_FEED_INDEX_ALIAS 0x8 /* receiver index 0 / 1: B's initiation to A / to C */

/* Tags of the fixed values (fips_fixed). */
#define FIPS_TAG_KEY_A	 0x1a
#define FIPS_TAG_KEY_B	 0x1b
#define FIPS_TAG_KEY_C	 0x1c
#define FIPS_TAG_KEY_D	 0x1d /* a FIPS key B does not know (used by the seed generator) */
#define FIPS_TAG_EPH_B	 0x2e
#define FIPS_TAG_CK	 0x3c
#define FIPS_TAG_H	 0x3d
#define FIPS_TAG_MAC1	 0x3e
#define FIPS_TAG_SEND_AB 0x5a /* A's send key = B's receive key */
#define FIPS_TAG_SEND_BA 0x5b

struct fips_world {
	struct wg_device *a, *b;
	struct wg_peer *a_peer;	  /* B, on A */
	struct wg_peer *b_peer;	  /* A, on B: crypto mode auto (inherited) */
	struct wg_peer *b_peer_c; /* C, on B: FIPS-only, crypto mode fips */
	struct wg_endpoint ea, eb, ec;
	uint8_t last_sent[2048];
	size_t last_len;
	uint64_t now;
};

static struct fips_world ff;

/* A fixed, recognisable byte string. With tag < 0x80 the first byte is below 0xff, so as a
 * 48-byte big-endian scalar it is in [1, n) for P-384 (n = 0xffff...). */
static void fips_fixed(uint8_t *out, size_t n, uint8_t tag)
{
	for (size_t i = 0; i < n; i++)
		out[i] = (uint8_t)(tag + 0x11 * i);
	out[0] = tag;
}

static void fips_send(void *ctx, struct wg_peer *peer, const struct wg_endpoint *to,
		      const uint8_t *buf, size_t len, uint8_t ttl)
{
	if (len <= sizeof(ff.last_sent)) {
		memcpy(ff.last_sent, buf, len);
		ff.last_len = len;
	}
}

static void fips_deliver(void *ctx, struct wg_peer *peer, const uint8_t *pkt, size_t len)
{
	/* Touch every byte so ASan sees an out-of-bounds length. */
	volatile uint8_t sink = 0;
	for (size_t i = 0; i < len; i++)
		sink ^= pkt[i];
	(void)sink;
}

static uint64_t fips_realtime(void *ctx)
{
	return 1700000000ULL * NSEC + ff.now;
}

/* Deterministic randomness (same generator as wg_fuzz.h), so indexes, classic keys and nonces
 * are the same in every run and a crash input reproduces. */
static bool fips_random(void *ctx, void *buf, size_t n)
{
	static uint64_t s = 0x9e3779b97f4a7c15ULL;
	uint8_t *p = buf;
	for (size_t i = 0; i < n; i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		p[i] = (uint8_t)s;
	}
	return true;
}

/* Delivers the last datagram one side sent to the other side. */
static void fips_forward(struct wg_device *to, const struct wg_endpoint *from)
{
	uint8_t buf[2048];
	size_t len = ff.last_len;
	ff.last_len = 0;
	memcpy(buf, ff.last_sent, len);
	if (len)
		wg_device_receive(to, ff.now, from, buf, len);
}

static void fips_ep(struct wg_endpoint *ep, uint8_t host)
{
	memset(ep, 0, sizeof(*ep));
	ep->addr.in4.sin_family = AF_INET;
	ep->addr.in4.sin_port = htons(host);
	ep->addr.in4.sin_addr.s_addr = htonl(0xc0000200u | host);
}

/* Pins what derives from the ephemeral of B's initiation in flight to A (see the top). */
static void fips_pin_in_flight(void)
{
	struct wg_handshake *hs = &ff.b_peer->act->hs;
	struct cookie_maker *m = &ff.b_peer->act->cookie;

	if (hs->state != HANDSHAKE_CREATED_INITIATION || hs->mode != SG_SUITE_FIPS)
		abort();
	fips_fixed(hs->sym.ck, sizeof(hs->sym.ck), FIPS_TAG_CK);
	fips_fixed(hs->sym.h, sizeof(hs->sym.h), FIPS_TAG_H);
	fips_fixed(hs->ephemeral_priv, SG_P384_PRIV_LEN, FIPS_TAG_EPH_B);
	fips_fixed(m->last_mac1, sizeof(m->last_mac1), FIPS_TAG_MAC1);
	m->have_sent_mac1 = true;
	m->last_mac1_mode = SG_SUITE_FIPS;
}

/* After an input consumed B's FIPS initiation to A (a response, a reject that made A fall
 * back) or the mac1 it answers (a cookie), starts and pins a new one, so every input meets the
 * same kind of state. The new one has a new index: index aliases reach it. */
static void fips_rearm(void)
{
	struct wg_peer *p = ff.b_peer;

	if (p->act->hs.state == HANDSHAKE_CREATED_INITIATION && p->act->hs.mode == SG_SUITE_FIPS) {
		if (!p->act->cookie.have_sent_mac1 || p->act->cookie.last_mac1_mode != SG_SUITE_FIPS)
			fips_pin_in_flight();
		return;
	}
	p->fallback = false;
	p->has_sent_handshake = false;
	wg_peer_initiate(p, ff.now);
	ff.last_len = 0;
	fips_pin_in_flight();
}

static void fips_world_init(void)
{
	if (ff.a)
		return;
	sg_crypto_set_random(fips_random, NULL);
	struct wg_io io = {
	    .send = fips_send, .deliver = fips_deliver, .realtime_ns = fips_realtime};
	uint8_t ka[32], pa[32], kb[32], pb[32], id_c[32];
	uint8_t fa[SG_P384_PRIV_LEN], fb[SG_P384_PRIV_LEN], fc[SG_P384_PRIV_LEN];
	uint8_t qa[SG_P384_PUB_LEN], qb[SG_P384_PUB_LEN], qc[SG_P384_PUB_LEN];
	ff.now = 1000ULL * NSEC;
	ff.a = wg_device_new(&io);
	ff.b = wg_device_new(&io);
	fips_fixed(fa, sizeof(fa), FIPS_TAG_KEY_A);
	fips_fixed(fb, sizeof(fb), FIPS_TAG_KEY_B);
	fips_fixed(fc, sizeof(fc), FIPS_TAG_KEY_C);
	if (!ff.a || !ff.b || !sg_x25519_generate(ka, pa) || !sg_x25519_generate(kb, pb) ||
	    !sg_p384_public(qa, fa) || !sg_p384_public(qb, fb) || !sg_p384_public(qc, fc))
		abort();
	wg_fips_peer_id(id_c, qc);
	if (wg_device_set_private_key(ff.a, ka) || wg_device_set_private_key(ff.b, kb) ||
	    wg_device_set_fips_private_key(ff.a, fa) || wg_device_set_fips_private_key(ff.b, fb) ||
	    wg_device_add_peer(ff.a, pb, &ff.a_peer) || wg_device_add_peer(ff.b, pa, &ff.b_peer) ||
	    wg_device_add_peer(ff.b, id_c, &ff.b_peer_c) ||
	    wg_peer_set_fips_public_key(ff.a_peer, qb) ||
	    wg_peer_set_fips_public_key(ff.b_peer, qa) ||
	    wg_peer_set_fips_public_key(ff.b_peer_c, qc))
		abort();
	wg_peer_set_crypto_mode(ff.b_peer_c, WG_CRYPTO_FIPS);
	fips_ep(&ff.ea, 1);
	fips_ep(&ff.eb, 2);
	fips_ep(&ff.ec, 3);
	wg_peer_set_endpoint(ff.a_peer, &ff.eb);
	wg_peer_set_endpoint(ff.b_peer, &ff.ea);
	wg_peer_set_endpoint(ff.b_peer_c, &ff.ec);
	/* A routes everything to B; B takes 10/8 and fd00::/8 from A and 10.99/16 from C, so
	 * inner sources outside them reach the allowed-IPs check and fail it. */
	uint8_t all4[4] = {0}, all6[16] = {0}, net10[4] = {10}, net10_99[4] = {10, 99};
	uint8_t fd[16] = {0xfd};
	if (wg_peer_add_allowed_ip(ff.a_peer, AF_INET, all4, 0) ||
	    wg_peer_add_allowed_ip(ff.a_peer, AF_INET6, all6, 0) ||
	    wg_peer_add_allowed_ip(ff.b_peer, AF_INET, net10, 8) ||
	    wg_peer_add_allowed_ip(ff.b_peer, AF_INET6, fd, 8) ||
	    wg_peer_add_allowed_ip(ff.b_peer_c, AF_INET, net10_99, 16))
		abort();
	/* FIPS handshake: initiation A->B, response B->A, keepalive A->B confirms. */
	wg_peer_initiate(ff.a_peer, ff.now);
	fips_forward(ff.b, &ff.ea);
	fips_forward(ff.a, &ff.eb);
	fips_forward(ff.b, &ff.ea);
	struct wg_keypair *kpa = ff.a_peer->kp_current, *kpb = ff.b_peer->kp_current;
	if (!kpa || !kpb || kpa->wire_mode != WG_MODE_FIPS || kpb->wire_mode != WG_MODE_FIPS)
		abort();
	fips_fixed(kpa->send_key, sizeof(kpa->send_key), FIPS_TAG_SEND_AB);
	fips_fixed(kpb->recv_key, sizeof(kpb->recv_key), FIPS_TAG_SEND_AB);
	fips_fixed(kpb->send_key, sizeof(kpb->send_key), FIPS_TAG_SEND_BA);
	fips_fixed(kpa->recv_key, sizeof(kpa->recv_key), FIPS_TAG_SEND_BA);
	/* The keypairs encrypt with AEAD contexts keyed at session start: key them again. */
	struct wg_keypair *kps[2] = {kpa, kpb};
	for (int i = 0; i < 2; i++) {
		sg_aead_free(kps[i]->tx);
		sg_aead_free(kps[i]->rx);
		kps[i]->tx = sg_aead_new(SG_SUITE_FIPS, kps[i]->send_key, true);
		kps[i]->rx = sg_aead_new(SG_SUITE_FIPS, kps[i]->recv_key, false);
		if (!kps[i]->tx || !kps[i]->rx)
			abort();
	}
	/* Once B may initiate again (its response counts as a handshake sent, REKEY_TIMEOUT), it
	 * initiates to A and to C; nobody answers. */
	ff.now += REKEY_TIMEOUT + NSEC;
	wg_peer_initiate(ff.b_peer, ff.now);
	fips_pin_in_flight();
	wg_peer_initiate(ff.b_peer_c, ff.now);
	if (ff.b_peer_c->act->hs.state != HANDSHAKE_CREATED_INITIATION ||
	    ff.b_peer_c->act->hs.mode != SG_SUITE_FIPS)
		abort();
	ff.last_len = 0;
	ff.now += NSEC;
	sg_memzero(ka, sizeof(ka));
	sg_memzero(kb, sizeof(kb));
	sg_memzero(fa, sizeof(fa));
	sg_memzero(fb, sizeof(fb));
	sg_memzero(fc, sizeof(fc));
}

/* Feeds one fuzzed datagram to B, from A's address. The type byte is forced to `type`; the mode
 * and reserved bytes stay as fuzzed (their checks are under test). Each input meets B not under
 * load (the load window is reset), unless FIPS_FEED_LOAD and the input asks for it. */
static void fips_feed(const uint8_t *data, size_t size, uint8_t type, unsigned flags)
{
	uint8_t *buf = malloc(size ? size : 1);
	uint8_t last = size ? data[size - 1] : 0;
	if (!buf)
		return;
	memcpy(buf, data, size);
	ff.now += 1000;
	if (size >= 1)
		buf[0] = type;
	if (flags & FIPS_FEED_REARM)
		fips_rearm();
	if ((flags & FIPS_FEED_LIVE_INDEX) && size >= 8 && (last & 1)) {
		struct wg_keypair *kp = ff.b_peer->kp_current;
		if (kp)
			sg_put_le32(buf + 4, kp->entry.index);
	}
	if ((flags & FIPS_FEED_INDEX_ALIAS) && size >= 8 && sg_le32(buf + 4) <= 1) {
		struct wg_peer *p = sg_le32(buf + 4) == 0 ? ff.b_peer : ff.b_peer_c;
		sg_put_le32(buf + 4, p->act->hs.entry.index);
	}
	ff.b->load_window_count = 0;
	ff.b->was_under_load = false;
	wg_device_force_under_load(ff.b, (flags & FIPS_FEED_LOAD) && (last & 2));
	/* The daemon's queueing check sees every datagram first; it must not change the outcome. */
	(void)wg_device_handshake_costly(ff.b, ff.now, &ff.ea, buf, size);
	wg_device_receive(ff.b, ff.now, &ff.ea, buf, size);
	wg_device_force_under_load(ff.b, false);
	free(buf);
	ff.last_len = 0;
}

#endif
