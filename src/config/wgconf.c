/* wg(8) / wg-quick(8) configuration parser and serializer. See wgconf.h for the format.
 *
 * A line is: optional whitespace, "[Interface]" or "[Peer]" or "Key = Value", then an optional
 * '#' comment. Like wg(8), whitespace inside the values of the wg(8) keys is dropped
 * ("AllowedIPs = 10.0.0.0/8, fd00::/8" is one list); like wg-quick(8), Address and DNS are lists
 * split on commas and whitespace, and the hook commands keep their inner whitespace.
 */
#include "config/wgconf.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <secureguard/sg_errors.h>

#include "config/strbuf.h"
#include "crypto/crypto.h"

enum section { SECTION_NONE, SECTION_INTERFACE, SECTION_PEER };

enum key_id {
	K_PRIVATE_KEY,
	K_LISTEN_PORT,
	K_FWMARK,
	K_ADDRESS,
	K_DNS,
	K_MTU,
	K_TABLE,
	K_PRE_UP,
	K_POST_UP,
	K_PRE_DOWN,
	K_POST_DOWN,
	K_SAVE_CONFIG,
	K_PUBLIC_KEY,
	K_PRESHARED_KEY,
	K_ALLOWED_IPS,
	K_ENDPOINT,
	K_KEEPALIVE,
	K_FIPS_PRIVATE_KEY,
	K_FIPS_PUBLIC_KEY,
	K_CRYPTO_MODE,
	K_FIPS_STRICT,
	K_TLS_LISTEN_PORT,
	K_TLS_CERTIFICATE,
	K_TLS_PRIVATE_KEY,
	K_TLS_CA,
	K_TLS_CRL,
	K_REQUIRE_CLIENT_CERT,
	K_TLS_SESSION_KEY,
	K_REQUIRE_SESSION_TOKEN,
	K_TLS_SESSION_TOKEN,
	K_TRANSPORT,
	K_TLS_ENDPOINT,
	K_TLS_SERVER_NAME,
};

/* How the text after '=' becomes the value. */
enum value_kind {
	V_COMPACT, /* every whitespace character removed, as wg(8) does */
	V_LIST,	   /* kept as is, split later on commas and whitespace (wg-quick Address, DNS) */
	V_TRIM,	   /* leading and trailing whitespace removed (hook commands) */
};

static const struct key_def {
	const char *name;
	enum key_id id;
	enum section section;
	enum value_kind kind;
} key_defs[] = {
    {"PrivateKey", K_PRIVATE_KEY, SECTION_INTERFACE, V_COMPACT},
    {"ListenPort", K_LISTEN_PORT, SECTION_INTERFACE, V_COMPACT},
    {"FwMark", K_FWMARK, SECTION_INTERFACE, V_COMPACT},
    {"Address", K_ADDRESS, SECTION_INTERFACE, V_LIST},
    {"DNS", K_DNS, SECTION_INTERFACE, V_LIST},
    {"MTU", K_MTU, SECTION_INTERFACE, V_COMPACT},
    {"Table", K_TABLE, SECTION_INTERFACE, V_COMPACT},
    {"PreUp", K_PRE_UP, SECTION_INTERFACE, V_TRIM},
    {"PostUp", K_POST_UP, SECTION_INTERFACE, V_TRIM},
    {"PreDown", K_PRE_DOWN, SECTION_INTERFACE, V_TRIM},
    {"PostDown", K_POST_DOWN, SECTION_INTERFACE, V_TRIM},
    {"SaveConfig", K_SAVE_CONFIG, SECTION_INTERFACE, V_COMPACT},
    {"PublicKey", K_PUBLIC_KEY, SECTION_PEER, V_COMPACT},
    {"PresharedKey", K_PRESHARED_KEY, SECTION_PEER, V_COMPACT},
    {"AllowedIPs", K_ALLOWED_IPS, SECTION_PEER, V_COMPACT},
    {"Endpoint", K_ENDPOINT, SECTION_PEER, V_COMPACT},
    {"PersistentKeepalive", K_KEEPALIVE, SECTION_PEER, V_COMPACT},
    {"FipsPrivateKey", K_FIPS_PRIVATE_KEY, SECTION_INTERFACE, V_COMPACT},
    {"FipsStrict", K_FIPS_STRICT, SECTION_INTERFACE, V_COMPACT},
    {"FipsPublicKey", K_FIPS_PUBLIC_KEY, SECTION_PEER, V_COMPACT},
    /* CryptoMode is valid in both sections; find_key picks by section (see there). */
    {"CryptoMode", K_CRYPTO_MODE, SECTION_INTERFACE, V_COMPACT},
    {"CryptoMode", K_CRYPTO_MODE, SECTION_PEER, V_COMPACT},
    {"TlsListenPort", K_TLS_LISTEN_PORT, SECTION_INTERFACE, V_COMPACT},
    {"TlsCertificate", K_TLS_CERTIFICATE, SECTION_INTERFACE, V_TRIM},
    {"TlsPrivateKey", K_TLS_PRIVATE_KEY, SECTION_INTERFACE, V_TRIM},
    {"TlsCA", K_TLS_CA, SECTION_INTERFACE, V_TRIM},
    {"TlsCRL", K_TLS_CRL, SECTION_INTERFACE, V_TRIM},
    {"RequireClientCert", K_REQUIRE_CLIENT_CERT, SECTION_INTERFACE, V_COMPACT},
    {"TlsSessionKey", K_TLS_SESSION_KEY, SECTION_INTERFACE, V_TRIM},
    {"RequireSessionToken", K_REQUIRE_SESSION_TOKEN, SECTION_INTERFACE, V_COMPACT},
    {"TlsSessionToken", K_TLS_SESSION_TOKEN, SECTION_INTERFACE, V_TRIM},
    {"Transport", K_TRANSPORT, SECTION_PEER, V_COMPACT},
    {"TlsEndpoint", K_TLS_ENDPOINT, SECTION_PEER, V_COMPACT},
    {"TlsServerName", K_TLS_SERVER_NAME, SECTION_PEER, V_COMPACT},
};

static const char *const hook_names[SG_WGCONF_NHOOKS] = {"PreUp", "PostUp", "PreDown", "PostDown"};

