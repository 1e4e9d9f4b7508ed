/* secureguard: one binary for keys, interface configuration (the wg(8) subcommands, driving
 * secureguardd or wireguard-go over the UAPI) and bringing tunnels up and down (wg-quick(8)). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "agent/agent.h"
#include "cli/cli.h"
#include "crypto/crypto.h"
#include "gateway/gateway.h"
#include "server/audit.h"
#include "server/server.h"

static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);

static const struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} commands[] = {
    {"show", cli_cmd_show, "Show interfaces, their peers and traffic, like `wg show'"},
    {"showconf", cli_cmd_showconf, "Print an interface's running configuration as a file"},
    {"set", cli_cmd_set, "Change settings of an interface, add, change or remove peers"},
    {"setconf", cli_cmd_setconf, "Replace an interface's configuration with a file's"},
    {"addconf", cli_cmd_setconf, "Add a file's configuration to an interface's"},
    {"syncconf", cli_cmd_setconf,
     "Make an interface match a file, touching only what differs (wg-quick keys ignored)"},
    {"genkey", cli_cmd_genkey, "Write a new private key to stdout"},
    {"genpsk", cli_cmd_genpsk, "Write a new preshared key to stdout"},
    {"pubkey", cli_cmd_pubkey, "Read a private key on stdin, write its public key to stdout"},
    {"up", cli_cmd_up, "Bring up an interface from CONFIG_FILE or INTERFACE, like wg-quick"},
    {"down", cli_cmd_down, "Take down an interface brought up with `up'"},
    {"save", cli_cmd_save, "Write an interface's running configuration back to its file"},
    {"strip", cli_cmd_strip, "Print a config file without the wg-quick keys"},
    {"cert", cli_cmd_cert, "Make a CA, keys and certificates for the TLS transport"},
    {"forward", cli_cmd_forward,
     "Forward a local port through a tunnel to REMOTE:PORT, as a normal user (no TUN)"},
    {"expose", cli_cmd_expose,
     "Make a local service reachable through a gateway, as a normal user (no TUN)"},
    {"connect", cli_cmd_connect,
     "Open an MFA session (password + TOTP) that lets a client onto its hubs"},
    {"disconnect", cli_cmd_disconnect, "End the MFA session `connect' opened"},
    {"server", sg_server_cmd, "Run the management server (HTTP API, docs/SERVER.md)"},
    {"agent", sg_agent_cmd,
     "Run the agent: this node's tunnels from the management server (docs/AGENTS.md)"},
    {"gateway", gw_cmd, "Run the edge proxy to resources behind the tunnels (docs/GATEWAY.md)"},
    {"openapi", sg_openapi_cmd, "Print the management server's OpenAPI document"},
    {"license", cli_cmd_license, "Show and check a license offline; the vendor's signing tool"},
    {"audit", sg_audit_cmd, "Check the audit log's hash chain: `verify --db URL' or `--file F'"},
    {"version", cmd_version, "Print the versions of secureguard and OpenSSL, and FIPS state"},
    {"help", cmd_help, "Print this help"},
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: %s <cmd> [<args>]\n\nAvailable subcommands:\n", CLI_PROG);
	for (size_t i = 0; i < SG_ARRAY_LEN(commands); i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].help);
	fprintf(f,
		"\nWithout a subcommand, `%s' runs `show'. Pass `--help' to a subcommand for "
		"its usage.\n",
		CLI_PROG);
}

static int cmd_help(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	usage(stdout);
	return 0;
}

static int cmd_version(int argc, char **argv)
{
	if (argc != 1) {
		fprintf(stderr, "Usage: %s %s\n", CLI_PROG, argv[0]);
		return 1;
	}
	printf("%s %s\n", CLI_PROG, SG_VERSION);
	printf("%s\n", sg_crypto_library_version());
	printf("FIPS provider: %s\n", sg_crypto_fips_provider_active() ? "active" : "not active");
	{
		char d[512];

		/* Which provider each suite's algorithms come from (docs/FIPS.md). */
		printf("Crypto: %s\n", sg_crypto_describe(d, sizeof(d)));
	}
	return fflush(stdout) ? 1 : 0;
}

int main(int argc, char **argv)
{
	static char show[] = "show";
	char *show_argv[] = {show, NULL};

	/* A reader that goes away (`secureguard show | head`) must not kill us mid-UAPI exchange;
	 * writes then fail with EPIPE instead. */
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2)
		return cli_cmd_show(1, show_argv);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-v"))
		return cmd_version(1, argv + 1);
	for (size_t i = 0; i < SG_ARRAY_LEN(commands); i++) {
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	}
	fprintf(stderr, "%s: invalid subcommand `%s'\n", CLI_PROG, argv[1]);
	usage(stderr);
	return 1;
}
