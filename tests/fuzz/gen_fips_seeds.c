/* Writes the seed corpora of the FIPS-mode fuzz targets (fuzz_fips_initiation, _response,
 * _cookie, _data and fuzz_wg_reject): valid messages, so the fuzzer starts past the MACs and
 * the AEADs, plus a few invalid ones (wrong length, mode byte 2, nonzero reserved bytes, ...).
 *
 * It builds the fuzz world of fips_fuzz.h (same fixed keys, same deterministic random hook, so
 * the same receiver indexes and pinned secrets as every fuzz run) and lets the real core write
 * each message: A writes data, responses and cookie replies against B's state; A, a FIPS-only
 * device C and a device D unknown to B write initiations. Rerun it whenever fips_fuzz.h or the
 * wire format changes; the replay test (ctest -R fuzz) then shows the seeds still go deep.
 *
 * Not part of the CMake build. By hand, from the source root, after building sg_wg:
 *   cc -std=c17 -Wall -Wextra -Wno-unused-parameter -Isrc -Iinclude -Itests/fuzz \
 *      tests/fuzz/gen_fips_seeds.c -o /tmp/gen_fips_seeds \
 *      $BUILD/lib/libsg_wg.a $BUILD/lib/libsg_crypto.a $BUILD/lib/libsg_common.a -lcrypto
 *   /tmp/gen_fips_seeds tests/fuzz/corpus
 *   /tmp/gen_fips_seeds --check tests/fuzz/corpus
 * (BUILD is any build directory holding the archives.) --check, in a fresh process as a fuzz run
 * would be, builds the world and feeds it the valid seeds through fips_feed: each must pass
 * mac1 and decrypt (no failure counter of B moves), which shows the fixed keys and pinned secrets
 * really make them valid across runs.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

#include "fips_fuzz.h"

static const char *root;
static int written;

static void put(const char *target, const char *name, const uint8_t *buf, size_t len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", root, target);
	if (mkdir(path, 0755) != 0 && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/%s", root, target, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
	written++;
}

/* The last datagram sent in the world; exits if there is none or it has the wrong length. */
static size_t take(uint8_t *out, size_t want, const char *what)
{
	size_t len = ff.last_len;
	if (!len || (want && len != want)) {
		fprintf(stderr, "gen_fips_seeds: %s: sent %zu bytes, expected %zu\n", what, len,
			want);
		exit(1);
	}
	memcpy(out, ff.last_sent, len);
	ff.last_len = 0;
	return len;
}

/* The invalid variants every target gets: one byte short, one long, mode 2, reserved set. */
static void put_invalid(const char *target, const uint8_t *valid, size_t len)
{
	uint8_t b[2048];
	memcpy(b, valid, len);
	put(target, "bad_len_short", b, len - 1);
	b[len] = 0;
	put(target, "bad_len_long", b, len + 1);
	b[1] = 2;
	put(target, "bad_mode_2", b, len);
	b[1] = valid[1];
	b[2] = 1;
	put(target, "bad_reserved", b, len);
}

/* An IPv4 (v = 4) or IPv6 packet from `src` with n payload bytes. */
static size_t ip_packet(uint8_t *p, int v, const uint8_t *src, size_t n)
{
	size_t h = v == 4 ? 20 : 40;
	memset(p, 0, h + n);
	if (v == 4) {
		p[0] = 0x45;
		p[2] = (uint8_t)((h + n) >> 8);
		p[3] = (uint8_t)(h + n);
		p[8] = 64;
		p[9] = 17;
		memcpy(p + 12, src, 4);
		p[16] = 10;
		p[19] = 1;
	} else {
		p[0] = 0x60;
		p[4] = (uint8_t)(n >> 8);
		p[5] = (uint8_t)n;
		p[6] = 17;
		p[7] = 64;
		memcpy(p + 8, src, 16);
		p[24] = 0xfd;
		p[39] = 1;
	}
	for (size_t i = 0; i < n; i++)
		p[h + i] = (uint8_t)i;
	return h + n;
}

