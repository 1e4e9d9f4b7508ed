/* IKEv2 proposals: keywords, offer, choice (proposal.h). */
#include <stdio.h>
#include <string.h>

#include <secureguard/sg_errors.h>

#include "crypto/ipsec.h"
#include "ike/proposal.h"

struct keyword {
	const char *name;
	uint8_t type;
	uint16_t id, keylen;
};

static const struct keyword keywords[] = {
    {"aes128", IKE_TRANS_ENCR, IKE_ENCR_AES_CBC, 128},
    {"aes192", IKE_TRANS_ENCR, IKE_ENCR_AES_CBC, 192},
    {"aes256", IKE_TRANS_ENCR, IKE_ENCR_AES_CBC, 256},
    {"aes128gcm16", IKE_TRANS_ENCR, IKE_ENCR_AES_GCM_16, 128},
    {"aes128gcm128", IKE_TRANS_ENCR, IKE_ENCR_AES_GCM_16, 128},
    {"aes256gcm16", IKE_TRANS_ENCR, IKE_ENCR_AES_GCM_16, 256},
    {"aes256gcm128", IKE_TRANS_ENCR, IKE_ENCR_AES_GCM_16, 256},
    {"chacha20poly1305", IKE_TRANS_ENCR, IKE_ENCR_CHACHA20_POLY1305, 0},
    {"sha256", IKE_TRANS_INTEG, SG_INTEG_HMAC_SHA2_256_128, 0},
    {"sha2_256", IKE_TRANS_INTEG, SG_INTEG_HMAC_SHA2_256_128, 0},
    {"sha384", IKE_TRANS_INTEG, SG_INTEG_HMAC_SHA2_384_192, 0},
    {"sha2_384", IKE_TRANS_INTEG, SG_INTEG_HMAC_SHA2_384_192, 0},
    {"sha512", IKE_TRANS_INTEG, SG_INTEG_HMAC_SHA2_512_256, 0},
    {"sha2_512", IKE_TRANS_INTEG, SG_INTEG_HMAC_SHA2_512_256, 0},
    {"prfsha256", IKE_TRANS_PRF, SG_PRF_HMAC_SHA2_256, 0},
    {"prfsha384", IKE_TRANS_PRF, SG_PRF_HMAC_SHA2_384, 0},
    {"prfsha512", IKE_TRANS_PRF, SG_PRF_HMAC_SHA2_512, 0},
    {"modp2048", IKE_TRANS_KE, SG_KE_MODP_2048, 0},
    {"modp3072", IKE_TRANS_KE, SG_KE_MODP_3072, 0},
    {"ecp256", IKE_TRANS_KE, SG_KE_ECP_256, 0},
    {"ecp384", IKE_TRANS_KE, SG_KE_ECP_384, 0},
    {"ecp521", IKE_TRANS_KE, SG_KE_ECP_521, 0},
    {"curve25519", IKE_TRANS_KE, SG_KE_CURVE25519, 0},
    {"x25519", IKE_TRANS_KE, SG_KE_CURVE25519, 0},
    {"esn", IKE_TRANS_ESN, 1, 0},
    {"noesn", IKE_TRANS_ESN, 0, 0},
};

static bool is_aead(uint16_t encr)
{
	return encr == IKE_ENCR_AES_GCM_16 || encr == IKE_ENCR_CHACHA20_POLY1305;
}

/* The FIPS profile (SecureGuard's FIPS mode suite and what SP 800-56A / SP 800-131A allow):
 * AES (GCM or CBC), HMAC-SHA2, MODP 2048+ and the P-curves; no ChaCha20 or Curve25519. */
static bool fips_ok(uint8_t type, uint16_t id)
{
	if (type == IKE_TRANS_ENCR)
		return id == IKE_ENCR_AES_GCM_16 || id == IKE_ENCR_AES_CBC;
	if (type == IKE_TRANS_KE)
		return sg_ke_group_fips(id);
	return true;
}

static bool add_alg(struct ike_prop_cfg *p, uint8_t type, uint16_t id, uint16_t keylen)
{
	for (unsigned i = 0; i < p->n[type]; i++)
		if (p->alg[type][i].id == id && p->alg[type][i].keylen == keylen)
			return true; /* repeated keyword: once is enough */
	if (p->n[type] >= IKE_PROP_MAX_ALGS)
		return false;
	p->alg[type][p->n[type]++] = (struct ike_alg){id, keylen};
	return true;
}

static uint16_t prf_of_integ(uint16_t integ)
{
	switch (integ) {
	case SG_INTEG_HMAC_SHA2_256_128:
		return SG_PRF_HMAC_SHA2_256;
	case SG_INTEG_HMAC_SHA2_384_192:
		return SG_PRF_HMAC_SHA2_384;
	case SG_INTEG_HMAC_SHA2_512_256:
		return SG_PRF_HMAC_SHA2_512;
	}
	return 0;
}

