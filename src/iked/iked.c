/* secureguard-iked's I/O shell (iked.h): the IKE core and ESP on the project's event loop,
 * UDP sockets, TUN device and routes, the same pieces secureguardd is made of.
 *
 * Port 4500 carries IKE behind a 4-byte zero non-ESP marker, ESP (a non-zero SPI first) and
 * one-byte 0xff NAT keepalives (RFC 3948 2.2, 2.3). Port 500 carries IKE only. The core floats
 * every IKE SA to 4500 (see src/ike/sa.c), so ESP always travels in UDP, as with strongSwan's
 * kernel-libipsec.
 *
 * One TUN device serves every Child SA (kernel-libipsec's model): a route per remote traffic
 * selector goes through it, with a local address inside the local selector as preferred source
 * when the host has one. A packet read from the device is sent with the Child SA whose selectors
 * hold its source and destination; an ESP packet received is checked against its SA's selectors
 * before it is written to the device.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <secureguard/sg_errors.h>

#include "common/log.h"
#include "crypto/ipsec.h"
#include "crypto/pki.h"
#include "engine/cpool.h"
#include "iked/iked.h"
#include "ike/keys.h"
#include "net/addr.h"
#include "net/rtconf.h"

uint64_t iked_now(void)
{
	return evloop_now_ns();
}

static const char *ep_str(const struct ike_endpoint *ep, char *buf, size_t size)
{
	char a[INET6_ADDRSTRLEN];
	if (!inet_ntop(ep->family, ep->addr, a, sizeof(a)))
		snprintf(a, sizeof(a), "?");
	snprintf(buf, size, ep->family == AF_INET6 ? "[%s]:%u" : "%s:%u", a, ep->port);
	return buf;
}

/* ---- endpoints between the core (ike_endpoint) and the UDP shell (wg_endpoint) ------------- */

static void to_wg(const struct ike_endpoint *in, struct wg_endpoint *out)
{
	memset(out, 0, sizeof(*out));
	if (in->family == AF_INET) {
		out->addr.in4.sin_family = AF_INET;
		memcpy(&out->addr.in4.sin_addr, in->addr, 4);
		out->addr.in4.sin_port = htons(in->port);
	} else {
		out->addr.in6.sin6_family = AF_INET6;
		memcpy(&out->addr.in6.sin6_addr, in->addr, 16);
		out->addr.in6.sin6_port = htons(in->port);
	}
}

static void from_wg(const struct wg_endpoint *in, struct ike_endpoint *out)
{
	memset(out, 0, sizeof(*out));
	if (in->addr.sa.sa_family == AF_INET) {
		out->family = AF_INET;
		memcpy(out->addr, &in->addr.in4.sin_addr, 4);
		out->port = ntohs(in->addr.in4.sin_port);
	} else {
		out->family = AF_INET6;
		memcpy(out->addr, &in->addr.in6.sin6_addr, 16);
		out->port = ntohs(in->addr.in6.sin6_port);
	}
}

/* ---- the core's upcalls --------------------------------------------------------------------- */

static void up_send(void *ctx, uint16_t from_port, const struct ike_endpoint *to,
		    const uint8_t *buf, size_t len)
{
	struct iked *d = ctx;
	struct wg_endpoint ep;
	to_wg(to, &ep);
	if (from_port == IKE_NATT_PORT) {
		/* RFC 3948 2.2: the non-ESP marker. */
		uint8_t tmp[IKE_MAX_MSG + 4];
		if (len > IKE_MAX_MSG)
			return;
		memset(tmp, 0, 4);
		memcpy(tmp + 4, buf, len);
		udp_tx_queue(&d->u4500, &d->tx4500, &ep, tmp, len + 4, 0);
		udp_tx_flush(&d->u4500, &d->tx4500);
	} else {
		udp_tx_queue(&d->u500, &d->tx500, &ep, buf, len, 0);
		udp_tx_flush(&d->u500, &d->tx500);
	}
}

static bool addr_in_range(const uint8_t *a, const struct ike_ts *t, size_t al)
{
	return memcmp(a, t->start, al) >= 0 && memcmp(a, t->end, al) <= 0;
}

/* A range as prefixes (routes): the largest aligned blocks covering it, at most 16. */
static void route_range(struct iked *d, bool add, const struct ike_ts *t, const uint8_t *src)
{
	int fam = t->type == IKE_TS_IPV4_ADDR_RANGE ? AF_INET : AF_INET6;
	size_t al = fam == AF_INET ? 4 : 16;
	uint8_t cur[16];
	memcpy(cur, t->start, al);
	for (int guard = 0; guard < 16; guard++) {
		/* The longest prefix starting at cur that stays within [cur, end]. */
		unsigned plen = (unsigned)al * 8;
		while (plen > 0) {
			unsigned p = plen - 1;
			/* cur must be aligned to /p, and cur|hostmask(p) <= end. */
			uint8_t hi[16];
			bool aligned = true;
			for (size_t i = 0; i < al; i++) {
				unsigned bits = p > i * 8 ? (unsigned)SG_MIN(8u, p - i * 8) : 0;
				uint8_t mask = bits ? (uint8_t)(0xff << (8 - bits)) : 0;
				if (cur[i] & (uint8_t)~mask)
					aligned = false;
				hi[i] = (uint8_t)(cur[i] | (uint8_t)~mask);
			}
			if (!aligned || memcmp(hi, t->end, al) > 0)
				break;
			plen = p;
		}
		int err = route_change(add, fam, cur, plen, d->tun.ifindex, src);
		if (err && add) {
			char a[INET6_ADDRSTRLEN];
			sg_log(SG_LOG_WARN, "route_failed", "dst=%s/%u error=\"%s\"",
			       inet_ntop(fam, cur, a, sizeof(a)) ? a : "?", plen, strerror(-err));
		}
		/* Next block: cur + 2^(bits - plen); stop past the end. */
		uint8_t hi[16];
		for (size_t i = 0; i < al; i++) {
			unsigned bits = plen > i * 8 ? (unsigned)SG_MIN(8u, plen - i * 8) : 0;
			uint8_t mask = bits ? (uint8_t)(0xff << (8 - bits)) : 0;
			hi[i] = (uint8_t)(cur[i] | (uint8_t)~mask);
		}
		if (memcmp(hi, t->end, al) >= 0)
			return;
		for (int i = (int)al - 1; i >= 0; i--)
			if (++hi[i] != 0)
				break;
		memcpy(cur, hi, al);
	}
}

/* A local address inside the local selectors, as the routes' preferred source. */
static bool local_source(const struct ike_ts *lts, unsigned nl, int fam, uint8_t *out)
{
	struct ifaddrs *ifa, *i;
	bool found = false;
	if (getifaddrs(&ifa) != 0)
		return false;
	for (i = ifa; i && !found; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != fam)
			continue;
		const uint8_t *a =
		    fam == AF_INET
			? (const uint8_t *)&((struct sockaddr_in *)i->ifa_addr)->sin_addr
			: (const uint8_t *)&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
		for (unsigned k = 0; k < nl && !found; k++) {
			const struct ike_ts *t = &lts[k];
			if ((t->type == IKE_TS_IPV4_ADDR_RANGE) != (fam == AF_INET))
				continue;
			if (addr_in_range(a, t, fam == AF_INET ? 4 : 16)) {
				memcpy(out, a, fam == AF_INET ? 4 : 16);
				found = true;
			}
		}
	}
	freeifaddrs(ifa);
	return found;
}

