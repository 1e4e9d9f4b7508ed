/* The logger (src/common/log.c, logopt.c): the JSON format, the log file's rotation by size and
 * its reopening (logrotate), the shared options, and the per-thread logger staying key=value. */
#include "test_util.h"

#include <getopt.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/logopt.h"

static void test_kv_to_json(void **state)
{
	char out[512];

	sg_log_kv_to_json(out, sizeof(out),
			  "ts=2026-11-21T10:00:00.123Z level=INFO event=http_request status=200 "
			  "duration_ms=0.017 n=-3 zip=007 route=\"GET /api/x\"");
	assert_string_equal(out, "{\"ts\":\"2026-11-21T10:00:00.123Z\",\"level\":\"INFO\","
				 "\"event\":\"http_request\",\"status\":200,\"duration_ms\":0.017,"
				 "\"n\":-3,\"zip\":\"007\",\"route\":\"GET /api/x\"}");
	/* sg_log_quote's escapes decoded, then written as JSON wants them. */
	sg_log_kv_to_json(out, sizeof(out), "msg=\"a \\\"b\\\" \\\\ \\n\\t\\x01\" q=\"42\"");
	assert_string_equal(out, "{\"msg\":\"a \\\"b\\\" \\\\ \\n\\t\\u0001\",\"q\":\"42\"}");
	/* Words without "=" become "msg"; bytes that are not UTF-8 become U+FFFD. */
	sg_log_kv_to_json(out, sizeof(out), "event=x free text k=\xff\xc3\xa9");
	assert_string_equal(out,
			    "{\"event\":\"x\",\"k\":\"\\ufffd\xc3\xa9\",\"msg\":\"free text\"}");
	/* Too small: whole members only, and said so. */
	sg_log_kv_to_json(out, 64, "event=x a=0123456789012345678901234567890123456789 b=1");
	assert_string_equal(out, "{\"event\":\"x\",\"b\":1,\"truncated\":true}");
	sg_log_kv_to_json(out, sizeof(out), "");
	assert_string_equal(out, "{}");
}

static char sunk[2048];

static void sink(void *ctx, enum sg_log_level level, const char *line)
{
	(void)ctx;
	(void)level;
	snprintf(sunk, sizeof(sunk), "%s", line);
}

static void test_json_format_and_local(void **state)
{
	char q[64];
	struct sg_log_local local = {.level = SG_LOG_DEBUG, .sink = sink};

	sg_log_set_sink(sink, NULL);
	sg_log_set_format(SG_LOG_FORMAT_JSON);
	sg_log_set_context("dev=wg0");
	sg_log(SG_LOG_WARN, "peer_gone", "peer=%s port=%d", sg_log_quote(q, sizeof(q), "a b\"c"),
	       51820);
	assert_non_null(strstr(sunk, "\"level\":\"WARN\",\"event\":\"peer_gone\",\"dev\":\"wg0\","
				     "\"peer\":\"a b\\\"c\",\"port\":51820}"));
	assert_true(sunk[0] == '{');
	/* libsecureguard's per-thread logger keeps key=value. */
	sg_log_set_local(&local);
	sg_log(SG_LOG_INFO, "engine_up", "n=%d", 1);
	sg_log_set_local(NULL);
	assert_non_null(strstr(sunk, " level=INFO event=engine_up n=1"));
	sg_log_set_format(SG_LOG_FORMAT_TEXT);
	sg_log_set_context(NULL);
	sg_log_set_sink(NULL, NULL);
}

static size_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) ? (size_t)-1 : (size_t)st.st_size;
}

