/* setconf, addconf, syncconf and set: the wg(8) ways of changing a running interface, sent as
 * one UAPI set request each. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "crypto/crypto.h"

static int pubkey_cmp(const void *a, const void *b)
{
	const struct wgdev_peer *const *x = a, *const *y = b;

	return memcmp((*x)->public_key, (*y)->public_key, SG_KEY_LEN);
}

/* setconf and syncconf replace the device's settings too: SecureGuard's device keys that the
 * file leaves out are reset. Only sent when the daemon has them, so a wireguard-go daemon never
 * sees a key it does not know. */
static int reset_absent_device_keys(struct wgdev *want)
{
	struct wgdev *have = NULL;
	int ret = cli_ipc_get(want->name, &have);

	if (ret) {
		cli_errno("Unable to retrieve current interface configuration", ret);
		return -1;
	}
	if ((have->flags & WGDEV_HAS_FIPS_KEY) && !(want->flags & WGDEV_HAS_FIPS_KEY)) {
		memset(want->fips_private_key, 0, SG_FIPS_PRIV_LEN);
		want->flags |= WGDEV_HAS_FIPS_KEY;
	}
	if ((have->flags & WGDEV_HAS_CRYPTO_MODE) && !(want->flags & WGDEV_HAS_CRYPTO_MODE)) {
		want->crypto_mode = SG_WGCONF_MODE_AUTO;
		want->flags |= WGDEV_HAS_CRYPTO_MODE;
	}
	/* TLS settings: a file without them turns the listener off. */
	if ((have->flags & WGDEV_HAS_TLS) && !(want->flags & WGDEV_HAS_TLS))
		want->flags |= WGDEV_HAS_TLS;
	if (have->fips_strict && !(want->flags & WGDEV_HAS_FIPS_STRICT)) {
		want->fips_strict = false;
		want->flags |= WGDEV_HAS_FIPS_STRICT;
	}
	wgdev_free(have);
	return 0;
}

/* syncconf: turn a replace-everything request into the difference from the running state.
 * Peers only in the running state are removed; peers in both are updated in place, so their
 * sessions survive; a preshared key or keepalive the file no longer has is cleared. A file
 * without peers keeps replace_peers and so removes all, as wg(8). */