/* A FIPS data message A -> B with any counter and plaintext, sealed with the pinned key
 * (AES-256-GCM, Noise nonce), as send.c would. */
static size_t seal_data(uint8_t *out, uint64_t counter, const uint8_t *pt, size_t n)
{
	uint8_t key[32], nonce[12];
	out[0] = WG_MSG_DATA;
	out[1] = WG_MODE_FIPS;
	out[2] = out[3] = 0;
	sg_put_le32(out + 4, ff.a_peer->kp_current->remote_index);
	sg_put_le64(out + 8, counter);
	fips_fixed(key, sizeof(key), FIPS_TAG_SEND_AB);
	sg_noise_aesgcm_nonce(nonce, counter);
	if (!sg_aes256gcm_encrypt(out + 16, pt, n, NULL, 0, nonce, key))
		exit(1);
	return 16 + n + 16;
}

static void gen_data(void)
{
	uint8_t pkt[1500], msg[2048];
	uint8_t s4[4] = {10, 0, 0, 9}, s4bad[4] = {192, 0, 2, 9}, s4c[4] = {10, 99, 0, 9};
	uint8_t s6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9};
	size_t n, len;

	/* Through A's real send path: counters 1, 2, 3 (0 was the confirming keepalive). */
	n = ip_packet(pkt, 4, s4, 64);
	if (wg_device_send(ff.a, ff.now, pkt, n))
		exit(1);
	len = take(msg, 0, "data v4");
	put("fips_data", "valid_data_v4", msg, len);
	put_invalid("fips_data", msg, len);
	msg[1] = WG_MODE_CLASSIC; /* a classic copy of a FIPS packet: refused by mode */
	put("fips_data", "classic_mode_copy", msg, len);
	msg[1] = WG_MODE_FIPS;
	msg[len - 20] ^= 0x80;
	put("fips_data", "bad_tag", msg, len);
	n = ip_packet(pkt, 6, s6, 100);
	if (wg_device_send(ff.a, ff.now, pkt, n))
		exit(1);
	len = take(msg, 0, "data v6");
	put("fips_data", "valid_data_v6", msg, len);
	send_keepalive(ff.a_peer, ff.now);
	len = take(msg, WG_MSG_DATA_MIN_LEN, "keepalive");
	put("fips_data", "valid_keepalive", msg, len);
	/* Authenticated but refused after decryption. */
	n = ip_packet(pkt, 4, s4bad, 8);
	put("fips_data", "source_not_allowed", msg, seal_data(msg, 10, pkt, n));
	n = ip_packet(pkt, 4, s4c, 8);
	put("fips_data", "source_of_other_peer", msg, seal_data(msg, 11, pkt, n));
	n = ip_packet(pkt, 4, s4, 8);
	pkt[2] = 0x40; /* total length beyond the payload */
	put("fips_data", "bad_inner_length", msg, seal_data(msg, 12, pkt, n));
	memset(pkt, 0x77, 32);
	put("fips_data", "not_ip", msg, seal_data(msg, 13, pkt, 32));
	n = ip_packet(pkt, 4, s4, 8);
	put("fips_data", "counter_limit", msg, seal_data(msg, REJECT_AFTER_MESSAGES, pkt, n));
}

