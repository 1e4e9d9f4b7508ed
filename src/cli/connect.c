/* secureguard connect / disconnect: MFA-gated VPN sessions (docs/SERVER.md "MFA-gated VPN
 * sessions").
 *
 *   secureguard connect --server URL [--ca-file F] [--email E] [--code C] [--duration S] CLIENT
 *   secureguard connect --server URL --oidc [--no-browser] [--ca-file F] [--duration S] CLIENT
 *   secureguard disconnect [--ca-file F] CLIENT
 *
 * On a network with mfa_required a client is a peer of its hubs only while its owner holds a
 * session. `connect` proves the owner's password and a TOTP (or recovery) code to the server
 * (POST /api/vpn-sessions), or with --oidc signs in through the server's OpenID provider in the
 * browser (connect_oidc.c), and keeps the session's token in the state directory (0600), so that
 * `disconnect` can end it (POST /api/vpn-sessions/end). The tunnel itself is brought up as
 * always (`secureguard up`): the hub lets it in while the session lasts.
 *
 * Secrets: the password and code come from the environment (SECUREGUARD_PASSWORD,
 * SECUREGUARD_CODE, for scripts), a file (--password-file), or are asked on the terminal
 * without echo; they are wiped after use and never printed. The server talk is
 * libsecureguard's (sg_session_open, sg_session_end: the C API apps use).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <secureguard/sg.h>

#include "cli/cli.h"
#include "cli/connect_oidc.h"
#include "crypto/crypto.h"

#define SECRET_MAX     1024
#define OIDC_WAIT_S    300 /* for the browser to come back: the provider's mfa_token lives 5 min */

/* A secret: the environment variable, else the file, else the terminal (no echo). false with
 * a message when none can be had. */
static bool read_secret(const char *env, const char *file, const char *prompt, char *out,
			size_t cap)
{
	const char *v = getenv(env);
	size_t n;

	if (v) {
		if (strlen(v) >= cap)
			return false;
		snprintf(out, cap, "%s", v);
		return true;
	}
	if (file) {
		char *buf = NULL;
		size_t len = 0;
		int rc = cli_read_file(file, cap - 1, &buf, &len);

		if (rc) {
			fprintf(stderr, "%s: %s: %s\n", CLI_PROG, file, strerror(-rc));
			return false;
		}
		while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
			len--;
		memcpy(out, buf, len);
		out[len] = 0;
		sg_memzero(buf, len);
		free(buf);
		return true;
	}
	{
		FILE *tty = fopen("/dev/tty", "r+");
		struct termios old, quiet;
		bool ok;

		if (!tty) {
			fprintf(stderr, "%s: no terminal to ask for %s: set %s\n", CLI_PROG, prompt,
				env);
			return false;
		}
		fprintf(tty, "%s: ", prompt);
		fflush(tty);
		ok = tcgetattr(fileno(tty), &old) == 0;
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		if (ok)
			tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
		ok = fgets(out, (int)cap, tty) != NULL;
		if (tcgetattr(fileno(tty), &quiet) == 0)
			tcsetattr(fileno(tty), TCSAFLUSH, &old);
		fputc('\n', tty);
		fclose(tty);
		if (!ok)
			return false;
		n = strlen(out);
		while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
			out[--n] = 0;
		return true;
	}
}

/* The state directory: --state-dir, $XDG_STATE_HOME/secureguard, ~/.local/state/secureguard;
 * created 0700. */
static bool state_dir(const char *given, char *out, size_t cap)
{
	const char *x = getenv("XDG_STATE_HOME"), *home = getenv("HOME");

	if (given)
		snprintf(out, cap, "%s", given);
	else if (x && *x)
		snprintf(out, cap, "%s/secureguard", x);
	else if (home && *home)
		snprintf(out, cap, "%s/.local/state/secureguard", home);
	else {
		fprintf(stderr, "%s: no state directory: give --state-dir\n", CLI_PROG);
		return false;
	}
	if (!given && home && !(x && *x)) {
		char parent[1024];

		snprintf(parent, sizeof(parent), "%s/.local", home);
		(void)mkdir(parent, 0700);
		snprintf(parent, sizeof(parent), "%s/.local/state", home);
		(void)mkdir(parent, 0700);
	}
	if (mkdir(out, 0700) && errno != EEXIST) {
		fprintf(stderr, "%s: %s: %s\n", CLI_PROG, out, strerror(errno));
		return false;
	}
	return true;
}

/* FNV-1a of a client's name or id: its session file's name. */
static unsigned long name_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static bool same(json_t *o, const char *k, const char *v)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s && !strcmp(s, v);
}

