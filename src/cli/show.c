/* show and showconf: the output of `wg show' and `wg showconf', byte for byte, so scripts that
 * parse wg(8) output keep working (the layout, "(none)", "(hidden)", "1 minute, 2 seconds ago",
 * "1.23 KiB received", the tab-separated dump, the colors on a terminal). */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "crypto/crypto.h"

/* ---- terminal colors, as wg(8): WG_COLOR_MODE=always|never|auto (auto: when a tty) -------- */

static bool use_color;

static void color_init(void)
{
	const char *mode = getenv("WG_COLOR_MODE");

	if (mode && !strcmp(mode, "always"))
		use_color = true;
	else if (mode && !strcmp(mode, "never"))
		use_color = false;
	else
		use_color = isatty(STDOUT_FILENO);
}

static const char *C(const char *code)
{
	return use_color ? code : "";
}

#define RESET  C("\x1b[0m")
#define BOLD   C("\x1b[1m")
#define RED    C("\x1b[31m")
#define GREEN  C("\x1b[32m")
#define YELLOW C("\x1b[33m")
#define CYAN   C("\x1b[36m")

/* ---- formatting -------------------------------------------------------------------------- */

/* Holds the last key printed, a private one too (dump, private-key, WG_HIDE_KEYS=never):
 * finish_output() wipes it. */
static char b64_buf[SG_FIPS_PUB_BASE64_LEN + 1];

static const char *b64(const uint8_t key[SG_KEY_LEN])
{
	sg_key_to_base64(b64_buf, key);
	return b64_buf;
}

static const char *fips_b64(const uint8_t pub[SG_FIPS_PUB_LEN])
{
	sg_fipskey_pub_to_base64(b64_buf, pub);
	return b64_buf;
}

static const char *maybe_key(const uint8_t key[SG_KEY_LEN], bool have)
{
	return have ? b64(key) : "(none)";
}

/* Secrets are "(hidden)" in the pretty view unless WG_HIDE_KEYS=never, as wg(8). */
static const char *masked_key(const uint8_t key[SG_KEY_LEN])
{
	const char *v = getenv("WG_HIDE_KEYS");

	return v && !strcmp(v, "never") ? b64(key) : "(hidden)";
}

static const char *ip_str(const struct sg_wgconf_ip *ip)
{
	static char buf[INET6_ADDRSTRLEN];

	if (!inet_ntop(ip->family, ip->addr, buf, sizeof(buf)))
		buf[0] = '\0';
	return buf;
}

static const char *endpoint_str(const struct wgdev_peer *p)
{
	static char buf[NI_MAXHOST + NI_MAXSERV + 4];

	wgdev_endpoint_format(buf, sizeof(buf), &p->endpoint);
	return buf;
}

/* "1 year, 2 days, 3 hours, 4 minutes, 5 seconds": nonzero units only; a year is 365 days. */
static size_t duration(char *buf, size_t len, unsigned long long secs)
{
	static const struct {
		unsigned long long size;
		const char *unit;
	} units[] = {
	    {365ull * 24 * 3600, "year"},
	    {24 * 3600, "day"},
	    {3600, "hour"},
	    {60, "minute"},
	    {1, "second"},
	};
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < SG_ARRAY_LEN(units); i++) {
		unsigned long long n = secs / units[i].size;

		secs %= units[i].size;
		if (!n || off >= len)
			continue;
		int w = snprintf(buf + off, len - off, "%s%llu %s%s%s%s", off ? ", " : "", n, CYAN,
				 units[i].unit, n == 1 ? "" : "s", RESET);

		if (w > 0)
			off += (size_t)w;
	}
	return off < len ? off : len - 1;
}

static const char *ago(int64_t when)
{
	static char buf[512];
	time_t now = time(NULL);

	if (now == when) {
		snprintf(buf, sizeof(buf), "Now");
	} else if (now < when) {
		snprintf(buf, sizeof(buf),
			 "(%sSystem clock wound backward; connection problems may "
			 "ensue.%s)",
			 RED, RESET);
	} else {
		size_t off = duration(buf, sizeof(buf), (unsigned long long)(now - when));

		snprintf(buf + off, sizeof(buf) - off, " ago");
	}
	return buf;
}

