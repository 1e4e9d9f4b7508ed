/* Internals of the management server shared by its files (not a public API).
 *
 * A request goes: http.c (body, limits, routing, authentication, metrics) -> a route handler
 * (auth.c, routes_*.c) that validates its input, runs one database transaction with the audit
 * row inside it, and fills a struct srv_resp. Handlers never see the connection: only
 * struct srv_req and the response helpers below.
 */
#ifndef SG_SERVER_SRV_INT_H
#define SG_SERVER_SRV_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/bytes.h"
#include "common/compiler.h"
#include "server/db.h"
#include "server/license.h"
#include "server/proxy.h"

#define SRV_ID_LEN 36 /* UUIDv4 text */
/* A request id: at most 64 characters of [A-Za-z0-9._:-] (one from a trusted proxy), plus NUL. */
#define SRV_REQUEST_ID_MAX 65

/* The value of one hex digit, or -1 (common/bytes.h's, under the server's old name). */
static inline int srv_hexval(char c)
{
	return sg_hexval(c);
}

/* A row count or a negative SG_E* code -> 0 or the code. */
static inline int srv_neg(int rc)
{
	return rc < 0 ? rc : 0;
}

enum srv_role { ROLE_NONE = 0, ROLE_VIEWER = 1, ROLE_ADMIN = 2, ROLE_SUPER = 3 };

enum srv_principal_kind {
	PRINCIPAL_NONE,
	PRINCIPAL_USER,
	PRINCIPAL_APIKEY,
	PRINCIPAL_CLIENT,
	PRINCIPAL_AGENT /* a managed node's session (routes_agents.c) */
};

struct srv_principal {
	enum srv_principal_kind kind;
	enum srv_role role;
	/* A user whose instance requires a second factor and who has none yet: only the routes
	 * marked AUTH_MFA_SETUP (enrol, who am I, logout) let him through. */
	bool needs_2fa;
	char id[SRV_ID_LEN + 1];      /* user id, API key id, client id or agent id */
	char user_id[SRV_ID_LEN + 1]; /* the owning admin user (users and API keys) */
	char name[256];		      /* e-mail, "apikey:<name>" or the client's name */
};

struct srv {
	struct sg_db *db;
	/* --license (licensing.c, docs/SERVER.md "Licenses"): read once at start, read-only after. */
	struct srv_license license;
	bool has_license;
	uint8_t jwt_key[48];   /* HS384 key, HKDF from the master key */
	uint8_t enc_key[32];   /* AES-256-GCM key for private keys at rest */
	uint8_t auth_priv[32]; /* X25519 key clients authenticate against */
	uint8_t auth_pub[32];
	uint8_t chal_key[32]; /* HMAC key of client-auth challenges (stateless) */
	uint8_t psk_key[32];  /* derives the pre-shared keys of topology pairs (policies) */
	uint8_t etag_key[32]; /* keys the revisions of agents' configurations */
	uint8_t cursor_key[32]; /* MACs the cursors of list pages (cursor.h) */
	/* The OpenID provider's ES384 key (routes_oidc.c): the scalar, its JWK point, its key id
	 * (RFC 7638 thumbprint, base64url). */
	uint8_t oidc_priv[48];
	uint8_t oidc_x[48], oidc_y[48];
	char oidc_kid[48];
	/* The TLS transport's session-token key (routes_vpn.c, docs/TLS.md "Session tokens"): its
	 * own ES384 key, so a token and an ID token can never stand for each other. */
	uint8_t tlstok_priv[48];
	uint8_t tlstok_x[48], tlstok_y[48];
	char tlstok_kid[48];
	int oidc_ttl; /* ID token lifetime: the gateways' login sessions, seconds */
	int agent_poll;	      /* seconds agents wait between polls when no push arrives */
	int access_ttl;	      /* seconds */
	int refresh_ttl;      /* seconds */
	int session_ttl;      /* client session tokens, seconds */
	int lockout_after;    /* failed logins before an account is locked */
	int lockout_secs;
	struct srv_proxies proxies; /* --trusted-proxy (proxy.h): read-only after start */
	int ip_fail_limit;  /* failed logins per source IP per window */
	int ip_fail_window; /* seconds */
	size_t max_body;
	bool tls;
	/* For GET /api/certificates (routes_console.c): the HTTPS certificate this server was
	 * started with (read once: the listener does not reload it), and when the master key file,
	 * which every signing key is derived from (keys.c), was written. */
	int64_t tls_not_before, tls_not_after; /* 0: no certificate, or unreadable */
	char tls_subject[128];
	char tls_cert_path[256];
	char tls_cert_err[160];
	int64_t master_key_mtime;
	char base_url[256]; /* --public-url, for temporary access links; "" = the local address */
	char listen[128];   /* host:port as given */
	char console_dir[512]; /* the admin console's built files; "" = none (routes_console.c) */
};

/* A header or query parameter: name and value, NUL-terminated. */
struct srv_kv {
	const char *name, *value;
};

#define SRV_MAX_QUERY 32

struct api_route;

