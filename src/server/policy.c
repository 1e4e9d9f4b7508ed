/* Policy checks and expansion (policy.h says what and why). */
#include "server/policy.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "server/api.h"
#include "server/audit.h"
#include "server/srv_int.h"

/* ---- problems ------------------------------------------------------------------------------ */

static void add(json_t *list, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add(json_t *list, const char *field, const char *fmt, ...)
{
	char msg[320];
	va_list ap;

	if (!list)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* A message may quote input: keep it valid UTF-8 for the JSON answer. */
	sg_utf8_sanitize(msg);
	json_array_append_new(list, json_pack("{s:s,s:s}", "field", field, "detail", msg));
}

/* ---- names --------------------------------------------------------------------------------- */

static bool charset(const char *s, const char *extra, size_t max)
{
	size_t n = strlen(s);

	if (!n || n > max)
		return false;
	for (const char *p = s; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || (*p && strchr(extra, *p))))
			return false;
	}
	return true;
}

bool pol_peer_name_ok(const char *s)
{
	return charset(s, "-", POL_PEER_NAME_MAX) && s[0] != '-';
}

bool pol_tag_ok(const char *s)
{
	return charset(s, "._-", POL_NAME_MAX);
}

/* A connection name swanctl and VICI take as a section name. */
static bool conn_name_ok(const char *s)
{
	return charset(s, "._-", POL_NAME_MAX) && s[0] != '.' && s[0] != '-';
}

static bool ifname_ok(const char *s)
{
	return charset(s, "._-", 15) && strcmp(s, ".") && strcmp(s, "..");
}

/* A certificate reference: a file name in the node's swanctl x509 directory. */
static bool file_ref_ok(const char *s)
{
	return charset(s, "._-", 128) && s[0] != '.';
}

static bool is_uuid(const char *s)
{
	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (sg_hexval(s[i]) < 0) {
			return false;
		}
	}
	return true;
}

/* RFC 1123 host name: labels of letters, digits and '-', 1..63 each, not starting or ending
 * with '-', at most 253 in all. */
