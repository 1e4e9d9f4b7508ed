/* IKEv2 message and payload codec (ike_msg.h). */
#include <string.h>

#include <secureguard/sg_errors.h>

#include "ike/ike_msg.h"

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

#define BAD(msg)                                                                                   \
	do {                                                                                       \
		*why = (msg);                                                                      \
		return SG_EPARSE;                                                                  \
	} while (0)

static const char *dummy_why;
#define WHY_INIT()                                                                                 \
	do {                                                                                       \
		if (!why)                                                                          \
			why = &dummy_why;                                                          \
	} while (0)

/* ---- message and chain ---------------------------------------------------------------------- */

int ike_parse_header(const uint8_t *buf, size_t len, struct ike_header *h, const char **why)
{
	WHY_INIT();
	if (len < IKE_HDR_LEN)
		BAD("message shorter than the 28-byte IKE header");
	memcpy(h->spi_i, buf, 8);
	memcpy(h->spi_r, buf + 8, 8);
	h->next = buf[16];
	h->version = buf[17];
	h->exchange = buf[18];
	h->flags = buf[19];
	h->msg_id = be32(buf + 20);
	h->length = be32(buf + 24);
	/* RFC 7296 3.1: a major version other than 2 gets INVALID_MAJOR_VERSION; minor ignored. */
	if ((h->version >> 4) != 2)
		BAD("IKE header: major version is not 2");
	if (h->length < IKE_HDR_LEN)
		BAD("IKE header: length below 28");
	if (h->length > len)
		BAD("IKE header: length beyond the datagram");
	if (h->length > IKE_MAX_MSG)
		BAD("IKE header: length above 65535");
	return 0;
}

int ike_parse_chain(struct ike_msg *msg, uint8_t first, const uint8_t *buf, size_t len,
		    size_t base_offset, const char **why)
{
	size_t pos = 0;
	uint8_t next = first;
	WHY_INIT();
	/* The SK entry (if it is the last) is replaced by its content. */
	if (msg->npl &&
	    (msg->pl[msg->npl - 1].type == IKE_PL_SK || msg->pl[msg->npl - 1].type == IKE_PL_SKF))
		msg->npl--;
	while (next != IKE_PL_NONE) {
		if (msg->npl >= IKE_MAX_PAYLOADS)
			BAD("more than 48 payloads");
		if (len - pos < IKE_PAYLOAD_HDR_LEN)
			BAD("payload header runs past the end");
		uint16_t plen = be16(buf + pos + 2);
		if (plen < IKE_PAYLOAD_HDR_LEN)
			BAD("payload length below 4");
		if (plen > len - pos)
			BAD("payload length runs past the end");
		struct ike_payload *p = &msg->pl[msg->npl++];
		p->type = next;
		p->critical = (buf[pos + 1] & 0x80) != 0;
		p->body = buf + pos + IKE_PAYLOAD_HDR_LEN;
		p->len = plen - IKE_PAYLOAD_HDR_LEN;
		p->offset = base_offset + pos;
		uint8_t after = buf[pos];
		pos += plen;
		/* RFC 7296 3.14 / RFC 7383 2.5: the encrypted payload is the last one; its
		 * "next payload" names the first inner payload. */
		if (next == IKE_PL_SK || next == IKE_PL_SKF) {
			if (pos != len)
				BAD("data after the encrypted payload");
			/* Its "next payload" byte (the first inner payload) stays in the raw
			 * message, at p->offset: ike_open_sk reads it there. */
			return 0;
		}
		next = after;
	}
	if (pos != len)
		BAD("bytes after the last payload");
	return 0;
}

int ike_parse(const uint8_t *buf, size_t len, struct ike_msg *msg, const char **why)
{
	WHY_INIT();
	msg->npl = 0;
	int err = ike_parse_header(buf, len, &msg->hdr, why);
	if (err)
		return err;
	msg->raw = buf;
	return ike_parse_chain(msg, msg->hdr.next, buf + IKE_HDR_LEN, msg->hdr.length - IKE_HDR_LEN,
			       IKE_HDR_LEN, why);
}

const struct ike_payload *ike_find_nth(const struct ike_msg *msg, uint8_t type, unsigned n)
{
	for (unsigned i = 0; i < msg->npl; i++)
		if (msg->pl[i].type == type && n-- == 0)
			return &msg->pl[i];
	return NULL;
}

