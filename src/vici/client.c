/* Blocking VICI client (vici_client.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <secureguard/sg_errors.h>

#include "vici/vici_client.h"

struct vici_client {
	int fd;
	int timeout_ms;
	struct vici_stream in;
	uint8_t buf[4096];
	size_t buf_len, buf_pos; /* bytes read but not yet fed */
};

int vici_uri_parse(const char *uri, struct sockaddr_storage *ss, unsigned *salen, const char **why)
{
	memset(ss, 0, sizeof(*ss));
	if (strncmp(uri, "unix://", 7) == 0) {
		struct sockaddr_un *sa = (struct sockaddr_un *)ss;
		const char *path = uri + 7;
		size_t n = strlen(path);
		if (n == 0 || n >= sizeof(sa->sun_path)) {
			*why = n ? "unix socket path too long" : "empty unix socket path";
			return SG_EINVAL;
		}
		sa->sun_family = AF_UNIX;
		memcpy(sa->sun_path, path, n);
		*salen = (unsigned)sizeof(*sa);
		return 0;
	}
	if (strncmp(uri, "tcp://", 6) == 0) {
		const char *h = uri + 6, *colon;
		char host[64];
		size_t hl;
		if (*h == '[') {
			const char *end = strchr(h, ']');
			if (!end || end[1] != ':') {
				*why = "tcp URI: expected [IPv6]:PORT";
				return SG_EINVAL;
			}
			hl = (size_t)(end - h - 1);
			h++;
			colon = end + 1;
		} else {
			colon = strrchr(h, ':');
			if (!colon) {
				*why = "tcp URI: expected ADDR:PORT";
				return SG_EINVAL;
			}
			hl = (size_t)(colon - h);
		}
		if (hl == 0 || hl >= sizeof(host)) {
			*why = "tcp URI: bad address";
			return SG_EINVAL;
		}
		memcpy(host, h, hl);
		host[hl] = 0;
		char *end;
		errno = 0;
		unsigned long port = strtoul(colon + 1, &end, 10);
		if (errno || *end || end == colon + 1 || port == 0 || port > 65535) {
			*why = "tcp URI: bad port";
			return SG_EINVAL;
		}
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
			s4->sin_family = AF_INET;
			s4->sin_port = htons((uint16_t)port);
			*salen = (unsigned)sizeof(*s4);
			return 0;
		}
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons((uint16_t)port);
			*salen = (unsigned)sizeof(*s6);
			return 0;
		}
		*why = "tcp URI: address is not a numeric IPv4 or IPv6 address";
		return SG_EINVAL;
	}
	*why = "URI must start with unix:// or tcp://";
	return SG_EINVAL;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Waits for fd to be ready for `events` until `deadline` (0 = none). 0, SG_EAGAIN, SG_EIO. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	for (;;) {
		int t = -1;
		if (deadline) {
			uint64_t now = now_ms();
			if (now >= deadline)
				return SG_EAGAIN;
			t = (int)SG_MIN(deadline - now, (uint64_t)INT32_MAX);
		}
		struct pollfd p = {.fd = fd, .events = events};
		int rc = poll(&p, 1, t);
		if (rc > 0)
			return 0;
		if (rc == 0)
			return SG_EAGAIN;
		if (errno != EINTR)
			return SG_EIO;
	}
}

