/* Unit tests for the UAPI engine (src/net/uapi.c) and the address syntax it uses
 * (src/net/addr.c), on a real wg_device.
 *
 * Expected replies and errno values are wireguard-go's (device/uapi.go, ipc/uapi_unix.go):
 * EPROTO for a line without '=', EINVAL for a bad key or value, EADDRINUSE for a port or fwmark
 * the socket refuses, EIO for a line of 64 KiB (bufio.Scanner); EMSGSIZE for an over-long
 * request is ours. Also: line-by-line application (earlier lines stay applied after an error),
 * throw-away peers, chunked input, several operations per connection, the config lock, the
 * last_handshake/tx/rx fields after a real handshake between two devices, and that no log line
 * ever carries a key.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "test_util.h"
#include "config/strbuf.h"

#include <secureguard/sg_errors.h>

#include "common/log.h"
#include "crypto/crypto.h"
#include "net/addr.h"
#include "net/ctlsock.h"
#include "net/uapi.h"
#include "wg/wg.h"

#define REALTIME_BASE (1700000000ull * 1000000000ull + 123456789ull)

/* ---- fixtures ----------------------------------------------------------------------------- */

struct fake_host {
	uint16_t port;
	uint32_t mark;
	int port_err, mark_err; /* what the next call returns */
	unsigned port_calls;
	uint64_t now;
};

struct fake_io {
	unsigned sent;
	struct wg_device *peer_dev; /* if set, datagrams are queued for it */
	struct wg_endpoint self;
};

/* Datagrams between two devices wait here: an upcall must not call back into a device. */
struct flight {
	struct wg_device *to;
	struct wg_endpoint from;
	size_t len;
	uint8_t buf[256];
};
static struct flight flights[16];
static size_t nflights;

static struct fake_host host_state;
static struct uapi_host host;
static struct fake_io io_state;
static struct wg_device *dev;

static char log_lines[64][SG_LOG_LINE_MAX + 1];
static unsigned nlog;

static void log_sink(void *ctx, enum sg_log_level level, const char *line)
{
	(void)ctx;
	(void)level;
	snprintf(log_lines[nlog % 64], sizeof(log_lines[0]), "%s", line);
	nlog++;
}

static int h_set_port(void *ctx, uint16_t port)
{
	struct fake_host *h = ctx;
	h->port_calls++;
	if (h->port_err)
		return h->port_err;
	h->port = port ? port : 40000; /* "any free port" */
	return 0;
}
static uint16_t h_port(void *ctx)
{
	return ((struct fake_host *)ctx)->port;
}
static int h_set_mark(void *ctx, uint32_t mark)
{
	struct fake_host *h = ctx;
	if (h->mark_err)
		return h->mark_err;
	h->mark = mark;
	return 0;
}
static uint32_t h_mark(void *ctx)
{
	return ((struct fake_host *)ctx)->mark;
}
static uint64_t h_now(void *ctx)
{
	return ((struct fake_host *)ctx)->now;
}
static uint32_t h_zone_index(void *ctx, const char *zone)
{
	return strcmp(zone, "eth7") == 0 ? 7 : 0;
}
static bool h_zone_name(void *ctx, uint32_t index, char *name)
{
	if (index != 7)
		return false;
	strcpy(name, "eth7");
	return true;
}

static void io_send(void *ctx, struct wg_peer *peer, const struct wg_endpoint *to,
		    const uint8_t *buf, size_t len, uint8_t ttl)
{
	struct fake_io *io = ctx;
	io->sent++;
	if (io->peer_dev) {
		assert_true(nflights < SG_ARRAY_LEN(flights));
		assert_true(len <= sizeof(flights[0].buf));
		struct flight *f = &flights[nflights++];
		f->to = io->peer_dev;
		f->from = io->self;
		f->len = len;
		memcpy(f->buf, buf, len);
	}
}

static void deliver_flights(uint64_t now)
{
	for (size_t i = 0; i < nflights; i++) {
		struct flight f = flights[i];
		wg_device_receive(f.to, now, &f.from, f.buf, f.len);
	}
	nflights = 0;
}
static void io_deliver(void *ctx, struct wg_peer *peer, const uint8_t *pkt, size_t len)
{
}
static uint64_t io_realtime(void *ctx)
{
	return REALTIME_BASE;
}

static int setup(void **state)
{
	(void)state;
	memset(&host_state, 0, sizeof(host_state));
	host_state.now = 1000000000ull;
	memset(&host, 0, sizeof(host));
	host.ctx = &host_state;
	host.set_listen_port = h_set_port;
	host.listen_port = h_port;
	host.set_fwmark = h_set_mark;
	host.fwmark = h_mark;
	host.now = h_now;
	host.zone_index = h_zone_index;
	host.zone_name = h_zone_name;
	memset(&io_state, 0, sizeof(io_state));
	struct wg_io io = {&io_state, io_send, io_deliver, io_realtime, NULL, NULL};
	dev = wg_device_new(&io);
	nlog = 0;
	sg_log_set_sink(log_sink, NULL);
	sg_log_set_level(SG_LOG_DEBUG);
	return dev ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	wg_device_free(dev);
	dev = NULL;
	sg_log_set_sink(NULL, NULL);
	return 0;
}

/* ---- helpers ------------------------------------------------------------------------------ */

struct reply {
	char text[1 << 16];
	size_t len;
	bool closed;
};

/* Runs one connection: feeds `req` in chunks of `chunk` bytes (0 = all at once), writing out
 * the engine's output as it comes, then signals EOF if `eof`. */
/* Everything the connection has to say now (a get comes a piece at a time); the number of
 * bytes. */
static size_t drain_reply(struct uapi_conn *c, struct reply *r)
{
	size_t olen, total = 0;
	const uint8_t *out;
	while ((out = uapi_conn_output(c, &olen)) != NULL && olen) {
		assert_true(r->len + olen < sizeof(r->text));
		memcpy(r->text + r->len, out, olen);
		r->len += olen;
		total += olen;
		uapi_conn_output_consumed(c, olen);
	}
	return total;
}

