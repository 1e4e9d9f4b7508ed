/* libFuzzer target: WireGuard data messages into a device with a live session. */
#include "wg_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_world_init();
	fuzz_feed(data, size, WG_MSG_DATA, true);
	return 0;
}
