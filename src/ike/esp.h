/* ESP (RFC 4303) in UDP (RFC 3948), sans-I/O: the data path of the IKE daemon. One struct per
 * direction of a Child SA; packets in, packets out, no allocation per packet.
 *
 * Outbound: an inner IP packet becomes ESP header (SPI, 32-bit sequence number), IV (the 64-bit
 * sequence number, unique per key as RFC 4106 3.1 and RFC 7634 2 ask), the encrypted payload with
 * padding to 4 bytes (AEAD) or the block (CBC), pad length, next header, and the ICV. Tunnel mode
 * carries the whole packet (next header 4 or 41); transport mode carries its payload and the
 * receiver rebuilds the IP header from the SA's addresses.
 *
 * Inbound: length and SPI checks, the anti-replay window (RFC 4303 3.4.3, Appendix A2 for
 * extended sequence numbers; ESP_REPLAY_WINDOW packets), ICV verification before the window is
 * updated, padding and next header checks.
 *
 * Lifetimes by bytes and packets (soft: rekey, hard: stop) are counted here; the caller reports
 * them to the IKE core (ike_child_expired). Time lifetimes belong to the core.
 */
#ifndef SG_IKE_ESP_H
#define SG_IKE_ESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"

#define ESP_HDR_LEN	  8
#define ESP_REPLAY_WINDOW 4096 /* packets; the issue asks for at least 1024 */
#define ESP_NEXT_IPV4	  4
#define ESP_NEXT_IPV6	  41
#define ESP_NEXT_NONE	  59 /* a dummy packet (RFC 4303 2.6): dropped after checks */
/* The most an encapsulation adds: header, 16-byte IV (CBC), 15 padding + 2, 32-byte ICV. */
#define ESP_MAX_OVERHEAD (ESP_HDR_LEN + 16 + 17 + 32)

struct esp_sa {
	uint32_t spi; /* host order */
	uint16_t encr, encr_bits, integ;
	bool esn;
	bool transport;
	struct sg_aead *aead;	/* AEADs */
	uint8_t ek[32], ak[64]; /* CBC + HMAC */
	size_t iv_len, icv_len, block;
	uint64_t seq;	      /* outbound: last sent; inbound: highest accepted */
	uint64_t seq_iv_base; /* AEAD outbound: IV = base + sequence number */
	uint64_t bitmap[ESP_REPLAY_WINDOW / 64];
	/* Lifetimes (0 = none) and counts. */
	uint64_t soft_bytes, hard_bytes, soft_packets, hard_packets;
	uint64_t bytes, packets;
	bool soft_reported, hard_reached;
	/* Inbound drops. */
	uint64_t replayed, auth_failed, malformed;
	/* Transport mode: the IP addresses of the packets rebuilt on receive (4 or 16 bytes). */
	int family;
	uint8_t local[16], remote[16];
};

enum esp_result {
	ESP_OK = 0,
	ESP_SOFT = 1,	   /* OK, and the soft lifetime was just reached: rekey */
	ESP_E_HARD = -1,   /* the hard lifetime is reached: the SA must not be used */
	ESP_E_SHORT = -2,  /* malformed: too short, bad padding, unknown next header */
	ESP_E_REPLAY = -3, /* replayed or older than the window */
	ESP_E_AUTH = -4,   /* ICV did not verify */
	ESP_E_SPACE = -5,  /* the output buffer is too small */
	ESP_E_SEQ = -6,	   /* the sequence number would wrap (RFC 4303 3.3.3) */
	ESP_E_CRYPTO = -7,
};

/* Sets up one direction. key: key || salt for the AEADs (key_len includes the salt), integ_key
 * for CBC. 0, SG_EINVAL, SG_ENOMEM. */
int esp_sa_init(struct esp_sa *sa, uint32_t spi, uint16_t encr, uint16_t encr_bits, uint16_t integ,
		const uint8_t *key, size_t key_len, const uint8_t *integ_key, size_t integ_len,
		bool esn, bool encrypt) SG_WUR;
void esp_sa_wipe(struct esp_sa *sa);

/* The data path in three steps, so that the cipher work of a batch can be spread over crypto
 * lanes (docs/DATAPATH.md) while everything with state stays on one thread, in order:
 *
 *   prepare (loop thread, in order): checks, the sequence number, header, IV and padding
 *       (outbound) or the length, SPI and replay pre-checks (inbound), lifetimes counted;
 *   esp_op_run (any lane, any order): the cipher and integrity work only, on the op's own
 *       packet buffer and the SA's keys (one context per lane), nothing else;
 *   complete (loop thread, in the order prepared): inbound, the replay window checked again and
 *       updated (two copies of one packet in a batch both pass the pre-check), padding, next
 *       header, counts.
 *
 * The SA must stay alive from prepare to complete. esp_encap and esp_decap are the three in
 * one. */
struct esp_op {
	struct esp_sa *sa;
	uint8_t *buf; /* the ESP packet, from its SPI */
	size_t len;   /* ESP packet bytes */
	uint64_t seq;
	bool encrypt;
	int result; /* after esp_op_run: 0, ESP_E_AUTH or ESP_E_CRYPTO */
};

/* Outbound prepare: the ESP packet for `pkt` laid out in out (cap bytes) with its payload in
 * clear, op filled for esp_op_run. ESP_OK or ESP_SOFT (a soft lifetime reached: rekey; the
 * packet goes), or an ESP_E_* and no op. After a successful run, out[0..op->len) is the packet. */
int esp_encap_prepare(struct esp_sa *sa, const uint8_t *pkt, size_t len, uint8_t *out, size_t cap,
		      struct esp_op *op) SG_WUR;
/* Inbound prepare: the packet in buf (len bytes, its SPI matched to sa) checked for length and
 * against the replay window. ESP_OK with op filled, or an ESP_E_* (counted in the SA). */
int esp_decap_prepare(struct esp_sa *sa, uint8_t *buf, size_t len, struct esp_op *op) SG_WUR;
/* The cipher step of either direction, on crypto lane `lane`. */
void esp_op_run(struct esp_op *op, unsigned lane);
/* Inbound complete, as esp_decap's result: *pkt and *pkt_len the inner packet within buf. */
int esp_decap_complete(struct esp_op *op, uint8_t **pkt, size_t *pkt_len) SG_WUR;

/* Encapsulates the IP packet `pkt` (len bytes) into out (cap bytes). *out_len gets the ESP
 * packet's length (without UDP). lane: the crypto lane (crypto.h). */
int esp_encap(struct esp_sa *sa, unsigned lane, const uint8_t *pkt, size_t len, uint8_t *out,
	      size_t cap, size_t *out_len) SG_WUR;
/* Decapsulates an ESP packet in place (buf, len bytes, starting with the SPI, which the caller
 * has matched to sa). On success *pkt and *pkt_len are the inner IP packet within buf (for
 * transport mode the IP header is rebuilt in front, so buf needs 40 bytes of headroom before
 * `buf`: pass the packet at an offset). */
int esp_decap(struct esp_sa *sa, unsigned lane, uint8_t *buf, size_t len, uint8_t **pkt,
	      size_t *pkt_len) SG_WUR;

/* The SPI of an ESP packet (0 if too short). */
uint32_t esp_spi(const uint8_t *buf, size_t len);

#endif
