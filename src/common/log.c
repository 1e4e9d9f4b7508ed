/* Structured key=value logging; see log.h. */
#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static struct {
	enum sg_log_level level;
	enum sg_log_target target;
	bool syslog_open;
	char context[128];
	sg_log_sink_fn sink;
	void *sink_ctx;
} log_state = {
    .level = SG_LOG_INFO,
    .target = SG_LOG_TO_STDERR,
};

static _Thread_local struct sg_log_local *log_local;

struct sg_log_local *sg_log_set_local(struct sg_log_local *l)
{
	struct sg_log_local *prev = log_local;
	log_local = l;
	return prev;
}

void sg_log_open(const char *ident, enum sg_log_target target)
{
	if (target == SG_LOG_TO_SYSLOG && !log_state.syslog_open) {
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
		log_state.syslog_open = true;
	}
	log_state.target = target;
}

void sg_log_close(void)
{
	if (log_state.syslog_open)
		closelog();
	log_state.syslog_open = false;
	log_state.target = SG_LOG_TO_STDERR;
}

void sg_log_set_level(enum sg_log_level level)
{
	log_state.level = level;
}

enum sg_log_level sg_log_get_level(void)
{
	if (log_local)
		return log_local->level;
	return log_state.level;
}

bool sg_log_enabled(enum sg_log_level level)
{
	if (log_local)
		return level <= log_local->level && log_local->sink;
	return level <= log_state.level;
}

void sg_log_set_context(const char *fields)
{
	if (!fields) {
		log_state.context[0] = '\0';
		return;
	}
	snprintf(log_state.context, sizeof(log_state.context), "%s", fields);
}

void sg_log_set_sink(sg_log_sink_fn fn, void *ctx)
{
	log_state.sink = fn;
	log_state.sink_ctx = ctx;
}

const char *sg_log_level_name(enum sg_log_level level)
{
	switch (level) {
	case SG_LOG_SILENT:
	case SG_LOG_ERROR:
		return "ERROR";
	case SG_LOG_WARN:
		return "WARN";
	case SG_LOG_INFO:
		return "INFO";
	case SG_LOG_DEBUG:
		return "DEBUG";
	}
	return "?";
}

static int syslog_priority(enum sg_log_level level)
{
	switch (level) {
	case SG_LOG_SILENT:
	case SG_LOG_ERROR:
		return LOG_ERR;
	case SG_LOG_WARN:
		return LOG_WARNING;
	case SG_LOG_INFO:
		return LOG_INFO;
	case SG_LOG_DEBUG:
		return LOG_DEBUG;
	}
	return LOG_INFO;
}

/* Appends to buf at *pos, never past size-1; *pos may pass size to record truncation. */
static void append(char *buf, size_t size, size_t *pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t size, size_t *pos, const char *fmt, ...)
{
	if (*pos >= size)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf + *pos, size - *pos, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	*pos += (size_t)n;
}

