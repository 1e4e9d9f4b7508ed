/* The IKEv2 core (src/ike/sa.c) paired with itself on a simulated clock and network: two
 * contexts, A (initiator, 192.0.2.1) and B (responder, 192.0.2.2), whose datagrams go through a
 * queue the tests can drop, duplicate and reorder. Time moves only when a test advances it, to
 * the next deadline the cores report.
 *
 * Covered: IKE_SA_INIT + IKE_AUTH with PSK and the first Child SA (keys and SPIs must pair up
 * across the two sides), every IKE cipher family, INVALID_KE_PAYLOAD and the retry, COOKIE, lost
 * and duplicated and reordered messages with retransmission and cached responses, AUTH failure,
 * NO_PROPOSAL_CHOSEN, traffic selector narrowing, DELETE, DPD (alive, dead with clear and with
 * restart), half-open expiry, hostile datagrams. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "test_util.h"

#include <secureguard/sg_errors.h>

#include "crypto/ipsec.h"
#include "crypto/pki.h"
#include "ike/ike.h"

#define SEC  1000000000ull
#define MAXQ 64

struct dgram {
	int to;	       /* 0 = A, 1 = B */
	uint16_t port; /* destination port */
	struct ike_endpoint from;
	uint8_t data[4096];
	size_t len;
};

struct child_rec {
	char name[64];
	uint32_t spi_in, spi_out;
	uint8_t key_in[36], key_out[36];
	size_t key_len;
	uint16_t encr;
	struct ike_ts local, remote;
	unsigned nlocal, nremote;
	bool transport;
};

struct side {
	struct ike_ctx *ctx;
	struct ike_endpoint addr;
	int idx;
	unsigned ike_up, ike_down, child_up, child_down, invalid_ke, cookie, retransmit, dpd_dead,
	    rejected;
	struct child_rec child;	  /* the last one installed */
	struct child_rec live[8]; /* installed and not yet removed */
	unsigned nlive;
	unsigned ike_rekeyed, child_rekeyed, collisions, child_failed, child_creating, initiating;
	const char *last_reject;
	const char *last_down;
	char last_failed[64]; /* child of the last CHILD_FAILED */
	const char *last_failed_why;
	struct ike_sa *rekeyed_old; /* IKE_REKEYED's old SA */
	uint32_t rekeyed_spi_old, rekeyed_spi_new;
};

static struct net {
	struct side s[2];
	struct dgram q[MAXQ];
	unsigned nq;
	uint64_t now;
	/* Faults: drop the n-th datagram sent by a side (1-based; 0 = none), drop everything to a
	 * side, duplicate every datagram. */
	unsigned drop_nth[2], sent[2];
	bool dead[2];
	bool duplicate;
} net;

static void on_send(void *ctx, uint16_t from_port, const struct ike_endpoint *to,
		    const uint8_t *buf, size_t len)
{
	struct side *s = ctx;
	net.sent[s->idx]++;
	if (net.drop_nth[s->idx] && net.sent[s->idx] == net.drop_nth[s->idx])
		return;
	int dst = !memcmp(to->addr, net.s[0].addr.addr, 4) ? 0 : 1;
	if (net.dead[dst])
		return;
	assert_true(len <= sizeof(net.q[0].data));
	for (int copies = net.duplicate ? 2 : 1; copies > 0; copies--) {
		assert_true(net.nq < MAXQ);
		struct dgram *d = &net.q[net.nq++];
		d->to = dst;
		d->port = to->port;
		d->from = s->addr;
		d->from.port = from_port;
		memcpy(d->data, buf, len);
		d->len = len;
	}
}

static void on_child_up(void *ctx, struct ike_sa *sa, const struct ike_child_info *i)
{
	struct side *s = ctx;
	(void)sa;
	s->child_up++;
	snprintf(s->child.name, sizeof(s->child.name), "%s", i->name);
	s->child.spi_in = i->spi_in;
	s->child.spi_out = i->spi_out;
	s->child.key_len = i->key_len;
	s->child.encr = i->encr;
	s->child.transport = i->transport;
	memcpy(s->child.key_in, i->key_in, i->key_len);
	memcpy(s->child.key_out, i->key_out, i->key_len);
	s->child.nlocal = i->nlocal_ts;
	s->child.nremote = i->nremote_ts;
	if (i->nlocal_ts)
		s->child.local = i->local_ts[0];
	if (i->nremote_ts)
		s->child.remote = i->remote_ts[0];
	assert_true(i->encap);
	assert_int_equal(i->remote.port, IKE_NATT_PORT);
	assert_true(s->nlive < SG_ARRAY_LEN(s->live));
	s->live[s->nlive++] = s->child;
}

static void on_child_down(void *ctx, struct ike_sa *sa, uint32_t in, uint32_t out)
{
	if (getenv("IKE_SA_DEBUG"))
		fprintf(stderr, "side %d: child down %08x\n", ((struct side *)ctx)->idx, in);
	struct side *s = ctx;
	unsigned i;
	(void)sa;
	for (i = 0; i < s->nlive && s->live[i].spi_in != in; i++)
		;
	assert_true(i < s->nlive); /* only installed children are removed */
	assert_int_equal(out, s->live[i].spi_out);
	s->live[i] = s->live[--s->nlive];
	s->child_down++;
}

static void on_event(void *ctx, const struct ike_event *ev)
{
	struct side *s = ctx;
	if (getenv("IKE_SA_DEBUG"))
		fprintf(stderr, "side %d: event %d %s\n", s->idx, ev->type,
			ev->reason ? ev->reason : "");
	switch (ev->type) {
	case IKE_EV_IKE_UP:
		s->ike_up++;
		break;
	case IKE_EV_IKE_DOWN:
		s->ike_down++;
		s->last_down = ev->reason;
		break;
	case IKE_EV_INVALID_KE:
		s->invalid_ke++;
		break;
	case IKE_EV_COOKIE:
		s->cookie++;
		break;
	case IKE_EV_RETRANSMIT:
		s->retransmit++;
		break;
	case IKE_EV_DPD_DEAD:
		s->dpd_dead++;
		break;
	case IKE_EV_IKE_REKEYED:
		s->ike_rekeyed++;
		s->rekeyed_old = ev->old;
		break;
	case IKE_EV_CHILD_REKEYED:
		s->child_rekeyed++;
		s->rekeyed_spi_old = ev->spi_old;
		s->rekeyed_spi_new = ev->spi_new;
		break;
	case IKE_EV_CHILD_FAILED:
		s->child_failed++;
		snprintf(s->last_failed, sizeof(s->last_failed), "%s", ev->child ? ev->child : "");
		s->last_failed_why = ev->reason;
		break;
	case IKE_EV_CHILD_CREATING:
		s->child_creating++;
		break;
	case IKE_EV_INITIATING:
		s->initiating++;
		break;
	case IKE_EV_REKEY_COLLISION:
		s->collisions++;
		break;
	case IKE_EV_REJECTED:
		s->rejected++;
		s->last_reject = ev->reason;
		break;
	default:
		break;
	}
}

static void ts4(struct ike_ts_cfg *t, const char *a, const char *b)
{
	memset(t, 0, sizeof(*t));
	t->type = IKE_TS_IPV4_ADDR_RANGE;
	t->port_end = 65535;
	unsigned x[4], y[4];
	assert_int_equal(sscanf(a, "%u.%u.%u.%u", &x[0], &x[1], &x[2], &x[3]), 4);
	assert_int_equal(sscanf(b, "%u.%u.%u.%u", &y[0], &y[1], &y[2], &y[3]), 4);
	for (int i = 0; i < 4; i++)
		t->start[i] = (uint8_t)x[i], t->end[i] = (uint8_t)y[i];
}

static void ident(struct ike_identity *id, const char *fqdn)
{
	id->type = IKE_ID_FQDN;
	id->len = (uint8_t)strlen(fqdn);
	memcpy(id->data, fqdn, id->len);
}

static void dn_ident(struct ike_identity *id, const char *text)
{
	size_t len;
	id->type = IKE_ID_DER_ASN1_DN;
	assert_int_equal(sg_dn_from_text(text, id->data, sizeof(id->data), &len, NULL), 0);
	id->len = (uint16_t)len;
}

