/* up, down, save, strip: what wg-quick(8) does on Linux, step for step, with secureguardd (or
 * $WG_QUICK_USERSPACE_IMPLEMENTATION, e.g. wireguard-go) as the interface:
 *
 * up:   PreUp; start the daemon and wait for its UAPI socket; setconf; `ip address add` each
 *       Address; MTU (given, or the largest path MTU towards the endpoints or the default route,
 *       less 80 bytes of WireGuard overhead, else 1420); DNS through resolvconf; a route for each
 *       allowed IP (Table=off: none; Table=N: into table N; a /0 without Table: the fwmark trick
 *       below); PostUp. Any failure after the daemon started takes everything down again.
 * down: PreDown; SaveConfig; delete the policy rules and the link (which ends the daemon);
 *       undo DNS and firewall rules; PostDown.
 *
 * The fwmark trick for a default route (wg-quick(8), "policy routing"): the tunnel's own UDP
 * packets carry fwmark T, everything else is routed by table T, which holds the /0 via the
 * tunnel: `ip rule add not fwmark T table T` and `ip rule add table main suppress_prefixlength
 * 0` (so specific routes of the main table still win). Packets to the tunnel addresses that
 * arrive on other interfaces are dropped and the mark is kept in conntrack (nftables, or
 * iptables as a fallback), as wg-quick does, under the same table/comment names so either tool
 * can take down what the other brought up.
 *
 * `ip` and friends are run with fork/exec, never through a shell; only the hook commands go
 * through bash -c (wg-quick evals them in bash), as they are shell snippets by definition.
 */
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/file.h"
#include "crypto/crypto.h"

/* How long `up` waits for the daemon's control socket. */
#define DAEMON_WAIT_MS 10000
/* First routing table tried for the fwmark trick (wg-quick's choice: the WireGuard port). */
#define FWMARK_TABLE_FIRST 51820
/* Bound on repeated `ip rule delete` (there is one rule per family normally). */
#define RULE_DELETE_MAX 64

struct quick {
	char ifname[IFNAMSIZ];
	char path[PATH_MAX];
	struct sg_wgconf conf;
	bool have_set_dns;
	bool have_set_firewall;
};

/* ---- small helpers ----------------------------------------------------------------------- */