static void gen_response(void)
{
	struct wg_handshake *hs = &peer_activate(ff.a_peer)->hs;
	uint8_t e_priv[SG_P384_PRIV_LEN], msg[WG_FIPS_RESPONSE_LEN], b[WG_FIPS_RESPONSE_LEN];
	size_t len;

	/* A stands where it would be after consuming B's initiation: same (pinned) transcript,
	 * B's (pinned) ephemeral, B's index. Then A writes the response as the core does. */
	hs->state = HANDSHAKE_CONSUMED_INITIATION;
	hs->mode = SG_SUITE_FIPS;
	hs->sym.suite = sg_suite_get(SG_SUITE_FIPS);
	fips_fixed(hs->sym.ck, sizeof(hs->sym.ck), FIPS_TAG_CK);
	fips_fixed(hs->sym.h, sizeof(hs->sym.h), FIPS_TAG_H);
	fips_fixed(e_priv, sizeof(e_priv), FIPS_TAG_EPH_B);
	if (!sg_p384_public(hs->remote_ephemeral, e_priv))
		exit(1);
	hs->remote_index = ff.b_peer->act->hs.entry.index;
	len = handshake_create_response(ff.a_peer, msg);
	if (len != WG_FIPS_RESPONSE_LEN ||
	    !cookie_add_macs(&peer_activate(ff.a_peer)->cookie, SG_SUITE_FIPS, msg, len, ff.now))
		exit(1);
	put("fips_response", "valid_response", msg, len);
	put_invalid("fips_response", msg, len);
	memcpy(b, msg, len);
	b[len - 1] ^= 2; /* fips_feed: B under load; mac1 fine, no mac2: B sends a cookie */
	put("fips_response", "valid_response_under_load", b, len);
	memcpy(b, msg, len);
	b[len - 40] ^= 1; /* the sealed capabilities: mac1 fails */
	put("fips_response", "bad_mac1", b, len);
	if (!cookie_add_macs(&peer_activate(ff.a_peer)->cookie, SG_SUITE_FIPS, b, len, ff.now))
		exit(1);
	put("fips_response", "bad_aead", b, len); /* mac1 right, Noise fails */
	memcpy(b, msg, len);
	/* B's initiation to C: a handshake index, another transcript. */
	sg_put_le32(b + 8, ff.b_peer_c->act->hs.entry.index);
	if (!cookie_add_macs(&peer_activate(ff.a_peer)->cookie, SG_SUITE_FIPS, b, len, ff.now))
		exit(1);
	put("fips_response", "other_peers_index", b, len);
	sg_put_le32(b + 8, ff.b_peer->kp_current->entry.index); /* a keypair, not a handshake */
	if (!cookie_add_macs(&peer_activate(ff.a_peer)->cookie, SG_SUITE_FIPS, b, len, ff.now))
		exit(1);
	put("fips_response", "keypair_index", b, len);
	put("fips_response", "classic_length", msg, WG_MSG_RESPONSE_LEN);
}

static void gen_cookie(void)
{
	uint8_t init[WG_FIPS_INITIATION_LEN] = {0}, msg[WG_FIPS_COOKIE_LEN], b[WG_FIPS_COOKIE_LEN];
	uint8_t src[6];
	size_t len;

	/* A (under load) answers an initiation of B whose mac1 is the pinned one; the cookie is
	 * bound to B's address and port, as receive.c does it. */
	fips_fixed(init + sizeof(init) - 32, WG_COOKIE_LEN, FIPS_TAG_MAC1);
	memcpy(src, &ff.eb.addr.in4.sin_addr, 4);
	memcpy(src + 4, &ff.eb.addr.in4.sin_port, 2);
	len = cookie_create_reply(&ff.a->checker, SG_SUITE_FIPS, msg, init, sizeof(init),
				  ff.b_peer->act->hs.entry.index, src, sizeof(src), ff.now);
	if (len != WG_FIPS_COOKIE_LEN)
		exit(1);
	put("fips_cookie", "valid_cookie", msg, len);
	put_invalid("fips_cookie", msg, len);
	memcpy(b, msg, len);
	sg_put_le32(b + 4, ff.b_peer->kp_current->entry.index); /* any index of the peer */
	put("fips_cookie", "valid_cookie_keypair_index", b, len);
	memcpy(b, msg, len);
	sg_put_le32(b + 4, 0); /* fips_feed alias: B's current initiation to A */
	put("fips_cookie", "valid_cookie_alias", b, len);
	memcpy(b, msg, len);
	b[len - 1] ^= 1;
	put("fips_cookie", "bad_tag", b, len);
	memcpy(b, msg, len);
	sg_put_le32(b + 4, ff.b_peer_c->act->hs.entry.index); /* C: never sent it a mac1 of ours */
	put("fips_cookie", "other_peers_index", b, len);
	memcpy(b, msg, len);
	sg_put_le32(b + 4, 0xdeadbeef);
	put("fips_cookie", "unknown_index", b, len);
	uint8_t classic[WG_MSG_COOKIE_LEN] = {WG_MSG_COOKIE, WG_MODE_FIPS};
	memcpy(classic + 4, msg + 4, 4);
	put("fips_cookie", "classic_length", classic, sizeof(classic));
}

