/* The device: static identity, peer table, receiver-index table, allowed IPs, and the glue that
 * turns time into timer events. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "wg_int.h"

bool wg_endpoint_eq(const struct wg_endpoint *a, const struct wg_endpoint *b)
{
	if (a->addr.sa.sa_family != b->addr.sa.sa_family || a->tls_conn != b->tls_conn)
		return false;
	if (a->addr.sa.sa_family == AF_INET)
		return a->addr.in4.sin_port == b->addr.in4.sin_port &&
		       a->addr.in4.sin_addr.s_addr == b->addr.in4.sin_addr.s_addr;
	if (a->addr.sa.sa_family == AF_INET6)
		return a->addr.in6.sin6_port == b->addr.in6.sin6_port &&
		       memcmp(&a->addr.in6.sin6_addr, &b->addr.in6.sin6_addr, 16) == 0 &&
		       a->addr.in6.sin6_scope_id == b->addr.in6.sin6_scope_id;
	return true;
}

void peer_emit(struct wg_peer *peer, enum wg_event_type type, const char *reason)
{
	struct wg_device *dev = peer->dev;
	if (!dev->io.event)
		return;
	struct wg_event ev = {type, peer, reason, peer->has_endpoint ? &peer->endpoint : NULL};
	dev->io.event(dev->io.ctx, &ev);
}

/* ---- receiver-index table ----------------------------------------------------------------- */

static unsigned index_bucket(uint32_t index)
{
	/* Indexes are random, so their low bits are a fine hash. */
	return index % INDEX_BUCKETS;
}

struct index_entry *index_lookup(struct wg_device *dev, uint32_t index)
{
	for (struct index_entry *e = dev->index_buckets[index_bucket(index)]; e; e = e->next)
		if (e->index == index)
			return e;
	return NULL;
}

void index_insert_keep(struct wg_device *dev, struct index_entry *e)
{
	unsigned b = index_bucket(e->index);
	e->next = dev->index_buckets[b];
	dev->index_buckets[b] = e;
	e->hashed = true;
}

void index_insert(struct wg_device *dev, struct index_entry *e)
{
	/* A random index, retried until unused (whitepaper 5.4.2: "randomly generated"). */
	do
		e->index = sg_random_u32();
	while (index_lookup(dev, e->index));
	index_insert_keep(dev, e);
}

void index_remove(struct wg_device *dev, struct index_entry *e)
{
	if (!e->hashed)
		return;
	struct index_entry **pp = &dev->index_buckets[index_bucket(e->index)];
	for (; *pp; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	}
	e->next = NULL;
	e->hashed = false;
}

/* ---- keys and sessions -------------------------------------------------------------------- */

static void keypair_free(struct wg_keypair *kp)
{
	sg_aead_free(kp->tx);
	sg_aead_free(kp->rx);
	sg_memzero(kp, sizeof(*kp));
	free(kp);
}

void keypair_destroy(struct wg_device *dev, struct wg_keypair *kp)
{
	if (!kp)
		return;
	index_remove(dev, &kp->entry);
	if (kp->ops) {
		/* Ops of a batch still hold it: out of reach from now on, freed by the last. */
		kp->dead = true;
		return;
	}
	keypair_free(kp);
}

void keypair_release(struct wg_keypair *kp)
{
	if (--kp->ops == 0 && kp->dead)
		keypair_free(kp);
}

bool wg_crypt_op_run(struct wg_crypt_op *op, unsigned lane)
{
	if (op->encrypt)
		op->ok = sg_aead_seal_lane(op->aead, lane, op->data, op->data, op->len, op->nonce);
	else
		op->ok = sg_aead_open_lane(op->aead, lane, op->data, op->data, op->len, op->nonce);
	return op->ok;
}

void keypairs_clear(struct wg_peer *peer)
{
	keypair_destroy(peer->dev, peer->kp_next);
	keypair_destroy(peer->dev, peer->kp_current);
	keypair_destroy(peer->dev, peer->kp_previous);
	peer->kp_next = peer->kp_current = peer->kp_previous = NULL;
}

