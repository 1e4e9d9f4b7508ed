/* Fuzz target: a VICI load-conn message into the IKE daemon's connection config
 * (src/iked/conn.c), as swanctl would send it. Every refusal has a message; an accepted
 * configuration must be one the IKE core takes. */
#include <stdlib.h>
#include <string.h>

#include "iked/iked.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void nop_send(void *ctx, uint16_t p, const struct ike_endpoint *to, const uint8_t *b,
		     size_t n)
{
	(void)ctx, (void)p, (void)to, (void)b, (void)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct iked_conn c;
	struct vici_msg *m;
	char err[256] = "";
	if (vici_msg_parse(data, size, &m, NULL) != 0)
		return 0;
	int rc = iked_conn_from_vici(vici_msg_root(m), NULL, &c, err, sizeof(err));
	vici_msg_free(m);
	if (rc) {
		if (!err[0])
			abort();
		return 0;
	}
	iked_conn_release(&c); /* a certificate given as data is checked, not used */
	c.cfg.cert = NULL;
	c.cfg.local_auth = c.cfg.remote_auth = IKE_AUTHC_PSK;
	if (c.cfg.local_id.type == IKE_ID_ANY || c.cfg.remote_id.type == IKE_ID_ANY)
		return 0;
	struct ike_io io = {.send = nop_send};
	struct ike_ctx *ctx = ike_new(&io);
	if (!ctx)
		abort();
	c.cfg.psk_len = 1;
	if (ike_add_peer(ctx, &c.cfg) != 0)
		abort();
	ike_free(ctx);
	return 0;
}
