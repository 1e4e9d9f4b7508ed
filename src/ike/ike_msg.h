/* IKEv2 message codec (RFC 7296 section 3), sans-I/O: the first part of src/ike, the IKEv2
 * core (ARCHITECTURE.md). Bytes in, bounded views out; structures in, bytes out.
 *
 * Parsing never allocates and never trusts a length: every length field is checked against what
 * is left of the buffer and against the fixed bounds below before it is used. Views point into
 * the caller's buffer. Every rejection returns SG_EPARSE (or SG_ERANGE for a bound) and sets
 * *why to a static text naming the field ("SA: transform length runs past the proposal").
 *
 * Building appends to a caller-owned buffer of fixed capacity (struct ike_buf); the next-payload
 * chain and the lengths are filled in by the builder. A full buffer is a sticky SG_EFULL.
 *
 * The SK payload (encrypted and authenticated inner payloads, RFC 7296 3.14, RFC 5282 for AEAD)
 * and its fragments SKF (RFC 7383) are sealed and opened here with the IKE SA's keys, through
 * src/crypto (ipsec.h).
 */
#ifndef SG_IKE_IKE_MSG_H
#define SG_IKE_IKE_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"

#define IKE_HDR_LEN	    28
#define IKE_PAYLOAD_HDR_LEN 4
#define IKE_VERSION	    0x20 /* major 2, minor 0 */
/* The largest IKE message accepted (RFC 7296 2 requires 1280 at least; fragments keep real
 * messages under the path MTU; certificates chains make unfragmented ones large). */
#define IKE_MAX_MSG	    65535
#define IKE_MAX_PAYLOADS    48 /* per message (or decrypted SK content) */
#define IKE_MAX_PROPOSALS   16 /* per SA payload */
#define IKE_MAX_TRANSFORMS  32 /* per proposal */
#define IKE_MAX_TS	    16 /* per TS payload */
#define IKE_MAX_DELETE_SPIS 64 /* per Delete payload */
#define IKE_NONCE_MIN	    16 /* RFC 7296 3.9 */
#define IKE_NONCE_MAX	    256

enum ike_exchange {
	IKE_SA_INIT = 34,
	IKE_AUTH = 35,
	IKE_CREATE_CHILD_SA = 36,
	IKE_INFORMATIONAL = 37,
};

enum ike_flags {
	IKE_FLAG_INITIATOR = 0x08,
	IKE_FLAG_VERSION = 0x10,
	IKE_FLAG_RESPONSE = 0x20,
};

enum ike_payload_type {
	IKE_PL_NONE = 0,
	IKE_PL_SA = 33,
	IKE_PL_KE = 34,
	IKE_PL_IDI = 35,
	IKE_PL_IDR = 36,
	IKE_PL_CERT = 37,
	IKE_PL_CERTREQ = 38,
	IKE_PL_AUTH = 39,
	IKE_PL_NONCE = 40,
	IKE_PL_NOTIFY = 41,
	IKE_PL_DELETE = 42,
	IKE_PL_VENDOR = 43,
	IKE_PL_TSI = 44,
	IKE_PL_TSR = 45,
	IKE_PL_SK = 46,
	IKE_PL_CP = 47,
	IKE_PL_EAP = 48,
	IKE_PL_SKF = 53, /* RFC 7383 */
};

enum ike_protocol {
	IKE_PROTO_IKE = 1,
	IKE_PROTO_AH = 2,
	IKE_PROTO_ESP = 3,
};

enum ike_transform_type {
	IKE_TRANS_ENCR = 1,
	IKE_TRANS_PRF = 2,
	IKE_TRANS_INTEG = 3,
	IKE_TRANS_KE = 4,
	IKE_TRANS_ESN = 5,
};
#define IKE_ENCR_AES_CBC	   12
#define IKE_ENCR_AES_GCM_16	   20
#define IKE_ENCR_CHACHA20_POLY1305 28
#define IKE_ATTR_KEY_LENGTH	   14 /* transform attribute, TV format */

