/* The TLS transport in secureguardd; see tlsmgr.h and docs/TLS.md. */
#include "engine/tlsmgr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <secureguard/sg_errors.h>

#include "common/log.h"
#include "crypto/crypto.h"
#include "net/addr.h"
#include "net/tls.h"

/* Connection ids: (generation << 13) | (slot + 1), never 0, so a stale id (a connection that
 * ended) never finds a newer connection in the same slot. */
#define SLOTS	  4096u
#define SLOT_BITS 13
#define NSEC	  1000000000ull
#define TICK_NS	  (NSEC / 2)

enum transport { TR_UDP = 0, TR_TLS, TR_AUTO };

static const char *const transport_names[] = {"udp", "tls", "auto"};

struct tls_peer {
	struct tls_peer *next;
	struct tlsmgr *m;
	struct wg_peer *peer;
	enum transport mode;
	bool has_ep;
	union wg_sockaddr ep; /* TlsEndpoint */
	char server_name[256];
	struct sg_tls_conn *conn; /* our client connection, connecting or up */
	uint32_t conn_id;	  /* its id once up */
	bool on_tls;		  /* tls, or auto after moving to TLS */
	unsigned udp_attempts;	  /* initiations over UDP since the last completed handshake */
	uint64_t reconnect_at;	  /* 0 = connect at the next tick */
	unsigned backoff_s;
	uint64_t probe_at;
	struct wg_endpoint udp_ep; /* where UDP last worked, for the probes */
	bool has_udp_ep;
};

struct slot {
	uint32_t id; /* 0 = free */
	struct sg_tls_conn *conn;
	struct tls_peer *owner; /* a client connection's peer; NULL on the listener's */
	bool queued;		/* has datagrams queued since the last tlsmgr_flush */
};

struct tlsmgr {
	struct evloop *loop;
	struct wg_device *dev;
	int timer_fd;
	struct evloop_source src_timer;
	bool timer_on;
	/* [Interface] settings */
	uint16_t listen_port;
	char *cert, *key, *ca, *crl;
	bool require_client_cert;
	/* Session tokens (docs/TLS.md, phase 2): the listener's key and whether it requires them;
	 * the client's token file, re-read when it changes (as the CRL). */
	char *session_key, *token_file;
	bool require_session_token;
	struct stat token_st;
	/* The CRL file as last read (TlsCRL): re-read when any of these changes. */
	struct stat crl_st;
	bool dirty; /* [Interface] TLS settings changed: rebuild listener and client context */
	/* built from them */
	struct sg_tls_ctx *srv, *cli;
	bool cli_fips, srv_fips;
	struct sg_tls_listener *listener;
	struct sg_tls_callbacks cbs;
	bool (*protect)(void *ctx, int fd);
	void *protect_ctx;
	struct tlsmgr_rx_hooks rx; /* rx NULL: wg_device_receive, copied into rxbuf */
	struct slot slots[SLOTS];
	uint32_t gen;
	struct tls_peer *peers;
	uint64_t probe_ns;
	uint64_t tx_dropped;
	struct sg_log_ratelimit rl;
	uint8_t rxbuf[TLS_FRAME_MAX];
	/* Ids of the connections with queued datagrams, for tlsmgr_flush. */
	uint32_t queued[SLOTS];
	unsigned nqueued;
};

/* ---- connection ids ----------------------------------------------------------------------- */

static uint32_t slot_alloc(struct tlsmgr *m, struct sg_tls_conn *conn, struct tls_peer *owner)
{
	for (uint32_t i = 0; i < SLOTS; i++) {
		struct slot *s = &m->slots[i];
		if (s->id)
			continue;
		m->gen = (m->gen + 1) & ((1u << (32 - SLOT_BITS)) - 1);
		s->id = (m->gen << SLOT_BITS) | (i + 1);
		s->conn = conn;
		s->owner = owner;
		sg_tls_conn_set_user(conn, s);
		return s->id;
	}
	return 0;
}

static struct slot *slot_find(struct tlsmgr *m, uint32_t id)
{
	uint32_t i = (id & ((1u << SLOT_BITS) - 1)) - 1;
	if (id == 0 || i >= SLOTS || m->slots[i].id != id)
		return NULL;
	return &m->slots[i];
}

static void slot_free(struct slot *s)
{
	memset(s, 0, sizeof(*s));
}

/* ---- peers -------------------------------------------------------------------------------- */

static struct tls_peer *tp_of(struct wg_peer *peer)
{
	return peer ? wg_peer_get_user(peer) : NULL;
}