/* A peer config: `me` is 0 (A) or 1 (B). */
static void make_cfg(struct ike_peer_cfg *c, int me, const char *ike_prop, const char *esp_prop)
{
	const char *why = NULL;
	memset(c, 0, sizeof(*c));
	strcpy(c->name, me == 0 ? "to-b" : "to-a");
	c->remote = net.s[!me].addr;
	c->remote.port = IKE_PORT;
	ident(&c->local_id, me == 0 ? "a.example" : "b.example");
	ident(&c->remote_id, me == 0 ? "b.example" : "a.example");
	memcpy(c->psk, "correct horse battery staple", 28);
	c->psk_len = 28;
	assert_int_equal(ike_prop_parse(ike_prop, IKE_PROTO_IKE, false, &c->props[0], &why), 0);
	c->nprops = 1;
	strcpy(c->children[0].name, "net");
	assert_int_equal(ike_prop_parse(esp_prop, IKE_PROTO_ESP, false, &c->children[0].props[0], &why),
			 0);
	c->children[0].nprops = 1;
	ts4(&c->children[0].local_ts[0], me == 0 ? "10.1.0.0" : "10.2.0.0",
	    me == 0 ? "10.1.255.255" : "10.2.255.255");
	ts4(&c->children[0].remote_ts[0], me == 0 ? "10.2.0.0" : "10.1.0.0",
	    me == 0 ? "10.2.255.255" : "10.1.255.255");
	c->children[0].nlocal_ts = c->children[0].nremote_ts = 1;
	c->nchildren = 1;
}

static int setup(void **state)
{
	(void)state;
	assert_int_equal(sg_crypto_init(), 0);
	memset(&net, 0, sizeof(net));
	net.now = 1000 * SEC;
	for (int i = 0; i < 2; i++) {
		struct side *s = &net.s[i];
		s->idx = i;
		s->addr.family = AF_INET;
		s->addr.addr[0] = 192, s->addr.addr[2] = 2, s->addr.addr[3] = (uint8_t)(i + 1);
		struct ike_io io = {.ctx = s,
				    .send = on_send,
				    .child_up = on_child_up,
				    .child_down = on_child_down,
				    .event = on_event};
		s->ctx = ike_new(&io);
		assert_non_null(s->ctx);
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	ike_free(net.s[0].ctx);
	ike_free(net.s[1].ctx);
	return 0;
}

static void add_peers(const char *ike_a, const char *esp_a, const char *ike_b, const char *esp_b)
{
	struct ike_peer_cfg c;
	make_cfg(&c, 0, ike_a, esp_a);
	assert_int_equal(ike_add_peer(net.s[0].ctx, &c), 0);
	make_cfg(&c, 1, ike_b, esp_b);
	assert_int_equal(ike_add_peer(net.s[1].ctx, &c), 0);
}

/* Delivers the first queued datagram. */
static void step(void)
{
	assert_true(net.nq > 0);
	struct dgram d = net.q[0];
	memmove(net.q, net.q + 1, (net.nq - 1) * sizeof(net.q[0]));
	net.nq--;
	ike_receive(net.s[d.to].ctx, net.now, d.port, &d.from, d.data, d.len);
}

/* Delivers queued datagrams (in order; `reverse` delivers the queue back to front once) until
 * the network is quiet. */
static void run(bool reverse)
{
	for (int guard = 0; net.nq && guard < 1000; guard++) {
		struct dgram d;
		if (reverse) {
			d = net.q[net.nq - 1];
			net.nq--;
		} else {
			d = net.q[0];
			memmove(net.q, net.q + 1, (net.nq - 1) * sizeof(net.q[0]));
			net.nq--;
		}
		reverse = false;
		ike_receive(net.s[d.to].ctx, net.now, d.port, &d.from, d.data, d.len);
	}
	assert_int_equal(net.nq, 0);
}

/* Moves time to the next deadline of either core (at most `limit` ns ahead), ticks, delivers. */
static bool advance(uint64_t limit)
{
	uint64_t d = SG_MIN(ike_next_deadline(net.s[0].ctx), ike_next_deadline(net.s[1].ctx));
	if (d == UINT64_MAX || d > net.now + limit)
		return false;
	if (d > net.now)
		net.now = d;
	ike_tick(net.s[0].ctx, net.now);
	ike_tick(net.s[1].ctx, net.now);
	run(false);
	return true;
}

static unsigned sa_count(int i)
{
	unsigned n = 0;
	for (struct ike_sa *sa = ike_first_sa(net.s[i].ctx); sa; sa = ike_sa_next(sa))
		n++;
	return n;
}

static void assert_paired(void)
{
	struct side *a = &net.s[0], *b = &net.s[1];
	assert_int_equal(a->ike_up, 1);
	assert_int_equal(b->ike_up, 1);
	assert_int_equal(a->child_up, 1);
	assert_int_equal(b->child_up, 1);
	assert_int_equal(a->child.spi_out, b->child.spi_in);
	assert_int_equal(a->child.spi_in, b->child.spi_out);
	assert_true(a->child.spi_in >= 256 && b->child.spi_in >= 256);
	assert_int_equal(a->child.key_len, b->child.key_len);
	assert_memory_equal(a->child.key_out, b->child.key_in, a->child.key_len);
	assert_memory_equal(a->child.key_in, b->child.key_out, a->child.key_len);
	assert_memory_not_equal(a->child.key_in, a->child.key_out, a->child.key_len);
	struct ike_sa *sa = ike_first_sa(a->ctx), *sb = ike_first_sa(b->ctx);
	assert_int_equal(ike_sa_state(sa), IKE_SA_ESTABLISHED);
	assert_int_equal(ike_sa_state(sb), IKE_SA_ESTABLISHED);
	assert_true(ike_sa_initiator(sa));
	assert_false(ike_sa_initiator(sb));
	assert_string_equal(ike_sa_peer_name(sb), "to-a");
	uint8_t ia[8], ra[8], ib[8], rb[8];
	ike_sa_spis(sa, ia, ra);
	ike_sa_spis(sb, ib, rb);
	assert_memory_equal(ia, ib, 8);
	assert_memory_equal(ra, rb, 8);
}

static void establish(void)
{
	assert_int_equal(ike_initiate(net.s[0].ctx, "to-b", NULL, net.now), 0);
	run(false);
}

static void test_establish(void **state)
{
	(void)state;
	add_peers("aes256gcm16-prfsha384-ecp384", "aes256gcm16", "aes256gcm16-prfsha384-ecp384",
		  "aes256gcm16");
	establish();
	assert_paired();
	assert_int_equal(net.s[0].child.key_len, 36); /* AES-256 key + salt */
	char txt[96];
	assert_string_equal(
	    ike_chosen_str(ike_sa_proposal(ike_first_sa(net.s[0].ctx)), txt, sizeof(txt)),
	    "AES_GCM_16_256/PRF_HMAC_SHA2_384/ECP_384");
	/* Exactly four messages: INIT, INIT response, AUTH, AUTH response. */
	assert_int_equal(net.sent[0] + net.sent[1], 4);
	assert_int_equal(net.s[0].retransmit + net.s[1].retransmit, 0);
	/* Tunnel mode, selectors as configured on both. */
	assert_false(net.s[0].child.transport);
	assert_int_equal(net.s[0].child.local.start[1], 1);
	assert_int_equal(net.s[0].child.remote.start[1], 2);
}

static void test_cipher_families(void **state)
{
	static const char *const ike[] = {"chacha20poly1305-prfsha256-x25519",
					  "aes128-sha256-modp2048", "aes256-sha512-ecp521",
					  "aes128gcm16-prfsha512-ecp256"};
	static const char *const esp[] = {"chacha20poly1305", "aes128-sha256", "aes256-sha384-esn",
					  "aes128gcm16"};
	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(ike); i++) {
		teardown(NULL);
		setup(NULL);
		add_peers(ike[i], esp[i], ike[i], esp[i]);
		establish();
		assert_paired();
	}
}

static void test_invalid_ke(void **state)
{
	(void)state;
	/* A's first group is P-256; B accepts P-384 only. */
	add_peers("aes256gcm16-prfsha384-ecp256-ecp384", "aes256gcm16",
		  "aes256gcm16-prfsha384-ecp384", "aes256gcm16");
	establish();
	assert_paired();
	assert_int_equal(net.s[0].invalid_ke, 1);
	assert_int_equal(net.s[1].invalid_ke, 1);
	assert_int_equal(ike_sa_proposal(ike_first_sa(net.s[0].ctx))->ke, SG_KE_ECP_384);
	assert_int_equal(net.sent[0] + net.sent[1], 6);
}