/* Notify message types used by the core (RFC 7296 3.10.1 and extensions). */
enum ike_notify_type {
	IKE_N_UNSUPPORTED_CRITICAL_PAYLOAD = 1,
	IKE_N_INVALID_IKE_SPI = 4,
	IKE_N_INVALID_MAJOR_VERSION = 5,
	IKE_N_INVALID_SYNTAX = 7,
	IKE_N_INVALID_MESSAGE_ID = 9,
	IKE_N_INVALID_SPI = 11,
	IKE_N_NO_PROPOSAL_CHOSEN = 14,
	IKE_N_INVALID_KE_PAYLOAD = 17,
	IKE_N_AUTHENTICATION_FAILED = 24,
	IKE_N_SINGLE_PAIR_REQUIRED = 34,
	IKE_N_NO_ADDITIONAL_SAS = 35,
	IKE_N_INTERNAL_ADDRESS_FAILURE = 36,
	IKE_N_FAILED_CP_REQUIRED = 37,
	IKE_N_TS_UNACCEPTABLE = 38,
	IKE_N_INVALID_SELECTORS = 39,
	IKE_N_TEMPORARY_FAILURE = 43,
	IKE_N_CHILD_SA_NOT_FOUND = 44,
	IKE_N_INITIAL_CONTACT = 16384,
	IKE_N_SET_WINDOW_SIZE = 16385,
	IKE_N_ADDITIONAL_TS_POSSIBLE = 16386,
	IKE_N_IPCOMP_SUPPORTED = 16387,
	IKE_N_NAT_DETECTION_SOURCE_IP = 16388,
	IKE_N_NAT_DETECTION_DESTINATION_IP = 16389,
	IKE_N_COOKIE = 16390,
	IKE_N_USE_TRANSPORT_MODE = 16391,
	IKE_N_REKEY_SA = 16393,
	IKE_N_ESP_TFC_PADDING_NOT_SUPPORTED = 16394,
	IKE_N_NON_FIRST_FRAGMENTS_ALSO = 16395,
	IKE_N_MOBIKE_SUPPORTED = 16396,
	IKE_N_MULTIPLE_AUTH_SUPPORTED = 16404,
	IKE_N_IKEV2_FRAGMENTATION_SUPPORTED = 16430, /* RFC 7383 */
	IKE_N_SIGNATURE_HASH_ALGORITHMS = 16431,     /* RFC 7427 */
};
/* Types below 16384 are errors (RFC 7296 3.10.1). */
#define IKE_N_IS_ERROR(t) ((t) < 16384)

enum ike_id_type {
	IKE_ID_IPV4_ADDR = 1,
	IKE_ID_FQDN = 2,
	IKE_ID_RFC822_ADDR = 3,
	IKE_ID_IPV6_ADDR = 5,
	IKE_ID_DER_ASN1_DN = 9,
	IKE_ID_DER_ASN1_GN = 10,
	IKE_ID_KEY_ID = 11,
};

enum ike_auth_method {
	IKE_AUTH_RSA_SIG = 1,
	IKE_AUTH_PSK = 2,
	IKE_AUTH_ECDSA_256 = 9,
	IKE_AUTH_ECDSA_384 = 10,
	IKE_AUTH_ECDSA_521 = 11,
	IKE_AUTH_DIGITAL_SIGNATURE = 14, /* RFC 7427 */
};

enum ike_ts_type {
	IKE_TS_IPV4_ADDR_RANGE = 7,
	IKE_TS_IPV6_ADDR_RANGE = 8,
};

/* ---- views of a received message ----------------------------------------------------------- */

struct ike_header {
	uint8_t spi_i[8], spi_r[8];
	uint8_t next;	  /* first payload type */
	uint8_t version;  /* IKE_VERSION for IKEv2 */
	uint8_t exchange; /* enum ike_exchange */
	uint8_t flags;	  /* enum ike_flags */
	uint32_t msg_id;
	uint32_t length;
};

struct ike_payload {
	uint8_t type;
	bool critical;
	const uint8_t *body; /* after the 4-byte generic header */
	size_t len;
	size_t offset; /* of the generic header within the message (SK's AAD ends there + 4) */
};

struct ike_msg {
	struct ike_header hdr;
	const uint8_t *raw; /* the whole message, hdr.length bytes */
	struct ike_payload pl[IKE_MAX_PAYLOADS];
	unsigned npl;
	/* When the chain ends in SK or SKF (which must be last, RFC 7296 3.14), that payload is
	 * the last entry; its inner payloads are parsed after decryption with ike_parse_chain. */
};

/* Parses the header only (28 bytes): a cheap first look for a receiver that routes by SPI.
 * Checks the version's major number, and that length is at least 28 and at most len. */
