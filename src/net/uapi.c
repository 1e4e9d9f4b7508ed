/* The WireGuard userspace API engine (xplatform configuration protocol); see uapi.h for the
 * semantics, which follow wireguard-go's device/uapi.go line for line. */
#include "net/uapi.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <secureguard/sg_errors.h>

#include "common/log.h"
#include "config/key.h"
#include "crypto/crypto.h"
#include "net/addr.h"

enum conn_state {
	ST_OP,	    /* reading "set=1\n" or "get=1\n" */
	ST_GET_NL,  /* "get=1\n" read; the blank line must follow */
	ST_SET,	    /* reading key=value lines until a blank line */
	ST_DISCARD, /* a set failed and was answered: ignore input until the client closes */
	ST_GET,	    /* a get is being written, a piece at a time (get_next) */
	ST_CLOSED,  /* invalid operation or no memory: close without (further) answer */
};

/* Output bytes; they may hold private and preshared keys, so every byte is wiped once sent. */
struct obuf {
	uint8_t *p;
	size_t off, len, cap;
};

struct uapi_conn {
	struct wg_device *dev;
	struct uapi_host host;
	enum conn_state state;
	bool want_close;

	uint8_t op[6];
	size_t op_len;

	/* Current set line: the first UAPI_LINE_MAX bytes are kept, the rest only counted. */
	char line[UAPI_LINE_MAX + 1];
	size_t line_len;   /* bytes kept */
	size_t line_total; /* bytes seen, without the newline */
	bool line_eq;	   /* an '=' was seen anywhere in the line */
	unsigned line_no;  /* 1-based, counted from the operation line */
	size_t request_bytes;

	/* Set state, as wireguard-go's ipcSetPeer. */
	bool device_section;  /* no public_key line yet */
	struct wg_peer *peer; /* peer being configured; NULL when none or dummy */
	bool dummy;	      /* lines are checked but applied to nothing */
	bool created;	      /* the peer was created by this section */
	bool added_ip;	      /* this section gave the peer an allowed IP */
	bool pka_pending;     /* persistent_keepalive_interval applied at the section's end */
	uint16_t pka_secs;

	/* The next peer a get writes (ST_GET); NULL: the final errno line is next. */
	struct wg_peer *get_next;

	struct obuf out;
	int last_errno;
	char last_error[300];
};

/* ---- output ------------------------------------------------------------------------------- */

static bool obuf_reserve(struct obuf *b, size_t more)
{
	if (b->len + more <= b->cap)
		return true;
	if (more > SIZE_MAX / 2 - b->len)
		return false;
	size_t cap = b->cap ? b->cap : 1024;
	while (cap < b->len + more)
		cap *= 2;
	/* Not realloc: the old block holds keys and must be wiped before it is released. */
	uint8_t *p = malloc(cap);
	if (!p)
		return false;
	if (b->p) {
		memcpy(p, b->p, b->len);
		sg_memzero(b->p, b->cap);
		free(b->p);
	}
	b->p = p;
	b->cap = cap;
	return true;
}

static void obuf_free(struct obuf *b)
{
	if (b->p) {
		sg_memzero(b->p, b->cap);
		free(b->p);
	}
	memset(b, 0, sizeof(*b));
}

static void conn_oom(struct uapi_conn *c)
{
	sg_log(SG_LOG_ERROR, "uapi_error", "error=out_of_memory");
	c->state = ST_CLOSED;
	c->want_close = true;
}

static void out_put(struct uapi_conn *c, const void *data, size_t n)
{
	if (c->state == ST_CLOSED)
		return;
	if (!obuf_reserve(&c->out, n)) {
		conn_oom(c);
		return;
	}
	memcpy(c->out.p + c->out.len, data, n);
	c->out.len += n;
}

static void out_printf(struct uapi_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void out_printf(struct uapi_conn *c, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		conn_oom(c);
		return;
	}
	out_put(c, tmp, (size_t)n);
}

static void out_key(struct uapi_conn *c, const char *name, const uint8_t key[WG_KEY_LEN])
{
	static const char hex[] = "0123456789abcdef";
	char line[32 + 2 * WG_KEY_LEN + 2];
	size_t nlen = strlen(name);
	memcpy(line, name, nlen);
	line[nlen] = '=';
	char *p = line + nlen + 1;
	for (size_t i = 0; i < WG_KEY_LEN; i++) {
		*p++ = hex[key[i] >> 4];
		*p++ = hex[key[i] & 15];
	}
	*p++ = '\n';
	out_put(c, line, (size_t)(p - line));
	sg_memzero(line, sizeof(line));
}

/* ---- errors ------------------------------------------------------------------------------- */

static void reply_errno(struct uapi_conn *c, int err)
{
	out_printf(c, "errno=%d\n\n", err);
}

