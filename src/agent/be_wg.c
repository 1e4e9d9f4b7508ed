/* The WireGuard backend: a SecureGuard client's interface run by secureguardd, driven as a user
 * would, with this program's own `up`, `syncconf` and `down` (wg-quick's behaviour: the daemon,
 * addresses, routes, MTU, DNS) and read through the UAPI (src/cli/ipc.c).
 *
 * A change keeps the interface: the new configuration is synced onto the running one (peers
 * added, changed and removed in place, so the sessions of the others survive), and only a change
 * of the interface itself (its keys, addresses, port, MTU) brings it down and up again. So a
 * hub's peers follow the network's clients, live. */
#include <errno.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "cli/cli.h"
#include "common/log.h"
#include "crypto/crypto.h"
#include "secureguard/sg_errors.h"

struct wpriv {
	char dir[1024];
	char self[1024];
};

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static void conf_path(struct wpriv *w, json_t *t, char *out, size_t n)
{
	snprintf(out, n, "%s/%s.conf", w->dir, jstr(t, "name"));
}

/* Runs this program's subcommand; its output (stdout and stderr) in why when it fails. */
static int run(struct wpriv *w, const char *cmd, const char *a1, const char *a2, char *why,
	       size_t n)
{
	char *argv[] = {"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>&1", w->self, (char *)cmd,
			(char *)a1, (char *)a2, NULL};
	char *out = NULL;
	int rc;

	rc = cli_run(argv, NULL, &out, 0);
	if (rc) {
		char *last = out ? out : "";
		size_t len = strlen(last);

		/* The last line says what went wrong. */
		while (len && last[len - 1] == '\n')
			last[--len] = 0;
		if (strrchr(last, '\n'))
			last = strrchr(last, '\n') + 1;
		snprintf(why, n, "secureguard %s: %s", cmd,
			 *last ? last : rc < 0 ? strerror(-rc) : "failed");
		if (!why[0])
			snprintf(why, n, "secureguard %s failed", cmd);
	}
	free(out);
	return rc ? SG_EIO : 0;
}

/* The [Interface] part of a configuration (up to the first [Peer]). */
static size_t iface_len(const char *conf)
{
	const char *p = strstr(conf, "\n[Peer]");

	return p ? (size_t)(p - conf) : strlen(conf);
}

static int write_conf(struct wpriv *w, json_t *t, char *why, size_t n)
{
	char name[64];
	const char *conf = jstr(t, "config");
	int rc;

	snprintf(name, sizeof(name), "%s.conf", jstr(t, "name"));
	rc = agent_state_write(w->dir, name, conf, strlen(conf));
	if (rc)
		snprintf(why, n, "%s/%s: cannot write", w->dir, name);
	return rc;
}

static int validate(struct agent_backend *b, json_t *t, char *why, size_t n)
{
	(void)b;
	if (!cli_ifname_valid(jstr(t, "name"))) {
		snprintf(why, n, "not an interface name: %s", jstr(t, "name"));
		return SG_EINVAL;
	}
	return 0;
}

/* An allowed IP as `ip route` prints it (a host route without its length). */
static void route_text(char out[SG_WGCONF_PREFIX_STRLEN], const struct sg_wgconf_ip *ip)
{
	sg_wgconf_ip_format(out, ip);
	if ((ip->family == AF_INET && ip->cidr == 32) || (ip->family == AF_INET6 && ip->cidr == 128))
		*strchr(out, '/') = 0;
}

static bool wanted(const struct wgdev *dev, const char *route)
{
	for (size_t i = 0; i < dev->n_peers; i++) {
		for (size_t j = 0; j < dev->peers[i].n_ips; j++) {
			char r[SG_WGCONF_PREFIX_STRLEN];

			route_text(r, &dev->peers[i].ips[j]);
			if (!strcmp(r, route))
				return true;
		}
	}
	return false;
}

/* `syncconf` changes peers, not routes (as wg(8)): a peer added to a running interface needs
 * the route `up` would have given it (wg-quick's: its allowed IPs through the interface, unless a
 * route covers them already), and a peer gone leaves one to remove. Only routes of the main table
 * with proto boot (those `up` and this add) are removed; default routes stay `up`'s business. */
