/* The IKEv2 key schedule (RFC 7296 2.14, 2.17, 2.18) over src/crypto: SKEYSEED, the IKE SA's
 * seven keys, Child SA KEYMAT, and SKEYSEED for an IKE SA rekey. Sans-I/O. */
#ifndef SG_IKE_KEYS_H
#define SG_IKE_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"
#include "crypto/ipsec.h"
#include "ike/ike_msg.h"
#include "ike/proposal.h"

/* Key length in bytes of a cipher transform (key only, without the AEAD salt): the Key Length
 * attribute, or ChaCha20-Poly1305's fixed 32. 0 if unknown. */
size_t ike_encr_key_len(uint16_t encr, uint16_t bits);
/* Bytes of key material one direction of the cipher takes from prf+: the key, plus the 4-byte
 * salt for the AEADs (RFC 5282 7.1, RFC 4106 8.1, RFC 7634 3). */
size_t ike_encr_keymat_len(uint16_t encr, uint16_t bits);

struct ike_sa_keys {
	uint16_t prf;
	size_t prf_len;
	uint8_t sk_d[SG_PRF_MAX_LEN];
	uint8_t sk_pi[SG_PRF_MAX_LEN], sk_pr[SG_PRF_MAX_LEN];
	struct ike_sk_keys out, in; /* our sending and receiving direction */
};

/* Derives an IKE SA's keys. With skd_old (an IKE SA rekey, 2.18) SKEYSEED = prf_old(SK_d (old),
 * g^ir | Ni | Nr); otherwise SKEYSEED = prf(Ni | Nr, g^ir) (2.14). Then
 * {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)
 * with the new SA's PRF. `initiator` says which direction is ours. 0, SG_EINVAL, SG_ECRYPTO,
 * SG_ENOMEM. Everything intermediate is wiped. */
int ike_derive_sa_keys(const struct ike_chosen *c, bool initiator, const uint8_t *gir,
		       size_t gir_len, const uint8_t *ni, size_t ni_len, const uint8_t *nr,
		       size_t nr_len, const uint8_t spi_i[8], const uint8_t spi_r[8],
		       uint16_t prf_old, const uint8_t *skd_old, struct ike_sa_keys *out) SG_WUR;
void ike_sa_keys_wipe(struct ike_sa_keys *k);

/* A Child SA's keys (2.17): KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr); the initiator-to-
 * responder SA's encryption key (and salt) then integrity key come first, then the other
 * direction's. */
struct ike_child_keys {
	uint16_t encr, encr_bits, integ;
	uint8_t enc_i[36], enc_r[36]; /* key || salt for AEADs */
	uint8_t int_i[64], int_r[64];
	size_t enc_len, int_len;
};
int ike_derive_child_keys(const struct ike_chosen *c, uint16_t prf, const uint8_t *sk_d,
			  const uint8_t *gir, size_t gir_len, const uint8_t *ni, size_t ni_len,
			  const uint8_t *nr, size_t nr_len, struct ike_child_keys *out) SG_WUR;
void ike_child_keys_wipe(struct ike_child_keys *k);

#endif