static void run_conn(struct wg_device *d, const char *req, size_t len, size_t chunk, bool eof,
		     struct reply *r)
{
	struct uapi_conn *c = uapi_conn_new(d, &host);
	assert_non_null(c);
	memset(r, 0, sizeof(*r));
	size_t pos = 0;
	while (pos < len && !uapi_conn_want_close(c)) {
		size_t n = chunk && len - pos > chunk ? chunk : len - pos;
		size_t used = uapi_conn_input(c, (const uint8_t *)req + pos, n);
		assert_true(used <= n);
		pos += used;
		size_t olen = drain_reply(c, r);
		/* The engine consumes input until an answer is complete, never stalls. */
		assert_true(used > 0 || olen > 0 || uapi_conn_want_close(c));
	}
	if (eof)
		uapi_conn_eof(c);
	drain_reply(c, r);
	r->text[r->len] = '\0';
	r->closed = uapi_conn_want_close(c);
	uapi_conn_free(c);
}

/* set=1 + body + blank line; returns the errno of the answer. */
static int do_set(const char *body)
{
	static struct reply r;
	char *req = malloc(strlen(body) + 16);
	assert_non_null(req);
	sprintf(req, "set=1\n%s\n\n", body);
	run_conn(dev, req, strlen(req), 0, false, &r);
	free(req);
	int err = 1;
	assert_int_equal(sscanf(r.text, "errno=%d\n\n", &err), 1);
	/* Exactly one answer, nothing else. */
	char want[32];
	snprintf(want, sizeof(want), "errno=%d\n\n", err);
	assert_string_equal(r.text, want);
	return err;
}

static const char *do_get(void)
{
	static struct reply r;
	run_conn(dev, "get=1\n\n", 7, 0, false, &r);
	return r.text;
}

static void hexkey(char out[65], uint8_t fill)
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", (uint8_t)(fill + i));
}

/* ---- get / set of every key --------------------------------------------------------------- */

static void test_get_empty(void **state)
{
	(void)state;
	assert_string_equal(do_get(), "errno=0\n\n");
	host_state.port = 51820;
	host_state.mark = 0;
	assert_string_equal(do_get(), "listen_port=51820\nerrno=0\n\n");
}

static void test_set_every_key(void **state)
{
	(void)state;
	char sk[65], pk1[65], pk2[65], psk[65], req[4096];
	hexkey(sk, 0x01);
	hexkey(pk1, 0x40);
	hexkey(pk2, 0x80);
	hexkey(psk, 0xc0);
	snprintf(req, sizeof(req),
		 "private_key=%s\nlisten_port=51820\nfwmark=4660\nreplace_peers=true\n"
		 "public_key=%s\nprotocol_version=1\npreshared_key=%s\nendpoint=192.0.2.1:51820\n"
		 "persistent_keepalive_interval=25\nreplace_allowed_ips=true\n"
		 "allowed_ip=10.9.0.2/32\nallowed_ip=fd00::2/128\n"
		 "public_key=%s\nendpoint=[fe80::1%%eth7]:1\nallowed_ip=::ffff:10.1.2.3/128\n",
		 sk, pk1, psk, pk2);
	assert_int_equal(do_set(req), 0);
	assert_int_equal(wg_device_peer_count(dev), 2);

	/* The private key is stored clamped (RFC 7748 section 5), as wireguard-go does. */
	char clamped[65], zero[65];
	memcpy(clamped, sk, 65);
	memcpy(clamped, "00", 2);      /* 0x01 & 248 */
	memcpy(clamped + 62, "60", 2); /* (0x20 & 127) | 64 */
	memset(zero, '0', 64);
	zero[64] = '\0';
	/* Turning the keepalive on sent a handshake initiation to the first peer. */
	struct wg_peer_stats st;
	wg_peer_get_stats(wg_device_first_peer(dev), &st);
	assert_int_equal(st.tx_bytes, 148);
	char want[4096];
	snprintf(
	    want, sizeof(want),
	    "private_key=%s\nlisten_port=51820\nfwmark=4660\n"
	    "public_key=%s\npreshared_key=%s\nprotocol_version=1\nendpoint=192.0.2.1:51820\n"
	    "last_handshake_time_sec=0\nlast_handshake_time_nsec=0\ntx_bytes=148\nrx_bytes=0\n"
	    "persistent_keepalive_interval=25\nallowed_ip=10.9.0.2/32\nallowed_ip=fd00::2/128\n"
	    "public_key=%s\npreshared_key=%s\n"
	    "protocol_version=1\nendpoint=[fe80::1%%eth7]:1\nlast_handshake_time_sec=0\n"
	    "last_handshake_time_nsec=0\ntx_bytes=0\nrx_bytes=0\n"
	    "persistent_keepalive_interval=0\nallowed_ip=::ffff:10.1.2.3/128\nerrno=0\n\n",
	    clamped, pk1, psk, pk2, zero);
	assert_string_equal(do_get(), want);
	assert_int_equal(host_state.port, 51820);
	assert_int_equal(host_state.mark, 4660);
	assert_true(io_state.sent >= 1);

	/* private_key=0 removes the key; replace_peers removes the peers. */
	assert_int_equal(do_set("private_key=0000000000000000000000000000000000000000000000000000"
				"000000000000\nreplace_peers=true\nfwmark=0"),
			 0);
	assert_string_equal(do_get(), "listen_port=51820\nerrno=0\n\n");
}

