/* Allowed IPs: the cryptokey routing table of WireGuard (whitepaper section 2).
 *
 * One path-compressed binary trie per address family maps IP prefixes to an owner (the peer).
 * Sending looks up the destination address to choose a peer; receiving looks up the inner source
 * address to check that the packet came from the peer that owns it. Lookups are longest-prefix
 * match, allocate nothing, do not recurse, and visit at most one node per address bit.
 *
 * Not thread-safe: the caller serialises every call on one table (wg.h: one event loop per
 * device). Owners are opaque pointers that the table never dereferences. Besides the tries, the
 * table indexes each owner's prefixes, so per-owner calls cost that owner's prefixes, not the
 * table (a UAPI `get` walks every peer; a replacing `setconf` removes every peer).
 */
#ifndef SG_WG_ALLOWEDIPS_H
#define SG_WG_ALLOWEDIPS_H

#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"

struct wg_allowedips;

/* Empty table; NULL on allocation failure. */
struct wg_allowedips *wg_allowedips_new(void);

/* Optional allocator, so tests can inject allocation failures (as SQLite does). zalloc must
 * return zeroed memory or NULL. The table keeps a copy of the struct. */
struct wg_allowedips_allocator {
	void *ctx;
	void *(*zalloc)(void *ctx, size_t size);
	void (*free)(void *ctx, void *ptr);
};
/* Like wg_allowedips_new, with every allocation of the table (the table itself included) going
 * through `a`. NULL `a` behaves like wg_allowedips_new. */
struct wg_allowedips *wg_allowedips_new_with_allocator(const struct wg_allowedips_allocator *a);

/* Frees the table and every node; the owners are not touched. NULL is a no-op. */
void wg_allowedips_free(struct wg_allowedips *t);

/* Adds family/addr/cidr for `owner`. family is AF_INET (addr 4 bytes, cidr <= 32) or AF_INET6
 * (16 bytes, cidr <= 128); addr needs no alignment. Host bits beyond cidr are masked off. If the
 * prefix exists with another owner, it moves to `owner`. Memory: a new node, maybe a branch node,
 * and, for an owner new to the table, maybe a larger owner index (so even a move can fail).
 * Returns 0, SG_EINVAL (bad family/cidr, NULL addr/owner), SG_ENOMEM (table unchanged). */
int wg_allowedips_insert(struct wg_allowedips *t, int family, const void *addr, uint8_t cidr,
			 void *owner) SG_WUR;

/* Removes the exact prefix (host bits masked) if it is owned by `owner`; NULL = any owner.
 * Returns 0, SG_ENOENT (no such prefix, or another owner has it), SG_EINVAL (bad arguments). */
int wg_allowedips_remove(struct wg_allowedips *t, int family, const void *addr, uint8_t cidr,
			 void *owner);

/* Longest-prefix match of a full address (4 or 16 bytes): the owner, or NULL if no prefix
 * covers it or family is unknown. Hot path. */
void *wg_allowedips_lookup(const struct wg_allowedips *t, int family, const void *addr);

/* Removes every prefix owned by `owner` (NULL owns nothing: no-op). O(owner's prefixes). */
void wg_allowedips_remove_by_owner(struct wg_allowedips *t, void *owner);

/* Removes every prefix. */
void wg_allowedips_clear(struct wg_allowedips *t);

/* Calls cb(ctx, family, addr, cidr) for every prefix of `owner`: IPv4 first, then IPv6, each in
 * ascending order of (address, cidr); addr is the masked network address (4 or 16 bytes), valid
 * only during the call. Stops and returns cb's value as soon as it is non-zero; 0 otherwise.
 * cb must not modify the table. O(k log k) for the owner's k prefixes; never fails for lack of
 * memory (without room to sort, it falls back to scanning the whole table). */
typedef int (*wg_allowedips_cb)(void *ctx, int family, const uint8_t *addr, uint8_t cidr);
int wg_allowedips_walk_owner(const struct wg_allowedips *t, const void *owner, wg_allowedips_cb cb,
			     void *ctx);

/* Number of prefixes stored (both families). */
size_t wg_allowedips_count(const struct wg_allowedips *t);

/* Number of trie nodes allocated, prefixes and branch nodes (for tests: add/remove cycles must
 * not make it grow; it is at most 2 * count - 1 per family). */
size_t wg_allowedips_node_count(const struct wg_allowedips *t);

/* Checks every invariant of the table (for tests; O(table size)): trie shape, and that each
 * node with an owner is on exactly its owner's list and ownerless ones on none. Returns 0 if
 * consistent, else a positive number naming the failed check (its line in allowedips.c). */
int wg_allowedips_check(const struct wg_allowedips *t);

#endif
