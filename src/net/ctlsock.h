/* The UAPI control socket file, /var/run/wireguard/IFNAME.sock, created as wireguard-go does:
 * directory 0755, socket 0600 (owner only: the protocol hands out private keys); a socket left by
 * a dead daemon is removed, one a live daemon answers on is left alone and we refuse to start.
 * The daemon exits when the file is deleted or replaced (ctlsock_still_ours). */
#ifndef SG_NET_CTLSOCK_H
#define SG_NET_CTLSOCK_H

#include <stdbool.h>
#include <sys/types.h>
#include <sys/un.h>

#include "common/compiler.h"

#define CTLSOCK_DIR "/var/run/wireguard"

struct ctlsock {
	int fd; /* listening, non-blocking; -1 when closed */
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev;
	ino_t ino;
};

/* Creates dir (if needed) and dir/NAME.sock and listens on it. 0 or a negative errno
 * (-EADDRINUSE: another live daemon owns it); *why names the step that failed. */
int ctlsock_open(struct ctlsock *s, const char *dir, const char *name, const char **why) SG_WUR;
/* The same for any path, with the socket's mode (the VICI socket is 0770, as charon's): the
 * directory must exist, be owned by us or root and be writable only by its owner. */
int ctlsock_open_path(struct ctlsock *s, const char *path, mode_t mode, const char **why) SG_WUR;
/* True while the path still names the socket we created (same device and inode). */
bool ctlsock_still_ours(const struct ctlsock *s);
/* A new non-blocking, close-on-exec connection; -EAGAIN when none is waiting. */
int ctlsock_accept(struct ctlsock *s) SG_WUR;
/* Stops listening and removes the file if it is still ours. */
void ctlsock_close(struct ctlsock *s);

#endif
