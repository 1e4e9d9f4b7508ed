/* Structured logging: one key=value line per event (STYLE.md habit 11).
 *
 *   ts=2026-11-21T10:00:00.123Z level=INFO event=handshake_complete dev=wg0 peer=AbCdEfGh…
 *
 * `ts` is UTC wall-clock time with milliseconds, `level` one of ERROR WARN INFO DEBUG, `event` a
 * fixed snake_case name, then the caller's own key=value fields. Lines go to stderr (foreground),
 * to syslog with facility LOG_DAEMON (daemonized), or to a file rotated by size. Free text must go
 * through sg_log_quote so a value with spaces or quotes cannot forge extra fields. Secrets are
 * never passed to the logger: peers are named by sg_log_key_tag, a prefix of their *public* key.
 *
 * The JSON format (sg_log_set_format) writes the same event as one JSON object per line, the
 * caller's key=value fields decoded into members (numbers as JSON numbers):
 *
 *   {"ts":"2026-11-21T10:00:00.123Z","level":"INFO","event":"handshake_complete","dev":"wg0"}
 *
 * Settings are not thread-safe (set them before starting threads); writing a line is: one
 * write(2) per line, file rotation under a lock.
 */
#ifndef SG_COMMON_LOG_H
#define SG_COMMON_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sg_log_level {
	SG_LOG_SILENT = -1, /* only as a threshold: nothing is logged */
	SG_LOG_ERROR = 0,
	SG_LOG_WARN = 1,
	SG_LOG_INFO = 2,
	SG_LOG_DEBUG = 3,
};

enum sg_log_target {
	SG_LOG_TO_STDERR = 0,
	SG_LOG_TO_SYSLOG = 1,
	SG_LOG_TO_FILE = 2, /* only through sg_log_open_file */
};

enum sg_log_format {
	SG_LOG_FORMAT_TEXT = 0, /* key=value (the default) */
	SG_LOG_FORMAT_JSON = 1, /* one JSON object per line */
};

/* Longest line written; longer lines are cut and end in "...". */
#define SG_LOG_LINE_MAX 1024

/* Selects where lines go. `ident` is the syslog identity (kept by reference, as openlog does).
 * May be called again to switch target (e.g. after daemonizing). Default: stderr, level INFO. */
void sg_log_open(const char *ident, enum sg_log_target target);
void sg_log_close(void);
/* Appends lines to `path` (created mode 0640). When a line would take it past max_bytes (0: no
 * limit) it is renamed path.1 (path.1 to path.2, ... up to path.KEEP; keep 0: the old lines are
 * dropped) and a new file started. One process per file. Returns 0, or -1 with err filled (the
 * previous target stays). */
int sg_log_open_file(const char *path, uint64_t max_bytes, unsigned keep, char *err, size_t el);
/* Async-signal-safe (a SIGHUP handler's): the log file is reopened by its name before the next
 * line, so after logrotate moved it the lines go to a new file. */
void sg_log_reopen_request(void);
enum sg_log_target sg_log_get_target(void);
void sg_log_set_format(enum sg_log_format format);
enum sg_log_format sg_log_get_format(void);
void sg_log_set_level(enum sg_log_level level);
enum sg_log_level sg_log_get_level(void);
bool sg_log_enabled(enum sg_log_level level);

/* Fields added to every line right after `event=`, e.g. "dev=wg0" (copied; NULL clears). */
void sg_log_set_context(const char *fields);

/* Test hook: every formatted line (without newline) goes to fn instead of stderr/syslog.
 * NULL restores the normal target. */
typedef void (*sg_log_sink_fn)(void *ctx, enum sg_log_level level, const char *line);
void sg_log_set_sink(sg_log_sink_fn fn, void *ctx);

/* A logger of this thread's own, for several engines in one process (libsecureguard): while a
 * thread has one, its lines go to that sink with that level and context instead of the
 * process-wide settings above. The struct is the caller's and must outlive its use. */
struct sg_log_local {
	enum sg_log_level level;
	sg_log_sink_fn sink; /* NULL: nothing is written */
	void *sink_ctx;
	char context[128];
};
/* Sets this thread's logger (NULL: back to the process-wide one); returns the previous one. */
struct sg_log_local *sg_log_set_local(struct sg_log_local *l);

/* Logs `event` with the key=value fields printed by fmt (may be NULL for none). */
void sg_log(enum sg_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The level's name ("ERROR", ...). */
const char *sg_log_level_name(enum sg_log_level level);
/* "error", "warn", "info" or "debug" (any case) to a level; -2 when it is none of them. */
int sg_log_parse_level(const char *s);

/* Rewrites one key=value line (as sg_log writes it) as a JSON object into out: each key=value
 * pair a member (values of sg_log_quote decoded; a value that is a JSON number stays one), words
 * without `=` joined in a "msg" member, bytes that are not UTF-8 as U+FFFD. The result is always
 * a whole object; pairs that do not fit are left out and "truncated":true added. Returns its
 * length. size must be at least 64. */
size_t sg_log_kv_to_json(char *out, size_t size, const char *line);

/* Writes s into buf as one safe value: unchanged when it is non-empty and made only of
 * [A-Za-z0-9._:/@+-,[]%], otherwise in double quotes with \" \\ \n \t and \xNN escapes.
 * Truncated to fit (ending in "..."). Returns buf. */
const char *sg_log_quote(char *buf, size_t size, const char *s);

/* Names a peer in logs by the first 8 characters of its base64 public key, followed by an
 * ellipsis as wireguard-go does ("AbCdEfGh…"). Returns out. */
#define SG_LOG_KEY_TAG_SIZE 12 /* 8 base64 chars + 3-byte UTF-8 ellipsis + NUL */
const char *sg_log_key_tag(char out[SG_LOG_KEY_TAG_SIZE], const uint8_t key[32]);

/* Token bucket for noisy events (packet_dropped): `rate` lines per second, bursts of `burst`.
 * Zero-initialise, then set rate and burst. */
struct sg_log_ratelimit {
	uint32_t rate;
	uint32_t burst;
	uint32_t tokens;
	uint64_t suppressed; /* lines refused since the last allowed one */
	uint64_t last_ns;
	bool started;
};
/* True if a line may be written now; *suppressed receives how many were refused since the last
 * allowed one (so the caller can say so), and the count restarts. */
bool sg_log_ratelimit_allow(struct sg_log_ratelimit *rl, uint64_t now_ns, uint64_t *suppressed);

#endif