static int sync_device(struct wgdev *want)
{
	struct wgdev *have = NULL;
	struct wgdev_peer **sorted = NULL;
	bool *gone = NULL;
	size_t n_want = want->n_peers;
	int ret;

	if (!n_want)
		return 0;
	ret = cli_ipc_get(want->name, &have);
	if (ret) {
		cli_errno("Unable to retrieve current interface configuration", ret);
		return -1;
	}
	ret = 0;
	if (!have->n_peers)
		goto out;
	want->flags &= ~WGDEV_REPLACE_PEERS;
	sorted = calloc(n_want, sizeof(*sorted));
	gone = calloc(have->n_peers, sizeof(*gone));
	if (!sorted || !gone) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n_want; i++)
		sorted[i] = &want->peers[i];
	qsort(sorted, n_want, sizeof(*sorted), pubkey_cmp);
	for (size_t i = 0; i < have->n_peers; i++) {
		struct wgdev_peer *h = &have->peers[i], **found;

		found = bsearch(&h, sorted, n_want, sizeof(*sorted), pubkey_cmp);
		if (!found) {
			gone[i] = true;
			continue;
		}
		if ((h->flags & WGDEV_PEER_HAS_PSK) && !((*found)->flags & WGDEV_PEER_HAS_PSK)) {
			memset((*found)->preshared_key, 0, SG_KEY_LEN);
			(*found)->flags |= WGDEV_PEER_HAS_PSK;
		}
		if (h->keepalive && !((*found)->flags & WGDEV_PEER_HAS_KEEPALIVE)) {
			(*found)->keepalive = 0;
			(*found)->flags |= WGDEV_PEER_HAS_KEEPALIVE;
		}
		/* SecureGuard keys the file no longer has: remove the FIPS key, inherit the mode. */
		if ((h->flags & WGDEV_PEER_HAS_FIPS_KEY) &&
		    !((*found)->flags & WGDEV_PEER_HAS_FIPS_KEY)) {
			memset((*found)->fips_public_key, 0, SG_FIPS_PUB_LEN);
			(*found)->flags |= WGDEV_PEER_HAS_FIPS_KEY;
		}
		if ((h->flags & WGDEV_PEER_HAS_CRYPTO_MODE) &&
		    !((*found)->flags & WGDEV_PEER_HAS_CRYPTO_MODE)) {
			(*found)->crypto_mode = SG_WGCONF_MODE_UNSET;
			(*found)->flags |= WGDEV_PEER_HAS_CRYPTO_MODE;
		}
		if ((h->flags & WGDEV_PEER_HAS_TRANSPORT) &&
		    !((*found)->flags & WGDEV_PEER_HAS_TRANSPORT)) {
			(*found)->transport = SG_WGCONF_TRANSPORT_UNSET;
			(*found)->flags |= WGDEV_PEER_HAS_TRANSPORT;
		}
		if ((h->flags & WGDEV_PEER_HAS_TLS_ENDPOINT) &&
		    !((*found)->flags & WGDEV_PEER_HAS_TLS_ENDPOINT)) {
			memset(&(*found)->tls_endpoint, 0, sizeof((*found)->tls_endpoint));
			if (sg_wgconf_host_set(&(*found)->tls_server_name, "")) {
				ret = -ENOMEM;
				goto out;
			}
			(*found)->flags |= WGDEV_PEER_HAS_TLS_ENDPOINT;
		}
	}
	/* Appending may move want->peers, so only now that no pointer into it is kept. */
	for (size_t i = 0; i < have->n_peers; i++) {
		struct wgdev_peer *rm;

		if (!gone[i])
			continue;
		rm = wgdev_add_peer(want);
		if (!rm) {
			ret = -ENOMEM;
			goto out;
		}
		memcpy(rm->public_key, have->peers[i].public_key, SG_KEY_LEN);
		rm->flags = WGDEV_PEER_REMOVE;
	}
out:
	free(sorted);
	free(gone);
	wgdev_free(have);
	if (ret) {
		cli_errno("syncconf", ret);
		return -1;
	}
	return 0;
}

int cli_cmd_setconf(int argc, char **argv)
{
	struct sg_wgconf conf;
	struct wgdev *dev = NULL;
	bool append = !strcmp(argv[0], "addconf"), sync = !strcmp(argv[0], "syncconf");
	int ret = 1, err;

	if (argc != 3) {
		fprintf(stderr, "Usage: %s %s <interface> <configuration filename>\n", CLI_PROG,
			argv[0]);
		return 1;
	}
	if (!cli_ifname_valid(argv[1])) {
		fprintf(stderr, "%s: invalid interface name `%s'\n", CLI_PROG, argv[1]);
		return 1;
	}
	/* The wg-quick keys (Address, DNS, ...) are parsed and ignored here, so one file serves
	 * both `up' and these commands (what `wg-quick strip' is for with wg(8)). */
	if (cli_load_conf(argv[2], &conf))
		return 1;
	if (cli_device_from_conf(&conf, argv[1], append, &dev))
		goto out;
	if (!append && reset_absent_device_keys(dev))
		goto out;
	if (sync && sync_device(dev))
		goto out;
	err = cli_ipc_set(dev);
	if (err) {
		fprintf(stderr, "%s: Unable to modify interface %s: %s\n", CLI_PROG, argv[1],
			strerror(-err));
		goto out;
	}
	ret = 0;
out:
	wgdev_free(dev);
	sg_wgconf_free(&conf);
	return ret;
}

