/* secureguard cert: a small CA for the TLS-over-TCP transport (docs/TLS.md). P-384 ECDSA keys
 * and X.509 v3 certificates good for both server and client authentication, made through
 * net/tls_cert.c; the openssl commands that do the same are in docs/TLS.md. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/evp.h>

#include "cli/cli.h"
#include "crypto/crypto.h"
#include "net/tls_cert.h"

#define CERT_MAX_SANS 32
#define CERT_MAX_DAYS 36500
/* Accept certificates as valid from a few minutes ago: clocks of the peers differ. */
#define CERT_BACKDATE_S 300

static void cert_usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: %s cert ca --out DIR [--name NAME] [--days N] [--fips] [--key-uri URI]\n"
	    "       %s cert issue --ca DIR --name NAME [--ip ADDR]... [--dns HOST]... --out DIR\n"
	    "                     [--days N] [--fips]\n"
	    "       %s cert pin CERT.pem\n"
	    "       %s cert revoke --ca DIR CERT.pem\n"
	    "       %s cert crl --ca DIR --out FILE [--days N] [--fips]\n"
	    "\n"
	    "  ca     new CA: DIR/ca.key (0600) and DIR/ca.crt (default 3650 days); with\n"
	    "         --key-uri 'pkcs11:...' the CA key is that key of a PKCS#11 token:\n"
	    "         DIR/ca.key-uri names it and every signature is made in the token (PIN\n"
	    "         from SECUREGUARD_PKCS11_PIN or SECUREGUARD_PKCS11_PIN_FILE)\n"
	    "  issue  new key and certificate signed by the CA: DIR/NAME.key (0600) and\n"
	    "         DIR/NAME.crt (default 397 days), for server and client authentication\n"
	    "  pin    the SHA-256 of a certificate's public key, for a pinned server\n"
	    "  revoke add a certificate the CA issued to DIR/revoked.txt\n"
	    "  crl    write FILE, the CA's certificate revocation list (default 30 days), for\n"
	    "         TlsCRL; written beside FILE and renamed, so a daemon re-reads it whole\n"
	    "Keys are ECDSA P-384, signatures ECDSA-SHA-384. Existing files are never\n"
	    "overwritten. --fips uses the OpenSSL FIPS provider (it must be configured).\n",
	    CLI_PROG, CLI_PROG, CLI_PROG, CLI_PROG, CLI_PROG);
}

static int parse_days(const char *s, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 1 || v > CERT_MAX_DAYS) {
		fprintf(stderr, "%s: cert: --days %s: expected 1 to %d\n", CLI_PROG, s,
			CERT_MAX_DAYS);
		return -1;
	}
	*out = v;
	return 0;
}