/* The characters wg(8) treats as whitespace. */
static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* A key is 43 base64 characters and a '='. Quoted text with a run of 40 or more of them is
 * taken to hold one, as after the typo "PrivateKey <key>" (no separating '='). */
#define KEYLIKE_RUN 40

/* True when s holds KEYLIKE_RUN or more base64 characters in a row (hex keys included). */
static bool keylike(const char *s)
{
	size_t run = 0;

	for (size_t i = 0; s[i]; i++) {
		run = is_alnum(s[i]) || s[i] == '+' || s[i] == '/' ? run + 1 : 0;
		if (run >= KEYLIKE_RUN)
			return true;
	}
	return false;
}

/* Copies s into dst for an error message: at most 48 characters, non-printables as '?'. Text
 * that may hold a key is not copied at all (STYLE: secrets never in an error message), and wg(8)
 * would print the whole line here. */
static void quote(char *dst, size_t dstlen, const char *s)
{
	size_t i = 0, o = 0;

	if (!dstlen)
		return;
	if (keylike(s)) {
		snprintf(dst, dstlen, "(%zu characters, not shown: may hold a key)", strlen(s));
		return;
	}
	for (; s[i] && o + 1 < dstlen && i < 48; i++)
		dst[o++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (s[i] && o + 4 < dstlen) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
}

static int why_fmt(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int why_fmt(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why && whylen) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return SG_EPARSE;
}

static int why_quoted(char *why, size_t whylen, const char *msg, const char *value)
{
	char q[64];

	quote(q, sizeof(q), value);
	return why_fmt(why, whylen, "%s `%s'", msg, q);
}

/* Unsigned decimal of at most maxdigits digits, nothing else. */
static bool parse_decimal(uint64_t *out, const char *s, size_t maxdigits)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; s[i]; i++) {
		if (!is_digit(s[i]) || i >= maxdigits)
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (!i)
		return false;
	*out = v;
	return true;
}

int sg_wgconf_parse_port(uint16_t *port, const char *s, char *why, size_t whylen)
{
	uint64_t v;

	if (!parse_decimal(&v, s, 5) || v > 65535)
		return why_quoted(why, whylen, "not a port number 0-65535:", s);
	*port = (uint16_t)v;
	return 0;
}

int sg_wgconf_parse_fwmark(uint32_t *mark, const char *s, char *why, size_t whylen)
{
	uint64_t v = 0;

	if (!strcasecmp(s, "off")) {
		*mark = 0;
		return 0;
	}
	if (s[0] == '0' && s[1] == 'x' && s[2]) {
		size_t i;

		/* Leading zeros are harmless, so bound the digits only after them. */
		for (i = 2; s[i] == '0'; i++)
			;
		const char *digits = s + i;
		for (i = 0; digits[i]; i++) {
			char c = digits[i];
			unsigned int d;

			if (is_digit(c))
				d = (unsigned int)(c - '0');
			else if (c >= 'a' && c <= 'f')
				d = (unsigned int)(c - 'a' + 10);
			else if (c >= 'A' && c <= 'F')
				d = (unsigned int)(c - 'A' + 10);
			else
				goto bad;
			if (i >= 8)
				goto bad;
			v = v << 4 | d;
		}
	} else if (!parse_decimal(&v, s, 10) || v > UINT32_MAX) {
		goto bad;
	}
	*mark = (uint32_t)v;
	return 0;
bad:
	return why_quoted(why, whylen, "neither off nor a number 0-0xffffffff:", s);
}

int sg_wgconf_parse_keepalive(uint16_t *secs, const char *s, char *why, size_t whylen)
{
	uint64_t v;

	if (!strcasecmp(s, "off")) {
		*secs = 0;
		return 0;
	}
	if (!parse_decimal(&v, s, 5) || v > 65535)
		return why_quoted(why, whylen, "neither off nor 0-65535 seconds:", s);
	*secs = (uint16_t)v;
	return 0;
}

/* An IPv4 or IPv6 literal (no zone), into ip->family and ip->addr. */
static bool parse_addr(struct sg_wgconf_ip *ip, const char *s, size_t len)
{
	char buf[INET6_ADDRSTRLEN];

	if (!len || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	memset(ip->addr, 0, sizeof(ip->addr));
	if (memchr(buf, ':', len)) {
		ip->family = AF_INET6;
		return inet_pton(AF_INET6, buf, ip->addr) == 1;
	}
	ip->family = AF_INET;
	return inet_pton(AF_INET, buf, ip->addr) == 1;
}

int sg_wgconf_parse_ip(struct sg_wgconf_ip *ip, const char *s, char *why, size_t whylen)
{
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	char abuf[64], part[64];
	uint64_t cidr;

	memset(ip, 0, sizeof(*ip));
	if (!parse_addr(ip, s, alen)) {
		/* Only the address part, cut before quoting so quote() still marks the cut. */
		size_t n = alen < sizeof(part) - 1 ? alen : sizeof(part) - 1;

		memcpy(part, s, n);
		part[n] = '\0';
		quote(abuf, sizeof(abuf), part);
		return why_fmt(why, whylen, "bad IP address `%s'", abuf);
	}
	unsigned int max = ip->family == AF_INET ? 32 : 128;

	if (!slash) {
		ip->cidr = (uint8_t)max;
		return 0;
	}
	if (!parse_decimal(&cidr, slash + 1, 3))
		return why_quoted(why, whylen, "bad prefix length", slash + 1);
	if (cidr > max)
		return why_fmt(why, whylen, "bad prefix length %u", (unsigned int)cidr);
	ip->cidr = (uint8_t)cidr;
	return 0;
}

/* A host name (RFC 1123 letters, digits, '-', '.', plus '_' seen in the wild) or IPv4 literal. */
static bool valid_hostname(const char *s, size_t len)
{
	if (!len || len > SG_WGCONF_HOST_MAX || s[0] == '-' || s[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '.' && s[i] != '_')
			return false;
	}
	return true;
}

/* An IPv6 literal with an optional %zone (an interface name or index). */
static bool valid_ipv6_host(const char *s, size_t len)
{
	const char *pct = memchr(s, '%', len);
	size_t alen = pct ? (size_t)(pct - s) : len;
	struct sg_wgconf_ip ip;

	if (!parse_addr(&ip, s, alen) || ip.family != AF_INET6)
		return false;
	if (pct) {
		size_t zlen = len - alen - 1;

		if (!zlen || zlen > 15)
			return false;
		for (size_t i = alen + 1; i < len; i++) {
			if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
				return false;
		}
	}
	return true;
}

int sg_wgconf_parse_endpoint(char host[SG_WGCONF_HOST_MAX + 1], uint16_t *port, const char *s,
			     char *why, size_t whylen)
{
	const char *h, *p;
	size_t hlen;
	uint64_t v;

	if (!*s)
		return why_fmt(why, whylen, "empty endpoint");
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close)
			return why_quoted(why, whylen, "no closing ']' in", s);
		h = s + 1;
		hlen = (size_t)(close - h);
		if (close[1] != ':' || !close[2])
			return why_quoted(why, whylen, "no port in", s);
		p = close + 2;
		if (!valid_ipv6_host(h, hlen))
			return why_quoted(why, whylen, "bad IPv6 address in", s);
	} else {
		const char *colon = strrchr(s, ':');

		if (!colon || !colon[1])
			return why_quoted(why, whylen, "no port in", s);
		h = s;
		hlen = (size_t)(colon - s);
		p = colon + 1;
		if (memchr(h, ':', hlen))
			return why_quoted(why, whylen,
					  "an IPv6 address needs brackets, [addr]:port, in", s);
		if (!valid_hostname(h, hlen))
			return why_quoted(why, whylen, "bad host in", s);
	}
	if (!parse_decimal(&v, p, 5) || v == 0 || v > 65535)
		return why_quoted(why, whylen, "bad port (1-65535) in", s);
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = (uint16_t)v;
	return 0;
}