int ike_parse_header(const uint8_t *buf, size_t len, struct ike_header *hdr,
		     const char **why) SG_WUR;
/* Parses a whole message: header, then the payload chain, each generic header bounded by the
 * message. Unknown payload types are kept (the caller refuses critical ones with
 * UNSUPPORTED_CRITICAL_PAYLOAD, RFC 7296 2.5). Nothing may follow SK/SKF. */
int ike_parse(const uint8_t *buf, size_t len, struct ike_msg *msg, const char **why) SG_WUR;
/* Parses a payload chain starting with type `first` in buf (the decrypted SK content), appending
 * to msg->pl after the entries already there (SK itself is replaced). */
int ike_parse_chain(struct ike_msg *msg, uint8_t first, const uint8_t *buf, size_t len,
		    size_t base_offset, const char **why) SG_WUR;
/* The first payload of a type, the n-th one (0-based), or NULL. */
const struct ike_payload *ike_find(const struct ike_msg *msg, uint8_t type);
const struct ike_payload *ike_find_nth(const struct ike_msg *msg, uint8_t type, unsigned n);
/* The first Notify of a notify type, or NULL (its fields via ike_parse_notify). */
const struct ike_payload *ike_find_notify(const struct ike_msg *msg, uint16_t ntype);

/* ---- payload bodies ------------------------------------------------------------------------ */

struct ike_transform {
	uint8_t type;
	uint16_t id;
	uint16_t keylen; /* bits, from the Key Length attribute; 0 = none */
};

struct ike_proposal {
	uint8_t num;
	uint8_t protocol; /* enum ike_protocol */
	uint8_t spi_len;  /* 0 (IKE_SA_INIT), 4 (ESP/AH) or 8 (IKE rekey) */
	uint8_t spi[8];
	unsigned ntrans;
	struct ike_transform trans[IKE_MAX_TRANSFORMS];
};

struct ike_sa_payload {
	unsigned nprops;
	struct ike_proposal props[IKE_MAX_PROPOSALS];
};

/* SA (3.3): proposals numbered 1, 2, ... in order (a repeated number continues an AND-group,
 * which IKEv2 SAs never use: refused); SPI sizes by protocol; transforms with only the Key
 * Length attribute understood (others refused, as RFC 7296 3.3.5 allows for unknown
 * attributes: the proposal is rejected, which here rejects the payload). */
int ike_parse_sa(const uint8_t *body, size_t len, struct ike_sa_payload *sa,
		 const char **why) SG_WUR;

struct ike_ke {
	uint16_t group;
	const uint8_t *data;
	size_t len;
};
int ike_parse_ke(const uint8_t *body, size_t len, struct ike_ke *ke, const char **why) SG_WUR;

struct ike_id {
	uint8_t type;
	const uint8_t *data;
	size_t len;
	const uint8_t *body; /* the whole ID payload body: what AUTH signs (RFC 7296 2.15) */
	size_t body_len;
};
/* IPv4 4 bytes, IPv6 16, FQDN/RFC822 1..255 printable ASCII without NUL, DN and others
 * non-empty. */
int ike_parse_id(const uint8_t *body, size_t len, struct ike_id *id, const char **why) SG_WUR;

struct ike_auth {
	uint8_t method;
	const uint8_t *data;
	size_t len;
};
int ike_parse_auth(const uint8_t *body, size_t len, struct ike_auth *auth, const char **why) SG_WUR;

/* Nonce: 16..256 bytes. */
int ike_parse_nonce(const uint8_t *body, size_t len, const char **why) SG_WUR;

struct ike_notify {
	uint8_t protocol;
	uint8_t spi_len;
	uint16_t type;
	const uint8_t *spi;
	const uint8_t *data;
	size_t len;
};
int ike_parse_notify(const uint8_t *body, size_t len, struct ike_notify *n,
		     const char **why) SG_WUR;

struct ike_delete {
	uint8_t protocol;
	uint8_t spi_len;
	unsigned nspi;
	const uint8_t *spis; /* nspi * spi_len bytes */
};
/* IKE: SPI size 0 and no SPIs; ESP/AH: size 4, 1..IKE_MAX_DELETE_SPIS of them. */
int ike_parse_delete(const uint8_t *body, size_t len, struct ike_delete *d,
		     const char **why) SG_WUR;

