/* Allowed IPs trie (whitepaper section 2, "cryptokey routing").
 *
 * Each family has a path-compressed binary trie. A node stands for a prefix: the first `cidr`
 * bits of `key` (bits beyond cidr are always zero). Its children extend that prefix and are
 * chosen by address bit number `cidr` (counting from the most significant bit), so a node has
 * at most one child per side and a child's cidr is strictly larger than its parent's. Nodes with
 * an owner are prefixes the user added; nodes without one only separate two subtrees.
 *
 * Invariant: every node without an owner has exactly two children. Insert creates such a node
 * only with two children; removal frees ownerless nodes that are left with fewer. Hence a family
 * with n prefixes has at most 2n - 1 nodes, whatever sequence of inserts and removals built it.
 *
 * Addresses are held as two 64-bit words in host order, most significant first; an IPv4
 * address sits in the top 32 bits of the first word, so both families share one code path.
 * Each node carries its mask and the position of its branching bit, so a lookup step is a
 * masked compare and an indexed load, without branches on the prefix length. Depth is bounded
 * by the address width (at most 129 nodes on a path), and every traversal here is iterative
 * (parent pointers), so no function recurses.
 */
#include "wg/allowedips.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <secureguard/sg_errors.h>

struct node {
	/* A lookup reads only the first 59 bytes: key, mask, bit, owner, word, shift. */
	uint64_t key[2];     /* masked prefix, most significant word first */
	uint64_t mask[2];    /* the first cidr bits set */
	struct node *bit[2]; /* children, chosen by address bit `cidr` */
	void *owner;	     /* NULL: branch node only */
	uint8_t word, shift; /* address bit `cidr` is (a[word] >> shift) & 1 */
	uint8_t cidr;	     /* prefix length: 0..32 (IPv4) or 0..128 (IPv6) */
	struct node *parent; /* NULL for the root */
};

struct trie {
	struct node *root;
	uint8_t bits; /* 32 or 128 */
};

struct wg_allowedips {
	struct trie v4, v6;
	size_t count; /* nodes with an owner */
	size_t nodes; /* all nodes */
	struct wg_allowedips_allocator alloc;
};

/* ---- allocation ---------------------------------------------------------------------------- */

static void *default_zalloc(void *ctx, size_t size)
{
	(void)ctx;
	return calloc(1, size);
}

static void default_free(void *ctx, void *ptr)
{
	(void)ctx;
	free(ptr);
}

static struct node *node_new(struct wg_allowedips *t)
{
	struct node *n = t->alloc.zalloc(t->alloc.ctx, sizeof(*n));

	if (n)
		t->nodes++;
	return n;
}

static void node_free(struct wg_allowedips *t, struct node *n)
{
	t->nodes--;
	t->alloc.free(t->alloc.ctx, n);
}

/* ---- bit helpers --------------------------------------------------------------------------- */

/* Loads a 4- or 16-byte big-endian address into two host-order words. */
static inline void load_addr(uint64_t out[2], const uint8_t *p, uint8_t bits)
{
	uint64_t hi = 0, lo = 0;

	if (bits == 32) {
		for (int i = 0; i < 4; i++)
			hi = hi << 8 | p[i];
		hi <<= 32;
	} else {
		for (int i = 0; i < 8; i++)
			hi = hi << 8 | p[i];
		for (int i = 8; i < 16; i++)
			lo = lo << 8 | p[i];
	}
	out[0] = hi;
	out[1] = lo;
}

static void store_addr(uint8_t *p, const uint64_t in[2], uint8_t bits)
{
	for (unsigned i = 0; i < bits / 8u; i++) {
		uint64_t w = in[i / 8];

		p[i] = (uint8_t)(w >> (56 - 8 * (i % 8)));
	}
}

/* Masks of the first cidr bits, per word. Shifts stay in 0..63. */
static inline uint64_t mask_hi(uint8_t cidr)
{
	if (cidr == 0)
		return 0;
	return cidr >= 64 ? UINT64_MAX : UINT64_MAX << (64 - cidr);
}

