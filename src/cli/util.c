/* Helpers shared by the subcommands: text buffers, files, key files, name resolution, turning a
 * parsed config into a UAPI request, and running programs the way wg-quick(8) does. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <secureguard/sg_errors.h>

#include "cli/cli.h"
#include "crypto/crypto.h"

/* Captured output of a helper program (`ip route get` and the like) is small; cap it. */
#define RUN_OUTPUT_MAX (1u << 20)
/* Config files: a million peers with a key, an endpoint and an allowed IP each are about
 * 110 MiB in wg-quick's format. */
#define CONF_FILE_MAX (512u << 20)

int cli_errno(const char *msg, int err)
{
	fprintf(stderr, "%s: %s: %s\n", CLI_PROG, msg, strerror(err < 0 ? -err : err));
	return 1;
}

int cli_read_file(const char *path, size_t max, char **out, size_t *len)
{
	char *buf = NULL;
	size_t size = 0, cap = 0;
	int fd, ret = 0;

	*out = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		if (size + 1 >= cap) {
			size_t ncap = cap ? cap * 2 : 4096;
			char *p;

			if (cap > max + 1) {
				ret = -EFBIG;
				break;
			}
			p = malloc(ncap);
			if (!p) {
				ret = -ENOMEM;
				break;
			}
			if (buf) {
				memcpy(p, buf, size);
				sg_memzero(buf, cap);
				free(buf);
			}
			buf = p;
			cap = ncap;
		}
		ssize_t n = read(fd, buf + size, cap - size - 1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		if (n == 0)
			break;
		size += (size_t)n;
		if (size > max) {
			ret = -EFBIG;
			break;
		}
	}
	close(fd);
	if (ret) {
		if (buf)
			sg_memzero(buf, cap);
		free(buf);
		return ret;
	}
	buf[size] = '\0';
	*out = buf;
	*len = size;
	return 0;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Reads a key file as `wg set ... private-key FILE` does: the text, then trailing whitespace (or
 * NULs); an empty file gives the all-zero key. decode turns the text into keylen bytes. */
static int read_keyfile(const char *path, uint8_t *key, size_t keylen,
			int (*decode)(uint8_t *key, const char *in, size_t len), const char *what)
{
	char *buf;
	size_t len;
	int ret = cli_read_file(path, 4096, &buf, &len);

	if (ret) {
		fprintf(stderr, "%s: %s: %s\n", CLI_PROG, path,
			ret == -EFBIG ? "not a key file (too large)" : strerror(-ret));
		return -1;
	}
	/* An empty file, like /dev/null, means "no key" (wg(8)). */
	if (len == 0) {
		sg_memzero(key, keylen);
		free(buf);
		return 0;
	}
	while (len && (is_space(buf[len - 1]) || buf[len - 1] == '\0'))
		len--;
	ret = decode(key, buf, len);
	sg_memzero(buf, len);
	free(buf);
	if (ret) {
		fprintf(stderr, "%s: %s: not %s\n", CLI_PROG, path, what);
		return -1;
	}
	return 0;
}

static int decode_wg_key(uint8_t *key, const char *in, size_t len)
{
	return sg_key_from_base64(key, in, len);
}

static int decode_fips_key(uint8_t *key, const char *in, size_t len)
{
	return sg_fipskey_priv_from_base64(key, in, len);
}

int cli_read_keyfile(const char *path, uint8_t key[SG_KEY_LEN])
{
	return read_keyfile(path, key, SG_KEY_LEN, decode_wg_key, "a base64 key of 44 characters");
}

int cli_read_fips_keyfile(const char *path, uint8_t key[SG_FIPS_PRIV_LEN])
{
	return read_keyfile(path, key, SG_FIPS_PRIV_LEN, decode_fips_key,
			    "a FIPS private key (64 base64 characters of a P-384 scalar)");
}

int cli_resolve_endpoint(struct sockaddr_storage *ss, const char *host, uint16_t port)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_DGRAM,
				 .ai_protocol = IPPROTO_UDP},
			*res = NULL;
	const char *env = getenv("WG_ENDPOINT_RESOLUTION_RETRIES");
	long retries = 15;
	char serv[8];
	unsigned int delay_us = 1000000;
	int ret;

	if (env) {
		char *end;

		if (!strcmp(env, "infinity")) {
			retries = -1;
		} else {
			retries = strtol(env, &end, 10);
			if (*end || retries < 0 || retries > 1000000) {
				fprintf(stderr,
					"%s: WG_ENDPOINT_RESOLUTION_RETRIES: not a number: `%s'\n",
					CLI_PROG, env);
				return -1;
			}
		}
	}
	snprintf(serv, sizeof(serv), "%u", (unsigned int)port);
	/* The endpoint as written, for messages: an IPv6 host in brackets. */
	const char *lb = strchr(host, ':') ? "[" : "", *rb = *lb ? "]" : "";

	for (;;) {
		ret = getaddrinfo(host, serv, &hints, &res);
		if (!ret)
			break;
		/* EAI_NONAME, EAI_FAIL and EAI_NODATA are permanent: retrying cannot help. */
		if (ret == EAI_NONAME || ret == EAI_FAIL || ret == EAI_NODATA || retries == 0) {
			fprintf(stderr, "%s: %s: `%s%s%s:%u'\n", CLI_PROG,
				ret == EAI_SYSTEM ? strerror(errno) : gai_strerror(ret), lb, host,
				rb, (unsigned int)port);
			return -1;
		}
		if (retries > 0)
			retries--;
		fprintf(stderr, "%s: %s: `%s%s%s:%u'. Trying again in %.2f seconds...\n", CLI_PROG,
			ret == EAI_SYSTEM ? strerror(errno) : gai_strerror(ret), lb, host, rb,
			(unsigned int)port, delay_us / 1000000.0);
		usleep(delay_us);
		delay_us = delay_us * 6 / 5 > 20000000 ? 20000000 : delay_us * 6 / 5;
	}
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
		    ai->ai_addrlen <= sizeof(*ss)) {
			memset(ss, 0, sizeof(*ss));
			memcpy(ss, ai->ai_addr, ai->ai_addrlen);
			freeaddrinfo(res);
			return 0;
		}
	}
	freeaddrinfo(res);
	fprintf(stderr, "%s: neither IPv4 nor IPv6 address found: `%s%s%s:%u'\n", CLI_PROG, lb,
		host, rb, (unsigned int)port);
	return -1;
}