void sg_wgconf_ip_format(char buf[SG_WGCONF_PREFIX_STRLEN], const struct sg_wgconf_ip *ip)
{
	char a[INET6_ADDRSTRLEN];

	if (!inet_ntop(ip->family == AF_INET6 ? AF_INET6 : AF_INET, ip->addr, a, sizeof(a)))
		snprintf(a, sizeof(a), "?");
	snprintf(buf, SG_WGCONF_PREFIX_STRLEN, "%s/%u", a, (unsigned int)ip->cidr);
}

void sg_wgconf_init(struct sg_wgconf *conf)
{
	memset(conf, 0, sizeof(*conf));
}

static char no_host[1]; /* "": a peer's host name that was never set */

void sg_wgconf_host_free(char *h)
{
	if (h && h != no_host)
		free(h);
}

int sg_wgconf_host_set(char **field, const char *host)
{
	char *copy = host[0] ? strndup(host, SG_WGCONF_HOST_MAX) : no_host;

	if (!copy)
		return SG_ENOMEM;
	sg_wgconf_host_free(*field);
	*field = copy;
	return 0;
}

static void peer_free(struct sg_wgconf_peer *peer)
{
	free(peer->allowed_ips);
	sg_wgconf_host_free(peer->endpoint_host);
	sg_wgconf_host_free(peer->tls_endpoint_host);
	sg_wgconf_host_free(peer->tls_server_name);
	sg_memzero(peer, sizeof(*peer));
}

void sg_wgconf_free(struct sg_wgconf *conf)
{
	for (size_t i = 0; i < conf->n_peers; i++)
		peer_free(&conf->peers[i]);
	free(conf->peers);
	for (int k = 0; k < SG_WGCONF_NHOOKS; k++) {
		for (size_t i = 0; i < conf->n_hooks[k]; i++)
			free(conf->hooks[k][i]);
	}
	free(conf->tls_certificate);
	free(conf->tls_private_key);
	free(conf->tls_ca);
	free(conf->tls_crl);
	free(conf->tls_session_key);
	free(conf->tls_session_token);
	sg_memzero(conf, sizeof(*conf));
}

const char *sg_wgconf_error(const struct sg_wgconf *conf)
{
	return conf->error;
}

static size_t max_peers(const struct sg_wgconf *conf)
{
	return conf->max_peers && conf->max_peers < SG_WGCONF_MAX_PEERS ? conf->max_peers
									 : SG_WGCONF_MAX_PEERS;
}

struct sg_wgconf_peer *sg_wgconf_add_peer(struct sg_wgconf *conf)
{
	if (conf->n_peers >= max_peers(conf))
		return NULL;
	if (conf->n_peers == conf->cap_peers) {
		size_t cap = conf->cap_peers ? conf->cap_peers * 2 : 4;
		struct sg_wgconf_peer *p;

		if (cap > max_peers(conf))
			cap = max_peers(conf);
		/* A fresh block rather than realloc, so the old one (preshared keys) is wiped. */
		p = calloc(cap, sizeof(*p));
		if (!p)
			return NULL;
		if (conf->n_peers)
			memcpy(p, conf->peers, conf->n_peers * sizeof(*p));
		if (conf->peers)
			sg_memzero(conf->peers, conf->cap_peers * sizeof(*p));
		free(conf->peers);
		conf->peers = p;
		conf->cap_peers = cap;
	}
	struct sg_wgconf_peer *peer = &conf->peers[conf->n_peers++];

	memset(peer, 0, sizeof(*peer));
	peer->endpoint_host = peer->tls_endpoint_host = peer->tls_server_name = no_host;
	return peer;
}

int sg_wgconf_peer_add_ip(struct sg_wgconf *conf, struct sg_wgconf_peer *peer,
			  const struct sg_wgconf_ip *ip)
{
	if (peer->n_allowed_ips >= SG_WGCONF_MAX_PEER_IPS ||
	    conf->total_ips >= SG_WGCONF_MAX_TOTAL_IPS)
		return SG_EFULL;
	if (peer->n_allowed_ips == peer->cap_allowed_ips) {
		size_t cap = peer->cap_allowed_ips ? peer->cap_allowed_ips * 2 : 4;
		struct sg_wgconf_ip *p;

		if (cap > SG_WGCONF_MAX_PEER_IPS)
			cap = SG_WGCONF_MAX_PEER_IPS;
		p = realloc(peer->allowed_ips, cap * sizeof(*p));
		if (!p)
			return SG_ENOMEM;
		peer->allowed_ips = p;
		peer->cap_allowed_ips = cap;
	}
	peer->allowed_ips[peer->n_allowed_ips++] = *ip;
	conf->total_ips++;
	return 0;
}