int ike_prop_parse(const char *s, uint8_t protocol, bool fips, struct ike_prop_cfg *p,
		   const char **why)
{
	static const char *dummy;
	char word[32];
	bool aead = false, cbc = false;
	if (!why)
		why = &dummy;
	memset(p, 0, sizeof(*p));
	p->protocol = protocol;
	if (protocol != IKE_PROTO_IKE && protocol != IKE_PROTO_ESP) {
		*why = "proposal for an unknown protocol";
		return SG_EINVAL;
	}
	if (!*s) {
		*why = "empty proposal";
		return SG_EINVAL;
	}
	while (*s) {
		const char *dash = strchr(s, '-');
		size_t n = dash ? (size_t)(dash - s) : strlen(s);
		if (n == 0 || n >= sizeof(word)) {
			*why = n ? "proposal keyword too long" : "empty keyword in proposal";
			return SG_EINVAL;
		}
		memcpy(word, s, n);
		word[n] = 0;
		const struct keyword *k = NULL;
		for (size_t i = 0; i < SG_ARRAY_LEN(keywords); i++)
			if (strcmp(keywords[i].name, word) == 0)
				k = &keywords[i];
		if (!k) {
			*why = "unknown or unsupported algorithm keyword in proposal";
			return SG_EINVAL;
		}
		if ((k->type == IKE_TRANS_PRF && protocol != IKE_PROTO_IKE) ||
		    (k->type == IKE_TRANS_ESN && protocol != IKE_PROTO_ESP)) {
			*why = k->type == IKE_TRANS_PRF ? "a PRF in an ESP proposal"
							: "ESN in an IKE proposal";
			return SG_EINVAL;
		}
		if (fips && !fips_ok(k->type, k->id)) {
			*why = "algorithm outside the FIPS profile";
			return SG_EINVAL;
		}
		if (k->type == IKE_TRANS_ENCR) {
			if (is_aead(k->id))
				aead = true;
			else
				cbc = true;
		}
		if (!add_alg(p, k->type, k->id, k->keylen)) {
			*why = "more than 8 algorithms of one type in a proposal";
			return SG_EINVAL;
		}
		s += n;
		if (*s == '-') {
			s++;
			if (!*s) {
				*why = "proposal ends in '-'";
				return SG_EINVAL;
			}
		}
	}
	if (!p->n[IKE_TRANS_ENCR]) {
		*why = "proposal without an encryption algorithm";
		return SG_EINVAL;
	}
	if (aead && cbc) {
		/* RFC 7296 3.3: AEAD and non-AEAD ciphers go in separate proposals. */
		*why = "proposal mixes AEAD (GCM, ChaCha20-Poly1305) and CBC ciphers";
		return SG_EINVAL;
	}
	if (aead && p->n[IKE_TRANS_INTEG]) {
		*why = "integrity algorithm with an AEAD cipher";
		return SG_EINVAL;
	}
	if (cbc && !p->n[IKE_TRANS_INTEG]) {
		*why = "CBC cipher without an integrity algorithm";
		return SG_EINVAL;
	}
	if (protocol == IKE_PROTO_IKE) {
		/* strongSwan: PRFs from the integrity algorithms when none is named. */
		if (!p->n[IKE_TRANS_PRF])
			for (unsigned i = 0; i < p->n[IKE_TRANS_INTEG]; i++)
				(void)add_alg(p, IKE_TRANS_PRF,
					      prf_of_integ(p->alg[IKE_TRANS_INTEG][i].id), 0);
		if (!p->n[IKE_TRANS_PRF]) {
			*why = "IKE proposal without a PRF (name one, e.g. prfsha384)";
			return SG_EINVAL;
		}
		if (!p->n[IKE_TRANS_KE]) {
			*why = "IKE proposal without a key exchange group";
			return SG_EINVAL;
		}
	} else if (!p->n[IKE_TRANS_ESN]) {
		(void)add_alg(p, IKE_TRANS_ESN, 0, 0);
	}
	return 0;
}

void ike_prop_default(uint8_t protocol, bool fips, struct ike_prop_cfg *out)
{
	const char *s =
	    protocol == IKE_PROTO_IKE
		? (fips ? "aes256gcm16-prfsha384-ecp384"
			: "aes256gcm16-aes128gcm16-chacha20poly1305-prfsha384-prfsha256-"
			  "ecp384-ecp256-curve25519-modp3072")
		: (fips ? "aes256gcm16" : "aes256gcm16-aes128gcm16-chacha20poly1305");
	const char *why;
	if (ike_prop_parse(s, protocol, fips, out, &why) != 0)
		memset(out, 0, sizeof(*out)); /* not reached: the strings above parse */
}

