#include "servers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"

#define READY_TIMEOUT_MS 20000
#define STOP_GRACE_MS 15000

static const char fourcd_ini[] = "[server]\n"
				 "listen = 127.0.0.1:%d\n"
				 "tls_listen = 127.0.0.1:%d\n"
				 "admin = 127.0.0.1:%d\n"
				 "loops = 1\n"
				 "\n"
				 "[limits]\n"
				 "header_timeout_ms = 600000\n"
				 "auth_timeout_ms = 600000\n"
				 "upgrade_rate = 1000000\n"
				 "upgrade_burst = 1000000\n"
				 "max_connections = 10000000\n"
				 "max_inflight = 64\n"
				 "\n"
				 "[accounts]\n"
				 "invite_codes = " SRV_INVITE "\n"
				 "max_devices = 5\n"
				 "\n"
				 "[log]\n"
				 "level = info\n";

const char *srv_fourcd_settings(void)
{
	return "loops=1 header_timeout_ms=600000 auth_timeout_ms=600000 upgrade_rate=1000000 "
	       "upgrade_burst=1000000 max_connections=10000000 max_inflight=64 log=info";
}

static int make_dir(srv_t *s, const char *tmp, const char *name)
{
	int n = snprintf(s->dir, sizeof s->dir, "%s/%s", tmp, name);
	if (n < 0 || (size_t)n >= sizeof s->dir)
		return -ENAMETOOLONG;
	if (mkdir(s->dir, 0700) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int write_config(const char *path, int port, int tls_port, int admin_port)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f, fourcd_ini, port, tls_port, admin_port);
	return fclose(f) == 0 ? 0 : -EIO;
}

/* Did the log (from offset on) say that an address was in use? */
static int log_says_in_use(const char *log, long offset)
{
	FILE *f = fopen(log, "r");
	if (!f)
		return 0;
	fseek(f, offset, SEEK_SET);
	char line[1024];
	int hit = 0;
	while (!hit && fgets(line, sizeof line, f))
		hit = strstr(line, "in use") != NULL;
	fclose(f);
	return hit;
}

static long file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

static int wait_ready(srv_t *s)
{
	uint64_t end = proc_now_ns() + (uint64_t)READY_TIMEOUT_MS * 1000000ull;
	while (proc_now_ns() < end) {
		if (!proc_running(s->pid, NULL)) {
			s->pid = 0;
			return -ECHILD;
		}
		if (proc_http_status(s->admin_port, "/readyz", 1000) == 200)
			return 0;
		proc_sleep_ms(50);
	}
	return -ETIMEDOUT;
}

int srv_fourcd_start(srv_t *s, const char *bin, const char *tmp, const char *name, int cpu)
{
	memset(s, 0, sizeof *s);
	int rc = make_dir(s, tmp, name);
	if (rc < 0)
		return rc;
	char cfg[600], data[600];
	snprintf(cfg, sizeof cfg, "%s/fourcd.ini", s->dir);
	snprintf(data, sizeof data, "%s/data", s->dir);
	snprintf(s->log, sizeof s->log, "%s/fourcd.log", s->dir);
	for (int attempt = 0; attempt < 3; attempt++) {
		s->port = proc_free_port();
		s->tls_port = proc_free_port();
		s->admin_port = proc_free_port();
		if (s->port < 0 || s->tls_port < 0 || s->admin_port < 0)
			return -EADDRNOTAVAIL;
		if (s->port == s->tls_port || s->port == s->admin_port ||
		    s->tls_port == s->admin_port)
			continue;
		if ((rc = write_config(cfg, s->port, s->tls_port, s->admin_port)) < 0)
			return rc;
		long off = file_size(s->log);
		char *argv[] = {(char *)bin, "serve", "--config", cfg, "--data", data, NULL};
		pid_t pid = proc_spawn(argv, cpu, s->log, NULL);
		if (pid < 0)
			return (int)pid;
		s->pid = pid;
		rc = wait_ready(s);
		if (rc == 0)
			return 0;
		if (s->pid) {
			proc_stop(s->pid, 2000, NULL);
			s->pid = 0;
		}
		if (!log_says_in_use(s->log, off))
			break;
	}
	return rc < 0 ? rc : -EADDRINUSE;
}

int srv_baseline_start(srv_t *s, const char *bin, const char *tmp, const char *name,
		       const char *mode, int cpu)
{
	memset(s, 0, sizeof *s);
	int rc = make_dir(s, tmp, name);
	if (rc < 0)
		return rc;
	snprintf(s->log, sizeof s->log, "%s/baseline.log", s->dir);
	char *argv[] = {(char *)bin, "--mode", (char *)mode, "--host", "127.0.0.1", NULL};
	int out = -1;
	pid_t pid = proc_spawn(argv, cpu, s->log, &out);
	if (pid < 0)
		return (int)pid;
	s->pid = pid;
	char line[64];
	rc = proc_read_line(out, line, sizeof line, READY_TIMEOUT_MS);
	close(out);
	if (rc > 0 && sscanf(line, "port %d", &s->port) == 1 && s->port > 0)
		return 0;
	proc_stop(s->pid, 2000, NULL);
	s->pid = 0;
	return rc < 0 ? rc : -EPROTO;
}

int srv_stop(srv_t *s, int *exit_code)
{
	if (!s->pid) {
		if (exit_code)
			*exit_code = -1;
		return -ECHILD;
	}
	int st = 0;
	int rc = proc_stop(s->pid, STOP_GRACE_MS, &st);
	s->pid = 0;
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
	if (exit_code)
		*exit_code = code;
	return rc == 0 && code == 0 ? 0 : -ECHILD;
}
