/* libcurl multi on the evloop; see httpc.h. */
#include "net/httpc.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

struct sock {
	struct evloop_source src;
	struct sg_httpc *h;
	curl_socket_t fd;
};

struct sg_httpc {
	struct evloop *loop;
	CURLM *multi;
	int tfd;
	struct evloop_source tsrc;
	struct sg_httpc_req *reqs; /* pending, doubly linked */
};

struct sg_httpc_req {
	struct sg_httpc *h;
	struct sg_httpc_req *prev, *next;
	CURL *easy;
	struct curl_slist *headers;
	char *body;
	size_t len, cap, max;
	bool too_big;
	char errbuf[CURL_ERROR_SIZE];
	sg_httpc_cb cb;
	void *ctx;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static bool global_ok;
static void global_init(void)
{
	global_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

static void finish(struct sg_httpc *h);

static void sock_event(void *ctx, uint32_t ev)
{
	struct sock *s = ctx;
	struct sg_httpc *h = s->h;
	int mask = 0, running;
	if (ev & EPOLLIN)
		mask |= CURL_CSELECT_IN;
	if (ev & EPOLLOUT)
		mask |= CURL_CSELECT_OUT;
	if (ev & (EPOLLERR | EPOLLHUP))
		mask |= CURL_CSELECT_ERR;
	curl_multi_socket_action(h->multi, s->fd, mask, &running);
	finish(h);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *sockp)
{
	struct sg_httpc *h = userp;
	struct sock *s = sockp;
	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (s) {
			evloop_del(h->loop, &s->src);
			curl_multi_assign(h->multi, fd, NULL);
			free(s);
		}
		return 0;
	}
	uint32_t ev = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -1;
		s->h = h;
		s->fd = fd;
		if (evloop_add(h->loop, &s->src, fd, ev, sock_event, s) != 0) {
			free(s);
			return -1;
		}
		curl_multi_assign(h->multi, fd, s);
		return 0;
	}
	return evloop_mod(h->loop, &s->src, ev) == 0 ? 0 : -1;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct sg_httpc *h = userp;
	(void)multi;
	uint64_t at = timeout_ms < 0 ? UINT64_MAX : evloop_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	return evloop_timer_arm(h->tfd, at) == 0 ? 0 : -1;
}

static void timer_event(void *ctx, uint32_t ev)
{
	struct sg_httpc *h = ctx;
	int running;
	(void)ev;
	evloop_timer_ack(h->tfd);
	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	finish(h);
}

int sg_httpc_new(struct sg_httpc **out, struct evloop *loop)
{
	*out = NULL;
	pthread_once(&global_once, global_init);
	if (!global_ok)
		return -ENOMEM;
	struct sg_httpc *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->loop = loop;
	h->tfd = evloop_timer_new();
	h->multi = curl_multi_init();
	if (h->tfd < 0 || !h->multi ||
	    evloop_add(loop, &h->tsrc, h->tfd, EPOLLIN, timer_event, h) != 0) {
		if (h->multi)
			curl_multi_cleanup(h->multi);
		if (h->tfd >= 0)
			close(h->tfd);
		free(h);
		return -ENOMEM;
	}
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	*out = h;
	return 0;
}

static void req_free(struct sg_httpc_req *r)
{
	struct sg_httpc *h = r->h;
	if (r->prev)
		r->prev->next = r->next;
	else
		h->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	curl_multi_remove_handle(h->multi, r->easy);
	curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->headers);
	free(r->body);
	free(r);
}

void sg_httpc_cancel(struct sg_httpc_req *r)
{
	if (r)
		req_free(r);
}

void *sg_httpc_ctx(const struct sg_httpc_req *r)
{
	return r ? r->ctx : NULL;
}

void sg_httpc_free(struct sg_httpc *h)
{
	if (!h)
		return;
	while (h->reqs)
		req_free(h->reqs);
	curl_multi_cleanup(h->multi);
	evloop_del(h->loop, &h->tsrc);
	close(h->tfd);
	free(h);
}

static size_t write_cb(char *p, size_t size, size_t n, void *userp)
{
	struct sg_httpc_req *r = userp;
	size_t len = size * n;
	if (r->len + len > r->max) {
		r->too_big = true;
		return 0; /* curl stops with CURLE_WRITE_ERROR */
	}
	if (r->len + len + 1 > r->cap) {
		size_t cap = r->cap ? r->cap : 4096;
		while (cap < r->len + len + 1)
			cap *= 2;
		char *q = realloc(r->body, cap);
		if (!q)
			return 0;
		r->body = q;
		r->cap = cap;
	}
	memcpy(r->body + r->len, p, len);
	r->len += len;
	r->body[r->len] = '\0';
	return len;
}

/* Completed transfers: callbacks, then freed. */
static void finish(struct sg_httpc *h)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(h->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		struct sg_httpc_req *r = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		if (!r)
			continue;
		struct sg_httpc_resp resp = {0};
		if (m->data.result == CURLE_OK) {
			curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &resp.status);
			resp.body = r->body ? r->body : "";
			resp.len = r->len;
		} else {
			resp.error = r->too_big ? "response body too large"
				     : r->errbuf[0] ? r->errbuf
						    : curl_easy_strerror(m->data.result);
			resp.body = "";
		}
		sg_httpc_cb cb = r->cb;
		void *ctx = r->ctx;
		/* Freed before the callback: the callback may start or cancel other requests (it
		 * must not free h). */
		char *body = r->body;
		r->body = NULL;
		char err[CURL_ERROR_SIZE];
		if (resp.error) {
			snprintf(err, sizeof(err), "%s", resp.error);
			resp.error = err;
		}
		req_free(r);
		if (body)
			resp.body = body;
		cb(ctx, &resp);
		free(body);
	}
}

struct sg_httpc_req *sg_httpc_request(struct sg_httpc *h, const char *method, const char *url,
				      const char *const *headers, const void *body, size_t len,
				      const struct sg_httpc_opts *o, sg_httpc_cb cb, void *ctx)
{
	struct sg_httpc_req *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->h = h;
	r->cb = cb;
	r->ctx = ctx;
	r->max = o && o->max_body ? o->max_body : (1u << 20);
	r->easy = curl_easy_init();
	if (!r->easy) {
		free(r);
		return NULL;
	}
	for (size_t i = 0; headers && headers[i]; i++) {
		struct curl_slist *l = curl_slist_append(r->headers, headers[i]);
		if (!l) {
			curl_slist_free_all(r->headers);
			curl_easy_cleanup(r->easy);
			free(r);
			return NULL;
		}
		r->headers = l;
	}
	CURL *e = r->easy;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o && o->timeout_ms ? o->timeout_ms : 10000L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "secureguard/" SG_VERSION);
	if (o && o->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file);
	if (r->headers)
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
	if (body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
		curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
	}
	if (method && strcmp(method, body ? "POST" : "GET") != 0)
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	r->next = h->reqs;
	if (h->reqs)
		h->reqs->prev = r;
	h->reqs = r;
	if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
		req_free(r);
		return NULL;
	}
	return r;
}
