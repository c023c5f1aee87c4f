/* gateway/daemon.c: -d; see daemon.h. */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"

static int ready_fd = -1;	/* the write end the parent waits on */
static int pid_fd = -1;		/* the locked PID file */
static char pid_path[4096];

/* The parent: a byte is the daemon's "serving"; the end of the pipe without one, its
 * failure, whose status is passed on. */
static void __attribute__((noreturn))
wait_for_daemon(int fd, pid_t pid)
{
	char c;
	ssize_t n;
	int status;

	do
		n = read(fd, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n == 1)
		_exit(0);
	if (waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) != 0)
		_exit(WEXITSTATUS(status));
	fprintf(stderr, "popgate: the daemon ended before it served\n");
	_exit(1);
}

static int
write_pid_file(const char *path, const char **error_r)
{
	static char error[4200];
	char text[32];
	int fd, len;

	if (strlen(path) >= sizeof(pid_path)) {
		*error_r = "[server] pid_file: path too long";
		return -1;
	}
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644)) < 0) {
		snprintf(error, sizeof(error), "[server] pid_file %s: %s", path, strerror(errno));
		*error_r = error;
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		ssize_t n = read(fd, text, sizeof(text) - 1);

		text[n > 0 ? n : 0] = '\0';
		text[strcspn(text, "\n")] = '\0';
		snprintf(error, sizeof(error), "[server] pid_file %s: another popgate (pid %s) "
		    "holds it", path, text[0] ? text : "?");
		close(fd);
		*error_r = error;
		return -1;
	}
	len = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, text, (size_t)len, 0) != len) {
		snprintf(error, sizeof(error), "[server] pid_file %s: %s", path, strerror(errno));
		close(fd);
		*error_r = error;
		return -1;
	}
	pid_fd = fd;
	snprintf(pid_path, sizeof(pid_path), "%s", path);
	return 0;
}

int
gw_daemon_start(const char *pid_file, const char **error_r)
{
	static char error[200];
	int p[2], null;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
		snprintf(error, sizeof(error), "-d: %s", strerror(errno));
		*error_r = error;
		return -1;
	}
	if (pid > 0) {
		close(p[1]);
		wait_for_daemon(p[0], pid);
	}
	close(p[0]);
	ready_fd = p[1];
	/* A new session: no controlling terminal, and the terminal's hangup and Ctrl-C are
	 * no longer ours. */
	if (setsid() < 0 || chdir("/") < 0) {
		snprintf(error, sizeof(error), "-d: %s", strerror(errno));
		*error_r = error;
		return -1;
	}
	if ((null = open("/dev/null", O_RDWR | O_CLOEXEC)) >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
	return write_pid_file(pid_file, error_r);
}

void
gw_daemon_ready(void)
{
	if (ready_fd < 0)
		return;
	while (write(ready_fd, "R", 1) < 0 && errno == EINTR)
		;
	close(ready_fd);
	ready_fd = -1;
}

void
gw_daemon_forget(void)
{
	if (ready_fd >= 0)
		close(ready_fd);
	if (pid_fd >= 0)
		close(pid_fd);
	ready_fd = pid_fd = -1;
}

void
gw_daemon_end(void)
{
	if (pid_fd < 0)
		return;
	unlink(pid_path);
	close(pid_fd);
	pid_fd = -1;
}
