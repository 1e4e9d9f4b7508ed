/* A connection's VICI message into the core's configuration (iked.h). The keys are charon's
 * (swanctl.conf(5)); the subset taken is documented in docs/IKE.md. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <secureguard/sg_errors.h>

#include "crypto/pki.h"
#include "iked/iked.h"

static int bad(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return SG_EINVAL;
}

int iked_duration(const char *s, uint64_t *ns)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	uint64_t mult = 1;
	if (end == s)
		return SG_EINVAL;
	switch (*end) {
	case 0:
	case 's':
		break;
	case 'm':
		mult = 60;
		break;
	case 'h':
		mult = 3600;
		break;
	case 'd':
		mult = 86400;
		break;
	default:
		return SG_EINVAL;
	}
	if (*end && end[1])
		return SG_EINVAL;
	if (v > UINT64_MAX / 1000000000ull / mult)
		return SG_EINVAL;
	*ns = (uint64_t)v * mult * 1000000000ull;
	return 0;
}

static int count_value(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	uint64_t mult = 1;
	if (end == s)
		return SG_EINVAL;
	if (*end == 'k' || *end == 'K')
		mult = 1024, end++;
	else if (*end == 'm' || *end == 'M')
		mult = 1024 * 1024, end++;
	else if (*end == 'g' || *end == 'G')
		mult = 1024ull * 1024 * 1024, end++;
	if (*end || v > UINT64_MAX / mult)
		return SG_EINVAL;
	*out = v * mult;
	return 0;
}

static int hex_bytes(const char *s, uint8_t *out, size_t cap, size_t *len)
{
	size_t n = strlen(s);
	if (!n || n % 2 || n / 2 > cap)
		return SG_EINVAL;
	for (size_t i = 0; i < n / 2; i++) {
		char b[3] = {s[2 * i], s[2 * i + 1], 0};
		char *end;
		if (!isxdigit((unsigned char)b[0]) || !isxdigit((unsigned char)b[1]))
			return SG_EINVAL;
		out[i] = (uint8_t)strtoul(b, &end, 16);
	}
	*len = n / 2;
	return 0;
}

static int id_text(struct ike_identity *id, uint8_t type, const char *s)
{
	size_t n = strlen(s);
	if (!n || n > 255)
		return SG_EINVAL;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return SG_EINVAL;
	id->type = type;
	id->len = (uint16_t)n;
	memcpy(id->data, s, n);
	return 0;
}

static int id_dn(struct ike_identity *id, const char *s)
{
	size_t len;
	if (s[0] == '#') { /* asn1dn:#hex: the DER itself */
		if (hex_bytes(s + 1, id->data, sizeof(id->data), &len) || !sg_dn_valid(id->data, len))
			return SG_EINVAL;
	} else if (sg_dn_from_text(s, id->data, sizeof(id->data), &len, NULL)) {
		return SG_EINVAL;
	}
	id->type = IKE_ID_DER_ASN1_DN;
	id->len = (uint16_t)len;
	return 0;
}

static int id_addr(struct ike_identity *id, int fam, const char *s)
{
	if (inet_pton(fam, s, id->data) != 1)
		return SG_EINVAL;
	id->type = fam == AF_INET ? IKE_ID_IPV4_ADDR : IKE_ID_IPV6_ADDR;
	id->len = fam == AF_INET ? 4 : 16;
	return 0;
}

static int id_keyid(struct ike_identity *id, const char *s)
{
	size_t len;
	if (s[0] == '#') {
		if (hex_bytes(s + 1, id->data, sizeof(id->data), &len))
			return SG_EINVAL;
		id->len = (uint16_t)len;
	} else {
		len = strlen(s);
		if (!len || len > sizeof(id->data))
			return SG_EINVAL;
		memcpy(id->data, s, len);
		id->len = (uint16_t)len;
	}
	id->type = IKE_ID_KEY_ID;
	return 0;
}

