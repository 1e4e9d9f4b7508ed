/* genkey, genpsk, pubkey: the same formats and checks as wg(8), so keys move freely between
 * secureguard and WireGuard tools. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "config/key.h"
#include "crypto/crypto.h"
#include "secureguard/sg_errors.h"

/* Past the key, wg(8) accepts any amount of whitespace; we stop reading at this much. */
#define PUBKEY_TRAILING_MAX (1u << 20)

static int write_key(const uint8_t key[SG_KEY_LEN])
{
	char b64[SG_KEY_BASE64_LEN + 1];
	int ok;

	sg_key_to_base64(b64, key);
	ok = puts(b64) >= 0 && fflush(stdout) == 0;
	sg_memzero(b64, sizeof(b64));
	if (!ok) {
		perror(CLI_PROG ": writing the key");
		return 1;
	}
	return 0;
}

static int write_text(const char *text)
{
	if (puts(text) < 0 || fflush(stdout) != 0) {
		perror(CLI_PROG ": writing the key");
		return 1;
	}
	return 0;
}

/* genkey --fips: a P-384 private key, 64 base64 characters (docs/PROTOCOL.md, "Keys"). */
static int gen_fips(void)
{
	uint8_t priv[SG_FIPS_PRIV_LEN], pub[SG_FIPS_PUB_LEN];
	char b64[SG_FIPS_PRIV_BASE64_LEN + 1];
	int ret;

	if (!sg_fips_suite_usable() || sg_fipskey_generate(priv, pub)) {
		fprintf(stderr, "%s: genkey: the FIPS suite is not usable (self-test failed)\n",
			CLI_PROG);
		return 1;
	}
	sg_fipskey_priv_to_base64(b64, priv);
	ret = write_text(b64);
	sg_memzero(b64, sizeof(b64));
	sg_memzero(priv, sizeof(priv));
	return ret;
}

/* genkey and genpsk */
static int gen(int argc, char **argv, bool clamp)
{
	uint8_t key[SG_KEY_LEN];
	struct stat st;
	int ret;
	bool fips = clamp && argc == 2 && !strcmp(argv[1], "--fips");

	if (argc != 1 && !fips) {
		fprintf(stderr, "Usage: %s %s%s\n", CLI_PROG, argv[0], clamp ? " [--fips]" : "");
		return 1;
	}
	/* Anything this process creates stays private (wg-quick's habit for key material). The
	 * shell opened a redirected stdout already, so warn about that file like wg(8). */
	umask(077);
	if (!fstat(STDOUT_FILENO, &st) && S_ISREG(st.st_mode) && (st.st_mode & S_IRWXO))
		fputs("Warning: writing to world accessible file.\n"
		      "Consider setting the umask to 077 and trying again.\n",
		      stderr);
	if (fips)
		return gen_fips();
	if (!sg_random_bytes(key, sizeof(key))) {
		fprintf(stderr, "%s: %s: no randomness available\n", CLI_PROG, argv[0]);
		return 1;
	}
	/* RFC 7748 section 5: a private key is stored clamped, as `wg genkey` prints it. */
	if (clamp)
		sg_x25519_clamp(key);
	ret = write_key(key);
	sg_memzero(key, sizeof(key));
	return ret;
}

int cli_cmd_genkey(int argc, char **argv)
{
	return gen(argc, argv, true);
}

int cli_cmd_genpsk(int argc, char **argv)
{
	return gen(argc, argv, false);
}

/* pubkey --fips: a FIPS private key on stdin (64 base64 characters, then only whitespace), its
 * compressed public point out (68 characters). */
static int pubkey_fips(void)
{
	char b64[SG_FIPS_PRIV_BASE64_LEN], out[SG_FIPS_PUB_BASE64_LEN + 1];
	uint8_t priv[SG_FIPS_PRIV_LEN], pub[SG_FIPS_PUB_LEN];
	size_t trailing = 0;
	int c, ret = 1, err;

	setvbuf(stdin, NULL, _IONBF, 0);
	if (fread(b64, 1, sizeof(b64), stdin) != sizeof(b64)) {
		fprintf(stderr, "%s: pubkey: invalid FIPS key on stdin (not %u base64 characters)\n",
			CLI_PROG, SG_FIPS_PRIV_BASE64_LEN);
		goto out;
	}
	while ((c = getc(stdin)) != EOF) {
		if (!isspace(c) && c) {
			fprintf(stderr, "%s: pubkey: invalid FIPS key on stdin (trailing characters)\n",
				CLI_PROG);
			goto out;
		}
		if (++trailing > PUBKEY_TRAILING_MAX) {
			fprintf(stderr, "%s: pubkey: invalid FIPS key on stdin (too long)\n", CLI_PROG);
			goto out;
		}
	}
	err = sg_fipskey_priv_from_base64(priv, b64, sizeof(b64));
	if (err) {
		fprintf(stderr, "%s: pubkey: invalid FIPS key on stdin (%s)\n", CLI_PROG,
			err == SG_EPARSE ? "not base64" : "scalar out of range");
		goto out;
	}
	if (sg_fipskey_public(pub, priv)) {
		fprintf(stderr, "%s: pubkey: P-384 failed\n", CLI_PROG);
		goto out;
	}
	sg_fipskey_pub_to_base64(out, pub);
	ret = write_text(out);
out:
	sg_memzero(b64, sizeof(b64));
	sg_memzero(priv, sizeof(priv));
	return ret;
}

int cli_cmd_pubkey(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "--fips"))
		return pubkey_fips();
	char b64[SG_KEY_BASE64_LEN];
	uint8_t priv[SG_KEY_LEN], pub[SG_KEY_LEN];
	size_t trailing = 0;
	int c, ret = 1;

	if (argc != 1) {
		fprintf(stderr, "Usage: %s %s [--fips]\n", CLI_PROG, argv[0]);
		return 1;
	}
	/* Unbuffered, so no copy of the private key stays behind in a stdio buffer. */
	setvbuf(stdin, NULL, _IONBF, 0);
	/* Exactly 44 characters, then only whitespace (or NULs) to the end, as wg(8) reads it. */
	if (fread(b64, 1, sizeof(b64), stdin) != sizeof(b64)) {
		fprintf(stderr, "%s: pubkey: invalid key on stdin (not 44 base64 characters)\n",
			CLI_PROG);
		goto out;
	}
	while ((c = getc(stdin)) != EOF) {
		if (c && c != ' ' && c != '\t' && c != '\n' && c != '\v' && c != '\f' &&
		    c != '\r') {
			fprintf(stderr, "%s: pubkey: invalid key on stdin (trailing characters)\n",
				CLI_PROG);
			goto out;
		}
		if (++trailing > PUBKEY_TRAILING_MAX) {
			fprintf(stderr, "%s: pubkey: invalid key on stdin (too long)\n", CLI_PROG);
			goto out;
		}
	}
	if (ferror(stdin)) {
		perror(CLI_PROG ": pubkey: reading stdin");
		goto out;
	}
	if (sg_key_from_base64(priv, b64, sizeof(b64))) {
		fprintf(stderr, "%s: pubkey: invalid key on stdin (not a base64 key)\n", CLI_PROG);
		goto out;
	}
	if (!sg_x25519_public(pub, priv)) {
		fprintf(stderr, "%s: pubkey: X25519 failed\n", CLI_PROG);
		goto out;
	}
	ret = write_key(pub);
out:
	sg_memzero(b64, sizeof(b64));
	sg_memzero(priv, sizeof(priv));
	return ret;
}