/* Whether a Child SA other than `ch_self`, or a trap other than `trap_self`, routes t. */
static bool route_used(const struct iked *d, const struct ike_ts *t, const struct iked_child *ch_self,
		       const struct iked_trap *trap_self)
{
	for (const struct iked_child *o = d->children; o; o = o->next)
		for (unsigned j = 0; o != ch_self && j < o->nremote_ts; j++)
			if (!memcmp(&o->remote_ts[j], t, sizeof(*t)))
				return true;
	for (const struct iked_trap *o = d->traps; o; o = o->next)
		for (unsigned j = 0; o != trap_self && j < o->nremote_ts; j++)
			if (!memcmp(&o->remote_ts[j], t, sizeof(*t)))
				return true;
	return false;
}

/* Routes through the TUN device for remote selectors; a route another child or trap uses too
 * (a rekeyed child during the overlap, a trap and its Child SA) goes with the last one. */
static void routes_for(struct iked *d, const struct ike_ts *lts, unsigned nl,
		       const struct ike_ts *rts, unsigned nr, bool add, const struct iked_child *ch_self,
		       const struct iked_trap *trap_self)
{
	for (unsigned k = 0; k < nr; k++) {
		const struct ike_ts *t = &rts[k];
		int fam = t->type == IKE_TS_IPV4_ADDR_RANGE ? AF_INET : AF_INET6;
		if (!add && route_used(d, t, ch_self, trap_self))
			continue;
		uint8_t src[16];
		bool has_src = add && local_source(lts, nl, fam, src);
		route_range(d, add, t, has_src ? src : NULL);
	}
}

static void routes(struct iked *d, struct iked_child *ch, bool add)
{
	routes_for(d, ch->local_ts, ch->nlocal_ts, ch->remote_ts, ch->nremote_ts, add, ch, NULL);
}

static void up_child_up(void *ctx, struct ike_sa *sa, const struct ike_child_info *i)
{
	struct iked *d = ctx;
	struct iked_child *ch = calloc(1, sizeof(*ch));
	const struct ike_peer_cfg *cfg = ike_sa_peer_cfg(sa);
	if (!ch)
		return;
	snprintf(ch->conn, sizeof(ch->conn), "%s", cfg ? cfg->name : "?");
	snprintf(ch->name, sizeof(ch->name), "%s", i->name ? i->name : "?");
	ch->unique_id = ++d->next_child_id;
	ch->spi_in = i->spi_in;
	ch->spi_out = i->spi_out;
	ch->encr = i->encr;
	ch->encr_bits = i->encr_bits;
	ch->integ = i->integ;
	ch->esn = i->esn;
	ch->transport = i->transport;
	ch->remote = i->remote;
	ch->installed_at = iked_now();
	ch->nlocal_ts = SG_MIN(i->nlocal_ts, (unsigned)IKE_MAX_TS);
	ch->nremote_ts = SG_MIN(i->nremote_ts, (unsigned)IKE_MAX_TS);
	memcpy(ch->local_ts, i->local_ts, ch->nlocal_ts * sizeof(ch->local_ts[0]));
	memcpy(ch->remote_ts, i->remote_ts, ch->nremote_ts * sizeof(ch->remote_ts[0]));
	if (esp_sa_init(&ch->in, i->spi_in, i->encr, i->encr_bits, i->integ, i->key_in, i->key_len,
			i->integ_in, i->integ_len, i->esn, false) ||
	    esp_sa_init(&ch->out, i->spi_out, i->encr, i->encr_bits, i->integ, i->key_out,
			i->key_len, i->integ_out, i->integ_len, i->esn, true)) {
		sg_log(SG_LOG_ERROR, "child_install_failed", "conn=%s child=%s", ch->conn,
		       ch->name);
		esp_sa_wipe(&ch->in);
		esp_sa_wipe(&ch->out);
		free(ch);
		return;
	}
	ch->in.transport = ch->out.transport = ch->transport;
	/* Transport mode: the peers' own addresses are the selectors (host to host). */
	if (ch->transport && ch->nlocal_ts && ch->nremote_ts) {
		ch->in.family = ch->local_ts[0].type == IKE_TS_IPV4_ADDR_RANGE ? 4 : 6;
		memcpy(ch->in.local, ch->local_ts[0].start, 16);
		memcpy(ch->in.remote, ch->remote_ts[0].start, 16);
	}
	/* Byte and packet lifetimes of its child config. */
	for (struct iked_conn *c = d->conns; c; c = c->next)
		for (unsigned k = 0; !strcmp(c->cfg.name, ch->conn) && k < c->cfg.nchildren; k++) {
			const struct iked_child_opts *co = &c->child[k];
			if (strcmp(c->cfg.children[k].name, ch->name))
				continue;
			ch->out.soft_bytes = ch->in.soft_bytes = co->rekey_bytes;
			ch->out.hard_bytes = ch->in.hard_bytes = co->life_bytes;
			ch->out.soft_packets = ch->in.soft_packets = co->rekey_packets;
			ch->out.hard_packets = ch->in.hard_packets = co->life_packets;
		}
	ch->next = d->children;
	d->children = ch;
	routes(d, ch, true);
	char ep[64];
	sg_log(SG_LOG_INFO, "child_up", "conn=%s child=%s spi_in=%08x spi_out=%08x peer=%s mode=%s",
	       ch->conn, ch->name, ch->spi_in, ch->spi_out, ep_str(&ch->remote, ep, sizeof(ep)),
	       ch->transport ? "transport" : "tunnel");
	iked_vici_child_event(d, ch, true);
}

static void child_unlink_free(struct iked *d, struct iked_child *ch)
{
	for (struct iked_child **pp = &d->children; *pp; pp = &(*pp)->next)
		if (*pp == ch) {
			*pp = ch->next;
			break;
		}
	routes(d, ch, false);
	esp_sa_wipe(&ch->in);
	esp_sa_wipe(&ch->out);
	free(ch);
}

static void up_child_down(void *ctx, struct ike_sa *sa, uint32_t spi_in, uint32_t spi_out)
{
	struct iked *d = ctx;
	(void)sa;
	for (struct iked_child *ch = d->children; ch; ch = ch->next)
		if (ch->spi_in == spi_in && ch->spi_out == spi_out) {
			sg_log(SG_LOG_INFO, "child_down",
			       "conn=%s child=%s spi_in=%08x spi_out=%08x "
			       "bytes_in=%llu bytes_out=%llu",
			       ch->conn, ch->name, spi_in, spi_out,
			       (unsigned long long)ch->in.bytes, (unsigned long long)ch->out.bytes);
			iked_vici_child_event(d, ch, false);
			child_unlink_free(d, ch);
			return;
		}
}

static void up_event(void *ctx, const struct ike_event *ev)
{
	struct iked *d = ctx;
	static const char *const names[] = {"ike_up",	       "ike_down",	"child_up_core",
					    "child_down_core", "ike_rejected",	"retransmit",
					    "invalid_ke",      "cookie",	"dpd_dead",
					    "ike_rekeyed",     "child_rekeyed", "rekey_collision"};
	const char *name = (unsigned)ev->type < SG_ARRAY_LEN(names) ? names[ev->type] : "ike_event";
	char q[160];
	enum sg_log_level lvl = ev->type == IKE_EV_REJECTED || ev->type == IKE_EV_RETRANSMIT
				    ? SG_LOG_DEBUG
				    : SG_LOG_INFO;
	if (ev->type != IKE_EV_CHILD_UP && ev->type != IKE_EV_CHILD_DOWN)
		sg_log(lvl, name, "conn=%s%s%s", ev->peer ? ev->peer : "-",
		       ev->reason ? " reason=" : "",
		       ev->reason ? sg_log_quote(q, sizeof(q), ev->reason) : "");
	iked_vici_ike_event(d, ev);
}