void handshake_clear(struct wg_peer *peer)
{
	if (!peer->act)
		return; /* never handshook: nothing to clear */
	struct wg_handshake *hs = &peer->act->hs;
	index_remove(peer->dev, &hs->entry);
	hs->state = HANDSHAKE_ZEROED;
	noise_symmetric_wipe(&hs->sym);
	if (hs->mode == SG_SUITE_CLASSIC)
		sg_x25519_forget(hs->ephemeral_priv); /* no cached copy outlives the handshake */
	sg_memzero(hs->ephemeral_priv, sizeof(hs->ephemeral_priv));
	sg_memzero(hs->remote_ephemeral, sizeof(hs->remote_ephemeral));
	hs->remote_index = 0;
}

struct wg_peer_active *peer_activate(struct wg_peer *peer)
{
	if (peer->act)
		return peer->act;
	struct wg_peer_active *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	/* The MAC keys are hashes of the peer's public keys: made here, not for every idle peer. */
	if (!cookie_maker_init(&a->cookie, peer->public_key) ||
	    (peer->has_fips && !cookie_maker_set_key(&a->cookie, SG_SUITE_FIPS, peer->fips_public))) {
		cookie_maker_wipe(&a->cookie);
		free(a);
		return NULL;
	}
	peer->act = a;
	return a;
}

static void peer_deactivate(struct wg_peer *peer)
{
	struct wg_peer_active *a = peer->act;
	if (!a)
		return;
	cookie_maker_wipe(&a->cookie);
	sg_memzero(a, sizeof(*a));
	free(a);
	peer->act = NULL;
}

/* Our classic key or the peer's changed: its static-static DH is computed again on next use. */
static void peer_forget_static_static(struct wg_peer *peer)
{
	if (!peer->act)
		return;
	sg_memzero(peer->act->static_static, sizeof(peer->act->static_static));
	peer->act->ss = SS_UNKNOWN;
}

/* Invalidate the sending side of live sessions so the next packet starts a new handshake. */
static void peer_expire_sessions(struct wg_peer *peer)
{
	if (peer->kp_current)
		peer->kp_current->send_valid = false;
	if (peer->kp_next)
		peer->kp_next->send_valid = false;
	handshake_clear(peer);
	/* The next handshake may go out at once, not REKEY_TIMEOUT after the last one (the
	 * kernel's wg_noise_reset_last_sent_handshake). */
	peer->has_sent_handshake = false;
}

/* ---- device ------------------------------------------------------------------------------- */

struct wg_device *wg_device_new(const struct wg_io *io)
{
	struct wg_device *dev;

	if (sg_crypto_init() != 0)
		return NULL;
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return NULL;
	dev->io = *io;
	dev->aips = wg_allowedips_new();
	dev->ratelimiter = malloc(sizeof(*dev->ratelimiter));
	dev->reject_limiter = malloc(sizeof(*dev->reject_limiter));
	if (!dev->aips || !dev->ratelimiter || !dev->reject_limiter) {
		wg_allowedips_free(dev->aips);
		free(dev->ratelimiter);
		free(dev->reject_limiter);
		free(dev);
		return NULL;
	}
	ratelimiter_init(dev->ratelimiter);
	ratelimiter_init(dev->reject_limiter);
	dev->crypto_mode = WG_CRYPTO_AUTO;
	dev->hash_seed = sg_random_u64();
	dev->mtu = 1420;
	dev->up = true;
	return dev;
}

void wg_device_free(struct wg_device *dev)
{
	if (!dev)
		return;
	assert(dev->ops_in_flight == 0); /* the split data path's contract (wg.h) */
	wg_device_remove_all_peers(dev);
	wg_allowedips_free(dev->aips);
	free(dev->ratelimiter);
	free(dev->reject_limiter);
	free(dev->heap);
	free(dev->peer_buckets);
	free(dev->fips_buckets);
	cookie_checker_wipe(&dev->checker);
	if (dev->has_key)
		sg_x25519_forget(dev->static_private);
	sg_memzero(dev, sizeof(*dev));
	free(dev);
}

void wg_device_set_mtu(struct wg_device *dev, uint16_t mtu)
{
	dev->mtu = mtu;
}

