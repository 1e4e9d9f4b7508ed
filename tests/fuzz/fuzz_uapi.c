/* Fuzz target for the UAPI engine (src/net/uapi.c): the input is what a client sends on the
 * control socket, fed to a fresh device in chunks whose sizes come from the input itself (so
 * line and operation boundaries fall everywhere), followed by end of input.
 *
 * Checks, besides ASan/UBSan: every answer the engine writes is well-formed ("errno=N\n\n" ends
 * it, N = 0 or a negative errno); and the configuration a get reports is a fixed point: set into
 * a second device (without the read-only counters) and read back, it gives the same text. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "crypto/crypto.h"
#include "net/uapi.h"
#include "wg/wg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct host_state {
	uint16_t port;
	uint32_t mark;
};

static int set_port(void *ctx, uint16_t port)
{
	struct host_state *h = ctx;
	if (port == 1) /* pretend port 1 is taken, to reach that error path */
		return -98;
	h->port = port ? port : 40000;
	return 0;
}
static uint16_t get_port(void *ctx)
{
	return ((struct host_state *)ctx)->port;
}
static int set_mark(void *ctx, uint32_t mark)
{
	((struct host_state *)ctx)->mark = mark;
	return 0;
}
static uint32_t get_mark(void *ctx)
{
	return ((struct host_state *)ctx)->mark;
}
static uint64_t now_ns(void *ctx)
{
	return 1000ull * 1000000000ull;
}

static void io_send(void *ctx, struct wg_peer *peer, const struct wg_endpoint *to,
		    const uint8_t *buf, size_t len, uint8_t ttl)
{
}
static void io_deliver(void *ctx, struct wg_peer *peer, const uint8_t *pkt, size_t len)
{
}
static uint64_t io_realtime(void *ctx)
{
	return 1700000000ull * 1000000000ull;
}

/* Deterministic randomness, so a crash input reproduces. */
static bool fuzz_random(void *ctx, void *buf, size_t n)
{
	static uint64_t s = 0x9e3779b97f4a7c15ULL;
	uint8_t *p = buf;
	for (size_t i = 0; i < n; i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		p[i] = (uint8_t)s;
	}
	return true;
}

struct out {
	char *p;
	size_t len, cap;
};

/* Everything the connection has to say now (a get comes a piece at a time). */
static void drain(struct uapi_conn *c, struct out *o)
{
	size_t n;
	const uint8_t *p;
	while ((p = uapi_conn_output(c, &n)) != NULL && n) {
	if (o->len + n + 1 > o->cap) {
		size_t cap = (o->len + n + 1) * 2;
		char *q = realloc(o->p, cap);
		if (!q)
			abort();
		o->p = q;
		o->cap = cap;
	}
	memcpy(o->p + o->len, p, n);
	o->len += n;
	o->p[o->len] = '\0';
	uapi_conn_output_consumed(c, n);
	}
}

/* Every answer is key=value lines ending in "errno=N\n\n". */
static void check_answers(const struct out *o)
{
	size_t pos = 0;
	while (pos < o->len) {
		const char *end = strstr(o->p + pos, "\n\n");
		if (!end)
			abort();
		const char *last = end;
		while (last > o->p + pos && last[-1] != '\n')
			last--;
		int err;
		char tail;
		if (sscanf(last, "errno=%d%c", &err, &tail) != 2 || tail != '\n' || err > 0)
			abort();
		pos = (size_t)(end - o->p) + 2;
	}
}

static struct wg_device *new_device(void)
{
	struct wg_io io = {NULL, io_send, io_deliver, io_realtime, NULL, NULL};
	struct wg_device *d = wg_device_new(&io);
	if (!d)
		abort();
	return d;
}

