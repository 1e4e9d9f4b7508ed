/* Handshake-initiation flood for bench/handshake_flood.sh: does a flood of initiations from
 * strangers starve the victim's established tunnels?
 *
 * First it generates COUNT distinct, valid initiations addressed to the victim with the protocol
 * core itself: a wg_device with a random static key and one peer, the victim (classic: its X25519
 * public key; -f: its P-384 FIPS public key, as a FIPS-only peer), whose send upcall captures the
 * datagrams. The simulated clock advances REKEY_TIMEOUT + 1 s between initiations, past the
 * core's one-initiation-per-REKEY_TIMEOUT limit (whitepaper 6.1). The flooder's static key is
 * replaced every EVERY messages (default: every message), so the flood is many unknown initiators
 * rather than one. mac1 is valid, since it is keyed by the victim's public key alone (whitepaper
 * 5.4.4): the victim cannot drop the messages before the Noise work; it has to compute the es DH
 * and decrypt the static key to learn that the sender is no peer of its. mac2 is empty, so a
 * victim under load answers with cookie replies instead (whitepaper 5.3); they are counted.
 *
 * Then, with all generation done (so the generator is not the bottleneck), it sends them round
 * robin over one connected UDP socket at RATE messages/s for SECONDS, a sendmmsg burst every
 * millisecond carrying what the schedule owes, until the time is up or SIGTERM/SIGINT.
 *
 *   flood_gen [-f] -k VICTIM_PUBKEY -d ADDR:PORT [-s ADDR[:PORT]] [-n COUNT] [-r RATE]
 *             [-t SECONDS] [-e EVERY]
 * ADDR is IPv4 or [IPv6]. Prints a line "ready ..." (flushed) when the blast starts, and one
 * line of key=value pairs at the end: sent = datagrams the kernel accepted, dropped = refused
 * (EAGAIN, ENOBUFS: not retried, the schedule goes on), cpu_s = this process's CPU time during
 * the blast (the flooder competes for the same cores as what it floods).
 *
 * Built by bench/handshake_flood.sh (cc against the build's static libraries), not by CMake.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <secureguard/sg_errors.h>

#include "config/key.h"
#include "wg/messages.h"

#define BENCH_NAME "flood_gen"
#include "bench_core.h"

#define MAX_COUNT    65536
#define MAX_RATE     1000000
#define MAX_SECONDS  3600
#define BATCH	     64
#define TICK_NS	     1000000ULL
#define MSG_MAX	     WG_FIPS_INITIATION_LEN

static struct {
	uint8_t (*buf)[MSG_MAX];
	size_t *len;
	size_t count, cap;
	bool bad; /* the core sent something that is not one initiation of the expected size */
	size_t want_len;
} caught;

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
	stop = 1;
}

static void io_send(void *ctx, struct wg_peer *peer, const struct wg_endpoint *to,
		    const uint8_t *buf, size_t len, uint8_t ttl)
{
	if (caught.count == caught.cap || len != caught.want_len || buf[0] != WG_MSG_INITIATION) {
		caught.bad = true;
		return;
	}
	memcpy(caught.buf[caught.count], buf, len);
	caught.len[caught.count++] = len;
}

static void io_deliver(void *ctx, struct wg_peer *peer, const uint8_t *pkt, size_t len)
{
}

static uint64_t io_realtime(void *ctx)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * NSEC + (uint64_t)ts.tv_nsec;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC + (uint64_t)ts.tv_nsec;
}

/* A decimal number in [lo, hi], or exit with what was wrong and where. */
static unsigned long parse_num(const char *opt, const char *s, unsigned long lo, unsigned long hi)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi) {
		fprintf(stderr, "flood_gen: %s: '%s' is not a number in %lu..%lu\n", opt, s, lo, hi);
		exit(2);
	}
	return v;
}

/* "a.b.c.d[:port]" or "[v6][:port]"; the port is required when need_port. 0 or SG_EPARSE with
 * *why set. */
static int parse_addr(const char *s, bool need_port, union wg_sockaddr *out, const char **why)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port = NULL, *h = s;
	size_t hl;

	memset(out, 0, sizeof(*out));
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close) {
			*why = "'[' without ']'";
			return SG_EPARSE;
		}
		h = s + 1;
		hl = (size_t)(close - h);
		if (close[1] == ':')
			port = close + 2;
		else if (close[1]) {
			*why = "junk after ']'";
			return SG_EPARSE;
		}
	} else {
		const char *colon = strchr(s, ':');
		hl = colon ? (size_t)(colon - s) : strlen(s);
		if (colon)
			port = colon + 1;
	}
	if (hl == 0 || hl >= sizeof(host)) {
		*why = "address missing or too long";
		return SG_EPARSE;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	unsigned long p = 0;
	if (port) {
		char *end;
		errno = 0;
		p = strtoul(port, &end, 10);
		if (errno || end == port || *end || port[0] == '-' || p == 0 || p > 65535) {
			*why = "port is not a number in 1..65535";
			return SG_EPARSE;
		}
	} else if (need_port) {
		*why = "no :PORT";
		return SG_EPARSE;
	}
	if (inet_pton(AF_INET, host, &out->in4.sin_addr) == 1) {
		out->in4.sin_family = AF_INET;
		out->in4.sin_port = htons((uint16_t)p);
	} else if (inet_pton(AF_INET6, host, &out->in6.sin6_addr) == 1) {
		out->in6.sin6_family = AF_INET6;
		out->in6.sin6_port = htons((uint16_t)p);
	} else {
		*why = "not an IPv4 or IPv6 address";
		return SG_EPARSE;
	}
	return 0;
}