static struct tls_peer *tp_get(struct tlsmgr *m, struct wg_peer *peer)
{
	struct tls_peer *tp = tp_of(peer);
	if (tp)
		return tp;
	tp = calloc(1, sizeof(*tp));
	if (!tp)
		return NULL;
	tp->m = m;
	tp->peer = peer;
	tp->next = m->peers;
	m->peers = tp;
	wg_peer_set_user(peer, tp);
	return tp;
}

static const char *peer_tag(char buf[SG_LOG_KEY_TAG_SIZE], const struct tls_peer *tp)
{
	return sg_log_key_tag(buf, wg_peer_public_key(tp->peer));
}

static void client_close(struct tls_peer *tp)
{
	if (!tp->conn)
		return;
	struct slot *s = slot_find(tp->m, tp->conn_id);
	if (s)
		slot_free(s);
	sg_tls_conn_close(tp->conn);
	tp->conn = NULL;
	tp->conn_id = 0;
}

/* The listener's connections admitted with a session token for key: closed (peer removed), or
 * only the one of slot s when another peer's handshake came over it. */
static unsigned close_token_conns(struct tlsmgr *m, const uint8_t key[WG_KEY_LEN])
{
	unsigned n = 0;

	for (uint32_t i = 0; i < SLOTS; i++) {
		struct slot *s = &m->slots[i];
		const struct tls_token_claims *tc = s->id && !s->owner ? sg_tls_conn_token(s->conn)
								      : NULL;
		if (tc && sg_memeq(tc->client_key, key, WG_KEY_LEN)) {
			sg_tls_conn_close(s->conn);
			slot_free(s);
			n++;
		}
	}
	return n;
}

void tlsmgr_forget_peer(struct tlsmgr *m, struct wg_peer *peer)
{
	struct tls_peer *tp = tp_of(peer), **pp;
	/* A session that ended removes the peer from hubs (docs/SERVER.md): its TLS connections
	 * go with it, not at the token's expiry. */
	if (m->require_session_token) {
		char tag[SG_LOG_KEY_TAG_SIZE];
		unsigned n = close_token_conns(m, wg_peer_public_key(peer));
		if (n)
			sg_log(SG_LOG_INFO, "tls_token_peer_removed", "peer=%s closed=%u",
			       sg_log_key_tag(tag, wg_peer_public_key(peer)), n);
	}
	if (!tp)
		return;
	client_close(tp);
	for (pp = &m->peers; *pp; pp = &(*pp)->next) {
		if (*pp == tp) {
			*pp = tp->next;
			break;
		}
	}
	wg_peer_set_user(peer, NULL);
	free(tp);
}

static void timer_update(struct tlsmgr *m)
{
	/* A CRL file and a token file are watched from the tick too. */
	bool want = (m->crl && (m->srv || m->cli)) || (m->token_file && m->cli);
	for (struct tls_peer *tp = m->peers; tp && !want; tp = tp->next)
		want = tp->mode != TR_UDP;
	if (want == m->timer_on)
		return;
	m->timer_on = want;
	if (evloop_timer_arm(m->timer_fd, want ? evloop_now_ns() + TICK_NS : UINT64_MAX) != 0)
		m->timer_on = false;
}

/* ---- connections -------------------------------------------------------------------------- */

static void switch_log(struct tls_peer *tp, const char *from, const char *to, const char *why)
{
	char tag[SG_LOG_KEY_TAG_SIZE];
	sg_log(SG_LOG_INFO, "transport_switch", "peer=%s from=%s to=%s reason=%s",
	       peer_tag(tag, tp), from, to, why);
}

static void on_message(void *user, struct sg_tls_conn *conn, uint8_t *msg, size_t len)
{
	struct tlsmgr *m = user;
	struct slot *s = sg_tls_conn_get_user(conn);
	struct wg_endpoint ep;

	if (!s || len > sizeof(m->rxbuf))
		return;
	memset(&ep, 0, sizeof(ep));
	ep.addr = *sg_tls_conn_peer(conn);
	ep.tls_conn = s->id;
	if (m->rx.rx) {
		m->rx.rx(m->rx.ctx, &ep, msg, len); /* in place, batched until on_rx_done */
		return;
	}
	memcpy(m->rxbuf, msg, len);
	wg_device_receive(m->dev, evloop_now_ns(), &ep, m->rxbuf, len);
}