void ike_prop_offer(const struct ike_prop_cfg *cfg, unsigned ncfg, const uint8_t *spi,
		    uint8_t spi_len, struct ike_sa_payload *sa)
{
	memset(sa, 0, sizeof(*sa));
	for (unsigned i = 0; i < ncfg && sa->nprops < IKE_MAX_PROPOSALS; i++) {
		struct ike_proposal *pr = &sa->props[sa->nprops];
		pr->num = (uint8_t)(sa->nprops + 1);
		pr->protocol = cfg[i].protocol;
		pr->spi_len = spi_len;
		if (spi_len)
			memcpy(pr->spi, spi, spi_len);
		for (uint8_t t = IKE_TRANS_ENCR; t <= IKE_TRANS_ESN; t++)
			for (unsigned a = 0; a < cfg[i].n[t] && pr->ntrans < IKE_MAX_TRANSFORMS;
			     a++)
				pr->trans[pr->ntrans++] = (struct ike_transform){
				    t, cfg[i].alg[t][a].id, cfg[i].alg[t][a].keylen};
		sa->nprops++;
	}
}

static bool offers(const struct ike_proposal *pr, uint8_t type, const struct ike_alg *a)
{
	for (unsigned i = 0; i < pr->ntrans; i++)
		if (pr->trans[i].type == type && pr->trans[i].id == a->id &&
		    pr->trans[i].keylen == a->keylen)
			return true;
	return false;
}

static bool has_type(const struct ike_proposal *pr, uint8_t type)
{
	for (unsigned i = 0; i < pr->ntrans; i++)
		if (pr->trans[i].type == type)
			return true;
	return false;
}

/* Picks one algorithm of `type` from cfg that pr offers; *out = 0 when the type is absent from
 * both (allowed) ; false when no match. */
static bool pick(const struct ike_prop_cfg *cfg, const struct ike_proposal *pr, uint8_t type,
		 uint16_t prefer, uint16_t *id, uint16_t *keylen)
{
	*id = 0;
	if (keylen)
		*keylen = 0;
	if (!cfg->n[type])
		return !has_type(pr, type);
	for (unsigned i = 0; prefer && i < cfg->n[type]; i++)
		if (cfg->alg[type][i].id == prefer && offers(pr, type, &cfg->alg[type][i])) {
			*id = prefer;
			return true;
		}
	for (unsigned i = 0; i < cfg->n[type]; i++)
		if (offers(pr, type, &cfg->alg[type][i])) {
			*id = cfg->alg[type][i].id;
			if (keylen)
				*keylen = cfg->alg[type][i].keylen;
			return true;
		}
	return false;
}

static bool match(const struct ike_prop_cfg *cfg, const struct ike_proposal *pr, uint16_t prefer_ke,
		  bool require_ke, struct ike_chosen *c)
{
	memset(c, 0, sizeof(*c));
	if (pr->protocol != cfg->protocol)
		return false;
	if (!pick(cfg, pr, IKE_TRANS_ENCR, 0, &c->encr, &c->encr_bits) ||
	    !pick(cfg, pr, IKE_TRANS_PRF, 0, &c->prf, NULL) ||
	    !pick(cfg, pr, IKE_TRANS_INTEG, 0, &c->integ, NULL) ||
	    !pick(cfg, pr, IKE_TRANS_KE, prefer_ke, &c->ke, NULL))
		return false;
	/* ESN: the absent transform means "no" (RFC 7296 3.3.2 requires it for ESP, but be
	 * lenient only where "no" is what we would pick anyway). */
	if (cfg->protocol == IKE_PROTO_ESP) {
		uint16_t esn = 0;
		if (has_type(pr, IKE_TRANS_ESN) && !pick(cfg, pr, IKE_TRANS_ESN, 0, &esn, NULL))
			return false;
		c->esn = esn;
	}
	if (cfg->protocol == IKE_PROTO_IKE && (!c->prf || !c->ke))
		return false;
	if (require_ke && !c->ke)
		return false;
	c->protocol = pr->protocol;
	c->num = pr->num;
	c->spi_len = pr->spi_len;
	memcpy(c->spi, pr->spi, pr->spi_len);
	return true;
}

int ike_prop_choose(const struct ike_prop_cfg *cfg, unsigned ncfg,
		    const struct ike_sa_payload *peer, uint16_t prefer_ke, bool require_ke,
		    struct ike_chosen *out, const char **why)
{
	static const char *dummy;
	if (!why)
		why = &dummy;
	for (unsigned i = 0; i < ncfg; i++)
		for (unsigned j = 0; j < peer->nprops; j++)
			if (match(&cfg[i], &peer->props[j], prefer_ke, require_ke, out))
				return 0;
	memset(out, 0, sizeof(*out));
	*why = "no proposal of the peer matches the configured ones";
	return SG_ENOENT;
}