/* ---- data path ------------------------------------------------------------------------------ */

static struct iked_child *child_for_packet(struct iked *d, const uint8_t *p, size_t len)
{
	const uint8_t *src, *dst;
	size_t al;
	uint8_t type;
	if (len >= 20 && (p[0] >> 4) == 4) {
		src = p + 12, dst = p + 16, al = 4, type = IKE_TS_IPV4_ADDR_RANGE;
	} else if (len >= 40 && (p[0] >> 4) == 6) {
		src = p + 8, dst = p + 24, al = 16, type = IKE_TS_IPV6_ADDR_RANGE;
	} else {
		return NULL;
	}
	for (struct iked_child *ch = d->children; ch; ch = ch->next) {
		if (ch->out.hard_reached)
			continue;
		bool s = false, t = false;
		for (unsigned k = 0; k < ch->nlocal_ts && !s; k++)
			s = ch->local_ts[k].type == type &&
			    addr_in_range(src, &ch->local_ts[k], al);
		for (unsigned k = 0; k < ch->nremote_ts && !t; k++)
			t = ch->remote_ts[k].type == type &&
			    addr_in_range(dst, &ch->remote_ts[k], al);
		if (s && t)
			return ch; /* the newest first: a rekeyed child's successor wins */
	}
	return NULL;
}

static void lifetime(struct iked *d, struct iked_child *ch, int rc)
{
	struct ike_sa *sa = ike_sa_by_child(d->ike, ch->spi_in);
	if (sa && (rc == ESP_SOFT || rc == ESP_E_HARD))
		ike_child_expired(sa, ch->spi_in, rc == ESP_E_HARD, iked_now());
}

static void run_op(void *ctx, size_t i, unsigned lane)
{
	esp_op_run(&((struct iked_op *)ctx)[i].op, lane);
}

/* The cipher work of a batch of ops, spread over the crypto lanes (small batches stay on this
 * thread: cpool.h). The loop thread waits: nothing else touches the SAs meanwhile. */
static void run_ops(struct iked *d, struct iked_op *ops, unsigned n)
{
	if (d->pool) {
		cpool_run_fn(d->pool, n, run_op, ops);
		return;
	}
	for (unsigned i = 0; i < n; i++)
		esp_op_run(&ops[i].op, 0);
}

int iked_start_lanes(struct iked *d)
{
	const char *from;
	unsigned lanes = cpool_default_lanes(&from);
	if (lanes > 1) {
		int err = cpool_new(&d->pool, lanes);
		if (err)
			return err;
	}
	sg_log(SG_LOG_INFO, "crypto_lanes", "lanes=%u from=%s", lanes, from);
	return 0;
}

/* Sends the outbound batch: the cipher work, then the datagrams in the order prepared, then the
 * lifetimes reached (reported after the batch, so no op outlives its Child SA). */
static void tx_flush(struct iked *d)
{
	unsigned n = d->ntx;
	if (!n)
		return;
	d->ntx = 0;
	run_ops(d, d->tx_ops, n);
	for (unsigned i = 0; i < n; i++) {
		struct iked_op *o = &d->tx_ops[i];
		if (o->op.result) {
			d->tun_dropped++;
			continue;
		}
		struct wg_endpoint ep;
		to_wg(&o->ch->remote, &ep);
		udp_tx_queue(&d->u4500, &d->tx4500, &ep, o->op.buf, o->op.len, 0);
		d->esp_out++;
	}
	for (unsigned i = 0; i < n; i++)
		if (d->tx_ops[i].prep == ESP_SOFT)
			lifetime(d, d->tx_ops[i].ch, ESP_SOFT);
}

/* Whether a packet's source and destination lie in the selectors (local, remote). */
static bool packet_in(const uint8_t *p, size_t len, const struct ike_ts *lts, unsigned nl,
		      const struct ike_ts *rts, unsigned nr)
{
	const uint8_t *src, *dst;
	size_t al;
	uint8_t type;
	if (len >= 20 && (p[0] >> 4) == 4)
		src = p + 12, dst = p + 16, al = 4, type = IKE_TS_IPV4_ADDR_RANGE;
	else if (len >= 40 && (p[0] >> 4) == 6)
		src = p + 8, dst = p + 24, al = 16, type = IKE_TS_IPV6_ADDR_RANGE;
	else
		return false;
	bool s = false, t = false;
	for (unsigned k = 0; k < nl && !s; k++)
		s = lts[k].type == type && addr_in_range(src, &lts[k], al);
	for (unsigned k = 0; k < nr && !t; k++)
		t = rts[k].type == type && addr_in_range(dst, &rts[k], al);
	return s && t;
}

/* A packet no Child SA carries: if a trap covers it, its child is initiated (once at a time,
 * at most every IKED_ACQUIRE_RETRY_NS). The packet is dropped either way. */
static void acquire(struct iked *d, const uint8_t *pkt, size_t len)
{
	uint64_t now = iked_now();
	for (struct iked_trap *t = d->traps; t; t = t->next) {
		if (!packet_in(pkt, len, t->local_ts, t->nlocal_ts, t->remote_ts, t->nremote_ts))
			continue;
		if (t->acquires && now - t->acquire_at < IKED_ACQUIRE_RETRY_NS)
			return;
		if (t->acquiring && now - t->acquire_at < IKE_RETX_BASE_NS * 10)
			return; /* under way (an initiation gives up long before) */
		t->acquire_at = now;
		t->acquires++;
		int rc = iked_initiate(d, t->conn, t->child);
		t->acquiring = rc == 0;
		sg_log(rc && rc != SG_EEXIST ? SG_LOG_WARN : SG_LOG_INFO, "acquire",
		       "conn=%s child=%s%s%s", t->conn, t->child, rc ? " error=" : "",
		       rc ? sg_strerror(rc) : "");
		return;
	}
}

int iked_trap_uninstall(struct iked *d, const char *conn, const char *child)
{
	for (struct iked_trap **pp = &d->traps; *pp; pp = &(*pp)->next) {
		struct iked_trap *t = *pp;
		if ((conn && strcmp(t->conn, conn)) || strcmp(t->child, child))
			continue;
		*pp = t->next;
		routes_for(d, t->local_ts, t->nlocal_ts, t->remote_ts, t->nremote_ts, false, NULL,
			   t);
		sg_log(SG_LOG_INFO, "trap_uninstalled", "conn=%s child=%s", t->conn, t->child);
		free(t);
		return 0;
	}
	return SG_ENOENT;
}

int iked_trap_install(struct iked *d, const char *conn, const char *child)
{
	const struct iked_conn *c;
	for (c = d->conns; c && strcmp(c->cfg.name, conn); c = c->next)
		;
	const struct ike_child_cfg *cc = NULL;
	for (unsigned i = 0; c && i < c->cfg.nchildren && !cc; i++)
		if (!strcmp(c->cfg.children[i].name, child))
			cc = &c->cfg.children[i];
	if (!cc || !c->has_remote)
		return SG_ENOENT;
	struct iked_trap *t = calloc(1, sizeof(*t));
	if (!t)
		return SG_ENOMEM;
	iked_trap_uninstall(d, conn, child); /* replaced: its routes come back below */
	snprintf(t->conn, sizeof(t->conn), "%s", conn);
	snprintf(t->child, sizeof(t->child), "%s", child);
	t->transport = cc->transport;
	t->nlocal_ts = cc->nlocal_ts;
	t->nremote_ts = cc->nremote_ts;
	for (unsigned k = 0; k < cc->nlocal_ts; k++)
		memcpy(&t->local_ts[k], &cc->local_ts[k], sizeof(t->local_ts[k]));
	for (unsigned k = 0; k < cc->nremote_ts; k++)
		memcpy(&t->remote_ts[k], &cc->remote_ts[k], sizeof(t->remote_ts[k]));
	t->next = d->traps;
	d->traps = t;
	routes_for(d, t->local_ts, t->nlocal_ts, t->remote_ts, t->nremote_ts, true, NULL, t);
	sg_log(SG_LOG_INFO, "trap_installed", "conn=%s child=%s", conn, child);
	return 0;
}

