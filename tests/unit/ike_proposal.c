/* Unit tests for proposals (src/ike/proposal.c) and the key schedule (src/ike/keys.c). The key
 * layout is checked against the SP 800-135 IKEv2 KDF vector (ikev2_kdf_vector.h): SK_d, SK_ai,
 * SK_ar, SK_ei, SK_er, SK_pi and SK_pr must be consecutive slices of its DKM (RFC 7296 2.14), and
 * a Child SA's keys slices of its child DKM (2.17). */
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#include <secureguard/sg_errors.h>

#include "ike/keys.h"
#include "ike/proposal.h"
#include "ikev2_kdf_vector.h"

static int setup(void **state)
{
	(void)state;
	return sg_crypto_init();
}

static void test_parse(void **state)
{
	struct ike_prop_cfg p;
	const char *why = NULL;
	(void)state;
	assert_int_equal(
	    ike_prop_parse("aes256gcm16-prfsha384-ecp384", IKE_PROTO_IKE, false, &p, &why), 0);
	assert_int_equal(p.n[IKE_TRANS_ENCR], 1);
	assert_int_equal(p.alg[IKE_TRANS_ENCR][0].id, IKE_ENCR_AES_GCM_16);
	assert_int_equal(p.alg[IKE_TRANS_ENCR][0].keylen, 256);
	assert_int_equal(p.alg[IKE_TRANS_PRF][0].id, SG_PRF_HMAC_SHA2_384);
	assert_int_equal(p.alg[IKE_TRANS_KE][0].id, SG_KE_ECP_384);
	assert_int_equal(p.n[IKE_TRANS_INTEG], 0);
	/* A PRF from the integrity algorithm when none is named (strongSwan's rule). */
	assert_int_equal(ike_prop_parse("aes128-sha256-modp2048", IKE_PROTO_IKE, false, &p, &why),
			 0);
	assert_int_equal(p.alg[IKE_TRANS_PRF][0].id, SG_PRF_HMAC_SHA2_256);
	assert_int_equal(p.alg[IKE_TRANS_INTEG][0].id, SG_INTEG_HMAC_SHA2_256_128);
	/* ESP: ESN defaults to no; explicit esn. */
	assert_int_equal(ike_prop_parse("chacha20poly1305", IKE_PROTO_ESP, false, &p, &why), 0);
	assert_int_equal(p.n[IKE_TRANS_ESN], 1);
	assert_int_equal(p.alg[IKE_TRANS_ESN][0].id, 0);
	assert_int_equal(ike_prop_parse("aes128gcm16-ecp256-esn", IKE_PROTO_ESP, false, &p, &why),
			 0);
	assert_int_equal(p.alg[IKE_TRANS_ESN][0].id, 1);
	assert_int_equal(p.alg[IKE_TRANS_KE][0].id, SG_KE_ECP_256);

	static const struct {
		const char *s;
		uint8_t proto;
		bool fips;
		const char *why;
	} bad[] = {
	    {"", IKE_PROTO_IKE, false, "empty proposal"},
	    {"aes256gcm16-prfsha384", IKE_PROTO_IKE, false,
	     "IKE proposal without a key exchange group"},
	    {"aes256gcm16-ecp384", IKE_PROTO_IKE, false,
	     "IKE proposal without a PRF (name one, e.g. prfsha384)"},
	    {"aes256gcm16-sha256-prfsha256-ecp256", IKE_PROTO_IKE, false,
	     "integrity algorithm with an AEAD cipher"},
	    {"aes256-prfsha256-ecp256", IKE_PROTO_IKE, false,
	     "CBC cipher without an integrity algorithm"},
	    {"aes256-aes256gcm16-sha256-ecp256", IKE_PROTO_IKE, false,
	     "proposal mixes AEAD (GCM, ChaCha20-Poly1305) and CBC ciphers"},
	    {"3des-sha1-modp1024", IKE_PROTO_IKE, false,
	     "unknown or unsupported algorithm keyword in proposal"},
	    {"aes256gcm16--ecp384", IKE_PROTO_ESP, false, "empty keyword in proposal"},
	    {"aes256gcm16-", IKE_PROTO_ESP, false, "proposal ends in '-'"},
	    {"aes256gcm16-prfsha256", IKE_PROTO_ESP, false, "a PRF in an ESP proposal"},
	    {"aes256gcm16-prfsha256-ecp256-esn", IKE_PROTO_IKE, false, "ESN in an IKE proposal"},
	    {"chacha20poly1305", IKE_PROTO_ESP, true, "algorithm outside the FIPS profile"},
	    {"aes256gcm16-prfsha384-x25519", IKE_PROTO_IKE, true,
	     "algorithm outside the FIPS profile"},
	    {"sha256", IKE_PROTO_ESP, false, "proposal without an encryption algorithm"},
	};
	for (size_t i = 0; i < SG_ARRAY_LEN(bad); i++) {
		why = NULL;
		if (ike_prop_parse(bad[i].s, bad[i].proto, bad[i].fips, &p, &why) != SG_EINVAL ||
		    !why || strcmp(why, bad[i].why) != 0)
			fail_msg("\"%s\": got \"%s\", expected \"%s\"", bad[i].s,
				 why ? why : "(null)", bad[i].why);
	}
	/* The FIPS default is P-384 / AES-256-GCM / SHA-384 only. */
	ike_prop_default(IKE_PROTO_IKE, true, &p);
	assert_int_equal(p.n[IKE_TRANS_ENCR], 1);
	assert_int_equal(p.alg[IKE_TRANS_ENCR][0].keylen, 256);
	assert_int_equal(p.n[IKE_TRANS_KE], 1);
	assert_int_equal(p.alg[IKE_TRANS_KE][0].id, SG_KE_ECP_384);
	assert_int_equal(p.alg[IKE_TRANS_PRF][0].id, SG_PRF_HMAC_SHA2_384);
	ike_prop_default(IKE_PROTO_IKE, false, &p);
	assert_int_equal(p.n[IKE_TRANS_ENCR], 3);
	assert_int_equal(p.n[IKE_TRANS_KE], 4);
}