/* wg-quick's rule for interface names taken from a bare argument or a file name. */
static bool quick_name_ok(const char *s, size_t len)
{
	if (!len || len >= IFNAMSIZ)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '=' || c == '+' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

static bool file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* True when prog is an executable on PATH (or a path that is executable). */
static bool have_program(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[PATH_MAX];

	if (strchr(prog, '/'))
		return access(prog, X_OK) == 0;
	if (!path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	while (*path) {
		const char *colon = strchr(path, ':');
		size_t len = colon ? (size_t)(colon - path) : strlen(path);

		if (len &&
		    (size_t)snprintf(buf, sizeof(buf), "%.*s/%s", (int)len, path, prog) <
			sizeof(buf) &&
		    access(buf, X_OK) == 0)
			return true;
		path += len + (colon ? 1 : 0);
	}
	return false;
}

/* Runs a program, echoing it; a non-zero exit is reported. Returns 0 or -1. */
static int run(char *const argv[])
{
	int ret = cli_run(argv, NULL, NULL, CLI_RUN_ECHO);

	if (ret < 0) {
		fprintf(stderr, "%s: cannot run %s: %s\n", CLI_PROG, argv[0], strerror(-ret));
		return -1;
	}
	return ret ? -1 : 0;
}

/* Runs a program quietly and captures stdout (NULL when it could not run or failed). */
static char *capture(char *const argv[])
{
	char *out = NULL;
	int ret = cli_run(argv, NULL, &out, CLI_RUN_QUIET);

	if (ret) {
		free(out);
		return NULL;
	}
	return out;
}

static int hooks(struct quick *q, enum sg_wgconf_hook which)
{
	for (size_t i = 0; i < q->conf.n_hooks[which]; i++) {
		const char *h = q->conf.hooks[which][i];
		struct sg_strbuf cmd = {0};
		int ret;

		/* %i is the interface name, as in wg-quick(8). */
		for (const char *p = h; *p; p++) {
			if (p[0] == '%' && p[1] == 'i') {
				sg_strbuf_printf(&cmd, "%s", q->ifname);
				p++;
			} else {
				sg_strbuf_printf(&cmd, "%c", *p);
			}
		}
		if (cmd.oom) {
			sg_strbuf_free(&cmd);
			fprintf(stderr, "%s: out of memory\n", CLI_PROG);
			return -1;
		}
		fprintf(stderr, "[#] %s\n", cmd.p);
		ret = cli_run_shell(cmd.p);
		sg_strbuf_free(&cmd);
		if (ret) {
			fprintf(stderr, "%s: hook failed (%s %d)\n", CLI_PROG,
				ret < 0 ? "error" : "exit status", ret < 0 ? -ret : ret);
			return -1;
		}
	}
	return 0;
}

/* The MTU of a link in this network namespace, 0 if unknown. */
static unsigned int link_mtu(const char *ifname)
{
	struct ifreq ifr = {0};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	unsigned int mtu = 0;

	if (fd < 0)
		return 0;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu > 0)
		mtu = (unsigned int)ifr.ifr_mtu;
	close(fd);
	return mtu;
}

/* The value after the word `word` in `ip` output ("... dev eth0 ... mtu 1400"). */
static bool word_after(const char *text, const char *word, char *out, size_t outlen)
{
	size_t wl = strlen(word);

	for (const char *p = text; (p = strstr(p, word)); p += wl) {
		if ((p != text && p[-1] != ' ' && p[-1] != '\t') || p[wl] != ' ')
			continue;
		const char *v = p + wl + 1;
		size_t n = strcspn(v, " \t\n");

		if (!n || n >= outlen)
			return false;
		memcpy(out, v, n);
		out[n] = '\0';
		return true;
	}
	return false;
}

/* The MTU a route (`ip route get` / `ip route show default` output) implies, 0 if none: its
 * own "mtu N" (not "mtu lock N"), else its device's, as wg-quick's pattern. */
static unsigned int route_mtu(const char *text)
{
	char v[IFNAMSIZ + 8];

	if (word_after(text, "mtu", v, sizeof(v)) && v[strspn(v, "0123456789")] == '\0' &&
	    strlen(v) <= 6)
		return (unsigned int)strtoul(v, NULL, 10);
	if (word_after(text, "dev", v, sizeof(v)))
		return link_mtu(v);
	return 0;
}

static const char *family_flag(int family)
{
	return family == AF_INET6 ? "-6" : "-4";
}

/* ---- config lookup ----------------------------------------------------------------------- */

static int quick_load(struct quick *q, const char *arg)
{
	char cand[PATH_MAX];
	const char *base;
	size_t blen;
	struct stat fst, dst;

	memset(q, 0, sizeof(*q));
	if (quick_name_ok(arg, strlen(arg))) {
		/* A bare interface name: our directory first, then wg-quick's. */
		snprintf(cand, sizeof(cand), "/etc/secureguard/%s.conf", arg);
		if (!file_exists(cand))
			snprintf(cand, sizeof(cand), "/etc/wireguard/%s.conf", arg);
		if (!file_exists(cand)) {
			fprintf(
			    stderr,
			    "%s: neither `/etc/secureguard/%s.conf' nor `/etc/wireguard/%s.conf' "
			    "exists\n",
			    CLI_PROG, arg, arg);
			return -1;
		}
	} else {
		if (strlen(arg) >= sizeof(cand)) {
			fprintf(stderr, "%s: path too long\n", CLI_PROG);
			return -1;
		}
		snprintf(cand, sizeof(cand), "%s", arg);
		if (!file_exists(cand)) {
			fprintf(stderr, "%s: `%s' does not exist\n", CLI_PROG, cand);
			return -1;
		}
	}
	base = strrchr(cand, '/');
	base = base ? base + 1 : cand;
	blen = strlen(base);
	if (blen <= 5 || strcmp(base + blen - 5, ".conf") || !quick_name_ok(base, blen - 5)) {
		fprintf(stderr,
			"%s: the config file must be a valid interface name, followed by .conf\n",
			CLI_PROG);
		return -1;
	}
	memcpy(q->ifname, base, blen - 5);
	q->ifname[blen - 5] = '\0';
	/* wg-quick's pattern lets "." and ".." through ("..conf"); no link or socket can have
	 * those names. */
	if (!cli_ifname_valid(q->ifname)) {
		fprintf(stderr, "%s: `%s' is not a valid interface name\n", CLI_PROG, q->ifname);
		return -1;
	}
	if (!realpath(cand, q->path)) {
		fprintf(stderr, "%s: %s: %s\n", CLI_PROG, cand, strerror(errno));
		return -1;
	}
	/* Warn like wg-quick when others can read the keys: the file and its directory both
	 * grant something to "other". */
	char dir[PATH_MAX];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", q->path);
	slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	if (!stat(q->path, &fst) && !stat(dir, &dst) && (fst.st_mode & dst.st_mode & 0007))
		fprintf(stderr, "Warning: `%s' is world accessible\n", q->path);
	return cli_load_conf(q->path, &q->conf);
}

static bool need_root(void)
{
	if (geteuid() == 0)
		return true;
	fprintf(stderr, "%s: must be run as root\n", CLI_PROG);
	return false;
}

/* ---- the daemon -------------------------------------------------------------------------- */

/* $WG_QUICK_USERSPACE_IMPLEMENTATION, else secureguardd beside this binary, else on PATH. */
static void daemon_program(char *out, size_t len)
{
	const char *env = getenv("WG_QUICK_USERSPACE_IMPLEMENTATION");
	char self[PATH_MAX];
	ssize_t n;

	if (env && *env) {
		snprintf(out, len, "%s", env);
		return;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');

		if (slash) {
			*slash = '\0';
			if ((size_t)snprintf(out, len, "%s/secureguardd", self) < len &&
			    access(out, X_OK) == 0)
				return;
		}
	}
	snprintf(out, len, "secureguardd");
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Starts the daemon for q->ifname and waits (bounded) until its UAPI socket answers. Works
 * both for daemons that fork into the background (wireguard-go) and ones that stay in the
 * foreground: the child is only reaped if it exits. */
static int start_daemon(struct quick *q)
{
	char prog[PATH_MAX];
	char *argv[3];
	pid_t pid;
	bool exited = false;
	int status;

	daemon_program(prog, sizeof(prog));
	argv[0] = prog;
	argv[1] = q->ifname;
	argv[2] = NULL;
	fprintf(stderr, "[#] %s %s\n", prog, q->ifname);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return cli_errno("fork", errno), -1;
	if (pid == 0) {
		/* Its own session, so it outlives this command and its terminal; stdin and stdout
		 * away from us, so a caller capturing our output is not held open by it. */
		setsid();
		signal(SIGPIPE, SIG_DFL);
		int null = open("/dev/null", O_RDWR);

		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
			if (null > STDERR_FILENO)
				close(null);
		}
		execvp(prog, argv);
		fprintf(stderr, "%s: cannot run %s: %s\n", CLI_PROG, prog, strerror(errno));
		_exit(127);
	}
	for (unsigned int waited = 0; waited < DAEMON_WAIT_MS; waited += 20) {
		if (!exited && waitpid(pid, &status, WNOHANG) == pid) {
			exited = true;
			if (!WIFEXITED(status) || WEXITSTATUS(status)) {
				fprintf(stderr, "%s: %s failed (%s %d)\n", CLI_PROG, prog,
					WIFEXITED(status) ? "exit status" : "signal",
					WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
				return -1;
			}
		}
		if (cli_ipc_exists(q->ifname))
			return 0;
		sleep_ms(20);
	}
	fprintf(stderr, "%s: %s did not open %s/%s%s within %u ms\n", CLI_PROG, prog, CLI_SOCK_DIR,
		q->ifname, CLI_SOCK_SUFFIX, DAEMON_WAIT_MS);
	if (!exited) {
		kill(pid, SIGTERM);
		waitpid(pid, &status, 0);
	}
	return -1;
}

/* ---- DNS through resolvconf (wg-quick's interface-order prefix) --------------------------- */

static void resolvconf_name(const struct quick *q, char *out, size_t len)
{
	FILE *f = fopen("/etc/resolvconf/interface-order", "re");
	char line[256], prefix[128] = "";

	while (f && fgets(line, sizeof(line), f)) {
		size_t n = strcspn(line, "\r\n");
		bool ok = n >= 2 && n - 1 < sizeof(prefix) && line[n - 1] == '*';

		for (size_t i = 0; ok && i + 1 < n; i++) {
			char c = line[i];

			ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9') || c == '-';
		}
		if (ok) {
			memcpy(prefix, line, n - 1);
			prefix[n - 1] = '\0';
			break;
		}
	}
	if (f)
		fclose(f);
	snprintf(out, len, "%s%s%s", prefix, prefix[0] ? "." : "", q->ifname);
}

static size_t dns_servers(const struct quick *q)
{
	size_t n = 0;

	for (size_t i = 0; i < q->conf.n_dns; i++)
		n += !q->conf.dns[i].is_search;
	return n;
}

static int set_dns(struct quick *q)
{
	struct sg_strbuf in = {0};
	char name[IFNAMSIZ + 140];
	int ret;

	if (!dns_servers(q))
		return 0;
	if (!have_program("resolvconf")) {
		fprintf(stderr, "%s: DNS is set but resolvconf is not installed\n", CLI_PROG);
		return -1;
	}
	for (size_t i = 0; i < q->conf.n_dns; i++) {
		if (!q->conf.dns[i].is_search)
			sg_strbuf_printf(&in, "nameserver %s\n", q->conf.dns[i].name);
	}
	bool first = true;

	for (size_t i = 0; i < q->conf.n_dns; i++) {
		if (q->conf.dns[i].is_search) {
			sg_strbuf_printf(&in, "%s%s", first ? "search " : " ", q->conf.dns[i].name);
			first = false;
		}
	}
	if (!first)
		sg_strbuf_printf(&in, "\n");
	resolvconf_name(q, name, sizeof(name));
	char *argv[] = {"resolvconf", "-a", name, "-m", "0", "-x", NULL};

	ret = in.oom ? -ENOMEM : cli_run(argv, in.p, NULL, CLI_RUN_ECHO);
	sg_strbuf_free(&in);
	if (ret) {
		fprintf(stderr, "%s: resolvconf failed\n", CLI_PROG);
		return -1;
	}
	q->have_set_dns = true;
	return 0;
}

static void unset_dns(struct quick *q)
{
	char name[IFNAMSIZ + 140];

	if (!dns_servers(q) || !have_program("resolvconf"))
		return;
	resolvconf_name(q, name, sizeof(name));
	char *argv[] = {"resolvconf", "-d", name, "-f", NULL};

	run(argv);
}

/* ---- firewall marks for the default route (see the top of this file) -------------------- */

static void remove_firewall(struct quick *q)
{
	char marker[128], tname[IFNAMSIZ + 16];

	snprintf(tname, sizeof(tname), "wg-quick-%s", q->ifname);
	if (have_program("nft")) {
		char *argv[] = {"nft", "list", "tables", NULL};
		char *out = capture(argv);
		struct sg_strbuf cmd = {0};

		for (char *line = out, *next; line && *line; line = next) {
			next = strchr(line, '\n');
			if (next)
				*next++ = '\0';
			else
				next = line + strlen(line);
			size_t ll = strlen(line), tl = strlen(tname);

			/* "table ip wg-quick-IF" */
			if (ll > tl && line[ll - tl - 1] == ' ' && !strcmp(line + ll - tl, tname))
				sg_strbuf_printf(&cmd, "delete %s\n", line);
		}
		free(out);
		if (cmd.len && !cmd.oom) {
			char *nargv[] = {"nft", "-f", "/dev/stdin", NULL};

			cli_run(nargv, cmd.p, NULL, CLI_RUN_ECHO);
		}
		sg_strbuf_free(&cmd);
	}
	snprintf(marker, sizeof(marker), "-m comment --comment \"wg-quick(8) rule for %s\"",
		 q->ifname);
	for (int v6 = 0; v6 < 2; v6++) {
		const char *save = v6 ? "ip6tables-save" : "iptables-save";
		const char *restore = v6 ? "ip6tables-restore" : "iptables-restore";

		if (!have_program(save) || !have_program(restore))
			continue;
		char *argv[] = {(char *)save, NULL};
		char *out = capture(argv);
		struct sg_strbuf cmd = {0};
		bool found = false;

		for (char *line = out, *next; line && *line; line = next) {
			next = strchr(line, '\n');
			if (next)
				*next++ = '\0';
			else
				next = line + strlen(line);
			if (line[0] == '*' || !strcmp(line, "COMMIT")) {
				sg_strbuf_printf(&cmd, "%s\n", line);
			} else if (!strncmp(line, "-A ", 3) && strstr(line, marker)) {
				sg_strbuf_printf(&cmd, "-D %s\n", line + 3);
				found = true;
			}
		}
		free(out);
		if (found && !cmd.oom) {
			char *rargv[] = {(char *)restore, "-n", NULL};

			cli_run(rargv, cmd.p, NULL, CLI_RUN_ECHO);
		}
		sg_strbuf_free(&cmd);
	}
}

static int add_firewall(struct quick *q, int family, unsigned int table)
{
	const char *pf = family == AF_INET6 ? "ip6" : "ip";
	char *argv[] = {"ip",	   "-o", (char *)family_flag(family), "addr", "show", "dev",
			q->ifname, NULL};
	char *addrs = capture(argv);
	struct sg_strbuf nft = {0}, ipt = {0};
	char marker[128];
	int ret = 0;

	snprintf(marker, sizeof(marker), "-m comment --comment \"wg-quick(8) rule for %s\"",
		 q->ifname);
	sg_strbuf_printf(&nft, "add table %s wg-quick-%s\n", pf, q->ifname);
	sg_strbuf_printf(&nft,
		       "add chain %s wg-quick-%s preraw { type filter hook prerouting priority "
		       "-300; }\n",
		       pf, q->ifname);
	sg_strbuf_printf(&nft,
		       "add chain %s wg-quick-%s premangle { type filter hook prerouting priority "
		       "-150; }\n",
		       pf, q->ifname);
	sg_strbuf_printf(&nft,
		       "add chain %s wg-quick-%s postmangle { type filter hook postrouting "
		       "priority -150; }\n",
		       pf, q->ifname);
	sg_strbuf_printf(&ipt, "*raw\n");
	/* Drop packets for our tunnel addresses arriving from elsewhere (spoofing them would
	 * bypass the tunnel's source checks). */
	for (char *line = addrs, *next; line && *line; line = next) {
		char addr[64];
		char *p;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		else
			next = line + strlen(line);
		p = strstr(line, family == AF_INET6 ? " inet6 " : " inet ");
		if (!p)
			continue;
		p = strchr(p + 1, ' ') + 1;
		size_t n = strcspn(p, "/ ");

		if (!n || n >= sizeof(addr) || p[n] != '/')
			continue;
		memcpy(addr, p, n);
		addr[n] = '\0';
		sg_strbuf_printf(&ipt,
			       "-I PREROUTING ! -i %s -d %s -m addrtype ! --src-type LOCAL -j DROP "
			       "%s\n",
			       q->ifname, addr, marker);
		sg_strbuf_printf(&nft,
			       "add rule %s wg-quick-%s preraw iifname != \"%s\" %s daddr %s fib "
			       "saddr type != local drop\n",
			       pf, q->ifname, q->ifname, pf, addr);
	}
	free(addrs);
	sg_strbuf_printf(
	    &ipt,
	    "COMMIT\n*mangle\n-I POSTROUTING -m mark --mark %u -p udp -j CONNMARK "
	    "--save-mark %s\n-I PREROUTING -p udp -j CONNMARK --restore-mark %s\nCOMMIT\n",
	    table, marker, marker);
	sg_strbuf_printf(&nft,
		       "add rule %s wg-quick-%s postmangle meta l4proto udp mark %u ct mark set "
		       "mark \n",
		       pf, q->ifname, table);
	sg_strbuf_printf(&nft,
		       "add rule %s wg-quick-%s premangle meta l4proto udp meta mark set ct "
		       "mark \n",
		       pf, q->ifname);
	if (nft.oom || ipt.oom) {
		ret = -1;
		goto out;
	}
	if (family == AF_INET) {
		/* Replies to marked packets must pass reverse-path filtering. */
		FILE *f = fopen("/proc/sys/net/ipv4/conf/all/src_valid_mark", "we");

		fprintf(stderr, "[#] sysctl -q net.ipv4.conf.all.src_valid_mark=1\n");
		if (!f || fputs("1\n", f) < 0 || fclose(f)) {
			if (f)
				fclose(f);
			fprintf(stderr, "%s: cannot set src_valid_mark: %s\n", CLI_PROG,
				strerror(errno));
			ret = -1;
			goto out;
		}
	}
	q->have_set_firewall = true;
	if (have_program("nft")) {
		char *nargv[] = {"nft", "-f", "/dev/stdin", NULL};

		ret = cli_run(nargv, nft.p, NULL, CLI_RUN_ECHO) ? -1 : 0;
	} else if (have_program(family == AF_INET6 ? "ip6tables-restore" : "iptables-restore")) {
		char *rargv[] = {family == AF_INET6 ? "ip6tables-restore" : "iptables-restore",
				 "-n", NULL};

		ret = cli_run(rargv, ipt.p, NULL, CLI_RUN_ECHO) ? -1 : 0;
	} else {
		fprintf(stderr, "%s: warning: neither nft nor iptables found; no firewall marks\n",
			CLI_PROG);
	}
	if (ret)
		fprintf(stderr, "%s: setting firewall rules failed\n", CLI_PROG);
out:
	sg_strbuf_free(&nft);
	sg_strbuf_free(&ipt);
	return ret;
}

/* ---- routes ------------------------------------------------------------------------------ */

static bool table_is(const struct quick *q, const char *name)
{
	return q->conf.has_table && !strcmp(q->conf.table, name);
}

/* The fwmark the interface has, 0 if none or unknown. */
static uint32_t device_fwmark(const struct quick *q)
{
	struct wgdev *dev;
	uint32_t mark = 0;

	if (!cli_ipc_get(q->ifname, &dev)) {
		mark = dev->fwmark;
		wgdev_free(dev);
	}
	return mark;
}

static bool table_in_use(unsigned int table)
{
	char t[16];

	snprintf(t, sizeof(t), "%u", table);
	for (int v6 = 0; v6 < 2; v6++) {
		char *argv[] = {"ip", v6 ? "-6" : "-4", "route", "show", "table", t, NULL};
		char *out = capture(argv);
		bool used = out && *out;

		free(out);
		if (used)
			return true;
	}
	return false;
}

static int add_default(struct quick *q, const char *prefix, int family)
{
	unsigned int table = device_fwmark(q);
	char t[16];

	if (!table) {
		struct wgdev *dev = wgdev_new(q->ifname);
		int ret;

		table = FWMARK_TABLE_FIRST;
		while (table_in_use(table) && table < UINT32_MAX)
			table++;
		if (!dev)
			return -1;
		dev->fwmark = table;
		dev->flags = WGDEV_HAS_FWMARK;
		fprintf(stderr, "[#] %s set %s fwmark %u\n", CLI_PROG, q->ifname, table);
		ret = cli_ipc_set(dev);
		wgdev_free(dev);
		if (ret)
			return cli_errno("setting fwmark", ret), -1;
	}
	snprintf(t, sizeof(t), "%u", table);
	char *proto = (char *)family_flag(family);
	char *route[] = {"ip",	proto,	   "route", "add", (char *)prefix,
			 "dev", q->ifname, "table", t,	   NULL};
	char *rule1[] = {"ip", proto, "rule", "add", "not", "fwmark", t, "table", t, NULL};
	char *rule2[] = {"ip", proto, "rule", "add", "table", "main", "suppress_prefixlength",
			 "0",  NULL};

	if (run(route) || run(rule1) || run(rule2))
		return -1;
	return add_firewall(q, family, table);
}

/* wg-quick's order, `LC_ALL=C sort -nr -k 2 -t /`: longest prefix first; equal lengths by
 * the whole text, reversed (so "::/0" before "0.0.0.0/0"). */
static int ip_cmp_desc(const void *a, const void *b)
{
	const struct sg_wgconf_ip *x = a, *y = b;
	char xs[SG_WGCONF_PREFIX_STRLEN], ys[SG_WGCONF_PREFIX_STRLEN];

	if (x->cidr != y->cidr)
		return (int)y->cidr - (int)x->cidr;
	sg_wgconf_ip_format(xs, x);
	sg_wgconf_ip_format(ys, y);
	return strcmp(ys, xs);
}

static int add_routes(struct quick *q)
{
	struct wgdev *dev;
	struct sg_wgconf_ip *ips = NULL;
	size_t n = 0, cap = 0;
	int ret;

	if (table_is(q, "off"))
		return 0;
	ret = cli_ipc_get(q->ifname, &dev);
	if (ret)
		return cli_errno("reading the interface", ret), -1;
	for (size_t i = 0; i < dev->n_peers; i++) {
		for (size_t j = 0; j < dev->peers[i].n_ips; j++) {
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 16;
				struct sg_wgconf_ip *p = realloc(ips, ncap * sizeof(*p));

				if (!p) {
					free(ips);
					wgdev_free(dev);
					return cli_errno("routes", -ENOMEM), -1;
				}
				ips = p;
				cap = ncap;
			}
			ips[n++] = dev->peers[i].ips[j];
		}
	}
	wgdev_free(dev);
	/* Most specific first, as wg-quick (`sort -nr -k 2 -t /`). */
	if (n)
		qsort(ips, n, sizeof(*ips), ip_cmp_desc);
	ret = 0;
	for (size_t i = 0; i < n && !ret; i++) {
		char prefix[SG_WGCONF_PREFIX_STRLEN];
		char *proto = (char *)family_flag(ips[i].family);

		sg_wgconf_ip_format(prefix, &ips[i]);
		if (q->conf.has_table && !table_is(q, "auto")) {
			char *argv[] = {"ip",  proto,	  "route", "add",	  prefix,
					"dev", q->ifname, "table", q->conf.table, NULL};

			ret = run(argv);
		} else if (ips[i].cidr == 0) {
			ret = add_default(q, prefix, ips[i].family);
		} else {
			char *show[] = {"ip",	   proto,   "route", "show", "dev",
					q->ifname, "match", prefix,  NULL};
			char *out = capture(show);
			bool exists = out && *out;

			free(out);
			if (!exists) {
				char *argv[] = {"ip",	proto, "route",	  "add",
						prefix, "dev", q->ifname, NULL};

				ret = run(argv);
			}
		}
	}
	free(ips);
	return ret;
}

static int set_mtu_up(struct quick *q)
{
	char mtu_s[16];
	unsigned int mtu = 0;

	if (q->conf.has_mtu) {
		snprintf(mtu_s, sizeof(mtu_s), "%u", (unsigned int)q->conf.mtu);
	} else {
		struct wgdev *dev;

		/* The largest MTU on the paths to the endpoints, else the default route's. */
		if (!cli_ipc_get(q->ifname, &dev)) {
			for (size_t i = 0; i < dev->n_peers; i++) {
				const struct sockaddr_storage *ss = &dev->peers[i].endpoint;
				char host[NI_MAXHOST];

				/* The address alone (a %zone included, as `ip route get` takes). */
				if (!(dev->peers[i].flags & WGDEV_PEER_HAS_ENDPOINT) ||
				    getnameinfo((const struct sockaddr *)ss,
						ss->ss_family == AF_INET6
						    ? sizeof(struct sockaddr_in6)
						    : sizeof(struct sockaddr_in),
						host, sizeof(host), NULL, 0, NI_NUMERICHOST))
					continue;
				char *argv[] = {"ip", "route", "get", host, NULL};
				char *out = capture(argv);
				unsigned int m = out ? route_mtu(out) : 0;

				free(out);
				mtu = m > mtu ? m : mtu;
			}
			wgdev_free(dev);
		}
		if (!mtu) {
			char *argv[] = {"ip", "route", "show", "default", NULL};
			char *out = capture(argv);

			if (out) {
				out[strcspn(out, "\n")] = '\0';
				mtu = route_mtu(out);
			}
			free(out);
		}
		/* 80 bytes: IPv6 (40) + UDP (8) + WireGuard data header (16) + tag (16). */
		snprintf(mtu_s, sizeof(mtu_s), "%u", (mtu > 80 ? mtu : 1500) - 80);
	}
	char *argv[] = {"ip", "link", "set", "mtu", mtu_s, "up", "dev", q->ifname, NULL};

	return run(argv);
}

static bool has_default_route(const struct quick *q)
{
	struct wgdev *dev;
	bool any = false;

	if (cli_ipc_get(q->ifname, &dev))
		return false;
	for (size_t i = 0; i < dev->n_peers && !any; i++) {
		for (size_t j = 0; j < dev->peers[i].n_ips && !any; j++)
			any = dev->peers[i].ips[j].cidr == 0;
	}
	wgdev_free(dev);
	return any;
}

/* True when `ip rule show` output has a rule ending in exactly "lookup T" (or containing
 * needle, when table is 0). */
static bool rule_present(const char *proto, unsigned int table, const char *needle)
{
	char *argv[] = {"ip", (char *)proto, "rule", "show", NULL};
	char *out = capture(argv), word[32];
	bool found = false;

	if (!out)
		return false;
	snprintf(word, sizeof(word), "lookup %u", table);
	for (char *line = strtok(out, "\n"); line && !found; line = strtok(NULL, "\n")) {
		if (needle) {
			found = strstr(line, needle) != NULL;
			continue;
		}
		char *p = strstr(line, word);

		found = p && (p[strlen(word)] == '\0' || p[strlen(word)] == ' ');
	}
	free(out);
	return found;
}

static void del_if(struct quick *q)
{
	uint32_t table;

	if (q->have_set_dns)
		unset_dns(q);
	if (q->have_set_firewall)
		remove_firewall(q);
	if ((!q->conf.has_table || table_is(q, "auto")) && (table = device_fwmark(q)) &&
	    has_default_route(q)) {
		char t[16];

		snprintf(t, sizeof(t), "%u", (unsigned int)table);
		for (int v6 = 0; v6 < 2; v6++) {
			char *proto = v6 ? "-6" : "-4";
			char *del_t[] = {"ip", proto, "rule", "delete", "table", t, NULL};
			char *del_m[] = {
			    "ip", proto, "rule", "delete", "table", "main", "suppress_prefixlength",
			    "0",  NULL};

			for (int i = 0; i < RULE_DELETE_MAX && rule_present(proto, table, NULL);
			     i++) {
				if (run(del_t))
					break;
			}
			for (int i = 0;
			     i < RULE_DELETE_MAX &&
			     rule_present(proto, 0, "from all lookup main suppress_prefixlength 0");
			     i++) {
				if (run(del_m))
					break;
			}
		}
	}
	char *argv[] = {"ip", "link", "delete", "dev", q->ifname, NULL};

	run(argv);
}

/* ---- SaveConfig -------------------------------------------------------------------------- */

static int prefix_len(const struct sockaddr *mask)
{
	const uint8_t *b;
	size_t n;
	int bits = 0;

	if (!mask)
		return -1;
	if (mask->sa_family == AF_INET) {
		b = (const uint8_t *)&((const struct sockaddr_in *)(const void *)mask)->sin_addr;
		n = 4;
	} else {
		b = ((const struct sockaddr_in6 *)(const void *)mask)->sin6_addr.s6_addr;
		n = 16;
	}
	for (size_t i = 0; i < n; i++)
		bits += __builtin_popcount(b[i]);
	return bits;
}

/* The interface's addresses now, as SaveConfig records them. Link-local IPv6 addresses are
 * left out: the kernel adds those by itself. */
static void current_addresses(const struct quick *q, struct sg_wgconf *out)
{
	struct ifaddrs *ifa = NULL;

	if (getifaddrs(&ifa))
		return;
	for (int fam = 0; fam < 2; fam++) {
		for (struct ifaddrs *a = ifa; a; a = a->ifa_next) {
			int want = fam ? AF_INET6 : AF_INET;
			struct sg_wgconf_ip ip = {.family = want};
			int bits;

			if (!a->ifa_addr || a->ifa_addr->sa_family != want ||
			    strcmp(a->ifa_name, q->ifname) ||
			    out->n_addresses >= SG_WGCONF_MAX_ADDRESSES)
				continue;
			if (want == AF_INET) {
				memcpy(ip.addr,
				       &((struct sockaddr_in *)(void *)a->ifa_addr)->sin_addr, 4);
			} else {
				const struct in6_addr *a6 =
				    &((struct sockaddr_in6 *)(void *)a->ifa_addr)->sin6_addr;

				if (IN6_IS_ADDR_LINKLOCAL(a6))
					continue;
				memcpy(ip.addr, a6, 16);
			}
			bits = prefix_len(a->ifa_netmask);
			ip.cidr = (uint8_t)(bits < 0 ? (want == AF_INET ? 32 : 128) : bits);
			out->addresses[out->n_addresses++] = ip;
		}
	}
	freeifaddrs(ifa);
}

static int save_config(struct quick *q)
{
	struct wgdev *dev;
	struct sg_wgconf out;
	char *text = NULL;
	size_t len = 0;
	int ret;

	fprintf(stderr, "[#] %s showconf %s\n", CLI_PROG, q->ifname);
	ret = cli_ipc_get(q->ifname, &dev);
	if (ret)
		return cli_errno("reading the interface", ret), -1;
	ret = cli_conf_from_device(dev, &out);
	wgdev_free(dev);
	if (ret)
		return -1;
	/* The wg-quick part: addresses as they are now, the rest as the file had them (DNS search
	 * domains included, which resolvconf cannot give back). */
	current_addresses(q, &out);
	memcpy(out.dns, q->conf.dns, sizeof(out.dns));
	out.n_dns = q->conf.n_dns;
	if (q->conf.has_mtu) {
		unsigned int m = link_mtu(q->ifname);

		out.has_mtu = true;
		out.mtu = m ? m : q->conf.mtu;
	}
	out.has_table = q->conf.has_table;
	memcpy(out.table, q->conf.table, sizeof(out.table));
	out.save_config = q->conf.save_config;
	for (int h = 0; h < SG_WGCONF_NHOOKS; h++) {
		/* Copied: `down` still runs PostDown from q->conf after saving. */
		for (size_t i = 0; i < q->conf.n_hooks[h]; i++) {
			out.hooks[h][i] = strdup(q->conf.hooks[h][i]);
			if (!out.hooks[h][i]) {
				fprintf(stderr, "%s: out of memory\n", CLI_PROG);
				ret = -1;
				goto out;
			}
			out.n_hooks[h] = i + 1;
		}
	}
	ret = sg_wgconf_serialize(&out, 0, &text, &len);
	if (ret) {
		fprintf(stderr, "%s: out of memory\n", CLI_PROG);
		goto out;
	}
	/* No symlink followed, mode 0600 whatever a stale file had: it holds the private key. */
	ret = sg_file_replace(q->path, text, len, 0600);
	if (ret) {
		fprintf(stderr, "%s: could not write %s: %s (the previous file is unchanged)\n",
			CLI_PROG, q->path, strerror(ret));
		ret = -1;
	}
out:
	if (text) {
		sg_memzero(text, len);
		free(text);
	}
	sg_wgconf_free(&out);
	return ret;
}

/* ---- commands ---------------------------------------------------------------------------- */

static int quick_usage(const char *cmd)
{
	fprintf(
	    stderr,
	    "Usage: %s %s [ CONFIG_FILE | INTERFACE ]\n\n"
	    "  CONFIG_FILE is a configuration file whose name is the interface name followed\n"
	    "  by `.conf'. Otherwise INTERFACE is an interface name, with its configuration in\n"
	    "  /etc/secureguard/INTERFACE.conf or /etc/wireguard/INTERFACE.conf. The file is in\n"
	    "  wg-quick(8) format: the wg(8) keys plus Address, DNS, MTU, Table, PreUp, PostUp,\n"
	    "  PreDown, PostDown (%%i is the interface name) and SaveConfig.\n"
	    "  The interface is run by $WG_QUICK_USERSPACE_IMPLEMENTATION if set, else by\n"
	    "  secureguardd.\n",
	    CLI_PROG, cmd);
	return 1;
}

/* SIGINT, SIGTERM or SIGHUP during `up`: recorded, so that a half-made interface (with policy
 * rules that may send all traffic into a tunnel that does not work) is taken down again, as
 * wg-quick's `trap 'del_if; exit' INT TERM EXIT` does. */
static volatile sig_atomic_t up_signal;

static void on_up_signal(int sig)
{
	up_signal = sig;
}

static bool up_interrupted(void)
{
	if (!up_signal)
		return false;
	fprintf(stderr, "%s: interrupted by signal %d\n", CLI_PROG, (int)up_signal);
	return true;
}

int cli_cmd_up(int argc, char **argv)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
	struct sigaction sa = {.sa_handler = on_up_signal}; /* no SA_RESTART: waits return */
	struct quick q;
	struct wgdev *dev = NULL;
	int ret = 1, err;

	if (argc != 2)
		return quick_usage(argv[0]);
	if (!need_root() || quick_load(&q, argv[1]))
		return 1;
	/* The UAPI socket directory is shared by all network namespaces: a daemon of that name
	 * elsewhere would lose its socket to ours. */
	if (if_nametoindex(q.ifname) || cli_ipc_exists(q.ifname)) {
		fprintf(stderr, "%s: `%s' already exists\n", CLI_PROG, q.ifname);
		goto out;
	}
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < SG_ARRAY_LEN(sigs); i++)
		sigaction(sigs[i], &sa, NULL);
	if (hooks(&q, SG_WGCONF_PRE_UP) || up_interrupted())
		goto out;
	if (start_daemon(&q))
		goto out;
	fprintf(stderr, "[#] %s setconf %s\n", CLI_PROG, q.ifname);
	if (up_interrupted() || cli_device_from_conf(&q.conf, q.ifname, false, &dev))
		goto fail;
	err = cli_ipc_set(dev);
	if (err) {
		cli_errno("setconf", err);
		goto fail;
	}
	for (size_t i = 0; i < q.conf.n_addresses; i++) {
		char a[SG_WGCONF_PREFIX_STRLEN];
		char *ip[] = {"ip",	 (char *)family_flag(q.conf.addresses[i].family),
			      "address", "add",
			      a,	 "dev",
			      q.ifname,	 NULL};

		sg_wgconf_ip_format(a, &q.conf.addresses[i]);
		if (up_interrupted() || run(ip))
			goto fail;
	}
	if (up_interrupted() || set_mtu_up(&q) || up_interrupted() || set_dns(&q) ||
	    up_interrupted() || add_routes(&q) || up_interrupted() ||
	    hooks(&q, SG_WGCONF_POST_UP) || up_interrupted())
		goto fail;
	ret = 0;
	goto out;