const struct ike_payload *ike_find(const struct ike_msg *msg, uint8_t type)
{
	return ike_find_nth(msg, type, 0);
}

const struct ike_payload *ike_find_notify(const struct ike_msg *msg, uint16_t ntype)
{
	for (unsigned i = 0; i < msg->npl; i++) {
		struct ike_notify n;
		if (msg->pl[i].type == IKE_PL_NOTIFY &&
		    ike_parse_notify(msg->pl[i].body, msg->pl[i].len, &n, NULL) == 0 &&
		    n.type == ntype)
			return &msg->pl[i];
	}
	return NULL;
}

/* ---- payload bodies ------------------------------------------------------------------------- */

static int parse_transform(const uint8_t *p, size_t len, struct ike_transform *t, const char **why)
{
	/* 3.3.2: last/more(1) reserved(1) length(2) type(1) reserved(1) id(2) attributes */
	if (len < 8)
		BAD("SA: transform shorter than 8 bytes");
	t->type = p[4];
	t->id = be16(p + 6);
	t->keylen = 0;
	size_t pos = 8;
	while (pos < len) {
		if (len - pos < 4)
			BAD("SA: transform attribute runs past the transform");
		uint16_t at = be16(p + pos);
		if (!(at & 0x8000))
			BAD("SA: transform attribute in TLV format (only Key Length, TV, is "
			    "known)");
		if ((at & 0x7fff) != IKE_ATTR_KEY_LENGTH)
			BAD("SA: unknown transform attribute");
		if (t->keylen)
			BAD("SA: Key Length attribute repeated");
		t->keylen = be16(p + pos + 2);
		if (t->keylen == 0)
			BAD("SA: Key Length attribute of 0");
		pos += 4;
	}
	if (t->type < IKE_TRANS_ENCR || t->type > IKE_TRANS_ESN)
		BAD("SA: unknown transform type");
	return 0;
}

int ike_parse_sa(const uint8_t *body, size_t len, struct ike_sa_payload *sa, const char **why)
{
	size_t pos = 0;
	WHY_INIT();
	sa->nprops = 0;
	if (len == 0)
		BAD("SA: no proposal");
	for (;;) {
		if (sa->nprops >= IKE_MAX_PROPOSALS)
			BAD("SA: more than 16 proposals");
		if (len - pos < 8)
			BAD("SA: proposal header runs past the payload");
		const uint8_t *p = body + pos;
		uint8_t last = p[0];
		uint16_t plen = be16(p + 2);
		if (last != 0 && last != 2)
			BAD("SA: proposal's last/more field is neither 0 nor 2");
		if (plen < 8 || plen > len - pos)
			BAD("SA: proposal length runs past the payload");
		struct ike_proposal *pr = &sa->props[sa->nprops];
		pr->num = p[4];
		pr->protocol = p[5];
		pr->spi_len = p[6];
		unsigned nt = p[7];
		if (pr->num != sa->nprops + 1)
			BAD("SA: proposals not numbered 1, 2, ... in order");
		if (pr->protocol < IKE_PROTO_IKE || pr->protocol > IKE_PROTO_ESP)
			BAD("SA: unknown protocol");
		if ((pr->protocol == IKE_PROTO_IKE && pr->spi_len != 0 && pr->spi_len != 8) ||
		    (pr->protocol != IKE_PROTO_IKE && pr->spi_len != 4))
			BAD("SA: SPI size does not fit the protocol");
		if (8u + pr->spi_len > plen)
			BAD("SA: SPI runs past the proposal");
		memcpy(pr->spi, p + 8, pr->spi_len);
		if (nt == 0)
			BAD("SA: proposal without transforms");
		if (nt > IKE_MAX_TRANSFORMS)
			BAD("SA: more than 32 transforms in a proposal");
		size_t tpos = 8u + pr->spi_len;
		pr->ntrans = 0;
		for (unsigned i = 0; i < nt; i++) {
			if (plen - tpos < 8)
				BAD("SA: transform header runs past the proposal");
			const uint8_t *t = p + tpos;
			uint16_t tlen = be16(t + 2);
			if (tlen < 8 || tlen > plen - tpos)
				BAD("SA: transform length runs past the proposal");
			if ((t[0] == 0) != (i == nt - 1) || (t[0] != 0 && t[0] != 3))
				BAD("SA: transform's last/more field disagrees with the count");
			int err = parse_transform(t, tlen, &pr->trans[pr->ntrans++], why);
			if (err)
				return err;
			tpos += tlen;
		}
		if (tpos != plen)
			BAD("SA: bytes after the last transform of a proposal");
		sa->nprops++;
		pos += plen;
		if (last == 0)
			break;
	}
	if (pos != len)
		BAD("SA: bytes after the last proposal");
	return 0;
}