static inline uint64_t mask_lo(uint8_t cidr)
{
	return cidr <= 64 ? 0 : UINT64_MAX << (128 - cidr);
}

static inline void mask_addr(uint64_t a[2], uint8_t cidr)
{
	a[0] &= mask_hi(cidr);
	a[1] &= mask_lo(cidr);
}

/* True if the first n->cidr bits of a equal n's prefix. */
static inline bool prefix_matches(const struct node *n, const uint64_t a[2])
{
	return (((a[0] ^ n->key[0]) & n->mask[0]) | ((a[1] ^ n->key[1]) & n->mask[1])) == 0;
}

/* The child of n on a's side (a must match n's prefix). For a /128 (or an IPv4 /32) node the
 * bit read is some bit of the address, harmlessly: such a node has no children. */
static inline struct node *child_for(const struct node *n, const uint64_t a[2])
{
	return n->bit[(a[n->word] >> n->shift) & 1];
}

static void node_set_prefix(struct node *n, const uint64_t key[2], uint8_t cidr)
{
	n->key[0] = key[0];
	n->key[1] = key[1];
	n->mask[0] = mask_hi(cidr);
	n->mask[1] = mask_lo(cidr);
	mask_addr(n->key, cidr);
	n->cidr = cidr;
	/* bit number cidr; 128 is clamped to 127 (see child_for) */
	n->word = cidr < 64 ? 0 : 1;
	n->shift = (uint8_t)(cidr < 64 ? 63 - cidr : cidr < 128 ? 127 - cidr : 0);
}

/* Address bit number i (0 = most significant); i < 128. */
static inline unsigned bit_at(const uint64_t a[2], uint8_t i)
{
	return i < 64 ? (unsigned)(a[0] >> (63 - i)) & 1 : (unsigned)(a[1] >> (127 - i)) & 1;
}

/* Number of leading bits on which a and b agree (0..128). */
static uint8_t common_bits(const uint64_t a[2], const uint64_t b[2])
{
	uint64_t x = a[0] ^ b[0];

	if (x)
		return (uint8_t)__builtin_clzll(x);
	x = a[1] ^ b[1];
	if (x)
		return (uint8_t)(64 + __builtin_clzll(x));
	return 128;
}

/* ---- traversal ----------------------------------------------------------------------------- */

/* The slot that points at n: its parent's child pointer, or the root. */
static struct node **slot_of(struct trie *tr, struct node *n)
{
	if (!n->parent)
		return &tr->root;
	return n->parent->bit[0] == n ? &n->parent->bit[0] : &n->parent->bit[1];
}

/* Pre-order successor (children before siblings, bit 0 before bit 1): the order of ascending
 * (address, cidr), since a node's prefix is a prefix of its whole subtree. */
static const struct node *preorder_next(const struct node *n)
{
	if (n->bit[0])
		return n->bit[0];
	if (n->bit[1])
		return n->bit[1];
	for (const struct node *p = n->parent; p; n = p, p = p->parent) {
		if (p->bit[0] == n && p->bit[1])
			return p->bit[1];
	}
	return NULL;
}

/* First node of the post-order (children before parents) of the subtree at n. */
static struct node *postorder_first(struct node *n)
{
	while (n->bit[0] || n->bit[1])
		n = n->bit[0] ? n->bit[0] : n->bit[1];
	return n;
}

/* Post-order successor. It depends only on n's parent and on n's side there, so the caller may
 * compute it and then unlink n. */
static struct node *postorder_next(struct node *n)
{
	struct node *p = n->parent;

	if (!p)
		return NULL;
	if (p->bit[0] == n && p->bit[1])
		return postorder_first(p->bit[1]);
	return p;
}

/* Frees n if it is an ownerless node that no longer separates two subtrees: with one child the
 * child takes its place, with none it just goes. Returns the parent if that may now need the
 * same treatment (n was a leaf), else NULL. */