int wg_device_set_route_mtus(struct wg_device *dev, const struct wg_route_mtu *routes, size_t n)
{
	if (n > WG_ROUTE_MTU_MAX)
		return SG_ERANGE;
	for (size_t i = 0; i < n; i++) {
		const struct wg_route_mtu *r = &routes[i];
		if (!(r->family == AF_INET && r->cidr <= 32) &&
		    !(r->family == AF_INET6 && r->cidr <= 128))
			return SG_EINVAL;
	}
	if (n)
		memcpy(dev->route_mtus, routes, n * sizeof(*routes));
	dev->n_route_mtus = n;
	return 0;
}

void wg_device_send_staged(struct wg_device *dev, uint64_t now)
{
	assert(dev->ops_in_flight == 0);
	if (!dev->up)
		return;
	for (struct wg_peer *p = dev->peers_head; p; p = p->list_next)
		if (p->staged.count)
			send_staged(p, now);
}

void wg_device_set_up(struct wg_device *dev, bool up, uint64_t now)
{
	assert(dev->ops_in_flight == 0);
	if (up == dev->up)
		return;
	dev->up = up;
	for (struct wg_peer *p = dev->peers_head; p; p = p->list_next) {
		if (!up) {
			/* The kernel's wg_stop: nothing survives a down but the configuration. */
			staged_purge(p);
			timers_stop(p);
			handshake_clear(p);
			keypairs_clear(p);
			p->has_sent_handshake = false;
			continue;
		}
		/* wg_open: what waits, and a hello from every persistent-keepalive peer. */
		if (p->keepalive_interval && p->has_endpoint)
			send_keepalive(p, now);
		else if (p->staged.count)
			send_staged(p, now);
	}
}

bool wg_device_is_up(const struct wg_device *dev)
{
	return dev->up;
}

int wg_device_set_private_key(struct wg_device *dev, const uint8_t key[WG_KEY_LEN])
{
	uint8_t priv[32], pub[32];
	struct wg_peer *p, *next;

	assert(dev->ops_in_flight == 0);
	if (dev->has_key && !(key && sg_memeq(key, dev->static_private, 32)))
		sg_x25519_forget(dev->static_private); /* no cached copy of a replaced key */
	if (!key || sg_is_zero(key, WG_KEY_LEN)) {
		sg_memzero(dev->static_private, 32);
		memset(dev->static_public, 0, 32);
		dev->has_key = false;
		if (!cookie_checker_set_key(&dev->checker, SG_SUITE_CLASSIC, NULL))
			return SG_ECRYPTO;
		for (p = dev->peers_head; p; p = p->list_next) {
			peer_forget_static_static(p);
			peer_expire_sessions(p);
		}
		return 0;
	}
	memcpy(priv, key, 32);
	sg_x25519_clamp(priv);
	if (!sg_x25519_public(pub, priv)) {
		sg_memzero(priv, sizeof(priv));
		return SG_ECRYPTO;
	}
	if (dev->has_key && sg_memeq(priv, dev->static_private, 32)) {
		sg_memzero(priv, sizeof(priv));
		return 0; /* unchanged: keep the sessions (wireguard-go does the same) */
	}
	/* A peer with our own public key cannot exist (wireguard-go removes it). */
	for (p = dev->peers_head; p; p = next) {
		next = p->list_next;
		if (sg_memeq(p->public_key, pub, 32))
			wg_device_remove_peer(dev, p);
	}
	memcpy(dev->static_private, priv, 32);
	memcpy(dev->static_public, pub, 32);
	sg_memzero(priv, sizeof(priv));
	dev->has_key = true;
	if (!cookie_checker_set_key(&dev->checker, SG_SUITE_CLASSIC, dev->static_public))
		return SG_ECRYPTO;
	for (p = dev->peers_head; p; p = p->list_next) {
		peer_forget_static_static(p);
		peer_expire_sessions(p);
	}
	return 0;
}

bool wg_device_get_private_key(const struct wg_device *dev, uint8_t key[WG_KEY_LEN])
{
	if (dev->has_key)
		memcpy(key, dev->static_private, 32);
	return dev->has_key;
}

