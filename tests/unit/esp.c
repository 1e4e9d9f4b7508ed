/* Unit tests for ESP (src/ike/esp.c).
 *
 * test_rfc7634_a1 rebuilds the ESP packet of RFC 7634 appendix A.1 (SPI 0x01020304, sequence
 * number 5, IV 0x1011121314151617, an ICMP echo in tunnel mode, ChaCha20-Poly1305) byte for byte
 * and opens it again. The anti-replay window is compared against a naive reference (the set of
 * numbers accepted so far and the highest) on random sequences, with and without extended
 * sequence numbers across the 2^32 boundary (RFC 4303 3.4.3, appendix A2). */
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#include <secureguard/sg_errors.h>

#include "crypto/ipsec.h"
#include "ike/esp.h"
#include "ike/ike_msg.h"

static int setup(void **state)
{
	(void)state;
	return sg_crypto_init();
}

#define A1_KEY "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3"
#define A1_PT                                                                                      \
	"45000054a6f200004001e778c6336405c000020508005b7a3a080000553bec100007362708090a0b0c0d0e0f" \
	"101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637"
#define A1_CT                                                                                      \
	"24039428b97f417e3c13753a4f05087b67c352e6a7fab1b982d466ef407ae5c614ee8099d52844eb61aa95df" \
	"ab4c02f72aa71e7c4c4f64c9befe2facc638e8f3cbec163fac469b502773f6fb94e664da9165b82829f641e0" \
	"76aaa8266b7fb0f7b11b369907e1ad43"

static void test_rfc7634_a1(void **state)
{
	uint8_t key[36], pt[84], want[8 + 8 + 104], out[256], in[256 + 40];
	struct esp_sa tx, rx;
	size_t n;
	uint8_t *pkt;
	size_t pkt_len;
	(void)state;
	HEX(key, A1_KEY);
	HEX(pt, A1_PT);
	HEX(want, "0102030400000005"
		  "1011121314151617" A1_CT);
	assert_int_equal(esp_sa_init(&tx, 0x01020304, IKE_ENCR_CHACHA20_POLY1305, 256, 0, key, 36,
				     NULL, 0, false, true),
			 0);
	assert_int_equal(esp_sa_init(&rx, 0x01020304, IKE_ENCR_CHACHA20_POLY1305, 256, 0, key, 36,
				     NULL, 0, false, false),
			 0);
	tx.seq = 4;				/* the next is 5 */
	tx.seq_iv_base = 0x1011121314151612ull; /* IV = base + 5 */
	assert_int_equal(esp_encap(&tx, 0, pt, sizeof(pt), out, sizeof(out), &n), ESP_OK);
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(out, want, sizeof(want));
	/* Open it (with headroom, as the daemon passes packets). */
	memcpy(in + 40, want, sizeof(want));
	assert_int_equal(esp_decap(&rx, 1, in + 40, sizeof(want), &pkt, &pkt_len), ESP_OK);
	assert_int_equal(pkt_len, sizeof(pt));
	assert_memory_equal(pkt, pt, sizeof(pt));
	/* The same packet again: replayed, and the window still says 5. */
	memcpy(in + 40, want, sizeof(want));
	assert_int_equal(esp_decap(&rx, 0, in + 40, sizeof(want), &pkt, &pkt_len), ESP_E_REPLAY);
	assert_int_equal(rx.replayed, 1);
	esp_sa_wipe(&tx);
	esp_sa_wipe(&rx);
}

struct pair {
	struct esp_sa tx, rx;
};

static void make_pair(struct pair *p, uint16_t encr, uint16_t bits, uint16_t integ, bool esn)
{
	uint8_t key[36], ak[64];
	size_t kl = bits / 8 + (integ ? 0 : 4);
	fill_seq(key, sizeof(key), 3);
	fill_seq(ak, sizeof(ak), 77);
	size_t al = integ ? sg_integ_key_len(integ) : 0;
	assert_int_equal(
	    esp_sa_init(&p->tx, 0xc0ffee01, encr, bits, integ, key, kl, ak, al, esn, true), 0);
	assert_int_equal(
	    esp_sa_init(&p->rx, 0xc0ffee01, encr, bits, integ, key, kl, ak, al, esn, false), 0);
}

static void free_pair(struct pair *p)
{
	esp_sa_wipe(&p->tx);
	esp_sa_wipe(&p->rx);
}