static void hexbytes(char *out, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* SecureGuard's FIPS keys in the UAPI (docs/PROTOCOL.md, "UAPI"). */
static void test_fips_keys(void **state)
{
	(void)state;
	uint8_t fpriv[48], fpub[49], ppriv[48], ppub[49], id[32];
	char fsk[97], ppk[99], idhex[65], req[2048], want[4096];
	bool strict = false;

	host.fips_strict = &strict;
	assert_true(sg_p384_generate(fpriv, fpub));
	assert_true(sg_p384_generate(ppriv, ppub));
	hexbytes(fsk, fpriv, 48);
	hexbytes(ppk, ppub, 49);
	assert_true(sg_fips_peer_id(id, ppub));
	hexbytes(idhex, id, 32);
	/* A FIPS-only interface with a FIPS-only peer known by its id. */
	snprintf(req, sizeof(req),
		 "fips_private_key=%s\ncrypto_mode=fips\npublic_key=%s\nfips_public_key=%s\n"
		 "crypto_mode=auto\nallowed_ip=10.0.0.2/32\n",
		 fsk, idhex, ppk);
	assert_int_equal(do_set(req), 0);
	struct wg_peer *p = wg_device_first_peer(dev);
	assert_non_null(p);
	assert_true(wg_peer_is_fips_only(p));
	assert_int_equal(wg_device_get_crypto_mode(dev), WG_CRYPTO_FIPS);
	snprintf(want, sizeof(want),
		 "fips_private_key=%s\ncrypto_mode=fips\npublic_key=%s\n"
		 "preshared_key=0000000000000000000000000000000000000000000000000000000000000000\n"
		 "protocol_version=1\nlast_handshake_time_sec=0\nlast_handshake_time_nsec=0\n"
		 "tx_bytes=0\nrx_bytes=0\npersistent_keepalive_interval=0\nfips_public_key=%s\n"
		 "crypto_mode=auto\ncrypto_session=none\nallowed_ip=10.0.0.2/32\nerrno=0\n\n",
		 fsk, idhex, ppk);
	assert_string_equal(do_get(), want);
	/* Errors: bad hex, a point off the curve, a scalar out of range, an unknown mode, the
	 * same FIPS key on a second peer, FipsStrict without a FIPS provider. */
	char bad[128];
	memset(bad, '0', 98);
	memcpy(bad, "02", 2);
	bad[97] = '1';
	bad[98] = '\0';
	snprintf(req, sizeof(req), "public_key=%s\nfips_public_key=%s\n", idhex, bad);
	assert_int_equal(do_set(req), -EINVAL);
	memset(bad, 'f', 96);
	bad[96] = '\0';
	snprintf(req, sizeof(req), "fips_private_key=%s\n", bad);
	assert_int_equal(do_set(req), -EINVAL);
	assert_int_equal(do_set("fips_private_key=12\n"), -EINVAL);
	assert_int_equal(do_set("crypto_mode=fast\n"), -EINVAL);
	assert_int_equal(do_set("crypto_mode=inherit\n"), -EINVAL);
	char other[65];
	hexkey(other, 0x33);
	snprintf(req, sizeof(req), "public_key=%s\nfips_public_key=%s\n", other, ppk);
	assert_int_equal(do_set(req), -EEXIST);
	if (!sg_crypto_fips_provider_active()) {
		assert_int_equal(do_set("fips_strict=true\n"), -EPERM);
		assert_false(strict);
	}
	assert_int_equal(do_set("fips_strict=false\n"), 0);
	/* The private key never reaches a log line. */
	for (unsigned i = 0; i < nlog && i < 64; i++)
		assert_null(strstr(log_lines[i], fsk));
	/* Removing: all-zero keys. */
	memset(bad, '0', 96);
	bad[96] = '\0';
	snprintf(req, sizeof(req), "fips_private_key=%s\ncrypto_mode=auto\n", bad);
	assert_int_equal(do_set(req), 0);
	uint8_t k[48];
	assert_false(wg_device_get_fips_private_key(dev, k));
	host.fips_strict = NULL;
	assert_int_equal(do_set("fips_strict=true\n"), -EINVAL);
}

static void test_endpoint_forms(void **state)
{
	(void)state;
	char pk[65], req[512];
	hexkey(pk, 0x40);
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"1.2.3.4:0", "1.2.3.4:0"},
	    {"1.2.3.4:00080", "1.2.3.4:80"},
	    {"[2001:DB8:0:0:1:0:0:1]:65535", "[2001:db8::1:0:0:1]:65535"},
	    {"[::ffff:192.0.2.1]:5", "[::ffff:192.0.2.1]:5"},
	    {"[fe80::1%3]:7", "[fe80::1%3]:7"},
	    {"[::]:1", "[::]:1"},
	};
	for (size_t i = 0; i < SG_ARRAY_LEN(cases); i++) {
		snprintf(req, sizeof(req), "public_key=%s\nendpoint=%s", pk, cases[i].in);
		assert_int_equal(do_set(req), 0);
		char want[128];
		snprintf(want, sizeof(want), "\nendpoint=%s\n", cases[i].out);
		if (!strstr(do_get(), want))
			fail_msg("endpoint %s: got %s", cases[i].in, do_get());
	}
}

/* ---- errno of bad lines ------------------------------------------------------------------- */

