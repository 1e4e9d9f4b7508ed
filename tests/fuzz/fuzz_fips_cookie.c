/* libFuzzer target: FIPS-mode cookie replies (52 bytes) into a device that has sent a
 * FIPS initiation (fips_fuzz.h). */
#include "fips_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fips_world_init();
	fips_feed(data, size, WG_MSG_COOKIE, FIPS_FEED_REARM | FIPS_FEED_INDEX_ALIAS);
	return 0;
}
