/* VICI codec: strongSwan's Versatile IKE Control Interface, the one VICI module of SecureGuard
 * (ARCHITECTURE.md, "One of each"). The agent uses the client side to drive a real charon; the
 * IKE daemon (secureguard-iked) serves the same protocol so that strongSwan's own `swanctl`
 * drives it unchanged.
 *
 * Wire format (strongSwan src/libcharon/plugins/vici/README.md, libvici):
 *
 *   stream   = *( length packet )          length: 32-bit big-endian byte count of packet
 *   packet   = type [ name ] message       type: one byte, below; name only for the named types
 *   name     = len8 *OCTET                 8-bit length, no terminator
 *   message  = *element
 *   element  = SECTION_START name   (1)    opens a sub-section
 *            / SECTION_END          (2)    closes it
 *            / KEY_VALUE name value (3)    value = len16 *OCTET, 16-bit big-endian length
 *            / LIST_START name      (4)    opens a list of values
 *            / LIST_ITEM value      (5)    only inside a list
 *            / LIST_END             (6)
 *
 *   packet types: CMD_REQUEST (0, named), CMD_RESPONSE (1), CMD_UNKNOWN (2),
 *                 EVENT_REGISTER (3, named), EVENT_UNREGISTER (4, named), EVENT_CONFIRM (5),
 *                 EVENT_UNKNOWN (6), EVENT (7, named)
 *
 * A message is an implicit root section. Commands stream results as EVENT packets (e.g.
 * "list-sa" for "list-sas", which the client registers first) before their CMD_RESPONSE.
 *
 * Bounds (every length is checked before it is used): a packet is at most VICI_MAX_PACKET
 * bytes (strongSwan's VICI_MESSAGE_SIZE_MAX, 512 KiB), names 0..255 bytes without NUL, values
 * 0..65535 bytes, sections and lists nested at most VICI_MAX_DEPTH deep. Parsers allocate only
 * the decoded tree, return 0 or a negative SG_E* code, and set *why to a static description of
 * what was wrong and where ("offset 17: list item outside a list").
 *
 * Thread safety: none of these functions share state; one builder, tree or stream per thread.
 */
#ifndef SG_VICI_VICI_H
#define SG_VICI_VICI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"

#define VICI_MAX_PACKET	 (512u * 1024u)
#define VICI_MAX_NAME	 255u
#define VICI_MAX_VALUE	 65535u
#define VICI_MAX_DEPTH	 32u
#define VICI_DEFAULT_URI "unix:///var/run/charon.vici"

enum vici_packet_type {
	VICI_CMD_REQUEST = 0,
	VICI_CMD_RESPONSE = 1,
	VICI_CMD_UNKNOWN = 2,
	VICI_EVENT_REGISTER = 3,
	VICI_EVENT_UNREGISTER = 4,
	VICI_EVENT_CONFIRM = 5,
	VICI_EVENT_UNKNOWN = 6,
	VICI_EVENT = 7,
};

enum vici_element {
	VICI_SECTION_START = 1,
	VICI_SECTION_END = 2,
	VICI_KEY_VALUE = 3,
	VICI_LIST_START = 4,
	VICI_LIST_ITEM = 5,
	VICI_LIST_END = 6,
};

/* True for the packet types that carry a name (CMD_REQUEST, EVENT_REGISTER/UNREGISTER, EVENT). */
bool vici_type_named(enum vici_packet_type t);
/* "CMD_REQUEST", ...; "?" for an unknown value. */
const char *vici_type_name(int t);

/* ---- building a message -----------------------------------------------------------------
 *
 * Errors are sticky: after the first error every call is a no-op and vici_builder_finish (or
 * vici_builder_error) reports it, so callers chain calls and check once. The buffer grows up to
 * VICI_MAX_PACKET. Values are bytes; the *_str forms take C strings, the *_fmt forms printf. */
struct vici_builder {
	uint8_t *buf;
	size_t len, cap;
	unsigned depth;
	uint8_t open[VICI_MAX_DEPTH]; /* VICI_SECTION_START or VICI_LIST_START per level */
	int err;		      /* 0 or the first SG_E* code */
	const char *why;	      /* static, with err */
};

