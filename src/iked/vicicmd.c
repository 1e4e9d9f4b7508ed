/* The VICI commands of secureguard-iked (iked.h): what strongSwan's swanctl sends for
 * --load-all/--load-conns/--load-creds, --initiate, --terminate, --rekey, --list-sas,
 * --list-conns, --stats and --version, with charon's message layouts, so swanctl prints our
 * state as it prints charon's. Events: ike-updown, child-updown, list-sa, list-conn,
 * control-log (registered by swanctl --initiate/--terminate; we send none: the log events are
 * optional in charon too when nothing is logged at the requested level). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>
#include <time.h>

#include <secureguard/sg_errors.h>

#include "common/log.h"
#include "crypto/ipsec.h"
#include "crypto/pki.h"
#include "iked/iked.h"
#include "ike/keys.h"

#define NS 1000000000ull

static void ok(struct vici_builder *b)
{
	vici_add_kv_str(b, "success", "yes");
}

static int no(struct vici_builder *b, const char *msg)
{
	vici_add_kv_str(b, "success", "no");
	vici_add_kv_str(b, "errmsg", msg);
	return 0;
}

/* ---- formatting of SAs (charon's list-sa layout) -----------------------------------------------
 */

static const char *encr_name(uint16_t e)
{
	return e == IKE_ENCR_AES_GCM_16		 ? "AES_GCM_16"
	       : e == IKE_ENCR_CHACHA20_POLY1305 ? "CHACHA20_POLY1305"
	       : e == IKE_ENCR_AES_CBC		 ? "AES_CBC"
						 : "UNKNOWN";
}

static const char *integ_name(uint16_t i)
{
	return i == SG_INTEG_HMAC_SHA2_256_128	 ? "HMAC_SHA2_256_128"
	       : i == SG_INTEG_HMAC_SHA2_384_192 ? "HMAC_SHA2_384_192"
	       : i == SG_INTEG_HMAC_SHA2_512_256 ? "HMAC_SHA2_512_256"
						 : NULL;
}

static const char *prf_name(uint16_t p)
{
	return p == SG_PRF_HMAC_SHA2_256   ? "PRF_HMAC_SHA2_256"
	       : p == SG_PRF_HMAC_SHA2_384 ? "PRF_HMAC_SHA2_384"
	       : p == SG_PRF_HMAC_SHA2_512 ? "PRF_HMAC_SHA2_512"
					   : "UNKNOWN";
}

static const char *ke_name(uint16_t g)
{
	return g == SG_KE_MODP_2048    ? "MODP_2048"
	       : g == SG_KE_MODP_3072  ? "MODP_3072"
	       : g == SG_KE_ECP_256    ? "ECP_256"
	       : g == SG_KE_ECP_384    ? "ECP_384"
	       : g == SG_KE_ECP_521    ? "ECP_521"
	       : g == SG_KE_CURVE25519 ? "CURVE_25519"
				       : NULL;
}