static const char *bytes_str(uint64_t b)
{
	static char buf[64];
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};

	if (b < 1024) {
		snprintf(buf, sizeof(buf), "%u %sB%s", (unsigned int)b, CYAN, RESET);
		return buf;
	}
	double v = (double)b / 1024;
	size_t u = 0;

	/* Compare the integer, not the rounded double, to pick the unit as wg(8) does. */
	for (uint64_t limit = 1024ull * 1024; u < 3 && b >= limit; limit *= 1024) {
		v /= 1024;
		u++;
	}
	snprintf(buf, sizeof(buf), "%.2f %s%s%s", v, CYAN, units[u], RESET);
	return buf;
}

/* ---- peer order: most recent handshake first, peers without one last, else as received --- */

struct peer_ref {
	const struct wgdev_peer *p;
	size_t idx;
};

static int peer_ref_cmp(const void *a, const void *b)
{
	const struct peer_ref *x = a, *y = b;
	bool xz = !x->p->handshake_sec && !x->p->handshake_nsec;
	bool yz = !y->p->handshake_sec && !y->p->handshake_nsec;

	if (xz != yz)
		return xz ? 1 : -1;
	if (x->p->handshake_sec != y->p->handshake_sec)
		return x->p->handshake_sec > y->p->handshake_sec ? -1 : 1;
	if (x->p->handshake_nsec != y->p->handshake_nsec)
		return x->p->handshake_nsec > y->p->handshake_nsec ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static void pretty_print(const struct wgdev *dev)
{
	struct peer_ref *order = NULL;

	printf("%s", RESET);
	printf("%s%sinterface%s: %s%s%s\n", GREEN, BOLD, RESET, GREEN, dev->name, RESET);
	if (dev->flags & WGDEV_HAS_PUBLIC_KEY)
		printf("  %spublic key%s: %s\n", BOLD, RESET, b64(dev->public_key));
	if (dev->flags & WGDEV_HAS_PRIVATE_KEY)
		printf("  %sprivate key%s: %s\n", BOLD, RESET, masked_key(dev->private_key));
	if (dev->listen_port)
		printf("  %slistening port%s: %u\n", BOLD, RESET, (unsigned int)dev->listen_port);
	if (dev->fwmark)
		printf("  %sfwmark%s: 0x%x\n", BOLD, RESET, (unsigned int)dev->fwmark);
	/* SecureGuard's lines appear only where FIPS mode is configured, so a classic interface
	 * prints exactly what wg(8) does. */
	if (dev->flags & WGDEV_HAS_FIPS_KEY) {
		printf("  %sfips public key%s: %s\n", BOLD, RESET, fips_b64(dev->fips_public_key));
		printf("  %sfips private key%s: (hidden)\n", BOLD, RESET);
	}
	if ((dev->flags & (WGDEV_HAS_FIPS_KEY | WGDEV_HAS_CRYPTO_MODE)) || dev->fips_strict)
		printf("  %scrypto mode%s: %s%s\n", BOLD, RESET,
		       dev->crypto_mode ? sg_wgconf_mode_name(dev->crypto_mode) : "auto",
		       dev->fips_strict ? " (FIPS provider required)" : "");
	if (dev->tls_listen_port)
		printf("  %stls listening port%s: %u%s\n", BOLD, RESET,
		       (unsigned int)dev->tls_listen_port,
		       dev->require_client_cert && dev->require_session_token
			   ? " (client certificate and session token required)"
		       : dev->require_client_cert   ? " (client certificate required)"
		       : dev->require_session_token ? " (session token required)"
						    : "");
	if (!dev->n_peers)
		return;
	printf("\n");
	order = calloc(dev->n_peers, sizeof(*order));
	for (size_t i = 0; order && i < dev->n_peers; i++)
		order[i] = (struct peer_ref){.p = &dev->peers[i], .idx = i};
	if (order)
		qsort(order, dev->n_peers, sizeof(*order), peer_ref_cmp);
	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct wgdev_peer *p = order ? order[i].p : &dev->peers[i];

		printf("%s%speer%s: %s%s%s\n", YELLOW, BOLD, RESET, YELLOW, b64(p->public_key),
		       RESET);
		if (p->flags & WGDEV_PEER_HAS_FIPS_KEY)
			printf("  %sfips public key%s: %s\n", BOLD, RESET,
			       fips_b64(p->fips_public_key));
		if (p->session[0]) {
			/* The negotiated mode of the current session, and the policy behind it. */
			printf("  %scrypto mode%s: %s", BOLD, RESET,
			       strcmp(p->session, "none") ? p->session : "(no session)");
			if (p->flags & WGDEV_PEER_HAS_CRYPTO_MODE)
				printf(" (policy %s)", sg_wgconf_mode_name(p->crypto_mode));
			if (p->fallback)
				printf(", fell back from FIPS");
			printf("\n");
		}
		if (p->flags & WGDEV_PEER_HAS_TRANSPORT) {
			char tep[NI_MAXHOST + NI_MAXSERV + 4] = "";
			if ((p->flags & WGDEV_PEER_HAS_TLS_ENDPOINT) && p->tls_endpoint.ss_family)
				wgdev_endpoint_format(tep, sizeof(tep), &p->tls_endpoint);
			printf("  %stransport%s: %s, now %s%s%s\n", BOLD, RESET,
			       sg_wgconf_transport_name(p->transport),
			       p->transport_active[0] ? p->transport_active : "udp",
			       tep[0] ? ", tls endpoint " : "", tep);
		}
		if (p->flags & WGDEV_PEER_HAS_PSK)
			printf("  %spreshared key%s: %s\n", BOLD, RESET,
			       masked_key(p->preshared_key));
		if (p->flags & WGDEV_PEER_HAS_ENDPOINT)
			printf("  %sendpoint%s: %s\n", BOLD, RESET, endpoint_str(p));
		printf("  %sallowed ips%s: ", BOLD, RESET);
		for (size_t j = 0; j < p->n_ips; j++)
			printf("%s%s/%s%u%s", ip_str(&p->ips[j]), CYAN, RESET,
			       (unsigned int)p->ips[j].cidr, j + 1 < p->n_ips ? ", " : "\n");
		if (!p->n_ips)
			printf("(none)\n");
		if (p->handshake_sec)
			printf("  %slatest handshake%s: %s\n", BOLD, RESET, ago(p->handshake_sec));
		if (p->rx_bytes || p->tx_bytes) {
			printf("  %stransfer%s: ", BOLD, RESET);
			printf("%s received, ", bytes_str(p->rx_bytes));
			printf("%s sent\n", bytes_str(p->tx_bytes));
		}
		if (p->keepalive) {
			char every[256];

			duration(every, sizeof(every), p->keepalive);
			printf("  %spersistent keepalive%s: every %s\n", BOLD, RESET, every);
		}
		if (i + 1 < dev->n_peers)
			printf("\n");
	}
	free(order);
}

