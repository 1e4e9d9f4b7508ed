/* Shared parts of the IKE payload fuzz targets (fuzz_ike_*.c): each target feeds its input to
 * one payload parser of src/ike/msg.c as a payload body. Every rejection must say why; every
 * accepted body must satisfy the parser's documented bounds, and for the payloads the core also
 * builds (SA, TS, Delete, Notify) the builder's encoding must parse back to the same fields. */
#ifndef SG_TESTS_FUZZ_IKE_FUZZ_H
#define SG_TESTS_FUZZ_IKE_FUZZ_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ike/ike_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline void ike_fuzz_need(int cond)
{
	if (!cond)
		abort();
}

/* Checks that a failing parser said why. */
#define IKE_FUZZ_RC(rc, why)                                                                       \
	do {                                                                                       \
		if ((rc) != 0) {                                                                   \
			ike_fuzz_need((why) != NULL);                                              \
			return 0;                                                                  \
		}                                                                                  \
	} while (0)

/* Builds a payload into a fresh buffer and returns its body for re-parsing. */
static inline const uint8_t *ike_fuzz_body(struct ike_buf *b, size_t *len)
{
	ike_fuzz_need(b->err == 0 && b->len >= IKE_PAYLOAD_HDR_LEN);
	ike_fuzz_need(((size_t)b->p[2] << 8 | b->p[3]) == b->len);
	*len = b->len - IKE_PAYLOAD_HDR_LEN;
	return b->p + IKE_PAYLOAD_HDR_LEN;
}

#endif