static int resolve_endpoint(void *ctx, struct sockaddr_storage *out, const char *host,
			    uint16_t port, char *why, size_t whylen)
{
	(void)ctx;
	(void)why;
	(void)whylen;
	return cli_resolve_endpoint(out, host, port); /* says what failed itself */
}

int cli_device_from_conf(const struct sg_wgconf *conf, const char *ifname, bool append,
			 struct wgdev **out)
{
	char why[64] = "";
	int ret = wgdev_from_conf(conf, ifname, append, false, resolve_endpoint, NULL, out, why,
				  sizeof(why));

	if (ret == -ENOMEM)
		fprintf(stderr, "%s: out of memory\n", CLI_PROG);
	return ret ? -1 : 0;
}

int cli_conf_from_device(const struct wgdev *dev, struct sg_wgconf *conf)
{
	sg_wgconf_init(conf);
	if (dev->flags & WGDEV_HAS_PRIVATE_KEY) {
		memcpy(conf->private_key, dev->private_key, SG_KEY_LEN);
		conf->has_private_key = true;
	}
	conf->listen_port = dev->listen_port;
	conf->has_listen_port = dev->listen_port != 0;
	conf->fwmark = dev->fwmark;
	conf->has_fwmark = dev->fwmark != 0;
	if (dev->flags & WGDEV_HAS_FIPS_KEY) {
		memcpy(conf->fips_private_key, dev->fips_private_key, SG_FIPS_PRIV_LEN);
		conf->has_fips_private_key = true;
	}
	if (dev->flags & WGDEV_HAS_CRYPTO_MODE)
		conf->crypto_mode = dev->crypto_mode;
	conf->fips_strict = dev->fips_strict;
	conf->has_tls_listen_port = dev->tls_listen_port != 0;
	conf->tls_listen_port = dev->tls_listen_port;
	conf->require_client_cert = dev->require_client_cert;
	conf->require_session_token = dev->require_session_token;
	if ((dev->tls_session_key && !(conf->tls_session_key = strdup(dev->tls_session_key))) ||
	    (dev->tls_session_token && !(conf->tls_session_token = strdup(dev->tls_session_token))))
		goto oom;
	if ((dev->tls_certificate && !(conf->tls_certificate = strdup(dev->tls_certificate))) ||
	    (dev->tls_private_key && !(conf->tls_private_key = strdup(dev->tls_private_key))) ||
	    (dev->tls_ca && !(conf->tls_ca = strdup(dev->tls_ca))) ||
	    (dev->tls_crl && !(conf->tls_crl = strdup(dev->tls_crl))))
		goto oom;
	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct wgdev_peer *p = &dev->peers[i];
		struct sg_wgconf_peer *cp = sg_wgconf_add_peer(conf);

		if (!cp)
			goto oom;
		memcpy(cp->public_key, p->public_key, SG_KEY_LEN);
		cp->has_public_key = true;
		if (p->flags & WGDEV_PEER_HAS_FIPS_KEY) {
			uint8_t id[SG_KEY_LEN];
			memcpy(cp->fips_public_key, p->fips_public_key, SG_FIPS_PUB_LEN);
			cp->has_fips_public_key = true;
			cp->public_key_derived = sg_fips_peer_id(id, p->fips_public_key) &&
						 !memcmp(id, p->public_key, SG_KEY_LEN);
		}
		if (p->flags & WGDEV_PEER_HAS_CRYPTO_MODE)
			cp->crypto_mode = p->crypto_mode;
		if (p->flags & WGDEV_PEER_HAS_TRANSPORT)
			cp->transport = p->transport;
		if ((p->flags & WGDEV_PEER_HAS_TLS_ENDPOINT) && p->tls_endpoint.ss_family) {
			char serv[NI_MAXSERV], host[NI_MAXHOST];
			socklen_t slen = p->tls_endpoint.ss_family == AF_INET6
					     ? sizeof(struct sockaddr_in6)
					     : sizeof(struct sockaddr_in);

			if (!getnameinfo((const struct sockaddr *)&p->tls_endpoint, slen, host,
					 sizeof(host), serv, sizeof(serv),
					 NI_NUMERICHOST | NI_NUMERICSERV)) {
				if (sg_wgconf_host_set(&cp->tls_endpoint_host, host))
					goto oom;
				cp->tls_endpoint_port = (uint16_t)atoi(serv);
				cp->has_tls_endpoint = true;
			}
			/* A name the daemon checks (not the IP literal it was resolved to). */
			if (p->tls_server_name[0] &&
			    strcmp(p->tls_server_name, cp->tls_endpoint_host) &&
			    sg_wgconf_host_set(&cp->tls_server_name, p->tls_server_name))
				goto oom;
		}
		if (p->flags & WGDEV_PEER_HAS_PSK) {
			memcpy(cp->preshared_key, p->preshared_key, SG_KEY_LEN);
			cp->has_preshared_key = true;
		}
		cp->keepalive = p->keepalive;
		cp->has_keepalive = p->keepalive != 0;
		if (p->flags & WGDEV_PEER_HAS_ENDPOINT) {
			char serv[NI_MAXSERV], host[NI_MAXHOST];
			socklen_t slen = p->endpoint.ss_family == AF_INET6
					     ? sizeof(struct sockaddr_in6)
					     : sizeof(struct sockaddr_in);

			if (!getnameinfo((const struct sockaddr *)&p->endpoint, slen, host,
					 sizeof(host), serv, sizeof(serv),
					 NI_DGRAM | NI_NUMERICHOST | NI_NUMERICSERV)) {
				if (sg_wgconf_host_set(&cp->endpoint_host, host))
					goto oom;
				cp->endpoint_port = (uint16_t)atoi(serv);
				cp->has_endpoint = true;
			}
		}
		for (size_t j = 0; j < p->n_ips; j++) {
			int ret = sg_wgconf_peer_add_ip(conf, cp, &p->ips[j]);

			if (ret == SG_EFULL) {
				fprintf(stderr,
					"%s: more allowed IPs than a config file can hold: %u per "
					"peer, %u in all\n",
					CLI_PROG, SG_WGCONF_MAX_PEER_IPS, SG_WGCONF_MAX_TOTAL_IPS);
				goto fail;
			}
			if (ret)
				goto oom;
		}
	}
	return 0;
