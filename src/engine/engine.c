/* The engine's event loop; see engine.h. */
#include "engine/engine.h"

#include <errno.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <secureguard/sg_errors.h>

#include "common/log.h"
#include "crypto/crypto.h"
#include "engine/cpool.h"
#include "engine/routing.h"
#include "engine/tlsmgr.h"
#include "engine/cpool.h"
#include "engine/routing.h"
#include "engine/tlsmgr.h"
#include "net/addr.h"
#include "net/ctlsock.h"
#include "net/evloop.h"
#include "net/icmp.h"
#include "net/netlink.h"
#include "net/offload.h"
#include "net/tun.h"
#include "net/uapi.h"
#include "net/udp.h"
#include "config/strbuf.h"
#include "wg/wg.h"

/* Work done per readiness event before going back to epoll, so one busy fd cannot starve the
 * others (epoll is level-triggered: the rest is picked up on the next turn). The bound is in
 * bytes, not reads: a TUN read or a UDP GRO buffer can hold 64 KiB, and a packet of the other
 * direction (an echo reply, a TCP ACK) waits for whatever the turn does before it. 128 KiB is
 * about a quarter of a millisecond of one core's sealing or opening here, and two 64 KiB TCP
 * super-packets. The turns' own cost (epoll_wait, a read of the priority queue, a sendmmsg)
 * is a third to a half more system calls per byte, and 0-25% more CPU per byte in single runs
 * of bench/lat_cost.sh (docs/DATAPATH.md). A received
 * batch (up to 32 GRO buffers, 2 MiB) that outlasts the budget is finished on later turns, in
 * order, before the socket is read again (docs/DATAPATH.md, "Latency under load"). */
#define TURN_BYTES (128u * 1024u)
#define TUN_BUDGET 256 /* reads per turn, for reads of small packets */
/* Largest TUN read: a virtio header and a 64 KiB (super-)packet. */
#define TUN_BUF TUN_READ_MAX
_Static_assert(TUN_VNET_HDR_LEN == OFFLOAD_VNET_HDR_LEN, "one virtio_net_hdr size");
/* The data path's batches (cpool.h): up to OPS_MAX packets are prepared, their AEAD work spread
 * over the crypto lanes, then completed in order. Outbound packets are written to a slot of
 * TX_SLOT bytes each (a 1420-byte MTU's datagram fits; a bigger one is sealed inline). */
#define OPS_MAX 256
#define TX_SLOT 2048
/* Ops per lane in a batch. With one lane a batch is one packet: prepared, sealed and sent while
 * its bytes are still in the L1 cache (batches of 256 on one lane, whose packets go through L2
 * three times, carried about a fifth less TCP in bench/throughput.sh: 3 noisy runs each). */
#define BATCH_PER_LANE 32
/* Handshake messages off the data path: initiations and responses (the ECDH work: ~0.4 ms per
 * side classic, ~5 ms FIPS) wait in a queue of HSQ_LEN and are processed for at most HSQ_BUDGET_NS
 * per loop turn (at least one message), between the data batches, so a flood of them slows
 * handshakes, not the tunnels that are up. A queue longer than HSQ_LEN / 8 puts the device under
 * load (the kernel module's threshold): the core then answers with cookie replies, which cost no
 * ECDH, and limits each source address. A full queue drops what arrives. */
#define HSQ_LEN	      1024
#define HSQ_MSG_MAX   256
#define HSQ_BUDGET_NS 1000000ull
/* UAPI clients served at once; more are refused (the socket is root's, so this only bounds a
 * misbehaving local tool). */
#define CTL_MAX_CONNS 64
#define CTL_INBUF     4096
/* Fallback checks of the interface and the socket file, in case netlink or inotify missed it. */
#define HOUSEKEEPING_NS (10ull * 1000000000ull)
/* Outbound packets an app writes (ENGINE_PACKETS) wait in a ring of PKTQ_LEN slots of the MTU
 * each: about half a megabyte at 1420 bytes; a full ring refuses more (SG_EFULL) until the loop
 * has sealed some, so a writer faster than the tunnel is held back instead of buffered. */
#define PKTQ_LEN 384

/* A function to run on the loop thread (engine_call). */
struct engine_callreq {
	struct engine_callreq *next;
	void (*fn)(struct engine *e, void *arg);
	void *arg;
	bool done;
};

struct engine;

struct ctl_conn {
	struct engine *d;
	struct ctl_conn *next;
	struct evloop_source src;
	int fd;
	struct uapi_conn *uapi;
	uint8_t in[CTL_INBUF];
	size_t in_off, in_len;
	bool eof;     /* the client shut down its sending side */
	bool eof_fed; /* ... and the engine was told */
	bool dead;    /* closed; freed after the loop turn */
	bool parked;  /* out of epoll while another connection holds the config lock */
	uint32_t events;
};

struct hsq_entry {
	struct wg_endpoint from;
	uint16_t len;
	uint8_t buf[HSQ_MSG_MAX];
};

struct engine {
	char ifname[IF_NAMESIZE];
	unsigned mtu;
	enum engine_packet_io io;
	struct engine_hooks hooks;
	unsigned lanes_wanted; /* 0: cpool_default_lanes */
	bool has_ctlsock, link_monitor;

	/* Work from other threads: guarded by mu, announced on wake_fd (an eventfd). */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool mu_ok;
	int wake_fd;
	struct evloop_source src_wake;
	struct engine_callreq *calls;
	const char *stop_pending; /* engine_stop's reason, until the loop takes it */
	bool running;		  /* engine_run is in its loop, on loop_thread */
	pthread_t loop_thread;
	/* ENGINE_PACKETS: the ring of written packets (slots of pktq_slot bytes). The loop seals
	 * slots [head, head + count) outside the lock; writers fill after them. */
	uint8_t *pktq;
	uint16_t *pktq_len;
	size_t pktq_slot, pktq_head, pktq_count;
	uint64_t pktq_queued, pktq_full;

	struct tun tun;
	struct udp_sock udp;
	struct udp_rx rx;
	struct udp_tx tx;
	struct ctlsock ctl;
	struct wg_device *dev;
	struct tlsmgr *tls; /* the TLS transport (docs/TLS.md) */
	struct routing *routing; /* sticky-source checks and route MTUs; NULL if unavailable */
	struct evloop *loop;
	int timer_fd, signal_fd, nl_fd, inotify_fd;
	struct linkmon_link link; /* where the TUN interface is, for the link monitor */
	bool nl_all_nsid;	  /* the monitor hears other namespaces (a moved interface) */
	struct evloop_source src_tun, src_tun_prio, src_udp, src_timer, src_signal, src_nl,
	    src_inotify, src_ctl;
	uint64_t armed_for; /* the core deadline the timerfd is armed for */
	bool timer_fired;
	/* The received batch (d->rx) being worked through: buffer rx_i at offset rx_off is next
	 * of rx_n; rx_i == rx_n when it is done. rx_last: it was a short batch (the socket
	 * was empty). */
	int rx_n, rx_i;
	size_t rx_off;
	bool rx_last;
	bool udp_ran;	     /* the receive work ran this turn */
	size_t turn_bytes;   /* TURN_BYTES, or what engine_opts asked */
	uint64_t rx_resumed; /* turns that went on with a batch an earlier turn left */
	uint8_t *tun_buf;
	uint8_t *seg_buf; /* one segment cut from a GSO read */
	uint8_t *gro_mem; /* the GRO table's flow buffers */
	struct offload_gro gro;
	bool gro_off; /* the kernel refused a coalesced write */
	struct cpool *pool;	 /* crypto lanes, started by engine_run */
	struct wg_crypt_op *ops; /* the batch being prepared (TX or RX, never both) */
	size_t nops;
	size_t batch_max; /* ops per batch: BATCH_PER_LANE per lane, at most OPS_MAX */
	uint8_t *tx_slots; /* OPS_MAX * TX_SLOT */
	struct hsq_entry *hsq; /* HSQ_LEN handshake messages waiting (a ring) */
	size_t hsq_head, hsq_count;
	bool offload; /* offloads allowed (no SG_DISABLE_OFFLOAD) */
	uint64_t tls_rx_now; /* the clock of the TLS receive batch being prepared; 0: none */

	struct ctl_conn *conns;
	unsigned nconns;
	struct ctl_conn *uapi_owner; /* connection in the middle of a set */
	bool wake_conns;

	bool link_up;
	bool stop;
	int exit_code;
	const char *stop_reason;
	uint64_t next_housekeeping;

	struct sg_log_ratelimit drop_rl, fail_rl, err_rl, loop_rl;
	/* ICMP errors written back into the TUN device (net/icmp.h), rate-limited as the kernel
	 * limits its own (icmp_msgs_per_sec 1000, burst 50). */
	struct sg_log_ratelimit icmp_rl;
	uint8_t icmp_buf[ICMP_ERR_MAX];
	struct {
		uint64_t icmp_sent, icmp_limited;
		uint64_t tun_rx, tun_tx, tun_tx_errors, tun_send_refused;
		uint64_t tun_rx_gso, tun_rx_malformed;
		uint64_t udp_rx, udp_rx_errors;
		uint64_t hs_queue_full;
		uint64_t ctl_accepted, ctl_refused;
	} stats;
	bool fips_strict; /* FipsStrict: FIPS keys only on an active FIPS provider */
};

static void request_stop(struct engine *d, const char *reason, int code)
{
	if (d->stop)
		return;
	d->stop = true;
	d->stop_reason = reason;
	d->exit_code = code;
}

/* ---- logging of core events ---------------------------------------------------------------- */

static void fmt_endpoint(char *buf, size_t size, const struct wg_endpoint *ep)
{
	if (!ep || addr_format_endpoint(buf, size, ep, NULL) < 0)
		snprintf(buf, size, "none");
}

/* One readable sentence per crypto-mode negotiation event (docs/PROTOCOL.md): an operator must
 * see why a peer does not come up, on both sides. The core limits per-peer events to one per
 * 10 s; those without a peer (unauthenticated sources) share the failure rate limit here. */