static bool hostname_ok(const char *s)
{
	size_t n = strlen(s), label = 0;

	if (!n || n > 253)
		return false;
	for (size_t i = 0; i <= n; i++) {
		char ch = s[i];

		if (ch == '.' || ch == 0) {
			if (!label || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-'))
			return false;
		if (!label && ch == '-')
			return false;
		if (++label > 63)
			return false;
	}
	return true;
}

/* ---- proposals ------------------------------------------------------------------------------
 * strongSwan's proposal keywords (https://docs.strongswan.org/docs/5.9/config/IKEv2CipherSuites.html
 * and ESPCipherSuites.html): encryption, integrity, PRF, key exchange and ESN tokens joined by
 * '-'. Kinds: E encryption, A AEAD encryption, I integrity, P PRF, D key exchange, N ESN. */

struct alg {
	const char *name;
	char kind;
	bool weak;
};

static const struct alg algs[] = {
    {"aes128", 'E', false},	       {"aes192", 'E', false},
    {"aes256", 'E', false},	       {"aes128ctr", 'E', false},
    {"aes192ctr", 'E', false},	       {"aes256ctr", 'E', false},
    {"camellia128", 'E', false},       {"camellia192", 'E', false},
    {"camellia256", 'E', false},       {"3des", 'E', true},
    {"blowfish128", 'E', true},	       {"cast128", 'E', true},
    {"null", 'E', true},	       {"aes128gcm8", 'A', false},
    {"aes128gcm12", 'A', false},       {"aes128gcm16", 'A', false},
    {"aes192gcm8", 'A', false},	       {"aes192gcm12", 'A', false},
    {"aes192gcm16", 'A', false},       {"aes256gcm8", 'A', false},
    {"aes256gcm12", 'A', false},       {"aes256gcm16", 'A', false},
    {"aes128gcm64", 'A', false},       {"aes128gcm96", 'A', false},
    {"aes128gcm128", 'A', false},      {"aes256gcm64", 'A', false},
    {"aes256gcm96", 'A', false},       {"aes256gcm128", 'A', false},
    {"aes128ccm8", 'A', false},	       {"aes128ccm12", 'A', false},
    {"aes128ccm16", 'A', false},       {"aes256ccm8", 'A', false},
    {"aes256ccm12", 'A', false},       {"aes256ccm16", 'A', false},
    {"chacha20poly1305", 'A', false},  {"md5", 'I', true},
    {"md5_128", 'I', true},	       {"sha1", 'I', false},
    {"sha1_160", 'I', false},	       {"sha256", 'I', false},
    {"sha256_96", 'I', true},	       {"sha384", 'I', false},
    {"sha512", 'I', false},	       {"aesxcbc", 'I', false},
    {"aescmac", 'I', false},	       {"prfmd5", 'P', true},
    {"prfsha1", 'P', false},	       {"prfsha256", 'P', false},
    {"prfsha384", 'P', false},	       {"prfsha512", 'P', false},
    {"prfaesxcbc", 'P', false},	       {"prfaescmac", 'P', false},
    {"modp768", 'D', true},	       {"modp1024", 'D', true},
    {"modp1536", 'D', true},	       {"modp2048", 'D', false},
    {"modp3072", 'D', false},	       {"modp4096", 'D', false},
    {"modp6144", 'D', false},	       {"modp8192", 'D', false},
    {"modp2048s256", 'D', false},      {"ecp192", 'D', true},
    {"ecp224", 'D', false},	       {"ecp256", 'D', false},
    {"ecp384", 'D', false},	       {"ecp521", 'D', false},
    {"ecp224bp", 'D', false},	       {"ecp256bp", 'D', false},
    {"ecp384bp", 'D', false},	       {"ecp512bp", 'D', false},
    {"curve25519", 'D', false},	       {"x25519", 'D', false},
    {"curve448", 'D', false},	       {"x448", 'D', false},
    {"esn", 'N', false},	       {"noesn", 'N', false},
};

static const struct alg *alg_find(const char *tok, size_t n)
{
	for (size_t i = 0; i < SG_ARRAY_LEN(algs); i++) {
		if (strlen(algs[i].name) == n && !memcmp(algs[i].name, tok, n))
			return &algs[i];
	}
	return NULL;
}

int pol_proposal_check(const char *prop, enum pol_proto proto, bool *aead, const char **weak_name,
		       char *why, size_t whylen)
{
	static const char *const pname[] = {"IKE", "ESP", "AH"};
	int n_e = 0, n_a = 0, n_i = 0, n_p = 0, n_d = 0, n_n = 0;
	const char *p = prop;

	*aead = false;
	*weak_name = NULL;
	if (!strcmp(prop, "default"))
		return 0;
	if (!*prop || strlen(prop) > 256) {
		snprintf(why, whylen, "a proposal is 1 to 256 characters");
		return -1;
	}
	while (*p) {
		const char *dash = strchr(p, '-');
		size_t n = dash ? (size_t)(dash - p) : strlen(p);
		const struct alg *a = alg_find(p, n);

		if (!a) {
			snprintf(why, whylen, "unknown algorithm \"%.*s\"", (int)SG_MIN(n, 64), p);
			return -1;
		}
		if (a->weak && !*weak_name)
			*weak_name = a->name;
		switch (a->kind) {
		case 'E': n_e++; break;
		case 'A': n_a++; break;
		case 'I': n_i++; break;
		case 'P': n_p++; break;
		case 'D': n_d++; break;
		case 'N': n_n++; break;
		}
		if (!dash)
			break;
		if (!dash[1]) {
			snprintf(why, whylen, "a proposal may not end with '-'");
			return -1;
		}
		p = dash + 1;
	}
	*aead = n_a > 0;
	if (proto == POL_AH) {
		if (n_e || n_a || n_p || !n_i) {
			snprintf(why, whylen,
				 "an AH proposal has integrity algorithms only (and an optional key "
				 "exchange)");
			return -1;
		}
		return 0;
	}
	if (n_a && n_e) {
		snprintf(why, whylen,
			 "AEAD (GCM, CCM, ChaCha20-Poly1305) and other ciphers cannot share a "
			 "%s proposal",
			 pname[proto]);
		return -1;
	}
	if (!n_a && !n_e) {
		snprintf(why, whylen, "a %s proposal needs an encryption algorithm", pname[proto]);
		return -1;
	}
	if (n_a && n_i) {
		snprintf(why, whylen, "an AEAD cipher authenticates itself: no integrity algorithm");
		return -1;
	}
	if (proto == POL_IKE) {
		if (n_n) {
			snprintf(why, whylen, "esn/noesn belong to ESP proposals");
			return -1;
		}
		if (n_a && !n_p) {
			/* RFC 7296 section 3.3.2: with an AEAD cipher the PRF cannot come from an
			 * integrity algorithm, so it must be named. */
			snprintf(why, whylen, "an IKE proposal with an AEAD cipher must name a PRF "
					      "(e.g. prfsha256)");
			return -1;
		}
		if (!n_a && !n_i) {
			snprintf(why, whylen, "an IKE proposal needs an integrity algorithm");
			return -1;
		}
		if (!n_d) {
			snprintf(why, whylen, "an IKE proposal needs a key exchange (e.g. x25519)");
			return -1;
		}
		return 0;
	}
	if (n_p) {
		snprintf(why, whylen, "PRFs belong to IKE proposals");
		return -1;
	}
	if (!n_a && !n_i) {
		snprintf(why, whylen, "an ESP proposal without AEAD needs an integrity algorithm");
		return -1;
	}
	return 0;
}

/* ---- checks -------------------------------------------------------------------------------- */

static const char *str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* Present and not null. */
static bool has(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return v && !json_is_null(v);
}

static bool check_addr(const char *s)
{
	int fam;
	uint8_t a[16];

	return s && ( !strcmp(s, "%any") || !srv_addr_parse(&fam, a, s) || hostname_ok(s));
}

/* Traffic selectors: a prefix with no host bits, or an address (a /32 or /128). Returns the
 * families seen (bit 0: IPv4, bit 1: IPv6). */
static unsigned check_ts(json_t *arr, const char *tf, const char *name, json_t *errors)
{
	unsigned fams = 0;
	size_t i;
	json_t *e;
	char f[96];

	json_array_foreach(arr, i, e)
	{
		const char *s = json_string_value(e), *why = NULL;
		struct srv_prefix p;
		int fam;
		uint8_t a[16];

		snprintf(f, sizeof(f), "%s.%s[%zu]", tf, name, i);
		if (!s) {
			add(errors, f, "must be a string");
		} else if (!srv_prefix_parse(&p, s, false, &why)) {
			fams |= p.family == 4 ? 1u : 2u;
		} else if (!strchr(s, '/') && !srv_addr_parse(&fam, a, s)) {
			fams |= fam == 4 ? 1u : 2u;
		} else {
			add(errors, f, "\"%.64s\" is not a subnet (ADDRESS/LENGTH, no host bits set) or "
				       "an address%s%s",
			    s, why ? ": " : "", why ? why : "");
		}
	}
	return fams;
}

static void check_proposals(json_t *t, const char *tf, const char *key, enum pol_proto proto,
			    int version, json_t *errors, json_t *warnings)
{
	json_t *arr = json_object_get(t, key), *e;
	size_t i;
	char f[96], why[160];

	if (!arr || json_is_null(arr))
		return;
	if (!json_array_size(arr)) {
		snprintf(f, sizeof(f), "%s.%s", tf, key);
		add(errors, f, "give at least one proposal, or leave the field out for strongSwan's "
			       "defaults");
	}
	json_array_foreach(arr, i, e)
	{
		const char *weak = NULL;
		bool aead = false;

		snprintf(f, sizeof(f), "%s.%s[%zu]", tf, key, i);
		if (!json_is_string(e)) {
			add(errors, f, "must be a string");
			continue;
		}
		if (pol_proposal_check(json_string_value(e), proto, &aead, &weak, why,
				       sizeof(why))) {
			add(errors, f, "%s", why);
			continue;
		}
		if (aead && version == 1)
			add(errors, f,
			    "AEAD ciphers (GCM, CCM, ChaCha20-Poly1305) need IKEv2: set version = 2");
		if (weak)
			add(warnings, f, "%s is weak; keep it only for old peers", weak);
	}
}

static void check_lifetime(json_t *t, const char *tf, const char *key, json_t *errors)
{
	json_t *v = json_object_get(t, key);
	char f[96];

	if (!v || json_is_null(v))
		return;
	snprintf(f, sizeof(f), "%s.%s", tf, key);
	if (json_integer_value(v) < POL_LIFETIME_MIN || json_integer_value(v) > POL_LIFETIME_MAX)
		add(errors, f, "SA lifetimes are 300 s (5 minutes) to 86400 s (24 hours), not %lld",
		    (long long)json_integer_value(v));
}

static const char *const ipsec_only[] = {
    "version",	 "local_addrs",	 "remote_addrs", "local_ts", "remote_ts",  "proposals",
    "esp_proposals", "ah_proposals", "auth",	     "secret",	 "local_id",   "remote_id",
    "local_cert",	 "rekey_time",	 "life_time",	     "dpd_delay", "dpd_action", "mode",
    "start_action",	 "encap"};

static void check_wireguard(json_t *t, const char *tf, const struct pol_lookup *lk,
			    json_t *errors)
{
	char f[96];
	const char *cid = str(t, "client_id"), *ifn = str(t, "interface");

	for (size_t i = 0; i < SG_ARRAY_LEN(ipsec_only); i++) {
		if (has(t, ipsec_only[i])) {
			snprintf(f, sizeof(f), "%s.%s", tf, ipsec_only[i]);
			add(errors, f, "not a field of a wireguard tunnel");
		}
	}
	snprintf(f, sizeof(f), "%s.client_id", tf);
	if (!cid)
		add(errors, f, "required: the SecureGuard client whose configuration the node runs");
	else if (!is_uuid(cid))
		add(errors, f, "must be a client id (UUID)");
	else if (lk && lk->client_exists && !lk->client_exists(lk->ctx, cid))
		add(errors, f, "no such client");
	if (ifn && !ifname_ok(ifn)) {
		snprintf(f, sizeof(f), "%s.interface", tf);
		add(errors, f, "an interface name: 1 to 15 of A-Z a-z 0-9 . _ -");
	}
}

static void check_ipsec(json_t *t, const char *tf, bool templ, json_t *errors, json_t *warnings)
{
	static const char *const from_peers[] = {"local_addrs", "remote_addrs", "local_ts",
						 "remote_ts"};
	char f[96];
	const char *auth = str(t, "auth"), *secret = str(t, "secret");
	int version = has(t, "version") ? (int)json_integer_value(json_object_get(t, "version"))
					: 2;
	unsigned lf = 0, rf = 0;

	if (has(t, "client_id") || has(t, "interface")) {
		snprintf(f, sizeof(f), "%s.%s", tf, has(t, "client_id") ? "client_id" : "interface");
		add(errors, f, "only for tunnels of type wireguard");
	}
	if (has(t, "version") && version != 1 && version != 2) {
		snprintf(f, sizeof(f), "%s.version", tf);
		add(errors, f, "the IKE version: 1 or 2");
	}
	if (templ) {
		for (size_t i = 0; i < SG_ARRAY_LEN(from_peers); i++) {
			if (has(t, from_peers[i])) {
				snprintf(f, sizeof(f), "%s.%s", tf, from_peers[i]);
				add(errors, f,
				    "in a topology, addresses and traffic selectors come from each "
				    "peer's address and subnets; leave it out");
			}
		}
	} else {
		json_t *ra = json_object_get(t, "remote_addrs"), *la = json_object_get(t, "local_addrs");
		json_t *lt = json_object_get(t, "local_ts"), *rt = json_object_get(t, "remote_ts");
		const char *sa = str(t, "start_action");
		size_t i;
		json_t *e;

		snprintf(f, sizeof(f), "%s.remote_addrs", tf);
		if (!ra || !json_array_size(ra)) {
			if (!sa || strcmp(sa, "none"))
				add(errors, f,
				    "required: the peer's address (or %%any with start_action = "
				    "none, to only respond)");
		}
		json_array_foreach(ra, i, e)
		{
			snprintf(f, sizeof(f), "%s.remote_addrs[%zu]", tf, i);
			if (!check_addr(json_string_value(e)))
				add(errors, f, "\"%.64s\" is not an address, a host name or %%any",
				    json_is_string(e) ? json_string_value(e) : "(not a string)");
			else if (json_is_string(e) && !strcmp(json_string_value(e), "%any") && sa &&
				 strcmp(sa, "none"))
				add(errors, f, "%%any cannot be initiated to: start_action = none");
		}
		json_array_foreach(la, i, e)
		{
			snprintf(f, sizeof(f), "%s.local_addrs[%zu]", tf, i);
			if (!check_addr(json_string_value(e)))
				add(errors, f, "\"%.64s\" is not an address, a host name or %%any",
				    json_is_string(e) ? json_string_value(e) : "(not a string)");
		}
		snprintf(f, sizeof(f), "%s.local_ts", tf);
		if (!lt || !json_array_size(lt))
			add(errors, f, "required: at least one traffic selector");
		else
			lf = check_ts(lt, tf, "local_ts", errors);
		snprintf(f, sizeof(f), "%s.remote_ts", tf);
		if (!rt || !json_array_size(rt))
			add(errors, f, "required: at least one traffic selector");
		else
			rf = check_ts(rt, tf, "remote_ts", errors);
		if (lf && rf && !(lf & rf))
			add(errors, f,
			    "no local and remote traffic selectors of the same address family");
	}
	snprintf(f, sizeof(f), "%s.auth", tf);
	if (!auth) {
		add(errors, f, "required: psk or pubkey");
	} else if (!strcmp(auth, "psk")) {
		snprintf(f, sizeof(f), "%s.secret", tf);
		if (secret && api_utf8_len(secret) < POL_SECRET_MIN)
			add(errors, f, "a pre-shared key has at least 8 characters");
		else if (secret && api_utf8_len(secret) > POL_SECRET_MAX)
			add(errors, f, "a pre-shared key has at most 256 characters");
		else if (!secret && !templ && !json_is_true(json_object_get(t, "has_secret")))
			add(errors, f, "required with auth = psk (8 characters or more)");
		if (has(t, "local_cert")) {
			snprintf(f, sizeof(f), "%s.local_cert", tf);
			add(errors, f, "only with auth = pubkey");
		}
	} else {
		const char *cert = str(t, "local_cert");

		snprintf(f, sizeof(f), "%s.local_cert", tf);
		if (!cert)
			add(errors, f, "required with auth = pubkey: the certificate's file name in "
				       "the node's swanctl x509 directory");
		else if (!file_ref_ok(cert))
			add(errors, f, "a certificate reference is a file name (A-Z a-z 0-9 . _ -, "
				       "not starting with '.')");
		if (secret) {
			snprintf(f, sizeof(f), "%s.secret", tf);
			add(errors, f, "only with auth = psk");
		}
		if (!has(t, "remote_id")) {
			snprintf(f, sizeof(f), "%s.remote_id", tf);
			add(warnings, f, "without remote_id the peer must present a certificate for "
					 "its address; name the identity it carries");
		}
	}
	check_proposals(t, tf, "proposals", POL_IKE, version, errors, warnings);
	check_proposals(t, tf, "esp_proposals", POL_ESP, version, errors, warnings);
	if (has(t, "ah_proposals")) {
		snprintf(f, sizeof(f), "%s.ah_proposals", tf);
		add(warnings, f,
		    "AH has limited support: no NAT traversal, none in macOS's IPsec, none with "
		    "strongSwan's userspace ESP (kernel-libipsec)");
		check_proposals(t, tf, "ah_proposals", POL_AH, version, errors, warnings);
		if (has(t, "esp_proposals")) {
			snprintf(f, sizeof(f), "%s.ah_proposals", tf);
			add(errors, f, "a tunnel is ESP or AH, not both");
		}
	}
	check_lifetime(t, tf, "rekey_time", errors);
	check_lifetime(t, tf, "life_time", errors);
	if (has(t, "rekey_time") && has(t, "life_time") &&
	    json_integer_value(json_object_get(t, "life_time")) <=
		json_integer_value(json_object_get(t, "rekey_time"))) {
		snprintf(f, sizeof(f), "%s.life_time", tf);
		add(errors, f, "life_time must be longer than rekey_time (the SA is rekeyed before "
			       "it expires)");
	}
	if (has(t, "dpd_delay")) {
		json_int_t d = json_integer_value(json_object_get(t, "dpd_delay"));

		if (d < 0 || d > POL_DPD_MAX) {
			snprintf(f, sizeof(f), "%s.dpd_delay", tf);
			add(errors, f, "seconds between dead peer detection checks: 0 (off) to 3600");
		}
	}
	if (str(t, "mode") && !strcmp(str(t, "mode"), "transport")) {
		snprintf(f, sizeof(f), "%s.mode", tf);
		add(warnings, f, "transport mode: not with strongSwan's userspace ESP "
				 "(kernel-libipsec), which has tunnel mode only");
	}
	if (str(t, "start_action") && !strcmp(str(t, "start_action"), "trap")) {
		snprintf(f, sizeof(f), "%s.start_action", tf);
		add(warnings, f, "trap needs kernel IPsec policies: strongSwan's userspace ESP "
				 "(kernel-libipsec) and Windows do not trap; use start");
	}
	if (has(t, "esp_proposals")) {
		json_t *e;
		size_t i;

		json_array_foreach(json_object_get(t, "esp_proposals"), i, e)
		{
			if (json_is_string(e) && strstr(json_string_value(e), "chacha20poly1305")) {
				snprintf(f, sizeof(f), "%s.esp_proposals[%zu]", tf, i);
				add(warnings, f, "ChaCha20-Poly1305 ESP: not in Windows' or macOS's "
						 "IPsec; use an AES-GCM proposal as well");
				break;
			}
		}
	}
}

static void check_selectors(json_t *sel, const char *field, const struct pol_lookup *lk,
			    json_t *errors)
{
	size_t i;
	json_t *e;
	char f[96];

	json_array_foreach(sel, i, e)
	{
		const char *s = json_string_value(e);

		snprintf(f, sizeof(f), "%s[%zu]", field, i);
		if (!s) {
			add(errors, f, "must be a string");
		} else if (is_uuid(s)) {
			if (lk && lk->peer_exists && !lk->peer_exists(lk->ctx, s))
				add(errors, f, "no such peer");
		} else if (!pol_tag_ok(s)) {
			add(errors, f, "a peer id (UUID) or a tag (1 to 64 of A-Z a-z 0-9 . _ -)");
		}
	}
}

/* Appends name to a short list of names ("a, b, c and 4 more" once finished by names_end). */
#define NAMES_SHOWN 4
static void names_add(char *buf, size_t len, size_t *n, const char *name)
{
	size_t used = strlen(buf);

	if (*n < NAMES_SHOWN)
		snprintf(buf + used, len - used, "%s%s", *n ? ", " : "", name);
	(*n)++;
}

static void names_end(char *buf, size_t len, size_t n)
{
	size_t used = strlen(buf);

	if (n > NAMES_SHOWN)
		snprintf(buf + used, len - used, " and %zu more", n - NAMES_SHOWN);
}

/* Certificate references that exist (the design's "certificate paths exist"): every peer the
 * policy selects must have the local_cert file, and its key, as its agent last reported its
 * swanctl directories. A peer that has not reported them yet gets a warning: its agent checks
 * the files itself before it applies the tunnel. */
static void check_certs(json_t *pol, const struct pol_lookup *lk, json_t *errors, json_t *warnings)
{
	static const char *const roles[] = {"left", "right", "hubs", "spokes", "members"};
	json_t *topo = json_object_get(pol, "topology"), *t;
	size_t i;

	json_array_foreach(json_object_get(pol, "tunnels"), i, t)
	{
		const char *cert = str(t, "local_cert"), *auth = str(t, "auth");
		char f[48], missing[160] = "", unknown[160] = "";
		size_t nmiss = 0, nunk = 0;

		if (!json_is_object(t) || !cert || !file_ref_ok(cert) || !auth ||
		    strcmp(auth, "pubkey"))
			continue;
		for (size_t p = 0; p < lk->npeers; p++) {
			const struct pol_peer *pe = &lk->peers[p];
			bool sel = false;

			if (json_is_object(topo)) {
				for (size_t k = 0; k < SG_ARRAY_LEN(roles) && !sel; k++)
					sel = pol_selects(json_object_get(topo, roles[k]), pe);
			} else {
				sel = pol_selects(json_object_get(pol, "applies_to"), pe);
			}
			if (!sel)
				continue;
			if (!pe->certs)
				names_add(unknown, sizeof(unknown), &nunk, pe->name);
			else if (!pol_list_has(pe->certs, cert))
				names_add(missing, sizeof(missing), &nmiss, pe->name);
		}
		names_end(missing, sizeof(missing), nmiss);
		names_end(unknown, sizeof(unknown), nunk);
		snprintf(f, sizeof(f), "tunnels[%zu].local_cert", i);
		if (nmiss)
			add(errors, f,
			    "\"%.64s\" (in x509/, its key in private/) is not on %s %s, as %s "
			    "last reported",
			    cert, nmiss == 1 ? "peer" : "peers", missing,
			    nmiss == 1 ? "its agent" : "their agents");
		if (nunk)
			add(warnings, f,
			    "not checked on %s %s (no report yet): %s checks for \"%.64s\" before "
			    "applying the tunnel",
			    nunk == 1 ? "peer" : "peers", unknown,
			    nunk == 1 ? "its agent" : "each agent", cert);
	}
}

size_t pol_check(json_t *pol, const struct pol_lookup *lk, json_t *errors, json_t *warnings)
{
	json_t *topo = json_object_get(pol, "topology"), *tunnels = json_object_get(pol, "tunnels");
	json_t *applies = json_object_get(pol, "applies_to"), *t;
	size_t before = json_array_size(errors), i;
	const char *name = str(pol, "name"), *type = NULL;
	char tf[32];

	if (!name)
		add(errors, "name", "required");
	else if (!conn_name_ok(name))
		add(errors, "name",
		    "1 to 64 of A-Z a-z 0-9 . _ - (it names tunnels), not starting with . or -");
	if (json_is_object(topo)) {
		static const struct {
			const char *type, *keys[2];
		} roles[] = {{"site-to-site", {"left", "right"}},
			     {"hub-and-spoke", {"hubs", "spokes"}},
			     {"mesh", {"members", NULL}}};
		static const char *const all[] = {"left", "right", "hubs", "spokes", "members"};

		type = str(topo, "type");
		if (!type)
			add(errors, "topology.type", "required: site-to-site, hub-and-spoke or mesh");
		for (size_t r = 0; type && r < SG_ARRAY_LEN(roles); r++) {
			if (strcmp(type, roles[r].type))
				continue;
			for (size_t k = 0; k < SG_ARRAY_LEN(all); k++) {
				bool mine = !strcmp(all[k], roles[r].keys[0]) ||
					    (roles[r].keys[1] && !strcmp(all[k], roles[r].keys[1]));
				json_t *sel = json_object_get(topo, all[k]);
				char f[64];

				snprintf(f, sizeof(f), "topology.%s", all[k]);
				if (!mine && sel && !json_is_null(sel))
					add(errors, f, "not a role of a %s topology", type);
				else if (mine && (!sel || !json_array_size(sel)))
					add(errors, f, "required: peer ids or tags");
				else if (mine)
					check_selectors(sel, f, lk, errors);
			}
		}
		if (applies && json_array_size(applies))
			add(errors, "applies_to",
			    "a topology selects its peers itself (topology.%s); leave applies_to "
			    "out",
			    type && !strcmp(type, "mesh") ? "members" : "hubs/spokes/left/right");
		if (json_array_size(tunnels) != 1)
			add(errors, "tunnels",
			    "a topology takes exactly one tunnel: the template of every pair");
	} else {
		if (!applies || !json_array_size(applies))
			add(errors, "applies_to", "required: the peers (ids or tags) the tunnels "
						  "apply to");
		else
			check_selectors(applies, "applies_to", lk, errors);
		if (!tunnels || !json_array_size(tunnels))
			add(errors, "tunnels", "required: at least one tunnel");
	}
	json_array_foreach(tunnels, i, t)
	{
		const char *tname = str(t, "name"), *ttype = str(t, "type");
		json_t *u;
		size_t j;

		snprintf(tf, sizeof(tf), "tunnels[%zu]", i);
		if (!json_is_object(t))
			continue;
		{
			char f[48];

			snprintf(f, sizeof(f), "%s.name", tf);
			if (!tname && !type)
				add(errors, f, "required: the connection's name");
			else if (tname && !conn_name_ok(tname))
				add(errors, f, "1 to 64 of A-Z a-z 0-9 . _ -, not starting with . or -");
			json_array_foreach(tunnels, j, u)
			{
				if (j < i && tname && str(u, "name") && !strcmp(str(u, "name"), tname)) {
					add(errors, f, "two tunnels named \"%s\"", tname);
					break;
				}
			}
		}
		if (ttype && !strcmp(ttype, "wireguard")) {
			if (type) {
				char f[48];

				snprintf(f, sizeof(f), "%s.type", tf);
				add(errors, f, "a topology's template is an ipsec tunnel");
			}
			check_wireguard(t, tf, lk, errors);
		} else {
			check_ipsec(t, tf, type != NULL, errors, warnings);
		}
	}
	if (lk && lk->peers)
		check_certs(pol, lk, errors, warnings);
	return json_array_size(errors) - before;
}

/* ---- expansion ----------------------------------------------------------------------------- */

bool pol_list_has(const char *list, const char *item)
{
	size_t n = strlen(item);

	for (const char *p = list; p && *p;) {
		const char *c = strchr(p, ',');
		size_t len = c ? (size_t)(c - p) : strlen(p);

		if (len == n && !memcmp(p, item, n))
			return true;
		p += len + (c ? 1 : 0);
	}
	return false;
}

bool pol_selects(json_t *selectors, const struct pol_peer *peer)
{
	size_t i;
	json_t *e;

	json_array_foreach(selectors, i, e)
	{
		const char *s = json_string_value(e);

		if (!s)
			continue;
		if (!strcmp(s, peer->id) || pol_list_has(peer->tags, s))
			return true;
	}
	return false;
}

/* The peer's traffic selectors: its subnets, else its own address as a host route. */
static void add_ts(json_t *arr, const struct pol_peer *p)
{
	if (p->subnets && *p->subnets) {
		for (const char *s = p->subnets; *s;) {
			const char *c = strchr(s, ',');
			size_t n = c ? (size_t)(c - s) : strlen(s);

			if (n)
				json_array_append_new(arr, json_stringn(s, n));
			s += n + (c ? 1 : 0);
		}
	} else if (p->address) {
		char buf[80];

		snprintf(buf, sizeof(buf), "%s/%d", p->address, strchr(p->address, ':') ? 128 : 32);
		json_array_append_new(arr, json_string(buf));
	}
}

static void set_default(json_t *t, const char *k, json_t *v)
{
	if (!has(t, k))
		json_object_set(t, k, v);
	json_decref(v);
}

/* Fills the defaults an agent needs to apply the tunnel without guessing. */
static void defaults(json_t *t)
{
	if (!has(t, "type"))
		json_object_set_new(t, "type", json_string("ipsec"));
	if (strcmp(str(t, "type"), "ipsec"))
		return;
	set_default(t, "version", json_integer(2));
	set_default(t, "local_addrs", json_pack("[s]", "%any"));
	set_default(t, "mode", json_string("tunnel"));
	set_default(t, "start_action", json_string("start"));
	set_default(t, "rekey_time", json_integer(POL_DEFAULT_REKEY));
	set_default(t, "life_time",
		    json_integer(json_integer_value(json_object_get(t, "rekey_time")) * 11 / 10));
	set_default(t, "dpd_delay", json_integer(POL_DEFAULT_DPD));
	set_default(t, "dpd_action", json_string("restart"));
	set_default(t, "encap", json_false());
}

struct exp {
	json_t *out, *problems;
	const struct pol_secrets *sec;
	const struct pol_peer *peers;
	size_t npeers, self;
};

static bool name_taken(struct exp *x, const char *name, const char *policy)
{
	size_t i;
	json_t *t;

	json_array_foreach(x->out, i, t)
	{
		if (!strcmp(str(t, "name"), name)) {
			if (x->problems)
				json_array_append_new(
				    x->problems,
				    json_sprintf("policy %s: tunnel %s is also in policy %s, which has "
						 "priority; skipped",
						 policy, name, str(t, "policy_name")));
			return true;
		}
	}
	return false;
}

static void tag_policy(json_t *t, json_t *pol)
{
	json_object_set(t, "policy_id", json_object_get(pol, "id"));
	json_object_set(t, "policy_name", json_object_get(pol, "name"));
	json_object_set(t, "policy_version", json_object_get(pol, "version"));
	json_object_set(t, "priority", json_object_get(pol, "priority"));
}

/* The tunnel's secret in clear: the stored one (the policy's "secrets" map, by the tunnel's
 * name in the policy, "" for an unnamed template), else for a topology pair one derived for
 * derive_name. false when a stored secret does not open. */
static bool fill_secret(struct exp *x, json_t *t, json_t *pol, const char *key,
			const char *derive_name)
{
	const char *sealed = str(json_object_get(pol, "secrets"), key ? key : "");
	char *s = NULL;

	if (sealed && x->sec && x->sec->open)
		s = x->sec->open(x->sec->ctx, str(pol, "id"), sealed);
	else if (!sealed && derive_name && x->sec && x->sec->derive)
		s = x->sec->derive(x->sec->ctx, str(pol, "id"), derive_name);
	json_object_del(t, "has_secret");
	json_object_del(t, "secret");
	if (!s)
		return !sealed && !derive_name;
	json_object_set_new(t, "secret", json_string(s));
	sg_memzero(s, strlen(s));
	free(s);
	return true;
}

static void explicit_tunnels(struct exp *x, json_t *pol)
{
	const struct pol_peer *me = &x->peers[x->self];
	json_t *t;
	size_t i;

	if (!pol_selects(json_object_get(pol, "applies_to"), me))
		return;
	json_array_foreach(json_object_get(pol, "tunnels"), i, t)
	{
		json_t *c;

		if (name_taken(x, str(t, "name"), str(pol, "name")))
			continue;
		c = json_deep_copy(t);
		if (!c)
			continue;
		if (!fill_secret(x, c, pol, str(t, "name"), NULL)) {
			if (x->problems)
				json_array_append_new(
				    x->problems,
				    json_sprintf("policy %s: tunnel %s: its stored secret does not "
						 "decrypt (wrong key file?); skipped",
						 str(pol, "name"), str(t, "name")));
			json_decref(c);
			continue;
		}
		defaults(c);
		tag_policy(c, pol);
		json_array_append_new(x->out, c);
	}
}

/* One pair's tunnel on our side: me (local) with other (remote), named base-first-second on
 * both sides. extra are peers whose subnets join the local (extra_local) or remote selectors
 * (hub-and-spoke: the other spokes). */
static void pair(struct exp *x, json_t *pol, json_t *templ, const struct pol_peer *other,
		 bool initiator, const char *first, const char *second,
		 const struct pol_peer *const *extra, size_t nextra, bool extra_local)
{
	const struct pol_peer *me = &x->peers[x->self];
	const char *base = str(templ, "name") ? str(templ, "name") : str(pol, "name");
	char name[POL_NAME_MAX + 2 * POL_PEER_NAME_MAX + 3];
	json_t *t, *lts, *rts;

	snprintf(name, sizeof(name), "%s-%s-%s", base, first, second);
	if (name_taken(x, name, str(pol, "name")))
		return;
	t = json_deep_copy(templ);
	if (!t)
		return;
	json_object_set_new(t, "name", json_string(name));
	json_object_set_new(t, "local_addrs", json_pack("[s]", me->address));
	json_object_set_new(t, "remote_addrs", json_pack("[s]", other->address));
	if (!has(t, "local_id"))
		json_object_set_new(t, "local_id", json_string(me->address));
	if (!has(t, "remote_id"))
		json_object_set_new(t, "remote_id", json_string(other->address));
	lts = json_array();
	rts = json_array();
	add_ts(lts, me);
	add_ts(rts, other);
	for (size_t i = 0; i < nextra; i++)
		add_ts(extra_local ? lts : rts, extra[i]);
	json_object_set_new(t, "local_ts", lts);
	json_object_set_new(t, "remote_ts", rts);
	/* One side starts the pair, the other answers; either restarts it when it is down. */
	if (!has(t, "start_action"))
		json_object_set_new(t, "start_action", json_string(initiator ? "start" : "none"));
	if (!strcmp(str(t, "auth") ? str(t, "auth") : "psk", "psk")) {
		if (!fill_secret(x, t, pol, str(templ, "name"), name)) {
			if (x->problems)
				json_array_append_new(
				    x->problems,
				    json_sprintf("policy %s: tunnel %s: no secret (the stored one does "
						 "not decrypt); skipped",
						 str(pol, "name"), name));
			json_decref(t);
			return;
		}
	} else {
		json_object_del(t, "has_secret");
	}
	defaults(t);
	tag_policy(t, pol);
	json_array_append_new(x->out, t);
}

static bool usable(struct exp *x, json_t *pol, const struct pol_peer *p)
{
	if (p->address && *p->address)
		return true;
	if (x->problems && p == &x->peers[x->self])
		json_array_append_new(x->problems,
				      json_sprintf("policy %s: this peer has no address; set one "
						   "(PUT /api/peers/{id}) to join its topology",
						   str(pol, "name")));
	return false;
}

static void topology_tunnels(struct exp *x, json_t *pol, json_t *topo)
{
	const struct pol_peer *me = &x->peers[x->self], **group = NULL;
	const char *type = str(topo, "type");
	json_t *templ = json_array_get(json_object_get(pol, "tunnels"), 0);
	size_t n = 0;

	if (!type || !json_is_object(templ) || !usable(x, pol, me))
		return;
	group = calloc(x->npeers ? x->npeers : 1, sizeof(*group));
	if (!group)
		return;
	if (!strcmp(type, "mesh")) {
		json_t *m = json_object_get(topo, "members");

		if (!pol_selects(m, me))
			goto out;
		for (size_t i = 0; i < x->npeers; i++) {
			if (i != x->self && pol_selects(m, &x->peers[i]) &&
			    usable(x, pol, &x->peers[i]))
			{
				bool mine = strcmp(me->name, x->peers[i].name) < 0;

				pair(x, pol, templ, &x->peers[i], mine,
				     mine ? me->name : x->peers[i].name,
				     mine ? x->peers[i].name : me->name, NULL, 0, false);
			}
		}
	} else if (!strcmp(type, "site-to-site")) {
		json_t *l = json_object_get(topo, "left"), *r = json_object_get(topo, "right");
		bool left = pol_selects(l, me), right = pol_selects(r, me);

		if (left && right && x->problems)
			json_array_append_new(x->problems,
					      json_sprintf("policy %s: this peer is on both sides; "
							   "it takes the left",
							   str(pol, "name")));
		if (!left && !right)
			goto out;
		for (size_t i = 0; i < x->npeers; i++) {
			const struct pol_peer *o = &x->peers[i];

			if (i == x->self || !usable(x, pol, o))
				continue;
			/* Left peers pair with right ones (and start them). */
			if (left ? (pol_selects(r, o) && !pol_selects(l, o)) : pol_selects(l, o))
				pair(x, pol, templ, o, left, left ? me->name : o->name,
				     left ? o->name : me->name, NULL, 0, false);
		}
	} else if (!strcmp(type, "hub-and-spoke")) {
		json_t *h = json_object_get(topo, "hubs"), *s = json_object_get(topo, "spokes");
		bool hub = pol_selects(h, me);

		if (!hub && !pol_selects(s, me))
			goto out;
		/* The spokes (every one a hub does not claim), for the selectors that route
		 * spoke-to-spoke traffic through the hub. */
		for (size_t i = 0; i < x->npeers; i++) {
			const struct pol_peer *o = &x->peers[i];

			if (pol_selects(s, o) && !pol_selects(h, o) && o->address && *o->address)
				group[n++] = o;
		}
		for (size_t i = 0; i < x->npeers; i++) {
			const struct pol_peer *o = &x->peers[i], **others = NULL;
			size_t no = 0;

			if (i == x->self || !usable(x, pol, o))
				continue;
			if (hub ? !(pol_selects(s, o) && !pol_selects(h, o)) : !pol_selects(h, o))
				continue;
			others = calloc(n ? n : 1, sizeof(*others));
			if (!others)
				break;
			/* Hub side: the other spokes join the local selectors; spoke side: the
			 * other spokes are behind the hub, on the remote side. */
			for (size_t k = 0; k < n; k++) {
				if (group[k] != o && group[k] != me)
					others[no++] = group[k];
			}
			pair(x, pol, templ, o, !hub, hub ? me->name : o->name,
			     hub ? o->name : me->name, others, no, hub);
			free(others);
		}
	}
out:
	free(group);
}

json_t *pol_expand(json_t *policies, const struct pol_peer *peers, size_t npeers, size_t self,
		   const struct pol_secrets *sec, json_t *problems)
{
	struct exp x = {.out = json_array(), .problems = problems, .sec = sec, .peers = peers,
			.npeers = npeers, .self = self};
	size_t i;
	json_t *pol;

	if (!x.out)
		return NULL;
	if (self >= npeers)
		return x.out;
	json_array_foreach(policies, i, pol)
	{
		json_t *topo = json_object_get(pol, "topology");

		if (!json_is_true(json_object_get(pol, "enabled")))
			continue;
		if (json_is_object(topo))
			topology_tunnels(&x, pol, topo);
		else
			explicit_tunnels(&x, pol);
	}
	return x.out;
}

/* ---- stored form --------------------------------------------------------------------------- */

json_t *pol_split_secrets(json_t *tunnels, json_t *old_secrets,
			  char *(*seal)(void *ctx, const char *s), void *ctx, json_t **secrets)
{
	json_t *out = json_array(), *t;
	size_t i;

	*secrets = json_object();
	if (!out || !*secrets)
		goto fail;
	json_array_foreach(tunnels, i, t)
	{
		json_t *c = json_deep_copy(t);
		const char *secret = str(t, "secret"), *key = str(t, "name") ? str(t, "name") : "";

		if (!c)
			goto fail;
		json_object_del(c, "secret");
		json_object_del(c, "has_secret");
		if (secret) {
			char *sealed = seal(ctx, secret);

			if (!sealed) {
				json_decref(c);
				goto fail;
			}
			json_object_set_new(*secrets, key, json_string(sealed));
			free(sealed);
		} else if (str(old_secrets, key)) {
			json_object_set(*secrets, key, json_object_get(old_secrets, key));
		}
		json_object_set_new(c, "has_secret", json_boolean(str(*secrets, key) != NULL));
		json_array_append_new(out, c);
	}
	return out;
fail:
	json_decref(out);
	json_decref(*secrets);
	*secrets = NULL;
	return NULL;
}