static void test_errno_values(void **state)
{
	(void)state;
	char pk[65], req[512];
	hexkey(pk, 0x40);
	static const struct {
		const char *device; /* device section line, or NULL */
		const char *peer;   /* peer section line, or NULL */
		int err;
	} cases[] = {
	    {"listen_port", NULL, -EPROTO},
	    {"no equals sign at all", NULL, -EPROTO},
	    {NULL, "endpoint", -EPROTO},
	    {"bogus=1", NULL, -EINVAL},
	    {"=1", NULL, -EINVAL},
	    {"Listen_port=1", NULL, -EINVAL},
	    {"protocol_version=1", NULL, -EINVAL}, /* a peer key in the device section */
	    {NULL, "listen_port=1", -EINVAL},	   /* a device key in a peer section */
	    {NULL, "bogus=1", -EINVAL},
	    {"private_key=00", NULL, -EINVAL},
	    {"private_key=zz01020304050607080910111213141516171819202122232425262728293031", NULL,
	     -EINVAL},
	    {"private_key=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f00", NULL,
	     -EINVAL},
	    {"listen_port=65536", NULL, -EINVAL},
	    {"listen_port=", NULL, -EINVAL},
	    {"listen_port=-1", NULL, -EINVAL},
	    {"listen_port=+1", NULL, -EINVAL},
	    {"listen_port= 1", NULL, -EINVAL},
	    {"listen_port=0x10", NULL, -EINVAL},
	    {"fwmark=4294967296", NULL, -EINVAL},
	    {"fwmark=0x1", NULL, -EINVAL},
	    {"replace_peers=false", NULL, -EINVAL},
	    {"replace_peers=TRUE", NULL, -EINVAL},
	    {NULL, "update_only=yes", -EINVAL},
	    {NULL, "remove=1", -EINVAL},
	    {NULL, "replace_allowed_ips=false", -EINVAL},
	    {NULL, "protocol_version=2", -EINVAL},
	    {NULL, "protocol_version=", -EINVAL},
	    {NULL, "preshared_key=abc", -EINVAL},
	    {NULL, "persistent_keepalive_interval=65536", -EINVAL},
	    {NULL, "persistent_keepalive_interval=-1", -EINVAL},
	    {NULL, "endpoint=1.2.3.4", -EINVAL},
	    {NULL, "endpoint=1.2.3.4:", -EINVAL},
	    {NULL, "endpoint=:51820", -EINVAL},
	    {NULL, "endpoint=1.2.3.4:65536", -EINVAL},
	    {NULL, "endpoint=1.2.3.04:1", -EINVAL},
	    {NULL, "endpoint=1.2.3:1", -EINVAL},
	    {NULL, "endpoint=256.2.3.4:1", -EINVAL},
	    {NULL, "endpoint=[1.2.3.4]:1", -EINVAL},
	    {NULL, "endpoint=::1:51820", -EINVAL},
	    {NULL, "endpoint=[::1:51820", -EINVAL},
	    {NULL, "endpoint=[fe80::1%]:1", -EINVAL},
	    {NULL, "endpoint=1.2.3.4%eth0:1", -EINVAL},
	    {NULL, "endpoint=example.com:51820", -EINVAL},
	    {NULL, "allowed_ip=10.0.0.0", -EINVAL},
	    {NULL, "allowed_ip=10.0.0.0/33", -EINVAL},
	    {NULL, "allowed_ip=10.0.0.0/08", -EINVAL},
	    {NULL, "allowed_ip=10.0.0.0/+8", -EINVAL},
	    {NULL, "allowed_ip=10.0.0.0/", -EINVAL},
	    {NULL, "allowed_ip=::/129", -EINVAL},
	    {NULL, "allowed_ip=fe80::1%eth0/64", -EINVAL},
	    {NULL, "allowed_ip=-", -EINVAL},
	    {NULL, "allowed_ip=--10.0.0.0/8", -EINVAL},
	    {NULL, "allowed_ip=10.0.0.0/8 ", -EINVAL},
	};
	for (size_t i = 0; i < SG_ARRAY_LEN(cases); i++) {
		if (cases[i].device)
			snprintf(req, sizeof(req), "%s", cases[i].device);
		else
			snprintf(req, sizeof(req), "public_key=%s\n%s", pk, cases[i].peer);
		int err = do_set(req);
		if (err != cases[i].err)
			fail_msg("case %zu (%s): errno %d, want %d", i,
				 cases[i].device ? cases[i].device : cases[i].peer, err,
				 cases[i].err);
	}
	/* The public_key line itself. */
	assert_int_equal(do_set("public_key=1234"), -EINVAL);
	assert_int_equal(do_set("public_key="), -EINVAL);
	/* Values the socket refuses: wireguard-go answers EADDRINUSE for both. */
	host_state.port_err = -EADDRINUSE;
	assert_int_equal(do_set("listen_port=80"), -EADDRINUSE);
	host_state.port_err = -EACCES;
	assert_int_equal(do_set("listen_port=80"), -EADDRINUSE);
	host_state.mark_err = -EPERM;
	assert_int_equal(do_set("fwmark=1"), -EADDRINUSE);
	/* Error messages name the line. */
	struct reply r;
	run_conn(dev, "set=1\nreplace_peers=true\nbogus=1\n\n", 35, 0, false, &r);
	assert_string_equal(r.text, "errno=-22\n\n");
}

/* ---- application semantics ---------------------------------------------------------------- */

static void test_line_by_line(void **state)
{
	(void)state;
	char sk[65], pk[65], req[512];
	hexkey(sk, 0x01);
	hexkey(pk, 0x40);
	/* Lines before the bad one stay applied; the rest is ignored (no rollback). */
	snprintf(req, sizeof(req),
		 "listen_port=1000\nprivate_key=%s\npublic_key=%s\nallowed_ip=10.0.0.0/8\n"
		 "allowed_ip=10.0.0.0/99\nallowed_ip=10.1.0.0/16\n",
		 sk, pk);
	assert_int_equal(do_set(req), -EINVAL);
	assert_int_equal(host_state.port, 1000);
	const char *g = do_get();
	assert_non_null(strstr(g, "private_key="));
	assert_non_null(strstr(g, "allowed_ip=10.0.0.0/8\n"));
	assert_null(strstr(g, "10.1.0.0"));
	assert_int_equal(wg_device_peer_count(dev), 1);

	/* The connection answers once and then ignores the rest until the client closes. */
	struct reply r;
	const char *two = "set=1\nbogus=1\nlisten_port=2000\n\nget=1\n\n";
	run_conn(dev, two, strlen(two), 0, true, &r);
	assert_string_equal(r.text, "errno=-22\n\n");
	assert_int_equal(host_state.port, 1000);
}

static void test_own_key_is_dummy(void **state)
{
	(void)state;
	char sk[65], req[512], pub_hex[65];
	uint8_t priv[32], pub[32];
	hexkey(sk, 0x01);
	test_unhex(priv, sk);
	assert_true(sg_x25519_public(pub, priv));
	for (int i = 0; i < 32; i++)
		snprintf(pub_hex + 2 * i, 3, "%02x", pub[i]);
	snprintf(req, sizeof(req),
		 "private_key=%s\npublic_key=%s\nendpoint=1.2.3.4:5\nallowed_ip=10.0.0.0/8\n"
		 "preshared_key=%s\npersistent_keepalive_interval=5\nremove=true\n"
		 "allowed_ip=10.0.0.0/8",
		 sk, pub_hex, sk);
	assert_int_equal(do_set(req), 0);
	assert_int_equal(wg_device_peer_count(dev), 0);
	/* Lines of a throw-away peer are still checked. */
	snprintf(req, sizeof(req), "public_key=%s\nendpoint=nonsense", pub_hex);
	assert_int_equal(do_set(req), -EINVAL);
	/* Without a private key nothing is "ours". */
	assert_int_equal(do_set("private_key=0000000000000000000000000000000000000000000000000000"
				"000000000000"),
			 0);
	/* A new private key removes a peer with the matching public key. */
	char pk[65];
	hexkey(pk, 0x40);
	snprintf(req, sizeof(req), "public_key=%s\npublic_key=%s", pk, pub_hex);
	assert_int_equal(do_set(req), 0);
	assert_int_equal(wg_device_peer_count(dev), 2);
	snprintf(req, sizeof(req), "private_key=%s", sk);
	assert_int_equal(do_set(req), 0);
	assert_int_equal(wg_device_peer_count(dev), 1);
}

