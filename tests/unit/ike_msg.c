/* Unit tests for the IKEv2 message codec (src/ike/msg.c, sk.c).
 *
 * test_sk_rfc7634 builds, with the codec, the IKEv2 message of RFC 7634 appendix A.2 (an
 * INFORMATIONAL request whose SK payload carries one SET_WINDOW_SIZE notify, sealed with
 * ChaCha20-Poly1305) and compares it byte for byte with the RFC, then opens it again. The SA
 * payload vector is written by hand from RFC 7296 3.3. The rejection tables name the field that
 * each malformed input breaks. */
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#include <secureguard/sg_errors.h>

#include "crypto/ipsec.h"
#include "ike/ike_msg.h"

static int setup(void **state)
{
	(void)state;
	return sg_crypto_init();
}

/* RFC 7634 A.2: the whole message is the AAD followed by IV, ciphertext and ICV. */
#define A2_AAD "c0c1c2c3c4c5c6c7d0d1d2d3d4d5d6d72e202500000000090000004529000029"
#define A2_IV  "1011121314151617"
#define A2_CT  "610394701f8d017f7c129248896b71bfe25236efd7cdc67066906315b2"
#define A2_KEY "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3"

static void test_sk_rfc7634(void **state)
{
	uint8_t want[69], km[36], mem[256];
	struct ike_buf b;
	struct ike_sk_keys tx, rx;
	struct ike_header h = {.exchange = IKE_INFORMATIONAL, .flags = 0, .msg_id = 9};
	(void)state;
	HEX(want, A2_AAD A2_IV A2_CT);
	HEX(km, A2_KEY);
	fill_seq(h.spi_i, 8, 0xc0);
	fill_seq(h.spi_r, 8, 0xd0);
	assert_int_equal(ike_sk_keys_init(&tx, IKE_ENCR_CHACHA20_POLY1305, 256, 0, km, NULL, true),
			 0);
	assert_int_equal(ike_sk_keys_init(&rx, IKE_ENCR_CHACHA20_POLY1305, 256, 0, km, NULL, false),
			 0);
	tx.iv_counter = 0x1011121314151617ull;
	ike_buf_init(&b, mem, sizeof(mem));
	ike_put_header(&b, &h);
	ike_begin_sk(&b, &tx);
	ike_put_notify(&b, 0, NULL, 0, IKE_N_SET_WINDOW_SIZE, (const uint8_t *)"\0\0\0\x0a", 4);
	assert_int_equal(ike_seal_sk(&b, &tx), 0);
	assert_int_equal(b.len, sizeof(want));
	assert_memory_equal(mem, want, sizeof(want));
	assert_int_equal(tx.iv_counter, 0x1011121314151618ull); /* never reused */

	struct ike_msg m;
	const char *why = NULL;
	assert_int_equal(ike_parse(mem, b.len, &m, &why), 0);
	assert_int_equal(m.hdr.exchange, IKE_INFORMATIONAL);
	assert_int_equal(m.hdr.msg_id, 9);
	assert_int_equal(m.npl, 1);
	assert_int_equal(m.pl[0].type, IKE_PL_SK);
	assert_int_equal(ike_open_sk(&m, mem, &rx, &why), 0);
	assert_int_equal(m.npl, 1);
	struct ike_notify n;
	assert_int_equal(ike_parse_notify(m.pl[0].body, m.pl[0].len, &n, &why), 0);
	assert_int_equal(n.type, IKE_N_SET_WINDOW_SIZE);
	assert_int_equal(n.len, 4);
	assert_int_equal(n.data[3], 10);
	assert_non_null(ike_find_notify(&m, IKE_N_SET_WINDOW_SIZE));

	/* One flipped bit in the header (associated data) or the ICV: SG_EAUTH. */
	memcpy(mem, want, sizeof(want));
	mem[19] ^= 0x08; /* flags */
	assert_int_equal(ike_parse(mem, sizeof(want), &m, &why), 0);
	assert_int_equal(ike_open_sk(&m, mem, &rx, &why), SG_EAUTH);
	memcpy(mem, want, sizeof(want));
	mem[68] ^= 1;
	assert_int_equal(ike_parse(mem, sizeof(want), &m, &why), 0);
	assert_int_equal(ike_open_sk(&m, mem, &rx, &why), SG_EAUTH);
	ike_sk_keys_wipe(&tx);
	ike_sk_keys_wipe(&rx);
}