static void prefix(const struct wgdev *dev, bool with_ifname)
{
	if (with_ifname)
		printf("%s\t", dev->name);
}

static void dump_print(const struct wgdev *dev, bool with_ifname)
{
	prefix(dev, with_ifname);
	printf("%s\t", maybe_key(dev->private_key, dev->flags & WGDEV_HAS_PRIVATE_KEY));
	printf("%s\t", maybe_key(dev->public_key, dev->flags & WGDEV_HAS_PUBLIC_KEY));
	printf("%u\t", (unsigned int)dev->listen_port);
	if (dev->fwmark)
		printf("0x%x\n", (unsigned int)dev->fwmark);
	else
		printf("off\n");
	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct wgdev_peer *p = &dev->peers[i];

		prefix(dev, with_ifname);
		printf("%s\t", b64(p->public_key));
		printf("%s\t", maybe_key(p->preshared_key, p->flags & WGDEV_PEER_HAS_PSK));
		printf("%s\t", p->flags & WGDEV_PEER_HAS_ENDPOINT ? endpoint_str(p) : "(none)");
		for (size_t j = 0; j < p->n_ips; j++)
			printf("%s/%u%c", ip_str(&p->ips[j]), (unsigned int)p->ips[j].cidr,
			       j + 1 < p->n_ips ? ',' : '\t');
		if (!p->n_ips)
			printf("(none)\t");
		printf("%lld\t", (long long)p->handshake_sec);
		printf("%llu\t%llu\t", (unsigned long long)p->rx_bytes,
		       (unsigned long long)p->tx_bytes);
		if (p->keepalive)
			printf("%u\n", (unsigned int)p->keepalive);
		else
			printf("off\n");
	}
}

