/* Structured key=value logging; see log.h. */
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "common/bytes.h"

static struct {
	enum sg_log_level level;
	enum sg_log_target target;
	enum sg_log_format format;
	bool syslog_open;
	char context[128];
	sg_log_sink_fn sink;
	void *sink_ctx;
	/* SG_LOG_TO_FILE: */
	int fd;
	char path[PATH_MAX];
	uint64_t size, max_bytes;
	unsigned keep;
} log_state = {
    .level = SG_LOG_INFO,
    .target = SG_LOG_TO_STDERR,
    .fd = -1,
};

/* Guards the log file (rotation, reopening) against lines of other threads. */
static pthread_mutex_t file_lock = PTHREAD_MUTEX_INITIALIZER;
static volatile sig_atomic_t reopen_requested;

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
	pthread_mutex_lock(&file_lock);
	if (log_state.fd >= 0)
		close(log_state.fd);
	log_state.fd = -1;
	pthread_mutex_unlock(&file_lock);
	log_state.target = SG_LOG_TO_STDERR;
}

/* Opens log_state.path for appending; records its size. Returns the fd or -1 (errno set). */
static int open_log_file(void)
{
	struct stat st;
	int fd = open(log_state.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = S_ISREG(st.st_mode) ? errno : EINVAL;
		return -1;
	}
	log_state.size = (uint64_t)st.st_size;
	return fd;
}

int sg_log_open_file(const char *path, uint64_t max_bytes, unsigned keep, char *err, size_t el)
{
	char old[PATH_MAX];
	int fd;

	if (strlen(path) + 12 >= sizeof(log_state.path) || !path[0]) {
		snprintf(err, el, "log file name empty or too long");
		return -1;
	}
	pthread_mutex_lock(&file_lock);
	memcpy(old, log_state.path, sizeof(old));
	snprintf(log_state.path, sizeof(log_state.path), "%s", path);
	fd = open_log_file();
	if (fd < 0) {
		int e = errno;

		memcpy(log_state.path, old, sizeof(old));
		pthread_mutex_unlock(&file_lock);
		snprintf(err, el, "%s: %s", path, e == EINVAL ? "not a regular file" : strerror(e));
		return -1;
	}
	if (log_state.fd >= 0)
		close(log_state.fd);
	log_state.fd = fd;
	log_state.max_bytes = max_bytes;
	log_state.keep = keep;
	log_state.target = SG_LOG_TO_FILE;
	reopen_requested = 0;
	pthread_mutex_unlock(&file_lock);
	return 0;
}

void sg_log_reopen_request(void)
{
	reopen_requested = 1;
}

enum sg_log_target sg_log_get_target(void)
{
	return log_state.target;
}

void sg_log_set_format(enum sg_log_format format)
{
	log_state.format = format;
}

enum sg_log_format sg_log_get_format(void)
{
	return log_state.format;
}

/* Under file_lock: path.(keep-1) -> path.keep, ..., path -> path.1, then a new path. A rename
 * that fails leaves the lines going to the file as it is (the next line tries again). */
static void rotate(void)
{
	char from[PATH_MAX + 16], to[PATH_MAX + 16];

	if (log_state.keep == 0) {
		if (unlink(log_state.path) && errno != ENOENT)
			return;
	} else {
		for (unsigned i = log_state.keep; i > 1; i--) {
			snprintf(from, sizeof(from), "%s.%u", log_state.path, i - 1);
			snprintf(to, sizeof(to), "%s.%u", log_state.path, i);
			if (rename(from, to) && errno != ENOENT)
				return;
		}
		snprintf(to, sizeof(to), "%s.1", log_state.path);
		if (rename(log_state.path, to))
			return;
	}
	int fd = open_log_file();
	if (fd >= 0) {
		close(log_state.fd);
		log_state.fd = fd;
	}
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

int sg_log_parse_level(const char *s)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};

	for (int i = 0; i < 4; i++) {
		if (!strcasecmp(s, names[i]))
			return i;
	}
	return -2;
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