static void log_mode_event(struct engine *d, const struct wg_event *ev, const char *tag,
			   const char *ep)
{
	const char *r = ev->reason ? ev->reason : "";
	uint64_t suppressed = 0;
	char msg[320];

	if (ev->type == WG_EVENT_MODE_FALLBACK) {
		snprintf(msg, sizeof(msg),
			 "peer %s: FIPS handshake %s; falling back to classic, FIPS again in 600 s",
			 tag, !strcmp(r, "timeout") ? "timed out" : "was rejected");
		sg_log(SG_LOG_WARN, "crypto_fallback", "peer=%s endpoint=%s reason=%s msg=\"%s\"",
		       tag, ep, r, msg);
		return;
	}
	if (!ev->peer) {
		if (!sg_log_ratelimit_allow(&d->fail_rl, evloop_now_ns(), &suppressed))
			return;
		snprintf(msg, sizeof(msg), "%s handshake from %s refused: %s",
			 !strcmp(r, "no_fips_key") ? "FIPS" : "classic", ep,
			 !strcmp(r, "no_fips_key")
				 ? "this interface has no FipsPrivateKey, it allows classic only"
				 : "this interface has no PrivateKey, it allows FIPS only");
		sg_log(SG_LOG_ERROR, "crypto_mode_refused",
		       "endpoint=%s reason=%s suppressed=%llu msg=\"%s\"", ep, r,
		       (unsigned long long)suppressed, msg);
		return;
	}
	if (ev->type == WG_EVENT_MODE_REFUSED) {
		if (!strcmp(r, "peer_offered_classic_fips_required"))
			snprintf(msg, sizeof(msg),
				 "peer %s offered classic; CryptoMode = fips allows FIPS only", tag);
		else if (!strcmp(r, "peer_offered_fips_classic_only"))
			snprintf(msg, sizeof(msg),
				 "peer %s offered FIPS; CryptoMode = classic allows classic only", tag);
		else
			snprintf(msg, sizeof(msg), "peer %s speaks another protocol version", tag);
		sg_log(SG_LOG_ERROR, "crypto_mode_refused", "peer=%s endpoint=%s reason=%s msg=\"%s\"",
		       tag, ep, r, msg);
		return;
	}
	if (ev->type == WG_EVENT_MODE_UNUSABLE) {
		if (!strcmp(r, "fips_required_no_fips_keys"))
			snprintf(msg, sizeof(msg),
				 "peer %s: CryptoMode = fips but %s has no FIPS key", tag,
				 d->dev && wg_device_get_fips_public_key(d->dev, (uint8_t[49]){0})
					 ? "the peer"
					 : "this interface");
		else if (!strcmp(r, "classic_required_no_classic_keys"))
			snprintf(msg, sizeof(msg), "peer %s: CryptoMode = classic but a classic key "
						   "is missing on one side", tag);
		else
			snprintf(msg, sizeof(msg), "peer %s: no crypto mode with keys on both sides",
				 tag);
		sg_log(SG_LOG_ERROR, "crypto_mode_unusable", "peer=%s reason=%s msg=\"%s\"", tag, r,
		       msg);
		return;
	}
	/* WG_EVENT_MODE_REJECTED: the peer refused our handshake. */
	if (!strcmp(r, "peer_requires_fips"))
		snprintf(msg, sizeof(msg), "peer %s requires FIPS; this interface allows classic "
					   "only with it", tag);
	else if (!strcmp(r, "peer_requires_fips_switching"))
		snprintf(msg, sizeof(msg), "peer %s requires FIPS; switching to FIPS", tag);
	else if (!strcmp(r, "peer_has_no_fips") || !strcmp(r, "peer_allows_classic_only"))
		snprintf(msg, sizeof(msg), "peer %s allows classic only; our FIPS handshake was "
					   "refused", tag);
	else
		snprintf(msg, sizeof(msg), "peer %s refused our handshake (%s)", tag, r);
	sg_log(SG_LOG_ERROR, "crypto_mode_rejected", "peer=%s endpoint=%s reason=%s msg=\"%s\"",
	       tag, ep, r, msg);
}

static void log_event(struct engine *d, const struct wg_event *ev)
{
	char tag[SG_LOG_KEY_TAG_SIZE] = "none", ep[ADDR_ENDPOINT_STRLEN], reason[96];
	uint64_t suppressed = 0;

	if (d->tls)
		tlsmgr_event(d->tls, ev);
	if (ev->type == WG_EVENT_ENDPOINT_CHANGED || ev->type == WG_EVENT_SOURCE_CHANGED) {
		/* Does routing agree with the new source? Asked after this turn. */
		if (d->routing && ev->peer)
			routing_peer_changed(d->routing, ev->peer);
		if (ev->type == WG_EVENT_SOURCE_CHANGED)
			return;
	}
	/* Drops come at line rate under a flood: nothing to format unless they are logged. */
	if (ev->type == WG_EVENT_PACKET_DROPPED && !sg_log_enabled(SG_LOG_DEBUG))
		return;
	if (ev->peer)
		sg_log_key_tag(tag, wg_peer_public_key(ev->peer));
	fmt_endpoint(ep, sizeof(ep), ev->endpoint);
	sg_log_quote(reason, sizeof(reason), ev->reason ? ev->reason : "none");

	switch (ev->type) {
	case WG_EVENT_HANDSHAKE_INITIATED:
		sg_log(SG_LOG_DEBUG, "handshake_initiated", "peer=%s endpoint=%s reason=%s", tag,
		       ep, reason);
		break;
	case WG_EVENT_HANDSHAKE_COMPLETE: {
		struct wg_peer_stats ps;
		wg_peer_get_stats(ev->peer, &ps);
		sg_log(SG_LOG_INFO, "handshake_complete", "peer=%s endpoint=%s mode=%s", tag, ep,
		       ps.mode == SG_SUITE_FIPS ? "fips" : "classic");
		break;
	}
	case WG_EVENT_MODE_REFUSED:
	case WG_EVENT_MODE_REJECTED:
	case WG_EVENT_MODE_FALLBACK:
	case WG_EVENT_MODE_UNUSABLE:
		log_mode_event(d, ev, tag, ep);
		break;
	case WG_EVENT_HANDSHAKE_FAILED:
		/* Needs a valid mac1 (knowledge of our public key) but can still come in floods. */
		if (sg_log_enabled(SG_LOG_INFO) &&
		    sg_log_ratelimit_allow(&d->fail_rl, evloop_now_ns(), &suppressed))
			sg_log(SG_LOG_INFO, "handshake_failed",
			       "peer=%s endpoint=%s reason=%s suppressed=%llu", tag, ep, reason,
			       (unsigned long long)suppressed);
		break;
	case WG_EVENT_HANDSHAKE_GAVE_UP:
		sg_log(SG_LOG_INFO, "handshake_failed", "peer=%s endpoint=%s reason=gave_up", tag,
		       ep);
		break;
	case WG_EVENT_ENDPOINT_CHANGED:
		sg_log(SG_LOG_INFO, "endpoint_changed", "peer=%s endpoint=%s", tag, ep);
		break;
	case WG_EVENT_REKEY:
		sg_log(SG_LOG_INFO, "rekey", "peer=%s reason=%s", tag, reason);
		break;
	case WG_EVENT_KEYS_ZEROED:
		sg_log(SG_LOG_INFO, "keys_zeroed", "peer=%s", tag);
		break;
	case WG_EVENT_COOKIE_SENT:
		if (sg_log_enabled(SG_LOG_INFO) &&
		    sg_log_ratelimit_allow(&d->fail_rl, evloop_now_ns(), &suppressed))
			sg_log(SG_LOG_INFO, "cookie_sent", "endpoint=%s suppressed=%llu", ep,
			       (unsigned long long)suppressed);
		break;
	case WG_EVENT_COOKIE_RECEIVED:
		sg_log(SG_LOG_DEBUG, "cookie_received", "peer=%s", tag);
		break;
	case WG_EVENT_SOURCE_CHANGED: /* handled above */
		break;
	case WG_EVENT_PACKET_DROPPED:
		if (sg_log_enabled(SG_LOG_DEBUG) &&
		    sg_log_ratelimit_allow(&d->drop_rl, evloop_now_ns(), &suppressed))
			sg_log(SG_LOG_DEBUG, "packet_dropped",
			       "peer=%s endpoint=%s reason=%s suppressed=%llu", tag, ep, reason,
			       (unsigned long long)suppressed);
		break;
	}
}

static void on_event(void *ctx, const struct wg_event *ev)
{
	struct engine *d = ctx;
	log_event(d, ev);
	if (d->hooks.event)
		d->hooks.event(d->hooks.ctx, ev);
}