static void test_update_only_and_remove(void **state)
{
	(void)state;
	char pk[65], req[512];
	hexkey(pk, 0x40);
	/* update_only on an unknown peer: nothing is created, later lines go nowhere. */
	snprintf(req, sizeof(req), "public_key=%s\nupdate_only=true\nallowed_ip=10.0.0.0/8", pk);
	assert_int_equal(do_set(req), 0);
	assert_int_equal(wg_device_peer_count(dev), 0);
	/* On an existing peer it updates. */
	snprintf(req, sizeof(req), "public_key=%s\nallowed_ip=10.0.0.0/8", pk);
	assert_int_equal(do_set(req), 0);
	snprintf(req, sizeof(req), "public_key=%s\nupdate_only=true\nallowed_ip=10.1.0.0/16", pk);
	assert_int_equal(do_set(req), 0);
	assert_non_null(strstr(do_get(), "allowed_ip=10.0.0.0/8\nallowed_ip=10.1.0.0/16\n"));
	/* allowed_ip=-prefix removes one; an absent one is no error. */
	snprintf(req, sizeof(req), "public_key=%s\nallowed_ip=-10.0.0.0/8\nallowed_ip=-10.9.0.0/16",
		 pk);
	assert_int_equal(do_set(req), 0);
	assert_null(strstr(do_get(), "10.0.0.0/8"));
	/* replace_allowed_ips clears them; host bits are masked by the core. */
	snprintf(req, sizeof(req),
		 "public_key=%s\nreplace_allowed_ips=true\nallowed_ip=10.2.3.4/16", pk);
	assert_int_equal(do_set(req), 0);
	assert_non_null(strstr(do_get(), "\nallowed_ip=10.2.0.0/16\nerrno=0\n\n"));
	/* remove=true drops it; lines after it in the section change nothing. */
	snprintf(req, sizeof(req), "public_key=%s\nremove=true\nallowed_ip=10.0.0.0/8", pk);
	assert_int_equal(do_set(req), 0);
	assert_int_equal(wg_device_peer_count(dev), 0);
}

static void test_keepalive_after_endpoint(void **state)
{
	(void)state;
	char sk[65], pk[65], req[512];
	uint8_t priv[32], pub[32];
	hexkey(sk, 0x01);
	/* A real public key, so the initiation can be built. */
	test_unhex(priv, "a8b0c7d1e2f3041526374859aabbccddeeff00112233445566778899aabbcc6f");
	assert_true(sg_x25519_public(pub, priv));
	for (int i = 0; i < 32; i++)
		snprintf(pk + 2 * i, 3, "%02x", pub[i]);
	/* Keepalive given before the endpoint: wireguard-go sends the first one when the peer's
	 * section ends, so it goes out even in this order. */
	snprintf(req, sizeof(req),
		 "private_key=%s\npublic_key=%s\npersistent_keepalive_interval=25\n"
		 "endpoint=192.0.2.9:51820",
		 sk, pk);
	unsigned before = io_state.sent;
	assert_int_equal(do_set(req), 0);
	assert_true(io_state.sent > before);
	assert_non_null(strstr(do_get(), "persistent_keepalive_interval=25\n"));
}

/* ---- framing ------------------------------------------------------------------------------ */

static void test_framing(void **state)
{
	(void)state;
	struct reply r;
	/* CRLF lines (bufio.ScanLines drops the CR), the blank line may be "\r\n" too. */
	const char *crlf = "set=1\nlisten_port=7\r\nfwmark=9\r\n\r\n";
	run_conn(dev, crlf, strlen(crlf), 0, false, &r);
	assert_string_equal(r.text, "errno=0\n\n");
	assert_int_equal(host_state.port, 7);
	assert_int_equal(host_state.mark, 9);
	/* Byte by byte gives the same as all at once, and several operations share a
	 * connection. */
	const char *multi = "set=1\nlisten_port=8\n\nget=1\n\nget=1\n\n";
	run_conn(dev, multi, strlen(multi), 1, false, &r);
	assert_string_equal(r.text, "errno=0\n\nlisten_port=8\nfwmark=9\nerrno=0\n\n"
				    "listen_port=8\nfwmark=9\nerrno=0\n\n");
	assert_false(r.closed);
	/* End of input finishes a set without its blank line, as wireguard-go does; a last line
	 * without newline still counts. */
	const char *noblank = "set=1\nlisten_port=9\nfwmark=10";
	run_conn(dev, noblank, strlen(noblank), 3, true, &r);
	assert_string_equal(r.text, "errno=0\n\n");
	assert_int_equal(host_state.mark, 10);
	assert_true(r.closed);
	/* get=1 must be followed by the blank line. */
	run_conn(dev, "get=1\nx", 7, 0, false, &r);
	assert_string_equal(r.text, "errno=-22\n\n");
	/* Unknown operations hang up without an answer; so does EOF in the middle of a get. */
	run_conn(dev, "foo=1\n\n", 7, 0, false, &r);
	assert_string_equal(r.text, "");
	assert_true(r.closed);
	run_conn(dev, "set=2\n", 6, 0, false, &r);
	assert_true(r.closed && r.len == 0);
	run_conn(dev, "get=1\n", 6, 0, true, &r);
	assert_true(r.closed && r.len == 0);
	run_conn(dev, "\n", 1, 0, false, &r);
	assert_true(r.closed && r.len == 0);
}

static void test_busy_lock(void **state)
{
	(void)state;
	struct uapi_conn *c = uapi_conn_new(dev, &host);
	assert_non_null(c);
	assert_false(uapi_conn_busy(c));
	const char *part = "set=1\nlisten_port=3\n";
	assert_int_equal(uapi_conn_input(c, (const uint8_t *)part, strlen(part)), strlen(part));
	assert_true(uapi_conn_busy(c));
	size_t olen;
	assert_null(uapi_conn_output(c, &olen));
	assert_int_equal(olen, 0);
	assert_int_equal(uapi_conn_input(c, (const uint8_t *)"\n", 1), 1);
	assert_false(uapi_conn_busy(c));
	assert_non_null(uapi_conn_output(c, &olen));
	assert_int_equal(olen, 9);
	uapi_conn_output_consumed(c, olen);
	uapi_conn_free(c);
}