int ike_parse_ke(const uint8_t *body, size_t len, struct ike_ke *ke, const char **why)
{
	WHY_INIT();
	if (len < 5)
		BAD("KE: shorter than its 4-byte header and one byte of data");
	ke->group = be16(body);
	ke->data = body + 4;
	ke->len = len - 4;
	return 0;
}

int ike_parse_id(const uint8_t *body, size_t len, struct ike_id *id, const char **why)
{
	WHY_INIT();
	if (len < 5)
		BAD("ID: shorter than its 4-byte header and one byte of data");
	id->type = body[0];
	id->data = body + 4;
	id->len = len - 4;
	id->body = body;
	id->body_len = len;
	switch (id->type) {
	case IKE_ID_IPV4_ADDR:
		if (id->len != 4)
			BAD("ID: an IPv4 address is not 4 bytes");
		break;
	case IKE_ID_IPV6_ADDR:
		if (id->len != 16)
			BAD("ID: an IPv6 address is not 16 bytes");
		break;
	case IKE_ID_FQDN:
	case IKE_ID_RFC822_ADDR:
		if (id->len > 255)
			BAD("ID: name longer than 255 bytes");
		for (size_t i = 0; i < id->len; i++)
			if (id->data[i] < 0x21 || id->data[i] > 0x7e)
				BAD("ID: name with a byte that is not printable ASCII");
		break;
	case IKE_ID_DER_ASN1_DN:
	case IKE_ID_DER_ASN1_GN:
	case IKE_ID_KEY_ID:
		break;
	default:
		BAD("ID: unknown identification type");
	}
	return 0;
}

int ike_parse_auth(const uint8_t *body, size_t len, struct ike_auth *a, const char **why)
{
	WHY_INIT();
	if (len < 5)
		BAD("AUTH: shorter than its 4-byte header and one byte of data");
	a->method = body[0];
	a->data = body + 4;
	a->len = len - 4;
	return 0;
}

int ike_parse_nonce(const uint8_t *body, size_t len, const char **why)
{
	(void)body;
	WHY_INIT();
	if (len < IKE_NONCE_MIN || len > IKE_NONCE_MAX)
		BAD("Nonce: length outside 16..256 bytes");
	return 0;
}

int ike_parse_notify(const uint8_t *body, size_t len, struct ike_notify *n, const char **why)
{
	WHY_INIT();
	if (len < 4)
		BAD("Notify: shorter than its 4-byte header");
	n->protocol = body[0];
	n->spi_len = body[1];
	n->type = be16(body + 2);
	if (n->spi_len > len - 4)
		BAD("Notify: SPI runs past the payload");
	if (n->spi_len != 0 && n->spi_len != 4 && n->spi_len != 8)
		BAD("Notify: SPI size is not 0, 4 or 8");
	n->spi = body + 4;
	n->data = body + 4 + n->spi_len;
	n->len = len - 4 - n->spi_len;
	return 0;
}

int ike_parse_delete(const uint8_t *body, size_t len, struct ike_delete *d, const char **why)
{
	WHY_INIT();
	if (len < 4)
		BAD("Delete: shorter than its 4-byte header");
	d->protocol = body[0];
	d->spi_len = body[1];
	d->nspi = be16(body + 2);
	d->spis = body + 4;
	if (d->protocol == IKE_PROTO_IKE) {
		if (d->spi_len != 0 || d->nspi != 0 || len != 4)
			BAD("Delete: an IKE SA delete carries no SPIs");
		return 0;
	}
	if (d->protocol != IKE_PROTO_ESP && d->protocol != IKE_PROTO_AH)
		BAD("Delete: unknown protocol");
	if (d->spi_len != 4)
		BAD("Delete: ESP/AH SPI size is not 4");
	if (d->nspi == 0 || d->nspi > IKE_MAX_DELETE_SPIS)
		BAD("Delete: number of SPIs outside 1..64");
	if (len - 4 != (size_t)d->nspi * 4)
		BAD("Delete: length does not match the number of SPIs");
	return 0;
}