static void on_rx_done(void *user, struct sg_tls_conn *conn)
{
	struct tlsmgr *m = user;
	(void)conn;
	if (m->rx.rx_done)
		m->rx.rx_done(m->rx.ctx);
}

void tlsmgr_set_rx(struct tlsmgr *m, const struct tlsmgr_rx_hooks *hooks)
{
	m->rx = *hooks;
	m->cbs.on_rx_done = hooks->rx_done ? on_rx_done : NULL;
}

static void client_up(struct tls_peer *tp, struct slot *s)
{
	struct wg_endpoint ep;
	uint64_t now = evloop_now_ns();

	tp->conn_id = s->id;
	tp->backoff_s = 0;
	if (!tp->on_tls)
		return;
	memset(&ep, 0, sizeof(ep));
	ep.addr = *sg_tls_conn_peer(s->conn);
	ep.tls_conn = s->id;
	wg_peer_set_endpoint(tp->peer, &ep);
	wg_peer_initiate(tp->peer, now);
	tp->probe_at = now + tp->m->probe_ns;
}

static void on_state(void *user, struct sg_tls_conn *conn, bool up, const char *reason)
{
	struct tlsmgr *m = user;
	struct slot *s = sg_tls_conn_get_user(conn);

	if (up) {
		/* Ours (a peer's client connection) or a client of our listener: give it an id. */
		struct tls_peer *owner = m->peers;
		while (owner && owner->conn != conn)
			owner = owner->next;
		if (!slot_alloc(m, conn, owner)) {
			if (owner) {
				owner->conn = NULL;
				owner->reconnect_at = evloop_now_ns() + NSEC;
			}
			sg_tls_conn_close(conn);
			return;
		}
		s = sg_tls_conn_get_user(conn);
		if (owner)
			client_up(owner, s);
		return;
	}
	/* Down: the connection is freed when we return. */
	struct tls_peer *tp = s ? s->owner : NULL;
	if (!tp) {
		/* A client connection that never came up has no slot; find its peer. */
		for (tp = m->peers; tp && tp->conn != conn; tp = tp->next)
			;
	}
	if (s)
		slot_free(s);
	if (!tp || tp->conn != conn)
		return;
	char tag[SG_LOG_KEY_TAG_SIZE];
	tp->conn = NULL;
	tp->conn_id = 0;
	tp->backoff_s = tp->backoff_s ? tp->backoff_s * 2 : 1;
	if (tp->backoff_s > TLSMGR_BACKOFF_MAX_SECS)
		tp->backoff_s = TLSMGR_BACKOFF_MAX_SECS;
	tp->reconnect_at = evloop_now_ns() + tp->backoff_s * NSEC;
	sg_log(SG_LOG_INFO, "tls_down", "peer=%s reason=\"%s\" reconnect_in=%us", peer_tag(tag, tp),
	       reason ? reason : "closed", tp->backoff_s);
}

static void client_connect(struct tls_peer *tp)
{
	struct tlsmgr *m = tp->m;
	char err[256], tag[SG_LOG_KEY_TAG_SIZE];
	uint64_t suppressed;

	if (tp->conn || !tp->has_ep || !m->cli)
		return;
	int ret = sg_tls_client_new(&tp->conn, m->loop, m->cli, &tp->ep,
				    tp->server_name[0] ? tp->server_name : NULL, &m->cbs, err,
				    sizeof(err));
	if (ret != 0) {
		tp->conn = NULL;
		tp->backoff_s = tp->backoff_s ? tp->backoff_s * 2 : 1;
		if (tp->backoff_s > TLSMGR_BACKOFF_MAX_SECS)
			tp->backoff_s = TLSMGR_BACKOFF_MAX_SECS;
		tp->reconnect_at = evloop_now_ns() + tp->backoff_s * NSEC;
		if (sg_log_ratelimit_allow(&m->rl, evloop_now_ns(), &suppressed))
			sg_log(SG_LOG_WARN, "tls_connect_failed", "peer=%s error=\"%s\"",
			       peer_tag(tag, tp), err);
		return;
	}
	tp->reconnect_at = 0;
}

static void switch_to_tls(struct tls_peer *tp, const char *why)
{
	struct wg_peer_stats st;

	wg_peer_get_stats(tp->peer, &st);
	if (st.has_endpoint && !st.endpoint.tls_conn) {
		tp->udp_ep = st.endpoint;
		tp->has_udp_ep = true;
	}
	tp->on_tls = true;
	tp->udp_attempts = 0;
	switch_log(tp, "udp", "tls", why);
	if (tp->conn_id) {
		struct slot *s = slot_find(tp->m, tp->conn_id);
		if (s)
			client_up(tp, s);
	} else {
		client_connect(tp);
	}
}