/* Round trip of an SK message for every IKE cipher the core offers. */
static void test_sk_all_ciphers(void **state)
{
	static const struct {
		uint16_t encr, bits, integ;
	} c[] = {
	    {IKE_ENCR_AES_GCM_16, 128, 0},
	    {IKE_ENCR_AES_GCM_16, 256, 0},
	    {IKE_ENCR_CHACHA20_POLY1305, 256, 0},
	    {IKE_ENCR_AES_CBC, 128, SG_INTEG_HMAC_SHA2_256_128},
	    {IKE_ENCR_AES_CBC, 192, SG_INTEG_HMAC_SHA2_384_192},
	    {IKE_ENCR_AES_CBC, 256, SG_INTEG_HMAC_SHA2_512_256},
	};
	uint8_t ek[36], ak[64], mem[1024], nonce[64];
	(void)state;
	fill_seq(ek, sizeof(ek), 1);
	fill_seq(ak, sizeof(ak), 100);
	fill_seq(nonce, sizeof(nonce), 7);
	for (size_t i = 0; i < SG_ARRAY_LEN(c); i++) {
		struct ike_sk_keys tx, rx;
		struct ike_buf b;
		struct ike_msg m;
		const char *why;
		struct ike_header h = {
		    .exchange = IKE_CREATE_CHILD_SA, .flags = IKE_FLAG_INITIATOR, .msg_id = 2};
		assert_int_equal(
		    ike_sk_keys_init(&tx, c[i].encr, c[i].bits, c[i].integ, ek, ak, true), 0);
		assert_int_equal(
		    ike_sk_keys_init(&rx, c[i].encr, c[i].bits, c[i].integ, ek, ak, false), 0);
		for (size_t inner = 0; inner < 20; inner++) {
			/* Inner lengths 0..19 bytes of nonce data exercise every CBC padding. */
			ike_buf_init(&b, mem, sizeof(mem));
			ike_put_header(&b, &h);
			ike_begin_sk(&b, &tx);
			ike_put_nonce(&b, nonce, 16 + inner);
			ike_put_notify(&b, IKE_PROTO_ESP, (const uint8_t *)"\1\2\3\4", 4,
				       IKE_N_REKEY_SA, NULL, 0);
			assert_int_equal(ike_seal_sk(&b, &tx), 0);
			assert_true(b.len <= IKE_HDR_LEN + 4 + 16 + 4 + 4 + 8 + 16 + inner +
						 ike_sk_overhead(&tx));
			assert_int_equal(ike_parse(mem, b.len, &m, &why), 0);
			assert_int_equal(ike_open_sk(&m, mem, &rx, &why), 0);
			assert_int_equal(m.npl, 2);
			assert_int_equal(m.pl[0].type, IKE_PL_NONCE);
			assert_int_equal(m.pl[0].len, 16 + inner);
			assert_memory_equal(m.pl[0].body, nonce, 16 + inner);
			assert_non_null(ike_find_notify(&m, IKE_N_REKEY_SA));
		}
		/* Tampered ciphertext. */
		ike_buf_init(&b, mem, sizeof(mem));
		ike_put_header(&b, &h);
		ike_begin_sk(&b, &tx);
		ike_put_nonce(&b, nonce, 16);
		assert_int_equal(ike_seal_sk(&b, &tx), 0);
		mem[IKE_HDR_LEN + 4 + 16 + 2] ^= 0x40;
		assert_int_equal(ike_parse(mem, b.len, &m, &why), 0);
		assert_int_equal(ike_open_sk(&m, mem, &rx, &why), SG_EAUTH);
		ike_sk_keys_wipe(&tx);
		ike_sk_keys_wipe(&rx);
	}
	struct ike_sk_keys k;
	assert_int_equal(ike_sk_keys_init(&k, IKE_ENCR_AES_GCM_16, 192, 0, ek, ak, true),
			 SG_EINVAL);
	assert_int_equal(ike_sk_keys_init(&k, IKE_ENCR_AES_CBC, 128, 0, ek, ak, true), SG_EINVAL);
	assert_int_equal(ike_sk_keys_init(&k, 3, 128, 12, ek, ak, true), SG_EINVAL);
}

