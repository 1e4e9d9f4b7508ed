/* Test tool for tests/integration/test_vici.sh: proves the VICI module (src/vici) against
 * strongSwan's own programs. Not installed.
 *
 *   vici_probe client URI   drive a real charon: version, load-conn (nested sections and lists),
 *                           list-conns (streamed list-conn events), get-conns, load-shared,
 *                           unload-conn, stats, an unknown command and an unknown event
 *   vici_probe serve URI    serve version, list-conns (one streamed event) and get-conns on the
 *                           project's event loop until SIGTERM, for strongSwan's swanctl
 *   vici_probe loadconf URI FILE   parse a swanctl.conf with src/vici/swanctl_conf.c and send
 *                           its load-conn / load-shared messages (what swanctl --load-all sends)
 *   vici_probe events URI SECONDS EVENT...   register for the events and print each one that
 *                           arrives within SECONDS as one line: "EVENT path=value ..." with the
 *                           dotted path of every key and list (tests compare layouts with these)
 *
 * Prints one line per check and exits 0 only if all passed.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <secureguard/sg_errors.h>

#include "vici/swanctl_conf.h"
#include "vici/vici.h"
#include "vici/vici_client.h"
#include "vici/vici_server.h"

static int failures;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (cond) {                                                                        \
			printf("ok   ");                                                           \
		} else {                                                                           \
			printf("FAIL ");                                                           \
			failures++;                                                                \
		}                                                                                  \
		printf(__VA_ARGS__);                                                               \
		printf("\n");                                                                      \
	} while (0)

struct seen {
	int events;
	bool conn_ok;
};

static void on_list_conn(void *ctx, const char *event, const struct vici_node *msg)
{
	struct seen *s = ctx;
	s->events++;
	if (strcmp(event, "list-conn") != 0)
		return;
	const struct vici_node *ts = vici_find(msg, "probe.children.net.local-ts");
	const char *ver = vici_get_str(msg, "probe.version");
	const char *mode = vici_get_str(msg, "probe.children.net.mode");
	if (ts && ts->type == VICI_NODE_LIST && ts->child &&
	    strcmp((const char *)ts->child->value, "10.1.0.0/16") == 0 && ver &&
	    strcmp(ver, "IKEv2") == 0 && mode && strcmp(mode, "TUNNEL") == 0)
		s->conn_ok = true;
}

static bool success(struct vici_msg *m)
{
	const char *s = m ? vici_get_str(vici_msg_root(m), "success") : NULL;
	return s && strcmp(s, "yes") == 0;
}

static int client(const char *uri)
{
	struct vici_client *c;
	struct vici_msg *resp = NULL;
	const char *why = NULL;
	int err = vici_client_connect(uri, 5000, &c, &why);
	if (err) {
		printf("FAIL connect %s: %s\n", uri, why);
		return 1;
	}
	err = vici_client_request(c, "version", NULL, NULL, NULL, &resp, &why);
	const char *d = resp ? vici_get_str(vici_msg_root(resp), "daemon") : NULL;
	CHECK(!err && d && strcmp(d, "charon") == 0, "version: daemon=%s version=%s", d ? d : "?",
	      resp ? vici_get_str(vici_msg_root(resp), "version") : "?");
	vici_msg_free(resp);

	struct vici_builder b;
	vici_builder_init(&b);
	vici_add_section_start(&b, "probe");
	vici_add_kv_str(&b, "version", "2");
	vici_add_list_start(&b, "local_addrs");
	vici_add_list_item_str(&b, "192.0.2.1");
	vici_add_list_end(&b);
	vici_add_list_start(&b, "remote_addrs");
	vici_add_list_item_str(&b, "192.0.2.2");
	vici_add_list_end(&b);
	vici_add_list_start(&b, "proposals");
	vici_add_list_item_str(&b, "aes256gcm16-prfsha384-ecp384");
	vici_add_list_end(&b);
	vici_add_section_start(&b, "local-1");
	vici_add_kv_str(&b, "auth", "psk");
	vici_add_kv_str(&b, "id", "a@example.net");
	vici_add_section_end(&b);
	vici_add_section_start(&b, "remote-1");
	vici_add_kv_str(&b, "auth", "psk");
	vici_add_kv_str(&b, "id", "b@example.net");
	vici_add_section_end(&b);
	vici_add_section_start(&b, "children");
	vici_add_section_start(&b, "net");
	vici_add_list_start(&b, "local_ts");
	vici_add_list_item_str(&b, "10.1.0.0/16");
	vici_add_list_end(&b);
	vici_add_list_start(&b, "remote_ts");
	vici_add_list_item_str(&b, "10.2.0.0/16");
	vici_add_list_end(&b);
	vici_add_list_start(&b, "esp_proposals");
	vici_add_list_item_str(&b, "aes256gcm16");
	vici_add_list_end(&b);
	vici_add_section_end(&b);
	vici_add_section_end(&b);
	vici_add_section_end(&b);
	err = vici_client_request(c, "load-conn", &b, NULL, NULL, &resp, &why);
	vici_builder_free(&b);
	CHECK(!err && success(resp), "load-conn: %s",
	      err	      ? why
	      : success(resp) ? "success"
			      : vici_get_str(vici_msg_root(resp), "errmsg"));
	vici_msg_free(resp);

	err = vici_client_register(c, "list-conn", true, &why);
	CHECK(!err, "register list-conn%s%s", err ? ": " : "", err ? why : "");
	struct seen seen = {0};
	err = vici_client_request(c, "list-conns", NULL, on_list_conn, &seen, &resp, &why);
	CHECK(!err && seen.events == 1 && seen.conn_ok,
	      "list-conns: %d streamed event(s), the loaded connection %s", seen.events,
	      seen.conn_ok ? "as loaded" : "missing or different");
	vici_msg_free(resp);

	err = vici_client_request(c, "get-conns", NULL, NULL, NULL, &resp, &why);
	const struct vici_node *conns = resp ? vici_find(vici_msg_root(resp), "conns") : NULL;
	CHECK(!err && conns && conns->type == VICI_NODE_LIST && vici_node_count(conns) == 1 &&
		  strcmp((const char *)conns->child->value, "probe") == 0,
	      "get-conns: [probe]");
	vici_msg_free(resp);

	vici_builder_init(&b);
	vici_add_kv_str(&b, "type", "IKE");
	vici_add_kv(&b, "data", "not-a-real-secret", 17);
	vici_add_list_start(&b, "owners");
	vici_add_list_item_str(&b, "a@example.net");
	vici_add_list_end(&b);
	err = vici_client_request(c, "load-shared", &b, NULL, NULL, &resp, &why);
	vici_builder_free(&b);
	CHECK(!err && success(resp), "load-shared");
	vici_msg_free(resp);

	vici_builder_init(&b);
	vici_add_kv_str(&b, "name", "probe");
	err = vici_client_request(c, "unload-conn", &b, NULL, NULL, &resp, &why);
	vici_builder_free(&b);
	CHECK(!err && success(resp), "unload-conn");
	vici_msg_free(resp);
	err = vici_client_request(c, "get-conns", NULL, NULL, NULL, &resp, &why);
	conns = resp ? vici_find(vici_msg_root(resp), "conns") : NULL;
	CHECK(!err && conns && vici_node_count(conns) == 0, "get-conns after unload: []");
	vici_msg_free(resp);

	err = vici_client_request(c, "stats", NULL, NULL, NULL, &resp, &why);
	CHECK(!err && resp && vici_get_str(vici_msg_root(resp), "uptime.running"),
	      "stats: uptime %s", resp ? vici_get_str(vici_msg_root(resp), "uptime.running") : "?");
	vici_msg_free(resp);

	err = vici_client_request(c, "no-such-command", NULL, NULL, NULL, &resp, &why);
	CHECK(err == SG_ENOENT, "unknown command answered with CMD_UNKNOWN");
	err = vici_client_register(c, "no-such-event", true, &why);
	CHECK(err == SG_ENOENT, "unknown event answered with EVENT_UNKNOWN");
	/* The connection is still usable after both. */
	err = vici_client_request(c, "version", NULL, NULL, NULL, &resp, &why);
	CHECK(!err, "version again");
	vici_msg_free(resp);
	vici_client_free(c);
	return failures ? 1 : 0;
}

