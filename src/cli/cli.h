/* secureguard command line: the subcommands and the helpers they share. */
#ifndef SG_CLI_CLI_H
#define SG_CLI_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cli/ipc.h"
#include "config/strbuf.h"
#include "config/wgconf.h"

#define CLI_PROG "secureguard"

/* Subcommands: argv[0] is the subcommand name; the return value is the exit status. */
int cli_cmd_genkey(int argc, char **argv);
int cli_cmd_genpsk(int argc, char **argv);
int cli_cmd_pubkey(int argc, char **argv);
int cli_cmd_show(int argc, char **argv);
int cli_cmd_showconf(int argc, char **argv);
int cli_cmd_setconf(int argc, char **argv); /* also addconf and syncconf */
int cli_cmd_set(int argc, char **argv);
int cli_cmd_up(int argc, char **argv);
int cli_cmd_down(int argc, char **argv);
int cli_cmd_save(int argc, char **argv);
int cli_cmd_strip(int argc, char **argv);
int cli_cmd_cert(int argc, char **argv); /* cert.c */
int cli_cmd_license(int argc, char **argv); /* license.c */
int cli_cmd_forward(int argc, char **argv); /* forward.c: libsecureguard's userspace stack */
int cli_cmd_expose(int argc, char **argv);  /* expose.c: a local service through a gateway */
int cli_cmd_connect(int argc, char **argv); /* connect.c: MFA-gated VPN sessions */
int cli_cmd_disconnect(int argc, char **argv);
/* connect_tls.c: connect --tls-token-out: the session's TLS session token into path. */
bool cli_connect_write_tls_token(const char *server, const char *ca, const char *session_token,
				 const char *path);

/* ---- relay.c: what forward and expose share --------------------------------------------- */

/* "host:port" or "[v6]:port" (host may be empty); port 1-65535. 0 or -1. */
int cli_split_hostport(const char *s, char *host, size_t hostlen, char *port, size_t portlen);
/* HOST:PORT through the system's resolver (the first address); with local, an empty host is
 * localhost. 0 or -1 (printed). */
int cli_resolve_hostport(const char *spec, bool local, int socktype, struct sockaddr_storage *out,
			 socklen_t *outlen);
/* libsecureguard's log and event callbacks: lines on stderr. */
struct sg_event;
void cli_sg_log(void *ctx, int level, const char *line);
void cli_sg_event(void *ctx, const struct sg_event *ev);
/* Copies between two stream sockets both ways until both directions ended (a half close is
 * passed on), an error, or *stop. Blocking writes: a slow reader holds the other side back. */
void cli_relay(int a, int b, volatile sig_atomic_t *stop);

/* ---- util.c ---------------------------------------------------------------------------- */

/* A growing text buffer that wipes what it drops (it may hold keys). */

/* Reads a whole file of at most max bytes into a NUL-terminated malloc'd buffer.
 * 0, or -errno (-EFBIG when larger than max). */
int cli_read_file(const char *path, size_t max, char **out, size_t *len);

/* Reads a key file as `wg set ... private-key FILE` does: base64 plus trailing whitespace; an
 * empty file (or /dev/null) gives the all-zero key, which removes the key. 0 or -1 (printed). */
int cli_read_keyfile(const char *path, uint8_t key[SG_KEY_LEN]);
/* The same for a FIPS private key file (genkey --fips). */
int cli_read_fips_keyfile(const char *path, uint8_t key[SG_FIPS_PRIV_LEN]);

/* Resolves an endpoint host (name or literal) and port, retrying transient failures as wg(8)
 * does (WG_ENDPOINT_RESOLUTION_RETRIES, default 15, "infinity"). 0 or -1 (printed). */
int cli_resolve_endpoint(struct sockaddr_storage *ss, const char *host, uint16_t port);

/* wgdev_from_conf (src/config/wgdev.h) with wg(8)'s endpoint resolution (retries, messages on
 * stderr): without append, replace_peers and the unset interface fields reset, as
 * `wg setconf`. 0 or -1 (printed). */
int cli_device_from_conf(const struct sg_wgconf *conf, const char *ifname, bool append,
			 struct wgdev **out);

/* The running configuration as a parsed config (for showconf and SaveConfig); conf is
 * initialised here. 0 or -1 (printed). */
int cli_conf_from_device(const struct wgdev *dev, struct sg_wgconf *conf);

/* Reads and parses a config file (wg-quick keys included). 0 or -1 (printed). */
int cli_load_conf(const char *path, struct sg_wgconf *conf);

#define CLI_RUN_ECHO  1u /* print "[#] cmd" to stderr first, as wg-quick does */
#define CLI_RUN_QUIET 2u /* the program's stderr goes to /dev/null (a query that may fail) */

/* Runs argv[0] (PATH lookup, no shell) with optional stdin text. With out, stdout is captured
 * (bounded, NUL-terminated, malloc'd). Returns the exit status (0-255), 128+signal, or -errno
 * when it could not run. */
int cli_run(char *const argv[], const char *input, char **out, unsigned int flags);
/* Runs a shell command line through bash -c (or /bin/sh -c without bash), as wg-quick runs its
 * hooks. Exit status or -errno. */
int cli_run_shell(const char *cmd);

/* Prints "secureguard: <msg>: <strerror(-err)>" to stderr. Returns 1 (an exit status). */
int cli_errno(const char *msg, int err);

#endif