/* An SA payload by hand (RFC 7296 3.3): one IKE proposal, ENCR_AES_GCM_16 with Key Length 256,
 * PRF_HMAC_SHA2_384, DH group 20; then a second, ESP-like one is refused for the wrong SPI size. */
/* RFC 7383: a message cut into fragments, each opened on its own, the contents joined give the
 * inner chain back; the fragment numbers are covered by the ICV; every cipher family. */
static void test_fragments(void **state)
{
	static const struct {
		uint16_t encr, bits, integ;
	} c[] = {
	    {IKE_ENCR_AES_GCM_16, 256, 0},
	    {IKE_ENCR_CHACHA20_POLY1305, 256, 0},
	    {IKE_ENCR_AES_CBC, 128, SG_INTEG_HMAC_SHA2_256_128},
	};
	uint8_t ek[36], ak[64], data[1500];
	static uint8_t mem[4096], frags[8192], joined[4096];
	(void)state;
	fill_seq(ek, sizeof(ek), 1);
	fill_seq(ak, sizeof(ak), 100);
	fill_seq(data, sizeof(data), 9);
	for (size_t i = 0; i < SG_ARRAY_LEN(c); i++) {
		struct ike_sk_keys tx, rx;
		struct ike_buf b;
		const char *why;
		struct ike_header h = {
		    .exchange = IKE_AUTH, .flags = IKE_FLAG_INITIATOR, .msg_id = 1};
		memset(h.spi_i, 0x11, 8);
		memset(h.spi_r, 0x22, 8);
		assert_int_equal(
		    ike_sk_keys_init(&tx, c[i].encr, c[i].bits, c[i].integ, ek, ak, true), 0);
		assert_int_equal(
		    ike_sk_keys_init(&rx, c[i].encr, c[i].bits, c[i].integ, ek, ak, false), 0);
		ike_buf_init(&b, mem, sizeof(mem));
		ike_put_header(&b, &h);
		ike_begin_sk(&b, &tx);
		ike_put_cert(&b, IKE_PL_CERT, 4, data, sizeof(data));
		ike_put_nonce(&b, data, 32);
		size_t flen;
		unsigned n;
		assert_int_equal(ike_fragment_sk(&b, &tx, 512, 32, frags, sizeof(frags), &flen, &n),
				 0);
		assert_int_equal(n, 4); /* 1500 + 36 + 8 bytes of inner payloads, < 470 each */
		/* Too many for the limit, or fragments too small to hold anything. */
		ike_buf_init(&b, mem, sizeof(mem));
		ike_put_header(&b, &h);
		ike_begin_sk(&b, &tx);
		ike_put_cert(&b, IKE_PL_CERT, 4, data, sizeof(data));
		size_t l2;
		unsigned n2;
		assert_int_equal(
		    ike_fragment_sk(&b, &tx, 512, 3, frags + flen, sizeof(frags) - flen, &l2, &n2),
		    SG_ERANGE);
		size_t at = 0, jl = 0;
		uint8_t first = 0;
		for (unsigned k = 1; k <= n; k++) {
			size_t len = (size_t)frags[at] << 24 | (size_t)frags[at + 1] << 16 |
				     (size_t)frags[at + 2] << 8 | frags[at + 3];
			uint8_t *f = frags + at + 4;
			at += 4 + len;
			assert_true(len <= 512);
			struct ike_msg m;
			struct ike_skf skf;
			assert_int_equal(ike_parse(f, len, &m, &why), 0);
			assert_int_equal(m.hdr.msg_id, 1);
			assert_int_equal(m.npl, 1);
			assert_int_equal(m.pl[0].type, IKE_PL_SKF);
			assert_int_equal(ike_parse_skf(m.pl[0].body, m.pl[0].len, &skf, &why), 0);
			assert_int_equal(skf.number, k);
			assert_int_equal(skf.total, n);
			if (k == 2) {
				/* Renumbered: the ICV covers the SKF header (2.5). */
				uint8_t copy[600];
				memcpy(copy, f, len);
				copy[IKE_HDR_LEN + 5] = 3;
				struct ike_msg m2;
				const uint8_t *ct;
				size_t cl;
				uint8_t fi;
				assert_int_equal(ike_parse(copy, len, &m2, &why), 0);
				assert_int_equal(ike_open_skf(&m2, copy, &rx, &ct, &cl, &fi, &why),
						 SG_EAUTH);
			}
			const uint8_t *content;
			size_t cl;
			uint8_t fi;
			assert_int_equal(ike_open_skf(&m, f, &rx, &content, &cl, &fi, &why), 0);
			if (k == 1)
				first = fi;
			else
				assert_int_equal(fi, IKE_PL_NONE);
			memcpy(joined + jl, content, cl);
			jl += cl;
		}
		assert_int_equal(at, flen);
		assert_int_equal(first, IKE_PL_CERT);
		struct ike_msg m = {.npl = 0};
		assert_int_equal(ike_parse_chain(&m, first, joined, jl, 0, &why), 0);
		assert_int_equal(m.npl, 2);
		assert_int_equal(m.pl[0].type, IKE_PL_CERT);
		assert_int_equal(m.pl[0].len, 1 + sizeof(data));
		assert_memory_equal(m.pl[0].body + 1, data, sizeof(data));
		assert_int_equal(m.pl[1].type, IKE_PL_NONCE);
		ike_sk_keys_wipe(&tx);
		ike_sk_keys_wipe(&rx);
	}
}