static void log_counters(struct engine *d, const char *event, const char *reason)
{
	struct wg_device_stats s;
	struct routing_stats rs;
	memset(&s, 0, sizeof(s));
	memset(&rs, 0, sizeof(rs));
	if (d->dev)
		wg_device_get_stats(d->dev, &s);
	if (d->routing)
		routing_get_stats(d->routing, &rs);
	sg_log(SG_LOG_INFO, event,
	       "%s%s%speers=%zu rx_datagrams=%llu rx_invalid=%llu rx_bad_mac=%llu "
	       "rx_handshake_fail=%llu "
	       "rx_rate_limited=%llu rx_cookie_sent=%llu rx_unknown_index=%llu "
	       "rx_decrypt_fail=%llu rx_replayed=%llu rx_bad_source=%llu rx_bad_inner=%llu "
	       "tx_no_route=%llu tx_no_endpoint=%llu udp_rx=%llu udp_rx_truncated=%llu "
	       "udp_rx_errors=%llu udp_tx=%llu udp_tx_failed=%llu tun_rx=%llu tun_tx=%llu "
	       "tun_tx_errors=%llu tun_rx_gso=%llu tun_rx_malformed=%llu udp_tx_gso=%llu "
	       "udp_rx_gro=%llu tun_tx_gro_merged=%llu udp_tx_stale_src=%llu "
	       "handshake_queue_full=%llu tx_loop=%llu rx_down=%llu icmp_sent=%llu "
	       "icmp_limited=%llu route_queries=%llu sticky_sources_dropped=%llu "
	       "sticky_sources_restored=%llu route_mtu_reloads=%llu route_errors=%llu "
	       "udp_rx_resumed=%llu",
	       reason ? "reason=" : "", reason ? reason : "", reason ? " " : "",
	       d->dev ? wg_device_peer_count(d->dev) : (size_t)0,
	       (unsigned long long)s.rx_datagrams, (unsigned long long)s.rx_invalid,
	       (unsigned long long)s.rx_bad_mac, (unsigned long long)s.rx_handshake_fail,
	       (unsigned long long)s.rx_rate_limited, (unsigned long long)s.rx_cookie_sent,
	       (unsigned long long)s.rx_unknown_index, (unsigned long long)s.rx_decrypt_fail,
	       (unsigned long long)s.rx_replayed, (unsigned long long)s.rx_bad_source,
	       (unsigned long long)s.rx_bad_inner, (unsigned long long)s.tx_no_route,
	       (unsigned long long)s.tx_no_endpoint, (unsigned long long)d->stats.udp_rx,
	       (unsigned long long)d->rx.truncated, (unsigned long long)d->stats.udp_rx_errors,
	       (unsigned long long)d->tx.sent, (unsigned long long)d->tx.failed,
	       (unsigned long long)d->stats.tun_rx, (unsigned long long)d->stats.tun_tx,
	       (unsigned long long)d->stats.tun_tx_errors, (unsigned long long)d->stats.tun_rx_gso,
	       (unsigned long long)d->stats.tun_rx_malformed, (unsigned long long)d->tx.gso_msgs,
	       (unsigned long long)d->rx.gro_msgs, (unsigned long long)d->gro.merged,
	       (unsigned long long)d->tx.stale_src, (unsigned long long)d->stats.hs_queue_full,
	       (unsigned long long)s.tx_loop, (unsigned long long)s.rx_down,
	       (unsigned long long)d->stats.icmp_sent, (unsigned long long)d->stats.icmp_limited,
	       (unsigned long long)rs.queries, (unsigned long long)rs.sources_dropped,
	       (unsigned long long)rs.sources_restored, (unsigned long long)rs.mtu_reloads,
	       (unsigned long long)rs.errors, (unsigned long long)d->rx_resumed);
}

void engine_log_stats(struct engine *d, const char *event)
{
	log_counters(d, event, NULL);
}

/* ---- upcalls from the core ---------------------------------------------------------------- */

static void io_send(void *ctx, struct wg_peer *peer, const struct wg_endpoint *to,
		    const uint8_t *buf, size_t len, uint8_t ttl)
{
	struct engine *d = ctx;
	if (to->tls_conn) {
		if (d->tls)
			tlsmgr_send(d->tls, to, buf, len);
		return;
	}
	udp_tx_queue(&d->udp, &d->tx, to, buf, len, ttl);
}

static void io_peer_removed(void *ctx, struct wg_peer *peer)
{
	struct engine *d = ctx;
	if (d->tls)
		tlsmgr_forget_peer(d->tls, peer);
	if (d->routing)
		routing_peer_removed(d->routing, peer);
}

static void tun_write_done(struct engine *d, int err)
{
	if (err == 0) {
		d->stats.tun_tx++;
		return;
	}
	d->stats.tun_tx_errors++;
	if (err == -EBADFD) {
		sg_log(SG_LOG_INFO, "tun_closed", "error=\"%s\"", strerror(-err));
		request_stop(d, "interface_gone", 0);
	}
}

/* What the GRO table lets go: a coalesced super-packet or a packet as it came. */
static void gro_emit(void *ctx, const uint8_t hdr[OFFLOAD_VNET_HDR_LEN], const uint8_t *pkt,
		     size_t len)
{
	struct engine *d = ctx;
	struct offload_vnet_hdr h;
	struct offload_tx tx;
	const char *why = "";
	const uint8_t *seg;
	size_t seg_len;

	int err = tun_write_vnet(&d->tun, hdr, pkt, len);
	offload_vnet_hdr_decode(&h, hdr);
	if (err != -EINVAL || h.gso_type == OFFLOAD_GSO_NONE) {
		tun_write_done(d, err);
		return;
	}
	/* The kernel refuses GSO writes: coalesce no more, and write this one's segments
	 * (tun_buf is free: reads are done and this runs from the receive path). */
	if (!d->gro_off)
		sg_log(SG_LOG_WARN, "tun_gro_disabled", "error=\"%s\"", strerror(-err));
	d->gro_off = true;
	memcpy(d->tun_buf, hdr, OFFLOAD_VNET_HDR_LEN);
	memcpy(d->tun_buf + OFFLOAD_VNET_HDR_LEN, pkt, len);
	if (offload_tx_parse(&tx, d->tun_buf, OFFLOAD_VNET_HDR_LEN + len, &why) != 0) {
		tun_write_done(d, err);
		return;
	}
	while (offload_tx_next(&tx, d->seg_buf, OFFLOAD_MAX_PKT, &seg, &seg_len) > 0)
		tun_write_done(d, tun_write(&d->tun, seg, seg_len));
}

static void io_deliver(void *ctx, struct wg_peer *peer, const uint8_t *pkt, size_t len)
{
	struct engine *d = ctx;
	if (d->io == ENGINE_PACKETS) {
		d->stats.tun_tx++;
		d->hooks.deliver(d->hooks.ctx, pkt, len);
		return;
	}
	/* With a virtio header, TCP segments of one flow are held and written as one packet at
	 * the end of the receive batch (gro_flush). */
	if (d->tun.vnet_hdr && !d->gro_off)
		offload_gro_add(&d->gro, pkt, len);
	else
		tun_write_done(d, tun_write(&d->tun, pkt, len));
}

static uint64_t io_realtime(void *ctx)
{
	return evloop_realtime_ns();
}

/* ---- UAPI host ---------------------------------------------------------------------------- */

static void on_udp(void *ctx, uint32_t events);

/* The app's "protect this socket" hook (Android: VpnService.protect, so the outer socket does
 * not loop back into the VPN), before the socket carries anything. */
static bool protect_socket(struct engine *d, int fd)
{
	if (!d->hooks.protect)
		return true;
	if (d->hooks.protect(d->hooks.ctx, fd))
		return true;
	sg_log(SG_LOG_ERROR, "protect_refused", "fd=%d msg=\"the app refused to protect an outer socket\"", fd);
	return false;
}

static int host_set_listen_port(void *ctx, uint16_t port)
{
	struct engine *d = ctx;
	struct udp_sock nu;
	const char *why = "";

	/* Same port: keep the socket (wireguard-go closes and reopens it to the same effect). */
	if (port != 0 && d->udp.fd >= 0 && port == d->udp.port)
		return 0;
	int err = udp_open(&nu, port, d->udp.fwmark, d->offload, &why);
	if (err == 0 && !protect_socket(d, nu.fd)) {
		udp_close(&nu);
		why = "protect";
		err = -EPERM;
	}
	if (err != 0) {
		sg_log(SG_LOG_WARN, "listen_port_failed", "port=%u step=%s error=\"%s\"", port, why,
		       strerror(-err));
		return err;
	}
	/* Datagrams queued for the old socket leave through it before it closes. */
	udp_tx_flush(&d->udp, &d->tx);
	evloop_del(d->loop, &d->src_udp);
	err = evloop_add(d->loop, &d->src_udp, nu.fd, EPOLLIN, on_udp, d);
	if (err != 0) {
		udp_close(&nu);
		/* Put the old one back; it was never closed. */
		if (evloop_add(d->loop, &d->src_udp, d->udp.fd, EPOLLIN, on_udp, d) != 0)
			request_stop(d, "epoll_failed", 1);
		return err;
	}
	udp_close(&d->udp);
	d->udp = nu;
	if (d->routing)
		routing_set_socket(d->routing, d->udp.fwmark, d->udp.port);
	sg_log(SG_LOG_INFO, "listen_port_changed", "port=%u family=%s gso=%s gro=%s", d->udp.port,
	       d->udp.family == AF_INET6 ? "dual" : "ipv4", d->udp.gso ? "on" : "off",
	       d->udp.gro ? "on" : "off");
	return 0;
}

static uint16_t host_listen_port(void *ctx)
{
	struct engine *d = ctx;
	return d->udp.fd >= 0 ? d->udp.port : 0;
}

static int host_set_fwmark(void *ctx, uint32_t mark)
{
	struct engine *d = ctx;
	if (mark == d->udp.fwmark)
		return 0;
	int err = udp_set_fwmark(&d->udp, mark);
	if (err == 0) {
		sg_log(SG_LOG_INFO, "fwmark_changed", "fwmark=%u", mark);
		if (d->routing)
			routing_set_socket(d->routing, d->udp.fwmark, d->udp.port);
	}
	return err;
}

static uint32_t host_fwmark(void *ctx)
{
	struct engine *d = ctx;
	return d->udp.fwmark;
}

static uint64_t host_now(void *ctx)
{
	return evloop_now_ns();
}

static uint32_t host_zone_index(void *ctx, const char *zone)
{
	return if_nametoindex(zone);
}

static bool host_zone_name(void *ctx, uint32_t index, char *name)
{
	return if_indextoname(index, name) != NULL;
}

/* ---- UAPI connections --------------------------------------------------------------------- */

static void conn_event(void *ctx, uint32_t events);
static void conn_pump(struct ctl_conn *c);

/* Input not fed yet may hold keys: wiped with the rest. */
static void conn_free(struct ctl_conn *c)
{
	uapi_conn_free(c->uapi);
	sg_memzero(c, sizeof(*c));
	free(c);
}

static void conn_close(struct ctl_conn *c)
{
	struct engine *d = c->d;
	if (c->dead)
		return;
	/* A client gone mid-set: finish it as at end of input (wireguard-go's scanner stops and
	 * the peer section is completed); the answer has nowhere to go. */
	if (uapi_conn_busy(c->uapi))
		uapi_conn_eof(c->uapi);
	if (c->src.active)
		evloop_del(d->loop, &c->src);
	close(c->fd);
	c->fd = -1;
	c->dead = true;
	d->nconns--;
	if (d->uapi_owner == c) {
		d->uapi_owner = NULL;
		d->wake_conns = true;
	}
}