/* A watched file is the one last read: same inode, size and modification time (a new version
 * written by rename has a new inode; one written in place a new mtime). */
static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* TlsCRL changed on disk (a new CRL, written by rename as `secureguard cert crl` does): read it
 * into both contexts and end the connections it revokes. A file that does not load (half
 * written, wrong signer, expired) leaves the lists in use and is logged; it is tried again when
 * it changes next. */
static void crl_check(struct tlsmgr *m)
{
	struct stat st;
	char err[512] = "";
	unsigned ended = 0;
	int ret = 0;

	if (!m->crl || stat(m->crl, &st) != 0 || same_file(&st, &m->crl_st))
		return;
	m->crl_st = st;
	if (m->srv)
		ret = sg_tls_ctx_reload(m->srv, m->ca, m->crl, err, sizeof(err));
	if (ret == 0 && m->cli)
		ret = sg_tls_ctx_reload(m->cli, m->ca, m->crl, err, sizeof(err));
	if (ret != 0) {
		char q[600];

		sg_log(SG_LOG_ERROR, "tls_crl_not_loaded", "file=%s reason=%s (the lists in use stay)",
		       m->crl, sg_log_quote(q, sizeof(q), err));
		return;
	}
	ended = sg_tls_listener_recheck(m->listener);
	for (struct tls_peer *tp = m->peers; tp; tp = tp->next)
		if (tp->conn && sg_tls_conn_recheck(tp->conn))
			ended++;
	sg_log(SG_LOG_INFO, "tls_crl_loaded", "file=%s closed=%u", m->crl, ended);
}

/* TlsSessionToken: read into the client context when the file changed (force: whatever its
 * state). Connections that are up keep the token they were admitted with; the next ones use the
 * new one (the server closes a connection when its token expires, and the client reconnects). */
static void token_check(struct tlsmgr *m, bool force)
{
	struct stat st;
	uint8_t buf[TLS_TOKEN_MAX + 2];
	size_t n = 0;
	FILE *f;

	if (!m->token_file || !m->cli)
		return;
	if (stat(m->token_file, &st) != 0) {
		if (m->token_st.st_ino || force)
			sg_log(SG_LOG_WARN, "tls_token_not_loaded", "file=%s reason=\"%s\"",
			       m->token_file, strerror(errno));
		memset(&m->token_st, 0, sizeof(m->token_st));
		return;
	}
	if (!force && same_file(&st, &m->token_st))
		return;
	m->token_st = st;
	f = fopen(m->token_file, "re");
	if (f) {
		n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
	}
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	if (!f || n == 0 || n > TLS_TOKEN_MAX ||
	    sg_tls_ctx_set_session_token(m->cli, buf, n) != 0) {
		sg_log(SG_LOG_WARN, "tls_token_not_loaded", "file=%s reason=\"%s\"", m->token_file,
		       !f ? strerror(errno) : n == 0 ? "empty" : "longer than a session token");
	} else {
		sg_log(SG_LOG_INFO, "tls_token_loaded", "file=%s bytes=%zu", m->token_file, n);
	}
	sg_memzero(buf, sizeof(buf));
}

static void on_tick(void *ctx, uint32_t events)
{
	struct tlsmgr *m = ctx;
	uint64_t now = evloop_now_ns();

	evloop_timer_ack(m->timer_fd);
	crl_check(m);
	token_check(m, false);
	for (struct tls_peer *tp = m->peers; tp; tp = tp->next) {
		if (tp->mode == TR_UDP || !tp->on_tls)
			continue;
		if (!tp->conn && now >= tp->reconnect_at)
			client_connect(tp);
		/* auto: is UDP back? One initiation over UDP; an answer there moves the tunnel. */
		if (tp->mode == TR_AUTO && tp->conn_id && tp->has_udp_ep && now >= tp->probe_at) {
			tp->probe_at = now + m->probe_ns;
			(void)wg_peer_probe(tp->peer, &tp->udp_ep, now);
		}
	}
	if (m->timer_on && evloop_timer_arm(m->timer_fd, now + TICK_NS) != 0)
		m->timer_on = false;
}

/* A token binds its connection to one WireGuard key: a handshake of another peer over it (its
 * endpoint moved onto the connection) closes the connection before the answer goes out. */
