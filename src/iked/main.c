/* secureguard-iked [-f] [-v] [--vici URI] [--conf FILE]
 *
 * The IKEv2/ESP daemon: what strongSwan's charon with kernel-libipsec is, configured the same
 * way (swanctl.conf, or strongSwan's own swanctl over VICI at charon's socket path). Without -f
 * it daemonizes and the parent exits 0 once the sockets, the TUN device and the VICI socket
 * exist. Docs: docs/IKE.md.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <secureguard/sg_errors.h>

#include "common/log.h"
#include "crypto/crypto.h"
#include "crypto/pki.h"
#include "iked/iked.h"
#include "net/privs.h"
#include "net/proc.h"
#include "vici/swanctl_conf.h"

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"Usage: %s [-f/--foreground] [-v/--verbose] [--vici URI] [--conf FILE]\n"
		"  --vici URI   VICI socket (default " VICI_DEFAULT_URI ")\n"
		"  --conf FILE  swanctl.conf to load at start (connections and secrets)\n",
		prog);
}

/* A file named in swanctl.conf, read as swanctl reads it: absolute, or relative to the directory
 * `sub` next to swanctl.conf. 0, or SG_EIO with conf->err saying what and where. */
static int read_named(struct iked *d, const char *what, const char *sub, const char *file,
		      uint8_t **data, size_t *len, struct swanctl_conf *conf)
{
	char path[768];
	if (file[0] == '/')
		snprintf(path, sizeof(path), "%s", file);
	else
		snprintf(path, sizeof(path), "%s/%s/%s", d->conf_dir, sub, file);
	int rc = iked_read_file(path, data, len);
	if (rc) {
		int w = snprintf(conf->err, sizeof(conf->err), "%.40s %.160s: %.40s", what, path,
				 strerror(-rc));
		(void)w;
		return SG_EIO;
	}
	return 0;
}

/* Runs the VICI command `cmd` on the message built in b (freed here). */
static int run_built(struct iked *d, const char *cmd, struct vici_builder *b,
		     struct vici_builder *resp)
{
	struct vici_msg *m = NULL;
	const uint8_t *raw;
	size_t rl;
	int rc = vici_builder_finish(b, &raw, &rl, NULL);
	if (!rc)
		rc = vici_msg_parse(raw, rl, &m, NULL);
	if (!rc)
		rc = iked_vici_ops.command(d, 0, cmd, vici_msg_root(m), resp);
	vici_msg_free(m);
	vici_builder_free(b);
	return rc;
}

/* secrets.private*|rsa*|ecdsa* { file, secret }: read from the directory of that type next to
 * swanctl.conf, decrypted with `secret` when the file is encrypted (as swanctl does), and loaded
 * through VICI's load-key. */
static int load_key_file(struct iked *d, const struct vici_node *req, struct vici_builder *resp,
			 struct swanctl_conf *conf)
{
	const char *type = vici_get_str(req, "type"), *file = vici_get_str(req, "file");
	const struct vici_node *pass = vici_find(req, "secret");
	uint8_t *data, *der;
	size_t len, dlen;
	if (!type || !file)
		return SG_EINVAL;
	int rc = read_named(d, "private key", type, file, &data, &len, conf);
	if (rc)
		return rc;
	rc = sg_privkey_decrypt(data, len, pass ? pass->value : NULL, pass ? pass->value_len : 0,
				&der, &dlen);
	sg_memzero(data, len);
	free(data);
	if (rc) {
		snprintf(conf->err, sizeof(conf->err), "private key %s/%.40s: %s", type, file,
			 rc == SG_EAUTH && pass ? "its secret does not decrypt it"
			 : rc == SG_EAUTH ? "it is encrypted; give its passphrase as secret in its "
					    "secrets section"
					  : "not an RSA or ECDSA private key");
		return rc;
	}
	struct vici_builder b;
	vici_builder_init(&b);
	vici_add_kv_str(&b, "type", type);
	vici_add_kv(&b, "data", der, dlen);
	sg_memzero(der, dlen);
	free(der);
	return run_built(d, "load-key", &b, resp);
}