/* ---- line parser ------------------------------------------------------------------------ */

static int fail(struct sg_wgconf *conf, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct sg_wgconf *conf, int err, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(conf->error, sizeof(conf->error), "line %u: ", conf->line);
	if (n < 0 || (size_t)n >= sizeof(conf->error))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(conf->error + n, sizeof(conf->error) - (size_t)n, fmt, ap);
	va_end(ap);
	conf->failed = true;
	return err;
}

/* The definition of a key, preferring the one of the current section (CryptoMode has one in
 * each); a key of the other section is returned so the caller can say where it belongs. */
static const struct key_def *find_key(const char *name, int section)
{
	const struct key_def *other = NULL;

	for (size_t i = 0; i < SG_ARRAY_LEN(key_defs); i++) {
		if (strcasecmp(key_defs[i].name, name))
			continue;
		if ((int)key_defs[i].section == section)
			return &key_defs[i];
		other = &key_defs[i];
	}
	return other;
}

static struct sg_wgconf_peer *current_peer(struct sg_wgconf *conf)
{
	return &conf->peers[conf->n_peers - 1];
}

static int parse_allowed_ips(struct sg_wgconf *conf, const struct key_def *k, char *value)
{
	struct sg_wgconf_peer *peer = current_peer(conf);
	char why[128];

	/* An empty list is allowed: the peer then routes nothing. */
	if (!*value)
		return 0;
	for (char *tok = value;;) {
		char *comma = strchr(tok, ',');
		struct sg_wgconf_ip ip;
		int ret;

		if (comma)
			*comma = '\0';
		if (!*tok)
			return fail(conf, SG_EPARSE, "%s: empty entry in list", k->name);
		if (sg_wgconf_parse_ip(&ip, tok, why, sizeof(why)))
			return fail(conf, SG_EPARSE, "%s: %s", k->name, why);
		ret = sg_wgconf_peer_add_ip(conf, peer, &ip);
		if (ret == SG_EFULL)
			return fail(conf, SG_EPARSE, "%s: more than %u per peer or %u in all",
				    k->name, SG_WGCONF_MAX_PEER_IPS, SG_WGCONF_MAX_TOTAL_IPS);
		if (ret)
			return fail(conf, ret, "%s: out of memory", k->name);
		if (!comma)
			break;
		tok = comma + 1;
	}
	return 0;
}

/* wg-quick's rule: a value of digits and dots, or one with a colon, is a server address;
 * anything else is a search domain. */
static int parse_dns_entry(struct sg_wgconf *conf, const struct key_def *k, const char *tok,
			   size_t len)
{
	struct sg_wgconf_dns *d;
	bool server = memchr(tok, ':', len) != NULL;
	char q[64], tmp[SG_WGCONF_HOST_MAX + 1];

	if (len > SG_WGCONF_HOST_MAX) {
		memcpy(tmp, tok, SG_WGCONF_HOST_MAX);
		tmp[SG_WGCONF_HOST_MAX] = '\0';
		quote(q, sizeof(q), tmp);
		return fail(conf, SG_EPARSE, "%s: longer than %u characters: `%s'", k->name,
			    SG_WGCONF_HOST_MAX, q);
	}
	memcpy(tmp, tok, len);
	tmp[len] = '\0';
	if (!server) {
		server = true;
		for (size_t i = 0; i < len; i++)
			server = server && (is_digit(tok[i]) || tok[i] == '.');
	}
	if (server) {
		struct sg_wgconf_ip ip;

		if (!parse_addr(&ip, tok, len)) {
			quote(q, sizeof(q), tmp);
			return fail(conf, SG_EPARSE, "%s: bad server address `%s'", k->name, q);
		}
	} else if (!valid_hostname(tok, len)) {
		quote(q, sizeof(q), tmp);
		return fail(conf, SG_EPARSE, "%s: bad search domain `%s'", k->name, q);
	}
	if (conf->n_dns >= SG_WGCONF_MAX_DNS)
		return fail(conf, SG_EPARSE, "%s: more than %u entries", k->name,
			    SG_WGCONF_MAX_DNS);
	d = &conf->dns[conf->n_dns++];
	d->is_search = !server;
	memcpy(d->name, tmp, len + 1);
	return 0;
}

static int parse_address_entry(struct sg_wgconf *conf, const struct key_def *k, const char *tok,
			       size_t len)
{
	char buf[SG_WGCONF_PREFIX_STRLEN + 16], why[128];
	struct sg_wgconf_ip ip;

	if (len >= sizeof(buf)) {
		memcpy(buf, tok, sizeof(buf) - 1);
		buf[sizeof(buf) - 1] = '\0';
		why_quoted(why, sizeof(why), "bad IP address", buf);
		return fail(conf, SG_EPARSE, "%s: %s", k->name, why);
	}
	memcpy(buf, tok, len);
	buf[len] = '\0';
	if (sg_wgconf_parse_ip(&ip, buf, why, sizeof(why)))
		return fail(conf, SG_EPARSE, "%s: %s", k->name, why);
	if (conf->n_addresses >= SG_WGCONF_MAX_ADDRESSES)
		return fail(conf, SG_EPARSE, "%s: more than %u addresses", k->name,
			    SG_WGCONF_MAX_ADDRESSES);
	conf->addresses[conf->n_addresses++] = ip;
	return 0;
}

/* Address and DNS: wg-quick splits on commas and whitespace, empty items are skipped. */
static int parse_list(struct sg_wgconf *conf, const struct key_def *k, const char *value)
{
	size_t i = 0, n = 0;

	while (value[i]) {
		size_t start, len;

		while (value[i] == ',' || is_space(value[i]))
			i++;
		start = i;
		while (value[i] && value[i] != ',' && !is_space(value[i]))
			i++;
		len = i - start;
		if (!len)
			continue;
		n++;
		int ret = k->id == K_DNS ? parse_dns_entry(conf, k, value + start, len)
					 : parse_address_entry(conf, k, value + start, len);
		if (ret)
			return ret;
	}
	if (!n)
		return fail(conf, SG_EPARSE, "%s: empty value", k->name);
	return 0;
}