int ike_parse_ts(const uint8_t *body, size_t len, struct ike_ts_payload *tsp, const char **why)
{
	WHY_INIT();
	tsp->n = 0;
	if (len < 4)
		BAD("TS: shorter than its 4-byte header");
	unsigned n = body[0];
	if (n == 0)
		BAD("TS: no traffic selector");
	if (n > IKE_MAX_TS)
		BAD("TS: more than 16 traffic selectors");
	size_t pos = 4;
	for (unsigned i = 0; i < n; i++) {
		if (len - pos < 8)
			BAD("TS: selector header runs past the payload");
		const uint8_t *p = body + pos;
		struct ike_ts *t = &tsp->ts[i];
		uint16_t slen = be16(p + 2);
		size_t alen;
		t->type = p[0];
		t->proto = p[1];
		if (t->type == IKE_TS_IPV4_ADDR_RANGE)
			alen = 4;
		else if (t->type == IKE_TS_IPV6_ADDR_RANGE)
			alen = 16;
		else
			BAD("TS: unknown selector type");
		if (slen != 8 + 2 * alen)
			BAD("TS: selector length does not fit its type");
		if (slen > len - pos)
			BAD("TS: selector runs past the payload");
		t->port_start = be16(p + 4);
		t->port_end = be16(p + 6);
		memset(t->start, 0, sizeof(t->start));
		memset(t->end, 0, sizeof(t->end));
		memcpy(t->start, p + 8, alen);
		memcpy(t->end, p + 8 + alen, alen);
		/* RFC 7296 3.13.1: an "opaque" port range (start 65535, end 0) is allowed. */
		bool opaque = t->port_start == 65535 && t->port_end == 0;
		if (t->port_start > t->port_end && !opaque)
			BAD("TS: start port above end port");
		if (memcmp(t->start, t->end, alen) > 0)
			BAD("TS: start address above end address");
		pos += slen;
	}
	if (pos != len)
		BAD("TS: bytes after the last selector");
	tsp->n = n;
	return 0;
}

int ike_parse_cert(const uint8_t *body, size_t len, struct ike_cert *c, const char **why)
{
	WHY_INIT();
	if (len < 2)
		BAD("CERT: no data");
	c->encoding = body[0];
	c->data = body + 1;
	c->len = len - 1;
	return 0;
}

int ike_parse_certreq(const uint8_t *body, size_t len, struct ike_cert *c, const char **why)
{
	WHY_INIT();
	if (len < 1)
		BAD("CERTREQ: no encoding");
	c->encoding = body[0];
	c->data = body + 1;
	c->len = len - 1;
	if (c->encoding == 4 && c->len % 20 != 0)
		BAD("CERTREQ: X.509 authorities are not a list of 20-byte SHA-1 hashes");
	return 0;
}

int ike_parse_cp(const uint8_t *body, size_t len, struct ike_cp *cp, const char **why)
{
	WHY_INIT();
	if (len < 4)
		BAD("CP: shorter than its 4-byte header");
	cp->cfg_type = body[0];
	if (cp->cfg_type < 1 || cp->cfg_type > 4)
		BAD("CP: unknown configuration type");
	cp->nattr = 0;
	size_t pos = 4;
	while (pos < len) {
		if (len - pos < 4)
			BAD("CP: attribute header runs past the payload");
		if (cp->nattr >= SG_ARRAY_LEN(cp->attr))
			BAD("CP: more than 16 attributes");
		uint16_t alen = be16(body + pos + 2);
		if (alen > len - pos - 4)
			BAD("CP: attribute runs past the payload");
		struct ike_cp_attr *a = &cp->attr[cp->nattr++];
		a->type = be16(body + pos) & 0x7fff;
		a->data = body + pos + 4;
		a->len = alen;
		pos += 4u + alen;
	}
	return 0;
}