struct srv_req {
	const struct api_route *route; /* the matched route (api.h) */
	const char *method; /* as received: GET, HEAD, POST, PUT, DELETE, ... */
	const char *target; /* the request target as received; never logged (tokens) */
	const struct srv_kv *headers; /* names in lower case */
	int nheaders;
	char *body;
	size_t body_len;
	json_t *json; /* the parsed body of POST/PUT, an object */
	/* Decoded by http.c before the route runs: */
	struct srv_kv query[SRV_MAX_QUERY];
	int nquery;
	const char *params[2];
	int nparams;
	char *decoded; /* storage of query and params */
	struct srv_principal who;
	char source_ip[64]; /* the client's address (proxy.h: behind a --trusted-proxy, forwarded) */
	bool from_proxy;    /* the TCP peer is a --trusted-proxy */
	char local_addr[64]; /* the address the client reached: "192.0.2.1:8080", "[::1]:8080" */
	char user_agent[256];
	/* A request parked by srv_park and run again: true on its last run (the wait is over). */
	bool park_expired;
	/* Kept by the HTTP front across the runs of a parked request: the id (X-Request-Id,
	 * SRV_REQUEST_ID_MAX bytes; "" until srv_http_handle sets it on the first run) and when
	 * the first run began (CLOCK_MONOTONIC). */
	char *request_id;
	const struct timespec *started;
	/* How long the complete request waited for a handler thread before its first run (ms;
	 * the access log's queue_ms: the part of a client's latency that duration_ms omits). */
	double queue_ms;
};

/* A streamed body: fills buf with up to max bytes; returns the count, 0 at the end, or -1 on an
 * error (the connection is then cut short, which the client sees as a truncated transfer). */
typedef long (*srv_stream_fn)(void *cls, char *buf, size_t max);

struct srv_resp {
	int status;
	char ctype[96];
	char *body; /* malloc'd */
	size_t len;
	char headers[4096]; /* extra header lines, each "Name: value\r\n" (a Location may be long) */
	size_t hlen;
	srv_stream_fn stream; /* instead of body: sent chunked */
	void (*stream_free)(void *cls);
	void *stream_cls;
	bool close; /* close the connection after this response */
	/* srv_park: instead of answering, wait up to park_ms and run the request again when
	 * something changes (srv_httpd_wake) or the time is up. */
	int park_ms;
};