oom:
	fprintf(stderr, "%s: out of memory (or more than %u peers)\n", CLI_PROG,
		SG_WGCONF_MAX_PEERS);
fail:
	sg_wgconf_free(conf);
	return -1;
}

int cli_load_conf(const char *path, struct sg_wgconf *conf)
{
	char *text;
	size_t len;
	int ret;

	sg_wgconf_init(conf);
	ret = cli_read_file(path, CONF_FILE_MAX, &text, &len);
	if (ret) {
		fprintf(stderr, "%s: %s: %s\n", CLI_PROG, path,
			ret == -EFBIG ? "larger than 32 MiB" : strerror(-ret));
		return -1;
	}
	ret = sg_wgconf_parse(conf, text, len);
	sg_memzero(text, len);
	free(text);
	if (ret) {
		fprintf(stderr, "%s: %s: %s\n", CLI_PROG, path, sg_wgconf_error(conf));
		sg_wgconf_free(conf);
		return -1;
	}
	return 0;
}

static void echo_argv(char *const argv[])
{
	fputs("[#]", stderr);
	for (size_t i = 0; argv[i]; i++)
		fprintf(stderr, " %s", argv[i]);
	fputc('\n', stderr);
}

/* Feeds input to the child's stdin and collects its stdout, both at once so neither side can
 * block the other. */
