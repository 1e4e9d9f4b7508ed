/* Process life of the daemons (secureguardd, secureguard-iked): daemonizing with a readiness
 * pipe, so that the parent exits 0 only once the child says it is ready (its interface and
 * sockets exist), and detaching from the terminal then. */
#ifndef SG_NET_PROC_H
#define SG_NET_PROC_H

/* Forks; returns in the child (with the write end of the readiness pipe) and never in the
 * parent, which exits with the child's verdict: 0 after proc_ready, 1 if the child exits first. */
int proc_daemonize(void);
/* The child is ready: stdin/stdout/stderr to /dev/null, logs to syslog as `ident`, and the
 * parent released. */
void proc_ready(int ready_fd, const char *ident);

#endif
