/* Known-answer tests for the classic (WireGuard) suite and the crypto utilities.
 * Every vector names its source; values computed here with python3 say exactly how. */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

#include "common/bytes.h"
#include "crypto/crypto.h"
#include "crypto/ipsec.h"

/* ---- helpers ------------------------------------------------------------------------------- */

/* A small deterministic generator for the randomised comparisons (xorshift64*). */
static uint64_t test_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

static int setup(void **state)
{
	(void)state;
	return sg_crypto_init();
}

/* ---- utilities ----------------------------------------------------------------------------- */

static void test_init_and_version(void **state)
{
	(void)state;
	assert_int_equal(sg_crypto_init(), 0);
	assert_int_equal(sg_crypto_init(), 0); /* idempotent */
	assert_non_null(strstr(sg_crypto_library_version(), "OpenSSL 3"));
}

static void test_memeq_is_zero(void **state)
{
	uint8_t a[33], b[33];

	(void)state;
	fill_seq(a, sizeof(a), 7);
	memcpy(b, a, sizeof(b));
	assert_true(sg_memeq(a, b, sizeof(a)));
	assert_true(sg_memeq(a, b, 0));
	b[32] ^= 0x80;
	assert_false(sg_memeq(a, b, sizeof(a)));
	assert_true(sg_memeq(a, b, 32));

	memset(a, 0, sizeof(a));
	assert_true(sg_is_zero(a, sizeof(a)));
	assert_true(sg_is_zero(a, 0));
	for (size_t i = 0; i < sizeof(a); i++) {
		a[i] = 1;
		assert_false(sg_is_zero(a, sizeof(a)));
		a[i] = 0;
	}
	a[5] = 0x80;
	assert_false(sg_is_zero(a, sizeof(a)));
	assert_true(sg_is_zero(a, 5));

	fill_seq(b, sizeof(b), 1);
	sg_memzero(b, sizeof(b));
	assert_true(sg_is_zero(b, sizeof(b)));
	sg_memzero(NULL, 0);
}

static void test_random(void **state)
{
	uint8_t a[64], b[64];
	bool differs = false;

	(void)state;
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	assert_true(sg_random_bytes(a, sizeof(a)));
	assert_true(sg_random_bytes(b, sizeof(b)));
	/* 2^-512 chance of a false failure. */
	assert_false(sg_is_zero(a, sizeof(a)));
	assert_false(sg_memeq(a, b, sizeof(a)));
	assert_true(sg_random_bytes(a, 0));
	for (int i = 0; i < 8; i++)
		differs |= sg_random_u64() != sg_random_u64();
	assert_true(differs);
	differs = false;
	for (int i = 0; i < 8; i++)
		differs |= sg_random_u32() != sg_random_u32();
	assert_true(differs);
}

struct counter_rng {
	uint8_t next;
	size_t calls;
	bool fail;
};

/* A reproducible "RNG": bytes counting up from next. */
static bool counter_random(void *ctx, void *buf, size_t n)
{
	struct counter_rng *r = ctx;
	uint8_t *p = buf;

	r->calls++;
	if (r->fail)
		return false;
	for (size_t i = 0; i < n; i++)
		p[i] = r->next++;
	return true;
}

static void test_random_hook(void **state)
{
	struct counter_rng rng = {.next = 0x10};
	uint8_t buf[4], priv[32], pub[32], expect_pub[32];

	(void)state;
	sg_crypto_set_random(counter_random, &rng);
	assert_true(sg_random_bytes(buf, sizeof(buf)));
	assert_memory_equal(buf, "\x10\x11\x12\x13", 4);
	assert_int_equal(sg_random_u32(), 0x17161514); /* little-endian host */
	assert_int_equal(rng.calls, 2);

	/* Key generation goes through the hook: priv is the clamped counter bytes. */
	rng.next = 0;
	assert_true(sg_x25519_generate(priv, pub));
	assert_int_equal(priv[0], 0);
	assert_int_equal(priv[31], (31 & 127) | 64);
	for (int i = 1; i < 31; i++)
		assert_int_equal(priv[i], i);
	assert_true(sg_x25519_public(expect_pub, priv));
	assert_memory_equal(pub, expect_pub, 32);

	rng.fail = true;
	assert_false(sg_random_bytes(buf, sizeof(buf)));
	memset(priv, 0xaa, sizeof(priv));
	assert_false(sg_x25519_generate(priv, pub));
	assert_true(sg_is_zero(priv, sizeof(priv)));

	sg_crypto_set_random(NULL, NULL);
	rng.calls = 0;
	assert_true(sg_random_bytes(buf, sizeof(buf)));
	assert_int_equal(rng.calls, 0);
}

static void test_random_pool_fork(void **state)
{
	/* sg_random_u64 and X25519 key generation draw from a per-thread pool (evp.c): a forked
	 * child must not hand out the bytes its parent will (the pool's page is wiped on fork). */
	uint64_t mine[8], theirs[8];
	uint8_t priv[32], pub[32], cpriv[32];
	int fds[2];

	(void)state;
	(void)sg_random_u64(); /* the pool is full now */
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (int i = 0; i < 8; i++)
			theirs[i] = sg_random_u64();
		bool ok = sg_x25519_generate(cpriv, pub);
		ssize_t w = ok ? write(fds[1], theirs, sizeof(theirs)) : -1;
		w = w == (ssize_t)sizeof(theirs) ? write(fds[1], cpriv, sizeof(cpriv)) : -1;
		_exit(w == (ssize_t)sizeof(cpriv) ? 0 : 1);
	}
	for (int i = 0; i < 8; i++)
		mine[i] = sg_random_u64();
	assert_true(sg_x25519_generate(priv, pub));
	assert_int_equal(read(fds[0], theirs, sizeof(theirs)), sizeof(theirs));
	assert_int_equal(read(fds[0], cpriv, sizeof(cpriv)), sizeof(cpriv));
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(fds[0]);
	close(fds[1]);
	assert_memory_not_equal(mine, theirs, sizeof(mine));
	assert_memory_not_equal(priv, cpriv, sizeof(priv));
	/* Draws past the pool's 512 bytes go on without a repeat of the first. */
	uint64_t first = sg_random_u64(), v = 0;
	for (int i = 0; i < 200; i++) {
		v = sg_random_u64();
		assert_true(v != first);
	}
	sg_memzero(priv, sizeof(priv));
	sg_memzero(cpriv, sizeof(cpriv));
}

/* ---- X25519 -------------------------------------------------------------------------------- */