static int pump(int in_fd, const char *input, int out_fd, char **out)
{
	size_t in_len = input ? strlen(input) : 0, in_off = 0, out_len = 0, out_cap = 0;
	char *buf = NULL;
	int ret = 0;

	while (in_fd >= 0 || out_fd >= 0) {
		struct pollfd pfd[2];
		nfds_t n = 0;
		int in_i = -1, out_i = -1;

		if (in_fd >= 0) {
			pfd[n] = (struct pollfd){.fd = in_fd, .events = POLLOUT};
			in_i = (int)n++;
		}
		if (out_fd >= 0) {
			pfd[n] = (struct pollfd){.fd = out_fd, .events = POLLIN};
			out_i = (int)n++;
		}
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		if (in_i >= 0 && pfd[in_i].revents) {
			ssize_t w =
			    in_off < in_len ? write(in_fd, input + in_off, in_len - in_off) : 0;

			if (w > 0)
				in_off += (size_t)w;
			if (w < 0 || in_off >= in_len) {
				close(in_fd);
				in_fd = -1;
			}
		}
		if (out_i >= 0 && pfd[out_i].revents) {
			if (out_len + 4096 + 1 > out_cap) {
				size_t cap = out_cap ? out_cap * 2 : 8192;
				char *p = realloc(buf, cap);

				if (!p) {
					ret = -ENOMEM;
					break;
				}
				buf = p;
				out_cap = cap;
			}
			ssize_t r = read(out_fd, buf + out_len, 4096);

			if (r > 0 && out_len + (size_t)r <= RUN_OUTPUT_MAX) {
				out_len += (size_t)r;
			} else if (r <= 0) {
				close(out_fd);
				out_fd = -1;
			}
			/* Past the cap the rest is read and dropped, so the child still finishes.
			 */
		}
	}
	if (in_fd >= 0)
		close(in_fd);
	if (out_fd >= 0)
		close(out_fd);
	if (out && !ret) {
		if (!buf)
			buf = malloc(1);
		if (!buf)
			return -ENOMEM;
		buf[out_len] = '\0';
		*out = buf;
		return 0;
	}
	free(buf);
	return ret;
}

int cli_run(char *const argv[], const char *input, char **out, unsigned int flags)
{
	int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
	int status, ret = 0, child_errno;
	pid_t pid;

	if (out)
		*out = NULL;
	if (flags & CLI_RUN_ECHO)
		echo_argv(argv);
	fflush(stdout);
	fflush(stderr);
	if ((input && pipe2(in_pipe, O_CLOEXEC)) || (out && pipe2(out_pipe, O_CLOEXEC)) ||
	    pipe2(err_pipe, O_CLOEXEC)) {
		ret = -errno;
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		goto out;
	}
	if (pid == 0) {
		/* main() ignores SIGPIPE; the child should get the default back. */
		signal(SIGPIPE, SIG_DFL);
		if (input)
			dup2(in_pipe[0], STDIN_FILENO);
		if (out)
			dup2(out_pipe[1], STDOUT_FILENO);
		if (flags & CLI_RUN_QUIET) {
			int null = open("/dev/null", O_WRONLY);

			if (null >= 0)
				dup2(null, STDERR_FILENO);
		}
		execvp(argv[0], argv);
		child_errno = errno;
		if (write(err_pipe[1], &child_errno, sizeof(child_errno)) < 0)
			_exit(127);
		_exit(127);
	}
	close(err_pipe[1]);
	err_pipe[1] = -1;
	if (input) {
		close(in_pipe[0]);
		in_pipe[0] = -1;
	}
	if (out) {
		close(out_pipe[1]);
		out_pipe[1] = -1;
	}
	ret = pump(input ? in_pipe[1] : -1, input, out ? out_pipe[0] : -1, out);
	in_pipe[1] = out_pipe[0] = -1;
	ssize_t got;

	do {
		got = read(err_pipe[0], &child_errno, sizeof(child_errno));
	} while (got < 0 && errno == EINTR);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			status = 0x7f00;
			break;
		}
	}
	if (got == (ssize_t)sizeof(child_errno)) {
		ret = -child_errno;
	} else if (!ret) {
		ret = WIFEXITED(status)	    ? WEXITSTATUS(status)
		      : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
					    : 1;
	}
	if (ret < 0 && out && *out) {
		free(*out);
		*out = NULL;
	}
out:
	for (int i = 0; i < 2; i++) {
		if (in_pipe[i] >= 0)
			close(in_pipe[i]);
		if (out_pipe[i] >= 0)
			close(out_pipe[i]);
		if (err_pipe[i] >= 0)
			close(err_pipe[i]);
	}
	return ret;
}

int cli_run_shell(const char *cmd)
{
	/* wg-quick evaluates hooks in bash, so hooks written for it may use bash syntax; fall back
	 * to the POSIX shell only where bash is absent. */
	const char *sh = access("/bin/bash", X_OK) == 0 ? "/bin/bash" : "/bin/sh";
	char *argv[] = {(char *)sh, "-c", (char *)cmd, NULL};

	return cli_run(argv, NULL, NULL, 0);
}