fail:
	del_if(&q);
out:
	wgdev_free(dev);
	sg_wgconf_free(&q.conf);
	return ret;
}

int cli_cmd_down(int argc, char **argv)
{
	struct quick q;
	int ret = 1;

	if (argc != 2)
		return quick_usage(argv[0]);
	if (!need_root() || quick_load(&q, argv[1]))
		return 1;
	if (!cli_ipc_exists(q.ifname)) {
		fprintf(stderr, "%s: `%s' is not a WireGuard interface\n", CLI_PROG, q.ifname);
		goto out;
	}
	if (hooks(&q, SG_WGCONF_PRE_DOWN))
		goto out;
	if (q.conf.save_config && save_config(&q))
		goto out;
	del_if(&q);
	unset_dns(&q);
	remove_firewall(&q);
	ret = hooks(&q, SG_WGCONF_POST_DOWN) ? 1 : 0;
out:
	sg_wgconf_free(&q.conf);
	return ret;
}

int cli_cmd_save(int argc, char **argv)
{
	struct quick q;
	int ret = 1;

	if (argc != 2)
		return quick_usage(argv[0]);
	if (!need_root() || quick_load(&q, argv[1]))
		return 1;
	if (!cli_ipc_exists(q.ifname))
		fprintf(stderr, "%s: `%s' is not a WireGuard interface\n", CLI_PROG, q.ifname);
	else
		ret = save_config(&q) ? 1 : 0;
	sg_wgconf_free(&q.conf);
	return ret;
}

int cli_cmd_strip(int argc, char **argv)
{
	struct quick q;
	char *text;
	size_t len;
	int ret;

	if (argc != 2)
		return quick_usage(argv[0]);
	if (quick_load(&q, argv[1]))
		return 1;
	ret = sg_wgconf_serialize(&q.conf, SG_WGCONF_WG_ONLY, &text, &len);
	sg_wgconf_free(&q.conf);
	if (ret) {
		fprintf(stderr, "%s: out of memory\n", CLI_PROG);
		return 1;
	}
	fwrite(text, 1, len, stdout);
	sg_memzero(text, len);
	free(text);
	return fflush(stdout) ? 1 : 0;
}