static void reject(uint8_t *m, uint8_t mode, uint32_t index, uint16_t caps, uint8_t reason)
{
	memset(m, 0, WG_MSG_REJECT_LEN);
	m[0] = WG_MSG_REJECT;
	m[1] = mode;
	sg_put_le32(m + 4, index);
	sg_put_le16(m + 8, caps);
	m[10] = reason;
}

static void gen_reject(void)
{
	uint32_t ia = ff.b_peer->act->hs.entry.index, ic = ff.b_peer_c->act->hs.entry.index;
	uint16_t v = WG_CAP_VERSION_BITS;
	uint8_t m[WG_MSG_REJECT_LEN];

	/* The auto peer (A) falls back to classic; the fips peer (C) only logs. */
	reject(m, WG_MODE_FIPS, ia, v | WG_CAP_CLASSIC, WG_REJECT_FIPS_UNAVAILABLE);
	put("wg_reject", "auto_fips_unavailable", m, sizeof(m));
	put_invalid("wg_reject", m, sizeof(m));
	m[11] = 1;
	put("wg_reject", "bad_last_byte", m, sizeof(m));
	reject(m, WG_MODE_FIPS, ia, v | WG_CAP_FIPS, WG_REJECT_CLASSIC_REQUIRED);
	put("wg_reject", "auto_no_classic_cap", m, sizeof(m));
	reject(m, WG_MODE_FIPS, ia, 2u << 8 | WG_CAP_CLASSIC, WG_REJECT_VERSION);
	put("wg_reject", "auto_version", m, sizeof(m));
	reject(m, WG_MODE_CLASSIC, ia, v | WG_CAP_FIPS, WG_REJECT_FIPS_REQUIRED);
	put("wg_reject", "auto_wrong_mode", m, sizeof(m));
	reject(m, WG_MODE_FIPS, ic, v | WG_CAP_CLASSIC, WG_REJECT_FIPS_UNAVAILABLE);
	put("wg_reject", "fips_peer_fips_unavailable", m, sizeof(m));
	reject(m, WG_MODE_FIPS, ic, v | WG_CAP_CLASSIC, WG_REJECT_CLASSIC_REQUIRED);
	put("wg_reject", "fips_peer_classic_required", m, sizeof(m));
	reject(m, WG_MODE_FIPS, ic, 0xffff, 0x7f);
	put("wg_reject", "fips_peer_unknown_reason", m, sizeof(m));
	reject(m, WG_MODE_FIPS, 0, v | WG_CAP_CLASSIC, WG_REJECT_FIPS_UNAVAILABLE);
	put("wg_reject", "alias_auto", m, sizeof(m));
	reject(m, WG_MODE_FIPS, 1, v | WG_CAP_CLASSIC, WG_REJECT_FIPS_UNAVAILABLE);
	put("wg_reject", "alias_fips_peer", m, sizeof(m));
	reject(m, WG_MODE_FIPS, ff.b_peer->kp_current->entry.index, v | WG_CAP_CLASSIC,
	       WG_REJECT_FIPS_UNAVAILABLE);
	put("wg_reject", "keypair_index", m, sizeof(m));
	reject(m, WG_MODE_FIPS, 0xdeadbeef, v | WG_CAP_CLASSIC, WG_REJECT_FIPS_UNAVAILABLE);
	put("wg_reject", "unknown_index", m, sizeof(m));
}

