/* Tamper-evident audit log (docs/AUDIT.md).
 *
 * Every row of audit_log carries hash = hex(SHA-384(canonical(row) || prev_hash)), where
 * prev_hash is the previous row's hash (96 zeros for the first row). Triggers refuse UPDATE and
 * DELETE on both engines; the chain exists because a database superuser can drop triggers, and a
 * changed, removed or reordered row then still shows up in sg_audit_verify or in an offline check
 * of an export (`secureguard audit verify --file`).
 */
#ifndef SG_SERVER_AUDIT_H
#define SG_SERVER_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"
#include "server/db.h"

#define SG_AUDIT_NFIELDS      11
#define SG_AUDIT_HASH_HEX_LEN 96	 /* SHA-384 as lowercase hex */
#define SG_AUDIT_FIELD_MAX    (1u << 20) /* longest field accepted in a row or an export */

/* Field order of the canonical encoding and of the exports (after id and ts). */
struct sg_audit_event {
	const char *event_type, *actor_id, *actor_type, *actor_name, *resource_type, *resource_id,
	    *resource_name, *action, *details /* JSON text or NULL */, *source_ip, *user_agent;
};

/* Appends one row inside the caller's open transaction (sg_db_begin): reads the last hash,
 * computes hash = hex(SHA-384(canonical(row) || prev_hash)), inserts. Appends are serialized (a
 * transaction-level advisory lock on PG; BEGIN IMMEDIATE already serializes SQLite). ts is now in
 * ms. event_type is required. On PostgreSQL the transaction must be READ COMMITTED (sg_db_begin's
 * default), so that the newest row is read after the lock. Outside a transaction it opens and
 * commits its own. Returns 0 or negative SG_E* (SG_EAGAIN: retry the transaction). */
int sg_audit_append(struct sg_db_conn *c, const struct sg_audit_event *ev);
/* Re-checks the whole chain; on a break returns SG_EAUTH and sets *bad_id to the first bad row
 * (err says why: "hash mismatch", "row N missing", "out of order", "prev_hash mismatch").
 * On success *bad_id is 0 and err says "audit chain intact: N rows". */
int sg_audit_verify(struct sg_db *db, int64_t *bad_id, char *err, size_t errlen) SG_WUR;
/* The canonical hash of one row as exported (so exports verify offline); fields as text in
 * struct sg_audit_event order, NULL = SQL NULL. out_hex gets 96 lowercase hex digits + NUL. */
int sg_audit_row_hash(char out_hex[97], int64_t id, int64_t ts_ms, const char *const fields[11],
		      const char *prev_hash_hex) SG_WUR;
/* Checks an export file (JSON array or CSV, chosen by content) the same way as sg_audit_verify.
 * *nrows gets the number of rows checked. */
int sg_audit_verify_file(const char *path, int64_t *bad_id, int64_t *nrows, char *err,
			 size_t errlen) SG_WUR;
/* A row hash recorded outside the database (the server logs `event=audit_anchor id=N hash=H`):
 * the one thing that detects a table rewritten and re-hashed from some row on. */
struct sg_audit_anchor {
	int64_t id;
	char hash[SG_AUDIT_HASH_HEX_LEN + 1]; /* lowercase hex */
};
/* Parses "ID:HASH" (ID >= 1, 96 hex digits of either case). 0 or SG_EINVAL. */
int sg_audit_anchor_parse(struct sg_audit_anchor *a, const char *s) SG_WUR;
/* As sg_audit_verify / sg_audit_verify_file, and each anchor's row must exist and have exactly
 * that hash (else SG_EAUTH, *bad_id the anchor's row, err naming the anchor). */
int sg_audit_verify_anchored(struct sg_db *db, const struct sg_audit_anchor *anchors,
			     size_t nanchors, int64_t *bad_id, char *err, size_t errlen) SG_WUR;
int sg_audit_verify_file_anchored(const char *path, const struct sg_audit_anchor *anchors,
				  size_t nanchors, int64_t *bad_id, int64_t *nrows, char *err,
				  size_t errlen) SG_WUR;
/* The newest row's id and hash (0 and 96 zeros for an empty log). */
int sg_audit_head(struct sg_db_conn *c, int64_t *id, char hash[SG_AUDIT_HASH_HEX_LEN + 1]) SG_WUR;

/* UTF-8 (RFC 3629): true when s[0..len) is well-formed (no overlong forms, no surrogates). */
bool sg_utf8_valid(const char *s, size_t len);
/* Replaces every byte that does not start a well-formed sequence with '?', in place; returns
 * how many were replaced. */
size_t sg_utf8_sanitize(char *s);

/* `secureguard audit verify --db URL` and `secureguard audit verify --file EXPORT.json|.csv`.
 * argv[0] is "audit". Returns the process exit status: 0 intact, 1 broken, 2 usage/other error. */
int sg_audit_cmd(int argc, char **argv);

#endif