void iked_trap_done(struct iked *d, const char *conn, const char *child)
{
	for (struct iked_trap *t = d->traps; t; t = t->next)
		if (!strcmp(t->conn, conn) && (!child || !strcmp(t->child, child)))
			t->acquiring = false;
}

/* One packet read from the TUN device (a segment of a GSO read, or the read itself). */
static void tun_packet(struct iked *d, const uint8_t *pkt, size_t len)
{
	struct iked_child *ch = child_for_packet(d, pkt, len);
	if (!ch) {
		d->tun_no_sa++;
		if (d->traps)
			acquire(d, pkt, len);
		return;
	}
	if (len + ESP_MAX_OVERHEAD > IKED_SLOT) {
		/* Bigger than an MTU: one by one, after what is batched (order kept). */
		static uint8_t out[65536 + ESP_MAX_OVERHEAD];
		size_t olen;
		tx_flush(d);
		int rc = esp_encap(&ch->out, 0, pkt, len, out, sizeof(out), &olen);
		if (rc < 0) {
			d->tun_dropped++;
			lifetime(d, ch, rc);
			return;
		}
		struct wg_endpoint ep;
		to_wg(&ch->remote, &ep);
		udp_tx_queue(&d->u4500, &d->tx4500, &ep, out, olen, 0);
		d->esp_out++;
		if (rc == ESP_SOFT)
			lifetime(d, ch, rc);
		return;
	}
	struct iked_op *o = &d->tx_ops[d->ntx];
	uint8_t *slot = d->tx_slots + (size_t)d->ntx * IKED_SLOT;
	int rc = esp_encap_prepare(&ch->out, pkt, len, slot, IKED_SLOT, &o->op);
	if (rc < 0) {
		d->tun_dropped++;
		lifetime(d, ch, rc);
		return;
	}
	o->ch = ch;
	o->prep = rc;
	if (++d->ntx == IKED_BATCH)
		tx_flush(d);
}

static void on_tun(void *ctx, uint32_t events)
{
	struct iked *d = ctx;
	(void)events;
	for (int n = 0; n < 64; n++) {
		if (!d->tun.vnet_hdr) {
			ssize_t len = tun_read(&d->tun, d->pkt + 64, 65535);
			if (len < 0)
				break;
			tun_packet(d, d->pkt + 64, (size_t)len);
			continue;
		}
		ssize_t len = tun_read(&d->tun, d->frame, TUN_READ_MAX);
		if (len < 0)
			break;
		struct offload_tx tx;
		const char *why = "";
		const uint8_t *seg;
		size_t seg_len;
		if (offload_tx_parse(&tx, d->frame, (size_t)len, &why) != 0) {
			d->tun_dropped++;
			continue;
		}
		while (offload_tx_next(&tx, d->seg, OFFLOAD_MAX_PKT, &seg, &seg_len) > 0)
			tun_packet(d, seg, seg_len);
	}
	tx_flush(d);
	udp_tx_flush(&d->u4500, &d->tx4500);
}

/* The GRO table's output: a coalesced super-packet or a packet as it came. */
static void gro_emit(void *ctx, const uint8_t hdr[OFFLOAD_VNET_HDR_LEN], const uint8_t *pkt,
		     size_t len)
{
	struct iked *d = ctx;
	struct offload_vnet_hdr h;
	int err = tun_write_vnet(&d->tun, hdr, pkt, len);
	offload_vnet_hdr_decode(&h, hdr);
	if (err != -EINVAL || h.gso_type == OFFLOAD_GSO_NONE) {
		if (err)
			d->tun_dropped++;
		return;
	}
	/* The kernel refuses GSO writes: coalesce no more, and write this one's segments. */
	if (!d->gro_off)
		sg_log(SG_LOG_WARN, "tun_gro_disabled", "error=\"%s\"", strerror(-err));
	d->gro_off = true;
	struct offload_tx tx;
	const char *why = "";
	const uint8_t *seg;
	size_t seg_len;
	memcpy(d->frame, hdr, OFFLOAD_VNET_HDR_LEN);
	memcpy(d->frame + OFFLOAD_VNET_HDR_LEN, pkt, len);
	if (offload_tx_parse(&tx, d->frame, OFFLOAD_VNET_HDR_LEN + len, &why) != 0) {
		d->tun_dropped++;
		return;
	}
	while (offload_tx_next(&tx, d->seg, OFFLOAD_MAX_PKT, &seg, &seg_len) > 0)
		if (tun_write(&d->tun, seg, seg_len) != 0)
			d->tun_dropped++;
}

static bool inner_ok(const struct iked_child *ch, const uint8_t *p, size_t len)
{
	const uint8_t *src, *dst;
	size_t al;
	uint8_t type;
	if (len >= 20 && (p[0] >> 4) == 4 && (size_t)(p[2] << 8 | p[3]) <= len)
		src = p + 12, dst = p + 16, al = 4, type = IKE_TS_IPV4_ADDR_RANGE;
	else if (len >= 40 && (p[0] >> 4) == 6)
		src = p + 8, dst = p + 24, al = 16, type = IKE_TS_IPV6_ADDR_RANGE;
	else
		return false;
	bool s = false, t = false;
	for (unsigned k = 0; k < ch->nremote_ts && !s; k++)
		s = ch->remote_ts[k].type == type && addr_in_range(src, &ch->remote_ts[k], al);
	for (unsigned k = 0; k < ch->nlocal_ts && !t; k++)
		t = ch->local_ts[k].type == type && addr_in_range(dst, &ch->local_ts[k], al);
	return s && t;
}

/* An authentic inner packet: to the TUN device (or the GRO table), the peer's address following
 * its authentic packets (NAT rebinding), the core told of the traffic after the batch. */
static void esp_deliver(struct iked *d, struct iked_child *ch, const struct ike_endpoint *from,
			const uint8_t *inner, size_t ilen)
{
	if (!inner_ok(ch, inner, ilen)) {
		d->esp_dropped++; /* 2.9 / RFC 4301 5.2: outside the SA's selectors */
		return;
	}
	if (from->port != ch->remote.port || memcmp(from->addr, ch->remote.addr, 16))
		ch->remote = *from;
	ch->rx_seen = true;
	d->esp_in++;
	/* With a virtio header, TCP segments of one flow are held and written as one packet at
	 * the end of the receive batch. */
	if (d->tun.vnet_hdr && !d->gro_off)
		offload_gro_add(&d->gro, inner, ilen);
	else if (tun_write(&d->tun, inner, ilen) != 0)
		d->tun_dropped++;
}

static void rx_seen(struct iked *d)
{
	uint64_t now = iked_now();
	for (struct iked_child *ch = d->children; ch; ch = ch->next)
		if (ch->rx_seen) {
			struct ike_sa *sa = ike_sa_by_child(d->ike, ch->spi_in);
			if (sa)
				ike_traffic_seen(sa, now);
			ch->rx_seen = false;
		}
}