/* Writes all of buf to fd; returns the bytes written. */
static size_t write_all(int fd, const char *p, size_t left)
{
	size_t done = 0;

	while (left > 0) {
		ssize_t n = write(fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		p += n;
		left -= (size_t)n;
		done += (size_t)n;
	}
	return done;
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
	if (log_state.target == SG_LOG_TO_FILE) {
		pthread_mutex_lock(&file_lock);
		if (reopen_requested) {
			reopen_requested = 0;
			int fd = open_log_file();
			if (fd >= 0) {
				close(log_state.fd);
				log_state.fd = fd;
			}
		}
		if (log_state.max_bytes && log_state.size > 0 &&
		    log_state.size + len + 1 > log_state.max_bytes)
			rotate();
		log_state.size += write_all(log_state.fd, line, len + 1);
		pthread_mutex_unlock(&file_lock);
	} else {
		write_all(STDERR_FILENO, line, len + 1);
	}
	line[len] = '\0';
}

/* ---- key=value to JSON ---------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if there is none. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t need;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0) {
		need = 2;
		cp = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		need = 3;
		cp = p[0] & 0x0f;
	} else if ((p[0] & 0xf8) == 0xf0) {
		need = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (need > n)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((need == 2 && cp < 0x80) || (need == 3 && cp < 0x800) || (need == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return need;
}

/* Appends s (n bytes) as a JSON string to out at *pos; false if it does not fit in size. */
static bool json_string(char *out, size_t size, size_t *pos, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t at = *pos;

#define PUT(str, len)                                                                              \
	do {                                                                                       \
		if (at + (len) >= size)                                                            \
			return false;                                                              \
		memcpy(out + at, (str), (len));                                                    \
		at += (len);                                                                       \
	} while (0)
	PUT("\"", 1);
	for (size_t i = 0; i < n;) {
		char esc[8];
		size_t k;

		if (p[i] == '"' || p[i] == '\\') {
			esc[0] = '\\';
			esc[1] = (char)p[i];
			PUT(esc, 2);
			i++;
		} else if (p[i] == '\n' || p[i] == '\t' || p[i] == '\r') {
			esc[0] = '\\';
			esc[1] = p[i] == '\n' ? 'n' : p[i] == '\t' ? 't' : 'r';
			PUT(esc, 2);
			i++;
		} else if (p[i] < 0x20 || p[i] == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", p[i]);
			PUT(esc, 6);
			i++;
		} else if ((k = utf8_len(p + i, n - i)) == 0) {
			PUT("\\ufffd", 6);
			i++;
		} else {
			PUT(p + i, k);
			i += k;
		}
	}
	PUT("\"", 1);
#undef PUT
	*pos = at;
	return true;
}

/* A JSON number that every parser takes: -?(0|[1-9][0-9]{0,17})(.[0-9]+)?, 24 bytes at most. */
static bool is_json_number(const char *s, size_t n)
{
	size_t i = 0;

	if (i < n && s[i] == '-')
		i++;
	if (i >= n || s[i] < '0' || s[i] > '9')
		return false;
	if (s[i] == '0' && i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '9')
		return false;
	size_t digits = i;
	while (i < n && s[i] >= '0' && s[i] <= '9')
		i++;
	if (i - digits > 18) /* past a 64-bit integer: parsers (jansson) refuse it */
		return false;
	if (i < n && s[i] == '.') {
		i++;
		if (i >= n || s[i] < '0' || s[i] > '9')
			return false;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	return i == n && n <= 24;
}

/* Decodes the value sg_log_quote wrote in double quotes at *pp into val (SG_LOG_LINE_MAX + 1
 * bytes); *pp moves past the closing quote. \x00 is left as the text x00: no NUL in a line. */
static size_t decode_quoted(const char **pp, char *val)
{
	const char *p = *pp + 1;
	size_t n = 0;

	while (*p && *p != '"' && n < SG_LOG_LINE_MAX) {
		if (*p != '\\' || !p[1]) {
			val[n++] = *p++;
			continue;
		}
		p++;
		if (*p == 'n') {
			val[n++] = '\n';
		} else if (*p == 't') {
			val[n++] = '\t';
		} else if (*p == 'x' && sg_hexval(p[1]) > 0 && sg_hexval(p[2]) >= 0) {
			val[n++] = (char)(sg_hexval(p[1]) << 4 | sg_hexval(p[2]));
			p += 2;
		} else if (*p == 'x' && sg_hexval(p[1]) == 0 && sg_hexval(p[2]) > 0) {
			val[n++] = (char)sg_hexval(p[2]);
			p += 2;
		} else {
			val[n++] = *p;
		}
		p++;
	}
	if (*p == '"')
		p++;
	*pp = p;
	return n;
}

size_t sg_log_kv_to_json(char *out, size_t size, const char *line)
{
	/* Room kept for `,"truncated":true}` and the NUL. */
	const size_t reserve = 24;
	char val[SG_LOG_LINE_MAX + 1], msg[SG_LOG_LINE_MAX + 1];
	size_t pos = 1, msglen = 0;
	bool truncated = false, first = true;
	const char *p = line;

	out[0] = '{';
	while (*p) {
		const char *key, *word;
		size_t klen, vlen = 0;
		bool quoted = false;

		while (*p == ' ')
			p++;
		if (!*p)
			break;
		key = word = p;
		while (*p && *p != ' ' && *p != '=' && *p != '"')
			p++;
		klen = (size_t)(p - key);
		if (*p != '=' || klen == 0) {
			/* A word of its own: into "msg" (quoted text taken whole). */
			bool inq = false;

			while (*p && (inq || *p != ' ')) {
				if (*p == '\\' && inq && p[1])
					p++;
				else if (*p == '"')
					inq = !inq;
				p++;
			}
			size_t wl = (size_t)(p - word);
			if (msglen + wl + 1 < sizeof(msg)) {
				if (msglen)
					msg[msglen++] = ' ';
				memcpy(msg + msglen, word, wl);
				msglen += wl;
			}
			continue;
		}
		p++; /* '=' */
		if (*p == '"') {
			quoted = true;
			vlen = decode_quoted(&p, val);
		} else {
			while (*p && *p != ' ' && vlen < SG_LOG_LINE_MAX)
				val[vlen++] = *p++;
		}
		size_t save = pos;
		bool ok = pos + 1 < size - reserve;
		if (ok && !first)
			out[pos++] = ',';
		ok = ok && json_string(out, size - reserve, &pos, key, klen) &&
		     pos + 1 < size - reserve;
		if (ok) {
			out[pos++] = ':';
			if (!quoted && is_json_number(val, vlen)) {
				ok = pos + vlen < size - reserve;
				if (ok) {
					memcpy(out + pos, val, vlen);
					pos += vlen;
				}
			} else {
				ok = json_string(out, size - reserve, &pos, val, vlen);
			}
		}
		if (!ok) {
			pos = save;
			truncated = true;
			continue;
		}
		first = false;
	}
	if (msglen) {
		size_t save = pos;
		bool ok = pos + 8 < size - reserve;

		if (ok) {
			memcpy(out + pos, first ? "\"msg\":" : ",\"msg\":", first ? 6 : 7);
			pos += first ? 6 : 7;
			ok = json_string(out, size - reserve, &pos, msg, msglen);
		}
		if (!ok) {
			pos = save;
			truncated = true;
		} else {
			first = false;
		}
	}
	if (truncated) {
		const char *t = first ? "\"truncated\":true" : ",\"truncated\":true";
		memcpy(out + pos, t, strlen(t));
		pos += strlen(t);
	}
	out[pos++] = '}';
	out[pos] = '\0';
	return pos;
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
	if (log_state.format == SG_LOG_FORMAT_JSON && !log_local) {
		/* Every byte at most doubles (a quote, \xNN to \u00NN), plus members' quotes. */
		char json[3 * SG_LOG_LINE_MAX + 64];
		size_t n = sg_log_kv_to_json(json, sizeof(json) - 1, line);

		write_line(level, json, n);
	} else {
		write_line(level, line, pos);
	}
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