static const uint8_t sa_body[] = {
    0x00, 0x00, 0x00, 0x24,			    /* last proposal, length 36 */
    0x01, 0x01, 0x00, 0x03,			    /* #1, IKE, SPI size 0, 3 transforms */
    0x03, 0x00, 0x00, 0x0c, 0x01, 0x00, 0x00, 0x14, /* ENCR 20 */
    0x80, 0x0e, 0x01, 0x00,			    /* Key Length 256 */
    0x03, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x06, /* PRF 6 */
    0x00, 0x00, 0x00, 0x08, 0x04, 0x00, 0x00, 0x14, /* KE 20 */
};

static void test_sa_payload(void **state)
{
	struct ike_sa_payload sa, sa2;
	const char *why = NULL;
	uint8_t mem[256];
	struct ike_buf b;
	(void)state;
	assert_int_equal(ike_parse_sa(sa_body, sizeof(sa_body), &sa, &why), 0);
	assert_int_equal(sa.nprops, 1);
	assert_int_equal(sa.props[0].protocol, IKE_PROTO_IKE);
	assert_int_equal(sa.props[0].ntrans, 3);
	assert_int_equal(sa.props[0].trans[0].type, IKE_TRANS_ENCR);
	assert_int_equal(sa.props[0].trans[0].id, IKE_ENCR_AES_GCM_16);
	assert_int_equal(sa.props[0].trans[0].keylen, 256);
	assert_int_equal(sa.props[0].trans[1].id, SG_PRF_HMAC_SHA2_384);
	assert_int_equal(sa.props[0].trans[2].type, IKE_TRANS_KE);
	assert_int_equal(sa.props[0].trans[2].id, SG_KE_ECP_384);
	/* The builder writes the same bytes back (after a 4-byte generic header). */
	ike_buf_init(&b, mem, sizeof(mem));
	ike_put_sa(&b, &sa);
	assert_int_equal(b.err, 0);
	assert_int_equal(b.len, 4 + sizeof(sa_body));
	assert_int_equal(mem[3], 4 + sizeof(sa_body));
	assert_memory_equal(mem + 4, sa_body, sizeof(sa_body));
	/* Two proposals, with an ESP SPI, round trip through build and parse. */
	sa.nprops = 2;
	sa.props[1] = sa.props[0];
	sa.props[1].num = 2;
	sa.props[1].protocol = IKE_PROTO_ESP;
	sa.props[1].spi_len = 4;
	memcpy(sa.props[1].spi, "\xc1\xc2\xc3\xc4", 4);
	ike_buf_init(&b, mem, sizeof(mem));
	ike_put_sa(&b, &sa);
	assert_int_equal(ike_parse_sa(mem + 4, b.len - 4, &sa2, &why), 0);
	assert_int_equal(sa2.nprops, 2);
	assert_int_equal(sa2.props[1].spi_len, 4);
	assert_memory_equal(sa2.props[1].spi, "\xc1\xc2\xc3\xc4", 4);
	assert_int_equal(sa2.props[1].trans[0].keylen, 256);
}

