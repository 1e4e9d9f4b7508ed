/* Linux TUN device; see tun.h. */
#include "net/tun.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* UDP segmentation offload for TUN arrived in Linux 6.2; older headers lack the names. */
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif

static const uint8_t zero_vnet_hdr[TUN_VNET_HDR_LEN];

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

int tun_is_up(const struct tun *t)
{
	struct ifreq ifr;
	int ret;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	ifr_set_name(&ifr, t->name);
	ret = ioctl(s, SIOCGIFFLAGS, &ifr) != 0 ? -errno : (ifr.ifr_flags & IFF_UP) != 0;
	close(s);
	return ret;
}

/* Opens /dev/net/tun and attaches it to `name` with `flags`. */
static int tun_attach(struct tun *t, const char *name, short flags, const char **why)
{
	struct ifreq ifr;
	int err;

	t->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (t->fd < 0) {
		*why = "open /dev/net/tun";
		return -errno;
	}
	ifr_set_name(&ifr, name);
	ifr.ifr_flags = flags;
	if (ioctl(t->fd, TUNSETIFF, &ifr) != 0) {
		err = -errno;
		*why = "TUNSETIFF";
		close(t->fd);
		t->fd = -1;
		return err;
	}
	memcpy(t->name, ifr.ifr_name, IF_NAMESIZE);
	t->name[IF_NAMESIZE - 1] = '\0';
	return 0;
}

/* Checksum and TCP segmentation offload, plus UDP's where the kernel knows it (6.2+): the
 * kernel then hands us super-packets and partial checksums instead of doing the work itself.
 * Returns the flags accepted, 0 if none was. */
static unsigned tun_set_offload(int fd)
{
	static const unsigned tries[] = {
	    TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_USO4 | TUN_F_USO6,
	    TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6,
	};
	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++)
		if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)tries[i]) == 0)
			return tries[i];
	return 0;
}

int tun_open(struct tun *t, const char *name, unsigned mtu, bool offload, const char **why)
{
	int err;

	memset(t, 0, sizeof(*t));
	t->fd = -1;
	if (!tun_name_valid(name)) {
		*why = "invalid interface name";
		return -EINVAL;
	}
	if (offload) {
		err = tun_attach(t, name, IFF_TUN | IFF_NO_PI | IFF_VNET_HDR, why);
		if (err == 0) {
			t->offloads = tun_set_offload(t->fd);
			if (t->offloads != 0) {
				t->vnet_hdr = true;
			} else {
				/* No offloads: a virtio header would only cost bytes. The
				 * interface is not persistent, so closing the fd removes it;
				 * make it again. */
				close(t->fd);
				t->fd = -1;
			}
		} else if (err != -EINVAL) {
			return err;
		}
	}
	if (t->fd < 0) {
		err = tun_attach(t, name, IFF_TUN | IFF_NO_PI, why);
		if (err != 0)
			return err;
	}
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
	t->vnet_hdr = false;
	t->offloads = 0;
	return err;
}

int tun_adopt(struct tun *t, int fd, const char **why)
{
	struct ifreq ifr;
	int err;

	memset(t, 0, sizeof(*t));
	t->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (t->fd < 0) {
		*why = "dup TUN fd";
		return -errno;
	}
	memset(&ifr, 0, sizeof(ifr));
	if (ioctl(t->fd, TUNGETIFF, &ifr) != 0) {
		err = -errno;
		*why = "TUNGETIFF (not a TUN fd?)";
		goto fail;
	}
	if ((ifr.ifr_flags & (IFF_TUN | IFF_TAP)) != IFF_TUN || !(ifr.ifr_flags & IFF_NO_PI)) {
		err = -EINVAL;
		*why = "the fd must be IFF_TUN with IFF_NO_PI (layer-3 packets, no packet "
		       "information header)";
		goto fail;
	}
	int fl = fcntl(t->fd, F_GETFL);
	if (fl < 0 || fcntl(t->fd, F_SETFL, fl | O_NONBLOCK) != 0) {
		err = -errno;
		*why = "O_NONBLOCK";
		goto fail;
	}
	/* Which offloads the opener asked for cannot be read back: a vnet header is handled (GSO
	 * reads are cut into segments), and coalesced writes are tried until the kernel refuses. */
	t->vnet_hdr = (ifr.ifr_flags & IFF_VNET_HDR) != 0;
	memcpy(t->name, ifr.ifr_name, sizeof(t->name));
	t->name[sizeof(t->name) - 1] = '\0';
	t->ifindex = (int)if_nametoindex(t->name); /* 0 when it lives in another namespace */
	return 0;
fail:
	close(t->fd);
	t->fd = -1;
	return err;
}

bool tun_attached(const struct tun *t)
{
	struct ifreq ifr;
	if (t->fd < 0)
		return false;
	memset(&ifr, 0, sizeof(ifr));
	return ioctl(t->fd, TUNGETIFF, &ifr) == 0 || errno != EBADFD;
}

void tun_close(struct tun *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	t->vnet_hdr = false;
	t->offloads = 0;
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

int tun_write_vnet(struct tun *t, const uint8_t *hdr, const uint8_t *pkt, size_t len)
{
	struct iovec iov[2] = {
	    {.iov_base = (void *)hdr, .iov_len = TUN_VNET_HDR_LEN},
	    {.iov_base = (void *)pkt, .iov_len = len},
	};
	for (;;) {
		ssize_t n = writev(t->fd, iov, 2);
		if (n >= 0)
			return 0;
		if (errno == EINTR)
			continue;
		return -errno;
	}
}

int tun_write(struct tun *t, const uint8_t *pkt, size_t len)
{
	if (t->vnet_hdr)
		return tun_write_vnet(t, zero_vnet_hdr, pkt, len);
	for (;;) {
		ssize_t n = write(t->fd, pkt, len);
		if (n >= 0)
			return 0;
		if (errno == EINTR)
			continue;
		return -errno;
	}
}