static const char *const fields[] = {
    "public-key",
    "private-key",
    "listen-port",
    "fwmark",
    "peers",
    "preshared-keys",
    "endpoints",
    "allowed-ips",
    "latest-handshakes",
    "persistent-keepalive",
    "transfer",
    "dump",
};

static bool field_valid(const char *f)
{
	for (size_t i = 0; i < SG_ARRAY_LEN(fields); i++) {
		if (!strcmp(f, fields[i]))
			return true;
	}
	return false;
}

/* One field per line, tab-separated, for scripts (`wg show IF FIELD`). */
static void field_print(const struct wgdev *dev, const char *f, bool with_ifname)
{
	if (!strcmp(f, "dump")) {
		dump_print(dev, with_ifname);
		return;
	}
	if (!strcmp(f, "public-key") || !strcmp(f, "private-key") || !strcmp(f, "listen-port") ||
	    !strcmp(f, "fwmark")) {
		prefix(dev, with_ifname);
		if (!strcmp(f, "public-key"))
			printf("%s\n",
			       maybe_key(dev->public_key, dev->flags & WGDEV_HAS_PUBLIC_KEY));
		else if (!strcmp(f, "private-key"))
			printf("%s\n",
			       maybe_key(dev->private_key, dev->flags & WGDEV_HAS_PRIVATE_KEY));
		else if (!strcmp(f, "listen-port"))
			printf("%u\n", (unsigned int)dev->listen_port);
		else if (dev->fwmark)
			printf("0x%x\n", (unsigned int)dev->fwmark);
		else
			printf("off\n");
		return;
	}
	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct wgdev_peer *p = &dev->peers[i];

		prefix(dev, with_ifname);
		if (!strcmp(f, "peers")) {
			printf("%s\n", b64(p->public_key));
			continue;
		}
		printf("%s\t", b64(p->public_key));
		if (!strcmp(f, "preshared-keys")) {
			printf("%s\n", maybe_key(p->preshared_key, p->flags & WGDEV_PEER_HAS_PSK));
		} else if (!strcmp(f, "endpoints")) {
			printf("%s\n",
			       p->flags & WGDEV_PEER_HAS_ENDPOINT ? endpoint_str(p) : "(none)");
		} else if (!strcmp(f, "allowed-ips")) {
			for (size_t j = 0; j < p->n_ips; j++)
				printf("%s/%u%c", ip_str(&p->ips[j]), (unsigned int)p->ips[j].cidr,
				       j + 1 < p->n_ips ? ' ' : '\n');
			if (!p->n_ips)
				printf("(none)\n");
		} else if (!strcmp(f, "latest-handshakes")) {
			printf("%lld\n", (long long)p->handshake_sec);
		} else if (!strcmp(f, "transfer")) {
			printf("%llu\t%llu\n", (unsigned long long)p->rx_bytes,
			       (unsigned long long)p->tx_bytes);
		} else if (!strcmp(f, "persistent-keepalive")) {
			if (p->keepalive)
				printf("%u\n", (unsigned int)p->keepalive);
			else
				printf("off\n");
		}
	}
}

