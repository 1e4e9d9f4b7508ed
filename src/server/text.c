/* Text of names and descriptions (issue 20, item 11): Unicode NFC, no control or invisible
 * characters, no spaces at either end of a name, and a case-folded key for comparing names and
 * e-mail addresses. utf8proc (Debian's libutf8proc) carries the Unicode tables: normalisation
 * and categories are not something to write by hand. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "server/srv_int.h"

/* Characters a reader cannot see or that change how text around them is shown: controls (Cc),
 * format characters (Cf: zero-width space and joiners, bidi overrides and isolates, soft
 * hyphen), surrogates, private use, unassigned code points, and line/paragraph separators. */
static bool invisible(utf8proc_int32_t cp)
{
	switch (utf8proc_category(cp)) {
	case UTF8PROC_CATEGORY_CC:
	case UTF8PROC_CATEGORY_CF:
	case UTF8PROC_CATEGORY_CS:
	case UTF8PROC_CATEGORY_CO:
	case UTF8PROC_CATEGORY_CN:
	case UTF8PROC_CATEGORY_ZL:
	case UTF8PROC_CATEGORY_ZP:
		return true;
	default:
		return false;
	}
}

static bool space(utf8proc_int32_t cp)
{
	return utf8proc_category(cp) == UTF8PROC_CATEGORY_ZS;
}

bool srv_text_check(const char *s, bool name, const char **why)
{
	const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
	utf8proc_ssize_t n = (utf8proc_ssize_t)strlen(s);
	utf8proc_int32_t cp = -1, first = -1;

	while (n > 0) {
		utf8proc_ssize_t k = utf8proc_iterate(p, n, &cp);

		if (k <= 0) {
			*why = "is not valid UTF-8";
			return false;
		}
		if (invisible(cp)) {
			*why = "must not contain control or invisible characters (zero-width, bidi "
			       "controls, format characters)";
			return false;
		}
		if (first < 0)
			first = cp;
		p += k;
		n -= k;
	}
	if (name && first >= 0 && (space(first) || space(cp))) {
		*why = "must not begin or end with a space";
		return false;
	}
	return true;
}

char *srv_text_nfc(const char *s)
{
	return (char *)utf8proc_NFC((const utf8proc_uint8_t *)s);
}

char *srv_text_fold(const char *s)
{
	utf8proc_uint8_t *out = NULL;
	utf8proc_ssize_t n =
	    utf8proc_map((const utf8proc_uint8_t *)s, 0, &out,
			 UTF8PROC_NULLTERM | UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD);

	if (n < 0) {
		free(out);
		return NULL;
	}
	return (char *)out;
}