/* ---- responses (http.c) ---- */
/* JSON body; takes ownership of j. */
void srv_json(struct srv_resp *out, int status, json_t *j);
/* {"error": msg, "field": field} (field NULL: omitted). Never put secrets in msg. */
void srv_error(struct srv_resp *out, int status, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A body copied from buf with the given content type; disposition may be NULL. */
void srv_body(struct srv_resp *out, int status, const char *ctype, const void *buf, size_t len,
	      const char *disposition);
/* The same without a copy: out takes buf (malloc'd, len bytes). */
void srv_body_take(struct srv_resp *out, int status, const char *ctype, char *buf, size_t len);
/* A streamed body (sent with chunked transfer coding); out owns cls from here on and calls
 * free_fn(cls) when done (also when the response is replaced or never sent). */
void srv_stream(struct srv_resp *out, int status, const char *ctype, const char *disposition,
		srv_stream_fn fn, void (*free_fn)(void *cls), void *cls);
/* Adds a header line to the response ("Retry-After", "3"); names and values with CR, LF or
 * NUL, or past the room left, are dropped (false). */
bool srv_resp_header(struct srv_resp *out, const char *name, const char *value);
/* Parks the request (a long poll): no answer now; the front runs it again after
 * srv_httpd_wake() or once ms have passed since its first run (then with r->park_expired).
 * The 204 set here is the answer if it cannot wait (the server is stopping). */
void srv_park(struct srv_resp *out, int ms);
/* An RFC 9457 problem document with a list of problems (each {"field", "detail"}) in
 * "errors" and caveats in "warnings" (either may be NULL); takes ownership of both. */
void srv_problems(struct srv_resp *out, int status, const char *detail, json_t *errors,
		  json_t *warnings);
/* Frees what the response holds and empties it. */
void srv_resp_clear(struct srv_resp *out);
/* Retry-After (RFC 9110 section 10.2.3) in seconds, at least 1: every 429 and 503. */
void srv_retry_after(struct srv_resp *out, int secs);
/* 500 after a database error (the message goes to the log, not to the client). */
void srv_dberr(struct srv_resp *out, struct sg_db_conn *c, int rc);

struct srv_httpd;
/* The front whose connection counters /metrics includes (NULL: none). */
void srv_http_set_front(const struct srv_httpd *h);

/* ---- request helpers (http.c) ---- */
#define SRV_MAX_SEGMENTS 16
struct srv_target {
	char *seg[SRV_MAX_SEGMENTS]; /* decoded path segments */
	int nseg;
};
/* Decodes r->target strictly into path segments and r->query (storage in r->decoded, which
 * the caller frees); false with a 400/404 in out. Exposed for the fuzz target. */
bool srv_http_decode_target(struct srv_req *r, struct srv_resp *out, struct srv_target *t);
/* Query parameter value or NULL. */
const char *srv_query(struct srv_req *r, const char *name);
/* Fails with a 400 on a query parameter not in the NULL-terminated allowed list. */
bool srv_query_check(struct srv_req *r, struct srv_resp *out, const char *const *allowed);
const char *srv_header(struct srv_req *r, const char *name);
/* The value of cookie name in a Cookie header (RFC 6265 section 5.4), copied into out; false
 * when absent or longer than len - 1. */
bool srv_cookie(const char *header, const char *name, char *out, size_t len);
/* A form body (application/x-www-form-urlencoded) into an object of strings, as strictly as
 * query strings: a bad escape, NUL, bytes that are not UTF-8, a pair without '=' or a name given
 * twice is a 400 naming it. NULL with out set. Exposed for the fuzz target. */
json_t *srv_http_form(const char *body, size_t len, struct srv_resp *out);
/* Serialized log line (sg_log is single-threaded by design; the server is not). */
void srv_log(int level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* For events an attacker can cause at will (refused connections, rate-limited logins, locks):
 * every occurrence counts in secureguard_events_total{event}, and at most one line per event is
 * logged every SRV_LOG_LIMIT_SECS, saying how many were not (suppressed=N). */
#define SRV_LOG_LIMIT_SECS 10
void srv_log_limited(int level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- validation (util.c) ---- */
enum field_type { F_STR, F_INT, F_BOOL, F_STRLIST };
struct field_spec {
	const char *name;
	enum field_type type;
	bool required;
	bool nullable;
};
/* Body must be an object with only the listed fields, each of its type; 400 otherwise. */
bool srv_check_fields(struct srv_req *r, struct srv_resp *out, const struct field_spec *spec,
		      size_t n);
/* Cheap structural limits checked before a body is parsed: at most SRV_JSON_MAX_DEPTH nested
 * arrays/objects and SRV_JSON_MAX_ITEMS values. false with why set ("nested deeper than..."). */
#define SRV_JSON_MAX_DEPTH 32
#define SRV_JSON_MAX_ITEMS 10000
bool srv_json_prescan(const char *b, size_t n, char *why, size_t whylen);
/* A text field without control characters, 1..max bytes, valid UTF-8 (jansson checks). */
bool srv_valid_text(const char *s, size_t max, bool allow_empty);
/* Parses a decimal integer query parameter in [lo, hi]; 400 on error. */
bool srv_query_int(struct srv_req *r, struct srv_resp *out, const char *name, int64_t lo,
		   int64_t hi, int64_t *val, int64_t dflt);
bool srv_query_bool(struct srv_req *r, struct srv_resp *out, const char *name, int *val);

/* ---- text (text.c) ---- */
/* Refuses control and invisible characters (Unicode Cc, Cf, Cs, Co, Cn, Zl, Zp) and, for a
 * name, a space at either end; why says which. s must be valid UTF-8. */
bool srv_text_check(const char *s, bool name, const char **why);
/* Unicode NFC of s (malloc'd), or NULL when out of memory. */
char *srv_text_nfc(const char *s);
/* NFC and case-folded (malloc'd): the key two names or e-mail addresses compare by. */
char *srv_text_fold(const char *s);

/* ---- addresses (util.c) ---- */
struct srv_prefix {
	int family; /* 4 or 6 */
	uint8_t addr[16];
	int len;
};
/* Parses "A/N" strictly (canonical network address: host bits zero). why gets a reason. */
int srv_prefix_parse(struct srv_prefix *p, const char *s, bool host_bits_ok, const char **why);
void srv_prefix_format(char out[64], const struct srv_prefix *p);
int srv_addr_parse(int *family, uint8_t addr[16], const char *s);
void srv_addr_format(char out[64], int family, const uint8_t addr[16]);
/* Validates a JSON array of prefixes into a comma-separated canonical list (malloc'd). */
char *srv_prefix_list(json_t *arr, bool addresses_only, const char **why);
/* "host:port" or "[v6]:port". */
bool srv_valid_endpoint(const char *s);
/* Lowest free host address of p not in used[0..n) (text, any form). SG_EFULL when none. */
int srv_alloc_addr(char out[64], const struct srv_prefix *p, char **used, int n);

/* ---- misc (util.c) ---- */
void srv_uuid(char out[SRV_ID_LEN + 1]);
int64_t srv_now(void);
void srv_b64url(char *out, const uint8_t *in, size_t len); /* out: 4*ceil(len/3)+1 bytes */
int srv_b64url_decode(uint8_t *out, size_t outmax, const char *in, size_t len); /* bytes or <0 */
void srv_b64(char *out, const uint8_t *in, size_t len); /* standard, padded */
int srv_b64_decode(uint8_t *out, size_t outmax, const char *in, size_t len);
void srv_hex(char *out, const uint8_t *in, size_t len);
/* hex(SHA-384(s)): how tokens are stored (constant-time lookup through the index). */
void srv_token_hash(char out[97], const char *token);
/* prefix + base64url(32 random bytes). */
void srv_new_token(char out[64], const char *prefix);
const char *srv_role_name(enum srv_role r);
enum srv_role srv_role_parse(const char *s);
char *srv_i64(char buf[24], int64_t v);

/* Result row to a JSON object: kinds[i] per column: 's' text, 'i' integer, 'b' boolean,
 * 'l' comma list -> array, 'j' JSON text, '-' skipped. */
json_t *srv_row_json(const struct sg_db_res *res, int row, const char *kinds);
/* The one row sql (one parameter: id) selects, as srv_row_json makes it; NULL when there is
 * none (or on an error). */
json_t *srv_row_get(struct sg_db_conn *c, const char *sql, const char *id, const char *kinds);
/* The same row written as JSON text (the same keys and values, in column order). */
void srv_row_json_text(FILE *f, const struct sg_db_res *res, int row, const char *kinds);
/* One page of a filtered list, answered as {"items", "total", "limit", "offset"}: counts the rows
 * of `table` matching `where` (" AND col = $k" clauses over params[0..n-1]), then selects `cols`
 * ordered by `order` with LIMIT/OFFSET, each row rendered with srv_row_json(kinds). params must
 * have room for n + 2 entries. Database errors are answered too. */
void srv_list_page(struct srv *s, struct srv_resp *out, const char *table, const char *cols,
		   const char *kinds, const char *where, const char *order, const char **params,
		   int n, int64_t limit, int64_t offset);

/* The same for a list that also pages by cursor (list.c, cursor.h), in the order of ks: limit,
 * offset and cursor are read from r; the page carries next_cursor. A cursor is answered with a
 * 400 naming it when it is altered or of another list or filter, or given with offset. params
 * must have room for n + 3 entries (n at most 8). */
enum srv_keyset {
	SRV_KEYSET_NONE,
	SRV_KEYSET_CREATED_ID, /* ORDER BY created_at, id: an index on (created_at, id) */
	SRV_KEYSET_ID_DESC,    /* ORDER BY id DESC over an integer primary key (the logs) */
};
void srv_list_keyset(struct srv *s, struct srv_req *r, struct srv_resp *out, const char *table,
		     const char *cols, const char *kinds, const char *where, const char **params,
		     int n, enum srv_keyset ks);

int64_t srv_res_i64(const struct sg_db_res *res, int row, int col);
/* The validated limit and offset query parameters of a list route (or their defaults). */
int64_t srv_limit(struct srv_req *r);
int64_t srv_offset(struct srv_req *r);

/* Audit row for the current request inside the open transaction. details may be NULL; it is
 * serialized compactly and kept (not stolen). */
int srv_audit(struct sg_db_conn *c, struct srv_req *r, const char *event, const char *rtype,
	      const char *rid, const char *rname, const char *action, json_t *details) SG_WUR;
/* The same for the server itself (background sweep, bootstrap). */
int srv_audit_system(struct sg_db_conn *c, const char *event, const char *rtype, const char *rid,
		     const char *rname, const char *action, json_t *details) SG_WUR;

/* ---- crypto helpers (keys.c) ---- */
/* Reads or creates the master key file (64 random bytes, mode 0600) and derives every key.
 * key_uri (NULL: none): a PKCS#11 URI of a P-384 key that seals the master key (the file then
 * holds the sealed form only, see keys.c). */
int srv_keys_load(struct srv *s, const char *path, const char *key_uri, char *err,
		  size_t errlen);
/* `secureguard server seal-key`: replaces the plain master key in path by the same key sealed
 * by the token key uri (opened once through the token first; the file is replaced whole). */
int srv_keys_seal(const char *path, const char *uri, char *err, size_t errlen);
/* The sealed master key file (keys.c), parsed without I/O: 0 or SG_EPARSE with *why. */
struct srv_sealed_master {
	uint8_t token_pub[49], eph_pub[49];
	uint8_t sealed[12 + 64 + 16];
};
int srv_master_sealed_parse(const char *buf, size_t len, struct srv_sealed_master *m,
			    const char **why) SG_WUR;
/* AES-256-GCM of a private key text under the at-rest key, bound to client id and kind. */
char *srv_seal(const struct srv *s, const char *plain, const char *client_id, const char *kind);
/* Inverse; NULL on a bad blob. Wipe and free the result with srv_free_secret. */
char *srv_open(const struct srv *s, const char *blob, const char *client_id, const char *kind);
void srv_free_secret(char *p);

/* ---- passwords (pwhash.c) ---- */
/* Encoded hash: argon2id, or PBKDF2-HMAC-SHA-384 when fips. NULL on failure. */
char *srv_pw_hash(const char *password, bool fips);
/* 1 when password matches encoded, 0 when not; SG_EAGAIN without checking when too many checks
 * are already waiting for a turn (at most one per core runs at a time). Logins from a known
 * source (the account logged in from it before) and the others wait in separate counts. */
int srv_pw_check(const char *encoded, const char *password, bool known);
/* At most n checks of known sources, and n / 2 of the others, wait for a turn (default 64); set
 * from the number of request workers. */
void srv_pw_limit_waiting(int n);
/* Password hashes verified since start (secureguard_password_checks_total). */
unsigned long long srv_pw_checks(void);

/* ---- key-possession challenges (auth.c), shared by client and agent logins ---- */
#define SRV_CHALLENGE_LEN 32
/* Ours, not expired, not used yet (does not mark it used). */
bool srv_challenge_valid(const struct srv *s, const uint8_t ch[SRV_CHALLENGE_LEN]);
/* After a valid proof: remembers the challenge until it expires. NULL, else why not. */
const char *srv_challenge_spend(const uint8_t ch[SRV_CHALLENGE_LEN]);

/* A key-possession proof: proof = HMAC-SHA-384(X25519(holder_priv, auth_pub), label ||
 * challenge || pub || auth_pub), over a valid challenge (spent when the proof holds). known:
 * whether pub belongs to anyone. NULL when it holds, else why not (for the log and audit). */
const char *srv_key_proof(struct srv *s, bool known, const uint8_t pub[32],
			  const uint8_t ch[SRV_CHALLENGE_LEN], const uint8_t proof[48],
			  const char *label);

/* ---- JWT (auth.c) ---- */
struct srv_jwt {
	char sub[SRV_ID_LEN + 1]; /* the user */
	char sid[SRV_ID_LEN + 1]; /* the login (refresh-token family) it was issued for */
	int64_t gen;		  /* the user's token generation when issued */
};
/* Signature, header, iss, exp, iat, nbf and the claims' shapes; 0 or SG_EAUTH. The caller checks
 * gen and sid against the database. */
int srv_jwt_check(const struct srv *s, const char *tok, struct srv_jwt *out);
/* Fills r->who from the Authorization header; false with out set on a bad credential. */
bool srv_authenticate(struct srv *s, struct srv_req *r, struct srv_resp *out);

/* ---- QR (qr.c) ---- */
/* Most bytes a QR code holds: version 40, error correction level L, 8-bit mode (ISO/IEC
 * 18004:2015 table 7). */
#define SRV_QR_MAX_BYTES 2953
/* PNG of a QR code for text (malloc'd, *len bytes); NULL above SRV_QR_MAX_BYTES. */
uint8_t *srv_qr_png(const char *text, size_t *len);
/* PNG writer for a 1-bit image (exposed for tests): pix[y*w+x] nonzero = black. */
uint8_t *srv_png_write(const uint8_t *pix, int w, int h, size_t *len);
uint32_t srv_crc32(const uint8_t *p, size_t n, uint32_t crc);
uint32_t srv_adler32(const uint8_t *p, size_t n);

/* ---- config rendering (render.c) ---- */
/* Renders the wg-quick config of a client (text, malloc'd); 404/500 set on error. */
char *srv_render_config(struct srv *s, struct sg_db_conn *c, const char *client_id, int *status,
			char *why, size_t whylen);

/* ---- client creation (routes_clients.c), shared with temporary access ---- */
struct client_new {
	const char *network_id, *name, *description, *allowed_ips, *endpoint, *temp_access_id;
	const char *pub_classic, *pub_fips; /* client-supplied; NULL = generate */
	const char *owner_id; /* the user whose MFA session gates it (routes_vpn.c); NULL: none */
	int64_t keepalive, listen_port, expires_at;
	bool is_relay, enabled, has_listen_port;
};
/* A positive result of a transaction body: answer 409, "field|message" in its why buffer. */
#define SRV_CONFLICT 1
/* srv_client_insert: the license's (or the free edition's) clients are all taken; answer 402
 * with the message in its why buffer (srv_license_refuse). */
#define SRV_LICENSE 2
/* Inside an open transaction: inserts the client with fresh addresses and keys; out_id gets the
 * id. SG_EEXIST on an address collision (retry), SG_ENOENT when the network is missing,
 * SRV_CONFLICT when another client of the network has a supplied public key. */
int srv_client_insert(struct srv *s, struct sg_db_conn *c, const struct client_new *cn,
		      char out_id[SRV_ID_LEN + 1], char *why, size_t whylen);
json_t *srv_client_get(struct sg_db_conn *c, const char *id);

/* ---- licenses (licensing.c; the document itself: license.h) ---- */
/* Inside srv_client_insert's transaction: SRV_LICENSE with why set when one more client would
 * pass the limit of the license (or of the free edition), 0 when it fits, <0 on a db error. */
int srv_license_seat(const struct srv *s, struct sg_db_conn *c, char *why, size_t whylen);
/* 402, an RFC 9457 problem whose detail names the license (or the free edition). */
void srv_license_refuse(struct srv_resp *out, const char *why);
/* The license's state for /api/health: edition, status, client_limit, and when set
 * expires_at, grace_ends_at and warning. No customer name: /api/health is public. */
json_t *srv_license_json(const struct srv *s, int64_t now);
/* Logs license_grace / license_expired / license_not_yet_valid warnings: at start (startup)
 * and then once an hour from the main loop; never stops anything. */
void srv_license_log(const struct srv *s, bool startup);

/* ---- second factor (totp.c, routes_mfa.c; docs/SERVER.md "Two-factor logins") ---- */
#define SRV_TOTP_PERIOD	   30 /* seconds per step (RFC 6238 section 5.2) */
#define SRV_TOTP_WINDOW	   1  /* steps accepted either side of now */
#define SRV_TOTP_KEY_LEN   20 /* 160 bits (RFC 4226 section 4, R6) */
#define SRV_TOTP_B32_LEN   32
#define SRV_RECOVERY_LEN   19 /* xxxx-xxxx-xxxx-xxxx */
#define SRV_RECOVERY_CODES 10
/* The 6-digit code of a step (RFC 4226 section 5.3 over HMAC-SHA-1). */
bool srv_totp_code(const uint8_t *key, size_t keylen, uint64_t step, char out[7]);
/* The step (> last_step) within SRV_TOTP_WINDOW of now whose code is code, or 0. */
uint64_t srv_totp_match(const uint8_t *key, size_t keylen, const char *code, int64_t now,
			uint64_t last_step);
/* A new random secret and its base32 text. */
bool srv_totp_secret(uint8_t key[SRV_TOTP_KEY_LEN], char b32[SRV_TOTP_B32_LEN + 1]);
int srv_totp_b32_decode(uint8_t key[SRV_TOTP_KEY_LEN], const char *b32);
bool srv_recovery_code(char out[SRV_RECOVERY_LEN + 1]);
bool srv_recovery_normalize(char out[SRV_RECOVERY_LEN + 1], const char *in);
/* Login (auth.c): a failed attempt recorded (counted toward the per-source lockout when reason
 * is bad_password or bad_code) and audited. */
void srv_login_failed(struct srv *s, struct srv_req *r, struct sg_db_conn *c, const char *uid,
		      const char *email, const char *reason);
/* A login that passed every factor: tokens issued and audited (second: "totp",
 * "recovery_code", "passkey" or NULL; method: "passkey" for a login without a password, else
 * NULL); *result the token answer. */
int srv_login_finish(struct srv *s, struct srv_req *r, struct sg_db_conn *c, const char *uid,
		     const char *email, const char *role, int64_t gen, const char *second,
		     const char *method, json_t **result);
/* A TOTP or recovery code of user uid checked and spent inside the caller's transaction (a code
 * is good once): 1 when it was good, 0 when not (or the user has no second factor), <0 on a
 * database error. *recovery: it was a recovery code. */
int srv_mfa_spend(struct srv *s, struct sg_db_conn *c, struct srv_req *r, const char *uid,
		  const char *email, const char *code, bool *recovery) SG_WUR;
/* ---- MFA-gated VPN sessions (routes_vpn.c) ---- */
/* Ends every open VPN session of a user (in the caller's transaction), each audited by the
 * system with reason. */
int srv_vpn_end_user(struct sg_db_conn *c, const char *user_id, const char *reason) SG_WUR;
/* Ends the sessions whose time is up (audited); from the server's main loop every second.
 * Returns how many. */
int srv_vpn_expire(struct srv *s);
/* A wrong second factor at the second step (reason "bad_code", "bad_passkey", ...): counted on
 * the mfa_token of hash (five end it) and toward the source's lockout, audited. */
void srv_mfa_wrong(struct srv *s, struct srv_req *r, struct sg_db_conn *c, const char *hash,
		   const char *uid, const char *email, const char *reason);
/* SQL: the admin_users row u has a second factor (TOTP or a passkey). */
#define SRV_SQL_HAS_2FA(u)                                                                         \
	"(" u ".totp_secret IS NOT NULL OR EXISTS (SELECT 1 FROM passkeys pk WHERE pk.user_id = " \
	u ".id))"
/* The password was right and the account has a second factor: answers the mfa_token. */
void srv_mfa_challenge(struct srv *s, struct srv_req *r, struct sg_db_conn *c, const char *uid,
		       const char *email, struct srv_resp *out);
/* The same without the answer: a new mfa_token for uid in tok (audited user.mfa_required), 0 or
 * a database error. */
int srv_mfa_token_new(struct srv *s, struct srv_req *r, struct sg_db_conn *c, const char *uid,
		      const char *email, char tok[64]) SG_WUR;
/* The second step of a login (POST /api/auth/login/mfa, the OpenID provider's login page): an
 * mfa_token and a TOTP or recovery code, with the per-address limit, the mfa_token single use
 * and ended by five wrong codes, a code good once, wrong codes counted toward the lockout and
 * audited. Returns 200 (m filled: the caller issues what the login gives), 401 (m->field says
 * which was wrong: "mfa_token" or "code"), 429 (m->retry) or a negative database error. */
struct srv_mfa_login {
	char user_id[SRV_ID_LEN + 1];
	char email[256];
	char role[32];
	int64_t gen;
	const char *second; /* 200: "totp" or "recovery_code" */
	const char *field;  /* 401 */
	int retry;	    /* 429: seconds */
};
int srv_mfa_login(struct srv *s, struct srv_req *r, struct sg_db_conn *c, const char *token,
		  const char *code, struct srv_mfa_login *m) SG_WUR;
/* A passkey's assertion (routes_passkeys.c): for a login without a password (token NULL) or as
 * the second step of the login of token (an mfa_token, then spent). 0 with who filled; 1 with
 * out holding the refusal (counted toward the limits and audited). */
struct srv_passkey_user {
	char user_id[SRV_ID_LEN + 1];
	char email[256];
	char role[32];
	int64_t gen;
};
int srv_passkey_verify(struct srv *s, struct srv_req *r, json_t *cred, const char *token,
		       struct srv_resp *out, struct srv_passkey_user *who) SG_WUR;

/* ---- routes ---- */
typedef void (*srv_handler)(struct srv *s, struct srv_req *r, struct srv_resp *out);
#define H(name) void name(struct srv *s, struct srv_req *r, struct srv_resp *out)
H(h_login);
H(h_refresh);
H(h_logout);
H(h_client_challenge);
H(h_client_auth);
H(h_me);
H(h_login_mfa);
H(h_totp_start);
H(h_totp_confirm);
H(h_totp_delete);
H(h_users_totp_reset);
/* routes_passkeys.c */
H(h_passkey_reg_options);
H(h_passkey_register);
H(h_passkeys_list);
H(h_passkey_rename);
H(h_passkey_delete);
H(h_users_passkeys_reset);
H(h_passkey_login_options);
H(h_passkey_login);
H(h_users_list);
H(h_users_create);
H(h_users_get);
H(h_users_update);
H(h_users_delete);
H(h_apikeys_list);
H(h_apikeys_create);
H(h_apikeys_delete);
H(h_networks_list);
H(h_networks_create);
H(h_networks_get);
H(h_networks_update);
H(h_networks_delete);
H(h_networks_peers);
H(h_clients_list);
H(h_clients_create);
H(h_clients_get);
H(h_clients_update);
H(h_clients_delete);
H(h_clients_config);
H(h_clients_regen);
H(h_temp_create);
H(h_temp_list);
H(h_temp_redeem);
H(h_temp_delete);
H(h_audit_list);
H(h_audit_export);
H(h_conn_list);
H(h_conn_create);
H(h_settings_get);
H(h_settings_put);
H(h_openapi);
H(h_ready);
/* routes_console.c */
H(h_events);
H(h_stats);
H(h_audit_verify);
H(h_certificates);
/* routes_agents.c */
H(h_policies_list);
H(h_policies_create);
H(h_policies_get);
H(h_policies_update);
H(h_policies_delete);
H(h_enroll_create);
H(h_enroll_list);
H(h_enroll_delete);
H(h_peers_register);
H(h_agent_auth);
H(h_peers_list);
H(h_peers_get);
H(h_peers_update);
H(h_peers_delete);
H(h_peers_status);
H(h_peers_config);
H(h_tunnels_list);
H(h_tunnels_get);
/* routes_gateways.c */
H(h_gateways_list);
H(h_gateways_create);
H(h_gateways_get);
H(h_gateways_delete);
H(h_gateways_config_get);
H(h_gateways_config_put);
H(h_gateways_token);
H(h_sites_list);
H(h_sites_create);
H(h_sites_get);
H(h_sites_update);
H(h_sites_delete);
H(h_resources_list);
H(h_resources_create);
H(h_resources_get);
H(h_resources_update);
H(h_resources_delete);
H(h_targets_list);
H(h_targets_create);
H(h_targets_get);
H(h_targets_update);
H(h_targets_delete);
H(h_gateways_events);
H(h_services_list);
H(h_services_create);
H(h_services_get);
H(h_services_delete);
/* routes_vpn.c */
H(h_vpn_open);
H(h_vpn_open_oidc);
H(h_vpn_end);
H(h_vpn_list);
H(h_vpn_revoke);
/* routes_oidc.c */
H(h_oidc_discovery);
H(h_oidc_jwks);
/* header.claims.signature, ES384 (RFC 7515 section 7.1, RFC 7518 section 3.4) with the key
 * priv (its key id kid) and header typ; malloc'd, NULL on failure (routes_oidc.c). */
char *srv_jws_es384(const uint8_t priv[48], const char *kid, json_t *claims, const char *typ);
H(h_tls_session_key);
H(h_vpn_tls_token);
H(h_oidc_authorize);
H(h_oidc_authorize_post);
H(h_oidc_login_js);
H(h_oidc_token);
H(h_oidc_userinfo);
#undef H
/* A redirect URI the provider may send a code to: http(s)://HOST[:PORT]/.sg/oidc/callback
 * with HOST one of domains (a "*.name" one stands for one label). Exposed for the fuzz
 * target. */
bool srv_oidc_redirect_ok(const char *uri, const char *const *domains, size_t ndomains);
/* The built-in client of `secureguard connect --oidc` (RFC 8252 native app), and its redirect
 * URIs: http://127.0.0.1:PORT/PATH or http://[::1]:PORT/PATH (any port). */
#define SRV_OIDC_CLI "secureguard-cli"
bool srv_oidc_loopback_ok(const char *uri);
/* Redeems a code of SRV_OIDC_CLI (single use) with the authorization request's redirect_uri,
 * PKCE verifier and nonce (NULL when it had none): 0 with the user's id, 1 refused (why says
 * which check; audited as oidc.token_refused), or a database error. */
int srv_oidc_redeem(struct srv *s, struct srv_req *r, struct sg_db_conn *c, const char *code,
		    const char *redirect_uri, const char *verifier, const char *nonce,
		    char uid[SRV_ID_LEN + 1], const char **why) SG_WUR;

/* ---- gateways as managed peers (routes_gateways.c, called from routes_agents.c) ---- */
/* Registration with a gateway's enrolment token, in its transaction: the gateway's previous
 * credential is revoked and name gets the peer's name ("gateway-" and 8 of its id).
 * SG_ENOENT when the gateway is gone. */
int srv_gateway_enrolling(struct srv *s, struct sg_db_conn *c, struct srv_req *r,
			  const char *gateway_id, char name[33]) SG_WUR;
/* After the peer's row is in: the gateway's credential is agent_id (audited). */
int srv_gateway_enrolled(struct sg_db_conn *c, struct srv_req *r, const char *gateway_id,
			 const char *agent_id) SG_WUR;
/* The configuration document of the gateway whose credential agent_id is (secrets included),
 * its problems appended; NULL with *rc 0 for an agent that is no gateway's. */
json_t *srv_gateway_agent_doc(struct srv *s, struct sg_db_conn *c, const char *agent_id,
			      json_t *problems, int *rc);
/* An agent configuration as admins see it: the gateway's client secrets removed. */
void srv_gateway_strip(json_t *agent_config);

/* The revision of what agents' configurations depend on (the sync_state row, moved by
 * triggers); negative SG_E* on a database error. The server polls it and wakes parked
 * requests when it moves. */
int64_t srv_sync_revision(struct srv *s);


/* ---- the admin console (routes_console.c) ---- */
/* The audit_log columns of an AuditEvent, and their srv_row_json kinds. */
#define SRV_AUDIT_COLS                                                                             \
	"id, ts, event_type, actor_id, actor_type, actor_name, resource_type, resource_id, "       \
	"resource_name, action, details, source_ip, user_agent, prev_hash, hash"
#define SRV_AUDIT_KINDS "iisssssssssssss"
struct srv_target;
/* A GET or HEAD no API route took (t: its decoded path): a file of the console, or its
 * index.html for the console's own paths (/clients, /guest); false when the path is not the
 * console's (then 404). */
bool srv_console_serve(struct srv *s, struct srv_req *r, struct srv_resp *out,
		       const struct srv_target *t);
/* Whether an Accept-Encoding value (NULL: none) takes gzip: a "gzip" coding whose weight is not
 * zero (RFC 9110 section 12.5.3). */
bool srv_accepts_gzip(const char *accept_encoding);
/* The value of cookie `name` in a Cookie header value (RFC 6265 section 4.2.1: "a=b; c=d";
 * NULL: none) into out; false when it is absent, empty or longer than len - 1. */
bool srv_cookie_get(const char *header, const char *name, char *out, size_t len);
/* The 200 of a completed login (auth.c): the tokens (taken), with the refresh token moved into
 * the sg_refresh cookie when the request asked for it ("refresh_cookie": true). */
void srv_login_answer(struct srv *s, struct srv_req *r, struct srv_resp *out, json_t *tokens);
/* From the server's main loop, about every 250 ms: samples the counts every 10 s and returns
 * true when the audit log grew (the caller then wakes parked event streams). */
bool srv_console_tick(struct srv *s);

/* Background sweep of expired temporary access (routes_temp.c); returns grants removed. */
int srv_sweep(struct srv *s);

/* Request rates of unauthenticated callers per source (ratelimit.c): false when over the
 * class's rate, with the seconds to wait. */
enum srv_rate_class { SRV_RATE_PUBLIC, SRV_RATE_TOKEN, SRV_RATE_REGISTER, SRV_RATE_N };
bool srv_rate_allow(enum srv_rate_class cls, const char *ip, int *retry_after);

/* A password login of an admin user as POST /api/auth/login does it (limits per address,
 * lockout, the timing of unknown accounts, audit), without issuing tokens: the OpenID
 * provider's login page. Returns 200 (who filled), 401, 429 or 503. */
struct srv_login {
	char user_id[SRV_ID_LEN + 1];
	char email[256];
	char role[32];
	int64_t gen;	  /* the user's token generation */
	char source[64];  /* the source the login came from (IPv6: its /64) */
	const char *why;  /* 429: which limit */
	int retry;	  /* 429: seconds */
	bool second;	  /* 200: the account has a second factor (TOTP) */
};
int srv_password_login(struct srv *s, struct srv_req *r, const char *email, const char *password,
		       struct srv_login *who);
/* Answers a status of srv_password_login other than 200 (429 with Retry-After, 503, 401
 * "invalid credentials", which says nothing about which part was wrong); false for a 200. */
bool srv_login_refused(struct srv_resp *out, int status, const struct srv_login *who);
/* After a 200 of srv_password_login, in the caller's transaction: the source's failures go, it
 * becomes known, the account's last_login is t. */
int srv_login_success(struct sg_db_conn *c, const struct srv_login *who, int64_t t) SG_WUR;

/* Live state shared through Redis when --redis is given (live.c, docs/OPERATIONS.md "Redis").
 * srv_live_count: one step (op "check", "fail", "attempt", "hit", "refund") on the counter
 * sg:rate_limit:{source}:{endpoint} of a fixed window: 1 allowed, 0 refused (retry_secs: the
 * window's rest), -1 no Redis configured or reachable (the caller then decides alone).
 * srv_live_nonce: a challenge's single use, sg:handshake:nonce:{nonce} until it expires:
 * spend: 1 spent now, 0 spent before; !spend: 1 unused, 0 used; -1 no Redis (callers refuse:
 * they fail closed, SRV_LIVE_AWAY). srv_live_publish: "something changed" on sg:sync. */
struct srv_redis;
void srv_live_set(struct srv_redis *r);
bool srv_live_on(void);
int srv_live_count(const char *ip, const char *endpoint, const char *op, int window, int limit,
		   int *retry_secs);
int srv_live_nonce(const uint8_t nonce[8], int64_t expires, bool spend);
void srv_live_publish(void);
bool srv_live_ready(void); /* true without Redis, or when it answers a PING */
void srv_live_metrics(FILE *f);
#define SRV_LIVE_AWAY "the shared live state (Redis) is unreachable; retry"
/* Clients' live connection state, sg:connection:{client_id} (JSON: online, last_handshake,
 * endpoint, crypto_mode, bytes_sent, bytes_received, reported_by, reported_at), as hubs' agents
 * report it, expiring after ttl seconds so a reporter that stopped leaves nothing behind.
 * srv_live_conn_put: states maps client ids to their state (null: delete it); 0, or -1 without
 * Redis. srv_live_conn_overlay: sets online, last_handshake and the bytes of each client object
 * of the array from Redis (no entry: not online); -1 without Redis (the database's values stay).
 * srv_live_conn_online: how many clients are online, -1 without Redis. */
int srv_live_conn_put(json_t *states, int ttl);
int srv_live_conn_overlay(json_t *clients);
int64_t srv_live_conn_online(void);
/* Temporary access grants, sg:temp_access:{SHA-384 of the token} = the grant's id, or "revoked"
 * or "used up", TTL = until it expires. The database stays the truth: an id only lets a redeem
 * go on to it. srv_live_temp_check: 1 an id (ask the database), 2 ended (why: "revoked" or "used
 * up"), 0 no key while the grants are loaded (no such grant), -2 not loaded (srv_live_temp_fill
 * them, then ask the database), -1 no Redis (the database decides alone).
 * srv_live_temp_put: 0, -1 when Redis could not take it (creation is then refused: another
 * server would not know the grant). srv_live_temp_end: revoked or used up, keeping the TTL. */
int srv_live_temp_check(const char *hash, char *why, size_t len);
int srv_live_temp_put(const char *hash, const char *value, int64_t expires_at);
void srv_live_temp_end(const char *hash, const char *why);
int srv_live_temp_fill(const char *const *hashes, const char *const *values, const int64_t *expires,
		       size_t n);

/* Login failure limiter per source IP (auth.c): in this process, or in Redis with --redis. */
bool srv_ip_limited(struct srv *s, const char *ip);
void srv_ip_failed(struct srv *s, const char *ip);
/* Counts an attempt as it starts; false (nothing counted) when the address is over its limit.
 * srv_ip_refund gives it back after a success. IPv6 addresses count per /64. */
bool srv_ip_attempt(struct srv *s, const char *ip);
void srv_ip_refund(struct srv *s, const char *ip);
/* Seconds until an address over its limit may try again (Retry-After), at least 1. */
int srv_ip_retry_secs(struct srv *s, const char *ip);
/* The unit limits count by: the address for IPv4, its /64 for IPv6 (one host usually holds a
 * whole /64). */
void srv_ip_source(char out[64], const char *ip);
/* Every access token of the user stops working (the JWT's gen claim no longer matches). */
int srv_bump_token_gen(struct sg_db_conn *c, const char *user_id) SG_WUR;

/* Runs fn in a transaction, retrying on SG_EAGAIN (and SG_EEXIST when retry_exist). */
typedef int (*srv_tx_fn)(struct srv *s, struct sg_db_conn *c, void *ctx);
int srv_tx(struct srv *s, struct sg_db_conn *c, srv_tx_fn fn, void *ctx, bool retry_exist);

#endif