static void test_limits(void **state)
{
	(void)state;
	struct reply r;
	size_t big = 70000;
	char *req = malloc(big + 64);
	assert_non_null(req);

	/* A line of 64 KiB or more: bufio.Scanner's ErrTooLong, EIO. Earlier lines applied. */
	strcpy(req, "set=1\nlisten_port=11\nlisten_port=");
	size_t pos = strlen(req);
	memset(req + pos, '1', big - pos);
	memcpy(req + big, "\n\n", 2);
	run_conn(dev, req, big + 2, 4096, true, &r);
	assert_string_equal(r.text, "errno=-5\n\n");
	assert_int_equal(host_state.port, 11);
	/* Just under: too long for us (UAPI_LINE_MAX), an invalid value like any absurd one. */
	pos = strlen("set=1\nlisten_port=");
	memset(req + pos, '0', 65000);
	memcpy(req + pos + 65000, "1\n\n", 3);
	run_conn(dev, req, pos + 65003, 999, false, &r);
	assert_string_equal(r.text, "errno=-22\n\n");
	/* ... and without '=' it is a protocol error. */
	memset(req + 6, 'x', 5000);
	memcpy(req + 5006, "\n\n", 2);
	run_conn(dev, req, 5008, 0, false, &r);
	assert_string_equal(r.text, "errno=-71\n\n");
	/* A long key with '=' far into the line. */
	memset(req + 6, 'k', 5000);
	memcpy(req + 5006, "=1\n\n", 4);
	run_conn(dev, req, 5010, 0, false, &r);
	assert_string_equal(r.text, "errno=-22\n\n");
	free(req);

	/* A request over the bound (UAPI_REQUEST_MAX, 1 GiB; here the host's lower one): EMSGSIZE,
	 * lines up to there applied. */
	char pk[65];
	hexkey(pk, 0x40);
	const char *line = "protocol_version=1\n";
	host.request_max = 1u << 20;
	size_t n_lines = host.request_max / strlen(line) + 10;
	size_t total = 6 + 76 + n_lines * strlen(line) + 1;
	req = malloc(total + 1);
	assert_non_null(req);
	pos = (size_t)sprintf(req, "set=1\npublic_key=%s\n", pk);
	for (size_t i = 0; i < n_lines; i++) {
		memcpy(req + pos, line, strlen(line));
		pos += strlen(line);
	}
	req[pos++] = '\n';
	run_conn(dev, req, pos, 65536, false, &r);
	host.request_max = 0;
	assert_string_equal(r.text, "errno=-90\n\n");
	assert_int_equal(wg_device_peer_count(dev), 1);
	free(req);
}

/* A get of many peers is written a piece at a time as the client reads: no piece much over
 * UAPI_GET_CHUNK, every peer once and in order, the connection busy (holding the configuration
 * lock) until the errno line has been written, and what was pipelined after it answered then. */
static void test_get_streams(void **state)
{
	(void)state;
	enum { PEERS = 3000 };
	struct sg_strbuf req = {0};
	sg_strbuf_printf(&req, "set=1\n");
	for (unsigned i = 0; i < PEERS; i++) {
		uint8_t k[32];
		memset(k, 0, sizeof(k));
		k[0] = 0x80;
		k[30] = (uint8_t)(i >> 8);
		k[31] = (uint8_t)i;
		sg_strbuf_printf(&req, "public_key=");
		for (int j = 0; j < 32; j++)
			sg_strbuf_printf(&req, "%02x", k[j]);
		sg_strbuf_printf(&req, "\nallowed_ip=10.1.%u.%u/32\n", i >> 8, i & 255);
	}
	sg_strbuf_printf(&req, "\n");
	assert_false(req.oom);
	struct reply *r = calloc(1, sizeof(*r));
	assert_non_null(r);
	run_conn(dev, req.p, req.len, 0, false, r);
	assert_string_equal(r->text, "errno=0\n\n");
	sg_strbuf_free(&req);

	struct uapi_conn *c = uapi_conn_new(dev, &host);
	assert_non_null(c);
	const char *ops = "get=1\n\nget=1\n\n";
	size_t used = uapi_conn_input(c, (const uint8_t *)ops, strlen(ops));
	assert_int_equal(used, 7); /* the second get waits until the first is written */
	size_t pieces = 0, total = 0, olen, peers = 0;
	const uint8_t *out;
	char *all = malloc(PEERS * 400);
	assert_non_null(all);
	while ((out = uapi_conn_output(c, &olen)) != NULL && olen) {
		assert_true(uapi_conn_busy(c) || memmem(out, olen, "errno=0\n\n", 9));
		assert_true(olen < UAPI_GET_CHUNK + 1024);
		assert_true(total + olen < PEERS * 400);
		memcpy(all + total, out, olen);
		total += olen;
		pieces++;
		uapi_conn_output_consumed(c, olen);
	}
	assert_false(uapi_conn_busy(c));
	assert_true(pieces > 2);
	all[total] = '\0';
	assert_int_equal(strcmp(all + total - 9, "errno=0\n\n"), 0);
	for (char *p = all; (p = strstr(p, "public_key=")) != NULL; p++) {
		char want[80];
		snprintf(want, sizeof(want), "public_key=80%058x%04zx", 0u, peers);
		assert_memory_equal(p, want, strlen(want));
		peers++;
	}
	assert_int_equal(peers, PEERS);
	/* The pipelined second get is answered now. */
	used = uapi_conn_input(c, (const uint8_t *)ops + 7, strlen(ops) - 7);
	assert_int_equal(used, 7);
	assert_non_null(uapi_conn_output(c, &olen));
	free(all);
	free(r);
	uapi_conn_free(c);
}

/* ---- statistics after a real handshake ---------------------------------------------------- */

