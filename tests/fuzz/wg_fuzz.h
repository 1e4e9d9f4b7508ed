/* Shared set-up for the WireGuard message fuzz targets: two devices with a live session, so a
 * fuzzed message of any type reaches the deepest parser it can (valid indexes, valid keys). */
#ifndef SG_FUZZ_WG_FUZZ_H
#define SG_FUZZ_WG_FUZZ_H

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "wg/wg_int.h"

struct fuzz_world {
	struct wg_device *a, *b;
	struct wg_peer *a_peer, *b_peer;
	struct wg_endpoint ea, eb;
	uint8_t last_sent[2048];
	size_t last_len;
	uint64_t now;
};

static struct fuzz_world fw;

static void fuzz_send(void *ctx, struct wg_peer *peer, const struct wg_endpoint *to,
		      const uint8_t *buf, size_t len, uint8_t ttl)
{
	if (len <= sizeof(fw.last_sent)) {
		memcpy(fw.last_sent, buf, len);
		fw.last_len = len;
	}
}

static void fuzz_deliver(void *ctx, struct wg_peer *peer, const uint8_t *pkt, size_t len)
{
	/* Touch every byte so ASan sees an out-of-bounds length. */
	volatile uint8_t sink = 0;
	for (size_t i = 0; i < len; i++)
		sink ^= pkt[i];
	(void)sink;
}

static uint64_t fuzz_realtime(void *ctx)
{
	return 1700000000ULL * 1000000000ULL + fw.now;
}

/* Deterministic randomness, so a crash input reproduces. */
static bool fuzz_random(void *ctx, void *buf, size_t n)
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
static void fuzz_forward(struct wg_device *to, const struct wg_endpoint *from)
{
	uint8_t buf[2048];
	size_t len = fw.last_len;
	fw.last_len = 0;
	memcpy(buf, fw.last_sent, len);
	if (len)
		wg_device_receive(to, fw.now, from, buf, len);
}

static void fuzz_world_init(void)
{
	if (fw.a)
		return;
	sg_crypto_set_random(fuzz_random, NULL);
	struct wg_io io = {.send = fuzz_send, .deliver = fuzz_deliver, .realtime_ns = fuzz_realtime};
	uint8_t ka[32], pa[32], kb[32], pb[32];
	fw.now = 1000ULL * 1000000000ULL;
	fw.a = wg_device_new(&io);
	fw.b = wg_device_new(&io);
	if (!fw.a || !fw.b || !sg_x25519_generate(ka, pa) || !sg_x25519_generate(kb, pb))
		abort();
	if (wg_device_set_private_key(fw.a, ka) || wg_device_set_private_key(fw.b, kb) ||
	    wg_device_add_peer(fw.a, pb, &fw.a_peer) || wg_device_add_peer(fw.b, pa, &fw.b_peer))
		abort();
	fw.ea.addr.in4.sin_family = AF_INET;
	fw.ea.addr.in4.sin_port = htons(1);
	fw.ea.addr.in4.sin_addr.s_addr = htonl(0xc0000201);
	fw.eb.addr.in4.sin_family = AF_INET;
	fw.eb.addr.in4.sin_port = htons(2);
	fw.eb.addr.in4.sin_addr.s_addr = htonl(0xc0000202);
	wg_peer_set_endpoint(fw.a_peer, &fw.eb);
	wg_peer_set_endpoint(fw.b_peer, &fw.ea);
	uint8_t all4[4] = {0}, all6[16] = {0};
	if (wg_peer_add_allowed_ip(fw.a_peer, AF_INET, all4, 0) ||
	    wg_peer_add_allowed_ip(fw.a_peer, AF_INET6, all6, 0) ||
	    wg_peer_add_allowed_ip(fw.b_peer, AF_INET, all4, 0) ||
	    wg_peer_add_allowed_ip(fw.b_peer, AF_INET6, all6, 0))
		abort();
	/* Handshake: initiation A->B, response B->A, keepalive A->B confirms. */
	wg_peer_initiate(fw.a_peer, fw.now);
	fuzz_forward(fw.b, &fw.ea);
	fuzz_forward(fw.a, &fw.eb);
	fuzz_forward(fw.b, &fw.ea);
	sg_memzero(ka, sizeof(ka));
	sg_memzero(kb, sizeof(kb));
}

/* Feeds one fuzzed datagram to B, with the type word forced to `type` (0 = as given), and the
 * receiver index forced to a live one when `live_index` is set and the input asks for it. */
static void fuzz_feed(const uint8_t *data, size_t size, uint32_t type, bool live_index)
{
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		return;
	memcpy(buf, data, size);
	if (type && size >= 4) {
		buf[0] = (uint8_t)type;
		buf[1] = buf[2] = buf[3] = 0;
	}
	if (live_index && size >= 8 && (data[size - 1] & 1)) {
		struct wg_keypair *kp = fw.b_peer->kp_current;
		if (kp)
			memcpy(buf + 4, &kp->entry.index, 4);
	}
	fw.now += 1000;
	/* The daemon's queueing check sees every datagram first; it must not change the outcome. */
	(void)wg_device_handshake_costly(fw.b, fw.now, &fw.ea, buf, size);
	wg_device_receive(fw.b, fw.now, &fw.ea, buf, size);
	free(buf);
	fw.last_len = 0;
}

#endif
