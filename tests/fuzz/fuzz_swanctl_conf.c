/* Fuzz target: the swanctl.conf parser (src/vici/swanctl_conf.c), fed line by line as the daemon
 * does. Every error names its line; every message made must be a valid VICI message. */
#include <stdlib.h>
#include <string.h>

#include "vici/swanctl_conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct swanctl_conf c;
	const char *text = (const char *)data;
	size_t pos = 0;
	int err = 0;
	swanctl_init(&c);
	while (pos < size && !err) {
		const char *nl = memchr(text + pos, '\n', size - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : size - pos;
		err = swanctl_feed(&c, text + pos, n);
		pos += n + (nl ? 1 : 0);
	}
	if (!err)
		err = swanctl_finish(&c);
	if (err && strncmp(c.err, "line ", 5) != 0)
		abort();
	for (unsigned i = 0; !err && i < c.nitems; i++) {
		const uint8_t *raw;
		size_t len;
		struct vici_msg *m;
		if (vici_builder_finish(&c.items[i].msg, &raw, &len, NULL) != 0 ||
		    vici_msg_parse(raw, len, &m, NULL) != 0)
			abort();
		vici_msg_free(m);
	}
	swanctl_free(&c);
	return 0;
}