bool wg_device_get_public_key(const struct wg_device *dev, uint8_t key[WG_KEY_LEN])
{
	if (dev->has_key)
		memcpy(key, dev->static_public, 32);
	return dev->has_key;
}

int wg_device_set_fips_private_key(struct wg_device *dev, const uint8_t key[WG_FIPS_PRIV_LEN])
{
	uint8_t pub[WG_FIPS_PUB_LEN];
	struct wg_peer *p, *next;

	assert(dev->ops_in_flight == 0);
	if (!key || sg_is_zero(key, WG_FIPS_PRIV_LEN)) {
		sg_memzero(dev->fips_private, sizeof(dev->fips_private));
		memset(dev->fips_public, 0, sizeof(dev->fips_public));
		dev->has_fips_key = false;
	} else {
		if (!sg_p384_public(pub, key))
			return SG_EINVAL;
		if (dev->has_fips_key && sg_memeq(key, dev->fips_private, WG_FIPS_PRIV_LEN))
			return 0; /* unchanged: keep the sessions */
		for (p = dev->peers_head; p; p = next) {
			next = p->list_next;
			if (p->has_fips && sg_memeq(p->fips_public, pub, WG_FIPS_PUB_LEN))
				wg_device_remove_peer(dev, p);
		}
		memcpy(dev->fips_private, key, WG_FIPS_PRIV_LEN);
		memcpy(dev->fips_public, pub, WG_FIPS_PUB_LEN);
		dev->has_fips_key = true;
	}
	/* Sessions made with the old key (or none now) go at once, with the cached DH results:
	 * removing a key must stop its traffic both ways, not only the sending. */
	for (p = dev->peers_head; p; p = p->list_next) {
		if (p->act) {
			sg_memzero(p->act->fips_static_static, sizeof(p->act->fips_static_static));
			p->act->fips_ss = SS_UNKNOWN;
		}
		peer_drop_sessions(p, SG_SUITE_FIPS);
		p->fallback = false;
	}
	if (!cookie_checker_set_key(&dev->checker, SG_SUITE_FIPS,
				    dev->has_fips_key ? dev->fips_public : NULL))
		return SG_ECRYPTO;
	return 0;
}

bool wg_device_get_fips_private_key(const struct wg_device *dev, uint8_t key[WG_FIPS_PRIV_LEN])
{
	if (dev->has_fips_key)
		memcpy(key, dev->fips_private, WG_FIPS_PRIV_LEN);
	return dev->has_fips_key;
}

bool wg_device_get_fips_public_key(const struct wg_device *dev, uint8_t key[WG_FIPS_PUB_LEN])
{
	if (dev->has_fips_key)
		memcpy(key, dev->fips_public, WG_FIPS_PUB_LEN);
	return dev->has_fips_key;
}

/* A policy change: every session and in-flight handshake of a mode the policy no longer allows
 * goes (not only the current keypair: a next or previous one, or a handshake in flight, would
 * otherwise complete or be promoted in the refused mode). */
static void peer_policy_changed(struct wg_peer *peer)
{
	peer->fallback = false;
	peer_drop_sessions(peer, -1);
}

int wg_device_set_crypto_mode(struct wg_device *dev, enum wg_crypto_mode mode)
{
	if (mode != WG_CRYPTO_AUTO && mode != WG_CRYPTO_FIPS && mode != WG_CRYPTO_CLASSIC)
		return SG_EINVAL;
	dev->crypto_mode = mode;
	for (struct wg_peer *p = dev->peers_head; p; p = p->list_next)
		peer_policy_changed(p);
	return 0;
}

enum wg_crypto_mode wg_device_get_crypto_mode(const struct wg_device *dev)
{
	return dev->crypto_mode;
}

const char *wg_crypto_mode_name(enum wg_crypto_mode m)
{
	switch (m) {
	case WG_CRYPTO_AUTO:
		return "auto";
	case WG_CRYPTO_FIPS:
		return "fips";
	case WG_CRYPTO_CLASSIC:
		return "classic";
	default:
		return "inherit";
	}
}

