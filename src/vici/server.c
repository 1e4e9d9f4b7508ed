/* VICI server on the event loop (vici_server.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <secureguard/sg_errors.h>

#include "common/log.h"
#include "net/ctlsock.h"
#include "vici/vici_client.h"
#include "vici/vici_server.h"

#define MAX_REGS 32 /* events one connection may register */

struct conn {
	struct vici_server *srv;
	struct evloop_source src;
	int fd;
	uint64_t id;
	struct vici_stream in;
	struct vici_builder inq; /* received bytes not yet fed to `in` */
	size_t inq_pos;
	struct vici_builder out; /* raw framed bytes */
	size_t out_pos;
	bool pending; /* a command awaits vici_server_respond */
	bool dead;    /* closed in a callback: freed after the batch */
	char *regs[MAX_REGS];
	unsigned nregs;
	struct conn *next;
};

struct vici_server {
	struct evloop *loop;
	struct vici_server_ops ops;
	struct evloop_source src;
	struct ctlsock unix_sock; /* fd -1 for tcp */
	int fd;
	uint64_t next_id;
	struct conn *conns;
	size_t nconns;
	struct conn *graveyard; /* closed during dispatch, freed at the next accept/free */
};

static void conn_free(struct conn *c)
{
	vici_stream_free(&c->in);
	vici_builder_free(&c->inq);
	vici_builder_free(&c->out);
	for (unsigned i = 0; i < c->nregs; i++)
		free(c->regs[i]);
	free(c);
}

static void reap(struct vici_server *s)
{
	while (s->graveyard) {
		struct conn *c = s->graveyard;
		s->graveyard = c->next;
		conn_free(c);
	}
}

/* Unlinks and closes; the memory waits in the graveyard because the loop may still hold the
 * source for this batch (evloop.h). */