static void apply_pending(struct uapi_conn *c);

/* A set line failed: earlier lines stay applied (as in wireguard-go), the error is answered and
 * the rest of the request is ignored. */
static void set_fail(struct uapi_conn *c, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_fail(struct uapi_conn *c, int err, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	apply_pending(c);
	c->last_errno = err;
	snprintf(c->last_error, sizeof(c->last_error), "line %u: %s", c->line_no, msg);
	char quoted[400];
	sg_log(SG_LOG_WARN, "uapi_error", "op=set errno=%d error=%s", err,
	       sg_log_quote(quoted, sizeof(quoted), c->last_error));
	reply_errno(c, err);
	if (c->state != ST_CLOSED)
		c->state = ST_DISCARD;
}

/* ---- value parsers ------------------------------------------------------------------------ */

static bool value_is(const char *v, size_t len, const char *want)
{
	return len == strlen(want) && memcmp(v, want, len) == 0;
}

/* Hex digit without branches on the digit, so a private key's decoding time does not depend on
 * its value: 0..15, or -1 for a non-hex byte. */
static int hex_digit(unsigned char ch)
{
	int c = ch, lc = ch | 0x20;
	int is_digit = ((('0' - 1) - c) & (c - ('9' + 1))) >> 8;
	int is_alpha = ((('a' - 1) - lc) & (lc - ('f' + 1))) >> 8;
	return (is_digit & (c - '0')) | (is_alpha & (lc - 'a' + 10)) | ~(is_digit | is_alpha);
}

/* A key as Go's hex.DecodeString into [32]byte: exactly 64 hex digits, either case. */
static int parse_key(const char *s, size_t len, uint8_t out[WG_KEY_LEN])
{
	if (len != 2 * WG_KEY_LEN)
		return SG_EINVAL;
	int bad = 0;
	for (size_t i = 0; i < WG_KEY_LEN; i++) {
		int hi = hex_digit((unsigned char)s[2 * i]);
		int lo = hex_digit((unsigned char)s[2 * i + 1]);
		bad |= hi | lo;
		out[i] = (uint8_t)(((unsigned)hi & 15) << 4 | ((unsigned)lo & 15));
	}
	if (bad < 0) {
		sg_memzero(out, WG_KEY_LEN);
		return SG_EINVAL;
	}
	return 0;
}

/* Key names are ours to log only when they look like one (never a pasted secret). */
static const char *loggable_key(char *buf, size_t size, const char *key, size_t len)
{
	if (len == 0 || len > 32 || len >= size)
		return "?";
	for (size_t i = 0; i < len; i++) {
		char ch = key[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'))
			return "?";
	}
	memcpy(buf, key, len);
	buf[len] = '\0';
	return buf;
}

/* ---- set ---------------------------------------------------------------------------------- */

/* wireguard-go's ipcSetPeer.handlePostConfig: what a peer section does when it ends. */
static void apply_pending(struct uapi_conn *c)
{
	if (c->peer && c->pka_pending)
		wg_peer_set_persistent_keepalive(c->peer, c->pka_secs, c->host.now(c->host.ctx));
	c->pka_pending = false;
}

static void set_begin(struct uapi_conn *c)
{
	c->state = ST_SET;
	c->line_len = c->line_total = 0;
	c->line_eq = false;
	c->line_no = 1;
	c->request_bytes = 0;
	c->device_section = true;
	c->peer = NULL;
	c->dummy = c->created = c->added_ip = c->pka_pending = false;
}

static void set_finish(struct uapi_conn *c)
{
	apply_pending(c);
	if (c->host.set_done) {
		char why[256] = "";
		int err = c->host.set_done(c->host.ctx, why, sizeof(why));
		if (err != 0) {
			set_fail(c, err, "%s", why[0] ? why : strerror(-err));
			if (c->state != ST_CLOSED)
				c->state = ST_OP;
			return;
		}
	}
	c->peer = NULL;
	c->last_errno = 0;
	c->last_error[0] = '\0';
	sg_log(SG_LOG_DEBUG, "uapi_set", "lines=%u peers=%zu", c->line_no > 1 ? c->line_no - 1 : 0,
	       wg_device_peer_count(c->dev));
	reply_errno(c, 0);
	if (c->state != ST_CLOSED)
		c->state = ST_OP;
}

static void handle_public_key(struct uapi_conn *c, const char *v, size_t vlen)
{
	uint8_t pub[WG_KEY_LEN], own[WG_KEY_LEN];

	/* The previous peer's section ends here, even if this key turns out bad. */
	apply_pending(c);
	c->device_section = false;
	c->peer = NULL;
	c->dummy = c->created = c->added_ip = false;
	if (parse_key(v, vlen, pub) != 0) {
		set_fail(c, -EINVAL, "public_key: not 64 hex digits");
		return;
	}
	/* Our own key selects a throw-away peer. (wireguard-go also treats the all-zero key so
	 * before any private key was ever set, an accident of its zero-initialised identity that
	 * we do not copy: a peer's key is the peer's key.) */
	if (wg_device_get_public_key(c->dev, own) && sg_memeq(own, pub, WG_KEY_LEN)) {
		sg_memzero(own, sizeof(own));
		c->dummy = true;
		return;
	}
	struct wg_peer *peer;
	bool created;
	int err = wg_device_get_or_add_peer(c->dev, pub, &peer, &created);
	if (err == SG_EINVAL) {
		c->dummy = true;
		return;
	}
	if (err == SG_EFULL) {
		set_fail(c, -ENOSPC, "public_key: cannot create peer: %u peers already",
			 WG_MAX_PEERS);
		return;
	}
	if (err != 0) {
		set_fail(c, -EINVAL, "public_key: cannot create peer: %s", sg_strerror(err));
		return;
	}
	if (created) {
		c->created = true;
		char tag[SG_LOG_KEY_TAG_SIZE];
		sg_log(SG_LOG_DEBUG, "peer_added", "peer=%s", sg_log_key_tag(tag, pub));
	}
	c->peer = peer;
}

/* A TLS transport key, handed to the host with NUL-terminated copies of key and value. */
static void transport_line(struct uapi_conn *c, struct wg_peer *peer, const char *k, size_t klen,
			   const char *v, size_t vlen)
{
	char key[40], kb[40], why[200] = "";

	if (klen >= sizeof(key)) {
		set_fail(c, -EINVAL, "invalid key %s", loggable_key(kb, sizeof(kb), k, klen));
		return;
	}
	char *value = malloc(vlen + 1);
	if (!value) {
		set_fail(c, -ENOMEM, "out of memory");
		return;
	}
	memcpy(key, k, klen);
	key[klen] = '\0';
	memcpy(value, v, vlen);
	value[vlen] = '\0';
	int err = c->host.transport_set(c->host.ctx, peer, key, value, why, sizeof(why));
	free(value);
	if (err != 0)
		set_fail(c, err, "%s: %s", key, why[0] ? why : strerror(-err));
}

static void handle_device_line(struct uapi_conn *c, const char *k, size_t klen, const char *v,
			       size_t vlen)
{
	uint64_t num;
	int err;

	if (value_is(k, klen, "private_key")) {
		uint8_t sk[WG_KEY_LEN], cur[WG_KEY_LEN];
		if (parse_key(v, vlen, sk) != 0) {
			set_fail(c, -EINVAL, "private_key: not 64 hex digits");
			return;
		}
		bool zero = sg_is_zero(sk, sizeof(sk));
		if (!zero && !sg_crypto_classic_available()) {
			sg_memzero(sk, sizeof(sk));
			set_fail(c, -EPERM,
				 "private_key: classic WireGuard is unavailable: this OpenSSL has no "
				 "X25519/ChaCha20/BLAKE2s (FIPS provider only); use fips_private_key");
			return;
		}
		if (!zero)
			sg_x25519_clamp(
			    sk); /* stored clamped, so get returns what wireguard-go does */
		bool same =
		    wg_device_get_private_key(c->dev, cur) ? sg_memeq(cur, sk, sizeof(sk)) : zero;
		err = same ? 0 : wg_device_set_private_key(c->dev, zero ? NULL : sk);
		sg_memzero(sk, sizeof(sk));
		sg_memzero(cur, sizeof(cur));
		if (err != 0) {
			set_fail(c, -EINVAL, "private_key: %s", sg_strerror(err));
			return;
		}
		if (!same) {
			uint8_t pub[WG_KEY_LEN];
			char tag[SG_LOG_KEY_TAG_SIZE];
			if (wg_device_get_public_key(c->dev, pub))
				sg_log(SG_LOG_INFO, "private_key_changed", "public_key=%s",
				       sg_log_key_tag(tag, pub));
			else
				sg_log(SG_LOG_INFO, "private_key_changed", "public_key=none");
			/* What waited for a key (a persistent keepalive, packets) leaves now,
			 * whatever order the settings came in. */
			if (!zero)
				wg_device_send_staged(c->dev, c->host.now(c->host.ctx));
		}
	} else if (value_is(k, klen, "listen_port")) {
		if (addr_parse_uint(v, vlen, 65535, &num) != 0) {
			set_fail(c, -EINVAL, "listen_port: not a port number");
			return;
		}
		err = c->host.set_listen_port(c->host.ctx, (uint16_t)num);
		if (err != 0) {
			set_fail(c, -EADDRINUSE, "listen_port: cannot bind port %u: %s",
				 (unsigned)num, strerror(-err));
			return;
		}
	} else if (value_is(k, klen, "fwmark")) {
		if (addr_parse_uint(v, vlen, UINT32_MAX, &num) != 0) {
			set_fail(c, -EINVAL, "fwmark: not a 32-bit number");
			return;
		}
		err = c->host.set_fwmark(c->host.ctx, (uint32_t)num);
		if (err != 0) {
			/* wireguard-go answers EADDRINUSE here too. */
			set_fail(c, -EADDRINUSE, "fwmark: cannot set: %s", strerror(-err));
			return;
		}
	} else if (value_is(k, klen, "fips_private_key")) {
		uint8_t sk[WG_FIPS_PRIV_LEN];
		if (sg_fipskey_priv_from_hex(sk, v, vlen) != 0) {
			set_fail(c, -EINVAL, "fips_private_key: not %d hex digits of a P-384 scalar",
				 2 * WG_FIPS_PRIV_LEN);
			return;
		}
		bool zero = sg_is_zero(sk, sizeof(sk));
		if (!zero && !sg_fips_suite_usable()) {
			sg_memzero(sk, sizeof(sk));
			set_fail(c, -EPERM, "fips_private_key: the FIPS suite failed its self-test");
			return;
		}
		err = wg_device_set_fips_private_key(c->dev, zero ? NULL : sk);
		sg_memzero(sk, sizeof(sk));
		if (err != 0) {
			set_fail(c, -EINVAL, "fips_private_key: %s", sg_strerror(err));
			return;
		}
		if (!zero)
			wg_device_send_staged(c->dev, c->host.now(c->host.ctx));
	} else if (value_is(k, klen, "crypto_mode")) {
		char mv[16] = "";
		if (vlen < sizeof(mv))
			memcpy(mv, v, vlen);
		int m = wg_crypto_mode_parse(mv, false);
		if (m < 0) {
			set_fail(c, -EINVAL, "crypto_mode: not auto, fips or classic");
			return;
		}
		err = wg_device_set_crypto_mode(c->dev, (enum wg_crypto_mode)m);
		if (err != 0) {
			set_fail(c, -EINVAL, "crypto_mode: %s", sg_strerror(err));
			return;
		}
	} else if (value_is(k, klen, "fips_strict")) {
		if (!c->host.fips_strict) {
			set_fail(c, -EINVAL, "fips_strict: not supported by this host");
			return;
		}
		if (value_is(v, vlen, "true")) {
			/* FipsStrict: FIPS mode only on a validated module (docs/PROTOCOL.md). */
			if (!sg_crypto_fips_provider_active()) {
				set_fail(c, -EPERM,
					 "fips_strict: OpenSSL has no active FIPS provider (see "
					 "openssl-fipsinstall(1)); refusing FipsStrict");
				return;
			}
			*c->host.fips_strict = true;
		} else if (value_is(v, vlen, "false")) {
			*c->host.fips_strict = false;
		} else {
			set_fail(c, -EINVAL, "fips_strict: value must be \"true\" or \"false\"");
			return;
		}
	} else if (klen > 4 && memcmp(k, "tls_", 4) == 0 && c->host.transport_set) {
		transport_line(c, NULL, k, klen, v, vlen);
	} else if (value_is(k, klen, "replace_peers")) {
		if (!value_is(v, vlen, "true")) {
			set_fail(c, -EINVAL, "replace_peers: value must be \"true\"");
			return;
		}
		wg_device_remove_all_peers(c->dev);
	} else {
		char kb[40];
		set_fail(c, -EINVAL, "invalid device key %s",
			 loggable_key(kb, sizeof(kb), k, klen));
	}
}

static void drop_peer_selection(struct uapi_conn *c)
{
	c->peer = NULL;
	c->dummy = true;
	c->pka_pending = false;
}

static void handle_allowed_ip(struct uapi_conn *c, const char *v, size_t vlen)
{
	bool add = true;
	int family;
	uint8_t addr[16], cidr;
	const char *why = "";

	if (vlen > 0 && v[0] == '-') {
		add = false;
		v++;
		vlen--;
	}
	if (addr_parse_prefix(v, vlen, &family, addr, &cidr, &why) != 0) {
		set_fail(c, -EINVAL, "allowed_ip: %s", why);
		return;
	}
	if (!c->peer)
		return;
	if (add) {
		c->added_ip = true;
		int err = wg_peer_add_allowed_ip(c->peer, family, addr, cidr);
		if (err != 0)
			set_fail(c, err == SG_ENOMEM ? -ENOMEM : -EINVAL, "allowed_ip: %s",
				 sg_strerror(err));
	} else {
		/* Removing a prefix the peer does not own is not an error (wireguard-go). */
		int err = wg_peer_remove_allowed_ip(c->peer, family, addr, cidr);
		if (err != 0 && err != SG_ENOENT)
			set_fail(c, -EINVAL, "allowed_ip: %s", sg_strerror(err));
	}
}

static void handle_endpoint(struct uapi_conn *c, const char *v, size_t vlen)
{
	struct wg_endpoint ep;
	char zone[ADDR_ZONE_MAX + 1];
	const char *why = "";

	if (addr_parse_endpoint(v, vlen, &ep, zone, &why) != 0) {
		set_fail(c, -EINVAL, "endpoint: %s", why);
		return;
	}
	if (zone[0]) {
		/* Go resolves a zone by interface name first, then as a number. */
		uint32_t index = 0;
		uint64_t num;
		if (c->host.zone_index)
			index = c->host.zone_index(c->host.ctx, zone);
		if (index == 0 && addr_parse_uint(zone, strlen(zone), UINT32_MAX, &num) == 0)
			index = (uint32_t)num;
		ep.addr.in6.sin6_scope_id = index;
	}
	if (c->peer)
		wg_peer_set_endpoint(c->peer, &ep);
}

static void handle_peer_line(struct uapi_conn *c, const char *k, size_t klen, const char *v,
			     size_t vlen)
{
	uint64_t num;

	if (value_is(k, klen, "update_only")) {
		if (!value_is(v, vlen, "true")) {
			set_fail(c, -EINVAL, "update_only: value must be \"true\"");
			return;
		}
		/* Only an existing peer may be updated: undo the creation. */
		if (c->created && c->peer) {
			wg_device_remove_peer(c->dev, c->peer);
			drop_peer_selection(c);
		}
	} else if (value_is(k, klen, "remove")) {
		if (!value_is(v, vlen, "true")) {
			set_fail(c, -EINVAL, "remove: value must be \"true\"");
			return;
		}
		if (c->peer) {
			char tag[SG_LOG_KEY_TAG_SIZE];
			sg_log(SG_LOG_DEBUG, "peer_removed", "peer=%s",
			       sg_log_key_tag(tag, wg_peer_public_key(c->peer)));
			wg_device_remove_peer(c->dev, c->peer);
		}
		drop_peer_selection(c);
	} else if (value_is(k, klen, "preshared_key")) {
		uint8_t psk[WG_KEY_LEN];
		if (parse_key(v, vlen, psk) != 0) {
			set_fail(c, -EINVAL, "preshared_key: not 64 hex digits");
			return;
		}
		if (c->peer)
			wg_peer_set_preshared_key(c->peer,
						  sg_is_zero(psk, sizeof(psk)) ? NULL : psk);
		sg_memzero(psk, sizeof(psk));
	} else if (value_is(k, klen, "endpoint")) {
		handle_endpoint(c, v, vlen);
	} else if (value_is(k, klen, "persistent_keepalive_interval")) {
		if (addr_parse_uint(v, vlen, 65535, &num) != 0) {
			set_fail(c, -EINVAL, "persistent_keepalive_interval: not a 16-bit number");
			return;
		}
		/* Applied when the peer's section ends, as wireguard-go sends the first keepalive
		 * only then (after an endpoint given later in the section). */
		if (c->peer) {
			c->pka_pending = true;
			c->pka_secs = (uint16_t)num;
		}
	} else if (value_is(k, klen, "replace_allowed_ips")) {
		if (!value_is(v, vlen, "true")) {
			set_fail(c, -EINVAL, "replace_allowed_ips: value must be \"true\"");
			return;
		}
		/* `wg setconf` sends this for every peer: a peer this section made, without an
		 * allowed IP yet, has nothing to clear (at a million peers the owner lookup in
		 * the allowed-IPs table was a tenth of the time). */
		if (c->peer && !(c->created && !c->added_ip))
			wg_peer_clear_allowed_ips(c->peer);
	} else if (value_is(k, klen, "allowed_ip")) {
		handle_allowed_ip(c, v, vlen);
	} else if (value_is(k, klen, "fips_public_key")) {
		uint8_t pub[WG_FIPS_PUB_LEN];
		bool zero = vlen == 2 * WG_FIPS_PUB_LEN;
		for (size_t i = 0; zero && i < vlen; i++)
			zero = v[i] == '0';
		if (!zero && sg_fipskey_pub_from_hex(pub, v, vlen) != 0) {
			set_fail(c, -EINVAL, "fips_public_key: not %d hex digits of a P-384 point",
				 2 * WG_FIPS_PUB_LEN);
			return;
		}
		if (c->peer) {
			int err = wg_peer_set_fips_public_key(c->peer, zero ? NULL : pub);
			if (err != 0) {
				set_fail(c, err == SG_EEXIST ? -EEXIST : -EINVAL,
					 "fips_public_key: %s", sg_strerror(err));
				return;
			}
		}
	} else if (value_is(k, klen, "crypto_mode")) {
		char mv[16] = "";
		if (vlen < sizeof(mv))
			memcpy(mv, v, vlen);
		int m = wg_crypto_mode_parse(mv, true);
		if (m < 0) {
			set_fail(c, -EINVAL, "crypto_mode: not auto, fips, classic or inherit");
			return;
		}
		if (c->peer)
			wg_peer_set_crypto_mode(c->peer, (enum wg_crypto_mode)m);
	} else if ((value_is(k, klen, "transport") || value_is(k, klen, "tls_endpoint") ||
		    value_is(k, klen, "tls_server_name")) &&
		   c->host.transport_set) {
		if (c->peer)
			transport_line(c, c->peer, k, klen, v, vlen);
	} else if (value_is(k, klen, "protocol_version")) {
		if (!value_is(v, vlen, "1")) {
			set_fail(c, -EINVAL, "protocol_version: only 1 is supported");
			return;
		}
	} else {
		char kb[40];
		set_fail(c, -EINVAL, "invalid peer key %s", loggable_key(kb, sizeof(kb), k, klen));
	}
}

/* One complete line (newline removed). */
static void set_line(struct uapi_conn *c)
{
	if (c->line_total > UAPI_LINE_MAX) {
		/* Longer than any valid line: decide the errno wireguard-go would give. */
		if (!c->line_eq)
			set_fail(c, -EPROTO, "line without '='");
		else
			set_fail(c, -EINVAL, "line longer than %d bytes", UAPI_LINE_MAX);
		return;
	}
	size_t len = c->line_len;
	/* bufio.ScanLines drops one carriage return before the newline. */
	if (len > 0 && c->line[len - 1] == '\r')
		len--;
	if (len == 0) {
		set_finish(c);
		return;
	}
	const char *eq = memchr(c->line, '=', len);
	if (!eq) {
		set_fail(c, -EPROTO, "line without '='");
		return;
	}
	size_t klen = (size_t)(eq - c->line);
	const char *v = eq + 1;
	size_t vlen = len - klen - 1;
	if (value_is(c->line, klen, "public_key"))
		handle_public_key(c, v, vlen);
	else if (c->device_section)
		handle_device_line(c, c->line, klen, v, vlen);
	else
		handle_peer_line(c, c->line, klen, v, vlen);
}

static void line_reset(struct uapi_conn *c)
{
	sg_memzero(c->line, c->line_len);
	c->line_len = c->line_total = 0;
	c->line_eq = false;
}

/* Feeds set bytes; returns how many were consumed. */
static size_t set_input(struct uapi_conn *c, const uint8_t *in, size_t len)
{
	size_t used = 0;
	while (used < len && c->state == ST_SET) {
		const uint8_t *p = in + used;
		const uint8_t *nl = memchr(p, '\n', len - used);
		size_t chunk = nl ? (size_t)(nl - p) : len - used;
		size_t take = chunk + (nl ? 1 : 0);

		size_t max = c->host.request_max && c->host.request_max < UAPI_REQUEST_MAX
				 ? c->host.request_max
				 : UAPI_REQUEST_MAX;
		if (take > max - c->request_bytes) {
			line_reset(c);
			set_fail(c, -EMSGSIZE, "request longer than %zu bytes", max);
			return len;
		}
		c->request_bytes += take;
		size_t room = UAPI_LINE_MAX - c->line_len;
		size_t keep = chunk < room ? chunk : room;
		memcpy(c->line + c->line_len, p, keep);
		c->line_len += keep;
		if (memchr(p, '=', chunk))
			c->line_eq = true;
		c->line_total += chunk;
		used += take;
		if (c->line_total >= UAPI_SCAN_MAX) {
			/* bufio.Scanner gives up with ErrTooLong, reported as EIO. */
			line_reset(c);
			set_fail(c, -EIO, "line of %d bytes or more", UAPI_SCAN_MAX);
			return len;
		}
		if (!nl)
			break;
		set_line(c);
		line_reset(c);
		c->line_no++;
	}
	return used;
}

/* ---- get ---------------------------------------------------------------------------------- */

struct aip_ctx {
	struct uapi_conn *c;
};

static int put_allowed_ip(void *ctx, int family, const uint8_t *addr, uint8_t cidr)
{
	struct uapi_conn *c = ((struct aip_ctx *)ctx)->c;
	char ip[ADDR_STRLEN];
	if (addr_format(ip, sizeof(ip), family, addr) < 0)
		return 0;
	out_printf(c, "allowed_ip=%s/%u\n", ip, cidr);
	return c->state == ST_CLOSED ? 1 : 0;
}

static void emit_kv(void *ectx, const char *key, const char *value)
{
	out_printf((struct uapi_conn *)ectx, "%s=%s\n", key, value);
}

static void get_peer(struct uapi_conn *c, struct wg_peer *p, bool fips_dev);

/* Writes the device's lines and starts the peers: get_more writes them a piece at a time. */
static void do_get(struct uapi_conn *c)
{
	uint8_t key[WG_KEY_LEN];

	if (wg_device_get_private_key(c->dev, key))
		out_key(c, "private_key", key);
	sg_memzero(key, sizeof(key));
	uint16_t port = c->host.listen_port(c->host.ctx);
	if (port != 0)
		out_printf(c, "listen_port=%u\n", port);
	uint32_t mark = c->host.fwmark(c->host.ctx);
	if (mark != 0)
		out_printf(c, "fwmark=%u\n", mark);
	/* SecureGuard's keys (docs/PROTOCOL.md, "UAPI"): wg(8) skips keys it does not know. They
	 * appear only where FIPS mode is configured, so a classic interface answers exactly what
	 * wireguard-go does. */
	uint8_t fk[WG_FIPS_PRIV_LEN];
	char fhex[2 * WG_FIPS_PUB_LEN + 1];
	bool fips_dev = wg_device_get_fips_private_key(c->dev, fk);
	if (fips_dev) {
		sg_fipskey_priv_to_hex(fhex, fk);
		out_printf(c, "fips_private_key=%s\n", fhex);
		sg_memzero(fhex, sizeof(fhex));
	}
	sg_memzero(fk, sizeof(fk));
	if (wg_device_get_crypto_mode(c->dev) != WG_CRYPTO_AUTO)
		out_printf(c, "crypto_mode=%s\n", wg_crypto_mode_name(wg_device_get_crypto_mode(c->dev)));
	if (c->host.fips_strict && *c->host.fips_strict)
		out_printf(c, "fips_strict=true\n");
	if (c->host.transport_get)
		c->host.transport_get(c->host.ctx, NULL, emit_kv, c);
	if (c->state == ST_CLOSED)
		return;
	c->state = ST_GET;
	c->get_next = wg_device_first_peer(c->dev);
}

/* Writes peers until UAPI_GET_CHUNK bytes wait, then the final errno line after the last. */
static void get_more(struct uapi_conn *c)
{
	uint8_t fk[WG_FIPS_PRIV_LEN];
	bool fips_dev = wg_device_get_fips_private_key(c->dev, fk);
	sg_memzero(fk, sizeof(fk));

	while (c->state == ST_GET && c->get_next && c->out.len - c->out.off < UAPI_GET_CHUNK) {
		struct wg_peer *p = c->get_next;
		c->get_next = wg_peer_next(p);
		get_peer(c, p, fips_dev);
	}
	if (c->state == ST_GET && !c->get_next) {
		reply_errno(c, 0);
		if (c->state != ST_CLOSED)
			c->state = ST_OP;
	}
}

static void get_peer(struct uapi_conn *c, struct wg_peer *p, bool fips_dev)
{
	uint8_t key[WG_KEY_LEN];
	char fhex[2 * WG_FIPS_PUB_LEN + 1];
	struct wg_peer_stats st;

	out_key(c, "public_key", wg_peer_public_key(p));
	wg_peer_get_preshared_key(p, key);
	out_key(c, "preshared_key", key);
	sg_memzero(key, sizeof(key));
	out_printf(c, "protocol_version=1\n");
	wg_peer_get_stats(p, &st);
	if (st.has_endpoint) {
		char ep[ADDR_ENDPOINT_STRLEN], zone[IF_NAMESIZE + 1] = "";
		const char *zp = NULL;
		if (st.endpoint.addr.sa.sa_family == AF_INET6 &&
		    st.endpoint.addr.in6.sin6_scope_id != 0 && c->host.zone_name &&
		    c->host.zone_name(c->host.ctx, st.endpoint.addr.in6.sin6_scope_id,
				      zone))
			zp = zone;
		if (addr_format_endpoint(ep, sizeof(ep), &st.endpoint, zp) > 0)
			out_printf(c, "endpoint=%s\n", ep);
	}
	out_printf(c, "last_handshake_time_sec=%llu\n",
		   (unsigned long long)(st.last_handshake_real_ns / 1000000000ull));
	out_printf(c, "last_handshake_time_nsec=%llu\n",
		   (unsigned long long)(st.last_handshake_real_ns % 1000000000ull));
	out_printf(c, "tx_bytes=%llu\n", (unsigned long long)st.tx_bytes);
	out_printf(c, "rx_bytes=%llu\n", (unsigned long long)st.rx_bytes);
	out_printf(c, "persistent_keepalive_interval=%u\n", st.persistent_keepalive);
	uint8_t fpub[WG_FIPS_PUB_LEN];
	bool fips_peer = wg_peer_get_fips_public_key(p, fpub);
	if (fips_peer) {
		sg_fipskey_pub_to_hex(fhex, fpub);
		out_printf(c, "fips_public_key=%s\n", fhex);
	}
	if (wg_peer_get_crypto_mode(p) != WG_CRYPTO_INHERIT)
		out_printf(c, "crypto_mode=%s\n", wg_crypto_mode_name(wg_peer_get_crypto_mode(p)));
	if (fips_dev || fips_peer) {
		out_printf(c, "crypto_session=%s\n",
			   st.mode == SG_SUITE_FIPS	 ? "fips"
			   : st.mode == SG_SUITE_CLASSIC ? "classic"
							 : "none");
		if (st.remote_caps)
			out_printf(c, "remote_capabilities=0x%04x\n", st.remote_caps);
		if (st.fallback)
			out_printf(c, "crypto_fallback=true\n");
	}
	if (c->host.transport_get)
		c->host.transport_get(c->host.ctx, p, emit_kv, c);
	struct aip_ctx actx = {c};
	(void)wg_peer_foreach_allowed_ip(p, put_allowed_ip, &actx);
}

/* ---- connection --------------------------------------------------------------------------- */

struct uapi_conn *uapi_conn_new(struct wg_device *dev, const struct uapi_host *host)
{
	struct uapi_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->dev = dev;
	c->host = *host;
	c->state = ST_OP;
	return c;
}

void uapi_conn_free(struct uapi_conn *c)
{
	if (!c)
		return;
	obuf_free(&c->out);
	sg_memzero(c, sizeof(*c));
	free(c);
}

size_t uapi_conn_input(struct uapi_conn *c, const uint8_t *in, size_t len)
{
	size_t i = 0;
	while (i < len) {
		switch (c->state) {
		case ST_OP:
			c->op[c->op_len++] = in[i++];
			if (memcmp(c->op, "set=1\n", c->op_len) != 0 &&
			    memcmp(c->op, "get=1\n", c->op_len) != 0) {
				/* wireguard-go logs and hangs up, without an answer. */
				sg_log(SG_LOG_WARN, "uapi_error", "error=invalid_operation");
				c->state = ST_CLOSED;
				c->want_close = true;
				return len;
			}
			if (c->op_len == sizeof(c->op)) {
				bool set = c->op[0] == 's';
				c->op_len = 0;
				if (set)
					set_begin(c);
				else
					c->state = ST_GET_NL;
			}
			break;
		case ST_GET_NL:
			if (in[i++] != '\n') {
				c->last_errno = -EINVAL;
				snprintf(c->last_error, sizeof(c->last_error),
					 "trailing character after get=1");
				sg_log(SG_LOG_WARN, "uapi_error", "op=get errno=%d error=%s",
				       -EINVAL, "trailing_character");
				reply_errno(c, -EINVAL);
				if (c->state != ST_CLOSED)
					c->state = ST_OP;
			} else {
				do_get(c);
				get_more(c);
			}
			return i;
		case ST_SET:
			i += set_input(c, in + i, len - i);
			if (c->state != ST_SET)
				return i;
			break;
		case ST_GET:
			return i; /* the rest after the get is written (uapi_conn_output_consumed) */
		case ST_DISCARD:
		case ST_CLOSED:
			return len;
		}
	}
	return i;
}

void uapi_conn_eof(struct uapi_conn *c)
{
	if (c->state == ST_SET) {
		/* bufio.Scanner returns a last line without newline, then the set completes. */
		if (c->line_total > 0) {
			set_line(c);
			line_reset(c);
		}
		if (c->state == ST_SET)
			set_finish(c);
	}
	c->want_close = true;
}

const uint8_t *uapi_conn_output(const struct uapi_conn *c, size_t *len)
{
	*len = c->out.len - c->out.off;
	return *len ? c->out.p + c->out.off : NULL;
}

void uapi_conn_output_consumed(struct uapi_conn *c, size_t n)
{
	size_t avail = c->out.len - c->out.off;
	if (n > avail)
		n = avail;
	if (n == 0)
		return;
	sg_memzero(c->out.p + c->out.off, n);
	c->out.off += n;
	if (c->out.off == c->out.len) {
		c->out.off = c->out.len = 0;
		if (c->state == ST_GET)
			get_more(c);
	}
}

bool uapi_conn_want_close(const struct uapi_conn *c)
{
	return c->want_close;
}

bool uapi_conn_busy(const struct uapi_conn *c)
{
	return c->state == ST_SET || c->state == ST_GET;
}

int uapi_conn_last_errno(const struct uapi_conn *c)
{
	return c->last_errno;
}

const char *uapi_conn_last_error(const struct uapi_conn *c)
{
	return c->last_error;
}