static void print_pin(const char *path)
{
	uint8_t pin[SG_TLS_PIN_LEN];
	char err[256];
	unsigned char b64[4 * ((SG_TLS_PIN_LEN + 2) / 3) + 1];

	if (sg_tls_pin_from_cert_file(path, pin, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: cert: %s\n", CLI_PROG, err);
		return;
	}
	EVP_EncodeBlock(b64, pin, SG_TLS_PIN_LEN);
	printf("pin-sha256: %s\n", b64);
}

static int cert_pin(int argc, char **argv)
{
	uint8_t pin[SG_TLS_PIN_LEN];
	char err[256];
	unsigned char b64[4 * ((SG_TLS_PIN_LEN + 2) / 3) + 1];

	if (argc != 2) {
		cert_usage(stderr);
		return 1;
	}
	if (sg_tls_pin_from_cert_file(argv[1], pin, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: cert: %s\n", CLI_PROG, err);
		return 1;
	}
	EVP_EncodeBlock(b64, pin, SG_TLS_PIN_LEN);
	printf("pin-sha256: %s\nhex: ", b64);
	for (size_t i = 0; i < SG_TLS_PIN_LEN; i++)
		printf("%02x", pin[i]);
	printf("\n");
	return fflush(stdout) ? 1 : 0;
}

static int cert_revoke(int argc, char **argv)
{
	const char *ca = NULL, *file = NULL;
	char serial[41], err[512];
	bool already;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--ca") && i + 1 < argc)
			ca = argv[++i];
		else if (argv[i][0] != '-' && !file)
			file = argv[i];
		else {
			fprintf(stderr, "%s: cert revoke: unexpected `%s'\n", CLI_PROG, argv[i]);
			cert_usage(stderr);
			return 1;
		}
	}
	if (!ca || !file) {
		fprintf(stderr, "%s: cert revoke: missing %s\n", CLI_PROG, !ca ? "--ca" : "CERT.pem");
		return 1;
	}
	if (sg_tls_cert_revoke(ca, file, serial, &already, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: cert revoke: %s\n", CLI_PROG, err);
		return 1;
	}
	printf("%s serial %s; publish it: %s cert crl --ca %s --out FILE\n",
	       already ? "already revoked:" : "revoked", serial, CLI_PROG, ca);
	return fflush(stdout) ? 1 : 0;
}

static int cert_crl(int argc, char **argv)
{
	const char *ca = NULL, *out = NULL;
	long days = SG_TLS_CRL_DAYS;
	bool fips = false;
	char err[512];
	int n;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--fips")) {
			fips = true;
		} else if (i + 1 < argc && !strcmp(argv[i], "--ca")) {
			ca = argv[++i];
		} else if (i + 1 < argc && !strcmp(argv[i], "--out")) {
			out = argv[++i];
		} else if (i + 1 < argc && !strcmp(argv[i], "--days")) {
			if (parse_days(argv[++i], &days) != 0)
				return 1;
		} else {
			fprintf(stderr, "%s: cert crl: unexpected `%s'\n", CLI_PROG, argv[i]);
			cert_usage(stderr);
			return 1;
		}
	}
	if (!ca || !out) {
		fprintf(stderr, "%s: cert crl: missing %s\n", CLI_PROG, !ca ? "--ca" : "--out");
		return 1;
	}
	if (fips && !sg_crypto_fips_provider_active()) {
		fprintf(stderr, "%s: cert crl: --fips: the OpenSSL FIPS provider is not active\n",
			CLI_PROG);
		return 1;
	}
	if (sg_tls_cert_crl(ca, out, days, fips, &n, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: cert crl: %s\n", CLI_PROG, err);
		return 1;
	}
	printf("wrote %s: %d revoked certificate(s), next update in %ld days\n", out, n, days);
	return fflush(stdout) ? 1 : 0;
}

int cli_cmd_cert(int argc, char **argv)
{
	const char *dns[CERT_MAX_SANS], *ips[CERT_MAX_SANS];
	const char *out = NULL, *ca = NULL, *name = NULL;
	struct sg_tls_cert_req req;
	bool fips = false, issue;
	long days = 0;
	char err[512];
	int ret;

	memset(&req, 0, sizeof(req));
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		cert_usage(stdout);
		return 0;
	}
	if (argc < 2) {
		cert_usage(stderr);
		return 1;
	}
	if (!strcmp(argv[1], "pin"))
		return cert_pin(argc - 1, argv + 1);
	if (!strcmp(argv[1], "revoke"))
		return cert_revoke(argc - 1, argv + 1);
	if (!strcmp(argv[1], "crl"))
		return cert_crl(argc - 1, argv + 1);
	if (strcmp(argv[1], "ca") != 0 && strcmp(argv[1], "issue") != 0) {
		fprintf(stderr, "%s: cert: unknown action `%s'\n", CLI_PROG, argv[1]);
		cert_usage(stderr);
		return 1;
	}
	issue = !strcmp(argv[1], "issue");
	for (int i = 2; i < argc; i++) {
		const char *opt = argv[i];
		if (!strcmp(opt, "--fips")) {
			fips = true;
			continue;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "%s: cert: %s needs a value\n", CLI_PROG, opt);
			return 1;
		}
		const char *val = argv[++i];
		if (!strcmp(opt, "--out")) {
			out = val;
		} else if (!strcmp(opt, "--name")) {
			name = val;
		} else if (!strcmp(opt, "--days")) {
			if (parse_days(val, &days) != 0)
				return 1;
		} else if (!issue && !strcmp(opt, "--key-uri")) {
			req.key_uri = val;
		} else if (issue && !strcmp(opt, "--ca")) {
			ca = val;
		} else if (issue && (!strcmp(opt, "--dns") || !strcmp(opt, "--ip"))) {
			bool is_dns = !strcmp(opt, "--dns");
			size_t *n = is_dns ? &req.n_dns : &req.n_ips;
			if (*n == CERT_MAX_SANS) {
				fprintf(stderr, "%s: cert: at most %d %s\n", CLI_PROG,
					CERT_MAX_SANS, opt);
				return 1;
			}
			(is_dns ? dns : ips)[(*n)++] = val;
		} else {
			fprintf(stderr, "%s: cert %s: unknown option `%s'\n", CLI_PROG, argv[1],
				opt);
			cert_usage(stderr);
			return 1;
		}
	}
	if (!out || (issue && (!ca || !name))) {
		fprintf(stderr, "%s: cert %s: missing %s\n", CLI_PROG, argv[1],
			!out  ? "--out"
			: !ca ? "--ca"
			      : "--name");
		return 1;
	}
	if (fips && !sg_crypto_fips_provider_active()) {
		fprintf(stderr,
			"%s: cert %s: --fips: the OpenSSL FIPS provider is not active (install and "
			"enable it in openssl.cnf)\n",
			CLI_PROG, argv[1]);
		return 1;
	}
	time_t now = time(NULL);
	req.name = name ? name : "SecureGuard-CA";
	req.dns = dns;
	req.ips = ips;
	req.fips = fips;
	req.not_before = (int64_t)now - CERT_BACKDATE_S;
	req.not_after = (int64_t)now + (int64_t)(days ? days : issue ? 397 : 3650) * 86400;
	/* Keys are written 0600 by tls_cert.c; keep anything else this process makes private. */
	umask(077);
	if (issue)
		ret = sg_tls_cert_issue(ca, &req, out, err, sizeof(err));
	else
		ret = sg_tls_cert_make_ca(out, &req, err, sizeof(err));
	if (ret != 0) {
		fprintf(stderr, "%s: cert %s: %s\n", CLI_PROG, argv[1], err);
		return 1;
	}
	char crt[PATH_MAX];
	snprintf(crt, sizeof(crt), "%s/%s.crt", out, issue ? req.name : "ca");
	printf("wrote %s/%s.key%s and %s\n", out, issue ? req.name : "ca",
	       req.key_uri ? "-uri" : "", crt);
	print_pin(crt);
	return fflush(stdout) ? 1 : 0;
}
