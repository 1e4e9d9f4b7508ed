/* `secureguard server`: options, data directory, master key, database, first admin, the HTTP
 * listener, the expiry sweep and a graceful shutdown on SIGTERM/SIGINT. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "common/log.h"
#include "common/logopt.h"
#include "crypto/crypto.h"
#include "net/tls_cert.h"
#include "secureguard/sg_errors.h"
#include "server/api.h"
#include "server/audit.h"
#include "server/httpd.h"
#include "server/redis.h"
#include "server/server.h"
#include "server/srv_int.h"

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: secureguard server [options]\n"
	    "       secureguard server backup|restore FILE [--db URL | --data-dir DIR]\n"
	    "       secureguard server migrate-store --from sqlite:PATH --to postgresql://...\n"
	    "       secureguard server seal-key --key-file FILE --key-uri 'pkcs11:...'\n"
	    "       (docs/OPERATIONS.md)\n"
	    "  --listen HOST:PORT      address to listen on (default 127.0.0.1:8080; [::1]:8080)\n"
	    "  --db URL                sqlite:PATH or postgresql://... (default\n"
	    "                          sqlite:DATA_DIR/server.db)\n"
	    "  --data-dir DIR          data directory (default /var/lib/secureguard)\n"
	    "  --key-file FILE         master key (default DATA_DIR/master.key; created if\n"
	    "                          missing; share it between the servers of a cluster)\n"
	    "  --key-uri 'pkcs11:...'  seal the master key with this P-384 key of a PKCS#11\n"
	    "                          token: --key-file then holds no secret; the PIN comes\n"
	    "                          from SECUREGUARD_PKCS11_PIN or SECUREGUARD_PKCS11_PIN_FILE\n"
	    "  --license FILE          a license (secureguard license show FILE); without one\n"
	    "                          the free edition allows 250 clients\n"
	    "  --tls-cert FILE --tls-key FILE   serve HTTPS with this PEM certificate and key\n"
	    "  --public-url URL        base URL in temporary access links (default: the\n"
	    "                          address and port a client reached the server on)\n"
	    "  --max-body BYTES        largest request body (default 1048576)\n"
	    "  --max-connections N     connection slots (default: what the open-file limit and\n"
	    "                          memory carry, at most 65536)\n"
	    "  --max-connections-per-ip N   slots one address (IPv6: one /64) may hold (default\n"
	    "                          1/16 of the slots, at least 8)\n"
	    "  --timeout SECS          close a kept-alive connection idle this long (default 30)\n"
	    "  --header-timeout SECS   time from a request's first byte to its last header\n"
	    "                          (default 10)\n"
	    "  --request-timeout SECS  time from a request's first byte to its last body byte\n"
	    "                          (default 30)\n"
	    "  --workers N             request handler threads (default: --db-pool)\n"
	    "  --body-memory BYTES     memory for request bodies of all connections together\n"
	    "                          (default: 1/8 of the free memory, 64 MiB to 1 GiB)\n"
	    "  --db-pool N             database connections (default 16)\n"
	    "  --sweep-interval SECS   expiry sweep period (default 60)\n"
	    "  --access-ttl SECS       access token lifetime (default 900)\n"
	    "  --lockout N             failed logins before an account locks (default 5)\n"
	    "  --lockout-secs SECS     lock duration (default 900)\n"
	    "  --login-ip-limit N      failed logins per source address per window (default 20)\n"
	    "  --login-ip-window SECS  that window (default 300)\n"
	    "  --agent-poll SECS       how often agents poll when no push reaches them\n"
	    "                          (default 60)\n"
	    "  --oidc-token-ttl SECS   ID tokens of the OpenID provider (the gateways' login\n"
	    "                          sessions; default 3600; the provider needs --public-url)\n"
	    "  --no-db-listen          PostgreSQL: no LISTEN for other servers' changes (behind\n"
	    "                          PgBouncer in transaction mode); the revision is polled\n"
	    "  --redis URL             redis[s]://[USER:PASSWORD@]HOST[:PORT][/DB][?ca=FILE]:\n"
	    "                          rate limits, challenges, live connection state,\n"
	    "                          temporary access and change notification shared by\n"
	    "                          the servers of a cluster (password also from\n"
	    "                          SG_REDIS_PASSWORD)\n"
	    "  --trusted-proxy CIDR[,CIDR...]   load balancers (HAProxy option forwardfor):\n"
	    "                          from a peer in these ranges the client address is the\n"
	    "                          right-most X-Forwarded-For address not in them (rate\n"
	    "                          limits, lockouts, audit, logs), and their X-Request-Id\n"
	    "                          is kept as the request's id; repeatable\n"
	    "  --proxy-header NAME     x-forwarded-for (default) or forwarded (RFC 7239 for=):\n"
	    "                          the one header the proxies set; the other is ignored\n"
	    "  --port-file FILE        write the bound port there once listening\n"
	    "  --console-dir DIR       the admin console's built files, served at / (default:\n"
	    "                          ../share/secureguard/console beside the binary, when it\n"
	    "                          exists; \"none\": no console)\n"
	    SG_LOG_USAGE
	    "  -v, --verbose           the same as --log-level debug\n"
	    "First start without an admin: SG_ADMIN_EMAIL and SG_ADMIN_PASSWORD name the first\n"
	    "super_admin; without them a one-time password is generated and printed on stderr.\n");
}

static int parse_listen(const char *s, struct sockaddr_storage *ss, char *err, size_t el)
{
	char host[128];
	const char *colon;
	long port;
	char *end;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *e = strchr(s, ']');

		if (!e || e[1] != ':' || (size_t)(e - s - 1) >= sizeof(host))
			goto bad;
		memcpy(host, s + 1, (size_t)(e - s - 1));
		host[e - s - 1] = 0;
		colon = e + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || (size_t)(colon - s) >= sizeof(host))
			goto bad;
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = 0;
	}
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || *end || !colon[1] || port < 0 || port > 65535)
		goto bad;
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		((struct sockaddr_in *)ss)->sin_family = AF_INET;
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
		return 0;
	}
bad:
	snprintf(err, el, "--listen: expected IPv4:PORT or [IPv6]:PORT, got '%s'", s);
	return SG_EINVAL;
}

static char *read_file(const char *path, char *err, size_t el)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	long n;

	if (!f) {
		snprintf(err, el, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || n > (1 << 20) || fseek(f, 0, SEEK_SET)) {
		snprintf(err, el, "%s: unreadable or larger than 1 MiB", path);
		goto out;
	}
	buf = calloc(1, (size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
		snprintf(err, el, "%s: read error", path);
	}
out:
	fclose(f);
	return buf;
}

/* What GET /api/certificates says of the HTTPS certificate: its validity and subject, or why
 * they cannot be read (OpenSSL loads the file itself; an unreadable expiry stops nothing). */
