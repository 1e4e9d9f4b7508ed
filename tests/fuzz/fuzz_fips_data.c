/* libFuzzer target: FIPS-mode data messages into a device with a live FIPS session
 * (fips_fuzz.h). */
#include "fips_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fips_world_init();
	fips_feed(data, size, WG_MSG_DATA, FIPS_FEED_LIVE_INDEX);
	return 0;
}
