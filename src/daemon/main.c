/* secureguardd [-f|--foreground] [-v] [--fips-strict] [--log-*] IFNAME
 *
 * A drop-in for wireguard-go: same command line and environment (WG_PROCESS_FOREGROUND=1,
 * LOG_LEVEL=debug), same control socket, so `wg`, `wg-quick` (WG_QUICK_USERSPACE_IMPLEMENTATION)
 * and our own CLI drive it. Without -f it daemonizes: fork, setsid, and the parent exits 0 only
 * once the child reports that the interface and the socket exist (1 otherwise), so a script can
 * run `wg setconf` right after it. The engine is src/engine's, the one libsecureguard wraps too.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/logopt.h"
#include "crypto/crypto.h"
#include "engine/engine.h"
#include "net/privs.h"
#include "net/proc.h"
#include "net/tun.h"

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"Usage: %s [-f/--foreground] [-v/--verbose] [--fips-strict] [log options]\n"
		"          INTERFACE-NAME\n" SG_LOG_USAGE
		"Without -f it logs to syslog once it runs in the background, unless --log-file.\n",
		prog);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"foreground", no_argument, NULL, 'f'},  {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},	     {"version", no_argument, NULL, 'V'},
	    {"fips-strict", no_argument, NULL, 'S'}, SG_LOG_LONGOPTS,
	    {NULL, 0, NULL, 0},
	};
	struct sg_logopt logopt;
	char lerr[512];
	bool foreground = false, verbose = false, fips_strict = false;
	const char *why = "";
	int opt, err;

	/* Before any key exists: no core dump can hold one. */
	int nodump = privs_no_dump();

	sg_logopt_init(&logopt);
	while ((opt = getopt_long(argc, argv, "fvh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			foreground = true;
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			usage(stdout, argv[0]);
			return 0;
		case 'S':
			fips_strict = true;
			break;
		case 'V':
			printf("secureguardd %s\n\nUserspace WireGuard-compatible daemon "
			       "(SecureGuard).\n",
			       SG_VERSION);
			return 0;
		default:
			switch (sg_logopt_parse(&logopt, opt, optarg, "secureguardd")) {
			case 1:
				break;
			case 0:
				usage(stderr, argv[0]);
				return 1;
			default:
				return 1;
			}
		}
	}
	if (optind != argc - 1) {
		usage(stderr, argv[0]);
		return 1;
	}
	const char *ifname = argv[optind];
	const char *env = getenv("WG_PROCESS_FOREGROUND");
	if (env && strcmp(env, "1") == 0)
		foreground = true;
	/* wireguard-go's LOG_LEVEL values: verbose/debug, error, silent. */
	enum sg_log_level level = SG_LOG_INFO;
	env = getenv("LOG_LEVEL");
	if (env && (strcmp(env, "debug") == 0 || strcmp(env, "verbose") == 0))
		verbose = true;
	else if (env && strcmp(env, "error") == 0)
		level = SG_LOG_ERROR;
	else if (env && strcmp(env, "silent") == 0)
		level = SG_LOG_SILENT;

	sg_log_open("secureguardd", SG_LOG_TO_STDERR);
	sg_log_set_level(verbose ? SG_LOG_DEBUG : level);
	/* --log-level wins over LOG_LEVEL and -v. */
	if (sg_logopt_apply(&logopt, "secureguardd", lerr, sizeof(lerr)) != 0) {
		fprintf(stderr, "secureguardd: %s\n", lerr);
		return 1;
	}
	if (!tun_name_valid(ifname)) {
		sg_log(SG_LOG_ERROR, "invalid_interface_name",
		       "error=\"1 to 15 bytes without '/', ':', '%%' or spaces\"");
		return 1;
	}
	char context[32];
	snprintf(context, sizeof(context), "dev=%s", ifname);
	sg_log_set_context(context);
	if (nodump != 0)
		sg_log(SG_LOG_WARN, "no_dump_failed", "error=\"%s\"", strerror(-nodump));

	/* FIPS mode's preconditions, before anything is created (docs/PROTOCOL.md, "FIPS
	 * provider"): --fips-strict (or SG_FIPS_STRICT=1) refuses to start without an active
	 * OpenSSL FIPS provider; a failed self-test of the fips suite refuses too. */
	env = getenv("SG_FIPS_STRICT");
	if (env && strcmp(env, "1") == 0)
		fips_strict = true;
	if (sg_crypto_init() != 0) {
		sg_log(SG_LOG_ERROR, "crypto_init_failed",
		       "error=\"OpenSSL (%s) provides neither P-384/AES-256-GCM/SHA-384 nor the "
		       "classic algorithms; check OPENSSL_CONF and its providers\"",
		       sg_crypto_library_version());
		return 1;
	}
	if (!sg_crypto_classic_available())
		sg_log(SG_LOG_WARN, "classic_unavailable",
		       "error=\"OpenSSL offers no X25519/ChaCha20/BLAKE2s (FIPS provider only)\" "
		       "action=\"FIPS mode only: classic keys and peers are refused\"");
	if (fips_strict && !sg_crypto_fips_provider_active()) {
		sg_log(SG_LOG_ERROR, "fips_provider_missing",
		       "error=\"--fips-strict: OpenSSL has no active FIPS provider (%s); configure "
		       "one with openssl-fipsinstall(1) and OPENSSL_CONF\"",
		       sg_crypto_library_version());
		return 1;
	}
	{
		char desc[512];

		/* Where the suites come from, asked of OpenSSL: the line an auditor reads. */
		sg_log(SG_LOG_INFO, "crypto_providers", "%s", sg_crypto_describe(desc, sizeof(desc)));
	}
	if (!sg_fips_suite_usable()) {
		sg_log(fips_strict ? SG_LOG_ERROR : SG_LOG_WARN, "fips_selftest_failed",
		       "error=\"the FIPS suite failed its known-answer self-test\"%s",
		       fips_strict ? "" : " action=\"FIPS keys will be refused\"");
		if (fips_strict)
			return 1;
	}

	/* Signals arrive through the loop's signalfd; a UAPI client that hangs up must not kill
	 * us (sends use MSG_NOSIGNAL too). */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGUSR1);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	int ready_fd = foreground ? -1 : proc_daemonize();

	if (sg_crypto_init() != 0) {
		sg_log(SG_LOG_ERROR, "crypto_init_failed", "library=%s",
		       sg_crypto_library_version());
		return 1;
	}
	struct engine *d = NULL;
	struct engine_opts opts = {
	    .io = ENGINE_TUN_CREATE,
	    .ifname = ifname,
	    .ctlsock = true,
	    .signals = true,
	    .link_monitor = true,
	};
	/* Offloads are used when the kernel has them; this turns them off, to compare or to work
	 * around a kernel that gets them wrong. */
	env = getenv("SG_DISABLE_OFFLOAD");
	opts.no_offload = env && strcmp(env, "1") == 0;
	opts.fips_strict = fips_strict;
	err = engine_init(&d, &opts, &why);
	if (err != 0) {
		char q[128];
		sg_log(SG_LOG_ERROR, "start_failed", "step=%s error=\"%s\"",
		       sg_log_quote(q, sizeof(q), why), strerror(-err));
		return 1;
	}
	err = privs_drop(&why);
	if (err != 0)
		sg_log(SG_LOG_WARN, "privilege_drop_incomplete", "step=%s error=\"%s\"", why,
		       strerror(-err));
	if (ready_fd >= 0)
		proc_ready(ready_fd, "secureguardd");
	sg_log(SG_LOG_INFO, "started", "version=%s pid=%d ifindex=%d listen_port=%u mode=%s",
	       SG_VERSION, (int)getpid(), (int)if_nametoindex(engine_ifname(d)),
	       engine_listen_port(d), foreground ? "foreground" : "daemon");
	int rc = engine_run(d);
	engine_free(d);
	sg_log_close();
	return rc;
}