int ike_parse_skf(const uint8_t *body, size_t len, struct ike_skf *f, const char **why)
{
	WHY_INIT();
	if (len < 4)
		BAD("SKF: shorter than its 4-byte header");
	f->number = be16(body);
	f->total = be16(body + 2);
	f->enc = body + 4;
	f->enc_len = len - 4;
	/* RFC 7383 2.5: numbering starts at 1; a number above the total is invalid. */
	if (f->number == 0 || f->total == 0 || f->number > f->total)
		BAD("SKF: fragment number outside 1..total");
	return 0;
}

/* ---- building ------------------------------------------------------------------------------- */

void ike_buf_init(struct ike_buf *b, uint8_t *mem, size_t cap)
{
	memset(b, 0, sizeof(*b));
	b->p = mem;
	b->cap = SG_MIN(cap, (size_t)IKE_MAX_MSG);
	b->last_next = b->open = b->sk = IKE_BUF_NONE;
}

static uint8_t *reserve(struct ike_buf *b, size_t n)
{
	if (b->err)
		return NULL;
	if (n > b->cap - b->len) {
		b->err = SG_EFULL;
		return NULL;
	}
	uint8_t *p = b->p + b->len;
	b->len += n;
	return p;
}

void ike_put_bytes(struct ike_buf *b, const void *p, size_t n)
{
	uint8_t *d = reserve(b, n);
	if (d && n)
		memcpy(d, p, n);
}

void ike_put_u8(struct ike_buf *b, uint8_t v)
{
	ike_put_bytes(b, &v, 1);
}

void ike_put_u16(struct ike_buf *b, uint16_t v)
{
	uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	ike_put_bytes(b, x, 2);
}

void ike_put_u32(struct ike_buf *b, uint32_t v)
{
	uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	ike_put_bytes(b, x, 4);
}