/* authorities.<name> { cacert = FILE }: read from the x509ca directory and sent as
 * load-authority's cacert data; a `file` (absolute) is read by the handler itself, as charon
 * does. */
static int load_authority_file(struct iked *d, const struct vici_node *req,
			       struct vici_builder *resp, struct swanctl_conf *conf)
{
	const struct vici_node *sec = req->child;
	const char *file = sec ? vici_get_str(sec, "cacert") : NULL;
	uint8_t *data;
	size_t len;
	if (!file)
		return iked_vici_ops.command(d, 0, "load-authority", req, resp);
	int rc = read_named(d, "authority's cacert", "x509ca", file, &data, &len, conf);
	if (rc)
		return rc;
	struct vici_builder b;
	vici_builder_init(&b);
	vici_add_section_start(&b, sec->name);
	vici_add_kv(&b, "cacert", data, len);
	vici_add_section_end(&b);
	free(data);
	return run_built(d, "load-authority", &b, resp);
}

/* Loads a swanctl.conf through the same handlers as VICI: credentials first, then
 * connections. */
static int load_conf(struct iked *d, const char *file)
{
	struct swanctl_conf *conf = malloc(sizeof(*conf));
	char line[SWANCTL_MAX_LINE + 2];
	FILE *f = fopen(file, "r");
	int err = 0;
	if (!conf || !f) {
		sg_log(SG_LOG_ERROR, "conf_failed", "file=%s error=\"%s\"", file,
		       f ? "out of memory" : strerror(errno));
		if (f)
			fclose(f);
		free(conf);
		return 1;
	}
	swanctl_init(conf);
	/* Relative certificate and key names are under the file's directory (swanctl's layout). */
	const char *slash = strrchr(file, '/');
	if (slash)
		snprintf(d->conf_dir, sizeof(d->conf_dir), "%.*s", (int)(slash - file), file);
	else
		snprintf(d->conf_dir, sizeof(d->conf_dir), ".");
	while (!err && fgets(line, sizeof(line), f)) {
		size_t n = strlen(line);
		if (n && line[n - 1] == '\n')
			n--;
		err = swanctl_feed(conf, line, n);
	}
	if (!err && ferror(f)) {
		snprintf(conf->err, sizeof(conf->err), "read error");
		err = SG_EIO;
	}
	fclose(f);
	if (!err)
		err = swanctl_finish(conf);
	for (int pass = 0; !err && pass < 2; pass++)
		for (unsigned i = 0; !err && i < conf->nitems; i++) {
			struct swanctl_msg *it = &conf->items[i];
			bool cred = strcmp(it->cmd, "load-conn") != 0;
			if (cred != (pass == 0))
				continue;
			const uint8_t *raw;
			size_t len;
			struct vici_msg *m = NULL;
			struct vici_builder resp;
			vici_builder_init(&resp);
			err = vici_builder_finish(&it->msg, &raw, &len, NULL);
			if (!err)
				err = vici_msg_parse(raw, len, &m, NULL);
			if (!err && !strcmp(it->cmd, "load-key"))
				err = load_key_file(d, vici_msg_root(m), &resp, conf);
			else if (!err && !strcmp(it->cmd, "load-authority"))
				err = load_authority_file(d, vici_msg_root(m), &resp, conf);
			else if (!err)
				err = iked_vici_ops.command(d, 0, it->cmd, vici_msg_root(m), &resp);
			vici_msg_free(m);
			const uint8_t *rr;
			size_t rl;
			struct vici_msg *rm = NULL;
			if (!err && vici_builder_finish(&resp, &rr, &rl, NULL) == 0 &&
			    vici_msg_parse(rr, rl, &rm, NULL) == 0) {
				const char *s = vici_get_str(vici_msg_root(rm), "success");
				if (!s || strcmp(s, "yes")) {
					const char *e = vici_get_str(vici_msg_root(rm), "errmsg");
					snprintf(conf->err, sizeof(conf->err), "%s %s: %s", it->cmd,
						 it->name, e ? e : "failed");
					err = SG_EINVAL;
				}
			}
			vici_msg_free(rm);
			vici_builder_free(&resp);
		}
	if (err) {
		char q[300];
		sg_log(SG_LOG_ERROR, "conf_failed", "file=%s error=%s", file,
		       sg_log_quote(q, sizeof(q), conf->err));
	}
	d->conf_dir[0] = 0; /* file names only from the file, never later from VICI */
	swanctl_free(conf);
	free(conf);
	return err ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"foreground", no_argument, NULL, 'f'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {"vici", required_argument, NULL, 'u'},
	    {"conf", required_argument, NULL, 'c'},
	    {NULL, 0, NULL, 0},
	};
	bool foreground = false, verbose = false;
	const char *uri = VICI_DEFAULT_URI, *conf = NULL, *why = "";
	int opt;

	int nodump = privs_no_dump(); /* before any key exists */
	while ((opt = getopt_long(argc, argv, "fvh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			foreground = true;
			break;
		case 'v':
			verbose = true;
			break;
		case 'u':
			uri = optarg;
			break;
		case 'c':
			conf = optarg;
			break;
		case 'h':
			usage(stdout, argv[0]);
			return 0;
		case 'V':
			printf("secureguard-iked %s\n\nIKEv2/ESP daemon (SecureGuard).\n",
			       SG_VERSION);
			return 0;
		default:
			usage(stderr, argv[0]);
			return 1;
		}
	}
	if (optind != argc) {
		usage(stderr, argv[0]);
		return 1;
	}
	sg_log_open("secureguard-iked", SG_LOG_TO_STDERR);
	sg_log_set_level(verbose ? SG_LOG_DEBUG : SG_LOG_INFO);
	if (nodump != 0)
		sg_log(SG_LOG_WARN, "no_dump_failed", "error=\"%s\"", strerror(-nodump));
	if (sg_crypto_init() != 0) {
		sg_log(SG_LOG_ERROR, "crypto_init_failed", "library=%s",
		       sg_crypto_library_version());
		return 1;
	}
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGUSR1);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	int ready_fd = foreground ? -1 : proc_daemonize();
	struct iked *d = calloc(1, sizeof(*d));
	if (!d)
		return 1;
	int err = iked_init(d, uri, &why);
	if (err) {
		char q[128];
		sg_log(SG_LOG_ERROR, "start_failed", "step=%s error=\"%s\"",
		       sg_log_quote(q, sizeof(q), why), strerror(-err));
		iked_free(d);
		free(d);
		return 1;
	}
	if (conf && load_conf(d, conf) != 0) {
		iked_free(d);
		free(d);
		return 1;
	}
	err = privs_drop(&why);
	if (err != 0)
		sg_log(SG_LOG_WARN, "privilege_drop_incomplete", "step=%s error=\"%s\"", why,
		       strerror(-err));
	if ((err = iked_start_lanes(d)) != 0) {
		sg_log(SG_LOG_ERROR, "start_failed", "step=crypto_lanes error=\"%s\"",
		       strerror(-err));
		iked_free(d);
		free(d);
		return 1;
	}
	if (ready_fd >= 0)
		proc_ready(ready_fd, "secureguard-iked");
	sg_log(SG_LOG_INFO, "started", "version=%s pid=%d vici=%s tun=%s mode=%s", SG_VERSION,
	       (int)getpid(), uri, d->tun.name, foreground ? "foreground" : "daemon");
	int rc = iked_run(d);
	iked_free(d);
	free(d);
	sg_log_close();
	return rc;
}
