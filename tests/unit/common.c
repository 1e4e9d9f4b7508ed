/* Error codes: every code has a distinct value, a message and a name (include/secureguard).
 * sg_file_replace: a file is replaced whole with the mode asked, or left as it was. */
#include "test_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <secureguard/sg_errors.h>

#include "common/file.h"

static void test_error_table(void **state)
{
	static const int codes[] = {
#define CODE(name, val, msg) val,
		SG_ERRNO_MAP(CODE)
#undef CODE
	};
	for (size_t i = 0; i < (sizeof(codes) / sizeof(codes[0])); i++) {
		assert_true(codes[i] <= 0);
		assert_string_not_equal(sg_strerror(codes[i]), "unknown error");
		assert_true(strncmp(sg_err_name(codes[i]), "SG_E", 4) == 0);
		for (size_t j = i + 1; j < (sizeof(codes) / sizeof(codes[0])); j++)
			assert_int_not_equal(codes[i], codes[j]);
	}
	assert_string_equal(sg_err_name(SG_EINVAL), "SG_EINVAL");
	assert_string_equal(sg_strerror(0), "success");
	assert_string_equal(sg_strerror(12345), "unknown error");
	assert_string_equal(sg_err_name(-9999), "SG_E?");
}

static char *slurp(const char *path, size_t *len)
{
	static char buf[256];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	assert_true(n >= 0);
	*len = (size_t)n;
	return buf;
}

/* Entries of dir other than . and .., so that a left-over temporary file shows. */
static int entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void test_file_replace(void **state)
{
	char dir[] = "/tmp/sg-file-XXXXXX", path[64], sub[80];
	struct stat st;
	size_t len;
	char *got;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/f", dir);
	/* A new file, then a replacement: the mode is the one asked, even when the old file
	 * was more open. */
	assert_int_equal(sg_file_replace(path, "one\n", 4, 0600), 0);
	assert_int_equal(chmod(path, 0666), 0);
	assert_int_equal(sg_file_replace(path, "second", 6, 0600), 0);
	got = slurp(path, &len);
	assert_int_equal(len, 6);
	assert_memory_equal(got, "second", 6);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(entries(dir), 1);
	/* Empty contents are a file of zero bytes. */
	assert_int_equal(sg_file_replace(path, NULL, 0, 0644), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	/* A failure leaves the old file as it was and no temporary file: here the rename fails
	 * since path is now a non-empty directory. */
	assert_int_equal(sg_file_replace(path, "keep", 4, 0600), 0);
	snprintf(sub, sizeof(sub), "%s/d", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(sub, sizeof(sub), "%s/d/x", dir);
	fd = open(sub, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	snprintf(sub, sizeof(sub), "%s/d", dir);
	assert_int_not_equal(sg_file_replace(sub, "new", 3, 0600), 0);
	assert_int_equal(entries(dir), 2);
	got = slurp(path, &len);
	assert_int_equal(len, 4);
	assert_memory_equal(got, "keep", 4);
	/* A directory that is not there: the errno of the step that failed. */
	assert_int_equal(sg_file_replace("/nonexistent-sg/f", "x", 1, 0600), ENOENT);
	assert_int_equal(sg_file_replace(path, NULL, 1, 0600), EINVAL);
	snprintf(sub, sizeof(sub), "%s/d/x", dir);
	unlink(sub);
	snprintf(sub, sizeof(sub), "%s/d", dir);
	rmdir(sub);
	unlink(path);
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_table),
		cmocka_unit_test(test_file_replace),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