static void token_bind_check(struct tlsmgr *m, const struct wg_event *ev)
{
	struct slot *s = slot_find(m, ev->endpoint->tls_conn);
	const struct tls_token_claims *tc = s && !s->owner ? sg_tls_conn_token(s->conn) : NULL;
	char tag[SG_LOG_KEY_TAG_SIZE], ttag[SG_LOG_KEY_TAG_SIZE];

	if (!tc || sg_memeq(tc->client_key, wg_peer_public_key(ev->peer), WG_KEY_LEN))
		return;
	sg_log(SG_LOG_WARN, "tls_refused",
	       "peer=%s reason=\"session token is for peer %s, the handshake came from peer %s\"",
	       sg_tls_conn_peer_str(s->conn), sg_log_key_tag(ttag, tc->client_key),
	       sg_log_key_tag(tag, wg_peer_public_key(ev->peer)));
	sg_tls_conn_close(s->conn);
	slot_free(s);
}

void tlsmgr_event(struct tlsmgr *m, const struct wg_event *ev)
{
	struct tls_peer *tp = tp_of(ev->peer);
	bool over_udp = ev->endpoint && !ev->endpoint->tls_conn;

	if (ev->peer && ev->endpoint && ev->endpoint->tls_conn &&
	    (ev->type == WG_EVENT_ENDPOINT_CHANGED || ev->type == WG_EVENT_HANDSHAKE_COMPLETE))
		token_bind_check(m, ev);

	if (!tp || tp->mode != TR_AUTO)
		return;
	if (ev->type == WG_EVENT_HANDSHAKE_INITIATED && over_udp && !tp->on_tls) {
		if (++tp->udp_attempts >= TLSMGR_UDP_ATTEMPTS && tp->has_ep)
			switch_to_tls(tp, "no_handshake_over_udp");
	} else if (ev->type == WG_EVENT_HANDSHAKE_COMPLETE && over_udp) {
		tp->udp_attempts = 0;
		tp->udp_ep = *ev->endpoint;
		tp->has_udp_ep = true;
		if (tp->on_tls) {
			tp->on_tls = false;
			client_close(tp);
			switch_log(tp, "tls", "udp", "udp_answers_again");
		}
	}
}

void tlsmgr_send(struct tlsmgr *m, const struct wg_endpoint *to, const uint8_t *buf, size_t len)
{
	struct slot *s = slot_find(m, to->tls_conn);
	if (!s) {
		m->tx_dropped++;
		return;
	}
	uint32_t id = s->id;
	/* Queued: whole records go now, the rest at the end of the loop turn (tlsmgr_flush). */
	if (sg_tls_conn_queue(s->conn, buf, len) != 0) {
		m->tx_dropped++;
		return;
	}
	if (slot_find(m, id) != s || s->queued)
		return; /* ended while writing, or already listed */
	if (m->nqueued == SLOTS) {
		/* Only when slots were reused within one turn: write this one now. */
		sg_tls_conn_flush(s->conn); /* an end is reported through on_state */
		return;
	}
	s->queued = true;
	m->queued[m->nqueued++] = id;
}

void tlsmgr_flush(struct tlsmgr *m)
{
	/* A flush may end a connection (its slot is freed, the id then finds nothing). */
	for (unsigned i = 0; i < m->nqueued; i++) {
		struct slot *s = slot_find(m, m->queued[i]);
		if (!s || !s->queued)
			continue;
		s->queued = false;
		sg_tls_conn_flush(s->conn); /* an end is reported through on_state */
	}
	m->nqueued = 0;
}

/* ---- configuration ------------------------------------------------------------------------ */

static int set_path(char **dst, const char *value, char *why, size_t whylen)
{
	char *copy = NULL;

	if (value[0]) {
		if (value[0] != '/') {
			snprintf(why, whylen, "not an absolute path");
			return -EINVAL;
		}
		if (strlen(value) > 4095) {
			snprintf(why, whylen, "path too long");
			return -EINVAL;
		}
		copy = strdup(value);
		if (!copy)
			return -ENOMEM;
	}
	free(*dst);
	*dst = copy;
	return 0;
}

static int parse_bool(bool *out, const char *value, char *why, size_t whylen)
{
	if (!strcmp(value, "true"))
		*out = true;
	else if (!strcmp(value, "false"))
		*out = false;
	else {
		snprintf(why, whylen, "value must be \"true\" or \"false\"");
		return -EINVAL;
	}
	return 0;
}