static void test_cookie(void **state)
{
	struct ike_stats st;
	(void)state;
	add_peers("aes256gcm16-prfsha384-ecp384", "aes256gcm16", "aes256gcm16-prfsha384-ecp384",
		  "aes256gcm16");
	ike_force_cookies(net.s[1].ctx, true);
	establish();
	assert_paired();
	assert_int_equal(net.s[0].cookie, 1);
	ike_get_stats(net.s[1].ctx, &st);
	assert_int_equal(st.cookies_sent, 1);
	/* A cookie made for one address does not pass from another: B asks again and keeps no
	 * state. */
	teardown(NULL);
	setup(NULL);
	add_peers("aes256gcm16-prfsha384-ecp384", "aes256gcm16", "aes256gcm16-prfsha384-ecp384",
		  "aes256gcm16");
	ike_force_cookies(net.s[1].ctx, true);
	assert_int_equal(ike_initiate(net.s[0].ctx, "to-b", NULL, net.now), 0);
	step(); /* A's INIT to B, B's cookie reply queued */
	step(); /* the reply to A, A's retry with the cookie queued */
	assert_int_equal(net.nq, 1);
	net.q[0].from.addr[3] = 9;
	step();
	assert_int_equal(sa_count(1), 0);
	ike_get_stats(net.s[1].ctx, &st);
	assert_int_equal(st.cookies_sent, 2);
	net.nq = 0;
}

static void test_lost_and_retransmitted(void **state)
{
	(void)state;
	add_peers("aes256gcm16-prfsha384-ecp384", "aes256gcm16", "aes256gcm16-prfsha384-ecp384",
		  "aes256gcm16");
	/* A's first IKE_SA_INIT and B's IKE_AUTH response are lost. */
	net.drop_nth[0] = 1;
	net.drop_nth[1] = 2;
	establish();
	assert_int_equal(net.s[0].ike_up, 0);
	uint64_t t0 = net.now;
	assert_true(advance(10 * SEC)); /* INIT retransmitted after 4 s */
	assert_int_equal(net.now - t0, 4 * SEC);
	assert_int_equal(net.s[1].ike_up, 1); /* B finished, its response was lost */
	assert_int_equal(net.s[0].ike_up, 0);
	assert_true(advance(10 * SEC)); /* AUTH retransmitted; B answers from its cache */
	assert_paired();
	assert_int_equal(net.s[0].retransmit, 2);
	assert_int_equal(net.s[1].child_up, 1); /* the cached answer did not install again */
}

static void test_duplicated_and_reordered(void **state)
{
	(void)state;
	add_peers("aes256gcm16-prfsha384-ecp384", "aes256gcm16", "aes256gcm16-prfsha384-ecp384",
		  "aes256gcm16");
	net.duplicate = true;
	establish();
	net.duplicate = false;
	assert_paired();
	assert_int_equal(sa_count(0), 1);
	assert_int_equal(sa_count(1), 1);
	/* DPD request and a DELETE request queued together, delivered in reverse order. */
	teardown(NULL);
	setup(NULL);
	add_peers("aes256gcm16-prfsha384-ecp384", "aes256gcm16", "aes256gcm16-prfsha384-ecp384",
		  "aes256gcm16");
	establish();
	assert_paired();
	/* Two copies of A's next request arrive swapped with an old AUTH response: the
	 * replayed response is refused, the request answered once. */
	assert_int_equal(ike_terminate(net.s[0].ctx, "to-b", net.now), 0);
	net.q[net.nq] = net.q[net.nq - 1];
	net.nq++;
	run(true);
	assert_int_equal(sa_count(0), 0);
	assert_int_equal(sa_count(1), 0);
	assert_int_equal(net.s[0].ike_down, 1);
	assert_int_equal(net.s[1].ike_down, 1);
}

static void test_auth_failed(void **state)
{
	struct ike_peer_cfg c;
	(void)state;
	make_cfg(&c, 0, "aes256gcm16-prfsha384-ecp384", "aes256gcm16");
	c.psk[0] ^= 1;
	assert_int_equal(ike_add_peer(net.s[0].ctx, &c), 0);
	make_cfg(&c, 1, "aes256gcm16-prfsha384-ecp384", "aes256gcm16");
	assert_int_equal(ike_add_peer(net.s[1].ctx, &c), 0);
	establish();
	assert_int_equal(net.s[0].ike_up + net.s[1].ike_up, 0);
	assert_int_equal(sa_count(0), 0);
	assert_int_equal(sa_count(1), 0);
	assert_string_equal(net.s[1].last_reject, "AUTH does not verify");
	assert_string_equal(net.s[0].last_reject, "peer: AUTHENTICATION_FAILED");
	struct ike_stats st;
	ike_get_stats(net.s[1].ctx, &st);
	assert_int_equal(st.rx_auth_failed, 1);
}

static void test_no_proposal_chosen(void **state)
{
	(void)state;
	add_peers("chacha20poly1305-prfsha256-x25519", "aes256gcm16",
		  "aes256gcm16-prfsha384-ecp384", "aes256gcm16");
	establish();
	assert_int_equal(sa_count(0), 0);
	assert_int_equal(sa_count(1), 0);
	assert_string_equal(net.s[0].last_reject, "peer: NO_PROPOSAL_CHOSEN");
	/* ESP mismatch: the IKE SA comes up, the Child SA does not. */
	teardown(NULL);
	setup(NULL);
	add_peers("aes256gcm16-prfsha384-ecp384", "chacha20poly1305",
		  "aes256gcm16-prfsha384-ecp384", "aes256gcm16");
	establish();
	assert_int_equal(net.s[0].ike_up, 1);
	assert_int_equal(net.s[1].ike_up, 1);
	assert_int_equal(net.s[0].child_up + net.s[1].child_up, 0);
}

static void test_ts_narrowing(void **state)
{
	struct ike_peer_cfg c;
	(void)state;
	make_cfg(&c, 0, "aes256gcm16-prfsha384-ecp384", "aes256gcm16");
	assert_int_equal(ike_add_peer(net.s[0].ctx, &c), 0);
	make_cfg(&c, 1, "aes256gcm16-prfsha384-ecp384", "aes256gcm16");
	/* B serves only 10.2.3.0/24, for TCP. */
	ts4(&c.children[0].local_ts[0], "10.2.3.0", "10.2.3.255");
	c.children[0].local_ts[0].proto = 6;
	assert_int_equal(ike_add_peer(net.s[1].ctx, &c), 0);
	establish();
	assert_paired();
	for (int i = 0; i < 2; i++) {
		const struct ike_ts *t = i == 0 ? &net.s[0].child.remote : &net.s[1].child.local;
		assert_int_equal(t->start[2], 3);
		assert_int_equal(t->end[2], 3);
		assert_int_equal(t->end[3], 255);
		assert_int_equal(t->proto, 6);
	}
	/* Nothing in common: TS_UNACCEPTABLE, the IKE SA stays without a child. */
	teardown(NULL);
	setup(NULL);
	make_cfg(&c, 0, "aes256gcm16-prfsha384-ecp384", "aes256gcm16");
	assert_int_equal(ike_add_peer(net.s[0].ctx, &c), 0);
	make_cfg(&c, 1, "aes256gcm16-prfsha384-ecp384", "aes256gcm16");
	ts4(&c.children[0].local_ts[0], "10.9.0.0", "10.9.0.255");
	assert_int_equal(ike_add_peer(net.s[1].ctx, &c), 0);
	establish();
	assert_int_equal(net.s[0].ike_up, 1);
	assert_int_equal(net.s[0].child_up + net.s[1].child_up, 0);
	assert_string_equal(net.s[1].last_reject,
			    "traffic selectors do not overlap the configured ones");
}

static void test_delete(void **state)
{
	(void)state;
	add_peers("aes256gcm16-prfsha384-ecp384", "aes256gcm16", "aes256gcm16-prfsha384-ecp384",
		  "aes256gcm16");
	establish();
	assert_paired();
	/* B (the responder) deletes: requests go the other way with their own message IDs. */
	assert_int_equal(ike_terminate(net.s[1].ctx, "to-a", net.now), 0);
	run(false);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(sa_count(i), 0);
		assert_int_equal(net.s[i].child_down, 1);
		assert_int_equal(net.s[i].ike_down, 1);
	}
	assert_string_equal(net.s[0].last_down, "deleted by the peer");
	assert_int_equal(ike_terminate(net.s[1].ctx, "to-a", net.now), SG_ENOENT);
	/* A delete whose peer is gone: retransmitted, then the SA is removed anyway. */
	teardown(NULL);
	setup(NULL);
	add_peers("aes256gcm16-prfsha384-ecp384", "aes256gcm16", "aes256gcm16-prfsha384-ecp384",
		  "aes256gcm16");
	establish();
	net.dead[1] = true;
	assert_int_equal(ike_terminate(net.s[0].ctx, "to-b", net.now), 0);
	while (advance(600 * SEC))
		;
	assert_int_equal(sa_count(0), 0);
	assert_int_equal(net.s[0].retransmit, IKE_RETX_TRIES);
	assert_string_equal(net.s[0].last_down, "retransmissions exhausted");
}

