/* Little-endian load/store helpers (WireGuard is little-endian on the wire). */
#ifndef SG_COMMON_BYTES_H
#define SG_COMMON_BYTES_H
#include <stdint.h>
#include <string.h>

/* The value of one hexadecimal digit (either case), or -1. */
static inline int sg_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static inline uint16_t sg_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline void sg_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline uint32_t sg_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t sg_le64(const uint8_t *p)
{
	return (uint64_t)sg_le32(p) | (uint64_t)sg_le32(p + 4) << 32;
}
static inline void sg_put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}
static inline void sg_put_le64(uint8_t *p, uint64_t v)
{
	sg_put_le32(p, (uint32_t)v);
	sg_put_le32(p + 4, (uint32_t)(v >> 32));
}
static inline void sg_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}
static inline void sg_put_be64(uint8_t *p, uint64_t v)
{
	sg_put_be32(p, (uint32_t)(v >> 32));
	sg_put_be32(p + 4, (uint32_t)v);
}
static inline uint64_t sg_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}
#endif
