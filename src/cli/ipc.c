/* UAPI client: see ipc.h. The reply parser reads line by line with a bounded line length, and
 * rejects anything that is not "key=value" with a value of the expected shape (-EPROTO), as a
 * reply from a daemon is input like any other. */
#include "cli/ipc.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/cli.h"
#include "crypto/crypto.h"

/* A daemon that stops answering must not hang the command forever. */
#define IPC_TIMEOUT_SEC 30

bool cli_ifname_valid(const char *ifname)
{
	size_t len = strnlen(ifname, IFNAMSIZ);

	if (!len || len >= IFNAMSIZ || strchr(ifname, '/') || !strcmp(ifname, ".") ||
	    !strcmp(ifname, ".."))
		return false;
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)ifname[i] <= ' ' || ifname[i] == ':' || ifname[i] == 0x7f)
			return false;
	}
	return true;
}

static int sock_path(struct sockaddr_un *addr, const char *ifname)
{
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	if (!cli_ifname_valid(ifname))
		return -EINVAL;
	snprintf(addr->sun_path, sizeof(addr->sun_path), CLI_SOCK_DIR "/%s" CLI_SOCK_SUFFIX,
		 ifname);
	return 0;
}

/* A connected stream socket to ifname's control socket, or -errno. */
static int ipc_connect(const char *ifname)
{
	struct sockaddr_un addr;
	struct stat st;
	struct timeval tv = {.tv_sec = IPC_TIMEOUT_SEC};
	int fd, ret;

	ret = sock_path(&addr, ifname);
	if (ret)
		return ret;
	if (stat(addr.sun_path, &st) < 0)
		return -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EBADF;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		ret = -errno;
		/* The daemon is gone; clean up after it as wg(8) does. */
		if (ret == -ECONNREFUSED)
			unlink(addr.sun_path);
		close(fd);
		return ret;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

bool cli_ipc_exists(const char *ifname)
{
	int fd = ipc_connect(ifname);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

void cli_ipc_list_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

int cli_ipc_list(char ***names, size_t *n)
{
	DIR *dir;
	struct dirent *e;
	char **list = NULL;
	size_t count = 0, cap = 0;
	int ret = 0;

	*names = NULL;
	*n = 0;
	dir = opendir(CLI_SOCK_DIR);
	if (!dir)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(dir))) {
		size_t len = strlen(e->d_name), slen = strlen(CLI_SOCK_SUFFIX);
		char name[IFNAMSIZ];

		if (len <= slen || len - slen >= IFNAMSIZ ||
		    strcmp(e->d_name + len - slen, CLI_SOCK_SUFFIX))
			continue;
		memcpy(name, e->d_name, len - slen);
		name[len - slen] = '\0';
		if (!cli_ipc_exists(name))
			continue;
		if (count == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			char **p = realloc(list, ncap * sizeof(*p));

			if (!p) {
				ret = -ENOMEM;
				break;
			}
			list = p;
			cap = ncap;
		}
		list[count] = strdup(name);
		if (!list[count]) {
			ret = -ENOMEM;
			break;
		}
		count++;
	}
	closedir(dir);
	if (ret) {
		cli_ipc_list_free(list, count);
		return ret;
	}
	*names = list;
	*n = count;
	return 0;
}

/* ---- line reader ------------------------------------------------------------------------ */

struct reader {
	int fd;
	size_t start, end;
	size_t total; /* bytes read so far, bounded by CLI_MAX_REPLY_BYTES */
	char buf[16384];
};

/* Next line without its '\n', NUL-terminated in line. 1 = got a line, 0 = EOF, -errno
 * (-EMSGSIZE past CLI_MAX_REPLY_BYTES). */
