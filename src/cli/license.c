/* secureguard license: show and check a license offline; the vendor's signing and key tools
 * (docs/SERVER.md, "Licenses"; the format: src/server/license.h). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "crypto/crypto.h"
#include "server/license.h"

static void license_usage(FILE *f)
{
	fprintf(f,
		"Usage: %s license show FILE\n"
		"       %s license sign --key KEYFILE --id ID --customer NAME --seats N\n"
		"                   [--features A,B] --not-before TIME --expiry TIME [--out FILE]\n"
		"       %s license keygen --out KEYFILE\n"
		"\n"
		"  show    check FILE's signature and print its fields and its state now\n"
		"          (exit 0: valid or in its grace period; 1: refused, expired or early)\n"
		"  sign    the vendor's tool: a license signed with KEYFILE (96 hex digits, a P-384\n"
		"          scalar); TIME as 2027-12-01T00:00:00Z, or +DAYS / -DAYS from now\n"
		"  keygen  a new vendor key: KEYFILE (0600) and, on stdout, the public key to build\n"
		"          in (cmake -DSG_LICENSE_VENDOR_KEY=...)\n"
		"Nothing here uses the network.%s\n",
		CLI_PROG, CLI_PROG, CLI_PROG,
		srv_license_test_build() ? " This is a test build: it accepts the test key." : "");
}

static int show(const char *path)
{
	struct srv_license l;
	enum srv_license_state st;
	char err[512], nb[21], ex[21], gr[21];
	int64_t limit;

	if (srv_license_load(path, &l, err, sizeof(err))) {
		fprintf(stderr, "%s: %s\n", CLI_PROG, err);
		return 1;
	}
	st = srv_license_state(&l, (int64_t)time(NULL), &limit);
	srv_license_time(nb, l.not_before);
	srv_license_time(ex, l.expiry);
	srv_license_time(gr, l.expiry + SRV_LICENSE_GRACE_SECS);
	printf("license:     %s\ncustomer:    %s\nseats:       %lld\nfeatures:    ", l.id,
	       l.customer, (long long)l.seats);
	for (int i = 0; i < l.nfeatures; i++)
		printf("%s%s", i ? "," : "", l.features[i]);
	printf("\nnot_before:  %s\nexpiry:      %s (grace until %s)\nsignature:   valid (%s)\n"
	       "state:       %s; client limit %lld\n",
	       nb, ex, gr, l.test_key ? "the test key: test builds only" : "SecureGuard's key",
	       srv_license_state_name(st), (long long)limit);
	if (fflush(stdout))
		return 1;
	return st == SRV_LIC_VALID || st == SRV_LIC_GRACE ? 0 : 1;
}

/* 2027-12-01T00:00:00Z, or +N / -N days from now (for tests and renewals). */
static bool parse_when(const char *s, int64_t *out)
{
	char *end;

	if (s[0] == '+' || s[0] == '-') {
		long d;

		errno = 0;
		d = strtol(s, &end, 10);
		if (errno || *end || d < -36500 || d > 36500)
			return false;
		*out = (int64_t)time(NULL) + (int64_t)d * 86400;
		return true;
	}
	struct tm tm = {0};
	end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!end || *end)
		return false;
	*out = (int64_t)timegm(&tm);
	return true;
}