static void cert_info(struct srv *s, const char *path, const char *pem)
{
	struct sg_tls_cert_info ci;

	snprintf(s->tls_cert_path, sizeof(s->tls_cert_path), "%s", path);
	if (sg_tls_cert_pem_info(pem, strlen(pem), &ci, s->tls_cert_err, sizeof(s->tls_cert_err)))
		return;
	s->tls_not_before = ci.not_before;
	s->tls_not_after = ci.not_after;
	snprintf(s->tls_subject, sizeof(s->tls_subject), "%s", ci.subject);
}

struct boot_ctx {
	const char *email, *hash;
	bool created;
};

static int bootstrap_tx(struct srv *s, struct sg_db_conn *c, void *ctx)
{
	struct boot_ctx *x = ctx;
	struct sg_db_res *res = NULL;
	char id[SRV_ID_LEN + 1], now[24];
	const char *p[] = {id, x->email, x->hash, srv_i64(now, srv_now())};
	json_t *d;
	int rc;

	(void)s;
	x->created = false;
	rc = sg_db_query(c, &res, "SELECT COUNT(*) FROM admin_users", 0, NULL);
	if (rc < 0)
		return rc;
	rc = srv_res_i64(res, 0, 0) > 0;
	sg_db_res_free(res);
	if (rc)
		return 0;
	srv_uuid(id);
	rc = sg_db_exec(c,
			"INSERT INTO admin_users (id, email, password_hash, role, enabled, "
			"failed_logins, created_at) VALUES ($1, $2, $3, 'super_admin', 1, 0, $4)",
			4, p);
	if (rc < 0)
		return rc;
	d = json_pack("{s:s,s:s}", "role", "super_admin", "source", "bootstrap");
	rc = srv_audit_system(c, "user.created", "user", id, x->email, "create", d);
	json_decref(d);
	x->created = !rc;
	return rc;
}

static bool has_admin(struct srv *s)
{
	struct sg_db_conn *c = sg_db_acquire(s->db);
	struct sg_db_res *res = NULL;
	bool any = true;

	if (sg_db_query(c, &res, "SELECT COUNT(*) FROM admin_users", 0, NULL) == 1)
		any = srv_res_i64(res, 0, 0) > 0;
	sg_db_res_free(res);
	sg_db_release(c);
	return any;
}

