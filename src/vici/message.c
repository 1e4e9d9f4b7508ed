/* VICI messages: the builder and the bounded tree decoder (vici.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <secureguard/sg_errors.h>

#include "crypto/crypto.h"
#include "vici/vici.h"

bool vici_type_named(enum vici_packet_type t)
{
	return t == VICI_CMD_REQUEST || t == VICI_EVENT_REGISTER || t == VICI_EVENT_UNREGISTER ||
	       t == VICI_EVENT;
}

const char *vici_type_name(int t)
{
	static const char *const names[] = {
	    "CMD_REQUEST",	"CMD_RESPONSE",	 "CMD_UNKNOWN",	  "EVENT_REGISTER",
	    "EVENT_UNREGISTER", "EVENT_CONFIRM", "EVENT_UNKNOWN", "EVENT"};
	return t >= 0 && t < (int)SG_ARRAY_LEN(names) ? names[t] : "?";
}

/* ---- builder ------------------------------------------------------------------------------ */

void vici_builder_init(struct vici_builder *b)
{
	memset(b, 0, sizeof(*b));
}

void vici_builder_free(struct vici_builder *b)
{
	if (b->buf) {
		sg_memzero(b->buf, b->cap);
		free(b->buf);
	}
	memset(b, 0, sizeof(*b));
}

static void fail(struct vici_builder *b, int err, const char *why)
{
	if (!b->err) {
		b->err = err;
		b->why = why;
	}
}

static bool reserve(struct vici_builder *b, size_t more)
{
	if (b->err)
		return false;
	if (more > VICI_MAX_PACKET || b->len + more > VICI_MAX_PACKET) {
		fail(b, SG_ERANGE, "message larger than 512 KiB");
		return false;
	}
	if (b->len + more <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + more)
		cap *= 2;
	if (cap > VICI_MAX_PACKET + 64)
		cap = VICI_MAX_PACKET + 64;
	/* Not realloc: the old buffer may hold secrets and must be wiped. */
	uint8_t *n = malloc(cap);
	if (!n) {
		fail(b, SG_ENOMEM, "out of memory");
		return false;
	}
	if (b->buf) {
		memcpy(n, b->buf, b->len);
		sg_memzero(b->buf, b->cap);
		free(b->buf);
	}
	b->buf = n;
	b->cap = cap;
	return true;
}

static void put(struct vici_builder *b, const void *p, size_t n)
{
	if (n && reserve(b, n)) {
		memcpy(b->buf + b->len, p, n);
		b->len += n;
	}
}

static void put_u8(struct vici_builder *b, uint8_t v)
{
	put(b, &v, 1);
}

static bool put_name(struct vici_builder *b, const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (!name) {
		fail(b, SG_EINVAL, "missing name");
		return false;
	}
	if (n > VICI_MAX_NAME) {
		fail(b, SG_ERANGE, "name longer than 255 bytes");
		return false;
	}
	put_u8(b, (uint8_t)n);
	put(b, name, n);
	return !b->err;
}

static void put_value(struct vici_builder *b, const void *v, size_t n)
{
	if (n > VICI_MAX_VALUE) {
		fail(b, SG_ERANGE, "value longer than 65535 bytes");
		return;
	}
	if (n && !v) {
		fail(b, SG_EINVAL, "missing value");
		return;
	}
	uint8_t l[2] = {(uint8_t)(n >> 8), (uint8_t)n};
	put(b, l, 2);
	put(b, v, n);
}

static bool in_list(const struct vici_builder *b)
{
	return b->depth && b->open[b->depth - 1] == VICI_LIST_START;
}

static void open_level(struct vici_builder *b, uint8_t kind, const char *name)
{
	if (b->err)
		return;
	if (in_list(b)) {
		fail(b, SG_EINVAL, "only items may be added inside a list");
		return;
	}
	if (b->depth >= VICI_MAX_DEPTH) {
		fail(b, SG_ERANGE, "sections and lists nested too deep");
		return;
	}
	put_u8(b, kind);
	if (put_name(b, name))
		b->open[b->depth++] = kind;
}

static void close_level(struct vici_builder *b, uint8_t kind, uint8_t end)
{
	if (b->err)
		return;
	if (!b->depth || b->open[b->depth - 1] != kind) {
		fail(b, SG_EINVAL,
		     kind == VICI_LIST_START ? "list end without an open list"
					     : "section end without an open section");
		return;
	}
	put_u8(b, end);
	if (!b->err)
		b->depth--;
}

void vici_add_section_start(struct vici_builder *b, const char *name)
{
	open_level(b, VICI_SECTION_START, name);
}

void vici_add_section_end(struct vici_builder *b)
{
	close_level(b, VICI_SECTION_START, VICI_SECTION_END);
}

void vici_add_list_start(struct vici_builder *b, const char *name)
{
	open_level(b, VICI_LIST_START, name);
}

void vici_add_list_end(struct vici_builder *b)
{
	close_level(b, VICI_LIST_START, VICI_LIST_END);
}

