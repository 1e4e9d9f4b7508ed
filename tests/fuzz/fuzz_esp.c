/* Fuzz target: ESP decapsulation (src/ike/esp.c) of hostile packets, for an AES-GCM tunnel SA, an
 * AES-CBC + HMAC SA with extended sequence numbers and a ChaCha20-Poly1305 transport-mode SA
 * (keys fixed: bytes 0, 1, 2, ...). The input's first byte picks the SA; its SPI is patched in so
 * that inputs reach the window and the ICV. Nothing may be read or written outside the packet and
 * its 40-byte headroom, and an accepted packet must lie inside them. */
#include <stdlib.h>
#include <string.h>

#include "crypto/ipsec.h"
#include "ike/esp.h"
#include "ike/ike_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct esp_sa sas[3];
static int ready;

static void init(void)
{
	uint8_t k[64];
	for (int i = 0; i < 64; i++)
		k[i] = (uint8_t)i;
	if (sg_crypto_init() ||
	    esp_sa_init(&sas[0], 0x1000, IKE_ENCR_AES_GCM_16, 256, 0, k, 36, NULL, 0, false,
			false) ||
	    esp_sa_init(&sas[1], 0x1001, IKE_ENCR_AES_CBC, 128, SG_INTEG_HMAC_SHA2_256_128, k, 16,
			k, 32, true, false) ||
	    esp_sa_init(&sas[2], 0x1002, IKE_ENCR_CHACHA20_POLY1305, 256, 0, k, 36, NULL, 0, false,
			false))
		abort();
	sas[2].transport = true;
	sas[2].family = 4;
	ready = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[40 + 65536];
	if (!ready)
		init();
	if (size < 1 || size - 1 > sizeof(buf) - 40)
		return 0;
	struct esp_sa *sa = &sas[data[0] % 3];
	size_t n = size - 1;
	memcpy(buf + 40, data + 1, n);
	if (n >= 4) {
		buf[40] = (uint8_t)(sa->spi >> 24), buf[41] = (uint8_t)(sa->spi >> 16);
		buf[42] = (uint8_t)(sa->spi >> 8), buf[43] = (uint8_t)sa->spi;
	}
	uint8_t *pkt;
	size_t len;
	int rc = esp_decap(sa, 0, buf + 40, n, &pkt, &len);
	if (rc >= 0 && (pkt < buf || pkt + len > buf + 40 + n))
		abort();
	return 0;
}