static int bootstrap(struct srv *s, char *err, size_t el)
{
	const char *email = getenv("SG_ADMIN_EMAIL"), *pw = getenv("SG_ADMIN_PASSWORD");
	char gen[64] = "";
	struct boot_ctx x = {0};
	struct sg_db_conn *c;
	char *hash, *folded;
	int rc;

	if (has_admin(s))
		return 0;
	if (!email || !*email)
		email = "admin@localhost";
	if (strlen(email) > 254 || !strchr(email, '@') || !srv_valid_text(email, 254, false)) {
		snprintf(err, el, "SG_ADMIN_EMAIL is not an e-mail address");
		return SG_EINVAL;
	}
	if (pw && *pw && strlen(pw) < 12) {
		snprintf(err, el, "SG_ADMIN_PASSWORD must be at least 12 characters");
		return SG_EINVAL;
	}
	if (!pw || !*pw) {
		uint8_t b[18];

		if (!sg_random_bytes(b, sizeof(b))) {
			snprintf(err, el, "no randomness");
			return SG_ECRYPTO;
		}
		srv_b64url(gen, b, sizeof(b));
		sg_memzero(b, sizeof(b));
		pw = gen;
	}
	/* The first password follows settings.fips_required, which defaults to on. */
	c = sg_db_acquire(s->db);
	{
		struct sg_db_res *res = NULL;
		bool fips = true;

		if (sg_db_query(c, &res, "SELECT fips_required FROM settings WHERE id = 1", 0,
				NULL) == 1)
			fips = srv_res_i64(res, 0, 0) != 0;
		sg_db_res_free(res);
		hash = srv_pw_hash(pw, fips);
	}
	if (!hash) {
		sg_db_release(c);
		snprintf(err, el, "password hashing failed");
		return SG_ECRYPTO;
	}
	/* Stored case-folded, as every e-mail address the API takes (schema migration 7). */
	folded = srv_text_fold(email);
	if (!folded) {
		free(hash);
		sg_db_release(c);
		snprintf(err, el, "out of memory");
		return SG_ENOMEM;
	}
	x.email = folded;
	x.hash = hash;
	rc = srv_tx(s, c, bootstrap_tx, &x, false);
	sg_db_release(c);
	free(hash);
	if (rc == SG_EEXIST)
		rc = 0; /* another server of the cluster made the first admin */
	if (rc) {
		snprintf(err, el, "creating the first admin failed: %s", sg_strerror(rc));
	} else if (x.created) {
		if (gen[0])
			/* Shown once: the only copy is the hash in the database. */
			fprintf(stderr,
				"secureguard server: created super_admin %s with one-time "
				"password: %s\n(change it after the first login: PUT "
				"/api/users/{id})\n",
				folded, gen);
		else
			fprintf(stderr,
				"secureguard server: created super_admin %s from "
				"SG_ADMIN_EMAIL/SG_ADMIN_PASSWORD\n",
				folded);
	}
	free(folded);
	sg_memzero(gen, sizeof(gen));
	return rc;
}

/* No space, control character or character RFC 3986 never allows unencoded: the URL is copied
 * into links and QR codes as is. */
static bool url_chars_ok(const char *u)
{
	for (const unsigned char *p = (const unsigned char *)u; *p; p++) {
		if (*p <= 0x20 || *p >= 0x7f || strchr("\"<>\\^`{|}", *p))
			return false;
	}
	return true;
}

static bool int_opt(const char *name, const char *v, long lo, long hi, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(v, &end, 10);
	if (errno || *end || !*v || *out < lo || *out > hi) {
		fprintf(stderr, "secureguard server: %s must be an integer from %ld to %ld\n", name,
			lo, hi);
		return false;
	}
	return true;
}

enum {
	O_LISTEN = 256,
	O_DB,
	O_DATA,
	O_KEY,
	O_KEYURI,
	O_LICENSE,
	O_CERT,
	O_TLSKEY,
	O_PUBURL,
	O_BODY,
	O_CONNS,
	O_TIMEOUT,
	O_REQTIMEOUT,
	O_HDRTIMEOUT,
	O_WORKERS,
	O_BODYMEM,
	O_PERIP,
	O_POOL,
	O_SWEEP,
	O_ACCESS,
	O_LOCK,
	O_LOCKSECS,
	O_IPLIM,
	O_IPWIN,
	O_PORTFILE,
	O_AGENTPOLL,
	O_OIDCTTL,
	O_NOLISTEN,
	O_CONSOLE,
	O_REDIS,
	O_TPROXY,
	O_PHEADER,
};

/* Logs the audit chain's head when it moved since the last call: lines shipped off this host
 * are the anchors that `secureguard audit verify --anchor ID:HASH` checks a rewritten table
 * against (docs/AUDIT.md, "Threat model"). */
