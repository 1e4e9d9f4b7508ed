/* Fuzz target for the destination-unreachable builder (src/net/icmp.c): the input is a packet
 * as read from the TUN device, any process's or forwarded host's. The builder must never read
 * past it or write past ICMP_ERR_MAX bytes; an error it builds must be well formed: IPv4 within
 * 576 bytes with a valid header and ICMP checksum, IPv6 within 1280 with a valid ICMPv6
 * checksum over the pseudo-header, addresses swapped, and the quoted bytes the packet's own. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/icmp.h"
#include "net/offload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The one's-complement sum over a correct header or message is 0xffff (RFC 1071); the unit
 * test checks the builder's checksums against a sum of its own, this only that they hold. */
static uint16_t sum(const uint8_t *p, size_t len, uint32_t start)
{
	return offload_csum(p, len, start);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *out = malloc(ICMP_ERR_MAX); /* exact size: ASan sees a write past it */
	if (!out)
		return 0;
	size_t n = icmp_unreach_build(out, ICMP_ERR_MAX, data, size);
	if (n > ICMP_ERR_MAX)
		abort();
	if (n && (out[0] >> 4) == 4) {
		if (n > 576 || n < 28 || (size_t)(out[2] << 8 | out[3]) != n)
			abort();
		if (sum(out, 20, 0) != 0xffff || sum(out + 20, n - 20, 0) != 0xffff)
			abort();
		if (memcmp(out + 12, data + 16, 4) || memcmp(out + 16, data + 12, 4) ||
		    memcmp(out + 28, data, n - 28))
			abort();
	} else if (n) {
		if ((out[0] >> 4) != 6 || n < 48 || (size_t)(out[4] << 8 | out[5]) != n - 40)
			abort();
		uint32_t pseudo = sum(out + 8, 32, 0) + (uint32_t)(n - 40) + 58;
		if (sum(out + 40, n - 40, pseudo) != 0xffff)
			abort();
		if (memcmp(out + 8, data + 24, 16) || memcmp(out + 24, data + 8, 16) ||
		    memcmp(out + 48, data, n - 48))
			abort();
	}
	free(out);
	return 0;
}