int wg_crypto_mode_parse(const char *s, bool allow_inherit)
{
	if (!strcmp(s, "auto"))
		return WG_CRYPTO_AUTO;
	if (!strcmp(s, "fips"))
		return WG_CRYPTO_FIPS;
	if (!strcmp(s, "classic"))
		return WG_CRYPTO_CLASSIC;
	if (allow_inherit && !strcmp(s, "inherit"))
		return WG_CRYPTO_INHERIT;
	return -1;
}

void wg_device_tick(struct wg_device *dev, uint64_t now)
{
	timers_tick_device(dev, now);
}

uint64_t wg_device_next_deadline(const struct wg_device *dev)
{
	return timers_next_device(dev);
}

void wg_device_force_under_load(struct wg_device *dev, bool on)
{
	dev->forced_under_load = on;
}

void wg_device_get_stats(const struct wg_device *dev, struct wg_device_stats *out)
{
	*out = dev->stats;
}

/* ---- peers -------------------------------------------------------------------------------- */

static uint64_t key_hash(const struct wg_device *dev, const uint8_t pub[32])
{
	/* Keys are public, but which bucket they land in is not: seeded FNV-1a. */
	uint64_t h = dev->hash_seed ^ 0xcbf29ce484222325ULL;
	for (int i = 0; i < 32; i++)
		h = (h ^ pub[i]) * 0x100000001b3ULL;
	return h ^ (h >> 32);
}

static size_t peer_bucket(const struct wg_device *dev, const uint8_t pub[32])
{
	return (size_t)key_hash(dev, pub) & (dev->peer_nbuckets - 1);
}

static size_t fips_bucket(const struct wg_device *dev, const uint8_t pub[WG_FIPS_PUB_LEN])
{
	/* The x coordinate after the parity byte is as good a source as a whole key. */
	return (size_t)key_hash(dev, pub + 1) & (dev->fips_nbuckets - 1);
}

/* Makes room for `count` peers in a table of *nbuckets buckets: doubles it (rehashing every
 * peer, so the cost per added peer stays constant) when it would hold more peers than buckets.
 * false when out of memory (the table is unchanged). */
static bool table_grow(struct wg_device *dev, bool fips, size_t count)
{
	struct wg_peer ***tab = fips ? &dev->fips_buckets : &dev->peer_buckets;
	size_t *nb = fips ? &dev->fips_nbuckets : &dev->peer_nbuckets;
	if (count <= *nb)
		return true;
	size_t n = *nb ? *nb * 2 : PEER_BUCKETS_MIN;
	struct wg_peer **t = calloc(n, sizeof(*t));
	if (!t)
		return false;
	free(*tab);
	*tab = t;
	*nb = n;
	for (struct wg_peer *p = dev->peers_head; p; p = p->list_next) {
		if (fips && p->has_fips) {
			size_t b = fips_bucket(dev, p->fips_public);
			p->fips_hash_next = t[b];
			t[b] = p;
		} else if (!fips) {
			size_t b = peer_bucket(dev, p->public_key);
			p->hash_next = t[b];
			t[b] = p;
		}
	}
	return true;
}

struct wg_peer *wg_device_find_peer_fips(const struct wg_device *dev,
					 const uint8_t pub[WG_FIPS_PUB_LEN])
{
	if (!dev->fips_count)
		return NULL;
	for (struct wg_peer *p = dev->fips_buckets[fips_bucket(dev, pub)]; p; p = p->fips_hash_next)
		if (sg_memeq(p->fips_public, pub, WG_FIPS_PUB_LEN))
			return p;
	return NULL;
}

static void fips_unhash(struct wg_peer *peer)
{
	struct wg_device *dev = peer->dev;
	if (!peer->has_fips)
		return;
	struct wg_peer **pp = &dev->fips_buckets[fips_bucket(dev, peer->fips_public)];
	for (; *pp; pp = &(*pp)->fips_hash_next) {
		if (*pp == peer) {
			*pp = peer->fips_hash_next;
			break;
		}
	}
	peer->fips_hash_next = NULL;
	dev->fips_count--;
}