static struct node *prune(struct wg_allowedips *t, struct trie *tr, struct node *n)
{
	struct node *child, *parent = n->parent;

	if (n->owner || (n->bit[0] && n->bit[1]))
		return NULL;
	child = n->bit[0] ? n->bit[0] : n->bit[1];
	*slot_of(tr, n) = child;
	if (child)
		child->parent = parent;
	node_free(t, n);
	return child ? NULL : parent;
}

/* ---- API ----------------------------------------------------------------------------------- */

static struct trie *trie_for(struct wg_allowedips *t, int family)
{
	if (family == AF_INET)
		return &t->v4;
	if (family == AF_INET6)
		return &t->v6;
	return NULL;
}

struct wg_allowedips *wg_allowedips_new_with_allocator(const struct wg_allowedips_allocator *a)
{
	struct wg_allowedips_allocator alloc = {NULL, default_zalloc, default_free};
	struct wg_allowedips *t;

	if (a)
		alloc = *a;
	t = alloc.zalloc(alloc.ctx, sizeof(*t));
	if (!t)
		return NULL;
	t->alloc = alloc;
	t->v4.bits = 32;
	t->v6.bits = 128;
	return t;
}

struct wg_allowedips *wg_allowedips_new(void)
{
	return wg_allowedips_new_with_allocator(NULL);
}

static void trie_free_all(struct wg_allowedips *t, struct trie *tr)
{
	struct node *n, *next;

	if (!tr->root)
		return;
	for (n = postorder_first(tr->root); n; n = next) {
		next = postorder_next(n);
		node_free(t, n);
	}
	tr->root = NULL;
}

void wg_allowedips_clear(struct wg_allowedips *t)
{
	if (!t)
		return;
	trie_free_all(t, &t->v4);
	trie_free_all(t, &t->v6);
	t->count = 0;
}

void wg_allowedips_free(struct wg_allowedips *t)
{
	if (!t)
		return;
	wg_allowedips_clear(t);
	t->alloc.free(t->alloc.ctx, t);
}

int wg_allowedips_insert(struct wg_allowedips *t, int family, const void *addr, uint8_t cidr,
			 void *owner)
{
	struct node *parent = NULL, *down, *n, *branch = NULL;
	struct node **slot;
	struct trie *tr;
	uint64_t key[2];
	uint8_t common;

	if (!t || !addr || !owner || !(tr = trie_for(t, family)) || cidr > tr->bits)
		return SG_EINVAL;
	load_addr(key, addr, tr->bits);
	mask_addr(key, cidr);

	/* Descend through the nodes whose prefix covers key and is no longer than cidr. */
	for (down = tr->root; down && down->cidr <= cidr && prefix_matches(down, key);
	     down = down->bit[bit_at(key, down->cidr)]) {
		if (down->cidr == cidr) {
			/* The prefix exists (possibly as a branch node): (re)assign it. */
			if (!down->owner)
				t->count++;
			down->owner = owner;
			return 0;
		}
		parent = down;
	}

	/* Allocate everything before touching the trie, so ENOMEM leaves it unchanged. */
	n = node_new(t);
	if (!n)
		return SG_ENOMEM;
	node_set_prefix(n, key, cidr);
	n->owner = owner;

	slot = parent ? &parent->bit[bit_at(key, parent->cidr)] : &tr->root;
	if (down) {
		/* down hangs in n's slot but does not lie on n's path: they share `common` bits,
		 * more than parent->cidr (same side of parent) and fewer than down->cidr. */
		common = common_bits(down->key, key);
		if (common >= cidr) {
			/* n's prefix covers down: n goes between parent and down. */
			n->bit[bit_at(down->key, cidr)] = down;
			down->parent = n;
		} else {
			/* They diverge at bit `common`: a branch node splits them. */
			branch = node_new(t);
			if (!branch) {
				node_free(t, n);
				return SG_ENOMEM;
			}
			node_set_prefix(branch, key, common);
			branch->bit[bit_at(key, common)] = n;
			branch->bit[bit_at(down->key, common)] = down;
			n->parent = branch;
			down->parent = branch;
		}
	}
	if (branch) {
		branch->parent = parent;
		*slot = branch;
	} else {
		n->parent = parent;
		*slot = n;
	}
	t->count++;
	return 0;
}

