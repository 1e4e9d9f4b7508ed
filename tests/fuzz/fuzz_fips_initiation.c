/* libFuzzer target: FIPS-mode initiation messages (184 bytes) into a device with FIPS
 * keys, a live FIPS session and FIPS initiations in flight (fips_fuzz.h). */
#include "fips_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fips_world_init();
	fips_feed(data, size, WG_MSG_INITIATION, FIPS_FEED_LOAD);
	return 0;
}