/* ---- serve ---------------------------------------------------------------------------------*/

static volatile sig_atomic_t stop;
static struct vici_server *srv;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static bool event_known(void *ctx, const char *event)
{
	(void)ctx;
	return strcmp(event, "list-conn") == 0;
}

static int command(void *ctx, uint64_t conn, const char *cmd, const struct vici_node *req,
		   struct vici_builder *resp)
{
	(void)ctx;
	(void)req;
	printf("request %s\n", cmd);
	fflush(stdout);
	if (strcmp(cmd, "version") == 0) {
		vici_add_kv_str(resp, "daemon", "vici-probe");
		vici_add_kv_str(resp, "version", "0.1");
		vici_add_kv_str(resp, "sysname", "Linux");
		vici_add_kv_str(resp, "release", "test");
		vici_add_kv_str(resp, "machine", "x86_64");
		return 0;
	}
	if (strcmp(cmd, "list-conns") == 0) {
		struct vici_builder ev;
		vici_builder_init(&ev);
		vici_add_section_start(&ev, "served");
		vici_add_list_start(&ev, "local_addrs");
		vici_add_list_item_str(&ev, "192.0.2.1");
		vici_add_list_end(&ev);
		vici_add_list_start(&ev, "remote_addrs");
		vici_add_list_item_str(&ev, "192.0.2.2");
		vici_add_list_end(&ev);
		vici_add_kv_str(&ev, "version", "IKEv2");
		vici_add_section_start(&ev, "children");
		vici_add_section_start(&ev, "tunnel");
		vici_add_kv_str(&ev, "mode", "TUNNEL");
		vici_add_list_start(&ev, "local-ts");
		vici_add_list_item_str(&ev, "10.7.0.0/16");
		vici_add_list_end(&ev);
		vici_add_list_start(&ev, "remote-ts");
		vici_add_list_item_str(&ev, "10.8.0.0/16");
		vici_add_list_end(&ev);
		vici_add_section_end(&ev);
		vici_add_section_end(&ev);
		vici_add_section_end(&ev);
		vici_server_event(srv, conn, "list-conn", &ev);
		vici_builder_free(&ev);
		return 0;
	}
	if (strcmp(cmd, "get-conns") == 0) {
		vici_add_list_start(resp, "conns");
		vici_add_list_item_str(resp, "served");
		vici_add_list_end(resp);
		return 0;
	}
	return SG_ENOENT;
}

