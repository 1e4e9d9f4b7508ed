/* A growing text buffer for output that may hold keys (configs, UAPI requests): it never
 * realloc()s, so no copy of a secret is left behind in freed memory, and it is wiped when freed.
 * Allocation failure is sticky (oom) so callers check once at the end. */
#ifndef SG_CONFIG_STRBUF_H
#define SG_CONFIG_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

struct sg_strbuf {
	char *p; /* NUL-terminated once anything was written */
	size_t len, cap;
	bool oom;
};

/* Appends formatted text. */
void sg_strbuf_printf(struct sg_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Wipes and frees the text; the buffer is empty and reusable afterwards. */
void sg_strbuf_free(struct sg_strbuf *b);

#endif
