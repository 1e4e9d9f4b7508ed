/* The device model and the one UAPI set-request writer: see wgdev.h. */
#include "config/wgdev.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"

struct wgdev *wgdev_new(const char *ifname)
{
	struct wgdev *dev = calloc(1, sizeof(*dev));

	if (dev)
		snprintf(dev->name, sizeof(dev->name), "%s", ifname);
	return dev;
}

void wgdev_free(struct wgdev *dev)
{
	if (!dev)
		return;
	for (size_t i = 0; i < dev->n_peers; i++) {
		free(dev->peers[i].ips);
		sg_wgconf_host_free(dev->peers[i].tls_server_name);
	}
	free(dev->tls_certificate);
	free(dev->tls_private_key);
	free(dev->tls_ca);
	free(dev->tls_crl);
	free(dev->tls_session_key);
	free(dev->tls_session_token);
	if (dev->peers)
		sg_memzero(dev->peers, dev->cap_peers * sizeof(*dev->peers));
	free(dev->peers);
	sg_memzero(dev, sizeof(*dev));
	free(dev);
}

struct wgdev_peer *wgdev_add_peer(struct wgdev *dev)
{
	if (dev->n_peers >= WGDEV_MAX_PEERS)
		return NULL;
	if (dev->n_peers == dev->cap_peers) {
		size_t cap = dev->cap_peers ? dev->cap_peers * 2 : 8;
		struct wgdev_peer *p = calloc(cap, sizeof(*p));

		if (!p)
			return NULL;
		/* Copy and wipe rather than realloc: peers hold preshared keys. */
		if (dev->n_peers) {
			memcpy(p, dev->peers, dev->n_peers * sizeof(*p));
			sg_memzero(dev->peers, dev->cap_peers * sizeof(*p));
		}
		free(dev->peers);
		dev->peers = p;
		dev->cap_peers = cap;
	}
	struct wgdev_peer *peer = &dev->peers[dev->n_peers++];

	memset(peer, 0, sizeof(*peer));
	if (sg_wgconf_host_set(&peer->tls_server_name, "")) /* the static "": cannot fail */
		abort();
	return peer;
}

