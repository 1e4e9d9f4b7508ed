/* Linux TUN device; see tun.h. */
#include "net/tun.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static void ifr_set_name(struct ifreq *ifr, const char *name)
{
	memset(ifr, 0, sizeof(*ifr));
	memcpy(ifr->ifr_name, name, strnlen(name, IF_NAMESIZE - 1));
}

bool tun_name_valid(const char *name)
{
	size_t len = strnlen(name, IF_NAMESIZE);
	if (len == 0 || len >= IF_NAMESIZE)
		return false;
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		/* The kernel's dev_valid_name, plus '%' (a name template) and control bytes. */
		if (c == '/' || c == ':' || c == '%' || c <= ' ' || c == 0x7f)
			return false;
	}
	return true;
}

int tun_set_mtu(const char *name, unsigned mtu)
{
	struct ifreq ifr;
	int err = 0;
	/* Any socket reaches the device ioctls; an AF_INET datagram socket is the usual one. */
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	ifr_set_name(&ifr, name);
	ifr.ifr_mtu = (int)mtu;
	if (ioctl(s, SIOCSIFMTU, &ifr) != 0)
		err = -errno;
	close(s);
	return err;
}

int tun_open(struct tun *t, const char *name, unsigned mtu, const char **why)
{
	struct ifreq ifr;
	int err;

	memset(t, 0, sizeof(*t));
	t->fd = -1;
	if (!tun_name_valid(name)) {
		*why = "invalid interface name";
		return -EINVAL;
	}
	t->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (t->fd < 0) {
		*why = "open /dev/net/tun";
		return -errno;
	}
	ifr_set_name(&ifr, name);
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	if (ioctl(t->fd, TUNSETIFF, &ifr) != 0) {
		err = -errno;
		*why = "TUNSETIFF";
		goto fail;
	}
	memcpy(t->name, ifr.ifr_name, IF_NAMESIZE);
	t->name[IF_NAMESIZE - 1] = '\0';
	t->ifindex = (int)if_nametoindex(t->name);
	if (t->ifindex == 0) {
		err = -errno;
		*why = "if_nametoindex";
		goto fail;
	}
	err = tun_set_mtu(t->name, mtu);
	if (err != 0) {
		*why = "SIOCSIFMTU";
		goto fail;
	}
	return 0;
fail:
	close(t->fd);
	t->fd = -1;
	return err;
}

void tun_close(struct tun *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
}

ssize_t tun_read(struct tun *t, uint8_t *buf, size_t size)
{
	for (;;) {
		ssize_t n = read(t->fd, buf, size);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
}

int tun_write(struct tun *t, const uint8_t *pkt, size_t len)
{
	for (;;) {
		ssize_t n = write(t->fd, pkt, len);
		if (n >= 0)
			return 0;
		if (errno == EINTR)
			continue;
		return -errno;
	}
}