static void conn_want(struct ctl_conn *c, uint32_t events)
{
	struct engine *d = c->d;
	if (c->parked) {
		if (evloop_add(d->loop, &c->src, c->fd, events, conn_event, c) != 0) {
			conn_close(c);
			return;
		}
		c->parked = false;
		c->events = events;
		return;
	}
	if (c->events == events)
		return;
	if (evloop_mod(d->loop, &c->src, events) != 0) {
		conn_close(c);
		return;
	}
	c->events = events;
}

/* Waiting for another connection's set to finish: out of epoll, so a client that hangs up
 * meanwhile does not make us spin on EPOLLHUP. */
static void conn_park(struct ctl_conn *c)
{
	if (c->parked)
		return;
	evloop_del(c->d->loop, &c->src);
	c->parked = true;
}

/* Moves bytes between the socket buffers and the engine until one side has to wait. */
static void conn_pump(struct ctl_conn *c)
{
	struct engine *d = c->d;

	while (!c->dead) {
		size_t olen;
		const uint8_t *out = uapi_conn_output(c->uapi, &olen);
		if (olen > 0) {
			ssize_t n = send(c->fd, out, olen, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n > 0) {
				uapi_conn_output_consumed(c->uapi, (size_t)n);
				continue;
			}
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				conn_want(c, EPOLLOUT);
				return;
			}
			conn_close(c);
			return;
		}
		/* A get is written out (it holds the lock while it streams, uapi.h). */
		if (d->uapi_owner == c && !uapi_conn_busy(c->uapi)) {
			d->uapi_owner = NULL;
			d->wake_conns = true;
		}
		if (uapi_conn_want_close(c->uapi)) {
			conn_close(c);
			return;
		}
		if (d->uapi_owner && d->uapi_owner != c) {
			conn_park(c);
			return;
		}
		if (c->in_off < c->in_len) {
			size_t used =
			    uapi_conn_input(c->uapi, c->in + c->in_off, c->in_len - c->in_off);
			c->in_off += used;
			/* The bytes may be a private or preshared key line: wipe them once fed. */
			if (c->in_off == c->in_len) {
				sg_memzero(c->in, c->in_len);
				c->in_off = c->in_len = 0;
			}
		} else if (c->eof && !c->eof_fed) {
			uapi_conn_eof(c->uapi);
			c->eof_fed = true;
		} else {
			conn_want(c, EPOLLIN);
			return;
		}
		if (uapi_conn_busy(c->uapi)) {
			d->uapi_owner = c;
		} else if (d->uapi_owner == c) {
			d->uapi_owner = NULL;
			d->wake_conns = true;
		}
	}
}

static void conn_event(void *ctx, uint32_t events)
{
	struct ctl_conn *c = ctx;

	if (events & EPOLLERR) {
		conn_close(c);
		return;
	}
	if ((events & (EPOLLIN | EPOLLHUP)) && c->in_off == c->in_len && !c->eof) {
		ssize_t n = recv(c->fd, c->in, sizeof(c->in), MSG_DONTWAIT);
		if (n > 0) {
			c->in_off = 0;
			c->in_len = (size_t)n;
		} else if (n == 0) {
			c->eof = true;
		} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			conn_close(c);
			return;
		}
	}
	conn_pump(c);
}

static int host_transport_set(void *ctx, struct wg_peer *peer, const char *key,
			      const char *value, char *why, size_t whylen)
{
	struct engine *d = ctx;
	return tlsmgr_set(d->tls, peer, key, value, why, whylen);
}

static void host_transport_get(void *ctx, struct wg_peer *peer,
			       void (*emit)(void *ectx, const char *key, const char *value),
			       void *ectx)
{
	struct engine *d = ctx;
	tlsmgr_get(d->tls, peer, emit, ectx);
}

static int host_set_done(void *ctx, char *why, size_t whylen)
{
	struct engine *d = ctx;
	return tlsmgr_apply(d->tls, why, whylen);
}

static const struct uapi_host *uapi_host_for(struct engine *d, struct uapi_host *h)
{
	memset(h, 0, sizeof(*h));
	h->ctx = d;
	h->set_listen_port = host_set_listen_port;
	h->listen_port = host_listen_port;
	h->set_fwmark = host_set_fwmark;
	h->fwmark = host_fwmark;
	h->now = host_now;
	h->zone_index = host_zone_index;
	h->zone_name = host_zone_name;
	h->fips_strict = &d->fips_strict;
	h->transport_set = host_transport_set;
	h->transport_get = host_transport_get;
	h->set_done = host_set_done;
	return h;
}

static void on_ctl(void *ctx, uint32_t events)
{
	struct engine *d = ctx;
	struct uapi_host host;

	for (int i = 0; i < 16; i++) {
		int fd = ctlsock_accept(&d->ctl);
		if (fd == -EAGAIN)
			return;
		if (fd < 0) {
			uint64_t suppressed;
			if (sg_log_ratelimit_allow(&d->err_rl, evloop_now_ns(), &suppressed))
				sg_log(SG_LOG_WARN, "uapi_accept_failed", "error=\"%s\"",
				       strerror(-fd));
			return;
		}
		struct ctl_conn *c = NULL;
		if (d->nconns < CTL_MAX_CONNS)
			c = calloc(1, sizeof(*c));
		if (c)
			c->uapi = uapi_conn_new(d->dev, uapi_host_for(d, &host));
		if (!c || !c->uapi) {
			free(c);
			close(fd);
			d->stats.ctl_refused++;
			uint64_t suppressed;
			if (sg_log_ratelimit_allow(&d->err_rl, evloop_now_ns(), &suppressed))
				sg_log(SG_LOG_WARN, "uapi_refused", "connections=%u", d->nconns);
			continue;
		}
		c->d = d;
		c->fd = fd;
		if (evloop_add(d->loop, &c->src, fd, EPOLLIN, conn_event, c) != 0) {
			uapi_conn_free(c->uapi);
			close(fd);
			free(c);
			continue;
		}
		c->events = EPOLLIN;
		c->next = d->conns;
		d->conns = c;
		d->nconns++;
		d->stats.ctl_accepted++;
	}
}

/* After a loop turn: give parked connections their turn once the lock is free, then free the
 * closed ones (their sources may have been in the batch just dispatched). */
static void conns_after_turn(struct engine *d)
{
	while (d->wake_conns && !d->uapi_owner) {
		d->wake_conns = false;
		for (struct ctl_conn *c = d->conns; c; c = c->next)
			if (!c->dead && c->parked && !d->uapi_owner)
				conn_pump(c);
	}
	struct ctl_conn **pp = &d->conns;
	while (*pp) {
		struct ctl_conn *c = *pp;
		if (c->dead) {
			*pp = c->next;
			conn_free(c);
		} else {
			pp = &c->next;
		}
	}
}

/* ---- data path ---------------------------------------------------------------------------- */

/* The AEAD step of the batch on every lane, then the sends in the order the packets came. */
static void tx_flush(struct engine *d, uint64_t now)
{
	if (!d->nops)
		return;
	cpool_run(d->pool, d->ops, d->nops);
	for (size_t i = 0; i < d->nops; i++)
		wg_device_send_complete(d->dev, now, &d->ops[i]);
	d->nops = 0;
}

static void rx_flush(struct engine *d, uint64_t now)
{
	if (!d->nops)
		return;
	cpool_run(d->pool, d->ops, d->nops);
	for (size_t i = 0; i < d->nops; i++)
		wg_device_receive_complete(d->dev, now, &d->ops[i]);
	d->nops = 0;
}

/* The kernel module's answer to a packet no peer can take (icmp.h): host unreachable, written
 * back into the TUN device, within the rate limit. */
static void icmp_unreachable(struct engine *d, uint64_t now, const uint8_t *pkt, size_t len)
{
	size_t n = icmp_unreach_build(d->icmp_buf, sizeof(d->icmp_buf), pkt, len);
	if (!n)
		return;
	if (!sg_log_ratelimit_allow(&d->icmp_rl, now, NULL)) {
		d->stats.icmp_limited++;
		return;
	}
	if (d->io == ENGINE_PACKETS) {
		d->hooks.deliver(d->hooks.ctx, d->icmp_buf, n);
		d->stats.icmp_sent++;
		return;
	}
	int err = tun_write(&d->tun, d->icmp_buf, n);
	if (err == 0)
		d->stats.icmp_sent++;
	else
		tun_write_done(d, err);
}

/* A nested datagram that ran out of TTL: a routing loop, worth an operator's attention (once
 * in a while: a loop comes at line rate until its packets die). */
static void loop_dropped(struct engine *d, uint64_t now)
{
	uint64_t suppressed;
	if (sg_log_ratelimit_allow(&d->loop_rl, now, &suppressed))
		sg_log(SG_LOG_WARN, "routing_loop",
		       "msg=\"a WireGuard datagram that came back through tunnels until its TTL "
		       "ran out (at most %d encapsulations) was dropped: an endpoint is routed "
		       "through a tunnel that leads back here\" suppressed=%llu",
		       WG_NESTED_TTL_MAX / WG_NESTED_TTL_STEP + 1, (unsigned long long)suppressed);
}

/* One packet for the core; a refusal (no route / not IP / a loop) is counted by the core too
 * (tx_no_route ...). */
static void tun_packet(struct engine *d, uint64_t now, const uint8_t *pkt, size_t len)
{
	d->stats.tun_rx++;
	/* A packet too big for a slot is sealed and sent inline by the prepare: the batch before
	 * it goes first, so a peer's packets keep their order. */
	if (d->nops == d->batch_max || len + WG_DATA_OVERHEAD + 15 > TX_SLOT)
		tx_flush(d, now);
	int r = wg_device_send_prepare(d->dev, now, pkt, len, d->tx_slots + d->nops * TX_SLOT,
				       TX_SLOT, &d->ops[d->nops]);
	if (r == 1) {
		d->nops++;
		return;
	}
	if (r == 0)
		return;
	d->stats.tun_send_refused++;
	if (r == SG_ENOROUTE)
		icmp_unreachable(d, now, pkt, len);
	else if (r == SG_ELOOP)
		loop_dropped(d, now);
}

/* A read with a virtio header: a plain packet (its partial checksum completed) or a GSO
 * super-packet, cut into MTU-sized segments here as a NIC would. */
