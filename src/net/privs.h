/* Privilege reduction for the daemons (secureguardd, secureguard-iked).
 *
 * The daemon stays uid 0, as wireguard-go does (the UAPI socket and its directory are root's),
 * but once the TUN device and the sockets exist it keeps only two capabilities:
 *   CAP_NET_ADMIN         SO_MARK (fwmark), SO_RCVBUFFORCE, interface MTU
 *   CAP_NET_BIND_SERVICE  rebinding listen_port below 1024
 * Everything else (CAP_DAC_OVERRIDE, CAP_SYS_ADMIN, CAP_SYS_PTRACE, ...) is dropped from the
 * effective, permitted, inheritable, ambient and bounding sets, SECBIT_NOROOT is locked on and
 * PR_SET_NO_NEW_PRIVS set, so neither a bug in the daemon nor a program it could be tricked into
 * executing gets them back. Done with prctl/capset directly (no libcap).
 */
#ifndef SG_NET_PRIVS_H
#define SG_NET_PRIVS_H

#include "common/compiler.h"

/* Makes the process non-dumpable (PR_SET_DUMPABLE 0): no core file and no ptrace attach by
 * non-root, so keys do not end in a core dump. Call first thing. 0 or a negative errno. */
int privs_no_dump(void) SG_WUR;

/* Drops every capability but CAP_NET_ADMIN and CAP_NET_BIND_SERVICE. Returns 0, or a negative
 * errno with *why naming the step (the caller decides whether to go on: steps that need
 * CAP_SETPCAP fail in restricted containers). */
int privs_drop(const char **why) SG_WUR;

#endif