static void show_usage(void)
{
	fprintf(stderr,
		"Usage: %s show { <interface> | all | interfaces } [public-key | private-key | "
		"listen-port | fwmark | peers | preshared-keys | endpoints | allowed-ips | "
		"latest-handshakes | transfer | persistent-keepalive | dump]\n",
		CLI_PROG);
}

static int finish_output(void)
{
	sg_memzero(b64_buf, sizeof(b64_buf));
	if (fflush(stdout) || ferror(stdout)) {
		perror(CLI_PROG ": writing output");
		return 1;
	}
	return 0;
}

static int show_all(const char *field)
{
	char **names;
	size_t n;
	int ret = cli_ipc_list(&names, &n);

	if (ret)
		return cli_errno("Unable to list interfaces", ret);
	/* As wg(8): failure only when interfaces exist and none could be shown. */
	int status = n ? 1 : 0;

	for (size_t i = 0; i < n; i++) {
		struct wgdev *dev;

		ret = cli_ipc_get(names[i], &dev);
		if (ret) {
			fprintf(stderr, "%s: Unable to access interface %s: %s\n", CLI_PROG,
				names[i], strerror(-ret));
			continue;
		}
		if (field) {
			field_print(dev, field, true);
		} else {
			pretty_print(dev);
			if (i + 1 < n)
				printf("\n");
		}
		wgdev_free(dev);
		status = 0;
	}
	cli_ipc_list_free(names, n);
	return finish_output() || status;
}

int cli_cmd_show(int argc, char **argv)
{
	struct wgdev *dev;
	int ret;

	color_init();
	if (argc > 3) {
		show_usage();
		return 1;
	}
	if (argc == 3 && !field_valid(argv[2])) {
		fprintf(stderr, "%s: invalid parameter: `%s'\n", CLI_PROG, argv[2]);
		show_usage();
		return 1;
	}
	if (argc == 1 || !strcmp(argv[1], "all"))
		return show_all(argc == 3 ? argv[2] : NULL);
	if (!strcmp(argv[1], "interfaces")) {
		char **names;
		size_t n;

		if (argc > 2) {
			show_usage();
			return 1;
		}
		ret = cli_ipc_list(&names, &n);
		if (ret)
			return cli_errno("Unable to list interfaces", ret);
		for (size_t i = 0; i < n; i++)
			printf("%s%c", names[i], i + 1 < n ? ' ' : '\n');
		cli_ipc_list_free(names, n);
		return finish_output();
	}
	if (argc == 2 &&
	    (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help"))) {
		show_usage();
		return 0;
	}
	ret = cli_ipc_get(argv[1], &dev);
	if (ret) {
		fprintf(stderr, "%s: Unable to access interface %s: %s\n", CLI_PROG, argv[1],
			strerror(-ret));
		return 1;
	}
	if (argc == 3)
		field_print(dev, argv[2], false);
	else
		pretty_print(dev);
	wgdev_free(dev);
	return finish_output();
}

int cli_cmd_showconf(int argc, char **argv)
{
	struct wgdev *dev;
	struct sg_wgconf conf;
	char *text;
	size_t len;
	int ret;

	if (argc != 2) {
		fprintf(stderr, "Usage: %s %s <interface>\n", CLI_PROG, argv[0]);
		return 1;
	}
	ret = cli_ipc_get(argv[1], &dev);
	if (ret) {
		fprintf(stderr, "%s: Unable to access interface %s: %s\n", CLI_PROG, argv[1],
			strerror(-ret));
		return 1;
	}
	ret = cli_conf_from_device(dev, &conf);
	wgdev_free(dev);
	if (ret)
		return 1;
	ret = sg_wgconf_serialize(&conf, SG_WGCONF_WG_ONLY, &text, &len);
	sg_wgconf_free(&conf);
	if (ret) {
		fprintf(stderr, "%s: out of memory\n", CLI_PROG);
		return 1;
	}
	fwrite(text, 1, len, stdout);
	sg_memzero(text, len);
	free(text);
	return finish_output();
}
