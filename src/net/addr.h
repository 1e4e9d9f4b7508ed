/* Address text forms shared by the UAPI and the logs, with the exact syntax wireguard-go uses
 * (Go's net/netip): no I/O, no allocation, bounded by the caller's lengths.
 *
 * Formatting follows RFC 5952 (lowercase, longest run of two or more zero groups compressed,
 * first run on a tie) and prints IPv4-mapped addresses as ::ffff:a.b.c.d, as netip does.
 * Parsing accepts what netip.ParseAddrPort / netip.ParsePrefix accept: dotted quads without
 * leading zeros, IPv6 in brackets for endpoints, an IPv6 zone ("%eth0") in an endpoint only.
 */
#ifndef SG_NET_ADDR_H
#define SG_NET_ADDR_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"
#include "wg/wg.h"

/* Longest address text: "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" + NUL. */
#define ADDR_STRLEN 48
/* Longest zone we keep (Go allows any non-empty string; interface names are shorter). */
#define ADDR_ZONE_MAX 64
/* "[" addr "%" zone "]:" port NUL */
#define ADDR_ENDPOINT_STRLEN (ADDR_STRLEN + ADDR_ZONE_MAX + 10)

/* Formats a 4-byte (AF_INET) or 16-byte (AF_INET6) address. Returns the length, or
 * SG_EINVAL (unknown family) / SG_ERANGE (buffer too small). */
int addr_format(char *buf, size_t size, int family, const uint8_t *addr) SG_WUR;

/* Formats an endpoint as Go's AddrPort.String: "192.0.2.1:51820", "[2001:db8::1]:51820",
 * "[fe80::1%eth0]:51820". `zone` names the IPv6 scope (NULL: the numeric sin6_scope_id when it is
 * not 0). Returns the length or a negative SG_E* code. */
int addr_format_endpoint(char *buf, size_t size, const struct wg_endpoint *ep,
			 const char *zone) SG_WUR;

/* Parses an unsigned decimal as Go's strconv.ParseUint(s, 10, bits): one or more ASCII digits,
 * leading zeros allowed, no sign, value <= max. Returns 0 or SG_EINVAL/SG_ERANGE. */
int addr_parse_uint(const char *s, size_t len, uint64_t max, uint64_t *out) SG_WUR;

/* Parses an IPv4 or IPv6 address without zone. family receives AF_INET/AF_INET6 and addr 4 or
 * 16 bytes. Returns 0 or SG_EINVAL. */
int addr_parse_ip(const char *s, size_t len, int *family, uint8_t addr[16]) SG_WUR;

/* Parses "a.b.c.d:port" or "[v6]:port" / "[v6%zone]:port" into ep (port in network order). The
 * zone text, when present, is copied into zone (NUL-terminated; empty if none); the caller maps it
 * to sin6_scope_id. *why says what is wrong on failure. Returns 0 or SG_EINVAL. */
int addr_parse_endpoint(const char *s, size_t len, struct wg_endpoint *ep,
			char zone[ADDR_ZONE_MAX + 1], const char **why) SG_WUR;

/* Parses "addr/bits" as netip.ParsePrefix: bits in decimal without sign or leading zero,
 * <= 32 for IPv4, <= 128 for IPv6; no zone. Host bits are kept as given. */
int addr_parse_prefix(const char *s, size_t len, int *family, uint8_t addr[16], uint8_t *cidr,
		      const char **why) SG_WUR;

/* IPv4-mapped IPv6 (::ffff:a.b.c.d) endpoints become AF_INET; anything else is copied. Used on
 * datagrams received on the dual-stack socket, so the core sees one form per IPv4 peer. */
void addr_unmap_endpoint(struct wg_endpoint *out, const struct wg_endpoint *in);

#endif
