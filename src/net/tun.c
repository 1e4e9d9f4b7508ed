/* Linux TUN device; see tun.h. */
#include "net/tun.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/if_tun.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
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

/* ---- the priority queue's steering program ------------------------------------------------ */

/* eBPF by hand (no compiler, no libbpf): the classic packet loads (LD_ABS / LD_IND, which
 * read big-endian fields from the packet's network header, r6 holding the context, and end
 * the program with 0 on a short packet) and a few jumps, resolved by label. Why by hand: the
 * program is about 40 instructions that only read headers; libbpf would load it, but it
 * would need clang's BPF target at build time and a BTF-carrying object for no gain here,
 * and the kernel's verifier checks what we load either way (unit.tun runs the program on 23
 * packets through BPF_PROG_TEST_RUN). */
enum { L_V6, L_L4, L_TCP, L_UDP, L_BULK, L_PRIO, L_COUNT };
#define PRIO_PROG_MAX 48

struct prog_fix {
	size_t at; /* a jump */
	int label; /* its target */
};

struct prog {
	struct bpf_insn insn[PRIO_PROG_MAX];
	size_t n, nfix;
	struct prog_fix fix[16];
	size_t label[L_COUNT];
};

static void emit(struct prog *p, uint8_t code, uint8_t dst, uint8_t src, int32_t imm, int label)
{
	if (label >= 0)
		p->fix[p->nfix++] = (struct prog_fix){p->n, label};
	p->insn[p->n++] =
	    (struct bpf_insn){.code = code, .dst_reg = dst, .src_reg = src, .imm = imm};
}

#define LD_ABS(p, size, off)	  emit(p, BPF_LD | BPF_ABS | (size), 0, 0, (off), -1)
#define LD_IND(p, size, r, off)	  emit(p, BPF_LD | BPF_IND | (size), 0, (r), (off), -1)
#define ALU_K(p, op, r, k)	  emit(p, BPF_ALU64 | (op) | BPF_K, (r), 0, (k), -1)
#define ALU_X(p, op, r, s)	  emit(p, BPF_ALU64 | (op) | BPF_X, (r), (s), 0, -1)
#define JMP_K(p, op, r, k, label) emit(p, BPF_JMP | (op) | BPF_K, (r), 0, (k), (label))
#define JMP_X(p, op, r, s, label) emit(p, BPF_JMP | (op) | BPF_X, (r), (s), 0, (label))
#define GOTO(p, label)		  emit(p, BPF_JMP | BPF_JA, 0, 0, 0, (label))
#define LABEL(p, l)		  ((p)->label[l] = (p)->n)

/* The priority rule (tun.h, tun_prio_prog_load) as a program. Registers: r6 the context, r7
 * the IP packet's length, r8 the transport protocol, r9 the transport header's offset. */
static void prio_prog(struct prog *p)
{
	ALU_X(p, BPF_MOV, 6, 1);
	LD_ABS(p, BPF_B, 0);
	ALU_K(p, BPF_RSH, 0, 4);
	JMP_K(p, BPF_JEQ, 0, 6, L_V6);
	JMP_K(p, BPF_JNE, 0, 4, L_BULK);
	/* IPv4: not a fragment (MF or an offset), protocol, header length, total length. */
	LD_ABS(p, BPF_H, 6);
	JMP_K(p, BPF_JSET, 0, 0x3fff, L_BULK);
	LD_ABS(p, BPF_B, 9);
	ALU_X(p, BPF_MOV, 8, 0);
	JMP_K(p, BPF_JEQ, 8, 1, L_PRIO); /* ICMP */
	LD_ABS(p, BPF_B, 0);
	ALU_K(p, BPF_AND, 0, 0xf);
	ALU_K(p, BPF_LSH, 0, 2);
	ALU_X(p, BPF_MOV, 9, 0);
	LD_ABS(p, BPF_H, 2);
	ALU_X(p, BPF_MOV, 7, 0);
	GOTO(p, L_L4);
	/* IPv6: the next header right after the fixed header (extension headers: bulk). */
	LABEL(p, L_V6);
	LD_ABS(p, BPF_B, 6);
	ALU_X(p, BPF_MOV, 8, 0);
	JMP_K(p, BPF_JEQ, 8, 58, L_PRIO); /* ICMPv6 */
	emit(p, BPF_ALU64 | BPF_MOV | BPF_K, 9, 0, 40, -1);
	LD_ABS(p, BPF_H, 4);
	ALU_K(p, BPF_ADD, 0, 40);
	ALU_X(p, BPF_MOV, 7, 0);
	LABEL(p, L_L4);
	JMP_K(p, BPF_JEQ, 8, 17, L_UDP);
	JMP_K(p, BPF_JNE, 8, 6, L_BULK);
	/* TCP: no SYN, FIN or RST, and the packet ends with the TCP header (data offset). A GSO
	 * super-packet's length is its whole length, so it never passes. */
	LABEL(p, L_TCP);
	LD_IND(p, BPF_B, 9, 13);
	JMP_K(p, BPF_JSET, 0, 0x07, L_BULK);
	LD_IND(p, BPF_B, 9, 12);
	ALU_K(p, BPF_RSH, 0, 4);
	ALU_K(p, BPF_LSH, 0, 2);
	ALU_X(p, BPF_ADD, 0, 9);
	JMP_X(p, BPF_JEQ, 0, 7, L_PRIO);
	GOTO(p, L_BULK);
	LABEL(p, L_UDP);
	LD_IND(p, BPF_H, 9, 0);
	JMP_K(p, BPF_JEQ, 0, 53, L_PRIO);
	LD_IND(p, BPF_H, 9, 2);
	JMP_K(p, BPF_JEQ, 0, 53, L_PRIO);
	LABEL(p, L_BULK);
	emit(p, BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, -1);
	emit(p, BPF_JMP | BPF_EXIT, 0, 0, 0, -1);
	LABEL(p, L_PRIO);
	emit(p, BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 1, -1);
	emit(p, BPF_JMP | BPF_EXIT, 0, 0, 0, -1);
	for (size_t i = 0; i < p->nfix; i++)
		p->insn[p->fix[i].at].off =
		    (int16_t)(p->label[p->fix[i].label] - (p->fix[i].at + 1));
}

