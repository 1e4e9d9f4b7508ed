/* Unit tests for the TLS-over-TCP transport (src/net/tls.c, tls_frame.c, tls_cert.c).
 *
 * A CA and certificates are made with the module's own certificate code in a mkdtemp directory;
 * listener and clients then run in this one process on 127.0.0.1 through one evloop. Covered:
 * the framing codec on split input; messages both ways in order, zero-length and 65535-byte
 * frames, a full send buffer dropping rather than queueing; receive batches (frames held in
 * place until on_rx_done); keepalives on an idle connection;
 * refusals (wrong CA, expired certificate, missing client certificate, wrong name, wrong pin,
 * plain TCP data, silent and stalled clients, a server that does not greet) each with its log
 * line, while a good client keeps being served; idle timeout; 200 concurrent clients; the
 * per-source rate limit and connection cap; a FIPS server refusing ChaCha20-only and
 * X25519-only clients; session tokens (a listener that requires them admits a client with a
 * valid one, refuses none, a forged one and a replay's older connection, and closes a connection
 * when its token expires). Waits are bounded by a generous guard that only turns a hang into a
 * failure: no assertion depends on timing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <secureguard/sg_errors.h>

#include "common/log.h"
#include "net/evloop.h"
#include "net/tls.h"
#include "net/tls_cert.h"
#include "net/tls_frame.h"
#include "test_util.h"
#include "tls_token_mint.h"

/* ---- fixture ------------------------------------------------------------------------------ */

static char dir[64];
static char path_buf[32][256];
static unsigned path_n;

/* "<dir>/<rel>", kept for the whole run. */
static const char *P(const char *rel)
{
	char *p = path_buf[path_n++ % SG_ARRAY_LEN(path_buf)];
	snprintf(p, sizeof(path_buf[0]), "%s/%s", dir, rel);
	return p;
}

#define LOG_LINES 512
static char log_lines[LOG_LINES][SG_LOG_LINE_MAX + 1];
static unsigned log_n;

static void log_sink(void *ctx, enum sg_log_level level, const char *line)
{
	(void)ctx;
	(void)level;
	if (getenv("SG_TEST_VERBOSE"))
		fprintf(stderr, "%s\n", line);
	snprintf(log_lines[log_n % LOG_LINES], sizeof(log_lines[0]), "%s", line);
	log_n++;
}

static void log_clear(void)
{
	log_n = 0;
}

/* True if a captured line has both substrings (b may be NULL). */
static bool log_has(const char *a, const char *b)
{
	for (unsigned i = 0; i < SG_MIN(log_n, (unsigned)LOG_LINES); i++)
		if (strstr(log_lines[i], a) && (!b || strstr(log_lines[i], b)))
			return true;
	return false;
}

static void issue(const char *ca, const char *name, int64_t from, int64_t to, const char *ip,
		  const char *dns)
{
	char err[512];
	const char *ips[1] = {ip}, *dnss[1] = {dns};
	struct sg_tls_cert_req req = {
	    .name = name,
	    .ips = ips,
	    .n_ips = ip ? 1 : 0,
	    .dns = dnss,
	    .n_dns = dns ? 1 : 0,
	    .not_before = from,
	    .not_after = to,
	};
	int r = sg_tls_cert_issue(P(ca), &req, dir, err, sizeof(err));
	if (r != 0)
		fail_msg("issue %s: %s", name, err);
}

static int setup(void **state)
{
	char err[512];
	int64_t now = (int64_t)time(NULL);
	(void)state;

	signal(SIGPIPE, SIG_IGN); /* as the daemon: a peer gone mid-write is an error, not death */
	snprintf(dir, sizeof(dir), "/tmp/sg-tls-test-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	struct sg_tls_cert_req ca = {
	    .name = "Test-CA", .not_before = now - 60, .not_after = now + 86400};
	if (sg_tls_cert_make_ca(P("ca"), &ca, err, sizeof(err)) != 0) {
		fprintf(stderr, "make ca: %s\n", err);
		return -1;
	}
	ca.name = "Other-CA";
	if (sg_tls_cert_make_ca(P("ca2"), &ca, err, sizeof(err)) != 0) {
		fprintf(stderr, "make ca2: %s\n", err);
		return -1;
	}
	issue("ca", "server", now - 60, now + 86400, "127.0.0.1", "localhost");
	issue("ca", "client", now - 60, now + 86400, NULL, NULL);
	issue("ca", "expired", now - 10 * 86400, now - 86400, NULL, NULL);
	issue("ca2", "rogue", now - 60, now + 86400, NULL, NULL);
	issue("ca2", "rogue-server", now - 60, now + 86400, "127.0.0.1", NULL);
	sg_log_set_sink(log_sink, NULL);
	sg_log_set_level(SG_LOG_DEBUG);
	return 0;
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int teardown(void **state)
{
	(void)state;
	sg_log_set_sink(NULL, NULL);
	return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- harness ------------------------------------------------------------------------------ */

/* Turns a hang into a failure; never part of what is asserted. Below ctest's timeout for this
 * test (tests/CMakeLists.txt: 300 s, 1200 s under an emulator), so a hang is reported with the
 * condition it waited for instead of being killed without a word. */
#define GUARD_NS (100ull * 1000000000ull * test_time_scale())
#define RUN_UNTIL(loop, cond)                                                                      \
	do {                                                                                       \
		uint64_t guard_ = evloop_now_ns() + GUARD_NS;                                      \
		while (!(cond)) {                                                                  \
			if (evloop_now_ns() > guard_)                                              \
				fail_msg("gave up waiting for: %s", #cond);                        \
			assert_true(evloop_run_once((loop), 10) >= 0);                             \
		}                                                                                  \
	} while (0)

/* Either end of one connection, or the server end of many. */
struct side {
	struct sg_tls_conn *conn; /* the last connection reported up and not down */
	int ups, downs;
	char reason[256]; /* of the last down */
	bool echo;
	bool close_on_msg; /* close the connection from inside on_message */
	uint32_t rx, rx_next;
	bool rx_bad;
	uint64_t rx_bytes;
};

/* Message `seq` of `len` bytes: the sequence number, then a pattern that depends on it. */
static void make_msg(uint8_t *buf, uint32_t seq, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seq * 7 + i);
	if (len >= 4) {
		buf[0] = (uint8_t)(seq >> 24);
		buf[1] = (uint8_t)(seq >> 16);
		buf[2] = (uint8_t)(seq >> 8);
		buf[3] = (uint8_t)seq;
	}
}

static uint8_t scratch[TLS_FRAME_MAX];

static void on_message(void *user, struct sg_tls_conn *conn, uint8_t *msg, size_t len)
{
	struct side *s = sg_tls_conn_get_user(conn) ? sg_tls_conn_get_user(conn) : user;
	make_msg(scratch, s->rx_next, len);
	if (len == 0 || memcmp(scratch, msg, len) != 0)
		s->rx_bad = true;
	s->rx_next++;
	s->rx++;
	s->rx_bytes += len;
	if (((struct side *)user)->close_on_msg) {
		sg_tls_conn_close(conn); /* freed once this callback returns */
		return;
	}
	if (((struct side *)user)->echo) {
		int r = sg_tls_conn_send(conn, msg, len);
		if (r != 0 && r != SG_EFULL)
			s->rx_bad = true;
	}
}

static void on_state(void *user, struct sg_tls_conn *conn, bool up, const char *reason)
{
	struct side *s = sg_tls_conn_get_user(conn) ? sg_tls_conn_get_user(conn) : user;
	if (up) {
		s->ups++;
		s->conn = conn;
		return;
	}
	s->downs++;
	snprintf(s->reason, sizeof(s->reason), "%s", reason);
	if (s->conn == conn)
		s->conn = NULL;
}

static struct sg_tls_callbacks cbs_for(struct side *s)
{
	struct sg_tls_callbacks cb = {.user = s, .on_message = on_message, .on_state = on_state};
	return cb;
}

static union wg_sockaddr loopback(uint16_t port)
{
	union wg_sockaddr sa;
	memset(&sa, 0, sizeof(sa));
	sa.in4.sin_family = AF_INET;
	sa.in4.sin_port = htons(port);
	sa.in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sa;
}

static struct sg_tls_ctx *server_ctx(bool require, bool fips, uint32_t hs_ms, uint32_t idle_ms,
				     uint32_t ka_ms)
{
	struct sg_tls_ctx *ctx;
	char err[512];
	struct sg_tls_config cfg = {
	    .cert_file = P("server.crt"),
	    .key_file = P("server.key"),
	    .ca_file = P("ca/ca.crt"),
	    .require_client_cert = require,
	    .fips = fips,
	    .handshake_timeout_ms = hs_ms * test_time_scale(),
	    /* Not scaled: test_idle_timeout needs an idle timeout below a third of the announced
	     * (rounded up) second; test_many_clients scales its own. */
	    .idle_timeout_ms = idle_ms,
	    .keepalive_ms = ka_ms,
	    .max_conns_per_source = 1000,
	    .max_conns = 1000,
	    .rate_per_source = 100000,
	    .burst_per_source = 1000,
	};
	if (sg_tls_ctx_new(&ctx, &cfg, SG_TLS_SERVER, err, sizeof(err)) != 0)
		fail_msg("server ctx: %s", err);
	return ctx;
}

/* A client context: `who` names the certificate (NULL: none), `ca` the CA directory. */
static struct sg_tls_ctx *client_ctx(const char *who, const char *ca, const uint8_t *pin, bool fips,
				     uint32_t ka_ms)
{
	struct sg_tls_ctx *ctx;
	char err[512], crt[64], key[64];
	snprintf(crt, sizeof(crt), "%s.crt", who ? who : "");
	snprintf(key, sizeof(key), "%s.key", who ? who : "");
	char cap[64];
	snprintf(cap, sizeof(cap), "%s/ca.crt", ca ? ca : "");
	struct sg_tls_config cfg = {
	    .cert_file = who ? P(crt) : NULL,
	    .key_file = who ? P(key) : NULL,
	    .ca_file = ca ? P(cap) : NULL,
	    .pin_sha256 = pin,
	    .fips = fips,
	    .server_name = "127.0.0.1",
	    .keepalive_ms = ka_ms,
	    /* Scaled as the server's: under qemu on a loaded machine the 200 handshakes of
	     * test_many_clients, sharing one thread, took longer than 60 s, every client timed out
	     * before reading its greeting, and the test then waited for ups that never came. */
	    .handshake_timeout_ms = 60000 * test_time_scale(),
	};
	if (sg_tls_ctx_new(&ctx, &cfg, SG_TLS_CLIENT, err, sizeof(err)) != 0)
		fail_msg("client ctx: %s", err);
	return ctx;
}

static struct sg_tls_listener *listen_on(struct evloop *loop, struct sg_tls_ctx *ctx,
					 struct side *s)
{
	struct sg_tls_listener *l;
	union wg_sockaddr sa = loopback(0);
	struct sg_tls_callbacks cb = cbs_for(s);
	char err[256];
	if (sg_tls_listener_new(&l, loop, ctx, &sa, &cb, err, sizeof(err)) != 0)
		fail_msg("listener: %s", err);
	return l;
}

static struct sg_tls_conn *connect_to(struct evloop *loop, struct sg_tls_ctx *ctx, uint16_t port,
				      const char *name, struct side *s)
{
	struct sg_tls_conn *c;
	union wg_sockaddr sa = loopback(port);
	struct sg_tls_callbacks cb = cbs_for(s);
	char err[256];
	if (sg_tls_client_new(&c, loop, ctx, &sa, name, &cb, err, sizeof(err)) != 0)
		fail_msg("client: %s", err);
	return c;
}

/* Sends message seq of len bytes, waiting (through the loop) while the send buffer is full. */
static void send_msg(struct evloop *loop, struct sg_tls_conn *c, uint32_t seq, size_t len,
		     unsigned *full)
{
	static uint8_t buf[TLS_FRAME_MAX];
	make_msg(buf, seq, len);
	for (;;) {
		int r = sg_tls_conn_send(c, buf, len);
		if (r == 0)
			return;
		assert_int_equal(r, SG_EFULL);
		(*full)++;
		assert_true(evloop_run_once(loop, 10) >= 0);
	}
}

/* One round trip on an echoing server: the good client still works. */
static void ping(struct evloop *loop, struct side *cl)
{
	unsigned full = 0;
	uint32_t want = cl->rx + 1;
	assert_non_null(cl->conn);
	send_msg(loop, cl->conn, cl->rx_next, 100, &full);
	RUN_UNTIL(loop, cl->rx >= want);
	assert_false(cl->rx_bad);
}

static int tcp_connect(uint16_t port)
{
	union wg_sockaddr sa = loopback(port);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, &sa.sa, sizeof(sa.in4)), 0);
	return fd;
}