void ike_prop_answer(const struct ike_chosen *c, const uint8_t *spi, uint8_t spi_len,
		     struct ike_sa_payload *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->nprops = 1;
	struct ike_proposal *pr = &sa->props[0];
	pr->num = c->num;
	pr->protocol = c->protocol;
	pr->spi_len = spi_len;
	if (spi_len)
		memcpy(pr->spi, spi, spi_len);
	pr->trans[pr->ntrans++] = (struct ike_transform){IKE_TRANS_ENCR, c->encr, c->encr_bits};
	if (c->prf)
		pr->trans[pr->ntrans++] = (struct ike_transform){IKE_TRANS_PRF, c->prf, 0};
	if (c->integ)
		pr->trans[pr->ntrans++] = (struct ike_transform){IKE_TRANS_INTEG, c->integ, 0};
	if (c->ke)
		pr->trans[pr->ntrans++] = (struct ike_transform){IKE_TRANS_KE, c->ke, 0};
	if (c->protocol == IKE_PROTO_ESP)
		pr->trans[pr->ntrans++] = (struct ike_transform){IKE_TRANS_ESN, c->esn, 0};
}

int ike_prop_accept(const struct ike_prop_cfg *cfg, unsigned ncfg,
		    const struct ike_sa_payload *answer, struct ike_chosen *out, const char **why)
{
	static const char *dummy;
	if (!why)
		why = &dummy;
	if (answer->nprops != 1) {
		*why = "the responder's SA payload does not hold exactly one proposal";
		return SG_EPARSE;
	}
	const struct ike_proposal *pr = &answer->props[0];
	unsigned count[6] = {0};
	for (unsigned i = 0; i < pr->ntrans; i++)
		if (++count[pr->trans[i].type] > 1) {
			*why = "the responder chose two transforms of one type";
			return SG_EPARSE;
		}
	if (pr->num < 1 || pr->num > ncfg) {
		*why = "the responder chose a proposal number we did not offer";
		return SG_EPARSE;
	}
	/* Proposal numbers map to our configured proposals in order (ike_prop_offer). */
	if (!match(&cfg[pr->num - 1], pr, 0, false, out)) {
		*why = "the responder chose transforms we did not offer";
		return SG_EPARSE;
	}
	/* Every transform it answered must be one we took (nothing extra). */
	unsigned taken = 1 + !!out->prf + !!out->integ + !!out->ke +
			 (out->protocol == IKE_PROTO_ESP && count[IKE_TRANS_ESN]);
	if (taken != pr->ntrans) {
		*why = "the responder's proposal has transforms we did not offer";
		return SG_EPARSE;
	}
	return 0;
}

const char *ike_chosen_str(const struct ike_chosen *c, char *buf, size_t size)
{
	const char *encr = c->encr == IKE_ENCR_AES_GCM_16	   ? "AES_GCM_16"
			   : c->encr == IKE_ENCR_CHACHA20_POLY1305 ? "CHACHA20_POLY1305"
			   : c->encr == IKE_ENCR_AES_CBC	   ? "AES_CBC"
								   : "?";
	char kl[8] = "";
	if (c->encr_bits)
		snprintf(kl, sizeof(kl), "_%u", c->encr_bits);
	const char *integ = c->integ == SG_INTEG_HMAC_SHA2_256_128   ? "/HMAC_SHA2_256_128"
			    : c->integ == SG_INTEG_HMAC_SHA2_384_192 ? "/HMAC_SHA2_384_192"
			    : c->integ == SG_INTEG_HMAC_SHA2_512_256 ? "/HMAC_SHA2_512_256"
								     : "";
	const char *prf = c->prf == SG_PRF_HMAC_SHA2_256   ? "/PRF_HMAC_SHA2_256"
			  : c->prf == SG_PRF_HMAC_SHA2_384 ? "/PRF_HMAC_SHA2_384"
			  : c->prf == SG_PRF_HMAC_SHA2_512 ? "/PRF_HMAC_SHA2_512"
							   : "";
	const char *ke = c->ke == SG_KE_MODP_2048    ? "/MODP_2048"
			 : c->ke == SG_KE_MODP_3072  ? "/MODP_3072"
			 : c->ke == SG_KE_ECP_256    ? "/ECP_256"
			 : c->ke == SG_KE_ECP_384    ? "/ECP_384"
			 : c->ke == SG_KE_ECP_521    ? "/ECP_521"
			 : c->ke == SG_KE_CURVE25519 ? "/CURVE_25519"
						     : "";
	snprintf(buf, size, "%s%s%s%s%s%s", encr, kl, integ, prf, ke,
		 c->protocol == IKE_PROTO_ESP && c->esn ? "/ESN" : "");
	return buf;
}
