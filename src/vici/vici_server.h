/* VICI server: serves the protocol of vici.h on a unix (or tcp) socket from the event loop
 * (src/net/evloop.c), so that strongSwan's `swanctl` and any libvici client can drive the
 * process that owns it (secureguard-iked). The server does the framing, event registrations and
 * bounds; the owner answers commands through the ops table.
 *
 * A connection handles one request at a time, as charon does: while a command is pending (its
 * handler returned VICI_PENDING) nothing more is read from that connection; the owner may send
 * it events (streamed results, control-log) and finally its response with vici_server_respond.
 * Connections are named by a 64-bit id that is never reused, so a late answer to a closed
 * connection is dropped harmlessly.
 *
 * Bounds: at most VICI_SERVER_MAX_CONNS connections (more are accepted and closed at once); a
 * connection whose queued output exceeds VICI_SERVER_MAX_OUT (a client that does not read) or
 * that sends a malformed packet is closed. The unix socket is created 0770 (charon's mode); a
 * stale socket of a dead daemon is replaced, a live one is not (ctlsock_open_path).
 */
#ifndef SG_VICI_VICI_SERVER_H
#define SG_VICI_VICI_SERVER_H

#include "net/evloop.h"
#include "vici/vici.h"

#define VICI_SERVER_MAX_CONNS 64
#define VICI_SERVER_MAX_OUT   (8u << 20)
/* A command handler's "I will answer later" (any value that is not 0 or an SG_E* code). */
#define VICI_PENDING 1

struct vici_server;

struct vici_server_ops {
	void *ctx;
	/* A CMD_REQUEST. Return 0 with the response built in `resp` (an empty builder), or
	 * VICI_PENDING and answer later with vici_server_respond, or SG_ENOENT for an unknown
	 * command (the client gets CMD_UNKNOWN). Any other error answers with {success=no,
	 * errmsg=<sg_strerror>} unless the handler built its own response. */
	int (*command)(void *ctx, uint64_t conn, const char *cmd, const struct vici_node *req,
		       struct vici_builder *resp);
	/* Whether `event` may be registered (EVENT_CONFIRM) or not (EVENT_UNKNOWN). */
	bool (*event_known)(void *ctx, const char *event);
	/* The connection is gone (a pending command will never be answered); may be NULL. */
	void (*closed)(void *ctx, uint64_t conn);
};

/* Listens on `uri` (vici_uri_parse) and registers with the loop. 0 or a negative SG_E* / errno
 * with *why. */
int vici_server_new(struct evloop *loop, const char *uri, const struct vici_server_ops *ops,
		    struct vici_server **out, const char **why) SG_WUR;
/* Closes every connection (their `closed` is not called) and removes the socket file. */
void vici_server_free(struct vici_server *s);

/* Sends `event` with message `msg` (finished builder, or NULL for empty) to connection `conn`
 * if it registered that event. 0, SG_ENOENT (no such connection or not registered), or the
 * builder's error. */
int vici_server_event(struct vici_server *s, uint64_t conn, const char *event,
		      struct vici_builder *msg);
/* Sends `event` to every connection that registered it. */
void vici_server_broadcast(struct vici_server *s, const char *event, struct vici_builder *msg);
/* The response to conn's pending command; reading resumes. SG_ENOENT if the connection is gone
 * or has nothing pending. */
int vici_server_respond(struct vici_server *s, uint64_t conn, struct vici_builder *msg) SG_WUR;
/* True if some connection registered `event` (so the caller can skip building it). */
bool vici_server_has_listener(const struct vici_server *s, const char *event);
size_t vici_server_conn_count(const struct vici_server *s);

#endif
