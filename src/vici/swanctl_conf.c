/* swanctl.conf into VICI messages (swanctl_conf.h). */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <secureguard/sg_errors.h>

#include "crypto/crypto.h"
#include "vici/swanctl_conf.h"

static const char *const conn_keys[] = {
    "version",	 "local_addrs", "remote_addrs", "local_port",  "remote_port", "proposals",
    "dpd_delay", "dpd_timeout", "rekey_time",	"reauth_time", "encap",	      "fragmentation",
    "mobike",	 "unique",	"keyingtries",	"fips",	       NULL};
static const char *const auth_keys[] = {"auth", "id", "certs", "cacerts", NULL};
static const char *const child_keys[] = {
    "local_ts",	  "remote_ts",	   "esp_proposals", "mode",	 "start_action",
    "dpd_action", "close_action",  "rekey_time",    "life_time", "rekey_bytes",
    "life_bytes", "rekey_packets", "life_packets",  NULL};
static const char *const list_keys[] = {"local_addrs", "remote_addrs", "proposals", "esp_proposals",
					"local_ts",    "remote_ts",    NULL};

static bool in(const char *const *set, const char *s)
{
	for (; *set; set++)
		if (!strcmp(*set, s))
			return true;
	return false;
}

static int fail(struct swanctl_conf *c, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct swanctl_conf *c, int err, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(c->err, sizeof(c->err), "line %u: ", c->line);
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(c->err))
		vsnprintf(c->err + n, sizeof(c->err) - (size_t)n, fmt, ap);
	va_end(ap);
	return err;
}

void swanctl_init(struct swanctl_conf *c)
{
	memset(c, 0, sizeof(*c));
	vici_builder_init(&c->cur);
}

void swanctl_free(struct swanctl_conf *c)
{
	for (unsigned i = 0; i < c->nitems; i++)
		vici_builder_free(&c->items[i].msg);
	vici_builder_free(&c->cur);
	sg_memzero(c, sizeof(*c));
}