int wg_allowedips_remove(struct wg_allowedips *t, int family, const void *addr, uint8_t cidr,
			 void *owner)
{
	struct trie *tr;
	struct node *n;
	uint64_t key[2];

	if (!t || !addr || !(tr = trie_for(t, family)) || cidr > tr->bits)
		return SG_EINVAL;
	load_addr(key, addr, tr->bits);
	mask_addr(key, cidr);

	for (n = tr->root; n && n->cidr < cidr && prefix_matches(n, key);
	     n = n->bit[bit_at(key, n->cidr)])
		;
	if (!n || n->cidr != cidr || !prefix_matches(n, key) || !n->owner ||
	    (owner && n->owner != owner))
		return SG_ENOENT;

	n->owner = NULL;
	t->count--;
	/* A removed leaf may leave its (ownerless) parent with a single child: prune upwards. At
	 * most two nodes go, because a pruned node with one child leaves its parent intact. */
	while (n)
		n = prune(t, tr, n);
	return 0;
}

void *wg_allowedips_lookup(const struct wg_allowedips *t, int family, const void *addr)
{
	const struct trie *tr;
	const struct node *n;
	void *best = NULL;
	uint64_t a[2];

	if (family == AF_INET)
		tr = &t->v4;
	else if (likely(family == AF_INET6))
		tr = &t->v6;
	else
		return NULL;
	load_addr(a, addr, tr->bits);

	/* Each step goes one node deeper and at least one bit further, and prefixes only grow
	 * along the path, so the last owner seen is the longest match. */
	for (n = tr->root; n && prefix_matches(n, a); n = child_for(n, a)) {
		if (n->owner)
			best = n->owner;
	}
	return best;
}

static void trie_remove_owner(struct wg_allowedips *t, struct trie *tr, const void *owner)
{
	struct node *n, *next;

	if (!tr->root)
		return;
	/* Post-order, so both subtrees of a node are final when it is visited and pruning only
	 * ever unlinks the current node (its parent comes later). */
	for (n = postorder_first(tr->root); n; n = next) {
		next = postorder_next(n);
		if (n->owner == owner) {
			n->owner = NULL;
			t->count--;
		}
		prune(t, tr, n);
	}
}

void wg_allowedips_remove_by_owner(struct wg_allowedips *t, void *owner)
{
	if (!t || !owner)
		return;
	trie_remove_owner(t, &t->v4, owner);
	trie_remove_owner(t, &t->v6, owner);
}

static int trie_walk_owner(const struct trie *tr, int family, const void *owner,
			   wg_allowedips_cb cb, void *ctx)
{
	uint8_t buf[16];
	int ret;

	for (const struct node *n = tr->root; n; n = preorder_next(n)) {
		if (n->owner != owner)
			continue;
		store_addr(buf, n->key, tr->bits);
		ret = cb(ctx, family, buf, n->cidr);
		if (ret)
			return ret;
	}
	return 0;
}

int wg_allowedips_walk_owner(const struct wg_allowedips *t, const void *owner, wg_allowedips_cb cb,
			     void *ctx)
{
	int ret;

	if (!t || !owner || !cb)
		return 0;
	ret = trie_walk_owner(&t->v4, AF_INET, owner, cb, ctx);
	if (ret)
		return ret;
	return trie_walk_owner(&t->v6, AF_INET6, owner, cb, ctx);
}

size_t wg_allowedips_count(const struct wg_allowedips *t)
{
	return t ? t->count : 0;
}

size_t wg_allowedips_node_count(const struct wg_allowedips *t)
{
	return t ? t->nodes : 0;
}