static int serve(const char *uri)
{
	struct evloop *loop;
	const char *why = NULL;
	struct vici_server_ops ops = {.command = command, .event_known = event_known};
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (evloop_new(&loop) != 0)
		return 1;
	int err = vici_server_new(loop, uri, &ops, &srv, &why);
	if (err) {
		fprintf(stderr, "vici_server_new %s: %s\n", uri, why);
		evloop_free(loop);
		return 1;
	}
	printf("listening %s\n", uri);
	fflush(stdout);
	while (!stop)
		if (evloop_run_once(loop, 200) < 0)
			break;
	vici_server_free(srv);
	evloop_free(loop);
	return 0;
}

static int loadconf(const char *uri, const char *file)
{
	struct swanctl_conf conf;
	char line[SWANCTL_MAX_LINE + 2];
	FILE *f = fopen(file, "r");
	int err = 0;
	if (!f) {
		perror(file);
		return 1;
	}
	swanctl_init(&conf);
	while (!err && fgets(line, sizeof(line), f)) {
		size_t n = strlen(line);
		if (n && line[n - 1] == '\n')
			n--;
		err = swanctl_feed(&conf, line, n);
	}
	fclose(f);
	if (!err)
		err = swanctl_finish(&conf);
	if (err) {
		printf("FAIL parse %s: %s\n", file, conf.err);
		swanctl_free(&conf);
		return 1;
	}
	struct vici_client *c;
	const char *why = NULL;
	if (vici_client_connect(uri, 5000, &c, &why) != 0) {
		printf("FAIL connect %s: %s\n", uri, why);
		swanctl_free(&conf);
		return 1;
	}
	for (unsigned i = 0; i < conf.nitems; i++) {
		struct vici_msg *resp = NULL;
		err = vici_client_request(c, conf.items[i].cmd, &conf.items[i].msg, NULL, NULL,
					  &resp, &why);
		CHECK(!err && success(resp), "%s %s%s%s", conf.items[i].cmd, conf.items[i].name,
		      err ? ": " : "",
		      err	      ? why
		      : success(resp) ? ""
				      : vici_get_str(vici_msg_root(resp), "errmsg"));
		vici_msg_free(resp);
	}
	vici_client_free(c);
	swanctl_free(&conf);
	return failures ? 1 : 0;
}

