/* libsecureguard through its public API only (include/secureguard/sg.h), run by
 * tests/integration/test_embed.sh inside a network namespace:
 *
 *   engine A  SG_IO_TUN_FD: the TUN device EMB_TUN (10.77.0.1/24, fd00:77::1/64) the script made
 *   engine B  SG_IO_STACK:  10.77.0.2, fd00:77::2, no device, in this same process
 *   engine C  SG_IO_STACK:  10.78.0.2, a peer of wireguard-go (EMB_WGGO_PUB, 127.0.0.1:EMB_WGGO_PORT)
 *   engines D and E: SG_IO_PACKETS (the app's packet flow) and a stack engine in FIPS mode,
 *                    ICMP echo
 *
 * Checks: handshakes; TCP both ways over IPv4 and IPv6 with 4 MiB each way at once, sha256 of
 * what arrived against what was sent; UDP; stats; a live config change that keeps the session;
 * sg_disconnect from another thread while a reader waits; the same TCP check through
 * wireguard-go. Keys come from the environment (EMB_KEY_A, EMB_PUB_A, ...).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <secureguard/sg.h>

#define XFER (4u << 20)

static int failures;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("test_embed: ");
	vprintf(fmt, ap);
	printf("\n");
	fflush(stdout);
	va_end(ap);
}

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			say("FAIL %s:%d: %s", __FILE__, __LINE__, #cond);                          \
			say(__VA_ARGS__);                                                          \
			failures++;                                                                \
			goto out;                                                                  \
		}                                                                                  \
	} while (0)

static const char *env(const char *name)
{
	const char *v = getenv(name);
	if (!v || !*v) {
		say("missing environment variable %s", name);
		exit(2);
	}
	return v;
}

static void on_log(void *ctx, int level, const char *line)
{
	if (level <= SG_LOG_LEVEL_INFO)
		printf("  [%s] %s\n", (const char *)ctx, line);
}

static atomic_int stopped_events, handshakes;

static void on_event(void *ctx, const struct sg_event *ev)
{
	if (ev->type == SG_EVENT_STOPPED)
		atomic_fetch_add(&stopped_events, 1);
	if (ev->type == SG_EVENT_HANDSHAKE_COMPLETE)
		atomic_fetch_add(&handshakes, 1);
}

/* ---- transfers ---------------------------------------------------------------------------- */

static uint8_t *random_bytes(size_t n)
{
	uint8_t *p = malloc(n);
	int fd = open("/dev/urandom", O_RDONLY);
	size_t off = 0;
	while (p && fd >= 0 && off < n) {
		ssize_t r = read(fd, p + off, n - off);
		if (r <= 0)
			break;
		off += (size_t)r;
	}
	if (fd >= 0)
		close(fd);
	return p;
}

static void sha256(const uint8_t *p, size_t n, uint8_t out[32])
{
	unsigned len = 32;
	EVP_Digest(p, n, out, &len, EVP_sha256(), NULL);
}

struct half {
	int fd;
	const uint8_t *data; /* to send, or NULL */
	size_t len;
	EVP_MD_CTX *md; /* received bytes hashed */
	size_t got;
	int err;
};

static void *writer(void *arg)
{
	struct half *h = arg;
	size_t off = 0;
	while (off < h->len) {
		ssize_t n = write(h->fd, h->data + off, h->len - off > 65536 ? 65536 : h->len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			h->err = errno ? errno : EIO;
			break;
		}
		off += (size_t)n;
	}
	shutdown(h->fd, SHUT_WR);
	return NULL;
}