static int parse_table(struct sg_wgconf *conf, const struct key_def *k, const char *value)
{
	size_t len = strlen(value);
	char q[64];

	if (!strcasecmp(value, "off") || !strcasecmp(value, "auto")) {
		snprintf(conf->table, sizeof(conf->table), "%s",
			 strcasecmp(value, "off") ? "auto" : "off");
		conf->has_table = true;
		return 0;
	}
	/* A table number, or a name from /etc/iproute2/rt_tables; `ip` gets it as one argument,
	 * so this check is about clear errors, not quoting. Not "-1": ip(8) cannot take it. */
	bool ok = len > 0 && len <= SG_WGCONF_TABLE_MAX && value[0] != '-';

	for (size_t i = 0; ok && i < len; i++)
		ok = is_alnum(value[i]) || value[i] == '_' || value[i] == '-';
	if (ok && is_digit(value[0])) {
		uint64_t v;

		ok = parse_decimal(&v, value, 10) && v <= UINT32_MAX;
	}
	if (!ok) {
		quote(q, sizeof(q), value);
		return fail(conf, SG_EPARSE,
			    "%s: neither off, auto, a table number nor a name: `%s'", k->name, q);
	}
	memcpy(conf->table, value, len + 1);
	conf->has_table = true;
	return 0;
}

static int parse_hook(struct sg_wgconf *conf, const struct key_def *k, const char *value)
{
	int h = k->id == K_PRE_UP     ? SG_WGCONF_PRE_UP
		: k->id == K_POST_UP  ? SG_WGCONF_POST_UP
		: k->id == K_PRE_DOWN ? SG_WGCONF_PRE_DOWN
				      : SG_WGCONF_POST_DOWN;
	char *copy;

	if (conf->n_hooks[h] >= SG_WGCONF_MAX_HOOKS)
		return fail(conf, SG_EPARSE, "%s: more than %u commands", k->name,
			    SG_WGCONF_MAX_HOOKS);
	copy = strdup(value);
	if (!copy)
		return fail(conf, SG_ENOMEM, "%s: out of memory", k->name);
	conf->hooks[h][conf->n_hooks[h]++] = copy;
	return 0;
}

/* A TLS file path: absolute (the daemon reads it, from its own working directory), bounded,
 * printable. */
static int parse_path(struct sg_wgconf *conf, const struct key_def *k, const char *value,
		      char **dst)
{
	size_t len = strlen(value);
	char q[64], *copy;

	if (value[0] != '/') {
		quote(q, sizeof(q), value);
		return fail(conf, SG_EPARSE, "%s: not an absolute path: `%s'", k->name, q);
	}
	if (len > SG_WGCONF_PATH_MAX)
		return fail(conf, SG_EPARSE, "%s: longer than %u characters", k->name,
			    SG_WGCONF_PATH_MAX);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f)
			return fail(conf, SG_EPARSE, "%s: control character in the path", k->name);
	copy = strdup(value);
	if (!copy)
		return fail(conf, SG_ENOMEM, "%s: out of memory", k->name);
	free(*dst);
	*dst = copy;
	return 0;
}

static int parse_bool_key(struct sg_wgconf *conf, const struct key_def *k, const char *value,
			  bool *out)
{
	char q[64];

	if (!strcasecmp(value, "true"))
		*out = true;
	else if (!strcasecmp(value, "false"))
		*out = false;
	else {
		quote(q, sizeof(q), value);
		return fail(conf, SG_EPARSE, "%s: neither true nor false: `%s'", k->name, q);
	}
	return 0;
}

