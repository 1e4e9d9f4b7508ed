/* The client address behind trusted reverse proxies (proxy.h). Hand-written: no Debian library
 * parses X-Forwarded-For or RFC 7239; the address text itself goes through inet_pton. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/proxy.h"
#include "server/srv_int.h"

#define ADDR_MAX 64 /* longest hop text looked at: "[IPv6]:port" is at most 54 */

/* An address in "text" (len bytes): IPv4 or IPv6, alone; with ports == true also "[IPv6]",
 * "[IPv6]:port" and "IPv4:port" (port 1..5 digits). IPv4 as IPv4-mapped IPv6. */
static bool addr_parse(const char *text, size_t len, bool ports, uint8_t out[16])
{
	char b[ADDR_MAX];
	const char *a = text;
	size_t n = len;
	int fam;

	if (!len || len >= sizeof(b))
		return false;
	if (ports && text[0] == '[') {
		const char *e = memchr(text, ']', len);
		size_t rest;

		if (!e)
			return false;
		a = text + 1;
		n = (size_t)(e - a);
		rest = len - (size_t)(e - text) - 1;
		if (rest) { /* ":port" */
			if (e[1] != ':' || rest < 2 || rest > 6)
				return false;
			for (size_t i = 2; i <= rest; i++)
				if (e[i] < '0' || e[i] > '9')
					return false;
		}
		memcpy(b, a, n);
		b[n] = 0;
		return inet_pton(AF_INET6, b, out) == 1;
	}
	if (ports && memchr(text, '.', len)) {
		const char *c = memchr(text, ':', len);

		/* One colon after a dot: IPv4:port (::ffff:192.0.2.1 has several). */
		if (c && !memchr(c + 1, ':', len - (size_t)(c - text) - 1) &&
		    memchr(text, '.', (size_t)(c - text))) {
			size_t pl = len - (size_t)(c - text) - 1;

			if (pl < 1 || pl > 5)
				return false;
			for (size_t i = 1; i <= pl; i++)
				if (c[i] < '0' || c[i] > '9')
					return false;
			n = (size_t)(c - text);
		}
	}
	memcpy(b, a, n);
	b[n] = 0;
	if (srv_addr_parse(&fam, out, b))
		return false;
	if (fam == 4) {
		memmove(out + 12, out, 4);
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
	}
	return true;
}

static bool is_v4(const uint8_t a[16])
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	return !memcmp(a, mapped, 12);
}

static bool in_net(const struct srv_cidr *c, const uint8_t a[16])
{
	int full = c->bits / 8, rem = c->bits % 8;

	if (memcmp(c->addr, a, (size_t)full))
		return false;
	return !rem || !((c->addr[full] ^ a[full]) & (uint8_t)(0xff << (8 - rem)));
}

static bool trusted(const struct srv_proxies *t, const uint8_t a[16])
{
	for (int i = 0; i < t->n; i++)
		if (in_net(&t->net[i], a))
			return true;
	return false;
}

int srv_proxies_parse(struct srv_proxies *t, const char *list, char *err, size_t el)
{
	struct srv_proxies nt = *t;
	const char *p = list;

	for (int idx = 1;; idx++) {
		size_t len = strcspn(p, ",");
		char b[ADDR_MAX + 8];
		struct srv_prefix px;
		struct srv_cidr *c = &nt.net[nt.n];
		const char *why = "too long";

		if (nt.n == SRV_PROXY_MAX) {
			snprintf(err, el, "--trusted-proxy: more than %d ranges", SRV_PROXY_MAX);
			return -1;
		}
		/* An address alone is a range of one. */
		if (len < ADDR_MAX)
			snprintf(b, sizeof(b), "%.*s%s", (int)len, p,
				 memchr(p, '/', len)   ? ""
				 : memchr(p, ':', len) ? "/128"
						       : "/32");
		if (len >= ADDR_MAX || srv_prefix_parse(&px, b, false, &why)) {
			snprintf(err, el, "--trusted-proxy: range %d (\"%.*s\"): %s", idx,
				 (int)SG_MIN(len, 60), p, why);
			return -1;
		}
		memset(c->addr, 0, sizeof(c->addr));
		if (px.family == 4) {
			c->addr[10] = c->addr[11] = 0xff;
			memcpy(c->addr + 12, px.addr, 4);
			c->bits = (uint8_t)(96 + px.len);
		} else {
			memcpy(c->addr, px.addr, 16);
			c->bits = (uint8_t)px.len;
		}
		nt.n++;
		if (!p[len])
			break;
		p += len + 1;
	}
	*t = nt;
	return 0;
}