static socklen_t sa_len(const union wg_sockaddr *a)
{
	return a->sa.sa_family == AF_INET ? sizeof(a->in4) : sizeof(a->in6);
}

/* A fresh static key for the flooder: the victim sees a new unknown initiator. */
static void new_flooder_key(struct wg_device *dev, bool fips)
{
	if (fips ? !bench_new_fips_key(dev) : !bench_new_x25519_key(dev))
		die(fips ? "cannot set a new FIPS key" : "cannot set a new X25519 key");
}

/* Fills cap with count initiations to the victim at `to`. */
static void generate(bool fips, const uint8_t *victim, const union wg_sockaddr *to, size_t count,
		     size_t every)
{
	struct wg_io io = {.send = io_send, .deliver = io_deliver, .realtime_ns = io_realtime};
	struct wg_device *dev = wg_device_new(&io);
	struct wg_peer *peer;
	struct wg_endpoint ep;
	uint64_t now = 1000 * NSEC;

	caught.buf = calloc(count, sizeof(*caught.buf));
	caught.len = calloc(count, sizeof(*caught.len));
	if (!dev || !caught.buf || !caught.len)
		die("out of memory");
	caught.cap = count;
	caught.want_len = fips ? WG_FIPS_INITIATION_LEN : WG_MSG_INITIATION_LEN;
	new_flooder_key(dev, fips);
	if (fips) {
		uint8_t id[WG_KEY_LEN];
		/* A FIPS-only peer: known by its P-384 key alone (its id stands for the X25519
		 * key), so only the FIPS mode can be chosen. */
		wg_fips_peer_id(id, victim);
		if (wg_device_add_peer(dev, id, &peer) || wg_peer_set_fips_public_key(peer, victim) ||
		    wg_device_set_crypto_mode(dev, WG_CRYPTO_FIPS))
			die("cannot add the victim as a FIPS peer (is the key a P-384 point?)");
	} else if (wg_device_add_peer(dev, victim, &peer) ||
		   wg_device_set_crypto_mode(dev, WG_CRYPTO_CLASSIC)) {
		die("cannot add the victim as a peer");
	}
	memset(&ep, 0, sizeof(ep));
	ep.addr = *to;
	wg_peer_set_endpoint(peer, &ep);
	for (size_t i = 0; i < count; i++) {
		if (i && i % every == 0)
			new_flooder_key(dev, fips);
		now += REKEY_TIMEOUT + NSEC;
		size_t before = caught.count;
		wg_peer_initiate(peer, now);
		if (caught.bad || caught.count != before + 1)
			die("the core did not produce exactly one initiation");
	}
	wg_device_free(dev);
}

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [-f] -k VICTIM_PUBKEY -d ADDR:PORT [-s ADDR[:PORT]] [-n COUNT]\n"
		"       [-r RATE] [-t SECONDS] [-e EVERY]\n"
		"  -f  FIPS mode: VICTIM_PUBKEY is the victim's P-384 key (secureguard pubkey --fips)\n",
		argv0);
	exit(2);
}

