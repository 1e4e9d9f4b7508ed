/* Replays a libFuzzer seed corpus through a fuzz target without libFuzzer, so the seeds run
 * under ctest in every build (and under ASan/UBSan in `make check`). Usage: fuzz_x DIR|FILE... */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return -1;
	}
	uint8_t *buf = malloc(1 << 20);
	size_t n = buf ? fread(buf, 1, 1 << 20, f) : 0;
	fclose(f);
	if (!buf)
		return -1;
	/* Copy to an exact-size allocation so ASan sees reads past the end. */
	uint8_t *exact = malloc(n ? n : 1);
	if (!exact) {
		free(buf);
		return -1;
	}
	memcpy(exact, buf, n);
	free(buf);
	LLVMFuzzerTestOneInput(exact, n);
	free(exact);
	return 0;
}

int main(int argc, char **argv)
{
	int count = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) != 0) {
			perror(argv[i]);
			return 1;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (run_file(argv[i]) != 0)
				return 1;
			count++;
			continue;
		}
		DIR *d = opendir(argv[i]);
		if (!d)
			return 1;
		struct dirent *e;
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			char path[4096];
			snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
			if (run_file(path) != 0) {
				closedir(d);
				return 1;
			}
			count++;
		}
		closedir(d);
	}
	/* Also feed a few synthetic edge inputs every target must survive. */
	static const uint8_t zeros[256];
	LLVMFuzzerTestOneInput(zeros, 0);
	LLVMFuzzerTestOneInput(zeros, 1);
	LLVMFuzzerTestOneInput(zeros, sizeof(zeros));
	printf("replayed %d corpus inputs\n", count);
	if (count == 0) {
		fprintf(stderr, "empty seed corpus\n");
		return 1;
	}
	return 0;
}
