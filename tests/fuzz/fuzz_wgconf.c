/* Fuzz target for the config parser (src/config/wgconf.c): the input is fed line by line, as
 * the CLI does. When it parses, the serializer's text must parse again and serialize to the
 * same text (both with and without the wg-quick keys), so what SaveConfig and showconf write is
 * always readable back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/wgconf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void reparse(const char *text, size_t len, unsigned int flags)
{
	struct sg_wgconf c;
	char *again;
	size_t again_len;

	sg_wgconf_init(&c);
	if (sg_wgconf_parse(&c, text, len))
		abort(); /* serializer wrote something the parser rejects */
	if (sg_wgconf_serialize(&c, flags, &again, &again_len))
		abort();
	if (again_len != len || memcmp(again, text, len))
		abort(); /* not a fixed point */
	free(again);
	sg_wgconf_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sg_wgconf c;
	const char *text = (const char *)data;
	size_t pos = 0;
	int ret = 0;

	sg_wgconf_init(&c);
	while (pos < size && !ret) {
		const char *nl = memchr(text + pos, '\n', size - pos);
		size_t end = nl ? (size_t)(nl - text) + 1 : size;

		ret = sg_wgconf_parse_line(&c, text + pos, end - pos);
		pos = end;
	}
	if (!ret)
		ret = sg_wgconf_parse_finish(&c);
	if (ret) {
		/* A failed parse always explains itself. */
		if (!sg_wgconf_error(&c)[0])
			abort();
	} else {
		for (unsigned int flags = 0; flags <= SG_WGCONF_WG_ONLY; flags++) {
			char *out;
			size_t len;

			if (sg_wgconf_serialize(&c, flags, &out, &len))
				abort();
			reparse(out, len, flags);
			free(out);
		}
	}
	sg_wgconf_free(&c);
	return 0;
}