struct bad {
	const char *name;
	uint8_t b[48];
	size_t len;
	const char *why;
};

static void test_payload_rejects(void **state)
{
	uint8_t sa_mut[sizeof(sa_body)];
	struct ike_sa_payload sa;
	const char *why;
	(void)state;
#define SA_BAD(mutate, expect)                                                                     \
	do {                                                                                       \
		memcpy(sa_mut, sa_body, sizeof(sa_mut));                                           \
		mutate;                                                                            \
		why = NULL;                                                                        \
		assert_int_equal(ike_parse_sa(sa_mut, sizeof(sa_mut), &sa, &why), SG_EPARSE);      \
		assert_string_equal(why, expect);                                                  \
	} while (0)
	SA_BAD(sa_mut[0] = 1, "SA: proposal's last/more field is neither 0 nor 2");
	SA_BAD(sa_mut[3] = 0x25, "SA: proposal length runs past the payload");
	SA_BAD(sa_mut[3] = 0x23, "SA: transform header runs past the proposal");
	SA_BAD(sa_mut[11] = 0x0d, "SA: transform attribute runs past the transform");
	SA_BAD(sa_mut[4] = 2, "SA: proposals not numbered 1, 2, ... in order");
	SA_BAD(sa_mut[5] = 9, "SA: unknown protocol");
	SA_BAD(sa_mut[6] = 4, "SA: SPI size does not fit the protocol");
	SA_BAD(sa_mut[7] = 0, "SA: proposal without transforms");
	SA_BAD(sa_mut[7] = 2, "SA: transform's last/more field disagrees with the count");
	SA_BAD(sa_mut[16] = 0x00,
	       "SA: transform attribute in TLV format (only Key Length, TV, is known)");
	SA_BAD(sa_mut[17] = 0x0f, "SA: unknown transform attribute");
	SA_BAD((sa_mut[18] = 0, sa_mut[19] = 0), "SA: Key Length attribute of 0");
	SA_BAD(sa_mut[24] = 9, "SA: unknown transform type");
	assert_int_equal(ike_parse_sa(sa_body, 0, &sa, &why), SG_EPARSE);
	assert_int_equal(ike_parse_sa(sa_body, 7, &sa, &why), SG_EPARSE);
	assert_string_equal(why, "SA: proposal header runs past the payload");

	struct ike_ts_payload ts;
	static const uint8_t ts_ok[] = {1,    0,    0,	0, 7, 6, 0,  16, 0,   0,
					0xff, 0xff, 10, 1, 0, 0, 10, 1,	 255, 255};
	assert_int_equal(ike_parse_ts(ts_ok, sizeof(ts_ok), &ts, &why), 0);
	assert_int_equal(ts.n, 1);
	assert_int_equal(ts.ts[0].proto, 6);
	assert_int_equal(ts.ts[0].port_end, 65535);
	assert_int_equal(ts.ts[0].end[2], 255);
	static const struct bad tsb[] = {
	    {"none", {0, 0, 0, 0}, 4, "TS: no traffic selector"},
	    {"17", {17, 0, 0, 0}, 4, "TS: more than 16 traffic selectors"},
	    {"short", {1, 0, 0, 0, 7, 0, 0}, 7, "TS: selector header runs past the payload"},
	    {"type", {1, 0, 0, 0, 9, 0, 0, 16, 0, 0, 0, 0}, 12, "TS: unknown selector type"},
	    {"len",
	     {1, 0, 0, 0, 7, 0, 0, 40, 0, 0, 0, 0},
	     12,
	     "TS: selector length does not fit its type"},
	    {"past",
	     {1, 0, 0, 0, 7, 0, 0, 16, 0, 0, 0, 0, 1, 2},
	     14,
	     "TS: selector runs past the payload"},
	    {"ports",
	     {1, 0, 0, 0, 7, 0, 0, 16, 0, 9, 0, 8, 1, 1, 1, 1, 1, 1, 1, 1},
	     20,
	     "TS: start port above end port"},
	    {"addrs",
	     {1, 0, 0, 0, 7, 0, 0, 16, 0, 0, 0, 8, 1, 1, 1, 2, 1, 1, 1, 1},
	     20,
	     "TS: start address above end address"},
	    {"trailing",
	     {1, 0, 0, 0, 7, 0, 0, 16, 0, 0, 0, 8, 1, 1, 1, 1, 1, 1, 1, 1, 0},
	     21,
	     "TS: bytes after the last selector"},
	};
	for (size_t i = 0; i < SG_ARRAY_LEN(tsb); i++) {
		why = NULL;
		if (ike_parse_ts(tsb[i].b, tsb[i].len, &ts, &why) != SG_EPARSE || !why ||
		    strcmp(why, tsb[i].why) != 0)
			fail_msg("TS %s: got \"%s\"", tsb[i].name, why ? why : "(null)");
	}
	/* The opaque port range (65535..0) is allowed (3.13.1). */
	static const uint8_t ts_opaque[] = {1, 0, 0, 0, 7, 17, 0, 16, 0xff, 0xff,
					    0, 0, 1, 1, 1, 1,  1, 1,  1,    1};
	assert_int_equal(ike_parse_ts(ts_opaque, sizeof(ts_opaque), &ts, &why), 0);

	struct ike_notify n;
	static const uint8_t n_spi[] = {3, 4, 0x40, 0x09, 1, 2, 3, 4};
	assert_int_equal(ike_parse_notify(n_spi, sizeof(n_spi), &n, &why), 0);
	assert_int_equal(n.type, IKE_N_REKEY_SA);
	assert_int_equal(n.len, 0);
	assert_int_equal(ike_parse_notify(n_spi, 7, &n, &why), SG_EPARSE);
	assert_string_equal(why, "Notify: SPI runs past the payload");
	static const uint8_t n_spi3[] = {3, 3, 0, 1, 1, 2, 3};
	assert_int_equal(ike_parse_notify(n_spi3, sizeof(n_spi3), &n, &why), SG_EPARSE);

	struct ike_delete d;
	static const uint8_t del_ike[] = {1, 0, 0, 0};
	static const uint8_t del_esp[] = {3, 4, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8};
	assert_int_equal(ike_parse_delete(del_ike, sizeof(del_ike), &d, &why), 0);
	assert_int_equal(ike_parse_delete(del_esp, sizeof(del_esp), &d, &why), 0);
	assert_int_equal(d.nspi, 2);
	assert_int_equal(ike_parse_delete(del_esp, 11, &d, &why), SG_EPARSE);
	assert_string_equal(why, "Delete: length does not match the number of SPIs");
	static const uint8_t del_ike_spi[] = {1, 8, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8};
	assert_int_equal(ike_parse_delete(del_ike_spi, sizeof(del_ike_spi), &d, &why), SG_EPARSE);

	struct ike_id id;
	static const uint8_t id_v4[] = {1, 0, 0, 0, 192, 0, 2, 1};
	static const uint8_t id_fqdn[] = {2, 0, 0, 0, 'a', '.', 'b'};
	static const uint8_t id_bad[] = {2, 0, 0, 0, 'a', ' ', 'b'};
	static const uint8_t id_v6short[] = {5, 0, 0, 0, 1, 2, 3, 4};
	assert_int_equal(ike_parse_id(id_v4, sizeof(id_v4), &id, &why), 0);
	assert_int_equal(id.len, 4);
	assert_int_equal(ike_parse_id(id_fqdn, sizeof(id_fqdn), &id, &why), 0);
	assert_int_equal(ike_parse_id(id_bad, sizeof(id_bad), &id, &why), SG_EPARSE);
	assert_int_equal(ike_parse_id(id_v6short, sizeof(id_v6short), &id, &why), SG_EPARSE);
	assert_string_equal(why, "ID: an IPv6 address is not 16 bytes");

	assert_int_equal(ike_parse_nonce(sa_body, 15, &why), SG_EPARSE);
	assert_int_equal(ike_parse_nonce(sa_body, 16, &why), 0);

	struct ike_skf f;
	static const uint8_t skf0[] = {0, 0, 0, 2};
	static const uint8_t skf3of2[] = {0, 3, 0, 2};
	static const uint8_t skf1of2[] = {0, 1, 0, 2, 9};
	assert_int_equal(ike_parse_skf(skf0, 4, &f, &why), SG_EPARSE);
	assert_int_equal(ike_parse_skf(skf3of2, 4, &f, &why), SG_EPARSE);
	assert_int_equal(ike_parse_skf(skf1of2, 5, &f, &why), 0);
	assert_int_equal(f.enc_len, 1);

	struct ike_cert c;
	static const uint8_t creq_bad[] = {4, 1, 2, 3};
	assert_int_equal(ike_parse_certreq(creq_bad, sizeof(creq_bad), &c, &why), SG_EPARSE);

	struct ike_cp cp;
	static const uint8_t cp_ok[] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0};
	static const uint8_t cp_bad[] = {1, 0, 0, 0, 0, 1, 0, 9, 1};
	assert_int_equal(ike_parse_cp(cp_ok, sizeof(cp_ok), &cp, &why), 0);
	assert_int_equal(cp.nattr, 2);
	assert_int_equal(ike_parse_cp(cp_bad, sizeof(cp_bad), &cp, &why), SG_EPARSE);
	struct ike_ke ke;
	static const uint8_t ke_ok[] = {0, 20, 0, 0, 1};
	assert_int_equal(ike_parse_ke(ke_ok, sizeof(ke_ok), &ke, &why), 0);
	assert_int_equal(ke.group, 20);
	assert_int_equal(ike_parse_ke(ke_ok, 4, &ke, &why), SG_EPARSE);
}