static void test_dpd(void **state)
{
	struct ike_peer_cfg c;
	(void)state;
	make_cfg(&c, 0, "aes256gcm16-prfsha384-ecp384", "aes256gcm16");
	c.dpd_delay_ns = 30 * SEC;
	c.dpd_timeout_ns = 150 * SEC;
	assert_int_equal(ike_add_peer(net.s[0].ctx, &c), 0);
	make_cfg(&c, 1, "aes256gcm16-prfsha384-ecp384", "aes256gcm16");
	assert_int_equal(ike_add_peer(net.s[1].ctx, &c), 0);
	establish();
	assert_paired();
	/* Alive: a liveness check every 30 s, answered, nothing torn down. */
	uint64_t t0 = net.now;
	for (int i = 0; i < 3; i++)
		assert_true(advance(31 * SEC));
	assert_int_equal(net.now - t0, 90 * SEC);
	assert_int_equal(sa_count(0), 1);
	assert_int_equal(net.s[0].dpd_dead, 0);
	/* ESP traffic counts as liveness: no check while it flows. */
	unsigned sent = net.sent[0];
	ike_traffic_seen(ike_first_sa(net.s[0].ctx), net.now + 20 * SEC);
	net.now += 20 * SEC;
	assert_false(advance(29 * SEC));
	assert_int_equal(net.sent[0], sent);
	/* Dead: B stops answering; after dpd_timeout A gives up and clears. */
	net.dead[1] = true;
	t0 = net.now;
	while (sa_count(0) && advance(600 * SEC))
		;
	assert_int_equal(sa_count(0), 0);
	assert_int_equal(net.s[0].dpd_dead, 1);
	assert_int_equal(net.s[0].child_down, 1);
	assert_true(net.now - t0 <= 30 * SEC + 150 * SEC + SEC);
	assert_true(net.now - t0 >= 30 * SEC + 150 * SEC - SEC);
	assert_string_equal(net.s[0].last_down, "peer dead (DPD)");
}

static void test_dpd_restart(void **state)
{
	struct ike_peer_cfg c;
	(void)state;
	make_cfg(&c, 0, "aes256gcm16-prfsha384-ecp384", "aes256gcm16");
	c.dpd_delay_ns = 10 * SEC;
	c.children[0].dpd_action = IKE_DPD_RESTART;
	assert_int_equal(ike_add_peer(net.s[0].ctx, &c), 0);
	make_cfg(&c, 1, "aes256gcm16-prfsha384-ecp384", "aes256gcm16");
	assert_int_equal(ike_add_peer(net.s[1].ctx, &c), 0);
	establish();
	assert_paired();
	/* B loses its state (a restart): A's checks go unanswered... */
	ike_free(net.s[1].ctx);
	struct ike_io io = {.ctx = &net.s[1],
			    .send = on_send,
			    .child_up = on_child_up,
			    .child_down = on_child_down,
			    .event = on_event};
	net.s[1].ctx = ike_new(&io);
	make_cfg(&c, 1, "aes256gcm16-prfsha384-ecp384", "aes256gcm16");
	assert_int_equal(ike_add_peer(net.s[1].ctx, &c), 0);
	/* ...because B does not know the SA: it drops them. A declares it dead and starts again,
	 * and the new SA comes up. */
	while (net.s[0].ike_up < 2 && advance(600 * SEC))
		;
	assert_int_equal(net.s[0].dpd_dead, 1);
	assert_int_equal(net.s[0].ike_up, 2);
	assert_int_equal(sa_count(0), 1);
	assert_int_equal(sa_count(1), 1);
	assert_int_equal(ike_sa_state(ike_first_sa(net.s[1].ctx)), IKE_SA_ESTABLISHED);
}

static void test_half_open_expiry_and_hostile(void **state)
{
	struct ike_stats st;
	(void)state;
	add_peers("aes256gcm16-prfsha384-ecp384", "aes256gcm16", "aes256gcm16-prfsha384-ecp384",
		  "aes256gcm16");
	/* A's IKE_AUTH never reaches B: B's half-open SA expires. */
	net.drop_nth[0] = 2;
	net.dead[1] = false;
	assert_int_equal(ike_initiate(net.s[0].ctx, "to-b", NULL, net.now), 0);
	run(false);
	net.dead[1] = true; /* also drop A's retransmissions */
	assert_int_equal(sa_count(1), 1);
	while (sa_count(1) && advance(600 * SEC))
		;
	assert_int_equal(sa_count(1), 0);
	net.dead[1] = false;
	while (advance(600 * SEC))
		;
	assert_int_equal(sa_count(0), 0);
	/* Established SA, then garbage: nothing breaks, everything is counted. */
	net.drop_nth[0] = 0;
	net.sent[0] = net.sent[1] = 0;
	establish();
	assert_int_equal(net.s[1].ike_up, 1);
	uint8_t junk[256];
	struct ike_endpoint evil = net.s[0].addr;
	evil.addr[3] = 66;
	for (int i = 0; i < 200; i++) {
		size_t n = 1 + sg_random_u32() % sizeof(junk);
		assert_true(sg_random_bytes(junk, n));
		if (i % 3 == 0 && n >= IKE_HDR_LEN) {
			/* Valid-looking header for the established SA, with garbage after it. */
			struct ike_sa *sa = ike_first_sa(net.s[1].ctx);
			ike_sa_spis(sa, junk, junk + 8);
			junk[17] = IKE_VERSION;
			junk[18] = IKE_INFORMATIONAL;
			junk[19] = IKE_FLAG_INITIATOR;
			junk[24] = junk[25] = 0;
			junk[26] = (uint8_t)(n >> 8);
			junk[27] = (uint8_t)n;
		}
		ike_receive(net.s[1].ctx, net.now, IKE_NATT_PORT, &evil, junk, n);
	}
	run(false);
	ike_get_stats(net.s[1].ctx, &st);
	assert_true(st.rx_invalid + st.rx_no_sa > 0);
	assert_int_equal(sa_count(1), 1);
	assert_int_equal(ike_sa_state(ike_first_sa(net.s[1].ctx)), IKE_SA_ESTABLISHED);
	/* The SA still works: a clean delete goes through. */
	assert_int_equal(ike_terminate(net.s[0].ctx, "to-b", net.now), 0);
	run(false);
	assert_int_equal(sa_count(0) + sa_count(1), 0);
}

/* Both sides hold exactly one Child SA, and its halves pair up. */
static void assert_one_child_pair(void)
{
	struct side *a = &net.s[0], *b = &net.s[1];
	assert_int_equal(a->nlive, 1);
	assert_int_equal(b->nlive, 1);
	assert_int_equal(a->live[0].spi_out, b->live[0].spi_in);
	assert_int_equal(a->live[0].spi_in, b->live[0].spi_out);
	assert_memory_equal(a->live[0].key_out, b->live[0].key_in, a->live[0].key_len);
	assert_memory_equal(a->live[0].key_in, b->live[0].key_out, a->live[0].key_len);
}

static void rekey_children(int who)
{
	assert_int_equal(ike_rekey(net.s[who].ctx, who == 0 ? "to-b" : "to-a", NULL, false, net.now), 0);
	run(false);
}

static void test_child_rekey(void **state)
{
	(void)state;
	add_peers("aes256gcm16-prfsha384-ecp384", "aes256gcm16", "aes256gcm16-prfsha384-ecp384",
		  "aes256gcm16");
	establish();
	uint32_t first = net.s[0].child.spi_in;
	rekey_children(0); /* the initiator rekeys */
	assert_one_child_pair();
	assert_int_not_equal(net.s[0].live[0].spi_in, first);
	assert_int_equal(net.s[0].child_up, 2);
	assert_int_equal(net.s[0].child_down, 1);
	assert_int_equal(net.s[1].child_down, 1);
	assert_int_equal(net.s[0].child_rekeyed + net.s[1].child_rekeyed, 2);
	rekey_children(1); /* and the responder */
	assert_one_child_pair();
	assert_int_equal(net.s[1].child_up, 3);
	/* The IKE SA goes on: a delete still works. */
	assert_int_equal(ike_terminate(net.s[0].ctx, "to-b", net.now), 0);
	run(false);
	assert_int_equal(sa_count(0) + sa_count(1), 0);
	assert_int_equal(net.s[0].nlive + net.s[1].nlive, 0);
}

