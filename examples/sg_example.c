/* sg_example: the smallest useful libsecureguard program (docs/EMBEDDING.md).
 *
 *   sg_example CONFIG_FILE HOST:PORT
 *
 * Brings up the tunnel described by CONFIG_FILE (a wg-quick file with an Address) on the
 * userspace stack, as any user, opens a TCP connection to HOST:PORT inside the tunnel, copies
 * standard input to it and what comes back to standard output, and prints the peers' counters to
 * standard error at the end. Without HOST:PORT it brings the tunnel up, prints the counters and
 * stops. Build: cc sg_example.c $(pkg-config --cflags --libs secureguard)
 */
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <secureguard/sg.h>

static void on_log(void *ctx, int level, const char *line)
{
	(void)ctx;
	if (level <= SG_LOG_LEVEL_WARN)
		fprintf(stderr, "%s\n", line);
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0;
	if (!f)
		return NULL;
	buf = calloc(1, 65537);
	if (buf)
		len = fread(buf, 1, 65536, f);
	fclose(f);
	if (buf)
		buf[len] = '\0';
	return buf;
}

/* Copies stdin to the connection and the connection to stdout until both sides are done. */
static void relay(int fd)
{
	char buf[16384];
	struct pollfd p[2] = {{.fd = STDIN_FILENO, .events = POLLIN}, {.fd = fd, .events = POLLIN}};
	while (p[1].fd >= 0 && poll(p, 2, -1) > 0) {
		if (p[0].revents) {
			ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
			if (n <= 0) {
				shutdown(fd, SHUT_WR); /* sends FIN through the tunnel */
				p[0].fd = -1;
			} else if (write(fd, buf, (size_t)n) != n) {
				break;
			}
		}
		if (p[1].revents) {
			ssize_t n = read(fd, buf, sizeof(buf));
			if (n <= 0 || write(STDOUT_FILENO, buf, (size_t)n) != n)
				break;
		}
	}
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "Usage: %s CONFIG_FILE [HOST:PORT]\n", argv[0]);
		return 2;
	}
	printf("libsecureguard %s (ABI %d)\n", sg_version(), sg_abi_version());
	char *config = read_file(argv[1]);
	if (!config) {
		perror(argv[1]);
		return 1;
	}
	struct sg_options o;
	sg_options_init(&o); /* the userspace stack by default: no root needed */
	o.log = on_log;
	sg_engine *e = NULL;
	char why[256];
	sg_result r = sg_init(&e, config, &o, why, sizeof(why));
	free(config);
	if (r != SG_EOK) {
		fprintf(stderr, "%s: %s: %s\n", argv[1], sg_strerror(r), why);
		return 1;
	}
	r = sg_connect(e);
	if (r == SG_EOK && argc == 3) {
		char host[64];
		snprintf(host, sizeof(host), "%s", argv[2]);
		char *colon = strrchr(host, ':');
		struct sockaddr_storage ss;
		socklen_t len = 0;
		memset(&ss, 0, sizeof(ss));
		if (colon) {
			*colon = '\0';
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
			if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
				s4->sin_family = AF_INET;
				s4->sin_port = htons((uint16_t)atoi(colon + 1));
				len = sizeof(*s4);
			}
		}
		int fd = -1;
		r = len ? sg_tcp_connect(e, (struct sockaddr *)&ss, len, 10000, &fd) : SG_EINVAL;
		if (r == SG_EOK) {
			relay(fd);
			close(fd);
		} else {
			fprintf(stderr, "%s: %s\n", argv[2], sg_strerror(r));
		}
	}
	struct sg_stats *s = NULL;
	if (sg_get_stats(e, &s) == SG_EOK) {
		for (size_t i = 0; i < s->n_peers; i++)
			fprintf(stderr, "peer %s endpoint %s mode %s rx %llu tx %llu bytes\n",
				s->peers[i].public_key, s->peers[i].endpoint, s->peers[i].crypto_mode,
				(unsigned long long)s->peers[i].rx_bytes,
				(unsigned long long)s->peers[i].tx_bytes);
		sg_stats_free(s);
	}
	sg_disconnect(e);
	sg_free(e);
	return r == SG_EOK ? 0 : 1;
}