/* A whole IKE_SA_INIT request: build, parse, and the message-level rejections. */
static void test_message(void **state)
{
	uint8_t mem[1024], ke[96], nonce[32];
	struct ike_buf b;
	struct ike_msg m;
	struct ike_sa_payload sa;
	const char *why = NULL;
	struct ike_header h = {.exchange = IKE_SA_INIT, .flags = IKE_FLAG_INITIATOR};
	(void)state;
	fill_seq(h.spi_i, 8, 1);
	fill_seq(ke, sizeof(ke), 3);
	fill_seq(nonce, sizeof(nonce), 9);
	assert_int_equal(ike_parse_sa(sa_body, sizeof(sa_body), &sa, &why), 0);
	ike_buf_init(&b, mem, sizeof(mem));
	ike_put_header(&b, &h);
	ike_put_sa(&b, &sa);
	ike_put_ke(&b, SG_KE_ECP_384, ke, sizeof(ke));
	ike_put_nonce(&b, nonce, sizeof(nonce));
	ike_put_notify(&b, 0, NULL, 0, IKE_N_NAT_DETECTION_SOURCE_IP, nonce, 20);
	ike_put_notify(&b, 0, NULL, 0, IKE_N_NAT_DETECTION_DESTINATION_IP, nonce, 20);
	assert_int_equal(ike_finish(&b), 0);
	assert_int_equal(ike_parse(mem, b.len, &m, &why), 0);
	assert_int_equal(m.hdr.length, b.len);
	assert_int_equal(m.hdr.flags, IKE_FLAG_INITIATOR);
	assert_int_equal(m.hdr.next, IKE_PL_SA);
	assert_int_equal(m.npl, 5);
	const struct ike_payload *p = ike_find(&m, IKE_PL_KE);
	struct ike_ke k;
	assert_int_equal(ike_parse_ke(p->body, p->len, &k, &why), 0);
	assert_int_equal(k.group, SG_KE_ECP_384);
	assert_int_equal(k.len, 96);
	assert_non_null(ike_find_nth(&m, IKE_PL_NOTIFY, 1));
	assert_null(ike_find_nth(&m, IKE_PL_NOTIFY, 2));
	assert_non_null(ike_find_notify(&m, IKE_N_NAT_DETECTION_DESTINATION_IP));
	assert_null(ike_find_notify(&m, IKE_N_COOKIE));

	/* A datagram longer than the header's length is fine (the rest is ignored, as for a
	 * UDP-encapsulated stream); shorter is not. */
	assert_int_equal(ike_parse(mem, b.len + 3, &m, &why), 0);
	assert_int_equal(ike_parse(mem, b.len - 1, &m, &why), SG_EPARSE);
	assert_string_equal(why, "IKE header: length beyond the datagram");
	assert_int_equal(ike_parse(mem, 27, &m, &why), SG_EPARSE);
	mem[17] = 0x10;
	assert_int_equal(ike_parse(mem, b.len, &m, &why), SG_EPARSE);
	assert_string_equal(why, "IKE header: major version is not 2");
	mem[17] = 0x21; /* minor versions are ignored */
	assert_int_equal(ike_parse(mem, b.len, &m, &why), 0);
	/* A payload length running past the message, and one below 4. */
	mem[IKE_HDR_LEN + 2] = 0xff;
	assert_int_equal(ike_parse(mem, b.len, &m, &why), SG_EPARSE);
	assert_string_equal(why, "payload length runs past the end");
	mem[IKE_HDR_LEN + 2] = 0;
	mem[IKE_HDR_LEN + 3] = 3;
	assert_int_equal(ike_parse(mem, b.len, &m, &why), SG_EPARSE);
	assert_string_equal(why, "payload length below 4");
	/* A full buffer is reported, not overrun. */
	uint8_t small[40];
	ike_buf_init(&b, small, sizeof(small));
	ike_put_header(&b, &h);
	ike_put_nonce(&b, nonce, sizeof(nonce));
	assert_int_equal(ike_finish(&b), SG_EFULL);
	/* 49 payloads: more than IKE_MAX_PAYLOADS. */
	ike_buf_init(&b, mem, sizeof(mem));
	ike_put_header(&b, &h);
	for (int i = 0; i < 49; i++)
		ike_put_notify(&b, 0, NULL, 0, IKE_N_INITIAL_CONTACT, NULL, 0);
	assert_int_equal(ike_finish(&b), 0);
	assert_int_equal(ike_parse(mem, b.len, &m, &why), SG_EPARSE);
	assert_string_equal(why, "more than 48 payloads");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sk_rfc7634),	    cmocka_unit_test(test_sk_all_ciphers),
	    cmocka_unit_test(test_fragments),	    cmocka_unit_test(test_sa_payload),
	    cmocka_unit_test(test_payload_rejects), cmocka_unit_test(test_message),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