static void sync_routes(const char *ifn, const char *conf)
{
	static const char *const fams[] = {"-4", "-6"};
	struct wgdev *dev = NULL;

	if (strstr(conf, "\nTable =") || cli_ipc_get(ifn, &dev))
		return;
	for (size_t i = 0; i < dev->n_peers; i++) {
		for (size_t j = 0; j < dev->peers[i].n_ips; j++) {
			const struct sg_wgconf_ip *ip = &dev->peers[i].ips[j];
			char prefix[SG_WGCONF_PREFIX_STRLEN], *out = NULL;
			char *fam = (char *)(ip->family == AF_INET ? "-4" : "-6");

			if (!ip->cidr)
				continue;
			sg_wgconf_ip_format(prefix, ip);
			{
				char *show[] = {"ip", fam, "route", "show", "match", prefix, NULL};

				if (cli_run(show, NULL, &out, CLI_RUN_QUIET) == 0 && out &&
				    strstr(out, ifn)) {
					free(out);
					continue;
				}
				free(out);
			}
			{
				char *add[] = {"ip", fam, "route", "replace", prefix, "dev", (char *)ifn,
					       NULL};

				if (cli_run(add, NULL, NULL, CLI_RUN_QUIET))
					sg_log(SG_LOG_WARN, "route_failed", "dev=%s route=%s", ifn,
					       prefix);
			}
		}
	}
	for (size_t f = 0; f < 2; f++) {
		char *list[] = {"ip", (char *)fams[f], "-o", "route", "show", "dev", (char *)ifn,
				"proto", "boot", NULL};
		char *out = NULL, *line, *save = NULL;

		if (cli_run(list, NULL, &out, CLI_RUN_QUIET) || !out) {
			free(out);
			continue;
		}
		for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			char *sp = strchr(line, ' ');

			if (sp)
				*sp = 0;
			if (!*line || !strcmp(line, "default") || wanted(dev, line))
				continue;
			{
				char *del[] = {"ip", (char *)fams[f], "route", "del", line, "dev",
					       (char *)ifn, NULL};

				(void)cli_run(del, NULL, NULL, CLI_RUN_QUIET);
			}
		}
		free(out);
	}
	wgdev_free(dev);
}

static int bring_up(struct wpriv *w, json_t *t, char *why, size_t n)
{
	char path[1200];
	int rc;

	conf_path(w, t, path, sizeof(path));
	if (!cli_ipc_exists(jstr(t, "name")))
		return run(w, "up", path, NULL, why, n);
	rc = run(w, "syncconf", jstr(t, "name"), path, why, n);
	if (!rc)
		sync_routes(jstr(t, "name"), jstr(t, "config"));
	return rc;
}

static int create(struct agent_backend *b, json_t *t, char *why, size_t n)
{
	struct wpriv *w = b->priv;
	int rc = validate(b, t, why, n);

	if (!rc)
		rc = write_conf(w, t, why, n);
	if (!rc)
		rc = bring_up(w, t, why, n);
	return rc;
}

static int remove_if(struct agent_backend *b, json_t *t, char *why, size_t n)
{
	struct wpriv *w = b->priv;
	char path[1200];
	int rc = 0;

	conf_path(w, t, path, sizeof(path));
	if (cli_ipc_exists(jstr(t, "name"))) {
		/* `down` reads the file for what `up` set (DNS, routes): write it if it went. */
		if (access(path, R_OK))
			(void)write_conf(w, t, why, n);
		rc = run(w, "down", path, NULL, why, n);
	}
	if (!rc)
		unlink(path);
	return rc;
}

static int update(struct agent_backend *b, json_t *old, json_t *t, char *why, size_t n)
{
	struct wpriv *w = b->priv;
	const char *oc = jstr(old, "config"), *nc = jstr(t, "config");
	int rc;

	if (strcmp(jstr(old, "name"), jstr(t, "name")) || iface_len(oc) != iface_len(nc) ||
	    memcmp(oc, nc, iface_len(nc))) {
		rc = remove_if(b, old, why, n);
		return rc ? rc : create(b, t, why, n);
	}
	rc = write_conf(w, t, why, n);
	return rc ? rc : bring_up(w, t, why, n);
}

static int start(struct agent_backend *b, json_t *t, char *why, size_t n)
{
	struct wpriv *w = b->priv;
	char path[1200];

	conf_path(w, t, path, sizeof(path));
	if (access(path, R_OK) && write_conf(w, t, why, n))
		return SG_EIO;
	return bring_up(w, t, why, n);
}