static void *reader(void *arg)
{
	struct half *h = arg;
	uint8_t buf[65536];
	for (;;) {
		ssize_t n = read(h->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			h->err = errno;
		if (n <= 0)
			break;
		EVP_DigestUpdate(h->md, buf, (size_t)n);
		h->got += (size_t)n;
	}
	return NULL;
}

/* XFER bytes a -> b and XFER other bytes b -> a at the same time; both sha256-checked. */
static bool transfer(int a, int b, const char *what)
{
	uint8_t *d1 = random_bytes(XFER), *d2 = random_bytes(XFER);
	uint8_t want1[32], want2[32], got1[32], got2[32];
	struct half wa = {.fd = a, .data = d1, .len = XFER}, wb = {.fd = b, .data = d2, .len = XFER};
	struct half rb = {.fd = b, .md = EVP_MD_CTX_new()}, ra = {.fd = a, .md = EVP_MD_CTX_new()};
	pthread_t t[4];
	struct timespec t0, t1;
	bool ok = false;

	if (!d1 || !d2 || !rb.md || !ra.md)
		goto done;
	EVP_DigestInit_ex(rb.md, EVP_sha256(), NULL);
	EVP_DigestInit_ex(ra.md, EVP_sha256(), NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_create(&t[0], NULL, writer, &wa);
	pthread_create(&t[1], NULL, writer, &wb);
	pthread_create(&t[2], NULL, reader, &rb);
	pthread_create(&t[3], NULL, reader, &ra);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	unsigned l = 32;
	EVP_DigestFinal_ex(rb.md, got1, &l);
	EVP_DigestFinal_ex(ra.md, got2, &l);
	sha256(d1, XFER, want1);
	sha256(d2, XFER, want2);
	ok = rb.got == XFER && ra.got == XFER && !memcmp(want1, got1, 32) && !memcmp(want2, got2, 32);
	say("%s: %zu and %zu of %u bytes, sha256 %s (%.2f s)", what, rb.got, ra.got, XFER,
	    ok ? "match both ways" : "DIFFER",
	    (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
done:
	EVP_MD_CTX_free(rb.md);
	EVP_MD_CTX_free(ra.md);
	free(d1);
	free(d2);
	return ok;
}

static struct sockaddr_storage ss_of(const char *ip, uint16_t port, socklen_t *len)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		inet_pton(AF_INET6, ip, &s6->sin6_addr);
		*len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		inet_pton(AF_INET, ip, &s4->sin_addr);
		*len = sizeof(*s4);
	}
	return ss;
}

static int kernel_listen(const char *ip, uint16_t port)
{
	socklen_t len;
	struct sockaddr_storage ss = ss_of(ip, port, &len);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 8) != 0) {
		say("listen %s:%u: %s", ip, port, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int kernel_connect(const char *ip, uint16_t port)
{
	socklen_t len;
	struct sockaddr_storage ss = ss_of(ip, port, &len);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = {.tv_sec = 20};
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
		say("connect %s:%u: %s", ip, port, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* The stack connects out to a kernel socket listening at ip:port, then the transfer. */
static bool stack_to_kernel(sg_engine *e, const char *ip, uint16_t port, const char *what)
{
	int lfd = kernel_listen(ip, port), sfd = -1, kfd = -1;
	bool ok = false;
	socklen_t len;
	struct sockaddr_storage to = ss_of(ip, port, &len);
	if (lfd < 0)
		return false;
	sg_result r = sg_tcp_connect(e, (struct sockaddr *)&to, len, 10000, &sfd);
	if (r != SG_EOK) {
		say("%s: sg_tcp_connect: %s", what, sg_strerror(r));
		goto done;
	}
	kfd = accept(lfd, NULL, NULL);
	if (kfd < 0)
		goto done;
	ok = transfer(sfd, kfd, what);
done:
	if (sfd >= 0)
		close(sfd);
	if (kfd >= 0)
		close(kfd);
	close(lfd);
	return ok;
}

/* The kernel connects in to a listener of the stack. */
static bool kernel_to_stack(sg_engine *e, const char *ip, uint16_t port, const char *what)
{
	sg_listener *l = NULL;
	socklen_t len;
	struct sockaddr_storage local = ss_of(strchr(ip, ':') ? "::" : "0.0.0.0", port, &len);
	int kfd = -1, sfd = -1;
	bool ok = false;

	sg_result r = sg_tcp_listen(e, (struct sockaddr *)&local, len, &l);
	if (r != SG_EOK) {
		say("%s: sg_tcp_listen: %s", what, sg_strerror(r));
		return false;
	}
	kfd = kernel_connect(ip, port);
	if (kfd < 0)
		goto done;
	struct pollfd p = {.fd = sg_listener_fd(l), .events = POLLIN};
	if (poll(&p, 1, 10000) != 1)
		goto done;
	struct sockaddr_storage from;
	if (sg_tcp_accept(l, &sfd, &from) != SG_EOK)
		goto done;
	ok = transfer(kfd, sfd, what);
done:
	if (sfd >= 0)
		close(sfd);
	if (kfd >= 0)
		close(kfd);
	sg_listener_close(l);
	return ok;
}

static int open_tun(const char *name)
{
	struct ifreq ifr;
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -1;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
		say("TUNSETIFF %s: %s", name, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static const struct sg_peer_stats *peer_of(const struct sg_stats *s, const char *pub)
{
	for (size_t i = 0; i < s->n_peers; i++)
		if (!strcmp(s->peers[i].public_key, pub))
			return &s->peers[i];
	return NULL;
}

/* ---- SG_IO_PACKETS: the app's packet flow (iOS) ------------------------------------------- */

struct flow {
	pthread_mutex_t mu;
	int echo_replies;
	uint16_t want_id;
};

static uint16_t csum(const uint8_t *p, size_t n)
{
	uint32_t s = 0;
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* An ICMP echo request from src to dst (IPv4, 64 bytes of payload). */
static size_t echo_request(uint8_t *pkt, const char *src, const char *dst, uint16_t id,
			   uint16_t seq)
{
	size_t len = 20 + 8 + 64;
	memset(pkt, 0, len);
	pkt[0] = 0x45;
	pkt[2] = (uint8_t)(len >> 8);
	pkt[3] = (uint8_t)len;
	pkt[8] = 64;
	pkt[9] = 1; /* ICMP */
	inet_pton(AF_INET, src, pkt + 12);
	inet_pton(AF_INET, dst, pkt + 16);
	uint16_t c = csum(pkt, 20);
	pkt[10] = (uint8_t)(c >> 8);
	pkt[11] = (uint8_t)c;
	uint8_t *icmp = pkt + 20;
	icmp[0] = 8; /* echo request */
	icmp[4] = (uint8_t)(id >> 8);
	icmp[5] = (uint8_t)id;
	icmp[6] = (uint8_t)(seq >> 8);
	icmp[7] = (uint8_t)seq;
	for (int i = 0; i < 64; i++)
		icmp[8 + i] = (uint8_t)i;
	c = csum(icmp, 8 + 64);
	icmp[2] = (uint8_t)(c >> 8);
	icmp[3] = (uint8_t)c;
	return len;
}

static void on_packet(void *ctx, const void *packet, size_t len)
{
	struct flow *f = ctx;
	const uint8_t *p = packet;
	/* An echo reply (type 0) to our id, its checksum valid. */
	if (len >= 28 && p[0] == 0x45 && p[9] == 1 && p[20] == 0 &&
	    (uint16_t)(p[24] << 8 | p[25]) == f->want_id && csum(p + 20, len - 20) == 0) {
		pthread_mutex_lock(&f->mu);
		f->echo_replies++;
		pthread_mutex_unlock(&f->mu);
	}
}

struct stopper {
	sg_engine *e;
	int delay_ms;
	sg_result r;
};

static void *disconnect_later(void *arg)
{
	struct stopper *s = arg;
	struct timespec ts = {.tv_sec = s->delay_ms / 1000, .tv_nsec = (s->delay_ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
	s->r = sg_disconnect(s->e);
	return NULL;
}

int main(void)
{
	char cfg[2048], why[256];
	sg_engine *a = NULL, *b = NULL, *c = NULL;
	struct sg_stats *sa = NULL, *sb = NULL;
	int tun = -1;
	const char *key_a = env("EMB_KEY_A"), *pub_a = env("EMB_PUB_A");
	const char *key_b = env("EMB_KEY_B"), *pub_b = env("EMB_PUB_B");
	const char *key_c = env("EMB_KEY_C"), *pub_c = env("EMB_PUB_C");
	const char *pub_x = env("EMB_PUB_X");

	say("libsecureguard %s, ABI %d (header %d)", sg_version(), sg_abi_version(),
	    SG_ABI_VERSION);
	CHECK(sg_abi_version() == SG_ABI_VERSION, "ABI mismatch");

	/* Bad input: a clear error that names the line, and no engine. */
	{
		struct sg_options o;
		sg_options_init(&o);
		sg_engine *bad = (sg_engine *)&o;
		sg_result r = sg_init(&bad, "[Interface]\nPrivateKey = nope\n", &o, why, sizeof(why));
		say("bad config: %s: %s", sg_strerror(r), why);
		CHECK(r == SG_EPARSE && bad == NULL && strstr(why, "line 2"), "bad config");
		r = sg_init(&bad, "[Interface]\n", &o, why, sizeof(why));
		say("stack without Address: %s: %s", sg_strerror(r), why);
		CHECK(r != SG_EOK && bad == NULL, "stack without an address");
	}

	/* Engine A: the TUN fd, as an Android app would hand it over. */
	tun = open_tun(env("EMB_TUN"));
	CHECK(tun >= 0, "TUN device");
	struct sg_options oa;
	sg_options_init(&oa);
	oa.packet_io = SG_IO_TUN_FD;
	oa.tun_fd = tun;
	oa.ctx = (void *)"A";
	oa.log = on_log;
	oa.event = on_event;
	oa.crypto_threads = 2;
	snprintf(cfg, sizeof(cfg),
		 "[Interface]\nPrivateKey = %s\nListenPort = 51877\n\n[Peer]\nPublicKey = %s\n"
		 "AllowedIPs = 10.77.0.2/32, fd00:77::2/128\n",
		 key_a, pub_b);
	CHECK(sg_init(&a, cfg, &oa, why, sizeof(why)) == SG_EOK, "engine A: %s", why);
	close(tun); /* the engine has its own duplicate */
	tun = -1;

	/* Engine B: the userspace stack, no device. */
	struct sg_options ob;
	sg_options_init(&ob);
	ob.ctx = (void *)"B";
	ob.log = on_log;
	ob.event = on_event;
	snprintf(cfg, sizeof(cfg),
		 "[Interface]\nPrivateKey = %s\nListenPort = 51878\nAddress = 10.77.0.2/24, "
		 "fd00:77::2/64\nMTU = 1420\n\n[Peer]\nPublicKey = %s\nEndpoint = 127.0.0.1:51877\n"
		 "AllowedIPs = 10.77.0.0/24, fd00:77::/64\nPersistentKeepalive = 25\n",
		 key_b, pub_a);
	CHECK(sg_init(&b, cfg, &ob, why, sizeof(why)) == SG_EOK, "engine B: %s", why);
	CHECK(sg_connect(a) == SG_EOK && sg_connect(b) == SG_EOK, "connect");
	CHECK(sg_connect(b) == SG_EEXIST, "a second connect is refused");

	CHECK(stack_to_kernel(b, "10.77.0.1", 8081, "stack->TUN TCP/IPv4"), "stack->TUN IPv4");
	CHECK(kernel_to_stack(b, "10.77.0.2", 8082, "TUN->stack TCP/IPv4"), "TUN->stack IPv4");
	CHECK(stack_to_kernel(b, "fd00:77::1", 8083, "stack->TUN TCP/IPv6"), "stack->TUN IPv6");
	CHECK(kernel_to_stack(b, "fd00:77::2", 8084, "TUN->stack TCP/IPv6"), "TUN->stack IPv6");

	/* UDP: the stack's socket and a kernel one, both ways. */
	{
		socklen_t len, klen;
		struct sockaddr_storage any = ss_of("0.0.0.0", 5300, &len);
		struct sockaddr_storage kaddr = ss_of("10.77.0.1", 5301, &klen);
		sg_udp *u = NULL;
		int k = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		char buf[2048];
		CHECK(k >= 0 && bind(k, (struct sockaddr *)&kaddr, klen) == 0, "kernel UDP");
		CHECK(sg_udp_open(b, (struct sockaddr *)&any, len, &u) == SG_EOK, "sg_udp_open");
		CHECK(sg_udp_sendto(u, "ping-from-stack", 15, (struct sockaddr *)&kaddr, klen) ==
			  SG_EOK,
		      "sg_udp_sendto");
		struct pollfd p = {.fd = k, .events = POLLIN};
		CHECK(poll(&p, 1, 5000) == 1, "datagram at the kernel socket");
		struct sockaddr_storage from;
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(k, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
		CHECK(n == 15 && !memcmp(buf, "ping-from-stack", 15), "datagram content");
		CHECK(sendto(k, "pong-to-stack", 13, 0, (struct sockaddr *)&from, flen) == 13, "reply");
		p.fd = sg_udp_fd(u);
		CHECK(poll(&p, 1, 5000) == 1, "datagram at the stack socket");
		size_t got = 0;
		CHECK(sg_udp_recvfrom(u, buf, sizeof(buf), &got, &from) == SG_EOK && got == 13 &&
			  !memcmp(buf, "pong-to-stack", 13),
		      "stack datagram content");
		CHECK(sg_udp_recvfrom(u, buf, sizeof(buf), &got, &from) == SG_EAGAIN, "empty");
		say("UDP both ways: ok");
		sg_udp_close(u);
		close(k);
	}

	/* Stats: the peers, their mode, bytes and packets. */
	CHECK(sg_get_stats(a, &sa) == SG_EOK && sg_get_stats(b, &sb) == SG_EOK, "stats");
	const struct sg_peer_stats *pa = peer_of(sa, pub_b), *pb = peer_of(sb, pub_a);
	CHECK(pa && pb, "stats name the peers");
	say("stats A: peer %s endpoint %s mode %s transport %s handshake %lld rx %llu/%llu tx "
	    "%llu/%llu; B: listen_port %u inner rx %llu tx %llu",
	    pa->public_key, pa->endpoint, pa->crypto_mode, pa->transport,
	    (long long)pa->last_handshake_sec, (unsigned long long)pa->rx_bytes,
	    (unsigned long long)pa->rx_packets, (unsigned long long)pa->tx_bytes,
	    (unsigned long long)pa->tx_packets, sb->listen_port,
	    (unsigned long long)sb->inner_rx_packets, (unsigned long long)sb->inner_tx_packets);
	CHECK(!strcmp(pa->crypto_mode, "classic") && pa->last_handshake_sec > 0 &&
		  pa->rx_bytes > 4 * XFER && pa->tx_packets > 1000 && pb->rx_packets > 1000 &&
		  sb->listen_port == 51878 && !strcmp(pb->endpoint, "127.0.0.1:51877"),
	      "stats values");
	int64_t hs = pb->last_handshake_sec;

	/* Live change: a second peer added to B; the session with A stays (no new handshake),
	 * traffic goes on; then removed again. A bad text changes nothing. */
	{
		char cfg2[2400];
		snprintf(cfg2, sizeof(cfg2), "%s\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.99.0.0/24\n",
			 cfg, pub_x);
		CHECK(sg_set_config(b, "[Peer]\nAllowedIPs = 1.2.3.4/33\n", why, sizeof(why)) ==
			  SG_EPARSE,
		      "bad live config refused");
		say("bad live config: %s", why);
		CHECK(sg_set_config(b, cfg2, why, sizeof(why)) == SG_EOK, "set_config: %s", why);
		sg_stats_free(sb);
		sb = NULL;
		CHECK(sg_get_stats(b, &sb) == SG_EOK && sb->n_peers == 2, "two peers");
		CHECK(peer_of(sb, pub_a)->last_handshake_sec == hs, "the session stayed");
		CHECK(stack_to_kernel(b, "10.77.0.1", 8085, "after live change"), "after change");
		CHECK(sg_set_config(b, cfg, why, sizeof(why)) == SG_EOK, "set_config back: %s", why);
		sg_stats_free(sb);
		sb = NULL;
		CHECK(sg_get_stats(b, &sb) == SG_EOK && sb->n_peers == 1, "one peer again");
		say("live config change: peer added and removed, session kept");
	}

	/* sg_disconnect from another thread while this one waits in read(): EOF, and the engine
	 * says it stopped. */
	{
		int lfd = kernel_listen("10.77.0.1", 8086), sfd = -1, kfd = -1;
		socklen_t len;
		struct sockaddr_storage to = ss_of("10.77.0.1", 8086, &len);
		CHECK(lfd >= 0, "listen");
		CHECK(sg_tcp_connect(b, (struct sockaddr *)&to, len, 10000, &sfd) == SG_EOK, "conn");
		kfd = accept(lfd, NULL, NULL);
		int before = atomic_load(&stopped_events);
		struct stopper st = {.e = b, .delay_ms = 300};
		pthread_t t;
		pthread_create(&t, NULL, disconnect_later, &st);
		char buf[16];
		ssize_t n = read(sfd, buf, sizeof(buf)); /* blocks until the disconnect */
		pthread_join(t, NULL);
		say("read after sg_disconnect from another thread: %zd; stopped events %d", n,
		    atomic_load(&stopped_events) - before);
		CHECK(n == 0 && st.r == SG_EOK && atomic_load(&stopped_events) == before + 1,
		      "disconnect from another thread");
		close(sfd);
		close(kfd);
		close(lfd);
		CHECK(sg_tcp_connect(b, (struct sockaddr *)&to, len, 1000, &sfd) == SG_EDOWN,
		      "no connections while disconnected");
		/* And back up. */
		CHECK(sg_connect(b) == SG_EOK, "reconnect");
		CHECK(stack_to_kernel(b, "10.77.0.1", 8087, "after reconnect"), "after reconnect");
	}

	/* SG_IO_PACKETS (iOS's packet flow) paired with a stack engine: echo requests written with
	 * sg_packet_write come back as replies through packet_out. */
	{
		struct flow fl = {.mu = PTHREAD_MUTEX_INITIALIZER, .want_id = 0x5347};
		struct sg_options od, oe;
		sg_engine *d = NULL, *e2 = NULL;
		sg_options_init(&od);
		od.packet_io = SG_IO_PACKETS;
		od.packet_out = on_packet;
		od.ctx = &fl;
		/* FIPS mode (P-384, AES-256-GCM) on this pair: the config's FIPS keys reach the
		 * engine as they reach secureguardd. */
		snprintf(cfg, sizeof(cfg),
			 "[Interface]\nPrivateKey = %s\nFipsPrivateKey = %s\nCryptoMode = fips\n"
			 "ListenPort = 51880\n\n[Peer]\nPublicKey = %s\nFipsPublicKey = %s\n"
			 "Endpoint = 127.0.0.1:51881\nAllowedIPs = 10.79.0.2/32\n",
			 key_b, env("EMB_FKEY_D"), pub_c, env("EMB_FPUB_E"));
		CHECK(sg_init(&d, cfg, &od, why, sizeof(why)) == SG_EOK, "engine D: %s", why);
		sg_options_init(&oe);
		snprintf(cfg, sizeof(cfg),
			 "[Interface]\nPrivateKey = %s\nFipsPrivateKey = %s\nCryptoMode = fips\n"
			 "ListenPort = 51881\nAddress = 10.79.0.2/24\n\n[Peer]\nPublicKey = %s\n"
			 "FipsPublicKey = %s\nAllowedIPs = 10.79.0.1/32\n",
			 key_c, env("EMB_FKEY_E"), pub_b, env("EMB_FPUB_D"));
		CHECK(sg_init(&e2, cfg, &oe, why, sizeof(why)) == SG_EOK, "engine E: %s", why);
		uint8_t pkt[128];
		size_t plen = echo_request(pkt, "10.79.0.1", "10.79.0.2", fl.want_id, 1);
		CHECK(sg_packet_write(d, pkt, plen) == SG_EDOWN, "not connected yet");
		CHECK(sg_connect(d) == SG_EOK && sg_connect(e2) == SG_EOK, "connect D, E");
		int got = 0;
		for (int i = 0; i < 100 && got < 5; i++) {
			if (i < 10) {
				plen = echo_request(pkt, "10.79.0.1", "10.79.0.2", fl.want_id,
						    (uint16_t)(i + 1));
				(void)sg_packet_write(d, pkt, plen);
			}
			struct timespec ts = {.tv_nsec = 50000000};
			nanosleep(&ts, NULL);
			pthread_mutex_lock(&fl.mu);
			got = fl.echo_replies;
			pthread_mutex_unlock(&fl.mu);
		}
		uint8_t big[2000] = {0x45};
		CHECK(sg_packet_write(d, big, sizeof(big)) == SG_ERANGE, "larger than the MTU");
		struct sg_stats *sd = NULL;
		CHECK(sg_get_stats(d, &sd) == SG_EOK, "stats D");
		bool fips = sd->n_peers == 1 && !strcmp(sd->peers[0].crypto_mode, "fips");
		sg_stats_free(sd);
		say("packet flow: %d echo replies through packet_out (FIPS session: %s)", got,
		    fips ? "yes" : "no");
		CHECK(fips, "the packet-flow pair speaks FIPS mode");
		sg_free(e2);
		sg_free(d);
		CHECK(got >= 5, "echo replies through the packet callbacks");
	}

	/* Engine C on the stack against wireguard-go. */
	{
		struct sg_options oc;
		sg_options_init(&oc);
		oc.ctx = (void *)"C";
		oc.log = on_log;
		snprintf(cfg, sizeof(cfg),
			 "[Interface]\nPrivateKey = %s\nAddress = 10.78.0.2/24, fd00:78::2/64\n\n"
			 "[Peer]\nPublicKey = %s\nEndpoint = 127.0.0.1:%s\nAllowedIPs = 10.78.0.0/24, "
			 "fd00:78::/64\n",
			 key_c, env("EMB_WGGO_PUB"), env("EMB_WGGO_PORT"));
		CHECK(sg_init(&c, cfg, &oc, why, sizeof(why)) == SG_EOK, "engine C: %s", why);
		CHECK(sg_connect(c) == SG_EOK, "connect C");
		CHECK(stack_to_kernel(c, "10.78.0.1", 8091, "stack->wireguard-go TCP/IPv4"),
		      "wireguard-go IPv4");
		CHECK(kernel_to_stack(c, "fd00:78::2", 8092, "wireguard-go->stack TCP/IPv6"),
		      "wireguard-go IPv6");
		(void)pub_c;
	}
	say("handshakes seen by the event callback: %d", atomic_load(&handshakes));
	CHECK(atomic_load(&handshakes) >= 2, "handshake events");
out:
	sg_stats_free(sa);
	sg_stats_free(sb);
	sg_free(c);
	sg_free(b);
	sg_free(a);
	if (tun >= 0)
		close(tun);
	say("%s", failures ? "FAILED" : "all checks passed");
	return failures ? 1 : 0;
}