static int count_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	int n = 0, c;

	if (!f)
		return -1;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static void test_file_rotation_and_reopen(void **state)
{
	char dir[] = "/tmp/sg-log-test.XXXXXX", path[128], p1[160], p2[160], p3[160], moved[160];
	char err[256];
	int total = 0;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s.log", dir);
	snprintf(p1, sizeof(p1), "%s.1", path);
	snprintf(p2, sizeof(p2), "%s.2", path);
	snprintf(p3, sizeof(p3), "%s.3", path);
	snprintf(moved, sizeof(moved), "%s/moved.log", dir);
	assert_int_equal(sg_log_open_file(dir, 4096, 2, err, sizeof(err)), -1);
	assert_non_null(strstr(err, dir));
	assert_int_equal(sg_log_open_file(path, 4096, 2, err, sizeof(err)), 0);
	for (int i = 0; i < 200; i++, total++)
		sg_log(SG_LOG_INFO, "tick", "i=%d pad=%s", i,
		       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	/* Never past the limit; two old files kept, the third dropped. */
	assert_true(file_size(path) <= 4096 && file_size(p1) <= 4096 && file_size(p2) <= 4096);
	assert_true(file_size(p1) > 3500 && file_size(p2) > 3500);
	assert_int_equal(access(p3, F_OK), -1);
	/* logrotate moves the file, then SIGHUP: the next line starts a new one. */
	assert_int_equal(rename(path, moved), 0);
	sg_log(SG_LOG_INFO, "before_hup", NULL);
	assert_int_equal(access(path, F_OK), -1);
	sg_log_reopen_request();
	sg_log(SG_LOG_INFO, "after_hup", NULL);
	assert_int_equal(count_lines(path), 1);
	sg_log_close();
	unlink(path);
	unlink(p1);
	unlink(p2);
	unlink(moved);
	rmdir(dir);
}

static void test_options(void **state)
{
	struct sg_logopt o;
	char err[128];

	sg_logopt_init(&o);
	assert_int_equal(sg_logopt_parse(&o, SG_LOGOPT_LEVEL, "WARN", "t"), 1);
	assert_int_equal(o.level, SG_LOG_WARN);
	assert_int_equal(sg_logopt_parse(&o, SG_LOGOPT_LEVEL, "loud", "t"), -1);
	assert_int_equal(sg_logopt_parse(&o, SG_LOGOPT_FORMAT, "json", "t"), 1);
	assert_int_equal(sg_logopt_parse(&o, SG_LOGOPT_FORMAT, "xml", "t"), -1);
	assert_int_equal(sg_logopt_parse(&o, SG_LOGOPT_MAX_SIZE, "64k", "t"), 1);
	assert_int_equal(o.max_size, 65536);
	assert_int_equal(sg_logopt_parse(&o, SG_LOGOPT_MAX_SIZE, "100M", "t"), 1);
	assert_int_equal(o.max_size, 100 << 20);
	assert_int_equal(sg_logopt_parse(&o, SG_LOGOPT_MAX_SIZE, "0", "t"), 1);
	assert_int_equal(sg_logopt_parse(&o, SG_LOGOPT_MAX_SIZE, "12", "t"), -1);
	assert_int_equal(sg_logopt_parse(&o, SG_LOGOPT_MAX_SIZE, "5X", "t"), -1);
	assert_int_equal(sg_logopt_parse(&o, SG_LOGOPT_FILES, "101", "t"), -1);
	assert_int_equal(sg_logopt_parse(&o, SG_LOGOPT_FILES, "3", "t"), 1);
	assert_int_equal(sg_logopt_parse(&o, 'v', NULL, "t"), 0);
	assert_int_equal(sg_logopt_parse(&o, SG_LOGOPT_FILE, "/nonexistent/dir/x.log", "t"), 1);
	assert_int_equal(sg_logopt_parse(&o, SG_LOGOPT_SYSLOG, NULL, "t"), 1);
	assert_int_equal(sg_logopt_apply(&o, "t", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "exclude"));
	o.syslog = false;
	assert_int_equal(sg_logopt_apply(&o, "t", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/dir/x.log"));
	sg_log_set_format(SG_LOG_FORMAT_TEXT);
	sg_log_set_level(SG_LOG_INFO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kv_to_json),
	    cmocka_unit_test(test_json_format_and_local),
	    cmocka_unit_test(test_file_rotation_and_reopen),
	    cmocka_unit_test(test_options),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