/* strongSwan's identification_create_from_string, for the types IKEv2 carries. */
int iked_identity_parse(const char *s, struct ike_identity *id)
{
	static const struct {
		const char *prefix;
		uint8_t type;
	} prefixes[] = {
	    {"ipv4:", IKE_ID_IPV4_ADDR}, {"ipv6:", IKE_ID_IPV6_ADDR},
	    {"rfc822:", IKE_ID_RFC822_ADDR}, {"email:", IKE_ID_RFC822_ADDR},
	    {"userfqdn:", IKE_ID_RFC822_ADDR}, {"fqdn:", IKE_ID_FQDN},
	    {"dns:", IKE_ID_FQDN}, {"asn1dn:", IKE_ID_DER_ASN1_DN},
	    {"keyid:", IKE_ID_KEY_ID},
	};
	memset(id, 0, sizeof(*id));
	if (strlen(s) > 1024)
		return SG_EINVAL;
	for (size_t i = 0; i < SG_ARRAY_LEN(prefixes); i++) {
		size_t pl = strlen(prefixes[i].prefix);
		if (strncasecmp(s, prefixes[i].prefix, pl))
			continue;
		const char *v = s + pl;
		switch (prefixes[i].type) {
		case IKE_ID_IPV4_ADDR:
			return id_addr(id, AF_INET, v);
		case IKE_ID_IPV6_ADDR:
			return id_addr(id, AF_INET6, v);
		case IKE_ID_DER_ASN1_DN:
			return id_dn(id, v);
		case IKE_ID_KEY_ID:
			return id_keyid(id, v);
		default:
			return id_text(id, prefixes[i].type, v);
		}
	}
	if (!strcmp(s, "") || !strcmp(s, "%any") || !strcmp(s, "%any6") || !strcmp(s, "*") ||
	    !strcmp(s, "0.0.0.0") || !strcmp(s, "::") || !strcmp(s, "0::0")) {
		id->type = IKE_ID_ANY;
		return 0;
	}
	if (strchr(s, '=')) /* a distinguished name, "C=CH, O=..., CN=..." */
		return id_dn(id, s);
	if (!strchr(s, '@')) {
		if (id_addr(id, AF_INET, s) == 0 || id_addr(id, AF_INET6, s) == 0)
			return 0;
		if (strchr(s, ':')) /* neither address nor name: strongSwan takes a key id */
			return id_keyid(id, s);
		return id_text(id, IKE_ID_FQDN, s);
	}
	if (s[0] == '@') {
		if (s[1] == '#')
			return id_keyid(id, s + 1);
		if (s[1] == '@')
			return id_text(id, IKE_ID_RFC822_ADDR, s + 2);
		return id_text(id, IKE_ID_FQDN, s + 1); /* "@name": an FQDN taken as it is */
	}
	return id_text(id, IKE_ID_RFC822_ADDR, s);
}

const char *iked_identity_str(const struct ike_identity *id, char *buf, size_t size)
{
	switch (id->type) {
	case IKE_ID_ANY:
		snprintf(buf, size, "%%any");
		break;
	case IKE_ID_IPV4_ADDR:
	case IKE_ID_IPV6_ADDR:
		if (!inet_ntop(id->type == IKE_ID_IPV4_ADDR ? AF_INET : AF_INET6, id->data, buf,
			       (socklen_t)size))
			snprintf(buf, size, "?");
		break;
	case IKE_ID_DER_ASN1_DN:
		sg_dn_to_text(id->data, id->len, buf, size);
		break;
	case IKE_ID_KEY_ID: {
		bool text = true;
		for (size_t i = 0; i < id->len; i++)
			text &= id->data[i] >= 0x20 && id->data[i] < 0x7f;
		if (text) {
			snprintf(buf, size, "%.*s", (int)id->len, (const char *)id->data);
			break;
		}
		size_t at = 0;
		if (size)
			buf[0] = 0;
		for (size_t i = 0; i < id->len && at + 3 < size; i++, at += 2)
			snprintf(buf + at, size - at, "%02x", id->data[i]);
		break;
	}
	default:
		snprintf(buf, size, "%.*s", (int)id->len, (const char *)id->data);
		break;
	}
	return buf;
}

