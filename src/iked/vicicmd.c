/* The VICI commands of secureguard-iked (iked.h): what strongSwan's swanctl sends for
 * --load-all/--load-conns/--load-creds, --initiate, --terminate, --rekey, --list-sas,
 * --list-conns, --stats and --version, with charon's message layouts, so swanctl prints our
 * state as it prints charon's. Events: ike-updown, child-updown, list-sa, list-conn,
 * control-log (registered by swanctl --initiate/--terminate; we send none: the log events are
 * optional in charon too when nothing is logged at the requested level). */
#include <arpa/inet.h>
#include <errno.h>
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

static void ts_item(struct vici_builder *b, const struct ike_ts *t)
{
	char a[INET6_ADDRSTRLEN], s[2 * INET6_ADDRSTRLEN + 8];
	int fam = t->type == IKE_TS_IPV4_ADDR_RANGE ? AF_INET : AF_INET6;
	size_t al = fam == AF_INET ? 4 : 16;
	/* A prefix when the range is one, as charon prints it. */
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
	if (prefix)
		snprintf(s, sizeof(s), "%s/%u", a, plen);
	else {
		char e[INET6_ADDRSTRLEN];
		inet_ntop(fam, t->end, e, sizeof(e));
		snprintf(s, sizeof(s), "%s..%s", a, e);
	}
	vici_add_list_item_str(b, s);
}

static void child_details(struct iked *d, struct vici_builder *b, const struct iked_child *ch)
{
	char key[96], spi[16];
	uint64_t now = iked_now();
	snprintf(key, sizeof(key), "%s-%u", ch->name, ch->unique_id);
	vici_add_section_start(b, key);
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
	vici_add_section_end(b);
	(void)d;
}

static void sa_details(struct iked *d, struct vici_builder *b, struct ike_sa *sa,
		       const struct iked_child *only)
{
	static const char *const states[] = {"CONNECTING", "CONNECTING", "ESTABLISHED", "DELETING",
					     "DESTROYING"};
	const struct ike_peer_cfg *cfg = ike_sa_peer_cfg(sa);
	const struct ike_chosen *p = ike_sa_proposal(sa);
	uint8_t si[8], sr[8];
	char buf[300], a[INET6_ADDRSTRLEN];
	vici_add_section_start(b, cfg ? cfg->name : "(unknown)");
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
	vici_add_section_start(b, "child-sas");
	for (struct iked_child *ch = d->children; ch; ch = ch->next)
		if ((!only || ch == only) && ike_sa_by_child(d->ike, ch->spi_in) == sa)
			child_details(d, b, ch);
	if (only && ike_sa_by_child(d->ike, only->spi_in) != sa)
		child_details(d, b, only); /* child-updown down: already detached from the SA */
	vici_add_section_end(b);
	vici_add_section_end(b);
}

/* ---- events ---------------------------------------------------------------------------------- */

