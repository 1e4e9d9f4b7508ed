/* Small compiler helpers shared by every module. */
#ifndef SG_COMMON_COMPILER_H
#define SG_COMMON_COMPILER_H

#define SG_WUR      __attribute__((warn_unused_result))
#define SG_UNUSED   __attribute__((unused))
#define SG_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define SG_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SG_MAX(a, b) ((a) > (b) ? (a) : (b))
#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#endif