/* ---- framing ------------------------------------------------------------------------------ */

static void test_frame_codec(void **state)
{
	static uint8_t mem[TLS_RXBUF_SIZE], stream[3 * (TLS_FRAME_MAX + 2) + TLS_GREETING_LEN];
	struct tls_rxbuf r;
	struct tls_greeting g = {.flags = TLS_GREETING_FIPS, .idle_timeout_s = 0x1234}, got;
	const char *why = NULL;
	const uint8_t *msg;
	size_t len, n = 0, avail;
	(void)state;

	/* Greeting bytes as documented. */
	tls_greeting_encode(stream, &g);
	assert_memory_equal(stream, "SG-TLS/1\x01\x00\x12\x34", TLS_GREETING_LEN);
	n = TLS_GREETING_LEN;
	/* Frames of 65535, 0, 1 and 300 bytes. */
	const size_t sizes[] = {TLS_FRAME_MAX, 0, 1, 300};
	for (size_t i = 0; i < SG_ARRAY_LEN(sizes); i++) {
		tls_frame_header(stream + n, sizes[i]);
		make_msg(stream + n + 2, (uint32_t)i, sizes[i]);
		n += 2 + sizes[i];
	}
	/* Fed in odd pieces (1 byte, then 7, then 4093, ...), everything comes out whole. */
	tls_rxbuf_init(&r, mem, sizeof(mem));
	size_t off = 0, piece = 1, frames = 0;
	bool greeted = false;
	while (off < n || tls_rxbuf_pending(&r) > 0) {
		uint8_t *p = tls_rxbuf_space(&r, &avail);
		size_t k = SG_MIN(SG_MIN(piece, avail), n - off);
		memcpy(p, stream + off, k);
		tls_rxbuf_commit(&r, k);
		off += k;
		piece = piece * 7 + 3;
		if (!greeted) {
			int ret = tls_rxbuf_take_greeting(&r, &got, &why);
			assert_true(ret >= 0);
			if (ret == 0)
				continue;
			greeted = true;
			assert_int_equal(got.flags, TLS_GREETING_FIPS);
			assert_int_equal(got.idle_timeout_s, 0x1234);
		}
		while (tls_rxbuf_take_frame(&r, &msg, &len) == 1) {
			assert_true(frames < SG_ARRAY_LEN(sizes));
			assert_int_equal(len, sizes[frames]);
			make_msg(scratch, (uint32_t)frames, len);
			assert_memory_equal(msg, scratch, len);
			frames++;
		}
		if (off == n)
			break;
	}
	assert_int_equal(frames, SG_ARRAY_LEN(sizes));
	assert_int_equal(tls_rxbuf_pending(&r), 0);

	/* A wrong service is told at its first differing byte; a prefix waits for more. */
	assert_int_equal(tls_greeting_parse((const uint8_t *)"SG-T", 4, &got, &why), 0);
	assert_int_equal(tls_greeting_parse((const uint8_t *)"HTTP/1.1 400", 12, &got, &why),
			 SG_EPARSE);
	assert_non_null(strstr(why, "greeting mismatch"));
	assert_int_equal(tls_greeting_parse((const uint8_t *)"SG-TLS/2\0\0\0\0", 12, &got, &why),
			 SG_EPARSE);
}

/* ---- certificates ------------------------------------------------------------------------- */

static X509 *read_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(x);
	return x;
}

