/* Fuzz target for what the server parses for the admin console (src/server/routes_console.c,
 * auth.c): the path of a console file (srv_console_serve after srv_http_decode_target), the
 * Accept-Encoding header (srv_accepts_gzip) and the Cookie header (srv_cookie_get). The input is
 * three lines: the request target, the Accept-Encoding value, the Cookie value.
 *
 * Checks, besides ASan/UBSan: a served file is one of the console's own (its bytes, its type),
 * never anything else on the disk; a refusal is a 4xx problem document; gzip is never accepted
 * by a header that does not name it; a cookie value found is the one after "sg_refresh=" in the
 * header, without separators. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/srv_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const files[][2] = {
    {"index.html", "<!doctype html><title>console</title>"},
    {"index.html.gz", "gz:index"},
    {"favicon.svg", "<svg/>"},
    {"assets/app-1.js", "console.log(1)"},
    {"assets/app-1.js.gz", "gz:app"},
    {"assets/app-1.css", "body{}"},
};
static char dir[64];
static struct srv srv;

static void setup(void)
{
	char p[256];

	snprintf(dir, sizeof(dir), "/tmp/sg-fuzz-console.%d", (int)getpid());
	mkdir(dir, 0700);
	snprintf(p, sizeof(p), "%s/assets", dir);
	mkdir(p, 0700);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		FILE *f;

		snprintf(p, sizeof(p), "%s/%s", dir, files[i][0]);
		f = fopen(p, "w");
		if (!f || fputs(files[i][1], f) < 0 || fclose(f))
			abort();
	}
	/* A file beside the console's directory that must never be served. */
	snprintf(p, sizeof(p), "%s.secret", dir);
	FILE *f = fopen(p, "w");
	if (!f || fputs("secret", f) < 0 || fclose(f))
		abort();
	snprintf(srv.console_dir, sizeof(srv.console_dir), "%s", dir);
}

static void cleanup(void)
{
	char p[256];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, files[i][0]);
		unlink(p);
	}
	snprintf(p, sizeof(p), "%s/assets", dir);
	rmdir(p);
	rmdir(dir);
	snprintf(p, sizeof(p), "%s.secret", dir);
	unlink(p);
}

static bool contains_ci(const char *h, const char *w)
{
	for (; *h; h++) {
		if (!strncasecmp(h, w, strlen(w)))
			return true;
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *lines[3] = {"", "", ""}, *p;
	struct srv_kv hdrs[1];
	struct srv_req r;
	struct srv_resp out;
	struct srv_target t;
	char cookie[80];

	if (!buf)
		return 0;
	if (!dir[0]) {
		setup();
		atexit(cleanup);
	}
	memcpy(buf, data, size);
	buf[size] = 0;
	p = buf;
	for (int i = 0; i < 3 && p; i++) {
		lines[i] = p;
		p = strchr(p, '\n');
		if (p)
			*p++ = 0;
	}

	/* Accept-Encoding */
	if (srv_accepts_gzip(lines[1]) && !contains_ci(lines[1], "gzip"))
		abort();

	/* Cookie */
	if (srv_cookie_get(lines[2], "sg_refresh", cookie, sizeof(cookie))) {
		char *at = strstr(lines[2], cookie);

		/* Somewhere in the header as "sg_refresh=VALUE", VALUE ending the header or
		 * followed by a separator. */
		bool ok = false;

		for (; at; at = strstr(at + 1, cookie)) {
			if (at - lines[2] >= 11 && !strncmp(at - 11, "sg_refresh=", 11) &&
			    (!at[strlen(cookie)] || strchr("; ", at[strlen(cookie)])))
				ok = true;
		}
		if (!ok || !*cookie || strpbrk(cookie, "; "))
			abort();
	}

	/* A console file */
	memset(&r, 0, sizeof(r));
	memset(&out, 0, sizeof(out));
	hdrs[0].name = "accept-encoding";
	hdrs[0].value = lines[1];
	r.headers = hdrs;
	r.nheaders = 1;
	r.method = "GET";
	r.target = lines[0];
	if (srv_http_decode_target(&r, &out, &t) && srv_console_serve(&srv, &r, &out, &t)) {
		if (out.status == 200) {
			bool known = false;

			for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
				if (out.len == strlen(files[i][1]) &&
				    !memcmp(out.body, files[i][1], out.len))
					known = true;
			}
			if (!known)
				abort();
		} else {
			json_t *j = json_loadb(out.body, out.len, 0, NULL);

			if (out.status < 400 || out.status > 499 || !j ||
			    strcmp(out.ctype, "application/problem+json"))
				abort();
			json_decref(j);
		}
	}
	srv_resp_clear(&out);
	free(r.decoded);
	free(buf);
	return 0;
}