int tun_prio_prog_load(void)
{
	static struct prog p; /* built once; the same bytes every time */
	union bpf_attr a;

	if (p.n == 0)
		prio_prog(&p);
	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
	a.insns = (uint64_t)(uintptr_t)p.insn;
	a.insn_cnt = (uint32_t)p.n;
	/* The program calls no helper, so no license matters to the kernel. */
	a.license = (uint64_t)(uintptr_t) "none";
	int fd = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof(a));
	return fd < 0 ? -errno : fd;
}

/* The second queue and its steering program; on any failure none (prio_fd -1), which costs
 * nothing but the priority. */
static void tun_prio_open(struct tun *t, short flags)
{
	struct ifreq ifr;
	int prog = tun_prio_prog_load();
	if (prog < 0)
		return;
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0) {
		ifr_set_name(&ifr, t->name);
		ifr.ifr_flags = flags;
		if (ioctl(fd, TUNSETIFF, &ifr) != 0 ||
		    ioctl(t->fd, TUNSETSTEERINGEBPF, &prog) != 0) {
			close(fd);
			fd = -1;
		}
	}
	close(prog); /* the interface holds the program */
	t->prio_fd = fd;
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

/* tun_attach, with `mq` as a multi-queue interface (IFF_MULTI_QUEUE) where the kernel has them;
 * *flags says what was used. */
static int tun_attach_mq(struct tun *t, const char *name, bool mq, short *flags,
			 const char **why)
{
	if (!mq)
		return tun_attach(t, name, *flags, why);
	int err = tun_attach(t, name, (short)(*flags | IFF_MULTI_QUEUE), why);
	if (err == 0)
		*flags |= IFF_MULTI_QUEUE;
	else if (err == -EINVAL)
		err = tun_attach(t, name, *flags, why);
	return err;
}

int tun_open(struct tun *t, const char *name, unsigned mtu, bool offload, bool prio,
	     const char **why)
{
	short flags = 0;
	int err;

	memset(t, 0, sizeof(*t));
	t->fd = -1;
	t->prio_fd = -1;
	if (!tun_name_valid(name)) {
		*why = "invalid interface name";
		return -EINVAL;
	}
	if (offload) {
		flags = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR;
		err = tun_attach_mq(t, name, prio, &flags, why);
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
		flags = IFF_TUN | IFF_NO_PI;
		err = tun_attach_mq(t, name, prio, &flags, why);
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
	if (flags & IFF_MULTI_QUEUE)
		tun_prio_open(t, flags);
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
	t->prio_fd = -1;
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
	if (t->prio_fd >= 0)
		close(t->prio_fd);
	t->prio_fd = -1;
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	t->vnet_hdr = false;
	t->offloads = 0;
}

static ssize_t read_fd(int fd, uint8_t *buf, size_t size)
{
	for (;;) {
		ssize_t n = read(fd, buf, size);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
}

ssize_t tun_read(struct tun *t, uint8_t *buf, size_t size)
{
	return read_fd(t->fd, buf, size);
}

ssize_t tun_read_prio(struct tun *t, uint8_t *buf, size_t size)
{
	return read_fd(t->prio_fd, buf, size);
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