/* "10.1.0.0/16" or "10.1.0.1" (a /32) into a selector range. */
static int ts_parse(const char *s, struct ike_ts_cfg *t)
{
	char a[64];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	unsigned long plen;
	memset(t, 0, sizeof(*t));
	if (n >= sizeof(a))
		return SG_EINVAL;
	memcpy(a, s, n);
	a[n] = 0;
	uint8_t addr[16];
	size_t al;
	if (inet_pton(AF_INET, a, addr) == 1)
		al = 4, t->type = IKE_TS_IPV4_ADDR_RANGE;
	else if (inet_pton(AF_INET6, a, addr) == 1)
		al = 16, t->type = IKE_TS_IPV6_ADDR_RANGE;
	else
		return SG_EINVAL;
	plen = al * 8;
	if (slash) {
		char *end;
		plen = strtoul(slash + 1, &end, 10);
		if (*end || end == slash + 1 || plen > al * 8)
			return SG_EINVAL;
	}
	for (size_t i = 0; i < al; i++) {
		unsigned bits = plen > i * 8 ? (unsigned)SG_MIN(8u, plen - i * 8) : 0;
		uint8_t mask = bits ? (uint8_t)(0xff << (8 - bits)) : 0;
		t->start[i] = addr[i] & mask;
		t->end[i] = (uint8_t)(addr[i] | (uint8_t)~mask);
	}
	t->port_end = 65535;
	return 0;
}

/* One remote_addrs entry: an address, a prefix ("10.0.0.0/8") or a range ("10.0.0.1-10.0.0.9");
 * %any, %any4, %any6 and the all-zero prefixes set *any. 0 or SG_EINVAL. */
static int addr_item(const char *s, struct ike_addr_range *r, bool *any)
{
	char a[64], b[64];
	memset(r, 0, sizeof(*r));
	*any = false;
	if (!strcmp(s, "%any") || !strcmp(s, "%any4") || !strcmp(s, "%any6") ||
	    !strcmp(s, "0.0.0.0/0") || !strcmp(s, "::/0")) {
		*any = true;
		return 0;
	}
	const char *dash = strchr(s, '-');
	if (dash) {
		size_t n = (size_t)(dash - s);
		if (n >= sizeof(a) || strlen(dash + 1) >= sizeof(b))
			return SG_EINVAL;
		memcpy(a, s, n);
		a[n] = 0;
		snprintf(b, sizeof(b), "%s", dash + 1);
		r->family = strchr(a, ':') ? AF_INET6 : AF_INET;
		size_t al = r->family == AF_INET ? 4 : 16;
		if (inet_pton(r->family, a, r->start) != 1 || inet_pton(r->family, b, r->end) != 1 ||
		    memcmp(r->start, r->end, al) > 0)
			return SG_EINVAL;
		r->single = !memcmp(r->start, r->end, al);
		return 0;
	}
	struct ike_ts_cfg t;
	if (ts_parse(s, &t))
		return SG_EINVAL;
	r->family = t.type == IKE_TS_IPV4_ADDR_RANGE ? AF_INET : AF_INET6;
	memcpy(r->start, t.start, 16);
	memcpy(r->end, t.end, 16);
	r->single = !memcmp(t.start, t.end, 16);
	return 0;
}

/* A DNS host name (RFC 1123 2.1): labels of letters, digits and hyphens, not starting or ending
 * with a hyphen, at most 63 bytes each and 253 in all, with a letter somewhere (so no range or
 * address reads as one). */
static bool hostname_ok(const char *s)
{
	size_t n = strlen(s), label = 0;
	bool alpha = false;
	if (!n || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (ch == '.') {
			if (!label || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)ch) && ch != '-')
			return false;
		if (ch == '-' && !label)
			return false;
		alpha |= isalpha((unsigned char)ch) != 0;
		if (++label > 63)
			return false;
	}
	return alpha && label && s[n - 1] != '-';
}

static int ts_list(const struct vici_node *sec, const char *key, struct ike_ts_cfg *out,
		   unsigned *n, char *err, size_t errlen)
{
	const struct vici_node *l = vici_find(sec, key);
	*n = 0;
	if (!l)
		return bad(err, errlen,
			   "child '%s' has no %s (dynamic selectors are not supported)", sec->name,
			   key);
	if (l->type != VICI_NODE_LIST && l->type != VICI_NODE_KV)
		return bad(err, errlen, "%s is not a list", key);
	for (const struct vici_node *i = l->type == VICI_NODE_LIST ? l->child : l; i;
	     i = l->type == VICI_NODE_LIST ? i->next : NULL) {
		if (*n >= IKE_MAX_TS_CFG)
			return bad(err, errlen, "more than %d entries in %s", IKE_MAX_TS_CFG, key);
		if (!vici_node_is_str(i) || ts_parse((const char *)i->value, &out[*n]))
			return bad(err, errlen,
				   "%s: '%.64s' is not an address or prefix (dynamic and "
				   "protocol/port selectors are not supported)",
				   key, vici_node_is_str(i) ? (const char *)i->value : "?");
		(*n)++;
	}
	return *n ? 0 : bad(err, errlen, "%s is empty", key);
}