/* Completes the inbound batch in the order received. */
static void rx_flush(struct iked *d)
{
	unsigned n = d->nrx;
	if (!n)
		return;
	d->nrx = 0;
	run_ops(d, d->rx_ops, n);
	for (unsigned i = 0; i < n; i++) {
		struct iked_op *o = &d->rx_ops[i];
		uint8_t *inner;
		size_t ilen;
		o->prep = esp_decap_complete(&o->op, &inner, &ilen);
		if (o->prep < 0) {
			d->esp_dropped++;
			continue;
		}
		esp_deliver(d, o->ch, &d->rx_from[i], inner, ilen);
	}
	for (unsigned i = 0; i < n; i++)
		if (d->rx_ops[i].prep == ESP_SOFT || d->rx_ops[i].prep == ESP_E_HARD)
			lifetime(d, d->rx_ops[i].ch, d->rx_ops[i].prep);
	rx_seen(d);
}

static void esp_in(struct iked *d, const struct ike_endpoint *from, uint8_t *buf, size_t len)
{
	uint32_t spi = esp_spi(buf, len);
	struct iked_child *ch;
	for (ch = d->children; ch && ch->spi_in != spi; ch = ch->next)
		;
	if (!ch || len > sizeof(d->pkt) - 64) {
		d->esp_dropped++;
		return;
	}
	if (ch->transport) {
		/* Transport mode rebuilds an IP header in front of the payload: a copy with 40
		 * bytes of headroom, one by one after what is batched. */
		uint8_t *inner;
		size_t ilen;
		rx_flush(d);
		memcpy(d->pkt + 64, buf, len);
		int rc = esp_decap(&ch->in, 0, d->pkt + 64, len, &inner, &ilen);
		if (rc < 0) {
			d->esp_dropped++;
			lifetime(d, ch, rc);
			return;
		}
		esp_deliver(d, ch, from, inner, ilen);
		if (rc == ESP_SOFT)
			lifetime(d, ch, rc);
		rx_seen(d);
		return;
	}
	/* Tunnel mode: opened where it was received. */
	struct iked_op *o = &d->rx_ops[d->nrx];
	int rc = esp_decap_prepare(&ch->in, buf, len, &o->op);
	if (rc < 0) {
		d->esp_dropped++;
		lifetime(d, ch, rc);
		return;
	}
	o->ch = ch;
	d->rx_from[d->nrx] = *from;
	if (++d->nrx == IKED_BATCH)
		rx_flush(d);
}

static void on_udp(struct iked *d, struct udp_sock *u, uint16_t port)
{
	for (int round = 0; round < 8; round++) {
		int n = udp_recv_batch(u, &d->rx);
		if (n <= 0)
			break;
		uint64_t now = iked_now();
		for (int i = 0; i < n; i++) {
			uint8_t *buf = udp_rx_buf(&d->rx, i);
			size_t total = d->rx.msgs[i].msg_len, seg = d->rx.seg_size[i];
			struct ike_endpoint from;
			if (!total)
				continue;
			if (!seg)
				seg = total;
			from_wg(&d->rx.from[i], &from);
			/* One datagram, or several of one size the kernel coalesced (UDP GRO,
			 * 4500). */
			for (size_t off = 0; off < total; off += seg) {
				uint8_t *b = buf + off;
				size_t len = total - off < seg ? total - off : seg;
				if (port == IKE_PORT) {
					ike_receive(d->ike, now, IKE_PORT, &from, b, len);
					continue;
				}
				if (len == 1 && b[0] == 0xff)
					continue; /* NAT keepalive (RFC 3948 2.3) */
				if (len >= 4 && !b[0] && !b[1] && !b[2] && !b[3]) {
					/* IKE may install or remove Child SAs: not while ops of
					 * this batch refer to them. */
					rx_flush(d);
					ike_receive(d->ike, now, IKE_NATT_PORT, &from, b + 4,
						    len - 4);
					continue;
				}
				esp_in(d, &from, b, len);
			}
		}
		/* The buffers are reused by the next receive. */
		rx_flush(d);
		offload_gro_flush(&d->gro);
		udp_tx_flush(&d->u500, &d->tx500);
		udp_tx_flush(&d->u4500, &d->tx4500);
		if (n < UDP_BATCH)
			break;
	}
}

static void on_u500(void *ctx, uint32_t events)
{
	(void)events;
	on_udp(ctx, &((struct iked *)ctx)->u500, IKE_PORT);
}

static void on_u4500(void *ctx, uint32_t events)
{
	(void)events;
	on_udp(ctx, &((struct iked *)ctx)->u4500, IKE_NATT_PORT);
}

static void keepalives(struct iked *d, uint64_t now)
{
	if (now < d->keepalive_at)
		return;
	d->keepalive_at = now + IKED_KEEPALIVE_NS;
	static const uint8_t ka = 0xff;
	for (struct iked_child *ch = d->children; ch; ch = ch->next) {
		struct wg_endpoint ep;
		to_wg(&ch->remote, &ep);
		udp_tx_queue(&d->u4500, &d->tx4500, &ep, &ka, 1, 0);
	}
	udp_tx_flush(&d->u4500, &d->tx4500);
}

static void poll_resolves(struct iked *d);

static void arm_timer(struct iked *d)
{
	uint64_t t = SG_MIN(ike_next_deadline(d->ike), d->keepalive_at);
	if (d->resolves)
		t = SG_MIN(t, iked_now() + IKED_RESOLVE_POLL_NS);
	if (evloop_timer_arm(d->timer_fd, t) != 0)
		sg_log(SG_LOG_WARN, "timer_failed", NULL);
}

static void on_timer(void *ctx, uint32_t events)
{
	struct iked *d = ctx;
	(void)events;
	evloop_timer_ack(d->timer_fd);
	uint64_t now = iked_now();
	poll_resolves(d);
	ike_tick(d->ike, now);
	keepalives(d, now);
	udp_tx_flush(&d->u500, &d->tx500);
	udp_tx_flush(&d->u4500, &d->tx4500);
}

static void on_signal(void *ctx, uint32_t events)
{
	struct iked *d = ctx;
	struct signalfd_siginfo si;
	(void)events;
	while (read(d->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGUSR1) {
			sg_log(SG_LOG_INFO, "counters",
			       "esp_in=%llu esp_out=%llu esp_dropped=%llu tun_no_sa=%llu "
			       "tun_dropped=%llu",
			       (unsigned long long)d->esp_in, (unsigned long long)d->esp_out,
			       (unsigned long long)d->esp_dropped, (unsigned long long)d->tun_no_sa,
			       (unsigned long long)d->tun_dropped);
			continue;
		}
		sg_log(SG_LOG_INFO, "signal", "signal=%s", strsignal((int)si.ssi_signo));
		d->stop = true;
	}
}

/* ---- connections and secrets ----------------------------------------------------------------- */

/* A secret's owner against a configured identity: equal, or as DNs equal by their attributes. */
static bool id_eq(const struct ike_identity *owner, const struct ike_identity *b)
{
	if (owner->type != b->type)
		return false;
	if (owner->type == IKE_ID_DER_ASN1_DN)
		return sg_dn_match(owner->data, owner->len, b->data, b->len, NULL);
	return owner->len == b->len && !memcmp(owner->data, b->data, owner->len);
}

/* strongSwan's choice of a shared key: the secret whose owners match both identities best
 * (remote and local: 3, remote: 2, local: 1, no owners: a wildcard, 0). */
