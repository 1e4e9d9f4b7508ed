/* Fuzz target: the IKEv2 state machines (src/ike/sa.c) with hostile datagrams. A responder with a
 * configured peer takes the input on ports 500 and 4500; an initiator whose IKE_SA_INIT is in
 * flight takes it as a response (its SPI patched in so it reaches the response path). Nothing may
 * crash, leak or grow without bound; every context is freed and made anew every 256 inputs. */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "crypto/ipsec.h"
#include "ike/ike.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void nop_send(void *ctx, uint16_t port, const struct ike_endpoint *to, const uint8_t *b,
		     size_t n)
{
	(void)ctx, (void)port, (void)to, (void)b, (void)n;
}

static struct ike_ctx *resp, *init;
static unsigned uses;
static const struct ike_endpoint peer = {.family = AF_INET, .addr = {192, 0, 2, 1}, .port = 500};

static void make_cfg(struct ike_peer_cfg *c, const char *name)
{
	const char *why;
	memset(c, 0, sizeof(*c));
	strcpy(c->name, name);
	c->remote = peer;
	c->local_id.type = c->remote_id.type = IKE_ID_FQDN;
	c->local_id.len = c->remote_id.len = 1;
	c->local_id.data[0] = 'a';
	c->remote_id.data[0] = 'a';
	c->psk_len = 8;
	memcpy(c->psk, "fuzzpsk!", 8);
	if (ike_prop_parse("aes256gcm16-prfsha384-ecp256-x25519", IKE_PROTO_IKE, false,
			   &c->props[0], &why) == 0)
		c->nprops = 1;
	if (ike_prop_parse("aes256gcm16", IKE_PROTO_ESP, false, &c->children[0].props[0], &why) == 0)
		c->children[0].nprops = 1;
	c->children[0].local_ts[0].type = c->children[0].remote_ts[0].type = IKE_TS_IPV4_ADDR_RANGE;
	c->children[0].local_ts[0].port_end = c->children[0].remote_ts[0].port_end = 65535;
	memset(c->children[0].local_ts[0].end, 0xff, 4);
	memset(c->children[0].remote_ts[0].end, 0xff, 4);
	c->children[0].nlocal_ts = c->children[0].nremote_ts = 1;
	c->nchildren = 1;
	strcpy(c->children[0].name, "c");
	c->dpd_delay_ns = 1000;
}

static void reset(void)
{
	struct ike_io io = {.send = nop_send};
	struct ike_peer_cfg c;
	ike_free(resp);
	ike_free(init);
	resp = ike_new(&io);
	init = ike_new(&io);
	if (!resp || !init)
		abort();
	make_cfg(&c, "p");
	if (ike_add_peer(resp, &c) || ike_add_peer(init, &c) || ike_initiate(init, "p", NULL, 1))
		abort();
	uses = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[65536];
	static uint64_t now = 1;
	if (sg_crypto_init() != 0)
		abort();
	if (!resp || ++uses > 256)
		reset();
	if (size > sizeof(buf))
		return 0;
	now += 1000000;
	memcpy(buf, data, size);
	ike_receive(resp, now, 500, &peer, buf, size);
	memcpy(buf, data, size);
	ike_receive(resp, now, 4500, &peer, buf, size);
	memcpy(buf, data, size);
	if (size >= 28) {
		uint8_t spi_i[8], spi_r[8];
		struct ike_sa *sa = ike_first_sa(init);
		if (sa) {
			ike_sa_spis(sa, spi_i, spi_r);
			memcpy(buf, spi_i, 8);
		}
	}
	ike_receive(init, now, 500, &peer, buf, size);
	ike_tick(resp, now);
	ike_tick(init, now);
	return 0;
}