static int status(struct agent_backend *b, json_t *t, struct agent_tstat *st)
{
	struct wgdev *dev = NULL;
	int rc;

	(void)b;
	memset(st, 0, sizeof(*st));
	if (!cli_ipc_exists(jstr(t, "name"))) {
		snprintf(st->reason, sizeof(st->reason), "interface %s is not running",
			 jstr(t, "name"));
		return 0;
	}
	st->loaded = true;
	rc = cli_ipc_get(jstr(t, "name"), &dev);
	if (rc) {
		snprintf(st->reason, sizeof(st->reason), "the daemon of %s does not answer: %s",
			 jstr(t, "name"), strerror(-rc));
		return 0;
	}
	st->state = TS_UP;
	for (size_t i = 0; i < dev->n_peers; i++) {
		st->bytes_in += dev->peers[i].rx_bytes;
		st->bytes_out += dev->peers[i].tx_bytes;
		/* A new handshake, a peer added or gone: the server wants to know. */
		st->activity = st->activity * 31 + (uint64_t)dev->peers[i].handshake_sec + 1;
	}
	wgdev_free(dev);
	return 0;
}

static void report(struct agent_backend *b, json_t *t, json_t *out)
{
	struct wgdev *dev = NULL;
	json_t *peers, *w;

	(void)b;
	if (!cli_ipc_exists(jstr(t, "name")) || cli_ipc_get(jstr(t, "name"), &dev))
		return;
	peers = json_array();
	for (size_t i = 0; i < dev->n_peers && i < 16384; i++) {
		const struct wgdev_peer *p = &dev->peers[i];
		char pk[SG_KEY_BASE64_LEN + 1], fk[SG_FIPS_PUB_BASE64_LEN + 1], ep[80] = "";
		json_t *o;

		sg_key_to_base64(pk, p->public_key);
		o = json_pack("{s:s,s:I,s:I,s:I}", "public_key", pk, "last_handshake",
			      (json_int_t)p->handshake_sec, "rx_bytes", (json_int_t)p->rx_bytes,
			      "tx_bytes", (json_int_t)p->tx_bytes);
		if (!o)
			continue;
		if (p->flags & WGDEV_PEER_HAS_FIPS_KEY) {
			sg_fipskey_pub_to_base64(fk, p->fips_public_key);
			json_object_set_new(o, "fips_public_key", json_string(fk));
		}
		if (p->endpoint.ss_family) {
			wgdev_endpoint_format(ep, sizeof(ep), &p->endpoint);
			json_object_set_new(o, "endpoint", json_string(ep));
		}
		if (p->session[0])
			json_object_set_new(o, "crypto_mode", json_string(p->session));
		json_array_append_new(peers, o);
	}
	wgdev_free(dev);
	w = json_pack("{s:s,s:o}", "interface", jstr(t, "name"), "peers", peers);
	if (w && jstr(t, "client_id"))
		json_object_set_new(w, "client_id", json_string(jstr(t, "client_id")));
	if (w)
		json_array_append_new(out, w);
}

static void wfree(struct agent_backend *b)
{
	free(b->priv);
	free(b);
}

static const struct agent_backend_ops wg_ops = {
    .type = "wireguard",
    .validate = validate,
    .create = create,
    .update = update,
    .remove = remove_if,
    .start = start,
    .status = status,
    .report = report,
    .free = wfree,
};

int agent_wg_new(struct agent_backend **out, const char *dir, const char *self)
{
	struct agent_backend *b = calloc(1, sizeof(*b));
	struct wpriv *w = calloc(1, sizeof(*w));
	char why[256];

	*out = NULL;
	if (!b || !w) {
		free(b);
		free(w);
		return SG_ENOMEM;
	}
	snprintf(w->dir, sizeof(w->dir), "%s", dir);
	snprintf(w->self, sizeof(w->self), "%s", self);
	if (agent_state_dir(w->dir, why, sizeof(why))) {
		free(b);
		free(w);
		return SG_EIO;
	}
	b->ops = &wg_ops;
	b->priv = w;
	snprintf(b->name, sizeof(b->name), "secureguardd");
	*out = b;
	return 0;
}