struct ike_ts {
	uint8_t type; /* enum ike_ts_type */
	uint8_t proto;
	uint16_t port_start, port_end;
	uint8_t start[16], end[16]; /* 4 or 16 bytes used */
};
struct ike_ts_payload {
	unsigned n;
	struct ike_ts ts[IKE_MAX_TS];
};
/* TS (3.13): 1..IKE_MAX_TS selectors of the two address range types, each of its exact length,
 * start <= end for ports and addresses. */
int ike_parse_ts(const uint8_t *body, size_t len, struct ike_ts_payload *ts,
		 const char **why) SG_WUR;

struct ike_cert {
	uint8_t encoding; /* 4 = X.509 signature (RFC 7296 3.6) */
	const uint8_t *data;
	size_t len;
};
/* CERT and CERTREQ share the layout: an encoding byte and data (CERTREQ: concatenated 20-byte
 * SHA-1 hashes of CA public keys, so its length must be a multiple of 20). */
int ike_parse_cert(const uint8_t *body, size_t len, struct ike_cert *c, const char **why) SG_WUR;
int ike_parse_certreq(const uint8_t *body, size_t len, struct ike_cert *c, const char **why) SG_WUR;

struct ike_cp_attr {
	uint16_t type;
	const uint8_t *data;
	size_t len;
};
struct ike_cp {
	uint8_t cfg_type; /* 1 REQUEST, 2 REPLY, 3 SET, 4 ACK */
	unsigned nattr;
	struct ike_cp_attr attr[16];
};
int ike_parse_cp(const uint8_t *body, size_t len, struct ike_cp *cp, const char **why) SG_WUR;

struct ike_skf {
	uint16_t number, total; /* 1-based, number <= total */
	const uint8_t *enc;	/* what follows, as the SK payload's body */
	size_t enc_len;
};
int ike_parse_skf(const uint8_t *body, size_t len, struct ike_skf *f, const char **why) SG_WUR;

/* ---- building ------------------------------------------------------------------------------ */

#define IKE_BUF_NONE SIZE_MAX /* no such offset (open payload, SK, chain link) */
struct ike_buf {
	uint8_t *p;
	size_t len, cap;
	int err;
	size_t last_next; /* offset of the byte holding the previous payload's "next" field */
	size_t open;	  /* offset of the payload being built (for its length) */
	size_t sk;	  /* offset of the SK payload being built */
};

void ike_buf_init(struct ike_buf *b, uint8_t *mem, size_t cap);
/* Header; next payload and length are filled in as payloads are added and by ike_finish. */
void ike_put_header(struct ike_buf *b, const struct ike_header *h);
/* Opens a payload of `type` (chained from the previous one, or from the header), writes its
 * generic header; the body follows with ike_put_* and is closed by ike_end_payload. */
void ike_begin_payload(struct ike_buf *b, uint8_t type, bool critical);
void ike_end_payload(struct ike_buf *b);
void ike_put_bytes(struct ike_buf *b, const void *p, size_t n);
void ike_put_u8(struct ike_buf *b, uint8_t v);
void ike_put_u16(struct ike_buf *b, uint16_t v);
void ike_put_u32(struct ike_buf *b, uint32_t v);
/* Whole payloads. */
void ike_put_sa(struct ike_buf *b, const struct ike_sa_payload *sa);
void ike_put_ke(struct ike_buf *b, uint16_t group, const uint8_t *data, size_t len);
void ike_put_nonce(struct ike_buf *b, const uint8_t *n, size_t len);
void ike_put_notify(struct ike_buf *b, uint8_t protocol, const uint8_t *spi, uint8_t spi_len,
		    uint16_t type, const uint8_t *data, size_t len);
void ike_put_id(struct ike_buf *b, uint8_t pl_type, uint8_t id_type, const uint8_t *data,
		size_t len);
void ike_put_auth(struct ike_buf *b, uint8_t method, const uint8_t *data, size_t len);
void ike_put_ts(struct ike_buf *b, uint8_t pl_type, const struct ike_ts_payload *ts);
void ike_put_delete(struct ike_buf *b, uint8_t protocol, uint8_t spi_len, const uint8_t *spis,
		    unsigned nspi);
void ike_put_cert(struct ike_buf *b, uint8_t pl_type, uint8_t encoding, const uint8_t *data,
		  size_t len);
