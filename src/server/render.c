/* wg-quick configuration files rendered from the database.
 *
 * A network's hub is a client with is_relay = 1: its config has ListenPort and one [Peer] per
 * other enabled client of the network (AllowedIPs = that client's /32 and /128). An ordinary
 * client's config has one [Peer] per enabled hub, with the hub's Endpoint and AllowedIPs = the
 * client's allowed_ips or, when empty, the network's subnets.
 *
 * On an mfa_required network a hub lists an ordinary client only while the client's owner
 * holds an open VPN session (routes_vpn.c, docs/SERVER.md "MFA-gated VPN sessions").
 *
 * A network that is not fips_required gets pure wg-quick keys (PrivateKey, PublicKey) that
 * wg-quick, wireguard-go and the phone apps read. A fips_required network gets FipsPrivateKey /
 * FipsPublicKey and CryptoMode = fips, which `secureguard up` reads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secureguard/sg_errors.h"
#include "server/srv_int.h"

/* "a,b,c" -> "a, b, c" into f. */
static void put_list(FILE *f, const char *list)
{
	for (const char *p = list; *p; p++) {
		if (*p == ',')
			fputs(", ", f);
		else
			fputc(*p, f);
	}
}

static void put_addrs(FILE *f, const char *ip4, const char *ip6)
{
	if (ip4)
		fprintf(f, "%s/32", ip4);
	if (ip6)
		fprintf(f, "%s%s/128", ip4 ? ", " : "", ip6);
}

enum {
	C_ID,
	C_NAME,
	C_NET,
	C_PUB,
	C_PUBF,
	C_ENC,
	C_ENCF,
	C_IP4,
	C_IP6,
	C_ALLOWED,
	C_KA,
	C_RELAY,
	C_ENDPOINT,
	C_PORT,
	C_ENABLED,
	N_NAME,
	N_SUB4,
	N_SUB6,
	N_DNS,
	N_FIPS,
	N_MTU,
	C_EXPIRES,
	N_MFA
};