int tlsmgr_set(struct tlsmgr *m, struct wg_peer *peer, const char *key, const char *value,
	       char *why, size_t whylen)
{
	uint64_t num;
	int ret = 0;

	if (!peer) {
		if (!strcmp(key, "tls_listen_port")) {
			if (addr_parse_uint(value, strlen(value), 65535, &num) != 0) {
				snprintf(why, whylen, "not a port number");
				return -EINVAL;
			}
			m->listen_port = (uint16_t)num;
		} else if (!strcmp(key, "tls_certificate")) {
			ret = set_path(&m->cert, value, why, whylen);
		} else if (!strcmp(key, "tls_private_key")) {
			ret = set_path(&m->key, value, why, whylen);
		} else if (!strcmp(key, "tls_ca")) {
			ret = set_path(&m->ca, value, why, whylen);
		} else if (!strcmp(key, "tls_crl")) {
			ret = set_path(&m->crl, value, why, whylen);
		} else if (!strcmp(key, "tls_require_client_cert")) {
			ret = parse_bool(&m->require_client_cert, value, why, whylen);
		} else if (!strcmp(key, "tls_session_key")) {
			ret = set_path(&m->session_key, value, why, whylen);
		} else if (!strcmp(key, "tls_require_session_token")) {
			ret = parse_bool(&m->require_session_token, value, why, whylen);
		} else if (!strcmp(key, "tls_session_token")) {
			/* The client's token: read at the set's end, nothing rebuilt. */
			ret = set_path(&m->token_file, value, why, whylen);
			memset(&m->token_st, 0, sizeof(m->token_st));
			if (ret == 0 && !m->token_file && m->cli)
				ret = sg_tls_ctx_set_session_token(m->cli, NULL, 0);
			return ret;
		} else {
			snprintf(why, whylen, "invalid device key");
			return -EINVAL;
		}
		if (ret == 0)
			m->dirty = true;
		return ret;
	}
	struct tls_peer *tp = tp_get(m, peer);
	if (!tp)
		return -ENOMEM;
	if (!strcmp(key, "transport")) {
		enum transport t;
		if (!strcmp(value, "udp"))
			t = TR_UDP;
		else if (!strcmp(value, "tls"))
			t = TR_TLS;
		else if (!strcmp(value, "auto"))
			t = TR_AUTO;
		else {
			snprintf(why, whylen, "not udp, tls or auto");
			return -EINVAL;
		}
		if (t != tp->mode) {
			tp->mode = t;
			tp->on_tls = t == TR_TLS;
			tp->udp_attempts = 0;
			if (!tp->on_tls)
				client_close(tp);
		}
	} else if (!strcmp(key, "tls_endpoint")) {
		if (!value[0]) {
			tp->has_ep = false;
			client_close(tp);
		} else {
			struct wg_endpoint ep;
			char zone[ADDR_ZONE_MAX + 1];
			const char *w = "bad endpoint";
			if (addr_parse_endpoint(value, strlen(value), &ep, zone, &w) != 0 || zone[0]) {
				snprintf(why, whylen, "%s (an IP literal and a port)", w);
				return -EINVAL;
			}
			if (!tp->has_ep || memcmp(&tp->ep, &ep.addr, sizeof(ep.addr)))
				client_close(tp);
			tp->ep = ep.addr;
			tp->has_ep = true;
		}
	} else if (!strcmp(key, "tls_server_name")) {
		if (strlen(value) >= sizeof(tp->server_name)) {
			snprintf(why, whylen, "longer than %zu characters", sizeof(tp->server_name) - 1);
			return -EINVAL;
		}
		snprintf(tp->server_name, sizeof(tp->server_name), "%s", value);
	} else {
		snprintf(why, whylen, "invalid peer key");
		return -EINVAL;
	}
	tp->reconnect_at = 0;
	/* A peer's settings never restart the listener (its clients stay connected); the client
	 * context is made when the first peer needs it (tlsmgr_apply). */
	return 0;
}

