/* The userspace TCP/IP stack of libsecureguard (SG_IO_STACK): lwIP, from Debian (liblwip-dev).
 *
 * Why lwIP: it is the mature small TCP/IP stack made for this job (IPv4 and IPv6, TCP with
 * window scaling, fast retransmit and MSS from the interface MTU, UDP, ICMP echo), packaged by
 * Debian; the alternatives a product like this uses are gVisor's netstack (Go) and smoltcp
 * (Rust), neither of which a C library can link. Writing a TCP by hand is what the house rules
 * forbid where a good library exists.
 *
 * lwIP keeps one stack per process (global lists of interfaces and control blocks). So one
 * thread of this module owns it, started with the first engine that uses it and stopped with
 * the last: it runs lwIP's timers, feeds it the packets engines decrypted, and moves bytes
 * between lwIP's connections and the local stream sockets the app holds. Each engine has its
 * own interface (stack_if) with its own addresses; every control block is bound to its
 * interface, and a packet for an address that is not its engine's is dropped before lwIP sees
 * it (lwIP would otherwise forward it, or accept it for another engine's address).
 *
 * Flow control: bytes lwIP received wait in its buffers until the app's socket takes them
 * (tcp_recved only then: the TCP window closes when the app stops reading); bytes the app
 * writes are read from its socket only as far as lwIP's send buffer has room. Nothing here
 * grows without bound: per engine at most STACK_RXQ packets wait for the stack thread, per UDP
 * socket STACK_UDPQ datagrams.
 */
#ifndef SG_LIB_STACK_H
#define SG_LIB_STACK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/compiler.h"
#include "common/log.h"
#include "config/wgconf.h"
#include "engine/engine.h"

#define STACK_RXQ  512
#define STACK_UDPQ 256

struct stack_if;
struct stack_listener;
struct stack_udp;

struct stack_counters {
	uint64_t rx_packets, rx_dropped, rx_not_ours, tx_packets, tx_full;
};

/* An interface for an engine with the config's Address entries (the first IPv4 one, up to six
 * IPv6 ones) and the MTU; packets lwIP sends go to engine_packet_write(eng). log: the engine's
 * logger, used while the stack thread works for it. 0 or a negative SG_E* code with why. */
int stack_attach(struct stack_if **out, struct engine *eng, const struct sg_wgconf_ip *addrs,
		 size_t n, unsigned mtu, struct sg_log_local *log, char *why, size_t whylen) SG_WUR;
/* Ends every connection and socket of the interface (their local sockets read EOF; listener
 * and UDP handles stay valid and answer SG_EDOWN) and removes it. */
void stack_detach(struct stack_if *s);
/* Ends every TCP connection of the interface (their local sockets read EOF); listeners and UDP
 * sockets stay. */
void stack_reset(struct stack_if *s);
/* The engine's deliver hook: one decrypted packet for the stack (engine thread). */
void stack_input(struct stack_if *s, const uint8_t *pkt, size_t len);
void stack_get_counters(struct stack_if *s, struct stack_counters *out);

/* sg.h's socket calls, with sg_result codes. */
int stack_tcp_connect(struct stack_if *s, const struct sockaddr *to, socklen_t tolen,
		      int timeout_ms, int *fd) SG_WUR;
int stack_tcp_listen(struct stack_if *s, const struct sockaddr *local, socklen_t len,
		     struct stack_listener **out) SG_WUR;
int stack_listener_fd(const struct stack_listener *l);
int stack_tcp_accept(struct stack_listener *l, int *fd, struct sockaddr_storage *from) SG_WUR;
void stack_listener_close(struct stack_listener *l);
int stack_udp_open(struct stack_if *s, const struct sockaddr *local, socklen_t len,
		   struct stack_udp **out) SG_WUR;
int stack_udp_fd(const struct stack_udp *u);
int stack_udp_sendto(struct stack_udp *u, const void *buf, size_t len, const struct sockaddr *to,
		     socklen_t tolen) SG_WUR;
int stack_udp_recvfrom(struct stack_udp *u, void *buf, size_t cap, size_t *len,
		       struct sockaddr_storage *from) SG_WUR;
void stack_udp_close(struct stack_udp *u);

#endif
