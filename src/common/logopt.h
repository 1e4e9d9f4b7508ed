/* The logging options every SecureGuard daemon takes (docs/OPERATIONS.md "Logs"):
 *
 *   --log-level error|warn|info|debug   --log-format text|json
 *   --log-file FILE  --log-max-size BYTES[k|M|G]  --log-files N   --syslog
 *
 * A command adds SG_LOG_LONGOPTS to its getopt_long table, passes every option to sg_logopt_parse
 * and calls sg_logopt_apply once its options are read. */
#ifndef SG_COMMON_LOGOPT_H
#define SG_COMMON_LOGOPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* getopt_long values of the options; chosen above every command's own. */
enum {
	SG_LOGOPT_LEVEL = 0x4c00,
	SG_LOGOPT_FORMAT,
	SG_LOGOPT_FILE,
	SG_LOGOPT_MAX_SIZE,
	SG_LOGOPT_FILES,
	SG_LOGOPT_SYSLOG,
};

#define SG_LOG_LONGOPTS                                                                            \
	{"log-level", required_argument, NULL, SG_LOGOPT_LEVEL},                                   \
	    {"log-format", required_argument, NULL, SG_LOGOPT_FORMAT},                             \
	    {"log-file", required_argument, NULL, SG_LOGOPT_FILE},                                 \
	    {"log-max-size", required_argument, NULL, SG_LOGOPT_MAX_SIZE},                         \
	    {"log-files", required_argument, NULL, SG_LOGOPT_FILES},                               \
	{                                                                                          \
		"syslog", no_argument, NULL, SG_LOGOPT_SYSLOG                                      \
	}

#define SG_LOG_USAGE                                                                               \
	"  --log-level LEVEL       error, warn, info (default) or debug\n"                         \
	"  --log-format FORMAT     text (key=value, default) or json (one object per line)\n"      \
	"  --log-file FILE         log to FILE instead of stderr (reopened on SIGHUP)\n"           \
	"  --log-max-size BYTES    rotate FILE at this size (k, M, G suffixes; default 100M;\n"    \
	"                          0: never, for logrotate)\n"                                     \
	"  --log-files N           rotated files kept: FILE.1 .. FILE.N (default 5)\n"             \
	"  --syslog                log to syslog (facility daemon) instead of stderr\n"

struct sg_logopt {
	int level; /* -2: not given */
	int format;
	const char *file;
	uint64_t max_size;
	unsigned files;
	bool syslog;
};

void sg_logopt_init(struct sg_logopt *o);
/* 1: opt was a logging option and is taken; 0: not one of them; -1: its value is wrong (the
 * reason printed on stderr after prog). */
int sg_logopt_parse(struct sg_logopt *o, int opt, const char *arg, const char *prog);
/* Sets level, format and target (ident: the syslog identity, kept by reference). Returns 0, or
 * -1 with err filled (a log file that cannot be opened). */
int sg_logopt_apply(const struct sg_logopt *o, const char *ident, char *err, size_t el);

#endif