void tlsmgr_get(struct tlsmgr *m, struct wg_peer *peer,
		void (*emit)(void *ectx, const char *key, const char *value), void *ectx)
{
	char buf[64];

	if (!peer) {
		if (m->listener) {
			snprintf(buf, sizeof(buf), "%u", (unsigned)sg_tls_listener_port(m->listener));
			emit(ectx, "tls_listen_port", buf);
		} else if (m->listen_port) {
			snprintf(buf, sizeof(buf), "%u", (unsigned)m->listen_port);
			emit(ectx, "tls_listen_port", buf);
		}
		if (m->cert)
			emit(ectx, "tls_certificate", m->cert);
		if (m->key)
			emit(ectx, "tls_private_key", m->key);
		if (m->ca)
			emit(ectx, "tls_ca", m->ca);
		if (m->crl)
			emit(ectx, "tls_crl", m->crl);
		if (m->require_client_cert)
			emit(ectx, "tls_require_client_cert", "true");
		if (m->session_key)
			emit(ectx, "tls_session_key", m->session_key);
		if (m->require_session_token)
			emit(ectx, "tls_require_session_token", "true");
		if (m->token_file)
			emit(ectx, "tls_session_token", m->token_file);
		return;
	}
	struct tls_peer *tp = tp_of(peer);
	if (!tp)
		return;
	if (tp->mode != TR_UDP)
		emit(ectx, "transport", transport_names[tp->mode]);
	if (tp->has_ep) {
		struct wg_endpoint ep = {.addr = tp->ep};
		char s[ADDR_ENDPOINT_STRLEN];
		if (addr_format_endpoint(s, sizeof(s), &ep, NULL) > 0)
			emit(ectx, "tls_endpoint", s);
	}
	if (tp->server_name[0])
		emit(ectx, "tls_server_name", tp->server_name);
	if (tp->mode != TR_UDP) {
		struct wg_peer_stats st;
		wg_peer_get_stats(peer, &st);
		emit(ectx, "transport_active",
		     st.has_endpoint && st.endpoint.tls_conn ? "tls" : "udp");
	}
}

static bool client_needed(const struct tlsmgr *m)
{
	for (const struct tls_peer *tp = m->peers; tp; tp = tp->next)
		if (tp->mode != TR_UDP && tp->has_ep)
			return true;
	return false;
}

/* (Re)builds the listener from the [Interface] settings. The new context is made first, so bad
 * certificate or key files leave the running listener as it was; only a failing bind of the
 * new port can leave none (the old one is closed to free its port). */
static int rebuild_server(struct tlsmgr *m, bool fips, char *why, size_t whylen)
{
	struct sg_tls_ctx *srv = NULL;
	char err[256] = "";
	int ret;

	if (m->listen_port) {
		struct sg_tls_config cfg = {.cert_file = m->cert,
					    .key_file = m->key,
					    .ca_file = m->ca,
					    .crl_file = m->crl,
					    .require_client_cert = m->require_client_cert,
					    .require_session_token = m->require_session_token,
					    .session_key_file = m->session_key,
					    .fips = fips};
		if (!m->cert || !m->key) {
			snprintf(why, whylen,
				 "tls_listen_port needs tls_certificate and tls_private_key");
			return -EINVAL;
		}
		if (m->require_client_cert && !m->ca) {
			snprintf(why, whylen, "tls_require_client_cert needs tls_ca");
			return -EINVAL;
		}
		if (m->require_session_token && !m->session_key) {
			snprintf(why, whylen, "tls_require_session_token needs tls_session_key");
			return -EINVAL;
		}
		ret = sg_tls_ctx_new(&srv, &cfg, SG_TLS_SERVER, err, sizeof(err));
		if (ret != 0) {
			snprintf(why, whylen, "%s", err);
			return -EINVAL;
		}
	}
	if (m->listener) {
		sg_tls_listener_free(m->listener);
		m->listener = NULL;
	}
	for (uint32_t i = 0; i < SLOTS; i++)
		if (m->slots[i].id && !m->slots[i].owner)
			slot_free(&m->slots[i]); /* freed with the listener */
	sg_tls_ctx_free(m->srv);
	m->srv = srv;
	if (!srv)
		return 0;
	union wg_sockaddr any;
	memset(&any, 0, sizeof(any));
	any.in6.sin6_family = AF_INET6;
	any.in6.sin6_port = htons(m->listen_port);
	ret = sg_tls_listener_new(&m->listener, m->loop, m->srv, &any, &m->cbs, err, sizeof(err));
	if (ret != 0) {
		snprintf(why, whylen, "%s", err);
		return ret < 0 && ret > -4096 ? ret : -EADDRINUSE;
	}
	m->srv_fips = fips; /* the listener logs event=tls_listening */
	return 0;
}

/* (Re)builds the client context (the interface's certificate as client certificate, its CA to
 * verify servers). Connections made with the old one are closed first and reconnect. */