static void set16(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

void ike_put_header(struct ike_buf *b, const struct ike_header *h)
{
	ike_put_bytes(b, h->spi_i, 8);
	ike_put_bytes(b, h->spi_r, 8);
	ike_put_u8(b, IKE_PL_NONE);
	ike_put_u8(b, IKE_VERSION);
	ike_put_u8(b, h->exchange);
	ike_put_u8(b, h->flags);
	ike_put_u32(b, h->msg_id);
	ike_put_u32(b, 0);
	b->last_next = 16;
}

void ike_begin_payload(struct ike_buf *b, uint8_t type, bool critical)
{
	if (b->err)
		return;
	size_t at = b->len;
	uint8_t *h = reserve(b, IKE_PAYLOAD_HDR_LEN);
	if (!h)
		return;
	if (b->last_next != IKE_BUF_NONE)
		b->p[b->last_next] = type;
	h[0] = IKE_PL_NONE;
	h[1] = critical ? 0x80 : 0;
	h[2] = h[3] = 0;
	b->last_next = at;
	b->open = at;
}

void ike_end_payload(struct ike_buf *b)
{
	if (b->err || b->open == IKE_BUF_NONE)
		return;
	size_t len = b->len - b->open;
	if (len > 0xffff) {
		b->err = SG_ERANGE;
		return;
	}
	set16(b->p + b->open + 2, len);
	b->open = IKE_BUF_NONE;
}

void ike_put_sa(struct ike_buf *b, const struct ike_sa_payload *sa)
{
	ike_begin_payload(b, IKE_PL_SA, false);
	for (unsigned i = 0; i < sa->nprops && !b->err; i++) {
		const struct ike_proposal *pr = &sa->props[i];
		size_t at = b->len;
		ike_put_u8(b, i + 1 == sa->nprops ? 0 : 2);
		ike_put_u8(b, 0);
		ike_put_u16(b, 0);
		ike_put_u8(b, pr->num);
		ike_put_u8(b, pr->protocol);
		ike_put_u8(b, pr->spi_len);
		ike_put_u8(b, (uint8_t)pr->ntrans);
		ike_put_bytes(b, pr->spi, pr->spi_len);
		for (unsigned t = 0; t < pr->ntrans; t++) {
			const struct ike_transform *tr = &pr->trans[t];
			ike_put_u8(b, t + 1 == pr->ntrans ? 0 : 3);
			ike_put_u8(b, 0);
			ike_put_u16(b, tr->keylen ? 12 : 8);
			ike_put_u8(b, tr->type);
			ike_put_u8(b, 0);
			ike_put_u16(b, tr->id);
			if (tr->keylen) {
				ike_put_u16(b, 0x8000 | IKE_ATTR_KEY_LENGTH);
				ike_put_u16(b, tr->keylen);
			}
		}
		if (!b->err)
			set16(b->p + at + 2, b->len - at);
	}
	ike_end_payload(b);
}

void ike_put_ke(struct ike_buf *b, uint16_t group, const uint8_t *data, size_t len)
{
	ike_begin_payload(b, IKE_PL_KE, false);
	ike_put_u16(b, group);
	ike_put_u16(b, 0);
	ike_put_bytes(b, data, len);
	ike_end_payload(b);
}

void ike_put_nonce(struct ike_buf *b, const uint8_t *n, size_t len)
{
	ike_begin_payload(b, IKE_PL_NONCE, false);
	ike_put_bytes(b, n, len);
	ike_end_payload(b);
}

void ike_put_notify(struct ike_buf *b, uint8_t protocol, const uint8_t *spi, uint8_t spi_len,
		    uint16_t type, const uint8_t *data, size_t len)
{
	ike_begin_payload(b, IKE_PL_NOTIFY, false);
	ike_put_u8(b, protocol);
	ike_put_u8(b, spi_len);
	ike_put_u16(b, type);
	ike_put_bytes(b, spi, spi_len);
	ike_put_bytes(b, data, len);
	ike_end_payload(b);
}

void ike_put_id(struct ike_buf *b, uint8_t pl_type, uint8_t id_type, const uint8_t *data,
		size_t len)
{
	ike_begin_payload(b, pl_type, false);
	ike_put_u8(b, id_type);
	ike_put_bytes(b, "\0\0\0", 3);
	ike_put_bytes(b, data, len);
	ike_end_payload(b);
}

void ike_put_auth(struct ike_buf *b, uint8_t method, const uint8_t *data, size_t len)
{
	ike_begin_payload(b, IKE_PL_AUTH, false);
	ike_put_u8(b, method);
	ike_put_bytes(b, "\0\0\0", 3);
	ike_put_bytes(b, data, len);
	ike_end_payload(b);
}

void ike_put_ts(struct ike_buf *b, uint8_t pl_type, const struct ike_ts_payload *ts)
{
	ike_begin_payload(b, pl_type, false);
	ike_put_u8(b, (uint8_t)ts->n);
	ike_put_bytes(b, "\0\0\0", 3);
	for (unsigned i = 0; i < ts->n; i++) {
		const struct ike_ts *t = &ts->ts[i];
		size_t alen = t->type == IKE_TS_IPV4_ADDR_RANGE ? 4 : 16;
		ike_put_u8(b, t->type);
		ike_put_u8(b, t->proto);
		ike_put_u16(b, (uint16_t)(8 + 2 * alen));
		ike_put_u16(b, t->port_start);
		ike_put_u16(b, t->port_end);
		ike_put_bytes(b, t->start, alen);
		ike_put_bytes(b, t->end, alen);
	}
	ike_end_payload(b);
}

void ike_put_delete(struct ike_buf *b, uint8_t protocol, uint8_t spi_len, const uint8_t *spis,
		    unsigned nspi)
{
	ike_begin_payload(b, IKE_PL_DELETE, false);
	ike_put_u8(b, protocol);
	ike_put_u8(b, spi_len);
	ike_put_u16(b, (uint16_t)nspi);
	ike_put_bytes(b, spis, (size_t)spi_len * nspi);
	ike_end_payload(b);
}

void ike_put_cert(struct ike_buf *b, uint8_t pl_type, uint8_t encoding, const uint8_t *data,
		  size_t len)
{
	ike_begin_payload(b, pl_type, false);
	ike_put_u8(b, encoding);
	ike_put_bytes(b, data, len);
	ike_end_payload(b);
}

int ike_finish(struct ike_buf *b)
{
	if (!b->err && b->len >= IKE_HDR_LEN) {
		uint32_t l = (uint32_t)b->len;
		b->p[24] = (uint8_t)(l >> 24);
		b->p[25] = (uint8_t)(l >> 16);
		b->p[26] = (uint8_t)(l >> 8);
		b->p[27] = (uint8_t)l;
	}
	return b->err;
}
