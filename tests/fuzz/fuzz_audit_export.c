/* libFuzzer target: audit log exports (docs/AUDIT.md, "Export formats") through the streaming
 * verifier of `secureguard audit verify --file`. The format is sniffed from the first byte ('['
 * JSON, else CSV), so one target covers both parsers. Seeds: valid JSON and CSV exports of a
 * three-row chain (made with the Python reference in docs/AUDIT.md), a tampered row, a cut one. */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "server/audit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64], err[256];
	int64_t bad = 0, rows = 0;
	int fd = memfd_create("audit_export", MFD_CLOEXEC);

	if (fd < 0)
		return 0;
	if (size == 0 || write(fd, data, size) == (ssize_t)size) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		int ret = sg_audit_verify_file(path, &bad, &rows, err, sizeof(err));
		/* A verdict always comes with a reason; an intact chain with its row count. */
		if (ret != 0 && err[0] == '\0')
			__builtin_trap();
	}
	close(fd);
	return 0;
}
