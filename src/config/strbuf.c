#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"

void sg_strbuf_printf(struct sg_strbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = true;
		return;
	}
	if (!b->p || (size_t)n + 1 > b->cap - b->len) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;

		while ((size_t)n + 1 > cap - b->len)
			cap *= 2;
		/* Not realloc: the old block may hold keys, so wipe it ourselves. */
		p = malloc(cap);
		if (!p) {
			b->oom = true;
			return;
		}
		if (b->p) {
			memcpy(p, b->p, b->len);
			sg_memzero(b->p, b->cap);
			free(b->p);
		}
		b->p = p;
		b->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void sg_strbuf_free(struct sg_strbuf *b)
{
	if (b->p) {
		sg_memzero(b->p, b->cap);
		free(b->p);
	}
	memset(b, 0, sizeof(*b));
}