void wg_fips_peer_id(uint8_t id[WG_KEY_LEN], const uint8_t fips_pub[WG_FIPS_PUB_LEN])
{
	if (!sg_fips_peer_id(id, fips_pub))
		abort(); /* SHA-384 of public data cannot fail short of a broken library */
}

int wg_peer_set_fips_public_key(struct wg_peer *peer, const uint8_t pub[WG_FIPS_PUB_LEN])
{
	struct wg_device *dev = peer->dev;
	uint8_t id[WG_KEY_LEN];

	if (pub) {
		struct wg_peer *other = wg_device_find_peer_fips(dev, pub);
		if (other == peer)
			return 0;
		if (other)
			return SG_EEXIST;
		if (dev->has_fips_key && sg_memeq(pub, dev->fips_public, WG_FIPS_PUB_LEN))
			return SG_EINVAL;
		if (!sg_p384_public_valid(pub))
			return SG_EINVAL;
		if (!peer->has_fips && !table_grow(dev, true, dev->fips_count + 1))
			return SG_ENOMEM;
	}
	fips_unhash(peer);
	peer_drop_sessions(peer, SG_SUITE_FIPS);
	peer_expire_sessions(peer);
	struct wg_peer_active *a = peer->act;
	if (a) {
		sg_memzero(a->fips_static_static, sizeof(a->fips_static_static));
		a->fips_ss = SS_UNKNOWN;
	}
	peer->fallback = false;
	peer->remote_caps = 0;
	if (!pub) {
		memset(peer->fips_public, 0, WG_FIPS_PUB_LEN);
		peer->has_fips = false;
		/* A peer known by a FIPS peer id has no classic key: it stays without one. */
		peer->has_classic = !peer->pubkey_is_id;
		peer_forget_static_static(peer);
		return !a || cookie_maker_set_key(&a->cookie, SG_SUITE_FIPS, NULL) ? 0 : SG_ECRYPTO;
	}
	memcpy(peer->fips_public, pub, WG_FIPS_PUB_LEN);
	peer->has_fips = true;
	wg_fips_peer_id(id, pub);
	if (sg_memeq(id, peer->public_key, WG_KEY_LEN))
		peer->pubkey_is_id = true;
	peer->has_classic = !peer->pubkey_is_id;
	peer_forget_static_static(peer);
	size_t b = fips_bucket(dev, pub);
	peer->fips_hash_next = dev->fips_buckets[b];
	dev->fips_buckets[b] = peer;
	dev->fips_count++;
	return !a || cookie_maker_set_key(&a->cookie, SG_SUITE_FIPS, pub) ? 0 : SG_ECRYPTO;
}

bool wg_peer_get_fips_public_key(const struct wg_peer *peer, uint8_t pub[WG_FIPS_PUB_LEN])
{
	if (peer->has_fips)
		memcpy(pub, peer->fips_public, WG_FIPS_PUB_LEN);
	return peer->has_fips;
}

bool wg_peer_is_fips_only(const struct wg_peer *peer)
{
	return !peer->has_classic;
}

void wg_peer_set_crypto_mode(struct wg_peer *peer, enum wg_crypto_mode mode)
{
	if (mode > WG_CRYPTO_CLASSIC)
		mode = WG_CRYPTO_INHERIT;
	peer->crypto_mode = mode;
	peer_policy_changed(peer);
}

enum wg_crypto_mode wg_peer_get_crypto_mode(const struct wg_peer *peer)
{
	return peer->crypto_mode;
}

struct wg_peer *wg_device_find_peer(const struct wg_device *dev, const uint8_t pubkey[WG_KEY_LEN])
{
	if (!dev->peer_count)
		return NULL;
	for (struct wg_peer *p = dev->peer_buckets[peer_bucket(dev, pubkey)]; p; p = p->hash_next)
		if (sg_memeq(p->public_key, pubkey, 32))
			return p;
	return NULL;
}

int wg_device_add_peer(struct wg_device *dev, const uint8_t pubkey[WG_KEY_LEN],
		       struct wg_peer **out)
{
	bool created;
	int err = wg_device_get_or_add_peer(dev, pubkey, out, &created);
	if (err == 0 && !created) {
		*out = NULL;
		return SG_EEXIST;
	}
	return err;
}