static int props(const struct vici_node *sec, const char *key, uint8_t proto, bool fips,
		 struct ike_prop_cfg *out, unsigned *n, char *err, size_t errlen)
{
	const struct vici_node *l = vici_find(sec, key);
	*n = 0;
	if (!l) {
		ike_prop_default(proto, fips, &out[0]);
		*n = 1;
		return 0;
	}
	for (const struct vici_node *i = l->type == VICI_NODE_LIST ? l->child : l; i;
	     i = l->type == VICI_NODE_LIST ? i->next : NULL) {
		const char *why = NULL;
		if (!vici_node_is_str(i))
			return bad(err, errlen, "%s: not text", key);
		if (!strcmp((const char *)i->value, "default")) {
			if (*n >= IKE_PROP_MAX)
				return bad(err, errlen, "more than %d proposals in %s",
					   IKE_PROP_MAX, key);
			ike_prop_default(proto, fips, &out[(*n)++]);
			continue;
		}
		if (*n >= IKE_PROP_MAX)
			return bad(err, errlen, "more than %d proposals in %s", IKE_PROP_MAX, key);
		if (ike_prop_parse((const char *)i->value, proto, fips, &out[*n], &why))
			return bad(err, errlen, "%s: '%.100s': %s", key, (const char *)i->value,
				   why);
		(*n)++;
	}
	return *n ? 0 : bad(err, errlen, "%s is empty", key);
}

