/* Address text forms, with the syntax of Go's net/netip (what wireguard-go speaks). See addr.h. */
#include "net/addr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <secureguard/sg_errors.h>

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static int format_v4(char *buf, size_t size, const uint8_t *a)
{
	int n = snprintf(buf, size, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
	return n < 0 || (size_t)n >= size ? SG_ERANGE : n;
}

/* RFC 5952 section 4: lowercase hex, no leading zeros, the longest run of at least two zero
 * groups becomes "::" (the first such run on a tie); netip prints IPv4-mapped addresses with a
 * dotted tail, and only those. */
static int format_v6(char *buf, size_t size, const uint8_t *a)
{
	if (memcmp(a, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0) {
		char v4[16];
		if (format_v4(v4, sizeof(v4), a + 12) < 0)
			return SG_ERANGE;
		int n = snprintf(buf, size, "::ffff:%s", v4);
		return n < 0 || (size_t)n >= size ? SG_ERANGE : n;
	}
	uint16_t g[8];
	for (int i = 0; i < 8; i++)
		g[i] = (uint16_t)(a[2 * i] << 8 | a[2 * i + 1]);
	int best = -1, best_len = 1;
	for (int i = 0; i < 8;) {
		if (g[i] != 0) {
			i++;
			continue;
		}
		int j = i;
		while (j < 8 && g[j] == 0)
			j++;
		if (j - i > best_len) {
			best = i;
			best_len = j - i;
		}
		i = j;
	}
	size_t pos = 0;
	for (int i = 0; i < 8; i++) {
		if (i == best) {
			if (pos + 2 >= size)
				return SG_ERANGE;
			buf[pos++] = ':';
			buf[pos++] = ':';
			i += best_len - 1;
			continue;
		}
		bool colon = i > 0 && i != best + best_len;
		int n = snprintf(buf + pos, size - pos, "%s%x", colon ? ":" : "", g[i]);
		if (n < 0 || (size_t)n >= size - pos)
			return SG_ERANGE;
		pos += (size_t)n;
	}
	if (pos >= size)
		return SG_ERANGE;
	buf[pos] = '\0';
	return (int)pos;
}

int addr_format(char *buf, size_t size, int family, const uint8_t *addr)
{
	if (size == 0)
		return SG_ERANGE;
	if (family == AF_INET)
		return format_v4(buf, size, addr);
	if (family == AF_INET6)
		return format_v6(buf, size, addr);
	return SG_EINVAL;
}

int addr_format_endpoint(char *buf, size_t size, const struct wg_endpoint *ep, const char *zone)
{
	char ip[ADDR_STRLEN];
	int n;
	if (ep->addr.sa.sa_family == AF_INET) {
		if (addr_format(ip, sizeof(ip), AF_INET, (const uint8_t *)&ep->addr.in4.sin_addr) <
		    0)
			return SG_ERANGE;
		n = snprintf(buf, size, "%s:%u", ip, ntohs(ep->addr.in4.sin_port));
	} else if (ep->addr.sa.sa_family == AF_INET6) {
		if (addr_format(ip, sizeof(ip), AF_INET6,
				(const uint8_t *)&ep->addr.in6.sin6_addr) < 0)
			return SG_ERANGE;
		char scope[ADDR_ZONE_MAX + 2] = "";
		if (zone && zone[0])
			snprintf(scope, sizeof(scope), "%%%s", zone);
		else if (ep->addr.in6.sin6_scope_id != 0)
			snprintf(scope, sizeof(scope), "%%%u", ep->addr.in6.sin6_scope_id);
		n = snprintf(buf, size, "[%s%s]:%u", ip, scope, ntohs(ep->addr.in6.sin6_port));
	} else {
		return SG_EINVAL;
	}
	return n < 0 || (size_t)n >= size ? SG_ERANGE : n;
}

int addr_parse_uint(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (len == 0)
		return SG_EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return SG_EINVAL;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (max - d) / 10)
			return SG_ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* netip's parseIPv4: exactly four decimal fields 0..255, no leading zeros, nothing else. */
static int parse_v4(const char *s, size_t len, uint8_t out[4])
{
	int field = 0, digits = 0;
	unsigned val = 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c >= '0' && c <= '9') {
			if (digits == 1 && val == 0)
				return SG_EINVAL; /* leading zero */
			val = val * 10 + (unsigned)(c - '0');
			if (val > 255)
				return SG_EINVAL;
			digits++;
		} else if (c == '.') {
			if (digits == 0 || field == 3)
				return SG_EINVAL;
			out[field++] = (uint8_t)val;
			val = 0;
			digits = 0;
		} else {
			return SG_EINVAL;
		}
	}
	if (field != 3 || digits == 0)
		return SG_EINVAL;
	out[3] = (uint8_t)val;
	return 0;
}

static int parse_v6(const char *s, size_t len, uint8_t out[16])
{
	/* The longest valid text is 45 characters; inet_pton's IPv6 grammar is the one netip
	 * accepts (hex groups of at most 4 digits, one "::", an optional dotted IPv4 tail
	 * without leading zeros). */
	char tmp[ADDR_STRLEN];
	if (len == 0 || len >= sizeof(tmp))
		return SG_EINVAL;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
		      c == ':' || c == '.'))
			return SG_EINVAL;
	}
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	return inet_pton(AF_INET6, tmp, out) == 1 ? 0 : SG_EINVAL;
}