static void respond_pending(struct iked *d, const char *conn, bool initiate, bool success,
			    const char *errmsg)
{
	struct iked_pending **pp = &d->pending;
	while (*pp) {
		struct iked_pending *p = *pp;
		if (p->initiate == initiate && !strcmp(p->name, conn)) {
			struct vici_builder b;
			vici_builder_init(&b);
			if (success)
				ok(&b);
			else
				no(&b, errmsg);
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

void iked_vici_ike_event(struct iked *d, const struct ike_event *ev)
{
	if (!ev->peer)
		return;
	switch (ev->type) {
	case IKE_EV_IKE_UP:
	case IKE_EV_IKE_DOWN:
		if (vici_server_has_listener(d->vici, "ike-updown") && ev->sa) {
			struct vici_builder b;
			vici_builder_init(&b);
			if (ev->type == IKE_EV_IKE_UP)
				vici_add_kv_str(&b, "up", "yes");
			sa_details(d, &b, ev->sa, NULL);
			vici_server_broadcast(d->vici, "ike-updown", &b);
			vici_builder_free(&b);
		}
		if (ev->type == IKE_EV_IKE_DOWN) {
			respond_pending(d, ev->peer, true, false,
					ev->reason ? ev->reason : "establishing the IKE SA failed");
			respond_pending(d, ev->peer, false, true, NULL);
		}
		break;
	case IKE_EV_REJECTED:
		/* An initiation that ends without an IKE SA (AUTHENTICATION_FAILED, ...) reports
		 * IKE_EV_IKE_DOWN too; nothing else to answer here. */
		break;
	default:
		break;
	}
}

void iked_vici_child_event(struct iked *d, struct iked_child *ch, bool up)
{
	struct ike_sa *sa = ike_sa_by_child(d->ike, ch->spi_in);
	if (up)
		respond_pending(d, ch->conn, true, true, NULL);
	if (!vici_server_has_listener(d->vici, "child-updown"))
		return;
	/* Down events come while the core still holds the IKE SA (or just detached it): find
	 * the SA by the connection when the child is already gone from it. */
	if (!sa)
		for (struct ike_sa *s = ike_first_sa(d->ike); s && !sa; s = ike_sa_next(s))
			if (ike_sa_peer_name(s) && !strcmp(ike_sa_peer_name(s), ch->conn))
				sa = s;
	if (!sa)
		return;
	struct vici_builder b;
	vici_builder_init(&b);
	if (up)
		vici_add_kv_str(&b, "up", "yes");
	sa_details(d, &b, sa, ch);
	vici_server_broadcast(d->vici, "child-updown", &b);
	vici_builder_free(&b);
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
	vici_add_kv_str(b, "class", "pre-shared key");
	vici_add_kv_str(b, "id", iked_identity_str(&cfg->local_id, buf, sizeof(buf)));
	vici_add_section_end(b);
	vici_add_section_start(b, "remote-1");
	vici_add_kv_str(b, "class", "pre-shared key");
	vici_add_kv_str(b, "id", iked_identity_str(&cfg->remote_id, buf, sizeof(buf)));
	vici_add_section_end(b);
	vici_add_section_start(b, "children");
	vici_add_section_start(b, cfg->child.name);
	vici_add_kv_str(b, "mode", cfg->child.transport ? "TRANSPORT" : "TUNNEL");
	vici_add_kv_fmt(b, "rekey_time", "%llu",
			(unsigned long long)(cfg->child.rekey_time_ns / NS));
	vici_add_kv_str(b, "rekey_bytes", "0");
	vici_add_kv_str(b, "rekey_packets", "0");
	vici_add_kv_str(b, "dpd_action", cfg->dpd_action == IKE_DPD_RESTART ? "restart" : "clear");
	vici_add_kv_str(b, "close_action", "clear");
	struct ike_ts t;
	vici_add_list_start(b, "local-ts");
	for (unsigned k = 0; k < cfg->child.nlocal_ts; k++) {
		memcpy(&t, &cfg->child.local_ts[k], sizeof(t));
		ts_item(b, &t);
	}
	vici_add_list_end(b);
	vici_add_list_start(b, "remote-ts");
	for (unsigned k = 0; k < cfg->child.nremote_ts; k++) {
		memcpy(&t, &cfg->child.remote_ts[k], sizeof(t));
		ts_item(b, &t);
	}
	vici_add_list_end(b);
	vici_add_section_end(b);
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

static struct iked_conn *conn_for(struct iked *d, const struct vici_node *req)
{
	const char *ike = vici_get_str(req, "ike"), *child = vici_get_str(req, "child");
	for (struct iked_conn *c = d->conns; c; c = c->next)
		if ((ike && !strcmp(ike, c->cfg.name)) ||
		    (child && !strcmp(child, c->cfg.child.name)))
			return c;
	return NULL;
}

static int add_pending(struct iked *d, uint64_t conn, const char *name, bool initiate)
{
	struct iked_pending *p = calloc(1, sizeof(*p));
	if (!p)
		return SG_ENOMEM;
	p->conn_id = conn;
	p->initiate = initiate;
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->next = d->pending;
	d->pending = p;
	return VICI_PENDING;
}

static int cmd_initiate(struct iked *d, uint64_t conn, const struct vici_node *req,
			struct vici_builder *b)
{
	struct iked_conn *c = conn_for(d, req);
	if (!c)
		return no(b, "no config named like that");
	if (!c->has_remote)
		return no(b, "the connection has no remote address to initiate to");
	if (!ike_get_peer(d->ike, c->cfg.name))
		return no(b,
			  "the connection's credentials are not loaded (shared key, or private key "
			  "and CA certificates)");
	/* Up already: nothing to do (charon would add a CHILD_SA; one child per connection). */
	for (struct ike_sa *sa = ike_first_sa(d->ike); sa; sa = ike_sa_next(sa))
		if (ike_sa_peer_name(sa) && !strcmp(ike_sa_peer_name(sa), c->cfg.name) &&
		    ike_sa_state(sa) == IKE_SA_ESTABLISHED && ike_sa_child_count(sa)) {
			ok(b);
			return 0;
		}
	int rc = ike_initiate(d->ike, c->cfg.name, iked_now());
	if (rc)
		return no(b, sg_strerror(rc));
	/* The answer comes with the Child SA (or the failure). */
	return add_pending(d, conn, c->cfg.name, true) == VICI_PENDING ? VICI_PENDING
								       : no(b, "out of memory");
}

static int cmd_terminate(struct iked *d, uint64_t conn, const struct vici_node *req,
			 struct vici_builder *b)
{
	struct iked_conn *c = conn_for(d, req);
	if (!c)
		return no(b, "no matching SAs to terminate found");
	int rc = ike_terminate(d->ike, c->cfg.name, iked_now());
	if (rc == SG_ENOENT)
		return no(b, "no matching SAs to terminate found");
	bool left = false;
	for (struct ike_sa *sa = ike_first_sa(d->ike); sa; sa = ike_sa_next(sa))
		left |= ike_sa_peer_name(sa) && !strcmp(ike_sa_peer_name(sa), c->cfg.name);
	if (!left) {
		ok(b);
		return 0;
	}
	return add_pending(d, conn, c->cfg.name, false) == VICI_PENDING ? VICI_PENDING
									: no(b, "out of memory");
}

static int cmd_rekey(struct iked *d, const struct vici_node *req, struct vici_builder *b)
{
	struct iked_conn *c = conn_for(d, req);
	if (!c)
		return no(b, "no matching SAs to rekey found");
	bool ike = vici_get_str(req, "ike") != NULL;
	int rc = ike_rekey(d->ike, c->cfg.name, ike, iked_now());
	if (rc && rc != SG_EAGAIN)
		return no(b, "no matching SAs to rekey found");
	ok(b);
	vici_add_kv_str(b, "matches", "1");
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
	       !strcmp(event, "list-authority") ||
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