static int read_line(struct reader *r, char line[CLI_MAX_REPLY_LINE + 1])
{
	size_t len = 0;

	for (;;) {
		while (r->start < r->end) {
			char c = r->buf[r->start++];

			if (c == '\n') {
				line[len] = '\0';
				return 1;
			}
			if (len >= CLI_MAX_REPLY_LINE || c == '\0')
				return -EPROTO;
			line[len++] = c;
		}
		if (r->total >= CLI_MAX_REPLY_BYTES)
			return -EMSGSIZE;
		ssize_t got = read(r->fd, r->buf, sizeof(r->buf));

		if (got < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		if (got == 0)
			return len ? -EPROTO : 0;
		r->total += (size_t)got;
		r->start = 0;
		r->end = (size_t)got;
	}
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static bool parse_u64(uint64_t *out, const char *s, uint64_t max)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; s[i]; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 20)
			return false;
		unsigned int d = (unsigned int)(s[i] - '0');

		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (!i || v > max)
		return false;
	*out = v;
	return true;
}

/* "a.b.c.d:port" or "[v6%zone]:port", numeric only: the daemon reports addresses, not names. */
static bool parse_sockaddr(struct sockaddr_storage *ss, const char *s)
{
	char host[INET6_ADDRSTRLEN + IFNAMSIZ + 2];
	const char *port;
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_DGRAM,
				 .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV},
			*res = NULL;
	size_t hlen;
	bool ok;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return false;
		hlen = (size_t)(close - s - 1);
		port = close + 2;
		s++;
	} else {
		const char *colon = strrchr(s, ':');

		if (!colon)
			return false;
		hlen = (size_t)(colon - s);
		port = colon + 1;
	}
	if (!hlen || hlen >= sizeof(host) || !*port)
		return false;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (getaddrinfo(host, port, &hints, &res) || !res)
		return false;
	ok = (res->ai_family == AF_INET || res->ai_family == AF_INET6) &&
	     res->ai_addrlen <= sizeof(*ss);
	if (ok) {
		memset(ss, 0, sizeof(*ss));
		memcpy(ss, res->ai_addr, res->ai_addrlen);
	}
	freeaddrinfo(res);
	return ok;
}

/* One line of a get reply into dev. 0, or -EPROTO on a malformed line. */
enum sg_wgconf_mode cli_mode_parse(const char *s)
{
	if (!strcmp(s, "auto"))
		return SG_WGCONF_MODE_AUTO;
	if (!strcmp(s, "fips"))
		return SG_WGCONF_MODE_FIPS;
	if (!strcmp(s, "classic"))
		return SG_WGCONF_MODE_CLASSIC;
	return SG_WGCONF_MODE_UNSET;
}