/* One line per event: its name, then path=value for every key (lists: path=[a,b]). */
static void dump(const struct vici_node *n, char *path, size_t at, size_t cap)
{
	for (; n; n = n->next) {
		size_t len = strlen(n->name);
		if (at + len + 2 >= cap)
			continue;
		size_t here = at;
		if (at)
			path[here++] = '.';
		memcpy(path + here, n->name, len + 1);
		switch (n->type) {
		case VICI_NODE_SECTION:
			dump(n->child, path, here + len, cap);
			break;
		case VICI_NODE_LIST:
			printf(" %s=[", path);
			for (const struct vici_node *i = n->child; i; i = i->next)
				printf("%s%.*s", i == n->child ? "" : ",", (int)i->value_len,
				       (const char *)i->value);
			printf("]");
			break;
		default:
			printf(" %s=%.*s", path, (int)n->value_len, (const char *)n->value);
			break;
		}
		path[at] = 0;
	}
}

static int events(const char *uri, int seconds, char **names, int n)
{
	struct vici_client *c;
	const char *why = NULL;
	if (vici_client_connect(uri, 5000, &c, &why)) {
		fprintf(stderr, "connect: %s\n", why);
		return 1;
	}
	for (int i = 0; i < n; i++)
		if (vici_client_register(c, names[i], true, &why)) {
			fprintf(stderr, "register %s: %s\n", names[i], why);
			vici_client_free(c);
			return 1;
		}
	printf("registered\n");
	fflush(stdout);
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		long left = (long)seconds * 1000 - ((t.tv_sec - t0.tv_sec) * 1000 +
						    (t.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0)
			break;
		char name[VICI_MAX_NAME + 1], path[1024] = "";
		struct vici_msg *m;
		int rc = vici_client_wait_event(c, (int)left, name, &m, &why);
		if (rc == SG_EAGAIN)
			break;
		if (rc) {
			fprintf(stderr, "wait: %s\n", why);
			vici_client_free(c);
			return 1;
		}
		printf("%s", name);
		dump(vici_msg_root(m)->child, path, 0, sizeof(path));
		printf("\n");
		fflush(stdout);
		vici_msg_free(m);
	}
	vici_client_free(c);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "loadconf") == 0)
		return loadconf(argv[2], argv[3]);
	if (argc == 3 && strcmp(argv[1], "client") == 0)
		return client(argv[2]);
	if (argc == 3 && strcmp(argv[1], "serve") == 0)
		return serve(argv[2]);
	if (argc >= 5 && strcmp(argv[1], "events") == 0)
		return events(argv[2], atoi(argv[3]), argv + 4, argc - 4);
	fprintf(stderr, "usage: vici_probe client|serve URI | loadconf URI FILE | events URI "
			"SECONDS EVENT...\n");
	return 2;
}