char *srv_render_config(struct srv *s, struct sg_db_conn *c, const char *client_id, int *status,
			char *why, size_t whylen)
{
	struct sg_db_res *res = NULL, *peers = NULL;
	const char *p[] = {client_id, NULL, NULL};
	char *buf = NULL, *priv = NULL, now[24];
	size_t len = 0;
	FILE *f = NULL;
	bool fips, relay;
	int rc, npeers = 0;

	*status = 500;
	snprintf(why, whylen, "internal error");
	rc = sg_db_query(c, &res,
			 "SELECT c.id, c.name, c.network_id, c.public_key_classic, "
			 "c.public_key_fips, c.private_key_classic_enc, c.private_key_fips_enc, "
			 "c.assigned_ip4, c.assigned_ip6, c.allowed_ips, c.persistent_keepalive, "
			 "c.is_relay, c.endpoint, c.listen_port, c.enabled, n.name, n.subnet4, "
			 "n.subnet6, n.dns_servers, n.fips_required, n.mtu, c.expires_at, n.mfa_required FROM "
			 "clients c JOIN networks n ON n.id = c.network_id WHERE c.id = $1",
			 1, p);
	if (rc < 0) {
		snprintf(why, whylen, "database error");
		goto fail;
	}
	if (rc != 1) {
		*status = 404;
		snprintf(why, whylen, "no such client");
		goto fail;
	}
	fips = srv_res_i64(res, 0, N_FIPS) != 0;
	relay = srv_res_i64(res, 0, C_RELAY) != 0;
	p[0] = sg_db_res_get(res, 0, C_NET);
	p[1] = client_id;
	p[2] = srv_i64(now, srv_now());
	/* On an mfa_required network a hub lists a client only while its owner holds an open
	 * VPN session (routes_vpn.c); hubs list each other always. */
	rc = sg_db_query(c, &peers,
			 relay ? "SELECT name, public_key_classic, public_key_fips, assigned_ip4, "
				 "assigned_ip6, endpoint FROM clients c WHERE network_id = $1 AND id "
				 "<> $2 AND enabled = 1 AND (is_relay = 1 OR NOT EXISTS (SELECT 1 "
				 "FROM networks n WHERE n.id = c.network_id AND n.mfa_required = 1) "
				 "OR EXISTS (SELECT 1 FROM vpn_sessions v WHERE v.client_id = c.id "
				 "AND v.user_id = c.owner_id AND v.ended_at IS NULL AND v.expires_at "
				 "> $3)) ORDER BY created_at, id"
			       : "SELECT name, public_key_classic, public_key_fips, assigned_ip4, "
				 "assigned_ip6, endpoint FROM clients WHERE network_id = $1 AND id "
				 "<> $2 AND enabled = 1 AND is_relay = 1 AND CAST($3 AS BIGINT) IS "
				 "NOT NULL ORDER BY created_at, id",
			 3, p);
	if (rc < 0) {
		snprintf(why, whylen, "database error");
		goto fail;
	}
	f = open_memstream(&buf, &len);
	if (!f)
		goto fail;
	fprintf(f, "# SecureGuard configuration of client \"%s\" in network \"%s\"%s\n",
		sg_db_res_get(res, 0, C_NAME), sg_db_res_get(res, 0, N_NAME),
		relay ? " (hub)" : "");
	if (!srv_res_i64(res, 0, C_ENABLED))
		fprintf(f, "# This client is disabled: the hub does not list it as a peer.\n");
	if (!relay && srv_res_i64(res, 0, N_MFA))
		fprintf(f, "# This network requires an MFA session: the hubs list this client "
			   "while its owner is connected (`secureguard connect`).\n");
	if (sg_db_res_get(res, 0, C_EXPIRES))
		fprintf(f, "# Temporary access: valid until %s (unix time).\n",
			sg_db_res_get(res, 0, C_EXPIRES));
	fprintf(f, "[Interface]\n");
	if (sg_db_res_get(res, 0, fips ? C_ENCF : C_ENC)) {
		priv = srv_open(s, sg_db_res_get(res, 0, fips ? C_ENCF : C_ENC), client_id,
				fips ? "fips" : "classic");
		if (!priv) {
			snprintf(why, whylen,
				 "a stored private key does not decrypt (wrong key file?)");
			goto fail;
		}
		fprintf(f, "%s = %s\n", fips ? "FipsPrivateKey" : "PrivateKey", priv);
	} else {
		fprintf(f,
			"# %s: not stored on the server (the public key was supplied by the "
			"client); add your private key here.\n",
			fips ? "FipsPrivateKey" : "PrivateKey");
	}
	if (fips)
		fprintf(f, "CryptoMode = fips\n");
	if (sg_db_res_get(res, 0, C_IP4) || sg_db_res_get(res, 0, C_IP6)) {
		fprintf(f, "Address = ");
		put_addrs(f, sg_db_res_get(res, 0, C_IP4), sg_db_res_get(res, 0, C_IP6));
		fputc('\n', f);
	}
	if (relay && sg_db_res_get(res, 0, C_PORT))
		fprintf(f, "ListenPort = %s\n", sg_db_res_get(res, 0, C_PORT));
	if (sg_db_res_get(res, 0, N_DNS) && *sg_db_res_get(res, 0, N_DNS)) {
		fprintf(f, "DNS = ");
		put_list(f, sg_db_res_get(res, 0, N_DNS));
		fputc('\n', f);
	}
	if (sg_db_res_get(res, 0, N_MTU))
		fprintf(f, "MTU = %s\n", sg_db_res_get(res, 0, N_MTU));
	for (int i = 0; i < rc; i++) {
		const char *key = sg_db_res_get(peers, i, fips ? 2 : 1);

		fprintf(f, "\n[Peer]\n# %s\n", sg_db_res_get(peers, i, 0));
		if (!key) {
			fprintf(f, "# skipped: this peer has no %s public key\n",
				fips ? "FIPS" : "classic");
			continue;
		}
		npeers++;
		fprintf(f, "%s = %s\n", fips ? "FipsPublicKey" : "PublicKey", key);
		if (fips)
			fprintf(f, "CryptoMode = fips\n");
		if (relay) {
			fprintf(f, "AllowedIPs = ");
			put_addrs(f, sg_db_res_get(peers, i, 3), sg_db_res_get(peers, i, 4));
			fputc('\n', f);
		} else {
			const char *allowed = sg_db_res_get(res, 0, C_ALLOWED);

			if (sg_db_res_get(peers, i, 5))
				fprintf(f, "Endpoint = %s\n", sg_db_res_get(peers, i, 5));
			fprintf(f, "AllowedIPs = ");
			if (allowed && *allowed) {
				put_list(f, allowed);
			} else {
				const char *s4 = sg_db_res_get(res, 0, N_SUB4);
				const char *s6 = sg_db_res_get(res, 0, N_SUB6);

				fprintf(f, "%s%s%s", s4 ? s4 : "", s4 && s6 ? ", " : "",
					s6 ? s6 : "");
			}
			fputc('\n', f);
			if (srv_res_i64(res, 0, C_KA) > 0)
				fprintf(f, "PersistentKeepalive = %s\n",
					sg_db_res_get(res, 0, C_KA));
		}
	}
	if (!npeers && !relay)
		fprintf(f, "\n# The network has no enabled hub (a client with is_relay) yet.\n");
	if (fclose(f)) {
		f = NULL;
		goto fail;
	}
	f = NULL;
	*status = 200;
	srv_free_secret(priv);
	sg_db_res_free(res);
	sg_db_res_free(peers);
	return buf;
fail:
	if (f)
		fclose(f);
	if (buf) {
		srv_free_secret(buf);
		buf = NULL;
	}
	srv_free_secret(priv);
	sg_db_res_free(res);
	sg_db_res_free(peers);
	return NULL;
}
