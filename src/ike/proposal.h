/* IKEv2 proposals: strongSwan's proposal keywords (swanctl.conf `proposals`, `esp_proposals`),
 * the SA payload we offer, and the choice among a peer's proposals (RFC 7296 2.7, 3.3.6), with
 * the FIPS profile as a filter. Sans-I/O and allocation-free.
 *
 * A configured proposal holds, per transform type, an ordered list of acceptable algorithms
 * ("aes256gcm16-aes128gcm16-prfsha384-ecp384-ecp256" is one proposal with two ciphers and two
 * groups). Choosing walks our proposals in order and, within each, the peer's: the first peer
 * proposal that has an acceptable algorithm for every type we require wins, and for each type
 * our most preferred algorithm the peer offered is taken (our preference, as charon's default
 * prefer_configured_proposals = yes).
 */
#ifndef SG_IKE_PROPOSAL_H
#define SG_IKE_PROPOSAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"
#include "ike/ike_msg.h"

#define IKE_PROP_MAX_ALGS 8 /* per transform type in one configured proposal */
#define IKE_PROP_MAX	  8 /* configured proposals per connection or child */

struct ike_alg {
	uint16_t id;
	uint16_t keylen; /* bits, for ENCR; 0 otherwise */
};

struct ike_prop_cfg {
	uint8_t protocol; /* IKE_PROTO_IKE or IKE_PROTO_ESP */
	unsigned n[6];	  /* per transform type 1..5 (index 0 unused) */
	struct ike_alg alg[6][IKE_PROP_MAX_ALGS];
};

/* The outcome of a negotiation: one algorithm per type (0 = none), and the peer's SPI. */
struct ike_chosen {
	uint8_t protocol;
	uint8_t num; /* the peer's proposal number */
	uint8_t spi_len;
	uint8_t spi[8];
	uint16_t encr, encr_bits, prf, integ, ke, esn;
};

/* Parses one proposal in strongSwan's keyword syntax, e.g. "aes256gcm16-prfsha384-ecp384",
 * "aes128-sha256-modp2048" (an IKE proposal with integrity but no PRF takes the PRF of the same
 * hash), "chacha20poly1305-x25519-esn". Keywords: aes128 aes192 aes256 (CBC), aes128gcm16
 * aes256gcm16 (and the ...gcm128 aliases), chacha20poly1305, sha256 sha384 sha512 (and sha2_*),
 * prfsha256 prfsha384 prfsha512, modp2048 modp3072 ecp256 ecp384 ecp521 curve25519 x25519, esn
 * noesn. An IKE proposal needs a cipher, a PRF and a group, no integrity with an AEAD, and
 * integrity with CBC; an ESP proposal a cipher, integrity with CBC, and ESN defaults to noesn.
 * With fips, algorithms outside the FIPS profile are refused. *why names the offending keyword.
 * 0, SG_EINVAL. */
int ike_prop_parse(const char *s, uint8_t protocol, bool fips, struct ike_prop_cfg *out,
		   const char **why) SG_WUR;
/* The defaults when a connection names none: IKE aes256gcm16/aes128gcm16/chacha20poly1305,
 * prfsha384/prfsha256, ecp384/ecp256/curve25519/modp3072; ESP aes256gcm16/aes128gcm16/
 * chacha20poly1305 without ESN. In the FIPS profile, P-384 / AES-256-GCM / SHA-384 only. */
void ike_prop_default(uint8_t protocol, bool fips, struct ike_prop_cfg *out);

/* Our SA payload from configured proposals (numbered 1..n); spi (spi_len bytes, 0 in
 * IKE_SA_INIT) goes into each. For ESP with `ke`, the group is added (PFS). */
void ike_prop_offer(const struct ike_prop_cfg *cfg, unsigned ncfg, const uint8_t *spi,
		    uint8_t spi_len, struct ike_sa_payload *sa);

/* Chooses from the peer's SA payload. `prefer_ke` (0 = none) is the group of the peer's KE
 * payload: if acceptable in the winning proposal it is taken, so that INVALID_KE_PAYLOAD is
 * sent only when needed. require_ke: ESP proposals must carry a group (PFS configured). 0, or
 * SG_ENOENT (NO_PROPOSAL_CHOSEN) with *why. */
int ike_prop_choose(const struct ike_prop_cfg *cfg, unsigned ncfg,
		    const struct ike_sa_payload *peer, uint16_t prefer_ke, bool require_ke,
		    struct ike_chosen *out, const char **why) SG_WUR;
/* The SA payload of a response: exactly the chosen transforms, the peer's proposal number and
 * our SPI. */
void ike_prop_answer(const struct ike_chosen *c, const uint8_t *spi, uint8_t spi_len,
		     struct ike_sa_payload *sa);
/* For an initiator: checks that the responder's answer (one proposal with one transform per
 * type) is one we offered, and returns it. 0 or SG_EPARSE. */
int ike_prop_accept(const struct ike_prop_cfg *cfg, unsigned ncfg,
		    const struct ike_sa_payload *answer, struct ike_chosen *out,
		    const char **why) SG_WUR;
/* strongSwan-style text of a choice ("AES_GCM_16_256/PRF_HMAC_SHA2_384/ECP_384"), for logs and
 * list-sas. */
const char *ike_chosen_str(const struct ike_chosen *c, char *buf, size_t size);

#endif