static int parse_key_value(struct sg_wgconf *conf, const struct key_def *k, char *value)
{
	char why[160], q[64];
	uint64_t v;

	switch (k->id) {
	case K_PRIVATE_KEY:
		if (sg_key_from_base64(conf->private_key, value, strlen(value))) {
			conf->has_private_key = false;
			return fail(conf, SG_EPARSE, "%s: not a base64 key of 44 characters",
				    k->name);
		}
		conf->has_private_key = true;
		return 0;
	case K_LISTEN_PORT:
		if (sg_wgconf_parse_port(&conf->listen_port, value, why, sizeof(why)))
			return fail(conf, SG_EPARSE, "%s: %s", k->name, why);
		conf->has_listen_port = true;
		return 0;
	case K_FWMARK:
		if (sg_wgconf_parse_fwmark(&conf->fwmark, value, why, sizeof(why)))
			return fail(conf, SG_EPARSE, "%s: %s", k->name, why);
		conf->has_fwmark = true;
		return 0;
	case K_ADDRESS:
	case K_DNS:
		return parse_list(conf, k, value);
	case K_MTU:
		if (!parse_decimal(&v, value, 5) || v < 68 || v > 65535) {
			quote(q, sizeof(q), value);
			return fail(conf, SG_EPARSE, "%s: not a number 68-65535: `%s'", k->name, q);
		}
		conf->mtu = (uint32_t)v;
		conf->has_mtu = true;
		return 0;
	case K_TABLE:
		return parse_table(conf, k, value);
	case K_PRE_UP:
	case K_POST_UP:
	case K_PRE_DOWN:
	case K_POST_DOWN:
		return parse_hook(conf, k, value);
	case K_SAVE_CONFIG:
		if (!strcasecmp(value, "true")) {
			conf->save_config = true;
		} else if (!strcasecmp(value, "false")) {
			conf->save_config = false;
		} else {
			quote(q, sizeof(q), value);
			return fail(conf, SG_EPARSE, "%s: neither true nor false: `%s'", k->name,
				    q);
		}
		return 0;
	case K_PUBLIC_KEY: {
		struct sg_wgconf_peer *peer = current_peer(conf);

		if (sg_key_from_base64(peer->public_key, value, strlen(value))) {
			peer->has_public_key = false;
			return fail(conf, SG_EPARSE, "%s: not a base64 key of 44 characters",
				    k->name);
		}
		peer->has_public_key = true;
		return 0;
	}
	case K_PRESHARED_KEY: {
		struct sg_wgconf_peer *peer = current_peer(conf);

		if (sg_key_from_base64(peer->preshared_key, value, strlen(value))) {
			peer->has_preshared_key = false;
			return fail(conf, SG_EPARSE, "%s: not a base64 key of 44 characters",
				    k->name);
		}
		peer->has_preshared_key = true;
		return 0;
	}
	case K_ALLOWED_IPS:
		return parse_allowed_ips(conf, k, value);
	case K_FIPS_PRIVATE_KEY: {
		int r = sg_fipskey_priv_from_base64(conf->fips_private_key, value, strlen(value));

		conf->has_fips_private_key = r == 0;
		if (r == SG_EPARSE)
			return fail(conf, SG_EPARSE, "%s: not a base64 key of %u characters", k->name,
				    SG_FIPS_PRIV_BASE64_LEN);
		if (r)
			return fail(conf, SG_EPARSE, "%s: not a P-384 private key (out of range)",
				    k->name);
		return 0;
	}
	case K_FIPS_PUBLIC_KEY: {
		struct sg_wgconf_peer *peer = current_peer(conf);
		int r = sg_fipskey_pub_from_base64(peer->fips_public_key, value, strlen(value));

		peer->has_fips_public_key = r == 0;
		if (r == SG_EPARSE)
			return fail(conf, SG_EPARSE, "%s: not a base64 key of %u characters", k->name,
				    SG_FIPS_PUB_BASE64_LEN);
		if (r)
			return fail(conf, SG_EPARSE, "%s: not a point on P-384", k->name);
		return 0;
	}
	case K_CRYPTO_MODE: {
		enum sg_wgconf_mode m;

		if (!strcasecmp(value, "auto"))
			m = SG_WGCONF_MODE_AUTO;
		else if (!strcasecmp(value, "fips"))
			m = SG_WGCONF_MODE_FIPS;
		else if (!strcasecmp(value, "classic"))
			m = SG_WGCONF_MODE_CLASSIC;
		else {
			quote(q, sizeof(q), value);
			return fail(conf, SG_EPARSE, "%s: neither auto, fips nor classic: `%s'",
				    k->name, q);
		}
		if (k->section == SECTION_PEER)
			current_peer(conf)->crypto_mode = m;
		else
			conf->crypto_mode = m;
		return 0;
	}
	case K_TLS_LISTEN_PORT:
		if (sg_wgconf_parse_port(&conf->tls_listen_port, value, why, sizeof(why)))
			return fail(conf, SG_EPARSE, "%s: %s", k->name, why);
		conf->has_tls_listen_port = true;
		return 0;
	case K_TLS_CERTIFICATE:
		return parse_path(conf, k, value, &conf->tls_certificate);
	case K_TLS_PRIVATE_KEY:
		return parse_path(conf, k, value, &conf->tls_private_key);
	case K_TLS_CA:
		return parse_path(conf, k, value, &conf->tls_ca);
	case K_TLS_CRL:
		return parse_path(conf, k, value, &conf->tls_crl);
	case K_REQUIRE_CLIENT_CERT:
		return parse_bool_key(conf, k, value, &conf->require_client_cert);
	case K_TLS_SESSION_KEY:
		return parse_path(conf, k, value, &conf->tls_session_key);
	case K_REQUIRE_SESSION_TOKEN:
		return parse_bool_key(conf, k, value, &conf->require_session_token);
	case K_TLS_SESSION_TOKEN:
		return parse_path(conf, k, value, &conf->tls_session_token);
	case K_TRANSPORT: {
		struct sg_wgconf_peer *peer = current_peer(conf);

		if (!strcasecmp(value, "udp"))
			peer->transport = SG_WGCONF_TRANSPORT_UDP;
		else if (!strcasecmp(value, "tls"))
			peer->transport = SG_WGCONF_TRANSPORT_TLS;
		else if (!strcasecmp(value, "auto"))
			peer->transport = SG_WGCONF_TRANSPORT_AUTO;
		else {
			quote(q, sizeof(q), value);
			return fail(conf, SG_EPARSE, "%s: neither udp, tls nor auto: `%s'", k->name,
				    q);
		}
		return 0;
	}
	case K_TLS_ENDPOINT: {
		struct sg_wgconf_peer *peer = current_peer(conf);

		char host[SG_WGCONF_HOST_MAX + 1];

		if (sg_wgconf_parse_endpoint(host, &peer->tls_endpoint_port, value, why,
					     sizeof(why)))
			return fail(conf, SG_EPARSE, "%s: %s", k->name, why);
		if (sg_wgconf_host_set(&peer->tls_endpoint_host, host))
			return fail(conf, SG_ENOMEM, "%s: out of memory", k->name);
		peer->has_tls_endpoint = true;
		return 0;
	}
	case K_TLS_SERVER_NAME: {
		struct sg_wgconf_peer *peer = current_peer(conf);

		if (strlen(value) > SG_WGCONF_HOST_MAX || !valid_hostname(value, strlen(value))) {
			quote(q, sizeof(q), value);
			return fail(conf, SG_EPARSE, "%s: not a host name: `%s'", k->name, q);
		}
		if (sg_wgconf_host_set(&peer->tls_server_name, value))
			return fail(conf, SG_ENOMEM, "%s: out of memory", k->name);
		return 0;
	}
	case K_FIPS_STRICT:
		if (!strcasecmp(value, "true")) {
			conf->fips_strict = true;
		} else if (!strcasecmp(value, "false")) {
			conf->fips_strict = false;
		} else {
			quote(q, sizeof(q), value);
			return fail(conf, SG_EPARSE, "%s: neither true nor false: `%s'", k->name,
				    q);
		}
		return 0;
	case K_ENDPOINT: {
		struct sg_wgconf_peer *peer = current_peer(conf);

		char host[SG_WGCONF_HOST_MAX + 1];

		if (sg_wgconf_parse_endpoint(host, &peer->endpoint_port, value, why, sizeof(why)))
			return fail(conf, SG_EPARSE, "%s: %s", k->name, why);
		if (sg_wgconf_host_set(&peer->endpoint_host, host))
			return fail(conf, SG_ENOMEM, "%s: out of memory", k->name);
		peer->has_endpoint = true;
		return 0;
	}
	case K_KEEPALIVE: {
		struct sg_wgconf_peer *peer = current_peer(conf);

		if (sg_wgconf_parse_keepalive(&peer->keepalive, value, why, sizeof(why)))
			return fail(conf, SG_EPARSE, "%s: %s", k->name, why);
		peer->has_keepalive = true;
		return 0;
	}
	}
	return fail(conf, SG_EPARSE, "%s: not handled", k->name);
}