/* A device with only a FIPS key (tag) whose one peer is B, FIPS-only. */
static struct wg_device *fips_only_device(uint8_t tag, struct wg_peer **peer)
{
	struct wg_io io = {
	    .send = fips_send, .deliver = fips_deliver, .realtime_ns = fips_realtime};
	uint8_t k[SG_P384_PRIV_LEN], qb[SG_P384_PUB_LEN], id[32];
	struct wg_device *d = wg_device_new(&io);
	fips_fixed(k, sizeof(k), tag);
	if (!d || wg_device_set_fips_private_key(d, k) || !wg_device_get_fips_public_key(ff.b, qb))
		exit(1);
	wg_fips_peer_id(id, qb);
	if (wg_device_add_peer(d, id, peer) || wg_peer_set_fips_public_key(*peer, qb))
		exit(1);
	wg_peer_set_endpoint(*peer, &ff.eb);
	return d;
}

static void gen_initiation(void)
{
	uint8_t msg[WG_FIPS_INITIATION_LEN], b[WG_FIPS_INITIATION_LEN];
	struct wg_peer *p;
	size_t len;

	/* Later timestamps than anything B has seen from A: B consumes the first one it gets. */
	ff.now += 10 * NSEC;
	wg_peer_initiate(ff.a_peer, ff.now);
	len = take(msg, WG_FIPS_INITIATION_LEN, "initiation A");
	put("fips_initiation", "valid_initiation", msg, len);
	put_invalid("fips_initiation", msg, len);
	memcpy(b, msg, len);
	b[len - 1] ^= 2; /* fips_feed: B under load; mac1 fine, no mac2: B sends a cookie */
	put("fips_initiation", "valid_initiation_under_load", b, len);
	memcpy(b, msg, len);
	b[100] ^= 1; /* the sealed static key */
	put("fips_initiation", "bad_mac1", b, len);
	if (!cookie_add_macs(&peer_activate(ff.a_peer)->cookie, SG_SUITE_FIPS, b, len, ff.now))
		exit(1);
	put("fips_initiation", "bad_aead", b, len); /* mac1 right, Noise fails */
	memcpy(b, msg, len);
	b[9] ^= 1; /* the ephemeral point: usually off the curve now */
	if (!cookie_add_macs(&peer_activate(ff.a_peer)->cookie, SG_SUITE_FIPS, b, len, ff.now))
		exit(1);
	put("fips_initiation", "bad_ephemeral", b, len);
	put("fips_initiation", "classic_length", msg, WG_MSG_INITIATION_LEN);
	ff.now += 10 * NSEC;
	wg_peer_initiate(ff.a_peer, ff.now);
	len = take(msg, WG_FIPS_INITIATION_LEN, "initiation A later");
	put("fips_initiation", "valid_initiation_later", msg, len);

	/* C, which B knows as a FIPS-only peer with crypto mode fips. */
	struct wg_device *c = fips_only_device(FIPS_TAG_KEY_C, &p);
	wg_peer_initiate(p, ff.now);
	len = take(msg, WG_FIPS_INITIATION_LEN, "initiation C");
	put("fips_initiation", "valid_initiation_fips_only_peer", msg, len);
	wg_device_free(c);
	/* D, whose key B does not know: mac1 and the static decrypt, no peer. */
	struct wg_device *d = fips_only_device(FIPS_TAG_KEY_D, &p);
	wg_peer_initiate(p, ff.now);
	len = take(msg, WG_FIPS_INITIATION_LEN, "initiation D");
	put("fips_initiation", "unknown_peer", msg, len);
	wg_device_free(d);
}

/* The valid seeds, in an order in which each still meets the state it was made for, with the
 * flags of their target. */
