/* License keys (docs/SERVER.md, "Licenses"): a small signed text document, verified offline.
 *
 *   SecureGuard license v1
 *   id: 2027-0042
 *   customer: Example GmbH
 *   seats: 250
 *   features: ha,hsm
 *   not_before: 2026-12-01T00:00:00Z
 *   expiry: 2027-12-01T00:00:00Z
 *   signature: <base64 of r || s, 96 bytes>
 *
 * The canonical bytes are the lines before "signature:", each ending in "\n", in this order,
 * each in the only spelling the parser accepts (so parsing and writing out again gives the same
 * bytes): id 1-64 of [A-Za-z0-9._-]; customer 1-128 bytes of UTF-8 without control characters
 * and without leading or trailing spaces; seats a decimal 1..10000000 without leading zeros;
 * features empty or up to 16 names of [a-z0-9-] (1-32 each), comma-separated, ascending, no
 * repeats; times RFC 3339 in UTC to the second, a real date, not_before before expiry. The
 * signature is ECDSA P-384 with SHA-384 over those bytes (r || s, each 48 bytes big-endian, as
 * JWS ES384), base64 with padding. Nothing may follow the signature line but its newline.
 *
 * Who may sign: the vendor key built in (CMake SG_LICENSE_VENDOR_KEY), and the test key
 * (tests/license/test-vendor.key) only in a build with SG_LICENSE_TEST_KEY (make check's). */
#ifndef SG_SERVER_LICENSE_H
#define SG_SERVER_LICENSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"

#define SRV_LICENSE_MAX_BYTES	 4096
#define SRV_LICENSE_MAX_FEATURES 16
/* Clients an instance without a license may have (docs/SERVER.md): above what make demo and
 * every test make, below what a real deployment needs. */
#define SRV_FREE_CLIENTS 250
/* After expiry the license keeps its seats this long, with warnings. */
#define SRV_LICENSE_GRACE_SECS (14 * 86400)

struct srv_license {
	char id[65];
	char customer[129];
	int64_t seats;
	char features[SRV_LICENSE_MAX_FEATURES][33];
	int nfeatures;
	int64_t not_before, expiry; /* Unix seconds */
	uint8_t sig[96];
	size_t canon_len; /* bytes of the file that are signed (the canonical form) */
	bool test_key;	  /* srv_license_verify: signed by the test key */
};

/* Parses a license file (bounded, no I/O): 0, or SG_EPARSE with *why naming the line and what
 * is wrong. Does not check the signature. */
int srv_license_parse(const char *buf, size_t len, struct srv_license *l, const char **why) SG_WUR;
/* The canonical bytes of l (without the signature line) into out; their length, or 0 when cap
 * is too small. */
size_t srv_license_canonical(const struct srv_license *l, char *out, size_t cap);
/* Checks l's signature over its canonical bytes against the keys this build accepts; sets
 * l->test_key. 0 or SG_EAUTH with *why. */
int srv_license_verify(struct srv_license *l, const char **why) SG_WUR;
/* Reads, parses and verifies a license file; err says what and where. */
int srv_license_load(const char *path, struct srv_license *l, char *err, size_t errlen) SG_WUR;
/* Signs l (its fields) with a vendor key file (96 hex digits, the P-384 scalar) and writes the
 * whole license text to out (SRV_LICENSE_MAX_BYTES). */
int srv_license_sign(struct srv_license *l, const char *key_file, char *out, size_t cap,
		     char *err, size_t errlen) SG_WUR;
/* True if this build accepts licenses of the test key. */
bool srv_license_test_build(void);

enum srv_license_state {
	SRV_LIC_NONE,	 /* no license: the free edition */
	SRV_LIC_VALID,	 /* between not_before and expiry */
	SRV_LIC_EARLY,	 /* before not_before: the free edition until then */
	SRV_LIC_GRACE,	 /* expired less than SRV_LICENSE_GRACE_SECS ago: still its seats */
	SRV_LIC_EXPIRED, /* past the grace: the free edition */
};
/* The state of l (NULL: none) at now, and the number of clients it allows (never fewer than
 * the free edition's). */
enum srv_license_state srv_license_state(const struct srv_license *l, int64_t now,
					 int64_t *client_limit);
const char *srv_license_state_name(enum srv_license_state st);
/* "2027-12-01T00:00:00Z" (21 bytes with the NUL). */
void srv_license_time(char out[21], int64_t t);

#endif