int main(int argc, char **argv)
{
	const char *key = NULL, *dst = NULL, *src = NULL, *why = "";
	size_t count = 256, every = 1;
	unsigned long rate = 2000, secs = 5;
	bool fips = false;
	int opt;

	while ((opt = getopt(argc, argv, "fk:d:s:n:r:t:e:")) != -1) {
		switch (opt) {
		case 'f':
			fips = true;
			break;
		case 'k':
			key = optarg;
			break;
		case 'd':
			dst = optarg;
			break;
		case 's':
			src = optarg;
			break;
		case 'n':
			count = parse_num("-n", optarg, 1, MAX_COUNT);
			break;
		case 'r':
			rate = parse_num("-r", optarg, 1, MAX_RATE);
			break;
		case 't':
			secs = parse_num("-t", optarg, 1, MAX_SECONDS);
			break;
		case 'e':
			every = parse_num("-e", optarg, 1, MAX_COUNT);
			break;
		default:
			usage(argv[0]);
		}
	}
	if (!key || !dst || optind != argc)
		usage(argv[0]);

	uint8_t victim[WG_FIPS_PUB_LEN];
	union wg_sockaddr to, from;
	if (sg_crypto_init() != 0)
		die("crypto init failed");
	if (fips ? sg_fipskey_pub_from_base64(victim, key, strlen(key)) != 0
		 : sg_key_from_base64(victim, key, strlen(key)) != 0)
		die(fips ? "-k: '%s' is not a base64 P-384 public key (68 characters)"
			 : "-k: '%s' is not a base64 X25519 public key (44 characters)",
		    key);
	if (parse_addr(dst, true, &to, &why))
		die("-d: %s", why);
	if (src && parse_addr(src, false, &from, &why))
		die("-s: %s", why);
	if (src && from.sa.sa_family != to.sa.sa_family)
		die("-s and -d are of different address families");

	double g0 = process_cpu_now();
	generate(fips, victim, &to, count, every);
	double gen = process_cpu_now() - g0;

	int fd = socket(to.sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	int sndbuf = 1 << 20;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	if (src && bind(fd, &from.sa, sa_len(&from)) < 0)
		die("bind -s: %s", strerror(errno));
	if (connect(fd, &to.sa, sa_len(&to)) < 0)
		die("connect -d: %s", strerror(errno));

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop; /* no SA_RESTART: the tick's sleep ends at once */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	struct mmsghdr out[BATCH], in[BATCH];
	struct iovec oiov[BATCH], iiov[BATCH];
	static uint8_t rbuf[BATCH][256];
	for (int i = 0; i < BATCH; i++) {
		memset(&in[i], 0, sizeof(in[i]));
		iiov[i].iov_base = rbuf[i];
		iiov[i].iov_len = sizeof(rbuf[i]);
		in[i].msg_hdr.msg_iov = &iiov[i];
		in[i].msg_hdr.msg_iovlen = 1;
	}
	unsigned long long sent = 0, dropped = 0, errors = 0, cookies = 0, rejects = 0, other = 0;
	size_t next_msg = 0;
	printf("ready mode=%s generated=%zu gen_cpu_s=%.3f\n", fips ? "fips" : "classic", count,
	       gen);
	fflush(stdout);

	double c0 = process_cpu_now();
	uint64_t start = mono_ns(), end = start + secs * NSEC, tick = start, now = start;
	while (!stop && now < end) {
		/* What the schedule owes by now; whatever the kernel refuses is not owed again. */
		unsigned long long due = (unsigned long long)((double)rate * (double)(now - start) / 1e9);
		while (sent + dropped < due) {
			unsigned long long want = due - sent - dropped;
			int b = want < BATCH ? (int)want : BATCH;
			for (int i = 0; i < b; i++) {
				size_t m = (next_msg + (size_t)i) % count;
				memset(&out[i], 0, sizeof(out[i]));
				oiov[i].iov_base = caught.buf[m];
				oiov[i].iov_len = caught.len[m];
				out[i].msg_hdr.msg_iov = &oiov[i];
				out[i].msg_hdr.msg_iovlen = 1;
			}
			int r = sendmmsg(fd, out, (unsigned)b, 0);
			if (r < 0) {
				/* EAGAIN/ENOBUFS: a full queue; ECONNREFUSED: an ICMP error for an
				 * earlier datagram. Either way this burst is lost. */
				if (errno != EAGAIN && errno != ENOBUFS && errno != ECONNREFUSED &&
				    errno != EINTR)
					die("sendmmsg: %s", strerror(errno));
				errors++;
				r = 0;
			}
			sent += (unsigned)r;
			dropped += (unsigned)(b - r);
			next_msg = (next_msg + (size_t)b) % count;
			if (r < b)
				break;
		}
		int n;
		while ((n = recvmmsg(fd, in, BATCH, MSG_DONTWAIT, NULL)) > 0) {
			for (int i = 0; i < n; i++) {
				uint8_t t = in[i].msg_len ? rbuf[i][0] : 0;
				if (t == WG_MSG_COOKIE)
					cookies++;
				else if (t == WG_MSG_REJECT)
					rejects++;
				else
					other++;
			}
		}
		tick += TICK_NS;
		now = mono_ns();
		if (tick + 100 * TICK_NS < now)
			tick = now; /* descheduled for long: don't burst to catch up the ticks */
		if (tick > now) {
			struct timespec ts = {.tv_sec = (time_t)(tick / NSEC),
					      .tv_nsec = (long)(tick % NSEC)};
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
			now = mono_ns();
		}
	}
	double wall = (double)(mono_ns() - start) / 1e9;
	printf("mode=%s generated=%zu every=%zu rate=%lu secs=%.3f sent=%llu dropped=%llu "
	       "send_errors=%llu achieved_rate=%.1f cpu_s=%.3f gen_cpu_s=%.3f cookie_replies=%llu "
	       "reject_replies=%llu other_replies=%llu\n",
	       fips ? "fips" : "classic", count, every, rate, wall, sent, dropped, errors,
	       (double)sent / wall, process_cpu_now() - c0, gen, cookies, rejects, other);
	close(fd);
	free(caught.buf);
	free(caught.len);
	return 0;
}