static void test_choose(void **state)
{
	struct ike_prop_cfg ours[2], theirs[2];
	struct ike_sa_payload offer, answer;
	struct ike_chosen c, acc;
	const char *why;
	(void)state;
	/* Ours: GCM-256 with P-384 or P-256, then ChaCha with x25519. */
	assert_int_equal(ike_prop_parse("aes256gcm16-prfsha384-ecp384-ecp256", IKE_PROTO_IKE, false,
					&ours[0], &why),
			 0);
	assert_int_equal(ike_prop_parse("chacha20poly1305-prfsha256-x25519", IKE_PROTO_IKE, false,
					&ours[1], &why),
			 0);
	/* Theirs: ChaCha first, then GCM-256 with P-256 only. */
	assert_int_equal(ike_prop_parse("chacha20poly1305-prfsha256-x25519", IKE_PROTO_IKE, false,
					&theirs[0], &why),
			 0);
	assert_int_equal(ike_prop_parse("aes256gcm16-prfsha384-prfsha256-ecp256", IKE_PROTO_IKE,
					false, &theirs[1], &why),
			 0);
	ike_prop_offer(theirs, 2, NULL, 0, &offer);
	assert_int_equal(offer.nprops, 2);
	/* Our preference wins: GCM (their proposal #2), with P-256, PRF SHA-384. */
	assert_int_equal(ike_prop_choose(ours, 2, &offer, 0, false, &c, &why), 0);
	assert_int_equal(c.num, 2);
	assert_int_equal(c.encr, IKE_ENCR_AES_GCM_16);
	assert_int_equal(c.encr_bits, 256);
	assert_int_equal(c.prf, SG_PRF_HMAC_SHA2_384);
	assert_int_equal(c.ke, SG_KE_ECP_256);
	char txt[96];
	assert_string_equal(ike_chosen_str(&c, txt, sizeof(txt)),
			    "AES_GCM_16_256/PRF_HMAC_SHA2_384/ECP_256");
	/* The answer is accepted by the initiator that made the offer. */
	ike_prop_answer(&c, NULL, 0, &answer);
	assert_int_equal(ike_prop_accept(theirs, 2, &answer, &acc, &why), 0);
	assert_int_equal(acc.ke, SG_KE_ECP_256);
	assert_int_equal(acc.num, 2);
	/* An answer with a transform nobody offered is refused. */
	answer.props[0].trans[2].id = SG_KE_MODP_2048;
	assert_int_equal(ike_prop_accept(theirs, 2, &answer, &acc, &why), SG_EPARSE);
	/* An answer with two groups is refused. */
	ike_prop_answer(&c, NULL, 0, &answer);
	answer.props[0].trans[answer.props[0].ntrans++] =
	    (struct ike_transform){IKE_TRANS_KE, SG_KE_ECP_256, 0};
	assert_int_equal(ike_prop_accept(theirs, 2, &answer, &acc, &why), SG_EPARSE);
	assert_string_equal(why, "the responder chose two transforms of one type");
	/* The peer's KE payload group is taken when acceptable (no INVALID_KE needed). */
	assert_int_equal(ike_prop_parse("aes256gcm16-prfsha384-ecp256-ecp384", IKE_PROTO_IKE, false,
					&theirs[0], &why),
			 0);
	ike_prop_offer(theirs, 1, NULL, 0, &offer);
	assert_int_equal(ike_prop_choose(ours, 1, &offer, SG_KE_ECP_256, false, &c, &why), 0);
	assert_int_equal(c.ke, SG_KE_ECP_256);
	assert_int_equal(ike_prop_choose(ours, 1, &offer, 0, false, &c, &why), 0);
	assert_int_equal(c.ke, SG_KE_ECP_384); /* ours first otherwise */
	/* Nothing in common. */
	assert_int_equal(
	    ike_prop_parse("aes128-sha512-modp3072", IKE_PROTO_IKE, false, &theirs[0], &why), 0);
	ike_prop_offer(theirs, 1, NULL, 0, &offer);
	assert_int_equal(ike_prop_choose(ours, 2, &offer, 0, false, &c, &why), SG_ENOENT);
	assert_string_equal(why, "no proposal of the peer matches the configured ones");

	/* ESP with SPIs, ESN and PFS. */
	struct ike_prop_cfg esp_ours, esp_theirs;
	assert_int_equal(
	    ike_prop_parse("aes256gcm16-ecp384", IKE_PROTO_ESP, false, &esp_ours, &why), 0);
	assert_int_equal(
	    ike_prop_parse("aes256gcm16-ecp384-esn-noesn", IKE_PROTO_ESP, false, &esp_theirs, &why),
	    0);
	ike_prop_offer(&esp_theirs, 1, (const uint8_t *)"\xca\xfe\x00\x01", 4, &offer);
	assert_int_equal(ike_prop_choose(&esp_ours, 1, &offer, 0, true, &c, &why), 0);
	assert_int_equal(c.spi_len, 4);
	assert_memory_equal(c.spi, "\xca\xfe\x00\x01", 4);
	assert_int_equal(c.esn, 0);
	assert_int_equal(c.ke, SG_KE_ECP_384);
	/* PFS required but the peer offers no group. */
	assert_int_equal(ike_prop_parse("aes256gcm16", IKE_PROTO_ESP, false, &esp_theirs, &why), 0);
	ike_prop_offer(&esp_theirs, 1, (const uint8_t *)"\xca\xfe\x00\x01", 4, &offer);
	assert_int_equal(ike_prop_choose(&esp_ours, 1, &offer, 0, true, &c, &why), SG_ENOENT);
}