static void tun_frame(struct engine *d, uint64_t now, uint8_t *frame, size_t len)
{
	struct offload_tx tx;
	const char *why = "";
	const uint8_t *seg;
	size_t seg_len;
	int r;

	if (offload_tx_parse(&tx, frame, len, &why) != 0) {
		uint64_t suppressed;
		d->stats.tun_rx_malformed++;
		if (sg_log_ratelimit_allow(&d->err_rl, evloop_now_ns(), &suppressed))
			sg_log(SG_LOG_WARN, "tun_read_malformed",
			       "length=%zu error=\"%s\" suppressed=%llu", len, why,
			       (unsigned long long)suppressed);
		return;
	}
	if (tx.gso)
		d->stats.tun_rx_gso++;
	/* Segments are cut straight into the next op's slot, after room for the data header, so
	 * the core does not copy them again (a segment that could not fit goes via seg_buf). */
	bool in_slot = tx.seg_max + WG_DATA_OVERHEAD + 16 <= TX_SLOT;
	for (;;) {
		if (d->nops == d->batch_max)
			tx_flush(d, now);
		uint8_t *dst = in_slot ? d->tx_slots + d->nops * TX_SLOT + WG_DATA_HEADER_LEN
				       : d->seg_buf;
		size_t cap = in_slot ? TX_SLOT - WG_DATA_OVERHEAD - 16 : OFFLOAD_MAX_PKT;
		if ((r = offload_tx_next(&tx, dst, cap, &seg, &seg_len)) <= 0)
			break;
		tun_packet(d, now, seg, seg_len);
	}
}

/* Reads the priority queue (tun.h) or the bulk one, for at most the turn's budget. */
static void tun_read_some(struct engine *d, uint64_t now, bool prio)
{
	size_t bytes = 0;
	for (int i = 0; i < TUN_BUDGET && bytes < d->turn_bytes && !d->stop; i++) {
		ssize_t n = prio ? tun_read_prio(&d->tun, d->tun_buf, TUN_BUF)
				 : tun_read(&d->tun, d->tun_buf, TUN_BUF);
		if (n == -EAGAIN)
			return;
		if (n < 0) {
			/* EBADFD: the interface was deleted under us; EIO: the device is gone. */
			if (n == -EBADFD || n == -EIO) {
				sg_log(SG_LOG_INFO, "tun_closed", "error=\"%s\"",
				       strerror((int)-n));
				request_stop(d, "interface_gone", 0);
			} else {
				sg_log(SG_LOG_ERROR, "tun_read_failed", "error=\"%s\"",
				       strerror((int)-n));
				request_stop(d, "tun_error", 1);
			}
			return;
		}
		if (n == 0)
			continue;
		bytes += (size_t)n;
		if (d->tun.vnet_hdr)
			tun_frame(d, now, d->tun_buf, (size_t)n);
		else
			tun_packet(d, now, d->tun_buf, (size_t)n);
	}
}

/* What the core queued for sending leaves now, in one sendmmsg (and over TLS in as few records
 * as it fills). */
static void send_queued(struct engine *d)
{
	udp_tx_flush(&d->udp, &d->tx);
	if (d->tls)
		tlsmgr_flush(d->tls);
}

/* The TUN device's packets: the priority queue's (ICMP, DNS, pure ACKs), then up to a budget
 * of the bulk queue's, sealed and sent before the receive work of the turn. */
static void on_tun(void *ctx, uint32_t events)
{
	struct engine *d = ctx;
	uint64_t now = evloop_now_ns();

	if (d->tun.prio_fd >= 0)
		tun_read_some(d, now, true);
	tun_read_some(d, now, false);
	tx_flush(d, now);
	send_queued(d);
}

static void on_tun_prio(void *ctx, uint32_t events)
{
	struct engine *d = ctx;
	uint64_t now = evloop_now_ns();

	tun_read_some(d, now, true);
	tx_flush(d, now);
	send_queued(d);
}

/* A handshake message that needs the Noise work (well formed, mac1 valid, and mac2 too when
 * under load) goes to the queue (true). Anything else is cheap and the caller's to pass on at
 * once: garbage, a bad mac1 and, under load, a message without a valid mac2 (a cookie reply) are
 * dealt with inline, so a spoofed flood, which never holds a cookie, cannot take queue places
 * from real initiators. */
static bool hsq_take(struct engine *d, uint64_t now, const struct wg_endpoint *from,
		     const uint8_t *buf, size_t len)
{
	if (len > HSQ_MSG_MAX || !wg_device_handshake_costly(d->dev, now, from, buf, len))
		return false;
	if (d->hsq_count == HSQ_LEN) {
		d->stats.hs_queue_full++;
		return true;
	}
	struct hsq_entry *e = &d->hsq[(d->hsq_head + d->hsq_count++) % HSQ_LEN];
	e->from = *from;
	e->len = (uint16_t)len;
	memcpy(e->buf, buf, len);
	/* From now on, what lacks a cookie gets one instead of a place. */
	if (d->hsq_count > HSQ_LEN / 8)
		wg_device_force_under_load(d->dev, true);
	return true;
}

/* Handshake messages for one loop turn's budget; the load signal for the core's cookies. */
static void hsq_run(struct engine *d)
{
	if (!d->hsq_count)
		return;
	uint64_t start = evloop_now_ns(), now = start;
	wg_device_force_under_load(d->dev, d->hsq_count > HSQ_LEN / 8);
	do {
		struct hsq_entry *e = &d->hsq[d->hsq_head];
		d->hsq_head = (d->hsq_head + 1) % HSQ_LEN;
		d->hsq_count--;
		wg_device_receive(d->dev, now, &e->from, e->buf, e->len);
		now = evloop_now_ns();
	} while (d->hsq_count && now - start < HSQ_BUDGET_NS && !d->stop);
	if (!d->hsq_count)
		wg_device_force_under_load(d->dev, false); /* the core keeps it for a second more */
}

/* Receives and works through datagrams for at most the turn's budget of bytes. A batch that
 * outlasts it stays in d->rx and is finished first on the next turns (udp_pending), so each
 * peer's datagrams keep their order and the socket is not read again before. */
static void udp_work(struct engine *d)
{
	size_t bytes = 0;

	d->udp_ran = true;
	if (d->rx_i < d->rx_n)
		d->rx_resumed++;
	while (!d->stop && bytes < d->turn_bytes) {
		if (d->rx_i == d->rx_n) {
			if (d->rx_last)
				break; /* the last batch was short: the socket was empty */
			int n = udp_recv_batch(&d->udp, &d->rx);
			if (n < 0) {
				uint64_t suppressed;
				d->stats.udp_rx_errors++;
				if (sg_log_ratelimit_allow(&d->err_rl, evloop_now_ns(), &suppressed))
					sg_log(SG_LOG_DEBUG, "udp_recv_failed", "error=\"%s\"",
					       strerror(-n));
				break;
			}
			d->rx_n = n;
			d->rx_i = 0;
			d->rx_off = 0;
			d->rx_last = n < UDP_BATCH;
			if (n == 0)
				break;
		}
		uint64_t now = evloop_now_ns();
		while (d->rx_i < d->rx_n && bytes < d->turn_bytes) {
			int i = d->rx_i;
			size_t len = d->rx.msgs[i].msg_len, seg = d->rx.seg_size[i];
			uint8_t *buf = udp_rx_buf(&d->rx, i);
			/* One datagram, or several the kernel coalesced (UDP GRO). */
			if (d->rx_off < len) {
				size_t off = d->rx_off, dlen = SG_MIN(seg, len - off);
				d->rx_off += dlen;
				bytes += dlen;
				d->stats.udp_rx++;
				if (!hsq_take(d, now, &d->rx.from[i], buf + off, dlen)) {
					if (d->nops == d->batch_max)
						rx_flush(d, now);
					if (wg_device_receive_prepare(d->dev, now, &d->rx.from[i],
								      buf + off, dlen,
								      &d->ops[d->nops]) == 1)
						d->nops++;
				}
			}
			if (d->rx_off >= len) {
				d->rx_i++;
				d->rx_off = 0;
			}
		}
		/* Before the buffers the ops decrypt in are received into again or the turn ends. */
		rx_flush(d, now);
		offload_gro_flush(&d->gro);
	}
}

/* Datagrams over TLS (tlsmgr_set_rx): as those of a recvmmsg, each is prepared in place in the
 * connection's receive buffer, and the batch is opened on the crypto lanes when the connection
 * is done with its read (tls_rx_done), before that buffer is reused. Handshake messages go to the
 * handshake queue as over UDP. */
static void tls_rx(void *ctx, const struct wg_endpoint *from, uint8_t *buf, size_t len)
{
	struct engine *d = ctx;
	if (!d->tls_rx_now)
		d->tls_rx_now = evloop_now_ns();
	uint64_t now = d->tls_rx_now;
	if (hsq_take(d, now, from, buf, len))
		return;
	if (d->nops == d->batch_max)
		rx_flush(d, now);
	if (wg_device_receive_prepare(d->dev, now, from, buf, len, &d->ops[d->nops]) == 1)
		d->nops++;
}

static void tls_rx_done(void *ctx)
{
	struct engine *d = ctx;
	rx_flush(d, d->tls_rx_now); /* the TUN writes: offload_gro_flush at the turn's end */
	d->tls_rx_now = 0;
}

/* A batch is left over from an earlier turn (the socket may have nothing new to wake us). */
static bool udp_pending(const struct engine *d)
{
	return d->rx_i < d->rx_n;
}

static void on_udp(void *ctx, uint32_t events)
{
	struct engine *d = ctx;
	/* Readable again: a short batch no longer means the socket is empty. */
	d->rx_last = false;
	udp_work(d);
}

static void on_timer(void *ctx, uint32_t events)
{
	struct engine *d = ctx;
	evloop_timer_ack(d->timer_fd);
	d->timer_fired = true; /* one-shot: re-arm whatever the next deadline is */
	wg_device_tick(d->dev, evloop_now_ns());
}