static void test_x25519_rfc7748_5_2(void **state)
{
	/* RFC 7748 section 5.2, the two single-step test vectors (scalar, u, output). */
	static const char *const vec[][3] = {
	    {"a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
	     "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
	     "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"},
	    {"4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
	     "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
	     "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		uint8_t k[32], u[32], expect[32], out[32];

		HEX(k, vec[i][0]);
		HEX(u, vec[i][1]);
		HEX(expect, vec[i][2]);
		assert_true(sg_x25519(out, k, u));
		assert_memory_equal(out, expect, 32);
	}
}

static void test_x25519_rfc7748_6_1(void **state)
{
	/* RFC 7748 section 6.1, Alice and Bob. */
	uint8_t a_priv[32], a_pub[32], b_priv[32], b_pub[32], shared[32];
	uint8_t pub[32], out[32];

	(void)state;
	HEX(a_priv, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
	HEX(a_pub, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
	HEX(b_priv, "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
	HEX(b_pub, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
	HEX(shared, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");

	assert_true(sg_x25519_public(pub, a_priv));
	assert_memory_equal(pub, a_pub, 32);
	assert_true(sg_x25519_public(pub, b_priv));
	assert_memory_equal(pub, b_pub, 32);
	assert_true(sg_x25519(out, a_priv, b_pub));
	assert_memory_equal(out, shared, 32);
	assert_true(sg_x25519(out, b_priv, a_pub));
	assert_memory_equal(out, shared, 32);
}

static void test_x25519_low_order_rejected(void **state)
{
	/* Points whose X25519 output is all zeros for every scalar: 0, 1, the two points of
	 * order 8, and p-1, p, p+1 (https://cr.yp.to/ecdh.html#validate). WireGuard must refuse
	 * the resulting all-zero secret. */
	static const char *const low_order[] = {
	    "0000000000000000000000000000000000000000000000000000000000000000",
	    "0100000000000000000000000000000000000000000000000000000000000000",
	    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
	    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
	    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	};
	uint8_t priv[32], pub[32], out[32];

	(void)state;
	HEX(priv, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
	for (size_t i = 0; i < sizeof(low_order) / sizeof(low_order[0]); i++) {
		HEX(pub, low_order[i]);
		memset(out, 0xaa, sizeof(out));
		assert_false(sg_x25519(out, priv, pub));
		assert_true(sg_is_zero(out, sizeof(out)));
	}
}

static void test_x25519_generate_agree(void **state)
{
	uint8_t a[32], ap[32], b[32], bp[32], s1[32], s2[32], c[32];

	(void)state;
	assert_true(sg_x25519_generate(a, ap));
	assert_true(sg_x25519_generate(b, bp));
	assert_false(sg_memeq(a, b, 32));
	/* Generated keys are clamped. */
	memcpy(c, a, 32);
	sg_x25519_clamp(c);
	assert_memory_equal(c, a, 32);
	assert_true(sg_x25519(s1, a, bp));
	assert_true(sg_x25519(s2, b, ap));
	assert_memory_equal(s1, s2, 32);

	/* RFC 7748 section 5: clamping clears bits 0..2 and 255, sets bit 254. */
	memset(c, 0xff, 32);
	sg_x25519_clamp(c);
	assert_int_equal(c[0], 0xf8);
	assert_int_equal(c[31], 0x7f);
	memset(c, 0, 32);
	sg_x25519_clamp(c);
	assert_int_equal(c[31], 0x40);
}

static void test_x25519_many_keys(void **state)
{
	/* More private keys than a thread keeps ready (evp.c X25519_CACHE, 4), each with every
	 * other's public key, twice in different orders, with RFC 7748 section 6.1 in between:
	 * every DH must agree with its mirror and with its first result, whatever the cache
	 * evicted and whichever peer the thread's reused peer key held last. */
	enum { K = 7 };
	uint8_t priv[K][32], pub[K][32], first[K][K][32], out[32], again[32];
	uint8_t a_priv[32], b_pub[32], shared[32];

	(void)state;
	HEX(a_priv, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
	HEX(b_pub, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
	HEX(shared, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
	for (int i = 0; i < K; i++)
		assert_true(sg_x25519_generate(priv[i], pub[i]));
	for (int i = 0; i < K; i++) {
		for (int j = 0; j < K; j++) {
			if (i == j)
				continue;
			assert_true(sg_x25519(first[i][j], priv[i], pub[j]));
			assert_true(sg_x25519(out, a_priv, b_pub));
			assert_memory_equal(out, shared, 32);
		}
	}
	for (int j = K - 1; j >= 0; j--) {
		for (int i = 0; i < K; i++) {
			if (i == j)
				continue;
			assert_true(sg_x25519(again, priv[i], pub[j]));
			assert_memory_equal(again, first[i][j], 32);
			assert_memory_equal(again, first[j][i], 32);
		}
		/* The public key of an evicted key, computed again, is the one generated. */
		assert_true(sg_x25519_public(out, priv[j]));
		assert_memory_equal(out, pub[j], 32);
		sg_x25519_forget(priv[j]);
		assert_true(sg_x25519_public(out, priv[j]));
		assert_memory_equal(out, pub[j], 32);
	}
}

/* ---- ChaCha20-Poly1305 --------------------------------------------------------------------- */

/* RFC 8439 section 2.8.2. */
static const char sunscreen[] = "Ladies and Gentlemen of the class of '99: If I could offer you "
				"only one tip for the future, sunscreen would be it.";
#define RFC8439_2_8_2_KEY   "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
#define RFC8439_2_8_2_NONCE "070000004041424344454647"
#define RFC8439_2_8_2_AAD   "50515253c0c1c2c3c4c5c6c7"
#define RFC8439_2_8_2_CT                                                                           \
	"d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"                         \
	"3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"                         \
	"92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"                         \
	"3ff4def08e4b7a9de576d26586cec64b6116"
#define RFC8439_2_8_2_TAG "1ae10b594f09e26a7e902ecbd0600691"

static void test_chacha_rfc8439_2_8_2(void **state)
{
	uint8_t key[32], nonce[12], aad[12], expect[114 + 16], out[114 + 16], buf[114 + 16];
	const size_t len = sizeof(sunscreen) - 1;

	(void)state;
	assert_int_equal(len, 114);
	HEX(key, RFC8439_2_8_2_KEY);
	HEX(nonce, RFC8439_2_8_2_NONCE);
	HEX(aad, RFC8439_2_8_2_AAD);
	assert_int_equal(test_unhex_cap(expect, sizeof(expect), RFC8439_2_8_2_CT RFC8439_2_8_2_TAG),
			 sizeof(expect));

	assert_true(sg_chacha20poly1305_encrypt(out, (const uint8_t *)sunscreen, len, aad,
						sizeof(aad), nonce, key));
	assert_memory_equal(out, expect, sizeof(expect));
	assert_true(
	    sg_chacha20poly1305_decrypt(buf, out, sizeof(out), aad, sizeof(aad), nonce, key));
	assert_memory_equal(buf, sunscreen, len);

	/* In place both ways (dst == src). */
	memcpy(buf, sunscreen, len);
	assert_true(sg_chacha20poly1305_encrypt(buf, buf, len, aad, sizeof(aad), nonce, key));
	assert_memory_equal(buf, expect, sizeof(expect));
	assert_true(
	    sg_chacha20poly1305_decrypt(buf, buf, sizeof(buf), aad, sizeof(aad), nonce, key));
	assert_memory_equal(buf, sunscreen, len);
}

static void test_chacha_rfc8439_a_5(void **state)
{
	/* RFC 8439 appendix A.5, ChaCha20-Poly1305 AEAD decryption. */
	static const char ct_hex[] =
	    "64a0861575861af460f062c79be643bd5e805cfd345cf389f108670ac76c8cb24c6cfc18755d43eea09e"
	    "e94e382d26b0bdb7b73c321b0100d4f03b7f355894cf332f830e710b97ce98c8a84abd0b948114ad176e"
	    "008d33bd60f982b1ff37c8559797a06ef4f0ef61c186324e2b3506383606907b6a7c02b0f9f6157b53c8"
	    "67e4b9166c767b804d46a59b5216cde7a4e99040c5a40433225ee282a1b0a06c523eaf4534d7f83fa115"
	    "5b0047718cbc546a0d072b04b3564eea1b422273f548271a0bb2316053fa76991955ebd63159434ecebb"
	    "4e466dae5a1073a6727627097a1049e617d91d361094fa68f0ff77987130305beaba2eda04df997b714d"
	    "6c6f2c29a6ad5cb4022b02709b"
	    "eead9d67890cbb22392336fea1851f38"; /* tag */
	static const char pt_hex[] =
	    "496e7465726e65742d4472616674732061726520647261667420646f63756d656e74732076616c696420"
	    "666f722061206d6178696d756d206f6620736978206d6f6e74687320616e64206d617920626520757064"
	    "617465642c207265706c616365642c206f72206f62736f6c65746564206279206f7468657220646f6375"
	    "6d656e747320617420616e792074696d652e20497420697320696e617070726f70726961746520746f20"
	    "75736520496e7465726e65742d447261667473206173207265666572656e6365206d6174657269616c20"
	    "6f7220746f2063697465207468656d206f74686572207468616e206173202fe2809c776f726b20696e20"
	    "70726f67726573732e2fe2809d";
	uint8_t key[32], nonce[12], aad[12], ct[265 + 16], pt[265], out[265 + 16];

	(void)state;
	HEX(key, "1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0");
	HEX(nonce, "000000000102030405060708");
	HEX(aad, "f33388860000000000004e91");
	HEX(ct, ct_hex);
	HEX(pt, pt_hex);
	assert_true(sg_chacha20poly1305_decrypt(out, ct, sizeof(ct), aad, sizeof(aad), nonce, key));
	assert_memory_equal(out, pt, sizeof(pt));
	assert_true(sg_chacha20poly1305_encrypt(out, pt, sizeof(pt), aad, sizeof(aad), nonce, key));
	assert_memory_equal(out, ct, sizeof(ct));
}

/* Flips each kind of input in turn: the AEAD must refuse and wipe its output. */
static void test_chacha_tamper(void **state)
{
	uint8_t key[32], nonce[12], aad[12], sealed[114 + 16], bad[114 + 16], out[114];
	const size_t len = sizeof(sunscreen) - 1;

	(void)state;
	HEX(key, RFC8439_2_8_2_KEY);
	HEX(nonce, RFC8439_2_8_2_NONCE);
	HEX(aad, RFC8439_2_8_2_AAD);
	assert_true(sg_chacha20poly1305_encrypt(sealed, (const uint8_t *)sunscreen, len, aad,
						sizeof(aad), nonce, key));

	/* A flipped bit anywhere in ciphertext or tag. */
	for (size_t i = 0; i < sizeof(sealed); i += 13) {
		memcpy(bad, sealed, sizeof(bad));
		bad[i] ^= 0x01;
		memset(out, 0x5a, sizeof(out));
		assert_false(sg_chacha20poly1305_decrypt(out, bad, sizeof(bad), aad, sizeof(aad),
							 nonce, key));
		assert_true(sg_is_zero(out, sizeof(out)));
	}
	/* Wrong AD, nonce, key. */
	aad[0] ^= 1;
	memset(out, 0x5a, sizeof(out));
	assert_false(
	    sg_chacha20poly1305_decrypt(out, sealed, sizeof(sealed), aad, sizeof(aad), nonce, key));
	assert_true(sg_is_zero(out, sizeof(out)));
	aad[0] ^= 1;
	nonce[11] ^= 0x80;
	assert_false(
	    sg_chacha20poly1305_decrypt(out, sealed, sizeof(sealed), aad, sizeof(aad), nonce, key));
	nonce[11] ^= 0x80;
	key[31] ^= 0x40;
	assert_false(
	    sg_chacha20poly1305_decrypt(out, sealed, sizeof(sealed), aad, sizeof(aad), nonce, key));
	key[31] ^= 0x40;
	/* Truncated: shorter than a tag. */
	assert_false(sg_chacha20poly1305_decrypt(out, sealed, 15, NULL, 0, nonce, key));
	/* In place: the tampered buffer is wiped. */
	memcpy(bad, sealed, sizeof(bad));
	bad[0] ^= 1;
	assert_false(
	    sg_chacha20poly1305_decrypt(bad, bad, sizeof(bad), aad, sizeof(aad), nonce, key));
	assert_true(sg_is_zero(bad, len));
	/* The cached per-thread context is fine after failures. */
	assert_true(
	    sg_chacha20poly1305_decrypt(out, sealed, sizeof(sealed), aad, sizeof(aad), nonce, key));
	assert_memory_equal(out, sunscreen, len);
}

/* Round trips over many lengths, alternating keys and directions on the cached context, with
 * an empty plaintext and with no AD. */
static void test_chacha_roundtrip(void **state)
{
	uint8_t key[2][32], nonce[12], ad[40], pt[300], ct[300 + 16], out[300];

	(void)state;
	fill_seq(key[0], 32, 1);
	fill_seq(key[1], 32, 101);
	fill_seq(ad, sizeof(ad), 200);
	fill_seq(pt, sizeof(pt), 3);
	for (size_t len = 0; len <= sizeof(pt); len += 23) {
		const uint8_t *k = key[len % 2];
		size_t adlen = len % sizeof(ad);

		sg_wg_nonce(nonce, len);
		assert_true(sg_chacha20poly1305_encrypt(ct, pt, len, ad, adlen, nonce, k));
		assert_true(sg_chacha20poly1305_decrypt(out, ct, len + 16, ad, adlen, nonce, k));
		assert_memory_equal(out, pt, len);
		assert_false(sg_chacha20poly1305_decrypt(out, ct, len + 16, ad, adlen, nonce,
							 key[(len + 1) % 2]));
	}
	/* Empty plaintext and AD: the output is only the tag, and it still authenticates. */
	sg_wg_nonce(nonce, 0);
	assert_true(sg_chacha20poly1305_encrypt(ct, NULL, 0, NULL, 0, nonce, key[0]));
	assert_true(sg_chacha20poly1305_decrypt(out, ct, 16, NULL, 0, nonce, key[0]));
	ct[15] ^= 1;
	assert_false(sg_chacha20poly1305_decrypt(out, ct, 16, NULL, 0, nonce, key[0]));
}

/* ---- the classic session AEAD ---------------------------------------------------------------
 * sg_aead's classic keys (the WireGuard data path, ESP and IKE SK with ChaCha20-Poly1305) build
 * RFC 8439's AEAD from OpenSSL's ChaCha20 and Poly1305 (src/crypto/evp.c); the one-shot
 * sg_chacha20poly1305_* above use OpenSSL's ChaCha20-Poly1305 cipher. Both must agree on every
 * byte. The IPsec form of a session key (RFC 7634: nonce = salt || IV) is the one that takes AD. */

/* RFC 8439 section 2.8.2 through a session key: salt 07000000, IV 4041424344454647. */
static void test_aead_session_rfc8439_2_8_2(void **state)
{
	uint8_t keymat[36], iv[8], aad[12], expect[114 + 16], out[114 + 16], buf[114 + 16];
	const size_t len = sizeof(sunscreen) - 1;
	struct sg_aead *e, *d;

	(void)state;
	HEX(keymat, RFC8439_2_8_2_KEY "07000000");
	HEX(iv, "4041424344454647");
	HEX(aad, RFC8439_2_8_2_AAD);
	assert_int_equal(test_unhex_cap(expect, sizeof(expect), RFC8439_2_8_2_CT RFC8439_2_8_2_TAG),
			 sizeof(expect));
	e = sg_ipsec_aead_new(SG_IPSEC_CHACHA20_POLY1305, keymat, 32, true);
	d = sg_ipsec_aead_new(SG_IPSEC_CHACHA20_POLY1305, keymat, 32, false);
	assert_non_null(e);
	assert_non_null(d);
	assert_true(
	    sg_ipsec_aead_seal(e, 0, out, (const uint8_t *)sunscreen, len, aad, sizeof(aad), iv));
	assert_memory_equal(out, expect, sizeof(expect));
	assert_true(sg_ipsec_aead_open(d, 3, buf, out, sizeof(out), aad, sizeof(aad), iv));
	assert_memory_equal(buf, sunscreen, len);
	/* In place, on another lane. */
	memcpy(buf, sunscreen, len);
	assert_true(sg_ipsec_aead_seal(e, 5, buf, buf, len, aad, sizeof(aad), iv));
	assert_memory_equal(buf, expect, sizeof(expect));
	assert_true(sg_ipsec_aead_open(d, 0, buf, buf, sizeof(buf), aad, sizeof(aad), iv));
	assert_memory_equal(buf, sunscreen, len);
	/* A key of one direction does not do the other. */
	assert_false(sg_ipsec_aead_open(e, 0, buf, out, sizeof(out), aad, sizeof(aad), iv));
	assert_false(sg_ipsec_aead_seal(d, 0, buf, buf, len, aad, sizeof(aad), iv));
	sg_aead_free(e);
	sg_aead_free(d);
}

static void test_rand_fill(uint64_t *s, uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)test_rand(s);
}

/* A session open that must fail: false, and every byte of the output wiped. */
static void expect_refused(struct sg_aead *d, bool ipsec, uint8_t *out, const uint8_t *in,
			   size_t len, const uint8_t *ad, size_t adlen, const uint8_t nonce[12])
{
	memset(out, 0x5a, len - 16);
	if (ipsec)
		assert_false(sg_ipsec_aead_open(d, 1, out, in, len, ad, adlen, nonce + 4));
	else
		assert_false(sg_aead_open_lane(d, 1, out, in, len, nonce));
	assert_true(sg_is_zero(out, len - 16));
}

/* The session AEAD against OpenSSL's ChaCha20-Poly1305 for random lengths 0..2000 (and around
 * the one-pass limit, evp.c's CHAPOLY_MAX = 9216), random keys, nonces, AD and lanes, in place
 * and not: equal sealed bytes, each opens the other's output, and a flipped bit of ciphertext,
 * tag or AD is refused with the output wiped. */
static void test_aead_session_differential(void **state)
{
	enum { MAXLEN = 20000, ROUNDS = 1500 };
	static const size_t extra[] = {9151, 9152, 9215, 9216, 9217, 9280, 12345, MAXLEN};
	uint8_t *pt = malloc(MAXLEN), *ref = malloc(MAXLEN + 16), *got = malloc(MAXLEN + 16),
		*out = malloc(MAXLEN + 16), *bad = malloc(MAXLEN + 16);
	uint8_t keymat[36], nonce[12], ad[80];
	struct sg_aead *e = NULL, *d = NULL;
	uint64_t seed = 0x5eed8439;
	bool ipsec = false;

	(void)state;
	assert_non_null(pt);
	assert_non_null(ref);
	assert_non_null(got);
	assert_non_null(out);
	assert_non_null(bad);
	for (size_t round = 0; round < ROUNDS + sizeof(extra) / sizeof(extra[0]); round++) {
		size_t len = round < ROUNDS ? test_rand(&seed) % 2001 : extra[round - ROUNDS];
		size_t adlen, lane = test_rand(&seed) % SG_AEAD_LANES;
		bool in_place = test_rand(&seed) & 1;

		if (round % 16 == 0) { /* a new pair of keys, alternating the two forms */
			sg_aead_free(e);
			sg_aead_free(d);
			ipsec = (round / 16) % 2 == 1;
			test_rand_fill(&seed, keymat, sizeof(keymat));
			e = ipsec ? sg_ipsec_aead_new(SG_IPSEC_CHACHA20_POLY1305, keymat, 32, true)
				  : sg_aead_new(SG_SUITE_CLASSIC, keymat, true);
			d = ipsec ? sg_ipsec_aead_new(SG_IPSEC_CHACHA20_POLY1305, keymat, 32, false)
				  : sg_aead_new(SG_SUITE_CLASSIC, keymat, false);
			assert_non_null(e);
			assert_non_null(d);
		}
		/* The IPsec form's nonce is salt || IV; the WireGuard form takes any 12 bytes. */
		test_rand_fill(&seed, nonce, sizeof(nonce));
		if (ipsec)
			memcpy(nonce, keymat + 32, 4);
		adlen = ipsec ? test_rand(&seed) % (sizeof(ad) + 1) : 0;
		test_rand_fill(&seed, ad, adlen);
		test_rand_fill(&seed, pt, len);

		assert_true(sg_chacha20poly1305_encrypt(ref, pt, len, ad, adlen, nonce, keymat));
		if (in_place)
			memcpy(got, pt, len);
		if (ipsec)
			assert_true(sg_ipsec_aead_seal(e, (unsigned)lane, got, in_place ? got : pt,
						       len, ad, adlen, nonce + 4));
		else
			assert_true(sg_aead_seal_lane(e, (unsigned)lane, got, in_place ? got : pt,
						      len, nonce));
		assert_memory_equal(got, ref, len + 16);

		/* Each opens the other's output. */
		assert_true(
		    sg_chacha20poly1305_decrypt(out, got, len + 16, ad, adlen, nonce, keymat));
		if (len)
			assert_memory_equal(out, pt, len);
		if (in_place)
			memcpy(out, ref, len + 16);
		if (ipsec)
			assert_true(sg_ipsec_aead_open(d, (unsigned)lane, out, in_place ? out : ref,
						       len + 16, ad, adlen, nonce + 4));
		else
			assert_true(sg_aead_open_lane(d, (unsigned)lane, out, in_place ? out : ref,
						      len + 16, nonce));
		if (len)
			assert_memory_equal(out, pt, len);

		/* One flipped bit of the ciphertext or the tag. */
		memcpy(bad, ref, len + 16);
		bad[test_rand(&seed) % (len + 16)] ^= (uint8_t)(1u << (test_rand(&seed) % 8));
		expect_refused(d, ipsec, out, bad, len + 16, ad, adlen, nonce);
		/* In place too: the tampered buffer itself is wiped. */
		if (ipsec)
			assert_false(
			    sg_ipsec_aead_open(d, 2, bad, bad, len + 16, ad, adlen, nonce + 4));
		else
			assert_false(sg_aead_open_lane(d, 2, bad, bad, len + 16, nonce));
		assert_true(sg_is_zero(bad, len));
		/* One flipped bit of the AD, or AD where there was none. */
		if (ipsec && adlen > 0) {
			memcpy(bad, ad, adlen);
			bad[test_rand(&seed) % adlen] ^= 0x10;
			expect_refused(d, ipsec, out, ref, len + 16, bad, adlen, nonce);
		} else if (ipsec) {
			expect_refused(d, ipsec, out, ref, len + 16, (const uint8_t *)"x", 1,
				       nonce);
		}
		/* Another nonce. */
		nonce[11] ^= 1;
		expect_refused(d, ipsec, out, ref, len + 16, ad, adlen, nonce);
	}
	sg_aead_free(e);
	sg_aead_free(d);
	free(pt);
	free(ref);
	free(got);
	free(out);
	free(bad);
}

/* One lane's ChaCha20 context carries messages of every length in turn: a message past the
 * one-pass limit that ends inside a block (and one refused after its key block only) leaves
 * that context mid-block, and the next message on the same lane, short or long, must start
 * from its own nonce's block 0 all the same. Checked against the one-shot cipher, both
 * directions, same lane throughout. */
static void test_aead_session_lane_reuse(void **state)
{
	static const size_t lens[] = {12345, 100, 0, 9217, 63, 20001, 9216, 1, 12345, 1420};
	enum { MAXLEN = 20001 };
	uint8_t *pt = malloc(MAXLEN), *ref = malloc(MAXLEN + 16), *got = malloc(MAXLEN + 16),
		*out = malloc(MAXLEN + 16);
	uint8_t key[32], nonce[12] = {0};
	uint64_t seed = 0x1a9e;
	struct sg_aead *e, *d;

	(void)state;
	assert_non_null(pt);
	assert_non_null(ref);
	assert_non_null(got);
	assert_non_null(out);
	test_rand_fill(&seed, key, sizeof(key));
	e = sg_aead_new(SG_SUITE_CLASSIC, key, true);
	d = sg_aead_new(SG_SUITE_CLASSIC, key, false);
	assert_non_null(e);
	assert_non_null(d);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t len = lens[i];

		sg_put_le64(nonce + 4, i);
		test_rand_fill(&seed, pt, len);
		assert_true(sg_chacha20poly1305_encrypt(ref, pt, len, NULL, 0, nonce, key));
		assert_true(sg_aead_seal_lane(e, 3, got, pt, len, nonce));
		assert_memory_equal(got, ref, len + 16);
		/* A refused open (tag flipped) first, then the real one, on the same lane. */
		got[len] ^= 1;
		assert_false(sg_aead_open_lane(d, 3, out, got, len + 16, nonce));
		got[len] ^= 1;
		assert_true(sg_aead_open_lane(d, 3, out, got, len + 16, nonce));
		if (len)
			assert_memory_equal(out, pt, len);
	}
	sg_aead_free(e);
	sg_aead_free(d);
	free(pt);
	free(ref);
	free(got);
	free(out);
}

static void test_wg_nonce(void **state)
{
	uint8_t n[12];

	(void)state;
	/* Whitepaper 5.4.6: 32 zero bits, then the counter little-endian. */
	sg_wg_nonce(n, 0x0102030405060708ULL);
	assert_memory_equal(n, "\0\0\0\0\x08\x07\x06\x05\x04\x03\x02\x01", 12);
	sg_wg_nonce(n, 0);
	assert_true(sg_is_zero(n, 12));
}

/* ---- HChaCha20 / XChaCha20-Poly1305 -------------------------------------------------------- */

static void test_hchacha20(void **state)
{
	/* draft-irtf-cfrg-xchacha-03 section 2.2.1. */
	uint8_t key[32], nonce[16], expect[32], out[32];

	(void)state;
	fill_seq(key, 32, 0);
	HEX(nonce, "000000090000004a0000000031415927");
	HEX(expect, "82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc");
	assert_true(sg_hchacha20(out, nonce, key));
	assert_memory_equal(out, expect, 32);
	/* Again, on the now-initialised cached context. */
	memset(out, 0, sizeof(out));
	assert_true(sg_hchacha20(out, nonce, key));
	assert_memory_equal(out, expect, 32);
}

static void test_xchacha_draft_a_3_1(void **state)
{
	/* draft-irtf-cfrg-xchacha-03 appendix A.3.1, AEAD_XChaCha20_Poly1305. */
	static const char ct_hex[] =
	    "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3"
	    "a82f4eda7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2b"
	    "c369488f76b2383565d3fff921f9664c97637da9768812f615c68b13b52e"
	    "c0875924c1c7987947deafd8780acf49"; /* tag */
	uint8_t key[32], nonce[24], aad[12], expect[114 + 16], out[114 + 16], pt[114];
	const size_t len = sizeof(sunscreen) - 1;

	(void)state;
	fill_seq(key, 32, 0x80);
	fill_seq(nonce, 24, 0x40);
	HEX(aad, "50515253c0c1c2c3c4c5c6c7");
	HEX(expect, ct_hex);
	assert_true(sg_xchacha20poly1305_encrypt(out, (const uint8_t *)sunscreen, len, aad,
						 sizeof(aad), nonce, key));
	assert_memory_equal(out, expect, sizeof(expect));
	assert_true(
	    sg_xchacha20poly1305_decrypt(pt, out, sizeof(out), aad, sizeof(aad), nonce, key));
	assert_memory_equal(pt, sunscreen, len);

	/* Tamper: ciphertext, tag and the extended nonce bytes (which only HChaCha20 sees). */
	out[0] ^= 1;
	memset(pt, 0x5a, sizeof(pt));
	assert_false(
	    sg_xchacha20poly1305_decrypt(pt, out, sizeof(out), aad, sizeof(aad), nonce, key));
	assert_true(sg_is_zero(pt, sizeof(pt)));
	out[0] ^= 1;
	out[sizeof(out) - 1] ^= 0x80;
	assert_false(
	    sg_xchacha20poly1305_decrypt(pt, out, sizeof(out), aad, sizeof(aad), nonce, key));
	out[sizeof(out) - 1] ^= 0x80;
	nonce[3] ^= 1;
	assert_false(
	    sg_xchacha20poly1305_decrypt(pt, out, sizeof(out), aad, sizeof(aad), nonce, key));
	nonce[3] ^= 1;
	assert_true(
	    sg_xchacha20poly1305_decrypt(pt, out, sizeof(out), aad, sizeof(aad), nonce, key));
	assert_false(sg_xchacha20poly1305_decrypt(pt, out, 15, aad, sizeof(aad), nonce, key));
}

/* ---- BLAKE2s ------------------------------------------------------------------------------- */

static void test_blake2s_rfc7693(void **state)
{
	/* RFC 7693 appendix B: BLAKE2s-256("abc"). */
	uint8_t expect[32], out[32];
	struct sg_iov whole = {"abc", 3};
	struct sg_iov parts[4] = {{"a", 1}, {NULL, 0}, {"bc", 2}, {"", 0}};

	(void)state;
	HEX(expect, "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
	assert_true(sg_blake2s(out, &whole, 1));
	assert_memory_equal(out, expect, 32);
	memset(out, 0, sizeof(out));
	assert_true(sg_blake2s(out, parts, 4));
	assert_memory_equal(out, expect, 32);
	/* BLAKE2 reference repository, testvectors/blake2-kat.json, the first two unkeyed
	 * "blake2s" entries: in "" and in "00". */
	HEX(expect, "69217a3079908094e11121d042354a7c1f55b6482ca1a51e1b250dfd1ed0eef9");
	assert_true(sg_blake2s(out, NULL, 0));
	assert_memory_equal(out, expect, 32);
	HEX(expect, "e34d74dbaf4ff4c6abd871cc220451d2ea2648846c7757fbaac82fe51ad64bea");
	whole = (struct sg_iov){"", 1};
	assert_true(sg_blake2s(out, &whole, 1));
	assert_memory_equal(out, expect, 32);
}

static void test_blake2s_wireguard_constants(void **state)
{
	/* The Noise initial chaining key and hash that every WireGuard implementation hard-codes,
	 * e.g. wireguard-rs src/wireguard/handshake/noise.rs INITIAL_CK and INITIAL_HS:
	 * C = HASH("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"), H = HASH(C || IDENTIFIER). */
	static const char construction[] = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
	static const char identifier[] = "WireGuard v1 zx2c4 Jason@zx2c4.com";
	uint8_t ck[32], h[32], out[32];
	struct sg_iov iov[2];

	(void)state;
	HEX(ck, "60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36");
	HEX(h, "2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3");
	iov[0] = (struct sg_iov){construction, sizeof(construction) - 1};
	assert_true(sg_blake2s(out, iov, 1));
	assert_memory_equal(out, ck, 32);
	iov[0] = (struct sg_iov){ck, 32};
	iov[1] = (struct sg_iov){identifier, sizeof(identifier) - 1};
	assert_true(sg_blake2s(out, iov, 2));
	assert_memory_equal(out, h, 32);
}

/* The key of the Linux kernel's BLAKE2s self-test: key[0] = key[1] = 1, then Fibonacci mod 256
 * (lib/crypto/blake2s-selftest.c). */
static void kernel_selftest_key(uint8_t key[32])
{
	key[0] = key[1] = 1;
	for (int i = 2; i < 32; i++)
		key[i] = (uint8_t)(key[i - 2] + key[i - 1]);
}

static void test_blake2s_mac128_kernel_selftest(void **state)
{
	/* Linux lib/crypto/blake2s-selftest.c, blake2s_testvecs[i] for the four i with a 16-byte
	 * output (outlen = 1 + i % 32): keyed BLAKE2s with the last (13 * i) % 33 bytes of the
	 * self-test key over the message 00 01 .. (i-1). These are exactly WireGuard's MAC shape
	 * (keyed BLAKE2s, 16-byte output). */
	static const struct {
		size_t i;
		const char *mac;
	} vec[] = {
	    {15, "4fe0f95212da84b7abaeb0a6472ac7f5"},
	    {47, "a3504da51d0368e95778d604f1c394d8"},
	    {79, "b1dec9f5dbf32f4cd6417d39183ec7c3"},
	    {111, "08975b80aec41d5077df1fd024f017c0"},
	};
	uint8_t key[32], msg[128], expect[16], out[16];

	(void)state;
	kernel_selftest_key(key);
	fill_seq(msg, sizeof(msg), 0);
	for (size_t v = 0; v < sizeof(vec) / sizeof(vec[0]); v++) {
		size_t keylen = (13 * vec[v].i) % 33;
		struct sg_iov iov[2] = {{msg, vec[v].i / 3},
					{msg + vec[v].i / 3, vec[v].i - vec[v].i / 3}};

		HEX(expect, vec[v].mac);
		assert_true(sg_blake2s_mac128(out, key + 32 - keylen, keylen, iov, 2));
		assert_memory_equal(out, expect, 16);
	}
}

static void test_blake2s_mac128_python(void **state)
{
	/* Computed with python3 3.11 hashlib (its bundled BLAKE2 reference code, not OpenSSL):
	 *   hashlib.blake2s(bytes(range(64)), key=bytes(range(32)), digest_size=16)
	 *   hashlib.blake2s(b'', key=bytes(range(16)), digest_size=16) */
	uint8_t key[32], msg[64], expect[16], out[16];
	struct sg_iov iov = {msg, sizeof(msg)};

	(void)state;
	fill_seq(key, 32, 0);
	fill_seq(msg, 64, 0);
	HEX(expect, "f1efa90d2547036841ecd3627fafbc36");
	assert_true(sg_blake2s_mac128(out, key, 32, &iov, 1));
	assert_memory_equal(out, expect, 16);
	HEX(expect, "af4e5d3bb230e9ff9096ca6f7c501f76");
	assert_true(sg_blake2s_mac128(out, key, 16, NULL, 0));
	assert_memory_equal(out, expect, 16);
	/* Key length must be 1..32 (RFC 7693 section 2.5). */
	memset(out, 0xaa, sizeof(out));
	assert_false(sg_blake2s_mac128(out, key, 0, &iov, 1));
	assert_true(sg_is_zero(out, sizeof(out)));
	assert_false(sg_blake2s_mac128(out, key, 33, &iov, 1));
}

static void test_hmac_blake2s(void **state)
{
	/* Linux lib/crypto/blake2s-selftest.c blake2s_hmac_testvecs: HMAC-BLAKE2s-256 with the
	 * self-test key over bytes 00..ff, and with bytes 00..ff as the (longer than a block, so
	 * hashed first) key over the self-test key. */
	uint8_t key[32], buf[256], expect[32], out[32];
	struct sg_iov iov;

	(void)state;
	kernel_selftest_key(key);
	fill_seq(buf, sizeof(buf), 0);
	iov = (struct sg_iov){buf, sizeof(buf)};
	HEX(expect, "cee1576982dcbf43ad564c70ed681696cfa473e8e8fc3279080a7582da3f0511");
	assert_true(sg_hmac_blake2s(out, key, sizeof(key), &iov, 1));
	assert_memory_equal(out, expect, 32);
	iov = (struct sg_iov){key, sizeof(key)};
	HEX(expect, "772f0c7141f44b2bb3c6b6f960dee4523866e8bf9b96c49f60d9243799d6ec31");
	assert_true(sg_hmac_blake2s(out, buf, sizeof(buf), &iov, 1));
	assert_memory_equal(out, expect, 32);

	/* python3 3.11: hmac.new(bytes(range(32)), b'WireGuard', hashlib.blake2s) and
	 * hmac.new(b'', b'WireGuard', hashlib.blake2s). The empty key right after a keyed call
	 * catches a MAC context that silently keeps the previous key. */
	fill_seq(key, 32, 0);
	iov = (struct sg_iov){"WireGuard", 9};
	HEX(expect, "5415924543576b3f5ee867c94e1aab70586d33b32fae3fccd2c635b3e1d7198d");
	assert_true(sg_hmac_blake2s(out, key, 32, &iov, 1));
	assert_memory_equal(out, expect, 32);
	HEX(expect, "bf0664c045653aebe0a0c8fa3aefe426abf389fc792a5d8ce3a1e13c75291de4");
	assert_true(sg_hmac_blake2s(out, NULL, 0, &iov, 1));
	assert_memory_equal(out, expect, 32);
}

/* HMAC-BLAKE2s the long way, from sg_blake2s and RFC 2104 section 2: the reference that
 * sg_hmac_blake2s (two digests on a cached context, evp.c) is compared with. */
static void naive_hmac_blake2s(uint8_t out[32], const uint8_t *key, size_t keylen,
			       const uint8_t *msg, size_t len)
{
	uint8_t k[64] = {0}, ipad[64], opad[64], inner[32];

	if (keylen > 64) {
		struct sg_iov v = {key, keylen};
		assert_true(sg_blake2s(k, &v, 1));
	} else if (keylen > 0) {
		memcpy(k, key, keylen);
	}
	for (int i = 0; i < 64; i++) {
		ipad[i] = k[i] ^ 0x36;
		opad[i] = k[i] ^ 0x5c;
	}
	struct sg_iov in[2] = {{ipad, 64}, {msg, len}};
	assert_true(sg_blake2s(inner, in, 2));
	struct sg_iov o[2] = {{opad, 64}, {inner, 32}};
	assert_true(sg_blake2s(out, o, 2));
}

static void test_hmac_blake2s_naive(void **state)
{
	/* Keys of 0..100 bytes (empty, shorter than, equal to and longer than the 64-byte block),
	 * messages of 0..199 bytes cut into up to three iovs at random places. */
	uint8_t key[100], msg[200], out[32], expect[32];
	uint64_t seed = 0x5ec0de5ec0deULL;

	(void)state;
	for (int n = 0; n < 400; n++) {
		size_t keylen = n < 101 ? (size_t)n : test_rand(&seed) % 101;
		size_t len = test_rand(&seed) % 200;
		size_t cut1 = len ? test_rand(&seed) % (len + 1) : 0;
		size_t cut2 = cut1 + (len - cut1 ? test_rand(&seed) % (len - cut1 + 1) : 0);

		for (size_t i = 0; i < sizeof(key); i++)
			key[i] = (uint8_t)test_rand(&seed);
		for (size_t i = 0; i < sizeof(msg); i++)
			msg[i] = (uint8_t)test_rand(&seed);
		struct sg_iov iov[3] = {{msg, cut1}, {msg + cut1, cut2 - cut1}, {msg + cut2, len - cut2}};
		naive_hmac_blake2s(expect, key, keylen, msg, len);
		assert_true(sg_hmac_blake2s(out, keylen ? key : NULL, keylen, iov, 3));
		assert_memory_equal(out, expect, 32);
	}
}

static void test_wg_kdf(void **state)
{
	/* Expected values from an RFC 5869 HKDF over HMAC-BLAKE2s in python3 3.11:
	 *   prk = hmac.new(ck, ikm, hashlib.blake2s).digest(); T(0) = b''
	 *   T(i) = hmac.new(prk, T(i-1) + b'' + bytes([i]), hashlib.blake2s).digest()
	 * with ck = the WireGuard initial chaining key and ikm = bytes(range(0x20, 0x40)), then
	 * ikm = b'' (the transport-key derivation KDF2(C, e)). */
	uint8_t ck[32], in[32], e1[32], e2[32], e3[32], t1[32], t2[32], t3[32];

	(void)state;
	HEX(ck, "60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36");
	fill_seq(in, sizeof(in), 0x20);
	HEX(e1, "a1bb5656571db2bfe717e0e0148b7c3d3e5270adf9392b07cd20fe3d461094bd");
	HEX(e2, "0349d890ad1d9ebbf0f4775178115686d2d91c13baf7941534c73d193ee4503d");
	HEX(e3, "20524b5a0058dc9994bc93028b6b30007b1e270bffa55ac5dc9a890abef958e7");
	assert_true(sg_wg_kdf(t1, t2, t3, ck, in, sizeof(in)));
	assert_memory_equal(t1, e1, 32);
	assert_memory_equal(t2, e2, 32);
	assert_memory_equal(t3, e3, 32);

	/* Only the outputs asked for; t1 aliasing ck (the usual "C := KDF1(C, x)"). */
	memset(t2, 0, 32);
	assert_true(sg_wg_kdf(NULL, t2, NULL, ck, in, sizeof(in)));
	assert_memory_equal(t2, e2, 32);
	memcpy(t1, ck, 32);
	assert_true(sg_wg_kdf(t1, NULL, NULL, t1, in, sizeof(in)));
	assert_memory_equal(t1, e1, 32);
	memcpy(t1, ck, 32);
	assert_true(sg_wg_kdf(t1, t2, t3, t1, in, sizeof(in)));
	assert_memory_equal(t1, e1, 32);
	assert_memory_equal(t2, e2, 32);
	assert_memory_equal(t3, e3, 32);

	HEX(e1, "bd968725a9177942a8c2e4253d1dde31cf7b19ec001b4a3a3d141cd9d998d3ba");
	HEX(e2, "aab5462b323780fa615bf80ffe469510239ff361575a663968e686a7ae41d693");
	assert_true(sg_wg_kdf(t1, t2, NULL, ck, NULL, 0));
	assert_memory_equal(t1, e1, 32);
	assert_memory_equal(t2, e2, 32);
}

/* ---- suite table --------------------------------------------------------------------------- */

static void test_suite_classic(void **state)
{
	const struct sg_suite *s = sg_suite_get(SG_SUITE_CLASSIC);
	uint8_t a[32], ap[32], b[32], bp[32], s1[32], s2[32], key[32], nonce[12], ct[20 + 16];
	uint8_t pt[20], out[32], expect[32];
	struct sg_iov iov = {"abc", 3};

	(void)state;
	assert_non_null(s);
	assert_int_equal(s->id, SG_SUITE_CLASSIC);
	assert_string_equal(s->name, "classic");
	assert_int_equal(s->dh_priv_len, 32);
	assert_int_equal(s->dh_pub_len, 32);
	assert_int_equal(s->dh_shared_len, 32);
	assert_int_equal(s->hash_len, 32);
	assert_int_equal(s->aead_key_len, 32);
	assert_null(sg_suite_get((enum sg_suite_id)7));

	assert_true(s->dh_generate(a, ap));
	assert_true(s->dh_generate(b, bp));
	assert_true(s->dh_public(out, a));
	assert_memory_equal(out, ap, 32);
	assert_true(s->dh(s1, a, bp));
	assert_true(s->dh(s2, b, ap));
	assert_memory_equal(s1, s2, 32);

	fill_seq(key, 32, 9);
	fill_seq(pt, sizeof(pt), 1);
	sg_wg_nonce(nonce, 42);
	assert_true(s->aead_encrypt(ct, pt, sizeof(pt), NULL, 0, nonce, key));
	assert_true(s->aead_decrypt(out, ct, sizeof(ct), NULL, 0, nonce, key));
	assert_memory_equal(out, pt, sizeof(pt));

	HEX(expect, "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
	assert_true(s->hash(out, &iov, 1));
	assert_memory_equal(out, expect, 32);
	iov = (struct sg_iov){"WireGuard", 9};
	fill_seq(key, 32, 0);
	HEX(expect, "5415924543576b3f5ee867c94e1aab70586d33b32fae3fccd2c635b3e1d7198d");
	assert_true(s->hmac(out, key, 32, &iov, 1));
	assert_memory_equal(out, expect, 32);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_init_and_version),
	    cmocka_unit_test(test_memeq_is_zero),
	    cmocka_unit_test(test_random),
	    cmocka_unit_test(test_random_hook),
    cmocka_unit_test(test_random_pool_fork),
	    cmocka_unit_test(test_x25519_rfc7748_5_2),
	    cmocka_unit_test(test_x25519_rfc7748_6_1),
	    cmocka_unit_test(test_x25519_low_order_rejected),
	    cmocka_unit_test(test_x25519_generate_agree),
	    cmocka_unit_test(test_x25519_many_keys),
	    cmocka_unit_test(test_chacha_rfc8439_2_8_2),
	    cmocka_unit_test(test_chacha_rfc8439_a_5),
	    cmocka_unit_test(test_chacha_tamper),
	    cmocka_unit_test(test_chacha_roundtrip),
	    cmocka_unit_test(test_aead_session_rfc8439_2_8_2),
	    cmocka_unit_test(test_aead_session_differential),
	    cmocka_unit_test(test_aead_session_lane_reuse),
	    cmocka_unit_test(test_wg_nonce),
	    cmocka_unit_test(test_hchacha20),
	    cmocka_unit_test(test_xchacha_draft_a_3_1),
	    cmocka_unit_test(test_blake2s_rfc7693),
	    cmocka_unit_test(test_blake2s_wireguard_constants),
	    cmocka_unit_test(test_blake2s_mac128_kernel_selftest),
	    cmocka_unit_test(test_blake2s_mac128_python),
	    cmocka_unit_test(test_hmac_blake2s),
	    cmocka_unit_test(test_hmac_blake2s_naive),
	    cmocka_unit_test(test_wg_kdf),
	    cmocka_unit_test(test_suite_classic),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