static void test_key_schedule_sp800_135(void **state)
{
	uint8_t ni[256], nr[256], gir[28], girn[28], spii[8], spir[8];
	uint8_t dkm[384], dkm_child[384], dkm_dh[384], rekey[32];
	struct ike_sa_keys k;
	struct ike_chosen c = {.protocol = IKE_PROTO_IKE,
			       .encr = IKE_ENCR_AES_CBC,
			       .encr_bits = 256,
			       .prf = SG_PRF_HMAC_SHA2_256,
			       .integ = SG_INTEG_HMAC_SHA2_256_128,
			       .ke = SG_KE_ECP_256};
	(void)state;
	HEX(ni, KDF_NI);
	HEX(nr, KDF_NR);
	HEX(gir, KDF_GIR);
	HEX(girn, KDF_GIR_NEW);
	HEX(spii, KDF_SPII);
	HEX(spir, KDF_SPIR);
	HEX(dkm, KDF_DKM);
	HEX(dkm_child, KDF_DKM_CHILD);
	HEX(dkm_dh, KDF_DKM_CHILD_DH);
	HEX(rekey, KDF_SKEYSEED_REKEY);
	/* As initiator: out = (SK_ei, SK_ai), in = (SK_er, SK_ar). Slices of 32 bytes each:
	 * SK_d 0, SK_ai 32, SK_ar 64, SK_ei 96, SK_er 128, SK_pi 160, SK_pr 192. */
	assert_int_equal(ike_derive_sa_keys(&c, true, gir, sizeof(gir), ni, 256, nr, 256, spii,
					    spir, 0, NULL, &k),
			 0);
	assert_memory_equal(k.sk_d, dkm, 32);
	assert_memory_equal(k.out.ak, dkm + 32, 32);
	assert_memory_equal(k.in.ak, dkm + 64, 32);
	assert_memory_equal(k.out.ek, dkm + 96, 32);
	assert_memory_equal(k.in.ek, dkm + 128, 32);
	assert_memory_equal(k.sk_pi, dkm + 160, 32);
	assert_memory_equal(k.sk_pr, dkm + 192, 32);
	ike_sa_keys_wipe(&k);
	/* As responder the directions swap. */
	assert_int_equal(ike_derive_sa_keys(&c, false, gir, sizeof(gir), ni, 256, nr, 256, spii,
					    spir, 0, NULL, &k),
			 0);
	assert_memory_equal(k.out.ek, dkm + 128, 32);
	assert_memory_equal(k.in.ek, dkm + 96, 32);
	ike_sa_keys_wipe(&k);
	/* AEAD: no integrity keys, SK_e carries a 4-byte salt (36 bytes each). */
	struct ike_chosen g = {.protocol = IKE_PROTO_IKE,
			       .encr = IKE_ENCR_AES_GCM_16,
			       .encr_bits = 256,
			       .prf = SG_PRF_HMAC_SHA2_256,
			       .ke = SG_KE_ECP_256};
	assert_int_equal(ike_derive_sa_keys(&g, true, gir, sizeof(gir), ni, 256, nr, 256, spii,
					    spir, 0, NULL, &k),
			 0);
	assert_memory_equal(k.out.ek, dkm + 32, 36);
	assert_memory_equal(k.in.ek, dkm + 68, 36);
	assert_memory_equal(k.sk_pi, dkm + 104, 32);
	assert_non_null(k.out.aead);
	ike_sa_keys_wipe(&k);

	/* Child SA KEYMAT (2.17), AES-CBC-256 + HMAC-SHA-256: enc_i, int_i, enc_r, int_r. */
	struct ike_child_keys ck;
	struct ike_chosen e = {.protocol = IKE_PROTO_ESP,
			       .encr = IKE_ENCR_AES_CBC,
			       .encr_bits = 256,
			       .integ = SG_INTEG_HMAC_SHA2_256_128};
	const uint8_t *sk_d = dkm;
	assert_int_equal(
	    ike_derive_child_keys(&e, SG_PRF_HMAC_SHA2_256, sk_d, NULL, 0, ni, 256, nr, 256, &ck),
	    0);
	assert_memory_equal(ck.enc_i, dkm_child, 32);
	assert_memory_equal(ck.int_i, dkm_child + 32, 32);
	assert_memory_equal(ck.enc_r, dkm_child + 64, 32);
	assert_memory_equal(ck.int_r, dkm_child + 96, 32);
	/* With PFS: g^ir (new) first in the seed. */
	assert_int_equal(ike_derive_child_keys(&e, SG_PRF_HMAC_SHA2_256, sk_d, girn, sizeof(girn),
					       ni, 256, nr, 256, &ck),
			 0);
	assert_memory_equal(ck.enc_i, dkm_dh, 32);
	assert_memory_equal(ck.int_r, dkm_dh + 96, 32);
	ike_child_keys_wipe(&ck);

	/* IKE SA rekey (2.18): SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) is the vector's
	 * SKEYSEED(Rekey); the new keys are prf+ of it over the new nonces and SPIs. */
	uint8_t want[224];
	struct sg_iov seed[4] = {{ni, 256}, {nr, 256}, {spii, 8}, {spir, 8}};
	assert_true(sg_prf_plus(SG_PRF_HMAC_SHA2_256, want, sizeof(want), rekey, 32, seed, 4));
	assert_int_equal(ike_derive_sa_keys(&c, true, girn, sizeof(girn), ni, 256, nr, 256, spii,
					    spir, SG_PRF_HMAC_SHA2_256, sk_d, &k),
			 0);
	assert_memory_equal(k.sk_d, want, 32);
	assert_memory_equal(k.sk_pr, want + 192, 32);
	ike_sa_keys_wipe(&k);
	assert_true(sg_is_zero(&k, sizeof(k)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_choose),
	    cmocka_unit_test(test_key_schedule_sp800_135),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
