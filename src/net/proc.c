/* Daemonizing with a readiness pipe (proc.h), shared by the daemons. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "net/proc.h"

/* Forks; returns in the child (with the write end of the readiness pipe) and never in the
 * parent, which exits with the child's verdict. */
int proc_daemonize(void)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0) {
		sg_log(SG_LOG_ERROR, "daemonize_failed", "step=pipe error=\"%s\"", strerror(errno));
		exit(1);
	}
	pid_t pid = fork();
	if (pid < 0) {
		sg_log(SG_LOG_ERROR, "daemonize_failed", "step=fork error=\"%s\"", strerror(errno));
		exit(1);
	}
	if (pid > 0) {
		char c = 0;
		ssize_t n;
		close(p[1]);
		do
			n = read(p[0], &c, 1);
		while (n < 0 && errno == EINTR);
		if (n == 1 && c == 'R')
			_exit(0);
		/* The child failed (and said why on stderr): collect it. */
		int status;
		(void)waitpid(pid, &status, 0);
		_exit(1);
	}
	close(p[0]);
	if (setsid() < 0)
		sg_log(SG_LOG_WARN, "setsid_failed", "error=\"%s\"", strerror(errno));
	return p[1];
}

void proc_ready(int ready_fd, const char *ident)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	if (chdir("/") != 0)
		sg_log(SG_LOG_WARN, "chdir_failed", "error=\"%s\"", strerror(errno));
	if (sg_log_get_target() == SG_LOG_TO_STDERR) /* not a --log-file */
		sg_log_open(ident, SG_LOG_TO_SYSLOG);
	ssize_t n;
	do
		n = write(ready_fd, "R", 1);
	while (n < 0 && errno == EINTR);
	close(ready_fd);
}
