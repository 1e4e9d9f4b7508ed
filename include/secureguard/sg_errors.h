/* SecureGuard error codes: one X-macro, as libuv/curl do (STYLE.md habit 4).
 * Functions return 0 on success and a negative SG_E* code on failure. */
#ifndef SECUREGUARD_SG_ERRORS_H
#define SECUREGUARD_SG_ERRORS_H

#define SG_ERRNO_MAP(X)                                                                            \
	X(OK, 0, "success")                                                                        \
	X(INVAL, -1, "invalid argument")                                                           \
	X(NOMEM, -2, "out of memory")                                                              \
	X(CRYPTO, -3, "cryptographic operation failed")                                            \
	X(PARSE, -4, "malformed input")                                                            \
	X(EXIST, -5, "already exists")                                                             \
	X(NOENT, -6, "not found")                                                                  \
	X(IO, -7, "input/output error")                                                            \
	X(AGAIN, -8, "try again")                                                                  \
	X(PERM, -9, "operation not permitted")                                                     \
	X(RANGE, -10, "value out of range")                                                        \
	X(STALE, -11, "keys are stale: a new handshake is needed")                                 \
	X(NOKEY, -12, "no key configured")                                                         \
	X(REPLAY, -13, "replayed or too old")                                                      \
	X(AUTH, -14, "authentication failed")                                                      \
	X(LIMIT, -15, "rate limit reached")                                                        \
	X(NOROUTE, -16, "no route to peer")                                                        \
	X(UNSUPPORTED, -17, "not supported")                                                       \
	X(FULL, -18, "table or queue full")                                                        \
	X(LOOP, -19, "routing loop: packet nested too deeply")                                     \
	X(DOWN, -20, "interface is down")

typedef enum {
#define SG_ERR_ENUM(name, val, msg) SG_E##name = (val),
	SG_ERRNO_MAP(SG_ERR_ENUM)
#undef SG_ERR_ENUM
} sg_result;

#ifdef __cplusplus
extern "C" {
#endif
/* Human-readable message for an sg_result; never NULL. */
const char *sg_strerror(int err);
/* The code's name, e.g. "SG_EINVAL"; never NULL. */
const char *sg_err_name(int err);
#ifdef __cplusplus
}
#endif

#endif