static void test_cert_files(void **state)
{
	struct stat st;
	char err[512];
	(void)state;

	/* Keys are private, certificates readable. */
	assert_int_equal(stat(P("ca/ca.key"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(P("server.key"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(P("server.crt"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);

	X509 *ca = read_cert(P("ca/ca.crt")), *srv = read_cert(P("server.crt"));
	assert_int_equal(X509_get_version(srv), X509_VERSION_3);
	assert_int_equal(X509_check_ca(ca), 1);
	assert_int_equal(X509_check_ca(srv), 0);
	assert_int_equal(X509_check_purpose(srv, X509_PURPOSE_SSL_SERVER, 0), 1);
	assert_int_equal(X509_check_purpose(srv, X509_PURPOSE_SSL_CLIENT, 0), 1);
	assert_int_equal(X509_check_ip_asc(srv, "127.0.0.1", 0), 1);
	assert_int_equal(X509_check_host(srv, "localhost", 0, 0, NULL), 1);
	assert_int_equal(X509_check_issued(ca, srv), X509_V_OK);
	EVP_PKEY *pk = X509_get0_pubkey(srv);
	assert_int_equal(EVP_PKEY_get_base_id(pk), EVP_PKEY_EC);
	assert_int_equal(EVP_PKEY_get_bits(pk), 384);
	assert_int_equal(X509_get_signature_nid(srv), NID_ecdsa_with_SHA384);

	/* The pin is SHA-256 over the DER SubjectPublicKeyInfo. */
	uint8_t pin[SG_TLS_PIN_LEN], want[32];
	unsigned char *der = NULL;
	int dlen = i2d_PUBKEY(pk, &der);
	assert_true(dlen > 0);
	assert_int_equal(EVP_Digest(der, (size_t)dlen, want, NULL, EVP_sha256(), NULL), 1);
	OPENSSL_free(der);
	assert_int_equal(sg_tls_pin_from_cert_file(P("server.crt"), pin, err, sizeof(err)), 0);
	assert_memory_equal(pin, want, sizeof(pin));
	X509_free(ca);
	X509_free(srv);

	/* Bad input is refused with a reason, and nothing is overwritten. */
	struct sg_tls_cert_req req = {.name = "a b", .not_before = 0, .not_after = 10};
	assert_int_equal(sg_tls_cert_issue(P("ca"), &req, dir, err, sizeof(err)), SG_EINVAL);
	assert_non_null(strstr(err, "name"));
	const char *bad_ip[] = {"1.2.3.4,DNS:evil"};
	req = (struct sg_tls_cert_req){.name = "x", .ips = bad_ip, .n_ips = 1, .not_after = 10};
	assert_int_equal(sg_tls_cert_issue(P("ca"), &req, dir, err, sizeof(err)), SG_EINVAL);
	assert_non_null(strstr(err, "--ip"));
	req = (struct sg_tls_cert_req){.name = "server", .not_before = 0, .not_after = 10};
	assert_true(sg_tls_cert_issue(P("ca"), &req, dir, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "File exists"));
	assert_int_equal(sg_tls_pin_from_cert_file(P("nope.crt"), pin, err, sizeof(err)),
			 SG_ENOENT);
	assert_int_equal(sg_tls_pin_from_cert_file(P("server.key"), pin, err, sizeof(err)),
			 SG_EPARSE);

	/* Contexts check their files. */
	struct sg_tls_ctx *ctx;
	struct sg_tls_config cfg = {.cert_file = P("server.crt"), .key_file = P("client.key")};
	assert_int_equal(sg_tls_ctx_new(&ctx, &cfg, SG_TLS_SERVER, err, sizeof(err)), SG_EINVAL);
	assert_null(ctx);
	assert_non_null(strstr(err, "client.key"));
	cfg = (struct sg_tls_config){.cert_file = P("client.crt"), .key_file = P("client.key")};
	assert_int_equal(sg_tls_ctx_new(&ctx, &cfg, SG_TLS_CLIENT, err, sizeof(err)), SG_EINVAL);
	assert_non_null(strstr(err, "CA file or a pinned"));
}

/* ---- exchange ----------------------------------------------------------------------------- */

static void test_exchange_in_order(void **state)
{
	struct evloop *loop;
	struct side srv = {0}, cl = {0};
	unsigned full = 0;
	(void)state;

	assert_int_equal(evloop_new(&loop), 0);
	/* Keepalives every 30 ms on both ends, idle timeout far away. */
	struct sg_tls_ctx *sctx = server_ctx(true, false, 0, 60000, 30);
	struct sg_tls_ctx *cctx = client_ctx("client", "ca", NULL, false, 30);
	struct sg_tls_listener *l = listen_on(loop, sctx, &srv);
	struct sg_tls_conn *c = connect_to(loop, cctx, sg_tls_listener_port(l), NULL, &cl);
	assert_int_equal(sg_tls_conn_send(c, (const uint8_t *)"x", 1), SG_EAGAIN);
	RUN_UNTIL(loop, cl.ups == 1 && srv.ups == 1);
	assert_ptr_equal(cl.conn, c);
	assert_true(sg_tls_conn_is_up(c));
	assert_int_equal(sg_tls_conn_greeting_flags(c), 0);
	assert_int_equal(strncmp(sg_tls_conn_peer_str(c), "127.0.0.1:", 10), 0);
	assert_int_equal(sg_tls_conn_peer(srv.conn)->sa.sa_family, AF_INET);
	assert_true(log_has("event=tls_up", "TLSv1.3"));

	/* Both ways, sizes from 1 to 65535, in order; a full send buffer drops, and the sender
	 * here waits and sends again, as the tunnel would retransmit. */
	static const size_t sizes[] = {1, 3, 4, 100, 1420, 16383, 16384, 16385, 65535, 65534, 2};
	const uint32_t count = 300;
	uint64_t bytes = 0;
	for (uint32_t i = 0; i < count; i++) {
		size_t len = sizes[i % SG_ARRAY_LEN(sizes)];
		send_msg(loop, c, i, len, &full);
		send_msg(loop, srv.conn, i, len, &full);
		bytes += len;
		if (i % 50 == 0) /* a keepalive in the stream is not delivered */
			assert_int_equal(sg_tls_conn_send(c, NULL, 0), 0);
	}
	RUN_UNTIL(loop, srv.rx == count && cl.rx == count);
	assert_false(srv.rx_bad);
	assert_false(cl.rx_bad);
	assert_int_equal(srv.rx_bytes, bytes);
	assert_int_equal(cl.rx_bytes, bytes);
	assert_int_equal(sg_tls_conn_send(c, scratch, TLS_FRAME_MAX + 1), SG_ERANGE);

	/* A burst larger than the send buffer without running the loop: the excess is dropped
	 * and counted, never queued without bound. */
	struct sg_tls_conn_stats st0, st;
	int r = 0, sent = 0;
	sg_tls_conn_stats(c, &st0);
	static uint8_t big[TLS_FRAME_MAX];
	for (int i = 0; i < 64 && r == 0; i++) {
		make_msg(big, count + (uint32_t)sent, sizeof(big));
		r = sg_tls_conn_send(c, big, sizeof(big));
		sent += r == 0;
	}
	assert_int_equal(r, SG_EFULL);
	assert_true(sent >= 1 && sent < 64);
	sg_tls_conn_stats(c, &st);
	assert_int_equal(st.tx_dropped, st0.tx_dropped + 1);
	assert_int_equal(st.tx_msgs, st0.tx_msgs + (uint64_t)sent);
	/* The server gets exactly the ones that were taken, in order. */
	RUN_UNTIL(loop, srv.rx == count + (uint32_t)sent);
	assert_false(srv.rx_bad);

	/* Idle: keepalives flow both ways and keep the connection up. */
	struct sg_tls_conn_stats a, b;
	sg_tls_conn_stats(srv.conn, &a);
	uint64_t base_srv = a.rx_keepalives;
	RUN_UNTIL(loop, (sg_tls_conn_stats(srv.conn, &a), a.rx_keepalives >= base_srv + 3) &&
			    (sg_tls_conn_stats(c, &b), b.rx_keepalives >= 3));
	assert_true(a.tx_keepalives >= 3 && b.tx_keepalives >= 3);
	assert_int_equal(cl.downs, 0);
	assert_int_equal(srv.downs, 0);

	/* A local close ends the other side with a reason. */
	sg_tls_conn_close(c);
	RUN_UNTIL(loop, srv.downs == 1);
	assert_int_equal(cl.downs, 0); /* close does not call back */
	assert_non_null(strstr(srv.reason, "closed by peer"));

	sg_tls_listener_free(l);
	sg_tls_ctx_free(sctx);
	sg_tls_ctx_free(cctx);
	evloop_free(loop);
}

/* The daemon's batching (sg_tls_conn_queue, then sg_tls_conn_flush at the end of a loop turn):
 * many datagrams share a record, frames straddle records and reads, a lone one waits only for
 * the flush. Record counts, not times, are asserted. */
static void test_batched_records(void **state)
{
	static uint8_t buf[TLS_FRAME_MAX];
	struct evloop *loop;
	struct side srv = {0}, cl = {0};
	struct sg_tls_conn_stats st0, st, rs0, rs;
	(void)state;

	assert_int_equal(evloop_new(&loop), 0);
	struct sg_tls_ctx *sctx = server_ctx(true, false, 0, 60000, 0);
	struct sg_tls_ctx *cctx = client_ctx("client", "ca", NULL, false, 0);
	struct sg_tls_listener *l = listen_on(loop, sctx, &srv);
	struct sg_tls_conn *c = connect_to(loop, cctx, sg_tls_listener_port(l), NULL, &cl);
	RUN_UNTIL(loop, cl.ups == 1 && srv.ups == 1);

	/* A lone datagram is not written when queued, and is by the flush: one record. */
	sg_tls_conn_stats(c, &st0);
	make_msg(buf, 0, 100);
	assert_int_equal(sg_tls_conn_queue(c, buf, 100), 0);
	sg_tls_conn_stats(c, &st);
	assert_int_equal(st.tx_records, st0.tx_records);
	assert_int_equal(sg_tls_conn_flush(c), 0);
	sg_tls_conn_stats(c, &st);
	assert_int_equal(st.tx_records, st0.tx_records + 1);
	assert_int_equal(sg_tls_conn_flush(c), 0); /* nothing queued: nothing written */
	sg_tls_conn_stats(c, &st);
	assert_int_equal(st.tx_records, st0.tx_records + 1);
	RUN_UNTIL(loop, srv.rx == 1);

	/* 160 datagrams of 1380 bytes (an inner MTU's worth, as the daemon's TUN batch gives) and
	 * one flush: 221,120 bytes of frames in whole records of 16 KiB, written as they fill, not
	 * one record (and write) per datagram. What the send buffer cannot take is dropped and
	 * counted, as sg_tls_conn_send does; the rest arrives whole and in order. */
	sg_tls_conn_stats(c, &st0);
	sg_tls_conn_stats(srv.conn, &rs0);
	uint32_t seq = 1, taken = 0;
	for (int i = 0; i < 160; i++) {
		make_msg(buf, seq, 1380);
		int r = sg_tls_conn_queue(c, buf, 1380);
		assert_true(r == 0 || r == SG_EFULL);
		seq += r == 0;
		taken += r == 0;
	}
	assert_int_equal(sg_tls_conn_flush(c), 0);
	sg_tls_conn_stats(c, &st);
	assert_int_equal(st.tx_msgs - st0.tx_msgs, taken);
	assert_int_equal(st.tx_msgs - st0.tx_msgs + st.tx_dropped - st0.tx_dropped, 160);
	assert_true(taken >= 16384 / 1382); /* at least a record's worth fits */
	RUN_UNTIL(loop, srv.rx == 1 + taken);
	assert_false(srv.rx_bad);
	sg_tls_conn_stats(c, &st);
	sg_tls_conn_stats(srv.conn, &rs);
	/* Whole records, and a last partial one: at most one more record than 16 KiB pieces, and
	 * each SSL_read returned at least one record's frames. */
	uint64_t bytes = (uint64_t)taken * 1382, records = (bytes + 16383) / 16384;
	assert_true(st.tx_records - st0.tx_records <= records + 1);
	assert_true(rs.rx_records - rs0.rx_records <= st.tx_records - st0.tx_records);

	/* Largest frames among small ones, in one batch: each 65535-byte frame spans at least five
	 * records and is taken from the receive buffer in pieces as SSL_read delivers them. */
	static const size_t sizes[] = {1, TLS_FRAME_MAX, 2, 3, TLS_FRAME_MAX - 1, 1380};
	uint32_t want = srv.rx;
	for (size_t i = 0; i < SG_ARRAY_LEN(sizes); i++) {
		make_msg(buf, seq, sizes[i]);
		int r;
		while ((r = sg_tls_conn_queue(c, buf, sizes[i])) == SG_EFULL) {
			assert_int_equal(sg_tls_conn_flush(c), 0);
			assert_true(evloop_run_once(loop, 10) >= 0);
		}
		assert_int_equal(r, 0);
		seq++;
		want++;
	}
	assert_int_equal(sg_tls_conn_flush(c), 0);
	RUN_UNTIL(loop, srv.rx == want);
	assert_false(srv.rx_bad);
	sg_tls_conn_close(c);
	RUN_UNTIL(loop, srv.downs == 1);

	sg_tls_listener_free(l);
	sg_tls_ctx_free(sctx);
	sg_tls_ctx_free(cctx);
	evloop_free(loop);
}

/* ---- receive batches ---------------------------------------------------------------------- */

/* A receiver as the daemon's: it keeps pointers to the frames on_message gives and changes them
 * in place (as the core decrypts), and only at on_rx_done checks and counts them. */
#define RXB_MAX 4096
static struct {
	uint8_t *msg[RXB_MAX];
	size_t len[RXB_MAX];
	size_t held, batches, largest, frames, bytes;
	uint32_t next;
	bool bad;
	bool close_in_done; /* close the connection from on_rx_done, once */
} rxb;

static void rxb_message(void *user, struct sg_tls_conn *conn, uint8_t *msg, size_t len)
{
	(void)user;
	(void)conn;
	if (rxb.held == RXB_MAX) {
		rxb.bad = true;
		return;
	}
	for (size_t i = 0; i < len; i++)
		msg[i] ^= 0xa5; /* in place: the buffer is the receiver's until on_rx_done */
	rxb.msg[rxb.held] = msg;
	rxb.len[rxb.held++] = len;
}

static void rxb_done(void *user, struct sg_tls_conn *conn)
{
	(void)user;
	for (size_t k = 0; k < rxb.held; k++) {
		make_msg(scratch, rxb.next++, rxb.len[k]);
		for (size_t i = 0; i < rxb.len[k]; i++)
			if ((uint8_t)(rxb.msg[k][i] ^ 0xa5) != scratch[i])
				rxb.bad = true; /* overwritten before on_rx_done */
		rxb.bytes += rxb.len[k];
	}
	rxb.frames += rxb.held;
	rxb.batches += rxb.held > 0;
	rxb.largest = SG_MAX(rxb.largest, rxb.held);
	if (rxb.held == 0)
		rxb.bad = true; /* called without frames */
	rxb.held = 0;
	if (rxb.close_in_done) {
		rxb.close_in_done = false;
		sg_tls_conn_close(conn);
	}
}

/* The frames of one read stay in place until on_rx_done, whatever the receiver did to them; a
 * batch holds the frames of several records (up to the receive buffer's reuse), and every frame
 * is in exactly one batch, in order. Counts, not times, are asserted. */
static void test_rx_batches(void **state)
{
	static uint8_t buf[TLS_FRAME_MAX];
	struct evloop *loop;
	struct side srv = {0}, cl = {0};
	(void)state;

	memset(&rxb, 0, sizeof(rxb));
	assert_int_equal(evloop_new(&loop), 0);
	struct sg_tls_ctx *sctx = server_ctx(true, false, 0, 60000, 0);
	struct sg_tls_ctx *cctx = client_ctx("client", "ca", NULL, false, 0);
	struct sg_tls_listener *l;
	union wg_sockaddr sa = loopback(0);
	struct sg_tls_callbacks cb = {.user = &srv,
				      .on_message = rxb_message,
				      .on_rx_done = rxb_done,
				      .on_state = on_state};
	char err[256];
	if (sg_tls_listener_new(&l, loop, sctx, &sa, &cb, err, sizeof(err)) != 0)
		fail_msg("listener: %s", err);
	struct sg_tls_conn *c = connect_to(loop, cctx, sg_tls_listener_port(l), NULL, &cl);
	RUN_UNTIL(loop, cl.ups == 1 && srv.ups == 1);

	/* 2,000 datagrams of 1380 bytes, queued as the daemon does and flushed when the send buffer
	 * is full: about 170 records of 16 KiB. */
	uint32_t seq = 0;
	while (seq < 2000) {
		make_msg(buf, seq, 1380);
		int r = sg_tls_conn_queue(c, buf, 1380);
		if (r == SG_EFULL) {
			assert_int_equal(sg_tls_conn_flush(c), 0);
			assert_true(evloop_run_once(loop, 10) >= 0);
			continue;
		}
		assert_int_equal(r, 0);
		seq++;
	}
	assert_int_equal(sg_tls_conn_flush(c), 0);
	RUN_UNTIL(loop, rxb.frames == 2000);
	assert_false(rxb.bad);
	assert_int_equal(rxb.held, 0);
	assert_int_equal(rxb.bytes, 2000u * 1380u);
	/* A record holds 11 such frames and one SSL_read returns a whole record: no batch is a
	 * single frame only because of the buffer, and batches are fewer than records. */
	assert_true(rxb.largest >= 16384 / 1382);
	assert_true(rxb.batches < 2000 * 1382 / 16384);

	/* Largest frames too: each spans five records and the buffer moves them to its front. */
	static const size_t sizes[] = {TLS_FRAME_MAX, 1, TLS_FRAME_MAX - 1, 1380, TLS_FRAME_MAX};
	size_t want = rxb.frames + SG_ARRAY_LEN(sizes);
	for (size_t i = 0; i < SG_ARRAY_LEN(sizes); i++) {
		make_msg(buf, seq, sizes[i]);
		int r;
		while ((r = sg_tls_conn_queue(c, buf, sizes[i])) == SG_EFULL) {
			assert_int_equal(sg_tls_conn_flush(c), 0);
			assert_true(evloop_run_once(loop, 10) >= 0);
		}
		assert_int_equal(r, 0);
		seq++;
	}
	assert_int_equal(sg_tls_conn_flush(c), 0);
	RUN_UNTIL(loop, rxb.frames == want);
	assert_false(rxb.bad);

	/* The receiver closes the connection from on_rx_done: the held frames were checked first,
	 * the connection ends once (no on_state: closed by its owner), the client sees it go. */
	rxb.close_in_done = true;
	make_msg(buf, seq++, 1380);
	assert_int_equal(sg_tls_conn_send(c, buf, 1380), 0);
	RUN_UNTIL(loop, cl.downs == 1);
	assert_false(rxb.bad);
	assert_int_equal(rxb.frames, want + 1);
	assert_int_equal(srv.downs, 0);

	sg_tls_listener_free(l);
	sg_tls_ctx_free(sctx);
	sg_tls_ctx_free(cctx);
	evloop_free(loop);
}

static void test_idle_timeout(void **state)
{
	struct evloop *loop;
	struct side srv = {0}, cl = {0};
	(void)state;

	assert_int_equal(evloop_new(&loop), 0);
	/* The server announces 1 s (rounded up) and closes after 100 ms of silence; the client
	 * would send its keepalive only after a third of the announced second. */
	struct sg_tls_ctx *sctx = server_ctx(true, false, 0, 100, 60000);
	struct sg_tls_ctx *cctx = client_ctx("client", "ca", NULL, false, 60000);
	struct sg_tls_listener *l = listen_on(loop, sctx, &srv);
	(void)connect_to(loop, cctx, sg_tls_listener_port(l), NULL, &cl);
	RUN_UNTIL(loop, cl.downs == 1 && srv.downs == 1);
	assert_int_equal(cl.ups, 1);
	assert_string_equal(srv.reason, "idle timeout");
	struct sg_tls_listener_stats ls;
	sg_tls_listener_stats(l, &ls);
	assert_int_equal(ls.idle_closed, 1);
	assert_int_equal(ls.conns, 0);
	assert_true(log_has("event=tls_down", "idle timeout"));
	sg_tls_listener_free(l);
	sg_tls_ctx_free(sctx);
	sg_tls_ctx_free(cctx);
	evloop_free(loop);
}

static void test_dual_stack_and_self_close(void **state)
{
	struct evloop *loop;
	struct side srv = {.close_on_msg = true}, cl = {0};
	struct sg_tls_listener *l;
	struct sg_tls_listener_stats ls;
	char err[256];
	unsigned full = 0;
	(void)state;

	assert_int_equal(evloop_new(&loop), 0);
	struct sg_tls_ctx *sctx = server_ctx(true, false, 0, 0, 0);
	struct sg_tls_ctx *cctx = client_ctx("client", "ca", NULL, false, 0);
	/* On :: an IPv4 client arrives IPv4-mapped and is shown as plain IPv4. */
	union wg_sockaddr any;
	memset(&any, 0, sizeof(any));
	any.in6.sin6_family = AF_INET6;
	any.in6.sin6_addr = in6addr_any;
	struct sg_tls_callbacks cb = cbs_for(&srv);
	int r = sg_tls_listener_new(&l, loop, sctx, &any, &cb, err, sizeof(err));
	if (r == -EAFNOSUPPORT) {
		sg_tls_ctx_free(sctx);
		sg_tls_ctx_free(cctx);
		evloop_free(loop);
		skip();
	}
	assert_int_equal(r, 0);
	(void)connect_to(loop, cctx, sg_tls_listener_port(l), NULL, &cl);
	RUN_UNTIL(loop, cl.ups == 1 && srv.ups == 1);
	assert_int_equal(sg_tls_conn_peer(srv.conn)->sa.sa_family, AF_INET);
	assert_int_equal(strncmp(sg_tls_conn_peer_str(srv.conn), "127.0.0.1:", 10), 0);

	/* The server closes the connection from inside its own on_message. */
	send_msg(loop, cl.conn, 0, 10, &full);
	RUN_UNTIL(loop, cl.downs == 1);
	assert_int_equal(srv.rx, 1);
	assert_int_equal(srv.downs, 0); /* a local close does not call back */
	sg_tls_listener_stats(l, &ls);
	assert_int_equal(ls.conns, 0);

	/* IPv6 loopback, where the host has it. */
	union wg_sockaddr six;
	memset(&six, 0, sizeof(six));
	six.in6.sin6_family = AF_INET6;
	six.in6.sin6_addr = in6addr_loopback;
	six.in6.sin6_port = htons(sg_tls_listener_port(l));
	int probe = socket(AF_INET6, SOCK_STREAM, 0);
	bool have6 = probe >= 0 && connect(probe, &six.sa, sizeof(six.in6)) == 0;
	if (probe >= 0)
		close(probe);
	RUN_UNTIL(loop, (sg_tls_listener_stats(l, &ls), ls.conns == 0));
	if (have6) {
		struct sg_tls_conn *c;
		struct sg_tls_callbacks ccb = cbs_for(&cl);
		memset(&cl, 0, sizeof(cl));
		srv.close_on_msg = false;
		assert_int_equal(
		    sg_tls_client_new(&c, loop, cctx, &six, "::1", &ccb, err, sizeof(err)), 0);
		RUN_UNTIL(loop, cl.downs == 1 || (cl.ups == 1 && srv.ups == 2));
		/* The server certificate has no IP SAN ::1: the name check refuses it. */
		assert_int_equal(cl.ups, 0);
		assert_string_equal(cl.reason, "certificate verify failed: IP address mismatch");
		memset(&cl, 0, sizeof(cl));
		assert_int_equal(
		    sg_tls_client_new(&c, loop, cctx, &six, "localhost", &ccb, err, sizeof(err)),
		    0);
		RUN_UNTIL(loop, cl.ups == 1 && srv.ups == 2);
		assert_int_equal(sg_tls_conn_peer(srv.conn)->sa.sa_family, AF_INET6);
		assert_int_equal(strncmp(sg_tls_conn_peer_str(srv.conn), "[::1]:", 6), 0);
		sg_tls_conn_close(c);
	}
	sg_tls_listener_free(l);
	sg_tls_ctx_free(sctx);
	sg_tls_ctx_free(cctx);
	evloop_free(loop);
}

/* ---- refusals ----------------------------------------------------------------------------- */

/* A client that must fail: returns after its down, with its reason in s->reason. */
static void expect_client_fails(struct evloop *loop, struct sg_tls_ctx *ctx, uint16_t port,
				const char *name, struct side *s)
{
	memset(s, 0, sizeof(*s));
	(void)connect_to(loop, ctx, port, name, s);
	RUN_UNTIL(loop, s->downs == 1);
	assert_int_equal(s->ups, 0);
}

/* A raw non-blocking OpenSSL client handshake, interleaved with the loop. True if it
 * completed. */
static bool raw_handshake(struct evloop *loop, SSL_CTX *rctx, uint16_t port)
{
	int fd = tcp_connect(port);
	assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	SSL *ssl = SSL_new(rctx);
	assert_non_null(ssl);
	SSL_set_fd(ssl, fd);
	SSL_set_connect_state(ssl);
	bool ok = false;
	uint64_t guard = evloop_now_ns() + GUARD_NS;
	for (;;) {
		int r = SSL_do_handshake(ssl);
		if (r == 1) {
			ok = true;
			break;
		}
		int e = SSL_get_error(ssl, r);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			break;
		if (evloop_now_ns() > guard)
			fail_msg("raw handshake hangs");
		assert_true(evloop_run_once(loop, 10) >= 0);
	}
	ERR_clear_error();
	SSL_free(ssl);
	close(fd);
	return ok;
}

static void test_refusals_keep_serving(void **state)
{
	struct evloop *loop;
	struct side srv = {.echo = true}, good = {0}, bad;
	struct sg_tls_listener_stats ls;
	uint8_t pin[SG_TLS_PIN_LEN];
	char err[256];
	(void)state;

	assert_int_equal(evloop_new(&loop), 0);
	/* Short handshake deadline for the silent clients below. */
	struct sg_tls_ctx *sctx = server_ctx(true, false, 300, 60000, 0);
	struct sg_tls_listener *l = listen_on(loop, sctx, &srv);
	uint16_t port = sg_tls_listener_port(l);
	struct sg_tls_ctx *gctx = client_ctx("client", "ca", NULL, false, 0);
	(void)connect_to(loop, gctx, port, NULL, &good);
	RUN_UNTIL(loop, good.ups == 1);
	ping(loop, &good);
	log_clear();

	/* Client trusts another CA: it refuses the server, the server hears its alert. */
	struct sg_tls_ctx *x = client_ctx("client", "ca2", NULL, false, 0);
	expect_client_fails(loop, x, port, NULL, &bad);
	assert_string_equal(bad.reason,
			    "certificate verify failed: unable to get local issuer certificate");
	assert_true(log_has("event=tls_connect_failed", "unable to get local issuer"));
	RUN_UNTIL(loop, log_has("event=tls_refused", "unknown ca"));
	sg_tls_ctx_free(x);
	ping(loop, &good);

	/* Client certificate from another CA. */
	x = client_ctx("rogue", "ca", NULL, false, 0);
	expect_client_fails(loop, x, port, NULL, &bad);
	RUN_UNTIL(loop, log_has("event=tls_refused", "\"certificate verify failed: unable to get "
						     "local issuer certificate\""));
	sg_tls_ctx_free(x);
	ping(loop, &good);

	/* Expired client certificate. */
	x = client_ctx("expired", "ca", NULL, false, 0);
	expect_client_fails(loop, x, port, NULL, &bad);
	RUN_UNTIL(loop, log_has("event=tls_refused", "certificate verify failed: certificate has "
						     "expired"));
	sg_tls_ctx_free(x);
	ping(loop, &good);

	/* No client certificate: in TLS 1.3 the client learns it from the server's alert while
	 * it waits for the greeting, so it is never reported up. */
	x = client_ctx(NULL, "ca", NULL, false, 0);
	expect_client_fails(loop, x, port, NULL, &bad);
	assert_non_null(strstr(bad.reason, "certificate required"));
	RUN_UNTIL(loop, log_has("event=tls_refused", "reason=\"no client certificate\""));
	sg_tls_ctx_free(x);
	ping(loop, &good);

	/* The server certificate names 127.0.0.1 and localhost, not this. */
	x = client_ctx("client", "ca", NULL, false, 0);
	expect_client_fails(loop, x, port, "vpn.example.com", &bad);
	assert_string_equal(bad.reason, "certificate verify failed: hostname mismatch");
	memset(&bad, 0, sizeof(bad));
	(void)connect_to(loop, x, port, "localhost", &bad); /* the right name works */
	RUN_UNTIL(loop, bad.ups == 1);
	sg_tls_conn_close(bad.conn);
	sg_tls_ctx_free(x);

	/* A pin alone authenticates the server; a wrong one refuses it. */
	assert_int_equal(sg_tls_pin_from_cert_file(P("server.crt"), pin, err, sizeof(err)), 0);
	x = client_ctx("client", NULL, pin, false, 0);
	memset(&bad, 0, sizeof(bad));
	(void)connect_to(loop, x, port, NULL, &bad);
	RUN_UNTIL(loop, bad.ups == 1);
	sg_tls_conn_close(bad.conn);
	sg_tls_ctx_free(x);
	pin[0] ^= 1;
	x = client_ctx("client", "ca", pin, false, 0);
	expect_client_fails(loop, x, port, NULL, &bad);
	assert_string_equal(bad.reason, "certificate verify failed: certificate pin mismatch");
	sg_tls_ctx_free(x);
	ping(loop, &good);

	/* Plain TCP data. */
	int fd = tcp_connect(port);
	assert_int_equal(write(fd, "GET / HTTP/1.0\r\n\r\n", 18), 18);
	RUN_UNTIL(loop, log_has("event=tls_refused", "reason=\"not TLS (plain TCP data)\""));
	close(fd);
	ping(loop, &good);

	/* A client that connects and says nothing, and one that stalls inside its first record. */
	sg_tls_listener_stats(l, &ls);
	uint64_t refused = ls.refused_handshake;
	int silent = tcp_connect(port), stalled = tcp_connect(port);
	assert_int_equal(write(stalled, "\x16\x03\x01\x02\x00\x01", 6), 6);
	RUN_UNTIL(loop, (sg_tls_listener_stats(l, &ls), ls.refused_handshake == refused + 2));
	assert_true(log_has("event=tls_refused", "reason=\"handshake timeout\""));
	close(silent);
	close(stalled);
	ping(loop, &good);

	/* A closed port: the client reports the connect error. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	union wg_sockaddr sa = loopback(0);
	socklen_t salen = sizeof(sa.in4);
	assert_int_equal(bind(fd, &sa.sa, salen), 0);
	assert_int_equal(getsockname(fd, &sa.sa, &salen), 0);
	x = client_ctx("client", "ca", NULL, false, 0);
	expect_client_fails(loop, x, ntohs(sa.in4.sin_port), NULL, &bad);
	assert_string_equal(bad.reason, "connect: Connection refused");
	close(fd);
	sg_tls_ctx_free(x);

	/* Through it all the good client stayed up, on its one connection. */
	ping(loop, &good);
	assert_int_equal(good.ups, 1);
	assert_int_equal(good.downs, 0);
	sg_tls_listener_stats(l, &ls);
	assert_true(ls.refused_handshake >= 7);

	sg_tls_conn_close(good.conn);
	sg_tls_listener_free(l);
	sg_tls_ctx_free(sctx);
	sg_tls_ctx_free(gctx);
	evloop_free(loop);
}

/* A TLS server that is not SecureGuard: it completes the handshake and answers "HTTP/1.1". */
static void test_greeting_mismatch(void **state)
{
	struct evloop *loop;
	struct side bad = {0};
	(void)state;

	assert_int_equal(evloop_new(&loop), 0);
	SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(sctx);
	assert_int_equal(SSL_CTX_use_certificate_file(sctx, P("server.crt"), SSL_FILETYPE_PEM), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey_file(sctx, P("server.key"), SSL_FILETYPE_PEM), 1);
	SSL_CTX_set_num_tickets(sctx, 0);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	union wg_sockaddr sa = loopback(0);
	socklen_t salen = sizeof(sa.in4);
	assert_int_equal(bind(lfd, &sa.sa, salen), 0);
	assert_int_equal(listen(lfd, 4), 0);
	assert_int_equal(getsockname(lfd, &sa.sa, &salen), 0);

	struct sg_tls_ctx *cctx = client_ctx("client", "ca", NULL, false, 0);
	(void)connect_to(loop, cctx, ntohs(sa.in4.sin_port), NULL, &bad);
	int fd = -1;
	SSL *ssl = NULL;
	bool wrote = false;
	uint64_t guard = evloop_now_ns() + GUARD_NS;
	while (bad.downs == 0) {
		if (evloop_now_ns() > guard)
			fail_msg("greeting mismatch test hangs");
		if (fd < 0 && (fd = accept(lfd, NULL, NULL)) >= 0) {
			assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
			ssl = SSL_new(sctx);
			SSL_set_fd(ssl, fd);
			SSL_set_accept_state(ssl);
		}
		if (ssl && !wrote) {
			int r = SSL_do_handshake(ssl);
			if (r == 1)
				wrote = SSL_write(ssl, "HTTP/1.1 400 Bad Request\r\n", 26) == 26;
		}
		assert_true(evloop_run_once(loop, 10) >= 0);
	}
	assert_int_equal(bad.ups, 0);
	assert_string_equal(bad.reason, "greeting mismatch: not an SG-TLS/1 server");
	assert_true(log_has("event=tls_connect_failed", "greeting mismatch"));
	ERR_clear_error();
	SSL_free(ssl);
	close(fd);
	close(lfd);
	SSL_CTX_free(sctx);
	sg_tls_ctx_free(cctx);
	evloop_free(loop);
}

/* ---- scale and limits --------------------------------------------------------------------- */

#define MANY 200

/* Sum of a field (ups, downs: int; rx: uint32_t) over the clients. */
static uint64_t sum_field(const struct side *s, int n, size_t off)
{
	uint64_t sum = 0;
	for (int i = 0; i < n; i++) {
		const char *p = (const char *)&s[i] + off;
		if (off == offsetof(struct side, ups) || off == offsetof(struct side, downs)) {
			int v;
			memcpy(&v, p, sizeof(v));
			sum += (uint64_t)v;
		} else {
			uint32_t v;
			memcpy(&v, p, sizeof(v));
			sum += v;
		}
	}
	return sum;
}

static void test_many_clients(void **state)
{
	struct evloop *loop;
	static struct side cls[MANY];
	struct side srv = {.echo = true};
	struct sg_tls_conn *conns[MANY];
	unsigned full = 0;
	const uint32_t per_client = 5;
	(void)state;

	memset(cls, 0, sizeof(cls));
	assert_int_equal(evloop_new(&loop), 0);
	/* An idle timeout scaled too: a connection up on the server may wait long for its client's
	 * turn to read the greeting (and then send keepalives) while 200 handshakes share the CPU. */
	struct sg_tls_ctx *sctx = server_ctx(true, false, 60000, 60000 * test_time_scale(), 0);
	struct sg_tls_ctx *cctx = client_ctx("client", "ca", NULL, false, 0);
	struct sg_tls_listener *l = listen_on(loop, sctx, &srv);
	for (int i = 0; i < MANY; i++) {
		conns[i] = connect_to(loop, cctx, sg_tls_listener_port(l), NULL, &cls[i]);
		sg_tls_conn_set_user(conns[i], &cls[i]);
	}
	/* Up or down, every client ends its handshake; one that went down fails the test with
	 * its reason (a wait for MANY ups would wait for the guard instead). */
	RUN_UNTIL(loop, sum_field(cls, MANY, offsetof(struct side, ups)) +
				sum_field(cls, MANY, offsetof(struct side, downs)) >=
			    MANY);
	for (int i = 0; i < MANY; i++)
		if (cls[i].downs)
			fail_msg("client %d of %d down before its greeting: %s", i, MANY,
				 cls[i].reason);
	RUN_UNTIL(loop, srv.ups == MANY);
	struct sg_tls_listener_stats ls;
	sg_tls_listener_stats(l, &ls);
	assert_int_equal(ls.conns, MANY);
	assert_int_equal(ls.up, MANY);

	for (uint32_t k = 0; k < per_client; k++)
		for (int i = 0; i < MANY; i++)
			send_msg(loop, conns[i], k, 64 + (size_t)i, &full);
	RUN_UNTIL(loop, sum_field(cls, MANY, offsetof(struct side, rx)) == MANY * per_client);
	for (int i = 0; i < MANY; i++) {
		assert_false(cls[i].rx_bad);
		assert_int_equal(cls[i].rx, per_client);
		assert_int_equal(cls[i].downs, 0);
	}
	for (int i = 0; i < MANY; i++)
		sg_tls_conn_close(conns[i]);
	RUN_UNTIL(loop, srv.downs == MANY);
	sg_tls_listener_stats(l, &ls);
	assert_int_equal(ls.conns, 0);
	sg_tls_listener_free(l);
	sg_tls_ctx_free(sctx);
	sg_tls_ctx_free(cctx);
	evloop_free(loop);
}

static void test_source_limits(void **state)
{
	struct evloop *loop;
	struct side srv = {0};
	struct sg_tls_listener_stats ls;
	char err[256];
	int fds[10];
	(void)state;

	assert_int_equal(evloop_new(&loop), 0);
	log_clear();
	/* One new connection per second, bursts of 2: of ten connections made at once, at most
	 * 2 + (seconds taken) get through. */
	struct sg_tls_config cfg = {
	    .cert_file = P("server.crt"),
	    .key_file = P("server.key"),
	    .rate_per_source = 1,
	    .burst_per_source = 2,
	    .max_conns_per_source = 100,
	};
	struct sg_tls_ctx *sctx;
	assert_int_equal(sg_tls_ctx_new(&sctx, &cfg, SG_TLS_SERVER, err, sizeof(err)), 0);
	struct sg_tls_listener *l = listen_on(loop, sctx, &srv);
	for (int i = 0; i < 10; i++)
		fds[i] = tcp_connect(sg_tls_listener_port(l));
	RUN_UNTIL(loop, (sg_tls_listener_stats(l, &ls), ls.accepted + ls.refused_rate == 10));
	assert_true(ls.refused_rate >= 1);
	assert_true(ls.accepted >= 2);
	assert_true(log_has("event=tls_refused", "reason=\"connection rate limit\""));
	assert_true(log_has("peer=127.0.0.1:", NULL));
	for (int i = 0; i < 10; i++)
		close(fds[i]);
	sg_tls_listener_free(l);
	sg_tls_ctx_free(sctx);

	/* At most 3 connections from one source, however slowly they come. */
	cfg.rate_per_source = 1000;
	cfg.burst_per_source = 1000;
	cfg.max_conns_per_source = 3;
	assert_int_equal(sg_tls_ctx_new(&sctx, &cfg, SG_TLS_SERVER, err, sizeof(err)), 0);
	l = listen_on(loop, sctx, &srv);
	for (int i = 0; i < 5; i++)
		fds[i] = tcp_connect(sg_tls_listener_port(l));
	RUN_UNTIL(loop, (sg_tls_listener_stats(l, &ls), ls.accepted + ls.refused_source == 5));
	assert_int_equal(ls.accepted, 3);
	assert_int_equal(ls.refused_source, 2);
	assert_int_equal(ls.conns, 3);
	assert_true(log_has("event=tls_refused", "too many connections from this source"));
	/* A slot comes free when a connection goes. */
	close(fds[0]);
	RUN_UNTIL(loop, (sg_tls_listener_stats(l, &ls), ls.conns == 2));
	fds[0] = tcp_connect(sg_tls_listener_port(l));
	RUN_UNTIL(loop, (sg_tls_listener_stats(l, &ls), ls.accepted == 4));
	for (int i = 0; i < 5; i++)
		close(fds[i]);
	sg_tls_listener_free(l);
	sg_tls_ctx_free(sctx);

	/* And at most 2 in total. */
	cfg.max_conns_per_source = 100;
	cfg.max_conns = 2;
	assert_int_equal(sg_tls_ctx_new(&sctx, &cfg, SG_TLS_SERVER, err, sizeof(err)), 0);
	l = listen_on(loop, sctx, &srv);
	for (int i = 0; i < 3; i++)
		fds[i] = tcp_connect(sg_tls_listener_port(l));
	RUN_UNTIL(loop, (sg_tls_listener_stats(l, &ls), ls.accepted + ls.refused_total == 3));
	assert_int_equal(ls.refused_total, 1);
	assert_true(log_has("event=tls_refused", "reason=\"too many connections\""));
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	sg_tls_listener_free(l);
	sg_tls_ctx_free(sctx);
	evloop_free(loop);
}

/* ---- FIPS --------------------------------------------------------------------------------- */

static void test_fips(void **state)
{
	struct evloop *loop;
	struct side srv = {.echo = true}, cl = {0};
	(void)state;

	assert_int_equal(evloop_new(&loop), 0);
	struct sg_tls_ctx *sctx = server_ctx(false, true, 0, 0, 0);
	struct sg_tls_listener *l = listen_on(loop, sctx, &srv);
	uint16_t port = sg_tls_listener_port(l);
	log_clear();

	/* A client offering only ChaCha20-Poly1305 in TLS 1.3. */
	SSL_CTX *raw = SSL_CTX_new(TLS_client_method());
	assert_non_null(raw);
	SSL_CTX_set_verify(raw, SSL_VERIFY_NONE, NULL);
	assert_int_equal(SSL_CTX_set_min_proto_version(raw, TLS1_3_VERSION), 1);
	assert_int_equal(SSL_CTX_set_ciphersuites(raw, "TLS_CHACHA20_POLY1305_SHA256"), 1);
	assert_false(raw_handshake(loop, raw, port));
	RUN_UNTIL(loop, log_has("event=tls_refused", "no shared cipher"));
	SSL_CTX_free(raw);

	/* ... and one offering only X25519. */
	raw = SSL_CTX_new(TLS_client_method());
	assert_non_null(raw);
	SSL_CTX_set_verify(raw, SSL_VERIFY_NONE, NULL);
	assert_int_equal(SSL_CTX_set1_groups_list(raw, "X25519"), 1);
	log_clear();
	assert_false(raw_handshake(loop, raw, port));
	RUN_UNTIL(loop, log_has("event=tls_refused", NULL));
	/* The same raw client with default groups is accepted: the refusal was the group. */
	assert_int_equal(SSL_CTX_set1_groups_list(raw, "X25519:P-384"), 1);
	assert_true(raw_handshake(loop, raw, port));
	SSL_CTX_free(raw);

	/* TLS 1.2 with ChaCha20 only is refused too. */
	raw = SSL_CTX_new(TLS_client_method());
	assert_non_null(raw);
	SSL_CTX_set_verify(raw, SSL_VERIFY_NONE, NULL);
	assert_int_equal(SSL_CTX_set_max_proto_version(raw, TLS1_2_VERSION), 1);
	assert_int_equal(SSL_CTX_set_cipher_list(raw, "ECDHE-ECDSA-CHACHA20-POLY1305"), 1);
	log_clear();
	assert_false(raw_handshake(loop, raw, port));
	RUN_UNTIL(loop, log_has("event=tls_refused", "no shared cipher"));
	SSL_CTX_free(raw);

	/* A FIPS client of ours gets an AES-GCM suite on a NIST curve and the FIPS flag. */
	struct sg_tls_ctx *cctx = client_ctx(NULL, "ca", NULL, true, 0);
	struct sg_tls_conn *c = connect_to(loop, cctx, port, NULL, &cl);
	RUN_UNTIL(loop, cl.ups == 1);
	assert_int_equal(sg_tls_conn_greeting_flags(c), TLS_GREETING_FIPS);
	assert_true(log_has("event=tls_up", "cipher=TLS_AES_256_GCM_SHA384"));
	ping(loop, &cl);
	sg_tls_conn_close(c);

	sg_tls_listener_free(l);
	sg_tls_ctx_free(sctx);
	sg_tls_ctx_free(cctx);
	evloop_free(loop);
}

/* ---- session tokens ----------------------------------------------------------------------- */

static struct sg_tls_ctx *token_client(const char *tok, size_t len)
{
	struct sg_tls_ctx *ctx = client_ctx(NULL, "ca", NULL, false, 60000);
	if (tok)
		assert_int_equal(sg_tls_ctx_set_session_token(ctx, (const uint8_t *)tok, len), 0);
	return ctx;
}

static void test_session_token(void **state)
{
	struct evloop *loop;
	struct side srv = {.echo = true}, a = {0}, b = {0}, f = {0}, d = {0};
	uint8_t priv[SG_P384_PRIV_LEN];
	char pem[512], tok[2048], forged[2048], err[512];
	int64_t now = (int64_t)time(NULL);
	struct sg_tls_ctx *sctx, *bad;
	(void)state;

	mint_priv(priv, 0x11);
	mint_pem(pem, sizeof(pem), priv);
	FILE *fp = fopen(P("session.pem"), "w");
	assert_non_null(fp);
	assert_int_equal(fputs(pem, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
	/* Token only: no client certificate asked for. */
	struct sg_tls_config cfg = {.cert_file = P("server.crt"),
				    .key_file = P("server.key"),
				    .require_session_token = true,
				    .session_key_file = P("missing.pem"),
				    .max_conns_per_source = 1000,
				    .rate_per_source = 100000,
				    .burst_per_source = 1000};
	assert_int_equal(sg_tls_ctx_new(&bad, &cfg, SG_TLS_SERVER, err, sizeof(err)), SG_EINVAL);
	assert_non_null(strstr(err, "missing.pem"));
	cfg.session_key_file = P("session.pem");
	assert_int_equal(sg_tls_ctx_new(&sctx, &cfg, SG_TLS_SERVER, err, sizeof(err)), 0);
	assert_int_equal(evloop_new(&loop), 0);
	struct sg_tls_listener *l = listen_on(loop, sctx, &srv);
	uint16_t port = sg_tls_listener_port(l);
	assert_true(log_has("event=tls_listening", "session_token=required"));

	/* A valid token: up, and bound to its claims on the server. Expires in 3 s (x the time
	 * scale: under qemu in a 10% cpu cgroup it expired before the replay below connected, and
	 * the first connection ended by expiry instead of by the replay). */
	const char *key1 = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
	size_t n = mint_token(tok, sizeof(tok), priv, key1, "s-1", now - 5,
			      now + 3 * (int64_t)test_time_scale());
	struct sg_tls_ctx *ca = token_client(tok, n);
	struct sg_tls_conn *ac = connect_to(loop, ca, port, NULL, &a);
	RUN_UNTIL(loop, a.ups == 1 && srv.ups == 1);
	assert_true(sg_tls_conn_greeting_flags(ac) & TLS_GREETING_TOKEN);
	const struct tls_token_claims *tc = sg_tls_conn_token(srv.conn);
	assert_non_null(tc);
	assert_string_equal(tc->sid, "s-1");
	assert_int_equal(tc->client_key[0], 1);
	assert_null(sg_tls_conn_token(ac)); /* client side: none */
	assert_true(log_has("event=tls_token_accepted", "session=s-1"));
	ping(loop, &a);

	/* No token: the client gives up by itself, saying why. */
	struct sg_tls_ctx *cb = token_client(NULL, 0);
	(void)connect_to(loop, cb, port, NULL, &b);
	RUN_UNTIL(loop, b.downs == 1);
	assert_int_equal(b.ups, 0);
	assert_non_null(strstr(b.reason, "requires a session token"));

	/* A forged one (a claim changed): refused by the server with its reason. */
	memcpy(forged, tok, n + 1);
	char *claims = strchr(forged, '.') + 1;
	claims[10] = claims[10] == 'A' ? 'B' : 'A';
	struct sg_tls_ctx *cf = token_client(forged, n);
	(void)connect_to(loop, cf, port, NULL, &f);
	RUN_UNTIL(loop, f.downs == 1);
	RUN_UNTIL(loop, log_has("event=tls_refused", "does not verify"));
	assert_int_equal(srv.ups, 1);

	/* The same token from another connection: the newer one wins, the older is closed. */
	struct sg_tls_ctx *cd = token_client(tok, n);
	(void)connect_to(loop, cd, port, NULL, &d);
	RUN_UNTIL(loop, d.ups == 1 && a.downs == 1);
	assert_true(log_has("event=tls_down", "session token used by a newer connection"));
	ping(loop, &d);

	/* At the token's expiry the server closes the connection. */
	RUN_UNTIL(loop, d.downs == 1);
	assert_true(log_has("event=tls_down", "session token expired"));
	struct sg_tls_listener_stats ls;
	sg_tls_listener_stats(l, &ls);
	assert_int_equal(ls.token_expired, 1);

	/* ... and the same token is refused from then on. */
	memset(&d, 0, sizeof(d));
	(void)connect_to(loop, cd, port, NULL, &d);
	RUN_UNTIL(loop, log_has("event=tls_refused", "session token expired"));
	RUN_UNTIL(loop, d.downs == 1);

	sg_tls_listener_free(l);
	sg_tls_ctx_free(sctx);
	sg_tls_ctx_free(ca);
	sg_tls_ctx_free(cb);
	sg_tls_ctx_free(cf);
	sg_tls_ctx_free(cd);
	evloop_free(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_frame_codec),
	    cmocka_unit_test(test_cert_files),
	    cmocka_unit_test(test_exchange_in_order),
	    cmocka_unit_test(test_batched_records),
	    cmocka_unit_test(test_rx_batches),
	    cmocka_unit_test(test_idle_timeout),
	    cmocka_unit_test(test_dual_stack_and_self_close),
	    cmocka_unit_test(test_refusals_keep_serving),
	    cmocka_unit_test(test_greeting_mismatch),
	    cmocka_unit_test(test_many_clients),
	    cmocka_unit_test(test_source_limits),
	    cmocka_unit_test(test_fips),
	    cmocka_unit_test(test_session_token),
	};
	/* SG_TEST_FILTER=test_many_clients runs the tests whose names match (cmocka's pattern). */
	if (getenv("SG_TEST_FILTER"))
		cmocka_set_test_filter(getenv("SG_TEST_FILTER"));
	return cmocka_run_group_tests(tests, setup, teardown);
}
