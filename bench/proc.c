#define _GNU_SOURCE
#include "proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

uint64_t proc_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void proc_sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int proc_ncpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

int proc_pin_self(int cpu)
{
	if (cpu < 0)
		return 0;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof set, &set) == 0 ? 0 : -errno;
}

long proc_nofile_raise(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -errno;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			return -errno;
	}
	return (long)rl.rlim_cur;
}

pid_t proc_spawn(char *const argv[], int cpu, const char *log_path, int *stdout_fd)
{
	int pfd[2] = {-1, -1};
	if (stdout_fd && pipe2(pfd, O_CLOEXEC) != 0)
		return -errno;
	int logfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (logfd < 0) {
		int e = errno;
		if (stdout_fd) {
			close(pfd[0]);
			close(pfd[1]);
		}
		return -e;
	}
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(logfd);
		if (stdout_fd) {
			close(pfd[0]);
			close(pfd[1]);
		}
		return -e;
	}
	if (pid == 0) {
		/* A server must never outlive the harness, even if the harness
		 * is killed before it can stop it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		proc_pin_self(cpu);
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0) {
			dup2(devnull, 0);
			close(devnull);
		}
		dup2(stdout_fd ? pfd[1] : logfd, 1);
		dup2(logfd, 2);
		signal(SIGPIPE, SIG_DFL);
		execv(argv[0], argv);
		dprintf(2, "bench: cannot execute %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(logfd);
	if (stdout_fd) {
		close(pfd[1]);
		*stdout_fd = pfd[0];
	}
	return pid;
}

int proc_running(pid_t pid, int *status)
{
	int st = 0;
	pid_t r = waitpid(pid, &st, WNOHANG);
	if (r == 0)
		return 1;
	if (status)
		*status = st;
	return 0;
}

int proc_stop(pid_t pid, unsigned grace_ms, int *status)
{
	int st = 0;
	if (!proc_running(pid, &st)) {
		if (status)
			*status = st;
		return 0;
	}
	if (kill(pid, SIGTERM) != 0)
		return -errno;
	uint64_t end = proc_now_ns() + (uint64_t)grace_ms * 1000000ull;
	while (proc_now_ns() < end) {
		if (!proc_running(pid, &st)) {
			if (status)
				*status = st;
			return 0;
		}
		proc_sleep_ms(20);
	}
	kill(pid, SIGKILL);
	if (waitpid(pid, &st, 0) < 0)
		return -errno;
	if (status)
		*status = st;
	return 1;
}

/* Value (in kB) of "Key:   123 kB" lines of a /proc file; -1 if absent. */
static long kb_field(const char *path, const char *key)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	char line[256];
	size_t kl = strlen(key);
	long v = -1;
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
			v = strtol(line + kl + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

int proc_mem_read(pid_t pid, proc_mem_t *m)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	m->rss_kib = kb_field(path, "VmRSS");
	m->anon_kib = kb_field(path, "RssAnon");
	m->threads = kb_field(path, "Threads");
	snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
	m->private_dirty_kib = kb_field(path, "Private_Dirty");
	return m->rss_kib < 0 ? -ESRCH : 0;
}

int proc_cpu_ticks(pid_t pid, uint64_t *ticks)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	/* The command name may contain spaces; fields restart after ')'. */
	char *p = strrchr(buf, ')');
	if (!p)
		return -EIO;
	p++;
	unsigned long long ut = 0, st = 0;
	/* state ppid pgrp session tty tpgid flags minflt cminflt majflt
	 * cmajflt utime stime */
	if (sscanf(p, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -EIO;
	*ticks = ut + st;
	return 0;
}

int proc_wait_idle(pid_t pid, unsigned max_ms)
{
	uint64_t end = proc_now_ns() + (uint64_t)max_ms * 1000000ull;
	uint64_t t0;
	proc_mem_t m0;
	if (proc_cpu_ticks(pid, &t0) != 0 || proc_mem_read(pid, &m0) != 0)
		return -ESRCH;
	int quiet = 0;
	while (proc_now_ns() < end) {
		proc_sleep_ms(250);
		uint64_t t1;
		proc_mem_t m1;
		if (proc_cpu_ticks(pid, &t1) != 0 || proc_mem_read(pid, &m1) != 0)
			return -ESRCH;
		if (t1 - t0 <= 1 && m1.rss_kib == m0.rss_kib)
			quiet++;
		else
			quiet = 0;
		if (quiet >= 2)
			return 1;
		t0 = t1;
		m0 = m1;
	}
	return 0;
}

int proc_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof sa;
	int rc = 0;
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) != 0)
		rc = -errno;
	close(fd);
	return rc < 0 ? rc : ntohs(sa.sin_port);
}

/* Waits for fd to become ready for `events` until end_ns. */
static int wait_fd(int fd, short events, uint64_t end_ns)
{
	for (;;) {
		uint64_t now = proc_now_ns();
		if (now >= end_ns)
			return -ETIMEDOUT;
		struct pollfd p = {.fd = fd, .events = events};
		int ms = (int)((end_ns - now) / 1000000ull) + 1;
		int r = poll(&p, 1, ms);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

int proc_http_status(int port, const char *path, unsigned timeout_ms)
{
	uint64_t end = proc_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int rc = 0;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		if (errno != EINPROGRESS) {
			rc = -errno;
			goto out;
		}
		if ((rc = wait_fd(fd, POLLOUT, end)) != 0)
			goto out;
		int err = 0;
		socklen_t el = sizeof err;
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err) {
			rc = -err;
			goto out;
		}
	}
	char req[256];
	int n = snprintf(req, sizeof req,
			 "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
	if (n < 0 || (size_t)n >= sizeof req || write(fd, req, (size_t)n) != n) {
		rc = -EIO;
		goto out;
	}
	char resp[64];
	size_t got = 0;
	while (got < 12) {
		if ((rc = wait_fd(fd, POLLIN, end)) != 0)
			goto out;
		ssize_t r = read(fd, resp + got, sizeof resp - 1 - got);
		if (r <= 0) {
			rc = r == 0 ? -EPIPE : -errno;
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			goto out;
		}
		got += (size_t)r;
	}
	resp[got] = 0;
	if (strncmp(resp, "HTTP/1.", 7) != 0) {
		rc = -EPROTO;
		goto out;
	}
	rc = (int)strtol(resp + 9, NULL, 10);
out:
	close(fd);
	return rc;
}

int proc_read_line(int fd, char *buf, size_t cap, unsigned timeout_ms)
{
	uint64_t end = proc_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	size_t len = 0;
	while (len + 1 < cap) {
		int rc = wait_fd(fd, POLLIN, end);
		if (rc != 0)
			return rc;
		char ch;
		ssize_t r = read(fd, &ch, 1);
		if (r == 0)
			return -EPIPE;
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (ch == '\n')
			break;
		buf[len++] = ch;
	}
	buf[len] = 0;
	return (int)len;
}

const char *proc_fs_type(const char *path)
{
	struct statfs sf;
	if (statfs(path, &sf) != 0)
		return "other";
	switch ((unsigned long)sf.f_type) {
	case 0xEF53UL:
		return "ext4";
	case 0x01021994UL:
		return "tmpfs";
	case 0x58465342UL:
		return "xfs";
	case 0x9123683EUL:
		return "btrfs";
	case 0x794C7630UL:
		return "overlay";
	default:
		return "other";
	}
}
