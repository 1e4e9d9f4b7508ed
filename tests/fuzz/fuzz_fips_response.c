/* libFuzzer target: FIPS-mode response messages (111 bytes) into a device with a FIPS
 * initiation in flight, restored before every input (fips_fuzz.h). */
#include "fips_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fips_world_init();
	fips_feed(data, size, WG_MSG_RESPONSE, FIPS_FEED_LOAD | FIPS_FEED_REARM);
	return 0;
}