static void conn_close(struct conn *c, bool notify, const char *why)
{
	struct vici_server *s = c->srv;
	if (c->dead)
		return;
	c->dead = true;
	evloop_del(s->loop, &c->src);
	close(c->fd);
	for (struct conn **pp = &s->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	s->nconns--;
	if (why)
		sg_log(SG_LOG_DEBUG, "vici_conn_closed", "conn=%llu reason=\"%s\"",
		       (unsigned long long)c->id, why);
	c->next = s->graveyard;
	s->graveyard = c;
	if (notify && s->ops.closed)
		s->ops.closed(s->ops.ctx, c->id);
}

static struct conn *find(const struct vici_server *s, uint64_t id)
{
	for (struct conn *c = s->conns; c; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

static void update_interest(struct conn *c)
{
	/* While a command is pending nothing is read, but a client that goes away must still be
	 * noticed (its pending command is then abandoned). */
	uint32_t ev = EPOLLRDHUP;
	if (!c->pending)
		ev |= EPOLLIN;
	if (c->out_pos < c->out.len)
		ev |= EPOLLOUT;
	if (evloop_mod(c->srv->loop, &c->src, ev) != 0)
		conn_close(c, true, "epoll");
}

static void flush_out(struct conn *c)
{
	while (c->out_pos < c->out.len) {
		ssize_t w = send(c->fd, c->out.buf + c->out_pos, c->out.len - c->out_pos,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			c->out_pos += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		conn_close(c, true, "send failed");
		return;
	}
	if (c->out_pos == c->out.len) {
		c->out.len = 0;
		c->out_pos = 0;
	}
	update_interest(c);
}

/* Queues one packet. False (and the connection closed) if it would exceed the output bound. */
static bool queue(struct conn *c, enum vici_packet_type t, const char *name, const uint8_t *msg,
		  size_t len)
{
	const char *why;
	if (c->dead)
		return false;
	if (c->out.len - c->out_pos + len + 6 + VICI_MAX_NAME > VICI_SERVER_MAX_OUT) {
		conn_close(c, true, "client does not read its output");
		return false;
	}
	if (vici_packet_encode(&c->out, t, name, msg, len, &why) != 0) {
		conn_close(c, true, why);
		return false;
	}
	flush_out(c);
	return !c->dead;
}

static bool registered(const struct conn *c, const char *event)
{
	for (unsigned i = 0; i < c->nregs; i++)
		if (strcmp(c->regs[i], event) == 0)
			return true;
	return false;
}

static void handle_register(struct conn *c, const char *event, bool on)
{
	struct vici_server *s = c->srv;
	bool known = s->ops.event_known && s->ops.event_known(s->ops.ctx, event);
	if (!known) {
		queue(c, VICI_EVENT_UNKNOWN, NULL, NULL, 0);
		return;
	}
	if (on && !registered(c, event)) {
		char *dup = c->nregs < MAX_REGS ? strdup(event) : NULL;
		if (!dup) {
			queue(c, VICI_EVENT_UNKNOWN, NULL, NULL, 0);
			return;
		}
		c->regs[c->nregs++] = dup;
	} else if (!on) {
		for (unsigned i = 0; i < c->nregs; i++)
			if (strcmp(c->regs[i], event) == 0) {
				free(c->regs[i]);
				c->regs[i] = c->regs[--c->nregs];
				break;
			}
	}
	queue(c, VICI_EVENT_CONFIRM, NULL, NULL, 0);
}

static void respond_builder(struct conn *c, struct vici_builder *b)
{
	const uint8_t *m;
	size_t ml;
	const char *why;
	struct vici_builder errb;
	if (vici_builder_finish(b, &m, &ml, &why) != 0) {
		/* The handler built something invalid: say so instead of sending it. */
		vici_builder_init(&errb);
		vici_add_kv_str(&errb, "success", "no");
		vici_add_kv_fmt(&errb, "errmsg", "internal error building the response: %s", why);
		if (vici_builder_finish(&errb, &m, &ml, &why) == 0)
			queue(c, VICI_CMD_RESPONSE, NULL, m, ml);
		vici_builder_free(&errb);
		return;
	}
	queue(c, VICI_CMD_RESPONSE, NULL, m, ml);
}

static void handle_command(struct conn *c, const char *cmd, const uint8_t *msg, size_t len)
{
	struct vici_server *s = c->srv;
	struct vici_msg *req = NULL;
	struct vici_builder resp;
	const char *why;
	int err = vici_msg_parse(msg, len, &req, &why);
	vici_builder_init(&resp);
	if (err) {
		char q[VICI_MAX_NAME * 4 + 8];
		sg_log(SG_LOG_WARN, "vici_bad_request", "conn=%llu cmd=%s reason=\"%s\"",
		       (unsigned long long)c->id, sg_log_quote(q, sizeof(q), cmd), why);
		vici_add_kv_str(&resp, "success", "no");
		vici_add_kv_fmt(&resp, "errmsg", "malformed request message: %s", why);
		respond_builder(c, &resp);
		vici_builder_free(&resp);
		return;
	}
	c->pending = true;
	err = s->ops.command(s->ops.ctx, c->id, cmd, vici_msg_root(req), &resp);
	vici_msg_free(req);
	if (err == VICI_PENDING) {
		vici_builder_free(&resp);
		if (!c->dead)
			update_interest(c);
		return;
	}
	c->pending = false;
	if (err == SG_ENOENT) {
		queue(c, VICI_CMD_UNKNOWN, NULL, NULL, 0);
	} else {
		if (err && resp.len == 0 && !resp.err) {
			vici_add_kv_str(&resp, "success", "no");
			vici_add_kv_str(&resp, "errmsg", sg_strerror(err));
		}
		respond_builder(c, &resp);
	}
	vici_builder_free(&resp);
}

static void handle_packet(struct conn *c)
{
	struct vici_packet p;
	const char *why;
	int err = vici_packet_decode(c->in.body, c->in.body_len, &p, &why);
	if (err) {
		conn_close(c, true, why);
		return;
	}
	switch (p.type) {
	case VICI_CMD_REQUEST:
		handle_command(c, p.name, p.msg, p.msg_len);
		break;
	case VICI_EVENT_REGISTER:
	case VICI_EVENT_UNREGISTER:
		handle_register(c, p.name, p.type == VICI_EVENT_REGISTER);
		break;
	default:
		/* Responses and events flow from server to client only. */
		conn_close(c, true, "client sent a server-side packet type");
		break;
	}
}

/* Handles complete packets from the input queue until it is empty or a command is pending. */
static void process(struct conn *c)
{
	while (!c->dead && !c->pending && c->inq_pos < c->inq.len) {
		const char *why;
		long n = vici_stream_feed(&c->in, c->inq.buf + c->inq_pos, c->inq.len - c->inq_pos,
					  &why);
		if (n < 0) {
			conn_close(c, true, why);
			return;
		}
		c->inq_pos += (size_t)n;
		if (c->in.ready) {
			handle_packet(c);
			vici_stream_next(&c->in);
		}
	}
	if (c->inq_pos == c->inq.len) {
		c->inq.len = 0;
		c->inq_pos = 0;
	}
}

static void conn_io(void *ctx, uint32_t events)
{
	struct conn *c = ctx;
	if (c->dead)
		return;
	if (events & EPOLLOUT) {
		flush_out(c);
		if (c->dead)
			return;
	}
	if (c->pending) {
		if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			conn_close(c, true, "closed by client with a command pending");
		return;
	}
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)))
		return;
	uint8_t buf[4096];
	ssize_t r = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
		conn_close(c, true, r == 0 ? "closed by client" : "recv failed");
		return;
	}
	if (r < 0)
		return;
	/* Bytes wait here while a command is pending (a client may pipeline); reading stops
	 * meanwhile, so the queue holds at most one recv beyond what was handled. */
	const char *why;
	if (vici_packet_encode_raw(&c->inq, buf, (size_t)r, &why) != 0) {
		conn_close(c, true, why);
		return;
	}
	process(c);
}