static size_t ipv4_packet(uint8_t *p, size_t len, uint8_t proto)
{
	memset(p, 0, len);
	p[0] = 0x45;
	p[2] = (uint8_t)(len >> 8), p[3] = (uint8_t)len;
	p[8] = 64;
	p[9] = proto;
	p[12] = 10, p[13] = 1, p[15] = 1;
	p[16] = 10, p[17] = 2, p[19] = 1;
	for (size_t i = 20; i < len; i++)
		p[i] = (uint8_t)(i * 7);
	return len;
}

static void test_round_trips(void **state)
{
	static const struct {
		uint16_t encr, bits, integ;
		bool esn;
	} c[] = {
	    {IKE_ENCR_AES_GCM_16, 128, 0, false},
	    {IKE_ENCR_AES_GCM_16, 256, 0, true},
	    {IKE_ENCR_CHACHA20_POLY1305, 256, 0, true},
	    {IKE_ENCR_AES_CBC, 128, SG_INTEG_HMAC_SHA2_256_128, false},
	    {IKE_ENCR_AES_CBC, 256, SG_INTEG_HMAC_SHA2_512_256, true},
	};
	uint8_t pkt[1500], buf[40 + 1600];
	(void)state;
	for (size_t k = 0; k < SG_ARRAY_LEN(c); k++) {
		struct pair p;
		make_pair(&p, c[k].encr, c[k].bits, c[k].integ, c[k].esn);
		for (size_t len = 20; len <= 1500; len += 37) {
			size_t n, out;
			uint8_t *inner;
			ipv4_packet(pkt, len, 17);
			assert_int_equal(
			    esp_encap(&p.tx, 0, pkt, len, buf + 40, sizeof(buf) - 40, &n), ESP_OK);
			assert_true(n <= len + ESP_MAX_OVERHEAD);
			assert_int_equal((n - 8 - p.tx.iv_len - p.tx.icv_len) % p.tx.block, 0);
			assert_int_equal(esp_decap(&p.rx, 2, buf + 40, n, &inner, &out), ESP_OK);
			assert_int_equal(out, len);
			assert_memory_equal(inner, pkt, len);
		}
		/* A flipped bit anywhere fails the ICV, and moves no window. */
		size_t n, out;
		uint8_t *inner;
		uint64_t before = p.rx.seq;
		ipv4_packet(pkt, 100, 6);
		assert_int_equal(esp_encap(&p.tx, 0, pkt, 100, buf + 40, sizeof(buf) - 40, &n),
				 ESP_OK);
		buf[40 + n / 2] ^= 1;
		assert_int_equal(esp_decap(&p.rx, 0, buf + 40, n, &inner, &out), ESP_E_AUTH);
		assert_int_equal(p.rx.seq, before);
		assert_int_equal(p.rx.auth_failed, 1);
		free_pair(&p);
	}
}

/* The three-step data path over a batch: every op prepared in order, run on several lanes in
 * reverse order, completed in order; the same as one by one, and two copies of one packet in a
 * batch are caught at complete (both pass the pre-check). */
static void test_batch(void **state)
{
	enum { N = 16 };
	static uint8_t out[N + 1][40 + 1600];
	uint8_t pkt[N][1200];
	struct esp_op op[N + 1];
	(void)state;
	for (int k = 0; k < 2; k++) {
		struct pair p;
		if (k == 0)
			make_pair(&p, IKE_ENCR_AES_GCM_16, 256, 0, true);
		else
			make_pair(&p, IKE_ENCR_AES_CBC, 128, SG_INTEG_HMAC_SHA2_256_128, false);
		for (int i = 0; i < N; i++) {
			ipv4_packet(pkt[i], 100 + 60 * (size_t)i, 17);
			assert_int_equal(esp_encap_prepare(&p.tx, pkt[i], 100 + 60 * (size_t)i,
							   out[i] + 40, sizeof(out[i]) - 40, &op[i]),
					 ESP_OK);
			assert_int_equal(op[i].seq, (uint64_t)i + 1);
		}
		for (int i = N - 1; i >= 0; i--)
			esp_op_run(&op[i], (unsigned)i % 4);
		size_t lens[N + 1];
		for (int i = 0; i < N; i++) {
			assert_int_equal(op[i].result, 0);
			lens[i] = op[i].len;
		}
		/* Packet 3 again, in the same batch. */
		memcpy(out[N], out[3], sizeof(out[N]));
		lens[N] = lens[3];
		for (int i = 0; i <= N; i++)
			assert_int_equal(esp_decap_prepare(&p.rx, out[i] + 40, lens[i], &op[i]),
					 ESP_OK);
		for (int i = N; i >= 0; i--)
			esp_op_run(&op[i], (unsigned)i % 3);
		for (int i = 0; i <= N; i++) {
			uint8_t *inner;
			size_t il;
			int rc = esp_decap_complete(&op[i], &inner, &il);
			if (i == N) {
				assert_int_equal(rc, ESP_E_REPLAY);
				continue;
			}
			assert_int_equal(rc, ESP_OK);
			assert_int_equal(il, 100 + 60 * (size_t)i);
			assert_memory_equal(inner, pkt[i], il);
		}
		assert_int_equal(p.rx.replayed, 1);
		assert_int_equal(p.rx.packets, N);
		free_pair(&p);
	}
}

