/* Time from sg_connect to the first byte back through the tunnel (bench/embed.sh): a fresh
 * engine on the userspace stack each round; sg_connect, sg_tcp_connect to an echo server inside
 * the tunnel, one byte there and back. Prints one line per round: "ttfb_ms N".
 *   embed_ttfb CONFIG_FILE ECHO_IP ECHO_PORT ROUNDS */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <secureguard/sg.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	if (argc != 5)
		return 2;
	FILE *f = fopen(argv[1], "r");
	static char conf[65536];
	size_t n = f ? fread(conf, 1, sizeof(conf) - 1, f) : 0;
	if (f)
		fclose(f);
	conf[n] = '\0';
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[3]))};
	inet_pton(AF_INET, argv[2], &to.sin_addr);
	for (int i = 0; i < atoi(argv[4]); i++) {
		struct sg_options o;
		sg_options_init(&o);
		sg_engine *e;
		char why[256];
		if (sg_init(&e, conf, &o, why, sizeof(why)) != SG_EOK) {
			fprintf(stderr, "sg_init: %s\n", why);
			return 1;
		}
		double t0 = now_ms();
		int fd = -1;
		char c = 'x';
		if (sg_connect(e) != SG_EOK ||
		    sg_tcp_connect(e, (struct sockaddr *)&to, sizeof(to), 10000, &fd) != SG_EOK ||
		    write(fd, &c, 1) != 1 || read(fd, &c, 1) != 1) {
			fprintf(stderr, "round %d failed\n", i);
			return 1;
		}
		printf("ttfb_ms %.2f\n", now_ms() - t0);
		close(fd);
		sg_free(e);
		usleep(200000);
	}
	return 0;
}