static void accept_io(void *ctx, uint32_t events)
{
	struct vici_server *s = ctx;
	(void)events;
	reap(s);
	for (;;) {
		int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return;
		}
		if (s->nconns >= VICI_SERVER_MAX_CONNS) {
			sg_log(SG_LOG_WARN, "vici_conn_refused",
			       "reason=too_many_connections max=%u", VICI_SERVER_MAX_CONNS);
			close(fd);
			continue;
		}
		struct conn *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->srv = s;
		c->fd = fd;
		c->id = ++s->next_id;
		vici_stream_init(&c->in);
		vici_builder_init(&c->inq);
		vici_builder_init(&c->out);
		if (evloop_add(s->loop, &c->src, fd, EPOLLIN | EPOLLRDHUP, conn_io, c) != 0) {
			close(fd);
			free(c);
			continue;
		}
		c->next = s->conns;
		s->conns = c;
		s->nconns++;
	}
}

int vici_server_new(struct evloop *loop, const char *uri, const struct vici_server_ops *ops,
		    struct vici_server **out, const char **why)
{
	struct sockaddr_storage ss;
	unsigned salen;
	*out = NULL;
	int err = vici_uri_parse(uri, &ss, &salen, why);
	if (err)
		return err;
	struct vici_server *s = calloc(1, sizeof(*s));
	if (!s) {
		*why = "out of memory";
		return SG_ENOMEM;
	}
	s->loop = loop;
	s->ops = *ops;
	s->unix_sock.fd = -1;
	if (ss.ss_family == AF_UNIX) {
		err = ctlsock_open_path(&s->unix_sock, ((struct sockaddr_un *)&ss)->sun_path, 0770,
					why);
		if (err)
			goto fail;
		s->fd = s->unix_sock.fd;
	} else {
		int one = 1;
		s->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (s->fd < 0 || setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
		    bind(s->fd, (struct sockaddr *)&ss, salen) || listen(s->fd, SOMAXCONN)) {
			err = -errno;
			*why = "tcp listen";
			if (s->fd >= 0)
				close(s->fd);
			goto fail;
		}
	}
	err = evloop_add(loop, &s->src, s->fd, EPOLLIN, accept_io, s);
	if (err) {
		*why = "epoll";
		if (s->unix_sock.fd >= 0)
			ctlsock_close(&s->unix_sock);
		else
			close(s->fd);
		goto fail;
	}
	*out = s;
	return 0;
fail:
	free(s);
	return err;
}

void vici_server_free(struct vici_server *s)
{
	if (!s)
		return;
	while (s->conns)
		conn_close(s->conns, false, NULL);
	reap(s);
	evloop_del(s->loop, &s->src);
	if (s->unix_sock.fd >= 0)
		ctlsock_close(&s->unix_sock);
	else
		close(s->fd);
	free(s);
}

static int finish_msg(struct vici_builder *msg, const uint8_t **m, size_t *ml)
{
	const char *why;
	*m = NULL;
	*ml = 0;
	return msg ? vici_builder_finish(msg, m, ml, &why) : 0;
}

int vici_server_event(struct vici_server *s, uint64_t conn, const char *event,
		      struct vici_builder *msg)
{
	const uint8_t *m;
	size_t ml;
	struct conn *c = find(s, conn);
	if (!c || !registered(c, event))
		return SG_ENOENT;
	int err = finish_msg(msg, &m, &ml);
	if (err)
		return err;
	queue(c, VICI_EVENT, event, m, ml);
	return 0;
}

void vici_server_broadcast(struct vici_server *s, const char *event, struct vici_builder *msg)
{
	const uint8_t *m;
	size_t ml;
	if (finish_msg(msg, &m, &ml) != 0)
		return;
	struct conn *next;
	for (struct conn *c = s->conns; c; c = next) {
		next = c->next; /* queue may close c */
		if (registered(c, event))
			queue(c, VICI_EVENT, event, m, ml);
	}
}

int vici_server_respond(struct vici_server *s, uint64_t conn, struct vici_builder *msg)
{
	struct conn *c = find(s, conn);
	if (!c || !c->pending)
		return SG_ENOENT;
	c->pending = false;
	respond_builder(c, msg);
	if (c->dead)
		return 0;
	/* Requests that arrived meanwhile wait in the input queue. */
	process(c);
	if (!c->dead)
		update_interest(c);
	return 0;
}

bool vici_server_has_listener(const struct vici_server *s, const char *event)
{
	for (const struct conn *c = s->conns; c; c = c->next)
		if (registered(c, event))
			return true;
	return false;
}

size_t vici_server_conn_count(const struct vici_server *s)
{
	return s->nconns;
}