int vici_client_connect(const char *uri, int timeout_ms, struct vici_client **out, const char **why)
{
	static const char *dummy;
	struct sockaddr_storage ss;
	unsigned salen;
	if (!why)
		why = &dummy;
	*out = NULL;
	int err = vici_uri_parse(uri, &ss, &salen, why);
	if (err)
		return err;
	struct vici_client *c = calloc(1, sizeof(*c));
	if (!c) {
		*why = "out of memory";
		return SG_ENOMEM;
	}
	c->timeout_ms = timeout_ms;
	vici_stream_init(&c->in);
	c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->fd < 0) {
		*why = "socket";
		free(c);
		return SG_EIO;
	}
	if (connect(c->fd, (struct sockaddr *)&ss, salen) != 0) {
		if (errno != EINPROGRESS && errno != EAGAIN) {
			*why = errno == ENOENT || errno == ECONNREFUSED
				   ? "no VICI server at this address (is the daemon running?)"
				   : "connect";
			goto fail;
		}
		uint64_t deadline = timeout_ms > 0 ? now_ms() + (uint64_t)timeout_ms : 0;
		int soerr = 0;
		socklen_t l = sizeof(soerr);
		if (wait_fd(c->fd, POLLOUT, deadline) != 0 ||
		    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &l) != 0 || soerr) {
			*why = "connect: no answer";
			goto fail;
		}
	}
	*out = c;
	return 0;
fail:
	close(c->fd);
	free(c);
	return SG_EIO;
}

void vici_client_free(struct vici_client *c)
{
	if (!c)
		return;
	close(c->fd);
	vici_stream_free(&c->in);
	free(c);
}

void vici_client_set_timeout(struct vici_client *c, int timeout_ms)
{
	c->timeout_ms = timeout_ms;
}

static uint64_t deadline_of(int timeout_ms)
{
	return timeout_ms > 0 ? now_ms() + (uint64_t)timeout_ms : 0;
}

static int send_all(struct vici_client *c, const uint8_t *p, size_t n, const char **why)
{
	uint64_t deadline = deadline_of(c->timeout_ms);
	while (n) {
		ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int err = wait_fd(c->fd, POLLOUT, deadline);
			if (err) {
				*why = err == SG_EAGAIN ? "timeout sending to the VICI server"
							: "poll";
				return SG_EIO;
			}
			continue;
		}
		*why = "connection to the VICI server lost while sending";
		return SG_EIO;
	}
	return 0;
}

static int send_packet(struct vici_client *c, enum vici_packet_type t, const char *name,
		       struct vici_builder *msg, const char **why)
{
	const uint8_t *m = NULL;
	size_t ml = 0;
	struct vici_builder frame;
	int err = 0;
	if (msg) {
		err = vici_builder_finish(msg, &m, &ml, why);
		if (err)
			return err;
	}
	vici_builder_init(&frame);
	err = vici_packet_encode(&frame, t, name, m, ml, why);
	if (!err)
		err = send_all(c, frame.buf, frame.len, why);
	vici_builder_free(&frame);
	return err;
}

/* Reads until one packet is complete in c->in. 0, SG_EAGAIN (deadline), SG_EIO, SG_EPARSE. */
static int read_packet(struct vici_client *c, uint64_t deadline, const char **why)
{
	while (!c->in.ready) {
		if (c->buf_pos < c->buf_len) {
			long n = vici_stream_feed(&c->in, c->buf + c->buf_pos,
						  c->buf_len - c->buf_pos, why);
			if (n < 0)
				return (int)n == SG_ENOMEM ? SG_ENOMEM : SG_EPARSE;
			c->buf_pos += (size_t)n;
			continue;
		}
		ssize_t r = recv(c->fd, c->buf, sizeof(c->buf), 0);
		if (r > 0) {
			c->buf_len = (size_t)r;
			c->buf_pos = 0;
			continue;
		}
		if (r == 0) {
			*why = "the VICI server closed the connection";
			return SG_EIO;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			*why = "connection to the VICI server lost while receiving";
			return SG_EIO;
		}
		int err = wait_fd(c->fd, POLLIN, deadline);
		if (err == SG_EAGAIN) {
			*why = "timeout waiting for the VICI server";
			return SG_EAGAIN;
		}
		if (err) {
			*why = "poll";
			return SG_EIO;
		}
	}
	return 0;
}