static void set_usage(void)
{
	fprintf(stderr,
		"Usage: %s set <interface> [listen-port <port>] [fwmark <mark>] "
		"[private-key <file path>] [fips-private-key <file path>] "
		"[crypto-mode auto|fips|classic] [tls-listen-port <port>] [tls-certificate <path>] "
		"[tls-private-key <path>] [tls-ca <path>] [tls-crl <path>] [require-client-cert true|false] "
		"[tls-session-key <path>] [require-session-token true|false] [tls-session-token <path>] "
		"[peer <base64 public key> [remove] "
		"[fips-public-key <base64>] [crypto-mode auto|fips|classic|inherit] "
		"[transport udp|tls|auto] [tls-endpoint <host>:<port>] "
		"[preshared-key <file path>] [endpoint <ip>:<port>] "
		"[persistent-keepalive <interval seconds>] "
		"[allowed-ips <ip1>/<cidr1>[,<ip2>/<cidr2>]...] ]...\n",
		CLI_PROG);
}

static int set_allowed_ips(struct wgdev_peer *peer, const char *arg)
{
	char list[SG_WGCONF_MAX_LINE + 1], why[160];
	size_t n = 0;

	/* Whitespace is ignored inside the list, as in a config file. */
	for (size_t i = 0; arg[i]; i++) {
		if (arg[i] == ' ' || arg[i] == '\t' || arg[i] == '\n' || arg[i] == '\r')
			continue;
		if (n >= SG_WGCONF_MAX_LINE) {
			fprintf(stderr, "%s: allowed-ips: longer than %u characters\n", CLI_PROG,
				SG_WGCONF_MAX_LINE);
			return -1;
		}
		list[n++] = arg[i];
	}
	list[n] = '\0';
	peer->flags |= WGDEV_PEER_REPLACE_IPS;
	peer->n_ips = 0;
	if (!n)
		return 0;
	for (char *tok = list;;) {
		char *comma = strchr(tok, ',');
		struct sg_wgconf_ip ip;

		if (comma)
			*comma = '\0';
		if (sg_wgconf_parse_ip(&ip, tok, why, sizeof(why))) {
			fprintf(stderr, "%s: allowed-ips: %s\n", CLI_PROG, why);
			return -1;
		}
		if (wgdev_peer_add_ip(peer, &ip)) {
			fprintf(stderr, "%s: allowed-ips: more than %u entries\n", CLI_PROG,
				WGDEV_MAX_PEER_IPS);
			return -1;
		}
		if (!comma)
			return 0;
		tok = comma + 1;
	}
}