int addr_parse_ip(const char *s, size_t len, int *family, uint8_t addr[16])
{
	/* netip decides by the first '.' or ':' it meets. */
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.') {
			*family = AF_INET;
			return parse_v4(s, len, addr);
		}
		if (s[i] == ':') {
			*family = AF_INET6;
			return parse_v6(s, len, addr);
		}
	}
	return SG_EINVAL;
}

int addr_parse_endpoint(const char *s, size_t len, struct wg_endpoint *ep,
			char zone[ADDR_ZONE_MAX + 1], const char **why)
{
	memset(ep, 0, sizeof(*ep));
	zone[0] = '\0';
	/* netip.ParseAddrPort: split at the last colon. */
	const char *colon = NULL;
	for (size_t i = len; i > 0; i--) {
		if (s[i - 1] == ':') {
			colon = s + i - 1;
			break;
		}
	}
	if (!colon) {
		*why = "not an ip:port";
		return SG_EINVAL;
	}
	const char *ip = s;
	size_t ip_len = (size_t)(colon - s);
	const char *port = colon + 1;
	size_t port_len = len - ip_len - 1;
	if (ip_len == 0) {
		*why = "no IP";
		return SG_EINVAL;
	}
	if (port_len == 0) {
		*why = "no port";
		return SG_EINVAL;
	}
	bool brackets = false;
	if (ip[0] == '[') {
		if (ip_len < 2 || ip[ip_len - 1] != ']') {
			*why = "missing ]";
			return SG_EINVAL;
		}
		ip++;
		ip_len -= 2;
		brackets = true;
	}
	uint64_t portnum;
	if (addr_parse_uint(port, port_len, 65535, &portnum) != 0) {
		*why = "invalid port";
		return SG_EINVAL;
	}
	/* A zone follows the first '%' and must not be empty (IPv6 only). */
	const char *pct = memchr(ip, '%', ip_len);
	size_t addr_len = pct ? (size_t)(pct - ip) : ip_len;
	int family;
	uint8_t a[16];
	if (addr_parse_ip(ip, addr_len, &family, a) != 0) {
		*why = "invalid IP address";
		return SG_EINVAL;
	}
	if (pct) {
		size_t zlen = ip_len - addr_len - 1;
		if (family != AF_INET6) {
			*why = "invalid IP address";
			return SG_EINVAL;
		}
		if (zlen == 0) {
			*why = "zone must be a non-empty string";
			return SG_EINVAL;
		}
		if (zlen > ADDR_ZONE_MAX || memchr(pct + 1, '\0', zlen)) {
			*why = "invalid zone";
			return SG_EINVAL;
		}
		memcpy(zone, pct + 1, zlen);
		zone[zlen] = '\0';
	}
	if (brackets && family == AF_INET) {
		*why = "square brackets can only be used with IPv6 addresses";
		return SG_EINVAL;
	}
	if (!brackets && family == AF_INET6) {
		*why = "IPv6 addresses must be surrounded by square brackets";
		return SG_EINVAL;
	}
	if (family == AF_INET) {
		ep->addr.in4.sin_family = AF_INET;
		memcpy(&ep->addr.in4.sin_addr, a, 4);
		ep->addr.in4.sin_port = htons((uint16_t)portnum);
	} else {
		ep->addr.in6.sin6_family = AF_INET6;
		memcpy(&ep->addr.in6.sin6_addr, a, 16);
		ep->addr.in6.sin6_port = htons((uint16_t)portnum);
	}
	return 0;
}

int addr_parse_prefix(const char *s, size_t len, int *family, uint8_t addr[16], uint8_t *cidr,
		      const char **why)
{
	const char *slash = NULL;
	for (size_t i = len; i > 0; i--) {
		if (s[i - 1] == '/') {
			slash = s + i - 1;
			break;
		}
	}
	if (!slash) {
		*why = "no '/'";
		return SG_EINVAL;
	}
	size_t ip_len = (size_t)(slash - s);
	if (memchr(s, '%', ip_len)) {
		*why = "IPv6 zones cannot be present in a prefix";
		return SG_EINVAL;
	}
	memset(addr, 0, 16);
	if (addr_parse_ip(s, ip_len, family, addr) != 0) {
		*why = "invalid IP address";
		return SG_EINVAL;
	}
	const char *bits = slash + 1;
	size_t bits_len = len - ip_len - 1;
	uint64_t v;
	if ((bits_len > 1 && (bits[0] < '1' || bits[0] > '9')) ||
	    addr_parse_uint(bits, bits_len, UINT64_MAX, &v) != 0) {
		*why = "bad bits after slash";
		return SG_EINVAL;
	}
	if (v > (*family == AF_INET ? 32u : 128u)) {
		*why = "prefix length out of range";
		return SG_EINVAL;
	}
	*cidr = (uint8_t)v;
	return 0;
}

void addr_unmap_endpoint(struct wg_endpoint *out, const struct wg_endpoint *in)
{
	if (in->addr.sa.sa_family == AF_INET6 &&
	    memcmp(&in->addr.in6.sin6_addr, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0) {
		struct sockaddr_in v4;
		memset(&v4, 0, sizeof(v4));
		v4.sin_family = AF_INET;
		v4.sin_port = in->addr.in6.sin6_port;
		memcpy(&v4.sin_addr, (const uint8_t *)&in->addr.in6.sin6_addr + 12, 4);
		memset(out, 0, sizeof(*out));
		out->addr.in4 = v4;
		return;
	}
	if (out != in)
		*out = *in;
}
