/* Client of the cross-platform WireGuard UAPI (https://www.wireguard.com/xplatform/), spoken by
 * secureguardd and wireguard-go on the unix socket /var/run/wireguard/IFNAME.sock:
 *   "get=1\n\n"          -> "key=value\n"... "errno=N\n\n"
 *   "set=1\nkey=value\n...\n" -> "errno=N\n\n"
 * Keys travel as 64 hex digits. Functions here return 0 or a negative errno value, because the
 * daemon reports errno numbers and the messages print them with strerror().
 */
#ifndef SG_CLI_IPC_H
#define SG_CLI_IPC_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config/key.h"
#include "config/wgconf.h"
#include "config/wgdev.h"

#define CLI_SOCK_DIR	"/var/run/wireguard"
#define CLI_SOCK_SUFFIX ".sock"

/* Bounds on what a get reply may hold, so a broken daemon cannot exhaust memory. */
#define CLI_MAX_REPLY_LINE 4096
/* The whole reply: the per-peer bounds alone would still allow 2^20 x 4096 allowed IPs
 * (hundreds of gigabytes), and a daemon streaming unknown keys would keep us reading forever.
 * A million peers with an endpoint and an allowed IP each are about 330 MiB. */
#define CLI_MAX_REPLY_BYTES (1u << 30)

/* True when ifname is a valid interface name (1-15 characters, no '/', not "." or ".."). */
bool cli_ifname_valid(const char *ifname);
/* True when the control socket of ifname accepts connections (a stale socket is removed, as
 * wg(8) does). */
bool cli_ipc_exists(const char *ifname);
/* The interfaces with a live control socket, in directory order (as `wg show interfaces`).
 * *names is a malloc'd array of malloc'd strings; free with cli_ipc_list_free. */
int cli_ipc_list(char ***names, size_t *n);
void cli_ipc_list_free(char **names, size_t n);
/* Reads the running configuration. *out is NULL on failure. */
int cli_ipc_get(const char *ifname, struct wgdev **out);
/* Applies dev (only the fields its flags name). */
int cli_ipc_set(const struct wgdev *dev);

/* "auto", "fips", "classic"; SG_WGCONF_MODE_UNSET for anything else. */
enum sg_wgconf_mode cli_mode_parse(const char *s);

#endif