static void write_line(enum sg_log_level level, char *line, size_t len)
{
	if (log_local) {
		log_local->sink(log_local->sink_ctx, level, line);
		return;
	}
	if (log_state.sink) {
		log_state.sink(log_state.sink_ctx, level, line);
		return;
	}
	if (log_state.target == SG_LOG_TO_SYSLOG) {
		syslog(syslog_priority(level), "%s", line);
		return;
	}
	/* One write per line so lines of concurrent processes do not interleave. */
	line[len] = '\n';
	const char *p = line;
	size_t left = len + 1;
	while (left > 0) {
		ssize_t n = write(STDERR_FILENO, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		p += n;
		left -= (size_t)n;
	}
	line[len] = '\0';
}

void sg_log(enum sg_log_level level, const char *event, const char *fmt, ...)
{
	if (!sg_log_enabled(level))
		return;
	int saved_errno = errno;
	/* One spare byte for the newline write_line adds. */
	char line[SG_LOG_LINE_MAX + 1];
	const size_t size = SG_LOG_LINE_MAX;
	size_t pos = 0;

	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	append(line, size, &pos, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s event=%s",
	       tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	       ts.tv_nsec / 1000000, sg_log_level_name(level), event);
	const char *context = log_local ? log_local->context : log_state.context;
	if (context[0])
		append(line, size, &pos, " %s", context);
	if (fmt && fmt[0]) {
		append(line, size, &pos, " ");
		if (pos < size) {
			va_list ap;
			va_start(ap, fmt);
			int n = vsnprintf(line + pos, size - pos, fmt, ap);
			va_end(ap);
			if (n > 0)
				pos += (size_t)n;
		}
	}
	if (pos >= size) {
		/* Cut: mark it so a reader knows the line is incomplete. */
		pos = size - 1;
		memcpy(line + pos - 3, "...", 3);
	}
	line[pos] = '\0';
	write_line(level, line, pos);
	errno = saved_errno;
}

static bool is_bare(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return strchr("._:/@+-,[]%", c) != NULL && c != '\0';
}

const char *sg_log_quote(char *buf, size_t size, const char *s)
{
	if (size == 0)
		return buf;
	if (size < 8) {
		buf[0] = '\0';
		return buf;
	}
	bool bare = s[0] != '\0';
	for (const char *p = s; *p && bare; p++)
		bare = is_bare((unsigned char)*p);
	size_t pos = 0;
	/* Room kept at the end for `..."` and the NUL. */
	const size_t limit = size - 5;
	bool cut = false;
	if (!bare)
		buf[pos++] = '"';
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char esc[5];
		size_t n;
		if (bare) {
			esc[0] = (char)*p;
			n = 1;
		} else if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			n = 2;
		} else if (*p == '\n') {
			memcpy(esc, "\\n", 2);
			n = 2;
		} else if (*p == '\t') {
			memcpy(esc, "\\t", 2);
			n = 2;
		} else if (*p < 0x20 || *p == 0x7f) {
			snprintf(esc, sizeof(esc), "\\x%02x", *p);
			n = 4;
		} else {
			esc[0] = (char)*p;
			n = 1;
		}
		if (pos + n > limit) {
			cut = true;
			break;
		}
		memcpy(buf + pos, esc, n);
		pos += n;
	}
	if (cut) {
		memcpy(buf + pos, "...", 3);
		pos += 3;
	}
	if (!bare)
		buf[pos++] = '"';
	buf[pos] = '\0';
	return buf;
}

const char *sg_log_key_tag(char out[SG_LOG_KEY_TAG_SIZE], const uint8_t key[32])
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	/* 6 bytes are exactly 8 base64 characters, the same prefix `wg` prints. */
	for (int i = 0; i < 2; i++) {
		uint32_t v =
		    (uint32_t)key[3 * i] << 16 | (uint32_t)key[3 * i + 1] << 8 | key[3 * i + 2];
		out[4 * i + 0] = b64[(v >> 18) & 63];
		out[4 * i + 1] = b64[(v >> 12) & 63];
		out[4 * i + 2] = b64[(v >> 6) & 63];
		out[4 * i + 3] = b64[v & 63];
	}
	memcpy(out + 8, "\xe2\x80\xa6", 3); /* U+2026 HORIZONTAL ELLIPSIS */
	out[11] = '\0';
	return out;
}

bool sg_log_ratelimit_allow(struct sg_log_ratelimit *rl, uint64_t now_ns, uint64_t *suppressed)
{
	if (!rl->started) {
		rl->started = true;
		rl->tokens = rl->burst;
		rl->last_ns = now_ns;
	}
	if (rl->rate > 0 && now_ns > rl->last_ns) {
		uint64_t interval = 1000000000ull / rl->rate;
		uint64_t add = (now_ns - rl->last_ns) / (interval ? interval : 1);
		if (add > 0) {
			uint64_t t = rl->tokens + add;
			rl->tokens = (uint32_t)(t > rl->burst ? rl->burst : t);
			rl->last_ns = now_ns;
		}
	}
	if (rl->tokens == 0) {
		rl->suppressed++;
		return false;
	}
	rl->tokens--;
	if (suppressed)
		*suppressed = rl->suppressed;
	rl->suppressed = 0;
	return true;
}
