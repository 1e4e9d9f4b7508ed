/* libFuzzer target: reject messages (12 bytes) into a device with FIPS initiations in
 * flight to an auto peer and to a fips peer, restored before every input (fips_fuzz.h). */
#include "fips_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fips_world_init();
	fips_feed(data, size, WG_MSG_REJECT, FIPS_FEED_REARM | FIPS_FEED_INDEX_ALIAS);
	return 0;
}
