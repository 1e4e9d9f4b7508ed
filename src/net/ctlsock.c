/* UAPI control socket file; see ctlsock.h. */
#include "net/ctlsock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static int check_dir(const char *dir, const char **why)
{
	struct stat st;
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		*why = "mkdir socket directory";
		return -errno;
	}
	if (lstat(dir, &st) != 0) {
		*why = "stat socket directory";
		return -errno;
	}
	/* Whoever can write the directory can swap our socket for theirs. */
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022) != 0) {
		*why = "socket directory is not a directory owned by us and writable only by us";
		return -EPERM;
	}
	return 0;
}

/* Is a daemon answering on path? A full backlog (EAGAIN) also means alive. */
static bool socket_alive(const char *path)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return true; /* cannot tell: do not remove it */
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path));
	int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	int err = errno;
	close(fd);
	if (rc == 0)
		return true;
	return err != ECONNREFUSED && err != ENOENT;
}

int ctlsock_open(struct ctlsock *s, const char *dir, const char *name, const char **why)
{
	char path[sizeof(s->path)];
	int n = snprintf(path, sizeof(path), "%s/%s.sock", dir, name);

	memset(s, 0, sizeof(*s));
	s->fd = -1;
	if (n < 0 || (size_t)n >= sizeof(path) || strlen(dir) >= sizeof(s->dir)) {
		*why = "socket path too long";
		return -ENAMETOOLONG;
	}
	int err = check_dir(dir, why);
	if (err != 0)
		return err;
	return ctlsock_open_path(s, path, 0600, why);
}

int ctlsock_open_path(struct ctlsock *s, const char *path, mode_t mode, const char **why)
{
	struct sockaddr_un sa;
	struct stat st;
	int err;
	size_t m = strlen(path);

	memset(s, 0, sizeof(*s));
	s->fd = -1;
	if (m == 0 || m >= sizeof(s->path)) {
		*why = m ? "socket path too long" : "empty socket path";
		return m ? -ENAMETOOLONG : -EINVAL;
	}
	memcpy(s->path, path, m + 1);
	/* dir: everything before the last slash ("." for a bare name), for the safety check. */
	const char *slash = strrchr(path, '/');
	size_t dl = slash ? (size_t)(slash - path) : 0;
	if (slash && dl == 0)
		dl = 1; /* "/x": the root directory */
	if (dl >= sizeof(s->dir)) {
		*why = "socket directory path too long";
		return -ENAMETOOLONG;
	}
	if (slash)
		memcpy(s->dir, path, dl);
	else
		s->dir[0] = '.', dl = 1;
	s->dir[dl] = 0;
	if (lstat(s->dir, &st) != 0) {
		*why = "socket directory does not exist";
		return -errno;
	}
	/* Whoever can write the directory can swap our socket for theirs. */
	if (!S_ISDIR(st.st_mode) || (st.st_uid != geteuid() && st.st_uid != 0) ||
	    (st.st_mode & 022) != 0) {
		*why =
		    "socket directory is not a directory owned by us or root and writable only by "
		    "its owner";
		return -EPERM;
	}
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		*why = "socket";
		return -errno;
	}
	/* A live daemon keeps its socket; anything but a socket is never replaced. */
	if (lstat(s->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			*why = "socket path exists and is not a socket";
			err = -EEXIST;
			goto fail;
		}
		if (socket_alive(s->path)) {
			*why = "socket in use by another daemon";
			err = -EADDRINUSE;
			goto fail;
		}
	}
	/* Bound and listening under a temporary name first, then renamed into place: a client
	 * probing the directory (`wg show all` removes sockets that refuse connections, as a dead
	 * daemon's do) never sees ours bound but not yet listening. The rename also replaces a
	 * stale socket atomically. */
	char tmp[sizeof(s->path)];
	int tn = snprintf(tmp, sizeof(tmp), "%s.%d~", s->path, (int)getpid());
	if (tn < 0 || (size_t)tn >= sizeof(sa.sun_path)) {
		*why = "socket path too long";
		err = -ENAMETOOLONG;
		goto fail;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, tmp, (size_t)tn);
	(void)unlink(tmp); /* ours, from a process with our pid that died */
	/* umask makes the socket no more open than `mode` from its creation on. */
	mode_t old = umask(~mode & 0777);
	int rc = bind(s->fd, (struct sockaddr *)&sa, sizeof(sa));
	err = errno;
	umask(old);
	if (rc != 0) {
		*why = "bind";
		err = -err;
		goto fail;
	}
	if (listen(s->fd, SOMAXCONN) != 0 || chmod(tmp, mode) != 0) {
		*why = "listen";
		err = -errno;
		(void)unlink(tmp);
		goto fail;
	}
	if (rename(tmp, s->path) != 0 || lstat(s->path, &st) != 0) {
		*why = "rename socket into place";
		err = -errno;
		(void)unlink(tmp);
		goto fail;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	return 0;
fail:
	close(s->fd);
	s->fd = -1;
	return err;
}

bool ctlsock_still_ours(const struct ctlsock *s)
{
	struct stat st;
	/* Only a missing entry means gone: a transient failure (ENOMEM, ...) must not stop the
	 * daemon. */
	if (lstat(s->path, &st) != 0)
		return errno != ENOENT && errno != ENOTDIR;
	return st.st_dev == s->dev && st.st_ino == s->ino;
}

int ctlsock_accept(struct ctlsock *s)
{
	for (;;) {
		int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0)
			return fd;
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
}

void ctlsock_close(struct ctlsock *s)
{
	if (s->fd < 0)
		return;
	if (ctlsock_still_ours(s))
		(void)unlink(s->path);
	close(s->fd);
	s->fd = -1;
}