static bool yes(const char *v)
{
	return v && (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1"));
}

static int conn_from_vici(const struct vici_node *root, const char *base_dir, struct iked_conn *out,
			  char *err, size_t errlen);

static const char *const conn_known[] = {
    "version",	 "local_addrs", "remote_addrs", "local_port",  "remote_port", "proposals",
    "dpd_delay", "dpd_timeout", "rekey_time",	"reauth_time", "encap",	      "fragmentation",
    "mobike",	 "unique",	"keyingtries",	"fips",	       "children",    NULL};
static const char *const child_known[] = {
    "local_ts",	  "remote_ts",	   "esp_proposals", "mode",	 "start_action",
    "dpd_action", "close_action",  "rekey_time",    "life_time", "rekey_bytes",
    "life_bytes", "rekey_packets", "life_packets",  NULL};

static bool known(const char *const *set, const char *k)
{
	for (; *set; set++)
		if (!strcmp(*set, k))
			return true;
	return false;
}

int iked_read_file(const char *path, uint8_t **data, size_t *len)
{
	FILE *f = fopen(path, "rb");
	*data = NULL;
	if (!f)
		return -errno;
	uint8_t *buf = malloc(1 << 20);
	size_t n = buf ? fread(buf, 1, 1 << 20, f) : 0;
	int err = !buf ? -ENOMEM : ferror(f) ? -EIO : !feof(f) ? -EFBIG : 0;
	fclose(f);
	if (err) {
		free(buf);
		return err;
	}
	*data = buf;
	*len = n;
	return 0;
}

void iked_conn_release(struct iked_conn *c)
{
	sg_cert_free(c->cert);
	for (unsigned i = 0; i < c->ncacerts; i++)
		sg_cert_free(c->cacerts[i]);
	c->cert = NULL;
	c->ncacerts = 0;
}

/* A certificate given as data, or as a file name under base_dir/sub. */
static int cert_item(const struct vici_node *i, const char *base_dir, const char *sub,
		     struct sg_cert **out, char *err, size_t errlen)
{
	if (sg_cert_load(i->value, i->value_len, out) == 0)
		return 0;
	if (!base_dir || !vici_node_is_str(i))
		return bad(err, errlen, "a certificate that is neither PEM nor DER");
	char path[512];
	const char *name = (const char *)i->value;
	if (name[0] == '/')
		snprintf(path, sizeof(path), "%s", name);
	else
		snprintf(path, sizeof(path), "%s/%s/%s", base_dir, sub, name);
	uint8_t *data;
	size_t len;
	int rc = iked_read_file(path, &data, &len);
	if (rc)
		return bad(err, errlen, "certificate %.200s: %s", path, strerror(-rc));
	rc = sg_cert_load(data, len, out);
	free(data);
	return rc ? bad(err, errlen, "certificate %.200s: neither PEM nor DER", path) : 0;
}

int iked_conn_from_vici(const struct vici_node *root, const char *base_dir, struct iked_conn *out,
			char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	int rc = conn_from_vici(root, base_dir, out, err, errlen);
	if (rc)
		iked_conn_release(out);
	return rc;
}

/* One child section into cfg->children[cfg->nchildren++] and out->child[] (what only the
 * daemon uses: start_action, byte and packet lifetimes). */
static int child_from_vici(const struct vici_node *ch, struct ike_peer_cfg *cfg,
			   struct iked_conn *out, char *err, size_t errlen)
{
	const char *v;
	int e;
	for (const struct vici_node *k = ch->child; k; k = k->next)
		if (!known(child_known, k->name))
			return bad(err, errlen, "unknown option '%s' in child '%s'", k->name,
				   ch->name);
	struct ike_child_cfg *cc = &cfg->children[cfg->nchildren];
	struct iked_child_opts *co = &out->child[cfg->nchildren];
	if (!ch->name[0] || strlen(ch->name) >= sizeof(cc->name))
		return bad(err, errlen, "bad child name");
	for (unsigned i = 0; i < cfg->nchildren; i++)
		if (!strcmp(cfg->children[i].name, ch->name))
			return bad(err, errlen, "child '%s' given twice", ch->name);
	snprintf(cc->name, sizeof(cc->name), "%s", ch->name);
	if ((e = ts_list(ch, "local_ts", cc->local_ts, &cc->nlocal_ts, err, errlen)) ||
	    (e = ts_list(ch, "remote_ts", cc->remote_ts, &cc->nremote_ts, err, errlen)) ||
	    (e = props(ch, "esp_proposals", IKE_PROTO_ESP, cfg->fips, cc->props, &cc->nprops, err,
		       errlen)))
		return e;
	if ((v = vici_get_str(ch, "mode")) && strcmp(v, "tunnel") && strcmp(v, "transport"))
		return bad(err, errlen, "mode = %s: tunnel and transport are supported", v);
	cc->transport = v && !strcmp(v, "transport");
	if ((v = vici_get_str(ch, "start_action"))) {
		if (!strcmp(v, "start"))
			co->start = true;
		else if (!strcmp(v, "trap"))
			co->trap = true;
		else if (strcmp(v, "none"))
			return bad(err, errlen,
				   "start_action = %s: none, trap and start are supported", v);
	}
	if ((co->start || co->trap) && !out->has_remote)
		return bad(err, errlen, "start_action = %s needs a remote address",
			   co->start ? "start" : "trap");
	if ((v = vici_get_str(ch, "dpd_action"))) {
		if (!strcmp(v, "restart"))
			cc->dpd_action = IKE_DPD_RESTART;
		else if (strcmp(v, "clear") && strcmp(v, "none"))
			return bad(err, errlen, "dpd_action = %s: clear and restart are supported",
				   v);
	}
	cc->rekey_time_ns = 3600ull * 1000000000ull; /* charon's default: 1 h */
	cc->life_time_ns = cc->rekey_time_ns * 11 / 10;
	if ((v = vici_get_str(ch, "rekey_time")) && iked_duration(v, &cc->rekey_time_ns))
		return bad(err, errlen, "rekey_time: bad duration '%s'", v);
	if (v)
		cc->life_time_ns = cc->rekey_time_ns * 11 / 10;
	if ((v = vici_get_str(ch, "life_time")) && iked_duration(v, &cc->life_time_ns))
		return bad(err, errlen, "life_time: bad duration '%s'", v);
	if (cc->rekey_time_ns && cc->life_time_ns && cc->life_time_ns < cc->rekey_time_ns)
		return bad(err, errlen, "life_time is shorter than rekey_time");
	if (((v = vici_get_str(ch, "rekey_bytes")) && count_value(v, &co->rekey_bytes)) ||
	    ((v = vici_get_str(ch, "life_bytes")) && count_value(v, &co->life_bytes)) ||
	    ((v = vici_get_str(ch, "rekey_packets")) && count_value(v, &co->rekey_packets)) ||
	    ((v = vici_get_str(ch, "life_packets")) && count_value(v, &co->life_packets)))
		return bad(err, errlen, "bad byte or packet count '%s'", v);
	cfg->nchildren++;
	return 0;
}

static int conn_from_vici(const struct vici_node *root, const char *base_dir, struct iked_conn *out,
			  char *err, size_t errlen)
{
	const struct vici_node *c = root->child;
	if (!c || c->next || c->type != VICI_NODE_SECTION)
		return bad(err, errlen, "load-conn needs exactly one connection section");
	if (!c->name[0] || strlen(c->name) >= sizeof(out->cfg.name))
		return bad(err, errlen, "bad connection name");
	struct ike_peer_cfg *cfg = &out->cfg;
	snprintf(cfg->name, sizeof(cfg->name), "%s", c->name);
	const char *v;
	/* Unknown keys are refused, as charon refuses them. */
	for (const struct vici_node *k = c->child; k; k = k->next)
		if (!known(conn_known, k->name) && strncmp(k->name, "local", 5) &&
		    strncmp(k->name, "remote", 6))
			return bad(err, errlen, "unknown option '%s' in connection '%s'", k->name,
				   c->name);
	cfg->fips = yes(vici_get_str(c, "fips"));
	if ((v = vici_get_str(c, "version")) && strcmp(v, "0") && strcmp(v, "2"))
		return bad(err, errlen, "version %s: only IKEv2 is supported", v);
	if ((v = vici_get_str(c, "mobike")) && yes(v))
		return bad(err, errlen, "mobike is not supported (set mobike = no)");
	if ((v = vici_get_str(c, "reauth_time")) && strcmp(v, "0") && strcmp(v, "0s"))
		return bad(err, errlen, "reauth_time is not supported (rekeying is)");
	/* remote_addrs: who may initiate it (addresses, prefixes, ranges; %any), and the first
	 * one, if an address, is where we initiate to. */
	const struct vici_node *ra = vici_find(c, "remote_addrs");
	bool any = !ra;
	size_t at = 0;
	for (const struct vici_node *i = ra ? (ra->type == VICI_NODE_LIST ? ra->child : ra) : NULL;
	     i; i = ra->type == VICI_NODE_LIST ? i->next : NULL) {
		const char *a = vici_node_is_str(i) ? (const char *)i->value : "";
		struct ike_addr_range r;
		bool item_any = false;
		bool first = i == (ra->type == VICI_NODE_LIST ? ra->child : ra);
		if (addr_item(a, &r, &item_any)) {
			/* A host name: resolved by the daemon when the connection is loaded and
			 * whenever it initiates (charon resolves at initiation too). Until then it
			 * matches no address. */
			if (!hostname_ok(a))
				return bad(err, errlen,
					   "remote_addrs: '%.64s' is not an address, prefix, range "
					   "or host name",
					   a);
			if (out->nhosts >= IKED_MAX_HOSTS)
				return bad(err, errlen, "remote_addrs: more than %d host names",
					   IKED_MAX_HOSTS);
			snprintf(out->hosts[out->nhosts++], sizeof(out->hosts[0]), "%s", a);
			if (first) {
				out->host_first = true;
				out->has_remote = true;
			}
		} else if (item_any) {
			any = true;
		} else if (cfg->nremote_addrs >= IKE_MAX_ADDRS) {
			return bad(err, errlen, "remote_addrs: more than %d entries",
				   IKE_MAX_ADDRS);
		} else {
			if (first && r.single) {
				cfg->remote.family = r.family;
				memcpy(cfg->remote.addr, r.start, 16);
				cfg->remote.port = IKE_PORT;
				out->has_remote = true;
			}
			cfg->remote_addrs[cfg->nremote_addrs++] = r;
		}
		int w = snprintf(out->remote_addrs + at, sizeof(out->remote_addrs) - at, "%s%s",
				 at ? ", " : "", a);
		if (w > 0 && (size_t)w < sizeof(out->remote_addrs) - at)
			at += (size_t)w;
	}
	if (any) {
		cfg->nremote_addrs = 0; /* %any among them: anyone may initiate */
	} else if (out->nhosts) {
		/* The names' addresses come later (iked_resolve); meanwhile an entry of no family
		 * keeps the list from meaning "anyone". */
		if (cfg->nremote_addrs >= IKE_MAX_ADDRS)
			return bad(err, errlen, "remote_addrs: more than %d entries", IKE_MAX_ADDRS);
		out->nliteral = cfg->nremote_addrs;
		memset(&cfg->remote_addrs[cfg->nremote_addrs++], 0, sizeof(cfg->remote_addrs[0]));
	}
	if (!at)
		snprintf(out->remote_addrs, sizeof(out->remote_addrs), "%%any");
	if ((v = vici_get_str(c, "fragmentation"))) {
		if (!strcmp(v, "yes") || !strcmp(v, "force"))
			cfg->fragmentation = IKE_FRAG_YES;
		else if (!strcmp(v, "accept"))
			cfg->fragmentation = IKE_FRAG_ACCEPT;
		else if (!strcmp(v, "no"))
			cfg->fragmentation = IKE_FRAG_NO;
		else
			return bad(err, errlen, "fragmentation = %.32s: yes, accept, force or no", v);
	}
	const struct vici_node *la = vici_find(c, "local_addrs");
	const char *lfirst =
	    la && la->type == VICI_NODE_LIST && la->child && vici_node_is_str(la->child)
		? (const char *)la->child->value
		: "%any";
	snprintf(out->local_addrs, sizeof(out->local_addrs), "%s", lfirst);
	if ((v = vici_get_str(c, "local_port")) && strcmp(v, "500"))
		return bad(err, errlen, "local_port = %s: the daemon listens on 500 and 4500", v);
	if ((v = vici_get_str(c, "remote_port"))) {
		unsigned long p = strtoul(v, NULL, 10);
		if (p == 0 || p > 65535)
			return bad(err, errlen, "remote_port: bad port");
		cfg->remote.port = (uint16_t)p;
		out->remote_port = (uint16_t)p;
	}
	int e =
	    props(c, "proposals", IKE_PROTO_IKE, cfg->fips, cfg->props, &cfg->nprops, err, errlen);
	if (e)
		return e;
	if ((v = vici_get_str(c, "dpd_delay")) && iked_duration(v, &cfg->dpd_delay_ns))
		return bad(err, errlen, "dpd_delay: bad duration '%s'", v);
	if ((v = vici_get_str(c, "dpd_timeout")) && iked_duration(v, &cfg->dpd_timeout_ns))
		return bad(err, errlen, "dpd_timeout: bad duration '%s'", v);
	cfg->rekey_time_ns = 4ull * 3600 * 1000000000ull; /* charon's default */
	if ((v = vici_get_str(c, "rekey_time")) && iked_duration(v, &cfg->rekey_time_ns))
		return bad(err, errlen, "rekey_time: bad duration '%s'", v);
	/* Authentication rounds: one local, one remote, PSK. */
	const struct vici_node *loc = NULL, *rem = NULL;
	for (const struct vici_node *k = c->child; k; k = k->next) {
		if (k->type != VICI_NODE_SECTION || !strcmp(k->name, "children"))
			continue;
		bool is_local = !strncmp(k->name, "local", 5),
		     is_remote = !strncmp(k->name, "remote", 6);
		if (!is_local && !is_remote)
			continue;
		if ((is_local && loc) || (is_remote && rem))
			return bad(err, errlen,
				   "more than one %s authentication round is not supported",
				   is_local ? "local" : "remote");
		for (const struct vici_node *a = k->child; a; a = a->next)
			if (strcmp(a->name, "auth") && strcmp(a->name, "id") &&
			    strcmp(a->name, is_local ? "certs" : "cacerts"))
				return bad(err, errlen,
					   "unknown or unsupported option '%s' in '%s'", a->name,
					   k->name);
		/* strongSwan's public key classes: pubkey (any), rsa, ecdsa, and rsa/pss
		 * (RSASSA-PSS: ours signs with it, theirs must). */
		const char *auth = vici_get_str(k, "auth");
		bool pss = auth && !strcmp(auth, "rsa/pss");
		bool pubkey = auth && (!strcmp(auth, "pubkey") || !strcmp(auth, "rsa") ||
				       !strcmp(auth, "ecdsa") || pss);
		if (auth && strcmp(auth, "psk") && !pubkey)
			return bad(err, errlen,
				   "%s: auth = %s is not supported (psk, pubkey, rsa, ecdsa and "
				   "rsa/pss are)",
				   k->name, auth);
		if (is_local)
			cfg->sign_pss = pss;
		else
			cfg->require_pss = pss;
		if (is_local)
			cfg->local_auth = pubkey ? IKE_AUTHC_PUBKEY : IKE_AUTHC_PSK;
		else
			cfg->remote_auth = pubkey ? IKE_AUTHC_PUBKEY : IKE_AUTHC_PSK;
		const struct vici_node *cl = vici_find(k, is_local ? "certs" : "cacerts");
		if (cl && !pubkey)
			return bad(err, errlen, "%s: certificates need auth = pubkey", k->name);
		for (const struct vici_node *i = cl ? (cl->type == VICI_NODE_LIST ? cl->child : cl)
						    : NULL;
		     i; i = cl->type == VICI_NODE_LIST ? i->next : NULL) {
			struct sg_cert *x;
			int e2 =
			    cert_item(i, base_dir, is_local ? "x509" : "x509ca", &x, err, errlen);
			if (e2)
				return e2;
			if (is_local) {
				if (out->cert) {
					sg_cert_free(x);
					return bad(err, errlen, "%s: one certificate is supported",
						   k->name);
				}
				out->cert = x;
			} else {
				if (out->ncacerts >= IKE_MAX_CAS) {
					sg_cert_free(x);
					return bad(err, errlen, "%s: more than %d CA certificates",
						   k->name, IKE_MAX_CAS);
				}
				out->cacerts[out->ncacerts++] = x;
			}
		}
		if (is_local && pubkey && !out->cert)
			return bad(err, errlen, "%s: auth = pubkey needs certs", k->name);
		if (is_local && pss && !sg_cert_is_rsa(out->cert))
			return bad(err, errlen, "%s: auth = rsa/pss needs an RSA certificate", k->name);
		const char *id = vici_get_str(k, "id");
		struct ike_identity *idp = is_local ? &cfg->local_id : &cfg->remote_id;
		if (id && iked_identity_parse(id, idp))
			return bad(err, errlen,
				   "%s: id '%.100s' is not an identity (an address, FQDN, e-mail "
				   "address, a DN such as \"C=CH, O=Org, CN=name\" with the "
				   "attributes strongSwan knows, or a typed one: fqdn:, email:, "
				   "asn1dn:, keyid:, ipv4:, ipv6:)",
				   k->name, id);
		if (!id)
			idp->type = IKE_ID_ANY; /* the certificate's subject, or any it proves */
		if (idp->type == IKE_ID_ANY && !pubkey)
			return bad(err, errlen, "%s: an id is needed with psk", k->name);
		if (is_local && pubkey && idp->type != IKE_ID_ANY &&
		    !sg_cert_has_id(out->cert, idp->type, idp->data, idp->len))
			return bad(err, errlen, "%s: the certificate does not hold the id '%.64s'",
				   k->name, id);
		if (is_local)
			loc = k;
		else
			rem = k;
	}
	if (!loc || !rem)
		return bad(err, errlen, "connection '%s' needs a local and a remote section",
			   c->name);
	/* The children, one Child SA config each. */
	const struct vici_node *children = vici_find(c, "children");
	const struct vici_node *ch = children ? children->child : NULL;
	if (!ch || ch->type != VICI_NODE_SECTION)
		return bad(err, errlen, "connection '%s' has no child", c->name);
	for (; ch; ch = ch->next) {
		if (ch->type != VICI_NODE_SECTION)
			return bad(err, errlen, "children: '%s' is not a section", ch->name);
		if (cfg->nchildren >= IKE_MAX_CHILD_CFG)
			return bad(err, errlen, "more than %d children in connection '%s'",
				   IKE_MAX_CHILD_CFG, c->name);
		if ((e = child_from_vici(ch, cfg, out, err, errlen)))
			return e;
	}
	return 0;
}