static void rearm_timer(struct engine *d)
{
	uint64_t deadline = wg_device_next_deadline(d->dev);
	if (deadline == d->armed_for && !d->timer_fired)
		return;
	uint64_t at = deadline;
	/* A deadline a tick just left in the past would make us spin: give it a millisecond. */
	if (d->timer_fired && deadline != UINT64_MAX) {
		uint64_t now = evloop_now_ns();
		if (deadline <= now)
			at = now + 1000000;
	}
	int err = evloop_timer_arm(d->timer_fd, at);
	if (err != 0) {
		sg_log(SG_LOG_ERROR, "timer_failed", "error=\"%s\"", strerror(-err));
		request_stop(d, "timer_error", 1);
		return;
	}
	d->armed_for = deadline;
	d->timer_fired = false;
}

/* ---- lifecycle events --------------------------------------------------------------------- */

static void on_signal(void *ctx, uint32_t events)
{
	struct engine *d = ctx;
	struct signalfd_siginfo si;

	while (read(d->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGUSR1) {
			engine_log_stats(d, "stats");
			continue;
		}
		/* With a log file (secureguardd --log-file), SIGHUP is logrotate's: reopen it.
		 * Otherwise it stops the daemon, as it does wireguard-go. */
		if (si.ssi_signo == SIGHUP && sg_log_get_target() == SG_LOG_TO_FILE) {
			sg_log_reopen_request();
			sg_log(SG_LOG_INFO, "log_reopened", "signal=SIGHUP");
			continue;
		}
		sg_log(SG_LOG_INFO, "signal", "signal=%s", strsignal((int)si.ssi_signo));
		request_stop(d, "signal", 0);
	}
}

/* Asked of the TUN fd, not of the index: a link moved to another network namespace is gone
 * from ours (RTM_DELLINK, no such index) but still ours to use (see tun_attached). */
static bool interface_exists(const struct engine *d)
{
	return tun_attached(&d->tun);
}

/* The core follows the interface's state as the kernel module follows its net_device's: down
 * drops every session and sends nothing, up sends at once (wg_device_set_up). Called between
 * callbacks, so no op of the split data path is in flight. */
static void set_link_up(struct engine *d, bool up, const char *why)
{
	if (up == d->link_up && wg_device_is_up(d->dev) == up)
		return;
	d->link_up = up;
	wg_device_set_up(d->dev, up, evloop_now_ns());
	sg_log(SG_LOG_INFO, up ? "link_up" : "link_down", "reason=%s", why);
}

/* The state as the kernel has it now (after lost notifications, and at start). Unknown: up, so
 * a daemon that cannot tell still sends (as before it followed the state at all). */
static void read_link_state(struct engine *d, const char *why)
{
	int up = tun_is_up(&d->tun);
	if (up < 0)
		sg_log(SG_LOG_WARN, "link_state_unknown", "error=\"%s\"", strerror(-up));
	set_link_up(d, up != 0, why);
}

static void on_netlink(void *ctx, uint32_t events)
{
	struct engine *d = ctx;
	struct linkmon_event ev;
	memset(&ev, 0, sizeof(ev));
	int err = linkmon_read(d->nl_fd, &d->link, &ev);
	if (err == -ENOBUFS) {
		/* Notifications were lost: look at everything again. */
		ev.routing_changed = ev.own_routes_changed = true;
		if (!interface_exists(d))
			ev.deleted = true;
	}
	if (d->routing)
		routing_changed(d->routing, ev.routing_changed, ev.own_routes_changed);
	if (ev.deleted && !interface_exists(d)) {
		sg_log(SG_LOG_INFO, "link_deleted", "ifindex=%d", d->tun.ifindex);
		request_stop(d, "interface_deleted", 0);
		return;
	}
	if (ev.deleted && ev.moved && d->nl_all_nsid) {
		/* Moved to another namespace, where it keeps working, as with wireguard-go; its
		 * messages now come with that namespace's id (netlink.h). The kernel brings a
		 * moved link down, and routes through it here are gone. */
		d->link.nsid = ev.new_nsid;
		d->link.ifindex = ev.new_ifindex;
		sg_log(SG_LOG_INFO, "link_moved", "nsid=%d ifindex=%d", ev.new_nsid, ev.new_ifindex);
		if (d->routing)
			routing_set_ifindex(d->routing, 0);
		set_link_up(d, false, "moved");
		return;
	}
	if (ev.deleted) {
		/* Moved where this socket cannot follow (no NETLINK_LISTEN_ALL_NSID, or on from
		 * a namespace it moved to before). Its index here may go to another link whose
		 * events must not be taken for ours: stop listening. */
		sg_log(SG_LOG_INFO, "link_left_namespace", "ifindex=%d", d->link.ifindex);
		if (d->routing)
			routing_set_ifindex(d->routing, 0);
		evloop_del(d->loop, &d->src_nl);
		close(d->nl_fd);
		d->nl_fd = -1;
		/* Its state there is out of sight: taken as up, so the tunnel works wherever it
		 * is brought up (docs/DATAPATH.md, differences from the kernel). */
		set_link_up(d, true, "left_namespace");
		return;
	}
	if (ev.renamed) {
		/* The socket keeps the name it was created with, as with wireguard-go. */
		char q[2 * IF_NAMESIZE + 8];
		sg_log(SG_LOG_WARN, "link_renamed", "name=%s", sg_log_quote(q, sizeof(q), ev.name));
		memcpy(d->tun.name, ev.name, sizeof(d->tun.name));
	}
	/* Unlike the kernel module and wireguard-go, the outer socket stays bound while the link
	 * is down (a get reports the same port either way); the core answers nothing meanwhile. */
	if (err == -ENOBUFS && d->link.nsid == LINKMON_OWN_NS)
		read_link_state(d, "resync"); /* (in another namespace it cannot be asked by name) */
	else if (ev.seen && ev.up != d->link_up)
		set_link_up(d, ev.up, "netlink");
	if (ev.seen && ev.mtu != 0 && ev.mtu != d->mtu && ev.mtu <= 65535) {
		d->mtu = ev.mtu;
		wg_device_set_mtu(d->dev, (uint16_t)ev.mtu);
		sg_log(SG_LOG_INFO, "mtu_changed", "mtu=%u", ev.mtu);
	}
}

static void check_socket(struct engine *d)
{
	if (!ctlsock_still_ours(&d->ctl)) {
		sg_log(SG_LOG_INFO, "socket_deleted", "path=%s", d->ctl.path);
		request_stop(d, "socket_deleted", 0);
	}
}

static void on_inotify(void *ctx, uint32_t events)
{
	struct engine *d = ctx;
	uint8_t buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	/* Which entry changed does not matter: any change in the directory is checked against the
	 * socket's inode, which also covers a socket replaced by another daemon. */
	while (read(d->inotify_fd, buf, sizeof(buf)) > 0)
		;
	check_socket(d);
}

static void housekeeping(struct engine *d, uint64_t now)
{
	if (now < d->next_housekeeping)
		return;
	d->next_housekeeping = now + HOUSEKEEPING_NS;
	if (d->has_ctlsock)
		check_socket(d);
	if (!d->stop && d->io != ENGINE_PACKETS && !interface_exists(d)) {
		sg_log(SG_LOG_INFO, "link_deleted", "ifindex=%d", d->tun.ifindex);
		request_stop(d, "interface_deleted", 0);
	}
}

/* ---- work from other threads -------------------------------------------------------------- */