static int rebuild_client(struct tlsmgr *m, bool fips, char *why, size_t whylen)
{
	struct sg_tls_config cfg = {.cert_file = m->cert,
				    .key_file = m->key,
				    .ca_file = m->ca,
				    .crl_file = m->crl,
				    .fips = fips};
	struct sg_tls_ctx *cli = NULL;
	char err[256] = "";

	if (!client_needed(m)) {
		for (struct tls_peer *tp = m->peers; tp; tp = tp->next)
			client_close(tp);
		sg_tls_ctx_free(m->cli);
		m->cli = NULL;
		return 0;
	}
	if (!m->ca) {
		snprintf(why, whylen, "transport tls/auto needs tls_ca to verify the peer's server "
				      "certificate");
		return -EINVAL;
	}
	if (sg_tls_ctx_new(&cli, &cfg, SG_TLS_CLIENT, err, sizeof(err)) != 0) {
		snprintf(why, whylen, "%s", err);
		return -EINVAL;
	}
	for (struct tls_peer *tp = m->peers; tp; tp = tp->next) {
		client_close(tp);
		tp->reconnect_at = 0;
	}
	sg_tls_ctx_free(m->cli);
	m->cli = cli;
	m->cli_fips = fips;
	token_check(m, true);
	return 0;
}

int tlsmgr_apply(struct tlsmgr *m, char *why, size_t whylen)
{
	bool fips = wg_device_get_crypto_mode(m->dev) == WG_CRYPTO_FIPS;
	int ret;

	/* CryptoMode = fips also restricts TLS to FIPS suites (docs/TLS.md). */
	if (m->dirty || (m->srv && m->srv_fips != fips)) {
		ret = rebuild_server(m, fips, why, whylen);
		if (ret != 0)
			return ret;
	}
	if (m->dirty || (m->cli && m->cli_fips != fips) || (!m->cli && client_needed(m))) {
		ret = rebuild_client(m, fips, why, whylen);
		if (ret != 0)
			return ret;
	}
	if (m->dirty && m->crl && stat(m->crl, &m->crl_st) != 0)
		memset(&m->crl_st, 0, sizeof(m->crl_st));
	if (m->token_file && !m->token_st.st_ino)
		token_check(m, true); /* set (again) by this request */
	m->dirty = false;
	for (struct tls_peer *tp = m->peers; tp; tp = tp->next)
		if (tp->on_tls && !tp->conn)
			client_connect(tp);
	timer_update(m);
	return 0;
}

/* ---- life ---------------------------------------------------------------------------------- */

static bool on_protect(void *user, int fd)
{
	struct tlsmgr *m = user;
	return m->protect(m->protect_ctx, fd);
}

void tlsmgr_set_protect(struct tlsmgr *m, bool (*fn)(void *ctx, int fd), void *ctx)
{
	m->protect = fn;
	m->protect_ctx = ctx;
	m->cbs.protect = fn ? on_protect : NULL;
}

int tlsmgr_new(struct tlsmgr **out, struct evloop *loop, struct wg_device *dev)
{
	struct tlsmgr *m = calloc(1, sizeof(*m));
	const char *env = getenv("SG_TLS_PROBE_SECS");
	uint64_t secs = TLSMGR_PROBE_SECS;
	int err;

	*out = NULL;
	if (!m)
		return -ENOMEM;
	m->loop = loop;
	m->dev = dev;
	m->cbs = (struct sg_tls_callbacks){.user = m, .on_message = on_message, .on_state = on_state};
	m->rl.rate = 1;
	m->rl.burst = 5;
	if (env && addr_parse_uint(env, strlen(env), 86400, &secs) == 0 && secs > 0)
		m->probe_ns = secs * NSEC;
	else
		m->probe_ns = TLSMGR_PROBE_SECS * NSEC;
	m->timer_fd = evloop_timer_new();
	if (m->timer_fd < 0) {
		err = m->timer_fd;
		free(m);
		return err;
	}
	err = evloop_add(loop, &m->src_timer, m->timer_fd, EPOLLIN, on_tick, m);
	if (err != 0) {
		close(m->timer_fd);
		free(m);
		return err;
	}
	*out = m;
	return 0;
}

void tlsmgr_free(struct tlsmgr *m)
{
	if (!m)
		return;
	while (m->peers)
		tlsmgr_forget_peer(m, m->peers->peer);
	if (m->listener)
		sg_tls_listener_free(m->listener);
	sg_tls_ctx_free(m->srv);
	sg_tls_ctx_free(m->cli);
	evloop_del(m->loop, &m->src_timer);
	close(m->timer_fd);
	free(m->cert);
	free(m->key);
	free(m->ca);
	free(m->crl);
	free(m->session_key);
	free(m->token_file);
	free(m);
}
