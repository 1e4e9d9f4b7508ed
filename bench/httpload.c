/* A small HTTP/1.1 load client for the benchmarks: CALLERS threads, each on one keep-alive
 * connection, send GETs of the paths in a file (one per line, taken in turn) with a bearer token
 * and read each answer (Content-Length bodies only) before the next; prints requests/s and the
 * p50/p99 latency in ms. Python's http.client costs more CPU per request than the server it
 * measures (bench/server_reads.sh), so its percentiles say more about the client than the server.
 *
 *   cc -O2 -pthread -o httpload bench/httpload.c
 *   httpload HOST PORT TOKEN PATHS_FILE REQUESTS CALLERS
 */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *host, *token;
static int port, nreq, ncallers, npaths;
static char **paths;
static double *lat;
static int failed;

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int dial(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	inet_pton(AF_INET, host, &a.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		perror("connect");
		exit(1);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Reads one answer; its status, or -1. */
static int answer(int fd, char *buf, size_t cap)
{
	size_t got = 0, need = 0;
	char *end = NULL;
	int status;

	for (;;) {
		ssize_t n = read(fd, buf + got, cap - 1 - got);

		if (n <= 0)
			return -1;
		got += (size_t)n;
		buf[got] = 0;
		if (!end && (end = strstr(buf, "\r\n\r\n"))) {
			char *cl = strcasestr(buf, "\r\ncontent-length:");

			if (!cl || cl > end)
				return -1;
			need = (size_t)(end + 4 - buf) + strtoul(cl + 17, NULL, 10);
			if (need >= cap)
				return -1;
		}
		if (end && got >= need)
			break;
	}
	if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
		return -1;
	return status;
}

static void *caller(void *arg)
{
	int k = (int)(long)arg, fd = dial();
	char *buf = malloc(1 << 20), req[2048];

	for (int i = k; i < nreq; i += ncallers) {
		int len = snprintf(req, sizeof(req),
				   "GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n",
				   paths[i % npaths], host, token);
		double t0 = now_ms();

		if (write(fd, req, (size_t)len) != len || answer(fd, buf, 1 << 20) != 200)
			__atomic_add_fetch(&failed, 1, __ATOMIC_RELAXED);
		lat[i] = now_ms() - t0;
	}
	close(fd);
	free(buf);
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	pthread_t *th;
	FILE *f;
	char line[1024];
	double t0, secs;

	if (argc != 7) {
		fprintf(stderr, "usage: httpload HOST PORT TOKEN PATHS_FILE REQUESTS CALLERS\n");
		return 2;
	}
	host = argv[1];
	port = atoi(argv[2]);
	token = argv[3];
	nreq = atoi(argv[5]);
	ncallers = atoi(argv[6]);
	f = fopen(argv[4], "r");
	if (!f || nreq < 1 || ncallers < 1)
		return 2;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = 0;
		paths = realloc(paths, sizeof(*paths) * (size_t)(npaths + 1));
		paths[npaths++] = strdup(line);
	}
	fclose(f);
	if (!npaths)
		return 2;
	lat = calloc((size_t)nreq, sizeof(*lat));
	th = calloc((size_t)ncallers, sizeof(*th));
	t0 = now_ms();
	for (long k = 0; k < ncallers; k++)
		pthread_create(&th[k], NULL, caller, (void *)k);
	for (int k = 0; k < ncallers; k++)
		pthread_join(th[k], NULL);
	secs = (now_ms() - t0) / 1e3;
	qsort(lat, (size_t)nreq, sizeof(*lat), cmp);
	printf("%.0f %.2f %.2f %d\n", nreq / secs, lat[(nreq - 1) / 2],
	       lat[(int)((nreq - 1) * 0.99 + 0.5)], failed);
	return failed ? 1 : 0;
}