int wg_device_get_or_add_peer(struct wg_device *dev, const uint8_t pubkey[WG_KEY_LEN],
			      struct wg_peer **out, bool *created)
{
	struct wg_peer *peer;

	*out = NULL;
	*created = false;
	if (dev->has_key && sg_memeq(pubkey, dev->static_public, 32))
		return SG_EINVAL;
	/* One lookup for both: at a million peers each is a cache miss or two. */
	if ((*out = wg_device_find_peer(dev, pubkey)) != NULL)
		return 0;
	if (dev->peer_count >= WG_MAX_PEERS)
		return SG_EFULL;
	if (timers_reserve(dev, dev->peer_count + 1) || !table_grow(dev, false, dev->peer_count + 1))
		return SG_ENOMEM;
	peer = calloc(1, sizeof(*peer));
	if (!peer)
		return SG_ENOMEM;
	peer->dev = dev;
	peer->has_classic = true;
	memcpy(peer->public_key, pubkey, 32);
	/* Nothing else: the keys derived from pubkey and the static-static DH are made when the
	 * peer first handshakes (peer_activate), so loading a million peers is cheap. */
	size_t b = peer_bucket(dev, pubkey);
	peer->hash_next = dev->peer_buckets[b];
	dev->peer_buckets[b] = peer;
	peer->list_prev = dev->peers_tail;
	if (dev->peers_tail)
		dev->peers_tail->list_next = peer;
	else
		dev->peers_head = peer;
	dev->peers_tail = peer;
	dev->peer_count++;
	*out = peer;
	*created = true;
	return 0;
}

void wg_device_remove_peer(struct wg_device *dev, struct wg_peer *peer)
{
	assert(dev->ops_in_flight == 0);
	if (dev->io.peer_removed)
		dev->io.peer_removed(dev->io.ctx, peer);
	struct wg_peer **pp = &dev->peer_buckets[peer_bucket(dev, peer->public_key)];
	for (; *pp; pp = &(*pp)->hash_next) {
		if (*pp == peer) {
			*pp = peer->hash_next;
			break;
		}
	}
	if (peer->list_prev)
		peer->list_prev->list_next = peer->list_next;
	else
		dev->peers_head = peer->list_next;
	if (peer->list_next)
		peer->list_next->list_prev = peer->list_prev;
	else
		dev->peers_tail = peer->list_prev;
	dev->peer_count--;
	fips_unhash(peer);
	wg_allowedips_remove_by_owner(dev->aips, peer);
	timers_stop(peer);
	staged_purge(peer);
	keypairs_clear(peer);
	handshake_clear(peer);
	peer_deactivate(peer);
	sg_memzero(peer, sizeof(*peer));
	free(peer);
}

void wg_device_remove_all_peers(struct wg_device *dev)
{
	while (dev->peers_head)
		wg_device_remove_peer(dev, dev->peers_head);
}

struct wg_peer *wg_device_first_peer(const struct wg_device *dev)
{
	return dev->peers_head;
}

struct wg_peer *wg_peer_next(const struct wg_peer *peer)
{
	return peer->list_next;
}

size_t wg_device_peer_count(const struct wg_device *dev)
{
	return dev->peer_count;
}

const uint8_t *wg_peer_public_key(const struct wg_peer *peer)
{
	return peer->public_key;
}

void wg_peer_set_preshared_key(struct wg_peer *peer, const uint8_t psk[WG_KEY_LEN])
{
	if (psk)
		memcpy(peer->psk, psk, 32);
	else
		sg_memzero(peer->psk, 32);
}

void wg_peer_get_preshared_key(const struct wg_peer *peer, uint8_t psk[WG_KEY_LEN])
{
	memcpy(psk, peer->psk, 32);
}

void wg_peer_set_endpoint(struct wg_peer *peer, const struct wg_endpoint *ep)
{
	peer->src_rejected = false;
	if (!ep || (ep->addr.sa.sa_family != AF_INET && ep->addr.sa.sa_family != AF_INET6)) {
		peer->has_endpoint = false;
		memset(&peer->endpoint, 0, sizeof(peer->endpoint));
		return;
	}
	peer->endpoint = *ep;
	peer->has_endpoint = true;
}