/* The planner's statistics (sg_db_analyze): all at start, then as the tables grow. */
static void analyze(struct srv *s, bool all)
{
	int rc = sg_db_analyze(s->db, all);

	if (rc < 0)
		srv_log(SG_LOG_WARN, "db_analyze_failed", "error=%s", sg_strerror(rc));
}

static void log_anchor(struct srv *s, int64_t *last)
{
	struct sg_db_conn *c = sg_db_acquire(s->db);
	char hash[SG_AUDIT_HASH_HEX_LEN + 1];
	int64_t id;
	int rc = sg_audit_head(c, &id, hash);

	if (rc < 0) {
		char q[256];

		srv_log(SG_LOG_ERROR, "audit_anchor_failed", "err=%s msg=%s", sg_err_name(rc),
			sg_log_quote(q, sizeof(q), sg_db_errmsg(c)));
	} else if (id != *last) {
		*last = id;
		if (id > 0)
			srv_log(SG_LOG_INFO, "audit_anchor", "id=%lld hash=%s", (long long)id,
				hash);
	}
	sg_db_release(c);
}

/* The admin console's directory: dir as given ("none": no console), else the installed or
 * built one beside the binary (PREFIX/bin/../share/secureguard/console, or the build tree's
 * bin/../share/...), when it holds an index.html. */
static bool console_find(struct srv *s, const char *dir, char *err, size_t errlen)
{
	char exe[PATH_MAX], path[PATH_MAX];
	ssize_t n;

	if (dir && !strcmp(dir, "none"))
		return true;
	if (dir) {
		if (!realpath(dir, path) ||
		    snprintf(exe, sizeof(exe), "%s/index.html", path) >= (int)sizeof(exe) ||
		    access(exe, R_OK)) {
			snprintf(err, errlen, "--console-dir %s: no index.html there", dir);
			return false;
		}
	} else {
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n <= 0)
			return true;
		exe[n] = 0;
		if (strrchr(exe, '/'))
			*strrchr(exe, '/') = 0;
		if (snprintf(path, sizeof(path), "%s/../share/secureguard/console/index.html", exe) >=
			(int)sizeof(path) ||
		    access(path, R_OK) || !realpath(path, exe))
			return true;
		*strrchr(exe, '/') = 0;
		snprintf(path, sizeof(path), "%s", exe);
	}
	if (strlen(path) >= sizeof(s->console_dir)) {
		snprintf(err, errlen, "the console's directory path is too long");
		return false;
	}
	memcpy(s->console_dir, path, strlen(path) + 1);
	return true;
}

static int server_run(int argc, char **argv);

static pthread_t main_thread;

/* The --redis URL for the log: scheme, host, port and database, never the user info. */
static const char *redis_url_safe(const char *url)
{
	static char buf[320];
	const char *p = strstr(url, "://"), *at, *end;

	if (!p)
		return "?";
	p += 3;
	end = p + strcspn(p, "/?");
	at = memchr(p, '@', (size_t)(end - p));
	while (at && memchr(at + 1, '@', (size_t)(end - at - 1)))
		at = memchr(at + 1, '@', (size_t)(end - at - 1));
	snprintf(buf, sizeof(buf), "%.*s%s", (int)(p - url), url, at ? at + 1 : p);
	buf[strcspn(buf, "?")] = 0;
	return buf;
}

/* Called by the change listener's thread: the main loop looks at the revision now. */
static void nudge_main(void *arg)
{
	(void)arg;
	pthread_kill(main_thread, SIGUSR2);
}

/* `secureguard server seal-key --key-file F --key-uri URI` (docs/SERVER.md, "Master key in an
 * HSM"): an existing installation's plain master key, sealed by a token key in place. */
static int seal_key_cmd(int argc, char **argv)
{
	const char *file = NULL, *uri = NULL;
	char err[512];

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--key-file"))
			file = argv[i + 1];
		else if (!strcmp(argv[i], "--key-uri"))
			uri = argv[i + 1];
		else
			file = uri = NULL, i = argc;
	}
	if (!file || !uri || argc != 5) {
		fprintf(stderr, "Usage: secureguard server seal-key --key-file FILE --key-uri "
				"'pkcs11:...'\n(the PIN from SECUREGUARD_PKCS11_PIN or "
				"SECUREGUARD_PKCS11_PIN_FILE; stop the server first)\n");
		return 2;
	}
	if (srv_keys_seal(file, uri, err, sizeof(err))) {
		fprintf(stderr, "secureguard server seal-key: %s\n", err);
		return 1;
	}
	printf("%s: the master key is now sealed by %.*s; start the server with --key-uri\n", file,
	       (int)strcspn(uri, "?"), uri);
	return fflush(stdout) ? 1 : 0;
}

