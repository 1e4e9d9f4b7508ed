/* ICMP and ICMPv6 "destination unreachable" for a packet the tunnel cannot carry: no peer's
 * allowed IPs cover its destination, or that peer has no endpoint. The kernel module answers
 * such a packet with icmp_ndo_send(ICMP_DEST_UNREACH, ICMP_HOST_UNREACH) or
 * icmpv6_ndo_send(ICMPV6_DEST_UNREACH, ICMPV6_ADDR_UNREACH); secureguardd builds the same error
 * here and writes it back into the TUN device, so the sender fails at once ("No route to host")
 * instead of waiting for a timeout.
 *
 * The error comes from the packet's destination address: it arrives on the TUN interface, and
 * a source that is one of the host's own addresses would be dropped as a martian, while the
 * destination is routed through the interface, so reverse-path filtering passes it.
 *
 * No allocation and no I/O: the caller passes the packet and a buffer. The offending packet is
 * hostile input (any local process or forwarded host can send it), so every length is checked. */
#ifndef SG_NET_ICMP_H
#define SG_NET_ICMP_H

#include <stddef.h>
#include <stdint.h>

/* Largest error built: IPv6's minimum MTU (RFC 4443 2.4(c): as much of the packet as fits);
 * IPv4 errors stay within 576 bytes (RFC 1812 4.3.2.3). */
#define ICMP_ERR_MAX 1280

/* Writes into `out` (ICMP_ERR_MAX bytes are always enough) the destination-unreachable error
 * for the IPv4 or IPv6 packet `pkt` of `len` bytes: ICMP type 3 code 1 (host unreachable) or
 * ICMPv6 type 1 code 3 (address unreachable). Returns its length, or 0 when no error may be
 * sent: the packet is malformed, is itself an ICMP error (or an ICMPv6 redirect), is a later
 * fragment of an IPv4 datagram, goes to a multicast or broadcast address, or comes from an
 * address that is not unicast (RFC 1122 3.2.2, RFC 1812 4.3.2.7, RFC 4443 2.4(e)). */
size_t icmp_unreach_build(uint8_t *out, size_t size, const uint8_t *pkt, size_t len);

#endif
