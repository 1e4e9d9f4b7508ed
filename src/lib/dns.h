/* Names resolved inside the tunnel: the config's DNS servers over the userspace stack (c-ares
 * for the protocol). See dns.c. */
#ifndef SG_LIB_DNS_H
#define SG_LIB_DNS_H

#include <stddef.h>
#include <sys/socket.h>

#include "common/compiler.h"
#include "lib/stack.h"

/* Resolves name (AF_INET, AF_INET6 or AF_UNSPEC) asking `servers` ("10.0.0.53,fd00::53")
 * through the stack within timeout_ms. 0, SG_ENOENT (no such name or no address of that
 * family), SG_EAGAIN (no answer in time), another SG_E* code; why says what. Any thread but the
 * stack's. */
int dns_resolve(struct stack_if *s, const char *servers, const char *name, int family,
		int timeout_ms, struct sockaddr_storage *out, socklen_t *outlen, char *why,
		size_t whylen) SG_WUR;

#endif