static void wake(struct engine *d)
{
	uint64_t one = 1;
	/* A full counter (never in practice) still leaves the eventfd readable. */
	while (write(d->wake_fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

static bool on_loop_thread(const struct engine *d)
{
	return d->running && pthread_equal(d->loop_thread, pthread_self());
}

/* Runs the queued calls; called with mu held, returns with it held. */
static void run_calls(struct engine *d)
{
	while (d->calls) {
		struct engine_callreq *c = d->calls;
		d->calls = c->next;
		pthread_mutex_unlock(&d->mu);
		c->fn(d, c->arg);
		pthread_mutex_lock(&d->mu);
		c->done = true;
	}
	pthread_cond_broadcast(&d->cv);
}

/* Seals the packets written since the last turn (ENGINE_PACKETS): the slots being sealed stay
 * taken until the batch is sent, so writers only ever fill slots after them. */
static void drain_packets(struct engine *d)
{
	uint64_t now = evloop_now_ns();

	for (int rounds = 0; rounds < 4 && !d->stop; rounds++) {
		pthread_mutex_lock(&d->mu);
		size_t head = d->pktq_head, n = d->pktq_count;
		pthread_mutex_unlock(&d->mu);
		if (!n)
			return;
		for (size_t i = 0; i < n; i++) {
			size_t slot = (head + i) % PKTQ_LEN;
			tun_packet(d, now, d->pktq + slot * d->pktq_slot, d->pktq_len[slot]);
		}
		tx_flush(d, now);
		pthread_mutex_lock(&d->mu);
		d->pktq_head = (head + n) % PKTQ_LEN;
		d->pktq_count -= n;
		pthread_mutex_unlock(&d->mu);
	}
	/* More came in meanwhile: the next turn takes them, after the other fds had theirs. */
	wake(d);
}

static void on_wake(void *ctx, uint32_t events)
{
	struct engine *d = ctx;
	uint64_t v;

	while (read(d->wake_fd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&d->mu);
	if (d->stop_pending) {
		request_stop(d, d->stop_pending, 0);
		d->stop_pending = NULL;
	}
	run_calls(d);
	pthread_mutex_unlock(&d->mu);
	if (d->io == ENGINE_PACKETS)
		drain_packets(d);
}

void engine_stop(struct engine *d, const char *reason)
{
	if (on_loop_thread(d)) {
		request_stop(d, reason, 0);
		return;
	}
	pthread_mutex_lock(&d->mu);
	d->stop_pending = reason;
	pthread_mutex_unlock(&d->mu);
	wake(d);
}

void engine_call(struct engine *d, void (*fn)(struct engine *e, void *arg), void *arg)
{
	struct engine_callreq c = {.fn = fn, .arg = arg};

	if (on_loop_thread(d)) {
		fn(d, arg);
		return;
	}
	pthread_mutex_lock(&d->mu);
	if (!d->running) {
		/* No loop: the caller is the only one touching the engine (engine.h). */
		pthread_mutex_unlock(&d->mu);
		fn(d, arg);
		return;
	}
	c.next = d->calls;
	d->calls = &c;
	pthread_mutex_unlock(&d->mu);
	wake(d);
	pthread_mutex_lock(&d->mu);
	while (!c.done)
		pthread_cond_wait(&d->cv, &d->mu);
	pthread_mutex_unlock(&d->mu);
}

int engine_packet_write(struct engine *d, const uint8_t *pkt, size_t len)
{
	if (d->io != ENGINE_PACKETS || len == 0)
		return SG_EINVAL;
	if (len > d->pktq_slot)
		return SG_ERANGE;
	pthread_mutex_lock(&d->mu);
	if (d->pktq_count == PKTQ_LEN) {
		d->pktq_full++;
		pthread_mutex_unlock(&d->mu);
		return SG_EFULL;
	}
	size_t slot = (d->pktq_head + d->pktq_count) % PKTQ_LEN;
	/* The slot is after every slot the loop may be reading: copied under the lock only to
	 * keep the ring's accounting simple (a packet is a few hundred nanoseconds of memcpy). */
	memcpy(d->pktq + slot * d->pktq_slot, pkt, len);
	d->pktq_len[slot] = (uint16_t)len;
	bool was_empty = d->pktq_count == 0;
	d->pktq_count++;
	d->pktq_queued++;
	pthread_mutex_unlock(&d->mu);
	if (was_empty)
		wake(d);
	return 0;
}

struct uapi_call {
	const char *req;
	size_t len;
	struct sg_strbuf out;
	int err;
};

static void uapi_on_loop(struct engine *d, void *arg)
{
	struct uapi_call *u = arg;
	struct uapi_host host;

	/* A control-socket client in the middle of a set holds the configuration. */
	if (d->uapi_owner) {
		u->err = -EBUSY;
		return;
	}
	struct uapi_conn *c = uapi_conn_new(d->dev, uapi_host_for(d, &host));
	if (!c) {
		u->err = -ENOMEM;
		return;
	}
	size_t off = 0;
	bool eof_fed = false;
	for (;;) {
		size_t olen;
		const uint8_t *o = uapi_conn_output(c, &olen);
		if (olen) {
			sg_strbuf_printf(&u->out, "%.*s", (int)olen, (const char *)o);
			uapi_conn_output_consumed(c, olen);
			continue;
		}
		if (uapi_conn_want_close(c))
			break;
		size_t used = 0;
		if (off < u->len)
			used = uapi_conn_input(c, (const uint8_t *)u->req + off, u->len - off);
		off += used;
		if (used)
			continue;
		if (eof_fed)
			break;
		/* Everything fed: end of input finishes a set and closes. */
		uapi_conn_eof(c);
		eof_fed = true;
	}
	uapi_conn_free(c);
	u->err = u->out.oom ? -ENOMEM : 0;
}

int engine_uapi(struct engine *d, const char *req, size_t len, char **reply, size_t *reply_len)
{
	struct uapi_call u = {.req = req, .len = len};

	*reply = NULL;
	*reply_len = 0;
	engine_call(d, uapi_on_loop, &u);
	if (u.err != 0) {
		sg_strbuf_free(&u.out);
		return u.err;
	}
	if (!u.out.p) {
		sg_strbuf_printf(&u.out, "%s", "");
		if (u.out.oom)
			return -ENOMEM;
	}
	*reply = u.out.p;
	*reply_len = u.out.len;
	return 0;
}

/* ---- init / run / free -------------------------------------------------------------------- */

static int open_packets(struct engine *d, const struct engine_opts *opts, const char **why)
{
	switch (opts->io) {
	case ENGINE_TUN_CREATE:
		return tun_open(&d->tun, opts->ifname, d->mtu, d->offload, true, why);
	case ENGINE_TUN_FD:
		return tun_adopt(&d->tun, opts->tun_fd, why);
	case ENGINE_PACKETS:
		if (!opts->hooks.deliver || d->mtu > 65535) {
			*why = "packet hooks";
			return -EINVAL;
		}
		d->pktq_slot = d->mtu;
		d->pktq = malloc((size_t)PKTQ_LEN * d->pktq_slot);
		d->pktq_len = calloc(PKTQ_LEN, sizeof(*d->pktq_len));
		if (!d->pktq || !d->pktq_len) {
			*why = "out of memory";
			return -ENOMEM;
		}
		snprintf(d->tun.name, sizeof(d->tun.name), "%s", opts->ifname ? opts->ifname : "");
		return 0;
	}
	*why = "packet I/O";
	return -EINVAL;
}

int engine_init(struct engine **out, const struct engine_opts *opts, const char **why)
{
	struct engine *d;
	sigset_t sigs;
	int err;

	*out = NULL;
	d = calloc(1, sizeof(*d));
	if (!d) {
		*why = "out of memory";
		return -ENOMEM;
	}
	d->tun.fd = d->tun.prio_fd = d->udp.fd = d->ctl.fd = -1;
	d->timer_fd = d->signal_fd = d->nl_fd = d->inotify_fd = d->wake_fd = -1;
	d->mtu = opts->mtu ? opts->mtu : TUN_DEFAULT_MTU;
	d->io = opts->io;
	d->hooks = opts->hooks;
	d->lanes_wanted = opts->lanes;
	d->turn_bytes = opts->turn_bytes ? opts->turn_bytes : TURN_BYTES;
	d->has_ctlsock = opts->ctlsock;
	d->link_monitor = opts->link_monitor && opts->io != ENGINE_PACKETS;
	d->drop_rl.rate = 10;
	d->drop_rl.burst = 20;
	d->fail_rl.rate = 5;
	d->fail_rl.burst = 10;
	d->err_rl.rate = 1;
	d->err_rl.burst = 5;
	d->loop_rl.rate = 1;
	d->loop_rl.burst = 1;
	d->icmp_rl.rate = 1000;
	d->icmp_rl.burst = 50;
	if (pthread_mutex_init(&d->mu, NULL) != 0) {
		free(d);
		*why = "mutex";
		return -ENOMEM;
	}
	if (pthread_cond_init(&d->cv, NULL) != 0) {
		pthread_mutex_destroy(&d->mu);
		free(d);
		*why = "condition variable";
		return -ENOMEM;
	}
	d->mu_ok = true;

	d->offload = !opts->no_offload;
	d->fips_strict = opts->fips_strict;
	d->tun_buf = malloc(TUN_BUF);
	d->seg_buf = malloc(OFFLOAD_MAX_PKT);
	d->gro_mem = malloc((size_t)OFFLOAD_GRO_FLOWS * OFFLOAD_GRO_BUF);
	d->ops = calloc(OPS_MAX, sizeof(*d->ops));
	d->tx_slots = malloc((size_t)OPS_MAX * TX_SLOT);
	d->hsq = malloc(HSQ_LEN * sizeof(*d->hsq));
	if (!d->tun_buf || !d->seg_buf || !d->gro_mem || !d->ops || !d->tx_slots || !d->hsq ||
	    udp_rx_init(&d->rx) != 0 ||
	    udp_tx_init(&d->tx) != 0) {
		*why = "out of memory";
		err = -ENOMEM;
		goto fail;
	}
	offload_gro_init(&d->gro, d->gro_mem, gro_emit, d);
	/* Interface first, then the socket named after it (wireguard-go's order). */
	err = open_packets(d, opts, why);
	if (err != 0)
		goto fail;
	memcpy(d->ifname, d->tun.name, sizeof(d->ifname));
	if (d->has_ctlsock) {
		err = ctlsock_open(&d->ctl, opts->sock_dir ? opts->sock_dir : CTLSOCK_DIR,
				   d->ifname, why);
		if (err != 0)
			goto fail;
	}

	struct wg_io io = {
	    .ctx = d,
	    .send = io_send,
	    .deliver = io_deliver,
	    .realtime_ns = io_realtime,
	    .event = on_event,
	    .peer_removed = io_peer_removed,
	};
	d->dev = wg_device_new(&io);
	if (!d->dev) {
		*why = "wg_device_new";
		err = -ENOMEM;
		goto fail;
	}
	wg_device_set_mtu(d->dev, (uint16_t)d->mtu);
	/* Like wireguard-go before any listen_port is set: a random free port. */
	err = udp_open(&d->udp, 0, 0, d->offload, why);
	if (err == 0 && !protect_socket(d, d->udp.fd)) {
		*why = "protect";
		err = -EPERM;
	}
	if (err != 0)
		goto fail;
	if (d->io != ENGINE_PACKETS)
		sg_log(SG_LOG_INFO, "offload",
		       "tun_vnet_hdr=%s tun_offloads=0x%x tun_prio_queue=%s udp_gso=%s udp_gro=%s%s",
		       d->tun.vnet_hdr ? "on" : "off", d->tun.offloads,
		       d->tun.prio_fd >= 0 ? "on" : "off", d->udp.gso ? "on" : "off",
		       d->udp.gro ? "on" : "off", d->offload ? "" : " reason=SG_DISABLE_OFFLOAD");

	err = evloop_new(&d->loop);
	if (err != 0) {
		*why = "epoll_create";
		goto fail;
	}
	d->timer_fd = evloop_timer_new();
	if (d->timer_fd < 0) {
		err = d->timer_fd;
		*why = "timerfd_create";
		goto fail;
	}
	d->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (d->wake_fd < 0) {
		err = -errno;
		*why = "eventfd";
		goto fail;
	}
	err = tlsmgr_new(&d->tls, d->loop, d->dev);
	if (err != 0) {
		*why = "TLS transport";
		goto fail;
	}
	if (d->hooks.protect)
		tlsmgr_set_protect(d->tls, d->hooks.protect, d->hooks.ctx);
	tlsmgr_set_rx(d->tls,
		      &(struct tlsmgr_rx_hooks){.ctx = d, .rx = tls_rx, .rx_done = tls_rx_done});
	if (opts->signals) {
		sigemptyset(&sigs);
		sigaddset(&sigs, SIGINT);
		sigaddset(&sigs, SIGTERM);
		sigaddset(&sigs, SIGHUP);
		sigaddset(&sigs, SIGUSR1);
		d->signal_fd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
		if (d->signal_fd < 0) {
			err = -errno;
			*why = "signalfd";
			goto fail;
		}
	}
	/* Link and socket watches are best effort: housekeeping checks both anyway. */
	d->link = (struct linkmon_link){d->tun.ifindex, LINKMON_OWN_NS, d->tun.name};
	if (d->link_monitor) {
		d->nl_fd = linkmon_open(&d->nl_all_nsid);
		if (d->nl_fd < 0)
			sg_log(SG_LOG_WARN, "netlink_unavailable", "error=\"%s\"",
			       strerror(-d->nl_fd));
	}
	/* Opened before the link monitor reads anything: changes from now on are not missed.
	 * Without a TUN interface (ifindex 0) it still checks sticky sources against routing. */
	err = routing_new(&d->routing, d->loop, d->dev, d->tun.ifindex);
	if (err != 0) {
		d->routing = NULL;
		sg_log(SG_LOG_WARN, "routing_unavailable",
		       "error=\"%s\" msg=\"sticky sources follow no route change, padding ignores "
		       "route MTUs\"",
		       strerror(-err));
	} else {
		routing_set_socket(d->routing, d->udp.fwmark, d->udp.port);
	}
	/* The new TUN device is down until someone brings it up: nothing leaves before (the
	 * kernel's wg_open). Without a link monitor its state cannot be followed: up. */
	if (d->nl_fd >= 0)
		read_link_state(d, "start");
	else
		set_link_up(d, true, d->io == ENGINE_PACKETS ? "packets" : "no_link_monitor");
	if (d->has_ctlsock) {
		d->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (d->inotify_fd >= 0 &&
		    inotify_add_watch(d->inotify_fd, d->ctl.dir,
				      IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE |
					  IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR) < 0) {
			close(d->inotify_fd);
			d->inotify_fd = -1;
		}
		if (d->inotify_fd < 0)
			sg_log(SG_LOG_WARN, "inotify_unavailable", "error=\"%s\"", strerror(errno));
	}

	if ((d->tun.fd >= 0 &&
	     (err = evloop_add(d->loop, &d->src_tun, d->tun.fd, EPOLLIN, on_tun, d)) != 0) ||
	    (d->tun.prio_fd >= 0 && (err = evloop_add(d->loop, &d->src_tun_prio, d->tun.prio_fd,
						      EPOLLIN, on_tun_prio, d)) != 0) ||
	    (err = evloop_add(d->loop, &d->src_udp, d->udp.fd, EPOLLIN, on_udp, d)) != 0 ||
	    (err = evloop_add(d->loop, &d->src_timer, d->timer_fd, EPOLLIN, on_timer, d)) != 0 ||
	    (err = evloop_add(d->loop, &d->src_wake, d->wake_fd, EPOLLIN, on_wake, d)) != 0 ||
	    (d->signal_fd >= 0 && (err = evloop_add(d->loop, &d->src_signal, d->signal_fd, EPOLLIN,
						    on_signal, d)) != 0) ||
	    (d->has_ctlsock &&
	     (err = evloop_add(d->loop, &d->src_ctl, d->ctl.fd, EPOLLIN, on_ctl, d)) != 0) ||
	    (d->nl_fd >= 0 &&
	     (err = evloop_add(d->loop, &d->src_nl, d->nl_fd, EPOLLIN, on_netlink, d)) != 0) ||
	    (d->inotify_fd >= 0 && (err = evloop_add(d->loop, &d->src_inotify, d->inotify_fd,
						     EPOLLIN, on_inotify, d)) != 0)) {
		*why = "epoll_ctl";
		goto fail;
	}
	d->armed_for = UINT64_MAX; /* the timerfd starts disarmed */
	d->next_housekeeping = evloop_now_ns() + HOUSEKEEPING_NS;
	*out = d;
	return 0;
fail:
	engine_free(d);
	return err;
}

int engine_run(struct engine *d)
{
	const char *src = "";

	if (!d->pool) {
		unsigned lanes = d->lanes_wanted ? d->lanes_wanted : cpool_default_lanes(&src);
		if (d->lanes_wanted)
			src = "caller";
		int err = cpool_new(&d->pool, lanes);
		if (err != 0) {
			sg_log(SG_LOG_WARN, "crypto_threads_failed", "lanes=%u error=\"%s\"", lanes,
			       strerror(-err));
			if (cpool_new(&d->pool, 1) != 0) {
				request_stop(d, "out_of_memory", 1);
				return d->exit_code;
			}
		}
		lanes = cpool_lanes(d->pool);
		d->batch_max =
		    lanes == 1 ? 1 : SG_MIN((size_t)lanes * BATCH_PER_LANE, (size_t)OPS_MAX);
		sg_log(SG_LOG_INFO, "crypto_lanes", "lanes=%u from=%s", lanes, src);
	}
	pthread_mutex_lock(&d->mu);
	d->stop = false;
	d->exit_code = 0;
	d->stop_reason = NULL;
	d->loop_thread = pthread_self();
	d->running = true;
	pthread_mutex_unlock(&d->mu);
	/* Work queued before the loop ran (a stop, packets) is seen on the first turn. */
	wake(d);
	while (!d->stop) {
		rearm_timer(d);
		uint64_t now = evloop_now_ns();
		uint64_t wait_ns = d->next_housekeeping > now ? d->next_housekeeping - now : 0;
		/* Handshakes left in the queue, or a routing round cut short: look at the fds
		 * and come straight back. */
		bool more = d->hsq_count || (d->routing && routing_wants_turn(d->routing)) ||
			    udp_pending(d);
		int timeout_ms = more ? 0 : (int)(wait_ns / 1000000ull) + 1;
		uint64_t failed = d->tx.failed;
		d->udp_ran = false;
		int n = evloop_run_once(d->loop, timeout_ms);
		if (n < 0) {
			sg_log(SG_LOG_ERROR, "epoll_failed", "error=\"%s\"", strerror(-n));
			request_stop(d, "epoll_error", 1);
		}
		/* A received batch an earlier turn left, when the socket did not wake us. */
		if (udp_pending(d) && !d->udp_ran && !d->stop)
			udp_work(d);
		hsq_run(d);
		if (d->routing)
			routing_run(d->routing, evloop_now_ns());
		/* Everything else the core sent during this turn goes out in one sendmmsg, and over
		 * TLS in as few records as it fills. */
		send_queued(d);
		offload_gro_flush(&d->gro);
		if (d->tx.gso_error != 0) {
			sg_log(SG_LOG_WARN, "udp_gso_disabled", "error=\"%s\"",
			       strerror(-d->tx.gso_error));
			d->tx.gso_error = 0;
		}
		uint64_t suppressed;
		if (d->tx.failed != failed && sg_log_enabled(SG_LOG_DEBUG) &&
		    sg_log_ratelimit_allow(&d->drop_rl, evloop_now_ns(), &suppressed))
			sg_log(SG_LOG_DEBUG, "udp_send_failed",
			       "count=%llu error=\"%s\" suppressed=%llu",
			       (unsigned long long)(d->tx.failed - failed),
			       strerror(-d->tx.last_error), (unsigned long long)suppressed);
		conns_after_turn(d);
		housekeeping(d, evloop_now_ns());
	}
	/* Calls that came in during the last turn run here; later ones inline in their callers. */
	pthread_mutex_lock(&d->mu);
	d->running = false;
	d->stop_pending = NULL;
	run_calls(d);
	pthread_mutex_unlock(&d->mu);
	return d->exit_code;
}

void engine_free(struct engine *d)
{
	if (!d)
		return;
	if (d->dev)
		log_counters(d, "stopping", d->stop_reason ? d->stop_reason : "setup_failed");
	for (struct ctl_conn *c = d->conns, *next; c; c = next) {
		next = c->next;
		if (!c->dead)
			close(c->fd);
		conn_free(c);
	}
	/* The socket first, so no client talks to a half-freed engine. */
	if (d->has_ctlsock)
		ctlsock_close(&d->ctl);
	if (d->dev)
		udp_tx_flush(&d->udp, &d->tx);
	if (d->gro_mem && d->tun.fd >= 0)
		offload_gro_flush(&d->gro);
	cpool_free(d->pool); /* no op is in flight between loop turns */
	d->pool = NULL;
	tlsmgr_free(d->tls); /* before the device: it holds per-peer state */
	d->tls = NULL;
	routing_free(d->routing); /* likewise */
	d->routing = NULL;
	wg_device_free(d->dev); /* wipes every key */
	udp_close(&d->udp);
	tun_close(&d->tun);
	if (d->inotify_fd >= 0)
		close(d->inotify_fd);
	if (d->nl_fd >= 0)
		close(d->nl_fd);
	if (d->signal_fd >= 0)
		close(d->signal_fd);
	if (d->timer_fd >= 0)
		close(d->timer_fd);
	if (d->wake_fd >= 0)
		close(d->wake_fd);
	evloop_free(d->loop);
	udp_rx_free(&d->rx);
	udp_tx_free(&d->tx);
	free(d->tun_buf);
	free(d->seg_buf);
	free(d->ops);
	free(d->tx_slots);
	free(d->hsq);
	free(d->gro_mem);
	if (d->pktq) /* inner packets: wiped like the rest of the plaintext */
		sg_memzero(d->pktq, (size_t)PKTQ_LEN * d->pktq_slot);
	free(d->pktq);
	free(d->pktq_len);
	if (d->mu_ok) {
		pthread_cond_destroy(&d->cv);
		pthread_mutex_destroy(&d->mu);
	}
	free(d);
}

const char *engine_ifname(const struct engine *d)
{
	return d->ifname;
}

uint16_t engine_listen_port(const struct engine *d)
{
	return d->udp.port;
}

struct wg_device *engine_device(struct engine *d)
{
	return d->dev;
}

struct evloop *engine_loop(struct engine *d)
{
	return d->loop;
}

unsigned engine_mtu(const struct engine *d)
{
	return d->mtu;
}

void engine_get_stats(const struct engine *d, struct engine_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->tun_rx = d->stats.tun_rx;
	out->tun_tx = d->stats.tun_tx;
	out->tun_tx_errors = d->stats.tun_tx_errors;
	out->udp_rx = d->stats.udp_rx;
	out->udp_tx = d->tx.sent;
	out->udp_tx_failed = d->tx.failed;
	out->packets_queued = d->pktq_queued;
	out->packets_queue_full = d->pktq_full;
	out->udp_rx_resumed = d->rx_resumed;
}