/* Takes the completed packet: decodes it, and its message when want_msg. */
static int take_packet(struct vici_client *c, struct vici_packet *p, struct vici_msg **msg,
		       const char **why)
{
	int err = vici_packet_decode(c->in.body, c->in.body_len, p, why);
	if (!err && msg)
		err = vici_msg_parse(p->msg, p->msg_len, msg, why);
	return err == SG_ENOMEM ? err : err ? SG_EPARSE : 0;
}

int vici_client_request(struct vici_client *c, const char *cmd, struct vici_builder *req,
			vici_event_fn on_event, void *ctx, struct vici_msg **resp, const char **why)
{
	static const char *dummy;
	if (!why)
		why = &dummy;
	if (resp)
		*resp = NULL;
	int err = send_packet(c, VICI_CMD_REQUEST, cmd, req, why);
	if (err)
		return err;
	uint64_t deadline = deadline_of(c->timeout_ms);
	for (;;) {
		struct vici_packet p;
		struct vici_msg *m = NULL;
		err = read_packet(c, deadline, why);
		if (err)
			return err == SG_EAGAIN ? SG_EIO : err;
		err = take_packet(c, &p, &m, why);
		if (err) {
			vici_stream_next(&c->in);
			return err;
		}
		switch (p.type) {
		case VICI_EVENT:
			if (on_event)
				on_event(ctx, p.name, vici_msg_root(m));
			break;
		case VICI_CMD_RESPONSE:
			if (resp)
				*resp = m;
			else
				vici_msg_free(m);
			vici_stream_next(&c->in);
			return 0;
		case VICI_CMD_UNKNOWN:
			vici_msg_free(m);
			vici_stream_next(&c->in);
			*why = "the VICI server does not know this command";
			return SG_ENOENT;
		default:
			vici_msg_free(m);
			vici_stream_next(&c->in);
			*why = "unexpected packet type while waiting for a command response";
			return SG_EPARSE;
		}
		vici_msg_free(m);
		vici_stream_next(&c->in);
	}
}

int vici_client_register(struct vici_client *c, const char *event, bool on, const char **why)
{
	static const char *dummy;
	if (!why)
		why = &dummy;
	int err =
	    send_packet(c, on ? VICI_EVENT_REGISTER : VICI_EVENT_UNREGISTER, event, NULL, why);
	if (err)
		return err;
	uint64_t deadline = deadline_of(c->timeout_ms);
	for (;;) {
		struct vici_packet p;
		err = read_packet(c, deadline, why);
		if (err)
			return err == SG_EAGAIN ? SG_EIO : err;
		err = take_packet(c, &p, NULL, why);
		vici_stream_next(&c->in);
		if (err)
			return err;
		if (p.type == VICI_EVENT)
			continue; /* an event registered earlier: not what we wait for */
		if (p.type == VICI_EVENT_CONFIRM)
			return 0;
		if (p.type == VICI_EVENT_UNKNOWN) {
			*why = "the VICI server does not know this event";
			return SG_ENOENT;
		}
		*why = "unexpected packet type while waiting for an event confirmation";
		return SG_EPARSE;
	}
}

int vici_client_wait_event(struct vici_client *c, int timeout_ms, char *name, struct vici_msg **msg,
			   const char **why)
{
	static const char *dummy;
	if (!why)
		why = &dummy;
	*msg = NULL;
	uint64_t deadline = deadline_of(timeout_ms < 0 ? c->timeout_ms : timeout_ms);
	if (timeout_ms == 0)
		deadline = now_ms();
	for (;;) {
		struct vici_packet p;
		int err = read_packet(c, deadline, why);
		if (err)
			return err;
		err = take_packet(c, &p, msg, why);
		vici_stream_next(&c->in);
		if (err)
			return err;
		if (p.type == VICI_EVENT) {
			memcpy(name, p.name, strlen(p.name) + 1);
			return 0;
		}
		vici_msg_free(*msg);
		*msg = NULL;
		*why = "unexpected packet type while waiting for an event";
		return SG_EPARSE;
	}
}