static int apply_get_line(struct wgdev *dev, struct wgdev_peer **peer, char *line)
{
	char *value = strchr(line, '=');
	uint64_t v;

	if (!value)
		return -EPROTO;
	*value++ = '\0';
	struct wgdev_peer *p = *peer;

	if (!p && !strcmp(line, "private_key")) {
		if (sg_key_from_hex(dev->private_key, value, strlen(value)))
			return -EPROTO;
		if (!sg_key_is_zero(dev->private_key)) {
			if (!sg_x25519_public(dev->public_key, dev->private_key))
				return -EPROTO;
			dev->flags |= WGDEV_HAS_PRIVATE_KEY | WGDEV_HAS_PUBLIC_KEY;
		}
	} else if (!p && !strcmp(line, "fips_private_key")) {
		if (sg_fipskey_priv_from_hex(dev->fips_private_key, value, strlen(value)) ||
		    sg_fipskey_public(dev->fips_public_key, dev->fips_private_key))
			return -EPROTO;
		dev->flags |= WGDEV_HAS_FIPS_KEY;
	} else if (!p && !strcmp(line, "crypto_mode")) {
		dev->crypto_mode = cli_mode_parse(value);
		if (!dev->crypto_mode)
			return -EPROTO;
		dev->flags |= WGDEV_HAS_CRYPTO_MODE;
	} else if (!p && !strcmp(line, "fips_strict")) {
		dev->fips_strict = !strcmp(value, "true");
		dev->flags |= WGDEV_HAS_FIPS_STRICT;
	} else if (!p && !strncmp(line, "tls_", 4)) {
		char **dst = !strcmp(line, "tls_certificate") ? &dev->tls_certificate
			     : !strcmp(line, "tls_private_key") ? &dev->tls_private_key
			     : !strcmp(line, "tls_ca")	       ? &dev->tls_ca
			     : !strcmp(line, "tls_crl")	       ? &dev->tls_crl
			     : !strcmp(line, "tls_session_key")   ? &dev->tls_session_key
			     : !strcmp(line, "tls_session_token") ? &dev->tls_session_token
								       : NULL;
		dev->flags |= WGDEV_HAS_TLS;
		if (dst) {
			free(*dst);
			*dst = strdup(value);
			if (!*dst)
				return -ENOMEM;
		} else if (!strcmp(line, "tls_listen_port")) {
			if (!parse_u64(&v, value, 65535))
				return -EPROTO;
			dev->tls_listen_port = (uint16_t)v;
		} else if (!strcmp(line, "tls_require_client_cert")) {
			dev->require_client_cert = !strcmp(value, "true");
		} else if (!strcmp(line, "tls_require_session_token")) {
			dev->require_session_token = !strcmp(value, "true");
		}
	} else if (p && !strcmp(line, "transport")) {
		p->transport = !strcmp(value, "tls")	? SG_WGCONF_TRANSPORT_TLS
			       : !strcmp(value, "auto") ? SG_WGCONF_TRANSPORT_AUTO
							: SG_WGCONF_TRANSPORT_UDP;
		p->flags |= WGDEV_PEER_HAS_TRANSPORT;
	} else if (p && !strcmp(line, "tls_endpoint")) {
		if (!parse_sockaddr(&p->tls_endpoint, value))
			return -EPROTO;
		p->flags |= WGDEV_PEER_HAS_TLS_ENDPOINT;
	} else if (p && !strcmp(line, "tls_server_name")) {
		if (sg_wgconf_host_set(&p->tls_server_name, value))
			return -ENOMEM;
	} else if (p && !strcmp(line, "transport_active")) {
		snprintf(p->transport_active, sizeof(p->transport_active), "%s", value);
	} else if (p && !strcmp(line, "fips_public_key")) {
		if (sg_fipskey_pub_from_hex(p->fips_public_key, value, strlen(value)))
			return -EPROTO;
		p->flags |= WGDEV_PEER_HAS_FIPS_KEY;
	} else if (p && !strcmp(line, "crypto_mode")) {
		p->crypto_mode = cli_mode_parse(value);
		if (!p->crypto_mode)
			return -EPROTO;
		p->flags |= WGDEV_PEER_HAS_CRYPTO_MODE;
	} else if (p && !strcmp(line, "crypto_session")) {
		snprintf(p->session, sizeof(p->session), "%s", value);
	} else if (p && !strcmp(line, "remote_capabilities")) {
		p->remote_caps = (uint16_t)strtoul(value, NULL, 16);
	} else if (p && !strcmp(line, "crypto_fallback")) {
		p->fallback = !strcmp(value, "true");
	} else if (!p && !strcmp(line, "listen_port")) {
		if (!parse_u64(&v, value, 65535))
			return -EPROTO;
		dev->listen_port = (uint16_t)v;
		dev->flags |= WGDEV_HAS_LISTEN_PORT;
	} else if (!p && !strcmp(line, "fwmark")) {
		if (!parse_u64(&v, value, UINT32_MAX))
			return -EPROTO;
		dev->fwmark = (uint32_t)v;
		dev->flags |= WGDEV_HAS_FWMARK;
	} else if (!strcmp(line, "public_key")) {
		p = wgdev_add_peer(dev);
		if (!p)
			return dev->n_peers >= WGDEV_MAX_PEERS ? -E2BIG : -ENOMEM;
		*peer = p;
		if (sg_key_from_hex(p->public_key, value, strlen(value)))
			return -EPROTO;
	} else if (p && !strcmp(line, "preshared_key")) {
		if (sg_key_from_hex(p->preshared_key, value, strlen(value)))
			return -EPROTO;
		if (!sg_key_is_zero(p->preshared_key))
			p->flags |= WGDEV_PEER_HAS_PSK;
	} else if (p && !strcmp(line, "endpoint")) {
		if (!parse_sockaddr(&p->endpoint, value))
			return -EPROTO;
		p->flags |= WGDEV_PEER_HAS_ENDPOINT;
	} else if (p && !strcmp(line, "persistent_keepalive_interval")) {
		if (!parse_u64(&v, value, 65535))
			return -EPROTO;
		p->keepalive = (uint16_t)v;
		p->flags |= WGDEV_PEER_HAS_KEEPALIVE;
	} else if (p && !strcmp(line, "allowed_ip")) {
		struct sg_wgconf_ip ip;
		int ret;

		if (!strchr(value, '/') || sg_wgconf_parse_ip(&ip, value, NULL, 0))
			return -EPROTO;
		ret = wgdev_peer_add_ip(p, &ip);
		if (ret)
			return ret;
	} else if (p && !strcmp(line, "last_handshake_time_sec")) {
		if (!parse_u64(&v, value, INT64_MAX))
			return -EPROTO;
		p->handshake_sec = (int64_t)v;
	} else if (p && !strcmp(line, "last_handshake_time_nsec")) {
		if (!parse_u64(&v, value, INT64_MAX))
			return -EPROTO;
		p->handshake_nsec = (int64_t)v;
	} else if (p && !strcmp(line, "rx_bytes")) {
		if (!parse_u64(&v, value, UINT64_MAX))
			return -EPROTO;
		p->rx_bytes = v;
	} else if (p && !strcmp(line, "tx_bytes")) {
		if (!parse_u64(&v, value, UINT64_MAX))
			return -EPROTO;
		p->tx_bytes = v;
	}
	/* Other keys (protocol_version, newer additions) are skipped, as wg(8) does. */
	return 0;
}