void vici_add_kv(struct vici_builder *b, const char *name, const void *value, size_t len)
{
	if (b->err)
		return;
	if (in_list(b)) {
		fail(b, SG_EINVAL, "only items may be added inside a list");
		return;
	}
	put_u8(b, VICI_KEY_VALUE);
	if (put_name(b, name))
		put_value(b, value, len);
}

void vici_add_kv_str(struct vici_builder *b, const char *name, const char *value)
{
	vici_add_kv(b, name, value ? value : "", value ? strlen(value) : 0);
}

static void add_vfmt(struct vici_builder *b, const char *name, bool item, const char *fmt,
		     va_list ap)
{
	char small[256];
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	if (n < 0 || (size_t)n > VICI_MAX_VALUE) {
		va_end(ap2);
		fail(b, SG_ERANGE, "value longer than 65535 bytes");
		return;
	}
	char *p = small;
	if ((size_t)n >= sizeof(small)) {
		p = malloc((size_t)n + 1);
		if (!p) {
			va_end(ap2);
			fail(b, SG_ENOMEM, "out of memory");
			return;
		}
		vsnprintf(p, (size_t)n + 1, fmt, ap2);
	}
	va_end(ap2);
	if (item)
		vici_add_list_item(b, p, (size_t)n);
	else
		vici_add_kv(b, name, p, (size_t)n);
	if (p != small) {
		sg_memzero(p, (size_t)n);
		free(p);
	}
	sg_memzero(small, sizeof(small));
}

void vici_add_kv_fmt(struct vici_builder *b, const char *name, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	add_vfmt(b, name, false, fmt, ap);
	va_end(ap);
}

void vici_add_list_item(struct vici_builder *b, const void *value, size_t len)
{
	if (b->err)
		return;
	if (!in_list(b)) {
		fail(b, SG_EINVAL, "list item outside a list");
		return;
	}
	put_u8(b, VICI_LIST_ITEM);
	put_value(b, value, len);
}

void vici_add_list_item_str(struct vici_builder *b, const char *value)
{
	vici_add_list_item(b, value ? value : "", value ? strlen(value) : 0);
}

int vici_builder_finish(struct vici_builder *b, const uint8_t **msg, size_t *len, const char **why)
{
	if (!b->err && b->depth)
		fail(b, SG_EINVAL, "unclosed section or list");
	if (b->err) {
		if (why)
			*why = b->why;
		*msg = NULL;
		*len = 0;
		return b->err;
	}
	*msg = b->buf ? b->buf : (const uint8_t *)"";
	*len = b->len;
	return 0;
}

void vici_add_tree(struct vici_builder *b, const struct vici_node *node)
{
	for (const struct vici_node *c = node->child; c && !b->err; c = c->next) {
		switch (c->type) {
		case VICI_NODE_SECTION:
			vici_add_section_start(b, c->name);
			vici_add_tree(b, c);
			vici_add_section_end(b);
			break;
		case VICI_NODE_LIST:
			vici_add_list_start(b, c->name);
			vici_add_tree(b, c);
			vici_add_list_end(b);
			break;
		case VICI_NODE_KV:
			vici_add_kv(b, c->name, c->value, c->value_len);
			break;
		case VICI_NODE_ITEM:
			vici_add_list_item(b, c->value, c->value_len);
			break;
		}
	}
}

/* ---- decoder ------------------------------------------------------------------------------ */

/* Nodes come in chunks so that pointers stay valid as the tree grows, and memory follows the
 * number of elements, not the message size. */
#define NODE_CHUNK 64
struct node_chunk {
	struct node_chunk *next;
	size_t used;
	struct vici_node nodes[NODE_CHUNK];
};

struct vici_msg {
	struct vici_node root;
	struct node_chunk *chunks;
	char *arena; /* NUL-terminated copies of names and values */
	size_t arena_len;
};

static struct vici_node *new_node(struct vici_msg *m)
{
	if (!m->chunks || m->chunks->used == NODE_CHUNK) {
		struct node_chunk *c = calloc(1, sizeof(*c));
		if (!c)
			return NULL;
		c->next = m->chunks;
		m->chunks = c;
	}
	return &m->chunks->nodes[m->chunks->used++];
}

#define BAD(msg)                                                                                   \
	do {                                                                                       \
		*why = (msg);                                                                      \
		goto bad;                                                                          \
	} while (0)