int wgdev_peer_add_ip(struct wgdev_peer *peer, const struct sg_wgconf_ip *ip)
{
	if (peer->n_ips >= WGDEV_MAX_PEER_IPS)
		return -ENOSPC;
	if (peer->n_ips == peer->cap_ips) {
		size_t cap = peer->cap_ips ? peer->cap_ips * 2 : 4;
		struct sg_wgconf_ip *p = realloc(peer->ips, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		peer->ips = p;
		peer->cap_ips = cap;
	}
	peer->ips[peer->n_ips++] = *ip;
	return 0;
}

void wgdev_endpoint_format(char *buf, size_t len, const struct sockaddr_storage *ss)
{
	char host[NI_MAXHOST], serv[NI_MAXSERV];
	socklen_t slen =
	    ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	int ret = getnameinfo((const struct sockaddr *)ss, slen, host, sizeof(host), serv,
			      sizeof(serv), NI_DGRAM | NI_NUMERICHOST | NI_NUMERICSERV);

	if (ret)
		snprintf(buf, len, "%s", gai_strerror(ret));
	else if (ss->ss_family == AF_INET6 && strchr(host, ':'))
		snprintf(buf, len, "[%s]:%s", host, serv);
	else
		snprintf(buf, len, "%s:%s", host, serv);
}

void wgdev_set_text(struct sg_strbuf *b, const struct wgdev *dev)
{
	char hex[SG_KEY_HEX_LEN + 1], ip[SG_WGCONF_PREFIX_STRLEN], ep[NI_MAXHOST + NI_MAXSERV + 4];

	sg_strbuf_printf(b, "set=1\n");
	if (dev->flags & WGDEV_HAS_PRIVATE_KEY) {
		sg_key_to_hex(hex, dev->private_key);
		sg_strbuf_printf(b, "private_key=%s\n", hex);
	}
	if (dev->flags & WGDEV_HAS_LISTEN_PORT)
		sg_strbuf_printf(b, "listen_port=%u\n", (unsigned int)dev->listen_port);
	if (dev->flags & WGDEV_HAS_FWMARK)
		sg_strbuf_printf(b, "fwmark=%u\n", (unsigned int)dev->fwmark);
	if (dev->flags & WGDEV_HAS_FIPS_STRICT)
		sg_strbuf_printf(b, "fips_strict=%s\n", dev->fips_strict ? "true" : "false");
	if (dev->flags & WGDEV_HAS_FIPS_KEY) {
		char fhex[2 * SG_FIPS_PRIV_LEN + 1];
		sg_fipskey_priv_to_hex(fhex, dev->fips_private_key);
		sg_strbuf_printf(b, "fips_private_key=%s\n", fhex);
		sg_memzero(fhex, sizeof(fhex));
	}
	if (dev->flags & WGDEV_HAS_CRYPTO_MODE)
		sg_strbuf_printf(b, "crypto_mode=%s\n",
				 dev->crypto_mode ? sg_wgconf_mode_name(dev->crypto_mode) : "auto");
	if (dev->flags & WGDEV_HAS_TLS_PORT)
		sg_strbuf_printf(b, "tls_listen_port=%u\n", (unsigned int)dev->tls_listen_port);
	if (dev->flags & WGDEV_HAS_TLS_CERT)
		sg_strbuf_printf(b, "tls_certificate=%s\n",
				 dev->tls_certificate ? dev->tls_certificate : "");
	if (dev->flags & WGDEV_HAS_TLS_KEY)
		sg_strbuf_printf(b, "tls_private_key=%s\n",
				 dev->tls_private_key ? dev->tls_private_key : "");
	if (dev->flags & WGDEV_HAS_TLS_CA)
		sg_strbuf_printf(b, "tls_ca=%s\n", dev->tls_ca ? dev->tls_ca : "");
	if (dev->flags & WGDEV_HAS_TLS_CRL)
		sg_strbuf_printf(b, "tls_crl=%s\n", dev->tls_crl ? dev->tls_crl : "");
	if (dev->flags & WGDEV_HAS_TLS_RCC)
		sg_strbuf_printf(b, "tls_require_client_cert=%s\n",
				 dev->require_client_cert ? "true" : "false");
	if (dev->flags & WGDEV_HAS_TLS_SKEY)
		sg_strbuf_printf(b, "tls_session_key=%s\n",
				 dev->tls_session_key ? dev->tls_session_key : "");
	if (dev->flags & WGDEV_HAS_TLS_RST)
		sg_strbuf_printf(b, "tls_require_session_token=%s\n",
				 dev->require_session_token ? "true" : "false");
	if (dev->flags & WGDEV_HAS_TLS_TOKEN)
		sg_strbuf_printf(b, "tls_session_token=%s\n",
				 dev->tls_session_token ? dev->tls_session_token : "");
	if (dev->flags & WGDEV_REPLACE_PEERS)
		sg_strbuf_printf(b, "replace_peers=true\n");
	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct wgdev_peer *p = &dev->peers[i];

		sg_key_to_hex(hex, p->public_key);
		sg_strbuf_printf(b, "public_key=%s\n", hex);
		if (p->flags & WGDEV_PEER_REMOVE) {
			sg_strbuf_printf(b, "remove=true\n");
			continue;
		}
		if (p->flags & WGDEV_PEER_HAS_PSK) {
			sg_key_to_hex(hex, p->preshared_key);
			sg_strbuf_printf(b, "preshared_key=%s\n", hex);
		}
		if (p->flags & WGDEV_PEER_HAS_FIPS_KEY) {
			char fhex[2 * SG_FIPS_PUB_LEN + 1];
			sg_fipskey_pub_to_hex(fhex, p->fips_public_key);
			sg_strbuf_printf(b, "fips_public_key=%s\n", fhex);
		}
		if (p->flags & WGDEV_PEER_HAS_CRYPTO_MODE)
			sg_strbuf_printf(b, "crypto_mode=%s\n",
					 p->crypto_mode ? sg_wgconf_mode_name(p->crypto_mode)
							: "inherit");
		if (p->flags & WGDEV_PEER_HAS_TLS_ENDPOINT) {
			if (p->tls_endpoint.ss_family)
				wgdev_endpoint_format(ep, sizeof(ep), &p->tls_endpoint);
			else
				ep[0] = '\0';
			sg_strbuf_printf(b, "tls_endpoint=%s\n", ep);
			sg_strbuf_printf(b, "tls_server_name=%s\n", p->tls_server_name);
		}
		/* After the endpoint: the transport then starts with what it needs. */
		if (p->flags & WGDEV_PEER_HAS_TRANSPORT)
			sg_strbuf_printf(b, "transport=%s\n",
					 p->transport ? sg_wgconf_transport_name(p->transport)
						      : "udp");
		if (p->flags & WGDEV_PEER_HAS_ENDPOINT) {
			wgdev_endpoint_format(ep, sizeof(ep), &p->endpoint);
			sg_strbuf_printf(b, "endpoint=%s\n", ep);
		}
		if (p->flags & WGDEV_PEER_HAS_KEEPALIVE)
			sg_strbuf_printf(b, "persistent_keepalive_interval=%u\n",
					 (unsigned int)p->keepalive);
		if (p->flags & WGDEV_PEER_REPLACE_IPS)
			sg_strbuf_printf(b, "replace_allowed_ips=true\n");
		for (size_t j = 0; j < p->n_ips; j++) {
			sg_wgconf_ip_format(ip, &p->ips[j]);
			sg_strbuf_printf(b, "allowed_ip=%s\n", ip);
		}
	}
	sg_strbuf_printf(b, "\n");
	sg_memzero(hex, sizeof(hex));
}