void vici_builder_init(struct vici_builder *b);
/* Frees the buffer (wiping it: messages may carry secrets, e.g. load-shared). */
void vici_builder_free(struct vici_builder *b);
void vici_add_section_start(struct vici_builder *b, const char *name);
void vici_add_section_end(struct vici_builder *b);
void vici_add_kv(struct vici_builder *b, const char *name, const void *value, size_t len);
void vici_add_kv_str(struct vici_builder *b, const char *name, const char *value);
void vici_add_kv_fmt(struct vici_builder *b, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void vici_add_list_start(struct vici_builder *b, const char *name);
void vici_add_list_item(struct vici_builder *b, const void *value, size_t len);
void vici_add_list_item_str(struct vici_builder *b, const char *value);
void vici_add_list_end(struct vici_builder *b);
/* 0 with *msg and *len the encoded message (still owned by the builder), or the first error; also
 * SG_EINVAL "unclosed section or list" when something is still open. */
int vici_builder_finish(struct vici_builder *b, const uint8_t **msg, size_t *len,
			const char **why) SG_WUR;

/* ---- decoding a message into a tree -----------------------------------------------------*/

enum vici_node_type {
	VICI_NODE_SECTION, /* name, children: members in wire order */
	VICI_NODE_KV,	   /* name, value */
	VICI_NODE_LIST,	   /* name, children: VICI_NODE_ITEMs */
	VICI_NODE_ITEM,	   /* value (name "") */
};

struct vici_node {
	enum vici_node_type type;
	const char *name;     /* NUL-terminated; "" for the root and list items */
	const uint8_t *value; /* KV and ITEM: value_len bytes, followed by a NUL */
	size_t value_len;
	const struct vici_node *child; /* first member / item */
	const struct vici_node *next;  /* next sibling */
	const struct vici_node *parent;
};

struct vici_msg; /* owns the nodes and a copy of every name and value */

/* Decodes a message (the bytes after the packet's name). Rejects: a truncated element, an
 * unknown element type, SECTION_END or LIST_END without an open one, a list item outside a
 * list, anything but items inside a list, a name containing NUL, nesting deeper
 * than VICI_MAX_DEPTH, an unclosed section or list at the end, more than VICI_MAX_PACKET
 * bytes. Duplicate names are kept (the caller decides). */
int vici_msg_parse(const uint8_t *buf, size_t len, struct vici_msg **out, const char **why) SG_WUR;
void vici_msg_free(struct vici_msg *m); /* wipes copies of values; NULL is fine */
const struct vici_node *vici_msg_root(const struct vici_msg *m);

/* The first member of section `sec` called `name` (any type), or NULL. `name` may be a path
 * "a.b.c" through sub-sections. */
const struct vici_node *vici_find(const struct vici_node *sec, const char *name);
/* The value of key `name` (a path as above) as a C string: NULL if absent, not a key-value, or
 * its value contains a NUL byte. */
const char *vici_get_str(const struct vici_node *sec, const char *name);
/* True if a KV or ITEM value is text (no NUL byte); then node->value is a C string. */
bool vici_node_is_str(const struct vici_node *n);
size_t vici_node_count(const struct vici_node *parent); /* children */

/* Appends `node`'s children (a section's members or a list's items) to a builder, so a received
 * tree can be forwarded or echoed. */
void vici_add_tree(struct vici_builder *b, const struct vici_node *node);

/* ---- packets ------------------------------------------------------------------------------*/

struct vici_packet {
	enum vici_packet_type type;
	char name[VICI_MAX_NAME + 1]; /* "" for unnamed types */
	const uint8_t *msg;	      /* points into the decoded buffer */
	size_t msg_len;
};

/* Decodes one packet body (without the 4-byte length): type, name if the type has one, and the
 * message bytes (not parsed here). Rejects an unknown type, a missing or empty name (named types),
 * a name with NUL. */
int vici_packet_decode(const uint8_t *pkt, size_t len, struct vici_packet *out,
		       const char **why) SG_WUR;
/* Appends a whole framed packet (length, type, name, message) to `out`, a byte buffer builder
 * used raw (vici_builder's buffer; its element checks do not apply). `name` is ignored for
 * unnamed types and required for named ones. */
int vici_packet_encode(struct vici_builder *out, enum vici_packet_type type, const char *name,
		       const uint8_t *msg, size_t msg_len, const char **why) SG_WUR;
/* Appends raw bytes to a builder used as a byte queue (growing as needed, wiping the old
 * buffer). 0, SG_ENOMEM. */
int vici_packet_encode_raw(struct vici_builder *out, const void *data, size_t len,
			   const char **why) SG_WUR;

/* Incremental reader of the length-prefixed stream: feed bytes as they arrive and take packets
 * as they complete. I/O-free, so the client, the server and the fuzz target share it. */
struct vici_stream {
	uint8_t hdr[4];
	size_t hdr_got;
	uint8_t *body;
	size_t body_len, body_got;
	bool ready; /* a whole packet is in body */
};
void vici_stream_init(struct vici_stream *s);
void vici_stream_free(struct vici_stream *s);
/* Consumes up to len bytes, stopping after the first complete packet. Returns the bytes
 * consumed (>= 0), or SG_EPARSE for a declared length of 0 or above VICI_MAX_PACKET (the stream
 * cannot be resynchronised: close it), SG_ENOMEM. When s->ready, the packet is s->body,
 * s->body_len bytes; call vici_stream_next before feeding more. */
long vici_stream_feed(struct vici_stream *s, const uint8_t *data, size_t len,
		      const char **why) SG_WUR;
void vici_stream_next(struct vici_stream *s);

#endif
