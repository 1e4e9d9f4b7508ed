/* The daemons' shared logging options; see logopt.h. */
#include "common/logopt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

void sg_logopt_init(struct sg_logopt *o)
{
	memset(o, 0, sizeof(*o));
	o->level = -2;
	o->format = SG_LOG_FORMAT_TEXT;
	o->max_size = 100ull << 20;
	o->files = 5;
}

/* "123", "64k", "100M", "1G" (powers of 1024); false when it is none of them or above 1 TiB. */
static bool parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (s[0] < '0' || s[0] > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return false;
	switch (*end) {
	case 'k':
	case 'K':
		v <<= 10;
		end++;
		break;
	case 'm':
	case 'M':
		v <<= 20;
		end++;
		break;
	case 'g':
	case 'G':
		v <<= 30;
		end++;
		break;
	default:
		break;
	}
	if (*end || v > (1ull << 40))
		return false;
	*out = v;
	return true;
}

int sg_logopt_parse(struct sg_logopt *o, int opt, const char *arg, const char *prog)
{
	char *end;
	long n;

	switch (opt) {
	case SG_LOGOPT_LEVEL:
		o->level = sg_log_parse_level(arg);
		if (o->level < 0) {
			fprintf(stderr, "%s: --log-level must be error, warn, info or debug\n",
				prog);
			return -1;
		}
		return 1;
	case SG_LOGOPT_FORMAT:
		if (!strcmp(arg, "text"))
			o->format = SG_LOG_FORMAT_TEXT;
		else if (!strcmp(arg, "json"))
			o->format = SG_LOG_FORMAT_JSON;
		else {
			fprintf(stderr, "%s: --log-format must be text or json\n", prog);
			return -1;
		}
		return 1;
	case SG_LOGOPT_FILE:
		if (!arg[0]) {
			fprintf(stderr, "%s: --log-file needs a file name\n", prog);
			return -1;
		}
		o->file = arg;
		return 1;
	case SG_LOGOPT_MAX_SIZE:
		if (!parse_size(arg, &o->max_size) || (o->max_size > 0 && o->max_size < 4096)) {
			fprintf(stderr,
				"%s: --log-max-size must be 0 or 4096 bytes to 1T (k, M, G "
				"suffixes), got '%s'\n",
				prog, arg);
			return -1;
		}
		return 1;
	case SG_LOGOPT_FILES:
		errno = 0;
		n = strtol(arg, &end, 10);
		if (errno || *end || !arg[0] || n < 0 || n > 100) {
			fprintf(stderr, "%s: --log-files must be 0 to 100, got '%s'\n", prog, arg);
			return -1;
		}
		o->files = (unsigned)n;
		return 1;
	case SG_LOGOPT_SYSLOG:
		o->syslog = true;
		return 1;
	default:
		return 0;
	}
}

int sg_logopt_apply(const struct sg_logopt *o, const char *ident, char *err, size_t el)
{
	if (o->file && o->syslog) {
		snprintf(err, el, "--log-file and --syslog exclude each other");
		return -1;
	}
	if (o->level >= 0)
		sg_log_set_level((enum sg_log_level)o->level);
	sg_log_set_format((enum sg_log_format)o->format);
	if (o->file)
		return sg_log_open_file(o->file, o->max_size, o->files, err, el);
	if (o->syslog)
		sg_log_open(ident, SG_LOG_TO_SYSLOG);
	return 0;
}