/* Reads "key=value" lines up to the blank line; the errno= line gives the daemon's verdict.
 * With dev, the other lines are a get reply to parse. */
static int read_reply(struct reader *r, struct wgdev *dev)
{
	char line[CLI_MAX_REPLY_LINE + 1];
	struct wgdev_peer *peer = NULL;
	int ret, err = 0;
	bool have_errno = false;

	for (;;) {
		ret = read_line(r, line);
		if (ret < 0)
			goto out;
		if (ret == 0) {
			ret = -EPROTO;
			goto out;
		}
		if (!line[0])
			break;
		if (!strncmp(line, "errno=", 6)) {
			uint64_t v;

			/* One verdict per reply: a second one is a confused daemon. */
			if (have_errno || !parse_u64(&v, line + 6, 4095)) {
				ret = -EPROTO;
				goto out;
			}
			err = (int)v;
			have_errno = true;
			continue;
		}
		if (!dev || have_errno) {
			ret = -EPROTO;
			goto out;
		}
		ret = apply_get_line(dev, &peer, line);
		if (ret)
			goto out;
	}
	ret = !have_errno ? -EPROTO : err ? -err : 0;
out:
	sg_memzero(line, sizeof(line));
	return ret;
}

int cli_ipc_get(const char *ifname, struct wgdev **out)
{
	struct wgdev *dev = NULL;
	struct reader *r = NULL;
	int fd, ret;

	*out = NULL;
	fd = ipc_connect(ifname);
	if (fd < 0)
		return fd;
	dev = wgdev_new(ifname);
	r = calloc(1, sizeof(*r));
	if (!dev || !r) {
		ret = -ENOMEM;
		goto out;
	}
	r->fd = fd;
	ret = write_all(fd, "get=1\n\n", 7);
	if (ret)
		goto out;
	ret = read_reply(r, dev);
	if (ret)
		goto out;
	*out = dev;
	dev = NULL;
out:
	if (r) {
		sg_memzero(r, sizeof(*r));
		free(r);
	}
	wgdev_free(dev);
	close(fd);
	return ret;
}

int cli_ipc_set(const struct wgdev *dev)
{
	struct sg_strbuf req = {0};
	struct reader *r = NULL;
	int fd, ret;

	fd = ipc_connect(dev->name);
	if (fd < 0)
		return fd;
	wgdev_set_text(&req, dev);
	r = calloc(1, sizeof(*r));
	if (req.oom || !r) {
		ret = -ENOMEM;
		goto out;
	}
	r->fd = fd;
	ret = write_all(fd, req.p, req.len);
	if (ret)
		goto out;
	ret = read_reply(r, NULL);
out:
	sg_strbuf_free(&req);
	free(r);
	close(fd);
	return ret;
}