/* Parses the words after `set IFNAME' into dev. 0 or -1 (printed). */
static int parse_set_args(struct wgdev *dev, int argc, char **argv)
{
	struct wgdev_peer *peer = NULL;
	char why[160];

	for (int i = 0; i < argc;) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "remove") && peer) {
			peer->flags |= WGDEV_PEER_REMOVE;
			i++;
			continue;
		}
		if (!v) {
			fprintf(stderr, "%s: set: `%s' needs a value or is not valid here\n",
				CLI_PROG, a);
			return -1;
		}
		if (!strcmp(a, "listen-port") && !peer) {
			if (sg_wgconf_parse_port(&dev->listen_port, v, why, sizeof(why)))
				goto bad;
			dev->flags |= WGDEV_HAS_LISTEN_PORT;
		} else if (!strcmp(a, "fwmark") && !peer) {
			if (sg_wgconf_parse_fwmark(&dev->fwmark, v, why, sizeof(why)))
				goto bad;
			dev->flags |= WGDEV_HAS_FWMARK;
		} else if (!strcmp(a, "private-key") && !peer) {
			if (cli_read_keyfile(v, dev->private_key))
				return -1;
			dev->flags |= WGDEV_HAS_PRIVATE_KEY;
		} else if (!strcmp(a, "fips-private-key") && !peer) {
			if (cli_read_fips_keyfile(v, dev->fips_private_key))
				return -1;
			dev->flags |= WGDEV_HAS_FIPS_KEY;
		} else if (!strcmp(a, "crypto-mode")) {
			enum sg_wgconf_mode m = cli_mode_parse(v);
			if (!m && !(peer && !strcmp(v, "inherit"))) {
				snprintf(why, sizeof(why), "not auto, fips or classic%s",
					 peer ? " (or inherit)" : "");
				goto bad;
			}
			if (peer) {
				peer->crypto_mode = m;
				peer->flags |= WGDEV_PEER_HAS_CRYPTO_MODE;
			} else {
				dev->crypto_mode = m;
				dev->flags |= WGDEV_HAS_CRYPTO_MODE;
			}
		} else if (!strcmp(a, "tls-listen-port") && !peer) {
			if (sg_wgconf_parse_port(&dev->tls_listen_port, v, why, sizeof(why)))
				goto bad;
			dev->flags |= WGDEV_HAS_TLS_PORT;
		} else if ((!strcmp(a, "tls-certificate") || !strcmp(a, "tls-private-key") ||
			    !strcmp(a, "tls-ca") || !strcmp(a, "tls-crl") ||
			    !strcmp(a, "tls-session-key") || !strcmp(a, "tls-session-token")) &&
			   !peer) {
			char **dst = !strcmp(a, "tls-certificate")   ? &dev->tls_certificate
				     : !strcmp(a, "tls-private-key") ? &dev->tls_private_key
				     : !strcmp(a, "tls-crl")	     ? &dev->tls_crl
				     : !strcmp(a, "tls-session-key") ? &dev->tls_session_key
				     : !strcmp(a, "tls-session-token") ? &dev->tls_session_token
								     : &dev->tls_ca;
			if (v[0] && v[0] != '/') {
				snprintf(why, sizeof(why), "not an absolute path");
				goto bad;
			}
			free(*dst);
			*dst = v[0] ? strdup(v) : NULL;
			dev->flags |= !strcmp(a, "tls-certificate")   ? WGDEV_HAS_TLS_CERT
				      : !strcmp(a, "tls-private-key") ? WGDEV_HAS_TLS_KEY
				      : !strcmp(a, "tls-crl")	      ? WGDEV_HAS_TLS_CRL
				      : !strcmp(a, "tls-session-key") ? WGDEV_HAS_TLS_SKEY
				      : !strcmp(a, "tls-session-token") ? WGDEV_HAS_TLS_TOKEN
								      : WGDEV_HAS_TLS_CA;
		} else if (!strcmp(a, "require-client-cert") && !peer) {
			if (strcmp(v, "true") && strcmp(v, "false")) {
				snprintf(why, sizeof(why), "neither true nor false");
				goto bad;
			}
			dev->require_client_cert = !strcmp(v, "true");
			dev->flags |= WGDEV_HAS_TLS_RCC;
		} else if (!strcmp(a, "require-session-token") && !peer) {
			if (strcmp(v, "true") && strcmp(v, "false")) {
				snprintf(why, sizeof(why), "neither true nor false");
				goto bad;
			}
			dev->require_session_token = !strcmp(v, "true");
			dev->flags |= WGDEV_HAS_TLS_RST;
		} else if (!strcmp(a, "transport") && peer) {
			peer->transport = !strcmp(v, "udp")	 ? SG_WGCONF_TRANSPORT_UDP
					  : !strcmp(v, "tls")	 ? SG_WGCONF_TRANSPORT_TLS
					  : !strcmp(v, "auto") ? SG_WGCONF_TRANSPORT_AUTO
								 : SG_WGCONF_TRANSPORT_UNSET;
			if (!peer->transport) {
				snprintf(why, sizeof(why), "neither udp, tls nor auto");
				goto bad;
			}
			peer->flags |= WGDEV_PEER_HAS_TRANSPORT;
		} else if (!strcmp(a, "tls-endpoint") && peer) {
			char host[SG_WGCONF_HOST_MAX + 1];
			uint16_t port;

			if (sg_wgconf_parse_endpoint(host, &port, v, why, sizeof(why)))
				goto bad;
			if (cli_resolve_endpoint(&peer->tls_endpoint, host, port))
				return -1;
			if (sg_wgconf_host_set(&peer->tls_server_name, host)) {
				fprintf(stderr, "%s: out of memory\n", CLI_PROG);
				return -1;
			}
			peer->flags |= WGDEV_PEER_HAS_TLS_ENDPOINT;
		} else if (!strcmp(a, "fips-public-key") && peer) {
			if (sg_fipskey_pub_from_base64(peer->fips_public_key, v, strlen(v))) {
				snprintf(why, sizeof(why), "not a FIPS public key (%u base64 "
							   "characters of a P-384 point)",
					 SG_FIPS_PUB_BASE64_LEN);
				goto bad;
			}
			peer->flags |= WGDEV_PEER_HAS_FIPS_KEY;
		} else if (!strcmp(a, "peer")) {
			peer = wgdev_add_peer(dev);
			if (!peer) {
				fprintf(stderr, "%s: set: too many peers\n", CLI_PROG);
				return -1;
			}
			/* A FIPS public key names a FIPS-only peer (by its FIPS peer id). */
			if (strlen(v) == SG_FIPS_PUB_BASE64_LEN &&
			    !sg_fipskey_pub_from_base64(peer->fips_public_key, v, strlen(v)) &&
			    sg_fips_peer_id(peer->public_key, peer->fips_public_key)) {
				peer->flags |= WGDEV_PEER_HAS_FIPS_KEY;
			} else if (sg_key_from_base64(peer->public_key, v, strlen(v))) {
				fprintf(stderr,
					"%s: set: peer: not a base64 key of 44 characters (or a "
					"FIPS public key of %u)\n",
					CLI_PROG, SG_FIPS_PUB_BASE64_LEN);
				return -1;
			}
		} else if (!strcmp(a, "endpoint") && peer) {
			char host[SG_WGCONF_HOST_MAX + 1];
			uint16_t port;

			if (sg_wgconf_parse_endpoint(host, &port, v, why, sizeof(why)))
				goto bad;
			if (cli_resolve_endpoint(&peer->endpoint, host, port))
				return -1;
			peer->flags |= WGDEV_PEER_HAS_ENDPOINT;
		} else if (!strcmp(a, "allowed-ips") && peer) {
			if (set_allowed_ips(peer, v))
				return -1;
		} else if (!strcmp(a, "persistent-keepalive") && peer) {
			if (sg_wgconf_parse_keepalive(&peer->keepalive, v, why, sizeof(why)))
				goto bad;
			peer->flags |= WGDEV_PEER_HAS_KEEPALIVE;
		} else if (!strcmp(a, "preshared-key") && peer) {
			if (cli_read_keyfile(v, peer->preshared_key))
				return -1;
			peer->flags |= WGDEV_PEER_HAS_PSK;
		} else {
			fprintf(stderr, "%s: set: invalid argument: %s\n", CLI_PROG, a);
			return -1;
		}
		i += 2;
		continue;
	bad:
		fprintf(stderr, "%s: set: %s: %s\n", CLI_PROG, a, why);
		return -1;
	}
	return 0;
}

int cli_cmd_set(int argc, char **argv)
{
	struct wgdev *dev;
	int ret = 1, err;

	if (argc < 3) {
		set_usage();
		return 1;
	}
	if (!cli_ifname_valid(argv[1])) {
		fprintf(stderr, "%s: invalid interface name `%s'\n", CLI_PROG, argv[1]);
		return 1;
	}
	dev = wgdev_new(argv[1]);
	if (!dev) {
		fprintf(stderr, "%s: out of memory\n", CLI_PROG);
		return 1;
	}
	if (parse_set_args(dev, argc - 2, argv + 2))
		goto out;
	err = cli_ipc_set(dev);
	if (err) {
		fprintf(stderr, "%s: Unable to modify interface %s: %s\n", CLI_PROG, argv[1],
			strerror(-err));
		goto out;
	}
	ret = 0;
out:
	wgdev_free(dev);
	return ret;
}