bool wg_endpoint_same_source(const struct wg_endpoint *a, const struct wg_endpoint *b)
{
	if (a->has_src != b->has_src)
		return false;
	if (!a->has_src)
		return true;
	if (a->src_ifindex != b->src_ifindex)
		return false;
	if (a->addr.sa.sa_family == AF_INET)
		return a->src4.s_addr == b->src4.s_addr;
	return memcmp(&a->src6, &b->src6, sizeof(a->src6)) == 0;
}

bool wg_peer_set_source_usable(struct wg_peer *peer, const struct wg_endpoint *checked,
			       bool usable)
{
	if (!peer->has_endpoint || !peer->endpoint.has_src ||
	    !wg_endpoint_eq(&peer->endpoint, checked) ||
	    !wg_endpoint_same_source(&peer->endpoint, checked))
		return false;
	peer->src_rejected = !usable;
	return true;
}

void wg_peer_set_persistent_keepalive(struct wg_peer *peer, uint16_t secs, uint64_t now)
{
	bool was_off = peer->keepalive_interval == 0;
	peer->keepalive_interval = secs;
	if (!secs) {
		timers_disarm_persistent_keepalive(peer);
		return;
	}
	/* Turning it on: say hello now, so a peer behind NAT becomes reachable (the kernel and
	 * wireguard-go). Without a key yet the keepalive waits and its handshake starts when one
	 * is set (wg_device_send_staged); while down, coming up sends it (wg_device_set_up). */
	if (was_off && peer->dev->up && peer->has_endpoint)
		send_keepalive(peer, now);
}

void wg_peer_get_stats(const struct wg_peer *peer, struct wg_peer_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->rx_bytes = peer->rx_bytes;
	out->tx_bytes = peer->tx_bytes;
	out->rx_packets = peer->rx_packets;
	out->tx_packets = peer->tx_packets;
	out->last_handshake_real_ns = peer->last_handshake_real_ns;
	out->persistent_keepalive = peer->keepalive_interval;
	out->has_endpoint = peer->has_endpoint;
	if (peer->has_endpoint)
		out->endpoint = peer->endpoint;
	out->mode = peer->kp_current ? (int)peer->kp_current->suite->id : -1;
	out->remote_caps = peer->remote_caps;
	out->fallback = peer->fallback;
	out->src_rejected = peer->src_rejected;
}

int wg_peer_add_allowed_ip(struct wg_peer *peer, int family, const void *addr, uint8_t cidr)
{
	return wg_allowedips_insert(peer->dev->aips, family, addr, cidr, peer);
}

int wg_peer_remove_allowed_ip(struct wg_peer *peer, int family, const void *addr, uint8_t cidr)
{
	return wg_allowedips_remove(peer->dev->aips, family, addr, cidr, peer);
}

void wg_peer_clear_allowed_ips(struct wg_peer *peer)
{
	wg_allowedips_remove_by_owner(peer->dev->aips, peer);
}

int wg_peer_foreach_allowed_ip(const struct wg_peer *peer, wg_allowed_ip_cb cb, void *ctx)
{
	return wg_allowedips_walk_owner(peer->dev->aips, peer, cb, ctx);
}

void wg_peer_initiate(struct wg_peer *peer, uint64_t now)
{
	send_handshake_initiation(peer, now, false);
}

bool wg_peer_probe(struct wg_peer *peer, const struct wg_endpoint *to, uint64_t now)
{
	struct wg_endpoint saved = peer->endpoint;
	bool had = peer->has_endpoint, sent;

	/* send_handshake_initiation sends to the peer's endpoint: lend it the probe's. */
	peer->endpoint = *to;
	peer->has_endpoint = true;
	sent = send_handshake_initiation(peer, now, false);
	peer->endpoint = saved;
	peer->has_endpoint = had;
	return sent;
}

void wg_peer_set_user(struct wg_peer *peer, void *user)
{
	peer->user = user;
}

void *wg_peer_get_user(const struct wg_peer *peer)
{
	return peer->user;
}
