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
 *
 * Per-owner operations (walk_owner, remove_by_owner) must not cost the whole table: a device with
 * thousands of peers walks every peer for one UAPI `get` and removes every peer on a replacing
 * `setconf`. So the table also keeps an owner index: an open-addressing hash table (linear
 * probing, backward-shift deletion, no tombstones) from the owner pointer to the heads of two
 * doubly linked lists, one per family, threaded through the nodes that owner holds. A node is on
 * exactly its owner's list while it has an owner, and on none otherwise. Lookups never read the
 * index or the list pointers.
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
	/* The owner's list of nodes in this family (struct owner_slot), after everything a lookup
	 * reads; both NULL while the node has no owner. */
	struct node *owned_prev, *owned_next;
};

/* One owner's prefixes: the first node of each family's list. */
struct owner_slot {
	const void *owner;    /* NULL: free slot */
	struct node *head[2]; /* [0] IPv4, [1] IPv6; never both NULL in a used slot */
};

/* Open addressing with linear probing. cap is 0 (nothing allocated) or a power of two, and the
 * load stays at most 3/4, so every probe sequence reaches a free slot. */
struct owner_index {
	struct owner_slot *slots;
	size_t cap, used;
};

#define OWNER_INDEX_MIN 8

struct trie {
	struct node *root;
	uint8_t bits; /* 32 or 128 */
};

struct wg_allowedips {
	struct trie v4, v6;
	size_t count; /* nodes with an owner */
	size_t nodes; /* all nodes */
	struct owner_index owners;
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

/* ---- owner index --------------------------------------------------------------------------- */

/* Owners are heap pointers, so their low bits are mostly zero: multiply by an odd constant (the
 * 64-bit golden ratio) and fold the well-mixed high half down before masking. */
static size_t owner_hash(const void *owner, size_t cap)
{
	uint64_t h = (uint64_t)(uintptr_t)owner * 0x9e3779b97f4a7c15ULL;

	return (size_t)(h ^ h >> 32) & (cap - 1);
}

static struct owner_slot *index_find(const struct owner_index *ix, const void *owner)
{
	size_t i;

	if (!ix->cap)
		return NULL;
	for (i = owner_hash(owner, ix->cap); ix->slots[i].owner; i = (i + 1) & (ix->cap - 1)) {
		if (ix->slots[i].owner == owner)
			return &ix->slots[i];
	}
	return NULL;
}

/* Adds an absent owner; index_reserve made room for it. */
static struct owner_slot *index_add(struct owner_index *ix, const void *owner)
{
	size_t i = owner_hash(owner, ix->cap);