static const struct iked_secret *best_secret(const struct iked *d, const struct ike_peer_cfg *cfg)
{
	const struct iked_secret *best = NULL;
	int best_score = -1;
	for (unsigned i = 0; i < d->nsecrets; i++) {
		const struct iked_secret *s = &d->secrets[i];
		int score = 0;
		bool any = s->nowners == 0;
		for (unsigned k = 0; k < s->nowners; k++) {
			if (s->owners[k].type == IKE_ID_ANY)
				any = true; /* "%any": a wildcard owner */
			if (id_eq(&s->owners[k], &cfg->remote_id))
				score |= 2;
			if (id_eq(&s->owners[k], &cfg->local_id))
				score |= 1;
		}
		if (!score && !any)
			continue;
		if (score > best_score) {
			best = s;
			best_score = score;
		}
	}
	return best;
}

static int push_conn(struct iked *d, struct iked_conn *c, char *err, size_t errlen)
{
	bool psk = c->cfg.local_auth == IKE_AUTHC_PSK || c->cfg.remote_auth == IKE_AUTHC_PSK;
	const struct iked_secret *s = psk ? best_secret(d, &c->cfg) : NULL;
	/* The core holds references to what it was given, so a connection whose credentials
	 * went away keeps the last complete set (and its SAs). */
	bool known = ike_get_peer(d->ike, c->cfg.name) != NULL;
	/* Credentials missing yet (swanctl loads them first; a file may list them after): the
	 * connection is kept and becomes usable when they arrive. */
	if (psk && !s)
		return 0;
	if (s) {
		memcpy(c->cfg.psk, s->data, s->len);
		c->cfg.psk_len = s->len;
	}
	c->cfg.cert = c->cert;
	c->cfg.key = NULL;
	if (c->cfg.local_auth == IKE_AUTHC_PUBKEY) {
		for (unsigned i = 0; i < d->nkeys && !c->cfg.key; i++)
			if (sg_privkey_matches(d->keys[i], c->cert))
				c->cfg.key = d->keys[i];
		if (!c->cfg.key)
			return 0;
	}
	c->cfg.ncas = 0;
	if (c->cfg.remote_auth == IKE_AUTHC_PUBKEY) {
		/* The connection's cacerts, else every CA loaded (x509ca and authorities). */
		struct sg_cert *const *src = c->ncacerts ? c->cacerts : d->cas;
		unsigned n = c->ncacerts ? c->ncacerts : d->ncas;
		for (unsigned i = 0; i < n && c->cfg.ncas < IKE_MAX_CAS; i++)
			c->cfg.cas[c->cfg.ncas++] = src[i];
		for (unsigned i = 0; !c->ncacerts && i < d->nauthorities && c->cfg.ncas < IKE_MAX_CAS;
		     i++)
			c->cfg.cas[c->cfg.ncas++] = d->authorities[i].cert;
		/* None (yet): a new connection waits for them; a loaded one then refuses every
		 * certificate, as its CAs were unloaded. */
		if (!c->cfg.ncas && !known)
			return 0;
	}
	int rc = ike_set_peer(d->ike, &c->cfg);
	if (rc)
		snprintf(err, errlen, "connection '%s' rejected by the IKE core: %s", c->cfg.name,
			 sg_strerror(rc));
	return rc;
}

void iked_apply_secrets(struct iked *d)
{
	char err[128];
	for (struct iked_conn *c = d->conns; c; c = c->next)
		if (push_conn(d, c, err, sizeof(err)))
			sg_log(SG_LOG_WARN, "conn_not_applied", "conn=%s", c->cfg.name);
}

int iked_load_conn(struct iked *d, const struct iked_conn *conn, char *err, size_t errlen)
{
	struct iked_conn *c = NULL;
	for (c = d->conns; c; c = c->next)
		if (!strcmp(c->cfg.name, conn->cfg.name))
			break;
	bool fresh = !c;
	if (fresh) {
		c = calloc(1, sizeof(*c));
		if (!c) {
			snprintf(err, errlen, "out of memory");
			return SG_ENOMEM;
		}
	}
	struct iked_conn *next = c->next;
	if (!fresh)
		iked_conn_release(c); /* the old certificates: the core gets the new ones below */
	*c = *conn;
	c->next = next;
	if (fresh) {
		/* Appended, so the first loaded stays first (its proposals answer IKE_SA_INIT). */
		struct iked_conn **pp = &d->conns;
		while (*pp)
			pp = &(*pp)->next;
		*pp = c;
	}
	int rc = push_conn(d, c, err, errlen);
	if (rc)
		return rc;
	sg_log(SG_LOG_INFO, "conn_loaded", "conn=%s", c->cfg.name);
	/* Host names in remote_addrs: resolved now, for a responder's choice and for DPD's
	 * restarts (an initiate resolves them again). */
	if (c->nhosts && iked_resolve_start(d, c->cfg.name, NULL))
		sg_log(SG_LOG_WARN, "resolve_failed", "conn=%s error=\"resolver refused\"",
		       c->cfg.name);
	/* start_action = trap: the child's routes and its trap, replacing those of the connection
	 * as it was (a reload). */
	for (struct iked_trap *t = d->traps, *tn; t; t = tn) {
		tn = t->next;
		if (!strcmp(t->conn, c->cfg.name))
			iked_trap_uninstall(d, t->conn, t->child);
	}
	for (unsigned k = 0; k < c->cfg.nchildren; k++)
		if (c->child[k].trap && iked_trap_install(d, c->cfg.name, c->cfg.children[k].name))
			sg_log(SG_LOG_WARN, "trap_failed", "conn=%s child=%s", c->cfg.name,
			       c->cfg.children[k].name);
	/* start_action = start: each such child comes up (one IKE SA carries them all). */
	for (unsigned k = 0; k < c->cfg.nchildren && ike_get_peer(d->ike, c->cfg.name); k++) {
		if (!c->child[k].start)
			continue;
		int rc2 = iked_initiate(d, c->cfg.name, c->cfg.children[k].name);
		if (rc2 && rc2 != SG_EEXIST)
			sg_log(SG_LOG_WARN, "initiate_failed", "conn=%s child=%s error=\"%s\"",
			       c->cfg.name, c->cfg.children[k].name, sg_strerror(rc2));
	}
	return 0;
}

int iked_unload_conn(struct iked *d, const char *name)
{
	for (struct iked_conn **pp = &d->conns; *pp; pp = &(*pp)->next)
		if (!strcmp((*pp)->cfg.name, name)) {
			struct iked_conn *c = *pp;
			*pp = c->next;
			for (unsigned k = 0; k < c->cfg.nchildren; k++)
				iked_trap_uninstall(d, name, c->cfg.children[k].name);
			ike_remove_peer(d->ike, name);
			iked_conn_release(c);
			sg_memzero(c, sizeof(*c));
			free(c);
			sg_log(SG_LOG_INFO, "conn_unloaded", "conn=%s", name);
			return 0;
		}
	return SG_ENOENT;
}

int iked_load_secret(struct iked *d, const struct iked_secret *s)
{
	unsigned i;
	for (i = 0; i < d->nsecrets; i++)
		if (s->id[0] && !strcmp(d->secrets[i].id, s->id))
			break;
	if (i == d->nsecrets) {
		if (d->nsecrets >= IKED_MAX_SECRETS)
			return SG_EFULL;
		d->nsecrets++;
	}
	d->secrets[i] = *s;
	iked_apply_secrets(d);
	return 0;
}