static void hex(char *out, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

/* A selector as charon writes it: a prefix when the range is one, else "start..end". */
static const char *ts_str(const struct ike_ts *t, char *s, size_t size)
{
	char a[INET6_ADDRSTRLEN];
	int fam = t->type == IKE_TS_IPV4_ADDR_RANGE ? AF_INET : AF_INET6;
	size_t al = fam == AF_INET ? 4 : 16;
	unsigned plen = 0;
	bool prefix = true;
	for (size_t i = 0; i < al && prefix; i++) {
		uint8_t diff = t->start[i] ^ t->end[i];
		if (diff == 0) {
			plen += 8;
			continue;
		}
		unsigned bits = 0;
		while (bits < 8 && !(diff & (0x80 >> bits)))
			bits++;
		plen += bits;
		uint8_t mask = (uint8_t)(0xff >> bits);
		prefix = (t->start[i] & mask) == 0 && (t->end[i] & mask) == mask;
		for (size_t j = i + 1; j < al && prefix; j++)
			prefix = t->start[j] == 0 && t->end[j] == 0xff;
		break;
	}
	inet_ntop(fam, t->start, a, sizeof(a));
	if (prefix) {
		snprintf(s, size, "%s/%u", a, plen);
	} else {
		char e[INET6_ADDRSTRLEN];
		inet_ntop(fam, t->end, e, sizeof(e));
		snprintf(s, size, "%s..%s", a, e);
	}
	return s;
}

static void ts_item(struct vici_builder *b, const struct ike_ts *t)
{
	char s[2 * INET6_ADDRSTRLEN + 8];
	vici_add_list_item_str(b, ts_str(t, s, sizeof(s)));
}

/* A Child SA as charon's list_child writes it (the fields of its section). */
static void child_fields(struct vici_builder *b, const struct iked_child *ch)
{
	char spi[16];
	uint64_t now = iked_now();
	vici_add_kv_str(b, "name", ch->name);
	vici_add_kv_fmt(b, "uniqueid", "%u", ch->unique_id);
	vici_add_kv_fmt(b, "reqid", "%u", ch->unique_id);
	vici_add_kv_str(b, "state", "INSTALLED");
	vici_add_kv_str(b, "mode", ch->transport ? "TRANSPORT" : "TUNNEL");
	vici_add_kv_str(b, "protocol", "ESP");
	vici_add_kv_str(b, "encap", "yes");
	snprintf(spi, sizeof(spi), "%08x", ch->spi_in);
	vici_add_kv_str(b, "spi-in", spi);
	snprintf(spi, sizeof(spi), "%08x", ch->spi_out);
	vici_add_kv_str(b, "spi-out", spi);
	vici_add_kv_str(b, "encr-alg", encr_name(ch->encr));
	vici_add_kv_fmt(b, "encr-keysize", "%u", ch->encr_bits);
	if (integ_name(ch->integ))
		vici_add_kv_str(b, "integ-alg", integ_name(ch->integ));
	if (ch->esn)
		vici_add_kv_str(b, "esn", "1");
	vici_add_kv_fmt(b, "bytes-in", "%llu", (unsigned long long)ch->in.bytes);
	vici_add_kv_fmt(b, "packets-in", "%llu", (unsigned long long)ch->in.packets);
	vici_add_kv_fmt(b, "bytes-out", "%llu", (unsigned long long)ch->out.bytes);
	vici_add_kv_fmt(b, "packets-out", "%llu", (unsigned long long)ch->out.packets);
	vici_add_kv_fmt(b, "install-time", "%llu",
			(unsigned long long)((now - ch->installed_at) / NS));
	vici_add_list_start(b, "local-ts");
	for (unsigned k = 0; k < ch->nlocal_ts; k++)
		ts_item(b, &ch->local_ts[k]);
	vici_add_list_end(b);
	vici_add_list_start(b, "remote-ts");
	for (unsigned k = 0; k < ch->nremote_ts; k++)
		ts_item(b, &ch->remote_ts[k]);
	vici_add_list_end(b);
}

static void child_details(struct vici_builder *b, const struct iked_child *ch)
{
	char key[96];
	snprintf(key, sizeof(key), "%s-%u", ch->name, ch->unique_id);
	vici_add_section_start(b, key);
	child_fields(b, ch);
	vici_add_section_end(b);
}

/* An IKE SA as charon's list_ike writes it: its fields, without the child-sas section. */
static void sa_fields(struct vici_builder *b, struct ike_sa *sa)
{
	static const char *const states[] = {"CONNECTING", "CONNECTING", "ESTABLISHED", "DELETING",
					     "DESTROYING"};
	const struct ike_peer_cfg *cfg = ike_sa_peer_cfg(sa);
	const struct ike_chosen *p = ike_sa_proposal(sa);
	uint8_t si[8], sr[8];
	char buf[300], a[INET6_ADDRSTRLEN];
	vici_add_kv_fmt(b, "uniqueid", "%u", ike_sa_unique_id(sa));
	vici_add_kv_str(b, "version", "2");
	vici_add_kv_str(b, "state", states[ike_sa_state(sa)]);
	const struct ike_endpoint *r = ike_sa_remote(sa);
	vici_add_kv_str(b, "local-host", "%any");
	vici_add_kv_fmt(b, "local-port", "%u", ike_sa_local_port(sa));
	/* The identities in use: %any for what is not known yet (a responder's SA before
	 * IKE_AUTH), as charon shows it. */
	struct ike_identity lid, rid;
	ike_sa_ids(sa, &lid, &rid);
	vici_add_kv_str(b, "local-id", iked_identity_str(&lid, buf, sizeof(buf)));
	vici_add_kv_str(b, "remote-host", inet_ntop(r->family, r->addr, a, sizeof(a)) ? a : "%any");
	vici_add_kv_fmt(b, "remote-port", "%u", r->port);
	if (rid.type == IKE_ID_ANY && cfg)
		rid = cfg->remote_id;
	vici_add_kv_str(b, "remote-id", iked_identity_str(&rid, buf, sizeof(buf)));
	if (ike_sa_initiator(sa))
		vici_add_kv_str(b, "initiator", "yes");
	ike_sa_spis(sa, si, sr);
	hex(buf, si, 8);
	vici_add_kv_str(b, "initiator-spi", buf);
	hex(buf, sr, 8);
	vici_add_kv_str(b, "responder-spi", buf);
	vici_add_kv_str(b, "nat-remote", "yes");
	vici_add_kv_str(b, "nat-fake", "yes");
	vici_add_kv_str(b, "nat-any", "yes");
	if (p->encr) {
		vici_add_kv_str(b, "encr-alg", encr_name(p->encr));
		vici_add_kv_fmt(b, "encr-keysize", "%u",
				(unsigned)ike_encr_key_len(p->encr, p->encr_bits) * 8);
		if (integ_name(p->integ))
			vici_add_kv_str(b, "integ-alg", integ_name(p->integ));
		vici_add_kv_str(b, "prf-alg", prf_name(p->prf));
		if (ke_name(p->ke))
			vici_add_kv_str(b, "dh-group", ke_name(p->ke));
	}
	if (ike_sa_established_at(sa))
		vici_add_kv_fmt(
		    b, "established", "%llu",
		    (unsigned long long)((iked_now() - ike_sa_established_at(sa)) / NS));
}

static const char *sa_name(struct ike_sa *sa)
{
	const char *n = ike_sa_peer_name(sa);
	return n ? n : "(unknown)";
}

/* An IKE SA with its Child SAs (list-sa, ike-updown, child-updown: only that child). */
static void sa_details(struct iked *d, struct vici_builder *b, struct ike_sa *sa,
		       const struct iked_child *only)
{
	vici_add_section_start(b, sa_name(sa));
	sa_fields(b, sa);
	vici_add_section_start(b, "child-sas");
	for (struct iked_child *ch = d->children; ch; ch = ch->next)
		if ((!only || ch == only) && ike_sa_by_child(d->ike, ch->spi_in) == sa)
			child_details(b, ch);
	if (only && ike_sa_by_child(d->ike, only->spi_in) != sa)
		child_details(b, only); /* child-updown down: already detached from the SA */
	vici_add_section_end(b);
	vici_add_section_end(b);
}

/* ---- events ---------------------------------------------------------------------------------- */

/* Answers the VICI commands waiting on a connection (and child: NULL, or a pending one without a
 * child, matches any). */
static void respond_pending(struct iked *d, const char *conn, const char *child,
			    enum iked_pending_kind kind, bool success, const char *errmsg)
{
	struct iked_pending **pp = &d->pending;
	while (*pp) {
		struct iked_pending *p = *pp;
		if (p->kind == kind && !strcmp(p->name, conn) &&
		    (!child || !p->child[0] || !strcmp(p->child, child)) && !p->done) {
			if (p == d->handling) {
				/* Its handler answers when the core returns (no response from
				 * inside the command). */
				p->done = true;
				p->ok = success;
				snprintf(p->err, sizeof(p->err), "%s", errmsg ? errmsg : "");
				pp = &p->next;
				continue;
			}
			struct vici_builder b;
			vici_builder_init(&b);
			if (success)
				ok(&b);
			else
				no(&b, errmsg);
			if (kind == IKED_PENDING_TERMINATE_CHILD && success)
				vici_add_kv_str(&b, "matches", "1");
			if (vici_server_respond(d->vici, p->conn_id, &b) != 0)
				sg_log(SG_LOG_DEBUG, "vici_late_answer", "conn=%llu",
				       (unsigned long long)p->conn_id);
			vici_builder_free(&b);
			*pp = p->next;
			free(p);
			continue;
		}
		pp = &p->next;
	}
}

/* A log line as charon's bus carries it: to "log" listeners (swanctl --log), and as
 * "control-log" to each VICI connection whose initiate or terminate of this SA's connection is
 * waiting, up to the loglevel it asked for (swanctl --initiate prints these). Groups and
 * levels are charon's (IKE, CHD, CFG; 0 basic, 1 control, 2 more). */
static void vlog(struct iked *d, struct ike_sa *sa, const char *conn, const char *group, int level,
		 const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void vlog(struct iked *d, struct ike_sa *sa, const char *conn, const char *group, int level,
		 const char *fmt, ...)
{
	bool control = false;
	if (!conn && sa)
		conn = ike_sa_peer_name(sa);
	for (struct iked_pending *p = d->pending; p && conn && !control; p = p->next)
		control = !strcmp(p->name, conn) && level <= p->loglevel;
	bool listeners = vici_server_has_listener(d->vici, "log");
	if (!control && !listeners)
		return;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (int pass = 0; pass < 2; pass++) {
		struct vici_builder b;
		vici_builder_init(&b);
		vici_add_kv_str(&b, "group", group);
		vici_add_kv_fmt(&b, "level", "%d", level);
		if (pass == 1)
			vici_add_kv_str(&b, "thread", "1");
		if (sa) {
			vici_add_kv_str(&b, "ikesa-name", sa_name(sa));
			vici_add_kv_fmt(&b, "ikesa-uniqueid", "%u", ike_sa_unique_id(sa));
		}
		vici_add_kv_str(&b, "msg", msg);
		if (pass == 0) {
			for (struct iked_pending *p = d->pending; p && conn; p = p->next)
				if (!strcmp(p->name, conn) && level <= p->loglevel)
					vici_server_event(d->vici, p->conn_id, "control-log", &b);
		} else if (listeners) {
			vici_server_broadcast(d->vici, "log", &b);
		}
		vici_builder_free(&b);
	}
}

/* "local[id]...remote[id]" as charon writes the ends of an IKE SA. */
static const char *sa_ends(struct ike_sa *sa, char *buf, size_t size)
{
	struct ike_identity lid, rid;
	char li[160], ri[160], ra[INET6_ADDRSTRLEN];
	const struct ike_endpoint *r = ike_sa_remote(sa);
	ike_sa_ids(sa, &lid, &rid);
	snprintf(buf, size, "%%any[%s]...%s[%s]", iked_identity_str(&lid, li, sizeof(li)),
		 inet_ntop(r->family, r->addr, ra, sizeof(ra)) ? ra : "%any",
		 iked_identity_str(&rid, ri, sizeof(ri)));
	return buf;
}

static struct iked_child *child_by_spi(struct iked *d, uint32_t spi_in)
{
	for (struct iked_child *ch = d->children; ch; ch = ch->next)
		if (ch->spi_in == spi_in)
			return ch;
	return NULL;
}

static const char *ts_text(const struct ike_ts *ts, unsigned n, char *buf, size_t size)
{
	size_t at = 0;
	buf[0] = 0;
	for (unsigned k = 0; k < n && at + 1 < size; k++) {
		char one[2 * INET6_ADDRSTRLEN + 8];
		int w = snprintf(buf + at, size - at, "%s%s", k ? " " : "",
				 ts_str(&ts[k], one, sizeof(one)));
		if (w < 0 || (size_t)w >= size - at)
			break;
		at += (size_t)w;
	}
	return buf;
}

/* ike-rekey: {<name> {old {...}, new {...}}}, charon's layout (no child-sas). */
static void ike_rekey_event(struct iked *d, struct ike_sa *old, struct ike_sa *sa)
{
	if (!vici_server_has_listener(d->vici, "ike-rekey"))
		return;
	struct vici_builder b;
	vici_builder_init(&b);
	vici_add_section_start(&b, sa_name(old));
	vici_add_section_start(&b, "old");
	sa_fields(&b, old);
	vici_add_section_end(&b);
	vici_add_section_start(&b, "new");
	sa_fields(&b, sa);
	vici_add_section_end(&b);
	vici_add_section_end(&b);
	vici_server_broadcast(d->vici, "ike-rekey", &b);
	vici_builder_free(&b);
}

/* child-rekey: {<ike> {IKE SA fields, child-sas {<child> {old {...}, new {...}}}}}. */
static void child_rekey_event(struct iked *d, struct ike_sa *sa, const struct iked_child *old,
			      const struct iked_child *ch)
{
	if (!vici_server_has_listener(d->vici, "child-rekey"))
		return;
	struct vici_builder b;
	vici_builder_init(&b);
	vici_add_section_start(&b, sa_name(sa));
	sa_fields(&b, sa);
	vici_add_section_start(&b, "child-sas");
	vici_add_section_start(&b, old->name);
	vici_add_section_start(&b, "old");
	child_fields(&b, old);
	vici_add_section_end(&b);
	vici_add_section_start(&b, "new");
	child_fields(&b, ch);
	vici_add_section_end(&b);
	vici_add_section_end(&b);
	vici_add_section_end(&b);
	vici_add_section_end(&b);
	vici_server_broadcast(d->vici, "child-rekey", &b);
	vici_builder_free(&b);
}

void iked_vici_initiate_failed(struct iked *d, const char *conn, const char *child,
			       const char *msg)
{
	vlog(d, NULL, conn, "CFG", 0, "%s", msg);
	respond_pending(d, conn, child, IKED_PENDING_INITIATE, false, msg);
	iked_trap_done(d, conn, child);
}

void iked_vici_ike_event(struct iked *d, const struct ike_event *ev)
{
	struct ike_sa *sa = ev->sa;
	const char *why = ev->reason ? ev->reason : "";
	char ends[512];
	unsigned id = sa ? ike_sa_unique_id(sa) : 0;
	const char *name = sa ? sa_name(sa) : "";
	switch (ev->type) {
	case IKE_EV_INITIATING: {
		char ra[INET6_ADDRSTRLEN];
		const struct ike_endpoint *r = ike_sa_remote(sa);
		vlog(d, sa, NULL, "IKE", 0, "initiating IKE_SA %s[%u] to %s", name, id,
		     inet_ntop(r->family, r->addr, ra, sizeof(ra)) ? ra : "?");
		break;
	}
	case IKE_EV_IKE_UP:
	case IKE_EV_IKE_DOWN:
		if (ev->type == IKE_EV_IKE_UP)
			vlog(d, sa, NULL, "IKE", 0, "IKE_SA %s[%u] established between %s", name,
			     id, sa_ends(sa, ends, sizeof(ends)));
		else if (sa)
			vlog(d, sa, NULL, "IKE", 0, "IKE_SA %s[%u] down%s%s", name, id,
			     *why ? ": " : "", why);
		if (ev->peer && sa && vici_server_has_listener(d->vici, "ike-updown")) {
			struct vici_builder b;
			vici_builder_init(&b);
			if (ev->type == IKE_EV_IKE_UP)
				vici_add_kv_str(&b, "up", "yes");
			sa_details(d, &b, sa, NULL);
			vici_server_broadcast(d->vici, "ike-updown", &b);
			vici_builder_free(&b);
		}
		if (ev->type == IKE_EV_IKE_DOWN && ev->peer) {
			char msg[256];
			iked_trap_done(d, ev->peer, NULL);
			snprintf(msg, sizeof(msg), "establishing IKE_SA '%s' failed%s%.200s", ev->peer,
				 *why ? ": " : "", why);
			respond_pending(d, ev->peer, NULL, IKED_PENDING_INITIATE, false, msg);
			respond_pending(d, ev->peer, NULL, IKED_PENDING_TERMINATE, true, NULL);
			respond_pending(d, ev->peer, NULL, IKED_PENDING_TERMINATE_CHILD, true, NULL);
		}
		break;
	case IKE_EV_CHILD_FAILED: {
		char msg[256];
		vlog(d, sa, ev->peer, "IKE", 0, "failed to establish CHILD_SA %s: %s",
		     ev->child ? ev->child : "?", why);
		snprintf(msg, sizeof(msg), "establishing CHILD_SA '%s' failed: %.200s",
			 ev->child ? ev->child : "?", why);
		if (ev->peer) {
			respond_pending(d, ev->peer, ev->child, IKED_PENDING_INITIATE, false, msg);
			iked_trap_done(d, ev->peer, ev->child);
		}
		break;
	}
	case IKE_EV_CHILD_CREATING:
		vlog(d, sa, NULL, "IKE", 1, "establishing CHILD_SA %s", ev->child ? ev->child : "?");
		break;
	case IKE_EV_REJECTED:
		/* A failed initiation also reports IKE_DOWN or CHILD_FAILED, which answer. */
		if (sa)
			vlog(d, sa, NULL, "ENC", 1, "message refused: %s", why);
		else
			vlog(d, NULL, NULL, "NET", 2, "message refused: %s", why);
		break;
	case IKE_EV_RETRANSMIT:
		vlog(d, sa, NULL, "IKE", 1, "retransmit %u of request", ev->retransmit);
		break;
	case IKE_EV_INVALID_KE:
	case IKE_EV_COOKIE:
		vlog(d, sa, NULL, "IKE", 1, "%s", why);
		break;
	case IKE_EV_DPD_DEAD:
		vlog(d, sa, NULL, "IKE", 0, "giving up on IKE_SA %s[%u]: %s", name, id, why);
		break;
	case IKE_EV_IKE_REKEYING:
		vlog(d, sa, NULL, "IKE", 1, "rekeying IKE_SA %s[%u]", name, id);
		break;
	case IKE_EV_IKE_REKEYED:
		vlog(d, sa, NULL, "IKE", 0, "IKE_SA %s[%u] rekeyed between %s", name, id,
		     sa_ends(sa, ends, sizeof(ends)));
		if (ev->old)
			ike_rekey_event(d, ev->old, sa);
		break;
	case IKE_EV_CHILD_REKEYING: {
		const struct iked_child *ch = child_by_spi(d, ev->spi_old);
		vlog(d, sa, NULL, "IKE", 1, "rekeying CHILD_SA %s{%u}", ev->child ? ev->child : "?",
		     ch ? ch->unique_id : 0);
		break;
	}
	case IKE_EV_CHILD_REKEYED: {
		const struct iked_child *old = child_by_spi(d, ev->spi_old),
					*ch = child_by_spi(d, ev->spi_new);
		if (old && ch) {
			vlog(d, sa, NULL, "IKE", 0, "CHILD_SA %s{%u} rekeyed as %s{%u}", old->name,
			     old->unique_id, ch->name, ch->unique_id);
			child_rekey_event(d, sa, old, ch);
		}
		break;
	}
	case IKE_EV_REKEY_COLLISION:
		vlog(d, sa, NULL, "IKE", 1, "%s: resolved by the lowest nonce", why);
		break;
	case IKE_EV_DELETING:
		vlog(d, sa, NULL, "IKE", 1, "deleting IKE_SA %s[%u] between %s", name, id,
		     sa_ends(sa, ends, sizeof(ends)));
		break;
	default:
		break;
	}
}

void iked_vici_child_event(struct iked *d, struct iked_child *ch, bool up)
{
	struct ike_sa *sa = ike_sa_by_child(d->ike, ch->spi_in);
	/* Down events come while the core still holds the IKE SA (or just detached it): find
	 * the SA by the connection when the child is already gone from it. */
	if (!sa)
		for (struct ike_sa *s = ike_first_sa(d->ike); s && !sa; s = ike_sa_next(s))
			if (ike_sa_peer_name(s) && !strcmp(ike_sa_peer_name(s), ch->conn))
				sa = s;
	char lts[256], rts[256];
	ts_text(ch->local_ts, ch->nlocal_ts, lts, sizeof(lts));
	ts_text(ch->remote_ts, ch->nremote_ts, rts, sizeof(rts));
	if (up)
		vlog(d, sa, ch->conn, "IKE", 0,
		     "CHILD_SA %s{%u} established with SPIs %08x_i %08x_o and TS %s === %s",
		     ch->name, ch->unique_id, ch->spi_in, ch->spi_out, lts, rts);
	else
		vlog(d, sa, ch->conn, "CHD", 1, "CHILD_SA %s{%u} closed (SPIs %08x_i %08x_o)",
		     ch->name, ch->unique_id, ch->spi_in, ch->spi_out);
	if (sa && vici_server_has_listener(d->vici, "child-updown")) {
		struct vici_builder b;
		vici_builder_init(&b);
		if (up)
			vici_add_kv_str(&b, "up", "yes");
		sa_details(d, &b, sa, ch);
		vici_server_broadcast(d->vici, "child-updown", &b);
		vici_builder_free(&b);
	}
	if (up) {
		respond_pending(d, ch->conn, ch->name, IKED_PENDING_INITIATE, true, NULL);
		iked_trap_done(d, ch->conn, ch->name);
		return;
	}
	/* terminate --child answers when the last Child SA of that config is gone. */
	for (struct iked_child *o = d->children; o; o = o->next)
		if (o != ch && !strcmp(o->conn, ch->conn) && !strcmp(o->name, ch->name))
			return;
	respond_pending(d, ch->conn, ch->name, IKED_PENDING_TERMINATE_CHILD, true, NULL);
}

/* ---- commands -------------------------------------------------------------------------------- */

static int cmd_version(struct iked *d, struct vici_builder *b)
{
	struct utsname u;
	(void)d;
	if (uname(&u) != 0)
		memset(&u, 0, sizeof(u));
	vici_add_kv_str(b, "daemon", "secureguard-iked");
	vici_add_kv_str(b, "version", SG_VERSION);
	vici_add_kv_str(b, "sysname", u.sysname);
	vici_add_kv_str(b, "release", u.release);
	vici_add_kv_str(b, "machine", u.machine);
	return 0;
}

static int cmd_stats(struct iked *d, struct vici_builder *b)
{
	char since[64];
	time_t t = (time_t)(d->started_real_ns / NS);
	struct tm tm;
	strftime(since, sizeof(since), "%b %d %H:%M:%S %Y", localtime_r(&t, &tm));
	unsigned total = 0, half = 0;
	for (struct ike_sa *sa = ike_first_sa(d->ike); sa; sa = ike_sa_next(sa)) {
		total++;
		half += ike_sa_state(sa) == IKE_SA_CONNECTING;
	}
	vici_add_section_start(b, "uptime");
	vici_add_kv_fmt(b, "running", "%llu seconds",
			(unsigned long long)((iked_now() - d->started_ns) / NS));
	vici_add_kv_str(b, "since", since);
	vici_add_section_end(b);
	/* One event loop: one worker, which the swanctl output calls a thread. */
	vici_add_section_start(b, "workers");
	vici_add_kv_str(b, "total", "1");
	vici_add_kv_str(b, "idle", "0");
	vici_add_section_start(b, "active");
	vici_add_kv_str(b, "critical", "0");
	vici_add_kv_str(b, "high", "0");
	vici_add_kv_str(b, "medium", "1");
	vici_add_kv_str(b, "low", "0");
	vici_add_section_end(b);
	vici_add_section_end(b);
	vici_add_section_start(b, "queues");
	vici_add_kv_str(b, "critical", "0");
	vici_add_kv_str(b, "high", "0");
	vici_add_kv_str(b, "medium", "0");
	vici_add_kv_str(b, "low", "0");
	vici_add_section_end(b);
	vici_add_kv_str(b, "scheduled", "0");
	vici_add_section_start(b, "ikesas");
	vici_add_kv_fmt(b, "total", "%u", total);
	vici_add_kv_fmt(b, "half-open", "%u", half);
	vici_add_section_end(b);
	vici_add_list_start(b, "plugins");
	vici_add_list_item_str(b, "secureguard-ike");
	vici_add_list_item_str(b, "secureguard-esp");
	vici_add_list_item_str(b, "vici");
	vici_add_list_end(b);
	return 0;
}

static int cmd_load_conn(struct iked *d, uint64_t conn, const struct vici_node *req,
			 struct vici_builder *b)
{
	struct iked_conn c;
	char err[256];
	/* File names for certificates only from our own --conf (connection 0), never from a
	 * VICI client: swanctl sends their contents. */
	const char *base = conn == 0 && d->conf_dir[0] ? d->conf_dir : NULL;
	if (iked_conn_from_vici(req, base, &c, err, sizeof(err)))
		return no(b, err);
	if (iked_load_conn(d, &c, err, sizeof(err))) {
		iked_conn_release(&c);
		sg_memzero(&c, sizeof(c));
		return no(b, err);
	}
	sg_memzero(&c, sizeof(c)); /* the certificates now belong to the loaded connection */
	ok(b);
	return 0;
}

/* load-cert {type X509, flag CA|NONE|..., data}: CA certificates are the trust anchors of
 * connections without cacerts; end-entity ones come with their connection (certs). */
static int cmd_load_cert(struct iked *d, const struct vici_node *req, struct vici_builder *b)
{
	const char *type = vici_get_str(req, "type"), *flag = vici_get_str(req, "flag");
	const struct vici_node *data = vici_find(req, "data");
	if (!type || strcasecmp(type, "X509"))
		return no(b, "only X.509 certificates are supported");
	if (!data || data->type != VICI_NODE_KV)
		return no(b, "missing certificate data");
	struct sg_cert *c;
	if (sg_cert_load(data->value, data->value_len, &c))
		return no(b, "parsing X509 certificate failed");
	if (!flag || strcasecmp(flag, "CA")) {
		sg_cert_free(c);
		ok(b);
		return 0;
	}
	if (d->ncas >= IKED_MAX_CREDS) {
		sg_cert_free(c);
		return no(b, "too many CA certificates");
	}
	d->cas[d->ncas++] = c;
	iked_apply_secrets(d);
	ok(b);
	return 0;
}

/* load-authority {<name> {cacert | file}}: a named CA (swanctl.conf's authorities section), a
 * trust anchor like a CA loaded with load-cert. Revocation data and PKCS#11 tokens are refused
 * by name rather than taken and ignored. */
static int cmd_load_authority(struct iked *d, const struct vici_node *req, struct vici_builder *b)
{
	const struct vici_node *sec = req->child;
	char msg[192];
	if (!sec || sec->next || sec->type != VICI_NODE_SECTION || !sec->name[0] ||
	    strlen(sec->name) >= sizeof(d->authorities[0].name))
		return no(b, "load-authority needs one section named after the authority");
	struct sg_cert *cert = NULL;
	const char *bad = NULL;
	for (const struct vici_node *k = sec->child; k && !bad; k = k->next) {
		if (!strcmp(k->name, "cacert") && k->type == VICI_NODE_KV && !cert) {
			if (sg_cert_load(k->value, k->value_len, &cert))
				bad = "parsing X509 certificate failed";
		} else if (!strcmp(k->name, "file") && vici_node_is_str(k) && !cert) {
			/* Read by the daemon, as charon does: an absolute path it can read. */
			const char *path = (const char *)k->value;
			uint8_t *data;
			size_t len;
			int rc = path[0] == '/' ? iked_read_file(path, &data, &len) : -EINVAL;
			if (rc) {
				snprintf(msg, sizeof(msg), "file: cannot read '%.100s': %s", path,
					 rc == -EINVAL ? "not an absolute path" : strerror(-rc));
				bad = msg;
			} else {
				if (sg_cert_load(data, len, &cert))
					bad = "file: not a PEM or DER X.509 certificate";
				free(data);
			}
		} else if ((!strcmp(k->name, "crl_uris") || !strcmp(k->name, "ocsp_uris")) &&
			   k->type == VICI_NODE_LIST) {
			if (k->child) {
				snprintf(msg, sizeof(msg),
					 "%s: revocation checking (CRL and OCSP) is not supported, "
					 "authority discarded",
					 k->name);
				bad = msg;
			}
		} else if (!strcmp(k->name, "cert_uri_base")) {
			bad = "cert_uri_base: hash-and-URL certificates are not supported, authority "
			      "discarded";
		} else if (!strcmp(k->name, "handle") || !strcmp(k->name, "slot") ||
			   !strcmp(k->name, "module")) {
			bad = "PKCS#11 tokens (handle, slot, module) are not supported, authority "
			      "discarded";
		} else {
			snprintf(msg, sizeof(msg), "unknown option: %.64s, authority discarded",
				 k->name);
			bad = msg;
		}
	}
	if (!bad && !cert) {
		snprintf(msg, sizeof(msg), "CA certificate missing: %.64s", sec->name);
		bad = msg;
	}
	if (!bad && !sg_cert_is_ca(cert))
		bad = "certificate without CA flag, rejected";
	if (bad) {
		sg_cert_free(cert);
		return no(b, bad);
	}
	unsigned i;
	for (i = 0; i < d->nauthorities && strcmp(d->authorities[i].name, sec->name); i++)
		;
	if (i == d->nauthorities) {
		if (d->nauthorities >= IKED_MAX_CREDS) {
			sg_cert_free(cert);
			return no(b, "too many authorities");
		}
		d->nauthorities++;
		snprintf(d->authorities[i].name, sizeof(d->authorities[i].name), "%s", sec->name);
	}
	sg_cert_free(d->authorities[i].cert); /* a reload replaces it */
	d->authorities[i].cert = cert;
	char subj[256];
	sg_log(SG_LOG_INFO, "authority_loaded", "name=%s cacert=%s", sec->name,
	       sg_log_quote(msg, sizeof(msg), sg_cert_name(cert, subj, sizeof(subj))));
	iked_apply_secrets(d);
	ok(b);
	return 0;
}

static int cmd_unload_authority(struct iked *d, const struct vici_node *req,
				struct vici_builder *b)
{
	const char *name = vici_get_str(req, "name");
	char msg[128];
	if (!name)
		return no(b, "unload: missing authority name");
	for (unsigned i = 0; i < d->nauthorities; i++)
		if (!strcmp(d->authorities[i].name, name)) {
			struct sg_cert *c = d->authorities[i].cert;
			d->authorities[i] = d->authorities[--d->nauthorities];
			memset(&d->authorities[d->nauthorities], 0, sizeof(d->authorities[0]));
			iked_apply_secrets(d);
			sg_cert_free(c);
			sg_log(SG_LOG_INFO, "authority_unloaded", "name=%s", name);
			ok(b);
			return 0;
		}
	snprintf(msg, sizeof(msg), "unload: authority '%.64s' not found", name);
	return no(b, msg);
}

static int cmd_list_authorities(struct iked *d, uint64_t conn, const struct vici_node *req)
{
	const char *only = vici_get_str(req, "name");
	for (unsigned i = 0; i < d->nauthorities; i++) {
		const struct iked_authority *a = &d->authorities[i];
		if (only && strcmp(only, a->name))
			continue;
		const uint8_t *subj;
		size_t sl;
		char text[300];
		sg_cert_subject(a->cert, &subj, &sl);
		struct vici_builder ev;
		vici_builder_init(&ev);
		vici_add_section_start(&ev, a->name);
		vici_add_kv_str(&ev, "cacert", sg_dn_to_text(subj, sl, text, sizeof(text)));
		vici_add_list_start(&ev, "crl_uris");
		vici_add_list_end(&ev);
		vici_add_list_start(&ev, "ocsp_uris");
		vici_add_list_end(&ev);
		vici_add_section_end(&ev);
		vici_server_event(d->vici, conn, "list-authority", &ev);
		vici_builder_free(&ev);
	}
	return 0;
}

static int cmd_load_key(struct iked *d, const struct vici_node *req, struct vici_builder *b)
{
	const struct vici_node *data = vici_find(req, "data");
	struct sg_privkey *k;
	if (!data || data->type != VICI_NODE_KV ||
	    sg_privkey_load(data->value, data->value_len, &k))
		return no(b, "loading private key failed (RSA or ECDSA, PEM or DER)");
	if (d->nkeys >= IKED_MAX_CREDS) {
		sg_privkey_free(k);
		return no(b, "too many private keys");
	}
	d->keys[d->nkeys++] = k;
	iked_apply_secrets(d);
	ok(b);
	return 0;
}

static int cmd_unload_conn(struct iked *d, const struct vici_node *req, struct vici_builder *b)
{
	const char *name = vici_get_str(req, "name");
	if (!name)
		return no(b, "missing connection name");
	if (iked_unload_conn(d, name))
		return no(b, "unloading connection failed: no such connection");
	ok(b);
	return 0;
}

static int cmd_get_conns(struct iked *d, struct vici_builder *b)
{
	vici_add_list_start(b, "conns");
	for (struct iked_conn *c = d->conns; c; c = c->next)
		vici_add_list_item_str(b, c->cfg.name);
	vici_add_list_end(b);
	return 0;
}

static void conn_details(struct vici_builder *b, const struct iked_conn *c)
{
	char buf[300];
	const struct ike_peer_cfg *cfg = &c->cfg;
	vici_add_section_start(b, cfg->name);
	vici_add_list_start(b, "local_addrs");
	vici_add_list_item_str(b, c->local_addrs);
	vici_add_list_end(b);
	vici_add_list_start(b, "remote_addrs");
	vici_add_list_item_str(b, c->remote_addrs);
	vici_add_list_end(b);
	vici_add_kv_str(b, "version", "IKEv2");
	vici_add_kv_str(b, "reauth_time", "0");
	vici_add_kv_fmt(b, "rekey_time", "%llu", (unsigned long long)(cfg->rekey_time_ns / NS));
	vici_add_kv_str(b, "unique", "UNIQUE_NO");
	if (cfg->dpd_delay_ns)
		vici_add_kv_fmt(b, "dpd_delay", "%llu",
				(unsigned long long)(cfg->dpd_delay_ns / NS));
	if (cfg->dpd_timeout_ns)
		vici_add_kv_fmt(b, "dpd_timeout", "%llu",
				(unsigned long long)(cfg->dpd_timeout_ns / NS));
	vici_add_section_start(b, "local-1");
	vici_add_kv_str(b, "class",
			cfg->local_auth == IKE_AUTHC_PUBKEY ? "public key" : "pre-shared key");
	vici_add_kv_str(b, "id", iked_identity_str(&cfg->local_id, buf, sizeof(buf)));
	vici_add_section_end(b);
	vici_add_section_start(b, "remote-1");
	vici_add_kv_str(b, "class",
			cfg->remote_auth == IKE_AUTHC_PUBKEY ? "public key" : "pre-shared key");
	vici_add_kv_str(b, "id", iked_identity_str(&cfg->remote_id, buf, sizeof(buf)));
	vici_add_section_end(b);
	vici_add_section_start(b, "children");
	for (unsigned i = 0; i < cfg->nchildren; i++) {
		const struct ike_child_cfg *cc = &cfg->children[i];
		const struct iked_child_opts *co = &c->child[i];
		vici_add_section_start(b, cc->name);
		vici_add_kv_str(b, "mode", cc->transport ? "TRANSPORT" : "TUNNEL");
		vici_add_kv_fmt(b, "rekey_time", "%llu",
				(unsigned long long)(cc->rekey_time_ns / NS));
		vici_add_kv_fmt(b, "rekey_bytes", "%llu", (unsigned long long)co->rekey_bytes);
		vici_add_kv_fmt(b, "rekey_packets", "%llu", (unsigned long long)co->rekey_packets);
		vici_add_kv_str(b, "dpd_action",
				cc->dpd_action == IKE_DPD_RESTART ? "restart" : "clear");
		vici_add_kv_str(b, "close_action", "clear");
		struct ike_ts t;
		vici_add_list_start(b, "local-ts");
		for (unsigned k = 0; k < cc->nlocal_ts; k++) {
			memcpy(&t, &cc->local_ts[k], sizeof(t));
			ts_item(b, &t);
		}
		vici_add_list_end(b);
		vici_add_list_start(b, "remote-ts");
		for (unsigned k = 0; k < cc->nremote_ts; k++) {
			memcpy(&t, &cc->remote_ts[k], sizeof(t));
			ts_item(b, &t);
		}
		vici_add_list_end(b);
		vici_add_section_end(b);
	}
	vici_add_section_end(b);
	vici_add_section_end(b);
}

static int cmd_list_conns(struct iked *d, uint64_t conn, const struct vici_node *req)
{
	const char *only = vici_get_str(req, "ike");
	for (struct iked_conn *c = d->conns; c; c = c->next) {
		if (only && strcmp(only, c->cfg.name))
			continue;
		struct vici_builder ev;
		vici_builder_init(&ev);
		conn_details(&ev, c);
		vici_server_event(d->vici, conn, "list-conn", &ev);
		vici_builder_free(&ev);
	}
	return 0;
}

static int cmd_list_sas(struct iked *d, uint64_t conn, const struct vici_node *req)
{
	const char *only = vici_get_str(req, "ike");
	for (struct ike_sa *sa = ike_first_sa(d->ike); sa; sa = ike_sa_next(sa)) {
		const char *name = ike_sa_peer_name(sa);
		if (only && (!name || strcmp(only, name)))
			continue;
		struct vici_builder ev;
		vici_builder_init(&ev);
		sa_details(d, &ev, sa, NULL);
		vici_server_event(d->vici, conn, "list-sa", &ev);
		vici_builder_free(&ev);
	}
	return 0;
}

static int cmd_load_shared(struct iked *d, const struct vici_node *req, struct vici_builder *b)
{
	struct iked_secret s;
	memset(&s, 0, sizeof(s));
	const char *type = vici_get_str(req, "type");
	const struct vici_node *data = vici_find(req, "data");
	if (!type || strcasecmp(type, "IKE"))
		return no(b, "only IKE shared keys are supported");
	if (!data || data->type != VICI_NODE_KV || !data->value_len ||
	    data->value_len > sizeof(s.data))
		return no(b, "missing or oversized shared key data");
	const char *id = vici_get_str(req, "id");
	snprintf(s.id, sizeof(s.id), "%s", id ? id : "");
	memcpy(s.data, data->value, data->value_len);
	s.len = data->value_len;
	const struct vici_node *owners = vici_find(req, "owners");
	for (const struct vici_node *o = owners ? owners->child : NULL; o; o = o->next) {
		if (s.nowners >= SG_ARRAY_LEN(s.owners) || !vici_node_is_str(o) ||
		    iked_identity_parse((const char *)o->value, &s.owners[s.nowners])) {
			sg_memzero(&s, sizeof(s));
			return no(b, "bad or too many owners of the shared key");
		}
		s.nowners++;
	}
	int rc = iked_load_secret(d, &s);
	sg_memzero(&s, sizeof(s));
	if (rc)
		return no(b, "too many shared keys");
	ok(b);
	return 0;
}

static int cmd_unload_shared(struct iked *d, const struct vici_node *req, struct vici_builder *b)
{
	const char *id = vici_get_str(req, "id");
	if (!id)
		return no(b, "missing id");
	iked_unload_secret(d, id);
	ok(b);
	return 0;
}

static int cmd_get_shared(struct iked *d, struct vici_builder *b)
{
	vici_add_list_start(b, "keys");
	for (unsigned i = 0; i < d->nsecrets; i++)
		if (d->secrets[i].id[0])
			vici_add_list_item_str(b, d->secrets[i].id);
	vici_add_list_end(b);
	return 0;
}

/* The connection a command names (charon's find_child_cfg): with `child`, the first connection
 * (named `ike`, if given) that has such a child; else the connection named `ike`. *child_out
 * gets the child config (NULL without one). */
static struct iked_conn *conn_for(struct iked *d, const struct vici_node *req,
				  const struct ike_child_cfg **child_out)
{
	const char *ike = vici_get_str(req, "ike"), *child = vici_get_str(req, "child");
	*child_out = NULL;
	for (struct iked_conn *c = d->conns; c; c = c->next) {
		if (ike && strcmp(ike, c->cfg.name))
			continue;
		if (!child)
			return c;
		for (unsigned i = 0; i < c->cfg.nchildren; i++)
			if (!strcmp(c->cfg.children[i].name, child)) {
				*child_out = &c->cfg.children[i];
				return c;
			}
	}
	return NULL;
}

static int add_pending(struct iked *d, uint64_t conn, const char *name, const char *child,
		       enum iked_pending_kind kind, const struct vici_node *req)
{
	struct iked_pending *p = calloc(1, sizeof(*p));
	if (!p)
		return SG_ENOMEM;
	const char *lv = vici_get_str(req, "loglevel");
	p->conn_id = conn;
	p->kind = kind;
	p->loglevel = lv ? atoi(lv) : 1; /* charon's default */
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(p->child, sizeof(p->child), "%s", child ? child : "");
	p->next = d->pending;
	d->pending = p;
	return VICI_PENDING;
}

static void drop_pending(struct iked *d, struct iked_pending *gone)
{
	for (struct iked_pending **pp = &d->pending; *pp; pp = &(*pp)->next)
		if (*pp == gone) {
			*pp = gone->next;
			free(gone);
			return;
		}
}

static int pending_or_fail(struct iked *d, uint64_t conn, const char *name, const char *child,
			   enum iked_pending_kind kind, const struct vici_node *req,
			   struct vici_builder *b)
{
	return add_pending(d, conn, name, child, kind, req) == VICI_PENDING
		   ? VICI_PENDING
		   : no(b, "out of memory");
}

static int cmd_initiate(struct iked *d, uint64_t conn, const struct vici_node *req,
			struct vici_builder *b)
{
	const struct ike_child_cfg *cc;
	struct iked_conn *c = conn_for(d, req, &cc);
	const char *child = vici_get_str(req, "child"), *ike = vici_get_str(req, "ike");
	char msg[192];
	if (!child && !ike)
		return no(b, "missing configuration name");
	if (!c) {
		snprintf(msg, sizeof(msg), "%s config '%.64s' not found",
			 child ? "CHILD_SA" : "IKE_SA", child ? child : ike);
		return no(b, msg);
	}
	if (!ike_get_peer(d->ike, c->cfg.name))
		return no(b,
			  "the connection's credentials are not loaded (shared key, or private key "
			  "and CA certificates)");
	/* Without a child: the IKE SA with the connection's first child. */
	if (!cc)
		cc = &c->cfg.children[0];
	/* Waiting before the core starts, so that the control-log of the start reaches it. A
	 * timeout below 0: do not wait (charon's meaning). */
	const char *to = vici_get_str(req, "timeout");
	bool wait = !(to && atoi(to) < 0);
	if (wait && add_pending(d, conn, c->cfg.name, cc->name, IKED_PENDING_INITIATE, req) < 0)
		return no(b, "out of memory");
	struct iked_pending *mine = wait ? d->pending : NULL;
	d->handling = mine;
	int rc = iked_initiate(d, c->cfg.name, cc->name);
	d->handling = NULL;
	if (rc == 0 && mine && !mine->done)
		return VICI_PENDING; /* the answer comes with the Child SA or the failure */
	bool done = mine && mine->done, good = mine && mine->ok;
	if (done)
		snprintf(msg, sizeof(msg), "%s", mine->err);
	if (mine)
		drop_pending(d, mine);
	if (done)
		return good ? (ok(b), 0) : no(b, msg);
	if (rc == 0 || rc == SG_EEXIST) { /* started, or installed already: nothing to do */
		ok(b);
		return 0;
	}
	snprintf(msg, sizeof(msg), "establishing CHILD_SA '%.64s' failed: %s", cc->name,
		 rc == SG_ENOROUTE ? "no IKE SA, and the connection has no remote address to "
				     "initiate to"
				   : sg_strerror(rc));
	return no(b, msg);
}

static bool conn_has_sa(struct iked *d, const char *name)
{
	for (struct ike_sa *sa = ike_first_sa(d->ike); sa; sa = ike_sa_next(sa))
		if (ike_sa_peer_name(sa) && !strcmp(ike_sa_peer_name(sa), name))
			return true;
	return false;
}

static int cmd_terminate(struct iked *d, uint64_t conn, const struct vici_node *req,
			 struct vici_builder *b)
{
	const struct ike_child_cfg *cc;
	struct iked_conn *c = conn_for(d, req, &cc);
	if (!c)
		return no(b, "no matching SAs to terminate found");
	if (cc) {
		/* --child: that child's Child SAs only; the IKE SA stays (charon's). */
		if (ike_terminate_child(d->ike, c->cfg.name, cc->name, iked_now()) == SG_ENOENT)
			return no(b, "no matching SAs to terminate found");
		return pending_or_fail(d, conn, c->cfg.name, cc->name,
				       IKED_PENDING_TERMINATE_CHILD, req, b);
	}
	int rc = ike_terminate(d->ike, c->cfg.name, iked_now());
	if (rc == SG_ENOENT)
		return no(b, "no matching SAs to terminate found");
	if (!conn_has_sa(d, c->cfg.name)) {
		ok(b);
		return 0;
	}
	return pending_or_fail(d, conn, c->cfg.name, NULL, IKED_PENDING_TERMINATE, req, b);
}

static int cmd_rekey(struct iked *d, const struct vici_node *req, struct vici_builder *b)
{
	const struct ike_child_cfg *cc;
	struct iked_conn *c = conn_for(d, req, &cc);
	if (!c)
		return no(b, "no matching SAs to rekey found");
	int rc = ike_rekey(d->ike, c->cfg.name, cc ? cc->name : NULL, !cc, iked_now());
	if (rc && rc != SG_EAGAIN)
		return no(b, "no matching SAs to rekey found");
	ok(b);
	vici_add_kv_str(b, "matches", "1");
	return 0;
}

/* install {child, ike}: the child's trap (charon's "install"); uninstall removes it. */
static int cmd_install(struct iked *d, const struct vici_node *req, struct vici_builder *b,
		       bool install)
{
	const struct ike_child_cfg *cc;
	const char *child = vici_get_str(req, "child"), *ike = vici_get_str(req, "ike");
	char msg[160];
	if (!child)
		return no(b, "missing configuration name");
	if (!install) {
		if (iked_trap_uninstall(d, ike, child)) {
			snprintf(msg, sizeof(msg), "policy '%.64s' not found", child);
			return no(b, msg);
		}
		ok(b);
		return 0;
	}
	struct iked_conn *c = conn_for(d, req, &cc);
	if (!c || !cc)
		return no(b, "configuration name not found");
	if (iked_trap_install(d, c->cfg.name, cc->name)) {
		snprintf(msg, sizeof(msg),
			 "installing policy '%.64s' failed (a trap needs a remote address)", child);
		return no(b, msg);
	}
	ok(b);
	return 0;
}

/* list-policies: the traps, as list-policy events ({<conn>/<child> {child, ike, mode, local-ts,
 * remote-ts}}); there are no drop or pass policies. */
static int cmd_list_policies(struct iked *d, uint64_t conn, const struct vici_node *req)
{
	const char *child = vici_get_str(req, "child"), *ike = vici_get_str(req, "ike");
	if (!vici_get_str(req, "trap"))
		return 0;
	for (const struct iked_trap *t = d->traps; t; t = t->next) {
		if ((ike && strcmp(ike, t->conn)) || (child && strcmp(child, t->child)))
			continue;
		char key[130];
		struct vici_builder ev;
		vici_builder_init(&ev);
		snprintf(key, sizeof(key), "%s/%s", t->conn, t->child);
		vici_add_section_start(&ev, key);
		vici_add_kv_str(&ev, "child", t->child);
		vici_add_kv_str(&ev, "ike", t->conn);
		vici_add_kv_str(&ev, "mode", t->transport ? "TRANSPORT" : "TUNNEL");
		vici_add_list_start(&ev, "local-ts");
		for (unsigned k = 0; k < t->nlocal_ts; k++)
			ts_item(&ev, &t->local_ts[k]);
		vici_add_list_end(&ev);
		vici_add_list_start(&ev, "remote-ts");
		for (unsigned k = 0; k < t->nremote_ts; k++)
			ts_item(&ev, &t->remote_ts[k]);
		vici_add_list_end(&ev);
		vici_add_section_end(&ev);
		vici_server_event(d->vici, conn, "list-policy", &ev);
		vici_builder_free(&ev);
	}
	return 0;
}

static int command(void *ctx, uint64_t conn, const char *cmd, const struct vici_node *req,
		   struct vici_builder *resp)
{
	struct iked *d = ctx;
	if (!strcmp(cmd, "version"))
		return cmd_version(d, resp);
	if (!strcmp(cmd, "stats"))
		return cmd_stats(d, resp);
	if (!strcmp(cmd, "load-conn"))
		return cmd_load_conn(d, conn, req, resp);
	if (!strcmp(cmd, "load-cert"))
		return cmd_load_cert(d, req, resp);
	if (!strcmp(cmd, "load-key"))
		return cmd_load_key(d, req, resp);
	if (!strcmp(cmd, "unload-key")) {
		ok(resp); /* keys are listed as none (get-keys), so swanctl asks for nothing here */
		return 0;
	}
	if (!strcmp(cmd, "unload-conn"))
		return cmd_unload_conn(d, req, resp);
	if (!strcmp(cmd, "get-conns"))
		return cmd_get_conns(d, resp);
	if (!strcmp(cmd, "list-conns"))
		return cmd_list_conns(d, conn, req);
	if (!strcmp(cmd, "list-sas"))
		return cmd_list_sas(d, conn, req);
	if (!strcmp(cmd, "load-shared"))
		return cmd_load_shared(d, req, resp);
	if (!strcmp(cmd, "unload-shared"))
		return cmd_unload_shared(d, req, resp);
	if (!strcmp(cmd, "get-shared"))
		return cmd_get_shared(d, resp);
	if (!strcmp(cmd, "initiate"))
		return cmd_initiate(d, conn, req, resp);
	if (!strcmp(cmd, "terminate"))
		return cmd_terminate(d, conn, req, resp);
	if (!strcmp(cmd, "rekey"))
		return cmd_rekey(d, req, resp);
	if (!strcmp(cmd, "install") || !strcmp(cmd, "uninstall"))
		return cmd_install(d, req, resp, !strcmp(cmd, "install"));
	if (!strcmp(cmd, "list-policies"))
		return cmd_list_policies(d, conn, req);
	if (!strcmp(cmd, "load-authority"))
		return cmd_load_authority(d, req, resp);
	if (!strcmp(cmd, "unload-authority"))
		return cmd_unload_authority(d, req, resp);
	if (!strcmp(cmd, "list-authorities"))
		return cmd_list_authorities(d, conn, req);
	if (!strcmp(cmd, "get-authorities")) {
		vici_add_list_start(resp, "authorities");
		for (unsigned i = 0; i < d->nauthorities; i++)
			vici_add_list_item_str(resp, d->authorities[i].name);
		vici_add_list_end(resp);
		return 0;
	}
	/* What swanctl --load-all asks about kinds of configuration we do not have: none (pools
	 * are one section each in charon's answer; keys a list). */
	if (!strcmp(cmd, "get-pools"))
		return 0;
	if (!strcmp(cmd, "get-keys")) {
		vici_add_list_start(resp, "keys");
		vici_add_list_end(resp);
		return 0;
	}
	if (!strcmp(cmd, "clear-creds")) {
		while (d->nsecrets)
			iked_unload_secret(d, d->secrets[0].id);
		ok(resp);
		return 0;
	}
	return SG_ENOENT;
}

static bool event_known(void *ctx, const char *event)
{
	(void)ctx;
	return !strcmp(event, "ike-updown") || !strcmp(event, "child-updown") ||
	       !strcmp(event, "list-sa") || !strcmp(event, "list-conn") ||
	       !strcmp(event, "list-authority") || !strcmp(event, "list-policy") ||
	       !strcmp(event, "control-log") || !strcmp(event, "log") ||
	       !strcmp(event, "ike-rekey") || !strcmp(event, "child-rekey");
}

static void closed(void *ctx, uint64_t conn)
{
	struct iked *d = ctx;
	struct iked_pending **pp = &d->pending;
	while (*pp) {
		struct iked_pending *p = *pp;
		if (p->conn_id == conn) {
			*pp = p->next;
			free(p);
			continue;
		}
		pp = &p->next;
	}
}

const struct vici_server_ops iked_vici_ops = {
    .command = command,
    .event_known = event_known,
    .closed = closed,
};