	while (ix->slots[i].owner)
		i = (i + 1) & (ix->cap - 1);
	ix->slots[i].owner = owner;
	ix->used++;
	return &ix->slots[i];
}

/* Rehashes into `cap` slots. On failure the index is unchanged. */
static int index_resize(struct wg_allowedips *t, size_t cap)
{
	struct owner_index *ix = &t->owners;
	struct owner_slot *old = ix->slots, *slots;
	size_t old_cap = ix->cap;

	slots = t->alloc.zalloc(t->alloc.ctx, cap * sizeof(*slots));
	if (!slots)
		return SG_ENOMEM;
	ix->slots = slots;
	ix->cap = cap;
	for (size_t i = 0; i < old_cap; i++) {
		size_t j;

		if (!old[i].owner)
			continue;
		for (j = owner_hash(old[i].owner, cap); slots[j].owner; j = (j + 1) & (cap - 1))
			;
		slots[j] = old[i];
	}
	if (old)
		t->alloc.free(t->alloc.ctx, old);
	return 0;
}

/* Makes sure `owner` has a slot or room for one, so that giving it a node afterwards cannot
 * fail: the only allocation an insert may need besides its nodes. */
static int index_reserve(struct wg_allowedips *t, const void *owner)
{
	struct owner_index *ix = &t->owners;

	if (index_find(ix, owner) || (ix->used + 1) * 4 <= ix->cap * 3)
		return 0;
	if (ix->cap > SIZE_MAX / 2 / sizeof(struct owner_slot))
		return SG_ENOMEM;
	return index_resize(t, ix->cap ? 2 * ix->cap : OWNER_INDEX_MIN);
}

/* Empties slot s. Backward-shift deletion: later entries of the same probe run move back into
 * the hole when their home slot allows it, so lookups never need tombstones. */
static void index_delete(struct owner_index *ix, struct owner_slot *s)
{
	size_t mask = ix->cap - 1, hole = (size_t)(s - ix->slots), i = hole;

	for (;;) {
		i = (i + 1) & mask;
		if (!ix->slots[i].owner)
			break;
		/* The entry at i may fill the hole if the hole lies on its probe path, i.e.
		 * between its home slot and i (cyclically). */
		if (((i - owner_hash(ix->slots[i].owner, ix->cap)) & mask) >= ((i - hole) & mask)) {
			ix->slots[hole] = ix->slots[i];
			hole = i;
		}
	}
	ix->slots[hole] = (struct owner_slot){0};
	ix->used--;
}

/* After removals: give memory back once the index is mostly empty. Halving below 1/8 load
 * leaves the new table at most 1/4 full, far from the 3/4 that makes it grow, so the cost
 * stays amortised O(1). A failed shrink just keeps the larger table. */
static void index_maybe_shrink(struct wg_allowedips *t)
{
	struct owner_index *ix = &t->owners;

	if (!ix->cap)
		return;
	if (!ix->used) {
		t->alloc.free(t->alloc.ctx, ix->slots);
		*ix = (struct owner_index){0};
	} else if (ix->cap > OWNER_INDEX_MIN && ix->used * 8 < ix->cap) {
		(void)index_resize(t, ix->cap / 2);
	}
}

/* Takes owned node n off its owner's list; the owner's slot goes with its last node. */
static void owned_unlink(struct wg_allowedips *t, unsigned fam, struct node *n)
{
	if (n->owned_next)
		n->owned_next->owned_prev = n->owned_prev;
	if (n->owned_prev) {
		n->owned_prev->owned_next = n->owned_next;
	} else {
		struct owner_slot *s = index_find(&t->owners, n->owner);

		s->head[fam] = n->owned_next;
		if (!s->head[0] && !s->head[1])
			index_delete(&t->owners, s);
	}
	n->owned_prev = NULL;
	n->owned_next = NULL;
}

/* Gives n (owned or not) to `owner`, for which index_reserve succeeded. Allocates nothing. */
static void node_own(struct wg_allowedips *t, unsigned fam, struct node *n, void *owner)
{
	struct owner_slot *s;

	if (n->owner)
		owned_unlink(t, fam, n);
	else
		t->count++;
	/* Look the slot up only now: unlinking may have deleted a slot and shifted others. */
	s = index_find(&t->owners, owner);
	if (!s)
		s = index_add(&t->owners, owner);
	n->owned_prev = NULL;
	n->owned_next = s->head[fam];
	if (n->owned_next)
		n->owned_next->owned_prev = n;
	s->head[fam] = n;
	n->owner = owner;
}

static void node_disown(struct wg_allowedips *t, unsigned fam, struct node *n)
{
	owned_unlink(t, fam, n);
	n->owner = NULL;
	t->count--;
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

/* Index of tr's lists in struct owner_slot. */
static unsigned fam_of(const struct wg_allowedips *t, const struct trie *tr)
{
	return tr == &t->v6;
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
	if (t->owners.slots)
		t->alloc.free(t->alloc.ctx, t->owners.slots);
	t->owners = (struct owner_index){0};
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
	int ret;

	if (!t || !addr || !owner || !(tr = trie_for(t, family)) || cidr > tr->bits)
		return SG_EINVAL;
	load_addr(key, addr, tr->bits);
	mask_addr(key, cidr);

	/* Descend through the nodes whose prefix covers key and is no longer than cidr. */
	for (down = tr->root; down && down->cidr <= cidr && prefix_matches(down, key);
	     down = down->bit[bit_at(key, down->cidr)]) {
		if (down->cidr == cidr) {
			/* The prefix exists (possibly as a branch node): (re)assign it. A new owner
			 * may need a slot in the owner index, the one allocation here. */
			if (down->owner == owner)
				return 0;
			ret = index_reserve(t, owner);
			if (ret)
				return ret;
			node_own(t, fam_of(t, tr), down, owner);
			return 0;
		}
		parent = down;
	}

	/* Allocate everything before touching the trie, so ENOMEM leaves it unchanged. (A grown
	 * owner index followed by a failed node allocation changes nothing observable.) */
	ret = index_reserve(t, owner);
	if (ret)
		return ret;
	n = node_new(t);
	if (!n)
		return SG_ENOMEM;
	node_set_prefix(n, key, cidr);

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
	node_own(t, fam_of(t, tr), n, owner);
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

	node_disown(t, fam_of(t, tr), n);
	/* A removed leaf may leave its (ownerless) parent with a single child: prune upwards. At
	 * most two nodes go, because a pruned node with one child leaves its parent intact. */
	while (n)
		n = prune(t, tr, n);
	index_maybe_shrink(t);
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

/* Disowns every node of a list that is already detached from the index, as remove would. */
static void drop_list(struct wg_allowedips *t, struct trie *tr, struct node *n)
{
	struct node *next;

	for (; n; n = next) {
		/* Pruning frees only ownerless nodes, and the rest of the list is still owned. */
		next = n->owned_next;
		n->owned_prev = NULL;
		n->owned_next = NULL;
		n->owner = NULL;
		t->count--;
		for (struct node *up = n; up;)
			up = prune(t, tr, up);
	}
}

void wg_allowedips_remove_by_owner(struct wg_allowedips *t, void *owner)
{
	struct owner_slot *s;
	struct node *v4, *v6;

	if (!t || !owner || !(s = index_find(&t->owners, owner)))
		return;
	v4 = s->head[0];
	v6 = s->head[1];
	index_delete(&t->owners, s);
	drop_list(t, &t->v4, v4);
	drop_list(t, &t->v6, v6);
	index_maybe_shrink(t);
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

/* Ascending (address, cidr): the pre-order of the trie, so the same order trie_walk_owner has. */
static int cmp_node(const void *pa, const void *pb)
{
	const struct node *a = *(const struct node *const *)pa;
	const struct node *b = *(const struct node *const *)pb;

	if (a->key[0] != b->key[0])
		return a->key[0] < b->key[0] ? -1 : 1;
	if (a->key[1] != b->key[1])
		return a->key[1] < b->key[1] ? -1 : 1;
	return (int)a->cidr - (int)b->cidr;
}

/* Most owners are peers with a handful of prefixes: sort that many without allocating. */
#define WALK_ON_STACK 16

/* Walks one family's list of an owner in trie order. The list is unordered, so the nodes are
 * sorted in a temporary array; if that cannot be allocated, the whole trie is walked instead,
 * so a walk never fails for lack of memory. */
static int list_walk(const struct wg_allowedips *t, const struct trie *tr, int family,
		     const struct node *head, wg_allowedips_cb cb, void *ctx)
{
	const struct node *on_stack[WALK_ON_STACK], **v = on_stack;
	size_t k = 0, i;
	uint8_t buf[16];
	int ret = 0;

	for (const struct node *n = head; n; n = n->owned_next)
		k++;
	if (!k)
		return 0;
	if (k > WALK_ON_STACK) {
		v = t->alloc.zalloc(t->alloc.ctx, k * sizeof(*v));
		if (!v)
			return trie_walk_owner(tr, family, head->owner, cb, ctx);
	}
	i = 0;
	for (const struct node *n = head; n; n = n->owned_next)
		v[i++] = n;
	qsort(v, k, sizeof(*v), cmp_node);
	for (i = 0; i < k && !ret; i++) {
		store_addr(buf, v[i]->key, tr->bits);
		ret = cb(ctx, family, buf, v[i]->cidr);
	}
	if (v != on_stack)
		t->alloc.free(t->alloc.ctx, v);
	return ret;
}

int wg_allowedips_walk_owner(const struct wg_allowedips *t, const void *owner, wg_allowedips_cb cb,
			     void *ctx)
{
	const struct owner_slot *s;
	const struct node *v6;
	int ret;

	if (!t || !owner || !cb || !(s = index_find(&t->owners, owner)))
		return 0;
	v6 = s->head[1];
	ret = list_walk(t, &t->v4, AF_INET, s->head[0], cb, ctx);
	if (ret)
		return ret;
	return list_walk(t, &t->v6, AF_INET6, v6, cb, ctx);
}

size_t wg_allowedips_count(const struct wg_allowedips *t)
{
	return t ? t->count : 0;
}

size_t wg_allowedips_node_count(const struct wg_allowedips *t)
{
	return t ? t->nodes : 0;
}

/* ---- consistency check (tests) ------------------------------------------------------------- */

/* Fails the check with the line of the condition, so a test names what broke. */
#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			return __LINE__;                                                           \
	} while (0)

/* True if n hangs in tr. Depth is at most 129, so a longer chain means a corrupted parent. */
static bool in_trie(const struct trie *tr, const struct node *n)
{
	for (unsigned depth = 0; depth <= 129; depth++, n = n->parent) {
		if (!n->parent)
			return n == tr->root;
	}
	return false;
}

static int check_index(const struct wg_allowedips *t, size_t *listed)
{
	const struct owner_index *ix = &t->owners;
	size_t used = 0;

	CHECK(ix->cap ? (ix->cap & (ix->cap - 1)) == 0 && ix->slots : !ix->slots);
	for (size_t i = 0; i < ix->cap; i++)
		used += ix->slots[i].owner != NULL;
	/* The load bound guarantees a free slot, so index_find below terminates. */
	CHECK(used == ix->used && used * 4 <= ix->cap * 3);
	for (size_t i = 0; i < ix->cap; i++) {
		const struct owner_slot *s = &ix->slots[i];

		if (!s->owner) {
			CHECK(!s->head[0] && !s->head[1]);
			continue;
		}
		CHECK(index_find(ix, s->owner) == s);
		CHECK(s->head[0] || s->head[1]);
		for (unsigned fam = 0; fam < 2; fam++) {
			const struct trie *tr = fam ? &t->v6 : &t->v4;
			const struct node *prev = NULL;

			/* Consistent back links from a NULL head pointer rule out repeats, and the
			 * count bound rules out cycles. */
			for (const struct node *n = s->head[fam]; n; prev = n, n = n->owned_next) {
				CHECK(++*listed <= t->count);
				CHECK(n->owned_prev == prev);
				CHECK(n->owner == s->owner);
				CHECK(in_trie(tr, n));
			}
		}
	}
	return 0;
}

int wg_allowedips_check(const struct wg_allowedips *t)
{
	size_t listed = 0, owned = 0, nodes = 0;
	int ret;

	if (!t)
		return 0;
	ret = check_index(t, &listed);
	if (ret)
		return ret;
	for (unsigned fam = 0; fam < 2; fam++) {
		const struct trie *tr = fam ? &t->v6 : &t->v4;

		CHECK(!tr->root || !tr->root->parent);
		/* Children are checked before the walk descends or climbs through them. */
		for (const struct node *n = tr->root; n; n = preorder_next(n)) {
			CHECK(++nodes <= t->nodes);
			CHECK(n->cidr <= tr->bits);
			CHECK(n->key[0] == (n->key[0] & mask_hi(n->cidr)) &&
			      n->key[1] == (n->key[1] & mask_lo(n->cidr)));
			for (unsigned side = 0; side < 2; side++) {
				const struct node *c = n->bit[side];

				if (!c)
					continue;
				CHECK(c->parent == n && c->cidr > n->cidr);
				CHECK(prefix_matches(n, c->key) && bit_at(c->key, n->cidr) == side);
			}
			if (n->owner) {
				owned++;
				CHECK(index_find(&t->owners, n->owner));
			} else {
				CHECK(n->bit[0] && n->bit[1]);
				CHECK(!n->owned_prev && !n->owned_next);
			}
		}
	}
	/* Every listed node is owned, in its trie and listed once; as many are listed as there
	 * are owned nodes, so every owned node is on exactly its owner's list. */
	CHECK(nodes == t->nodes && owned == t->count && listed == owned);
	return 0;
}
