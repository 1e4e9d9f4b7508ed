/* QR codes as PNG images: libqrencode makes the module matrix; the PNG is written here.
 *
 * libpng is not among the server's libraries and a QR code needs none of its features, so this
 * is a minimal PNG writer (RFC 2083 / PNG spec 2nd ed.): a 1-bit greyscale image, every row with
 * filter type 0, in one zlib stream (RFC 1950) of *stored* deflate blocks (RFC 1951 section
 * 3.2.4: no compression, at most 65535 bytes each) with its Adler-32, inside IDAT; every chunk
 * with its CRC-32. A QR code of a config file is a few kilobytes even uncompressed.
 */
#include <qrencode.h>
#include <stdlib.h>
#include <string.h>

#include "server/srv_int.h"

#define QR_SCALE 4 /* pixels per module */
#define QR_QUIET 4 /* modules of white border (ISO/IEC 18004 section 6.3.8) */

uint32_t srv_crc32(const uint8_t *p, size_t n, uint32_t crc)
{
	/* CRC-32/ISO-HDLC, reflected polynomial 0xedb88320, as PNG section 5.5 specifies. */
	crc = ~crc;
	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
	}
	return ~crc;
}

uint32_t srv_adler32(const uint8_t *p, size_t n)
{
	uint32_t a = 1, b = 0;

	for (size_t i = 0; i < n; i++) {
		a = (a + p[i]) % 65521;
		b = (b + a) % 65521;
	}
	return b << 16 | a;
}

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Appends a chunk (length, type, data, CRC over type and data) at out + *off. */
static void chunk(uint8_t *out, size_t *off, const char type[4], const uint8_t *data, size_t len)
{
	uint8_t *p = out + *off;

	be32(p, (uint32_t)len);
	memcpy(p + 4, type, 4);
	if (len)
		memcpy(p + 8, data, len);
	be32(p + 8 + len, srv_crc32(p + 4, len + 4, 0));
	*off += 12 + len;
}

uint8_t *srv_png_write(const uint8_t *pix, int w, int h, size_t *len)
{
	static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
	size_t stride = (size_t)(w + 7) / 8 + 1, raw_len = stride * (size_t)h;
	size_t nblocks = raw_len / 65535 + 1, z_len = 2 + raw_len + 5 * nblocks + 4;
	uint8_t *raw = NULL, *z = NULL, *out = NULL, ihdr[13];
	size_t off = 0, zo = 0;

	if (w <= 0 || h <= 0 || w > 16384 || h > 16384)
		return NULL;
	raw = calloc(1, raw_len);
	z = malloc(z_len);
	out = malloc(8 + 25 + 12 + z_len + 12);
	if (!raw || !z || !out)
		goto fail;
	/* Greyscale bit depth 1: 0 = black, 1 = white; MSB is the leftmost pixel. */
	for (int y = 0; y < h; y++) {
		uint8_t *row = raw + (size_t)y * stride;

		row[0] = 0; /* filter: none */
		for (int x = 0; x < w; x++) {
			if (!pix[(size_t)y * (size_t)w + (size_t)x])
				row[1 + x / 8] |= (uint8_t)(0x80 >> (x % 8));
		}
	}
	z[zo++] = 0x78; /* CM 8 (deflate), CINFO 7 (32 KiB window) */
	z[zo++] = 0x01; /* FLEVEL 0, FCHECK making 0x7801 a multiple of 31 */
	for (size_t i = 0, left = raw_len; i < nblocks; i++) {
		size_t n = left > 65535 ? 65535 : left;

		z[zo++] = i + 1 == nblocks ? 1 : 0; /* BFINAL, BTYPE 00 (stored) */
		z[zo++] = (uint8_t)n;
		z[zo++] = (uint8_t)(n >> 8);
		z[zo++] = (uint8_t)~n;
		z[zo++] = (uint8_t)(~n >> 8);
		memcpy(z + zo, raw + (raw_len - left), n);
		zo += n;
		left -= n;
	}
	be32(z + zo, srv_adler32(raw, raw_len));
	zo += 4;
	memcpy(out, sig, 8);
	off = 8;
	be32(ihdr, (uint32_t)w);
	be32(ihdr + 4, (uint32_t)h);
	ihdr[8] = 1;  /* bit depth */
	ihdr[9] = 0;  /* colour type: greyscale */
	ihdr[10] = 0; /* compression: deflate */
	ihdr[11] = 0; /* filter method 0 */
	ihdr[12] = 0; /* no interlace */
	chunk(out, &off, "IHDR", ihdr, sizeof(ihdr));
	chunk(out, &off, "IDAT", z, zo);
	chunk(out, &off, "IEND", NULL, 0);
	free(raw);
	free(z);
	*len = off;
	return out;
fail:
	free(raw);
	free(z);
	free(out);
	return NULL;
}

uint8_t *srv_qr_png(const char *text, size_t *len)
{
	QRcode *qr;
	uint8_t *pix = NULL, *png = NULL;
	int n, dim;

	if (strlen(text) > SRV_QR_MAX_BYTES)
		return NULL;
	qr = QRcode_encodeString8bit(text, 0, QR_ECLEVEL_L);
	if (!qr)
		return NULL;
	n = qr->width;
	dim = (n + 2 * QR_QUIET) * QR_SCALE;
	pix = calloc((size_t)dim * (size_t)dim, 1);
	if (!pix)
		goto out;
	for (int y = 0; y < n; y++) {
		for (int x = 0; x < n; x++) {
			if (!(qr->data[y * n + x] & 1)) /* bit 0: dark module */
				continue;
			for (int dy = 0; dy < QR_SCALE; dy++) {
				for (int dx = 0; dx < QR_SCALE; dx++)
					pix[(size_t)((y + QR_QUIET) * QR_SCALE + dy) * (size_t)dim +
					    (size_t)((x + QR_QUIET) * QR_SCALE + dx)] = 1;
			}
		}
	}
	png = srv_png_write(pix, dim, dim, len);
out:
	free(pix);
	QRcode_free(qr);
	return png;
}