static void test_child_rekey_pfs(void **state)
{
	(void)state;
	/* PFS: A offers P-256 first, B takes P-384 only: INVALID_KE_PAYLOAD, then the retry. The
	 * first Child SA (IKE_AUTH) has no key exchange of its own (1.2). */
	add_peers("aes256gcm16-prfsha384-ecp384", "aes256gcm16-ecp256-ecp384",
		  "aes256gcm16-prfsha384-ecp384", "aes256gcm16-ecp384");
	establish();
	assert_one_child_pair();
	rekey_children(0);
	assert_one_child_pair();
	assert_int_equal(net.s[0].invalid_ke, 1);
	assert_int_equal(net.s[0].child_up, 2);
	/* The other way round: B's only group is A's second. */
	rekey_children(1);
	assert_one_child_pair();
	assert_int_equal(net.s[1].child_up, 3);
	/* PFS required but the peer has none: refused, the old Child SA stays. */
	teardown(NULL);
	setup(NULL);
	add_peers("aes256gcm16-prfsha384-ecp384", "aes256gcm16", "aes256gcm16-prfsha384-ecp384",
		  "aes256gcm16-ecp384");
	establish();
	assert_one_child_pair();
	rekey_children(0);
	assert_one_child_pair();
	assert_int_equal(net.s[0].child_up, 1);
	assert_string_equal(net.s[0].last_reject, "Child SA rekey refused by the peer");
}

static void test_ike_rekey(void **state)
{
	(void)state;
	add_peers("aes256gcm16-prfsha384-ecp384", "aes256gcm16", "aes256gcm16-prfsha384-ecp384",
		  "aes256gcm16");
	establish();
	uint8_t old_i[8], old_r[8], new_i[8], new_r[8], bi[8], br[8];
	ike_sa_spis(ike_first_sa(net.s[0].ctx), old_i, old_r);
	for (int who = 0; who < 2; who++) {
		assert_int_equal(
		    ike_rekey(net.s[who].ctx, who == 0 ? "to-b" : "to-a", NULL, true, net.now), 0);
		run(false);
		assert_int_equal(sa_count(0), 1);
		assert_int_equal(sa_count(1), 1);
		struct ike_sa *sa = ike_first_sa(net.s[0].ctx), *sb = ike_first_sa(net.s[1].ctx);
		assert_int_equal(ike_sa_state(sa), IKE_SA_ESTABLISHED);
		assert_int_equal(ike_sa_state(sb), IKE_SA_ESTABLISHED);
		ike_sa_spis(sa, new_i, new_r);
		ike_sa_spis(sb, bi, br);
		assert_memory_equal(new_i, bi, 8);
		assert_memory_equal(new_r, br, 8);
		assert_memory_not_equal(new_i, old_i, 8);
		memcpy(old_i, new_i, 8);
		/* 2.18: the rekey's initiator is the new SA's initiator. */
		assert_true(ike_sa_initiator(who == 0 ? sa : sb));
		/* The Child SA moved along, untouched. */
		assert_int_equal(ike_sa_child_count(sa), 1);
		assert_int_equal(ike_sa_child_count(sb), 1);
		assert_int_equal(net.s[0].child_down + net.s[1].child_down, 0);
		assert_int_equal(net.s[0].ike_down + net.s[1].ike_down, 0);
	}
	assert_int_equal(net.s[0].ike_rekeyed, 2);
	assert_one_child_pair();
	/* The new SA works: its children rekey, DPD-free delete. */
	rekey_children(1);
	assert_one_child_pair();
	assert_int_equal(ike_terminate(net.s[1].ctx, "to-a", net.now), 0);
	run(false);
	assert_int_equal(sa_count(0) + sa_count(1), 0);
	assert_int_equal(net.s[0].ike_down, 1);
}

static void test_child_rekey_collision(void **state)
{
	(void)state;
	add_peers("aes256gcm16-prfsha384-ecp384", "aes256gcm16", "aes256gcm16-prfsha384-ecp384",
		  "aes256gcm16");
	establish();
	for (int round = 0; round < 8; round++) {
		/* Both start before either request arrives. */
		assert_int_equal(ike_rekey(net.s[0].ctx, "to-b", NULL, false, net.now), 0);
		assert_int_equal(ike_rekey(net.s[1].ctx, "to-a", NULL, false, net.now), 0);
		run(round & 1);
		assert_one_child_pair();
		assert_int_equal(net.s[0].collisions, (unsigned)round + 1);
		assert_int_equal(net.s[1].collisions, (unsigned)round + 1);
		assert_int_equal(net.s[0].child_up, 1 + 2 * ((unsigned)round + 1));
	}
	assert_int_equal(net.nq, 0);
}

static void test_ike_rekey_collision(void **state)
{
	(void)state;
	add_peers("aes256gcm16-prfsha384-ecp384", "aes256gcm16", "aes256gcm16-prfsha384-ecp384",
		  "aes256gcm16");
	establish();
	for (int round = 0; round < 8; round++) {
		assert_int_equal(ike_rekey(net.s[0].ctx, "to-b", NULL, true, net.now), 0);
		assert_int_equal(ike_rekey(net.s[1].ctx, "to-a", NULL, true, net.now), 0);
		run(round & 1);
		assert_int_equal(sa_count(0), 1);
		assert_int_equal(sa_count(1), 1);
		uint8_t ai[8], ar[8], bi[8], br[8];
		ike_sa_spis(ike_first_sa(net.s[0].ctx), ai, ar);
		ike_sa_spis(ike_first_sa(net.s[1].ctx), bi, br);
		assert_memory_equal(ai, bi, 8);
		assert_memory_equal(ar, br, 8);
		assert_int_equal(ike_sa_state(ike_first_sa(net.s[0].ctx)), IKE_SA_ESTABLISHED);
		assert_int_equal(ike_sa_child_count(ike_first_sa(net.s[0].ctx)), 1);
		assert_int_equal(ike_sa_child_count(ike_first_sa(net.s[1].ctx)), 1);
		assert_int_equal(net.s[0].collisions, (unsigned)round + 1);
	}
	assert_one_child_pair();
	assert_int_equal(net.s[0].child_down + net.s[1].child_down, 0);
	assert_int_equal(net.s[0].ike_down + net.s[1].ike_down, 0);
	/* What is left works. */
	rekey_children(0);
	assert_one_child_pair();
	assert_int_equal(ike_terminate(net.s[0].ctx, "to-b", net.now), 0);
	run(false);
	assert_int_equal(sa_count(0) + sa_count(1), 0);
}

static void test_lifetimes(void **state)
{
	struct ike_peer_cfg c;
	(void)state;
	make_cfg(&c, 0, "aes256gcm16-prfsha384-ecp384", "aes256gcm16");
	c.children[0].rekey_time_ns = 100 * SEC;
	c.children[0].life_time_ns = 150 * SEC;
	c.rekey_time_ns = 1000 * SEC;
	assert_int_equal(ike_add_peer(net.s[0].ctx, &c), 0);
	make_cfg(&c, 1, "aes256gcm16-prfsha384-ecp384", "aes256gcm16");
	c.children[0].life_time_ns = 400 * SEC; /* B only expires, later */
	assert_int_equal(ike_add_peer(net.s[1].ctx, &c), 0);
	establish();
	uint64_t t0 = net.now;
	/* Soft: A rekeys between 90 and 100 s (the jitter is up to a tenth). */
	while (net.s[0].child_up < 2 && advance(600 * SEC))
		;
	assert_true(net.now - t0 >= 90 * SEC && net.now - t0 <= 100 * SEC);
	assert_one_child_pair();
	/* The IKE SA is rekeyed by A between 900 and 1000 s, the children go on rekeying every
	 * ~100 s and never reach a hard lifetime. */
	while (net.s[0].ike_rekeyed < 1 && advance(600 * SEC))
		;
	assert_true(net.now - t0 >= 900 * SEC && net.now - t0 <= 1000 * SEC);
	assert_true(net.s[0].child_up >= 10);
	assert_one_child_pair();
	assert_int_equal(sa_count(0), 1);
	/* Hard only (B's side, no rekey configured there): with A's rekeying off, B deletes the
	 * child at 400 s. */
	teardown(NULL);
	setup(NULL);
	make_cfg(&c, 0, "aes256gcm16-prfsha384-ecp384", "aes256gcm16");
	assert_int_equal(ike_add_peer(net.s[0].ctx, &c), 0);
	make_cfg(&c, 1, "aes256gcm16-prfsha384-ecp384", "aes256gcm16");
	c.children[0].life_time_ns = 400 * SEC;
	assert_int_equal(ike_add_peer(net.s[1].ctx, &c), 0);
	establish();
	t0 = net.now;
	while (net.s[1].child_down < 1 && advance(600 * SEC))
		;
	assert_int_equal(net.now - t0, 400 * SEC);
	assert_int_equal(net.s[0].nlive + net.s[1].nlive, 0);
	assert_int_equal(sa_count(0), 1); /* the IKE SA stays */
	/* Byte/packet lifetimes come from the data path. */
	teardown(NULL);
	setup(NULL);
	add_peers("aes256gcm16-prfsha384-ecp384", "aes256gcm16", "aes256gcm16-prfsha384-ecp384",
		  "aes256gcm16");
	establish();
	ike_child_expired(ike_first_sa(net.s[1].ctx), net.s[1].live[0].spi_in, false, net.now);
	run(false);
	assert_int_equal(net.s[1].child_up, 2);
	assert_one_child_pair();
	ike_child_expired(ike_first_sa(net.s[1].ctx), net.s[1].live[0].spi_in, true, net.now);
	run(false);
	assert_int_equal(net.s[0].nlive + net.s[1].nlive, 0);
}