void iked_unload_secret(struct iked *d, const char *id)
{
	for (unsigned i = 0; i < d->nsecrets; i++)
		if (!strcmp(d->secrets[i].id, id)) {
			sg_memzero(&d->secrets[i], sizeof(d->secrets[i]));
			d->secrets[i] = d->secrets[--d->nsecrets];
			sg_memzero(&d->secrets[d->nsecrets], sizeof(d->secrets[0]));
			return;
		}
}

/* ---- host names in remote_addrs ------------------------------------------------------------ */

static struct iked_conn *conn_named(struct iked *d, const char *name)
{
	for (struct iked_conn *c = d->conns; c; c = c->next)
		if (!strcmp(c->cfg.name, name))
			return c;
	return NULL;
}

int iked_resolve_start(struct iked *d, const char *conn, const char *child)
{
	struct iked_conn *c = conn_named(d, conn);
	if (!c || !c->nhosts)
		return SG_ENOENT;
	unsigned busy = 0;
	for (const struct iked_resolve *o = d->resolves; o; o = o->next)
		busy++;
	if (busy >= IKED_MAX_RESOLVES)
		return SG_EFULL; /* bounded: a resolver that hangs does not pile up requests */
	struct iked_resolve *r = calloc(1, sizeof(*r));
	if (!r)
		return SG_ENOMEM;
	snprintf(r->conn, sizeof(r->conn), "%s", conn);
	snprintf(r->child, sizeof(r->child), "%s", child ? child : "");
	snprintf(r->port, sizeof(r->port), "%u", c->remote_port ? c->remote_port : IKE_PORT);
	r->hints.ai_socktype = SOCK_DGRAM;
	r->hints.ai_family = AF_UNSPEC;
	r->n = c->nhosts;
	for (unsigned i = 0; i < r->n; i++) {
		r->cb[i].ar_name = c->hosts[i];
		r->cb[i].ar_service = r->port;
		r->cb[i].ar_request = &r->hints;
		r->list[i] = &r->cb[i];
	}
	/* The names are the connection's: copied, since the connection may be reloaded. */
	static_assert(sizeof(c->hosts[0]) <= 256, "host name size");
	char(*names)[256] = malloc(sizeof(c->hosts));
	if (!names) {
		free(r);
		return SG_ENOMEM;
	}
	memcpy(names, c->hosts, sizeof(c->hosts));
	for (unsigned i = 0; i < r->n; i++)
		r->cb[i].ar_name = names[i];
	struct sigevent sev = {.sigev_notify = SIGEV_NONE};
	if (getaddrinfo_a(GAI_NOWAIT, r->list, (int)r->n, &sev) != 0) {
		free(names);
		free(r);
		return SG_EIO;
	}
	r->next = d->resolves;
	d->resolves = r;
	return 0;
}

static void resolved(struct iked *d, struct iked_resolve *r)
{
	struct iked_conn *c = conn_named(d, r->conn);
	char msg[256] = "";
	unsigned n = 0;
	for (unsigned i = 0; i < r->n; i++) {
		int e = gai_error(&r->cb[i]);
		if (!c) {
			/* Unloaded while resolving: the answers are dropped. */
			if (!e)
				freeaddrinfo(r->cb[i].ar_result);
			r->cb[i].ar_result = NULL;
			continue;
		}
		if (e) {
			snprintf(msg, sizeof(msg), "resolving '%.100s' failed: %s", r->cb[i].ar_name,
				 gai_strerror(e));
			sg_log(SG_LOG_WARN, "resolve_failed", "conn=%s host=%s error=\"%s\"", r->conn,
			       r->cb[i].ar_name, gai_strerror(e));
			continue;
		}
		for (struct addrinfo *ai = r->cb[i].ar_result; ai; ai = ai->ai_next) {
			struct ike_endpoint ep;
			struct wg_endpoint we;
			if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
				continue;
			memset(&we, 0, sizeof(we));
			memcpy(&we.addr, ai->ai_addr, SG_MIN((size_t)ai->ai_addrlen, sizeof(we.addr)));
			from_wg(&we, &ep);
			if (i == 0 && n == 0 && c->host_first) {
				c->cfg.remote = ep; /* the first address of the first name */
				msg[0] = 0;
			}
			if (c->nliteral + n < IKE_MAX_ADDRS) {
				struct ike_addr_range *a = &c->cfg.remote_addrs[c->nliteral + n++];
				memset(a, 0, sizeof(*a));
				a->family = ep.family;
				memcpy(a->start, ep.addr, 16);
				memcpy(a->end, ep.addr, 16);
				a->single = true;
			}
			char as[INET6_ADDRSTRLEN];
			sg_log(SG_LOG_DEBUG, "resolved", "conn=%s host=%s addr=%s", r->conn,
			       r->cb[i].ar_name,
			       inet_ntop(ep.family, ep.addr, as, sizeof(as)) ? as : "?");
		}
		freeaddrinfo(r->cb[i].ar_result);
		r->cb[i].ar_result = NULL;
	}
	if (c && n) {
		c->cfg.nremote_addrs = c->nliteral + n;
		char err[128];
		if (push_conn(d, c, err, sizeof(err)))
			sg_log(SG_LOG_WARN, "conn_not_applied", "conn=%s", c->cfg.name);
	}
	if (!r->child[0])
		return;
	if (!c) {
		iked_vici_initiate_failed(d, r->conn, r->child, "the connection was unloaded");
		return;
	}
	if (c->host_first && !c->cfg.remote.family) {
		iked_vici_initiate_failed(d, r->conn, r->child,
					  msg[0] ? msg : "the remote host name has no address");
		return;
	}
	int rc = ike_initiate(d->ike, r->conn, r->child, iked_now());
	if (rc && rc != SG_EEXIST) {
		snprintf(msg, sizeof(msg), "establishing CHILD_SA '%.64s' failed: %s", r->child,
			 sg_strerror(rc));
		iked_vici_initiate_failed(d, r->conn, r->child, msg);
	} else if (rc == SG_EEXIST) {
		/* Up already: the initiate waiting on it is answered as with the child's up. */
		for (struct iked_child *ch = d->children; ch; ch = ch->next)
			if (!strcmp(ch->conn, r->conn) && !strcmp(ch->name, r->child)) {
				iked_vici_child_event(d, ch, true);
				break;
			}
	}
}

/* Resolutions that finished: applied (from the loop's timer). */
static void poll_resolves(struct iked *d)
{
	for (struct iked_resolve **pp = &d->resolves; *pp;) {
		struct iked_resolve *r = *pp;
		bool done = true;
		for (unsigned i = 0; i < r->n && done; i++)
			done = gai_error(&r->cb[i]) != EAI_INPROGRESS;
		if (!done) {
			pp = &r->next;
			continue;
		}
		*pp = r->next;
		resolved(d, r);
		free((void *)r->cb[0].ar_name);
		free(r);
	}
}

static void resolves_free(struct iked *d)
{
	while (d->resolves) {
		struct iked_resolve *r = d->resolves;
		d->resolves = r->next;
		/* A request the resolver already works on cannot be cancelled: wait for it (its
		 * own timeouts bound that). */
		for (unsigned i = 0; i < r->n; i++)
			if (gai_cancel(&r->cb[i]) == EAI_NOTCANCELED) {
				const struct gaicb *one[1] = {&r->cb[i]};
				while (gai_error(&r->cb[i]) == EAI_INPROGRESS)
					gai_suspend(one, 1, NULL);
			}
		for (unsigned i = 0; i < r->n; i++)
			if (gai_error(&r->cb[i]) == 0)
				freeaddrinfo(r->cb[i].ar_result);
		free((void *)r->cb[0].ar_name);
		free(r);
	}
}