/* The hops of the header, left to right; only the right-most SRV_PROXY_HOPS are kept. */
struct hops {
	uint8_t addr[SRV_PROXY_HOPS][16];
	bool ok[SRV_PROXY_HOPS];
	size_t n; /* all seen; hop i is at i % SRV_PROXY_HOPS */
};

static void hop_add(struct hops *hp, const char *text, size_t len, bool ports)
{
	size_t i = hp->n++ % SRV_PROXY_HOPS;

	hp->ok[i] = addr_parse(text, len, ports, hp->addr[i]);
}

static bool ows(char c)
{
	return c == ' ' || c == '\t';
}

/* X-Forwarded-For: a comma-separated list of addresses (empty elements skipped, as in any
 * HTTP list). */
static void xff_hops(struct hops *hp, const char *v)
{
	while (*v) {
		size_t len = strcspn(v, ",");
		size_t s = 0, e = len;

		while (s < e && ows(v[s]))
			s++;
		while (e > s && ows(v[e - 1]))
			e--;
		if (e > s)
			hop_add(hp, v + s, e - s, true);
		v += len;
		if (*v)
			v++;
	}
}

static bool tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Forwarded (RFC 7239): elements separated by commas, each pairs NAME=VALUE separated by
 * semicolons, VALUE a token or a quoted string. Each element is one hop: its for= value, or a
 * hop that is no address (which stops the walk) when it has none. A syntax error makes the
 * rest of the line one bad hop: it cannot be split reliably. */
static void fwd_hops(struct hops *hp, const char *v)
{
	const char *p = v;

	for (;;) {
		char val[ADDR_MAX];
		size_t vl = 0;
		bool have_for = false, val_long = false;

		while (ows(*p) || *p == ',')
			p++;
		if (!*p)
			return;
		for (;;) { /* one pair */
			const char *nm = p;
			bool is_for;

			while (tchar(*p))
				p++;
			if (p == nm || *p != '=')
				goto bad;
			is_for = p - nm == 3 && !strncasecmp(nm, "for", 3);
			if (is_for && have_for)
				goto bad; /* RFC 7239 section 4: each parameter once */
			p++;
			if (is_for)
				vl = 0;
			if (*p == '"') {
				for (p++; *p != '"'; p++) {
					if (!*p || (unsigned char)*p < 0x20 || *p == 0x7f)
						goto bad;
					if (*p == '\\' && !*++p)
						goto bad;
					if (is_for && vl < sizeof(val) - 1)
						val[vl++] = *p;
					else if (is_for)
						val_long = true;
				}
				p++;
			} else {
				const char *t = p;

				while (tchar(*p))
					p++;
				if (p == t)
					goto bad;
				vl = is_for ? (size_t)(p - t) : vl;
				if (is_for && vl >= sizeof(val))
					val_long = true;
				else if (is_for)
					memcpy(val, t, vl);
			}
			have_for |= is_for;
			while (ows(*p))
				p++;
			if (*p != ';')
				break;
			p++;
			while (ows(*p))
				p++;
		}
		if (*p && *p != ',')
			goto bad;
		if (have_for && !val_long)
			hop_add(hp, val, vl, true);
		else
			hop_add(hp, "", 0, true); /* no for=, or too long: not an address */
	}
bad:
	hop_add(hp, "", 0, true);
}

static void addr_text(const uint8_t a[16], char out[64])
{
	if (!inet_ntop(is_v4(a) ? AF_INET : AF_INET6, is_v4(a) ? a + 12 : a, out, 64))
		out[0] = 0;
}

bool srv_client_addr(const struct srv_proxies *t, const char *peer, const struct srv_kv *h, int nh,
		     char out[64])
{
	const char *want = t && t->forwarded ? "forwarded" : "x-forwarded-for";
	uint8_t cur[16];
	struct hops hp;
	size_t first;

	snprintf(out, 64, "%s", peer);
	if (!t || !t->n || !addr_parse(peer, strlen(peer), false, cur) || !trusted(t, cur))
		return false;
	hp.n = 0;
	for (int i = 0; i < nh; i++)
		if (!strcmp(h[i].name, want)) {
			if (t->forwarded)
				fwd_hops(&hp, h[i].value);
			else
				xff_hops(&hp, h[i].value);
		}
	/* Right to left: each trusted hop vouches for the one before it. */
	first = hp.n > SRV_PROXY_HOPS ? hp.n - SRV_PROXY_HOPS : 0;
	for (size_t i = hp.n; i-- > first;) {
		size_t k = i % SRV_PROXY_HOPS;

		if (!hp.ok[k])
			break;
		memcpy(cur, hp.addr[k], 16);
		if (!trusted(t, cur))
			break;
	}
	addr_text(cur, out);
	return true;
}