/* ---- certificates (RFC 7427 signatures) ------------------------------------------------------ */

static struct sg_cert *load_cert(const char *name)
{
	char path[512];
	const char *dir = getenv("SG_VECTORS");
	snprintf(path, sizeof(path), "%s/pki/%s", dir ? dir : "tests/vectors", name);
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s", path);
	static uint8_t buf[65536];
	size_t n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	struct sg_cert *c;
	assert_int_equal(sg_cert_load(buf, n, &c), 0);
	return c;
}

static struct sg_privkey *load_key(const char *name)
{
	char path[512];
	const char *dir = getenv("SG_VECTORS");
	snprintf(path, sizeof(path), "%s/pki/%s", dir ? dir : "tests/vectors", name);
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s", path);
	static uint8_t buf[65536];
	size_t n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	struct sg_privkey *k;
	assert_int_equal(sg_privkey_load(buf, n, &k), 0);
	return k;
}

static struct pki {
	struct sg_cert *ca, *other, *moon, *sun, *expired;
	struct sg_privkey *moon_key, *sun_key, *stranger;
} pki;

static void pki_load(void)
{
	pki.ca = load_cert("ca.pem");
	pki.other = load_cert("other_ca.pem");
	pki.moon = load_cert("moon.pem");
	pki.sun = load_cert("sun.pem");
	pki.expired = load_cert("expired.pem");
	pki.moon_key = load_key("moon.key");
	pki.sun_key = load_key("sun.key");
	pki.stranger = load_key("stranger.key");
}

static void pki_free(void)
{
	sg_cert_free(pki.ca);
	sg_cert_free(pki.other);
	sg_cert_free(pki.moon);
	sg_cert_free(pki.sun);
	sg_cert_free(pki.expired);
	sg_privkey_free(pki.moon_key);
	sg_privkey_free(pki.sun_key);
	sg_privkey_free(pki.stranger);
}

/* A (moon, ECDSA P-384, FQDN) and B (sun, RSA, e-mail address) with certificates from the test
 * CA; B takes any identity A's certificate proves. */
static void cert_cfgs(struct ike_peer_cfg *a, struct ike_peer_cfg *b)
{
	make_cfg(a, 0, "aes256gcm16-prfsha384-ecp384", "aes256gcm16");
	make_cfg(b, 1, "aes256gcm16-prfsha384-ecp384", "aes256gcm16");
	a->local_auth = a->remote_auth = b->local_auth = b->remote_auth = IKE_AUTHC_PUBKEY;
	a->psk_len = b->psk_len = 0;
	ident(&a->local_id, "moon.example");
	a->remote_id.type = IKE_ID_RFC822_ADDR;
	a->remote_id.len = 15;
	memcpy(a->remote_id.data, "sun@example.net", 15);
	b->local_id = a->remote_id;
	b->remote_id.type = IKE_ID_ANY;
	a->cert = pki.moon, a->key = pki.moon_key;
	b->cert = pki.sun, b->key = pki.sun_key;
	a->cas[0] = b->cas[0] = pki.ca;
	a->ncas = b->ncas = 1;
}

static void test_certificates(void **state)
{
	struct ike_peer_cfg a, b;
	(void)state;
	pki_load();
	cert_cfgs(&a, &b);
	assert_int_equal(ike_add_peer(net.s[0].ctx, &a), 0);
	assert_int_equal(ike_add_peer(net.s[1].ctx, &b), 0);
	establish();
	assert_paired();
	/* Mixed: A signs, B uses the pre-shared key (each direction on its own, 2.15). */
	const struct {
		const char *what;
		int mutate;
		int side; /* whose rejection */
		const char *reason;
	} cases[] = {
	    {"mixed", 0, -1, NULL},
	    {"untrusted CA", 1, 1, "unable to get local issuer certificate"},
	    {"identity not in the certificate", 2, 1,
	     "the peer's certificate does not hold its identity"},
	    {"expired", 3, 1, "certificate has expired"},
	    {"signature by another key", 4, 1,
	     "signature algorithm does not fit the certificate's key"},
	    {"tampered signature", 5, 1, "signature does not verify"},
	    {"no CA loaded", 6, 1, "no CA certificate is loaded for this connection"},
	    {"DN identities", 7, -1, NULL},
	    {"DN identity with wildcards", 8, -1, NULL},
	    {"DN identity of another", 9, 1, "no connection for the initiator's identity"},
	    {"RSASSA-PSS", 10, -1, NULL},
	};
	for (size_t i = 0; i < SG_ARRAY_LEN(cases); i++) {
		teardown(NULL);
		setup(NULL);
		cert_cfgs(&a, &b);
		switch (cases[i].mutate) {
		case 0:
			b.local_auth = a.remote_auth = IKE_AUTHC_PSK;
			a.psk_len = b.psk_len = 28;
			break;
		case 1:
			b.cas[0] = pki.other;
			break;
		case 2:
			ident(&a.local_id, "mars.example");
			break;
		case 3:
			a.cert = pki.expired;
			break;
		case 4:
			a.key = pki.sun_key; /* an RSA key that is not the certificate's */
			break;
		case 5:
			a.key = pki.stranger; /* the right algorithm, the wrong key */
			break;
		case 6:
			b.ncas = 0; /* e.g. its authority was unloaded */
			break;
		case 7: /* the subjects as text (strongSwan's syntax, another string type) */
			dn_ident(&a.local_id, "C=CH, O=SecureGuard Test, CN=moon.example");
			dn_ident(&b.remote_id, "c=ch, o=securegUARD TEST, cn=moon.example");
			break;
		case 8: /* A's identity: its certificate's subject */
			dn_ident(&b.remote_id, "C=CH, O=*, CN=*");
			a.local_id.type = IKE_ID_ANY;
			break;
		case 9:
			dn_ident(&b.remote_id, "C=CH, O=SecureGuard Test, CN=mars.example");
			a.local_id.type = IKE_ID_ANY;
			break;
		case 10: /* B's RSA key signs with PSS, A insists on it */
			b.sign_pss = true;
			a.require_pss = true;
			break;
		}
		assert_int_equal(ike_add_peer(net.s[0].ctx, &a), 0);
		assert_int_equal(ike_add_peer(net.s[1].ctx, &b), 0);
		establish();
		if (cases[i].side < 0) {
			assert_paired();
			continue;
		}
		if (net.s[0].ike_up + net.s[1].ike_up != 0 || sa_count(0) + sa_count(1) != 0)
			fail_msg("%s: an SA came up", cases[i].what);
		if (!net.s[cases[i].side].last_reject ||
		    strcmp(net.s[cases[i].side].last_reject, cases[i].reason))
			fail_msg("%s: got \"%s\"", cases[i].what,
				 net.s[cases[i].side].last_reject ? net.s[cases[i].side].last_reject
								  : "(none)");
		assert_string_equal(net.s[0].last_reject, "peer: AUTHENTICATION_FAILED");
	}
	/* A insists on PSS, B signs PKCS#1 v1.5: A refuses B's AUTH. */
	teardown(NULL);
	setup(NULL);
	cert_cfgs(&a, &b);
	a.require_pss = true;
	assert_int_equal(ike_add_peer(net.s[0].ctx, &a), 0);
	assert_int_equal(ike_add_peer(net.s[1].ctx, &b), 0);
	establish();
	assert_int_equal(net.s[0].ike_up, 0);
	assert_string_equal(net.s[0].last_reject, "the peer must sign with RSASSA-PSS (auth = rsa/pss)");
	/* A certificate without its key, or PSS with an ECDSA key, are refused as configs. */
	cert_cfgs(&a, &b);
	a.sign_pss = true;
	assert_int_equal(ike_set_peer(net.s[0].ctx, &a), SG_EINVAL);
	cert_cfgs(&a, &b);
	a.key = NULL;
	assert_int_equal(ike_add_peer(net.s[0].ctx, &a), SG_EINVAL);
	pki_free();
}