int iked_initiate(struct iked *d, const char *conn, const char *child)
{
	struct iked_conn *c = conn_named(d, conn);
	if (c && c->nhosts)
		return iked_resolve_start(d, conn, child);
	return ike_initiate(d->ike, conn, child, iked_now());
}

/* ---- life ----------------------------------------------------------------------------------- */

int iked_init(struct iked *d, const char *vici_uri, const char **why)
{
	int err;
	memset(d, 0, sizeof(*d));
	d->timer_fd = d->signal_fd = -1;
	d->tun.fd = -1;
	d->u500.fd = d->u4500.fd = -1;
	d->started_ns = iked_now();
	d->started_real_ns = evloop_realtime_ns();
	d->keepalive_at = UINT64_MAX;
	struct ike_io io = {.ctx = d,
			    .send = up_send,
			    .child_up = up_child_up,
			    .child_down = up_child_down,
			    .event = up_event};
	d->ike = ike_new(&io);
	if (!d->ike) {
		*why = "ike_new";
		return -ENOMEM;
	}
	/* RFC 7383: the largest IKE fragment sent (charon's fragment_size, less the IP/UDP
	 * headers and the marker). */
	const char *fs = getenv("SG_IKE_FRAGMENT_SIZE");
	if (fs && *fs) {
		char *end;
		unsigned long v = strtoul(fs, &end, 10);
		if (*end || ike_set_fragment_size(d->ike, v)) {
			*why = "SG_IKE_FRAGMENT_SIZE must be 512..1228";
			return -EINVAL;
		}
	}
	if ((err = evloop_new(&d->loop))) {
		*why = "evloop_new";
		return err;
	}
	/* Offloads when the kernel has them; SG_DISABLE_OFFLOAD=1 turns them off (as for
	 * secureguardd). */
	const char *off = getenv("SG_DISABLE_OFFLOAD");
	bool offload = !(off && strcmp(off, "1") == 0);
	if ((err = udp_open(&d->u500, IKE_PORT, 0, false, why)) ||
	    (err = udp_open(&d->u4500, IKE_NATT_PORT, 0, offload, why)))
		return err;
	if ((err = udp_rx_init(&d->rx)) || (err = udp_tx_init(&d->tx500)) ||
	    (err = udp_tx_init(&d->tx4500))) {
		*why = "udp buffers";
		return err;
	}
	const char *tname = getenv("SG_IKE_TUN");
	d->frame = malloc(TUN_READ_MAX);
	d->seg = malloc(OFFLOAD_MAX_PKT);
	d->gro_mem = malloc((size_t)OFFLOAD_GRO_FLOWS * OFFLOAD_GRO_BUF);
	d->tx_slots = malloc((size_t)IKED_BATCH * IKED_SLOT);
	if (!d->frame || !d->seg || !d->gro_mem || !d->tx_slots) {
		*why = "out of memory";
		return -ENOMEM;
	}
	offload_gro_init(&d->gro, d->gro_mem, gro_emit, d);
	if ((err = tun_open(&d->tun, tname && *tname ? tname : IKED_TUN_NAME, IKED_TUN_MTU, offload,
			    false, why)))
		return err;
	sg_log(SG_LOG_INFO, "offload", "tun_vnet_hdr=%s udp_gso=%s udp_gro=%s%s",
	       d->tun.vnet_hdr ? "on" : "off", d->u4500.gso ? "on" : "off",
	       d->u4500.gro ? "on" : "off", offload ? "" : " reason=SG_DISABLE_OFFLOAD");
	if ((err = route_link_up(d->tun.ifindex))) {
		*why = "tun link up";
		return err;
	}
	if ((d->timer_fd = evloop_timer_new()) < 0) {
		*why = "timerfd";
		return d->timer_fd;
	}
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGUSR1);
	d->signal_fd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	if (d->signal_fd < 0) {
		*why = "signalfd";
		return -errno;
	}
	if ((err = evloop_add(d->loop, &d->src_u500, d->u500.fd, EPOLLIN, on_u500, d)) ||
	    (err = evloop_add(d->loop, &d->src_u4500, d->u4500.fd, EPOLLIN, on_u4500, d)) ||
	    (err = evloop_add(d->loop, &d->src_tun, d->tun.fd, EPOLLIN, on_tun, d)) ||
	    (err = evloop_add(d->loop, &d->src_timer, d->timer_fd, EPOLLIN, on_timer, d)) ||
	    (err = evloop_add(d->loop, &d->src_signal, d->signal_fd, EPOLLIN, on_signal, d))) {
		*why = "epoll";
		return err;
	}
	struct vici_server_ops ops = iked_vici_ops;
	ops.ctx = d;
	if ((err = vici_server_new(d->loop, vici_uri, &ops, &d->vici, why)))
		return err;
	return 0;
}

void iked_free(struct iked *d)
{
	resolves_free(d);
	cpool_free(d->pool);
	d->pool = NULL;
	while (d->traps)
		iked_trap_uninstall(d, d->traps->conn, d->traps->child);
	while (d->children)
		child_unlink_free(d, d->children);
	ike_free(d->ike);
	vici_server_free(d->vici);
	while (d->pending) {
		struct iked_pending *p = d->pending;
		d->pending = p->next;
		free(p);
	}
	while (d->conns) {
		struct iked_conn *c = d->conns;
		d->conns = c->next;
		iked_conn_release(c);
		sg_memzero(c, sizeof(*c));
		free(c);
	}
	for (unsigned i = 0; i < d->ncas; i++)
		sg_cert_free(d->cas[i]);
	for (unsigned i = 0; i < d->nkeys; i++)
		sg_privkey_free(d->keys[i]);
	for (unsigned i = 0; i < d->nauthorities; i++)
		sg_cert_free(d->authorities[i].cert);
	sg_memzero(d->secrets, sizeof(d->secrets));
	if (d->loop)
		evloop_free(d->loop);
	udp_close(&d->u500);
	udp_close(&d->u4500);
	udp_rx_free(&d->rx);
	udp_tx_free(&d->tx500);
	udp_tx_free(&d->tx4500);
	tun_close(&d->tun);
	free(d->frame);
	free(d->seg);
	free(d->gro_mem);
	free(d->tx_slots);
	if (d->timer_fd >= 0)
		close(d->timer_fd);
	if (d->signal_fd >= 0)
		close(d->signal_fd);
}

int iked_run(struct iked *d)
{
	d->keepalive_at = iked_now() + IKED_KEEPALIVE_NS;
	while (!d->stop) {
		arm_timer(d);
		int n = evloop_run_once(d->loop, -1);
		if (n < 0 && n != -EINTR) {
			sg_log(SG_LOG_ERROR, "loop_failed", "error=\"%s\"", strerror(-n));
			return 1;
		}
	}
	/* Leaving: tell the peers (DELETE), as charon does on shutdown, then go. */
	for (struct iked_conn *c = d->conns; c; c = c->next)
		if (ike_terminate(d->ike, c->cfg.name, iked_now()) == 0)
			sg_log(SG_LOG_INFO, "ike_delete_sent", "conn=%s reason=stopping",
			       c->cfg.name);
	udp_tx_flush(&d->u500, &d->tx500);
	udp_tx_flush(&d->u4500, &d->tx4500);
	sg_log(SG_LOG_INFO, "stopping", "esp_in=%llu esp_out=%llu esp_dropped=%llu tun_no_sa=%llu",
	       (unsigned long long)d->esp_in, (unsigned long long)d->esp_out,
	       (unsigned long long)d->esp_dropped, (unsigned long long)d->tun_no_sa);
	return 0;
}
