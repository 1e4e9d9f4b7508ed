/* Destination-unreachable errors for the TUN device; see icmp.h. */
#include "net/icmp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>

#include "common/compiler.h"
#include "net/offload.h"

#define IPV4_QUOTE_TOTAL 576  /* RFC 1812 4.3.2.3: the whole error within 576 bytes */
#define ERR_TTL		 64   /* a fresh packet's TTL, as the kernel's default */
#define ERR_TOS		 0xc0 /* RFC 1812 4.3.2.5: precedence 6, internetwork control */
#define EXT_HEADERS_MAX	 8    /* IPv6 extension headers looked through before giving up */

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* ICMP types that are errors (RFC 792, RFC 1122 3.2.2): never answered with an error. Types
 * above 18 are unknown and not answered either, as the kernel does (icmp_send). */
static bool icmp4_no_error_for(uint8_t type)
{
	return type > 18 || type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
}

static size_t build4(uint8_t *out, size_t size, const uint8_t *p, size_t len)
{
	size_t ihl = (size_t)(p[0] & 0x0f) * 4, total = get16(p + 2);

	if (ihl < 20 || total < ihl || ihl > len)
		return 0;
	if (total > len)
		total = len; /* what we have of it is what we quote */
	if (get16(p + 6) & 0x1fff)
		return 0; /* a later fragment: the first one gets the error (RFC 1122 3.2.2) */
	const uint8_t *src = p + 12, *dst = p + 16;
	if ((dst[0] & 0xf0) == 0xe0 || !memcmp(dst, "\xff\xff\xff\xff", 4) ||
	    !memcmp(dst, "\0\0\0\0", 4))
		return 0; /* multicast, limited broadcast or "this host" */
	if (!memcmp(src, "\0\0\0\0", 4) || src[0] == 127 || (src[0] & 0xe0) == 0xe0)
		return 0; /* not a unicast host: unspecified, loopback, multicast, class E */
	if (p[9] == IPPROTO_ICMP && (total <= ihl || icmp4_no_error_for(p[ihl])))
		return 0;
	size_t quote = SG_MIN(total, (size_t)IPV4_QUOTE_TOTAL - 28);
	size_t n = 28 + quote;
	if (n > size)
		return 0;
	uint8_t *ip = out, *icmp = out + 20;
	memset(out, 0, 28);
	ip[0] = 0x45;
	ip[1] = ERR_TOS;
	put16(ip + 2, (uint16_t)n);
	ip[8] = ERR_TTL;
	ip[9] = IPPROTO_ICMP;
	memcpy(ip + 12, dst, 4); /* from the unreachable destination (icmp.h) */
	memcpy(ip + 16, src, 4);
	put16(ip + 10, (uint16_t)~offload_csum(ip, 20, 0));
	icmp[0] = 3; /* destination unreachable */
	icmp[1] = 1; /* host unreachable */
	memcpy(icmp + 8, p, quote);
	put16(icmp + 2, (uint16_t)~offload_csum(icmp, 8 + quote, 0));
	return n;
}

static size_t build6(uint8_t *out, size_t size, const uint8_t *p, size_t len)
{
	size_t total = 40 + get16(p + 4);

	if (total > len)
		return 0; /* the header claims more than the packet has */
	if (get16(p + 4) == 0)
		total = len; /* a jumbogram's length is in an option: take the packet as it is */
	const uint8_t *src = p + 8, *dst = p + 24;
	static const uint8_t zero[16], loopback[16] = {[15] = 1};
	if (dst[0] == 0xff)
		return 0; /* multicast (RFC 4443 2.4(e.3)) */
	if (src[0] == 0xff || !memcmp(src, zero, 16) || !memcmp(src, loopback, 16))
		return 0; /* not a unicast source (RFC 4443 2.4(e.6)) */

	/* Through the extension headers to see whether it is an ICMPv6 error (RFC 4443 2.4(e.1)),
	 * which gets no error back. A later fragment hides its upper layer: it may get one. */
	uint8_t nh = p[6];
	size_t off = 40;
	bool later_fragment = false;
	for (int i = 0; i < EXT_HEADERS_MAX; i++) {
		if (nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS) {
			if (off + 2 > total)
				return 0;
			nh = p[off];
			off += ((size_t)p[off + 1] + 1) * 8;
		} else if (nh == IPPROTO_AH) {
			if (off + 2 > total)
				return 0;
			nh = p[off];
			off += ((size_t)p[off + 1] + 2) * 4;
		} else if (nh == IPPROTO_FRAGMENT) {
			if (off + 8 > total)
				return 0;
			nh = p[off];
			later_fragment = (get16(p + off + 2) & 0xfff8) != 0;
			off += 8;
			if (later_fragment)
				break;
		} else {
			break;
		}
	}
	if (off > total)
		return 0;
	if (!later_fragment && nh == IPPROTO_ICMPV6) {
		if (off >= total)
			return 0;
		uint8_t type = p[off];
		if (type < 128 || type == 137)
			return 0; /* an error message or a redirect */
	}
	size_t quote = SG_MIN(total, (size_t)ICMP_ERR_MAX - 48);
	size_t icmp_len = 8 + quote, n = 40 + icmp_len;
	if (n > size)
		return 0;
	uint8_t *ip = out, *icmp = out + 40;
	memset(out, 0, 48);
	ip[0] = 0x60;
	put16(ip + 4, (uint16_t)icmp_len);
	ip[6] = IPPROTO_ICMPV6;
	ip[7] = ERR_TTL;
	memcpy(ip + 8, dst, 16); /* from the unreachable destination (icmp.h) */
	memcpy(ip + 24, src, 16);
	icmp[0] = 1; /* destination unreachable */
	icmp[1] = 3; /* address unreachable: what the kernel module sends */
	memcpy(icmp + 8, p, quote);
	/* RFC 8200 8.1 pseudo-header: addresses, upper-layer length, next header. */
	uint32_t pseudo = offload_csum(ip + 8, 32, 0) + (uint32_t)icmp_len + IPPROTO_ICMPV6;
	put16(icmp + 2, (uint16_t)~offload_csum(icmp, icmp_len, pseudo));
	return n;
}

size_t icmp_unreach_build(uint8_t *out, size_t size, const uint8_t *pkt, size_t len)
{
	if (len >= 20 && (pkt[0] >> 4) == 4)
		return build4(out, size, pkt, len);
	if (len >= 40 && (pkt[0] >> 4) == 6)
		return build6(out, size, pkt, len);
	return 0;
}