/* A session file of dir whose client id or name is client (its path into path); NULL when
 * none. */
static json_t *find_session(const char *dir, const char *client, char *path, size_t cap)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	json_t *found = NULL;

	if (!d)
		return NULL;
	while (!found && (e = readdir(d))) {
		json_t *j;

		if (strncmp(e->d_name, "vpn-session-", 12))
			continue;
		if ((size_t)snprintf(path, cap, "%.900s/%.255s", dir, e->d_name) >= cap)
			continue;
		j = json_load_file(path, 0, NULL);
		if (j && same(j, "client", client))
			found = j;
		else
			json_decref(j);
	}
	closedir(d);
	return found;
}

static void connect_usage(FILE *f)
{
	fprintf(f,
		"Usage: %s connect --server URL [--ca-file FILE] [--email EMAIL] [--code CODE]\n"
		"         [--password-file FILE] [--duration SECONDS] [--state-dir DIR]\n"
		"         [--tls-token-out FILE] CLIENT\n"
		"       %s connect --server URL --oidc [--no-browser] [--ca-file FILE]\n"
		"         [--duration SECONDS] [--state-dir DIR] [--tls-token-out FILE] CLIENT\n"
		"Opens an MFA session for CLIENT (its id or name) of an mfa_required network: the\n"
		"hubs list it as a peer until the session ends (its network's mfa_session_hours,\n"
		"or --duration), `%s disconnect CLIENT`, or an admin revokes it.\n"
		"The password comes from SECUREGUARD_PASSWORD, --password-file or the terminal;\n"
		"the code (TOTP or recovery) from --code, SECUREGUARD_CODE or the terminal; the\n"
		"e-mail from --email, SECUREGUARD_EMAIL or the terminal.\n"
		"--oidc signs in through the server's login page in a browser on this machine\n"
		"instead (password and TOTP or a passkey); it prints the address to open and\n"
		"opens it with xdg-open unless --no-browser. --tls-token-out writes the\n"
		"session's TLS session token (the client's TlsSessionToken file).\n",
		CLI_PROG, CLI_PROG, CLI_PROG);
}

int cli_cmd_connect(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"server", required_argument, NULL, 's'},	{"ca-file", required_argument, NULL, 'c'},
	    {"email", required_argument, NULL, 'e'},	{"code", required_argument, NULL, 'k'},
	    {"password-file", required_argument, NULL, 'p'},
	    {"duration", required_argument, NULL, 'd'}, {"state-dir", required_argument, NULL, 'S'},
	    {"oidc", no_argument, NULL, 'O'},		{"no-browser", no_argument, NULL, 'B'},
	    {"tls-token-out", required_argument, NULL, 'T'},
	    {"help", no_argument, NULL, 'h'},		{NULL, 0, NULL, 0}};
	bool oidc = false, no_browser = false;
	const char *server = NULL, *ca = NULL, *email_opt = NULL, *code_opt = NULL,
		   *pwfile = NULL, *sdir = NULL, *tls_out = NULL, *client;
	char email[320], password[SECRET_MAX], code[64], dir[1024], path[1200], why[512];
	char token[SG_SESSION_TOKEN_MAX];
	long duration = 0;
	int64_t expires = 0;
	int opt, ret = 1;
	sg_result rc;

	password[0] = code[0] = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 's': server = optarg; break;
		case 'c': ca = optarg; break;
		case 'e': email_opt = optarg; break;
		case 'k': code_opt = optarg; break;
		case 'p': pwfile = optarg; break;
		case 'S': sdir = optarg; break;
		case 'O': oidc = true; break;
		case 'B': no_browser = true; break;
		case 'T': tls_out = optarg; break;
		case 'd': {
			char *end;

			errno = 0;
			duration = strtol(optarg, &end, 10);
			if (errno || *end || duration < 10 || duration > 2592000) {
				fprintf(stderr, "%s: --duration: 10 to 2592000 seconds\n", CLI_PROG);
				return 1;
			}
			break;
		}
		case 'h': connect_usage(stdout); return 0;
		default: connect_usage(stderr); return 1;
		}
	}
	if (!server || optind != argc - 1 || (oidc && (email_opt || code_opt || pwfile)) ||
	    (no_browser && !oidc)) {
		connect_usage(stderr);
		return 1;
	}
	client = argv[optind];
	if (!state_dir(sdir, dir, sizeof(dir)))
		return 1;
	if (oidc) {
		/* The factors are asked by the server's page, in the browser. */
		rc = cli_connect_oidc(server, ca, client, (int)duration, no_browser, OIDC_WAIT_S,
				      token, sizeof(token), &expires, why, sizeof(why));
	} else {
		if (email_opt)
			snprintf(email, sizeof(email), "%s", email_opt);
		else if (!read_secret("SECUREGUARD_EMAIL", NULL, "E-mail", email, sizeof(email)))
			return 1;
		if (!read_secret("SECUREGUARD_PASSWORD", pwfile, "Password", password,
				 sizeof(password)))
			goto out;
		if (code_opt)
			snprintf(code, sizeof(code), "%s", code_opt);
		else if (!read_secret("SECUREGUARD_CODE", NULL, "Authenticator code", code,
				      sizeof(code)))
			goto out;
		rc = sg_session_open(server, ca, client, email, password, code, (int)duration,
				     token, sizeof(token), &expires, why, sizeof(why));
	}
	if (rc != SG_EOK) {
		fprintf(stderr, "%s: connect: %s: %s\n", CLI_PROG, sg_strerror(rc), why);
		goto out;
	}
	{
		json_t *keep = json_pack("{s:s,s:s,s:s,s:I}", "server", server, "client", client,
					 "session_token", token, "expires_at", (json_int_t)expires);
		FILE *f;
		int fd;

		/* One file per client as typed; disconnect finds it by the same words. */
		snprintf(path, sizeof(path), "%s/vpn-session-%08lx.json", dir, name_hash(client));
		fd = keep ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600)
			  : -1;
		f = fd >= 0 ? fdopen(fd, "w") : NULL;
		if (!f || json_dumpf(keep, f, JSON_COMPACT) || fclose(f)) {
			fprintf(stderr, "%s: %s: cannot keep the session: %s\n", CLI_PROG, path,
				strerror(errno));
			if (!f && fd >= 0)
				close(fd);
			json_decref(keep);
			goto out;
		}
		json_decref(keep);
		printf("connected: %s, until %lld (%lld s)\n", why, (long long)expires,
		       (long long)(expires - time(NULL)));
	}
	if (tls_out && !cli_connect_write_tls_token(server, ca, token, tls_out))
		goto out;
	ret = fflush(stdout) ? 1 : 0;