int wgdev_from_conf(const struct sg_wgconf *conf, const char *ifname, bool append,
		    bool explicit_peers, wgdev_resolve_fn resolve, void *ctx, struct wgdev **out,
		    char *why, size_t whylen)
{
	struct wgdev *dev = wgdev_new(ifname);

	*out = NULL;
	if (!dev)
		goto oom;
	/* setconf replaces the whole configuration: what the file leaves out is reset. */
	if (!append)
		dev->flags |= WGDEV_REPLACE_PEERS | WGDEV_HAS_PRIVATE_KEY | WGDEV_HAS_LISTEN_PORT |
			      WGDEV_HAS_FWMARK;
	if (conf->has_private_key) {
		memcpy(dev->private_key, conf->private_key, SG_KEY_LEN);
		dev->flags |= WGDEV_HAS_PRIVATE_KEY;
	}
	if (conf->has_listen_port) {
		dev->listen_port = conf->listen_port;
		dev->flags |= WGDEV_HAS_LISTEN_PORT;
	}
	if (conf->has_fwmark) {
		dev->fwmark = conf->fwmark;
		dev->flags |= WGDEV_HAS_FWMARK;
	}
	/* FipsStrict first: on a machine without a FIPS provider it must refuse before any FIPS
	 * key is configured. */
	if (conf->fips_strict) {
		dev->fips_strict = true;
		dev->flags |= WGDEV_HAS_FIPS_STRICT;
	}
	if (conf->has_fips_private_key) {
		memcpy(dev->fips_private_key, conf->fips_private_key, SG_FIPS_PRIV_LEN);
		dev->flags |= WGDEV_HAS_FIPS_KEY;
	}
	if (conf->crypto_mode) {
		dev->crypto_mode = conf->crypto_mode;
		dev->flags |= WGDEV_HAS_CRYPTO_MODE;
	}
	if (conf->has_tls_listen_port || conf->tls_certificate || conf->tls_private_key ||
	    conf->tls_ca || conf->tls_crl || conf->require_client_cert || conf->tls_session_key ||
	    conf->require_session_token || conf->tls_session_token) {
		dev->flags |= WGDEV_HAS_TLS;
		dev->tls_listen_port = conf->tls_listen_port;
		dev->require_client_cert = conf->require_client_cert;
		dev->require_session_token = conf->require_session_token;
		if ((conf->tls_session_key &&
		     !(dev->tls_session_key = strdup(conf->tls_session_key))) ||
		    (conf->tls_session_token &&
		     !(dev->tls_session_token = strdup(conf->tls_session_token))))
			goto oom;
		if ((conf->tls_certificate &&
		     !(dev->tls_certificate = strdup(conf->tls_certificate))) ||
		    (conf->tls_private_key &&
		     !(dev->tls_private_key = strdup(conf->tls_private_key))) ||
		    (conf->tls_ca && !(dev->tls_ca = strdup(conf->tls_ca))) ||
		    (conf->tls_crl && !(dev->tls_crl = strdup(conf->tls_crl))))
			goto oom;
	}
	for (size_t i = 0; i < conf->n_peers; i++) {
		const struct sg_wgconf_peer *cp = &conf->peers[i];
		struct wgdev_peer *p = wgdev_add_peer(dev);

		if (!p)
			goto oom;
		memcpy(p->public_key, cp->public_key, SG_KEY_LEN);
		p->flags = WGDEV_PEER_REPLACE_IPS;
		if (explicit_peers)
			p->flags |= WGDEV_PEER_HAS_CRYPTO_MODE | WGDEV_PEER_HAS_TRANSPORT |
				    WGDEV_PEER_HAS_KEEPALIVE;
		if (cp->has_fips_public_key) {
			memcpy(p->fips_public_key, cp->fips_public_key, SG_FIPS_PUB_LEN);
			p->flags |= WGDEV_PEER_HAS_FIPS_KEY;
		}
		if (cp->crypto_mode) {
			p->crypto_mode = cp->crypto_mode;
			p->flags |= WGDEV_PEER_HAS_CRYPTO_MODE;
		}
		if (cp->transport) {
			p->transport = cp->transport;
			p->flags |= WGDEV_PEER_HAS_TRANSPORT;
		}
		if (cp->has_tls_endpoint) {
			if (resolve(ctx, &p->tls_endpoint, cp->tls_endpoint_host,
				    cp->tls_endpoint_port, why, whylen))
				goto fail;
			/* The certificate is checked against the name the user wrote (or the
			 * TlsServerName override); an IP literal is checked as an IP. */
			if (sg_wgconf_host_set(&p->tls_server_name,
					       cp->tls_server_name[0] ? cp->tls_server_name
								      : cp->tls_endpoint_host)) {
				snprintf(why, whylen, "out of memory");
				goto fail;
			}
			p->flags |= WGDEV_PEER_HAS_TLS_ENDPOINT;
		}
		if (cp->has_preshared_key) {
			memcpy(p->preshared_key, cp->preshared_key, SG_KEY_LEN);
			p->flags |= WGDEV_PEER_HAS_PSK;
		}
		if (cp->has_keepalive) {
			p->keepalive = cp->keepalive;
			p->flags |= WGDEV_PEER_HAS_KEEPALIVE;
		}
		if (cp->has_endpoint) {
			if (resolve(ctx, &p->endpoint, cp->endpoint_host, cp->endpoint_port, why,
				    whylen))
				goto fail;
			p->flags |= WGDEV_PEER_HAS_ENDPOINT;
		}
		for (size_t j = 0; j < cp->n_allowed_ips; j++) {
			if (wgdev_peer_add_ip(p, &cp->allowed_ips[j]))
				goto oom;
		}
	}
	*out = dev;
	return 0;
oom:
	snprintf(why, whylen, "out of memory");
	wgdev_free(dev);
	return -ENOMEM;
fail:
	wgdev_free(dev);
	return -1;
}
