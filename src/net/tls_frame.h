/* SG-TLS framing (docs/TLS.md): the pure, allocation-free half of the TLS-over-TCP transport, so
 * it can be fuzzed on its own (tests/fuzz/fuzz_tls_frame.c).
 *
 * Inside the TLS stream the server first sends a 12-byte greeting:
 *
 *   0      8       9          10                12
 *   +------+-------+----------+-----------------+
 *   |"SG-TLS/1"    | flags    | reserved | idle timeout (s), u16 big-endian |
 *
 * then both directions carry frames: a 2-byte big-endian length (0..65535) followed by that many
 * bytes, one WireGuard/SecureGuard datagram each. A zero-length frame is a keepalive.
 */
#ifndef SG_NET_TLS_FRAME_H
#define SG_NET_TLS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"

#define TLS_MAGIC	  "SG-TLS/1"
#define TLS_MAGIC_LEN	  8
#define TLS_GREETING_LEN  12
#define TLS_FRAME_HDR_LEN 2
#define TLS_FRAME_MAX	  65535u
/* Greeting flags. Unknown bits are ignored by a receiver (optional features of later 1.x
 * servers); an incompatible change gets a new magic. */
#define TLS_GREETING_FIPS 0x01u
/* The server requires a session token: the client sends its hello (tls_token.h) first. */
#define TLS_GREETING_TOKEN 0x02u
/* Largest TLS record plaintext (RFC 8446 section 5.1): one SSL_read never returns more. */
#define TLS_RECORD_MAX 16384u
/* Receive buffer: one whole largest frame always fits, plus room for a full record after it. */
#define TLS_RXBUF_SIZE (TLS_FRAME_HDR_LEN + TLS_FRAME_MAX + TLS_RECORD_MAX)

struct tls_greeting {
	uint8_t flags;
	uint16_t idle_timeout_s; /* the server closes connections silent this long (0: never) */
};

/* Writes the 12 greeting bytes. */
void tls_greeting_encode(uint8_t out[TLS_GREETING_LEN], const struct tls_greeting *g);
/* Parses a greeting at the start of buf. Returns TLS_GREETING_LEN, 0 when more bytes are needed
 * (what is there so far matches), or SG_EPARSE with *why set ("greeting mismatch: ..."). */
int tls_greeting_parse(const uint8_t *buf, size_t len, struct tls_greeting *g,
		       const char **why) SG_WUR;

/* Writes a frame header for len bytes (len <= TLS_FRAME_MAX). */
void tls_frame_header(uint8_t out[TLS_FRAME_HDR_LEN], size_t len);

/* Reassembly buffer for one direction of the stream: bytes are appended at the tail as TLS
 * delivers them and whole frames are taken from the head. The caller provides `cap` bytes of
 * memory (at least TLS_FRAME_HDR_LEN + TLS_FRAME_MAX, so any frame fits). */
struct tls_rxbuf {
	uint8_t *buf;
	size_t cap, head, tail;
};

void tls_rxbuf_init(struct tls_rxbuf *r, uint8_t *mem, size_t cap);
/* Where to append and how much room there is; moves pending bytes to the front first when the
 * room at the tail has fallen below one record. */
uint8_t *tls_rxbuf_space(struct tls_rxbuf *r, size_t *avail);
/* Whether the next tls_rxbuf_space reuses memory of frames already taken (it starts over at the
 * front or moves pending bytes there): a caller still holding taken frames finishes them first.
 * Until then taken frames stay where they are. */
bool tls_rxbuf_reuses(const struct tls_rxbuf *r);
/* Records n bytes appended at the pointer tls_rxbuf_space returned (n <= avail). */
void tls_rxbuf_commit(struct tls_rxbuf *r, size_t n);
/* Takes the greeting: 1 (taken), 0 (need more) or SG_EPARSE with *why. */
int tls_rxbuf_take_greeting(struct tls_rxbuf *r, struct tls_greeting *g, const char **why) SG_WUR;
/* Takes the next whole frame: 1 with *msg and *len pointing into the buffer (valid until the next
 * call that changes r), or 0 when the frame is not complete yet. */
int tls_rxbuf_take_frame(struct tls_rxbuf *r, const uint8_t **msg, size_t *len) SG_WUR;
/* Takes n bytes from the head (n <= pending), e.g. a hello parsed in place. */
void tls_rxbuf_consume(struct tls_rxbuf *r, size_t n);
/* Bytes received but not yet taken. */
size_t tls_rxbuf_pending(const struct tls_rxbuf *r);

#endif