static void test_transport_mode(void **state)
{
	struct pair p;
	uint8_t pkt[200], buf[40 + 300];
	size_t n, out;
	uint8_t *inner;
	(void)state;
	make_pair(&p, IKE_ENCR_AES_GCM_16, 256, 0, false);
	p.tx.transport = p.rx.transport = true;
	p.rx.family = 4;
	memcpy(p.rx.remote, "\x0a\x01\x00\x01", 4);
	memcpy(p.rx.local, "\x0a\x02\x00\x01", 4);
	ipv4_packet(pkt, 120, 6);
	/* Fix the sender's header checksum so the rebuilt one can be compared. */
	uint32_t sum = 0;
	for (int i = 0; i < 20; i += 2)
		sum += (uint32_t)(pkt[i] << 8 | pkt[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	pkt[10] = (uint8_t)(~sum >> 8), pkt[11] = (uint8_t)~sum;
	assert_int_equal(esp_encap(&p.tx, 0, pkt, 120, buf + 40, sizeof(buf) - 40, &n), ESP_OK);
	/* Only the 100-byte payload travels: next header 6 (TCP). */
	assert_true(n <= 100 + ESP_MAX_OVERHEAD);
	assert_int_equal(esp_decap(&p.rx, 0, buf + 40, n, &inner, &out), ESP_OK);
	assert_int_equal(out, 120);
	assert_memory_equal(inner, pkt, 120); /* the same header, checksum included */
	free_pair(&p);
}

/* The naive reference: accepted numbers in a set, the highest kept. */
static void test_replay_vs_reference(void **state)
{
	(void)state;
	for (int esn = 0; esn < 2; esn++) {
		struct pair p;
		uint8_t pkt[40], buf[40 + 200], copy[200];
		make_pair(&p, IKE_ENCR_AES_GCM_16, 128, 0, esn);
		/* Start near the 32-bit boundary with ESN (A2.2 high-bit inference). */
		uint64_t base = esn ? 0xfffff000ull : 0;
		p.tx.seq = base;
		p.rx.seq = base;
		enum { N = 6000 };
		static uint8_t packets[N][100];
		static size_t lens[N];
		static bool seen[N];
		memset(seen, 0, sizeof(seen));
		ipv4_packet(pkt, sizeof(pkt), 17);
		for (int i = 0; i < N; i++) {
			assert_int_equal(
			    esp_encap(&p.tx, 0, pkt, sizeof(pkt), packets[i], 100, &lens[i]),
			    ESP_OK);
		}
		uint64_t highest = base;
		for (int step = 0; step < 20000; step++) {
			/* Mostly forward, sometimes back within and beyond the window, repeats. */
			/* SG_MIN evaluates its arguments twice: random numbers are drawn first. */
			int i;
			uint32_t r = sg_random_u32() % 100, r2 = sg_random_u32();
			uint64_t h = highest - base; /* index of the highest delivered + 1 */
			uint64_t ahead = h + r2 % 3, back = SG_MIN(h, (uint64_t)ESP_REPLAY_WINDOW + 50);
			if (r < 60)
				i = (int)SG_MIN(ahead, (uint64_t)N - 1);
			else if (r < 90 && h)
				i = (int)(h - 1 - r2 % back);
			else
				i = (int)(r2 % N);
			uint64_t seq = base + (uint64_t)i + 1;
			bool want =
			    !seen[i] && !(highest >= seq && highest - seq >= ESP_REPLAY_WINDOW);
			memcpy(copy, packets[i], lens[i]);
			memcpy(buf + 40, copy, lens[i]);
			uint8_t *inner;
			size_t out;
			int rc = esp_decap(&p.rx, 0, buf + 40, lens[i], &inner, &out);
			if ((rc == ESP_OK) != want)
				fail_msg(
				    "esn=%d packet %d (seq %llx, highest %llx): got %d, want %s",
				    esn, i, (unsigned long long)seq, (unsigned long long)highest,
				    rc, want ? "accept" : "reject");
			if (rc == ESP_OK) {
				seen[i] = true;
				if (seq > highest)
					highest = seq;
			}
		}
		assert_true(highest > base + 3000); /* the run went well past the window */
		if (esn)
			assert_true(highest > 0x100000000ull); /* and across 2^32 */
		free_pair(&p);
	}
}

static void test_limits(void **state)
{
	struct pair p;
	uint8_t pkt[100], buf[40 + 300];
	size_t n, out;
	uint8_t *inner;
	(void)state;
	/* Lifetimes: soft once, then hard. */
	make_pair(&p, IKE_ENCR_AES_GCM_16, 256, 0, false);
	p.tx.soft_packets = 3;
	p.tx.hard_packets = 5;
	ipv4_packet(pkt, sizeof(pkt), 17);
	int rcs[6];
	for (int i = 0; i < 6; i++)
		rcs[i] = esp_encap(&p.tx, 0, pkt, sizeof(pkt), buf, sizeof(buf), &n);
	assert_int_equal(rcs[0], ESP_OK);
	assert_int_equal(rcs[2], ESP_SOFT);
	assert_int_equal(rcs[3], ESP_OK);
	assert_int_equal(rcs[5], ESP_E_HARD);
	assert_int_equal(esp_encap(&p.tx, 0, pkt, sizeof(pkt), buf, sizeof(buf), &n), ESP_E_HARD);
	free_pair(&p);
	/* 32-bit sequence numbers do not wrap (3.3.3). */
	make_pair(&p, IKE_ENCR_AES_GCM_16, 256, 0, false);
	p.tx.seq = UINT32_MAX - 1;
	assert_int_equal(esp_encap(&p.tx, 0, pkt, sizeof(pkt), buf, sizeof(buf), &n), ESP_OK);
	assert_int_equal(esp_encap(&p.tx, 0, pkt, sizeof(pkt), buf, sizeof(buf), &n), ESP_E_SEQ);
	free_pair(&p);
	/* Output too small; packets too short or for another SPI. */
	make_pair(&p, IKE_ENCR_AES_GCM_16, 256, 0, false);
	assert_int_equal(esp_encap(&p.tx, 0, pkt, sizeof(pkt), buf, 50, &n), ESP_E_SPACE);
	assert_int_equal(p.tx.seq, 0); /* nothing consumed */
	assert_int_equal(esp_decap(&p.rx, 0, buf + 40, 20, &inner, &out), ESP_E_SHORT);
	memset(buf + 40, 0, 64);
	assert_int_equal(esp_decap(&p.rx, 0, buf + 40, 64, &inner, &out), ESP_E_SHORT);
	free_pair(&p);
	/* Bad padding inside an authentic packet: dropped after the ICV, as malformed. */
	make_pair(&p, IKE_ENCR_AES_GCM_16, 256, 0, false);
	uint8_t key[36];
	fill_seq(key, sizeof(key), 3);
	struct sg_aead *k = sg_ipsec_aead_new(IKE_ENCR_AES_GCM_16, key, 32, true);
	uint8_t raw[8 + 8 + 24 + 16] = {0xc0, 0xff, 0xee, 0x01, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9};
	uint8_t *body = raw + 16;
	memset(body, 0x45, 24);
	body[22] = 5;		 /* pad length 5 */
	body[23] = 4;		 /* next header IPv4 */
	memset(body + 17, 9, 5); /* wrong padding bytes */
	assert_true(sg_ipsec_aead_seal(k, 0, body, body, 24, raw, 8, raw + 8));
	memcpy(buf + 40, raw, sizeof(raw));
	assert_int_equal(esp_decap(&p.rx, 0, buf + 40, sizeof(raw), &inner, &out), ESP_E_SHORT);
	assert_int_equal(p.rx.malformed, 1);
	sg_aead_free(k);
	free_pair(&p);
	struct esp_sa s;
	assert_int_equal(
	    esp_sa_init(&s, 255, IKE_ENCR_AES_GCM_16, 256, 0, key, 36, NULL, 0, false, true),
	    SG_EINVAL);
	assert_int_equal(esp_spi((const uint8_t *)"\x01\x02\x03\x04", 4), 0x01020304);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc7634_a1),	   cmocka_unit_test(test_round_trips),
	    cmocka_unit_test(test_transport_mode), cmocka_unit_test(test_batch),
	    cmocka_unit_test(test_replay_vs_reference), cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