out:
	sg_memzero(token, sizeof(token));
	sg_memzero(password, sizeof(password));
	sg_memzero(code, sizeof(code));
	return ret;
}

static void disconnect_usage(FILE *f)
{
	fprintf(f,
		"Usage: %s disconnect [--ca-file FILE] [--state-dir DIR] CLIENT\n"
		"Ends the MFA session `%s connect` opened for CLIENT (its id or name): the hubs\n"
		"remove the peer with its sessions and keys.\n",
		CLI_PROG, CLI_PROG);
}

int cli_cmd_disconnect(int argc, char **argv)
{
	static const struct option opts[] = {{"ca-file", required_argument, NULL, 'c'},
					     {"state-dir", required_argument, NULL, 'S'},
					     {"server", required_argument, NULL, 's'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	const char *ca = NULL, *sdir = NULL, *server = NULL;
	char dir[1024], path[1200], why[512];
	json_t *sess;
	int opt, ret = 1;
	sg_result rc;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': ca = optarg; break;
		case 'S': sdir = optarg; break;
		case 's': server = optarg; break;
		case 'h': disconnect_usage(stdout); return 0;
		default: disconnect_usage(stderr); return 1;
		}
	}
	if (optind != argc - 1) {
		disconnect_usage(stderr);
		return 1;
	}
	if (!state_dir(sdir, dir, sizeof(dir)))
		return 1;
	sess = find_session(dir, argv[optind], path, sizeof(path));
	if (!sess) {
		fprintf(stderr, "%s: no session of %s in %s (was it opened with `%s connect`?)\n",
			CLI_PROG, argv[optind], dir, CLI_PROG);
		return 1;
	}
	rc = sg_session_end(server ? server : json_string_value(json_object_get(sess, "server")),
			    ca, json_string_value(json_object_get(sess, "session_token")), why,
			    sizeof(why));
	if (rc == SG_EOK || rc == SG_ENOENT) {
		/* SG_ENOENT: it had ended already (expired or revoked): nothing left to end. */
		if (unlink(path))
			fprintf(stderr, "%s: %s: %s\n", CLI_PROG, path, strerror(errno));
		printf("disconnected: client %s%s\n", argv[optind],
		       rc ? " (the session had ended already)" : "");
		ret = fflush(stdout) ? 1 : 0;
	} else {
		fprintf(stderr, "%s: disconnect: %s: %s\n", CLI_PROG, sg_strerror(rc), why);
	}
	json_decref(sess);
	return ret;
}