int vici_msg_parse(const uint8_t *buf, size_t len, struct vici_msg **out, const char **why)
{
	static const char *dummy;
	struct vici_msg *m = NULL;
	struct vici_node *stack[VICI_MAX_DEPTH + 1];
	struct vici_node *last[VICI_MAX_DEPTH + 1];
	unsigned depth = 0;
	size_t pos = 0, apos = 0;

	if (!why)
		why = &dummy;
	*out = NULL;
	if (len > VICI_MAX_PACKET) {
		*why = "message larger than 512 KiB";
		return SG_ERANGE;
	}
	/* Every copied string is at most the bytes it came from plus a NUL, and each needs at
	 * least one byte of the message (its length), so 2 * len + 1 bounds the arena. */
	m = calloc(1, sizeof(*m));
	if (!m)
		goto nomem;
	m->arena = malloc(2 * len + 1);
	if (!m->arena)
		goto nomem;
	m->arena_len = 2 * len + 1;
	m->root.type = VICI_NODE_SECTION;
	m->root.name = "";
	stack[0] = &m->root;
	last[0] = NULL;

	while (pos < len) {
		uint8_t t = buf[pos++];
		const char *name = "";
		const uint8_t *value = NULL;
		size_t vlen = 0;
		struct vici_node *parent = stack[depth];
		bool parent_is_list = parent->type == VICI_NODE_LIST;

		if (t < VICI_SECTION_START || t > VICI_LIST_END)
			BAD("unknown element type");
		if (t == VICI_SECTION_START || t == VICI_KEY_VALUE || t == VICI_LIST_START) {
			if (parent_is_list)
				BAD("only list items may appear inside a list");
			if (pos >= len)
				BAD("truncated name length");
			size_t nl = buf[pos++];
			if (nl > len - pos)
				BAD("name runs past the end");
			if (memchr(buf + pos, 0, nl))
				BAD("name contains a NUL byte");
			memcpy(m->arena + apos, buf + pos, nl);
			m->arena[apos + nl] = 0;
			name = m->arena + apos;
			apos += nl + 1;
			pos += nl;
		}
		if (t == VICI_KEY_VALUE || t == VICI_LIST_ITEM) {
			if (t == VICI_LIST_ITEM && !parent_is_list)
				BAD("list item outside a list");
			if (len - pos < 2)
				BAD("truncated value length");
			vlen = (size_t)buf[pos] << 8 | buf[pos + 1];
			pos += 2;
			if (vlen > len - pos)
				BAD("value runs past the end");
			memcpy(m->arena + apos, buf + pos, vlen);
			m->arena[apos + vlen] = 0;
			value = (const uint8_t *)m->arena + apos;
			apos += vlen + 1;
			pos += vlen;
		}
		if (t == VICI_SECTION_END || t == VICI_LIST_END) {
			if (!depth ||
			    (t == VICI_SECTION_END) != (parent->type == VICI_NODE_SECTION))
				BAD(t == VICI_SECTION_END ? "section end without an open section"
							  : "list end without an open list");
			depth--;
			continue;
		}
		struct vici_node *n = new_node(m);
		if (!n)
			goto nomem;
		n->type = t == VICI_SECTION_START ? VICI_NODE_SECTION
			  : t == VICI_LIST_START  ? VICI_NODE_LIST
			  : t == VICI_KEY_VALUE	  ? VICI_NODE_KV
						  : VICI_NODE_ITEM;
		n->name = name;
		n->value = value;
		n->value_len = vlen;
		n->parent = parent;
		if (last[depth])
			last[depth]->next = n;
		else
			parent->child = n;
		last[depth] = n;
		if (t == VICI_SECTION_START || t == VICI_LIST_START) {
			if (depth >= VICI_MAX_DEPTH)
				BAD("sections and lists nested too deep");
			stack[++depth] = n;
			last[depth] = NULL;
		}
	}
	if (depth)
		BAD("unclosed section or list at the end");
	*out = m;
	return 0;
bad:
	vici_msg_free(m);
	return SG_EPARSE;
nomem:
	vici_msg_free(m);
	*why = "out of memory";
	return SG_ENOMEM;
}

void vici_msg_free(struct vici_msg *m)
{
	if (!m)
		return;
	if (m->arena) {
		sg_memzero(m->arena, m->arena_len);
		free(m->arena);
	}
	while (m->chunks) {
		struct node_chunk *c = m->chunks;
		m->chunks = c->next;
		free(c);
	}
	free(m);
}

const struct vici_node *vici_msg_root(const struct vici_msg *m)
{
	return &m->root;
}

const struct vici_node *vici_find(const struct vici_node *sec, const char *name)
{
	while (sec && name) {
		const char *dot = strchr(name, '.');
		size_t n = dot ? (size_t)(dot - name) : strlen(name);
		const struct vici_node *c;
		for (c = sec->child; c; c = c->next)
			if (strlen(c->name) == n && memcmp(c->name, name, n) == 0)
				break;
		if (!dot || !c)
			return c;
		if (c->type != VICI_NODE_SECTION)
			return NULL;
		sec = c;
		name = dot + 1;
	}
	return NULL;
}

bool vici_node_is_str(const struct vici_node *n)
{
	return n && (n->type == VICI_NODE_KV || n->type == VICI_NODE_ITEM) &&
	       !memchr(n->value, 0, n->value_len);
}

const char *vici_get_str(const struct vici_node *sec, const char *name)
{
	const struct vici_node *n = vici_find(sec, name);
	return n && n->type == VICI_NODE_KV && vici_node_is_str(n) ? (const char *)n->value : NULL;
}

size_t vici_node_count(const struct vici_node *parent)
{
	size_t n = 0;
	for (const struct vici_node *c = parent ? parent->child : NULL; c; c = c->next)
		n++;
	return n;
}