/* Removes every whitespace character in place; returns the new length. */
static size_t compact(char *s)
{
	size_t o = 0;

	for (size_t i = 0; s[i]; i++) {
		if (!is_space(s[i]))
			s[o++] = s[i];
	}
	s[o] = '\0';
	return o;
}

static int parse_section(struct sg_wgconf *conf, char *text)
{
	char q[64];

	compact(text);
	if (!strcasecmp(text, "[Interface]")) {
		conf->section = SECTION_INTERFACE;
		return 0;
	}
	if (!strcasecmp(text, "[Peer]")) {
		struct sg_wgconf_peer *peer = sg_wgconf_add_peer(conf);

		if (!peer) {
			if (conf->n_peers >= max_peers(conf))
				return fail(conf, SG_EPARSE, "more than %zu peers",
					    max_peers(conf));
			return fail(conf, SG_ENOMEM, "out of memory");
		}
		peer->line = conf->line;
		conf->section = SECTION_PEER;
		return 0;
	}
	quote(q, sizeof(q), text);
	if (text[0] == '[')
		return fail(conf, SG_EPARSE,
			    "unknown section `%s' (expected [Interface] or [Peer])", q);
	return fail(conf, SG_EPARSE, "expected `Key = Value' or a [Section], got `%s'", q);
}

int sg_wgconf_parse_line(struct sg_wgconf *conf, const char *line, size_t len)
{
	char buf[SG_WGCONF_MAX_LINE + 1];
	char *eq, *key, *value;
	const struct key_def *k;
	int ret;

	if (conf->failed)
		return SG_EPARSE;
	conf->line++;
	if (len && line[len - 1] == '\n')
		len--;
	if (len && line[len - 1] == '\r')
		len--;
	if (len > SG_WGCONF_MAX_LINE)
		return fail(conf, SG_EPARSE, "longer than %u characters", SG_WGCONF_MAX_LINE);
	if (memchr(line, '\0', len))
		return fail(conf, SG_EPARSE, "contains a NUL character");
	memcpy(buf, line, len);
	buf[len] = '\0';
	/* Comments run to the end of the line, wherever the '#' is (wg(8) and wg-quick(8) agree).
	 */
	char *hash = strchr(buf, '#');

	if (hash)
		*hash = '\0';
	eq = strchr(buf, '=');
	if (!eq) {
		bool blank = true;

		for (char *p = buf; *p && blank; p++)
			blank = is_space(*p);
		ret = blank ? 0 : parse_section(conf, buf);
		goto out;
	}
	*eq = '\0';
	key = buf;
	value = eq + 1;
	compact(key);
	k = find_key(key, conf->section);
	if (!k) {
		char q[64];

		quote(q, sizeof(q), key);
		ret = fail(conf, SG_EPARSE, "unknown key `%s'", q);
		goto out;
	}
	if (conf->section != (int)k->section) {
		ret = fail(conf, SG_EPARSE, "%s: only valid in the %s section", k->name,
			   k->section == SECTION_PEER ? "[Peer]" : "[Interface]");
		goto out;
	}
	if (k->kind == V_COMPACT) {
		compact(value);
	} else if (k->kind == V_TRIM) {
		size_t n = strlen(value);

		while (n && is_space(value[n - 1]))
			value[--n] = '\0';
		while (is_space(*value))
			value++;
	}
	if (!*value && k->id != K_ALLOWED_IPS && k->kind != V_LIST) {
		ret = fail(conf, SG_EPARSE, "%s: empty value", k->name);
		goto out;
	}
	ret = parse_key_value(conf, k, value);
out:
	/* The line may have held a key. */
	sg_memzero(buf, len + 1);
	return ret;
}

int sg_wgconf_parse_finish(struct sg_wgconf *conf)
{
	if (conf->failed)
		return SG_EPARSE;
	for (size_t i = 0; i < conf->n_peers; i++) {
		struct sg_wgconf_peer *peer = &conf->peers[i];

		if (!peer->has_public_key && peer->has_fips_public_key) {
			if (!sg_fips_peer_id(peer->public_key, peer->fips_public_key))
				return fail(conf, SG_EPARSE, "cannot compute a FIPS peer id");
			peer->has_public_key = true;
			peer->public_key_derived = true;
		}
		if (!peer->has_public_key) {
			conf->line = peer->line;
			return fail(conf, SG_EPARSE, "[Peer] without a PublicKey or FipsPublicKey");
		}
	}
	return 0;
}

int sg_wgconf_parse(struct sg_wgconf *conf, const char *text, size_t len)
{
	size_t pos = 0;

	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - text) + 1 : len;
		int ret = sg_wgconf_parse_line(conf, text + pos, end - pos);

		if (ret)
			return ret;
		pos = end;
	}
	return sg_wgconf_parse_finish(conf);
}

/* ---- serializer ------------------------------------------------------------------------- */

const char *sg_wgconf_transport_name(enum sg_wgconf_transport t)
{
	switch (t) {
	case SG_WGCONF_TRANSPORT_UDP:
		return "udp";
	case SG_WGCONF_TRANSPORT_TLS:
		return "tls";
	case SG_WGCONF_TRANSPORT_AUTO:
		return "auto";
	default:
		return NULL;
	}
}

const char *sg_wgconf_mode_name(enum sg_wgconf_mode m)
{
	switch (m) {
	case SG_WGCONF_MODE_AUTO:
		return "auto";
	case SG_WGCONF_MODE_FIPS:
		return "fips";
	case SG_WGCONF_MODE_CLASSIC:
		return "classic";
	default:
		return NULL;
	}
}

static void write_interface_quick(struct sg_strbuf *tb, const struct sg_wgconf *conf)
{
	char ip[SG_WGCONF_PREFIX_STRLEN];

	for (size_t i = 0; i < conf->n_addresses; i++) {
		sg_wgconf_ip_format(ip, &conf->addresses[i]);
		sg_strbuf_printf(tb, "Address = %s\n", ip);
	}
	for (size_t i = 0; i < conf->n_dns; i++)
		sg_strbuf_printf(tb, "DNS = %s\n", conf->dns[i].name);
	if (conf->has_mtu)
		sg_strbuf_printf(tb, "MTU = %u\n", (unsigned int)conf->mtu);
	if (conf->has_table)
		sg_strbuf_printf(tb, "Table = %s\n", conf->table);
	if (conf->save_config)
		sg_strbuf_printf(tb, "SaveConfig = true\n");
	for (int h = 0; h < SG_WGCONF_NHOOKS; h++) {
		for (size_t i = 0; i < conf->n_hooks[h]; i++)
			sg_strbuf_printf(tb, "%s = %s\n", hook_names[h], conf->hooks[h][i]);
	}
}