static void test_handshake_stats(void **state)
{
	(void)state;
	struct fake_io io_b;
	uint64_t now = host_state.now;
	memset(&io_b, 0, sizeof(io_b));
	struct wg_io iob = {&io_b, io_send, io_deliver, io_realtime, NULL, NULL};
	struct wg_device *b = wg_device_new(&iob);
	assert_non_null(b);

	uint8_t ka[32], kb[32], pa[32], pb[32];
	assert_true(sg_x25519_generate(ka, pa));
	assert_true(sg_x25519_generate(kb, pb));
	assert_int_equal(wg_device_set_private_key(b, kb), 0);
	struct wg_peer *pb_a;
	assert_int_equal(wg_device_add_peer(b, pa, &pb_a), 0);
	assert_int_equal(wg_peer_add_allowed_ip(pb_a, AF_INET, (const uint8_t[4]){10, 0, 0, 1}, 32),
			 0);
	/* a is configured through the UAPI, b directly; their datagrams go to each other. */
	io_state.peer_dev = b;
	io_b.peer_dev = dev;
	nflights = 0;
	inet_pton(AF_INET, "192.0.2.1", &io_state.self.addr.in4.sin_addr);
	io_state.self.addr.in4.sin_family = AF_INET;
	io_state.self.addr.in4.sin_port = htons(1111);
	inet_pton(AF_INET, "192.0.2.2", &io_b.self.addr.in4.sin_addr);
	io_b.self.addr.in4.sin_family = AF_INET;
	io_b.self.addr.in4.sin_port = htons(2222);

	char req[512], ska[65], pkb[65];
	for (int i = 0; i < 32; i++) {
		snprintf(ska + 2 * i, 3, "%02x", ka[i]);
		snprintf(pkb + 2 * i, 3, "%02x", pb[i]);
	}
	snprintf(req, sizeof(req),
		 "private_key=%s\npublic_key=%s\nendpoint=192.0.2.2:2222\nallowed_ip=10.0.0.2/32\n"
		 "persistent_keepalive_interval=1",
		 ska, pkb);
	assert_int_equal(do_set(req), 0);
	/* The keepalive started a handshake: initiation to b, response to a, then a's first data
	 * (the keepalive) confirms the session for b. */
	for (int i = 0; i < 4 && nflights > 0; i++)
		deliver_flights(now += 1000000);
	const char *g = do_get();
	assert_non_null(strstr(g, "last_handshake_time_sec=1700000000\n"
				  "last_handshake_time_nsec=123456789\n"));
	struct wg_peer_stats st;
	wg_peer_get_stats(wg_device_first_peer(dev), &st);
	char want[128];
	snprintf(want, sizeof(want), "tx_bytes=%llu\nrx_bytes=%llu\n",
		 (unsigned long long)st.tx_bytes, (unsigned long long)st.rx_bytes);
	assert_non_null(strstr(g, want));
	assert_true(st.tx_bytes >= 148 && st.rx_bytes >= 92);

	io_state.peer_dev = NULL;
	wg_device_free(b);
	sg_memzero(ka, sizeof(ka));
	sg_memzero(kb, sizeof(kb));
}

/* ---- logs carry no secrets ---------------------------------------------------------------- */

static void test_no_secret_in_logs(void **state)
{
	(void)state;
	char sk[65], pk[65], psk[65], req[1024];
	hexkey(sk, 0x11);
	hexkey(pk, 0x40);
	hexkey(psk, 0x91);
	/* A key pasted where a key name goes, a PSK with a typo, a private key in bad places. */
	snprintf(req, sizeof(req), "private_key=%s\npublic_key=%s\npreshared_key=%s\n%s=1", sk, pk,
		 psk, psk);
	assert_int_equal(do_set(req), -EINVAL);
	snprintf(req, sizeof(req), "%s", sk);
	assert_int_equal(do_set(req), -EPROTO);
	snprintf(req, sizeof(req), "private_key=%.63s", sk);
	assert_int_equal(do_set(req), -EINVAL);
	assert_true(nlog > 0);
	for (unsigned i = 0; i < nlog && i < 64; i++) {
		assert_null(strstr(log_lines[i], sk + 2));
		assert_null(strstr(log_lines[i], psk + 2));
	}
}

/* ---- address syntax ----------------------------------------------------------------------- */