/* Delivers the queue last-in first-out until quiet: every burst (the fragments of a message)
 * arrives in reverse order. */
static void run_lifo(void)
{
	for (int guard = 0; net.nq && guard < 1000; guard++) {
		struct dgram d = net.q[--net.nq];
		ike_receive(net.s[d.to].ctx, net.now, d.port, &d.from, d.data, d.len);
	}
	assert_int_equal(net.nq, 0);
}

/* RFC 7383: IKE_AUTH with certificates (B's RSA certificate and signature) does not fit in a
 * 1280-byte datagram: it travels as fragments, which arrive in order, in reverse order, and with
 * one lost (the whole message is retransmitted; a retransmitted fragmented request is answered
 * on its fragment 1 only). */
static void test_fragmentation(void **state)
{
	struct ike_peer_cfg a, b;
	struct ike_stats sa_, sb;
	(void)state;
	pki_load();
	for (int round = 0; round < 3; round++) {
		teardown(NULL);
		setup(NULL);
		cert_cfgs(&a, &b);
		assert_int_equal(ike_add_peer(net.s[0].ctx, &a), 0);
		assert_int_equal(ike_add_peer(net.s[1].ctx, &b), 0);
		/* The test certificates are small: 512-byte fragments make several. */
		assert_int_equal(ike_set_fragment_size(net.s[0].ctx, IKE_FRAG_MIN), 0);
		assert_int_equal(ike_set_fragment_size(net.s[1].ctx, IKE_FRAG_MIN), 0);
		assert_int_equal(ike_set_fragment_size(net.s[1].ctx, 100), SG_EINVAL);
		if (round == 2)
			net.drop_nth[1] = 2; /* fragment 1 of B's IKE_AUTH response */
		assert_int_equal(ike_initiate(net.s[0].ctx, "to-b", NULL, net.now), 0);
		if (round == 1)
			run_lifo();
		else
			run(false);
		if (round == 2) {
			assert_int_equal(net.s[0].ike_up, 0);
			assert_true(advance(10 * SEC)); /* A retransmits its IKE_AUTH request */
		}
		assert_paired();
		assert_int_equal(net.s[1].child_up, 1); /* installed once */
		ike_get_stats(net.s[0].ctx, &sa_);
		ike_get_stats(net.s[1].ctx, &sb);
		assert_true(sb.fragmented >= 1 && sa_.fragmented >= 1);
		assert_true(sa_.reassembled >= 1 && sb.reassembled >= 1);
		/* Then a fragmented exchange is not needed for small messages. */
		assert_int_equal(ike_terminate(net.s[0].ctx, "to-b", net.now), 0);
		run(false);
		assert_int_equal(sa_count(0) + sa_count(1), 0);
	}
	pki_free();
}

/* A second child config on each side: `name`, our 10.1/16 (A) or 10.2/16 (B) against the other's
 * `prefix`/24 (10.x.0.0). */
static void add_child(struct ike_peer_cfg *c, int me, const char *name, unsigned x)
{
	const char *why;
	struct ike_child_cfg *cc = &c->children[c->nchildren++];
	char lo[32], hi[32];
	memset(cc, 0, sizeof(*cc));
	snprintf(cc->name, sizeof(cc->name), "%s", name);
	assert_int_equal(ike_prop_parse("aes256gcm16", IKE_PROTO_ESP, false, &cc->props[0], &why),
			 0);
	cc->nprops = 1;
	snprintf(lo, sizeof(lo), "10.%u.0.0", x);
	snprintf(hi, sizeof(hi), "10.%u.0.255", x);
	if (me == 0) {
		ts4(&cc->local_ts[0], "10.1.0.0", "10.1.255.255");
		ts4(&cc->remote_ts[0], lo, hi);
	} else {
		ts4(&cc->local_ts[0], lo, hi);
		ts4(&cc->remote_ts[0], "10.1.0.0", "10.1.255.255");
	}
	cc->nlocal_ts = cc->nremote_ts = 1;
}

static bool live(int side, const char *name)
{
	for (unsigned i = 0; i < net.s[side].nlive; i++)
		if (!strcmp(net.s[side].live[i].name, name))
			return true;
	return false;
}

/* Several children per connection: the initiator creates the one asked for in IKE_AUTH and the
 * others with CREATE_CHILD_SA over the same IKE SA (queued while it is being made); the
 * responder picks each one's config by the proposed selectors, not by order; rekey and
 * terminate of one child leave the others; a child the peer has no config for fails alone. */
static void test_children(void **state)
{
	struct ike_peer_cfg a, b;
	(void)state;
	make_cfg(&a, 0, "aes256gcm16-prfsha384-ecp384", "aes256gcm16");
	add_child(&a, 0, "dmz", 9);
	add_child(&a, 0, "lab", 7);
	make_cfg(&b, 1, "aes256gcm16-prfsha384-ecp384", "aes256gcm16");
	/* B lists dmz first and has no "lab": order must not decide, names do not travel. */
	struct ike_child_cfg net_b = b.children[0];
	b.nchildren = 0;
	add_child(&b, 1, "b-dmz", 9);
	b.children[b.nchildren++] = net_b;
	assert_int_equal(ike_add_peer(net.s[0].ctx, &a), 0);
	assert_int_equal(ike_add_peer(net.s[1].ctx, &b), 0);
	/* "net" in IKE_AUTH, "dmz" asked for while IKE_SA_INIT is under way: queued. */
	assert_int_equal(ike_initiate(net.s[0].ctx, "to-b", "net", net.now), 0);
	assert_int_equal(ike_initiate(net.s[0].ctx, "to-b", "dmz", net.now), 0);
	assert_int_equal(ike_initiate(net.s[0].ctx, "to-b", "dmz", net.now), 0); /* once */
	assert_int_equal(ike_initiate(net.s[0].ctx, "to-b", "nope", net.now), SG_ENOENT);
	run(false);
	assert_int_equal(sa_count(0), 1);
	assert_int_equal(sa_count(1), 1);
	assert_int_equal(net.s[0].initiating, 1);
	assert_int_equal(net.s[0].child_creating, 1);
	assert_int_equal(net.s[0].child_up, 2);
	assert_int_equal(net.s[1].child_up, 2);
	assert_true(live(0, "net") && live(0, "dmz"));
	assert_true(live(1, "net") && live(1, "b-dmz"));
	for (unsigned i = 0; i < net.s[1].nlive; i++) {
		const struct child_rec *r = &net.s[1].live[i];
		/* B's selectors are its own config's: 10.2/16 for net, 10.9.0/24 for b-dmz. */
		assert_int_equal(r->local.start[1], !strcmp(r->name, "net") ? 2 : 9);
	}
	assert_int_equal(ike_sa_child_count(ike_first_sa(net.s[0].ctx)), 2);
	assert_int_equal(ike_initiate(net.s[0].ctx, "to-b", "dmz", net.now), SG_EEXIST);
	/* The responder's side can ask over the same SA too: B's net is up already. */
	assert_int_equal(ike_initiate(net.s[1].ctx, "to-a", "net", net.now), SG_EEXIST);
	/* A child B has no config for: TS_UNACCEPTABLE, the rest stays. */
	assert_int_equal(ike_initiate(net.s[0].ctx, "to-b", "lab", net.now), 0);
	run(false);
	assert_int_equal(net.s[0].child_failed, 1);
	assert_string_equal(net.s[0].last_failed, "lab");
	assert_string_equal(net.s[0].last_failed_why, "peer: TS_UNACCEPTABLE");
	assert_int_equal(net.s[0].nlive, 2);
	/* Rekey one child: only it. */
	uint32_t dmz_old = 0;
	for (unsigned i = 0; i < net.s[0].nlive; i++)
		if (!strcmp(net.s[0].live[i].name, "dmz"))
			dmz_old = net.s[0].live[i].spi_in;
	assert_int_equal(ike_rekey(net.s[0].ctx, "to-b", "dmz", false, net.now), 0);
	run(false);
	assert_int_equal(net.s[0].child_rekeyed, 1);
	assert_int_equal(net.s[0].rekeyed_spi_old, dmz_old);
	assert_int_equal(net.s[0].nlive, 2);
	assert_int_equal(net.s[1].nlive, 2);
	assert_true(live(0, "dmz") && live(1, "b-dmz"));
	assert_int_equal(ike_rekey(net.s[0].ctx, "to-b", "nope", false, net.now), SG_ENOENT);
	/* Terminate one child: DELETE for it, the IKE SA and the other child stay. */
	assert_int_equal(ike_terminate_child(net.s[0].ctx, "to-b", "net", net.now), 0);
	run(false);
	assert_int_equal(net.s[0].nlive, 1);
	assert_int_equal(net.s[1].nlive, 1);
	assert_true(live(0, "dmz") && !live(0, "net"));
	assert_int_equal(sa_count(0), 1);
	assert_int_equal(ike_terminate_child(net.s[0].ctx, "to-b", "net", net.now), SG_ENOENT);
	/* ... and it can come back over the same IKE SA. */
	assert_int_equal(ike_initiate(net.s[0].ctx, "to-b", "net", net.now), 0);
	run(false);
	assert_int_equal(net.s[0].nlive, 2);
	assert_int_equal(net.s[0].initiating, 1);
	/* An IKE rekey carries every child over. */
	assert_int_equal(ike_rekey(net.s[0].ctx, "to-b", NULL, true, net.now), 0);
	run(false);
	assert_int_equal(sa_count(0), 1);
	assert_int_equal(ike_sa_child_count(ike_first_sa(net.s[0].ctx)), 2);
	assert_non_null(net.s[0].rekeyed_old);
	/* Duplicate child names are refused as a config. */
	b.children[1] = b.children[0];
	assert_int_equal(ike_set_peer(net.s[1].ctx, &b), SG_EINVAL);
}