/* Sets the header's length field. 0 or the sticky error (SG_EFULL). */
int ike_finish(struct ike_buf *b) SG_WUR;

/* ---- SK payload (3.14) ---------------------------------------------------------------------*/

/* The keys of one direction of an IKE SA. */
struct ike_sk_keys {
	uint64_t iv_counter;  /* AEAD: the next explicit IV (RFC 5282 3.1: never repeats) */
	uint16_t encr;	      /* IKE_ENCR_* */
	uint16_t encr_bits;   /* key length */
	uint16_t integ;	      /* SG_INTEG_*; 0 with an AEAD */
	uint8_t ek[36];	      /* encryption key (|| 4-byte salt for AEAD) */
	uint8_t ak[64];	      /* integrity key */
	struct sg_aead *aead; /* AEAD: keyed once (ipsec.h); NULL for CBC */
};
/* Sets up the keys (derives nothing: ek/ak are filled in by the key schedule). 0, SG_EINVAL
 * (unknown combination), SG_ENOMEM. */
int ike_sk_keys_init(struct ike_sk_keys *k, uint16_t encr, uint16_t encr_bits, uint16_t integ,
		     const uint8_t *ek, const uint8_t *ak, bool encrypt) SG_WUR;
void ike_sk_keys_wipe(struct ike_sk_keys *k);
/* Bytes the SK payload adds around `inner` bytes of inner payloads, at most (IV, padding,
 * pad length, ICV). */
size_t ike_sk_overhead(const struct ike_sk_keys *k);

/* Wraps what has been built after the SK generic header as the SK payload: `b` holds the
 * header and zero or more plain payloads, then ike_begin_sk was called, then the inner payloads
 * were added. ike_seal_sk pads, encrypts in place, appends the ICV and sets every length, so
 * the buffer is the finished message. */
void ike_begin_sk(struct ike_buf *b, const struct ike_sk_keys *k);
int ike_seal_sk(struct ike_buf *b, struct ike_sk_keys *k) SG_WUR;

/* Verifies and decrypts msg's SK payload in place (msg->raw must be writable: pass the
 * caller's buffer) and parses the inner chain into msg. SG_EAUTH on a bad ICV (counted and
 * dropped by the caller: RFC 7296 2.21.2), SG_EPARSE on a bad padding or inner chain. */
int ike_open_sk(struct ike_msg *msg, uint8_t *buf, const struct ike_sk_keys *k,
		const char **why) SG_WUR;
/* Builds one fragment message (RFC 7383 2.5) into `out`: the header h (its next payload and
 * length are set here), an SKF payload numbered number of total with `first` (the inner chain's
 * first payload type) in fragment 1, and pt_len bytes of the inner chain encrypted as in the SK
 * payload. 0, SG_ERANGE (bad numbers, or cap too small), SG_ECRYPTO. */
int ike_seal_skf(const struct ike_header *h, uint8_t first, uint16_t number, uint16_t total,
		 const uint8_t *pt, size_t pt_len, struct ike_sk_keys *k, uint8_t *out, size_t cap,
		 size_t *out_len) SG_WUR;
/* Instead of ike_seal_sk: seals the inner payloads built after ike_begin_sk (SK must be the
 * first payload) as fragment messages of at most max_msg bytes each, at most max_frags of them,
 * into `out` as a list of [4-byte big-endian length][message]; *out_len the list's bytes,
 * *count the fragments. 0, SG_ERANGE (too many fragments, max_msg too small, cap too small),
 * SG_EINVAL, SG_ECRYPTO. */
int ike_fragment_sk(struct ike_buf *b, struct ike_sk_keys *k, size_t max_msg, unsigned max_frags,
		    uint8_t *out, size_t cap, size_t *out_len, unsigned *count) SG_WUR;
/* Verifies and decrypts one SKF fragment (RFC 7383 2.5: the ICV and AEAD associated data cover
 * the IKE header and the SKF header with its fragment numbers) in place; *content and *len are
 * the fragment's decrypted bytes for reassembly; *first the inner first payload type (only
 * meaningful in fragment 1). */
int ike_open_skf(const struct ike_msg *msg, uint8_t *buf, const struct ike_sk_keys *k,
		 const uint8_t **content, size_t *len, uint8_t *first, const char **why) SG_WUR;

#endif