static void test_addr_format(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
	} v6[] = {
	    /* RFC 5952 section 4: the longest run of zeros, the first on a tie, not a single
	     * zero group; lowercase; IPv4-mapped with a dotted tail, other embeddings not. */
	    {"::", "::"},
	    {"::1", "::1"},
	    {"1::", "1::"},
	    {"2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"},
	    {"2001:0:0:1:0:0:0:1", "2001:0:0:1::1"},
	    {"2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"},
	    {"2001:DB8::AB", "2001:db8::ab"},
	    {"::ffff:1.2.3.4", "::ffff:1.2.3.4"},
	    {"::1.2.3.4", "::102:304"},
	    {"fe80::", "fe80::"},
	    {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
	};
	char buf[ADDR_STRLEN];
	uint8_t a[16];
	int family;
	for (size_t i = 0; i < SG_ARRAY_LEN(v6); i++) {
		assert_int_equal(addr_parse_ip(v6[i].in, strlen(v6[i].in), &family, a), 0);
		assert_int_equal(family, AF_INET6);
		assert_true(addr_format(buf, sizeof(buf), AF_INET6, a) > 0);
		assert_string_equal(buf, v6[i].out);
	}
	assert_int_equal(addr_format(buf, 4, AF_INET6, a), SG_ERANGE);
	assert_int_equal(addr_format(buf, sizeof(buf), AF_UNIX, a), SG_EINVAL);
	static const char *bad[] = {
	    "",	       "1.2.3",	     "1.2.3.4.5", "01.2.3.4",	       "1.2.3.256",
	    "1..2.3",  ".1.2.3",     "1.2.3.4.",  "1:2:3:4:5:6:7:8:9", "1::2::3",
	    "12345::", "::1.2.3.04", "fe80::1%1", "1.2.3.4 "};
	for (size_t i = 0; i < SG_ARRAY_LEN(bad); i++)
		if (addr_parse_ip(bad[i], strlen(bad[i]), &family, a) == 0)
			fail_msg("accepted \"%s\"", bad[i]);
	uint64_t v;
	assert_int_equal(addr_parse_uint("18446744073709551615", 20, UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(addr_parse_uint("18446744073709551616", 20, UINT64_MAX, &v), SG_ERANGE);
	assert_int_equal(addr_parse_uint("00000000000000000000065535", 26, 65535, &v), 0);
	assert_int_equal(v, 65535);

	/* IPv4-mapped sources become AF_INET for the core. */
	struct wg_endpoint ep, un;
	char zone[ADDR_ZONE_MAX + 1];
	const char *why = "";
	assert_int_equal(addr_parse_endpoint("[::ffff:192.0.2.7]:99", 21, &ep, zone, &why), 0);
	addr_unmap_endpoint(&un, &ep);
	assert_int_equal(un.addr.sa.sa_family, AF_INET);
	char eps[ADDR_ENDPOINT_STRLEN];
	assert_true(addr_format_endpoint(eps, sizeof(eps), &un, NULL) > 0);
	assert_string_equal(eps, "192.0.2.7:99");
	assert_int_equal(addr_parse_endpoint("[2001:db8::1]:1", 15, &ep, zone, &why), 0);
	addr_unmap_endpoint(&un, &ep);
	assert_int_equal(un.addr.sa.sa_family, AF_INET6);
}

/* ---- the control socket file (net/ctlsock.c) -------------------------------------------- */

/* A socket file nobody listens on any more, as a killed daemon leaves it. */
static void make_dead_socket(const char *path)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
}

static void test_ctlsock(void **state)
{
	(void)state;
	char dir[] = "/tmp/sg_ctlsock.XXXXXX", path[128], other[128], link_dir[160];
	struct ctlsock a, b;
	struct stat st;
	const char *why = "";

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sgt0.sock", dir);
	snprintf(other, sizeof(other), "%s/other", dir);

	/* Owner-only socket, non-blocking listener; nothing waiting yet. */
	assert_int_equal(ctlsock_open(&a, dir, "sgt0", &why), 0);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_true(ctlsock_still_ours(&a));
	assert_int_equal(ctlsock_accept(&a), -EAGAIN);

	/* A live daemon's socket is never taken over. */
	assert_int_equal(ctlsock_open(&b, dir, "sgt0", &why), -EADDRINUSE);
	assert_int_equal(b.fd, -1);
	assert_true(ctlsock_still_ours(&a));

	/* Deleted, or replaced by another file: no longer ours, and close leaves the new one. */
	make_dead_socket(other);
	assert_int_equal(rename(other, path), 0);
	assert_false(ctlsock_still_ours(&a));
	ctlsock_close(&a);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));

	/* That one is stale (nobody listens): removed and replaced. */
	assert_int_equal(ctlsock_open(&a, dir, "sgt0", &why), 0);
	assert_true(ctlsock_still_ours(&a));
	assert_int_equal(unlink(path), 0);
	assert_false(ctlsock_still_ours(&a));
	ctlsock_close(&a);

	/* Only a stale socket is removed: a symlink (even to a stale socket) or a regular file
	 * at the path stays, and we refuse to start. */
	make_dead_socket(other);
	assert_int_equal(symlink(other, path), 0);
	assert_int_equal(ctlsock_open(&a, dir, "sgt0", &why), -EEXIST);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(unlink(path), 0);
	assert_int_equal(unlink(other), 0);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(ctlsock_open(&a, dir, "sgt0", &why), -EEXIST);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(unlink(path), 0);

	/* A directory others may write to (they could swap the socket), or a symlink to one, is
	 * refused. */
	assert_int_equal(chmod(dir, 0770), 0);
	assert_int_equal(ctlsock_open(&a, dir, "sgt0", &why), -EPERM);
	assert_int_equal(chmod(dir, 0700), 0);
	snprintf(link_dir, sizeof(link_dir), "%s.lnk", dir);
	assert_int_equal(symlink(dir, link_dir), 0);
	assert_int_equal(ctlsock_open(&a, link_dir, "sgt0", &why), -EPERM);
	assert_int_equal(unlink(link_dir), 0);
	assert_int_equal(lstat(path, &st), -1);
	assert_int_equal(rmdir(dir), 0);
}

static void test_log_helpers(void **state)
{
	(void)state;
	char q[32], tag[SG_LOG_KEY_TAG_SIZE];
	assert_string_equal(sg_log_quote(q, sizeof(q), "plain_value-1.2:3"), "plain_value-1.2:3");
	assert_string_equal(sg_log_quote(q, sizeof(q), "two words"), "\"two words\"");
	assert_string_equal(sg_log_quote(q, sizeof(q), "a=b \"c\"\n"), "\"a=b \\\"c\\\"\\n\"");
	assert_string_equal(sg_log_quote(q, sizeof(q), ""), "\"\"");
	assert_string_equal(sg_log_quote(q, 12, "0123456789abcdef"), "0123456...");
	/* The tag is the base64 prefix `wg` prints: 32 zero bytes are AAAA... */
	uint8_t key[32] = {0};
	assert_string_equal(sg_log_key_tag(tag, key), "AAAAAAAA\xe2\x80\xa6");
	key[0] = 0xfb;
	key[1] = 0xef;
	key[2] = 0xff;
	assert_string_equal(sg_log_key_tag(tag, key), "++//AAAA\xe2\x80\xa6");
	/* Rate limiting: a burst, then one per 1/rate seconds, with a count of the refused. */
	struct sg_log_ratelimit rl = {.rate = 2, .burst = 3};
	uint64_t sup = 99;
	for (int i = 0; i < 3; i++)
		assert_true(sg_log_ratelimit_allow(&rl, 1000, &sup));
	assert_false(sg_log_ratelimit_allow(&rl, 1000, &sup));
	assert_false(sg_log_ratelimit_allow(&rl, 1000 + 400000000ull, &sup));
	assert_true(sg_log_ratelimit_allow(&rl, 1000 + 500000000ull, &sup));
	assert_int_equal(sup, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_get_empty, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_get_streams, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_set_every_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fips_keys, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_endpoint_forms, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_errno_values, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_line_by_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_own_key_is_dummy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_update_only_and_remove, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_keepalive_after_endpoint, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_framing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_busy_lock, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_handshake_stats, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_secret_in_logs, setup, teardown),
	    cmocka_unit_test(test_addr_format),
	    cmocka_unit_test(test_log_helpers),
	    cmocka_unit_test(test_ctlsock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