/* A responder with several connections: IKE_SA_INIT takes the first whose addresses hold the
 * sender and whose proposals match; IKE_AUTH binds the SA to the connection of the initiator's
 * identity only if that one accepts the algorithms chosen. */
static void test_responder_selection(void **state)
{
	struct ike_peer_cfg a, b;
	(void)state;
	/* B: "first" for a.example (AES-GCM / P-384), "second" for c.example (ChaCha20 /
	 * Curve25519). A, as c.example, offers ChaCha20 only. */
	make_cfg(&b, 1, "aes256gcm16-prfsha384-ecp384", "aes256gcm16");
	strcpy(b.name, "first");
	assert_int_equal(ike_add_peer(net.s[1].ctx, &b), 0);
	make_cfg(&b, 1, "chacha20poly1305-prfsha256-x25519", "aes256gcm16");
	strcpy(b.name, "second");
	ident(&b.remote_id, "c.example");
	assert_int_equal(ike_add_peer(net.s[1].ctx, &b), 0);
	make_cfg(&a, 0, "chacha20poly1305-prfsha256-x25519", "aes256gcm16");
	ident(&a.local_id, "c.example");
	assert_int_equal(ike_add_peer(net.s[0].ctx, &a), 0);
	establish();
	assert_int_equal(net.s[0].ike_up, 1);
	assert_int_equal(net.s[1].child_up, 1);
	assert_string_equal(ike_sa_peer_name(ike_first_sa(net.s[1].ctx)), "second");
	/* A as a.example with ChaCha20: INIT goes by "second"'s proposals, but the identity
	 * belongs to "first", which does not take them. */
	assert_int_equal(ike_terminate(net.s[0].ctx, "to-b", net.now), 0);
	run(false);
	ident(&a.local_id, "a.example");
	assert_int_equal(ike_set_peer(net.s[0].ctx, &a), 0);
	establish();
	assert_int_equal(net.s[1].ike_up, 1);
	assert_string_equal(net.s[1].last_reject,
			    "the connection for this identity does not accept the IKE SA's algorithms");
	assert_int_equal(sa_count(1), 0);
	/* remote_addrs: B's connections take only 192.0.2.9 and 198.51.100.0/24. */
	teardown(NULL);
	setup(NULL);
	make_cfg(&b, 1, "aes256gcm16-prfsha384-ecp384", "aes256gcm16");
	b.nremote_addrs = 2;
	b.remote_addrs[0] = (struct ike_addr_range){.family = AF_INET, .single = true};
	memcpy(b.remote_addrs[0].start, (uint8_t[]){192, 0, 2, 9}, 4);
	memcpy(b.remote_addrs[0].end, (uint8_t[]){192, 0, 2, 9}, 4);
	b.remote_addrs[1] = (struct ike_addr_range){.family = AF_INET};
	memcpy(b.remote_addrs[1].start, (uint8_t[]){198, 51, 100, 0}, 4);
	memcpy(b.remote_addrs[1].end, (uint8_t[]){198, 51, 100, 255}, 4);
	assert_int_equal(ike_add_peer(net.s[1].ctx, &b), 0);
	make_cfg(&a, 0, "aes256gcm16-prfsha384-ecp384", "aes256gcm16");
	assert_int_equal(ike_add_peer(net.s[0].ctx, &a), 0);
	establish();
	assert_int_equal(sa_count(1), 0);
	assert_string_equal(net.s[1].last_reject,
			    "no connection takes IKE_SA_INIT from this address (remote_addrs)");
	assert_string_equal(net.s[0].last_reject, "peer: NO_PROPOSAL_CHOSEN");
	/* A second connection that takes 192.0.2.0/24 answers, and binds in IKE_AUTH. */
	strcpy(b.name, "range");
	memcpy(b.remote_addrs[1].start, (uint8_t[]){192, 0, 2, 0}, 4);
	memcpy(b.remote_addrs[1].end, (uint8_t[]){192, 0, 2, 255}, 4);
	assert_int_equal(ike_add_peer(net.s[1].ctx, &b), 0);
	establish();
	assert_int_equal(net.s[1].ike_up, 1);
	assert_string_equal(ike_sa_peer_name(ike_first_sa(net.s[1].ctx)), "range");
}

/* fragmentation = no: not announced, nothing sent or taken in fragments even with small
 * fragment sizes; accept: announced and fragments taken, none sent. */
static void test_fragmentation_modes(void **state)
{
	struct ike_peer_cfg a, b;
	struct ike_stats sa_, sb;
	(void)state;
	pki_load();
	for (int mode = IKE_FRAG_ACCEPT; mode <= IKE_FRAG_NO; mode++) {
		teardown(NULL);
		setup(NULL);
		cert_cfgs(&a, &b);
		a.fragmentation = (uint8_t)mode;
		assert_int_equal(ike_add_peer(net.s[0].ctx, &a), 0);
		assert_int_equal(ike_add_peer(net.s[1].ctx, &b), 0);
		assert_int_equal(ike_set_fragment_size(net.s[0].ctx, IKE_FRAG_MIN), 0);
		assert_int_equal(ike_set_fragment_size(net.s[1].ctx, IKE_FRAG_MIN), 0);
		establish();
		assert_paired();
		ike_get_stats(net.s[0].ctx, &sa_);
		ike_get_stats(net.s[1].ctx, &sb);
		assert_int_equal(sa_.fragmented, 0);
		if (mode == IKE_FRAG_ACCEPT) {
			assert_true(sb.fragmented >= 1);
			assert_true(sa_.reassembled >= 1);
		} else {
			assert_int_equal(sb.fragmented, 0);
			assert_int_equal(sa_.reassembled + sb.reassembled, 0);
		}
	}
	/* The responder's setting counts too: B with no, A sends whole messages. */
	teardown(NULL);
	setup(NULL);
	cert_cfgs(&a, &b);
	b.fragmentation = IKE_FRAG_NO;
	assert_int_equal(ike_add_peer(net.s[0].ctx, &a), 0);
	assert_int_equal(ike_add_peer(net.s[1].ctx, &b), 0);
	assert_int_equal(ike_set_fragment_size(net.s[0].ctx, IKE_FRAG_MIN), 0);
	establish();
	assert_paired();
	ike_get_stats(net.s[0].ctx, &sa_);
	assert_int_equal(sa_.fragmented, 0);
	pki_free();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_establish, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cipher_families, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_invalid_ke, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cookie, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lost_and_retransmitted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_duplicated_and_reordered, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_auth_failed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_proposal_chosen, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ts_narrowing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dpd, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dpd_restart, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_half_open_expiry_and_hostile, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_child_rekey, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_child_rekey_pfs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ike_rekey, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_child_rekey_collision, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ike_rekey_collision, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lifetimes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_certificates, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fragmentation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_children, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_responder_selection, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fragmentation_modes, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