/* A name of a section or key: letters, digits, '.', '_', '-'. */
static bool name_ok(const char *s, size_t n)
{
	if (n == 0 || n >= 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
			return false;
	return true;
}

static bool prefix_name(const char *s, const char *prefix)
{
	size_t n = strlen(prefix);
	return !strncmp(s, prefix, n) && (s[n] == 0 || s[n] == '-');
}

/* Secrets: "0x" hex, "0s" base64, or the bytes as written. */
static int secret_bytes(const char *v, uint8_t *out, size_t cap, size_t *len)
{
	size_t n = strlen(v);
	if (n >= 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
		v += 2, n -= 2;
		if (n % 2 || n / 2 > cap)
			return -1;
		for (size_t i = 0; i < n / 2; i++) {
			unsigned b;
			if (!isxdigit((unsigned char)v[2 * i]) ||
			    !isxdigit((unsigned char)v[2 * i + 1]) ||
			    sscanf(v + 2 * i, "%2x", &b) != 1)
				return -1;
			out[i] = (uint8_t)b;
		}
		*len = n / 2;
		return 0;
	}
	if (n >= 2 && v[0] == '0' && (v[1] == 's' || v[1] == 'S')) {
		static const char b64[] =
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
		uint32_t acc = 0;
		unsigned bits = 0;
		size_t o = 0;
		for (v += 2; *v && *v != '='; v++) {
			const char *p = strchr(b64, *v);
			if (!p || !*v)
				return -1;
			acc = acc << 6 | (uint32_t)(p - b64);
			bits += 6;
			if (bits >= 8) {
				bits -= 8;
				if (o >= cap)
					return -1;
				out[o++] = (uint8_t)(acc >> bits);
			}
		}
		*len = o;
		return 0;
	}
	if (n > cap)
		return -1;
	memcpy(out, v, n);
	*len = n;
	return 0;
}

static int add_item(struct swanctl_conf *c, const char *cmd, const char *name)
{
	if (c->nitems >= SWANCTL_MAX_ITEMS)
		return fail(c, SG_ERANGE, "more than %d connections and secrets",
			    SWANCTL_MAX_ITEMS);
	const uint8_t *m;
	size_t ml;
	const char *why;
	int err = vici_builder_finish(&c->cur, &m, &ml, &why);
	if (err)
		return fail(c, err, "%s", why);
	struct swanctl_msg *it = &c->items[c->nitems++];
	snprintf(it->cmd, sizeof(it->cmd), "%s", cmd);
	snprintf(it->name, sizeof(it->name), "%s", name);
	it->msg = c->cur; /* ownership moves */
	vici_builder_init(&c->cur);
	return 0;
}

static int open_section(struct swanctl_conf *c, const char *name)
{
	unsigned d = c->depth;
	const char *top = d ? c->path[0] : NULL;
	if (d >= SWANCTL_MAX_DEPTH)
		return fail(c, SG_ERANGE, "sections nested too deep");
	if (d == 0) {
		if (strcmp(name, "connections") && strcmp(name, "secrets") &&
		    strcmp(name, "authorities"))
			return fail(c, SG_EPARSE,
				    "unknown or unsupported section '%s' (connections, secrets and "
				    "authorities are supported)",
				    name);
	} else if (!strcmp(top, "authorities")) {
		if (d != 1)
			return fail(c, SG_EPARSE, "unknown section '%s' in authority '%s'", name,
				    c->path[1]);
		vici_builder_free(&c->cur);
		vici_builder_init(&c->cur);
		vici_add_section_start(&c->cur, name);
		c->in_item = true;
	} else if (!strcmp(top, "connections")) {
		if (d == 1) {
			vici_builder_free(&c->cur);
			vici_builder_init(&c->cur);
			vici_add_section_start(&c->cur, name);
			c->in_item = true;
		} else if (d == 2) {
			if (!prefix_name(name, "local") && !prefix_name(name, "remote") &&
			    strcmp(name, "children"))
				return fail(
				    c, SG_EPARSE,
				    "unknown section '%s' in connection '%s' (local*, remote* "
				    "and children are supported)",
				    name, c->path[1]);
			vici_add_section_start(&c->cur, name);
		} else if (d == 3 && !strcmp(c->path[2], "children")) {
			vici_add_section_start(&c->cur, name);
		} else {
			return fail(c, SG_EPARSE, "unknown section '%s' in '%s'", name,
				    c->path[d - 1]);
		}
	} else { /* secrets */
		if (d != 1)
			return fail(c, SG_EPARSE, "unknown section '%s' in secret '%s'", name,
				    c->path[1]);
		if (!prefix_name(name, "ike") && !prefix_name(name, "private") &&
		    !prefix_name(name, "rsa") && !prefix_name(name, "ecdsa"))
			return fail(c, SG_EPARSE,
				    "unsupported secret type '%s' (ike, private, rsa and ecdsa are "
				    "supported)",
				    name);
		c->sec_len = 0, c->sec_have = false, c->sec_nids = 0;
		sg_memzero(c->sec_data, sizeof(c->sec_data));
		c->sec_pass_len = 0, c->sec_pass_have = false;
		sg_memzero(c->sec_pass, sizeof(c->sec_pass));
		c->in_item = true;
	}
	size_t n = strlen(name); /* name_ok: under 64 */
	memcpy(c->path[d], name, n < sizeof(c->path[d]) ? n + 1 : 0);
	c->nkeys[d + 1] = 0; /* d < SWANCTL_MAX_DEPTH here */
	c->depth++;
	return 0;
}

static int close_section(struct swanctl_conf *c)
{
	if (!c->depth)
		return fail(c, SG_EPARSE, "'}' without an open section");
	unsigned d = --c->depth;
	const char *top = c->path[0];
	if (d == 0)
		return 0;
	if (!strcmp(top, "connections")) {
		vici_add_section_end(&c->cur);
		if (d == 1) {
			c->in_item = false;
			return add_item(c, "load-conn", c->path[1]);
		}
		return 0;
	}
	if (!strcmp(top, "authorities")) {
		/* A CA certificate, by a file name (cacert: under x509ca, as swanctl reads it;
		 * file: an absolute path) the caller reads: the parser does no I/O. */
		bool has = false;
		for (unsigned i = 0; i < c->nkeys[2]; i++)
			has |= !strcmp(c->keys[2][i], "cacert") || !strcmp(c->keys[2][i], "file");
		if (!has)
			return fail(c, SG_EPARSE, "authority '%s' has no cacert or file",
				    c->path[1]);
		vici_add_section_end(&c->cur);
		c->in_item = false;
		return add_item(c, "load-authority", c->path[1]);
	}
	c->in_item = false;
	vici_builder_free(&c->cur);
	vici_builder_init(&c->cur);
	if (!prefix_name(c->path[1], "ike")) {
		/* A private key file: the daemon reads it (relative to its private, rsa or ecdsa
		 * directory, as swanctl does) and loads it as VICI's load-key. */
		if (!c->sec_have)
			return fail(c, SG_EPARSE, "secret '%s' has no 'file' key", c->path[1]);
		const char *t = prefix_name(c->path[1], "rsa")	   ? "rsa"
				: prefix_name(c->path[1], "ecdsa") ? "ecdsa"
								   : "private";
		vici_add_kv_str(&c->cur, "type", t);
		vici_add_kv(&c->cur, "file", c->sec_data, c->sec_len);
		/* An encrypted key's passphrase (swanctl's `secret` in these sections): only
		 * the daemon's file reader sees it, never a VICI peer. */
		if (c->sec_pass_have)
			vici_add_kv(&c->cur, "secret", c->sec_pass, c->sec_pass_len);
		sg_memzero(c->sec_pass, sizeof(c->sec_pass));
		c->sec_pass_len = 0, c->sec_pass_have = false;
		c->sec_have = false;
		c->sec_len = 0;
		return add_item(c, "load-key", c->path[1]);
	}
	/* A shared key: type IKE, its data, its owners (identities). */
	if (!c->sec_have)
		return fail(c, SG_EPARSE, "secret '%s' has no 'secret' key", c->path[1]);
	vici_add_kv_str(&c->cur, "id", c->path[1]);
	vici_add_kv_str(&c->cur, "type", "IKE");
	vici_add_kv(&c->cur, "data", c->sec_data, c->sec_len);
	vici_add_list_start(&c->cur, "owners");
	for (unsigned i = 0; i < c->sec_nids; i++)
		vici_add_list_item_str(&c->cur, c->sec_ids[i]);
	vici_add_list_end(&c->cur);
	sg_memzero(c->sec_data, sizeof(c->sec_data));
	c->sec_len = 0;
	c->sec_have = false;
	c->sec_nids = 0;
	return add_item(c, "load-shared", c->path[1]);
}

static void add_list(struct vici_builder *b, const char *key, const char *v)
{
	vici_add_list_start(b, key);
	while (*v) {
		const char *comma = strchr(v, ',');
		size_t n = comma ? (size_t)(comma - v) : strlen(v);
		const char *s = v, *e = v + n;
		while (s < e && isspace((unsigned char)*s))
			s++;
		while (e > s && isspace((unsigned char)e[-1]))
			e--;
		if (e > s)
			vici_add_list_item(b, s, (size_t)(e - s));
		v += n + (comma ? 1 : 0);
	}
	vici_add_list_end(b);
}

static int key_value(struct swanctl_conf *c, const char *key, const char *val)
{
	unsigned d = c->depth;
	if (d == 0)
		return fail(c, SG_EPARSE, "key '%s' outside any section", key);
	for (unsigned i = 0; i < c->nkeys[d]; i++)
		if (!strcmp(c->keys[d][i], key))
			return fail(c, SG_EPARSE, "key '%s' given twice in '%s'", key,
				    c->path[d - 1]);
	if (c->nkeys[d] >= SG_ARRAY_LEN(c->keys[d]))
		return fail(c, SG_ERANGE, "more than 32 keys in '%s'", c->path[d - 1]);
	memcpy(c->keys[d][c->nkeys[d]++], key, strlen(key) + 1); /* name_ok: under 64 */
	const char *top = c->path[0];
	if (!strcmp(top, "authorities")) {
		if (d != 2)
			return fail(c, SG_EPARSE, "key '%s' directly in 'authorities'", key);
		if (!strcmp(key, "crl_uris") || !strcmp(key, "ocsp_uris"))
			return fail(c, SG_EPARSE,
				    "%s: revocation checking (CRL and OCSP) is not supported; "
				    "remove the key to use the CA without it",
				    key);
		if (!strcmp(key, "cert_uri_base"))
			return fail(c, SG_EPARSE,
				    "cert_uri_base: hash-and-URL certificates are not supported");
		if (!strcmp(key, "handle") || !strcmp(key, "slot") || !strcmp(key, "module"))
			return fail(c, SG_EPARSE, "%s: PKCS#11 tokens are not supported", key);
		if (strcmp(key, "cacert") && strcmp(key, "file"))
			return fail(c, SG_EPARSE, "unknown key '%s' in authority '%s'", key,
				    c->path[1]);
		for (unsigned i = 0; i + 1 < c->nkeys[d]; i++)
			if (!strcmp(c->keys[d][i], "cacert") || !strcmp(c->keys[d][i], "file"))
				return fail(c, SG_EPARSE,
					    "authority '%s': cacert and file both name its "
					    "certificate",
					    c->path[1]);
		if (!*val)
			return fail(c, SG_EPARSE, "%s of authority '%s' is empty", key,
				    c->path[1]);
		if (!strcmp(key, "file") && val[0] != '/')
			return fail(c, SG_EPARSE, "file of authority '%s' must be an absolute path",
				    c->path[1]);
		vici_add_kv_str(&c->cur, key, val);
		return c->cur.err ? fail(c, c->cur.err, "%s", c->cur.why) : 0;
	}
	if (!strcmp(top, "secrets")) {
		if (d != 2)
			return fail(c, SG_EPARSE, "key '%s' directly in 'secrets'", key);
		if (!prefix_name(c->path[1], "ike")) {
			if (!strcmp(key, "secret")) {
				/* The passphrase of an encrypted key, as written (swanctl takes it
				 * as it is). */
				size_t n = strlen(val);
				if (!n || n >= sizeof(c->sec_pass))
					return fail(
					    c, SG_EPARSE,
					    "secret of '%s' is empty or not under %zu bytes",
					    c->path[1], sizeof(c->sec_pass));
				memcpy(c->sec_pass, val, n);
				c->sec_pass_len = n;
				c->sec_pass_have = true;
				return 0;
			}
			if (strcmp(key, "file"))
				return fail(c, SG_EPARSE,
					    "unknown or unsupported key '%s' in '%s' (file and "
					    "secret are supported)",
					    key, c->path[1]);
			size_t n = strlen(val);
			if (!n || n >= sizeof(c->sec_data))
				return fail(c, SG_EPARSE, "bad file name in '%s'", c->path[1]);
			memcpy(c->sec_data, val, n);
			c->sec_len = n;
			c->sec_have = true;
			return 0;
		}
		if (!strcmp(key, "secret")) {
			if (secret_bytes(val, c->sec_data, sizeof(c->sec_data), &c->sec_len))
				return fail(
				    c, SG_EPARSE,
				    "secret of '%s' is not valid 0x hex, 0s base64 or under "
				    "512 bytes",
				    c->path[1]);
			c->sec_have = true;
			return 0;
		}
		if (prefix_name(key, "id") || !strncmp(key, "id", 2)) {
			if (c->sec_nids >= SG_ARRAY_LEN(c->sec_ids) ||
			    strlen(val) >= sizeof(c->sec_ids[0]))
				return fail(c, SG_ERANGE, "too many or too long ids in secret '%s'",
					    c->path[1]);
			snprintf(c->sec_ids[c->sec_nids++], sizeof(c->sec_ids[0]), "%s", val);
			return 0;
		}
		return fail(c, SG_EPARSE, "unknown key '%s' in secret '%s'", key, c->path[1]);
	}
	bool ok = (d == 2 && in(conn_keys, key)) ||
		  (d == 3 && strcmp(c->path[2], "children") && in(auth_keys, key)) ||
		  (d == 4 && !strcmp(c->path[2], "children") && in(child_keys, key));
	if (!ok)
		return fail(c, SG_EPARSE, "unknown or unsupported key '%s' in '%s'", key,
			    c->path[d - 1]);
	if (in(list_keys, key))
		add_list(&c->cur, key, val);
	else
		vici_add_kv_str(&c->cur, key, val);
	return c->cur.err ? fail(c, c->cur.err, "%s", c->cur.why) : 0;
}

int swanctl_feed(struct swanctl_conf *c, const char *line, size_t len)
{
	char buf[SWANCTL_MAX_LINE];
	char val[SWANCTL_MAX_LINE];
	c->line++;
	if (len >= sizeof(buf))
		return fail(c, SG_ERANGE, "line longer than %d bytes", SWANCTL_MAX_LINE - 1);
	if (memchr(line, 0, len))
		return fail(c, SG_EPARSE, "NUL byte in the line");
	memcpy(buf, line, len);
	buf[len] = 0;
	if (len && buf[len - 1] == '\r')
		buf[--len] = 0;
	char *s = buf;
	while (isspace((unsigned char)*s))
		s++;
	if (!*s || *s == '#')
		return 0;
	if (*s == '}') {
		s++;
		while (isspace((unsigned char)*s))
			s++;
		if (*s && *s != '#')
			return fail(c, SG_EPARSE, "text after '}' (one statement per line)");
		return close_section(c);
	}
	char *name = s;
	while (*s && !isspace((unsigned char)*s) && *s != '=' && *s != '{')
		s++;
	size_t nl = (size_t)(s - name);
	while (isspace((unsigned char)*s))
		s++;
	if (*s == '{') {
		char *rest = s + 1;
		while (isspace((unsigned char)*rest))
			rest++;
		if (*rest && *rest != '#')
			return fail(c, SG_EPARSE, "text after '{' (one statement per line)");
		name[nl] = 0;
		if (!name_ok(name, nl))
			return fail(c, SG_EPARSE, "bad section name");
		return open_section(c, name);
	}
	if (*s != '=')
		return fail(c, SG_EPARSE, "expected 'name {', 'key = value' or '}'");
	name[nl] = 0;
	if (!name_ok(name, nl))
		return fail(c, SG_EPARSE, "bad key name");
	s++;
	while (isspace((unsigned char)*s))
		s++;
	size_t o = 0;
	if (*s == '"') {
		for (s++; *s && *s != '"'; s++) {
			char ch = *s;
			if (ch == '\\') {
				s++;
				ch = *s == 'n' ? '\n' : *s == 't' ? '\t' : *s;
				if (!*s)
					break;
			}
			val[o++] = ch;
		}
		if (*s != '"')
			return fail(c, SG_EPARSE, "unterminated quoted value of '%s'", name);
		s++;
		while (isspace((unsigned char)*s))
			s++;
		if (*s && *s != '#')
			return fail(c, SG_EPARSE, "text after the quoted value of '%s'", name);
	} else {
		char *hash = strchr(s, '#');
		if (hash)
			*hash = 0;
		size_t n = strlen(s);
		while (n && isspace((unsigned char)s[n - 1]))
			n--;
		memcpy(val, s, n);
		o = n;
	}
	val[o] = 0;
	int err = key_value(c, name, val);
	sg_memzero(val, sizeof(val)); /* may be a secret */
	sg_memzero(buf, sizeof(buf));
	return err;
}

int swanctl_finish(struct swanctl_conf *c)
{
	if (c->depth)
		return fail(c, SG_EPARSE, "section '%s' not closed at the end of the file",
			    c->path[c->depth - 1]);
	return 0;
}
