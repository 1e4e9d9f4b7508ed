/* VICI client: a blocking connection to a VICI server (strongSwan's charon, or secureguard-iked),
 * over the codec in vici.h. Used by the agent to drive charon and by tests.
 *
 *   struct vici_client *c;
 *   if (vici_client_connect("unix:///var/run/charon.vici", 5000, &c, &why) == 0) {
 *       struct vici_msg *resp;
 *       if (vici_client_request(c, "version", NULL, NULL, NULL, &resp, &why) == 0) {
 *           printf("%s\n", vici_get_str(vici_msg_root(resp), "version"));
 *           vici_msg_free(resp);
 *       }
 *       vici_client_free(c);
 *   }
 *
 * Streaming commands ("list-sas" → "list-sa" events, "list-conns" → "list-conn", "initiate" →
 * "control-log") need the event registered first with vici_client_register; every EVENT packet
 * that arrives before the command's response goes to the request's callback. Events that arrive
 * between requests (ike-updown, child-updown, ...) are read with vici_client_wait_event.
 *
 * Every call is bounded by the connection's timeout (milliseconds; 0 = none). Errors: SG_EIO
 * (connection failed or closed, timeout; *why says which), SG_EPARSE (the server sent something
 * malformed), SG_ENOENT (the server does not know the command or event). A connection that
 * failed with SG_EIO or SG_EPARSE must be freed. Not thread-safe: one thread per client.
 */
#ifndef SG_VICI_VICI_CLIENT_H
#define SG_VICI_VICI_CLIENT_H

#include "vici/vici.h"

struct vici_client;

/* uri: "unix:///path" or "tcp://ADDR:PORT" (numeric IPv4 or [IPv6]), as strongSwan's. */
int vici_client_connect(const char *uri, int timeout_ms, struct vici_client **out,
			const char **why) SG_WUR;
void vici_client_free(struct vici_client *c);
void vici_client_set_timeout(struct vici_client *c, int timeout_ms);

typedef void (*vici_event_fn)(void *ctx, const char *event, const struct vici_node *msg);

/* Sends command `cmd` with the message in `req` (NULL: empty) and waits for its response,
 * passing each event received meanwhile to on_event (may be NULL). *resp gets the response tree
 * (free it with vici_msg_free); resp may be NULL when the caller needs only success. */
int vici_client_request(struct vici_client *c, const char *cmd, struct vici_builder *req,
			vici_event_fn on_event, void *ctx, struct vici_msg **resp,
			const char **why) SG_WUR;
/* Registers (on = true) or unregisters for an event. */
int vici_client_register(struct vici_client *c, const char *event, bool on,
			 const char **why) SG_WUR;
/* Waits up to timeout_ms (-1: the connection's timeout) for one event; 0 with `name` (at least
 * VICI_MAX_NAME + 1 bytes) and *msg set, SG_EAGAIN on timeout. */
int vici_client_wait_event(struct vici_client *c, int timeout_ms, char *name, struct vici_msg **msg,
			   const char **why) SG_WUR;

/* Parses a VICI URI into a socket address (used by the server too). 0 or SG_EINVAL. */
struct sockaddr_storage;
int vici_uri_parse(const char *uri, struct sockaddr_storage *sa, unsigned *salen,
		   const char **why) SG_WUR;

#endif
