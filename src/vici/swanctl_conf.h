/* swanctl.conf: strongSwan's configuration file, turned into the VICI messages swanctl itself
 * would send (load-conn per connection, load-shared per secret). The IKE daemon reads its
 * --conf file through this and feeds the messages to its own VICI handlers, so a file and
 * `swanctl --load-all` configure it the same way.
 *
 * The parser is fed one line at a time and does no I/O (the project's config-parser style), so
 * it is fuzzed directly. Syntax (strongSwan's settings format, the subset swanctl.conf uses):
 *
 *   # comment              (also after a value, unless quoted)
 *   name {                 a section; `}` closes it
 *   key = value            the rest of the line, trimmed; "quoted" with \" \\ \n \t escapes
 *
 * Sections and keys accepted (the subset documented in docs/IKE.md; anything else is an error
 * naming the line and the key, rather than a setting silently ignored):
 *
 *   connections.<conn>:  version local_addrs remote_addrs local_port remote_port proposals
 *                        dpd_delay dpd_timeout rekey_time reauth_time encap fragmentation
 *                        mobike unique keyingtries fips
 *   connections.<conn>.local<-suffix>, .remote<-suffix>:  auth id
 *   connections.<conn>.children.<child>:  local_ts remote_ts esp_proposals mode start_action
 *                        dpd_action close_action rekey_time life_time rekey_bytes life_bytes
 *                        rekey_packets life_packets
 *   connections.<conn>.local*: certs; .remote*: cacerts (file names, kept as written)
 *   secrets.ike<-suffix>:  id<-suffix> secret
 *   secrets.private<-suffix>, rsa<-suffix>, ecdsa<-suffix>:  file   (a "load-key" item with the
 *                        file name, for the caller to read: the parser does no I/O)
 *   authorities.<name>:  cacert (a file name under x509ca) or file (an absolute path): a
 *                        "load-authority" item with the name as written, for the caller to
 *                        read; crl_uris, ocsp_uris, cert_uri_base and the PKCS#11 keys are
 *                        refused by name (no revocation checks are made)
 *
 * A key given twice in one section is an error naming the line.
 *
 * Keys whose VICI form is a list (local_addrs, remote_addrs, proposals, esp_proposals,
 * local_ts, remote_ts, certs, cacerts) are split at commas, as swanctl does.
 */
#ifndef SG_VICI_SWANCTL_CONF_H
#define SG_VICI_SWANCTL_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"
#include "vici/vici.h"

#define SWANCTL_MAX_DEPTH 8
#define SWANCTL_MAX_LINE  4096
#define SWANCTL_MAX_ITEMS 64 /* connections + secrets per file */

struct swanctl_msg {
	char cmd[16]; /* "load-conn", "load-shared", "load-key" or "load-authority" (file names) */
	char name[64];
	struct vici_builder msg; /* finished message */
};

struct swanctl_conf {
	struct swanctl_msg items[SWANCTL_MAX_ITEMS];
	unsigned nitems;
	/* Parser state. */
	unsigned line;
	unsigned depth;
	char path[SWANCTL_MAX_DEPTH][64];
	/* Keys set in each open section: a repeated key is an error (strongSwan would keep the
	 * last silently). */
	char keys[SWANCTL_MAX_DEPTH + 1][32][64]; /* by depth: 1..SWANCTL_MAX_DEPTH */
	unsigned nkeys[SWANCTL_MAX_DEPTH + 1];
	struct vici_builder cur; /* the connection being built */
	bool in_item;
	/* The secret being collected (secrets.ike*), built when its section closes. */
	uint8_t sec_data[512];
	size_t sec_len;
	bool sec_have;
	char sec_ids[8][256];
	unsigned sec_nids;
	/* secrets.private*|rsa*|ecdsa*: the passphrase of an encrypted key file. */
	uint8_t sec_pass[256];
	size_t sec_pass_len;
	bool sec_pass_have;
	char err[256]; /* "line 7: ..." after a failure */
};

void swanctl_init(struct swanctl_conf *c);
/* Wipes and frees every message (secrets included). */
void swanctl_free(struct swanctl_conf *c);
/* Feeds one line (without the newline; a trailing \r is ignored). 0 or SG_EPARSE/SG_ERANGE/
 * SG_ENOMEM with c->err naming the line and the problem. After an error the state is undefined:
 * free it. */
int swanctl_feed(struct swanctl_conf *c, const char *line, size_t len) SG_WUR;
/* The end of the file: every section must be closed. */
int swanctl_finish(struct swanctl_conf *c) SG_WUR;

#endif