int sg_wgconf_serialize(const struct sg_wgconf *conf, unsigned int flags, char **out,
			size_t *outlen)
{
	struct sg_strbuf tb = {0};
	char b64[SG_KEY_BASE64_LEN + 1], ip[SG_WGCONF_PREFIX_STRLEN];
	char fb64[SG_FIPS_PUB_BASE64_LEN + 1];

	*out = NULL;
	*outlen = 0;
	sg_strbuf_printf(&tb, "[Interface]\n");
	if (!(flags & SG_WGCONF_WG_ONLY))
		write_interface_quick(&tb, conf);
	if (conf->has_listen_port && conf->listen_port)
		sg_strbuf_printf(&tb, "ListenPort = %u\n", (unsigned int)conf->listen_port);
	if (conf->has_fwmark && conf->fwmark)
		sg_strbuf_printf(&tb, "FwMark = 0x%x\n", (unsigned int)conf->fwmark);
	if (conf->has_private_key) {
		sg_key_to_base64(b64, conf->private_key);
		sg_strbuf_printf(&tb, "PrivateKey = %s\n", b64);
	}
	if (conf->has_fips_private_key) {
		sg_fipskey_priv_to_base64(fb64, conf->fips_private_key);
		sg_strbuf_printf(&tb, "FipsPrivateKey = %s\n", fb64);
	}
	if (conf->crypto_mode)
		sg_strbuf_printf(&tb, "CryptoMode = %s\n", sg_wgconf_mode_name(conf->crypto_mode));
	if (conf->fips_strict)
		sg_strbuf_printf(&tb, "FipsStrict = true\n");
	if (conf->has_tls_listen_port && conf->tls_listen_port)
		sg_strbuf_printf(&tb, "TlsListenPort = %u\n", (unsigned int)conf->tls_listen_port);
	if (conf->tls_certificate)
		sg_strbuf_printf(&tb, "TlsCertificate = %s\n", conf->tls_certificate);
	if (conf->tls_private_key)
		sg_strbuf_printf(&tb, "TlsPrivateKey = %s\n", conf->tls_private_key);
	if (conf->tls_ca)
		sg_strbuf_printf(&tb, "TlsCA = %s\n", conf->tls_ca);
	if (conf->tls_crl)
		sg_strbuf_printf(&tb, "TlsCRL = %s\n", conf->tls_crl);
	if (conf->require_client_cert)
		sg_strbuf_printf(&tb, "RequireClientCert = true\n");
	if (conf->tls_session_key)
		sg_strbuf_printf(&tb, "TlsSessionKey = %s\n", conf->tls_session_key);
	if (conf->require_session_token)
		sg_strbuf_printf(&tb, "RequireSessionToken = true\n");
	if (conf->tls_session_token)
		sg_strbuf_printf(&tb, "TlsSessionToken = %s\n", conf->tls_session_token);
	sg_strbuf_printf(&tb, "\n");
	for (size_t i = 0; i < conf->n_peers; i++) {
		const struct sg_wgconf_peer *peer = &conf->peers[i];

		sg_strbuf_printf(&tb, "[Peer]\n");
		if (!peer->public_key_derived) {
			sg_key_to_base64(b64, peer->public_key);
			sg_strbuf_printf(&tb, "PublicKey = %s\n", b64);
		}
		if (peer->has_fips_public_key) {
			sg_fipskey_pub_to_base64(fb64, peer->fips_public_key);
			sg_strbuf_printf(&tb, "FipsPublicKey = %s\n", fb64);
		}
		if (peer->crypto_mode)
			sg_strbuf_printf(&tb, "CryptoMode = %s\n",
					 sg_wgconf_mode_name(peer->crypto_mode));
		if (peer->transport)
			sg_strbuf_printf(&tb, "Transport = %s\n",
					 sg_wgconf_transport_name(peer->transport));
		if (peer->has_tls_endpoint)
			sg_strbuf_printf(&tb,
					 strchr(peer->tls_endpoint_host, ':') ? "TlsEndpoint = [%s]:%u\n"
									      : "TlsEndpoint = %s:%u\n",
					 peer->tls_endpoint_host, (unsigned int)peer->tls_endpoint_port);
		if (peer->tls_server_name[0])
			sg_strbuf_printf(&tb, "TlsServerName = %s\n", peer->tls_server_name);
		if (peer->has_preshared_key) {
			sg_key_to_base64(b64, peer->preshared_key);
			sg_strbuf_printf(&tb, "PresharedKey = %s\n", b64);
		}
		for (size_t j = 0; j < peer->n_allowed_ips; j++) {
			sg_wgconf_ip_format(ip, &peer->allowed_ips[j]);
			sg_strbuf_printf(&tb, "%s%s%s", j ? "" : "AllowedIPs = ", ip,
				  j + 1 < peer->n_allowed_ips ? ", " : "\n");
		}
		if (peer->has_endpoint)
			sg_strbuf_printf(&tb,
				  strchr(peer->endpoint_host, ':') ? "Endpoint = [%s]:%u\n"
								   : "Endpoint = %s:%u\n",
				  peer->endpoint_host, (unsigned int)peer->endpoint_port);
		if (peer->has_keepalive && peer->keepalive)
			sg_strbuf_printf(&tb, "PersistentKeepalive = %u\n", (unsigned int)peer->keepalive);
		if (i + 1 < conf->n_peers)
			sg_strbuf_printf(&tb, "\n");
	}
	sg_memzero(b64, sizeof(b64));
	sg_memzero(fb64, sizeof(fb64));
	if (tb.oom) {
		sg_strbuf_free(&tb);
		return SG_ENOMEM;
	}
	*out = tb.p;
	*outlen = tb.len;
	return 0;
}
