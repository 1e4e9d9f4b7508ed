/* `secureguard gateway`: the zero-trust edge proxy (issue 15, docs/GATEWAY.md). HTTP(S),
 * TCP and UDP from the internet go to targets behind SecureGuard tunnels, after the checks of
 * the resource they address. One thread on the project's event loop (net/evloop.h). */
#ifndef SG_GATEWAY_GATEWAY_H
#define SG_GATEWAY_GATEWAY_H

#include "common/compiler.h"

struct gw_opts {
	const char *config_file; /* JSON config (docs/GATEWAY.md); SIGHUP reloads it */
	const char *state_dir;	 /* last-known-good config, self-signed certificate */
	const char *http_addr;	 /* "[::]:80" by default; "off" for none */
	const char *https_addr;	 /* NULL: no TLS listener */
	const char *metrics_addr; /* NULL: no metrics listener */
	const char *access_log;	 /* file, "-" for stdout, NULL for none */
	/* Managed by the server (managed.c): its base URL, the one-time enrolment token (used
	 * while not enrolled), the CA of its certificate, seconds between reports and between
	 * plain polls when pushes do not get through. */
	const char *server;
	const char *enroll;
	const char *ca_file;
	int report_s, poll_s;
};

/* Runs until SIGTERM or SIGINT. Returns the process exit status. */
int gw_run(const struct gw_opts *o);

/* The `gateway` subcommand (argv[0] is "gateway"). */
int gw_cmd(int argc, char **argv);

#endif