static const struct {
	const char *target, *name;
	uint8_t type;
	unsigned flags;
	bool under_load;
} valid[] = {
    {"fips_data", "valid_data_v4", WG_MSG_DATA, FIPS_FEED_LIVE_INDEX, false},
    {"fips_data", "valid_data_v6", WG_MSG_DATA, FIPS_FEED_LIVE_INDEX, false},
    {"fips_data", "valid_keepalive", WG_MSG_DATA, FIPS_FEED_LIVE_INDEX, false},
    {"fips_cookie", "valid_cookie", WG_MSG_COOKIE, FIPS_FEED_REARM | FIPS_FEED_INDEX_ALIAS, false},
    {"fips_cookie", "valid_cookie_alias", WG_MSG_COOKIE, FIPS_FEED_REARM | FIPS_FEED_INDEX_ALIAS,
     false},
    {"fips_response", "valid_response_under_load", WG_MSG_RESPONSE,
     FIPS_FEED_LOAD | FIPS_FEED_REARM, true},
    {"fips_response", "valid_response", WG_MSG_RESPONSE, FIPS_FEED_LOAD | FIPS_FEED_REARM, false},
    {"wg_reject", "fips_peer_fips_unavailable", WG_MSG_REJECT,
     FIPS_FEED_REARM | FIPS_FEED_INDEX_ALIAS, false},
    {"wg_reject", "alias_auto", WG_MSG_REJECT, FIPS_FEED_REARM | FIPS_FEED_INDEX_ALIAS, false},
    {"fips_initiation", "valid_initiation_under_load", WG_MSG_INITIATION, FIPS_FEED_LOAD, true},
    {"fips_initiation", "valid_initiation", WG_MSG_INITIATION, FIPS_FEED_LOAD, false},
    {"fips_initiation", "valid_initiation_later", WG_MSG_INITIATION, FIPS_FEED_LOAD, false},
    {"fips_initiation", "valid_initiation_fips_only_peer", WG_MSG_INITIATION, FIPS_FEED_LOAD,
     false},
};

static uint64_t failures(void)
{
	struct wg_device_stats st;
	wg_device_get_stats(ff.b, &st);
	return st.rx_invalid + st.rx_bad_mac + st.rx_handshake_fail + st.rx_rate_limited +
	       st.rx_unknown_index + st.rx_decrypt_fail + st.rx_replayed + st.rx_bad_source +
	       st.rx_bad_inner;
}

static int check(void)
{
	int bad = 0;
	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		char path[4096];
		uint8_t buf[2048];
		struct wg_device_stats st;
		snprintf(path, sizeof(path), "%s/%s/%s", root, valid[i].target, valid[i].name);
		FILE *f = fopen(path, "rb");
		size_t len = f ? fread(buf, 1, sizeof(buf), f) : 0;
		if (f)
			fclose(f);
		if (!len) {
			fprintf(stderr, "gen_fips_seeds: cannot read %s\n", path);
			return 1;
		}
		wg_device_get_stats(ff.b, &st);
		uint64_t fail = failures(), cookies = st.rx_cookie_sent;
		ff.now += NSEC; /* past the initiation flood limit */
		fips_feed(buf, len, valid[i].type, valid[i].flags);
		wg_device_get_stats(ff.b, &st);
		bool ok =
		    failures() == fail && (st.rx_cookie_sent > cookies) == valid[i].under_load;
		printf("%-16s %-34s %s\n", valid[i].target, valid[i].name,
		       ok ? "valid" : "NOT VALID");
		bad += !ok;
	}
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	bool check_mode = argc == 3 && strcmp(argv[1], "--check") == 0;
	if (argc != 2 && !check_mode) {
		fprintf(stderr, "usage: %s [--check] CORPUS_ROOT (tests/fuzz/corpus)\n", argv[0]);
		return 2;
	}
	root = argv[argc - 1];
	fips_world_init();
	if (check_mode)
		return check();
	/* Order matters only inside this process: data first (A's session), then the response
	 * (it rewrites A's handshake), initiations last (they replace it). */
	gen_data();
	gen_response();
	gen_cookie();
	gen_reject();
	gen_initiation();
	printf("gen_fips_seeds: wrote %d seeds under %s\n", written, root);
	return 0;
}