int sg_server_cmd(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "seal-key"))
		return seal_key_cmd(argc - 1, argv + 1);
	if (argc >= 2 && (!strcmp(argv[1], "backup") || !strcmp(argv[1], "restore") ||
			  !strcmp(argv[1], "migrate-store")))
		return srv_store_cmd(argc - 1, argv + 1);
	return server_run(argc, argv);
}

static int server_run(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"listen", required_argument, NULL, O_LISTEN},
	    {"db", required_argument, NULL, O_DB},
	    {"data-dir", required_argument, NULL, O_DATA},
	    {"key-file", required_argument, NULL, O_KEY},
	    {"key-uri", required_argument, NULL, O_KEYURI},
	    {"license", required_argument, NULL, O_LICENSE},
	    {"tls-cert", required_argument, NULL, O_CERT},
	    {"tls-key", required_argument, NULL, O_TLSKEY},
	    {"public-url", required_argument, NULL, O_PUBURL},
	    {"max-body", required_argument, NULL, O_BODY},
	    {"max-connections", required_argument, NULL, O_CONNS},
	    {"timeout", required_argument, NULL, O_TIMEOUT},
	    {"request-timeout", required_argument, NULL, O_REQTIMEOUT},
	    {"header-timeout", required_argument, NULL, O_HDRTIMEOUT},
	    {"workers", required_argument, NULL, O_WORKERS},
	    {"body-memory", required_argument, NULL, O_BODYMEM},
	    {"max-connections-per-ip", required_argument, NULL, O_PERIP},
	    {"db-pool", required_argument, NULL, O_POOL},
	    {"sweep-interval", required_argument, NULL, O_SWEEP},
	    {"access-ttl", required_argument, NULL, O_ACCESS},
	    {"lockout", required_argument, NULL, O_LOCK},
	    {"lockout-secs", required_argument, NULL, O_LOCKSECS},
	    {"login-ip-limit", required_argument, NULL, O_IPLIM},
	    {"login-ip-window", required_argument, NULL, O_IPWIN},
	    {"port-file", required_argument, NULL, O_PORTFILE},
	    {"agent-poll", required_argument, NULL, O_AGENTPOLL},
	    {"no-db-listen", no_argument, NULL, O_NOLISTEN},
	    {"oidc-token-ttl", required_argument, NULL, O_OIDCTTL},
	    {"console-dir", required_argument, NULL, O_CONSOLE},
	    {"redis", required_argument, NULL, O_REDIS},
	    {"trusted-proxy", required_argument, NULL, O_TPROXY},
	    {"proxy-header", required_argument, NULL, O_PHEADER},
	    SG_LOG_LONGOPTS,
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *listen = "127.0.0.1:8080", *db_url = NULL, *data_dir = "/var/lib/secureguard";
	const char *key_file = NULL, *cert_file = NULL, *tlskey_file = NULL, *port_file = NULL;
	const char *console_dir = NULL, *key_uri = NULL, *license_file = NULL;
	const char *redis_url = NULL;
	struct srv_redis *redis = NULL;
	char *cert = NULL, *tlskey = NULL, dbbuf[PATH_MAX + 16], keybuf[PATH_MAX], err[512] = "";
	long v, pool = 16, conns = 0, timeout = 30, sweep = 60, req_timeout = 30, per_ip = 0;
	long hdr_timeout = 10, workers = 0, body_mem = 0;
	int64_t anchor_id = -1;
	long since_sweep = 0, since_license = 0, ticks = 0;
	int64_t sync_rev;
	struct sg_db_listener *listener = NULL;
	bool no_listen = false;
	struct sockaddr_storage ss;
	struct srv *s = NULL;
	struct srv_httpd *d = NULL;
	sigset_t set;
	struct sg_logopt logopt;
	int ret = 1, opt;

	s = calloc(1, sizeof(*s));
	if (!s)
		return 1;
	s->access_ttl = 900;
	s->refresh_ttl = 30 * 86400;
	s->session_ttl = 3600;
	s->lockout_after = 5;
	s->lockout_secs = 900;
	s->ip_fail_limit = 20;
	s->ip_fail_window = 300;
	s->max_body = 1 << 20;
	s->agent_poll = 60;
	s->oidc_ttl = 3600;
	sg_logopt_init(&logopt);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (opt) {
		case O_LISTEN:
			listen = optarg;
			break;
		case O_DB:
			db_url = optarg;
			break;
		case O_DATA:
			data_dir = optarg;
			break;
		case O_KEY:
			key_file = optarg;
			break;
		case O_KEYURI:
			key_uri = optarg;
			break;
		case O_LICENSE:
			license_file = optarg;
			break;
		case O_CERT:
			cert_file = optarg;
			break;
		case O_TLSKEY:
			tlskey_file = optarg;
			break;
		case O_PUBURL:
			if (strlen(optarg) >= sizeof(s->base_url) ||
			    (strncmp(optarg, "http://", 7) && strncmp(optarg, "https://", 8)) ||
			    !url_chars_ok(optarg)) {
				fprintf(stderr,
					"secureguard server: --public-url must be an http(s) "
					"URL shorter than 256 characters, without spaces, "
					"control characters or any of \"<>\\^`{|}\n");
				goto usage;
			}
			snprintf(s->base_url, sizeof(s->base_url), "%s", optarg);
			if (s->base_url[strlen(s->base_url) - 1] == '/')
				s->base_url[strlen(s->base_url) - 1] = 0;
			break;
		case O_BODY:
			if (!int_opt("--max-body", optarg, 1024, 64 << 20, &v))
				goto usage;
			s->max_body = (size_t)v;
			break;
		case O_CONNS:
			if (!int_opt("--max-connections", optarg, 4, 65536, &conns))
				goto usage;
			break;
		case O_TIMEOUT:
			if (!int_opt("--timeout", optarg, 1, 3600, &timeout))
				goto usage;
			break;
		case O_REQTIMEOUT:
			if (!int_opt("--request-timeout", optarg, 1, 3600, &req_timeout))
				goto usage;
			break;
		case O_PERIP:
			if (!int_opt("--max-connections-per-ip", optarg, 1, 65536, &per_ip))
				goto usage;
			break;
		case O_HDRTIMEOUT:
			if (!int_opt("--header-timeout", optarg, 1, 3600, &hdr_timeout))
				goto usage;
			break;
		case O_BODYMEM:
			if (!int_opt("--body-memory", optarg, 1L << 20, 64L << 30, &body_mem))
				goto usage;
			break;
		case O_WORKERS:
			if (!int_opt("--workers", optarg, 1, 256, &workers))
				goto usage;
			break;
		case O_POOL:
			if (!int_opt("--db-pool", optarg, 1, 64, &pool))
				goto usage;
			break;
		case O_SWEEP:
			if (!int_opt("--sweep-interval", optarg, 1, 86400, &sweep))
				goto usage;
			break;
		case O_ACCESS:
			if (!int_opt("--access-ttl", optarg, 10, 86400, &v))
				goto usage;
			s->access_ttl = (int)v;
			break;
		case O_LOCK:
			if (!int_opt("--lockout", optarg, 1, 1000, &v))
				goto usage;
			s->lockout_after = (int)v;
			break;
		case O_LOCKSECS:
			if (!int_opt("--lockout-secs", optarg, 1, 86400 * 30, &v))
				goto usage;
			s->lockout_secs = (int)v;
			break;
		case O_IPLIM:
			if (!int_opt("--login-ip-limit", optarg, 1, 100000, &v))
				goto usage;
			s->ip_fail_limit = (int)v;
			break;
		case O_IPWIN:
			if (!int_opt("--login-ip-window", optarg, 1, 86400, &v))
				goto usage;
			s->ip_fail_window = (int)v;
			break;
		case O_PORTFILE:
			port_file = optarg;
			break;
		case O_NOLISTEN:
			no_listen = true;
			break;
		case O_AGENTPOLL:
			if (!int_opt("--agent-poll", optarg, 1, 3600, &v))
				goto usage;
			s->agent_poll = (int)v;
			break;
		case O_OIDCTTL:
			if (!int_opt("--oidc-token-ttl", optarg, 60, 86400, &v))
				goto usage;
			s->oidc_ttl = (int)v;
			break;
		case O_CONSOLE:
			console_dir = optarg;
			break;
		case O_REDIS:
			redis_url = optarg;
			break;
		case O_TPROXY:
			if (srv_proxies_parse(&s->proxies, optarg, err, sizeof(err))) {
				fprintf(stderr, "secureguard server: %s\n", err);
				goto usage;
			}
			break;
		case O_PHEADER:
			if (strcasecmp(optarg, "x-forwarded-for") && strcasecmp(optarg, "forwarded")) {
				fprintf(stderr, "secureguard server: --proxy-header: \"%s\" is neither "
						"x-forwarded-for nor forwarded\n", optarg);
				goto usage;
			}
			s->proxies.forwarded = !strcasecmp(optarg, "forwarded");
			break;
		case 'v':
			logopt.level = SG_LOG_DEBUG;
			break;
		case 'h':
			usage(stdout);
			ret = 0;
			goto out;
		default:
			if (sg_logopt_parse(&logopt, opt, optarg, "secureguard server") != 1)
				goto usage;
			break;
		}
	}
	if (optind != argc || !cert_file != !tlskey_file) {
		if (!cert_file != !tlskey_file)
			fprintf(stderr,
				"secureguard server: --tls-cert and --tls-key go together\n");
		goto usage;
	}
	if (sg_logopt_apply(&logopt, "secureguard-server", err, sizeof(err)))
		goto fail;
	if (parse_listen(listen, &ss, err, sizeof(err)))
		goto fail;
	if (!console_find(s, console_dir, err, sizeof(err)))
		goto fail;
	snprintf(s->listen, sizeof(s->listen), "%s", listen);
	if (sg_crypto_init()) {
		snprintf(err, sizeof(err), "the crypto library does not initialise");
		goto fail;
	}
	if (mkdir(data_dir, 0700) && errno != EEXIST) {
		snprintf(err, sizeof(err), "%s: %s", data_dir, strerror(errno));
		goto fail;
	}
	/* A license that does not verify stops the start: running on as the free edition would
	 * hide a typo or a damaged file until clients are refused. */
	if (license_file && srv_license_load(license_file, &s->license, err, sizeof(err)))
		goto fail;
	s->has_license = license_file != NULL;
	if (!key_file) {
		snprintf(keybuf, sizeof(keybuf), "%s/master.key", data_dir);
		key_file = keybuf;
	}
	if (srv_keys_load(s, key_file, key_uri, err, sizeof(err)))
		goto fail;
	{
		struct stat kst;

		if (!stat(key_file, &kst))
			s->master_key_mtime = (int64_t)kst.st_mtime;
	}
	if (!db_url) {
		snprintf(dbbuf, sizeof(dbbuf), "sqlite:%s/server.db", data_dir);
		db_url = dbbuf;
	}
	if (cert_file) {
		/* Read now so a missing file is named before anything starts (OpenSSL reads them
		 * again when the listener starts). */
		cert = read_file(cert_file, err, sizeof(err));
		tlskey = cert ? read_file(tlskey_file, err, sizeof(err)) : NULL;
		if (!tlskey)
			goto fail;
		s->tls = true;
		cert_info(s, cert_file, cert);
	}
	if (sg_db_open(&s->db, db_url, (int)pool, err, sizeof(err)))
		goto fail;
	if (bootstrap(s, err, sizeof(err)))
		goto fail;
	analyze(s, true);
	/* Redis is checked at start like the database: a wrong address, password or CA is
	 * named now, and a Redis away makes the supervisor start us again. */
	if (redis_url) {
		if (srv_redis_open(&redis, redis_url, err, sizeof(err)))
			goto fail;
		srv_live_set(redis);
		srv_log(SG_LOG_INFO, "redis_connected", "url=%s", redis_url_safe(redis_url));
	}
	/* Signals are taken synchronously by this thread; every other thread (the HTTP front's)
	 * inherits the mask and never sees them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR2); /* the change listener's nudge (nudge_main) */
	sigaddset(&set, SIGHUP);  /* reopen the log file (logrotate) */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	{
		struct srv_httpd_opts ho = {
		    .addr = (const struct sockaddr *)&ss,
		    .tls_cert_file = cert_file,
		    .tls_key_file = tlskey_file,
		    .max_connections = (int)conns,
		    .max_per_ip = (int)per_ip,
		    .idle_timeout = (int)timeout,
		    .header_timeout = (int)hdr_timeout,
		    .request_timeout = (int)req_timeout,
		    .workers = (int)(workers ? workers : pool),
		    .body_memory = (size_t)body_mem,
		};

		/* Logins waiting for password hashing hold a worker each: a quarter of the
		 * workers at most, so a brute force leaves the rest to every other request. */
		srv_pw_limit_waiting(SG_MAX(ho.workers / 4, 2));
		if (srv_httpd_start(&d, s, &ho, err, sizeof(err)))
			d = NULL;
		else
			srv_http_set_front(d);
	}
	if (!d)
		goto fail;
	if (port_file) {
		FILE *f = fopen(port_file, "we");

		if (!f || fprintf(f, "%u\n", srv_httpd_port(d)) < 0 || fclose(f)) {
			snprintf(err, sizeof(err), "%s: cannot write", port_file);
			goto fail;
		}
	}
	srv_log(SG_LOG_INFO, "server_started", "listen=%s port=%u db=%s tls=%s console=%s", listen,
		srv_httpd_port(d), sg_db_engine(s->db) == SG_DB_POSTGRES ? "postgresql" : "sqlite",
		s->tls ? "yes" : "no", s->console_dir[0] ? s->console_dir : "none");
	log_anchor(s, &anchor_id);
	srv_license_log(s, true);
	/* A tick of a quarter second: agents' long polls wake when what they depend on moved
	 * (here or on another server of the cluster); the sweep and an audit anchor every
	 * --sweep-interval seconds. On PostgreSQL a listener (LISTEN sg_sync, schema migration
	 * 10) nudges this thread the moment another server commits a change, and the revision is
	 * then only polled every 5 s as a safety net while the listener is up. */
	main_thread = pthread_self();
	/* With --redis the change channel is Redis's (sg:sync, published after each write,
	 * live.c); PostgreSQL's LISTEN otherwise. */
	if (redis) {
		if (srv_redis_subscribe(redis, "sg:sync", nudge_main, NULL) < 0)
			srv_log(SG_LOG_WARN, "listen_failed", "%s",
				"no change notification: polling the revision only");
	} else if (sg_db_engine(s->db) == SG_DB_POSTGRES && !no_listen &&
		   sg_db_listen(s->db, "sg_sync", nudge_main, NULL, &listener) < 0) {
		srv_log(SG_LOG_WARN, "listen_failed", "%s",
			"no change notification: polling the revision only");
	}
	sync_rev = srv_sync_revision(s);
	for (;;) {
		struct timespec ts = {0, 250000000};
		int sig = sigtimedwait(&set, NULL, &ts);
		bool tick = sig < 0 && errno == EAGAIN; /* read before anything changes errno */
		int64_t rev;

		if (sig == SIGTERM || sig == SIGINT) {
			srv_log(SG_LOG_INFO, "server_stopping", "signal=%s",
				sig == SIGTERM ? "SIGTERM" : "SIGINT");
			break;
		}
		if (sig == SIGHUP) {
			sg_log_reopen_request();
			srv_log(SG_LOG_INFO, "log_reopened", "signal=SIGHUP");
		}
		/* The audit log grew while a console listens (GET /api/events): wake it. */
		if (tick && srv_console_tick(s))
			srv_httpd_wake(d);
		if (sig == SIGUSR2 ||
		    (tick && (!(redis ? srv_redis_subscribed(redis) : sg_db_listening(listener)) ||
			      ticks % 20 == 0))) {
			rev = srv_sync_revision(s);
			if (rev >= 0 && rev != sync_rev) {
				sync_rev = rev;
				srv_httpd_wake(d);
			}
		}
		if (tick) {
			if (++ticks % 4)
				continue;
			/* Every second: VPN sessions whose time is up end, so their peers leave
			 * the hubs within about a second (routes_vpn.c). Not a request: the change
			 * is announced here (Redis; PostgreSQL's trigger notifies by itself) and
			 * this server's own polls woken at once. */
			if (srv_vpn_expire(s) > 0) {
				srv_live_publish();
				rev = srv_sync_revision(s);
				if (rev >= 0 && rev != sync_rev) {
					sync_rev = rev;
					srv_httpd_wake(d);
				}
			}
			if (++since_license >= 3600) { /* license warnings: once an hour */
				since_license = 0;
				srv_license_log(s, false);
			}
			if (++since_sweep >= sweep) {
				since_sweep = 0;
				srv_sweep(s);
				analyze(s, false);
				log_anchor(s, &anchor_id);
			}
		}
	}
	sg_db_listen_stop(listener);
	listener = NULL;
	/* Stops accepting, lets requests in flight finish (10 s at most), joins every thread. */
	srv_http_set_front(NULL);
	srv_httpd_stop(d, 10);
	d = NULL;
	log_anchor(s, &anchor_id);
	srv_log(SG_LOG_INFO, "server_stopped", "%s", "");
	ret = 0;
	goto out;
usage:
	usage(stderr);
	ret = 2;
	goto out;
fail:
	fprintf(stderr, "secureguard server: %s\n", err);
	ret = 1;
out:
	if (d) {
		srv_http_set_front(NULL);
		srv_httpd_stop(d, 0);
	}
	srv_live_set(NULL);
	srv_redis_close(redis);
	if (s) {
		sg_db_close(s->db);
		sg_memzero(s, sizeof(*s));
		free(s);
	}
	if (tlskey) {
		sg_memzero(tlskey, strlen(tlskey));
		free(tlskey);
	}
	free(cert);
	return ret;
}

int sg_openapi_cmd(int argc, char **argv)
{
	char *t;
	int rc;

	if (argc != 1) {
		fprintf(stderr, "Usage: secureguard openapi > openapi.json\n");
		(void)argv;
		return 2;
	}
	t = api_openapi_text();
	if (!t) {
		fprintf(stderr, "secureguard openapi: out of memory\n");
		return 1;
	}
	rc = fputs(t, stdout) < 0 || fflush(stdout) ? 1 : 0;
	free(t);
	return rc;
}