static int sign(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"key", required_argument, NULL, 'k'},	 {"id", required_argument, NULL, 'i'},
	    {"customer", required_argument, NULL, 'c'}, {"seats", required_argument, NULL, 's'},
	    {"features", required_argument, NULL, 'f'}, {"not-before", required_argument, NULL, 'n'},
	    {"expiry", required_argument, NULL, 'e'},	 {"out", required_argument, NULL, 'o'},
	    {NULL, 0, NULL, 0},
	};
	const char *key = NULL, *out = NULL, *features = "";
	struct srv_license l;
	char text[SRV_LICENSE_MAX_BYTES + 1], err[512], *end;
	bool have_nb = false, have_ex = false;
	int opt;

	memset(&l, 0, sizeof(l));
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'k':
			key = optarg;
			break;
		case 'i':
			snprintf(l.id, sizeof(l.id), "%s", optarg);
			break;
		case 'c':
			snprintf(l.customer, sizeof(l.customer), "%s", optarg);
			break;
		case 's':
			errno = 0;
			l.seats = strtoll(optarg, &end, 10);
			if (errno || *end) {
				fprintf(stderr, "%s: license sign: --seats %s: not a number\n",
					CLI_PROG, optarg);
				return 2;
			}
			break;
		case 'f':
			features = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'n':
		case 'e':
			if (!parse_when(optarg, opt == 'n' ? &l.not_before : &l.expiry)) {
				fprintf(stderr,
					"%s: license sign: %s: expected 2027-12-01T00:00:00Z or "
					"+DAYS/-DAYS\n",
					CLI_PROG, optarg);
				return 2;
			}
			*(opt == 'n' ? &have_nb : &have_ex) = true;
			break;
		default:
			license_usage(stderr);
			return 2;
		}
	}
	if (!key || !l.id[0] || !l.customer[0] || !l.seats || !have_nb || !have_ex ||
	    optind != argc) {
		fprintf(stderr, "%s: license sign: --key, --id, --customer, --seats, --not-before "
				"and --expiry are needed\n",
			CLI_PROG);
		return 2;
	}
	for (const char *p = features; *p && l.nfeatures < SRV_LICENSE_MAX_FEATURES;) {
		size_t n = strcspn(p, ",");

		snprintf(l.features[l.nfeatures++], sizeof(l.features[0]), "%.*s", (int)n, p);
		p += n + (p[n] == ',');
	}
	if (srv_license_sign(&l, key, text, sizeof(text), err, sizeof(err))) {
		fprintf(stderr, "%s: license sign: %s\n", CLI_PROG, err);
		return 1;
	}
	if (!out) {
		fputs(text, stdout);
		return fflush(stdout) ? 1 : 0;
	}
	FILE *f = fopen(out, "wx");
	if (!f || fputs(text, f) < 0 || fclose(f)) {
		fprintf(stderr, "%s: license sign: %s: %s\n", CLI_PROG, out, strerror(errno));
		return 1;
	}
	return 0;
}

static int keygen(int argc, char **argv)
{
	uint8_t priv[SG_P384_PRIV_LEN], pub[SG_P384_PUB_LEN], x[SG_P384_COORD_LEN],
	    y[SG_P384_COORD_LEN];
	char hex[2 * SG_P384_PRIV_LEN + 2];
	int fd, rc = 1;

	if (argc != 3 || strcmp(argv[1], "--out")) {
		license_usage(stderr);
		return 2;
	}
	if (!sg_p384_generate(priv, pub) || !sg_p384_public_xy(x, y, priv)) {
		fprintf(stderr, "%s: license keygen: key generation failed\n", CLI_PROG);
		goto out;
	}
	for (size_t i = 0; i < sizeof(priv); i++)
		snprintf(hex + 2 * i, 3, "%02x", priv[i]);
	hex[2 * SG_P384_PRIV_LEN] = '\n';
	fd = open(argv[2], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, hex, sizeof(hex) - 1) != (ssize_t)sizeof(hex) - 1 || close(fd)) {
		fprintf(stderr, "%s: license keygen: %s: %s\n", CLI_PROG, argv[2], strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < sizeof(x); i++)
		printf("%02x", x[i]);
	for (size_t i = 0; i < sizeof(y); i++)
		printf("%02x", y[i]);
	printf("\n");
	rc = fflush(stdout) ? 1 : 0;
out:
	sg_memzero(priv, sizeof(priv));
	sg_memzero(hex, sizeof(hex));
	return rc;
}

int cli_cmd_license(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		license_usage(stdout);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "show"))
		return show(argv[2]);
	if (argc >= 2 && !strcmp(argv[1], "sign"))
		return sign(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "keygen"))
		return keygen(argc - 1, argv + 1);
	license_usage(stderr);
	return 2;
}