/* Runs `req` on a connection to dev; returns everything it answered. */
static struct out converse(struct wg_device *dev, const struct uapi_host *host, const uint8_t *req,
			   size_t len, const uint8_t *chunks, size_t nchunks)
{
	struct out o = {0};
	struct uapi_conn *c = uapi_conn_new(dev, host);
	if (!c)
		abort();
	size_t pos = 0, k = 0;
	while (pos < len && !uapi_conn_want_close(c)) {
		size_t n = nchunks ? (size_t)chunks[k++ % nchunks] + 1 : len - pos;
		if (n > len - pos)
			n = len - pos;
		size_t used = uapi_conn_input(c, req + pos, n);
		if (used > n)
			abort();
		pos += used;
		size_t before = o.len;
		drain(c, &o);
		if (used == 0 && o.len == before && !uapi_conn_want_close(c))
			abort(); /* stalled */
	}
	uapi_conn_eof(c);
	drain(c, &o);
	if (!uapi_conn_want_close(c))
		abort();
	uapi_conn_free(c);
	return o;
}

/* The get answer without what a set cannot carry (counters, handshake time, errno). */
static char *settable(const char *get)
{
	size_t len = strlen(get);
	char *out = malloc(len + 32);
	if (!out)
		abort();
	size_t pos = (size_t)sprintf(out, "set=1\n");
	const char *p = get;
	while (*p) {
		const char *nl = strchr(p, '\n');
		if (!nl)
			break;
		size_t l = (size_t)(nl - p);
		if (l > 0 && strncmp(p, "last_handshake_time_", 20) != 0 &&
		    strncmp(p, "tx_bytes=", 9) != 0 && strncmp(p, "rx_bytes=", 9) != 0 &&
		    strncmp(p, "errno=", 6) != 0) {
			memcpy(out + pos, p, l + 1);
			pos += l + 1;
		}
		p = nl + 1;
	}
	out[pos++] = '\n';
	out[pos] = '\0';
	return out;
}

static char *config_text(struct wg_device *dev, const struct uapi_host *host)
{
	struct out o = converse(dev, host, (const uint8_t *)"get=1\n\n", 7, NULL, 0);
	check_answers(&o);
	if (!o.p || strstr(o.p, "errno=0\n\n") == NULL)
		abort();
	char *s = settable(o.p);
	sg_memzero(o.p, o.len);
	free(o.p);
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	if (!init) {
		sg_crypto_set_random(fuzz_random, NULL);
		sg_log_set_level(SG_LOG_ERROR);
		init = true;
	}
	/* First byte: how many chunk sizes follow (0..7); then the request. */
	size_t nchunks = size ? data[0] & 7 : 0;
	if (size < 1 + nchunks)
		return 0;
	const uint8_t *chunks = data + 1;
	const uint8_t *req = data + 1 + nchunks;
	size_t len = size - 1 - nchunks;

	struct host_state hs1 = {0}, hs2 = {0};
	struct uapi_host h1 = {.ctx = &hs1, .set_listen_port = set_port, .listen_port = get_port,
			      .set_fwmark = set_mark, .fwmark = get_mark, .now = now_ns};
	struct uapi_host h2 = {.ctx = &hs2, .set_listen_port = set_port, .listen_port = get_port,
			      .set_fwmark = set_mark, .fwmark = get_mark, .now = now_ns};
	struct wg_device *a = new_device();
	struct out o = converse(a, &h1, req, len, chunks, nchunks);
	check_answers(&o);
	free(o.p);

	/* Fixed point: what a reports, set into b, reads back identically. */
	char *cfg_a = config_text(a, &h1);
	struct wg_device *b = new_device();
	struct out ob = converse(b, &h2, (const uint8_t *)cfg_a, strlen(cfg_a), NULL, 0);
	if (!ob.p || strcmp(ob.p, "errno=0\n\n") != 0)
		abort();
	free(ob.p);
	char *cfg_b = config_text(b, &h2);
	if (strcmp(cfg_a, cfg_b) != 0)
		abort();
	sg_memzero(cfg_a, strlen(cfg_a));
	sg_memzero(cfg_b, strlen(cfg_b));
	free(cfg_a);
	free(cfg_b);
	wg_device_free(a);
	wg_device_free(b);
	return 0;
}
